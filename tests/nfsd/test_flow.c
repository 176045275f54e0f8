/*
 * tests/nfsd/test_flow.c: flow control of one TCP connection
 * (nfsd/transport.c: a connection with NFSD_CONN_INFLIGHT calls in
 * progress or NFSD_CONN_OUTQ_MAX bytes of replies queued is not read until
 * it drains).  A client pipelines 4000 READs of 64 KiB (250 MiB of
 * replies) on one connection and reads nothing:
 *   - the server stops reading it (its calls wait in the server's socket)
 *     and the replies it holds for it stay within the bound (8 MiB, plus
 *     those of the calls in progress when reading stopped);
 *   - another client, libnfs, is served meanwhile, and the first
 *     connection stays unread;
 *   - then the client reads, sending the rest of its calls as it goes:
 *     every call is answered once, with the right data (replies of one
 *     connection may come in any order: RPC matches them by xid), and
 *     the connection goes on working.
 * Then the input a paused connection holds back (the rest of the read
 * after the record that paused it):
 *   - a bad record in it, closed by the event thread when a worker's wake
 *     reaches it, in the same pass as an event of that connection: the
 *     connection is not touched after it is freed;
 *   - held input that ends with the record that pauses the connection
 *     again: nothing more is read from its socket until the pause lifts
 *     (it never has more than NFSD_CONN_INFLIGHT calls in progress).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <pthread.h>
#include <sys/ioctl.h>

#include "common/log.h"
#include "common/util.h"
#include "nfsd/nfsd_impl.h"
#include "tests/nfsd/th_nfs.h"

/* nfsd/transport.c's bounds, which the server does not export. */
#define FLOW_INFLIGHT	64u
#define FLOW_OUTQ_MAX	(8u << 20)

#define FILE_SIZE	((1u << 20) + 3000u)
#define READ_COUNT	(64u << 10)
#define NCALLS		4000u
#define XID0		0x10000u

static struct xb x;
static struct th_reply rp;
static uint8_t content[FILE_SIZE];

static int setup(void **state)
{
	struct th *t = calloc(1, sizeof(*t));

	th_start(t);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	th_stop(*state);
	free(*state);
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The file "flow": FILE_SIZE bytes of a pattern, kept in content. */
static void flow_file(struct th *t)
{
	struct wafl_cred cr = { 0 };
	struct wafl_obj root, o;
	struct wafl_sattr sa = { .set_mode = true, .mode = 0644 };
	enum wafl_stable got;

	for (uint32_t i = 0; i < FILE_SIZE; i++)
		content[i] = (uint8_t)(i * 13 + (i >> 11) + 5);
	VERIFY0(wafl_root(t->fs->v, &root));
	VERIFY0(wafl_create(t->fs->v, &cr, &root, "flow", WAFL_UNCHECKED, &sa,
	    0, &o, NULL, NULL));
	for (uint32_t off = 0; off < FILE_SIZE; off += 1u << 20)
		VERIFY0(wafl_write(t->fs->v, &cr, &o, off,
		    FL_MIN(1u << 20, FILE_SIZE - off), content + off,
		    WAFL_FILE_SYNC, &got, NULL, NULL));
}

/* The offset call i reads: every reply's data differs from the next. */
static uint64_t read_off(uint32_t i)
{
	return (uint64_t)i * 4099u % (FILE_SIZE - READ_COUNT);
}

static void xb_read(struct xb *xx, uint32_t xid, const struct th_fh *fh,
    uint64_t off, uint32_t count)
{
	xb_call(xx, xid, TH_NFS_PROG, 3, 6, 0, 0);
	xb_fh(xx, fh);
	xb_u64(xx, off);
	xb_u32(xx, count);
}

/* rp holds a READ reply: NFS3_OK, READ_COUNT bytes of content at off. */
static void check_read(uint64_t off)
{
	struct th_fattr a;
	uint32_t n;

	th_parse_reply(&rp);
	assert_int_equal(rp.stat, 0);
	assert_int_equal(rd_u32(&rp.r), 0);			/* NFS3_OK */
	assert_true(rd_post_attr(&rp.r, &a));
	assert_int_equal(a.size, FILE_SIZE);
	assert_int_equal(rd_u32(&rp.r), READ_COUNT);		/* count */
	assert_int_equal(rd_u32(&rp.r), 0);			/* eof */
	const uint8_t *d = rd_opaque(&rp.r, &n);
	assert_false(rp.r.bad);
	assert_int_equal(n, READ_COUNT);
	if (memcmp(d, content + off, n) != 0)
		fail_msg("xid %#x: READ at %llu: wrong data", rp.xid,
		    (unsigned long long)off);
	assert_int_equal(rp.r.off, rp.r.n);
}

/*
 * Send out[*sent..n) without blocking; stop when the socket has taken
 * nothing for wait_ms.  Returns true if everything went.
 */
static bool push(int fd, const uint8_t *out, size_t n, size_t *sent,
    int wait_ms)
{
	for (int i = 0; i < 1000000 && *sent < n; i++) {
		ssize_t k = send(fd, out + *sent, n - *sent,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (k > 0) {
			*sent += (size_t)k;
			continue;
		}
		if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR)
			fail_msg("send: %s", strerror(errno));
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		if (poll(&pf, 1, wait_ms) == 0)
			break;
	}
	return *sent == n;
}

/*
 * Wait until the server has taken no call for 300 ms and answered all it
 * took (10 s bound); fills st.
 */
static void settle(struct th *t, struct nfsd_stats *st)
{
	uint64_t last = UINT64_MAX;
	int still = 0;

	for (int i = 0; i < 200 && still < 6; i++) {
		usleep(50 * 1000);
		nfsd_get_stats(t->srv, st);
		still = st->calls == last && st->replies == st->calls ?
		    still + 1 : 0;
		last = st->calls;
	}
	if (still < 6)
		fail_msg("the server kept taking calls for 10 s (%llu taken)",
		    (unsigned long long)st->calls);
}

static int sock_queued(int fd, unsigned long req)
{
	int v = 0;

	VERIFY0(ioctl(fd, req, &v));
	return v;
}

/*
 * Meanwhile another client is served: libnfs mounts, reads the file,
 * writes one of its own and reads it back, each call bounded by
 * TH_TIMEOUT_MS and the whole within 5 s.
 */
static void other_client(struct th *t)
{
	static uint8_t buf[64 << 10], back[64 << 10];
	uint64_t t0 = now_ms();
	struct nfs_context *nfs = th_nfs_mount(t, "/vol/vol0", 0, 0, NULL, 0);
	struct nfsfh *f;
	struct nfs_stat_64 sb;

	assert_non_null(nfs);
	assert_int_equal(nfs_stat64(nfs, "/flow", &sb), 0);
	assert_int_equal(sb.nfs_size, FILE_SIZE);
	assert_int_equal(nfs_open(nfs, "/flow", O_RDONLY, &f), 0);
	assert_int_equal(nfs_pread(nfs, f, 777, sizeof(buf), buf),
	    (int)sizeof(buf));
	assert_memory_equal(buf, content + 777, sizeof(buf));
	assert_int_equal(nfs_close(nfs, f), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 31 + 1);
	assert_int_equal(nfs_creat(nfs, "/other", 0644, &f), 0);
	assert_int_equal(nfs_pwrite(nfs, f, 0, sizeof(buf), buf),
	    (int)sizeof(buf));
	assert_int_equal(nfs_pread(nfs, f, 0, sizeof(back), back),
	    (int)sizeof(back));
	assert_memory_equal(buf, back, sizeof(buf));
	assert_int_equal(nfs_close(nfs, f), 0);
	nfs_destroy_context(nfs);
	uint64_t ms = now_ms() - t0;
	print_message("the other client: served in %llu ms\n",
	    (unsigned long long)ms);
	if (ms > 5000)
		fail_msg("the other client took %llu ms",
		    (unsigned long long)ms);
}

static void test_unread_replies(void **state)
{
	struct th *t = *state;
	static uint8_t out[NCALLS * 144];
	static bool seen[NCALLS];
	struct nfsd_stats st0, st;
	struct th_fh root, fh;
	size_t n = 0, sent = 0;
	int fd, srv;

	flow_file(t);
	fd = th_tcp(t->nfs_port, 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	assert_int_equal(th_lookup(fd, &root, "flow", &fh, NULL), 0);
	/* One READ alone: the length of every reply below. */
	xb_read(&x, XID0 - 1, &fh, read_off(0), READ_COUNT);
	th_send_record(fd, &x);
	rp.len = th_recv_record(fd, rp.buf, sizeof(rp.buf), TH_TIMEOUT_MS);
	assert_true(rp.len > 0);
	check_read(read_off(0));
	const uint64_t reply_len = (uint64_t)rp.len + 4;
	srv = th_server_end(fd);
	assert_true(srv >= 0);

	for (uint32_t i = 0; i < NCALLS; i++) {
		xb_read(&x, XID0 + i, &fh, read_off(i), READ_COUNT);
		n = th_append_record(out, sizeof(out), n, &x);
	}
	nfsd_get_stats(t->srv, &st0);
	uint64_t t0 = now_ms();
	bool all = push(fd, out, n, &sent, 300);
	settle(t, &st);
	uint64_t taken = st.calls - st0.calls;
	uint64_t answered = st.replies - st0.replies;
	int inq = sock_queued(fd, SIOCINQ), outq = sock_queued(srv, SIOCOUTQ);
	int unread = sock_queued(srv, SIOCINQ);
	/* Replies made and not in either socket: held by the server. */
	int64_t held = (int64_t)(answered * reply_len) - inq - outq;
	print_message("sent %zu of %zu bytes of calls (%s), %d of them unread "
	    "in the server's socket; the server took %llu of %u calls in %llu "
	    "ms; replies: %d bytes at the client, %d in the server's socket, "
	    "%lld held by the server\n", sent, n,
	    all ? "all" : "then blocked", unread, (unsigned long long)taken,
	    NCALLS, (unsigned long long)(now_ms() - t0), inq, outq,
	    (long long)held);
	if (taken >= NCALLS || unread == 0)
		fail_msg("the server read all %zu bytes of calls of a client "
		    "that reads no reply (took %llu calls)", sent,
		    (unsigned long long)taken);
	/* 8 MiB, then the replies of the calls in progress when that was
	 * reached: at most NFSD_CONN_INFLIGHT, counting the one that
	 * reached it, and one more for slack. */
	if (held > (int64_t)FLOW_OUTQ_MAX +
	    (int64_t)(FLOW_INFLIGHT + 1) * (int64_t)reply_len)
		fail_msg("the server holds %lld bytes of replies for a client "
		    "that reads none (bound %u + %u replies of %llu)",
		    (long long)held, FLOW_OUTQ_MAX, FLOW_INFLIGHT + 1,
		    (unsigned long long)reply_len);

	other_client(t);

	/* Still not read: the client's calls stay where they were. */
	if (sock_queued(srv, SIOCINQ) != unread)
		fail_msg("the unread connection was read while the other "
		    "client was served (%d bytes waiting, then %d)", unread,
		    sock_queued(srv, SIOCINQ));

	/* The client reads, sending the rest of its calls as they go. */
	memset(seen, 0, sizeof(seen));
	t0 = now_ms();
	for (uint32_t k = 0; k < NCALLS; k++) {
		(void)push(fd, out, n, &sent, 0);
		rp.len = th_recv_record(fd, rp.buf, sizeof(rp.buf), 5000);
		if (rp.len <= 0)
			fail_msg("reply %u of %u did not come within 5 s (%zu "
			    "of %zu bytes of calls sent)", k, NCALLS, sent, n);
		uint32_t i = (uint32_t)rp.buf[0] << 24 |
		    (uint32_t)rp.buf[1] << 16 | (uint32_t)rp.buf[2] << 8 |
		    rp.buf[3];
		if (i < XID0 || i >= XID0 + NCALLS || seen[i - XID0])
			fail_msg("reply %u: xid %#x unexpected or twice", k, i);
		seen[i - XID0] = true;
		check_read(read_off(i - XID0));
		if (now_ms() - t0 > 30000)
			fail_msg("30 s and only %u replies", k + 1);
	}
	assert_int_equal(sent, n);
	print_message("read %u replies in %llu ms\n", NCALLS,
	    (unsigned long long)(now_ms() - t0));

	/* The connection goes on: pipelined NULLs and a READ, answered. */
	n = 0;
	for (uint32_t i = 0; i < 100; i++) {
		xb_call(&x, 7000 + i, TH_NFS_PROG, 3, 0, 0, 0);
		n = th_append_record(out, sizeof(out), n, &x);
	}
	th_send_all(fd, out, n);
	memset(seen, 0, sizeof(seen));
	for (uint32_t k = 0; k < 100; k++) {
		rp.len = th_recv_record(fd, rp.buf, sizeof(rp.buf),
		    TH_TIMEOUT_MS);
		assert_true(rp.len > 0);
		th_parse_reply(&rp);
		assert_int_equal(rp.stat, 0);
		assert_true(rp.xid >= 7000 && rp.xid < 7100);
		assert_false(seen[rp.xid - 7000]);
		seen[rp.xid - 7000] = true;
	}
	xb_read(&x, 8000, &fh, 12345, READ_COUNT);
	th_send_record(fd, &x);
	rp.len = th_recv_record(fd, rp.buf, sizeof(rp.buf), TH_TIMEOUT_MS);
	assert_true(rp.len > 0);
	check_read(12345);
	assert_int_equal(rp.xid, 8000);
	close(fd);
}

/* ------------------------------------------------ held input */

/* A server with one worker: calls taken alone (WRITEs) run one at a
 * time. */
static int setup_one_worker(void **state)
{
	struct th *t = calloc(1, sizeof(*t));

	th_config(t);
	t->cfg.threads = 1;
	th_serve(t);
	*state = t;
	return 0;
}

/* Wait until the server's end srv of a connection has read everything
 * (5 s bound), then a little for the event thread to take it apart. */
static void wait_read(int srv)
{
	for (int i = 0; i < 500 && sock_queued(srv, SIOCINQ) != 0; i++)
		usleep(10 * 1000);
	assert_int_equal(sock_queued(srv, SIOCINQ), 0);
	usleep(50 * 1000);
}

/* Wait until the server has answered calls0 + want calls (5 s bound). */
static void wait_answered(struct th *t, uint64_t want)
{
	struct nfsd_stats st;

	for (int i = 0; i < 500; i++) {
		nfsd_get_stats(t->srv, &st);
		if (st.calls >= want && st.replies >= want)
			return;
		usleep(10 * 1000);
	}
	fail_msg("%llu calls answered of %llu", (unsigned long long)st.replies,
	    (unsigned long long)want);
}

/* A connection the server has taken (a NULL answered), and its server
 * end in *srv. */
static int connected(struct th *t, int *srv)
{
	int fd = th_tcp(t->nfs_port, 0);

	xb_call(&x, 1, TH_NFS_PROG, 3, 0, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 0);
	*srv = th_server_end(fd);
	assert_true(*srv >= 0);
	return fd;
}

/* A record mark announcing a record far over NFSD_MAX_RECORD. */
static const uint8_t bad_mark[4] = { 0xff, 0xff, 0xff, 0xff };

/*
 * The event thread stopped in the warning about a bad record (a log hook
 * on it), until the test lets it go: events and wakes pile up meanwhile
 * and come in one pass of its loop.
 */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool arm, stopped, go;
} hold = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false,
    false, false };

static void hold_hook(void *arg, enum fl_log_level level, const char *subsys,
    const char *msg)
{
	(void)arg;
	(void)level;
	(void)subsys;
	if (!nfsd_on_event_thread() || strstr(msg, "oversized") == NULL)
		return;
	pthread_mutex_lock(&hold.mu);
	if (hold.arm) {
		hold.arm = false;
		hold.stopped = true;
		pthread_cond_broadcast(&hold.cv);
		for (int i = 0; i < 1000 && !hold.go; i++) {
			struct timespec ts;
			fl_deadline_ts(&ts, 10000);
			pthread_cond_timedwait(&hold.cv, &hold.mu, &ts);
		}
	}
	pthread_mutex_unlock(&hold.mu);
}

/*
 * A connection pauses with a bad record held; a worker lifts the pause and
 * wakes the event thread, and the connection's last call finishes, while
 * the event thread is busy; the connection then becomes readable.  The
 * event thread's next pass has the wake and the connection's event: the
 * wake closes it (the bad record) and lets go of it, then comes its event.
 */
static void test_held_bad_record_woken(void **state)
{
	struct th *t = *state;
	static uint8_t out[FLOW_INFLIGHT * 128 + 4];
	struct nfsd_stats st0, st;
	size_t n = 0;

	int srv, fd = connected(t, &srv);
	nfsd_get_stats(t->srv, &st0);
	fl_log_set_hook(hold_hook, NULL, FL_LOG_WARN);
	nfsd_transport_pause(t->srv);
	/* 64 NULLs, which pause the connection, then a bad mark, held. */
	for (uint32_t i = 0; i < FLOW_INFLIGHT; i++) {
		xb_call(&x, 100 + i, TH_NFS_PROG, 3, 0, 0, 0);
		n = th_append_record(out, sizeof(out), n, &x);
	}
	memcpy(out + n, bad_mark, 4);
	th_send_all(fd, out, n + 4);
	wait_read(srv);

	/* Another connection's bad record stops the event thread. */
	int other = th_tcp(t->nfs_port, 0);
	pthread_mutex_lock(&hold.mu);
	hold.arm = true;
	hold.go = hold.stopped = false;
	pthread_mutex_unlock(&hold.mu);
	th_send_all(other, bad_mark, 4);
	pthread_mutex_lock(&hold.mu);
	for (int i = 0; i < 500 && !hold.stopped; i++) {
		pthread_mutex_unlock(&hold.mu);
		usleep(10 * 1000);
		pthread_mutex_lock(&hold.mu);
	}
	bool stopped = hold.stopped;
	pthread_mutex_unlock(&hold.mu);
	assert_true(stopped);

	/* Meanwhile: every call of the first connection finishes (the first
	 * to finish lifts the pause and wakes the event thread), then the
	 * connection has something to read. */
	nfsd_transport_resume(t->srv);
	wait_answered(t, st0.calls + FLOW_INFLIGHT);
	usleep(50 * 1000);
	xb_call(&x, 99, TH_NFS_PROG, 3, 0, 0, 0);
	th_send_record(fd, &x);
	usleep(50 * 1000);
	pthread_mutex_lock(&hold.mu);
	hold.go = true;
	pthread_cond_broadcast(&hold.cv);
	pthread_mutex_unlock(&hold.mu);

	/* Both connections closed for their bad records; the first got the
	 * replies to its 64 calls first. */
	for (uint32_t i = 0; i < FLOW_INFLIGHT; i++) {
		rp.len = th_recv_record(fd, rp.buf, sizeof(rp.buf),
		    TH_TIMEOUT_MS);
		assert_true(rp.len > 0);
		th_parse_reply(&rp);
		assert_int_equal(rp.stat, 0);
	}
	assert_true(th_closed(fd, TH_TIMEOUT_MS));
	assert_true(th_closed(other, TH_TIMEOUT_MS));
	close(fd);
	close(other);
	fl_log_set_hook(NULL, NULL, FL_LOG_ERR);
	nfsd_get_stats(t->srv, &st);
	assert_int_equal(st.records_oversized - st0.records_oversized, 2);

	/* The server goes on. */
	fd = th_tcp(t->nfs_port, 0);
	xb_call(&x, 5, TH_NFS_PROG, 3, 0, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 0);
	close(fd);
}

/*
 * The one worker stopped in the call after the first `allow` it runs (a
 * hook on the debug line of a call answered GARBAGE_ARGS), until the test
 * lets it go.
 */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t allow, seen;
	bool go;
} gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0,
    false };

static void gate_hook(void *arg, enum fl_log_level level, const char *subsys,
    const char *msg)
{
	(void)arg;
	(void)level;
	(void)subsys;
	if (nfsd_on_event_thread() || strstr(msg, "verdict") == NULL)
		return;
	pthread_mutex_lock(&gate.mu);
	gate.seen++;
	pthread_cond_broadcast(&gate.cv);
	for (int i = 0; i < 1000 && gate.seen > gate.allow && !gate.go; i++) {
		struct timespec ts;
		fl_deadline_ts(&ts, 10000);
		pthread_cond_timedwait(&gate.cv, &gate.mu, &ts);
	}
	pthread_mutex_unlock(&gate.mu);
}

/* A WRITE without arguments: taken alone, answered GARBAGE_ARGS. */
static size_t append_write(uint8_t *out, size_t cap, size_t n, uint32_t xid)
{
	xb_call(&x, xid, TH_NFS_PROG, 3, 7, 0, 0);
	return th_append_record(out, cap, n, &x);
}

/*
 * 65 calls in one read: 64 go to the workers, the 65th is held; more calls
 * wait in the socket.  One call finishes: the held call goes and pauses
 * the connection again, and the connection is not read (64 in progress).
 */
static void test_held_ends_at_pause(void **state)
{
	struct th *t = *state;
	static uint8_t out[(FLOW_INFLIGHT + 11) * 128];
	static bool seen[FLOW_INFLIGHT + 11];
	size_t n = 0;

	int srv, fd = connected(t, &srv);
	nfsd_transport_pause(t->srv);
	for (uint32_t i = 0; i < FLOW_INFLIGHT + 1; i++)
		n = append_write(out, sizeof(out), n, 1000 + i);
	th_send_all(fd, out, n);
	wait_read(srv);
	n = 0;
	for (uint32_t i = FLOW_INFLIGHT + 1; i < FLOW_INFLIGHT + 11; i++)
		n = append_write(out, sizeof(out), n, 1000 + i);
	th_send_all(fd, out, n);
	usleep(50 * 1000);
	int unread = sock_queued(srv, SIOCINQ);
	assert_int_equal(unread, (int)n);

	/* One call finishes (the worker stops in the next one). */
	enum fl_log_level lvl = fl_log_get_level();
	pthread_mutex_lock(&gate.mu);
	gate.allow = 1;
	gate.seen = 0;
	gate.go = false;
	pthread_mutex_unlock(&gate.mu);
	fl_log_set_hook(gate_hook, NULL, FL_LOG_DEBUG);
	fl_log_set_level(FL_LOG_DEBUG);
	nfsd_transport_resume(t->srv);
	pthread_mutex_lock(&gate.mu);
	for (int i = 0; i < 500 && gate.seen < 2; i++) {
		pthread_mutex_unlock(&gate.mu);
		usleep(10 * 1000);
		pthread_mutex_lock(&gate.mu);
	}
	uint32_t ran = gate.seen;
	pthread_mutex_unlock(&gate.mu);
	fl_log_set_level(lvl);
	assert_int_equal(ran, 2);
	usleep(100 * 1000);
	int now_unread = sock_queued(srv, SIOCINQ);
	pthread_mutex_lock(&gate.mu);
	gate.go = true;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.mu);
	if (now_unread != unread)
		fail_msg("the server read a connection with %u calls in "
		    "progress (%d bytes waiting, then %d): it has %u now",
		    FLOW_INFLIGHT, unread, now_unread, FLOW_INFLIGHT + 1);

	nfsd_transport_resume(t->srv);
	memset(seen, 0, sizeof(seen));
	for (uint32_t k = 0; k < FLOW_INFLIGHT + 11; k++) {
		rp.len = th_recv_record(fd, rp.buf, sizeof(rp.buf),
		    TH_TIMEOUT_MS);
		if (rp.len <= 0)
			fail_msg("reply %u of %u did not come", k,
			    FLOW_INFLIGHT + 11);
		th_parse_reply(&rp);
		assert_int_equal(rp.stat, 4);		/* GARBAGE_ARGS */
		assert_true(rp.xid >= 1000 &&
		    rp.xid < 1000 + FLOW_INFLIGHT + 11);
		assert_false(seen[rp.xid - 1000]);
		seen[rp.xid - 1000] = true;
	}
	fl_log_set_hook(NULL, NULL, FL_LOG_ERR);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unread_replies, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_held_bad_record_woken,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_ends_at_pause,
		    setup_one_worker, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
