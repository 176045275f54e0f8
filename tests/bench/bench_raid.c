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
 *
 * Scratch images go to $FILER_BENCH_DIR, else <outdir>/../bench-tmp (the
 * working disk), never a tmpfs unless forced (then a note says so).  Data
 * size: $FILER_BENCH_MB (default 1024) MiB.  Every block read back carries
 * its VBN stamped in its first 8 bytes, which is checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <isa-l/erasure_code.h>
#include <isa-l/raid.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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

int main(int argc, char **argv)
{
	const char *outdir = argc > 1 ? argv[1] : "build/bench";
	const char *env_dir = getenv("FILER_BENCH_DIR");
	const char *env_mb = getenv("FILER_BENCH_MB");
	static const unsigned geo[][2] = {
		{ 4, 1 }, { 4, 2 }, { 8, 1 }, { 8, 2 }, { 8, 3 },
	};
	double gen[FL_ARRAY_SIZE(geo)];
	const uint32_t n = 8, p = 1;
	uint64_t data_mb = env_mb != NULL ? strtoull(env_mb, NULL, 10) : 1024;
	char base[4096], spare[4200];
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
	if (env_dir != NULL) {
		snprintf(base, sizeof(base), "%s", env_dir);
	} else {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s", outdir);
		snprintf(base, sizeof(base), "%s/bench-tmp", dirname(tmp));
	}
	mkdir(base, 0755);
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
	tl_path(spare, sizeof(spare), t.dir, "spare.img");
	rc = raid_add_spare(t.v, spare);
	if (rc != 0)
		die("raid_add_spare", rc);
	tl_vol_add_path(&t, "spare.img");
	res_r = drop_all(&t, t.npaths);
	t0 = fl_now_mono_ns();
	rc = raid_rebuild_start(t.v);
	if (rc != 0)
		die("raid_rebuild_start", rc);
	rc = raid_rebuild_wait(t.v);
	if (rc == 0)
		rc = raid_flush(t.v);
	if (rc != 0)
		die("rebuild", rc);
	rebuild = (double)disk_blocks * TL_BS / MiB / secs(t0);
	drop_all(&t, t.npaths);
	wrong += read_all(&t, buf, &after);
	free(buf);
	tl_vol_destroy(&t);
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

	benchout_vs(&b, "raid 8+1 rebuild (one disk)", rebuild, "MB/s",
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
	benchout_note(&b, "scratch directory %s (%s), %llu MiB of data, "
	    "geometry %u+%u", base, tmpfs ? "tmpfs!" : "disk",
	    (unsigned long long)data_mb, n, p);
	benchout_close(&b);
	return 0;
}
