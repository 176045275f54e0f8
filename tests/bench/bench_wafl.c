/*
 * tests/bench/bench_wafl.c: the file system in process, in one run.
 *
 *   build/tests/bench/bench_wafl <outdir>      (make bench)
 *
 * Figures (table on stdout, JSON lines appended to <outdir>/wafl.json):
 *   - creates/s and lookups/s in a directory of 1k and of 100k entries, 16
 *     threads; the 100k / 1k ratio shows LOOKUP and insert stay O(log n)
 *     (goal >= 0.5);
 *   - NVLOG group commit: log flushes per synchronous operation (4 KiB
 *     FILE_SYNC writes) with 1 and 16 threads (goal <= 0.25 at 16);
 *   - sequential write through CPs (1 MiB UNSTABLE writes, COMMIT, CP) as
 *     a ratio of raid's own full-stripe write rate measured in the same run
 *     on a volume of the same geometry (UNSTABLE data stays out of the
 *     NVLOG: it reaches the disk once, in a CP), and the CPs it causes:
 *     freeze p50 / max (the volume lock held exclusive) and write-out p50;
 *   - p50/p99 latency of 4 KiB writes with and without a CP running
 *     (a background thread dirties 64 MiB and runs a CP each second);
 *   - mount time of a volume holding 1 GiB vs one holding 8 GiB (goal:
 *     ratio <= 1.2), page cache of the images dropped first.
 *
 * Images go to $FILER_BENCH_DIR, else <outdir>/../bench-tmp (the working
 * disk).  $FILER_BENCH_QUICK=1 shrinks every size for a smoke run;
 * $FILER_BENCH_ONLY=seq runs the sequential write alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/raid.h"
#include "tests/bench/benchout.h"
#include "tests/lib/tl_tmpdir.h"
#include "tests/lib/tl_wafl.h"

#define MiB	(1024.0 * 1024.0)

static bool quick;
static bool only_seq;		/* FILER_BENCH_ONLY=seq */

static double secs_since(uint64_t t0)
{
	return (double)(fl_now_mono_ns() - t0) / 1e9;
}

static void check(int rc, const char *what)
{
	if (rc != 0) {
		fprintf(stderr, "bench_wafl: %s: %s\n", what, fl_strerror(rc));
		exit(1);
	}
}

static const struct wafl_cred root_cred = { 0, 0, 0, { 0 } };

static struct tl_fs *make_fs(uint64_t disk_blocks, bool cp_thread)
{
	struct tl_fs *f = tl_fs_create(4, 1, disk_blocks, false);

	f->mo.no_cp_thread = !cp_thread;
	f->mo.nvlog_half_bytes = 64 << 20;
	tl_fs_remount(f);
	return f;
}

/* ------------------------------------------------- directory scaling */

struct dir_job {
	struct tl_fs *f;
	struct wafl_obj dir;
	uint32_t first, count;
	uint32_t space;		/* lookups: names 0 .. space-1 exist */
	bool lookup;
	int rc;
};

static void *dir_worker(void *arg)
{
	struct dir_job *j = arg;
	char name[32];
	struct wafl_obj o;
	struct wafl_attr a;
	uint64_t rng = j->first * 2654435761u + 1;

	for (uint32_t i = 0; i < j->count && j->rc == 0; i++) {
		if (j->lookup) {
			rng = rng * 6364136223846793005ull + 1;
			snprintf(name, sizeof(name), "f%08u",
			    (uint32_t)((rng >> 33) % j->space));
			j->rc = wafl_lookup(j->f->v, &root_cred, &j->dir, name,
			    &o, &a, NULL);
		} else {
			snprintf(name, sizeof(name), "f%08u", j->first + i);
			j->rc = wafl_create(j->f->v, &root_cred, &j->dir, name,
			    WAFL_GUARDED, NULL, 0, &o, &a, NULL);
		}
	}
	return NULL;
}

/* Fill a new directory with n entries; returns creates/s and lookups/s. */
static void dir_rates(struct tl_fs *f, const char *dname, uint32_t n,
    double *cps, double *lps)
{
	const int nt = 16;
	struct wafl_obj root, dir;
	struct wafl_attr a;
	pthread_t th[16];
	struct dir_job jobs[16];

	check(wafl_root(f->v, &root), "root");
	check(wafl_mkdir(f->v, &root_cred, &root, dname, NULL, &dir, &a, NULL),
	    "mkdir");
	for (int pass = 0; pass < 2; pass++) {
		uint64_t t0 = fl_now_mono_ns();
		uint32_t per = n / nt;
		for (int t = 0; t < nt; t++) {
			jobs[t] = (struct dir_job){ .f = f, .dir = dir,
			    .first = (uint32_t)t * per, .count = per,
			    .space = per * nt, .lookup = pass };
			pthread_create(&th[t], NULL, dir_worker, &jobs[t]);
		}
		for (int t = 0; t < nt; t++) {
			pthread_join(th[t], NULL);
			check(jobs[t].rc, pass ? "lookup" : "create");
		}
		double rate = (double)per * nt / secs_since(t0);
		if (pass)
			*lps = rate;
		else
			*cps = rate;
	}
}

/* ------------------------------------------------------ group commit */

struct sync_job {
	struct tl_fs *f;
	struct wafl_obj file;
	uint32_t n, slot;
	int rc;
};

static void *sync_worker(void *arg)
{
	struct sync_job *j = arg;
	uint8_t buf[4096];
	enum wafl_stable got;

	memset(buf, (int)j->slot, sizeof(buf));
	for (uint32_t i = 0; i < j->n && j->rc == 0; i++)
		j->rc = wafl_write(j->f->v, &root_cred, &j->file,
		    ((uint64_t)j->slot * j->n + i) * 4096, 4096, buf,
		    WAFL_FILE_SYNC, &got, NULL, NULL);
	return NULL;
}

static double flushes_per_op(struct tl_fs *f, int nt, uint32_t per)
{
	struct wafl_obj root, file;
	struct wafl_attr a;
	struct wafl_stats s0, s1;
	pthread_t th[16];
	struct sync_job jobs[16];
	char name[32];

	check(wafl_root(f->v, &root), "root");
	snprintf(name, sizeof(name), "sync%d", nt);
	check(wafl_create(f->v, &root_cred, &root, name, WAFL_GUARDED, NULL, 0,
	    &file, &a, NULL), "create");
	wafl_get_stats(f->v, &s0);
	for (int t = 0; t < nt; t++) {
		jobs[t] = (struct sync_job){ f, file, per, (uint32_t)t, 0 };
		pthread_create(&th[t], NULL, sync_worker, &jobs[t]);
	}
	for (int t = 0; t < nt; t++) {
		pthread_join(th[t], NULL);
		check(jobs[t].rc, "sync write");
	}
	wafl_get_stats(f->v, &s1);
	return (double)(s1.log_flushes - s0.log_flushes) / ((double)nt * per);
}

/* ------------------------------------------------ sequential writes */

static double raid_stripe_rate(uint64_t disk_blocks, uint64_t bytes)
{
	struct tl_fs *f = tl_fs_create(4, 1, disk_blocks, false);
	struct raid_geometry g;

	check(wafl_unmount(f->v), "unmount");
	f->v = NULL;
	raid_geometry(f->raid, &g);
	uint32_t chunk = 256;	/* stripes per call: 4 MiB */
	uint8_t *buf = malloc((size_t)chunk * g.ndata * 4096);
	tl_fill_pattern(buf, (size_t)chunk * g.ndata * 4096, 7);
	uint64_t stripes = bytes / 4096 / g.ndata;
	uint64_t t0 = fl_now_mono_ns();
	for (uint64_t s = 64; s < 64 + stripes; s += chunk)
		check(raid_write_stripes(f->raid, s * g.ndata, chunk, buf),
		    "raid write");
	check(raid_flush(f->raid), "raid flush");
	double rate = (double)stripes * g.ndata * 4096 / MiB / secs_since(t0);
	free(buf);
	tl_fs_destroy(f);
	return rate;
}

/*
 * Per-CP freeze and write-out times while the sequential writes run: a
 * thread polls wafl_get_stats every millisecond and takes the growth of
 * the freeze and write-out totals whenever the CP count moves (CPs last
 * far longer than a millisecond, so it moves by one; if by more, each
 * gets the average).
 */
struct cp_watch {
	struct tl_fs *f;
	_Atomic int stop;
	uint64_t freeze[4096], write[4096];
	uint32_t n;
};

static void *cp_watch_thread(void *arg)
{
	struct cp_watch *w = arg;
	struct wafl_stats s0, s1;

	wafl_get_stats(w->f->v, &s0);
	for (;;) {
		int last = w->stop;
		usleep(1000);
		wafl_get_stats(w->f->v, &s1);
		uint64_t d = s1.cps - s0.cps;
		for (uint64_t i = 0; i < d && w->n < 4096; i++) {
			w->freeze[w->n] = (s1.cp_freeze_ns_total -
			    s0.cp_freeze_ns_total) / d;
			w->write[w->n] = (s1.cp_write_ns_total -
			    s0.cp_write_ns_total) / d;
			w->n++;
		}
		s0 = s1;
		if (last)
			break;
	}
	return NULL;
}

static double wafl_seq_rate(struct tl_fs *f, uint64_t bytes,
    struct cp_watch *w)
{
	struct wafl_obj root, file;
	struct wafl_attr a;
	enum wafl_stable got;
	const uint32_t io = 1 << 20;
	uint8_t *buf = malloc(io);
	pthread_t wt;

	tl_fill_pattern(buf, io, 9);
	check(wafl_root(f->v, &root), "root");
	check(wafl_create(f->v, &root_cred, &root, "seq", WAFL_GUARDED, NULL, 0,
	    &file, &a, NULL), "create");
	check(wafl_sync(f->v), "sync");
	w->f = f;
	pthread_create(&wt, NULL, cp_watch_thread, w);
	uint64_t t0 = fl_now_mono_ns();
	for (uint64_t off = 0; off < bytes; off += io)
		check(wafl_write(f->v, &root_cred, &file, off, io, buf,
		    WAFL_UNSTABLE, &got, NULL, NULL), "write");
	check(wafl_commit(f->v, &file, NULL), "commit");
	check(wafl_sync(f->v), "sync");
	double rate = (double)bytes / MiB / secs_since(t0);
	w->stop = 1;
	pthread_join(wt, NULL);
	free(buf);
	return rate;
}

/* ---------------------------------------------------------- latency */

struct lat_state {
	struct tl_fs *f;
	struct wafl_obj file, big;
	_Atomic int stop;
	_Atomic int cp_running;
	uint64_t *idle, *during;
	uint64_t nidle, nduring, cap;
	pthread_mutex_t lock;
};

static void *lat_cp_thread(void *arg)
{
	struct lat_state *s = arg;
	const uint32_t io = 1 << 20;
	uint8_t *buf = malloc(io);
	enum wafl_stable got;
	uint64_t round = 0;

	while (!s->stop) {
		tl_fill_pattern(buf, io, round);
		for (uint32_t m = 0; m < 64 && !s->stop; m++)
			check(wafl_write(s->f->v, &root_cred, &s->big,
			    (uint64_t)m * io, io, buf, WAFL_UNSTABLE, &got,
			    NULL, NULL), "big write");
		__atomic_store_n(&s->cp_running, 1, __ATOMIC_SEQ_CST);
		check(wafl_sync(s->f->v), "sync");
		__atomic_store_n(&s->cp_running, 0, __ATOMIC_SEQ_CST);
		usleep(200000);
		round++;
	}
	free(buf);
	return NULL;
}

static void *lat_worker(void *arg)
{
	struct lat_state *s = arg;
	uint8_t buf[4096];
	enum wafl_stable got;
	uint64_t rng = (uint64_t)pthread_self();

	memset(buf, 0x5a, sizeof(buf));
	while (!s->stop) {
		rng = rng * 6364136223846793005ull + 1;
		uint64_t off = ((rng >> 33) % 4096) * 4096;
		int before = __atomic_load_n(&s->cp_running, __ATOMIC_SEQ_CST);
		uint64_t t0 = fl_now_mono_ns();
		check(wafl_write(s->f->v, &root_cred, &s->file, off, 4096, buf,
		    WAFL_UNSTABLE, &got, NULL, NULL), "small write");
		uint64_t dt = fl_now_mono_ns() - t0;
		int after = __atomic_load_n(&s->cp_running, __ATOMIC_SEQ_CST);
		pthread_mutex_lock(&s->lock);
		if (s->nidle < s->cap && !before && !after)
			s->idle[s->nidle++] = dt;
		else if (s->nduring < s->cap && before && after)
			s->during[s->nduring++] = dt;
		pthread_mutex_unlock(&s->lock);
		usleep(200);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, uint64_t n, double p)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	return (double)v[(uint64_t)((double)(n - 1) * p)] / 1000.0;
}

/* ------------------------------------------------------ mount time */

static void drop_cache(struct tl_fs *f)
{
	for (uint32_t i = 0; i < f->ndisks; i++) {
		int fd = open(f->paths[i], O_RDONLY);
		if (fd >= 0) {
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			close(fd);
		}
	}
}

/* Best of 3 cold mounts; *raid_ms gets raid_open's share. */
static double mount_ms(uint64_t fill_bytes, uint64_t disk_blocks,
    double *raid_ms, double *blocks_read)
{
	struct tl_fs *f = tl_fs_create(4, 1, disk_blocks, false);
	const uint32_t io = 4 << 20;
	uint8_t *buf = malloc(io);
	uint64_t ino = tl_fs_new_file(f);

	for (uint64_t off = 0; off < fill_bytes; off += io) {
		tl_fill_pattern(buf, 64, off);
		tl_fs_write(f, ino, off, buf, io);
		if ((off / io) % 16 == 15)
			check(wafl_sync(f->v), "fill sync");
	}
	check(wafl_unmount(f->v), "unmount");
	f->v = NULL;
	raid_close(f->raid);
	f->raid = NULL;
	double best = 1e30;
	*raid_ms = 1e30;
	for (int r = 0; r < 5; r++) {
		sync();
		drop_cache(f);
		uint64_t t0 = fl_now_mono_ns();
		tl_fs_reopen_raid(f);
		double rms = secs_since(t0) * 1000.0;
		struct raid_status st0, st1;
		raid_status(f->raid, &st0);
		uint64_t t1 = fl_now_mono_ns();
		tl_fs_mount(f);
		double ms = secs_since(t1) * 1000.0;
		raid_status(f->raid, &st1);
		*blocks_read = (double)(st1.counters.reads -
		    st0.counters.reads);
		if (ms < best)
			best = ms;
		if (rms < *raid_ms)
			*raid_ms = rms;
		check(wafl_unmount(f->v), "unmount");
		f->v = NULL;
	}
	free(buf);
	tl_fs_destroy(f);
	return best;
}

int main(int argc, char **argv)
{
	const char *outdir = argc > 1 ? argv[1] : "build/bench";
	char base[4096];
	struct benchout b;

	quick = getenv("FILER_BENCH_QUICK") != NULL;
	only_seq = getenv("FILER_BENCH_ONLY") != NULL &&
	    strcmp(getenv("FILER_BENCH_ONLY"), "seq") == 0;
	benchout_scratch(outdir, base, sizeof(base));
	setenv("TMPDIR", base, 1);
	fl_log_set_level(FL_LOG_WARN);
	benchout_open(&b, outdir, "wafl", "file system in process");

	/* Directory scaling. */
	uint32_t big = quick ? 10000 : 100000;
	struct tl_fs *f = make_fs(quick ? 32768 : 262144, true);
	double c1, l1, c2, l2;
	if (only_seq)
		goto seq;
	dir_rates(f, "d1k", 1008, &c1, &l1);
	dir_rates(f, "dbig", big, &c2, &l2);
	benchout_figure(&b, "creates/s, 1k-entry dir", c1, "ops/s");
	benchout_vs(&b, "creates/s, 100k-entry dir", c2, "ops/s",
	    "creates/s, 1k-entry dir", c1, ">=", 0.5);
	benchout_figure(&b, "lookups/s, 1k-entry dir", l1, "ops/s");
	benchout_vs(&b, "lookups/s, 100k-entry dir", l2, "ops/s",
	    "lookups/s, 1k-entry dir", l1, ">=", 0.5);

	/* Group commit. */
	double f1 = flushes_per_op(f, 1, quick ? 200 : 1000);
	double f16 = flushes_per_op(f, 16, quick ? 50 : 250);
	benchout_figure(&b, "log flushes per sync op, 1 thread", f1, "ratio");
	benchout_add(&b, "log flushes per sync op, 16 thr", f16, "ratio", NULL,
	    0, "<=", 0.25);

seq:
	/* Sequential write vs raid's full-stripe rate, and the CPs it
	 * causes (dirty_max, the default 128 MiB, triggers them). */
	uint64_t seq = quick ? (256ull << 20) : (1ull << 30);
	struct cp_watch *cw = calloc(1, sizeof(*cw));
	double wr = wafl_seq_rate(f, seq, cw);
	double rr = raid_stripe_rate(quick ? 32768 : 262144, seq);
	benchout_vs(&b, "sequential write through CPs", wr, "MB/s",
	    "raid full-stripe write", rr, NULL, 0);
	benchout_note(&b, "UNSTABLE writes: the data reaches the disk once, "
	    "in a CP");
	benchout_figure(&b, "CP freeze p50, seq write", pct(cw->freeze, cw->n,
	    0.5) / 1000.0, "ms");
	benchout_figure(&b, "CP freeze max, seq write", pct(cw->freeze, cw->n,
	    1.0) / 1000.0, "ms");
	benchout_figure(&b, "CP write-out p50, seq write", pct(cw->write,
	    cw->n, 0.5) / 1000.0, "ms");
	benchout_note(&b, "%u CPs during the sequential write", cw->n);
	free(cw);
	if (only_seq) {
		tl_fs_destroy(f);
		return benchout_close(&b) > 0 ? 0 : 0;
	}

	/* Latency with and without a CP running. */
	struct lat_state ls = { .f = f, .cap = 1 << 20 };
	struct wafl_obj root;
	struct wafl_attr a;
	pthread_mutex_init(&ls.lock, NULL);
	ls.idle = malloc(ls.cap * sizeof(uint64_t));
	ls.during = malloc(ls.cap * sizeof(uint64_t));
	check(wafl_root(f->v, &root), "root");
	check(wafl_create(f->v, &root_cred, &root, "lat", WAFL_GUARDED, NULL, 0,
	    &ls.file, &a, NULL), "create");
	check(wafl_create(f->v, &root_cred, &root, "latbig", WAFL_GUARDED, NULL,
	    0, &ls.big, &a, NULL), "create");
	pthread_t cpt, wt[4];
	pthread_create(&cpt, NULL, lat_cp_thread, &ls);
	for (int i = 0; i < 4; i++)
		pthread_create(&wt[i], NULL, lat_worker, &ls);
	sleep(quick ? 3 : 10);
	ls.stop = 1;
	for (int i = 0; i < 4; i++)
		pthread_join(wt[i], NULL);
	pthread_join(cpt, NULL);
	uint64_t ni = ls.nidle, nd = ls.nduring;
	double p50i = pct(ls.idle, ni, 0.5), p99i = pct(ls.idle, ni, 0.99);
	double p50d = pct(ls.during, nd, 0.5), p99d = pct(ls.during, nd, 0.99);
	benchout_figure(&b, "4K write p50, no CP", p50i, "us");
	benchout_figure(&b, "4K write p99, no CP", p99i, "us");
	benchout_vs(&b, "4K write p50, CP running", p50d, "us",
	    "p50, no CP", p50i, NULL, 0);
	benchout_vs(&b, "4K write p99, CP running", p99d, "us",
	    "p99, no CP", p99i, NULL, 0);
	benchout_note(&b, "%llu samples without a CP, %llu during CPs",
	    (unsigned long long)ni, (unsigned long long)nd);
	struct wafl_stats st;
	wafl_get_stats(f->v, &st);
	benchout_figure(&b, "longest CP freeze", (double)st.cp_freeze_ns_max /
	    1e6, "ms");
	benchout_figure(&b, "longest CP", (double)st.cp_ns_max / 1e6, "ms");
	free(ls.idle);
	free(ls.during);
	tl_fs_destroy(f);

	/* Mount time vs data held. */
	uint64_t g1 = quick ? (64ull << 20) : (1ull << 30);
	double r1, r8, b1, b8;
	double m1 = mount_ms(g1, quick ? 32768 : 131072, &r1, &b1);
	double m8 = mount_ms(g1 * 8, quick ? 262144 : 1048576, &r8, &b8);
	benchout_figure(&b, "blocks read by mount, 1 GiB", b1, "blocks");
	benchout_vs(&b, "blocks read by mount, 8 GiB", b8, "blocks",
	    "blocks read by mount, 1 GiB", b1, "<=", 1.0);
	benchout_figure(&b, "wafl mount, 1 GiB held", m1, "ms");
	benchout_vs(&b, "wafl mount, 8 GiB held", m8, "ms",
	    "wafl mount, 1 GiB held", m1, "<=", 1.2);
	benchout_vs(&b, "raid open, 8 GiB volume", r8, "ms",
	    "raid open, 1 GiB volume", r1, NULL, 0);
	benchout_note(&b, "cold: page cache of the images dropped before "
	    "each of 5 mounts, best kept; wafl mount includes NVLOG open "
	    "and replay scan");
	return benchout_close(&b) > 0 ? 0 : 0;
}
