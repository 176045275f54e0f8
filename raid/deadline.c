/*
 * raid/deadline.c: disk I/O with a deadline, so that a disk that stops
 * answering is found and failed instead of holding its callers forever
 * (R5).
 *
 * Every device of an open volume is wrapped here, behind the same vtable as
 * the plain disk (disk.c) and the fault injector (fault.c).  The wrapper
 * owns a few worker threads per disk (one at first, more on demand, at most
 * DL_MAX_WORKERS).  A caller hands its I/O to them (raid_dio_submit) and
 * waits (raid_dio_wait) until the I/O completes or until io_timeout_ms after
 * it was handed over.  Past the deadline the caller gives up: the request
 * is abandoned, the device becomes dead (every later I/O on it returns
 * -ETIMEDOUT at once, and callers still waiting on it give up too) and the
 * caller gets -ETIMEDOUT, which raid treats as it treats EIO: the disk is
 * failed, "no answer for N ms" (raid.c), and the operation goes on from
 * parity.
 *
 * Buffers.  A hung I/O may come back at any time, long after its caller
 * returned and freed or reused its buffers.  So no read ever runs on a
 * caller's buffer: each worker moves the data through its own bounce buffer,
 * DL_PIECE bytes at a time, and copies between the bounce buffer and the
 * caller's buffers only in state COPYING, which it enters (under the device
 * lock) only while the request is not abandoned.  Writes to a device that
 * only hands the buffers to the kernel (write_in_place: the plain disk) go
 * straight from the caller's buffers, as a late write can harm nothing but
 * the disk it lands on, which is dead by then (below); the fault injector,
 * which keeps a copy of each write in user space, goes through the bounce.
 * A caller whose deadline passes during a copy waits for that copy (memory
 * speed, not disk speed) and abandons the request right after.  An
 * abandoned request is never copied into or out of, never continued with
 * its next piece, never started if it was still queued; the worker frees
 * it when it comes back.  What a
 * hung syscall finally does to the failed disk itself is beyond reach, but
 * by then the disk is out and its label generation behind (R5), so nothing
 * is read from it again; and raid_add_spare refuses a file that is already
 * a disk of the volume (by device and inode, however its path is spelled),
 * so a late write cannot land on a disk being rebuilt.
 *
 *   QUEUED --worker--> RUNNING <--> COPYING --> DONE (caller frees)
 *      \                  \
 *       +-----------------+--deadline--> ABANDONED (worker frees)
 *
 * Close.  The workers are told to stop, the inner device is asked to abort
 * waits it controls (the fault injector's HANG), and the workers are joined.
 * A worker still inside the inner device after the grace period is left
 * behind, detached: it then owns the device, and the last worker out closes
 * the inner device and frees the wrapper.  So raid_close returns in bounded
 * time whatever the disks do.
 *
 * Fast path.  A read whose data is all in memory (the page cache) cannot
 * hang on the disk: it is done in the caller's thread straight into its
 * buffer (try_preadv, RWF_NOWAIT), and only what would wait for the device
 * goes to the workers.  Writes and syncs always go to the workers: a
 * buffered write can wait for the device (dirty throttling, the file
 * system's journal).
 *
 * Cost.  For the rest, a hand-off (two wake-ups) per I/O, and for reads
 * from the device one memcpy of the data, done by the workers.  The hot
 * paths of io.c submit the I/O of every disk of a batch of stripes before
 * waiting for any, so disks (and the copies) work in parallel.
 *
 * Written ranges.  The ranges of completed writes are noted (wr[]); a sync
 * takes those noted before it starts, and once it succeeded and its caller
 * was told, the large ones go to the device's forget op (forget_synced,
 * docs/raid.md).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/raid_impl.h"

#define DL_MAX_WORKERS	8u	/* per disk: concurrent I/Os it runs */
#define DL_PIECE	(256u * 1024u)	/* bytes per syscall and bounce */
#define DL_PIECE_IOV	64u		/* iovecs per in-place write */
#define DL_CLOSE_GRACE_MS 100u		/* wait at close for a dead disk */
#define DL_EXTENTS	8u		/* written ranges kept between syncs */
#define DL_FORGET_MIN	(256u * 1024u)	/* smaller ones stay cached */

enum dio_op { DIO_READ, DIO_WRITE, DIO_SYNC, DIO_PREFETCH };
enum dio_state {
	DIO_QUEUED, DIO_RUNNING, DIO_COPYING, DIO_DONE, DIO_ABANDONED,
};

struct raid_dio {
	struct raid_dio *next;		/* queue link (dev->mu) */
	struct dl_dev *dev;		/* NULL: ran in the caller's thread */
	enum dio_op op;
	enum dio_state state;		/* dev->mu */
	bool late;			/* deadline passed during a copy */
	bool detached;			/* nobody waits (prefetch) */
	unsigned rf;			/* a read's RAID_RD_* flags */
	int result;
	uint64_t off, len;
	uint64_t deadline_ns;		/* CLOCK_MONOTONIC */
	int cnt;
	struct iovec iov[];		/* the caller's buffers (borrowed) */
};

struct dl_worker {
	struct dl_dev *dev;
	pthread_t tid;
	uint8_t *bounce;		/* DL_PIECE bytes, owned, lazily */
};

struct dl_dev {
	struct raid_dev base;		/* first: the vtable user's view */
	struct raid_dev *inner;		/* owned */
	uint32_t timeout_ms;
	pthread_mutex_t mu;
	pthread_cond_t work_cv;		/* workers: a request or closing */
	pthread_cond_t done_cv;		/* callers: a request changed state */
	struct raid_dio *head, *tail;
	unsigned nqueued, nidle, nworkers, nexited;
	bool dead;			/* a request timed out */
	atomic_bool dead_hint;		/* = dead, read without mu */
	bool closing, orphaned;
	/* What was written since the last sync began: up to DL_EXTENTS
	 * ranges [lo, hi) (note_written). */
	struct dl_ext { uint64_t lo, hi; } wr[DL_EXTENTS];
	unsigned nwr;
	struct dl_worker w[DL_MAX_WORKERS];
};

static const struct raid_dev_ops dl_ops;

static struct dl_dev *to_dl(struct raid_dev *d)
{
	return (struct dl_dev *)d;
}

struct raid_dev *raid_dev_unwrap(struct raid_dev *d)
{
	return d != NULL && d->ops == &dl_ops ? to_dl(d)->inner : d;
}

static void abs_time(uint64_t mono_ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(mono_ns / 1000000000ull);
	ts->tv_nsec = (long)(mono_ns % 1000000000ull);
}

/* ---- moving data between the caller's iovec and a bounce buffer ------- */

struct iov_cur {
	int i;		/* current iovec */
	size_t off;	/* bytes of it already done */
};

static void iov_copy(const struct raid_dio *io, struct iov_cur *c,
    uint8_t *flat, size_t len, bool to_caller)
{
	while (len > 0 && c->i < io->cnt) {
		const struct iovec *v = &io->iov[c->i];
		size_t n = FL_MIN(len, v->iov_len - c->off);
		uint8_t *p = (uint8_t *)v->iov_base + c->off;

		if (to_caller)
			memcpy(p, flat, n);
		else
			memcpy(flat, p, n);
		flat += n;
		len -= n;
		c->off += n;
		if (c->off == v->iov_len) {
			c->i++;
			c->off = 0;
		}
	}
}

/* Enter COPYING if the caller still waits. */
static bool copy_begin(struct dl_dev *dl, struct raid_dio *io)
{
	bool ok;

	pthread_mutex_lock(&dl->mu);
	ok = io->state == DIO_RUNNING;
	if (ok)
		io->state = DIO_COPYING;
	pthread_mutex_unlock(&dl->mu);
	return ok;
}

static void copy_end(struct dl_dev *dl, struct raid_dio *io)
{
	pthread_mutex_lock(&dl->mu);
	io->state = DIO_RUNNING;
	if (io->late)
		pthread_cond_broadcast(&dl->done_cv);
	pthread_mutex_unlock(&dl->mu);
}

/* Still wanted: the caller has not given up on io. */
static bool still_wanted(struct dl_dev *dl, const struct raid_dio *io)
{
	bool ok;

	pthread_mutex_lock(&dl->mu);
	ok = io->state == DIO_RUNNING;
	pthread_mutex_unlock(&dl->mu);
	return ok;
}

/*
 * A write straight from the caller's buffers, for an inner device whose
 * pwritev only hands them to the kernel (write_in_place).  Piece by
 * piece, so that a request its caller gave up on stops at the next piece.
 * If the caller gives up during a piece and frees or reuses its buffers,
 * the kernel copies whatever is there then (or fails with EFAULT) onto a
 * disk that is dead from that moment on: nothing is read from it again.
 */
static int run_write_in_place(struct dl_dev *dl, struct raid_dio *io)
{
	struct iovec piece[DL_PIECE_IOV];
	struct iov_cur cur = { 0, 0 };
	int err = 0;

	for (uint64_t done = 0; done < io->len && err == 0;) {
		size_t len = 0;
		int n = 0;

		while (cur.i < io->cnt && n < (int)DL_PIECE_IOV &&
		    len < DL_PIECE) {
			const struct iovec *v = &io->iov[cur.i];
			size_t take = FL_MIN(v->iov_len - cur.off,
			    DL_PIECE - len);

			piece[n].iov_base = (uint8_t *)v->iov_base + cur.off;
			piece[n].iov_len = take;
			n++;
			len += take;
			cur.off += take;
			if (cur.off == v->iov_len) {
				cur.i++;
				cur.off = 0;
			}
		}
		if (!still_wanted(dl, io))
			return -ECANCELED;
		err = dl->inner->ops->pwritev(dl->inner, piece, n,
		    io->off + done);
		done += len;
	}
	return err;
}

/* A read or write, piece by piece through the worker's bounce buffer. */
static int run_rw(struct dl_dev *dl, struct dl_worker *w, struct raid_dio *io)
{
	const bool wr = io->op == DIO_WRITE;
	struct iov_cur cur = { 0, 0 };
	int err = 0;

	if (wr && dl->inner->ops->write_in_place)
		return run_write_in_place(dl, io);
	if (w->bounce == NULL) {
		w->bounce = raid_balloc(DL_PIECE / RAID_BLOCK_SIZE);
		if (w->bounce == NULL)
			return -ENOMEM;
	}
	for (uint64_t done = 0; done < io->len && err == 0;) {
		size_t len = (size_t)FL_MIN((uint64_t)DL_PIECE, io->len - done);
		struct iovec b = { w->bounce, len };

		if (wr) {
			if (!copy_begin(dl, io))
				return -ECANCELED;
			iov_copy(io, &cur, w->bounce, len, false);
			copy_end(dl, io);
			err = dl->inner->ops->pwritev(dl->inner, &b, 1,
			    io->off + done);
		} else {
			err = dl->inner->ops->preadv(dl->inner, &b, 1,
			    io->off + done, io->rf);
			if (err == 0) {
				if (!copy_begin(dl, io))
					return -ECANCELED;
				iov_copy(io, &cur, w->bounce, len, true);
				copy_end(dl, io);
			}
		}
		done += len;
	}
	return err;
}

static int run_one(struct dl_dev *dl, struct dl_worker *w, struct raid_dio *io)
{
	switch (io->op) {
	case DIO_READ:
	case DIO_WRITE:
		return run_rw(dl, w, io);
	case DIO_SYNC:
		return dl->inner->ops->sync(dl->inner);
	case DIO_PREFETCH:
		if (dl->inner->ops->prefetch != NULL)
			dl->inner->ops->prefetch(dl->inner, io->off, io->len);
		return 0;
	}
	return -EINVAL;
}

/*
 * A write of [off, off+len) completed; mu held.  It extends a range it
 * touches, or takes a free slot; with all DL_EXTENTS taken it replaces
 * the smallest range if it is larger, else it is not noted.  A range
 * never spans bytes that were not written (what was only read stays
 * cached), and what is not noted is merely not forgotten.
 */
static void note_written(struct dl_dev *dl, uint64_t off, uint64_t len)
{
	uint64_t hi = off + len;
	struct dl_ext *small = NULL;

	for (unsigned i = 0; i < dl->nwr; i++) {
		struct dl_ext *e = &dl->wr[i];

		if (off <= e->hi && hi >= e->lo) {
			e->lo = FL_MIN(e->lo, off);
			e->hi = FL_MAX(e->hi, hi);
			return;
		}
		if (small == NULL || e->hi - e->lo < small->hi - small->lo)
			small = e;
	}
	if (dl->nwr < DL_EXTENTS)
		small = &dl->wr[dl->nwr++];
	else if (small->hi - small->lo >= len)
		return;
	small->lo = off;
	small->hi = hi;
}

/*
 * After a sync: the large ranges it made durable leave the page cache.
 * wafl keeps the blocks it uses in its own cache, so a second copy here
 * mostly costs memory, and a page cache that only grows keeps taking
 * pages the system has not touched for a while (dear on a virtual
 * machine).  Small ranges -- a CP's few metadata blocks, partial stripes
 * that the next CP may read back -- stay.
 */
static void forget_synced(struct dl_dev *dl, const struct dl_ext *e,
    unsigned n)
{
	if (dl->inner->ops->forget == NULL)
		return;
	for (unsigned i = 0; i < n; i++) {
		if (e[i].hi - e[i].lo >= DL_FORGET_MIN)
			dl->inner->ops->forget(dl->inner, e[i].lo,
			    e[i].hi - e[i].lo);
	}
}

static void dl_free(struct dl_dev *dl)
{
	dl->inner->ops->close(dl->inner);
	pthread_mutex_destroy(&dl->mu);
	pthread_cond_destroy(&dl->work_cv);
	pthread_cond_destroy(&dl->done_cv);
	free(dl);
}

static void *worker_main(void *arg)
{
	struct dl_worker *w = arg;
	struct dl_dev *dl = w->dev;
	bool last;

	pthread_mutex_lock(&dl->mu);
	for (;;) {
		struct raid_dio *io;
		int err;

		while (dl->head == NULL && !dl->closing) {
			dl->nidle++;
			pthread_cond_wait(&dl->work_cv, &dl->mu);
			dl->nidle--;
		}
		io = dl->head;
		if (io == NULL)
			break;		/* closing, nothing queued */
		dl->head = io->next;
		if (dl->head == NULL)
			dl->tail = NULL;
		dl->nqueued--;
		if (io->state == DIO_ABANDONED || (io->detached &&
		    dl->closing)) {
			free(io);
			continue;
		}
		if (dl->closing) {
			io->result = -ECANCELED;
			io->state = DIO_DONE;
			pthread_cond_broadcast(&dl->done_cv);
			continue;
		}
		io->state = DIO_RUNNING;
		struct dl_ext synced[DL_EXTENTS];
		unsigned nsynced = 0;
		if (io->op == DIO_SYNC) {
			/* Every write noted so far completed before this
			 * sync began, so the sync covers it. */
			nsynced = dl->nwr;
			memcpy(synced, dl->wr, nsynced * sizeof(*synced));
			dl->nwr = 0;
		}
		pthread_mutex_unlock(&dl->mu);
		err = run_one(dl, w, io);
		pthread_mutex_lock(&dl->mu);
		if (io->op == DIO_WRITE && err == 0)
			note_written(dl, io->off, io->len);
		if (io->state == DIO_ABANDONED || io->detached) {
			free(io);	/* nobody will look at it */
			continue;
		}
		io->result = err;
		io->state = DIO_DONE;
		pthread_cond_broadcast(&dl->done_cv);
		if (err == 0 && nsynced > 0) {
			pthread_mutex_unlock(&dl->mu);
			forget_synced(dl, synced, nsynced);
			pthread_mutex_lock(&dl->mu);
		}
	}
	free(w->bounce);
	w->bounce = NULL;
	dl->nexited++;
	last = dl->orphaned && dl->nexited == dl->nworkers;
	pthread_cond_broadcast(&dl->done_cv);
	pthread_mutex_unlock(&dl->mu);
	if (last)
		dl_free(dl);
	return NULL;
}

/* Start one more worker; caller holds mu.  Returns 0 or -errno. */
static int spawn_locked(struct dl_dev *dl)
{
	struct dl_worker *w = &dl->w[dl->nworkers];
	int err;

	w->dev = dl;
	w->bounce = NULL;
	err = pthread_create(&w->tid, NULL, worker_main, w);
	if (err != 0)
		return -err;
	(void)pthread_setname_np(w->tid, "raid-io");
	dl->nworkers++;
	return 0;
}

/* ---- submit and wait ---------------------------------------------------- */

static size_t iov_total(const struct iovec *iov, int cnt)
{
	size_t t = 0;

	for (int i = 0; i < cnt; i++)
		t += iov[i].iov_len;
	return t;
}

/* Queue io on dl (ownership passes to the queue until done/abandoned). */
static int dl_queue(struct dl_dev *dl, struct raid_dio *io)
{
	int err = 0;

	io->dev = dl;
	io->state = DIO_QUEUED;
	io->next = NULL;
	pthread_mutex_lock(&dl->mu);
	if (dl->dead || dl->closing) {
		err = dl->dead ? -ETIMEDOUT : -ECANCELED;
		goto out;
	}
	io->deadline_ns = fl_now_mono_ns() +
	    (uint64_t)dl->timeout_ms * 1000000ull;
	if (dl->tail != NULL)
		dl->tail->next = io;
	else
		dl->head = io;
	dl->tail = io;
	dl->nqueued++;
	if (dl->nqueued > dl->nidle && dl->nworkers < DL_MAX_WORKERS)
		(void)spawn_locked(dl);	/* else the ones there serve it */
	pthread_cond_signal(&dl->work_cv);
out:
	pthread_mutex_unlock(&dl->mu);
	return err;
}

static struct raid_dio *dio_alloc(enum dio_op op, const struct iovec *iov,
    int cnt, uint64_t off)
{
	struct raid_dio *io = malloc(sizeof(*io) +
	    (size_t)cnt * sizeof(struct iovec));

	if (io == NULL)
		return NULL;
	memset(io, 0, sizeof(*io));
	io->op = op;
	io->off = off;
	io->cnt = cnt;
	if (cnt > 0) {
		memcpy(io->iov, iov, (size_t)cnt * sizeof(*iov));
		io->len = iov_total(iov, cnt);
	}
	return io;
}

int raid_dio_submit(struct raid_dev *d, bool write, unsigned rf,
    const struct iovec *iov, int cnt, uint64_t off, struct raid_dio **out)
{
	struct raid_dio *io;
	int err;

	*out = NULL;
	if (!write && d->ops == &dl_ops) {
		/* In memory already: no device, no wait, no copy. */
		struct raid_dev *in = to_dl(d)->inner;

		if (atomic_load_explicit(&to_dl(d)->dead_hint,
		    memory_order_relaxed))
			return -ETIMEDOUT;
		if (in->ops->try_preadv != NULL) {
			err = in->ops->try_preadv(in, iov, cnt, off, rf);
			if (err != -EAGAIN)
				return err;	/* done (*out NULL) or failed */
		}
	}
	io = dio_alloc(write ? DIO_WRITE : DIO_READ, iov, cnt, off);
	if (io == NULL)
		return -ENOMEM;
	io->rf = rf;
	if (d->ops != &dl_ops) {
		/* No workers: run it here, now. */
		io->result = write ? d->ops->pwritev(d, iov, cnt, off) :
		    d->ops->preadv(d, iov, cnt, off, rf);
		io->state = DIO_DONE;
		*out = io;
		return 0;
	}
	err = dl_queue(to_dl(d), io);
	if (err != 0) {
		free(io);
		return err;
	}
	*out = io;
	return 0;
}

int raid_dio_wait(struct raid_dio *io)
{
	struct dl_dev *dl;
	int err;

	if (io == NULL)
		return 0;	/* done in submit */
	dl = io->dev;
	if (dl == NULL) {
		err = io->result;
		free(io);
		return err;
	}
	pthread_mutex_lock(&dl->mu);
	while (io->state != DIO_DONE) {
		bool expired = fl_now_mono_ns() >= io->deadline_ns;
		struct timespec ts;

		if ((expired || dl->dead) && io->state != DIO_COPYING) {
			/* No answer: the worker frees io when it returns. */
			io->state = DIO_ABANDONED;
			if (!dl->dead) {
				dl->dead = true;
				atomic_store(&dl->dead_hint, true);
				pthread_cond_broadcast(&dl->done_cv);
			}
			pthread_mutex_unlock(&dl->mu);
			return -ETIMEDOUT;
		}
		if (expired) {
			io->late = true;	/* a copy runs: wait for it */
			pthread_cond_wait(&dl->done_cv, &dl->mu);
			continue;
		}
		abs_time(io->deadline_ns, &ts);
		(void)pthread_cond_timedwait(&dl->done_cv, &dl->mu, &ts);
	}
	err = io->result;
	pthread_mutex_unlock(&dl->mu);
	free(io);
	return err;
}

/* ---- the vtable ---------------------------------------------------------- */

static int dl_preadv(struct raid_dev *d, const struct iovec *iov, int cnt,
    uint64_t off, unsigned rf)
{
	struct raid_dio *io;
	int err = raid_dio_submit(d, false, rf, iov, cnt, off, &io);

	return err != 0 ? err : raid_dio_wait(io);
}

static int dl_pwritev(struct raid_dev *d, const struct iovec *iov, int cnt,
    uint64_t off)
{
	struct raid_dio *io;
	int err = raid_dio_submit(d, true, 0, iov, cnt, off, &io);

	return err != 0 ? err : raid_dio_wait(io);
}

static int dl_sync(struct raid_dev *d)
{
	struct raid_dio *io;
	int err = raid_dio_submit_sync(d, &io);

	return err != 0 ? err : raid_dio_wait(io);
}

int raid_dio_submit_sync(struct raid_dev *d, struct raid_dio **out)
{
	struct raid_dio *io;
	int err;

	*out = NULL;
	io = dio_alloc(DIO_SYNC, NULL, 0, 0);
	if (io == NULL)
		return -ENOMEM;
	if (d->ops != &dl_ops) {
		io->result = d->ops->sync(d);
		io->state = DIO_DONE;
		*out = io;
		return 0;
	}
	err = dl_queue(to_dl(d), io);
	if (err != 0) {
		free(io);
		return err;
	}
	*out = io;
	return 0;
}

/* Fire and forget; dropped when the disk is dead or busy. */
static void dl_prefetch(struct raid_dev *d, uint64_t off, uint64_t len)
{
	struct dl_dev *dl = to_dl(d);
	struct raid_dio *io;

	if (dl->inner->ops->prefetch == NULL)
		return;
	io = dio_alloc(DIO_PREFETCH, NULL, 0, off);
	if (io == NULL)
		return;
	io->len = len;
	io->detached = true;
	if (dl_queue(dl, io) != 0)
		free(io);
}

static void dl_abort(struct raid_dev *d)
{
	struct dl_dev *dl = to_dl(d);

	if (dl->inner->ops->abort != NULL)
		dl->inner->ops->abort(dl->inner);
}

static void dl_close(struct raid_dev *d)
{
	struct dl_dev *dl = to_dl(d);
	uint64_t until;
	unsigned left, nw;
	bool dead;

	pthread_mutex_lock(&dl->mu);
	dl->closing = true;
	pthread_cond_broadcast(&dl->work_cv);
	until = fl_now_mono_ns() + (uint64_t)(dl->dead ?
	    FL_MIN(dl->timeout_ms, DL_CLOSE_GRACE_MS) : dl->timeout_ms) *
	    1000000ull;
	pthread_mutex_unlock(&dl->mu);
	dl_abort(d);	/* release waits the inner device controls */

	pthread_mutex_lock(&dl->mu);
	while (dl->nexited < dl->nworkers && fl_now_mono_ns() < until) {
		struct timespec ts;

		abs_time(until, &ts);
		(void)pthread_cond_timedwait(&dl->done_cv, &dl->mu, &ts);
	}
	nw = dl->nworkers;
	left = nw - dl->nexited;
	dead = dl->dead;
	if (left > 0) {
		/* Stuck in the kernel: the last one out frees dl. */
		dl->orphaned = true;
		for (unsigned i = 0; i < nw; i++)
			pthread_detach(dl->w[i].tid);
	}
	pthread_mutex_unlock(&dl->mu);
	if (left > 0) {
		fl_warn(RAID_SUBSYS, "close: %u I/O thread(s) of a %s disk "
		    "still waiting for it; left behind", left,
		    dead ? "failed" : "slow");
		return;
	}
	for (unsigned i = 0; i < nw; i++)
		pthread_join(dl->w[i].tid, NULL);
	dl_free(dl);
}

static const struct raid_dev_ops dl_ops = {
	.preadv = dl_preadv,
	.pwritev = dl_pwritev,
	.sync = dl_sync,
	.close = dl_close,
	.prefetch = dl_prefetch,
	.abort = dl_abort,
};

int raid_dev_deadline_wrap(struct raid_dev *inner, uint32_t timeout_ms,
    struct raid_dev **out)
{
	struct dl_dev *dl = calloc(1, sizeof(*dl));
	pthread_condattr_t ca;
	int err;

	*out = NULL;
	if (dl == NULL)
		return -ENOMEM;
	dl->base.ops = &dl_ops;
	dl->base.size = inner->size;
	dl->base.is_blockdev = inner->is_blockdev;
	dl->base.file_dev = inner->file_dev;
	dl->base.file_ino = inner->file_ino;
	dl->base.fd = -1;
	dl->base.rfd = -1;
	dl->inner = inner;
	dl->timeout_ms = timeout_ms;
	pthread_mutex_init(&dl->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&dl->work_cv, NULL);
	pthread_cond_init(&dl->done_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_lock(&dl->mu);
	err = spawn_locked(dl);
	pthread_mutex_unlock(&dl->mu);
	if (err != 0) {
		dl->inner = NULL;
		pthread_mutex_destroy(&dl->mu);
		pthread_cond_destroy(&dl->work_cv);
		pthread_cond_destroy(&dl->done_cv);
		free(dl);
		return err;
	}
	*out = &dl->base;
	return 0;
}
