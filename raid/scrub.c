/*
 * raid/scrub.c: verify every stripe's parity against its data.
 *
 * Per chunk of stripes, under the range lock: read every working position,
 * solve the other working positions from the first N of them (data before
 * parity, so in a healthy group this is "recompute parity from data"), and
 * compare.  A stripe with any difference is a mismatch (logged, event).
 * With repair and two or more redundant blocks (P >= 2, at most P-2 out),
 * the single block whose removal makes the stripe consistent is found and
 * rewritten, data or parity; otherwise (P = 1, or no single culprit) the
 * differing blocks are rewritten with the values solved from the first N,
 * i.e. parity recomputed from data, the classic scrub repair.  Rewrites
 * hold a write-intent ticket (R4).  A stripe with no redundancy left
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

/*
 * With two or more redundant blocks in a stripe, find the one block whose
 * removal makes the rest consistent: the silently corrupt one, data or
 * parity.  blk[pos] points at the stripe's block at each working position.
 * Returns the position, or -1 if no single block explains the mismatch;
 * *fix receives its correct contents.
 */
int raid_locate_bad(raid_vol_t *v, const struct raid_gsnap *s,
    uint8_t *const *blk, uint8_t *tmp, uint8_t *fix)
{
	const size_t B = RAID_BLOCK_SIZE;
	int found = -1;

	for (unsigned x = 0; x < v->w; x++) {
		unsigned in[RAID_MAX_DATA], out[RAID_MAX_WIDTH], nin = 0;
		unsigned nout = 0;
		uint8_t *src[RAID_MAX_DATA], *dst[RAID_MAX_WIDTH];
		bool ok = true;

		if (!s->up[x])
			continue;
		for (unsigned p = 0; p < v->w; p++) {
			if (!s->up[p] || p == x)
				continue;
			if (nin < v->n) {
				in[nin] = p;
				src[nin++] = blk[p];
			} else {
				out[nout] = p;
				dst[nout] = tmp + (size_t)nout * B;
				nout++;
			}
		}
		out[nout] = x;
		dst[nout] = tmp + (size_t)nout * B;
		if (nin < v->n || nout == 0 || raid_code_solve(&v->code, in,
		    src, nout + 1, out, dst, B) != 0)
			continue;
		for (unsigned o = 0; o < nout && ok; o++)
			ok = memcmp(dst[o], blk[out[o]], B) == 0;
		if (!ok)
			continue;
		if (found >= 0)
			return -1;	/* ambiguous */
		found = (int)x;
		memcpy(fix, dst[nout], B);
	}
	return found;
}

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
		if (nout >= 2) {
			uint8_t *blk[RAID_MAX_WIDTH];
			uint8_t *tmp = raid_balloc(v->w + 1);
			int culprit;

			if (tmp == NULL) {
				raid_intent_end(v, ticket);
				return -ENOMEM;
			}
			for (unsigned p = 0; p < v->w; p++)
				blk[p] = buf + p * stride + off;
			culprit = raid_locate_bad(v, &s, blk, tmp,
			    tmp + (size_t)v->w * RAID_BLOCK_SIZE);
			if (culprit >= 0) {
				fl_warn(RAID_SUBSYS, "scrub: group %u stripe "
				    "%llu: the %s block at position %d is the "
				    "wrong one; rewriting it", g,
				    (unsigned long long)(c0 + k),
				    culprit < (int)v->n ? "data" : "parity",
				    culprit);
				if (raid_disk_write(v, s.d[culprit], tmp +
				    (size_t)v->w * RAID_BLOCK_SIZE, 1,
				    c0 + k) == 0)
					res->repaired++;
				free(tmp);
				raid_intent_end(v, ticket);
				continue;
			}
			free(tmp);
		}
		/*
		 * No single culprit (or P = 1, where none can be located):
		 * the first N working blocks, the data, are trusted and the
		 * rest rewritten from them.  Say so: if a data block was the
		 * damaged one, it stays damaged and parity now agrees with
		 * it (only wafl's checksums can tell).
		 */
		fl_warn(RAID_SUBSYS, "scrub: group %u stripe %llu: %s; "
		    "trusting the data: parity rewritten from it (a damaged "
		    "data block would stay damaged)", g,
		    (unsigned long long)(c0 + k), nout >= 2 ?
		    "no single block explains the mismatch" :
		    "with one redundant block the wrong one cannot be "
		    "located");
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
