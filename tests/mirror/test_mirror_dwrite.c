/*
 * tests/mirror/test_mirror_dwrite.c: the destination's write-behind
 * (mirror/dwrite.c) on a volume whose disks are slow.
 *
 * Blocks are handed over in a walk's order: each run of 128 data blocks
 * after the pointer block allocated behind it (parent first), so most
 * stripes are whole in a batch, some complete only from the carry, and
 * a few are left partial until the drain.  The disks are throttled by
 * raid's fault injector, so the writer's chunks stay queued at the disks
 * long after the call that started them returned: a batch or a copy
 * buffer handed back before its chunks were written would be filled
 * with later blocks while they wait, and those would land on the earlier
 * VBNs.  After mdw_drain and raid_flush every VBN reads back its own
 * contents and every stripe's parity agrees (scrub).  After mdw_abort
 * part-way, the next transfer's blocks land the same way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "mirror/mir_impl.h"
#include "raid/raid.h"
#include "tests/lib/tl_raid.h"

#define NDATA		4u
#define GROUPS		40u	/* runs of 128 data blocks and their parent */
#define RUN		128u
#define SLOW_MBS	40u	/* per disk */

static void fill(uint8_t *b, uint64_t vbn, uint64_t salt)
{
	for (size_t i = 0; i < WAFL_BLOCK_SIZE; i += 8)
		fl_put_le64(b + i, (vbn + salt) * 0x9e3779b97f4a7c15ull + i);
}

/* One transfer's blocks from first, in a walk's order (see above). */
static void put_walk(struct mir_dwriter *w, uint64_t first, uint64_t salt)
{
	uint8_t b[WAFL_BLOCK_SIZE];

	for (uint64_t k = 0; k < GROUPS; k++) {
		uint64_t base = first + k * (RUN + 1);

		fill(b, base + RUN, salt);	/* the parent, first */
		assert_int_equal(mdw_put(w, base + RUN, 1, b), 0);
		for (uint64_t i = 0; i < RUN; i++) {
			fill(b, base + i, salt);
			assert_int_equal(mdw_put(w, base + i, 1, b), 0);
		}
	}
	/* A few scattered blocks, whose stripes never fill. */
	for (uint64_t i = 0; i < 5; i++) {
		uint64_t vbn = first + GROUPS * (RUN + 1) + 7 + i * 41;

		fill(b, vbn, salt);
		assert_int_equal(mdw_put(w, vbn, 1, b), 0);
	}
}

static uint64_t walk_end(uint64_t first)
{
	return first + GROUPS * (RUN + 1) + 7 + 4 * 41 + 1;
}

/* Every block put_walk(first, salt) handed over reads back. */
static void check_walk(struct tl_vol *t, uint64_t first, uint64_t salt)
{
	uint8_t got[WAFL_BLOCK_SIZE], want[WAFL_BLOCK_SIZE];
	uint64_t bad = 0;

	for (uint64_t k = 0; k < GROUPS; k++)
		for (uint64_t i = 0; i <= RUN; i++) {
			uint64_t vbn = first + k * (RUN + 1) + i;

			assert_int_equal(raid_read(t->v, vbn, 1, got), 0);
			fill(want, vbn, salt);
			bad += memcmp(got, want, sizeof(got)) != 0;
		}
	for (uint64_t i = 0; i < 5; i++) {
		uint64_t vbn = first + GROUPS * (RUN + 1) + 7 + i * 41;

		assert_int_equal(raid_read(t->v, vbn, 1, got), 0);
		fill(want, vbn, salt);
		bad += memcmp(got, want, sizeof(got)) != 0;
	}
	assert_int_equal(bad, 0);
}

static void throttle(struct tl_vol *t)
{
	for (size_t i = 0; i < raid_ndisks(t->v); i++)
		assert_int_equal(raid_fault_set(t->v, i, RAID_FAULT_THROTTLE,
		    SLOW_MBS, 0), 0);
}

static void start(struct tl_vol *t, struct mir_dwriter **w)
{
	struct mdw_opts o = { .raid = t->v, .batch_blocks = 512,
	    .carry_blocks = 1024 };

	assert_int_equal(mdw_start(&o, w), 0);
}

static void test_slow_disks(void **state)
{
	struct tl_vol t;
	struct mir_dwriter *w;
	struct raid_scrub_result sr;

	(void)state;
	assert_int_equal(tl_vol_create(&t, NULL, 1, NDATA, 1, 4096, true), 0);
	throttle(&t);
	start(&t, &w);
	put_walk(w, 3, 1);	/* not stripe-aligned */
	assert_int_equal(mdw_drain(w), 0);
	assert_int_equal(raid_flush(t.v), 0);
	check_walk(&t, 3, 1);
	mdw_stop(w);
	for (size_t i = 0; i < raid_ndisks(t.v); i++)
		assert_int_equal(raid_fault_set(t.v, i, RAID_FAULT_NONE, 0, 0),
		    0);
	assert_int_equal(raid_scrub(t.v, false, &sr), 0);
	assert_int_equal(sr.mismatches, 0);
	tl_vol_destroy(&t);
}

static void test_after_abort(void **state)
{
	struct tl_vol t;
	struct mir_dwriter *w;
	const uint64_t second = walk_end(0) + 2 * NDATA;

	(void)state;
	assert_int_equal(tl_vol_create(&t, NULL, 1, NDATA, 1, 4096, true), 0);
	throttle(&t);
	start(&t, &w);
	put_walk(w, 0, 7);
	mdw_abort(w);		/* some of it written, the rest dropped */
	put_walk(w, second, 9);
	assert_int_equal(mdw_drain(w), 0);
	assert_int_equal(raid_flush(t.v), 0);
	check_walk(&t, second, 9);
	mdw_stop(w);
	tl_vol_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slow_disks),
		cmocka_unit_test(test_after_abort),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
