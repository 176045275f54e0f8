/*
 * raid/rebuild.c: background rebuild of a failed or missing position onto
 * a spare.
 *
 * The spare takes the position at once in the group's position table with
 * state REBUILDING: reads treat it as out (they reconstruct), writes send
 * it the blocks of stripes below the rebuild cursor.  The thread walks the
 * stripes in chunks of RAID_REBUILD_STRIPES under the chunk's range lock:
 * read N survivors, solve the position's blocks, write them to the spare,
 * advance the cursor.  Because the cursor only moves under a range lock,
 * every stripe is either rebuilt after the last write to it (it read the
 * new data) or written to the spare by the writer.
 *
 * Done: the spare is synced, its bitmap copy written, it becomes OK at the
 * position, the old disk leaves the group, and new labels (generation
 * bumped) are written everywhere; RAID_EV_REBUILD_DONE.  A crash before
 * that leaves the labels as they were: the spare is still a spare and the
 * rebuild starts again from stripe 0.  Failure (spare error, group offline,
 * close): the old disk gets its position back, RAID_EV_REBUILD_FAILED.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/raid_impl.h"

#define RAID_PREFETCH_CHUNKS	2
#define RAID_REBUILD_STRIPES	1024u	/* 4 MiB per disk per step */

/*
 * One chunk of the walk.  A chunk is range-locked from before its reads
 * start until its write to the spare has completed.
 */
struct rb_chunk {
	uint64_t c0;
	uint32_t cn;
	bool spare_lost;		/* the snapshot has another rb_disk */
	struct raid_range rr;
	struct raid_gsnap s;
	struct raid_batch b;		/* the reads, then the write */
	unsigned nin;
	unsigned rows_in[RAID_MAX_DATA];
};

/*
 * Under c's range lock: take the snapshot and start the reads of the
 * first N survivors (data before parity) into rbuf, source i at
 * rbuf + i * cn blocks.  0, or an error that ends the rebuild (nothing is
 * then in flight).
 */
static int chunk_start(raid_vol_t *v, struct rb_chunk *c,
    const struct raid_disk *spare, uint8_t *rbuf)
{
	const size_t stride = (size_t)c->cn * RAID_BLOCK_SIZE;
	unsigned up = 0;
	int err;

	raid_batch_init(&c->b);
	c->nin = 0;
	raid_gsnap_take(v, v->rb_group, &c->s);
	c->spare_lost = c->s.rb_disk != spare;
	if (c->spare_lost)
		return -EIO;	/* the spare failed */
	err = raid_group_check(v, v->rb_group, &c->s);
	if (err != 0)
		return err;
	for (unsigned pos = 0; pos < v->w; pos++)
		up += c->s.up[pos];
	if (up < v->n)
		return FL_ERR(-FL_EDEGRADED);
	for (unsigned pos = 0; pos < v->w && c->nin < v->n; pos++) {
		struct iovec iov;

		if (!c->s.up[pos])
			continue;
		iov.iov_base = rbuf + (size_t)c->nin * stride;
		iov.iov_len = stride;
		c->rows_in[c->nin++] = pos;
		(void)raid_batch_add(v, &c->b, c->s.d[pos], RAID_BOP_READ, &iov,
		    1, c->c0);
		if (pos >= v->n)
			CTR_ADD(v, parity_reads, c->cn);
	}
	return 0;
}

/*
 * Wait for c's reads (a survivor that failed meanwhile: again from the
 * ones left, still under the lock), solve the position into wbuf and start
 * its write to the spare.  0, or an error that ends the rebuild (nothing
 * of c is then in flight).
 */
static int chunk_write(raid_vol_t *v, struct rb_chunk *c,
    struct raid_disk *spare, uint8_t *rbuf, uint8_t *wbuf)
{
	const size_t stride = (size_t)c->cn * RAID_BLOCK_SIZE;
	const unsigned x = v->rb_pos;
	uint8_t *src[RAID_MAX_DATA];
	struct iovec iov = { wbuf, stride };
	int err = raid_batch_wait(v, &c->b);

	while (err == -EIO && !c->spare_lost) {
		if (atomic_load(&v->rb_cancel))
			return -ECANCELED;
		err = chunk_start(v, c, spare, rbuf);
		if (err == 0)
			err = raid_batch_wait(v, &c->b);
	}
	if (err != 0)
		return err;
	for (unsigned i = 0; i < v->n; i++)
		src[i] = rbuf + (size_t)i * stride;
	err = raid_code_solve(&v->code, c->rows_in, src, 1, &x, &wbuf,
	    stride);
	if (err != 0)
		return err;
	raid_batch_init(&c->b);
	(void)raid_batch_add(v, &c->b, spare, RAID_BOP_WRITE, &iov, 1, c->c0);
	return 0;
}

/*
 * Lock the chunk starting at *next and start its reads; on success *next
 * moves past it.  On error the chunk is unlocked again.
 */
static int chunk_lock_start(raid_vol_t *v, struct rb_chunk *c,
    const struct raid_disk *spare, uint8_t *rbuf, uint64_t *next)
{
	int err;

	c->c0 = *next;
	c->cn = (uint32_t)FL_MIN(v->disk_blocks - *next, RAID_REBUILD_STRIPES);
	raid_range_lock(v, &c->rr, v->rb_group, c->c0, c->c0 + c->cn);
	err = chunk_start(v, c, spare, rbuf);
	if (err != 0) {
		raid_range_unlock(v, &c->rr);
		return err;
	}
	/* Keep the chunks after it coming (read-ahead of real disks). */
	for (unsigned p = 0; p < v->w; p++)
		if (c->s.up[p])
			raid_disk_prefetch(v, c->s.d[p], c->c0 + c->cn,
			    RAID_PREFETCH_CHUNKS * RAID_REBUILD_STRIPES);
	*next += c->cn;
	return 0;
}

/*
 * One rebuild, of the position set up by pick_locked; returns its result.
 *
 * Pipelined three deep, so that every disk always has work queued: while
 * chunk i is solved and its write to the spare started, the survivors'
 * reads of chunk i+1 are already in flight, and the write of chunk i-1
 * is still completing.  Each chunk stays range-locked from before its
 * reads until its write has completed, and only then does the cursor
 * pass it (in order), so a writer still sees either "below the cursor:
 * write the spare too" after the rebuild's write, or "above: the rebuild
 * reads your data".  Chunks are locked in ascending order and writers
 * hold one range at a time, so the three locks cannot deadlock.
 */
static int rebuild_one(raid_vol_t *v)
{
	const unsigned g = v->rb_group, x = v->rb_pos;
	struct raid_disk *spare = &v->disks[v->rb_spare];
	struct raid_disk *old = &v->disks[v->rb_old_disk];
	uint8_t *rbuf[2] = {
		raid_balloc((size_t)v->n * RAID_REBUILD_STRIPES),
		raid_balloc((size_t)v->n * RAID_REBUILD_STRIPES) };
	uint8_t *wbuf[2] = { raid_balloc(RAID_REBUILD_STRIPES),
	    raid_balloc(RAID_REBUILD_STRIPES) };
	struct rb_chunk ck[3];
	enum { RB_IDLE, RB_READING, RB_WRITING } st[3] = { RB_IDLE, RB_IDLE,
	    RB_IDLE };
	uint64_t t0 = fl_now_mono_ns(), next = 0;
	int err = 0;

	if (rbuf[0] == NULL || rbuf[1] == NULL || wbuf[0] == NULL ||
	    wbuf[1] == NULL)
		err = -ENOMEM;
	/* Chunk i uses ck[i % 3], rbuf[i % 2] and wbuf[i % 2]. */
	if (err == 0)
		err = chunk_lock_start(v, &ck[0], spare, rbuf[0], &next);
	if (err == 0)
		st[0] = RB_READING;
	for (uint64_t i = 0; err == 0 && st[i % 3] == RB_READING; i++) {
		struct rb_chunk *r = &ck[i % 3], *w = &ck[(i + 2) % 3];

		if (atomic_load(&v->rb_cancel)) {
			err = -ECANCELED;
			break;
		}
		/* Chunk i + 1: lock it and start its reads. */
		if (next < v->disk_blocks) {
			err = chunk_lock_start(v, &ck[(i + 1) % 3], spare,
			    rbuf[(i + 1) % 2], &next);
			if (err != 0)
				break;
			st[(i + 1) % 3] = RB_READING;
		}
		/* Chunk i: solve it, start its write. */
		err = chunk_write(v, r, spare, rbuf[i % 2], wbuf[i % 2]);
		if (err != 0)
			break;
		st[i % 3] = RB_WRITING;
		/* Chunk i - 1: written, then passed. */
		if (st[(i + 2) % 3] == RB_WRITING) {
			err = raid_batch_wait(v, &w->b);
			if (err == 0)
				atomic_store(&v->rb_cursor, w->c0 + w->cn);
			st[(i + 2) % 3] = RB_IDLE;
			raid_range_unlock(v, &w->rr);
		}
	}
	/* Drain: whatever is still in flight, oldest first. */
	for (unsigned k = 0; k < 3; k++) {
		struct rb_chunk *c = NULL;

		for (unsigned j = 0; j < 3; j++)
			if (st[j] != RB_IDLE && (c == NULL ||
			    ck[j].c0 < c->c0))
				c = &ck[j];
		if (c == NULL)
			break;
		{
			int e = raid_batch_wait(v, &c->b);

			if (st[c - ck] == RB_WRITING && e == 0 && err == 0)
				atomic_store(&v->rb_cursor, c->c0 + c->cn);
			else if (err == 0)
				err = e != 0 ? e : -EIO;
		}
		st[c - ck] = RB_IDLE;
		raid_range_unlock(v, &c->rr);
	}
	if (err == 0) {
		err = spare->dev->ops->sync(spare->dev);
		if (err != 0 && err != -FL_ECRASHED)
			raid_disk_fail(v, (size_t)(spare - v->disks), err,
			    "sync error");
	}
	if (err == 0)
		err = raid_intent_write_disk(v, g, spare);

	pthread_mutex_lock(&v->state_lock);
	if (err == 0 && spare->state == RAID_DISK_REBUILDING) {
		spare->state = RAID_DISK_OK;
		spare->reason[0] = '\0';
		memcpy(v->groups[g].member_uuid[x], spare->uuid, 16);
		v->groups[g].member_state[x] = RAID_DISK_OK;
		v->groups[g].offline_reported = false;
		old->group = old->position = -1;
	} else {
		if (err == 0)
			err = -EIO;
		v->groups[g].pos[x] = v->rb_old_disk;
		if (spare->state == RAID_DISK_REBUILDING)
			spare->state = RAID_DISK_SPARE;
		spare->group = spare->position = -1;
	}
	pthread_mutex_unlock(&v->state_lock);

	if (err == 0) {
		double secs = (double)(fl_now_mono_ns() - t0) / 1e9;

		(void)raid_labels_write(v, true, false);
		fl_info(RAID_SUBSYS, "rebuild of group %u position %u onto %s "
		    "done: %llu blocks in %.2f s", g, x, spare->path,
		    (unsigned long long)v->disk_blocks, secs);
		raid_event(v, RAID_EV_REBUILD_DONE, "group %u position %u "
		    "rebuilt onto %s", g, x, spare->path);
	} else {
		fl_warn(RAID_SUBSYS, "rebuild of group %u position %u onto "
		    "%s failed: %s", g, x, spare->path, fl_strerror(err));
		raid_event(v, RAID_EV_REBUILD_FAILED, "group %u position %u: "
		    "%s", g, x, fl_strerror(err));
	}
	free(rbuf[0]);
	free(rbuf[1]);
	free(wbuf[0]);
	free(wbuf[1]);
	return err;
}

/*
 * Choose the first failed or missing position and the first spare, and
 * hand the position to the spare (REBUILDING).  Caller holds rb_lock and
 * state_lock.  -ENOENT: nothing to rebuild; -ENOSPC: no spare.
 */
static int pick_locked(raid_vol_t *v)
{
	int target = -1, spare = -1;
	unsigned tg = 0, tp = 0;
	struct raid_disk *sd;

	for (unsigned g = 0; g < v->ngroups && target < 0; g++)
		for (unsigned pos = 0; pos < v->w && target < 0; pos++) {
			int idx = v->groups[g].pos[pos];
			enum raid_disk_state st = v->disks[idx].state;

			if (st == RAID_DISK_FAILED || st == RAID_DISK_MISSING) {
				target = idx;
				tg = g;
				tp = pos;
			}
		}
	for (size_t i = 0; i < v->ndisks && spare < 0; i++)
		if (v->disks[i].state == RAID_DISK_SPARE &&
		    v->disks[i].dev != NULL)
			spare = (int)i;
	if (target < 0)
		return -ENOENT;
	if (spare < 0)
		return -ENOSPC;
	sd = &v->disks[spare];
	sd->state = RAID_DISK_REBUILDING;
	sd->group = (int)tg;
	sd->position = (int)tp;
	v->groups[tg].pos[tp] = spare;
	v->rb_group = tg;
	v->rb_pos = tp;
	v->rb_old_disk = target;
	v->rb_spare = spare;
	atomic_store(&v->rb_cursor, 0);
	atomic_store(&v->rb_total, v->disk_blocks);
	return 0;
}

static void announce_start(raid_vol_t *v)
{
	const struct raid_disk *old = &v->disks[v->rb_old_disk];
	const struct raid_disk *sp = &v->disks[v->rb_spare];

	fl_info(RAID_SUBSYS, "rebuild of group %u position %u (%s) onto spare "
	    "%s started", v->rb_group, v->rb_pos, old->path[0] ? old->path :
	    "(no path)", sp->path);
	raid_event(v, RAID_EV_REBUILD_STARTED, "group %u position %u onto %s",
	    v->rb_group, v->rb_pos, sp->path);
}

/*
 * The rebuild thread.  With auto_rebuild it goes on to the next failed
 * position (if a spare is left) without ever clearing rb_running in
 * between, so raid_rebuild_wait waits for the whole sequence and nobody
 * joins this thread while it still needs rb_lock.
 */
static void *rebuild_main(void *arg)
{
	raid_vol_t *v = arg;

	for (;;) {
		int err = rebuild_one(v), next = -ENOENT;

		pthread_mutex_lock(&v->rb_lock);
		v->rb_result = err;
		if (err == 0 && v->auto_rebuild && !atomic_load(&v->closing) &&
		    !atomic_load(&v->rb_cancel) && !raid_crashed(v)) {
			pthread_mutex_lock(&v->state_lock);
			next = pick_locked(v);
			pthread_mutex_unlock(&v->state_lock);
		}
		if (next == 0) {
			pthread_mutex_unlock(&v->rb_lock);
			announce_start(v);
			continue;
		}
		v->rb_running = false;
		pthread_cond_broadcast(&v->rb_cv);
		pthread_mutex_unlock(&v->rb_lock);
		return NULL;
	}
}

/*
 * Join a finished thread; caller holds rb_lock and rb_running is false.
 * The thread takes rb_lock for the last time before it clears rb_running,
 * so joining under the lock cannot wait on it.
 */
static void reap_locked(raid_vol_t *v)
{
	if (!v->rb_joinable)
		return;
	pthread_join(v->rb_thread, NULL);
	v->rb_joinable = false;
}

int raid_rebuild_start(raid_vol_t *v)
{
	int err;

	if (raid_crashed(v))
		return FL_ERR(-FL_ECRASHED);
	pthread_mutex_lock(&v->rb_lock);
	if (v->rb_running) {
		pthread_mutex_unlock(&v->rb_lock);
		return -EBUSY;
	}
	reap_locked(v);
	pthread_mutex_lock(&v->state_lock);
	err = pick_locked(v);
	pthread_mutex_unlock(&v->state_lock);
	if (err != 0) {
		pthread_mutex_unlock(&v->rb_lock);
		return err;
	}
	atomic_store(&v->rb_cancel, false);
	v->rb_running = true;
	v->rb_result = 0;
	err = -pthread_create(&v->rb_thread, NULL, rebuild_main, v);
	if (err == 0)
		(void)pthread_setname_np(v->rb_thread, "raid-rebuild");
	if (err != 0) {
		v->rb_running = false;
		pthread_mutex_lock(&v->state_lock);
		v->groups[v->rb_group].pos[v->rb_pos] = v->rb_old_disk;
		v->disks[v->rb_spare].state = RAID_DISK_SPARE;
		v->disks[v->rb_spare].group = -1;
		v->disks[v->rb_spare].position = -1;
		pthread_mutex_unlock(&v->state_lock);
		pthread_mutex_unlock(&v->rb_lock);
		return err;
	}
	v->rb_joinable = true;
	pthread_mutex_unlock(&v->rb_lock);
	announce_start(v);
	return 0;
}

int raid_rebuild_wait(raid_vol_t *v)
{
	int res;

	pthread_mutex_lock(&v->rb_lock);
	while (v->rb_running)
		pthread_cond_wait(&v->rb_cv, &v->rb_lock);
	res = v->rb_result;
	reap_locked(v);
	pthread_mutex_unlock(&v->rb_lock);
	return res;
}

void raid_rebuild_stop(raid_vol_t *v)
{
	atomic_store(&v->rb_cancel, true);
	(void)raid_rebuild_wait(v);
}

void raid_rebuild_maybe_auto(raid_vol_t *v)
{
	if (!v->auto_rebuild || v->closing || raid_crashed(v))
		return;
	(void)raid_rebuild_start(v);
}
