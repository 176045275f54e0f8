/*
 * mirror/listen.c: one TCP port for every relationship a filerd receives.
 *
 * THEORY
 *   A filerd may be the destination of several relationships (and, after
 *   a break, the listening side of a resync) at once, all on one port
 *   (the setting mirror_port).  The listener accepts, and reads the first
 *   frame of each connection without consuming it (MSG_PEEK): a source's
 *   HELLO, a resync's RS_HELLO or RS_OPEN, each of which names the
 *   relationship by its id.  The connection then goes, untouched, to the
 *   destination or resync attached with that id, which runs its own
 *   handshake on it exactly as on a connection it accepted itself; so the
 *   listener decides nothing but the route, and a peer still proves the
 *   relationship's key to the side that holds it.
 *
 *   Before the route is known a connection is only a file descriptor in
 *   the listener's poll set: at most PEND_MAX of them, each for at most
 *   PEND_MS; the oldest is closed when a new one would not fit.  So a
 *   peer that connects and says nothing, or says it slowly, holds up
 *   nobody for longer than that, and never a relationship's own thread.
 *   A first frame that is malformed (header, checksum, sequence, a type
 *   that does not start a connection) closes the connection; a well-formed
 *   one for an id nobody attached is answered with an ERROR frame
 *   ("unknown relationship", code ECONNREFUSED: the peer may try again,
 *   as the two halves of a resync start in either order) and closed; both
 *   are counted and logged (once a minute per cause: a source retries
 *   every 200 ms).
 *
 *   An attached side takes its connections from its inbox (at most
 *   INBOX_MAX waiting: a relationship serves one connection at a time; a
 *   full inbox closes its oldest for the newest, the one a peer that
 *   reconnected waits on).
 *
 *   Concurrency: the listener's thread owns the poll set; the list of
 *   inboxes and their queues are under l->lock, and takers wait on
 *   l->cond.  An inbox is detached (its queued connections closed) before
 *   its owner goes; the listener is stopped after every inbox is.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "mirror/mir_impl.h"
#include "mirror/wire.h"

#define PEND_MAX	16u	/* connections not yet routed */
#define PEND_MS		10000u	/* to send their first frame */
#define INBOX_MAX	4u	/* routed, not yet taken, per relationship */
#define FIRST_MAX	(MIR_HDR_SIZE + 64u)	/* largest first frame */
#define REFUSAL_LOG_S	60u	/* one log line per cause per minute */
#define LOG_CAUSES	8u	/* causes remembered for that */

struct mir_inbox {
	struct mir_inbox *next;
	uint8_t id[MIR_ID_SIZE];
	bool resync;		/* takes RS_HELLO / RS_OPEN, else HELLO */
	int fd[INBOX_MAX];
	unsigned n;
};

struct pend {
	int fd;
	uint64_t t0;
	char peer[64];
};

struct mir_listener {
	int lfd;
	uint16_t port;
	pthread_t thr;
	bool running;
	_Atomic bool stop;
	_Atomic bool accepting;	/* mir_listener_accept was called */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct mir_inbox *boxes;
	struct mir_listener_stats st;
	/* The listener thread's own. */
	struct pend pend[PEND_MAX];
	unsigned npend;
	struct {
		char key[2 * MIR_ID_SIZE + 1];	/* a cause logged */
		uint64_t ns;			/* when */
	} logged[LOG_CAUSES];
};

/* Count a refused connection (*counter, under l->lock), keep the text as
 * the last refusal for `mirror status`, and log it, unless a refusal with
 * the same key (its cause: the relationship id, or the kind) was logged
 * less than REFUSAL_LOG_S ago: a source retries every 200 ms, and the
 * counters say how often. */
static void refused(struct mir_listener *l, uint64_t *counter,
    const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void refused(struct mir_listener *l, uint64_t *counter,
    const char *key, const char *fmt, ...)
{
	char text[sizeof(l->st.last_refusal)];
	uint64_t now = fl_now_mono_ns();
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* The cause's slot, or the one logged longest ago. */
	unsigned k = 0;
	for (unsigned i = 0; i < LOG_CAUSES; i++) {
		if (strcmp(l->logged[i].key, key) == 0) {
			k = i;
			break;
		}
		if (l->logged[i].ns < l->logged[k].ns)
			k = i;
	}
	if (strcmp(l->logged[k].key, key) != 0 || l->logged[k].ns == 0 ||
	    now - l->logged[k].ns >= REFUSAL_LOG_S * 1000000000ull) {
		fl_warn("mirror", "listener: %s", text);
		snprintf(l->logged[k].key, sizeof(l->logged[k].key), "%s", key);
		l->logged[k].ns = now;
	}
	pthread_mutex_lock(&l->lock);
	(*counter)++;
	memcpy(l->st.last_refusal, text, sizeof(text));
	l->st.last_refusal_time = (uint64_t)time(NULL);
	pthread_mutex_unlock(&l->lock);
}

static void pend_drop(struct mir_listener *l, unsigned i)
{
	close(l->pend[i].fd);
	l->pend[i] = l->pend[--l->npend];
}

static void id_hex(const uint8_t id[MIR_ID_SIZE], char out[2 * MIR_ID_SIZE + 1])
{
	for (unsigned i = 0; i < MIR_ID_SIZE; i++)
		snprintf(out + 2 * i, 3, "%02x", id[i]);
}

/* An ERROR frame (sequence 0: the first this side sends), best effort. */
static void refuse(int fd, uint32_t code, const char *text)
{
	uint8_t f[MIR_HDR_SIZE + 8 + MIR_ERRTEXT_MAX];
	uint32_t len = mir_error_encode(f + MIR_HDR_SIZE, code, text);
	struct mir_hdr h = { .version = MIR_WIRE_VERSION,
	    .type = MIR_MSG_ERROR, .length = len, .seq = 0 };

	mir_hdr_encode(f, &h);
	mir_frame_seal(f, len);
	(void)send(fd, f, MIR_HDR_SIZE + len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/*
 * The relationship a connection's first frame names.  0 with the id;
 * -EAGAIN: not all of it has arrived (*need: the bytes to wait for);
 * -FL_EPROTO: it is not the first frame of a mirror connection.
 */
int mir_first_frame_id(const uint8_t *p, size_t len, size_t *need,
    uint8_t id[MIR_ID_SIZE])
{
	struct mir_hdr h;
	struct mir_hello hello;

	*need = MIR_HDR_SIZE;
	if (len < MIR_HDR_SIZE)
		return -EAGAIN;
	if (mir_hdr_decode(p, &h) != 0 || h.seq != 0 || h.flags != 0 ||
	    (h.type != MIR_MSG_HELLO && h.type != MIR_MSG_RS_HELLO &&
	    h.type != MIR_MSG_RS_OPEN))
		return FL_ERR(-FL_EPROTO);
	*need = MIR_HDR_SIZE + h.length;	/* bounded by its type */
	if (len < *need)
		return -EAGAIN;
	if (mir_frame_check(p, &h) != 0)
		return FL_ERR(-FL_EPROTO);
	if (h.type == MIR_MSG_HELLO) {
		if (mir_hello_decode(p + MIR_HDR_SIZE, h.length, &hello) != 0)
			return FL_ERR(-FL_EPROTO);
		memcpy(id, hello.id, MIR_ID_SIZE);
	} else {
		memcpy(id, p + MIR_HDR_SIZE, MIR_ID_SIZE);
	}
	return 0;
}

/* Route pending connection i if its first frame is all there (revents:
 * what poll said of it). */
static void pend_route(struct mir_listener *l, unsigned i, short revents)
{
	struct pend *pd = &l->pend[i];
	uint8_t buf[FIRST_MAX], id[MIR_ID_SIZE];
	char hex[2 * MIR_ID_SIZE + 1];
	size_t need;
	ssize_t n;
	int rc;

	n = recv(pd->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n <= 0) {
		pend_drop(l, i);	/* closed before it said anything */
		return;
	}
	rc = mir_first_frame_id(buf, (size_t)n, &need, id);
	if (rc == -EAGAIN && (revents & (POLLRDHUP | POLLHUP | POLLERR))) {
		pend_drop(l, i);	/* closed in the middle of it */
		return;
	}
	if (rc == -EAGAIN) {
		/* Wake again only when the rest is there. */
		int lowat = (int)need;
		(void)setsockopt(pd->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat,
		    sizeof(lowat));
		return;
	}
	if (rc != 0) {
		refused(l, &l->st.malformed, "malformed", "connection from %s "
		    "does not start with a mirror greeting: closed", pd->peer);
		pend_drop(l, i);
		return;
	}
	int one = 1;
	(void)setsockopt(pd->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
	/* A source's HELLO goes to the relationship's destination, a
	 * resync's greeting to its resync (the frame checked above). */
	bool resync = fl_get_le16(buf + 6) != MIR_MSG_HELLO;
	bool other_kind = false;
	pthread_mutex_lock(&l->lock);
	struct mir_inbox *in = l->boxes;
	while (in != NULL && (memcmp(in->id, id, MIR_ID_SIZE) != 0 ||
	    in->resync != resync)) {
		other_kind |= memcmp(in->id, id, MIR_ID_SIZE) == 0;
		in = in->next;
	}
	if (in != NULL) {
		/* A full inbox gives up its oldest: the newest connection
		 * is the one a peer that reconnected waits on. */
		int old = -1;
		if (in->n == INBOX_MAX) {
			old = in->fd[0];
			memmove(in->fd, in->fd + 1,
			    (INBOX_MAX - 1) * sizeof(in->fd[0]));
			in->n--;
		}
		in->fd[in->n++] = pd->fd;
		l->st.routed++;
		pthread_cond_broadcast(&l->cond);
		pthread_mutex_unlock(&l->lock);
		l->pend[i] = l->pend[--l->npend];
		if (old >= 0) {
			id_hex(id, hex);
			refused(l, &l->st.busy, hex, "relationship %s had %u "
			    "connections waiting: the oldest is closed for "
			    "the one from %s", hex, INBOX_MAX, pd->peer);
			close(old);
		}
		return;
	}
	pthread_mutex_unlock(&l->lock);
	id_hex(id, hex);
	if (other_kind)
		refused(l, &l->st.unknown, hex, "connection from %s: %s of "
		    "relationship %s, which runs %s here now: refused",
		    pd->peer, resync ? "a resync" : "the source's stream", hex,
		    resync ? "as a mirror, not a resync," : "a resync");
	else
		refused(l, &l->st.unknown, hex, "connection from %s for "
		    "relationship %s, which this filerd does not receive: "
		    "refused (are both sides' volume names right?)", pd->peer,
		    hex);
	/* Consume what was peeked, so that the close sends the ERROR and a
	 * FIN, not a reset.  ECONNREFUSED: the peer may try again (the
	 * other side of a resync may start its half after this one). */
	(void)recv(pd->fd, buf, need, MSG_DONTWAIT);
	refuse(pd->fd, ECONNREFUSED, "unknown relationship");
	pend_drop(l, i);
}

static void accept_one(struct mir_listener *l)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = accept4(l->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* Out of descriptors: the connection stays queued;
			 * do not spin on it. */
			struct timespec ts = { 0, 100 * 1000000L };
			nanosleep(&ts, NULL);
		}
		return;
	}
	if (l->npend == PEND_MAX) {
		unsigned old = 0;
		for (unsigned i = 1; i < l->npend; i++)
			if (l->pend[i].t0 < l->pend[old].t0)
				old = i;
		refused(l, &l->st.timeouts, "timeout", "%u connections have "
		    "not yet said which relationship they are for: the oldest, "
		    "from %s, is closed", PEND_MAX, l->pend[old].peer);
		pend_drop(l, old);
	}
	struct pend *pd = &l->pend[l->npend++];
	pd->fd = fd;
	pd->t0 = fl_now_mono_ns();
	char host[48] = "?", serv[8] = "?";
	(void)getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host),
	    serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(pd->peer, sizeof(pd->peer), "%s port %s", host, serv);
	/* A whole header before the first wake-up. */
	int lowat = MIR_HDR_SIZE;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
	pthread_mutex_lock(&l->lock);
	l->st.accepted++;
	pthread_mutex_unlock(&l->lock);
}

static void *listener_main(void *arg)
{
	struct mir_listener *l = arg;
	struct pollfd pfd[1 + PEND_MAX];

	(void)pthread_setname_np(pthread_self(), "mir-listen");
	while (!l->stop) {
		unsigned n = l->npend;
		/* Until told to accept, connections wait in the backlog. */
		pfd[0] = (struct pollfd){ .fd = l->accepting ? l->lfd : -1,
		    .events = POLLIN };
		for (unsigned i = 0; i < n; i++)
			pfd[1 + i] = (struct pollfd){ .fd = l->pend[i].fd,
			    .events = POLLIN | POLLRDHUP };
		int rc = poll(pfd, 1 + n, 100);
		uint64_t now = fl_now_mono_ns();
		/* Back to front: routing or dropping i moves the last
		 * entry into i, which was looked at already. */
		for (unsigned i = n; i-- > 0;) {
			if (rc > 0 && pfd[1 + i].revents != 0)
				pend_route(l, i, pfd[1 + i].revents);
			else if (now - l->pend[i].t0 >
			    (uint64_t)PEND_MS * 1000000u) {
				refused(l, &l->st.timeouts, "timeout",
				    "connection from %s said nothing for %u s: "
				    "closed",
				    l->pend[i].peer, PEND_MS / 1000);
				pend_drop(l, i);
			}
		}
		if (rc > 0 && (pfd[0].revents & POLLIN))
			accept_one(l);
	}
	while (l->npend > 0)
		pend_drop(l, l->npend - 1);
	return NULL;
}

/* ---------------------------------------------------------- the API */

int mir_listener_start(const char *host, uint16_t port, mir_listener_t **out)
{
	struct mir_listener *l = calloc(1, sizeof(*l));
	int rc;

	if (l == NULL)
		return -ENOMEM;
	rc = mir_tcp_listen(host != NULL ? host : "127.0.0.1", port, &l->port);
	if (rc < 0) {
		free(l);
		return rc;
	}
	l->lfd = rc;
	/* A readiness that is gone by the accept must not block routing. */
	int fl = fcntl(l->lfd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(l->lfd, F_SETFL, fl | O_NONBLOCK);
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	rc = pthread_create(&l->thr, NULL, listener_main, l);
	if (rc != 0) {
		close(l->lfd);
		pthread_mutex_destroy(&l->lock);
		pthread_cond_destroy(&l->cond);
		free(l);
		return -rc;
	}
	l->running = true;
	fl_info("mirror", "listening on port %u for the relationships this "
	    "filerd receives", l->port);
	*out = l;
	return 0;
}

void mir_listener_accept(mir_listener_t *l)
{
	l->accepting = true;
}

uint16_t mir_listener_port(const mir_listener_t *l)
{
	return l->port;
}

unsigned mir_listener_attached(mir_listener_t *l)
{
	unsigned n = 0;

	pthread_mutex_lock(&l->lock);
	for (struct mir_inbox *in = l->boxes; in != NULL; in = in->next)
		n++;
	pthread_mutex_unlock(&l->lock);
	return n;
}

void mir_listener_stats(mir_listener_t *l, struct mir_listener_stats *st)
{
	pthread_mutex_lock(&l->lock);
	*st = l->st;
	pthread_mutex_unlock(&l->lock);
}

void mir_listener_stop(mir_listener_t *l)
{
	if (l == NULL)
		return;
	l->stop = true;
	if (l->running)
		pthread_join(l->thr, NULL);
	/* Every inbox was detached by its owner (VERIFY: a side still
	 * attached would take from freed memory). */
	VERIFY(l->boxes == NULL);
	close(l->lfd);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
	free(l);
}

/* --------------------------------------------------------- acceptors */

int mir_acceptor_open(struct mir_acceptor *a, mir_listener_t *l,
    const char *host, uint16_t port, const uint8_t id[MIR_ID_SIZE],
    bool resync)
{
	int rc;

	memset(a, 0, sizeof(*a));
	a->lfd = -1;
	if (l == NULL) {
		rc = mir_tcp_listen(host != NULL ? host : "127.0.0.1", port,
		    &a->port);
		if (rc < 0)
			return rc;
		a->lfd = rc;
		return 0;
	}
	struct mir_inbox *in = calloc(1, sizeof(*in));
	if (in == NULL)
		return -ENOMEM;
	memcpy(in->id, id, MIR_ID_SIZE);
	in->resync = resync;
	pthread_mutex_lock(&l->lock);
	for (struct mir_inbox *o = l->boxes; o != NULL; o = o->next) {
		if (memcmp(o->id, id, MIR_ID_SIZE) == 0 && o->resync == resync) {
			pthread_mutex_unlock(&l->lock);
			free(in);
			return -EADDRINUSE;
		}
	}
	in->next = l->boxes;
	l->boxes = in;
	pthread_mutex_unlock(&l->lock);
	a->l = l;
	a->in = in;
	a->port = l->port;
	return 0;
}

int mir_acceptor_next(struct mir_acceptor *a, int timeout_ms)
{
	if (a->l == NULL) {
		struct pollfd pfd = { .fd = a->lfd, .events = POLLIN };
		if (a->lfd < 0 || poll(&pfd, 1, timeout_ms) <= 0)
			return -1;
		int fd = accept4(a->lfd, NULL, NULL, SOCK_CLOEXEC);
		return fd >= 0 ? fd : -1;
	}
	struct mir_listener *l = a->l;
	struct timespec ts;
	int fd = -1;

	fl_deadline_ts(&ts, (uint64_t)timeout_ms * 1000);
	pthread_mutex_lock(&l->lock);
	while (a->in->n == 0 &&
	    pthread_cond_timedwait(&l->cond, &l->lock, &ts) == 0)
		;
	if (a->in->n > 0) {
		fd = a->in->fd[0];
		memmove(a->in->fd, a->in->fd + 1,
		    (a->in->n - 1) * sizeof(a->in->fd[0]));
		a->in->n--;
	}
	pthread_mutex_unlock(&l->lock);
	return fd;
}

bool mir_acceptor_waiting(struct mir_acceptor *a)
{
	if (a->l == NULL) {
		struct pollfd pfd = { .fd = a->lfd, .events = POLLIN };
		return a->lfd >= 0 && poll(&pfd, 1, 0) > 0;
	}
	pthread_mutex_lock(&a->l->lock);
	bool waiting = a->in->n > 0;
	pthread_mutex_unlock(&a->l->lock);
	return waiting;
}

void mir_acceptor_close(struct mir_acceptor *a)
{
	if (a->lfd >= 0)
		close(a->lfd);
	a->lfd = -1;
	if (a->l != NULL) {
		struct mir_listener *l = a->l;
		pthread_mutex_lock(&l->lock);
		for (struct mir_inbox **pp = &l->boxes; *pp != NULL;
		    pp = &(*pp)->next) {
			if (*pp == a->in) {
				*pp = a->in->next;
				break;
			}
		}
		pthread_mutex_unlock(&l->lock);
		for (unsigned i = 0; i < a->in->n; i++)
			close(a->in->fd[i]);
		free(a->in);
	}
	a->l = NULL;
	a->in = NULL;
}
