/*
 * tests/bench/bench_mirror.c: what mirroring costs, in one run.
 *
 *   build/tests/bench/bench_mirror <outdir>     (make bench)
 *
 * Part 1, in one process with the mirror library: a source (wafl on a 4+1
 * raid volume of sparse images) and a destination (another 4+1 volume),
 * mir_source_start / mir_dest_start in sync mode over loopback TCP.  For
 * datasets of 0.5, 1 and 2 GiB (quick: 64, 128, 256 MiB) of 64 MiB files
 * of incompressible content:
 *   - baseline: time from mir_source_start until the destination
 *     acknowledges, as MB/s of blocks sent, against min(disk, loopback)
 *     measured in the same run (goal >= 0.8);
 *   - update cost: 256 writes of 4 KiB at random aligned offsets of the
 *     whole dataset (1 MiB changed, scattered), then a CP; the time from
 *     the first write until the destination acknowledges (median of 15),
 *     after a sync() of what the set-up left dirty; goal: flat in dataset
 *     size (largest / smallest <= 1.2);
 *   - the same change propagated by rsync between two directory copies of
 *     the dataset, through an rsync daemon on 127.0.0.1 started here (so
 *     it crosses loopback TCP), `rsync -a` and `rsync -a --checksum`; goal
 *     at the largest size: filer >= 50x faster than rsync -a;
 *   - bytes on the wire per changed byte: the source's bytes_out (frames
 *     and headers included, read live) over the changed bytes, for the
 *     scattered change and for one 1 MiB range (goal <= 1.1).
 * Part 1b, disks of their own: one baseline (1 GiB, quick 256 MiB) with
 * both volumes' images in memory (/dev/shm, or $FILER_BENCH_SHM) and every
 * disk throttled by raid's fault injector to L MB/s, so that each image is
 * a disk with bandwidth of its own; its MB/s against min(4 x L, loopback),
 * goal >= 0.8.  The same baseline unthrottled in memory comes first (what
 * the CPU allows): L is 200, halved until it is at most half of what each
 * data disk got there, as in bench_raid ($FILER_BENCH_DISK_MBS sets it).
 * Part 2, two real filerds (build/filerd) on loopback: source NFS write
 * throughput with sync mirroring on vs off (4 libnfs clients, 1 MiB
 * UNSTABLE WRITEs of new files, COMMIT at the end, timed to the last
 * COMMIT; goal >= 0.8; a run before the relationship exists, then three
 * rounds (quick: one) of a mirrored run and a run with the relationship
 * quiesced; on is the mean of the mirrored runs, off of the others; each
 * run's files are removed after it), and the destination's lag in CPs
 * sampled with `filerctl mirror status` every 100 ms under that load (the
 * probe runs in every run, so each pays for it).  Before the first timed
 * run the source takes 1.5 GiB of the same writes (quick: 4 x 32 MiB),
 * removed again, so its block pool is at its high-water mark, as on a
 * filer that has been running, in every run.  Part 2 runs twice: with
 * both homes in the scratch directory (one device takes both sides'
 * writes), then with the destination's home in memory (/dev/shm, or
 * $FILER_BENCH_SHM), a device of its own as on two appliances.
 *
 * FILER_BENCH_ONLY=indep: only part 1b, printed (no JSON).
 * FILER_BENCH_ONLY=nfs: only part 2 (once), printed (no JSON); for
 * profiling the two filerds.  FILER_BENCH_DEST_DIR=DIR puts its
 * destination's home (disk images and NVLOG) under DIR, for a destination
 * on a device of its own (a RAM disk such as /dev/shm on a one-disk
 * machine).
 *
 * FILER_BENCH_BASELINE_MIB=N: only the disk and loopback figures and one
 * baseline of N MiB, printed (no JSON); for profiling the baseline.  With
 * FILER_BENCH_UPDATES=K (at most 1000) as well, K scattered updates follow,
 * each printed with its parts; for profiling the update path.
 *
 * Disk bandwidth: 1 MiB writes of a new file and fsync (512 MiB, quick
 * 128 MiB).  Loopback: one sender thread, one receiver thread over
 * 127.0.0.1 for 2 s (quick 1 s).  Scratch: $FILER_BENCH_DIR, else
 * <outdir>/../bench-tmp; every image and copy is removed after its size
 * is done, and every process started here is stopped.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "mirror/mirror.h"
#include "tests/bench/benchout.h"
#include "tests/bench/devstat.h"
#include "tests/lib/tl_nfs.h"
#include "tests/lib/tl_pattern.h"
#include "tests/lib/tl_port.h"
#include "tests/lib/tl_raid.h"
#include "tests/lib/tl_proc.h"
#include "tests/lib/tl_tmpdir.h"
#include "tests/lib/tl_wafl.h"

#define MiB		(1024.0 * 1024.0)
#define FILE_BYTES	(64ull << 20)
#define CHUNK		(1u << 20)
#define NCHANGE		256		/* 4 KiB writes: 1 MiB */
#define UPDATE_RUNS	15
#define NSIZES		3	/* dataset sizes of the sweep */

static bool quick;
static char bindir[PATH_MAX];		/* build/ */
static const struct wafl_cred root_cred = { 0, 0, 0, { 0 } };

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2),
    noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("bench_mirror: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* ------------------------------------------------------ disk, loopback */

/* MB/s of 1 MiB writes of a new file in dir, fsync included. */
static double disk_write_mbs(const char *dir, uint64_t bytes)
{
	char path[PATH_MAX];
	uint8_t *b = malloc(CHUNK);
	double t0, t1;
	int fd;

	snprintf(path, sizeof(path), "%s/disk-bw", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || b == NULL)
		die("%s: %s", path, strerror(errno));
	tl_pattern_fill(b, CHUNK, 77, 0);
	t0 = tl_now_s();
	for (uint64_t off = 0; off < bytes; off += CHUNK) {
		b[0] = (uint8_t)(off >> 20);	/* no two chunks alike */
		if (pwrite(fd, b, CHUNK, (off_t)off) != (ssize_t)CHUNK)
			die("%s: write: %s", path, strerror(errno));
	}
	if (fsync(fd) != 0)
		die("%s: fsync: %s", path, strerror(errno));
	t1 = tl_now_s();
	close(fd);
	unlink(path);
	free(b);
	return (double)bytes / MiB / (t1 - t0);
}

/*
 * MB/s of data written to a fresh 4+1 raid volume of image files in dir,
 * as the destination of a baseline writes: full stripes, 1 MiB of data a
 * call, raid_flush included.  Parity makes the disk write 1.25 bytes per
 * byte of data, so this is what the disk gives a destination of that
 * geometry: the figure a baseline would reach with nothing else to do.
 */
static double volume_write_mbs(const char *dir, uint64_t bytes)
{
	const uint32_t per_call = CHUNK / 4096 / 4;	/* stripes */
	struct tl_vol t;
	uint8_t *b = malloc(CHUNK);
	double t0, t1;
	int rc;

	if (b == NULL)
		die("volume write: out of memory");
	rc = tl_vol_create(&t, dir, 1, 4, 1, bytes / 4 / 4096, false);
	if (rc != 0)
		die("volume write: raid_create: %s", strerror(-rc));
	tl_pattern_fill(b, CHUNK, 79, 0);
	t0 = tl_now_s();
	for (uint64_t s = 0; s < t.disk_blocks; s += per_call) {
		b[0] = (uint8_t)s;	/* no two chunks alike */
		rc = raid_write_stripes(t.v, s * 4, per_call, b);
		if (rc != 0)
			die("volume write: raid_write_stripes: %s",
			    strerror(-rc));
	}
	rc = raid_flush(t.v);
	if (rc != 0)
		die("volume write: raid_flush: %s", strerror(-rc));
	t1 = tl_now_s();
	tl_vol_destroy(&t);
	free(b);
	return (double)bytes / MiB / (t1 - t0);
}

struct lo_recv {
	int fd;
	uint64_t bytes;
};

static void *lo_recv_main(void *arg)
{
	struct lo_recv *r = arg;
	uint8_t *b = malloc(CHUNK);
	ssize_t n;

	while (b != NULL && (n = read(r->fd, b, CHUNK)) > 0)
		r->bytes += (uint64_t)n;
	free(b);
	return NULL;
}

/* MB/s of one TCP stream over 127.0.0.1 for secs seconds. */
static double loopback_mbs(double secs)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), c, s;
	struct lo_recv r = { 0 };
	uint8_t *b = malloc(CHUNK);
	pthread_t th;
	double t0, t1;

	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) != 0 ||
	    listen(l, 1) != 0)
		die("loopback listener: %s", strerror(errno));
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		die("loopback connect: %s", strerror(errno));
	s = accept(l, NULL, NULL);
	if (s < 0 || b == NULL)
		die("loopback accept: %s", strerror(errno));
	tl_pattern_fill(b, CHUNK, 5, 0);
	r.fd = s;
	pthread_create(&th, NULL, lo_recv_main, &r);
	t0 = tl_now_s();
	do {
		size_t done = 0;

		while (done < CHUNK) {
			ssize_t n = write(c, b + done, CHUNK - done);

			if (n <= 0)
				die("loopback write: %s", strerror(errno));
			done += (size_t)n;
		}
	} while (tl_now_s() - t0 < secs);
	shutdown(c, SHUT_WR);
	pthread_join(th, NULL);
	t1 = tl_now_s();
	close(c);
	close(s);
	close(l);
	free(b);
	return (double)r.bytes / MiB / (t1 - t0);
}

/* ------------------------------------------------------------ processes */

/* Run argv, wait (bounded); its stdout into out (may be NULL). */
static int run_capture(char *const argv[], char *out, size_t outlen,
    long timeout_ms)
{
	int p[2];
	pid_t pid;
	size_t n = 0;
	int st;

	if (pipe(p) != 0)
		die("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], 1);
		if (nul >= 0)
			dup2(nul, 2);
		close(p[0]);
		close(p[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		char tmp[4096];
		ssize_t k = read(p[0], tmp, sizeof(tmp));

		if (k <= 0)
			break;
		if (out != NULL && n + 1 < outlen) {
			size_t c = (size_t)k < outlen - 1 - n ? (size_t)k :
			    outlen - 1 - n;
			memcpy(out + n, tmp, c);
			n += c;
		}
	}
	if (out != NULL)
		out[n] = '\0';
	close(p[0]);
	if ((st = tl_wait_exit(pid, timeout_ms)) < 0)
		(void)tl_stop(pid, 1000);
	return st;
}

/* argv of filerctl --home home, then the arguments in ap up to a NULL
 * (at most 20); prog holds the program's path. */
static void ctl_argv(char *argv[24], char *prog, size_t proglen,
    const char *home, va_list ap)
{
	int n = 0;

	snprintf(prog, proglen, "%s/filerctl", bindir);
	argv[n++] = prog;
	argv[n++] = (char *)"--home";
	argv[n++] = (char *)home;
	for (char *a; n < 23 && (a = va_arg(ap, char *)) != NULL;)
		argv[n++] = a;
	argv[n] = NULL;
}

/* filerctl --home home args...; stdout into out (may be NULL). */
static int ctl(const char *home, char *out, size_t outlen, ...)
{
	char prog[PATH_MAX + 16];
	char *argv[24];
	va_list ap;

	va_start(ap, outlen);
	ctl_argv(argv, prog, sizeof(prog), home, ap);
	va_end(ap);
	return run_capture(argv, out, outlen, 120000);
}

/* The same, and it must succeed. */
static void ctl_ok(const char *home, ...)
{
	char prog[PATH_MAX + 16], out[4096];
	char *argv[24];
	va_list ap;

	va_start(ap, home);
	ctl_argv(argv, prog, sizeof(prog), home, ap);
	va_end(ap);
	if (run_capture(argv, out, sizeof(out), 120000) != 0) {
		fprintf(stderr, "bench_mirror: filerctl");
		for (int i = 1; argv[i] != NULL; i++)
			fprintf(stderr, " %s", argv[i]);
		die("failed: %s", out);
	}
}

/* json_extract(json, path) as a number (NAN if absent). */
static double json_num(const char *json, const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	double v = NAN;

	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		return NAN;
	if (sqlite3_prepare_v2(db, "SELECT json_extract(?, ?)", -1, &st,
	    NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, json, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, path, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_ROW &&
		    sqlite3_column_type(st, 0) != SQLITE_NULL)
			v = sqlite3_column_double(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return v;
}

static bool json_str_is(const char *json, const char *path, const char *want)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	bool eq = false;

	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		return false;
	if (sqlite3_prepare_v2(db, "SELECT json_extract(?, ?) = ?", -1, &st,
	    NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, json, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, path, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, want, -1, SQLITE_TRANSIENT);
		eq = sqlite3_step(st) == SQLITE_ROW &&
		    sqlite3_column_int(st, 0) == 1;
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return eq;
}

/* ---------------------------------------------- part 1: the library */

struct pair {
	struct tl_fs *src, *dst;
	mir_source_t *ms;
	mir_dest_t *md;
	struct wafl_obj *files;
	int nfiles;
	uint8_t key[32], id[16];
};

static void check(int rc, const char *what)
{
	if (rc != 0)
		die("%s: %s", what, strerror(rc < 0 ? -rc : rc));
}

/* Source and destination volumes (4+1) for a dataset of `bytes`, filled
 * with 64 MiB files and synced; their disks behind raid's fault injector
 * if `fault` (for its throttle). */
static void pair_make(struct pair *p, uint64_t bytes, bool fault)
{
	uint64_t disk_blocks = bytes * 3 / 2 / 4 / 4096 + 16384;
	struct wafl_obj root;
	uint8_t *b = malloc(CHUNK);

	memset(p, 0, sizeof(*p));
	p->src = tl_fs_create(4, 1, disk_blocks, fault);
	p->dst = tl_fs_create(4, 1, disk_blocks, fault);
	check(wafl_unmount(p->dst->v), "destination unmount");
	p->dst->v = NULL;
	p->nfiles = (int)(bytes / FILE_BYTES);
	p->files = calloc((size_t)p->nfiles, sizeof(*p->files));
	if (b == NULL || p->files == NULL)
		die("memory");
	check(wafl_root(p->src->v, &root), "root");
	for (int i = 0; i < p->nfiles; i++) {
		char name[32];

		snprintf(name, sizeof(name), "f%03d", i);
		check(wafl_create(p->src->v, &root_cred, &root, name,
		    WAFL_UNCHECKED, NULL, 0, &p->files[i], NULL, NULL),
		    "create");
		for (uint64_t off = 0; off < FILE_BYTES; off += CHUNK) {
			enum wafl_stable c;

			tl_pattern_fill(b, CHUNK, (uint64_t)i + 1, off);
			check(wafl_write(p->src->v, &root_cred, &p->files[i],
			    off, CHUNK, b, WAFL_UNSTABLE, &c, NULL, NULL),
			    "write");
			if ((off / CHUNK) % 64 == 63)
				check(wafl_sync(p->src->v), "fill CP");
		}
	}
	check(wafl_sync(p->src->v), "fill CP");
	for (int i = 0; i < 32; i++)
		p->key[i] = (uint8_t)(0x5a ^ (i * 11));
	for (int i = 0; i < 16; i++)
		p->id[i] = (uint8_t)(0x40 + i);
	free(b);
}

static void pair_free(struct pair *p)
{
	if (p->ms != NULL)
		mir_source_stop(p->ms);
	if (p->md != NULL)
		mir_dest_stop(p->md);
	tl_fs_destroy(p->src);
	tl_fs_destroy(p->dst);
	free(p->files);
}

static int walk_count(void *arg, uint64_t vbn, uint64_t birth,
    uint32_t cksum, const void *blk, unsigned flags)
{
	(void)flags;
	(void)vbn;
	(void)birth;
	(void)blk;
	(*(uint64_t *)arg)++;
	return 0;
}

/* MB/s of the source's birth walk from generation 0 on its own (what a
 * baseline reads), no link. */
static double walk_mbs(struct pair *p)
{
	uint64_t n = 0;
	double t0 = tl_now_s();

	check(wafl_birth_walk(p->src->v, wafl_generation(p->src->v), 0,
	    walk_count, &n), "birth walk");
	return (double)n * 4096 / MiB / (tl_now_s() - t0);
}

/* The device's part of a baseline (the images of both volumes on it). */
struct devuse {
	bool ok;
	double rd_mbs, wr_mbs, busy;
};

/* Start both sides; returns the seconds until the baseline is
 * acknowledged, *blocks the blocks it sent, *cpu_s the CPU time both
 * sides used meanwhile, *dev what the device under the images did. */
static double pair_baseline(struct pair *p, uint64_t *blocks,
    double *cpu_s, struct devuse *dev)
{
	struct devstat d0, d1;
	struct rusage r0, r1;
	struct mir_dest_opts d = { .key = p->key, .key_len = sizeof(p->key),
	    .allow_baseline = true };
	struct mir_source_stats st;
	double t0;

	memcpy(d.rel_id, p->id, 16);
	check(mir_dest_start(p->dst->raid, &d, &p->md), "mir_dest_start");
	struct mir_source_opts s = { .key = p->key, .key_len = sizeof(p->key),
	    .host = "127.0.0.1", .port = mir_dest_port(p->md),
	    .mode = MIR_SYNC, .raid = p->src->raid, .allow_baseline = true,
	    .retry_ms = 20 };
	memcpy(s.rel_id, p->id, 16);
	getrusage(RUSAGE_SELF, &r0);
	d0 = devstat_read(p->dst->dir);
	t0 = tl_now_s();
	check(mir_source_start(p->src->v, &s, &p->ms), "mir_source_start");
	check(mir_source_wait(p->ms, 0, 600000), "baseline");
	t0 = tl_now_s() - t0;
	d1 = devstat_read(p->dst->dir);
	getrusage(RUSAGE_SELF, &r1);
	memset(dev, 0, sizeof(*dev));
	dev->ok = devstat_rates(&d0, &d1, &dev->rd_mbs, &dev->wr_mbs,
	    &dev->busy);
	*cpu_s = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec +
	    r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
	    (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec +
	    r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
	mir_source_stats(p->ms, &st);
	*blocks = st.blocks_sent_walk;
	return t0;
}

/* The source's bytes_out, live: every byte of a transfer is counted by
 * the time its acknowledgement is seen. */
static uint64_t bytes_out(struct pair *p)
{
	struct mir_source_stats st;

	mir_source_stats(p->ms, &st);
	return st.bytes_out;
}

/* Where an update's time goes: the writes, the source's CP, and from the
 * CP's end to the destination's acknowledgement. */
struct upd_split {
	double write_s, cp_s, ack_s;
	/* of ack_s, on the destination (mir_dest_stats) */
	double verify_s, dwrite_s, flush_s, advance_s;
	/* raid counters of the CP on each side: full and partial stripe
	 * writes, blocks read for partial stripes */
	uint64_t full[2], partial[2], preads[2];
	/* write-intent bitmap blocks written, raid flushes */
	uint64_t intent[2], flushes[2];
	/* the source's CP: freeze, write-out (wafl_stats), blocks */
	double freeze_s, cpwrite_s;
	uint64_t cp_blocks;
};

/* Change 1 MiB: NCHANGE scattered 4 KiB writes (scattered) or one range.
 * Then a CP; returns the seconds until the destination acknowledged it,
 * and (if split) its parts.  offs[] (NCHANGE entries: file << 32 | block)
 * records where. */
static double pair_update(struct pair *p, bool scattered, uint64_t *rng,
    uint64_t *offs, uint32_t salt, struct upd_split *split)
{
	uint8_t *b = malloc(CHUNK);
	enum wafl_stable c;
	double t0;

	if (b == NULL)
		die("memory");
	tl_pattern_fill(b, CHUNK, 0xc0ffee ^ salt, 0);
	for (int i = 0; i < NCHANGE; i++) {
		*rng = tl_mix64(*rng);
		uint64_t f = *rng % (uint64_t)p->nfiles;
		uint64_t blk = (*rng >> 20) % (FILE_BYTES / 4096);

		if (!scattered) {
			f = offs[0] >> 32;
			blk = (offs[0] & 0xffffffffu) + (uint64_t)i;
		}
		offs[i] = f << 32 | blk;
	}
	t0 = tl_now_s();
	if (scattered) {
		for (int i = 0; i < NCHANGE; i++)
			check(wafl_write(p->src->v, &root_cred,
			    &p->files[offs[i] >> 32],
			    (offs[i] & 0xffffffffu) * 4096, 4096, b + i * 4096,
			    WAFL_UNSTABLE, &c, NULL, NULL), "change");
	} else {
		check(wafl_write(p->src->v, &root_cred,
		    &p->files[offs[0] >> 32], (offs[0] & 0xffffffffu) * 4096,
		    CHUNK, b, WAFL_UNSTABLE, &c, NULL, NULL), "change");
	}
	double t1 = tl_now_s();
	struct mir_dest_stats d0, d1;
	struct raid_status r0[2], r1[2];
	mir_dest_stats(p->md, &d0);
	raid_status(p->src->raid, &r0[0]);
	raid_status(p->dst->raid, &r0[1]);
	struct wafl_stats w0, w1;
	wafl_get_stats(p->src->v, &w0);
	check(wafl_sync(p->src->v), "change CP");
	double t2 = tl_now_s();
	check(mir_source_wait(p->ms, wafl_generation(p->src->v), 120000),
	    "acknowledgement of the change");
	double t3 = tl_now_s();
	mir_dest_stats(p->md, &d1);
	raid_status(p->src->raid, &r1[0]);
	raid_status(p->dst->raid, &r1[1]);
	wafl_get_stats(p->src->v, &w1);
	if (split != NULL) {
		*split = (struct upd_split){ t1 - t0, t2 - t1, t3 - t2,
		    (double)(d1.verify_ns - d0.verify_ns) / 1e9,
		    (double)(d1.write_ns - d0.write_ns) / 1e9,
		    (double)(d1.flush_ns - d0.flush_ns) / 1e9,
		    (double)(d1.advance_ns - d0.advance_ns) / 1e9,
		    { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 },
		    (double)(w1.cp_freeze_ns_total - w0.cp_freeze_ns_total) /
		    1e9,
		    (double)(w1.cp_write_ns_total - w0.cp_write_ns_total) / 1e9,
		    w1.cp_blocks - w0.cp_blocks };
		for (int i = 0; i < 2; i++) {
			split->full[i] = r1[i].counters.full_stripe_writes -
			    r0[i].counters.full_stripe_writes;
			split->partial[i] =
			    r1[i].counters.partial_stripe_writes -
			    r0[i].counters.partial_stripe_writes;
			split->preads[i] = r1[i].counters.partial_reads -
			    r0[i].counters.partial_reads;
			split->intent[i] = r1[i].counters.intent_writes -
			    r0[i].counters.intent_writes;
			split->flushes[i] = r1[i].counters.flushes -
			    r0[i].counters.flushes;
		}
	}
	t0 = t3 - t0;
	free(b);
	return t0;
}

/* ------------------------------------------------------------ rsync */

struct rsyncd {
	pid_t pid;
	uint16_t port;
	char dir_a[PATH_MAX], dir_b[PATH_MAX];
	char why[2 * PATH_MAX + 64];
};

static const char *rsync_bin(void)
{
	static const char *const c[] = { "/usr/bin/rsync", "/bin/rsync",
	    NULL };

	for (int i = 0; c[i] != NULL; i++)
		if (access(c[i], X_OK) == 0)
			return c[i];
	return NULL;
}

/* Directory copies a (source) and b (module "b" of a daemon on
 * 127.0.0.1) of the dataset; b's files carry a's mtimes. */
static int rsyncd_start(struct rsyncd *r, const char *tmp, uint64_t bytes)
{
	char conf[PATH_MAX], log[PATH_MAX], portarg[32];
	const char *rs = rsync_bin();
	uint8_t *b = malloc(CHUNK);
	FILE *f;

	memset(r, 0, sizeof(*r));
	if (rs == NULL) {
		snprintf(r->why, sizeof(r->why), "rsync is not installed "
		    "(make bench installs the Debian package rsync)");
		free(b);
		return -ENOENT;
	}
	snprintf(r->dir_a, sizeof(r->dir_a), "%s/rsync-a", tmp);
	snprintf(r->dir_b, sizeof(r->dir_b), "%s/rsync-b", tmp);
	mkdir(r->dir_a, 0755);
	mkdir(r->dir_b, 0755);
	for (uint64_t i = 0; i < bytes / FILE_BYTES; i++) {
		char pa[PATH_MAX + 16], pb[PATH_MAX + 16];
		int fa, fb;

		snprintf(pa, sizeof(pa), "%s/f%03d", r->dir_a, (int)i);
		snprintf(pb, sizeof(pb), "%s/f%03d", r->dir_b, (int)i);
		fa = open(pa, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		fb = open(pb, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fa < 0 || fb < 0 || b == NULL)
			die("%s: %s", pa, strerror(errno));
		for (uint64_t off = 0; off < FILE_BYTES; off += CHUNK) {
			tl_pattern_fill(b, CHUNK, i + 1, off);
			if (pwrite(fa, b, CHUNK, (off_t)off) != CHUNK ||
			    pwrite(fb, b, CHUNK, (off_t)off) != CHUNK)
				die("%s: write: %s", pa, strerror(errno));
		}
		fsync(fa);
		fsync(fb);
		close(fa);
		close(fb);
		/* Both copies an hour old: the change gives a's files a new
		 * mtime, which rsync's quick check compares in seconds. */
		struct timespec ts[2] = { { time(NULL) - 3600, 0 },
		    { time(NULL) - 3600, 0 } };
		utimensat(AT_FDCWD, pa, ts, 0);
		utimensat(AT_FDCWD, pb, ts, 0);
	}
	free(b);
	if (tl_free_ports(&r->port, 1) != 0)
		die("no free port");
	snprintf(conf, sizeof(conf), "%s/rsyncd.conf", tmp);
	snprintf(log, sizeof(log), "%s/rsyncd.log", tmp);
	f = fopen(conf, "w");
	if (f == NULL)
		die("%s: %s", conf, strerror(errno));
	fprintf(f, "address = 127.0.0.1\nuse chroot = no\n"
	    "pid file = %s/rsyncd.pid\nlog file = %s\n\n[b]\n"
	    "path = %s\nread only = no\nuid = 0\ngid = 0\n", tmp, log,
	    r->dir_b);
	fclose(f);
	snprintf(portarg, sizeof(portarg), "--port=%u", r->port);
	char confarg[PATH_MAX + 16];
	snprintf(confarg, sizeof(confarg), "--config=%s", conf);
	char *argv[] = { (char *)rs, (char *)"--daemon", (char *)"--no-detach",
	    confarg, portarg, NULL };
	r->pid = tl_spawn(argv, log);
	if (r->pid < 0)
		die("fork: %s", strerror(errno));
	for (int i = 0; i < 250 && !tl_port_open(r->port); i++)
		tl_sleep_ms(20);
	if (!tl_port_open(r->port)) {
		snprintf(r->why, sizeof(r->why), "the rsync daemon did not "
		    "start (see %s)", log);
		return -EIO;
	}
	return 0;
}

/* Apply the change recorded in offs to copy a (same bytes as filer's). */
static void rsync_change(struct rsyncd *r, const uint64_t *offs,
    uint32_t salt)
{
	uint8_t *b = malloc(CHUNK);

	if (b == NULL)
		die("memory");
	tl_pattern_fill(b, CHUNK, 0xc0ffee ^ salt, 0);
	for (int i = 0; i < NCHANGE; i++) {
		char p[PATH_MAX + 16];
		int fd;

		snprintf(p, sizeof(p), "%s/f%03d", r->dir_a,
		    (int)(offs[i] >> 32));
		fd = open(p, O_WRONLY);
		if (fd < 0 || pwrite(fd, b + i * 4096, 4096,
		    (off_t)((offs[i] & 0xffffffffu) * 4096)) != 4096)
			die("%s: %s", p, strerror(errno));
		close(fd);
	}
	free(b);
}

/* Seconds of rsync -a [extra] a/ rsync://127.0.0.1:port/b/; NAN on
 * failure. */
static double rsync_run(struct rsyncd *r, const char *extra)
{
	char src[PATH_MAX + 2], dst[64];
	char *argv[6];
	int n = 0, st;
	double t0;

	snprintf(src, sizeof(src), "%s/", r->dir_a);
	snprintf(dst, sizeof(dst), "rsync://127.0.0.1:%u/b/", r->port);
	argv[n++] = (char *)rsync_bin();
	argv[n++] = (char *)"-a";
	if (extra != NULL)
		argv[n++] = (char *)extra;
	argv[n++] = src;
	argv[n++] = dst;
	argv[n] = NULL;
	t0 = tl_now_s();
	st = run_capture(argv, NULL, 0, 1800000);
	t0 = tl_now_s() - t0;
	if (st != 0) {
		snprintf(r->why, sizeof(r->why), "rsync exited %d", st);
		return NAN;
	}
	return t0;
}

/* One changed block of b equals a's. */
static bool rsync_verify(const struct rsyncd *r, uint64_t off)
{
	char pa[PATH_MAX + 16], pb[PATH_MAX + 16];
	uint8_t x[4096], y[4096];
	int fa, fb;
	bool ok;

	snprintf(pa, sizeof(pa), "%s/f%03d", r->dir_a, (int)(off >> 32));
	snprintf(pb, sizeof(pb), "%s/f%03d", r->dir_b, (int)(off >> 32));
	fa = open(pa, O_RDONLY);
	fb = open(pb, O_RDONLY);
	ok = fa >= 0 && fb >= 0 &&
	    pread(fa, x, 4096, (off_t)((off & 0xffffffffu) * 4096)) == 4096 &&
	    pread(fb, y, 4096, (off_t)((off & 0xffffffffu) * 4096)) == 4096 &&
	    memcmp(x, y, 4096) == 0;
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return ok;
}

static void rsyncd_stop(struct rsyncd *r)
{
	if (r->pid > 0)
		tl_stop(r->pid, 60000);
	r->pid = 0;
	if (r->dir_a[0] != '\0')
		tl_tmpdir_remove(strdup(r->dir_a));
	if (r->dir_b[0] != '\0')
		tl_tmpdir_remove(strdup(r->dir_b));
}

/* ------------------------------------------------- the size sweep */

struct sized {
	uint64_t bytes;
	double baseline_s, baseline_mbs, baseline_cpu;
	struct devuse baseline_dev;	/* the device under the images */
	double walk_mbs;		/* the source's walk alone */
	double update_s;		/* median, scattered */
	struct upd_split split;		/* the parts of the median run */
	double wire_scattered, wire_range;	/* bytes out / bytes changed */
	double blocks_scattered, blocks_range;	/* blocks sent / changed */
	double rsync_s, rsync_c_s;	/* NAN if not measured */
	char why[2 * PATH_MAX + 64];
};

static void devuse_print(const struct devuse *d)
{
	if (d->ok)
		printf("    the device under the images meanwhile: busy %.0f%% "
		    "of the time, %.0f MB/s written, %.0f MB/s read\n",
		    d->busy * 100, d->wr_mbs, d->rd_mbs);
}

/* A size's pair, filled and through its baseline. */
static void size_setup(struct sized *z, struct pair *p)
{
	uint64_t blocks;

	printf("  %.0f MiB: filling the source...\n", z->bytes / MiB);
	fflush(stdout);
	pair_make(p, z->bytes, false);
	z->walk_mbs = walk_mbs(p);
	z->baseline_s = pair_baseline(p, &blocks, &z->baseline_cpu,
	    &z->baseline_dev);
	z->baseline_mbs = (double)blocks * 4096 / MiB / z->baseline_s;
	printf("  %.0f MiB: baseline %.1f s (%.0f MB/s, %.1f s of CPU); the "
	    "source's walk alone %.0f MB/s\n", z->bytes / MiB, z->baseline_s,
	    z->baseline_mbs, z->baseline_cpu, z->walk_mbs);
	devuse_print(&z->baseline_dev);
	fflush(stdout);
}

/*
 * Update cost: scattered 4 KiB writes, median of UPDATE_RUNS per size.
 * The goal is a ratio between sizes, so their runs take turns (one of
 * each size, then again): whatever the machine does meanwhile falls on
 * every size alike, not on the size whose turn it happened to be.  The
 * fills and baselines leave up to twice each dataset dirty in the page
 * cache; its write-back would compete with the updates' flushes, so it
 * is done first (as for rsync's copies below).
 */
static void sizes_update(struct sized *z, struct pair *p, int n)
{
	double t[NSIZES][UPDATE_RUNS];
	struct upd_split sp[NSIZES][UPDATE_RUNS];
	uint64_t rng[NSIZES], offs[NCHANGE];

	for (int k = 0; k < n; k++)
		rng[k] = 12345 ^ z[k].bytes;
	sync();
	for (int i = 0; i < UPDATE_RUNS; i++)
		for (int k = 0; k < n; k++)
			t[k][i] = pair_update(&p[k], true, &rng[k], offs,
			    (uint32_t)i, &sp[k][i]);
	for (int k = 0; k < n; k++) {
		double ts[UPDATE_RUNS];

		memcpy(ts, t[k], sizeof(ts));
		z[k].update_s = tl_median(ts, UPDATE_RUNS); /* sorts its copy */
		for (int i = 0; i < UPDATE_RUNS; i++)
			if (t[k][i] == z[k].update_s)
				z[k].split = sp[k][i];
	}
}

/* The rest of a size: wire bytes, rsync; frees the pair. */
static void size_finish(const char *tmp, struct sized *z, struct pair *pp)
{
	struct pair p = *pp;
	struct rsyncd r;
	uint64_t rng = 12345 ^ z->bytes ^ 0x5eed, offs[NCHANGE];
	struct mir_source_stats st0, st1;

	/* Bytes on the wire for one change of each shape. */
	uint64_t b0 = bytes_out(&p);
	mir_source_stats(p.ms, &st0);
	(void)pair_update(&p, true, &rng, offs, 100, NULL);
	uint64_t b1 = bytes_out(&p);
	mir_source_stats(p.ms, &st1);
	z->wire_scattered = (double)(b1 - b0) / (NCHANGE * 4096.0);
	z->blocks_scattered = (double)(st1.blocks_sent_cp + st1.blocks_sent_walk -
	    st0.blocks_sent_cp - st0.blocks_sent_walk) / NCHANGE;
	offs[0] = (uint64_t)(p.nfiles / 2) << 32 | 4096;	/* at 16 MiB */
	(void)pair_update(&p, false, &rng, offs, 200, NULL);
	uint64_t b2 = bytes_out(&p);
	mir_source_stats(p.ms, &st0);
	z->wire_range = (double)(b2 - b1) / (NCHANGE * 4096.0);
	z->blocks_range = (double)(st0.blocks_sent_cp + st0.blocks_sent_walk -
	    st1.blocks_sent_cp - st1.blocks_sent_walk) / NCHANGE;
	printf("  %.0f MiB: update %.3f s (writes %.3f, CP %.3f, to the "
	    "acknowledgement %.3f); wire bytes per changed byte %.2f "
	    "(scattered), %.2f (range)\n", z->bytes / MiB, z->update_s,
	    z->split.write_s, z->split.cp_s, z->split.ack_s,
	    z->wire_scattered, z->wire_range);
	fflush(stdout);
	pair_free(&p);

	/* rsync: the same kind of change between two directory copies. */
	z->rsync_s = z->rsync_c_s = NAN;
	if (rsyncd_start(&r, tmp, z->bytes) == 0) {
		sync();
		rng = 12345 ^ z->bytes;
		for (int k = 0; k < 2; k++) {
			for (int i = 0; i < NCHANGE; i++) {
				rng = tl_mix64(rng);
				uint64_t f = rng % (z->bytes / FILE_BYTES);
				uint64_t blk = (rng >> 20) %
				    (FILE_BYTES / 4096);
				offs[i] = f << 32 | blk;
			}
			rsync_change(&r, offs, (uint32_t)(300 + k));
			double s = rsync_run(&r, k == 0 ? NULL : "--checksum");
			if (!isnan(s) && !rsync_verify(&r, offs[0])) {
				snprintf(r.why, sizeof(r.why), "rsync left a "
				    "changed block different");
				s = NAN;
			}
			if (k == 0)
				z->rsync_s = s;
			else
				z->rsync_c_s = s;
		}
		printf("  %.0f MiB: rsync -a %.2f s, rsync -a --checksum "
		    "%.2f s\n", z->bytes / MiB, z->rsync_s, z->rsync_c_s);
	}
	if (r.why[0] != '\0')
		snprintf(z->why, sizeof(z->why), "%s", r.why);
	rsyncd_stop(&r);
	fflush(stdout);
}

/* ------------------------------------ part 1b: disks of their own */

/*
 * In the runs above the ten images of both volumes share this machine's
 * one device, so the destination's parity takes a fifth of the bandwidth
 * its data could have had: a baseline can reach at most 0.8 of the
 * disk's rate there, whatever the mirror does.  On an appliance each of a
 * volume's disks has bandwidth of its own.  This run models that: both
 * volumes' images in memory (/dev/shm), every disk throttled by raid's
 * fault injector to the same rate L (raid/fault.c: a virtual clock per
 * disk), so the destination takes data at 4 x L on its four data disks
 * while its parity goes to the fifth.  The figure is the baseline's MB/s
 * against min(4 x L, loopback), the same goal as above; and the same
 * baseline unthrottled in memory, which says what the CPU allows.
 */
struct indep {
	unsigned rate;			/* L, MB/s (10^6 B/s) per disk */
	uint64_t bytes;
	double mbs, cpu_s, secs;	/* throttled */
	double mem_mbs, mem_cpu_s;	/* unthrottled, in memory */
	double walk_mbs;		/* the source's walk alone, throttled */
};

static void pair_throttle(struct pair *p, unsigned rate)
{
	struct tl_fs *fs[2] = { p->src, p->dst };

	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < raid_ndisks(fs[k]->raid); i++)
			check(raid_fault_set(fs[k]->raid, i,
			    RAID_FAULT_THROTTLE, rate, 0), "throttle");
}

/* A baseline of `bytes` with both volumes under a fresh directory of shm,
 * every disk throttled to rate MB/s after the fill (0: not throttled);
 * MiB/s of blocks sent, as the other baselines.  With walk, the source's
 * walk alone first, on the same disks (it leaves the blocks in no cache
 * of raid's: every read of the baseline is paid for again). */
static double indep_run(const char *shm, uint64_t bytes, unsigned rate,
    double *cpu_s, double *secs, double *walk)
{
	char saved[PATH_MAX], *dir = tl_tmpdir_make(shm, "mirror-indep");
	struct devuse dev;
	uint64_t blocks;
	struct pair p;

	snprintf(saved, sizeof(saved), "%s", getenv("TMPDIR"));
	setenv("TMPDIR", dir, 1);
	pair_make(&p, bytes, true);
	if (rate != 0)
		pair_throttle(&p, rate);
	if (walk != NULL)
		*walk = walk_mbs(&p);
	*secs = pair_baseline(&p, &blocks, cpu_s, &dev);
	pair_free(&p);
	setenv("TMPDIR", saved, 1);
	tl_tmpdir_remove(dir);
	return (double)blocks * 4096 / MiB / *secs;
}

/* 4 x L in MiB/s, the unit of the baselines. */
static double indep_peer(const struct indep *r)
{
	return 4.0 * r->rate * 1e6 / MiB;
}

/* Memory as a device of its own: $FILER_BENCH_SHM, else /dev/shm. */
static const char *shm_dir(void)
{
	return getenv("FILER_BENCH_SHM") != NULL ? getenv("FILER_BENCH_SHM") :
	    "/dev/shm";
}

static void run_indep(struct indep *r)
{
	const char *shm = shm_dir();
	const char *l = getenv("FILER_BENCH_DISK_MBS");
	double s;

	r->rate = l != NULL ? (unsigned)strtoul(l, NULL, 10) : 200;
	if (r->rate == 0 || r->rate > 100000)
		die("FILER_BENCH_DISK_MBS=%s: a rate in MB/s, 1 to 100000", l);
	r->bytes = quick ? 256ull << 20 : 1024ull << 20;
	printf("  disks of their own (%s): %.0f MiB...\n", shm,
	    r->bytes / MiB);
	fflush(stdout);
	r->mem_mbs = indep_run(shm, r->bytes, 0, &r->mem_cpu_s, &s, NULL);
	/* As bench_raid: the disks, not the two shared cores, must be what
	 * bounds the run, so L is halved until it is at most half of what
	 * each data disk got unthrottled (unless given). */
	double per_disk = r->mem_mbs * MiB / 1e6 / 4;
	while (l == NULL && r->rate > 10 && r->rate > per_disk / 2)
		r->rate /= 2;
	r->mbs = indep_run(shm, r->bytes, r->rate, &r->cpu_s, &r->secs,
	    &r->walk_mbs);
	printf("  disks of their own (L = %u MB/s): baseline %.0f MB/s in "
	    "%.2f s (%.2f of 4 x L = %.0f MB/s; %.1f s of CPU); the source's walk alone %.0f "
	    "MB/s (%.2f); unthrottled in memory %.0f MB/s (%.1f s of CPU)\n",
	    r->rate, r->mbs, r->secs, r->mbs / indep_peer(r), indep_peer(r),
	    r->cpu_s,
	    r->walk_mbs, r->walk_mbs / indep_peer(r), r->mem_mbs,
	    r->mem_cpu_s);
}

/* ------------------------------------------- part 2: filerds over NFS */

struct side {
	char home[PATH_MAX];
	char log[PATH_MAX + 8];
	pid_t pid;
	uint16_t nfs_port, mnt_port, mir_port;
	const char *vol;
};

static void side_setup(struct side *s, const char *tmp, const char *name,
    const char *vol, const char *size)
{
	char v[32], path[64];

	snprintf(s->home, sizeof(s->home), "%s/%s", tmp, name);
	snprintf(s->log, sizeof(s->log), "%s.log", s->home);
	s->vol = vol;
	uint16_t ports[3];

	if (tl_free_ports(ports, 3) != 0)
		die("no free ports");
	s->nfs_port = ports[0];
	s->mnt_port = ports[1];
	s->mir_port = ports[2];
	ctl_ok(s->home, "config", "set", "nvlog_half_bytes", "64M", NULL);
	ctl_ok(s->home, "vol", "create", vol, "--disks", "5", "--parity", "1",
	    "--size", size, NULL);
	snprintf(v, sizeof(v), "%u", s->nfs_port);
	ctl_ok(s->home, "config", "set", "nfs_port", v, NULL);
	snprintf(v, sizeof(v), "%u", s->mnt_port);
	ctl_ok(s->home, "config", "set", "mount_port", v, NULL);
	snprintf(v, sizeof(v), "%u", s->mir_port);
	ctl_ok(s->home, "config", "set", "mirror_port", v, NULL);
	ctl_ok(s->home, "config", "set", "nfs_rpcbind", "false", NULL);
	snprintf(path, sizeof(path), "/vol/%s", vol);
	ctl_ok(s->home, "export", "add", path, "--client", "127.0.0.1", "--rw",
	    "--squash", "none", "--insecure", NULL);
}

static void side_start(struct side *s)
{
	char prog[PATH_MAX + 16];
	char *argv[] = { prog, (char *)"--home", s->home,
	    (char *)"--foreground", NULL };

	snprintf(prog, sizeof(prog), "%s/filerd", bindir);
	s->pid = tl_spawn(argv, s->log);
	if (s->pid < 0)
		die("fork: %s", strerror(errno));
	for (int i = 0; i < 600; i++) {
		if (ctl(s->home, NULL, 0, "stats", NULL) == 0 &&
		    tl_port_open(s->nfs_port))
			return;
		tl_sleep_ms(50);
	}
	die("filerd on %s did not come up (see %s)", s->home, s->log);
}

struct nfs_writer {
	const struct side *s;
	char path[32];
	uint64_t bytes;
	int rc;
	char err[256];
};

static void *nfs_writer_main(void *arg)
{
	struct nfs_writer *w = arg;
	struct nfs_context *nfs;
	struct nfsfh *fh;
	uint8_t *b = malloc(CHUNK);
	char path[64];

	w->rc = -1;
	snprintf(path, sizeof(path), "/vol/%s", w->s->vol);
	nfs = tl_nfs_mount(path, w->s->nfs_port, w->s->mnt_port, 60000,
	    w->err, sizeof(w->err));
	if (nfs == NULL || b == NULL)
		goto out;
	if (nfs_creat(nfs, w->path, 0644, &fh) != 0) {
		snprintf(w->err, sizeof(w->err), "create: %s",
		    nfs_get_error(nfs));
		goto out;
	}
	for (uint64_t off = 0; off < w->bytes; off += CHUNK) {
		tl_pattern_fill(b, CHUNK, (uint64_t)w->path[1] * 7 + 3, off);
		if (nfs_pwrite(nfs, fh, off, CHUNK, b) != (int)CHUNK) {
			snprintf(w->err, sizeof(w->err), "write: %s",
			    nfs_get_error(nfs));
			goto out;
		}
	}
	if (nfs_fsync(nfs, fh) != 0) {
		snprintf(w->err, sizeof(w->err), "commit: %s",
		    nfs_get_error(nfs));
		goto out;
	}
	nfs_close(nfs, fh);
	w->rc = 0;
out:
	if (nfs != NULL)
		nfs_destroy_context(nfs);
	free(b);
	return NULL;
}

struct lag_probe {
	const struct side *s;
	_Atomic int stop;
	double max_cps, sum_cps;
	int samples;
};

static void *lag_main(void *arg)
{
	struct lag_probe *l = arg;
	char out[8192];

	while (!atomic_load(&l->stop)) {
		if (ctl(l->s->home, out, sizeof(out), "mirror", "status",
		    "--json", NULL) == 0) {
			double v = json_num(out, "$.mirrors[0].lag_cps");

			if (!isnan(v)) {
				l->sum_cps += v;
				l->samples++;
				if (v > l->max_cps)
					l->max_cps = v;
			}
		}
		tl_sleep_ms(100);
	}
	return NULL;
}

/* MiB/s of 4 clients writing `bytes` each into new files. */
static double nfs_write_mbs(const struct side *s, const char *tag,
    uint64_t bytes)
{
	struct nfs_writer w[4];
	pthread_t th[4];
	double t0;

	memset(w, 0, sizeof(w));
	t0 = tl_now_s();
	for (int i = 0; i < 4; i++) {
		w[i].s = s;
		w[i].bytes = bytes;
		snprintf(w[i].path, sizeof(w[i].path), "/%c%s-%d", 'a' + i,
		    tag, i);
		pthread_create(&th[i], NULL, nfs_writer_main, &w[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	t0 = tl_now_s() - t0;
	for (int i = 0; i < 4; i++)
		if (w[i].rc != 0)
			die("NFS writer %s: %s", w[i].path, w[i].err);
	return 4.0 * (double)bytes / MiB / t0;
}

/* Remove what nfs_write_mbs(s, tag, ...) wrote. */
static void nfs_remove(const struct side *s, const char *tag)
{
	char path[64], err[256];
	struct nfs_context *nfs;

	snprintf(path, sizeof(path), "/vol/%s", s->vol);
	nfs = tl_nfs_mount(path, s->nfs_port, s->mnt_port, 60000, err,
	    sizeof(err));
	if (nfs == NULL)
		die("mount %s: %s", path, err);
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "/%c%s-%d", 'a' + i, tag, i);
		if (nfs_unlink(nfs, path) != 0)
			die("remove %s: %s", path, nfs_get_error(nfs));
	}
	nfs_destroy_context(nfs);
}

/* Wait (bounded) until the source's status shows the destination
 * acknowledged its newest generation, in-sync. */
static bool wait_acked(const struct side *s, long timeout_ms)
{
	char out[8192];

	for (long i = 0; i < timeout_ms / 100; i++) {
		if (ctl(s->home, out, sizeof(out), "mirror", "status",
		    "--json", NULL) == 0 &&
		    json_str_is(out, "$.mirrors[0].state", "in-sync") &&
		    json_num(out, "$.mirrors[0].acked_gen") >= 1 &&
		    json_num(out, "$.mirrors[0].acked_gen") >=
		    json_num(out, "$.mirrors[0].source_gen"))
			return true;
		tl_sleep_ms(100);
	}
	return false;
}

/* Interleaved rounds of the NFS part (quick: one). */
#define NFS_ROUNDS	3

struct nfsres {
	double off_mbs, on_mbs, lag_max, lag_mean;
	/* Every timed run: off[0] before the relationship exists, then
	 * on[r] and off[r + 1] (quiesced) for each round r. */
	double on[NFS_ROUNDS], off[NFS_ROUNDS + 1];
	int rounds;
	double catchup_s;	/* the mean over the rounds */
	char why[3 * PATH_MAX];
};

/* One timed run of 4 writers, the lag probe running; its files removed. */
static double nfs_timed(const struct side *s, const char *tag,
    uint64_t bytes, struct lag_probe *lp)
{
	pthread_t lt;
	double mbs;

	double t0;

	memset(lp, 0, sizeof(*lp));
	lp->s = s;
	pthread_create(&lt, NULL, lag_main, lp);
	t0 = tl_now_s();
	mbs = nfs_write_mbs(s, tag, bytes);
	atomic_store(&lp->stop, 1);
	pthread_join(lt, NULL);
	/* CLOCK_MONOTONIC, the clock of `perf report --time`. */
	if (getenv("FILER_BENCH_ONLY") != NULL)
		printf("  run %s: monotonic %.3f,%.3f\n", tag, t0,
		    tl_now_s());
	return mbs;
}

/*
 * Rounds of (mirrored, quiesced) runs after one run before the relationship
 * exists: a run lasts a second or two, a few CPs, and the machine's load
 * moves single runs by a third, so on and off alternate and each is the
 * mean of its runs.  Every run's files are removed after it (the volume
 * never fills), the mirrored run's once the destination acknowledged them.
 */
static void run_nfs(const char *tmp, const char *dest_dir,
    struct nfsres *res)
{
	struct side s, d;
	char key[PATH_MAX + 16], a[64], tag[16], snap[16];
	uint64_t per = quick ? (32ull << 20) : (128ull << 20);
	struct lag_probe lp;
	double lag_sum = 0, on_sum = 0, off_sum = 0, catch_sum = 0;
	int lag_n = 0;
	FILE *f;

	memset(res, 0, sizeof(*res));
	memset(&s, 0, sizeof(s));
	memset(&d, 0, sizeof(d));
	res->rounds = quick ? 1 : NFS_ROUNDS;
	/* A directory of this run's own (removed after it unless it
	 * failed); dest_dir: the destination on a device of its own. */
	char *top = tl_tmpdir_make(tmp, "nfs");
	char *dtop = dest_dir == NULL ? NULL :
	    tl_tmpdir_make(dest_dir, "mirror-dst");
	const char *dtmp = dtop != NULL ? dtop : top;
	tmp = top;
	side_setup(&s, tmp, "src", "vsrc", quick ? "256M" : "1G");
	side_setup(&d, dtmp, "dst", "vdst", quick ? "256M" : "1G");
	if (dtmp != tmp)
		printf("  NFS part: the destination's home is %s\n", d.home);
	snprintf(key, sizeof(key), "%s/mirror.key", tmp);
	f = fopen(key, "w");
	if (f == NULL)
		die("%s: %s", key, strerror(errno));
	fprintf(f, "bench-mirror-key-0123456789abcdef\n");
	fclose(f);
	side_start(&s);
	side_start(&d);

	/* Warm-up: a fresh filerd's block pool grows, each new huge page
	 * zeroed by the kernel, until it holds cache_bytes and twice
	 * dirty_max; without this the growth would fall in the first timed
	 * runs and not in the later ones. */
	double warm = nfs_write_mbs(&s, "warm", quick ? per : (384ull << 20));
	nfs_remove(&s, "warm");
	printf("  NFS writes, warm-up: %.1f MiB/s (removed)\n", warm);

	/* The lag probe runs in every timed run (a filerctl process every
	 * 100 ms costs CPU), and counts in the mirrored ones only. */
	res->off[0] = nfs_timed(&s, "off0", per, &lp);
	nfs_remove(&s, "off0");
	off_sum += res->off[0];
	printf("  NFS writes, no relationship: %.1f MiB/s\n", res->off[0]);
	fflush(stdout);

	snprintf(a, sizeof(a), "127.0.0.1:%u", d.mir_port);
	ctl_ok(s.home, "peer", "add", "dst", "--address", a, "--key-file", key,
	    NULL);
	snprintf(a, sizeof(a), "127.0.0.1:%u", s.mir_port);
	ctl_ok(d.home, "peer", "add", "src", "--address", a, "--key-file", key,
	    NULL);
	ctl_ok(d.home, "mirror", "create", "src:vsrc", "vdst", "--mode", "sync",
	    NULL);
	ctl_ok(s.home, "mirror", "create", "vsrc", "dst:vdst", "--mode", "sync",
	    NULL);
	ctl_ok(s.home, "mirror", "init", "vsrc", NULL);
	ctl_ok(s.home, "snap", "create", "vsrc", "b0", NULL);
	if (!wait_acked(&s, 600000)) {
		snprintf(res->why, sizeof(res->why), "the baseline did not "
		    "complete (see %s, %s)", s.log, d.log);
		goto out;
	}

	for (int r = 0; r < res->rounds; r++) {
		/* On: mirrored in sync mode, lag sampled. */
		snprintf(tag, sizeof(tag), "on%d", r);
		res->on[r] = nfs_timed(&s, tag, per, &lp);
		on_sum += res->on[r];
		lag_sum += lp.sum_cps;
		lag_n += lp.samples;
		if (lp.max_cps > res->lag_max)
			res->lag_max = lp.max_cps;
		/* A snapshot makes a CP: the catch-up is timed to its
		 * acknowledgement. */
		double t0 = tl_now_s();
		snprintf(snap, sizeof(snap), "b%d", r + 1);
		ctl_ok(s.home, "snap", "create", "vsrc", snap, NULL);
		bool caught = wait_acked(&s, 300000);
		double cu = tl_now_s() - t0;
		catch_sum += cu;
		printf("  NFS writes, sync mirroring on: %.1f MiB/s; lag max "
		    "%.0f CPs, mean %.2f over %d samples; caught up in %.1f "
		    "s\n", res->on[r], lp.max_cps, lp.samples > 0 ?
		    lp.sum_cps / lp.samples : NAN, lp.samples, cu);
		if (!caught) {
			snprintf(res->why, sizeof(res->why), "the destination "
			    "did not catch up after the load (see %s, %s)",
			    s.log, d.log);
			goto out;
		}
		ctl_ok(s.home, "snap", "delete", "vsrc", snap, NULL);
		nfs_remove(&s, tag);

		/* Off: the relationship quiesced (nothing shipped). */
		ctl_ok(s.home, "mirror", "quiesce", "vsrc", NULL);
		snprintf(tag, sizeof(tag), "off%d", r + 1);
		res->off[r + 1] = nfs_timed(&s, tag, per, &lp);
		off_sum += res->off[r + 1];
		nfs_remove(&s, tag);
		/* A CP of the removal before resume: the catch-up then does
		 * not send the files just removed. */
		ctl_ok(s.home, "snap", "create", "vsrc", "q", NULL);
		ctl_ok(s.home, "snap", "delete", "vsrc", "q", NULL);
		printf("  NFS writes, mirroring quiesced: %.1f MiB/s\n",
		    res->off[r + 1]);
		fflush(stdout);
		ctl_ok(s.home, "mirror", "resume", "vsrc", NULL);
		if (!wait_acked(&s, 300000)) {
			snprintf(res->why, sizeof(res->why), "the destination "
			    "did not catch up after resume (see %s, %s)",
			    s.log, d.log);
			goto out;
		}
	}
	res->on_mbs = on_sum / res->rounds;
	res->off_mbs = off_sum / (res->rounds + 1);
	res->lag_mean = lag_n > 0 ? lag_sum / lag_n : NAN;
	res->catchup_s = catch_sum / res->rounds;
out:
	if (tl_stop(s.pid, 60000) != 0 && res->why[0] == '\0')
		snprintf(res->why, sizeof(res->why), "source filerd did not "
		    "stop cleanly (see %s)", s.log);
	if (tl_stop(d.pid, 60000) != 0 && res->why[0] == '\0')
		snprintf(res->why, sizeof(res->why), "destination filerd did "
		    "not stop cleanly (see %s)", d.log);
	if (res->why[0] == '\0') {
		tl_tmpdir_remove(top);
		if (dtop != NULL)
			tl_tmpdir_remove(dtop);
	}
	fflush(stdout);
}

/* "a / b / c" of n figures, for a note. */
static const char *fig_list(char *buf, size_t len, const double *v, int n)
{
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%.1f",
		    i > 0 ? " / " : "", v[i]);
	return buf;
}

/* ------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	const char *outdir = argc > 1 ? argv[1] : "build/bench";
	char base[PATH_MAX], tmpbuf[PATH_MAX], m[96], offl[64], onl[64];
	uint64_t sizes[NSIZES];
	struct sized z[NSIZES];
	struct nfsres nr, nr_own;
	struct indep ind;
	struct benchout b;
	double load[3], disk, vwrite, lo, t_start = tl_now_s();
	char *tmp;
	ssize_t n;
	int bad = 0;

	quick = getenv("FILER_BENCH_QUICK") != NULL;
	signal(SIGPIPE, SIG_IGN);
	fl_log_set_level(FL_LOG_WARN);
	if (getloadavg(load, 3) != 3)
		load[0] = NAN;
	n = readlink("/proc/self/exe", bindir, sizeof(bindir) - 1);
	if (n <= 0)
		die("/proc/self/exe: %s", strerror(errno));
	bindir[n] = '\0';
	for (int i = 0; i < 3; i++)
		*strrchr(bindir, '/') = '\0';
	benchout_scratch(outdir, base, sizeof(base));
	if (realpath(base, tmpbuf) == NULL)
		die("scratch directory %s: %s", base, strerror(errno));
	tmp = tl_tmpdir_make(tmpbuf, "mirror");
	/* The volumes' images (tl_fs_create) go there too. */
	setenv("TMPDIR", tmp, 1);
	for (int i = 0; i < 3; i++)
		sizes[i] = (quick ? 64ull << 20 : 512ull << 20) << i;
	printf("bench_mirror: scratch %s%s\n", tmp, quick ? " (quick)" : "");

	if (getenv("FILER_BENCH_ONLY") != NULL &&
	    strcmp(getenv("FILER_BENCH_ONLY"), "indep") == 0) {
		run_indep(&ind);
		tl_tmpdir_remove(tmp);
		return 0;
	}
	if (getenv("FILER_BENCH_ONLY") != NULL) {
		if (strcmp(getenv("FILER_BENCH_ONLY"), "nfs") != 0)
			die("FILER_BENCH_ONLY=%s: unknown (nfs, indep, or "
			    "unset)", getenv("FILER_BENCH_ONLY"));
		run_nfs(tmp, getenv("FILER_BENCH_DEST_DIR"), &nr);
		printf("  NFS write: mirror off %.1f MiB/s, on %.1f (%.2f; "
		    "means of %d and %d runs), lag max %.0f CPs%s%s\n",
		    nr.off_mbs, nr.on_mbs, nr.on_mbs / nr.off_mbs,
		    nr.rounds + 1, nr.rounds, nr.lag_max,
		    nr.why[0] != '\0' ? "; " : "", nr.why);
		tl_tmpdir_remove(tmp);
		return 0;
	}
	/* The best of three: one write of a new file also measures how fast
	 * the page cache grows into memory the machine has not touched for
	 * a while, which moved this figure by half between runs; the best
	 * is the disk's, and the harder figure for the baseline to reach. */
	disk = 0;
	for (int i = 0; i < 3; i++)
		disk = fmax(disk, disk_write_mbs(tmp, quick ? 128ull << 20 :
		    512ull << 20));
	vwrite = 0;
	for (int i = 0; i < 3; i++)
		vwrite = fmax(vwrite, volume_write_mbs(tmp, quick ?
		    128ull << 20 : 512ull << 20));
	lo = loopback_mbs(quick ? 1.0 : 2.0);
	printf("  disk sequential write %.0f MB/s, 4+1 volume write %.0f MB/s, "
	    "loopback TCP %.0f MB/s\n", disk, vwrite, lo);
	if (getenv("FILER_BENCH_BASELINE_MIB") != NULL) {
		/* The baseline alone, at one size (for profiling it). */
		uint64_t mib = strtoull(getenv("FILER_BENCH_BASELINE_MIB"),
		    NULL, 10), blocks;
		struct pair p;
		double cpu, walk, secs;

		if (mib < 64)
			mib = 64;
		printf("  %llu MiB: filling the source...\n",
		    (unsigned long long)mib);
		fflush(stdout);
		pair_make(&p, mib << 20, false);
		walk = walk_mbs(&p);
		double t0 = tl_now_s();
		struct devuse dev;

		secs = pair_baseline(&p, &blocks, &cpu, &dev);
		printf("  baseline from %.6f to %.6f (CLOCK_MONOTONIC)\n", t0,
		    tl_now_s());
		printf("  %llu MiB: baseline %.2f s (%.0f MB/s, %.1f s of CPU, "
		    "%.2f of min(disk, loopback), %.2f of min(volume write, "
		    "loopback)); the source's walk alone %.0f MB/s; load "
		    "average before %.2f\n",
		    (unsigned long long)mib, secs,
		    (double)blocks * 4096 / MiB / secs, cpu,
		    (double)blocks * 4096 / MiB / secs / fmin(disk, lo),
		    (double)blocks * 4096 / MiB / secs / fmin(vwrite, lo),
		    walk, load[0]);
		devuse_print(&dev);
		struct mir_dest_stats ds;
		struct raid_status rs;
		mir_dest_stats(p.md, &ds);
		raid_status(p.dst->raid, &rs);
		printf("  destination: %llu blocks written, raid: %llu full "
		    "stripes, %llu partial, %llu blocks read for partial "
		    "stripes, %llu flushes\n",
		    (unsigned long long)ds.blocks_written,
		    (unsigned long long)rs.counters.full_stripe_writes,
		    (unsigned long long)rs.counters.partial_stripe_writes,
		    (unsigned long long)rs.counters.partial_reads,
		    (unsigned long long)rs.counters.flushes);
		int nupd = getenv("FILER_BENCH_UPDATES") != NULL ?
		    atoi(getenv("FILER_BENCH_UPDATES")) : 0;
		if (nupd > 1000)
			nupd = 1000;
		uint64_t rng = 777, offs[NCHANGE];
		t0 = tl_now_s();
		for (int i = 0; i < nupd; i++) {
			struct upd_split sp;
			double u = pair_update(&p, true, &rng, offs,
			    (uint32_t)i, &sp);
			printf("  update %d: %.1f ms (writes %.1f, CP %.1f "
			    "[freeze %.1f, write-out %.1f, %llu blocks], to "
			    "the acknowledgement %.1f; destination: verify "
			    "%.1f, write %.1f, flush %.1f, switch %.1f; "
			    "stripes full/partial/blocks read: source "
			    "%llu/%llu/%llu, destination %llu/%llu/%llu; "
			    "bitmap blocks written/flushes: source %llu/%llu, "
			    "destination %llu/%llu)\n",
			    i, u * 1e3, sp.write_s * 1e3, sp.cp_s * 1e3,
			    sp.freeze_s * 1e3, sp.cpwrite_s * 1e3,
			    (unsigned long long)sp.cp_blocks, sp.ack_s * 1e3, sp.verify_s * 1e3,
			    sp.dwrite_s * 1e3, sp.flush_s * 1e3,
			    sp.advance_s * 1e3,
			    (unsigned long long)sp.full[0],
			    (unsigned long long)sp.partial[0],
			    (unsigned long long)sp.preads[0],
			    (unsigned long long)sp.full[1],
			    (unsigned long long)sp.partial[1],
			    (unsigned long long)sp.preads[1],
			    (unsigned long long)sp.intent[0],
			    (unsigned long long)sp.flushes[0],
			    (unsigned long long)sp.intent[1],
			    (unsigned long long)sp.flushes[1]);
		}
		if (nupd > 0)
			printf("  updates from %.6f to %.6f (CLOCK_MONOTONIC)\n",
			    t0, tl_now_s());
		pair_free(&p);
		tl_tmpdir_remove(tmp);
		return 0;
	}
	struct pair pairs[NSIZES];
	for (int i = 0; i < NSIZES; i++) {
		memset(&z[i], 0, sizeof(z[i]));
		z[i].bytes = sizes[i];
		size_setup(&z[i], &pairs[i]);
	}
	sizes_update(z, pairs, NSIZES);
	for (int i = 0; i < NSIZES; i++)
		size_finish(tmp, &z[i], &pairs[i]);
	run_indep(&ind);
	run_nfs(tmp, NULL, &nr);
	printf("  NFS part again, the destination's home in %s (a device of "
	    "its own)\n", shm_dir());
	fflush(stdout);
	run_nfs(tmp, shm_dir(), &nr_own);

	benchout_open(&b, outdir, "mirror", "sync mirroring: update cost vs "
	    "rsync, baseline rate, wire bytes, NFS writes with the mirror on");
	for (int i = 0; i < 3; i++) {
		snprintf(m, sizeof(m), "update 1 MiB, %.0f MiB, filer",
		    sizes[i] / MiB);
		benchout_figure(&b, m, z[i].update_s, "s");
	}
	benchout_add(&b, "update time, largest / smallest", z[2].update_s /
	    z[0].update_s, "x", NULL, 0, "<=", 1.2);
	for (int i = 0; i < 3; i++) {
		snprintf(m, sizeof(m), "update 1 MiB, %.0f MiB, rsync -a",
		    sizes[i] / MiB);
		benchout_vs(&b, m, z[i].rsync_s, "s", "filer", z[i].update_s,
		    i == 2 ? ">=" : NULL, 50);
		snprintf(m, sizeof(m), "update 1 MiB, %.0f MiB, rsync -c",
		    sizes[i] / MiB);
		benchout_vs(&b, m, z[i].rsync_c_s, "s", "filer",
		    z[i].update_s, NULL, 0);
	}
	snprintf(m, sizeof(m), "baseline %.0f MiB", sizes[2] / MiB);
	benchout_vs(&b, m, z[2].baseline_mbs, "MB/s", "min(disk, loopback)",
	    disk < lo ? disk : lo, ">=", 0.8);
	snprintf(m, sizeof(m), "baseline %.0f MiB, vs the volume's write",
	    sizes[2] / MiB);
	benchout_vs(&b, m, z[2].baseline_mbs, "MB/s",
	    "min(4+1 volume write, loopback)", fmin(vwrite, lo), ">=", 0.8);
	snprintf(m, sizeof(m), "baseline %.0f MiB, disks of their own",
	    ind.bytes / MiB);
	benchout_vs(&b, m, ind.mbs, "MB/s", "min(4 x L, loopback)",
	    fmin(indep_peer(&ind), lo), ">=", 0.8);
	snprintf(m, sizeof(m), "baseline %.0f MiB, in memory, unthrottled",
	    ind.bytes / MiB);
	benchout_figure(&b, m, ind.mem_mbs, "MB/s");
	snprintf(m, sizeof(m), "birth walk alone, %.0f MiB", sizes[2] / MiB);
	benchout_figure(&b, m, z[2].walk_mbs, "MB/s");
	benchout_figure(&b, "disk sequential write", disk, "MB/s");
	benchout_figure(&b, "4+1 volume write (raid, full stripes)", vwrite,
	    "MB/s");
	benchout_figure(&b, "loopback TCP", lo, "MB/s");
	benchout_add(&b, "wire bytes/changed, scattered", z[2].wire_scattered,
	    "B/B", NULL, 0, "<=", 1.1);
	benchout_add(&b, "wire bytes/changed, 1 MiB range", z[2].wire_range,
	    "B/B", NULL, 0, "<=", 1.1);
	benchout_figure(&b, "blocks sent/changed, scattered",
	    z[2].blocks_scattered, "blk/blk");
	benchout_figure(&b, "blocks sent/changed, 1 MiB range",
	    z[2].blocks_range, "blk/blk");
	benchout_vs(&b, "NFS write, sync mirror on", nr.on_mbs, "MiB/s",
	    "mirror off", nr.off_mbs, ">=", 0.8);
	benchout_vs(&b, "NFS write, sync mirror on, destination's own device",
	    nr_own.on_mbs, "MiB/s", "mirror off", nr_own.off_mbs, ">=", 0.8);
	benchout_figure(&b, "destination lag under load, own device, max",
	    nr_own.lag_max, "CPs");
	benchout_figure(&b, "destination lag under load, max", nr.lag_max,
	    "CPs");
	benchout_figure(&b, "destination lag under load, mean", nr.lag_mean,
	    "CPs");
	benchout_figure(&b, "catch-up after the load, mean", nr.catchup_s,
	    "s");

	benchout_note(&b, "update: %d writes of 4 KiB at random aligned "
	    "offsets over the whole dataset (64 MiB files), a CP, timed to "
	    "the destination's acknowledgement, median of %d; rsync: the same "
	    "kind of change to a directory copy, pushed to an rsync daemon on "
	    "127.0.0.1 (delta transfer over loopback TCP), ratio rsync/filer; "
	    "both after a sync() of what the set-up left dirty",
	    NCHANGE, UPDATE_RUNS);
	benchout_note(&b, "baselines: %.1f, %.1f, %.1f MB/s for %.0f, %.0f, "
	    "%.0f MiB (blocks sent / time to acknowledgement); both sides "
	    "used %.1f s of CPU in the last one's %.1f s",
	    z[0].baseline_mbs, z[1].baseline_mbs, z[2].baseline_mbs,
	    sizes[0] / MiB, sizes[1] / MiB, sizes[2] / MiB,
	    z[2].baseline_cpu, z[2].baseline_s);
	if (z[2].baseline_dev.ok)
		benchout_note(&b, "the device under both volumes' images during "
		    "the %.0f MiB baseline: busy %.0f%% of the time, %.0f MB/s "
		    "written (data and parity: %.2f of the blocks sent), %.0f "
		    "MB/s read", sizes[2] / MiB, z[2].baseline_dev.busy * 100,
		    z[2].baseline_dev.wr_mbs, z[2].baseline_dev.wr_mbs * 1e6 /
		    MiB / z[2].baseline_mbs, z[2].baseline_dev.rd_mbs);
	benchout_note(&b, "disks of their own: both volumes' images in "
	    "memory, every disk throttled to L = %u MB/s by raid's fault "
	    "injector (a disk with bandwidth of its own, as on an appliance; "
	    "L halved from 200 until at most half of what each data disk got "
	    "unthrottled); the destination's four data disks take 4 x L = "
	    "%.0f MiB/s; the source's walk alone %.0f MiB/s; %.1f s of CPU in "
	    "%.2f s; the other baselines share one device with their parity, "
	    "which caps them at 0.8 of the disk",
	    ind.rate, indep_peer(&ind), ind.walk_mbs, ind.cpu_s, ind.secs);
	benchout_note(&b, "wire bytes: the source's bytes_out (frames, "
	    "headers) per byte changed, largest dataset; per size "
	    "scattered %.2f %.2f %.2f, range %.2f %.2f %.2f",
	    z[0].wire_scattered, z[1].wire_scattered, z[2].wire_scattered,
	    z[0].wire_range, z[1].wire_range, z[2].wire_range);
	benchout_note(&b, "NFS: two filerds (5-disk single-parity volumes, "
	    "default settings), 4 libnfs clients x %u MiB of 1 MiB UNSTABLE "
	    "WRITEs + COMMIT each, files removed after each run; off: no "
	    "relationship, then quiesced in each round (%s MiB/s); on: sync "
	    "mirroring, one run per round before the quiesced one (%s "
	    "MiB/s); lag sampled with filerctl mirror status every 100 ms "
	    "during the mirrored writes", quick ? 32 : 128,
	    fig_list(offl, sizeof(offl), nr.off, nr.rounds + 1),
	    fig_list(onl, sizeof(onl), nr.on, nr.rounds));
	for (int i = 0; i < 3; i++)
		if (z[i].why[0] != '\0')
			benchout_note(&b, "%.0f MiB: %s", sizes[i] / MiB,
			    z[i].why);
	benchout_note(&b, "NFS, destination's own device: the same with the "
	    "destination filerd's home (images, NVLOG) in %s, so that its "
	    "writes do not share the source's device, as on two appliances; "
	    "off %s MiB/s, on %s MiB/s", shm_dir(),
	    fig_list(offl, sizeof(offl), nr_own.off, nr_own.rounds + 1),
	    fig_list(onl, sizeof(onl), nr_own.on, nr_own.rounds));
	if (nr.why[0] != '\0')
		benchout_note(&b, "NFS: %s", nr.why);
	if (nr_own.why[0] != '\0')
		benchout_note(&b, "NFS, destination's own device: %s",
		    nr_own.why);
	if (!isnan(load[0]))
		benchout_note(&b, "%ld CPUs; load average before the run %.2f "
		    "(other work on the machine skews every figure); run took "
		    "%.0f s", sysconf(_SC_NPROCESSORS_ONLN), load[0],
		    tl_now_s() - t_start);
	benchout_close(&b);
	bad = nr.why[0] != '\0' || nr_own.why[0] != '\0';
	if (bad)
		printf("bench_mirror: scratch and logs kept in %s\n", tmp);
	else
		tl_tmpdir_remove(tmp);
	return bad ? 1 : 0;
}
