/*
 * raid/raid.c: volumes, their disks, labels and states.
 *
 * THEORY
 *
 * Purpose.  A volume is a dense array of 4 KiB blocks (VBNs) over one or
 * more RAID groups of N data + P parity disks.  Groups are concatenated;
 * inside a group, VBN v (group-relative) lives on data disk v % N at disk
 * block v / N, and stripe s is disk block s of every disk of the group.
 * Parity lives on dedicated disks at positions N .. N+P-1 (RAID-4 layout
 * for P = 1).  wafl allocates consecutive VBNs, so a CP fills whole
 * stripes and parity is computed from the data in hand (R3).
 *
 * On-disk format.  Each disk: two label copies (blocks 0, 1; label.h), the
 * write-intent bitmap of the disk's group (blocks 2 .., intent.c), then the
 * data area at data_off.  Labels carry the volume UUID, the disk's UUID,
 * group and position, the geometry, a membership generation and the
 * member table of the group (UUID and state per position).
 *
 * Invariants (referred to by number from the code and the tests):
 *   R1  A read returns the data last written to that VBN, or an error;
 *       never other data, whatever the state of up to P disks per group.
 *   R2  raid_flush() returns 0 only when every write issued before it is
 *       durable on every working disk.
 *   R3  Full-stripe writes read nothing; partial-stripe writes read the
 *       stripe's other data blocks and recompute all parity.
 *   R4  A stripe's region is durably marked in the write-intent bitmap
 *       before any of its blocks is written, and unmarked only after a
 *       flush made the write durable; an unclean open resyncs parity of
 *       marked regions before serving I/O.
 *   R5  A disk that returns an I/O error, or gives no answer to an I/O
 *       within io_timeout_ms (deadline.c), is failed automatically, and
 *       the label generation on the remaining disks is bumped so it is
 *       stale from then on.  A group with more than P disks out refuses
 *       I/O (-FL_EDEGRADED), never returns wrong data.
 *   R6  Open refuses foreign, misplaced and duplicate disks; stale and
 *       missing disks are left out and the group runs degraded if <= P.
 *
 * Crash ordering.  (a) Label writes go to alternate copies, each synced
 * before the next (one copy is always whole).  (b) Open writes labels with
 * the clean flag off before any I/O; close flushes, clears the bitmap and
 * then writes labels with clean on.  (c) Intent bits are synced on every
 * disk of the group before the stripe write starts (R4).  (d) A disk
 * failure bumps the generation on all working disks before the failing
 * I/O returns, and a flush returns only once every failure marked before
 * its syncs is in the labels, so a disk that missed writes can never come
 * back as current.
 * (e) With a data disk out, the missing blocks of a partially written
 * stripe are journaled and synced before the stripe is written (journal.c),
 * so resync can recompute that stripe's parity after a crash.
 *
 * Concurrency.  state_lock guards disk states, group position tables and
 * the member tables; I/O paths take a snapshot of a group (raid_gsnap)
 * under it.  Writes and reconstructions of a stripe range hold a range
 * lock (the stripe lock table: a list of locked (group, stripe range)
 * intervals); healthy reads take none.  The rebuild thread holds the range
 * lock of the chunk it rebuilds, so a writer sees either "below the cursor:
 * also write the new disk" or "above: the rebuild will read your data".
 * Counters are relaxed atomics.  Lock order in raid_impl.h.
 *
 * Failure.  Every device error other than a simulated crash fails the disk
 * (R5) and the operation is retried on the survivors.  A disk that stops
 * answering is the same case: its I/O runs on the disk's worker threads
 * (deadline.c) and the caller stops waiting after io_timeout_ms with
 * -ETIMEDOUT; the disk is failed "no answer for N ms", and its workers,
 * should the I/O ever return, write nothing into a caller's buffer (a
 * write in progress may still read one, for a disk that is dead by then:
 * deadline.c).  Label and
 * bitmap contents from disk are validated before use; a bad one leaves the
 * disk out (missing), a foreign or misplaced one refuses the open (R6).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/raid_impl.h"

const char *raid_disk_state_name(enum raid_disk_state s)
{
	switch (s) {
	case RAID_DISK_OK:		return "ok";
	case RAID_DISK_FAILED:		return "failed";
	case RAID_DISK_MISSING:		return "missing";
	case RAID_DISK_REBUILDING:	return "rebuilding";
	case RAID_DISK_SPARE:		return "spare";
	}
	return "unknown";
}

static const char *dpath(const struct raid_disk *d)
{
	return d->path[0] ? d->path : "(no path)";
}

bool raid_crashed(const raid_vol_t *v)
{
	return atomic_load(&((raid_vol_t *)v)->world.crashed);
}

void raid_event(raid_vol_t *v, enum raid_event ev, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (v->event_fn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	v->event_fn(v->event_arg, ev, msg);
}

uint64_t raid_disk_off(const raid_vol_t *v, uint64_t block)
{
	return (v->data_off + block) * RAID_BLOCK_SIZE;
}

void raid_gsnap_take(raid_vol_t *v, unsigned g, struct raid_gsnap *s)
{
	const struct raid_group *grp = &v->groups[g];

	memset(s, 0, sizeof(*s));
	s->rb_pos = -1;
	pthread_mutex_lock(&v->state_lock);
	for (unsigned pos = 0; pos < v->w; pos++) {
		int idx = grp->pos[pos];
		struct raid_disk *d = idx >= 0 ? &v->disks[idx] : NULL;

		s->d[pos] = d;
		s->up[pos] = d != NULL && d->dev != NULL &&
		    d->state == RAID_DISK_OK;
		if (!s->up[pos])
			s->nout++;
		if (d != NULL && d->state == RAID_DISK_REBUILDING) {
			s->rb_pos = (int)pos;
			s->rb_disk = d;
			s->rb_cursor = atomic_load(&v->rb_cursor);
		}
	}
	pthread_mutex_unlock(&v->state_lock);
}

/* R5: more than P out refuses I/O; reported once per group. */
int raid_group_check(raid_vol_t *v, unsigned g, const struct raid_gsnap *s)
{
	bool report = false;

	if (raid_crashed(v))
		return -FL_ECRASHED;
	if (s->nout <= v->p)
		return 0;
	pthread_mutex_lock(&v->state_lock);
	if (!v->groups[g].offline_reported) {
		v->groups[g].offline_reported = true;
		report = true;
	}
	pthread_mutex_unlock(&v->state_lock);
	if (report) {
		fl_err(RAID_SUBSYS, "group %u offline: %u of %u disks out, "
		    "parity covers %u", g, s->nout, v->w, v->p);
		raid_event(v, RAID_EV_GROUP_OFFLINE,
		    "group %u offline: %u disks out, parity covers %u", g,
		    s->nout, v->p);
	}
	return FL_ERR(-FL_EDEGRADED);
}

/* ---- labels -------------------------------------------------------------- */

static void label_build(const raid_vol_t *v, const struct raid_disk *d,
    uint64_t seq, bool clean, struct raid_label *l)
{
	memset(l, 0, sizeof(*l));
	memcpy(l->vol_uuid, v->uuid, 16);
	memcpy(l->disk_uuid, d->uuid, 16);
	l->generation = v->generation;
	l->seq = seq;
	l->ngroups = v->ngroups;
	l->ndata = v->n;
	l->nparity = v->p;
	l->disk_blocks = v->disk_blocks;
	l->data_off = v->data_off;
	l->intent_off = v->intent_off;
	l->intent_blocks = raid_intent_nblocks(v->disk_blocks);
	l->journal_off = v->journal_off;
	l->journal_slots = RAID_JOURNAL_SLOTS;
	l->journal_blocks = RAID_JOURNAL_SLOTS * (1 + v->p);
	l->region_stripes = RAID_REGION_STRIPES;
	l->flags = clean ? RAID_LABEL_F_CLEAN : 0;
	if (d->state == RAID_DISK_SPARE || d->state == RAID_DISK_REBUILDING ||
	    d->group < 0) {
		l->flags |= RAID_LABEL_F_SPARE;
		l->group = RAID_LABEL_NONE;
		l->position = RAID_LABEL_NONE;
		return;
	}
	l->group = (uint32_t)d->group;
	l->position = (uint32_t)d->position;
	for (unsigned i = 0; i < v->w; i++) {
		const struct raid_group *grp = &v->groups[d->group];

		memcpy(l->member[i].uuid, grp->member_uuid[i], 16);
		l->member[i].state = grp->member_state[i];
	}
}

/* Mark disk failed under state_lock; true if it changed and was a member. */
static bool mark_failed_locked(raid_vol_t *v, struct raid_disk *d, int err,
    const char *why, bool *changed)
{
	bool member;

	*changed = false;
	if (err == -ETIMEDOUT)
		atomic_fetch_add(&d->timeouts, 1);
	if (d->state == RAID_DISK_FAILED || d->state == RAID_DISK_MISSING)
		return false;
	member = d->state == RAID_DISK_OK && d->group >= 0;
	d->state = RAID_DISK_FAILED;
	*changed = true;
	if (err == -ETIMEDOUT)
		snprintf(d->reason, sizeof(d->reason),
		    "%s: no answer for %u ms", why, v->io_timeout_ms);
	else if (err != 0)
		snprintf(d->reason, sizeof(d->reason), "%s: %s", why,
		    fl_strerror(err));
	else
		snprintf(d->reason, sizeof(d->reason), "%s", why);
	if (member) {
		v->groups[d->group].member_state[d->position] =
		    RAID_DISK_FAILED;
		v->fail_marked++;
	}
	return member;
}

static void announce_failed(raid_vol_t *v, struct raid_disk *d)
{
	char reason[RAID_REASON_LEN];

	pthread_mutex_lock(&v->state_lock);
	snprintf(reason, sizeof(reason), "%s", d->reason);
	pthread_mutex_unlock(&v->state_lock);
	fl_warn(RAID_SUBSYS, "disk %s (group %d position %d) failed: %s",
	    dpath(d), d->group, d->position, reason);
	raid_event(v, RAID_EV_DISK_FAILED, "disk %s failed: %s", dpath(d),
	    reason);
}

#define RAID_NEWLY_MAX	(RAID_MAX_GROUPS * RAID_MAX_WIDTH + RAID_MAX_SPARES)

/*
 * The label write itself; caller holds label_lock.  Disks failed by it
 * are returned in newly[] (*nnew), for the caller to announce once it
 * has let go of label_lock.
 */
static int labels_write_locked(raid_vol_t *v, bool bump, bool clean,
    struct raid_disk **newly, size_t *nnew_out)
{
	struct raid_label *ls = NULL;
	struct raid_disk **ds = NULL;
	size_t nnew = 0, nl;
	uint64_t failed = 0;
	int err = 0;

	if (raid_crashed(v))
		return -FL_ECRASHED;
	ls = calloc(v->max_disks, sizeof(*ls));
	ds = calloc(v->max_disks, sizeof(*ds));
	if (ls == NULL || ds == NULL) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		bool again = false;
		uint64_t seq = ++v->label_seq;

		pthread_mutex_lock(&v->state_lock);
		if (bump)
			v->generation++;
		bump = false;
		failed = v->fail_marked;
		nl = 0;
		for (size_t i = 0; i < v->ndisks; i++) {
			struct raid_disk *d = &v->disks[i];

			if (d->dev == NULL || (d->state != RAID_DISK_OK &&
			    d->state != RAID_DISK_SPARE &&
			    d->state != RAID_DISK_REBUILDING))
				continue;
			label_build(v, d, seq, clean, &ls[nl]);
			ds[nl++] = d;
		}
		pthread_mutex_unlock(&v->state_lock);
		for (size_t i = 0; i < nl; i++) {
			int e = raid_label_write(ds[i]->dev, &ls[i]);
			bool changed, member;

			if (e == -FL_ECRASHED) {
				err = e;
				break;
			}
			if (e == 0)
				continue;
			atomic_fetch_add(&ds[i]->write_errors, 1);
			pthread_mutex_lock(&v->state_lock);
			member = mark_failed_locked(v, ds[i], e,
			    "label write error", &changed);
			pthread_mutex_unlock(&v->state_lock);
			if (changed && nnew < RAID_NEWLY_MAX)
				newly[nnew++] = ds[i];
			if (member)
				again = bump = true;
		}
		if (!again || err != 0)
			break;
	}
	if (err == 0) {
		pthread_mutex_lock(&v->state_lock);
		v->fail_labeled = FL_MAX(v->fail_labeled, failed);
		pthread_mutex_unlock(&v->state_lock);
	}
out:
	*nnew_out = nnew;
	free(ls);
	free(ds);
	return err;
}

int raid_labels_write(raid_vol_t *v, bool bump, bool clean)
{
	struct raid_disk *newly[RAID_NEWLY_MAX];
	size_t nnew = 0;
	int err;

	pthread_mutex_lock(&v->label_lock);
	err = labels_write_locked(v, bump, clean, newly, &nnew);
	pthread_mutex_unlock(&v->label_lock);
	for (size_t i = 0; i < nnew; i++)
		announce_failed(v, newly[i]);
	return err;
}

/*
 * A failure is marked (state FAILED, the member table) before its thread
 * writes the labels that record it, and other threads' writes skip the
 * failed disk from that moment.  A flush that made such writes durable
 * must not return before the failure is on disk too: after a crash the
 * disk would come back as a current member holding the blocks it missed
 * (R1).  Usually the failing thread's own label write is under way (this
 * waits for it); if not, the labels are written here (the generation bump
 * follows with that thread's write).
 */
int raid_labels_record_failures(raid_vol_t *v)
{
	struct raid_disk *newly[RAID_NEWLY_MAX];
	size_t nnew = 0;
	bool pending;
	int err = 0;

	pthread_mutex_lock(&v->label_lock);
	pthread_mutex_lock(&v->state_lock);
	pending = v->fail_labeled < v->fail_marked;
	pthread_mutex_unlock(&v->state_lock);
	if (pending)
		err = labels_write_locked(v, false, false, newly, &nnew);
	pthread_mutex_unlock(&v->label_lock);
	for (size_t i = 0; i < nnew; i++)
		announce_failed(v, newly[i]);
	return err;
}

void raid_disk_fail(raid_vol_t *v, size_t idx, int err, const char *why)
{
	struct raid_disk *d = &v->disks[idx];
	bool changed, member;

	pthread_mutex_lock(&v->state_lock);
	member = mark_failed_locked(v, d, err, why, &changed);
	pthread_mutex_unlock(&v->state_lock);
	if (!changed)
		return;
	announce_failed(v, d);
	if (member && !raid_crashed(v)) {
		(void)raid_labels_write(v, true, false);
		raid_rebuild_maybe_auto(v);
	}
}

/* ---- close and the rest -------------------------------------------------- */

void raid_vol_free(raid_vol_t *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->max_disks; i++) {
		if (v->disks[i].dev != NULL)
			v->disks[i].dev->ops->close(v->disks[i].dev);
		free(v->disks[i].path);
	}
	raid_intent_free(v);
	for (unsigned g = 0; v->groups != NULL && g < v->ngroups; g++)
		raid_journal_free(v, g);
	pthread_mutex_destroy(&v->journal_lock);
	pthread_cond_destroy(&v->journal_cv);
	for (unsigned i = 0; i < v->nscratch; i++)
		free(v->scratch[i]);
	pthread_mutex_destroy(&v->scratch_lock);
	pthread_mutex_destroy(&v->state_lock);
	pthread_mutex_destroy(&v->label_lock);
	pthread_mutex_destroy(&v->range_mu);
	pthread_cond_destroy(&v->range_cv);
	pthread_mutex_destroy(&v->intent_lock);
	pthread_cond_destroy(&v->intent_cv);
	pthread_mutex_destroy(&v->flush_lock);
	pthread_mutex_destroy(&v->rb_lock);
	pthread_cond_destroy(&v->rb_cv);
	free(v->disks);
	free(v->groups);
	free(v);
}

void raid_close(raid_vol_t *v)
{
	bool ok = true;

	if (v == NULL)
		return;
	v->closing = true;
	raid_rebuild_stop(v);
	if (!raid_crashed(v)) {
		/* A clean close leaves no region marked (its last flush
		 * clears every bit). */
		raid_intent_drop_ahead(v);
		if (raid_flush(v) != 0)
			ok = false;
		for (unsigned g = 0; g < v->ngroups && ok; g++) {
			struct raid_gsnap s;

			raid_gsnap_take(v, g, &s);
			if (s.nout > v->p)
				ok = false;
		}
		/* Crash ordering (b): clean only after a complete flush. */
		if (ok)
			(void)raid_labels_write(v, false, true);
	}
	raid_vol_free(v);
}

void raid_geometry(const raid_vol_t *v, struct raid_geometry *g)
{
	memset(g, 0, sizeof(*g));
	memcpy(g->uuid, v->uuid, 16);
	g->ngroups = v->ngroups;
	g->ndata = v->n;
	g->nparity = v->p;
	g->disk_blocks = v->disk_blocks;
	g->nvbns = (uint64_t)v->ngroups * v->n * v->disk_blocks;
	g->stripe_width = v->n;
}

size_t raid_ndisks(const raid_vol_t *v)
{
	raid_vol_t *vv = (raid_vol_t *)v;
	size_t n;

	pthread_mutex_lock(&vv->state_lock);
	n = vv->ndisks;
	pthread_mutex_unlock(&vv->state_lock);
	return n;
}

int raid_disk_info(const raid_vol_t *v, size_t disk,
    struct raid_disk_info *info)
{
	raid_vol_t *vv = (raid_vol_t *)v;
	const struct raid_disk *d;
	int err = 0;

	memset(info, 0, sizeof(*info));
	pthread_mutex_lock(&vv->state_lock);
	if (disk >= vv->ndisks) {
		err = FL_ERR(-EINVAL);
		goto out;
	}
	d = &vv->disks[disk];
	info->path = d->path;
	info->state = d->state;
	info->group = d->group;
	info->position = d->position;
	memcpy(info->disk_uuid, d->uuid, 16);
	info->read_errors = atomic_load(&((struct raid_disk *)d)->read_errors);
	info->write_errors =
	    atomic_load(&((struct raid_disk *)d)->write_errors);
	info->timeouts = atomic_load(&((struct raid_disk *)d)->timeouts);
	info->reason = d->state == RAID_DISK_OK ? "" : d->reason;
out:
	pthread_mutex_unlock(&vv->state_lock);
	return err;
}

int raid_fail_disk(raid_vol_t *v, size_t disk, const char *reason)
{
	char why[RAID_REASON_LEN];

	if (disk >= raid_ndisks(v))
		return FL_ERR(-EINVAL);
	snprintf(why, sizeof(why), "failed by request%s%s",
	    reason != NULL && reason[0] ? ": " : "",
	    reason != NULL ? reason : "");
	raid_disk_fail(v, disk, 0, why);
	return 0;
}

int raid_add_spare(raid_vol_t *v, const char *path)
{
	uint64_t need = (v->data_off + v->disk_blocks) * RAID_BLOCK_SIZE;
	struct raid_dev *dev = NULL, *plain = NULL;
	struct raid_label l;
	const char *why;
	bool magic;
	char *p = NULL;
	int err;

	if (path == NULL)
		return FL_ERR(-EINVAL);
	if (raid_crashed(v))
		return FL_ERR(-FL_ECRASHED);
	pthread_mutex_lock(&v->state_lock);
	for (size_t i = 0; i < v->ndisks; i++) {
		if (strcmp(v->disks[i].path, path) == 0) {
			pthread_mutex_unlock(&v->state_lock);
			fl_err(RAID_SUBSYS, "add spare: %s is already a disk "
			    "of this volume", path);
			return FL_ERR(-EEXIST);
		}
	}
	pthread_mutex_unlock(&v->state_lock);
	err = raid_dev_open_file(path, true, &plain);
	if (err != 0) {
		fl_err(RAID_SUBSYS, "add spare: cannot open %s: %s", path,
		    fl_strerror(err));
		return err;
	}
	if (plain->size >= 2 * RAID_BLOCK_SIZE &&
	    raid_label_read(plain, &l, &why, &magic) == 0) {
		bool ours = memcmp(l.vol_uuid, v->uuid, 16) == 0;

		pthread_mutex_lock(&v->state_lock);
		for (size_t i = 0; ours && i < v->ndisks; i++)
			if (memcmp(v->disks[i].uuid, l.disk_uuid, 16) == 0 &&
			    v->disks[i].state != RAID_DISK_FAILED &&
			    v->disks[i].state != RAID_DISK_MISSING)
				ours = false;
		pthread_mutex_unlock(&v->state_lock);
		if (!ours) {
			fl_err(RAID_SUBSYS, "add spare: %s carries the label "
			    "of another volume or a working disk", path);
			err = FL_ERR(-EEXIST);
			goto out;
		}
		/* A disk this volume failed earlier: reused with a new UUID. */
	}
	if (plain->size < need) {
		err = raid_dev_size_image(plain, need, false, false);
		if (err != 0) {
			fl_err(RAID_SUBSYS, "add spare: cannot size %s: %s",
			    path, fl_strerror(err));
			goto out;
		}
	}
	err = raid_dev_wrap_vol(plain, v->fault_inject, &v->world,
	    v->io_timeout_ms, &dev);
	plain = NULL;
	if (err != 0)
		goto out;
	raid_fault_bind(dev, &v->world, v->data_off);
	p = strdup(path);
	if (p == NULL) {
		err = -ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&v->state_lock);
	if (v->ndisks == v->max_disks) {
		pthread_mutex_unlock(&v->state_lock);
		err = FL_ERR(-ENOSPC);
		goto out;
	}
	/*
	 * The same file under another name is the same disk.  A failed disk
	 * stays open until raid_close, and a late write of its I/O threads
	 * (deadline.c) must never land on a spare being rebuilt (R5).
	 */
	for (size_t i = 0; i < v->ndisks; i++) {
		const struct raid_dev *o = v->disks[i].dev;

		if (o != NULL && o->file_dev == dev->file_dev &&
		    o->file_ino == dev->file_ino) {
			pthread_mutex_unlock(&v->state_lock);
			fl_err(RAID_SUBSYS, "add spare: %s is %s, already a "
			    "disk of this volume", path, v->disks[i].path);
			err = FL_ERR(-EEXIST);
			goto out;
		}
	}
	{
		struct raid_disk *d = &v->disks[v->ndisks];

		err = fl_random_bytes(d->uuid, 16);
		d->path = p;
		d->dev = dev;
		d->state = RAID_DISK_SPARE;
		d->group = d->position = -1;
		d->reason[0] = '\0';
		p = NULL;
		dev = NULL;
		v->ndisks++;
	}
	pthread_mutex_unlock(&v->state_lock);
	if (err != 0)
		goto out;
	err = raid_labels_write(v, false, false);
	if (err != 0)
		goto out;
	fl_info(RAID_SUBSYS, "added spare %s", path);
	raid_rebuild_maybe_auto(v);
out:
	free(p);
	if (dev != NULL)
		dev->ops->close(dev);
	if (plain != NULL)
		plain->ops->close(plain);
	return err;
}

void raid_status(const raid_vol_t *v, struct raid_status *st)
{
	raid_vol_t *vv = (raid_vol_t *)v;

	memset(st, 0, sizeof(*st));
	for (unsigned g = 0; g < v->ngroups; g++) {
		struct raid_gsnap s;

		raid_gsnap_take(vv, g, &s);
		if (s.nout > 0)
			st->degraded = true;
		if (s.nout > v->p)
			st->offline = true;
	}
	pthread_mutex_lock(&vv->rb_lock);
	st->rebuilding = vv->rb_running;
	pthread_mutex_unlock(&vv->rb_lock);
	st->rebuild_done = atomic_load(&vv->rb_cursor);
	st->rebuild_total = atomic_load(&vv->rb_total);
	st->scrubbing = atomic_load(&vv->scrubbing);
	st->scrub_done = atomic_load(&vv->scrub_done);
	st->scrub_total = atomic_load(&vv->scrub_total);
#define LD(f) st->counters.f = atomic_load(&vv->ctr.f)
	LD(reads); LD(writes); LD(parity_reads); LD(parity_writes);
	LD(full_stripe_writes); LD(partial_stripe_writes); LD(partial_reads);
	LD(reconstructions); LD(flushes); LD(intent_writes);
	LD(rebuild_mismatches);
#undef LD
}

void raid_counters_reset(raid_vol_t *v)
{
#define Z(f) atomic_store(&v->ctr.f, 0)
	Z(reads); Z(writes); Z(parity_reads); Z(parity_writes);
	Z(full_stripe_writes); Z(partial_stripe_writes); Z(partial_reads);
	Z(reconstructions); Z(flushes); Z(intent_writes);
	Z(rebuild_mismatches);
#undef Z
}

int raid_vbn_locate(const raid_vol_t *v, uint64_t vbn, size_t *disk,
    uint64_t *block)
{
	raid_vol_t *vv = (raid_vol_t *)v;
	unsigned g, x;

	if (vbn >= (uint64_t)v->n * v->disk_blocks * v->ngroups)
		return FL_ERR(-ERANGE);
	raid_vbn_split(v, vbn, &g, block, &x);
	pthread_mutex_lock(&vv->state_lock);
	*disk = (size_t)vv->groups[g].pos[x];
	pthread_mutex_unlock(&vv->state_lock);
	return 0;
}

int raid_parity_locate(const raid_vol_t *v, uint64_t vbn, unsigned p,
    size_t *disk, uint64_t *block)
{
	raid_vol_t *vv = (raid_vol_t *)v;
	unsigned g, x;

	if (vbn >= (uint64_t)v->n * v->disk_blocks * v->ngroups)
		return FL_ERR(-ERANGE);
	if (p >= v->p)
		return FL_ERR(-EINVAL);
	raid_vbn_split(v, vbn, &g, block, &x);
	pthread_mutex_lock(&vv->state_lock);
	*disk = (size_t)vv->groups[g].pos[v->n + p];
	pthread_mutex_unlock(&vv->state_lock);
	return 0;
}
