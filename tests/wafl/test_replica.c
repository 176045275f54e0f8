/*
 * tests/wafl/test_replica.c: what the mirror stands on, in one process.
 * A source file system ships, through the CP observer, each CP's blocks and
 * then its root to a second raid volume; a read-only replica mounted there
 * advances root by root and always reads what the source had at that root.
 * A baseline and a catch-up are birth-generation walks: the catch-up sends
 * only blocks born after the replica's generation.  Held roots keep their
 * blocks through many CPs.  Nothing is ever read on the destination to
 * compare it with the source.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "tests/lib/tl_wafl.h"
#include "wafl/wafl_impl.h"

struct pair {
	struct tl_fs *src;
	struct tl_fs *dst;	/* raid only; dst->v is the replica */
	uint64_t shipped_blocks;
	bool ship;
};

static void ship_blocks(void *arg, uint64_t gen, uint64_t vbn, uint32_t n,
    const uint8_t *const *blocks,
    const struct wafl_cp_blkinfo *info)
{
	struct pair *p = arg;

	if (!p->ship)
		return;
	assert_int_equal(raid_writev(p->dst->raid, vbn, n, blocks), 0);
	p->shipped_blocks += n;
}

static void ship_root(void *arg, uint64_t gen, const void *fsinfo)
{
	struct pair *p = arg;

	if (!p->ship)
		return;
	assert_int_equal(raid_flush(p->dst->raid), 0);
	assert_int_equal(raid_write(p->dst->raid, gen % 2, 1, fsinfo), 0);
	assert_int_equal(raid_flush(p->dst->raid), 0);
}

static int walk_ship(void *arg, uint64_t vbn, uint64_t birth,
    uint32_t cksum, const void *data,
    unsigned flags)
{
	struct pair *p = arg;

	p->shipped_blocks++;
	return raid_write(p->dst->raid, vbn, 1, data);
}

/* Baseline: walk the source's newest root from generation 0. */
static void baseline(struct pair *p)
{
	uint8_t fsi[4096];
	uint64_t g = wafl_generation(p->src->v);

	assert_int_equal(wafl_birth_walk(p->src->v, g, 0, walk_ship, p), 0);
	assert_int_equal(wafl_root_of(p->src->v, g, fsi), 0);
	assert_int_equal(raid_flush(p->dst->raid), 0);
	assert_int_equal(raid_write(p->dst->raid, g % 2, 1, fsi), 0);
	assert_int_equal(raid_flush(p->dst->raid), 0);
}

static int setup(void **state)
{
	struct pair *p = calloc(1, sizeof(*p));

	p->src = tl_fs_create(4, 1, 8192, false);
	/* The destination: same VBN space, another geometry (3+2). */
	p->dst = tl_fs_create(4, 2, 8192, false);
	assert_int_equal(wafl_unmount(p->dst->v), 0);
	p->dst->v = NULL;
	struct wafl_cp_observer obs = {
		.arg = p, .blocks = ship_blocks, .root = ship_root,
	};
	wafl_set_observer(p->src->v, &obs);
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	struct pair *p = *state;

	wafl_set_observer(p->src->v, NULL);
	tl_fs_destroy(p->src);
	tl_fs_destroy(p->dst);
	free(p);
	return 0;
}

static void mount_replica(struct pair *p)
{
	struct wafl_mount_opts mo = { .readonly = true };

	assert_int_equal(wafl_mount(p->dst->raid, &mo, &p->dst->v), 0);
}

static void test_sync_ship_and_advance(void **state)
{
	struct pair *p = *state;
	uint8_t a[20000], r[20000];

	uint64_t ino = tl_fs_new_file(p->src);
	tl_fill_pattern(a, sizeof(a), 1);
	tl_fs_write(p->src, ino, 0, a, sizeof(a));
	assert_int_equal(wafl_sync(p->src->v), 0);
	baseline(p);
	mount_replica(p);
	assert_int_equal(wafl_generation(p->dst->v),
	    wafl_generation(p->src->v));
	assert_int_equal(tl_fs_read(p->dst, ino, 0, r, sizeof(r)), sizeof(r));
	assert_memory_equal(r, a, sizeof(a));

	p->ship = true;
	for (int i = 0; i < 30; i++) {
		tl_fill_pattern(a, sizeof(a), (uint64_t)i + 2);
		tl_fs_write(p->src, ino, (uint64_t)i * 4096, a, sizeof(a));
		assert_int_equal(wafl_sync(p->src->v), 0);
		uint64_t g;
		assert_int_equal(wafl_replica_advance(p->dst->v, &g), 0);
		assert_int_equal(g, wafl_generation(p->src->v));
		assert_int_equal(tl_fs_read(p->dst, ino, (uint64_t)i * 4096, r,
		    sizeof(r)), sizeof(r));
		assert_memory_equal(r, a, sizeof(a));
	}
	/* The replica refuses to run CPs of its own. */
	assert_int_equal(wafl_sync(p->dst->v), 0);
	assert_int_equal(wafl_generation(p->dst->v),
	    wafl_generation(p->src->v));
}

static void test_catch_up_sends_only_new_blocks(void **state)
{
	struct pair *p = *state;
	const uint32_t big = 4 << 20;
	uint8_t *a = malloc(big);
	uint8_t r[8192];

	uint64_t ino = tl_fs_new_file(p->src);
	tl_fill_pattern(a, big, 5);
	tl_fs_write(p->src, ino, 0, a, big);
	assert_int_equal(wafl_sync(p->src->v), 0);
	baseline(p);
	uint64_t base_blocks = p->shipped_blocks;
	assert_true(base_blocks >= big / 4096);
	mount_replica(p);
	uint64_t d = wafl_generation(p->dst->v);
	assert_int_equal(wafl_hold_root(p->src->v, d), 0);

	/* The link is down: several CPs change 8 KiB each. */
	for (int i = 0; i < 6; i++) {
		tl_fill_pattern(a, 8192, (uint64_t)i + 50);
		tl_fs_write(p->src, ino, (uint64_t)i * 65536, a, 8192);
		assert_int_equal(wafl_sync(p->src->v), 0);
	}
	/* Catch-up by birth generation from d. */
	uint64_t g = wafl_generation(p->src->v);
	assert_int_equal(wafl_hold_root(p->src->v, g), 0);
	p->shipped_blocks = 0;
	assert_int_equal(wafl_birth_walk(p->src->v, g, d, walk_ship, p), 0);
	uint8_t fsi[4096];
	assert_int_equal(wafl_root_of(p->src->v, g, fsi), 0);
	assert_int_equal(raid_flush(p->dst->raid), 0);
	assert_int_equal(raid_write(p->dst->raid, g % 2, 1, fsi), 0);
	assert_int_equal(raid_flush(p->dst->raid), 0);
	/* 12 data blocks plus the paths above them and the metadata: far
	 * below a re-copy of the 1024-block file. */
	assert_true(p->shipped_blocks < 80);
	uint64_t got;
	assert_int_equal(wafl_replica_advance(p->dst->v, &got), 0);
	assert_int_equal(got, g);
	for (int i = 0; i < 6; i++) {
		tl_fill_pattern(a, 8192, (uint64_t)i + 50);
		assert_int_equal(tl_fs_read(p->dst, ino, (uint64_t)i * 65536, r,
		    8192), 8192);
		assert_memory_equal(r, a, 8192);
	}
	wafl_release_root(p->src->v, d);
	wafl_release_root(p->src->v, g);
	free(a);
}

static int count_walk(void *arg, uint64_t vbn, uint64_t birth,
    uint32_t cksum, const void *data,
    unsigned flags)
{
	(*(uint64_t *)arg)++;
	return 0;
}

static void test_held_root_survives(void **state)
{
	struct pair *p = *state;
	uint8_t a[65536];

	uint64_t ino = tl_fs_new_file(p->src);
	tl_fill_pattern(a, sizeof(a), 9);
	tl_fs_write(p->src, ino, 0, a, sizeof(a));
	assert_int_equal(wafl_sync(p->src->v), 0);
	uint64_t h = wafl_generation(p->src->v);
	assert_int_equal(wafl_hold_root(p->src->v, h), 0);
	/* Many CPs rewrite everything: without the hold the old blocks
	 * would be reused after WAFL_RING_K CPs. */
	for (int i = 0; i < 40; i++) {
		tl_fill_pattern(a, sizeof(a), (uint64_t)i + 10);
		tl_fs_write(p->src, ino, 0, a, sizeof(a));
		assert_int_equal(wafl_sync(p->src->v), 0);
	}
	/* The held root still reads whole: every checksum verifies. */
	uint64_t n = 0;
	assert_int_equal(wafl_birth_walk(p->src->v, h, 0, count_walk, &n), 0);
	assert_true(n > 16);
	wafl_release_root(p->src->v, h);
	assert_int_equal(wafl_hold_root(p->src->v, h), -ENOENT);
}

/* A walk of a file written in order reads ahead of it (walk_run); a block
 * that does not check against its pointer there, one the read-ahead read
 * and not the run that asked, is still sent right: read again the
 * single-block way (parity).  Every block the walk hands on matches its
 * pointer's checksum, and the file's data comes back whole. */
struct rcheck {
	uint64_t blocks, bad, data;
	uint64_t vbns[2048];
};

static int walk_check(void *arg, uint64_t vbn, uint64_t birth,
    uint32_t cksum, const void *data, unsigned flags)
{
	struct rcheck *r = arg;

	(void)birth;
	if (fl_crc32c(0, data, WAFL_BLOCK_SIZE) != cksum)
		r->bad++;
	if (!(flags & WAFL_WALK_META) && r->data < 2048)
		r->vbns[r->data++] = vbn;
	r->blocks++;
	return 0;
}

static void test_walk_readahead_bad_block(void **state)
{
	struct tl_fs *f = tl_fs_create(4, 1, 8192, true);
	uint8_t *buf = malloc(4 << 20);
	struct rcheck *r1 = calloc(1, sizeof(*r1)), *r2 = calloc(1, sizeof(*r2));
	size_t disk;
	uint64_t blk;

	(void)state;
	/* 1024 data blocks in order: eight level-1 nodes. */
	uint64_t ino = tl_fs_new_file(f);
	tl_fill_pattern(buf, 4 << 20, 41);
	tl_fs_write(f, ino, 0, buf, 4 << 20);
	assert_int_equal(wafl_sync(f->v), 0);
	uint64_t g = wafl_generation(f->v);
	assert_int_equal(wafl_birth_walk(f->v, g, 0, walk_check, r1), 0);
	assert_int_equal(r1->bad, 0);
	assert_true(r1->data >= 1024);
	/* Block 600 of the file's data lies in a read-ahead window (the
	 * fourth run); flip a bit of it on its disk, and of one in the
	 * same window further on. */
	for (int k = 0; k < 2; k++) {
		uint64_t vbn = r1->vbns[600 + k * 200];
		assert_int_equal(raid_vbn_locate(f->raid, vbn, &disk, &blk), 0);
		assert_int_equal(raid_fault_flip_bit(f->raid, disk, blk,
		    77 + k), 0);
	}
	assert_int_equal(wafl_birth_walk(f->v, g, 0, walk_check, r2), 0);
	assert_int_equal(r2->bad, 0);
	assert_int_equal(r2->blocks, r1->blocks);
	assert_int_equal(r2->data, r1->data);
	assert_memory_equal(r2->vbns, r1->vbns, r1->data * sizeof(uint64_t));
	/* The file reads back whole. */
	uint8_t *back = malloc(4 << 20);
	assert_int_equal(tl_fs_read(f, ino, 0, back, 4 << 20), 4 << 20);
	assert_memory_equal(back, buf, 4 << 20);
	free(back);
	free(buf);
	free(r1);
	free(r2);
	tl_fs_destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sync_ship_and_advance,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_catch_up_sends_only_new_blocks, setup, teardown),
		cmocka_unit_test(test_walk_readahead_bad_block),
		cmocka_unit_test_setup_teardown(test_held_root_survives, setup,
		    teardown),
	};
	return cmocka_run_group_tests_name("wafl replica", tests, NULL, NULL);
}
