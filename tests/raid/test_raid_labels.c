/*
 * tests/raid/test_raid_labels.c: disk labels (R6) and what opening does
 * with the wrong disks.
 *
 *   foreign    a disk of another volume at a position    -> -FL_ELABEL
 *   swapped    two members exchanged (in a group, across
 *              groups, data with parity)                  -> -FL_ELABEL
 *   duplicate  one path twice; a byte copy of an image    -> -FL_ELABEL
 *   stale      a disk failed, then offered again          -> left out,
 *              group degraded, the data written meanwhile reads back
 *   missing    NULL or nonexistent paths, up to P per group -> degraded
 *              open with right data; P + 1 -> -FL_EDEGRADED; a disk that
 *              was missing while data changed must not come back with its
 *              old contents
 *   corrupt    both label copies damaged, or a label with a valid checksum
 *              but hostile field values (raid/label.h format) -> refused or
 *              left out, never a crash, never wrong data
 * Every refusal and every disk left out is logged with the disk's path
 * (captured through fl_log_set_hook).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/raid.h"
#include "tests/lib/tl_log.h"
#include "tests/lib/tl_raid.h"
#include "tests/lib/tl_tmpdir.h"

#define DISK_BLOCKS	32

/* A filled volume, closed, ready to be opened in odd ways. */
static void make_vol(struct tl_vol *t, uint32_t ngroups, uint32_t n,
    uint32_t p, uint64_t seed)
{
	assert_int_equal(tl_vol_create(t, NULL, ngroups, n, p, DISK_BLOCKS,
	    false), 0);
	assert_int_equal(tl_vol_fill(t, seed), 0);
	tl_vol_close(t);
}

static void copy_paths(const struct tl_vol *t, const char **paths)
{
	for (size_t i = 0; i < t->npaths; i++)
		paths[i] = t->paths[i];
}

/* The open refused with want, and a log line named path. */
static void expect_refused(struct tl_vol *t, const char *const *paths,
    size_t n, int want, const char *path, const char *what)
{
	int rc;

	tl_log_capture_start(FL_LOG_INFO);
	rc = tl_vol_open_paths(t, paths, n);
	if (rc == 0) {
		tl_vol_close(t);
		fail_msg("%s: open succeeded", what);
	}
	if (rc != want) {
		tl_log_dump(what);
		fail_msg("%s: open returned %s, expected %s", what,
		    fl_strerror(rc), fl_strerror(want));
	}
	if (path != NULL && tl_log_count_with(path, NULL) == 0) {
		tl_log_dump(what);
		fail_msg("%s: no log line names %s", what, path);
	}
	tl_log_capture_stop();
}

/* Open; assert every state and that every block reads back. */
static void expect_open_verify(struct tl_vol *t, const char *const *paths,
    size_t n, bool degraded, const char *what)
{
	struct raid_status st;
	int err, rc;

	rc = tl_vol_open_paths(t, paths, n);
	if (rc != 0)
		fail_msg("%s: open: %s", what, fl_strerror(rc));
	raid_status(t->v, &st);
	assert_int_equal(st.degraded, degraded);
	assert_false(st.offline);
	if (tl_vol_verify(t, &err) != 0)
		fail_msg("%s: wrong data (first error %s)", what,
		    fl_strerror(err));
}

static enum raid_disk_state disk_state(struct tl_vol *t, size_t d)
{
	struct raid_disk_info info;

	assert_int_equal(raid_disk_info(t->v, d, &info), 0);
	return info.state;
}

static void test_foreign_disk(void **state)
{
	struct tl_vol a, b;
	const char *paths[TL_MAX_PATHS];

	make_vol(&a, 1, 3, 1, 1);
	make_vol(&b, 1, 3, 1, 2);
	copy_paths(&a, paths);
	paths[1] = b.paths[1];
	expect_refused(&a, paths, a.npaths, -FL_ELABEL, b.paths[1],
	    "foreign data disk");
	copy_paths(&a, paths);
	paths[3] = b.paths[3];
	expect_refused(&a, paths, a.npaths, -FL_ELABEL, b.paths[3],
	    "foreign parity disk");
	/* Nothing was changed by the refusals. */
	expect_open_verify(&a, (const char *const *)a.paths, a.npaths, false,
	    "volume a after refusals");
	tl_vol_close(&a);
	expect_open_verify(&b, (const char *const *)b.paths, b.npaths, false,
	    "volume b after refusals");
	tl_vol_destroy(&a);
	tl_vol_destroy(&b);
}

static void test_swapped_disks(void **state)
{
	struct tl_vol t;
	const char *paths[TL_MAX_PATHS];

	make_vol(&t, 2, 3, 1, 3);
	/* Two data disks of one group. */
	copy_paths(&t, paths);
	paths[0] = t.paths[1];
	paths[1] = t.paths[0];
	expect_refused(&t, paths, t.npaths, -FL_ELABEL, NULL, "swap 0<->1");
	/* A data disk with the parity disk. */
	copy_paths(&t, paths);
	paths[2] = t.paths[3];
	paths[3] = t.paths[2];
	expect_refused(&t, paths, t.npaths, -FL_ELABEL, NULL,
	    "swap data<->parity");
	/* The same position of two groups. */
	copy_paths(&t, paths);
	paths[tl_disk(&t, 0, 1)] = t.paths[tl_disk(&t, 1, 1)];
	paths[tl_disk(&t, 1, 1)] = t.paths[tl_disk(&t, 0, 1)];
	expect_refused(&t, paths, t.npaths, -FL_ELABEL, NULL,
	    "swap across groups");
	/* A member moved into a missing position's place. */
	copy_paths(&t, paths);
	paths[0] = t.paths[1];
	paths[1] = NULL;
	expect_refused(&t, paths, t.npaths, -FL_ELABEL, t.paths[1],
	    "member at another position");
	expect_open_verify(&t, (const char *const *)t.paths, t.npaths, false,
	    "after refusals");
	tl_vol_destroy(&t);
}

/* The swapped-disk messages name a path: checked separately so the
 * message check does not depend on which of the two is seen first. */
static void test_swapped_message(void **state)
{
	struct tl_vol t;
	const char *paths[TL_MAX_PATHS];
	int rc;

	make_vol(&t, 1, 3, 1, 4);
	copy_paths(&t, paths);
	paths[0] = t.paths[2];
	paths[2] = t.paths[0];
	tl_log_capture_start(FL_LOG_INFO);
	rc = tl_vol_open_paths(&t, paths, t.npaths);
	assert_int_equal(rc, -FL_ELABEL);
	if (tl_log_count_with(t.paths[0], NULL) +
	    tl_log_count_with(t.paths[2], NULL) == 0) {
		tl_log_dump("swap");
		fail_msg("no log line names either swapped disk");
	}
	tl_log_capture_stop();
	tl_vol_destroy(&t);
}

static void test_duplicate_disks(void **state)
{
	struct tl_vol t;
	const char *paths[TL_MAX_PATHS];
	char copy[4200];

	make_vol(&t, 1, 3, 2, 5);
	/* The same path at two positions. */
	copy_paths(&t, paths);
	paths[2] = t.paths[1];
	expect_refused(&t, paths, t.npaths, -FL_ELABEL, t.paths[1],
	    "same path twice");
	/* A member offered again as a spare. */
	copy_paths(&t, paths);
	paths[t.npaths] = t.paths[1];
	expect_refused(&t, paths, t.npaths + 1, -FL_ELABEL, t.paths[1],
	    "member again as spare");
	/* A byte copy of a member (same disk uuid), as a spare. */
	tl_path(copy, sizeof(copy), t.dir, "copy-of-1.img");
	assert_int_equal(tl_copy_file(t.paths[1], copy), 0);
	copy_paths(&t, paths);
	paths[t.npaths] = copy;
	expect_refused(&t, paths, t.npaths + 1, -FL_ELABEL, NULL,
	    "byte copy as spare");
	/* A byte copy in another member's position (the original missing). */
	copy_paths(&t, paths);
	paths[2] = copy;
	expect_refused(&t, paths, t.npaths, -FL_ELABEL, copy,
	    "byte copy at another position");
	/* A byte copy at position 0 with its original at position 1. */
	copy_paths(&t, paths);
	paths[0] = copy;
	expect_refused(&t, paths, t.npaths, -FL_ELABEL, NULL,
	    "byte copy and original");
	expect_open_verify(&t, (const char *const *)t.paths, t.npaths, false,
	    "after refusals");
	tl_vol_destroy(&t);
}

static void test_stale_disk(void **state)
{
	struct tl_vol t;
	uint64_t rng = 99;
	const char *paths[TL_MAX_PATHS];
	size_t victim;

	make_vol(&t, 1, 3, 1, 6);
	victim = tl_disk(&t, 0, 1);
	assert_int_equal(tl_vol_open(&t), 0);
	assert_int_equal(raid_fail_disk(t.v, victim, "test: stale"), 0);
	assert_int_equal(disk_state(&t, victim), RAID_DISK_FAILED);
	/* Overwrite every block (so the stale disk's contents are all old). */
	for (uint64_t vbn = 0; vbn < t.nvbns; vbn += 5)
		assert_int_equal(tl_vol_write_random(&t, vbn,
		    (uint32_t)FL_MIN(5, t.nvbns - vbn), &rng), 0);
	assert_int_equal(raid_flush(t.v), 0);
	tl_vol_close(&t);

	/* Offered again: left out, degraded, logged with its path. */
	tl_log_capture_start(FL_LOG_INFO);
	expect_open_verify(&t, (const char *const *)t.paths, t.npaths, true,
	    "stale disk offered");
	assert_int_not_equal(disk_state(&t, victim), RAID_DISK_OK);
	if (tl_log_count_with(t.paths[victim], NULL) == 0) {
		tl_log_dump("stale");
		fail_msg("no log line names the stale disk %s",
		    t.paths[victim]);
	}
	tl_log_capture_stop();
	tl_vol_close(&t);

	/* Stale and one more missing is more than P = 1. */
	copy_paths(&t, paths);
	paths[tl_disk(&t, 0, 2)] = NULL;
	expect_refused(&t, paths, t.npaths, -FL_EDEGRADED, NULL,
	    "stale + missing with P = 1");
	/* And the stale disk still stays out on a later open. */
	expect_open_verify(&t, (const char *const *)t.paths, t.npaths, true,
	    "stale disk offered again");
	assert_int_not_equal(disk_state(&t, victim), RAID_DISK_OK);
	tl_vol_destroy(&t);
}

static void test_missing_disks(void **state)
{
	struct tl_vol t;
	const char *paths[TL_MAX_PATHS];
	char nowhere[4200];
	uint64_t rng = 7;

	make_vol(&t, 2, 3, 2, 8);
	tl_path(nowhere, sizeof(nowhere), t.dir, "no-such-disk.img");
	assert_int_equal(tl_vol_save_images(&t, "golden"), 0);

	/* Up to P per group, NULL or nonexistent: degraded with right data. */
	copy_paths(&t, paths);
	paths[tl_disk(&t, 0, 0)] = NULL;
	paths[tl_disk(&t, 0, 4)] = nowhere;
	paths[tl_disk(&t, 1, 2)] = NULL;
	paths[tl_disk(&t, 1, 3)] = NULL;
	tl_log_capture_start(FL_LOG_INFO);
	expect_open_verify(&t, paths, t.npaths, true, "P missing per group");
	assert_int_equal(disk_state(&t, tl_disk(&t, 0, 0)),
	    RAID_DISK_MISSING);
	assert_int_equal(disk_state(&t, tl_disk(&t, 0, 4)),
	    RAID_DISK_MISSING);
	assert_int_equal(disk_state(&t, tl_disk(&t, 0, 1)), RAID_DISK_OK);
	if (tl_log_count_with(nowhere, NULL) == 0) {
		tl_log_dump("missing");
		fail_msg("no log line names the missing disk %s", nowhere);
	}
	tl_log_capture_stop();
	tl_vol_close(&t);

	/* P + 1 in one group: refused, whatever the other group. */
	assert_int_equal(tl_vol_restore_images(&t, "golden"), 0);
	copy_paths(&t, paths);
	paths[tl_disk(&t, 1, 0)] = NULL;
	paths[tl_disk(&t, 1, 1)] = nowhere;
	paths[tl_disk(&t, 1, 4)] = NULL;
	expect_refused(&t, paths, t.npaths, -FL_EDEGRADED, NULL,
	    "P + 1 missing in group 1");

	/*
	 * A disk missing while its blocks change must not come back with
	 * its old contents: open without data disk 1 of group 0, rewrite
	 * every block, close, then open with every disk.
	 */
	assert_int_equal(tl_vol_restore_images(&t, "golden"), 0);
	copy_paths(&t, paths);
	paths[tl_disk(&t, 0, 1)] = NULL;
	expect_open_verify(&t, paths, t.npaths, true, "one missing");
	for (uint64_t vbn = 0; vbn < t.nvbns; vbn += 4)
		assert_int_equal(tl_vol_write_random(&t, vbn,
		    (uint32_t)FL_MIN(4, t.nvbns - vbn), &rng), 0);
	assert_int_equal(raid_flush(t.v), 0);
	tl_vol_close(&t);
	tl_log_capture_start(FL_LOG_INFO);
	{
		int err;
		assert_int_equal(tl_vol_open(&t), 0);
		if (tl_vol_verify(&t, &err) != 0)
			fail_msg("a disk that was missing during writes came "
			    "back with old data (%s)", fl_strerror(err));
		/* It may only be back in service if it was brought up to
		 * date; its blocks are checked once more with the
		 * others gone. */
		if (disk_state(&t, tl_disk(&t, 0, 1)) == RAID_DISK_OK) {
			assert_int_equal(raid_fail_disk(t.v,
			    tl_disk(&t, 0, 0), "test"), 0);
			assert_int_equal(raid_fail_disk(t.v,
			    tl_disk(&t, 0, 2), "test"), 0);
			if (tl_vol_verify(&t, &err) != 0)
				fail_msg("the returning disk holds old data");
		}
	}
	tl_log_capture_stop();
	tl_vol_destroy(&t);
}

/* ---- corrupt and hostile labels (format: raid/label.h) ---- */

static int rw_at(const char *path, void *buf, size_t len, off_t off,
    bool write)
{
	int fd = open(path, O_RDWR);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = write ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
	close(fd);
	return r == (ssize_t)len ? 0 : -1;
}

/* Open after damage: refused, or the damaged disk left out; either way a
 * log line names it and the data are right. */
static void expect_refused_or_left_out(struct tl_vol *t, size_t d,
    const char *what)
{
	int rc, err;

	tl_log_capture_start(FL_LOG_INFO);
	rc = tl_vol_open(t);
	if (rc == 0) {
		enum raid_disk_state s = disk_state(t, d);
		if (s == RAID_DISK_OK) {
			/* Accepted: only if its label still proves it
			 * (e.g. the other copy); then it must be right. */
			if (tl_vol_verify(t, &err) != 0)
				fail_msg("%s: accepted and wrong data", what);
		} else {
			if (tl_vol_verify(t, &err) != 0)
				fail_msg("%s: wrong data (%s)", what,
				    fl_strerror(err));
		}
		if (s != RAID_DISK_OK &&
		    tl_log_count_with(t->paths[d], NULL) == 0) {
			tl_log_dump(what);
			fail_msg("%s: disk left out without a log line "
			    "naming %s", what, t->paths[d]);
		}
		tl_vol_close(t);
	} else {
		if (rc != -FL_ELABEL && rc != -FL_ECORRUPT &&
		    rc != -FL_EDEGRADED) {
			tl_log_dump(what);
			fail_msg("%s: open returned %s", what,
			    fl_strerror(rc));
		}
		if (tl_log_count_with(t->paths[d], NULL) == 0) {
			tl_log_dump(what);
			fail_msg("%s: refused without naming %s", what,
			    t->paths[d]);
		}
	}
	tl_log_capture_stop();
}

static void test_corrupt_label(void **state)
{
	struct tl_vol t;
	uint8_t blk[4096];
	size_t d;

	make_vol(&t, 1, 3, 1, 9);
	assert_int_equal(tl_vol_save_images(&t, "golden"), 0);
	d = tl_disk(&t, 0, 2);

	/* Both label copies damaged (bytes in the fixed fields). */
	for (int copy = 0; copy < 2; copy++) {
		assert_int_equal(rw_at(t.paths[d], blk, 4096, copy * 4096,
		    false), 0);
		for (int i = 16; i < 40; i++)
			blk[i] ^= 0x5a;
		assert_int_equal(rw_at(t.paths[d], blk, 4096, copy * 4096,
		    true), 0);
	}
	expect_refused_or_left_out(&t, d, "both label copies damaged");

	/* One copy damaged: the other copy still identifies the disk. */
	assert_int_equal(tl_vol_restore_images(&t, "golden"), 0);
	assert_int_equal(rw_at(t.paths[d], blk, 4096, 0, false), 0);
	blk[20] ^= 1;
	assert_int_equal(rw_at(t.paths[d], blk, 4096, 0, true), 0);
	assert_int_equal(rw_at(t.paths[d], blk, 4096, 4096, false), 0);
	expect_refused_or_left_out(&t, d, "one label copy damaged");

	/* Every disk's labels zeroed: no volume, a clean error. */
	assert_int_equal(tl_vol_restore_images(&t, "golden"), 0);
	memset(blk, 0, sizeof(blk));
	for (size_t k = 0; k < t.npaths; k++) {
		assert_int_equal(rw_at(t.paths[k], blk, 4096, 0, true), 0);
		assert_int_equal(rw_at(t.paths[k], blk, 4096, 4096, true), 0);
	}
	assert_int_not_equal(tl_vol_open(&t), 0);
	tl_vol_destroy(&t);
}

/* Re-seal a label copy after editing it: crc32c of bytes 0..1023 with the
 * crc field (offset 12) zero. */
static void label_reseal(uint8_t *l)
{
	fl_put_le32(l + 12, 0);
	fl_put_le32(l + 12, fl_crc32c(0, l, 1024));
}

struct hostile {
	const char *what;
	unsigned off, size;
	uint64_t value;
};

static const struct hostile hostile[] = {
	{ "version 2", 8, 4, 2 },
	{ "ngroups 0", 64, 4, 0 },
	{ "ngroups huge", 64, 4, 0xffffffffu },
	{ "group past ngroups", 68, 4, 5 },
	{ "position past N+P", 72, 4, 40 },
	{ "ndata 0", 76, 4, 0 },
	{ "ndata huge", 76, 4, 100000 },
	{ "nparity 0", 80, 4, 0 },
	{ "nparity 9", 80, 4, 9 },
	{ "unknown flag", 84, 4, 0x80 },
	{ "disk_blocks huge", 88, 8, 1ull << 60 },
	{ "disk_blocks 0", 88, 8, 0 },
	{ "data_off huge", 96, 8, 1ull << 62 },
	{ "data_off 0", 96, 8, 0 },
	{ "intent_off inside label", 104, 8, 0 },
	{ "intent_blocks huge", 112, 4, 0xfffffff0u },
	{ "region_stripes 0", 116, 4, 0 },
	{ "member state bogus", 256 + 16, 4, 77 },
	{ "generation far future", 48, 8, 1ull << 40 },
};

static void put_field(uint8_t *l, unsigned off, unsigned size, uint64_t v)
{
	if (size == 4)
		fl_put_le32(l + off, (uint32_t)v);
	else
		fl_put_le64(l + off, v);
}

static void test_hostile_label_fields(void **state)
{
	struct tl_vol t;
	uint8_t blk[2][4096];
	size_t d;

	fl_log_set_level(FL_LOG_ERR);
	make_vol(&t, 1, 3, 1, 10);
	assert_int_equal(tl_vol_save_images(&t, "golden"), 0);
	d = tl_disk(&t, 0, 1);
	for (size_t h = 0; h < FL_ARRAY_SIZE(hostile); h++) {
		assert_int_equal(tl_vol_restore_images(&t, "golden"), 0);
		for (int c = 0; c < 2; c++) {
			assert_int_equal(rw_at(t.paths[d], blk[c], 4096,
			    c * 4096, false), 0);
			/* Only copies that carry the magic are edited. */
			if (fl_get_le64(blk[c]) != 0x314c424c44524c46ull)
				continue;
			put_field(blk[c], hostile[h].off, hostile[h].size,
			    hostile[h].value);
			label_reseal(blk[c]);
			assert_int_equal(rw_at(t.paths[d], blk[c], 4096,
			    c * 4096, true), 0);
		}
		if (hostile[h].off == 48) {
			/* A disk claiming a newer generation than its group
			 * is accepted or refused; it must not make the
			 * others stale with wrong data served. */
			int err;
			if (tl_vol_open(&t) == 0) {
				if (tl_vol_verify(&t, &err) != 0)
					fail_msg("%s: wrong data",
					    hostile[h].what);
				tl_vol_close(&t);
			}
			continue;
		}
		expect_refused_or_left_out(&t, d, hostile[h].what);
	}
	/* The same on every disk at once: nothing opens, nothing crashes. */
	for (size_t h = 0; h < FL_ARRAY_SIZE(hostile); h++) {
		if (hostile[h].off == 48)
			continue;
		assert_int_equal(tl_vol_restore_images(&t, "golden"), 0);
		for (size_t k = 0; k < t.npaths; k++) {
			for (int c = 0; c < 2; c++) {
				assert_int_equal(rw_at(t.paths[k], blk[c],
				    4096, c * 4096, false), 0);
				if (fl_get_le64(blk[c]) !=
				    0x314c424c44524c46ull)
					continue;
				put_field(blk[c], hostile[h].off,
				    hostile[h].size, hostile[h].value);
				label_reseal(blk[c]);
				assert_int_equal(rw_at(t.paths[k], blk[c],
				    4096, c * 4096, true), 0);
			}
		}
		if (tl_vol_open(&t) == 0) {
			int err;
			/* Only harmless edits (a bogus member state entry
			 * or flag) may be tolerated, with right data. */
			if (tl_vol_verify(&t, &err) != 0)
				fail_msg("all disks %s: opened with wrong data",
				    hostile[h].what);
			tl_vol_close(&t);
		}
	}
	/* Random byte damage in the label and intent area of one disk. */
	uint64_t rng = 4242;
	for (int it = 0; it < 40; it++) {
		uint8_t b;
		int err;
		size_t k = tl_rand_below(&rng, t.npaths);
		assert_int_equal(tl_vol_restore_images(&t, "golden"), 0);
		for (int f = 0; f < 1 + (int)tl_rand_below(&rng, 6); f++) {
			off_t o = (off_t)tl_rand_below(&rng, 3 * 4096);
			assert_int_equal(rw_at(t.paths[k], &b, 1, o, false), 0);
			b ^= (uint8_t)(1 + tl_rand_below(&rng, 255));
			assert_int_equal(rw_at(t.paths[k], &b, 1, o, true), 0);
		}
		if (tl_vol_open(&t) == 0) {
			if (tl_vol_verify(&t, &err) != 0)
				fail_msg("random label damage (iteration %d, "
				    "disk %zu): wrong data", it, k);
			tl_vol_close(&t);
		}
	}
	fl_log_set_level(FL_LOG_INFO);
	tl_vol_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_foreign_disk),
		cmocka_unit_test(test_swapped_disks),
		cmocka_unit_test(test_swapped_message),
		cmocka_unit_test(test_duplicate_disks),
		cmocka_unit_test(test_stale_disk),
		cmocka_unit_test(test_missing_disks),
		cmocka_unit_test(test_corrupt_label),
		cmocka_unit_test(test_hostile_label_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
