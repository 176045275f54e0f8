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

/* Put d on its chain of t (count is the caller's). */
static void link_in(struct dbuf_tab *t, struct dbuf *d)
{
	uint32_t s = slot_of(t, d->key);

	d->next = t->slots[s];
	t->slots[s] = d;
}

void dbuf_tab_init(struct dbuf_tab *t)
{
	memset(t, 0, sizeof(*t));
}

void dbuf_free(struct dbuf *d)
{
	wafl_blk_free(d->data);
	free(d);
}

void dbuf_tab_forget(struct dbuf_tab *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

int dbuf_tab_relink(struct dbuf_tab *t, const struct dbuf_ref *r,
    uint32_t n)
{
	uint32_t nslots = 16;

	while (nslots < n)
		nslots *= 2;
	struct dbuf **slots = calloc(nslots, sizeof(*slots));
	if (slots == NULL)
		return -ENOMEM;
	dbuf_tab_forget(t);
	t->slots = slots;
	t->nslots = nslots;
	for (uint32_t i = 0; i < n; i++)
		link_in(t, r[i].d);
	t->count = n;
	return 0;
}

void dbuf_tab_free(struct dbuf_tab *t)
{
	for (uint32_t i = 0; i < t->nslots; i++) {
		struct dbuf *d = t->slots[i];
		while (d != NULL) {
			struct dbuf *n = d->next;
			dbuf_free(d);
			d = n;
		}
	}
	dbuf_tab_forget(t);
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
			link_in(&nt, d);
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
	link_in(t, d);
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

static int cmp_kp(const void *a, const void *b)
{
	const struct dbuf_ref *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

#define RADIX_MIN	64u	/* fewer: a comparison sort is cheaper */

/*
 * Sort a (n entries) by key, least significant byte first, through tmp;
 * bytes in which every key agrees are skipped (a file's keys differ in a
 * few low bytes of the index and in the level byte).  Keys sit next to
 * their pointers, so the sort never touches the buffers themselves.
 * Returns the array that holds the result (a or tmp).
 */
static struct dbuf_ref *radix_sort(struct dbuf_ref *a, struct dbuf_ref *tmp,
    uint32_t n)
{
	uint64_t differ = 0;

	for (uint32_t i = 1; i < n; i++)
		differ |= a[i].key ^ a[0].key;
	for (unsigned shift = 0; shift < 64; shift += 8) {
		uint32_t count[256] = { 0 };

		if (((differ >> shift) & 0xff) == 0)
			continue;
		for (uint32_t i = 0; i < n; i++)
			count[(a[i].key >> shift) & 0xff]++;
		for (uint32_t b = 0, sum = 0; b < 256; b++) {
			uint32_t c = count[b];
			count[b] = sum;
			sum += c;
		}
		for (uint32_t i = 0; i < n; i++)
			tmp[count[(a[i].key >> shift) & 0xff]++] = a[i];
		struct dbuf_ref *t = a;
		a = tmp;
		tmp = t;
	}
	return a;
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

int dbuf_sorted(struct dbuf_tab *t, struct dbuf_ref **out, uint32_t *n)
{
	const uint32_t cnt = t->count;
	struct dbuf_ref *r = malloc((2 * (size_t)cnt + 1) * sizeof(*r));
	uint32_t k = 0;

	if (r == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->nslots; i++)
		for (struct dbuf *d = t->slots[i]; d != NULL; d = d->next)
			r[k++] = (struct dbuf_ref){ d->key, d };
	VERIFY_EQ(k, cnt);
	struct dbuf_ref *sorted = r;
	if (k < RADIX_MIN)
		qsort(r, k, sizeof(*r), cmp_kp);
	else
		sorted = radix_sort(r, r + k, k);
	if (sorted != r)
		memcpy(r, sorted, (size_t)k * sizeof(*r));
	for (uint32_t i = 1; i < k; i++)
		ASSERT(r[i - 1].key < r[i].key);
	*out = r;
	*n = k;
	return 0;
}
