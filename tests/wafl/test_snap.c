/*
 * tests/wafl/test_snap.c: snapshots: a snapshot keeps reading the data of
 * its generation while the active file system changes; delete returns
 * exactly the blocks nothing else holds; rollback; the 255 limit; the
 * block reuse rule never hands out a snapshot's block.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/lib/tl_wafl.h"
#include "wafl/wafl_impl.h"

static int setup(void **state)
{
	*state = tl_fs_create(4, 1, 16384, false);
	return 0;
}

static int teardown(void **state)
{
	struct tl_fs *f = *state;
	struct wafl_check_result res;

	/* Every snapshot operation leaves a tree the checker accepts. */
	assert_int_equal(wafl_sync(f->v), 0);
	int rc = wafl_check(f->v, &res);
	if (rc != 0)
		fprintf(stderr, "wafl_check: %s\n", res.first_error);
	assert_int_equal(rc, 0);
	tl_fs_destroy(f);
	return 0;
}

/* Read bytes of ino as snapshot `id` holds it. */
static void snap_read(struct tl_fs *f, uint64_t id, uint64_t ino,
    uint64_t off, uint8_t *out, uint32_t len)
{
	struct wafl_dinode ifile, di;
	uint8_t blk[WAFL_BLOCK_SIZE];

	pthread_rwlock_rdlock(&f->v->cp_lock);
	assert_int_equal(snap_ifile(f->v, id, &ifile), 0);
	assert_int_equal(tree_read_inode(f->v, &ifile, ino, &di), 0);
	for (uint32_t done = 0; done < len;) {
		uint64_t pos = off + done;
		uint32_t n = WAFL_BLOCK_SIZE - (uint32_t)(pos % WAFL_BLOCK_SIZE);
		if (n > len - done)
			n = len - done;
		assert_int_equal(tree_read_block(f->v, &di,
		    pos / WAFL_BLOCK_SIZE, blk), 0);
		memcpy(out + done, blk + pos % WAFL_BLOCK_SIZE, n);
		done += n;
	}
	pthread_rwlock_unlock(&f->v->cp_lock);
}

static void test_snapshot_preserves_data(void **state)
{
	struct tl_fs *f = *state;
	const uint32_t len = 512 * 1024;
	uint8_t *a = malloc(len), *b = malloc(len), *r = malloc(len);
	uint64_t id;

	tl_fill_pattern(a, len, 1);
	tl_fill_pattern(b, len, 2);
	uint64_t ino = tl_fs_new_file(f);
	tl_fs_write(f, ino, 0, a, len);
	assert_int_equal(wafl_snap_create(f->v, "s1", &id), 0);
	assert_int_equal(wafl_snap_create(f->v, "s1", NULL), -EEXIST);
	assert_int_equal(wafl_snap_create(f->v, "a/b", NULL), -EINVAL);
	/* Overwrite many times: the snapshot's blocks are never reused. */
	for (int i = 0; i < 20; i++) {
		tl_fill_pattern(b, len, (uint64_t)i + 100);
		tl_fs_write(f, ino, 0, b, len);
		assert_int_equal(wafl_sync(f->v), 0);
	}
	snap_read(f, id, ino, 0, r, len);
	assert_memory_equal(r, a, len);
	tl_fs_remount(f);
	uint64_t id2;
	assert_int_equal(wafl_snap_lookup(f->v, "s1", &id2), 0);
	assert_true(id2 == id);
	snap_read(f, id, ino, 0, r, len);
	assert_memory_equal(r, a, len);
	assert_int_equal(tl_fs_read(f, ino, 0, r, len), len);
	assert_memory_equal(r, b, len);

	struct wafl_snapinfo si[4];
	size_t n;
	assert_int_equal(wafl_snap_list(f->v, si, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(si[0].name, "s1");
	/* The old data (128 blocks) is held by the snapshot alone. */
	assert_true(si[0].unique_bytes >= len);
	free(a);
	free(b);
	free(r);
}

static void test_delete_returns_blocks(void **state)
{
	struct tl_fs *f = *state;
	const uint32_t len = 1 << 20;
	uint8_t *a = malloc(len);

	tl_fill_pattern(a, len, 7);
	uint64_t ino = tl_fs_new_file(f);
	tl_fs_write(f, ino, 0, a, len);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(wafl_snap_create(f->v, "keep", NULL), 0);
	tl_fill_pattern(a, len, 8);
	tl_fs_write(f, ino, 0, a, len);
	assert_int_equal(wafl_sync(f->v), 0);
	uint64_t free_with = alloc_free_estimate(f->v);
	assert_int_equal(wafl_snap_delete(f->v, "keep"), 0);
	assert_int_equal(wafl_snap_delete(f->v, "keep"), -ENOENT);
	/* Let the CP ring move past the deletion. */
	for (int i = 0; i < (int)WAFL_RING_K + 1; i++) {
		tl_fs_write(f, ino, 0, a, 4096);
		assert_int_equal(wafl_sync(f->v), 0);
	}
	uint64_t free_without = alloc_free_estimate(f->v);
	/* The 256 data blocks the snapshot alone held came back. */
	assert_true(free_without >= free_with + 256);
	free(a);
}

static void test_rollback(void **state)
{
	struct tl_fs *f = *state;
	uint8_t a[16384], b[16384], r[16384];

	tl_fill_pattern(a, sizeof(a), 11);
	tl_fill_pattern(b, sizeof(b), 12);
	uint64_t ino = tl_fs_new_file(f);
	tl_fs_write(f, ino, 0, a, sizeof(a));
	assert_int_equal(wafl_snap_create(f->v, "before", NULL), 0);
	tl_fs_write(f, ino, 0, b, sizeof(b));
	uint64_t ino2 = tl_fs_new_file(f);
	tl_fs_write(f, ino2, 0, b, sizeof(b));
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(wafl_snap_rollback(f->v, "before"), 0);
	struct wafl_check_result res;
	int crc = wafl_check(f->v, &res);
	if (crc != 0)
		fprintf(stderr, "wafl_check: %s\n", res.first_error);
	assert_int_equal(crc, 0);
	assert_int_equal(tl_fs_read(f, ino, 0, r, sizeof(r)), sizeof(r));
	assert_memory_equal(r, a, sizeof(a));
	struct wnode *wn;
	pthread_rwlock_rdlock(&f->v->cp_lock);
	assert_int_equal(wnode_get(f->v, ino2, &wn), 0);
	assert_int_equal(wn->di.mode, 0);	/* created after: gone */
	wnode_put(wn);
	pthread_rwlock_unlock(&f->v->cp_lock);
	tl_fs_remount(f);
	assert_int_equal(tl_fs_read(f, ino, 0, r, sizeof(r)), sizeof(r));
	assert_memory_equal(r, a, sizeof(a));
	/* The snapshot survives the rollback. */
	uint64_t id;
	assert_int_equal(wafl_snap_lookup(f->v, "before", &id), 0);
}

static void test_snapshot_limit(void **state)
{
	struct tl_fs *f = *state;
	char name[32];
	uint8_t a[4096];
	uint64_t ino = tl_fs_new_file(f);

	for (unsigned i = 0; i < WAFL_MAX_SNAPSHOTS; i++) {
		tl_fill_pattern(a, sizeof(a), i);
		tl_fs_write(f, ino, 0, a, sizeof(a));
		snprintf(name, sizeof(name), "s%03u", i);
		assert_int_equal(wafl_snap_create(f->v, name, NULL), 0);
	}
	assert_int_equal(wafl_snap_create(f->v, "one-too-many", NULL),
	    -ENOSPC);
	tl_fs_remount(f);
	struct wafl_snapinfo *si = calloc(WAFL_MAX_SNAPSHOTS, sizeof(*si));
	size_t n;
	assert_int_equal(wafl_snap_list(f->v, si, WAFL_MAX_SNAPSHOTS, &n), 0);
	assert_int_equal(n, WAFL_MAX_SNAPSHOTS);
	free(si);
	assert_int_equal(wafl_snap_delete(f->v, "s100"), 0);
	assert_int_equal(wafl_snap_create(f->v, "again", NULL), 0);
}

/*
 * A root kept for a mirror peer (an adopted snapshot, mirror.base.<gen>)
 * is served with its snapshots: one it names can be deleted, and its
 * blocks stay (the adopted root's summary map is part of the volume's,
 * W9, which the teardown's check verifies) until the adopted one goes.
 */
static void test_adopted_root_keeps_its_snapshots(void **state)
{
	struct tl_fs *f = *state;
	uint8_t a[65536];
	uint64_t st0, st1, st2;	/* blocks only snapshots hold */

	uint64_t ino = tl_fs_new_file(f);
	tl_fill_pattern(a, sizeof(a), 5);
	tl_fs_write(f, ino, 0, a, sizeof(a));
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(wafl_snap_create(f->v, "s", NULL), 0);
	tl_fill_pattern(a, sizeof(a), 6);
	tl_fs_write(f, ino, 0, a, sizeof(a));
	assert_int_equal(wafl_sync(f->v), 0);
	uint64_t g = wafl_generation(f->v);
	assert_int_equal(wafl_snap_adopt_root(f->v, "mirror.base.x", g,
	    NULL), 0);
	struct wafl_check_result res;
	assert_int_equal(wafl_check(f->v, &res), 0);
	st0 = f->v->snap_only;
	assert_int_equal(wafl_snap_delete(f->v, "s"), 0);
	assert_int_equal(wafl_check(f->v, &res), 0);
	st1 = f->v->snap_only;
	assert_int_equal(wafl_snap_delete(f->v, "mirror.base.x"), 0);
	st2 = f->v->snap_only;
	fprintf(stderr, "snapshot blocks: %llu with both, %llu after s, "
	    "%llu after the adopted root\n",
	    (unsigned long long)st0, (unsigned long long)st1,
	    (unsigned long long)st2);
	/* s's 16 blocks stay until the adopted root goes. */
	assert_int_equal(st1, st0);
	assert_true(st2 + 16 <= st1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_snapshot_preserves_data,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_returns_blocks,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_limit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_adopted_root_keeps_its_snapshots, setup, teardown),
	};
	return cmocka_run_group_tests_name("wafl snapshots", tests, NULL, NULL);
}
