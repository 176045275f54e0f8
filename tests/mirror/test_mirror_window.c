/*
 * tests/mirror/test_mirror_window.c: the link window and its patches
 * (mirror/window.c) on their own.
 *
 * Patches: for blocks that differ in a few bytes, in many runs, or in
 * every byte, applying the encoded ranges to the base gives the block back
 * exactly, and the size bound holds.  Malformed ranges are refused.
 * Window: what is put is got back, put replaces, drop forgets, a dropped
 * entry's slot is taken before anything is evicted, and a full window
 * evicts the entry put longest ago.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "mirror/wire.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill(uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)next();
}

static void roundtrip(const uint8_t *base, const uint8_t *blk,
    uint32_t *len_out)
{
	uint8_t r[MIR_BLOCK + 64], out[MIR_BLOCK];
	uint32_t n = mir_patch_encode(r, sizeof(r), base, blk);

	assert_true(n != UINT32_MAX);
	assert_int_equal(mir_patch_apply(base, r, n, out), 0);
	assert_memory_equal(out, blk, MIR_BLOCK);
	*len_out = n;
}

static void test_patch_roundtrip(void **state)
{
	uint8_t base[MIR_BLOCK], blk[MIR_BLOCK], r[MIR_BLOCK];
	uint32_t n;

	(void)state;
	fill(base, sizeof(base));
	/* Equal: no ranges at all. */
	memcpy(blk, base, MIR_BLOCK);
	roundtrip(base, blk, &n);
	assert_int_equal(n, 0);
	/* One changed 32-byte block pointer: one range of 32 bytes. */
	blk[32 * 17 + 5] ^= 0xff;
	fill(blk + 32 * 40, 32);
	roundtrip(base, blk, &n);
	assert_true(n <= 2 * (4 + 32));
	/* The first and the last byte. */
	memcpy(blk, base, MIR_BLOCK);
	blk[0] ^= 1;
	blk[MIR_BLOCK - 1] ^= 1;
	roundtrip(base, blk, &n);
	assert_int_equal(n, 2 * (4 + 8));
	/* Random sparse changes, many times. */
	for (int t = 0; t < 2000; t++) {
		memcpy(blk, base, MIR_BLOCK);
		int k = (int)(next() % 64);
		for (int i = 0; i < k; i++)
			blk[next() % MIR_BLOCK] = (uint8_t)next();
		roundtrip(base, blk, &n);
		assert_true(n <= (uint32_t)k * (4 + 8));
	}
	/* Every byte: one range of the whole block, over any bound below. */
	fill(blk, sizeof(blk));
	roundtrip(base, blk, &n);
	assert_int_equal(n, 4 + MIR_BLOCK);
	assert_int_equal(mir_patch_encode(r, MIR_BLOCK - 1, base, blk),
	    UINT32_MAX);
}

static void test_patch_malformed(void **state)
{
	uint8_t base[MIR_BLOCK], out[MIR_BLOCK];
	struct {
		uint8_t r[24];
		uint32_t len;
	} bad[] = {
		{ { 0, 0, 0, 0 }, 4 },				/* empty */
		{ { 0, 0, 4, 0, 1, 2, 3 }, 7 },			/* short */
		{ { 0, 0, 4 }, 3 },				/* torn head */
		{ { 0xfd, 0x0f, 4, 0, 1, 2, 3, 4 }, 8 },	/* past 4096 */
		{ { 8, 0, 2, 0, 1, 2, 0, 0, 2, 0, 1, 2 }, 12 },	/* backwards */
		{ { 0, 0, 4, 0, 1, 2, 3, 4, 2, 0, 2, 0, 1, 2 }, 14 },
								/* overlap */
	};

	(void)state;
	fill(base, sizeof(base));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(mir_patch_apply(base, bad[i].r, bad[i].len,
		    out), -FL_EPROTO);
	/* Two ranges that touch are fine. */
	uint8_t ok[] = { 0, 0, 2, 0, 9, 9, 2, 0, 2, 0, 7, 7 };
	assert_int_equal(mir_patch_apply(base, ok, sizeof(ok), out), 0);
	assert_int_equal(out[0], 9);
	assert_int_equal(out[3], 7);
	assert_memory_equal(out + 4, base + 4, MIR_BLOCK - 4);
}

static void test_window(void **state)
{
	struct mir_window *w;
	uint8_t b[8][MIR_BLOCK];

	(void)state;
	for (int i = 0; i < 8; i++)
		memset(b[i], 'a' + i, MIR_BLOCK);
	assert_int_equal(mir_window_create(0, &w), -EINVAL);
	assert_int_equal(mir_window_create(4, &w), 0);
	assert_null(mir_window_get(w, 10));
	for (int i = 0; i < 4; i++)
		mir_window_put(w, 10 + (uint64_t)i, b[i]);
	for (int i = 0; i < 4; i++)
		assert_memory_equal(mir_window_get(w, 10 + (uint64_t)i), b[i],
		    MIR_BLOCK);
	/* Replacing a VBN keeps one entry, with the new content. */
	mir_window_put(w, 11, b[5]);
	assert_memory_equal(mir_window_get(w, 11), b[5], MIR_BLOCK);
	/* Full: the oldest (10) goes first, then 12. */
	mir_window_put(w, 20, b[6]);
	assert_null(mir_window_get(w, 10));
	assert_non_null(mir_window_get(w, 12));
	mir_window_put(w, 21, b[7]);
	assert_null(mir_window_get(w, 12));
	assert_memory_equal(mir_window_get(w, 13), b[3], MIR_BLOCK);
	assert_memory_equal(mir_window_get(w, 11), b[5], MIR_BLOCK);
	/* Drop forgets; dropping what is not kept is nothing. */
	mir_window_drop(w, 13);
	mir_window_drop(w, 99);
	assert_null(mir_window_get(w, 13));
	assert_non_null(mir_window_get(w, 20));
	assert_non_null(mir_window_get(w, 21));
	/* A dropped entry's slot is taken before anything is evicted: the
	 * window holds 11, 20, 21 and takes 22 without losing one. */
	mir_window_put(w, 22, b[0]);
	assert_memory_equal(mir_window_get(w, 11), b[5], MIR_BLOCK);
	assert_non_null(mir_window_get(w, 20));
	assert_non_null(mir_window_get(w, 21));
	assert_non_null(mir_window_get(w, 22));
	/* Full again: the one put longest ago (11) goes. */
	mir_window_put(w, 23, b[1]);
	assert_null(mir_window_get(w, 11));
	assert_non_null(mir_window_get(w, 20));
	mir_window_destroy(w);
	/* No window: nothing kept, nothing found. */
	mir_window_put(NULL, 1, b[0]);
	assert_null(mir_window_get(NULL, 1));
}

/* Many VBNs through a small window, against a plain model of the same
 * rules (the live entries in the order they were put, at most CAP): the
 * hash chains, the free list and the age list never lose or invent an
 * entry, and the one evicted is the one put longest ago. */
static void test_window_model(void **state)
{
	enum { CAP = 64, VBNS = 200, OPS = 20000 };
	struct mir_window *w;
	uint64_t live[CAP];	/* oldest first */
	int n = 0;
	uint8_t blk[MIR_BLOCK];

	(void)state;
	assert_int_equal(mir_window_create(CAP, &w), 0);
	for (int op = 0; op < OPS; op++) {
		uint64_t vbn = 2 + next() % VBNS;
		for (int i = 0; i < n; i++) {
			if (live[i] == vbn) {
				memmove(&live[i], &live[i + 1],
				    (size_t)(n - i - 1) * sizeof(live[0]));
				n--;
				break;
			}
		}
		if (next() % 3 == 0) {
			mir_window_drop(w, vbn);
		} else {
			memset(blk, 0, sizeof(blk));
			fl_put_le64(blk, vbn);
			fl_put_le64(blk + 8, (uint64_t)op);
			mir_window_put(w, vbn, blk);
			if (n == CAP) {
				memmove(&live[0], &live[1],
				    (size_t)(n - 1) * sizeof(live[0]));
				n--;
			}
			live[n++] = vbn;
		}
		uint64_t probe = 2 + next() % VBNS;
		bool kept = false;
		for (int i = 0; i < n; i++)
			kept |= live[i] == probe;
		const uint8_t *g = mir_window_get(w, probe);
		assert_int_equal(g != NULL, kept);
		if (g != NULL)
			assert_int_equal(fl_get_le64(g), probe);
	}
	mir_window_destroy(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_patch_roundtrip),
		cmocka_unit_test(test_patch_malformed),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_window_model),
	};
	return cmocka_run_group_tests_name("mirror window", tests, NULL, NULL);
}
