/*
 * wafl/cache.c: the clean block cache, keyed by VBN.
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
 * counts block data only (pinned blocks may exceed it until unpinned).
 */
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "wafl/wafl_impl.h"

struct centry {
	uint64_t vbn, birth;
	uint32_t cksum;
	uint32_t pins;
	struct centry *hnext;
	struct centry *prev, *next;	/* LRU: head = most recent */
	uint8_t data[WAFL_BLOCK_SIZE];
};

struct bcache {
	pthread_mutex_t lock;
	struct centry **hash;
	uint64_t nhash;			/* power of two */
	uint64_t max_entries, nentries;
	struct centry *head, *tail;
	uint64_t hits, misses;
};

static uint64_t hash_vbn(uint64_t vbn, uint64_t n)
{
	return (vbn * 0x9e3779b97f4a7c15ull) >> 20 & (n - 1);
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

static void remove_entry(struct bcache *bc, struct centry *e)
{
	struct centry **pp = find_slot(bc, e->vbn);

	VERIFY(*pp == e);
	*pp = e->hnext;
	if (e->pins == 0)
		lru_unlink(bc, e);
	bc->nentries--;
	free(e);
}

void bcache_destroy(struct bcache *bc)
{
	if (bc == NULL)
		return;
	for (uint64_t i = 0; i < bc->nhash; i++) {
		struct centry *e = bc->hash[i];
		while (e != NULL) {
			struct centry *next = e->hnext;
			free(e);
			e = next;
		}
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

static void evict(struct bcache *bc)
{
	/* Only unpinned entries are on the list. */
	while (bc->nentries > bc->max_entries && bc->tail != NULL)
		remove_entry(bc, bc->tail);
}

void bcache_put(struct bcache *bc, const struct wafl_bp *bp, const void *data,
    bool pin)
{
	struct centry *n = malloc(sizeof(*n));

	pthread_mutex_lock(&bc->lock);
	struct centry **pp = find_slot(bc, bp->vbn);
	struct centry *e = *pp;
	if (e != NULL) {
		/* Same VBN, newer life (or the same block again). */
		e->birth = bp->birth;
		e->cksum = bp->cksum;
		memcpy(e->data, data, WAFL_BLOCK_SIZE);
		if (e->pins == 0)
			lru_unlink(bc, e);
		if (pin)
			e->pins++;
		if (e->pins == 0)
			lru_push_front(bc, e);
		free(n);
	} else if (n != NULL) {
		memset(n, 0, offsetof(struct centry, data));
		n->vbn = bp->vbn;
		n->birth = bp->birth;
		n->cksum = bp->cksum;
		n->pins = pin ? 1 : 0;
		memcpy(n->data, data, WAFL_BLOCK_SIZE);
		n->hnext = NULL;
		*pp = n;
		if (!pin)
			lru_push_front(bc, n);
		bc->nentries++;
	}
	evict(bc);
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
