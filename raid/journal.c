/*
 * raid/journal.c: the degraded-write journal, which closes the write hole
 * for a group that runs with a data disk out.
 *
 * Why.  The write-intent resync (intent.c) recomputes parity from data.
 * That needs every data block of the stripe; with a data disk out, the
 * missing block exists only as "what parity says", and a crash between a
 * partial write's data and parity writes leaves parity that reconstructs
 * the missing block wrongly (R1 would fail for a block nobody wrote).  So
 * before such a write, the values of the missing data blocks after the
 * write are recorded durably here (like md's partial parity log); after a
 * crash, recovery recomputes parity of a dirty stripe from its present data
 * and the journaled missing blocks.
 *
 * Where.  Each disk of a group holds RAID_JOURNAL_SLOTS slots of (1 + P)
 * blocks at journal_off; a record is written to slot seq % SLOTS on every
 * working disk of the group.  Record header block:
 *
 *   off  size  field
 *     0     8  magic        "FLRDJRN1" (0x314e524a44524c46)
 *     8     4  version      1
 *    12     4  crc32c       of this block (field zero) and the k blocks after
 *    16    16  volume uuid
 *    32     4  group
 *    36     4  kind         1 data record, 2 invalidation
 *    40     8  seq          per-group record counter (ring order)
 *    48     8  generation   label generation when written
 *    56     8  s0           first stripe
 *    64     8  s1           end stripe (s0 + 1 for a data record)
 *    72     4  k            data blocks that follow (0 for invalidation)
 *    76    12  positions    k data positions, ascending (rest zero)
 *    88  4008  reserved     zero
 *
 * Rules.  (J1) A data record is synced on every working disk before the
 * stripe is written.  (J2) A whole-stripe write with a data disk out writes
 * an invalidation record for its stripes (no sync needed: if it is lost,
 * the stripes' writes were not flushed either, and the older record gives
 * the missing block its old value, which is allowed for a block in flight).
 * (J3) Slots are reused in seq order; a slot is reused only after every
 * disk of the group was synced since its record's write completed, so an
 * overwritten record's stripe is consistent on disk.  (J4) Recovery trusts
 * a record only if it was written while the data disks missing at open
 * were already out (an older one may hold a value that writes made while
 * the disk was present have overtaken), and for each stripe only the
 * newest record covering it.  By generation, with L the generation of the
 * group's newest label at open: a record of L or later is trusted (later:
 * written after a bump whose labels the crash kept from the disks); one of
 * L - 1 is trusted if every missing data disk is recorded out in that
 * label (a disk failure bumped the generation while the record's stripe
 * was being written: the label pass syncs every disk, but a write still
 * in flight is not covered and may be lost); anything older is not.
 * Safety of L - 1: a position comes back only through a rebuild, whose
 * label pass bumps the generation; a record covering it is written only
 * while it is out; so if the label of L records it out, a record of
 * L - 1 covering it was written after it went out, in its present absence.
 * A disk found absent at open that L records ok gets no such grace.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/raid_impl.h"

#define JRN_MAGIC	0x314e524a44524c46ull	/* "FLRDJRN1" */
#define JRN_VERSION	1u
#define JRN_DATA	1u
#define JRN_INVAL	2u
/* Largest seq a record may carry: next_seq (highest + 1) never wraps, so
 * a record written after open is always newer than every one loaded. */
#define JRN_SEQ_MAX	(1ull << 62)

static uint64_t slot_block(const raid_vol_t *v, unsigned slot)
{
	return v->journal_off + (uint64_t)slot * (1 + v->p);
}

static uint32_t rec_crc(const uint8_t *hdr, const uint8_t *data, uint32_t k)
{
	uint8_t tmp[RAID_BLOCK_SIZE];
	uint32_t crc;

	memcpy(tmp, hdr, RAID_BLOCK_SIZE);
	memset(tmp + 12, 0, 4);
	crc = fl_crc32c(0, tmp, RAID_BLOCK_SIZE);
	if (k > 0)
		crc = fl_crc32c(crc, data, (size_t)k * RAID_BLOCK_SIZE);
	return crc;
}

/* Sync every working disk of group g; caller holds journal_lock. */
static int sync_group(raid_vol_t *v, unsigned g)
{
	struct raid_gsnap s;

	raid_gsnap_take(v, g, &s);
	for (unsigned pos = 0; pos < v->w; pos++) {
		int e;

		if (!s.up[pos])
			continue;
		e = s.d[pos]->dev->ops->sync(s.d[pos]->dev);
		if (e == -FL_ECRASHED)
			return e;
		if (e != 0) {
			atomic_fetch_add(&s.d[pos]->write_errors, 1);
			raid_disk_fail(v, (size_t)(s.d[pos] - v->disks), e,
			    "sync error");
		}
	}
	return 0;
}

/* Take the next slot (J3); returns its seq. */
static int slot_acquire(raid_vol_t *v, unsigned g, uint64_t *seq,
    unsigned *slot)
{
	struct raid_journal *j = &v->groups[g].journal;
	int err = 0;

	pthread_mutex_lock(&v->journal_lock);
	*seq = j->next_seq++;
	*slot = (unsigned)(*seq % RAID_JOURNAL_SLOTS);
	for (;;) {
		if (j->slot[*slot] == JSLOT_FREE)
			break;
		if (j->slot[*slot] == JSLOT_WRITING) {
			pthread_cond_wait(&v->journal_cv, &v->journal_lock);
			continue;
		}
		/* UNSYNCED: one sync frees every slot finished before it. */
		bool was[RAID_JOURNAL_SLOTS];

		for (unsigned i = 0; i < RAID_JOURNAL_SLOTS; i++)
			was[i] = j->slot[i] == JSLOT_UNSYNCED;
		err = sync_group(v, g);
		if (err != 0)
			break;
		for (unsigned i = 0; i < RAID_JOURNAL_SLOTS; i++)
			if (was[i] && j->slot[i] == JSLOT_UNSYNCED)
				j->slot[i] = JSLOT_FREE;
		pthread_cond_broadcast(&v->journal_cv);
	}
	if (err == 0)
		j->slot[*slot] = JSLOT_WRITING;
	pthread_mutex_unlock(&v->journal_lock);
	return err;
}

void raid_journal_done(raid_vol_t *v, unsigned g, int slot)
{
	if (slot < 0)
		return;
	pthread_mutex_lock(&v->journal_lock);
	v->groups[g].journal.slot[slot] = JSLOT_UNSYNCED;
	pthread_cond_broadcast(&v->journal_cv);
	pthread_mutex_unlock(&v->journal_lock);
}

static int write_record(raid_vol_t *v, unsigned g, const struct raid_gsnap *s,
    uint32_t kind, uint64_t s0, uint64_t s1, unsigned k,
    const unsigned *pos, uint8_t *const *blocks, bool sync, int *slotp)
{
	uint8_t *buf = raid_balloc(1 + k);
	struct raid_gsnap now;
	uint64_t seq, gen;
	unsigned slot, tries = 0;
	bool bumped;
	int err;

	*slotp = -1;
	if (buf == NULL)
		return -ENOMEM;
	err = slot_acquire(v, g, &seq, &slot);
	if (err != 0) {
		free(buf);
		return err;
	}
	*slotp = (int)slot;
	/*
	 * J4 trusts a record of the labels' generation, and of the one
	 * before only with a single bump since.  A disk that fails while
	 * the record is written (its own write, or a sync) bumps that
	 * generation before the stripe is written: write the record again
	 * with the new generation, on the disks still working, so that a
	 * further bump during the stripe's write leaves it one behind at
	 * most.
	 */
again:
	pthread_mutex_lock(&v->state_lock);
	gen = v->generation;
	pthread_mutex_unlock(&v->state_lock);
	memset(buf, 0, RAID_BLOCK_SIZE);
	fl_put_le64(buf + 0, JRN_MAGIC);
	fl_put_le32(buf + 8, JRN_VERSION);
	memcpy(buf + 16, v->uuid, 16);
	fl_put_le32(buf + 32, g);
	fl_put_le32(buf + 36, kind);
	fl_put_le64(buf + 40, seq);
	fl_put_le64(buf + 48, gen);
	fl_put_le64(buf + 56, s0);
	fl_put_le64(buf + 64, s1);
	fl_put_le32(buf + 72, k);
	for (unsigned i = 0; i < k; i++) {
		fl_put_le32(buf + 76 + 4 * i, pos[i]);
		memcpy(buf + (size_t)(1 + i) * RAID_BLOCK_SIZE, blocks[i],
		    RAID_BLOCK_SIZE);
	}
	fl_put_le32(buf + 12, rec_crc(buf, buf + RAID_BLOCK_SIZE, k));
	raid_gsnap_take(v, g, &now);
	for (unsigned p = 0; p < v->w; p++) {
		struct raid_dev *d;
		int e;

		if (!s->up[p] || !now.up[p])
			continue;
		d = s->d[p]->dev;
		e = raid_dev_pwrite(d, buf, (size_t)(1 + k) * RAID_BLOCK_SIZE,
		    slot_block(v, slot) * RAID_BLOCK_SIZE);
		if (e == 0 && sync)
			e = d->ops->sync(d);	/* J1 */
		if (e == -FL_ECRASHED) {
			err = e;
			break;
		}
		if (e != 0) {
			atomic_fetch_add(&s->d[p]->write_errors, 1);
			raid_disk_fail(v, (size_t)(s->d[p] - v->disks), e,
			    "journal write error");
		}
	}
	if (err == 0 && tries++ <= v->p) {
		pthread_mutex_lock(&v->state_lock);
		bumped = v->generation != gen;
		pthread_mutex_unlock(&v->state_lock);
		if (bumped)
			goto again;
	}
	free(buf);
	if (err != 0) {
		raid_journal_done(v, g, (int)slot);
		*slotp = -1;
	}
	return err;
}

int raid_journal_log(raid_vol_t *v, unsigned g, const struct raid_gsnap *s,
    uint64_t stripe, unsigned nmiss, const unsigned *missing,
    uint8_t *const *blocks, int *slot)
{
	return write_record(v, g, s, JRN_DATA, stripe, stripe + 1, nmiss,
	    missing, blocks, true, slot);
}

int raid_journal_invalidate(raid_vol_t *v, unsigned g,
    const struct raid_gsnap *s, uint64_t s0, uint64_t s1, int *slot)
{
	return write_record(v, g, s, JRN_INVAL, s0, s1, 0, NULL, NULL, false,
	    slot);	/* J2 */
}

/* ---- recovery ---------------------------------------------------------- */

/*
 * J4: may recovery trust a record of generation gen in group g, whose
 * disks are s at open?
 */
static bool gen_trusted(const raid_vol_t *v, unsigned g,
    const struct raid_gsnap *s, uint64_t gen)
{
	const struct raid_group *grp = &v->groups[g];

	if (gen >= grp->label_gen)
		return true;
	if (gen + 1 != grp->label_gen)
		return false;
	for (unsigned p = 0; p < v->n; p++)
		if (!s->up[p] && !grp->label_out[p])
			return false;	/* found absent at open only */
	return true;
}

/*
 * Validate one slot (STYLE.md 6): 0 and *r filled; -ESTALE for a record
 * recovery must not trust (J4; *seq_any set); -FL_ECORRUPT otherwise,
 * with *why set when the record's checksum matched (it was written so,
 * not torn).
 */
static int decode_record(const raid_vol_t *v, unsigned g,
    const struct raid_gsnap *s, const uint8_t *b, struct raid_jrec *r,
    uint64_t *seq_any, const char **why)
{
	uint32_t k;

	*why = NULL;
	if (fl_get_le64(b) != JRN_MAGIC || fl_get_le32(b + 8) != JRN_VERSION)
		return -FL_ECORRUPT;
	k = fl_get_le32(b + 72);
	if (k > v->p)
		return -FL_ECORRUPT;
	if (rec_crc(b, b + RAID_BLOCK_SIZE, k) != fl_get_le32(b + 12))
		return -FL_ECORRUPT;
	if (memcmp(b + 16, v->uuid, 16) != 0 || fl_get_le32(b + 32) != g)
		return -FL_ECORRUPT;	/* not ours: a disk's earlier life */
	memset(r, 0, sizeof(*r));
	r->kind = fl_get_le32(b + 36);
	r->seq = fl_get_le64(b + 40);
	r->s0 = fl_get_le64(b + 56);
	r->s1 = fl_get_le64(b + 64);
	r->k = k;
	if (r->seq == 0 || r->seq > JRN_SEQ_MAX) {
		*why = "sequence number out of range";
		return -FL_ECORRUPT;
	}
	*seq_any = r->seq;
	if (!gen_trusted(v, g, s, fl_get_le64(b + 48)))
		return -ESTALE;		/* J4 */
	if (r->s0 >= r->s1 || r->s1 > v->disk_blocks) {
		*why = "stripe range out of the disk";
		return -FL_ECORRUPT;
	}
	if (r->kind == JRN_DATA) {
		if (k < 1 || r->s1 != r->s0 + 1) {
			*why = "data record not of one stripe and 1..P blocks";
			return -FL_ECORRUPT;
		}
	} else if (r->kind != JRN_INVAL || k != 0) {
		*why = "unknown kind, or blocks after an invalidation";
		return -FL_ECORRUPT;
	}
	for (unsigned i = 0; i < RAID_MAX_PARITY; i++) {
		uint32_t p = fl_get_le32(b + 76 + 4 * i);

		if (i >= k) {
			if (p != 0) {
				*why = "position past the record's blocks";
				return -FL_ECORRUPT;
			}
			continue;
		}
		if (p >= v->n || (i > 0 && p <= r->pos[i - 1])) {
			*why = "position not a data disk, or out of order";
			return -FL_ECORRUPT;
		}
		r->pos[i] = p;
	}
	for (size_t i = 88; i < RAID_BLOCK_SIZE; i++) {
		if (b[i] != 0) {
			*why = "reserved bytes not zero";
			return -FL_ECORRUPT;
		}
	}
	return 0;
}

void raid_journal_free(raid_vol_t *v, unsigned g)
{
	struct raid_jrec *recs = v->groups[g].journal.recs;

	if (recs == NULL)
		return;
	for (unsigned i = 0; i < RAID_JOURNAL_SLOTS; i++)
		free(recs[i].data);
	free(recs);
	v->groups[g].journal.recs = NULL;
}

int raid_journal_load(raid_vol_t *v, unsigned g)
{
	struct raid_journal *j = &v->groups[g].journal;
	const size_t sb = (size_t)(1 + v->p) * RAID_BLOCK_SIZE;
	uint8_t *buf = raid_balloc((size_t)RAID_JOURNAL_SLOTS * (1 + v->p));
	uint64_t maxseq = 0;
	struct raid_gsnap s;
	int err = 0;

	j->next_seq = 1;
	j->recs = calloc(RAID_JOURNAL_SLOTS, sizeof(*j->recs));
	if (buf == NULL || j->recs == NULL) {
		free(buf);
		return -ENOMEM;
	}
	raid_gsnap_take(v, g, &s);
	for (unsigned p = 0; p < v->w; p++) {
		if (!s.up[p])
			continue;
		if (raid_dev_pread(s.d[p]->dev, buf, RAID_JOURNAL_SLOTS * sb,
		    v->journal_off * RAID_BLOCK_SIZE) != 0)
			continue;	/* the data path will fail the disk */
		for (unsigned i = 0; i < RAID_JOURNAL_SLOTS; i++) {
			const uint8_t *b = buf + i * sb;
			struct raid_jrec r;
			uint64_t seq = 0;
			const char *why;
			int e = decode_record(v, g, &s, b, &r, &seq,
			    &why);

			if (e == 0 || e == -ESTALE)
				maxseq = FL_MAX(maxseq, seq);
			if (e == 0 && r.seq % RAID_JOURNAL_SLOTS != i) {
				e = -FL_ECORRUPT;
				why = "sequence number of another slot";
			}
			if (e == -FL_ECORRUPT && why != NULL)
				fl_err(RAID_SUBSYS, "degraded-write journal "
				    "slot %u on %s ignored: %s", i,
				    s.d[p]->path, why);
			if (e != 0 || (j->recs[i].kind != 0 &&
			    j->recs[i].seq >= r.seq))
				continue;
			free(j->recs[i].data);
			r.data = NULL;
			if (r.k > 0) {
				r.data = malloc((size_t)r.k * RAID_BLOCK_SIZE);
				if (r.data == NULL) {
					err = -ENOMEM;
					goto out;
				}
				memcpy(r.data, b + RAID_BLOCK_SIZE,
				    (size_t)r.k * RAID_BLOCK_SIZE);
			}
			j->recs[i] = r;
		}
	}
	j->next_seq = maxseq + 1;
out:
	free(buf);
	return err;
}

static bool newest_for(const struct raid_jrec *recs, unsigned i)
{
	for (unsigned q = 0; q < RAID_JOURNAL_SLOTS; q++)
		if (recs[q].kind != 0 && recs[q].seq > recs[i].seq &&
		    recs[q].s0 <= recs[i].s0 && recs[i].s0 < recs[q].s1)
			return false;
	return true;
}

int raid_journal_resync(raid_vol_t *v, unsigned g, const uint8_t *dirty,
    uint64_t *nstripes)
{
	const struct raid_jrec *recs = v->groups[g].journal.recs;
	const size_t B = RAID_BLOCK_SIZE;
	unsigned miss[RAID_MAX_DATA], nmiss = 0;
	uint8_t *st = raid_balloc(v->w);
	struct raid_gsnap s;
	int err = 0;

	*nstripes = 0;
	if (st == NULL)
		return -ENOMEM;
	raid_gsnap_take(v, g, &s);
	for (unsigned p = 0; p < v->n; p++)
		if (!s.up[p])
			miss[nmiss++] = p;
	for (unsigned i = 0; recs != NULL && i < RAID_JOURNAL_SLOTS && err == 0;
	    i++) {
		const struct raid_jrec *r = &recs[i];
		uint64_t region = r->s0 / RAID_REGION_STRIPES;
		uint8_t *d[RAID_MAX_DATA], *par[RAID_MAX_PARITY];
		bool covered = true;

		if (r->kind != JRN_DATA || nmiss == 0 ||
		    !((dirty[region / 8] >> (region % 8)) & 1) ||
		    !newest_for(recs, i))
			continue;
		for (unsigned m = 0; m < nmiss; m++) {
			bool found = false;

			for (unsigned k = 0; k < r->k; k++)
				if (r->pos[k] == miss[m]) {
					memcpy(st + miss[m] * B,
					    r->data + (size_t)k * B, B);
					found = true;
				}
			covered = covered && found;
		}
		if (!covered) {
			fl_err(RAID_SUBSYS, "group %u stripe %llu: journal "
			    "does not cover every missing data disk; parity "
			    "left as it is", g, (unsigned long long)r->s0);
			continue;
		}
		for (unsigned p = 0; p < v->n && err == 0; p++)
			if (s.up[p])
				err = raid_disk_read(v, s.d[p], st + p * B, 1,
				    r->s0);
		if (err != 0)
			break;
		for (unsigned p = 0; p < v->n; p++)
			d[p] = st + p * B;
		for (unsigned p = 0; p < v->p; p++)
			par[p] = st + (v->n + p) * B;
		raid_code_encode(&v->code, B, d, par);
		for (unsigned p = v->n; p < v->w && err == 0; p++) {
			if (!s.up[p])
				continue;
			err = raid_disk_write(v, s.d[p], st + p * B, 1, r->s0);
			if (err == -EIO)
				err = 0;
			else if (err == 0)
				CTR_ADD(v, parity_writes, 1);
		}
		if (err == 0)
			(*nstripes)++;
	}
	free(st);
	return err;
}
