/*
 * tests/raid/test_raid_smoke.c: a quick end-to-end pass over raid/: create
 * a small volume of image files, write and read back, check that whole
 * stripes read nothing (R3), fail a disk and read back through parity (R1),
 * close and open again.  The deep tests live in the other tests/raid/
 * runners.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "raid/raid.h"

#define NG	2
#define ND	4
#define NP	2
#define NDISKS	(NG * (ND + NP))
#define DBLOCKS	64
#define BS	RAID_BLOCK_SIZE

struct smoke {
	char dir[64];
	char path[NDISKS + 2][96];
	const char *paths[NDISKS + 2];
	raid_vol_t *v;
	uint8_t *shadow;	/* expected contents of every VBN */
	uint64_t nvbns;
};

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill(uint8_t *p, size_t len, uint64_t *s)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t r = rng_next(s);

		memcpy(p + i, &r, 8);
	}
}

static int setup(void **state)
{
	struct smoke *t = calloc(1, sizeof(*t));
	struct raid_create_opts c = {
		.ngroups = NG, .ndata = ND, .nparity = NP,
		.disk_blocks = DBLOCKS,
	};
	struct raid_geometry g;

	fl_log_set_level(FL_LOG_ERR);
	assert_non_null(t);
	snprintf(t->dir, sizeof(t->dir), "/tmp/raid-smoke-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	for (int i = 0; i < NDISKS + 2; i++) {
		char dir[sizeof(t->dir)];

		memcpy(dir, t->dir, sizeof(dir));
		snprintf(t->path[i], sizeof(t->path[i]), "%s/d%02d.img", dir,
		    i);
		t->paths[i] = t->path[i];
	}
	c.paths = t->paths;
	assert_int_equal(raid_create(&c, NULL, &t->v), 0);
	raid_geometry(t->v, &g);
	assert_int_equal(g.ngroups, NG);
	assert_int_equal(g.stripe_width, ND);
	assert_true(g.nvbns == (uint64_t)NG * ND * DBLOCKS);
	t->nvbns = g.nvbns;
	t->shadow = calloc(t->nvbns, BS);
	assert_non_null(t->shadow);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct smoke *t = *state;

	raid_close(t->v);
	for (int i = 0; i < NDISKS + 2; i++)
		unlink(t->path[i]);
	rmdir(t->dir);
	free(t->shadow);
	free(t);
	return 0;
}

static void verify_all(struct smoke *t)
{
	uint8_t *buf = malloc(t->nvbns * BS);

	assert_non_null(buf);
	assert_int_equal(raid_read(t->v, 0, (uint32_t)t->nvbns, buf), 0);
	for (uint64_t b = 0; b < t->nvbns; b++)
		if (memcmp(buf + b * BS, t->shadow + b * BS, BS) != 0)
			fail_msg("vbn %llu reads back wrong",
			    (unsigned long long)b);
	free(buf);
}

static void test_write_read(void **state)
{
	struct smoke *t = *state;
	uint64_t rng = 1;
	uint8_t buf[3 * BS];

	/* A fresh volume reads zero. */
	verify_all(t);
	/* Ragged writes: partial stripes, one crossing a stripe boundary. */
	for (int i = 0; i < 20; i++) {
		uint64_t vbn = rng_next(&rng) % (t->nvbns - 3);
		uint32_t n = 1 + (uint32_t)(rng_next(&rng) % 3);

		fill(buf, (size_t)n * BS, &rng);
		assert_int_equal(raid_write(t->v, vbn, n, buf), 0);
		memcpy(t->shadow + vbn * BS, buf, (size_t)n * BS);
	}
	assert_int_equal(raid_flush(t->v), 0);
	verify_all(t);
	assert_int_equal(raid_read(t->v, t->nvbns, 1, buf), -ERANGE);
}

static void test_full_stripes_read_nothing(void **state)
{
	struct smoke *t = *state;
	const uint32_t ns = 8;
	uint8_t *buf = malloc((size_t)ns * ND * BS);
	struct raid_status st;
	uint64_t rng = 2;

	assert_non_null(buf);
	fill(buf, (size_t)ns * ND * BS, &rng);
	raid_counters_reset(t->v);
	/* Both entry points; the second crosses into group 1. */
	assert_int_equal(raid_write_stripes(t->v, 4 * ND, ns, buf), 0);
	memcpy(t->shadow + 4 * ND * BS, buf, (size_t)ns * ND * BS);
	assert_int_equal(raid_write(t->v, (DBLOCKS - 4) * ND, ns * ND, buf),
	    0);
	memcpy(t->shadow + (DBLOCKS - 4) * ND * BS, buf, (size_t)ns * ND * BS);
	raid_status(t->v, &st);
	assert_true(st.counters.full_stripe_writes == 2 * ns);
	assert_true(st.counters.partial_stripe_writes == 0);
	assert_true(st.counters.parity_reads == 0);
	assert_true(st.counters.partial_reads == 0);
	assert_true(st.counters.parity_writes == 2 * ns * NP);
	assert_int_equal(raid_write_stripes(t->v, 1, 1, buf), -EINVAL);
	assert_int_equal(raid_flush(t->v), 0);
	verify_all(t);
	free(buf);
}

static void test_degraded_and_reopen(void **state)
{
	struct smoke *t = *state;
	struct raid_disk_info di;
	struct raid_status st;
	uint8_t blk[BS];
	uint64_t rng = 3;
	size_t disk;
	uint64_t block;

	/* Fail the disk holding vbn 5 and one parity disk of group 0. */
	assert_int_equal(raid_vbn_locate(t->v, 5, &disk, &block), 0);
	assert_int_equal(raid_fail_disk(t->v, disk, "smoke"), 0);
	{
		size_t pd;
		uint64_t pb;

		assert_int_equal(raid_parity_locate(t->v, 5, 0, &pd, &pb), 0);
		assert_true(pb == block);
		assert_int_equal(raid_fail_disk(t->v, pd, "smoke parity"), 0);
	}
	assert_int_equal(raid_disk_info(t->v, disk, &di), 0);
	assert_int_equal(di.state, RAID_DISK_FAILED);
	assert_non_null(strstr(di.reason, "smoke"));
	raid_status(t->v, &st);
	assert_true(st.degraded);
	assert_false(st.offline);
	verify_all(t);

	/* Writes go on degraded, partial and full. */
	fill(blk, BS, &rng);
	assert_int_equal(raid_write(t->v, 5, 1, blk), 0);
	memcpy(t->shadow + 5 * BS, blk, BS);
	assert_int_equal(raid_write(t->v, 6, 1, blk), 0);
	memcpy(t->shadow + 6 * BS, blk, BS);
	assert_int_equal(raid_flush(t->v), 0);
	verify_all(t);

	/* reconstruct on a healthy disk agrees with the data. */
	assert_int_equal(raid_reconstruct(t->v, 9, 0, blk), 0);
	assert_memory_equal(blk, t->shadow + 9 * BS, BS);

	/* Close, open: the failed disk is stale now and stays out. */
	raid_close(t->v);
	t->v = NULL;
	assert_int_equal(raid_open(t->paths, NDISKS, NULL, &t->v), 0);
	assert_int_equal(raid_disk_info(t->v, disk, &di), 0);
	assert_int_not_equal(di.state, RAID_DISK_OK);
	verify_all(t);

	/* Two spares, two rebuilds, and everything healthy again. */
	assert_int_equal(raid_add_spare(t->v, t->paths[NDISKS]), 0);
	assert_int_equal(raid_add_spare(t->v, t->paths[NDISKS + 1]), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(raid_rebuild_start(t->v), 0);
		assert_int_equal(raid_rebuild_wait(t->v), 0);
	}
	assert_int_equal(raid_rebuild_start(t->v), -ENOENT);
	raid_status(t->v, &st);
	assert_false(st.degraded);
	verify_all(t);
	{
		struct raid_scrub_result res;

		assert_int_equal(raid_scrub(t->v, false, &res), 0);
		assert_true(res.mismatches == 0);
		assert_true(res.stripes_checked == (uint64_t)NG * DBLOCKS);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_read),
		cmocka_unit_test(test_full_stripes_read_nothing),
		cmocka_unit_test(test_degraded_and_reopen),
	};

	return cmocka_run_group_tests_name("raid_smoke", tests, setup,
	    teardown);
}
