/*
 * tests/raid/test_raid_rebuild.c: rebuild onto a spare while writes go on.
 *
 * A disk is failed (or missing), a spare added, and a rebuild started while
 * a writer thread keeps writing random extents (a bounded number) into the
 * even stripes and a reader thread checks the odd ones.  Progress
 * must be visible in raid_status while the rebuild runs.  Afterwards every
 * block reads back what was last written, the spare holds the position,
 * and a reopen with the new member list runs healthy; then another disk is
 * failed so the rebuilt disk's contents are used to reconstruct, and the
 * data are still right.  With P = 2, two failures rebuilt one after the
 * other; and the automatic rebuild when a spare is present.
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
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/raid.h"
#include "tests/lib/tl_log.h"
#include "tests/lib/tl_raid.h"
#include "tests/lib/tl_tmpdir.h"

#define DISK_BLOCKS	1024

struct load {
	struct tl_vol *t;
	uint64_t seed;
	/* The writer writes inside even stripes only, the reader checks
	 * odd stripes, which nobody writes meanwhile. */
	uint64_t nstripes;	/* over the whole volume */
	int nwrites;
	int wrc, rrc;
	uint64_t writes_done, reads_done, bad_reads;
	int stop;		/* atomic */
	pthread_t wth, rth;
};

static void *writer(void *p)
{
	struct load *l = p;
	uint64_t rng = l->seed;

	for (int i = 0; i < l->nwrites; i++) {
		uint32_t w = l->t->ndata;
		uint64_t s = 2 * tl_rand_below(&rng, l->nstripes / 2);
		uint32_t off = (uint32_t)tl_rand_below(&rng, w);
		uint32_t n = 1 + (uint32_t)tl_rand_below(&rng, w - off);
		uint64_t vbn = s * w + off;
		int rc = tl_vol_write_random(l->t, vbn, n, &rng);
		if (rc != 0) {
			l->wrc = rc;
			break;
		}
		l->writes_done++;
		if (i % 64 == 63 && (rc = raid_flush(l->t->v)) != 0) {
			l->wrc = rc;
			break;
		}
	}
	__atomic_store_n(&l->stop, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *reader(void *p)
{
	struct load *l = p;
	uint64_t rng = l->seed ^ 0x5555;
	uint8_t *buf = malloc((size_t)l->t->ndata * TL_BS);

	while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
		uint32_t n = l->t->ndata;
		uint64_t vbn = (2 * tl_rand_below(&rng, l->nstripes / 2) + 1) *
		    n;
		int rc = raid_read(l->t->v, vbn, n, buf);
		if (rc != 0) {
			l->rrc = rc;
			break;
		}
		if (memcmp(buf, tl_shadow(l->t, vbn), (size_t)n * TL_BS) != 0)
			l->bad_reads++;
		l->reads_done++;
	}
	free(buf);
	return NULL;
}

static void load_start(struct load *l, struct tl_vol *t, uint64_t seed,
    int nwrites)
{
	memset(l, 0, sizeof(*l));
	l->t = t;
	l->seed = seed;
	l->nwrites = nwrites;
	l->nstripes = t->nvbns / t->ndata;
	assert_int_equal(pthread_create(&l->wth, NULL, writer, l), 0);
	assert_int_equal(pthread_create(&l->rth, NULL, reader, l), 0);
}

static void load_finish(struct load *l)
{
	pthread_join(l->wth, NULL);
	pthread_join(l->rth, NULL);
	if (l->wrc != 0)
		fail_msg("writer: %s after %llu writes", fl_strerror(l->wrc),
		    (unsigned long long)l->writes_done);
	if (l->rrc != 0)
		fail_msg("reader: %s", fl_strerror(l->rrc));
	assert_int_equal(l->bad_reads, 0);
	assert_int_equal(l->writes_done, (uint64_t)l->nwrites);
}

struct progress {
	bool seen;
	bool sane;
	uint64_t total, max_done, polls;
};

/* Poll raid_status until no rebuild runs. */
static void watch_rebuild(struct tl_vol *t, struct progress *pr)
{
	memset(pr, 0, sizeof(*pr));
	pr->sane = true;
	for (;;) {
		struct raid_status st;
		raid_status(t->v, &st);
		pr->polls++;
		if (!st.rebuilding)
			break;
		pr->seen = true;
		if (st.rebuild_done < pr->max_done ||
		    st.rebuild_done > st.rebuild_total)
			pr->sane = false;
		pr->max_done = st.rebuild_done;
		pr->total = st.rebuild_total;
		usleep(200);
	}
}

static void verify(struct tl_vol *t, const char *what)
{
	int err;
	uint64_t bad = tl_vol_verify(t, &err);

	if (bad != 0)
		fail_msg("%s: %llu wrong blocks (first error %s)", what,
		    (unsigned long long)bad, fl_strerror(err));
}

/* The disk index now holding (group, pos), and its info. */
static size_t member_at(struct tl_vol *t, uint32_t g, uint32_t pos,
    struct raid_disk_info *info)
{
	size_t n = raid_ndisks(t->v);

	for (size_t d = 0; d < n; d++) {
		assert_int_equal(raid_disk_info(t->v, d, info), 0);
		if (info->group == (int)g && info->position == (int)pos &&
		    info->state != RAID_DISK_FAILED &&
		    info->state != RAID_DISK_MISSING)
			return d;
	}
	fail_msg("no working member at group %u position %u", g, pos);
	return 0;
}

/* Member list in position order, from raid_disk_info. */
static void member_paths(struct tl_vol *t, char **out)
{
	uint32_t w = t->ndata + t->nparity;

	for (uint32_t g = 0; g < t->ngroups; g++) {
		for (uint32_t pos = 0; pos < w; pos++) {
			struct raid_disk_info info;
			member_at(t, g, pos, &info);
			out[g * w + pos] = strdup(info.path);
		}
	}
}

/* Replace t->paths by the current member list (no spares). */
static void adopt_members(struct tl_vol *t)
{
	char *np[TL_MAX_PATHS];
	size_t members = (size_t)t->ngroups * (t->ndata + t->nparity);

	member_paths(t, np);
	for (size_t i = 0; i < t->npaths; i++)
		free(t->paths[i]);
	for (size_t i = 0; i < members; i++)
		t->paths[i] = np[i];
	t->npaths = members;
}

static void reopen_healthy_and_check(struct tl_vol *t, uint32_t g,
    uint32_t avoid_pos)
{
	struct raid_status st;

	adopt_members(t);
	tl_vol_close(t);
	assert_int_equal(tl_vol_open(t), 0);
	raid_status(t->v, &st);
	assert_false(st.degraded);
	for (size_t d = 0; d < raid_ndisks(t->v); d++) {
		struct raid_disk_info info;
		assert_int_equal(raid_disk_info(t->v, d, &info), 0);
		assert_int_equal(info.state, RAID_DISK_OK);
	}
	verify(t, "reopened after rebuild");
	/* Use the rebuilt disk to reconstruct another one. */
	assert_int_equal(raid_fail_disk(t->v, tl_disk(t, g,
	    (avoid_pos + 1) % (t->ndata + t->nparity)), "test"), 0);
	verify(t, "rebuilt disk used for reconstruction");
}

static void test_rebuild_p1_under_load(void **state)
{
	struct tl_vol t;
	struct load l;
	struct progress pr;
	struct raid_disk_info info;
	char spare[4200];
	size_t victim, sd;
	int rc;

	assert_int_equal(tl_vol_create(&t, NULL, 1, 4, 1, DISK_BLOCKS,
	    false), 0);
	assert_int_equal(tl_vol_fill(&t, 11), 0);
	assert_int_equal(raid_rebuild_start(t.v), -ENOENT);
	victim = tl_disk(&t, 0, 2);
	assert_int_equal(raid_fail_disk(t.v, victim, "test: rebuild"), 0);
	assert_true(tl_events_count(&t.events, RAID_EV_DISK_FAILED) >= 1);
	assert_int_equal(raid_rebuild_start(t.v), -ENOSPC);

	tl_path(spare, sizeof(spare), t.dir, "spare0.img");
	assert_int_equal(raid_add_spare(t.v, spare), 0);
	sd = raid_ndisks(t.v) - 1;
	assert_int_equal(raid_disk_info(t.v, sd, &info), 0);
	assert_string_equal(info.path, spare);
	assert_int_equal(info.state, RAID_DISK_SPARE);
	assert_int_equal(info.group, -1);

	load_start(&l, &t, 12, 600);
	assert_int_equal(raid_rebuild_start(t.v), 0);
	rc = raid_rebuild_start(t.v);
	assert_true(rc == -EBUSY || rc == -ENOENT);
	watch_rebuild(&t, &pr);
	assert_int_equal(raid_rebuild_wait(t.v), 0);
	load_finish(&l);
	if (!pr.seen)
		fail_msg("rebuild of %u stripes never visible in raid_status "
		    "(%llu polls)", DISK_BLOCKS, (unsigned long long)pr.polls);
	assert_true(pr.sane);
	assert_int_equal(pr.total, DISK_BLOCKS);
	assert_int_equal(tl_events_count(&t.events, RAID_EV_REBUILD_STARTED),
	    1);
	assert_int_equal(tl_events_count(&t.events, RAID_EV_REBUILD_DONE), 1);
	assert_int_equal(tl_events_count(&t.events, RAID_EV_REBUILD_FAILED),
	    0);

	/* The spare holds position 2 now; the volume is whole. */
	assert_int_equal(member_at(&t, 0, 2, &info), sd);
	assert_int_equal(info.state, RAID_DISK_OK);
	{
		struct raid_status st;
		raid_status(t.v, &st);
		assert_false(st.degraded);
		assert_false(st.rebuilding);
	}
	assert_int_equal(raid_rebuild_start(t.v), -ENOENT);
	verify(&t, "after rebuild");
	/* Writes after the rebuild reach the new disk too. */
	{
		uint64_t rng = 77;
		for (uint64_t vbn = 0; vbn < t.nvbns; vbn += 97)
			assert_int_equal(tl_vol_write_random(&t, vbn, 3, &rng),
			    0);
		assert_int_equal(raid_flush(t.v), 0);
	}
	reopen_healthy_and_check(&t, 0, 2);
	tl_vol_destroy(&t);
}

static void test_rebuild_p2_two_failures(void **state)
{
	struct tl_vol t;
	struct load l;
	struct progress pr;
	struct raid_disk_info info;
	char spare[4200];
	size_t s0;

	assert_int_equal(tl_vol_create(&t, NULL, 2, 3, 2, DISK_BLOCKS / 2,
	    false), 0);
	assert_int_equal(tl_vol_fill(&t, 21), 0);
	/* A data disk and a parity disk of group 1. */
	assert_int_equal(raid_fail_disk(t.v, tl_disk(&t, 1, 0), "test"), 0);
	assert_int_equal(raid_fail_disk(t.v, tl_disk(&t, 1, 4), "test"), 0);
	verify(&t, "two failed");
	for (int i = 0; i < 2; i++) {
		tl_path(spare, sizeof(spare), t.dir, "spare%d.img", i);
		assert_int_equal(raid_add_spare(t.v, spare), 0);
	}
	s0 = raid_ndisks(t.v) - 2;

	load_start(&l, &t, 22, 600);
	assert_int_equal(raid_rebuild_start(t.v), 0);
	watch_rebuild(&t, &pr);
	assert_int_equal(raid_rebuild_wait(t.v), 0);
	{
		struct raid_status st;
		raid_status(t.v, &st);
		assert_true(st.degraded);	/* one still out */
	}
	assert_int_equal(raid_rebuild_start(t.v), 0);
	watch_rebuild(&t, &pr);
	assert_int_equal(raid_rebuild_wait(t.v), 0);
	load_finish(&l);
	assert_int_equal(raid_rebuild_start(t.v), -ENOENT);
	assert_int_equal(tl_events_count(&t.events, RAID_EV_REBUILD_DONE), 2);

	/* Both spares are members now. */
	assert_int_equal(raid_disk_info(t.v, s0, &info), 0);
	assert_int_equal(info.state, RAID_DISK_OK);
	assert_int_equal(info.group, 1);
	assert_int_equal(raid_disk_info(t.v, s0 + 1, &info), 0);
	assert_int_equal(info.state, RAID_DISK_OK);
	assert_int_equal(info.group, 1);
	verify(&t, "after two rebuilds");
	reopen_healthy_and_check(&t, 1, 0);
	/* With P = 2 a second failure is covered too: the other new disk
	 * and one more of group 1 out. */
	assert_int_equal(raid_fail_disk(t.v, tl_disk(&t, 1, 2), "test"), 0);
	verify(&t, "two out after rebuilds");
	tl_vol_destroy(&t);
}

/*
 * Double parity: a second disk of the group fails while the rebuild of the
 * first runs under writes.  The rebuild goes on from the survivors left,
 * the writes go on, and the rebuilt disk holds the right blocks: with it
 * and one more disk out, every block still reads back.
 */
static void test_rebuild_p2_second_failure_during(void **state)
{
	struct tl_vol t;
	struct load l;
	struct raid_status st;
	char spare[4200];

	(void)state;
	assert_int_equal(tl_vol_create(&t, NULL, 1, 4, 2, 4 * DISK_BLOCKS,
	    false), 0);
	assert_int_equal(tl_vol_fill(&t, 31), 0);
	assert_int_equal(raid_fail_disk(t.v, tl_disk(&t, 0, 1), "test"), 0);
	tl_path(spare, sizeof(spare), t.dir, "spare.img");
	assert_int_equal(raid_add_spare(t.v, spare), 0);
	load_start(&l, &t, 32, 400);
	assert_int_equal(raid_rebuild_start(t.v), 0);
	for (;;) {
		raid_status(t.v, &st);
		if (!st.rebuilding || st.rebuild_done >= st.rebuild_total / 3)
			break;
		usleep(100);
	}
	assert_int_equal(raid_fail_disk(t.v, tl_disk(&t, 0, 3), "test"), 0);
	assert_int_equal(raid_rebuild_wait(t.v), 0);
	load_finish(&l);
	verify(&t, "rebuilt with a second disk failed during it");
	/* The rebuilt disk is read now: the Q disk out too. */
	assert_int_equal(raid_fail_disk(t.v, tl_disk(&t, 0, 5), "test"), 0);
	verify(&t, "rebuilt disk, two others out");
	tl_vol_destroy(&t);
}

/* A disk missing at open (no path) is rebuilt onto a spare the same way. */
static void test_rebuild_missing_disk(void **state)
{
	struct tl_vol t;
	const char *paths[TL_MAX_PATHS];
	char spare[4200];
	uint64_t rng = 5;

	assert_int_equal(tl_vol_create(&t, NULL, 1, 3, 1, 256, false), 0);
	assert_int_equal(tl_vol_fill(&t, 31), 0);
	tl_vol_close(&t);
	for (size_t i = 0; i < t.npaths; i++)
		paths[i] = t.paths[i];
	paths[0] = NULL;
	assert_int_equal(tl_vol_open_paths(&t, paths, t.npaths), 0);
	for (int i = 0; i < 50; i++)
		assert_int_equal(tl_vol_write_random(&t,
		    tl_rand_below(&rng, t.nvbns - 4), 4, &rng), 0);
	tl_path(spare, sizeof(spare), t.dir, "spare.img");
	assert_int_equal(raid_add_spare(t.v, spare), 0);
	assert_int_equal(raid_rebuild_start(t.v), 0);
	assert_int_equal(raid_rebuild_wait(t.v), 0);
	verify(&t, "missing disk rebuilt");
	reopen_healthy_and_check(&t, 0, 0);
	tl_vol_destroy(&t);
}

/* auto_rebuild: a failure with a spare standing by starts it alone. */
static void test_auto_rebuild(void **state)
{
	struct tl_vol t;
	char spare[4200];
	struct raid_disk_info info;

	assert_int_equal(tl_vol_create(&t, NULL, 1, 4, 1, 256, false), 0);
	assert_int_equal(tl_vol_fill(&t, 41), 0);
	tl_path(spare, sizeof(spare), t.dir, "spare.img");
	assert_int_equal(raid_add_spare(t.v, spare), 0);
	tl_vol_close(&t);
	/* Reopen with the spare listed and auto_rebuild on. */
	tl_vol_add_path(&t, "spare.img");
	t.auto_rebuild = true;
	assert_int_equal(tl_vol_open(&t), 0);
	assert_int_equal(raid_disk_info(t.v, t.npaths - 1, &info), 0);
	assert_int_equal(info.state, RAID_DISK_SPARE);
	assert_int_equal(raid_fail_disk(t.v, tl_disk(&t, 0, 1), "test"), 0);
	assert_int_equal(raid_rebuild_wait(t.v), 0);
	assert_int_equal(tl_events_count(&t.events, RAID_EV_REBUILD_DONE), 1);
	assert_int_equal(member_at(&t, 0, 1, &info), t.npaths - 1);
	verify(&t, "after automatic rebuild");
	/* Again and again: fail whichever disk holds a position, add a
	 * spare, let the rebuild start by itself, wait (the waiter and the
	 * finishing rebuild thread meet on the rebuild lock every time). */
	for (int i = 0; i < 10; i++) {
		char name[64];
		uint32_t pos = (uint32_t)(i % 5);
		size_t k;

		snprintf(name, sizeof(name), "spare-%d.img", i);
		k = tl_vol_add_path(&t, name);
		assert_int_equal(raid_add_spare(t.v, t.paths[k]), 0);
		assert_int_equal(raid_fail_disk(t.v, member_at(&t, 0, pos,
		    &info), "test"), 0);
		assert_int_equal(raid_rebuild_wait(t.v), 0);
		assert_string_equal(t.paths[member_at(&t, 0, pos, &info)],
		    t.paths[k]);
	}
	assert_int_equal(tl_events_count(&t.events, RAID_EV_REBUILD_DONE),
	    11);
	verify(&t, "after 11 automatic rebuilds");
	t.auto_rebuild = false;
	reopen_healthy_and_check(&t, 0, 1);
	tl_vol_destroy(&t);
}

/*
 * raid_add_spare never labels over a disk of this or another volume (under
 * any of its names), and a
 * rebuilt disk offered back in the spare slot (with the stale disk it
 * replaced at its position) is refused by position (R6).
 */
static void test_spare_refusals(void **state)
{
	struct tl_vol t, o;
	char spare[4200];
	const char *paths[TL_MAX_PATHS];
	int err;

	assert_int_equal(tl_vol_create(&t, NULL, 1, 3, 1, 64, false), 0);
	assert_int_equal(tl_vol_fill(&t, 61), 0);
	assert_int_equal(tl_vol_create(&o, NULL, 1, 3, 1, 64, false), 0);
	assert_int_equal(tl_vol_fill(&o, 62), 0);
	tl_vol_close(&o);
	assert_int_equal(raid_add_spare(t.v, o.paths[0]), -EEXIST);
	assert_int_equal(raid_add_spare(t.v, t.paths[1]), -EEXIST);
	assert_int_equal(raid_ndisks(t.v), 4);
	/* The other volume is untouched. */
	assert_int_equal(tl_vol_open(&o), 0);
	assert_int_equal(tl_vol_verify(&o, &err), 0);
	tl_vol_destroy(&o);

	assert_int_equal(raid_fail_disk(t.v, 2, "test"), 0);
	/* Another name for a disk of the volume, working or failed, is the
	 * same disk: its late writes must not land on a rebuilt spare (R5). */
	tl_path(spare, sizeof(spare), t.dir, "alias-1.img");
	assert_int_equal(symlink(t.paths[1], spare), 0);
	assert_int_equal(raid_add_spare(t.v, spare), -EEXIST);
	tl_path(spare, sizeof(spare), t.dir, "alias-2.img");
	assert_int_equal(link(t.paths[2], spare), 0);
	assert_int_equal(raid_add_spare(t.v, spare), -EEXIST);
	assert_int_equal(raid_ndisks(t.v), 4);
	tl_path(spare, sizeof(spare), t.dir, "spare.img");
	assert_int_equal(raid_add_spare(t.v, spare), 0);
	assert_int_equal(raid_rebuild_start(t.v), 0);
	assert_int_equal(raid_rebuild_wait(t.v), 0);
	tl_vol_close(&t);
	for (size_t i = 0; i < t.npaths; i++)
		paths[i] = t.paths[i];
	paths[t.npaths] = spare;
	assert_int_equal(tl_vol_open_paths(&t, paths, t.npaths + 1),
	    -FL_ELABEL);
	/* In its place it is a member again. */
	paths[2] = spare;
	assert_int_equal(tl_vol_open_paths(&t, paths, t.npaths), 0);
	verify(&t, "rebuilt disk in its place");
	tl_vol_destroy(&t);
}

/* Wait until the rebuild's cursor has passed stripe `past` (it must still
 * run: the spare is throttled so that it takes seconds). */
static void wait_cursor_past(struct tl_vol *t, uint64_t past)
{
	struct raid_status st;

	for (;;) {
		raid_status(t->v, &st);
		if (!st.rebuilding)
			fail_msg("the rebuild ended before its cursor passed "
			    "stripe %llu", (unsigned long long)past);
		if (st.rebuild_done > past)
			return;
		usleep(200);
	}
}

/* What wafl does on a checksum mismatch: try raid_reconstruct's
 * alternatives until one matches (here: the shadow), then raid_repair. */
static void repair_like_wafl(struct tl_vol *t, uint64_t vbn)
{
	uint8_t buf[TL_BS];
	struct raid_status st;

	for (unsigned attempt = 0;; attempt++) {
		int rc = raid_reconstruct(t->v, vbn, attempt, buf);

		if (rc == -ENOENT)
			fail_msg("vbn %llu: no alternative gives the right "
			    "block", (unsigned long long)vbn);
		assert_int_equal(rc, 0);
		if (memcmp(buf, tl_shadow(t, vbn), TL_BS) == 0)
			break;
	}
	raid_status(t->v, &st);
	assert_true(st.rebuilding);	/* the repair meets the rebuild */
	assert_int_equal(raid_repair(t->v, vbn, buf), 0);
}

/*
 * raid_repair while the block's stripe is below the rebuild cursor.  A
 * survivor of the stripe is silently damaged, so the rebuild wrote a wrong
 * block to the spare; wafl's read finds the checksum wrong, steps around
 * the damage with raid_reconstruct and calls raid_repair with the right
 * block.  (a) The repaired block is on the position being rebuilt: the
 * spare, already past, must receive it.  (b) The repaired block is the
 * damaged survivor itself: the spare's block of that stripe was solved
 * from the damage and must be solved again.  After the rebuild, with the
 * spare read directly, both blocks read back right.
 */
static void test_repair_below_rebuild_cursor(void **state)
{
	struct tl_vol t;
	char spare[4200];
	uint8_t buf[TL_BS];
	const uint64_t va = 5 * 4 + 0, vb = 6 * 4 + 1;
	size_t sd;

	(void)state;
	assert_int_equal(tl_vol_create(&t, NULL, 1, 4, 2, 4096, true), 0);
	assert_int_equal(tl_vol_fill(&t, 71), 0);
	assert_int_equal(raid_fail_disk(t.v, tl_disk(&t, 0, 0), "test"), 0);
	/* Silent damage on position 1 in stripes 5 and 6. */
	assert_int_equal(raid_fault_flip_bit(t.v, tl_disk(&t, 0, 1), 5, 99),
	    0);
	assert_int_equal(raid_fault_flip_bit(t.v, tl_disk(&t, 0, 1), 6, 12345),
	    0);
	tl_path(spare, sizeof(spare), t.dir, "spare.img");
	assert_int_equal(raid_add_spare(t.v, spare), 0);
	sd = raid_ndisks(t.v) - 1;
	assert_int_equal(raid_fault_set(t.v, sd, RAID_FAULT_THROTTLE, 8, 0),
	    0);
	assert_int_equal(raid_rebuild_start(t.v), 0);
	wait_cursor_past(&t, 6);

	/* (a) The read of position 0 is solved from the damage. */
	assert_int_equal(raid_read(t.v, va, 1, buf), 0);
	assert_memory_not_equal(buf, tl_shadow(&t, va), TL_BS);
	repair_like_wafl(&t, va);
	/* (b) Position 1 is read directly: the damage itself. */
	assert_int_equal(raid_read(t.v, vb, 1, buf), 0);
	assert_memory_not_equal(buf, tl_shadow(&t, vb), TL_BS);
	repair_like_wafl(&t, vb);

	assert_int_equal(raid_rebuild_wait(t.v), 0);
	assert_int_equal(raid_fault_set(t.v, sd, RAID_FAULT_NONE, 0, 0), 0);
	assert_int_equal(raid_read(t.v, va, 1, buf), 0);
	if (memcmp(buf, tl_shadow(&t, va), TL_BS) != 0)
		fail_msg("a block repaired below the rebuild cursor reads back "
		    "wrong from the rebuilt disk");
	assert_int_equal(raid_read(t.v, vb - 1, 1, buf), 0);
	if (memcmp(buf, tl_shadow(&t, vb - 1), TL_BS) != 0)
		fail_msg("the rebuilt disk keeps the block it solved from a "
		    "damaged survivor that was repaired since");
	assert_int_equal(raid_read(t.v, vb, 1, buf), 0);
	assert_memory_equal(buf, tl_shadow(&t, vb), TL_BS);
	tl_vol_destroy(&t);
}

/* Fail position 0 of a 4+p volume, damage parity position 4 (the first
 * parity, the one a rebuild of a data disk solves from) in stripe st, and
 * rebuild onto a spare. */
static void rebuild_over_bad_parity(struct tl_vol *t, uint32_t p,
    uint64_t st)
{
	char spare[4200];

	assert_int_equal(tl_vol_create(t, NULL, 1, 4, p, 2048, true), 0);
	assert_int_equal(tl_vol_fill(t, 80 + p), 0);
	assert_int_equal(raid_fail_disk(t->v, tl_disk(t, 0, 0), "test"), 0);
	assert_int_equal(raid_fault_flip_bit(t->v, tl_disk(t, 0, 4), st, 777),
	    0);
	tl_path(spare, sizeof(spare), t->dir, "spare.img");
	assert_int_equal(raid_add_spare(t->v, spare), 0);
	raid_counters_reset(t->v);
	tl_log_capture_start(FL_LOG_WARN);
	assert_int_equal(raid_rebuild_start(t->v), 0);
	assert_int_equal(raid_rebuild_wait(t->v), 0);
}

/*
 * A rebuild checks the parity it does not solve from.  P = 2, one disk
 * out: one redundant block, so a silently damaged first parity is found
 * (counted, logged, raised) but cannot be told from a damaged data block;
 * the rebuilt block may be wrong and raid_reconstruct still offers the
 * right one.  P = 3: two redundant blocks locate the damaged parity, the
 * rebuilt block is right, and the parity block is rewritten.
 */
static void test_rebuild_checks_parity(void **state)
{
	struct tl_vol t;
	struct raid_status st;
	struct raid_scrub_result r;
	uint8_t buf[TL_BS];
	const uint64_t s = 7, vbn = s * 4;
	bool found = false;

	(void)state;
	rebuild_over_bad_parity(&t, 2, s);
	raid_status(t.v, &st);
	if (st.counters.rebuild_mismatches != 1)
		fail_msg("P = 2: the rebuild counted %llu inconsistent "
		    "stripes, not 1", (unsigned long long)
		    st.counters.rebuild_mismatches);
	assert_int_equal(tl_events_count(&t.events, RAID_EV_REBUILD_MISMATCH),
	    1);
	if (tl_log_count_with("stripe 7", "parity disagrees",
	    "cannot be located", NULL) != 1) {
		tl_log_dump("rebuild p2");
		fail_msg("P = 2: no log line names the inconsistent stripe");
	}
	tl_log_capture_stop();
	for (unsigned a = 0; !found; a++) {
		int rc = raid_reconstruct(t.v, vbn, a, buf);

		if (rc == -ENOENT)
			break;
		assert_int_equal(rc, 0);
		found = memcmp(buf, tl_shadow(&t, vbn), TL_BS) == 0;
	}
	assert_true(found);
	tl_vol_destroy(&t);

	rebuild_over_bad_parity(&t, 3, s);
	raid_status(t.v, &st);
	assert_int_equal(st.counters.rebuild_mismatches, 1);
	if (tl_log_count_with("stripe 7", "parity block at position 4",
	    "wrong one", NULL) != 1) {
		tl_log_dump("rebuild p3");
		fail_msg("P = 3: the log does not name the damaged parity");
	}
	tl_log_capture_stop();
	assert_int_equal(raid_read(t.v, vbn, 1, buf), 0);
	if (memcmp(buf, tl_shadow(&t, vbn), TL_BS) != 0)
		fail_msg("P = 3: the rebuilt block was solved from the damaged "
		    "parity");
	assert_int_equal(raid_scrub(t.v, false, &r), 0);
	assert_int_equal(r.mismatches, 0);
	verify(&t, "P = 3 after the rebuild over a damaged parity");
	tl_vol_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rebuild_p1_under_load),
		cmocka_unit_test(test_rebuild_p2_two_failures),
		cmocka_unit_test(test_rebuild_p2_second_failure_during),
		cmocka_unit_test(test_rebuild_missing_disk),
		cmocka_unit_test(test_auto_rebuild),
		cmocka_unit_test(test_spare_refusals),
		cmocka_unit_test(test_repair_below_rebuild_cursor),
		cmocka_unit_test(test_rebuild_checks_parity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
