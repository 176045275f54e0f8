/*
 * tests/wafl/test_corrupt.c: W1.  Bits flipped in blocks the file system
 * uses are caught by the parent's checksum; the block is rebuilt from raid
 * parity, rewritten and the repair logged; with the parity gone too the
 * read fails with EIO.  Wrong data is never returned.
 *
 * A file whose last link goes while one of its pointer blocks is
 * unreadable becomes an orphan: what can be found is freed, the rest is
 * kept by the inode on the root block's orphan list, and freed by a later
 * sync or mount once it reads again.  Nothing leaks, nothing is freed
 * twice, and the check is clean at every step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "tests/lib/tl_log.h"
#include "tests/lib/tl_wafl.h"
#include "wafl/wafl_impl.h"

#define FLEN	(64 * 4096)

static int setup(void **state)
{
	*state = tl_fs_create(4, 1, 8192, true);
	return 0;
}

static int teardown(void **state)
{
	tl_log_capture_stop();
	tl_fs_destroy(*state);
	return 0;
}

/* The block pointer of file block fbn (file must be clean). */
static struct wafl_bp bp_of(struct tl_fs *f, uint64_t ino, uint64_t fbn)
{
	struct wnode *wn;
	struct wafl_bp bp;

	/* No assertion while a lock is held: a failure would leave it held
	 * and hang the teardown. */
	pthread_rwlock_rdlock(&f->v->cp_lock);
	int rc = wnode_get(f->v, ino, &wn);
	int rc2 = rc == 0 ? tree_lookup_bp(f->v, &wn->di, 0, fbn, &bp) : rc;
	if (rc == 0)
		wnode_put(wn);
	pthread_rwlock_unlock(&f->v->cp_lock);
	assert_int_equal(rc2, 0);
	assert_true(bp.vbn != 0);
	return bp;
}

/* wn_read of the whole file; *got as wn_read leaves it (may be NULL). */
static int read_all_got(struct tl_fs *f, uint64_t ino, uint8_t *buf,
    uint32_t *gotp)
{
	struct wnode *wn;
	uint32_t got = 0;
	bool eof;
	int rc;

	bcache_invalidate_all(f->v->cache);
	pthread_rwlock_rdlock(&f->v->cp_lock);
	rc = wnode_get(f->v, ino, &wn);
	if (rc == 0) {
		pthread_rwlock_rdlock(&wn->lock);
		rc = wn_read(wn, 0, FLEN, buf, &got, &eof);
		pthread_rwlock_unlock(&wn->lock);
		wnode_put(wn);
	}
	pthread_rwlock_unlock(&f->v->cp_lock);
	if (gotp != NULL)
		*gotp = got;
	return rc;
}

static int read_all(struct tl_fs *f, uint64_t ino, uint8_t *buf)
{
	return read_all_got(f, ino, buf, NULL);
}

static void flip(struct tl_fs *f, uint64_t vbn, uint32_t bit)
{
	size_t disk;
	uint64_t blk;

	assert_int_equal(raid_vbn_locate(f->raid, vbn, &disk, &blk), 0);
	assert_int_equal(raid_fault_flip_bit(f->raid, disk, blk, bit), 0);
}

static void test_flipped_data_is_repaired(void **state)
{
	struct tl_fs *f = *state;
	uint8_t *a = malloc(FLEN), *r = malloc(FLEN);
	struct wafl_stats st;

	tl_fill_pattern(a, FLEN, 3);
	uint64_t ino = tl_fs_new_file(f);
	tl_fs_write(f, ino, 0, a, FLEN);
	assert_int_equal(wafl_sync(f->v), 0);
	tl_log_capture_start(FL_LOG_WARN);
	/* One damaged block per stripe: P = 1 can rebuild each. */
	uint64_t flipped[64], nflipped = 0, stripes[64];
	for (uint64_t fbn = 0; fbn < 64; fbn += 3) {
		uint64_t vbn = bp_of(f, ino, fbn).vbn, blk;
		size_t disk;
		assert_int_equal(raid_vbn_locate(f->raid, vbn, &disk, &blk), 0);
		bool clash = false;
		for (uint64_t k = 0; k < nflipped; k++)
			clash |= stripes[k] == blk;
		if (clash)
			continue;
		stripes[nflipped] = blk;
		flipped[nflipped++] = fbn;
		flip(f, vbn, (uint32_t)(fbn * 97 % 32768));
	}
	assert_true(nflipped >= 10);
	assert_int_equal(read_all(f, ino, r), 0);
	assert_memory_equal(r, a, FLEN);
	wafl_get_stats(f->v, &st);
	assert_int_equal(st.repairs, nflipped);
	assert_true(tl_log_count_with("repaired", NULL) >= nflipped);
	/* The copies on disk were rewritten: raw reads now verify. */
	for (uint64_t k = 0; k < nflipped; k++) {
		uint64_t fbn = flipped[k];
		struct wafl_bp bp = bp_of(f, ino, fbn);
		uint8_t blk[4096];
		assert_int_equal(raid_read(f->raid, bp.vbn, 1, blk), 0);
		assert_int_equal(fl_crc32c(0, blk, 4096), bp.cksum);
	}
	free(a);
	free(r);
}

static void test_flipped_metadata_is_repaired(void **state)
{
	struct tl_fs *f = *state;
	uint8_t *a = malloc(FLEN), *r = malloc(FLEN);

	tl_fill_pattern(a, FLEN, 4);
	uint64_t ino = tl_fs_new_file(f);
	tl_fs_write(f, ino, 0, a, FLEN);
	/* Nothing dirty after this CP, so unmount writes no new root: the
	 * damage below meets no partial-stripe write, which would compute
	 * parity from it (docs/raid.md, "latent damage"). */
	assert_int_equal(wafl_sync(f->v), 0);
	uint64_t g = wafl_generation(f->v);
	/* The root block and the inode-file block holding this inode. */
	flip(f, f->v->fsi.root.vbn, 12345);
	struct wafl_bp ib;
	pthread_rwlock_rdlock(&f->v->cp_lock);
	int rc = tree_lookup_bp(f->v, &f->v->ifile, 0,
	    ino / WAFL_INODES_PER_BLOCK, &ib);
	pthread_rwlock_unlock(&f->v->cp_lock);
	assert_int_equal(rc, 0);
	/* In another stripe than the root block, or P = 1 cannot help. */
	size_t d1, d2;
	uint64_t b1, b2;
	assert_int_equal(raid_vbn_locate(f->raid, f->v->fsi.root.vbn, &d1,
	    &b1), 0);
	assert_int_equal(raid_vbn_locate(f->raid, ib.vbn, &d2, &b2), 0);
	if (b1 != b2)
		flip(f, ib.vbn, 77);
	assert_int_equal(wafl_unmount(f->v), 0);
	f->v = NULL;
	tl_fs_reopen_raid(f);
	tl_fs_mount(f);
	assert_int_equal(wafl_generation(f->v), g);
	assert_int_equal(read_all(f, ino, r), 0);
	assert_memory_equal(r, a, FLEN);
	free(a);
	free(r);
}

static void test_no_parity_left_gives_eio(void **state)
{
	struct tl_fs *f = *state;
	uint8_t *a = malloc(FLEN), *r = malloc(FLEN);

	tl_fill_pattern(a, FLEN, 5);
	uint64_t ino = tl_fs_new_file(f);
	tl_fs_write(f, ino, 0, a, FLEN);
	assert_int_equal(wafl_sync(f->v), 0);
	struct wafl_bp bp = bp_of(f, ino, 9);
	size_t pdisk;
	uint64_t pblk;
	flip(f, bp.vbn, 100);
	/* P = 1: corrupt the stripe's parity as well. */
	assert_int_equal(raid_parity_locate(f->raid, bp.vbn, 0, &pdisk,
	    &pblk), 0);
	assert_int_equal(raid_fault_flip_bit(f->raid, pdisk, pblk, 100), 0);
	tl_log_capture_start(FL_LOG_ERR);
	memset(r, 0, FLEN);
	uint32_t got;
	assert_int_equal(read_all_got(f, ino, r, &got), -EIO);
	assert_true(tl_log_count_with("W1", "unreadable", NULL) >= 1);
	/* What was returned before the bad block is right and claimed (the
	 * blocks before it share its level-1 parent, and are read with it
	 * in one run); nothing from the bad block on was claimed. */
	assert_int_equal(got, 9 * 4096);
	assert_memory_equal(r, a, 9 * 4096);
	free(a);
	free(r);
}

/* ------------------------------------------------ unreadable indirects */

static const struct wafl_cred root_cred = { 0, 0, 0, { 0 } };

static void check_clean(struct tl_fs *f, const char *when)
{
	struct wafl_check_result res;
	int rc = wafl_check(f->v, &res);

	if (rc != 0 || res.errors != 0)
		fail_msg("wafl_check %s: rc %d, %" PRIu64 " errors, first: %s",
		    when, rc, res.errors, res.first_error);
}

static uint64_t blocks_used(struct tl_fs *f)
{
	return f->v->blocks_used;
}

static uint64_t orphans(struct tl_fs *f)
{
	struct wafl_stats st;

	wafl_get_stats(f->v, &st);
	return st.orphans;
}

/* A height-2 file: blocks 0-7, 128-135 and 1920-1927, one level-2 block
 * over the level-1 blocks 0, 1 and 15.  Returns the pointer of level-1
 * block 1 (file blocks 128-255); the file is clean. */
static struct wafl_bp sparse_file(struct tl_fs *f, const char *name,
    struct wafl_obj *o)
{
	static const uint64_t runs[] = { 0, 128, 1920 };
	uint8_t *a = malloc(8 * 4096);
	struct wafl_obj dir;
	struct wafl_attr attr;
	struct wafl_bp bp;
	struct wnode *wn;

	assert_int_equal(wafl_root(f->v, &dir), 0);
	assert_int_equal(wafl_create(f->v, &root_cred, &dir, name,
	    WAFL_GUARDED, NULL, 0, o, &attr, NULL), 0);
	for (size_t i = 0; i < FL_ARRAY_SIZE(runs); i++) {
		tl_fill_pattern(a, 8 * 4096, runs[i] + 11);
		tl_fs_write(f, o->ino, runs[i] * 4096, a, 8 * 4096);
	}
	free(a);
	assert_int_equal(wafl_sync(f->v), 0);
	pthread_rwlock_rdlock(&f->v->cp_lock);
	int rc = wnode_get(f->v, o->ino, &wn);
	unsigned height = rc == 0 ? wn->di.height : 0;
	int rc2 = rc == 0 ? tree_lookup_bp(f->v, &wn->di, 1, 1, &bp) : rc;
	if (rc == 0)
		wnode_put(wn);
	pthread_rwlock_unlock(&f->v->cp_lock);
	assert_int_equal(rc2, 0);
	assert_int_equal(height, 2);
	assert_true(bp.vbn != 0);
	return bp;
}

/* A file made and removed, so the next file's inode lies in an
 * inode-file block already there: the block counts below are the file's
 * alone. */
static void warm_up(struct tl_fs *f)
{
	struct wafl_obj dir, o;

	assert_int_equal(wafl_root(f->v, &dir), 0);
	assert_int_equal(wafl_create(f->v, &root_cred, &dir, "warm",
	    WAFL_GUARDED, NULL, 0, &o, NULL, NULL), 0);
	assert_int_equal(wafl_remove(f->v, &root_cred, &dir, "warm", NULL),
	    0);
	assert_int_equal(wafl_sync(f->v), 0);
}

/* Make the block at vbn unreadable (a bit flipped in it and in its
 * stripe's parity, so P = 1 cannot rebuild it), or readable again (the
 * same bits flipped back). */
static void damage(struct tl_fs *f, uint64_t vbn)
{
	size_t pdisk;
	uint64_t pblk;

	flip(f, vbn, 4242);
	assert_int_equal(raid_parity_locate(f->raid, vbn, 0, &pdisk, &pblk),
	    0);
	assert_int_equal(raid_fault_flip_bit(f->raid, pdisk, pblk, 4242), 0);
	bcache_invalidate_all(f->v->cache);
}

static void remove_with_unreadable_indirect(struct tl_fs *f,
    struct wafl_obj *o, struct wafl_bp *l1, uint64_t *base)
{
	struct wafl_obj dir;

	warm_up(f);
	*base = blocks_used(f);
	*l1 = sparse_file(f, "victim", o);
	damage(f, l1->vbn);
	tl_log_capture_start(FL_LOG_ERR);
	assert_int_equal(wafl_root(f->v, &dir), 0);
	/* The name goes whatever happens to the blocks. */
	assert_int_equal(wafl_remove(f->v, &root_cred, &dir, "victim", NULL),
	    0);
	assert_int_equal(wafl_lookup(f->v, &root_cred, &dir, "victim", NULL,
	    NULL, NULL), -ENOENT);
	tl_log_capture_stop();
}

/* The blocks come back at a later sync, once the block reads again. */
static void test_remove_unreadable_indirect_sync(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_obj o;
	struct wafl_bp l1;
	struct wafl_attr attr;
	uint64_t base;

	remove_with_unreadable_indirect(f, &o, &l1, &base);
	/* The handle is dead even while the inode keeps its blocks. */
	assert_int_equal(wafl_getattr(f->v, &o, &attr), -ESTALE);
	/* Still unreadable: the sync frees nothing more, and the inode
	 * holds only the level-2 block, level-1 block 1 and its 8 data
	 * blocks (+ 1 for the root block). */
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(orphans(f), 1);
	assert_int_equal(blocks_used(f), base + 10);
	/* Readable again: the durable root, orphan and all, checks clean
	 * (the orphan's blocks are accounted for, nothing leaks). */
	damage(f, l1.vbn);
	assert_int_equal(orphans(f), 1);
	check_clean(f, "with an orphan");
	/* The next sync retries the orphan. */
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(orphans(f), 0);
	assert_int_equal(blocks_used(f), base);
	assert_int_equal(wafl_getattr(f->v, &o, &attr), -ESTALE);
	check_clean(f, "after the orphan was freed");
	tl_fs_remount(f);
	assert_int_equal(orphans(f), 0);
	assert_int_equal(blocks_used(f), base);
	check_clean(f, "after a remount");
}

/* A crash with the orphan on disk: the mount frees it. */
static void test_remove_unreadable_indirect_crash(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_obj o;
	struct wafl_bp l1;
	uint64_t base;

	f->mo.crash_sim = true;
	tl_fs_remount(f);
	remove_with_unreadable_indirect(f, &o, &l1, &base);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(orphans(f), 1);
	damage(f, l1.vbn);
	/* The orphan is in the durable root; the crash loses nothing. */
	assert_int_equal(wafl_crash(f->v, 7), 0);
	wafl_abandon(f->v);
	f->v = NULL;
	tl_fs_reopen_raid(f);
	tl_fs_mount(f);
	assert_int_equal(orphans(f), 0);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(blocks_used(f), base);
	check_clean(f, "after the crash and the mount");
	/* And the mount after that finds nothing to do. */
	tl_fs_remount(f);
	assert_int_equal(orphans(f), 0);
	assert_int_equal(blocks_used(f), base);
	check_clean(f, "after a second mount");
}

/* A truncate that fails half way keeps what it freed freed: repeated once
 * the block reads, it frees the rest and nothing twice. */
static void test_truncate_unreadable_indirect(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_obj o;
	struct wafl_sattr sa = { .set_size = true, .size = 0 };
	uint64_t base;

	warm_up(f);
	base = blocks_used(f);
	struct wafl_bp l1 = sparse_file(f, "shrink", &o);
	damage(f, l1.vbn);
	tl_log_capture_start(FL_LOG_ERR);
	assert_int_equal(wafl_setattr(f->v, &root_cred, &o, &sa, NULL, NULL,
	    NULL), -EIO);
	tl_log_capture_stop();
	assert_int_equal(wafl_sync(f->v), 0);
	/* The level-2 block, level-1 block 1 and its data stay. */
	assert_int_equal(blocks_used(f), base + 10);
	damage(f, l1.vbn);
	assert_int_equal(wafl_sync(f->v), 0);
	check_clean(f, "after a truncate that failed");
	assert_int_equal(wafl_setattr(f->v, &root_cred, &o, &sa, NULL, NULL,
	    NULL), 0);
	assert_int_equal(wafl_sync(f->v), 0);
	check_clean(f, "after the truncate");
	tl_fs_remount(f);
	check_clean(f, "after a remount");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_flipped_data_is_repaired,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_flipped_metadata_is_repaired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_parity_left_gives_eio,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_remove_unreadable_indirect_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_remove_unreadable_indirect_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_truncate_unreadable_indirect, setup, teardown),
	};
	return cmocka_run_group_tests_name("wafl corruption", tests, NULL,
	    NULL);
}
