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

#include "common/crc32c.h"
#include "common/util.h"
#include "raid/raid.h"
#include "tests/lib/tl_wafl.h"
#include "wafl/wafl_impl.h"

static int setup(void **state)
{
	*state = tl_fs_create(4, 1, 8192, false);
	return 0;
}

static int teardown(void **state)
{
	tl_fs_destroy(*state);
	return 0;
}

static void file_check(struct tl_fs *f, uint64_t ino, uint64_t off,
    const void *expect, uint32_t len)
{
	uint8_t *buf = malloc(len);

	assert_int_equal(tl_fs_read(f, ino, off, buf, len), len);
	assert_memory_equal(buf, expect, len);
	free(buf);
}

static void test_mkfs_mount(void **state)
{
	struct tl_fs *f = *state;
	struct wnode *root;

	assert_true(wafl_generation(f->v) >= 1);
	pthread_rwlock_rdlock(&f->v->cp_lock);
	assert_int_equal(wnode_get(f->v, WAFL_INO_ROOTDIR, &root), 0);
	assert_int_equal(root->di.mode & S_IFMT, S_IFDIR);
	assert_int_equal(root->di.nlink, 2);
	wnode_put(root);
	pthread_rwlock_unlock(&f->v->cp_lock);
	uint64_t g = wafl_generation(f->v);
	tl_fs_remount(f);
	/* Nothing dirty: mounting and unmounting writes no new root. */
	assert_int_equal(wafl_generation(f->v), g);
}

static void test_file_roundtrip(void **state)
{
	struct tl_fs *f = *state;
	const uint32_t len = 1 << 20;
	uint8_t *a = malloc(len), *b = malloc(len);

	tl_fill_pattern(a, len, 1);
	tl_fill_pattern(b, len, 2);
	uint64_t ino = tl_fs_new_file(f);
	tl_fs_write(f, ino, 0, a, len);
	file_check(f, ino, 0, a, len);		/* dirty */
	assert_int_equal(wafl_sync(f->v), 0);
	file_check(f, ino, 0, a, len);		/* clean, cached */
	/* Sparse write far out: the tree grows, the hole reads as zeros. */
	tl_fs_write(f, ino, 3ull << 30, b, 5000);
	assert_int_equal(wafl_sync(f->v), 0);
	tl_fs_remount(f);
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
	struct tl_fs *f = *state;
	const uint32_t len = 256 * 1024;
	uint8_t *a = malloc(len);
	uint64_t ino = tl_fs_new_file(f);

	tl_fill_pattern(a, len, 3);
	tl_fs_write(f, ino, 0, a, len);
	assert_int_equal(wafl_sync(f->v), 0);
	uint64_t used0 = f->v->blocks_used;
	/* Far more rewrites than the volume could hold without reuse. */
	for (int i = 0; i < 200; i++) {
		tl_fill_pattern(a, len, (uint64_t)i + 10);
		tl_fs_write(f, ino, 0, a, len);
		assert_int_equal(wafl_sync(f->v), 0);
	}
	assert_true(f->v->blocks_used < used0 + 16);
	tl_fs_remount(f);
	file_check(f, ino, 0, a, len);
	free(a);
}

/*
 * dbuf_sorted: every buffer once, in (level, index) order, by the radix
 * sort (many buffers) and by the comparison sort (few); keys differ in
 * high index bytes and in the level byte too.  dbuf_tab_relink keeps a
 * suffix of them in a fresh table.
 */
/* A pool block filled with v. */
static uint8_t *blk_of(uint8_t v)
{
	uint8_t *b = wafl_blk_alloc();

	assert_non_null(b);
	memset(b, v, WAFL_BLOCK_SIZE);
	return b;
}

/* The checksum of a block filled with v (what a block pointer to it and
 * its cache entry carry). */
static uint32_t crc_of(uint8_t v)
{
	uint8_t b[WAFL_BLOCK_SIZE];

	memset(b, v, sizeof(b));
	return fl_crc32c(0, b, sizeof(b));
}

static bool all_of(const uint8_t *p, uint8_t v)
{
	for (uint32_t i = 0; i < WAFL_BLOCK_SIZE; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* A lent block keeps its bytes while its entry is replaced by a newer
 * life of its VBN, evicted, invalidated, or the cache destroyed; the
 * cache meanwhile serves the new data, and what is freed (the pool's
 * LIFO list hands it straight back) never overwrites a loan. */
static void test_cache_loans(void **state)
{
	struct bcache *bc;
	struct wafl_bp bp[3] = {
		{ .vbn = 5, .birth = 1 },
		{ .vbn = 6, .birth = 1 },
		{ .vbn = 7, .birth = 1 },
	};
	const uint8_t *data[3];
	void *tk[3], *tk2[3];
	uint8_t buf[WAFL_BLOCK_SIZE];

	(void)state;
	for (int i = 0; i < 3; i++)
		bp[i].cksum = crc_of((uint8_t)(0xa0 + i));
	assert_int_equal(bcache_create(64 * WAFL_BLOCK_SIZE, &bc), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(bcache_give(bc, &bp[i], blk_of(0xa0 + i)), 0);
	for (int i = 0; i < 3; i++)
		bcache_unpin(bc, bp[i].vbn);
	/* A miss (other birth) lends nothing. */
	struct wafl_bp other = bp[0];
	other.birth = 2;
	other.cksum = crc_of(0xbb);
	assert_int_equal(bcache_lend(bc, &other, 1, data, tk), 0);
	assert_null(data[0]);
	assert_null(tk[0]);
	assert_int_equal(bcache_lend(bc, bp, 3, data, tk), 3);
	/* Lent twice: both loans must come back before the block goes. */
	assert_int_equal(bcache_lend(bc, bp, 1, data, tk2), 1);
	bcache_return(tk2[0]);

	/* vbn 5 gets a newer life: the loan keeps the old bytes, and the
	 * freed-and-reused pool blocks below never land on them. */
	uint8_t *nb = blk_of(0xbb);
	bcache_put(bc, &other, nb);
	wafl_blk_free(nb);
	assert_true(bcache_get(bc, &other, buf) && all_of(buf, 0xbb));
	assert_false(bcache_get(bc, &bp[0], buf));
	const uint8_t *d2;
	assert_int_equal(bcache_lend(bc, &other, 1, &d2, tk2), 1);
	/* vbn 6 invalidated, vbn 7 evicted by 100 newer blocks. */
	bcache_invalidate(bc, bp[1].vbn);
	for (uint64_t i = 0; i < 100; i++) {
		struct wafl_bp n = { .vbn = 1000 + i, .birth = 3,
		    .cksum = crc_of(0xcc) };
		uint8_t *b = blk_of(0xcc);
		bcache_put(bc, &n, b);
		wafl_blk_free(b);
	}
	assert_false(bcache_get(bc, &bp[2], buf));
	for (int i = 0; i < 3; i++)
		assert_true(all_of(data[i], 0xa0 + i));
	bcache_return(tk[0]);
	bcache_return(tk[1]);
	/* The cache goes with loans out (one of them still in it); they
	 * outlive it. */
	struct wafl_bp last = { .vbn = 1099, .birth = 3,
	    .cksum = crc_of(0xcc) };
	const uint8_t *d3;
	void *tk3;
	assert_int_equal(bcache_lend(bc, &last, 1, &d3, &tk3), 1);
	bcache_destroy(bc);
	uint8_t *churn[256];
	for (int i = 0; i < 256; i++)
		churn[i] = blk_of(0xdd);
	for (int i = 0; i < 256; i++)
		wafl_blk_free(churn[i]);
	assert_true(all_of(data[2], 0xa2));	/* evicted, lent by tk[2] */
	assert_true(all_of(d2, 0xbb));
	assert_true(all_of(d3, 0xcc));
	bcache_return(tk3);
	bcache_return(tk2[0]);
	bcache_return(tk[2]);
}

static void test_dbuf_sorted(void **state)
{
	static const uint32_t counts[] = { 0, 1, 7, 63, 64, 5000 };

	(void)state;
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		struct dbuf_tab t;
		struct dbuf_ref *r;
		uint32_t n, i;
		uint64_t x = 88172645463325252ull + c;

		dbuf_tab_init(&t);
		for (i = 0; i < counts[c];) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			uint64_t key = DBUF_KEY(x % 4, (x >> 8) &
			    ((1ull << 40) - 1));
			if (dbuf_find(&t, key) != NULL)
				continue;
			assert_non_null(dbuf_insert(&t, key));
			i++;
		}
		assert_int_equal(dbuf_sorted(&t, &r, &n), 0);
		assert_int_equal(n, counts[c]);
		for (i = 0; i < n; i++) {
			assert_ptr_equal(dbuf_find(&t, r[i].key), r[i].d);
			if (i > 0)
				assert_true(r[i - 1].key < r[i].key);
		}
		/* As a failed seal leaves it: the first half freed, the
		 * rest in a table of their own. */
		uint32_t half = n / 2;
		for (i = 0; i < half; i++)
			dbuf_free(r[i].d);
		assert_int_equal(dbuf_tab_relink(&t, r + half, n - half), 0);
		assert_int_equal(t.count, n - half);
		for (i = half; i < n; i++)
			assert_ptr_equal(dbuf_find(&t, r[i].key), r[i].d);
		free(r);
		dbuf_tab_free(&t);
	}
}

/*
 * A whole-block write checksums the block as it copies it; a partial
 * write of the same block in the same CP must not keep that checksum.
 * Read back from disk after a remount, every block's checksum is checked
 * against its pointer.
 */
static void test_whole_then_partial(void **state)
{
	struct tl_fs *f = *state;
	const uint32_t len = 64 * 4096;
	uint8_t *a = malloc(len), *b = malloc(len);
	uint64_t ino = tl_fs_new_file(f);

	tl_fill_pattern(a, len, 41);
	tl_fill_pattern(b, 4096, 42);
	tl_fs_write(f, ino, 0, a, len);
	/* Parts of blocks 3 and 7 change after the whole-block writes. */
	tl_fs_write(f, ino, 3 * 4096 + 100, b, 200);
	memcpy(a + 3 * 4096 + 100, b, 200);
	tl_fs_write(f, ino, 7 * 4096 + 4000, b, 96);
	memcpy(a + 7 * 4096 + 4000, b, 96);
	assert_int_equal(wafl_sync(f->v), 0);
	tl_fs_remount(f);
	file_check(f, ino, 0, a, len);
	free(a);
	free(b);
}

static void test_truncate(void **state)
{
	struct tl_fs *f = *state;
	const uint32_t len = 600 * 1024;
	uint8_t *a = malloc(len);
	struct wnode *wn;
	uint64_t ino = tl_fs_new_file(f);

	tl_fill_pattern(a, len, 9);
	tl_fs_write(f, ino, 0, a, len);
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
	tl_fs_remount(f);
	file_check(f, ino, 0, a, 10000);
	uint8_t z[10000] = { 0 };
	file_check(f, ino, 10000, z, 10000);
	free(a);
}

static void test_fsinfo_slot_fallback(void **state)
{
	struct tl_fs *f = *state;
	uint8_t a[8192];
	/* Not through the NVLOG: nothing to replay on top of the fallback. */
	uint64_t ino = tl_fs_new_orphan(f);

	tl_fill_pattern(a, sizeof(a), 5);
	tl_fs_write(f, ino, 0, a, sizeof(a));
	assert_int_equal(wafl_sync(f->v), 0);
	uint64_t g = wafl_generation(f->v);
	assert_int_equal(wafl_unmount(f->v), 0);
	f->v = NULL;
	/* Destroy the newest slot: mount falls back to the previous root. */
	uint8_t junk[4096];
	memset(junk, 0xa5, sizeof(junk));
	assert_int_equal(raid_write(f->raid, g % 2, 1, junk), 0);
	assert_int_equal(raid_flush(f->raid), 0);
	tl_fs_reopen_raid(f);
	tl_fs_mount(f);
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
		cmocka_unit_test(test_dbuf_sorted),
		cmocka_unit_test(test_cache_loans),
		cmocka_unit_test_setup_teardown(test_whole_then_partial, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fsinfo_slot_fallback,
		    setup, teardown),
	};
	return cmocka_run_group_tests_name("wafl core", tests, NULL, NULL);
}
