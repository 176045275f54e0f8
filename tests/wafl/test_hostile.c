/*
 * tests/wafl/test_hostile.c: images whose blocks carry valid checksums but
 * hostile contents.
 *
 * A template volume (raid 4+1 on image files) is made once, with a known
 * tree: a directory with a two-level index, a file of height 1, a sparse
 * file of height 2, a symlink, nested directories and two snapshots.  Each
 * case copies the images, rewrites one field of one on-disk structure
 * offline (through raid, so parity follows), recomputes the checksum of
 * every block from the changed one up to the root block, each into its
 * parent's pointer, and rewrites fsinfo (with its own checksum): the
 * change passes every checksum, as a buggy or hostile writer's would.
 * The volume is then mounted, checked (wafl_check), read through the
 * operations (readdir, lookup, read, readlink, the snapshots' trees too)
 * and written to (write, setattr, create, mkdir, remove, rename, snapshot
 * create and delete, sync), and dropped without a final CP.  A hostile
 * field must end in a clean error -- the mount refuses it, or the check
 * reports a violation -- and nothing may crash, hang, loop or read out of
 * bounds (run it under ASan as well).
 *
 * Covered: fsinfo, the root block and its counters, its orphan list
 * (count, range, duplicates, what lies past the count; entries naming
 * free or linked inodes, dropped with nothing freed), the inode file's
 * inode, reserved and user inodes (type, size, height, nlink, flags,
 * inline data where only symlinks keep it, parent, self number), block
 * pointers in indirect blocks and in the root block (outside the VBN
 * space, an fsinfo slot, a stale checksum, another file's block, itself,
 * a birth from the future, flags), directory headers, internal nodes,
 * leaves and entries (lengths, keys, children, entries naming reserved
 * inodes or the directory itself, then removed, renamed over, rmdir'ed;
 * a header count that lies to RMDIR), the snapshot table, a snapshot's
 * own tree (read, listed, rolled back to), a replica's next root, raid
 * labels (geometry, layout, member states, on one disk and on all) and
 * NVLOG records (length, generation, type, the words of each kind's
 * fixed part, WRITE/SETATTR/LINK aimed at the special files; the
 * record's checksum recomputed).  The NVLOG header's run, start LSN and
 * half size, a record's generation far ahead, and an fsinfo generation
 * at the end of its range are each mounted twice with an operation
 * acknowledged in between: refused with nothing lost, or nothing lost
 * (raid's bitmap and journal: tests/raid/test_raid_hostile).  Every
 * mutated volume is also walked
 * by birth generation, as a mirror source reads it.  A seeded sweep
 * rewrites random fields of random metadata blocks (no assertion but
 * survival).
 *
 * Images live under /dev/shm when $TMPDIR is not set: hundreds of mounts
 * with their flushes, and nothing here is about durability.
 * HOSTILE_ONLY=<test name pattern> runs a subset.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/util.h"
#include "raid/label.h"
#include "tests/lib/tl_log.h"
#include "tests/lib/tl_raid.h"
#include "tests/lib/tl_tmpdir.h"
#include "tests/lib/tl_wafl.h"
#include "wafl/ondisk.h"
#include "wafl/wafl_impl.h"

#define NDATA		4u
#define NPARITY		1u
#define NDISKS		(NDATA + NPARITY)
#define DISK_BLOCKS	1024u
#define HALF_BYTES	(2u << 20)
#define DIR_FILES	300u

static const struct wafl_cred root_cred = { 0, 0, 0, { 0 } };

/* The template volume, made once. */
static struct {
	char *dir;
	char paths[NDISKS][512];
	uint64_t d, f, g, s, sub, dir2, x;
} tpl;

/* One case: a copy of the template. */
struct hcase {
	char *dir;
	char paths[NDISKS][512];
	const char *pp[NDISKS];
	char logpath[512];
	raid_vol_t *raid;
	struct wafl_mount_opts mo;
};

/* ------------------------------------------------------------ template */

static void mo_init(struct wafl_mount_opts *mo, const char *logpath)
{
	memset(mo, 0, sizeof(*mo));
	mo->nvlog_path = logpath;
	mo->nvlog_half_bytes = HALF_BYTES;
	mo->no_cp_thread = true;
	mo->cache_bytes = 4u << 20;
}

static struct wafl_obj objs[64];	/* by inode number, < 64 */

static uint64_t mkobj(wafl_vol_t *v, uint64_t dir, const char *name,
    int kind)
{
	struct wafl_obj d, o;
	struct wafl_attr a;

	if (dir == WAFL_INO_ROOTDIR)
		assert_int_equal(wafl_root(v, &d), 0);
	else
		d = objs[dir];
	if (kind == 0)
		assert_int_equal(wafl_create(v, &root_cred, &d, name,
		    WAFL_GUARDED, NULL, 0, &o, &a, NULL), 0);
	else if (kind == 1)
		assert_int_equal(wafl_mkdir(v, &root_cred, &d, name, NULL, &o,
		    &a, NULL), 0);
	else
		assert_int_equal(wafl_symlink(v, &root_cred, &d, name,
		    "a/symlink/target", NULL, &o, &a, NULL), 0);
	if (o.ino < 64)
		objs[o.ino] = o;
	return o.ino;
}

static void wr(wafl_vol_t *v, uint64_t ino, uint64_t off, uint32_t len,
    uint64_t seed)
{
	struct wafl_obj o = objs[ino];
	enum wafl_stable got;
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	assert_true(ino < 64 && o.ino == ino);
	tl_fill_pattern(buf, len, seed);
	assert_int_equal(wafl_write(v, &root_cred, &o, off, len, buf,
	    WAFL_UNSTABLE, &got, NULL, NULL), 0);
	free(buf);
}

static int group_setup(void **state)
{
	struct tl_fs *f = tl_fs_create(NDATA, NPARITY, DISK_BLOCKS, false);
	wafl_vol_t *v = f->v;
	char name[32];
	uint64_t id;

	(void)state;
	tpl.f = mkobj(v, WAFL_INO_ROOTDIR, "f", 0);
	wr(v, tpl.f, 0, 600 << 10, 1);			/* height 1 */
	tpl.g = mkobj(v, WAFL_INO_ROOTDIR, "g", 0);
	wr(v, tpl.g, 0, 8192, 2);
	wr(v, tpl.g, 40ull << 20, 8192, 3);		/* height 2 */
	tpl.s = mkobj(v, WAFL_INO_ROOTDIR, "s", 2);
	tpl.sub = mkobj(v, WAFL_INO_ROOTDIR, "sub", 1);
	tpl.dir2 = mkobj(v, tpl.sub, "dir2", 1);
	tpl.x = mkobj(v, tpl.dir2, "x", 0);
	wr(v, tpl.x, 0, 5000, 4);
	tpl.d = mkobj(v, WAFL_INO_ROOTDIR, "d", 1);
	for (unsigned i = 0; i < DIR_FILES; i++) {
		snprintf(name, sizeof(name), "n%03u", i);
		(void)mkobj(v, tpl.d, name, 0);
	}
	assert_int_equal(wafl_snap_create(v, "s1", &id), 0);
	wr(v, tpl.f, 4096, 8192, 5);
	assert_int_equal(wafl_snap_create(v, "s2", &id), 0);
	/* f's inode leaves the inode-file block s2 shares. */
	wr(v, tpl.f, 0, 4096, 6);
	assert_int_equal(wafl_sync(v), 0);
	assert_int_equal(wafl_unmount(f->v), 0);
	f->v = NULL;
	raid_close(f->raid);
	f->raid = NULL;

	tpl.dir = tl_tmpdir_make(NULL, "hostile-tpl");
	for (unsigned i = 0; i < NDISKS; i++) {
		tl_path(tpl.paths[i], sizeof(tpl.paths[i]), tpl.dir, "d%u.img",
		    i);
		assert_int_equal(tl_copy_file(f->paths[i], tpl.paths[i]), 0);
	}
	tl_fs_destroy(f);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	tl_tmpdir_remove(tpl.dir);
	return 0;
}

static void open_raid(struct hcase *c)
{
	struct raid_open_opts oo = { 0 };

	assert_int_equal(raid_open(c->pp, NDISKS, &oo, &c->raid), 0);
}

static int setup(void **state)
{
	struct hcase *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->dir = tl_tmpdir_make(NULL, "hostile");
	for (unsigned i = 0; i < NDISKS; i++) {
		tl_path(c->paths[i], sizeof(c->paths[i]), c->dir, "d%u.img", i);
		assert_int_equal(tl_copy_file(tpl.paths[i], c->paths[i]), 0);
		c->pp[i] = c->paths[i];
	}
	/* The template was unmounted cleanly: its log holds nothing, and
	 * the mount makes a new one. */
	tl_path(c->logpath, sizeof(c->logpath), c->dir, "nvlog");
	mo_init(&c->mo, c->logpath);
	open_raid(c);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct hcase *c = *state;

	tl_log_capture_stop();
	if (c->raid != NULL)
		raid_close(c->raid);
	tl_tmpdir_remove(c->dir);
	free(c);
	return 0;
}

/* ------------------------------------------------- offline rewriting */

static uint64_t nvbns_of(raid_vol_t *r)
{
	struct raid_geometry g;

	raid_geometry(r, &g);
	return g.nvbns;
}

#define HX_MAXPATH	16

struct hx_node {
	uint64_t vbn;
	uint32_t bp_off;	/* where its pointer lies in the parent */
	uint8_t buf[WAFL_BLOCK_SIZE];
};

/* A path of blocks from the root block (node 0) down. */
struct hx {
	raid_vol_t *raid;
	uint8_t fsi_blk[WAFL_BLOCK_SIZE];
	struct wafl_fsinfo fsi;
	unsigned slot;
	unsigned n;
	struct hx_node node[HX_MAXPATH];
};

static void hx_load(struct hx *h, raid_vol_t *raid)
{
	uint8_t blk[WAFL_BLOCK_SIZE];
	struct wafl_fsinfo f;
	bool found = false;

	memset(h, 0, sizeof(*h));
	h->raid = raid;
	for (unsigned s = 0; s < WAFL_FSINFO_SLOTS; s++) {
		assert_int_equal(raid_read(raid, s, 1, blk), 0);
		if (wafl_fsinfo_decode(blk, &f) != 0)
			continue;
		if (!found || f.gen > h->fsi.gen) {
			h->fsi = f;
			h->slot = s;
			memcpy(h->fsi_blk, blk, sizeof(blk));
			found = true;
		}
	}
	assert_true(found);
}

static void hx_push(struct hx *h, uint64_t vbn, uint32_t bp_off)
{
	struct hx_node *nd;

	assert_true(h->n < HX_MAXPATH);
	nd = &h->node[h->n++];
	nd->vbn = vbn;
	nd->bp_off = bp_off;
	assert_int_equal(raid_read(h->raid, vbn, 1, nd->buf), 0);
}

static struct hx_node *hx_last(struct hx *h)
{
	return &h->node[h->n - 1];
}

/* The root block: node 0. */
static void hx_root(struct hx *h)
{
	h->n = 0;
	hx_push(h, h->fsi.root.vbn, 0);
}

/* Descend from the inode at (node ni, offset ioff) to its block at
 * (level, fbn); returns false at a hole. */
static bool hx_tree(struct hx *h, unsigned ni, uint32_t ioff, unsigned level,
    uint64_t fbn)
{
	unsigned height = h->node[ni].buf[ioff + 80];
	uint64_t top = fbn >> (7 * (height - level));
	uint32_t off = ioff + 128 + (uint32_t)top * WAFL_BP_SIZE;

	assert_true(top < WAFL_NTOP);
	for (unsigned l = height; ; l--) {
		uint64_t vbn = fl_get_le64(h->node[h->n - 1].buf + off);
		if (vbn == 0)
			return false;
		hx_push(h, vbn, off);
		if (l == level)
			return true;
		off = (uint32_t)((fbn >> (7 * (l - 1 - level))) & 127) *
		    WAFL_BP_SIZE;
	}
}

/* Path to the inode-file block holding ino; returns the inode's offset
 * in the last node. */
static uint32_t hx_inode(struct hx *h, uint64_t ino)
{
	hx_root(h);
	assert_true(hx_tree(h, 0, 128, 0, ino / WAFL_INODES_PER_BLOCK));
	return (uint32_t)(ino % WAFL_INODES_PER_BLOCK) * WAFL_INODE_SIZE;
}

/* Path through the active snapshot table to snapshot slot's root block
 * (its node index returned), then to the block of its inode file holding
 * ino; returns the inode's offset in the last node. */
static uint32_t hx_snap_inode(struct hx *h, unsigned slot, uint64_t ino,
    unsigned *rootnode)
{
	(void)hx_inode(h, WAFL_INO_SNAPTABLE);
	uint32_t ioff = (uint32_t)(WAFL_INO_SNAPTABLE %
	    WAFL_INODES_PER_BLOCK) * WAFL_INODE_SIZE;
	assert_true(hx_tree(h, h->n - 1, ioff, 0, 0));
	hx_push(h, fl_get_le64(hx_last(h)->buf + slot * 128 + 16),
	    slot * 128 + 16);
	*rootnode = h->n - 1;
	assert_true(hx_tree(h, *rootnode, 128, 0,
	    ino / WAFL_INODES_PER_BLOCK));
	return (uint32_t)(ino % WAFL_INODES_PER_BLOCK) * WAFL_INODE_SIZE;
}

/* Path to block (level, fbn) of ino. */
static void hx_file(struct hx *h, uint64_t ino, unsigned level, uint64_t fbn)
{
	uint32_t ioff = hx_inode(h, ino);

	assert_true(hx_tree(h, h->n - 1, ioff, level, fbn));
}

static void hx_write_fsinfo(struct hx *h)
{
	fl_put_le32(h->fsi_blk + WAFL_BLOCK_SIZE - 4,
	    fl_crc32c(0, h->fsi_blk, WAFL_BLOCK_SIZE - 4));
	assert_int_equal(raid_write(h->raid, h->slot, 1, h->fsi_blk), 0);
	assert_int_equal(raid_flush(h->raid), 0);
}

/* Write the path back bottom-up, each block's checksum into its parent,
 * the root block's into fsinfo (root and ring[0]). */
static void hx_seal(struct hx *h)
{
	for (unsigned i = h->n; i-- > 0; ) {
		struct hx_node *nd = &h->node[i];
		uint32_t crc = fl_crc32c(0, nd->buf, WAFL_BLOCK_SIZE);
		if (i > 0)
			fl_put_le32(h->node[i - 1].buf + nd->bp_off + 16, crc);
		else {
			fl_put_le32(h->fsi_blk + 72 + 16, crc);
			fl_put_le32(h->fsi_blk + 104 + 8 + 16, crc);
		}
		assert_int_equal(raid_write(h->raid, nd->vbn, 1, nd->buf), 0);
		/* An older CP root of the ring may be this very block (a
		 * snapshot's root is its CP's): it follows. */
		for (unsigned r = 1; r < h->fsi.ring_len; r++) {
			uint8_t *e = h->fsi_blk + 104 + 40 * r + 8;
			if (fl_get_le64(e) == nd->vbn)
				fl_put_le32(e + 16, crc);
		}
	}
	hx_write_fsinfo(h);
}

/* ------------------------------------------------------ the exercise */

struct names {
	unsigned n;
	char name[400][256];
	uint64_t ino[400];
};

static int collect(void *arg, const struct wafl_dirent *de)
{
	struct names *nm = arg;

	if (nm->n >= 400)
		return 1;
	/* A name no create makes never reaches a client. */
	if (de->name[0] == '\0' || strchr(de->name, '/') != NULL ||
	    (nm->n >= 2 && (strcmp(de->name, ".") == 0 ||
	    strcmp(de->name, "..") == 0)))
		fail_msg("readdir gives the name '%s'", de->name);
	snprintf(nm->name[nm->n], sizeof(nm->name[0]), "%s", de->name);
	nm->ino[nm->n++] = de->fileid;
	return 0;
}

static void walk(wafl_vol_t *v, const struct wafl_obj *dir, unsigned depth)
{
	struct names *nm;
	struct wafl_attr a, da;
	bool eof = false;
	uint64_t cookie = 0;

	if (depth > 6)
		return;
	nm = calloc(1, sizeof(*nm));
	assert_non_null(nm);
	for (int plus = 0; plus < 2; plus++) {
		nm->n = 0;
		(void)wafl_readdir(v, &root_cred, dir, cookie, plus != 0,
		    collect, nm, &eof, &da);
	}
	for (unsigned i = 0; i < nm->n && i < 40; i++) {
		struct wafl_obj o;
		if (strcmp(nm->name[i], ".") == 0 ||
		    strcmp(nm->name[i], "..") == 0)
			continue;
		if (wafl_lookup(v, &root_cred, dir, nm->name[i], &o, &a,
		    &da) != 0)
			continue;
		if (a.type == WAFL_DIR) {
			walk(v, &o, depth + 1);
		} else if (a.type == WAFL_LNK) {
			char buf[1024];
			size_t len;
			(void)wafl_readlink(v, &root_cred, &o, buf,
			    sizeof(buf), &len, &a);
		} else if (a.type == WAFL_REG) {
			static uint8_t buf[65536];
			uint32_t got;
			bool feof = false;
			/* Bounded: a lying size must not make this loop. */
			for (uint64_t off = 0; off < (2u << 20) && !feof;
			    off += sizeof(buf)) {
				if (wafl_read(v, &root_cred, &o, off,
				    sizeof(buf), buf, &got, &feof, &a) != 0)
					break;
			}
			struct wafl_rdvec *rv = NULL;
			if (wafl_read_vec(v, &root_cred, &o, 1ull << 40, 8192,
			    &rv, &got, &feof, &a) == 0)
				wafl_rdvec_free(rv);
		}
		/* ".." of a directory, once. */
		if (a.type == WAFL_DIR && i == 0) {
			struct wafl_obj p;
			(void)wafl_lookup(v, &root_cred, &o, "..", &p, &a,
			    &da);
		}
	}
	free(nm);
}

/* Writes that reach the hostile structures: every result is allowed but a
 * crash. */
static void scribble(wafl_vol_t *v)
{
	static const char *dirs[] = { "d", "sub", NULL };
	struct wafl_obj root, o, d;
	struct wafl_attr a;
	enum wafl_stable got;
	uint8_t buf[8192];

	tl_fill_pattern(buf, sizeof(buf), 99);
	if (wafl_root(v, &root) != 0)
		return;
	(void)wafl_create(v, &root_cred, &root, "new", WAFL_GUARDED, NULL, 0,
	    &o, &a, NULL);
	for (unsigned i = 0; dirs[i] != NULL; i++) {
		if (wafl_lookup(v, &root_cred, &root, dirs[i], &d, &a,
		    NULL) != 0)
			continue;
		(void)wafl_create(v, &root_cred, &d, "added", WAFL_GUARDED,
		    NULL, 0, &o, &a, NULL);
		(void)wafl_mkdir(v, &root_cred, &d, "newdir", NULL, &o, &a,
		    NULL);
		(void)wafl_remove(v, &root_cred, &d, "n005", NULL);
		(void)wafl_rmdir(v, &root_cred, &d, "dir2", NULL);
	}
	const char *files[] = { "f", "g", "s", NULL };
	for (unsigned i = 0; files[i] != NULL; i++) {
		if (wafl_lookup(v, &root_cred, &root, files[i], &o, &a,
		    NULL) != 0)
			continue;
		(void)wafl_write(v, &root_cred, &o, 4096, sizeof(buf), buf,
		    WAFL_FILE_SYNC, &got, NULL, NULL);
		(void)wafl_write(v, &root_cred, &o, 3ull << 30, sizeof(buf),
		    buf, WAFL_UNSTABLE, &got, NULL, NULL);
		struct wafl_sattr sa = { .set_size = true, .size = 10000 };
		(void)wafl_setattr(v, &root_cred, &o, &sa, NULL, NULL, &a);
	}
	(void)wafl_rename(v, &root_cred, &root, "f", &root, "f2", NULL, NULL);
	uint64_t id;
	(void)wafl_snap_create(v, "s3", &id);
	(void)wafl_snap_delete(v, "s1");
	(void)wafl_sync(v);
}

static int count_block(void *arg, uint64_t vbn, uint64_t birth,
    uint32_t cksum, const void *data, unsigned flags)
{
	(void)vbn;
	(void)birth;
	(void)cksum;
	(void)data;
	(void)flags;
	(*(uint64_t *)arg)++;
	return 0;
}

struct outcome {
	int mount_rc;
	int check_rc;
	uint64_t mounted_gen;
	struct wafl_check_result res;
	struct wafl_check_detail det;
};

static bool exercise_light;	/* mount and check only */

/* Mount, check, read everything, write, drop the volume (no final CP). */
static void exercise(struct hcase *c, struct outcome *out)
{
	wafl_vol_t *v = NULL;
	struct wafl_obj root;

	memset(out, 0, sizeof(*out));
	tl_log_capture_start(FL_LOG_INFO);
	out->mount_rc = wafl_mount(c->raid, &c->mo, &v);
	if (out->mount_rc != 0) {
		assert_true(out->mount_rc < 0);
		assert_null(v);
		goto out;
	}
	out->mounted_gen = wafl_generation(v);
	out->check_rc = wafl_check_detail(v, &out->res, &out->det);
	assert_true(out->check_rc == 0 || out->check_rc == -FL_ECORRUPT);
	if (!exercise_light && wafl_root(v, &root) == 0)
		walk(v, &root, 0);
	if (!exercise_light) {
		/* What a mirror source sends: the whole tree, and the
		 * snapshots' (the ring's older roots may be gone). */
		uint64_t nblk = 0;
		(void)wafl_birth_walk(v, out->mounted_gen, 0, count_block,
		    &nblk);
	}
	if (!exercise_light) {
		struct wafl_snapinfo si[8];
		size_t ns = 0;
		if (wafl_snap_list(v, si, 8, &ns) == 0)
			for (size_t i = 0; i < ns && i < 8; i++)
				if (wafl_snap_root(v, si[i].id, &root) == 0)
					walk(v, &root, 0);
	}
	if (!exercise_light)
		scribble(v);
	wafl_abandon(v);
	/* What the scribbling wrote is the volume's business; the raid
	 * volume is reopened so the next mount (if any) starts afresh. */
	raid_close(c->raid);
	c->raid = NULL;
	open_raid(c);
out:
	tl_log_capture_stop();
}

/* The hostile change must be refused at mount or reported by the check. */
static void assert_caught(struct hcase *c, const char *what)
{
	struct outcome o;

	exercise(c, &o);
	if (o.mount_rc == 0 && o.check_rc == 0)
		fail_msg("%s: mounted and checked clean", what);
}

/* fsinfo changes: the mount may also fall back to the older slot. */
static void assert_caught_fsinfo(struct hcase *c, uint64_t gen,
    const char *what)
{
	struct outcome o;

	exercise(c, &o);
	if (o.mount_rc == 0 && o.check_rc == 0 && o.mounted_gen == gen)
		fail_msg("%s: mounted and checked clean", what);
}

/* ------------------------------------------------------------- cases */

/* One inode field rewritten: (offset, size, value). */
struct ifield {
	const char *what;
	uint32_t off, size;
	uint64_t val;
};

static void rewrite_inode(struct hcase *c, uint64_t ino, const struct ifield *fl)
{
	struct hx h;

	hx_load(&h, c->raid);
	uint32_t ioff = hx_inode(&h, ino);
	tl_put_field(hx_last(&h)->buf + ioff + fl->off, fl->size, fl->val);
	hx_seal(&h);
}

static void inode_cases(struct hcase *c, uint64_t ino,
    const struct ifield *tab, size_t n)
{
	/* The images as made: each field change starts from them. */
	for (size_t i = 0; i < n; i++) {
		char what[128];
		if (i > 0) {
			raid_close(c->raid);
			c->raid = NULL;
			for (unsigned d = 0; d < NDISKS; d++)
				assert_int_equal(tl_copy_file(tpl.paths[d],
				    c->paths[d]), 0);
			(void)unlink(c->logpath);
			open_raid(c);
		}
		rewrite_inode(c, ino, &tab[i]);
		snprintf(what, sizeof(what), "inode %llu %s",
		    (unsigned long long)ino, tab[i].what);
		assert_caught(c, what);
	}
}

static const struct ifield file_fields[] = {
	{ "type none", 0, 4, 0170644 },
	{ "type dir", 0, 4, S_IFDIR | 0755 },
	{ "type symlink", 0, 4, S_IFLNK | 0777 },
	{ "size 2^63", 16, 8, 1ull << 63 },
	{ "size max", 16, 8, UINT64_MAX },
	{ "height 7", 80, 1, 7 },
	{ "height 255", 80, 1, 255 },
	{ "height 0", 80, 1, 0 },
	{ "height 5", 80, 1, 5 },
	{ "nlink 0", 4, 4, 0 },
	{ "nlink max", 4, 4, UINT32_MAX },
	{ "blocks max", 24, 8, UINT64_MAX },
	{ "flags inline", 68, 4, WAFL_INO_INLINE },
	{ "flags unknown", 68, 4, 0x80 },
	{ "self number", 88, 8, 12345 },
	{ "reserved byte", 81, 1, 1 },
};

static void test_inode_regular(void **state)
{
	inode_cases(*state, tpl.f, file_fields,
	    sizeof(file_fields) / sizeof(file_fields[0]));
}

static void test_inode_sparse(void **state)
{
	static const struct ifield t[] = {
		{ "height 1", 80, 1, 1 },
		{ "height 6", 80, 1, 6 },
		{ "size past 2^48", 16, 8, (1ull << 48) + 1 },
		{ "size 0", 16, 8, 0 },
	};
	inode_cases(*state, tpl.g, t, sizeof(t) / sizeof(t[0]));
}

static void test_inode_directory(void **state)
{
	static const struct ifield t[] = {
		{ "type regular", 0, 4, S_IFREG | 0644 },
		{ "type symlink", 0, 4, S_IFLNK | 0777 },
		{ "size not whole blocks", 16, 8, 5000 },
		{ "size 2^62", 16, 8, 1ull << 62 },
		{ "size 0", 16, 8, 0 },
		{ "height 3", 80, 1, 3 },
		{ "parent itself", 104, 8, 0 },
		{ "parent huge", 104, 8, 1ull << 60 },
		{ "parent a file", 104, 8, 0 },
		{ "nlink 0", 4, 4, 0 },
		{ "flags inline", 68, 4, WAFL_INO_INLINE },
	};
	struct ifield tab[sizeof(t) / sizeof(t[0])];

	memcpy(tab, t, sizeof(t));
	tab[6].val = tpl.d;
	tab[8].val = tpl.f;
	inode_cases(*state, tpl.d, tab, sizeof(tab) / sizeof(tab[0]));
}

static void test_inode_symlink(void **state)
{
	static const struct ifield t[] = {
		{ "size 385", 16, 8, 385 },
		{ "size 384", 16, 8, 384 },
		{ "size 0", 16, 8, 0 },
		{ "not inline", 68, 4, 0 },
		{ "height 2", 80, 1, 2 },
		{ "type regular", 0, 4, S_IFREG | 0644 },
		{ "type directory", 0, 4, S_IFDIR | 0755 },
	};
	inode_cases(*state, tpl.s, t, sizeof(t) / sizeof(t[0]));
}

static void test_inode_root_dir(void **state)
{
	static const struct ifield t[] = {
		{ "type regular", 0, 4, S_IFREG | 0644 },
		{ "free", 0, 4, 0 },
		{ "parent other", 104, 8, 0 },
		{ "nlink 1", 4, 4, 1 },
	};
	struct ifield tab[sizeof(t) / sizeof(t[0])];

	memcpy(tab, t, sizeof(t));
	tab[2].val = tpl.sub;
	inode_cases(*state, WAFL_INO_ROOTDIR, tab,
	    sizeof(tab) / sizeof(tab[0]));
}

static void test_inode_reserved(void **state)
{
	static const struct ifield bitmap[] = {
		{ "size 0", 16, 8, 0 },
		{ "size 2^50", 16, 8, 1ull << 50 },
		{ "size 2^40", 16, 8, 1ull << 40 },
		{ "type directory", 0, 4, S_IFDIR | 0755 },
		{ "free", 0, 4, 0 },
		{ "height 4", 80, 1, 4 },
	};
	static const struct ifield snaptab[] = {
		{ "size 2^40", 16, 8, 1ull << 40 },
		{ "size 2^20", 16, 8, 1ull << 20 },
		{ "size 100", 16, 8, 100 },
		{ "type directory", 0, 4, S_IFDIR | 0755 },
		{ "free", 0, 4, 0 },
	};
	static const struct ifield summary[] = {
		{ "size 2^50", 16, 8, 1ull << 50 },
		{ "size 2^40", 16, 8, 1ull << 40 },
		{ "type symlink", 0, 4, S_IFLNK | 0777 },
		{ "free", 0, 4, 0 },
	};
	inode_cases(*state, WAFL_INO_BITMAP, bitmap,
	    sizeof(bitmap) / sizeof(bitmap[0]));
	inode_cases(*state, WAFL_INO_SNAPTABLE, snaptab,
	    sizeof(snaptab) / sizeof(snaptab[0]));
	inode_cases(*state, WAFL_INO_SUMMARY, summary,
	    sizeof(summary) / sizeof(summary[0]));
}

/* Start a case again from the template images. */
static void reset(struct hcase *c)
{
	if (c->raid != NULL)
		raid_close(c->raid);
	c->raid = NULL;
	for (unsigned d = 0; d < NDISKS; d++)
		assert_int_equal(tl_copy_file(tpl.paths[d], c->paths[d]), 0);
	(void)unlink(c->logpath);
	open_raid(c);
}

/* Inline data where only symlinks keep it: a directory, a regular file,
 * a device node's worth (flags and size rewritten together). */
static void test_inline_elsewhere(void **state)
{
	struct hcase *c = *state;
	const struct {
		uint64_t *ino;
		uint64_t size;
		bool must_catch;
	} t[] = {
		{ &tpl.d, 100, true },
		{ &tpl.sub, 0, true },
		{ &tpl.f, 300, false },
		{ &tpl.x, 0, false },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct hx h;
		struct outcome o;

		reset(c);
		hx_load(&h, c->raid);
		uint32_t ioff = hx_inode(&h, *t[i].ino);
		uint8_t *p = hx_last(&h)->buf + ioff;
		fl_put_le32(p + 68, WAFL_INO_INLINE);
		fl_put_le64(p + 16, t[i].size);
		p[80] = 0;
		hx_seal(&h);
		exercise(c, &o);
		if (t[i].must_catch && o.mount_rc == 0 && o.check_rc == 0)
			fail_msg("inline inode %llu: checked clean",
			    (unsigned long long)*t[i].ino);
	}
}

/* The inode file's own inode and the root block's counters. */
static void test_root_block(void **state)
{
	struct hcase *c = *state;
	static const struct ifield t[] = {
		{ "inode file size 2^62", 128 + 16, 8, 1ull << 62 },
		{ "inode file size 0", 128 + 16, 8, 0 },
		{ "inode file size 100", 128 + 16, 8, 100 },
		{ "inode file height 3", 128 + 80, 1, 3 },
		{ "inode file height 0", 128 + 80, 1, 0 },
		{ "inode file type dir", 128, 4, S_IFDIR | 0755 },
		{ "blocks_used max", 16, 8, UINT64_MAX },
		{ "generation", 8, 8, 12345 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct hx h;
		if (i > 0)
			reset(c);
		hx_load(&h, c->raid);
		hx_root(&h);
		tl_put_field(h.node[0].buf + t[i].off, t[i].size, t[i].val);
		hx_seal(&h);
		assert_caught(c, t[i].what);
	}
}

/* hx_file for the inode file itself (inode 0 lives in the root block). */
static void hx_ifile(struct hx *h, unsigned level, uint64_t fbn)
{
	hx_root(h);
	assert_true(hx_tree(h, 0, 128, level, fbn));
}

/* The next-inode hint is only a hint: one past the inode numbers ialloc
 * gives must not make creates fail. */
static void test_next_ino_hint(void **state)
{
	struct hcase *c = *state;
	static const uint64_t hints[] = { UINT64_MAX, 1ull << 40, 0, 5 };

	for (unsigned i = 0; i < sizeof(hints) / sizeof(hints[0]); i++) {
		struct hx h;
		wafl_vol_t *v;
		struct wafl_obj root, o;
		struct wafl_attr a;

		reset(c);
		hx_load(&h, c->raid);
		hx_root(&h);
		fl_put_le64(h.node[0].buf + 32, hints[i]);
		hx_seal(&h);
		assert_int_equal(wafl_mount(c->raid, &c->mo, &v), 0);
		assert_int_equal(wafl_root(v, &root), 0);
		for (int k = 0; k < 3; k++) {
			char name[16];
			snprintf(name, sizeof(name), "new%d", k);
			assert_int_equal(wafl_create(v, &root_cred, &root,
			    name, WAFL_GUARDED, NULL, 0, &o, &a, NULL), 0);
			assert_true(o.ino >= WAFL_INO_FIRST_USER &&
			    o.ino < WAFL_INO_LIMIT);
		}
		assert_int_equal(wafl_unmount(v), 0);
	}
}

/* ------------------------------------------------------ the orphan list */

/* The root block's orphan list rewritten: its count, then nent entries
 * (nent may pass the count: what lies past it). */
static void rewrite_orphans(struct hcase *c, uint32_t count,
    const uint64_t *ent, unsigned nent)
{
	struct hx h;

	hx_load(&h, c->raid);
	hx_root(&h);
	fl_put_le32(h.node[0].buf + 40, count);
	for (unsigned i = 0; i < nent; i++)
		fl_put_le64(h.node[0].buf + 640 + 8 * i, ent[i]);
	hx_seal(&h);
}

/* Inodes the inode file of the newest root has room for. */
static uint64_t ifile_inodes(struct hcase *c)
{
	struct hx h;

	hx_load(&h, c->raid);
	hx_root(&h);
	return fl_get_le64(h.node[0].buf + 128 + 16) / WAFL_INODE_SIZE;
}

/* The entries the decoder refuses: the mount fails, nothing mounted. */
static void test_orphan_list_refused(void **state)
{
	struct hcase *c = *state;
	/* 256 distinct numbers; zero but for the last slot. */
	static uint64_t full[WAFL_ORPHAN_MAX], last[WAFL_ORPHAN_MAX];
	const uint64_t f = tpl.f, g = tpl.g;
	const struct {
		const char *what;
		uint32_t count;
		const uint64_t *ent;
		unsigned nent;
		uint8_t tail;	/* nonzero: the root block's last byte */
	} t[] = {
		{ "count past the list", WAFL_ORPHAN_MAX + 1, full,
		    WAFL_ORPHAN_MAX, 0 },
		{ "count 2^32-1", UINT32_MAX, full, WAFL_ORPHAN_MAX, 0 },
		{ "entry 0", 1, (const uint64_t[]){ 0 }, 1, 0 },
		{ "entry 2 (root directory)", 1,
		    (const uint64_t[]){ WAFL_INO_ROOTDIR }, 1, 0 },
		{ "entry 15", 2, (const uint64_t[]){ f, 15 }, 2, 0 },
		{ "entry 2^40", 1, (const uint64_t[]){ 1ull << 40 }, 1, 0 },
		{ "entry 2^64-1", 1, (const uint64_t[]){ UINT64_MAX }, 1, 0 },
		{ "duplicate entries", 3, (const uint64_t[]){ g, 5000, g },
		    3, 0 },
		{ "entry past the count", 1, (const uint64_t[]){ g, 5000 },
		    2, 0 },
		{ "last slot with count 0", 0, last, WAFL_ORPHAN_MAX, 0 },
		{ "reserved tail", 0, NULL, 0, 1 },
	};

	for (unsigned i = 0; i < WAFL_ORPHAN_MAX; i++)
		full[i] = 100000 + i;
	last[WAFL_ORPHAN_MAX - 1] = 5000;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		wafl_vol_t *v = NULL;
		int rc;

		reset(c);
		rewrite_orphans(c, t[i].count, t[i].ent, t[i].nent);
		if (t[i].tail != 0) {
			struct hx h;
			hx_load(&h, c->raid);
			hx_root(&h);
			h.node[0].buf[WAFL_BLOCK_SIZE - 1] = t[i].tail;
			hx_seal(&h);
		}
		tl_log_capture_start(FL_LOG_INFO);
		rc = wafl_mount(c->raid, &c->mo, &v);
		size_t said = tl_log_count_with("mount failed", NULL);
		tl_log_capture_stop();
		if (rc == 0) {
			wafl_abandon(v);
			fail_msg("orphan list %s: mounted", t[i].what);
		}
		assert_null(v);
		if (rc != -FL_ECORRUPT)
			fail_msg("orphan list %s: mount gave %d, not corrupt",
			    t[i].what, rc);
		if (said == 0)
			fail_msg("orphan list %s: refused without a word",
			    t[i].what);
	}
}

/* Inodes in use as FSSTAT counts them. */
static uint64_t files_used(wafl_vol_t *v)
{
	struct wafl_fsstat st;

	assert_int_equal(wafl_statfs(v, &st), 0);
	return st.tfiles - st.ffiles;
}

/* The volume checked: W8 errors and errors in all. */
static void check_counts(wafl_vol_t *v, uint64_t *w8, uint64_t *all,
    char *first, size_t len)
{
	struct wafl_check_result res;
	struct wafl_check_detail det;
	int rc = wafl_check_detail(v, &res, &det);

	assert_true(rc == 0 || rc == -FL_ECORRUPT);
	*w8 = det.w_errors[8];
	*all = res.errors;
	snprintf(first, len, "%s", res.first_error);
}

/*
 * A list naming inodes the mount finds free or linked: the decoder cannot
 * know (the inode file is not read yet), so the mount goes on.  The
 * writable mount drops each such entry (logged), frees nothing of it and
 * counts no inode freed; the check of the root that still lists them
 * reports each (W8); read-only, nothing is dropped and the check reports
 * them all the same.  After a sync the list is gone and the check clean.
 * verify (if any) runs after the mount and after the sync.
 */
static void orphans_dropped(struct hcase *c, const char *what,
    const uint64_t *ent, unsigned n, const char *why,
    void (*verify)(wafl_vol_t *v, const char *when))
{
	struct wafl_mount_opts ro = c->mo;
	struct wafl_stats st;
	wafl_vol_t *v;
	uint64_t w8, all, used;
	char first[256];

	rewrite_orphans(c, n, ent, n);

	/* Read-only: the list as it is on disk, nothing retried. */
	ro.readonly = true;
	assert_int_equal(wafl_mount(c->raid, &ro, &v), 0);
	used = files_used(v);
	check_counts(v, &w8, &all, first, sizeof(first));
	if (w8 != n || all != n || strstr(first, "orphan list names") == NULL)
		fail_msg("%s, read-only: %llu W8 errors, %llu in all, not %u "
		    "(first: %s)", what, (unsigned long long)w8,
		    (unsigned long long)all, n, first);
	assert_int_equal(wafl_unmount(v), 0);

	tl_log_capture_start(FL_LOG_INFO);
	assert_int_equal(wafl_mount(c->raid, &c->mo, &v), 0);
	size_t dropped = tl_log_count_with("the orphan list names inode",
	    why, "nothing of it freed", NULL);
	tl_log_capture_stop();
	if (verify != NULL)
		verify(v, "after the mount");
	if (dropped != n)
		fail_msg("%s: %zu entries dropped (%s), not %u", what,
		    dropped, why, n);
	wafl_get_stats(v, &st);
	assert_int_equal(st.orphans, 0);
	if (files_used(v) != used)
		fail_msg("%s: inodes in use %llu after the mount, %llu before",
		    what, (unsigned long long)files_used(v),
		    (unsigned long long)used);
	/* The durable root still lists them. */
	check_counts(v, &w8, &all, first, sizeof(first));
	if (w8 != n || all != n)
		fail_msg("%s: %llu W8 errors, %llu in all, not %u (first: %s)",
		    what, (unsigned long long)w8, (unsigned long long)all, n,
		    first);
	assert_int_equal(wafl_sync(v), 0);
	if (verify != NULL)
		verify(v, "after the mount and a sync");
	check_counts(v, &w8, &all, first, sizeof(first));
	if (all != 0)
		fail_msg("%s: after a sync: %llu errors (first: %s)", what,
		    (unsigned long long)all, first);
	assert_int_equal(files_used(v), used);
	assert_int_equal(wafl_unmount(v), 0);
}

/* Entries naming free inodes: one removed (its slot wiped), past the
 * inode file, the last number there is, and a full list of them. */
static void test_orphan_list_free(void **state)
{
	struct hcase *c = *state;
	static uint64_t full[WAFL_ORPHAN_MAX];
	struct wafl_obj root, o;
	struct wafl_attr a;
	wafl_vol_t *v;
	uint64_t victim, past;

	/* A file made and removed: a free inode inside the inode file. */
	assert_int_equal(wafl_mount(c->raid, &c->mo, &v), 0);
	assert_int_equal(wafl_root(v, &root), 0);
	assert_int_equal(wafl_create(v, &root_cred, &root, "victim",
	    WAFL_GUARDED, NULL, 0, &o, &a, NULL), 0);
	victim = o.ino;
	assert_int_equal(wafl_remove(v, &root_cred, &root, "victim", NULL),
	    0);
	assert_int_equal(wafl_unmount(v), 0);
	assert_true(victim < ifile_inodes(c));
	orphans_dropped(c, "a removed inode", &victim, 1, "which is free",
	    NULL);

	reset(c);
	past = ifile_inodes(c) + 100;
	orphans_dropped(c, "past the inode file", &past, 1, "which is free",
	    NULL);

	reset(c);
	past = (1ull << 40) - 1;
	orphans_dropped(c, "inode 2^40-1", &past, 1, "which is free", NULL);

	reset(c);
	for (unsigned i = 0; i < WAFL_ORPHAN_MAX; i++)
		full[i] = ifile_inodes(c) + 1000 + 7 * i;
	orphans_dropped(c, "a full list past the inode file", full,
	    WAFL_ORPHAN_MAX, "which is free", NULL);
}

/* What a file holds, read whole through the operations. */
static size_t read_file(wafl_vol_t *v, const char *const *path,
    uint8_t *buf, size_t cap, const char *when)
{
	struct wafl_obj o, d;
	struct wafl_attr a;
	size_t len = 0;
	bool eof = false;

	assert_int_equal(wafl_root(v, &d), 0);
	for (unsigned i = 0; path[i] != NULL; i++) {
		int rc = wafl_lookup(v, &root_cred, &d, path[i], &o, &a, NULL);
		if (rc != 0)
			fail_msg("%s: lookup %s: %s", when, path[i],
			    fl_strerror(rc));
		d = o;
	}
	while (!eof) {
		uint32_t got;
		int rc;
		assert_true(len < cap);
		rc = wafl_read(v, &root_cred, &o, len,
		    (uint32_t)FL_MIN(cap - len, 65536), buf + len, &got,
		    &eof, &a);
		if (rc != 0)
			fail_msg("%s: read %s at %zu: %s", when, path[0], len,
			    fl_strerror(rc));
		len += got;
	}
	return len;
}

/* The linked files named by the list, as the template has them. */
static const char *const linked_f[] = { "f", NULL };
static const char *const linked_x[] = { "sub", "dir2", "x", NULL };
static uint8_t want_f[1u << 20], want_x[8192], got_buf[1u << 20];
static size_t want_nf, want_nx;

static void linked_verify(wafl_vol_t *v, const char *when)
{
	if (read_file(v, linked_f, got_buf, sizeof(got_buf), when) !=
	    want_nf || memcmp(got_buf, want_f, want_nf) != 0)
		fail_msg("%s: f does not read back as it was", when);
	if (read_file(v, linked_x, got_buf, sizeof(got_buf), when) !=
	    want_nx || memcmp(got_buf, want_x, want_nx) != 0)
		fail_msg("%s: x does not read back as it was", when);
}

/*
 * Entries naming linked inodes (nlink > 0): a file with data, one in a
 * subdirectory that the snapshots share, a directory.  Dropped at the
 * mount with nothing of them freed: the files read back as before after
 * the mount and after a sync, then after new data took the space blocks
 * freed since could have left, and the check stays clean.
 */
static void test_orphan_list_linked(void **state)
{
	struct hcase *c = *state;
	struct wafl_mount_opts ro = c->mo;
	const uint64_t ent[] = { tpl.f, tpl.x, tpl.d };
	struct wafl_check_result res;
	struct wafl_obj root, o;
	struct wafl_attr a;
	wafl_vol_t *v;

	ro.readonly = true;
	assert_int_equal(wafl_mount(c->raid, &ro, &v), 0);
	want_nf = read_file(v, linked_f, want_f, sizeof(want_f), "template");
	want_nx = read_file(v, linked_x, want_x, sizeof(want_x), "template");
	assert_int_equal(want_nf, 600u << 10);
	assert_int_equal(want_nx, 5000);
	assert_int_equal(wafl_unmount(v), 0);

	orphans_dropped(c, "linked inodes", ent, 3, "which is linked",
	    linked_verify);

	/* The list is empty now; new data takes the free space. */
	assert_int_equal(wafl_mount(c->raid, &c->mo, &v), 0);
	linked_verify(v, "remounted");
	assert_int_equal(wafl_root(v, &root), 0);
	assert_int_equal(wafl_create(v, &root_cred, &root, "filler",
	    WAFL_GUARDED, NULL, 0, &o, &a, NULL), 0);
	for (uint64_t off = 0; off < (2u << 20); off += 65536) {
		enum wafl_stable stable;
		tl_fill_pattern(got_buf, 65536, 77 + off);
		assert_int_equal(wafl_write(v, &root_cred, &o, off, 65536,
		    got_buf, WAFL_UNSTABLE, &stable, NULL, NULL), 0);
		if (off % (512u << 10) == 0)
			assert_int_equal(wafl_sync(v), 0);
	}
	assert_int_equal(wafl_sync(v), 0);
	linked_verify(v, "after 2 MiB written");
	if (wafl_check(v, &res) != 0)
		fail_msg("linked inodes: after the writes: %s",
		    res.first_error);
	assert_int_equal(wafl_unmount(v), 0);
}

/* A pointer of an indirect block rewritten, then resealed. */
enum bp_kind {
	BP_PAST_END, BP_FSINFO, BP_STALE_ANCESTOR, BP_OTHER_VALID,
	BP_FUTURE_BIRTH, BP_FLAGS, BP_SELF, BP_HOLE_WITH_BIRTH,
	BP_NKINDS
};

static uint8_t other_bp[WAFL_BP_SIZE];

static void find_other_bp(struct hcase *c);

static void rewrite_bp(struct hx *h, uint8_t *p, enum bp_kind k,
    uint64_t nvbns)
{
	struct hx_node *parent = &h->node[h->n - 2];

	switch (k) {
	case BP_PAST_END:
		fl_put_le64(p, nvbns + 7);
		break;
	case BP_FSINFO:
		fl_put_le64(p, 1);
		break;
	case BP_STALE_ANCESTOR:
		/* The parent's own address: its checksum cannot match. */
		fl_put_le64(p, parent->vbn);
		break;
	case BP_OTHER_VALID:
		/* A block that verifies, but another file's: x's first data
		 * block, its pointer copied whole (W5: named twice). */
		memcpy(p, other_bp, WAFL_BP_SIZE);
		break;
	case BP_FUTURE_BIRTH:
		fl_put_le64(p + 8, h->fsi.gen + 100);
		break;
	case BP_FLAGS:
		fl_put_le32(p + 20, 1);
		break;
	case BP_SELF:
		/* A slot pointing at the block that holds it. */
		fl_put_le64(p, h->node[h->n - 1].vbn);
		break;
	case BP_HOLE_WITH_BIRTH:
		fl_put_le64(p, 0);
		break;
	default:
		break;
	}
}

static void find_other_bp(struct hcase *c)
{
	struct hx h;

	hx_load(&h, c->raid);
	uint32_t ioff = hx_inode(&h, tpl.x);
	memcpy(other_bp, hx_last(&h)->buf + ioff + 128, WAFL_BP_SIZE);
	assert_true(fl_get_le64(other_bp) != 0);
}

static void bp_cases(struct hcase *c, uint64_t ino, unsigned level,
    uint64_t fbn, unsigned slot)
{
	for (int k = 0; k < BP_NKINDS; k++) {
		struct hx h;
		char what[96];

		reset(c);
		find_other_bp(c);
		hx_load(&h, c->raid);
		if (ino == WAFL_INO_INODEFILE)
			hx_ifile(&h, level, fbn);
		else
			hx_file(&h, ino, level, fbn);
		/* The pointer in slot `slot` of that indirect block; a
		 * dummy last node stands for the child. */
		uint8_t *p = hx_last(&h)->buf + slot * WAFL_BP_SIZE;
		h.n++;
		h.node[h.n - 1] = h.node[h.n - 2];
		rewrite_bp(&h, p, (enum bp_kind)k, nvbns_of(c->raid));
		h.n--;
		hx_seal(&h);
		snprintf(what, sizeof(what), "inode %llu level %u fbn %llu "
		    "slot %u kind %d", (unsigned long long)ino, level,
		    (unsigned long long)fbn, slot, k);
		assert_caught(c, what);
	}
}

static void test_indirect_file(void **state)
{
	/* f: height 1; its level-1 block 0 maps data blocks 0..127. */
	bp_cases(*state, tpl.f, 1, 0, 3);
	/* g: height 2; level-2 block 0, slot 0 is the level-1 block. */
	bp_cases(*state, tpl.g, 2, 0, 0);
}

static void test_indirect_inode_file(void **state)
{
	struct hcase *c = *state;
	struct hx h;

	/* The inode file's tree: its height and a pointer of it. */
	hx_load(&h, c->raid);
	hx_root(&h);
	unsigned height = h.node[0].buf[128 + 80];
	if (height > 0)
		bp_cases(c, WAFL_INO_INODEFILE, 1, 0, 0);
	else
		fail_msg("the inode file is expected to have height >= 1");
	/* Top pointer 0 of the inode file, in the root block. */
	for (int k = 0; k < BP_NKINDS; k++) {
		if (k == BP_STALE_ANCESTOR || k == BP_SELF)
			continue;
		reset(c);
		find_other_bp(c);
		hx_load(&h, c->raid);
		hx_root(&h);
		uint8_t *p = h.node[0].buf + 128 + 128;
		h.n = 2;
		h.node[1] = h.node[0];
		rewrite_bp(&h, p, (enum bp_kind)k, nvbns_of(c->raid));
		h.n = 1;
		hx_seal(&h);
		assert_caught(c, "inode file top pointer");
	}
}

/* ----------------------------------------------------- directories */

struct dfield {
	const char *what;
	uint32_t off, size;
	uint64_t val;
};

static void dir_cases(struct hcase *c, uint64_t ino, uint64_t fbn,
    const struct dfield *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct hx h;
		char what[128];

		reset(c);
		hx_load(&h, c->raid);
		hx_file(&h, ino, 0, fbn);
		tl_put_field(hx_last(&h)->buf + t[i].off, t[i].size, t[i].val);
		hx_seal(&h);
		snprintf(what, sizeof(what), "dir %llu block %llu %s",
		    (unsigned long long)ino, (unsigned long long)fbn,
		    t[i].what);
		assert_caught(c, what);
	}
}

static void test_dir_header(void **state)
{
	static const struct dfield t[] = {
		{ "root past nblocks", 16, 8, 1000 },
		{ "root 0", 16, 8, 0 },
		{ "root huge", 16, 8, 1ull << 40 },
		{ "height 0", 24, 4, 0 },
		{ "height 200", 24, 4, 200 },
		{ "height 3", 24, 4, 3 },
		{ "count max", 32, 8, UINT64_MAX },
		{ "nblocks huge", 40, 8, 1ull << 40 },
		{ "nblocks 1", 40, 8, 1 },
		{ "free head self", 48, 8, 1 },
		{ "free head huge", 48, 8, 1ull << 33 },
		{ "nfree huge", 56, 8, 1ull << 40 },
		{ "blksize", 12, 4, 512 },
	};
	dir_cases(*state, tpl.d, 0, t, sizeof(t) / sizeof(t[0]));
	dir_cases(*state, tpl.sub, 0, t, sizeof(t) / sizeof(t[0]));
}

/* Nodes of the index: the root of d's two-level index and its leaves. */
static void test_dir_nodes(void **state)
{
	struct hcase *c = *state;
	struct hx h;

	hx_load(&h, c->raid);
	hx_file(&h, tpl.d, 0, 0);
	uint64_t rootfbn = fl_get_le64(hx_last(&h)->buf + 16);
	uint32_t height = fl_get_le32(hx_last(&h)->buf + 24);
	assert_true(height >= 2);
	hx_load(&h, c->raid);
	hx_file(&h, tpl.d, 0, rootfbn);
	uint32_t child0 = fl_get_le32(hx_last(&h)->buf + 32 + 8);
	uint32_t child1 = fl_get_le32(hx_last(&h)->buf + 32 + 12 + 8);
	const struct dfield internal[] = {
		{ "count max", 18, 2, 0xffff },
		{ "count 0", 18, 2, 0 },
		{ "used max", 20, 2, 0xffff },
		{ "level 9", 16, 2, 9 },
		{ "self", 8, 8, 77 },
		{ "child 0 self", 32 + 8, 4, rootfbn },
		{ "child 0 header", 32 + 8, 4, 0 },
		{ "child 0 huge", 32 + 8, 4, 0xfffffff0u },
		{ "child 1 = child 0", 32 + 12 + 8, 4, child0 },
		{ "separator 1 max", 32 + 12, 8, UINT64_MAX },
		{ "separator 1 zero", 32 + 12, 8, 0 },
	};
	dir_cases(c, tpl.d, rootfbn, internal,
	    sizeof(internal) / sizeof(internal[0]));
	const struct dfield leaf[] = {
		{ "count max", 18, 2, 0xffff },
		{ "count 1", 18, 2, 1 },
		{ "used max", 20, 2, 0xffff },
		{ "used 4064", 20, 2, 4064 },
		{ "level 1", 16, 2, 1 },
		{ "namelen 255", 32 + 17, 1, 255 },
		{ "namelen 0", 32 + 17, 1, 0 },
		{ "key 0", 32, 8, 0 },
		{ "key max", 32, 8, UINT64_MAX },
		{ "ino 0", 32 + 8, 8, 0 },
		{ "ino 1 (bitmap)", 32 + 8, 8, 1 },
		{ "ino 3 (snapshot table)", 32 + 8, 8, 3 },
		{ "ino huge", 32 + 8, 8, 1ull << 62 },
		{ "ino the directory", 32 + 8, 8, tpl.d },
		{ "ino the root", 32 + 8, 8, WAFL_INO_ROOTDIR },
		{ "type 200", 32 + 16, 1, 200 },
		{ "type dir", 32 + 16, 1, WAFL_DIR },
		{ "name with slash", 32 + 18, 1, '/' },
		{ "name with NUL", 32 + 18, 1, 0 },
		{ "name \"..\" (n0xx: len 2)", 32 + 17, 4, 0x2e2e02 },
		{ "magic free", 0, 8, 0x3146524944524c46ull },
	};
	dir_cases(c, tpl.d, child0, leaf, sizeof(leaf) / sizeof(leaf[0]));
	dir_cases(c, tpl.d, child1, leaf, sizeof(leaf) / sizeof(leaf[0]));
}

/* An entry that names a reserved inode or a directory as a file, in the
 * small directory "sub" (whose root is a leaf). */
static void test_dir_entry_targets(void **state)
{
	struct hcase *c = *state;
	struct hx h;

	hx_load(&h, c->raid);
	hx_file(&h, tpl.sub, 0, 0);
	uint64_t rootfbn = fl_get_le64(hx_last(&h)->buf + 16);
	const struct dfield t[] = {
		{ "ino 0 (inode file)", 32 + 8, 8, 0 },
		{ "ino 1 (bitmap)", 32 + 8, 8, 1 },
		{ "ino 4 (summary)", 32 + 8, 8, 4 },
		{ "ino 7 (reserved, free)", 32 + 8, 8, 7 },
		{ "ino root", 32 + 8, 8, WAFL_INO_ROOTDIR },
		{ "ino itself", 32 + 8, 8, tpl.sub },
		{ "ino a file, type dir", 32 + 8, 8, tpl.f },
		{ "type file", 32 + 16, 1, WAFL_REG },
		{ "type 0", 32 + 16, 1, 0 },
		{ "namelen 200", 32 + 17, 1, 200 },
	};
	dir_cases(c, tpl.sub, rootfbn, t, sizeof(t) / sizeof(t[0]));
}

/* Find the leaf entry called name in directory ino: its block and the
 * entry's offset in it. */
static bool find_entry(struct hcase *c, uint64_t ino, const char *name,
    uint64_t *fbn_out, uint32_t *off_out)
{
	size_t nl = strlen(name);

	for (uint64_t fbn = 1; fbn < 16; fbn++) {
		struct hx h;
		hx_load(&h, c->raid);
		uint32_t ioff = hx_inode(&h, ino);
		uint64_t size = fl_get_le64(hx_last(&h)->buf + ioff + 16);
		if (fbn * WAFL_BLOCK_SIZE >= size)
			break;
		hx_file(&h, ino, 0, fbn);
		uint8_t *b = hx_last(&h)->buf;
		if (memcmp(b, "FLRDIRL1", 8) != 0)
			continue;
		uint32_t off = 32, count = fl_get_le16(b + 18);
		for (uint32_t e = 0; e < count && off + 18 <= WAFL_BLOCK_SIZE;
		    e++) {
			uint32_t len = b[off + 17];
			if (len == nl && memcmp(b + off + 18, name, nl) == 0) {
				*fbn_out = fbn;
				*off_out = off;
				return true;
			}
			off += 18 + len;
		}
	}
	return false;
}

/* An entry naming a reserved inode, then the operations that change what
 * an entry names: remove, rename over it, link.  The reserved inode must
 * come out of it untouched: the volume still mounts and the special
 * files are whole. */
static void test_dir_entry_reserved_ops(void **state)
{
	struct hcase *c = *state;
	static const uint64_t targets[] = {
		WAFL_INO_BITMAP, WAFL_INO_SNAPTABLE, WAFL_INO_SUMMARY,
		WAFL_INO_ROOTDIR, WAFL_INO_INODEFILE, 9,
	};

	for (unsigned i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		for (unsigned op = 0; op < 3; op++) {
			struct hx h;
			uint64_t fbn = 0;
			uint32_t off = 0;
			wafl_vol_t *v;
			struct wafl_obj root, d, o;
			struct wafl_attr a;

			reset(c);
			assert_true(find_entry(c, tpl.d, "n005", &fbn, &off));
			hx_load(&h, c->raid);
			hx_file(&h, tpl.d, 0, fbn);
			fl_put_le64(hx_last(&h)->buf + off + 8, targets[i]);
			hx_seal(&h);
			assert_int_equal(wafl_mount(c->raid, &c->mo, &v), 0);
			assert_int_equal(wafl_root(v, &root), 0);
			assert_int_equal(wafl_lookup(v, &root_cred, &root, "d",
			    &d, &a, NULL), 0);
			int lrc = wafl_lookup(v, &root_cred, &d, "n005", &o, &a,
			    NULL);
			if (op == 0)
				(void)wafl_remove(v, &root_cred, &d, "n005",
				    NULL);
			else if (op == 1)
				(void)wafl_rename(v, &root_cred, &d, "n006", &d,
				    "n005", NULL, NULL);
			else
				(void)wafl_rmdir(v, &root_cred, &d, "n005",
				    NULL);
			(void)wafl_sync(v);
			wafl_abandon(v);
			raid_close(c->raid);
			c->raid = NULL;
			open_raid(c);
			/* The special files are whole: mount, and the
			 * check finds the entry (W8) and nothing else. */
			struct outcome o2;
			exercise_light = true;
			exercise(c, &o2);
			exercise_light = false;
			if (o2.mount_rc != 0)
				fail_msg("entry naming inode %llu, op %u: the "
				    "volume no longer mounts (%d)",
				    (unsigned long long)targets[i], op,
				    o2.mount_rc);
			if (o2.det.w_errors[1] != 0 || o2.det.w_errors[4] != 0)
				fail_msg("entry naming inode %llu, op %u: %s",
				    (unsigned long long)targets[i], op,
				    o2.res.first_error);
			/* No handle to a reserved inode leaves wafl. */
			if (lrc == 0)
				fail_msg("an entry naming inode %llu looks up",
				    (unsigned long long)targets[i]);
		}
	}
}

/* A header that counts no entries in a directory that has some: RMDIR
 * must not take it for empty (its entries' objects would be orphaned). */
static void test_dir_count_lies(void **state)
{
	struct hcase *c = *state;
	static const uint64_t *const dirs[] = { &tpl.sub, &tpl.d };
	static const char *const names[] = { "sub", "d" };

	for (unsigned i = 0; i < 2; i++) {
		struct hx h;
		wafl_vol_t *v;
		struct wafl_obj root;

		reset(c);
		hx_load(&h, c->raid);
		hx_file(&h, *dirs[i], 0, 0);
		fl_put_le64(hx_last(&h)->buf + 32, 0);	/* count */
		hx_seal(&h);
		assert_int_equal(wafl_mount(c->raid, &c->mo, &v), 0);
		assert_int_equal(wafl_root(v, &root), 0);
		int rc = wafl_rmdir(v, &root_cred, &root, names[i], NULL);
		if (rc == 0)
			fail_msg("rmdir of %s, whose header counts no entries "
			    "but which has some, succeeded", names[i]);
		wafl_abandon(v);
		raid_close(c->raid);
		c->raid = NULL;
		open_raid(c);
	}
}

/* --------------------------------------------------- snapshot table */

static void test_snapshot_table(void **state)
{
	struct hcase *c = *state;
	struct hx h;
	uint64_t nv = nvbns_of(c->raid);

	hx_load(&h, c->raid);
	uint64_t gen = h.fsi.gen;
	const struct dfield t[] = {
		{ "gen future", 0, 8, gen + 1000 },
		{ "gen max", 0, 8, UINT64_MAX },
		{ "root past end", 16, 8, nv + 1 },
		{ "root fsinfo", 16, 8, 1 },
		{ "root birth future", 24, 8, gen + 50 },
		{ "root flags", 36, 4, 1 },
		{ "name unterminated", 64 + 63, 1, 'x' },
		{ "name empty", 64, 1, 0 },
		{ "name with slash", 64, 1, '/' },
		{ "id of the other", 48, 8, 0 },
		{ "name of the other", 64 + 1, 1, '2' },
		{ "free slot with bytes", 128 + 64 + 10, 1, 'q' },
	};
	struct dfield tab[sizeof(t) / sizeof(t[0])];

	memcpy(tab, t, sizeof(t));
	/* Entry 1's id, for "id of the other". */
	hx_file(&h, WAFL_INO_SNAPTABLE, 0, 0);
	tab[9].val = fl_get_le64(hx_last(&h)->buf + 128 + 48);
	dir_cases(c, WAFL_INO_SNAPTABLE, 0, tab, sizeof(tab) / sizeof(tab[0]));
}

/* A snapshot's own tree made hostile (its pointer in the table resealed):
 * reading it, listing it, rolling back to it.  Its special inodes and
 * counters are what a rollback makes the active file system's. */
static void test_snapshot_tree(void **state)
{
	struct hcase *c = *state;
	const struct {
		const char *what;
		uint64_t ino;		/* UINT64_MAX: the root block */
		uint32_t off, size;
		uint64_t val;
		bool allowed;	/* no violation: unused as a snapshot, or a
				   hint */
	} t[] = {
		{ "bitmap size 2^40", WAFL_INO_BITMAP, 16, 8, 1ull << 40,
		  false },
		{ "bitmap size 0", WAFL_INO_BITMAP, 16, 8, 0, false },
		{ "bitmap a directory", WAFL_INO_BITMAP, 0, 4, S_IFDIR | 0755,
		  false },
		{ "snapshot table size 2^40", WAFL_INO_SNAPTABLE, 16, 8,
		  1ull << 40, false },
		{ "summary size 2^40", WAFL_INO_SUMMARY, 16, 8, 1ull << 40,
		  true },
		{ "file size 2^62", 16, 16, 8, 1ull << 62, false },
		{ "next_ino max", UINT64_MAX, 32, 8, UINT64_MAX, true },
		{ "inode file size 2^62", UINT64_MAX, 128 + 16, 8, 1ull << 62,
		  false },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct hx h;
		unsigned rootnode;
		wafl_vol_t *v;

		reset(c);
		hx_load(&h, c->raid);
		uint32_t ioff = hx_snap_inode(&h, 1, t[i].ino == UINT64_MAX ?
		    16 : t[i].ino, &rootnode);
		if (t[i].ino == UINT64_MAX) {
			h.n = rootnode + 1;
			tl_put_field(hx_last(&h)->buf + t[i].off, t[i].size,
			    t[i].val);
		} else {
			tl_put_field(hx_last(&h)->buf + ioff + t[i].off,
			    t[i].size, t[i].val);
		}
		hx_seal(&h);
		assert_int_equal(wafl_mount(c->raid, &c->mo, &v), 0);
		struct wafl_check_result res;
		struct wafl_check_detail det;
		int crc = wafl_check_detail(v, &res, &det);
		if (crc != -FL_ECORRUPT && !t[i].allowed)
			fail_msg("snapshot s2 %s: checked clean", t[i].what);
		struct wafl_obj root, o;
		struct wafl_attr a;
		struct wafl_snapinfo si[4];
		size_t ns = 0;
		(void)wafl_snap_list(v, si, 4, &ns);
		uint64_t id;
		if (wafl_snap_lookup(v, "s2", &id) == 0 &&
		    wafl_snap_root(v, id, &root) == 0)
			walk(v, &root, 0);
		int rrc = wafl_snap_rollback(v, "s2");
		if (rrc == 0) {
			/* Rolled back: the active file system must work. */
			assert_int_equal(wafl_root(v, &root), 0);
			walk(v, &root, 0);
			int cc = wafl_create(v, &root_cred, &root, "after",
			    WAFL_GUARDED, NULL, 0, &o, &a, NULL);
			if (cc != 0)
				fail_msg("snapshot s2 %s: rolled back, then "
				    "create fails: %d", t[i].what, cc);
			(void)wafl_sync(v);
		}
		wafl_abandon(v);
		raid_close(c->raid);
		c->raid = NULL;
		open_raid(c);
		if (rrc == 0) {
			struct outcome o2;
			exercise(c, &o2);
			/* What a rollback makes of a field the snapshot
			 * never used must be clean; a corrupt inode it
			 * had stays corrupt, and is reported. */
			if (t[i].allowed &&
			    (o2.mount_rc != 0 || o2.check_rc != 0))
				fail_msg("snapshot s2 %s: rolled back to, then "
				    "the check finds: %s", t[i].what,
				    o2.res.first_error);
		}
	}
}

/* A mirror destination's next root, hostile: the blocks and an fsinfo of
 * the next generation are written under a read-only (replica) mount, as
 * the mirror writes them, and wafl_replica_advance must refuse the root
 * and keep serving the one it has.  The root block is rewritten in
 * place, so the old root cannot be read afterwards; the test is about the
 * switch. */
static void replica_next_root(struct hcase *c, uint64_t ino, uint32_t off,
    unsigned width, uint64_t val, bool hostile)
{
	struct wafl_mount_opts mo;
	wafl_vol_t *v;
	struct hx h;
	uint64_t g = 0;

	reset(c);
	memset(&mo, 0, sizeof(mo));
	mo.readonly = true;
	mo.cache_bytes = 4u << 20;
	assert_int_equal(wafl_mount(c->raid, &mo, &v), 0);
	uint64_t gen0 = wafl_generation(v);

	hx_load(&h, c->raid);
	uint64_t ng = h.fsi.gen + 1;
	if (ino == UINT64_MAX) {
		hx_root(&h);
		tl_put_field(h.node[0].buf + off, width, val);
	} else {
		uint32_t ioff = hx_inode(&h, ino);
		tl_put_field(hx_last(&h)->buf + ioff + off, width, val);
	}
	fl_put_le64(h.node[0].buf + 8, ng);	/* the root block's gen */
	for (unsigned i = h.n; i-- > 0; ) {
		struct hx_node *nd = &h.node[i];
		uint32_t crc = fl_crc32c(0, nd->buf, WAFL_BLOCK_SIZE);
		if (i > 0)
			fl_put_le32(h.node[i - 1].buf + nd->bp_off + 16, crc);
		else
			h.fsi.root.cksum = crc;
		assert_int_equal(raid_write(h.raid, nd->vbn, 1, nd->buf), 0);
	}
	h.fsi.gen = ng;
	h.fsi.root.birth = ng;
	h.fsi.ring_len = 1;
	h.fsi.ring[0].gen = ng;
	h.fsi.ring[0].root = h.fsi.root;
	h.fsi.nholds = 0;
	memset(h.fsi.holds, 0, sizeof(h.fsi.holds));
	h.fsi.flags |= WAFL_FSI_REPLICA;
	wafl_fsinfo_encode(h.fsi_blk, &h.fsi);
	assert_int_equal(raid_write(h.raid, ng % 2, 1, h.fsi_blk), 0);
	assert_int_equal(raid_flush(h.raid), 0);

	int rc = wafl_replica_advance(v, &g);
	if (hostile) {
		if (rc == 0)
			fail_msg("replica advanced to a root with inode %llu "
			    "field %u = %llu", (unsigned long long)ino, off,
			    (unsigned long long)val);
		assert_int_equal(wafl_generation(v), gen0);
	} else {
		assert_int_equal(rc, 0);
		assert_int_equal(g, ng);
	}
	assert_int_equal(wafl_unmount(v), 0);
}

static void test_replica_advance(void **state)
{
	struct hcase *c = *state;

	/* The harness itself: a next root with nothing hostile. */
	replica_next_root(c, UINT64_MAX, 24, 8, 313, false);
	replica_next_root(c, WAFL_INO_BITMAP, 16, 8, 1ull << 40, true);
	replica_next_root(c, WAFL_INO_SUMMARY, 0, 4, S_IFDIR | 0755, true);
	replica_next_root(c, WAFL_INO_SNAPTABLE, 16, 8, 1ull << 40, true);
	replica_next_root(c, WAFL_INO_BITMAP, 16, 8, 1ull << 62, true);
	replica_next_root(c, UINT64_MAX, 128 + 80, 1, 9, true);
	/* A hint only: advanced to, and taken as mount takes it. */
	replica_next_root(c, UINT64_MAX, 32, 8, UINT64_MAX, false);
}

/* ----------------------------------------------------------- fsinfo */

static void test_fsinfo(void **state)
{
	struct hcase *c = *state;
	uint64_t nv = nvbns_of(c->raid);
	const struct dfield t[] = {
		{ "nvbns past raid", 48, 8, nv + 1 },
		{ "nvbns 64", 48, 8, 64 },
		{ "nvbns 0", 48, 8, 0 },
		{ "nvbns max", 48, 8, UINT64_MAX },
		{ "ring_len 0", 324, 4, 0 },
		{ "ring_len 9", 324, 4, 9 },
		{ "nholds 9", 328, 4, 9 },
		{ "nholds 1 (zero entry)", 328, 4, 1 },
		{ "flags", 320, 4, 0x80 },
		{ "mirror base future", 312, 8, UINT64_MAX },
		{ "root past end", 72, 8, nv + 3 },
		{ "root birth", 80, 8, 1 },
		{ "ring[1] past end", 104 + 40 + 8, 8, nv + 3 },
		{ "ring[1] gen future", 104 + 40, 8, UINT64_MAX },
		{ "version", 8, 4, 2 },
		{ "block size", 12, 4, 512 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct hx h;
		reset(c);
		hx_load(&h, c->raid);
		tl_put_field(h.fsi_blk + t[i].off, t[i].size, t[i].val);
		hx_write_fsinfo(&h);
		assert_caught_fsinfo(c, h.fsi.gen, t[i].what);
	}
	/* An older ring root, and a held root, that verify but are no
	 * root block: x's first data block, its pointer copied whole. */
	for (int k = 0; k < 2; k++) {
		struct hx h;
		reset(c);
		find_other_bp(c);
		hx_load(&h, c->raid);
		assert_true(h.fsi.ring_len >= 2);
		if (k == 0) {
			memcpy(h.fsi_blk + 104 + 40 + 8, other_bp, WAFL_BP_SIZE);
		} else {
			uint64_t birth = fl_get_le64(other_bp + 8);
			fl_put_le32(h.fsi_blk + 328, 1);
			fl_put_le64(h.fsi_blk + 336, birth);
			memcpy(h.fsi_blk + 336 + 8, other_bp, WAFL_BP_SIZE);
		}
		hx_write_fsinfo(&h);
		assert_caught_fsinfo(c, h.fsi.gen, k == 0 ? "ring[1] a data "
		    "block" : "a held root that is a data block");
	}
}

/* A generation near the end of its range: fsinfo, its ring and the root
 * block agree on it, so every decoder accepts it; the next CP must not
 * wrap to 0. */
static void test_generation_at_the_end(void **state)
{
	struct hcase *c = *state;
	struct hx h;
	struct outcome o;
	uint64_t big = UINT64_MAX;

	hx_load(&h, c->raid);
	hx_root(&h);
	fl_put_le64(h.node[0].buf + 8, big);
	fl_put_le64(h.fsi_blk + 16, big);
	fl_put_le64(h.fsi_blk + 72 + 8, big);
	fl_put_le64(h.fsi_blk + 104, big);
	fl_put_le64(h.fsi_blk + 104 + 8 + 8, big);
	hx_seal(&h);
	exercise(c, &o);
	/* Anything but a crash; the older slot may be what mounts. */
	if (o.mount_rc == 0)
		assert_true(o.mounted_gen != 0);
}

/*
 * The same in the odd slot, where a generation of 2^64-1 (or one a few
 * CPs short of it) is in its place: a mount there must not run CPs that
 * wrap the generation to 0, whose fsinfo the newest-generation rule then
 * never picks (every CP after the mount lost), nor log operations at
 * generations the next mount's replay skips.  Either the mount refuses, or
 * the writes acknowledged after it survive a remount.
 */
static void test_generation_at_the_end_odd_slot(void **state)
{
	struct hcase *c = *state;
	const uint64_t gens[] = { UINT64_MAX, UINT64_MAX - 2, 1001 };

	for (size_t i = 0; i < sizeof(gens) / sizeof(gens[0]); i++) {
		uint64_t big = gens[i];
		wafl_vol_t *v;
		struct wafl_attr a;
		struct hx h;
		int rc;

		reset(c);
		hx_load(&h, c->raid);
		hx_root(&h);
		fl_put_le64(h.node[0].buf + 8, big);
		fl_put_le64(h.fsi_blk + 16, big);
		fl_put_le64(h.fsi_blk + 72 + 8, big);
		fl_put_le64(h.fsi_blk + 104, big);
		fl_put_le64(h.fsi_blk + 104 + 8 + 8, big);
		h.slot = 1;
		hx_seal(&h);
		tl_log_capture_start(FL_LOG_INFO);
		rc = wafl_mount(c->raid, &c->mo, &v);
		tl_log_capture_stop();
		if (rc != 0)
			continue;	/* refused */
		/* f grows by a block per CP; each write is acknowledged
		 * durable (FILE_SYNC) whether or not its CP is done. */
		uint64_t size = 0;
		for (int k = 0; k < 4; k++) {
			uint8_t blk[4096];
			enum wafl_stable got;
			tl_fill_pattern(blk, sizeof(blk), 50 + (uint64_t)k);
			if (wafl_write(v, &root_cred, &objs[tpl.f],
			    (1ull << 20) + 4096ull * (uint64_t)k, sizeof(blk),
			    blk, WAFL_FILE_SYNC, &got, NULL, NULL) != 0)
				break;
			size = (1ull << 20) + 4096ull * (uint64_t)(k + 1);
			if (wafl_sync(v) != 0)
				break;	/* the volume refuses more CPs */
		}
		wafl_abandon(v);
		raid_close(c->raid);
		c->raid = NULL;
		open_raid(c);
		tl_log_capture_start(FL_LOG_INFO);
		rc = wafl_mount(c->raid, &c->mo, &v);
		tl_log_capture_stop();
		if (rc != 0)
			fail_msg("generation %llu: the volume no longer mounts "
			    "after writes were acknowledged",
			    (unsigned long long)big);
		if (wafl_getattr(v, &objs[tpl.f], &a) != 0 || a.size < size)
			fail_msg("generation %llu: writes acknowledged after "
			    "the mount are lost (size %llu, written up to "
			    "%llu)", (unsigned long long)big,
			    (unsigned long long)a.size,
			    (unsigned long long)size);
		wafl_abandon(v);
		raid_close(c->raid);
		c->raid = NULL;
		open_raid(c);
	}
}

/* ------------------------------------------------------ raid labels */

static void label_rewrite(const char *path, uint32_t off, uint32_t size,
    uint64_t val)
{
	uint8_t b[RAID_LABEL_SIZE];
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	for (unsigned copy = 0; copy < RAID_LABEL_COPIES; copy++) {
		off_t at = (off_t)copy * 4096;
		assert_int_equal(pread(fd, b, sizeof(b), at), (ssize_t)sizeof(b));
		if (fl_get_le64(b) != RAID_LABEL_MAGIC)
			continue;
		tl_put_field(b + off, size, val);
		memset(b + 12, 0, 4);
		fl_put_le32(b + 12, fl_crc32c(0, b, sizeof(b)));
		assert_int_equal(pwrite(fd, b, sizeof(b), at),
		    (ssize_t)sizeof(b));
	}
	close(fd);
}

static void test_raid_labels(void **state)
{
	struct hcase *c = *state;
	const struct dfield t[] = {
		{ "ngroups 0", 64, 4, 0 },
		{ "ngroups 16", 64, 4, 16 },
		{ "ngroups max", 64, 4, UINT32_MAX },
		{ "group 3", 68, 4, 3 },
		{ "position 4 twice", 72, 4, 4 },
		{ "position 9", 72, 4, 9 },
		{ "ndata 28", 76, 4, 28 },
		{ "ndata 3", 76, 4, 3 },
		{ "ndata 0", 76, 4, 0 },
		{ "nparity 3", 80, 4, 3 },
		{ "nparity 0", 80, 4, 0 },
		{ "disk_blocks 2^40", 88, 8, 1ull << 40 },
		{ "disk_blocks 2048", 88, 8, 2048 },
		{ "disk_blocks 1", 88, 8, 1 },
		{ "data_off 2^32", 96, 8, 1ull << 32 },
		{ "data_off 300", 96, 8, 300 },
		{ "intent_blocks 5", 112, 4, 5 },
		{ "member state 9", 256 + 16, 4, 9 },
		{ "spare flag", 84, 4, 2 },
		{ "seq max", 56, 8, UINT64_MAX },
		{ "generation max", 48, 8, UINT64_MAX },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		for (int all = 0; all < 2; all++) {
			reset(c);
			raid_close(c->raid);
			c->raid = NULL;
			for (unsigned d = 0; d < NDISKS; d++)
				if (all || d == 1)
					label_rewrite(c->paths[d], t[i].off,
					    t[i].size, t[i].val);
			struct raid_open_opts oo = { 0 };
			tl_log_capture_start(FL_LOG_INFO);
			int rc = raid_open(c->pp, NDISKS, &oo, &c->raid);
			tl_log_capture_stop();
			if (rc != 0) {
				assert_true(rc < 0);
				c->raid = NULL;
				continue;
			}
			/* Opened (one disk left out, or a harmless field):
			 * the file system must still read right or fail
			 * cleanly. */
			struct outcome o;
			exercise(c, &o);
		}
	}
	reset(c);
}

/* ------------------------------------------------------------ NVLOG */

struct rec {
	off_t at;
	uint32_t len;
};

static uint64_t log_half;

static uint64_t log_run(int fd)
{
	uint8_t b[64];
	uint64_t run = 0;

	for (unsigned s = 0; s < 2; s++) {
		assert_int_equal(pread(fd, b, 64, s * 2048), 64);
		if (memcmp(b, "FLRNVLG1", 8) != 0 ||
		    fl_get_le32(b + 60) != fl_crc32c(0, b, 60))
			continue;
		if (fl_get_le64(b + 24) > run) {
			run = fl_get_le64(b + 24);
			log_half = fl_get_le64(b + 16);
		}
	}
	return run;
}

static uint32_t rec_crc(uint64_t run, const uint8_t *rec, uint32_t len)
{
	static const uint8_t zero4[4];
	uint8_t r8[8];
	uint32_t cc;

	fl_put_le64(r8, run);
	cc = fl_crc32c(0, r8, sizeof(r8));
	cc = fl_crc32c(cc, rec, 28);
	cc = fl_crc32c(cc, zero4, sizeof(zero4));
	return fl_crc32c(cc, rec + 32, len - 32);
}

/* The records of both halves that validate. */
static unsigned log_records(int fd, uint64_t run, struct rec *out,
    unsigned max)
{
	static uint8_t buf[HALF_BYTES];
	unsigned n = 0;

	assert_true(log_half == HALF_BYTES);
	for (unsigned half = 0; half < 2; half++) {
		off_t base = 4096 + (off_t)half * HALF_BYTES;
		ssize_t got = pread(fd, buf, HALF_BYTES, base);
		uint32_t pos = 0;
		if (got <= 0)
			continue;
		while (pos + 32 <= (uint32_t)got && n < max) {
			uint32_t len = fl_get_le32(buf + pos + 4);
			if (memcmp(buf + pos, "NVR1", 4) != 0 || len < 32 ||
			    pos + len > (uint32_t)got ||
			    rec_crc(run, buf + pos, len) !=
			    fl_get_le32(buf + pos + 28))
				break;
			out[n].at = base + pos;
			out[n].len = len;
			n++;
			pos = (pos + len + 7) & ~7u;
		}
	}
	return n;
}

/* Operations left in the log only: mount, operate, drop without a CP. */
static void log_some_operations(struct hcase *c)
{
	wafl_vol_t *v;
	struct wafl_obj root, o, d, o2;
	struct wafl_attr a;
	enum wafl_stable got;
	uint8_t buf[6000];

	assert_int_equal(wafl_mount(c->raid, &c->mo, &v), 0);
	assert_int_equal(wafl_root(v, &root), 0);
	assert_int_equal(wafl_create(v, &root_cred, &root, "logged",
	    WAFL_GUARDED, NULL, 0, &o, &a, NULL), 0);
	tl_fill_pattern(buf, sizeof(buf), 7);
	assert_int_equal(wafl_write(v, &root_cred, &o, 100, sizeof(buf), buf,
	    WAFL_FILE_SYNC, &got, NULL, NULL), 0);
	assert_int_equal(wafl_mkdir(v, &root_cred, &root, "ldir", NULL, &d,
	    &a, NULL), 0);
	assert_int_equal(wafl_symlink(v, &root_cred, &d, "lsym", "t/u/v",
	    NULL, &o2, &a, NULL), 0);
	assert_int_equal(wafl_link(v, &root_cred, &o, &d, "hard", &a, NULL),
	    0);
	assert_int_equal(wafl_rename(v, &root_cred, &root, "logged", &d,
	    "moved", NULL, NULL), 0);
	struct wafl_sattr sa = { .set_size = true, .size = 3 };
	assert_int_equal(wafl_setattr(v, &root_cred, &o, &sa, NULL, NULL,
	    &a), 0);
	assert_int_equal(wafl_remove(v, &root_cred, &root, "g", NULL), 0);
	assert_int_equal(wafl_mknod(v, &root_cred, &d, "fifo", WAFL_FIFO, 0,
	    0, NULL, &o2, &a, NULL), 0);
	assert_int_equal(wafl_rmdir(v, &root_cred, &root, "sub", NULL),
	    -ENOTEMPTY);
	wafl_abandon(v);
	raid_close(c->raid);
	c->raid = NULL;
	open_raid(c);
}

struct logcase {
	struct hcase *c;
	char savedlog[512];
	char savedimg[NDISKS][512];
	uint64_t run;
	unsigned cases;
};

/*
 * Record at `at` (len bytes) with the width-byte field at off set to val,
 * its checksum recomputed (over newlen bytes when the length itself is
 * rewritten: a longer record covers what follows it in the log), then a
 * mount (replay) and a check.  The volume and the log start as logged.
 */
static void log_mutate2(struct logcase *lc, off_t at, uint32_t len,
    uint32_t off, unsigned width, uint64_t val, uint32_t off2,
    unsigned width2, uint64_t val2, struct outcome *out);

static void log_mutate(struct logcase *lc, off_t at, uint32_t len,
    uint32_t off, unsigned width, uint64_t val)
{
	struct outcome o;

	log_mutate2(lc, at, len, off, width, val, 0, 0, 0, &o);
}

/* The same with a second field (width2 0: none); *out: what came of it
 * (mount_rc -1000 when the change was not made). */
static void log_mutate2(struct logcase *lc, off_t at, uint32_t len,
    uint32_t off, unsigned width, uint64_t val, uint32_t off2,
    unsigned width2, uint64_t val2, struct outcome *out)
{
	struct hcase *c = lc->c;
	uint32_t cover = len;
	uint8_t *rec;
	int fd;

	memset(out, 0, sizeof(*out));
	out->mount_rc = -1000;
	if (off == 4)
		cover = (uint32_t)val;
	if (cover < 32 || cover > len + 4096)
		return;
	rec = calloc(1, len > cover ? len : cover);
	assert_non_null(rec);
	if (c->raid != NULL)
		raid_close(c->raid);
	c->raid = NULL;
	for (unsigned d = 0; d < NDISKS; d++)
		assert_int_equal(tl_copy_file(lc->savedimg[d], c->paths[d]), 0);
	open_raid(c);
	assert_int_equal(tl_copy_file(lc->savedlog, c->logpath), 0);
	fd = open(c->logpath, O_RDWR);
	assert_true(fd >= 0);
	assert_true(pread(fd, rec, len > cover ? len : cover, at) >=
	    (ssize_t)len);
	tl_put_field(rec + off, width, val);
	if (width2 != 0)
		tl_put_field(rec + off2, width2, val2);
	fl_put_le32(rec + 28, rec_crc(lc->run, rec, cover));
	assert_int_equal(pwrite(fd, rec, len, at), (ssize_t)len);
	close(fd);
	free(rec);
	exercise(c, out);
	lc->cases++;
}

/* Every record's length (one short) and generation; and for the first
 * record of each kind, its length (shorter, longer: the checksum over
 * what it then claims) and type, and every 32-bit word of its fixed part
 * (lengths of names and data, numbers, masks) set to 2^32-1 and every
 * upper 16-bit half to 0xffff. */
static void test_nvlog_records(void **state)
{
	struct hcase *c = *state;
	struct logcase *lc = calloc(1, sizeof(*lc));
	struct rec recs[64];
	bool seen[8] = { false };
	unsigned nrec;
	char *saved;

	assert_non_null(lc);
	lc->c = c;
	log_some_operations(c);
	saved = tl_tmpdir_make(NULL, "hostile-log");
	tl_path(lc->savedlog, sizeof(lc->savedlog), saved, "nvlog");
	assert_int_equal(tl_copy_file(c->logpath, lc->savedlog), 0);
	for (unsigned d = 0; d < NDISKS; d++) {
		tl_path(lc->savedimg[d], sizeof(lc->savedimg[d]), saved,
		    "d%u.img", d);
		assert_int_equal(tl_copy_file(c->paths[d], lc->savedimg[d]),
		    0);
	}
	exercise_light = true;
	int fd = open(c->logpath, O_RDONLY);
	assert_true(fd >= 0);
	lc->run = log_run(fd);
	nrec = log_records(fd, lc->run, recs, 64);
	uint8_t hdr[32];
	for (unsigned r = 0; r < nrec; r++) {
		off_t at = recs[r].at;
		uint32_t len = recs[r].len;
		assert_int_equal(pread(fd, hdr, 32, at), 32);
		uint16_t type = fl_get_le16(hdr + 24);
		uint64_t gen = fl_get_le64(hdr + 16);

		log_mutate(lc, at, len, 4, 4, len - 1);
		log_mutate(lc, at, len, 16, 8, gen + 1000);
		if (type >= 8 || seen[type])
			continue;
		seen[type] = true;
		log_mutate(lc, at, len, 4, 4, 32);
		log_mutate(lc, at, len, 4, 4, 33);
		log_mutate(lc, at, len, 4, 4, len + 8);
		log_mutate(lc, at, len, 24, 2, 0);
		log_mutate(lc, at, len, 24, 2, 0xffff);
		/* WRITE, SETATTR and LINK name their object by number and
		 * generation: aimed at a special file (generation 1, as
		 * mkfs makes them), replay must refuse, not write it. */
		if (type == 4 || type == 5 || type == 6) {
			static const uint64_t special[] = {
				WAFL_INO_BITMAP, WAFL_INO_SNAPTABLE,
				WAFL_INO_SUMMARY, WAFL_INO_INODEFILE,
			};
			for (unsigned k = 0; k < 4; k++) {
				struct outcome o;
				log_mutate2(lc, at, len, 32, 8, special[k],
				    32 + 8, 4, 1, &o);
				if (o.mount_rc == 0 && o.check_rc != 0)
					fail_msg("record type %u replayed on "
					    "inode %llu: %s", type,
					    (unsigned long long)special[k],
					    o.res.first_error);
			}
		}
		uint32_t fixed = type == 1 ? 100 : type == 2 ? 30 :
		    type == 3 ? 52 : type == 4 ? 42 : type == 5 ? 64 : 32;
		for (uint32_t o = 0; o + 2 <= fixed + 4 && 32 + o + 2 <= len;
		    o += 2) {
			/* 32-bit words, and the upper halves of them (a
			 * 16-bit length lies on either half). */
			if (o % 4 == 0 && 32 + o + 4 <= len)
				log_mutate(lc, at, len, 32 + o, 4,
				    UINT32_MAX);
			else
				log_mutate(lc, at, len, 32 + o, 2, 0xffff);
		}
	}
	close(fd);
	exercise_light = false;
	/* Every kind of record was there. */
	for (unsigned t = 1; t <= 6; t++)
		assert_true(seen[t]);
	assert_true(nrec >= 9 && lc->cases > 100);
	tl_tmpdir_remove(saved);
	free(lc);
}

/* ----------------------------------------------------- NVLOG header */

/* The log and the images as log_some_operations left them. */
struct logsave {
	char *dir;
	char log[512];
	char img[NDISKS][512];
};

static void logsave_make(struct hcase *c, struct logsave *ls)
{
	ls->dir = tl_tmpdir_make(NULL, "hostile-log");
	tl_path(ls->log, sizeof(ls->log), ls->dir, "nvlog");
	assert_int_equal(tl_copy_file(c->logpath, ls->log), 0);
	for (unsigned d = 0; d < NDISKS; d++) {
		tl_path(ls->img[d], sizeof(ls->img[d]), ls->dir, "d%u.img", d);
		assert_int_equal(tl_copy_file(c->paths[d], ls->img[d]), 0);
	}
}

static void logsave_restore(struct hcase *c, const struct logsave *ls,
    bool images)
{
	if (c->raid != NULL)
		raid_close(c->raid);
	c->raid = NULL;
	for (unsigned d = 0; images && d < NDISKS; d++)
		assert_int_equal(tl_copy_file(ls->img[d], c->paths[d]), 0);
	assert_int_equal(tl_copy_file(ls->log, c->logpath), 0);
	open_raid(c);
}

/* Header slot of run `run` (written to slot run % 2, the other slot left
 * as it is) starting at start_lsn, every record of the log resealed
 * under that run with its LSN moved by dlsn. */
static void log_rewrite_run(const char *path, uint64_t run, uint64_t dlsn)
{
	uint8_t slot[64];
	struct rec recs[64];
	int fd = open(path, O_RDWR);
	uint64_t old;
	unsigned n;

	assert_true(fd >= 0);
	old = log_run(fd);
	assert_true(old != 0);
	n = log_records(fd, old, recs, 64);
	assert_true(n >= 9);
	assert_int_equal(pread(fd, slot, 64, (old & 1) * 2048), 64);
	fl_put_le64(slot + 24, run);
	fl_put_le64(slot + 32, fl_get_le64(slot + 32) + dlsn);
	fl_put_le32(slot + 60, fl_crc32c(0, slot, 60));
	assert_int_equal(pwrite(fd, slot, 64, (run & 1) * 2048), 64);
	for (unsigned r = 0; r < n; r++) {
		uint8_t *b = malloc(recs[r].len);
		assert_non_null(b);
		assert_int_equal(pread(fd, b, recs[r].len, recs[r].at),
		    (ssize_t)recs[r].len);
		fl_put_le64(b + 8, fl_get_le64(b + 8) + dlsn);
		fl_put_le32(b + 28, rec_crc(run, b, recs[r].len));
		assert_int_equal(pwrite(fd, b, recs[r].len, recs[r].at),
		    (ssize_t)recs[r].len);
		free(b);
	}
	close(fd);
}

/* The operations log_some_operations made, and the file made after the
 * first mount (if any), are all there. */
static void assert_logged_there(struct hcase *c, bool after, const char *what)
{
	wafl_vol_t *v;
	struct wafl_obj root, d, o;
	struct wafl_attr a;
	int rc;

	tl_log_capture_start(FL_LOG_INFO);
	rc = wafl_mount(c->raid, &c->mo, &v);
	tl_log_capture_stop();
	if (rc != 0)
		fail_msg("%s: the volume no longer mounts: %d", what, rc);
	assert_int_equal(wafl_root(v, &root), 0);
	if (wafl_lookup(v, &root_cred, &root, "ldir", &d, &a, NULL) != 0 ||
	    wafl_lookup(v, &root_cred, &d, "moved", &o, &a, NULL) != 0)
		fail_msg("%s: logged operations lost", what);
	if (after && wafl_lookup(v, &root_cred, &root, "after", &o, &a,
	    NULL) != 0)
		fail_msg("%s: a create acknowledged after the mount is lost",
		    what);
	wafl_abandon(v);
	raid_close(c->raid);
	c->raid = NULL;
	open_raid(c);
}

/*
 * Mount twice, a create acknowledged after each mount, each dropped as a
 * crash would (no final CP).  Either the first mount refuses the log (its
 * saved copy, put back, replays everything logged on the images as the
 * refusal left them), or both mount and every operation survived.
 */
static void two_mounts(struct hcase *c, const struct logsave *ls,
    const char *what)
{
	bool made = false;
	int rc = 0;

	for (int m = 0; m < 2 && rc == 0; m++) {
		wafl_vol_t *v;
		struct wafl_obj root, o;
		struct wafl_attr a;

		tl_log_capture_start(FL_LOG_INFO);
		rc = wafl_mount(c->raid, &c->mo, &v);
		tl_log_capture_stop();
		if (rc != 0) {
			assert_true(rc < 0);
			break;
		}
		assert_int_equal(wafl_root(v, &root), 0);
		assert_int_equal(wafl_create(v, &root_cred, &root,
		    m == 0 ? "after" : "again", WAFL_GUARDED, NULL, 0, &o, &a,
		    NULL), 0);
		made = true;
		wafl_abandon(v);
		raid_close(c->raid);
		c->raid = NULL;
		open_raid(c);
	}
	if (rc != 0 && made)
		fail_msg("%s: a log the volume wrote itself is refused", what);
	if (rc != 0) {
		char w[160];
		snprintf(w, sizeof(w), "%s (refused, log restored)", what);
		raid_close(c->raid);
		c->raid = NULL;
		assert_int_equal(tl_copy_file(ls->log, c->logpath), 0);
		open_raid(c);
		assert_logged_there(c, false, w);
		return;
	}
	assert_logged_there(c, true, what);
}

/*
 * The header's run and start LSN at the end of their range, the records
 * resealed to match, so the log replays: nvlog_start's next run (run + 1,
 * highest LSN + 1) must not wrap or take a value the next open refuses,
 * for the records of that run would then fail their checksum, losing
 * what was acknowledged after the mount.  Either the log is refused as it
 * is (and with its header restored, everything logged replays), or what
 * is done after the mount survives a crash.
 */
static void test_nvlog_header_counts(void **state)
{
	struct hcase *c = *state;
	struct logsave ls;
	const struct {
		const char *what;
		uint64_t run, dlsn;	/* dlsn UINT64_MAX: to the end */
	} t[] = {
		{ "run 2^64-1", UINT64_MAX, 0 },
		{ "run 2^63-1", UINT64_MAX / 2, 0 },
		{ "run 2^64-2", UINT64_MAX - 1, 0 },
		{ "highest LSN 2^63-1", 0, UINT64_MAX },
		{ "highest LSN 2^64-2", 0, UINT64_MAX - 1 },
	};

	log_some_operations(c);
	logsave_make(c, &ls);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int fd = open(ls.log, O_RDONLY);
		struct rec recs[64];
		uint64_t run, maxlsn = 0, dlsn = 0;
		unsigned n;
		uint8_t h[32];

		assert_true(fd >= 0);
		run = log_run(fd);
		n = log_records(fd, run, recs, 64);
		for (unsigned r = 0; r < n; r++) {
			assert_int_equal(pread(fd, h, 32, recs[r].at), 32);
			maxlsn = FL_MAX(maxlsn, fl_get_le64(h + 8));
		}
		close(fd);
		if (t[i].dlsn == UINT64_MAX)
			dlsn = UINT64_MAX / 2 - maxlsn;
		else if (t[i].dlsn != 0)
			dlsn = t[i].dlsn - maxlsn;
		logsave_restore(c, &ls, true);
		log_rewrite_run(c->logpath, t[i].run != 0 ? t[i].run : run,
		    dlsn);
		two_mounts(c, &ls, t[i].what);
	}
	tl_tmpdir_remove(ls.dir);
}

/*
 * A record's generation far past the mounted root's, the record resealed:
 * replay raises the open generation to it, so the CP after replay wrote
 * fsinfo at that generation and the next one wrapped to 0 (an fsinfo the
 * newest-generation rule then never picks), and records logged after the
 * mount carried generations replay skips.  Each record in turn.
 */
static void test_nvlog_record_generation(void **state)
{
	struct hcase *c = *state;
	struct logsave ls;
	struct rec recs[64];
	const uint64_t gens[] = { UINT64_MAX, UINT64_MAX - 1, 1ull << 62 };
	uint64_t run;
	unsigned n;
	int fd;

	log_some_operations(c);
	logsave_make(c, &ls);
	fd = open(ls.log, O_RDONLY);
	assert_true(fd >= 0);
	run = log_run(fd);
	n = log_records(fd, run, recs, 64);
	close(fd);
	assert_true(n >= 9);
	for (unsigned r = 0; r < n; r++) {
		for (size_t i = 0; i < sizeof(gens) / sizeof(gens[0]); i++) {
			uint8_t *b;
			char what[96];

			if (i > 0 && r > 0)
				break;	/* every value on the first only */
			b = malloc(recs[r].len);
			assert_non_null(b);
			logsave_restore(c, &ls, true);
			fd = open(c->logpath, O_RDWR);
			assert_true(fd >= 0);
			assert_int_equal(pread(fd, b, recs[r].len, recs[r].at),
			    (ssize_t)recs[r].len);
			fl_put_le64(b + 16, gens[i]);
			fl_put_le32(b + 28, rec_crc(run, b, recs[r].len));
			assert_int_equal(pwrite(fd, b, recs[r].len, recs[r].at),
			    (ssize_t)recs[r].len);
			close(fd);
			free(b);
			snprintf(what, sizeof(what), "record %u generation "
			    "%llu", r, (unsigned long long)gens[i]);
			two_mounts(c, &ls, what);
		}
	}
	tl_tmpdir_remove(ls.dir);
}

/*
 * A larger half size in the header of a regular log file: the file is then
 * shorter than the log it describes (accepted: the tail reads as empty),
 * and the records of half 0 still replay.  Starting the run must not
 * write the zeros of the whole described log (2 x 1 TiB at most) into the
 * file system the log shares with others.
 */
static void test_nvlog_header_half(void **state)
{
	struct hcase *c = *state;
	const uint64_t half = 256ull << 20;
	struct stat st0, st1;
	struct outcome o;
	uint8_t slot[64];
	uint64_t run;
	int fd;

	log_some_operations(c);
	fd = open(c->logpath, O_RDWR);
	assert_true(fd >= 0);
	run = log_run(fd);
	assert_int_equal(pread(fd, slot, 64, (run & 1) * 2048), 64);
	fl_put_le64(slot + 16, half);
	fl_put_le32(slot + 60, fl_crc32c(0, slot, 60));
	assert_int_equal(pwrite(fd, slot, 64, (run & 1) * 2048), 64);
	/* The other slot (an older run) agrees, as a whole header would. */
	assert_int_equal(pread(fd, slot, 64, ((run + 1) & 1) * 2048), 64);
	if (memcmp(slot, "FLRNVLG1", 8) == 0) {
		fl_put_le64(slot + 16, half);
		fl_put_le32(slot + 60, fl_crc32c(0, slot, 60));
		assert_int_equal(pwrite(fd, slot, 64, ((run + 1) & 1) * 2048),
		    64);
	}
	assert_int_equal(fstat(fd, &st0), 0);
	close(fd);
	exercise(c, &o);
	assert_int_equal(stat(c->logpath, &st1), 0);
	if ((uint64_t)st1.st_blocks * 512 > (uint64_t)st0.st_size +
	    (16u << 20))
		fail_msg("a log file of %lld bytes holds %llu bytes after a "
		    "mount", (long long)st0.st_size,
		    (unsigned long long)st1.st_blocks * 512);
	/* What was logged replayed. */
	if (o.mount_rc == 0)
		assert_logged_there(c, false, "half size 256 MiB");
}

/* ------------------------------------------------- the seeded sweep */

/* Random fields of random metadata blocks: every result but a crash. */
static void test_random_fields(void **state)
{
	struct hcase *c = *state;
	uint64_t rng = 20261205;
	static const uint64_t vals[] = {
		0, 1, 2, 0xff, 0xffff, 0xffffffffull, UINT64_MAX,
		1ull << 63, 4096, 4097, 128, 255, 256, 7,
	};

	for (int round = 0; round < 60; round++) {
		struct hx h;
		reset(c);
		hx_load(&h, c->raid);
		switch (tl_rand_below(&rng, 7)) {
		case 0:
			hx_root(&h);
			break;
		case 1:
			(void)hx_inode(&h, tl_rand_below(&rng, 2) ? tpl.f :
			    tpl.d);
			break;
		case 2:
			hx_file(&h, tpl.d, 0, tl_rand_below(&rng, 4));
			break;
		case 3:
			hx_file(&h, tpl.g, 1 + tl_rand_below(&rng, 2), 0);
			break;
		case 4:
			hx_file(&h, WAFL_INO_SNAPTABLE, 0, 0);
			break;
		case 5:
			hx_file(&h, tpl.sub, 0, tl_rand_below(&rng, 2));
			break;
		default:
			hx_file(&h, tpl.f, 1, 0);
			break;
		}
		uint32_t size = 1u << tl_rand_below(&rng, 4);
		uint32_t off = (uint32_t)tl_rand_below(&rng,
		    WAFL_BLOCK_SIZE / size) * size;
		if (hx_last(&h)->vbn == h.node[0].vbn && tl_rand_below(&rng, 2))
			off = 128 + (uint32_t)tl_rand_below(&rng, 128 / size) *
			    size;	/* inode 0 */
		uint64_t val = vals[tl_rand_below(&rng,
		    sizeof(vals) / sizeof(vals[0]))];
		if (tl_rand_below(&rng, 3) == 0)
			val = tl_rand(&rng);
		tl_put_field(hx_last(&h)->buf + off, size, val);
		hx_seal(&h);
		struct outcome o;
		exercise(c, &o);
	}
}

int main(void)
{
	const char *only = getenv("HOSTILE_ONLY");

	if (only != NULL)
		cmocka_set_test_filter(only);
	/* Hundreds of mounts, each with its log's and raid's flushes: on a
	 * tmpfs they cost nothing, and nothing here is about durability. */
	if (getenv("TMPDIR") == NULL && access("/dev/shm", W_OK) == 0 &&
	    tl_is_tmpfs("/dev/shm") == 1)
		setenv("TMPDIR", "/dev/shm", 1);
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_inode_regular),
		T(test_inode_sparse),
		T(test_inode_directory),
		T(test_inode_symlink),
		T(test_inode_root_dir),
		T(test_inode_reserved),
		T(test_inline_elsewhere),
		T(test_root_block),
		T(test_next_ino_hint),
		T(test_orphan_list_refused),
		T(test_orphan_list_free),
		T(test_orphan_list_linked),
		T(test_indirect_file),
		T(test_indirect_inode_file),
		T(test_dir_header),
		T(test_dir_nodes),
		T(test_dir_entry_targets),
		T(test_dir_entry_reserved_ops),
		T(test_dir_count_lies),
		T(test_snapshot_table),
		T(test_snapshot_tree),
		T(test_replica_advance),
		T(test_fsinfo),
		T(test_generation_at_the_end),
		T(test_generation_at_the_end_odd_slot),
		T(test_raid_labels),
		T(test_nvlog_records),
		T(test_nvlog_header_counts),
		T(test_nvlog_header_half),
		T(test_nvlog_record_generation),
		T(test_random_fields),
#undef T
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
