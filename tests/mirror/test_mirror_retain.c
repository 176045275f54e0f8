/*
 * tests/mirror/test_mirror_retain.c: the source keeps the destination's
 * root across a source crash (holds recorded in fsinfo), and turns it
 * into snapshot mirror.base.<gen> when the destination stays away too
 * long (M6); both continue by birth generation, no baseline.
 */
#include <unistd.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_source_crash_keeps_base),
		cmocka_unit_test(test_fallback_snapshot),
		cmocka_unit_test(test_fallback_after_restart),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
