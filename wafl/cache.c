/*
 * wafl/cache.c: the clean block cache, keyed by VBN, and the pool every
 * block buffer of the module comes from.
 *
 * Blocks on disk are immutable while reachable (W3), so an entry is valid
 * for a reader whose block pointer carries the same birth generation and
 * checksum; anything else is a miss and the caller reads (and verifies) the
 * disk again.  Entries are verified before insertion (wafl_read_bp) or come
 * from the CP that computed their checksum.
 *
 * One mutex, a chained hash table and an LRU list of unpinned entries;
 * pinned entries (blocks of a CP still being written) stay off the list, so
 * eviction never walks past them, and are never evicted.  The memory bound
 * counts block data only (pinned blocks may exceed it until unpinned).  A
 * CP's gives evict nothing (its freeze holds every operation off): the CP
 * trims the cache back to its size once the freeze is over (bcache_trim).
 *
 * An entry's data never changes while it is pinned: the CP that gave it
 * (bcache_give) reads it for its write-out without a copy and without the
 * lock, until bcache_unpin.  A put at a pinned VBN with another identity is
 * not cached (it would be a W3 violation; the caller has its data anyway).
 * Readers get a copy (bcache_get) or a loan of the entry's buffer itself
 * (bcache_lend), which only reads it; nothing ever writes an entry's data.
 * A loan holds a reference to the entry: one that leaves the table while
 * lent keeps its buffer (and header) until the last bcache_return.
 *
 * BLOCK BUFFERS
 *   Dirty buffers, cache entries and the module's scratch blocks are 4 KiB
 *   buffers from one process-wide pool: slabs of BLKPOOL_SLAB blocks
 *   mapped (and populated) from the system and never returned to it, and
 *   a LIFO list of freed blocks.  A slab is aligned to, and asks for,
 *   transparent huge pages (slab_map): the pool is hundreds of megabytes
 *   walked block by block, and with 4 KiB pages the first store to each
 *   block cost a TLB miss that a virtual machine's nested or shadow paging
 *   makes dear (docs/bench.md: NFS sequential write about 252 -> 343
 *   MiB/s).  The price is the kernel zeroing each new huge page as the
 *   pool grows.  Without huge pages (THP off, none free) a slab is 4 KiB
 *   pages, populated just the same.  A dirty buffer becomes a cache entry
 *   at its CP without a copy, and an evicted entry's buffer is the next
 *   dirty buffer, so a steady write load neither allocates nor faults in
 *   block memory: the pool stays at its high-water mark (about cache_bytes
 *   plus twice dirty_max per mounted volume); a new slab is mapped and
 *   populated outside the pool's lock.  Built with
 *   AddressSanitizer, buffers come from malloc instead, so a use after
 *   free is still caught.  The pool's lock is a leaf, taken under the
 *   cache lock by eviction.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "wafl/wafl_impl.h"

/* -------------------------------------------------------- block buffers */

#define BLKPOOL_SLAB	1024	/* blocks per slab: 4 MiB */
#define BLKPOOL_ALIGN	(2u << 20)	/* a huge page */

#ifndef __SANITIZE_ADDRESS__
struct blkfree {
	struct blkfree *next;
};

static pthread_mutex_t blkpool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct blkfree *blkpool_free;	/* freed blocks, LIFO */
static uint8_t *blkpool_slab;		/* the newest slab's unused tail */
static uint32_t blkpool_left;
static uint64_t blkpool_mapped;		/* bytes of slabs, all time */
static uint64_t blkpool_want;		/* mounted volumes' reservations */
#endif

#ifndef __SANITIZE_ADDRESS__
/* A slab: BLKPOOL_ALIGN-aligned, huge pages asked for, every page
 * populated before use (one call, not a fault per page).  NULL if the
 * system has no memory for it. */
static void *slab_map(void)
{
	const size_t sz = (size_t)BLKPOOL_SLAB * WAFL_BLOCK_SIZE;
	uint8_t *raw = mmap(NULL, sz + BLKPOOL_ALIGN, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (raw == MAP_FAILED)
		return NULL;
	uintptr_t at = ((uintptr_t)raw + BLKPOOL_ALIGN - 1) &
	    ~(uintptr_t)(BLKPOOL_ALIGN - 1);
	size_t head = at - (uintptr_t)raw, tail = BLKPOOL_ALIGN - head;
	uint8_t *slab = (uint8_t *)at;

	if (head > 0)
		(void)munmap(raw, head);
	if (tail > 0)
		(void)munmap(slab + sz, tail);
	(void)madvise(slab, sz, MADV_HUGEPAGE);	/* a hint: THP may be off */
	if (madvise(slab, sz, MADV_POPULATE_WRITE) != 0) {
		if (errno == ENOMEM) {
			(void)munmap(slab, sz);
			return NULL;
		}
		/* A kernel without it (before 5.14): touch every page. */
		for (size_t off = 0; off < sz; off += 4096)
			((volatile uint8_t *)slab)[off] = 0;
	}
	return slab;
}
#endif

#ifndef __SANITIZE_ADDRESS__
/* Every block of a new slab onto the free list (blkpool_lock held). */
static void slab_give(uint8_t *slab)
{
	for (uint32_t i = 0; i < BLKPOOL_SLAB; i++) {
		struct blkfree *f = (struct blkfree *)(void *)(slab +
		    (size_t)i * WAFL_BLOCK_SIZE);
		f->next = blkpool_free;
		blkpool_free = f;
	}
}
#endif

uint8_t *wafl_blk_alloc(void)
{
#ifdef __SANITIZE_ADDRESS__
	return malloc(WAFL_BLOCK_SIZE);
#else
	uint8_t *b;

	pthread_mutex_lock(&blkpool_lock);
	while (blkpool_free == NULL && blkpool_left == 0) {
		/* A new slab, mapped and populated without the lock: that
		 * takes milliseconds, which wafl_blk_free (eviction, under
		 * the cache lock) must not wait out. */
		pthread_mutex_unlock(&blkpool_lock);
		uint8_t *slab = slab_map();
		pthread_mutex_lock(&blkpool_lock);
		if (slab == NULL) {
			if (blkpool_free != NULL || blkpool_left > 0)
				break;	/* another thread's slab or a free */
			b = NULL;
			goto out;
		}
		blkpool_mapped += (uint64_t)BLKPOOL_SLAB * WAFL_BLOCK_SIZE;
		if (blkpool_left == 0) {
			blkpool_slab = slab;
			blkpool_left = BLKPOOL_SLAB;
			break;
		}
		/* Another thread's slab came first: this one's blocks
		 * join the freed ones. */
		slab_give(slab);
	}
	if (blkpool_free != NULL) {
		b = (uint8_t *)blkpool_free;
		blkpool_free = blkpool_free->next;
		goto out;
	}
	b = blkpool_slab;
	blkpool_slab += WAFL_BLOCK_SIZE;
	blkpool_left--;
out:
	pthread_mutex_unlock(&blkpool_lock);
	return b;
#endif
}

/*
 * Reservations.  A volume mounted with the prefill option adds what its
 * pool is expected to reach (wafl_pool_reserve(+n)) and takes it back
 * when it goes (-n); the pool is then grown to the sum now, slab by slab,
 * rather than while clients wait on a first touch of each page.  Mapped
 * memory is never given back, so a second mount of the same volume maps
 * nothing.  At most half the machine's memory is reserved this way.
 */
uint64_t wafl_pool_reserve(int64_t delta)
{
#ifdef __SANITIZE_ADDRESS__
	(void)delta;
	return 0;
#else
	const uint64_t slab_bytes = (uint64_t)BLKPOOL_SLAB * WAFL_BLOCK_SIZE;
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	uint64_t cap = pages > 0 && psz > 0 ?
	    (uint64_t)pages * (uint64_t)psz / 2 : 0;
	uint64_t want, mapped;

	pthread_mutex_lock(&blkpool_lock);
	if (delta < 0 && (uint64_t)0 - (uint64_t)delta > blkpool_want)
		blkpool_want = 0;
	else
		blkpool_want += (uint64_t)delta;
	want = blkpool_want < cap ? blkpool_want : cap;
	while (blkpool_mapped < want) {
		/* Counted before the mapping so that concurrent reservations
		 * do not overshoot; taken back if the system refuses. */
		blkpool_mapped += slab_bytes;
		pthread_mutex_unlock(&blkpool_lock);
		uint8_t *slab = slab_map();
		pthread_mutex_lock(&blkpool_lock);
		if (slab == NULL) {
			blkpool_mapped -= slab_bytes;
			break;
		}
		slab_give(slab);
	}
	mapped = blkpool_mapped;
	pthread_mutex_unlock(&blkpool_lock);
	return mapped;
#endif
}

uint64_t wafl_pool_bytes(void)
{
#ifdef __SANITIZE_ADDRESS__
	return 0;
#else
	uint64_t n;

	pthread_mutex_lock(&blkpool_lock);
	n = blkpool_mapped;
	pthread_mutex_unlock(&blkpool_lock);
	return n;
#endif
}

void wafl_blk_free(uint8_t *blk)
{
#ifdef __SANITIZE_ADDRESS__
	free(blk);
#else
	struct blkfree *b = (struct blkfree *)(void *)blk;

	if (b == NULL)
		return;
	pthread_mutex_lock(&blkpool_lock);
	b->next = blkpool_free;
	blkpool_free = b;
	pthread_mutex_unlock(&blkpool_lock);
#endif
}

/* ---------------------------------------------------------------- cache */

struct centry {
	uint64_t vbn, birth;
	uint32_t cksum;
	uint32_t pins;
	/* One for the table while the entry is in it, one per loan
	 * (bcache_lend); whoever drops the last frees data (and, once the
	 * entry has left the table, the header).  Atomic: a loan is
	 * returned without the lock. */
	uint32_t refs;
	struct centry *hnext;
	struct centry *prev, *next;	/* LRU: head = most recent */
	uint8_t *data;			/* a pool block, owned */
};

struct bcache {
	pthread_mutex_t lock;
	struct centry **hash;
	uint64_t nhash;			/* power of two */
	uint64_t max_entries, nentries;
	struct centry *head, *tail;
	struct centry *spare;		/* unused headers, by hnext */
	uint64_t hits, misses;
};

/*
 * Runs of 16 consecutive VBNs land in consecutive buckets (the run's place
 * is hashed): a CP gives, and a sequential read looks up, consecutive
 * VBNs, which then share the buckets' cache lines.
 */
static uint64_t hash_vbn(uint64_t vbn, uint64_t n)
{
	return (((vbn >> 4) * 0x9e3779b97f4a7c15ull) >> 20 << 4 |
	    (vbn & 15)) & (n - 1);
}

void bcache_prefetch(struct bcache *bc, uint64_t vbn)
{
	__builtin_prefetch(&bc->hash[hash_vbn(vbn, bc->nhash)]);
}

int bcache_create(uint64_t max_bytes, struct bcache **out)
{
	struct bcache *bc = calloc(1, sizeof(*bc));

	if (bc == NULL)
		return -ENOMEM;
	bc->max_entries = max_bytes / WAFL_BLOCK_SIZE;
	if (bc->max_entries < 64)
		bc->max_entries = 64;
	bc->nhash = 1024;
	while (bc->nhash < bc->max_entries)
		bc->nhash <<= 1;
	bc->hash = calloc(bc->nhash, sizeof(*bc->hash));
	if (bc->hash == NULL) {
		free(bc);
		return -ENOMEM;
	}
	pthread_mutex_init(&bc->lock, NULL);
	*out = bc;
	return 0;
}

static void lru_unlink(struct bcache *bc, struct centry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		bc->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		bc->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_front(struct bcache *bc, struct centry *e)
{
	e->prev = NULL;
	e->next = bc->head;
	if (bc->head != NULL)
		bc->head->prev = e;
	bc->head = e;
	if (bc->tail == NULL)
		bc->tail = e;
}

static struct centry **find_slot(struct bcache *bc, uint64_t vbn)
{
	struct centry **pp = &bc->hash[hash_vbn(vbn, bc->nhash)];

	while (*pp != NULL && (*pp)->vbn != vbn)
		pp = &(*pp)->hnext;
	return pp;
}

/* Take e out of the table.  A lent entry keeps its data, and its header,
 * for the last loan to free (bcache_return). */
static void remove_entry(struct bcache *bc, struct centry *e)
{
	struct centry **pp = find_slot(bc, e->vbn);

	VERIFY(*pp == e);
	*pp = e->hnext;
	if (e->pins == 0)
		lru_unlink(bc, e);
	bc->nentries--;
	e->hnext = NULL;
	if (__atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	wafl_blk_free(e->data);
	e->data = NULL;
	e->hnext = bc->spare;
	bc->spare = e;
}

void bcache_destroy(struct bcache *bc)
{
	if (bc == NULL)
		return;
	for (uint64_t i = 0; i < bc->nhash; i++) {
		struct centry *e = bc->hash[i];
		while (e != NULL) {
			struct centry *next = e->hnext;
			e->hnext = NULL;
			if (__atomic_sub_fetch(&e->refs, 1,
			    __ATOMIC_ACQ_REL) == 0) {
				wafl_blk_free(e->data);
				free(e);
			}
			e = next;
		}
	}
	while (bc->spare != NULL) {
		struct centry *next = bc->spare->hnext;
		free(bc->spare);
		bc->spare = next;
	}
	free(bc->hash);
	pthread_mutex_destroy(&bc->lock);
	free(bc);
}

bool bcache_get(struct bcache *bc, const struct wafl_bp *bp, void *buf)
{
	bool hit = false;

	pthread_mutex_lock(&bc->lock);
	struct centry *e = *find_slot(bc, bp->vbn);
	if (e != NULL && e->birth == bp->birth && e->cksum == bp->cksum) {
		memcpy(buf, e->data, WAFL_BLOCK_SIZE);
		if (e->pins == 0) {
			lru_unlink(bc, e);
			lru_push_front(bc, e);
		}
		bc->hits++;
		hit = true;
	} else {
		bc->misses++;
	}
	pthread_mutex_unlock(&bc->lock);
	return hit;
}

unsigned bcache_lend(struct bcache *bc, const struct wafl_bp *bp,
    unsigned n, const uint8_t **data, void **ticket)
{
	unsigned lent = 0;

	pthread_mutex_lock(&bc->lock);
	for (unsigned i = 0; i < n; i++) {
		struct centry *e;

		data[i] = NULL;
		ticket[i] = NULL;
		if (bp[i].vbn == 0)
			continue;
		e = *find_slot(bc, bp[i].vbn);
		if (e == NULL || e->birth != bp[i].birth ||
		    e->cksum != bp[i].cksum)
			continue;	/* the caller's read counts the miss */
		__atomic_add_fetch(&e->refs, 1, __ATOMIC_RELAXED);
		if (e->pins == 0) {
			lru_unlink(bc, e);
			lru_push_front(bc, e);
		}
		bc->hits++;
		data[i] = e->data;
		ticket[i] = e;
		lent++;
	}
	pthread_mutex_unlock(&bc->lock);
	return lent;
}

void bcache_return(void *ticket)
{
	struct centry *e = ticket;

	if (e == NULL)
		return;
	/* A loan's bytes never changed (nothing writes an entry's buffer,
	 * W3): checked in debug and sanitizer builds. */
	ASSERT(fl_crc32c(0, e->data, WAFL_BLOCK_SIZE) == e->cksum);
	if (__atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	/* The last reference: the entry left the table while lent. */
	wafl_blk_free(e->data);
	free(e);
}

static void evict(struct bcache *bc)
{
	/* Only unpinned entries are on the list. */
	while (bc->nentries > bc->max_entries && bc->tail != NULL)
		remove_entry(bc, bc->tail);
}

/*
 * Enter data (a pool block, which the cache owns from here on) for bp.
 * Returns a block the caller frees: data itself when the VBN is pinned
 * under another identity (not cached), the data an entry had before, or
 * NULL.  Called with the lock held.
 */
static uint8_t *cache_enter(struct bcache *bc, const struct wafl_bp *bp,
    uint8_t *data, bool pin)
{
	struct centry **pp = find_slot(bc, bp->vbn);
	struct centry *e = *pp;
	uint8_t *drop = NULL;

	if (e != NULL && e->pins > 0) {
		/* A CP's block still being written: never changes (a VBN
		 * is given once per CP, and its CP unpins it at the end). */
		VERIFY(!pin);
		return data;
	}
	if (e != NULL && __atomic_load_n(&e->refs, __ATOMIC_ACQUIRE) > 1) {
		/* Lent: its data stays as it is until the loans are back,
		 * so the new data gets an entry of its own. */
		remove_entry(bc, e);
		e = NULL;
	}
	if (e != NULL) {
		/* Same VBN, newer life (or the same block again). */
		drop = e->data;
		lru_unlink(bc, e);
	} else {
		e = bc->spare;
		if (e != NULL)
			bc->spare = e->hnext;
		else if ((e = malloc(sizeof(*e))) == NULL)
			return data;
		memset(e, 0, sizeof(*e));
		e->vbn = bp->vbn;
		e->refs = 1;
		pp = find_slot(bc, bp->vbn);	/* remove_entry may move it */
		*pp = e;
		bc->nentries++;
	}
	e->birth = bp->birth;
	e->cksum = bp->cksum;
	e->data = data;
	e->pins = pin ? 1 : 0;
	/* A give (pinned, inside a CP's freeze) leaves the eviction of
	 * what it displaces to bcache_trim, after the freeze. */
	if (!pin) {
		lru_push_front(bc, e);
		evict(bc);
	}
	return drop;
}

#define TRIM_CHUNK	256u	/* evictions per hold of the lock */

void bcache_trim(struct bcache *bc)
{
	bool more = true;

	while (more) {
		pthread_mutex_lock(&bc->lock);
		for (unsigned i = 0; i < TRIM_CHUNK &&
		    bc->nentries > bc->max_entries && bc->tail != NULL; i++)
			remove_entry(bc, bc->tail);
		more = bc->nentries > bc->max_entries && bc->tail != NULL;
		pthread_mutex_unlock(&bc->lock);
	}
}

void bcache_put(struct bcache *bc, const struct wafl_bp *bp, const void *data)
{
	uint8_t *copy = wafl_blk_alloc();

	if (copy == NULL)
		return;		/* not cached: a later read goes to disk */
	memcpy(copy, data, WAFL_BLOCK_SIZE);
	pthread_mutex_lock(&bc->lock);
	uint8_t *drop = cache_enter(bc, bp, copy, false);
	pthread_mutex_unlock(&bc->lock);
	wafl_blk_free(drop);
}

int bcache_give_locked(struct bcache *bc, const struct wafl_bp *bp,
    uint8_t *data)
{
	uint8_t *drop = cache_enter(bc, bp, data, true);

	if (drop == data)
		return -ENOMEM;	/* no entry header: data stays the caller's */
	wafl_blk_free(drop);
	return 0;
}

int bcache_give(struct bcache *bc, const struct wafl_bp *bp, uint8_t *data)
{
	pthread_mutex_lock(&bc->lock);
	int rc = bcache_give_locked(bc, bp, data);
	pthread_mutex_unlock(&bc->lock);
	return rc;
}

void bcache_lock(struct bcache *bc)
{
	pthread_mutex_lock(&bc->lock);
}

void bcache_unlock(struct bcache *bc)
{
	pthread_mutex_unlock(&bc->lock);
}

void bcache_unpin(struct bcache *bc, uint64_t vbn)
{
	pthread_mutex_lock(&bc->lock);
	struct centry *e = *find_slot(bc, vbn);
	if (e != NULL && e->pins > 0 && --e->pins == 0)
		lru_push_front(bc, e);
	evict(bc);
	pthread_mutex_unlock(&bc->lock);
}

void bcache_invalidate(struct bcache *bc, uint64_t vbn)
{
	pthread_mutex_lock(&bc->lock);
	struct centry *e = *find_slot(bc, vbn);
	if (e != NULL && e->pins == 0)
		remove_entry(bc, e);
	pthread_mutex_unlock(&bc->lock);
}

void bcache_invalidate_all(struct bcache *bc)
{
	pthread_mutex_lock(&bc->lock);
	struct centry *e = bc->head;
	while (e != NULL) {
		struct centry *next = e->next;
		if (e->pins == 0)
			remove_entry(bc, e);
		e = next;
	}
	pthread_mutex_unlock(&bc->lock);
}

void bcache_stats(struct bcache *bc, uint64_t *hits, uint64_t *misses,
    uint64_t *bytes)
{
	pthread_mutex_lock(&bc->lock);
	*hits = bc->hits;
	*misses = bc->misses;
	*bytes = bc->nentries * WAFL_BLOCK_SIZE;
	pthread_mutex_unlock(&bc->lock);
}
