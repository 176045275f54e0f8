/*
 * tests/wafl/test_check.c: wafl_check.  A fresh file system and a populated
 * one (directories, hard links, sparse and overwritten files, snapshots,
 * moved CP ring) are clean; every injected fault is reported under the
 * invariant it breaks, and the checker runs to completion on damaged and
 * hostile volumes.  Faults: bits flipped under parity (W1, repairable),
 * garbage written through raid (W1, not repairable), a forged active
 * bitmap (W4), a birth from the future (W2), a block shared by two files
 * (W5), a retained block the allocator would hand out and a bad pending
 * entry (W3), a forged summary map (W9),
 * link counts, parents, orphans and dangling entries (W8), a record from a
 * future generation in the NVLOG (W7), and structures with valid
 * checksums but hostile contents (directories, inodes, snapshot table).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "tests/lib/tl_log.h"
#include "tests/lib/tl_raid.h"
#include "tests/lib/tl_wafl.h"
#include "wafl/dir.h"
#include "wafl/nvlog.h"
#include "wafl/wafl_impl.h"

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

/* Run the checker; returns its result, details in *res and *det. */
static int check(struct tl_fs *f, struct wafl_check_result *res,
    struct wafl_check_detail *det)
{
	return wafl_check_detail(f->v, res, det);
}

static void assert_clean(struct tl_fs *f)
{
	struct wafl_check_result res;
	struct wafl_check_detail det;
	int rc = check(f, &res, &det);

	if (rc != 0)
		fprintf(stderr, "check: %d errors, first: %s\n",
		    (int)res.errors, res.first_error);
	assert_int_equal(rc, 0);
	assert_int_equal(res.errors, 0);
	assert_string_equal(res.first_error, "");
}

/* Only invariant w was reported (at least once). */
static void assert_only(const struct wafl_check_detail *det, unsigned w)
{
	for (unsigned i = 0; i < FL_ARRAY_SIZE(det->w_errors); i++) {
		if (i == w)
			assert_true(det->w_errors[i] > 0);
		else if (det->w_errors[i] != 0) {
			fprintf(stderr, "unexpected W%u errors: %llu\n", i,
			    (unsigned long long)det->w_errors[i]);
			fail();
		}
	}
}

/* ------------------------------------------------- building a tree */

static enum wafl_type type_of(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR: return WAFL_DIR;
	case S_IFLNK: return WAFL_LNK;
	default: return WAFL_REG;
	}
}

/* Create name in directory dir (mode's type: S_IFREG or S_IFDIR). */
static uint64_t mk(struct tl_fs *f, uint64_t dir, const char *name,
    uint32_t mode)
{
	struct wafl_vol *v = f->v;
	struct wnode *dw, *wn;
	struct dirfile df = { 0 };
	uint64_t ino;
	uint32_t gen;

	pthread_rwlock_rdlock(&v->cp_lock);
	assert_int_equal(ialloc(v, &ino, &gen), 0);
	assert_int_equal(wnode_get(v, dir, &dw), 0);
	assert_int_equal(wnode_get(v, ino, &wn), 0);
	pthread_rwlock_wrlock(&dw->lock);
	pthread_rwlock_wrlock(&wn->lock);
	wn->di.mode = mode;
	if (S_ISDIR(mode)) {
		wn->di.nlink = 2;
		wn->di.parent = dir;
		wn_dirfile(wn, &df);
		assert_int_equal(dir_init(&df), 0);
		dw->di.nlink++;
	} else {
		wn->di.nlink = 1;
	}
	wnode_dirty(wn);
	wn_dirfile(dw, &df);
	assert_int_equal(dir_add(&df, name, strlen(name), ino,
	    (uint8_t)type_of(mode), 0, NULL), 0);
	wnode_dirty(dw);
	pthread_rwlock_unlock(&wn->lock);
	pthread_rwlock_unlock(&dw->lock);
	wnode_put(wn);
	wnode_put(dw);
	pthread_rwlock_unlock(&v->cp_lock);
	return ino;
}

/* Another name for file ino in dir (a hard link). */
static void link_to(struct tl_fs *f, uint64_t dir, const char *name,
    uint64_t ino, bool bump)
{
	struct wafl_vol *v = f->v;
	struct wnode *dw, *wn;
	struct dirfile df = { 0 };

	pthread_rwlock_rdlock(&v->cp_lock);
	assert_int_equal(wnode_get(v, dir, &dw), 0);
	assert_int_equal(wnode_get(v, ino, &wn), 0);
	pthread_rwlock_wrlock(&dw->lock);
	wn_dirfile(dw, &df);
	assert_int_equal(dir_add(&df, name, strlen(name), ino,
	    (uint8_t)type_of(wn->di.mode ? wn->di.mode : S_IFREG), 0, NULL),
	    0);
	wnode_dirty(dw);
	pthread_rwlock_unlock(&dw->lock);
	if (bump) {
		wn->di.nlink++;
		wnode_dirty(wn);
	}
	wnode_put(wn);
	wnode_put(dw);
	pthread_rwlock_unlock(&v->cp_lock);
}

/* Run fn on the live inode of ino (dirtied afterwards). */
#define WITH_INODE(f, ino, wn, body) do { \
	struct wnode *wn; \
	pthread_rwlock_rdlock(&(f)->v->cp_lock); \
	assert_int_equal(wnode_get((f)->v, (ino), &wn), 0); \
	pthread_rwlock_wrlock(&wn->lock); \
	body; \
	wnode_dirty(wn); \
	pthread_rwlock_unlock(&wn->lock); \
	wnode_put(wn); \
	pthread_rwlock_unlock(&(f)->v->cp_lock); \
} while (0)

static void write_file(struct tl_fs *f, uint64_t ino, uint64_t off,
    uint32_t len, uint64_t seed)
{
	uint8_t *buf = malloc(len);

	tl_fill_pattern(buf, len, seed);
	tl_fs_write(f, ino, off, buf, len);
	free(buf);
}

/* Block pointer of (level, idx) in a clean file. */
static struct wafl_bp bp_of(struct tl_fs *f, uint64_t ino, unsigned level,
    uint64_t idx)
{
	struct wnode *wn;
	struct wafl_bp bp;

	pthread_rwlock_rdlock(&f->v->cp_lock);
	assert_int_equal(wnode_get(f->v, ino, &wn), 0);
	assert_int_equal(tree_lookup_bp(f->v, &wn->di, level, idx, &bp), 0);
	wnode_put(wn);
	pthread_rwlock_unlock(&f->v->cp_lock);
	assert_true(bp.vbn != 0);
	return bp;
}

/* A small tree: /a, /a/b, /a/b/data (multi-level), /top, /top2 (link). */
struct tree {
	uint64_t a, b, data, top, small;
};

static void build_tree(struct tl_fs *f, struct tree *t)
{
	t->a = mk(f, WAFL_INO_ROOTDIR, "a", S_IFDIR | 0755);
	t->b = mk(f, t->a, "b", S_IFDIR | 0755);
	t->data = mk(f, t->b, "data", S_IFREG | 0644);
	t->top = mk(f, WAFL_INO_ROOTDIR, "top", S_IFREG | 0644);
	t->small = mk(f, t->a, "small", S_IFREG | 0600);
	write_file(f, t->data, 0, 200 * 4096, 1);	/* height 1 */
	write_file(f, t->data, 40ull << 20, 8192, 2);	/* sparse, height 2 */
	write_file(f, t->top, 0, 5000, 3);
	write_file(f, t->small, 0, 10, 4);
	link_to(f, t->b, "top2", t->top, true);
	for (int i = 0; i < 40; i++) {
		char name[32];
		snprintf(name, sizeof(name), "f%03d", i);
		uint64_t ino = mk(f, t->b, name, S_IFREG | 0644);
		write_file(f, ino, 0, 100 + (uint32_t)i * 50, (uint64_t)i);
	}
	assert_int_equal(wafl_sync(f->v), 0);
}

/* ------------------------------------------------------------- clean */

static void test_fresh_is_clean(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct wafl_check_detail det;

	assert_int_equal(wafl_check(f->v, &res), 0);
	assert_int_equal(res.errors, 0);
	assert_true(res.blocks_checked >= 6);
	assert_true(res.inodes_checked >= 5);
	assert_int_equal(res.dirs_checked, 1);
	assert_int_equal(check(f, &res, &det), 0);
	assert_int_equal(det.log_records, 0);
	assert_int_equal(det.snapshots, 0);
}

static void test_populated_is_clean(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct wafl_check_detail det;
	struct tree t;

	build_tree(f, &t);
	assert_clean(f);
	assert_int_equal(check(f, &res, &det), 0);
	assert_int_equal(res.dirs_checked, 3);
	assert_true(res.inodes_checked >= 5 + 45);
	assert_true(res.blocks_checked > 200);

	/* Overwrites, truncation and frees move the ring; pending blocks
	 * and older CP roots are checked too. */
	for (int i = 0; i < 6; i++) {
		write_file(f, t.data, (uint64_t)i * 4096 * 10, 3 * 4096,
		    (uint64_t)i + 100);
		assert_int_equal(wafl_sync(f->v), 0);
		assert_clean(f);
	}
	WITH_INODE(f, t.data, wn, assert_int_equal(wn_set_size(wn, 7000), 0));
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), 0);
	assert_true(det.retained_roots >= 3);
	assert_true(f->v->npending > 0);

	tl_fs_remount(f);
	assert_clean(f);
}

static void test_snapshots_are_clean(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct wafl_check_detail det;
	struct tree t;
	uint64_t id;

	build_tree(f, &t);
	assert_int_equal(wafl_snap_create(f->v, "s1", &id), 0);
	/* The snapshot's blocks are overwritten in the active tree. */
	for (int i = 0; i < 6; i++) {
		write_file(f, t.data, 0, 64 * 4096, (uint64_t)i + 7);
		assert_int_equal(wafl_sync(f->v), 0);
	}
	assert_int_equal(wafl_snap_create(f->v, "s2", &id), 0);
	write_file(f, t.top, 0, 9000, 77);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), 0);
	assert_int_equal(det.snapshots, 2);
	assert_int_equal(wafl_snap_delete(f->v, "s1"), 0);
	assert_int_equal(check(f, &res, &det), 0);
	assert_int_equal(det.snapshots, 1);
	tl_fs_remount(f);
	assert_clean(f);
}

/* ---------------------------------------------------------------- W1 */

static void test_w1_flipped_bit_repairable(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct wafl_check_detail det;
	struct tree t;
	size_t disk;
	uint64_t blk;

	build_tree(f, &t);
	struct wafl_bp bp = bp_of(f, t.data, 0, 17);
	assert_int_equal(raid_vbn_locate(f->raid, bp.vbn, &disk, &blk), 0);
	assert_int_equal(raid_fault_flip_bit(f->raid, disk, blk, 1234), 0);

	tl_log_capture_start(FL_LOG_ERR);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_int_equal(res.errors, 1);
	assert_only(&det, 1);
	assert_int_equal(det.repairable, 1);
	assert_int_equal(det.unrepairable, 0);
	char want[64];
	snprintf(want, sizeof(want), "W1 violated: vbn %llu ",
	    (unsigned long long)bp.vbn);
	assert_non_null(strstr(res.first_error, want));
	assert_non_null(strstr(res.first_error, "repairable from parity"));
	assert_true(tl_log_count_with("W1 violated", "repairable", NULL) >= 1);
	/* It ran to completion. */
	assert_int_equal(res.dirs_checked, 3);
	/* The checker repairs nothing: the bad copy is still there. */
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_int_equal(det.repairable, 1);
}

/*
 * A cancelled check reads nothing more and reports nothing: on a volume
 * with a damaged block it returns -ECANCELED with no error, no WARN and
 * nothing counted; uncancelled, the same volume shows the damage.
 */
static void test_cancel(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct raid_status rs0, rs1;
	struct tree t;
	size_t disk;
	uint64_t blk;
	_Atomic bool cancel = true;

	build_tree(f, &t);
	struct wafl_bp bp = bp_of(f, t.data, 0, 17);
	assert_int_equal(raid_vbn_locate(f->raid, bp.vbn, &disk, &blk), 0);
	assert_int_equal(raid_fault_flip_bit(f->raid, disk, blk, 99), 0);
	tl_log_capture_start(FL_LOG_WARN);
	raid_status(f->raid, &rs0);
	assert_int_equal(wafl_check_cancellable(f->v, &res, &cancel),
	    -ECANCELED);
	raid_status(f->raid, &rs1);
	assert_int_equal(res.errors, 0);
	assert_int_equal(res.blocks_checked, 0);
	assert_int_equal(res.first_error[0], '\0');
	assert_int_equal(tl_log_count_with("W1 violated", NULL), 0);
	assert_int_equal(tl_log_count_with("not verified", NULL), 0);
	/* fsinfo slots only: no block of the tree was read */
	assert_true(rs1.counters.reads - rs0.counters.reads <= 2);
	cancel = false;
	assert_int_equal(wafl_check_cancellable(f->v, &res, &cancel),
	    -FL_ECORRUPT);
	assert_int_equal(res.errors, 1);
	tl_log_capture_stop();
}

static void garbage(struct tl_fs *f, uint64_t vbn, uint64_t seed)
{
	uint8_t buf[4096];

	tl_fill_pattern(buf, sizeof(buf), seed);
	assert_int_equal(raid_write(f->raid, vbn, 1, buf), 0);
	assert_int_equal(raid_flush(f->raid), 0);
}

static void test_w1_garbage_not_repairable(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct wafl_check_detail det;
	struct tree t;

	build_tree(f, &t);
	/* A data block, then an indirect block: the subtree below the
	 * indirect block cannot be walked, which must not turn into a
	 * cascade of W4 or W8 errors. */
	struct wafl_bp d = bp_of(f, t.top, 0, 1);
	struct wafl_bp ind = bp_of(f, t.data, 1, 0);
	garbage(f, d.vbn, 1);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_int_equal(res.errors, 1);
	assert_only(&det, 1);
	assert_int_equal(det.unrepairable, 1);
	assert_non_null(strstr(res.first_error, "not repairable"));

	garbage(f, ind.vbn, 2);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_int_equal(res.errors, 2);
	assert_only(&det, 1);
	assert_int_equal(res.dirs_checked, 3);
}

static void test_w1_damaged_metadata(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct wafl_check_detail det;
	struct tree t;

	build_tree(f, &t);
	/* A directory block: the directory's links cannot be counted. */
	struct wafl_bp db = bp_of(f, t.b, 0, 0);
	garbage(f, db.vbn, 3);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 1);
	assert_int_equal(res.errors, 1);

	/* The inode-file block holding inodes 16..23 too. */
	struct wafl_dinode ifile = f->v->ifile;
	struct wafl_bp ib;
	pthread_rwlock_rdlock(&f->v->cp_lock);
	assert_int_equal(tree_lookup_bp(f->v, &ifile, 0, 2, &ib), 0);
	pthread_rwlock_unlock(&f->v->cp_lock);
	assert_true(ib.vbn != 0);
	garbage(f, ib.vbn, 4);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 1);
	/* Directory 17 (inode 17) is unreadable now, so its bad block is
	 * not reached either; nothing cascades into W4 or W8. */
	assert_int_equal(res.errors, 1);
	assert_non_null(strstr(res.first_error, "inode 0 level 0 block 2 "));

	/* The root block itself: nothing below it can be walked. */
	garbage(f, f->v->fsi.root.vbn, 5);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_true(det.w_errors[1] >= 1);
	assert_non_null(strstr(res.first_error, "W1 violated"));
	assert_non_null(strstr(res.first_error, "root block"));
}

/* ---------------------------------------------------------------- W4 */

static void bitmap_forge(struct tl_fs *f, struct wnode *bm, uint64_t vbn,
    bool on)
{
	pthread_rwlock_rdlock(&f->v->cp_lock);
	pthread_rwlock_wrlock(&bm->lock);
	assert_int_equal(bitmap_set(bm, vbn, on), 0);
	pthread_rwlock_unlock(&bm->lock);
	pthread_rwlock_unlock(&f->v->cp_lock);
}

static void test_w4_bitmap_forged(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct wafl_check_detail det;
	struct tree t;
	char want[96];

	build_tree(f, &t);
	struct wafl_bp bp = bp_of(f, t.data, 0, 5);
	bitmap_forge(f, f->v->bitmap_wn, bp.vbn, false);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 4);
	snprintf(want, sizeof(want), "W4 violated: vbn %llu reachable but free",
	    (unsigned long long)bp.vbn);
	assert_non_null(strstr(res.first_error, want));
	bitmap_forge(f, f->v->bitmap_wn, bp.vbn, true);

	/* The other way: a free block marked allocated. */
	uint64_t freevbn = f->v->nvbns - 3;
	bool set = true;
	pthread_rwlock_rdlock(&f->v->cp_lock);
	pthread_rwlock_rdlock(&f->v->bitmap_wn->lock);
	assert_int_equal(bitmap_test(f->v->bitmap_wn, freevbn, &set), 0);
	pthread_rwlock_unlock(&f->v->bitmap_wn->lock);
	pthread_rwlock_unlock(&f->v->cp_lock);
	assert_false(set);
	bitmap_forge(f, f->v->bitmap_wn, freevbn, true);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 4);
	snprintf(want, sizeof(want), "W4 violated: vbn %llu allocated but "
	    "unreachable", (unsigned long long)freevbn);
	assert_non_null(strstr(res.first_error, want));
	bitmap_forge(f, f->v->bitmap_wn, freevbn, false);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_clean(f);
}

/* ---------------------------------------------------------- W2, W5 */

static void test_w2_birth_from_the_future(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct wafl_check_detail det;
	struct tree t;

	build_tree(f, &t);
	WITH_INODE(f, t.top, wn, wn->di.u.top[0].birth += 1000);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 2);
	assert_non_null(strstr(res.first_error, "W2 violated"));
	/* Restored, the active tree is right, but the CP ring still holds
	 * the bad root until it moves past it. */
	WITH_INODE(f, t.top, wn, wn->di.u.top[0].birth -= 1000);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 2);
	assert_non_null(strstr(res.first_error, "of CP root"));
	for (unsigned i = 0; i < WAFL_RING_K; i++) {
		write_file(f, t.small, 0, 10, i);
		assert_int_equal(wafl_sync(f->v), 0);
	}
	assert_clean(f);
}

static void test_w5_block_shared(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct wafl_check_detail det;
	struct tree t;
	char want[64];

	build_tree(f, &t);
	struct wafl_bp bp = bp_of(f, t.top, 0, 0);
	uint64_t other = mk(f, WAFL_INO_ROOTDIR, "other", S_IFREG | 0644);
	WITH_INODE(f, other, wn, {
		wn->di.u.top[0] = bp;
		wn->di.size = 4096;
		wn->di.blocks = 1;
	});
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 5);
	snprintf(want, sizeof(want), "W5 violated: vbn %llu referenced twice",
	    (unsigned long long)bp.vbn);
	assert_non_null(strstr(res.first_error, want));
	/* Undo before the block is freed twice. */
	WITH_INODE(f, other, wn, {
		memset(&wn->di.u.top[0], 0, sizeof(wn->di.u.top[0]));
		wn->di.size = 0;
		wn->di.blocks = 0;
	});
	assert_int_equal(wafl_sync(f->v), 0);
	assert_clean(f);
}

/* ---------------------------------------------------------- W3, W9 */

static void test_w3_pending_out_of_range(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct wafl_check_detail det;
	struct tree t;

	build_tree(f, &t);
	pthread_mutex_lock(&f->v->cp_serial);
	uint64_t n = f->v->npending;
	assert_int_equal(alloc_pending_add(f->v, f->v->nvbns + 7,
	    f->v->fsi.gen), 0);
	assert_int_equal(alloc_pending_add(f->v, 100, f->v->fsi.gen + 3), 0);
	pthread_mutex_unlock(&f->v->cp_serial);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 3);
	assert_int_equal(res.errors, 2);
	assert_non_null(strstr(res.first_error, "W3 violated: pending vbn"));
	pthread_mutex_lock(&f->v->cp_serial);
	f->v->npending = n;
	pthread_mutex_unlock(&f->v->cp_serial);
	assert_clean(f);
}

/* A block a retained CP root reaches must not be allocatable (W3). */
static void test_w3_retained_block_allocatable(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct wafl_check_detail det;
	struct tree t;
	char want[96];

	build_tree(f, &t);
	struct wafl_bp old = bp_of(f, t.top, 0, 0);
	write_file(f, t.top, 0, 4096, 1234);	/* old: held by the ring */
	assert_int_equal(wafl_sync(f->v), 0);
	assert_clean(f);
	struct alloc_area *ar = &f->v->areas[old.vbn / WAFL_BITS_PER_BLOCK];
	assert_non_null(ar->unavail);
	uint32_t bit = (uint32_t)(old.vbn % WAFL_BITS_PER_BLOCK);
	pthread_mutex_lock(&f->v->cp_serial);
	ar->unavail[bit >> 3] &= (uint8_t)~(1u << (bit & 7));
	pthread_mutex_unlock(&f->v->cp_serial);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 3);
	snprintf(want, sizeof(want), "W3 violated: vbn %llu (",
	    (unsigned long long)old.vbn);
	assert_non_null(strstr(res.first_error, want));
	assert_non_null(strstr(res.first_error, "of CP root"));
	pthread_mutex_lock(&f->v->cp_serial);
	ar->unavail[bit >> 3] |= (uint8_t)(1u << (bit & 7));
	pthread_mutex_unlock(&f->v->cp_serial);
	assert_clean(f);
}

static void test_w9_summary_forged(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct wafl_check_detail det;
	struct tree t;
	uint64_t id;

	build_tree(f, &t);
	assert_int_equal(wafl_snap_create(f->v, "snap", &id), 0);
	assert_clean(f);
	uint64_t vbn = f->v->nvbns - 5;
	bitmap_forge(f, f->v->summary_wn, vbn, true);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 9);
	assert_non_null(strstr(res.first_error, "in no snapshot"));
	bitmap_forge(f, f->v->summary_wn, vbn, false);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_clean(f);

	/* A block only the snapshot holds goes bad: W1 names the
	 * snapshot. */
	struct wafl_bp old = bp_of(f, t.top, 0, 0);
	write_file(f, t.top, 0, 4096, 999);
	for (int i = 0; i < 5; i++) {
		write_file(f, t.small, 0, 10, (uint64_t)i);
		assert_int_equal(wafl_sync(f->v), 0);
	}
	assert_clean(f);
	/* Out of the summary map, that block would be allocatable after a
	 * remount: W3 as well as W9. */
	bitmap_forge(f, f->v->summary_wn, old.vbn, false);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_true(det.w_errors[3] > 0);
	assert_true(det.w_errors[9] > 0);
	bitmap_forge(f, f->v->summary_wn, old.vbn, true);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_clean(f);
	garbage(f, old.vbn, 9);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 1);
	assert_non_null(strstr(res.first_error, "snapshot 'snap'"));
}

/* ---------------------------------------------------------------- W8 */

static void test_w8_link_counts(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct wafl_check_detail det;
	struct tree t;
	char want[96];

	build_tree(f, &t);
	/* A file's nlink one too high. */
	WITH_INODE(f, t.small, wn, wn->di.nlink++);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 8);
	assert_int_equal(res.errors, 1);
	snprintf(want, sizeof(want), "W8 violated: inode %llu has nlink 2 but "
	    "1 directory entries name it", (unsigned long long)t.small);
	assert_string_equal(res.first_error, want);
	WITH_INODE(f, t.small, wn, wn->di.nlink--);

	/* A directory's nlink one too low. */
	WITH_INODE(f, t.a, wn, wn->di.nlink--);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 8);
	assert_non_null(strstr(res.first_error, "subdirectories"));
	WITH_INODE(f, t.a, wn, wn->di.nlink++);

	/* A directory whose parent field is wrong. */
	WITH_INODE(f, t.b, wn, wn->di.parent = WAFL_INO_ROOTDIR);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 8);
	assert_non_null(strstr(res.first_error, "parent field"));
	WITH_INODE(f, t.b, wn, wn->di.parent = t.a);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_clean(f);

	/* An orphan: allocated, in no directory. */
	uint64_t orphan = tl_fs_new_orphan(f);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 8);
	snprintf(want, sizeof(want), "inode %llu", (unsigned long long)orphan);
	assert_non_null(strstr(res.first_error, want));
	assert_non_null(strstr(res.first_error, "orphan"));
	link_to(f, t.b, "adopted", orphan, false);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_clean(f);

	/* An entry naming a free inode, and a directory named twice. */
	link_to(f, t.a, "dangling", 5000, false);
	link_to(f, WAFL_INO_ROOTDIR, "b-again", t.b, false);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 8);
	assert_true(res.errors >= 2);
}

static void test_w8_size_and_blocks(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct wafl_check_detail det;
	struct tree t;

	build_tree(f, &t);
	WITH_INODE(f, t.top, wn, wn->di.blocks += 3);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 8);
	assert_non_null(strstr(res.first_error, "holds 2 blocks"));
	WITH_INODE(f, t.top, wn, {
		wn->di.blocks -= 3;
		wn->di.size = 100;	/* block 1 now lies past EOF */
	});
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 8);
	assert_non_null(strstr(res.first_error, "past its size"));
	WITH_INODE(f, t.top, wn, wn->di.size = 5000);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_clean(f);
}

/* ---------------------------------------------------------------- W7 */

/* Commit a record of gen; if wait, wait until it is durable (otherwise
 * it may stay staged in memory). */
static void log_record_ex(struct tl_fs *f, uint64_t gen, bool wait)
{
	struct nvlog_resv r;
	uint8_t payload[40] = { 1, 2, 3 };
	struct iovec iov = { payload, sizeof(payload) };
	uint64_t lsn;

	pthread_rwlock_rdlock(&f->v->cp_lock);
	assert_int_equal(nvlog_reserve(f->v->log, sizeof(payload), &r), 0);
	assert_int_equal(nvlog_commit(f->v->log, &r, gen, 200, &iov, 1,
	    &lsn), 0);
	pthread_rwlock_unlock(&f->v->cp_lock);
	if (wait)
		assert_int_equal(nvlog_wait(f->v->log, lsn), 0);
}

static void log_record(struct tl_fs *f, uint64_t gen)
{
	log_record_ex(f, gen, true);
}

static void test_w7_nvlog(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct wafl_check_detail det;

	assert_non_null(f->v->log);
	for (int i = 0; i < 3; i++)
		log_record(f, f->v->open_gen);
	assert_int_equal(check(f, &res, &det), 0);
	assert_int_equal(det.log_records, 3);
	/* Committed, not waited for: still staged in memory, it is in the
	 * file the check reads all the same. */
	log_record_ex(f, f->v->open_gen + 5, false);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 7);
	assert_int_equal(det.log_records, 4);
	assert_non_null(strstr(res.first_error, "W7 violated: NVLOG record"));
	/* Records of unknown type: leave without replaying or syncing. */
	wafl_abandon(f->v);
	f->v = NULL;
}

/* ---------------------------------------------------- hostile data */

/* Garbage with valid checksums: written through the core, so every
 * parent's pointer matches it. */
static void forge_block(struct tl_fs *f, struct wnode *wn, uint64_t fbn,
    uint64_t seed, uint32_t off, uint32_t len)
{
	uint8_t *blk;

	pthread_rwlock_rdlock(&f->v->cp_lock);
	pthread_rwlock_wrlock(&wn->lock);
	assert_int_equal(wn_modify_block(wn, fbn, &blk), 0);
	tl_fill_pattern(blk + off, len, seed);
	pthread_rwlock_unlock(&wn->lock);
	pthread_rwlock_unlock(&f->v->cp_lock);
}

static void test_hostile_structures(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct wafl_check_detail det;
	struct tree t;
	struct wnode *wn;

	build_tree(f, &t);
	/* Hostile directory blocks: header and a leaf. */
	pthread_rwlock_rdlock(&f->v->cp_lock);
	assert_int_equal(wnode_get(f->v, t.b, &wn), 0);
	pthread_rwlock_unlock(&f->v->cp_lock);
	forge_block(f, wn, 1, 11, 40, 200);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 8);
	assert_non_null(strstr(res.first_error, "index corrupt"));
	forge_block(f, wn, 0, 12, 0, 4096);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_only(&det, 8);
	wnode_put(wn);

	/* Hostile inodes (16..23) in the inode file. */
	forge_block(f, f->v->ifile_wn, 2, 13, 0, 4096);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_true(det.w_errors[1] >= 8);

	/* A hostile snapshot table and bitmaps. */
	forge_block(f, f->v->snaptab_wn, 0, 14, 0, 4096);
	forge_block(f, f->v->summary_wn, 0, 15, 0, 4096);
	forge_block(f, f->v->bitmap_wn, 0, 16, 100, 3000);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
	assert_true(det.w_errors[1] > 0 && det.w_errors[4] > 0);
	/* The volume is beyond use now: leave without a final CP. */
	wafl_abandon(f->v);
	f->v = NULL;
}

static void test_random_damage_runs_to_completion(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;
	struct wafl_check_detail det;
	struct tree t;
	uint64_t rng = 42;
	uint64_t used[4096], nused = 0;

	build_tree(f, &t);
	/* Blocks in use, from the active bitmap. */
	pthread_rwlock_rdlock(&f->v->cp_lock);
	pthread_rwlock_rdlock(&f->v->bitmap_wn->lock);
	for (uint64_t vbn = 2; vbn < f->v->nvbns && nused < 4096; vbn++) {
		bool set = false;
		assert_int_equal(bitmap_test(f->v->bitmap_wn, vbn, &set), 0);
		if (set)
			used[nused++] = vbn;
	}
	pthread_rwlock_unlock(&f->v->bitmap_wn->lock);
	pthread_rwlock_unlock(&f->v->cp_lock);
	assert_true(nused > 100);
	for (int round = 0; round < 12; round++) {
		for (int k = 0; k < 3; k++) {
			uint64_t vbn = used[tl_rand_below(&rng, nused)];
			if (tl_rand_below(&rng, 2) == 0) {
				size_t disk;
				uint64_t blk;
				assert_int_equal(raid_vbn_locate(f->raid, vbn,
				    &disk, &blk), 0);
				assert_int_equal(raid_fault_flip_bit(f->raid,
				    disk, blk, (uint32_t)tl_rand_below(&rng,
				    32768)), 0);
			} else {
				garbage(f, vbn, tl_rand(&rng));
			}
		}
		assert_int_equal(check(f, &res, &det), -FL_ECORRUPT);
		assert_true(det.w_errors[1] > 0);
		assert_true(res.errors > 0);
		assert_non_null(strstr(res.first_error, "violated"));
	}
	wafl_abandon(f->v);
	f->v = NULL;
}

/*
 * An online check lets CPs go on.  Once the check has pinned its roots,
 * another thread rewrites a file through the whole volume (20 CPs; the
 * blocks of the root being checked are freed, and without their pins they
 * would be written over), deletes the snapshot the check is about to
 * walk (whose blocks no ring root has any more) and makes another, and
 * takes and releases a hold, after which every allocation area is loaded
 * again.  The check must be clean and about the root it
 * started with, and those CPs must finish while it waits (a check that
 * held CPs would make them wait for it instead).
 */
struct online_churn {
	struct tl_fs *f;
	uint64_t ino;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int rc;
};

static struct online_churn *online_ctx;

static void *online_churn_thread(void *arg)
{
	struct online_churn *o = arg;
	const uint32_t len = 1u << 20;
	uint8_t *a = malloc(len);
	int rc = a == NULL ? -ENOMEM : 0;

	for (int i = 0; rc == 0 && i < 20; i++) {
		tl_fill_pattern(a, len, 500 + (uint64_t)i);
		for (uint32_t k = 0; k < 3; k++)
			tl_fs_write(o->f, o->ino, (uint64_t)k * len, a, len);
		rc = wafl_sync(o->f->v);
		if (rc == 0 && i == 5)
			rc = wafl_snap_delete(o->f->v, "before");
		if (rc == 0 && i == 6)
			rc = wafl_snap_create(o->f->v, "during", NULL);
		/* A hold taken and released: the CP after the release
		 * reloads every allocation area, which must count the
		 * pinned roots and their snapshots in. */
		if (rc == 0 && i == 8)
			rc = wafl_hold_root(o->f->v,
			    wafl_generation(o->f->v));
		if (rc == 0 && i == 9)
			wafl_release_root(o->f->v,
			    wafl_generation(o->f->v) - 1);
	}
	free(a);
	pthread_mutex_lock(&o->mu);
	o->rc = rc;
	o->done = true;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

/* Inside the check, its roots pinned: the churn, given 60 s. */
static void online_hook(struct wafl_vol *v)
{
	struct online_churn *o = online_ctx;
	pthread_t t;
	struct timespec dl;

	(void)v;
	assert_int_equal(pthread_create(&t, NULL, online_churn_thread, o), 0);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 60;
	pthread_mutex_lock(&o->mu);
	while (!o->done && pthread_cond_timedwait(&o->cv, &o->mu, &dl) == 0)
		;
	pthread_mutex_unlock(&o->mu);
	/* Done or not: a churn that waits for the check ends after it. */
	pthread_detach(t);
}

static void test_online_check_lets_cps_run(void **state)
{
	struct tl_fs *f = *state;
	struct online_churn o = { .f = f };
	struct wafl_check_result res;
	struct wafl_check_detail det;
	const uint32_t len = 1u << 20;
	uint8_t *a = malloc(len);

	assert_non_null(a);
	pthread_mutex_init(&o.mu, NULL);
	pthread_cond_init(&o.cv, NULL);
	o.ino = tl_fs_new_file(f);
	for (uint32_t k = 0; k < 3; k++) {
		tl_fill_pattern(a, len, 400 + k);
		tl_fs_write(f, o.ino, (uint64_t)k * len, a, len);
	}
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(wafl_snap_create(f->v, "before", NULL), 0);
	tl_fill_pattern(a, len, 450);
	tl_fs_write(f, o.ino, 0, a, len);
	assert_int_equal(wafl_sync(f->v), 0);
	/* No root of the ring has the first MiB "before" has: only the
	 * summary map keeps those blocks. */
	uint64_t small = tl_fs_new_file(f);
	for (unsigned i = 0; i <= WAFL_RING_K; i++) {
		tl_fs_write(f, small, 0, a, 4096);
		assert_int_equal(wafl_sync(f->v), 0);
	}
	uint64_t g0 = wafl_generation(f->v);

	online_ctx = &o;
	wafl_check_set_test_hook(online_hook);
	int rc = check(f, &res, &det);
	wafl_check_set_test_hook(NULL);
	pthread_mutex_lock(&o.mu);
	bool done = o.done;
	pthread_mutex_unlock(&o.mu);
	if (rc != 0)
		fail_msg("online check: %d, %llu errors, first: %s", rc,
		    (unsigned long long)res.errors, res.first_error);
	/* CPs ran while the check waited, none after it (a check holding
	 * them would have timed out above and let them run only now). */
	assert_true(done);
	assert_int_equal(o.rc, 0);
	assert_true(wafl_generation(f->v) >= g0 + 20);
	assert_int_equal(det.snapshots, 1);	/* "before", as of g0 */
	/* And the pins are gone: the volume checks clean as it is now. */
	assert_int_equal(check(f, &res, &det), 0);
	assert_int_equal(det.snapshots, 1);	/* "during" */
	for (unsigned p = 0; p < WAFL_MAX_PINS; p++)
		assert_int_equal(f->v->pins[p].gen, 0);
	pthread_mutex_destroy(&o.mu);
	pthread_cond_destroy(&o.cv);
	free(a);
}

/*
 * A nearly full volume: the file that fills most of it is truncated and
 * as much written again while an online check pins the roots that still
 * name the old blocks.  The writes need those blocks; the check gives
 * them back (it stops, -ENOSPC) and the writes go through, where they
 * used to fail with ENOSPC until the check ended.
 */
struct yield_ctx {
	struct tl_fs *f;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct wafl_obj file;
	bool done;
	int rc;
	uint64_t written;
};

static struct yield_ctx *yield_ctx;
static const struct wafl_cred yield_cred = { 0, 0, 0, { 0 } };

#define YIELD_FILE	(20u << 20)
#define YIELD_CHUNK	(256u << 10)

static int yield_fill(struct yield_ctx *y, uint64_t seed)
{
	uint8_t *buf = malloc(YIELD_CHUNK);
	enum wafl_stable st;
	int rc = 0;

	assert_non_null(buf);
	for (uint64_t off = 0; off < YIELD_FILE && rc == 0;
	    off += YIELD_CHUNK) {
		tl_fill_pattern(buf, YIELD_CHUNK, seed + off);
		rc = wafl_write(y->f->v, &yield_cred, &y->file, off,
		    YIELD_CHUNK, buf, WAFL_UNSTABLE, &st, NULL, NULL);
		if (rc == 0)
			y->written = off + YIELD_CHUNK;
	}
	free(buf);
	return rc;
}

static void *yield_writer(void *arg)
{
	struct yield_ctx *y = arg;
	struct wafl_sattr sa = { .set_size = true, .size = 0 };
	int rc;

	rc = wafl_setattr(y->f->v, &yield_cred, &y->file, &sa, NULL, NULL,
	    NULL);
	if (rc == 0)
		rc = yield_fill(y, 2000);
	pthread_mutex_lock(&y->mu);
	y->rc = rc;
	y->done = true;
	pthread_cond_broadcast(&y->cv);
	pthread_mutex_unlock(&y->mu);
	return NULL;
}

/* Inside the check, its roots pinned: start the writer, and return once
 * it asked the check to stop (or finished, or 60 s passed). */
static void yield_hook(struct wafl_vol *v)
{
	struct yield_ctx *y = yield_ctx;
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, yield_writer, y), 0);
	pthread_detach(t);
	for (int i = 0; i < 6000; i++) {
		pthread_mutex_lock(&y->mu);
		bool done = y->done;
		pthread_mutex_unlock(&y->mu);
		if (done || __atomic_load_n(&v->check_yield, __ATOMIC_ACQUIRE))
			return;
		usleep(10000);
	}
}

static int setup_small(void **state)
{
	*state = tl_fs_create(2, 1, 4096, false);	/* 32 MiB */
	return 0;
}

/* The big file written and its root out of the ring; then the check,
 * with the writer started inside it; returns the check's result once the
 * writer is done. */
static int yield_run(struct tl_fs *f, struct yield_ctx *y,
    struct wafl_check_result *res, struct wafl_check_detail *det,
    uint64_t *hold)
{
	struct wafl_obj root;
	struct wafl_attr a;
	struct timespec dl;

	pthread_mutex_init(&y->mu, NULL);
	pthread_cond_init(&y->cv, NULL);
	assert_int_equal(wafl_root(f->v, &root), 0);
	assert_int_equal(wafl_create(f->v, &yield_cred, &root, "big",
	    WAFL_GUARDED, NULL, 0, &y->file, &a, NULL), 0);
	assert_int_equal(yield_fill(y, 1000), 0);
	assert_int_equal(wafl_sync(f->v), 0);
	if (hold != NULL) {
		*hold = wafl_generation(f->v);
		assert_int_equal(wafl_hold_root(f->v, *hold), 0);
	}
	for (unsigned i = 0; i <= WAFL_RING_K; i++)
		assert_int_equal(wafl_sync(f->v), 0);

	yield_ctx = y;
	tl_log_capture_start(FL_LOG_WARN);
	wafl_check_set_test_hook(yield_hook);
	int rc = check(f, res, det);
	wafl_check_set_test_hook(NULL);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 120;
	pthread_mutex_lock(&y->mu);
	while (!y->done && pthread_cond_timedwait(&y->cv, &y->mu, &dl) == 0)
		;
	bool done = y->done;
	pthread_mutex_unlock(&y->mu);
	assert_true(done);
	return rc;
}

static void test_online_check_yields_space(void **state)
{
	struct tl_fs *f = *state;
	struct yield_ctx y = { .f = f };
	struct wafl_check_result res;
	struct wafl_check_detail det;
	int rc = yield_run(f, &y, &res, &det, NULL);

	if (y.rc != 0)
		fail_msg("writes during the check: %d after %llu bytes", y.rc,
		    (unsigned long long)y.written);
	/* The check stopped for them, and said why. */
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(res.errors, 0);
	assert_int_equal(tl_log_count_with("writes need the blocks", NULL), 1);
	assert_int_equal(tl_log_count_with("stopped: writes", NULL), 1);
	tl_log_capture_stop();
	for (unsigned p = 0; p < WAFL_MAX_PINS; p++)
		assert_int_equal(f->v->pins[p].gen, 0);
	assert_int_equal(f->v->checks_pinned, 0);
	assert_false(f->v->check_yield);
	/* The data is whole and the volume clean; a check now runs through. */
	uint8_t *buf = malloc(YIELD_CHUNK), *want = malloc(YIELD_CHUNK);
	assert_non_null(buf);
	assert_non_null(want);
	assert_int_equal(wafl_sync(f->v), 0);
	for (uint64_t off = 0; off < YIELD_FILE; off += 16 * YIELD_CHUNK) {
		tl_fill_pattern(want, YIELD_CHUNK, 2000 + off);
		assert_int_equal(tl_fs_read(f, y.file.ino, off, buf,
		    YIELD_CHUNK), YIELD_CHUNK);
		assert_memory_equal(buf, want, YIELD_CHUNK);
	}
	free(buf);
	free(want);
	assert_clean(f);
	pthread_mutex_destroy(&y.mu);
	pthread_cond_destroy(&y.cv);
}

/*
 * The same with a mirror's hold on the root that still has the big file:
 * the hold, older than every pin, is what keeps the frees, so stopping
 * the check would give nothing back.  The writes fail with ENOSPC as they
 * would without the check, and the check runs through, clean.
 */
static void test_online_check_keeps_going_behind_a_hold(void **state)
{
	struct tl_fs *f = *state;
	struct yield_ctx y = { .f = f };
	struct wafl_check_result res;
	struct wafl_check_detail det;
	uint64_t hold;
	int rc = yield_run(f, &y, &res, &det, &hold);

	assert_int_equal(y.rc, -ENOSPC);
	if (rc != 0)
		fail_msg("check behind a hold: %d, %llu errors, first: %s", rc,
		    (unsigned long long)res.errors, res.first_error);
	assert_int_equal(tl_log_count_with("stopping the online check",
	    NULL), 0);
	tl_log_capture_stop();
	assert_int_equal(f->v->checks_pinned, 0);
	assert_false(f->v->check_yield);
	wafl_release_root(f->v, hold);
	pthread_mutex_destroy(&y.mu);
	pthread_cond_destroy(&y.cv);
}

/*
 * The check's NVLOG phase must not hold CPs off for as long as other
 * threads keep the log busy.  One logged operation is left to flush when
 * the phase begins, with a callback queued for it as a server thread's
 * reply; each callback, as a stream of replies would, has a thread log one
 * more operation and queue a callback for it before it returns.  A thread
 * that flushes the log there then leads flush after flush, running them.
 * The first callback starts a CP in another thread, and the stream stops
 * once it is through: it must go through while the stream runs.
 */
#define LEAD_STEPS_MAX	400u

struct lead_ctx {
	struct tl_fs *f;
	struct wafl_obj root;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned asked, queued, ran;
	bool cp_start, cp_done, stop;
	unsigned cp_done_at;
	int cp_rc, op_rc;
};

static struct lead_ctx *lead_ctx;

static void lead_cb(void *arg, int err, bool last)
{
	struct lead_ctx *l = arg;

	(void)last;
	usleep(5000);
	pthread_mutex_lock(&l->mu);
	if (err != 0 && l->op_rc == 0)
		l->op_rc = err;
	l->ran++;
	l->cp_start = true;
	if (!l->cp_done && l->ran < LEAD_STEPS_MAX) {
		unsigned want = ++l->asked;

		pthread_cond_broadcast(&l->cv);
		while (l->queued < want && l->op_rc == 0)
			pthread_cond_wait(&l->cv, &l->mu);
	}
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

/* Log one operation and queue its callback without leading a flush. */
static int lead_queue(struct lead_ctx *l)
{
	struct wafl_sattr sa = { .set_mode = true, .mode = 0755 };
	uint64_t lsn = 0;
	int rc;

	wafl_defer_begin();
	rc = wafl_setattr(l->f->v, &yield_cred, &l->root, &sa, NULL, NULL,
	    NULL);
	if (wafl_defer_end(&lsn) == NULL && rc == 0)
		rc = -EINVAL;
	if (rc == 0)
		(void)nvlog_when_durable_later(l->f->v->log, lsn, lead_cb, l);
	return rc;
}

static void *lead_feeder(void *arg)
{
	struct lead_ctx *l = arg;

	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (l->queued == l->asked && !l->stop)
			pthread_cond_wait(&l->cv, &l->mu);
		if (l->stop)
			break;
		pthread_mutex_unlock(&l->mu);
		int rc = lead_queue(l);
		pthread_mutex_lock(&l->mu);
		if (rc != 0 && l->op_rc == 0)
			l->op_rc = rc;
		l->queued++;
		pthread_cond_broadcast(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

static void *lead_cp(void *arg)
{
	struct lead_ctx *l = arg;
	int rc;

	pthread_mutex_lock(&l->mu);
	while (!l->cp_start && !l->stop)
		pthread_cond_wait(&l->cv, &l->mu);
	pthread_mutex_unlock(&l->mu);
	rc = wafl_sync(l->f->v);
	pthread_mutex_lock(&l->mu);
	l->cp_rc = rc;
	l->cp_done = true;
	l->cp_done_at = l->ran;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* Inside the check, CPs going on: the first operation and its callback. */
static void lead_hook(struct wafl_vol *v)
{
	struct lead_ctx *l = lead_ctx;

	(void)v;
	pthread_mutex_lock(&l->mu);
	unsigned want = ++l->asked;

	pthread_cond_broadcast(&l->cv);
	while (l->queued < want)
		pthread_cond_wait(&l->cv, &l->mu);
	pthread_mutex_unlock(&l->mu);
}

static void test_check_log_phase_lets_cps_run(void **state)
{
	struct tl_fs *f = *state;
	struct lead_ctx l = { .f = f };
	struct wafl_check_result res;
	struct wafl_check_detail det;
	pthread_t feeder, cp;

	pthread_mutex_init(&l.mu, NULL);
	pthread_cond_init(&l.cv, NULL);
	assert_int_equal(wafl_root(f->v, &l.root), 0);
	assert_int_equal(pthread_create(&feeder, NULL, lead_feeder, &l), 0);
	assert_int_equal(pthread_create(&cp, NULL, lead_cp, &l), 0);
	lead_ctx = &l;
	wafl_check_set_test_hook(lead_hook);
	int rc = check(f, &res, &det);
	wafl_check_set_test_hook(NULL);
	/* Let the stream end, and the CP, whatever the check did. */
	pthread_mutex_lock(&l.mu);
	l.cp_start = true;
	pthread_cond_broadcast(&l.cv);
	while (!l.cp_done)
		pthread_cond_wait(&l.cv, &l.mu);
	pthread_mutex_unlock(&l.mu);
	assert_int_equal(pthread_join(cp, NULL), 0);
	assert_int_equal(nvlog_sync(f->v->log), 0);
	pthread_mutex_lock(&l.mu);
	l.stop = true;
	pthread_cond_broadcast(&l.cv);
	pthread_mutex_unlock(&l.mu);
	assert_int_equal(pthread_join(feeder, NULL), 0);

	assert_int_equal(rc, 0);
	assert_int_equal(l.op_rc, 0);
	assert_int_equal(l.cp_rc, 0);
	if (l.cp_done_at >= LEAD_STEPS_MAX)
		fail_msg("the CP waited for the check's NVLOG phase: it went "
		    "through after %u flushes, when the stream ended",
		    l.cp_done_at);
	pthread_mutex_destroy(&l.mu);
	pthread_cond_destroy(&l.cv);
}

/*
 * What a check's pins keep is not a mirror's cost: inside the check, the
 * 20 MiB file truncated and the ring moved past the free, the pins keep
 * those blocks pending (wafl_pending_blocks), but the ring and the holds
 * do not (wafl_pending_blocks_unpinned, which a mirror source compares
 * with its fallback bound).  Once the check ends, the frees leave.
 */
static uint64_t pinned_pending, unpinned_pending;

static void pinned_pending_hook(struct wafl_vol *v)
{
	struct yield_ctx *y = yield_ctx;
	struct wafl_sattr sa = { .set_size = true, .size = 0 };

	struct wafl_obj root, small;
	struct wafl_attr a;
	enum wafl_stable st;
	uint8_t b[4096] = { 1 };

	assert_int_equal(wafl_setattr(v, &yield_cred, &y->file, &sa, NULL,
	    NULL, NULL), 0);
	/* Each CP changes something, so that the ring moves. */
	assert_int_equal(wafl_root(v, &root), 0);
	assert_int_equal(wafl_create(v, &yield_cred, &root, "small",
	    WAFL_GUARDED, NULL, 0, &small, &a, NULL), 0);
	for (unsigned i = 0; i <= WAFL_RING_K; i++) {
		assert_int_equal(wafl_write(v, &yield_cred, &small, 0,
		    sizeof(b), b, WAFL_UNSTABLE, &st, NULL, NULL), 0);
		assert_int_equal(wafl_sync(v), 0);
	}
	pinned_pending = wafl_pending_blocks(v);
	unpinned_pending = wafl_pending_blocks_unpinned(v);
}

static void test_pins_are_not_a_mirrors_cost(void **state)
{
	struct tl_fs *f = *state;
	struct yield_ctx y = { .f = f };
	struct wafl_check_result res;
	struct wafl_check_detail det;
	struct wafl_obj root;
	struct wafl_attr a;
	const uint64_t blocks = YIELD_FILE / 4096;

	assert_int_equal(wafl_root(f->v, &root), 0);
	assert_int_equal(wafl_create(f->v, &yield_cred, &root, "big",
	    WAFL_GUARDED, NULL, 0, &y.file, &a, NULL), 0);
	assert_int_equal(yield_fill(&y, 3000), 0);
	for (unsigned i = 0; i <= WAFL_RING_K; i++)
		assert_int_equal(wafl_sync(f->v), 0);
	yield_ctx = &y;
	wafl_check_set_test_hook(pinned_pending_hook);
	int rc = check(f, &res, &det);
	wafl_check_set_test_hook(NULL);
	if (rc != 0)
		fail_msg("check: %d, first: %s", rc, res.first_error);
	print_message("pending behind the pins: %llu, behind the ring and "
	    "holds: %llu\n", (unsigned long long)pinned_pending,
	    (unsigned long long)unpinned_pending);
	assert_true(pinned_pending >= blocks);
	assert_true(unpinned_pending < blocks / 20);
	/* One CP after the check releases what the pins kept. */
	tl_fs_write(f, y.file.ino, 0, &a, 1);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_true(wafl_pending_blocks(f->v) < blocks / 20);
}

/*
 * An unmount waits for a running online check (which walks without the
 * CP lock): it returns only after the check has, and the check is clean.
 */
struct unmount_race {
	struct tl_fs *f;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool in_check;
	uint64_t hook_done_ns, unmount_done_ns;
	int unmount_rc, second_rc;
};

static struct unmount_race *race_ctx;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *unmount_thread(void *arg)
{
	struct unmount_race *r = arg;

	pthread_mutex_lock(&r->mu);
	while (!r->in_check)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
	r->unmount_rc = wafl_unmount(r->f->v);
	r->unmount_done_ns = now_ns();
	return NULL;
}

static void race_hook(struct wafl_vol *v)
{
	struct unmount_race *r = race_ctx;
	struct timespec ts = { 0, 300 * 1000000L };

	pthread_mutex_lock(&r->mu);
	r->in_check = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	nanosleep(&ts, NULL);	/* the unmount is under way meanwhile */
	/* It waits for this check; a second one is refused. */
	struct wafl_check_result res;
	bool unmounting = false;
	for (int i = 0; i < 400 && !unmounting; i++) {
		pthread_mutex_lock(&v->check_mu);
		unmounting = v->unmounting;
		pthread_mutex_unlock(&v->check_mu);
		if (!unmounting)
			nanosleep(&(struct timespec){ 0, 5000000L }, NULL);
	}
	r->second_rc = wafl_check(v, &res);
	r->hook_done_ns = now_ns();
}

static void test_unmount_waits_for_check(void **state)
{
	struct tl_fs *f = *state;
	struct unmount_race r = { .f = f };
	struct wafl_check_result res;
	struct wafl_check_detail det;
	uint8_t a[65536];
	pthread_t t;

	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	uint64_t ino = tl_fs_new_file(f);
	tl_fill_pattern(a, sizeof(a), 3);
	tl_fs_write(f, ino, 0, a, sizeof(a));
	assert_int_equal(wafl_sync(f->v), 0);
	race_ctx = &r;
	wafl_check_set_test_hook(race_hook);
	assert_int_equal(pthread_create(&t, NULL, unmount_thread, &r), 0);
	int rc = check(f, &res, &det);
	wafl_check_set_test_hook(NULL);
	pthread_join(t, NULL);
	f->v = NULL;		/* unmounted by the thread */
	assert_int_equal(rc, 0);
	assert_int_equal(r.unmount_rc, 0);
	/* Not while the check was in its walk. */
	assert_true(r.unmount_done_ns > r.hook_done_ns);
	/* And none starts on a volume being unmounted. */
	assert_int_equal(r.second_rc, -ESHUTDOWN);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	tl_fs_mount(f);		/* for the teardown's check */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fresh_is_clean, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_populated_is_clean, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_snapshots_are_clean,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_w1_flipped_bit_repairable,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_w1_garbage_not_repairable,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_w1_damaged_metadata,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_w4_bitmap_forged, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_w2_birth_from_the_future,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_w5_block_shared, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_w3_pending_out_of_range,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_w3_retained_block_allocatable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_w9_summary_forged, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_w8_link_counts, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_w8_size_and_blocks, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_w7_nvlog, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hostile_structures, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_random_damage_runs_to_completion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_online_check_lets_cps_run,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_unmount_waits_for_check,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_online_check_yields_space,
		    setup_small, teardown),
		cmocka_unit_test_setup_teardown(
		    test_online_check_keeps_going_behind_a_hold, setup_small,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_pins_are_not_a_mirrors_cost, setup_small, teardown),
		cmocka_unit_test_setup_teardown(
		    test_check_log_phase_lets_cps_run, setup, teardown),
	};
	return cmocka_run_group_tests_name("wafl check", tests, NULL, NULL);
}
