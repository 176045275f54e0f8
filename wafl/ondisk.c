/*
 * wafl/ondisk.c: encode/decode of every structure in ondisk.h.
 *
 * Encoders write every byte of their area (reserved bytes as zero).
 * Decoders validate every field before the caller sees it and return
 * -FL_ECORRUPT for anything a correct writer never produces.
 */
#include "wafl/ondisk.h"

#include <string.h>
#include <sys/stat.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/util.h"
#include "wafl/wafl.h"

FL_STATIC_ASSERT(WAFL_BPS_PER_BLOCK == 128, "128 pointers per block");
FL_STATIC_ASSERT(WAFL_NTOP * WAFL_BP_SIZE == 384, "inline area");
FL_STATIC_ASSERT(128 + WAFL_INLINE_MAX == WAFL_INODE_SIZE, "inode size");
FL_STATIC_ASSERT(104 + WAFL_RING_K * 40 <= 264, "fsinfo ring fits");
FL_STATIC_ASSERT(336 + WAFL_FSI_HOLDS * 40 <= WAFL_BLOCK_SIZE - 4,
    "fsinfo holds fit");
FL_STATIC_ASSERT(WAFL_SNAPS_PER_BLOCK * WAFL_SNAP_ENTRY_SIZE ==
    WAFL_BLOCK_SIZE, "snapshot entries tile a block");
FL_STATIC_ASSERT(128 + WAFL_INODE_SIZE <= WAFL_BLOCK_SIZE, "root block");

#define FSINFO_CKSUM_OFF	(WAFL_BLOCK_SIZE - 4)

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

void wafl_bp_encode(uint8_t *p, const struct wafl_bp *bp)
{
	fl_put_le64(p + 0, bp->vbn);
	fl_put_le64(p + 8, bp->birth);
	fl_put_le32(p + 16, bp->cksum);
	fl_put_le32(p + 20, bp->flags);
	fl_put_le64(p + 24, 0);
}

int wafl_bp_decode(const uint8_t *p, struct wafl_bp *bp)
{
	bp->vbn = fl_get_le64(p + 0);
	bp->birth = fl_get_le64(p + 8);
	bp->cksum = fl_get_le32(p + 16);
	bp->flags = fl_get_le32(p + 20);
	if (bp->flags != 0 || fl_get_le64(p + 24) != 0)
		return FL_ERR(-FL_ECORRUPT);
	if (bp->vbn == 0 && (bp->birth != 0 || bp->cksum != 0))
		return FL_ERR(-FL_ECORRUPT);
	if (bp->vbn != 0 && (bp->vbn < WAFL_FSINFO_SLOTS || bp->birth == 0))
		return FL_ERR(-FL_ECORRUPT);
	return 0;
}

void wafl_fsinfo_encode(uint8_t *b, const struct wafl_fsinfo *f)
{
	memset(b, 0, WAFL_BLOCK_SIZE);
	memcpy(b + 0, WAFL_FSINFO_MAGIC, 8);
	fl_put_le32(b + 8, WAFL_FORMAT_VERSION);
	fl_put_le32(b + 12, WAFL_BLOCK_SIZE);
	fl_put_le64(b + 16, f->gen);
	memcpy(b + 24, f->fs_uuid, 16);
	fl_put_le64(b + 40, f->fsid);
	fl_put_le64(b + 48, f->nvbns);
	fl_put_le64(b + 56, f->create_ns);
	fl_put_le64(b + 64, f->write_ns);
	wafl_bp_encode(b + 72, &f->root);
	for (unsigned i = 0; i < WAFL_RING_K; i++) {
		uint8_t *e = b + 104 + 40 * i;
		if (i < f->ring_len) {
			fl_put_le64(e, f->ring[i].gen);
			wafl_bp_encode(e + 8, &f->ring[i].root);
		}
	}
	memcpy(b + 264, f->fh_key, 32);
	memcpy(b + 296, f->dir_key, 16);
	fl_put_le64(b + 312, f->mirror_base);
	fl_put_le32(b + 320, f->flags);
	fl_put_le32(b + 324, f->ring_len);
	fl_put_le32(b + 328, f->nholds);
	for (unsigned i = 0; i < f->nholds && i < WAFL_FSI_HOLDS; i++) {
		uint8_t *e = b + 336 + 40 * i;
		fl_put_le64(e, f->holds[i].gen);
		wafl_bp_encode(e + 8, &f->holds[i].root);
	}
	fl_put_le32(b + FSINFO_CKSUM_OFF, fl_crc32c(0, b, FSINFO_CKSUM_OFF));
}

int wafl_fsinfo_decode(const uint8_t *b, struct wafl_fsinfo *f)
{
	memset(f, 0, sizeof(*f));
	if (memcmp(b, WAFL_FSINFO_MAGIC, 8) != 0)
		return -FL_ECORRUPT;	/* an unwritten slot is normal */
	if (fl_get_le32(b + FSINFO_CKSUM_OFF) !=
	    fl_crc32c(0, b, FSINFO_CKSUM_OFF))
		return FL_ERR(-FL_ECORRUPT);
	if (fl_get_le32(b + 8) != WAFL_FORMAT_VERSION ||
	    fl_get_le32(b + 12) != WAFL_BLOCK_SIZE)
		return FL_ERR(-FL_ECORRUPT);
	f->gen = fl_get_le64(b + 16);
	if (f->gen > WAFL_GEN_MAX)
		return FL_ERR(-FL_ECORRUPT);
	memcpy(f->fs_uuid, b + 24, 16);
	f->fsid = fl_get_le64(b + 40);
	f->nvbns = fl_get_le64(b + 48);
	f->create_ns = fl_get_le64(b + 56);
	f->write_ns = fl_get_le64(b + 64);
	if (wafl_bp_decode(b + 72, &f->root) != 0 || f->root.vbn == 0 ||
	    f->root.vbn >= f->nvbns || f->root.birth != f->gen)
		return FL_ERR(-FL_ECORRUPT);
	f->ring_len = fl_get_le32(b + 324);
	if (f->ring_len < 1 || f->ring_len > WAFL_RING_K)
		return FL_ERR(-FL_ECORRUPT);
	for (unsigned i = 0; i < f->ring_len; i++) {
		const uint8_t *e = b + 104 + 40 * i;
		f->ring[i].gen = fl_get_le64(e);
		if (wafl_bp_decode(e + 8, &f->ring[i].root) != 0 ||
		    f->ring[i].root.vbn >= f->nvbns ||
		    f->ring[i].gen > f->gen ||
		    (i > 0 && f->ring[i].gen >= f->ring[i - 1].gen))
			return FL_ERR(-FL_ECORRUPT);
	}
	if (f->ring[0].gen != f->gen ||
	    memcmp(&f->ring[0].root, &f->root, sizeof(f->root)) != 0)
		return FL_ERR(-FL_ECORRUPT);
	memcpy(f->fh_key, b + 264, 32);
	memcpy(f->dir_key, b + 296, 16);
	f->mirror_base = fl_get_le64(b + 312);
	f->flags = fl_get_le32(b + 320);
	if ((f->flags & ~WAFL_FSI_REPLICA) != 0 || f->mirror_base > f->gen)
		return FL_ERR(-FL_ECORRUPT);
	f->nholds = fl_get_le32(b + 328);
	if (f->nholds > WAFL_FSI_HOLDS || fl_get_le32(b + 332) != 0)
		return FL_ERR(-FL_ECORRUPT);
	for (unsigned i = 0; i < WAFL_FSI_HOLDS; i++) {
		const uint8_t *e = b + 336 + 40 * i;
		if (i >= f->nholds) {
			if (!all_zero(e, 40))
				return FL_ERR(-FL_ECORRUPT);
			continue;
		}
		f->holds[i].gen = fl_get_le64(e);
		if (wafl_bp_decode(e + 8, &f->holds[i].root) != 0 ||
		    f->holds[i].root.vbn == 0 ||
		    f->holds[i].root.vbn >= f->nvbns ||
		    f->holds[i].root.birth != f->holds[i].gen ||
		    f->holds[i].gen > f->gen ||
		    (i > 0 && f->holds[i].gen <= f->holds[i - 1].gen))
			return FL_ERR(-FL_ECORRUPT);
	}
	return 0;
}

void wafl_dinode_encode(uint8_t *p, const struct wafl_dinode *d)
{
	memset(p, 0, WAFL_INODE_SIZE);
	fl_put_le32(p + 0, d->mode);
	fl_put_le32(p + 4, d->nlink);
	fl_put_le32(p + 8, d->uid);
	fl_put_le32(p + 12, d->gid);
	fl_put_le64(p + 16, d->size);
	fl_put_le64(p + 24, d->blocks);
	fl_put_le64(p + 32, d->atime_ns);
	fl_put_le64(p + 40, d->mtime_ns);
	fl_put_le64(p + 48, d->ctime_ns);
	fl_put_le64(p + 56, d->crtime_ns);
	fl_put_le32(p + 64, d->gen);
	fl_put_le32(p + 68, d->flags);
	fl_put_le32(p + 72, d->rdev_major);
	fl_put_le32(p + 76, d->rdev_minor);
	p[80] = d->height;
	fl_put_le64(p + 88, d->ino);
	fl_put_le64(p + 96, d->verifier);
	fl_put_le64(p + 104, d->parent);
	if (d->flags & WAFL_INO_INLINE) {
		memcpy(p + 128, d->u.inline_data, WAFL_INLINE_MAX);
	} else {
		for (unsigned i = 0; i < WAFL_NTOP; i++)
			wafl_bp_encode(p + 128 + i * WAFL_BP_SIZE, &d->u.top[i]);
	}
}

static bool mode_type_ok(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFCHR:
	case S_IFBLK: case S_IFIFO: case S_IFSOCK:
		return (mode & ~(uint32_t)(S_IFMT | 07777)) == 0;
	default:
		return false;
	}
}

int wafl_dinode_decode(const uint8_t *p, uint64_t ino, struct wafl_dinode *d)
{
	memset(d, 0, sizeof(*d));
	d->mode = fl_get_le32(p + 0);
	d->gen = fl_get_le32(p + 64);
	if (d->mode == 0)
		return 0;	/* free inode: only gen is meaningful */
	d->nlink = fl_get_le32(p + 4);
	d->uid = fl_get_le32(p + 8);
	d->gid = fl_get_le32(p + 12);
	d->size = fl_get_le64(p + 16);
	d->blocks = fl_get_le64(p + 24);
	d->atime_ns = fl_get_le64(p + 32);
	d->mtime_ns = fl_get_le64(p + 40);
	d->ctime_ns = fl_get_le64(p + 48);
	d->crtime_ns = fl_get_le64(p + 56);
	d->flags = fl_get_le32(p + 68);
	d->rdev_major = fl_get_le32(p + 72);
	d->rdev_minor = fl_get_le32(p + 76);
	d->height = p[80];
	d->ino = fl_get_le64(p + 88);
	d->verifier = fl_get_le64(p + 96);
	d->parent = fl_get_le64(p + 104);
	if (!mode_type_ok(d->mode) || d->ino != ino ||
	    d->height > WAFL_MAX_HEIGHT ||
	    (d->flags & ~(uint32_t)(WAFL_INO_INLINE | WAFL_INO_EXCL)) != 0 ||
	    !all_zero(p + 81, 7) || !all_zero(p + 112, 16))
		return FL_ERR(-FL_ECORRUPT);
	/* A symlink's target is a C string of 1..WAFL_PATH_MAX bytes. */
	if ((d->mode & S_IFMT) == S_IFLNK &&
	    (d->size == 0 || d->size > WAFL_PATH_MAX))
		return FL_ERR(-FL_ECORRUPT);
	if (d->flags & WAFL_INO_INLINE) {
		if (d->size > WAFL_INLINE_MAX || d->height != 0)
			return FL_ERR(-FL_ECORRUPT);
		if ((d->mode & S_IFMT) == S_IFLNK &&
		    memchr(p + 128, 0, (size_t)d->size) != NULL)
			return FL_ERR(-FL_ECORRUPT);
		memcpy(d->u.inline_data, p + 128, WAFL_INLINE_MAX);
		return 0;
	}
	/* No file grows past WAFL_MAX_FILE_SIZE (file.c refuses it). */
	if (d->size > WAFL_MAX_FILE_SIZE)
		return FL_ERR(-FL_ECORRUPT);
	for (unsigned i = 0; i < WAFL_NTOP; i++) {
		if (wafl_bp_decode(p + 128 + i * WAFL_BP_SIZE,
		    &d->u.top[i]) != 0)
			return FL_ERR(-FL_ECORRUPT);
	}
	return 0;
}

/* The orphan list's place in the root block (ondisk.h). */
#define WAFL_ROOT_ORPHANS_OFF	640u
_Static_assert(WAFL_ROOT_ORPHANS_OFF + 8 * WAFL_ORPHAN_MAX <= WAFL_BLOCK_SIZE,
    "orphan list fits the root block");

void wafl_rootblk_encode(uint8_t *b, const struct wafl_rootblk *r)
{
	memset(b, 0, WAFL_BLOCK_SIZE);
	memcpy(b, WAFL_ROOT_MAGIC, 8);
	fl_put_le64(b + 8, r->gen);
	fl_put_le64(b + 16, r->blocks_used);
	fl_put_le64(b + 24, r->inodes_used);
	fl_put_le64(b + 32, r->next_ino);
	VERIFY(r->norphans <= WAFL_ORPHAN_MAX);
	fl_put_le32(b + 40, r->norphans);
	wafl_dinode_encode(b + 128, &r->inodefile);
	for (uint32_t i = 0; i < r->norphans; i++)
		fl_put_le64(b + WAFL_ROOT_ORPHANS_OFF + 8 * i, r->orphans[i]);
}

int wafl_rootblk_decode(const uint8_t *b, struct wafl_rootblk *r)
{
	memset(r, 0, sizeof(*r));
	if (memcmp(b, WAFL_ROOT_MAGIC, 8) != 0)
		return FL_ERR(-FL_ECORRUPT);
	r->gen = fl_get_le64(b + 8);
	r->blocks_used = fl_get_le64(b + 16);
	r->inodes_used = fl_get_le64(b + 24);
	r->next_ino = fl_get_le64(b + 32);
	r->norphans = fl_get_le32(b + 40);
	if (r->norphans > WAFL_ORPHAN_MAX || !all_zero(b + 44, 84))
		return FL_ERR(-FL_ECORRUPT);
	const uint8_t *ol = b + WAFL_ROOT_ORPHANS_OFF;
	if (!all_zero(ol + 8 * r->norphans, WAFL_BLOCK_SIZE -
	    WAFL_ROOT_ORPHANS_OFF - 8 * r->norphans))
		return FL_ERR(-FL_ECORRUPT);
	for (uint32_t i = 0; i < r->norphans; i++) {
		uint64_t ino = fl_get_le64(ol + 8 * i);
		if (ino < WAFL_INO_FIRST_USER || ino >= WAFL_INO_LIMIT)
			return FL_ERR(-FL_ECORRUPT);
		for (uint32_t j = 0; j < i; j++)
			if (r->orphans[j] == ino)
				return FL_ERR(-FL_ECORRUPT);
		r->orphans[i] = ino;
	}
	int rc = wafl_dinode_decode(b + 128, WAFL_INO_INODEFILE, &r->inodefile);
	if (rc != 0 || (r->inodefile.mode & S_IFMT) != S_IFREG ||
	    (r->inodefile.flags & WAFL_INO_INLINE))
		return FL_ERR(-FL_ECORRUPT);
	return 0;
}

void wafl_snapent_encode(uint8_t *p, const struct wafl_snapent *s)
{
	memset(p, 0, WAFL_SNAP_ENTRY_SIZE);
	if (s->gen == 0)
		return;
	fl_put_le64(p + 0, s->gen);
	fl_put_le64(p + 8, s->create_ns);
	wafl_bp_encode(p + 16, &s->root);
	fl_put_le64(p + 48, s->id);
	fl_put_le64(p + 56, s->origin);
	size_t n = strnlen(s->name, WAFL_SNAP_NAME_MAX);
	memcpy(p + 64, s->name, n);
}

int wafl_snapent_decode(const uint8_t *p, struct wafl_snapent *s)
{
	memset(s, 0, sizeof(*s));
	s->gen = fl_get_le64(p + 0);
	if (s->gen == 0)
		return all_zero(p, WAFL_SNAP_ENTRY_SIZE) ? 0 :
		    FL_ERR(-FL_ECORRUPT);
	s->create_ns = fl_get_le64(p + 8);
	if (wafl_bp_decode(p + 16, &s->root) != 0 || s->root.vbn == 0)
		return FL_ERR(-FL_ECORRUPT);
	s->id = fl_get_le64(p + 48);
	s->origin = fl_get_le64(p + 56);
	memcpy(s->name, p + 64, WAFL_SNAP_NAME_MAX);
	s->name[WAFL_SNAP_NAME_MAX] = '\0';
	size_t n = strlen(s->name);
	if (n == 0 || p[64 + WAFL_SNAP_NAME_MAX] != 0 ||
	    !all_zero(p + 64 + n, 64 - n))
		return FL_ERR(-FL_ECORRUPT);
	/* What snapshot create accepts: the name is shown under .snapshot. */
	if (strcmp(s->name, ".") == 0 || strcmp(s->name, "..") == 0)
		return FL_ERR(-FL_ECORRUPT);
	for (size_t i = 0; i < n; i++)
		if (s->name[i] == '/' || (unsigned char)s->name[i] < 0x20)
			return FL_ERR(-FL_ECORRUPT);
	return 0;
}

uint64_t wafl_height_capacity(unsigned height)
{
	uint64_t cap = WAFL_NTOP;

	for (unsigned i = 0; i < height; i++)
		cap *= WAFL_BPS_PER_BLOCK;
	return cap;
}
