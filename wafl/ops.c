/*
 * wafl/ops.c: the operation layer's common machinery — transactions
 * (cp_lock, NVLOG reservation, commit and wait), object references,
 * permissions, attributes, inode claim and release.
 *
 * THEORY
 *   An operation changes memory only (wnodes and their dirty buffers), under
 *   cp_lock held shared so that a CP freeze sees either none or all of it.
 *   Before it returns, a record holding every choice it made is in the
 *   NVLOG and durable (W7): the record is committed while the operation
 *   still holds its wnode locks, so two operations on the same object are
 *   in the log in the order they were applied, and replay in LSN order
 *   rebuilds the same state.  cp_lock is held from the reservation to the
 *   commit, so a record always belongs to the generation (v->open_gen) whose
 *   CP carries its changes; the CP switches log halves under the exclusive
 *   lock, with no reservation outstanding.
 *
 *   Operations that fail change nothing that survives (they undo what they
 *   did, e.g. an inode claimed for a CREATE whose directory insert failed,
 *   before dropping their locks) and log nothing.  If the log append itself
 *   fails after memory was changed, the volume is marked failed: it refuses
 *   writes and CPs until it is reopened, so the unlogged change never
 *   reaches the disk and durability is never claimed (STYLE.md 10).
 *
 *   Reads take cp_lock shared and the wnode's lock shared; they change
 *   nothing (no atime updates: the volume behaves as mounted noatime, so
 *   reads never log).
 *
 * SPACE
 *   An operation that adds blocks needs alloc_free_estimate() minus the
 *   dirty buffers (each needs a new block at the next CP) to stay above a
 *   reserve (1% of the volume, at least 256 blocks) by what it may dirty;
 *   otherwise -ENOSPC.  Removes and truncates never check: they live on the
 *   reserve, which also covers the metadata a CP itself writes.  Blocks
 *   freed by CPs stay pending until the CP ring moves past them (W3), so an
 *   operation short of space first runs a few CPs to move the ring.
 *
 * PERMISSIONS
 *   mode bits of owner / group (gid or any supplementary group) / other;
 *   uid 0 may do anything except execute a file with no x bit.  nfsd maps
 *   squashed credentials before calling.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "wafl/ops.h"

/* --------------------------------------------------------- transactions */

#define OPS_RETRIES	16

static uint64_t space_reserve(const struct wafl_vol *v)
{
	uint64_t r = v->nvbns / 100;

	return r < 256 ? 256 : r;
}

static bool space_ok(struct wafl_vol *v, uint64_t need)
{
	uint64_t est, dirty;

	if (need == 0)
		return true;
	est = alloc_free_estimate(v);
	dirty = __atomic_load_n(&v->ndirty_bufs, __ATOMIC_RELAXED);
	return est >= dirty + space_reserve(v) + need;
}

/*
 * Make the next CP happen even with nothing dirty, so the ring of retained
 * roots moves and pending frees become allocatable (W3): the root
 * directory's inode is rewritten unchanged (nothing to log).
 */
static void ring_nudge(struct wafl_vol *v)
{
	struct wnode *wn;

	pthread_rwlock_rdlock(&v->cp_lock);
	if (wnode_get(v, WAFL_INO_ROOTDIR, &wn) == 0) {
		wnode_dirty(wn);
		wnode_put(wn);
	}
	pthread_rwlock_unlock(&v->cp_lock);
}

void ops_fail(struct wafl_vol *v, int why)
{
	if (!__atomic_exchange_n(&v->failed, true, __ATOMIC_ACQ_REL))
		fl_err("wafl", "NVLOG append or flush failed (%s): volume "
		    "refuses writes until it is reopened", fl_strerror(why));
}

/*
 * Back-pressure on dirty memory and the NVLOG, applied after an operation
 * dropped every lock it held (its wnode locks, then cp_lock in
 * ops_tx_end) or before it took any (ops_tx_begin), so the CP it waits
 * for can freeze.  Over dirty_max, or with the log's current half more
 * than half full, the CP thread is asked for a CP, which overlaps with the
 * writers: the freeze empties the dirty set and switches log halves at
 * once, and the write-out runs without the volume lock.  While that CP is
 * being written the next one cannot start, so when writers are faster
 * than the disks the pressure keeps growing; they are then slowed before
 * they hit the wall, in proportion to how close they are to it (the shape
 * of ZFS's dmu_tx_delay): with p the larger of (dirty - max) / max and
 * (fill - 1/2) / (1/2), each operation takes at least THROTTLE_DELAY_US x
 * p / (1 - p) from its start, at most THROTTLE_DELAY_MAX_US.  Over
 * dirty_max, as in ZFS, the wake-ups of concurrent operations are spaced
 * by that time (throttle_last_ns) rather than all ending together, so the
 * operation rate, not each thread's, is what the delay sets, and writers
 * settle at the rate the CPs write, at a lower p, instead of all stopping
 * for a whole CP.  With only the log's half filling (many small records),
 * each operation waits its own delay: spacing small operations would cap
 * their rate far below what the log takes.  At the wall -- dirty over
 * twice dirty_max, or no room left in the log half -- an operation waits
 * for the next freeze, so dirty memory stays bounded by about 2 x
 * dirty_max plus what the operations in flight add.  Every wait ends at
 * the next freeze (cp_run wakes cp_cond after it); a wait at the wall
 * also ends once the dirty total is back under the wall (freeze_wait),
 * asks for a CP again every THROTTLE_WAIT_MS, and ends when the CP thread
 * stops or the volume failed (writes then get EROFS).  Without a CP
 * thread (mount-time replay, tests) the writer runs the CP itself.
 */
#define THROTTLE_WAIT_MS	100
#define THROTTLE_DELAY_US	2000
#define THROTTLE_DELAY_MAX_US	100000
/* A throttle delay this long or longer releases a batch (batch_release):
 * a shorter one holds its replies and flushes for less than a flush. */
#define THROTTLE_RELEASE_US	1000

static uint64_t dirty_bytes(struct wafl_vol *v)
{
	return __atomic_load_n(&v->ndirty_bufs, __ATOMIC_RELAXED) *
	    WAFL_BLOCK_SIZE;
}

static uint64_t open_gen(struct wafl_vol *v)
{
	return __atomic_load_n(&v->open_gen, __ATOMIC_ACQUIRE);
}

/*
 * Wait until a CP froze generation gen (open_gen moved on), or, if
 * wall != 0, the dirty total is at most wall, or, if us != 0, us
 * microseconds passed.  The caller asked for a CP already and holds no
 * lock.
 *
 * The wall matters: a writer reads the dirty total and then the
 * generation, and a CP may freeze in between (its freeze also holds the
 * log's mutex, which nvlog_fill takes).  Such a writer waits for the
 * generation after the one that took its data, and if nothing else is
 * dirty no CP will freeze it: its reply would wait for an unrelated
 * operation.  Looking at the dirty total on every round ends that wait.
 */
static void freeze_wait(struct wafl_vol *v, uint64_t gen, uint64_t wall,
    uint64_t us)
{
	struct timespec end;

	if (us != 0)
		fl_deadline_ts(&end, us);
	pthread_mutex_lock(&v->cp_mutex);
	while (open_gen(v) == gen && !v->cp_stop &&
	    !(wall != 0 && dirty_bytes(v) <= wall) &&
	    !__atomic_load_n(&v->failed, __ATOMIC_ACQUIRE)) {
		struct timespec ts;
		if (us != 0)
			ts = end;
		else
			fl_deadline_ts(&ts, THROTTLE_WAIT_MS * 1000);
		if (pthread_cond_timedwait(&v->cp_cond, &v->cp_mutex, &ts) !=
		    ETIMEDOUT)
			continue;
		if (us != 0)
			break;
		v->cp_requested = true;	/* a round without a freeze */
		pthread_cond_broadcast(&v->cp_cond);
	}
	pthread_mutex_unlock(&v->cp_mutex);
}

/*
 * wafl_durable_batch_begin: the volumes whose flush this thread owes
 * (nvlog_when_durable_later), kicked by wafl_durable_batch_end, and the
 * caller's hook for what it holds back.  Before the thread waits here
 * (throttle, a freeze, a CP it runs) it releases both (batch_release), so
 * nothing it holds waits out that wait.
 */
#define DBATCH_VOLS	4
static __thread struct {
	bool on;
	unsigned n;
	struct wafl_vol *v[DBATCH_VOLS];
	void (*release)(void *);
	void *arg;
} dbatch;

/* Called with no lock held: the hook, then the flushes owed. */
static void batch_release(void)
{
	unsigned n = dbatch.n;

	if (!dbatch.on)
		return;
	if (dbatch.release != NULL)
		dbatch.release(dbatch.arg);
	dbatch.n = 0;
	for (unsigned i = 0; i < n; i++)
		nvlog_kick(dbatch.v[i]->log);
}

static void throttle(struct wafl_vol *v, uint64_t start_ns)
{
	uint64_t dirty = dirty_bytes(v);
	uint64_t max = v->opts.dirty_max_bytes;
	double fill = v->log != NULL ? nvlog_fill(v->log) : 0.0;

	if (dirty <= max && fill <= 0.5)
		return;
	if (!v->cp_running_thread) {
		batch_release();
		(void)cp_run(v);	/* errors latch in the volume */
		return;
	}
	uint64_t gen = open_gen(v);
	cp_request(v);
	if (dirty > 2 * max) {
		batch_release();
		freeze_wait(v, gen, 2 * max, 0);
		return;
	}
	double p = dirty > max ? (double)(dirty - max) / (double)max : 0.0;
	if ((fill - 0.5) * 2.0 > p)
		p = (fill - 0.5) * 2.0;
	double us = p >= 1.0 ? THROTTLE_DELAY_MAX_US :
	    THROTTLE_DELAY_US * p / (1.0 - p);
	if (us > THROTTLE_DELAY_MAX_US)
		us = THROTTLE_DELAY_MAX_US;
	if (us < 1.0)
		return;
	uint64_t d = (uint64_t)us * 1000;
	if (dirty <= max) {
		/* The log's fill alone (small records, many of them): each
		 * operation waits its own delay. */
		if (us >= THROTTLE_RELEASE_US)
			batch_release();
		freeze_wait(v, gen, 0, d / 1000);
		return;
	}
	/* Dirty data: the delay counts from the operation's start, and
	 * wake-ups are spaced by it across threads (throttle_last_ns). */
	uint64_t now = fl_now_mono_ns();
	if (now >= start_ns + d)
		return;
	pthread_mutex_lock(&v->cp_mutex);
	uint64_t wake = FL_MAX(start_ns + d, v->throttle_last_ns + d);
	wake = FL_MIN(wake, now + (uint64_t)THROTTLE_DELAY_MAX_US * 1000);
	v->throttle_last_ns = wake;
	pthread_mutex_unlock(&v->cp_mutex);
	if (wake <= now)
		return;
	if (wake - now >= (uint64_t)THROTTLE_RELEASE_US * 1000)
		batch_release();
	freeze_wait(v, gen, 0, (wake - now + 999) / 1000);
}

int ops_tx_begin(struct wafl_vol *v, uint32_t max_payload,
    uint64_t need_blocks, struct ops_tx *tx)
{
	int rc = 0;

	memset(tx, 0, sizeof(*tx));
	tx->v = v;
	tx->start_ns = fl_now_mono_ns();
	bool yielded = false;

	for (int tries = 0;; tries++) {
		if (v->readonly || __atomic_load_n(&v->failed, __ATOMIC_ACQUIRE))
			return -EROFS;
		if (v->log == NULL)
			return -EROFS;	/* mounted without a log */
		pthread_rwlock_rdlock(&v->cp_lock);
		if (!space_ok(v, need_blocks)) {
			pthread_rwlock_unlock(&v->cp_lock);
			/* Pending frees leave only as the CP ring moves, and
			 * once an online check gives back its pins. */
			if (tries >= (int)WAFL_RING_K + 1 && !yielded &&
			    v->npending > 0) {
				batch_release();
				yielded = true;
				if (check_yield_space(v, need_blocks)) {
					tries = 0;
					continue;
				}
			}
			if (tries >= (int)WAFL_RING_K + 1 || v->npending == 0)
				return FL_ERR(-ENOSPC);
			ring_nudge(v);
			batch_release();
			rc = cp_run(v);
			if (rc != 0)
				return rc == -EROFS ? rc : -EIO;
			continue;
		}
		rc = nvlog_reserve(v->log, max_payload, &tx->resv);
		if (rc == 0) {
			tx->reserved = true;
			return 0;
		}
		uint64_t gen = v->open_gen;
		pthread_rwlock_unlock(&v->cp_lock);
		if (rc != -EAGAIN) {
			if (rc == -EIO || nvlog_failed(v->log))
				ops_fail(v, rc);
			return rc == -EINVAL ? rc : -EIO;
		}
		if (tries >= OPS_RETRIES)
			return -EAGAIN;
		/* The half is full: a CP switches halves.  The CP thread's,
		 * when it runs: wait for its freeze (back-pressure above). */
		batch_release();
		if (v->cp_running_thread) {
			cp_request(v);
			freeze_wait(v, gen, 0, 0);
			continue;
		}
		rc = cp_run(v);
		if (rc != 0)
			return rc == -EROFS ? rc : -EIO;
	}
}

int ops_tx_commit(struct ops_tx *tx, uint16_t type, const struct iovec *iov,
    int iovcnt)
{
	struct wafl_vol *v = tx->v;
	int rc;

	VERIFY(tx->reserved);
	tx->reserved = false;
	rc = nvlog_commit(v->log, &tx->resv, v->open_gen, type, iov, iovcnt,
	    &tx->lsn);
	if (rc != 0) {
		/* Memory holds a change the log does not: never let a CP
		 * write it, never claim it. */
		ops_fail(v, rc);
		return -EIO;
	}
	tx->logged = true;
	return 0;
}

/*
 * Deferred durability (wafl_defer_begin): the thread's operations record
 * the LSN their reply must wait for instead of waiting.  One volume per
 * deferral: an operation on another volume waits as usual.
 */
static __thread struct {
	bool on;
	struct wafl_vol *v;
	uint64_t lsn;
} defer;

void wafl_defer_begin(void)
{
	defer.on = true;
	defer.v = NULL;
	defer.lsn = 0;
}

wafl_vol_t *wafl_defer_end(uint64_t *lsn)
{
	struct wafl_vol *v = defer.lsn != 0 ? defer.v : NULL;

	*lsn = v != NULL ? defer.lsn : 0;
	defer.on = false;
	defer.v = NULL;
	defer.lsn = 0;
	return v;
}

/* Block until lsn is durable; a log that fails fails the volume. */
static int wait_durable(struct wafl_vol *v, uint64_t lsn)
{
	int w = nvlog_wait(v->log, lsn);

	if (w != 0) {
		ops_fail(v, w);
		return -EIO;
	}
	return 0;
}

struct durable_cb {
	struct wafl_vol *v;
	wafl_durable_fn *fn;
	void *arg;
};

static void durable_done(void *arg, int err, bool last)
{
	struct durable_cb cb = *(struct durable_cb *)arg;

	free(arg);
	if (err != 0) {
		ops_fail(cb.v, err);
		err = -EIO;
	}
	cb.fn(cb.arg, err, last);
}


void wafl_when_durable(wafl_vol_t *v, uint64_t lsn, wafl_durable_fn *fn,
    void *arg)
{
	struct durable_cb *cb = malloc(sizeof(*cb));
	unsigned i;

	if (cb == NULL) {
		fn(arg, wait_durable(v, lsn), true);	/* durability first */
		return;
	}
	*cb = (struct durable_cb){ v, fn, arg };
	for (i = 0; i < dbatch.n && dbatch.v[i] != v; i++)
		;
	if (!dbatch.on || (i == dbatch.n && i == DBATCH_VOLS)) {
		nvlog_when_durable(v->log, lsn, durable_done, cb);
		return;
	}
	if (nvlog_when_durable_later(v->log, lsn, durable_done, cb) &&
	    i == dbatch.n)
		dbatch.v[dbatch.n++] = v;
}

void wafl_durable_batch_begin(void (*release)(void *), void *arg)
{
	dbatch.on = true;
	dbatch.n = 0;
	dbatch.release = release;
	dbatch.arg = arg;
}

void wafl_durable_batch_end(void)
{
	unsigned n = dbatch.n;

	dbatch.on = false;
	dbatch.n = 0;
	for (unsigned i = 0; i < n; i++)
		nvlog_kick(dbatch.v[i]->log);
}

int ops_wait_lsn(struct wafl_vol *v, uint64_t lsn)
{
	if (defer.on && (defer.v == NULL || defer.v == v)) {
		defer.v = v;
		if (lsn > defer.lsn)
			defer.lsn = lsn;
		return 0;
	}
	return wait_durable(v, lsn);
}

#define WRLOCK_POLL_US	1000u	/* how often a queued writer looks */

/*
 * Writers of one file queue on its lock holding cp_lock shared, each for
 * as long as it copies its data in (about half a millisecond for 1 MiB).
 * A CP asking for cp_lock exclusive then waits for all of them, one after
 * the other (5-10 ms seen under sequential NFS writes), and every other
 * operation waits behind the CP.  A writer that finds the lock busy while
 * a CP (or anyone) waits for cp_lock exclusive steps out instead: it gives
 * its transaction back (nothing is changed or logged yet) and begins
 * again, which waits until the exclusive holder is through.
 */
int ops_tx_wrlock(struct ops_tx *tx, struct wnode *wn, uint32_t max_payload,
    uint64_t need_blocks)
{
	struct wafl_vol *v = tx->v;

	for (;;) {
		struct timespec ts;
		int rc;

		if (pthread_rwlock_trywrlock(&wn->lock) == 0)
			return 0;
		while (__atomic_load_n(&v->cp_wanted, __ATOMIC_ACQUIRE) == 0) {
			fl_deadline_ts(&ts, WRLOCK_POLL_US);
			if (pthread_rwlock_timedwrlock(&wn->lock, &ts) == 0)
				return 0;
		}
		uint64_t start = tx->start_ns;
		(void)ops_tx_end(tx, 0, false);	/* nothing done yet */
		batch_release();
		/* cp_lock prefers writers: begin blocks until the one
		 * waiting is through (yield: it may not be queued yet). */
		sched_yield();
		rc = ops_tx_begin(v, max_payload, need_blocks, tx);
		if (rc != 0)
			return rc;
		tx->start_ns = start;
	}
}

int ops_tx_end(struct ops_tx *tx, int rc, bool wait)
{
	struct wafl_vol *v = tx->v;

	if (tx->reserved) {
		nvlog_unreserve(v->log, &tx->resv);
		tx->reserved = false;
	}
	pthread_rwlock_unlock(&v->cp_lock);
	if (tx->logged && wait && ops_wait_lsn(v, tx->lsn) != 0 && rc == 0)
		rc = -EIO;
	if (tx->logged || tx->changed) {
		ops_count(v, fl_now_mono_ns() - tx->start_ns);
		throttle(v, tx->start_ns);
	}
	return rc;
}

void ops_count(struct wafl_vol *v, uint64_t ns)
{
	pthread_mutex_lock(&v->stats_lock);
	v->stats.ops++;
	v->stats.op_ns_total += ns;
	if (ns > v->stats.op_ns_max)
		v->stats.op_ns_max = ns;
	pthread_mutex_unlock(&v->stats_lock);
}

/* ------------------------------------------------------------- objects */

int ops_obj_get(struct wafl_vol *v, const struct wafl_obj *o, bool for_write,
    struct wnode **out)
{
	*out = NULL;
	if (o == NULL)
		return FL_ERR(-EINVAL);
	if (o->snap != 0)
		return for_write ? -EROFS : -ESTALE;
	if (o->ino != WAFL_INO_ROOTDIR && (o->ino < WAFL_INO_FIRST_USER ||
	    o->ino >= (1ull << 40)))
		return -ESTALE;
	return wnode_get(v, o->ino, out);
}

int ops_live(const struct wnode *wn, uint32_t gen)
{
	/* nlink 0: an orphan (orphan.c), dead to every handle. */
	if (wn->di.mode == 0 || wn->di.gen != gen || wn->di.nlink == 0)
		return -ESTALE;
	return 0;
}

int ops_entry_ino_check(uint64_t dir, const char *name, uint64_t ino)
{
	if (ino >= WAFL_INO_FIRST_USER && ino < WAFL_INO_LIMIT)
		return 0;
	fl_err("wafl", "W8: directory %llu: entry '%s' names inode %llu, "
	    "which no entry may name", (unsigned long long)dir, name,
	    (unsigned long long)ino);
	return FL_ERR(-FL_ECORRUPT);
}

int ops_name_check(const char *name, size_t *len)
{
	if (name == NULL || name[0] == '\0')
		return FL_ERR(-EINVAL);
	size_t n = strnlen(name, WAFL_NAME_MAX + 1);
	if (n > WAFL_NAME_MAX)
		return -ENAMETOOLONG;
	if (memchr(name, '/', n) != NULL)
		return FL_ERR(-EINVAL);
	*len = n;
	return 0;
}

bool ops_is_dot(const char *name)
{
	return name != NULL && strcmp(name, ".") == 0;
}

bool ops_is_dotdot(const char *name)
{
	return name != NULL && strcmp(name, "..") == 0;
}

/* ---------------------------------------------------------- permission */

bool ops_cred_in_group(const struct wafl_cred *c, uint32_t gid)
{
	if (c->gid == gid)
		return true;
	uint32_t n = c->ngroups > 16 ? 16 : c->ngroups;
	for (uint32_t i = 0; i < n; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}

bool ops_may(const struct wafl_dinode *di, const struct wafl_cred *c,
    unsigned want)
{
	unsigned bits;

	if (c == NULL)
		return true;	/* internal caller */
	if (c->uid == 0) {
		if ((want & OPS_MAY_X) && !S_ISDIR(di->mode) &&
		    (di->mode & 0111) == 0)
			return false;
		return true;
	}
	if (c->uid == di->uid)
		bits = (di->mode >> 6) & 7;
	else if (ops_cred_in_group(c, di->gid))
		bits = (di->mode >> 3) & 7;
	else
		bits = di->mode & 7;
	return (bits & want) == want;
}

/* ---------------------------------------------------------- attributes */

enum wafl_type ops_type_of(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR:	return WAFL_DIR;
	case S_IFBLK:	return WAFL_BLK;
	case S_IFCHR:	return WAFL_CHR;
	case S_IFLNK:	return WAFL_LNK;
	case S_IFSOCK:	return WAFL_SOCK;
	case S_IFIFO:	return WAFL_FIFO;
	default:	return WAFL_REG;
	}
}

uint32_t ops_ifmt_of(enum wafl_type t)
{
	switch (t) {
	case WAFL_REG:	return S_IFREG;
	case WAFL_DIR:	return S_IFDIR;
	case WAFL_BLK:	return S_IFBLK;
	case WAFL_CHR:	return S_IFCHR;
	case WAFL_LNK:	return S_IFLNK;
	case WAFL_SOCK:	return S_IFSOCK;
	case WAFL_FIFO:	return S_IFIFO;
	}
	return 0;
}

void ops_fill_attr(const struct wafl_vol *v, const struct wnode *wn,
    struct wafl_attr *a)
{
	const struct wafl_dinode *di = &wn->di;

	if (a == NULL)
		return;
	memset(a, 0, sizeof(*a));
	a->type = ops_type_of(di->mode);
	a->mode = di->mode & 07777;
	a->nlink = di->nlink;
	a->uid = di->uid;
	a->gid = di->gid;
	a->size = di->size;
	a->used = di->blocks * WAFL_BLOCK_SIZE;
	a->rdev_major = di->rdev_major;
	a->rdev_minor = di->rdev_minor;
	a->fsid = v->fsi.fsid;
	a->fileid = wn->ino;
	a->atime_ns = di->atime_ns;
	a->mtime_ns = di->mtime_ns;
	a->ctime_ns = di->ctime_ns;
	a->gen = di->gen;
}

void ops_fill_wcc(const struct wnode *wn, struct wafl_wcc *w)
{
	if (w == NULL)
		return;
	w->valid = true;
	w->size = wn->di.size;
	w->mtime_ns = wn->di.mtime_ns;
	w->ctime_ns = wn->di.ctime_ns;
}

/* ------------------------------------------------------- inode numbers */

int ops_ialloc_forced(struct wafl_vol *v, uint64_t ino, uint32_t gen)
{
	struct wnode *wn = NULL;
	int rc;

	if (ino < WAFL_INO_FIRST_USER || ino >= (1ull << 40) || gen == 0)
		return FL_ERR(-FL_ECORRUPT);
	pthread_mutex_lock(&v->ialloc_lock);
	rc = wnode_get(v, ino, &wn);
	if (rc != 0)
		goto out;
	if (wn->di.mode != 0) {
		fl_err("wafl", "replay: inode %llu is in use",
		    (unsigned long long)ino);
		rc = FL_ERR(-FL_ECORRUPT);
		goto out;
	}
	/* The same fields ialloc sets, with the recorded generation. */
	memset(&wn->di, 0, sizeof(wn->di));
	wn->di.gen = gen;
	wn->di.ino = ino;
	wn->di.mode = S_IFREG;
	wnode_dirty(wn);
	v->inodes_used++;
	if (ino >= v->next_ino)
		v->next_ino = ino + 1;
	for (uint32_t i = 0; i < v->nfree_inos; i++) {
		if (v->free_inos[i] == ino) {
			v->free_inos[i] = v->free_inos[--v->nfree_inos];
			break;
		}
	}
out:
	if (wn != NULL)
		wnode_put(wn);
	pthread_mutex_unlock(&v->ialloc_lock);
	return rc;
}

void ops_inode_free(struct wnode *wn)
{
	struct wafl_vol *v = wn->vol;
	int rc = 0;

	if (!(wn->di.flags & WAFL_INO_INLINE))
		rc = wn_truncate_blocks(wn, 0);
	if (rc != 0) {
		/* What it still holds is what it could not read: kept by the
		 * inode, freed by a later retry (orphan.c). */
		wn->di.nlink = 0;
		wnode_dirty(wn);
		if (orphan_add(v, wn->ino)) {
			fl_err("wafl", "inode %llu: freeing its blocks failed "
			    "(%s); %llu blocks stay with it as an orphan "
			    "until a retry frees them",
			    (unsigned long long)wn->ino, fl_strerror(rc),
			    (unsigned long long)wn->di.blocks);
			return;
		}
		fl_err("wafl", "inode %llu: freeing its blocks failed (%s) "
		    "and the orphan list is full (%u); %llu blocks stay "
		    "allocated", (unsigned long long)wn->ino, fl_strerror(rc),
		    WAFL_ORPHAN_MAX, (unsigned long long)wn->di.blocks);
	}
	ops_inode_wipe(wn);
	ifree_note(v, wn->ino);
}

void ops_inode_wipe(struct wnode *wn)
{
	uint32_t gen = wn->di.gen;

	memset(&wn->di, 0, sizeof(wn->di));
	wn->di.gen = gen;
	wn->di.ino = wn->ino;
	wnode_dirty(wn);
}

/* --------------------------------------------------------------- locks */

static bool seen_before(struct wnode *const *wns, int i)
{
	for (int j = 0; j < i; j++)
		if (wns[j] == wns[i])
			return true;
	return false;
}

void ops_wrlock(struct wnode *const *wns, int n)
{
	for (int i = 0; i < n; i++)
		if (wns[i] != NULL && !seen_before(wns, i))
			pthread_rwlock_wrlock(&wns[i]->lock);
}

void ops_unlock(struct wnode *const *wns, int n)
{
	for (int i = n - 1; i >= 0; i--)
		if (wns[i] != NULL && !seen_before(wns, i))
			pthread_rwlock_unlock(&wns[i]->lock);
}

void ops_put(struct wnode *const *wns, int n)
{
	for (int i = 0; i < n; i++)
		if (wns[i] != NULL)
			wnode_put(wns[i]);
}
