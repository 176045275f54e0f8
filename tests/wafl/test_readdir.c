/*
 * tests/wafl/test_readdir.c: READDIR cookies under change.  While another
 * thread creates and removes entries in the same directory, listings in
 * small batches (each resuming at the last cookie returned) see every
 * entry that exists throughout exactly once, in cookie order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/lib/tl_wafl.h"

#define NSTABLE	2500

static const struct wafl_cred root_cred = { 0, 0, 0, { 0 } };

struct churn {
	wafl_vol_t *v;
	struct wafl_obj dir;
	atomic_bool stop;
	atomic_uint ops;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *churn_main(void *arg)
{
	struct churn *c = arg;
	char name[64];

	for (unsigned i = 0; !atomic_load(&c->stop) && i < 400000; i++) {
		struct wafl_obj o;
		struct wafl_attr a;
		snprintf(name, sizeof(name), "tmp-%u", i % 300);
		if (i % 600 < 300)
			(void)wafl_create(c->v, &root_cred, &c->dir, name,
			    WAFL_GUARDED, NULL, 0, &o, &a, NULL);
		else
			(void)wafl_remove(c->v, &root_cred, &c->dir, name,
			    NULL);
		atomic_fetch_add(&c->ops, 1);
	}
	return NULL;
}

struct batch {
	uint32_t max, n;
	uint64_t last;
	uint8_t *seen;
	uint64_t *seenc;
	int dups, disorder, found;
	bool plus;
};

static int batch_fn(void *arg, const struct wafl_dirent *de)
{
	struct batch *b = arg;
	int idx;

	if (b->n == b->max)
		return 1;
	if (de->cookie <= b->last) {
		b->disorder++;
		fprintf(stderr, "disorder: %s cookie %llx after %llx (entry %u "
		    "of the batch)\n", de->name,
		    (unsigned long long)de->cookie,
		    (unsigned long long)b->last, b->n);
	}
	b->last = de->cookie;
	b->n++;
	if (sscanf(de->name, "stable-%d", &idx) == 1 && idx >= 0 &&
	    idx < NSTABLE) {
		if (b->seen[idx]) {
			b->dups++;
			fprintf(stderr, "dup: %s cookie %llx, first at %llx\n",
			    de->name, (unsigned long long)de->cookie,
			    (unsigned long long)b->seenc[idx]);
		}
		b->seen[idx] = 1;
		b->seenc[idx] = de->cookie;
		b->found++;
	}
	return 0;
}

static void list_all(wafl_vol_t *v, const struct wafl_obj *dir, uint32_t per,
    bool plus)
{
	struct batch b = { .max = per, .plus = plus };
	uint64_t cookie = 0;
	bool eof = false;
	struct wafl_attr da;

	b.seen = calloc(NSTABLE, 1);
	b.seenc = calloc(NSTABLE, sizeof(uint64_t));
	for (int calls = 0; !eof && calls < 100000; calls++) {
		b.n = 0;
		b.last = cookie;
		assert_int_equal(wafl_readdir(v, &root_cred, dir, cookie, plus,
		    batch_fn, &b, &eof, &da), 0);
		if (b.n > 0)
			cookie = b.last;
	}
	assert_true(eof);
	assert_int_equal(b.dups, 0);
	assert_int_equal(b.disorder, 0);
	assert_int_equal(b.found, NSTABLE);
	free(b.seen);
	free(b.seenc);
}

static void test_cookies_under_change(void **state)
{
	struct tl_fs *f = tl_fs_create(4, 1, 16384, false);
	struct wafl_obj root, o;
	struct wafl_attr a;
	struct churn c = { .v = f->v };
	char name[64];
	pthread_t th;

	f->mo.no_cp_thread = false;
	f->mo.cp_interval_ms = 1000;
	tl_fs_remount(f);
	c.v = f->v;
	assert_int_equal(wafl_root(f->v, &root), 0);
	assert_int_equal(wafl_mkdir(f->v, &root_cred, &root, "big", NULL,
	    &c.dir, &a, NULL), 0);
	for (int i = 0; i < NSTABLE; i++) {
		snprintf(name, sizeof(name), "stable-%d", i);
		assert_int_equal(wafl_create(f->v, &root_cred, &c.dir, name,
		    WAFL_GUARDED, NULL, 0, &o, &a, NULL), 0);
	}
	assert_int_equal(pthread_create(&th, NULL, churn_main, &c), 0);
	/* Three rounds, and more until the churn has created and removed
	 * its names at least once (a loaded machine may not run it at
	 * first), for at most 60 s. */
	uint64_t t0 = now_ms();
	for (int round = 0; round < 3 || (atomic_load(&c.ops) < 600 &&
	    now_ms() - t0 < 60000); round++) {
		list_all(f->v, &c.dir, 7, false);
		list_all(f->v, &c.dir, 21, true);
		list_all(f->v, &c.dir, 100, true);
	}
	atomic_store(&c.stop, true);
	pthread_join(th, NULL);
	fprintf(stderr, "readdir under change: %u creates and removes "
	    "beside the listings\n", atomic_load(&c.ops));
	assert_true(atomic_load(&c.ops) >= 600);
	tl_fs_destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cookies_under_change),
	};
	return cmocka_run_group_tests_name("wafl readdir", tests, NULL, NULL);
}
