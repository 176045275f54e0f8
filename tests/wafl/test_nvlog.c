/*
 * tests/wafl/test_nvlog: the intent log (wafl/nvlog.h, invariants NV1..NV5
 * in wafl/nvlog.c).  Round trips of varied record sizes, generation
 * filtering, half reuse with stale records, torn and corrupt records,
 * reservations, group commit under 16 threads, a kernel refusing
 * RWF_DSYNC, the failure latch, bad headers, and simulated power loss
 * (drop and tear of unsynced records).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "tests/lib/tl_log.h"
#include "tests/lib/tl_tmpdir.h"
#include "wafl/nvlog.h"

#define HALF_SMALL	NVLOG_MIN_HALF
#define HALF_BIG	(4 * NVLOG_MIN_HALF)

struct t_ctx {
	char *dir;
	char path[512];
	uint8_t *buf;		/* NVLOG_MAX_PAYLOAD scratch */
};

static int setup(void **state)
{
	struct t_ctx *c = calloc(1, sizeof(*c));

	c->dir = tl_tmpdir_make(NULL, "nvlog");
	tl_path(c->path, sizeof(c->path), c->dir, "nvlog");
	c->buf = malloc(NVLOG_MAX_PAYLOAD);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct t_ctx *c = *state;

	tl_log_capture_stop();
	free(c->buf);
	tl_tmpdir_remove(c->dir);
	free(c);
	return 0;
}

/*
 * pwrite and pwritev2, interposed for the whole test program: a test can
 * arm a gate that holds the next write at a given offset (a flush
 * leader's write of its stage) until it is released.  Everything else
 * passes straight on.  fdatasync is interposed too, to count its calls.
 */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int armed, arrived, released;
	off_t off;
} gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0,
	0 };

static void gate_pass(off_t off)
{
	if (__atomic_load_n(&gate.armed, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&gate.mu);
		if (gate.armed && off == gate.off) {
			gate.armed = 0;
			gate.arrived = 1;
			pthread_cond_broadcast(&gate.cv);
			while (!gate.released)
				pthread_cond_wait(&gate.cv, &gate.mu);
		}
		pthread_mutex_unlock(&gate.mu);
	}
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	gate_pass(off);
	return (ssize_t)syscall(SYS_pwrite64, fd, buf, n, off);
}

/* refuse_dsync: pwritev2 with RWF_DSYNC fails with EOPNOTSUPP, as on a
 * kernel or file system without it; dsync_calls counts those calls. */
static int refuse_dsync;
static unsigned dsync_calls;

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off,
    int flags)
{
	if (flags & RWF_DSYNC) {
		__atomic_add_fetch(&dsync_calls, 1, __ATOMIC_RELAXED);
		if (__atomic_load_n(&refuse_dsync, __ATOMIC_RELAXED)) {
			errno = EOPNOTSUPP;
			return -1;
		}
	}
	gate_pass(off);
	/* The kernel takes the offset as two longs, low then high (the
	 * high one is 0 on 64-bit machines). */
	return (ssize_t)syscall(SYS_pwritev2, fd, iov, cnt, (long)off, 0L,
	    flags);
}

static unsigned fdatasyncs;

int fdatasync(int fd)
{
	__atomic_add_fetch(&fdatasyncs, 1, __ATOMIC_RELAXED);
	return (int)syscall(SYS_fdatasync, fd);
}

static void gate_arm(off_t off)
{
	pthread_mutex_lock(&gate.mu);
	gate.off = off;
	gate.arrived = gate.released = 0;
	__atomic_store_n(&gate.armed, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&gate.mu);
}

/* Wait up to 2 s for the gate to hold a write; the test fails if none
 * came (the flush's leader must write its stage there). */
static void gate_wait_arrival(void)
{
	int arrived;

	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 2;
	pthread_mutex_lock(&gate.mu);
	while (!gate.arrived &&
	    pthread_cond_timedwait(&gate.cv, &gate.mu, &ts) == 0)
		;
	arrived = gate.arrived;
	__atomic_store_n(&gate.armed, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&gate.mu);
	assert_true(arrived);
}

static void gate_release(void)
{
	pthread_mutex_lock(&gate.mu);
	gate.released = 1;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.mu);
}

/* Deterministic payload bytes for a key. */
static void pattern(uint8_t *p, uint32_t len, uint64_t key)
{
	uint64_t s = key * 0x9e3779b97f4a7c15ull + 0x1234567;

	for (uint32_t i = 0; i < len; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		p[i] = (uint8_t)s;
	}
}

/* Replay collector: what was delivered, payloads checked against keys. */
struct got {
	uint64_t lsn, gen;
	uint16_t type;
	uint32_t len;
	uint32_t crc;
};

struct collect {
	struct got *v;
	size_t n, cap;
};

static int collect_fn(void *arg, uint64_t lsn, uint64_t gen, uint16_t type,
    const void *payload, uint32_t len)
{
	struct collect *co = arg;

	if (co->n == co->cap) {
		co->cap = co->cap ? 2 * co->cap : 256;
		co->v = realloc(co->v, co->cap * sizeof(*co->v));
	}
	co->v[co->n++] = (struct got){ lsn, gen, type, len,
	    fl_crc32c(0, payload, len) };
	return 0;
}

static void collect_reset(struct collect *co)
{
	free(co->v);
	memset(co, 0, sizeof(*co));
}

/* Commit one record with pattern(key) of len bytes, split in two iovs. */
static uint64_t put(struct nvlog *lg, uint8_t *buf, uint64_t gen,
    uint16_t type, uint32_t len, uint64_t key)
{
	struct nvlog_resv r;
	struct iovec iov[2];
	uint64_t lsn = 0;

	pattern(buf, len, key);
	assert_int_equal(nvlog_reserve(lg, len, &r), 0);
	iov[0].iov_base = buf;
	iov[0].iov_len = len / 3;
	iov[1].iov_base = buf + len / 3;
	iov[1].iov_len = len - len / 3;
	assert_int_equal(nvlog_commit(lg, &r, gen, type, iov, 2, &lsn), 0);
	assert_int_equal(r.bytes, 0);
	return lsn;
}

static uint32_t key_crc(uint8_t *buf, uint32_t len, uint64_t key)
{
	pattern(buf, len, key);
	return fl_crc32c(0, buf, len);
}

static struct nvlog *open_ok(const char *path, uint64_t half)
{
	struct nvlog *lg = NULL;

	assert_int_equal(nvlog_open(path, half, &lg), 0);
	assert_non_null(lg);
	return lg;
}

static void replay_ok(const char *path, uint64_t after_gen,
    struct collect *co)
{
	struct nvlog *lg = open_ok(path, 0);

	collect_reset(co);
	assert_int_equal(nvlog_replay(lg, after_gen, collect_fn, co), 0);
	nvlog_close(lg);
}

/* ------------------------------------------------------------------ */

static void test_create_open_reopen(void **state)
{
	struct t_ctx *c = *state;
	struct nvlog *lg = NULL;
	struct nvlog_stats st;
	char p2[600];
	int fd;

	/* Bad sizes are refused at creation. */
	assert_int_equal(nvlog_open(c->path, 4096, &lg), -EINVAL);
	assert_null(lg);
	assert_int_equal(nvlog_open(c->path, HALF_SMALL + 100, &lg), -EINVAL);
	assert_int_equal(tl_file_size(c->path), -1);	/* nothing left */

	lg = open_ok(c->path, HALF_SMALL);
	assert_int_equal(tl_file_size(c->path),
	    NVLOG_HDR_BLOCK + 2 * HALF_SMALL);
	assert_int_equal(nvlog_start(lg), 0);
	nvlog_get_stats(lg, &st);
	assert_int_equal(st.half_bytes, HALF_SMALL);
	assert_int_equal(st.half, 0);
	assert_int_equal(st.half_used, 0);
	assert_int_equal(st.next_lsn, 1);
	assert_false(nvlog_failed(lg));
	nvlog_close(lg);

	/* Reopen: the log keeps its own size. */
	lg = open_ok(c->path, HALF_BIG);
	nvlog_get_stats(lg, &st);
	assert_int_equal(st.half_bytes, HALF_SMALL);
	assert_int_equal(nvlog_start(lg), 0);
	nvlog_close(lg);

	/* An existing empty file is formatted. */
	tl_path(p2, sizeof(p2), c->dir, "empty");
	fd = open(p2, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	lg = open_ok(p2, HALF_BIG);
	nvlog_get_stats(lg, &st);
	assert_int_equal(st.half_bytes, HALF_BIG);
	nvlog_close(lg);

	/* Not before start; replay not after it. */
	lg = open_ok(p2, 0);
	struct nvlog_resv r;
	assert_int_equal(nvlog_reserve(lg, 10, &r), -EINVAL);
	assert_int_equal(nvlog_switch(lg), 0);		/* no-op */
	nvlog_release_prev(lg);
	assert_int_equal(nvlog_start(lg), 0);
	assert_int_equal(nvlog_switch(lg), 0);
	assert_int_equal(nvlog_switch(lg), -EBUSY);
	nvlog_release_prev(lg);
	assert_int_equal(nvlog_replay(lg, 0, NULL, NULL), -EBUSY);
	assert_int_equal(nvlog_sync(lg), 0);
	nvlog_close(lg);
}

static void test_roundtrip(void **state)
{
	struct t_ctx *c = *state;
	enum { N = 400 };
	static uint32_t lens[N];
	struct collect co = { 0 };
	struct nvlog *lg;
	uint64_t first = 0, lsn = 0;

	for (int i = 0; i < N; i++)
		lens[i] = (uint32_t)((i * 7919u) % 9000u);
	lens[0] = 0;
	lens[1] = 1;
	lens[2] = 7;
	lens[3] = 8;
	lens[4] = 9;
	lens[100] = NVLOG_MAX_PAYLOAD;
	lens[N - 1] = NVLOG_MAX_PAYLOAD;

	lg = open_ok(c->path, HALF_BIG);
	assert_int_equal(nvlog_replay(lg, 0, collect_fn, &co), 0);
	assert_int_equal(co.n, 0);
	assert_int_equal(nvlog_start(lg), 0);
	for (int i = 0; i < N; i++) {
		lsn = put(lg, c->buf, 1 + (uint64_t)i / 100, (uint16_t)i,
		    lens[i], (uint64_t)i);
		if (i == 0)
			first = lsn;
		assert_int_equal(lsn, first + (uint64_t)i);
		if (i % 10 == 9)
			assert_int_equal(nvlog_wait(lg, lsn), 0);
	}
	assert_int_equal(nvlog_sync(lg), 0);
	nvlog_close(lg);

	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(co.v[i].lsn, first + (uint64_t)i);
		assert_int_equal(co.v[i].gen, 1 + (uint64_t)i / 100);
		assert_int_equal(co.v[i].type, i);
		assert_int_equal(co.v[i].len, lens[i]);
		assert_int_equal(co.v[i].crc,
		    key_crc(c->buf, lens[i], (uint64_t)i));
	}

	/* New records continue after every LSN in the file (NV5). */
	lg = open_ok(c->path, 0);
	assert_int_equal(nvlog_replay(lg, 0, NULL, NULL), 0);
	assert_int_equal(nvlog_start(lg), 0);
	assert_int_equal(put(lg, c->buf, 9, 1, 10, 1), lsn + 1);
	assert_int_equal(nvlog_sync(lg), 0);
	nvlog_close(lg);
	/* ... and the new run retired the old records. */
	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, 1);
	assert_int_equal(co.v[0].lsn, lsn + 1);
	assert_int_equal(co.v[0].gen, 9);

	/* start without a replay still learns the highest LSN. */
	lg = open_ok(c->path, 0);
	assert_int_equal(nvlog_start(lg), 0);
	assert_int_equal(put(lg, c->buf, 10, 1, 10, 1), lsn + 2);
	nvlog_close(lg);
	collect_reset(&co);
}

static void test_after_gen(void **state)
{
	struct t_ctx *c = *state;
	struct collect co = { 0 };
	struct nvlog *lg = open_ok(c->path, HALF_BIG);

	assert_int_equal(nvlog_start(lg), 0);
	for (uint64_t g = 1; g <= 5; g++)
		for (int i = 0; i < 50; i++)
			put(lg, c->buf, g, 7, 100, g * 1000 + (uint64_t)i);
	assert_int_equal(nvlog_sync(lg), 0);
	nvlog_close(lg);

	replay_ok(c->path, 3, &co);
	assert_int_equal(co.n, 100);
	for (size_t i = 0; i < co.n; i++) {
		uint64_t g = 4 + i / 50;

		assert_int_equal(co.v[i].gen, g);
		assert_int_equal(co.v[i].crc,
		    key_crc(c->buf, 100, g * 1000 + i % 50));
		if (i > 0)
			assert_int_equal(co.v[i].lsn, co.v[i - 1].lsn + 1);
	}
	replay_ok(c->path, 5, &co);
	assert_int_equal(co.n, 0);
	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, 250);
	collect_reset(&co);
}

/*
 * Halves: gen 1 fills half 0 with big records, gen 2 goes to half 1, then
 * half 0 is reused for gen 3 with small records, leaving stale gen-1
 * records after its tail.  Replay must deliver gen 2 then gen 3 only.
 */
static void test_halves_stale(void **state)
{
	struct t_ctx *c = *state;
	struct collect co = { 0 };
	struct nvlog_resv r;
	struct nvlog_stats st;
	struct nvlog *lg = open_ok(c->path, HALF_SMALL);
	uint64_t l2first = 0, l3last = 0;

	assert_int_equal(nvlog_start(lg), 0);
	for (int i = 0; i < 100; i++)
		put(lg, c->buf, 1, 1, 4000, 100 + (uint64_t)i);
	assert_int_equal(nvlog_sync(lg), 0);

	/* Switch refused with a reservation outstanding. */
	assert_int_equal(nvlog_reserve(lg, 10, &r), 0);
	assert_int_equal(nvlog_switch(lg), -EBUSY);
	nvlog_unreserve(lg, &r);
	assert_int_equal(r.bytes, 0);

	assert_int_equal(nvlog_switch(lg), 0);		/* CP 1 frozen */
	nvlog_get_stats(lg, &st);
	assert_int_equal(st.half, 1);
	assert_int_equal(st.half_used, 0);
	for (int i = 0; i < 30; i++) {
		uint64_t l = put(lg, c->buf, 2, 2, 500, 200 + (uint64_t)i);
		if (i == 0)
			l2first = l;
	}
	/* CP 1 not yet durable: the other half is still busy. */
	assert_int_equal(nvlog_switch(lg), -EBUSY);
	nvlog_release_prev(lg);				/* CP 1 durable */
	assert_int_equal(nvlog_switch(lg), 0);		/* CP 2 frozen */
	nvlog_get_stats(lg, &st);
	assert_int_equal(st.half, 0);
	for (int i = 0; i < 5; i++)
		l3last = put(lg, c->buf, 3, 3, 50, 300 + (uint64_t)i);
	assert_int_equal(nvlog_sync(lg), 0);
	nvlog_close(lg);

	/* Mounted at fsinfo gen 1: gen 2 and 3 come back, in order. */
	replay_ok(c->path, 1, &co);
	assert_int_equal(co.n, 35);
	for (size_t i = 0; i < co.n; i++) {
		assert_int_equal(co.v[i].lsn, l2first + i);
		assert_int_equal(co.v[i].gen, i < 30 ? 2 : 3);
		assert_int_equal(co.v[i].crc, i < 30 ?
		    key_crc(c->buf, 500, 200 + i) :
		    key_crc(c->buf, 50, 300 + i - 30));
	}
	assert_int_equal(co.v[34].lsn, l3last);
	/* Even after_gen 0 never sees the stale gen-1 records (NV3). */
	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, 35);
	for (size_t i = 0; i < co.n; i++)
		assert_true(co.v[i].gen >= 2);
	/* Mounted at gen 2: gen 3 only. */
	replay_ok(c->path, 2, &co);
	assert_int_equal(co.n, 5);
	assert_int_equal(co.v[0].lsn, l2first + 30);
	collect_reset(&co);
}

/*
 * Records committed without a wait are only staged.  Two CPs in a row with
 * no commit between them (a CP can have only pending frees to write) bring
 * the appends back to the half those records were staged for; a large
 * record is then written at the same offset by its commit.  The flush that
 * makes it durable must not write the stale staged bytes over it.
 */
static void test_stale_stage_reused_half(void **state)
{
	struct t_ctx *c = *state;
	struct collect co = { 0 };
	struct nvlog *lg = open_ok(c->path, HALF_SMALL);
	uint64_t la, lb;

	assert_int_equal(nvlog_start(lg), 0);
	la = put(lg, c->buf, 1, 1, 200, 1);		/* staged, not waited */
	assert_int_equal(nvlog_switch(lg), 0);		/* CP 1 frozen */
	nvlog_release_prev(lg);				/* CP 1 durable */
	assert_int_equal(nvlog_switch(lg), 0);		/* CP 2 frozen */
	nvlog_release_prev(lg);				/* CP 2 durable */
	lb = put(lg, c->buf, 3, 3, 100 << 10, 2);	/* written at once */
	assert_int_equal(lb, la + 1);
	assert_int_equal(nvlog_wait(lg, lb), 0);	/* acknowledged */
	nvlog_close(lg);

	/* Mounted at gen 2: the gen-3 record must come back. */
	replay_ok(c->path, 2, &co);
	assert_int_equal(co.n, 1);
	assert_int_equal(co.v[0].lsn, lb);
	assert_int_equal(co.v[0].crc, key_crc(c->buf, 100 << 10, 2));
	collect_reset(&co);
}

/*
 * The same with the staged record in a flush: its leader has taken the
 * stage and is held in its pwrite while two CPs bring the appends back to
 * that half and a large record is written there.  The leader's late write
 * must not land on the new record.
 */
struct reuse {
	struct nvlog *lg;
	uint8_t *big;
	uint64_t la, lb;
	int rc_a, rc_switch, rc_commit, rc_b;
};

static void *reuse_wait_a(void *arg)
{
	struct reuse *x = arg;

	x->rc_a = nvlog_wait(x->lg, x->la);
	return NULL;
}

static void *reuse_half(void *arg)
{
	struct reuse *x = arg;
	struct nvlog_resv r;
	struct iovec iov = { x->big, 100 << 10 };

	nvlog_release_prev(x->lg);			/* CP 1 durable */
	x->rc_switch = nvlog_switch(x->lg);		/* CP 2 frozen */
	x->rc_commit = nvlog_reserve(x->lg, 100 << 10, &r);
	if (x->rc_commit == 0)
		x->rc_commit = nvlog_commit(x->lg, &r, 3, 3, &iov, 1, &x->lb);
	if (x->rc_commit == 0)
		x->rc_b = nvlog_wait(x->lg, x->lb);
	return NULL;
}

static void test_inflight_stage_reused_half(void **state)
{
	struct t_ctx *c = *state;
	struct collect co = { 0 };
	struct reuse x = { .lg = open_ok(c->path, HALF_SMALL) };
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	pthread_t ta, tr;

	x.big = malloc(100 << 10);
	assert_non_null(x.big);
	pattern(x.big, 100 << 10, 2);
	assert_int_equal(nvlog_start(x.lg), 0);
	x.la = put(x.lg, c->buf, 1, 1, 200, 1);		/* staged */
	gate_arm(NVLOG_HDR_BLOCK);			/* half 0, offset 0 */
	assert_int_equal(pthread_create(&ta, NULL, reuse_wait_a, &x), 0);
	gate_wait_arrival();			/* the leader holds the stage */
	assert_int_equal(nvlog_switch(x.lg), 0);	/* CP 1 frozen */
	assert_int_equal(pthread_create(&tr, NULL, reuse_half, &x), 0);
	nanosleep(&ts, NULL);
	gate_release();
	assert_int_equal(pthread_join(tr, NULL), 0);
	assert_int_equal(pthread_join(ta, NULL), 0);
	assert_int_equal(x.rc_a, 0);
	assert_int_equal(x.rc_switch, 0);
	assert_int_equal(x.rc_commit, 0);
	assert_int_equal(x.rc_b, 0);			/* acknowledged */
	nvlog_close(x.lg);

	replay_ok(c->path, 2, &co);
	assert_int_equal(co.n, 1);
	assert_int_equal(co.v[0].lsn, x.lb);
	assert_int_equal(co.v[0].crc, fl_crc32c(0, x.big, 100 << 10));
	collect_reset(&co);
	free(x.big);
}

/* File offset of the record with index i when all records have size sz
 * and sit in half 0. */
static off_t rec_off(size_t i, uint32_t payload)
{
	uint64_t sz = (NVLOG_REC_HDR + payload + 7u) & ~7ull;

	return (off_t)(NVLOG_HDR_BLOCK + i * sz);
}

/*
 * nvlog_write_staged puts the committed records in the file for a reader
 * on another handle, without a flush: what is staged, and what a leader
 * took with its stage (it waits for that flush to end).  What it wrote is
 * not durable: the next flush runs fdatasync on the whole file.
 */
struct ws {
	struct nvlog *lg;
	uint64_t lsn;
	int rc_wait, rc_ws;
	bool ws_done;
};

static void *ws_wait(void *arg)
{
	struct ws *w = arg;

	w->rc_wait = nvlog_wait(w->lg, w->lsn);
	return NULL;
}

static void *ws_write(void *arg)
{
	struct ws *w = arg;

	w->rc_ws = nvlog_write_staged(w->lg);
	__atomic_store_n(&w->ws_done, true, __ATOMIC_RELEASE);
	return NULL;
}

static void test_write_staged(void **state)
{
	struct t_ctx *c = *state;
	struct collect co = { 0 };
	struct ws w = { .lg = open_ok(c->path, HALF_SMALL) };
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	struct nvlog_stats st;
	pthread_t ta, tw;

	assert_int_equal(nvlog_start(w.lg), 0);
	for (uint64_t k = 0; k < 3; k++)
		(void)put(w.lg, c->buf, 1, 1, 200, k);	/* staged */
	assert_int_equal(nvlog_write_staged(w.lg), 0);
	nvlog_get_stats(w.lg, &st);
	assert_int_equal(st.flushes, 0);
	assert_int_equal(st.durable_lsn + 4, st.next_lsn);
	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, 3);

	/* A leader holds the stage with the fourth record in its write.
	 * The three records written above were never synced: this flush
	 * must fdatasync the whole file, not only write its own stage with
	 * RWF_DSYNC, which makes that range alone durable. */
	unsigned syncs0 = __atomic_load_n(&fdatasyncs, __ATOMIC_RELAXED);
	w.lsn = put(w.lg, c->buf, 1, 1, 200, 3);
	gate_arm(rec_off(3, 200));
	assert_int_equal(pthread_create(&ta, NULL, ws_wait, &w), 0);
	gate_wait_arrival();
	(void)put(w.lg, c->buf, 1, 1, 200, 4);		/* the next stage */
	assert_int_equal(pthread_create(&tw, NULL, ws_write, &w), 0);
	nanosleep(&ts, NULL);
	assert_false(__atomic_load_n(&w.ws_done, __ATOMIC_ACQUIRE));
	gate_release();
	assert_int_equal(pthread_join(tw, NULL), 0);
	assert_int_equal(pthread_join(ta, NULL), 0);
	assert_int_equal(w.rc_wait, 0);
	assert_int_equal(w.rc_ws, 0);
	assert_int_equal(__atomic_load_n(&fdatasyncs, __ATOMIC_RELAXED),
	    syncs0 + 1);
	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, 5);
	for (size_t i = 0; i < co.n; i++)
		assert_int_equal(co.v[i].crc, key_crc(c->buf, 200, i));
	collect_reset(&co);

	/* So does a record too large to stage, written by its commit: the
	 * flush of the small one staged after it syncs the file. */
	assert_int_equal(nvlog_sync(w.lg), 0);
	syncs0 = __atomic_load_n(&fdatasyncs, __ATOMIC_RELAXED);
	(void)put(w.lg, c->buf, 1, 1, 100 << 10, 5);	/* written at once */
	w.lsn = put(w.lg, c->buf, 1, 1, 200, 6);		/* staged */
	assert_int_equal(nvlog_wait(w.lg, w.lsn), 0);
	assert_int_equal(__atomic_load_n(&fdatasyncs, __ATOMIC_RELAXED),
	    syncs0 + 1);
	nvlog_close(w.lg);
}

/*
 * A flush whose records are all in its stage writes it with RWF_DSYNC;
 * where the kernel refuses that flag the flush writes and runs fdatasync
 * instead, the records are durable all the same, and the log does not
 * ask again.
 */
static void test_dsync_refused(void **state)
{
	struct t_ctx *c = *state;
	struct collect co = { 0 };
	struct nvlog *lg = open_ok(c->path, HALF_SMALL);
	uint64_t l1, l2;

	assert_int_equal(nvlog_start(lg), 0);
	l1 = put(lg, c->buf, 1, 1, 200, 1);		/* staged */
	assert_int_equal(nvlog_wait(lg, l1), 0);
	assert_true(__atomic_load_n(&dsync_calls, __ATOMIC_RELAXED) > 0);

	__atomic_store_n(&refuse_dsync, 1, __ATOMIC_RELAXED);
	unsigned d0 = __atomic_load_n(&dsync_calls, __ATOMIC_RELAXED);
	unsigned s0 = __atomic_load_n(&fdatasyncs, __ATOMIC_RELAXED);
	l2 = put(lg, c->buf, 1, 1, 200, 2);
	assert_int_equal(nvlog_wait(lg, l2), 0);
	assert_false(nvlog_failed(lg));
	assert_int_equal(__atomic_load_n(&dsync_calls, __ATOMIC_RELAXED),
	    d0 + 1);
	assert_int_equal(__atomic_load_n(&fdatasyncs, __ATOMIC_RELAXED),
	    s0 + 1);
	/* Refused once: the next flush goes straight to fdatasync. */
	l2 = put(lg, c->buf, 1, 1, 200, 3);
	assert_int_equal(nvlog_wait(lg, l2), 0);
	assert_int_equal(__atomic_load_n(&dsync_calls, __ATOMIC_RELAXED),
	    d0 + 1);
	assert_int_equal(__atomic_load_n(&fdatasyncs, __ATOMIC_RELAXED),
	    s0 + 2);
	__atomic_store_n(&refuse_dsync, 0, __ATOMIC_RELAXED);
	nvlog_close(lg);

	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, 3);
	for (size_t i = 0; i < co.n; i++)
		assert_int_equal(co.v[i].crc, key_crc(c->buf, 200, i + 1));
	collect_reset(&co);
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x5a;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void test_torn_tail(void **state)
{
	struct t_ctx *c = *state;
	struct collect co = { 0 };
	struct nvlog *lg = open_ok(c->path, HALF_SMALL);

	assert_int_equal(nvlog_start(lg), 0);
	for (int i = 0; i < 100; i++)
		put(lg, c->buf, 1, 1, 300, (uint64_t)i);
	assert_int_equal(nvlog_sync(lg), 0);
	nvlog_close(lg);

	/* Corrupt the last payload byte: the record fails its crc. */
	flip_byte(c->path, rec_off(99, 300) + NVLOG_REC_HDR + 299);
	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, 99);
	assert_int_equal(co.v[98].crc, key_crc(c->buf, 300, 98));

	/* Truncate inside record 97: the file is short, the rest reads as
	 * nothing, replay delivers 0..96. */
	tl_log_capture_start(FL_LOG_WARN);
	assert_int_equal(truncate(c->path, rec_off(97, 300) + 40), 0);
	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, 97);
	assert_true(tl_log_count_with("short of the log", NULL) >= 1);
	tl_log_capture_stop();

	/* The log goes on after the torn tail. */
	lg = open_ok(c->path, 0);
	assert_int_equal(nvlog_replay(lg, 0, NULL, NULL), 0);
	assert_int_equal(nvlog_start(lg), 0);
	assert_int_equal(put(lg, c->buf, 2, 1, 300, 500), co.v[96].lsn + 1);
	assert_int_equal(nvlog_sync(lg), 0);
	nvlog_close(lg);
	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, 1);
	assert_int_equal(co.v[0].crc, key_crc(c->buf, 300, 500));
	collect_reset(&co);
}

static void test_corrupt_middle(void **state)
{
	struct t_ctx *c = *state;
	struct collect co = { 0 };
	struct nvlog *lg = open_ok(c->path, HALF_SMALL);

	assert_int_equal(nvlog_start(lg), 0);
	for (int i = 0; i < 60; i++)
		put(lg, c->buf, 1, 1, 200, (uint64_t)i);
	assert_int_equal(nvlog_switch(lg), 0);
	for (int i = 60; i < 100; i++)
		put(lg, c->buf, 2, 1, 200, (uint64_t)i);
	assert_int_equal(nvlog_sync(lg), 0);
	nvlog_close(lg);

	/* Header field (the gen) of record 30 in half 0. */
	flip_byte(c->path, rec_off(30, 200) + 17);
	tl_log_capture_start(FL_LOG_WARN);
	replay_ok(c->path, 0, &co);
	/* 0..29 delivered; half 1 (60..99) is after the gap at 30. */
	assert_int_equal(co.n, 30);
	for (size_t i = 0; i < co.n; i++)
		assert_int_equal(co.v[i].crc, key_crc(c->buf, 200, i));
	assert_int_equal(tl_log_count_with("gap", "missing", NULL), 1);
	tl_log_capture_stop();

	/* A bad length and a non-zero reserved field stop the scan too. */
	flip_byte(c->path, rec_off(30, 200) + 17);	/* repair */
	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, 100);
	flip_byte(c->path, rec_off(10, 200) + 6);	/* length 0x5a.... */
	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, 10);
	flip_byte(c->path, rec_off(10, 200) + 6);
	flip_byte(c->path, rec_off(5, 200) + 26);	/* reserved */
	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, 5);
	flip_byte(c->path, rec_off(5, 200) + 26);
	flip_byte(c->path, rec_off(0, 200) + 0);	/* magic */
	replay_ok(c->path, 0, &co);
	/*
	 * Half 0 has no valid record: half 1 (60..99) is delivered, because
	 * nothing before it was.  A lost oldest prefix is not detectable by
	 * LSN contiguity (docs/wafl-nvlog.md, "Limits").
	 */
	assert_int_equal(co.n, 40);
	assert_int_equal(co.v[0].crc, key_crc(c->buf, 200, 60));
	collect_reset(&co);
}

static void test_reserve_full(void **state)
{
	struct t_ctx *c = *state;
	struct nvlog *lg = open_ok(c->path, HALF_SMALL);
	struct nvlog_resv big, big2, small[64];
	const uint32_t chunk = 32768;
	struct nvlog_stats st;
	struct iovec iov;
	uint64_t lsn;
	int n = 0;

	assert_int_equal(nvlog_start(lg), 0);
	assert_int_equal(nvlog_reserve(lg, NVLOG_MAX_PAYLOAD + 1, &big),
	    -EINVAL);
	assert_int_equal(nvlog_reserve(lg, NVLOG_MAX_PAYLOAD, &big), 0);
	assert_int_equal(big.bytes,
	    (NVLOG_REC_HDR + NVLOG_MAX_PAYLOAD + 7u) & ~7u);
	assert_true(nvlog_fill(lg) > 0.9);
	/* The half cannot hold a second one. */
	assert_int_equal(nvlog_reserve(lg, NVLOG_MAX_PAYLOAD, &big2), -EAGAIN);
	nvlog_unreserve(lg, &big);
	assert_true(nvlog_fill(lg) == 0.0);

	/* Reservations of 32 KiB until the half is full. */
	while (n < 64 && nvlog_reserve(lg, chunk, &small[n]) == 0)
		n++;
	assert_true(n > 1 && n < 64);
	assert_true(nvlog_fill(lg) > 0.9 && nvlog_fill(lg) <= 1.0);
	assert_int_equal(nvlog_reserve(lg, chunk, &big2), -EAGAIN);
	/* Every reservation commits, whatever the size up to its bound. */
	pattern(c->buf, chunk + 1, 1);
	for (int i = 0; i < n; i++) {
		iov.iov_base = c->buf;
		iov.iov_len = (size_t)(i % 2 ? chunk : 100);
		assert_int_equal(nvlog_commit(lg, &small[i], 1, 1, &iov, 1,
		    &lsn), 0);
	}
	nvlog_get_stats(lg, &st);
	assert_int_equal(st.records, (uint64_t)n);
	assert_true(st.half_used < st.half_bytes);
	/* Committed records freed the room their reservation overstated. */
	assert_int_equal(nvlog_reserve(lg, chunk, &big2), 0);
	/* A commit larger than its reservation is refused and consumes it. */
	iov.iov_len = chunk + 1;
	assert_int_equal(nvlog_commit(lg, &big2, 1, 1, &iov, 1, &lsn),
	    -EINVAL);
	assert_int_equal(big2.bytes, 0);
	assert_false(nvlog_failed(lg));
	/* After a switch the new half is empty. */
	assert_int_equal(nvlog_switch(lg), 0);
	assert_true(nvlog_fill(lg) == 0.0);
	assert_int_equal(nvlog_sync(lg), 0);
	nvlog_close(lg);
}

/* ------------------------------------------------------------------ */
/* Group commit: 16 threads each doing commit + wait.                  */

#define GC_THREADS	16
#define GC_OPS		200

struct gc_arg {
	struct nvlog *lg;
	int id;
	int ops;		/* 0: until an error */
	int done;		/* acknowledged records */
	uint64_t acked[GC_OPS * 5];
	int err;
};

static void gc_payload(uint8_t *p, uint32_t *len, int id, int seq)
{
	*len = 24 + (uint32_t)((id * 131 + seq * 17) % 200);
	pattern(p, *len, (uint64_t)id << 32 | (uint32_t)seq);
	fl_put_le32(p, (uint32_t)id);
	fl_put_le32(p + 4, (uint32_t)seq);
}

static void *gc_thread(void *a)
{
	struct gc_arg *g = a;
	uint8_t buf[256];
	int limit = g->ops ? g->ops : (int)FL_ARRAY_SIZE(g->acked);

	for (int seq = 0; seq < limit; seq++) {
		struct nvlog_resv r;
		struct iovec iov = { buf, 0 };
		uint32_t len;
		uint64_t lsn;
		int rc;

		gc_payload(buf, &len, g->id, seq);
		iov.iov_len = len;
		rc = nvlog_reserve(g->lg, len, &r);
		if (rc == 0)
			rc = nvlog_commit(g->lg, &r, 1, (uint16_t)g->id, &iov, 1,
			    &lsn);
		if (rc == 0)
			rc = nvlog_wait(g->lg, lsn);
		if (rc != 0) {
			g->err = rc;
			break;
		}
		g->acked[g->done++] = lsn;
	}
	return NULL;
}

/* A replay of gc records is LSN-contiguous. */
static void gc_check(struct collect *co)
{
	for (size_t i = 0; i < co->n; i++) {
		if (i > 0)
			assert_int_equal(co->v[i].lsn, co->v[i - 1].lsn + 1);
		assert_true(co->v[i].type < GC_THREADS);
	}
}

static int lsn_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Payload check in the callback (the payload is only borrowed). */
struct gc_replay {
	struct collect co;
	int next_seq[GC_THREADS];
	int bad;
};

static int gc_replay_fn(void *arg, uint64_t lsn, uint64_t gen, uint16_t type,
    const void *payload, uint32_t len)
{
	struct gc_replay *gr = arg;
	const uint8_t *p = payload;
	uint8_t want[256];
	uint32_t wlen;
	int id, seq;

	if (len < 8) {
		gr->bad++;
		return 0;
	}
	id = (int)fl_get_le32(p);
	seq = (int)fl_get_le32(p + 4);
	if (id < 0 || id >= GC_THREADS || id != type ||
	    seq != gr->next_seq[id]) {
		gr->bad++;
		return 0;
	}
	gc_payload(want, &wlen, id, seq);
	if (wlen != len || memcmp(want, p, len) != 0)
		gr->bad++;
	gr->next_seq[id]++;
	return collect_fn(&gr->co, lsn, gen, type, payload, len);
}

static void test_group_commit_16(void **state)
{
	struct t_ctx *c = *state;
	static struct gc_arg args[GC_THREADS];
	pthread_t th[GC_THREADS];
	struct gc_replay gr;
	struct nvlog_stats st;
	struct nvlog *lg = open_ok(c->path, HALF_BIG);
	uint64_t t0, t1;
	double ratio;

	assert_int_equal(nvlog_start(lg), 0);
	t0 = fl_now_mono_ns();
	for (int i = 0; i < GC_THREADS; i++) {
		memset(&args[i], 0, sizeof(args[i]));
		args[i].lg = lg;
		args[i].id = i;
		args[i].ops = GC_OPS;
		assert_int_equal(pthread_create(&th[i], NULL, gc_thread,
		    &args[i]), 0);
	}
	for (int i = 0; i < GC_THREADS; i++)
		pthread_join(th[i], NULL);
	t1 = fl_now_mono_ns();
	for (int i = 0; i < GC_THREADS; i++) {
		assert_int_equal(args[i].err, 0);
		assert_int_equal(args[i].done, GC_OPS);
	}
	nvlog_get_stats(lg, &st);
	assert_int_equal(st.records, GC_THREADS * GC_OPS);
	assert_int_equal(st.durable_lsn + 1, st.next_lsn);
	ratio = (double)st.flushes / (double)st.waits;
	printf("group commit: %d threads x %d commit+wait: %" PRIu64
	    " flushes / %" PRIu64 " waits = %.3f flushes per wait, "
	    "%.0f ops/s\n", GC_THREADS, GC_OPS, st.flushes, st.waits, ratio,
	    (double)(GC_THREADS * GC_OPS) * 1e9 / (double)(t1 - t0));
	assert_true(st.waits > 0 && st.waits <= GC_THREADS * GC_OPS);
	assert_true(ratio < 0.75);
	nvlog_close(lg);

	/* Every record durable and replayed, once, in LSN order. */
	memset(&gr, 0, sizeof(gr));
	lg = open_ok(c->path, 0);
	assert_int_equal(nvlog_replay(lg, 0, gc_replay_fn, &gr), 0);
	nvlog_close(lg);
	assert_int_equal(gr.bad, 0);
	assert_int_equal(gr.co.n, GC_THREADS * GC_OPS);
	gc_check(&gr.co);
	for (int i = 0; i < GC_THREADS; i++)
		assert_int_equal(gr.next_seq[i], GC_OPS);
	collect_reset(&gr.co);
}

/*
 * Power loss under load: 16 threads commit+wait on a crash-simulating log;
 * at a random instant the unsynced records are dropped or torn.  Every
 * acknowledged record must replay; what replays is an LSN-contiguous run
 * of well-formed records.
 */
static size_t crash_acked, crash_replayed, crash_beyond;

static void crash_under_load(struct t_ctx *c, bool tear, uint64_t seed)
{
	static struct gc_arg args[GC_THREADS];
	pthread_t th[GC_THREADS];
	struct gc_replay gr;
	struct nvlog *lg = NULL;
	struct timespec ts = { 0, (long)(200000 + seed * 37000 % 3000000) };
	size_t nacked = 0, j = 0;
	uint64_t *acked;

	unlink(c->path);
	assert_int_equal(nvlog_open_flags(c->path, HALF_BIG,
	    NVLOG_OPEN_CRASHSIM, &lg), 0);
	assert_int_equal(nvlog_start(lg), 0);
	for (int i = 0; i < GC_THREADS; i++) {
		memset(&args[i], 0, sizeof(args[i]));
		args[i].lg = lg;
		args[i].id = i;
		args[i].ops = 0;
		assert_int_equal(pthread_create(&th[i], NULL, gc_thread,
		    &args[i]), 0);
	}
	nanosleep(&ts, NULL);
	if (tear)
		assert_int_equal(nvlog_crash_tear_unsynced(lg, seed), 0);
	else
		assert_int_equal(nvlog_crash_drop_unsynced(lg), 0);
	for (int i = 0; i < GC_THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_true(args[i].err == -FL_ECRASHED || args[i].err == 0);
		nacked += (size_t)args[i].done;
	}
	assert_true(nvlog_failed(lg));
	nvlog_close(lg);

	acked = malloc((nacked + 1) * sizeof(*acked));
	for (int i = 0; i < GC_THREADS; i++)
		for (int k = 0; k < args[i].done; k++)
			acked[j++] = args[i].acked[k];
	qsort(acked, nacked, sizeof(*acked), lsn_cmp);

	memset(&gr, 0, sizeof(gr));
	lg = open_ok(c->path, 0);
	assert_int_equal(nvlog_replay(lg, 0, gc_replay_fn, &gr), 0);
	nvlog_close(lg);
	assert_int_equal(gr.bad, 0);
	assert_true(gr.co.n >= nacked);
	for (size_t i = 1; i < gr.co.n; i++)
		assert_int_equal(gr.co.v[i].lsn, gr.co.v[i - 1].lsn + 1);
	/* Acknowledged LSNs are exactly a prefix of what replayed. */
	for (size_t i = 0; i < nacked; i++)
		assert_int_equal(acked[i], gr.co.v[i].lsn);
	crash_acked += nacked;
	crash_replayed += gr.co.n;
	crash_beyond += gr.co.n > nacked;
	free(acked);
	collect_reset(&gr.co);
}

static void test_crash_sim(void **state)
{
	struct t_ctx *c = *state;
	struct collect co = { 0 };
	struct nvlog *lg = NULL;
	uint64_t l10 = 0;

	/* Not in normal mode. */
	lg = open_ok(c->path, HALF_SMALL);
	assert_int_equal(nvlog_crash_drop_unsynced(lg), -EINVAL);
	nvlog_close(lg);
	unlink(c->path);

	/* 10 durable, 5 not: a power cut keeps exactly the 10. */
	assert_int_equal(nvlog_open_flags(c->path, HALF_SMALL,
	    NVLOG_OPEN_CRASHSIM, &lg), 0);
	assert_int_equal(nvlog_start(lg), 0);
	for (int i = 0; i < 10; i++)
		l10 = put(lg, c->buf, 1, 1, 64, (uint64_t)i);
	assert_int_equal(nvlog_wait(lg, l10), 0);
	for (int i = 10; i < 15; i++)
		put(lg, c->buf, 1, 1, 64, (uint64_t)i);
	assert_int_equal(nvlog_crash_drop_unsynced(lg), 0);
	struct nvlog_resv r;
	assert_int_equal(nvlog_reserve(lg, 1, &r), -FL_ECRASHED);
	assert_int_equal(nvlog_wait(lg, l10 + 1), -FL_ECRASHED);
	assert_int_equal(nvlog_wait(lg, l10), 0);	/* it is durable */
	nvlog_close(lg);
	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, 10);
	assert_int_equal(co.v[9].lsn, l10);

	/* Records written outside a flush's stage -- a large one, written
	 * by its commit; a stage written out when the next record did not
	 * fit -- are synced by the flush that covers them: a power cut after
	 * the wait keeps them all (a flush writing only its own stage with
	 * RWF_DSYNC would leave them in the page cache). */
	unlink(c->path);
	assert_int_equal(nvlog_open_flags(c->path, HALF_SMALL,
	    NVLOG_OPEN_CRASHSIM, &lg), 0);
	assert_int_equal(nvlog_start(lg), 0);
	put(lg, c->buf, 1, 1, 100 << 10, 100);
	l10 = put(lg, c->buf, 1, 1, 64, 101);
	assert_int_equal(nvlog_wait(lg, l10), 0);
	assert_int_equal(nvlog_crash_drop_unsynced(lg), 0);
	nvlog_close(lg);
	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, 2);
	assert_int_equal(co.v[0].crc, key_crc(c->buf, 100 << 10, 100));
	assert_int_equal(co.v[1].crc, key_crc(c->buf, 64, 101));
	unlink(c->path);
	assert_int_equal(nvlog_open_flags(c->path, HALF_SMALL,
	    NVLOG_OPEN_CRASHSIM, &lg), 0);
	assert_int_equal(nvlog_start(lg), 0);
	for (int i = 0; i < 300; i++)		/* over the 256 KiB stage */
		l10 = put(lg, c->buf, 1, 1, 1000, (uint64_t)i);
	assert_int_equal(nvlog_wait(lg, l10), 0);
	assert_int_equal(nvlog_crash_drop_unsynced(lg), 0);
	nvlog_close(lg);
	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, 300);
	assert_int_equal(co.v[299].crc, key_crc(c->buf, 1000, 299));

	/* A clean close of a crash-simulating log writes everything. */
	unlink(c->path);
	assert_int_equal(nvlog_open_flags(c->path, HALF_SMALL,
	    NVLOG_OPEN_CRASHSIM, &lg), 0);
	assert_int_equal(nvlog_start(lg), 0);
	for (int i = 0; i < 7; i++)
		put(lg, c->buf, 1, 1, 64, (uint64_t)i);
	nvlog_close(lg);
	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, 7);

	/* Torn unsynced records: replay keeps the synced prefix and stops
	 * cleanly, for many tearing patterns. */
	for (uint64_t seed = 1; seed <= 40; seed++) {
		unlink(c->path);
		assert_int_equal(nvlog_open_flags(c->path, HALF_SMALL,
		    NVLOG_OPEN_CRASHSIM, &lg), 0);
		assert_int_equal(nvlog_start(lg), 0);
		for (int i = 0; i < 10; i++)
			l10 = put(lg, c->buf, 1, 1, 100, (uint64_t)i);
		assert_int_equal(nvlog_sync(lg), 0);
		for (int i = 10; i < 30; i++)
			put(lg, c->buf, 1, 1, 100 + (uint32_t)i * 50,
			    (uint64_t)i);
		assert_int_equal(nvlog_crash_tear_unsynced(lg, seed), 0);
		nvlog_close(lg);
		replay_ok(c->path, 0, &co);
		assert_true(co.n >= 10 && co.n <= 30);
		for (size_t i = 0; i < co.n; i++)
			assert_int_equal(co.v[i].crc, key_crc(c->buf,
			    i < 10 ? 100 : 100 + (uint32_t)i * 50, i));
	}

	/* Under load, 10 crash points each way. */
	for (uint64_t seed = 1; seed <= 10; seed++) {
		crash_under_load(c, false, seed);
		crash_under_load(c, true, seed);
	}
	printf("crash under load: 20 crash points, %zu records acknowledged, "
	    "%zu replayed (%zu points replayed unacknowledged records)\n",
	    crash_acked, crash_replayed, crash_beyond);
	assert_true(crash_acked > 0);
	collect_reset(&co);
}

static void test_failure_latch(void **state)
{
	struct t_ctx *c = *state;
	struct collect co = { 0 };
	struct nvlog_resv r, r2;
	struct nvlog_stats st;
	struct iovec iov = { c->buf, 10 };
	struct nvlog *lg = open_ok(c->path, HALF_SMALL);
	uint64_t l1, l2, l;

	assert_int_equal(nvlog_start(lg), 0);
	l1 = put(lg, c->buf, 1, 1, 10, 1);
	assert_int_equal(nvlog_wait(lg, l1), 0);

	/* fdatasync fails: the waiter gets -EIO, the log is failed. */
	tl_log_capture_start(FL_LOG_ERR);
	nvlog_test_inject(lg, NVLOG_FAULT_SYNC);
	l2 = put(lg, c->buf, 1, 1, 10, 2);
	assert_int_equal(nvlog_reserve(lg, 10, &r2), 0);
	assert_int_equal(nvlog_wait(lg, l2), -EIO);
	assert_true(nvlog_failed(lg));
	assert_int_equal(tl_log_count_with("fdatasync failed", NULL), 1);
	tl_log_capture_stop();
	/* Later calls fail even with the fault gone: nothing is claimed. */
	nvlog_test_inject(lg, 0);
	assert_int_equal(nvlog_wait(lg, l2), -EIO);
	assert_int_equal(nvlog_sync(lg), -EIO);
	assert_int_equal(nvlog_reserve(lg, 10, &r), -EIO);
	assert_int_equal(nvlog_commit(lg, &r2, 1, 1, &iov, 1, &l), -EIO);
	assert_int_equal(r2.bytes, 0);
	assert_int_equal(nvlog_switch(lg), -EIO);
	assert_int_equal(nvlog_wait(lg, l1), 0);	/* was durable */
	nvlog_get_stats(lg, &st);
	assert_int_equal(st.durable_lsn, l1);
	assert_true(nvlog_fill(lg) >= 0.0);
	nvlog_close(lg);

	/* Reopen: the durable record is there (the other may be too: it was
	 * written, only its durability was never claimed). */
	replay_ok(c->path, 0, &co);
	assert_true(co.n >= 1);
	assert_int_equal(co.v[0].lsn, l1);

	/* pwrite fails: a small record is staged, so its commit succeeds and
	 * the flush's write fails; its wait gets -EIO and the log is failed,
	 * and a later commit fails at once. */
	unlink(c->path);
	lg = open_ok(c->path, HALF_SMALL);
	assert_int_equal(nvlog_start(lg), 0);
	nvlog_test_inject(lg, NVLOG_FAULT_WRITE);
	assert_int_equal(nvlog_reserve(lg, 10, &r), 0);
	assert_int_equal(nvlog_commit(lg, &r, 1, 1, &iov, 1, &l), 0);
	assert_false(nvlog_failed(lg));
	assert_int_equal(nvlog_wait(lg, l), -EIO);
	assert_true(nvlog_failed(lg));
	assert_int_equal(nvlog_reserve(lg, 10, &r), -EIO);
	nvlog_close(lg);

	/* A record too large to stage is written by its commit, whose
	 * failure is the commit's. */
	unlink(c->path);
	lg = open_ok(c->path, HALF_SMALL);
	assert_int_equal(nvlog_start(lg), 0);
	nvlog_test_inject(lg, NVLOG_FAULT_WRITE);
	{
		static uint8_t big[100 << 10];
		struct iovec bi = { .iov_base = big, .iov_len = sizeof(big) };

		assert_int_equal(nvlog_reserve(lg, sizeof(big), &r), 0);
		assert_int_equal(nvlog_commit(lg, &r, 1, 1, &bi, 1, &l),
		    -EIO);
	}
	assert_true(nvlog_failed(lg));
	nvlog_test_inject(lg, 0);
	assert_int_equal(nvlog_reserve(lg, 10, &r), -EIO);
	nvlog_close(lg);

	/* The header write of nvlog_start failing is a failure too. */
	lg = open_ok(c->path, 0);
	nvlog_test_inject(lg, NVLOG_FAULT_SYNC);
	assert_int_equal(nvlog_start(lg), -EIO);
	assert_true(nvlog_failed(lg));
	nvlog_close(lg);
	collect_reset(&co);
}

/* ------------------------------------------------------------------ */
/* nvlog_when_durable: callbacks instead of blocked threads.           */

#define AW_THREADS	8
#define AW_OPS		300

struct aw_acks {
	pthread_mutex_t mu;
	size_t calls, ok;
	/* Runs of callbacks a thread began (last false) and has not ended
	 * with last true: 0 once every callback ran. */
	int open_runs;
	size_t lasts;		/* callbacks called with last true */
	int bad_err;		/* an error other than the expected one */
	int want_err;		/* the error a failed log reports */
	uint64_t ok_lsn[AW_THREADS * AW_OPS];
};

struct aw_cb {
	struct aw_acks *a;
	uint64_t lsn;
};

static void aw_reset(struct aw_acks *a, int want_err)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->mu, NULL);
	a->want_err = want_err;
}

static __thread bool aw_in_run;

static void aw_done(void *arg, int err, bool last)
{
	struct aw_cb *cb = arg;
	struct aw_acks *a = cb->a;

	pthread_mutex_lock(&a->mu);
	if (!last && !aw_in_run) {
		aw_in_run = true;
		a->open_runs++;
	} else if (last && aw_in_run) {
		aw_in_run = false;
		a->open_runs--;
	}
	a->calls++;
	a->lasts += last;
	if (err == 0)
		a->ok_lsn[a->ok++] = cb->lsn;
	else if (err != a->want_err)
		a->bad_err++;
	pthread_mutex_unlock(&a->mu);
	free(cb);
}

struct aw_arg {
	struct nvlog *lg;
	struct aw_acks *a;
	int id;
	int queued;
};

/* Commit and queue a callback, never wait; stop at the first error. */
static void *aw_thread(void *p)
{
	struct aw_arg *g = p;
	uint8_t buf[256];

	for (int seq = 0; seq < AW_OPS; seq++) {
		struct nvlog_resv r;
		struct iovec iov = { buf, 0 };
		struct aw_cb *cb = malloc(sizeof(*cb));
		uint32_t len;

		gc_payload(buf, &len, g->id, seq);
		iov.iov_len = len;
		if (nvlog_reserve(g->lg, len, &r) != 0 ||
		    nvlog_commit(g->lg, &r, 1, (uint16_t)g->id, &iov, 1,
		    &cb->lsn) != 0) {
			free(cb);
			break;
		}
		cb->a = g->a;
		g->queued++;
		nvlog_when_durable(g->lg, cb->lsn, aw_done, cb);
	}
	return NULL;
}

static void aw_run(struct nvlog *lg, struct aw_acks *a, struct aw_arg *args,
    const struct timespec *crash_after, bool tear, uint64_t seed)
{
	pthread_t th[AW_THREADS];

	for (int i = 0; i < AW_THREADS; i++) {
		args[i] = (struct aw_arg){ lg, a, i, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, aw_thread,
		    &args[i]), 0);
	}
	if (crash_after != NULL) {
		nanosleep(crash_after, NULL);
		if (tear)
			assert_int_equal(nvlog_crash_tear_unsynced(lg, seed),
			    0);
		else
			assert_int_equal(nvlog_crash_drop_unsynced(lg), 0);
	}
	for (int i = 0; i < AW_THREADS; i++)
		pthread_join(th[i], NULL);
}

static void test_when_durable(void **state)
{
	struct t_ctx *c = *state;
	static struct aw_acks a;
	struct aw_arg args[AW_THREADS];
	struct gc_replay gr;
	struct nvlog_stats st;
	struct nvlog *lg;
	size_t queued;
	uint64_t l1;

	/* Already durable: the callback runs before the call returns. */
	lg = open_ok(c->path, HALF_BIG);
	assert_int_equal(nvlog_start(lg), 0);
	aw_reset(&a, 0);
	l1 = put(lg, c->buf, 1, 1, 40, 1);
	assert_int_equal(nvlog_wait(lg, l1), 0);
	struct aw_cb *cb = malloc(sizeof(*cb));
	*cb = (struct aw_cb){ &a, l1 };
	nvlog_when_durable(lg, l1, aw_done, cb);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.ok, 1);
	nvlog_close(lg);
	unlink(c->path);

	/* 8 threads queue 300 callbacks each without waiting: every one
	 * runs with success by close, flushes are shared, and every record
	 * replays. */
	lg = open_ok(c->path, HALF_BIG);
	assert_int_equal(nvlog_start(lg), 0);
	aw_reset(&a, 0);
	aw_run(lg, &a, args, NULL, false, 0);
	queued = 0;
	for (int i = 0; i < AW_THREADS; i++)
		queued += (size_t)args[i].queued;
	assert_int_equal(queued, AW_THREADS * AW_OPS);
	nvlog_get_stats(lg, &st);
	nvlog_close(lg);
	printf("when_durable: %zu callbacks, %" PRIu64 " flushes\n", a.calls,
	    st.flushes);
	assert_true(st.flushes * 2 < queued);	/* flushes are shared */
	assert_int_equal(a.calls, queued);
	assert_int_equal(a.open_runs, 0);	/* every run ended with last */
	assert_int_equal(a.ok, queued);
	assert_int_equal(a.bad_err, 0);
	lg = open_ok(c->path, 0);
	memset(&gr, 0, sizeof(gr));
	assert_int_equal(nvlog_replay(lg, 0, gc_replay_fn, &gr), 0);
	nvlog_close(lg);
	assert_int_equal(gr.bad, 0);
	assert_int_equal(gr.co.n, queued);
	collect_reset(&gr.co);

	/* The flush fails: queued callbacks get -EIO, none claims success
	 * for a record after the last durable one. */
	unlink(c->path);
	lg = open_ok(c->path, HALF_BIG);
	assert_int_equal(nvlog_start(lg), 0);
	aw_reset(&a, -EIO);
	l1 = put(lg, c->buf, 1, 1, 40, 1);
	assert_int_equal(nvlog_wait(lg, l1), 0);
	tl_log_capture_start(FL_LOG_ERR);
	nvlog_test_inject(lg, NVLOG_FAULT_SYNC);
	uint64_t l5[5];
	for (int i = 0; i < 5; i++)
		l5[i] = put(lg, c->buf, 1, 1, 40, 2 + (uint64_t)i);
	for (int i = 0; i < 5; i++) {
		cb = malloc(sizeof(*cb));
		*cb = (struct aw_cb){ &a, l5[i] };
		nvlog_when_durable(lg, cb->lsn, aw_done, cb);
	}
	nvlog_close(lg);
	tl_log_capture_stop();
	assert_int_equal(a.calls, 5);
	assert_int_equal(a.ok, 0);
	assert_int_equal(a.bad_err, 0);

	/* Power loss while callbacks are queued, 10 crash points each way:
	 * every callback runs, and the records acknowledged by one with
	 * success are exactly a prefix of what replays. */
	for (uint64_t seed = 1; seed <= 20; seed++) {
		struct timespec ts = { 0, (long)(100000 + seed * 53000 %
		    2000000) };
		uint64_t *ok;

		unlink(c->path);
		assert_int_equal(nvlog_open_flags(c->path, HALF_BIG,
		    NVLOG_OPEN_CRASHSIM, &lg), 0);
		assert_int_equal(nvlog_start(lg), 0);
		aw_reset(&a, -FL_ECRASHED);
		aw_run(lg, &a, args, &ts, seed % 2 == 0, seed);
		nvlog_close(lg);
		queued = 0;
		for (int i = 0; i < AW_THREADS; i++)
			queued += (size_t)args[i].queued;
		assert_int_equal(a.calls, queued);
		assert_int_equal(a.open_runs, 0);
	assert_int_equal(a.open_runs, 0);	/* every run ended with last */
		assert_int_equal(a.bad_err, 0);
		ok = a.ok_lsn;
		qsort(ok, a.ok, sizeof(*ok), lsn_cmp);
		lg = open_ok(c->path, 0);
		memset(&gr, 0, sizeof(gr));
		assert_int_equal(nvlog_replay(lg, 0, gc_replay_fn, &gr), 0);
		nvlog_close(lg);
		assert_int_equal(gr.bad, 0);
		assert_true(gr.co.n >= a.ok);
		for (size_t i = 0; i < a.ok; i++)
			assert_int_equal(ok[i], gr.co.v[i].lsn);
		collect_reset(&gr.co);
	}
}

static void write_at(const char *path, const void *buf, size_t len,
    off_t off)
{
	int fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

/*
 * nvlog_when_durable_later: callbacks queued by one thread wait, without a
 * flush, until it kicks; then one flush makes them all durable and they
 * run as one run.
 */
static void test_when_durable_later(void **state)
{
	struct t_ctx *c = *state;
	static struct aw_acks a;
	struct nvlog_stats s0, s1;
	struct nvlog *lg;
	uint64_t lsn = 0;

	lg = open_ok(c->path, HALF_BIG);
	assert_int_equal(nvlog_start(lg), 0);
	aw_reset(&a, 0);
	nvlog_get_stats(lg, &s0);
	for (int i = 0; i < 5; i++) {
		struct aw_cb *cb = malloc(sizeof(*cb));

		lsn = put(lg, c->buf, 1, 1, 40, (uint64_t)i);
		*cb = (struct aw_cb){ &a, lsn };
		/* No flush in flight nor leader: each one is owed. */
		assert_true(nvlog_when_durable_later(lg, lsn, aw_done, cb));
	}
	nvlog_get_stats(lg, &s1);
	assert_int_equal(a.calls, 0);
	assert_int_equal(s1.flushes, s0.flushes);
	nvlog_kick(lg);
	nvlog_get_stats(lg, &s1);
	assert_int_equal(s1.flushes, s0.flushes + 1);
	assert_int_equal(a.calls, 5);
	assert_int_equal(a.ok, 5);
	assert_int_equal(a.open_runs, 0);	/* one run, ended with last */
	assert_int_equal(a.lasts, 1);
	assert_int_equal(a.ok_lsn[4], lsn);

	/* Durable already: runs at once, nothing owed; a kick with nothing
	 * queued flushes nothing. */
	struct aw_cb *cb = malloc(sizeof(*cb));
	*cb = (struct aw_cb){ &a, lsn };
	assert_false(nvlog_when_durable_later(lg, lsn, aw_done, cb));
	assert_int_equal(a.calls, 6);
	nvlog_kick(lg);
	nvlog_get_stats(lg, &s0);
	assert_int_equal(s0.flushes, s1.flushes);
	nvlog_close(lg);
}


static void test_bad_header(void **state)
{
	struct t_ctx *c = *state;
	struct collect co = { 0 };
	struct nvlog *lg = NULL;
	uint8_t junk[4096], slot[64];
	uint64_t l;

	lg = open_ok(c->path, HALF_SMALL);
	nvlog_close(lg);

	/* Garbage over the header block. */
	tl_log_capture_start(FL_LOG_ERR);
	pattern(junk, sizeof(junk), 77);
	write_at(c->path, junk, sizeof(junk), 0);
	assert_int_equal(nvlog_open(c->path, HALF_SMALL, &lg), -FL_ECORRUPT);
	assert_null(lg);
	assert_int_equal(tl_log_count_with("bad log header", NULL), 1);

	/* A well-checksummed slot with an absurd half size. */
	memset(junk, 0, sizeof(junk));
	write_at(c->path, junk, sizeof(junk), 0);
	memset(slot, 0, sizeof(slot));
	memcpy(slot, "FLRNVLG1", 8);
	fl_put_le32(slot + 8, 1);
	fl_put_le64(slot + 16, 12345);
	fl_put_le64(slot + 24, 1);
	fl_put_le64(slot + 32, 1);
	fl_put_le32(slot + 60, fl_crc32c(0, slot, 60));
	write_at(c->path, slot, sizeof(slot), 2048);
	assert_int_equal(nvlog_open(c->path, HALF_SMALL, &lg), -FL_ECORRUPT);
	assert_int_equal(tl_log_count_with("half size out of range", NULL), 1);
	/* Version 2 is refused. */
	fl_put_le64(slot + 16, HALF_SMALL);
	fl_put_le32(slot + 8, 2);
	fl_put_le32(slot + 60, fl_crc32c(0, slot, 60));
	write_at(c->path, slot, sizeof(slot), 2048);
	assert_int_equal(nvlog_open(c->path, HALF_SMALL, &lg), -FL_ECORRUPT);
	assert_int_equal(tl_log_count_with("version", NULL), 1);
	/* Fixed, it opens (the slot matches what creation writes). */
	fl_put_le32(slot + 8, 1);
	fl_put_le32(slot + 60, fl_crc32c(0, slot, 60));
	write_at(c->path, slot, sizeof(slot), 2048);
	lg = open_ok(c->path, 0);
	nvlog_close(lg);

	/* A file shorter than the header block. */
	assert_int_equal(truncate(c->path, 100), 0);
	assert_int_equal(nvlog_open(c->path, HALF_SMALL, &lg), -FL_ECORRUPT);
	tl_log_capture_stop();

	/* A torn header write of a new run falls back to the old slot. */
	unlink(c->path);
	lg = open_ok(c->path, HALF_SMALL);
	assert_int_equal(nvlog_start(lg), 0);	/* run 2, slot 0 */
	l = put(lg, c->buf, 1, 1, 10, 1);
	assert_int_equal(nvlog_sync(lg), 0);
	nvlog_close(lg);
	replay_ok(c->path, 0, &co);
	assert_int_equal(co.n, 1);
	assert_int_equal(co.v[0].lsn, l);
	write_at(c->path, junk + 100, 30, 10);	/* tear slot 0 */
	replay_ok(c->path, 0, &co);		/* run 1: record retired */
	assert_int_equal(co.n, 0);
	collect_reset(&co);
}

int main(void)
{
	fl_log_set_level(FL_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_open_reopen, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_after_gen, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_halves_stale, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stale_stage_reused_half,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_inflight_stage_reused_half,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_staged, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_dsync_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_middle, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reserve_full, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_16, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_crash_sim, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_when_durable, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_when_durable_later, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_failure_latch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_header, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
