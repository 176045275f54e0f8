/*
 * nfsd/rpc.c: ONC RPC version 2 calls (RFC 5531) from record to reply.
 *
 * THEORY
 *   A worker takes one complete record (a TCP record reassembled from its
 *   fragments, or one UDP datagram) and runs it here to completion:
 *
 *     call header (xdr_callmsg)  -- undecodable: RPC_MISMATCH if rpcvers
 *                                   is not 2, AUTH_BADCRED if a credential
 *                                   is over 400 bytes, else dropped
 *     program / version           -- PROG_UNAVAIL / PROG_MISMATCH(lo, hi)
 *     credential                  -- AUTH_SYS (body <= 400 bytes, machine
 *                                   name <= 255, <= 16 gids, nothing
 *                                   trailing) or AUTH_NONE; a malformed
 *                                   one AUTH_BADCRED, other flavors
 *                                   AUTH_TOOWEAK
 *     procedure                   -- PROC_UNAVAIL
 *     arguments (table's xdr)     -- GARBAGE_ARGS
 *     duplicate request cache     -- NOT_IDEMPOTENT procedures only: a
 *                                   replay is answered from the cache, an
 *                                   in-progress duplicate is dropped
 *     handler                     -- fills the result; NFSD_SYSTEM_ERR
 *                                   gives SYSTEM_ERR, NFSD_DROP no reply
 *     reply (xdr_replymsg)        -- sized with xdr_sizeof, encoded once
 *                                   behind 4 bytes kept for the record mark;
 *                                   READ's data is not encoded into it but
 *                                   sent from the pieces wafl_read_vec
 *                                   gave (xdr_res_head, r->rdata)
 *
 *   Nothing about a request lives in a static: the header, the decoded
 *   arguments and the result are in the request's arena, and everything is
 *   released in one place at the end (xdr_free of the arguments, then
 *   nfsd_req_free).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/util.h"
#include "nfsd/nfsd_impl.h"

#define RPC_VERS	2u

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}
#define DRC_CSUM_BYTES	256u

bool_t nfsd_xdr_void(XDR *x, void *p)
{
	return TRUE;
}

/* ------------------------------------------------------------- arena */

struct nfsd_arena_chunk {
	struct nfsd_arena_chunk *next;
	size_t used, cap;
	max_align_t data[];
};

#define ARENA_CHUNK	(16u << 10)
/*
 * A request's first chunk is small enough for glibc's per-thread cache
 * (requests up to 1032 bytes), which holds what most calls decode: a
 * larger malloc goes to the shared bins and, whenever small chunks were
 * freed since, first consolidates them (malloc_consolidate), which was a
 * visible share of the metadata mix's CPU when every call took 16 KiB.
 */
#define ARENA_FIRST	(1024u - 2 * sizeof(max_align_t))
FL_STATIC_ASSERT(sizeof(struct nfsd_arena_chunk) + ARENA_FIRST <= 1032,
    "first arena chunk within glibc's tcache sizes");

void *nfsd_req_alloc(struct nfsd_req *r, size_t size)
{
	struct nfsd_arena_chunk *c = r->arena;
	size_t need = (size + sizeof(max_align_t) - 1) &
	    ~(sizeof(max_align_t) - 1);

	if (c == NULL || c->cap - c->used < need) {
		size_t cap = need > ARENA_CHUNK / 2 ? need :
		    c == NULL && need <= ARENA_FIRST ? ARENA_FIRST : ARENA_CHUNK;
		c = malloc(sizeof(*c) + cap);
		if (c == NULL)
			return NULL;
		c->used = 0;
		c->cap = cap;
		if (need > ARENA_CHUNK / 2 && r->arena != NULL) {
			/* A big one-off: keep filling the current chunk. */
			c->next = r->arena->next;
			r->arena->next = c;
		} else {
			c->next = r->arena;
			r->arena = c;
		}
	}
	void *p = (uint8_t *)c->data + c->used;
	c->used += need;
	memset(p, 0, size);
	return p;
}

void nfsd_req_free(struct nfsd_req *r)
{
	struct nfsd_arena_chunk *c = r->arena, *n;

	for (; c != NULL; c = n) {
		n = c->next;
		free(c);
	}
	if (r->conn != NULL)
		nfsd_conn_done(r->srv, r->conn);
	wafl_rdvec_free(r->rdata);
	free(r->call);
	free(r);
}

/* ------------------------------------------------------- credentials */

static bool auth_sys_parse(const uint8_t *body, uint32_t len,
    struct wafl_cred *c)
{
	XDR x;
	uint32_t stamp, nlen, ng;
	bool ok = false;

	if (len > NFSD_AUTH_MAX)
		return false;
	xdrmem_create(&x, (char *)(uintptr_t)body, len, XDR_DECODE);
	if (!xdr_u_int32_t(&x, &stamp) || !xdr_u_int32_t(&x, &nlen) ||
	    nlen > NFSD_MACHNAME_MAX)
		goto out;
	if (!xdr_setpos(&x, xdr_getpos(&x) + ((nlen + 3) & ~3u)))
		goto out;
	if (!xdr_u_int32_t(&x, &c->uid) || !xdr_u_int32_t(&x, &c->gid) ||
	    !xdr_u_int32_t(&x, &ng) || ng > NFSD_NGROUPS_MAX)
		goto out;
	for (uint32_t i = 0; i < ng; i++)
		if (!xdr_u_int32_t(&x, &c->groups[i]))
			goto out;
	c->ngroups = ng;
	ok = xdr_getpos(&x) == len;
out:
	xdr_destroy(&x);
	return ok;
}

/* ----------------------------------------------------------- decoding */

enum rpc_verdict {
	V_OK, V_DROP, V_RPC_MISMATCH, V_AUTH_BADCRED, V_AUTH_TOOWEAK,
	V_PROG_UNAVAIL, V_PROG_MISMATCH, V_PROC_UNAVAIL, V_GARBAGE,
};

static const struct nfsd_prog *const progs[] = {
	&nfsd_nfs3_prog, &nfsd_mount3_prog,
};

/* The first words of a call that xdr_callmsg refused: say why, if we can
 * answer at all (we need the xid and the call direction). */
static enum rpc_verdict diagnose_header(struct nfsd_req *r)
{
	const uint8_t *p = r->call;
	size_t n = r->call_len;

	if (n < 24)
		return V_DROP;
	uint32_t dir = get_be32(p + 4), vers = get_be32(p + 8);
	r->xid = get_be32(p);
	if (dir != CALL)
		return V_DROP;
	if (vers != RPC_VERS)
		return V_RPC_MISMATCH;
	if (n >= 32 && get_be32(p + 28) > NFSD_AUTH_MAX)
		return V_AUTH_BADCRED;
	return V_DROP;
}

/*
 * Decode header, credential and arguments.  On V_OK *pcp and *argsp are
 * set (args in the arena, to be xdr_free'd); on V_PROG_MISMATCH *lo and *hi.
 */
static enum rpc_verdict rpc_decode(struct nfsd_req *r,
    const struct nfsd_proc **pcp, void **argsp, uint32_t *lo, uint32_t *hi)
{
	XDR x;
	struct rpc_msg m;
	char credbuf[NFSD_AUTH_MAX], verfbuf[NFSD_AUTH_MAX];
	const struct nfsd_prog *pg = NULL;
	enum rpc_verdict v = V_OK;

	memset(&m, 0, sizeof(m));
	m.rm_call.cb_cred.oa_base = credbuf;
	m.rm_call.cb_verf.oa_base = verfbuf;
	xdrmem_create(&x, (char *)r->call, (u_int)r->call_len, XDR_DECODE);
	if (!xdr_callmsg(&x, &m)) {
		v = diagnose_header(r);
		goto out;
	}
	r->xid = m.rm_xid;
	r->prog = (uint32_t)m.rm_call.cb_prog;
	r->vers = (uint32_t)m.rm_call.cb_vers;
	r->proc = (uint32_t)m.rm_call.cb_proc;
	r->head_len = xdr_getpos(&x);

	*lo = UINT32_MAX;
	*hi = 0;
	bool prog_known = false;
	for (size_t i = 0; i < FL_ARRAY_SIZE(progs); i++) {
		if (progs[i]->prog != r->prog)
			continue;
		prog_known = true;
		*lo = FL_MIN(*lo, progs[i]->vers);
		*hi = FL_MAX(*hi, progs[i]->vers);
		if (progs[i]->vers == r->vers)
			pg = progs[i];
	}
	if (!prog_known) {
		v = V_PROG_UNAVAIL;
		goto out;
	}
	if (pg == NULL) {
		v = V_PROG_MISMATCH;
		goto out;
	}

	r->flavor = (uint32_t)m.rm_call.cb_cred.oa_flavor;
	if (r->flavor == AUTH_SYS) {
		if (!auth_sys_parse((const uint8_t *)credbuf,
		    m.rm_call.cb_cred.oa_length, &r->ucred)) {
			v = V_AUTH_BADCRED;
			goto out;
		}
	} else if (r->flavor == AUTH_NONE) {
		if (m.rm_call.cb_cred.oa_length != 0) {
			v = V_AUTH_BADCRED;
			goto out;
		}
	} else {
		v = V_AUTH_TOOWEAK;
		goto out;
	}

	if (r->proc >= pg->nprocs || pg->procs[r->proc].handler == NULL) {
		v = V_PROC_UNAVAIL;
		goto out;
	}
	const struct nfsd_proc *pc = &pg->procs[r->proc];
	void *args = nfsd_req_alloc(r, pc->args_size ? pc->args_size : 1);
	if (args == NULL) {
		v = V_DROP;
		goto out;
	}
	if (!pc->xdr_args(&x, args)) {
		xdr_free(pc->xdr_args, args);
		v = V_GARBAGE;
		goto out;
	}
	*pcp = pc;
	*argsp = args;
out:
	xdr_destroy(&x);
	return v;
}

/* ----------------------------------------------------------- replies */

/* Encode m into a fresh buffer with 4 bytes of room in front (record
 * mark); NULL on failure. */
static uint8_t *encode_reply(struct rpc_msg *m, size_t *body_len)
{
	XDR x;
	u_long size = xdr_sizeof((xdrproc_t)xdr_replymsg, m);
	uint8_t *buf;

	if (size == 0 || size > NFSD_MAX_RECORD)
		return NULL;
	buf = malloc(4 + size);
	if (buf == NULL)
		return NULL;
	xdrmem_create(&x, (char *)buf + 4, (u_int)size, XDR_ENCODE);
	if (!xdr_replymsg(&x, m)) {
		xdr_destroy(&x);
		free(buf);
		return NULL;
	}
	*body_len = xdr_getpos(&x);
	xdr_destroy(&x);
	return buf;
}

/*
 * A reply whose data follows it (r->rdata): the record mark counts the
 * encoded reply, the data and its padding, and the encoded reply must end
 * with the data's XDR length, or the client reads the data's bytes as
 * something else and loses the record's framing.
 */
static bool reply_ends_with_len(const uint8_t *body, size_t len,
    size_t data_len)
{
	const uint8_t *p;

	if (len < 4 || data_len > NFSD_MAX_RECORD)
		return false;
	p = body + len - 4;
	return ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3]) == data_len;
}

static void reply_init(struct rpc_msg *m, uint32_t xid)
{
	memset(m, 0, sizeof(*m));
	m->rm_xid = xid;
	m->rm_direction = REPLY;
	m->rm_reply.rp_stat = MSG_ACCEPTED;
	m->acpted_rply.ar_verf = _null_auth;
	m->acpted_rply.ar_stat = SUCCESS;
	m->acpted_rply.ar_results.where = NULL;
	m->acpted_rply.ar_results.proc = (xdrproc_t)nfsd_xdr_void;
}

/* Reply for a verdict other than V_OK / V_DROP. */
static void verdict_reply(struct rpc_msg *m, enum rpc_verdict v, uint32_t lo,
    uint32_t hi)
{
	switch (v) {
	case V_RPC_MISMATCH:
		m->rm_reply.rp_stat = MSG_DENIED;
		m->rjcted_rply.rj_stat = RPC_MISMATCH;
		m->rjcted_rply.rj_vers.low = RPC_VERS;
		m->rjcted_rply.rj_vers.high = RPC_VERS;
		break;
	case V_AUTH_BADCRED:
	case V_AUTH_TOOWEAK:
		m->rm_reply.rp_stat = MSG_DENIED;
		m->rjcted_rply.rj_stat = AUTH_ERROR;
		m->rjcted_rply.rj_why = v == V_AUTH_BADCRED ? AUTH_BADCRED :
		    AUTH_TOOWEAK;
		break;
	case V_PROG_UNAVAIL:
		m->acpted_rply.ar_stat = PROG_UNAVAIL;
		break;
	case V_PROG_MISMATCH:
		m->acpted_rply.ar_stat = PROG_MISMATCH;
		m->acpted_rply.ar_vers.low = lo;
		m->acpted_rply.ar_vers.high = hi;
		break;
	case V_PROC_UNAVAIL:
		m->acpted_rply.ar_stat = PROC_UNAVAIL;
		break;
	case V_GARBAGE:
		m->acpted_rply.ar_stat = GARBAGE_ARGS;
		break;
	default:
		m->acpted_rply.ar_stat = SYSTEM_ERR;
		break;
	}
}

static void drc_key_make(const struct nfsd_req *r, struct nfsd_drc_key *k)
{
	size_t n = r->call_len - r->head_len;

	memset(k, 0, sizeof(*k));
	k->xid = r->xid;
	k->prog = r->prog;
	k->vers = r->vers;
	k->proc = r->proc;
	memcpy(&k->peer, &r->peer, sizeof(k->peer));
	k->csum = fl_crc32c(0, r->call + r->head_len,
	    FL_MIN(n, DRC_CSUM_BYTES));
}

/*
 * Replies whose records one flush made durable go out together: the
 * thread that runs the callbacks gathers the TCP replies (cork) and, at
 * the last callback of the run (wafl_durable_fn's last), sends each
 * connection's share of them with one sendmsg (nfsd_send_replies).  In a
 * worker's batch (nfsd_rpc_batch_begin) the replies that wait for nothing
 * are gathered too, and sent at its end, before the flush the batch's
 * logged calls share is started (wafl_durable_batch_end).
 */
static __thread struct {
	size_t n;
	bool batch;		/* nfsd_rpc_batch_begin: immediate replies too */
	struct nfsd_req *r[NFSD_SEND_BATCH];
} cork;

static void cork_flush(void)
{
	size_t n = cork.n;

	cork.n = 0;
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && cork.r[j]->conn == cork.r[i]->conn;)
			j++;
		nfsd_send_replies(cork.r + i, j - i);
	}
	for (size_t i = 0; i < n; i++) {
		struct nfsd *s = cork.r[i]->srv;
		bool deferred = !cork.r[i]->dfr.immediate;

		nfsd_req_free(cork.r[i]);
		if (deferred)
			nfsd_transport_deferred(s, -1);
	}
}

static void cork_add(struct nfsd_req *r)
{
	if (cork.n == NFSD_SEND_BATCH)
		cork_flush();
	cork.r[cork.n++] = r;
}

/* wafl is about to wait: the replies held so far go out first. */
static void batch_release(void *arg)
{
	(void)arg;
	if (cork.n > 0)
		cork_flush();
}

void nfsd_rpc_batch_begin(void)
{
	cork.batch = true;
	wafl_durable_batch_begin(batch_release, NULL);
}

void nfsd_rpc_batch_end(void)
{
	cork.batch = false;
	/* The replies that need no flush go out before this thread may
	 * lead one. */
	if (cork.n > 0)
		cork_flush();
	wafl_durable_batch_end();
}

/*
 * A reply that waited for the NVLOG (wafl_when_durable), in the thread that
 * finished the flush.  If the record never became durable the volume has
 * failed: the reply, which claims success, is not sent, and the DRC entry
 * is dropped so that a retransmission runs again and gets the error.
 */
static void reply_durable(void *arg, int err, bool last)
{
	struct nfsd_req *r = arg;
	struct nfsd *s = r->srv;

	if (err == 0) {
		if (r->dfr.in_drc)
			nfsd_drc_finish(s->drc, &r->dfr.key, r->dfr.rec + 4,
			    r->dfr.len);
		atomic_fetch_add(&s->st.replies, 1);
		if (!r->udp) {
			cork_add(r);
			r = NULL;	/* cork_flush sends and frees it */
		} else {
			nfsd_send_reply(r, r->dfr.rec, r->dfr.len,
			    r->dfr.data);
		}
	} else {
		fl_err("nfsd", "xid %08x proc %u: not answered, its NVLOG "
		    "record did not become durable", r->xid, r->proc);
		if (r->dfr.in_drc)
			nfsd_drc_finish(s->drc, &r->dfr.key, NULL, 0);
		atomic_fetch_add(&s->st.dropped, 1);
		free(r->dfr.rec);
		wafl_rdvec_free(r->dfr.data);
	}
	if (r != NULL) {
		nfsd_req_free(r);
		nfsd_transport_deferred(s, -1);
	}
	if (last)
		cork_flush();
}

/* r keeps its encoded reply (and READ data) until it is sent. */
static void reply_hold(struct nfsd_req *r, uint8_t *rec, size_t len,
    struct wafl_rdvec *data)
{
	r->dfr.rec = rec;
	r->dfr.len = len;
	r->dfr.data = data;
}

void nfsd_rpc_process(struct nfsd_req *r)
{
	struct nfsd *s = r->srv;
	const struct nfsd_proc *pc = NULL;
	void *args = NULL, *res = NULL;
	uint32_t lo = 0, hi = 0;
	struct rpc_msg m;
	struct nfsd_drc_key key;
	bool in_drc = false;
	uint8_t *rec = NULL;
	struct wafl_rdvec *data = NULL;
	size_t len = 0, data_len = 0;
	wafl_vol_t *dvol = NULL;
	uint64_t dlsn = 0;

	atomic_fetch_add(&s->st.calls, 1);
	enum rpc_verdict v = rpc_decode(r, &pc, &args, &lo, &hi);
	if (v == V_DROP) {
		atomic_fetch_add(&s->st.dropped, 1);
		goto out;
	}
	reply_init(&m, r->xid);
	if (v != V_OK) {
		if (v == V_GARBAGE)
			atomic_fetch_add(&s->st.garbage, 1);
		if (v == V_AUTH_BADCRED || v == V_AUTH_TOOWEAK)
			atomic_fetch_add(&s->st.auth_errors, 1);
		fl_debug("nfsd", "xid %08x prog %u vers %u proc %u: verdict %d",
		    r->xid, r->prog, r->vers, r->proc, (int)v);
		verdict_reply(&m, v, lo, hi);
		rec = encode_reply(&m, &len);
		goto send;
	}

	if (pc->flags & NFSD_NOT_IDEMPOTENT) {
		drc_key_make(r, &key);
		switch (nfsd_drc_begin(s->drc, &key, &rec, &len)) {
		case DRC_REPLAY:
			atomic_fetch_add(&s->st.drc_hits, 1);
			goto send;
		case DRC_INPROGRESS:
			atomic_fetch_add(&s->st.drc_inprogress_drops, 1);
			atomic_fetch_add(&s->st.dropped, 1);
			goto out;
		case DRC_NEW:
			in_drc = true;
			break;
		}
	}

	res = nfsd_req_alloc(r, pc->res_size ? pc->res_size : 1);
	enum nfsd_disp d = NFSD_SYSTEM_ERR;
	if (res != NULL) {
		/* The reply waits for the NVLOG, this thread does not. */
		wafl_defer_begin();
		d = pc->handler(r, args, res);
		dvol = wafl_defer_end(&dlsn);
	}
	if (d == NFSD_DROP) {
		atomic_fetch_add(&s->st.dropped, 1);
		goto out;
	}
	if (d == NFSD_REPLY && r->rdata != NULL &&
	    pc->xdr_res_head != NULL && !in_drc) {
		/* The data goes out from r->rdata behind the reply. */
		m.acpted_rply.ar_results.where = res;
		m.acpted_rply.ar_results.proc = pc->xdr_res_head;
		data = r->rdata;
		data_len = data->len;
	} else if (d == NFSD_REPLY) {
		m.acpted_rply.ar_results.where = res;
		m.acpted_rply.ar_results.proc = pc->xdr_res;
	} else {
		m.acpted_rply.ar_stat = SYSTEM_ERR;
	}
	rec = encode_reply(&m, &len);
	if (rec != NULL && data != NULL &&
	    !reply_ends_with_len(rec + 4, len, data_len)) {
		ASSERT(!"reply head does not end with its data's length");
		fl_err("nfsd", "xid %08x proc %u: reply does not end with "
		    "the length of its %zu data bytes", r->xid, r->proc,
		    data_len);
		free(rec);
		rec = NULL;
	}
	if (rec != NULL && r->udp &&
	    len + ((data_len + 3) & ~(size_t)3) > NFSD_UDP_REPLY_MAX) {
		/* Every procedure bounds what it answers over UDP (READ and
		 * READDIR counts, MOUNT's lists): one datagram the transport
		 * cannot send would leave the client waiting for nothing. */
		ASSERT(!"UDP reply larger than a datagram");
		fl_err("nfsd", "xid %08x prog %u proc %u: reply of %zu bytes "
		    "does not fit a UDP datagram; answered SYSTEM_ERR",
		    r->xid, r->prog, r->proc, len + data_len);
		free(rec);
		rec = NULL;
	}
	if (rec == NULL) {
		reply_init(&m, r->xid);
		m.acpted_rply.ar_stat = SYSTEM_ERR;
		rec = encode_reply(&m, &len);
		data = NULL;
		data_len = 0;
	}
	if (data != NULL)
		r->rdata = NULL;	/* the transport owns it now */
	if (dvol != NULL && rec != NULL) {
		/* Durability is never claimed early: the reply (and the DRC
		 * entry, in progress until then) waits for the record. */
		reply_hold(r, rec, len, data);
		r->dfr.key = key;
		r->dfr.in_drc = in_drc;
		if (args != NULL)
			xdr_free(pc->xdr_args, args);
		nfsd_transport_deferred(s, 1);
		wafl_when_durable(dvol, dlsn, reply_durable, r);
		return;
	}
	if (in_drc) {
		/* A "try later" (JUKEBOX) is not the call's outcome: a
		 * retransmission must run it again, not get it back. */
		nfsd_drc_finish(s->drc, &key, rec == NULL || r->transient ?
		    NULL : rec + 4, len);
		in_drc = false;
	}
send:
	if (rec != NULL && cork.batch && !r->udp &&
	    data_len <= NFSD_CORK_DATA_MAX) {
		/* Sent with the batch's other replies (nfsd_rpc_batch_end). */
		atomic_fetch_add(&s->st.replies, 1);
		reply_hold(r, rec, len, data);
		r->dfr.immediate = true;
		if (args != NULL)
			xdr_free(pc->xdr_args, args);
		cork_add(r);
		return;
	}
	if (rec != NULL) {
		atomic_fetch_add(&s->st.replies, 1);
		nfsd_send_reply(r, rec, len, data);
		rec = NULL;
		data = NULL;
	}
out:
	if (in_drc)
		nfsd_drc_finish(s->drc, &key, NULL, 0);
	free(rec);
	wafl_rdvec_free(data);
	if (args != NULL)
		xdr_free(pc->xdr_args, args);
	nfsd_req_free(r);
}

int nfsd_rpc_decode_only(const uint8_t *call, size_t len)
{
	struct nfsd_req *r = calloc(1, sizeof(*r));
	const struct nfsd_proc *pc = NULL;
	void *args = NULL;
	uint32_t lo, hi;
	int ret;

	if (r == NULL)
		return -1;
	r->call = malloc(len ? len : 1);
	if (r->call == NULL) {
		free(r);
		return -1;
	}
	memcpy(r->call, call, len);
	r->call_len = len;
	enum rpc_verdict v = rpc_decode(r, &pc, &args, &lo, &hi);
	ret = v == V_DROP ? -1 : (int)v;
	if (args != NULL)
		xdr_free(pc->xdr_args, args);
	nfsd_req_free(r);
	return ret;
}
