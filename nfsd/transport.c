/*
 * nfsd/transport.c: sockets, record marking and the worker pool.
 *
 * THEORY
 *   One event thread runs an epoll loop over: the listening TCP sockets,
 *   the UDP sockets, every TCP connection and an eventfd used to stop.  It
 *   never blocks on a client: every socket is non-blocking, and each
 *   connection carries its own reassembly state (fragment header bytes,
 *   fragment bytes left, the record so far).  A complete record becomes a
 *   struct nfsd_req queued to the workers (cfg.threads of them), which run
 *   nfsd_rpc_process and send the reply themselves.  The event thread hands
 *   the records of one pass of its loop over with one lock and wakes one
 *   worker per take they make; a worker takes up to NFSD_TAKE_MAX records
 *   at once and runs them as a batch (worker_main), so a burst of small
 *   calls costs a few wake-ups, sends and log flushes instead of one of
 *   each per call.
 *
 *   Record marking (RFC 5531 section 11): a record is one or more
 *   fragments, each behind a 4-byte header (high bit: last fragment, low 31
 *   bits: length).  A record longer than NFSD_MAX_RECORD closes the
 *   connection.  The record buffer grows with the bytes that actually
 *   arrived, not with the length a header announces, so a client that
 *   promises a megabyte and stalls costs what it sent.
 *
 *   Replies: a worker writes the reply directly when nothing is queued on
 *   the connection; what the socket does not take is queued and the event
 *   thread finishes it on EPOLLOUT.  A client that does not read its
 *   replies therefore stalls only itself: past NFSD_CONN_INFLIGHT calls in
 *   progress or NFSD_CONN_OUTQ_MAX bytes queued, reading from that
 *   connection pauses until it drains.  The pause takes effect at the
 *   record that set it, not at the end of the read that brought it: the
 *   bytes after that record (at most one read, SCRATCH_BYTES) are kept in
 *   the connection as they are and taken apart first when the pause
 *   lifts, before anything more is read; a worker that lifts it wakes the
 *   event thread for them (wake_tag).  So a connection never has more
 *   than NFSD_CONN_INFLIGHT calls in progress, and what it queues stays
 *   within NFSD_CONN_OUTQ_MAX plus their replies, however many calls one
 *   read carries (256 KiB carry some 1,900 READs of 1 MiB each).  Replies
 *   of one connection may go out in any order (RPC matches them by xid).
 *   A reply is written with sendmsg from its pieces -- mark and encoded
 *   reply, a READ's data where wafl_read_vec left it (blocks lent by the
 *   block cache, mostly), its XDR padding -- and a queued reply keeps
 *   those pieces, so READ data is never copied into the reply.  One
 *   sendmsg takes up to SEND_IOV_MAX pieces; what does not fit is queued
 *   as what the socket did not take.
 *
 *   Timeouts (checked about once a second): a connection holding part of a
 *   record for longer than partial_timeout_ms is closed (a client sending
 *   half a record and stalling), and one without traffic or calls in
 *   progress for idle_timeout_ms too.  An idle connection costs its struct
 *   (no buffers), so thousands are cheap.
 *
 *   Lifetime: a connection is referenced by the event thread's list and by
 *   every request in flight; the socket is closed at the last release, so a
 *   worker can never write into a descriptor number reused by another
 *   connection.  An event of a pass of the event loop points at its
 *   connection without a reference, so a connection is closed only while
 *   its own event is handled or after the pass (the wake list, timeouts):
 *   closing it may free it.  UDP: one datagram is one call; the reply goes
 *   back with sendto from the worker.
 *
 *   Pause (nfsd_set_exports): workers stop taking requests and the caller
 *   waits until none is being processed; only workers look at the export
 *   table, so it can then be swapped.  The event thread keeps reading
 *   meanwhile; the queued calls run after resume.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/log.h"
#include "common/util.h"
#include "nfsd/nfsd_impl.h"

#define NFSD_CONN_INFLIGHT	64u
#define NFSD_CONN_OUTQ_MAX	(8u << 20)
#define NFSD_QUEUE_MAX_UDP	4096u
#define SCRATCH_BYTES		(256u << 10)
#define READS_PER_EVENT		4
#define ACCEPTS_PER_EVENT	64
#define DGRAMS_PER_EVENT	64
#define EP_EVENTS		256
#define EV_BATCH_MAX		32	/* calls handed to the workers at once */
#define NFSD_TAKE_MAX		8	/* calls a worker takes at once */

enum ep_kind { EP_TCP_LISTEN, EP_UDP, EP_CONN, EP_STOP, EP_WAKE };

struct ep_tag {
	enum ep_kind kind;
	int fd;
};

/*
 * A reply on its way out: the record mark and encoded reply, then (READ)
 * the data and its XDR padding, sent together by sendmsg from where they
 * lie (no copy into one buffer).  off counts the bytes already sent of
 * outbuf_len(o).
 */
struct outbuf {
	struct outbuf *next;
	uint8_t *buf;		/* owned: mark + encoded reply */
	size_t buf_len;
	struct wafl_rdvec *data; /* owned or NULL: the reply's trailing data */
	size_t pad;		/* 0..3 zero bytes after data */
	size_t off;
};

static size_t outbuf_len(const struct outbuf *o)
{
	return o->buf_len + (o->data != NULL ? o->data->len : 0) + o->pad;
}

static const uint8_t xdr_zeros[4];

/* Most iovecs one sendmsg takes (Linux's UIO_MAXIOV). */
#define SEND_IOV_MAX	1024

/* Add one piece to iov, skipping what *skip says was sent. */
static void iov_piece(struct iovec *iov, int *n, size_t *skip,
    const void *p, size_t len)
{
	if (*skip >= len) {
		*skip -= len;
		return;
	}
	iov[*n].iov_base = (uint8_t *)(uintptr_t)p + *skip;
	iov[*n].iov_len = len - *skip;
	*skip = 0;
	(*n)++;
}

/*
 * The part of o not sent yet as iovecs, at most max of them (at least 1):
 * the encoded reply, the data's pieces, the padding.  Returns their
 * count; *all says whether they reach o's end (else they are a prefix).
 */
static int outbuf_iov(const struct outbuf *o, struct iovec *iov, int max,
    bool *all)
{
	size_t skip = o->off;
	int n = 0;

	*all = false;
	iov_piece(iov, &n, &skip, o->buf, o->buf_len);
	if (o->data != NULL) {
		for (uint32_t i = 0; i < o->data->niov; i++) {
			if (n == max)
				return n;
			iov_piece(iov, &n, &skip, o->data->iov[i].iov_base,
			    o->data->iov[i].iov_len);
		}
	}
	if (o->pad > 0) {
		if (n == max)
			return n;
		iov_piece(iov, &n, &skip, xdr_zeros, o->pad);
	}
	*all = true;
	return n;
}

/* Send what the socket takes now; -1 on a socket error (other than
 * EAGAIN), else 0 with o->off advanced. */
static int outbuf_send(int fd, struct outbuf *o)
{
	while (o->off < outbuf_len(o)) {
		struct iovec iov[64];
		struct msghdr mh = { .msg_iov = iov };
		bool all;
		mh.msg_iovlen = (size_t)outbuf_iov(o, iov, 64, &all);
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
		}
		o->off += (size_t)n;
	}
	return 0;
}

static void outbuf_free(struct outbuf *o)
{
	free(o->buf);
	wafl_rdvec_free(o->data);
	free(o);
}

struct nfsd_conn {
	struct ep_tag tag;		/* first: epoll data points here */
	struct nfsd *srv;
	atomic_int refs;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	struct nfsd_conn *prev, *next;	/* event thread's list */

	/* Reassembly (event thread only). */
	uint8_t hdr[4];
	uint32_t hdr_have;
	uint32_t frag_left;
	bool frag_last;
	uint8_t *rec;
	size_t rec_len, rec_cap;
	uint64_t last_ns, partial_ns;	/* partial_ns: 0 = between records */
	/* Bytes read after the record that paused the connection, not taken
	 * apart yet (owned, NULL if none): fed before the next read. */
	uint8_t *in;
	size_t in_len, in_off;
	bool ack_owed;			/* a call read may wait: ack_now */

	/* Writing and flow control (wlock).  inflight and paused are also
	 * read without it: the event thread counts a call without a lock
	 * while the count is low and nothing is paused (dispatch_record,
	 * nfsd_conn_done); paused changes only under wlock. */
	pthread_mutex_t wlock;
	struct outbuf *oq_head, *oq_tail;
	size_t oq_bytes;
	_Atomic uint32_t inflight;
	_Atomic bool paused;
	bool want_out, dead;
	bool held;			/* in != NULL (set by the event thread) */

	/* On the transport's wake list (wake_lock). */
	struct nfsd_conn *wake_next;
	bool waking;
};

struct nfsd_transport {
	struct nfsd *srv;
	int epfd;
	struct ep_tag stop_tag;
	/* Connections whose pause a worker lifted while they held input:
	 * the event thread feeds it (eventfd wake_tag; a reference each). */
	struct ep_tag wake_tag;
	pthread_mutex_t wake_lock;
	struct nfsd_conn *wake_head;
	struct ep_tag listen[4];	/* nfs tcp, nfs udp, mnt tcp, mnt udp */
	int nlisten;
	pthread_t ev_thread;
	bool ev_started;
	pthread_t *workers;
	uint32_t nworkers;

	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	struct nfsd_req *qhead, *qtail;
	size_t qlen;
	bool stopping;
	/* nfsd_transport_pause: workers take no request while paused;
	 * running counts those in nfsd_rpc_process (qlock). */
	bool paused;
	uint32_t running;
	/* Replies waiting for the NVLOG: counted without qlock (a logged
	 * call must not take the queue's lock twice more), except the
	 * decrement to zero, which wakes nfsd_transport_stop. */
	_Atomic uint32_t deferred;
	pthread_cond_t idle;
	uint32_t waiting;		/* workers in qcond's wait (qlock) */

	/* Requests the event thread completed in this pass of its loop,
	 * handed to the workers together (hand_off). */
	struct nfsd_req *bhead, *btail;
	size_t blen;
	uint32_t btakes;		/* worker takes they make */
	uint32_t brun;			/* calls since the last one alone */

	struct nfsd_conn *conns;	/* event thread only */
	uint8_t *scratch;
};

/* -------------------------------------------------------- connections */

static void conn_release(struct nfsd_conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	close(c->tag.fd);
	for (struct outbuf *o = c->oq_head, *n; o != NULL; o = n) {
		n = o->next;
		outbuf_free(o);
	}
	free(c->rec);
	free(c->in);
	pthread_mutex_destroy(&c->wlock);
	atomic_fetch_sub(&c->srv->st.conns_open, 1);
	free(c);
}

/* Event mask from the flow-control state; called with wlock held. */
static void conn_rearm(struct nfsd_transport *t, struct nfsd_conn *c)
{
	struct epoll_event ev = { .data.ptr = &c->tag };

	if (c->dead)
		return;
	ev.events = (c->paused ? 0 : EPOLLIN) | (c->want_out ? EPOLLOUT : 0);
	epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->tag.fd, &ev);
}

/* Event thread: take the connection out of service. */
static void conn_close(struct nfsd_transport *t, struct nfsd_conn *c)
{
	pthread_mutex_lock(&c->wlock);
	c->dead = true;
	epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->tag.fd, NULL);
	shutdown(c->tag.fd, SHUT_RDWR);
	pthread_mutex_unlock(&c->wlock);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		t->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	conn_release(c);
}

/* Write what is queued; wlock held.  Returns -1 on a socket error. */
static int conn_flush(struct nfsd_conn *c)
{
	while (c->oq_head != NULL) {
		struct outbuf *o = c->oq_head;
		size_t before = o->off;
		int rc = outbuf_send(c->tag.fd, o);
		c->oq_bytes -= o->off - before;
		if (rc != 0)
			return -1;
		if (o->off < outbuf_len(o))
			return 0;
		c->oq_head = o->next;
		if (c->oq_head == NULL)
			c->oq_tail = NULL;
		outbuf_free(o);
	}
	return 0;
}

static bool conn_should_pause(const struct nfsd_conn *c)
{
	return atomic_load(&c->inflight) >= NFSD_CONN_INFLIGHT ||
	    c->oq_bytes >= NFSD_CONN_OUTQ_MAX;
}

/* Pause reading c if it has too much in progress or queued; wlock held. */
static void conn_check_pause(struct nfsd_transport *t, struct nfsd_conn *c)
{
	if (!c->paused && conn_should_pause(c)) {
		c->paused = true;
		conn_rearm(t, c);
	}
}

/* ------------------------------------------------------------- queue */

static uint32_t be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

uint32_t nfsd_read_count(const uint8_t *p, size_t len)
{
	size_t at = 24;

	for (int i = 0; i < 2; i++) {	/* credential, verifier */
		if (at + 8 > len || be32_at(p + at + 4) > 400)
			return 0;
		at += 8 + ((be32_at(p + at + 4) + 3) & ~3u);
	}
	if (at + 4 > len || be32_at(p + at) > 64)	/* NFS3_FHSIZE */
		return 0;
	at += 4 + ((be32_at(p + at) + 3) & ~3u) + 8;	/* handle, offset */
	return at + 4 <= len ? be32_at(p + at) : 0;
}

/* The NFS procedure a call names, read from the call as it came (xid,
 * type, rpcvers, prog, vers, proc); UINT32_MAX for another program or a
 * call too short to say. */
static uint32_t req_nfs_proc(const struct nfsd_req *r)
{
	if (r->call_len < 24 || be32_at(r->call + 12) != NFS_PROG)
		return UINT32_MAX;
	return be32_at(r->call + 20);
}

/*
 * A call that may hold its thread for long is taken alone, so that it
 * holds up no other call's reply: a WRITE (the write throttle, a
 * FILE_SYNC flush), a COMMIT (a CP), and a READ of more than
 * NFSD_CORK_DATA_MAX (its reply is sent on its own anyway, and a batch of
 * 1 MiB READs run one after the other by one worker would make the last
 * wait for all of them while the other workers sit idle).  Read from the
 * call as it came (xid, type, rpcvers, prog, vers, proc, READ's count),
 * which the worker decodes and checks again.
 */
static bool req_alone(const struct nfsd_req *r)
{
	uint32_t proc = req_nfs_proc(r);

	if (proc == 7 || proc == 21)
		return true;
	return proc == 6 &&
	    nfsd_read_count(r->call, r->call_len) > NFSD_CORK_DATA_MAX;
}

/*
 * A call whose reply goes out as soon as it has run: NULL and the NFS
 * procedures that change nothing (their replies wait for no NVLOG flush,
 * CP or throttle).  Read from the call as it came, like req_alone.
 */
static bool req_answered_at_once(const struct nfsd_req *r)
{
	switch (req_nfs_proc(r)) {
	case 0:		/* NULL */
	case 1:		/* GETATTR */
	case 3:		/* LOOKUP */
	case 4:		/* ACCESS */
	case 5:		/* READLINK */
	case 6:		/* READ */
	case 16:	/* READDIR */
	case 17:	/* READDIRPLUS */
	case 18:	/* FSSTAT */
	case 19:	/* FSINFO */
	case 20:	/* PATHCONF */
		return true;
	default:
		return false;
	}
}

/* Event thread: queue the requests of this pass with one lock, and wake as
 * many workers as they make takes (worker_main), no more. */
static void hand_off(struct nfsd_transport *t)
{
	uint32_t wake;

	if (t->bhead == NULL)
		return;
	pthread_mutex_lock(&t->qlock);
	if (t->qtail != NULL)
		t->qtail->next = t->bhead;
	else
		t->qhead = t->bhead;
	t->qtail = t->btail;
	t->qlen += t->blen;
	wake = FL_MIN(t->btakes, t->waiting);
	pthread_mutex_unlock(&t->qlock);
	/* After the unlock: a worker woken does not wake into a held lock
	 * (the event thread would hold it up). */
	for (uint32_t i = 0; i < wake; i++)
		pthread_cond_signal(&t->qcond);
	t->bhead = t->btail = NULL;
	t->blen = 0;
	t->btakes = t->brun = 0;
}

static void enqueue(struct nfsd_transport *t, struct nfsd_req *r)
{
	r->next = NULL;
	if (t->btail != NULL)
		t->btail->next = r;
	else
		t->bhead = r;
	t->btail = r;
	r->alone = req_alone(r);
	if (r->alone) {
		t->btakes++;
		t->brun = 0;
	} else if (t->brun++ % NFSD_TAKE_MAX == 0) {
		t->btakes++;
	}
	if (++t->blen >= EV_BATCH_MAX)
		hand_off(t);
}

/* Back to the queue's end, to be taken alone (worker thread). */
static void requeue_alone(struct nfsd_transport *t, struct nfsd_req *r)
{
	bool wake;

	r->alone = true;
	r->next = NULL;
	pthread_mutex_lock(&t->qlock);
	if (t->qtail != NULL)
		t->qtail->next = r;
	else
		t->qhead = r;
	t->qtail = r;
	t->qlen++;
	wake = t->waiting > 0;
	pthread_mutex_unlock(&t->qlock);
	if (wake)
		pthread_cond_signal(&t->qcond);
}

/*
 * A worker takes up to NFSD_TAKE_MAX calls at once (a call that may block
 * for long alone) and runs them as one batch: their replies that need no
 * NVLOG flush go out together at its end, and those that do share one
 * flush, started at its end (nfsd_rpc_batch_begin / _end).
 */
static void *worker_main(void *arg)
{
	struct nfsd_transport *t = arg;

	(void)pthread_setname_np(pthread_self(), "nfsd-worker");
	pthread_mutex_lock(&t->qlock);
	for (;;) {
		while ((t->qhead == NULL || t->paused) && !t->stopping) {
			t->waiting++;
			pthread_cond_wait(&t->qcond, &t->qlock);
			t->waiting--;
		}
		if (t->stopping)
			break;
		struct nfsd_req *r = t->qhead, *last = r;
		size_t n = 1;
		if (!r->alone)
			while (n < NFSD_TAKE_MAX && last->next != NULL &&
			    !last->next->alone) {
				last = last->next;
				n++;
			}
		t->qhead = last->next;
		if (t->qhead == NULL)
			t->qtail = NULL;
		last->next = NULL;
		t->qlen -= n;
		t->running++;
		pthread_mutex_unlock(&t->qlock);
		nfsd_rpc_batch_begin();
		while (r != NULL) {
			struct nfsd_req *next = r->next;
			/* A call whose rules may wait for its client's name
			 * (a first contact behind a slow DNS) must not hold
			 * up the rest of the batch: it goes back to the
			 * queue, to be taken alone. */
			if (n > 1 && nfsd_req_may_wait_for_name(r))
				requeue_alone(t, r);
			else
				nfsd_rpc_process(r);
			r = next;
		}
		nfsd_rpc_batch_end();
		pthread_mutex_lock(&t->qlock);
		if (--t->running == 0 && t->paused)
			pthread_cond_broadcast(&t->idle);
	}
	pthread_mutex_unlock(&t->qlock);
	return NULL;
}

void nfsd_transport_pause(struct nfsd *s)
{
	struct nfsd_transport *t = s->tp;

	if (t == NULL)
		return;
	pthread_mutex_lock(&t->qlock);
	t->paused = true;
	while (t->running > 0)
		pthread_cond_wait(&t->idle, &t->qlock);
	pthread_mutex_unlock(&t->qlock);
}

void nfsd_transport_deferred(struct nfsd *s, int delta)
{
	struct nfsd_transport *t = s->tp;

	if (delta > 0) {
		atomic_fetch_add(&t->deferred, 1);
		return;
	}
	/* Not the last: no lock.  The last decrements under qlock, so
	 * nfsd_transport_stop cannot see zero and free the transport before
	 * this thread is done with it. */
	uint32_t n = atomic_load(&t->deferred);
	while (n > 1)
		if (atomic_compare_exchange_weak(&t->deferred, &n, n - 1))
			return;
	pthread_mutex_lock(&t->qlock);
	if (atomic_fetch_sub(&t->deferred, 1) == 1)
		pthread_cond_broadcast(&t->idle);
	pthread_mutex_unlock(&t->qlock);
}

void nfsd_transport_resume(struct nfsd *s)
{
	struct nfsd_transport *t = s->tp;

	if (t == NULL)
		return;
	pthread_mutex_lock(&t->qlock);
	t->paused = false;
	pthread_cond_broadcast(&t->qcond);
	pthread_mutex_unlock(&t->qlock);
}

/* Requests never run (stop): drop them (nfsd_req_free lets go of the
 * connection). */
static void drop_request(struct nfsd_req *r)
{
	nfsd_req_free(r);
}

/* ------------------------------------------------------------- replies */

/* The record mark in front of a reply of rlen bytes: one last fragment. */
static void put_mark(uint8_t *rec, size_t rlen)
{
	ASSERT(rlen <= 0x7fffffffu);	/* the mark's 31 bits of length */
	uint32_t mark = 0x80000000u | (uint32_t)rlen;

	rec[0] = (uint8_t)(mark >> 24);
	rec[1] = (uint8_t)(mark >> 16);
	rec[2] = (uint8_t)(mark >> 8);
	rec[3] = (uint8_t)mark;
}

/* Queue o (a copy) behind what c has queued; wlock held.  On ENOMEM the
 * reply is dropped (the client retransmits). */
static void conn_queue(struct nfsd_transport *t, struct nfsd_conn *c,
    struct outbuf *ob)
{
	struct outbuf *o = malloc(sizeof(*o));

	if (o == NULL)
		return;
	*o = *ob;
	o->next = NULL;
	if (c->oq_tail != NULL)
		c->oq_tail->next = o;
	else
		c->oq_head = o;
	c->oq_tail = o;
	c->oq_bytes += outbuf_len(o) - o->off;
	ob->buf = NULL;		/* the queue owns them */
	ob->data = NULL;
	if (!c->want_out) {
		c->want_out = true;
		conn_rearm(t, c);
	}
	conn_check_pause(t, c);
}

/* A reply as an outbuf: rec has the mark's 4 bytes in front of body_len
 * encoded bytes; data (or NULL) and its XDR padding follow. */
static struct outbuf outbuf_make(uint8_t *rec, size_t body_len,
    struct wafl_rdvec *data)
{
	size_t data_len = data != NULL ? data->len : 0;

	return (struct outbuf){ .buf = rec, .buf_len = body_len + 4,
	    .data = data, .pad = (4 - data_len % 4) % 4 };
}

/*
 * Send n marked replies of c with one sendmsg when nothing is queued on c,
 * and queue what the socket does not take; on a socket error nothing is
 * queued (the event thread closes).  The buffers are consumed.
 */
static void conn_send(struct nfsd_transport *t, struct nfsd_conn *c,
    struct outbuf *ob, size_t n)
{
	struct iovec iov[SEND_IOV_MAX];
	struct msghdr mh = { .msg_iov = iov };
	size_t sent = 0;

	VERIFY(n > 0 && n <= NFSD_SEND_BATCH);
	/* As many whole replies as the iovecs hold, then a prefix of the
	 * next: whatever the socket does not take is queued below. */
	for (size_t i = 0; i < n && mh.msg_iovlen < SEND_IOV_MAX; i++) {
		bool all;
		int k = outbuf_iov(&ob[i], iov + mh.msg_iovlen,
		    SEND_IOV_MAX - (int)mh.msg_iovlen, &all);
		mh.msg_iovlen += (size_t)k;
		if (!all)
			break;
	}
	pthread_mutex_lock(&c->wlock);
	if (c->dead)
		goto unlock;
	if (c->oq_head == NULL) {
		ssize_t k;
		do
			k = sendmsg(c->tag.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (k < 0 && errno == EINTR);
		if (k >= 0)
			sent = (size_t)k;
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			sent = SIZE_MAX;	/* closing: all dropped */
	}
	for (size_t i = 0; i < n; i++) {
		size_t len = outbuf_len(&ob[i]);
		if (sent >= len) {
			sent -= len;
			continue;
		}
		ob[i].off = sent;
		sent = 0;
		conn_queue(t, c, &ob[i]);
	}
unlock:
	pthread_mutex_unlock(&c->wlock);
	for (size_t i = 0; i < n; i++) {
		free(ob[i].buf);
		wafl_rdvec_free(ob[i].data);
	}
}

void nfsd_send_reply(struct nfsd_req *r, uint8_t *rec, size_t body_len,
    struct wafl_rdvec *data)
{
	struct outbuf ob = outbuf_make(rec, body_len, data);
	size_t rlen = outbuf_len(&ob) - 4;	/* the record, without mark */

	if (r->udp) {
		/* One datagram, without the record mark: whole or not at
		 * all. */
		struct iovec iov[64];
		struct msghdr mh = { .msg_name = &r->peer,
		    .msg_namelen = r->peerlen, .msg_iov = iov };
		bool all;
		ob.off = 4;
		mh.msg_iovlen = (size_t)outbuf_iov(&ob, iov, 64, &all);
		if (all && rlen <= NFSD_UDP_REPLY_MAX)
			(void)sendmsg(r->udp_fd, &mh, MSG_DONTWAIT);
		else	/* rpc.c answers SYSTEM_ERR for a longer one */
			fl_err("nfsd", "xid %08x: reply of %zu bytes not "
			    "sent: it does not fit one UDP datagram", r->xid,
			    rlen);
		free(ob.buf);
		wafl_rdvec_free(ob.data);
		return;
	}
	put_mark(rec, rlen);
	conn_send(r->srv->tp, r->conn, &ob, 1);
}

void nfsd_send_replies(struct nfsd_req *const *rs, size_t n)
{
	struct outbuf ob[NFSD_SEND_BATCH];

	VERIFY(n > 0 && n <= NFSD_SEND_BATCH);
	for (size_t i = 0; i < n; i++) {
		struct nfsd_req *r = rs[i];

		ASSERT(!r->udp && r->conn == rs[0]->conn);
		ob[i] = outbuf_make(r->dfr.rec, r->dfr.len, r->dfr.data);
		r->dfr.rec = NULL;
		r->dfr.data = NULL;
		put_mark(ob[i].buf, outbuf_len(&ob[i]) - 4);
	}
	if (n > 1) {
		atomic_fetch_add(&rs[0]->srv->st.reply_batches, 1);
		atomic_fetch_add(&rs[0]->srv->st.reply_batched, n);
	}
	conn_send(rs[0]->srv->tp, rs[0]->conn, ob, n);
}

/* Have the event thread feed the input c holds (its pause was lifted off
 * the event thread); takes a reference, which the event thread drops. */
static void conn_wake(struct nfsd_transport *t, struct nfsd_conn *c)
{
	uint64_t one = 1;
	bool first;

	pthread_mutex_lock(&t->wake_lock);
	first = !c->waking;
	if (first) {
		atomic_fetch_add(&c->refs, 1);
		c->waking = true;
		c->wake_next = t->wake_head;
		t->wake_head = c;
	}
	pthread_mutex_unlock(&t->wake_lock);
	if (first)
		(void)!write(t->wake_tag.fd, &one, sizeof(one));
}

/*
 * A call of c is done.  The lock is taken only when reading may have to
 * resume: c is paused, or this call brings the count back under the bound
 * (a pause set for that count, even one this thread did not see yet, is
 * then lifted here: the event thread read the count before this
 * decrement, under wlock).  Input held back by the pause is fed by the
 * event thread, woken here: held and paused change under wlock, so either
 * this thread sees held or the event thread, setting it, sees the pause
 * lifted.
 */
void nfsd_conn_done(struct nfsd *s, struct nfsd_conn *c)
{
	uint32_t was = atomic_fetch_sub(&c->inflight, 1);

	if (was >= NFSD_CONN_INFLIGHT || atomic_load(&c->paused)) {
		bool wake = false;

		pthread_mutex_lock(&c->wlock);
		if (c->paused && !conn_should_pause(c)) {
			c->paused = false;
			conn_rearm(s->tp, c);
			wake = c->held && !c->dead;
		}
		pthread_mutex_unlock(&c->wlock);
		if (wake)
			conn_wake(s->tp, c);
	}
	conn_release(c);
}

/* --------------------------------------------------------- reading TCP */

static struct nfsd_req *req_new(struct nfsd *s)
{
	struct nfsd_req *r = calloc(1, sizeof(*r));

	if (r != NULL)
		r->srv = s;
	return r;
}

static void dispatch_record(struct nfsd_transport *t, struct nfsd_conn *c)
{
	struct nfsd_req *r = req_new(t->srv);

	if (r == NULL) {
		free(c->rec);
		goto out;
	}
	r->call = c->rec;
	r->call_len = c->rec_len;
	r->conn = c;
	memcpy(&r->peer, &c->peer, sizeof(r->peer));
	r->peerlen = c->peerlen;
	atomic_fetch_add(&c->refs, 1);
	/* No lock while the count is under the bound: a worker sending a
	 * reply holds wlock across its sendmsg. */
	if (atomic_fetch_add(&c->inflight, 1) + 1 >= NFSD_CONN_INFLIGHT) {
		pthread_mutex_lock(&c->wlock);
		conn_check_pause(t, c);
		pthread_mutex_unlock(&c->wlock);
	}
	if (!req_answered_at_once(r))
		c->ack_owed = true;
	enqueue(t, r);
out:
	c->rec = NULL;
	c->rec_len = c->rec_cap = 0;
	c->partial_ns = 0;
}

/* Feed bytes to the reassembly, up to the end of a record that pauses c;
 * *used: how many were taken.  -1: close the connection. */
static int conn_feed(struct nfsd_transport *t, struct nfsd_conn *c,
    const uint8_t *p, size_t n, uint64_t now, size_t *used)
{
	const uint8_t *start = p;

	*used = 0;
	while (n > 0) {
		if (c->partial_ns == 0)
			c->partial_ns = now;
		if (c->hdr_have < 4) {
			size_t k = FL_MIN(n, 4 - c->hdr_have);
			memcpy(c->hdr + c->hdr_have, p, k);
			c->hdr_have += (uint32_t)k;
			p += k;
			n -= k;
			if (c->hdr_have < 4)
				break;
			uint32_t h = (uint32_t)c->hdr[0] << 24 |
			    (uint32_t)c->hdr[1] << 16 |
			    (uint32_t)c->hdr[2] << 8 | c->hdr[3];
			c->frag_last = (h & 0x80000000u) != 0;
			c->frag_left = h & 0x7fffffffu;
			if (c->rec_len + c->frag_left > NFSD_MAX_RECORD) {
				atomic_fetch_add(&t->srv->st.records_oversized,
				    1);
				return -1;
			}
		}
		size_t k = FL_MIN(n, c->frag_left);
		if (k > 0) {
			if (c->rec_len + k > c->rec_cap) {
				size_t cap = c->rec_cap ? c->rec_cap : 512;
				while (cap < c->rec_len + k)
					cap *= 2;
				cap = FL_MIN(cap, (size_t)NFSD_MAX_RECORD);
				uint8_t *nb = realloc(c->rec, cap);
				if (nb == NULL)
					return -1;
				c->rec = nb;
				c->rec_cap = cap;
			}
			memcpy(c->rec + c->rec_len, p, k);
			c->rec_len += k;
			c->frag_left -= (uint32_t)k;
			p += k;
			n -= k;
		}
		if (c->frag_left == 0) {
			c->hdr_have = 0;
			if (c->frag_last) {
				if (c->rec == NULL) {	/* empty record */
					c->partial_ns = 0;
				} else {
					dispatch_record(t, c);
					if (atomic_load(&c->paused))
						break;	/* the rest waits */
				}
			}
		}
	}
	*used = (size_t)(p - start);
	return 0;
}

/*
 * Feed the input c holds while it is not paused (event thread); false if
 * c was closed.  What a new pause leaves stays held.
 */
static bool conn_take_held(struct nfsd_transport *t, struct nfsd_conn *c,
    uint64_t now)
{
	while (c->in != NULL && !atomic_load(&c->paused)) {
		size_t used;

		if (conn_feed(t, c, c->in + c->in_off, c->in_len - c->in_off,
		    now, &used) != 0) {
			fl_warn("nfsd", "closing connection: bad or oversized "
			    "record");
			conn_close(t, c);
			return false;
		}
		c->in_off += used;
		if (c->in_off == c->in_len) {
			pthread_mutex_lock(&c->wlock);
			c->held = false;
			pthread_mutex_unlock(&c->wlock);
			free(c->in);
			c->in = NULL;
			c->in_len = c->in_off = 0;
		}
	}
	return true;
}

/* Keep p[0..n), read after the record that paused c, and feed it if the
 * pause was lifted meanwhile (event thread); false if c was closed. */
static bool conn_hold(struct nfsd_transport *t, struct nfsd_conn *c,
    const uint8_t *p, size_t n, uint64_t now)
{
	ASSERT(c->in == NULL);
	c->in = malloc(n);
	if (c->in == NULL) {
		conn_close(t, c);
		return false;
	}
	memcpy(c->in, p, n);
	c->in_len = n;
	c->in_off = 0;
	pthread_mutex_lock(&c->wlock);
	c->held = true;
	pthread_mutex_unlock(&c->wlock);
	return conn_take_held(t, c, now);
}

/*
 * Acknowledge what was read at once, when its reply may be slow to carry
 * the ACK.  A client that leaves Nagle's algorithm on (libnfs does) holds
 * each small call it writes while an earlier one is unacknowledged.  Linux
 * delays the ACK on a connection whose data goes both ways, counting on
 * the reply to carry it; a reply that waits for the NVLOG's flush leaves
 * hundreds of microseconds later, and half a record gets none until the
 * delayed-ACK timer (40 ms or more).  The client's next calls waited that
 * long before they were even sent.  TCP_QUICKACK sends the pending ACK
 * now; the kernel goes back to delaying after the next reply, so it is set
 * again after each read that needs it: one that ended inside a record, or
 * brought a call that is not answered at once (req_answered_at_once).
 * A read that brings only calls answered at once is left to their
 * replies, which follow within microseconds, and costs no extra segment
 * (docs/nfsd.md, "Acknowledged at once").
 */
static void ack_now(struct nfsd_transport *t, struct nfsd_conn *c)
{
	int one = 1;

	c->ack_owed = false;
	if (setsockopt(c->tag.fd, IPPROTO_TCP, TCP_QUICKACK, &one,
	    sizeof(one)) == 0)
		atomic_fetch_add(&t->srv->st.quick_acks, 1);
}

static void conn_readable(struct nfsd_transport *t, struct nfsd_conn *c,
    uint32_t events)
{
	uint64_t now = fl_now_mono_ns();

	if (c->in != NULL) {
		/* Held input goes first; none of it can go to a peer gone. */
		if (events & (EPOLLHUP | EPOLLERR)) {
			conn_close(t, c);
			return;
		}
		if (!conn_take_held(t, c, now) || c->in != NULL)
			return;
	}
	/* Paused, by the last record held or by a worker since the event
	 * came: nothing more is read until the pause lifts (reading is off
	 * meanwhile, and rearmed then).  A hang-up or error is read still. */
	if (atomic_load(&c->paused) && !(events & (EPOLLHUP | EPOLLERR)))
		return;
	for (int i = 0; i < READS_PER_EVENT; i++) {
		size_t used;
		ssize_t n = recv(c->tag.fd, t->scratch, SCRATCH_BYTES,
		    MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_close(t, c);
			return;
		}
		c->last_ns = now;
		if (conn_feed(t, c, t->scratch, (size_t)n, now, &used) != 0) {
			fl_warn("nfsd", "closing connection: bad or oversized "
			    "record");
			conn_close(t, c);
			return;
		}
		if (c->ack_owed || c->partial_ns != 0)
			ack_now(t, c);
		if (used < (size_t)n) {
			if (!conn_hold(t, c, t->scratch + used, (size_t)n - used,
			    now) || c->in != NULL)
				return;
		}
		if (atomic_load(&c->paused) || (size_t)n < SCRATCH_BYTES)
			return;
	}
}

static void conn_writable(struct nfsd_transport *t, struct nfsd_conn *c)
{
	bool bad;

	pthread_mutex_lock(&c->wlock);
	bad = conn_flush(c) != 0;
	if (!bad && c->oq_head == NULL)
		c->want_out = false;
	if (c->paused && !conn_should_pause(c))
		c->paused = false;
	conn_rearm(t, c);
	pthread_mutex_unlock(&c->wlock);
	if (bad)
		conn_close(t, c);
	else if (c->in != NULL)
		(void)conn_take_held(t, c, fl_now_mono_ns());
}

/* Event thread, after the pass's events (feeding may close a connection,
 * and letting go of it free it, while an event of the same pass still
 * points at it): feed the input of the connections whose pause a worker
 * lifted (conn_wake).  One at a time off the list: once a connection is
 * off it, a worker may put it back (wake_next changes). */
static void conns_woken(struct nfsd_transport *t)
{
	uint64_t cnt;

	(void)!read(t->wake_tag.fd, &cnt, sizeof(cnt));
	for (;;) {
		pthread_mutex_lock(&t->wake_lock);
		struct nfsd_conn *c = t->wake_head;
		if (c != NULL) {
			t->wake_head = c->wake_next;
			c->waking = false;
		}
		pthread_mutex_unlock(&t->wake_lock);
		if (c == NULL)
			break;
		if (!c->dead && c->in != NULL)
			(void)conn_take_held(t, c, fl_now_mono_ns());
		conn_release(c);
	}
}

static void tcp_accept(struct nfsd_transport *t, int lfd)
{
	struct nfsd *s = t->srv;

	for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		memset(&ss, 0, sizeof(ss));
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (atomic_load(&s->st.conns_open) >= s->cfg.max_conns) {
			atomic_fetch_add(&s->st.conns_refused, 1);
			close(fd);
			continue;
		}
		struct nfsd_conn *c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->tag.kind = EP_CONN;
		c->tag.fd = fd;
		c->srv = s;
		atomic_init(&c->refs, 1);
		c->peer = ss;
		c->peerlen = sl;
		c->last_ns = fl_now_mono_ns();
		pthread_mutex_init(&c->wlock, NULL);
		struct epoll_event ev = { .events = EPOLLIN,
		    .data.ptr = &c->tag };
		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
			pthread_mutex_destroy(&c->wlock);
			close(fd);
			free(c);
			continue;
		}
		atomic_fetch_add(&s->st.conns_open, 1);
		atomic_fetch_add(&s->st.conns_accepted, 1);
		c->next = t->conns;
		if (t->conns != NULL)
			t->conns->prev = c;
		t->conns = c;
	}
}

static void udp_readable(struct nfsd_transport *t, int fd)
{
	for (int i = 0; i < DGRAMS_PER_EVENT; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		memset(&ss, 0, sizeof(ss));
		ssize_t n = recvfrom(fd, t->scratch, NFSD_UDP_MAX, MSG_DONTWAIT,
		    (struct sockaddr *)&ss, &sl);
		if (n < 0)
			return;
		pthread_mutex_lock(&t->qlock);
		bool full = t->qlen + t->blen >= NFSD_QUEUE_MAX_UDP;
		pthread_mutex_unlock(&t->qlock);
		if (full || n == 0) {
			atomic_fetch_add(&t->srv->st.dropped, 1);
			continue;
		}
		struct nfsd_req *r = req_new(t->srv);
		if (r == NULL)
			continue;
		r->call = malloc((size_t)n);
		if (r->call == NULL) {
			free(r);
			continue;
		}
		memcpy(r->call, t->scratch, (size_t)n);
		r->call_len = (size_t)n;
		r->udp = true;
		r->udp_fd = fd;
		r->peer = ss;
		r->peerlen = sl;
		enqueue(t, r);
	}
}

static void check_timeouts(struct nfsd_transport *t, uint64_t now)
{
	struct nfsd *s = t->srv;
	uint64_t idle = (uint64_t)s->cfg.idle_timeout_ms * 1000000ull;
	uint64_t part = (uint64_t)s->cfg.partial_timeout_ms * 1000000ull;

	for (struct nfsd_conn *c = t->conns, *n; c != NULL; c = n) {
		n = c->next;
		bool stalled = c->partial_ns != 0 && now - c->partial_ns > part;
		pthread_mutex_lock(&c->wlock);
		bool busy = atomic_load(&c->inflight) > 0 ||
		    c->oq_head != NULL;
		pthread_mutex_unlock(&c->wlock);
		bool is_idle = !busy && now - c->last_ns > idle;
		if (stalled || is_idle) {
			atomic_fetch_add(&s->st.conns_timed_out, 1);
			fl_debug("nfsd", "closing %s connection",
			    stalled ? "stalled" : "idle");
			conn_close(t, c);
		}
	}
}

/* Set on event threads: what must never block can check (ASSERT). */
static _Thread_local bool on_event_thread;

bool nfsd_on_event_thread(void)
{
	return on_event_thread;
}

static void *event_main(void *arg)
{
	struct nfsd_transport *t = arg;
	struct epoll_event evs[EP_EVENTS];
	uint64_t tick = FL_MIN((uint64_t)t->srv->cfg.partial_timeout_ms,
	    (uint64_t)t->srv->cfg.idle_timeout_ms) / 4;
	uint64_t next_check = 0;

	(void)pthread_setname_np(pthread_self(), "nfsd-event");
	on_event_thread = true;
	tick = FL_MAX(FL_MIN(tick, 1000u), 50u);
	for (;;) {
		int n = epoll_wait(t->epfd, evs, EP_EVENTS, (int)tick);
		bool stop = false, woken = false;
		for (int i = 0; i < n; i++) {
			struct ep_tag *tag = evs[i].data.ptr;
			switch (tag->kind) {
			case EP_STOP:
				stop = true;
				break;
			case EP_WAKE:
				woken = true;
				break;
			case EP_TCP_LISTEN:
				tcp_accept(t, tag->fd);
				break;
			case EP_UDP:
				udp_readable(t, tag->fd);
				break;
			case EP_CONN: {
				struct nfsd_conn *c = (struct nfsd_conn *)tag;
				/* Hold it across both halves. */
				atomic_fetch_add(&c->refs, 1);
				if (evs[i].events & EPOLLOUT)
					conn_writable(t, c);
				if (!c->dead && (evs[i].events &
				    (EPOLLIN | EPOLLHUP | EPOLLERR)))
					conn_readable(t, c, evs[i].events);
				conn_release(c);
				break;
			}
			}
		}
		if (woken)
			conns_woken(t);
		hand_off(t);
		if (stop)
			break;
		uint64_t now = fl_now_mono_ns();
		if (now >= next_check) {
			check_timeouts(t, now);
			next_check = now + tick * 1000000ull;
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ sockets */

static int make_socket(struct nfsd *s, int type, uint16_t port, int *fdp,
    uint16_t *bound)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons(port) };
	socklen_t sl = sizeof(sa);
	int one = 1, rc = 0;
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (inet_pton(AF_INET, s->bind_addr, &sa.sin_addr) != 1) {
		rc = -EINVAL;
		goto out;
	}
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (type == SOCK_DGRAM) {
		int sz = 4 << 20;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    (type == SOCK_STREAM && listen(fd, 1024) != 0) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
		rc = -errno;
		goto out;
	}
	*bound = ntohs(sa.sin_port);
	*fdp = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* TCP and (unless no_udp) UDP on the same port; port 0: any free one. */
static int open_pair(struct nfsd *s, uint16_t port, int *tfd, int *ufd,
    uint16_t *bound)
{
	int rc = -EADDRINUSE;

	*tfd = *ufd = -1;
	for (int attempt = 0; attempt < 32; attempt++) {
		rc = make_socket(s, SOCK_STREAM, port, tfd, bound);
		if (rc != 0)
			return rc;
		if (s->cfg.no_udp)
			return 0;
		rc = make_socket(s, SOCK_DGRAM, *bound, ufd, bound);
		if (rc == 0)
			return 0;
		close(*tfd);
		*tfd = -1;
		if (port != 0)
			return rc;
	}
	return rc;
}

static int ep_add(struct nfsd_transport *t, struct ep_tag *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(t->epfd, EPOLL_CTL_ADD, tag->fd, &ev) == 0 ? 0 :
	    -errno;
}

int nfsd_transport_start(struct nfsd *s)
{
	struct nfsd_transport *t = calloc(1, sizeof(*t));
	int fds[4] = { -1, -1, -1, -1 };
	uint16_t np = s->cfg.ephemeral_ports ? 0 : s->cfg.nfs_port;
	uint16_t mp = s->cfg.ephemeral_ports ? 0 : s->cfg.mount_port;
	int rc;

	if (t == NULL)
		return -ENOMEM;
	t->srv = s;
	s->tp = t;
	t->epfd = -1;
	t->stop_tag.fd = -1;
	t->wake_tag.fd = -1;
	pthread_mutex_init(&t->wake_lock, NULL);
	pthread_mutex_init(&t->qlock, NULL);
	pthread_cond_init(&t->qcond, NULL);
	pthread_cond_init(&t->idle, NULL);
	t->scratch = malloc(SCRATCH_BYTES > NFSD_UDP_MAX ? SCRATCH_BYTES :
	    NFSD_UDP_MAX);
	t->workers = calloc(s->cfg.threads, sizeof(*t->workers));
	if (t->scratch == NULL || t->workers == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = open_pair(s, np, &fds[0], &fds[1], &s->nfs_port);
	if (rc == 0)
		rc = open_pair(s, mp, &fds[2], &fds[3], &s->mount_port);
	if (rc != 0) {
		fl_err("nfsd", "cannot bind %s ports %u/%u: %s", s->bind_addr,
		    np, mp, fl_strerror(rc));
		goto fail;
	}
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->stop_tag.kind = EP_STOP;
	t->stop_tag.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	t->wake_tag.kind = EP_WAKE;
	t->wake_tag.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->epfd < 0 || t->stop_tag.fd < 0 || t->wake_tag.fd < 0) {
		rc = -errno;
		goto fail;
	}
	for (int i = 0; i < 4; i++) {
		if (fds[i] < 0)
			continue;
		t->listen[t->nlisten].kind = (i % 2 == 0) ? EP_TCP_LISTEN :
		    EP_UDP;
		t->listen[t->nlisten].fd = fds[i];
		fds[i] = -1;
		t->nlisten++;
	}
	for (int i = 0; i < t->nlisten && rc == 0; i++)
		rc = ep_add(t, &t->listen[i]);
	if (rc == 0)
		rc = ep_add(t, &t->stop_tag);
	if (rc == 0)
		rc = ep_add(t, &t->wake_tag);
	if (rc != 0)
		goto fail;
	for (uint32_t i = 0; i < s->cfg.threads; i++) {
		if (pthread_create(&t->workers[i], NULL, worker_main, t) != 0) {
			rc = -EAGAIN;
			goto fail;
		}
		t->nworkers++;
	}
	if (pthread_create(&t->ev_thread, NULL, event_main, t) != 0) {
		rc = -EAGAIN;
		goto fail;
	}
	t->ev_started = true;
	return 0;
fail:
	for (int i = 0; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	nfsd_transport_stop(s);
	return rc;
}

void nfsd_transport_stop(struct nfsd *s)
{
	struct nfsd_transport *t = s->tp;

	if (t == NULL)
		return;
	if (t->ev_started) {
		uint64_t one = 1;
		ssize_t w = write(t->stop_tag.fd, &one, sizeof(one));
		(void)w;
		pthread_join(t->ev_thread, NULL);
	}
	pthread_mutex_lock(&t->qlock);
	t->stopping = true;
	pthread_cond_broadcast(&t->qcond);
	pthread_mutex_unlock(&t->qlock);
	for (uint32_t i = 0; i < t->nworkers; i++)
		pthread_join(t->workers[i], NULL);
	/* Replies waiting for the NVLOG are sent (or dropped) by the flush
	 * that finishes them, one or two flushes away. */
	pthread_mutex_lock(&t->qlock);
	while (atomic_load(&t->deferred) > 0)
		pthread_cond_wait(&t->idle, &t->qlock);
	pthread_mutex_unlock(&t->qlock);
	while (t->qhead != NULL) {
		struct nfsd_req *r = t->qhead;
		t->qhead = r->next;
		drop_request(r);
	}
	/* Every request is freed: no connection is woken any more. */
	while (t->wake_head != NULL) {
		struct nfsd_conn *c = t->wake_head;
		t->wake_head = c->wake_next;
		conn_release(c);
	}
	while (t->conns != NULL)
		conn_close(t, t->conns);
	for (int i = 0; i < t->nlisten; i++)
		close(t->listen[i].fd);
	if (t->stop_tag.fd >= 0)
		close(t->stop_tag.fd);
	if (t->wake_tag.fd >= 0)
		close(t->wake_tag.fd);
	if (t->epfd >= 0)
		close(t->epfd);
	pthread_mutex_destroy(&t->qlock);
	pthread_mutex_destroy(&t->wake_lock);
	pthread_cond_destroy(&t->qcond);
	pthread_cond_destroy(&t->idle);
	free(t->workers);
	free(t->scratch);
	free(t);
	s->tp = NULL;
}
