/*
 * mirror/snapwalk.c: snapshot trees in transfers by birth generation.
 *
 * A transfer from generation d to g sends the blocks of g's active tree
 * born after d (wafl_birth_walk) and, here, those of every snapshot that
 * g's snapshot table names whose root was born after d: a snapshot taken
 * while the link was down holds blocks the active tree may since have
 * dropped.  Blocks the active walk already sent are skipped with their
 * subtrees (a shared block has the same children).  A snapshot's own
 * snapshot table is not followed, as the destination's verifier does not
 * follow it (verify.c).
 *
 * Blocks are read straight from the source's raid volume: they belong to
 * retained roots and never change (W3); each is verified against the
 * checksum in its parent (W1), so a bad read stops the transfer instead
 * of shipping wrong data.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/util.h"
#include "mirror/mir_impl.h"

/* -------------------------------------------------------- VBN sets */

static uint64_t mix(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdull;
	v ^= v >> 33;
	return v;
}

bool mir_vset_has(const struct mir_vset *s, uint64_t vbn)
{
	if (s->cap == 0)
		return false;
	for (uint64_t i = mix(vbn) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (s->tab[i] == vbn)
			return true;
		if (s->tab[i] == 0)
			return false;
	}
}

int mir_vset_add(struct mir_vset *s, uint64_t vbn)
{
	if ((s->used + 1) * 2 > s->cap) {
		uint64_t ncap = s->cap == 0 ? 1024 : s->cap * 2;
		uint64_t *nt = calloc(ncap, sizeof(*nt));
		if (nt == NULL)
			return -ENOMEM;
		for (uint64_t i = 0; i < s->cap; i++) {
			if (s->tab[i] == 0)
				continue;
			uint64_t j = mix(s->tab[i]) & (ncap - 1);
			while (nt[j] != 0)
				j = (j + 1) & (ncap - 1);
			nt[j] = s->tab[i];
		}
		free(s->tab);
		s->tab = nt;
		s->cap = ncap;
	}
	uint64_t i = mix(vbn) & (s->cap - 1);
	while (s->tab[i] != 0) {
		if (s->tab[i] == vbn)
			return 0;
		i = (i + 1) & (s->cap - 1);
	}
	s->tab[i] = vbn;
	s->used++;
	return 1;
}

void mir_vset_free(struct mir_vset *s)
{
	free(s->tab);
	memset(s, 0, sizeof(*s));
}

/* ----------------------------------------------------- tree reading */

static int read_bp(raid_vol_t *raid, const struct wafl_bp *bp, uint8_t *buf)
{
	int rc = raid_read(raid, bp->vbn, 1, buf);

	if (rc != 0)
		return rc;
	if (fl_crc32c(0, buf, WAFL_BLOCK_SIZE) != bp->cksum)
		return FL_ERR(-FL_ECORRUPT);
	return 0;
}

/* Block `idx` of the file whose inode is di (zeros for a hole). */
static int file_block(raid_vol_t *raid, const struct wafl_dinode *di,
    uint64_t idx, uint8_t *buf)
{
	uint64_t per = 1;
	int rc;

	if (di->flags & WAFL_INO_INLINE || di->height > WAFL_MAX_HEIGHT)
		return FL_ERR(-FL_ECORRUPT);
	for (unsigned h = 0; h < di->height; h++)
		per *= WAFL_BPS_PER_BLOCK;
	if (idx / per >= WAFL_NTOP)
		return FL_ERR(-FL_ECORRUPT);
	struct wafl_bp bp = di->u.top[idx / per];
	idx %= per;
	for (unsigned lvl = di->height;; lvl--) {
		if (bp.vbn == 0) {
			memset(buf, 0, WAFL_BLOCK_SIZE);
			return 0;
		}
		rc = read_bp(raid, &bp, buf);
		if (rc != 0 || lvl == 0)
			return rc;
		per /= WAFL_BPS_PER_BLOCK;
		rc = wafl_bp_decode(buf + (idx / per) * WAFL_BP_SIZE, &bp);
		if (rc != 0)
			return rc;
		idx %= per;
	}
}

int mir_snap_roots(raid_vol_t *raid, const struct wafl_fsinfo *f,
    uint64_t after, struct wafl_bp *out, size_t max, size_t *n)
{
	uint8_t *buf = malloc(WAFL_BLOCK_SIZE);
	struct wafl_rootblk rb;
	struct wafl_dinode st;
	int rc;

	*n = 0;
	if (buf == NULL)
		return -ENOMEM;
	rc = read_bp(raid, &f->root, buf);
	if (rc == 0)
		rc = wafl_rootblk_decode(buf, &rb);
	if (rc == 0)
		rc = file_block(raid, &rb.inodefile,
		    WAFL_INO_SNAPTABLE / WAFL_INODES_PER_BLOCK, buf);
	if (rc == 0)
		rc = wafl_dinode_decode(buf + (WAFL_INO_SNAPTABLE %
		    WAFL_INODES_PER_BLOCK) * WAFL_INODE_SIZE,
		    WAFL_INO_SNAPTABLE, &st);
	uint64_t nblocks = rc == 0 ? FL_DIV_ROUND_UP_U64(st.size,
	    WAFL_BLOCK_SIZE) : 0;
	for (uint64_t b = 0; rc == 0 && b < nblocks; b++) {
		rc = file_block(raid, &st, b, buf);
		for (unsigned i = 0; rc == 0 && i < WAFL_SNAPS_PER_BLOCK; i++) {
			struct wafl_snapent se;
			rc = wafl_snapent_decode(buf + i * WAFL_SNAP_ENTRY_SIZE,
			    &se);
			if (rc != 0 || se.gen == 0 || se.root.birth <= after)
				continue;
			if (*n == max) {
				rc = -E2BIG;
				break;
			}
			out[(*n)++] = se.root;
		}
	}
	free(buf);
	return rc;
}

struct twalk {
	raid_vol_t *raid;
	uint64_t after;
	struct mir_vset *seen;
	wafl_walk_fn *fn;
	void *arg;
};

static int tw_tree(struct twalk *w, const struct wafl_dinode *di,
    bool is_ifile, uint64_t ino);

static int tw_node(struct twalk *w, const struct wafl_bp *bp, unsigned level,
    uint64_t idx, bool is_ifile)
{
	uint8_t *blk;
	int rc;

	if (bp->vbn == 0 || bp->birth <= w->after)
		return 0;
	rc = mir_vset_add(w->seen, bp->vbn);
	if (rc <= 0)
		return rc;	/* sent already, with its subtree */
	blk = malloc(WAFL_BLOCK_SIZE);
	if (blk == NULL)
		return -ENOMEM;
	rc = read_bp(w->raid, bp, blk);
	if (rc == 0)
		rc = w->fn(w->arg, bp->vbn, bp->birth, bp->cksum, blk,
		    0);
	if (rc == 0 && level > 0) {
		for (unsigned c = 0; c < WAFL_BPS_PER_BLOCK && rc == 0; c++) {
			struct wafl_bp cbp;
			rc = wafl_bp_decode(blk + c * WAFL_BP_SIZE, &cbp);
			if (rc == 0 && cbp.vbn != 0 && cbp.birth > bp->birth)
				rc = FL_ERR(-FL_ECORRUPT);	/* W2 */
			if (rc == 0)
				rc = tw_node(w, &cbp, level - 1,
				    idx * WAFL_BPS_PER_BLOCK + c, is_ifile);
		}
	} else if (rc == 0 && is_ifile) {
		for (unsigned i = 0; i < WAFL_INODES_PER_BLOCK && rc == 0; i++) {
			struct wafl_dinode di;
			uint64_t ino = idx * WAFL_INODES_PER_BLOCK + i;
			rc = wafl_dinode_decode(blk + i * WAFL_INODE_SIZE, ino,
			    &di);
			if (rc == 0 && di.mode != 0 && ino != 0)
				rc = tw_tree(w, &di, false, ino);
		}
	}
	free(blk);
	return rc;
}

static int tw_tree(struct twalk *w, const struct wafl_dinode *di,
    bool is_ifile, uint64_t ino)
{
	int rc = 0;

	if (di->flags & WAFL_INO_INLINE)
		return 0;
	if (di->height > WAFL_MAX_HEIGHT)
		return FL_ERR(-FL_ECORRUPT);
	for (unsigned t = 0; t < WAFL_NTOP && rc == 0; t++)
		rc = tw_node(w, &di->u.top[t], di->height, t, is_ifile);
	return rc;
}

int mir_tree_walk(raid_vol_t *raid, const struct wafl_bp *root,
    uint64_t after, struct mir_vset *seen, wafl_walk_fn *fn, void *arg)
{
	struct twalk w = { .raid = raid, .after = after, .seen = seen,
	    .fn = fn, .arg = arg };
	struct wafl_rootblk rb;
	uint8_t *blk;
	int rc;

	if (root->birth <= after)
		return 0;
	rc = mir_vset_add(seen, root->vbn);
	if (rc <= 0)
		return rc;
	blk = malloc(WAFL_BLOCK_SIZE);
	if (blk == NULL)
		return -ENOMEM;
	rc = read_bp(raid, root, blk);
	if (rc == 0)
		rc = wafl_rootblk_decode(blk, &rb);
	if (rc == 0)
		rc = fn(arg, root->vbn, root->birth, root->cksum, blk, 0);
	free(blk);
	if (rc == 0)
		rc = tw_tree(&w, &rb.inodefile, true, WAFL_INO_INODEFILE);
	return rc;
}
