/*
 * tests/mirror/test_mirror_retain.c: the source keeps the destination's
 * root across a source crash (holds recorded in fsinfo), and turns it
 * into snapshot mirror.base.<gen> when the destination stays away too
 * long (M6); both continue by birth generation, no baseline.  The bound
 * holds again when the destination comes back from a fallback and goes
 * before its catch-up is acknowledged, and while the relationship is
 * quiesced; any number of fallback snapshots are found and deleted.
 * A source stopped for good (broken off) has no fallback: parking its
 * held roots (mir_source_park) makes each a mirror.base snapshot with
 * that exact root and releases the holds, so the frees drain as the
 * volume goes on taking writes, across a restart too, and the
 * destination still catches up from the snapshot; a root no snapshot
 * can keep (its name taken by another root, the table full) stays held
 * with every other.
 */
#include <unistd.h>

#include "mirror/mir_impl.h"
#include "tests/mirror/tm.h"

static void churn(struct tl_fs *f, uint64_t ino, uint32_t len, int n,
    uint64_t seed)
{
	uint8_t *a = malloc(len);

	for (int i = 0; i < n; i++) {
		tl_fill_pattern(a, len, seed + (uint64_t)i);
		tl_fs_write(f, ino, 0, a, len);
		assert_int_equal(wafl_sync(f->v), 0);
	}
	free(a);
}

/* Source towards the running destination. */
static void source_again(struct tm_pair *p, uint64_t fallback_blocks,
    bool baseline)
{
	struct mir_source_opts o = { .key = p->key, .key_len = sizeof(p->key),
	    .host = "127.0.0.1", .port = p->port, .mode = MIR_SYNC,
	    .raid = p->src->raid, .allow_baseline = baseline, .retry_ms = 20,
	    .io_timeout_ms = 5000, .fallback_blocks = fallback_blocks };

	memcpy(o.rel_id, p->id, 16);
	assert_int_equal(mir_source_start(p->src->v, &o, &p->ms), 0);
}

/* A file of len bytes mirrored to the destination, which then goes away:
 * the generation it served, *ino the file. */
static uint64_t mirrored_then_away(struct tm_pair *p, uint32_t len,
    uint64_t fallback_blocks, uint64_t *ino)
{
	*ino = tl_fs_new_file(p->src);
	churn(p->src, *ino, len, 1, 1);
	tm_dest_start(p);
	source_again(p, fallback_blocks, true);
	tm_sync(p);
	uint64_t a = wafl_generation(mir_dest_volume(p->md));
	mir_dest_stop(p->md);
	p->md = NULL;
	return a;
}

/* Up to 5 s for the source to take its fallback snapshot. */
static void wait_fallback(struct tm_pair *p, struct mir_source_stats *st)
{
	for (int i = 0; i < 500; i++) {
		mir_source_stats(p->ms, st);
		if (st->fallbacks > 0)
			break;
		usleep(10000);
	}
}

static void test_source_crash_keeps_base(void **state)
{
	(void)state;
	struct tm_pair *p = tm_pair_new();
	const uint32_t len = 128 * 1024;

	uint64_t ino;
	/* The destination goes away; the source keeps writing, far past
	 * its CP ring, and dies without a clean stop of the volume. */
	uint64_t a = mirrored_then_away(p, len, 0, &ino);
	churn(p->src, ino, len, 12, 100);
	mir_source_stop(p->ms);
	p->ms = NULL;
	uint8_t b[4096];
	tl_fill_pattern(b, sizeof(b), 7);
	tl_fs_write(p->src, ino, len, b, sizeof(b));	/* never durable */
	wafl_abandon(p->src->v);
	p->src->v = NULL;
	tl_fs_reopen_raid(p->src);
	tl_fs_mount(p->src);
	churn(p->src, ino, len, 6, 300);
	/* Destination back at its root a; the source, baselines refused,
	 * catches up by birth generation. */
	tm_dest_start(p);
	assert_int_equal(wafl_generation(mir_dest_volume(p->md)), a);
	source_again(p, 0, false);
	tm_sync(p);
	struct mir_source_stats st;
	mir_source_stats(p->ms, &st);
	assert_true(st.transfers_walk >= 1);
	assert_true(st.last_walk_base >= a);
	/* a few dozen blocks: the file's 32 and the metadata above them */
	assert_true(st.blocks_sent_walk < 200);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	tm_check_clean(p->src->v, "source");
	tm_check_clean(mir_dest_volume(p->md), "destination");
	tm_pair_free(p);
}

static void test_fallback_snapshot(void **state)
{
	(void)state;
	struct tm_pair *p = tm_pair_new();
	const uint32_t len = 256 * 1024;
	char name[64];
	uint64_t id;

	uint64_t ino;
	uint64_t a = mirrored_then_away(p, len, 200, &ino);
	/* Every CP frees 64 blocks that stay pending behind root a. */
	churn(p->src, ino, len, 8, 100);
	struct mir_source_stats st;
	wait_fallback(p, &st);
	assert_int_equal(st.fallbacks, 1);
	assert_int_equal(st.base_snap_gen, a);
	snprintf(name, sizeof(name), "mirror.base.%llu", (unsigned long long)a);
	assert_int_equal(wafl_snap_lookup(p->src->v, name, &id), 0);
	uint64_t sg;
	assert_int_equal(wafl_snap_root_info(p->src->v, name, &sg, NULL), 0);
	assert_int_equal(sg, a);
	/* Released: pending frees are the CP ring's again (a few CPs'
	 * worth), no longer every block freed since a (20 x 64 here). */
	churn(p->src, ino, len, 12, 200);
	assert_true(wafl_pending_blocks(p->src->v) < 12 * 64);
	tm_check_clean(p->src->v, "source");
	/* The source restarts too: it finds the snapshot again. */
	mir_source_stop(p->ms);
	p->ms = NULL;
	tm_dest_start(p);
	assert_int_equal(wafl_generation(mir_dest_volume(p->md)), a);
	source_again(p, 200, false);
	tm_sync(p);
	mir_source_stats(p->ms, &st);
	assert_true(st.last_walk_base >= a);
	assert_true(st.blocks_sent_walk < 300);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	/* A newer acknowledged root: the snapshot went. */
	assert_int_equal(wafl_snap_lookup(p->src->v, name, &id), -ENOENT);
	mir_source_stats(p->ms, &st);
	assert_int_equal(st.base_snap_gen, 0);
	tm_sync(p);
	tm_check_clean(p->src->v, "source");
	tm_check_clean(mir_dest_volume(p->md), "destination");
	tm_pair_free(p);
}

/* The source restarts while the destination is away: which adopted root
 * the destination serves is unknown, so the fallback keeps each. */
static void test_fallback_after_restart(void **state)
{
	(void)state;
	struct tm_pair *p = tm_pair_new();
	const uint32_t len = 256 * 1024;
	struct mir_source_stats st;

	uint64_t ino;
	uint64_t a = mirrored_then_away(p, len, 200, &ino);
	uint16_t port = p->port;
	mir_source_stop(p->ms);
	source_again(p, 200, false);
	churn(p->src, ino, len, 8, 100);
	wait_fallback(p, &st);
	assert_int_equal(st.fallbacks, 1);
	char name[64];
	uint64_t id;
	snprintf(name, sizeof(name), "mirror.base.%llu", (unsigned long long)a);
	assert_int_equal(wafl_snap_lookup(p->src->v, name, &id), 0);
	churn(p->src, ino, len, 12, 200);
	assert_true(wafl_pending_blocks(p->src->v) < 12 * 64);
	/* The destination comes back where the source looks for it. */
	struct mir_dest_opts o = { .key = p->key, .key_len = sizeof(p->key),
	    .allow_baseline = false, .io_timeout_ms = 5000, .port = port };
	memcpy(o.rel_id, p->id, 16);
	assert_int_equal(mir_dest_start(p->dst->raid, &o, &p->md), 0);
	tm_sync(p);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	assert_int_equal(wafl_snap_lookup(p->src->v, name, &id), -ENOENT);
	tm_check_clean(p->src->v, "source");
	tm_check_clean(mir_dest_volume(p->md), "destination");
	tm_pair_free(p);
}

/*
 * The destination comes back from a fallback (it serves root a, kept
 * by snapshot mirror.base.a, no longer held), the catch-up walk to g
 * starts (g held) and the link goes again before g is acknowledged.
 * The frees pending behind g pass the bound once more: g becomes a
 * snapshot too and its hold goes, as the first time.  (The hold on g
 * used to stay for as long as the destination stayed away: the bound
 * held for one outage only, and every block freed since waited.)
 */
static void test_fallback_again_after_return(void **state)
{
	(void)state;
	struct tm_pair *p = tm_pair_new();
	const uint32_t len = 256 * 1024, big = 2u << 20;
	struct mir_source_stats st;
	char name[64];
	uint64_t id;

	uint64_t ino = tl_fs_new_file(p->src);
	churn(p->src, ino, len, 1, 1);
	tm_dest_start(p);
	uint16_t port = p->port;
	struct mir_source_opts so = { .key = p->key,
	    .key_len = sizeof(p->key), .host = "127.0.0.1", .port = port,
	    .mode = MIR_SYNC, .raid = p->src->raid, .allow_baseline = true,
	    .retry_ms = 20, .io_timeout_ms = 5000, .fallback_blocks = 200,
	    .throttle_bps = 512u << 10 };
	memcpy(so.rel_id, p->id, 16);
	assert_int_equal(mir_source_start(p->src->v, &so, &p->ms), 0);
	tm_sync(p);
	uint64_t a = wafl_generation(mir_dest_volume(p->md));
	mir_dest_stop(p->md);
	p->md = NULL;
	churn(p->src, ino, len, 8, 100);
	wait_fallback(p, &st);
	assert_int_equal(st.fallbacks, 1);
	assert_int_equal(st.base_snap_gen, a);
	/* 2 MiB more: the catch-up walk takes seconds at the throttle */
	uint64_t ino2 = tl_fs_new_file(p->src);
	uint8_t *buf = malloc(big);
	tl_fill_pattern(buf, big, 9);
	tl_fs_write(p->src, ino2, 0, buf, big);
	free(buf);
	assert_int_equal(wafl_sync(p->src->v), 0);
	/* The destination comes back at a; the walk starts; it goes. */
	struct mir_dest_opts o = { .key = p->key, .key_len = sizeof(p->key),
	    .allow_baseline = false, .io_timeout_ms = 5000, .port = port };
	memcpy(o.rel_id, p->id, 16);
	assert_int_equal(mir_dest_start(p->dst->raid, &o, &p->md), 0);
	for (int i = 0; i < 1000; i++) {
		mir_source_stats(p->ms, &st);
		if (st.walk_active && st.walk_bytes_done > 0)
			break;
		usleep(5000);
	}
	assert_true(st.walk_active);
	mir_dest_stop(p->md);
	p->md = NULL;
	for (int i = 0; i < 500; i++) {
		mir_source_stats(p->ms, &st);
		if (!st.walk_active)
			break;
		usleep(10000);
	}
	assert_false(st.walk_active);
	assert_int_equal(st.acked_gen, a);
	uint64_t held[WAFL_FSI_HOLDS];
	size_t nh = 0;
	assert_int_equal(wafl_held_roots(p->src->v, held, WAFL_FSI_HOLDS,
	    &nh), 0);
	assert_true(nh >= 1);		/* the walk's target */
	/* Away again, past the bound. */
	churn(p->src, ino, len, 8, 300);
	for (int i = 0; i < 500; i++) {
		mir_source_stats(p->ms, &st);
		if (st.fallbacks > 1)
			break;
		usleep(10000);
	}
	assert_int_equal(st.fallbacks, 2);
	assert_int_equal(wafl_held_roots(p->src->v, held, WAFL_FSI_HOLDS,
	    &nh), 0);
	assert_int_equal(nh, 0);
	churn(p->src, ino, len, 12, 400);
	assert_true(wafl_pending_blocks(p->src->v) < 12 * 64);
	snprintf(name, sizeof(name), "mirror.base.%llu", (unsigned long long)a);
	assert_int_equal(wafl_snap_lookup(p->src->v, name, &id), 0);
	tm_check_clean(p->src->v, "source");
	/* Back for good: caught up from a, and the fallback snapshots go
	 * with the acknowledgement. */
	assert_int_equal(mir_dest_start(p->dst->raid, &o, &p->md), 0);
	assert_int_equal(wafl_generation(mir_dest_volume(p->md)), a);
	tm_sync(p);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	assert_int_equal(wafl_snap_lookup(p->src->v, name, &id), -ENOENT);
	assert_int_equal(mir_base_snapshot(p->src->v, 0), 0);
	tm_check_clean(p->src->v, "source");
	tm_check_clean(mir_dest_volume(p->md), "destination");
	tm_pair_free(p);
}

/*
 * More fallback snapshots than the 8 the lookups used to read (each
 * outage the destination comes back from without an acknowledgement
 * past them adds up to one per held root): each is found by its
 * generation, and mirror delete (mir_source_forget) deletes them all.
 */
static void test_many_fallback_snapshots(void **state)
{
	(void)state;
	struct tm_pair *p = tm_pair_new();
	uint64_t gens[12];
	char name[64];
	size_t n = 0;

	uint64_t ino = tl_fs_new_file(p->src);
	for (int i = 0; i < 12; i++) {
		churn(p->src, ino, 8192, 1, 500 + (uint64_t)i);
		gens[i] = wafl_generation(p->src->v);
		mir_base_name(gens[i], name, sizeof(name));
		assert_int_equal(wafl_snap_adopt_root(p->src->v, name, gens[i],
		    NULL), 0);
	}
	for (int i = 0; i < 12; i++)
		assert_int_equal(mir_base_snapshot(p->src->v, gens[i]),
		    gens[i]);
	assert_int_equal(mir_base_drop_older(p->src->v, gens[10]), 0);
	assert_int_equal(mir_base_snapshot(p->src->v, gens[9]), 0);
	assert_int_equal(mir_base_snapshot(p->src->v, gens[10]), gens[10]);
	assert_int_equal(mir_source_forget(p->src->v), 0);
	assert_int_equal(mir_base_snapshot(p->src->v, 0), 0);
	assert_int_equal(wafl_snap_names(p->src->v, NULL, 0, &n), 0);
	assert_int_equal(n, 0);
	tm_check_clean(p->src->v, "source");
	tm_pair_free(p);
}

/*
 * A quiesced relationship keeps its link closed for as long as the
 * administrator likes: the frees pending behind the destination's root
 * are bounded as for any absence (they used to grow until resume), and
 * resume catches up from the fallback snapshot.
 */
static void test_fallback_while_quiesced(void **state)
{
	(void)state;
	struct tm_pair *p = tm_pair_new();
	const uint32_t len = 256 * 1024;
	struct mir_source_stats st;

	uint64_t ino = tl_fs_new_file(p->src);
	churn(p->src, ino, len, 1, 1);
	tm_dest_start(p);
	source_again(p, 200, true);
	tm_sync(p);
	uint64_t a = wafl_generation(mir_dest_volume(p->md));
	mir_source_quiesce(p->ms);
	for (int i = 0; i < 500; i++) {
		mir_source_stats(p->ms, &st);
		if (st.state == MIR_QUIESCED)
			break;
		usleep(10000);
	}
	assert_int_equal(st.state, MIR_QUIESCED);
	churn(p->src, ino, len, 8, 100);
	wait_fallback(p, &st);
	assert_int_equal(st.fallbacks, 1);
	assert_int_equal(st.base_snap_gen, a);
	churn(p->src, ino, len, 12, 200);
	assert_true(wafl_pending_blocks(p->src->v) < 12 * 64);
	mir_source_stats(p->ms, &st);
	assert_int_equal(st.state, MIR_QUIESCED);
	mir_source_resume(p->ms);
	tm_sync(p);
	mir_source_stats(p->ms, &st);
	assert_true(st.last_walk_base >= a);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	assert_int_equal(mir_base_snapshot(p->src->v, 0), 0);
	tm_check_clean(p->src->v, "source");
	tm_check_clean(mir_dest_volume(p->md), "destination");
	tm_pair_free(p);
}

/* Roots held on v now. */
static size_t nheld(wafl_vol_t *v)
{
	uint64_t gens[WAFL_FSI_HOLDS];
	size_t n = 0;

	assert_int_equal(wafl_held_roots(v, gens, WAFL_FSI_HOLDS, &n), 0);
	return n;
}

/* Root pointer of generation gen as v retains it (ring or hold). */
static struct wafl_bp root_ptr(wafl_vol_t *v, uint64_t gen)
{
	uint8_t fsi[WAFL_BLOCK_SIZE];
	struct wafl_fsinfo f;

	assert_int_equal(wafl_root_of(v, gen, fsi), 0);
	assert_int_equal(wafl_fsinfo_decode(fsi, &f), 0);
	return f.root;
}

/* Snapshot mirror.base.<gen> of v has root r exactly. */
static void base_is(wafl_vol_t *v, uint64_t gen, const struct wafl_bp *r)
{
	struct wafl_snap_tree *st = calloc(WAFL_MAX_SNAPSHOTS, sizeof(*st));
	char name[64];
	size_t n = 0;
	bool found = false;

	mir_base_name(gen, name, sizeof(name));
	assert_int_equal(wafl_snap_trees_after(v, gen - 1, st,
	    WAFL_MAX_SNAPSHOTS, &n), 0);
	for (size_t i = 0; i < n && i < WAFL_MAX_SNAPSHOTS; i++) {
		if (strcmp(st[i].name, name) != 0)
			continue;
		found = true;
		assert_int_equal(st[i].gen, gen);
		assert_int_equal(st[i].vbn, r->vbn);
		assert_int_equal(st[i].birth, r->birth);
		assert_int_equal(st[i].cksum, r->cksum);
	}
	free(st);
	assert_true(found);
}

/*
 * `mirror break` of the source: it stops, keeping root a (the
 * destination's) held for a resync, and no fallback runs any more.
 * Writes on the source then leave every freed block pending behind a
 * (what a broken-off source did until it ran out of space).  Parked,
 * a becomes mirror.base.<a>, its exact root, no hold is left, and the
 * frees drain at the next CPs, also after a remount; the destination
 * that comes back is caught up from the snapshot, which goes with the
 * acknowledgement past it.
 */
static void test_park_stopped_source(void **state)
{
	(void)state;
	struct tm_pair *p = tm_pair_new();
	const uint32_t len = 256 * 1024;
	struct mir_source_stats st;
	char name[64];
	uint64_t ino, id, parked = 0;

	uint64_t a = mirrored_then_away(p, len, 0, &ino);
	uint16_t port = p->port;
	mir_source_stop(p->ms);
	p->ms = NULL;
	wafl_vol_t *v = p->src->v;
	assert_true(nheld(v) >= 1);
	struct wafl_bp ra = root_ptr(v, a);
	/* Every CP frees 64 blocks, and all of them wait behind a. */
	churn(p->src, ino, len, 12, 100);
	uint64_t held_back = wafl_pending_blocks_unpinned(v);
	struct wafl_fsstat fs0, fs1;
	assert_int_equal(wafl_statfs(v, &fs0), 0);
	assert_true(held_back >= 12 * 64);

	uint64_t gens[WAFL_FSI_HOLDS], top = 0, newest = 0;
	size_t ng = 0;
	assert_int_equal(wafl_held_roots(v, gens, WAFL_FSI_HOLDS, &ng), 0);
	for (size_t i = 0; i < ng; i++)
		top = gens[i] > top ? gens[i] : top;
	assert_int_equal(mir_source_park(v, &parked, &newest), 0);
	assert_int_equal(parked, ng);
	assert_int_equal(newest, top);
	assert_int_equal(nheld(v), 0);
	base_is(v, a, &ra);
	churn(p->src, ino, len, 12, 200);
	uint64_t after = wafl_pending_blocks_unpinned(v);
	assert_int_equal(wafl_statfs(v, &fs1), 0);
	fprintf(stderr, "pending behind the stopped source's holds: %llu "
	    "blocks after 12 CPs; parked, 12 CPs later: %llu (free %llu -> "
	    "%llu KiB)\n", (unsigned long long)held_back,
	    (unsigned long long)after, (unsigned long long)(fs0.fbytes >> 10),
	    (unsigned long long)(fs1.fbytes >> 10));
	/* the CP ring's frees alone: a few CPs' worth */
	assert_true(after < 8 * 64);
	assert_true(fs1.fbytes > fs0.fbytes);
	/* nothing held: a second park has nothing to do */
	assert_int_equal(mir_source_park(v, &parked, &newest), 0);
	assert_int_equal(parked, 0);
	assert_int_equal(newest, 0);
	tm_check_clean(v, "source");
	/* The release is durable: a remount restores no hold. */
	tl_fs_remount(p->src);
	v = p->src->v;
	assert_int_equal(nheld(v), 0);
	churn(p->src, ino, len, 12, 300);
	assert_true(wafl_pending_blocks_unpinned(v) < 8 * 64);
	/* The destination comes back at a, retained by the snapshot (M6). */
	struct mir_dest_opts o = { .key = p->key, .key_len = sizeof(p->key),
	    .allow_baseline = false, .io_timeout_ms = 5000, .port = port };
	memcpy(o.rel_id, p->id, 16);
	assert_int_equal(mir_dest_start(p->dst->raid, &o, &p->md), 0);
	assert_int_equal(wafl_generation(mir_dest_volume(p->md)), a);
	source_again(p, 0, false);
	tm_sync(p);
	mir_source_stats(p->ms, &st);
	assert_true(st.last_walk_base >= a);
	assert_true(st.blocks_sent_walk < 300);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	mir_base_name(a, name, sizeof(name));
	assert_int_equal(wafl_snap_lookup(p->src->v, name, &id), -ENOENT);
	tm_check_clean(p->src->v, "source");
	tm_check_clean(mir_dest_volume(p->md), "destination");
	tm_pair_free(p);
}

/*
 * A held root that no snapshot can keep stays held, and so does every
 * other: its name taken by a snapshot of another root, or the snapshot
 * table full.  A mirror.base.<a> that has a's root already (a park cut
 * short, by a crash before the CP that records the released holds) is
 * taken as it is.
 */
static void test_park_keeps_what_it_cannot_snapshot(void **state)
{
	(void)state;
	struct tm_pair *p = tm_pair_new();
	char name[64];
	uint64_t ino, id;
	size_t have = 0;

	uint64_t a = mirrored_then_away(p, 65536, 0, &ino);
	mir_source_stop(p->ms);
	p->ms = NULL;
	wafl_vol_t *v = p->src->v;
	size_t h = nheld(v);
	assert_true(h >= 1);
	churn(p->src, ino, 65536, 6, 100);
	/* the name taken by a snapshot of another root */
	mir_base_name(a, name, sizeof(name));
	assert_int_equal(wafl_snap_create(v, name, NULL), 0);
	assert_int_equal(mir_source_park(v, NULL, NULL), -EEXIST);
	assert_int_equal(nheld(v), h);
	assert_int_equal(wafl_snap_delete(v, name), 0);
	/* the table full */
	assert_int_equal(wafl_snap_names(v, NULL, 0, &have), 0);
	for (size_t i = have; i < WAFL_MAX_SNAPSHOTS; i++) {
		char nm[32];
		snprintf(nm, sizeof(nm), "fill.%zu", i);
		assert_int_equal(wafl_snap_create(v, nm, NULL), 0);
	}
	assert_int_equal(mir_source_park(v, NULL, NULL), -ENOSPC);
	assert_int_equal(nheld(v), h);
	assert_int_equal(wafl_snap_lookup(v, name, &id), -ENOENT);
	/* room for every held root, a's snapshot already there */
	for (size_t i = have; i < have + h; i++) {
		char nm[32];
		snprintf(nm, sizeof(nm), "fill.%zu", i);
		assert_int_equal(wafl_snap_delete(v, nm), 0);
	}
	struct wafl_bp ra = root_ptr(v, a);
	assert_int_equal(wafl_snap_adopt_root(v, name, a, NULL), 0);
	uint64_t parked = 0;
	assert_int_equal(mir_source_park(v, &parked, NULL), 0);
	assert_int_equal(parked, h);
	assert_int_equal(nheld(v), 0);
	base_is(v, a, &ra);
	tl_fs_remount(p->src);
	assert_int_equal(nheld(p->src->v), 0);
	base_is(p->src->v, a, &ra);
	tm_check_clean(p->src->v, "source");
	tm_pair_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_source_crash_keeps_base),
		cmocka_unit_test(test_fallback_snapshot),
		cmocka_unit_test(test_fallback_after_restart),
		cmocka_unit_test(test_fallback_again_after_return),
		cmocka_unit_test(test_many_fallback_snapshots),
		cmocka_unit_test(test_fallback_while_quiesced),
		cmocka_unit_test(test_park_stopped_source),
		cmocka_unit_test(test_park_keeps_what_it_cannot_snapshot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
