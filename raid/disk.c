/*
 * raid/disk.c: the plain disk, an image file or a block device behind the
 * disk-ops vtable of raid_impl.h.  The fault injector (fault.c) wraps one
 * of these and is interchangeable with it.
 *
 * I/O is buffered (page cache); durability comes from fdatasync in sync(),
 * which raid_flush calls on every disk (R2).  A large write starts its
 * writeback at once (file_pwritev).  try_preadv reads with
 * RWF_NOWAIT: what the page cache holds, without waiting for the device
 * (deadline.c lets callers do that in their own thread).  A RAID_RD_RANDOM
 * read goes through a second open file description of the same file with
 * POSIX_FADV_RANDOM (readahead state is per description), so the reads of
 * a partial stripe's blocks start no readahead while sequential reads keep
 * theirs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "raid/raid_impl.h"

#define IOV_BATCH	1024

/* preadv/pwritev of the whole vector, in batches, over short transfers
 * and EINTR.  A read past the end of the image is -EIO. */
static int file_iov(int fd, const struct iovec *iov, int cnt, uint64_t off,
    bool write, int rwf)
{
	struct iovec local[IOV_BATCH];

	while (cnt > 0) {
		int c = cnt < IOV_BATCH ? cnt : IOV_BATCH;
		ssize_t n;
		size_t want = 0;

		memcpy(local, iov, (size_t)c * sizeof(*iov));
		for (int i = 0; i < c; i++)
			want += local[i].iov_len;
		struct iovec *cur = local;
		int left = c;
		while (want > 0) {
			n = write ? pwritev(fd, cur, left, (off_t)off) :
			    preadv2(fd, cur, left, (off_t)off, rwf);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (rwf != 0 && errno == EOPNOTSUPP)
					return -EAGAIN;
				return -errno;
			}
			if (n == 0)
				return -EIO;
			want -= (size_t)n;
			off += (uint64_t)n;
			while (n > 0 && left > 0) {
				if ((size_t)n >= cur->iov_len) {
					n -= (ssize_t)cur->iov_len;
					cur++;
					left--;
				} else {
					cur->iov_base = (uint8_t *)cur->iov_base + n;
					cur->iov_len -= (size_t)n;
					n = 0;
				}
			}
		}
		iov += c;
		cnt -= c;
	}
	return 0;
}

static int read_fd(const struct raid_dev *d, unsigned rf)
{
	return (rf & RAID_RD_RANDOM) != 0 && d->rfd >= 0 ? d->rfd : d->fd;
}

static int file_preadv(struct raid_dev *d, const struct iovec *iov, int cnt,
    uint64_t off, unsigned rf)
{
	return file_iov(read_fd(d, rf), iov, cnt, off, false, 0);
}

/* RWF_NOWAIT: served from the page cache, or -EAGAIN (a short read is
 * retried, and then fails with EAGAIN, by the loop). */
static int file_try_preadv(struct raid_dev *d, const struct iovec *iov,
    int cnt, uint64_t off, unsigned rf)
{
	return file_iov(read_fd(d, rf), iov, cnt, off, false, RWF_NOWAIT);
}

/*
 * A write of WRITEBACK_MIN bytes or more starts its writeback at once
 * (sync_file_range, SYNC_FILE_RANGE_WRITE: no wait, no flush), so that the
 * device works while the rest of a CP is still being written to the page
 * cache, and the sync that ends the CP has less left to write.  Durability
 * still comes from file_sync alone.
 */
#define WRITEBACK_MIN	(64u << 10)

static int file_pwritev(struct raid_dev *d, const struct iovec *iov, int cnt,
    uint64_t off)
{
	int rc = file_iov(d->fd, iov, cnt, off, true, 0);
	size_t len = 0;

	if (rc != 0)
		return rc;
	for (int i = 0; i < cnt; i++)
		len += iov[i].iov_len;
	if (len >= WRITEBACK_MIN)
		(void)sync_file_range(d->fd, (off_t)off, (off_t)len,
		    SYNC_FILE_RANGE_WRITE);
	return 0;
}

static int file_sync(struct raid_dev *d)
{
	while (fdatasync(d->fd) != 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static void file_close(struct raid_dev *d)
{
	if (d->fd >= 0)
		close(d->fd);
	if (d->rfd >= 0)
		close(d->rfd);
	free(d);
}

static void file_prefetch(struct raid_dev *d, uint64_t off, uint64_t len)
{
	(void)posix_fadvise(d->fd, (off_t)off, (off_t)len,
	    POSIX_FADV_WILLNEED);
}

/* Clean pages only: a page still dirty (written after the sync) stays. */
static void file_forget(struct raid_dev *d, uint64_t off, uint64_t len)
{
	(void)posix_fadvise(d->fd, (off_t)off, (off_t)len,
	    POSIX_FADV_DONTNEED);
}

static const struct raid_dev_ops file_ops = {
	.preadv = file_preadv,
	.try_preadv = file_try_preadv,
	.pwritev = file_pwritev,
	.sync = file_sync,
	.close = file_close,
	.prefetch = file_prefetch,
	.forget = file_forget,
	.write_in_place = true,
};

int raid_dev_open_file(const char *path, bool create, struct raid_dev **out)
{
	struct raid_dev *d;
	struct stat st;
	int fd, err = 0;

	*out = NULL;
	fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		err = -errno;
		close(fd);
		return err;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		close(fd);
		return -ENOMEM;
	}
	d->ops = &file_ops;
	d->fd = fd;
	/* Without it (no descriptor left) such reads use fd: slower, same
	 * data. */
	d->rfd = open(path, O_RDONLY | O_CLOEXEC);
	if (d->rfd >= 0)
		(void)posix_fadvise(d->rfd, 0, 0, POSIX_FADV_RANDOM);
	d->file_dev = (uint64_t)st.st_dev;
	d->file_ino = (uint64_t)st.st_ino;
	if (S_ISBLK(st.st_mode)) {
		uint64_t sz = 0;

		if (ioctl(fd, BLKGETSIZE64, &sz) != 0) {
			err = -errno;
			file_close(d);
			return err;
		}
		d->size = sz;
		d->is_blockdev = true;
		/* The device, whatever node names it. */
		d->file_dev = (uint64_t)st.st_rdev;
		d->file_ino = UINT64_MAX;
	} else if (S_ISREG(st.st_mode)) {
		d->size = (uint64_t)st.st_size;
	} else {
		file_close(d);
		return -EINVAL;
	}
	*out = d;
	return 0;
}

/*
 * Give an image file its size.  zero: the file carries no filer label, so
 * old contents are dropped first (zero data implies zero parity).  Block
 * devices keep their size; zero asks for BLKZEROOUT of the whole device.
 */
int raid_dev_size_image(struct raid_dev *d, uint64_t size, bool prealloc,
    bool zero)
{
	int err;

	if (d->is_blockdev) {
		if (d->size < size)
			return -ENOSPC;
		if (zero) {
			uint64_t range[2] = { 0, size };

			if (ioctl(d->fd, BLKZEROOUT, range) != 0)
				return -errno;
		}
		return 0;
	}
	if (zero && ftruncate(d->fd, 0) != 0)
		return -errno;
	if (ftruncate(d->fd, (off_t)size) != 0)
		return -errno;
	if (prealloc) {
		err = posix_fallocate(d->fd, 0, (off_t)size);
		if (err != 0)
			return -err;
	}
	d->size = size;
	return 0;
}

int raid_dev_pread(struct raid_dev *d, void *buf, size_t len, uint64_t off)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };

	return d->ops->preadv(d, &iov, 1, off, 0);
}

int raid_dev_pwrite(struct raid_dev *d, const void *buf, size_t len,
    uint64_t off)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return d->ops->pwritev(d, &iov, 1, off);
}
