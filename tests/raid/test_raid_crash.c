/*
 * tests/raid/test_raid_crash.c: the write hole (R4), with the fault
 * injector's crash simulator (SQLite's crash VFS, in spirit).
 *
 * Each iteration starts from the same flushed base dataset, does a few
 * rounds of random writes each followed by a flush (so "last flushed"
 * moves), then issues partial-stripe (and some full-stripe) writes to SOME
 * blocks without a flush -- those blocks are "in flight" -- and crashes
 * with RAID_CRASH_DROP_ALL, _RANDOM or _TEAR and a per-iteration seed.
 * After the crash every I/O fails with -FL_ECRASHED; the volume is closed
 * and reopened (the write-intent resync runs).  Then:
 *   - every block not in flight reads back its last flushed value;
 *   - an in-flight block reads back the old or the new value (DROP_ALL,
 *     RANDOM; with DROP_ALL too, since a disk sync made for a later
 *     write-intent record makes that disk's earlier writes durable), or
 *     each 512-byte sector old or new (TEAR);
 *   - a scrub finds parity consistent everywhere;
 *   - P disks of a group are failed (every choice across iterations) and
 *     all the above holds again, now through reconstruction: a crash
 *     between data and parity writes left no parity that would rebuild
 *     wrong data for a block that was not being written.
 * 72 iterations over three geometries and the three modes.  The bands lie
 * in write-intent regions 0 and 1, so a write to region 1 after one to
 * region 0 is often covered only by the mark ahead made for region 0
 * (intent.c); test_crash_in_region_marked_ahead makes that case every
 * time (it fails if the mark ahead is not on disk before the writes).
 */
#include <fcntl.h>
#include <pthread.h>
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
#include "common/util.h"
#include "raid/raid.h"
#include "tests/lib/tl_raid.h"

/* Two write-intent regions' worth of stripes, data in two bands. */
#define DISK_BLOCKS	1100
#define BAND_STRIPES	40
static const uint64_t band_start[2] = { 0, 1030 };

#define ITERATIONS	24	/* per geometry */

struct crash_case {
	struct tl_vol t;
	uint8_t *golden;	/* shadow of the base dataset */
	uint8_t *newdata;	/* in-flight contents, by vbn */
	bool *inflight;
	uint64_t stripes_per_group;
};

static uint64_t random_stripe(struct crash_case *c, uint64_t *rng)
{
	uint32_t g = (uint32_t)tl_rand_below(rng, c->t.ngroups);
	uint64_t s = band_start[tl_rand_below(rng, 2)] +
	    tl_rand_below(rng, BAND_STRIPES);

	return g * c->stripes_per_group + s;	/* volume-wide stripe */
}

static void setup_case(struct crash_case *c, uint32_t ngroups, uint32_t n,
    uint32_t p)
{
	struct tl_vol *t = &c->t;
	uint64_t rng = 1000 + n * 10 + p;

	memset(c, 0, sizeof(*c));
	assert_int_equal(tl_vol_create(t, NULL, ngroups, n, p, DISK_BLOCKS,
	    true), 0);
	c->stripes_per_group = DISK_BLOCKS;
	for (uint32_t g = 0; g < ngroups; g++) {
		for (int b = 0; b < 2; b++) {
			uint64_t vbn = (g * c->stripes_per_group +
			    band_start[b]) * n;
			tl_fill_random(tl_shadow(t, vbn),
			    (size_t)BAND_STRIPES * n * TL_BS, &rng);
			assert_int_equal(raid_write_stripes(t->v, vbn,
			    BAND_STRIPES, tl_shadow(t, vbn)), 0);
		}
	}
	assert_int_equal(raid_flush(t->v), 0);
	tl_vol_close(t);
	assert_int_equal(tl_vol_save_images(t, "golden"), 0);
	c->golden = malloc(t->nvbns * TL_BS);
	c->newdata = malloc(t->nvbns * TL_BS);
	c->inflight = calloc(t->nvbns, sizeof(bool));
	assert_non_null(c->golden);
	assert_non_null(c->newdata);
	assert_non_null(c->inflight);
	memcpy(c->golden, t->shadow, t->nvbns * TL_BS);
}

static void teardown_case(struct crash_case *c)
{
	free(c->golden);
	free(c->newdata);
	free(c->inflight);
	tl_vol_destroy(&c->t);
}

/* One write: a partial range of a stripe, or (1 in 4) a whole stripe or
 * two.  Returns its first vbn and count. */
static void pick_write(struct crash_case *c, uint64_t *rng, uint64_t *vbn,
    uint32_t *cnt)
{
	uint32_t n = c->t.ndata;
	uint64_t s = random_stripe(c, rng);

	if (tl_rand_below(rng, 4) == 0) {
		uint64_t within = s % c->stripes_per_group;
		*vbn = s * n;
		*cnt = n * (within + 1 < DISK_BLOCKS &&
		    tl_rand_below(rng, 2) ? 2 : 1);
		return;
	}
	uint32_t off = (uint32_t)tl_rand_below(rng, n);
	*vbn = s * n + off;
	*cnt = 1 + (uint32_t)tl_rand_below(rng, n - off);
	if (*cnt == n && n > 1)
		(*cnt)--;	/* partial */
}

static bool sector_ok(const uint8_t *got, const uint8_t *old,
    const uint8_t *nw, enum raid_crash_mode mode)
{
	switch (mode) {
	case RAID_CRASH_DROP_ALL:
		/* Not only old: a disk sync made for a later write-intent
		 * record also made earlier writes on that disk durable, as a
		 * real disk's cache flush does. */
	case RAID_CRASH_RANDOM:
		return memcmp(got, old, TL_BS) == 0 ||
		    memcmp(got, nw, TL_BS) == 0;
	case RAID_CRASH_TEAR:
		for (unsigned k = 0; k < TL_BS; k += 512) {
			if (memcmp(got + k, old + k, 512) != 0 &&
			    memcmp(got + k, nw + k, 512) != 0)
				return false;
		}
		return true;
	}
	return false;
}

/* Which sectors of a wrong in-flight block are old, new, zero, other. */
static void describe(const uint8_t *got, const uint8_t *old,
    const uint8_t *nw, uint64_t vbn)
{
	static const uint8_t zero[512];
	char map[TL_BS / 512 + 1];

	for (unsigned k = 0; k < TL_BS / 512; k++) {
		const uint8_t *g = got + k * 512;
		map[k] = memcmp(g, old + k * 512, 512) == 0 ? 'o' :
		    memcmp(g, nw + k * 512, 512) == 0 ? 'n' :
		    memcmp(g, zero, 512) == 0 ? '0' : '?';
	}
	map[TL_BS / 512] = '\0';
	fprintf(stderr, "  in-flight vbn %llu sectors (o old, n new, 0 zero, "
	    "? other): %s\n", (unsigned long long)vbn, map);
}

static void check_blocks(struct crash_case *c, enum raid_crash_mode mode,
    int it, const char *stage)
{
	struct tl_vol *t = &c->t;
	uint8_t *buf = malloc((size_t)t->ndata * TL_BS);
	uint64_t bad = 0, badflight = 0, first = UINT64_MAX;

	assert_non_null(buf);
	for (uint64_t vbn = 0; vbn < t->nvbns; vbn += t->ndata) {
		int rc = raid_read(t->v, vbn, t->ndata, buf);
		if (rc != 0)
			fail_msg("iteration %d %s: read vbn %llu: %s", it,
			    stage, (unsigned long long)vbn, fl_strerror(rc));
		for (uint32_t i = 0; i < t->ndata; i++) {
			uint64_t b = vbn + i;
			const uint8_t *got = buf + (size_t)i * TL_BS;
			if (!c->inflight[b]) {
				if (memcmp(got, tl_shadow(t, b), TL_BS) != 0) {
					bad++;
					first = FL_MIN(first, b);
				}
			} else if (!sector_ok(got, tl_shadow(t, b),
			    c->newdata + b * TL_BS, mode)) {
				if (badflight++ == 0)
					describe(got, tl_shadow(t, b),
					    c->newdata + b * TL_BS, b);
				first = FL_MIN(first, b);
			}
		}
	}
	free(buf);
	if (bad != 0 || badflight != 0)
		fail_msg("iteration %d (mode %d) %s: %llu blocks not in "
		    "flight lost their flushed value, %llu in-flight blocks "
		    "hold neither old nor new; first vbn %llu", it, mode,
		    stage, (unsigned long long)bad,
		    (unsigned long long)badflight, (unsigned long long)first);
}

static void crash_and_check(struct crash_case *c, int it,
    enum raid_crash_mode mode, uint64_t seed);

static void one_iteration(struct crash_case *c, int it, uint64_t seed)
{
	static const enum raid_crash_mode modes[] = {
		RAID_CRASH_DROP_ALL, RAID_CRASH_RANDOM, RAID_CRASH_TEAR,
	};
	enum raid_crash_mode mode = modes[it % 3];
	struct tl_vol *t = &c->t;
	uint64_t rng = seed;
	int nflight = 0;

	assert_int_equal(tl_vol_restore_images(t, "golden"), 0);
	memcpy(t->shadow, c->golden, t->nvbns * TL_BS);
	memset(c->inflight, 0, t->nvbns * sizeof(bool));
	t->fault_inject = true;
	assert_int_equal(tl_vol_open(t), 0);

	/* Flushed rounds: these become the "last flushed" values. */
	for (int r = (int)tl_rand_below(&rng, 3); r > 0; r--) {
		for (int k = 1 + (int)tl_rand_below(&rng, 6); k > 0; k--) {
			uint64_t vbn;
			uint32_t cnt;
			pick_write(c, &rng, &vbn, &cnt);
			assert_int_equal(tl_vol_write_random(t, vbn, cnt,
			    &rng), 0);
		}
		assert_int_equal(raid_flush(t->v), 0);
	}

	/* The writes in flight at the crash: each block at most once. */
	for (int k = 1 + (int)tl_rand_below(&rng, 8); k > 0; k--) {
		uint64_t vbn;
		uint32_t cnt;
		bool overlap = false;

		pick_write(c, &rng, &vbn, &cnt);
		for (uint32_t i = 0; i < cnt; i++)
			overlap |= c->inflight[vbn + i];
		if (overlap)
			continue;
		tl_fill_random(c->newdata + vbn * TL_BS, (size_t)cnt * TL_BS,
		    &rng);
		assert_int_equal(raid_write(t->v, vbn, cnt,
		    c->newdata + vbn * TL_BS), 0);
		for (uint32_t i = 0; i < cnt; i++)
			c->inflight[vbn + i] = true;
		nflight++;
	}
	assert_true(nflight > 0);
	crash_and_check(c, it, mode, seed);
}

/*
 * Crash with the writes in flight (c->inflight, c->newdata), reopen (the
 * write-intent resync), then check every block, a scrub, and every block
 * again with P disks of each group failed.
 */
static void crash_and_check(struct crash_case *c, int it,
    enum raid_crash_mode mode, uint64_t seed)
{
	struct tl_vol *t = &c->t;
	uint32_t w = t->ndata + t->nparity;
	uint8_t blk[TL_BS];
	struct raid_scrub_result sr;
	int rc;

	assert_true(raid_fault_pending(t->v) > 0);
	assert_int_equal(raid_fault_crash(t->v, mode, seed), 0);
	assert_int_equal(raid_read(t->v, 0, 1, blk), -FL_ECRASHED);
	assert_int_equal(raid_write(t->v, 0, 1, blk), -FL_ECRASHED);
	tl_vol_close(t);

	/* Reopen: the write-intent resync. */
	tl_events_reset(&t->events);
	t->fault_inject = (it % 2) == 0;
	rc = tl_vol_open(t);
	if (rc != 0)
		fail_msg("iteration %d: reopen after crash: %s", it,
		    fl_strerror(rc));
	assert_true(tl_events_count(&t->events, RAID_EV_RESYNC) >= 1);
	check_blocks(c, mode, it, "after resync");
	memset(&sr, 0, sizeof(sr));
	assert_int_equal(raid_scrub(t->v, false, &sr), 0);
	if (sr.mismatches != 0)
		fail_msg("iteration %d: %llu stripes with stale parity after "
		    "resync", it, (unsigned long long)sr.mismatches);

	/* P disks out in every group: parity must rebuild what was there.
	 * The choice of disks walks every P-subset across iterations. */
	unsigned masks[64], nmasks = 0;
	for (unsigned m = 0; m < (1u << w) && nmasks < 64; m++)
		if ((unsigned)__builtin_popcount(m) == t->nparity)
			masks[nmasks++] = m;
	for (uint32_t g = 0; g < t->ngroups; g++) {
		unsigned m = masks[(unsigned)(it + 3 * g) % nmasks];
		for (uint32_t k = 0; k < w; k++)
			if (m & (1u << k))
				assert_int_equal(raid_fail_disk(t->v,
				    tl_disk(t, g, k), "test"), 0);
	}
	check_blocks(c, mode, it, "degraded after crash");
	tl_vol_close(t);
}

static void run_geometry(uint32_t ngroups, uint32_t n, uint32_t p)
{
	struct crash_case c;

	fl_log_set_level(FL_LOG_ERR);
	setup_case(&c, ngroups, n, p);
	for (int it = 0; it < ITERATIONS; it++)
		one_iteration(&c, it, 0xc0ffee + 1000 * n + 100 * p + it);
	teardown_case(&c);
	fl_log_set_level(FL_LOG_INFO);
}

static void test_crash_4p1(void **state)
{
	run_geometry(1, 4, 1);
}

static void test_crash_3p2(void **state)
{
	run_geometry(1, 3, 2);
}

static void test_crash_2groups_2p1(void **state)
{
	run_geometry(2, 2, 1);
}

/*
 * A crash right after a flush loses nothing.  (The simulator may still hold
 * writes issued by the flush itself, such as write-intent bits being
 * cleared; dropping or tearing those must not matter.)
 */
static void test_crash_after_flush(void **state)
{
	struct crash_case c;
	struct tl_vol *t = &c.t;
	uint64_t rng = 3;

	setup_case(&c, 1, 4, 1);
	assert_int_equal(tl_vol_restore_images(t, "golden"), 0);
	t->fault_inject = true;
	assert_int_equal(tl_vol_open(t), 0);
	for (int k = 0; k < 10; k++) {
		uint64_t vbn;
		uint32_t cnt;
		pick_write(&c, &rng, &vbn, &cnt);
		assert_int_equal(tl_vol_write_random(t, vbn, cnt, &rng), 0);
	}
	assert_int_equal(raid_flush(t->v), 0);
	assert_int_equal(raid_fault_crash(t->v, RAID_CRASH_TEAR, 9), 0);
	tl_vol_close(t);
	assert_int_equal(tl_vol_open(t), 0);
	check_blocks(&c, RAID_CRASH_DROP_ALL, -1, "crash after flush");
	assert_int_equal(raid_fail_disk(t->v, tl_disk(t, 0, 0), "test"), 0);
	check_blocks(&c, RAID_CRASH_DROP_ALL, -1, "crash after flush, "
	    "degraded");
	teardown_case(&c);
}

/* One in-flight write of cnt random blocks at vbn. */
static void write_in_flight(struct crash_case *c, uint64_t vbn, uint32_t cnt,
    uint64_t *rng)
{
	tl_fill_random(c->newdata + vbn * TL_BS, (size_t)cnt * TL_BS, rng);
	assert_int_equal(raid_write(c->t.v, vbn, cnt,
	    c->newdata + vbn * TL_BS), 0);
	for (uint32_t i = 0; i < cnt; i++)
		c->inflight[vbn + i] = true;
}

/*
 * Writes covered only by a mark ahead (intent.c): a writer moving from
 * region 0 into region 1 writes no mark of its own there, because the
 * mark it made for region 0 covered region 1 too.  Partial-stripe writes
 * in flight in region 1 at the crash must be resynced all the same.
 */
static void test_crash_in_region_marked_ahead(void **state)
{
	static const enum raid_crash_mode modes[] = {
		RAID_CRASH_DROP_ALL, RAID_CRASH_RANDOM, RAID_CRASH_TEAR,
	};
	struct crash_case c;
	struct tl_vol *t = &c.t;

	(void)state;
	fl_log_set_level(FL_LOG_ERR);
	setup_case(&c, 1, 4, 1);
	for (int it = 0; it < 9; it++) {
		uint64_t rng = 4242 + (uint64_t)it;
		struct raid_status st;
		uint64_t marks;

		assert_int_equal(tl_vol_restore_images(t, "golden"), 0);
		memcpy(t->shadow, c.golden, t->nvbns * TL_BS);
		memset(c.inflight, 0, t->nvbns * sizeof(bool));
		t->fault_inject = true;
		assert_int_equal(tl_vol_open(t), 0);
		/* Region 0, flushed: the writer is there now, its bit is
		 * cleared by the flush. */
		assert_int_equal(tl_vol_write_random(t, 3 * 4 + 1, 2, &rng),
		    0);
		assert_int_equal(raid_flush(t->v), 0);
		/* In flight: region 0 again (a mark, and region 1 ahead),
		 * then partial stripes of region 1 with no mark of their
		 * own. */
		write_in_flight(&c, 5 * 4 + 2, 1, &rng);
		raid_status(t->v, &st);
		marks = st.counters.intent_writes;
		for (int k = 0; k < 6; k++)
			write_in_flight(&c, (band_start[1] + 3 + 5 * (uint64_t)k)
			    * 4 + (uint64_t)(k % 4), 1 + (uint32_t)(k % 3),
			    &rng);
		raid_status(t->v, &st);
		assert_int_equal(st.counters.intent_writes, marks);
		crash_and_check(&c, it, modes[it % 3], rng);
	}
	teardown_case(&c);
	fl_log_set_level(FL_LOG_INFO);
}

/*
 * The degraded write hole: a data disk already failed, partial-stripe
 * writes in flight to OTHER blocks of its stripes, crash.  The failed
 * disk's blocks were not being written; after the reopen they can only be
 * produced from parity, which the crash may have left stale.  R1: each
 * read returns the last flushed data or an error, never other data.
 */
static void test_crash_while_degraded(void **state)
{
	struct crash_case c;
	struct tl_vol *t = &c.t;
	uint8_t *buf;
	uint64_t wrong = 0, errors = 0, right = 0;

	fl_log_set_level(FL_LOG_ERR);
	setup_case(&c, 1, 4, 1);
	buf = malloc(TL_BS);
	assert_non_null(buf);
	for (int it = 0; it < 12; it++) {
		uint64_t rng = 777 + (uint64_t)it;
		enum raid_crash_mode mode = it % 2 ? RAID_CRASH_RANDOM :
		    RAID_CRASH_TEAR;

		assert_int_equal(tl_vol_restore_images(t, "golden"), 0);
		memcpy(t->shadow, c.golden, t->nvbns * TL_BS);
		memset(c.inflight, 0, t->nvbns * sizeof(bool));
		t->fault_inject = true;
		assert_int_equal(tl_vol_open(t), 0);
		assert_int_equal(raid_fail_disk(t->v, tl_disk(t, 0, 0),
		    "test"), 0);
		assert_int_equal(raid_flush(t->v), 0);
		/* One block of disk 1 in each of 16 band stripes. */
		for (int k = 0; k < 16; k++) {
			uint64_t s = band_start[k % 2] + (uint64_t)k;
			uint64_t vbn = s * 4 + 1;
			tl_fill_random(c.newdata + vbn * TL_BS, TL_BS, &rng);
			assert_int_equal(raid_write(t->v, vbn, 1,
			    c.newdata + vbn * TL_BS), 0);
			c.inflight[vbn] = true;
		}
		assert_int_equal(raid_fault_crash(t->v, mode, rng), 0);
		tl_vol_close(t);
		t->fault_inject = false;
		if (tl_vol_open(t) != 0) {
			errors++;	/* refusing to open is allowed */
			continue;
		}
		for (uint64_t vbn = 0; vbn < t->nvbns; vbn++) {
			int rc = raid_read(t->v, vbn, 1, buf);
			if (rc != 0) {
				errors++;
				continue;
			}
			if (c.inflight[vbn]) {
				if (!sector_ok(buf, tl_shadow(t, vbn),
				    c.newdata + vbn * TL_BS, mode))
					wrong++;
			} else if (memcmp(buf, tl_shadow(t, vbn), TL_BS)) {
				if (wrong++ == 0)
					fprintf(stderr, "  iteration %d: vbn "
					    "%llu (not written since the "
					    "flush) reads back wrong data\n",
					    it, (unsigned long long)vbn);
			} else {
				right++;
			}
		}
		tl_vol_close(t);
	}
	free(buf);
	teardown_case(&c);
	fl_log_set_level(FL_LOG_INFO);
	if (wrong != 0)
		fail_msg("degraded crash: %llu reads returned wrong data (%llu "
		    "right, %llu errors)", (unsigned long long)wrong,
		    (unsigned long long)right, (unsigned long long)errors);
}

/*
 * Double parity, a data disk already out, and a second disk (the Q
 * parity) dies while a partial-stripe write is being journaled: its
 * failure bumps the label generation between the journal record's write
 * and the stripe's.  The record must still be trusted after a crash (J4),
 * or the stripe's parity, torn by the crash, rebuilds the missing data
 * disk's block wrongly although nobody wrote it (R1).
 */
static void test_crash_degraded_journal_during_failure(void **state)
{
	static const enum raid_crash_mode modes[] = {
		RAID_CRASH_RANDOM, RAID_CRASH_TEAR,
	};
	struct crash_case c;
	struct tl_vol *t = &c.t;

	(void)state;
	fl_log_set_level(FL_LOG_ERR);
	setup_case(&c, 1, 4, 2);
	for (int it = 0; it < 8; it++) {
		uint64_t rng = 9100 + (uint64_t)it;
		uint64_t s = band_start[it % 2] + 3 + (uint64_t)it;
		enum raid_crash_mode mode = modes[it % 2];

		assert_int_equal(tl_vol_restore_images(t, "golden"), 0);
		memcpy(t->shadow, c.golden, t->nvbns * TL_BS);
		memset(c.inflight, 0, t->nvbns * sizeof(bool));
		t->fault_inject = true;
		assert_int_equal(tl_vol_open(t), 0);
		assert_int_equal(raid_fail_disk(t->v, tl_disk(t, 0, 0),
		    "test"), 0);
		assert_int_equal(raid_flush(t->v), 0);
		/* The region is marked by a first write, so the second's
		 * first I/O on the dead disk is its journal record's. */
		write_in_flight(&c, (s + 1) * 4 + 3, 1, &rng);
		assert_int_equal(raid_fault_set(t->v, tl_disk(t, 0, 5),
		    RAID_FAULT_DEAD, 0, 0), 0);
		write_in_flight(&c, s * 4 + 1, 2, &rng);
		assert_int_equal(raid_fault_crash(t->v, mode, rng), 0);
		tl_vol_close(t);
		t->fault_inject = false;
		assert_int_equal(tl_vol_open(t), 0);
		check_blocks(&c, mode, it, "data disk and Q out");
		tl_vol_close(t);
	}
	teardown_case(&c);
	fl_log_set_level(FL_LOG_INFO);
}

/*
 * The same window, from another thread: the journal record is written and
 * synced with the labels' generation, then another disk (P) fails and the
 * labels recording it, with a new generation, are written and synced on
 * every working disk while the stripe's write to Q is still in flight,
 * and the crash loses that write.  The state is built directly: the
 * failure is recorded after the stripe's writes, and Q's block of the
 * stripe is put back to its old contents in the image.  The record is one
 * generation behind the labels, but the missing data disk was out when it
 * was written (J4): recovery must use it, or the missing disk's block,
 * solved from the new data and the old Q, reads back wrong although
 * nobody wrote it (R1).
 */
static void test_crash_degraded_journal_failure_after_record(void **state)
{
	struct crash_case c;
	struct tl_vol *t = &c.t;
	uint8_t old_q[TL_BS];
	int64_t data_off;

	(void)state;
	fl_log_set_level(FL_LOG_ERR);
	setup_case(&c, 1, 4, 2);
	data_off = tl_find_data_offset(t->paths[1], tl_shadow(t, 1), 0);
	assert_true(data_off > 0);
	for (int it = 0; it < 4; it++) {
		uint64_t rng = 9300 + (uint64_t)it;
		uint64_t s = band_start[it % 2] + 3 + (uint64_t)it;
		int fd;

		assert_int_equal(tl_vol_restore_images(t, "golden"), 0);
		memcpy(t->shadow, c.golden, t->nvbns * TL_BS);
		memset(c.inflight, 0, t->nvbns * sizeof(bool));
		assert_int_equal(tl_image_read_block(t->paths[5], data_off, s,
		    old_q), 0);
		t->fault_inject = true;
		assert_int_equal(tl_vol_open(t), 0);
		assert_int_equal(raid_fail_disk(t->v, tl_disk(t, 0, 0),
		    "test"), 0);
		assert_int_equal(raid_flush(t->v), 0);
		write_in_flight(&c, s * 4 + 1, 2, &rng);
		assert_int_equal(raid_fail_disk(t->v, tl_disk(t, 0, 4),
		    "test"), 0);
		assert_int_equal(raid_fault_crash(t->v, RAID_CRASH_DROP_ALL,
		    rng), 0);
		tl_vol_close(t);
		/* Q's write of the stripe was the one in flight. */
		fd = open(t->paths[5], O_WRONLY);
		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, old_q, TL_BS, data_off +
		    (int64_t)s * TL_BS), TL_BS);
		close(fd);
		t->fault_inject = false;
		assert_int_equal(tl_vol_open(t), 0);
		check_blocks(&c, RAID_CRASH_RANDOM, it, "data disk out, P "
		    "failed while Q's write was in flight");
		tl_vol_close(t);
	}
	teardown_case(&c);
	fl_log_set_level(FL_LOG_INFO);
}

/*
 * The other side of J4's grace for a record one generation behind the
 * labels: a position that came back through a rebuild.  Data disk 0
 * fails (generation G), a partial write journals its block of stripe s
 * (record of G, value A), a spare is rebuilt into position 0 (its label
 * pass bumps to G + 1, the position recorded ok), and the block is
 * written again, B, with every disk present: no record, and flushed.  A
 * write in flight in the same region keeps it dirty through the crash.
 * At the open position 0 is absent, so the region's stripes go through
 * the journal.  The record is one generation behind the labels, but the
 * label records position 0 ok: it was written before the disk came back
 * and must not be trusted.  Replayed, it would make parity solve A for
 * the absent block, a value writes since have overtaken (R1).
 */
static void test_crash_degraded_journal_rebuilt_position_absent(void **state)
{
	struct crash_case c;
	struct tl_vol *t = &c.t;
	const char *paths[TL_MAX_PATHS];
	char spare[4200];
	uint8_t a[TL_BS];

	(void)state;
	fl_log_set_level(FL_LOG_ERR);
	setup_case(&c, 1, 4, 1);
	snprintf(spare, sizeof(spare), "%s/spare.img", t->dir);
	for (int it = 0; it < 4; it++) {
		uint64_t rng = 9500 + (uint64_t)it;
		uint64_t s = band_start[it % 2] + 5 + (uint64_t)it;
		struct raid_status st;

		assert_int_equal(tl_vol_restore_images(t, "golden"), 0);
		(void)unlink(spare);
		memcpy(t->shadow, c.golden, t->nvbns * TL_BS);
		memset(c.inflight, 0, t->nvbns * sizeof(bool));
		t->fault_inject = true;
		assert_int_equal(tl_vol_open(t), 0);
		assert_int_equal(raid_fail_disk(t->v, tl_disk(t, 0, 0),
		    "test"), 0);
		assert_int_equal(raid_flush(t->v), 0);
		/* Journaled: disk 0's block of stripe s is A. */
		assert_int_equal(tl_vol_write_random(t, s * 4, 1, &rng), 0);
		memcpy(a, tl_shadow(t, s * 4), TL_BS);
		assert_int_equal(raid_flush(t->v), 0);
		/* Position 0 back: the spare rebuilt, the generation bumped. */
		assert_int_equal(raid_add_spare(t->v, spare), 0);
		assert_int_equal(raid_rebuild_start(t->v), 0);
		assert_int_equal(raid_rebuild_wait(t->v), 0);
		raid_status(t->v, &st);
		assert_false(st.degraded);
		/* Not journaled (no disk out), flushed: the block is B. */
		assert_int_equal(tl_vol_write_random(t, s * 4, 1, &rng), 0);
		assert_memory_not_equal(a, tl_shadow(t, s * 4), TL_BS);
		assert_int_equal(raid_flush(t->v), 0);
		/* The region dirty at the crash. */
		write_in_flight(&c, (s + 1) * 4 + 2, 1, &rng);
		assert_int_equal(raid_fault_crash(t->v, RAID_CRASH_DROP_ALL,
		    rng), 0);
		tl_vol_close(t);
		/* Position 0 (now the spare) absent; the others as made. */
		paths[0] = NULL;
		for (unsigned p = 1; p < 5; p++)
			paths[p] = t->paths[p];
		t->fault_inject = false;
		assert_int_equal(tl_vol_open_paths(t, paths, 5), 0);
		raid_status(t->v, &st);
		assert_true(st.degraded);
		check_blocks(&c, RAID_CRASH_DROP_ALL, it, "rebuilt position "
		    "absent at open, a record from before the rebuild");
		tl_vol_close(t);
	}
	teardown_case(&c);
	fl_log_set_level(FL_LOG_INFO);
}

struct fail_arg {
	raid_vol_t *v;
	size_t disk;
};

static void *fail_thread(void *p)
{
	struct fail_arg *a = p;

	(void)raid_fail_disk(a->v, a->disk, "test");
	return NULL;
}

/*
 * Fail disk (fg, fp) while the label write to disk (hg, hp) hangs, crash
 * (the disks before it have the labels recording the failure, the others
 * not), and open the volume again with every fault cleared.  t was
 * filled; it is open when this returns.  what names the case in failures.
 */
static void crash_while_failure_labeled(struct tl_vol *t, unsigned hg,
    unsigned hp, unsigned fg, unsigned fp, const char *what)
{
	struct fail_arg a = { t->v, tl_disk(t, fg, fp) };
	pthread_t th;
	int err;

	assert_int_equal(raid_fault_set(t->v, tl_disk(t, hg, hp),
	    RAID_FAULT_HANG, 0, 0), 0);
	assert_int_equal(pthread_create(&th, NULL, fail_thread, &a), 0);
	usleep(300 * 1000);
	assert_int_equal(raid_fault_crash(t->v, RAID_CRASH_DROP_ALL, 1), 0);
	assert_int_equal(raid_fault_set(t->v, tl_disk(t, hg, hp),
	    RAID_FAULT_NONE, 0, 0), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	tl_vol_close(t);
	t->fault_inject = false;
	err = tl_vol_open(t);
	if (err != 0)
		fail_msg("a crash while a failure's labels were written%s: "
		    "open fails: %s", what, fl_strerror(err));
}

/*
 * A crash while the labels recording a disk failure are being written:
 * the first working disk has the new generation, the others still the
 * old one.  None of them missed a write, so the volume opens, degraded,
 * and every block reads back.
 */
static void test_crash_during_failure_labels(void **state)
{
	struct tl_vol t;
	struct raid_disk_info info;
	int err;

	(void)state;
	fl_log_set_level(FL_LOG_ERR);
	assert_int_equal(tl_vol_create(&t, NULL, 1, 4, 1, 256, true), 0);
	assert_int_equal(tl_vol_fill(&t, 77), 0);
	/* Disk 2's label write waits: disk 1 has the new label by then. */
	crash_while_failure_labeled(&t, 0, 2, 0, 0, "");
	/* The failed disk stays out: the new label records it. */
	assert_int_equal(raid_disk_info(t.v, tl_disk(&t, 0, 0), &info), 0);
	assert_int_not_equal(info.state, RAID_DISK_OK);
	assert_int_equal(raid_disk_info(t.v, tl_disk(&t, 0, 2), &info), 0);
	assert_int_equal(info.state, RAID_DISK_OK);
	if (tl_vol_verify(&t, &err) != 0)
		fail_msg("after a crash while a failure's labels were "
		    "written: wrong data (%s)", fl_strerror(err));
	tl_vol_destroy(&t);
	fl_log_set_level(FL_LOG_INFO);
}

/*
 * The same with two groups: the labels recording a failure in group 1 are
 * written to group 0's disks first, and the crash comes before any disk
 * of group 1 has them.  Group 1 is one label write behind as a whole.
 */
static void test_crash_during_failure_labels_two_groups(void **state)
{
	struct tl_vol t;
	int err;

	(void)state;
	fl_log_set_level(FL_LOG_ERR);
	assert_int_equal(tl_vol_create(&t, NULL, 2, 2, 1, 256, true), 0);
	assert_int_equal(tl_vol_fill(&t, 79), 0);
	crash_while_failure_labeled(&t, 0, 1, 1, 2, ", two groups");
	if (tl_vol_verify(&t, &err) != 0)
		fail_msg("after a crash while a failure's labels were "
		    "written, two groups: wrong data (%s)", fl_strerror(err));
	tl_vol_destroy(&t);
	fl_log_set_level(FL_LOG_INFO);
}

struct read_arg {
	raid_vol_t *v;
	uint64_t vbn;
	uint8_t *buf;
	int rc;
};

static void *read_thread(void *p)
{
	struct read_arg *a = p;

	a->rc = raid_read(a->v, a->vbn, 128, a->buf);
	return NULL;
}

struct spare_arg {
	raid_vol_t *v;
	char path[4200];
	int rc;
};

static void *spare_thread(void *p)
{
	struct spare_arg *a = p;

	a->rc = raid_add_spare(a->v, a->path);
	return NULL;
}

/*
 * raid_flush returns while another thread's disk failure is not yet in the
 * labels: that thread waits to write them behind a label write (a spare
 * being added) that is slow on a disk of the other group.  The flushed
 * writes skipped the failed disk, so after a crash it must not come back
 * as a current member holding the old blocks (R1, R2).
 */
static void test_flush_records_pending_failure(void **state)
{
	struct tl_vol t;
	struct fail_arg a;
	struct spare_arg sp;
	struct read_arg r[3];
	pthread_t th, sth, rth[3];
	uint64_t rng = 4711, per_group;
	int err;

	(void)state;
	fl_log_set_level(FL_LOG_ERR);
	assert_int_equal(tl_vol_create(&t, NULL, 2, 2, 1, 1024, true), 0);
	assert_int_equal(tl_vol_fill(&t, 78), 0);
	per_group = 2 * 1024;
	/* Disk 0 of group 0 at 1 MB/s, kept busy by three reads of 512
	 * KiB each: a label write to it waits about a second. */
	assert_int_equal(raid_fault_set(t.v, tl_disk(&t, 0, 0),
	    RAID_FAULT_THROTTLE, 1, 0), 0);
	for (int i = 0; i < 3; i++) {
		r[i].v = t.v;
		r[i].vbn = (uint64_t)i * 256;
		r[i].buf = malloc(128 * TL_BS);
		assert_non_null(r[i].buf);
		assert_int_equal(pthread_create(&rth[i], NULL, read_thread,
		    &r[i]), 0);
	}
	usleep(50 * 1000);
	/* A spare's label write starts with that disk. */
	sp.v = t.v;
	snprintf(sp.path, sizeof(sp.path), "%s/spare.img", t.dir);
	assert_int_equal(pthread_create(&sth, NULL, spare_thread, &sp), 0);
	usleep(50 * 1000);
	/* Disk 0 of group 1 fails; its labels wait for the spare's. */
	a.v = t.v;
	a.disk = tl_disk(&t, 1, 0);
	assert_int_equal(pthread_create(&th, NULL, fail_thread, &a), 0);
	usleep(50 * 1000);
	/* Whole stripes of group 1, flushed: on its two working disks. */
	tl_fill_random(tl_shadow(&t, per_group), 16 * 2 * TL_BS, &rng);
	assert_int_equal(raid_write_stripes(t.v, per_group, 16,
	    tl_shadow(&t, per_group)), 0);
	assert_int_equal(raid_flush(t.v), 0);
	assert_int_equal(raid_fault_crash(t.v, RAID_CRASH_DROP_ALL, 1), 0);
	assert_int_equal(raid_fault_set(t.v, tl_disk(&t, 0, 0),
	    RAID_FAULT_NONE, 0, 0), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(pthread_join(sth, NULL), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(rth[i], NULL), 0);
		free(r[i].buf);
	}
	tl_vol_close(&t);
	t.fault_inject = false;
	assert_int_equal(tl_vol_open(&t), 0);
	if (tl_vol_verify(&t, &err) != 0)
		fail_msg("blocks flushed while a disk's failure was not yet "
		    "in the labels read back wrong after a crash (%s)",
		    fl_strerror(err));
	tl_vol_destroy(&t);
	fl_log_set_level(FL_LOG_INFO);
}

/*
 * A crash in the middle of a rebuild: the half-rebuilt spare must not be
 * taken for a whole member on the next open.
 */
static void test_crash_during_rebuild(void **state)
{
	struct tl_vol t;
	char spare[4200];
	const char *paths[TL_MAX_PATHS];
	struct raid_status st;
	int err;

	fl_log_set_level(FL_LOG_ERR);
	assert_int_equal(tl_vol_create(&t, NULL, 1, 4, 1, 8192, true), 0);
	assert_int_equal(tl_vol_fill(&t, 55), 0);
	assert_int_equal(raid_fail_disk(t.v, tl_disk(&t, 0, 2), "test"), 0);
	snprintf(spare, sizeof(spare), "%s/spare.img", t.dir);
	assert_int_equal(raid_add_spare(t.v, spare), 0);
	assert_int_equal(raid_rebuild_start(t.v), 0);
	for (;;) {
		raid_status(t.v, &st);
		if (!st.rebuilding || st.rebuild_done >= st.rebuild_total / 3)
			break;
		usleep(100);
	}
	assert_int_equal(raid_fault_crash(t.v, RAID_CRASH_RANDOM, 5), 0);
	(void)raid_rebuild_wait(t.v);
	tl_vol_close(&t);
	/* Members as created (the failed disk at its place), then the spare. */
	for (size_t i = 0; i < t.npaths; i++)
		paths[i] = t.paths[i];
	paths[t.npaths] = spare;
	t.fault_inject = false;
	assert_int_equal(tl_vol_open_paths(&t, paths, t.npaths + 1), 0);
	if (tl_vol_verify(&t, &err) != 0)
		fail_msg("after a crash during rebuild: wrong data (%s)",
		    fl_strerror(err));
	/* And with another disk failed, through parity. */
	for (size_t d = 0; d < raid_ndisks(t.v); d++) {
		struct raid_disk_info info;
		assert_int_equal(raid_disk_info(t.v, d, &info), 0);
		if (info.state == RAID_DISK_OK && info.position == 0) {
			raid_status(t.v, &st);
			if (!st.degraded) {
				assert_int_equal(raid_fail_disk(t.v, d,
				    "test"), 0);
				if (tl_vol_verify(&t, &err) != 0)
					fail_msg("after a crash during rebuild,"
					    " degraded: wrong data (%s)",
					    fl_strerror(err));
			}
		}
	}
	tl_vol_destroy(&t);
	fl_log_set_level(FL_LOG_INFO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_after_flush),
		cmocka_unit_test(test_crash_in_region_marked_ahead),
		cmocka_unit_test(test_crash_4p1),
		cmocka_unit_test(test_crash_3p2),
		cmocka_unit_test(test_crash_2groups_2p1),
		cmocka_unit_test(test_crash_while_degraded),
		cmocka_unit_test(test_crash_during_rebuild),
		cmocka_unit_test(test_crash_degraded_journal_during_failure),
		cmocka_unit_test(test_crash_degraded_journal_failure_after_record),
		cmocka_unit_test(
		    test_crash_degraded_journal_rebuilt_position_absent),
		cmocka_unit_test(test_crash_during_failure_labels),
		cmocka_unit_test(test_crash_during_failure_labels_two_groups),
		cmocka_unit_test(test_flush_records_pending_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
