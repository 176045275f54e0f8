/*
 * tests/raid/test_raid_api.c: the interface's promises that the other
 * runners do not exercise on their own.
 *
 *   counters   a full-stripe write reads nothing (R3: parity_reads == 0
 *              and partial_reads == 0) and writes P parity blocks per
 *              stripe; a partial write reads the other N - 1 data blocks
 *              (reconstruct-write) and no parity; ragged writes split into
 *              partial ends and full middles; reads and reconstructions
 *              are counted
 *   ranges     -ERANGE past the end, -EINVAL for an unaligned
 *              raid_write_stripes, bad create options refused, a labelled
 *              disk not re-created (-EEXIST)
 *   geometry   raid_geometry and the VBN mapping of raid.h
 *   threads    many threads writing different blocks of the SAME stripes
 *              (partial writes): the stripe lock keeps parity right, which
 *              a scrub and reads with each disk failed in turn prove
 *   readahead  the reads of partial-stripe writes, one after another up
 *              a sparse image, bring into the page cache only the blocks
 *              they read (mincore), not the readahead around them
 *   intent     a write-intent mark of a writer moving through the disk
 *              (into the region after its last) also marks the 8 after
 *              its own, so it writes no mark through them; those stay
 *              marked through exactly 8 flushes; the first write and a
 *              write that jumps mark their own region only; the data
 *              reads back after a reopen; two writers' fronts moving
 *              through the disk side by side each get marks ahead
 *   wstream    a write stream returns with its last chunk still being
 *              written and says when blocks may be reused; writes in any
 *              order, over its own chunks in flight, unaligned, and with a
 *              disk failed all land (shadow, scrub); it waits for a range
 *              someone else holds only with nothing of its own in flight
 *              (the holder's raid_flush, which waits for every write in
 *              flight, would otherwise never return)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/raid.h"
#include "raid/raid_impl.h"	/* raid_range_lock, for the wstream test */
#include "tests/lib/tl_raid.h"
#include "tests/lib/tl_tmpdir.h"

static void verify(struct tl_vol *t, const char *what)
{
	int err;
	uint64_t bad = tl_vol_verify(t, &err);

	if (bad != 0)
		fail_msg("%s: %llu wrong blocks (first error %s)", what,
		    (unsigned long long)bad, fl_strerror(err));
}

static struct raid_counters counters(struct tl_vol *t)
{
	struct raid_status st;

	raid_status(t->v, &st);
	return st.counters;
}

static void test_geometry_and_mapping(void **state)
{
	struct tl_vol t;
	struct raid_geometry g;
	const uint32_t n = 5, p = 2;

	assert_int_equal(tl_vol_create(&t, NULL, 3, n, p, 40, false), 0);
	raid_geometry(t.v, &g);
	assert_int_equal(g.ngroups, 3);
	assert_int_equal(g.ndata, n);
	assert_int_equal(g.nparity, p);
	assert_int_equal(g.disk_blocks, 40);
	assert_int_equal(g.nvbns, 3 * n * 40);
	assert_int_equal(g.stripe_width, n);
	assert_int_equal(raid_ndisks(t.v), 3 * (n + p));
	for (uint64_t vbn = 0; vbn < g.nvbns; vbn++) {
		size_t disk;
		uint64_t blk;
		uint64_t grp = vbn / (n * 40), v = vbn % (n * 40);
		assert_int_equal(raid_vbn_locate(t.v, vbn, &disk, &blk), 0);
		assert_int_equal(disk, grp * (n + p) + v % n);
		assert_int_equal(blk, v / n);
		for (unsigned i = 0; i < p; i++) {
			assert_int_equal(raid_parity_locate(t.v, vbn, i, &disk,
			    &blk), 0);
			assert_int_equal(disk, grp * (n + p) + n + i);
			assert_int_equal(blk, v / n);
		}
	}
	{
		size_t disk;
		uint64_t blk;
		assert_int_not_equal(raid_vbn_locate(t.v, g.nvbns, &disk,
		    &blk), 0);
		assert_int_not_equal(raid_parity_locate(t.v, 0, p, &disk,
		    &blk), 0);
	}
	for (size_t d = 0; d < raid_ndisks(t.v); d++) {
		struct raid_disk_info info;
		assert_int_equal(raid_disk_info(t.v, d, &info), 0);
		assert_string_equal(info.path, t.paths[d]);
		assert_int_equal(info.state, RAID_DISK_OK);
		assert_int_equal(info.group, (int)(d / (n + p)));
		assert_int_equal(info.position, (int)(d % (n + p)));
		assert_string_equal(info.reason, "");
	}
	{
		struct raid_disk_info info;
		assert_int_not_equal(raid_disk_info(t.v, raid_ndisks(t.v),
		    &info), 0);
	}
	/* The identity survives a reopen. */
	{
		uint8_t uuid[16];
		memcpy(uuid, g.uuid, 16);
		tl_vol_close(&t);
		assert_int_equal(tl_vol_open(&t), 0);
		raid_geometry(t.v, &g);
		assert_memory_equal(uuid, g.uuid, 16);
		assert_int_equal(g.nvbns, 3 * n * 40);
	}
	for (int s = RAID_DISK_OK; s <= RAID_DISK_SPARE; s++)
		assert_non_null(raid_disk_state_name((enum raid_disk_state)s));
	tl_vol_destroy(&t);
}

static void test_counters(void **state)
{
	struct tl_vol t;
	struct raid_counters c;
	uint8_t *buf;
	uint64_t rng = 1;
	const uint32_t n = 4, p = 2;

	assert_int_equal(tl_vol_create(&t, NULL, 1, n, p, 64, false), 0);
	buf = malloc(16 * (size_t)n * TL_BS);
	assert_non_null(buf);

	/* Full stripes through raid_write_stripes: nothing read. */
	raid_counters_reset(t.v);
	tl_fill_random(buf, 8 * (size_t)n * TL_BS, &rng);
	assert_int_equal(raid_write_stripes(t.v, 8 * n, 8, buf), 0);
	memcpy(tl_shadow(&t, 8 * n), buf, 8 * (size_t)n * TL_BS);
	c = counters(&t);
	assert_int_equal(c.parity_reads, 0);
	assert_int_equal(c.partial_reads, 0);
	assert_int_equal(c.reads, 0);
	assert_int_equal(c.full_stripe_writes, 8);
	assert_int_equal(c.partial_stripe_writes, 0);
	assert_int_equal(c.writes, 8 * n);
	assert_int_equal(c.parity_writes, 8 * p);

	/* Full stripes through raid_write, aligned: nothing read either. */
	raid_counters_reset(t.v);
	assert_int_equal(tl_vol_write_random(&t, 20 * n, 3 * n, &rng), 0);
	c = counters(&t);
	assert_int_equal(c.parity_reads, 0);
	assert_int_equal(c.partial_reads, 0);
	assert_int_equal(c.full_stripe_writes, 3);
	assert_int_equal(c.partial_stripe_writes, 0);
	assert_int_equal(c.parity_writes, 3 * p);

	/* One block: reconstruct-write reads the other N - 1, no parity. */
	raid_counters_reset(t.v);
	assert_int_equal(tl_vol_write_random(&t, 30 * n + 1, 1, &rng), 0);
	c = counters(&t);
	assert_int_equal(c.partial_stripe_writes, 1);
	assert_int_equal(c.full_stripe_writes, 0);
	assert_int_equal(c.partial_reads, n - 1);
	assert_int_equal(c.parity_reads, 0);
	assert_int_equal(c.parity_writes, p);
	assert_int_equal(c.writes, 1);

	/* Ragged: 3 blocks at the end of stripe 40, stripes 41-42 whole,
	 * 2 blocks at the start of stripe 43. */
	raid_counters_reset(t.v);
	assert_int_equal(tl_vol_write_random(&t, 40 * n + 1, 3 + 2 * n + 2,
	    &rng), 0);
	c = counters(&t);
	assert_int_equal(c.full_stripe_writes, 2);
	assert_int_equal(c.partial_stripe_writes, 2);
	assert_int_equal(c.partial_reads, 1 + (n - 2));
	assert_int_equal(c.parity_reads, 0);
	assert_int_equal(c.parity_writes, 4 * p);
	assert_int_equal(c.writes, 3 + 2 * n + 2);

	/* Flush counted; intent records written for the writes above. */
	assert_int_equal(raid_flush(t.v), 0);
	c = counters(&t);
	assert_true(c.flushes >= 1);

	/* Reads: healthy ones reconstruct nothing. */
	raid_counters_reset(t.v);
	assert_int_equal(raid_read(t.v, 0, 10, buf), 0);
	c = counters(&t);
	assert_int_equal(c.reads, 10);
	assert_int_equal(c.reconstructions, 0);
	assert_int_equal(c.parity_reads, 0);
	/* Degraded: the blocks on the failed disk are reconstructed. */
	assert_int_equal(raid_fail_disk(t.v, 1, "test"), 0);
	raid_counters_reset(t.v);
	assert_int_equal(raid_read(t.v, 0, 8 * n, buf), 0);
	c = counters(&t);
	assert_int_equal(c.reads, 8 * n);
	assert_int_equal(c.reconstructions, 8);
	verify(&t, "counters volume");
	free(buf);
	tl_vol_destroy(&t);
}

/* Bitmap blocks written by one raid_write of a block at stripe s. */
static uint64_t marks_for_write(struct tl_vol *t, uint64_t stripe,
    uint64_t *rng)
{
	uint64_t before = counters(t).intent_writes;
	uint8_t got[TL_BS];
	uint64_t vbn = stripe * t->ndata;

	assert_int_equal(tl_vol_write_random(t, vbn, 1, rng), 0);
	assert_int_equal(raid_read(t->v, vbn, 1, got), 0);
	assert_memory_equal(got, tl_shadow(t, vbn), TL_BS);
	return counters(t).intent_writes - before;
}

#define REGION	1024u	/* stripes per write-intent region (label.h) */

static void test_intent_marks_ahead(void **state)
{
	struct tl_vol t;
	uint64_t rng = 7;
	uint8_t got[TL_BS];

	(void)state;
	assert_int_equal(tl_vol_create(&t, NULL, 1, 2, 1, 21 * REGION,
	    false), 0);
	/* The first write of the volume marks its own region only. */
	assert_true(marks_for_write(&t, 5, &rng) > 0);
	/* The next region: a writer moving on; 2-9 are marked with it. */
	assert_true(marks_for_write(&t, 1 * REGION + 1, &rng) > 0);
	for (unsigned r = 2; r <= 9; r++)
		assert_int_equal(marks_for_write(&t, r * REGION + r, &rng), 0);
	/* Region 10 was not marked ahead: a mark, and 11-18 with it. */
	assert_true(marks_for_write(&t, 10 * REGION, &rng) > 0);
	/* Marked ahead, unwritten: kept through exactly 8 flushes. */
	for (int i = 0; i < 8; i++)
		assert_int_equal(raid_flush(t.v), 0);
	assert_int_equal(marks_for_write(&t, 14 * REGION + 3, &rng), 0);
	assert_int_equal(raid_flush(t.v), 0);
	/* The 9th cleared them.  This write jumps (from region 14), so it
	 * marks its own region only: 19 then needs a mark of its own. */
	assert_true(marks_for_write(&t, 18 * REGION + 1, &rng) > 0);
	assert_true(marks_for_write(&t, 19 * REGION + 2, &rng) > 0);
	assert_int_equal(raid_flush(t.v), 0);

	/* Every block written reads back after a reopen. */
	tl_vol_close(&t);
	assert_int_equal(tl_vol_open(&t), 0);
	const uint64_t stripes[] = { 5, 1 * REGION + 1, 9 * REGION + 9,
	    10 * REGION, 14 * REGION + 3, 18 * REGION + 1, 19 * REGION + 2 };
	for (size_t i = 0; i < FL_ARRAY_SIZE(stripes); i++) {
		uint64_t vbn = stripes[i] * t.ndata;

		assert_int_equal(raid_read(t.v, vbn, 1, got), 0);
		assert_memory_equal(got, tl_shadow(&t, vbn), TL_BS);
	}
	tl_vol_destroy(&t);
}

/* A walk's data and the pointer blocks a few regions ahead of it: two
 * fronts moving side by side, each marked ahead on its own. */
static void test_intent_two_fronts(void **state)
{
	struct tl_vol t;
	uint64_t rng = 9;

	(void)state;
	assert_int_equal(tl_vol_create(&t, NULL, 1, 2, 1, 40 * REGION,
	    false), 0);
	assert_true(marks_for_write(&t, 1 * REGION, &rng) > 0);
	assert_true(marks_for_write(&t, 20 * REGION, &rng) > 0);
	/* Each front moves on once: a mark, with 8 regions ahead. */
	assert_true(marks_for_write(&t, 2 * REGION, &rng) > 0);
	assert_true(marks_for_write(&t, 21 * REGION, &rng) > 0);
	/* Then they alternate, each finding its regions marked. */
	for (unsigned r = 3; r <= 10; r++) {
		assert_int_equal(marks_for_write(&t, r * REGION + r, &rng), 0);
		assert_int_equal(marks_for_write(&t, (19 + r) * REGION + r,
		    &rng), 0);
	}
	assert_int_equal(raid_flush(t.v), 0);
	verify(&t, "two fronts");
	tl_vol_destroy(&t);
}

/* ---- write streams ---- */

#define WS_NDATA	4u
#define WS_CHUNK	256u	/* RAID_CHUNK_STRIPES */

struct ws_blocks {
	uint8_t *mem;			/* n blocks */
	const uint8_t **ptr;		/* ptr[i]: block vbn + i, shuffled */
	uint32_t n;
};

/* n blocks of random data, handed to the stream in a shuffled order of
 * memory (as a walk's batch holds them), copied into the shadow. */
static void ws_make(struct tl_vol *t, struct ws_blocks *b, uint64_t vbn,
    uint32_t n, uint64_t *rng)
{
	b->n = n;
	b->mem = malloc((size_t)n * TL_BS);
	b->ptr = malloc(n * sizeof(*b->ptr));
	assert_non_null(b->mem);
	assert_non_null(b->ptr);
	tl_fill_random(b->mem, (size_t)n * TL_BS, rng);
	for (uint32_t i = 0; i < n; i++)
		b->ptr[i] = b->mem + (size_t)((i * 7919u) % n) * TL_BS;
	for (uint32_t i = 0; i < n; i++)
		memcpy(tl_shadow(t, vbn + i), b->ptr[i], TL_BS);
}

/* ws_make, then the stream's write of them; its sequence number. */
static uint64_t ws_put(struct tl_vol *t, raid_wstream_t *ws,
    struct ws_blocks *b, uint64_t vbn, uint32_t n, uint64_t *rng)
{
	uint64_t seq = 0;

	ws_make(t, b, vbn, n, rng);
	assert_int_equal(raid_wstream_writev(ws, vbn, n, b->ptr, &seq), 0);
	return seq;
}

static void ws_free(struct ws_blocks *b)
{
	free(b->mem);
	free(b->ptr);
}

static void test_wstream_writes(void **state)
{
	struct tl_vol t;
	raid_wstream_t *ws;
	struct ws_blocks a, b, c, d, e;
	uint64_t rng = 5, sa, sb, sc, sd, se;
	struct raid_scrub_result sr;

	(void)state;
	assert_int_equal(tl_vol_create(&t, NULL, 1, WS_NDATA, 2, 4096, false),
	    0);
	assert_int_equal(raid_wstream_open(t.v, &ws), 0);

	/* 600 stripes: three chunks; the last is still on its way. */
	sa = ws_put(&t, ws, &a, 1000 * WS_NDATA, 600 * WS_NDATA, &rng);
	assert_int_equal(sa, 3);
	assert_true(raid_wstream_done(ws) < sa);
	/* Below it (no upward order needed), and the blocks array is not
	 * kept: scribbled on at once. */
	sb = ws_put(&t, ws, &b, 10 * WS_NDATA, 10 * WS_NDATA, &rng);
	memset(b.ptr, 0, b.n * sizeof(*b.ptr));
	assert_true(sb > sa);
	/* Over its own chunk in flight (stripes 1590-1599 of a's last):
	 * the newer data wins. */
	sc = ws_put(&t, ws, &c, 1590 * WS_NDATA, 10 * WS_NDATA, &rng);
	assert_true(sc > sb);
	/* a's blocks are free once done reaches sa: scribbling on them
	 * then changes nothing written. */
	assert_int_equal(raid_wstream_wait(ws, sa), 0);
	assert_true(raid_wstream_done(ws) >= sa);
	memset(a.mem, 0xa5, (size_t)a.n * TL_BS);
	/* Not whole stripes: written at once, after what was in flight. */
	sd = ws_put(&t, ws, &d, 3 * WS_NDATA + 1, 6, &rng);
	assert_int_equal(raid_wstream_done(ws), sd);
	/* A disk out: chunks that are not plain, one at a time. */
	assert_int_equal(raid_fail_disk(t.v, 1, "test"), 0);
	se = ws_put(&t, ws, &e, 2000 * WS_NDATA, 300 * WS_NDATA, &rng);
	assert_int_equal(raid_wstream_drain(ws), 0);
	assert_int_equal(raid_wstream_done(ws), se);
	assert_int_equal(raid_wstream_close(ws), 0);
	assert_int_equal(raid_flush(t.v), 0);
	verify(&t, "stream writes, then degraded");
	ws_free(&a);
	ws_free(&b);
	ws_free(&c);
	ws_free(&d);
	ws_free(&e);

	tl_vol_destroy(&t);

	/* Runs up and down a healthy volume: every parity agrees (scrub). */

	assert_int_equal(tl_vol_create(&t, NULL, 1, WS_NDATA, 1, 2048, false),
	    0);
	assert_int_equal(raid_wstream_open(t.v, &ws), 0);
	for (unsigned k = 0; k < 6; k++) {
		struct ws_blocks x;
		uint64_t s0 = (k % 2 ? 1500 : 200) - k * 37, sx;

		sx = ws_put(&t, ws, &x, s0 * WS_NDATA, 130 * WS_NDATA, &rng);
		assert_int_equal(raid_wstream_wait(ws, sx), 0);
		ws_free(&x);
	}
	assert_int_equal(raid_wstream_close(ws), 0);
	assert_int_equal(raid_flush(t.v), 0);
	assert_int_equal(raid_scrub(t.v, false, &sr), 0);
	assert_int_equal(sr.mismatches, 0);
	verify(&t, "stream writes in any order");
	tl_vol_destroy(&t);
}

struct ws_holder {
	raid_vol_t *v;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool locked;
	int flush_rc;
};

/* Holds stripes 100-103 while it flushes: a flush waits for every write
 * in flight, so a stream that waited for this range with a chunk of its
 * own in flight would never get it. */
static void *ws_hold(void *p)
{
	struct ws_holder *h = p;
	struct raid_range r;

	raid_range_lock(h->v, &r, 0, 100, 104);
	pthread_mutex_lock(&h->mu);
	h->locked = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	usleep(50 * 1000);
	h->flush_rc = raid_flush(h->v);
	raid_range_unlock(h->v, &r);
	return NULL;
}

static void test_wstream_busy_range(void **state)
{
	struct tl_vol t;
	raid_wstream_t *ws;
	struct ws_blocks a, b;
	struct ws_holder h = { .flush_rc = -1 };
	uint64_t rng = 6, sa, sb;
	pthread_t thr;

	(void)state;
	assert_int_equal(tl_vol_create(&t, NULL, 1, WS_NDATA, 1, 4096, false),
	    0);
	assert_int_equal(raid_wstream_open(t.v, &ws), 0);
	sa = ws_put(&t, ws, &a, 2000 * WS_NDATA, 300 * WS_NDATA, &rng);
	assert_true(raid_wstream_done(ws) < sa);	/* a chunk in flight */
	h.v = t.v;
	pthread_mutex_init(&h.mu, NULL);
	pthread_cond_init(&h.cv, NULL);
	assert_int_equal(pthread_create(&thr, NULL, ws_hold, &h), 0);
	pthread_mutex_lock(&h.mu);
	while (!h.locked)
		pthread_cond_wait(&h.cv, &h.mu);
	pthread_mutex_unlock(&h.mu);
	/* Deadlock here shows as the runner's timeout; alarm() makes it a
	 * failure of its own. */
	alarm(60);
	sb = ws_put(&t, ws, &b, 100 * WS_NDATA, 4 * WS_NDATA, &rng);
	/* a was drained before the wait; b is the one in flight. */
	assert_int_equal(raid_wstream_done(ws), sa);
	assert_int_equal(sb, sa + 1);
	assert_int_equal(raid_wstream_close(ws), 0);
	alarm(0);
	pthread_join(thr, NULL);
	assert_int_equal(h.flush_rc, 0);
	assert_int_equal(raid_flush(t.v), 0);
	verify(&t, "stream after a busy range");
	ws_free(&a);
	ws_free(&b);
	pthread_mutex_destroy(&h.mu);
	pthread_cond_destroy(&h.cv);
	tl_vol_destroy(&t);
}

static void test_ranges(void **state)
{
	struct tl_vol t;
	uint8_t *buf;
	const uint32_t n = 3;

	assert_int_equal(tl_vol_create(&t, NULL, 2, n, 1, 16, false), 0);
	buf = calloc(4 * n, TL_BS);
	assert_non_null(buf);
	assert_int_equal(raid_read(t.v, t.nvbns, 1, buf), -ERANGE);
	assert_int_equal(raid_read(t.v, t.nvbns - 1, 2, buf), -ERANGE);
	assert_int_equal(raid_read(t.v, UINT64_MAX, 1, buf), -ERANGE);
	assert_int_equal(raid_read(t.v, UINT64_MAX - 1, 4, buf), -ERANGE);
	assert_int_equal(raid_write(t.v, t.nvbns, 1, buf), -ERANGE);
	assert_int_equal(raid_write(t.v, t.nvbns - 2, 3, buf), -ERANGE);
	assert_int_equal(raid_write(t.v, UINT64_MAX - 1, 4, buf), -ERANGE);
	assert_int_equal(raid_read(t.v, t.nvbns - 1, 1, buf), 0);
	assert_int_equal(raid_write_stripes(t.v, 1, 1, buf), -EINVAL);
	assert_int_equal(raid_write_stripes(t.v, n + 2, 1, buf), -EINVAL);
	assert_int_equal(raid_write_stripes(t.v, t.nvbns, 1, buf), -ERANGE);
	assert_int_equal(raid_write_stripes(t.v, t.nvbns - n, 2, buf),
	    -ERANGE);
	{
		uint8_t b[TL_BS];
		assert_int_equal(raid_reconstruct(t.v, t.nvbns, 0, b),
		    -ERANGE);
		assert_int_equal(raid_repair(t.v, t.nvbns, b), -ERANGE);
	}
	/* Nothing above changed any block. */
	verify(&t, "after refused calls");
	free(buf);
	tl_vol_destroy(&t);
}

static void test_create_refusals(void **state)
{
	struct tl_vol t;
	struct raid_create_opts c;
	struct raid_open_opts o;
	raid_vol_t *v = NULL;
	char *dir = tl_tmpdir_make(NULL, "filer-raid-create");
	char p[8][4200];
	const char *paths[8];

	for (int i = 0; i < 8; i++) {
		tl_path(p[i], sizeof(p[i]), dir, "d%d.img", i);
		paths[i] = p[i];
	}
	memset(&o, 0, sizeof(o));
	memset(&c, 0, sizeof(c));
	c.ngroups = 1;
	c.ndata = 3;
	c.nparity = 1;
	c.disk_blocks = 16;
	c.paths = paths;
	c.nparity = 0;
	assert_int_equal(raid_create(&c, &o, &v), -EINVAL);
	c.nparity = 4;
	assert_int_equal(raid_create(&c, &o, &v), -EINVAL);
	c.nparity = 1;
	c.ndata = 0;
	assert_int_equal(raid_create(&c, &o, &v), -EINVAL);
	c.ndata = RAID_MAX_DATA + 1;
	assert_int_equal(raid_create(&c, &o, &v), -EINVAL);
	c.ndata = 3;
	c.ngroups = 0;
	assert_int_equal(raid_create(&c, &o, &v), -EINVAL);
	c.ngroups = RAID_MAX_GROUPS + 1;
	assert_int_equal(raid_create(&c, &o, &v), -EINVAL);
	c.ngroups = 1;
	c.disk_blocks = 0;
	assert_int_equal(raid_create(&c, &o, &v), -EINVAL);
	c.disk_blocks = 16;
	/* The same path twice in one create. */
	paths[1] = paths[0];
	assert_int_not_equal(raid_create(&c, &o, &v), 0);
	paths[1] = p[1];
	tl_tmpdir_remove(dir);

	/* A disk that carries a label is not created over. */
	assert_int_equal(tl_vol_create(&t, NULL, 1, 3, 1, 16, false), 0);
	assert_int_equal(tl_vol_fill(&t, 3), 0);
	tl_vol_close(&t);
	{
		const char *cp[4];
		for (int i = 0; i < 4; i++)
			cp[i] = t.paths[i];
		c.paths = cp;
		assert_int_equal(raid_create(&c, &o, &v), -EEXIST);
	}
	assert_int_equal(tl_vol_open(&t), 0);
	verify(&t, "after refused create");
	tl_vol_destroy(&t);
}

/* ---- many writers on the same stripes ---- */

#define NTHREADS	4
#define CONC_STRIPES	32

struct conc {
	struct tl_vol *t;
	int id;
	int rc;
};

/* Thread id owns the blocks with (vbn % N) % NTHREADS == id of every
 * stripe: all threads hit every stripe, never the same block. */
static void *conc_writer(void *p)
{
	struct conc *c = p;
	struct tl_vol *t = c->t;
	uint64_t rng = 100 + (uint64_t)c->id;
	uint8_t buf[TL_BS];

	for (int i = 0; i < 400; i++) {
		uint64_t s = tl_rand_below(&rng, CONC_STRIPES);
		for (uint32_t k = (uint32_t)c->id; k < t->ndata;
		    k += NTHREADS) {
			uint64_t vbn = s * t->ndata + k;
			tl_fill_random(buf, TL_BS, &rng);
			int rc = raid_write(t->v, vbn, 1, buf);
			if (rc != 0) {
				c->rc = rc;
				return NULL;
			}
			memcpy(tl_shadow(t, vbn), buf, TL_BS);
		}
		if (i % 50 == 0 && (c->rc = raid_flush(t->v)) != 0)
			return NULL;
	}
	return NULL;
}

static void test_concurrent_partial_writes(void **state)
{
	struct tl_vol t;
	pthread_t th[NTHREADS];
	struct conc c[NTHREADS];
	struct raid_scrub_result r;
	const uint32_t n = 8, p = 2;

	assert_int_equal(tl_vol_create(&t, NULL, 1, n, p, CONC_STRIPES,
	    false), 0);
	assert_int_equal(tl_vol_fill(&t, 5), 0);
	for (int i = 0; i < NTHREADS; i++) {
		c[i].t = &t;
		c[i].id = i;
		c[i].rc = 0;
		assert_int_equal(pthread_create(&th[i], NULL, conc_writer,
		    &c[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(c[i].rc, 0);
	}
	assert_int_equal(raid_flush(t.v), 0);
	verify(&t, "after concurrent writes");
	memset(&r, 0, sizeof(r));
	assert_int_equal(raid_scrub(t.v, false, &r), 0);
	assert_int_equal(r.mismatches, 0);
	assert_int_equal(tl_vol_save_images(&t, "golden"), 0);
	tl_vol_close(&t);
	/* Each disk failed in turn: the parity written by racing partial
	 * writes reconstructs everything. */
	for (uint32_t d = 0; d < n + p; d++) {
		assert_int_equal(tl_vol_restore_images(&t, "golden"), 0);
		assert_int_equal(tl_vol_open(&t), 0);
		assert_int_equal(raid_fail_disk(t.v, d, "test"), 0);
		assert_int_equal(raid_fail_disk(t.v, (d + 3) % (n + p),
		    "test"), 0);
		verify(&t, "concurrent writes, two disks out");
		tl_vol_close(&t);
	}
	tl_vol_destroy(&t);
}

/* Concurrent readers and writers of different stripes, one degraded. */
struct mix {
	struct tl_vol *t;
	int id;
	int rc;
	uint64_t bad;
};

static void *mix_worker(void *p)
{
	struct mix *m = p;
	struct tl_vol *t = m->t;
	uint32_t n = t->ndata;
	uint64_t rng = 500 + (uint64_t)m->id;
	uint64_t nstripes = t->nvbns / n;
	uint8_t *buf = malloc((size_t)n * TL_BS);

	for (int i = 0; i < 300 && buf != NULL; i++) {
		/* Stripes s with s % NTHREADS == id belong to this thread. */
		uint64_t s = tl_rand_below(&rng, nstripes / NTHREADS) *
		    NTHREADS + (uint64_t)m->id;
		uint32_t off = (uint32_t)tl_rand_below(&rng, n);
		uint32_t cnt = 1 + (uint32_t)tl_rand_below(&rng, n - off);
		int rc;
		if (tl_rand_below(&rng, 2) == 0) {
			rc = tl_vol_write_random(t, s * n + off, cnt, &rng);
		} else {
			rc = raid_read(t->v, s * n, n, buf);
			if (rc == 0 && memcmp(buf, tl_shadow(t, s * n),
			    (size_t)n * TL_BS) != 0)
				m->bad++;
		}
		if (rc != 0) {
			m->rc = rc;
			break;
		}
	}
	free(buf);
	return NULL;
}

static void test_concurrent_mixed_degraded(void **state)
{
	struct tl_vol t;
	pthread_t th[NTHREADS];
	struct mix m[NTHREADS];

	assert_int_equal(tl_vol_create(&t, NULL, 2, 4, 1, 64, false), 0);
	assert_int_equal(tl_vol_fill(&t, 6), 0);
	assert_int_equal(raid_fail_disk(t.v, tl_disk(&t, 1, 2), "test"), 0);
	for (int i = 0; i < NTHREADS; i++) {
		memset(&m[i], 0, sizeof(m[i]));
		m[i].t = &t;
		m[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, mix_worker,
		    &m[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(m[i].rc, 0);
		assert_int_equal(m[i].bad, 0);
	}
	assert_int_equal(raid_flush(t.v), 0);
	verify(&t, "after mixed load");
	tl_vol_close(&t);
	assert_int_equal(tl_vol_open(&t), 0);
	verify(&t, "reopened after mixed load");
	tl_vol_destroy(&t);
}

/* Pages of path's page cache that are resident (mincore). */
static uint64_t resident_pages(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint64_t n = 0;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), len = (size_t)st.st_size;
	void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	unsigned char *vec = malloc(len / pg + 1);
	assert_non_null(vec);
	assert_int_equal(mincore(m, len, vec), 0);
	for (size_t i = 0; i < (len + pg - 1) / pg; i++)
		n += vec[i] & 1;
	free(vec);
	munmap(m, len);
	close(fd);
	return n;
}

/* Nothing of t's disks in the page cache (all of it is durable). */
static void drop_cache(struct tl_vol *t)
{
	for (size_t d = 0; d < t->npaths; d++) {
		int fd = open(t->paths[d], O_RDONLY | O_CLOEXEC);

		assert_true(fd >= 0);
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
}

static void test_partial_reads_no_readahead(void **state)
{
	enum { STRIPES = 256 };
	struct tl_vol t;
	uint64_t rng = 3, before[8], after;
	const uint32_t n = 4, p = 1;

	assert_int_equal(tl_vol_create(&t, NULL, 1, n, p, 16384, false), 0);
	assert_int_equal(raid_flush(t.v), 0);
	drop_cache(&t);
	for (size_t d = 0; d < t.npaths; d++)
		before[d] = resident_pages(t.paths[d]);
	/* One block at the start of each stripe from the middle of the
	 * disks on: each write reads the stripe's other N - 1 blocks, an
	 * access pattern a kernel's readahead takes for a sequential read. */
	for (uint64_t s = 0; s < STRIPES; s++)
		assert_int_equal(tl_vol_write_random(&t, (2048 + s) * n, 1,
		    &rng), 0);
	assert_int_equal(raid_flush(t.v), 0);
	for (size_t d = 0; d < t.npaths; d++) {
		/* The stripes' blocks, and a few of the volume's own records
		 * (intent, labels). */
		after = resident_pages(t.paths[d]);
		print_message("disk %zu: %llu pages resident before, %llu "
		    "after\n", d, (unsigned long long)before[d],
		    (unsigned long long)after);
		assert_true(after <= before[d] + STRIPES + 16);
	}
	verify(&t, "readahead volume");
	tl_vol_destroy(&t);
	(void)state;
}

/*
 * A large write leaves the page cache once a sync made it durable (wafl
 * caches what it uses itself), and reads back.  The pages go in the
 * disks' I/O threads after the flush returned, so the check polls, for
 * at most 5 s.  What stays: the volume's own records and the small write.
 */
static void test_flush_forgets_large_writes(void **state)
{
	enum { BIG = 1024 };	/* stripes: 4 MiB per disk */
	const uint32_t n = 4, p = 1;
	struct tl_vol t;
	uint64_t rng = 5, after[8];
	bool gone = false;

	assert_int_equal(tl_vol_create(&t, NULL, 1, n, p, 16384, false), 0);
	if (tl_is_tmpfs(t.dir) == 1) {
		/* tmpfs keeps every page: the hint has nothing to drop. */
		tl_vol_destroy(&t);
		skip();
	}
	assert_int_equal(raid_flush(t.v), 0);
	drop_cache(&t);
	assert_int_equal(tl_vol_write_random(&t, 4096 * n, BIG * n, &rng),
	    0);
	assert_int_equal(tl_vol_write_random(&t, 8192 * n, n, &rng), 0);
	assert_int_equal(raid_flush(t.v), 0);
	for (int tries = 0; !gone && tries < 250; tries++) {
		if (tries > 0)
			usleep(20000);
		gone = true;
		for (size_t d = 0; d < t.npaths; d++) {
			after[d] = resident_pages(t.paths[d]);
			gone = gone && after[d] <= 16;
		}
	}
	for (size_t d = 0; d < t.npaths; d++)
		print_message("disk %zu: %llu pages resident after the flush "
		    "(%d written)\n", d, (unsigned long long)after[d],
		    BIG + 1);
	assert_true(gone);
	verify(&t, "forget volume");
	tl_vol_destroy(&t);
	(void)state;
}

/*
 * Dirty pages of the file at path in the page cache, from the kernel's
 * page flags (/proc/self/pagemap for the frame, /proc/kpageflags for its
 * KPF_DIRTY bit); -1 where those are not readable (they need
 * CAP_SYS_ADMIN).  Reading them changes no page's state.
 */
static int64_t dirty_pages(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	int kf = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	int64_t n = -1;
	struct stat st;

	if (fd < 0 || pm < 0 || kf < 0 || fstat(fd, &st) != 0)
		goto out;
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), len = (size_t)st.st_size;
	uint8_t *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		goto out;
	unsigned char *vec = malloc(len / pg + 1);
	if (vec != NULL && mincore(m, len, vec) == 0) {
		n = 0;
		for (size_t i = 0; i < len / pg && n >= 0; i++) {
			uint64_t e, fl;

			if (!(vec[i] & 1))
				continue;	/* not cached: not dirty */
			(void)*(volatile uint8_t *)(m + i * pg);	/* map it */
			if (pread(pm, &e, 8, (off_t)(((uintptr_t)m / pg + i) *
			    8)) != 8 || !(e >> 63) ||
			    (e & ((1ull << 55) - 1)) == 0 ||
			    pread(kf, &fl, 8, (off_t)((e & ((1ull << 55) - 1)) *
			    8)) != 8)
				n = -1;
			else if (fl & (1ull << 4))	/* KPF_DIRTY */
				n++;
		}
	}
	free(vec);
	munmap(m, len);
out:
	if (fd >= 0)
		close(fd);
	if (pm >= 0)
		close(pm);
	if (kf >= 0)
		close(kf);
	return n;
}

/*
 * A large write starts its writeback at once, before any flush: its pages
 * turn clean within moments (here at the first look), where the kernel's
 * own writeback leaves them dirty for seconds (4 to 5 s on ext4 here, with
 * the default 5 s journal commit; dirty_expire_centisecs says 30 s).
 * Polls for at most 0.5 s.
 */
static void test_large_writes_start_writeback(void **state)
{
	enum { BIG = 1024 };	/* stripes: 4 MiB per disk */
	const uint32_t n = 4, p = 1;
	struct tl_vol t;
	uint64_t rng = 7;
	int64_t left[8];
	bool clean = false;

	assert_int_equal(tl_vol_create(&t, NULL, 1, n, p, 16384, false), 0);
	if (tl_is_tmpfs(t.dir) == 1 || dirty_pages(t.paths[0]) < 0) {
		/* tmpfs has no writeback; page flags need privilege. */
		tl_vol_destroy(&t);
		skip();
	}
	assert_int_equal(raid_flush(t.v), 0);
	assert_int_equal(tl_vol_write_random(&t, 4096 * n, BIG * n, &rng),
	    0);
	int tries;
	for (tries = 0; !clean && tries < 25; tries++) {
		if (tries > 0)
			usleep(20000);
		clean = true;
		for (size_t d = 0; d < t.npaths; d++) {
			left[d] = dirty_pages(t.paths[d]);
			clean = clean && left[d] >= 0 && left[d] <= 16;
		}
	}
	for (size_t d = 0; d < t.npaths; d++)
		print_message("disk %zu: %lld of %d written pages dirty "
		    "after %d ms, before any flush\n", d, (long long)left[d],
		    BIG, (tries - 1) * 20);
	assert_true(clean);
	assert_int_equal(raid_flush(t.v), 0);
	verify(&t, "writeback volume");
	tl_vol_destroy(&t);
	(void)state;
}

/*
 * raid_writev takes each block where it lies: a run from a partial stripe
 * through whole ones to another partial one, from blocks allocated one by
 * one and handed over in reverse allocation order, reads back as written,
 * on a healthy group and with a disk out.
 */
static void test_writev_scattered_blocks(void **state)
{
	enum { NB = 3 + 4 * 40 + 2 };
	const uint32_t n = 4, p = 2;
	struct tl_vol t;
	uint64_t rng = 11;
	uint8_t *blk[NB];
	const uint8_t *ptr[NB];

	assert_int_equal(tl_vol_create(&t, NULL, 1, n, p, 4096, false), 0);
	for (int round = 0; round < 2; round++) {
		const uint64_t vbn = 1 + (uint64_t)round * 1000;

		if (round == 1)
			assert_int_equal(raid_fail_disk(t.v, 2, "test"), 0);
		for (int i = 0; i < NB; i++) {
			blk[i] = malloc(RAID_BLOCK_SIZE);
			assert_non_null(blk[i]);
			tl_fill_random(blk[i], RAID_BLOCK_SIZE, &rng);
		}
		for (int i = 0; i < NB; i++)
			ptr[i] = blk[NB - 1 - i];
		assert_int_equal(raid_writev(t.v, vbn, NB, ptr), 0);
		for (int i = 0; i < NB; i++)
			memcpy(tl_shadow(&t, vbn + (uint64_t)i), ptr[i],
			    RAID_BLOCK_SIZE);
		assert_int_equal(raid_flush(t.v), 0);
		verify(&t, round == 0 ? "writev, healthy" : "writev, degraded");
		for (int i = 0; i < NB; i++)
			free(blk[i]);
	}
	tl_vol_destroy(&t);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_geometry_and_mapping),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_create_refusals),
		cmocka_unit_test(test_concurrent_partial_writes),
		cmocka_unit_test(test_concurrent_mixed_degraded),
		cmocka_unit_test(test_partial_reads_no_readahead),
		cmocka_unit_test(test_large_writes_start_writeback),
		cmocka_unit_test(test_flush_forgets_large_writes),
		cmocka_unit_test(test_writev_scattered_blocks),
		cmocka_unit_test(test_intent_marks_ahead),
		cmocka_unit_test(test_intent_two_fronts),
		cmocka_unit_test(test_wstream_writes),
		cmocka_unit_test(test_wstream_busy_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
