/*
 * tests/wafl/fuzz_ondisk.c: libFuzzer over the decoders of every on-disk
 * structure, with the mutation test_hostile makes: valid structures whose
 * fields are rewritten (the checksums do not matter to a decoder, and
 * where they are checked -- fsinfo, raid label -- they are recomputed).
 *
 * Input: byte 0 picks the structure; the rest is a list of patches
 * {offset lo, offset hi, length 1..8, bytes} applied to a valid template
 * of it: an fsinfo, a root block, an inode-file block (a directory, a
 * file of height 2, an inline symlink), a snapshot table block, an
 * indirect block, a raid label, a directory of three hundred names
 * (lookup, iterate, count, check, add, remove), or an NVLOG payload of
 * each kind.  The decoders must refuse or accept without reading or
 * writing out of bounds (ASan, UBSan) and without looping.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "raid/label.h"
#include "wafl/dir.h"
#include "wafl/logrec.h"
#include "wafl/ondisk.h"

#define BS		4096u
#define DIR_BLOCKS	16u

enum { T_FSINFO, T_ROOT, T_INODES, T_SNAPTAB, T_INDIRECT, T_LABEL, T_DIR,
	T_REC, T_N };

static uint8_t tpl_fsinfo[BS], tpl_root[BS], tpl_inodes[BS], tpl_snap[BS];
static uint8_t tpl_ind[BS], tpl_label[BS];
static uint8_t tpl_dir[DIR_BLOCKS * BS];
static uint64_t tpl_dir_n;
static uint8_t tpl_rec[6][REC_MAX_NS_PAYLOAD];
static uint32_t tpl_rec_len[6];
static const uint8_t dir_key[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };

struct memdir {
	uint8_t *blk;
	uint64_t n, cap;
};

static int md_read(void *ctx, uint64_t fbn, void *buf)
{
	struct memdir *m = ctx;

	if (fbn >= m->n)
		memset(buf, 0, BS);
	else
		memcpy(buf, m->blk + fbn * BS, BS);
	return 0;
}

static int md_modify(void *ctx, uint64_t fbn, uint8_t **blk)
{
	struct memdir *m = ctx;

	if (fbn >= m->cap)
		return -28;	/* ENOSPC */
	if (fbn >= m->n) {
		memset(m->blk + m->n * BS, 0, (fbn + 1 - m->n) * BS);
		m->n = fbn + 1;
	}
	*blk = m->blk + fbn * BS;
	return 0;
}

static uint64_t md_nblocks(void *ctx)
{
	return ((struct memdir *)ctx)->n;
}

static struct wafl_bp bp_at(uint64_t vbn)
{
	struct wafl_bp bp = { .vbn = vbn, .birth = 5, .cksum = 0x1234 };

	return bp;
}

static void make_templates(void)
{
	struct wafl_fsinfo f;
	struct wafl_rootblk rb;
	struct wafl_dinode di;
	struct wafl_snapent se;

	memset(&f, 0, sizeof(f));
	f.gen = 9;
	f.nvbns = 1u << 20;
	f.root = bp_at(100);
	f.root.birth = 9;
	f.ring_len = 2;
	f.ring[0].gen = 9;
	f.ring[0].root = f.root;
	f.ring[1].gen = 8;
	f.ring[1].root = bp_at(90);
	f.ring[1].root.birth = 8;
	f.nholds = 1;
	f.holds[0].gen = 7;
	f.holds[0].root = bp_at(80);
	f.holds[0].root.birth = 7;
	wafl_fsinfo_encode(tpl_fsinfo, &f);

	memset(&rb, 0, sizeof(rb));
	rb.gen = 9;
	rb.blocks_used = 300;
	rb.inodes_used = 20;
	rb.next_ino = 30;
	rb.inodefile.mode = S_IFREG | 0600;
	rb.inodefile.nlink = 1;
	rb.inodefile.size = 40 * BS;
	rb.inodefile.height = 1;
	rb.inodefile.u.top[0] = bp_at(101);
	wafl_rootblk_encode(tpl_root, &rb);

	/* Inodes 16..23: a directory, a file of height 2, a symlink. */
	memset(&di, 0, sizeof(di));
	di.mode = S_IFDIR | 0755;
	di.nlink = 2;
	di.size = 3 * BS;
	di.ino = 16;
	di.parent = 2;
	for (unsigned i = 0; i < 3; i++)
		di.u.top[i] = bp_at(200 + i);
	wafl_dinode_encode(tpl_inodes, &di);
	memset(&di, 0, sizeof(di));
	di.mode = S_IFREG | 0644;
	di.nlink = 1;
	di.size = 40ull << 20;
	di.height = 2;
	di.ino = 17;
	di.u.top[0] = bp_at(300);
	wafl_dinode_encode(tpl_inodes + WAFL_INODE_SIZE, &di);
	memset(&di, 0, sizeof(di));
	di.mode = S_IFLNK | 0777;
	di.nlink = 1;
	di.size = 9;
	di.ino = 18;
	di.flags = WAFL_INO_INLINE;
	memcpy(di.u.inline_data, "a/b/c/d/e", 9);
	wafl_dinode_encode(tpl_inodes + 2 * WAFL_INODE_SIZE, &di);

	for (unsigned i = 0; i < 3; i++) {
		memset(&se, 0, sizeof(se));
		se.gen = 3 + i;
		se.root = bp_at(50 + i);
		se.root.birth = 3 + i;
		se.id = 10 + i;
		snprintf(se.name, sizeof(se.name), "snap%u", i);
		wafl_snapent_encode(tpl_snap + i * WAFL_SNAP_ENTRY_SIZE, &se);
	}
	for (unsigned i = 0; i < WAFL_BPS_PER_BLOCK; i += 3) {
		struct wafl_bp bp = bp_at(1000 + i);
		wafl_bp_encode(tpl_ind + i * WAFL_BP_SIZE, &bp);
	}

	struct raid_label l;
	memset(&l, 0, sizeof(l));
	l.generation = 1;
	l.seq = 2;
	l.ngroups = 1;
	l.position = 1;
	l.ndata = 4;
	l.nparity = 1;
	l.flags = RAID_LABEL_F_CLEAN;
	l.disk_blocks = 1024;
	l.intent_off = RAID_INTENT_OFF;
	l.intent_blocks = 1;
	l.journal_off = RAID_INTENT_OFF + 1;
	l.journal_slots = RAID_JOURNAL_SLOTS;
	l.journal_blocks = RAID_JOURNAL_SLOTS * 2;
	l.data_off = 256;
	l.region_stripes = RAID_REGION_STRIPES;
	for (unsigned k = 0; k < 5; k++) {
		l.member[k].uuid[0] = (uint8_t)(k + 1);
		l.member[k].state = RAID_DISK_OK;
	}
	raid_label_encode(&l, tpl_label);

	struct memdir m = { .blk = tpl_dir, .n = 0, .cap = DIR_BLOCKS };
	struct dirfile df = { .ctx = &m, .read = md_read, .modify = md_modify,
	    .nblocks = md_nblocks, .hash_key = dir_key };
	uint64_t key;
	if (dir_init(&df) != 0)
		abort();
	for (unsigned i = 0; i < 300; i++) {
		char name[16];
		int n = snprintf(name, sizeof(name), "n%03u", i);
		if (dir_add(&df, name, (size_t)n, 100 + i, 1, 0, &key) != 0)
			abort();
	}
	tpl_dir_n = m.n;

	struct rec_make mk = { .dir = 2, .ino = 40, .key = 0x1234500,
	    .gen = 1, .mode = S_IFLNK | 0777, .name = "link",
	    .target = "some/where" };
	tpl_rec_len[0] = rec_make_encode(tpl_rec[0], &mk);
	struct rec_remove rm = { .dir = 2, .ino = 40, .name = "link" };
	tpl_rec_len[1] = rec_remove_encode(tpl_rec[1], &rm);
	struct rec_rename rn = { .fromdir = 2, .todir = 16, .ino = 40,
	    .fromname = "from", .toname = "to" };
	tpl_rec_len[2] = rec_rename_encode(tpl_rec[2], &rn);
	struct rec_link lk = { .ino = 40, .dir = 16, .gen = 1,
	    .name = "hard" };
	tpl_rec_len[3] = rec_link_encode(tpl_rec[3], &lk);
	struct rec_setattr sa = { .ino = 40, .gen = 1, .mask = REC_SA_ALL,
	    .mode = 0644, .size = 1000 };
	tpl_rec_len[4] = rec_setattr_encode(tpl_rec[4], &sa);
	static const uint8_t data[100];
	struct rec_write w = { .ino = 40, .gen = 1, .len = sizeof(data),
	    .off = 4096, .data = data };
	tpl_rec_len[5] = rec_write_encode(tpl_rec[5], &w);
	memset(tpl_rec[5] + tpl_rec_len[5], 0xab, sizeof(data));
	tpl_rec_len[5] += sizeof(data);
}

/* Apply the patches in d[0..n) to buf[0..size). */
static void patch(uint8_t *buf, size_t size, const uint8_t *d, size_t n)
{
	while (n >= 4) {
		size_t off = (size_t)d[0] | (size_t)d[1] << 8;
		size_t len = (size_t)(d[2] % 8) + 1;
		d += 3;
		n -= 3;
		if (len > n)
			len = n;
		if (size > 0) {
			off %= size;
			if (off + len > size)
				len = size - off;
			memcpy(buf + off, d, len);
		}
		d += len;
		n -= len;
	}
}

static int iter_cb(void *arg, const struct dir_ent *e)
{
	(*(uint64_t *)arg) += e->namelen;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool made;
	static uint8_t blk[BS];
	static uint8_t dirbuf[DIR_BLOCKS * BS];

	if (!made) {
		make_templates();
		made = true;
	}
	if (size < 1)
		return 0;
	unsigned t = data[0] % T_N;
	const uint8_t *d = data + 1;
	size_t n = size - 1;

	switch (t) {
	case T_FSINFO: {
		struct wafl_fsinfo f;
		memcpy(blk, tpl_fsinfo, BS);
		patch(blk, BS - 4, d, n);
		fl_put_le32(blk + BS - 4, fl_crc32c(0, blk, BS - 4));
		(void)wafl_fsinfo_decode(blk, &f);
		break;
	}
	case T_ROOT: {
		struct wafl_rootblk rb;
		memcpy(blk, tpl_root, BS);
		patch(blk, BS, d, n);
		(void)wafl_rootblk_decode(blk, &rb);
		break;
	}
	case T_INODES: {
		struct wafl_dinode di;
		memcpy(blk, tpl_inodes, BS);
		patch(blk, BS, d, n);
		for (unsigned i = 0; i < WAFL_INODES_PER_BLOCK; i++)
			(void)wafl_dinode_decode(blk + i * WAFL_INODE_SIZE,
			    16 + i, &di);
		break;
	}
	case T_SNAPTAB: {
		struct wafl_snapent se;
		memcpy(blk, tpl_snap, BS);
		patch(blk, BS, d, n);
		for (unsigned i = 0; i < WAFL_SNAPS_PER_BLOCK; i++)
			(void)wafl_snapent_decode(blk +
			    i * WAFL_SNAP_ENTRY_SIZE, &se);
		break;
	}
	case T_INDIRECT: {
		struct wafl_bp bp;
		memcpy(blk, tpl_ind, BS);
		patch(blk, BS, d, n);
		for (unsigned i = 0; i < WAFL_BPS_PER_BLOCK; i++)
			(void)wafl_bp_decode(blk + i * WAFL_BP_SIZE, &bp);
		break;
	}
	case T_LABEL: {
		struct raid_label l;
		const char *why;
		memcpy(blk, tpl_label, BS);
		patch(blk, RAID_LABEL_SIZE, d, n);
		memset(blk + 12, 0, 4);
		fl_put_le32(blk + 12, fl_crc32c(0, blk, RAID_LABEL_SIZE));
		(void)raid_label_decode(blk, &l, &why);
		break;
	}
	case T_DIR: {
		struct memdir m = { .blk = dirbuf, .n = tpl_dir_n,
		    .cap = DIR_BLOCKS };
		struct dirfile df = { .ctx = &m, .read = md_read,
		    .modify = md_modify, .nblocks = md_nblocks,
		    .hash_key = dir_key };
		struct dir_ent e;
		uint64_t cnt = 0, key;
		const char *why;
		memcpy(dirbuf, tpl_dir, tpl_dir_n * BS);
		patch(dirbuf, tpl_dir_n * BS, d, n);
		(void)dir_lookup(&df, "n123", 4, &e);
		(void)dir_lookup(&df, "absent", 6, &e);
		(void)dir_iterate(&df, 0, iter_cb, &cnt);
		(void)dir_iterate(&df, 0x8000000000000000ull, iter_cb, &cnt);
		(void)dir_count(&df, &cnt);
		(void)dir_check(&df, iter_cb, &cnt, &why);
		(void)dir_add(&df, "added", 5, 7, 1, 0, &key);
		(void)dir_remove(&df, "n200", 4, &e);
		break;
	}
	default: {
		static uint8_t rec[REC_MAX_NS_PAYLOAD + 200];
		unsigned k = n > 0 ? d[0] % 6 : 0;
		uint32_t len = tpl_rec_len[k];
		if (n > 1) {
			/* A length that lies, within the buffer. */
			len = (uint32_t)((len + d[1] * 3u) % sizeof(rec));
		}
		memset(rec, 0, sizeof(rec));
		memcpy(rec, tpl_rec[k], tpl_rec_len[k]);
		if (n > 2)
			patch(rec, tpl_rec_len[k] + 16, d + 2, n - 2);
		union {
			struct rec_make mk;
			struct rec_remove rm;
			struct rec_rename rn;
			struct rec_link lk;
			struct rec_setattr sa;
			struct rec_write w;
		} *u = malloc(sizeof(*u));
		if (u == NULL)
			abort();
		/* Only len bytes are the record: a copy of exactly that
		 * many, so reading past it is an ASan error. */
		uint8_t *p = malloc(len > 0 ? len : 1);
		if (p == NULL)
			abort();
		memcpy(p, rec, len);
		switch (k) {
		case 0: (void)rec_make_decode(p, len, &u->mk); break;
		case 1: (void)rec_remove_decode(p, len, &u->rm); break;
		case 2: (void)rec_rename_decode(p, len, &u->rn); break;
		case 3: (void)rec_link_decode(p, len, &u->lk); break;
		case 4: (void)rec_setattr_decode(p, len, &u->sa); break;
		default: (void)rec_write_decode(p, len, &u->w); break;
		}
		free(p);
		free(u);
		break;
	}
	}
	return 0;
}
