/*
 * raid/intent.c: the write-intent bitmap, the answer to the RAID write hole
 * (R4), in the manner of Linux md's bitmap.
 *
 * One bit per region of RAID_REGION_STRIPES (1024) stripes of a group.  The
 * group's bitmap is replicated on every disk of the group, in blocks
 * intent_off .. intent_off+nblocks-1.  Each 4096-byte block:
 *
 *   off  size  field
 *     0     8  magic        "FLRDINT1" (0x31544e4944524c46)
 *     8     4  version      1
 *    12     4  crc32c       of the block with this field zero
 *    16    16  volume uuid
 *    32     4  group
 *    36     4  block index  0 .. nblocks-1
 *    40     4  nregions     regions of the group (all blocks)
 *    44     4  reserved     zero
 *    48     8  seq          bitmap write counter
 *    56     8  reserved     zero
 *    64  4032  bits         region r: byte (r % 32256) / 8, bit r % 8 of
 *                           block r / 32256; bits past nregions are zero
 *
 * Protocol.  A writer of stripes [s0, s1) calls raid_intent_begin: the
 * regions are marked in the current epoch; any region not already set on
 * disk is set and the bitmap written and fdatasync'ed on every working
 * disk of the group before the writer touches a stripe.  raid_flush closes
 * the epoch: it waits until every writer of the epoch has finished, syncs
 * every disk (R2), and then the on-disk bits become exactly the regions
 * marked by writers of the new epoch; the bitmap is rewritten without a
 * sync (a later mark or the close's label sync carries it).  A bit is thus
 * clear on disk only when every write to its region is durable.
 *
 * Marks ahead.  Every mark costs a synchronous bitmap write and sync on
 * every disk of the group before the writer may go on, and a sync costs
 * what the device has to write back by then (about 6 ms here under a
 * large write: a region is 16 MiB of data on a 4+1 group).  A writer that
 * moves through the disk (a CP's write-out, a mirror baseline) would pay
 * it at every region.  So a mark that has to be written anyway also sets
 * the INTENT_AHEAD regions that follow the writer's, and those stay set
 * on disk through INTENT_AHEAD_EPOCHS flushes even unwritten: the writer
 * finds them marked.  Only for a writer that moves through the disk: one
 * whose write starts in the region where one of the group's last
 * RAID_INTENT_FRONTS writes ended, or the next (not the first write since
 * open; several, as a walk moves two fronts at once).  Extra set bits cost
 * resync work after a crash, so scattered writes, whose next region is
 * anyone's guess, mark only their own.  The marks ahead live in
 * [ahead_lo, ahead_hi) of ahead_until, so a flush scans only that range,
 * and a clean close drops them before its flush (raid_intent_drop_ahead):
 * it leaves no bit set.
 *
 * Open of a volume whose labels say "not clean" ORs the valid copies of
 * each group's bitmap (a copy with a bad checksum is ignored; no valid copy
 * at all marks every region) and recomputes the parity of every stripe of
 * the marked regions from its data before any I/O is served.  If a data
 * disk of the group is out, the stripe cannot be resynced (its data is
 * partly unknown); this is logged, as md does for a dirty degraded array.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/raid_impl.h"

#define INTENT_MAGIC		0x31544e4944524c46ull	/* "FLRDINT1" */
#define INTENT_AHEAD		8u	/* regions marked past a writer's */
#define INTENT_AHEAD_EPOCHS	8u	/* flushes they stay marked through */
#define INTENT_VERSION		1u
#define INTENT_HDR		64u
#define INTENT_BITS_PER_BLOCK	((RAID_BLOCK_SIZE - INTENT_HDR) * 8u)

_Static_assert(INTENT_BITS_PER_BLOCK == 32256, "intent block layout");

uint32_t raid_intent_nblocks(uint64_t disk_blocks)
{
	uint64_t nreg = FL_DIV_ROUND_UP(disk_blocks, RAID_REGION_STRIPES);

	return (uint32_t)FL_MAX(1, FL_DIV_ROUND_UP(nreg,
	    INTENT_BITS_PER_BLOCK));
}

static size_t bits_bytes(uint32_t nblocks)
{
	return (size_t)nblocks * (RAID_BLOCK_SIZE - INTENT_HDR);
}

static bool bit_get(const uint8_t *b, uint64_t r)
{
	return (b[r / 8] >> (r % 8)) & 1;
}

static void bit_set(uint8_t *b, uint64_t r)
{
	b[r / 8] |= (uint8_t)(1u << (r % 8));
}

static void encode_blocks(const uint8_t uuid[16], unsigned g,
    uint32_t nblocks, uint32_t nregions, uint64_t seq, const uint8_t *bits,
    uint8_t *out)
{
	for (uint32_t bi = 0; bi < nblocks; bi++) {
		uint8_t *b = out + (size_t)bi * RAID_BLOCK_SIZE;

		memset(b, 0, RAID_BLOCK_SIZE);
		fl_put_le64(b + 0, INTENT_MAGIC);
		fl_put_le32(b + 8, INTENT_VERSION);
		memcpy(b + 16, uuid, 16);
		fl_put_le32(b + 32, g);
		fl_put_le32(b + 36, bi);
		fl_put_le32(b + 40, nregions);
		fl_put_le64(b + 48, seq);
		if (bits != NULL)
			memcpy(b + INTENT_HDR, bits + (size_t)bi *
			    (RAID_BLOCK_SIZE - INTENT_HDR),
			    RAID_BLOCK_SIZE - INTENT_HDR);
		fl_put_le32(b + 12, fl_crc32c(0, b, RAID_BLOCK_SIZE));
	}
}

/* Validate one copy (STYLE.md 6); on success OR its bits into bits. */
static int decode_blocks(const raid_vol_t *v, unsigned g, const uint8_t *in,
    uint8_t *bits, const char **why)
{
	const struct raid_intent *in_ = &v->groups[g].intent;
	uint8_t *tmp = calloc(1, bits_bytes(in_->nblocks));

	if (tmp == NULL)
		return -ENOMEM;
	for (uint32_t bi = 0; bi < in_->nblocks; bi++) {
		const uint8_t *b = in + (size_t)bi * RAID_BLOCK_SIZE;
		uint8_t blk[RAID_BLOCK_SIZE];

		memcpy(blk, b, RAID_BLOCK_SIZE);
		memset(blk + 12, 0, 4);
		if (fl_get_le64(b) != INTENT_MAGIC) {
			*why = "bad magic";
			goto bad;
		}
		if (fl_crc32c(0, blk, RAID_BLOCK_SIZE) != fl_get_le32(b + 12)) {
			*why = "bad checksum";
			goto bad;
		}
		if (fl_get_le32(b + 8) != INTENT_VERSION ||
		    memcmp(b + 16, v->uuid, 16) != 0 ||
		    fl_get_le32(b + 32) != g || fl_get_le32(b + 36) != bi ||
		    fl_get_le32(b + 40) != in_->nregions ||
		    fl_get_le32(b + 44) != 0 || fl_get_le64(b + 56) != 0) {
			*why = "header fields out of range";
			goto bad;
		}
		memcpy(tmp + (size_t)bi * (RAID_BLOCK_SIZE - INTENT_HDR),
		    b + INTENT_HDR, RAID_BLOCK_SIZE - INTENT_HDR);
	}
	for (uint64_t r = in_->nregions;
	    r < (uint64_t)in_->nblocks * INTENT_BITS_PER_BLOCK; r++)
		if (bit_get(tmp, r)) {
			*why = "bits set past the last region";
			goto bad;
		}
	for (size_t i = 0; i < bits_bytes(in_->nblocks); i++)
		bits[i] |= tmp[i];
	free(tmp);
	return 0;
bad:
	free(tmp);
	return -FL_ECORRUPT;
}

int raid_intent_write_empty(struct raid_dev *dev, const uint8_t uuid[16],
    unsigned g, uint64_t intent_off, uint32_t nblocks, uint32_t nregions)
{
	uint8_t *buf = raid_balloc(nblocks);
	int err;

	if (buf == NULL)
		return -ENOMEM;
	encode_blocks(uuid, g, nblocks, nregions, 0, NULL, buf);
	err = raid_dev_pwrite(dev, buf, (size_t)nblocks * RAID_BLOCK_SIZE,
	    intent_off * RAID_BLOCK_SIZE);
	free(buf);
	return err;
}

int raid_intent_init(raid_vol_t *v)
{
	for (unsigned g = 0; g < v->ngroups; g++) {
		struct raid_intent *in = &v->groups[g].intent;
		size_t bytes;

		in->nregions = (uint32_t)FL_DIV_ROUND_UP(v->disk_blocks,
		    RAID_REGION_STRIPES);
		in->nblocks = raid_intent_nblocks(v->disk_blocks);
		bytes = bits_bytes(in->nblocks);
		in->ondisk = calloc(1, bytes);
		in->marked[0] = calloc(1, bytes);
		in->marked[1] = calloc(1, bytes);
		in->ahead_until = calloc(in->nregions,
		    sizeof(*in->ahead_until));
		if (!in->ondisk || !in->marked[0] || !in->marked[1] ||
		    !in->ahead_until)
			return -ENOMEM;
	}
	return 0;
}

void raid_intent_free(raid_vol_t *v)
{
	if (v->groups == NULL)
		return;
	for (unsigned g = 0; g < v->ngroups; g++) {
		struct raid_intent *in = &v->groups[g].intent;

		free(in->ondisk);
		free(in->marked[0]);
		free(in->marked[1]);
		free(in->ahead_until);
	}
}

/* Write group g's on-disk bits to one disk; caller holds intent_lock. */
static int write_one(raid_vol_t *v, unsigned g, struct raid_disk *d,
    const uint8_t *enc, bool sync)
{
	struct raid_intent *in = &v->groups[g].intent;
	int err;

	err = raid_dev_pwrite(d->dev, enc, (size_t)in->nblocks *
	    RAID_BLOCK_SIZE, v->intent_off * RAID_BLOCK_SIZE);
	if (err == 0 && sync)
		err = d->dev->ops->sync(d->dev);
	if (err == 0)
		CTR_ADD(v, intent_writes, in->nblocks);
	return err;
}

/* Write group g's bitmap to every working disk; caller holds intent_lock. */
static int write_group_bitmap(raid_vol_t *v, unsigned g, bool sync)
{
	struct raid_intent *in = &v->groups[g].intent;
	uint8_t *enc = raid_balloc(in->nblocks);
	struct raid_gsnap s;
	struct raid_batch b;
	int err = 0;

	if (enc == NULL)
		return -ENOMEM;
	in->seq++;
	encode_blocks(v->uuid, g, in->nblocks, in->nregions, in->seq,
	    in->ondisk, enc);
	raid_gsnap_take(v, g, &s);
	/* Every disk at once: the writes, then (R4) the syncs. */
	raid_batch_init(&b);
	for (unsigned pos = 0; pos < v->w; pos++) {
		struct iovec iov = { enc, (size_t)in->nblocks *
		    RAID_BLOCK_SIZE };

		if (s.up[pos])
			(void)raid_batch_add_at(v, &b, s.d[pos],
			    RAID_BOP_WRITE, &iov, 1,
			    v->intent_off * RAID_BLOCK_SIZE);
	}
	err = raid_batch_wait(v, &b);
	for (unsigned i = 0; i < b.n; i++)
		if (b.err[i] == 0)
			CTR_ADD(v, intent_writes, in->nblocks);
	if (err != -FL_ECRASHED && sync) {
		struct raid_batch y;

		raid_batch_init(&y);
		for (unsigned i = 0; i < b.n; i++)
			if (b.err[i] == 0)
				(void)raid_batch_add(v, &y, b.d[i],
				    RAID_BOP_SYNC, NULL, 0, 0);
		err = raid_batch_wait(v, &y);
	}
	free(enc);
	return err == -FL_ECRASHED ? err : 0;
}

int raid_intent_begin(raid_vol_t *v, unsigned g, uint64_t s0, uint64_t s1,
    uint64_t *ticket)
{
	struct raid_intent *in = &v->groups[g].intent;
	bool need = false;
	int err = 0;

	pthread_mutex_lock(&v->intent_lock);
	*ticket = v->epoch;
	v->inflight[v->epoch & 1]++;
	for (uint64_t r = s0 / RAID_REGION_STRIPES;
	    r <= (s1 - 1) / RAID_REGION_STRIPES; r++) {
		bit_set(in->marked[v->epoch & 1], r);
		if (!bit_get(in->ondisk, r)) {
			bit_set(in->ondisk, r);
			need = true;
		}
	}
	/* Moving through the disk: starts in the region where one of the
	 * group's last RAID_INTENT_FRONTS writes ended, or the next (front
	 * holds that region plus 1; 0 for none).  Several fronts, because
	 * a writer that moves through the disk may have two at once: a
	 * mirror's walk writes the data a CP laid out and, a few regions
	 * further on, the pointer blocks allocated among it. */
	uint64_t r0 = s0 / RAID_REGION_STRIPES;
	uint64_t r1 = (s1 - 1) / RAID_REGION_STRIPES;
	unsigned f = RAID_INTENT_FRONTS;
	for (unsigned i = 0; i < RAID_INTENT_FRONTS && f == RAID_INTENT_FRONTS;
	    i++)
		if (in->front[i] > 0 && (r0 + 1 == in->front[i] ||
		    r0 == in->front[i]))
			f = i;
	bool moving = f < RAID_INTENT_FRONTS;
	if (!moving) {
		f = in->front_next;
		in->front_next = (f + 1) % RAID_INTENT_FRONTS;
	}
	in->front[f] = r1 + 1;
	if (need) {
		/* Written anyway: the regions after the writer's too. */
		for (uint64_t r = r1 + 1; moving && r <= r1 + INTENT_AHEAD &&
		    r < in->nregions; r++) {
			bit_set(in->ondisk, r);
			in->ahead_until[r] = v->epoch + INTENT_AHEAD_EPOCHS;
			in->ahead_lo = in->ahead_lo < in->ahead_hi ?
			    FL_MIN(in->ahead_lo, (uint32_t)r) : (uint32_t)r;
			in->ahead_hi = FL_MAX(in->ahead_hi, (uint32_t)r + 1);
		}
		err = write_group_bitmap(v, g, true);	/* R4 */
	}
	if (err != 0) {
		/* The caller will not write: give the ticket back. */
		if (--v->inflight[*ticket & 1] == 0)
			pthread_cond_broadcast(&v->intent_cv);
	}
	pthread_mutex_unlock(&v->intent_lock);
	return err;
}

/*
 * The marks ahead still live once the flush closing epoch e is done are
 * set in bits; the others (all of them for bits NULL) are dropped.  A
 * mark ahead made in epoch m lives through the flushes that close m ..
 * m + INTENT_AHEAD_EPOCHS - 1.  intent_lock held.
 */
static void ahead_keep(struct raid_intent *in, uint64_t e, uint8_t *bits)
{
	uint32_t lo = UINT32_MAX, hi = 0;

	for (uint32_t r = in->ahead_lo; r < in->ahead_hi; r++) {
		if (bits != NULL && in->ahead_until[r] > e) {
			bit_set(bits, r);
			lo = FL_MIN(lo, r);
			hi = r + 1;
		} else {
			in->ahead_until[r] = 0;
		}
	}
	in->ahead_lo = hi > 0 ? lo : 0;
	in->ahead_hi = hi;
}

void raid_intent_drop_ahead(raid_vol_t *v)
{
	pthread_mutex_lock(&v->intent_lock);
	for (unsigned g = 0; g < v->ngroups; g++)
		ahead_keep(&v->groups[g].intent, 0, NULL);
	pthread_mutex_unlock(&v->intent_lock);
}

void raid_intent_end(raid_vol_t *v, uint64_t ticket)
{
	pthread_mutex_lock(&v->intent_lock);
	if (--v->inflight[ticket & 1] == 0)
		pthread_cond_broadcast(&v->intent_cv);
	pthread_mutex_unlock(&v->intent_lock);
}

static int sync_all(raid_vol_t *v)
{
	struct raid_disk *ds[RAID_MAX_GROUPS * RAID_MAX_WIDTH +
	    RAID_MAX_SPARES];
	size_t nd = 0;
	int err = 0;

	pthread_mutex_lock(&v->state_lock);
	for (size_t i = 0; i < v->ndisks && nd < FL_ARRAY_SIZE(ds); i++) {
		struct raid_disk *d = &v->disks[i];

		if (d->dev != NULL && (d->state == RAID_DISK_OK ||
		    d->state == RAID_DISK_REBUILDING))
			ds[nd++] = d;
	}
	pthread_mutex_unlock(&v->state_lock);
	/* Many disks at once; a disk that fails is out (R5). */
	for (size_t i = 0; i < nd;) {
		struct raid_batch b;

		raid_batch_init(&b);
		for (; i < nd && b.n < RAID_BATCH_MAX; i++)
			(void)raid_batch_add(v, &b, ds[i], RAID_BOP_SYNC, NULL,
			    0, 0);
		if (raid_batch_wait(v, &b) == -FL_ECRASHED)
			return -FL_ECRASHED;
	}
	for (unsigned g = 0; g < v->ngroups && err == 0; g++) {
		struct raid_gsnap s;

		raid_gsnap_take(v, g, &s);
		err = raid_group_check(v, g, &s);
	}
	return err;
}

int raid_intent_flush(raid_vol_t *v)
{
	uint64_t e;
	int err;

	pthread_mutex_lock(&v->flush_lock);
	pthread_mutex_lock(&v->intent_lock);
	e = v->epoch++;
	while (v->inflight[e & 1] > 0)
		pthread_cond_wait(&v->intent_cv, &v->intent_lock);
	pthread_mutex_unlock(&v->intent_lock);

	err = sync_all(v);	/* R2 */
	if (err == 0)
		err = raid_labels_record_failures(v);
	if (err != 0)
		goto out;

	pthread_mutex_lock(&v->intent_lock);
	for (unsigned g = 0; g < v->ngroups && err == 0; g++) {
		struct raid_intent *in = &v->groups[g].intent;
		size_t bytes = bits_bytes(in->nblocks);
		uint8_t *next = in->marked[e & 1];	/* reused below */

		/* Marked by writers of the new epoch, or ahead and not yet
		 * expired. */
		memcpy(next, in->marked[(e + 1) & 1], bytes);
		ahead_keep(in, e, next);
		if (memcmp(in->ondisk, next, bytes) != 0) {
			memcpy(in->ondisk, next, bytes);
			err = write_group_bitmap(v, g, false);
		}
		memset(next, 0, bytes);
	}
	pthread_mutex_unlock(&v->intent_lock);
out:
	pthread_mutex_unlock(&v->flush_lock);
	return err;
}

int raid_intent_write_disk(raid_vol_t *v, unsigned g, struct raid_disk *d)
{
	struct raid_intent *in = &v->groups[g].intent;
	uint8_t *enc = raid_balloc(in->nblocks);
	int err;

	if (enc == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&v->intent_lock);
	in->seq++;
	encode_blocks(v->uuid, g, in->nblocks, in->nregions, in->seq,
	    in->ondisk, enc);
	err = write_one(v, g, d, enc, true);
	pthread_mutex_unlock(&v->intent_lock);
	free(enc);
	return err;
}

/* Recompute parity of stripes [s0, s1) of group g from their data. */
static int resync_range(raid_vol_t *v, unsigned g, uint64_t s0, uint64_t s1,
    uint8_t *buf)
{
	for (uint64_t c0 = s0; c0 < s1;) {
		uint32_t cn = (uint32_t)FL_MIN(s1 - c0, RAID_CHUNK_STRIPES);
		size_t stride = (size_t)cn * RAID_BLOCK_SIZE;
		uint8_t *d[RAID_MAX_DATA], *p[RAID_MAX_PARITY];
		struct raid_gsnap s;
		int err;

		raid_gsnap_take(v, g, &s);
		err = raid_group_check(v, g, &s);
		if (err != 0)
			return err;
		for (unsigned j = 0; j < v->n; j++)
			if (!s.up[j])
				return -FL_EDEGRADED;
		err = raid_read_stripes_dm(v, g, &s, c0, cn, NULL, buf, NULL);
		if (err == -EIO)
			continue;	/* a disk failed: look again */
		if (err != 0)
			return err;
		for (unsigned j = 0; j < v->n; j++)
			d[j] = buf + j * stride;
		for (unsigned i = 0; i < v->p; i++)
			p[i] = buf + (v->n + i) * stride;
		raid_code_encode(&v->code, stride, d, p);
		for (unsigned i = 0; i < v->p; i++) {
			if (!s.up[v->n + i])
				continue;
			err = raid_disk_write(v, s.d[v->n + i], p[i], cn, c0);
			if (err == -FL_ECRASHED)
				return err;
			if (err == 0)
				CTR_ADD(v, parity_writes, cn);
		}
		c0 += cn;
	}
	return 0;
}

int raid_intent_recover(raid_vol_t *v, bool unclean)
{
	uint8_t *buf = raid_balloc((size_t)v->w * RAID_CHUNK_STRIPES);
	int err = 0;

	if (buf == NULL)
		return -ENOMEM;
	for (unsigned g = 0; g < v->ngroups && err == 0; g++) {
		struct raid_intent *in = &v->groups[g].intent;
		uint8_t *enc = raid_balloc(in->nblocks);
		uint64_t nres = 0, nskip = 0;
		unsigned nvalid = 0;
		struct raid_gsnap s;

		if (enc == NULL) {
			err = -ENOMEM;
			break;
		}
		raid_gsnap_take(v, g, &s);
		for (unsigned pos = 0; pos < v->w; pos++) {
			const char *why = "";
			int e;

			if (!s.up[pos])
				continue;
			e = raid_dev_pread(s.d[pos]->dev, enc,
			    (size_t)in->nblocks * RAID_BLOCK_SIZE,
			    v->intent_off * RAID_BLOCK_SIZE);
			if (e == 0 && decode_blocks(v, g, enc, in->ondisk,
			    &why) == 0) {
				nvalid++;
				continue;
			}
			if (e == 0)
				fl_warn(RAID_SUBSYS, "write-intent bitmap on "
				    "%s ignored: %s", s.d[pos]->path, why);
		}
		free(enc);
		err = raid_journal_load(v, g);
		if (err != 0 || !unclean)
			continue;
		if (nvalid == 0) {
			fl_warn(RAID_SUBSYS, "group %u: no valid write-intent "
			    "bitmap; resyncing every region", g);
			for (uint64_t r = 0; r < in->nregions; r++)
				bit_set(in->ondisk, r);
		}
		for (uint64_t r = 0; r < in->nregions && err == 0; r++) {
			uint64_t s0 = r * RAID_REGION_STRIPES;
			uint64_t s1 = FL_MIN(s0 + RAID_REGION_STRIPES,
			    v->disk_blocks);

			if (!bit_get(in->ondisk, r))
				continue;
			err = resync_range(v, g, s0, s1, buf);
			if (err == -FL_EDEGRADED) {
				nskip++;	/* a data disk is out */
				err = 0;
				continue;
			}
			nres++;
		}
		if (nskip > 0 && err == 0) {
			uint64_t nj = 0;

			err = raid_journal_resync(v, g, in->ondisk, &nj);
			fl_warn(RAID_SUBSYS, "group %u: %llu dirty region(s) "
			    "with a data disk out: parity of %llu journaled "
			    "stripe(s) recomputed from the degraded-write "
			    "journal", g, (unsigned long long)nskip,
			    (unsigned long long)nj);
		}
		if (nres > 0 || nskip > 0) {
			fl_warn(RAID_SUBSYS, "group %u: resynced parity of %llu "
			    "region(s) after an unclean shutdown", g,
			    (unsigned long long)nres);
			raid_event(v, RAID_EV_RESYNC, "group %u: resynced %llu "
			    "region(s) of %u stripes, %llu by journal", g,
			    (unsigned long long)nres, RAID_REGION_STRIPES,
			    (unsigned long long)nskip);
		}
	}
	free(buf);
	/* Resynced parity durable, then the bits cleared (R4). */
	if (err == 0 && unclean)
		err = raid_intent_flush(v);
	return err;
}
