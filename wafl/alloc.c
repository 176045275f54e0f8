/*
 * wafl/alloc.c: block allocation and the block reuse rule (W3).
 *
 * A VBN may be allocated only if
 *   - its bit in the active bitmap (inode 1) is clear,
 *   - its bit in the summary map (inode 4, OR of every snapshot) is clear,
 *   - no retained root can reach it: the last WAFL_RING_K CP roots and a
 *     mirror's held roots (vol->holds).
 * A block freed by CP n is referenced by root n-1, so it stays pending
 * until n <= the oldest generation of any retained root; the
 * pending list (tagged n) is what alloc_release walks.
 *
 * The allocator keeps, per bitmap block ("area", 32768 VBNs), an in-memory
 * map of VBNs that are not allocatable: loaded on first use as
 *   active | summary | bitmap and summary map of every ring root, every
 *   held root and every pinned one (a retained root keeps its snapshots,
 *   even one the active tree has deleted since)
 * so mount never scans the volume (W-mount), and a block held by an older
 * root when the area is loaded is put on the pending list tagged with the
 * durable generation (conservative: it is released K-1 CPs later).
 *
 * Placement: a cursor moves forward through the VBN space; at a stripe
 * boundary it looks for a stripe whose blocks are all free, so a CP that
 * allocates consecutively writes whole stripes (raid R3).
 *
 * Only the CP thread calls alloc_block / alloc_free_block / alloc_release,
 * inside the freeze (cp_lock exclusive).
 */
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "wafl/wafl_impl.h"

#define AREA_BITS	WAFL_BITS_PER_BLOCK

static inline bool bit_get(const uint8_t *m, uint32_t i)
{
	return (m[i >> 3] >> (i & 7)) & 1;
}

static inline void bit_put(uint8_t *m, uint32_t i, bool on)
{
	if (on)
		m[i >> 3] |= (uint8_t)(1u << (i & 7));
	else
		m[i >> 3] &= (uint8_t)~(1u << (i & 7));
}

int bitmap_test(struct wnode *bm, uint64_t vbn, bool *set)
{
	uint8_t blk[WAFL_BLOCK_SIZE];
	int rc = wn_read_block(bm, vbn / AREA_BITS, blk);

	if (rc == 0)
		*set = bit_get(blk, (uint32_t)(vbn % AREA_BITS));
	return rc;
}

int bitmap_set(struct wnode *bm, uint64_t vbn, bool on)
{
	uint8_t *blk;
	int rc = wn_modify_block(bm, vbn / AREA_BITS, &blk);

	if (rc == 0)
		bit_put(blk, (uint32_t)(vbn % AREA_BITS), on);
	return rc;
}

int alloc_init(struct wafl_vol *v)
{
	v->nareas = FL_DIV_ROUND_UP_U64(v->nvbns, AREA_BITS);
	v->areas = calloc(v->nareas, sizeof(*v->areas));
	if (v->areas == NULL)
		return -ENOMEM;
	v->alloc_cursor = WAFL_FSINFO_SLOTS;
	return 0;
}

void alloc_reset_areas(struct wafl_vol *v)
{
	for (uint64_t a = 0; a < v->nareas; a++) {
		free(v->areas[a].unavail);
		v->areas[a].unavail = NULL;
	}
}

void alloc_fini(struct wafl_vol *v)
{
	if (v->areas != NULL)
		alloc_reset_areas(v);
	free(v->areas);
	v->areas = NULL;
	free(v->pending);
	v->pending = NULL;
	v->npending = v->cap_pending = 0;
}

int alloc_pending_add(struct wafl_vol *v, uint64_t vbn, uint64_t gen)
{
	if (v->npending == v->cap_pending) {
		uint64_t cap = v->cap_pending ? v->cap_pending * 2 : 1024;
		struct wafl_pending *n = realloc(v->pending, cap * sizeof(*n));
		if (n == NULL)
			return -ENOMEM;
		v->pending = n;
		v->cap_pending = cap;
	}
	v->pending[v->npending++] = (struct wafl_pending){ vbn, gen };
	return 0;
}

/*
 * OR into map block `a` of what the tree under root keeps: its active
 * bitmap and its summary map, for the root's snapshots are retained with
 * it.  A snapshot deleted since (the summary map of the active tree no
 * longer has it) is still one of the root's until the root is released.
 */
static int or_root_bitmap(struct wafl_vol *v, const struct wafl_bp *root,
    uint64_t a, uint8_t *map, uint8_t *tmp)
{
	struct wafl_dinode bm, sm;
	struct wafl_rootblk rb;
	int rc = tree_root_bitmap(v, root, &bm, &rb);

	if (rc == 0)
		rc = tree_read_block(v, &bm, a, tmp);
	if (rc == 0)
		for (uint32_t i = 0; i < WAFL_BLOCK_SIZE; i++)
			map[i] |= tmp[i];
	if (rc == 0)
		rc = tree_read_inode(v, &rb.inodefile, WAFL_INO_SUMMARY, &sm);
	if (rc == 0)
		rc = tree_read_block(v, &sm, a, tmp);
	if (rc == 0)
		for (uint32_t i = 0; i < WAFL_BLOCK_SIZE; i++)
			map[i] |= tmp[i];
	return rc;
}

/* Is gen a ring root or a held one (whose maps area_load reads anyway)? */
static bool ring_or_held(const struct wafl_vol *v, uint64_t gen)
{
	for (uint32_t r = 0; r < v->fsi.ring_len; r++)
		if (v->fsi.ring[r].gen == gen)
			return true;
	for (unsigned h = 0; h < WAFL_MAX_HOLDS; h++)
		if (v->holds[h].gen == gen)
			return true;
	return false;
}

static int area_load(struct wafl_vol *v, uint64_t a)
{
	struct alloc_area *ar = &v->areas[a];
	uint8_t *map = calloc(1, WAFL_BLOCK_SIZE);
	uint8_t *act = malloc(WAFL_BLOCK_SIZE);
	uint8_t *tmp = malloc(WAFL_BLOCK_SIZE);
	int rc = -ENOMEM;

	if (map == NULL || act == NULL || tmp == NULL)
		goto out;
	rc = wn_read_block(v->bitmap_wn, a, act);
	if (rc != 0)
		goto out;
	rc = wn_read_block(v->summary_wn, a, tmp);
	if (rc != 0)
		goto out;
	for (uint32_t i = 0; i < WAFL_BLOCK_SIZE; i++)
		map[i] = act[i] | tmp[i];
	uint8_t *held = calloc(1, WAFL_BLOCK_SIZE);
	if (held == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t r = 0; r < v->fsi.ring_len && rc == 0; r++)
		rc = or_root_bitmap(v, &v->fsi.ring[r].root, a, held, tmp);
	for (unsigned h = 0; rc == 0 && h < WAFL_MAX_HOLDS; h++)
		if (v->holds[h].gen != 0)
			rc = or_root_bitmap(v, &v->holds[h].root, a, held, tmp);
	for (unsigned p = 0; rc == 0 && p < WAFL_MAX_PINS; p++)
		if (v->pins[p].gen != 0 && !ring_or_held(v, v->pins[p].gen))
			rc = or_root_bitmap(v, &v->pins[p].root, a, held, tmp);
	for (uint32_t i = 0; rc == 0 && i < AREA_BITS; i++) {
		if (bit_get(held, i) && !bit_get(map, i)) {
			rc = alloc_pending_add(v, a * AREA_BITS + i, v->durable_gen);
			bit_put(map, i, true);
		}
	}
	free(held);
	if (rc != 0)
		goto out;
	uint64_t base = a * AREA_BITS;
	for (uint32_t i = 0; i < AREA_BITS; i++) {
		uint64_t vbn = base + i;
		if (vbn < WAFL_FSINFO_SLOTS || vbn >= v->nvbns)
			bit_put(map, i, true);
	}
	ar->nfree = 0;
	for (uint32_t i = 0; i < AREA_BITS; i++)
		if (!bit_get(map, i))
			ar->nfree++;
	ar->unavail = map;
	map = NULL;
out:
	if (rc != 0)
		fl_err("wafl", "allocation area %llu: cannot load: %s",
		    (unsigned long long)a, fl_strerror(rc));
	free(map);
	free(act);
	free(tmp);
	return rc;
}

static int area_get(struct wafl_vol *v, uint64_t a, struct alloc_area **out)
{
	int rc = 0;

	if (v->areas[a].unavail == NULL)
		rc = area_load(v, a);
	*out = &v->areas[a];
	return rc;
}

/* Find a free VBN at or after `from` inside area a; UINT64_MAX if none.
 * With stripe, only the first block of an all-free stripe qualifies. */
static uint64_t area_find(struct wafl_vol *v, struct alloc_area *ar,
    uint64_t a, uint64_t from, uint32_t stripe)
{
	uint64_t base = a * AREA_BITS;
	uint32_t i = from > base ? (uint32_t)(from - base) : 0;

	if (stripe > 1) {
		i = (uint32_t)(((base + i + stripe - 1) / stripe) * stripe -
		    base);
		for (; i + stripe <= AREA_BITS; i += stripe) {
			uint32_t k = 0;
			while (k < stripe && !bit_get(ar->unavail, i + k))
				k++;
			if (k == stripe)
				return base + i;
		}
		return UINT64_MAX;
	}
	for (; i < AREA_BITS; i++) {
		if ((i & 7) == 0 && ar->unavail[i >> 3] == 0xff) {
			i += 7;
			continue;
		}
		if (!bit_get(ar->unavail, i))
			return base + i;
	}
	return UINT64_MAX;
}

int alloc_block(struct wafl_vol *v, uint64_t *vbn_out)
{
	uint32_t width = v->geo.stripe_width;
	uint64_t cur = v->alloc_cursor;
	struct alloc_area *ar;
	int rc;

	if (cur >= v->nvbns)
		cur = WAFL_FSINFO_SLOTS;
	/* Two passes over the volume: whole stripes first, then any block. */
	for (int pass = 0; pass < 2; pass++) {
		uint32_t want = (pass == 0 && width > 1 && cur % width == 0) ?
		    width : 1;
		if (pass == 0 && want == 1) {
			/* Mid-stripe: continue the current run if free. */
			rc = area_get(v, cur / AREA_BITS, &ar);
			if (rc != 0)
				return rc;
			if (!bit_get(ar->unavail, (uint32_t)(cur % AREA_BITS))) {
				*vbn_out = cur;
				goto found;
			}
			want = width;
			cur = ((cur + width - 1) / width) * width;
		}
		for (uint64_t n = 0; n <= v->nareas; n++) {
			uint64_t a = (cur / AREA_BITS + n) % v->nareas;
			rc = area_get(v, a, &ar);
			if (rc != 0)
				return rc;
			if (ar->nfree == 0)
				continue;
			uint64_t from = n == 0 ? cur : a * AREA_BITS;
			uint64_t f = area_find(v, ar, a, from, want);
			if (f != UINT64_MAX && f < v->nvbns) {
				*vbn_out = f;
				goto found;
			}
		}
		cur = WAFL_FSINFO_SLOTS;
	}
	fl_err("wafl", "no free block left for the CP");
	return FL_ERR(-ENOSPC);
found:
	ar = &v->areas[*vbn_out / AREA_BITS];
	bit_put(ar->unavail, (uint32_t)(*vbn_out % AREA_BITS), true);
	ar->nfree--;
	v->alloc_cursor = *vbn_out + 1;
	rc = bitmap_set(v->bitmap_wn, *vbn_out, true);
	if (rc == 0)
		v->blocks_used++;
	return rc;
}

int alloc_free_block(struct wafl_vol *v, uint64_t vbn, uint64_t gen)
{
	bool in_snap = false;
	int rc;

	if (vbn < WAFL_FSINFO_SLOTS || vbn >= v->nvbns)
		return FL_ERR(-FL_ECORRUPT);
	rc = bitmap_set(v->bitmap_wn, vbn, false);
	if (rc != 0)
		return rc;
	v->blocks_used--;
	rc = bitmap_test(v->summary_wn, vbn, &in_snap);
	if (rc != 0)
		return rc;
	if (in_snap)
		v->snap_only++;
	/* Still held by root gen-1 (and maybe a mirror): pending. */
	return alloc_pending_add(v, vbn, gen);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * A VBN can be on the list more than once (an entry from area_load and one
 * from a snapshot delete, or entries of two lives of the block): it is
 * released only when no entry of it is still held, so a stale entry of an
 * earlier life never frees a block a retained root uses now (W3).
 */
void alloc_release(struct wafl_vol *v, uint64_t safe_gen)
{
	uint64_t k = 0, nheld = 0;
	uint64_t *held = malloc((v->npending + 1) * sizeof(*held));

	if (held == NULL)
		return;		/* nothing released: safe */
	for (uint64_t i = 0; i < v->npending; i++)
		if (v->pending[i].gen > safe_gen)
			held[nheld++] = v->pending[i].vbn;
	if (nheld > 0)
		qsort(held, nheld, sizeof(*held), cmp_u64);
	for (uint64_t i = 0; i < v->npending; i++) {
		struct wafl_pending p = v->pending[i];
		if (p.gen > safe_gen) {
			v->pending[k++] = p;
			continue;
		}
		if (nheld > 0 && bsearch(&p.vbn, held, nheld, sizeof(*held),
		    cmp_u64) != NULL)
			continue;	/* a later life is still held */
		struct alloc_area *ar = &v->areas[p.vbn / AREA_BITS];
		if (ar->unavail == NULL)
			continue;
		uint32_t bit = (uint32_t)(p.vbn % AREA_BITS);
		bool act = true, snap = true;
		if (bitmap_test(v->bitmap_wn, p.vbn, &act) != 0 ||
		    bitmap_test(v->summary_wn, p.vbn, &snap) != 0)
			continue;	/* stays unavailable: safe */
		if (!act && !snap && bit_get(ar->unavail, bit)) {
			bit_put(ar->unavail, bit, false);
			ar->nfree++;
		}
	}
	v->npending = k;
	free(held);
}

uint64_t alloc_free_estimate(struct wafl_vol *v)
{
	uint64_t used = v->blocks_used + v->npending + v->snap_only +
	    WAFL_FSINFO_SLOTS;

	return used >= v->nvbns ? 0 : v->nvbns - used;
}

uint64_t wafl_pending_blocks(wafl_vol_t *v)
{
	pthread_rwlock_rdlock(&v->cp_lock);
	uint64_t n = v->npending;
	pthread_rwlock_unlock(&v->cp_lock);
	return n;
}

uint64_t pending_tagged(struct wafl_vol *v, uint64_t after, uint64_t upto,
    uint64_t enough)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < v->npending && n < enough; i++)
		if (v->pending[i].gen > after && v->pending[i].gen <= upto)
			n++;
	return n;
}

uint64_t wafl_pending_blocks_unpinned(wafl_vol_t *v)
{
	pthread_rwlock_rdlock(&v->cp_lock);
	/* A free tagged g leaves once g <= the oldest retained root
	 * (alloc_release): the ring and the holds keep those above. */
	uint64_t n = pending_tagged(v, retained_oldest_unpinned(v),
	    UINT64_MAX, UINT64_MAX);
	pthread_rwlock_unlock(&v->cp_lock);
	return n;
}
