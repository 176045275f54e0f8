/*
 * wafl/import.c: trees written by another copy of this file system
 * become snapshots here, their blocks relocated to VBNs of our choosing.
 *
 * PURPOSE
 *   Resync (docs/mirror.md) overwrites one side T of a broken mirror with
 *   the other side W.  T's data written since the newest root G both
 *   sides retain must not be lost: T sends the blocks born after G of its
 *   active tree and of every snapshot it made after G, and W imports each
 *   tree as a named snapshot, all of them in one call.  T's blocks sit on
 *   VBNs that W's own later blocks may use, so every imported block moves
 *   to a VBN W's allocator picks; blocks born at or before G are G's,
 *   which W retains, and keep their pointers.
 *
 * SHARING
 *   T's trees share blocks (a snapshot and the active tree hold the same
 *   unchanged file).  On T a VBN names one block in every retained tree
 *   (W3), and here a block is known by its whole pointer {vbn, birth,
 *   checksum}: a block reached from a second tree with the same pointer,
 *   at the same place (kind, level, index), is the same block with the
 *   same children (the Merkle property).  It moves once: the call keeps
 *   one map old VBN -> moved block over all its trees, and a later tree
 *   points at the copy an earlier one wrote.  Only the blocks that carry
 *   a tree's own bitmap are rewritten for every tree: the root block and
 *   the inode-file blocks on the path to inode-file block 0 (inodes 1, 3
 *   and 4: bitmap, snapshot table, summary).  Each tree still gets an
 *   active bitmap of its own holding every VBN it uses, shared or not, so
 *   the summary map (the OR of all snapshots' bitmaps, W9) keeps a shared
 *   block while any snapshot that uses it exists: deleting one imported
 *   snapshot frees only what no other root holds.
 *
 * METHOD (under cp_serial + cp_lock exclusive, like a snapshot operation)
 *   0. names: each valid and unused, all distinct, and room in the
 *      snapshot table for all of them; else nothing is done.
 *   1. plan, every tree oldest first: from its root pointer, visit every
 *      block born after G that carries pointers or data (the root block,
 *      the inode file, every file's tree), children before parents; a
 *      block not moved yet by this call becomes a node.  Block pointers
 *      live in three kinds of block: the root block (the inode file's
 *      inode), inode-file blocks (every non-inline inode's top pointers),
 *      indirect blocks.  The tree's own bitmap, snapshot-table and
 *      summary files are visited, not planned: the snapshot table and
 *      summary map are emptied (snapshots nested in it would name T's
 *      VBNs), the bitmap is rebuilt below.  Every block is verified here;
 *      with `supplied`, every block the caller holds must have been
 *      reached from one of the roots.  Nothing has changed yet.
 *   2. per tree: bitmap = T's bitmap AND the base root's bitmap, less
 *      the old VBNs of every block of the tree that moves and of its
 *      bitmap, snapshot-table and summary files, plus every new VBN it
 *      uses (its new bitmap file's own blocks, and blocks moved for an
 *      earlier tree, included): W4 holds for each imported root.  T's
 *      bitmap is trusted only within the base's: a block that keeps its
 *      VBN is born at or before the base and step 1 found it in the
 *      base's bitmap (its subtree is the base's too, W4 there), and every
 *      other block moves and is added by its new VBN; so a bit T sets
 *      outside the base names no block the tree uses, and kept it would
 *      pin a VBN here (free, or later W's own) until the snapshot is
 *      deleted.  The AND costs a pass over bitmaps already at hand; the
 *      alternative, the set of blocks the tree reaches, would mean
 *      walking every unmoved subtree of the base.  New VBNs for blocks not moved yet; seal
 *      children before parents, rewriting each moved child's pointer
 *      {new vbn, birth n, checksum} in its parent, where n is the open
 *      generation (the CP that makes the import durable): W2 holds, a
 *      block moved for an earlier tree has birth n too.  Write the
 *      tree's new blocks (raid_write).
 *   3. raid_flush; OR every new bitmap into the summary map (W9), add the
 *      snapshot entries, then CP n: all trees become durable together.
 *      All or none: the summary blocks are saved before the first OR, and
 *      if an entry cannot be added (or an OR fails) the entries added are
 *      dropped and every changed summary block gets its saved content
 *      back before the locks are released, so no CP ever sees part of the
 *      set (imp_publish).  The snapshot table may keep the empty slots,
 *      as after a delete.
 *   The new VBNs leave the active bitmap at once (the blocks are the
 *   snapshots' alone) but stay unavailable in the allocator's areas, and
 *   the summary map keeps them so from the CP on.
 *   One CP for every tree rather than one per tree: the snapshots become
 *   durable together, so a crash or a refusal leaves none of them (a
 *   repeated resync never finds part of its set under the names it
 *   wants), every tree is verified before a VBN is taken, and a block
 *   shared by two trees is born in the CP of both (W2 trivially).
 *
 * CRASH
 *   Before CP n is durable nothing points at the written blocks: they lie
 *   on VBNs no retained root uses, so a crash leaves the volume as it was,
 *   with none of the snapshots.  A failure in any step frees the VBNs
 *   taken (alloc_reset_areas: they are in neither the active bitmap nor,
 *   after step 3's undo, the summary map) and leaves nothing else
 *   changed.  Should the undo itself fail, the volume is failed (no CP
 *   writes the half-set; remount).
 *
 * CHECKS
 *   Every block is checked against the pointer its parent holds (checksum
 *   and birth) as it is fetched from the caller; pointers born after the
 *   parent (W2), reached twice in one tree (W5), out of the volume, or
 *   naming a block moved for an earlier tree at another place are refused
 *   with -FL_ECORRUPT and nothing is changed.  A pointer born at or before
 *   the base keeps its VBN, so the block must be one of the base root's
 *   (in its active bitmap): a tree of the other copy whose active tree was
 *   rolled back to a snapshot older than the base uses blocks the base
 *   does not hold, which may be free or reused here: -ESTALE, nothing
 *   changed.  The base must be retained here (ring, hold or snapshot).
 *
 * LIMITS
 *   The plan (one node per moved block, one reference per block of each
 *   tree) and two bitmaps (the tree's and the union) are in memory; a
 *   block shared by several trees is read from the caller once per tree
 *   that holds it, written once.
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

/* A block of the other copy that moves: once per call, whatever number
 * of trees hold it. */
struct imp_node {
	struct wafl_bp old;
	uint8_t kind, level;
	bool sealed;
	uint64_t idx;			/* block index at its level */
	uint64_t new_vbn;		/* 0 until taken */
	struct wafl_bp nbp;		/* sealed pointer */
};

/* old vbn -> value (open addressing; VBN 0 never holds a block, so key 0
 * is an empty slot). */
struct vmap {
	uint64_t *k, *v;
	uint64_t n, cap;
};

/* One tree of the call. */
struct imp_tree {
	const char *name;
	uint64_t origin;
	struct wafl_bp root;
	int same_as;			/* earlier tree, same root; else -1 */
	struct vmap map;		/* its blocks: old vbn -> node + 1 */
	uint64_t *refs;			/* its nodes, children first */
	uint64_t nrefs, refcap, fresh;
	struct wafl_dinode tbm, tst, tsm;	/* T's specials */
	bool have_specials;
	uint8_t *bits;			/* new bitmap, nbm_blocks blocks */
	uint64_t nbm_blocks;
	uint64_t *bm_vbns;		/* new bitmap file: per level runs */
	uint64_t bm_count;
	uint8_t *out;			/* sealed block data */
	uint64_t *out_vbn;
	uint64_t nout;
	struct wafl_bp nroot;
};

struct imp {
	struct wafl_vol *v;
	uint64_t base, gen;
	wafl_import_get_fn *get;
	void *arg;
	struct imp_node *nodes;		/* every block that moves */
	uint64_t n, cap;
	struct vmap shared;		/* old vbn -> node + 1 (not the
					   per-tree blocks) */
	struct vmap reached;		/* every block born after the base */
	uint8_t *uni;			/* OR of the new bitmaps */
	uint64_t uni_blocks;
	struct imp_tree *t;		/* the tree being planned or sealed */
	struct wafl_dinode gbm;		/* the base root's active bitmap */
	uint8_t **gmap;			/* its blocks read so far (nareas) */
};

static int vmap_put(struct vmap *m, uint64_t key, uint64_t val)
{
	if ((m->n + 1) * 2 > m->cap) {
		uint64_t ncap = m->cap ? m->cap * 2 : 1024;
		uint64_t *nk = calloc(ncap, sizeof(*nk));
		uint64_t *nv = calloc(ncap, sizeof(*nv));
		if (nk == NULL || nv == NULL) {
			free(nk);
			free(nv);
			return -ENOMEM;
		}
		for (uint64_t i = 0; i < m->cap; i++) {
			if (m->k[i] == 0)
				continue;
			uint64_t j = (m->k[i] * 0x9e3779b97f4a7c15ull) &
			    (ncap - 1);
			while (nk[j] != 0)
				j = (j + 1) & (ncap - 1);
			nk[j] = m->k[i];
			nv[j] = m->v[i];
		}
		free(m->k);
		free(m->v);
		m->k = nk;
		m->v = nv;
		m->cap = ncap;
	}
	uint64_t j = (key * 0x9e3779b97f4a7c15ull) & (m->cap - 1);
	while (m->k[j] != 0) {
		if (m->k[j] == key)
			return -EEXIST;
		j = (j + 1) & (m->cap - 1);
	}
	m->k[j] = key;
	m->v[j] = val;
	m->n++;
	return 0;
}

static uint64_t vmap_get(const struct vmap *m, uint64_t key)
{
	if (m->cap == 0)
		return 0;
	uint64_t j = (key * 0x9e3779b97f4a7c15ull) & (m->cap - 1);
	while (m->k[j] != 0) {
		if (m->k[j] == key)
			return m->v[j];
		j = (j + 1) & (m->cap - 1);
	}
	return 0;
}

static void vmap_free(struct vmap *m)
{
	free(m->k);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

static bool bp_same(const struct wafl_bp *a, const struct wafl_bp *b)
{
	return a->vbn == b->vbn && a->birth == b->birth && a->cksum == b->cksum;
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

/* Block a of the base root's active bitmap (read once per call);
 * *bits borrowed until the call ends. */
static int base_bits(struct imp *im, uint64_t a, const uint8_t **bits)
{
	if (a >= im->v->nareas)
		return FL_ERR(-FL_ECORRUPT);
	if (im->gmap[a] == NULL) {
		uint8_t *m = malloc(WAFL_BLOCK_SIZE);
		if (m == NULL)
			return -ENOMEM;
		int rc = tree_read_block(im->v, &im->gbm, a, m);
		if (rc != 0) {
			free(m);
			return rc;
		}
		im->gmap[a] = m;
	}
	*bits = im->gmap[a];
	return 0;
}

/*
 * A pointer born at or before the base keeps its VBN: the block must be
 * one of the base root's, which this side retains (W3).  A tree of the
 * other copy may use an older block the base does not (its active tree
 * rolled back to a snapshot older than the base): that block may be free
 * or reused here, so the import is refused.
 */
static int base_holds(struct imp *im, const struct wafl_bp *bp)
{
	uint64_t a = bp->vbn / WAFL_BITS_PER_BLOCK;
	const uint8_t *m;
	int rc;

	if (bp->vbn >= im->v->nvbns)
		return FL_ERR(-FL_ECORRUPT);
	rc = base_bits(im, a, &m);
	if (rc != 0)
		return rc;
	if (m[bp->vbn / 8 % WAFL_BLOCK_SIZE] & (1u << (bp->vbn % 8)))
		return 0;
	fl_err("wafl", "import: vbn %llu (born %llu) is not in the base "
	    "root %llu: an older block the base does not hold",
	    (unsigned long long)bp->vbn, (unsigned long long)bp->birth,
	    (unsigned long long)im->base);
	return FL_ERR(-ESTALE);
}

/* A block born after the base was reached (counted once per call). */
static int reach(struct imp *im, const struct wafl_bp *bp)
{
	int rc = 0;

	if (bp->vbn != 0 && bp->birth > im->base) {
		rc = vmap_put(&im->reached, bp->vbn, 1);
		if (rc == -EEXIST)
			rc = 0;
	}
	return rc;
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

static int ref_add(struct imp_tree *t, uint64_t node)
{
	if (t->nrefs == t->refcap) {
		uint64_t cap = t->refcap ? t->refcap * 2 : 1024;
		uint64_t *nr = realloc(t->refs, cap * sizeof(*nr));
		if (nr == NULL)
			return -ENOMEM;
		t->refs = nr;
		t->refcap = cap;
	}
	t->refs[t->nrefs++] = node;
	return 0;
}

static int plan(struct imp *im, const struct wafl_bp *bp, unsigned kind,
    unsigned level, uint64_t idx)
{
	struct imp_tree *t = im->t;
	uint8_t *blk;
	int rc;

	if (bp->vbn == 0)
		return 0;
	if (bp->birth <= im->base)
		return base_holds(im, bp);
	if (vmap_get(&t->map, bp->vbn) != 0)
		return FL_ERR(-FL_ECORRUPT);	/* W5 */
	/* The root block and the inode-file blocks over inode-file block 0
	 * hold this tree's own bitmap: rewritten for every tree. */
	bool own = kind == K_ROOT || (kind == K_IFILE && idx == 0);
	uint64_t k = own ? 0 : vmap_get(&im->shared, bp->vbn);
	if (k != 0) {
		const struct imp_node *nd = &im->nodes[k - 1];
		if (!bp_same(&nd->old, bp) || nd->kind != kind ||
		    nd->level != level || nd->idx != idx)
			return FL_ERR(-FL_ECORRUPT);	/* not the same block */
	}
	blk = malloc(WAFL_BLOCK_SIZE);
	if (blk == NULL)
		return -ENOMEM;
	rc = src_read(im, bp, blk);
	if (rc == 0)
		rc = reach(im, bp);
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
					t->tbm = di;
				else if (ino == WAFL_INO_SNAPTABLE)
					t->tst = di;
				else
					t->tsm = di;
				t->have_specials = true;
				continue;
			}
			rc = plan_inode(im, &di, K_FILE, bp->birth);
		}
	}
	if (rc != 0)
		goto out;
	/* children are in: now this block (post-order) */
	if (k == 0) {
		if (im->n == im->cap) {
			uint64_t cap = im->cap ? im->cap * 2 : 1024;
			struct imp_node *nn = realloc(im->nodes,
			    cap * sizeof(*nn));
			if (nn == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			im->nodes = nn;
			im->cap = cap;
		}
		im->nodes[im->n++] = (struct imp_node){ .old = *bp,
		    .kind = (uint8_t)kind, .level = (uint8_t)level, .idx = idx };
		k = im->n;
		t->fresh++;
		if (!own)
			rc = vmap_put(&im->shared, bp->vbn, k);
	}
	if (rc == 0)
		rc = vmap_put(&t->map, bp->vbn, k);
	if (rc == -EEXIST)
		rc = FL_ERR(-FL_ECORRUPT);	/* W5 */
	if (rc == 0)
		rc = ref_add(t, k - 1);
out:
	free(blk);
	return rc;
}

/* Every block of one of T's special files (any birth): reached, and its
 * bit cleared in the tree's new bitmap once there is one. */
static int clear_file(struct imp *im, const struct wafl_bp *bp,
    unsigned level)
{
	struct imp_tree *t = im->t;
	int rc = 0;

	if (bp->vbn == 0)
		return 0;
	if (bp->vbn >= im->v->nvbns)
		return FL_ERR(-FL_ECORRUPT);
	rc = reach(im, bp);
	if (rc != 0)
		return rc;
	if (t->bits != NULL && bp->vbn / WAFL_BITS_PER_BLOCK < t->nbm_blocks)
		t->bits[bp->vbn / 8] &= (uint8_t)~(1u << (bp->vbn % 8));
	if (level == 0)
		return 0;
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	if (blk == NULL)
		return -ENOMEM;
	rc = src_read(im, bp, blk);
	for (unsigned c = 0; c < WAFL_BPS_PER_BLOCK && rc == 0; c++) {
		struct wafl_bp cbp;
		rc = wafl_bp_decode(blk + c * WAFL_BP_SIZE, &cbp);
		if (rc == 0 && cbp.vbn != 0 && cbp.birth > bp->birth)
			rc = FL_ERR(-FL_ECORRUPT);	/* W2 */
		if (rc == 0)
			rc = clear_file(im, &cbp, level - 1);
	}
	free(blk);
	return rc;
}

static int clear_specials(struct imp *im)
{
	struct imp_tree *t = im->t;
	const struct wafl_dinode *sp[] = { &t->tbm, &t->tst, &t->tsm };
	int rc = 0;

	for (size_t k = 0; k < 3 && rc == 0; k++) {
		if (sp[k]->mode == 0 || (sp[k]->flags & WAFL_INO_INLINE))
			continue;
		for (unsigned i = 0; i < WAFL_NTOP && rc == 0; i++)
			rc = clear_file(im, &sp[k]->u.top[i], sp[k]->height);
	}
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

	/* The block is the snapshots', not the active file system's: out
	 * of the active bitmap, still unavailable in the allocator's area,
	 * and in the summary map once the entries are added. */
	if (rc == 0)
		rc = bitmap_set(im->v->bitmap_wn, *vbn, false);
	if (rc == 0)
		im->v->blocks_used--;
	return rc;
}

static void emit(struct imp *im, uint64_t vbn, const uint8_t *data)
{
	struct imp_tree *t = im->t;

	memcpy(t->out + t->nout * WAFL_BLOCK_SIZE, data, WAFL_BLOCK_SIZE);
	t->out_vbn[t->nout++] = vbn;
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
	uint64_t k = vmap_get(&im->t->map, bp->vbn);
	VERIFY(k != 0 && im->nodes[k - 1].sealed);
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
	struct imp_tree *t = im->t;
	unsigned h = t->tbm.height;
	uint64_t per[WAFL_MAX_HEIGHT + 1], off = 0;
	struct wafl_bp *prev = NULL, *cur = NULL;
	uint8_t *blk = calloc(1, WAFL_BLOCK_SIZE);
	int rc = blk == NULL ? -ENOMEM : 0;

	per[0] = t->nbm_blocks;
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
				memcpy(blk, t->bits + j * WAFL_BLOCK_SIZE,
				    WAFL_BLOCK_SIZE);
			} else {
				memset(blk, 0, WAFL_BLOCK_SIZE);
				for (uint64_t c = 0; c < WAFL_BPS_PER_BLOCK &&
				    j * WAFL_BPS_PER_BLOCK + c < per[l - 1]; c++)
					wafl_bp_encode(blk + c * WAFL_BP_SIZE,
					    &prev[j * WAFL_BPS_PER_BLOCK + c]);
			}
			uint64_t vbn = t->bm_vbns[off + j];
			cur[j] = seal_bp(im, vbn, blk);
			emit(im, vbn, blk);
		}
		off += per[l];
		free(prev);
		prev = cur;
		cur = NULL;
	}
	if (rc == 0) {
		*nbm = t->tbm;
		memset(&nbm->u, 0, sizeof(nbm->u));
		for (uint64_t i = 0; i < per[h] && i < WAFL_NTOP; i++)
			nbm->u.top[i] = prev[i];
		nbm->blocks = t->bm_count;
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
	nd->sealed = true;
	emit(im, nd->new_vbn, blk);
	return 0;
}

/* Step 1 for tree t: plan and verify; nothing changes. */
static int imp_plan(struct imp *im, struct imp_tree *t)
{
	struct wafl_vol *v = im->v;
	int rc;

	im->t = t;
	rc = plan(im, &t->root, K_ROOT, 0, 0);
	if (rc == 0 && (t->nrefs == 0 || !t->have_specials ||
	    im->nodes[t->refs[t->nrefs - 1]].kind != K_ROOT))
		rc = FL_ERR(-FL_ECORRUPT);	/* block 0 of the inode file
						   must have changed */
	if (rc != 0)
		return rc;
	/* T's bitmap, the base of the new one: one bit per VBN here. */
	t->nbm_blocks = FL_DIV_ROUND_UP_U64(t->tbm.size, WAFL_BLOCK_SIZE);
	if (t->nbm_blocks == 0 || t->nbm_blocks > v->nareas ||
	    (t->tbm.flags & WAFL_INO_INLINE) ||
	    t->tbm.height > WAFL_MAX_HEIGHT ||
	    t->nbm_blocks > wafl_height_capacity(t->tbm.height))
		return FL_ERR(-FL_ECORRUPT);
	return clear_specials(im);
}

/* Step 2 for tree t: its bitmap, VBNs, sealed blocks, written. */
static int imp_seal(struct imp *im, struct imp_tree *t, uint8_t *blk)
{
	int rc = 0;

	im->t = t;
	t->bits = calloc(t->nbm_blocks, WAFL_BLOCK_SIZE);
	if (t->bits == NULL)
		return -ENOMEM;
	/* T's bitmap, bounded by the base's: every block of the tree that
	 * keeps its VBN is one of the base root's (base_holds), so a bit T
	 * sets outside the base names no block of the tree that stays, and
	 * kept it would pin a VBN here until the snapshot is deleted. */
	for (uint64_t b = 0; b < t->nbm_blocks && rc == 0; b++) {
		uint8_t *tb = t->bits + b * WAFL_BLOCK_SIZE;
		const uint8_t *gb;
		rc = src_file_block(im, &t->tbm, b, tb);
		if (rc == 0)
			rc = base_bits(im, b, &gb);
		for (uint32_t i = 0; rc == 0 && i < WAFL_BLOCK_SIZE; i++)
			tb[i] &= gb[i];
	}
	/* Out: every moved block's old place, and T's bitmap, snapshot
	 * table and summary files (replaced or emptied). */
	for (uint64_t i = 0; i < t->nrefs && rc == 0; i++) {
		uint64_t o = im->nodes[t->refs[i]].old.vbn;
		if (o / WAFL_BITS_PER_BLOCK < t->nbm_blocks)
			t->bits[o / 8] &= (uint8_t)~(1u << (o % 8));
	}
	if (rc == 0)
		rc = clear_specials(im);
	if (rc != 0)
		return rc;
	/* In: new places for every block it uses and its bitmap file. */
	uint64_t per = t->nbm_blocks;
	t->bm_count = per;
	for (unsigned l = 1; l <= t->tbm.height; l++) {
		per = FL_DIV_ROUND_UP_U64(per, WAFL_BPS_PER_BLOCK);
		t->bm_count += per;
	}
	t->bm_vbns = calloc(t->bm_count, sizeof(*t->bm_vbns));
	t->out = malloc((t->fresh + t->bm_count) * WAFL_BLOCK_SIZE);
	t->out_vbn = calloc(t->fresh + t->bm_count, sizeof(*t->out_vbn));
	if (t->bm_vbns == NULL || t->out == NULL || t->out_vbn == NULL)
		return -ENOMEM;
	for (uint64_t i = 0; i < t->nrefs && rc == 0; i++) {
		struct imp_node *nd = &im->nodes[t->refs[i]];
		if (nd->new_vbn == 0)
			rc = take_vbn(im, &nd->new_vbn);
	}
	for (uint64_t i = 0; i < t->bm_count && rc == 0; i++)
		rc = take_vbn(im, &t->bm_vbns[i]);
	if (rc != 0)
		return rc;
	for (uint64_t i = 0; i < t->nrefs; i++) {
		uint64_t nv = im->nodes[t->refs[i]].new_vbn;
		if (nv / WAFL_BITS_PER_BLOCK >= t->nbm_blocks)
			return FL_ERR(-FL_ECORRUPT);	/* T's bitmap too small */
		bit_on(t->bits, nv);
	}
	for (uint64_t i = 0; i < t->bm_count; i++) {
		if (t->bm_vbns[i] / WAFL_BITS_PER_BLOCK >= t->nbm_blocks)
			return FL_ERR(-FL_ECORRUPT);
		bit_on(t->bits, t->bm_vbns[i]);
	}
	uint64_t used = 0;
	for (uint64_t i = 0; i < t->nbm_blocks * WAFL_BLOCK_SIZE; i++)
		used += (uint64_t)__builtin_popcount(t->bits[i]);
	/* Seal: the bitmap file, then T's blocks children first (a block
	 * an earlier tree sealed is kept as it is). */
	struct wafl_dinode nbm;
	rc = seal_bitmap(im, &nbm);
	for (uint64_t i = 0; i < t->nrefs && rc == 0; i++) {
		struct imp_node *nd = &im->nodes[t->refs[i]];
		if (!nd->sealed)
			rc = seal_node(im, nd, &nbm, used, blk);
	}
	for (uint64_t i = 0; i < t->nout && rc == 0; i++)
		rc = raid_write(im->v->raid, t->out_vbn[i], 1,
		    t->out + i * WAFL_BLOCK_SIZE);
	if (rc != 0)
		return rc;
	t->nroot = im->nodes[t->refs[t->nrefs - 1]].nbp;
	/* The union keeps what the summary map gains. */
	if (t->nbm_blocks > im->uni_blocks) {
		uint8_t *nu = realloc(im->uni, t->nbm_blocks * WAFL_BLOCK_SIZE);
		if (nu == NULL)
			return -ENOMEM;
		memset(nu + im->uni_blocks * WAFL_BLOCK_SIZE, 0,
		    (t->nbm_blocks - im->uni_blocks) * WAFL_BLOCK_SIZE);
		im->uni = nu;
		im->uni_blocks = t->nbm_blocks;
	}
	for (uint64_t i = 0; i < t->nbm_blocks * WAFL_BLOCK_SIZE; i++)
		im->uni[i] |= t->bits[i];
	free(t->bits);
	free(t->out);
	free(t->out_vbn);
	t->bits = t->out = NULL;
	t->out_vbn = NULL;
	return 0;
}

static void tree_free(struct imp_tree *t)
{
	vmap_free(&t->map);
	free(t->refs);
	free(t->bits);
	free(t->bm_vbns);
	free(t->out);
	free(t->out_vbn);
}

/* The base root's pointer (retained here: ring, hold or snapshot).
 * Caller holds cp_serial, not cp_lock. */
static int base_find(struct imp *im, struct wafl_bp *root)
{
	size_t max = WAFL_MAX_SNAPSHOTS + 64, n = 0;
	struct wafl_root_ent *r = calloc(max, sizeof(*r));
	int rc = r == NULL ? -ENOMEM : 0;

	if (rc == 0)
		rc = wafl_retained_roots(im->v, r, max, &n);
	if (rc == 0)
		rc = -ENOENT;
	for (size_t i = 0; i < n && rc == -ENOENT; i++) {
		if (r[i].gen != im->base || r[i].birth != im->base)
			continue;
		*root = (struct wafl_bp){ .vbn = r[i].vbn, .birth = r[i].birth,
		    .cksum = r[i].cksum };
		rc = 0;
	}
	if (rc == -ENOENT)
		fl_err("wafl", "import: base generation %llu is not retained "
		    "here", (unsigned long long)im->base);
	free(r);
	return rc;
}

/* Step 0: every name valid, unused and given once.  Caller holds
 * cp_serial and cp_lock exclusive. */
static int names_free(struct wafl_vol *v, struct wafl_import_tree *trees,
    size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = snap_name_free(v, trees[i].name);
		for (size_t j = 0; j < i && rc == 0; j++)
			if (strcmp(trees[i].name, trees[j].name) == 0)
				rc = FL_ERR(-EEXIST);
		if (rc != 0)
			fl_err("wafl", "import: snapshot name %.64s: %s",
			    trees[i].name, rc == -EEXIST ? "in use" :
			    fl_strerror(rc));
	}
	return rc;
}

/* Tests: the at-th snapshot entry (1-based) of the next import fails. */
static unsigned imp_fail_entry;

void wafl_import_test_fail_entry(unsigned at)
{
	__atomic_store_n(&imp_fail_entry, at, __ATOMIC_RELAXED);
}

/*
 * Step 3, all or none: summary |= every new bitmap (W9), then one entry
 * per tree.  The summary blocks are saved before the first change; on a
 * failure the entries added are dropped and every summary block changed
 * gets its saved content back, so the next CP writes the volume as it
 * was (the snapshot table may keep the empty slots, as after a delete).
 * An undo that fails itself leaves the volume failed (no CP).
 */
static int imp_publish(struct imp *im, struct imp_tree *tt, size_t n,
    struct wafl_import_tree *trees, uint8_t *blk)
{
	struct wafl_vol *v = im->v;
	uint64_t na = im->uni_blocks < v->nareas ? im->uni_blocks : v->nareas;
	uint8_t *old = malloc((na ? na : 1) * WAFL_BLOCK_SIZE);
	uint64_t *ids = calloc(n, sizeof(*ids));
	unsigned fail = __atomic_exchange_n(&imp_fail_entry, 0,
	    __ATOMIC_RELAXED);
	size_t added = 0;
	uint64_t done = 0;
	int rc = old == NULL || ids == NULL ? -ENOMEM : 0;

	for (uint64_t a = 0; a < na && rc == 0; a++)
		rc = wn_read_block(v->summary_wn, a, old + a * WAFL_BLOCK_SIZE);
	if (rc != 0)
		goto out;
	for (; done < na && rc == 0; done++)
		rc = summary_or_block(v, done, im->uni + done * WAFL_BLOCK_SIZE,
		    blk);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct imp_tree *t = &tt[i];
		const struct imp_tree *o = t->same_as < 0 ? t :
		    &tt[t->same_as];
		uint64_t id = 0;
		if (fail != 0 && i + 1 == fail)
			rc = FL_ERR(-EIO);	/* test injection */
		else
			rc = snap_insert(v, t->name, im->gen, &o->nroot,
			    SNAP_ID_IMPORTED, t->origin, &id);
		if (rc != 0)
			break;
		ids[added++] = id;
		struct wafl_import_stats *st = &trees[i].st;
		st->gen = im->gen;
		st->id = id;
		st->blocks = o->nrefs;
		st->shared = o->nrefs - (t->same_as < 0 ? o->fresh : 0);
		st->bitmap_blocks = t->same_as < 0 ? o->bm_count : 0;
	}
	if (rc == 0)
		goto out;
	/* Undo: the entries, then the summary blocks changed. */
	int urc = 0;
	for (size_t k = 0; k < added && urc == 0; k++)
		urc = snap_drop(v, ids[k]);
	for (uint64_t a = 0; a < done && urc == 0; a++) {
		const uint8_t *was = old + a * WAFL_BLOCK_SIZE;
		uint8_t *w;
		urc = wn_read_block(v->summary_wn, a, blk);
		if (urc != 0 || memcmp(blk, was, WAFL_BLOCK_SIZE) == 0)
			continue;
		urc = wn_modify_block(v->summary_wn, a, &w);
		if (urc == 0)
			memcpy(w, was, WAFL_BLOCK_SIZE);
	}
	if (urc == 0)
		wnode_dirty(v->summary_wn);
	for (size_t i = 0; i < n; i++)
		memset(&trees[i].st, 0, sizeof(trees[i].st));
	fl_warn("wafl", "import: adding the snapshot entries failed (%s) "
	    "after %zu of %zu; %s", fl_strerror(rc), added, n, urc == 0 ?
	    "undone, nothing changed" : "undo failed, volume failed");
	if (urc != 0)
		v->failed = true;
out:
	free(old);
	free(ids);
	return rc;
}

static int imp_run(struct imp *im, struct imp_tree *tt, size_t n,
    uint64_t supplied, struct wafl_import_tree *trees,
    struct wafl_import_stats *total)
{
	struct wafl_vol *v = im->v;
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	int rc = blk == NULL ? -ENOMEM : 0;

	/* 1: plan and verify every tree, oldest first. */
	for (size_t i = 0; i < n && rc == 0; i++)
		if (tt[i].same_as < 0)
			rc = imp_plan(im, &tt[i]);
	if (rc == 0 && supplied != 0 && im->reached.n != supplied) {
		fl_err("wafl", "import: %llu blocks supplied, %llu reachable "
		    "from the roots", (unsigned long long)supplied,
		    (unsigned long long)im->reached.n);
		rc = FL_ERR(-FL_ECORRUPT);
	}
	/* 2: seal and write each. */
	for (size_t i = 0; i < n && rc == 0; i++)
		if (tt[i].same_as < 0)
			rc = imp_seal(im, &tt[i], blk);
	if (rc == 0)
		rc = raid_flush(v->raid);
	if (rc != 0)
		goto out;
	/* 3: summary |= every new bitmap (W9); then the entries: all or
	 * none. */
	rc = imp_publish(im, tt, n, trees, blk);
	if (rc != 0)
		goto out;
	uint64_t bm = 0;
	for (size_t i = 0; i < n; i++)
		bm += tt[i].same_as < 0 ? tt[i].bm_count : 0;
	/* The moved blocks are held by snapshots alone. */
	v->snap_only += im->n + bm;
	if (total != NULL) {
		total->gen = im->gen;
		total->id = 0;
		total->blocks = im->n;
		total->shared = 0;
		for (size_t i = 0; i < n; i++)
			total->shared += trees[i].st.shared;
		total->bitmap_blocks = bm;
		total->reached = im->reached.n;
	}
out:
	free(blk);
	return rc;
}

int wafl_import_snapshots(wafl_vol_t *v, uint64_t base_gen,
    struct wafl_import_tree *trees, size_t n, uint64_t supplied,
    wafl_import_get_fn *get, void *arg, struct wafl_import_stats *total)
{
	struct imp im = { .v = v, .base = base_gen, .get = get, .arg = arg };
	struct imp_tree *tt = NULL;
	size_t have = 0;
	int rc = 0;

	if (v->readonly || v->failed)
		return FL_ERR(-EROFS);
	if (n == 0 || n > WAFL_MAX_SNAPSHOTS)
		return FL_ERR(-EINVAL);
	for (size_t i = 0; i < n; i++)
		if (trees[i].name == NULL || trees[i].root == NULL ||
		    trees[i].root->vbn == 0 || trees[i].root->birth <= base_gen)
			return FL_ERR(-EINVAL);	/* nothing diverged */
	tt = calloc(n, sizeof(*tt));
	if (tt == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		memset(&trees[i].st, 0, sizeof(trees[i].st));
		tt[i].name = trees[i].name;
		tt[i].origin = trees[i].origin;
		tt[i].root = *trees[i].root;
		tt[i].same_as = -1;
		for (size_t j = 0; j < i && tt[i].same_as < 0; j++)
			if (bp_same(&tt[j].root, &tt[i].root))
				tt[i].same_as = (int)j;	/* a second name */
	}
	pthread_mutex_lock(&v->cp_serial);
	/* Room for all of them (no snapshot operation runs meanwhile: they
	 * all take cp_serial). */
	rc = wafl_snap_names(v, NULL, 0, &have);
	if (rc == 0 && have + n > WAFL_MAX_SNAPSHOTS) {
		fl_err("wafl", "import of %zu snapshots: %zu of %u exist, no "
		    "room", n, have, WAFL_MAX_SNAPSHOTS);
		rc = FL_ERR(-ENOSPC);
	}
	struct wafl_bp groot = { 0 };
	if (rc == 0)
		rc = base_find(&im, &groot);
	cp_lock_excl(v);
	if (rc == 0) {
		im.gmap = calloc(v->nareas, sizeof(*im.gmap));
		rc = im.gmap == NULL ? -ENOMEM :
		    tree_root_bitmap(v, &groot, &im.gbm, NULL);
	}
	/* The imported blocks are stamped with the open generation: T's
	 * births (its own numbering since the base) are only compared with
	 * the base, never kept. */
	im.gen = v->open_gen;
	if (rc == 0)
		rc = names_free(v, trees, n);
	if (rc == 0)
		rc = imp_run(&im, tt, n, supplied, trees, total);
	if (rc != 0)
		alloc_reset_areas(v);	/* VBNs taken are free again */
	pthread_rwlock_unlock(&v->cp_lock);
	pthread_mutex_unlock(&v->cp_serial);
	for (size_t i = 0; i < n; i++)
		tree_free(&tt[i]);
	free(tt);
	free(im.nodes);
	vmap_free(&im.shared);
	vmap_free(&im.reached);
	free(im.uni);
	for (uint64_t a = 0; im.gmap != NULL && a < v->nareas; a++)
		free(im.gmap[a]);
	free(im.gmap);
	if (rc == 0)
		rc = cp_run(v);
	if (rc == 0) {
		for (size_t i = 0; i < n; i++)
			fl_info("wafl", "snapshot %s imported: %llu blocks (%llu "
			    "moved for an earlier one), %llu bitmap blocks, "
			    "generation %llu", trees[i].name,
			    (unsigned long long)trees[i].st.blocks,
			    (unsigned long long)trees[i].st.shared,
			    (unsigned long long)trees[i].st.bitmap_blocks,
			    (unsigned long long)im.gen);
	} else {
		fl_err("wafl", "import of %zu snapshot(s), first %s: %s", n,
		    trees[0].name, fl_strerror(rc));
	}
	return rc;
}

int wafl_import_snapshot(wafl_vol_t *v, const char *name, uint64_t base_gen,
    const struct wafl_bp *root, wafl_import_get_fn *get, void *arg,
    struct wafl_import_stats *st)
{
	struct wafl_import_tree t = { .name = name, .root = root };
	int rc = wafl_import_snapshots(v, base_gen, &t, 1, 0, get, arg, NULL);

	if (rc == 0 && st != NULL)
		*st = t.st;
	return rc;
}

/* Oldest first: by generation, then id. */
static int cmp_snap_tree(const void *a, const void *b)
{
	const struct wafl_snap_tree *x = a, *y = b;

	if (x->gen != y->gen)
		return x->gen < y->gen ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

int wafl_snap_trees_after(wafl_vol_t *v, uint64_t after,
    struct wafl_snap_tree *out, size_t max, size_t *n)
{
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	size_t k = 0;
	int rc = blk == NULL ? -ENOMEM : 0;

	pthread_rwlock_rdlock(&v->cp_lock);
	uint64_t slots = v->snaptab_wn->di.size / WAFL_SNAP_ENTRY_SIZE;
	for (uint64_t s = 0; rc == 0 && s < slots; s++) {
		struct wafl_snapent e;
		if (s % WAFL_SNAPS_PER_BLOCK == 0)
			rc = wn_read_block(v->snaptab_wn,
			    s / WAFL_SNAPS_PER_BLOCK, blk);
		if (rc == 0)
			rc = wafl_snapent_decode(blk + (s %
			    WAFL_SNAPS_PER_BLOCK) * WAFL_SNAP_ENTRY_SIZE, &e);
		if (rc != 0 || e.gen == 0 || e.gen <= after)
			continue;
		if (k < max) {
			memset(&out[k], 0, sizeof(out[k]));
			snprintf(out[k].name, sizeof(out[k].name), "%s",
			    e.name);
			out[k].gen = e.gen;
			out[k].id = e.id;
			out[k].vbn = e.root.vbn;
			out[k].birth = e.root.birth;
			out[k].cksum = e.root.cksum;
			out[k].origin = e.origin;
		}
		k++;
	}
	pthread_rwlock_unlock(&v->cp_lock);
	free(blk);
	*n = k;
	if (rc == 0 && k > 0 && max > 0)
		qsort(out, k < max ? k : max, sizeof(*out), cmp_snap_tree);
	return rc;
}
