/*
 * mirror/verify.c: the destination checks a received tree before it adopts
 * the root (M3).  Everything happens in memory on what came over the link;
 * nothing on the destination's disks is read.
 *
 * A block is accepted only when a verified parent expects it: its VBN,
 * birth generation and crc32c equal the block pointer in the parent.  The
 * root pointer comes from the fsinfo the source sent, whose own checksum
 * the decoder verifies.  Blocks are parsed with wafl/ondisk.h's decoders
 * by what the parent says they are:
 *
 *   root block      -> the inode file's inode -> inode-file nodes
 *   inode-file node -> 128 pointers (indirect) or 8 inodes (leaf); each
 *                      used, non-inline inode -> its file's nodes
 *   file node       -> 128 pointers (indirect) or data (leaf); the
 *                      snapshot table's data -> snapshot root blocks
 *
 * A pointer born at or before `base` names a block the destination already
 * holds (it serves root `base`, intact by M1), so it is not expected.
 * A pointer younger than its parent (W2), outside the VBN space, or naming
 * a VBN already expected with another pointer (W5) is corruption.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/util.h"
#include "mirror/mir_impl.h"

enum mv_kind { MV_ROOT = 1, MV_IFILE, MV_FILE };

/* 48 bytes: a baseline holds one per block of the volume in use. */
struct mv_ent {
	uint64_t vbn;			/* 0: empty slot */
	uint64_t birth;			/* the parent pointer's */
	uint32_t cksum;			/* the parent pointer's */
	uint8_t kind, level;
	bool snap;			/* inside a snapshot's tree */
	uint8_t state;			/* MV_EXPECTED | MV_DONE */
	uint64_t ino, idx;
	uint8_t *data;			/* cp mode: stashed copy */
};
_Static_assert(sizeof(struct mv_ent) == 48, "mv_ent size");

#define MV_EXPECTED	1u
#define MV_DONE		2u

#define MV_MAX_DEPTH	64

static int fail(struct mir_verify *mv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(struct mir_verify *mv, const char *fmt, ...)
{
	va_list ap;

	if (mv->why[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(mv->why, sizeof(mv->why), fmt, ap);
		va_end(ap);
	}
	return FL_ERR(-FL_ECORRUPT);
}

int mv_init(struct mir_verify *mv, uint64_t base, uint64_t target,
    uint64_t nvbns)
{
	memset(mv, 0, sizeof(*mv));
	mv->base = base;
	mv->target = target;
	mv->nvbns = nvbns;
	mv->cap = 1024;
	mv->tab = mir_big_alloc(mv->cap * sizeof(*mv->tab));
	return mv->tab == NULL ? -ENOMEM : 0;
}

void mv_release(struct mir_verify *mv)
{
	for (uint64_t i = 0; mv->tab != NULL && i < mv->cap; i++)
		wafl_blk_free(mv->tab[i].data);
	mir_big_free(mv->tab, mv->cap * sizeof(*mv->tab));
	mv->tab = NULL;
}

static uint64_t hash_vbn(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdull;
	v ^= v >> 33;
	return v;
}

/*
 * Runs of 16 consecutive VBNs stay in consecutive slots (a run's place is
 * hashed): a file's blocks arrive, and their pointers are expected, in
 * VBN order, so lookups and growth walk memory in order instead of
 * missing the cache on every block.
 */
static struct mv_ent *slot_of(struct mv_ent *tab, uint64_t cap, uint64_t vbn)
{
	uint64_t i = (hash_vbn(vbn >> 4) << 4 | (vbn & 15)) & (cap - 1);

	while (tab[i].vbn != 0 && tab[i].vbn != vbn)
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

/* Room for `want` entries at load 1/2 (0, or -ENOMEM). */
static int reserve(struct mir_verify *mv, uint64_t want)
{
	uint64_t ncap = mv->cap;

	while (want * 2 > ncap)
		ncap *= 2;
	if (ncap == mv->cap)
		return 0;
	struct mv_ent *nt = mir_big_alloc(ncap * sizeof(*nt));
	if (nt == NULL)
		return -ENOMEM;
	for (uint64_t i = 0; i < mv->cap; i++)
		if (mv->tab[i].vbn != 0)
			*slot_of(nt, ncap, mv->tab[i].vbn) = mv->tab[i];
	mir_big_free(mv->tab, mv->cap * sizeof(*mv->tab));
	mv->tab = nt;
	mv->cap = ncap;
	return 0;
}

/* The entry for vbn, created empty if absent (NULL: out of memory). */
static struct mv_ent *lookup(struct mir_verify *mv, uint64_t vbn,
    bool create)
{
	if (create && (mv->used + 1) * 2 > mv->cap &&
	    reserve(mv, mv->used + 1) != 0)
		return NULL;
	struct mv_ent *e = slot_of(mv->tab, mv->cap, vbn);
	if (e->vbn == 0) {
		if (!create)
			return NULL;
		e->vbn = vbn;
		mv->used++;
	}
	return e;
}

static int parse(struct mir_verify *mv, const struct mv_ent *e,
    const uint8_t *data, int depth);

/* Check data against e's pointer, then parse it for children. */
static int accept(struct mir_verify *mv, struct mv_ent *e, uint64_t birth,
    uint32_t crc, const uint8_t *data, int depth)
{
	if (birth != e->birth)
		return fail(mv, "vbn %llu: birth %llu, its parent says %llu",
		    (unsigned long long)e->vbn, (unsigned long long)birth,
		    (unsigned long long)e->birth);
	if (crc != e->cksum)
		return fail(mv, "vbn %llu: checksum does not match its parent "
		    "pointer (M3)", (unsigned long long)e->vbn);
	e->state |= MV_DONE;
	mv->satisfied++;
	if (e->data != NULL)
		mv->stashed_done++;
	struct mv_ent copy = *e;	/* parse may move the table */
	return parse(mv, &copy, data, depth);
}

/* A pointer found in a verified parent (of birth parent_birth). */
static int expect(struct mir_verify *mv, const struct wafl_bp *bp,
    uint8_t kind, uint8_t level, uint64_t ino, uint64_t idx, bool snap,
    uint64_t parent_birth, int depth)
{
	if (bp->vbn == 0)
		return 0;	/* hole */
	if (bp->birth > parent_birth)
		return fail(mv, "vbn %llu born %llu under a parent born %llu "
		    "(W2)", (unsigned long long)bp->vbn,
		    (unsigned long long)bp->birth,
		    (unsigned long long)parent_birth);
	if (bp->vbn < WAFL_FSINFO_SLOTS || bp->vbn >= mv->nvbns)
		return fail(mv, "pointer to vbn %llu outside the volume",
		    (unsigned long long)bp->vbn);
	if (bp->birth <= mv->base)
		return 0;	/* already on the destination */
	if (depth > MV_MAX_DEPTH)
		return fail(mv, "tree deeper than %d levels", MV_MAX_DEPTH);
	struct mv_ent *e = lookup(mv, bp->vbn, true);
	if (e == NULL)
		return -ENOMEM;
	if (e->state & MV_EXPECTED) {
		/* A snapshot may share a subtree with the active tree. */
		if (e->birth != bp->birth || e->cksum != bp->cksum ||
		    e->kind != kind || e->level != level || e->ino != ino)
			return fail(mv, "vbn %llu referenced twice with "
			    "different pointers (W5)",
			    (unsigned long long)bp->vbn);
		return 0;
	}
	e->state |= MV_EXPECTED;
	e->birth = bp->birth;
	e->cksum = bp->cksum;
	e->kind = kind;
	e->level = level;
	e->ino = ino;
	e->idx = idx;
	e->snap = snap;
	mv->expected++;
	if (e->data != NULL)
		return accept(mv, e, bp->birth, fl_crc32c(0, e->data,
		    WAFL_BLOCK_SIZE), e->data, depth + 1);
	return 0;
}

static int parse_ptrs(struct mir_verify *mv, const struct mv_ent *e,
    const uint8_t *data, uint8_t kind, int depth)
{
	for (unsigned c = 0; c < WAFL_BPS_PER_BLOCK; c++) {
		struct wafl_bp cbp;
		if (wafl_bp_decode(data + c * WAFL_BP_SIZE, &cbp) != 0)
			return fail(mv, "vbn %llu: bad block pointer %u",
			    (unsigned long long)e->vbn, c);
		int rc = expect(mv, &cbp, kind, (uint8_t)(e->level - 1), e->ino,
		    e->idx * WAFL_BPS_PER_BLOCK + c, e->snap, e->birth,
		    depth);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int expect_tops(struct mir_verify *mv, const struct wafl_dinode *di,
    uint8_t kind, uint64_t ino, bool snap, uint64_t birth, int depth)
{
	if (di->flags & WAFL_INO_INLINE)
		return 0;
	if (di->height > WAFL_MAX_HEIGHT)
		return fail(mv, "inode %llu: height %u",
		    (unsigned long long)ino, di->height);
	for (unsigned t = 0; t < WAFL_NTOP; t++) {
		int rc = expect(mv, &di->u.top[t], kind, di->height, ino, t,
		    snap, birth, depth);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int parse(struct mir_verify *mv, const struct mv_ent *e,
    const uint8_t *data, int depth)
{
	int rc = 0;

	switch (e->kind) {
	case MV_ROOT: {
		struct wafl_rootblk rb;
		if (wafl_rootblk_decode(data, &rb) != 0 ||
		    rb.gen != e->birth)
			return fail(mv, "vbn %llu: not a root block of "
			    "generation %llu", (unsigned long long)e->vbn,
			    (unsigned long long)e->birth);
		/* A baseline expects about every block in use: make room
		 * at once rather than growing the table step by step (best
		 * effort; the table grows as needed anyway). */
		if (mv->base == 0 && !e->snap)
			(void)reserve(mv, FL_MIN(rb.blocks_used, mv->nvbns));
		return expect_tops(mv, &rb.inodefile, MV_IFILE,
		    WAFL_INO_INODEFILE, e->snap, e->birth, depth);
	}
	case MV_IFILE:
		if (e->level > 0)
			return parse_ptrs(mv, e, data, MV_IFILE, depth);
		for (unsigned i = 0; i < WAFL_INODES_PER_BLOCK && rc == 0; i++) {
			uint64_t ino = e->idx * WAFL_INODES_PER_BLOCK + i;
			struct wafl_dinode di;
			if (wafl_dinode_decode(data + i * WAFL_INODE_SIZE, ino,
			    &di) != 0)
				return fail(mv, "vbn %llu: inode %llu does not "
				    "decode", (unsigned long long)e->vbn,
				    (unsigned long long)ino);
			if (di.mode == 0 || ino == WAFL_INO_INODEFILE)
				continue;
			rc = expect_tops(mv, &di, MV_FILE, ino, e->snap,
			    e->birth, depth);
		}
		return rc;
	case MV_FILE:
		if (e->level > 0)
			return parse_ptrs(mv, e, data, MV_FILE, depth);
		/* File data; the active tree's snapshot table names the
		 * snapshot trees (a snapshot's own table is not followed:
		 * snapshots deleted since may be gone). */
		if (e->ino != WAFL_INO_SNAPTABLE || e->snap)
			return 0;
		for (unsigned i = 0; i < WAFL_SNAPS_PER_BLOCK && rc == 0; i++) {
			struct wafl_snapent se;
			if (wafl_snapent_decode(data + i * WAFL_SNAP_ENTRY_SIZE,
			    &se) != 0)
				return fail(mv, "vbn %llu: snapshot entry %u "
				    "does not decode",
				    (unsigned long long)e->vbn, i);
			if (se.gen != 0)
				rc = expect(mv, &se.root, MV_ROOT, 0, 0, 0,
				    true, e->birth, depth);
		}
		return rc;
	}
	return fail(mv, "internal: kind %u", e->kind);
}

int mv_expect_root(struct mir_verify *mv, const struct wafl_bp *root)
{
	if (root->birth != mv->target)
		return fail(mv, "root born %llu, transfer of %llu",
		    (unsigned long long)root->birth,
		    (unsigned long long)mv->target);
	return expect(mv, root, MV_ROOT, 0, 0, 0, false, root->birth, 0);
}

int mv_block(struct mir_verify *mv, uint64_t vbn, uint64_t birth,
    uint32_t crc, const uint8_t *data)
{
	struct mv_ent *e = lookup(mv, vbn, false);

	if (e == NULL || !(e->state & MV_EXPECTED))
		return fail(mv, "vbn %llu: no verified parent points at it",
		    (unsigned long long)vbn);
	if (e->state & MV_DONE)
		return fail(mv, "vbn %llu sent twice",
		    (unsigned long long)vbn);
	ASSERT(fl_crc32c(0, data, WAFL_BLOCK_SIZE) == crc);
	return accept(mv, e, birth, crc, data, 0);
}

int mv_stash(struct mir_verify *mv, uint64_t vbn, uint64_t birth,
    const uint8_t *data)
{
	if (birth != mv->target)
		return fail(mv, "vbn %llu born %llu in the batch of CP %llu",
		    (unsigned long long)vbn, (unsigned long long)birth,
		    (unsigned long long)mv->target);
	if (vbn >= mv->nvbns)
		return fail(mv, "vbn %llu outside the volume",
		    (unsigned long long)vbn);
	struct mv_ent *e = lookup(mv, vbn, true);
	if (e == NULL)
		return -ENOMEM;
	if (e->data != NULL)
		return fail(mv, "vbn %llu sent twice",
		    (unsigned long long)vbn);
	e->data = wafl_blk_alloc();
	if (e->data == NULL)
		return -ENOMEM;
	memcpy(e->data, data, WAFL_BLOCK_SIZE);
	mv->stashed++;
	mv->stash_bytes += WAFL_BLOCK_SIZE;
	return 0;
}

int mv_finish(struct mir_verify *mv)
{
	/* Each expectation is met at most once (MV_DONE), so the counts
	 * say whether all were; the table is searched only for a reason. */
	if (mv->satisfied == mv->expected && mv->stashed_done == mv->stashed)
		return 0;
	for (uint64_t i = 0; i < mv->cap; i++) {
		const struct mv_ent *e = &mv->tab[i];
		if (e->vbn == 0)
			continue;
		if ((e->state & MV_EXPECTED) && !(e->state & MV_DONE))
			return fail(mv, "vbn %llu (born %llu) never arrived",
			    (unsigned long long)e->vbn,
			    (unsigned long long)e->birth);
		if (e->data != NULL && !(e->state & MV_DONE))
			return fail(mv, "vbn %llu is not reachable from the "
			    "root", (unsigned long long)e->vbn);
	}
	return fail(mv, "internal: %llu of %llu expectations met",
	    (unsigned long long)mv->satisfied,
	    (unsigned long long)mv->expected);
}

static int cmp_ent(const void *a, const void *b)
{
	const struct mv_ent *x = *(const struct mv_ent *const *)a;
	const struct mv_ent *y = *(const struct mv_ent *const *)b;

	return x->vbn < y->vbn ? -1 : x->vbn > y->vbn;
}

int mv_for_each_stashed(struct mir_verify *mv, mv_block_fn *fn, void *arg)
{
	struct mv_ent **v = malloc((mv->stashed + 1) * sizeof(*v));
	uint64_t n = 0;
	int rc = 0;

	if (v == NULL)
		return -ENOMEM;
	for (uint64_t i = 0; i < mv->cap; i++)
		if (mv->tab[i].vbn != 0 && mv->tab[i].data != NULL &&
		    (mv->tab[i].state & MV_DONE))
			v[n++] = &mv->tab[i];
	qsort(v, n, sizeof(*v), cmp_ent);
	for (uint64_t i = 0; i < n && rc == 0; i++)
		rc = fn(arg, v[i]->vbn, v[i]->data);
	free(v);
	return rc;
}
