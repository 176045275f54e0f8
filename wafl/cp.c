/*
 * wafl/cp.c: consistency points (DESIGN.md §5).
 *
 * THEORY
 *   Operations change only memory: live inodes and dirty buffers (wnode.c),
 *   plus a list of blocks they stopped referencing (wafl_defer_free).  A CP
 *   turns that state into a new tree on disk without touching any block a
 *   retained root can reach (W3), then flips the root (W6):
 *
 *   Freeze (cp_lock exclusive; CPU work only, no disk writes):
 *     1. generation n = open_gen; the NVLOG switches halves; new operations
 *        join n+1 as soon as the lock drops.
 *     2. release pending frees that every retained root has moved past.
 *     3. every dirty buffer of every dirty inode gets a new VBN (write
 *        anywhere, consecutive, so raid sees whole stripes); the block it
 *        replaces, and every block operations freed, are cleared in the
 *        active bitmap and held pending, tagged n.
 *     4. allocation and freeing dirty the bitmap and the inode file, which
 *        need VBNs themselves: repeat until nothing is left unallocated.
 *     5. seal bottom-up: checksum each buffer, store its block pointer
 *        {vbn, n, crc} in its parent (or its inode), encode inodes into
 *        the inode file, and finally the root block.
 *     6. the buffers themselves become pinned clean-cache entries at their
 *        new VBNs (bcache_give: no copy), so operations of n+1 read them
 *        while they are being written; the CP keeps their addresses.
 *   Write-out (no volume lock; operations continue):
 *     7. sort the blocks by VBN, copy runs from the pinned entries and write
 *        them (observer sees the same runs), raid barrier, fsinfo n to slot
 *        n % 2, raid barrier.
 *     8. fsinfo n is durable: the NVLOG half of CP n is released, the ring
 *        of retained roots moves, CP n's cache entries are unpinned.
 *   The frozen image cannot change under the write-out: operations never
 *   write a sealed buffer (modifying a block copies it into a new dirty
 *   buffer), and the cache never changes or evicts a pinned entry.
 *   Checksums stay in the freeze: parents hold them up to the root block,
 *   and operations of n+1 descend through the sealed parents.  The data
 *   blocks of regular files, most of a CP's bytes, are checksummed just
 *   before it with operations running (cp_precksum), or as a write copies
 *   a whole block in (wn_write_whole_block); the freeze reuses those
 *   checksums for the buffers nobody was handed for writing since.
 *   A crash anywhere before the second barrier leaves fsinfo n-1 as the
 *   newest valid slot, whose tree no step above touched.
 *
 * FAILURE
 *   A failed write or barrier latches the volume failed: it refuses writes
 *   (EROFS) until reopened, and no later CP or stable reply is claimed.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "wafl/nvlog.h"
#include "wafl/wafl_impl.h"

#define CP_RUN_MAX	1024u	/* blocks per raid_write of the write-out */
#define SEAL_AHEAD	8u	/* buffers prefetched ahead by the seal */
#define SEAL_LOCK_BLOCKS 256u	/* blocks given per hold of the cache lock */

struct cp_blk {
	uint64_t vbn;
	uint8_t *data;		/* the pinned cache entry's, borrowed */
	uint32_t cksum;		/* sealed: data must still match it */
	struct wafl_cp_blkinfo info;	/* for the observer */
};

struct cp_ctx {
	struct wafl_vol *v;
	uint64_t gen;
	uint64_t prev_root;	/* the root block this CP's replaces, or 0 */
	struct cp_blk *blks;
	uint64_t nblks, cap;
};

static bool is_special(uint64_t ino)
{
	return ino == WAFL_INO_INODEFILE || ino == WAFL_INO_BITMAP ||
	    ino == WAFL_INO_SNAPTABLE || ino == WAFL_INO_SUMMARY;
}

/* Give every unallocated dbuf of wn a VBN; free what each replaces.
 * Returns the number allocated (>= 0) or an error. */
static int cp_alloc_wnode(struct cp_ctx *cx, struct wnode *wn)
{
	struct dbuf_ref *arr;
	uint32_t n;
	int count = 0;
	int rc = dbuf_sorted(&wn->dbufs, &arr, &n);

	if (rc != 0)
		return rc;
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		struct dbuf *d = arr[i].d;
		if (i + SEAL_AHEAD < n)
			__builtin_prefetch(arr[i + SEAL_AHEAD].d);
		if (d->new_vbn != 0)
			continue;
		rc = alloc_block(cx->v, &d->new_vbn);
		if (rc == 0 && d->old.vbn != 0)
			rc = alloc_free_block(cx->v, d->old.vbn, cx->gen);
		count++;
	}
	free(arr);
	return rc != 0 ? rc : count;
}

/* Dirty the inode-file block that holds ino, growing the inode file. */
static int cp_dirty_inode_slot(struct cp_ctx *cx, uint64_t ino)
{
	struct wnode *ifw = cx->v->ifile_wn;
	uint64_t fbn = ino / WAFL_INODES_PER_BLOCK;
	uint8_t *blk;
	int rc = wn_modify_block(ifw, fbn, &blk);

	if (rc == 0 && ifw->di.size < (fbn + 1) * WAFL_BLOCK_SIZE)
		ifw->di.size = (fbn + 1) * WAFL_BLOCK_SIZE;
	return rc;
}

static int cp_reserve(struct cp_ctx *cx, uint64_t cap)
{
	if (cap <= cx->cap)
		return 0;
	struct cp_blk *n = realloc(cx->blks, cap * sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	cx->blks = n;
	cx->cap = cap;
	return 0;
}

static int cp_take_block(struct cp_ctx *cx, uint64_t vbn, uint32_t cksum,
    uint8_t *data, uint64_t prev_vbn, bool meta)
{
	if (cx->nblks == cx->cap) {
		int rc = cp_reserve(cx, cx->cap ? cx->cap * 2 : 1024);
		if (rc != 0)
			return rc;
	}
	cx->blks[cx->nblks++] = (struct cp_blk){ vbn, data, cksum,
	    { .prev_vbn = prev_vbn, .cksum = cksum, .meta = meta } };
	return 0;
}

/*
 * Seal wn: checksum its buffers bottom-up into parents and its inode, move
 * them to the CP's write list and the cache.  Afterwards wn has no dbufs.
 * Sorted by (level, index), a buffer's parent comes after it, and the
 * parents of consecutive buffers never go back, so one cursor finds them
 * all; each buffer is freed as soon as it is sealed (its data has become
 * the cache's), while it is still in the CPU's cache.
 */
static int cp_seal_wnode(struct cp_ctx *cx, struct wnode *wn)
{
	struct wafl_vol *v = cx->v;
	struct dbuf_ref *arr;
	uint32_t n, i, pc = 0;
	int rc = dbuf_sorted(&wn->dbufs, &arr, &n);

	if (rc != 0)
		return rc;
	bcache_lock(v->cache);
	for (i = 0; i < n && rc == 0; i++) {
		struct dbuf *d = arr[i].d;
		unsigned level = DBUF_LEVEL(arr[i].key);
		if (i % SEAL_LOCK_BLOCKS == SEAL_LOCK_BLOCKS - 1) {
			bcache_unlock(v->cache);	/* let others in */
			bcache_lock(v->cache);
		}
		/* The loop's misses are the buffers' headers and the
		 * cache's buckets; ask for them ahead. */
		if (i + 2 * SEAL_AHEAD < n)
			__builtin_prefetch(arr[i + 2 * SEAL_AHEAD].d);
		if (i + SEAL_AHEAD < n)
			bcache_prefetch(v->cache, arr[i + SEAL_AHEAD].d->new_vbn);
		uint64_t idx = DBUF_IDX(arr[i].key);
		VERIFY(d->new_vbn != 0);
		struct wafl_bp bp = {
			.vbn = d->new_vbn,
			.birth = cx->gen,
			.cksum = level == 0 && d->cksum_ok ? d->cksum :
			    fl_crc32c(0, d->data, WAFL_BLOCK_SIZE),
		};
		ASSERT(bp.cksum == fl_crc32c(0, d->data, WAFL_BLOCK_SIZE));
		if (level == wn->di.height) {
			VERIFY(idx < WAFL_NTOP);
			wn->di.u.top[idx] = bp;
		} else {
			const uint64_t pkey = DBUF_KEY(level + 1, idx >> 7);
			while (pc < n && arr[pc].key < pkey)
				pc++;
			/* Ancestors are always dirty. */
			VERIFY(pc < n && arr[pc].key == pkey);
			wafl_bp_encode(arr[pc].d->data +
			    (idx & 127) * WAFL_BP_SIZE, &bp);
		}
		/* The buffer itself becomes the pinned cache entry (readers
		 * of n+1 find it there until it is on disk); the write-out
		 * borrows it until it unpins. */
		rc = cp_take_block(cx, bp.vbn, bp.cksum, d->data, d->old.vbn,
		    level > 0 || is_special(wn->ino));
		if (rc == 0) {
			rc = bcache_give_locked(v->cache, &bp, d->data);
			if (rc != 0)
				cx->nblks--;	/* the buffer stays its own */
		}
		if (rc == 0) {
			d->data = NULL;
			dbuf_free(d);
		}
	}
	bcache_unlock(v->cache);
	/*
	 * The table's chains still run through the freed buffers: forget
	 * them.  After a failure (no memory; the freeze fails and the
	 * volume refuses writes until reopened) the buffers not sealed,
	 * from the one that failed on, go back into a table of their own,
	 * so that reads still find the data they hold; the sealed ones are
	 * pinned cache entries their parents point at.  Only if even that
	 * table cannot be had are they dropped (reads of them then see the
	 * blocks on disk).
	 */
	if (rc != 0) {
		i--;
		if (dbuf_tab_relink(&wn->dbufs, arr + i, n - i) != 0) {
			for (; i < n; i++)
				dbuf_free(arr[i].d);
			dbuf_tab_forget(&wn->dbufs);
		}
	} else {
		dbuf_tab_forget(&wn->dbufs);
	}
	free(arr);
	return rc;
}

static int cp_encode_inode(struct cp_ctx *cx, struct wnode *wn)
{
	struct wnode *ifw = cx->v->ifile_wn;
	struct dbuf *d = dbuf_find(&ifw->dbufs,
	    DBUF_KEY(0, wn->ino / WAFL_INODES_PER_BLOCK));

	VERIFY(d != NULL);
	if (wn->di.mode == 0) {
		/* Free inode: only the generation survives. */
		struct wafl_dinode fr = { .gen = wn->di.gen, .ino = wn->ino };
		memset(d->data + (wn->ino % WAFL_INODES_PER_BLOCK) *
		    WAFL_INODE_SIZE, 0, WAFL_INODE_SIZE);
		uint8_t *p = d->data + (wn->ino % WAFL_INODES_PER_BLOCK) *
		    WAFL_INODE_SIZE;
		fl_put_le32(p + 64, fr.gen);
		return 0;
	}
	wn->di.ino = wn->ino;
	wafl_dinode_encode(d->data + (wn->ino % WAFL_INODES_PER_BLOCK) *
	    WAFL_INODE_SIZE, &wn->di);
	return 0;
}

static int cmp_blk(const void *a, const void *b)
{
	const struct cp_blk *x = a, *y = b;

	return x->vbn < y->vbn ? -1 : x->vbn > y->vbn;
}

/* Take the dirty list; returns it (each entry holds a dirty ref). */
static struct wnode *take_dirty(struct wafl_vol *v)
{
	pthread_mutex_lock(&v->icache_lock);
	struct wnode *l = v->dirty_list;
	v->dirty_list = NULL;
	pthread_mutex_unlock(&v->icache_lock);
	return l;
}

static void undirty(struct wnode *wn)
{
	struct wafl_vol *v = wn->vol;

	pthread_mutex_lock(&v->icache_lock);
	wn->dirty = false;
	wn->refs--;
	pthread_mutex_unlock(&v->icache_lock);
}

/*
 * Work for a CP: anything dirty or freed.  Pending frees alone are not: a
 * CP frees its predecessor's root and metadata, so counting them would
 * make an idle volume write a CP at every tick.  They come back as the
 * ring moves with real work, or when an operation short of space forces
 * CPs (ops.c).
 */
static bool cp_has_work(struct wafl_vol *v)
{
	/* A list entry dropped with nothing freed (orphan.c) dirties
	 * nothing else: without a CP of its own the durable root would
	 * keep it (and the check report it) until the next change. */
	return v->dirty_list != NULL || v->nfrees > 0 || v->orphans_changed;
}

/* The freeze: steps 1-6.  Called with cp_lock held exclusive. */
static int cp_freeze(struct cp_ctx *cx, struct wafl_fsinfo *nfsi,
    uint8_t *rootbuf, uint64_t *root_vbn)
{
	struct wafl_vol *v = cx->v;
	struct wnode *specials[] = { v->snaptab_wn, v->summary_wn,
	    v->bitmap_wn };
	int rc = 0;

	/* 2. Release pending frees every retained root has moved past. */
	if (v->fsi.ring_len > 0)
		alloc_release(v, retained_oldest_gen(v));

	/* The write list: every dirty buffer, and a little for the
	 * metadata the allocation dirties, at once rather than by
	 * doubling. */
	rc = cp_reserve(cx, __atomic_load_n(&v->ndirty_bufs, __ATOMIC_RELAXED) +
	    1024);
	if (rc != 0)
		goto fail;

	/* 3. Regular inodes: allocate, and dirty their inode-file slots. */
	struct wnode *list = take_dirty(v);
	for (struct wnode *wn = list; wn != NULL && rc == 0; wn = wn->dnext) {
		if (is_special(wn->ino))
			continue;
		rc = cp_alloc_wnode(cx, wn);
		if (rc >= 0)
			rc = cp_dirty_inode_slot(cx, wn->ino);
	}
	if (rc < 0)
		goto fail;

	/* Blocks that operations freed, and the previous root block. */
	pthread_mutex_lock(&v->free_lock);
	uint64_t *frees = v->frees;
	uint64_t nfrees = v->nfrees;
	v->frees = NULL;
	v->nfrees = v->cap_frees = 0;
	pthread_mutex_unlock(&v->free_lock);
	for (uint64_t i = 0; i < nfrees && rc == 0; i++)
		rc = alloc_free_block(v, frees[i], cx->gen);
	free(frees);
	if (rc == 0)
		rc = alloc_block(v, root_vbn);
	if (rc == 0 && v->fsi.ring_len > 0) {
		cx->prev_root = v->fsi.root.vbn;
		rc = alloc_free_block(v, v->fsi.root.vbn, cx->gen);
	}
	if (rc != 0)
		goto fail;

	/* 4. Bitmap, summary, snapshot table, inode file until stable. */
	for (int round = 0;; round++) {
		int changed = 0;
		VERIFY(round < 64);
		for (size_t i = 0; i < FL_ARRAY_SIZE(specials); i++) {
			struct wnode *s = specials[i];
			rc = cp_alloc_wnode(cx, s);
			if (rc < 0)
				goto fail;
			changed += rc;
			rc = cp_dirty_inode_slot(cx, s->ino);
			if (rc != 0)
				goto fail;
		}
		rc = cp_alloc_wnode(cx, v->ifile_wn);
		if (rc < 0)
			goto fail;
		changed += rc;
		if (changed == 0)
			break;
	}

	/* 5. Seal bottom-up: files, then the specials, then the inode file. */
	for (struct wnode *wn = list; wn != NULL && rc == 0; wn = wn->dnext) {
		if (is_special(wn->ino))
			continue;
		rc = cp_seal_wnode(cx, wn);
		if (rc == 0)
			rc = cp_encode_inode(cx, wn);
	}
	for (size_t i = 0; i < FL_ARRAY_SIZE(specials) && rc == 0; i++) {
		rc = cp_seal_wnode(cx, specials[i]);
		if (rc == 0)
			rc = cp_encode_inode(cx, specials[i]);
	}
	if (rc == 0)
		rc = cp_seal_wnode(cx, v->ifile_wn);
	if (rc != 0)
		goto fail;

	struct wafl_rootblk rb = {
		.gen = cx->gen,
		.blocks_used = v->blocks_used,
		.inodes_used = v->inodes_used,
		.next_ino = v->next_ino,
		.inodefile = v->ifile_wn->di,
		.norphans = v->norphans,
	};
	memcpy(rb.orphans, v->orphans, sizeof(rb.orphans));
	v->orphans_changed = false;
	rb.inodefile.ino = WAFL_INO_INODEFILE;
	wafl_rootblk_encode(rootbuf, &rb);
	struct wafl_bp rbp = {
		.vbn = *root_vbn,
		.birth = cx->gen,
		.cksum = fl_crc32c(0, rootbuf, WAFL_BLOCK_SIZE),
	};
	rc = bcache_give(v->cache, &rbp, rootbuf);
	if (rc != 0)
		goto fail;
	/* wnode_get reads it under icache_lock, without cp_lock (an
	 * operation looks its object up before it takes cp_lock). */
	pthread_mutex_lock(&v->icache_lock);
	v->ifile = v->ifile_wn->di;
	pthread_mutex_unlock(&v->icache_lock);

	/* 6. Everyone is clean now; the next generation starts empty. */
	for (struct wnode *wn = list; wn != NULL;) {
		struct wnode *next = wn->dnext;
		undirty(wn);
		wn = next;
	}
	for (struct wnode *wn = take_dirty(v); wn != NULL;) {
		struct wnode *next = wn->dnext;
		VERIFY(is_special(wn->ino));
		undirty(wn);
		wn = next;
	}
	__atomic_store_n(&v->ndirty_bufs, 0, __ATOMIC_RELAXED);

	*nfsi = v->fsi;
	v->holds_unwritten = false;
	nfsi->gen = cx->gen;
	nfsi->root = rbp;
	nfsi->write_ns = fl_now_real_ns();
	for (unsigned i = WAFL_RING_K - 1; i > 0; i--)
		nfsi->ring[i] = nfsi->ring[i - 1];
	nfsi->ring[0] = (struct wafl_ring_ent){ cx->gen, rbp };
	if (nfsi->ring_len < WAFL_RING_K)
		nfsi->ring_len++;
	return 0;
fail:
	fl_err("wafl", "CP %llu: freeze failed: %s; volume refuses writes",
	    (unsigned long long)cx->gen, fl_strerror(rc));
	return rc;
}

/* Steps 7-8.  No volume lock held. */
static int cp_write_out(struct cp_ctx *cx, const struct wafl_fsinfo *nfsi,
    const uint8_t *rootbuf, uint64_t root_vbn)
{
	struct wafl_vol *v = cx->v;
	int rc;

	rc = cp_take_block(cx, root_vbn, nfsi->root.cksum,
	    (uint8_t *)(uintptr_t)rootbuf, cx->prev_root, true);
	if (rc != 0)
		return rc;
	qsort(cx->blks, cx->nblks, sizeof(*cx->blks), cmp_blk);
	/* Set or cleared only between CPs. */
	const bool obs = v->has_obs && v->obs.blocks != NULL;
	/* Runs of consecutive VBNs go to raid (and the observer) from the
	 * pinned cache entries where they lie, without a copy. */
	const uint8_t *run[CP_RUN_MAX];
	struct wafl_cp_blkinfo info[CP_RUN_MAX];
	for (uint64_t i = 0; i < cx->nblks && rc == 0;) {
		uint32_t n = 0;
		uint64_t first = cx->blks[i].vbn;
		while (i + n < cx->nblks && n < CP_RUN_MAX &&
		    cx->blks[i + n].vbn == first + n) {
			run[n] = cx->blks[i + n].data;
			/* Nobody wrote the pinned entry since the seal
			 * (bcache_give's promise; W1 on disk rests on it). */
			ASSERT(fl_crc32c(0, run[n], WAFL_BLOCK_SIZE) ==
			    cx->blks[i + n].cksum);
			if (obs)
				info[n] = cx->blks[i + n].info;
			n++;
		}
		VERIFY(n > 0);	/* VBNs are unique (W5) */
		rc = raid_writev(v->raid, first, n, run);
		if (rc == 0 && obs)
			v->obs.blocks(v->obs.arg, cx->gen, first, n, run,
			    info);
		i += n;
	}
	if (rc == 0)
		rc = raid_flush(v->raid);
	if (rc != 0) {
		fl_err("wafl", "CP %llu: block writes failed: %s",
		    (unsigned long long)cx->gen, fl_strerror(rc));
		return rc;
	}
	uint8_t *fb = malloc(WAFL_BLOCK_SIZE);
	if (fb == NULL)
		return -ENOMEM;
	wafl_fsinfo_encode(fb, nfsi);
	rc = raid_write(v->raid, nfsi->gen % WAFL_FSINFO_SLOTS, 1, fb);
	if (rc == 0)
		rc = raid_flush(v->raid);
	if (rc != 0) {
		fl_err("wafl", "CP %llu: root (fsinfo) write failed: %s",
		    (unsigned long long)cx->gen, fl_strerror(rc));
	} else if (v->has_obs && v->obs.root != NULL) {
		v->obs.root(v->obs.arg, cx->gen, fb);
	}
	free(fb);
	return rc;
}

/*
 * Checksum the data buffers of dirty regular files before the freeze, with
 * operations going on, so the freeze (which holds every operation off)
 * only checksums what changed since, and the pointer blocks.  Under
 * cp_lock shared and the file's lock shared: no writer is inside the file,
 * and every later hand-out of a buffer for writing clears cksum_ok
 * (modify_block).  Only regular files: their data is written only through
 * modify_block under the file's lock, or summed as it is written
 * (wn_write_whole_block).
 *
 * Neither wait nor walk for nothing: a file with no hand-out since its
 * last pass is skipped, and so is one whose lock is taken (its writers
 * queue on it, and the lock prefers writers, so a reader could wait for
 * as long as they keep coming: 50-150 ms seen under sequential writes).
 * What is skipped, the freeze sums.
 */
static void cp_precksum(struct wafl_vol *v)
{
	struct wnode **arr;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&v->icache_lock);
	for (struct wnode *wn = v->dirty_list; wn != NULL; wn = wn->dnext)
		cap++;
	arr = cap > 0 ? malloc(cap * sizeof(*arr)) : NULL;
	for (struct wnode *wn = v->dirty_list; arr != NULL && wn != NULL;
	    wn = wn->dnext) {
		if (wn->ino < WAFL_INO_FIRST_USER)
			continue;
		wn->refs++;
		arr[n++] = wn;
	}
	pthread_mutex_unlock(&v->icache_lock);

	for (size_t i = 0; i < n; i++) {
		struct wnode *wn = arr[i];

		if (__atomic_load_n(&wn->handouts, __ATOMIC_RELAXED) !=
		    wn->summed_handouts) {
			pthread_rwlock_rdlock(&v->cp_lock);
			if (pthread_rwlock_tryrdlock(&wn->lock) == 0) {
				if (S_ISREG(wn->di.mode))
					dbuf_precksum(&wn->dbufs);
				wn->summed_handouts = wn->handouts;
				pthread_rwlock_unlock(&wn->lock);
			}
			pthread_rwlock_unlock(&v->cp_lock);
		}
		wnode_put(wn);
	}
	free(arr);
}

void cp_lock_excl(struct wafl_vol *v)
{
	__atomic_add_fetch(&v->cp_wanted, 1, __ATOMIC_ACQ_REL);
	pthread_rwlock_wrlock(&v->cp_lock);
	__atomic_sub_fetch(&v->cp_wanted, 1, __ATOMIC_ACQ_REL);
}

int cp_run(struct wafl_vol *v)
{
	struct cp_ctx cx = { .v = v };
	struct wafl_fsinfo nfsi;
	uint8_t *rootbuf = NULL;
	uint64_t root_vbn = 0;
	bool root_given = false;
	int rc = 0;

	pthread_mutex_lock(&v->cp_serial);
	if (!v->readonly && !v->failed)
		cp_precksum(v);
	uint64_t t0 = fl_now_mono_ns();
	cp_lock_excl(v);
	if (v->readonly || v->failed) {
		rc = v->failed ? -EROFS : 0;
		pthread_rwlock_unlock(&v->cp_lock);
		goto out;
	}
	if (!cp_has_work(v)) {
		pthread_rwlock_unlock(&v->cp_lock);
		goto out;
	}
	rootbuf = wafl_blk_alloc();
	if (rootbuf == NULL) {
		rc = -ENOMEM;
		pthread_rwlock_unlock(&v->cp_lock);
		goto out;
	}
	cx.gen = v->open_gen;
	if (cx.gen > WAFL_GEN_MAX) {
		/* An fsinfo the next mount would refuse. */
		fl_err("wafl", "CP %llu: generation past %llu, the end of its "
		    "range; volume refuses writes", (unsigned long long)cx.gen,
		    (unsigned long long)WAFL_GEN_MAX);
		rc = FL_ERR(-FL_ECORRUPT);
	} else if (v->log != NULL) {
		rc = nvlog_switch(v->log);
	}
	if (rc == 0) {
		/* Read without cp_lock by waiting writers (ops.c). */
		__atomic_store_n(&v->open_gen, v->open_gen + 1,
		    __ATOMIC_RELEASE);
		rc = cp_freeze(&cx, &nfsi, rootbuf, &root_vbn);
		/* A freeze that succeeds gives the root block to the cache
		 * (its last step); one that fails never does. */
		root_given = rc == 0;
	}
	if (rc != 0) {
		v->failed = true;
		pthread_rwlock_unlock(&v->cp_lock);
		goto out;
	}
	uint64_t t1 = fl_now_mono_ns();
	pthread_rwlock_unlock(&v->cp_lock);
	/* The dirty set is empty now: writers held back by the throttle
	 * (ops.c) go on while the blocks are written. */
	pthread_mutex_lock(&v->cp_mutex);
	pthread_cond_broadcast(&v->cp_cond);
	pthread_mutex_unlock(&v->cp_mutex);
	/* What the freeze's blocks displaced from the cache, evicted with
	 * operations running. */
	bcache_trim(v->cache);

	rc = cp_write_out(&cx, &nfsi, rootbuf, root_vbn);
	if (rc != 0) {
		cp_lock_excl(v);
		v->failed = true;
		pthread_rwlock_unlock(&v->cp_lock);
		fl_err("wafl", "volume refuses writes until it is reopened");
		goto out;
	}
	cp_lock_excl(v);
	v->fsi = nfsi;
	/* Read without the lock (wafl_generation, COMMIT's wait). */
	__atomic_store_n(&v->durable_gen, nfsi.gen, __ATOMIC_RELEASE);
	holds_retire(v);
	pthread_rwlock_unlock(&v->cp_lock);
	if (v->log != NULL)
		nvlog_release_prev(v->log);
	for (uint64_t i = 0; i < cx.nblks; i++)
		bcache_unpin(v->cache, cx.blks[i].vbn);

	uint64_t t2 = fl_now_mono_ns();
	pthread_mutex_lock(&v->stats_lock);
	v->stats.cps++;
	v->stats.cp_blocks += cx.nblks;
	v->stats.cp_ns_total += t2 - t0;
	if (t2 - t0 > v->stats.cp_ns_max)
		v->stats.cp_ns_max = t2 - t0;
	v->stats.cp_freeze_ns_total += t1 - t0;
	if (t1 - t0 > v->stats.cp_freeze_ns_max)
		v->stats.cp_freeze_ns_max = t1 - t0;
	v->stats.cp_write_ns_total += t2 - t1;
	if (t2 - t1 > v->stats.cp_write_ns_max)
		v->stats.cp_write_ns_max = t2 - t1;
	pthread_mutex_unlock(&v->stats_lock);
	fl_debug("wafl", "CP %llu: %llu blocks, freeze %llu us, total %llu us",
	    (unsigned long long)nfsi.gen, (unsigned long long)cx.nblks,
	    (unsigned long long)(t1 - t0) / 1000,
	    (unsigned long long)(t2 - t0) / 1000);
out:
	free(cx.blks);
	if (!root_given)
		wafl_blk_free(rootbuf);
	pthread_mutex_unlock(&v->cp_serial);
	return rc;
}

/* ------------------------------------------------------------ thread */

void cp_request(struct wafl_vol *v)
{
	pthread_mutex_lock(&v->cp_mutex);
	v->cp_requested = true;
	pthread_cond_broadcast(&v->cp_cond);
	pthread_mutex_unlock(&v->cp_mutex);
}

static void *cp_thread_main(void *arg)
{
	struct wafl_vol *v = arg;

	(void)pthread_setname_np(pthread_self(), "wafl-cp");
	pthread_mutex_lock(&v->cp_mutex);
	while (!v->cp_stop) {
		struct timespec ts;
		fl_deadline_ts(&ts, (uint64_t)v->opts.cp_interval_ms * 1000);
		while (!v->cp_stop && !v->cp_requested) {
			if (pthread_cond_timedwait(&v->cp_cond, &v->cp_mutex,
			    &ts) != 0)
				break;
		}
		if (v->cp_stop)
			break;
		v->cp_requested = false;
		pthread_mutex_unlock(&v->cp_mutex);
		(void)cp_run(v);
		wnode_trim(v, false);
		orphans_reclaim_due(v);
		pthread_mutex_lock(&v->cp_mutex);
		pthread_cond_broadcast(&v->cp_cond);
	}
	pthread_mutex_unlock(&v->cp_mutex);
	return NULL;
}

int cp_start_thread(struct wafl_vol *v)
{
	int rc = pthread_create(&v->cp_thread, NULL, cp_thread_main, v);

	if (rc != 0)
		return -rc;
	v->cp_running_thread = true;
	return 0;
}

void cp_stop_thread(struct wafl_vol *v)
{
	if (!v->cp_running_thread)
		return;
	pthread_mutex_lock(&v->cp_mutex);
	v->cp_stop = true;
	pthread_cond_broadcast(&v->cp_cond);
	pthread_mutex_unlock(&v->cp_mutex);
	pthread_join(v->cp_thread, NULL);
	v->cp_running_thread = false;
}
