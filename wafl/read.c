/*
 * wafl/read.c: verified block reads (W1) and read-only tree access.
 *
 * wafl_read_bp is the only way a block enters memory from disk.  It checks
 * the block against the checksum its parent holds; on a mismatch it asks
 * raid to reconstruct the block from the other disks of its stripe (every
 * alternative raid offers), verifies the result, rewrites the bad copy in
 * place and logs the repair.  If no alternative verifies, the read fails
 * with EIO and the event is logged: wrong data is never returned.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"
#include "wafl/wafl_impl.h"

static void stat_inc(struct wafl_vol *v, uint64_t *field)
{
	pthread_mutex_lock(&v->stats_lock);
	(*field)++;
	pthread_mutex_unlock(&v->stats_lock);
}

int wafl_read_bp(struct wafl_vol *v, const struct wafl_bp *bp, void *buf)
{
	int rc;

	if (bp->vbn == 0) {
		memset(buf, 0, WAFL_BLOCK_SIZE);
		return 0;
	}
	if (bp->vbn >= v->nvbns)
		return FL_ERR(-FL_ECORRUPT);
	if (bcache_get(v->cache, bp, buf))
		return 0;
	rc = raid_read(v->raid, bp->vbn, 1, buf);
	if (rc == 0 && fl_crc32c(0, buf, WAFL_BLOCK_SIZE) == bp->cksum) {
		bcache_put(v->cache, bp, buf);
		return 0;
	}
	fl_warn("wafl", "vbn %llu (birth %llu): %s; reconstructing from parity",
	    (unsigned long long)bp->vbn, (unsigned long long)bp->birth,
	    rc != 0 ? fl_strerror(rc) : "checksum mismatch");
	/* raid offers a bounded number of alternatives (-ENOENT past the
	 * last); an attempt that cannot be made is skipped, but an error of
	 * the volume itself (offline, crashed) ends the search. */
	for (unsigned attempt = 0; attempt < 64; attempt++) {
		rc = raid_reconstruct(v->raid, bp->vbn, attempt, buf);
		if (rc == -ENOENT || rc == -FL_EDEGRADED || rc == -FL_ECRASHED ||
		    rc == -ENOMEM)
			break;
		if (rc != 0)
			continue;
		if (fl_crc32c(0, buf, WAFL_BLOCK_SIZE) != bp->cksum)
			continue;
		if (!v->readonly) {
			int wrc = raid_repair(v->raid, bp->vbn, buf);
			if (wrc != 0)
				fl_warn("wafl", "vbn %llu: rewrite failed: %s",
				    (unsigned long long)bp->vbn,
				    fl_strerror(wrc));
		}
		fl_warn("wafl", "vbn %llu repaired from parity (attempt %u)",
		    (unsigned long long)bp->vbn, attempt);
		stat_inc(v, &v->stats.repairs);
		bcache_put(v->cache, bp, buf);
		return 0;
	}
	fl_err("wafl", "W1: vbn %llu (birth %llu) unreadable: no copy matches "
	    "its checksum; returning EIO", (unsigned long long)bp->vbn,
	    (unsigned long long)bp->birth);
	stat_inc(v, &v->stats.read_errors);
	memset(buf, 0, WAFL_BLOCK_SIZE);
	return FL_ERR(-EIO);
}

int tree_check_child(const struct wafl_bp *parent, const struct wafl_bp *child)
{
	if (child->vbn == 0 || child->birth <= parent->birth)
		return 0;
	fl_err("wafl", "W2 violated: vbn %llu born %llu under parent vbn %llu "
	    "born %llu", (unsigned long long)child->vbn,
	    (unsigned long long)child->birth, (unsigned long long)parent->vbn,
	    (unsigned long long)parent->birth);
	return FL_ERR(-FL_ECORRUPT);
}

int tree_descend(struct wafl_vol *v, struct wafl_bp bp, unsigned from,
    unsigned to, uint64_t idx, struct wafl_bp *out)
{
	uint8_t *blk = NULL;
	int rc = 0;

	for (unsigned l = from; l > to && bp.vbn != 0; l--) {
		if (blk == NULL && (blk = wafl_blk_alloc()) == NULL)
			return -ENOMEM;
		rc = wafl_read_bp(v, &bp, blk);
		if (rc != 0)
			goto out;
		unsigned slot = (unsigned)((idx >> (7 * (l - 1 - to))) &
		    (WAFL_BPS_PER_BLOCK - 1));
		struct wafl_bp child;
		rc = wafl_bp_decode(blk + slot * WAFL_BP_SIZE, &child);
		if (rc != 0)
			goto out;
		rc = tree_check_child(&bp, &child);
		if (rc != 0)
			goto out;
		bp = child;
	}
	*out = bp.vbn == 0 ? (struct wafl_bp){ 0 } : bp;
out:
	wafl_blk_free(blk);
	return rc;
}

int tree_lookup_bp(struct wafl_vol *v, const struct wafl_dinode *di,
    unsigned level, uint64_t idx, struct wafl_bp *out)
{
	memset(out, 0, sizeof(*out));
	if ((di->flags & WAFL_INO_INLINE) || level > di->height)
		return level > di->height ? FL_ERR(-EINVAL) : 0;
	uint64_t top = idx >> (7 * (di->height - level));
	if (top >= WAFL_NTOP)
		return 0;	/* beyond the tree: a hole */
	return tree_descend(v, di->u.top[top], di->height, level, idx, out);
}

int tree_read_block(struct wafl_vol *v, const struct wafl_dinode *di,
    uint64_t fbn, void *buf)
{
	struct wafl_bp bp;
	int rc = tree_lookup_bp(v, di, 0, fbn, &bp);

	if (rc != 0)
		return rc;
	return wafl_read_bp(v, &bp, buf);
}

int tree_read_inode(struct wafl_vol *v, const struct wafl_dinode *ifile,
    uint64_t ino, struct wafl_dinode *out)
{
	uint8_t *blk;
	int rc;

	if (ino >= ifile->size / WAFL_INODE_SIZE) {
		memset(out, 0, sizeof(*out));
		return 0;	/* never allocated: free, generation 0 */
	}
	blk = wafl_blk_alloc();
	if (blk == NULL)
		return -ENOMEM;
	rc = tree_read_block(v, ifile, ino / WAFL_INODES_PER_BLOCK, blk);
	if (rc == 0)
		rc = wafl_dinode_decode(blk + (ino % WAFL_INODES_PER_BLOCK) *
		    WAFL_INODE_SIZE, ino, out);
	if (rc == -FL_ECORRUPT)
		fl_err("wafl", "inode %llu: corrupt on disk",
		    (unsigned long long)ino);
	wafl_blk_free(blk);
	return rc;
}

int tree_root_bitmap(struct wafl_vol *v, const struct wafl_bp *root,
    struct wafl_dinode *bm, struct wafl_rootblk *rb_out)
{
	struct wafl_rootblk rb;
	int rc = tree_read_root(v, root, &rb);

	if (rc == 0)
		rc = tree_read_inode(v, &rb.inodefile, WAFL_INO_BITMAP, bm);
	if (rc == 0 && rb_out != NULL)
		*rb_out = rb;
	return rc;
}

int tree_read_root(struct wafl_vol *v, const struct wafl_bp *root,
    struct wafl_rootblk *rb)
{
	uint8_t *blk = wafl_blk_alloc();
	int rc;

	if (blk == NULL)
		return -ENOMEM;
	rc = wafl_read_bp(v, root, blk);
	if (rc == 0)
		rc = wafl_rootblk_decode(blk, rb);
	if (rc == 0 && rb->gen != root->birth)
		rc = FL_ERR(-FL_ECORRUPT);
	wafl_blk_free(blk);
	return rc;
}
