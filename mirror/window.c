/*
 * mirror/window.c: the blocks both ends of a link keep for DELTA frames.
 *
 * THEORY
 *   Most of what a CP rewrites besides file data is metadata that changed
 *   a little: a pointer block with one new pointer, an inode-file block
 *   with one inode's size and times, a bitmap block with a few bits.  The
 *   block it replaces is one the destination received earlier on the same
 *   connection.  So both ends keep the same set of recently sent metadata
 *   blocks, keyed by VBN, and the source may send a block as DELTA: "the
 *   block you keep at VBN b, with these byte ranges replaced".
 *
 *   The two windows stay equal because both change only by the frames of
 *   the connection, in frame order, through the same code (this file):
 *     BLOCK with MIR_HINT_KEEP  put(vbn, data)
 *     BLOCK without it          drop(vbn)
 *     DELTA{vbn, base}          the block is base's patched; drop(base),
 *                               put(vbn, block)
 *   put takes a free slot while there is one, and evicts the entry put
 *   longest ago only when all MIR_WINDOW_BLOCKS hold one: a drop frees
 *   its slot, so the window holds up to that many live blocks however
 *   many went through it (a pointer block rewritten every CP is replaced
 *   in place of its old version, and does not push out the blocks the
 *   baseline left that no CP has touched since).  Nothing else touches a
 *   window, and it starts empty with each connection.
 *
 *   Nothing read from the destination's disks is involved: the base is
 *   what the source sent.  And nothing rests on the window being right: a
 *   block rebuilt from a DELTA is verified against its parent's checksum
 *   like any other (M3), so windows that differed would only cost a
 *   refused transfer, never a wrong block.
 *
 * CONCURRENCY
 *   A window belongs to its connection's one thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/util.h"
#include "mirror/wire.h"

#define NONE	UINT32_MAX

struct wslot {
	uint64_t vbn;
	uint32_t next;		/* hash chain; free list when unused */
	uint32_t older, newer;	/* age list of the used slots */
	bool used;
};

struct mir_window {
	uint32_t cap;
	uint32_t free;		/* free slots, chained by next */
	uint32_t oldest, newest;	/* ends of the age list */
	uint32_t nbuckets;	/* power of two */
	uint32_t *buckets;
	struct wslot *slots;
	uint8_t *data;		/* cap blocks; pages touched as used */
};

static uint32_t bucket(const struct mir_window *w, uint64_t vbn)
{
	return (uint32_t)((vbn * 0x9e3779b97f4a7c15ull) >> 32) &
	    (w->nbuckets - 1);
}

int mir_window_create(uint32_t cap, struct mir_window **out)
{
	struct mir_window *w = calloc(1, sizeof(*w));

	if (w == NULL || cap == 0)
		goto fail;
	w->cap = cap;
	w->nbuckets = 1;
	while (w->nbuckets < cap)
		w->nbuckets <<= 1;
	w->buckets = malloc(w->nbuckets * sizeof(*w->buckets));
	w->slots = calloc(cap, sizeof(*w->slots));
	w->data = malloc((size_t)cap * MIR_BLOCK);
	if (w->buckets == NULL || w->slots == NULL || w->data == NULL)
		goto fail;
	for (uint32_t i = 0; i < w->nbuckets; i++)
		w->buckets[i] = NONE;
	for (uint32_t i = 0; i < cap; i++)
		w->slots[i].next = i + 1 < cap ? i + 1 : NONE;
	w->free = 0;
	w->oldest = w->newest = NONE;
	*out = w;
	return 0;
fail:
	mir_window_destroy(w);
	return cap == 0 ? -EINVAL : -ENOMEM;
}

void mir_window_destroy(struct mir_window *w)
{
	if (w == NULL)
		return;
	free(w->buckets);
	free(w->slots);
	free(w->data);
	free(w);
}

static uint32_t find(const struct mir_window *w, uint64_t vbn)
{
	for (uint32_t i = w->buckets[bucket(w, vbn)]; i != NONE;
	    i = w->slots[i].next)
		if (w->slots[i].vbn == vbn)
			return i;
	return NONE;
}

static void unlink_slot(struct mir_window *w, uint32_t s)
{
	uint32_t *p = &w->buckets[bucket(w, w->slots[s].vbn)];

	while (*p != s) {
		ASSERT(*p != NONE);
		p = &w->slots[*p].next;
	}
	*p = w->slots[s].next;
	/* out of the age list */
	struct wslot *e = &w->slots[s];
	if (e->older != NONE)
		w->slots[e->older].newer = e->newer;
	else
		w->oldest = e->newer;
	if (e->newer != NONE)
		w->slots[e->newer].older = e->older;
	else
		w->newest = e->older;
	e->used = false;
	e->next = w->free;
	w->free = s;
}

const uint8_t *mir_window_get(const struct mir_window *w, uint64_t vbn)
{
	uint32_t s = w != NULL ? find(w, vbn) : NONE;

	return s == NONE ? NULL : w->data + (size_t)s * MIR_BLOCK;
}

void mir_window_drop(struct mir_window *w, uint64_t vbn)
{
	uint32_t s = w != NULL ? find(w, vbn) : NONE;

	if (s != NONE)
		unlink_slot(w, s);
}

void mir_window_put(struct mir_window *w, uint64_t vbn, const uint8_t *data)
{
	if (w == NULL)
		return;
	mir_window_drop(w, vbn);
	if (w->free == NONE)
		unlink_slot(w, w->oldest);	/* full: the oldest goes */
	uint32_t s = w->free;
	w->free = w->slots[s].next;
	uint32_t b = bucket(w, vbn);
	w->slots[s] = (struct wslot){ .vbn = vbn, .next = w->buckets[b],
	    .older = w->newest, .newer = NONE, .used = true };
	w->buckets[b] = s;
	if (w->newest != NONE)
		w->slots[w->newest].newer = s;
	else
		w->oldest = s;
	w->newest = s;
	memmove(w->data + (size_t)s * MIR_BLOCK, data, MIR_BLOCK);
}

/* ------------------------------------------------------------- patches */

/*
 * Ranges: {offset 2, length 2, bytes}..., in increasing offset, none
 * empty, none overlapping or past the block.  Built here from the runs of
 * 8-byte words that differ (joining two runs would cost at least 8 bytes
 * of gap to save a 4-byte range header).  UINT32_MAX if more than max.
 */
uint32_t mir_patch_encode(uint8_t *out, uint32_t max, const uint8_t *base,
    const uint8_t *data)
{
	const uint32_t words = MIR_BLOCK / 8;
	uint32_t len = 0;

	for (uint32_t i = 0; i < words;) {
		if (memcmp(base + i * 8, data + i * 8, 8) == 0) {
			i++;
			continue;
		}
		uint32_t j = i + 1;
		while (j < words && memcmp(base + j * 8, data + j * 8, 8) != 0)
			j++;
		uint32_t off = i * 8, n = (j - i) * 8;
		if (len + 4 + n > max)
			return UINT32_MAX;
		fl_put_le16(out + len, (uint16_t)off);
		fl_put_le16(out + len + 2, (uint16_t)n);
		memcpy(out + len + 4, data + off, n);
		len += 4 + n;
		i = j;
	}
	return len;
}

int mir_patch_apply(const uint8_t *base, const uint8_t *p, uint32_t len,
    uint8_t *out)
{
	uint32_t end = 0;	/* of the previous range */

	memmove(out, base, MIR_BLOCK);
	for (uint32_t pos = 0; pos < len;) {
		if (len - pos < 4)
			return FL_ERR(-FL_EPROTO);
		uint32_t off = fl_get_le16(p + pos);
		uint32_t n = fl_get_le16(p + pos + 2);
		pos += 4;
		if (n == 0 || off < end || off + n > MIR_BLOCK ||
		    n > len - pos)
			return FL_ERR(-FL_EPROTO);
		memcpy(out + off, p + pos, n);
		pos += n;
		end = off + n;
	}
	return 0;
}
