/*
 * wafl/dbuf.c: the per-inode table of dirty buffers, keyed (level, index).
 * A chained hash table that doubles when it fills; no locking (the owner
 * wnode's lock, or the CP freeze, protects it).  Buffers' data are pool
 * blocks (cache.c): the CP hands each one to the block cache as it is, so
 * a dirty buffer is allocated once and never copied on its way to disk.
 */
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "wafl/wafl_impl.h"

static uint32_t slot_of(const struct dbuf_tab *t, uint64_t key)
{
	return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32) &
	    (t->nslots - 1);
}

void dbuf_tab_init(struct dbuf_tab *t)
{
	memset(t, 0, sizeof(*t));
}

void dbuf_tab_free(struct dbuf_tab *t)
{
	for (uint32_t i = 0; i < t->nslots; i++) {
		struct dbuf *d = t->slots[i];
		while (d != NULL) {
			struct dbuf *n = d->next;
			wafl_blk_free(d->data);
			free(d);
			d = n;
		}
	}
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

struct dbuf *dbuf_find(struct dbuf_tab *t, uint64_t key)
{
	if (t->count == 0)
		return NULL;
	for (struct dbuf *d = t->slots[slot_of(t, key)]; d != NULL; d = d->next)
		if (d->key == key)
			return d;
	return NULL;
}

static int grow(struct dbuf_tab *t)
{
	uint32_t n = t->nslots ? t->nslots * 2 : 16;
	struct dbuf **slots = calloc(n, sizeof(*slots));

	if (slots == NULL)
		return -ENOMEM;
	struct dbuf_tab nt = { .slots = slots, .nslots = n, .count = t->count };
	for (uint32_t i = 0; i < t->nslots; i++) {
		struct dbuf *d = t->slots[i];
		while (d != NULL) {
			struct dbuf *next = d->next;
			uint32_t s = slot_of(&nt, d->key);
			d->next = slots[s];
			slots[s] = d;
			d = next;
		}
	}
	free(t->slots);
	*t = nt;
	return 0;
}

struct dbuf *dbuf_insert(struct dbuf_tab *t, uint64_t key)
{
	ASSERT(dbuf_find(t, key) == NULL);
	if (t->count + 1 > t->nslots && grow(t) != 0)
		return NULL;
	struct dbuf *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->data = wafl_blk_alloc();
	if (d->data == NULL) {
		free(d);
		return NULL;
	}
	d->key = key;
	uint32_t s = slot_of(t, key);
	d->next = t->slots[s];
	t->slots[s] = d;
	t->count++;
	return d;
}

void dbuf_remove(struct dbuf_tab *t, uint64_t key)
{
	if (t->count == 0)
		return;
	struct dbuf **pp = &t->slots[slot_of(t, key)];
	while (*pp != NULL && (*pp)->key != key)
		pp = &(*pp)->next;
	if (*pp == NULL)
		return;
	struct dbuf *d = *pp;
	*pp = d->next;
	t->count--;
	wafl_blk_free(d->data);
	free(d);
}

static int cmp_key(const void *a, const void *b)
{
	const struct dbuf *x = *(struct dbuf *const *)a;
	const struct dbuf *y = *(struct dbuf *const *)b;

	return x->key < y->key ? -1 : x->key > y->key;
}

void dbuf_precksum(struct dbuf_tab *t)
{
	for (uint32_t s = 0; s < t->nslots; s++)
		for (struct dbuf *d = t->slots[s]; d != NULL; d = d->next)
			if (DBUF_LEVEL(d->key) == 0 && !d->cksum_ok) {
				d->cksum = fl_crc32c(0, d->data,
				    WAFL_BLOCK_SIZE);
				d->cksum_ok = true;
			}
}

int dbuf_sorted(struct dbuf_tab *t, struct dbuf ***out, uint32_t *n)
{
	struct dbuf **arr = malloc((t->count + 1) * sizeof(*arr));
	uint32_t k = 0;

	if (arr == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->nslots; i++)
		for (struct dbuf *d = t->slots[i]; d != NULL; d = d->next)
			arr[k++] = d;
	VERIFY_EQ(k, t->count);
	qsort(arr, k, sizeof(*arr), cmp_key);
	*out = arr;
	*n = k;
	return 0;
}
