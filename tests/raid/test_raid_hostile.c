/*
 * tests/raid/test_raid_hostile.c: what raid keeps on disk besides labels
 * and data -- the write-intent bitmap (intent.c) and the degraded-write
 * journal (journal.c) -- with valid checksums and hostile contents.
 *
 * A 4+1 volume of two write-intent regions is filled in two bands, then
 * crashed (the fault injector, RAID_CRASH_RANDOM) with partial-stripe
 * writes in flight: once healthy, so the open after it resyncs the
 * regions its bitmap marks, and once with data disk 0 out, so it
 * recomputes parity from the journal's records.  Each case rewrites one
 * field of the bitmap or of every journal record offline, on one disk or
 * on all, reseals the checksum (the change passes it, as a buggy or
 * hostile writer's would) and opens the volume:
 *
 *   - a bitmap copy with a field out of range (magic, version, volume,
 *     group, block index, region count, reserved, bits past the last
 *     region) is ignored and logged; with no valid copy left every region
 *     is resynced; either way every block reads back what was flushed (or,
 *     written at the crash, old or new) and a scrub finds parity right;
 *   - a journal record with a field out of range (kind, block count,
 *     sequence number, stripe range, positions, reserved) is ignored and
 *     logged; the blocks of the disks present read back right (the
 *     recovery writes parity only), the missing disk's blocks are what
 *     parity then gives (the record's information is gone, and the log
 *     says so);
 *   - a record whose sequence number is at the end of its range must not
 *     make the journal's counter wrap: records written after the open
 *     would be older than it, and the recovery after a crash would skip
 *     them (test_journal_seq_at_the_end).
 *
 * Nothing may crash, hang or read out of bounds (run it under ASan too).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/label.h"
#include "raid/raid.h"
#include "tests/lib/tl_log.h"
#include "tests/lib/tl_raid.h"
#include "tests/lib/tl_tmpdir.h"

#define NDATA		4u
#define NPARITY		1u
#define NDISKS		(NDATA + NPARITY)
#define DISK_BLOCKS	1100u		/* two write-intent regions */
#define BAND_STRIPES	40u
#define NWRITES		16u
/* Layout of this geometry (docs/raid.md, "Disk layout"). */
#define INTENT_BLOCK	2u
#define JOURNAL_BLOCK	3u
#define SLOT_BLOCKS	(1u + NPARITY)

static const uint64_t band_start[2] = { 0, 1030 };

static struct {
	struct tl_vol t;
	uint8_t *golden;	/* what was flushed, by vbn */
	uint8_t *newdata;	/* what was in flight at the crash */
	bool *inflight;
} H;

static void img_io(const char *path, uint64_t blk, uint32_t n, uint8_t *buf,
    bool write)
{
	int fd = open(path, O_RDWR);
	ssize_t len = (ssize_t)n * TL_BS;

	assert_true(fd >= 0);
	if (write)
		assert_int_equal(pwrite(fd, buf, (size_t)len,
		    (off_t)(blk * TL_BS)), len);
	else
		assert_int_equal(pread(fd, buf, (size_t)len,
		    (off_t)(blk * TL_BS)), len);
	close(fd);
}

static void intent_reseal(uint8_t *b)
{
	memset(b + 12, 0, 4);
	fl_put_le32(b + 12, fl_crc32c(0, b, TL_BS));
}

/* A journal slot: the header block, then k data blocks. */
static void journal_reseal(uint8_t *slot, uint32_t k)
{
	uint32_t crc;

	memset(slot + 12, 0, 4);
	crc = fl_crc32c(0, slot, TL_BS);
	if (k > 0)
		crc = fl_crc32c(crc, slot + TL_BS, (size_t)k * TL_BS);
	fl_put_le32(slot + 12, crc);
}

/* ------------------------------------------------------------ states */

static int group_setup(void **state)
{
	struct tl_vol *t = &H.t;
	uint64_t rng = 4242;

	(void)state;
	fl_log_set_level(FL_LOG_ERR);
	assert_int_equal(tl_vol_create(t, NULL, 1, NDATA, NPARITY, DISK_BLOCKS,
	    true), 0);
	for (int b = 0; b < 2; b++) {
		uint64_t vbn = band_start[b] * NDATA;

		tl_fill_random(tl_shadow(t, vbn),
		    (size_t)BAND_STRIPES * NDATA * TL_BS, &rng);
		assert_int_equal(raid_write_stripes(t->v, vbn, BAND_STRIPES,
		    tl_shadow(t, vbn)), 0);
	}
	assert_int_equal(raid_flush(t->v), 0);
	tl_vol_close(t);
	assert_int_equal(tl_vol_save_images(t, "golden"), 0);
	H.golden = malloc(t->nvbns * TL_BS);
	H.newdata = malloc(t->nvbns * TL_BS);
	H.inflight = calloc(t->nvbns, sizeof(bool));
	assert_non_null(H.golden);
	assert_non_null(H.newdata);
	assert_non_null(H.inflight);
	memcpy(H.golden, t->shadow, t->nvbns * TL_BS);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	free(H.golden);
	free(H.newdata);
	free(H.inflight);
	tl_vol_destroy(&H.t);
	return 0;
}

/*
 * From the flushed images: open (fault injection), fail data disk 0 if
 * degraded (unless it is out already), write one block of disk 1 in each of
 * NWRITES band stripes (partial-stripe writes), crash.  The images are
 * left as the crash made them; H.inflight and H.newdata say what was in
 * flight.  restore: start from the flushed images.
 */
static void crash_with_writes(bool degraded, bool restore, uint64_t seed)
{
	struct tl_vol *t = &H.t;
	uint64_t rng = seed;

	if (restore)
		assert_int_equal(tl_vol_restore_images(t, "golden"), 0);
	memset(H.inflight, 0, t->nvbns * sizeof(bool));
	t->fault_inject = true;
	assert_int_equal(tl_vol_open(t), 0);
	if (degraded && restore) {
		assert_int_equal(raid_fail_disk(t->v, tl_disk(t, 0, 0),
		    "test"), 0);
		assert_int_equal(raid_flush(t->v), 0);
	}
	for (unsigned k = 0; k < NWRITES; k++) {
		uint64_t s = band_start[k % 2] + k;
		uint64_t vbn = s * NDATA + 1;

		tl_fill_random(H.newdata + vbn * TL_BS, TL_BS, &rng);
		assert_int_equal(raid_write(t->v, vbn, 1,
		    H.newdata + vbn * TL_BS), 0);
		H.inflight[vbn] = true;
	}
	assert_int_equal(raid_fault_crash(t->v, RAID_CRASH_RANDOM, seed), 0);
	tl_vol_close(t);
	t->fault_inject = false;
}

/*
 * Every block against what was flushed (old or new if in flight); blocks
 * of data disk 0 only if check_disk0.  Returns the number of wrong ones;
 * the volume is open.
 */
static uint64_t wrong_blocks(bool check_disk0)
{
	struct tl_vol *t = &H.t;
	uint8_t buf[TL_BS];
	uint64_t wrong = 0;

	for (uint64_t vbn = 0; vbn < t->nvbns; vbn++) {
		const uint8_t *old = H.golden + vbn * TL_BS;

		if (vbn % NDATA == 0 && !check_disk0)
			continue;
		if (raid_read(t->v, vbn, 1, buf) != 0) {
			wrong++;
			continue;
		}
		if (memcmp(buf, old, TL_BS) == 0)
			continue;
		if (H.inflight[vbn] && memcmp(buf, H.newdata + vbn * TL_BS,
		    TL_BS) == 0)
			continue;
		wrong++;
	}
	return wrong;
}

/* --------------------------------------------------- write-intent bitmap */

struct field {
	const char *what;
	uint32_t off, size;
	uint64_t val;
	bool logged;		/* refused with a log line */
};

static void test_intent_bitmap(void **state)
{
	struct tl_vol *t = &H.t;
	const struct field f[] = {
		{ "magic", 0, 8, 0x1234, true },
		{ "version 2", 8, 4, 2, true },
		{ "volume uuid", 16, 4, 0xdeadbeef, true },
		{ "group 1", 32, 4, 1, true },
		{ "group max", 32, 4, UINT32_MAX, true },
		{ "block index 1", 36, 4, 1, true },
		{ "nregions 0", 40, 4, 0, true },
		{ "nregions 1", 40, 4, 1, true },
		{ "nregions 3", 40, 4, 3, true },
		{ "nregions max", 40, 4, UINT32_MAX, true },
		{ "reserved at 44", 44, 4, 1, true },
		{ "reserved at 56", 56, 8, 1ull << 63, true },
		{ "bit of region 2", 64, 1, 0x07, true },
		{ "last bit of the block", 64 + 4031, 1, 0x80, true },
		{ "seq max", 48, 8, UINT64_MAX, false },
	};

	(void)state;
	crash_with_writes(false, true, 11);
	assert_int_equal(tl_vol_save_images(t, "crashed"), 0);
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		for (int all = 0; all < 3; all++) {
			struct raid_scrub_result sr;
			uint8_t b[TL_BS];
			uint64_t wrong;
			int rc;

			assert_int_equal(tl_vol_restore_images(t, "crashed"),
			    0);
			for (unsigned d = 0; d < NDISKS; d++) {
				if (all == 0 && d != 2)
					continue;
				img_io(t->paths[d], INTENT_BLOCK, 1, b, false);
				if (all == 2) {
					/* Torn instead: not resealed. */
					memset(b + 100, 0x5a, 200);
				} else {
					tl_put_field(b + f[i].off, f[i].size,
					    f[i].val);
					intent_reseal(b);
				}
				img_io(t->paths[d], INTENT_BLOCK, 1, b, true);
			}
			tl_log_capture_start(FL_LOG_WARN);
			rc = tl_vol_open(t);
			if (rc != 0)
				fail_msg("bitmap %s (%s): open fails: %d",
				    f[i].what, all ? "every disk" : "one disk",
				    rc);
			wrong = wrong_blocks(true);
			assert_int_equal(raid_scrub(t->v, false, &sr), 0);
			tl_vol_close(t);
			if (wrong != 0 || sr.mismatches != 0)
				fail_msg("bitmap %s (%s): %llu blocks wrong, "
				    "%llu stripes with stale parity",
				    f[i].what, all == 2 ? "torn" : all ?
				    "every disk" : "one disk",
				    (unsigned long long)wrong,
				    (unsigned long long)sr.mismatches);
			if ((f[i].logged || all == 2) &&
			    tl_log_count_with("write-intent bitmap on",
			    "ignored", NULL) == 0)
				fail_msg("bitmap %s: refused without a word",
				    f[i].what);
			if ((f[i].logged && all == 1) || all == 2)
				assert_true(tl_log_count_with("no valid "
				    "write-intent bitmap", NULL) == 1);
			tl_log_capture_stop();
			if (all == 2)
				break;	/* the same for every field */
		}
	}
}

/* ------------------------------------------------ degraded-write journal */

/* Slots holding a record (on disk 1, as on every working disk). */
static unsigned journal_slots(unsigned *slots)
{
	uint8_t b[TL_BS];
	unsigned n = 0;

	for (unsigned i = 0; i < 32; i++) {
		img_io(H.t.paths[1], JOURNAL_BLOCK + i * SLOT_BLOCKS, 1, b,
		    false);
		if (fl_get_le64(b) == 0x314e524a44524c46ull)
			slots[n++] = i;
	}
	return n;
}

static void test_journal_records(void **state)
{
	struct tl_vol *t = &H.t;
	const struct field f[] = {
		{ "magic", 0, 8, 0x1234, false },
		{ "version 2", 8, 4, 2, false },
		{ "k 0", 72, 4, 0, true },
		{ "k 2", 72, 4, 2, false },
		{ "k max", 72, 4, UINT32_MAX, false },
		{ "kind 0", 36, 4, 0, true },
		{ "kind 3", 36, 4, 3, true },
		{ "kind invalidation", 36, 4, 2, true },
		{ "seq 0", 40, 8, 0, true },
		{ "seq 2^63", 40, 8, 1ull << 63, true },
		{ "seq max", 40, 8, UINT64_MAX, true },
		{ "seq of another slot", 40, 8, 33, true },
		{ "generation older", 48, 8, 1, false },
		{ "generation max", 48, 8, UINT64_MAX, false },
		{ "s0 past the disk", 56, 8, DISK_BLOCKS, true },
		{ "s0 max", 56, 8, UINT64_MAX, true },
		{ "s1 past the disk", 64, 8, DISK_BLOCKS + 1, true },
		{ "s1 max", 64, 8, UINT64_MAX, true },
		{ "s1 0", 64, 8, 0, true },
		{ "position 4 (parity)", 76, 4, NDATA, true },
		{ "position max", 76, 4, UINT32_MAX, true },
		{ "second position", 80, 4, 2, true },
		{ "third position", 84, 4, 3, true },
		{ "reserved at 88", 88, 1, 1, true },
		{ "reserved at 4095", 4095, 1, 1, true },
		{ "group 1", 32, 4, 1, false },
		{ "volume uuid", 16, 4, 0xdeadbeef, false },
	};
	unsigned slots[32], ns;

	(void)state;
	crash_with_writes(true, true, 21);
	assert_int_equal(tl_vol_save_images(t, "jcrashed"), 0);
	ns = journal_slots(slots);
	assert_true(ns >= NWRITES);
	/* As crashed, the journal makes every block right. */
	assert_int_equal(tl_vol_open(t), 0);
	assert_int_equal(wrong_blocks(true), 0);
	tl_vol_close(t);

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		uint8_t slot[SLOT_BLOCKS * TL_BS];
		uint64_t wrong;
		int rc;

		assert_int_equal(tl_vol_restore_images(t, "jcrashed"), 0);
		for (unsigned d = 1; d < NDISKS; d++) {
			for (unsigned s = 0; s < ns; s++) {
				uint64_t blk = JOURNAL_BLOCK +
				    slots[s] * SLOT_BLOCKS;
				uint64_t k;

				img_io(t->paths[d], blk, SLOT_BLOCKS, slot,
				    false);
				if (f[i].off == 40 && f[i].val == 33)
					tl_put_field(slot + 40, 8,
					    fl_get_le64(slot + 40) + 33);
				else
					tl_put_field(slot + f[i].off, f[i].size,
					    f[i].val);
				k = fl_get_le32(slot + 72);
				journal_reseal(slot, k <= NPARITY ?
				    (uint32_t)k : NPARITY);
				img_io(t->paths[d], blk, SLOT_BLOCKS, slot,
				    true);
			}
		}
		tl_log_capture_start(FL_LOG_WARN);
		rc = tl_vol_open(t);
		if (rc != 0)
			fail_msg("journal %s: open fails: %d", f[i].what, rc);
		/* The disks present are never written by the recovery. */
		wrong = wrong_blocks(false);
		tl_vol_close(t);
		if (wrong != 0)
			fail_msg("journal %s: %llu blocks of the disks present "
			    "wrong", f[i].what, (unsigned long long)wrong);
		if (f[i].logged && tl_log_count_with("degraded-write journal "
		    "slot", "ignored", NULL) == 0)
			fail_msg("journal %s: refused without a word",
			    f[i].what);
		tl_log_capture_stop();
	}
}

/*
 * A record of the current generation whose sequence number is the largest
 * there is: an invalidation of every stripe.  The journal's next record
 * must still be newer than it, or the records of the partial-stripe writes
 * made after the open lose to it at the recovery after a crash, and the
 * missing disk's blocks of the stripes torn at the crash come back wrong
 * (they were never written).
 */
static void test_journal_seq_at_the_end(void **state)
{
	struct tl_vol *t = &H.t;
	uint64_t wrong = 0;

	(void)state;
	for (uint64_t it = 0; it < 6; it++) {
		uint8_t lab[TL_BS], lab1[TL_BS], slot[SLOT_BLOCKS * TL_BS];
		uint64_t gen;

		/* Disk 0 recorded failed, the volume closed cleanly: the
		 * next open keeps the generation (the journal's). */
		assert_int_equal(tl_vol_restore_images(t, "golden"), 0);
		assert_int_equal(tl_vol_open(t), 0);
		assert_int_equal(raid_fail_disk(t->v, tl_disk(t, 0, 0),
		    "test"), 0);
		tl_vol_close(t);
		img_io(t->paths[1], 0, 1, lab, false);
		img_io(t->paths[1], 1, 1, lab1, false);
		if (fl_get_le64(lab1) == RAID_LABEL_MAGIC &&
		    fl_get_le64(lab1 + 56) > fl_get_le64(lab + 56))
			memcpy(lab, lab1, TL_BS);
		gen = fl_get_le64(lab + 48);

		memset(slot, 0, sizeof(slot));
		fl_put_le64(slot + 0, 0x314e524a44524c46ull);
		fl_put_le32(slot + 8, 1);
		memcpy(slot + 16, lab + 16, 16);	/* volume uuid */
		fl_put_le32(slot + 32, 0);
		fl_put_le32(slot + 36, 2);		/* invalidation */
		fl_put_le64(slot + 40, UINT64_MAX);	/* slot 31 */
		fl_put_le64(slot + 48, gen);
		fl_put_le64(slot + 56, 0);
		fl_put_le64(slot + 64, DISK_BLOCKS);
		journal_reseal(slot, 0);
		for (unsigned d = 1; d < NDISKS; d++)
			img_io(t->paths[d], JOURNAL_BLOCK + 31 * SLOT_BLOCKS,
			    SLOT_BLOCKS, slot, true);

		crash_with_writes(true, false, 100 + it);
		tl_log_capture_start(FL_LOG_WARN);
		assert_int_equal(tl_vol_open(t), 0);
		tl_log_capture_stop();
		wrong += wrong_blocks(true);
		tl_vol_close(t);
	}
	if (wrong != 0)
		fail_msg("%llu blocks of the missing disk, never written, read "
		    "back wrong after the recovery", (unsigned long long)wrong);
}

int main(void)
{
	/* Nothing here is about durability: images in memory if we can. */
	if (getenv("TMPDIR") == NULL && access("/dev/shm", W_OK) == 0 &&
	    tl_is_tmpfs("/dev/shm") == 1)
		setenv("TMPDIR", "/dev/shm", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intent_bitmap),
		cmocka_unit_test(test_journal_records),
		cmocka_unit_test(test_journal_seq_at_the_end),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
