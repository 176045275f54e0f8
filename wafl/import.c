/*
 * wafl/import.c: a tree written by another copy of this file system
 * becomes a snapshot here, its blocks relocated to VBNs of our choosing.
 *
 * PURPOSE
 *   Resync (docs/mirror.md) overwrites one side T of a broken mirror with
 *   the other side W.  T's data written since the newest root G both
 *   sides retain must not be lost: T sends the blocks of its active tree
 *   born after G (a birth walk), and W imports them as a named snapshot.
 *   T's blocks sit on VBNs that W's own later blocks may use, so every
 *   imported block moves to a VBN W's allocator picks; blocks born at or
 *   before G are G's, which W retains, and keep their pointers.
 *
 * METHOD (under cp_serial + cp_lock exclusive, like a snapshot operation)
 *   1. plan: from T's root pointer, visit every block born after G that
 *      carries pointers or data (the root block, the inode file, every
 *      file's tree), children before parents, and give each a new VBN.
 *      Block pointers live in three kinds of block: the root block (the
 *      inode file's inode), inode-file blocks (every non-inline inode's
 *      top pointers), indirect blocks.  The imported tree's own snapshot
 *      table and summary map are emptied (snapshots nested in it would
 *      name T's VBNs), and its active bitmap is rebuilt below.
 *   2. bitmap: T's bitmap, less the old VBNs of every planned block and
 *      of T's bitmap, snapshot-table and summary files, plus every new VBN
 *      (the new bitmap file's own blocks included).  W4 holds for the
 *      imported root.
 *   3. seal children before parents: rewrite each moved child's pointer
 *      {new vbn, birth n, checksum} in its parent, where n is the open
 *      generation (the CP that makes the import durable), so W2 holds.
 *   4. write the blocks (raid_write, raid_flush), add the snapshot entry,
 *      OR the new bitmap into the summary map (W9), then CP n.
 *   The new VBNs leave the active bitmap at once (the blocks are the
 *   snapshot's alone) but stay unavailable in the allocator's areas, and
 *   the summary map keeps them so from the CP on.
 *
 * CRASH
 *   Before CP n is durable nothing points at the written blocks: they lie
 *   on VBNs no retained root uses, so a crash leaves the volume as it was.
 *
 * CHECKS
 *   Every block is checked against the pointer its parent holds (checksum
 *   and birth) as it is fetched from the caller; pointers born after the
 *   parent (W2), reached twice (W5), or out of the volume are refused with
 *   -FL_ECORRUPT and nothing is changed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "wafl/wafl_impl.h"

enum { K_ROOT = 1, K_IFILE, K_FILE };

struct imp_node {
	struct wafl_bp old;
	uint8_t kind, level;
	uint64_t idx;			/* block index at its level */
	uint64_t new_vbn;
	struct wafl_bp nbp;		/* sealed pointer */
};

struct imp {
	struct wafl_vol *v;
	uint64_t base, gen;
	wafl_import_get_fn *get;
	void *arg;
	struct imp_node *nodes;
	uint64_t n, cap;
	/* old vbn -> node index + 1 (open addressing) */
	uint64_t *hk, *hv;
	uint64_t hcap;
	struct wafl_dinode tbm, tst, tsm;	/* T's specials */
	bool have_specials;
	uint8_t *bits;			/* new bitmap, nbm_blocks blocks */
	uint64_t nbm_blocks;
	uint64_t *bm_vbns;		/* new bitmap file: per level runs */
	uint64_t bm_count;
	uint8_t *out;			/* sealed block data, n + bm_count */
	uint64_t *out_vbn;
	uint64_t nout;
};

static int h_put(struct imp *im, uint64_t key, uint64_t val)
{
	if ((im->n + 1) * 2 > im->hcap) {
		uint64_t ncap = im->hcap ? im->hcap * 2 : 1024;
		uint64_t *nk = calloc(ncap, sizeof(*nk));
		uint64_t *nv = calloc(ncap, sizeof(*nv));
		if (nk == NULL || nv == NULL) {
			free(nk);
			free(nv);
			return -ENOMEM;
		}
		for (uint64_t i = 0; i < im->hcap; i++) {
			if (im->hk[i] == 0)
				continue;
			uint64_t j = (im->hk[i] * 0x9e3779b97f4a7c15ull) &
			    (ncap - 1);
			while (nk[j] != 0)
				j = (j + 1) & (ncap - 1);
			nk[j] = im->hk[i];
			nv[j] = im->hv[i];
		}
		free(im->hk);
		free(im->hv);
		im->hk = nk;
		im->hv = nv;
		im->hcap = ncap;
	}
	uint64_t j = (key * 0x9e3779b97f4a7c15ull) & (im->hcap - 1);
	while (im->hk[j] != 0) {
		if (im->hk[j] == key)
			return -EEXIST;
		j = (j + 1) & (im->hcap - 1);
	}
	im->hk[j] = key;
	im->hv[j] = val;
	return 0;
}

static uint64_t h_get(const struct imp *im, uint64_t key)
{
	if (im->hcap == 0)
		return 0;
	uint64_t j = (key * 0x9e3779b97f4a7c15ull) & (im->hcap - 1);
	while (im->hk[j] != 0) {
		if (im->hk[j] == key)
			return im->hv[j];
		j = (j + 1) & (im->hcap - 1);
	}
	return 0;
}

/* A block of T's tree: from the caller if born after the base, else from
 * our own disks (the base root is retained here, W3); verified (W1). */
static int src_read(struct imp *im, const struct wafl_bp *bp, uint8_t *buf)
{
	if (bp->vbn == 0) {
		memset(buf, 0, WAFL_BLOCK_SIZE);
		return 0;
	}
	if (bp->vbn >= im->v->nvbns)
		return FL_ERR(-FL_ECORRUPT);
	if (bp->birth <= im->base)
		return wafl_read_bp(im->v, bp, buf);
	int rc = im->get(im->arg, bp->vbn, bp->birth, buf);
	if (rc != 0)
		return rc;
	if (fl_crc32c(0, buf, WAFL_BLOCK_SIZE) != bp->cksum)
		return FL_ERR(-FL_ECORRUPT);
	return 0;
}

static int plan(struct imp *im, const struct wafl_bp *bp, unsigned kind,
    unsigned level, uint64_t idx);

static int plan_inode(struct imp *im, const struct wafl_dinode *di,
    unsigned kind, uint64_t parent_birth)
{
	int rc = 0;

	if (di->flags & WAFL_INO_INLINE)
		return 0;
	for (unsigned t = 0; t < WAFL_NTOP && rc == 0; t++) {
		if (di->u.top[t].vbn != 0 && di->u.top[t].birth > parent_birth)
			return FL_ERR(-FL_ECORRUPT);	/* W2 */
		rc = plan(im, &di->u.top[t], kind, di->height, t);
	}
	return rc;
}

static int plan(struct imp *im, const struct wafl_bp *bp, unsigned kind,
    unsigned level, uint64_t idx)
{
	uint8_t *blk;
	int rc;

	if (bp->vbn == 0 || bp->birth <= im->base)
		return 0;
	blk = malloc(WAFL_BLOCK_SIZE);
	if (blk == NULL)
		return -ENOMEM;
	rc = src_read(im, bp, blk);
	if (rc != 0)
		goto out;
	if (kind == K_ROOT) {
		struct wafl_rootblk rb;
		rc = wafl_rootblk_decode(blk, &rb);
		if (rc == 0)
			rc = plan_inode(im, &rb.inodefile, K_IFILE, bp->birth);
	} else if (level > 0) {
		for (unsigned c = 0; c < WAFL_BPS_PER_BLOCK && rc == 0; c++) {
			struct wafl_bp cbp;
			rc = wafl_bp_decode(blk + c * WAFL_BP_SIZE, &cbp);
			if (rc == 0 && cbp.vbn != 0 && cbp.birth > bp->birth)
				rc = FL_ERR(-FL_ECORRUPT);	/* W2 */
			if (rc == 0)
				rc = plan(im, &cbp, kind, level - 1,
				    idx * WAFL_BPS_PER_BLOCK + c);
		}
	} else if (kind == K_IFILE) {
		for (unsigned i = 0; i < WAFL_INODES_PER_BLOCK && rc == 0; i++) {
			struct wafl_dinode di;
			uint64_t ino = idx * WAFL_INODES_PER_BLOCK + i;
			rc = wafl_dinode_decode(blk + i * WAFL_INODE_SIZE, ino,
			    &di);
			if (rc != 0 || di.mode == 0 || ino == WAFL_INO_INODEFILE)
				continue;
			if (ino == WAFL_INO_BITMAP || ino == WAFL_INO_SNAPTABLE ||
			    ino == WAFL_INO_SUMMARY) {
				if (ino == WAFL_INO_BITMAP)
					im->tbm = di;
				else if (ino == WAFL_INO_SNAPTABLE)
					im->tst = di;
				else
					im->tsm = di;
				im->have_specials = true;
				continue;
			}
			rc = plan_inode(im, &di, K_FILE, bp->birth);
		}
	}
	if (rc != 0)
		goto out;
	/* children are in: now this block (post-order) */
	if (im->n == im->cap) {
		uint64_t cap = im->cap ? im->cap * 2 : 1024;
		struct imp_node *nn = realloc(im->nodes, cap * sizeof(*nn));
		if (nn == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		im->nodes = nn;
		im->cap = cap;
	}
	rc = h_put(im, bp->vbn, im->n + 1);
	if (rc == -EEXIST)
		rc = FL_ERR(-FL_ECORRUPT);	/* W5 */
	if (rc != 0)
		goto out;
	im->nodes[im->n++] = (struct imp_node){ .old = *bp,
	    .kind = (uint8_t)kind, .level = (uint8_t)level, .idx = idx };
out:
	free(blk);
	return rc;
}

/* Clear the bits of every block of one of T's files (any birth). */
static int clear_file(struct imp *im, const struct wafl_bp *bp,
    unsigned level)
{
	int rc = 0;

	if (bp->vbn == 0)
		return 0;
	if (bp->vbn >= im->v->nvbns)
		return FL_ERR(-FL_ECORRUPT);
	if (bp->vbn / WAFL_BITS_PER_BLOCK < im->nbm_blocks)
		im->bits[bp->vbn / 8] &= (uint8_t)~(1u << (bp->vbn % 8));
	if (level == 0)
		return 0;
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	if (blk == NULL)
		return -ENOMEM;
	rc = src_read(im, bp, blk);
	for (unsigned c = 0; c < WAFL_BPS_PER_BLOCK && rc == 0; c++) {
		struct wafl_bp cbp;
		rc = wafl_bp_decode(blk + c * WAFL_BP_SIZE, &cbp);
		if (rc == 0)
			rc = clear_file(im, &cbp, level - 1);
	}
	free(blk);
	return rc;
}

/* Block fbn of a file of T's tree. */
static int src_file_block(struct imp *im, const struct wafl_dinode *di,
    uint64_t fbn, uint8_t *buf)
{
	uint64_t span = wafl_height_capacity(di->height) / WAFL_NTOP;
	struct wafl_bp bp = di->u.top[fbn / span];
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	int rc = blk == NULL ? -ENOMEM : 0;

	if (fbn / span >= WAFL_NTOP)
		rc = FL_ERR(-FL_ECORRUPT);
	for (unsigned l = di->height; rc == 0 && l > 0 && bp.vbn != 0; l--) {
		rc = src_read(im, &bp, blk);
		uint64_t slot = (fbn >> (7 * (l - 1))) & (WAFL_BPS_PER_BLOCK - 1);
		if (rc == 0)
			rc = wafl_bp_decode(blk + slot * WAFL_BP_SIZE, &bp);
	}
	if (rc == 0)
		rc = src_read(im, &bp, buf);
	free(blk);
	return rc;
}

static void bit_on(uint8_t *bits, uint64_t vbn)
{
	bits[vbn / 8] |= (uint8_t)(1u << (vbn % 8));
}

static int take_vbn(struct imp *im, uint64_t *vbn)
{
	int rc = alloc_block(im->v, vbn);

	/* The block is the snapshot's, not the active file system's: out
	 * of the active bitmap, still unavailable in the allocator's area,
	 * and in the summary map once the entry is added. */
	if (rc == 0)
		rc = bitmap_set(im->v->bitmap_wn, *vbn, false);
	if (rc == 0)
		im->v->blocks_used--;
	return rc;
}

static void emit(struct imp *im, uint64_t vbn, const uint8_t *data)
{
	memcpy(im->out + im->nout * WAFL_BLOCK_SIZE, data, WAFL_BLOCK_SIZE);
	im->out_vbn[im->nout++] = vbn;
}

static struct wafl_bp seal_bp(struct imp *im, uint64_t vbn,
    const uint8_t *data)
{
	return (struct wafl_bp){ .vbn = vbn, .birth = im->gen,
	    .cksum = fl_crc32c(0, data, WAFL_BLOCK_SIZE) };
}

/* Rewrite one pointer of T's tree: moved blocks get their new pointer. */
static struct wafl_bp map_bp(struct imp *im, const struct wafl_bp *bp)
{
	if (bp->vbn == 0 || bp->birth <= im->base)
		return *bp;
	uint64_t k = h_get(im, bp->vbn);
	VERIFY(k != 0);
	return im->nodes[k - 1].nbp;
}

static void map_inode(struct imp *im, struct wafl_dinode *di)
{
	if (di->flags & WAFL_INO_INLINE)
		return;
	for (unsigned t = 0; t < WAFL_NTOP; t++)
		di->u.top[t] = map_bp(im, &di->u.top[t]);
}

static void empty_inode(struct wafl_dinode *di)
{
	di->size = 0;
	di->blocks = 0;
	di->height = 0;
	memset(&di->u, 0, sizeof(di->u));
}

/*
 * The new bitmap file: same height and size as T's, every block written.
 * Level l has ceil(nb / 128^l) blocks; the VBNs were taken level by level
 * into bm_vbns.  Fills nbm (tops, block count).
 */
static int seal_bitmap(struct imp *im, struct wafl_dinode *nbm)
{
	unsigned h = im->tbm.height;
	uint64_t per[WAFL_MAX_HEIGHT + 1], off = 0;
	struct wafl_bp *prev = NULL, *cur = NULL;
	uint8_t *blk = calloc(1, WAFL_BLOCK_SIZE);
	int rc = blk == NULL ? -ENOMEM : 0;

	per[0] = im->nbm_blocks;
	for (unsigned l = 1; l <= h; l++)
		per[l] = FL_DIV_ROUND_UP_U64(per[l - 1], WAFL_BPS_PER_BLOCK);
	for (unsigned l = 0; l <= h && rc == 0; l++) {
		cur = calloc(per[l], sizeof(*cur));
		if (cur == NULL) {
			rc = -ENOMEM;
			break;
		}
		for (uint64_t j = 0; j < per[l]; j++) {
			if (l == 0) {
				memcpy(blk, im->bits + j * WAFL_BLOCK_SIZE,
				    WAFL_BLOCK_SIZE);
			} else {
				memset(blk, 0, WAFL_BLOCK_SIZE);
				for (uint64_t c = 0; c < WAFL_BPS_PER_BLOCK &&
				    j * WAFL_BPS_PER_BLOCK + c < per[l - 1]; c++)
					wafl_bp_encode(blk + c * WAFL_BP_SIZE,
					    &prev[j * WAFL_BPS_PER_BLOCK + c]);
			}
			uint64_t vbn = im->bm_vbns[off + j];
			cur[j] = seal_bp(im, vbn, blk);
			emit(im, vbn, blk);
		}
		off += per[l];
		free(prev);
		prev = cur;
		cur = NULL;
	}
	if (rc == 0) {
		*nbm = im->tbm;
		memset(&nbm->u, 0, sizeof(nbm->u));
		for (uint64_t t = 0; t < per[h] && t < WAFL_NTOP; t++)
			nbm->u.top[t] = prev[t];
		nbm->blocks = im->bm_count;
	}
	free(prev);
	free(blk);
	return rc;
}

static int seal_node(struct imp *im, struct imp_node *nd,
    const struct wafl_dinode *nbm, uint64_t used, uint8_t *blk)
{
	int rc = src_read(im, &nd->old, blk);

	if (rc != 0)
		return rc;
	if (nd->kind == K_ROOT) {
		struct wafl_rootblk rb;
		rc = wafl_rootblk_decode(blk, &rb);
		if (rc != 0)
			return rc;
		map_inode(im, &rb.inodefile);
		rb.gen = im->gen;
		rb.blocks_used = used;
		wafl_rootblk_encode(blk, &rb);
	} else if (nd->level > 0) {
		for (unsigned c = 0; c < WAFL_BPS_PER_BLOCK && rc == 0; c++) {
			struct wafl_bp cbp;
			rc = wafl_bp_decode(blk + c * WAFL_BP_SIZE, &cbp);
			if (rc == 0) {
				cbp = map_bp(im, &cbp);
				wafl_bp_encode(blk + c * WAFL_BP_SIZE, &cbp);
			}
		}
	} else if (nd->kind == K_IFILE) {
		for (unsigned i = 0; i < WAFL_INODES_PER_BLOCK && rc == 0; i++) {
			struct wafl_dinode di;
			uint64_t ino = nd->idx * WAFL_INODES_PER_BLOCK + i;
			uint8_t *p = blk + i * WAFL_INODE_SIZE;
			rc = wafl_dinode_decode(p, ino, &di);
			if (rc != 0 || di.mode == 0 || ino == WAFL_INO_INODEFILE)
				continue;
			if (ino == WAFL_INO_BITMAP)
				di = *nbm;
			else if (ino == WAFL_INO_SNAPTABLE ||
			    ino == WAFL_INO_SUMMARY)
				empty_inode(&di);
			else
				map_inode(im, &di);
			wafl_dinode_encode(p, &di);
		}
	}
	if (rc != 0)
		return rc;
	nd->nbp = seal_bp(im, nd->new_vbn, blk);
	emit(im, nd->new_vbn, blk);
	return 0;
}

static int imp_run(struct imp *im, const char *name, const struct wafl_bp *root,
    struct wafl_import_stats *st)
{
	struct wafl_vol *v = im->v;
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	int rc = blk == NULL ? -ENOMEM : 0;

	if (rc == 0)
		rc = plan(im, root, K_ROOT, 0, 0);
	if (rc == 0 && (im->n == 0 || !im->have_specials ||
	    im->nodes[im->n - 1].kind != K_ROOT))
		rc = FL_ERR(-FL_ECORRUPT);	/* block 0 of the inode file
						   must have changed */
	if (rc != 0)
		goto out;
	/* T's bitmap, the base of the new one. */
	im->nbm_blocks = FL_DIV_ROUND_UP_U64(im->tbm.size, WAFL_BLOCK_SIZE);
	if (im->nbm_blocks == 0 || im->nbm_blocks > v->nareas ||
	    (im->tbm.flags & WAFL_INO_INLINE) ||
	    im->nbm_blocks > wafl_height_capacity(im->tbm.height)) {
		rc = FL_ERR(-FL_ECORRUPT);
		goto out;
	}
	im->bits = calloc(im->nbm_blocks, WAFL_BLOCK_SIZE);
	if (im->bits == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint64_t b = 0; b < im->nbm_blocks && rc == 0; b++)
		rc = src_file_block(im, &im->tbm, b,
		    im->bits + b * WAFL_BLOCK_SIZE);
	/* Out: every moved block's old place, and T's bitmap, snapshot
	 * table and summary files (replaced or emptied). */
	for (uint64_t i = 0; i < im->n && rc == 0; i++) {
		uint64_t o = im->nodes[i].old.vbn;
		im->bits[o / 8] &= (uint8_t)~(1u << (o % 8));
	}
	const struct wafl_dinode *sp[] = { &im->tbm, &im->tst, &im->tsm };
	for (size_t k = 0; k < 3 && rc == 0; k++) {
		if (sp[k]->mode == 0 || (sp[k]->flags & WAFL_INO_INLINE))
			continue;
		for (unsigned t = 0; t < WAFL_NTOP && rc == 0; t++)
			rc = clear_file(im, &sp[k]->u.top[t], sp[k]->height);
	}
	if (rc != 0)
		goto out;
	/* In: new places for every moved block and the new bitmap file. */
	uint64_t per = im->nbm_blocks;
	im->bm_count = per;
	for (unsigned l = 1; l <= im->tbm.height; l++) {
		per = FL_DIV_ROUND_UP_U64(per, WAFL_BPS_PER_BLOCK);
		im->bm_count += per;
	}
	im->bm_vbns = calloc(im->bm_count, sizeof(*im->bm_vbns));
	im->out = malloc((im->n + im->bm_count) * WAFL_BLOCK_SIZE);
	im->out_vbn = calloc(im->n + im->bm_count, sizeof(*im->out_vbn));
	if (im->bm_vbns == NULL || im->out == NULL || im->out_vbn == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint64_t i = 0; i < im->n && rc == 0; i++)
		rc = take_vbn(im, &im->nodes[i].new_vbn);
	for (uint64_t i = 0; i < im->bm_count && rc == 0; i++)
		rc = take_vbn(im, &im->bm_vbns[i]);
	if (rc != 0)
		goto out;
	for (uint64_t i = 0; i < im->n; i++)
		bit_on(im->bits, im->nodes[i].new_vbn);
	for (uint64_t i = 0; i < im->bm_count; i++)
		bit_on(im->bits, im->bm_vbns[i]);
	uint64_t used = 0;
	for (uint64_t i = 0; i < im->nbm_blocks * WAFL_BLOCK_SIZE; i++)
		used += (uint64_t)__builtin_popcount(im->bits[i]);
	/* Seal: the bitmap file, then T's blocks children first. */
	struct wafl_dinode nbm;
	rc = seal_bitmap(im, &nbm);
	for (uint64_t i = 0; i < im->n && rc == 0; i++)
		rc = seal_node(im, &im->nodes[i], &nbm, used, blk);
	if (rc != 0)
		goto out;
	for (uint64_t i = 0; i < im->nout && rc == 0; i++)
		rc = raid_write(v->raid, im->out_vbn[i], 1,
		    im->out + i * WAFL_BLOCK_SIZE);
	if (rc == 0)
		rc = raid_flush(v->raid);
	if (rc != 0)
		goto out;
	/* Summary |= the new bitmap (W9); then the entry. */
	for (uint64_t a = 0; a < im->nbm_blocks && a < v->nareas && rc == 0;
	    a++)
		rc = summary_or_block(v, a, im->bits + a * WAFL_BLOCK_SIZE, blk);
	struct wafl_bp nroot = im->nodes[im->n - 1].nbp;
	uint64_t id = 0;
	if (rc == 0)
		rc = snap_insert(v, name, im->gen, &nroot, SNAP_ID_IMPORTED,
		    &id);
	if (rc == 0 && st != NULL) {
		st->gen = im->gen;
		st->id = id;
		st->blocks = im->n;
		st->bitmap_blocks = im->bm_count;
	}
out:
	free(blk);
	return rc;
}

int wafl_import_snapshot(wafl_vol_t *v, const char *name, uint64_t base_gen,
    const struct wafl_bp *root, wafl_import_get_fn *get, void *arg,
    struct wafl_import_stats *st)
{
	struct imp im = { .v = v, .base = base_gen, .get = get, .arg = arg };
	int rc;

	if (v->readonly || v->failed)
		return FL_ERR(-EROFS);
	if (root->vbn == 0 || root->birth <= base_gen)
		return FL_ERR(-EINVAL);	/* nothing diverged */
	pthread_mutex_lock(&v->cp_serial);
	pthread_rwlock_wrlock(&v->cp_lock);
	/* The imported blocks are stamped with the open generation: T's
	 * births (its own numbering since the base) are only compared with
	 * the base, never kept. */
	im.gen = v->open_gen;
	rc = snap_name_free(v, name);
	if (rc == 0)
		rc = imp_run(&im, name, root, st);
	if (rc != 0)
		alloc_reset_areas(v);	/* VBNs taken are free again */
	pthread_rwlock_unlock(&v->cp_lock);
	pthread_mutex_unlock(&v->cp_serial);
	free(im.nodes);
	free(im.hk);
	free(im.hv);
	free(im.bits);
	free(im.bm_vbns);
	free(im.out);
	free(im.out_vbn);
	if (rc == 0)
		rc = cp_run(v);
	if (rc == 0)
		fl_info("wafl", "snapshot %s imported: %llu blocks moved, %llu "
		    "bitmap blocks, generation %llu", name,
		    (unsigned long long)(st ? st->blocks : 0),
		    (unsigned long long)(st ? st->bitmap_blocks : 0),
		    (unsigned long long)im.gen);
	else
		fl_err("wafl", "import of snapshot %s: %s", name,
		    fl_strerror(rc));
	return rc;
}
