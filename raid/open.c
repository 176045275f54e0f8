/*
 * raid/open.c: creating and opening a volume: label checks (R6), assembly
 * of the groups from the disks found, stale and missing disks left out,
 * then the write-intent recovery (R4) before any I/O is served.
 *
 * Label decisions at open, per path (see docs/raid.md):
 *   no valid label                  left out (missing), logged
 *   other volume UUID               refused: foreign disk  (-FL_ELABEL)
 *   label group/position differ     refused: wrong position (-FL_ELABEL)
 *   disk UUID seen twice            refused: duplicate      (-FL_ELABEL)
 *   generation older than newest    left out (stale), logged; unless one
 *                                   label write behind and recorded ok
 *                                   by the newest label (a torn update)
 *   recorded failed/missing         left out, logged
 * More than P left out in a group: -FL_EDEGRADED.  When the set of members
 * changed, the generation is bumped so the disks left out stay stale.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/raid_impl.h"

static raid_vol_t *vol_alloc(unsigned ngroups, unsigned n, unsigned p,
    size_t max_disks)
{
	raid_vol_t *v = calloc(1, sizeof(*v));

	if (v == NULL)
		return NULL;
	v->ngroups = ngroups;
	v->n = n;
	v->p = p;
	v->w = n + p;
	v->max_disks = max_disks;
	v->disks = calloc(max_disks, sizeof(*v->disks));
	v->groups = calloc(ngroups, sizeof(*v->groups));
	if (v->disks == NULL || v->groups == NULL ||
	    raid_code_init(&v->code, n, p) != 0) {
		free(v->disks);
		free(v->groups);
		free(v);
		return NULL;
	}
	for (size_t i = 0; i < max_disks; i++) {
		v->disks[i].group = -1;
		v->disks[i].position = -1;
	}
	pthread_mutex_init(&v->state_lock, NULL);
	pthread_mutex_init(&v->label_lock, NULL);
	pthread_mutex_init(&v->range_mu, NULL);
	pthread_cond_init(&v->range_cv, NULL);
	pthread_mutex_init(&v->intent_lock, NULL);
	pthread_cond_init(&v->intent_cv, NULL);
	pthread_mutex_init(&v->flush_lock, NULL);
	pthread_mutex_init(&v->rb_lock, NULL);
	pthread_mutex_init(&v->scratch_lock, NULL);
	pthread_mutex_init(&v->journal_lock, NULL);
	pthread_cond_init(&v->journal_cv, NULL);
	pthread_cond_init(&v->rb_cv, NULL);
	return v;
}

static uint64_t data_off_for(uint64_t disk_blocks, unsigned p)
{
	uint64_t end = RAID_INTENT_OFF + raid_intent_nblocks(disk_blocks) +
	    RAID_JOURNAL_SLOTS * (1 + p);

	return FL_DIV_ROUND_UP(end, RAID_DATA_ALIGN) * RAID_DATA_ALIGN;
}

static uint32_t io_timeout_ms(const struct raid_open_opts *o)
{
	if (o == NULL || o->io_timeout_ms == 0)
		return RAID_IO_TIMEOUT_DEFAULT_MS;
	return FL_MAX(o->io_timeout_ms, RAID_IO_TIMEOUT_MIN_MS);
}

int raid_dev_wrap_vol(struct raid_dev *plain, bool fault,
    struct raid_fault_world *world, uint32_t timeout_ms,
    struct raid_dev **out)
{
	struct raid_dev *d = plain, *f;
	int err;

	*out = NULL;
	if (fault) {
		err = raid_fault_wrap(d, world, &f);
		if (err != 0) {
			d->ops->close(d);
			return err;
		}
		d = f;
	}
	err = raid_dev_deadline_wrap(d, timeout_ms, out);
	if (err != 0)
		d->ops->close(d);
	return err;
}

/* The same for path, opened here. */
static int dev_open_vol(const char *path, bool fault,
    struct raid_fault_world *world, uint32_t timeout_ms,
    struct raid_dev **out)
{
	struct raid_dev *d;
	int err = raid_dev_open_file(path, false, &d);

	*out = NULL;
	if (err != 0)
		return err;
	return raid_dev_wrap_vol(d, fault, world, timeout_ms, out);
}

int raid_create(const struct raid_create_opts *c,
    const struct raid_open_opts *o, raid_vol_t **out)
{
	struct raid_dev **devs = NULL;
	uint8_t vol_uuid[16];
	uint8_t (*uuids)[16] = NULL;
	size_t nd;
	uint64_t data_off, size, now = fl_now_real_ns();
	uint32_t ib;
	int err = 0;

	*out = NULL;
	if (c == NULL || c->paths == NULL || c->ngroups < 1 ||
	    c->ngroups > RAID_MAX_GROUPS || c->ndata < 1 ||
	    c->ndata > RAID_MAX_DATA || c->nparity < 1 ||
	    c->nparity > RAID_MAX_PARITY || c->disk_blocks < 1 ||
	    c->disk_blocks > (1ull << 40))
		return FL_ERR(-EINVAL);
	nd = (size_t)c->ngroups * (c->ndata + c->nparity);
	for (size_t i = 0; i < nd; i++) {
		if (c->paths[i] == NULL)
			return FL_ERR(-EINVAL);
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->paths[i], c->paths[j]) == 0) {
				fl_err(RAID_SUBSYS, "create: %s given twice",
				    c->paths[i]);
				return FL_ERR(-EINVAL);
			}
	}
	ib = raid_intent_nblocks(c->disk_blocks);
	data_off = data_off_for(c->disk_blocks, c->nparity);
	size = (data_off + c->disk_blocks) * RAID_BLOCK_SIZE;
	devs = calloc(nd, sizeof(*devs));
	uuids = calloc(nd, 16);
	if (devs == NULL || uuids == NULL) {
		err = -ENOMEM;
		goto out;
	}
	if ((err = fl_random_bytes(vol_uuid, 16)) != 0 ||
	    (err = fl_random_bytes(uuids, nd * 16)) != 0)
		goto out;
	for (size_t i = 0; i < nd; i++) {
		struct raid_label l;
		const char *why;
		bool magic;

		err = raid_dev_open_file(c->paths[i], true, &devs[i]);
		if (err != 0) {
			fl_err(RAID_SUBSYS, "create: cannot open %s: %s",
			    c->paths[i], fl_strerror(err));
			goto out;
		}
		if (devs[i]->size >= 2 * RAID_BLOCK_SIZE &&
		    raid_label_read(devs[i], &l, &why, &magic) == 0) {
			fl_err(RAID_SUBSYS, "create: %s already carries a "
			    "filer label; refusing to overwrite it",
			    c->paths[i]);
			err = FL_ERR(-EEXIST);
			goto out;
		}
	}
	for (size_t i = 0; i < nd; i++) {
		unsigned w = c->ndata + c->nparity;
		unsigned g = (unsigned)(i / w);
		struct raid_label l;

		err = raid_dev_size_image(devs[i], size, c->preallocate, true);
		if (err != 0) {
			fl_err(RAID_SUBSYS, "create: cannot size %s to %llu "
			    "bytes: %s", c->paths[i],
			    (unsigned long long)size, fl_strerror(err));
			goto out;
		}
		err = raid_intent_write_empty(devs[i], vol_uuid, g,
		    RAID_INTENT_OFF, ib, (uint32_t)FL_DIV_ROUND_UP(
		    c->disk_blocks, RAID_REGION_STRIPES));
		if (err != 0)
			goto io_err;
		memset(&l, 0, sizeof(l));
		memcpy(l.vol_uuid, vol_uuid, 16);
		memcpy(l.disk_uuid, uuids[i], 16);
		l.generation = 1;
		l.ngroups = c->ngroups;
		l.group = g;
		l.position = (uint32_t)(i % w);
		l.ndata = c->ndata;
		l.nparity = c->nparity;
		l.flags = RAID_LABEL_F_CLEAN;
		l.disk_blocks = c->disk_blocks;
		l.data_off = data_off;
		l.intent_off = RAID_INTENT_OFF;
		l.intent_blocks = ib;
		l.journal_off = RAID_INTENT_OFF + ib;
		l.journal_slots = RAID_JOURNAL_SLOTS;
		l.journal_blocks = RAID_JOURNAL_SLOTS * (1 + c->nparity);
		l.region_stripes = RAID_REGION_STRIPES;
		l.create_ns = now;
		for (unsigned k = 0; k < w; k++) {
			memcpy(l.member[k].uuid, uuids[g * w + k], 16);
			l.member[k].state = RAID_DISK_OK;
		}
		for (l.seq = 0; l.seq < RAID_LABEL_COPIES; l.seq++) {
			err = raid_label_write(devs[i], &l);
			if (err != 0)
				goto io_err;
		}
		continue;
io_err:
		fl_err(RAID_SUBSYS, "create: cannot write %s: %s", c->paths[i],
		    fl_strerror(err));
		goto out;
	}
out:
	if (devs != NULL)
		for (size_t i = 0; i < nd; i++)
			if (devs[i] != NULL)
				devs[i]->ops->close(devs[i]);
	free(devs);
	free(uuids);
	if (err == 0) {
		char us[37];

		fl_uuid_fmt(vol_uuid, us);
		fl_info(RAID_SUBSYS, "created volume %s: %u group(s) of %u+%u "
		    "disks, %llu blocks per disk", us, c->ngroups, c->ndata,
		    c->nparity, (unsigned long long)c->disk_blocks);
		err = raid_open(c->paths, nd, o, out);
	}
	return err;
}

struct probe {
	struct raid_dev *dev;
	struct raid_label l;
	bool labeled;
	const char *why;
	int err;
};

static bool same_geometry(const struct raid_label *a,
    const struct raid_label *b)
{
	return a->ngroups == b->ngroups && a->ndata == b->ndata &&
	    a->nparity == b->nparity && a->disk_blocks == b->disk_blocks &&
	    a->data_off == b->data_off && a->intent_off == b->intent_off &&
	    a->intent_blocks == b->intent_blocks &&
	    a->journal_off == b->journal_off;
}

/* The labels may name more members than paths were given (a label
 * claiming a wider group): i is not bounded by npaths. */
static const char *pname(const char *const *paths, size_t npaths, size_t i)
{
	return i < npaths && paths[i] != NULL ? paths[i] : "(no path)";
}

/* R6: identity and position checks; -FL_ELABEL on refusal. */
static int open_check_labels(const char *const *paths, size_t npaths,
    struct probe *pr, const struct raid_label *ref, size_t members)
{
	unsigned w = ref->ndata + ref->nparity;
	char a[37], b[37];

	for (size_t i = 0; i < npaths; i++) {
		const struct raid_label *l = &pr[i].l;

		if (!pr[i].labeled)
			continue;
		if (memcmp(l->vol_uuid, ref->vol_uuid, 16) != 0) {
			fl_uuid_fmt(l->vol_uuid, a);
			fl_uuid_fmt(ref->vol_uuid, b);
			fl_err(RAID_SUBSYS, "open: refusing %s: foreign disk "
			    "(it belongs to volume %s, not %s)",
			    pname(paths, npaths, i), a, b);
			return FL_ERR(-FL_ELABEL);
		}
		if (!same_geometry(l, ref)) {
			fl_err(RAID_SUBSYS, "open: refusing %s: its label's "
			    "geometry disagrees with the volume's",
			    pname(paths, npaths, i));
			return FL_ERR(-FL_ELABEL);
		}
		for (size_t j = 0; j < i; j++) {
			if (pr[j].labeled && memcmp(pr[j].l.disk_uuid,
			    l->disk_uuid, 16) == 0) {
				fl_err(RAID_SUBSYS, "open: refusing %s: "
				    "duplicate disk (same disk UUID as %s)",
				    pname(paths, npaths, i), pname(paths, npaths, j));
				return FL_ERR(-FL_ELABEL);
			}
		}
		if (i < members) {
			unsigned g = (unsigned)(i / w), pos = (unsigned)(i % w);

			if (l->flags & RAID_LABEL_F_SPARE) {
				fl_err(RAID_SUBSYS, "open: refusing %s: wrong "
				    "position (label says spare, given at "
				    "group %u position %u)", pname(paths, npaths, i),
				    g, pos);
				return FL_ERR(-FL_ELABEL);
			}
			if (l->group != g || l->position != pos) {
				fl_err(RAID_SUBSYS, "open: refusing %s: wrong "
				    "position (label says group %u position "
				    "%u, given at group %u position %u)",
				    pname(paths, npaths, i), l->group, l->position, g,
				    pos);
				return FL_ERR(-FL_ELABEL);
			}
		} else if (!(l->flags & RAID_LABEL_F_SPARE)) {
			fl_err(RAID_SUBSYS, "open: refusing %s: wrong position "
			    "(label says group %u position %u, given as a "
			    "spare)", pname(paths, npaths, i), l->group, l->position);
			return FL_ERR(-FL_ELABEL);
		}
	}
	return 0;
}

/*
 * A label write that records a change of membership goes to every working
 * disk in turn, each synced before the next (raid_labels_write); a crash
 * in the middle leaves the disks not yet written one pass behind: the
 * previous generation and label seq.  Such a disk missed no write: the
 * newest label of its group, written by that same pass, still records it
 * as a working member.  It is current.  A disk that was out (failed,
 * missing, replaced) is recorded so in that label and stays out; one
 * further behind stays stale.
 */
static bool one_pass_behind(const struct raid_label *l,
    const struct raid_label *auth, const struct raid_group *grp,
    unsigned pos)
{
	return l->seq + 1 == auth->seq &&
	    memcmp(l->disk_uuid, grp->member_uuid[pos], 16) == 0 &&
	    grp->member_state[pos] == RAID_DISK_OK;
}

/* Fill v's disks and groups from the probes; R6 stale/missing handling. */
static int open_assemble(raid_vol_t *v, const char *const *paths,
    size_t npaths, struct probe *pr, uint64_t maxgen, uint64_t maxseq,
    bool *changed)
{
	size_t members = (size_t)v->ngroups * v->w;
	uint64_t need = (v->data_off + v->disk_blocks) * RAID_BLOCK_SIZE;

	*changed = false;
	for (unsigned g = 0; g < v->ngroups; g++) {
		struct raid_group *grp = &v->groups[g];
		const struct raid_label *auth = NULL;
		unsigned nout = 0;

		for (unsigned pos = 0; pos < v->w; pos++) {
			size_t i = (size_t)g * v->w + pos;

			if (i < npaths && pr[i].labeled &&
			    pr[i].l.generation == maxgen &&
			    (auth == NULL || pr[i].l.seq > auth->seq))
				auth = &pr[i].l;
		}
		/*
		 * None at the newest generation: a label write torn by a
		 * crash before it reached this group leaves the whole group
		 * one write behind (label seq one less than the newest).
		 * Its newest label is then the group's truth: a failure in
		 * it was recorded before any flush that relied on it
		 * returned (raid_labels_record_failures).
		 */
		for (unsigned pos = 0; auth == NULL && pos < v->w; pos++) {
			size_t i = (size_t)g * v->w + pos;

			if (i < npaths && pr[i].labeled &&
			    pr[i].l.seq + 1 == maxseq)
				auth = &pr[i].l;
		}
		if (auth == NULL) {
			fl_err(RAID_SUBSYS, "open: group %u has no current "
			    "disk (every disk missing or stale)", g);
			return FL_ERR(-FL_EDEGRADED);
		}
		grp->label_gen = auth->generation;
		for (unsigned pos = 0; pos < v->w; pos++) {
			memcpy(grp->member_uuid[pos], auth->member[pos].uuid,
			    16);
			grp->member_state[pos] = auth->member[pos].state;
			grp->label_out[pos] =
			    auth->member[pos].state != RAID_DISK_OK;
		}
		for (unsigned pos = 0; pos < v->w; pos++) {
			size_t i = (size_t)g * v->w + pos;
			struct raid_disk *d = &v->disks[i];
			struct probe *p = i < npaths ? &pr[i] : NULL;
			enum raid_disk_state st = RAID_DISK_OK;

			grp->pos[pos] = (int)i;
			d->group = (int)g;
			d->position = (int)pos;
			memcpy(d->uuid, grp->member_uuid[pos], 16);
			if (p == NULL || p->dev == NULL) {
				st = RAID_DISK_MISSING;
				snprintf(d->reason, sizeof(d->reason), "%s",
				    p == NULL || i >= npaths ||
				    paths[i] == NULL ? "no path given" :
				    p->why);
			} else if (!p->labeled) {
				st = RAID_DISK_MISSING;
				snprintf(d->reason, sizeof(d->reason),
				    "no valid label: %s", p->why);
			} else if (p->l.generation < auth->generation &&
			    !one_pass_behind(&p->l, auth, grp, pos)) {
				st = RAID_DISK_MISSING;
				memcpy(d->uuid, p->l.disk_uuid, 16);
				snprintf(d->reason, sizeof(d->reason),
				    "stale: label generation %llu, volume is "
				    "at %llu",
				    (unsigned long long)p->l.generation,
				    (unsigned long long)auth->generation);
			} else if (memcmp(p->l.disk_uuid,
			    grp->member_uuid[pos], 16) != 0) {
				fl_err(RAID_SUBSYS, "open: refusing %s: not "
				    "the disk the group's labels record at "
				    "group %u position %u", pname(paths, npaths, i),
				    g, pos);
				return FL_ERR(-FL_ELABEL);
			} else if (grp->member_state[pos] != RAID_DISK_OK) {
				st = (enum raid_disk_state)
				    grp->member_state[pos];
				snprintf(d->reason, sizeof(d->reason),
				    "recorded as %s in the labels",
				    raid_disk_state_name(st));
			} else if (p->dev->size < need) {
				st = RAID_DISK_MISSING;
				snprintf(d->reason, sizeof(d->reason),
				    "device too small (%llu < %llu bytes)",
				    (unsigned long long)p->dev->size,
				    (unsigned long long)need);
			}
			if (p != NULL && p->dev != NULL) {
				d->dev = p->dev;
				p->dev = NULL;
			}
			d->state = st;
			if (st != RAID_DISK_OK) {
				nout++;
				fl_warn(RAID_SUBSYS, "open: disk %s (group %u "
				    "position %u) left out: %s",
				    pname(paths, npaths, i), g, pos, d->reason);
				raid_event(v, RAID_EV_DISK_MISSING,
				    "disk %s left out: %s", pname(paths, npaths, i),
				    d->reason);
				if (grp->member_state[pos] == RAID_DISK_OK) {
					grp->member_state[pos] =
					    RAID_DISK_MISSING;
					*changed = true;
				}
			}
		}
		if (nout > v->p) {
			fl_err(RAID_SUBSYS, "open: group %u has %u of %u disks "
			    "out; parity covers %u", g, nout, v->w, v->p);
			raid_event(v, RAID_EV_GROUP_OFFLINE,
			    "group %u: %u disks out", g, nout);
			return FL_ERR(-FL_EDEGRADED);
		}
	}
	/* Spares. */
	v->ndisks = members;
	for (size_t i = members; i < npaths; i++) {
		struct raid_disk *d = &v->disks[v->ndisks];

		if (pr[i].dev == NULL || !pr[i].labeled ||
		    pr[i].dev->size < need) {
			fl_warn(RAID_SUBSYS, "open: spare %s ignored: %s",
			    pname(paths, npaths, i), pr[i].dev == NULL ? pr[i].why :
			    !pr[i].labeled ? pr[i].why : "device too small");
			if (pr[i].dev == NULL)
				continue;
			d->state = RAID_DISK_MISSING;
			snprintf(d->reason, sizeof(d->reason), "%s",
			    !pr[i].labeled ? pr[i].why : "device too small");
		} else {
			d->state = RAID_DISK_SPARE;
			memcpy(d->uuid, pr[i].l.disk_uuid, 16);
		}
		d->dev = pr[i].dev;
		pr[i].dev = NULL;
		d->path = strdup(pname(paths, npaths, i));
		if (d->path == NULL)
			return -ENOMEM;
		v->ndisks++;
	}
	return 0;
}

int raid_open(const char *const *paths, size_t npaths,
    const struct raid_open_opts *o, raid_vol_t **out)
{
	struct raid_fault_world tmpworld = { false };
	struct probe *pr = NULL;
	raid_vol_t *v = NULL;
	const struct raid_label *ref = NULL;
	size_t members, refcount = 0;
	uint64_t maxgen = 0, maxseq = 0;
	bool fault = o != NULL && o->fault_inject, changed, unclean = false;
	int err = 0;

	*out = NULL;
	if (paths == NULL || npaths == 0)
		return FL_ERR(-EINVAL);
	pr = calloc(npaths, sizeof(*pr));
	if (pr == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < npaths; i++) {
		bool magic;

		pr[i].why = "no path given";
		if (paths[i] == NULL)
			continue;
		pr[i].err = dev_open_vol(paths[i], fault,
		    &tmpworld, io_timeout_ms(o), &pr[i].dev);
		if (pr[i].err != 0) {
			pr[i].why = "cannot open the device";
			fl_warn(RAID_SUBSYS, "open: cannot open %s: %s",
			    paths[i], fl_strerror(pr[i].err));
			continue;
		}
		if (raid_label_read(pr[i].dev, &pr[i].l, &pr[i].why,
		    &magic) == 0)
			pr[i].labeled = true;
		else
			fl_warn(RAID_SUBSYS, "open: %s: no valid label (%s)",
			    paths[i], pr[i].why);
	}
	/* The volume is the UUID most of the labeled disks carry. */
	for (size_t i = 0; i < npaths; i++) {
		size_t cnt = 0;

		if (!pr[i].labeled)
			continue;
		for (size_t j = 0; j < npaths; j++)
			if (pr[j].labeled && memcmp(pr[j].l.vol_uuid,
			    pr[i].l.vol_uuid, 16) == 0)
				cnt++;
		if (cnt > refcount) {
			refcount = cnt;
			ref = &pr[i].l;
		}
	}
	if (ref == NULL) {
		fl_err(RAID_SUBSYS, "open: none of the %zu disks carries a "
		    "valid filer label", npaths);
		err = FL_ERR(-FL_ELABEL);
		goto out;
	}
	for (size_t i = 0; i < npaths; i++) {
		if (pr[i].labeled)
			maxseq = FL_MAX(maxseq, pr[i].l.seq);
		if (pr[i].labeled && memcmp(pr[i].l.vol_uuid, ref->vol_uuid,
		    16) == 0)
			maxgen = FL_MAX(maxgen, pr[i].l.generation);
	}
	for (size_t i = 0; i < npaths; i++) {
		const struct raid_label *l = &pr[i].l;

		if (pr[i].labeled && memcmp(l->vol_uuid, ref->vol_uuid,
		    16) == 0 && l->generation == maxgen &&
		    (ref->generation != maxgen || l->seq > ref->seq))
			ref = l;
	}
	members = (size_t)ref->ngroups * (ref->ndata + ref->nparity);
	err = open_check_labels(paths, npaths, pr, ref, members);
	if (err != 0)
		goto out;
	v = vol_alloc(ref->ngroups, ref->ndata, ref->nparity,
	    FL_MAX(npaths, members) + RAID_MAX_SPARES);
	if (v == NULL) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(v->uuid, ref->vol_uuid, 16);
	v->disk_blocks = ref->disk_blocks;
	v->data_off = ref->data_off;
	v->intent_off = ref->intent_off;
	v->journal_off = ref->journal_off;
	v->generation = maxgen;
	v->label_seq = maxseq;
	v->fault_inject = fault;
	v->io_timeout_ms = io_timeout_ms(o);
	if (o != NULL) {
		v->event_fn = o->event_fn;
		v->event_arg = o->event_arg;
		v->auto_rebuild = o->auto_rebuild;
	}
	unclean = !(ref->flags & RAID_LABEL_F_CLEAN);
	for (size_t i = 0; i < members; i++) {
		v->disks[i].path = strdup(i < npaths ? pname(paths, npaths, i) : "");
		if (v->disks[i].path == NULL) {
			err = -ENOMEM;
			goto out;
		}
		if (i < npaths && paths[i] == NULL)
			v->disks[i].path[0] = '\0';
	}
	for (size_t i = 0; i < npaths; i++) {
		if (pr[i].dev == NULL)
			continue;
		/* The wrappers now belong to the volume's crash world. */
		raid_fault_bind(pr[i].dev, &v->world, ref->data_off);
	}
	err = open_assemble(v, paths, npaths, pr, maxgen, ref->seq,
	    &changed);
	if (err != 0)
		goto out;
	err = raid_intent_init(v);
	if (err != 0)
		goto out;
	/* Crash ordering (b): unclean on disk before any I/O. */
	err = raid_labels_write(v, changed, false);
	if (err != 0)
		goto out;
	err = raid_intent_recover(v, unclean);
	if (err != 0)
		goto out;
	{
		char us[37];

		fl_uuid_fmt(v->uuid, us);
		fl_info(RAID_SUBSYS, "opened volume %s: %u group(s) of %u+%u, "
		    "generation %llu%s", us, v->ngroups, v->n, v->p,
		    (unsigned long long)v->generation,
		    unclean ? " (was not closed cleanly)" : "");
	}
	raid_rebuild_maybe_auto(v);
	*out = v;
	v = NULL;
out:
	for (size_t i = 0; i < npaths; i++)
		if (pr[i].dev != NULL)
			pr[i].dev->ops->close(pr[i].dev);
	free(pr);
	raid_vol_free(v);
	return err;
}

