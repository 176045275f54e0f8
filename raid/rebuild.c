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
 * One rebuild, of the position set up by pick_locked; returns its result.
 *
 * Pipelined: the spare's write of chunk c is in flight while the survivors
 * of chunk c+1 are read.  Chunk c stays range-locked until its write has
 * completed, and only then does the cursor pass it, so a writer still sees
 * either "below the cursor: write the spare too" after the rebuild's write,
 * or "above: the rebuild reads your data".
 */
static int rebuild_one(raid_vol_t *v)
{
	const unsigned g = v->rb_group, x = v->rb_pos;
	const size_t B = RAID_BLOCK_SIZE;
	struct raid_disk *spare = &v->disks[v->rb_spare];
	struct raid_disk *old = &v->disks[v->rb_old_disk];
	uint8_t *buf = raid_balloc((size_t)v->w * RAID_REBUILD_STRIPES);
	uint8_t *wbuf[2] = { raid_balloc(RAID_REBUILD_STRIPES),
	    raid_balloc(RAID_REBUILD_STRIPES) };
	bool want[RAID_MAX_WIDTH] = { false }, pending = false;
	struct raid_range rr[2];
	struct raid_batch wb[2];
	uint64_t t0 = fl_now_mono_ns(), pend_end = 0;
	unsigned k = 0;
	int err = 0;

	want[x] = true;
	if (buf == NULL || wbuf[0] == NULL || wbuf[1] == NULL)
		err = -ENOMEM;
	for (uint64_t c0 = 0; err == 0 && c0 < v->disk_blocks;) {
		uint32_t cn = (uint32_t)FL_MIN(v->disk_blocks - c0,
		    RAID_REBUILD_STRIPES);
		struct raid_gsnap s;
		bool submitted = false;

		if (atomic_load(&v->rb_cancel)) {
			err = -ECANCELED;
			break;
		}
		raid_range_lock(v, &rr[k], g, c0, c0 + cn);
		raid_gsnap_take(v, g, &s);
		/* Keep the next chunks of every source in flight. */
		for (unsigned p = 0; p < v->w; p++)
			if (s.up[p])
				raid_disk_prefetch(v, s.d[p], c0 + cn,
				    RAID_PREFETCH_CHUNKS *
				    RAID_REBUILD_STRIPES);
		if (s.rb_disk != spare) {
			err = -EIO;	/* the spare failed */
		} else if ((err = raid_group_check(v, g, &s)) == 0) {
			err = raid_read_stripes_dm(v, g, &s, c0, cn, want, buf,
			    NULL);
			if (err == 0) {
				struct iovec iov = { wbuf[k], cn * B };

				memcpy(wbuf[k], buf + (size_t)x * cn * B,
				    cn * B);
				raid_batch_init(&wb[k]);
				(void)raid_batch_add(v, &wb[k], spare,
				    RAID_BOP_WRITE, &iov, 1, c0);
				submitted = true;
			} else if (err == -EIO) {
				err = 0;	/* a survivor failed: again */
			}
		}
		if (pending) {
			/* The previous chunk: written, then passed. */
			int e = raid_batch_wait(v, &wb[k ^ 1]);

			if (e == 0)
				atomic_store(&v->rb_cursor, pend_end);
			else if (err == 0)
				err = e;
			raid_range_unlock(v, &rr[k ^ 1]);
			pending = false;
		}
		if (submitted) {
			pending = true;
			pend_end = c0 + cn;
			c0 += cn;
			k ^= 1;
		} else {
			raid_range_unlock(v, &rr[k]);
		}
	}
	if (pending) {
		int e = raid_batch_wait(v, &wb[k ^ 1]);

		if (e == 0 && err == 0)
			atomic_store(&v->rb_cursor, pend_end);
		else if (err == 0)
			err = e;
		raid_range_unlock(v, &rr[k ^ 1]);
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
	free(buf);
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
