/*
 * tests/bench/bench_nfs.c: the NFS server against NFS-Ganesha, in one run.
 *
 *   build/tests/bench/bench_nfs <outdir>      (make bench)
 *
 * A load generator on libnfs's raw async API: every client is one libnfs
 * context (one TCP connection) with many NFSv3 calls in flight, and all
 * clients are driven by one poll(2) loop, so the client side costs little
 * CPU and never waits on a reply before sending the next call.  The same
 * workloads run against
 *   - filer:   build/filerd on a volume of five sparse disk images (double
 *              parity) under the bench scratch directory, /vol/vol0 exported
 *              to 127.0.0.1 rw, insecure, no root squash, on free ports;
 *   - ganesha: Debian's nfs-ganesha with the VFS FSAL exporting a directory
 *              of the same scratch directory (same disk), NFSv3 only, from
 *              the config template tests/bench/ganesha/ganesha.conf.in.
 *              Ganesha will not start unless it can register with rpcbind,
 *              so it runs in a private network and mount namespace (a child
 *              of this program) with its own rpcbind and loopback; the
 *              workloads for it run in that child, except the 1-client
 *              metadata runs, which alternate with filer's and reach
 *              Ganesha from this process (setns into the child's network
 *              namespace while connecting).  No host-wide rpcbind is
 *              started or touched.  If Ganesha cannot run, the reason is
 *              printed and its figures are recorded as missing (null).
 *
 * Figures (table on stdout, JSON lines appended to <outdir>/nfs.json), each
 * with the Ganesha value and the ratio filer / ganesha:
 *   - metadata mix ops/s, 1 and 16 clients: each in-flight slot loops
 *     CREATE, GETATTR, LOOKUP, REMOVE of its own name in its client's
 *     directory (goal >= 2x); the 1-client figure is the median of three
 *     runs (META1_RUNS), for each server, the two servers' runs taken in
 *     turn (meta1_paired);
 *   - 1 MiB sequential write MiB/s: UNSTABLE WRITEs of a new file, COMMIT
 *     at the end, timed to the COMMIT reply (goal >= 1x);
 *   - 1 MiB sequential read MiB/s of that file (goal >= 1x);
 *   - 4 KiB random read IOPS in that file, 4 clients (goal >= 1x);
 *   - seconds to list a 50k-entry directory with READDIRPLUS, one client,
 *     calls chained by cookie (goal: ratio <= 1);
 *   - p50 and p99 latency of the calls of each workload (goal for p99:
 *     ratio <= 1).
 *
 * Everything stays on 127.0.0.1.  Every process started here (filerctl,
 * filerd, the namespace child, its rpcbind and ganesha.nfsd) is stopped
 * before the end, also on failure (the namespace child and its programs die
 * with this process: PR_SET_PDEATHSIG).  Scratch: $FILER_BENCH_DIR, else
 * <outdir>/../bench-tmp.  $FILER_BENCH_QUICK=1 shrinks sizes and durations;
 * $FILER_BENCH_KEEP=1 keeps the scratch directory (and its logs) even after
 * a clean run.
 *
 * $FILER_BENCH_ONLY=seqwrite runs only filer's sequential write (with its
 * COMMIT): no Ganesha, no other workload, one figure (and its latencies) in
 * the table and the JSON.  It is the cheap way to run that phase many times.
 * $FILER_BENCH_ONLY=filer runs every workload against filer only (Ganesha's
 * figures are recorded as missing).
 * $FILER_BENCH_ONLY=meta runs only filer's metadata mixes (1 and 16
 * clients): the cheap way to compare builds on them.
 * $FILER_BENCH_ONLY=seq runs the sequential write and read against both
 * servers and nothing else: the cheap way to repeat those ratios.
 * $FILER_BENCH_SET="name=value,..." sets filerd settings before it starts
 * (apply_settings).
 *
 * Why a figure is missing is never lost: each reason is printed on stderr
 * when it is found (prefixed "bench_nfs: filer:" or "bench_nfs: ganesha:"),
 * again as a note under the table, and appended to the JSON file as one
 * line {"bench":"nfs","metric":"why missing","server":...,"why":...}; the
 * scratch directory with the servers' logs is then kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>

#include "tests/bench/benchout.h"
#include "tests/bench/devstat.h"
#include "tests/lib/tl_netns.h"
#include "tests/lib/tl_port.h"
#include "tests/lib/tl_proc.h"
#include "tests/lib/tl_tmpdir.h"

#define MiB		(1024.0 * 1024.0)
#define FH_MAX		64		/* NFS3_FHSIZE */
#define MAX_CONNS	16
#define NAME_MAX_LEN	48

static bool quick;
static bool only_seqw;		/* FILER_BENCH_ONLY=seqwrite */
static bool only_filer;		/* FILER_BENCH_ONLY=filer (or seqwrite, meta) */
static bool only_meta;		/* FILER_BENCH_ONLY=meta */
static bool only_seq;		/* FILER_BENCH_ONLY=seq */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double secs(uint64_t a, uint64_t b)
{
	return (double)(b - a) / 1e9;
}

/* ------------------------------------------------------------ results */

enum fig {
	FIG_META1, FIG_META16, FIG_SEQW, FIG_SEQR, FIG_RANDR, FIG_LIST,
	FIG_COUNT
};

static const struct {
	const char *name, *unit;
	bool lower_is_better;
	double goal;		/* on filer / ganesha */
} fig_def[FIG_COUNT] = {
	[FIG_META1]  = { "meta mix, 1 client", "ops/s", false, 2.0 },
	[FIG_META16] = { "meta mix, 16 clients", "ops/s", false, 2.0 },
	[FIG_SEQW]   = { "1M seq write+COMMIT", "MiB/s", false, 1.0 },
	[FIG_SEQR]   = { "1M seq read", "MiB/s", false, 1.0 },
	[FIG_RANDR]  = { "4K random read", "IOPS", false, 1.0 },
	[FIG_LIST]   = { "READDIRPLUS 50k dir", "s", true, 1.0 },
};

struct figure {
	bool ok;
	double value;
	double p50_us, p99_us;
	uint64_t calls;
};

/*
 * The 1-client metadata mix runs this many times (quick: once) and its
 * figure is the median run's: single 5 s runs of it moved by a third
 * with the machine (docs/bench.md), more than the goal's margin.
 */
#define META1_RUNS	3

/* What one server's run produced.  Lives in a MAP_SHARED mapping so the
 * namespace child can fill it in for the parent. */
struct suite {
	const char *name;	/* "filer" or "ganesha" (a literal) */
	struct figure f[FIG_COUNT];
	char why[512];		/* empty, or why figures are missing */
	bool started;		/* the server was started (logs to keep) */
	uint32_t dir_entries;
	double fill_rate;	/* CREATEs/s filling the listed directory */
	double meta1_runs[META1_RUNS];	/* each 1-client mix, ops/s */
	int meta1_n;
	double settle_max;	/* longest wait for a quiet disk, s */
	char peer_fs[256];	/* Ganesha's export: what it is (ganesha_fs) */
	bool peer_fs_ok;
	int settles, settle_late;	/* waits; those that timed out */
};

static void suite_why(struct suite *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void suite_why(struct suite *s, const char *fmt, ...)
{
	va_list ap;
	size_t n = strlen(s->why);

	if (n != 0 && n + 2 < sizeof(s->why)) {
		strcpy(s->why + n, "; ");
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(s->why + n, sizeof(s->why) - n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "bench_nfs: %s: %s\n", s->name, s->why + n);
	fflush(stderr);
}

/* ------------------------------------------------------------ latency */

struct lat {
	uint64_t *ns;
	size_t n, cap;
};

static void lat_add(struct lat *l, uint64_t ns)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 65536;
		uint64_t *p = realloc(l->ns, cap * sizeof(*p));

		if (p == NULL)
			return;		/* a sample fewer, not a crash */
		l->ns = p;
		l->cap = cap;
	}
	l->ns[l->n++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* p in [0, 1]; microseconds.  Sorts l. */
static double lat_pct_us(struct lat *l, double p)
{
	size_t i;

	if (l->n == 0)
		return NAN;
	qsort(l->ns, l->n, sizeof(*l->ns), cmp_u64);
	i = (size_t)(p * (double)(l->n - 1) + 0.5);
	return (double)l->ns[i] / 1000.0;
}

/* ------------------------------------------------------------ clients */

struct fh {
	uint32_t len;
	char data[FH_MAX];
};

static void fh_set(struct fh *d, const char *val, uint32_t len)
{
	d->len = len < FH_MAX ? len : FH_MAX;
	memcpy(d->data, val, d->len);
}

/* A borrowed nfs_fh3 view of f (valid while f lives). */
static nfs_fh3 fh3(struct fh *f)
{
	nfs_fh3 r;

	r.data.data_len = f->len;
	r.data.data_val = f->data;
	return r;
}

struct server {
	const char *name;
	char host[64];
	char export[PATH_MAX];
	unsigned nfs_port, mnt_port;
	int netns;		/* -1, or the network namespace it is in */
};

/* This process's own network namespace, to come back to (conn_open). */
static int host_netns = -1;

struct conn {
	struct nfs_context *nfs;
	struct rpc_context *rpc;
};

static int conn_open(struct conn *c, const struct server *sv, char *err,
    size_t errlen)
{
	char url[PATH_MAX + 200];
	struct nfs_url *u;
	int rc;

	memset(c, 0, sizeof(*c));
	c->nfs = nfs_init_context();
	if (c->nfs == NULL) {
		snprintf(err, errlen, "nfs_init_context failed");
		return -ENOMEM;
	}
	nfs_set_timeout(c->nfs, 30000);
	nfs_set_dircache(c->nfs, 0);
	nfs_set_uid(c->nfs, 0);
	nfs_set_gid(c->nfs, 0);
	snprintf(url, sizeof(url), "nfs://%s%s?nfsport=%u&mountport=%u&version=3",
	    sv->host, sv->export, sv->nfs_port, sv->mnt_port);
	u = nfs_parse_url_dir(c->nfs, url);
	if (u == NULL) {
		snprintf(err, errlen, "bad url %.300s: %s", url,
		    nfs_get_error(c->nfs));
		nfs_destroy_context(c->nfs);
		c->nfs = NULL;
		return -EINVAL;
	}
	/* A server in another namespace (Ganesha, seen from the parent in
	 * the paired runs): the sockets are made there and stay there. */
	if (sv->netns >= 0 && setns(sv->netns, CLONE_NEWNET) != 0) {
		snprintf(err, errlen, "setns to %s's network namespace: %s",
		    sv->name, strerror(errno));
		nfs_destroy_url(u);
		nfs_destroy_context(c->nfs);
		c->nfs = NULL;
		return -errno;
	}
	rc = nfs_mount(c->nfs, u->server, u->path);
	nfs_destroy_url(u);
	if (sv->netns >= 0 && setns(host_netns, CLONE_NEWNET) != 0) {
		perror("bench_nfs: setns back to the host namespace");
		exit(1);	/* the filer's connections would go astray */
	}
	if (rc != 0) {
		snprintf(err, errlen, "mount %s:%.200s: %s", sv->host, sv->export,
		    nfs_get_error(c->nfs));
		nfs_destroy_context(c->nfs);
		c->nfs = NULL;
		return -EIO;
	}
	c->rpc = nfs_get_rpc_context(c->nfs);
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->nfs != NULL)
		nfs_destroy_context(c->nfs);
	c->nfs = NULL;
	c->rpc = NULL;
}

/*
 * libnfs 4.0 returns the handle of an open file as struct nfs_fh but does
 * not publish the type; its layout (libnfs-private.h) is mirrored here and
 * the length checked before use.
 */
struct libnfs_fh {
	int len;
	char *val;
};

/* The handle of path (a file or directory) through the high-level API. */
static int path_fh(struct conn *c, const char *path, struct fh *out,
    char *err, size_t errlen)
{
	struct nfsfh *h = NULL;
	const struct libnfs_fh *f;

	if (nfs_open(c->nfs, path, O_RDONLY, &h) != 0) {
		snprintf(err, errlen, "open %s: %s", path,
		    nfs_get_error(c->nfs));
		return -EIO;
	}
	f = (const struct libnfs_fh *)nfs_get_fh(h);
	if (f == NULL || f->len <= 0 || f->len > FH_MAX || f->val == NULL) {
		snprintf(err, errlen, "open %s: unexpected handle", path);
		nfs_close(c->nfs, h);
		return -EPROTO;
	}
	fh_set(out, f->val, (uint32_t)f->len);
	nfs_close(c->nfs, h);
	return 0;
}

/* ------------------------------------------------------------ the engine */

struct load;

/* One call in flight at a time; a workload keeps many slots busy. */
struct slot {
	struct load *ld;
	struct conn *c;
	int id;
	int state;
	uint32_t seq;
	uint64_t t0;
	uint64_t off;
	char name[NAME_MAX_LEN];
	struct fh fh;
	struct fh *dir;
};

struct load {
	struct conn *conns;
	int nconn;
	struct slot *slots;
	int nslots;
	int active;		/* slots with a call in flight */
	uint64_t t_start, t_stop;	/* t_stop: no new calls after it */
	uint64_t t_last;	/* last reply */
	uint64_t ops, bytes;
	struct lat lat;
	FILE *trace;		/* FILER_BENCH_TRACE: one line per reply */
	bool failed;
	char err[384];
	/* workload parameters */
	struct fh *dirs;	/* per connection */
	struct fh file;
	uint64_t size, next_off;
	uint64_t total;		/* sequential read: bytes in all passes */
	uint32_t iosize;
	uint32_t count, next_idx;	/* dir fill: names 0..count-1 */
	uint64_t rng;
	uint64_t cookie;
	char verf[NFS3_COOKIEVERFSIZE];
	bool eof;
	/* next call of s after a reply (data: the XXX3res); false: retire */
	bool (*next)(struct slot *s, void *res);
};

static void load_fail(struct load *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void load_fail(struct load *ld, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ld->failed)
		return;
	ld->failed = true;
	va_start(ap, fmt);
	n = vsnprintf(ld->err, sizeof(ld->err), fmt, ap);
	va_end(ap);
	/* When, and how far the load had got: to match with the server's
	 * log. */
	if (n >= 0 && (size_t)n < sizeof(ld->err))
		snprintf(ld->err + n, sizeof(ld->err) - (size_t)n,
		    " (%.3f s into the load, %llu replies, %d calls in flight)",
		    ld->t_start ? secs(ld->t_start, now_ns()) : 0.0,
		    (unsigned long long)ld->ops, ld->active);
}

static void slot_cb(struct rpc_context *rpc, int status, void *data,
    void *priv)
{
	struct slot *s = priv;
	struct load *ld = s->ld;
	uint64_t t = now_ns();

	ld->active--;
	if (status != RPC_STATUS_SUCCESS) {
		/* Which call, and how long it was out (libnfs's timeout is
		 * 30 s, conn_open). */
		load_fail(ld, "rpc %s%s%s, slot %d state %d offset %llu, "
		    "queued %.3f s before", status == RPC_STATUS_CANCEL ?
		    "cancelled" : status == RPC_STATUS_TIMEOUT ? "timeout" :
		    "error", status == RPC_STATUS_ERROR && data ? ": " : "",
		    status == RPC_STATUS_ERROR && data ? (const char *)data :
		    "", s->id, s->state, (unsigned long long)s->off,
		    secs(s->t0, t));
		return;
	}
	ld->t_last = t;
	lat_add(&ld->lat, t - s->t0);
	if (ld->trace != NULL)
		fprintf(ld->trace, "%.3f %.3f %llu\n",
		    (double)(s->t0 - ld->t_start) / 1e6,
		    (double)(t - s->t0) / 1e6, (unsigned long long)s->off);
	ld->ops++;
	/* Every XXX3res starts with its nfsstat3. */
	if (*(const nfsstat3 *)data != NFS3_OK) {
		load_fail(ld, "slot %d state %d: nfsstat3 %d", s->id, s->state,
		    (int)*(const nfsstat3 *)data);
		return;
	}
	if (ld->failed)
		return;
	if (ld->next(s, data))
		return;
}

/* Queue the call; the caller sets s->state first.  false: not queued. */
#define ISSUE(s, fn, args) issue((s), fn((s)->c->rpc, slot_cb, (args), (s)))
static bool issue(struct slot *s, int rc)
{
	if (rc != 0) {
		load_fail(s->ld, "queueing a call failed: %s",
		    rpc_get_error(s->c->rpc));
		return false;
	}
	s->ld->active++;
	return true;
}

static void load_start(struct load *ld, struct conn *conns, int nconn,
    int depth)
{
	ld->conns = conns;
	ld->nconn = nconn;
	ld->nslots = nconn * depth;
	ld->slots = calloc((size_t)ld->nslots, sizeof(*ld->slots));
	if (ld->slots == NULL) {
		perror("bench_nfs: calloc");
		exit(1);
	}
	for (int i = 0; i < ld->nslots; i++) {
		struct slot *s = &ld->slots[i];

		s->ld = ld;
		s->id = i;
		s->c = &conns[i % nconn];
		s->dir = ld->dirs != NULL ? &ld->dirs[i % nconn] : NULL;
	}
	ld->t_start = now_ns();
	ld->t_last = ld->t_start;
}

/*
 * Serve every connection until no call is in flight.  Bounded: 60 s
 * without any reply (counted from t_stop for a timed load, so its calls
 * still in flight get their time) fails the load.  The bound is on the
 * gap, not on the whole load: a long load that keeps getting replies (a
 * slow sequential write on a loaded machine) is not cut short.
 */
static void load_wait(struct load *ld)
{
	struct pollfd pfd[MAX_CONNS];
	uint64_t t_wait = now_ns();

	while (ld->active > 0) {
		uint64_t since = ld->t_last > t_wait ? ld->t_last : t_wait;

		if (ld->t_stop > since)
			since = ld->t_stop;
		if (now_ns() > since + 60ull * 1000000000ull) {
			load_fail(ld, "no reply for 60 s");
			return;
		}
		for (int i = 0; i < ld->nconn; i++) {
			pfd[i].fd = rpc_get_fd(ld->conns[i].rpc);
			pfd[i].events = (short)rpc_which_events(ld->conns[i].rpc);
			pfd[i].revents = 0;
		}
		if (poll(pfd, (nfds_t)ld->nconn, 100) < 0 && errno != EINTR) {
			load_fail(ld, "poll: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < ld->nconn; i++) {
			if (rpc_service(ld->conns[i].rpc, pfd[i].revents) < 0) {
				load_fail(ld, "connection %d: %s", i,
				    rpc_get_error(ld->conns[i].rpc));
				return;
			}
		}
	}
}

static bool time_up(const struct slot *s)
{
	return now_ns() >= s->ld->t_stop;
}

/* Calls still in flight (a failed load) are cancelled by closing the
 * load's connections first: their callbacks run now, while the slots
 * exist. */
static void load_free(struct load *ld)
{
	if (ld->active > 0)
		for (int i = 0; i < ld->nconn; i++)
			conn_close(&ld->conns[i]);
	free(ld->slots);
	free(ld->lat.ns);
	ld->slots = NULL;
	ld->lat.ns = NULL;
}

/* Fill fig from a finished load: value is computed by the caller. */
static void load_figure(struct load *ld, struct figure *fig, double value)
{
	fig->ok = !ld->failed;
	fig->value = value;
	fig->calls = ld->ops;
	fig->p50_us = lat_pct_us(&ld->lat, 0.50);
	fig->p99_us = lat_pct_us(&ld->lat, 0.99);
}

/* ------------------------------------------------------------ workloads */

static sattr3 mode_attr(uint32_t mode)
{
	sattr3 a;

	memset(&a, 0, sizeof(a));
	a.mode.set_it = 1;
	a.mode.set_mode3_u.mode = mode;
	return a;
}

/* Metadata mix: CREATE, GETATTR, LOOKUP, REMOVE of the slot's own name. */
static bool meta_next(struct slot *s, void *res)
{
	nfs_fh3 dir = fh3(s->dir);

	switch (s->state) {
	case 0: {	/* CREATE done: keep the handle */
		CREATE3resok *ok = &((CREATE3res *)res)->CREATE3res_u.resok;

		if (!ok->obj.handle_follows) {
			load_fail(s->ld, "CREATE returned no handle");
			return false;
		}
		fh_set(&s->fh, ok->obj.post_op_fh3_u.handle.data.data_val,
		    ok->obj.post_op_fh3_u.handle.data.data_len);
		GETATTR3args a = { .object = fh3(&s->fh) };
		s->state = 1;
		s->t0 = now_ns();
		return ISSUE(s, rpc_nfs3_getattr_async, &a);
	}
	case 1: {
		LOOKUP3args a = { .what = { dir, s->name } };
		s->state = 2;
		s->t0 = now_ns();
		return ISSUE(s, rpc_nfs3_lookup_async, &a);
	}
	case 2: {
		REMOVE3args a = { .object = { dir, s->name } };
		s->state = 3;
		s->t0 = now_ns();
		return ISSUE(s, rpc_nfs3_remove_async, &a);
	}
	default:
		break;
	}
	/* REMOVE done (or the first call): a new name. */
	if (time_up(s))
		return false;
	CREATE3args a;
	memset(&a, 0, sizeof(a));
	snprintf(s->name, sizeof(s->name), "m%d.%u", s->id, s->seq++);
	a.where.dir = dir;
	a.where.name = s->name;
	a.how.mode = GUARDED;
	a.how.createhow3_u.obj_attributes = mode_attr(0644);
	s->state = 0;
	s->t0 = now_ns();
	return ISSUE(s, rpc_nfs3_create_async, &a);
}

static char *io_buf;		/* 1 MiB of non-zero bytes */
static const char *scratch_dir;	/* the scratch directory, on the disk */
/* Ganesha's file system when it has one (ganesha_fs): in the child its
 * export, in the parent the same seen through /proc/PID/root. */
static const char *peer_fs;

/*
 * Before each timed phase: what the phases before it left dirty (this
 * server's or the other's) is written back and the disk is idle, so that
 * no figure pays for another's writeback (devstat.h).  Bounded: a disk
 * still busy after SETTLE_MAX_S is counted and the phase runs anyway.
 */
#define SETTLE_QUIET_S	0.3
#define SETTLE_MAX_S	20.0

static void settle(struct suite *out)
{
	double s;

	if (peer_fs != NULL) {
		/* Ganesha's own file system (ganesha_fs) writes back too. */
		int fd = open(peer_fs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd >= 0) {
			(void)syncfs(fd);
			close(fd);
		}
	}
	s = devstat_settle(scratch_dir, SETTLE_QUIET_S, SETTLE_MAX_S);

	out->settles++;
	if (s < 0)
		out->settle_late++;
	else if (s > out->settle_max)
		out->settle_max = s;
}

/* The sequential read reads the file this many times: at 2 to 3 GB/s
 * one pass of 512 MiB took under 0.3 s and gave 512 latencies, too few
 * for a steady rate or p99. */
#define SEQR_PASSES	4

static bool seqw_next(struct slot *s, void *res)
{
	struct load *ld = s->ld;
	WRITE3args a;

	if (res != NULL) {
		WRITE3resok *ok = &((WRITE3res *)res)->WRITE3res_u.resok;

		if (ok->count != ld->iosize) {
			load_fail(ld, "short WRITE: %u of %u", ok->count,
			    ld->iosize);
			return false;
		}
		ld->bytes += ok->count;
	}
	if (ld->next_off >= ld->size)
		return false;
	memset(&a, 0, sizeof(a));
	a.file = fh3(&ld->file);
	a.offset = ld->next_off;
	a.count = ld->iosize;
	a.stable = UNSTABLE;
	a.data.data_len = ld->iosize;
	a.data.data_val = io_buf;
	ld->next_off += ld->iosize;
	s->off = a.offset;
	s->t0 = now_ns();
	return ISSUE(s, rpc_nfs3_write_async, &a);
}

static bool commit_next(struct slot *s, void *res)
{
	COMMIT3args a;

	if (res != NULL)
		return false;
	memset(&a, 0, sizeof(a));
	a.file = fh3(&s->ld->file);
	s->t0 = now_ns();
	return ISSUE(s, rpc_nfs3_commit_async, &a);
}

static bool seqr_next(struct slot *s, void *res)
{
	struct load *ld = s->ld;
	READ3args a;

	if (res != NULL) {
		READ3resok *ok = &((READ3res *)res)->READ3res_u.resok;

		if (ok->count != ld->iosize) {
			load_fail(ld, "short READ: %u of %u", ok->count,
			    ld->iosize);
			return false;
		}
		ld->bytes += ok->count;
	}
	if (ld->next_off >= ld->total)
		return false;
	memset(&a, 0, sizeof(a));
	a.file = fh3(&ld->file);
	a.offset = ld->next_off % ld->size;	/* pass after pass */
	a.count = ld->iosize;
	ld->next_off += ld->iosize;
	s->off = a.offset;
	s->t0 = now_ns();
	return ISSUE(s, rpc_nfs3_read_async, &a);
}

static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static bool randr_next(struct slot *s, void *res)
{
	struct load *ld = s->ld;
	READ3args a;

	if (res != NULL) {
		READ3resok *ok = &((READ3res *)res)->READ3res_u.resok;

		if (ok->count != ld->iosize) {
			load_fail(ld, "short READ: %u of %u", ok->count,
			    ld->iosize);
			return false;
		}
		ld->bytes += ok->count;
	}
	if (time_up(s))
		return false;
	memset(&a, 0, sizeof(a));
	a.file = fh3(&ld->file);
	a.offset = (rng_next(&ld->rng) % (ld->size / ld->iosize)) * ld->iosize;
	a.count = ld->iosize;
	s->t0 = now_ns();
	return ISSUE(s, rpc_nfs3_read_async, &a);
}

/* Fill a directory: CREATE names f000000 .. count-1. */
static bool fill_next(struct slot *s, void *res)
{
	struct load *ld = s->ld;
	CREATE3args a;

	if (ld->next_idx >= ld->count)
		return false;
	memset(&a, 0, sizeof(a));
	snprintf(s->name, sizeof(s->name), "f%06u", ld->next_idx++);
	a.where.dir = fh3(s->dir);
	a.where.name = s->name;
	a.how.mode = GUARDED;
	a.how.createhow3_u.obj_attributes = mode_attr(0644);
	s->t0 = now_ns();
	return ISSUE(s, rpc_nfs3_create_async, &a);
}

/* List a directory: READDIRPLUS chained by cookie, one call at a time. */
static bool list_next(struct slot *s, void *res)
{
	struct load *ld = s->ld;
	READDIRPLUS3args a;

	if (res != NULL) {
		READDIRPLUS3resok *ok =
		    &((READDIRPLUS3res *)res)->READDIRPLUS3res_u.resok;
		const void *p;
		entryplus3 e;

		/* libnfs packs the decoded entries without regard to their
		 * alignment: each is copied out before use. */
		memcpy(ld->verf, ok->cookieverf, sizeof(ld->verf));
		for (p = ok->reply.entries; p != NULL; p = e.nextentry) {
			memcpy(&e, p, sizeof(e));
			if (strcmp(e.name, ".") != 0 &&
			    strcmp(e.name, "..") != 0)
				ld->next_idx++;
			if (!e.name_attributes.attributes_follow ||
			    !e.name_handle.handle_follows) {
				load_fail(ld, "READDIRPLUS entry %s without "
				    "attributes or handle", e.name);
				return false;
			}
			ld->cookie = e.cookie;
		}
		if (ok->reply.eof)
			return false;
		if (ok->reply.entries == NULL) {
			load_fail(ld, "READDIRPLUS: no entries, no eof");
			return false;
		}
	}
	memset(&a, 0, sizeof(a));
	a.dir = fh3(s->dir);
	a.cookie = ld->cookie;
	memcpy(a.cookieverf, ld->verf, sizeof(a.cookieverf));
	a.dircount = 16384;
	a.maxcount = 65536;
	s->t0 = now_ns();
	return ISSUE(s, rpc_nfs3_readdirplus_async, &a);
}

/* Open n connections; 0 or -errno with why filled in. */
static int conns_open(struct conn *c, int n, const struct server *sv,
    struct suite *out)
{
	char err[512];

	for (int i = 0; i < n; i++) {
		if (conn_open(&c[i], sv, err, sizeof(err)) != 0) {
			suite_why(out, "%s", err);
			while (i-- > 0)
				conn_close(&c[i]);
			return -EIO;
		}
	}
	return 0;
}

static void conns_close(struct conn *c, int n)
{
	for (int i = 0; i < n; i++)
		conn_close(&c[i]);
}

static void meta_mix(const struct server *sv, int clients, int depth,
    int run, double dur, struct figure *fig, struct suite *out)
{
	struct conn c[MAX_CONNS];
	struct fh dirs[MAX_CONNS];
	struct load ld;
	char path[128], err[512];

	memset(&ld, 0, sizeof(ld));
	if (conns_open(c, clients, sv, out) != 0)
		return;
	for (int i = 0; i < clients; i++) {
		snprintf(path, sizeof(path), "/b/m%d-%d-%d", clients, run, i);
		if (nfs_mkdir(c[i].nfs, path) != 0 ||
		    path_fh(&c[i], path, &dirs[i], err, sizeof(err)) != 0) {
			suite_why(out, "mkdir %s: %s", path,
			    nfs_get_error(c[i].nfs));
			goto out;
		}
	}
	ld.dirs = dirs;
	ld.next = meta_next;
	load_start(&ld, c, clients, depth);
	ld.t_stop = ld.t_start + (uint64_t)(dur * 1e9);
	for (int i = 0; i < ld.nslots; i++) {
		ld.slots[i].state = 3;
		if (!meta_next(&ld.slots[i], NULL))
			break;
	}
	load_wait(&ld);
	load_figure(&ld, fig, (double)ld.ops / secs(ld.t_start, ld.t_last));
	if (ld.failed)
		suite_why(out, "%s: %s", fig_def[clients == 1 ? FIG_META1 :
		    FIG_META16].name, ld.err);
out:
	conns_close(c, clients);
	load_free(&ld);
}

/* One 1-client mix, run r: into runs[r], and its rate into out's list. */
static void meta1_run(const struct server *sv, int r, double dur,
    struct figure *runs, struct suite *out)
{
	memset(&runs[r], 0, sizeof(runs[r]));
	settle(out);
	meta_mix(sv, 1, 16, r, dur, &runs[r], out);
	if (runs[r].ok && out->meta1_n < META1_RUNS)
		out->meta1_runs[out->meta1_n++] = runs[r].value;
}

/* The figure of n runs: the median good run's, its latencies with it. */
static void meta1_pick(const struct figure *runs, int n, struct suite *out)
{
	int idx[META1_RUNS], ok = 0;

	for (int r = 0; r < n; r++)
		if (runs[r].ok)
			idx[ok++] = r;
	if (ok == 0)
		return;
	/* Sort the indexes of the good runs by value (at most three). */
	for (int i = 1; i < ok; i++)
		for (int j = i; j > 0 && runs[idx[j]].value <
		    runs[idx[j - 1]].value; j--) {
			int t = idx[j];

			idx[j] = idx[j - 1];
			idx[j - 1] = t;
		}
	out->f[FIG_META1] = runs[idx[(ok - 1) / 2]];
}

/* The 1-client mix META1_RUNS times (quick: once) against one server. */
static void meta1_median(const struct server *sv, double dur,
    struct suite *out)
{
	struct figure runs[META1_RUNS];
	int n = quick ? 1 : META1_RUNS;

	for (int r = 0; r < n; r++)
		meta1_run(sv, r, dur, runs, out);
	meta1_pick(runs, n, out);
}

/*
 * The 1-client mix against both servers in turn: filer's run r, then
 * Ganesha's run r.  Run one server after the other, the two sets of runs
 * lay a minute apart, and each server's figure moved by up to four times
 * with what else the machine's host ran; alternated, each pair of runs
 * sees the same machine.  Both servers are up the whole time; the one
 * not measured is idle.
 */
static void meta1_paired(const struct server *f, struct suite *fo,
    const struct server *g, struct suite *go)
{
	struct figure fr[META1_RUNS], gr[META1_RUNS];
	int n = quick ? 1 : META1_RUNS;
	double dur = quick ? 1.0 : 5.0;

	printf("  filer and ganesha in turn: metadata mix, 1 client...\n");
	fflush(stdout);
	for (int r = 0; r < n; r++) {
		meta1_run(f, r, dur, fr, fo);
		meta1_run(g, r, dur, gr, go);
	}
	meta1_pick(fr, n, fo);
	meta1_pick(gr, n, go);
}

/* Run ld over the given slots count from a fresh start. */
static void run_slots(struct load *ld, struct conn *c, int nconn, int depth)
{
	load_start(ld, c, nconn, depth);
	for (int i = 0; i < ld->nslots; i++)
		if (!ld->next(&ld->slots[i], NULL))
			break;
	load_wait(ld);
}

static void data_figures(const struct server *sv, struct suite *out)
{
	struct conn c[4];
	struct load ld;
	uint64_t size = (quick ? 32ull : 512ull) << 20;
	double dur = quick ? 1.0 : 5.0;
	uint64_t t0;
	char err[512];
	struct fh file;

	if (conns_open(c, 4, sv, out) != 0)
		return;
	{
		struct nfsfh *h = NULL;

		if (nfs_creat(c[0].nfs, "/b/seq", 0644, &h) != 0) {
			suite_why(out, "create /b/seq: %s",
			    nfs_get_error(c[0].nfs));
			goto out;
		}
		nfs_close(c[0].nfs, h);
	}

	/* Sequential write, 8 in flight, COMMIT at the end. */
	memset(&ld, 0, sizeof(ld));
	if (path_fh(&c[0], "/b/seq", &ld.file, err, sizeof(err)) != 0) {
		suite_why(out, "%s", err);
		goto out;
	}
	ld.size = size;
	ld.iosize = 1 << 20;
	ld.next = seqw_next;
	if (getenv("FILER_BENCH_TRACE") != NULL)
		ld.trace = fopen(getenv("FILER_BENCH_TRACE"), "a");
	settle(out);
	run_slots(&ld, c, 1, 8);
	if (ld.trace != NULL)
		fclose(ld.trace);
	ld.trace = NULL;
	t0 = ld.t_start;
	file = ld.file;
	if (!ld.failed) {
		struct load cm;

		memset(&cm, 0, sizeof(cm));
		cm.file = ld.file;
		cm.next = commit_next;
		run_slots(&cm, c, 1, 1);
		if (cm.failed)
			load_fail(&ld, "COMMIT: %s", cm.err);
		else
			lat_add(&ld.lat, cm.lat.ns[0]);
		ld.t_last = cm.t_last;
		load_free(&cm);
	}
	load_figure(&ld, &out->f[FIG_SEQW],
	    (double)ld.bytes / MiB / secs(t0, ld.t_last));
	if (ld.failed)
		suite_why(out, "seq write: %s", ld.err);
	load_free(&ld);
	if (!out->f[FIG_SEQW].ok || only_seqw)
		goto out;

	/* Sequential read, 8 in flight, SEQR_PASSES times over the file. */
	memset(&ld, 0, sizeof(ld));
	ld.file = file;
	ld.size = size;
	ld.total = SEQR_PASSES * size;
	ld.iosize = 1 << 20;
	ld.next = seqr_next;
	settle(out);
	run_slots(&ld, c, 1, 8);
	load_figure(&ld, &out->f[FIG_SEQR],
	    (double)ld.bytes / MiB / secs(ld.t_start, ld.t_last));
	if (ld.failed)
		suite_why(out, "seq read: %s", ld.err);
	load_free(&ld);
	if (!out->f[FIG_SEQR].ok || only_seq)
		goto out;

	/* 4 KiB random reads: 4 clients, 16 in flight each. */
	memset(&ld, 0, sizeof(ld));
	ld.file = file;
	ld.size = size;
	ld.iosize = 4096;
	ld.rng = 0x9e3779b97f4a7c15ull;
	ld.next = randr_next;
	settle(out);	/* before t_stop: the wait is not the run's */
	ld.t_stop = now_ns() + (uint64_t)(dur * 1e9);
	run_slots(&ld, c, 4, 16);
	load_figure(&ld, &out->f[FIG_RANDR],
	    (double)ld.ops / secs(ld.t_start, ld.t_last));
	if (ld.failed)
		suite_why(out, "random read: %s", ld.err);
	load_free(&ld);
out:
	conns_close(c, 4);
}

static void dir_listing(const struct server *sv, struct suite *out)
{
	struct conn c[4];
	struct fh dir;
	struct load ld;
	uint32_t n = quick ? 5000 : 50000;
	char err[512];

	if (conns_open(c, 4, sv, out) != 0)
		return;
	if (nfs_mkdir(c[0].nfs, "/b/big") != 0 ||
	    path_fh(&c[0], "/b/big", &dir, err, sizeof(err)) != 0) {
		suite_why(out, "mkdir /b/big: %s", nfs_get_error(c[0].nfs));
		goto out;
	}
	/* Fill (not a figure): 4 clients, 16 in flight each. */
	struct fh dirs[4] = { dir, dir, dir, dir };
	memset(&ld, 0, sizeof(ld));
	ld.dirs = dirs;
	ld.count = n;
	ld.next = fill_next;
	run_slots(&ld, c, 4, 16);
	out->fill_rate = (double)ld.ops / secs(ld.t_start, ld.t_last);
	if (ld.failed) {
		suite_why(out, "filling /b/big: %s", ld.err);
		load_free(&ld);
		goto out;
	}
	load_free(&ld);
	conns_close(c, 4);

	/* The listing, on a fresh connection. */
	if (conns_open(c, 1, sv, out) != 0)
		return;
	memset(&ld, 0, sizeof(ld));
	ld.dirs = &dir;
	ld.next = list_next;
	settle(out);
	run_slots(&ld, c, 1, 1);
	load_figure(&ld, &out->f[FIG_LIST], secs(ld.t_start, ld.t_last));
	out->dir_entries = ld.next_idx;
	if (!ld.failed && ld.next_idx != n) {
		out->f[FIG_LIST].ok = false;
		suite_why(out, "listing: %u entries, expected %u", ld.next_idx,
		    n);
	}
	if (ld.failed)
		suite_why(out, "listing: %s", ld.err);
	load_free(&ld);
	conns_close(c, 1);
	return;
out:
	conns_close(c, 4);
}

/* The directory every workload works in, /b in the export (made by
 * pair_with or by the suite); false (why in out) if it cannot be made. */
static bool base_dir(const struct server *sv, struct suite *out)
{
	struct nfs_stat_64 st;
	struct conn c;
	char err[512];

	if (conn_open(&c, sv, err, sizeof(err)) != 0) {
		suite_why(out, "%s", err);
		return false;
	}
	if (nfs_mkdir(c.nfs, "/b") != 0 &&
	    (nfs_stat64(c.nfs, "/b", &st) != 0 || !S_ISDIR(st.nfs_mode))) {
		suite_why(out, "mkdir /b: %s", nfs_get_error(c.nfs));
		conn_close(&c);
		return false;
	}
	conn_close(&c);
	return true;
}

/* The 1-client mixes ran paired (meta1_paired) before the suites. */
static bool meta1_done;

/* Every workload against one server; what fails is noted in out->why. */
static void run_suite(const struct server *sv, struct suite *out)
{
	double dur = quick ? 1.0 : 5.0;

	if (!base_dir(sv, out))
		return;
	if (only_seqw) {
		printf("  %s: sequential write...\n", sv->name);
		fflush(stdout);
		data_figures(sv, out);
		return;
	}
	if (only_seq) {
		printf("  %s: sequential write and read...\n", sv->name);
		fflush(stdout);
		data_figures(sv, out);
		return;
	}
	printf("  %s: metadata mix...\n", sv->name);
	fflush(stdout);
	if (!meta1_done)
		meta1_median(sv, dur, out);
	settle(out);
	meta_mix(sv, 16, 8, 0, dur, &out->f[FIG_META16], out);
	if (only_meta)
		return;
	printf("  %s: sequential and random I/O...\n", sv->name);
	fflush(stdout);
	data_figures(sv, out);
	printf("  %s: directory listing...\n", sv->name);
	fflush(stdout);
	dir_listing(sv, out);
}

/* ------------------------------------------------------------ processes */

static char bindir[PATH_MAX];	/* build/tests/bench */

/* Run argv to its end (bounded: 120 s); its exit status. */
static int run_prog(char *const argv[], const char *log)
{
	pid_t pid = tl_spawn(argv, log);
	int st;

	if (pid < 0)
		return -1;
	st = tl_wait_exit(pid, 120000);
	if (st < 0) {
		tl_stop(pid, 5000);
		return -1;
	}
	return st;
}

/* Both ports accept, within ms, while pid runs?  false: why set. */
static bool wait_ports(pid_t pid, unsigned p1, unsigned p2, long ms,
    const char *what, const char *log, struct suite *out)
{
	for (long t = 0; t < ms; t += 50) {
		if (tl_port_open(p1) && (p2 == 0 || tl_port_open(p2)))
			return true;
		int st = tl_wait_exit(pid, 0);
		if (st >= 0) {
			suite_why(out, "%s exited with status %d at startup "
			    "(log: %s)", what, st, log);
			return false;
		}
		tl_sleep_ms(50);
	}
	suite_why(out, "%s did not listen within %ld s (log: %s)", what,
	    ms / 1000, log);
	return false;
}

/* Two distinct ports free for TCP and UDP (tl_port.h); 0 if none. */
static void free_ports(unsigned *a, unsigned *b)
{
	uint16_t p[2] = { 0, 0 };

	(void)tl_free_ports(p, 2);
	*a = p[0];
	*b = p[1];
}

/* ------------------------------------------------------------ filerd */

static int filerctl(const char *home, const char *log, ...)
{
	char prog[PATH_MAX + 32];
	char *argv[32];
	int n = 0;
	va_list ap;

	snprintf(prog, sizeof(prog), "%s/../../filerctl", bindir);
	argv[n++] = prog;
	argv[n++] = (char *)"--home";
	argv[n++] = (char *)home;
	va_start(ap, log);
	for (char *a; n < 31 && (a = va_arg(ap, char *)) != NULL;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	return run_prog(argv, log);
}

/*
 * $FILER_BENCH_SET="name=value[,name=value...]": filerd settings applied
 * with `filerctl config set` before filerd starts (e.g.
 * dirty_max_bytes=256M), to measure a setting's effect.  Each is noted
 * with the results.
 */
static int apply_settings(const char *home, const char *log,
    struct suite *out)
{
	const char *env = getenv("FILER_BENCH_SET");
	char buf[512], *save = NULL;

	if (env == NULL || *env == '\0')
		return 0;
	if (strlen(env) >= sizeof(buf)) {
		suite_why(out, "FILER_BENCH_SET: longer than %zu bytes",
		    sizeof(buf) - 1);
		return -1;
	}
	strcpy(buf, env);
	for (char *kv = strtok_r(buf, ",", &save); kv != NULL;
	    kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		if (eq == NULL || eq == kv || eq[1] == '\0') {
			suite_why(out, "FILER_BENCH_SET: '%s' is not "
			    "name=value", kv);
			return -1;
		}
		*eq = '\0';
		if (filerctl(home, log, "config", "set", kv, eq + 1,
		    NULL) != 0) {
			suite_why(out, "FILER_BENCH_SET: filerctl config set "
			    "%s %s failed (log: %s)", kv, eq + 1, log);
			return -1;
		}
	}
	return 0;
}

/*
 * Ganesha, up in its child (ganesha_launch), for the paired runs: the
 * child sends its struct server once Ganesha answers, then waits for the
 * parent's word to run the rest of its suite (ganesha_finish): 'P' if the
 * 1-client mixes ran paired, 'S' if its suite is to run all of them.
 */
struct peer {
	pid_t pid;		/* the child, or -1 */
	int to_child, from_child;
	bool ready;		/* sv is Ganesha's, and it answers */
	bool paired;		/* meta1_paired ran */
	struct server sv;
	struct suite *out;
};

/* The paired 1-client mixes, with filerd up (f); pe may be NULL. */
static void pair_with(struct peer *pe, const struct server *f,
    struct suite *fo)
{
	struct server g;
	char ns[64], root[PATH_MAX + 32];

	if (pe == NULL || !pe->ready)
		return;
	g = pe->sv;
	snprintf(ns, sizeof(ns), "/proc/%d/ns/net", (int)pe->pid);
	g.netns = open(ns, O_RDONLY | O_CLOEXEC);
	if (g.netns < 0) {
		suite_why(pe->out, "open %s: %s (the 1-client mixes run one "
		    "server after the other)", ns, strerror(errno));
		return;
	}
	/* Ganesha's first: if it fails, filer's suite makes its own. */
	if (pe->out->peer_fs_ok) {
		snprintf(root, sizeof(root), "/proc/%d/root%s", (int)pe->pid,
		    g.export);
		peer_fs = root;
	}
	if (base_dir(&g, pe->out) && base_dir(f, fo)) {
		meta1_paired(f, fo, &g, pe->out);
		pe->paired = true;
	}
	peer_fs = NULL;
	close(g.netns);
}

static void run_filer(const char *tmp, struct suite *out, struct peer *pe)
{
	char home[PATH_MAX], log[PATH_MAX], prog[PATH_MAX + 32];
	char np[16], mp[16];
	struct server sv = { .name = "filer", .host = "127.0.0.1",
	    .export = "/vol/vol0", .netns = -1 };
	pid_t pid;
	int st;

	tl_path(home, sizeof(home), tmp, "filer");
	tl_path(log, sizeof(log), tmp, "filer.log");
	free_ports(&sv.nfs_port, &sv.mnt_port);
	snprintf(np, sizeof(np), "%u", sv.nfs_port);
	snprintf(mp, sizeof(mp), "%u", sv.mnt_port);
	if (filerctl(home, log, "vol", "create", "vol0", "--disks", "5",
	    "--parity", "2", "--size", quick ? "1G" : "2G", NULL) != 0 ||
	    filerctl(home, log, "export", "add", "/vol/vol0", "--client",
	    "127.0.0.1", "--rw", "--squash", "none", "--insecure", NULL) != 0 ||
	    filerctl(home, log, "config", "set", "nfs_port", np, NULL) != 0 ||
	    filerctl(home, log, "config", "set", "mount_port", mp, NULL) != 0 ||
	    filerctl(home, log, "config", "set", "nfs_rpcbind", "false",
	    NULL) != 0) {
		suite_why(out, "filerctl failed (log: %s)", log);
		return;
	}
	if (apply_settings(home, log, out) != 0)
		return;
	snprintf(prog, sizeof(prog), "%s/../../filerd", bindir);
	char *argv[] = { prog, (char *)"--home", home, (char *)"--foreground",
	    NULL };
	pid = tl_spawn(argv, log);
	if (pid < 0) {
		suite_why(out, "fork: %s", strerror(errno));
		return;
	}
	out->started = true;
	printf("  filer: filerd pid %d, NFS port %u, MOUNT port %u\n",
	    (int)pid, sv.nfs_port, sv.mnt_port);
	fflush(stdout);
	if (wait_ports(pid, sv.nfs_port, sv.mnt_port, 30000, "filerd", log,
	    out)) {
		char stats[PATH_MAX];

		pair_with(pe, &sv, out);
		meta1_done = pe != NULL && pe->paired;
		run_suite(&sv, out);
		/* filerd's counters over the whole suite, for reading the
		 * figures (CPs, log flushes, cache, RAID I/O). */
		tl_path(stats, sizeof(stats), tmp, "filer-stats.txt");
		if (filerctl(home, stats, "stats", NULL) == 0)
			printf("  filer: counters after the run in %s\n",
			    stats);
	}
	st = tl_stop(pid, 60000);
	if (st != 0)
		suite_why(out, "filerd exit status %d (log: %s)", st, log);
}

/* ------------------------------------------------------------ ganesha */

static int find_file(char *out, size_t len, const char *const *cands)
{
	for (int i = 0; cands[i] != NULL; i++) {
		if (access(cands[i], R_OK) == 0) {
			snprintf(out, len, "%s", cands[i]);
			return 0;
		}
	}
	return -ENOENT;
}

/* Copy the template to conf, replacing @KEY@ by its value. */
static int write_conf(const char *tmpl, const char *conf,
    const char *const *kv)
{
	FILE *in = fopen(tmpl, "r"), *o = fopen(conf, "w");
	char line[1024];
	int rc = 0;

	if (in == NULL || o == NULL) {
		rc = -errno;
		goto out;
	}
	while (fgets(line, sizeof(line), in) != NULL) {
		for (char *p = line; *p != '\0';) {
			bool done = false;

			for (int i = 0; kv[i] != NULL && !done; i += 2) {
				size_t k = strlen(kv[i]);

				if (strncmp(p, kv[i], k) == 0) {
					fputs(kv[i + 1], o);
					p += k;
					done = true;
				}
			}
			if (!done)
				fputc(*p++, o);
		}
	}
	if (ferror(in) || fflush(o) != 0)
		rc = -EIO;
out:
	if (in != NULL)
		fclose(in);
	if (o != NULL && fclose(o) != 0 && rc == 0)
		rc = -EIO;
	return rc;
}

/*
 * Ganesha's export: a new ext4, with its journal, on a loop device over a
 * sparse image in the scratch directory (so on the same disk), mounted on
 * exp in this child's own mount namespace (it goes away with the child;
 * the loop device detaches itself then).
 *
 * Why not the scratch directory itself: the host's file system may run
 * without a journal (this machine's root does), and ext4 then does not
 * reuse an inode within a minute of its delete (five if its table block
 * is still dirty).  Under the metadata mix's create/remove churn each
 * create scanned further for a free inode, and Ganesha's figures swung
 * between 6,000 and 20,000 ops/s with how many files the runs before had
 * deleted.  On failure (why in note) Ganesha exports the plain directory.
 */
#define GANESHA_FS_BYTES	(6ull << 30)

static bool ganesha_fs(const char *tmp, const char *exp, const char *log,
    char *note, size_t notelen)
{
	char img[PATH_MAX], mkfs[32] = "/usr/sbin/mkfs.ext4", dev[32];
	struct loop_config lc;
	int fd, ctl = -1, lfd = -1, n, rc;

	tl_path(img, sizeof(img), tmp, "ganesha-fs.img");
	fd = open(img, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)GANESHA_FS_BYTES) != 0) {
		snprintf(note, notelen, "image %.120s: %s", img,
		    strerror(errno));
		goto fail;
	}
	if (access(mkfs, X_OK) != 0)
		snprintf(mkfs, sizeof(mkfs), "/sbin/mkfs.ext4");
	/* Inode tables and journal written now: no lazy init under the
	 * figures. */
	char *margv[] = { mkfs, (char *)"-q", (char *)"-F", (char *)"-E",
	    (char *)"lazy_itable_init=0,lazy_journal_init=0", img, NULL };
	if ((rc = run_prog(margv, log)) != 0) {
		snprintf(note, notelen, "mkfs.ext4 exit status %d (log: "
		    "%.120s)",
		    rc, log);
		goto fail;
	}
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	n = ctl < 0 ? -1 : ioctl(ctl, LOOP_CTL_GET_FREE);
	if (n < 0) {
		snprintf(note, notelen, "no free loop device: %s",
		    strerror(errno));
		goto fail;
	}
	snprintf(dev, sizeof(dev), "/dev/loop%d", n);
	lfd = open(dev, O_RDWR | O_CLOEXEC);
	memset(&lc, 0, sizeof(lc));
	lc.fd = (uint32_t)fd;
	lc.block_size = 4096;
	lc.info.lo_flags = LO_FLAGS_DIRECT_IO | LO_FLAGS_AUTOCLEAR;
	if (lfd < 0 || ioctl(lfd, LOOP_CONFIGURE, &lc) != 0) {
		snprintf(note, notelen, "%s: %s", dev, strerror(errno));
		goto fail;
	}
	if (mount(dev, exp, "ext4", 0, NULL) != 0) {
		snprintf(note, notelen, "mount %s on %.120s: %s", dev, exp,
		    strerror(errno));
		goto fail;
	}
	close(lfd);
	close(ctl);
	close(fd);
	snprintf(note, notelen, "a new ext4 with its journal, %llu GiB on "
	    "%s over an image in the scratch directory",
	    GANESHA_FS_BYTES >> 30, dev);
	return true;
fail:
	if (lfd >= 0)
		close(lfd);	/* AUTOCLEAR: detached at this last close */
	if (ctl >= 0)
		close(ctl);
	if (fd >= 0)
		close(fd);
	unlink(img);
	return false;
}

/* Write (or read) all n bytes of buf through a pipe; false on error or
 * EOF. */
static bool io_all(int fd, void *buf, size_t n, bool out)
{
	for (size_t done = 0; done < n;) {
		ssize_t k = out ? write(fd, (char *)buf + done, n - done) :
		    read(fd, (char *)buf + done, n - done);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		done += (size_t)k;
	}
	return true;
}

/*
 * In the namespace child: private network (loopback only) and mount
 * namespace with a tmpfs on /run for rpcbind's socket and lock; rpcbind,
 * then ganesha.nfsd in the foreground (its export on its own file system,
 * ganesha_fs); Ganesha's struct server to the parent, which may run the
 * 1-client mixes against it; at the parent's word the rest of the
 * workloads; both stopped.
 */
static void ganesha_child(const char *tmp, const char *tmpl,
    const char *plugins, struct suite *out, int to_parent, int from_parent)
{
	char exp[PATH_MAX], recov[PATH_MAX], conf[PATH_MAX], log[PATH_MAX];
	char glog[PATH_MAX], pidf[PATH_MAX], np[16], mp[16];
	struct server sv = { .name = "ganesha", .host = "127.0.0.1",
	    .netns = -1 };
	pid_t rpcb = -1, gpid = -1;
	char why[256];
	int rc;

	if (tl_netns_enter(why, sizeof(why)) != 0) {
		suite_why(out, "%s", why);
		return;
	}
	tl_path(exp, sizeof(exp), tmp, "ganesha-export");
	tl_path(recov, sizeof(recov), tmp, "ganesha-recovery");
	tl_path(conf, sizeof(conf), tmp, "ganesha.conf");
	tl_path(log, sizeof(log), tmp, "ganesha-run.log");
	tl_path(glog, sizeof(glog), tmp, "ganesha.log");
	tl_path(pidf, sizeof(pidf), tmp, "ganesha.pid");
	mkdir(exp, 0755);
	mkdir(recov, 0755);
	out->peer_fs_ok = ganesha_fs(tmp, exp, log, out->peer_fs,
	    sizeof(out->peer_fs));
	if (out->peer_fs_ok)
		peer_fs = exp;
	snprintf(sv.export, sizeof(sv.export), "%s", exp);
	free_ports(&sv.nfs_port, &sv.mnt_port);
	snprintf(np, sizeof(np), "%u", sv.nfs_port);
	snprintf(mp, sizeof(mp), "%u", sv.mnt_port);
	const char *kv[] = { "@NFS_PORT@", np, "@MNT_PORT@", mp,
	    "@EXPORT@", exp, "@RECOVERY@", recov, "@PLUGINS@", plugins,
	    NULL };
	if ((rc = write_conf(tmpl, conf, kv)) != 0) {
		suite_why(out, "writing %s from %s: %s", conf, tmpl,
		    strerror(-rc));
		return;
	}

	char *rargv[] = { (char *)"/usr/sbin/rpcbind", (char *)"-f", NULL };
	if (access(rargv[0], X_OK) != 0)
		rargv[0] = (char *)"/sbin/rpcbind";
	out->started = true;
	rpcb = tl_spawn(rargv, log);
	if (rpcb < 0 || !wait_ports(rpcb, 111, 0, 10000, "rpcbind", log,
	    out))
		goto out;

	char *gargv[] = { (char *)"/usr/bin/ganesha.nfsd", (char *)"-F",
	    (char *)"-f", conf, (char *)"-L", glog, (char *)"-p", pidf,
	    (char *)"-N", (char *)"NIV_EVENT", NULL };
	gpid = tl_spawn(gargv, log);
	if (gpid < 0) {
		suite_why(out, "fork: %s", strerror(errno));
		goto out;
	}
	printf("  ganesha: ganesha.nfsd pid %d, NFS port %u, MOUNT port %u "
	    "(private network namespace)\n", (int)gpid, sv.nfs_port,
	    sv.mnt_port);
	fflush(stdout);
	if (wait_ports(gpid, sv.nfs_port, sv.mnt_port, 30000, "ganesha.nfsd",
	    glog, out)) {
		char word = 'S';

		/* Up: tell the parent (struct peer), wait for its word. */
		if (io_all(to_parent, &sv, sizeof(sv), true)) {
			close(to_parent);
			to_parent = -1;
			if (read(from_parent, &word, 1) != 1)
				goto out;	/* the parent is gone */
		}
		meta1_done = word == 'P';
		run_suite(&sv, out);
	}
out:
	if (to_parent >= 0)
		close(to_parent);	/* not up: the parent reads EOF */
	if (gpid > 0 && (rc = tl_stop(gpid, 20000)) != 0)
		suite_why(out, "ganesha.nfsd exit status %d (log: %s)", rc,
		    glog);
	if (rpcb > 0)
		tl_stop(rpcb, 5000);
}

/*
 * Start the Ganesha child: it enters its namespace, starts rpcbind and
 * Ganesha, and tells pe (up to a minute) once Ganesha answers; it then
 * waits for ganesha_finish.  Without a child pe->pid stays -1 and the
 * reason is in out.
 */
static void ganesha_launch(const char *tmp, struct suite *out,
    struct peer *pe)
{
	char tmpl[PATH_MAX], plugins[PATH_MAX], c1[PATH_MAX + 64];
	int up[2], down[2];
	pid_t pid;

	snprintf(c1, sizeof(c1), "%s/../../../tests/bench/ganesha/"
	    "ganesha.conf.in", bindir);
	const char *tc[] = { "tests/bench/ganesha/ganesha.conf.in", c1, NULL };
	const char *pc[] = { "/usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so",
	    "/usr/lib/aarch64-linux-gnu/ganesha/libfsalvfs.so",
	    "/usr/lib64/ganesha/libfsalvfs.so",
	    "/usr/lib/ganesha/libfsalvfs.so", NULL };

	if (access("/usr/bin/ganesha.nfsd", X_OK) != 0) {
		suite_why(out, "/usr/bin/ganesha.nfsd not installed (Debian "
		    "packages nfs-ganesha nfs-ganesha-vfs; make bench installs "
		    "them)");
		return;
	}
	if (find_file(plugins, sizeof(plugins), pc) != 0) {
		suite_why(out, "the VFS FSAL (libfsalvfs.so) is not installed "
		    "(Debian package nfs-ganesha-vfs)");
		return;
	}
	*strrchr(plugins, '/') = '\0';
	if (find_file(tmpl, sizeof(tmpl), tc) != 0) {
		suite_why(out, "tests/bench/ganesha/ganesha.conf.in not found "
		    "(run from the source tree)");
		return;
	}
	if (geteuid() != 0) {
		suite_why(out, "not root: ganesha needs its own network "
		    "namespace and rpcbind");
		return;
	}
	if (pipe2(up, O_CLOEXEC) != 0) {
		suite_why(out, "pipe: %s", strerror(errno));
		return;
	}
	if (pipe2(down, O_CLOEXEC) != 0) {
		suite_why(out, "pipe: %s", strerror(errno));
		close(up[0]);
		close(up[1]);
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		suite_why(out, "fork: %s", strerror(errno));
		close(up[0]);
		close(up[1]);
		close(down[0]);
		close(down[1]);
		return;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(1);
		close(up[0]);
		close(down[1]);
		ganesha_child(tmp, tmpl, plugins, out, up[1], down[0]);
		fflush(stdout);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	pe->pid = pid;
	pe->out = out;
	pe->from_child = up[0];
	pe->to_child = down[1];
	struct pollfd pfd = { .fd = up[0], .events = POLLIN };
	if (poll(&pfd, 1, 60000) == 1 &&
	    io_all(up[0], &pe->sv, sizeof(pe->sv), false)) {
		pe->sv.name = "ganesha";
		pe->ready = true;
	}
}

/* Let the child run the rest of its suite ('P': the 1-client mixes ran
 * paired), and wait for it. */
static void ganesha_finish(struct peer *pe)
{
	struct suite *out = pe->out;
	char word = pe->paired ? 'P' : 'S';
	int st;

	if (pe->pid < 0)
		return;
	if (pe->ready) {
		/* A child that died meanwhile must not take this process
		 * with it (SIGPIPE): its status says what happened. */
		sigset_t pipe_set, old;
		struct timespec zero = { 0, 0 };

		sigemptyset(&pipe_set);
		sigaddset(&pipe_set, SIGPIPE);
		sigprocmask(SIG_BLOCK, &pipe_set, &old);
		if (write(pe->to_child, &word, 1) != 1)
			(void)sigtimedwait(&pipe_set, NULL, &zero);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	close(pe->to_child);
	close(pe->from_child);
	pid_t pid = pe->pid;
	st = tl_wait_exit(pid, 600000);
	if (st < 0) {
		kill(pid, SIGKILL);
		tl_wait_exit(pid, 10000);
		suite_why(out, "the ganesha run took over 10 minutes");
	} else if (st != 0) {
		suite_why(out, "the ganesha run ended with status %d", st);
	}
}

/* ------------------------------------------------------------ report */

static void report(struct benchout *b, const struct suite *me,
    const struct suite *peer)
{
	for (int i = 0; i < FIG_COUNT; i++) {
		const struct figure *m = &me->f[i], *p = &peer->f[i];
		const char *pn = p->ok ? "nfs-ganesha VFS" :
		    "nfs-ganesha (missing)";
		char name[96];
		double mv = m->ok ? m->value : NAN;

		if ((only_seqw && i != FIG_SEQW) ||
		    (only_meta && i != FIG_META1 && i != FIG_META16) ||
		    (only_seq && i != FIG_SEQW && i != FIG_SEQR))
			continue;

		benchout_add(b, fig_def[i].name, mv, fig_def[i].unit, pn,
		    p->ok ? p->value : NAN, p->ok ? (fig_def[i].lower_is_better
		    ? "<=" : ">=") : NULL, fig_def[i].goal);
		snprintf(name, sizeof(name), "%s, p50", fig_def[i].name);
		benchout_add(b, name, m->ok ? m->p50_us : NAN, "us", pn,
		    p->ok ? p->p50_us : NAN, NULL, 0);
		snprintf(name, sizeof(name), "%s, p99", fig_def[i].name);
		benchout_add(b, name, m->ok ? m->p99_us : NAN, "us", pn,
		    p->ok ? p->p99_us : NAN, p->ok ? "<=" : NULL, 1.0);
	}
}

/* Each server's 1-client metadata runs, of which the figure is the
 * median. */
/* How long the disk took to go quiet before the timed phases. */
static void settle_note(struct benchout *b, const struct suite *sh)
{
	char part[2][96];

	for (int k = 0; k < 2; k++) {
		if (sh[k].settles == 0)
			snprintf(part[k], sizeof(part[k]), "not run");
		else
			snprintf(part[k], sizeof(part[k]), "longest wait "
			    "%.1f s%s", sh[k].settle_max,
			    sh[k].settle_late > 0 ? ", and busy still at the "
			    "bound before some phases" : "");
	}
	benchout_note(b, "before each timed phase the scratch file system "
	    "was synced and its disk idle for %.1f s (bound %.0f s): filer "
	    "%s; ganesha %s", SETTLE_QUIET_S, SETTLE_MAX_S, part[0], part[1]);
}

static void meta1_note(struct benchout *b, const struct suite *sh)
{
	char list[2][96];

	for (int k = 0; k < 2; k++) {
		size_t n = 0;

		list[k][0] = '\0';
		for (int r = 0; r < sh[k].meta1_n; r++)
			n += (size_t)snprintf(list[k] + n, sizeof(list[k]) - n,
			    "%s%.0f", r > 0 ? " / " : "", sh[k].meta1_runs[r]);
		if (sh[k].meta1_n == 0)
			snprintf(list[k], sizeof(list[k]), "none");
	}
	benchout_note(b, "meta mix, 1 client: the median of %d runs (in "
	    "order, ops/s%s): filer %s, ganesha %s", quick ? 1 : META1_RUNS,
	    meta1_done ? ", the servers in turn" : "", list[0], list[1]);
}

/* One JSON line with why s's figures are missing, if they are; scratch:
 * the kept scratch directory, or NULL (removed). */
static void json_why(struct benchout *b, const struct suite *s,
    const char *scratch)
{
	if (s->why[0] == '\0' || b->json == NULL)
		return;
	fputs("{\"bench\":", b->json);
	benchout_json_str(b->json, b->bench);
	fputs(",\"metric\":\"why missing\",\"server\":", b->json);
	benchout_json_str(b->json, s->name);
	fputs(",\"why\":", b->json);
	benchout_json_str(b->json, s->why);
	fputs(",\"scratch\":", b->json);
	benchout_json_str(b->json, scratch);
	fputs("}\n", b->json);
	fflush(b->json);
}

int main(int argc, char **argv)
{
	const char *outdir = argc > 1 ? argv[1] : "build/bench";
	char base[4096], tmpbuf[4096];
	struct benchout b;
	struct suite *sh;
	const char *only;
	struct peer pe = { .pid = -1, .to_child = -1, .from_child = -1 };
	bool keep;
	char *tmp;
	ssize_t n;
	double load[3];

	quick = getenv("FILER_BENCH_QUICK") != NULL;
	only = getenv("FILER_BENCH_ONLY");
	if (only != NULL && strcmp(only, "seqwrite") == 0) {
		only_seqw = only_filer = true;
	} else if (only != NULL && strcmp(only, "filer") == 0) {
		only_filer = true;
	} else if (only != NULL && strcmp(only, "meta") == 0) {
		only_meta = only_filer = true;
	} else if (only != NULL && strcmp(only, "seq") == 0) {
		only_seq = true;
	} else if (only != NULL && only[0] != '\0') {
		fprintf(stderr, "bench_nfs: FILER_BENCH_ONLY=%s: unknown "
		    "(seqwrite, seq, meta, filer, or unset for every figure)\n",
		    only);
		return 2;
	}
	if (getloadavg(load, 3) != 3)
		load[0] = NAN;
	n = readlink("/proc/self/exe", bindir, sizeof(bindir) - 1);
	if (n <= 0) {
		perror("bench_nfs: /proc/self/exe");
		return 1;
	}
	bindir[n] = '\0';
	*strrchr(bindir, '/') = '\0';
	benchout_scratch(outdir, base, sizeof(base));
	if (realpath(base, tmpbuf) == NULL) {
		perror("bench_nfs: scratch directory");
		return 1;
	}
	tmp = tl_tmpdir_make(tmpbuf, "nfs");
	scratch_dir = tmp;
	io_buf = malloc(1 << 20);
	sh = mmap(NULL, 2 * sizeof(*sh), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (io_buf == NULL || sh == MAP_FAILED) {
		perror("bench_nfs: memory");
		return 1;
	}
	memset(sh, 0, 2 * sizeof(*sh));
	sh[0].name = "filer";
	sh[1].name = "ganesha";
	for (size_t i = 0; i < (1u << 20); i++)
		io_buf[i] = (char)(i * 131 + 7 + (i >> 12));

	printf("bench_nfs: scratch %s%s%s\n", tmp, quick ? " (quick)" : "",
	    only_seqw ? " (filer's sequential write only)" :
	    only_meta ? " (filer's metadata mixes only)" :
	    only_seq ? " (sequential write and read only)" :
	    only_filer ? " (filer only)" : "");
	/* Ganesha is started first and waits, so that the 1-client mixes
	 * can alternate between the servers (meta1_paired); the rest of its
	 * suite runs after filer's. */
	host_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (!only_filer)
		ganesha_launch(tmp, &sh[1], &pe);
	run_filer(tmp, &sh[0], !only_seq && host_netns >= 0 ? &pe : NULL);
	if (!only_filer)
		ganesha_finish(&pe);

	benchout_open(&b, outdir, "nfs", "NFSv3 over loopback: filerd vs "
	    "NFS-Ganesha (VFS FSAL, same disk)");
	report(&b, &sh[0], &sh[1]);
	if (getenv("FILER_BENCH_SET") != NULL &&
	    *getenv("FILER_BENCH_SET") != '\0')
		benchout_note(&b, "FILER_BENCH_SET: filer ran with %s",
		    getenv("FILER_BENCH_SET"));
	if (only_seqw) {
		benchout_note(&b, "FILER_BENCH_ONLY=seqwrite: filer's "
		    "sequential write alone (1x8 in flight, %u MiB), no "
		    "Ganesha", quick ? 32 : 512);
	} else if (only_seq) {
		benchout_note(&b, "FILER_BENCH_ONLY=seq: libnfs raw async "
		    "client, 1x8 in flight, seq file %u MiB written once and "
		    "read %d times", quick ? 32 : 512, SEQR_PASSES);
	} else {
		benchout_note(&b, "libnfs raw async clients, one poll loop; "
		    "meta mix 1x16 and 16x8 in flight, seq 1x8, random 4x16, "
		    "listing 1x1; %s s per timed run, seq file %u MiB (read "
		    "%d times), dir %u entries listed", quick ? "1" : "5",
		    quick ? 32 : 512, SEQR_PASSES, sh[0].dir_entries);
		benchout_note(&b, "filling the listed directory (4x16 CREATEs "
		    "in flight): filer %.0f/s, ganesha %.0f/s", sh[0].fill_rate,
		    sh[1].fill_rate);
	}
	if (!only_seqw && !only_seq)
		meta1_note(&b, sh);
	settle_note(&b, sh);
	if (sh[1].peer_fs[0] != '\0')
		benchout_note(&b, "ganesha's export: %s%s",
		    sh[1].peer_fs_ok ? "" : "the scratch directory itself; "
		    "its own file system could not be made: ", sh[1].peer_fs);
	if (!isnan(load[0]))
		benchout_note(&b, "%ld CPUs; load average before the run %.2f "
		    "(other work on the machine skews every figure)",
		    sysconf(_SC_NPROCESSORS_ONLN), load[0]);
	if (sh[0].why[0] != '\0')
		benchout_note(&b, "filer: %s", sh[0].why);
	if (sh[1].why[0] != '\0')
		benchout_note(&b, "ganesha figures missing or partial: %s",
		    sh[1].why);
	keep = sh[0].why[0] != '\0' ||
	    (sh[1].why[0] != '\0' && sh[1].started) ||
	    getenv("FILER_BENCH_KEEP") != NULL;
	for (int i = 0; i < 2; i++)
		json_why(&b, &sh[i], keep ? tmp : NULL);
	benchout_close(&b);
	if (keep)
		printf("bench_nfs: scratch and logs kept in %s\n", tmp);
	else
		tl_tmpdir_remove(tmp);
	return sh[0].why[0] != '\0' ? 1 : 0;
}
