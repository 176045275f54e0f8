/*
 * tests/nfsd/test_rpc.c: the RPC layer with hand-built bytes over real
 * sockets: replies for wrong program / version / procedure / RPC version,
 * credentials (AUTH_SYS bounds, AUTH_NONE, other flavors), garbage
 * arguments, record marking (fragments, pipelining, truncated and
 * oversized records), a stalled half record that must not stall others,
 * the partial-record timeout, many idle connections, UDP, the
 * duplicate request cache, and large READ replies (record mark, data and
 * padding exact, also when replies queue behind a slow reader).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>

#include "common/util.h"
#include "nfsd/nfsd_impl.h"
#include "tests/lib/tl_proc.h"
#include "tests/nfsd/th.h"

static struct xb x;
static struct th_reply rp;

static int setup(void **state)
{
	struct th *t = calloc(1, sizeof(*t));
	th_config(t);
	t->cfg.partial_timeout_ms = 1000;
	th_serve(t);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	th_stop(*state);
	free(*state);
	return 0;
}

static void test_null_tcp_udp(void **state)
{
	struct th *t = *state;
	int fd = th_tcp(t->nfs_port, 0);

	xb_call(&x, 7, TH_NFS_PROG, 3, 0, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.xid, 7);
	assert_int_equal(rp.stat, 0);
	assert_int_equal(rp.r.off, rp.r.n);	/* void result */
	/* MOUNT NULL on the mount port, AUTH_NONE. */
	close(fd);
	fd = th_tcp(t->mnt_port, 0);
	xb_call(&x, 8, TH_MNT_PROG, 3, 0, -1, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 0);
	close(fd);

	int u = th_udp();
	xb_call(&x, 9, TH_NFS_PROG, 3, 0, 0, 0);
	th_rpc_udp(u, t->nfs_port, &x, &rp);
	assert_int_equal(rp.xid, 9);
	assert_int_equal(rp.stat, 0);
	close(u);
}

static void test_prog_vers_proc(void **state)
{
	struct th *t = *state;
	int fd = th_tcp(t->nfs_port, 0);

	xb_call(&x, 1, 100099, 1, 0, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 1);			/* PROG_UNAVAIL */

	xb_call(&x, 2, TH_NFS_PROG, 4, 0, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 2);			/* PROG_MISMATCH */
	assert_int_equal(rp.lo, 3);
	assert_int_equal(rp.hi, 3);

	xb_call(&x, 3, TH_MNT_PROG, 1, 0, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 2);
	assert_int_equal(rp.lo, 3);

	xb_call(&x, 4, TH_NFS_PROG, 3, 22, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 3);			/* PROC_UNAVAIL */
	xb_call(&x, 5, TH_MNT_PROG, 3, 6, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 3);

	/* RPC version 3: MSG_DENIED RPC_MISMATCH (2, 2). */
	xb_call(&x, 6, TH_NFS_PROG, 3, 0, 0, 0);
	x.b[11] = 3;
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, TH_DENIED + 0);
	assert_int_equal(rp.lo, 2);
	assert_int_equal(rp.hi, 2);

	/* Still serving on the same connection. */
	xb_call(&x, 7, TH_NFS_PROG, 3, 0, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 0);
	close(fd);
}

/* A call with a hand-made credential body. */
static void cred_call(uint32_t flavor, const struct xb *body)
{
	x.n = 0;
	xb_u32(&x, 11);
	xb_u32(&x, 0);
	xb_u32(&x, 2);
	xb_u32(&x, TH_NFS_PROG);
	xb_u32(&x, 3);
	xb_u32(&x, 0);
	xb_u32(&x, flavor);
	xb_opaque(&x, body->b, (uint32_t)body->n);
	xb_u32(&x, 0);
	xb_u32(&x, 0);
}

static struct xb body;

static void sys_body(uint32_t namelen, uint32_t ngids)
{
	char name[600];
	memset(name, 'h', sizeof(name));
	body.n = 0;
	xb_u32(&body, 1);
	xb_opaque(&body, name, namelen);
	xb_u32(&body, 1000);
	xb_u32(&body, 1000);
	xb_u32(&body, ngids);
	for (uint32_t i = 0; i < ngids; i++)
		xb_u32(&body, 100 + i);
}

static void test_credentials(void **state)
{
	struct th *t = *state;
	int fd = th_tcp(t->nfs_port, 0);

	sys_body(255, 16);
	cred_call(1, &body);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 0);

	sys_body(256, 0);				/* name too long */
	cred_call(1, &body);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, TH_DENIED + 1);	/* AUTH_ERROR */
	assert_int_equal(rp.lo, 1);			/* AUTH_BADCRED */

	sys_body(8, 17);				/* too many gids */
	cred_call(1, &body);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, TH_DENIED + 1);
	assert_int_equal(rp.lo, 1);

	sys_body(8, 2);					/* trailing bytes */
	xb_u32(&body, 0);
	cred_call(1, &body);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, TH_DENIED + 1);

	body.n = 0;					/* truncated body */
	xb_u32(&body, 1);
	cred_call(1, &body);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, TH_DENIED + 1);

	body.n = 404;					/* over 400 bytes */
	memset(body.b, 0, body.n);
	cred_call(1, &body);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, TH_DENIED + 1);
	assert_int_equal(rp.lo, 1);

	body.n = 0;					/* AUTH_NONE */
	cred_call(0, &body);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 0);

	body.n = 8;					/* RPCSEC_GSS */
	memset(body.b, 0, 8);
	cred_call(6, &body);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, TH_DENIED + 1);
	assert_int_equal(rp.lo, 5);			/* AUTH_TOOWEAK */
	close(fd);
}

static void test_garbage_args(void **state)
{
	struct th *t = *state;
	int fd = th_tcp(t->nfs_port, 0);

	/* GETATTR with no handle at all. */
	xb_call(&x, 20, TH_NFS_PROG, 3, 1, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 4);			/* GARBAGE_ARGS */
	/* A handle longer than 64 bytes. */
	xb_call(&x, 21, TH_NFS_PROG, 3, 1, 0, 0);
	uint8_t big[100] = { 0 };
	xb_opaque(&x, big, sizeof(big));
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 4);
	/* WRITE claiming 4 GiB of data in a small record. */
	xb_call(&x, 22, TH_NFS_PROG, 3, 7, 0, 0);
	xb_opaque(&x, big, 52);
	xb_u64(&x, 0);
	xb_u32(&x, 10);
	xb_u32(&x, 0);
	xb_u32(&x, 0xfffffff0u);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 4);
	/* LOOKUP with a 5000-byte name. */
	static char name[5001];
	memset(name, 'n', 5000);
	xb_call(&x, 23, TH_NFS_PROG, 3, 3, 0, 0);
	xb_opaque(&x, big, 52);
	xb_str(&x, name);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 4);
	/* MNT with a path over 1024 bytes. */
	xb_call(&x, 24, TH_MNT_PROG, 3, 1, 0, 0);
	xb_str(&x, name);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 4);
	/* A call that is only a few bytes: dropped, connection lives. */
	x.n = 8;
	memset(x.b, 0xff, 8);
	th_send_record(fd, &x);
	xb_call(&x, 25, TH_NFS_PROG, 3, 0, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.xid, 25);
	assert_int_equal(rp.stat, 0);
	close(fd);
}

static void test_fragments_and_pipelining(void **state)
{
	struct th *t = *state;
	int fd = th_tcp(t->nfs_port, 0);
	static uint8_t out[1 << 16];
	size_t n = 0;

	/* One call split into three fragments, their marks sent one byte
	 * at a time with a pause after each (so that the server reads each
	 * byte on its own, not the mark whole). */
	xb_call(&x, 30, TH_NFS_PROG, 3, 0, 0, 0);
	size_t cut[3] = { 5, 17, x.n - 22 };
	size_t off = 0;
	for (int i = 0; i < 3; i++) {
		uint32_t m = (uint32_t)cut[i] | (i == 2 ? 0x80000000u : 0);
		uint8_t h[4] = { (uint8_t)(m >> 24), (uint8_t)(m >> 16),
		    (uint8_t)(m >> 8), (uint8_t)m };
		for (int k = 0; k < 4; k++) {
			th_send_all(fd, &h[k], 1);
			usleep(20 * 1000);
		}
		th_send_all(fd, x.b + off, cut[i]);
		off += cut[i];
		usleep(20 * 1000);
	}
	rp.len = th_recv_record(fd, rp.buf, sizeof(rp.buf), TH_TIMEOUT_MS);
	assert_true(rp.len > 0);
	th_parse_reply(&rp);
	assert_int_equal(rp.xid, 30);
	assert_int_equal(rp.stat, 0);

	/* 200 calls in one write: 200 replies, every xid once. */
	for (uint32_t i = 0; i < 200; i++) {
		xb_call(&x, 1000 + i, TH_NFS_PROG, 3, 0, 0, 0);
		n = th_append_record(out, sizeof(out), n, &x);
	}
	th_send_all(fd, out, n);
	static bool seen[200];
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < 200; i++) {
		rp.len = th_recv_record(fd, rp.buf, sizeof(rp.buf),
		    TH_TIMEOUT_MS);
		assert_true(rp.len > 0);
		th_parse_reply(&rp);
		assert_true(rp.xid >= 1000 && rp.xid < 1200);
		assert_false(seen[rp.xid - 1000]);
		seen[rp.xid - 1000] = true;
	}
	close(fd);
}

static void test_oversized_and_truncated(void **state)
{
	struct th *t = *state;
	struct nfsd_stats st;

	/* A fragment header announcing 2 MiB: the connection is closed. */
	int fd = th_tcp(t->nfs_port, 0);
	uint8_t h[4] = { 0x80, 0x20, 0x00, 0x00 };
	th_send_all(fd, h, 4);
	assert_true(th_closed(fd, TH_TIMEOUT_MS));
	close(fd);
	/* Fragments adding up past the bound. */
	fd = th_tcp(t->nfs_port, 0);
	static uint8_t chunk[(1 << 20) - 4];
	memset(chunk, 0, sizeof(chunk));
	for (int i = 0; i < 2; i++) {
		uint32_t m = sizeof(chunk);
		uint8_t hh[4] = { (uint8_t)(m >> 24), (uint8_t)(m >> 16),
		    (uint8_t)(m >> 8), (uint8_t)m };
		th_send_all(fd, hh, 4);
		th_send_all(fd, chunk, sizeof(chunk));
	}
	assert_true(th_closed(fd, TH_TIMEOUT_MS));
	close(fd);
	nfsd_get_stats(t->srv, &st);
	assert_true(st.records_oversized >= 2);

	/* Truncated record then close: nothing breaks. */
	fd = th_tcp(t->nfs_port, 0);
	xb_call(&x, 40, TH_NFS_PROG, 3, 0, 0, 0);
	uint32_t m = 0x80000000u | (uint32_t)(x.n + 100);
	uint8_t hh[4] = { (uint8_t)(m >> 24), (uint8_t)(m >> 16),
	    (uint8_t)(m >> 8), (uint8_t)m };
	th_send_all(fd, hh, 4);
	th_send_all(fd, x.b, x.n);
	close(fd);

	fd = th_tcp(t->nfs_port, 0);
	xb_call(&x, 41, TH_NFS_PROG, 3, 0, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 0);
	close(fd);
}

/* Half a record, then silence: others keep working, and the stalled
 * connection is closed after the partial-record timeout (1 s here). */
static void test_stalled_half_record(void **state)
{
	struct th *t = *state;
	int bad = th_tcp(t->nfs_port, 0);
	uint8_t h[4] = { 0x80, 0x00, 0x01, 0x00 };

	th_send_all(bad, h, 4);
	th_send_all(bad, "abcdefgh", 8);
	int good = th_tcp(t->nfs_port, 0);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (uint32_t i = 0; i < 50; i++) {
		xb_call(&x, 50 + i, TH_NFS_PROG, 3, 0, 0, 0);
		th_rpc_tcp(good, &x, &rp);
		assert_int_equal(rp.stat, 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(b.tv_sec - a.tv_sec < 2);
	assert_true(th_closed(bad, 5000));
	close(bad);
	close(good);
}

static void test_many_idle_connections(void **state)
{
	struct th *t = *state;
	enum { MAXN = 1000 };
	static int fds[MAXN];
	rlim_t lim = th_raise_nofile(4096);
	int N = lim > 2 * MAXN + 200 ? MAXN : (int)(lim - 200) / 2;

	for (int i = 0; i < N; i++)
		fds[i] = th_tcp(t->nfs_port, 0);
	xb_call(&x, 60, TH_NFS_PROG, 3, 0, 0, 0);
	th_rpc_tcp(fds[N / 2], &x, &rp);
	assert_int_equal(rp.stat, 0);
	th_rpc_tcp(fds[N - 1], &x, &rp);
	assert_int_equal(rp.stat, 0);
	struct nfsd_stats st;
	nfsd_get_stats(t->srv, &st);
	assert_true(st.conns_open >= (uint64_t)N);
	for (int i = 0; i < N; i++)
		close(fds[i]);
}

/* Retransmitted REMOVE: the second answer is the first one (OK), not
 * NOENT; a different call with the same xid is not confused with it. */
static void test_drc(void **state)
{
	struct th *t = *state;
	int fd = th_tcp(t->mnt_port, 0);
	struct th_fh root, f;
	struct nfsd_stats st0, st1;

	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	/* CREATE "drc" (UNCHECKED, empty sattr). */
	xb_call(&x, 70, TH_NFS_PROG, 3, 8, 0, 0);
	xb_fh(&x, &root);
	xb_str(&x, "drc");
	xb_u32(&x, 0);
	for (int i = 0; i < 6; i++)
		xb_u32(&x, 0);
	assert_int_equal(th_status(fd, &x), 0);
	assert_int_equal(th_lookup(fd, &root, "drc", &f, NULL), 0);

	nfsd_get_stats(t->srv, &st0);
	xb_call(&x, 71, TH_NFS_PROG, 3, 12, 0, 0);
	xb_fh(&x, &root);
	xb_str(&x, "drc");
	assert_int_equal(th_status(fd, &x), 0);
	assert_int_equal(th_status(fd, &x), 0);		/* replayed */
	nfsd_get_stats(t->srv, &st1);
	assert_int_equal(st1.drc_hits, st0.drc_hits + 1);
	/* Same xid, other name: not a duplicate. */
	xb_call(&x, 71, TH_NFS_PROG, 3, 12, 0, 0);
	xb_fh(&x, &root);
	xb_str(&x, "other");
	assert_int_equal(th_status(fd, &x), 2);		/* NOENT */
	close(fd);
}

/* ------------------------------------------------- large READ replies */

#define BIG_SIZE	((1u << 20) + 5000u)

static uint8_t big_byte(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 12) + 1);
}

/* The file "big" of BIG_SIZE pattern bytes, written through wafl. */
static void big_file(struct th *t)
{
	struct wafl_cred cr = { 0 };
	struct wafl_obj root, o;
	struct wafl_sattr sa = { .set_mode = true, .mode = 0644 };
	enum wafl_stable got;
	uint8_t *buf = malloc(BIG_SIZE);

	VERIFY(buf != NULL);
	for (uint32_t i = 0; i < BIG_SIZE; i++)
		buf[i] = big_byte(i);
	VERIFY0(wafl_root(t->fs->v, &root));
	VERIFY0(wafl_create(t->fs->v, &cr, &root, "big", WAFL_UNCHECKED, &sa,
	    0, &o, NULL, NULL));
	for (uint32_t off = 0; off < BIG_SIZE; off += 1u << 20)
		VERIFY0(wafl_write(t->fs->v, &cr, &o, off,
		    FL_MIN(1u << 20, BIG_SIZE - off), buf + off,
		    WAFL_FILE_SYNC, &got, NULL, NULL));
	free(buf);
}

static void xb_read(struct xb *xx, uint32_t xid, const struct th_fh *fh,
    uint64_t off, uint32_t count)
{
	xb_call(xx, xid, TH_NFS_PROG, 3, 6, 0, 0);
	xb_fh(xx, fh);
	xb_u64(xx, off);
	xb_u32(xx, count);
}

/*
 * One READ reply of exactly len bytes (the record as received): accepted,
 * NFS3_OK, attributes, count = opaque length = what the file holds from
 * off (at most count), eof right, the bytes of the pattern, XDR padding of
 * zeros, nothing after.
 */
static void check_read_reply(const uint8_t *rec, size_t len, uint64_t off,
    uint32_t count)
{
	struct th_reply *r = malloc(sizeof(*r));
	uint64_t want = off >= BIG_SIZE ? 0 : FL_MIN(count, BIG_SIZE - off);
	uint32_t n;

	VERIFY(r != NULL && len <= sizeof(r->buf));
	memcpy(r->buf, rec, len);
	r->len = (ssize_t)len;
	th_parse_reply(r);
	assert_int_equal(r->stat, 0);
	assert_int_equal(rd_u32(&r->r), 0);			/* NFS3_OK */
	struct th_fattr a;
	assert_true(rd_post_attr(&r->r, &a));
	assert_int_equal(a.size, BIG_SIZE);
	assert_int_equal(rd_u32(&r->r), want);			/* count */
	assert_int_equal(rd_u32(&r->r), off + want >= BIG_SIZE);	/* eof */
	size_t at = r->r.off + 4;
	const uint8_t *d = rd_opaque(&r->r, &n);
	assert_false(r->r.bad);
	assert_int_equal(n, want);
	for (uint32_t i = 0; i < n; i++)
		if (d[i] != big_byte(off + i))
			fail_msg("byte %u of a READ at %llu: %u, not %u", i,
			    (unsigned long long)off, d[i], big_byte(off + i));
	for (size_t i = at + n; i < len; i++)
		assert_int_equal(rec[i], 0);			/* padding */
	assert_int_equal(r->r.off, len);
	assert_int_equal(len % 4, 0);
	free(r);
}

/* One record that must be a single last fragment; its length. */
static size_t recv_one_fragment(int fd, uint8_t *buf, size_t cap)
{
	uint8_t h[4];
	VERIFY(th_recv_n(fd, h, 4, TH_TIMEOUT_MS));
	uint32_t m = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
	    (uint32_t)h[2] << 8 | h[3];
	assert_true(m & 0x80000000u);
	size_t n = m & 0x7fffffffu;
	VERIFY(n <= cap);
	VERIFY(th_recv_n(fd, buf, n, TH_TIMEOUT_MS));
	return n;
}

/*
 * Large READ replies go out as the encoded reply followed by the data
 * from the pieces wafl_read_vec gave (sendmsg, no copy): the record mark
 * must count all of it, data and padding must be exact, for aligned and
 * odd offsets and counts, at EOF, past EOF, when the socket takes only
 * part of a reply (16 pipelined 1 MiB READs on a connection not read for
 * a while, so replies queue), and over UDP.
 */
static void test_large_read_replies(void **state)
{
	struct th *t = *state;
	static uint8_t rec[NFSD_MAX_RECORD];
	static const struct { uint64_t off; uint32_t count; } cs[] = {
		{ 0, 1u << 20 }, { 1, (1u << 20) - 3 }, { 4093, 1000001 },
		{ 8192, 4096 }, { 5, 3 }, { BIG_SIZE - 10, 100 },
		{ BIG_SIZE, 4096 }, { 0, 0 }, { 12345, 2u << 20 },
	};
	struct th_fh root, fh;
	int fd;

	big_file(t);
	fd = th_tcp(t->nfs_port, 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	assert_int_equal(th_lookup(fd, &root, "big", &fh, NULL), 0);

	for (size_t i = 0; i < FL_ARRAY_SIZE(cs); i++) {
		xb_read(&x, 900 + (uint32_t)i, &fh, cs[i].off, cs[i].count);
		th_send_record(fd, &x);
		size_t n = recv_one_fragment(fd, rec, sizeof(rec));
		check_read_reply(rec, n, cs[i].off, cs[i].count);
	}

	/* Pipelined, and not read for a while: replies wait in the queue,
	 * partly sent. */
	for (uint32_t i = 0; i < 16; i++) {
		xb_read(&x, 1000 + i, &fh, i * 4099u % 65536u, 1u << 20);
		th_send_record(fd, &x);
	}
	usleep(300 * 1000);
	static bool seen[16];
	memset(seen, 0, sizeof(seen));
	for (int k = 0; k < 16; k++) {
		size_t n = recv_one_fragment(fd, rec, sizeof(rec));
		uint32_t xid = (uint32_t)rec[0] << 24 | (uint32_t)rec[1] << 16 |
		    (uint32_t)rec[2] << 8 | rec[3];
		assert_true(xid >= 1000 && xid < 1016);
		assert_false(seen[xid - 1000]);
		seen[xid - 1000] = true;
		check_read_reply(rec, n, (xid - 1000) * 4099u % 65536u,
		    1u << 20);
	}
	close(fd);

	/* UDP: one datagram, counts clamped to 32 KiB. */
	int ufd = th_udp();
	static struct th_reply ur;
	xb_read(&x, 1100, &fh, 77, 30001);
	th_rpc_udp(ufd, t->nfs_port, &x, &ur);
	check_read_reply(ur.buf, (size_t)ur.len, 77, 30001);
	xb_read(&x, 1101, &fh, 3, 1u << 20);
	th_rpc_udp(ufd, t->nfs_port, &x, &ur);
	check_read_reply(ur.buf, (size_t)ur.len, 3, 32u << 10);
	close(ufd);
}

/*
 * nfsd_read_count, which picks the READs taken alone from records as they
 * came: the count of a READ with either credential and any handle length,
 * 0 for every record cut short before the count's last byte, and 0 for a
 * credential or handle longer than the protocol allows.
 */
static void test_read_count(void **state)
{
	struct th_fh fh = { .len = 37 };
	static struct xb y;

	(void)state;
	memset(fh.b, 0xab, sizeof(fh.b));
	for (int uid = -1; uid <= 0; uid++) {
		for (uint32_t len = 0; len <= 64; len += 13) {
			fh.len = len;
			xb_call(&y, 7, TH_NFS_PROG, 3, 6, uid, 0);
			xb_fh(&y, &fh);
			xb_u64(&y, 1ull << 40);
			xb_u32(&y, 123457);
			assert_int_equal(nfsd_read_count(y.b, y.n), 123457);
			for (size_t cut = 0; cut < y.n; cut++)
				assert_int_equal(nfsd_read_count(y.b, cut), 0);
		}
	}
	/* A handle of 65 bytes: out of bounds. */
	xb_call(&y, 7, TH_NFS_PROG, 3, 6, 0, 0);
	xb_u32(&y, 65);
	for (int i = 0; i < 17 + 3; i++)
		xb_u32(&y, 0x01010101u);
	assert_int_equal(nfsd_read_count(y.b, y.n), 0);
	/* A credential of 2^32 - 4 bytes: out of bounds, no overflow. */
	xb_call(&y, 7, TH_NFS_PROG, 3, 6, -1, 0);
	y.b[28] = y.b[29] = y.b[30] = 0xff;
	y.b[31] = 0xfc;
	assert_int_equal(nfsd_read_count(y.b, y.n), 0);
}

/* Append count pipelined CREATE calls (UNCHECKED, nothing set) of
 * "<prefix>-<i>" in dir, xids xid0 + i, to out at n; the new length. */
static size_t append_creates(uint8_t *out, size_t cap, size_t n,
    const struct th_fh *dir, const char *prefix, uint32_t xid0,
    uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		char name[32];

		snprintf(name, sizeof(name), "%s-%u", prefix, i);
		xb_call(&x, xid0 + i, TH_NFS_PROG, 3, 8, 0, 0);
		xb_fh(&x, dir);
		xb_str(&x, name);
		xb_u32(&x, 0);			/* UNCHECKED */
		for (int k = 0; k < 6; k++)
			xb_u32(&x, 0);		/* sattr3: nothing set */
		n = th_append_record(out, cap, n, &x);
	}
	return n;
}

/* count GETATTRs of fh as records at out + n; returns the new length. */
static size_t append_getattrs(uint8_t *out, size_t cap, size_t n,
    const struct th_fh *fh, uint32_t xid0, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		xb_call(&x, xid0 + i, TH_NFS_PROG, 3, 1, 0, 0);
		xb_fh(&x, fh);
		n = th_append_record(out, cap, n, &x);
	}
	return n;
}

/* Read one reply from fd: accepted, NFS3_OK; its xid. */
static uint32_t recv_ok(int fd)
{
	rp.len = th_recv_record(fd, rp.buf, sizeof(rp.buf), TH_TIMEOUT_MS);
	assert_true(rp.len > 0);
	th_parse_reply(&rp);
	assert_int_equal(rp.stat, 0);
	assert_int_equal(rd_u32(&rp.r), 0);	/* NFS3_OK */
	return rp.xid;
}

/*
 * Replies that wait for the NVLOG go out together, one sendmsg for those
 * of a connection that one flush made durable.  Here 1000 CREATEs are
 * pipelined on a connection that is not read for a while, with a small
 * receive buffer and, on the server's end, a small send buffer (loopback
 * would otherwise take all 1000 replies at once), so that the batched
 * sends are cut short, inside a reply, and the rest queues: every reply
 * arrives once, whole, each one NFS3_OK.
 */
static void test_logged_replies_batched(void **state)
{
	enum { N = 1000 };
	struct th *t = *state;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), small = 2048;
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons(t->nfs_port) };
	struct th_fh root;
	static uint8_t out[N * 256];
	static bool seen[N];
	struct nfsd_stats st0, st1;
	size_t n = 0;

	/* The receive buffer set before connecting: the window stays small. */
	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small,
	    sizeof(small)), 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	int srv_fd = th_server_end(fd);
	assert_true(srv_fd >= 0);
	assert_int_equal(setsockopt(srv_fd, SOL_SOCKET, SO_SNDBUF, &small,
	    sizeof(small)), 0);
	n = append_creates(out, sizeof(out), n, &root, "batched", 5000, N);
	nfsd_get_stats(t->srv, &st0);
	th_send_all(fd, out, n);
	usleep(300 * 1000);
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < N; i++) {
		uint32_t xid = recv_ok(fd);

		assert_true(xid >= 5000 && xid < 5000 + N);
		assert_false(seen[xid - 5000]);
		seen[xid - 5000] = true;
	}
	nfsd_get_stats(t->srv, &st1);
	print_message("%llu replies in %llu batched sends\n",
	    (unsigned long long)(st1.reply_batched - st0.reply_batched),
	    (unsigned long long)(st1.reply_batches - st0.reply_batches));
	/* 1000 calls in flight and the log's flushes take many each. */
	assert_true(st1.reply_batches > st0.reply_batches);
	close(fd);
}

/*
 * Calls a worker takes together (up to NFSD_TAKE_MAX, 8) run as a batch:
 * 16 pipelined GETATTRs, which wait for no flush, get their replies in
 * fewer sends than calls (one send per reply without batches).  64
 * pipelined CREATEs need fewer NVLOG flushes than calls (2 or 3 here, 15
 * to 21 under AddressSanitizer): that catches a flush per call, not the
 * batch's sharing, which group commit alone often meets (test_ops
 * test_deferred_durability and test_nvlog test_when_durable_later check
 * the sharing itself).
 */
static void test_batched_calls(void **state)
{
	enum { NG = 16, NC = 64 };
	struct th *t = *state;
	int fd = th_tcp(t->nfs_port, 0);
	struct th_fh root;
	static uint8_t out[NC * 256];
	struct nfsd_stats st0, st1;
	struct wafl_stats w0, w1;
	size_t n = 0;

	assert_true(fd >= 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	n = append_getattrs(out, sizeof(out), n, &root, 8000, NG);
	nfsd_get_stats(t->srv, &st0);
	th_send_all(fd, out, n);
	for (int i = 0; i < NG; i++)
		(void)recv_ok(fd);
	nfsd_get_stats(t->srv, &st1);
	print_message("%d GETATTRs: %llu replies in %llu batched sends\n",
	    NG, (unsigned long long)(st1.reply_batched - st0.reply_batched),
	    (unsigned long long)(st1.reply_batches - st0.reply_batches));
	assert_true(st1.reply_batches > st0.reply_batches);

	n = append_creates(out, sizeof(out), 0, &root, "shared", 9000, NC);
	wafl_get_stats(t->fs->v, &w0);
	th_send_all(fd, out, n);
	for (int i = 0; i < NC; i++)
		(void)recv_ok(fd);
	wafl_get_stats(t->fs->v, &w1);
	print_message("%d CREATEs: %llu log flushes\n", NC,
	    (unsigned long long)(w1.log_flushes - w0.log_flushes));
	assert_true(w1.log_flushes - w0.log_flushes < NC);
	close(fd);
}

/*
 * The server acknowledges a read at once when the read's replies may not
 * carry the ACK soon (ack_now in transport.c).  A client with Nagle's
 * algorithm on (no TCP_NODELAY, as libnfs) holds the second half of a call
 * it writes in two pieces until the first is acknowledged.  The server has
 * nothing to send for half a record, and on a connection that has carried
 * replies Linux delays its ACK until the delayed-ACK timer (40 ms or
 * more).  So each of 15 NULL calls, written in two pieces after a few
 * whole calls, took 40 ms or more without the change; the median must be
 * under 20 ms (a fraction of a millisecond here).  Without the change it
 * fails at every iteration, not by chance.  Then which reads are
 * acknowledged (nfsd_stats.quick_acks): not one of 16 pipelined GETATTRs,
 * whose replies follow at once, but one of 8 pipelined CREATEs, whose
 * replies wait for the log.
 */
static void test_acked_at_once(void **state)
{
	enum { N = 15, NG = 16, NC = 8 };
	struct th *t = *state;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons(t->nfs_port) };
	static uint8_t out[NG * 256];
	struct nfsd_stats st0, st1;
	struct th_fh root;
	double ms[N];
	size_t n = 0;

	assert_true(fd >= 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	for (uint32_t i = 0; i < 4; i++) {	/* replies both ways */
		xb_call(&x, 300 + i, TH_NFS_PROG, 3, 0, 0, 0);
		th_rpc_tcp(fd, &x, &rp);
		assert_int_equal(rp.stat, 0);
	}
	for (int i = 0; i < N; i++) {
		size_t half;
		double t0;

		xb_call(&x, 400 + (uint32_t)i, TH_NFS_PROG, 3, 0, 0, 0);
		n = th_append_record(out, sizeof(out), 0, &x);
		half = n / 2;
		t0 = tl_now_s() * 1e3;
		th_send_all(fd, out, half);
		th_send_all(fd, out + half, n - half);
		rp.len = th_recv_record(fd, rp.buf, sizeof(rp.buf),
		    TH_TIMEOUT_MS);
		ms[i] = tl_now_s() * 1e3 - t0;
		assert_true(rp.len > 0);
		th_parse_reply(&rp);
		assert_int_equal(rp.xid, 400 + i);
		assert_int_equal(rp.stat, 0);
	}
	double mid = tl_median(ms, N);
	print_message("a call in two writes, Nagle on: median %.2f ms, "
	    "max %.2f ms\n", mid, ms[N - 1]);
	assert_true(mid < 20.0);

	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	n = append_getattrs(out, sizeof(out), 0, &root, 500, NG);
	nfsd_get_stats(t->srv, &st0);
	th_send_all(fd, out, n);
	for (int i = 0; i < NG; i++)
		(void)recv_ok(fd);
	nfsd_get_stats(t->srv, &st1);
	assert_int_equal(st1.quick_acks, st0.quick_acks);

	n = append_creates(out, sizeof(out), 0, &root, "acked", 600, NC);
	th_send_all(fd, out, n);
	for (int i = 0; i < NC; i++)
		(void)recv_ok(fd);
	nfsd_get_stats(t->srv, &st0);
	print_message("quick ACKs: %llu for %d GETATTRs, %llu for %d "
	    "CREATEs\n", (unsigned long long)0, NG,
	    (unsigned long long)(st0.quick_acks - st1.quick_acks), NC);
	assert_true(st0.quick_acks > st1.quick_acks);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_null_tcp_udp),
		cmocka_unit_test(test_prog_vers_proc),
		cmocka_unit_test(test_credentials),
		cmocka_unit_test(test_garbage_args),
		cmocka_unit_test(test_fragments_and_pipelining),
		cmocka_unit_test(test_oversized_and_truncated),
		cmocka_unit_test(test_stalled_half_record),
		cmocka_unit_test(test_many_idle_connections),
		cmocka_unit_test(test_drc),
		cmocka_unit_test(test_large_read_replies),
		cmocka_unit_test(test_read_count),
		cmocka_unit_test(test_logged_replies_batched),
		cmocka_unit_test(test_batched_calls),
		cmocka_unit_test(test_acked_at_once),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
