/*
 * tests/raid/test_raid_faults.c: disks that fail under I/O (R5).
 *
 *   EIO on a read      -> the read still returns the right data (from
 *                         parity), the disk is FAILED, an event is raised,
 *                         a log line names it, and on reopen it is stale
 *   EIO on a write     -> the write succeeds degraded, the disk is FAILED,
 *                         the new data read back
 *   a dead disk        -> found by the first I/O, then all data right
 *   P + 1 dead disks   -> that group answers -FL_EDEGRADED, never wrong
 *                         data; the other group keeps working; offline
 *                         event and status
 *   EIO on a second disk while degraded (P = 1) -> -FL_EDEGRADED
 *   a throttled disk   -> writes and reads (the page cache's fast path
 *                         included) take at least bytes / rate; clearing
 *                         the fault restores full speed and releases an
 *                         I/O that waits; the data stays right
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/raid.h"
#include "tests/lib/tl_log.h"
#include "tests/lib/tl_raid.h"

#define DISK_BLOCKS	64

static void make_vol(struct tl_vol *t, uint32_t ngroups, uint32_t n,
    uint32_t p, uint64_t seed)
{
	assert_int_equal(tl_vol_create(t, NULL, ngroups, n, p, DISK_BLOCKS,
	    true), 0);
	assert_int_equal(tl_vol_fill(t, seed), 0);
}

static void verify(struct tl_vol *t, const char *what)
{
	int err;
	uint64_t bad = tl_vol_verify(t, &err);

	if (bad != 0)
		fail_msg("%s: %llu wrong blocks (first error %s)", what,
		    (unsigned long long)bad, fl_strerror(err));
}

static struct raid_disk_info info_of(struct tl_vol *t, size_t d)
{
	struct raid_disk_info info;

	assert_int_equal(raid_disk_info(t->v, d, &info), 0);
	return info;
}

static void test_eio_read(void **state)
{
	struct tl_vol t;
	uint8_t buf[2 * TL_BS];
	size_t disk;
	uint64_t blk, vbn = 4 * 9 + 1;	/* stripe 9, data disk 1 */
	struct raid_disk_info info;

	make_vol(&t, 1, 4, 1, 1);
	assert_int_equal(raid_vbn_locate(t.v, vbn, &disk, &blk), 0);
	assert_int_equal(raid_fault_set(t.v, disk, RAID_FAULT_EIO_READ, blk,
	    1), 0);
	/* Other blocks of the disk still read while it is not yet failed. */
	assert_int_equal(raid_read(t.v, vbn - 4, 1, buf), 0);
	assert_memory_equal(buf, tl_shadow(&t, vbn - 4), TL_BS);
	assert_int_equal(tl_events_count(&t.events, RAID_EV_DISK_FAILED), 0);

	tl_log_capture_start(FL_LOG_INFO);
	assert_int_equal(raid_read(t.v, vbn, 2, buf), 0);
	assert_memory_equal(buf, tl_shadow(&t, vbn), 2 * TL_BS);
	info = info_of(&t, disk);
	assert_int_equal(info.state, RAID_DISK_FAILED);
	assert_true(info.read_errors >= 1);
	assert_true(strlen(info.reason) > 0);
	assert_int_equal(tl_events_count(&t.events, RAID_EV_DISK_FAILED), 1);
	if (tl_log_count_with(t.paths[disk], NULL) == 0) {
		tl_log_dump("eio read");
		fail_msg("the failure of %s was not logged with its path",
		    t.paths[disk]);
	}
	tl_log_capture_stop();
	{
		struct raid_status st;
		raid_status(t.v, &st);
		assert_true(st.degraded);
		assert_false(st.offline);
	}
	verify(&t, "after EIO read");
	/* Writes go on, degraded. */
	{
		uint64_t rng = 5;
		for (uint64_t v = 0; v < t.nvbns; v += 7)
			assert_int_equal(tl_vol_write_random(&t, v,
			    (uint32_t)FL_MIN(3, t.nvbns - v), &rng), 0);
		assert_int_equal(raid_flush(t.v), 0);
	}
	verify(&t, "writes after EIO read");
	tl_vol_close(&t);
	/* The failed disk is stale now: left out on reopen. */
	t.fault_inject = false;
	assert_int_equal(tl_vol_open(&t), 0);
	assert_int_not_equal(info_of(&t, disk).state, RAID_DISK_OK);
	verify(&t, "reopened");
	tl_vol_destroy(&t);
}

static void test_eio_write(void **state)
{
	struct tl_vol t;
	uint64_t rng = 9;
	size_t disk;
	uint64_t blk, vbn = 3 * 20 + 2;	/* stripe 20, data disk 2 */

	make_vol(&t, 1, 3, 2, 2);
	assert_int_equal(raid_vbn_locate(t.v, vbn, &disk, &blk), 0);
	assert_int_equal(raid_fault_set(t.v, disk, RAID_FAULT_EIO_WRITE, blk,
	    1), 0);
	/* Partial, then full stripe over the bad block. */
	assert_int_equal(tl_vol_write_random(&t, vbn, 1, &rng), 0);
	assert_int_equal(info_of(&t, disk).state, RAID_DISK_FAILED);
	assert_true(info_of(&t, disk).write_errors >= 1);
	assert_int_equal(tl_events_count(&t.events, RAID_EV_DISK_FAILED), 1);
	assert_int_equal(tl_vol_write_random(&t, vbn - 2, 3, &rng), 0);
	assert_int_equal(raid_flush(t.v), 0);
	verify(&t, "after EIO write");
	/* A parity disk write error as well: P = 2 still covers it. */
	{
		size_t pd;
		uint64_t pb;
		assert_int_equal(raid_parity_locate(t.v, 0, 1, &pd, &pb), 0);
		assert_int_equal(raid_fault_set(t.v, pd, RAID_FAULT_EIO_WRITE,
		    pb, 1), 0);
		assert_int_equal(tl_vol_write_random(&t, 0, 1, &rng), 0);
		assert_int_equal(info_of(&t, pd).state, RAID_DISK_FAILED);
		assert_int_equal(raid_flush(t.v), 0);
	}
	verify(&t, "after two write errors");
	tl_vol_close(&t);
	assert_int_equal(tl_vol_open(&t), 0);
	verify(&t, "reopened after write errors");
	tl_vol_destroy(&t);
}

static void test_dead_disk(void **state)
{
	struct tl_vol t;

	make_vol(&t, 2, 3, 1, 3);
	assert_int_equal(raid_fault_set(t.v, tl_disk(&t, 1, 3),
	    RAID_FAULT_DEAD, 0, 0), 0);	/* a parity disk */
	assert_int_equal(raid_fault_set(t.v, tl_disk(&t, 0, 0),
	    RAID_FAULT_DEAD, 0, 0), 0);	/* a data disk */
	verify(&t, "two groups, one dead disk each");
	{
		uint64_t rng = 4;
		/* Writes to group 1 need its dead parity disk. */
		for (uint64_t v = 0; v < t.nvbns; v += 5)
			assert_int_equal(tl_vol_write_random(&t, v, 1, &rng),
			    0);
		assert_int_equal(raid_flush(t.v), 0);
	}
	assert_int_equal(info_of(&t, tl_disk(&t, 0, 0)).state,
	    RAID_DISK_FAILED);
	assert_int_equal(info_of(&t, tl_disk(&t, 1, 3)).state,
	    RAID_DISK_FAILED);
	verify(&t, "after writes with dead disks");
	tl_vol_destroy(&t);
}

static void test_too_many_dead(void **state)
{
	struct tl_vol t;
	uint8_t *buf;
	uint64_t per_group = 4 * DISK_BLOCKS;
	uint64_t wrong = 0, errors = 0;

	make_vol(&t, 2, 4, 2, 4);
	buf = malloc(4 * TL_BS);
	assert_non_null(buf);
	/* P + 1 = 3 disks of group 0 die. */
	for (uint32_t k = 0; k < 3; k++)
		assert_int_equal(raid_fault_set(t.v, tl_disk(&t, 0, k * 2),
		    RAID_FAULT_DEAD, 0, 0), 0);
	/* While they are found out, every read is right or an error. */
	for (uint64_t v = 0; v < per_group; v += 4) {
		int rc = raid_read(t.v, v, 4, buf);
		if (rc == 0) {
			if (memcmp(buf, tl_shadow(&t, v), 4 * TL_BS) != 0)
				wrong++;
		} else {
			assert_int_equal(rc, -FL_EDEGRADED);
			errors++;
		}
	}
	assert_int_equal(wrong, 0);
	assert_true(errors > 0);
	/* Found out: the group refuses everything. */
	{
		struct raid_status st;
		raid_status(t.v, &st);
		assert_true(st.offline);
	}
	assert_true(tl_events_count(&t.events, RAID_EV_GROUP_OFFLINE) >= 1);
	for (uint64_t v = 0; v < per_group; v += 4)
		assert_int_equal(raid_read(t.v, v, 4, buf), -FL_EDEGRADED);
	memset(buf, 0x33, 4 * TL_BS);
	assert_int_equal(raid_write(t.v, 0, 1, buf), -FL_EDEGRADED);
	assert_int_equal(raid_write_stripes(t.v, 4, 1, buf), -FL_EDEGRADED);
	{
		uint8_t b1[TL_BS];
		int rc = raid_reconstruct(t.v, 1, 0, b1);
		assert_int_not_equal(rc, 0);
	}
	/* A read spanning both groups fails rather than half-answer. */
	assert_int_not_equal(raid_read(t.v, per_group - 2, 4, buf), 0);
	/* Group 1 works. */
	for (uint64_t v = per_group; v < 2 * per_group; v += 4) {
		assert_int_equal(raid_read(t.v, v, 4, buf), 0);
		assert_memory_equal(buf, tl_shadow(&t, v), 4 * TL_BS);
	}
	{
		uint64_t rng = 8;
		int rc;
		assert_int_equal(tl_vol_write_random(&t, per_group + 3, 6,
		    &rng), 0);
		/* The volume-wide barrier may report the offline group. */
		rc = raid_flush(t.v);
		assert_true(rc == 0 || rc == -FL_EDEGRADED);
		assert_int_equal(raid_read(t.v, per_group + 3, 4, buf), 0);
		assert_memory_equal(buf, tl_shadow(&t, per_group + 3),
		    4 * TL_BS);
	}
	free(buf);
	tl_vol_close(&t);
	/* Reopen: the group has too few current disks. */
	t.fault_inject = false;
	assert_int_equal(tl_vol_open(&t), -FL_EDEGRADED);
	tl_vol_destroy(&t);
}

static void test_second_error_while_degraded(void **state)
{
	struct tl_vol t;
	uint8_t buf[TL_BS];
	size_t disk;
	uint64_t blk, vbn = 4 * 30 + 3;

	make_vol(&t, 1, 4, 1, 5);
	assert_int_equal(raid_fail_disk(t.v, tl_disk(&t, 0, 0), "test"), 0);
	assert_int_equal(raid_vbn_locate(t.v, vbn, &disk, &blk), 0);
	assert_int_equal(raid_fault_set(t.v, disk, RAID_FAULT_EIO_READ, blk,
	    1), 0);
	/* The block on the failed disk in that stripe needs disk 3's. */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(raid_read(t.v, vbn - 3, 1, buf), -FL_EDEGRADED);
	assert_int_equal(raid_read(t.v, vbn, 1, buf), -FL_EDEGRADED);
	tl_vol_destroy(&t);
}

/* ---- the throttle ---- */

#define THR_BLOCKS	1024u	/* 4 MiB per disk */
#define THR_MBPS	10u

static double elapsed(uint64_t t0)
{
	return (double)(fl_now_mono_ns() - t0) / 1e9;
}

/* Read the whole volume in chunks of 256 stripes; seconds taken. */
static double read_volume(struct tl_vol *t, uint8_t *buf)
{
	const uint32_t chunk = 256 * t->ndata;
	uint64_t t0 = fl_now_mono_ns();

	for (uint64_t vbn = 0; vbn < t->nvbns; vbn += chunk) {
		uint32_t n = (uint32_t)FL_MIN((uint64_t)chunk, t->nvbns - vbn);

		assert_int_equal(raid_read(t->v, vbn, n, buf), 0);
		assert_memory_equal(buf, tl_shadow(t, vbn), (size_t)n * TL_BS);
	}
	return elapsed(t0);
}

static void throttle_all(struct tl_vol *t, enum raid_fault_kind kind,
    uint64_t mbps)
{
	for (uint32_t pos = 0; pos < t->ndata + t->nparity; pos++)
		assert_int_equal(raid_fault_set(t->v, tl_disk(t, 0, pos), kind,
		    mbps, 0), 0);
}

struct slow_read {
	struct tl_vol *t;
	uint8_t *buf;
	int rc;
};

static void *slow_read_main(void *arg)
{
	struct slow_read *r = arg;

	r->rc = raid_read(r->t->v, 0, 256 * r->t->ndata, r->buf);
	return NULL;
}

static void test_throttle(void **state)
{
	/* Lower bounds only: a disk cannot beat bytes / rate. */
	const double ideal = (double)THR_BLOCKS * TL_BS / (THR_MBPS * 1e6);
	struct tl_vol t;
	struct slow_read r;
	pthread_t th;
	uint8_t *buf;
	uint64_t t0;
	double wr, slow, fast, rel;

	assert_int_equal(tl_vol_create(&t, NULL, 1, 4, 1, THR_BLOCKS, true),
	    0);
	buf = malloc((size_t)256 * t.ndata * TL_BS);
	assert_non_null(buf);
	assert_int_equal(raid_fault_set(t.v, 0, RAID_FAULT_THROTTLE, 0, 0),
	    -EINVAL);
	throttle_all(&t, RAID_FAULT_THROTTLE, THR_MBPS);

	/* Every disk receives THR_BLOCKS blocks (and its bitmap). */
	t0 = fl_now_mono_ns();
	assert_int_equal(tl_vol_fill(&t, 21), 0);
	wr = elapsed(t0);
	/* Every data disk is read whole; the data sits in the page cache,
	 * so a read that took the fast path would not wait. */
	slow = read_volume(&t, buf);
	print_message("throttle %u MB/s, %u KiB per disk: write %.3f s, "
	    "read %.3f s (ideal %.3f s)\n", THR_MBPS, THR_BLOCKS * 4, wr,
	    slow, ideal);
	assert_true(wr >= 0.8 * ideal);
	assert_true(slow >= 0.8 * ideal);

	/* Read-ahead is paid for too: the volume asked for ahead
	 * (raid_prefetch, which does not wait) and then read takes at least
	 * the disks' time, and reads what was written. */
	t0 = fl_now_mono_ns();
	raid_prefetch(t.v, 0, t.nvbns);
	double pf_ask = elapsed(t0);
	(void)read_volume(&t, buf);
	double pf = elapsed(t0);
	print_message("prefetched: asked in %.3f s, read by %.3f s\n", pf_ask,
	    pf);
	assert_true(pf >= 0.8 * ideal);

	/* Cleared: full speed again. */
	throttle_all(&t, RAID_FAULT_NONE, 0);
	fast = read_volume(&t, buf);
	print_message("cleared: read %.3f s\n", fast);
	assert_true(fast < ideal / 2);

	/* A read waiting on a very slow disk is released by the clearing. */
	assert_int_equal(raid_fault_set(t.v, tl_disk(&t, 0, 0),
	    RAID_FAULT_THROTTLE, 1, 0), 0);
	r.t = &t;
	r.buf = buf;
	r.rc = -1;
	t0 = fl_now_mono_ns();
	assert_int_equal(pthread_create(&th, NULL, slow_read_main, &r), 0);
	usleep(100 * 1000);
	assert_int_equal(raid_fault_set(t.v, tl_disk(&t, 0, 0),
	    RAID_FAULT_NONE, 0, 0), 0);
	pthread_join(th, NULL);
	rel = elapsed(t0);
	print_message("1 MiB at 1 MB/s, cleared after 0.1 s: %.3f s\n", rel);
	assert_int_equal(r.rc, 0);
	assert_memory_equal(buf, tl_shadow(&t, 0), (size_t)256 * t.ndata *
	    TL_BS);
	assert_true(rel < 0.8);
	free(buf);
	verify(&t, "after the throttle");
	tl_vol_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eio_read),
		cmocka_unit_test(test_eio_write),
		cmocka_unit_test(test_dead_disk),
		cmocka_unit_test(test_too_many_dead),
		cmocka_unit_test(test_second_error_while_degraded),
		cmocka_unit_test(test_throttle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
