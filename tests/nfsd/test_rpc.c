/*
 * tests/nfsd/test_rpc.c: the RPC layer with hand-built bytes over real
 * sockets: replies for wrong program / version / procedure / RPC version,
 * credentials (AUTH_SYS bounds, AUTH_NONE, other flavors), garbage
 * arguments, record marking (fragments, pipelining, truncated and
 * oversized records), a stalled half record that must not stall others,
 * the partial-record timeout, many idle connections, UDP, and the
 * duplicate request cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>

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

	/* One call split into three fragments, one byte each for a while. */
	xb_call(&x, 30, TH_NFS_PROG, 3, 0, 0, 0);
	size_t cut[3] = { 5, 17, x.n - 22 };
	size_t off = 0;
	for (int i = 0; i < 3; i++) {
		uint32_t m = (uint32_t)cut[i] | (i == 2 ? 0x80000000u : 0);
		uint8_t h[4] = { (uint8_t)(m >> 24), (uint8_t)(m >> 16),
		    (uint8_t)(m >> 8), (uint8_t)m };
		for (int k = 0; k < 4; k++)
			th_send_all(fd, &h[k], 1);
		th_send_all(fd, x.b + off, cut[i]);
		off += cut[i];
	}
	rp.len = th_recv_record(fd, rp.buf, sizeof(rp.buf), TH_TIMEOUT_MS);
	th_parse_reply(&rp);
	assert_int_equal(rp.xid, 30);
	assert_int_equal(rp.stat, 0);

	/* 200 calls in one write: 200 replies, every xid once. */
	for (uint32_t i = 0; i < 200; i++) {
		xb_call(&x, 1000 + i, TH_NFS_PROG, 3, 0, 0, 0);
		uint32_t m = 0x80000000u | (uint32_t)x.n;
		out[n++] = (uint8_t)(m >> 24);
		out[n++] = (uint8_t)(m >> 16);
		out[n++] = (uint8_t)(m >> 8);
		out[n++] = (uint8_t)m;
		memcpy(out + n, x.b, x.n);
		n += x.n;
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
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
