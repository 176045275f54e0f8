/*
 * tests/mirror/test_mirror_resync.c: resync after a break, both
 * directions (M7).  Baseline, break, divergent writes on both sides
 * (files created, modified, removed on each), resync: the overwritten
 * side's tree equals the winner's, its own divergent data is readable in
 * the resync snapshot, and what crossed the link is of the order of the
 * divergence, not of the volume.  Snapshots the overwritten side made
 * after the common root travel too (each with exactly its content, shared
 * blocks sent once), deleting one imported snapshot leaves the others,
 * and a peer that lies about its trees is refused with nothing changed.
 * A second break and resync, either way, after a first whose catch-up
 * ended at the import's generation, takes the winner's own root of that
 * generation as the common base, not the imported snapshot born there,
 * and keeps that root for the retry when its reply is lost.
 * A crash of the broken-off side right after the break keeps the break's
 * snapshot of the common root.  A source whose held roots were parked
 * as mirror.base snapshots after its stop (filerd's break) resyncs
 * either way from that snapshot.
 * A reply lost after the import leaves the common root on the winner for
 * the retry, which imports nothing twice, also when the winner's volume
 * was mounted again in between (each imported entry keeps its origin tag);
 * an import that fails while
 * adding its entries leaves none; a lying bitmap pins nothing.  The
 * overwritten side may listen instead, on a port it shares with another
 * relationship's destination (mirror/listen.c): the winner connects and
 * names the relationship first (RS_OPEN); a connection for another
 * relationship's resync never reaches it.  Under the relationship's
 * throttle a resync goes no faster than the rate, whichever side paces
 * (W its reads, T its writes); T hands the rate to W in RS_BEGIN (W's
 * result has it, raised to the floor), and one out of bounds is refused.
 */
#include <sys/socket.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "mirror/mir_impl.h"
#include "mirror/wire.h"
#include "tests/mirror/tm.h"
#include "wafl/ondisk.h"
#include "wafl/wafl_impl.h"

#define BIG	(4u << 20)	/* shared data: 1024 blocks */

struct rs_case {
	struct tm_pair *p;
	wafl_vol_t *b;		/* the broken-off side, writable */
	char blog[600];
	uint64_t a;		/* generation at the break */
	uint8_t *big;
};

static void put(wafl_vol_t *v, const char *name, uint64_t seed,
    uint32_t len)
{
	uint8_t *buf = malloc(len);

	tl_fill_pattern(buf, len, seed);
	struct wafl_obj o = tm_file(v, name);
	for (uint32_t off = 0; off < len; off += 1u << 20)
		tm_write(v, &o, off, buf + off,
		    len - off < (1u << 20) ? len - off : 1u << 20);
	free(buf);
}

static void patch(wafl_vol_t *v, const char *name, uint64_t off,
    uint64_t seed)
{
	struct wafl_obj dir, o;
	uint8_t buf[8192];

	tl_fill_pattern(buf, sizeof(buf), seed);
	assert_int_equal(wafl_root(v, &dir), 0);
	assert_int_equal(wafl_lookup(v, &tm_root, &dir, name, &o, NULL, NULL),
	    0);
	tm_write(v, &o, off, buf, sizeof(buf));
}

static void rm(wafl_vol_t *v, const char *name)
{
	struct wafl_obj dir;

	assert_int_equal(wafl_root(v, &dir), 0);
	assert_int_equal(wafl_remove(v, &tm_root, &dir, name, NULL), 0);
}

/* Bytes of `name` at off in snapshot `snap` (or the active tree). */
/* Read len bytes at off of `name` in the root directory of snapshot
 * snap (NULL: the active tree) into got; all of them must be there. */
static void read_named(wafl_vol_t *v, const char *snap, const char *name,
    uint64_t off, uint32_t len, uint8_t *got)
{
	struct wafl_obj dir, o;
	uint32_t n = 0;
	bool eof;

	if (snap != NULL) {
		uint64_t id;
		assert_int_equal(wafl_snap_lookup(v, snap, &id), 0);
		assert_int_equal(wafl_snap_root(v, id, &dir), 0);
	} else {
		assert_int_equal(wafl_root(v, &dir), 0);
	}
	assert_int_equal(wafl_lookup(v, &tm_root, &dir, name, &o, NULL, NULL),
	    0);
	assert_int_equal(wafl_read(v, &tm_root, &o, off, len, got, &n, &eof,
	    NULL), 0);
	assert_int_equal(n, len);
}

static void expect(wafl_vol_t *v, const char *snap, const char *name,
    uint64_t off, uint64_t seed, uint32_t len)
{
	uint8_t *want = malloc(len), *got = malloc(len);

	read_named(v, snap, name, off, len, got);
	tl_fill_pattern(want, len, seed);
	assert_memory_equal(got, want, len);
	free(want);
	free(got);
}

static bool exists(wafl_vol_t *v, const char *snap, const char *name)
{
	struct wafl_obj dir, o;

	if (snap != NULL) {
		uint64_t id;
		assert_int_equal(wafl_snap_lookup(v, snap, &id), 0);
		assert_int_equal(wafl_snap_root(v, id, &dir), 0);
	} else {
		assert_int_equal(wafl_root(v, &dir), 0);
	}
	return wafl_lookup(v, &tm_root, &dir, name, &o, NULL, NULL) == 0;
}

/* Baseline of a few files and a big one, then break. */
static void setup_broken(struct rs_case *c)
{
	struct tm_pair *p = tm_pair_new();
	wafl_vol_t *s = p->src->v;

	c->p = p;
	put(s, "big", 1, BIG);
	put(s, "a", 2, 65536);
	put(s, "b", 3, 65536);
	put(s, "c", 4, 65536);
	assert_int_equal(wafl_sync(s), 0);
	tm_dest_start(p);
	tm_source_start(p);
	tm_sync(p);
	c->a = wafl_generation(mir_dest_volume(p->md));
	mir_source_stop(p->ms);	/* keeps its hold on a (M6) */
	p->ms = NULL;
	tl_path(c->blog, sizeof(c->blog), p->dst->dir, "nvlog-broken");
	assert_int_equal(mir_dest_break(p->md, c->blog, &c->b), 0);
	mir_dest_stop(p->md);
	p->md = NULL;
	/* handles taken on the source work on the broken-off side */
	expect(c->b, NULL, "a", 0, 2, 65536);
}

/* Divergent writes: each side creates, modifies and removes. */
static void diverge(struct rs_case *c, wafl_vol_t *src, wafl_vol_t *brk)
{
	put(src, "src-new", 10, 16384);
	patch(src, "a", 8192, 11);
	patch(src, "big", 1 << 20, 12);
	rm(src, "b");
	assert_int_equal(wafl_sync(src), 0);
	patch(src, "c", 0, 13);
	assert_int_equal(wafl_sync(src), 0);

	put(brk, "brk-new", 20, 24576);
	patch(brk, "c", 16384, 21);
	patch(brk, "big", 2 << 20, 22);
	rm(brk, "a");
	assert_int_equal(wafl_sync(brk), 0);
	put(brk, "brk-new2", 23, 4096);
	assert_int_equal(wafl_sync(brk), 0);
	/* More CPs than the ring keeps on both sides: the common root is
	 * retained by the break's snapshot and the source's hold alone. */
	for (int i = 0; i < 6; i++) {
		put(brk, "brk-churn", 30 + (uint64_t)i, 4096);
		assert_int_equal(wafl_sync(brk), 0);
		put(src, "src-churn", 40 + (uint64_t)i, 4096);
		assert_int_equal(wafl_sync(src), 0);
	}
	(void)c;
}

static struct mir_resync_opts rs_opts(struct tm_pair *p, uint16_t port)
{
	struct mir_resync_opts o = { .key = p->key, .key_len = sizeof(p->key),
	    .host = "127.0.0.1", .port = port, .io_timeout_ms = 10000,
	    .accept_timeout_ms = 30000 };

	memcpy(o.rel_id, p->id, 16);
	return o;
}

/* M2 after the roll back: slot G % 2 holds G, a replica whose ring is G
 * alone; the other slot holds no valid fsinfo, so the destination's
 * first fsinfo (an odd number of generations on) goes there and a torn
 * write of it leaves G. */
static void rolled_back_slots(raid_vol_t *raid, uint64_t g)
{
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	struct wafl_fsinfo fi;
	uint64_t s = g % WAFL_FSINFO_SLOTS;

	assert_int_equal(raid_read(raid, s, 1, blk), 0);
	assert_int_equal(wafl_fsinfo_decode(blk, &fi), 0);
	assert_int_equal(fi.gen, g);
	assert_int_equal(fi.root.birth, g);
	assert_int_equal(fi.ring_len, 1);
	assert_true(fi.flags & WAFL_FSI_REPLICA);
	assert_int_equal(raid_read(raid, 1 - s, 1, blk), 0);
	assert_true(wafl_fsinfo_decode(blk, &fi) != 0);
	free(blk);
}

/* w wins over the side t (on raid traid, log tlog); T sends at most
 * t_send_bps, W reads at most w_recv_bps (0: no limit); *secs (if not
 * NULL): T's part, from its connect to W's answer. */
static void resync_paced(struct tm_pair *p, wafl_vol_t *w, wafl_vol_t **t,
    raid_vol_t *traid, const char *tlog, uint64_t t_send_bps,
    uint64_t w_recv_bps, double *secs, struct mir_resync_result *wr,
    struct mir_resync_result *tr)
{
	mir_resync_t *r;
	struct mir_resync_opts o = rs_opts(p, 0);

	o.throttle_recv_bps = w_recv_bps;
	assert_int_equal(mir_resync_serve(w, &o, &r), 0);
	o = rs_opts(p, mir_resync_port(r));
	o.throttle_send_bps = t_send_bps;
	/* T hands the relationship's rate over (filerd: when its row is
	 * the source); a rate below the floor goes as the floor, one above
	 * the ceiling as the ceiling (every other unthrottled resync). */
	static unsigned unpaced;
	uint64_t rel = t_send_bps != 0 ? t_send_bps :
	    unpaced++ % 2 == 0 ? 1000 : MIR_THROTTLE_MAX + 1;
	o.rel_throttle_bps = rel;
	uint64_t t0 = fl_now_mono_ns();
	int rc = mir_resync_overwrite(t, traid, tlog, &o, tr);
	if (secs != NULL)
		*secs = (double)(fl_now_mono_ns() - t0) / 1e9;
	if (rc != 0)
		fprintf(stderr, "resync: %s\n", tr->error);
	assert_int_equal(rc, 0);
	assert_null(*t);
	rolled_back_slots(traid, tr->base_gen);
	assert_int_equal(mir_resync_wait(r, 30000, wr), 0);
	mir_resync_stop(r);
	assert_int_equal(wr->base_gen, tr->base_gen);
	assert_int_equal(wr->snap_gen, tr->snap_gen);
	assert_int_equal(wr->blocks_received, tr->blocks_sent);
	assert_int_equal(wr->rel_throttle_bps, t_send_bps != 0 ? t_send_bps :
	    rel == 1000 ? MIR_THROTTLE_MIN : MIR_THROTTLE_MAX);
}

static void resync(struct tm_pair *p, wafl_vol_t *w, wafl_vol_t **t,
    raid_vol_t *traid, const char *tlog, struct mir_resync_result *wr,
    struct mir_resync_result *tr)
{
	resync_paced(p, w, t, traid, tlog, 0, 0, NULL, wr, tr);
}

/* A destination on raid, a source on w towards it (no baselines). */
static void follow(struct tm_pair *p, wafl_vol_t *w, raid_vol_t *wraid,
    raid_vol_t *traid)
{
	struct mir_dest_opts d = { .key = p->key, .key_len = sizeof(p->key),
	    .allow_baseline = false, .io_timeout_ms = 5000 };

	memcpy(d.rel_id, p->id, 16);
	assert_int_equal(mir_dest_start(traid, &d, &p->md), 0);
	p->port = mir_dest_port(p->md);
	struct mir_source_opts s = { .key = p->key, .key_len = sizeof(p->key),
	    .host = "127.0.0.1", .port = p->port, .mode = MIR_SYNC,
	    .raid = wraid, .allow_baseline = false, .retry_ms = 20,
	    .io_timeout_ms = 5000 };
	memcpy(s.rel_id, p->id, 16);
	assert_int_equal(mir_source_start(w, &s, &p->ms), 0);
	assert_int_equal(wafl_sync(w), 0);
	uint64_t g = wafl_generation(w);
	assert_int_equal(mir_source_wait(p->ms, g, 30000), 0);
}

static void verify(struct rs_case *c, wafl_vol_t *w, const char *snap,
    struct mir_resync_result *wr, bool reverse)
{
	struct tm_pair *p = c->p;
	wafl_vol_t *t = mir_dest_volume(p->md);
	struct mir_source_stats st;

	tm_tree_equal(w, t);
	/* the overwritten side's divergent data, in the snapshot on both */
	const char *tnew = reverse ? "src-new" : "brk-new";
	expect(t, snap, tnew, 0, reverse ? 10 : 20, reverse ? 16384 : 24576);
	expect(w, snap, tnew, 0, reverse ? 10 : 20, reverse ? 16384 : 24576);
	if (reverse) {
		expect(t, snap, "a", 8192, 11, 8192);
		assert_false(exists(t, snap, "b"));
		expect(t, snap, "big", 1 << 20, 12, 8192);
	} else {
		expect(t, snap, "c", 16384, 21, 8192);
		assert_false(exists(t, snap, "a"));
		assert_true(exists(t, snap, "brk-new2"));
		expect(t, snap, "big", 2 << 20, 22, 8192);
	}
	tm_snap_equal(w, t, snap);
	/* what crossed: T's divergence there, W's and T's back */
	mir_source_stats(p->ms, &st);
	fprintf(stderr, "resync%s: base %llu, T->W %llu blocks (%llu "
	    "imported), W->T %llu blocks in %llu walk(s); shared data %u "
	    "blocks\n", reverse ? " (reverse)" : "",
	    (unsigned long long)wr->base_gen,
	    (unsigned long long)wr->blocks_received,
	    (unsigned long long)wr->blocks_imported,
	    (unsigned long long)st.blocks_sent_walk,
	    (unsigned long long)st.transfers_walk, BIG / 4096 + 48);
	assert_true(wr->blocks_received > 10);
	assert_true(wr->blocks_received < 150);
	assert_true(st.blocks_sent_walk < 300);
	assert_true(st.transfers_walk >= 1);
	tm_check_clean(w, "winner");
	tm_check_clean(t, "overwritten");
}

static void test_resync_overwrites_broken_off(void **state)
{
	(void)state;
	struct rs_case c = { 0 };
	struct mir_resync_result wr, tr;

	setup_broken(&c);
	struct tm_pair *p = c.p;
	diverge(&c, p->src->v, c.b);
	/* A snapshot of that name exists on the winner already (as after
	 * an interrupted resync): the import takes the next name.  And a
	 * snapshot the winner made since the break travels too. */
	char taken[64], want[80];
	snprintf(taken, sizeof(taken), "resync.%llu",
	    (unsigned long long)wafl_generation(c.b));
	assert_int_equal(wafl_snap_create(p->src->v, taken, NULL), 0);
	resync(p, p->src->v, &c.b, p->dst->raid, c.blog, &wr, &tr);
	snprintf(want, sizeof(want), "%s.2", taken);
	assert_string_equal(wr.snap_name, want);
	assert_int_equal(wr.base_gen, c.a);
	follow(p, p->src->v, p->src->raid, p->dst->raid);
	verify(&c, p->src->v, wr.snap_name, &wr, false);
	tm_snap_equal(p->src->v, mir_dest_volume(p->md), taken);
	/* the stream continues */
	put(p->src->v, "after", 30, 8192);
	tm_sync(p);
	expect(mir_dest_volume(p->md), NULL, "after", 0, 30, 8192);
	tm_pair_free(p);
}

/*
 * T listens, through a listener another relationship's destination also
 * takes from, and W connects (as filerd runs a resync whose destination
 * is overwritten).  A W for a relationship T does not have is refused by
 * the listener until its deadline; the real W starts before T (the two
 * filerds' admins start their halves in any order): refused while T is
 * not there, it meets T once T starts; the other destination was never
 * handed a connection.
 */
static void test_resync_t_listens_on_shared_port(void **state)
{
	(void)state;
	struct rs_case c = { 0 };
	struct mir_resync_result wr, tr;
	mir_listener_t *l = NULL;
	mir_resync_t *tj = NULL, *wj = NULL;

	setup_broken(&c);
	struct tm_pair *p = c.p;
	diverge(&c, p->src->v, c.b);
	assert_int_equal(mir_listener_start("127.0.0.1", 0, &l), 0);
	mir_listener_accept(l);
	/* The other relationship's destination, on a volume of its own. */
	struct tl_fs *other = tl_fs_create(4, 1, 4096, false);
	assert_int_equal(wafl_unmount(other->v), 0);
	other->v = NULL;
	struct mir_dest_opts od = { .key = p->key, .key_len = sizeof(p->key),
	    .allow_baseline = true, .io_timeout_ms = 5000, .listener = l };
	memcpy(od.rel_id, p->id, 16);
	od.rel_id[0] ^= 0x5a;
	mir_dest_t *omd = NULL;
	assert_int_equal(mir_dest_start(other->raid, &od, &omd), 0);

	/* A winner for a relationship nobody here has: refused until its
	 * deadline. */
	struct mir_resync_opts bad = rs_opts(p, mir_listener_port(l));
	bad.rel_id[7] ^= 0x01;
	bad.accept_timeout_ms = 1500;
	assert_int_equal(mir_resync_start(p->src->v, NULL, NULL, &bad, &wj),
	    0);
	/* Running, then ended with the refusal by its deadline: two
	 * different answers (filerd's tick reaps a session that ended with
	 * any error, -ETIMEDOUT included, and leaves one that runs). */
	assert_int_equal(mir_resync_wait(wj, 0, &wr), -EINPROGRESS);
	int rc = mir_resync_wait(wj, 10000, &wr);
	assert_int_not_equal(rc, 0);
	assert_int_not_equal(rc, -EINPROGRESS);
	assert_true(wr.error[0] != '\0');
	mir_resync_stop(wj);
	struct mir_listener_stats ls;
	mir_listener_stats(l, &ls);
	assert_true(ls.unknown >= 1);
	/* The winner starts first: refused while T's half is not there,
	 * it tries again and meets T once T starts. */
	struct mir_resync_opts wo = rs_opts(p, mir_listener_port(l));
	assert_int_equal(mir_resync_start(p->src->v, NULL, NULL, &wo, &wj), 0);
	uint64_t unknown0 = ls.unknown;
	for (int i = 0; i < 200 && ls.unknown == unknown0; i++) {
		usleep(10000);
		mir_listener_stats(l, &ls);
	}
	assert_true(ls.unknown > unknown0);
	struct mir_resync_opts o = rs_opts(p, 0);
	o.overwrite = true;
	o.listen = true;
	o.listener = l;
	assert_int_equal(mir_resync_start(c.b, p->dst->raid, c.blog, &o, &tj),
	    0);
	assert_int_equal(mir_resync_port(tj), mir_listener_port(l));
	assert_int_equal(mir_listener_attached(l), 2);
	/* A source's stream of the same relationship meanwhile is not for
	 * the resync: the listener refuses it, the resync never sees it. */
	{
		struct mir_peer_cfg pc = { .key = p->key, .key_len = 32 };
		struct mir_status_msg sm;
		struct mir_conn conn;
		int fd = mir_tcp_connect("127.0.0.1", mir_listener_port(l),
		    2000);
		assert_true(fd >= 0);
		memcpy(pc.id, p->id, 16);
		assert_int_equal(mir_conn_init(&conn, fd, 3000, NULL), 0);
		assert_int_equal(mir_handshake_source(&conn, &pc, &sm),
		    -ECONNREFUSED);
		mir_conn_close(&conn);
	}
	rc = mir_resync_wait(tj, 60000, &tr);
	if (rc != 0)
		fprintf(stderr, "resync (T): %s\n", tr.error);
	assert_int_equal(rc, 0);
	assert_int_equal(mir_resync_wait(wj, 30000, &wr), 0);
	assert_null(mir_resync_volume(tj));
	c.b = NULL;
	mir_resync_stop(tj);
	mir_resync_stop(wj);
	rolled_back_slots(p->dst->raid, tr.base_gen);
	assert_int_equal(wr.base_gen, tr.base_gen);
	assert_int_equal(wr.blocks_received, tr.blocks_sent);
	struct mir_dest_stats ods;
	mir_dest_stats(omd, &ods);
	assert_int_equal(ods.transfers, 0);
	assert_int_equal(ods.rejects, 0);
	mir_dest_stop(omd);
	assert_int_equal(mir_listener_attached(l), 0);
	mir_listener_stop(l);
	tl_fs_destroy(other);
	follow(p, p->src->v, p->src->raid, p->dst->raid);
	verify(&c, p->src->v, wr.snap_name, &wr, false);
	tm_pair_free(p);
}

static void test_resync_reverse(void **state)
{
	(void)state;
	struct rs_case c = { 0 };
	struct mir_resync_result wr, tr;

	setup_broken(&c);
	struct tm_pair *p = c.p;
	diverge(&c, p->src->v, c.b);
	/* failback: the broken-off side wins, the old source is
	 * overwritten and becomes its destination */
	resync(p, c.b, &p->src->v, p->src->raid, p->src->logpath, &wr, &tr);
	assert_int_equal(wr.base_gen, c.a);
	follow(p, c.b, p->dst->raid, p->src->raid);
	verify(&c, c.b, wr.snap_name, &wr, true);
	mir_source_stop(p->ms);
	p->ms = NULL;
	assert_int_equal(wafl_unmount(c.b), 0);
	tm_pair_free(p);
}

/*
 * The source's side of a break as filerd leaves it: stopped, its held
 * roots parked (mir_source_park: the common root a is snapshot
 * mirror.base.<a> there, nothing held), then far more CPs than its ring
 * keeps.  A resync either way still finds a as the common root (a
 * snapshot on both sides), and the catch-up that follows works: from
 * the snapshot when the parked source wins, which it deletes once the
 * destination acknowledges a newer root.
 */
static void resync_parked(bool reverse)
{
	struct rs_case c = { 0 };
	struct mir_resync_result wr, tr;
	uint64_t gens[WAFL_FSI_HOLDS], parked = 0;
	size_t nh = 0;

	setup_broken(&c);
	struct tm_pair *p = c.p;
	assert_int_equal(mir_source_park(p->src->v, &parked, NULL), 0);
	assert_true(parked >= 1);
	assert_int_equal(wafl_held_roots(p->src->v, gens, WAFL_FSI_HOLDS,
	    &nh), 0);
	assert_int_equal(nh, 0);
	assert_int_equal(mir_base_snapshot(p->src->v, c.a), c.a);
	diverge(&c, p->src->v, c.b);
	if (!reverse) {
		resync(p, p->src->v, &c.b, p->dst->raid, c.blog, &wr, &tr);
		assert_int_equal(wr.base_gen, c.a);
		follow(p, p->src->v, p->src->raid, p->dst->raid);
		verify(&c, p->src->v, wr.snap_name, &wr, false);
		put(p->src->v, "after", 30, 8192);
		tm_sync(p);
		expect(mir_dest_volume(p->md), NULL, "after", 0, 30, 8192);
		for (int i = 0; i < 500 &&
		    mir_base_snapshot(p->src->v, c.a) != 0; i++)
			usleep(10000);
		assert_int_equal(mir_base_snapshot(p->src->v, c.a), 0);
	} else {
		resync(p, c.b, &p->src->v, p->src->raid, p->src->logpath, &wr,
		    &tr);
		assert_int_equal(wr.base_gen, c.a);
		follow(p, c.b, p->dst->raid, p->src->raid);
		verify(&c, c.b, wr.snap_name, &wr, true);
		mir_source_stop(p->ms);
		p->ms = NULL;
		assert_int_equal(wafl_unmount(c.b), 0);
	}
	tm_pair_free(p);
}

static void test_resync_parked_source(void **state)
{
	(void)state;
	resync_parked(false);
}

static void test_resync_parked_source_reverse(void **state)
{
	(void)state;
	resync_parked(true);
}

/*
 * A second break and resync after a first resync whose catch-up ended at
 * the import's own generation X: both sides then retain two different
 * roots of generation X, the winner's root X (ring, hold, or the break's
 * mirror.base.X) and the imported snapshot resync.<t> (its root born at
 * X too).  The common base must be the first (the tree both sides'
 * active trees grew from), whichever direction the second resync goes:
 * the overwritten side is rolled back to root X, not to the imported
 * snapshot, and the winner imports against root X.
 */
static void resync_twice(bool reverse)
{
	struct rs_case c = { 0 };
	struct mir_resync_result wr, tr;

	setup_broken(&c);
	struct tm_pair *p = c.p;
	diverge(&c, p->src->v, c.b);
	resync(p, p->src->v, &c.b, p->dst->raid, c.blog, &wr, &tr);
	follow(p, p->src->v, p->src->raid, p->dst->raid);
	/* the destination serves the import's generation exactly */
	uint64_t x = wr.snap_gen;
	assert_int_equal(wafl_generation(p->src->v), x);
	assert_int_equal(wafl_generation(mir_dest_volume(p->md)), x);
	char first[64];
	snprintf(first, sizeof(first), "%s", wr.snap_name);
	/* the second break */
	mir_source_stop(p->ms);
	p->ms = NULL;
	char blog2[600];
	wafl_vol_t *b2 = NULL;
	tl_path(blog2, sizeof(blog2), p->dst->dir, "nvlog-broken2");
	assert_int_equal(mir_dest_break(p->md, blog2, &b2), 0);
	mir_dest_stop(p->md);
	p->md = NULL;
	put(p->src->v, "src-second", 60, 12288);
	patch(p->src->v, "big", 3 << 20, 61);
	assert_int_equal(wafl_sync(p->src->v), 0);
	put(b2, "brk-second", 70, 20480);
	patch(b2, "big", 0, 71);
	assert_int_equal(wafl_sync(b2), 0);
	/* more CPs than the ring keeps: X is retained by the hold, the
	 * break's snapshot and the imported snapshot alone */
	for (int i = 0; i < 6; i++) {
		put(b2, "brk-churn2", 80 + (uint64_t)i, 4096);
		assert_int_equal(wafl_sync(b2), 0);
		put(p->src->v, "src-churn2", 90 + (uint64_t)i, 4096);
		assert_int_equal(wafl_sync(p->src->v), 0);
	}
	wafl_vol_t *w = reverse ? b2 : p->src->v;
	wafl_vol_t **t = reverse ? &p->src->v : &b2;
	raid_vol_t *wraid = reverse ? p->dst->raid : p->src->raid;
	raid_vol_t *traid = reverse ? p->src->raid : p->dst->raid;
	const char *tlog = reverse ? p->src->logpath : blog2;
	/* root X as both sides keep it: the winner's own tree of that
	 * generation, which names the imported snapshot among its own */
	uint8_t fsi[4096];
	struct wafl_fsinfo fx, ft;
	assert_int_equal(wafl_root_of(w, x, fsi), 0);
	assert_int_equal(wafl_fsinfo_decode(fsi, &fx), 0);
	struct wafl_snap_tree st[8];
	size_t nst = 0, imp = 8;
	assert_int_equal(wafl_snap_trees_after(w, x - 1, st, 8, &nst), 0);
	for (size_t i = 0; i < nst && i < 8; i++)
		if (strcmp(st[i].name, first) == 0)
			imp = i;
	assert_true(imp < 8);
	assert_int_equal(st[imp].gen, x);
	assert_int_equal(st[imp].birth, x);
	assert_int_not_equal(st[imp].vbn, fx.root.vbn);
	resync(p, w, t, traid, tlog, &wr, &tr);
	assert_int_equal(wr.base_gen, x);
	assert_int_equal(tr.base_gen, x);
	assert_int_equal(raid_read(traid, x % WAFL_FSINFO_SLOTS, 1, fsi), 0);
	assert_int_equal(wafl_fsinfo_decode(fsi, &ft), 0);
	assert_int_equal(ft.root.vbn, fx.root.vbn);
	assert_int_equal(ft.root.cksum, fx.root.cksum);
	follow(p, w, wraid, traid);
	wafl_vol_t *tv = mir_dest_volume(p->md);
	tm_tree_equal(w, tv);
	const char *tnew = reverse ? "src-second" : "brk-second";
	uint64_t seed = reverse ? 60 : 70;
	uint32_t len = reverse ? 12288 : 20480;
	expect(w, wr.snap_name, tnew, 0, seed, len);
	expect(tv, wr.snap_name, tnew, 0, seed, len);
	expect(tv, NULL, reverse ? "brk-second" : "src-second", 0,
	    reverse ? 70 : 60, reverse ? 20480 : 12288);
	/* the first resync's snapshot is intact on both */
	expect(tv, first, "brk-new", 0, 20, 24576);
	tm_snap_equal(w, tv, first);
	tm_check_clean(w, "winner");
	tm_check_clean(tv, "overwritten");
	mir_source_stop(p->ms);
	p->ms = NULL;
	if (reverse) {
		assert_int_equal(wafl_unmount(b2), 0);
	}
	tm_pair_free(p);
}

static void test_resync_twice(void **state)
{
	(void)state;
	resync_twice(false);
}

static void test_resync_twice_reverse(void **state)
{
	(void)state;
	resync_twice(true);
}

/*
 * kill -9 of the broken-off side right after `mirror break`, with a
 * client's stable write in its NVLOG and no CP since.  The break's
 * snapshot mirror.base.A must survive it: else A leaves the ring a few
 * CPs after the replay and no resync finds a common root.  Nor is the
 * volume taken for a resync's rolled-back T (what filerd's start asks
 * of a row left resyncing, on the volume mounted read-only).
 */
static void test_break_crash_keeps_base(void **state)
{
	(void)state;
	struct rs_case c = { 0 };
	struct mir_resync_result wr, tr;
	enum wafl_stable how;
	uint8_t data[8192];
	uint64_t g = 0, id;
	char base[64];

	setup_broken(&c);
	struct tm_pair *p = c.p;
	struct wafl_obj o = tm_file(c.b, "after-break");
	tl_fill_pattern(data, sizeof(data), 77);
	assert_int_equal(wafl_write(c.b, &tm_root, &o, 0, sizeof(data), data,
	    WAFL_FILE_SYNC, &how, NULL, NULL), 0);
	wafl_abandon(c.b);
	c.b = NULL;
	tl_fs_reopen_raid(p->dst);
	/* as filerd's start looks at a row left resyncing: read-only, the
	 * NVLOG not replayed */
	struct wafl_mount_opts ro = { .readonly = true, .no_cp_thread = true };
	assert_int_equal(wafl_mount(p->dst->raid, &ro, &c.b), 0);
	assert_int_equal(mir_resync_rolled_back(c.b, &g), 0);
	assert_int_equal(wafl_unmount(c.b), 0);
	struct wafl_mount_opts rw = { .nvlog_path = c.blog,
	    .no_cp_thread = true };
	assert_int_equal(wafl_mount(p->dst->raid, &rw, &c.b), 0);
	expect(c.b, NULL, "after-break", 0, 77, sizeof(data));
	/* the broken-off side runs on, past its ring */
	diverge(&c, p->src->v, c.b);
	mir_base_name(c.a, base, sizeof(base));
	assert_int_equal(wafl_snap_lookup(c.b, base, &id), 0);
	resync(p, p->src->v, &c.b, p->dst->raid, c.blog, &wr, &tr);
	assert_int_equal(wr.base_gen, c.a);
	expect(p->src->v, wr.snap_name, "after-break", 0, 77, sizeof(data));
	follow(p, p->src->v, p->src->raid, p->dst->raid);
	verify(&c, p->src->v, wr.snap_name, &wr, false);
	tm_pair_free(p);
}

/*
 * The reply lost after an import whose base G is the generation an
 * earlier resync imported at (resync_twice's X): W holds G for the
 * session only (its ring has it, no other hold), and the imported
 * snapshot of the first resync is born at G too.  That snapshot is not
 * G: W must keep G as mirror.base.G for the retry, or G leaves its ring
 * with the next CPs and the retry finds no common root.
 */
static void test_resync_twice_reply_lost(void **state)
{
	(void)state;
	struct rs_case c = { 0 };
	struct mir_resync_result wr, tr;

	setup_broken(&c);
	struct tm_pair *p = c.p;
	wafl_vol_t *w = p->src->v;
	diverge(&c, w, c.b);
	resync(p, w, &c.b, p->dst->raid, c.blog, &wr, &tr);
	follow(p, w, p->src->raid, p->dst->raid);
	uint64_t x = wr.snap_gen;
	assert_int_equal(wafl_generation(mir_dest_volume(p->md)), x);
	mir_source_stop(p->ms);
	p->ms = NULL;
	char blog2[600];
	wafl_vol_t *b2 = NULL;
	tl_path(blog2, sizeof(blog2), p->dst->dir, "nvlog-broken2");
	assert_int_equal(mir_dest_break(p->md, blog2, &b2), 0);
	mir_dest_stop(p->md);
	p->md = NULL;
	/* G = x in W's ring only: the source's hold goes */
	wafl_release_root(w, x);
	assert_int_equal(wafl_generation(w), x);
	put(b2, "brk-second", 70, 20480);
	assert_int_equal(wafl_sync(b2), 0);
	mir_resync_t *r;
	struct mir_resync_opts o = rs_opts(p, 0);
	assert_int_equal(mir_resync_serve(w, &o, &r), 0);
	o = rs_opts(p, mir_resync_port(r));
	mir_resync_test_drop_reply();
	memset(&tr, 0, sizeof(tr));
	assert_int_not_equal(mir_resync_overwrite(&b2, p->dst->raid, blog2,
	    &o, &tr), 0);
	assert_non_null(b2);
	/* W goes on past its ring */
	for (int i = 0; i < 6; i++) {
		put(w, "w-churn", 90 + (uint64_t)i, 4096);
		assert_int_equal(wafl_sync(w), 0);
	}
	memset(&tr, 0, sizeof(tr));
	int rc = mir_resync_overwrite(&b2, p->dst->raid, blog2, &o, &tr);
	if (rc != 0)
		fprintf(stderr, "resync retry: %s\n", tr.error);
	assert_int_equal(rc, 0);
	assert_int_equal(tr.base_gen, x);
	assert_int_equal(mir_resync_wait(r, 30000, &wr), 0);
	mir_resync_stop(r);
	expect(w, wr.snap_name, "brk-second", 0, 70, 20480);
	follow(p, w, p->src->raid, p->dst->raid);
	tm_tree_equal(w, mir_dest_volume(p->md));
	tm_check_clean(w, "winner");
	tm_pair_free(p);
}

/*
 * Resync under the relationship's throttle, 2 MiB/s, with 6 MiB of T's
 * divergence on top of diverge()'s: without --reverse the winner W (the
 * source's filerd) paces what it reads and T, its socket full, goes at
 * that pace; with it T (the source's volume) paces what it writes.  T's
 * part takes at least the bytes over the rate less the bucket's quarter
 * second, and the result is the same as unthrottled: T's data in the
 * snapshot on both sides after the catch-up, trees equal, both clean.
 */
#define PACE_BPS	(2u << 20)
#define PACE_BULK	(6u << 20)

static void resync_throttled(bool reverse)
{
	struct rs_case c = { 0 };
	struct mir_resync_result wr, tr;
	double secs = 0;

	setup_broken(&c);
	struct tm_pair *p = c.p;
	diverge(&c, p->src->v, c.b);
	wafl_vol_t *w = reverse ? c.b : p->src->v;
	wafl_vol_t **t = reverse ? &p->src->v : &c.b;
	raid_vol_t *wraid = reverse ? p->dst->raid : p->src->raid;
	raid_vol_t *traid = reverse ? p->src->raid : p->dst->raid;
	put(*t, "t-bulk", 60, PACE_BULK);
	assert_int_equal(wafl_sync(*t), 0);
	resync_paced(p, w, t, traid, reverse ? p->src->logpath : c.blog,
	    reverse ? PACE_BPS : 0, reverse ? 0 : PACE_BPS, &secs, &wr, &tr);
	uint64_t bytes = reverse ? tr.bytes_out : wr.bytes_in;
	double least = (double)bytes / PACE_BPS - 0.25;
	fprintf(stderr, "resync%s at 2 MiB/s (%s): %llu bytes, %llu blocks "
	    "T->W, in %.2f s (no sooner than %.2f s)\n",
	    reverse ? " (reverse)" : "", reverse ? "T paces its writes" :
	    "W paces its reads", (unsigned long long)bytes,
	    (unsigned long long)wr.blocks_received, secs, least);
	assert_true(bytes >= PACE_BULK);
	assert_true(wr.blocks_received >= PACE_BULK / 4096);
	assert_true(wr.blocks_received < PACE_BULK / 4096 + 150);
	if (secs < least)
		fail_msg("%.2f s for %llu bytes: faster than 2 MiB/s", secs,
		    (unsigned long long)bytes);
	assert_int_equal(wr.base_gen, c.a);
	follow(p, w, wraid, traid);
	wafl_vol_t *tv = mir_dest_volume(p->md);
	const char *snap = wr.snap_name;
	tm_tree_equal(w, tv);
	expect(tv, snap, "t-bulk", 0, 60, PACE_BULK);
	expect(w, snap, "t-bulk", 0, 60, PACE_BULK);
	assert_false(exists(w, NULL, "t-bulk"));
	const char *tnew = reverse ? "src-new" : "brk-new";
	expect(tv, snap, tnew, 0, reverse ? 10 : 20, reverse ? 16384 : 24576);
	tm_snap_equal(w, tv, snap);
	tm_check_clean(w, "winner");
	tm_check_clean(tv, "overwritten");
	if (reverse) {
		mir_source_stop(p->ms);
		p->ms = NULL;
		assert_int_equal(wafl_unmount(c.b), 0);
	}
	tm_pair_free(p);
}

static void test_resync_throttled_w_reads(void **state)
{
	(void)state;
	resync_throttled(false);
}

static void test_resync_throttled_t_writes(void **state)
{
	(void)state;
	resync_throttled(true);
}

/* ------------------------------------------- T's snapshots carried */

/* Bytes [off, off + len) of `name` are those of a file written whole
 * with seed (put). */
static void expect_at(wafl_vol_t *v, const char *snap, const char *name,
    uint64_t off, uint64_t seed, uint32_t len)
{
	uint8_t *want = malloc(off + len), *got = malloc(len);

	read_named(v, snap, name, off, len, got);
	tl_fill_pattern(want, off + len, seed);
	assert_memory_equal(got, want + off, len);
	free(want);
	free(got);
}

static int count_blk(void *arg, uint64_t vbn, uint64_t birth,
    uint32_t cksum, const void *data, unsigned flags)
{
	(void)vbn;
	(void)birth;
	(void)data;
	(void)flags;
	(*(uint64_t *)arg)++;
	return 0;
}

/* Blocks of root gen born after `after`: what a birth walk of that tree
 * alone would send. */
static uint64_t walk_count(wafl_vol_t *v, uint64_t gen, uint64_t after)
{
	uint64_t n = 0;

	assert_int_equal(wafl_birth_walk(v, gen, after, count_blk, &n), 0);
	return n;
}

#define S1BIG	(256u << 10)	/* 64 blocks, shared by both snapshots */

/*
 * On the broken-off side after the divergence: snapshot "one" (two files
 * created), then a file modified, one removed and one created, snapshot
 * "two", then changes to the active tree.  walk[]: each tree's birth
 * walk from the common root (one, two, active).
 */
static void t_snapshots(struct rs_case *c, uint64_t walk[3])
{
	wafl_vol_t *t = c->b;
	uint64_t gen;

	put(t, "s1-file", 50, 16384);
	put(t, "s1-big", 51, S1BIG);
	assert_int_equal(wafl_snap_create(t, "one", NULL), 0);
	assert_int_equal(wafl_snap_root_info(t, "one", &gen, NULL), 0);
	walk[0] = walk_count(t, gen, c->a);
	patch(t, "s1-big", 0, 52);
	rm(t, "s1-file");
	put(t, "s2-file", 53, 8192);
	assert_int_equal(wafl_snap_create(t, "two", NULL), 0);
	assert_int_equal(wafl_snap_root_info(t, "two", &gen, NULL), 0);
	walk[1] = walk_count(t, gen, c->a);
	put(t, "act-file", 54, 12288);
	patch(t, "brk-new", 0, 55);
	assert_int_equal(wafl_sync(t), 0);
	walk[2] = walk_count(t, wafl_generation(t), c->a);
}

/* Exactly T's content at each of its trees, in the snapshots of v. */
static void check_one(wafl_vol_t *v, const char *one)
{
	expect(v, one, "s1-file", 0, 50, 16384);
	expect(v, one, "s1-big", 0, 51, S1BIG);
	expect(v, one, "brk-new", 0, 20, 24576);
	expect(v, one, "c", 16384, 21, 8192);
	assert_false(exists(v, one, "s2-file"));
	assert_false(exists(v, one, "act-file"));
	assert_false(exists(v, one, "a"));
}

static void check_two(wafl_vol_t *v, const char *two)
{
	assert_false(exists(v, two, "s1-file"));
	expect(v, two, "s1-big", 0, 52, 8192);
	expect_at(v, two, "s1-big", 8192, 51, S1BIG - 8192);
	expect(v, two, "s2-file", 0, 53, 8192);
	expect(v, two, "brk-new", 0, 20, 24576);
	assert_false(exists(v, two, "act-file"));
}

static void check_act(wafl_vol_t *v, const char *act)
{
	expect(v, act, "act-file", 0, 54, 12288);
	expect(v, act, "brk-new", 0, 55, 8192);
	expect_at(v, act, "brk-new", 8192, 20, 24576 - 8192);
	expect(v, act, "s2-file", 0, 53, 8192);
	expect(v, act, "s1-big", 0, 52, 8192);
	assert_false(exists(v, act, "s1-file"));
	assert_true(exists(v, act, "brk-new2"));
}

struct carried {
	char act[64], one[80], two[80];
};

/* Resync carrying T's two snapshots; the winner is the source. */
static void resync_carrying(struct rs_case *c, struct carried *n,
    struct mir_resync_result *wr, struct mir_resync_result *tr)
{
	struct tm_pair *p;
	uint64_t walk[3];

	setup_broken(c);
	p = c->p;
	diverge(c, p->src->v, c->b);
	t_snapshots(c, walk);
	resync(p, p->src->v, &c->b, p->dst->raid, c->blog, wr, tr);
	snprintf(n->act, sizeof(n->act), "%s", wr->snap_name);
	snprintf(n->one, sizeof(n->one), "%s.one", wr->snap_name);
	snprintf(n->two, sizeof(n->two), "%s.two", wr->snap_name);
	fprintf(stderr, "resync with 2 snapshots: T->W %llu blocks (%llu "
	    "imported); birth walks one %llu + two %llu + active %llu = "
	    "%llu\n", (unsigned long long)tr->blocks_sent,
	    (unsigned long long)wr->blocks_imported,
	    (unsigned long long)walk[0], (unsigned long long)walk[1],
	    (unsigned long long)walk[2],
	    (unsigned long long)(walk[0] + walk[1] + walk[2]));
	/* a block several trees hold crosses once and is stored once */
	assert_true(tr->blocks_sent >= walk[2]);
	assert_true(tr->blocks_sent + S1BIG / 4096 < walk[0] + walk[1] +
	    walk[2]);
	assert_true(wr->blocks_imported < tr->blocks_sent);
}

/* T made two snapshots after the common root: both travel to W with the
 * active tree, each with exactly T's content, and come back to T with
 * the catch-up; the shared blocks crossed once. */
static void test_resync_carries_snapshots(void **state)
{
	(void)state;
	struct rs_case c = { 0 };
	struct mir_resync_result wr, tr;
	struct carried n;

	resync_carrying(&c, &n, &wr, &tr);
	struct tm_pair *p = c.p;
	wafl_vol_t *w = p->src->v;
	/* the result names them, the active tree's first */
	char list[256];
	snprintf(list, sizeof(list), "%s, %s, %s", n.act, n.one, n.two);
	assert_string_equal(wr.snap_names, list);
	assert_int_equal(wr.snaps, 3);
	assert_int_equal(tr.snaps, 3);
	check_one(w, n.one);
	check_two(w, n.two);
	check_act(w, n.act);
	/* W's own tree does not change */
	assert_false(exists(w, NULL, "s1-file"));
	assert_false(exists(w, NULL, "act-file"));
	expect(w, NULL, "src-new", 0, 10, 16384);
	tm_check_clean(w, "winner");
	/* the catch-up brings them to T */
	follow(p, w, p->src->raid, p->dst->raid);
	wafl_vol_t *t = mir_dest_volume(p->md);
	tm_tree_equal(w, t);
	tm_snap_equal(w, t, n.one);
	tm_snap_equal(w, t, n.two);
	tm_snap_equal(w, t, n.act);
	check_one(t, n.one);
	check_two(t, n.two);
	check_act(t, n.act);
	tm_check_clean(w, "winner after the catch-up");
	tm_check_clean(t, "overwritten");
	tm_pair_free(p);
}

/* Deleting one imported snapshot frees only what no other holds: the
 * others stay readable, check clean on both sides. */
static void test_resync_delete_one_imported(void **state)
{
	(void)state;
	struct rs_case c = { 0 };
	struct mir_resync_result wr, tr;
	struct carried n;

	resync_carrying(&c, &n, &wr, &tr);
	struct tm_pair *p = c.p;
	wafl_vol_t *w = p->src->v;
	follow(p, w, p->src->raid, p->dst->raid);
	assert_int_equal(wafl_snap_delete(w, n.one), 0);
	/* W goes on writing: freed blocks may be reused */
	for (int i = 0; i < 4; i++) {
		put(w, "more", 70 + (uint64_t)i, 65536);
		assert_int_equal(wafl_sync(w), 0);
	}
	check_two(w, n.two);
	check_act(w, n.act);
	tm_check_clean(w, "winner after deleting one");
	tm_sync(p);
	wafl_vol_t *t = mir_dest_volume(p->md);
	uint64_t id;
	assert_int_equal(wafl_snap_lookup(t, n.one, &id), -ENOENT);
	check_two(t, n.two);
	check_act(t, n.act);
	tm_check_clean(t, "overwritten after deleting one");
	assert_int_equal(wafl_snap_delete(w, n.act), 0);
	put(w, "more", 80, 65536);
	assert_int_equal(wafl_sync(w), 0);
	check_two(w, n.two);
	tm_check_clean(w, "winner after deleting the active tree's");
	tm_pair_free(p);
}

/* Any name this file system takes for a snapshot travels: W checks T's
 * names by the same rule (here a DEL byte, taken by wafl). */
static void test_resync_carries_any_valid_name(void **state)
{
	(void)state;
	struct rs_case c = { 0 };
	struct mir_resync_result wr, tr;

	setup_broken(&c);
	struct tm_pair *p = c.p;
	wafl_vol_t *w = p->src->v;
	diverge(&c, w, c.b);
	put(c.b, "odd-file", 58, 8192);
	assert_int_equal(wafl_snap_create(c.b, "odd\x7fname", NULL), 0);
	put(c.b, "after-odd", 59, 8192);
	assert_int_equal(wafl_sync(c.b), 0);
	resync(p, w, &c.b, p->dst->raid, c.blog, &wr, &tr);
	char odd[80];
	snprintf(odd, sizeof(odd), "%s.odd\x7fname", wr.snap_name);
	expect(w, odd, "odd-file", 0, 58, 8192);
	assert_false(exists(w, odd, "after-odd"));
	tm_check_clean(w, "winner");
	tm_pair_free(p);
}

/* ------------------------------------------------- a lying peer */

/*
 * A T that speaks the resync protocol by hand, up to RS_BEGIN.  junk
 * (0: none) is written into the padding of its RS_HELLO (1) or the
 * unused nonce of its RS_PROOF (2); W must then refuse it.
 */
static int fake_t_junk(struct tm_pair *p, uint16_t port, struct mir_conn *c,
    int junk)
{
	uint8_t nt[MIR_NONCE_SIZE], mac[MIR_MAC_SIZE], b[64] = { 0 };
	struct mir_hdr h;
	int fd = mir_tcp_connect("127.0.0.1", port, 2000);

	assert_true(fd >= 0);
	assert_int_equal(mir_conn_init(c, fd, 5000, NULL), 0);
	memset(nt, 0x5a, sizeof(nt));
	memcpy(b, p->id, 16);
	memcpy(b + 16, nt, MIR_NONCE_SIZE);
	if (junk == 1)
		b[63] = 1;
	assert_int_equal(mir_send(c, MIR_MSG_RS_HELLO, b, 64), 0);
	int rc = mir_recv_type(c, MIR_MSG_RS_PROOF, &h);
	if (rc != 0)
		return rc;
	const uint8_t *nw = mir_conn_payload(c) + MIR_MAC_SIZE;
	assert_int_equal(mir_mac(p->key, sizeof(p->key), "filer-resync T",
	    p->id, nw, nt, mac), 0);
	memset(b, 0, sizeof(b));
	memcpy(b, mac, MIR_MAC_SIZE);
	if (junk == 2)
		b[MIR_MAC_SIZE] = 1;
	assert_int_equal(mir_send(c, MIR_MSG_RS_PROOF, b, 64), 0);
	return mir_recv_type(c, MIR_MSG_RS_ROOTS, &h);
}

static void fake_t(struct tm_pair *p, uint16_t port, struct mir_conn *c,
    uint64_t g, struct wafl_bp *gbp)
{
	assert_int_equal(fake_t_junk(p, port, c, 0), 0);
	const uint8_t *r = mir_conn_payload(c);
	bool found = false;
	for (uint32_t i = 0; i < fl_get_le32(r); i++) {
		if (fl_get_le64(r + 8 + 40 * i) != g)
			continue;
		assert_int_equal(wafl_bp_decode(r + 16 + 40 * i, gbp), 0);
		found = true;
	}
	assert_true(found);
}

static void fake_begin_rate(struct mir_conn *c, uint64_t g,
    const struct wafl_bp *gbp, uint64_t t, const struct wafl_bp *tbp,
    uint32_t trees, uint64_t throttle)
{
	uint8_t b[MIR_RS_BEGIN_SIZE] = { 0 };

	fl_put_le64(b, g);
	wafl_bp_encode(b + 8, gbp);
	fl_put_le64(b + 40, t);
	wafl_bp_encode(b + 48, tbp);
	fl_put_le32(b + 80, trees);
	fl_put_le64(b + 88, throttle);
	assert_int_equal(mir_send(c, MIR_MSG_RS_BEGIN, b, sizeof(b)), 0);
}

static void fake_begin(struct mir_conn *c, uint64_t g,
    const struct wafl_bp *gbp, uint64_t t, const struct wafl_bp *tbp,
    uint32_t trees)
{
	fake_begin_rate(c, g, gbp, t, tbp, trees, 0);
}

static void fake_tree_name(struct mir_conn *c, uint32_t idx,
    const char *name, uint64_t gen, const struct wafl_bp *root)
{
	uint8_t b[MIR_RS_TREE_SIZE] = { 0 };
	size_t len = strlen(name);

	assert_true(len < MIR_RS_NAME_SIZE);
	fl_put_le32(b, idx);
	fl_put_le32(b + 4, (uint32_t)len);
	fl_put_le64(b + 8, gen);
	wafl_bp_encode(b + 16, root);
	memcpy(b + 48, name, len);
	assert_int_equal(mir_send(c, MIR_MSG_RS_TREE, b, sizeof(b)), 0);
}

static void fake_tree(struct mir_conn *c, uint32_t idx, uint32_t len,
    char fill, uint64_t gen, const struct wafl_bp *root)
{
	uint8_t b[MIR_RS_TREE_SIZE] = { 0 };

	fl_put_le32(b, idx);
	fl_put_le32(b + 4, len);
	fl_put_le64(b + 8, gen);
	wafl_bp_encode(b + 16, root);
	memset(b + 48, fill, len < MIR_RS_NAME_SIZE ? len : MIR_RS_NAME_SIZE);
	assert_int_equal(mir_send(c, MIR_MSG_RS_TREE, b, sizeof(b)), 0);
}

/* W refuses, saying why, and closes. */
static void fake_refused(struct mir_conn *c, const char *why)
{
	struct mir_hdr h;
	int rc = mir_recv_type(c, MIR_MSG_RS_DONE, &h);

	fprintf(stderr, "lying peer refused (%d): %s\n", rc, c->peer_error);
	assert_int_not_equal(rc, 0);
	assert_non_null(strstr(c->peer_error, why));
	mir_conn_close(c);
}

struct fake_send {
	struct mir_conn *c;
	uint64_t gen, n;
	uint64_t vbns[4096];
};

static int fake_block(void *arg, uint64_t vbn, uint64_t birth,
    uint32_t cksum, const void *data, unsigned flags)
{
	struct fake_send *f = arg;

	(void)flags;
	assert_true(f->n < 4096);
	f->vbns[f->n++] = vbn;
	return mir_send_block(f->c, f->gen, vbn, birth, cksum, data);
}

/* A T that lies about its trees (or its throttle) is refused and nothing
 * changes on W; the honest T that comes next is served. */
static void test_resync_refuses_lying_trees(void **state)
{
	(void)state;
	struct rs_case c = { 0 };
	struct mir_resync_result wr, tr;
	struct mir_conn fc;
	struct wafl_bp gbp;
	mir_resync_t *r;
	uint64_t walk[3];

	setup_broken(&c);
	struct tm_pair *p = c.p;
	wafl_vol_t *w = p->src->v;
	diverge(&c, w, c.b);
	t_snapshots(&c, walk);
	/* a name too long to keep whole under the prefix */
	char lname[64];
	memset(lname, 'L', 60);
	memcpy(lname, "long-", 5);
	lname[60] = '\0';
	assert_int_equal(wafl_snap_create(c.b, lname, NULL), 0);
	uint64_t tg = wafl_generation(c.b);
	uint8_t fsi[4096];
	struct wafl_fsinfo f;
	assert_int_equal(wafl_root_of(c.b, tg, fsi), 0);
	assert_int_equal(wafl_fsinfo_decode(fsi, &f), 0);
	size_t before = 0;
	assert_int_equal(wafl_snap_names(w, NULL, 0, &before), 0);
	uint64_t wgen = wafl_generation(w);
	struct mir_resync_opts o = rs_opts(p, 0);
	assert_int_equal(mir_resync_serve(w, &o, &r), 0);
	uint16_t port = mir_resync_port(r);

	/* padding that is not zero in its greeting, or a nonce in its
	 * proof, where T sends none */
	for (int junk = 1; junk <= 2; junk++) {
		assert_int_not_equal(fake_t_junk(p, port, &fc, junk), 0);
		assert_non_null(strstr(fc.peer_error, junk == 1 ?
		    "malformed RS_HELLO" : "malformed RS_PROOF"));
		mir_conn_close(&fc);
	}
	/* a throttle below the floor, then one above 1 TiB a second */
	fake_t(p, port, &fc, c.a, &gbp);
	fake_begin_rate(&fc, c.a, &gbp, tg, &f.root, 1, MIR_THROTTLE_MIN - 1);
	fake_refused(&fc, "throttle of 65535 bytes");
	fake_t(p, port, &fc, c.a, &gbp);
	fake_begin_rate(&fc, c.a, &gbp, tg, &f.root, 1, MIR_THROTTLE_MAX + 1);
	fake_refused(&fc, "throttle of");
	/* a snapshot name of 64 bytes */
	fake_t(p, port, &fc, c.a, &gbp);
	fake_begin(&fc, c.a, &gbp, tg, &f.root, 2);
	fake_tree(&fc, 0, 64, 'x', tg, &f.root);
	fake_refused(&fc, "name of 64 bytes");
	/* more trees than announced */
	fake_t(p, port, &fc, c.a, &gbp);
	fake_begin(&fc, c.a, &gbp, tg, &f.root, 1);
	fake_tree(&fc, 0, 0, 0, tg, &f.root);
	fake_tree(&fc, 1, 3, 'y', tg, &f.root);
	fake_refused(&fc, "not the next one announced");
	/* a snapshot announced as the last tree (the active one's place) */
	fake_t(p, port, &fc, c.a, &gbp);
	fake_begin(&fc, c.a, &gbp, tg, &f.root, 1);
	fake_tree(&fc, 0, 3, 'z', tg, &f.root);
	fake_refused(&fc, "the last tree is the active one");
	/* a block no announced tree reaches */
	struct fake_send *fs = calloc(1, sizeof(*fs));
	fake_t(p, port, &fc, c.a, &gbp);
	fake_begin(&fc, c.a, &gbp, tg, &f.root, 1);
	fake_tree(&fc, 0, 0, 0, tg, &f.root);
	fs->c = &fc;
	fs->gen = tg;
	assert_int_equal(wafl_birth_walk(c.b, tg, c.a, fake_block, fs), 0);
	uint64_t extra = 100;
	for (uint64_t i = 0; i < fs->n; i++)
		if (fs->vbns[i] == extra) {
			extra++;
			i = (uint64_t)-1;	/* again from the start */
		}
	uint8_t junk[4096];
	memset(junk, 0x33, sizeof(junk));
	assert_int_equal(mir_send_block(&fc, tg, extra, tg,
	    fl_crc32c(0, junk, sizeof(junk)), junk), 0);
	uint8_t e[8];
	fl_put_le64(e, fs->n + 1);
	assert_int_equal(mir_send(&fc, MIR_MSG_RS_END, e, 8), 0);
	fake_refused(&fc, "import failed");
	free(fs);
	/* nothing changed on W */
	size_t after = 0;
	assert_int_equal(wafl_snap_names(w, NULL, 0, &after), 0);
	assert_int_equal(after, before);
	assert_int_equal(wafl_generation(w), wgen);
	assert_int_equal(wafl_sync(w), 0);
	tm_check_clean(w, "winner after the lies");
	/* A name of the set is taken here: the whole set takes the next
	 * suffix. */
	char taken[80];
	snprintf(taken, sizeof(taken), "resync.%llu.one",
	    (unsigned long long)tg);
	assert_int_equal(wafl_snap_create(w, taken, NULL), 0);
	/* the honest T */
	o = rs_opts(p, port);
	memset(&tr, 0, sizeof(tr));
	int rc = mir_resync_overwrite(&c.b, p->dst->raid, c.blog, &o, &tr);
	if (rc != 0)
		fprintf(stderr, "resync: %s\n", tr.error);
	assert_int_equal(rc, 0);
	assert_int_equal(mir_resync_wait(r, 30000, &wr), 0);
	mir_resync_stop(r);
	char one[80], two[80], lwant[80];
	snprintf(one, sizeof(one), "resync.%llu.2", (unsigned long long)tg);
	assert_string_equal(wr.snap_name, one);
	snprintf(one, sizeof(one), "%s.one", wr.snap_name);
	snprintf(two, sizeof(two), "%s.two", wr.snap_name);
	check_one(w, one);
	check_two(w, two);
	check_act(w, wr.snap_name);
	/* <prefix>.<start of the name>~<crc32c of the name>, 63 bytes */
	int keep = 63 - (int)strlen(wr.snap_name) - 1 - 9;
	snprintf(lwant, sizeof(lwant), "%s.%.*s~%08x", wr.snap_name, keep,
	    lname, fl_crc32c(0, lname, strlen(lname)));
	assert_int_equal(strlen(lwant), 63);
	check_act(w, lwant);
	tm_check_clean(w, "winner");
	tm_pair_free(p);
}

/*
 * W's reply is lost after the import is durable (mir_resync_test_drop_reply:
 * W sends no RS_DONE and goes on as after a failed send), where W kept G
 * by its ring and its own hold alone: W keeps G, so T's retry finds the
 * common root, and W answers with the import it made rather than
 * importing T's trees a second time.  restart: W's serve stops and W's
 * volume is unmounted and mounted again between the lost reply and the
 * retry, so only what is on W's disks can tell.  snaps: T's two snapshots
 * after G travel too, three trees in all.
 */
static void reply_lost(bool restart, bool snaps)
{
	struct rs_case c = { 0 };
	struct mir_resync_result wr, tr;
	struct mir_conn fc;
	struct wafl_bp gbp;
	mir_resync_t *r;

	setup_broken(&c);
	struct tm_pair *p = c.p;
	wafl_vol_t *w = p->src->v;
	/* G in W's ring only, the oldest root there once the import's CP
	 * is made: the source's hold goes */
	wafl_release_root(w, c.a);
	for (uint64_t i = 0; wafl_generation(w) < c.a + WAFL_RING_K - 1;
	    i++) {
		assert_true(i < WAFL_RING_K);
		put(w, "w-new", 80 + i, 8192);
		assert_int_equal(wafl_sync(w), 0);
	}
	put(c.b, "brk-new", 20, 24576);
	assert_int_equal(wafl_sync(c.b), 0);
	/* snaps: T's snapshots "one" and "two" after G travel too */
	uint64_t walk[3];
	struct wafl_snap_tree st[2];
	size_t nst = 0;
	if (snaps) {
		t_snapshots(&c, walk);
		assert_int_equal(wafl_snap_trees_after(c.b, c.a, st, 2, &nst),
		    0);
		assert_int_equal(nst, 2);
	}
	uint64_t tg = wafl_generation(c.b);
	uint8_t fsi[4096];
	struct wafl_fsinfo f;
	assert_int_equal(wafl_root_of(c.b, tg, fsi), 0);
	assert_int_equal(wafl_fsinfo_decode(fsi, &f), 0);
	size_t before = 0, after = 0;
	assert_int_equal(wafl_snap_names(w, NULL, 0, &before), 0);
	struct mir_resync_opts o = rs_opts(p, 0);
	assert_int_equal(mir_resync_serve(w, &o, &r), 0);
	uint16_t port = mir_resync_port(r);
	/* T's trees as T sends them; W's RS_DONE is lost (not sent, and W
	 * goes on as after a failed send) */
	struct fake_send *fs = calloc(1, sizeof(*fs));
	mir_resync_test_drop_reply();
	fake_t(p, port, &fc, c.a, &gbp);
	fake_begin(&fc, c.a, &gbp, tg, &f.root, (uint32_t)nst + 1);
	fs->c = &fc;
	struct mir_vset sent = { 0 };	/* a block crosses once */
	for (size_t k = 0; k < nst; k++) {
		struct wafl_bp sbp = { .vbn = st[k].vbn, .birth = st[k].birth,
		    .cksum = st[k].cksum };
		fake_tree_name(&fc, (uint32_t)k, st[k].name, st[k].gen, &sbp);
		fs->gen = st[k].gen;
		assert_int_equal(mir_tree_walk(p->dst->raid, &sbp, c.a, &sent,
		    fake_block, fs), 0);
	}
	fake_tree(&fc, (uint32_t)nst, 0, 0, tg, &f.root);
	fs->gen = tg;
	assert_int_equal(mir_tree_walk(p->dst->raid, &f.root, c.a, &sent,
	    fake_block, fs), 0);
	mir_vset_free(&sent);
	uint8_t e[8];
	fl_put_le64(e, fs->n);
	assert_int_equal(mir_send(&fc, MIR_MSG_RS_END, e, 8), 0);
	/* W imports; its reply is lost; then T retries */
	char name[80], second[96];
	snprintf(name, sizeof(name), "resync.%llu", (unsigned long long)tg);
	snprintf(second, sizeof(second), "%s.2", name);
	uint64_t id;
	for (int i = 0; i < 500 && wafl_snap_lookup(w, name, &id) != 0; i++)
		usleep(10000);
	assert_int_equal(wafl_snap_lookup(w, name, &id), 0);
	usleep(100000);
	mir_conn_close(&fc);
	free(fs);
	if (restart) {
		mir_resync_stop(r);
		tl_fs_remount(p->src);
		w = p->src->v;
		o = rs_opts(p, 0);
		assert_int_equal(mir_resync_serve(w, &o, &r), 0);
		port = mir_resync_port(r);
	}
	o = rs_opts(p, port);
	memset(&tr, 0, sizeof(tr));
	int rc = mir_resync_overwrite(&c.b, p->dst->raid, c.blog, &o, &tr);
	if (rc != 0)
		fprintf(stderr, "resync retry: %s\n", tr.error);
	assert_int_equal(rc, 0);
	assert_int_equal(tr.base_gen, c.a);
	assert_int_equal(mir_resync_wait(r, 30000, &wr), 0);
	mir_resync_stop(r);
	assert_string_equal(wr.snap_name, name);
	assert_int_equal(wr.snap_gen, tr.snap_gen);
	assert_int_equal(wafl_snap_lookup(w, second, &id), -ENOENT);
	assert_int_equal(wr.snaps, nst + 1);
	if (snaps) {
		char one[96];
		snprintf(one, sizeof(one), "%s.one", name);
		expect(w, one, "brk-new", 0, 20, 24576);
		expect(w, one, "s1-file", 0, 50, 16384);
	} else {
		expect(w, name, "brk-new", 0, 20, 24576);
	}
	assert_int_equal(wafl_snap_names(w, NULL, 0, &after), 0);
	fprintf(stderr, "snapshots on W: %zu before, %zu after\n", before,
	    after);
	assert_true(after <= before + 2 + nst);
	tm_check_clean(w, "winner after the retry");
	tm_pair_free(p);
}

static void test_resync_reply_lost(void **state)
{
	(void)state;
	reply_lost(false, false);
}

static void test_resync_reply_lost_restart(void **state)
{
	(void)state;
	reply_lost(true, false);
}

/* The same with T's two snapshots after G: the retry finds all three
 * imported trees by their tags. */
static void test_resync_reply_lost_restart_snaps(void **state)
{
	(void)state;
	reply_lost(true, true);
}

/* W without room in its snapshot table for all of T's trees refuses up
 * front, saying so; T stays as it was. */
static void test_resync_refuses_no_room(void **state)
{
	(void)state;
	struct rs_case c = { 0 };
	struct mir_resync_result wr, tr;
	mir_resync_t *r;
	uint64_t walk[3];

	setup_broken(&c);
	struct tm_pair *p = c.p;
	wafl_vol_t *w = p->src->v;
	diverge(&c, w, c.b);
	t_snapshots(&c, walk);
	size_t have = 0;
	assert_int_equal(wafl_snap_names(w, NULL, 0, &have), 0);
	/* three trees to keep (two snapshots, the active tree): leave two
	 * free slots */
	for (size_t i = have; i < WAFL_MAX_SNAPSHOTS - 2; i++) {
		char nm[32];
		snprintf(nm, sizeof(nm), "fill.%zu", i);
		assert_int_equal(wafl_snap_create(w, nm, NULL), 0);
	}
	uint64_t tgen = wafl_generation(c.b), wgen = wafl_generation(w);
	struct mir_resync_opts o = rs_opts(p, 0);
	assert_int_equal(mir_resync_serve(w, &o, &r), 0);
	uint16_t port = mir_resync_port(r);
	/* T learns the free slots with W's roots and refuses itself */
	o = rs_opts(p, port);
	memset(&tr, 0, sizeof(tr));
	assert_int_equal(mir_resync_overwrite(&c.b, p->dst->raid, c.blog,
	    &o, &tr), -ENOSPC);
	fprintf(stderr, "refused: %s\n", tr.error);
	assert_non_null(strstr(tr.error, "no room"));
	/* a T that announces the trees anyway: W refuses before a block */
	struct mir_conn fc;
	struct wafl_bp gbp;
	uint8_t fsi[4096];
	struct wafl_fsinfo f;
	assert_int_equal(wafl_root_of(c.b, tgen, fsi), 0);
	assert_int_equal(wafl_fsinfo_decode(fsi, &f), 0);
	fake_t(p, port, &fc, c.a, &gbp);
	fake_begin(&fc, c.a, &gbp, tgen, &f.root, 3);
	fake_refused(&fc, "no room");
	assert_int_equal(mir_resync_wait(r, 30000, &wr), -ENOSPC);
	mir_resync_stop(r);
	/* T as it was, W as it was */
	assert_non_null(c.b);
	assert_int_equal(wafl_generation(c.b), tgen);
	check_one(c.b, "one");
	check_two(c.b, "two");
	assert_int_equal(wafl_generation(w), wgen);
	size_t now = 0;
	assert_int_equal(wafl_snap_names(w, NULL, 0, &now), 0);
	assert_int_equal(now, WAFL_MAX_SNAPSHOTS - 2);
	assert_int_equal(wafl_unmount(c.b), 0);
	tm_pair_free(p);
}

/*
 * Failback after the source T rolled its active tree back to a snapshot
 * older than the common root G: T's tree uses old blocks G's own tree
 * does not hold.  W (the broken-off side) deletes that snapshot and
 * writes on, and refuses the import (nothing changes on W); T keeps its
 * data and is not rolled back.
 */
static void test_resync_refuses_blocks_base_lacks(void **state)
{
	(void)state;
	struct rs_case c = { 0 };
	struct mir_resync_result wr, tr;
	struct tm_pair *p = tm_pair_new();
	wafl_vol_t *t = p->src->v, *w;
	mir_resync_t *r;

	c.p = p;
	/* s0 holds "old" as first written; the mirror's root does not */
	put(t, "old", 5, 262144);
	assert_int_equal(wafl_snap_create(t, "s0", NULL), 0);
	put(t, "old", 6, 262144);
	put(t, "a", 2, 65536);
	assert_int_equal(wafl_sync(t), 0);
	tm_dest_start(p);
	tm_source_start(p);
	tm_sync(p);
	c.a = wafl_generation(mir_dest_volume(p->md));
	mir_source_stop(p->ms);
	p->ms = NULL;
	tl_path(c.blog, sizeof(c.blog), p->dst->dir, "nvlog-broken");
	assert_int_equal(mir_dest_break(p->md, c.blog, &c.b), 0);
	mir_dest_stop(p->md);
	p->md = NULL;
	w = c.b;
	/* W drops s0 and writes on past the end of its volume; the root
	 * of its break snapshot (G, kept for the peer) still keeps s0's
	 * blocks. */
	assert_int_equal(wafl_snap_delete(w, "s0"), 0);
	for (int i = 0; i < 8; i++) {
		put(w, "churn", 90 + (uint64_t)i, 24u << 20);
		assert_int_equal(wafl_sync(w), 0);
		rm(w, "churn");
		assert_int_equal(wafl_sync(w), 0);
	}
	/* T goes back to s0 and writes a little */
	assert_int_equal(wafl_snap_rollback(t, "s0"), 0);
	put(t, "t-after", 61, 8192);
	assert_int_equal(wafl_sync(t), 0);
	uint64_t tgen = wafl_generation(t), wgen = wafl_generation(w);
	size_t before = 0, after = 0;
	assert_int_equal(wafl_snap_names(w, NULL, 0, &before), 0);
	struct mir_resync_opts o = rs_opts(p, 0);
	assert_int_equal(mir_resync_serve(w, &o, &r), 0);
	o = rs_opts(p, mir_resync_port(r));
	memset(&tr, 0, sizeof(tr));
	int rc = mir_resync_overwrite(&p->src->v, p->src->raid,
	    p->src->logpath, &o, &tr);
	fprintf(stderr, "resync after a rollback on T: %d: %s\n", rc,
	    tr.error);
	if (rc == 0) {
		/* what the import kept of T's data */
		assert_int_equal(mir_resync_wait(r, 30000, &wr), 0);
		expect(w, wr.snap_name, "old", 0, 5, 262144);
	}
	assert_int_not_equal(rc, 0);
	assert_non_null(strstr(tr.error, "older than generation"));
	assert_int_equal(mir_resync_wait(r, 30000, &wr), -ESTALE);
	assert_non_null(strstr(wr.error, "older than generation"));
	mir_resync_stop(r);
	/* T as it was, W as it was */
	assert_non_null(p->src->v);
	assert_int_equal(wafl_generation(t), tgen);
	expect(t, NULL, "old", 0, 5, 262144);
	expect(t, NULL, "t-after", 0, 61, 8192);
	assert_int_equal(wafl_snap_names(w, NULL, 0, &after), 0);
	assert_int_equal(after, before);
	assert_int_equal(wafl_generation(w), wgen);
	tm_check_clean(w, "winner after the refusal");
	assert_int_equal(wafl_unmount(w), 0);
	tm_pair_free(p);
}

/* The other copy's blocks, as a birth walk gives them (the import's
 * source in the wafl-level test below). */
struct blkset {
	uint64_t vbn[4096], birth[4096];
	uint8_t (*data)[4096];
	uint32_t n;
	int corrupt;		/* flip a byte of block #corrupt (-1: none) */
	uint32_t served;
};

static int blk_collect(void *arg, uint64_t vbn, uint64_t birth,
    uint32_t cksum, const void *data,
    unsigned flags)
{
	struct blkset *b = arg;

	assert_true(b->n < 4096);
	b->vbn[b->n] = vbn;
	b->birth[b->n] = birth;
	memcpy(b->data[b->n], data, 4096);
	b->n++;
	return 0;
}

static int blk_get(void *arg, uint64_t vbn, uint64_t birth, uint8_t *buf)
{
	struct blkset *b = arg;

	for (uint32_t i = 0; i < b->n; i++) {
		if (b->vbn[i] != vbn || b->birth[i] != birth)
			continue;
		memcpy(buf, b->data[i], 4096);
		if ((int)b->served++ == b->corrupt)
			buf[100] ^= 0x40;
		return 0;
	}
	return -FL_ECORRUPT;
}

static struct blkset *blkset_new(void)
{
	struct blkset *b = calloc(1, sizeof(*b));

	assert_non_null(b);
	b->data = calloc(4096, 4096);
	assert_non_null(b->data);
	b->corrupt = -1;
	return b;
}

static void blkset_free(struct blkset *b)
{
	free(b->data);
	free(b);
}

/* A broken-off pair that diverged (setup_broken, diverge): T's newest
 * fsinfo in *f, and its blocks born after the common root collected in a
 * new blkset. */
static struct blkset *diverged_t(struct rs_case *c, struct wafl_fsinfo *f)
{
	struct blkset *b = blkset_new();
	uint8_t fsi[4096];

	setup_broken(c);
	diverge(c, c->p->src->v, c->b);
	uint64_t t = wafl_generation(c->b);
	assert_int_equal(wafl_root_of(c->b, t, fsi), 0);
	assert_int_equal(wafl_fsinfo_decode(fsi, f), 0);
	assert_int_equal(wafl_birth_walk(c->b, t, c->a, blk_collect, b), 0);
	return b;
}

/* wafl_import_snapshot on its own: hostile input changes nothing; then
 * the import reads back identical and the checker is clean. */
static void test_import_primitive(void **state)
{
	(void)state;
	struct rs_case c = { 0 };
	struct wafl_fsinfo f;
	struct blkset *b = diverged_t(&c, &f);
	struct tm_pair *p = c.p;
	wafl_vol_t *w = p->src->v;
	assert_int_equal(wafl_hold_root(w, c.a), 0);
	uint64_t id, before = wafl_generation(w);
	/* a damaged block, a missing block: refused, nothing changes */
	b->corrupt = 3;
	assert_int_equal(wafl_import_snapshot(w, "imp", c.a, &f.root, blk_get,
	    b, NULL), -FL_ECORRUPT);
	b->corrupt = -1;
	b->served = 0;
	uint32_t keep = b->n;
	b->n = keep - 1;
	assert_int_equal(wafl_import_snapshot(w, "imp", c.a, &f.root, blk_get,
	    b, NULL), -FL_ECORRUPT);
	b->n = keep;
	assert_int_equal(wafl_snap_lookup(w, "imp", &id), -ENOENT);
	assert_int_equal(wafl_generation(w), before);
	assert_int_equal(wafl_sync(w), 0);
	tm_check_clean(w, "winner after refused imports");
	/* the import: the broken-off side's tree, read back identical */
	struct wafl_import_stats is;
	assert_int_equal(wafl_import_snapshot(w, "imp", c.a, &f.root, blk_get,
	    b, &is), 0);
	assert_true(is.blocks > 5 && is.blocks < b->n + 1);
	assert_int_equal(wafl_snap_lookup(w, "imp", &id), 0);
	struct wafl_obj ra, rb;
	assert_int_equal(wafl_snap_root(w, id, &ra), 0);
	assert_int_equal(wafl_root(c.b, &rb), 0);
	tm_obj_equal(w, &ra, c.b, &rb, 0);
	/* the winner goes on writing over many CPs: the snapshot stays */
	for (int i = 0; i < 8; i++) {
		put(w, "more", 60 + (uint64_t)i, 65536);
		assert_int_equal(wafl_sync(w), 0);
	}
	tm_obj_equal(w, &ra, c.b, &rb, 0);
	tm_check_clean(w, "winner");
	wafl_release_root(w, c.a);
	assert_int_equal(wafl_snap_delete(w, "imp"), 0);
	tm_check_clean(w, "winner after the delete");
	assert_int_equal(wafl_unmount(c.b), 0);
	blkset_free(b);
	tm_pair_free(p);
}

/* Two trees with one root pointer (a snapshot that is the active tree):
 * one imported root under two names; deleting one leaves the other
 * readable and the volume clean. */
static void test_import_two_names_one_root(void **state)
{
	(void)state;
	struct rs_case c = { 0 };
	struct wafl_fsinfo f;
	struct blkset *b = diverged_t(&c, &f);
	struct tm_pair *p = c.p;
	wafl_vol_t *w = p->src->v;
	struct wafl_import_tree it[2] = {
		{ .name = "imp.x", .root = &f.root, .origin = 0x1111 },
		{ .name = "imp.y", .root = &f.root, .origin = 0x2222 } };
	struct wafl_import_stats total;
	assert_int_equal(wafl_import_snapshots(w, c.a, it, 2, b->n, blk_get,
	    b, &total), 0);
	assert_int_equal(total.reached, b->n);
	tm_check_clean(w, "winner, two names on one root");
	/* Each entry keeps its tree's origin, across a remount; a snapshot
	 * made here has none. */
	assert_int_equal(wafl_snap_create(w, "made-here", NULL), 0);
	tl_fs_remount(p->src);
	w = p->src->v;
	struct wafl_snap_tree st[8];
	size_t ns = 0;
	assert_int_equal(wafl_snap_trees_after(w, 0, st, 8, &ns), 0);
	int seen = 0;
	for (size_t i = 0; i < ns && i < 8; i++) {
		static const struct { const char *name; uint64_t origin; }
		    want[] = { { "imp.x", 0x1111 }, { "imp.y", 0x2222 },
		    { "made-here", 0 } };
		for (size_t k = 0; k < 3; k++) {
			if (strcmp(st[i].name, want[k].name) != 0)
				continue;
			assert_int_equal(st[i].origin, want[k].origin);
			seen++;
		}
	}
	assert_int_equal(seen, 3);
	assert_int_equal(wafl_snap_delete(w, "made-here"), 0);
	uint64_t id;
	struct wafl_obj ry, rb;
	assert_int_equal(wafl_root(c.b, &rb), 0);
	assert_int_equal(wafl_snap_delete(w, "imp.x"), 0);
	for (int i = 0; i < 8; i++) {
		put(w, "more", 60 + (uint64_t)i, 65536);
		assert_int_equal(wafl_sync(w), 0);
	}
	assert_int_equal(wafl_snap_lookup(w, "imp.y", &id), 0);
	assert_int_equal(wafl_snap_root(w, id, &ry), 0);
	tm_obj_equal(w, &ry, c.b, &rb, 0);
	tm_check_clean(w, "winner after deleting one name");
	assert_int_equal(wafl_unmount(c.b), 0);
	blkset_free(b);
	tm_pair_free(p);
}

/* T's two snapshots and active tree as t_snapshots makes them, their
 * roots and blocks (each collected while its root is in T's ring), for
 * the import called directly. */
static void t_three(struct rs_case *c, struct blkset *b,
    struct wafl_bp roots[3])
{
	wafl_vol_t *t = c->b;
	uint8_t fsi[4096];
	struct wafl_fsinfo f;
	uint64_t gen;

	put(t, "s1-file", 50, 16384);
	put(t, "s1-big", 51, S1BIG);
	assert_int_equal(wafl_snap_create(t, "one", NULL), 0);
	assert_int_equal(wafl_snap_root_info(t, "one", &gen, NULL), 0);
	assert_int_equal(wafl_root_of(t, gen, fsi), 0);
	assert_int_equal(wafl_fsinfo_decode(fsi, &f), 0);
	roots[0] = f.root;
	assert_int_equal(wafl_birth_walk(t, gen, c->a, blk_collect, b), 0);
	patch(t, "s1-big", 0, 52);
	rm(t, "s1-file");
	put(t, "s2-file", 53, 8192);
	assert_int_equal(wafl_snap_create(t, "two", NULL), 0);
	assert_int_equal(wafl_snap_root_info(t, "two", &gen, NULL), 0);
	assert_int_equal(wafl_root_of(t, gen, fsi), 0);
	assert_int_equal(wafl_fsinfo_decode(fsi, &f), 0);
	roots[1] = f.root;
	assert_int_equal(wafl_birth_walk(t, gen, c->a, blk_collect, b), 0);
	put(t, "act-file", 54, 12288);
	patch(t, "brk-new", 0, 55);
	assert_int_equal(wafl_sync(t), 0);
	gen = wafl_generation(t);
	assert_int_equal(wafl_root_of(t, gen, fsi), 0);
	assert_int_equal(wafl_fsinfo_decode(fsi, &f), 0);
	roots[2] = f.root;
	assert_int_equal(wafl_birth_walk(t, gen, c->a, blk_collect, b), 0);
}

/* Adding the entries fails at the second of three trees: none of the
 * snapshots exists, before or after the next CP, the summary map is as
 * it was (check clean), and the same import then succeeds. */
static void test_import_all_or_none(void **state)
{
	(void)state;
	struct rs_case c = { 0 };
	struct blkset *b = blkset_new();
	struct wafl_bp roots[3];
	const char *names[3] = { "imp.one", "imp.two", "imp.act" };
	uint64_t id;

	setup_broken(&c);
	struct tm_pair *p = c.p;
	wafl_vol_t *w = p->src->v;
	diverge(&c, w, c.b);
	t_three(&c, b, roots);
	assert_int_equal(wafl_hold_root(w, c.a), 0);
	assert_int_equal(wafl_sync(w), 0);
	size_t before = 0, now = 0;
	assert_int_equal(wafl_snap_names(w, NULL, 0, &before), 0);
	uint64_t wgen = wafl_generation(w);
	struct wafl_import_tree it[3];
	for (int i = 0; i < 3; i++)
		it[i] = (struct wafl_import_tree){ .name = names[i],
		    .root = &roots[i] };
	wafl_import_test_fail_entry(2);
	assert_int_equal(wafl_import_snapshots(w, c.a, it, 3, 0, blk_get, b,
	    NULL), -EIO);
	for (int i = 0; i < 3; i++)
		assert_int_equal(wafl_snap_lookup(w, names[i], &id), -ENOENT);
	assert_int_equal(wafl_snap_names(w, NULL, 0, &now), 0);
	assert_int_equal(now, before);
	assert_int_equal(wafl_generation(w), wgen);
	/* the next CP keeps it so */
	assert_int_equal(wafl_sync(w), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(wafl_snap_lookup(w, names[i], &id), -ENOENT);
	assert_int_equal(wafl_snap_names(w, NULL, 0, &now), 0);
	assert_int_equal(now, before);
	tm_check_clean(w, "winner after a failed import");
	/* W writes on over the VBNs the failed import took */
	for (int i = 0; i < 4; i++) {
		put(w, "more", 60 + (uint64_t)i, 65536);
		assert_int_equal(wafl_sync(w), 0);
	}
	tm_check_clean(w, "winner writing after a failed import");
	/* the retry */
	assert_int_equal(wafl_import_snapshots(w, c.a, it, 3, 0, blk_get, b,
	    NULL), 0);
	check_one(w, names[0]);
	check_two(w, names[1]);
	check_act(w, names[2]);
	assert_int_equal(wafl_snap_names(w, NULL, 0, &now), 0);
	assert_int_equal(now, before + 3);
	tm_check_clean(w, "winner after the retry");
	wafl_release_root(w, c.a);
	assert_int_equal(wafl_unmount(c.b), 0);
	blkset_free(b);
	tm_pair_free(p);
}

/* The collected block of T at bp (born after the base). */
static uint8_t *bs_find(struct blkset *b, const struct wafl_bp *bp)
{
	for (uint32_t i = 0; i < b->n; i++)
		if (b->vbn[i] == bp->vbn && b->birth[i] == bp->birth)
			return b->data[i];
	return NULL;
}

/*
 * A lying T: bits lie[0..nlie) set in its active tree's bitmap (block 0)
 * besides its own, every pointer from the bitmap block up to the root
 * block resealed so the tree checks; root gets the new root pointer.
 */
static void t_lie_bitmap(struct blkset *b, struct wafl_bp *root,
    const uint64_t *lie, unsigned nlie)
{
	struct wafl_rootblk rb;
	struct wafl_dinode bm;
	uint8_t *rblk = bs_find(b, root), *path[WAFL_MAX_HEIGHT + 1];
	struct wafl_bp bp;

	assert_non_null(rblk);
	assert_int_equal(wafl_rootblk_decode(rblk, &rb), 0);
	/* down to inode-file block 0: every block on the way changed */
	unsigned h = rb.inodefile.height;
	bp = rb.inodefile.u.top[0];
	for (unsigned l = h; l > 0; l--) {
		path[l] = bs_find(b, &bp);
		assert_non_null(path[l]);
		assert_int_equal(wafl_bp_decode(path[l], &bp), 0);
	}
	uint8_t *ib = bs_find(b, &bp);
	assert_non_null(ib);
	assert_int_equal(wafl_dinode_decode(ib + WAFL_INO_BITMAP *
	    WAFL_INODE_SIZE, WAFL_INO_BITMAP, &bm), 0);
	assert_int_equal(bm.height, 0);
	uint8_t *bb = bs_find(b, &bm.u.top[0]);
	assert_non_null(bb);
	for (unsigned i = 0; i < nlie; i++) {
		assert_true(lie[i] < WAFL_BITS_PER_BLOCK);
		assert_false(bb[lie[i] / 8] & (1u << (lie[i] % 8)));
		bb[lie[i] / 8] |= (uint8_t)(1u << (lie[i] % 8));
	}
	/* reseal, bottom up */
	bm.u.top[0].cksum = fl_crc32c(0, bb, WAFL_BLOCK_SIZE);
	wafl_dinode_encode(ib + WAFL_INO_BITMAP * WAFL_INODE_SIZE, &bm);
	uint32_t ck = fl_crc32c(0, ib, WAFL_BLOCK_SIZE);
	for (unsigned l = 1; l <= h; l++) {
		assert_int_equal(wafl_bp_decode(path[l], &bp), 0);
		bp.cksum = ck;
		wafl_bp_encode(path[l], &bp);
		ck = fl_crc32c(0, path[l], WAFL_BLOCK_SIZE);
	}
	rb.inodefile.u.top[0].cksum = ck;
	wafl_rootblk_encode(rblk, &rb);
	root->cksum = fl_crc32c(0, rblk, WAFL_BLOCK_SIZE);
}

/* T's bitmap claims blocks the base does not have: the imported
 * snapshot does not hold them, the summary map does not gain them, the
 * checker is clean and they stay free here. */
static void test_import_bounds_lying_bitmap(void **state)
{
	(void)state;
	struct rs_case c = { 0 };
	struct wafl_fsinfo f;
	struct blkset *b = diverged_t(&c, &f);
	struct tm_pair *p = c.p;
	wafl_vol_t *w = p->src->v;
	assert_int_equal(wafl_hold_root(w, c.a), 0);
	/* VBNs near the end of area 0 that neither T nor W uses */
	uint64_t lie[8];
	unsigned nlie = 0;
	for (uint64_t vbn = WAFL_BITS_PER_BLOCK - 1; nlie < 8; vbn--) {
		bool act, sum;
		assert_int_equal(bitmap_test(w->bitmap_wn, vbn, &act), 0);
		assert_int_equal(bitmap_test(w->summary_wn, vbn, &sum), 0);
		if (!act && !sum)
			lie[nlie++] = vbn;
	}
	t_lie_bitmap(b, &f.root, lie, nlie);
	uint64_t id;
	assert_int_equal(wafl_import_snapshot(w, "lie", c.a, &f.root,
	    blk_get, b, NULL), 0);
	assert_int_equal(wafl_snap_lookup(w, "lie", &id), 0);
	for (unsigned i = 0; i < nlie; i++) {
		bool sum;
		assert_int_equal(bitmap_test(w->summary_wn, lie[i], &sum), 0);
		assert_false(sum);
	}
	tm_check_clean(w, "winner after a lying bitmap");
	/* the snapshot reads as T's tree */
	struct wafl_obj ra, rb;
	assert_int_equal(wafl_snap_root(w, id, &ra), 0);
	assert_int_equal(wafl_root(c.b, &rb), 0);
	tm_obj_equal(w, &ra, c.b, &rb, 0);
	wafl_release_root(w, c.a);
	assert_int_equal(wafl_unmount(c.b), 0);
	blkset_free(b);
	tm_pair_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resync_overwrites_broken_off),
		cmocka_unit_test(test_resync_reverse),
		cmocka_unit_test(test_resync_parked_source),
		cmocka_unit_test(test_resync_parked_source_reverse),
		cmocka_unit_test(test_resync_twice),
		cmocka_unit_test(test_resync_twice_reverse),
		cmocka_unit_test(test_resync_twice_reply_lost),
		cmocka_unit_test(test_break_crash_keeps_base),
		cmocka_unit_test(test_resync_t_listens_on_shared_port),
		cmocka_unit_test(test_resync_throttled_w_reads),
		cmocka_unit_test(test_resync_throttled_t_writes),
		cmocka_unit_test(test_resync_carries_snapshots),
		cmocka_unit_test(test_resync_delete_one_imported),
		cmocka_unit_test(test_resync_carries_any_valid_name),
		cmocka_unit_test(test_resync_refuses_lying_trees),
		cmocka_unit_test(test_resync_reply_lost),
		cmocka_unit_test(test_resync_reply_lost_restart),
		cmocka_unit_test(test_resync_reply_lost_restart_snaps),
		cmocka_unit_test(test_resync_refuses_no_room),
		cmocka_unit_test(test_resync_refuses_blocks_base_lacks),
		cmocka_unit_test(test_import_primitive),
		cmocka_unit_test(test_import_two_names_one_root),
		cmocka_unit_test(test_import_all_or_none),
		cmocka_unit_test(test_import_bounds_lying_bitmap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
