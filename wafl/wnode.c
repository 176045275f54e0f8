/*
 * wafl/wnode.c: in-memory inodes of the active file system, and the
 * copy-on-write block tree under each of them.
 *
 * A wnode holds the live inode and its dirty buffers.  Reading block fbn
 * looks for the lowest dirty buffer on the path from the data block up to
 * the inode and descends from there through verified disk reads
 * (wafl_read_bp).  Modifying block fbn copies it and every ancestor into
 * dirty buffers (the buffers' old block pointers are what the CP frees when
 * it writes the new copies).  A dirty parent's slot for a dirty child is
 * stale until the CP: readers always look for the child's dbuf first.
 *
 * di.blocks counts the blocks the file holds after the next CP: +1 when a
 * buffer is dirtied over a hole, -1 for every block or buffer dropped.
 *
 * Locking: see wafl_impl.h.  Block functions need the wnode's lock
 * (exclusive to modify) and the volume's cp_lock shared.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"
#include "wafl/wafl_impl.h"

#define SHIFT(level)	(7u * (level))

/* ------------------------------------------------------------ icache */

static uint32_t ihash_of(struct wafl_vol *v, uint64_t ino)
{
	return (uint32_t)((ino * 0x9e3779b97f4a7c15ull) >> 32) &
	    (v->ihash_size - 1);
}

int wnode_get(struct wafl_vol *v, uint64_t ino, struct wnode **out)
{
	struct wnode *wn;
	int rc = 0;

	pthread_mutex_lock(&v->icache_lock);
	for (wn = v->ihash[ihash_of(v, ino)]; wn != NULL; wn = wn->hnext)
		if (wn->ino == ino)
			break;
	if (wn != NULL) {
		wn->refs++;
		goto out;
	}
	wn = calloc(1, sizeof(*wn));
	if (wn == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = tree_read_inode(v, &v->ifile, ino, &wn->di);
	if (rc != 0) {
		free(wn);
		wn = NULL;
		goto out;
	}
	wn->vol = v;
	wn->ino = ino;
	wn->refs = 1;
	wn->loaded = true;
	/* Writer preference: a stream of readers (listings of a busy
	 * directory) must not starve a create in it.  No thread ever holds
	 * the same wnode's lock shared twice (the lock order forbids it). */
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&wn->lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	dbuf_tab_init(&wn->dbufs);
	uint32_t h = ihash_of(v, ino);
	wn->hnext = v->ihash[h];
	v->ihash[h] = wn;
	v->nwnodes++;
out:
	pthread_mutex_unlock(&v->icache_lock);
	*out = wn;
	return rc;
}

static void wnode_free_locked(struct wafl_vol *v, struct wnode *wn)
{
	struct wnode **pp = &v->ihash[ihash_of(v, wn->ino)];

	while (*pp != wn)
		pp = &(*pp)->hnext;
	*pp = wn->hnext;
	v->nwnodes--;
	dbuf_tab_free(&wn->dbufs);
	pthread_rwlock_destroy(&wn->lock);
	free(wn);
}

/*
 * May an unreferenced wnode leave the cache?  Not while it holds UNSTABLE
 * data that no durable root has yet: a CP froze it (the wnode is clean),
 * but until that CP's fsinfo is on disk only wn->unlogged_gen tells
 * COMMIT to wait for it.  Reloaded from the inode file, the wnode would
 * say nothing is pending, and COMMIT would acknowledge data a crash then
 * loses.  Such a wnode goes at a later release or trim.
 */
static bool wnode_evictable(const struct wnode *wn)
{
	return wn->refs == 0 && wn->unlogged_gen <=
	    __atomic_load_n(&wn->vol->durable_gen, __ATOMIC_ACQUIRE);
}

void wnode_put(struct wnode *wn)
{
	struct wafl_vol *v = wn->vol;

	pthread_mutex_lock(&v->icache_lock);
	VERIFY(wn->refs > 0);
	if (--wn->refs == 0) {
		/* Only clean wnodes reach zero: the dirty list holds a ref. */
		ASSERT(!wn->dirty && wn->dbufs.count == 0);
		if (v->nwnodes > 65536 && wnode_evictable(wn))
			wnode_free_locked(v, wn);
	}
	pthread_mutex_unlock(&v->icache_lock);
}

/* Drop unreferenced clean wnodes (after a CP, or to bound memory); all:
 * those with UNSTABLE data not yet durable too. */
void wnode_trim(struct wafl_vol *v, bool all)
{
	pthread_mutex_lock(&v->icache_lock);
	for (uint32_t i = 0; i < v->ihash_size; i++) {
		struct wnode *wn = v->ihash[i];
		while (wn != NULL) {
			struct wnode *next = wn->hnext;
			if (wn->refs == 0 && (all || (v->nwnodes > 65536 &&
			    wnode_evictable(wn))))
				wnode_free_locked(v, wn);
			wn = next;
		}
	}
	pthread_mutex_unlock(&v->icache_lock);
}

/*
 * The active tree was replaced (replica advance, rollback): v->ifile names
 * the new inode file.  Unreferenced wnodes go; referenced ones (an
 * operation between wnode_get and taking cp_lock) are reloaded from the
 * new tree, their dirty buffers dropped, so no inode of the old tree is
 * ever served under the new root.  The special inodes are the caller's.
 * Caller holds cp_lock exclusive.
 */
void wnode_reset_all(struct wafl_vol *v)
{
	pthread_mutex_lock(&v->icache_lock);
	for (uint32_t i = 0; i < v->ihash_size; i++) {
		struct wnode *wn = v->ihash[i];
		while (wn != NULL) {
			struct wnode *next = wn->hnext;
			if (wn->ino == WAFL_INO_BITMAP ||
			    wn->ino == WAFL_INO_SNAPTABLE ||
			    wn->ino == WAFL_INO_SUMMARY) {
				/* the caller's */
			} else if (wn->refs == 0) {
				wnode_free_locked(v, wn);
			} else {
				dbuf_tab_free(&wn->dbufs);
				dbuf_tab_init(&wn->dbufs);
				wn->unlogged_gen = 0;
				if (tree_read_inode(v, &v->ifile, wn->ino,
				    &wn->di) != 0)
					memset(&wn->di, 0, sizeof(wn->di));
			}
			wn = next;
		}
	}
	pthread_mutex_unlock(&v->icache_lock);
}

void wnode_dirty(struct wnode *wn)
{
	struct wafl_vol *v = wn->vol;

	pthread_mutex_lock(&v->icache_lock);
	if (!wn->dirty) {
		wn->dirty = true;
		wn->refs++;
		wn->dnext = v->dirty_list;
		v->dirty_list = wn;
	}
	pthread_mutex_unlock(&v->icache_lock);
}

/* -------------------------------------------------------- deferred frees */

void wafl_defer_free(struct wafl_vol *v, uint64_t vbn)
{
	pthread_mutex_lock(&v->free_lock);
	if (v->nfrees == v->cap_frees) {
		uint64_t cap = v->cap_frees ? v->cap_frees * 2 : 1024;
		uint64_t *n = realloc(v->frees, cap * sizeof(*n));
		VERIFY(n != NULL);	/* losing a free would leak forever */
		v->frees = n;
		v->cap_frees = cap;
	}
	v->frees[v->nfrees++] = vbn;
	pthread_mutex_unlock(&v->free_lock);
}

/* -------------------------------------------------------- block access */

static void count_dirty(struct wafl_vol *v, int delta)
{
	__atomic_add_fetch(&v->ndirty_bufs, (uint64_t)(int64_t)delta,
	    __ATOMIC_RELAXED);
}

int wn_read_block(struct wnode *wn, uint64_t fbn, void *buf)
{
	uint32_t nread;

	return wn_read_blocks(wn, fbn, 1, buf, &nread);
}

/* The pointer of fbn's level-1 parent (height >= 1, fbn within the tree):
 * from the lowest dirty ancestor above level 1, else from the top. */
static int l1_parent_bp(struct wnode *wn, uint64_t fbn, struct wafl_bp *out)
{
	const struct wafl_dinode *di = &wn->di;
	struct wafl_bp bp;
	int rc;

	for (unsigned l = 2; l <= di->height; l++) {
		struct dbuf *d = dbuf_find(&wn->dbufs,
		    DBUF_KEY(l, fbn >> SHIFT(l)));
		if (d == NULL)
			continue;
		unsigned slot = (unsigned)((fbn >> SHIFT(l - 1)) & 127);
		rc = wafl_bp_decode(d->data + slot * WAFL_BP_SIZE, &bp);
		if (rc != 0)
			return rc;
		return tree_descend(wn->vol, bp, l - 1, 1, fbn >> SHIFT(1),
		    out);
	}
	bp = di->u.top[fbn >> SHIFT(di->height)];
	return tree_descend(wn->vol, bp, di->height, 1, fbn >> SHIFT(1), out);
}

/*
 * For n blocks from fbn, all under one level-1 parent: each block's dirty
 * buffer (dirty[i]), else its block pointer (bps[i]; vbn 0: a hole).  The
 * parent is read once, and every pointer read from it is checked against
 * it (W2).  The dirty buffers are valid while the caller holds wn->lock.
 */
static int run_bps(struct wnode *wn, uint64_t fbn, uint32_t n,
    struct wafl_bp *bps, const uint8_t **dirty)
{
	const struct wafl_dinode *di = &wn->di;
	struct wafl_bp pbp = { 0 };
	const uint8_t *ptrs;
	uint8_t *blk = NULL;
	struct dbuf *d1;
	int rc;

	VERIFY(n > 0 && fbn >> SHIFT(1) == (fbn + n - 1) >> SHIFT(1));
	if (di->flags & WAFL_INO_INLINE)
		return FL_ERR(-EINVAL);
	for (uint32_t i = 0; i < n; i++) {
		struct dbuf *d = dbuf_find(&wn->dbufs, DBUF_KEY(0, fbn + i));
		dirty[i] = d != NULL ? d->data : NULL;
		bps[i] = (struct wafl_bp){ 0 };
	}
	if (di->height == 0) {
		/* The top pointers are the data's own. */
		for (uint32_t i = 0; i < n; i++)
			if (dirty[i] == NULL && fbn + i < WAFL_NTOP)
				bps[i] = di->u.top[fbn + i];
		return 0;
	}
	if (fbn >= wafl_height_capacity(di->height))
		return 0;	/* beyond the tree (a multiple of 128) */
	d1 = dbuf_find(&wn->dbufs, DBUF_KEY(1, fbn >> SHIFT(1)));
	if (d1 != NULL) {
		ptrs = d1->data;	/* dirty: no birth to check against */
	} else {
		rc = l1_parent_bp(wn, fbn, &pbp);
		if (rc != 0 || pbp.vbn == 0)
			return rc;
		if ((blk = wafl_blk_alloc()) == NULL)
			return -ENOMEM;
		rc = wafl_read_bp(wn->vol, &pbp, blk);
		if (rc != 0)
			goto out;
		ptrs = blk;
	}
	for (uint32_t i = 0; i < n; i++) {
		if (dirty[i] != NULL)
			continue;
		rc = wafl_bp_decode(ptrs + ((fbn + i) & 127) * WAFL_BP_SIZE,
		    &bps[i]);
		if (rc == 0 && d1 == NULL)
			rc = tree_check_child(&pbp, &bps[i]);
		if (rc != 0)
			break;
	}
out:
	wafl_blk_free(blk);
	return rc;
}

int wn_read_blocks(struct wnode *wn, uint64_t fbn, uint32_t n, uint8_t *buf,
    uint32_t *nread)
{
	struct wafl_bp bps[WAFL_BPS_PER_BLOCK];
	const uint8_t *dirty[WAFL_BPS_PER_BLOCK];
	int rc = run_bps(wn, fbn, n, bps, dirty);

	*nread = 0;
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		uint8_t *out = buf + (size_t)i * WAFL_BLOCK_SIZE;
		if (dirty[i] != NULL)
			memcpy(out, dirty[i], WAFL_BLOCK_SIZE);
		else
			rc = wafl_read_bp(wn->vol, &bps[i], out);
		if (rc == 0)
			(*nread)++;
	}
	return rc;
}

int wn_lend_blocks(struct wnode *wn, uint64_t fbn, uint32_t n,
    struct wafl_rdvec *rv, const uint8_t **data)
{
	struct wafl_vol *v = wn->vol;
	struct wafl_bp bps[WAFL_BPS_PER_BLOCK];
	const uint8_t *dirty[WAFL_BPS_PER_BLOCK];
	void *tickets[WAFL_BPS_PER_BLOCK];
	int rc = run_bps(wn, fbn, n, bps, dirty);

	if (rc != 0)
		return rc;
	(void)bcache_lend(v->cache, bps, n, data, tickets);
	for (uint32_t i = 0; i < n; i++)
		if (tickets[i] != NULL)
			rdvec_keep_loan(rv, tickets[i]);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *blk;
		if (tickets[i] != NULL)
			continue;
		if (dirty[i] == NULL && bps[i].vbn == 0) {
			data[i] = wafl_zero_block;
			continue;
		}
		if ((blk = wafl_blk_alloc()) == NULL)
			return -ENOMEM;
		rdvec_keep_block(rv, blk);
		if (dirty[i] != NULL) {
			memcpy(blk, dirty[i], WAFL_BLOCK_SIZE);
		} else {
			rc = wafl_read_bp(v, &bps[i], blk);
			if (rc != 0)
				return rc;
		}
		data[i] = blk;
	}
	return 0;
}

/* Make (level, idx) a dirty buffer, dirtying its ancestors first.  whole:
 * the caller overwrites all of a new buffer, so the old block is not read
 * (its contents are left unspecified until then). */
static int dirty_path(struct wnode *wn, unsigned level, uint64_t idx,
    bool whole, struct dbuf **out)
{
	struct wafl_vol *v = wn->vol;
	struct dbuf *d = dbuf_find(&wn->dbufs, DBUF_KEY(level, idx));
	struct wafl_bp old;
	int rc;

	if (d != NULL) {
		*out = d;
		return 0;
	}
	if (level == wn->di.height) {
		VERIFY(idx < WAFL_NTOP);
		old = wn->di.u.top[idx];
	} else {
		struct dbuf *p;
		rc = dirty_path(wn, level + 1, idx >> 7, false, &p);
		if (rc != 0)
			return rc;
		rc = wafl_bp_decode(p->data + (idx & 127) * WAFL_BP_SIZE, &old);
		if (rc != 0)
			return rc;
	}
	d = dbuf_insert(&wn->dbufs, DBUF_KEY(level, idx));
	if (d == NULL)
		return -ENOMEM;
	rc = whole ? 0 : wafl_read_bp(v, &old, d->data);
	if (rc != 0) {
		dbuf_remove(&wn->dbufs, DBUF_KEY(level, idx));
		return rc;
	}
	d->old = old;
	if (old.vbn == 0)
		wn->di.blocks++;
	count_dirty(v, 1);
	wnode_dirty(wn);
	*out = d;
	return 0;
}

int wn_ensure_height(struct wnode *wn, uint64_t fbn)
{
	struct wafl_dinode *di = &wn->di;

	while (fbn >= wafl_height_capacity(di->height)) {
		if (di->height >= WAFL_MAX_HEIGHT)
			return FL_ERR(-EFBIG);
		bool any = false;
		for (unsigned i = 0; i < WAFL_NTOP; i++)
			if (di->u.top[i].vbn != 0 || dbuf_find(&wn->dbufs,
			    DBUF_KEY(di->height, i)) != NULL)
				any = true;
		if (any) {
			struct dbuf *d = dbuf_insert(&wn->dbufs,
			    DBUF_KEY(di->height + 1, 0));
			if (d == NULL)
				return -ENOMEM;
			memset(d->data, 0, WAFL_BLOCK_SIZE);
			for (unsigned i = 0; i < WAFL_NTOP; i++)
				wafl_bp_encode(d->data + i * WAFL_BP_SIZE,
				    &di->u.top[i]);
			memset(&d->old, 0, sizeof(d->old));
			di->blocks++;
			count_dirty(wn->vol, 1);
		}
		memset(di->u.top, 0, sizeof(di->u.top));
		di->height++;
		wnode_dirty(wn);
	}
	return 0;
}

/* The dirty buffer of data block fbn (whole: its old content unread). */
static int dirty_data(struct wnode *wn, uint64_t fbn, bool whole,
    struct dbuf **d)
{
	int rc;

	if (wn->di.flags & WAFL_INO_INLINE)
		return FL_ERR(-EINVAL);
	rc = wn_ensure_height(wn, fbn);
	if (rc == 0)
		rc = dirty_path(wn, 0, fbn, whole, d);
	return rc;
}

static int modify_block(struct wnode *wn, uint64_t fbn, bool whole,
    uint8_t **blk)
{
	struct dbuf *d;
	int rc = dirty_data(wn, fbn, whole, &d);

	if (rc == 0) {
		d->cksum_ok = false;	/* the caller writes it now */
		__atomic_store_n(&wn->handouts, wn->handouts + 1,
		    __ATOMIC_RELAXED);
		*blk = d->data;
	}
	return rc;
}

int wn_modify_block(struct wnode *wn, uint64_t fbn, uint8_t **blk)
{
	return modify_block(wn, fbn, false, blk);
}

int wn_overwrite_block(struct wnode *wn, uint64_t fbn, uint8_t **blk)
{
	return modify_block(wn, fbn, true, blk);
}

int wn_write_whole_block(struct wnode *wn, uint64_t fbn, const void *src)
{
	struct dbuf *d;
	int rc = dirty_data(wn, fbn, true, &d);

	if (rc != 0)
		return rc;
	memcpy(d->data, src, WAFL_BLOCK_SIZE);
	d->cksum = fl_crc32c(0, d->data, WAFL_BLOCK_SIZE);
	d->cksum_ok = true;
	return 0;
}

/* ------------------------------------------------------------ truncate */

static uint64_t span_of(unsigned level)
{
	return 1ull << SHIFT(level);
}

/*
 * Free the whole subtree at (level, idx), whose pointer in its parent is bp
 * (ignored when the subtree's root is dirty).  A pointer block becomes a
 * dirty buffer before any child goes, and each child's slot is cleared as
 * soon as the child is freed, so a child that cannot be freed (a pointer
 * block below that does not read) leaves a tree naming exactly what is
 * still held: the other children are freed all the same, the error is
 * returned, and a retry frees the rest and nothing twice.
 */
static int free_subtree(struct wnode *wn, unsigned level, uint64_t idx,
    struct wafl_bp bp)
{
	struct wafl_vol *v = wn->vol;
	struct dbuf *d = dbuf_find(&wn->dbufs, DBUF_KEY(level, idx));
	int rc = 0;

	if (d == NULL && bp.vbn == 0)
		return 0;
	if (level > 0) {
		if (d == NULL) {
			rc = dirty_path(wn, level, idx, false, &d);
			if (rc != 0)
				return rc;
		}
		for (unsigned c = 0; c < WAFL_BPS_PER_BLOCK; c++) {
			uint8_t *slot = d->data + c * WAFL_BP_SIZE;
			struct wafl_bp cbp;
			int crc = wafl_bp_decode(slot, &cbp);
			if (crc == 0)
				crc = free_subtree(wn, level - 1,
				    idx * WAFL_BPS_PER_BLOCK + c, cbp);
			if (crc == 0)
				memset(slot, 0, WAFL_BP_SIZE);
			else if (rc == 0)
				rc = crc;
		}
		if (rc != 0)
			return rc;
	}
	if (d != NULL)
		bp = d->old;
	if (bp.vbn != 0)
		wafl_defer_free(v, bp.vbn);
	if (d != NULL) {
		dbuf_remove(&wn->dbufs, DBUF_KEY(level, idx));
		count_dirty(v, -1);
	}
	wn->di.blocks--;
	return 0;
}

/* Returns 1 if (level, idx) was freed whole, 0 if kept, <0 on error (what
 * could be freed is, as in free_subtree). */
static int trunc_rec(struct wnode *wn, unsigned level, uint64_t idx,
    struct wafl_bp bp, uint64_t first)
{
	uint64_t start = idx * span_of(level);
	int rc, err = 0;

	if (start >= first) {
		rc = free_subtree(wn, level, idx, bp);
		return rc < 0 ? rc : 1;
	}
	if (start + span_of(level) <= first || level == 0)
		return 0;
	struct dbuf *d = dbuf_find(&wn->dbufs, DBUF_KEY(level, idx));
	if (d == NULL && bp.vbn == 0)
		return 0;	/* a hole: nothing below */
	rc = dirty_path(wn, level, idx, false, &d);
	if (rc != 0)
		return rc;
	for (unsigned c = 0; c < WAFL_BPS_PER_BLOCK; c++) {
		uint64_t cidx = idx * WAFL_BPS_PER_BLOCK + c;
		if (cidx * span_of(level - 1) + span_of(level - 1) <= first)
			continue;
		struct wafl_bp cbp;
		rc = wafl_bp_decode(d->data + c * WAFL_BP_SIZE, &cbp);
		if (rc == 0)
			rc = trunc_rec(wn, level - 1, cidx, cbp, first);
		if (rc == 1)
			memset(d->data + c * WAFL_BP_SIZE, 0, WAFL_BP_SIZE);
		else if (rc < 0 && err == 0)
			err = rc;
	}
	return err;
}

int wn_truncate_blocks(struct wnode *wn, uint64_t first)
{
	struct wafl_dinode *di = &wn->di;
	int rc, err = 0;

	if (di->flags & WAFL_INO_INLINE)
		return 0;
	for (unsigned t = 0; t < WAFL_NTOP; t++) {
		rc = trunc_rec(wn, di->height, t, di->u.top[t], first);
		if (rc == 1)
			memset(&di->u.top[t], 0, sizeof(di->u.top[t]));
		else if (rc < 0 && err == 0)
			err = rc;
	}
	wnode_dirty(wn);
	return err;
}

/* ------------------------------------------------------- inode numbers */

/* Does anyone but the caller (and the dirty list) hold a reference? */
static bool wnode_shared(struct wnode *wn)
{
	struct wafl_vol *v = wn->vol;
	bool shared;

	pthread_mutex_lock(&v->icache_lock);
	shared = wn->refs > 1u + (wn->dirty ? 1u : 0u);
	pthread_mutex_unlock(&v->icache_lock);
	return shared;
}

static void free_ino_push_locked(struct wafl_vol *v, uint64_t ino)
{
	if (v->nfree_inos == v->cap_free_inos) {
		uint32_t cap = v->cap_free_inos ? v->cap_free_inos * 2 : 256;
		uint64_t *n = realloc(v->free_inos, cap * sizeof(*n));
		if (n == NULL)
			return;		/* only a hint: the number is skipped */
		v->free_inos = n;
		v->cap_free_inos = cap;
	}
	v->free_inos[v->nfree_inos++] = ino;
}

/*
 * A free inode number still referenced by another thread is not given
 * out: that thread chose its lock order by what the number named (RENAME
 * by its directories' ancestry, LINK by its object not being a
 * directory), and a new object under the same wnode (and lock) could put
 * it out of order.  Such numbers go back on the free list.  The inode is
 * read and claimed under its lock, taken with trywrlock: ialloc_lock
 * comes after wnode locks (W-L), and an unshared wnode's lock is free
 * unless a thread is between wnode_get and its lock, which is "held".
 */
#define IALLOC_HELD_MAX	16

int ialloc(struct wafl_vol *v, uint64_t *ino, uint32_t *gen)
{
	uint64_t held[IALLOC_HELD_MAX];
	unsigned nheld = 0;
	struct wnode *wn = NULL;
	int rc = 0;

	pthread_mutex_lock(&v->ialloc_lock);
	for (;;) {
		uint64_t cand;
		if (v->nfree_inos > 0)
			cand = v->free_inos[--v->nfree_inos];
		else
			cand = v->next_ino++;
		if (cand < WAFL_INO_FIRST_USER)
			continue;
		if (cand >= WAFL_INO_LIMIT) {
			rc = FL_ERR(-ENOSPC);
			break;
		}
		rc = wnode_get(v, cand, &wn);
		if (rc != 0)
			break;
		/* Held elsewhere, or locked (by this thread too: CREATE holds
		 * its directory): whether it is free cannot be read now. */
		if (wnode_shared(wn) ||
		    pthread_rwlock_trywrlock(&wn->lock) != 0) {
			if (nheld < IALLOC_HELD_MAX)
				held[nheld++] = cand;
			wnode_put(wn);
			continue;
		}
		if (wn->di.mode == 0) {
			uint32_t g = wn->di.gen + 1;
			if (g == 0)
				g = 1;
			memset(&wn->di, 0, sizeof(wn->di));
			wn->di.gen = g;
			wn->di.ino = cand;
			wn->di.mode = S_IFREG;	/* claimed; caller sets */
			wnode_dirty(wn);
			pthread_rwlock_unlock(&wn->lock);
			*ino = cand;
			*gen = g;
			v->inodes_used++;
			wnode_put(wn);
			break;
		}
		pthread_rwlock_unlock(&wn->lock);	/* in use: dropped */
		wnode_put(wn);
	}
	while (nheld > 0)
		free_ino_push_locked(v, held[--nheld]);
	pthread_mutex_unlock(&v->ialloc_lock);
	return rc;
}

void ifree_note(struct wafl_vol *v, uint64_t ino)
{
	pthread_mutex_lock(&v->ialloc_lock);
	free_ino_push_locked(v, ino);
	v->inodes_used--;
	pthread_mutex_unlock(&v->ialloc_lock);
}
