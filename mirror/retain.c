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
 *
 *   PARKING.  The fallback is the sender thread's: a source that is
 *   stopped and stays stopped (filerd's `mirror break` of the source,
 *   or a row left broken-off) has none, yet mir_source_stop keeps the
 *   acknowledged root and every root sent after it held so that a
 *   resync finds the common base.  With nothing to bound them, those
 *   holds kept every block freed since pending until `mirror delete`,
 *   across restarts (fsinfo records them), and a source that kept
 *   taking writes ran out of space.  mir_source_park does at once what
 *   the fallback does past its bound: every held root becomes
 *   mirror.base.<gen>, then every hold goes.  A resync offers snapshots
 *   among its roots, so the base is still found, and a source started
 *   again catches up from the snapshot as after a fallback.  All or
 *   nothing: if one root cannot become a snapshot, every hold stays.
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

/* Drop every reference to the hold on gen: the relationship's, and
 * the one mount gives each root fsinfo records as held. */
static void release_every_ref(wafl_vol_t *v, uint64_t gen)
{
	for (int k = 0; k < 64; k++) {
		uint64_t now[WAFL_FSI_HOLDS];
		size_t m = 0;
		bool still = false;
		wafl_release_root(v, gen);
		(void)wafl_held_roots(v, now, WAFL_FSI_HOLDS, &m);
		for (size_t j = 0; j < m && j < WAFL_FSI_HOLDS; j++)
			still |= now[j] == gen;
		if (!still)
			break;
	}
}

int mir_source_forget(wafl_vol_t *v)
{
	uint64_t gens[WAFL_FSI_HOLDS];
	size_t n = 0;
	int rc = wafl_held_roots(v, gens, WAFL_FSI_HOLDS, &n);

	for (size_t i = 0; rc == 0 && i < n && i < WAFL_FSI_HOLDS; i++)
		release_every_ref(v, gens[i]);
	if (rc == 0)
		rc = mir_base_drop_older(v, UINT64_MAX);
	return rc;
}

/*
 * *kept: snapshot mirror.base.<gen> has exactly the root of generation
 * gen that v holds (the pointer, not only the generation: a snapshot of
 * that name with another root keeps nothing the destination serves).
 * gen must still be held or in the ring.
 */
static int base_keeps_root(wafl_vol_t *v, uint64_t gen, bool *kept)
{
	uint8_t *fsi = malloc(WAFL_BLOCK_SIZE);
	struct wafl_snap_tree *s = calloc(WAFL_MAX_SNAPSHOTS, sizeof(*s));
	struct wafl_fsinfo f;
	char name[MIR_BASE_NAME_MAX];
	size_t n = 0;
	int rc = fsi == NULL || s == NULL ? -ENOMEM : 0;

	*kept = false;
	if (rc == 0)
		rc = wafl_root_of(v, gen, fsi);
	if (rc == 0)
		rc = wafl_fsinfo_decode(fsi, &f);
	if (rc == 0)
		rc = wafl_snap_trees_after(v, gen - 1, s, WAFL_MAX_SNAPSHOTS,
		    &n);
	mir_base_name(gen, name, sizeof(name));
	for (size_t i = 0; rc == 0 && i < n && i < WAFL_MAX_SNAPSHOTS; i++)
		*kept |= strcmp(s[i].name, name) == 0 && s[i].gen == gen &&
		    s[i].vbn == f.root.vbn && s[i].birth == f.root.birth &&
		    s[i].cksum == f.root.cksum;
	free(fsi);
	free(s);
	return rc;
}

int mir_source_park(wafl_vol_t *v, uint64_t *parked, uint64_t *newest)
{
	uint64_t gens[WAFL_FSI_HOLDS];
	char name[MIR_BASE_NAME_MAX];
	size_t n = 0;
	bool kept = false;
	int rc = wafl_held_roots(v, gens, WAFL_FSI_HOLDS, &n);

	uint64_t top = 0;

	if (parked != NULL)
		*parked = 0;
	if (newest != NULL)
		*newest = 0;
	if (rc == 0 && n > WAFL_FSI_HOLDS)
		rc = -EOVERFLOW;	/* more than fsinfo can record */
	/* Every root a snapshot first, every hold released after: a root
	 * no snapshot keeps stays held, and so do the others (M6). */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		mir_base_name(gens[i], name, sizeof(name));
		rc = wafl_snap_adopt_root(v, name, gens[i], NULL);
		if (rc == -EEXIST)
			rc = 0;		/* fine if it has this root: */
		if (rc == 0)
			rc = base_keeps_root(v, gens[i], &kept);
		if (rc == 0 && !kept)
			rc = -EEXIST;	/* that name, another root */
		if (rc != 0)
			fl_warn("mirror", "source stopped: held root %" PRIu64
			    " cannot become snapshot %s (%s): every held root "
			    "stays held, and every block freed since the "
			    "oldest of them stays pending", gens[i], name,
			    rc == -EEXIST ? "a snapshot of that name with "
			    "another root exists" : fl_strerror(rc));
	}
	if (rc != 0 || n == 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		release_every_ref(v, gens[i]);
		if (gens[i] > top)
			top = gens[i];
	}
	/* The hold list is recorded by a CP; until then a crash would
	 * restore the holds, which the next park finds as snapshots
	 * already and releases: a failed CP here changes nothing else. */
	rc = wafl_sync(v);
	if (rc != 0)
		fl_warn("mirror", "source stopped: consistency point after "
		    "releasing the held roots: %s (a restart may find them "
		    "held again)", fl_strerror(rc));
	fl_info("mirror", "source stopped: %zu held root(s), the newest %"
	    PRIu64 ", are snapshots mirror.base.<gen> now, and the holds "
	    "are released", n, top);
	if (parked != NULL)
		*parked = n;
	if (newest != NULL)
		*newest = top;
	return 0;
}
