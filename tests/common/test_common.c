/*
 * tests/common: crc32c against published check values, little-endian
 * helpers, error names and the log capture hook.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

static void test_crc32c_check_values(void **state)
{
	uint8_t zeros[32] = { 0 };
	uint8_t ones[32];

	memset(ones, 0xff, sizeof(ones));
	/* RFC 3720 B.4 test vectors and the standard "123456789". */
	assert_int_equal(fl_crc32c(0, "123456789", 9), 0xe3069283);
	assert_int_equal(fl_crc32c(0, zeros, 32), 0x8a9136aa);
	assert_int_equal(fl_crc32c(0, ones, 32), 0x62a8ab43);
	/* Chaining equals one pass. */
	assert_int_equal(fl_crc32c(fl_crc32c(0, "12345", 5), "6789", 4),
	    0xe3069283);
}

/*
 * fl_crc32c_cat4k(c, fl_crc32c(0, B)) is fl_crc32c(c, B) for 4096-byte
 * blocks: random blocks and starting values, and the edge values.
 */
static void test_crc32c_cat4k(void **state)
{
	static uint8_t blk[4096];
	const uint32_t edge[] = { 0, 1, 0x80000000u, 0xffffffffu, 0xe3069283 };
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (unsigned round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof(blk); i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			blk[i] = (uint8_t)x;
		}
		uint32_t c = round < 5 ? edge[round] : (uint32_t)(x >> 17);
		assert_int_equal(fl_crc32c_cat4k(c, fl_crc32c(0, blk,
		    sizeof(blk))), fl_crc32c(c, blk, sizeof(blk)));
	}
	/* A 32-byte header, then the block: the frame's checksum. */
	uint32_t h = fl_crc32c(0, "a header of thirty-two bytes....", 32);
	assert_int_equal(fl_crc32c_cat4k(h, fl_crc32c(0, blk, sizeof(blk))),
	    fl_crc32c(h, blk, sizeof(blk)));
	/* Not the identity, nor the block's own checksum. */
	assert_int_not_equal(fl_crc32c_cat4k(h, 0), 0);
	assert_int_not_equal(fl_crc32c_cat4k(h, fl_crc32c(0, blk,
	    sizeof(blk))), fl_crc32c(0, blk, sizeof(blk)));
}

static void test_le_roundtrip(void **state)
{
	uint8_t b[8];

	fl_put_le64(b, 0x0102030405060708ull);
	assert_int_equal(b[0], 0x08);
	assert_int_equal(b[7], 0x01);
	assert_true(fl_get_le64(b) == 0x0102030405060708ull);
	fl_put_le32(b, 0xdeadbeef);
	assert_int_equal(b[0], 0xef);
	assert_int_equal(fl_get_le32(b), 0xdeadbeef);
	fl_put_le16(b, 0xabcd);
	assert_int_equal(fl_get_le16(b), 0xabcd);
}

static void test_strerror(void **state)
{
	assert_string_equal(fl_strerror(-FL_ECORRUPT), "on-disk data is corrupt");
	assert_string_equal(fl_strerror(-ENOENT), strerror(ENOENT));
	assert_int_equal(FL_ERR(-EIO), -EIO);
}

static int hook_calls;
static char hook_msg[256];

static void hook(void *arg, enum fl_log_level level, const char *subsys,
    const char *msg)
{
	hook_calls++;
	snprintf(hook_msg, sizeof(hook_msg), "%s:%s", subsys, msg);
}

static void test_log_hook(void **state)
{
	fl_log_set_hook(hook, NULL, FL_LOG_WARN);
	fl_log(FL_LOG_INFO, "test", "not captured %d", 1);
	assert_int_equal(hook_calls, 0);
	fl_log(FL_LOG_WARN, "test", "captured %d", 2);
	assert_int_equal(hook_calls, 1);
	assert_string_equal(hook_msg, "test:captured 2");
	fl_log_set_hook(NULL, NULL, FL_LOG_ERR);
	enum fl_log_level l;
	assert_int_equal(fl_log_parse_level("debug", &l), 0);
	assert_int_equal(l, FL_LOG_DEBUG);
	assert_int_not_equal(fl_log_parse_level("loud", &l), 0);
}

/* A repeated message: once per interval, with the repeats between it
 * and the last line; a new text is due at once and starts the count. */
static void test_log_repeat(void **state)
{
	struct fl_log_repeat r = { 0 };
	const uint64_t s = 1000000000ull, iv = 60 * s;
	uint64_t more = 99;

	(void)state;
	assert_true(fl_log_repeat_due(&r, "a", 1 * s, iv, &more));
	assert_int_equal(more, 0);
	for (int i = 0; i < 5; i++)
		assert_false(fl_log_repeat_due(&r, "a", 2 * s, iv, &more));
	assert_true(fl_log_repeat_due(&r, "a", 61 * s, iv, &more));
	assert_int_equal(more, 5);
	assert_false(fl_log_repeat_due(&r, "a", 62 * s, iv, &more));
	assert_true(fl_log_repeat_due(&r, "b", 63 * s, iv, &more));
	assert_int_equal(more, 0);
	assert_false(fl_log_repeat_due(&r, "b", 64 * s, iv, &more));
	assert_true(fl_log_repeat_due(&r, "a", 65 * s, iv, &more));
	assert_int_equal(more, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_check_values),
		cmocka_unit_test(test_crc32c_cat4k),
		cmocka_unit_test(test_le_roundtrip),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_log_hook),
		cmocka_unit_test(test_log_repeat),
	};
	return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
