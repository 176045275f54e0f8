/*
 * raid/rebuild.c: background rebuild of a failed or missing position onto
 * a spare.
 *
 * The spare takes the position at once in the group's position table with
 * state REBUILDING: reads treat it as out (they reconstruct), writes send
 * it the blocks of stripes below the rebuild cursor.  The thread walks the
 * stripes in chunks of RAID_REBUILD_STRIPES under the chunk's range lock:
 * read every survivor, solve the position's blocks from N of them, check
 * the others against them (rebuild_check), write the position's blocks to
 * the spare, advance the cursor.  Because the cursor only moves under a range lock,
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
#define RAID_REBUILD_LOG_MAX	16u	/* stripes logged one by one */

/* A rebuild's parity check, for its log lines and its summary. */
struct rb_check {
	unsigned g, x;
	uint64_t bad, fixed, logged;
	uint8_t *chk;	/* P chunks: the redundant positions recomputed */
	uint8_t *tmp;	/* w + 1 blocks, for locating a bad block */
};

/*
 * The parity check of chunk [c0, c0+cn): buf holds, disk-major, every
 * working position of s, and position x solved from the first N of them
 * (data before parity).  The other working positions (P - nout of them:
 * one with P = 2 and one position out) are recomputed from the same N
 * and compared.  A stripe that disagrees is counted, logged and raised:
 *   - with two or more of them, the one block whose removal makes the
 *     stripe consistent is located (data or parity, as scrub does),
 *     rewritten in place, and x solved again without it;
 *   - with one, which block is wrong cannot be told: any one of the
 *     N + 1 blocks at hand explains the difference.  x keeps the value
 *     solved from the first N; it is logged as possibly wrong, and
 *     wafl's checksum decides when it reads it.
 */
static void rebuild_check(raid_vol_t *v, const struct raid_gsnap *s,
    uint64_t c0, uint32_t cn, uint8_t *buf, struct rb_check *rc)
{
	const size_t B = RAID_BLOCK_SIZE, stride = (size_t)cn * B;
	unsigned rows_in[RAID_MAX_DATA], extra[RAID_MAX_WIDTH];
	unsigned nin = 0, nx = 0, x = rc->x;
	uint8_t *src[RAID_MAX_DATA], *dst[RAID_MAX_WIDTH];

	for (unsigned pos = 0; pos < v->w; pos++) {
		if (!s->up[pos])
			continue;
		if (nin < v->n) {
			rows_in[nin] = pos;
			src[nin++] = buf + pos * stride;
		} else {
			extra[nx] = pos;
			dst[nx] = rc->chk + nx * stride;
			nx++;
		}
	}
	if (nx == 0 || nin < v->n || raid_code_solve(&v->code, rows_in, src,
	    nx, extra, dst, stride) != 0)
		return;
	for (uint32_t k = 0; k < cn; k++) {
		const size_t off = (size_t)k * B;
		const uint64_t st = c0 + k;
		bool bad = false;
		int culprit = -1;

		for (unsigned i = 0; i < nx && !bad; i++)
			bad = memcmp(dst[i] + off, buf + extra[i] * stride +
			    off, B) != 0;
		if (!bad)
			continue;
		rc->bad++;
		CTR_ADD(v, rebuild_mismatches, 1);
		if (nx >= 2) {
			uint8_t *blk[RAID_MAX_WIDTH], *fix;

			fix = rc->tmp + (size_t)v->w * B;
			for (unsigned p = 0; p < v->w; p++)
				blk[p] = buf + p * stride + off;
			culprit = raid_locate_bad(v, s, blk, rc->tmp, fix);
			if (culprit >= 0) {
				uint8_t *sk[RAID_MAX_DATA], *dx = blk[x];

				memcpy(blk[culprit], fix, B);
				for (unsigned i = 0; i < v->n; i++)
					sk[i] = src[i] + off;
				if (raid_code_solve(&v->code, rows_in, sk, 1,
				    &x, &dx, B) != 0)
					culprit = -1;
			}
			if (culprit >= 0) {
				/* As a repair: parity matches the fix. */
				(void)raid_disk_write(v, s->d[culprit], fix,
				    1, st);
				rc->fixed++;
			}
		}
		raid_event(v, RAID_EV_REBUILD_MISMATCH, "group %u stripe "
		    "%llu: parity disagrees with the data during the "
		    "rebuild of position %u", rc->g, (unsigned long long)st,
		    x);
		if (rc->logged >= RAID_REBUILD_LOG_MAX)
			continue;
		rc->logged++;
		if (culprit >= 0)
			fl_warn(RAID_SUBSYS, "rebuild of group %u position "
			    "%u: stripe %llu: parity disagrees with the data; "
			    "the %s block at position %d is the wrong one: "
			    "rewritten, and position %u solved without it",
			    rc->g, x, (unsigned long long)st,
			    culprit < (int)v->n ? "data" : "parity", culprit,
			    x);
		else
			fl_warn(RAID_SUBSYS, "rebuild of group %u position "
			    "%u: stripe %llu: parity disagrees with the data; "
			    "%s: the rebuilt block, solved from the data and "
			    "first parity at hand, may be wrong (the file "
			    "system's checksum will tell when it is read)",
			    rc->g, x, (unsigned long long)st, nx >= 2 ?
			    "no single block explains it" :
			    "with one redundant block the wrong one cannot "
			    "be located");
	}
}

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
	struct rb_check rc = {
		.g = g, .x = x,
		.chk = raid_balloc((size_t)v->p * RAID_REBUILD_STRIPES),
		.tmp = raid_balloc(v->w + 1),
	};
	bool want[RAID_MAX_WIDTH] = { false }, pending = false;
	struct raid_range rr[2];
	struct raid_batch wb[2];
	uint64_t t0 = fl_now_mono_ns(), pend_end = 0;
	unsigned k = 0;
	int err = 0;

	if (buf == NULL || wbuf[0] == NULL || wbuf[1] == NULL ||
	    rc.chk == NULL || rc.tmp == NULL)
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
			/* Every working position: the parity check's too. */
			for (unsigned p = 0; p < v->w; p++)
				want[p] = p == x || s.up[p];
			err = raid_read_stripes_dm(v, g, &s, c0, cn, want, buf,
			    NULL);
			if (err == 0) {
				struct iovec iov = { wbuf[k], cn * B };

				rebuild_check(v, &s, c0, cn, buf, &rc);

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

	if (rc.bad > 0)
		fl_warn(RAID_SUBSYS, "rebuild of group %u position %u: %llu "
		    "stripe(s) where parity disagrees with the data, %llu "
		    "located and corrected; %s", g, x,
		    (unsigned long long)rc.bad, (unsigned long long)rc.fixed,
		    rc.fixed < rc.bad ? "the others' rebuilt blocks may be "
		    "wrong: run filerctl check (it reads every block against "
		    "its checksum) before any scrub with repair" : "nothing left to do");
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
	free(rc.chk);
	free(rc.tmp);
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
