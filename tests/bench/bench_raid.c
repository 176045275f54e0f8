/*
 * tests/bench/bench_raid.c: raid/ throughput on this machine, in one run.
 *
 *   build/tests/bench/bench_raid <outdir>      (make bench)
 *
 * Figures (table on stdout, JSON lines appended to <outdir>/raid.json):
 *   - raw ISA-L parity generation, GB/s of data in, for several geometries
 *     (xor_gen for P = 1, ec_encode_data with the Cauchy matrix for P >= 2);
 *   - the disk's own sequential write bandwidth: pwrite of 1 MiB chunks to
 *     one fresh file as large as the volume's data, then fdatasync -- the
 *     peer of the write and rebuild figures; and its cold sequential read;
 *   - raid 8+1 full-stripe write throughput (data MB/s, flush included)
 *     over fresh image files on the same disk, ratio to the disk (goal
 *     >= 0.8).  Disk and raid writes are interleaved 3 times and the best
 *     of each kept, because the disk here is shared and noisy; every round
 *     is printed.  After the flush, the dirty page cache and the time of a
 *     sync(2) are printed to show the flush really made the data durable;
 *   - parity reads and data reads per full-stripe write (goal == 0);
 *   - healthy and degraded (one data disk failed) read throughput with the
 *     page cache of every image dropped before each pass (POSIX_FADV_DONTNEED
 *     after the flush; residency measured with mincore and printed), and
 *     their ratio (goal >= 0.5);
 *   - rebuild onto a spare: MB/s of the rebuilt disk, ratio to the disk's
 *     sequential write bandwidth (goal >= 0.5), cache dropped first; and
 *     its device traffic, (N + 1) x that, against the healthy read rate,
 *     since all images share one device here.
 *   - simulated independent disks: images in /dev/shm (no device under
 *     them), every disk throttled by the fault injector to the same rate L
 *     (RAID_FAULT_THROTTLE), so each image behaves as a disk of its own:
 *     one throttled disk's sequential write through raid (a 1+1 volume;
 *     it should come close to L, the disk's own sequential bandwidth),
 *     8+1 full-stripe write (ratio to 8 x L), healthy and degraded read,
 *     and rebuild onto a throttled spare (rebuild_ratio_independent, its
 *     MB/s over L, goal >= 0.5).  L is 200 MB/s unless an unthrottled
 *     write pass in memory shows the CPU could not keep up with it on
 *     every disk at once; then lower.
 *
 * Scratch images go to $FILER_BENCH_DIR, else <outdir>/../bench-tmp (the
 * working disk), never a tmpfs unless forced (then a note says so).  Data
 * size: $FILER_BENCH_MB (default 1024) MiB.  Every block read back carries
 * its VBN stamped in its first 8 bytes, which is checked.
 * $FILER_BENCH_QUICK=1 shrinks the simulated-disk section (32 MiB per disk
 * instead of 96) and the shared-device data to 128 MiB (unless
 * $FILER_BENCH_MB says otherwise).
 */
#include <errno.h>
#include <fcntl.h>
#include <isa-l/erasure_code.h>
#include <isa-l/raid.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/raid.h"
#include "tests/bench/benchout.h"
#include "tests/lib/tl_raid.h"
#include "tests/lib/tl_tmpdir.h"

#define MiB		(1024.0 * 1024.0)
#define CHUNK_STRIPES	128u
#define ROUNDS		3
#define SHM_DIR		"/dev/shm"
#define INDEP_RATE	200u	/* MB/s (10^6 B/s) per simulated disk */
#define INDEP_RATE_MIN	20u

static double secs(uint64_t t0)
{
	return (double)(fl_now_mono_ns() - t0) / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_raid: %s: %s\n", what, fl_strerror(rc));
	exit(1);
}

/* ---- ISA-L parity generation ---- */

static double parity_gbps(unsigned n, unsigned p)
{
	const size_t len = 64 * 1024;
	void *bufs[RAID_MAX_DATA + RAID_MAX_PARITY];
	unsigned char mat[(RAID_MAX_DATA + RAID_MAX_PARITY) * RAID_MAX_DATA];
	unsigned char tbl[32 * RAID_MAX_DATA * RAID_MAX_PARITY];
	uint64_t rng = 1, bytes = 0, t0;
	double el;

	for (unsigned i = 0; i < n + p; i++) {
		if (posix_memalign(&bufs[i], 64, len) != 0)
			die("memalign", -ENOMEM);
		tl_fill_random(bufs[i], len, &rng);
	}
	if (p >= 2) {
		gf_gen_cauchy1_matrix(mat, (int)(n + p), (int)n);
		ec_init_tables((int)n, (int)p, &mat[n * n], tbl);
	}
	t0 = fl_now_mono_ns();
	do {
		for (int k = 0; k < 64; k++) {
			if (p == 1)
				xor_gen((int)n + 1, (int)len, bufs);
			else
				ec_encode_data((int)len, (int)n, (int)p, tbl,
				    (unsigned char **)bufs,
				    (unsigned char **)&bufs[n]);
			bytes += (uint64_t)n * len;
		}
		el = secs(t0);
	} while (el < 0.4);
	for (unsigned i = 0; i < n + p; i++)
		free(bufs[i]);
	return (double)bytes / el / 1e9;
}

/* ---- page cache ---- */

static void drop_cache(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return;
	fdatasync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
}

/* Fraction of a file's pages resident in the page cache. */
static double resident(const char *path)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	long pg = sysconf(_SC_PAGESIZE);
	double frac = -1;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		size_t len = (size_t)st.st_size;
		size_t npg = (len + (size_t)pg - 1) / (size_t)pg;
		unsigned char *vec = malloc(npg);
		void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
		if (vec != NULL && m != MAP_FAILED &&
		    mincore(m, len, vec) == 0) {
			size_t in = 0;
			for (size_t i = 0; i < npg; i++)
				in += vec[i] & 1;
			frac = (double)in / (double)npg;
		}
		if (m != MAP_FAILED)
			munmap(m, len);
		free(vec);
	}
	close(fd);
	return frac;
}

static double drop_all(struct tl_vol *t, size_t ndisks_paths)
{
	double worst = 0;

	for (size_t i = 0; i < ndisks_paths; i++)
		drop_cache(t->paths[i]);
	for (size_t i = 0; i < ndisks_paths; i++) {
		double r = resident(t->paths[i]);
		if (r > worst)
			worst = r;
	}
	return worst;
}

/* Dirty page cache, MiB, from /proc/meminfo (-1 if unknown). */
static double dirty_mib(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	double kb = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "Dirty: %lf kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb < 0 ? -1 : kb / 1024;
}

/* ---- the disk itself ---- */

static void disk_sequential(const char *dir, uint64_t bytes, double *wr,
    double *rd)
{
	char path[4200];
	const size_t chunk = 1 << 20;
	uint8_t *buf;
	uint64_t rng = 3, t0;
	int fd;

	tl_path(path, sizeof(path), dir, "sequential.img");
	if (posix_memalign((void **)&buf, 4096, chunk) != 0)
		die("memalign", -ENOMEM);
	tl_fill_random(buf, chunk, &rng);
	sync();
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die(path, -errno);
	t0 = fl_now_mono_ns();
	for (uint64_t off = 0; off < bytes; off += chunk) {
		int rc = fl_pwrite_full(fd, buf, chunk, off);
		if (rc != 0)
			die("sequential write", rc);
	}
	if (fdatasync(fd) != 0)
		die("fdatasync", -errno);
	*wr = (double)bytes / MiB / secs(t0);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	t0 = fl_now_mono_ns();
	for (uint64_t off = 0; off < bytes; off += chunk) {
		int rc = fl_pread_full(fd, buf, chunk, off);
		if (rc != 0)
			die("sequential read", rc);
	}
	*rd = (double)bytes / MiB / secs(t0);
	close(fd);
	unlink(path);
	free(buf);
	sync();
}

/* ---- raid ---- */

static void stamp(uint8_t *buf, uint64_t vbn0, uint32_t nblocks)
{
	for (uint32_t i = 0; i < nblocks; i++)
		fl_put_le64(buf + (size_t)i * TL_BS, vbn0 + i);
}

static uint64_t read_all(struct tl_vol *t, uint8_t *buf, double *mbps)
{
	uint32_t chunk = CHUNK_STRIPES * t->ndata;
	uint64_t wrong = 0, t0 = fl_now_mono_ns();

	for (uint64_t vbn = 0; vbn < t->nvbns; vbn += chunk) {
		uint32_t n = (uint32_t)FL_MIN((uint64_t)chunk, t->nvbns - vbn);
		int rc = raid_read(t->v, vbn, n, buf);
		if (rc != 0)
			die("raid_read", rc);
		for (uint32_t i = 0; i < n; i++)
			wrong += fl_get_le64(buf + (size_t)i * TL_BS) !=
			    vbn + i;
	}
	*mbps = (double)t->nvbns * TL_BS / MiB / secs(t0);
	return wrong;
}

/* ---- simulated independent disks ---- */

struct indep {
	bool ran;
	char why[256];		/* why it did not run */
	uint64_t disk_mib;	/* per disk */
	unsigned rate;		/* L, MB/s (10^6 B/s), the throttle */
	double mem_write;	/* unthrottled 8+1 write in memory, MB/s */
	double disk_wr;		/* one throttled disk (1+1 volume), MB/s */
	double write, healthy, degraded, rebuild, after;
	uint64_t wrong;
};

static int throttle(struct tl_vol *t, size_t disk, unsigned rate)
{
	return raid_fault_set(t->v, disk, rate ? RAID_FAULT_THROTTLE :
	    RAID_FAULT_NONE, rate, 0);
}

static int throttle_all(struct tl_vol *t, unsigned rate)
{
	size_t nd = raid_ndisks(t->v);
	int rc = 0;

	for (size_t i = 0; i < nd && rc == 0; i++)
		rc = throttle(t, i, rate);
	return rc;
}

/* A spare disk, spare.img in the volume's directory. */
static void add_spare(struct tl_vol *t)
{
	char spare[4200];
	int rc;

	tl_path(spare, sizeof(spare), t->dir, "spare.img");
	rc = raid_add_spare(t->v, spare);
	if (rc != 0)
		die("raid_add_spare", rc);
	tl_vol_add_path(t, "spare.img");
}

/* MB/s of a rebuild onto the spare of disk_blocks per disk, its flush
 * included. */
static double rebuild_mbs(struct tl_vol *t, uint64_t disk_blocks)
{
	uint64_t t0 = fl_now_mono_ns();
	int rc = raid_rebuild_start(t->v);

	if (rc != 0)
		die("raid_rebuild_start", rc);
	rc = raid_rebuild_wait(t->v);
	if (rc == 0)
		rc = raid_flush(t->v);
	if (rc != 0)
		die("rebuild", rc);
	return (double)disk_blocks * TL_BS / MiB / secs(t0);
}

/*
 * Full-stripe write of the whole volume, flush included; data MB/s.  Each
 * call writes as many stripes as buf holds (CHUNK_STRIPES 8-wide stripes),
 * so every data disk gets the same amount per call whatever the width.
 */
static double write_all(struct tl_vol *t, uint8_t *buf)
{
	const uint32_t n = t->ndata, per_call = CHUNK_STRIPES * 8 / n;
	uint64_t t0 = fl_now_mono_ns();
	int rc;

	for (uint64_t s = 0; s < t->disk_blocks; s += per_call) {
		uint32_t ns = (uint32_t)FL_MIN((uint64_t)per_call,
		    t->disk_blocks - s);

		stamp(buf, s * n, ns * n);
		rc = raid_write_stripes(t->v, s * n, ns, buf);
		if (rc != 0)
			die("raid_write_stripes", rc);
	}
	rc = raid_flush(t->v);
	if (rc != 0)
		die("raid_flush", rc);
	return (double)t->nvbns * TL_BS / MiB / secs(t0);
}

static void independent_disks(struct indep *r, bool quick, uint8_t *buf)
{
	const uint32_t n = 8, p = 1;
	uint64_t disk_blocks, need, avail_mem = 0;
	struct statvfs sv;
	struct tl_vol t;
	int rc;

	memset(r, 0, sizeof(*r));
	r->disk_mib = quick ? 32 : 96;
	disk_blocks = (r->disk_mib << 20) / TL_BS;
	/* Images of n + p + 1 disks, and as much again in the fault
	 * injector's unflushed writes at the peak (before a flush). */
	need = (uint64_t)(n + p + 1) * (r->disk_mib << 20);
	{
		FILE *f = fopen("/proc/meminfo", "r");
		char line[256];
		unsigned long long kb;

		while (f != NULL && fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
				avail_mem = (uint64_t)kb << 10;
		if (f != NULL)
			fclose(f);
	}
	if (tl_is_tmpfs(SHM_DIR) != 1 || statvfs(SHM_DIR, &sv) != 0) {
		snprintf(r->why, sizeof(r->why), "%s is not a tmpfs", SHM_DIR);
		return;
	}
	if ((uint64_t)sv.f_bavail * sv.f_frsize < 2 * need ||
	    avail_mem < 3 * need) {
		snprintf(r->why, sizeof(r->why), "not enough memory for "
		    "%llu MiB of images in %s",
		    (unsigned long long)(need >> 20), SHM_DIR);
		return;
	}

	/*
	 * The CPU's own ceiling: the 8+1 write unthrottled, in memory (the
	 * second pass, once the images' pages exist).  Every byte goes
	 * through the same copies as under the throttle, so L is kept at or
	 * below half of what each disk got here.
	 */
	rc = tl_vol_create(&t, SHM_DIR, 1, n, p, disk_blocks, true);
	if (rc != 0)
		die("raid_create in " SHM_DIR, rc);
	(void)write_all(&t, buf);
	r->mem_write = write_all(&t, buf);
	r->rate = INDEP_RATE;
	while (r->rate > INDEP_RATE_MIN &&
	    r->mem_write * MiB / 1e6 / n < 2.0 * r->rate)
		r->rate /= 2;

	/* One throttled disk: a 1+1 volume, data and parity at L each. */
	{
		struct tl_vol one;

		rc = tl_vol_create(&one, SHM_DIR, 1, 1, 1, disk_blocks, true);
		if (rc != 0)
			die("raid_create 1+1", rc);
		rc = throttle_all(&one, r->rate);
		if (rc != 0)
			die("throttle", rc);
		r->disk_wr = write_all(&one, buf);
		tl_vol_destroy(&one);
	}

	/* 8+1, every disk at L. */
	rc = throttle_all(&t, r->rate);
	if (rc != 0)
		die("throttle", rc);
	r->write = write_all(&t, buf);
	r->wrong += read_all(&t, buf, &r->healthy);
	rc = raid_fail_disk(t.v, tl_disk(&t, 0, 3), "bench");
	if (rc != 0)
		die("raid_fail_disk", rc);
	r->wrong += read_all(&t, buf, &r->degraded);

	/* Rebuild onto a spare as slow as the others, flush included. */
	add_spare(&t);
	rc = throttle(&t, raid_ndisks(t.v) - 1, r->rate);
	if (rc != 0)
		die("throttle", rc);
	r->rebuild = rebuild_mbs(&t, disk_blocks);
	/* Check every block with the rebuilt disk in, at full speed. */
	rc = throttle_all(&t, 0);
	if (rc != 0)
		die("throttle", rc);
	r->wrong += read_all(&t, buf, &r->after);
	tl_vol_destroy(&t);
	r->ran = true;
}

int main(int argc, char **argv)
{
	const char *outdir = argc > 1 ? argv[1] : "build/bench";
	const char *env_mb = getenv("FILER_BENCH_MB");
	static const unsigned geo[][2] = {
		{ 4, 1 }, { 4, 2 }, { 8, 1 }, { 8, 2 }, { 8, 3 },
	};
	double gen[FL_ARRAY_SIZE(geo)];
	const uint32_t n = 8, p = 1;
	const bool quick = getenv("FILER_BENCH_QUICK") != NULL;
	uint64_t data_mb = env_mb != NULL ? strtoull(env_mb, NULL, 10) :
	    quick ? 128 : 1024;
	struct indep ind;
	char base[4096];
	struct benchout b;
	struct tl_vol t;
	struct raid_status st;
	uint8_t *buf;
	uint64_t rng = 9, t0, wrong = 0;
	double disk_wr, disk_rd, raid_wr, healthy, dwr[ROUNDS], rwr[ROUNDS];
	double degraded, rebuild, after, dirty, sync_s;
	double res_h, res_d, res_r;
	int rc, tmpfs;

	fl_log_set_level(FL_LOG_ERR);
	if (data_mb < 64)
		data_mb = 64;
	benchout_scratch(outdir, base, sizeof(base));
	tmpfs = tl_is_tmpfs(base);
	if (tmpfs < 0)
		die(base, tmpfs);
	if (tmpfs && getenv("FILER_BENCH_ALLOW_TMPFS") == NULL) {
		fprintf(stderr, "bench_raid: %s is a tmpfs: disk figures "
		    "would be memory figures; set FILER_BENCH_DIR to a "
		    "directory on a disk (or FILER_BENCH_ALLOW_TMPFS=1)\n",
		    base);
		return 1;
	}
	printf("bench_raid: %llu MiB of data, geometry %u+%u, images in "
	    "%s\n", (unsigned long long)data_mb, n, p, base);
	fflush(stdout);

	/* 1. Parity generation, in memory. */
	for (size_t i = 0; i < FL_ARRAY_SIZE(geo); i++)
		gen[i] = parity_gbps(geo[i][0], geo[i][1]);

	/*
	 * 2 and 3.  The disk itself (one file as large as the volume's data)
	 * and the raid full-stripe write, each on fresh files, interleaved
	 * ROUNDS times; the best of each is reported (this machine's disk is
	 * shared and noisy).  The last round's volume stays for the reads.
	 */
	uint64_t disk_blocks = (data_mb << 20) / TL_BS / n;
	buf = malloc((size_t)CHUNK_STRIPES * n * TL_BS);
	if (buf == NULL)
		die("malloc", -ENOMEM);
	tl_fill_random(buf, (size_t)CHUNK_STRIPES * n * TL_BS, &rng);
	disk_wr = disk_rd = raid_wr = 0;
	for (int round = 0; round < ROUNDS; round++) {
		double w, r;

		disk_sequential(base, data_mb << 20, &w, &r);
		dwr[round] = w;
		disk_wr = FL_MAX(disk_wr, w);
		disk_rd = FL_MAX(disk_rd, r);
		if (round > 0)
			tl_vol_destroy(&t);
		rc = tl_vol_create(&t, base, 1, n, p, disk_blocks, false);
		if (rc != 0)
			die("raid_create", rc);
		raid_flush(t.v);
		sync();
		raid_counters_reset(t.v);
		t0 = fl_now_mono_ns();
		for (uint64_t s = 0; s < disk_blocks; s += CHUNK_STRIPES) {
			uint32_t ns = (uint32_t)FL_MIN((uint64_t)CHUNK_STRIPES,
			    disk_blocks - s);
			stamp(buf, s * n, ns * n);
			rc = raid_write_stripes(t.v, s * n, ns, buf);
			if (rc != 0)
				die("raid_write_stripes", rc);
		}
		rc = raid_flush(t.v);
		if (rc != 0)
			die("raid_flush", rc);
		w = (double)t.nvbns * TL_BS / MiB / secs(t0);
		rwr[round] = w;
		raid_wr = FL_MAX(raid_wr, w);
		raid_status(t.v, &st);
		/* Honesty check: raid_flush left nothing for sync(2). */
		dirty = dirty_mib();
		t0 = fl_now_mono_ns();
		sync();
		sync_s = secs(t0);
	}

	/* 4. Healthy and degraded reads, cold. */
	res_h = drop_all(&t, t.npaths);
	wrong += read_all(&t, buf, &healthy);
	rc = raid_fail_disk(t.v, tl_disk(&t, 0, 3), "bench");
	if (rc != 0)
		die("raid_fail_disk", rc);
	res_d = drop_all(&t, t.npaths);
	wrong += read_all(&t, buf, &degraded);

	/* 5. Rebuild onto a spare, cold, flush included. */
	add_spare(&t);
	res_r = drop_all(&t, t.npaths);
	rebuild = rebuild_mbs(&t, disk_blocks);
	drop_all(&t, t.npaths);
	wrong += read_all(&t, buf, &after);
	tl_vol_destroy(&t);

	/* 6. Simulated independent disks, in memory, throttled. */
	independent_disks(&ind, quick, buf);
	wrong += ind.wrong;
	free(buf);
	if (wrong != 0)
		die("blocks read back with the wrong VBN stamp", -EIO);

	rmdir(base);

	/* Report. */
	benchout_open(&b, outdir, "raid", "RAID groups of disk images");
	for (size_t i = 0; i < FL_ARRAY_SIZE(geo); i++) {
		char m[64];
		snprintf(m, sizeof(m), "ISA-L parity gen %u+%u", geo[i][0],
		    geo[i][1]);
		benchout_figure(&b, m, gen[i], "GB/s");
	}
	benchout_note(&b, "GB/s of data in; xor_gen for P = 1, "
	    "ec_encode_data (Cauchy) for P >= 2; 64 KiB per disk per call");
	benchout_figure(&b, "disk sequential write", disk_wr, "MB/s");
	benchout_figure(&b, "disk sequential read (cold)", disk_rd, "MB/s");
	benchout_note(&b, "one fresh file, 1 MiB pwrites + fdatasync, best "
	    "of %d rounds interleaved with the raid writes", ROUNDS);
	benchout_note(&b, "rounds, disk / raid write MB/s: %.0f / %.0f, "
	    "%.0f / %.0f, %.0f / %.0f", dwr[0], rwr[0], dwr[1], rwr[1],
	    dwr[2], rwr[2]);

	benchout_vs(&b, "raid 8+1 full-stripe write", raid_wr, "MB/s",
	    "disk sequential write", disk_wr, ">=", 0.8);
	benchout_note(&b, "data MB/s, fresh sparse images, raid_flush "
	    "included, best of %d; the %u images "
	    "share one device, so parity traffic alone caps the ratio at "
	    "N/(N+P) = %.3f for one stream; images are written as %u "
	    "streams", ROUNDS, n + p, (double)n / (n + p), n + p);
	benchout_note(&b, "after raid_flush: %.1f MiB dirty in the page "
	    "cache (whole machine), sync(2) took %.3f s", dirty, sync_s);
	benchout_add(&b, "parity reads per full-stripe write",
	    st.counters.full_stripe_writes ? (double)st.counters.parity_reads
	    / (double)st.counters.full_stripe_writes : -1, "blocks", NULL, 0,
	    "==", 0);
	benchout_add(&b, "data reads per full-stripe write",
	    st.counters.full_stripe_writes ? (double)st.counters.partial_reads
	    / (double)st.counters.full_stripe_writes : -1, "blocks", NULL, 0,
	    "==", 0);
	benchout_note(&b, "%llu full-stripe writes, %llu partial",
	    (unsigned long long)st.counters.full_stripe_writes,
	    (unsigned long long)st.counters.partial_stripe_writes);

	benchout_figure(&b, "raid 8+1 read, healthy", healthy, "MB/s");
	benchout_vs(&b, "raid 8+1 read, 1 data disk failed", degraded,
	    "MB/s", "raid 8+1 read, healthy", healthy, ">=", 0.5);
	benchout_note(&b, "reads cold: page cache dropped before each pass "
	    "(at most %.1f%% / %.1f%% of any image resident); every block's "
	    "VBN stamp checked", res_h * 100, res_d * 100);

	benchout_vs(&b, "raid 8+1 rebuild (shared device)", rebuild, "MB/s",
	    "disk sequential write", disk_wr, ">=", 0.5);
	benchout_vs(&b, "rebuild device traffic", rebuild * (n + 1), "MB/s",
	    "raid 8+1 read, healthy", healthy, NULL, 0);
	benchout_note(&b, "rebuild MB/s of the rebuilt disk, flush included, "
	    "cache dropped first (%.1f%% resident at most).  It reads %u "
	    "images and writes 1, all on this one device, so its device "
	    "traffic is (N+1) x that, compared above with the healthy read "
	    "rate of the same images; the 0.5 goal assumes disks of their "
	    "own", res_r * 100, n);
	benchout_figure(&b, "raid 8+1 read, after rebuild", after, "MB/s");

	if (ind.ran) {
		const double l = ind.rate * 1e6 / MiB;	/* L in MiB/s */
		char peer[64];

		benchout_figure(&b, "indep: disk rate L (throttle)", l,
		    "MB/s");
		benchout_vs(&b, "indep: disk sequential write", ind.disk_wr,
		    "MB/s", "indep: disk rate L (throttle)", l, NULL, 0);
		snprintf(peer, sizeof(peer), "%u x L", n);
		benchout_vs(&b, "indep: 8+1 full-stripe write", ind.write,
		    "MB/s", peer, n * l, ">=", 0.8);
		benchout_vs(&b, "indep: 8+1 read, healthy", ind.healthy,
		    "MB/s", peer, n * l, NULL, 0);
		benchout_vs(&b, "indep: 8+1 read, 1 disk failed",
		    ind.degraded, "MB/s", "indep: 8+1 read, healthy",
		    ind.healthy, ">=", 0.5);
		benchout_vs(&b, "indep: 8+1 rebuild (one disk)", ind.rebuild,
		    "MB/s", "indep: disk rate L (throttle)", l, NULL, 0);
		benchout_add(&b, "rebuild_ratio_independent", ind.rebuild / l,
		    "ratio", NULL, 0, ">=", 0.5);
		benchout_note(&b, "indep: simulated independent disks: images "
		    "in %s (memory, no device), %llu MiB per disk, every disk "
		    "(spare included) throttled by the fault injector to L = "
		    "%u MB/s (10^6 B/s), reads and writes sharing it; the "
		    "1+1 volume's write (4 MiB per disk per call) is one "
		    "throttled disk's sequential bandwidth through the same "
		    "path, a check that the throttle holds L; ratios are "
		    "taken against L itself", SHM_DIR,
		    (unsigned long long)ind.disk_mib, ind.rate);
		benchout_note(&b, "indep: L chosen under half of what "
		    "each disk got unthrottled in memory (8+1 write %.0f "
		    "MB/s of data), so the CPU is not the bottleneck; no "
		    "seek cost is simulated, and the page cache plays no part "
		    "(every read is paid for at L)", ind.mem_write);
		benchout_note(&b, "indep: rebuild MB/s of the rebuilt disk, "
		    "flush included; after the rebuild every block's VBN "
		    "stamp was checked at full speed (%.0f MB/s)", ind.after);
	} else {
		benchout_note(&b, "simulated independent disks skipped: %s",
		    ind.why);
	}
	benchout_note(&b, "scratch directory %s (%s), %llu MiB of data, "
	    "geometry %u+%u", base, tmpfs ? "tmpfs!" : "disk",
	    (unsigned long long)data_mb, n, p);
	benchout_close(&b);
	return 0;
}
