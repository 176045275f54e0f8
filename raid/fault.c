/*
 * raid/fault.c: the fault injector, a disk behind the same vtable as the
 * plain disk (disk.c) that wraps one and can be told to misbehave
 * (tests only; raid_open_opts.fault_inject).
 *
 *   DEAD           every I/O returns EIO
 *   EIO_READ       reads touching data-area blocks [block, block+count): EIO
 *   EIO_WRITE      writes touching them: EIO
 *   HANG           every I/O (read, write, sync) waits, without an answer,
 *                  until the fault is changed (then it goes on as the new
 *                  kind says) or the device is aborted at close (then EIO):
 *                  a disk that stops answering, for the deadlines of
 *                  deadline.c
 *   THROTTLE       a disk of limited bandwidth (block = MB/s): see below
 *   flip_bit       one bit changed in the image (and in any unflushed write
 *                  covering it, so every reader sees the flip)
 *
 * The throttle simulates a disk of its own when every image shares one
 * device (or lives in memory): a virtual clock per disk, busy_until, is
 * the time the disk finishes the I/O it has accepted.  An I/O of n bytes
 * is given the slot [max(now, busy_until), + n / rate) under mu (reads
 * and writes alike, in the order they arrive, as on one spindle), does
 * its work on the image, then waits for the end of its slot with mu
 * released (cv, so that clearing the fault or the abort at close ends the
 * wait at once).  It is a token bucket that holds no burst: an idle disk
 * does not save up bandwidth.  Several workers of one disk queue their
 * slots back to back, so the disk is never idle while I/O is waiting,
 * and a late wake-up does not delay the next slot.  A read on the
 * caller's fast path (try_preadv) answers -EAGAIN, so it goes to the
 * workers and pays like any other.  A prefetch hint is the page cache's
 * read-ahead on a disk of its own: it takes its slot on the clock at
 * once (paid for, as a real disk's read-ahead is) without waiting, and is
 * remembered (the last FAULT_RA of them); a later read that they cover
 * takes no slot of its own but waits for the end of their slots (the data
 * arriving), and one whose slots have ended is served on the fast path,
 * as from the page cache.  Disks not throttled pay one comparison.
 *
 * The crash simulator (SQLite's crash VFS, for disks): every write is kept
 * in an in-memory overlay, in issue order, and reads see the overlay on top
 * of the image.  sync() applies the overlay to the image in order and
 * fdatasyncs it: only a sync makes a write durable, as on a real disk with a
 * volatile cache.  raid_fault_crash() applies a seeded-random subset of the
 * pending writes of every disk (whole, or torn at 512-byte sectors), drops
 * the rest, and from then on every I/O of every disk of the volume returns
 * -FL_ECRASHED, so nothing more reaches the images.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/raid_impl.h"

#define SECTOR	512u
#define FAULT_RA	16u	/* read-ahead ranges a throttled disk keeps */

struct fault_ra {
	uint64_t off, len;	/* bytes; len 0: unused */
	uint64_t ready;		/* ns: the end of its slot */
};

struct fault_write {
	uint64_t off;
	size_t len;
	uint8_t *data;
};

struct fault_dev {
	struct raid_dev base;		/* first: the vtable user's view */
	struct raid_dev *inner;		/* owned */
	struct raid_fault_world *world;	/* borrowed from the volume */
	pthread_mutex_t mu;
	pthread_cond_t cv;		/* kind changed or aborted */
	bool aborted;			/* closing: no more waiting */
	enum raid_fault_kind kind;
	uint64_t fblock, fcount;	/* data-area blocks */
	uint64_t rate;			/* THROTTLE: bytes per second */
	uint64_t busy_until;		/* THROTTLE: ns, CLOCK_MONOTONIC */
	struct fault_ra ra[FAULT_RA];	/* THROTTLE: read ahead (prefetch) */
	unsigned ra_next;
	uint64_t data_off;		/* blocks */
	struct fault_write *pend;
	size_t npend, cap;
};

static const struct raid_dev_ops fault_ops;

static struct fault_dev *to_fault(struct raid_dev *d)
{
	return (struct fault_dev *)d;
}

bool raid_dev_is_fault(const struct raid_dev *d)
{
	return d != NULL && d->ops == &fault_ops;
}

static size_t iov_total(const struct iovec *iov, int cnt)
{
	size_t t = 0;

	for (int i = 0; i < cnt; i++)
		t += iov[i].iov_len;
	return t;
}

/* Does [off, off+len) touch the faulty data-area range?  Caller holds mu. */
static bool in_fault_range(const struct fault_dev *f, uint64_t off,
    size_t len)
{
	uint64_t lo = (f->data_off + f->fblock) * RAID_BLOCK_SIZE;
	uint64_t hi = lo + f->fcount * RAID_BLOCK_SIZE;

	return f->fcount > 0 && off < hi && off + len > lo;
}

/*
 * Every I/O starts here, holding mu: aborted, crashed, or a HANG to sit
 * out (mu is released while waiting).  Nothing of the volume (world) is
 * touched once aborted: the volume may be gone.
 */
static int fault_enter(struct fault_dev *f)
{
	for (;;) {
		if (f->aborted)
			return -EIO;
		if (atomic_load(&f->world->crashed))
			return -FL_ECRASHED;
		if (f->kind != RAID_FAULT_HANG)
			return 0;
		pthread_cond_wait(&f->cv, &f->mu);
	}
}

/*
 * THROTTLE: the slot of an I/O of len bytes, reserved now (caller holds
 * mu); returns when the slot ends, 0 if the disk is not throttled.
 */
static uint64_t throttle_reserve(struct fault_dev *f, size_t len)
{
	uint64_t now, start;

	if (f->kind != RAID_FAULT_THROTTLE)
		return 0;
	now = fl_now_mono_ns();
	start = FL_MAX(now, f->busy_until);
	f->busy_until = start + (uint64_t)((double)len * 1e9 /
	    (double)f->rate);
	return f->busy_until;
}

/* THROTTLE: whether read-ahead ranges cover [off, off+len) together, and
 * then in *ready when the last of them arrives.  Caller holds mu. */
static bool ra_covers(const struct fault_dev *f, uint64_t off, size_t len,
    uint64_t *ready)
{
	uint64_t pos = off, end = off + len, last = 0;

	while (pos < end) {
		const struct fault_ra *hit = NULL;

		for (unsigned i = 0; i < FAULT_RA && hit == NULL; i++) {
			const struct fault_ra *r = &f->ra[i];

			if (r->len != 0 && r->off <= pos &&
			    pos < r->off + r->len)
				hit = r;
		}
		if (hit == NULL)
			return false;
		last = FL_MAX(last, hit->ready);
		pos = hit->off + hit->len;
	}
	*ready = last;
	return len > 0;
}

/* Wait (mu released meanwhile) until the slot ending at end is over, the
 * fault is changed or the device is aborted.  Caller holds mu. */
static void throttle_wait(struct fault_dev *f, uint64_t end)
{
	while (end != 0 && f->kind == RAID_FAULT_THROTTLE && !f->aborted) {
		struct timespec ts;

		if (fl_now_mono_ns() >= end)
			break;
		ts.tv_sec = (time_t)(end / 1000000000ull);
		ts.tv_nsec = (long)(end % 1000000000ull);
		(void)pthread_cond_timedwait(&f->cv, &f->mu, &ts);
	}
}

/* Copy the overlap of pending write w onto [off, off+len) of buf. */
static void overlay(const struct fault_write *w, uint8_t *buf, uint64_t off,
    size_t len)
{
	uint64_t lo = FL_MAX(off, w->off);
	uint64_t hi = FL_MIN(off + len, w->off + w->len);

	if (lo < hi)
		memcpy(buf + (lo - off), w->data + (lo - w->off), hi - lo);
}

static int fault_read(struct raid_dev *d, const struct iovec *iov, int cnt,
    uint64_t off, bool nowait, unsigned rf)
{
	struct fault_dev *f = to_fault(d);
	size_t len = iov_total(iov, cnt);
	uint64_t end = 0;
	int err = 0;

	pthread_mutex_lock(&f->mu);
	uint64_t ready = 0;
	bool ra = f->kind == RAID_FAULT_THROTTLE &&
	    ra_covers(f, off, len, &ready);
	if (nowait && (f->kind == RAID_FAULT_HANG ||
	    (f->kind == RAID_FAULT_THROTTLE && (!ra ||
	    ready > fl_now_mono_ns()))) && !f->aborted) {
		err = -EAGAIN;	/* it would wait */
		goto out;
	}
	err = fault_enter(f);
	if (err != 0)
		goto out;
	if (f->kind == RAID_FAULT_DEAD ||
	    (f->kind == RAID_FAULT_EIO_READ && in_fault_range(f, off, len))) {
		err = -EIO;
		goto out;
	}
	/* Read ahead: paid for by the prefetch; wait for it to arrive. */
	end = ra ? ready : throttle_reserve(f, len);
	if (!nowait)
		err = f->inner->ops->preadv(f->inner, iov, cnt, off, rf);
	else if (f->inner->ops->try_preadv != NULL)
		err = f->inner->ops->try_preadv(f->inner, iov, cnt, off, rf);
	else
		err = -EAGAIN;
	if (err != 0)
		goto out;
	for (size_t i = 0; i < f->npend; i++) {
		const struct fault_write *w = &f->pend[i];
		uint64_t o = off;

		if (w->off >= off + len || w->off + w->len <= off)
			continue;	/* misses the whole read */
		for (int k = 0; k < cnt; k++) {
			overlay(&f->pend[i], iov[k].iov_base, o, iov[k].iov_len);
			o += iov[k].iov_len;
		}
	}
	throttle_wait(f, end);
out:
	pthread_mutex_unlock(&f->mu);
	return err;
}

static int fault_preadv(struct raid_dev *d, const struct iovec *iov, int cnt,
    uint64_t off, unsigned rf)
{
	return fault_read(d, iov, cnt, off, false, rf);
}

static int fault_try_preadv(struct raid_dev *d, const struct iovec *iov,
    int cnt, uint64_t off, unsigned rf)
{
	return fault_read(d, iov, cnt, off, true, rf);
}

static int fault_pwritev(struct raid_dev *d, const struct iovec *iov,
    int cnt, uint64_t off)
{
	struct fault_dev *f = to_fault(d);
	size_t len = iov_total(iov, cnt), pos = 0;
	struct fault_write w;
	uint64_t end = 0;
	int err = 0;

	pthread_mutex_lock(&f->mu);
	err = fault_enter(f);
	if (err != 0)
		goto out;
	if (f->kind == RAID_FAULT_DEAD ||
	    (f->kind == RAID_FAULT_EIO_WRITE && in_fault_range(f, off, len))) {
		err = -EIO;
		goto out;
	}
	if (off + len > f->base.size) {
		err = -ENOSPC;
		goto out;
	}
	end = throttle_reserve(f, len);
	if (f->npend == f->cap) {
		size_t ncap = f->cap ? f->cap * 2 : 64;
		struct fault_write *np = realloc(f->pend, ncap * sizeof(*np));

		if (np == NULL) {
			err = -ENOMEM;
			goto out;
		}
		f->pend = np;
		f->cap = ncap;
	}
	w.off = off;
	w.len = len;
	w.data = malloc(len ? len : 1);
	if (w.data == NULL) {
		err = -ENOMEM;
		goto out;
	}
	for (int k = 0; k < cnt; k++) {
		memcpy(w.data + pos, iov[k].iov_base, iov[k].iov_len);
		pos += iov[k].iov_len;
	}
	f->pend[f->npend++] = w;
	throttle_wait(f, end);
out:
	pthread_mutex_unlock(&f->mu);
	return err;
}

static void drop_pending(struct fault_dev *f)
{
	for (size_t i = 0; i < f->npend; i++)
		free(f->pend[i].data);
	f->npend = 0;
}

static int fault_sync(struct raid_dev *d)
{
	struct fault_dev *f = to_fault(d);
	int err = 0;

	pthread_mutex_lock(&f->mu);
	err = fault_enter(f);
	if (err != 0)
		goto out;
	if (f->kind == RAID_FAULT_DEAD) {
		err = -EIO;
		goto out;
	}
	for (size_t i = 0; i < f->npend; i++) {
		err = raid_dev_pwrite(f->inner, f->pend[i].data, f->pend[i].len,
		    f->pend[i].off);
		if (err != 0)
			goto out;
	}
	drop_pending(f);
	err = f->inner->ops->sync(f->inner);
out:
	pthread_mutex_unlock(&f->mu);
	return err;
}

static void fault_close(struct raid_dev *d)
{
	struct fault_dev *f = to_fault(d);

	drop_pending(f);
	free(f->pend);
	f->inner->ops->close(f->inner);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f);
}

static void fault_abort(struct raid_dev *d)
{
	struct fault_dev *f = to_fault(d);

	pthread_mutex_lock(&f->mu);
	f->aborted = true;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static void fault_prefetch(struct raid_dev *d, uint64_t off, uint64_t len)
{
	struct fault_dev *f = to_fault(d);
	bool throttled;

	pthread_mutex_lock(&f->mu);
	throttled = f->kind == RAID_FAULT_THROTTLE;
	uint64_t ready;
	if (throttled && len > 0 && !f->aborted &&
	    !ra_covers(f, off, len, &ready)) {
		struct fault_ra *r = &f->ra[f->ra_next++ % FAULT_RA];

		r->off = off;
		r->len = len;
		r->ready = throttle_reserve(f, len);
	}
	pthread_mutex_unlock(&f->mu);
	if (!throttled && f->inner->ops->prefetch != NULL)
		f->inner->ops->prefetch(f->inner, off, len);
}

static void fault_forget(struct raid_dev *d, uint64_t off, uint64_t len)
{
	struct fault_dev *f = to_fault(d);

	if (f->inner->ops->forget != NULL)
		f->inner->ops->forget(f->inner, off, len);
}

static const struct raid_dev_ops fault_ops = {
	.preadv = fault_preadv,
	.try_preadv = fault_try_preadv,
	.pwritev = fault_pwritev,
	.sync = fault_sync,
	.close = fault_close,
	.prefetch = fault_prefetch,
	.abort = fault_abort,
	.forget = fault_forget,
};

int raid_fault_wrap(struct raid_dev *inner, struct raid_fault_world *w,
    struct raid_dev **out)
{
	struct fault_dev *f = calloc(1, sizeof(*f));
	pthread_condattr_t ca;

	if (f == NULL)
		return -ENOMEM;
	f->base.ops = &fault_ops;
	f->base.size = inner->size;
	f->base.is_blockdev = inner->is_blockdev;
	f->base.file_dev = inner->file_dev;
	f->base.file_ino = inner->file_ino;
	f->base.fd = -1;
	f->base.rfd = -1;
	f->inner = inner;
	f->world = w;
	pthread_mutex_init(&f->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cv, &ca);	/* throttle_wait's clock */
	pthread_condattr_destroy(&ca);
	*out = &f->base;
	return 0;
}

void raid_fault_bind(struct raid_dev *d, struct raid_fault_world *w,
    uint64_t data_off_blocks)
{
	d = raid_dev_unwrap(d);
	if (raid_dev_is_fault(d)) {
		to_fault(d)->world = w;
		to_fault(d)->data_off = data_off_blocks;
	}
}

/* ---- the public fault API ---------------------------------------------- */

static struct raid_dev *disk_dev(raid_vol_t *v, size_t disk)
{
	struct raid_dev *d = NULL;

	pthread_mutex_lock(&v->state_lock);
	if (disk < v->ndisks)
		d = v->disks[disk].dev;
	pthread_mutex_unlock(&v->state_lock);
	return raid_dev_unwrap(d);
}

int raid_fault_set(raid_vol_t *v, size_t disk, enum raid_fault_kind kind,
    uint64_t block, uint64_t count)
{
	struct raid_dev *d;
	struct fault_dev *f;

	if (!v->fault_inject)
		return FL_ERR(-ENOTSUP);
	if (kind > RAID_FAULT_THROTTLE || disk >= raid_ndisks(v) ||
	    (kind == RAID_FAULT_THROTTLE && (block == 0 ||
	    block > UINT64_MAX / 1000000u)))
		return FL_ERR(-EINVAL);
	d = disk_dev(v, disk);
	if (d == NULL || !raid_dev_is_fault(d))
		return FL_ERR(-ENODEV);
	f = to_fault(d);
	pthread_mutex_lock(&f->mu);
	f->kind = kind;
	memset(f->ra, 0, sizeof(f->ra));	/* read ahead at another speed */
	f->fblock = block;
	f->fcount = (kind == RAID_FAULT_EIO_READ || kind == RAID_FAULT_EIO_WRITE)
	    ? count : 0;
	if (kind == RAID_FAULT_THROTTLE) {
		if (f->rate != block * 1000000u)
			f->busy_until = 0;	/* a new disk speed */
		f->rate = block * 1000000u;
	} else {
		f->rate = 0;
		f->busy_until = 0;
	}
	pthread_cond_broadcast(&f->cv);	/* a HANG or a throttle may be over */
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static int flip_in_file(struct raid_dev *d, uint64_t off, uint8_t mask)
{
	uint8_t b;
	int err = raid_dev_pread(d, &b, 1, off);

	if (err == 0) {
		b ^= mask;
		err = raid_dev_pwrite(d, &b, 1, off);
	}
	return err;
}

int raid_fault_flip_bit(raid_vol_t *v, size_t disk, uint64_t block,
    uint32_t bit)
{
	struct raid_dev *d;
	uint64_t off;
	uint8_t mask;
	int err;

	if (disk >= raid_ndisks(v) || block >= v->disk_blocks ||
	    bit >= RAID_BLOCK_SIZE * 8)
		return FL_ERR(-EINVAL);
	d = disk_dev(v, disk);
	if (d == NULL)
		return FL_ERR(-ENODEV);
	off = (v->data_off + block) * RAID_BLOCK_SIZE + bit / 8;
	mask = (uint8_t)(1u << (bit % 8));
	if (!raid_dev_is_fault(d))
		return flip_in_file(d, off, mask);

	struct fault_dev *f = to_fault(d);
	pthread_mutex_lock(&f->mu);
	if (atomic_load(&f->world->crashed)) {
		err = -FL_ECRASHED;
	} else {
		err = flip_in_file(f->inner, off, mask);
		for (size_t i = 0; err == 0 && i < f->npend; i++) {
			struct fault_write *w = &f->pend[i];

			if (off >= w->off && off < w->off + w->len)
				w->data[off - w->off] ^= mask;
		}
	}
	pthread_mutex_unlock(&f->mu);
	return err;
}

/* splitmix64: small, seeded, good enough to pick writes. */
static uint64_t prng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void crash_apply(struct fault_dev *f, enum raid_crash_mode mode,
    uint64_t *rng)
{
	for (size_t i = 0; i < f->npend; i++) {
		struct fault_write *w = &f->pend[i];
		uint64_t r = prng_next(rng);

		if (mode == RAID_CRASH_DROP_ALL || (r & 1) == 0)
			continue;
		if (mode == RAID_CRASH_TEAR && (r & 2) != 0 &&
		    w->len > SECTOR) {
			/* Torn: each 512-byte sector reaches the disk or not. */
			for (size_t o = 0; o < w->len; o += SECTOR) {
				size_t l = FL_MIN((size_t)SECTOR, w->len - o);

				if (prng_next(rng) & 1)
					(void)raid_dev_pwrite(f->inner,
					    w->data + o, l, w->off + o);
			}
		} else {
			(void)raid_dev_pwrite(f->inner, w->data, w->len,
			    w->off);
		}
	}
	drop_pending(f);
	(void)f->inner->ops->sync(f->inner);
}

int raid_fault_crash(raid_vol_t *v, enum raid_crash_mode mode, uint64_t seed)
{
	uint64_t rng = seed ^ 0x5eed5eed5eed5eedull;
	size_t nd;

	if (!v->fault_inject)
		return FL_ERR(-ENOTSUP);
	if (mode > RAID_CRASH_TEAR)
		return FL_ERR(-EINVAL);
	if (atomic_exchange(&v->world.crashed, true))
		return FL_ERR(-FL_ECRASHED);
	nd = raid_ndisks(v);
	for (size_t i = 0; i < nd; i++) {
		struct raid_dev *d = disk_dev(v, i);

		if (d == NULL || !raid_dev_is_fault(d))
			continue;
		struct fault_dev *f = to_fault(d);
		pthread_mutex_lock(&f->mu);
		crash_apply(f, mode, &rng);
		pthread_mutex_unlock(&f->mu);
	}
	fl_info(RAID_SUBSYS, "simulated crash (mode %d, seed %llu)",
	    (int)mode, (unsigned long long)seed);
	return 0;
}

uint64_t raid_fault_pending(const raid_vol_t *v)
{
	raid_vol_t *vv = (raid_vol_t *)v;
	uint64_t n = 0;
	size_t nd = raid_ndisks(v);

	for (size_t i = 0; i < nd; i++) {
		struct raid_dev *d = disk_dev(vv, i);

		if (d == NULL || !raid_dev_is_fault(d))
			continue;
		struct fault_dev *f = to_fault(d);
		pthread_mutex_lock(&f->mu);
		n += f->npend;
		pthread_mutex_unlock(&f->mu);
	}
	return n;
}
