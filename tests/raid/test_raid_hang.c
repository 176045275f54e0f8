/*
 * tests/raid/test_raid_hang.c: disks that stop answering (R5, deadline.c).
 *
 * The fault injector's HANG makes every I/O of a disk wait, without an
 * answer, until the fault is cleared or the volume closes.  The volume runs
 * with a short I/O timeout (TMO_MS):
 *
 *   a read with a hung data disk  -> right data in about the timeout, the
 *                                    disk FAILED, "no answer for N ms"
 *                                    logged with its path, counters, event;
 *                                    the hung read, once let go, writes
 *                                    nothing into the caller's buffer
 *   writes with a hung disk       -> go on degraded; right after the fault
 *                                    clears, and after a reopen (the disk
 *                                    is stale then)
 *   P + 1 hung disks              -> -FL_EDEGRADED, never wrong data
 *   flush with a hung disk        -> returns 0 (the disk is out), data
 *                                    durable on the others
 *   many readers on a hung disk   -> each gets the right data in time
 *   close with a hung disk        -> returns in bounded time, whether the
 *                                    disk was found out before or not
 *   a disk that answers late, within the timeout -> stays in, data right
 *   rebuild with a hung survivor  -> goes on without it (P = 2)
 *   rebuild onto a hung spare     -> fails in about the timeout, data right
 *   readers and writers at work while two disks (P = 2) go silent -> no
 *                                    error, no wrong read, right after
 *                                    the disks answer again and a reopen
 *
 * Every test runs under an alarm: a wait that never ends fails the runner
 * instead of hanging it.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
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
#include "tests/lib/tl_log.h"
#include "tests/lib/tl_raid.h"

#define DISK_BLOCKS	64
#define TMO_MS		400u
#define SLACK_MS	4000u	/* scheduling on a loaded machine, ASan */
#define ALARM_S		30u

static void on_alarm(int sig)
{
	static const char msg[] = "test_raid_hang: a wait did not end\n";

	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	abort();
}

static int setup(void **state)
{
	signal(SIGALRM, on_alarm);
	alarm(ALARM_S);
	return 0;
}

static int teardown(void **state)
{
	alarm(0);
	return 0;
}

static uint64_t ms_since(uint64_t t0)
{
	return (fl_now_mono_ns() - t0) / 1000000u;
}

/* Took about the timeout: at least most of it, at most it plus slack. */
static void assert_about_tmo(uint64_t ms, unsigned ntmo, const char *what)
{
	if (ms + 50 < (uint64_t)TMO_MS || ms > ntmo * TMO_MS + SLACK_MS)
		fail_msg("%s took %llu ms (timeout %u ms)", what,
		    (unsigned long long)ms, TMO_MS);
}

static int open_tmo(struct tl_vol *t)
{
	struct raid_open_opts o;
	int rc;

	memset(&o, 0, sizeof(o));
	o.event_fn = tl_event_record;
	o.event_arg = &t->events;
	o.fault_inject = true;
	o.io_timeout_ms = TMO_MS;
	rc = raid_open((const char *const *)t->paths, t->npaths, &o, &t->v);
	if (rc != 0)
		t->v = NULL;
	return rc;
}

/*
 * A filled volume, reopened with the short I/O timeout.  Images in memory
 * when possible (/dev/shm), so that a busy disk does not make a healthy
 * disk miss the short deadline.
 */
static void make_vol(struct tl_vol *t, uint32_t n, uint32_t p, uint64_t seed)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;

	assert_int_equal(tl_vol_create(t, base, 1, n, p, DISK_BLOCKS, true),
	    0);
	assert_int_equal(tl_vol_fill(t, seed), 0);
	tl_vol_close(t);
	assert_int_equal(open_tmo(t), 0);
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

static void expect_no_answer_logged(struct tl_vol *t, size_t disk)
{
	char needle[64];

	snprintf(needle, sizeof(needle), "no answer for %u ms", TMO_MS);
	if (tl_log_count_with(t->paths[disk], needle, NULL) == 0) {
		tl_log_dump("hang");
		fail_msg("no log line names %s with \"%s\"", t->paths[disk],
		    needle);
	}
}

static void test_hang_read(void **state)
{
	struct tl_vol t;
	uint8_t *buf = malloc(2 * TL_BS);
	uint64_t blk, vbn = 4 * 9 + 1, t0;	/* stripe 9, data disk 1 */
	struct raid_disk_info info;
	size_t disk;
	char needle[64];

	assert_non_null(buf);
	make_vol(&t, 4, 1, 1);
	assert_int_equal(raid_vbn_locate(t.v, vbn, &disk, &blk), 0);
	assert_int_equal(raid_fault_set(t.v, disk, RAID_FAULT_HANG, 0, 0), 0);
	tl_log_capture_start(FL_LOG_INFO);
	t0 = fl_now_mono_ns();
	assert_int_equal(raid_read(t.v, vbn, 2, buf), 0);
	assert_about_tmo(ms_since(t0), 1, "read with a hung disk");
	assert_memory_equal(buf, tl_shadow(&t, vbn), 2 * TL_BS);

	info = info_of(&t, disk);
	assert_int_equal(info.state, RAID_DISK_FAILED);
	assert_true(info.timeouts >= 1);
	assert_true(info.read_errors >= 1);
	snprintf(needle, sizeof(needle), "no answer for %u ms", TMO_MS);
	assert_non_null(strstr(info.reason, needle));
	assert_int_equal(tl_events_count(&t.events, RAID_EV_DISK_FAILED), 1);
	expect_no_answer_logged(&t, disk);
	tl_log_capture_stop();

	/* Now the disk is out: 64 reads, none waits for it. */
	t0 = fl_now_mono_ns();
	verify(&t, "hung disk out");
	assert_true(ms_since(t0) < SLACK_MS);

	/*
	 * Let the hung read go: its worker reads the disk now, but the
	 * caller gave up long ago, so nothing may land in the buffer.
	 */
	memset(buf, 0xa5, 2 * TL_BS);
	assert_int_equal(raid_fault_set(t.v, disk, RAID_FAULT_NONE, 0, 0), 0);
	usleep(100 * 1000);
	for (size_t i = 0; i < 2 * TL_BS; i++)
		if (buf[i] != 0xa5)
			fail_msg("byte %zu of the caller's buffer changed "
			    "after the hung read came back", i);
	assert_int_equal(info_of(&t, disk).state, RAID_DISK_FAILED);
	verify(&t, "after the hang cleared");
	free(buf);
	tl_vol_destroy(&t);
}

static void test_hang_write(void **state)
{
	struct tl_vol t;
	uint64_t rng = 9, t0;
	size_t disk = 2;	/* data disk 2 */

	make_vol(&t, 4, 1, 2);
	assert_int_equal(raid_fault_set(t.v, disk, RAID_FAULT_HANG, 0, 0), 0);
	/* A partial-stripe write first: it reads disk 2, or writes it. */
	t0 = fl_now_mono_ns();
	assert_int_equal(tl_vol_write_random(&t, 4 * 3 + 1, 2, &rng), 0);
	assert_about_tmo(ms_since(t0), 2, "partial write with a hung disk");
	assert_int_equal(info_of(&t, disk).state, RAID_DISK_FAILED);
	assert_true(info_of(&t, disk).timeouts >= 1);
	/* Then full stripes and ragged ends, degraded, quickly. */
	t0 = fl_now_mono_ns();
	for (uint64_t v = 0; v < t.nvbns; v += 11)
		assert_int_equal(tl_vol_write_random(&t, v,
		    (uint32_t)FL_MIN(9, t.nvbns - v), &rng), 0);
	assert_int_equal(raid_flush(t.v), 0);
	assert_true(ms_since(t0) < TMO_MS + SLACK_MS);
	verify(&t, "degraded writes");

	/* The disk answers again: still out, still right. */
	assert_int_equal(raid_fault_set(t.v, disk, RAID_FAULT_NONE, 0, 0), 0);
	usleep(50 * 1000);
	assert_int_equal(info_of(&t, disk).state, RAID_DISK_FAILED);
	verify(&t, "after the hang cleared");
	assert_int_equal(tl_vol_write_random(&t, 5, 7, &rng), 0);
	assert_int_equal(raid_flush(t.v), 0);
	verify(&t, "writes after the hang cleared");

	/* Reopen: the disk missed writes, so it is stale and left out. */
	tl_vol_close(&t);
	assert_int_equal(open_tmo(&t), 0);
	assert_int_equal(info_of(&t, disk).state, RAID_DISK_MISSING);
	verify(&t, "reopened");
	tl_vol_destroy(&t);
}

static void test_hang_parity_write(void **state)
{
	struct tl_vol t;
	uint64_t rng = 3, t0;
	size_t pd;
	uint64_t pb;

	make_vol(&t, 3, 2, 3);
	assert_int_equal(raid_parity_locate(t.v, 0, 1, &pd, &pb), 0);
	assert_int_equal(raid_fault_set(t.v, pd, RAID_FAULT_HANG, 0, 0), 0);
	/* Whole stripes: nothing is read, the parity write times out. */
	t0 = fl_now_mono_ns();
	assert_int_equal(tl_vol_write_random(&t, 0, 3 * 8, &rng), 0);
	assert_about_tmo(ms_since(t0), 2, "full-stripe write, hung parity");
	assert_int_equal(info_of(&t, pd).state, RAID_DISK_FAILED);
	assert_true(info_of(&t, pd).write_errors >= 1);
	assert_int_equal(raid_flush(t.v), 0);
	verify(&t, "after a hung parity disk");
	tl_vol_close(&t);
	assert_int_equal(open_tmo(&t), 0);
	verify(&t, "reopened after a hung parity disk");
	tl_vol_destroy(&t);
}

static void test_hang_too_many(void **state)
{
	struct tl_vol t;
	uint8_t *buf = malloc(8 * TL_BS);
	struct raid_status st;
	uint64_t rng = 4, t0, wrong = 0;
	int rc;

	assert_non_null(buf);
	make_vol(&t, 4, 1, 4);
	/* P + 1 = 2 disks stop answering. */
	assert_int_equal(raid_fault_set(t.v, 0, RAID_FAULT_HANG, 0, 0), 0);
	assert_int_equal(raid_fault_set(t.v, 3, RAID_FAULT_HANG, 0, 0), 0);
	t0 = fl_now_mono_ns();
	rc = raid_read(t.v, 0, 8, buf);
	assert_int_equal(rc, -FL_EDEGRADED);
	assert_about_tmo(ms_since(t0), 2, "read with P + 1 hung disks");
	raid_status(t.v, &st);
	assert_true(st.offline);
	assert_true(tl_events_count(&t.events, RAID_EV_GROUP_OFFLINE) >= 1);
	/* From now on, at once: an error, never data. */
	t0 = fl_now_mono_ns();
	for (uint64_t v = 0; v < t.nvbns; v += 8) {
		memset(buf, 0, 8 * TL_BS);
		rc = raid_read(t.v, v, 8, buf);
		if (rc == 0)
			wrong++;
		else
			assert_int_equal(rc, -FL_EDEGRADED);
	}
	assert_int_equal(wrong, 0);
	assert_int_equal(tl_vol_write_random(&t, 1, 1, &rng), -FL_EDEGRADED);
	assert_int_equal(raid_flush(t.v), -FL_EDEGRADED);
	assert_true(ms_since(t0) < SLACK_MS);
	/* Closing does not wait for the hung disks. */
	t0 = fl_now_mono_ns();
	tl_vol_close(&t);
	assert_true(ms_since(t0) < TMO_MS + SLACK_MS);
	free(buf);
	tl_vol_destroy(&t);
}

static void test_hang_flush(void **state)
{
	struct tl_vol t;
	uint64_t rng = 5, t0;
	size_t disk = 1;

	make_vol(&t, 4, 2, 5);
	for (uint64_t v = 0; v < t.nvbns; v += 13)
		assert_int_equal(tl_vol_write_random(&t, v, 5, &rng), 0);
	/* The disk hangs with the writes not yet flushed. */
	assert_int_equal(raid_fault_set(t.v, disk, RAID_FAULT_HANG, 0, 0), 0);
	tl_log_capture_start(FL_LOG_INFO);
	t0 = fl_now_mono_ns();
	assert_int_equal(raid_flush(t.v), 0);
	assert_about_tmo(ms_since(t0), 2, "flush with a hung disk");
	assert_int_equal(info_of(&t, disk).state, RAID_DISK_FAILED);
	assert_true(info_of(&t, disk).timeouts >= 1);
	expect_no_answer_logged(&t, disk);
	tl_log_capture_stop();
	verify(&t, "after the flush");
	/* Flushed means durable on the others: a crash now loses nothing. */
	assert_int_equal(raid_fault_crash(t.v, RAID_CRASH_DROP_ALL, 1), 0);
	tl_vol_close(&t);
	assert_int_equal(open_tmo(&t), 0);
	assert_int_equal(info_of(&t, disk).state, RAID_DISK_MISSING);
	verify(&t, "reopened after the crash");
	tl_vol_destroy(&t);
}

static void *clear_later(void *arg)
{
	struct tl_vol *t = arg;

	usleep(TMO_MS / 3 * 1000);
	(void)raid_fault_set(t->v, 1, RAID_FAULT_NONE, 0, 0);
	return NULL;
}

static void test_slow_not_failed(void **state)
{
	struct tl_vol t;
	uint8_t *buf = malloc(4 * TL_BS);
	pthread_t th;
	uint64_t t0, ms;

	/* A disk that answers late, but within the timeout, stays in. */
	assert_non_null(buf);
	make_vol(&t, 4, 1, 8);
	assert_int_equal(raid_fault_set(t.v, 1, RAID_FAULT_HANG, 0, 0), 0);
	t0 = fl_now_mono_ns();
	assert_int_equal(pthread_create(&th, NULL, clear_later, &t), 0);
	assert_int_equal(raid_read(t.v, 4 * 5, 4, buf), 0);
	ms = ms_since(t0);
	pthread_join(th, NULL);
	assert_memory_equal(buf, tl_shadow(&t, 4 * 5), 4 * TL_BS);
	if (ms + 20 < TMO_MS / 3)
		fail_msg("the read did not wait for the slow disk (%llu ms)",
		    (unsigned long long)ms);
	if (ms < TMO_MS) {
		/* Answered in time (not guaranteed on a loaded machine). */
		assert_int_equal(info_of(&t, 1).state, RAID_DISK_OK);
		assert_int_equal(info_of(&t, 1).timeouts, 0);
	}
	verify(&t, "after a slow disk");
	free(buf);
	tl_vol_destroy(&t);
}

static void test_hang_rebuild(void **state)
{
	struct tl_vol t;
	size_t sp;
	uint64_t t0;
	int rc;

	/* P = 2, disk 0 failed, rebuilt onto a spare while disk 1 hangs. */
	make_vol(&t, 4, 2, 9);
	assert_int_equal(raid_fail_disk(t.v, 0, "test"), 0);
	sp = tl_vol_add_path(&t, "spare0.img");
	assert_int_equal(raid_add_spare(t.v, t.paths[sp]), 0);
	assert_int_equal(raid_fault_set(t.v, 1, RAID_FAULT_HANG, 0, 0), 0);
	t0 = fl_now_mono_ns();
	assert_int_equal(raid_rebuild_start(t.v), 0);
	assert_int_equal(raid_rebuild_wait(t.v), 0);
	assert_about_tmo(ms_since(t0), 2, "rebuild with a hung survivor");
	assert_int_equal(info_of(&t, 1).state, RAID_DISK_FAILED);
	assert_int_equal(info_of(&t, sp).state, RAID_DISK_OK);
	assert_int_equal(info_of(&t, sp).position, 0);
	verify(&t, "rebuilt past a hung survivor");

	/* Now the next spare hangs itself: that rebuild fails, in time. */
	sp = tl_vol_add_path(&t, "spare1.img");
	assert_int_equal(raid_add_spare(t.v, t.paths[sp]), 0);
	assert_int_equal(raid_fault_set(t.v, sp, RAID_FAULT_HANG, 0, 0), 0);
	t0 = fl_now_mono_ns();
	assert_int_equal(raid_rebuild_start(t.v), 0);
	rc = raid_rebuild_wait(t.v);
	assert_int_not_equal(rc, 0);
	assert_about_tmo(ms_since(t0), 2, "rebuild onto a hung spare");
	assert_int_equal(info_of(&t, sp).state, RAID_DISK_FAILED);
	assert_true(tl_events_count(&t.events, RAID_EV_REBUILD_FAILED) >= 1);
	verify(&t, "after the failed rebuild");
	tl_vol_destroy(&t);
}

struct reader {
	struct tl_vol *t;
	uint64_t vbn;
	int rc;
	bool right;
	uint64_t ms;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint8_t *buf = malloc(4 * TL_BS);
	uint64_t t0 = fl_now_mono_ns();

	r->rc = buf == NULL ? -ENOMEM : raid_read(r->t->v, r->vbn, 4, buf);
	r->ms = ms_since(t0);
	r->right = r->rc == 0 &&
	    memcmp(buf, tl_shadow(r->t, r->vbn), 4 * TL_BS) == 0;
	free(buf);
	return NULL;
}

static void test_hang_many_readers(void **state)
{
	enum { NR = 6 };
	struct tl_vol t;
	struct reader r[NR];
	pthread_t th[NR];

	make_vol(&t, 4, 1, 6);
	assert_int_equal(raid_fault_set(t.v, 2, RAID_FAULT_HANG, 0, 0), 0);
	for (int i = 0; i < NR; i++) {
		r[i].t = &t;
		r[i].vbn = (uint64_t)i * 4 * 7;
		assert_int_equal(pthread_create(&th[i], NULL, reader_main,
		    &r[i]), 0);
	}
	for (int i = 0; i < NR; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(r[i].rc, 0);
		assert_true(r[i].right);
		if (r[i].ms > TMO_MS + SLACK_MS)
			fail_msg("reader %d took %llu ms", i,
			    (unsigned long long)r[i].ms);
	}
	assert_int_equal(info_of(&t, 2).state, RAID_DISK_FAILED);
	assert_int_equal(tl_events_count(&t.events, RAID_EV_DISK_FAILED), 1);
	verify(&t, "after many readers");
	tl_vol_destroy(&t);
}

/* One of the threads of test_hang_under_load: its own quarter of VBNs. */
struct loader {
	struct tl_vol *t;
	pthread_t th;
	uint64_t vbn0, nvbn, seed;
	atomic_bool *stop;
	uint64_t ops, wrong;
	int err;
};

static void *loader_main(void *arg)
{
	struct loader *l = arg;
	uint8_t *buf = malloc(16 * TL_BS);
	uint64_t rng = l->seed;

	if (buf == NULL) {
		l->err = -ENOMEM;
		return NULL;
	}
	while (!atomic_load(l->stop) && l->err == 0) {
		uint64_t off = tl_rand_below(&rng, l->nvbn);
		uint64_t want = 1 + tl_rand_below(&rng, 16);
		uint32_t n = (uint32_t)FL_MIN(want, l->nvbn - off);
		int rc;

		if (tl_rand(&rng) & 1)
			rc = tl_vol_write_random(l->t, l->vbn0 + off, n, &rng);
		else {
			rc = raid_read(l->t->v, l->vbn0 + off, n, buf);
			if (rc == 0 && memcmp(buf, tl_shadow(l->t, l->vbn0 +
			    off), (size_t)n * TL_BS) != 0)
				l->wrong++;
		}
		if (rc != 0)
			l->err = rc;
		l->ops++;
	}
	free(buf);
	return NULL;
}

static void test_hang_under_load(void **state)
{
	enum { NL = 4 };
	struct tl_vol t;
	struct loader l[NL];
	atomic_bool stop = false;
	uint64_t t0;

	/* Writers and readers at work while two disks (P = 2) go silent. */
	make_vol(&t, 4, 2, 10);
	for (int i = 0; i < NL; i++) {
		memset(&l[i], 0, sizeof(l[i]));
		l[i].t = &t;
		l[i].nvbn = t.nvbns / NL;
		l[i].vbn0 = (uint64_t)i * l[i].nvbn;
		l[i].seed = 100 + (uint64_t)i;
		l[i].stop = &stop;
		assert_int_equal(pthread_create(&l[i].th, NULL, loader_main,
		    &l[i]), 0);
	}
	usleep(150 * 1000);
	assert_int_equal(raid_fault_set(t.v, 1, RAID_FAULT_HANG, 0, 0), 0);
	usleep(TMO_MS * 2 * 1000);
	assert_int_equal(raid_fault_set(t.v, 4, RAID_FAULT_HANG, 0, 0), 0);
	usleep(TMO_MS * 2 * 1000);
	atomic_store(&stop, true);
	for (int i = 0; i < NL; i++) {
		pthread_join(l[i].th, NULL);
		if (l[i].err != 0 || l[i].wrong != 0)
			fail_msg("loader %d: %llu ops, %llu wrong reads, error "
			    "%s", i, (unsigned long long)l[i].ops,
			    (unsigned long long)l[i].wrong,
			    fl_strerror(l[i].err));
		assert_true(l[i].ops >= 10);
	}
	assert_int_equal(info_of(&t, 1).state, RAID_DISK_FAILED);
	assert_int_equal(info_of(&t, 4).state, RAID_DISK_FAILED);
	assert_int_equal(raid_flush(t.v), 0);
	verify(&t, "after load with two hung disks");
	/* The disks answer again: nothing they do now changes the data. */
	assert_int_equal(raid_fault_set(t.v, 1, RAID_FAULT_NONE, 0, 0), 0);
	assert_int_equal(raid_fault_set(t.v, 4, RAID_FAULT_NONE, 0, 0), 0);
	usleep(100 * 1000);
	verify(&t, "after the hangs cleared");
	t0 = fl_now_mono_ns();
	tl_vol_close(&t);
	assert_true(ms_since(t0) < SLACK_MS);
	assert_int_equal(open_tmo(&t), 0);
	verify(&t, "reopened after load with two hung disks");
	tl_vol_destroy(&t);
}

static void test_hang_close(void **state)
{
	struct tl_vol t;
	uint64_t t0;

	/* Hung before anyone noticed: the close's flush finds it. */
	make_vol(&t, 3, 2, 7);
	assert_int_equal(raid_fault_set(t.v, 1, RAID_FAULT_HANG, 0, 0), 0);
	t0 = fl_now_mono_ns();
	tl_vol_close(&t);
	assert_about_tmo(ms_since(t0), 2, "close with a hung disk");
	assert_int_equal(open_tmo(&t), 0);
	assert_int_equal(info_of(&t, 1).state, RAID_DISK_MISSING);
	verify(&t, "reopened after closing with a hung disk");

	/* Found out already, its thread still stuck: close at once. */
	assert_int_equal(raid_fault_set(t.v, 0, RAID_FAULT_HANG, 0, 0), 0);
	verify(&t, "second disk hung");	/* P = 2: two out */
	t0 = fl_now_mono_ns();
	tl_vol_close(&t);
	assert_true(ms_since(t0) < SLACK_MS);
	tl_vol_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hang_read, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hang_write, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hang_parity_write, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hang_too_many, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hang_flush, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hang_many_readers, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hang_close, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_slow_not_failed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hang_rebuild, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hang_under_load, setup,
		    teardown),
	};

	fl_log_set_level(FL_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
