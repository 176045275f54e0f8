/*
 * tests/bench/devstat.h: the block device under a directory, as the kernel
 * counts it in /sys/dev/block/MAJ:MIN/stat (its Documentation/block/
 * stat.rst: sectors read and written, I/Os in flight, milliseconds with
 * I/O in flight).
 *
 * devstat_settle writes back what the file system under a directory holds
 * dirty and waits until its device has been idle for a moment.  A
 * benchmark calls it before each timed phase, so that a phase does not pay
 * for the writeback of the one before it (or of the other server's run):
 * on one shared device that writeback made a server's metadata figures
 * swing by a factor of four between runs.
 *
 * Header-only (static functions), like benchout.h.
 */
#ifndef FILER_TESTS_BENCH_DEVSTAT_H
#define FILER_TESTS_BENCH_DEVSTAT_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "tests/lib/tl_proc.h"

struct devstat {
	bool ok;
	uint64_t rd_sect, wr_sect, inflight, busy_ms;
	double t;		/* tl_now_s() of the reading */
};

/* The counters of the device dir is on; ok false if they cannot be read
 * (a file system without a block device: tmpfs, overlay). */
static inline struct devstat devstat_read(const char *dir)
{
	struct devstat d = { .t = tl_now_s() };
	unsigned long long f[10];
	char path[96];
	struct stat st;
	FILE *fp;

	if (dir == NULL || stat(dir, &st) != 0 || major(st.st_dev) == 0)
		return d;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/stat",
	    major(st.st_dev), minor(st.st_dev));
	fp = fopen(path, "r");
	if (fp == NULL)
		return d;
	if (fscanf(fp, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
	    &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8],
	    &f[9]) == 10) {
		d.ok = true;
		d.rd_sect = f[2];
		d.wr_sect = f[6];
		d.inflight = f[8];
		d.busy_ms = f[9];
	}
	fclose(fp);
	return d;
}

/* What the device did between a and b: MB/s read and written, and the
 * fraction of the time it had I/O in flight.  false if not known. */
static inline bool devstat_rates(const struct devstat *a,
    const struct devstat *b, double *rd_mbs, double *wr_mbs, double *busy)
{
	double dt = b->t - a->t;

	if (!a->ok || !b->ok || dt <= 0)
		return false;
	*rd_mbs = (double)(b->rd_sect - a->rd_sect) * 512 / 1e6 / dt;
	*wr_mbs = (double)(b->wr_sect - a->wr_sect) * 512 / 1e6 / dt;
	*busy = (double)(b->busy_ms - a->busy_ms) / 1e3 / dt;
	return true;
}

/*
 * syncfs the file system under dir, then wait until its device has had
 * nothing in flight and written nothing for quiet_s seconds, for at most
 * max_s seconds in all.  Returns the seconds it took, or -1 if the device
 * was still busy at max_s (or syncfs failed); without device counters it
 * returns after the syncfs.
 */
static inline double devstat_settle(const char *dir, double quiet_s,
    double max_s)
{
	double t0 = tl_now_s(), since;
	struct devstat last;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool synced;

	if (fd < 0)
		return -1;
	synced = syncfs(fd) == 0;
	close(fd);
	if (!synced)
		return -1;
	last = devstat_read(dir);
	if (!last.ok)
		return tl_now_s() - t0;
	since = last.t;
	while (tl_now_s() - t0 < max_s) {
		struct devstat d;

		tl_sleep_ms(20);
		d = devstat_read(dir);
		if (!d.ok)
			return tl_now_s() - t0;
		if (d.inflight != 0 || d.wr_sect != last.wr_sect ||
		    d.rd_sect != last.rd_sect)
			since = d.t;
		else if (d.t - since >= quiet_s)
			return d.t - t0;
		last = d;
	}
	return -1;
}

#endif
