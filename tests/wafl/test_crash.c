/*
 * tests/wafl/test_crash.c: power cuts at random instants (the kill / reopen
 * / verify loop of ZFS ztest, on the crash-simulating disk and log layers of
 * SQLite's crash VFS), and the failure latch.
 *
 * CRASH LOOP
 *   One volume on raid with the fault injector, mounted with crash_sim, the
 *   CP thread on (1 s) and a syncer thread forcing CPs at random moments;
 *   small NVLOG halves and a small dirty bound add CPs of their own.  Worker
 *   threads run random operations through the public API (tl_model's mix:
 *   namespace operations, FILE_SYNC / DATA_SYNC / UNSTABLE writes, COMMIT,
 *   truncates, SETATTR), each in a directory of its own, one operation at
 *   a time, each predicted by the worker's model and journaled with the
 *   generation it ran in.  At a random instant the main thread calls
 *   wafl_crash: every NVLOG record and raid write not covered by a
 *   completed flush is dropped, written or torn.  Then: join, abandon,
 *   reopen raid, read the newest root's generation (read-only mount),
 *   mount (NVLOG replay), and per worker:
 *     - every operation that returned durable (W7: logged operations,
 *       UNSTABLE writes once a COMMIT of the file returned) is there;
 *     - the tree equals exactly one state the crash rules allow
 *       (tm_recover: the root holds the operations of its generations, the
 *       log a prefix of the rest, UNSTABLE writes only through a CP or a
 *       COMMIT), so an operation that did not return is wholly there or
 *       wholly absent, and nothing is reordered;
 *     - inode numbers and generations are the ones callers were told;
 *   wafl_check is clean, and the volume goes on working (the next
 *   iteration's operations, CPs, and every few iterations a clean remount
 *   compared exactly).
 *
 * COMMIT AND THE INODE CACHE
 *   A CP stopped in its write-out (its observer) while the file whose
 *   UNSTABLE data it carries leaves the inode cache: a COMMIT that returns
 *   meanwhile must not lose that data to a power cut.
 *
 * THE CP AFTER A REPLAY
 *   A crash in a CP's write-out with operations of the next generation
 *   logged, the replay, and its CP's fsinfo write torn: the next mount
 *   still holds every acknowledged write.
 *
 * FAILURE LATCH (STYLE.md 10)
 *   A failed NVLOG flush, a failed NVLOG append and a failed CP (raid writes
 *   refused on every disk) each latch the volume: writes get -EROFS (sync
 *   and COMMIT fail) until it is reopened, and the reopened volume holds
 *   everything acknowledged before.
 *
 * Seeds are printed; FILER_SEED repeats a run's choices (thread timing
 * still varies).  FILER_SOAK=1 runs thousands of crash points.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/tl_model.h"
#include "tests/lib/tl_tmpdir.h"
#include "tests/lib/tl_wafl.h"
#include "wafl/nvlog.h"
#include "wafl/wafl_impl.h"

/* A failed test leaves by longjmp: its scratch directory (on tmpfs) is
 * removed here. */
static char *scratch_dir;

static void scratch_note(const struct tl_fs *f)
{
	free(scratch_dir);
	scratch_dir = f != NULL ? strdup(f->dir) : NULL;
}

static int scratch_teardown(void **state)
{
	if (scratch_dir != NULL)
		tl_tmpdir_remove(scratch_dir);
	scratch_dir = NULL;
	return 0;
}

#define CR_WORKERS	3
#define CR_DENSE	(1u << 30)	/* files are read whole */

static const struct wafl_cred root_cred = { 0 };

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = {
		.tv_sec = (time_t)(us / 1000000),
		.tv_nsec = (long)(us % 1000000) * 1000,
	};

	nanosleep(&ts, NULL);
}

static uint64_t open_gen(wafl_vol_t *v)
{
	return __atomic_load_n(&v->open_gen, __ATOMIC_ACQUIRE);
}

/* Generation of the newest valid root on the disks: a read-only mount
 * neither replays the log nor writes. */
static uint64_t root_gen_on_disk(struct tl_fs *f)
{
	struct wafl_mount_opts mo = { .readonly = true, .no_cp_thread = true };
	wafl_vol_t *v;

	assert_int_equal(wafl_mount(f->raid, &mo, &v), 0);
	uint64_t g = wafl_generation(v);
	assert_int_equal(wafl_unmount(v), 0);
	return g;
}

static void check_clean(struct tl_fs *f, const char *when, uint64_t seed)
{
	struct wafl_check_result res;
	int rc = wafl_check(f->v, &res);

	if (rc != 0 || res.errors != 0)
		fail_msg("wafl_check after %s (seed 0x%" PRIx64 "): rc %d, %"
		    PRIu64 " errors, first: %s", when, seed, rc, res.errors,
		    res.first_error);
}

/* ------------------------------------------------------------- workers */

struct worker {
	int id;
	char name[16];
	struct tmodel *m;		/* the worker's directory */
	struct tm_journal jn;		/* operations of this iteration */
	size_t durable;			/* leading ops that returned durable */
	uint64_t rng;
	struct tm_gen_opts go;
	wafl_vol_t *v;
	const int *crashing;
	uint64_t nops;
	char failure[600];		/* an unexpected result, not a crash */
	pthread_t th;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct tm_op op;
	char desc[400];

	while (!__atomic_load_n(w->crashing, __ATOMIC_ACQUIRE)) {
		tm_gen(w->m, &w->rng, &w->go, &op);
		uint64_t g0 = open_gen(w->v);
		int rc = tm_exec(w->v, w->m, &op);
		uint64_t g1 = open_gen(w->v);
		int exp = tm_apply(w->m, &op, rc == 0 ? &op.out : NULL);
		tm_journal_add(&w->jn, &op, exp, g0, g1);
		w->nops++;
		if (rc != exp) {
			/* After the power cut anything may fail; before it,
			 * a wrong result is a failure of its own. */
			if (!__atomic_load_n(w->crashing, __ATOMIC_ACQUIRE)) {
				tm_op_describe(&op, desc, sizeof(desc));
				snprintf(w->failure, sizeof(w->failure),
				    "worker %d: %s: returned %d (%s), the model "
				    "expects %d", w->id, desc, rc,
				    fl_strerror(rc), exp);
			}
			tm_op_clear(&op);
			break;
		}
		if (rc == 0 && tm_op_durable(&op))
			w->durable = w->jn.n;
		tm_op_clear(&op);
	}
	return NULL;
}

struct syncer {
	wafl_vol_t *v;
	const int *crashing;
	uint64_t rng;
	uint64_t syncs;
	pthread_t th;
};

static void *syncer_main(void *arg)
{
	struct syncer *s = arg;

	while (!__atomic_load_n(s->crashing, __ATOMIC_ACQUIRE)) {
		sleep_us(500 + tm_below(&s->rng, 12000));
		if (__atomic_load_n(s->crashing, __ATOMIC_ACQUIRE))
			break;
		if (wafl_sync(s->v) == 0)
			s->syncs++;
	}
	return NULL;
}

/* ---------------------------------------------------------------- loop */

struct crash_run {
	struct tl_fs *f;
	struct worker w[CR_WORKERS];
	struct wafl_obj wdir[CR_WORKERS];
	uint64_t seed, rng;
	int crashing;
	/* what the run did */
	uint64_t points, ops, durable_ops, maybe_ops, syncs, remounts;
	uint64_t replayed_tail;		/* non-durable ops found present */
};

static void cr_mount_opts(struct tl_fs *f)
{
	f->mo.crash_sim = true;
	f->mo.no_cp_thread = false;
	f->mo.cp_interval_ms = 1000;
	f->mo.nvlog_half_bytes = 2u << 20;	/* half-full CPs */
	f->mo.dirty_max_bytes = 2u << 20;	/* dirty-memory CPs */
	f->mo.cache_bytes = 4u << 20;
}

static void cr_setup(struct crash_run *r, uint64_t seed)
{
	struct wafl_obj root;
	struct wafl_attr a;

	memset(r, 0, sizeof(*r));
	r->seed = seed;
	r->rng = seed;
	r->f = tl_fs_create(4, 1, 16384, true);
	scratch_note(r->f);
	cr_mount_opts(r->f);
	tl_fs_remount(r->f);
	assert_int_equal(wafl_root(r->f->v, &root), 0);
	for (int i = 0; i < CR_WORKERS; i++) {
		struct worker *w = &r->w[i];
		w->id = i;
		snprintf(w->name, sizeof(w->name), "w%d", i);
		assert_int_equal(wafl_mkdir(r->f->v, &root_cred, &root, w->name,
		    NULL, &r->wdir[i], &a, NULL), 0);
		w->m = tm_new(&r->wdir[i], &a);
		w->go = (struct tm_gen_opts){
			.name_pool = 8, .max_off = 96 * 1024, .max_len = 12288,
			.errors = true, .exclusive = true, .max_nodes = 40,
			.commit_pct = 6, .unstable_pct = 45,
		};
		if (i == 0) {
			/* One worker with bigger files: COMMIT by CP. */
			w->go.max_off = 1536 * 1024;
			w->go.max_len = 256 * 1024;
			w->go.max_nodes = 12;
		}
		w->rng = tm_rand(&r->rng) | 1;
	}
	assert_int_equal(wafl_sync(r->f->v), 0);
}

static void cr_teardown(struct crash_run *r)
{
	for (int i = 0; i < CR_WORKERS; i++) {
		tm_journal_free(&r->w[i].jn);
		tm_free(r->w[i].m);
	}
	scratch_note(NULL);
	tl_fs_destroy(r->f);
}

/* Compare every worker's directory with its model exactly. */
static void cr_verify_exact(struct crash_run *r, const char *when)
{
	struct tm_backend b;
	char err[700];

	tm_backend_live(&b, r->f->v);
	for (int i = 0; i < CR_WORKERS; i++) {
		struct tmodel *o = tm_observe(&b, &r->wdir[i], r->w[i].m,
		    CR_DENSE, err, sizeof(err));
		if (o == NULL)
			fail_msg("%s: reading /%s (seed 0x%" PRIx64 "): %s",
			    when, r->w[i].name, r->seed, err);
		int rc = tm_diff(r->w[i].m, o, TM_DIFF_OBJS, err, sizeof(err));
		tm_free(o);
		if (rc != 0)
			fail_msg("%s: /%s differs from its model (seed 0x%"
			    PRIx64 "): %s", when, r->w[i].name, r->seed, err);
	}
}

static void cr_iteration(struct crash_run *r, uint64_t it)
{
	uint64_t iseed = tm_rand(&r->rng);
	uint64_t rng = iseed;
	struct syncer sy = { .v = r->f->v, .crashing = &r->crashing,
	    .rng = tm_rand(&rng) | 1 };
	char err[1400];

	r->crashing = 0;
	for (int i = 0; i < CR_WORKERS; i++) {
		struct worker *w = &r->w[i];
		tm_journal_start(&w->jn, w->m);
		w->durable = 0;
		w->v = r->f->v;
		w->crashing = &r->crashing;
		w->failure[0] = '\0';
		w->nops = 0;
	}
	for (int i = 0; i < CR_WORKERS; i++)
		assert_int_equal(pthread_create(&r->w[i].th, NULL, worker_main,
		    &r->w[i]), 0);
	assert_int_equal(pthread_create(&sy.th, NULL, syncer_main, &sy), 0);

	/* The power cut: mostly early (few ops, a CP in flight), sometimes
	 * after a long run (several CPs, log switches). */
	uint64_t us = tm_below(&rng, 100) < 70 ? 200 + tm_below(&rng, 25000) :
	    25000 + tm_below(&rng, 150000);
	sleep_us(us);
	__atomic_store_n(&r->crashing, 1, __ATOMIC_RELEASE);
	assert_int_equal(wafl_crash(r->f->v, iseed), 0);
	for (int i = 0; i < CR_WORKERS; i++)
		pthread_join(r->w[i].th, NULL);
	pthread_join(sy.th, NULL);
	r->syncs += sy.syncs;
	for (int i = 0; i < CR_WORKERS; i++)
		if (r->w[i].failure[0] != '\0')
			fail_msg("crash point %" PRIu64 " (seed 0x%" PRIx64
			    ", iteration seed 0x%" PRIx64 "): %s", it, r->seed,
			    iseed, r->w[i].failure);

	wafl_abandon(r->f->v);
	r->f->v = NULL;
	tl_fs_reopen_raid(r->f);
	uint64_t g = root_gen_on_disk(r->f);
	tl_fs_mount(r->f);
	__atomic_add_fetch(&r->points, 1, __ATOMIC_RELEASE);

	struct tm_backend b;
	tm_backend_live(&b, r->f->v);
	for (int i = 0; i < CR_WORKERS; i++) {
		struct worker *w = &r->w[i];
		struct tmodel *o = tm_observe(&b, &r->wdir[i], w->m, CR_DENSE,
		    err, sizeof(err));
		if (o == NULL)
			fail_msg("crash point %" PRIu64 " (seed 0x%" PRIx64
			    ", iteration seed 0x%" PRIx64 "): reading /%s: %s",
			    it, r->seed, iseed, w->name, err);
		struct tmodel *m = tm_recover(&w->jn, g, w->durable, o,
		    TM_DIFF_OBJS | TM_DIFF_ADOPT, err, sizeof(err));
		tm_free(o);
		if (m == NULL) {
			char d[400];
			print_message("worker %d journal (%zu ops, %zu durable, "
			    "root generation %" PRIu64 "):\n", w->id, w->jn.n,
			    w->durable, g);
			for (size_t k = 0; k < w->jn.n; k++) {
				tm_op_describe(&w->jn.j[k].op, d, sizeof(d));
				print_message("  %3zu gen %" PRIu64 "..%" PRIu64
				    " rc %d expect %d: %s\n", k,
				    w->jn.j[k].gen_before, w->jn.j[k].gen_after,
				    w->jn.j[k].op.rc, w->jn.j[k].expect, d);
			}
			fail_msg("crash point %" PRIu64 " (seed 0x%" PRIx64
			    ", iteration seed 0x%" PRIx64 "): /%s: %s", it,
			    r->seed, iseed, w->name, err);
		}
		tm_free(w->m);
		w->m = m;
		r->ops += w->jn.n;
		r->durable_ops += w->durable;
		r->maybe_ops += w->jn.n - w->durable;
		tm_journal_free(&w->jn);
	}
	int rc = wafl_sync(r->f->v);
	if (rc != 0)
		fail_msg("wafl_sync after recovery: %d", rc);
	check_clean(r->f, "crash recovery", iseed);
	if (it % 8 == 7) {
		/* A clean remount keeps exactly what the models say. */
		tl_fs_remount(r->f);
		r->remounts++;
		cr_verify_exact(r, "remount after crash recovery");
		check_clean(r->f, "remount", iseed);
	}
}

/* A crash point that never comes back is a failure, not a hang of make
 * check: the watchdog aborts with the seed when no crash point completes
 * for WATCHDOG_S seconds. */
#define WATCHDOG_S	60

struct watchdog {
	const uint64_t *progress;
	uint64_t seed;
	int stop;
	pthread_t th;
};

static void *watchdog_main(void *arg)
{
	struct watchdog *wd = arg;
	uint64_t last = UINT64_MAX;
	double since = now_s();

	while (!__atomic_load_n(&wd->stop, __ATOMIC_ACQUIRE)) {
		uint64_t p = __atomic_load_n(wd->progress, __ATOMIC_ACQUIRE);
		if (p != last) {
			last = p;
			since = now_s();
		} else if (now_s() - since > WATCHDOG_S) {
			fprintf(stderr, "test_crash: no progress for %d s after "
			    "crash point %" PRIu64 " (seed 0x%" PRIx64 "): the "
			    "volume hangs\n", WATCHDOG_S, p, wd->seed);
			if (scratch_dir != NULL)	/* tmpfs: give it back */
				tl_tmpdir_remove(scratch_dir);
			abort();
		}
		sleep_us(200000);
	}
	return NULL;
}

static void test_crash_loop(void **state)
{
	double k = tm_scale();
	uint64_t points = (uint64_t)(60.0 * k);
	double limit = k > 1.0 ? 1800.0 : 600.0;
	struct crash_run r;
	double t0 = now_s();

	if (points < 50)
		points = 50;	/* the floor, in every build */
	cr_setup(&r, tm_seed());
	print_message("test_crash: seed 0x%" PRIx64 " (FILER_SEED=0x%" PRIx64
	    " repeats the choices), %" PRIu64 " crash points\n", r.seed,
	    r.seed, points);
	struct watchdog wd = { .progress = &r.points, .seed = r.seed };
	assert_int_equal(pthread_create(&wd.th, NULL, watchdog_main, &wd), 0);
	uint64_t it;
	for (it = 0; it < points && now_s() - t0 < limit; it++)
		cr_iteration(&r, it);
	__atomic_store_n(&wd.stop, 1, __ATOMIC_RELEASE);
	pthread_join(wd.th, NULL);
	cr_verify_exact(&r, "the end");
	tl_fs_remount(r.f);
	cr_verify_exact(&r, "the last remount");
	check_clean(r.f, "the last remount", r.seed);
	print_message("test_crash: %" PRIu64 " crash points, %" PRIu64
	    " operations (%" PRIu64 " acknowledged durable, %" PRIu64
	    " in doubt), %" PRIu64 " forced CPs, %" PRIu64 " remounts; "
	    "%.1f s\n", r.points, r.ops, r.durable_ops, r.maybe_ops, r.syncs,
	    r.remounts, now_s() - t0);
	if (r.points < points && k <= 1.0)
		fail_msg("only %" PRIu64 " crash points in %.0f s", r.points,
		    limit);
	cr_teardown(&r);
}

/* ---------------------------------------------------------- the latch */

struct latch {
	struct tl_fs *f;
	struct worker w;
	struct wafl_obj dir;
};

static void latch_setup(struct latch *l, bool fault_inject, uint64_t seed)
{
	struct wafl_obj root;
	struct wafl_attr a;

	memset(l, 0, sizeof(*l));
	l->f = tl_fs_create(4, 1, 8192, fault_inject);
	scratch_note(l->f);
	assert_int_equal(wafl_root(l->f->v, &root), 0);
	assert_int_equal(wafl_mkdir(l->f->v, &root_cred, &root, "d", NULL,
	    &l->dir, &a, NULL), 0);
	l->w.m = tm_new(&l->dir, &a);
	l->w.go = (struct tm_gen_opts){
		.name_pool = 8, .max_off = 64 * 1024, .max_len = 8192,
		.errors = true, .max_nodes = 30, .commit_pct = 5,
		.unstable_pct = 30,
	};
	l->w.rng = seed | 1;
	assert_int_equal(wafl_sync(l->f->v), 0);
	tm_journal_start(&l->w.jn, l->w.m);
}

/* n operations that must all succeed as predicted; journaled. */
static void latch_ops(struct latch *l, int n)
{
	struct tm_op op;
	char desc[400];

	for (int i = 0; i < n; i++) {
		tm_gen(l->w.m, &l->w.rng, &l->w.go, &op);
		uint64_t g0 = open_gen(l->f->v);
		int rc = tm_exec(l->f->v, l->w.m, &op);
		uint64_t g1 = open_gen(l->f->v);
		int exp = tm_apply(l->w.m, &op, rc == 0 ? &op.out : NULL);
		tm_journal_add(&l->w.jn, &op, exp, g0, g1);
		if (rc != exp) {
			tm_op_describe(&op, desc, sizeof(desc));
			fail_msg("%s: %d, expected %d", desc, rc, exp);
		}
		if (rc == 0 && tm_op_durable(&op))
			l->w.durable = l->w.jn.n;
		tm_op_clear(&op);
	}
}

/* The file the failing write goes to, made (durably) before the fault. */
static void latch_make_victim(struct latch *l)
{
	struct tm_op op = { 0 };

	op.k = TM_CREATE;
	op.path = strdup("");
	op.name = strdup("victim");
	op.how = WAFL_UNCHECKED;
	uint64_t g0 = open_gen(l->f->v);
	int rc = tm_exec(l->f->v, l->w.m, &op);
	int exp = tm_apply(l->w.m, &op, rc == 0 ? &op.out : NULL);
	assert_int_equal(rc, exp);
	tm_journal_add(&l->w.jn, &op, exp, g0, open_gen(l->f->v));
	l->w.durable = l->w.jn.n;
	tm_op_clear(&op);
}

/* A stable write that must fail: journaled, but not durable. */
static void latch_failing_write(struct latch *l, int expect_rc)
{
	struct tm_op op = { 0 };
	struct wafl_obj vobj;
	struct wafl_attr a;
	enum wafl_stable committed;
	uint8_t buf[5000];

	assert_int_equal(wafl_lookup(l->f->v, &root_cred, &l->dir, "victim",
	    &vobj, &a, NULL), 0);
	op.k = TM_WRITE;
	op.path = strdup("victim");
	op.off = 100;
	op.len = sizeof(buf);
	op.seed = 77;
	op.stable = WAFL_FILE_SYNC;
	tl_fill_pattern(buf, sizeof(buf), op.seed);
	uint64_t g0 = open_gen(l->f->v);
	int rc = wafl_write(l->f->v, &root_cred, &vobj, op.off, op.len, buf,
	    WAFL_FILE_SYNC, &committed, NULL, NULL);
	assert_int_equal(rc, expect_rc);
	op.rc = rc;
	tm_journal_add(&l->w.jn, &op, 0, g0, open_gen(l->f->v));
	tm_op_clear(&op);
}

/* Every change is refused until the volume is reopened (and reads still
 * work, if the disks do). */
static void latch_refuses(struct latch *l, bool reads)
{
	struct wafl_obj o;
	struct wafl_attr a;
	enum wafl_stable committed;
	uint8_t b[100] = { 1 };
	struct wafl_sattr sa = { .set_mode = true, .mode = 0600 };

	assert_int_equal(wafl_create(l->f->v, &root_cred, &l->dir, "late",
	    WAFL_GUARDED, NULL, 0, &o, &a, NULL), -EROFS);
	assert_int_equal(wafl_mkdir(l->f->v, &root_cred, &l->dir, "late",
	    NULL, &o, &a, NULL), -EROFS);
	assert_int_equal(wafl_write(l->f->v, &root_cred, &l->dir, 0,
	    sizeof(b), b, WAFL_UNSTABLE, &committed, NULL, NULL), -EROFS);
	assert_int_equal(wafl_setattr(l->f->v, &root_cred, &l->dir, &sa,
	    NULL, NULL, NULL), -EROFS);
	assert_int_equal(wafl_remove(l->f->v, &root_cred, &l->dir, "victim",
	    NULL), -EROFS);
	assert_int_equal(wafl_sync(l->f->v), -EROFS);
	assert_true(wafl_commit(l->f->v, &l->dir, NULL) != 0);
	assert_int_equal(wafl_snap_create(l->f->v, "late", NULL), -EROFS);
	if (!reads)
		return;
	assert_int_equal(wafl_getattr(l->f->v, &l->dir, &a), 0);
	assert_int_equal(wafl_lookup(l->f->v, &root_cred, &l->dir, "victim",
	    &o, &a, NULL), 0);
}

/* Reopen; everything acknowledged is there; the volume works again. */
static void latch_reopen(struct latch *l)
{
	struct tm_backend b;
	char err[1400];

	/* Unmount of a failed volume writes nothing. */
	assert_int_equal(wafl_unmount(l->f->v), 0);
	l->f->v = NULL;
	tl_fs_reopen_raid(l->f);
	uint64_t g = root_gen_on_disk(l->f);
	tl_fs_mount(l->f);
	tm_backend_live(&b, l->f->v);
	struct tmodel *o = tm_observe(&b, &l->dir, l->w.m, CR_DENSE, err,
	    sizeof(err));
	assert_non_null(o);
	struct tmodel *m = tm_recover(&l->w.jn, g, l->w.durable, o,
	    TM_DIFF_OBJS | TM_DIFF_ADOPT, err, sizeof(err));
	tm_free(o);
	if (m == NULL)
		fail_msg("after the latch and a reopen: %s", err);
	tm_free(l->w.m);
	l->w.m = m;
	tm_journal_free(&l->w.jn);
	tm_journal_start(&l->w.jn, l->w.m);
	l->w.durable = 0;
	latch_ops(l, 60);
	assert_int_equal(wafl_sync(l->f->v), 0);
	check_clean(l->f, "reopen after the latch", 0);
	tl_fs_remount(l->f);
	tm_backend_live(&b, l->f->v);
	o = tm_observe(&b, &l->dir, l->w.m, CR_DENSE, err, sizeof(err));
	assert_non_null(o);
	if (tm_diff(l->w.m, o, TM_DIFF_OBJS, err, sizeof(err)) != 0)
		fail_msg("after the latch, reopen, ops, remount: %s", err);
	tm_free(o);
	check_clean(l->f, "remount after the latch", 0);
}

static void latch_teardown(struct latch *l)
{
	tm_journal_free(&l->w.jn);
	tm_free(l->w.m);
	scratch_note(NULL);
	tl_fs_destroy(l->f);
}

/* A failed NVLOG flush: the write waiting for it fails, then everything. */
static void test_latch_log_flush(void **state)
{
	struct latch l;
	uint64_t seed = tm_seed();

	print_message("test_latch_log_flush: seed 0x%" PRIx64 "\n", seed);
	latch_setup(&l, false, seed);
	latch_ops(&l, 80);
	latch_make_victim(&l);
	nvlog_test_inject(l.f->v->log, NVLOG_FAULT_SYNC);
	latch_failing_write(&l, -EIO);
	latch_refuses(&l, true);
	latch_reopen(&l);
	latch_teardown(&l);
}

/* A failed NVLOG append (pwrite): the change in memory never reaches a
 * CP and never replays. */
static void test_latch_log_append(void **state)
{
	struct latch l;
	uint64_t seed = tm_seed();

	print_message("test_latch_log_append: seed 0x%" PRIx64 "\n", seed);
	latch_setup(&l, false, seed);
	latch_ops(&l, 80);
	latch_make_victim(&l);
	nvlog_test_inject(l.f->v->log, NVLOG_FAULT_WRITE);
	latch_failing_write(&l, -EIO);
	latch_refuses(&l, true);
	/* Not even a CP may write the unlogged change. */
	assert_int_equal(wafl_sync(l.f->v), -EROFS);
	latch_reopen(&l);
	latch_teardown(&l);
}

/* A failed CP: the raid volume fails every I/O from now on (a controller
 * gone; raid's fault injector, its unflushed writes dropped).  The CP
 * fails, the volume refuses writes, and a reopen replays the log over the
 * last good root.  (Write errors on single disks do not fail a CP: raid
 * runs degraded; on more disks than parity covers the group goes offline
 * for good, which is raid's test to make.) */
static void test_latch_cp(void **state)
{
	struct latch l;
	uint64_t seed = tm_seed();

	print_message("test_latch_cp: seed 0x%" PRIx64 "\n", seed);
	latch_setup(&l, true, seed);
	latch_ops(&l, 80);
	assert_int_equal(wafl_sync(l.f->v), 0);
	latch_ops(&l, 40);
	latch_make_victim(&l);
	assert_int_equal(raid_fault_crash(l.f->raid, RAID_CRASH_DROP_ALL,
	    seed), 0);
	assert_true(wafl_sync(l.f->v) != 0);
	latch_refuses(&l, false);
	latch_reopen(&l);
	latch_teardown(&l);
}

/* ------------------------------------------------------- CP gate */

/* Stops CP `gen` in its write-out (the observer's first run) until
 * released: the CP's blocks are not on disk, its fsinfo is not written. */
struct cp_gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t gen;
	bool stopped, go;
};

static void gate_blocks(void *arg, uint64_t gen, uint64_t vbn, uint32_t n,
    const uint8_t *const *blocks, const struct wafl_cp_blkinfo *info)
{
	struct cp_gate *g = arg;

	(void)vbn;
	(void)n;
	(void)blocks;
	(void)info;
	pthread_mutex_lock(&g->lock);
	if (gen == g->gen && !g->stopped) {
		g->stopped = true;
		pthread_cond_broadcast(&g->cond);
		while (!g->go)
			pthread_cond_wait(&g->cond, &g->lock);
	}
	pthread_mutex_unlock(&g->lock);
}

struct sync_job {
	wafl_vol_t *v;
	int rc;
};

static void *sync_main(void *arg)
{
	struct sync_job *j = arg;

	j->rc = wafl_sync(j->v);
	return NULL;
}

/* Start a CP of the open generation and wait until it stops. */
static void gate_cp(struct cp_gate *g, wafl_vol_t *v, struct sync_job *j,
    pthread_t *th)
{
	static struct wafl_cp_observer obs;

	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->gen = open_gen(v);
	g->stopped = g->go = false;
	obs = (struct wafl_cp_observer){ g, gate_blocks, NULL };
	wafl_set_observer(v, &obs);
	j->v = v;
	assert_int_equal(pthread_create(th, NULL, sync_main, j), 0);
	pthread_mutex_lock(&g->lock);
	while (!g->stopped)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void gate_release(struct cp_gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->go = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void wr_sync(wafl_vol_t *v, const struct wafl_obj *o, uint64_t off,
    const void *buf, uint32_t len, enum wafl_stable how)
{
	enum wafl_stable got;

	assert_int_equal(wafl_write(v, &root_cred, o, off, len, buf, how, &got,
	    NULL, NULL), 0);
}

static void expect_data(wafl_vol_t *v, const struct wafl_obj *o, uint64_t off,
    const uint8_t *want, uint32_t len, const char *what)
{
	uint8_t *buf = calloc(1, len);
	uint32_t got = 0;
	bool eof;

	assert_non_null(buf);
	assert_int_equal(wafl_read(v, &root_cred, o, off, len, buf, &got, &eof,
	    NULL), 0);
	if (got != len || memcmp(buf, want, len) != 0)
		fail_msg("%s: %u bytes at %" PRIu64 " read back %s", what, len,
		    off, got != len ? "short" : "different");
	free(buf);
}

/* --------------------------------------------- COMMIT of an evicted inode */

struct commit_job {
	wafl_vol_t *v;
	struct wafl_obj o;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int rc;
};

static void *commit_main(void *arg)
{
	struct commit_job *j = arg;
	int rc = wafl_commit(j->v, &j->o, NULL);

	pthread_mutex_lock(&j->lock);
	j->rc = rc;
	j->done = true;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

/*
 * UNSTABLE data is durable once COMMIT returns, even when the file's
 * in-memory inode left the inode cache after the CP carrying the data
 * froze and before that CP is on disk: a volume that has touched more
 * inodes than the cache keeps drops a clean, unreferenced one at its last
 * release.  The CP here stops in its write-out; GETATTRs of 65536 inode
 * numbers fill the cache, a CREATE (its inode dirty, so held) takes it
 * past the bound, and a GETATTR of the file drops its inode.  A COMMIT
 * that returns while the CP is stopped must have nothing to lose: the
 * power is cut there, and the data must be on disk after the restart.
 */
static void test_commit_after_inode_evicted(void **state)
{
	static uint8_t data[64 * 1024];
	struct tl_fs *f = tl_fs_create(4, 1, 16384, true);
	struct cp_gate g;
	struct sync_job sj;
	struct commit_job cj = { .lock = PTHREAD_MUTEX_INITIALIZER,
	    .cond = PTHREAD_COND_INITIALIZER };
	struct wafl_obj root, o, other;
	struct wafl_attr a;
	pthread_t sth, cth;

	(void)state;
	scratch_note(f);
	f->mo.crash_sim = true;
	tl_fs_remount(f);
	assert_int_equal(wafl_root(f->v, &root), 0);
	assert_int_equal(wafl_create(f->v, &root_cred, &root, "f",
	    WAFL_GUARDED, NULL, 0, &o, &a, NULL), 0);
	assert_int_equal(wafl_sync(f->v), 0);
	tl_fill_pattern(data, sizeof(data), 11);
	wr_sync(f->v, &o, 0, data, sizeof(data), WAFL_UNSTABLE);

	gate_cp(&g, f->v, &sj, &sth);
	for (uint64_t i = 0; i < 65536; i++) {
		struct wafl_obj stale = { (1ull << 20) + i, 1, 0 };
		assert_int_equal(wafl_getattr(f->v, &stale, &a), -ESTALE);
	}
	assert_int_equal(wafl_create(f->v, &root_cred, &root, "other",
	    WAFL_GUARDED, NULL, 0, &other, &a, NULL), 0);
	assert_int_equal(wafl_getattr(f->v, &o, &a), 0);

	cj.v = f->v;
	cj.o = o;
	assert_int_equal(pthread_create(&cth, NULL, commit_main, &cj), 0);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 1;		/* an early answer comes at once */
	pthread_mutex_lock(&cj.lock);
	while (!cj.done)
		if (pthread_cond_timedwait(&cj.cond, &cj.lock, &ts) != 0)
			break;
	bool early = cj.done;
	pthread_mutex_unlock(&cj.lock);
	if (early) {
		/* COMMIT answered with the CP still stopped: power cut. */
		assert_int_equal(cj.rc, 0);
		assert_int_equal(wafl_crash(f->v, 1), 0);
		gate_release(&g);
		pthread_join(sth, NULL);
		pthread_join(cth, NULL);
	} else {
		gate_release(&g);
		pthread_join(sth, NULL);
		pthread_join(cth, NULL);
		assert_int_equal(sj.rc, 0);
		assert_int_equal(cj.rc, 0);
		assert_int_equal(wafl_crash(f->v, 1), 0);
	}
	wafl_abandon(f->v);
	f->v = NULL;
	tl_fs_reopen_raid(f);
	tl_fs_mount(f);
	expect_data(f->v, &o, 0, data, sizeof(data), "committed data");
	check_clean(f, "COMMIT and a crash", 0);
	scratch_note(NULL);
	tl_fs_destroy(f);
}

/* ------------------------------------------- the CP after a replay, torn */

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	*len = (size_t)ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc(*len ? *len : 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, *len, fp), *len);
	fclose(fp);
	return buf;
}

static void spill(const char *path, const uint8_t *buf, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, len, fp), len);
	fclose(fp);
}

/*
 * A crash during CP n+1's write-out, with operations of n+2 logged, leaves
 * fsinfo n and records of n+1 and n+2 (those of n are gone: their half
 * was released at fsinfo n and n+2 writes over it).  The CP after the
 * replay carries the records' newest generation; if that is n+2, its
 * fsinfo goes to slot n % 2, over the root just mounted, and a power cut
 * that tears it leaves the other slot, fsinfo n-1, whose successor's
 * records are no longer in the log: the acknowledged writes of n are
 * lost.  Here the replay mount runs, then the disks are put in the state
 * a cut during its fsinfo write leaves (that slot torn, the log as it was
 * before it restarted), and the next mount must still hold every write.
 */
static void test_replay_cp_torn_root(void **state)
{
	static uint8_t wa[4096], wb[4096], wc[4096];
	struct tl_fs *f = tl_fs_create(4, 1, 16384, true);
	struct cp_gate g;
	struct sync_job sj;
	struct wafl_obj root, o;
	struct wafl_attr a;
	pthread_t sth;
	uint8_t *old = malloc(2 * 4096), *cur = malloc(4096);

	(void)state;
	scratch_note(f);
	f->mo.crash_sim = true;
	tl_fs_remount(f);
	tl_fill_pattern(wa, sizeof(wa), 1);
	tl_fill_pattern(wb, sizeof(wb), 2);
	tl_fill_pattern(wc, sizeof(wc), 3);
	assert_int_equal(wafl_root(f->v, &root), 0);
	assert_int_equal(wafl_create(f->v, &root_cred, &root, "f",
	    WAFL_GUARDED, NULL, 0, &o, &a, NULL), 0);
	assert_int_equal(wafl_sync(f->v), 0);
	wr_sync(f->v, &o, 0, wa, sizeof(wa), WAFL_FILE_SYNC);	/* gen n */
	assert_int_equal(wafl_sync(f->v), 0);
	uint64_t n = wafl_generation(f->v);
	wr_sync(f->v, &o, 4096, wb, sizeof(wb), WAFL_FILE_SYNC); /* n + 1 */
	gate_cp(&g, f->v, &sj, &sth);
	assert_int_equal(g.gen, n + 1);
	wr_sync(f->v, &o, 8192, wc, sizeof(wc), WAFL_FILE_SYNC); /* n + 2 */
	assert_int_equal(wafl_crash(f->v, 1), 0);
	gate_release(&g);
	pthread_join(sth, NULL);
	wafl_abandon(f->v);
	f->v = NULL;
	tl_fs_reopen_raid(f);
	assert_int_equal(raid_read(f->raid, 0, 2, old), 0);
	size_t loglen;
	uint8_t *log = slurp(f->logpath, &loglen);

	/* The replay and its CP. */
	tl_fs_mount(f);
	uint64_t rg = wafl_generation(f->v);
	assert_true(rg > n);
	wafl_abandon(f->v);
	f->v = NULL;
	tl_fs_reopen_raid(f);

	/* Its fsinfo write torn: the first half of the slot new, the rest
	 * as before; the log not restarted yet. */
	uint64_t slot = rg % 2;
	assert_int_equal(raid_read(f->raid, slot, 1, cur), 0);
	memcpy(cur + 2048, old + slot * 4096 + 2048, 2048);
	assert_int_equal(raid_write(f->raid, slot, 1, cur), 0);
	assert_int_equal(raid_flush(f->raid), 0);
	spill(f->logpath, log, loglen);

	assert_int_equal(wafl_mount(f->raid, &f->mo, &f->v), 0);
	expect_data(f->v, &o, 0, wa, sizeof(wa), "write of generation n");
	expect_data(f->v, &o, 4096, wb, sizeof(wb), "write of n + 1");
	expect_data(f->v, &o, 8192, wc, sizeof(wc), "write of n + 2");
	check_clean(f, "a torn root after replay", 0);
	free(log);
	free(old);
	free(cur);
	scratch_note(NULL);
	tl_fs_destroy(f);
}

int main(void)
{
	/* Power cuts are simulated in-process (NVLOG crash_sim, raid's fault
	 * injector); the host file system's fsync is not under test, so the
	 * volumes go to tmpfs unless TMPDIR says otherwise. */
	if (getenv("TMPDIR") == NULL && access("/dev/shm", W_OK) == 0)
		setenv("TMPDIR", "/dev/shm", 0);

	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_latch_log_flush, scratch_teardown),
		cmocka_unit_test_teardown(test_latch_log_append, scratch_teardown),
		cmocka_unit_test_teardown(test_latch_cp, scratch_teardown),
		cmocka_unit_test_teardown(test_commit_after_inode_evicted,
		    scratch_teardown),
		cmocka_unit_test_teardown(test_replay_cp_torn_root,
		    scratch_teardown),
		cmocka_unit_test_teardown(test_crash_loop, scratch_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
