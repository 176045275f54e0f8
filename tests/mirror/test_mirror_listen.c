/*
 * tests/mirror/test_mirror_listen.c: several relationships received on
 * one port (mirror/listen.c).
 *
 *   first_frame  mir_first_frame_id on HELLO, RS_HELLO and RS_OPEN frames
 *                whole, cut at every length, and altered: a wrong
 *                checksum, sequence, flag, version or type, a HELLO with
 *                a bad field, are refused; a cut frame asks for exactly
 *                the bytes it lacks.
 *   shared       a source that connects before the listener accepts
 *                waits in the backlog, unrefused, and is served once its
 *                destination is there; two destinations on one listener,
 *                each fed by its own source over the listener's port:
 *                both replicas equal their sources through several CPs,
 *                with a connection that says nothing, one that sends
 *                garbage and one for an unknown relationship (answered
 *                "unknown relationship", ECONNREFUSED: the peer may
 *                retry) open meanwhile; a second destination with an id
 *                already taken is refused; a source with the wrong key
 *                reaches its destination, which refuses it; both
 *                destinations stop and start again on the same listener
 *                and catch up.
 */
#include <sys/socket.h>
#include <unistd.h>

#include "mirror/wire.h"
#include "tests/mirror/tm.h"

/* A sealed first frame of type t into f; its length. */
static size_t frame(uint8_t *f, uint16_t t, const uint8_t id[16])
{
	uint32_t len = t == MIR_MSG_RS_HELLO ? 64 : 32;
	struct mir_hdr h = { .version = MIR_WIRE_VERSION, .type = t,
	    .length = len, .seq = 0 };

	memset(f, 0, MIR_HDR_SIZE + 64);
	if (t == MIR_MSG_HELLO) {
		struct mir_hello he = { .vmin = MIR_WIRE_VERSION,
		    .vmax = MIR_WIRE_VERSION, .side = MIR_SIDE_SOURCE };
		memcpy(he.id, id, 16);
		mir_hello_encode(f + MIR_HDR_SIZE, &he);
	} else {
		memcpy(f + MIR_HDR_SIZE, id, 16);
		if (t == MIR_MSG_RS_HELLO)
			memset(f + MIR_HDR_SIZE + 16, 0x5a, 32); /* nonce */
	}
	mir_hdr_encode(f, &h);
	mir_frame_seal(f, len);
	return MIR_HDR_SIZE + len;
}

static void test_first_frame(void **state)
{
	static const uint16_t types[] = { MIR_MSG_HELLO, MIR_MSG_RS_HELLO,
	    MIR_MSG_RS_OPEN };
	uint8_t id[16], got[16], f[MIR_HDR_SIZE + 64], g[MIR_HDR_SIZE + 64];
	size_t need;

	(void)state;
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(0xc0 + i);
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		size_t n = frame(f, types[k], id);

		memset(got, 0, sizeof(got));
		assert_int_equal(mir_first_frame_id(f, n, &need, got), 0);
		assert_memory_equal(got, id, 16);
		/* Cut anywhere: more is needed, and exactly the frame. */
		for (size_t cut = 0; cut < n; cut++) {
			assert_int_equal(mir_first_frame_id(f, cut, &need, got),
			    -EAGAIN);
			assert_int_equal(need, cut < MIR_HDR_SIZE ?
			    MIR_HDR_SIZE : n);
		}
		/* Any byte of header or payload changed: refused (the
		 * checksum, if nothing before it). */
		for (size_t b = 0; b < n; b++) {
			memcpy(g, f, n);
			g[b] ^= 0x01;
			assert_int_not_equal(mir_first_frame_id(g, n, &need,
			    got), 0);
		}
		/* Resealed with a later sequence number or a flag. */
		struct mir_hdr h;
		assert_int_equal(mir_hdr_decode(f, &h), 0);
		memcpy(g, f, n);
		h.seq = 1;
		mir_hdr_encode(g, &h);
		mir_frame_seal(g, h.length);
		assert_int_equal(mir_first_frame_id(g, n, &need, got),
		    -FL_EPROTO);
	}
	/* Frames that cannot open a connection. */
	static const uint16_t others[] = { MIR_MSG_CHALLENGE,
	    MIR_MSG_RESPONSE, MIR_MSG_ACK, MIR_MSG_RS_PROOF, MIR_MSG_BLOCK,
	    MIR_MSG_HEARTBEAT };
	for (size_t k = 0; k < sizeof(others) / sizeof(others[0]); k++) {
		uint32_t len = mir_payload_min(others[k]);
		uint8_t *b = calloc(1, MIR_HDR_SIZE + len);
		struct mir_hdr h = { .version = MIR_WIRE_VERSION,
		    .type = others[k], .length = len };
		mir_hdr_encode(b, &h);
		mir_frame_seal(b, len);
		assert_int_equal(mir_first_frame_id(b, MIR_HDR_SIZE + len,
		    &need, got), -FL_EPROTO);
		free(b);
	}
	/* A HELLO whose padding is not zero, resealed. */
	size_t n = frame(f, MIR_MSG_HELLO, id);
	f[MIR_HDR_SIZE + 9] = 1;
	mir_frame_seal(f, 32);
	assert_int_equal(mir_first_frame_id(f, n, &need, got), -FL_EPROTO);
	/* Not a mirror frame at all. */
	memset(g, 'G', sizeof(g));
	assert_int_equal(mir_first_frame_id(g, sizeof(g), &need, got),
	    -FL_EPROTO);
}

/* ------------------------------------------------------------ shared */

static void dest_on(struct tm_pair *p, mir_listener_t *l, bool baseline)
{
	struct mir_dest_opts o = { .key = p->key, .key_len = sizeof(p->key),
	    .allow_baseline = baseline, .io_timeout_ms = 5000,
	    .listener = l };

	memcpy(o.rel_id, p->id, 16);
	assert_int_equal(mir_dest_start(p->dst->raid, &o, &p->md), 0);
	assert_int_equal(mir_dest_port(p->md), mir_listener_port(l));
	p->port = mir_listener_port(l);
}

static void put(struct tm_pair *p, const char *name, uint32_t seed)
{
	uint8_t buf[20480];
	struct wafl_obj f = tm_file(p->src->v, name);

	tl_fill_pattern(buf, sizeof(buf), seed);
	tm_write(p->src->v, &f, 0, buf, sizeof(buf));
}

static int raw(uint16_t port)
{
	int fd = mir_tcp_connect("127.0.0.1", port, 2000);

	assert_true(fd >= 0);
	return fd;
}

/* The listener's stats once field (an offset into them) reached want. */
static void stats_reach(mir_listener_t *l, size_t field, uint64_t want)
{
	struct mir_listener_stats st;
	uint64_t v = 0;

	for (int i = 0; i < 500; i++) {
		mir_listener_stats(l, &st);
		memcpy(&v, (const uint8_t *)&st + field, sizeof(v));
		if (v >= want)
			return;
		usleep(10000);
	}
	fail_msg("listener counter at offset %zu is %llu, expected %llu", field,
	    (unsigned long long)v, (unsigned long long)want);
}

static void test_shared(void **state)
{
	struct tm_pair *a = tm_pair_new(), *b = tm_pair_new();
	mir_listener_t *l = NULL;
	uint8_t f[MIR_HDR_SIZE + 64];

	(void)state;
	b->id[3] ^= 0x77;		/* another relationship */
	b->key[0] ^= 0x33;		/* with a key of its own */
	assert_int_equal(mir_listener_start("127.0.0.1", 0, &l), 0);
	assert_int_equal(mir_listener_attached(l), 0);
	/* Not accepting yet: a source that comes before its destination
	 * is there waits in the backlog; it is not refused. */
	a->port = mir_listener_port(l);
	put(a, "a0", 3);
	assert_int_equal(wafl_sync(a->src->v), 0);
	tm_source_start(a);
	usleep(300000);
	struct mir_listener_stats ls;
	mir_listener_stats(l, &ls);
	assert_int_equal(ls.accepted, 0);
	dest_on(a, l, true);
	dest_on(b, l, true);
	assert_int_equal(mir_listener_attached(l), 2);
	mir_listener_accept(l);
	assert_int_equal(mir_source_wait(a->ms, 0, 20000), 0);
	mir_listener_stats(l, &ls);
	assert_int_equal(ls.unknown, 0);
	tl_log_capture_start(FL_LOG_WARN);

	/* The same id twice: refused, the first keeps running. */
	struct tm_pair *dup = tm_pair_new();
	memcpy(dup->id, a->id, 16);
	struct mir_dest_opts o = { .key = dup->key, .key_len = 32,
	    .allow_baseline = true, .listener = l };
	memcpy(o.rel_id, dup->id, 16);
	mir_dest_t *md = NULL;
	assert_int_equal(mir_dest_start(dup->dst->raid, &o, &md),
	    -EADDRINUSE);
	assert_int_equal(mir_listener_attached(l), 2);
	tl_fs_destroy(dup->src);
	tl_fs_destroy(dup->dst);
	free(dup);

	/* Connections that hold nothing up: one silent, one sending
	 * half a header, both open through the whole exchange. */
	int silent = raw(mir_listener_port(l));
	int half = raw(mir_listener_port(l));
	frame(f, MIR_MSG_HELLO, a->id);
	assert_int_equal(send(half, f, 20, MSG_NOSIGNAL), 20);

	/* Garbage: closed. */
	int junk = raw(mir_listener_port(l));
	memset(f, 'x', sizeof(f));
	assert_int_equal(send(junk, f, sizeof(f), MSG_NOSIGNAL),
	    (ssize_t)sizeof(f));
	stats_reach(l, offsetof(struct mir_listener_stats, malformed), 1);
	char c;
	assert_true(recv(junk, &c, 1, 0) <= 0);
	close(junk);

	/* An unknown relationship: an ERROR that says so. */
	uint8_t other[16];
	memcpy(other, a->id, 16);
	other[15] ^= 0xee;
	struct mir_conn conn;
	struct mir_peer_cfg pc = { .key = a->key, .key_len = 32 };
	struct mir_status_msg st;
	memcpy(pc.id, other, 16);
	assert_int_equal(mir_conn_init(&conn, raw(mir_listener_port(l)), 3000,
	    NULL), 0);
	assert_int_equal(mir_handshake_source(&conn, &pc, &st),
	    -ECONNREFUSED);
	assert_string_equal(conn.peer_error, "unknown relationship");
	mir_conn_close(&conn);
	stats_reach(l, offsetof(struct mir_listener_stats, unknown), 1);
	assert_true(tl_log_count_with("which this filerd does not receive",
	    NULL) >= 1);

	/* Both relationships, each with its own data, through the port. */
	put(a, "a1", 1);
	put(b, "b1", 2);
	assert_int_equal(wafl_sync(a->src->v), 0);
	assert_int_equal(wafl_sync(b->src->v), 0);
	tm_source_start(b);
	for (int i = 0; i < 4; i++) {
		char n[16];
		snprintf(n, sizeof(n), "a%d", i + 2);
		put(a, n, 10 + (uint32_t)i);
		snprintf(n, sizeof(n), "b%d", i + 2);
		put(b, n, 20 + (uint32_t)i);
		tm_sync(a);
		tm_sync(b);
	}
	tm_tree_equal(a->src->v, mir_dest_volume(a->md));
	tm_tree_equal(b->src->v, mir_dest_volume(b->md));
	mir_listener_stats(l, &ls);
	assert_true(ls.routed >= 2);
	close(silent);
	close(half);

	/* A source of b with a's key: routed to b, which refuses it. */
	struct mir_dest_stats ds0, ds;
	mir_dest_stats(b->md, &ds0);
	mir_source_stop(b->ms);
	b->ms = NULL;
	uint8_t bkey[32];
	memcpy(bkey, b->key, 32);
	memcpy(b->key, a->key, 32);
	tm_source_start(b);
	for (int i = 0; i < 500; i++) {
		mir_dest_stats(b->md, &ds);
		if (ds.auth_failures > ds0.auth_failures)
			break;
		usleep(10000);
	}
	assert_true(ds.auth_failures > ds0.auth_failures);
	mir_source_stop(b->ms);
	b->ms = NULL;
	/* A stranger knocking on b with that wrong key, again and again:
	 * every knock is counted and refused, and the log says so once,
	 * not once a knock (neither the handshake nor the destination). */
	size_t logged0 = tl_log_count_with("wrong key", NULL);
	mir_dest_stats(b->md, &ds0);
	for (int i = 0; i < 20; i++) {
		struct mir_conn kc;
		struct mir_peer_cfg kp = { .key = a->key, .key_len = 32 };
		struct mir_status_msg kst;

		memcpy(kp.id, b->id, 16);
		assert_int_equal(mir_conn_init(&kc, raw(mir_listener_port(l)),
		    3000, NULL), 0);
		assert_int_not_equal(mir_handshake_source(&kc, &kp, &kst), 0);
		mir_conn_close(&kc);
	}
	for (int i = 0; i < 500; i++) {
		mir_dest_stats(b->md, &ds);
		if (ds.auth_failures >= ds0.auth_failures + 20)
			break;
		usleep(10000);
	}
	assert_true(ds.auth_failures >= ds0.auth_failures + 20);
	assert_true(ds.rejects >= ds0.rejects + 20);
	assert_non_null(strstr(ds.last_error, "peer refused at handshake: "
	    "authentication failed (wrong key)"));
	if (tl_log_count_with("wrong key", NULL) > logged0 + 1) {
		tl_log_dump("refusals logged");
		fail_msg("20 refused knocks logged %zu lines",
		    tl_log_count_with("wrong key", NULL) - logged0);
	}
	memcpy(b->key, bkey, 32);

	/* Both destinations stop and start again on the listener (no
	 * baseline): each catches up with what its source did meanwhile. */
	mir_source_stop(a->ms);
	a->ms = NULL;
	mir_dest_stop(a->md);
	mir_dest_stop(b->md);
	a->md = b->md = NULL;
	assert_int_equal(mir_listener_attached(l), 0);
	put(a, "a-later", 30);
	put(b, "b-later", 31);
	assert_int_equal(wafl_sync(a->src->v), 0);
	assert_int_equal(wafl_sync(b->src->v), 0);
	dest_on(a, l, false);
	dest_on(b, l, false);
	tm_source_start(a);
	tm_source_start(b);
	tm_sync(a);
	tm_sync(b);
	tm_tree_equal(a->src->v, mir_dest_volume(a->md));
	tm_tree_equal(b->src->v, mir_dest_volume(b->md));
	tm_check_clean(mir_dest_volume(a->md), "destination a");
	tm_check_clean(mir_dest_volume(b->md), "destination b");
	mir_source_stop(a->ms);
	mir_source_stop(b->ms);
	a->ms = b->ms = NULL;
	mir_dest_stop(a->md);
	mir_dest_stop(b->md);
	a->md = b->md = NULL;
	mir_listener_stop(l);
	tl_log_capture_stop();
	tm_pair_free(a);
	tm_pair_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_frame),
		cmocka_unit_test(test_shared),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
