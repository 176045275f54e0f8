/*
 * tests/mirror/test_mirror_wire.c: the link options of a relationship.
 * A transfer with lz4, with zstd, and with TLS, each ending with the
 * replica equal to the source; compressible data costs fewer bytes on
 * the wire with compression on; TLS hides the data from the wire (a
 * capturing proxy never sees a marker the files hold, which it does see
 * without TLS); a source whose options differ from the destination's is
 * refused with an error that says so; a compressed BLOCK that does not
 * decompress to exactly its size closes the connection and changes
 * nothing; a throttled connection sends no faster than its rate, and
 * a stop ends a paced send; a connection with a read rate reads no
 * faster than it, every frame intact, a stop ends a paced read, and at
 * the floor rate over TCP the peer sending to it does not time out
 * (though its socket stays full for longer than its timeout).  A
 * destination played by the test that acknowledges a generation it was
 * never sent is refused, and the source keeps its holds; one that takes
 * every frame and never acknowledges is given up once the frees behind
 * the held roots pass the fallback bound, and the fallback follows.  A
 * peer that trickles its handshake or a frame a byte at a time is cut
 * off within the timeout.  A source whose destination's volume is too
 * small says so.  A source that vanished without closing its connection
 * does not keep the destination from serving its successor; a live one,
 * idle, keeps its link however many connections wait that prove nothing
 * (its HEARTBEATs say it is alive; one out of bounds closes the link).
 * A quiesce ends a wait for an acknowledgement.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/util.h"
#include "mirror/mir_impl.h"
#include "mirror/wire.h"
#include "tests/mirror/tm.h"

#include <zstd.h>

#define MARKER	"filer-wire-test-marker"

static void dest_start(struct tm_pair *p, uint8_t compress, bool tls)
{
	struct mir_dest_opts o = { .key = p->key, .key_len = sizeof(p->key),
	    .allow_baseline = true, .io_timeout_ms = 5000,
	    .compress = compress, .tls = tls };

	memcpy(o.rel_id, p->id, 16);
	assert_int_equal(mir_dest_start(p->dst->raid, &o, &p->md), 0);
	p->port = mir_dest_port(p->md);
}

static void source_start(struct tm_pair *p, uint16_t port, uint8_t compress,
    bool tls)
{
	struct mir_source_opts o = { .key = p->key, .key_len = sizeof(p->key),
	    .host = "127.0.0.1", .port = port, .mode = MIR_SYNC,
	    .raid = p->src->raid, .allow_baseline = true, .retry_ms = 20,
	    .io_timeout_ms = 5000, .compress = compress, .tls = tls };

	memcpy(o.rel_id, p->id, 16);
	assert_int_equal(mir_source_start(p->src->v, &o, &p->ms), 0);
}

/* Text-like, compressible data with the marker in every line. */
static void fill_text(uint8_t *buf, size_t len, unsigned seed)
{
	size_t off = 0;
	unsigned line = 0;

	while (off < len) {
		char l[96];
		int n = snprintf(l, sizeof(l), "%s line %u of file %u: the "
		    "quick brown fox\n", MARKER, line++, seed);
		size_t k = (size_t)n < len - off ? (size_t)n : len - off;
		memcpy(buf + off, l, k);
		off += k;
	}
}

static void write_files(struct tm_pair *p, int nfiles, uint32_t size)
{
	uint8_t *a = malloc(size);

	for (int i = 0; i < nfiles; i++) {
		char name[32];
		snprintf(name, sizeof(name), "text-%d", i);
		struct wafl_obj f = tm_file(p->src->v, name);
		fill_text(a, size, (unsigned)i);
		for (uint32_t off = 0; off < size; off += WAFL_WRITE_MAX)
			tm_write(p->src->v, &f, off, a + off,
			    size - off < WAFL_WRITE_MAX ? size - off :
			    WAFL_WRITE_MAX);
	}
	assert_int_equal(wafl_sync(p->src->v), 0);
	free(a);
}

/* The source's counters once the newest root is acknowledged (they are
 * live: the ACK publishes every byte of its transfer). */
static void stats_synced(struct tm_pair *p, struct mir_source_stats *ss)
{
	assert_int_equal(mir_source_wait(p->ms, 0, 20000), 0);
	mir_source_stats(p->ms, ss);
}

/* A baseline and a few CPs with these options; the wire bytes and the
 * BLOCKs sent compressed. */
static void transfer_with(uint8_t compress, bool tls, uint64_t *bytes,
    uint64_t *compressed, uint64_t *blocks)
{
	struct tm_pair *p = tm_pair_new();
	struct mir_source_stats ss;
	struct mir_dest_stats ds;

	write_files(p, 2, 1u << 20);
	dest_start(p, compress, tls);
	source_start(p, p->port, compress, tls);
	assert_int_equal(mir_source_wait(p->ms, 0, 20000), 0);
	/* CPs in the stream too. */
	for (int i = 0; i < 3; i++) {
		uint8_t buf[8192];
		struct wafl_obj f = tm_file(p->src->v, "cp-file");
		fill_text(buf, sizeof(buf), 100u + (unsigned)i);
		tm_write(p->src->v, &f, (uint64_t)i * sizeof(buf), buf,
		    sizeof(buf));
		tm_sync(p);
	}
	stats_synced(p, &ss);
	mir_dest_stats(p->md, &ds);
	assert_int_equal(ds.rejects, 0);
	assert_int_equal(ds.mirror_reads, 0);
	*bytes = ss.bytes_out;
	*compressed = ss.blocks_compressed;
	*blocks = ss.blocks_sent_walk + ss.blocks_sent_cp;
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	tm_check_clean(mir_dest_volume(p->md), "replica");
	tm_pair_free(p);
}

static void test_compression_shrinks_the_wire(void **state)
{
	uint64_t b_none, b_lz4, b_zstd, c_none, c_lz4, c_zstd, n0, n1, n2;

	transfer_with(MIR_COMP_NONE, false, &b_none, &c_none, &n0);
	transfer_with(MIR_COMP_LZ4, false, &b_lz4, &c_lz4, &n1);
	transfer_with(MIR_COMP_ZSTD, false, &b_zstd, &c_zstd, &n2);
	fprintf(stderr, "wire bytes for %llu blocks of text: none %llu, lz4 "
	    "%llu (%.1fx, %llu BLOCKs compressed), zstd %llu (%.1fx, %llu "
	    "BLOCKs compressed)\n", (unsigned long long)n0,
	    (unsigned long long)b_none, (unsigned long long)b_lz4,
	    (double)b_none / (double)b_lz4, (unsigned long long)c_lz4,
	    (unsigned long long)b_zstd, (double)b_none / (double)b_zstd,
	    (unsigned long long)c_zstd);
	assert_int_equal(c_none, 0);
	assert_true(c_lz4 > 0 && c_zstd > 0);
	assert_true(b_lz4 * 2 < b_none);
	assert_true(b_zstd * 2 < b_none);
}

/* ------------------------------------------------ a capturing proxy */

struct capture {
	int lfd;
	uint16_t port, to;
	_Atomic bool stop;
	uint8_t *buf;			/* source -> destination bytes */
	size_t len, cap;
	pthread_t t;
};

static void capture_conn(struct capture *cp, int a)
{
	int b = mir_tcp_connect("127.0.0.1", cp->to, 2000);
	static uint8_t buf[65536];

	if (b < 0) {
		close(a);
		return;
	}
	(void)fcntl(b, F_SETFL, fcntl(b, F_GETFL) & ~O_NONBLOCK);
	while (!cp->stop) {
		struct pollfd pf[2] = { { .fd = a, .events = POLLIN },
		    { .fd = b, .events = POLLIN } };
		if (poll(pf, 2, 50) <= 0)
			continue;
		if (pf[0].revents) {
			ssize_t n = recv(a, buf, sizeof(buf), 0);
			if (n <= 0 || send(b, buf, (size_t)n, MSG_NOSIGNAL) != n)
				break;
			size_t k = (size_t)n;
			if (cp->len + k > cp->cap)
				k = cp->cap - cp->len;
			memcpy(cp->buf + cp->len, buf, k);
			cp->len += k;
		}
		if (pf[1].revents) {
			ssize_t n = recv(b, buf, sizeof(buf), 0);
			if (n <= 0 || send(a, buf, (size_t)n, MSG_NOSIGNAL) != n)
				break;
		}
	}
	close(a);
	close(b);
}

static void *capture_main(void *arg)
{
	struct capture *cp = arg;

	while (!cp->stop) {
		struct pollfd pf = { .fd = cp->lfd, .events = POLLIN };
		if (poll(&pf, 1, 50) <= 0)
			continue;
		int a = accept(cp->lfd, NULL, NULL);
		if (a >= 0)
			capture_conn(cp, a);
	}
	return NULL;
}

/* Run a baseline through the capturing proxy; does the marker show? */
static bool marker_on_wire(bool tls)
{
	struct tm_pair *p = tm_pair_new();
	struct capture cp = { .cap = 32u << 20 };

	cp.buf = malloc(cp.cap);
	write_files(p, 1, 256u << 10);
	dest_start(p, MIR_COMP_NONE, tls);
	int fd = mir_tcp_listen("127.0.0.1", 0, &cp.port);
	assert_true(fd >= 0);
	cp.lfd = fd;
	cp.to = p->port;
	assert_int_equal(pthread_create(&cp.t, NULL, capture_main, &cp), 0);
	source_start(p, cp.port, MIR_COMP_NONE, tls);
	assert_int_equal(mir_source_wait(p->ms, 0, 20000), 0);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	mir_source_stop(p->ms);
	p->ms = NULL;
	cp.stop = true;
	pthread_join(cp.t, NULL);
	close(cp.lfd);
	assert_true(cp.len > (256u << 10));
	bool seen = memmem(cp.buf, cp.len, MARKER, strlen(MARKER)) != NULL;
	free(cp.buf);
	tm_check_clean(mir_dest_volume(p->md), "replica");
	tm_pair_free(p);
	return seen;
}

static void test_tls_transfer(void **state)
{
	uint64_t b_tls, c_tls, n;

	assert_true(marker_on_wire(false));
	assert_false(marker_on_wire(true));
	/* TLS and compression together. */
	transfer_with(MIR_COMP_ZSTD, true, &b_tls, &c_tls, &n);
	assert_true(c_tls > 0);
}

/* ------------------------------------------------------- refusals */

static void expect_refused(uint8_t dc, bool dtls, uint8_t sc, bool stls)
{
	struct tm_pair *p = tm_pair_new();
	struct mir_source_stats ss;
	struct mir_dest_stats ds;

	write_files(p, 1, 64u << 10);
	dest_start(p, dc, dtls);
	source_start(p, p->port, sc, stls);
	/* Both sides: the destination may count its refusal only after
	 * the source has read it. */
	for (int i = 0; i < 500; i++) {
		mir_source_stats(p->ms, &ss);
		mir_dest_stats(p->md, &ds);
		if (ss.last_error[0] != '\0' && ds.rejects >= 1)
			break;
		usleep(10000);
	}
	fprintf(stderr, "destination %s/%s, source %s/%s: source says \"%s\"; "
	    "destination says \"%s\"\n", mir_compress_name(dc),
	    dtls ? "tls" : "clear", mir_compress_name(sc),
	    stls ? "tls" : "clear", ss.last_error, ds.last_error);
	assert_non_null(strstr(ss.last_error, "link options differ"));
	assert_true(ds.rejects >= 1);
	assert_int_equal(ds.transfers, 0);
	assert_int_equal(ds.gen, 1);	/* its own mkfs root, untouched */
	assert_int_equal(ss.acked_gen, 0);
	tm_pair_free(p);
}

static void test_mismatch_refused(void **state)
{
	expect_refused(MIR_COMP_ZSTD, false, MIR_COMP_NONE, false);
	expect_refused(MIR_COMP_NONE, false, MIR_COMP_LZ4, false);
	expect_refused(MIR_COMP_NONE, true, MIR_COMP_NONE, false);
	expect_refused(MIR_COMP_NONE, false, MIR_COMP_NONE, true);
}

/* A frame of an older or newer wire version is refused at its header,
 * whatever it carries. */
static void test_other_version_refused(void **state)
{
	uint8_t f[MIR_HDR_SIZE];
	struct mir_hdr h = { .version = MIR_WIRE_VERSION,
	    .type = MIR_MSG_RS_END, .length = 8 }, got;

	(void)state;
	mir_hdr_encode(f, &h);
	assert_int_equal(mir_hdr_decode(f, &got), 0);
	for (unsigned v = 0; v < 8; v++) {
		if (v == MIR_WIRE_VERSION)
			continue;
		h.version = (uint16_t)v;
		mir_hdr_encode(f, &h);
		assert_int_not_equal(mir_hdr_decode(f, &got), 0);
	}
}

/* Send a BLOCK frame marked compressed with this payload, checksum and
 * sequence right: only its content is wrong. */
static int send_raw_compressed(struct mir_conn *c, const void *payload,
    uint32_t len)
{
	struct mir_hdr h = { .version = MIR_WIRE_VERSION,
	    .type = MIR_MSG_BLOCK, .flags = MIR_FLAG_COMPRESSED,
	    .length = len, .seq = c->seq_out };
	uint8_t *f = malloc(MIR_HDR_SIZE + len);

	mir_hdr_encode(f, &h);
	memcpy(f + MIR_HDR_SIZE, payload, len);
	mir_frame_seal(f, len);
	ssize_t n = send(c->fd, f, MIR_HDR_SIZE + len, MSG_NOSIGNAL);
	free(f);
	c->seq_out++;
	return n == (ssize_t)(MIR_HDR_SIZE + len) ? 0 : -EIO;
}

/* Our own source: handshake with zstd, BEGIN(cp) on the served root, then
 * one bad compressed BLOCK.  The destination must close the link. */
static void bad_block(struct tm_pair *p, uint64_t gen, const void *payload,
    uint32_t len)
{
	struct mir_peer_cfg pc = { .key = p->key, .key_len = sizeof(p->key),
	    .compress = MIR_COMP_ZSTD };
	struct mir_status_msg sm;
	struct mir_conn c;
	struct mir_hdr h;
	_Atomic bool stop = false;

	memcpy(pc.id, p->id, 16);
	int fd = mir_tcp_connect("127.0.0.1", p->port, 2000);
	assert_true(fd >= 0);
	assert_int_equal(mir_conn_init(&c, fd, 3000, &stop), 0);
	assert_int_equal(mir_handshake_source(&c, &pc, &sm), 0);
	assert_int_equal(sm.gen, gen);
	struct mir_begin b = { .kind = MIR_XFER_CP, .base = gen,
	    .target = gen + 1 };
	mir_begin_encode(mir_conn_payload(&c), &b);
	assert_int_equal(mir_send_buf(&c, MIR_MSG_BEGIN, 32 + MIR_BLOCK), 0);
	assert_int_equal(send_raw_compressed(&c, payload, len), 0);
	/* The destination closes the connection: end of stream. */
	int rc = mir_recv(&c, &h);
	assert_true(rc == -ECONNRESET || rc == -EPIPE);
	mir_conn_close(&c);
}

static void test_corrupt_compressed_block_refused(void **state)
{
	struct tm_pair *p = tm_pair_new();
	struct mir_dest_stats d0, d1;

	write_files(p, 1, 256u << 10);
	dest_start(p, MIR_COMP_ZSTD, false);
	source_start(p, p->port, MIR_COMP_ZSTD, false);
	assert_int_equal(mir_source_wait(p->ms, 0, 20000), 0);
	mir_source_stop(p->ms);
	p->ms = NULL;
	uint64_t gen = wafl_generation(mir_dest_volume(p->md));
	mir_dest_stats(p->md, &d0);

	/* Garbage that is not a zstd frame. */
	uint8_t junk[600];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	bad_block(p, gen, junk, sizeof(junk));
	/* A good zstd frame of the wrong size (100 bytes, not 4128). */
	uint8_t small[100], z[256];
	memset(small, 'a', sizeof(small));
	size_t zn = ZSTD_compress(z, sizeof(z), small, sizeof(small), 1);
	assert_false(ZSTD_isError(zn));
	bad_block(p, gen, z, (uint32_t)zn);
	/* A real frame of the right size, one byte of it flipped (the frame
	 * checksum is recomputed, so only zstd can tell). */
	uint8_t full[32 + MIR_BLOCK], zf[8192];
	memset(full, 0, sizeof(full));
	fill_text(full + 32, MIR_BLOCK, 9);
	size_t fn = ZSTD_compress(zf, sizeof(zf), full, sizeof(full), 1);
	assert_false(ZSTD_isError(fn));
	zf[fn / 2] ^= 0x40;
	bad_block(p, gen, zf, (uint32_t)fn);

	for (int i = 0; i < 100; i++) {
		mir_dest_stats(p->md, &d1);
		if (d1.rejects >= d0.rejects + 3)
			break;
		usleep(10000);
	}
	fprintf(stderr, "corrupt compressed BLOCKs: rejects %llu -> %llu, "
	    "served generation %llu -> %llu, last error \"%s\"\n",
	    (unsigned long long)d0.rejects, (unsigned long long)d1.rejects,
	    (unsigned long long)gen, (unsigned long long)d1.gen,
	    d1.last_error);
	assert_true(d1.rejects >= d0.rejects + 3);
	assert_int_equal(d1.gen, gen);
	assert_int_equal(d1.transfers, d0.transfers);
	assert_int_equal(d1.blocks_written, d0.blocks_written);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	tm_check_clean(mir_dest_volume(p->md), "replica");

	/* The relationship goes on. */
	source_start(p, p->port, MIR_COMP_ZSTD, false);
	write_files(p, 1, 64u << 10);
	assert_int_equal(mir_source_wait(p->ms, 0, 20000), 0);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	tm_pair_free(p);
}

struct drain {
	int fd;
	uint64_t bytes;
};

/* Read the other end until it closes. */
static void *drain_main(void *arg)
{
	struct drain *d = arg;
	static __thread uint8_t buf[65536];

	for (;;) {
		ssize_t n = read(d->fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		d->bytes += (uint64_t)n;
	}
	return NULL;
}

static double now_s(void)
{
	return (double)fl_now_mono_ns() / 1e9;
}

struct sender {
	struct mir_conn *c;
	int frames;
	int rc;
};

/* Frame i's payload: i, then a pattern of i. */
static void frame_payload(uint8_t *p, uint32_t i)
{
	fl_put_le32(p, i);
	for (uint32_t k = 4; k < 32 + MIR_BLOCK; k++)
		p[k] = (uint8_t)(i * 31 + k);
}

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	uint8_t payload[32 + MIR_BLOCK];

	for (int i = 0; i < s->frames && s->rc == 0; i++) {
		frame_payload(payload, (uint32_t)i);
		s->rc = mir_send(s->c, MIR_MSG_BEGIN, payload, sizeof(payload));
	}
	return NULL;
}

struct receiver {
	struct mir_conn *c;
	int frames, got;
	int rc;
};

/* Receive frames, each checked to be the next one sender_main sent. */
static void *receiver_main(void *arg)
{
	struct receiver *r = arg;
	uint8_t want[32 + MIR_BLOCK];
	struct mir_hdr h;

	while (r->got < r->frames && r->rc == 0) {
		r->rc = mir_recv(r->c, &h);
		if (r->rc != 0)
			break;
		frame_payload(want, (uint32_t)r->got);
		if (h.type != MIR_MSG_BEGIN || h.length != sizeof(want) ||
		    memcmp(mir_conn_payload(r->c), want, sizeof(want)) != 0) {
			r->rc = -EBADMSG;
			break;
		}
		r->got++;
	}
	return NULL;
}

/*
 * mir_conn_throttle: 400 frames of 4,160 bytes (1.6 MiB) at 1 MiB/s take
 * at least what the rate allows less the bucket's quarter second, and
 * every byte arrives; at the floor rate (64 KiB/s) a send of 1.6 MiB,
 * which would take 25 s, ends with -ECANCELED soon after the stop flag
 * is raised.
 */
static void test_throttle_paces(void **state)
{
	int sv[2];
	struct mir_conn c;
	_Atomic bool stop = false;
	struct drain d = { 0 };
	struct sender s = { .c = &c, .frames = 400 };
	pthread_t dt, st;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(mir_conn_init(&c, sv[0], 5000, &stop), 0);
	mir_conn_throttle(&c, 1u << 20);
	d.fd = sv[1];
	assert_int_equal(pthread_create(&dt, NULL, drain_main, &d), 0);
	double t0 = now_s();
	sender_main(&s);
	double el = now_s() - t0;
	assert_int_equal(s.rc, 0);
	mir_conn_close(&c);		/* closes sv[0]: the drain ends */
	pthread_join(dt, NULL);
	close(sv[1]);
	uint64_t sent = 400ull * (MIR_HDR_SIZE + 32 + MIR_BLOCK);
	fprintf(stderr, "%llu bytes at 1 MiB/s in %.2f s\n",
	    (unsigned long long)d.bytes, el);
	assert_int_equal(d.bytes, sent);
	if (el < (double)sent / (1u << 20) - 0.25 - 0.05)
		fail_msg("%.2f s for %llu bytes: faster than 1 MiB/s", el,
		    (unsigned long long)sent);

	/* The floor rate, stopped mid-send. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(mir_conn_init(&c, sv[0], 5000, &stop), 0);
	mir_conn_throttle(&c, MIR_THROTTLE_MIN);
	d = (struct drain){ .fd = sv[1] };
	s = (struct sender){ .c = &c, .frames = 400 };
	assert_int_equal(pthread_create(&dt, NULL, drain_main, &d), 0);
	assert_int_equal(pthread_create(&st, NULL, sender_main, &s), 0);
	usleep(300000);
	t0 = now_s();
	stop = true;
	pthread_join(st, NULL);
	el = now_s() - t0;
	assert_int_equal(s.rc, -ECANCELED);
	if (el > 5.0)
		fail_msg("the paced send took %.1f s to see the stop", el);
	mir_conn_close(&c);
	pthread_join(dt, NULL);
	close(sv[1]);
}

/*
 * mir_conn_throttle_recv: 400 frames of 4,160 bytes (1.6 MiB) sent as
 * fast as the socket takes them, read at 1 MiB/s: the reader takes at
 * least what the rate allows less the bucket's quarter second, and gets
 * every frame, in order and intact; at the floor rate (64 KiB/s) a read
 * of them, which would take 25 s, ends with -ECANCELED soon after the
 * stop flag is raised.
 */
static void test_throttle_recv_paces(void **state)
{
	int sv[2];
	struct mir_conn rd, wr;
	_Atomic bool stop = false;
	struct sender s = { .c = &wr, .frames = 400 };
	struct receiver r = { .c = &rd, .frames = 400 };
	pthread_t st, rt;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(mir_conn_init(&rd, sv[0], 5000, &stop), 0);
	assert_int_equal(mir_conn_init(&wr, sv[1], 5000, &stop), 0);
	mir_conn_throttle_recv(&rd, 1u << 20);
	assert_int_equal(pthread_create(&st, NULL, sender_main, &s), 0);
	double t0 = now_s();
	receiver_main(&r);
	double el = now_s() - t0;
	pthread_join(st, NULL);
	assert_int_equal(s.rc, 0);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.got, 400);
	uint64_t sent = 400ull * (MIR_HDR_SIZE + 32 + MIR_BLOCK);
	assert_int_equal(rd.bytes_in, sent);
	fprintf(stderr, "%llu bytes read at 1 MiB/s in %.2f s\n",
	    (unsigned long long)rd.bytes_in, el);
	if (el < (double)sent / (1u << 20) - 0.25 - 0.05)
		fail_msg("%.2f s for %llu bytes: read faster than 1 MiB/s", el,
		    (unsigned long long)sent);
	mir_conn_close(&rd);
	mir_conn_close(&wr);

	/* The floor rate, stopped mid-read; the sender, blocked on the full
	 * socket, sees the stop too. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(mir_conn_init(&rd, sv[0], 5000, &stop), 0);
	assert_int_equal(mir_conn_init(&wr, sv[1], 5000, &stop), 0);
	mir_conn_throttle_recv(&rd, MIR_THROTTLE_MIN);
	s = (struct sender){ .c = &wr, .frames = 400 };
	r = (struct receiver){ .c = &rd, .frames = 400 };
	assert_int_equal(pthread_create(&st, NULL, sender_main, &s), 0);
	assert_int_equal(pthread_create(&rt, NULL, receiver_main, &r), 0);
	usleep(1200000);		/* a piece read after 1 s */
	t0 = now_s();
	stop = true;
	pthread_join(rt, NULL);
	el = now_s() - t0;
	pthread_join(st, NULL);
	assert_int_equal(r.rc, -ECANCELED);
	assert_int_equal(s.rc, -ECANCELED);
	assert_true(r.got >= 10 && r.got < 400);
	fprintf(stderr, "floor rate: %d frames read, the stop seen after "
	    "%.3f s\n", r.got, el);
	if (el > 1.0)
		fail_msg("the paced read took %.1f s to see the stop", el);
	mir_conn_close(&rd);
	mir_conn_close(&wr);
}

/* A loopback TCP connection: the sender's end (its send buffer fixed
 * at sndbuf, which the kernel doubles) and the reader's, both with a
 * timeout of timeout_ms; the reader reads at the floor rate. */
static void tcp_pair(struct mir_conn *wr, struct mir_conn *rd, int sndbuf,
    uint32_t timeout_ms, const _Atomic bool *stop)
{
	uint16_t port = 0;
	int lfd = mir_tcp_listen("127.0.0.1", 0, &port);
	assert_true(lfd >= 0);
	int sfd = mir_tcp_connect("127.0.0.1", port, 2000);
	assert_true(sfd >= 0);
	int rfd = accept(lfd, NULL, NULL);
	assert_true(rfd >= 0);
	close(lfd);
	assert_int_equal(setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
	    sizeof(sndbuf)), 0);
	assert_int_equal(mir_conn_init(wr, sfd, timeout_ms, stop), 0);
	assert_int_equal(mir_conn_init(rd, rfd, timeout_ms, stop), 0);
	mir_conn_throttle_recv(rd, MIR_THROTTLE_MIN);
}

/* Read r->frames frames (checked), then answer with an ACK. */
static void *answer_main(void *arg)
{
	struct receiver *r = arg;
	uint8_t ack[8] = { 0 };

	receiver_main(r);
	if (r->rc == 0)
		r->rc = mir_send(r->c, MIR_MSG_ACK, ack, sizeof(ack));
	return NULL;
}

/*
 * At the floor rate over TCP, where the kernel's buffers hold far more
 * than a timeout's worth of bytes at 64 KiB/s (on loopback it grows the
 * send buffer to 4 MiB), and the reader opens the window a piece or two
 * at a time (loopback's MSS is 64 KiB): waits count their 3 s timeout
 * from the last progress, the sender's output queue shrinking.
 *   - A sender writing without end stays blocked on its full socket
 *     longer than its timeout: POLLOUT needs a third of the send buffer
 *     (fixed at 1 MiB here) drained, 5 s at the rate.  It is still
 *     sending when the stop comes at 4.5 s, and the reader got every
 *     frame intact, no faster than the rate.
 *   - A sender whose 320 KiB of frames all fit in the buffers waits for
 *     the answer to them, which comes once the reader has read them, 5 s
 *     at the rate (as T waits for RS_DONE in a resync W paces).
 */
static void test_throttle_recv_floor_tcp(void **state)
{
	struct mir_conn rd, wr;
	_Atomic bool stop = false;
	pthread_t st, rt;

	(void)state;
	tcp_pair(&wr, &rd, 512 << 10, 3000, &stop);
	struct sender s = { .c = &wr, .frames = 1000000 };
	struct receiver r = { .c = &rd, .frames = 1000000 };
	assert_int_equal(pthread_create(&st, NULL, sender_main, &s), 0);
	double t0 = now_s();
	assert_int_equal(pthread_create(&rt, NULL, receiver_main, &r), 0);
	usleep(4500000);
	double el = now_s() - t0;
	stop = true;
	pthread_join(st, NULL);
	pthread_join(rt, NULL);
	fprintf(stderr, "floor rate over TCP: %llu bytes sent, %llu read "
	    "(%d frames) in %.2f s; sender %s, reader %s\n",
	    (unsigned long long)wr.bytes_out,
	    (unsigned long long)rd.bytes_in, r.got, el, fl_strerror(s.rc),
	    fl_strerror(r.rc));
	assert_int_equal(s.rc, -ECANCELED);	/* not -ETIMEDOUT */
	assert_int_equal(r.rc, -ECANCELED);
	/* The sender was held back: more sent than read by over the
	 * third of its buffer POLLOUT waits for. */
	assert_true(wr.bytes_out > rd.bytes_in + (1u << 20) / 3);
	assert_true(r.got >= 30);
	assert_true((double)rd.bytes_in <=
	    (double)MIR_THROTTLE_MIN * (el + 0.2));
	mir_conn_close(&rd);
	mir_conn_close(&wr);

	/* The answer after the bytes in flight. */
	stop = false;
	tcp_pair(&wr, &rd, 512 << 10, 3000, &stop);
	int frames = (320 << 10) / (MIR_HDR_SIZE + 32 + MIR_BLOCK);
	s = (struct sender){ .c = &wr, .frames = frames };
	r = (struct receiver){ .c = &rd, .frames = frames };
	t0 = now_s();
	assert_int_equal(pthread_create(&rt, NULL, answer_main, &r), 0);
	sender_main(&s);
	double sent_s = now_s() - t0;
	struct mir_hdr h;
	int arc = s.rc == 0 ? mir_recv_type(&wr, MIR_MSG_ACK, &h) : s.rc;
	el = now_s() - t0;
	pthread_join(rt, NULL);
	fprintf(stderr, "floor rate over TCP: %d frames sent in %.2f s, "
	    "answered after %.2f s: %s\n", frames, sent_s, el,
	    fl_strerror(arc));
	assert_int_equal(s.rc, 0);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.got, frames);
	assert_int_equal(arc, 0);		/* not -ETIMEDOUT */
	assert_true(el - sent_s > 3.0);	/* longer than the timeout */
	mir_conn_close(&rd);
	mir_conn_close(&wr);
}


/* ------------------------------------------- a hand-made destination */

/* A destination played by the test: it listens, takes the source's
 * handshake with the relationship's key and says what STATUS it likes. */
struct fake_dest {
	struct tm_pair *p;
	int lfd;
	uint16_t port;
	struct mir_conn c;
	_Atomic bool stop;
};

static int fake_key(void *arg, const uint8_t id[MIR_ID_SIZE],
    const uint8_t **key, size_t *key_len)
{
	struct fake_dest *f = arg;

	if (memcmp(id, f->p->id, MIR_ID_SIZE) != 0)
		return -ENOENT;
	*key = f->p->key;
	*key_len = sizeof(f->p->key);
	return 0;
}

static void fake_listen(struct fake_dest *f, struct tm_pair *p)
{
	memset(f, 0, sizeof(*f));
	f->p = p;
	f->lfd = mir_tcp_listen("127.0.0.1", 0, &f->port);
	assert_true(f->lfd >= 0);
}

/* Accept the source's next connection, run the handshake and send
 * STATUS: serving generation gen of the source's file system. */
static void fake_accept(struct fake_dest *f, uint64_t gen)
{
	struct pollfd pfd = { .fd = f->lfd, .events = POLLIN };
	struct mir_link_opts lo = { 0 };
	uint8_t id[MIR_ID_SIZE], fsi[WAFL_BLOCK_SIZE];
	struct wafl_fsinfo fi;

	assert_int_equal(poll(&pfd, 1, 10000), 1);
	int fd = accept(f->lfd, NULL, NULL);
	assert_true(fd >= 0);
	assert_int_equal(mir_conn_init(&f->c, fd, 3000, &f->stop), 0);
	assert_int_equal(mir_handshake_dest(&f->c, fake_key, f, &lo, id), 0);
	assert_int_equal(wafl_root_of(f->p->src->v, gen, fsi), 0);
	assert_int_equal(wafl_fsinfo_decode(fsi, &fi), 0);
	struct mir_status_msg sm = { .has_fs = true, .gen = gen,
	    .nvbns = fi.nvbns };
	memcpy(sm.fs_uuid, fi.fs_uuid, 16);
	uint8_t sp[MIR_STATUS_SIZE];
	mir_status_encode(sp, &sm);
	assert_int_equal(mir_send(&f->c, MIR_MSG_STATUS, sp, sizeof(sp)), 0);
}

/* Take frames until a ROOT; its generation. */
static uint64_t fake_until_root(struct fake_dest *f)
{
	struct mir_hdr h;

	for (;;) {
		assert_int_equal(mir_recv(&f->c, &h), 0);
		if (h.type == MIR_MSG_ROOT)
			return fl_get_le64(mir_conn_payload(&f->c));
	}
}

static void fake_ack(struct fake_dest *f, uint64_t gen)
{
	uint8_t a[8];

	mir_u64_encode(a, gen);
	assert_int_equal(mir_send(&f->c, MIR_MSG_ACK, a, sizeof(a)), 0);
}

/* The source closed the link within the connection's timeout (frames
 * it had sent before are taken first). */
static bool fake_closed(struct fake_dest *f)
{
	struct mir_hdr h;
	int rc;

	while ((rc = mir_recv(&f->c, &h)) == 0)
		;
	return rc == -ECONNRESET || rc == -EPIPE;
}

static bool held_here(wafl_vol_t *v, uint64_t gen)
{
	uint64_t gens[WAFL_FSI_HOLDS];
	size_t n = 0;
	bool found = false;

	assert_int_equal(wafl_held_roots(v, gens, WAFL_FSI_HOLDS, &n), 0);
	for (size_t i = 0; i < n && i < WAFL_FSI_HOLDS; i++)
		found |= gens[i] == gen;
	return found;
}

static void source_to(struct tm_pair *p, uint16_t port,
    uint64_t fallback_blocks)
{
	struct mir_source_opts o = { .key = p->key, .key_len = sizeof(p->key),
	    .host = "127.0.0.1", .port = port, .mode = MIR_SYNC,
	    .raid = p->src->raid, .allow_baseline = true, .retry_ms = 20,
	    .io_timeout_ms = 5000, .fallback_blocks = fallback_blocks };

	memcpy(o.rel_id, p->id, 16);
	assert_int_equal(mir_source_start(p->src->v, &o, &p->ms), 0);
}

/* One more CP on the source, with a block of new data. */
static void source_cp(struct tm_pair *p, unsigned seed)
{
	uint8_t buf[4096];
	struct wafl_obj f = tm_file(p->src->v, "cp-file");

	fill_text(buf, sizeof(buf), seed);
	tm_write(p->src->v, &f, (uint64_t)(seed % 64) * sizeof(buf), buf,
	    sizeof(buf));
	assert_int_equal(wafl_sync(p->src->v), 0);
}

/*
 * A destination that acknowledges a generation the source never sent: a
 * walk from d to d + 3 sends root d + 3 only, and the destination answers
 * ACK(d + 1).  The source must refuse it (it would release the hold on d,
 * which the destination may still serve, M1) and close the link; d stays
 * held, and an honest acknowledgement on the next connection is taken.
 */
static void test_ack_of_unsent_generation_refused(void **state)
{
	struct tm_pair *p = tm_pair_new();
	struct fake_dest f;
	struct mir_source_stats ss;

	(void)state;
	write_files(p, 1, 64u << 10);
	uint64_t d = wafl_generation(p->src->v);
	for (unsigned i = 0; i < 3; i++)
		source_cp(p, i);
	assert_int_equal(wafl_generation(p->src->v), d + 3);
	fake_listen(&f, p);
	source_to(p, f.port, 0);

	fake_accept(&f, d);
	assert_int_equal(fake_until_root(&f), d + 3);
	fake_ack(&f, d + 1);
	assert_true(fake_closed(&f));
	mir_conn_close(&f.c);
	mir_source_stats(p->ms, &ss);
	fprintf(stderr, "ACK of unsent generation %llu: acked %llu, "
	    "last error \"%s\"\n", (unsigned long long)(d + 1),
	    (unsigned long long)ss.acked_gen, ss.last_error);
	assert_int_equal(ss.acked_gen, d);
	assert_true(held_here(p->src->v, d));

	/* The next connection: the destination still serves d; the honest
	 * ACK of the root sent is taken. */
	fake_accept(&f, d);
	assert_int_equal(fake_until_root(&f), d + 3);
	fake_ack(&f, d + 3);
	assert_int_equal(mir_source_wait(p->ms, d + 3, 5000), 0);
	assert_false(held_here(p->src->v, d));
	mir_source_stop(p->ms);
	p->ms = NULL;
	mir_conn_close(&f.c);
	close(f.lfd);
	tm_pair_free(p);
}

/*
 * A destination that takes every frame and never acknowledges: the
 * source's roots stay held and the blocks later CPs free wait behind
 * them.  Once they pass the fallback bound the source must give the
 * connection up, so that the fallback turns the held roots into
 * mirror.base snapshots and releases them (DESIGN.md §4), instead of
 * waiting for an acknowledgement forever while the pending list grows.
 */
static void test_silent_destination_falls_back(void **state)
{
	struct tm_pair *p = tm_pair_new();
	struct fake_dest f;
	struct mir_source_stats ss;

	(void)state;
	write_files(p, 1, 256u << 10);
	uint64_t d = wafl_generation(p->src->v);
	fake_listen(&f, p);
	source_to(p, f.port, 64);
	fake_accept(&f, d);
	/* Frames are read (so the source's sends never block) and never
	 * answered; each CP rewrites the file, freeing its old blocks. */
	struct wafl_obj fo = tm_file(p->src->v, "text-0");
	uint8_t *buf = malloc(256u << 10);
	bool fell_back = false;
	for (unsigned i = 0; i < 40 && !fell_back; i++) {
		fill_text(buf, 256u << 10, 1000u + i);
		for (uint32_t off = 0; off < (256u << 10);
		    off += WAFL_WRITE_MAX)
			tm_write(p->src->v, &fo, off, buf + off,
			    (256u << 10) - off < WAFL_WRITE_MAX ?
			    (256u << 10) - off : WAFL_WRITE_MAX);
		assert_int_equal(wafl_sync(p->src->v), 0);
		struct mir_hdr h;
		while (mir_readable(&f.c, 50) > 0 &&
		    mir_recv(&f.c, &h) == 0)
			;
		mir_source_stats(p->ms, &ss);
		fell_back = ss.fallbacks > 0;
	}
	free(buf);
	for (int i = 0; i < 200 && !fell_back; i++) {
		usleep(20000);
		mir_source_stats(p->ms, &ss);
		fell_back = ss.fallbacks > 0;
	}
	fprintf(stderr, "silent destination: generation %llu, %llu pending, "
	    "fallbacks %llu, base %llu, link losses %llu, last error "
	    "\"%s\"\n", (unsigned long long)wafl_generation(p->src->v),
	    (unsigned long long)wafl_pending_blocks_unpinned(p->src->v),
	    (unsigned long long)ss.fallbacks,
	    (unsigned long long)ss.base_snap_gen,
	    (unsigned long long)ss.link_losses, ss.last_error);
	assert_true(fell_back);
	assert_int_equal(ss.base_snap_gen, d);
	assert_false(held_here(p->src->v, d));
	mir_source_stop(p->ms);
	p->ms = NULL;
	mir_conn_close(&f.c);
	close(f.lfd);
	tm_pair_free(p);
}

/* Send len bytes one at a time, one every 250 ms, until they are sent or
 * the peer closed the connection; the seconds it took. */
static double trickle(int fd, const uint8_t *p, size_t len, double give_up_s)
{
	double t0 = now_s();

	for (size_t i = 0; i < len && now_s() - t0 < give_up_s; i++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 250) > 0) {
			uint8_t b[256];
			ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN))
				return now_s() - t0;	/* closed */
		}
		if (send(fd, p + i, 1, MSG_NOSIGNAL) != 1)
			return now_s() - t0;
	}
	/* Everything sent: closed now, or still open at give_up_s. */
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint8_t b[256];
		if (now_s() - t0 >= give_up_s)
			return give_up_s;
		if (poll(&pfd, 1, 100) > 0) {
			ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN))
				return now_s() - t0;
		}
	}
}

/* A frame of this type and payload, sealed with sequence seq. */
static size_t make_frame(uint8_t *f, uint16_t type, const void *payload,
    uint32_t len, uint64_t seq)
{
	struct mir_hdr h = { .version = MIR_WIRE_VERSION, .type = type,
	    .length = len, .seq = seq };

	mir_hdr_encode(f, &h);
	memcpy(f + MIR_HDR_SIZE, payload, len);
	mir_frame_seal(f, len);
	return MIR_HDR_SIZE + len;
}

/*
 * A peer that sends a byte now and then: every wait of the destination
 * sees progress, so a per-wait timeout alone let it hold the destination
 * (which serves one connection at a time) for as long as it liked, during
 * the handshake before any key was proven, and inside any frame after.
 * With a timeout of 1 s the handshake must be over within 2 s and a
 * frame, once begun, within 1 s; then a real source is served.
 */
static void test_trickling_peer_cut(void **state)
{
	struct tm_pair *p = tm_pair_new();
	struct mir_dest_opts o = { .key = p->key, .key_len = sizeof(p->key),
	    .allow_baseline = true, .io_timeout_ms = 1000 };
	uint8_t f[MIR_HDR_SIZE + 32 + MIR_BLOCK];

	(void)state;
	write_files(p, 1, 64u << 10);
	memcpy(o.rel_id, p->id, 16);
	assert_int_equal(mir_dest_start(p->dst->raid, &o, &p->md), 0);
	p->port = mir_dest_port(p->md);

	/* The handshake: HELLO whole, then RESPONSE a byte at a time. */
	struct mir_hello hello = { .vmin = MIR_WIRE_VERSION,
	    .vmax = MIR_WIRE_VERSION, .side = MIR_SIDE_SOURCE };
	uint8_t pl[64];
	memcpy(hello.id, p->id, 16);
	mir_hello_encode(pl, &hello);
	int fd = mir_tcp_connect("127.0.0.1", p->port, 2000);
	assert_true(fd >= 0);
	size_t n = make_frame(f, MIR_MSG_HELLO, pl, 32, 0);
	assert_int_equal(send(fd, f, n, MSG_NOSIGNAL), (ssize_t)n);
	memset(pl, 0x5a, sizeof(pl));
	n = make_frame(f, MIR_MSG_RESPONSE, pl, 64, 1);
	double hs = trickle(fd, f, n, 8);
	close(fd);

	/* An authenticated source that trickles its first frame. */
	struct mir_peer_cfg pc = { .key = p->key, .key_len = sizeof(p->key) };
	struct mir_status_msg sm;
	struct mir_conn c;
	memcpy(pc.id, p->id, 16);
	fd = mir_tcp_connect("127.0.0.1", p->port, 2000);
	assert_true(fd >= 0);
	assert_int_equal(mir_conn_init(&c, fd, 3000, NULL), 0);
	assert_int_equal(mir_handshake_source(&c, &pc, &sm), 0);
	struct mir_begin b = { .kind = MIR_XFER_WALK, .base = 0, .target = 1 };
	mir_begin_encode(c.buf + MIR_HDR_SIZE, &b);
	n = make_frame(f, MIR_MSG_BEGIN, c.buf + MIR_HDR_SIZE, 32 + MIR_BLOCK,
	    c.seq_out);
	double fr = trickle(fd, f, n, 8);
	mir_conn_close(&c);
	fprintf(stderr, "trickling peer: cut after %.2f s in the handshake, "
	    "%.2f s into a frame (timeout 1 s)\n", hs, fr);
	assert_true(hs < 4);
	assert_true(fr < 3);

	/* Nothing was held up: a real source is served. */
	source_start(p, p->port, MIR_COMP_NONE, false);
	assert_int_equal(mir_source_wait(p->ms, 0, 20000), 0);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	tm_pair_free(p);
}

/*
 * A destination volume with a smaller VBN space than the source's file
 * system refuses every root; the source says so in last_error (it used
 * to retry without saying why), and nothing is written there.  It tells
 * the destination why in an ERROR before it closes the link, and the
 * destination's last_error says so (it used to say nothing), without
 * counting the source's refusal as one of its own.
 */
static void test_small_destination_named(void **state)
{
	struct tm_pair *p = tm_pair_new();
	struct mir_source_stats ss;
	struct mir_dest_stats ds;

	(void)state;
	tl_fs_destroy(p->dst);
	p->dst = tl_fs_create(2, 1, 8192, false);
	assert_int_equal(wafl_unmount(p->dst->v), 0);
	p->dst->v = NULL;
	write_files(p, 1, 64u << 10);
	dest_start(p, MIR_COMP_NONE, false);
	source_start(p, p->port, MIR_COMP_NONE, false);
	for (int i = 0; i < 200; i++) {
		mir_source_stats(p->ms, &ss);
		mir_dest_stats(p->md, &ds);
		if (strstr(ss.last_error, "fewer") != NULL &&
		    strstr(ds.last_error, "fewer") != NULL)
			break;
		usleep(10000);
	}
	fprintf(stderr, "small destination: source says \"%s\"; destination "
	    "says \"%s\", wrote %llu blocks\n", ss.last_error,
	    ds.last_error, (unsigned long long)ds.blocks_written);
	assert_non_null(strstr(ss.last_error, "fewer than this file "
	    "system's"));
	assert_non_null(strstr(ds.last_error, "the source refused"));
	assert_non_null(strstr(ds.last_error, "fewer than the source's "
	    "file system's"));
	assert_int_equal(ds.rejects, 0);
	assert_int_equal(ss.sessions, 0);
	assert_int_equal(ds.blocks_written, 0);
	tm_pair_free(p);
}

/* Warnings of the mirror logged while a test counts them. */
static _Atomic unsigned mirror_warnings;

static void count_warnings(void *arg, enum fl_log_level level,
    const char *subsys, const char *msg)
{
	(void)arg;
	(void)msg;
	if (level <= FL_LOG_WARN && strcmp(subsys, "mirror") == 0)
		mirror_warnings++;
}

/*
 * A destination too small for the source: every session is refused, and
 * stays refused until an administrator acts.  The source backs off
 * instead of trying every retry interval, and logs the repeated refusal
 * once; an administrator's retry is tried at once.  Before: with a retry
 * of 20 ms, 140 attempts and 280 warnings in 3 s.
 */
static void test_refusals_back_off(void **state)
{
	struct tm_pair *p = tm_pair_new();
	struct mir_source_stats ss;
	struct mir_dest_stats ds;

	(void)state;
	tl_fs_destroy(p->dst);
	p->dst = tl_fs_create(2, 1, 8192, false);
	assert_int_equal(wafl_unmount(p->dst->v), 0);
	p->dst->v = NULL;
	write_files(p, 1, 64u << 10);
	dest_start(p, MIR_COMP_NONE, false);
	mirror_warnings = 0;
	fl_log_set_hook(count_warnings, NULL, FL_LOG_WARN);
	source_start(p, p->port, MIR_COMP_NONE, false);
	usleep(3000000);
	unsigned warnings = mirror_warnings;
	mir_source_stats(p->ms, &ss);
	mir_dest_stats(p->md, &ds);
	fprintf(stderr, "refused for 3 s (retry 20 ms): %llu connects, %llu "
	    "refusals, next in %u ms, %u warnings; destination: %s\n",
	    (unsigned long long)ss.connects, (unsigned long long)ss.refusals,
	    ss.retry_delay_ms, warnings, ds.last_error);
	assert_non_null(strstr(ss.last_error, "fewer than this file "
	    "system's"));
	assert_non_null(strstr(ds.last_error, "the source refused"));
	assert_int_equal(ss.sessions, 0);
	/* 20, 40, ... 1280 ms: 7 or 8 attempts in 3 s. */
	assert_true(ss.refusals >= 4 && ss.refusals <= 10);
	assert_true(ss.connects == ss.refusals ||
	    ss.connects == ss.refusals + 1);
	assert_true(ss.retry_delay_ms >= 640);
	/* One line on each side (the source's refusal, the destination's
	 * record of it); a repeat is logged at most once a minute. */
	assert_true(warnings <= 3);
	/* An administrator's retry does not wait out the back-off. */
	uint64_t before = ss.connects;
	uint64_t t0 = fl_now_mono_ns();
	mir_source_retry(p->ms);
	do {
		usleep(10000);
		mir_source_stats(p->ms, &ss);
	} while (ss.connects == before &&
	    fl_now_mono_ns() - t0 < 5000000000ull);
	fprintf(stderr, "retry: connected again after %llu ms\n",
	    (unsigned long long)((fl_now_mono_ns() - t0) / 1000000ull));
	assert_true(ss.connects > before);
	assert_true(fl_now_mono_ns() - t0 < 400000000ull);
	fl_log_set_hook(NULL, NULL, FL_LOG_ERR);
	tm_pair_free(p);
}

/*
 * A source that vanishes without a FIN or a RST (its host lost power) is
 * played by an authenticated connection left open and silent, once idle
 * and once inside a CP transfer.  The destination serves one connection
 * at a time: it must give the silent one up once the restarted source's
 * connection waits, and serve that (before, it waited on the dead one
 * forever).
 */
static void test_vanished_source_given_up(void **state)
{
	struct tm_pair *p = tm_pair_new();
	struct mir_dest_opts o = { .key = p->key, .key_len = sizeof(p->key),
	    .allow_baseline = true, .io_timeout_ms = 1000 };
	struct mir_peer_cfg pc = { .key = p->key, .key_len = sizeof(p->key) };
	struct mir_status_msg sm;
	struct mir_conn c;

	(void)state;
	write_files(p, 1, 64u << 10);
	memcpy(o.rel_id, p->id, 16);
	memcpy(pc.id, p->id, 16);
	assert_int_equal(mir_dest_start(p->dst->raid, &o, &p->md), 0);
	p->port = mir_dest_port(p->md);
	for (int round = 0; round < 2; round++) {
		int fd = mir_tcp_connect("127.0.0.1", p->port, 2000);
		assert_true(fd >= 0);
		assert_int_equal(mir_conn_init(&c, fd, 3000, NULL), 0);
		assert_int_equal(mir_handshake_source(&c, &pc, &sm), 0);
		if (round == 1) {
			struct mir_begin b = { .kind = MIR_XFER_CP,
			    .base = sm.gen, .target = sm.gen + 1 };
			mir_begin_encode(mir_conn_payload(&c), &b);
			assert_int_equal(mir_send_buf(&c, MIR_MSG_BEGIN,
			    32 + MIR_BLOCK), 0);
			assert_int_equal(mir_readable(&c, 0), 0);
		}
		/* Silent from here on, and still open. */
		double t0 = now_s();
		source_start(p, p->port, MIR_COMP_NONE, false);
		write_files(p, 1, 16u << 10);
		assert_int_equal(mir_source_wait(p->ms, 0, 15000), 0);
		fprintf(stderr, "vanished source (%s): the next one served "
		    "after %.2f s\n", round == 0 ? "idle" : "in a transfer",
		    now_s() - t0);
		tm_tree_equal(p->src->v, mir_dest_volume(p->md));
		struct mir_dest_stats ds;
		mir_dest_stats(p->md, &ds);
		assert_int_equal(ds.silent_given_up, (uint64_t)round + 1);
		mir_source_stop(p->ms);
		p->ms = NULL;
		mir_conn_close(&c);
	}
	tm_check_clean(mir_dest_volume(p->md), "replica");
	tm_pair_free(p);
}

/*
 * A live source idle on its link, and connections that name its
 * relationship in a plausible first frame while it idles: a HELLO and
 * nothing after it (a port scan that knows the id, a peer stuck before
 * its RESPONSE) and a HELLO with a RESPONSE made without the key.  None
 * of them proves anything, so none may cost the live source its link:
 * before the source's heartbeats, the destination gave up the source
 * after its timeout (1 s here) as soon as one of them waited, the source
 * reconnected and queued behind them.  The source must keep its one
 * connection and session all along, and its next CP goes on it.
 */
static void test_idle_source_kept(void **state)
{
	struct tm_pair *p = tm_pair_new();
	struct mir_dest_opts o = { .key = p->key, .key_len = sizeof(p->key),
	    .allow_baseline = true, .io_timeout_ms = 1000 };
	struct mir_source_opts so = { .key = p->key,
	    .key_len = sizeof(p->key), .host = "127.0.0.1", .mode = MIR_SYNC,
	    .raid = p->src->raid, .allow_baseline = true, .retry_ms = 20,
	    .io_timeout_ms = 1000 };
	struct mir_source_stats s0, s1;
	struct mir_dest_stats d1;
	uint8_t f[MIR_HDR_SIZE + 64], pl[64];
	int fds[3];

	(void)state;
	write_files(p, 1, 64u << 10);
	memcpy(o.rel_id, p->id, 16);
	assert_int_equal(mir_dest_start(p->dst->raid, &o, &p->md), 0);
	p->port = mir_dest_port(p->md);
	memcpy(so.rel_id, p->id, 16);
	so.port = p->port;
	assert_int_equal(mir_source_start(p->src->v, &so, &p->ms), 0);
	assert_int_equal(mir_source_wait(p->ms, 0, 20000), 0);
	for (int i = 0; i < 200; i++) {
		mir_source_stats(p->ms, &s0);
		if (s0.state == MIR_IN_SYNC)
			break;
		usleep(10000);
	}
	assert_int_equal(s0.state, MIR_IN_SYNC);

	struct mir_hello hello = { .vmin = MIR_WIRE_VERSION,
	    .vmax = MIR_WIRE_VERSION, .side = MIR_SIDE_SOURCE };
	memcpy(hello.id, p->id, 16);
	for (int k = 0; k < 3; k++) {
		fds[k] = mir_tcp_connect("127.0.0.1", p->port, 2000);
		assert_true(fds[k] >= 0);
		mir_hello_encode(pl, &hello);
		size_t n = make_frame(f, MIR_MSG_HELLO, pl, 32, 0);
		assert_int_equal(send(fds[k], f, n, MSG_NOSIGNAL), (ssize_t)n);
		if (k == 2) {
			/* A RESPONSE whose MAC no holder of the key made. */
			memset(pl, 0x5a, sizeof(pl));
			n = make_frame(f, MIR_MSG_RESPONSE, pl, 64, 1);
			assert_int_equal(send(fds[k], f, n, MSG_NOSIGNAL),
			    (ssize_t)n);
		}
	}
	/* Three and a half timeouts with them waiting. */
	usleep(3500000);
	mir_source_stats(p->ms, &s1);
	mir_dest_stats(p->md, &d1);
	fprintf(stderr, "idle source with 3 connections waiting for %.1f s: "
	    "connects %llu -> %llu, sessions %llu -> %llu, link losses %llu "
	    "-> %llu, destination auth failures %llu, sources given up "
	    "%llu\n", 3.5,
	    (unsigned long long)s0.connects, (unsigned long long)s1.connects,
	    (unsigned long long)s0.sessions, (unsigned long long)s1.sessions,
	    (unsigned long long)s0.link_losses,
	    (unsigned long long)s1.link_losses,
	    (unsigned long long)d1.auth_failures,
	    (unsigned long long)d1.silent_given_up);
	assert_int_equal(s1.connects, s0.connects);
	assert_int_equal(s1.sessions, s0.sessions);
	assert_int_equal(s1.link_losses, s0.link_losses);
	assert_int_equal(d1.auth_failures, 0);
	assert_int_equal(d1.silent_given_up, 0);
	/* The link is the same one, and it works. */
	write_files(p, 1, 16u << 10);
	assert_int_equal(mir_source_wait(p->ms, 0, 5000), 0);
	mir_source_stats(p->ms, &s1);
	assert_int_equal(s1.connects, s0.connects);
	assert_int_equal(s1.link_losses, s0.link_losses);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	for (int k = 0; k < 3; k++)
		close(fds[k]);
	mir_source_stop(p->ms);
	p->ms = NULL;
	tm_pair_free(p);
}

/*
 * HEARTBEAT: its interval is a quarter of the io timeout, within its
 * bounds; its payload decodes only with the interval within them and the
 * padding zero; and an authenticated source whose HEARTBEAT is out of
 * bounds has its connection closed, like any malformed frame.
 */
static void test_heartbeat_checked(void **state)
{
	uint8_t hb[MIR_HEARTBEAT_SIZE];
	uint32_t ms;

	(void)state;
	assert_int_equal(mir_heartbeat_ms(10000), 2500);
	assert_int_equal(mir_heartbeat_ms(1000), 250);
	assert_int_equal(mir_heartbeat_ms(0), MIR_HEARTBEAT_MIN_MS);
	assert_int_equal(mir_heartbeat_ms(3600000), MIR_HEARTBEAT_MAX_MS);
	mir_heartbeat_encode(hb, 250);
	assert_int_equal(mir_heartbeat_decode(hb, sizeof(hb), &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_not_equal(mir_heartbeat_decode(hb, 4, &ms), 0);
	hb[6] = 1;
	assert_int_not_equal(mir_heartbeat_decode(hb, sizeof(hb), &ms), 0);
	mir_heartbeat_encode(hb, MIR_HEARTBEAT_MIN_MS - 1);
	assert_int_not_equal(mir_heartbeat_decode(hb, sizeof(hb), &ms), 0);
	mir_heartbeat_encode(hb, MIR_HEARTBEAT_MAX_MS + 1);
	assert_int_not_equal(mir_heartbeat_decode(hb, sizeof(hb), &ms), 0);

	struct tm_pair *p = tm_pair_new();
	struct mir_peer_cfg pc = { .key = p->key, .key_len = sizeof(p->key) };
	struct mir_status_msg sm;
	struct mir_dest_stats d0, d1;
	struct mir_conn c;
	struct mir_hdr h;

	write_files(p, 1, 16u << 10);
	dest_start(p, MIR_COMP_NONE, false);
	memcpy(pc.id, p->id, 16);
	mir_dest_stats(p->md, &d0);
	int fd = mir_tcp_connect("127.0.0.1", p->port, 2000);
	assert_true(fd >= 0);
	assert_int_equal(mir_conn_init(&c, fd, 3000, NULL), 0);
	assert_int_equal(mir_handshake_source(&c, &pc, &sm), 0);
	mir_heartbeat_encode(hb, 250);
	assert_int_equal(mir_send(&c, MIR_MSG_HEARTBEAT, hb, sizeof(hb)), 0);
	assert_int_equal(mir_readable(&c, 300), 0);	/* taken */
	mir_heartbeat_encode(hb, MIR_HEARTBEAT_MAX_MS + 1);
	assert_int_equal(mir_send(&c, MIR_MSG_HEARTBEAT, hb, sizeof(hb)), 0);
	int rc = mir_recv(&c, &h);
	assert_true(rc == -ECONNRESET || rc == -EPIPE);
	mir_conn_close(&c);
	for (int i = 0; i < 100; i++) {
		mir_dest_stats(p->md, &d1);
		if (d1.rejects > d0.rejects)
			break;
		usleep(10000);
	}
	fprintf(stderr, "HEARTBEAT out of bounds: \"%s\"\n", d1.last_error);
	assert_true(d1.rejects > d0.rejects);
	assert_non_null(strstr(d1.last_error, "HEARTBEAT"));
	tm_pair_free(p);
}

static int sockopt(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);

	assert_int_equal(getsockopt(fd, level, name, &v, &l), 0);
	return v;
}

/*
 * TCP keepalive on both ends of a mirror link, from the io timeout: a
 * connection made by mir_tcp_connect and one taken by the acceptor
 * (as a source's and a destination's are), each through mir_conn_init.
 * The first probe after the timeout idle (at least 1 s), one every third
 * of it (at least 1 s), 3 of them; and unacknowledged data is given up
 * after as long.  A socket pair that is not TCP is left alone.
 */
static void test_keepalive_set(void **state)
{
	static const struct { uint32_t timeout_ms; int idle, intvl; } cases[] = {
		{ 10000, 10, 3 }, { 1000, 1, 1 }, { 300, 1, 1 },
		{ 60000, 60, 20 }, { 4500, 5, 1 },
	};
	struct mir_acceptor a;
	uint8_t id[16] = { 0 };

	(void)state;
	assert_int_equal(mir_acceptor_open(&a, NULL, "127.0.0.1", 0, id,
	    false), 0);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct mir_conn cs, cd;
		int sfd = mir_tcp_connect("127.0.0.1", a.port, 2000);
		assert_true(sfd >= 0);
		int dfd = mir_acceptor_next(&a, 2000);
		assert_true(dfd >= 0);
		assert_int_equal(mir_conn_init(&cs, sfd, cases[k].timeout_ms,
		    NULL), 0);
		assert_int_equal(mir_conn_init(&cd, dfd, cases[k].timeout_ms,
		    NULL), 0);
		int fds[2] = { sfd, dfd };
		for (int e = 0; e < 2; e++) {
			int fd = fds[e];
			fprintf(stderr, "timeout %u ms, %s: keepalive %d, idle "
			    "%d s, interval %d s, probes %d, user timeout %d "
			    "ms\n", cases[k].timeout_ms, e == 0 ? "connected" :
			    "accepted", sockopt(fd, SOL_SOCKET, SO_KEEPALIVE),
			    sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE),
			    sockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL),
			    sockopt(fd, IPPROTO_TCP, TCP_KEEPCNT),
			    sockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT));
			assert_int_equal(sockopt(fd, SOL_SOCKET, SO_KEEPALIVE),
			    1);
			assert_int_equal(sockopt(fd, IPPROTO_TCP,
			    TCP_KEEPIDLE), cases[k].idle);
			assert_int_equal(sockopt(fd, IPPROTO_TCP,
			    TCP_KEEPINTVL), cases[k].intvl);
			assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_KEEPCNT),
			    3);
			assert_int_equal(sockopt(fd, IPPROTO_TCP,
			    TCP_USER_TIMEOUT), (cases[k].idle +
			    3 * cases[k].intvl) * 1000);
		}
		mir_conn_close(&cs);
		mir_conn_close(&cd);
	}
	mir_acceptor_close(&a);

	/* Not TCP: nothing is set, and the link works as before. */
	int sv[2];
	struct mir_conn cu;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(mir_conn_init(&cu, sv[0], 1000, NULL), 0);
	assert_int_equal(sockopt(sv[0], SOL_SOCKET, SO_KEEPALIVE), 0);
	mir_conn_close(&cu);
	close(sv[1]);
}

/*
 * A quiesce while the source waits for an acknowledgement with every
 * hold taken (a destination that takes frames and does not answer, the
 * fallback bound far away): the link closes and the state says quiesced
 * (before, the wait went on until an ACK came, or forever).
 */
static void test_quiesce_while_waiting_for_ack(void **state)
{
	struct tm_pair *p = tm_pair_new();
	struct fake_dest f;
	struct mir_source_stats ss;
	struct mir_hdr h;

	(void)state;
	write_files(p, 1, 64u << 10);
	uint64_t d = wafl_generation(p->src->v);
	fake_listen(&f, p);
	source_to(p, f.port, UINT64_MAX / 2);
	fake_accept(&f, d);
	/* More roots than the source may hold unacknowledged. */
	for (unsigned i = 0; i < 8; i++) {
		source_cp(p, 2000u + i);
		while (mir_readable(&f.c, 50) > 0 && mir_recv(&f.c, &h) == 0)
			;
	}
	mir_source_quiesce(p->ms);
	double t0 = now_s();
	for (int i = 0; i < 300; i++) {
		mir_source_stats(p->ms, &ss);
		if (ss.state == MIR_QUIESCED)
			break;
		usleep(10000);
	}
	fprintf(stderr, "quiesce while waiting for an ACK: %s after %.2f s\n",
	    mir_state_name(ss.state), now_s() - t0);
	assert_int_equal(ss.state, MIR_QUIESCED);
	assert_true(fake_closed(&f));
	mir_source_stop(p->ms);
	p->ms = NULL;
	mir_conn_close(&f.c);
	close(f.lfd);
	tm_pair_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compression_shrinks_the_wire),
		cmocka_unit_test(test_tls_transfer),
		cmocka_unit_test(test_mismatch_refused),
		cmocka_unit_test(test_other_version_refused),
		cmocka_unit_test(test_corrupt_compressed_block_refused),
		cmocka_unit_test(test_throttle_paces),
		cmocka_unit_test(test_throttle_recv_paces),
		cmocka_unit_test(test_throttle_recv_floor_tcp),
		cmocka_unit_test(test_ack_of_unsent_generation_refused),
		cmocka_unit_test(test_silent_destination_falls_back),
		cmocka_unit_test(test_trickling_peer_cut),
		cmocka_unit_test(test_small_destination_named),
		cmocka_unit_test(test_refusals_back_off),
		cmocka_unit_test(test_vanished_source_given_up),
		cmocka_unit_test(test_idle_source_kept),
		cmocka_unit_test(test_heartbeat_checked),
		cmocka_unit_test(test_keepalive_set),
		cmocka_unit_test(test_quiesce_while_waiting_for_ack),
	};
	return cmocka_run_group_tests_name("mirror wire", tests, NULL, NULL);
}
