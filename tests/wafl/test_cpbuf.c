/*
 * tests/wafl/test_cpbuf.c: a CP's frozen image stays as it was frozen while
 * operations go on during its write-out.
 *
 * The CP hands its sealed buffers to the block cache without a copy and
 * writes them from there, without the volume lock.  Here the CP's observer
 * stops the write-out at its first run; meanwhile the file the CP carries is
 * overwritten and a second file it carries is read (from the pinned cache
 * entries: those blocks are not on disk yet).  Every later run must still
 * carry the frozen data, the next CP the new data, and the volume must
 * check clean and read back right after a remount.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/lib/tl_wafl.h"

#define NBLK	3000u		/* file blocks: several write-out runs */
#define BS	4096u

struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t gen;		/* the CP to stop (0: none) */
	bool stopped, go;
	uint64_t seen_a, seen_b, seen_c;	/* blocks all 0xaa / bb / cc */
	uint64_t seen_blocks;
};

static bool all_of(const uint8_t *p, uint8_t c)
{
	for (uint32_t i = 0; i < BS; i++)
		if (p[i] != c)
			return false;
	return true;
}

static void on_blocks(void *arg, uint64_t gen, uint64_t vbn, uint32_t n,
    const uint8_t *const *blocks,
    const struct wafl_cp_blkinfo *info)
{
	struct gate *g = arg;

	(void)vbn;
	pthread_mutex_lock(&g->lock);
	if (gen == g->gen && !g->stopped) {
		g->stopped = true;
		pthread_cond_broadcast(&g->cond);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 60;
		while (!g->go)
			if (pthread_cond_timedwait(&g->cond, &g->lock, &ts) != 0)
				break;
	}
	if (gen == g->gen) {
		for (uint32_t i = 0; i < n; i++) {
			const uint8_t *b = blocks[i];
			g->seen_a += all_of(b, 0xaa);
			g->seen_b += all_of(b, 0xbb);
			g->seen_c += all_of(b, 0xcc);
		}
		g->seen_blocks += n;
	}
	pthread_mutex_unlock(&g->lock);
}

struct sync_job {
	struct tl_fs *f;
	int rc;
};

static void *sync_thread(void *arg)
{
	struct sync_job *j = arg;

	j->rc = wafl_sync(j->f->v);
	return NULL;
}

static void fill_file(struct tl_fs *f, uint64_t ino, uint8_t c)
{
	uint8_t *buf = malloc(256 * BS);

	memset(buf, c, 256 * BS);
	for (uint32_t b = 0; b < NBLK; b += 256) {
		uint32_t n = NBLK - b < 256 ? NBLK - b : 256;
		tl_fs_write(f, ino, (uint64_t)b * BS, buf, n * BS);
	}
	free(buf);
}

static void expect_file(struct tl_fs *f, uint64_t ino, uint8_t c)
{
	uint8_t *buf = malloc(256 * BS);

	for (uint32_t b = 0; b < NBLK; b += 256) {
		uint32_t n = NBLK - b < 256 ? NBLK - b : 256;
		assert_int_equal(tl_fs_read(f, ino, (uint64_t)b * BS, buf,
		    n * BS), n * BS);
		for (uint32_t i = 0; i < n; i++)
			assert_true(all_of(buf + (size_t)i * BS, c));
	}
	free(buf);
}

static void test_frozen_image(void **state)
{
	struct tl_fs *f = tl_fs_create(4, 1, 16384, false);
	struct gate g = { .lock = PTHREAD_MUTEX_INITIALIZER,
	    .cond = PTHREAD_COND_INITIALIZER };
	struct wafl_cp_observer obs = { &g, on_blocks, NULL };
	struct sync_job j = { .f = f };
	pthread_t th;

	(void)state;
	uint64_t ino = tl_fs_new_file(f);
	uint64_t other = tl_fs_new_file(f);
	assert_int_equal(wafl_sync(f->v), 0);
	fill_file(f, ino, 0xaa);
	fill_file(f, other, 0xcc);
	wafl_set_observer(f->v, &obs);

	/* CP n: stopped in its write-out. */
	g.gen = wafl_generation(f->v) + 1;
	pthread_create(&th, NULL, sync_thread, &j);
	pthread_mutex_lock(&g.lock);
	while (!g.stopped)
		pthread_cond_wait(&g.cond, &g.lock);
	pthread_mutex_unlock(&g.lock);

	/* Operations of n+1 meanwhile: overwrite one file, read the other
	 * (its blocks are CP n's pinned cache entries, not yet on disk). */
	fill_file(f, ino, 0xbb);
	expect_file(f, ino, 0xbb);
	expect_file(f, other, 0xcc);

	pthread_mutex_lock(&g.lock);
	g.go = true;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
	pthread_join(th, NULL);
	assert_int_equal(j.rc, 0);
	assert_int_equal(wafl_generation(f->v), g.gen);
	/* CP n wrote the frozen image, whole: nothing of n+1 in it. */
	assert_int_equal(g.seen_a, NBLK);
	assert_int_equal(g.seen_c, NBLK);
	assert_int_equal(g.seen_b, 0);

	/* CP n+1 writes the new data. */
	g.gen = wafl_generation(f->v) + 1;
	g.seen_a = g.seen_b = g.seen_c = g.seen_blocks = 0;
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(g.seen_b, NBLK);
	assert_int_equal(g.seen_a, 0);
	assert_int_equal(g.seen_c, 0);
	wafl_set_observer(f->v, NULL);

	struct wafl_check_result res;
	assert_int_equal(wafl_check(f->v, &res), 0);
	assert_int_equal(res.errors, 0);
	tl_fs_remount(f);
	expect_file(f, ino, 0xbb);
	expect_file(f, other, 0xcc);
	assert_int_equal(wafl_check(f->v, &res), 0);
	assert_int_equal(res.errors, 0);
	tl_fs_destroy(f);
}

/* Many CPs through a cache far smaller than one CP: pinned entries exceed
 * the bound until unpinned, evicted buffers are reused as dirty buffers,
 * and every block still reads back right after a remount. */
static void test_small_cache(void **state)
{
	struct tl_fs *f = tl_fs_create(4, 1, 16384, false);
	uint8_t *buf = malloc(64 * BS);

	(void)state;
	f->mo.cache_bytes = 64 * BS;
	tl_fs_remount(f);
	uint64_t ino = tl_fs_new_file(f);
	for (uint32_t round = 0; round < 8; round++) {
		for (uint32_t b = 0; b < 1024; b += 64) {
			tl_fill_pattern(buf, 64 * BS, round * 1024 + b);
			tl_fs_write(f, ino, (uint64_t)b * BS, buf, 64 * BS);
		}
		assert_int_equal(wafl_sync(f->v), 0);
	}
	tl_fs_remount(f);
	uint8_t *want = malloc(64 * BS);
	for (uint32_t b = 0; b < 1024; b += 64) {
		tl_fill_pattern(want, 64 * BS, 7 * 1024 + b);
		assert_int_equal(tl_fs_read(f, ino, (uint64_t)b * BS, buf,
		    64 * BS), 64 * BS);
		assert_memory_equal(buf, want, 64 * BS);
	}
	struct wafl_check_result res;
	assert_int_equal(wafl_check(f->v, &res), 0);
	assert_int_equal(res.errors, 0);
	free(want);
	free(buf);
	tl_fs_destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frozen_image),
		cmocka_unit_test(test_small_cache),
	};
	return cmocka_run_group_tests_name("wafl CP buffers", tests, NULL,
	    NULL);
}
