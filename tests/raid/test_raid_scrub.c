/*
 * tests/raid/test_raid_scrub.c: scrub verifies every stripe's parity,
 * reports and repairs mismatches; raid_reconstruct + raid_repair, the hook
 * wafl uses when a block's checksum does not match.
 *
 *   clean volume            -> 0 mismatches, every stripe checked
 *   bits flipped in parity  -> exactly those stripes found; a check-only
 *   blocks (fault injector)    scrub repairs nothing; a repairing scrub
 *                              fixes them; the next scrub is clean; then
 *                              the data read back right with P data disks
 *                              failed, i.e. through the repaired parity
 *   a bit flipped in data   -> found as a mismatch of its stripe
 *   reconstruct + repair    -> a silently corrupt data block is rebuilt
 *                              from parity and rewritten in place
 *   degraded scrub          -> does no harm
 *   progress                -> raid_status shows the scrub while it runs
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/raid.h"
#include "tests/lib/tl_log.h"
#include "tests/lib/tl_raid.h"

static void make_vol(struct tl_vol *t, uint32_t ngroups, uint32_t n,
    uint32_t p, uint64_t disk_blocks, uint64_t seed)
{
	uint64_t rng = seed;

	assert_int_equal(tl_vol_create(t, NULL, ngroups, n, p, disk_blocks,
	    true), 0);
	assert_int_equal(tl_vol_fill(t, seed), 0);
	/* Some partial-stripe writes so both write paths left parity. */
	for (int i = 0; i < 20; i++) {
		uint64_t vbn = tl_rand_below(&rng, t->nvbns);
		uint32_t cnt = 1 + (uint32_t)tl_rand_below(&rng,
		    FL_MIN(t->nvbns - vbn, (uint64_t)n));
		assert_int_equal(tl_vol_write_random(t, vbn, cnt, &rng), 0);
	}
	assert_int_equal(raid_flush(t->v), 0);
}

static void scrub(struct tl_vol *t, bool repair, uint64_t mismatches,
    uint64_t repaired, const char *what)
{
	struct raid_scrub_result r;
	int rc;

	memset(&r, 0xff, sizeof(r));
	rc = raid_scrub(t->v, repair, &r);
	if (rc != 0)
		fail_msg("%s: scrub: %s", what, fl_strerror(rc));
	if (r.mismatches != mismatches || r.repaired != repaired ||
	    r.unreadable != 0 ||
	    r.stripes_checked != t->ngroups * t->disk_blocks)
		fail_msg("%s: scrub checked %llu mismatches %llu repaired "
		    "%llu unreadable %llu; expected %llu, %llu, %llu, 0",
		    what, (unsigned long long)r.stripes_checked,
		    (unsigned long long)r.mismatches,
		    (unsigned long long)r.repaired,
		    (unsigned long long)r.unreadable,
		    (unsigned long long)(t->ngroups * t->disk_blocks),
		    (unsigned long long)mismatches,
		    (unsigned long long)repaired);
}

static void verify(struct tl_vol *t, const char *what)
{
	int err;
	uint64_t bad = tl_vol_verify(t, &err);

	if (bad != 0)
		fail_msg("%s: %llu wrong blocks (first error %s)", what,
		    (unsigned long long)bad, fl_strerror(err));
}

static void test_scrub_clean(void **state)
{
	struct tl_vol t;
	struct raid_status st;

	make_vol(&t, 2, 4, 2, 64, 1);
	scrub(&t, false, 0, 0, "clean");
	scrub(&t, true, 0, 0, "clean, repair");
	assert_int_equal(tl_events_count(&t.events, RAID_EV_SCRUB_MISMATCH),
	    0);
	raid_status(t.v, &st);
	assert_false(st.scrubbing);
	verify(&t, "after clean scrubs");
	tl_vol_destroy(&t);
}

static void corrupt_parity_and_repair(uint32_t ngroups, uint32_t n,
    uint32_t p)
{
	struct tl_vol t;
	uint64_t rng = 31 * n + p;
	uint64_t per_group;
	bool hit[2][64] = { { false } };
	uint64_t nhit = 0;

	make_vol(&t, ngroups, n, p, 64, 2 + n + p);
	per_group = (uint64_t)n * t.disk_blocks;
	/* 9 flips into parity blocks; some stripes twice, both parities. */
	for (int i = 0; i < 9; i++) {
		uint32_t g = (uint32_t)tl_rand_below(&rng, ngroups);
		uint64_t s = (i == 8) ? 5 : tl_rand_below(&rng, t.disk_blocks);
		unsigned pi = (unsigned)(i % p);
		size_t disk;
		uint64_t blk;

		if (i == 7) {
			g = 0;
			s = 5;
		}
		assert_int_equal(raid_parity_locate(t.v, g * per_group +
		    s * n, pi, &disk, &blk), 0);
		assert_int_equal(blk, s);
		assert_int_equal(raid_fault_flip_bit(t.v, disk, blk,
		    (uint32_t)tl_rand_below(&rng, TL_BS * 8)), 0);
		if (i == 8 && p > 1) {
			/* And the same bit of another parity: still one
			 * stripe. */
			assert_int_equal(raid_parity_locate(t.v, g * per_group
			    + s * n, (pi + 1) % p, &disk, &blk), 0);
			assert_int_equal(raid_fault_flip_bit(t.v, disk, blk,
			    3), 0);
		}
		if (!hit[g][s])
			nhit++;
		hit[g][s] = true;
	}
	/* The data read back right: parity is not read on a healthy path. */
	verify(&t, "parity corrupt, healthy");
	scrub(&t, false, nhit, 0, "check only");
	assert_true(tl_events_count(&t.events, RAID_EV_SCRUB_MISMATCH) >= 1);
	scrub(&t, false, nhit, 0, "check only, again");
	scrub(&t, true, nhit, nhit, "repair");
	scrub(&t, false, 0, 0, "after repair");
	verify(&t, "after repair");
	/* The repaired parity reconstructs: P data disks of each group out. */
	for (uint32_t g = 0; g < ngroups; g++)
		for (uint32_t k = 0; k < p && k < n; k++)
			assert_int_equal(raid_fail_disk(t.v, tl_disk(&t, g, k),
			    "test"), 0);
	verify(&t, "after repair, degraded");
	/* Survives a reopen the same way. */
	tl_vol_close(&t);
	assert_int_equal(tl_vol_open(&t), 0);
	verify(&t, "reopened degraded");
	tl_vol_destroy(&t);
}

static void test_scrub_parity_p1(void **state)
{
	corrupt_parity_and_repair(1, 4, 1);
}

static void test_scrub_parity_p2(void **state)
{
	corrupt_parity_and_repair(2, 4, 2);
}

static void test_scrub_parity_p3(void **state)
{
	corrupt_parity_and_repair(1, 3, 3);
}

static void test_scrub_data_flip(void **state)
{
	struct tl_vol t;
	size_t disk;
	uint64_t blk;

	make_vol(&t, 1, 4, 2, 64, 3);
	/* Flip bits in data blocks of stripes 3 and 40. */
	assert_int_equal(raid_vbn_locate(t.v, 3 * 4 + 2, &disk, &blk), 0);
	assert_int_equal(raid_fault_flip_bit(t.v, disk, blk, 100), 0);
	assert_int_equal(raid_vbn_locate(t.v, 40 * 4 + 0, &disk, &blk), 0);
	assert_int_equal(raid_fault_flip_bit(t.v, disk, blk, 9000), 0);
	scrub(&t, false, 2, 0, "data flipped");
	tl_vol_destroy(&t);
}

/*
 * Single parity cannot tell which block of a mismatching stripe is wrong.
 * A repairing scrub trusts the data and rewrites parity from it; when a
 * data block was the damaged one it stays damaged, and parity no longer
 * holds its good value.  The log must say which side was trusted.
 */
static void test_scrub_p1_says_what_it_trusts(void **state)
{
	struct tl_vol t;
	uint8_t buf[TL_BS];
	size_t disk;
	uint64_t blk, vbn = 7 * 4 + 1;

	(void)state;
	make_vol(&t, 1, 4, 1, 64, 6);
	assert_int_equal(raid_vbn_locate(t.v, vbn, &disk, &blk), 0);
	assert_int_equal(raid_fault_flip_bit(t.v, disk, blk, 77), 0);
	tl_log_capture_start(FL_LOG_INFO);
	scrub(&t, true, 1, 1, "P = 1, a data block damaged");
	if (tl_log_count_with("stripe 7", "trusting the data",
	    "parity rewritten", NULL) != 1) {
		tl_log_dump("scrub p1");
		fail_msg("the scrub's repair does not say that it trusted "
		    "the data and rewrote parity");
	}
	tl_log_capture_stop();
	/* What the log warns of: the damaged block is what parity says
	 * now, too. */
	assert_int_equal(raid_reconstruct(t.v, vbn, 0, buf), 0);
	assert_memory_not_equal(buf, tl_shadow(&t, vbn), TL_BS);
	tl_vol_destroy(&t);
}

/* The wafl hook: a block whose checksum fails is rebuilt from parity and
 * rewritten in place. */
static void test_reconstruct_and_repair(void **state)
{
	struct tl_vol t;
	uint8_t buf[TL_BS];
	uint64_t vbns[] = { 0, 7, 13, 50, 127 };

	make_vol(&t, 2, 4, 1, 16, 4);
	for (size_t i = 0; i < FL_ARRAY_SIZE(vbns); i++) {
		size_t disk;
		uint64_t blk, vbn = vbns[i];

		assert_int_equal(raid_vbn_locate(t.v, vbn, &disk, &blk), 0);
		assert_int_equal(raid_fault_flip_bit(t.v, disk, blk,
		    (uint32_t)(i * 4099 % 32768)), 0);
		/* Nothing in raid can tell: the read returns the bad copy. */
		assert_int_equal(raid_read(t.v, vbn, 1, buf), 0);
		assert_memory_not_equal(buf, tl_shadow(&t, vbn), TL_BS);
		assert_int_equal(raid_reconstruct(t.v, vbn, 0, buf), 0);
		assert_memory_equal(buf, tl_shadow(&t, vbn), TL_BS);
		assert_int_equal(raid_repair(t.v, vbn, buf), 0);
		memset(buf, 0, sizeof(buf));
		assert_int_equal(raid_read(t.v, vbn, 1, buf), 0);
		assert_memory_equal(buf, tl_shadow(&t, vbn), TL_BS);
	}
	assert_int_equal(raid_flush(t.v), 0);
	scrub(&t, false, 0, 0, "after repairs");
	tl_vol_close(&t);
	assert_int_equal(tl_vol_open(&t), 0);
	verify(&t, "reopened after repairs");
	tl_vol_destroy(&t);
}

/* A scrub of a degraded volume may check less, but must not harm. */
static void test_scrub_degraded(void **state)
{
	struct tl_vol t;
	struct raid_scrub_result r;

	make_vol(&t, 1, 4, 1, 64, 5);
	assert_int_equal(raid_fail_disk(t.v, tl_disk(&t, 0, 2), "test"), 0);
	(void)raid_scrub(t.v, true, &r);
	assert_int_equal(r.repaired, 0);
	verify(&t, "after degraded scrub");
	tl_vol_destroy(&t);

	/* P = 2 with one disk out: the other parity still verifies. */
	make_vol(&t, 1, 4, 2, 64, 6);
	assert_int_equal(raid_fail_disk(t.v, tl_disk(&t, 0, 1), "test"), 0);
	memset(&r, 0, sizeof(r));
	assert_int_equal(raid_scrub(t.v, true, &r), 0);
	assert_int_equal(r.mismatches, 0);
	assert_int_equal(r.repaired, 0);
	verify(&t, "after scrub with one of two parities spent");
	tl_vol_destroy(&t);
}

struct scrub_arg {
	struct tl_vol *t;
	int rc;
	struct raid_scrub_result r;
};

static void *scrub_thread(void *p)
{
	struct scrub_arg *a = p;

	int rc = raid_scrub(a->t->v, false, &a->r);

	__atomic_store_n(&a->rc, rc, __ATOMIC_RELEASE);
	return NULL;
}

static void test_scrub_progress(void **state)
{
	struct tl_vol t;
	struct scrub_arg a;
	pthread_t th;
	bool seen = false, mono = true;
	uint64_t last = 0, total = 0, polls = 0;

	assert_int_equal(tl_vol_create(&t, NULL, 1, 4, 1, 4096, false), 0);
	assert_int_equal(tl_vol_fill(&t, 7), 0);
	a.t = &t;
	a.rc = -1;
	assert_int_equal(pthread_create(&th, NULL, scrub_thread, &a), 0);
	for (;;) {
		struct raid_status st;
		raid_status(t.v, &st);
		polls++;
		if (st.scrubbing) {
			seen = true;
			total = st.scrub_total;
			if (st.scrub_done < last || st.scrub_done > total)
				mono = false;
			last = st.scrub_done;
		}
		if (seen && !st.scrubbing)
			break;
		if (!seen && __atomic_load_n(&a.rc, __ATOMIC_ACQUIRE) != -1)
			break;
		sched_yield();
	}
	pthread_join(th, NULL);
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.r.mismatches, 0);
	if (!seen)
		fail_msg("a scrub of 4096 stripes was never visible in "
		    "raid_status (%llu polls)", (unsigned long long)polls);
	assert_true(mono);
	assert_int_equal(total, 4096);
	tl_vol_destroy(&t);
}

/*
 * A repairing scrub racing partial-stripe writes must never write parity
 * computed from data that a writer has replaced meanwhile: afterwards the
 * parity is consistent everywhere and rebuilds everything with a disk out.
 */
struct racer {
	struct tl_vol *t;
	int rc;
	int stop;	/* atomic */
};

static void *race_writer(void *p)
{
	struct racer *r = p;
	uint64_t rng = 4711;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		uint64_t vbn = tl_rand_below(&rng, r->t->nvbns);
		int rc = tl_vol_write_random(r->t, vbn, 1, &rng);
		if (rc != 0) {
			r->rc = rc;
			break;
		}
	}
	return NULL;
}

static void test_scrub_races_writes(void **state)
{
	struct tl_vol t;
	struct racer r = { 0 };
	pthread_t th;
	struct raid_scrub_result res;

	make_vol(&t, 1, 4, 1, 1024, 8);
	r.t = &t;
	assert_int_equal(pthread_create(&th, NULL, race_writer, &r), 0);
	for (int i = 0; i < 3; i++) {
		memset(&res, 0, sizeof(res));
		assert_int_equal(raid_scrub(t.v, true, &res), 0);
		/* Nothing was corrupt: a "mismatch" here would be a scrub
		 * reading a stripe in the middle of a write. */
		assert_int_equal(res.mismatches, 0);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(raid_flush(t.v), 0);
	scrub(&t, false, 0, 0, "after racing scrubs");
	for (uint32_t d = 0; d < 5; d += 2) {
		tl_vol_close(&t);
		assert_int_equal(tl_vol_open(&t), 0);
		if (d < 4)
			assert_int_equal(raid_fail_disk(t.v, d, "test"), 0);
		verify(&t, "after racing scrubs, one disk out");
		/* Bring the disk back for the next round: rebuild. */
		if (d < 4) {
			char name[64];
			snprintf(name, sizeof(name), "spare%u.img", d);
			size_t k = tl_vol_add_path(&t, name);
			assert_int_equal(raid_add_spare(t.v, t.paths[k]), 0);
			assert_int_equal(raid_rebuild_start(t.v), 0);
			assert_int_equal(raid_rebuild_wait(t.v), 0);
			/* The new member takes position d in t->paths. */
			char *tmp = t.paths[d];
			t.paths[d] = t.paths[k];
			t.paths[k] = tmp;
			free(t.paths[k]);
			t.npaths--;
		}
	}
	tl_vol_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scrub_clean),
		cmocka_unit_test(test_scrub_parity_p1),
		cmocka_unit_test(test_scrub_parity_p2),
		cmocka_unit_test(test_scrub_parity_p3),
		cmocka_unit_test(test_scrub_data_flip),
		cmocka_unit_test(test_scrub_p1_says_what_it_trusts),
		cmocka_unit_test(test_reconstruct_and_repair),
		cmocka_unit_test(test_scrub_degraded),
		cmocka_unit_test(test_scrub_progress),
		cmocka_unit_test(test_scrub_races_writes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
