/*
 * tests/mirror/test_mirror_link.c: the link goes away.  A catch-up sends
 * exactly the blocks born after the destination's generation (counted
 * against a birth walk of the source), snapshots made while the link was
 * down included; a proxy cuts the connection at random byte offsets (at
 * least 50 times, seeded) while CPs go on: the replica only moves forward,
 * ends equal to the source, and both check clean.  A baseline cut several
 * times resumes from the destination's checkpoint each time: well under
 * 1.5 times the volume's blocks are sent in all, the blocks read back to
 * verify the resumed part are counted apart, the source's bytes_out
 * grows while the link is up, and the replica matches.  A
 * destination restarted in the middle of a baseline resumes it from its
 * checkpoint file (also when one of the blocks it names was damaged
 * meanwhile: the checkpoint is cut there and the next attempt resumes
 * before it); a source restarted there has lost the root and starts
 * over, and says so.  A destination that adopted a root whose
 * acknowledgement the link lost, while the source fell back to a
 * snapshot of the root acknowledged before, is caught up from the root
 * it adopted (kept as a fallback snapshot too), without a resync.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "mirror/wire.h"
#include "tests/mirror/tm.h"
#include "wafl/ondisk.h"
#include "wafl/wafl_impl.h"

static int count_cb(void *arg, uint64_t vbn, uint64_t birth,
    uint32_t cksum, const void *data,
    unsigned flags)
{
	(*(uint64_t *)arg)++;
	return 0;
}

static void wait_state(struct tm_pair *p, enum mir_state want)
{
	struct mir_source_stats ss;

	for (int i = 0; i < 500; i++) {
		mir_source_stats(p->ms, &ss);
		if (ss.state == want)
			return;
		usleep(10000);
	}
	fail_msg("source never reached state %s", mir_state_name(want));
}

/* The destination's durable fsinfo of the root it serves lists that
 * root alone in its ring (M4): a later catch-up may write over any older
 * root, which the source no longer keeps, and a break in the middle of
 * it must not mount a ring naming such a tree. */
static void dest_ring_is_served_root(struct tm_pair *p)
{
	uint64_t g = wafl_generation(mir_dest_volume(p->md));
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	struct wafl_fsinfo fi;

	assert_non_null(blk);
	assert_int_equal(raid_read(p->dst->raid, g % WAFL_FSINFO_SLOTS, 1,
	    blk), 0);
	assert_int_equal(wafl_fsinfo_decode(blk, &fi), 0);
	assert_int_equal(fi.gen, g);
	if (fi.ring_len != 1)
		fail_msg("the destination's fsinfo %llu lists %u roots in its "
		    "ring, the oldest %llu", (unsigned long long)g,
		    fi.ring_len,
		    (unsigned long long)fi.ring[fi.ring_len - 1].gen);
	assert_int_equal(fi.ring[0].gen, g);
	free(blk);
}

static void test_catch_up_sends_only_new_blocks(void **state)
{
	struct tm_pair *p = tm_pair_new();
	const uint32_t big = 2 << 20;
	uint8_t *a = malloc(big);

	struct wafl_obj f = tm_file(p->src->v, "big");
	tl_fill_pattern(a, big, 5);
	for (uint32_t off = 0; off < big; off += WAFL_WRITE_MAX)
		tm_write(p->src->v, &f, off, a + off, WAFL_WRITE_MAX);
	assert_int_equal(wafl_sync(p->src->v), 0);
	tm_dest_start(p);
	tm_source_start(p);
	assert_int_equal(mir_source_wait(p->ms, 0, 20000), 0);
	struct mir_source_stats s0;
	mir_source_stats(p->ms, &s0);
	assert_true(s0.blocks_sent_walk >= big / 4096);

	/* The link is down while CPs change 8 KiB each and a snapshot
	 * is taken. */
	/* A few CPs shipped as they are written. */
	for (int i = 0; i < 4; i++) {
		tl_fill_pattern(a, 4096, (uint64_t)i + 30);
		tm_write(p->src->v, &f, (uint64_t)i * 4096, a, 4096);
		assert_int_equal(wafl_sync(p->src->v), 0);
	}
	assert_int_equal(mir_source_wait(p->ms, wafl_generation(p->src->v),
	    20000), 0);
	dest_ring_is_served_root(p);
	mir_source_stats(p->ms, &s0);
	mir_source_quiesce(p->ms);
	wait_state(p, MIR_QUIESCED);
	uint64_t d = wafl_generation(mir_dest_volume(p->md));
	for (int i = 0; i < 7; i++) {
		tl_fill_pattern(a, 8192, (uint64_t)i + 50);
		tm_write(p->src->v, &f, (uint64_t)i * 65536, a, 8192);
		assert_int_equal(wafl_sync(p->src->v), 0);
		if (i == 3)
			assert_int_equal(wafl_snap_create(p->src->v, "down",
			    NULL), 0);
	}
	uint64_t g = wafl_generation(p->src->v);
	assert_int_equal(wafl_generation(mir_dest_volume(p->md)), d);

	struct mir_source_stats s1;
	mir_source_stats(p->ms, &s1);
	assert_true(s1.quiesce_requested);	/* filerd's "quiesced" */
	mir_source_resume(p->ms);
	mir_source_stats(p->ms, &s1);
	assert_false(s1.quiesce_requested);
	assert_int_not_equal(s1.state, MIR_QUIESCED);
	assert_int_equal(mir_source_wait(p->ms, g, 20000), 0);
	mir_source_stats(p->ms, &s1);
	uint64_t sent = s1.blocks_sent_walk - s0.blocks_sent_walk;
	/* What changed: blocks of the newest root born after d (the walk
	 * may go in two steps to keep M2; the first step's target is
	 * retained and its changed blocks are a subset of these plus those
	 * the second step replaced). */
	uint64_t changed = 0;
	assert_int_equal(wafl_birth_walk(p->src->v, g, d, count_cb, &changed),
	    0);
	fprintf(stderr, "catch-up %llu -> %llu: %llu blocks sent in %llu "
	    "transfers, %llu blocks of the newest root born after %llu; file "
	    "holds %u blocks\n", (unsigned long long)d, (unsigned long long)g,
	    (unsigned long long)sent,
	    (unsigned long long)(s1.transfers_walk - s0.transfers_walk),
	    (unsigned long long)changed, (unsigned long long)d, big / 4096);
	assert_true(sent >= changed);
	assert_true(sent < 3 * changed + 64);
	assert_true(sent < big / 4096 / 4);
	/* The last transfer sent exactly what its birth walk names, plus
	 * snapshot blocks the active tree no longer holds. */
	uint64_t last = 0;
	assert_int_equal(wafl_birth_walk(p->src->v, s1.last_walk_target,
	    s1.last_walk_base, count_cb, &last), 0);
	assert_true(s1.last_walk_blocks >= last);

	/* Progress of the last catch-up: its total estimated from the CPs'
	 * block counts (an upper bound of what it sends). */
	fprintf(stderr, "last catch-up: %llu bytes sent of an estimated "
	    "%llu, ETA %llu\n", (unsigned long long)s1.walk_bytes_done,
	    (unsigned long long)s1.walk_bytes_total,
	    (unsigned long long)s1.walk_eta_s);
	assert_false(s1.walk_active);
	assert_true(s1.walk_bytes_done == s1.last_walk_blocks * 4096);
	assert_true(s1.walk_bytes_total >= s1.walk_bytes_done);
	assert_int_equal(s1.walk_eta_s, 0);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	tm_snap_equal(p->src->v, mir_dest_volume(p->md), "down");
	dest_ring_is_served_root(p);
	struct mir_dest_stats ds;
	mir_dest_stats(p->md, &ds);
	assert_int_equal(ds.rejects, 0);
	assert_int_equal(ds.mirror_reads, 0);
	mir_source_stop(p->ms);
	p->ms = NULL;
	tm_check_clean(mir_dest_volume(p->md), "replica");
	tm_check_clean(p->src->v, "source");
	free(a);
	tm_pair_free(p);
}

/* ------------------------------------------------------------ proxy */

struct proxy {
	int lfd;
	uint16_t port;
	uint16_t to;
	uint64_t seed;
	_Atomic bool stop;
	_Atomic bool no_cuts;
	_Atomic bool cut_now;		/* cut the current connection */
	_Atomic uint64_t cuts, conns;
	uint64_t cut_min, cut_span;	/* 0: cut within the first 400 kB */
	pthread_t t;
};

/* Forward one connection until the cut point (bytes from the source). */
static void proxy_conn(struct proxy *px, int a)
{
	int b = mir_tcp_connect("127.0.0.1", px->to, 2000);
	uint64_t cut = px->cut_span == 0 ?
	    1 + tl_rand_below(&px->seed, 400000) :
	    px->cut_min + tl_rand_below(&px->seed, px->cut_span);
	uint64_t fwd = 0;
	static uint8_t buf[65536];

	if (b < 0) {
		close(a);
		return;
	}
	/* Blocking sends: a destination busy for a while (verifying a
	 * resumed baseline) must not look like a cut. */
	(void)fcntl(b, F_SETFL, fcntl(b, F_GETFL) & ~O_NONBLOCK);
	px->conns++;
	while (!px->stop) {
		struct pollfd pf[2] = { { .fd = a, .events = POLLIN },
		    { .fd = b, .events = POLLIN } };
		if (px->cut_now) {
			px->cut_now = false;
			px->cuts++;
			break;
		}
		if (poll(pf, 2, 50) <= 0)
			continue;
		if (pf[0].revents) {
			size_t want = sizeof(buf);
			if (!px->no_cuts && cut - fwd < want)
				want = (size_t)(cut - fwd);
			ssize_t n = recv(a, buf, want, 0);
			if (n <= 0 || send(b, buf, (size_t)n, MSG_NOSIGNAL) != n)
				break;
			fwd += (uint64_t)n;
			if (!px->no_cuts && fwd >= cut) {
				px->cuts++;
				break;
			}
		}
		if (pf[1].revents) {
			ssize_t n = recv(b, buf, sizeof(buf), 0);
			if (n <= 0 || send(a, buf, (size_t)n, MSG_NOSIGNAL) != n)
				break;
		}
	}
	shutdown(a, SHUT_RDWR);
	shutdown(b, SHUT_RDWR);
	close(a);
	close(b);
}

static void *proxy_main(void *arg)
{
	struct proxy *px = arg;

	while (!px->stop) {
		struct pollfd pf = { .fd = px->lfd, .events = POLLIN };
		if (poll(&pf, 1, 50) <= 0)
			continue;
		int a = accept(px->lfd, NULL, NULL);
		if (a >= 0)
			proxy_conn(px, a);
	}
	return NULL;
}

/* Listen on a free port and forward each connection to `to`. */
static void proxy_start(struct proxy *px, uint16_t to)
{
	int fd = mir_tcp_listen("127.0.0.1", 0, &px->port);

	assert_true(fd >= 0);
	px->lfd = fd;
	px->to = to;
	assert_int_equal(pthread_create(&px->t, NULL, proxy_main, px), 0);
}

/* Stop the source, then the proxy; the replica is the source's tree and
 * checks clean. */
static void finish_through_proxy(struct tm_pair *p, struct proxy *px)
{
	mir_source_stop(p->ms);
	p->ms = NULL;
	px->stop = true;
	pthread_join(px->t, NULL);
	close(px->lfd);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	tm_check_clean(mir_dest_volume(p->md), "replica");
}

/* A destination that checkpoints a baseline every 256 blocks to ckpt. */
static void dest_start_ckpt(struct tm_pair *p, const char *ckpt)
{
	struct mir_dest_opts o = { .key = p->key, .key_len = sizeof(p->key),
	    .allow_baseline = true, .io_timeout_ms = 5000,
	    .checkpoint_path = ckpt, .checkpoint_blocks = 256 };

	memcpy(o.rel_id, p->id, 16);
	assert_int_equal(mir_dest_start(p->dst->raid, &o, &p->md), 0);
	p->port = mir_dest_port(p->md);
}

/* The generation in the destination's fsinfo slot s, or 0. */
static uint64_t slot_gen(raid_vol_t *raid, uint64_t s)
{
	uint8_t blk[WAFL_BLOCK_SIZE];
	struct wafl_fsinfo fi;

	if (raid_read(raid, s, 1, blk) != 0 || wafl_fsinfo_decode(blk, &fi) != 0)
		return 0;
	return fi.gen;
}

/*
 * The destination writes root n+1 and is held before it switches to it
 * (its replica's cp_serial, as a running check holds it); the link is
 * cut, so the source never hears the acknowledgement; the source goes on
 * until its fallback turns the acknowledged root n into a snapshot and
 * lets every hold go.  Then the destination switches to n+1 and the link
 * comes back: n+1 was sent, so it was kept as a fallback snapshot too
 * (M1, M6), and the catch-up runs from it.  (Before, only n was kept:
 * "the destination's generation is no longer retained here".)
 */
static void test_fallback_keeps_sent_roots(void **state)
{
	struct tm_pair *p = tm_pair_new();
	struct proxy px = { .seed = 0xfa11, .no_cuts = true };
	uint8_t buf[64 * 4096];
	struct mir_source_stats st;

	(void)state;
	struct wafl_obj f = tm_file(p->src->v, "churn");
	tl_fill_pattern(buf, sizeof(buf), 1);
	tm_write(p->src->v, &f, 0, buf, sizeof(buf));
	assert_int_equal(wafl_sync(p->src->v), 0);
	tm_dest_start(p);
	proxy_start(&px, p->port);
	struct mir_source_opts o = { .key = p->key, .key_len = sizeof(p->key),
	    .host = "127.0.0.1", .port = px.port, .mode = MIR_SYNC,
	    .raid = p->src->raid, .allow_baseline = true, .retry_ms = 20,
	    .io_timeout_ms = 1000, .fallback_blocks = 200 };
	memcpy(o.rel_id, p->id, 16);
	assert_int_equal(mir_source_start(p->src->v, &o, &p->ms), 0);
	tm_sync(p);
	wafl_vol_t *rep = mir_dest_volume(p->md);
	uint64_t n = wafl_generation(rep);

	/* Root n+1 reaches the destination's disks; its switch waits. */
	pthread_mutex_lock(&rep->cp_serial);
	tl_fill_pattern(buf, sizeof(buf), 2);
	tm_write(p->src->v, &f, 0, buf, sizeof(buf));
	assert_int_equal(wafl_sync(p->src->v), 0);
	uint64_t g = wafl_generation(p->src->v);
	for (int i = 0; i < 500 && slot_gen(p->dst->raid, g % 2) != g; i++)
		usleep(10000);
	assert_int_equal(slot_gen(p->dst->raid, g % 2), g);
	assert_int_equal(wafl_generation(rep), n);
	/* The acknowledgement never arrives; CPs go on past the bound. */
	px.cut_now = true;
	for (int i = 0; i < 8; i++) {
		tl_fill_pattern(buf, sizeof(buf), 10 + (uint64_t)i);
		tm_write(p->src->v, &f, 0, buf, sizeof(buf));
		assert_int_equal(wafl_sync(p->src->v), 0);
	}
	for (int i = 0; i < 1500; i++) {
		mir_source_stats(p->ms, &st);
		if (st.fallbacks > 0)
			break;
		usleep(10000);
	}
	assert_true(st.fallbacks > 0);
	pthread_mutex_unlock(&rep->cp_serial);
	/* The destination serves n+1; the source catches up from it. */
	tm_sync(p);
	mir_source_stats(p->ms, &st);
	assert_true(st.last_walk_base >= g);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	mir_source_stop(p->ms);
	p->ms = NULL;
	px.stop = true;
	pthread_join(px.t, NULL);
	close(px.lfd);
	tm_check_clean(p->src->v, "source");
	tm_check_clean(mir_dest_volume(p->md), "replica");
	tm_pair_free(p);
}

static void test_link_cuts(void **state)
{
	struct tm_pair *p = tm_pair_new();
	struct proxy px = { .seed = 0x5eed };
	uint8_t buf[16384];
	struct wafl_obj f[4];

	for (int i = 0; i < 4; i++) {
		char name[32];
		snprintf(name, sizeof(name), "cut-%d", i);
		f[i] = tm_file(p->src->v, name);
	}
	assert_int_equal(wafl_sync(p->src->v), 0);
	tm_dest_start(p);
	proxy_start(&px, p->port);
	tm_source_start_opts(p, MIR_SYNC, px.port, 5, 0);

	uint64_t last_gen = 0, seed = 99;
	uint64_t t0 = fl_now_mono_ns();
	int i;
	for (i = 0; i < 3000 && px.cuts < 60; i++) {
		int k = (int)tl_rand_below(&seed, 4);
		tl_fill_random(buf, sizeof(buf), &seed);
		tm_write(p->src->v, &f[k], tl_rand_below(&seed, 64) * 4096,
		    buf, (uint32_t)(4096 * (1 + tl_rand_below(&seed, 4))));
		if (i % 25 == 0) {
			char name[32];
			snprintf(name, sizeof(name), "extra-%d", i);
			(void)tm_file(p->src->v, name);
		}
		assert_int_equal(wafl_sync(p->src->v), 0);
		wafl_vol_t *rv = mir_dest_volume(p->md);
		if (rv != NULL) {
			uint64_t g = wafl_generation(rv);
			assert_true(g >= last_gen);	/* never goes back */
			last_gen = g;
		}
		usleep(1000);
		/* Idle, 60 cuts take about 20 s; under load the bound is
		 * the 3000 CPs or this. */
		if (fl_now_mono_ns() - t0 > 150ull * 1000000000ull)
			break;
	}
	px.no_cuts = true;
	assert_int_equal(mir_source_wait(p->ms, 0, 30000), 0);
	struct mir_source_stats ss;
	struct mir_dest_stats ds;
	mir_source_stats(p->ms, &ss);
	mir_dest_stats(p->md, &ds);
	fprintf(stderr, "link cuts: %llu cuts over %llu connections, %d CPs; "
	    "source: %llu CP transfers, %llu walks (%llu blocks), %llu CP "
	    "blocks (%llu as DELTA); destination: %llu transfers adopted, "
	    "%llu rejects, %llu DELTAs refused, mirror-path reads %llu\n",
	    (unsigned long long)px.cuts, (unsigned long long)px.conns, i,
	    (unsigned long long)ss.transfers_cp,
	    (unsigned long long)ss.transfers_walk,
	    (unsigned long long)ss.blocks_sent_walk,
	    (unsigned long long)ss.blocks_sent_cp,
	    (unsigned long long)ss.blocks_delta,
	    (unsigned long long)ds.transfers, (unsigned long long)ds.rejects,
	    (unsigned long long)ds.deltas_refused,
	    (unsigned long long)ds.mirror_reads);
	assert_true(px.cuts >= 50);
	assert_int_equal(ds.mirror_reads, 0);
	/* Each connection's windows start empty at both ends and follow
	 * the same frames, however the link was cut: the destination never
	 * lacked a DELTA's base or found bad ranges, and CPs after the last
	 * catch-up go as DELTAs against what that walk left in the windows. */
	assert_int_equal(ds.deltas_refused, 0);
	uint64_t deltas0 = ss.blocks_delta;
	for (int r = 0; r < 5; r++) {
		tl_fill_random(buf, sizeof(buf), &seed);
		tm_write(p->src->v, &f[r % 4], 4096 * (uint64_t)r, buf, 4096);
		assert_int_equal(wafl_sync(p->src->v), 0);
	}
	assert_int_equal(mir_source_wait(p->ms, 0, 30000), 0);
	mir_source_stats(p->ms, &ss);
	mir_dest_stats(p->md, &ds);
	assert_true(ss.blocks_delta > deltas0);
	assert_int_equal(ds.deltas_refused, 0);
	finish_through_proxy(p, &px);
	tm_check_clean(p->src->v, "source");
	tm_pair_free(p);
}

/* ------------------------------------------------ baseline resume */

static void test_baseline_resumes_after_cuts(void **state)
{
	struct tm_pair *p = tm_pair_new();
	struct proxy px = { .seed = 0xba5e, .cut_min = 3u << 20,
	    .cut_span = 3u << 20 };
	const uint32_t fsize = 4u << 20;
	uint8_t *a = malloc(fsize);
	char ckpt[600];

	/* About 6,000 blocks: 6 files of 4 MiB. */
	for (int i = 0; i < 6; i++) {
		char name[32];
		snprintf(name, sizeof(name), "base-%d", i);
		struct wafl_obj f = tm_file(p->src->v, name);
		tl_fill_pattern(a, fsize, (uint64_t)i + 7);
		for (uint32_t off = 0; off < fsize; off += WAFL_WRITE_MAX)
			tm_write(p->src->v, &f, off, a + off, WAFL_WRITE_MAX);
		assert_int_equal(wafl_sync(p->src->v), 0);
	}
	uint64_t g0 = wafl_generation(p->src->v);
	uint64_t vol_blocks = 0;
	assert_int_equal(wafl_birth_walk(p->src->v, g0, 0, count_cb,
	    &vol_blocks), 0);

	snprintf(ckpt, sizeof(ckpt), "%s/mirror.ckpt", p->dst->dir);
	dest_start_ckpt(p, ckpt);
	proxy_start(&px, p->port);
	tm_source_start_opts(p, MIR_SYNC, px.port, 5, 0);

	/* Watch the progress while the baseline runs; bytes_out moves
	 * with it, the link up. */
	bool saw_progress = false, bytes_grew = false;
	uint64_t bytes_first = 0;
	struct mir_source_stats ss;
	for (int i = 0; i < 3000; i++) {
		mir_source_stats(p->ms, &ss);
		if (ss.walk_active && ss.walk_bytes_total != 0 &&
		    ss.walk_bytes_done > 0 && ss.walk_bytes_done <
		    ss.walk_bytes_total)
			saw_progress = true;
		if (ss.walk_active && ss.acked_gen < g0) {
			if (bytes_first == 0)
				bytes_first = ss.bytes_out;
			else if (ss.bytes_out > bytes_first)
				bytes_grew = true;
		}
		if (ss.acked_gen >= g0)
			break;
		usleep(2000);
	}
	assert_int_equal(mir_source_wait(p->ms, g0, 30000), 0);
	px.no_cuts = true;
	mir_source_stats(p->ms, &ss);
	struct mir_dest_stats ds;
	mir_dest_stats(p->md, &ds);
	fprintf(stderr, "baseline of %llu blocks cut %llu times: %llu blocks "
	    "crossed the link (%.2fx; the source wrote %llu into its socket), "
	    "%llu resumes, %llu blocks not resent, %llu "
	    "restarts; destination: %llu blocks read back to verify, "
	    "mirror-path reads %llu; progress %llu of %llu bytes, last rate "
	    "%llu B/s, seen mid-transfer: %s, bytes_out growing with it: "
	    "%s\n",
	    (unsigned long long)vol_blocks, (unsigned long long)px.cuts,
	    (unsigned long long)ds.blocks_received,
	    (double)ds.blocks_received / (double)vol_blocks,
	    (unsigned long long)ss.blocks_sent_walk,
	    (unsigned long long)ss.baseline_resumes,
	    (unsigned long long)ss.blocks_not_resent,
	    (unsigned long long)ss.baseline_restarts,
	    (unsigned long long)ds.resume_reads,
	    (unsigned long long)ds.mirror_reads,
	    (unsigned long long)ss.walk_bytes_done,
	    (unsigned long long)ss.walk_bytes_total,
	    (unsigned long long)ss.walk_rate_bps, saw_progress ? "yes" : "no",
	    bytes_grew ? "yes" : "no");
	assert_true(px.cuts >= 3);
	assert_true(bytes_grew);
	assert_true(ss.baseline_resumes >= 3);
	/* What crossed the link: the blocks the destination received (the
	 * source's count includes what sat in its socket buffers when the
	 * link was cut). */
	assert_true(ds.blocks_received * 2 < vol_blocks * 3);
	assert_int_equal(ss.baseline_restarts, 0);
	assert_true(ds.resume_reads >= ss.blocks_not_resent);
	assert_int_equal(ds.baseline_resumes, ss.baseline_resumes);
	assert_int_equal(ds.mirror_reads, 0);
	assert_int_equal(ds.ckpt_gen, 0);	/* removed once adopted */
	assert_int_equal(access(ckpt, F_OK), -1);
	assert_true(ss.walk_bytes_total >= vol_blocks * 4096 / 2);
	assert_int_equal(ss.walk_eta_s, 0);

	finish_through_proxy(p, &px);
	free(a);
	tm_pair_free(p);
}

/* About 6,000 blocks: 6 files of 4 MiB; the newest generation. */
static uint64_t fill_volume(struct tm_pair *p, uint64_t *blocks)
{
	const uint32_t fsize = 4u << 20;
	uint8_t *a = malloc(fsize);

	for (int i = 0; i < 6; i++) {
		char name[32];
		snprintf(name, sizeof(name), "base-%d", i);
		struct wafl_obj f = tm_file(p->src->v, name);
		tl_fill_pattern(a, fsize, (uint64_t)i + 7);
		for (uint32_t off = 0; off < fsize; off += WAFL_WRITE_MAX)
			tm_write(p->src->v, &f, off, a + off, WAFL_WRITE_MAX);
		assert_int_equal(wafl_sync(p->src->v), 0);
	}
	free(a);
	uint64_t g = wafl_generation(p->src->v);
	*blocks = 0;
	assert_int_equal(wafl_birth_walk(p->src->v, g, 0, count_cb, blocks),
	    0);
	return g;
}

enum restart_what {
	RESTART_DEST, RESTART_DEST_DAMAGED, RESTART_SOURCE,
	RESTART_SOURCE_TWICE,		/* stopped again before a session */
	RESTART_SOURCE_RELEASED,	/* its holds released while stopped */
	RESTART_SOURCE_FALLBACK,	/* its fallback made the baseline's
					   root a snapshot while stopped */
	RESTART_SOURCE_FALLBACK_SNAPDEL	/* ... and a snapshot that root
					   names deleted since */
};

/* The first len bytes of file name on the source: pattern seed, one
 * CP. */
static void put_pattern(struct tm_pair *p, const char *name, uint32_t len,
    uint64_t seed)
{
	uint8_t *b = malloc(len);

	assert_non_null(b);
	struct wafl_obj f = tm_file(p->src->v, name);
	tl_fill_pattern(b, len, seed);
	for (uint32_t off = 0; off < len; off += WAFL_WRITE_MAX)
		tm_write(p->src->v, &f, off, b + off, WAFL_WRITE_MAX);
	assert_int_equal(wafl_sync(p->src->v), 0);
	free(b);
}

/*
 * A source started where no destination listens, with a fallback bound
 * of 100 blocks, while the volume is written: the baseline's root g0
 * becomes snapshot mirror.base.<g0> and its hold goes.  Stopped again.
 */
static void fall_back_while_away(struct tm_pair *p, uint64_t g0,
    bool snapdel)
{
	struct mir_source_opts o = { .key = p->key, .key_len = sizeof(p->key),
	    .host = "127.0.0.1", .port = 1, .mode = MIR_SYNC,
	    .raid = p->src->raid, .allow_baseline = true, .retry_ms = 20,
	    .io_timeout_ms = 1000, .fallback_blocks = 100 };
	struct mir_source_stats st = { 0 };
	uint64_t held[WAFL_FSI_HOLDS];
	size_t n = 0;

	memcpy(o.rel_id, p->id, 16);
	for (int i = 0; i < 3; i++)
		put_pattern(p, "base-0", 1u << 20, 100 + (uint64_t)i);
	assert_true(wafl_pending_blocks(p->src->v) > 100);
	assert_int_equal(mir_source_start(p->src->v, &o, &p->ms), 0);
	for (int i = 0; i < 1000 && st.fallbacks == 0; i++) {
		usleep(10000);
		mir_source_stats(p->ms, &st);
	}
	assert_int_equal(st.fallbacks, 1);
	assert_int_equal(st.base_snap_gen, g0);
	mir_source_stop(p->ms);
	p->ms = NULL;
	char name[64];
	uint64_t id;
	snprintf(name, sizeof(name), "mirror.base.%llu",
	    (unsigned long long)g0);
	assert_int_equal(wafl_snap_lookup(p->src->v, name, &id), 0);
	assert_int_equal(wafl_held_roots(p->src->v, held, WAFL_FSI_HOLDS,
	    &n), 0);
	for (size_t i = 0; i < n && i < WAFL_FSI_HOLDS; i++)
		assert_true(held[i] != g0);
	if (!snapdel)
		return;
	/* Snapshot "u", which g0's table names, goes, and the volume is
	 * written through: the base keeps u's blocks (the destination will
	 * serve g0 with u), so the resumed walk sends u whole. */
	assert_int_equal(wafl_snap_delete(p->src->v, "u"), 0);
	for (int r = 0; r < 20; r++)
		put_pattern(p, "churn", 8u << 20, 900 + (uint64_t)r);
}

/* Snapshot "u" of a file "pre" whose data was rewritten since. */
static void snapshot_u(struct tm_pair *p)
{
	put_pattern(p, "pre", 4u << 20, 77);
	assert_int_equal(wafl_snap_create(p->src->v, "u", NULL), 0);
	put_pattern(p, "pre", 4u << 20, 78);
}

/*
 * One cut a third of the way into a baseline, then, while the source
 * waits to reconnect, restart the destination (after damaging the block
 * of the checkpoint's middle entry, if asked) or the source (started
 * once more where no destination listens and stopped again before it
 * learned anything, or with every hold of the volume released while it
 * is stopped, as mirror delete does, if asked).
 */
static void baseline_restart(enum restart_what what)
{
	bool restart_dest = what == RESTART_DEST ||
	    what == RESTART_DEST_DAMAGED;
	struct tm_pair *p = tm_pair_new();
	struct proxy px = { .seed = 0xc0de, .cut_min = 8u << 20,
	    .cut_span = 1u << 20 };
	struct mir_source_stats ss;
	struct mir_dest_stats ds;
	uint64_t vol_blocks;
	char ckpt[600];

	bool fallback = what == RESTART_SOURCE_FALLBACK ||
	    what == RESTART_SOURCE_FALLBACK_SNAPDEL;
	if (what == RESTART_SOURCE_FALLBACK_SNAPDEL)
		snapshot_u(p);
	uint64_t g0 = fill_volume(p, &vol_blocks);
	snprintf(ckpt, sizeof(ckpt), "%s/mirror.ckpt", p->dst->dir);
	dest_start_ckpt(p, ckpt);
	proxy_start(&px, mir_dest_port(p->md));
	tm_source_start_opts(p, MIR_SYNC, px.port, 1500, 0);
	for (int i = 0; i < 5000 && px.cuts == 0; i++)
		usleep(2000);
	assert_true(px.cuts == 1);
	px.no_cuts = true;
	mir_source_quiesce(p->ms);	/* before it reconnects */
	wait_state(p, MIR_QUIESCED);
	mir_dest_stats(p->md, &ds);
	uint64_t k = ds.ckpt_blocks;
	assert_true(k > 0 && k < vol_blocks);
	assert_int_equal(ds.ckpt_gen, g0);

	uint64_t m = k / 2;
	if (what == RESTART_DEST_DAMAGED) {
		/* The block of entry m: 64-byte header, 16-byte entries. */
		uint8_t ent[16], junk[4096];
		FILE *cf = fopen(ckpt, "rb");
		assert_non_null(cf);
		assert_int_equal(fseek(cf, (long)(64 + 16 * m), SEEK_SET), 0);
		assert_int_equal(fread(ent, 1, 16, cf), 16);
		fclose(cf);
		uint64_t vbn = 0;
		for (int i = 7; i >= 0; i--)
			vbn = vbn << 8 | ent[i];
		memset(junk, 0x5a, sizeof(junk));
		mir_dest_stop(p->md);
		p->md = NULL;
		assert_int_equal(raid_write(p->dst->raid, vbn, 1, junk), 0);
		assert_int_equal(raid_flush(p->dst->raid), 0);
	}
	if (restart_dest) {
		mir_dest_stop(p->md);
		dest_start_ckpt(p, ckpt);
		mir_dest_stats(p->md, &ds);
		assert_int_equal(ds.ckpt_blocks, k);	/* read back */
		px.to = mir_dest_port(p->md);
		mir_source_resume(p->ms);
	} else {
		mir_source_stop(p->ms);
		if (what == RESTART_SOURCE_RELEASED)
			assert_int_equal(mir_source_forget(p->src->v), 0);
		if (fallback)
			fall_back_while_away(p, g0,
			    what == RESTART_SOURCE_FALLBACK_SNAPDEL);
		if (what == RESTART_SOURCE_TWICE) {
			/* Port 1: refused at once, so no session starts;
			 * the holds it adopted must survive its stop. */
			tm_source_start_opts(p, MIR_SYNC, 1, 20, 0);
			usleep(200000);
			mir_source_stop(p->ms);
		}
		tm_source_start_opts(p, MIR_SYNC, px.port, 20, 0);
	}
	assert_int_equal(mir_source_wait(p->ms, g0, 30000), 0);
	if (fallback) {
		/* And on to what was written while it was away. */
		assert_int_equal(mir_source_wait(p->ms,
		    wafl_generation(p->src->v), 30000), 0);
	}
	mir_source_stats(p->ms, &ss);
	mir_dest_stats(p->md, &ds);
	fprintf(stderr, "%s restarted a third into a baseline of %llu blocks "
	    "(checkpoint %llu): source %llu resumes, %llu blocks not resent, "
	    "%llu restarts; destination %llu resumes, %llu blocks read back, "
	    "mirror-path reads %llu, last error \"%s\"\n",
	    what == RESTART_SOURCE ? "source" :
	    what == RESTART_SOURCE_TWICE ? "source (twice)" :
	    what == RESTART_SOURCE_RELEASED ? "source (holds released)" :
	    what == RESTART_SOURCE_FALLBACK ? "source (fallback snapshot)" :
	    what == RESTART_SOURCE_FALLBACK_SNAPDEL ? "source (fallback "
	    "snapshot naming a snapshot deleted since)" :
	    what == RESTART_DEST ? "destination" :
	    "destination (one checkpointed block damaged)",
	    (unsigned long long)vol_blocks, (unsigned long long)k,
	    (unsigned long long)ss.baseline_resumes,
	    (unsigned long long)ss.blocks_not_resent,
	    (unsigned long long)ss.baseline_restarts,
	    (unsigned long long)ds.baseline_resumes,
	    (unsigned long long)ds.resume_reads,
	    (unsigned long long)ds.mirror_reads, ds.last_error);
	if (what == RESTART_DEST_DAMAGED) {
		/* Refused once (cut to m entries), then resumed after m. */
		assert_int_equal(ss.baseline_resumes, 2);
		assert_int_equal(ss.blocks_not_resent, k + m);
		assert_int_equal(ds.baseline_resumes, 1);
		assert_int_equal(ds.resume_reads, m + 1 + m);
		assert_true(ds.rejects >= 1);
		/* Said, and cleared once the baseline was adopted. */
		assert_non_null(strstr(ds.last_error, "does not verify") ?
		    ds.last_error : strstr(ds.resolved_error,
		    "does not verify"));
	} else if (what != RESTART_SOURCE_RELEASED) {
		/* The source kept the baseline's root held across its
		 * restart: it resumes after the checkpoint. */
		assert_int_equal(ss.baseline_resumes, 1);
		assert_int_equal(ss.blocks_not_resent, k);
		assert_int_equal(ss.baseline_restarts, 0);
		assert_int_equal(ds.baseline_resumes, 1);
		assert_int_equal(ds.resume_reads, k);
	} else {
		/* The new source holds no baseline root: it starts over. */
		assert_int_equal(ss.baseline_resumes, 0);
		assert_int_equal(ss.baseline_restarts, 1);
		assert_non_null(strstr(ss.last_error, "started over") ?
		    ss.last_error : strstr(ss.resolved_error,
		    "started over"));
		assert_true(ss.blocks_sent_walk >= vol_blocks);
		assert_int_equal(ds.baseline_resumes, 0);
	}
	assert_int_equal(ds.mirror_reads, 0);
	assert_int_equal(ds.ckpt_gen, 0);
	assert_int_equal(access(ckpt, F_OK), -1);
	if (fallback)	/* acknowledged past g0: the base went */
		assert_int_equal(ss.base_snap_gen, 0);
	finish_through_proxy(p, &px);
	tm_pair_free(p);
}

static void test_baseline_survives_destination_restart(void **state)
{
	baseline_restart(RESTART_DEST);
	baseline_restart(RESTART_DEST_DAMAGED);
}

static void test_baseline_survives_source_restart(void **state)
{
	baseline_restart(RESTART_SOURCE);
	baseline_restart(RESTART_SOURCE_TWICE);
	/* Its root kept by a fallback snapshot instead of a hold. */
	baseline_restart(RESTART_SOURCE_FALLBACK);
	/* ... which names a snapshot deleted since, whose blocks the base
	 * keeps: it resumes all the same. */
	baseline_restart(RESTART_SOURCE_FALLBACK_SNAPDEL);
	/* Without the root held any more, it starts over. */
	baseline_restart(RESTART_SOURCE_RELEASED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catch_up_sends_only_new_blocks),
		cmocka_unit_test(test_link_cuts),
		cmocka_unit_test(test_fallback_keeps_sent_roots),
		cmocka_unit_test(test_baseline_resumes_after_cuts),
		cmocka_unit_test(test_baseline_survives_destination_restart),
		cmocka_unit_test(
		    test_baseline_survives_source_restart),
	};
	return cmocka_run_group_tests_name("mirror link", tests, NULL, NULL);
}
