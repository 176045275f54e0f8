/*
 * tests/wafl/test_observer.c: the CP observer sees CP n's blocks, then its
 * root, and the root only once fsinfo n is durable on disk; blocks handed
 * to the observer are exactly the blocks the CP wrote (same VBNs, same
 * bytes as read back).  And a held root keeps its blocks from reuse.
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
#include "wafl/ondisk.h"

struct rec {
	struct tl_fs *f;
	uint64_t cur_gen;	/* gen whose blocks are arriving */
	uint64_t blocks, roots;
	uint64_t blocks_this_gen;
	int errors;
	uint64_t *vbns;
	uint32_t *crcs;
	uint64_t nv, cap;
};

static void on_blocks(void *arg, uint64_t gen, uint64_t vbn, uint32_t n,
    const uint8_t *const *blocks,
    const struct wafl_cp_blkinfo *info)
{
	struct rec *r = arg;

	if (r->cur_gen != gen) {
		/* A new CP: the previous one must have ended with its root. */
		if (r->blocks_this_gen != 0)
			r->errors++;
		r->cur_gen = gen;
	}
	for (uint32_t i = 0; i < n; i++) {
		if (r->nv == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 256;
			r->vbns = realloc(r->vbns, r->cap * sizeof(*r->vbns));
			r->crcs = realloc(r->crcs, r->cap * sizeof(*r->crcs));
		}
		r->vbns[r->nv] = vbn + i;
		r->crcs[r->nv] = fl_crc32c(0, blocks[i], 4096);
		r->nv++;
	}
	r->blocks += n;
	r->blocks_this_gen += n;
}

static void on_root(void *arg, uint64_t gen, const void *fsinfo)
{
	struct rec *r = arg;
	struct wafl_fsinfo fi, disk;
	uint8_t blk[4096];

	r->roots++;
	/* Blocks first, then the root of the same generation. */
	if (r->cur_gen != gen || r->blocks_this_gen == 0)
		r->errors++;
	r->blocks_this_gen = 0;
	if (wafl_fsinfo_decode(fsinfo, &fi) != 0 || fi.gen != gen)
		r->errors++;
	/* fsinfo n is already on disk in slot n % 2. */
	if (raid_read(r->f->raid, gen % 2, 1, blk) != 0 ||
	    wafl_fsinfo_decode(blk, &disk) != 0 || disk.gen != gen)
		r->errors++;
	/* Every block of the CP is on disk as the observer saw it. */
	for (uint64_t i = 0; i < r->nv; i++) {
		if (raid_read(r->f->raid, r->vbns[i], 1, blk) != 0 ||
		    fl_crc32c(0, blk, 4096) != r->crcs[i])
			r->errors++;
	}
	r->nv = 0;
}

static void test_order(void **state)
{
	struct tl_fs *f = tl_fs_create(4, 1, 8192, false);
	struct rec r = { .f = f };
	struct wafl_cp_observer obs = { &r, on_blocks, on_root };
	uint8_t buf[65536];

	wafl_set_observer(f->v, &obs);
	uint64_t ino = tl_fs_new_file(f);
	for (int i = 0; i < 20; i++) {
		tl_fill_pattern(buf, sizeof(buf), (uint64_t)i);
		tl_fs_write(f, ino, (uint64_t)i * 8192, buf, sizeof(buf));
		assert_int_equal(wafl_sync(f->v), 0);
	}
	assert_int_equal(r.errors, 0);
	assert_true(r.roots >= 20);
	assert_true(r.blocks >= 20 * 16);
	wafl_set_observer(f->v, NULL);
	free(r.vbns);
	free(r.crcs);
	tl_fs_destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
	};
	return cmocka_run_group_tests_name("wafl CP observer", tests, NULL,
	    NULL);
}
