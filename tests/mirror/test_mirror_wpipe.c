/*
 * tests/mirror/test_mirror_wpipe.c: a walk's callback on a thread of its
 * own (mirror/wpipe.c).
 *
 * The callback sees every block pushed, once, in order, with its own
 * contents, also when the ring fills because the callback is slower than
 * the walk; its first error ends the pushes with that error and it is not
 * called again; a walk that fails drops what is queued; a walk with no
 * block never calls it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "mirror/mir_impl.h"

struct sink {
	uint64_t calls;		/* blocks seen */
	uint64_t bad;		/* out of order or wrong contents */
	uint64_t fail_at;	/* return -EPIPE at this block (0: never) */
	unsigned slow_every;	/* sleep a little every so many blocks */
};

static void fill(uint8_t *b, uint64_t vbn)
{
	for (size_t i = 0; i < WAFL_BLOCK_SIZE; i += 8)
		fl_put_le64(b + i, vbn * 0x9e3779b97f4a7c15ull + i);
}

static int sink_fn(void *arg, uint64_t vbn, uint64_t birth, uint32_t cksum,
    const void *blk, unsigned flags)
{
	struct sink *s = arg;
	uint8_t want[WAFL_BLOCK_SIZE];

	fill(want, vbn);
	if (vbn != s->calls + 1 || birth != vbn * 3 || cksum != (uint32_t)vbn ||
	    flags != (unsigned)(vbn & 1) ||
	    memcmp(blk, want, WAFL_BLOCK_SIZE) != 0)
		s->bad++;
	s->calls++;
	if (s->slow_every != 0 && s->calls % s->slow_every == 0)
		usleep(200);
	if (s->fail_at != 0 && s->calls == s->fail_at)
		return -EPIPE;
	return 0;
}

/* Push blocks 1..n (stopping at the first error); returns that error. */
static int walk(struct mir_wpipe *p, uint64_t n, uint64_t *pushed)
{
	uint8_t b[WAFL_BLOCK_SIZE];
	int rc = 0;

	*pushed = 0;
	for (uint64_t v = 1; v <= n && rc == 0; v++) {
		fill(b, v);
		rc = mir_wpipe_push(p, v, v * 3, (uint32_t)v, b,
		    (unsigned)(v & 1));
		if (rc == 0)
			(*pushed)++;
	}
	return rc;
}

static void test_order(void **state)
{
	struct sink s = { .slow_every = 512 };
	struct mir_wpipe *p;
	uint64_t pushed;

	(void)state;
	assert_int_equal(mir_wpipe_start(sink_fn, &s, &p), 0);
	assert_int_equal(walk(p, 20000, &pushed), 0);
	assert_int_equal(mir_wpipe_finish(p, 0), 0);
	assert_int_equal(pushed, 20000);
	assert_int_equal(s.calls, 20000);
	assert_int_equal(s.bad, 0);
}

static void test_callback_error(void **state)
{
	struct sink s = { .fail_at = 3000 };
	struct mir_wpipe *p;
	uint64_t pushed;

	(void)state;
	assert_int_equal(mir_wpipe_start(sink_fn, &s, &p), 0);
	int rc = walk(p, 100000, &pushed);
	assert_int_equal(rc, -EPIPE);
	assert_int_equal(mir_wpipe_finish(p, rc), -EPIPE);
	/* Not called after its error; the walk stopped soon after it. */
	assert_int_equal(s.calls, 3000);
	assert_int_equal(s.bad, 0);
	assert_true(pushed >= 3000 && pushed < 3000 + 4096);
}

static void test_walk_error(void **state)
{
	struct sink s = { .slow_every = 1 };
	struct mir_wpipe *p;
	uint64_t pushed;

	(void)state;
	assert_int_equal(mir_wpipe_start(sink_fn, &s, &p), 0);
	assert_int_equal(walk(p, 1000, &pushed), 0);
	assert_int_equal(mir_wpipe_finish(p, -EIO), -EIO);
	assert_true(s.calls <= 1000);
	assert_int_equal(s.bad, 0);
}

static void test_empty(void **state)
{
	struct sink s = { 0 };
	struct mir_wpipe *p;

	(void)state;
	assert_int_equal(mir_wpipe_start(sink_fn, &s, &p), 0);
	assert_int_equal(mir_wpipe_finish(p, 0), 0);
	assert_int_equal(s.calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_callback_error),
		cmocka_unit_test(test_walk_error),
		cmocka_unit_test(test_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
