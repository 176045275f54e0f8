/*
 * tests/wafl/test_core.c: the wafl core below the operation layer:
 * mkfs and mount, copy-on-write files through CPs, sparse files, tree
 * growth, truncation, block reuse after the CP ring moves, fsinfo slots.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "raid/raid.h"
#include "tests/lib/tl_tmpdir.h"
#include "wafl/wafl_impl.h"

struct fx {
	char *dir;
	char paths[5][512];
	const char *pp[5];
	raid_vol_t *raid;
	wafl_vol_t *v;
	char logpath[512];
};

static void fx_open_raid(struct fx *f, bool create)
{
	struct raid_open_opts oo = { 0 };

	if (create) {
		struct raid_create_opts co = {
			.ngroups = 1, .ndata = 4, .nparity = 1,
			.disk_blocks = 8192, .paths = f->pp,
		};
		assert_int_equal(raid_create(&co, &oo, &f->raid), 0);
	} else {
		assert_int_equal(raid_open(f->pp, 5, &oo, &f->raid), 0);
	}
}

static void fx_mount(struct fx *f)
{
	struct wafl_mount_opts mo = {
		.nvlog_path = f->logpath,
		.nvlog_half_bytes = 4 << 20,
		.no_cp_thread = true,
	};
	assert_int_equal(wafl_mount(f->raid, &mo, &f->v), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->dir = tl_tmpdir_make(NULL, "wafl-core");
	for (int i = 0; i < 5; i++) {
		tl_path(f->paths[i], sizeof(f->paths[i]), f->dir, "d%d.img", i);
		f->pp[i] = f->paths[i];
	}
	tl_path(f->logpath, sizeof(f->logpath), f->dir, "nvlog");
	fx_open_raid(f, true);
	assert_int_equal(wafl_mkfs(f->raid, NULL), 0);
	fx_mount(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->v != NULL)
		assert_int_equal(wafl_unmount(f->v), 0);
	if (f->raid != NULL)
		raid_close(f->raid);
	tl_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void remount(struct fx *f)
{
	assert_int_equal(wafl_unmount(f->v), 0);
	raid_close(f->raid);
	fx_open_raid(f, false);
	fx_mount(f);
}

static uint64_t new_file(struct fx *f)
{
	uint64_t ino;
	uint32_t gen;
	struct wnode *wn;

	pthread_rwlock_rdlock(&f->v->cp_lock);
	assert_int_equal(ialloc(f->v, &ino, &gen), 0);
	assert_int_equal(wnode_get(f->v, ino, &wn), 0);
	wn->di.mode = S_IFREG | 0644;
	wn->di.nlink = 1;
	wnode_dirty(wn);
	wnode_put(wn);
	pthread_rwlock_unlock(&f->v->cp_lock);
	return ino;
}

static void pattern(uint8_t *buf, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)((i * 31 + seed * 7 + (i >> 12)) & 0xff);
}

static void file_write(struct fx *f, uint64_t ino, uint64_t off,
    const void *buf, uint32_t len)
{
	struct wnode *wn;

	pthread_rwlock_rdlock(&f->v->cp_lock);
	assert_int_equal(wnode_get(f->v, ino, &wn), 0);
	pthread_rwlock_wrlock(&wn->lock);
	assert_int_equal(wn_write(wn, off, len, buf), 0);
	pthread_rwlock_unlock(&wn->lock);
	wnode_put(wn);
	pthread_rwlock_unlock(&f->v->cp_lock);
}

static void file_check(struct fx *f, uint64_t ino, uint64_t off,
    const void *expect, uint32_t len)
{
	struct wnode *wn;
	uint8_t *buf = malloc(len);
	uint32_t got;
	bool eof;

	pthread_rwlock_rdlock(&f->v->cp_lock);
	assert_int_equal(wnode_get(f->v, ino, &wn), 0);
	pthread_rwlock_rdlock(&wn->lock);
	assert_int_equal(wn_read(wn, off, len, buf, &got, &eof), 0);
	pthread_rwlock_unlock(&wn->lock);
	wnode_put(wn);
	pthread_rwlock_unlock(&f->v->cp_lock);
	assert_int_equal(got, len);
	assert_memory_equal(buf, expect, len);
	free(buf);
}

static void test_mkfs_mount(void **state)
{
	struct fx *f = *state;
	struct wnode *root;

	assert_true(wafl_generation(f->v) >= 1);
	pthread_rwlock_rdlock(&f->v->cp_lock);
	assert_int_equal(wnode_get(f->v, WAFL_INO_ROOTDIR, &root), 0);
	assert_int_equal(root->di.mode & S_IFMT, S_IFDIR);
	assert_int_equal(root->di.nlink, 2);
	wnode_put(root);
	pthread_rwlock_unlock(&f->v->cp_lock);
	uint64_t g = wafl_generation(f->v);
	remount(f);
	/* Nothing dirty: mounting and unmounting writes no new root. */
	assert_int_equal(wafl_generation(f->v), g);
}

static void test_file_roundtrip(void **state)
{
	struct fx *f = *state;
	const uint32_t len = 1 << 20;
	uint8_t *a = malloc(len), *b = malloc(len);

	pattern(a, len, 1);
	pattern(b, len, 2);
	uint64_t ino = new_file(f);
	file_write(f, ino, 0, a, len);
	file_check(f, ino, 0, a, len);		/* dirty */
	assert_int_equal(wafl_sync(f->v), 0);
	file_check(f, ino, 0, a, len);		/* clean, cached */
	/* Sparse write far out: the tree grows, the hole reads as zeros. */
	file_write(f, ino, 3ull << 30, b, 5000);
	assert_int_equal(wafl_sync(f->v), 0);
	remount(f);
	file_check(f, ino, 0, a, len);
	file_check(f, ino, 3ull << 30, b, 5000);
	uint8_t *z = calloc(1, 65536);
	file_check(f, ino, 1ull << 30, z, 65536);
	free(z);
	free(a);
	free(b);
}

static void test_overwrite_reuses_blocks(void **state)
{
	struct fx *f = *state;
	const uint32_t len = 256 * 1024;
	uint8_t *a = malloc(len);
	uint64_t ino = new_file(f);

	pattern(a, len, 3);
	file_write(f, ino, 0, a, len);
	assert_int_equal(wafl_sync(f->v), 0);
	uint64_t used0 = f->v->blocks_used;
	/* Far more rewrites than the volume could hold without reuse. */
	for (int i = 0; i < 200; i++) {
		pattern(a, len, (uint64_t)i + 10);
		file_write(f, ino, 0, a, len);
		assert_int_equal(wafl_sync(f->v), 0);
	}
	assert_true(f->v->blocks_used < used0 + 16);
	remount(f);
	file_check(f, ino, 0, a, len);
	free(a);
}

static void test_truncate(void **state)
{
	struct fx *f = *state;
	const uint32_t len = 600 * 1024;
	uint8_t *a = malloc(len);
	struct wnode *wn;
	uint64_t ino = new_file(f);

	pattern(a, len, 9);
	file_write(f, ino, 0, a, len);
	assert_int_equal(wafl_sync(f->v), 0);
	uint64_t used = f->v->blocks_used;
	pthread_rwlock_rdlock(&f->v->cp_lock);
	assert_int_equal(wnode_get(f->v, ino, &wn), 0);
	pthread_rwlock_wrlock(&wn->lock);
	assert_int_equal(wn_set_size(wn, 10000), 0);
	assert_int_equal(wn_set_size(wn, 20000), 0);	/* extend: zeros */
	pthread_rwlock_unlock(&wn->lock);
	wnode_put(wn);
	pthread_rwlock_unlock(&f->v->cp_lock);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_true(f->v->blocks_used < used);
	remount(f);
	file_check(f, ino, 0, a, 10000);
	uint8_t z[10000] = { 0 };
	file_check(f, ino, 10000, z, 10000);
	free(a);
}

static void test_fsinfo_slot_fallback(void **state)
{
	struct fx *f = *state;
	uint8_t a[8192];
	uint64_t ino = new_file(f);

	pattern(a, sizeof(a), 5);
	file_write(f, ino, 0, a, sizeof(a));
	assert_int_equal(wafl_sync(f->v), 0);
	uint64_t g = wafl_generation(f->v);
	assert_int_equal(wafl_unmount(f->v), 0);
	f->v = NULL;
	/* Destroy the newest slot: mount falls back to the previous root. */
	uint8_t junk[4096];
	memset(junk, 0xa5, sizeof(junk));
	assert_int_equal(raid_write(f->raid, g % 2, 1, junk), 0);
	assert_int_equal(raid_flush(f->raid), 0);
	raid_close(f->raid);
	fx_open_raid(f, false);
	fx_mount(f);
	/* The previous root is intact (its blocks were never reused). */
	assert_int_equal(wafl_generation(f->v), g - 1);
	struct wnode *root;
	pthread_rwlock_rdlock(&f->v->cp_lock);
	assert_int_equal(wnode_get(f->v, WAFL_INO_ROOTDIR, &root), 0);
	assert_int_equal(root->di.mode & S_IFMT, S_IFDIR);
	wnode_put(root);
	pthread_rwlock_unlock(&f->v->cp_lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mkfs_mount, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_file_roundtrip, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_overwrite_reuses_blocks,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsinfo_slot_fallback,
		    setup, teardown),
	};
	return cmocka_run_group_tests_name("wafl core", tests, NULL, NULL);
}
