/*
 * admin/daemon.c: filerd.
 *
 * LIFECYCLE (docs/admin.md)
 *   1. Without --foreground, fork; the parent waits on a pipe until the
 *      child is serving (exit 0) or has failed (its message, exit 1).
 *   2. Take the home lock (ctx.c); a second filerd on the same home is
 *      refused with the pid of the first.  Write our pid.
 *   3. Open and migrate the database; apply settings that act now.
 *   4. Block SIGTERM, SIGINT, SIGHUP before any thread exists (raid and
 *      wafl threads inherit the mask), and read them from a signalfd in the
 *      main loop: no work happens in a signal handler.
 *   5. Bring up every volume configured online (a failure marks that volume
 *      offline with the reason and goes on), then start the services.
 *   6. Serve the control socket, mode 0600 (0660 with the admin_group).
 *      Each connection carries one request; the main thread serves them in
 *      turn, so handlers never race each other on the database or the
 *      volume list.  A peer must be root, our own uid, or in admin_group
 *      (SO_PEERCRED).  Requests are read without blocking as they arrive
 *      (struct client): a peer that sends slowly or not at all holds up
 *      nobody and is dropped after CLIENT_TIMEOUT_S.
 *      A request that would take long (the check of an online volume)
 *      becomes a job: its work runs on a thread of its own, the main loop
 *      goes on serving, and answers the job's connection when it is done
 *      (adm_job_start).  Meanwhile its caller is sent an empty frame
 *      every KEEPALIVE_MS, so that filerctl, which gives up on a filerd
 *      silent for 600 s, waits out a check of any length; a caller that
 *      went away cancels its job (adm_jobs_keepalive).
 *      Unmounting or replacing a volume's file system
 *      first waits for that volume's jobs (adm_jobs_wait), and so does
 *      the stop, which answers them before the services stop.
 *   7. Between requests: drain raid events into the event log, run
 *      snapshot schedules.
 *   8. SIGTERM/SIGINT (A4): close the socket, stop services, unmount every
 *      volume (final CP) and close its raid, remove socket and pid file,
 *      exit 0.  SIGHUP: reapply settings, tell services to reload.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "admin/adm_impl.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#define CLIENT_TIMEOUT_S	10
#define KEEPALIVE_MS		30000

static int ready_fd = -1;	/* pipe to the waiting parent, or -1 */

static void ready(const char *msg)
{
	if (ready_fd < 0)
		return;
	(void)!write(ready_fd, msg, strlen(msg));
	close(ready_fd);
	ready_fd = -1;
}

/* Report a startup failure where the administrator looks. */
static int startup_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int startup_fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ready_fd >= 0) {
		fl_err(ADM_SUB, "%s", msg);	/* syslog */
		char buf[1100];

		snprintf(buf, sizeof(buf), "filerd: %s\n", msg);
		ready(buf);
	} else {
		fprintf(stderr, "filerd: %s\n", msg);
	}
	return 1;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[ADM_PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -errno;
		buf[i] = path[i];
	}
	return 0;
}

static bool admin_gid(struct adm_ctx *ctx, gid_t *gid)
{
	char name[256];
	struct group *g;

	if (adm_db_setting(ctx->db, "admin_group", name, sizeof(name)) != 0 ||
	    name[0] == '\0' || (g = getgrnam(name)) == NULL)
		return false;
	*gid = g->gr_gid;
	return true;
}

void adm_daemon_apply(struct adm_ctx *ctx)
{
	char lvl[32];
	enum fl_log_level l;
	gid_t gid;

	if (adm_db_setting(ctx->db, "log_level", lvl, sizeof(lvl)) == 0 &&
	    fl_log_parse_level(lvl, &l) == 0)
		fl_log_set_level(l);
	if (admin_gid(ctx, &gid)) {
		if (chown(ctx->sock_path, (uid_t)-1, gid) == 0)
			(void)chmod(ctx->sock_path, 0660);
	} else {
		(void)chmod(ctx->sock_path, 0600);
	}
}

static bool peer_allowed(struct adm_ctx *ctx, int fd, char *why,
    size_t whylen)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	gid_t gid;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
		snprintf(why, whylen, "cannot identify the caller");
		return false;
	}
	if (cr.uid == 0 || cr.uid == geteuid())
		return true;
	if (admin_gid(ctx, &gid)) {
		struct passwd *pw = getpwuid(cr.uid);
		gid_t groups[256];
		int n = 256;

		if (cr.gid == gid)
			return true;
		if (pw != NULL && getgrouplist(pw->pw_name, pw->pw_gid, groups,
		    &n) >= 0)
			for (int i = 0; i < n; i++)
				if (groups[i] == gid)
					return true;
	}
	snprintf(why, whylen, "permission denied: uid %u may not use filerd's "
	    "control socket (root%s only)", (unsigned)cr.uid,
	    admin_gid(ctx, &gid) ? " or the admin_group" : "");
	return false;
}

/* Send rep on fd (one frame); a reply too large is replaced by an error
 * that says so. */
static void reply_send(int fd, struct adm_rep *rep)
{
	struct adm_buf out = { 0 };

	adm_rep_encode_bounded(rep, &out);
	(void)adm_frame_write(fd, out.p, out.len);
	adm_buf_free(&out);
}

/* ---------------------------------------------------------------- jobs */

static void *job_main(void *arg)
{
	struct adm_job *j = arg;
	struct adm_ctx *ctx = j->ctx;
	uint64_t one = 1;

	(void)pthread_setname_np(pthread_self(), "filerd-job");
	j->run(j);
	pthread_mutex_lock(&ctx->lock);
	j->done = true;
	pthread_mutex_unlock(&ctx->lock);
	(void)!write(ctx->wake_fd, &one, sizeof(one));
	return NULL;
}

int adm_job_start(struct adm_ctx *ctx, struct adm_job *j)
{
	int rc;

	if (ctx->req_fd < 0)
		return -EINVAL;		/* not a request on the socket */
	j->ctx = ctx;
	j->fd = ctx->req_fd;
	j->joined = false;
	j->done = false;
	j->cancel = false;
	j->alive_ns = fl_now_mono_ns();
	rc = pthread_create(&j->thr, NULL, job_main, j);
	if (rc != 0)
		return -rc;
	ctx->req_fd = -1;		/* the job's now */
	j->next = ctx->jobs;
	ctx->jobs = j;
	return 0;
}

void adm_jobs_keepalive(struct adm_ctx *ctx)
{
	static const uint8_t empty[4];	/* a frame of length 0 */
	uint64_t every = (uint64_t)(ctx->keepalive_ms != 0 ? ctx->keepalive_ms :
	    KEEPALIVE_MS) * 1000000u;
	uint64_t now = fl_now_mono_ns();

	for (struct adm_job *j = ctx->jobs; j != NULL; j = j->next) {
		if (j->joined || j->cancel || now - j->alive_ns < every)
			continue;
		j->alive_ns = now;
		/* Four bytes into an idle socket's buffer: never blocks.  A
		 * full buffer (a caller that reads nothing) skips a beat. */
		ssize_t w = send(j->fd, empty, sizeof(empty),
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w >= 0 || errno == EAGAIN || errno == EINTR)
			continue;
		fl_info(ADM_SUB, "volume %s: the caller of the %s went away "
		    "(%s); it stops", j->vol, j->kind, strerror(errno));
		j->cancel = true;
	}
}

bool adm_job_running(struct adm_ctx *ctx, const char *vol, const char *kind)
{
	for (struct adm_job *j = ctx->jobs; j != NULL; j = j->next)
		if (!j->joined && strcmp(j->vol, vol) == 0 &&
		    strcmp(j->kind, kind) == 0)
			return true;
	return false;
}

void adm_jobs_settle(struct adm_ctx *ctx, const char *vol, const char *kind)
{
	for (struct adm_job *j = ctx->jobs; j != NULL; j = j->next) {
		if (j->joined || !j->cancel || strcmp(j->vol, vol) != 0 ||
		    strcmp(j->kind, kind) != 0)
			continue;
		pthread_join(j->thr, NULL);	/* it stops at its next look */
		j->joined = true;		/* answered by adm_jobs_reap */
	}
}

bool adm_job_cancel(struct adm_ctx *ctx, const char *vol, const char *kind)
{
	bool found = false;

	for (struct adm_job *j = ctx->jobs; j != NULL; j = j->next) {
		if (j->joined || strcmp(j->vol, vol) != 0 ||
		    strcmp(j->kind, kind) != 0)
			continue;
		pthread_mutex_lock(&ctx->lock);
		bool done = j->done;	/* finished: its answer stands */
		pthread_mutex_unlock(&ctx->lock);
		if (!done) {
			j->cancel = true;
			found = true;
		}
	}
	return found;
}

void adm_jobs_wait(struct adm_ctx *ctx, const char *vol, bool raid_too)
{
	for (struct adm_job *j = ctx->jobs; j != NULL; j = j->next) {
		if (j->joined || (vol != NULL && strcmp(j->vol, vol) != 0) ||
		    (!raid_too && !j->uses_fs))
			continue;
		fl_info(ADM_SUB, "volume %s: waiting for the running %s to "
		    "end", j->vol, j->kind);
		j->cancel = true;	/* a check stops, a wait ends */
		pthread_join(j->thr, NULL);
		j->joined = true;
	}
}

void adm_jobs_reap(struct adm_ctx *ctx)
{
	for (struct adm_job **pp = &ctx->jobs; *pp != NULL;) {
		struct adm_job *j = *pp;
		bool done;

		pthread_mutex_lock(&ctx->lock);
		done = j->done;
		pthread_mutex_unlock(&ctx->lock);
		if (!done) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		if (!j->joined)
			pthread_join(j->thr, NULL);
		struct adm_rep rep;
		int fd = j->fd;
		adm_rep_init(&rep);
		rep.status = ADM_OK;
		rep.status = j->finish(ctx, j, &rep);	/* frees j */
		adm_events_drain(ctx);
		reply_send(fd, &rep);
		adm_rep_free(&rep);
		close(fd);
	}
}

/* --------------------------------------------------------- requests */

/*
 * A connection whose request is still arriving.  The main loop reads
 * what is there (the socket is non-blocking) and serves the request once
 * its frame is whole, so a client that sends slowly, or not at all,
 * holds up nobody: at most CLIENTS_MAX wait, each CLIENT_TIMEOUT_S at
 * most, the oldest is dropped for a new one.
 */
#define CLIENTS_MAX	32

struct client {
	int fd;
	uint64_t since_ns;
	bool ready;		/* had something to read at the last poll */
	uint8_t hdr[4];
	size_t hdr_have;
	char *buf;		/* len + 1 bytes, once the header is in */
	size_t len, have;
};

static struct client clients[CLIENTS_MAX];
static unsigned nclients;

static void client_drop(unsigned i)
{
	close(clients[i].fd);
	free(clients[i].buf);
	clients[i] = clients[--nclients];
}

/* Serve the request in (len bytes, or rc < 0: it could not be read) on
 * fd; false if a job took the connection (it is answered and closed
 * later), else the caller closes it. */
static bool serve_request(struct adm_ctx *ctx, int fd, int rc, char *in,
    size_t len)
{
	struct timeval tv = { .tv_sec = CLIENT_TIMEOUT_S };
	struct adm_rep rep;
	bool mine = true;
	struct adm_req req;
	char why[256];
	int fl = fcntl(fd, F_GETFL);

	/* Replies are written whole, waiting at most the timeout. */
	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	adm_rep_init(&rep);
	adm_req_init(&req, "");
	if (rc != 0) {
		fl_warn(ADM_SUB, "control socket: bad request frame: %s",
		    fl_strerror(rc));
		adm_fail(&rep, ADM_USAGE, "malformed request frame: %s",
		    fl_strerror(rc));
		goto reply;
	}
	if (adm_req_decode(in, len, &req, why, sizeof(why)) != 0) {
		fl_warn(ADM_SUB, "control socket: malformed request: %s", why);
		adm_fail(&rep, ADM_USAGE, "malformed request: %s", why);
		goto reply;
	}
	fl_debug(ADM_SUB, "request: %s", req.verb);
	ctx->req_fd = fd;
	(void)adm_dispatch(ctx, &req, &rep);
	mine = ctx->req_fd == fd;
	ctx->req_fd = -1;
	adm_events_drain(ctx);
reply:
	if (mine)
		reply_send(fd, &rep);
	adm_rep_free(&rep);
	adm_req_free(&req);
	return mine;
}

/* A new connection: refused at once if the peer may not use the socket,
 * else it waits for its request. */
static void client_accept(struct adm_ctx *ctx, int fd)
{
	char why[256];

	if (!peer_allowed(ctx, fd, why, sizeof(why))) {
		struct timeval tv = { .tv_sec = 1 };
		struct adm_rep rep;

		fl_warn(ADM_SUB, "control socket: %s", why);
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		adm_rep_init(&rep);
		adm_fail(&rep, ADM_ERR, "%s", why);
		reply_send(fd, &rep);
		adm_rep_free(&rep);
		close(fd);
		return;
	}
	if (nclients == CLIENTS_MAX) {
		unsigned old = 0;
		for (unsigned i = 1; i < nclients; i++)
			if (clients[i].since_ns < clients[old].since_ns)
				old = i;
		fl_warn(ADM_SUB, "control socket: %u connections have not sent "
		    "their request; the oldest is dropped", CLIENTS_MAX);
		client_drop(old);
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
		close(fd);
		return;
	}
	clients[nclients++] = (struct client){ .fd = fd,
	    .since_ns = fl_now_mono_ns() };
}

/* Read what client i sent; serve its request once whole. */
static void client_readable(struct adm_ctx *ctx, unsigned i)
{
	struct client *c = &clients[i];
	int rc = 0;

	for (;;) {
		void *dst;
		size_t want;
		if (c->hdr_have < sizeof(c->hdr)) {
			dst = c->hdr + c->hdr_have;
			want = sizeof(c->hdr) - c->hdr_have;
		} else {
			dst = c->buf + c->have;
			want = c->len - c->have;
			if (want == 0)
				break;
		}
		ssize_t n = read(c->fd, dst, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;		/* the rest later */
		if (n <= 0) {
			client_drop(i);	/* gone before its request */
			return;
		}
		if (c->hdr_have < sizeof(c->hdr)) {
			c->hdr_have += (size_t)n;
			if (c->hdr_have < sizeof(c->hdr))
				continue;
			c->len = (size_t)c->hdr[0] << 24 |
			    (size_t)c->hdr[1] << 16 |
			    (size_t)c->hdr[2] << 8 | c->hdr[3];
			if (c->len > ADM_REQ_MAX) {
				rc = -EMSGSIZE;
				break;
			}
			c->buf = malloc(c->len + 1);
			if (c->buf == NULL) {
				rc = -ENOMEM;
				break;
			}
		} else {
			c->have += (size_t)n;
		}
	}
	int fd = c->fd;
	char *in = c->buf;
	size_t len = c->len;

	if (in != NULL)
		in[len] = '\0';
	clients[i] = clients[--nclients];	/* off the list, fd kept */
	if (serve_request(ctx, fd, rc, in, len))
		close(fd);
	free(in);
}

/* Drop the connections that took too long to send their request: longer
 * than the timeout at poll_ns, when the last poll returned, and nothing
 * new to read then (time the loop spent serving others since, while
 * they may have sent the rest, does not count against them). */
static void clients_expire(uint64_t poll_ns)
{
	for (unsigned i = nclients; i-- > 0;) {
		bool ready = clients[i].ready;

		clients[i].ready = false;
		if (ready || clients[i].since_ns >= poll_ns ||
		    poll_ns - clients[i].since_ns <
		    (uint64_t)CLIENT_TIMEOUT_S * 1000000000ull)
			continue;
		fl_warn(ADM_SUB, "control socket: no whole request within %d s; "
		    "connection dropped", CLIENT_TIMEOUT_S);
		client_drop(i);
	}
}

static int listen_socket(struct adm_ctx *ctx)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int fd, rc;

	if (strlen(ctx->sock_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, ctx->sock_path, strlen(ctx->sock_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* We hold the home lock: a socket file here is a dead filerd's. */
	(void)unlink(ctx->sock_path);
	old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc != 0 || listen(fd, 64) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* Error lines from the layers below become events (any thread). */
static void log_hook(void *arg, enum fl_log_level level, const char *subsys,
    const char *msg)
{
	if (strcmp(subsys, ADM_SUB) == 0)
		return;
	adm_event_queue(arg, NULL, 0, "error", false, msg);
}

static int daemonize(void)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		char buf[1200];
		ssize_t n;

		close(p[1]);
		n = read(p[0], buf, sizeof(buf) - 1);
		if (n > 0 && strncmp(buf, "OK", 2) == 0)
			_exit(0);
		if (n > 0)
			(void)!write(2, buf, (size_t)n);
		else
			fprintf(stderr, "filerd: exited during startup\n");
		_exit(1);
	}
	close(p[0]);
	ready_fd = p[1];
	(void)setsid();
	return 0;
}

int adm_daemon_main(const struct adm_daemon_opts *o)
{
	struct adm_ctx *ctx = calloc(1, sizeof(*ctx));
	char err[512], pidbuf[32], *real = NULL;
	sigset_t mask;
	int sfd = -1, lfd = -1, rc, status = 1;
	long holder;

	if (ctx == NULL)
		return 1;
	fl_log_init(o->foreground ? FL_LOG_STDERR : FL_LOG_SYSLOG, "filerd");
	if (!o->foreground && daemonize() != 0) {
		fprintf(stderr, "filerd: cannot fork: %s\n", strerror(errno));
		free(ctx);
		return 1;
	}
	rc = mkdir_p(o->home, 0755);
	real = rc == 0 ? realpath(o->home, NULL) : NULL;
	if (real == NULL || adm_ctx_init(ctx, real) != 0) {
		status = startup_fail("cannot use %s as home: %s", o->home,
		    strerror(rc != 0 ? -rc : errno));
		free(real);
		free(ctx);
		return status;
	}
	free(real);
	if (o->clock_scale > 0)
		ctx->clock_scale = o->clock_scale;
	ctx->check_hold_ms = o->check_hold_ms;
	ctx->keepalive_ms = o->keepalive_ms;
	ctx->resync_stop_hold_ms = o->resync_stop_hold_ms;
	rc = adm_home_lock(ctx, &holder);
	/* An offline filerctl edit holds the lock for a moment (it writes no
	 * pid; a dead filerd's pid may still be in the file): wait for it.
	 * A live filerd is refused at once. */
	for (int i = 0; i < 100 && rc == -EBUSY && (holder <= 0 ||
	    (kill((pid_t)holder, 0) != 0 && errno == ESRCH)); i++) {
		struct timespec ts = { 0, 100 * 1000000L };

		nanosleep(&ts, NULL);
		rc = adm_home_lock(ctx, &holder);
	}
	if (rc == -EBUSY && holder > 0 && (kill((pid_t)holder, 0) == 0 ||
	    errno != ESRCH)) {
		status = startup_fail("already running on %s (pid %ld); stop "
		    "it first (kill -TERM %ld) or use another --home", ctx->home,
		    holder, holder);
		goto out_ctx;
	}
	if (rc == -EBUSY) {
		/* No live filerd: a filerctl edits the home offline (its
		 * pid is not in the file) and has for 10 s. */
		status = startup_fail("%s is locked by a filerctl editing it "
		    "without filerd (for 10 s now); start filerd when it is "
		    "done", ctx->home);
		goto out_ctx;
	}
	if (rc != 0) {
		status = startup_fail("cannot lock %s: %s", ctx->pid_path,
		    strerror(-rc));
		goto out_ctx;
	}
	snprintf(pidbuf, sizeof(pidbuf), "%ld\n", (long)getpid());
	if (ftruncate(ctx->lock_fd, 0) != 0 ||
	    pwrite(ctx->lock_fd, pidbuf, strlen(pidbuf), 0) < 0) {
		status = startup_fail("cannot write %s: %s", ctx->pid_path,
		    strerror(errno));
		goto out_lock;
	}
	if (adm_db_open(ctx->db_path, &ctx->db, err, sizeof(err)) != 0) {
		status = startup_fail("%s", err);
		goto out_lock;
	}
	ctx->daemon = true;
	ctx->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0 || ctx->wake_fd < 0) {
		status = startup_fail("cannot set up signals: %s",
		    strerror(errno));
		goto out_db;
	}
	adm_daemon_apply(ctx);
	fl_log_set_hook(log_hook, ctx, FL_LOG_ERR);
	fl_info(ADM_SUB, "filerd starting on %s (pid %ld)", ctx->home,
	    (long)getpid());

	adm_vols_start(ctx);
	adm_services_start(ctx);
	lfd = listen_socket(ctx);
	if (lfd < 0) {
		status = startup_fail("cannot listen on %s: %s", ctx->sock_path,
		    strerror(-lfd));
		goto out_vols;
	}
	adm_daemon_apply(ctx);
	adm_event(ctx, NULL, "filerd.started", "filerd started (pid %ld)",
	    (long)getpid());
	adm_events_drain(ctx);
	fl_info(ADM_SUB, "filerd ready: %s", ctx->sock_path);
	if (ready_fd >= 0) {
		int dn = open("/dev/null", O_RDWR);

		ready("OK\n");
		if (dn >= 0) {
			dup2(dn, 0);
			dup2(dn, 1);
			dup2(dn, 2);
			if (dn > 2)
				close(dn);
		}
	}

	while (!ctx->stopping) {
		struct pollfd pf[3 + CLIENTS_MAX] = {
			{ .fd = lfd, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			{ .fd = ctx->wake_fd, .events = POLLIN },
		};
		int timeout = ctx->clock_scale > 1.0 ? 50 : 1000;
		unsigned nc = nclients;

		for (unsigned i = 0; i < nc; i++)
			pf[3 + i] = (struct pollfd){ .fd = clients[i].fd,
			    .events = POLLIN };
		if (poll(pf, 3 + nc, timeout) < 0 && errno != EINTR)
			break;
		uint64_t poll_ns = fl_now_mono_ns();
		for (unsigned i = 0; i < nc; i++)
			clients[i].ready = pf[3 + i].revents != 0;
		if (pf[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					fl_info(ADM_SUB, "SIGHUP: reloading "
					    "configuration");
					adm_daemon_apply(ctx);
					adm_services_reload(ctx,
					    ADM_RELOAD_SETTINGS |
					    ADM_RELOAD_EXPORTS |
					    ADM_RELOAD_MIRRORS);
					adm_event(ctx, NULL, "filerd.reload",
					    "configuration reloaded");
				} else {
					fl_info(ADM_SUB, "signal %u: stopping",
					    si.ssi_signo);
					ctx->stopping = 1;
				}
			}
		}
		if (pf[2].revents & POLLIN) {
			uint64_t cnt;

			(void)!read(ctx->wake_fd, &cnt, sizeof(cnt));
		}
		adm_jobs_reap(ctx);
		adm_jobs_keepalive(ctx);
		adm_events_drain(ctx);
		if (ctx->stopping)
			break;
		/* Back to front: serving or dropping client i moves the
		 * last one into its place, which was looked at already. */
		for (unsigned i = nc; i-- > 0;)
			if (pf[3 + i].revents != 0)
				client_readable(ctx, i);
		clients_expire(poll_ns);
		if (pf[0].revents & POLLIN) {
			int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

			if (cfd >= 0)
				client_accept(ctx, cfd);
		}
		adm_sched_run(ctx);
		adm_mirror_tick(ctx);
	}
	status = 0;
	close(lfd);
	while (nclients > 0)
		client_drop(nclients - 1);
	(void)unlink(ctx->sock_path);
	/* Running jobs finish and are answered before anything stops. */
	adm_jobs_wait(ctx, NULL, true);
	adm_jobs_reap(ctx);
out_vols:
	adm_services_stop(ctx);
	adm_vols_stop(ctx);
	fl_log_set_hook(NULL, NULL, FL_LOG_ERR);
	adm_event(ctx, NULL, "filerd.stopped", "filerd stopped");
	adm_events_drain(ctx);
	fl_info(ADM_SUB, "filerd stopped");
out_db:
	if (sfd >= 0)
		close(sfd);
out_lock:
	adm_home_unlock(ctx, true);
out_ctx:
	adm_ctx_fini(ctx);
	free(ctx);
	if (status != 0)
		ready("filerd: startup failed\n");
	return status;
}
