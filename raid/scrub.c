/*
 * raid/scrub.c: verify every stripe's parity against its data.
 *
 * Per chunk of stripes, under the range lock: read every working position,
 * solve the other working positions from the first N of them (data before
 * parity, so in a healthy group this is "recompute parity from data"), and
 * compare.  A stripe with any difference is a mismatch (logged, event).
 * With repair, the differing blocks are rewritten with the solved values
 * under a write-intent ticket (R4); in a healthy group these are parity
 * blocks, the classic scrub repair.  A stripe with no redundancy left
 * (exactly N working disks) or more than P out cannot be verified and
 * counts as unreadable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/raid_impl.h"

static int scrub_chunk(raid_vol_t *v, unsigned g, uint64_t c0, uint32_t cn,
    bool repair, uint8_t *buf, uint8_t *exp, struct raid_scrub_result *res)
{
	const size_t stride = (size_t)cn * RAID_BLOCK_SIZE;
	unsigned rows_in[RAID_MAX_DATA], rows_out[RAID_MAX_WIDTH];
	uint8_t *src[RAID_MAX_DATA], *dst[RAID_MAX_WIDTH];
	bool all[RAID_MAX_WIDTH];
	struct raid_gsnap s;
	unsigned nin = 0, nout = 0;
	int err;

	raid_gsnap_take(v, g, &s);
	if (raid_crashed(v))
		return -FL_ECRASHED;
	if (s.nout >= v->p) {
		res->unreadable += cn;
		return 0;
	}
	for (unsigned pos = 0; pos < v->w; pos++) {
		all[pos] = s.up[pos];
		if (!s.up[pos])
			continue;
		if (nin < v->n) {
			rows_in[nin] = pos;
			src[nin++] = buf + pos * stride;
		} else {
			rows_out[nout] = pos;
			dst[nout++] = exp + pos * stride;
		}
	}
	err = raid_read_stripes_dm(v, g, &s, c0, cn, all, buf, NULL);
	if (err != 0)
		return err;
	err = raid_code_solve(&v->code, rows_in, src, nout, rows_out, dst,
	    stride);
	if (err != 0)
		return err;
	for (uint32_t k = 0; k < cn; k++) {
		size_t off = (size_t)k * RAID_BLOCK_SIZE;
		bool bad = false, fixed = true;
		uint64_t ticket;

		for (unsigned o = 0; o < nout; o++)
			if (memcmp(dst[o] + off, buf + rows_out[o] * stride +
			    off, RAID_BLOCK_SIZE) != 0)
				bad = true;
		res->stripes_checked++;
		if (!bad)
			continue;
		res->mismatches++;
		fl_warn(RAID_SUBSYS, "scrub: group %u stripe %llu: parity "
		    "does not match data%s", g, (unsigned long long)(c0 + k),
		    repair ? "; repairing" : "");
		raid_event(v, RAID_EV_SCRUB_MISMATCH, "group %u stripe %llu",
		    g, (unsigned long long)(c0 + k));
		if (!repair)
			continue;
		if (raid_intent_begin(v, g, c0 + k, c0 + k + 1, &ticket) != 0)
			continue;
		for (unsigned o = 0; o < nout; o++) {
			if (memcmp(dst[o] + off, buf + rows_out[o] * stride +
			    off, RAID_BLOCK_SIZE) == 0)
				continue;
			if (raid_disk_write(v, s.d[rows_out[o]], dst[o] + off,
			    1, c0 + k) != 0)
				fixed = false;
			else if (rows_out[o] >= v->n)
				CTR_ADD(v, parity_writes, 1);
		}
		raid_intent_end(v, ticket);
		if (fixed)
			res->repaired++;
	}
	return 0;
}

int raid_scrub(raid_vol_t *v, bool repair, struct raid_scrub_result *res)
{
	struct raid_scrub_result local;
	uint8_t *buf, *exp;
	int err = 0;

	if (res == NULL)
		res = &local;
	memset(res, 0, sizeof(*res));
	if (raid_crashed(v))
		return FL_ERR(-FL_ECRASHED);
	buf = raid_balloc((size_t)v->w * RAID_CHUNK_STRIPES);
	exp = raid_balloc((size_t)v->w * RAID_CHUNK_STRIPES);
	if (buf == NULL || exp == NULL) {
		free(buf);
		free(exp);
		return -ENOMEM;
	}
	atomic_store(&v->scrub_done, 0);
	atomic_store(&v->scrub_total, (uint64_t)v->ngroups * v->disk_blocks);
	atomic_store(&v->scrubbing, true);
	for (unsigned g = 0; g < v->ngroups && err == 0; g++) {
		for (uint64_t c0 = 0; c0 < v->disk_blocks && err == 0;) {
			uint32_t cn = (uint32_t)FL_MIN(v->disk_blocks - c0,
			    RAID_CHUNK_STRIPES);
			struct raid_range r;

			raid_range_lock(v, &r, g, c0, c0 + cn);
			err = scrub_chunk(v, g, c0, cn, repair, buf, exp, res);
			raid_range_unlock(v, &r);
			if (err == -EIO) {
				err = 0;	/* a disk failed: again */
				continue;
			}
			c0 += cn;
			atomic_fetch_add(&v->scrub_done, cn);
		}
	}
	atomic_store(&v->scrubbing, false);
	free(buf);
	free(exp);
	if (err == 0)
		fl_info(RAID_SUBSYS, "scrub: %llu stripes checked, %llu "
		    "mismatches, %llu repaired, %llu unverifiable",
		    (unsigned long long)res->stripes_checked,
		    (unsigned long long)res->mismatches,
		    (unsigned long long)res->repaired,
		    (unsigned long long)res->unreadable);
	return err;
}
