/*
 * mirror/retain.c: how long the source keeps the destination's root.
 *
 * THEORY
 *   The destination's acknowledged root is held on the source (M1), and
 *   the hold is recorded in fsinfo so it survives a restart (wafl
 *   replica.c).  While the destination stays away, every block the
 *   active file system frees stays pending behind that hold (W3): the
 *   cost grows with the source's write traffic.  Past a bound
 *   (mir_source_opts.fallback_blocks) the held root becomes a named
 *   snapshot, `mirror.base.<gen>`, adopting that root exactly
 *   (wafl_snap_adopt_root: no block is written, the summary map gains the
 *   bitmap the root already carries), and the holds are released: the
 *   pending list drains, and the blocks the destination's root uses stay
 *   out of reach of the allocator as snapshot blocks do (DESIGN.md §4).
 *
 *   M6  The destination's served root is retained on the source by a hold
 *       or by the fallback snapshot `mirror.base.<gen>` whose root is that
 *       root exactly.  So a catch-up from a fallback base is as safe as
 *       one from a held root: the walk sends the blocks of the new root
 *       born after gen, and none of them lands on a block root gen uses.
 *
 *   The snapshot is deleted once the destination acknowledges a newer
 *   root (it is then one of the source's holds that retains what the
 *   destination serves).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "mirror/mir_impl.h"
#include "mirror/mirror.h"

#define BASE_PREFIX	"mirror.base."

void mir_base_name(uint64_t gen, char *buf, size_t len)
{
	snprintf(buf, len, BASE_PREFIX "%" PRIu64, gen);
}

/* Generations of the fallback snapshots on v (oldest first). */
static int base_snaps(wafl_vol_t *v, uint64_t *gens, size_t max, size_t *n)
{
	struct wafl_snapinfo *si = calloc(WAFL_MAX_SNAPSHOTS + 1, sizeof(*si));
	size_t cnt = 0, k = 0;
	int rc;

	if (si == NULL)
		return -ENOMEM;
	rc = wafl_snap_names(v, si, WAFL_MAX_SNAPSHOTS + 1, &cnt);
	for (size_t i = 0; rc == 0 && i < cnt && i <= WAFL_MAX_SNAPSHOTS; i++) {
		if (strncmp(si[i].name, BASE_PREFIX, strlen(BASE_PREFIX)) != 0)
			continue;
		char want[64];
		mir_base_name(si[i].gen, want, sizeof(want));
		if (strcmp(want, si[i].name) != 0)
			continue;
		if (k < max)
			gens[k] = si[i].gen;
		k++;
	}
	free(si);
	*n = k < max ? k : max;
	return rc;
}

/* Every fallback snapshot: one per root held when the destination
 * went away, at each outage it did not come back from acknowledged. */
#define BASE_MAX	(WAFL_MAX_SNAPSHOTS + 1)

uint64_t mir_base_snapshot(wafl_vol_t *v, uint64_t gen)
{
	uint64_t *gens = calloc(BASE_MAX, sizeof(*gens)), found = 0;
	size_t n = 0;

	if (gens == NULL || base_snaps(v, gens, BASE_MAX, &n) != 0)
		n = 0;
	for (size_t i = 0; i < n && found == 0; i++)
		if (gen == 0 ? true : gens[i] == gen)
			found = gens[i];
	free(gens);
	return found;
}

int mir_base_fallback(wafl_vol_t *v, uint64_t acked, uint64_t bound)
{
	char name[64];
	uint64_t pending = wafl_pending_blocks_unpinned(v);
	int rc;

	if (acked == 0 || pending <= bound)
		return 0;
	mir_base_name(acked, name, sizeof(name));
	rc = wafl_snap_adopt_root(v, name, acked, NULL);
	if (rc == -EEXIST)
		rc = 0;
	if (rc != 0) {
		fl_warn("mirror", "source: fallback snapshot %s: %s", name,
		    fl_strerror(rc));
		return rc;
	}
	fl_warn("mirror", "source: %" PRIu64 " blocks pending behind the "
	    "destination's root %" PRIu64 " (bound %" PRIu64 "): it is "
	    "snapshot %s now, and the hold is released", pending, acked,
	    bound, name);
	return 1;
}

int mir_base_drop_older(wafl_vol_t *v, uint64_t acked)
{
	uint64_t *gens = calloc(BASE_MAX, sizeof(*gens));
	size_t n = 0;
	int rc = gens == NULL ? -ENOMEM : base_snaps(v, gens, BASE_MAX, &n);

	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (gens[i] >= acked)
			continue;
		char name[64];
		mir_base_name(gens[i], name, sizeof(name));
		rc = wafl_snap_delete(v, name);
		if (rc == 0)
			fl_info("mirror", "source: destination acknowledged "
			    "%" PRIu64 ": fallback snapshot %s deleted", acked,
			    name);
	}
	free(gens);
	return rc;
}

int mir_source_forget(wafl_vol_t *v)
{
	uint64_t gens[WAFL_FSI_HOLDS];
	size_t n = 0;
	int rc = wafl_held_roots(v, gens, WAFL_FSI_HOLDS, &n);

	for (size_t i = 0; rc == 0 && i < n && i < WAFL_FSI_HOLDS; i++) {
		/* every reference: the relationship's and a restored one */
		for (int k = 0; k < 64; k++) {
			uint64_t now[WAFL_FSI_HOLDS];
			size_t m = 0;
			bool still = false;
			wafl_release_root(v, gens[i]);
			(void)wafl_held_roots(v, now, WAFL_FSI_HOLDS, &m);
			for (size_t j = 0; j < m && j < WAFL_FSI_HOLDS; j++)
				still |= now[j] == gens[i];
			if (!still)
				break;
		}
	}
	if (rc == 0)
		rc = mir_base_drop_older(v, UINT64_MAX);
	return rc;
}
