/*
 * tests/nfsd/th.h: harness for the nfsd runners (included by each; every
 * helper is static).  A wafl volume from tests/lib/tl_wafl.h, an nfsd
 * serving it on free loopback ports, and two kinds of client:
 *   - hand-built RPC over plain sockets (th_call_*): exact bytes in, exact
 *     bytes out, for protocol checks and hostile input;
 *   - libnfs (the independent client), through th_nfs_mount.
 * Everything is bounded: every wait has a timeout, every loop a count.
 */
#ifndef FILER_TESTS_NFSD_TH_H
#define FILER_TESTS_NFSD_TH_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/assert.h"
#include "nfsd/nfsd.h"
#include "tests/lib/tl_wafl.h"

#define TH_UNUSED	__attribute__((unused))
#define TH_TIMEOUT_MS	10000

#define TH_NFS_PROG	100003u
#define TH_MNT_PROG	100005u

struct th {
	struct tl_fs *fs;
	nfsd_t *srv;
	uint16_t nfs_port, mnt_port;
	struct nfsd_client_rule rules[4];
	struct nfsd_export exp[2];
	struct nfsd_config cfg;
};

static const uint8_t th_key[32] = "filer test file-handle key 0123";

/* Defaults: one export /vol/vol0 to "*" rw, no_root_squash, insecure. */
static TH_UNUSED void th_config(struct th *t)
{
	memset(t, 0, sizeof(*t));
	t->fs = tl_fs_create(4, 1, 8192, false);
	t->rules[0] = (struct nfsd_client_rule){ .client = "*",
	    .flags = NFSD_RW | NFSD_NO_ROOT_SQUASH | NFSD_INSECURE };
	t->exp[0].path = "/vol/vol0";
	t->exp[0].vol = t->fs->v;
	memcpy(t->exp[0].fh_key, th_key, 32);
	t->exp[0].rules = t->rules;
	t->exp[0].nrules = 1;
	t->cfg.bind_addr = "127.0.0.1";
	t->cfg.ephemeral_ports = true;
	t->cfg.threads = 4;
	t->cfg.partial_timeout_ms = 30000;
	t->cfg.exports = t->exp;
	t->cfg.nexports = 1;
}

static TH_UNUSED void th_serve(struct th *t)
{
	VERIFY0(nfsd_create(&t->cfg, &t->srv));
	VERIFY0(nfsd_start(t->srv));
	nfsd_ports(t->srv, &t->nfs_port, &t->mnt_port);
}

static TH_UNUSED void th_start(struct th *t)
{
	th_config(t);
	th_serve(t);
}

static TH_UNUSED void th_stop(struct th *t)
{
	nfsd_free(t->srv);
	t->srv = NULL;
	tl_fs_destroy(t->fs);
	t->fs = NULL;
}

/* Raise the descriptor limit as far as the hard limit allows (up to
 * want); returns the soft limit now in force. */
static TH_UNUSED rlim_t th_raise_nofile(rlim_t want)
{
	struct rlimit rl;
	VERIFY0(getrlimit(RLIMIT_NOFILE, &rl));
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		VERIFY0(getrlimit(RLIMIT_NOFILE, &rl));
	}
	return rl.rlim_cur;
}

/* ------------------------------------------------------------ XDR bytes */

struct xb {
	uint8_t b[1 << 21];
	size_t n;
};

static TH_UNUSED void xb_u32(struct xb *x, uint32_t v)
{
	VERIFY(x->n + 4 <= sizeof(x->b));
	x->b[x->n++] = (uint8_t)(v >> 24);
	x->b[x->n++] = (uint8_t)(v >> 16);
	x->b[x->n++] = (uint8_t)(v >> 8);
	x->b[x->n++] = (uint8_t)v;
}

static TH_UNUSED void xb_u64(struct xb *x, uint64_t v)
{
	xb_u32(x, (uint32_t)(v >> 32));
	xb_u32(x, (uint32_t)v);
}

static TH_UNUSED void xb_opaque(struct xb *x, const void *p, uint32_t len)
{
	xb_u32(x, len);
	VERIFY(x->n + len + 3 <= sizeof(x->b));
	memcpy(x->b + x->n, p, len);
	x->n += len;
	while (x->n % 4)
		x->b[x->n++] = 0;
}

static TH_UNUSED void xb_str(struct xb *x, const char *s)
{
	xb_opaque(x, s, (uint32_t)strlen(s));
}

/* Call header with AUTH_SYS (uid, gid, no groups) or AUTH_NONE (uid < 0). */
static TH_UNUSED void xb_call(struct xb *x, uint32_t xid, uint32_t prog,
    uint32_t vers, uint32_t proc, int uid, int gid)
{
	x->n = 0;
	xb_u32(x, xid);
	xb_u32(x, 0);		/* CALL */
	xb_u32(x, 2);
	xb_u32(x, prog);
	xb_u32(x, vers);
	xb_u32(x, proc);
	if (uid < 0) {
		xb_u32(x, 0);
		xb_u32(x, 0);
	} else {
		xb_u32(x, 1);			/* AUTH_SYS */
		xb_u32(x, 4 + 4 + 8 + 4 + 4 + 4);
		xb_u32(x, 0);			/* stamp */
		xb_str(x, "testhost");
		xb_u32(x, (uint32_t)uid);
		xb_u32(x, (uint32_t)gid);
		xb_u32(x, 0);
	}
	xb_u32(x, 0);
	xb_u32(x, 0);
}

struct rd {
	const uint8_t *p;
	size_t n, off;
	bool bad;
};

static TH_UNUSED uint32_t rd_u32(struct rd *r)
{
	if (r->off + 4 > r->n) {
		r->bad = true;
		return 0;
	}
	const uint8_t *p = r->p + r->off;
	r->off += 4;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static TH_UNUSED uint64_t rd_u64(struct rd *r)
{
	uint64_t hi = rd_u32(r);
	return hi << 32 | rd_u32(r);
}

/* Returns a pointer into the reply (len in *len). */
static TH_UNUSED const uint8_t *rd_opaque(struct rd *r, uint32_t *len)
{
	uint32_t n = rd_u32(r);
	if (r->bad || r->off + n > r->n) {
		r->bad = true;
		*len = 0;
		return NULL;
	}
	const uint8_t *p = r->p + r->off;
	r->off += (n + 3) & ~3u;
	*len = n;
	return p;
}

static TH_UNUSED void rd_skip(struct rd *r, size_t n)
{
	r->off += n;
	if (r->off > r->n)
		r->bad = true;
}

/* fattr3 (84 bytes): returns fileid, fills type/size/uid/mode if given. */
struct th_fattr {
	uint32_t type, mode, nlink, uid, gid;
	uint64_t size, fsid, fileid;
	uint32_t mtime_s, mtime_ns, ctime_s, ctime_ns;
};

static TH_UNUSED void rd_fattr(struct rd *r, struct th_fattr *a)
{
	a->type = rd_u32(r);
	a->mode = rd_u32(r);
	a->nlink = rd_u32(r);
	a->uid = rd_u32(r);
	a->gid = rd_u32(r);
	a->size = rd_u64(r);
	rd_u64(r);		/* used */
	rd_u64(r);		/* rdev */
	a->fsid = rd_u64(r);
	a->fileid = rd_u64(r);
	rd_u64(r);		/* atime */
	a->mtime_s = rd_u32(r);
	a->mtime_ns = rd_u32(r);
	a->ctime_s = rd_u32(r);
	a->ctime_ns = rd_u32(r);
}

/* post_op_attr: true if attributes followed. */
static TH_UNUSED bool rd_post_attr(struct rd *r, struct th_fattr *a)
{
	struct th_fattr tmp;
	if (!rd_u32(r))
		return false;
	rd_fattr(r, a ? a : &tmp);
	return true;
}

static TH_UNUSED void rd_wcc(struct rd *r, bool *pre, bool *post)
{
	bool p = rd_u32(r) != 0;
	if (p)
		rd_skip(r, 24);
	if (pre)
		*pre = p;
	bool q = rd_post_attr(r, NULL);
	if (post)
		*post = q;
}

/* --------------------------------------------------------- raw sockets */

/* TCP connection to port; bind_port != 0: bind that local port first. */
static TH_UNUSED int th_tcp(uint16_t port, uint16_t bind_port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons(port) };
	int one = 1;

	VERIFY(fd >= 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind_port != 0) {
		struct sockaddr_in la = sa;
		la.sin_port = htons(bind_port);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		VERIFY0(bind(fd, (struct sockaddr *)&la, sizeof(la)));
	}
	VERIFY0(connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
	return fd;
}

static TH_UNUSED void th_send_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
		if (k <= 0)
			return;		/* peer closed: the test checks */
		b += k;
		n -= (size_t)k;
	}
}

static TH_UNUSED void th_send_record(int fd, const struct xb *x)
{
	uint8_t h[4];
	uint32_t m = 0x80000000u | (uint32_t)x->n;
	h[0] = (uint8_t)(m >> 24);
	h[1] = (uint8_t)(m >> 16);
	h[2] = (uint8_t)(m >> 8);
	h[3] = (uint8_t)m;
	th_send_all(fd, h, 4);
	th_send_all(fd, x->b, x->n);
}

/* x as one record (a last fragment) at out + n, for calls pipelined in
 * one write; returns the new length. */
static TH_UNUSED size_t th_append_record(uint8_t *out, size_t cap, size_t n,
    const struct xb *x)
{
	uint32_t m = 0x80000000u | (uint32_t)x->n;

	VERIFY(n + 4 + x->n <= cap);
	out[n++] = (uint8_t)(m >> 24);
	out[n++] = (uint8_t)(m >> 16);
	out[n++] = (uint8_t)(m >> 8);
	out[n++] = (uint8_t)m;
	memcpy(out + n, x->b, x->n);
	return n + x->n;
}

/*
 * The server's end of the client's TCP connection fd (the server runs in
 * this process): the socket whose peer is fd's local address; -1 if there
 * is none.
 */
static TH_UNUSED int th_server_end(int fd)
{
	struct sockaddr_in me, peer;
	socklen_t len = sizeof(me);

	if (getsockname(fd, (struct sockaddr *)&me, &len) != 0)
		return -1;
	for (int s = 3; s < 4096; s++) {
		len = sizeof(peer);
		if (s != fd && getpeername(s, (struct sockaddr *)&peer,
		    &len) == 0 && len == sizeof(peer) &&
		    peer.sin_family == AF_INET &&
		    peer.sin_port == me.sin_port &&
		    peer.sin_addr.s_addr == me.sin_addr.s_addr)
			return s;
	}
	return -1;
}

/* Read exactly n bytes within timeout_ms; false on EOF/timeout. */
static TH_UNUSED bool th_recv_n(int fd, uint8_t *p, size_t n, int timeout_ms)
{
	while (n > 0) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (poll(&pf, 1, timeout_ms) <= 0)
			return false;
		ssize_t k = recv(fd, p, n, 0);
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

/* One reply record into buf (len returned), or -1 (closed / timeout). */
static TH_UNUSED ssize_t th_recv_record(int fd, uint8_t *buf, size_t cap,
    int timeout_ms)
{
	size_t len = 0;
	for (int frag = 0; frag < 64; frag++) {
		uint8_t h[4];
		if (!th_recv_n(fd, h, 4, timeout_ms))
			return -1;
		uint32_t m = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
		    (uint32_t)h[2] << 8 | h[3];
		uint32_t n = m & 0x7fffffffu;
		VERIFY(len + n <= cap);
		if (!th_recv_n(fd, buf + len, n, timeout_ms))
			return -1;
		len += n;
		if (m & 0x80000000u)
			return (ssize_t)len;
	}
	return -1;
}

/* Is the peer's side closed (EOF within timeout)? */
static TH_UNUSED bool th_closed(int fd, int timeout_ms)
{
	uint8_t b[256];
	for (int i = 0; i < 1000; i++) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (poll(&pf, 1, timeout_ms) <= 0)
			return false;
		ssize_t k = recv(fd, b, sizeof(b), 0);
		if (k <= 0)
			return true;
	}
	return false;
}

/*
 * Reply parsing: fills the accepted status (or 100 + reject status for
 * MSG_DENIED, with auth_stat / mismatch in extra) and leaves r at the
 * results.
 */
#define TH_DENIED	100u
struct th_reply {
	uint8_t buf[1 << 21];
	ssize_t len;
	uint32_t xid, stat, lo, hi;
	struct rd r;
};

static TH_UNUSED void th_parse_reply(struct th_reply *rp)
{
	struct rd *r = &rp->r;
	*r = (struct rd){ .p = rp->buf, .n = rp->len > 0 ? (size_t)rp->len : 0 };
	rp->xid = rd_u32(r);
	VERIFY_EQ(rd_u32(r), 1);		/* REPLY */
	uint32_t rs = rd_u32(r);
	if (rs == 1) {				/* MSG_DENIED */
		uint32_t rj = rd_u32(r);
		rp->stat = TH_DENIED + rj;
		rp->lo = rd_u32(r);
		rp->hi = rj == 0 ? rd_u32(r) : 0;
		return;
	}
	rd_u32(r);				/* verf flavor */
	uint32_t vl;
	rd_opaque(r, &vl);
	rp->stat = rd_u32(r);
	if (rp->stat == 2) {			/* PROG_MISMATCH */
		rp->lo = rd_u32(r);
		rp->hi = rd_u32(r);
	}
}

/* Send x as one record on fd and read the reply (TCP). */
static TH_UNUSED void th_rpc_tcp(int fd, const struct xb *x,
    struct th_reply *rp)
{
	th_send_record(fd, x);
	rp->len = th_recv_record(fd, rp->buf, sizeof(rp->buf), TH_TIMEOUT_MS);
	VERIFY(rp->len > 0);
	th_parse_reply(rp);
}

static TH_UNUSED int th_udp(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	VERIFY(fd >= 0);
	return fd;
}

static TH_UNUSED void th_rpc_udp(int fd, uint16_t port, const struct xb *x,
    struct th_reply *rp)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons(port) };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	VERIFY((size_t)sendto(fd, x->b, x->n, 0, (struct sockaddr *)&sa,
	    sizeof(sa)) == x->n);
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	VERIFY(poll(&pf, 1, TH_TIMEOUT_MS) == 1);
	rp->len = recv(fd, rp->buf, sizeof(rp->buf), 0);
	VERIFY(rp->len > 0);
	th_parse_reply(rp);
}

/* --------------------------------------------------- handles, raw */

struct th_fh {
	uint8_t b[64];
	uint32_t len;
};

static TH_UNUSED void xb_fh(struct xb *x, const struct th_fh *fh)
{
	xb_opaque(x, fh->b, fh->len);
}

/* MNT path over TCP from fd; returns mountstat3, fills fh. */
static TH_UNUSED uint32_t th_mnt(int fd, const char *path, struct th_fh *fh)
{
	static struct xb x;
	static struct th_reply rp;
	xb_call(&x, 0x4d4e5400, TH_MNT_PROG, 3, 1, 0, 0);
	xb_str(&x, path);
	th_rpc_tcp(fd, &x, &rp);
	VERIFY_EQ(rp.stat, 0);
	uint32_t st = rd_u32(&rp.r);
	if (st == 0) {
		uint32_t n;
		const uint8_t *p = rd_opaque(&rp.r, &n);
		VERIFY(n <= 64 && p != NULL);
		memcpy(fh->b, p, n);
		fh->len = n;
	}
	return st;
}

/* LOOKUP over TCP: returns nfsstat3, fills out (if OK) and attributes. */
static TH_UNUSED uint32_t th_lookup(int fd, const struct th_fh *dir,
    const char *name, struct th_fh *out, struct th_fattr *a)
{
	static struct xb x;
	static struct th_reply rp;
	xb_call(&x, 0x4c4f4f4b, TH_NFS_PROG, 3, 3, 0, 0);
	xb_fh(&x, dir);
	xb_str(&x, name);
	th_rpc_tcp(fd, &x, &rp);
	VERIFY_EQ(rp.stat, 0);
	uint32_t st = rd_u32(&rp.r);
	if (st == 0) {
		uint32_t n;
		const uint8_t *p = rd_opaque(&rp.r, &n);
		VERIFY(n <= 64);
		if (out != NULL) {
			memcpy(out->b, p, n);
			out->len = n;
		}
		struct th_fattr tmp;
		rd_post_attr(&rp.r, a ? a : &tmp);
	}
	return st;
}

/* Simple status-only call: header already in x. */
static TH_UNUSED uint32_t th_status(int fd, const struct xb *x)
{
	static struct th_reply rp;
	th_rpc_tcp(fd, x, &rp);
	VERIFY_EQ(rp.stat, 0);
	return rd_u32(&rp.r);
}

#endif
