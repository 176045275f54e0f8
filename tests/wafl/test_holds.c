/*
 * tests/wafl/test_holds.c: held roots recorded in fsinfo (they survive an
 * unmount and a crash, W3 keeps their blocks) and snapshots that adopt a
 * retained root (wafl_snap_adopt_root).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/lib/tl_log.h"
#include "tests/lib/tl_wafl.h"
#include "wafl/ondisk.h"
#include "wafl/wafl.h"
#include "wafl/wafl_impl.h"

static int count_walk(void *arg, uint64_t vbn, uint64_t birth,
    uint32_t cksum, const void *data,
    unsigned flags)
{
	(void)vbn;
	(void)birth;
	(void)data;
	(*(uint64_t *)arg)++;
	return 0;
}

static bool is_held(wafl_vol_t *v, uint64_t gen)
{
	uint64_t g[16];
	size_t n = 0;

	assert_int_equal(wafl_held_roots(v, g, 16, &n), 0);
	for (size_t i = 0; i < n && i < 16; i++)
		if (g[i] == gen)
			return true;
	return false;
}

static void check_clean(struct tl_fs *f)
{
	struct wafl_check_result r;

	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(wafl_check(f->v, &r), 0);
	if (r.errors != 0)
		fail_msg("check: %s", r.first_error);
}

/* Rewrite the whole file n times, one CP each. */
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

static void test_hold_survives_remount(void **state)
{
	(void)state;
	struct tl_fs *f = tl_fs_create(4, 1, 4096, false);
	uint8_t a[65536], r[65536];

	uint64_t ino = tl_fs_new_file(f);
	tl_fill_pattern(a, sizeof(a), 7);
	tl_fs_write(f, ino, 0, a, sizeof(a));
	assert_int_equal(wafl_sync(f->v), 0);
	uint64_t h = wafl_generation(f->v);
	assert_int_equal(wafl_hold_root(f->v, h), 0);
	churn(f, ino, sizeof(a), 8, 100);	/* h leaves the ring */
	tl_fs_remount(f);
	assert_true(is_held(f->v, h));
	/* Many more CPs: without the restored hold h's blocks would be
	 * reused within WAFL_RING_K CPs. */
	churn(f, ino, sizeof(a), 30, 200);
	uint64_t n = 0;
	assert_int_equal(wafl_birth_walk(f->v, h, 0, count_walk, &n), 0);
	assert_true(n > 16);
	check_clean(f);
	/* A snapshot adopting h reads h's data. */
	uint64_t id;
	assert_int_equal(wafl_snap_adopt_root(f->v, "base", h, &id), 0);
	wafl_release_root(f->v, h);
	assert_false(is_held(f->v, h));
	churn(f, ino, sizeof(a), 10, 300);
	struct wafl_obj root, fo;
	struct wafl_cred cr = { 0 };
	uint32_t got;
	bool eof;
	assert_int_equal(wafl_snap_root(f->v, id, &root), 0);
	assert_int_equal(wafl_lookup(f->v, &cr, &root, "tl-file-1", &fo, NULL,
	    NULL), 0);
	assert_int_equal(wafl_read(f->v, &cr, &fo, 0, sizeof(r), r, &got,
	    &eof, NULL), 0);
	assert_int_equal(got, sizeof(r));
	assert_memory_equal(r, a, sizeof(a));
	uint64_t sg;
	uint32_t ck;
	assert_int_equal(wafl_snap_root_info(f->v, "base", &sg, &ck), 0);
	assert_int_equal(sg, h);
	check_clean(f);
	/* Released holds are gone after a remount too. */
	tl_fs_remount(f);
	assert_false(is_held(f->v, h));
	check_clean(f);
	assert_int_equal(wafl_snap_delete(f->v, "base"), 0);
	check_clean(f);
	tl_fs_destroy(f);
}

/*
 * A hold taken, or released, with nothing else written before an unmount:
 * the unmount's CP still records it (a CP with no dirty data is otherwise
 * skipped, and the hold, or the release, would be lost).
 */
static void test_hold_recorded_by_unmount(void **state)
{
	(void)state;
	struct tl_fs *f = tl_fs_create(4, 1, 4096, false);

	uint64_t ino = tl_fs_new_file(f);
	churn(f, ino, 65536, 1, 1);
	uint64_t h = wafl_generation(f->v);
	assert_int_equal(wafl_hold_root(f->v, h), 0);
	tl_fs_remount(f);
	assert_true(is_held(f->v, h));
	wafl_release_root(f->v, h);
	tl_fs_remount(f);
	assert_false(is_held(f->v, h));
	check_clean(f);
	tl_fs_destroy(f);
}

static void test_adopt_releases_pending(void **state)
{
	(void)state;
	struct tl_fs *f = tl_fs_create(4, 1, 4096, false);
	const uint32_t len = 256 * 1024;

	uint64_t ino = tl_fs_new_file(f);
	churn(f, ino, len, 1, 1);
	uint64_t h = wafl_generation(f->v);
	assert_int_equal(wafl_hold_root(f->v, h), 0);
	churn(f, ino, len, 12, 10);
	uint64_t before = wafl_pending_blocks(f->v);
	assert_true(before >= len / 4096);
	assert_int_equal(wafl_hold_root(f->v, 1), -ENOENT);
	assert_int_equal(wafl_snap_adopt_root(f->v, "mirror.base.x", h,
	    NULL), 0);
	assert_int_equal(wafl_snap_adopt_root(f->v, "mirror.base.x", h,
	    NULL), -EEXIST);
	wafl_release_root(f->v, h);
	churn(f, ino, len, 6, 40);
	uint64_t after = wafl_pending_blocks(f->v);
	assert_true(after < before);
	check_clean(f);
	tl_fs_destroy(f);
}

/* Two names adopt one root, the first is deleted, a third adopts it: the
 * third gets an id nobody has (W9: ids are unique in the table). */
static void test_adopt_ids_stay_unique(void **state)
{
	(void)state;
	struct tl_fs *f = tl_fs_create(4, 1, 4096, false);
	uint64_t a, b, c;

	uint64_t ino = tl_fs_new_file(f);
	churn(f, ino, 65536, 1, 1);
	uint64_t h = wafl_generation(f->v);
	assert_int_equal(wafl_hold_root(f->v, h), 0);
	assert_int_equal(wafl_snap_adopt_root(f->v, "a", h, &a), 0);
	assert_int_equal(wafl_snap_adopt_root(f->v, "b", h, &b), 0);
	assert_int_not_equal(a, b);
	assert_int_equal(wafl_snap_delete(f->v, "a"), 0);
	assert_int_equal(wafl_snap_adopt_root(f->v, "c", h, &c), 0);
	assert_int_not_equal(c, b);
	wafl_release_root(f->v, h);
	check_clean(f);
	tl_fs_destroy(f);
}

/* A released hold stays kept until the fsinfo that drops it is durable: a
 * crash before then mounts the fsinfo that still records it (W3). */
static void test_release_kept_until_durable(void **state)
{
	(void)state;
	struct tl_fs *f = tl_fs_create(4, 1, 4096, false);
	struct wafl_check_result r;

	uint64_t ino = tl_fs_new_file(f);
	churn(f, ino, 65536, 1, 1);
	uint64_t h = wafl_generation(f->v);
	assert_int_equal(wafl_hold_root(f->v, h), 0);
	churn(f, ino, 65536, 8, 10);	/* h leaves the ring, recorded */
	wafl_release_root(f->v, h);
	assert_false(is_held(f->v, h));
	/* No CP yet: the durable fsinfo still records h. */
	assert_int_equal(wafl_check(f->v, &r), 0);
	if (r.errors != 0)
		fail_msg("check: %s", r.first_error);
	/* Released: nobody walks or holds it again. */
	uint64_t n = 0;
	assert_int_equal(wafl_birth_walk(f->v, h, 0, count_walk, &n),
	    -ENOENT);
	assert_int_equal(wafl_hold_root(f->v, h), -ENOENT);
	/* After the next CP it is gone, and so are its blocks. */
	churn(f, ino, 65536, 6, 30);
	check_clean(f);
	tl_fs_remount(f);
	assert_false(is_held(f->v, h));
	check_clean(f);
	tl_fs_destroy(f);
}

/*
 * Every hold slot taken by released holds (their slots wait for a durable
 * fsinfo that no longer records them), and no CP coming: a new hold still
 * succeeds (a CP frees the slots), as a mirror source holding its next
 * root right after an acknowledgement released the others needs.
 */
static void test_released_slots_are_freed(void **state)
{
	(void)state;
	struct tl_fs *f = tl_fs_create(4, 1, 4096, false);
	uint64_t gens[WAFL_MAX_HOLDS];

	uint64_t ino = tl_fs_new_file(f);
	for (unsigned i = 0; i < WAFL_MAX_HOLDS; i++) {
		churn(f, ino, 8192, 1, 50 + i);
		gens[i] = wafl_generation(f->v);
		assert_int_equal(wafl_hold_root(f->v, gens[i]), 0);
	}
	churn(f, ino, 8192, 1, 90);
	uint64_t g = wafl_generation(f->v);
	for (unsigned i = 0; i < WAFL_MAX_HOLDS; i++)
		wafl_release_root(f->v, gens[i]);
	assert_int_equal(wafl_hold_root(f->v, g), 0);
	assert_true(is_held(f->v, g));
	for (unsigned i = 0; i < WAFL_MAX_HOLDS; i++)
		assert_false(is_held(f->v, gens[i]));
	wafl_release_root(f->v, g);
	check_clean(f);
	tl_fs_destroy(f);
}

struct writer {
	struct tl_fs *f;
	uint64_t ino;
	atomic_int stop;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint8_t a[32768];

	for (uint64_t i = 0; !atomic_load(&w->stop); i++) {
		tl_fill_pattern(a, sizeof(a), 1000 + i);
		tl_fs_write(w->f, w->ino, (i % 4) * sizeof(a), a, sizeof(a));
		if (wafl_sync(w->f->v) != 0)
			break;
	}
	return NULL;
}

static void test_hold_survives_crash(void **state)
{
	(void)state;
	struct tl_fs *f = tl_fs_create(4, 1, 4096, true);
	uint8_t a[65536];

	f->mo.crash_sim = true;
	tl_fs_remount(f);
	uint64_t ino = tl_fs_new_file(f);
	tl_fill_pattern(a, sizeof(a), 3);
	tl_fs_write(f, ino, 0, a, sizeof(a));
	assert_int_equal(wafl_sync(f->v), 0);
	uint64_t h = wafl_generation(f->v);
	assert_int_equal(wafl_hold_root(f->v, h), 0);
	churn(f, ino, sizeof(a), 6, 50);
	/* Power cut while CPs run. */
	struct writer w = { .f = f, .ino = ino };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
	usleep(30000);
	atomic_store(&w.stop, 1);
	assert_int_equal(wafl_crash(f->v, 0x5eed), 0);
	pthread_join(th, NULL);
	wafl_abandon(f->v);
	f->v = NULL;
	tl_fs_reopen_raid(f);
	tl_fs_mount(f);
	assert_true(is_held(f->v, h));
	churn(f, ino, sizeof(a), 20, 500);
	uint64_t n = 0;
	assert_int_equal(wafl_birth_walk(f->v, h, 0, count_walk, &n), 0);
	assert_true(n > 16);
	check_clean(f);
	wafl_release_root(f->v, h);
	churn(f, ino, sizeof(a), 6, 900);
	check_clean(f);
	tl_fs_destroy(f);
}

/* Roll an unmounted volume back to a held root: a replica of it. */
static void test_rollback_replica(void **state)
{
	(void)state;
	struct tl_fs *f = tl_fs_create(4, 1, 4096, false);
	uint8_t a[65536], r[65536];

	uint64_t ino = tl_fs_new_file(f);
	tl_fill_pattern(a, sizeof(a), 77);
	tl_fs_write(f, ino, 0, a, sizeof(a));
	assert_int_equal(wafl_sync(f->v), 0);
	uint64_t h = wafl_generation(f->v);
	uint8_t fsi[4096];
	assert_int_equal(wafl_hold_root(f->v, h), 0);
	assert_int_equal(wafl_root_of(f->v, h, fsi), 0);
	churn(f, ino, sizeof(a), 7, 700);
	/* the newest root in h's slot: refused, one more CP, accepted */
	if (wafl_generation(f->v) % 2 != h % 2)
		churn(f, ino, sizeof(a), 1, 800);
	assert_int_equal(wafl_unmount(f->v), 0);
	f->v = NULL;
	struct wafl_bp root;
	assert_int_equal(wafl_bp_decode(fsi + 72, &root), 0);
	assert_int_equal(wafl_rollback_replica(f->raid, h, &root), -EAGAIN);
	tl_fs_mount(f);
	churn(f, ino, sizeof(a), 1, 900);
	assert_int_equal(wafl_unmount(f->v), 0);
	f->v = NULL;
	assert_int_equal(wafl_rollback_replica(f->raid, h, &root), 0);
	/* again: nothing to do */
	assert_int_equal(wafl_rollback_replica(f->raid, h, &root), 0);
	struct wafl_mount_opts mo = { .readonly = true };
	assert_int_equal(wafl_mount(f->raid, &mo, &f->v), 0);
	assert_int_equal(wafl_generation(f->v), h);
	assert_int_equal(tl_fs_read(f, ino, 0, r, sizeof(r)), sizeof(r));
	assert_memory_equal(r, a, sizeof(a));
	struct wafl_check_result cr;
	assert_int_equal(wafl_check(f->v, &cr), 0);
	assert_int_equal(cr.errors, 0);
	tl_fs_destroy(f);
}

/*
 * Two allocation areas of 32768 blocks, the first filled first; then a
 * file whose first data only snapshot "s" keeps, root h held (its fsinfo
 * block in fsi) and left out of the ring, and a restart: no allocation
 * area is loaded.
 */
struct snap_case {
	struct tl_fs *f;
	uint8_t *a;		/* 1 MiB */
	uint64_t ino, small, h;
	uint8_t fsi[4096];
};

static void snap_case_start(struct snap_case *t)
{
	const uint32_t len = 1u << 20;

	t->f = tl_fs_create(4, 1, 16384, false);
	t->a = malloc(len);
	assert_non_null(t->a);
	uint64_t fill = tl_fs_new_file(t->f);
	for (uint32_t k = 0; k < 128; k++) {
		tl_fill_pattern(t->a, len, 1000 + k);
		tl_fs_write(t->f, fill, (uint64_t)k * len, t->a, len);
		if (k % 16 == 15)
			assert_int_equal(wafl_sync(t->f->v), 0);
	}
	t->ino = tl_fs_new_file(t->f);
	tl_fill_pattern(t->a, len, 31);
	tl_fs_write(t->f, t->ino, 0, t->a, len);
	assert_int_equal(wafl_sync(t->f->v), 0);
	assert_int_equal(wafl_snap_create(t->f->v, "s", NULL), 0);
	churn(t->f, t->ino, len, 1, 32);	/* s alone has the first data */
	t->h = wafl_generation(t->f->v);
	assert_int_equal(wafl_hold_root(t->f->v, t->h), 0);
	assert_int_equal(wafl_root_of(t->f->v, t->h, t->fsi), 0);
	/* The roots that had the first data in their active tree leave
	 * the ring. */
	t->small = tl_fs_new_file(t->f);
	churn(t->f, t->small, 4096, WAFL_RING_K + 1, 50);
	tl_fs_remount(t->f);
}

/*
 * 40 MiB written (the second area, loaded only now, from its start),
 * then h rolled back to as a replica: it must check clean, s included.
 */
static void snap_case_end(struct snap_case *t)
{
	const uint32_t len = 1u << 20;
	struct tl_fs *f = t->f;

	uint64_t ino2 = tl_fs_new_file(f);
	for (int i = 0; i < 10; i++) {
		tl_fill_pattern(t->a, len, 40 + (uint64_t)i);
		for (uint32_t k = 0; k < 4; k++)
			tl_fs_write(f, ino2, (uint64_t)k * len, t->a, len);
		assert_int_equal(wafl_sync(f->v), 0);
	}
	if (wafl_generation(f->v) % 2 == t->h % 2)
		churn(f, t->ino, len, 1, 60);
	check_clean(f);
	assert_int_equal(wafl_unmount(f->v), 0);
	f->v = NULL;
	struct wafl_bp root;
	assert_int_equal(wafl_bp_decode(t->fsi + 72, &root), 0);
	assert_int_equal(wafl_rollback_replica(f->raid, t->h, &root), 0);
	/* Its log held the future of h, not h's: it goes, as a resync's
	 * roll back removes it (t_rollback). */
	assert_int_equal(unlink(f->logpath), 0);
	tl_fs_mount(f);
	struct wafl_check_result r;
	if (wafl_check(f->v, &r) != 0)
		fail_msg("root %llu rolled back to: %s",
		    (unsigned long long)t->h, r.first_error);
	uint64_t id;
	assert_int_equal(wafl_snap_lookup(f->v, "s", &id), 0);
	free(t->a);
	tl_fs_destroy(f);
}

/*
 * A held root keeps its snapshots' blocks too, after a restart: root h
 * holds snapshot s, whose blocks only s uses; s is deleted and the volume
 * is written through.  The areas loaded after the delete must still count
 * s's blocks as h's (the summary map of h, not the active one), or new
 * data lands on them and h, rolled back to as a replica (a resync's base,
 * a mirror destination's served root), has a snapshot that does not
 * verify.
 */
static void test_hold_keeps_snapshot_blocks(void **state)
{
	struct snap_case t;

	(void)state;
	snap_case_start(&t);
	assert_int_equal(wafl_snap_delete(t.f->v, "s"), 0);
	snap_case_end(&t);
}

/*
 * A mirror's fallback: root h, held, names snapshot s; s is deleted while
 * h is held, then h becomes snapshot mirror.base.h (adopted) and the hold
 * goes.  The adopted root keeps its snapshots through its summary map, so
 * after a restart and 40 MiB written, h rolled back to as a replica still
 * has s whole (it had s's root block written over).
 */
static void test_adopted_root_keeps_deleted_snapshots(void **state)
{
	struct snap_case t;
	char bn[64];

	(void)state;
	snap_case_start(&t);
	assert_int_equal(wafl_snap_delete(t.f->v, "s"), 0);
	snprintf(bn, sizeof(bn), "mirror.base.%llu", (unsigned long long)t.h);
	assert_int_equal(wafl_snap_adopt_root(t.f->v, bn, t.h, NULL), 0);
	wafl_release_root(t.f->v, t.h);
	churn(t.f, t.small, 4096, WAFL_RING_K + 1, 70);
	tl_fs_remount(t.f);
	snap_case_end(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hold_survives_remount),
		cmocka_unit_test(test_hold_recorded_by_unmount),
		cmocka_unit_test(test_released_slots_are_freed),
		cmocka_unit_test(test_adopt_releases_pending),
		cmocka_unit_test(test_adopt_ids_stay_unique),
		cmocka_unit_test(test_release_kept_until_durable),
		cmocka_unit_test(test_hold_survives_crash),
		cmocka_unit_test(test_rollback_replica),
		cmocka_unit_test(test_hold_keeps_snapshot_blocks),
		cmocka_unit_test(test_adopted_root_keeps_deleted_snapshots),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
