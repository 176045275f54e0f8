/*
 * raid/io.c: the read and write paths (R1, R3, R5).
 *
 * Reads.  A read that touches no block of an out disk goes straight into
 * the caller's buffer, one preadv per data disk (no locks).  Otherwise the
 * stripes are read under the range lock as a disk-major buffer, the
 * missing blocks solved from any N survivors (parity.c), and copied out.
 *
 * Writes.  Whole stripes: parity computed from the caller's buffer, then
 * one pwritev per disk for a run of up to RAID_CHUNK_STRIPES consecutive
 * stripes; nothing is read (R3).  A ragged end: reconstruct-write (read the
 * stripe's other data blocks, or in a degraded group every survivor and
 * solve, then recompute all parity).  Both hold the range lock of their
 * stripes and the write-intent ticket of R4 for the whole write.
 *
 * Disks at once.  Every path starts the I/O of all the disks it needs
 * (struct raid_batch, on the disks' workers of deadline.c) before waiting
 * for any of them, so the disks work in parallel and a silent disk costs
 * one timeout, not one per disk.
 *
 * Errors.  A device error, or no answer within the I/O timeout, fails the
 * disk (R5, raid_disk_fail) and comes back as -EIO; the operation takes a
 * new snapshot of the group and runs again on the survivors, at most P+1
 * times.  A write whose disk fails
 * needs no retry: the stripe is consistent on the survivors.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/raid_impl.h"

#define IOV_MAX_BATCH	1024

void *raid_balloc(size_t nblocks)
{
	return aligned_alloc(RAID_BLOCK_SIZE,
	    (nblocks ? nblocks : 1) * RAID_BLOCK_SIZE);
}

void *raid_scratch_get(raid_vol_t *v)
{
	void *b = NULL;

	pthread_mutex_lock(&v->scratch_lock);
	if (v->nscratch > 0)
		b = v->scratch[--v->nscratch];
	pthread_mutex_unlock(&v->scratch_lock);
	if (b == NULL)
		b = raid_balloc((size_t)(v->w + 1) * RAID_CHUNK_STRIPES);
	return b;
}

void raid_scratch_put(raid_vol_t *v, void *buf)
{
	if (buf == NULL)
		return;
	pthread_mutex_lock(&v->scratch_lock);
	if (v->nscratch < RAID_SCRATCH_KEEP) {
		v->scratch[v->nscratch++] = buf;
		buf = NULL;
	}
	pthread_mutex_unlock(&v->scratch_lock);
	free(buf);
}

/* ---- range locks ------------------------------------------------------- */

static bool overlaps(const struct raid_range *a, unsigned g, uint64_t s0,
    uint64_t s1)
{
	return a->group == g && a->s0 < s1 && s0 < a->s1;
}

static bool range_busy(const raid_vol_t *v, unsigned g, uint64_t s0,
    uint64_t s1)
{
	for (const struct raid_range *a = v->ranges; a; a = a->next)
		if (overlaps(a, g, s0, s1))
			return true;
	return false;
}

void raid_range_lock(raid_vol_t *v, struct raid_range *r, unsigned g,
    uint64_t s0, uint64_t s1)
{
	r->group = g;
	r->s0 = s0;
	r->s1 = s1;
	pthread_mutex_lock(&v->range_mu);
	while (range_busy(v, g, s0, s1))
		pthread_cond_wait(&v->range_cv, &v->range_mu);
	r->next = v->ranges;
	v->ranges = r;
	pthread_mutex_unlock(&v->range_mu);
}

/* raid_range_lock if nobody holds any of the range; false: not taken. */
static bool range_trylock(raid_vol_t *v, struct raid_range *r, unsigned g,
    uint64_t s0, uint64_t s1)
{
	bool busy;

	r->group = g;
	r->s0 = s0;
	r->s1 = s1;
	pthread_mutex_lock(&v->range_mu);
	busy = range_busy(v, g, s0, s1);
	if (!busy) {
		r->next = v->ranges;
		v->ranges = r;
	}
	pthread_mutex_unlock(&v->range_mu);
	return !busy;
}

void raid_range_unlock(raid_vol_t *v, struct raid_range *r)
{
	pthread_mutex_lock(&v->range_mu);
	for (struct raid_range **pp = &v->ranges; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	pthread_cond_broadcast(&v->range_cv);
	pthread_mutex_unlock(&v->range_mu);
}

/* ---- disk I/O with failure handling (R5) ------------------------------- */

static int disk_error(raid_vol_t *v, struct raid_disk *d, int err,
    enum raid_bop op)
{
	static const char *const why[] = {
		[RAID_BOP_READ] = "read error",
		[RAID_BOP_WRITE] = "write error",
		[RAID_BOP_SYNC] = "sync error",
		[RAID_BOP_READ_RANDOM] = "read error",
	};

	if (err == -FL_ECRASHED)
		return err;
	if (op == RAID_BOP_READ || op == RAID_BOP_READ_RANDOM)
		atomic_fetch_add(&d->read_errors, 1);
	else
		atomic_fetch_add(&d->write_errors, 1);
	raid_disk_fail(v, (size_t)(d - v->disks), err, why[op]);
	return -EIO;
}

/* One disk's I/O of nblocks at block, failing the disk on error (R5). */
static int disk_rw(raid_vol_t *v, struct raid_disk *d, bool write,
    const void *buf, uint64_t nblocks, uint64_t block)
{
	struct iovec iov = { (void *)buf, nblocks * RAID_BLOCK_SIZE };
	uint64_t off = raid_disk_off(v, block);
	int err;

	if (d == NULL || d->dev == NULL)
		return -EIO;
	err = write ? d->dev->ops->pwritev(d->dev, &iov, 1, off) :
	    d->dev->ops->preadv(d->dev, &iov, 1, off, 0);
	return err == 0 ? 0 : disk_error(v, d, err,
	    write ? RAID_BOP_WRITE : RAID_BOP_READ);
}

int raid_disk_read(raid_vol_t *v, struct raid_disk *d, void *buf,
    uint64_t nblocks, uint64_t block)
{
	return disk_rw(v, d, false, buf, nblocks, block);
}

int raid_disk_write(raid_vol_t *v, struct raid_disk *d, const void *buf,
    uint64_t nblocks, uint64_t block)
{
	return disk_rw(v, d, true, buf, nblocks, block);
}

void raid_disk_prefetch(raid_vol_t *v, struct raid_disk *d, uint64_t block,
    uint64_t nblocks)
{
	if (d == NULL || d->dev == NULL || d->dev->ops->prefetch == NULL ||
	    block >= v->disk_blocks)
		return;
	nblocks = FL_MIN(nblocks, v->disk_blocks - block);
	d->dev->ops->prefetch(d->dev, raid_disk_off(v, block),
	    nblocks * RAID_BLOCK_SIZE);
}

/* ---- several disks at once ------------------------------------------- */

void raid_batch_init(struct raid_batch *b)
{
	b->n = 0;
}

unsigned raid_batch_add(raid_vol_t *v, struct raid_batch *b,
    struct raid_disk *d, enum raid_bop op, const struct iovec *iov, int cnt,
    uint64_t block)
{
	return raid_batch_add_at(v, b, d, op, iov, cnt,
	    raid_disk_off(v, block));
}

unsigned raid_batch_add_at(raid_vol_t *v, struct raid_batch *b,
    struct raid_disk *d, enum raid_bop op, const struct iovec *iov, int cnt,
    uint64_t off)
{
	unsigned i = b->n++;
	int err;

	VERIFY(i < RAID_BATCH_MAX);
	b->d[i] = d;
	b->op[i] = op;
	b->io[i] = NULL;
	b->err[i] = 0;
	if (d == NULL || d->dev == NULL) {
		b->err[i] = -EIO;	/* nobody there: nothing to fail */
		b->d[i] = NULL;
		return i;
	}
	/*
	 * An I/O that cannot even be started (a dead disk; no memory for
	 * the request) fails the disk like an I/O error: the stripe stays
	 * consistent on the others, which a silently skipped write would
	 * not leave it.
	 */
	if (op == RAID_BOP_SYNC)
		err = raid_dio_submit_sync(d->dev, &b->io[i]);
	else
		err = raid_dio_submit(d->dev, op == RAID_BOP_WRITE,
		    op == RAID_BOP_READ_RANDOM ? RAID_RD_RANDOM : 0, iov, cnt,
		    off, &b->io[i]);
	if (err != 0)
		b->err[i] = disk_error(v, d, err, op);
	return i;
}

int raid_batch_wait(raid_vol_t *v, struct raid_batch *b)
{
	int ret = 0;

	for (unsigned i = 0; i < b->n; i++) {
		if (b->io[i] != NULL) {
			int e = raid_dio_wait(b->io[i]);

			b->io[i] = NULL;
			if (e != 0)
				b->err[i] = disk_error(v, b->d[i], e, b->op[i]);
		}
		if (b->err[i] == -FL_ECRASHED)
			ret = -FL_ECRASHED;
		else if (b->err[i] != 0 && ret == 0)
			ret = -EIO;
	}
	return ret;
}

/* ---- stripes as disk-major buffers ------------------------------------- */

int raid_read_stripes_dm(raid_vol_t *v, unsigned g,
    const struct raid_gsnap *s, uint64_t s0, uint32_t ns, const bool *want,
    uint8_t *buf, unsigned *nrecon)
{
	const size_t stride = (size_t)ns * RAID_BLOCK_SIZE;
	bool wanted[RAID_MAX_WIDTH], rd[RAID_MAX_WIDTH] = { false };
	unsigned rows_in[RAID_MAX_DATA], rows_out[RAID_MAX_WIDTH];
	uint8_t *src[RAID_MAX_DATA], *dst[RAID_MAX_WIDTH];
	unsigned nin = 0, nout = 0;
	struct raid_batch b;
	int err;

	for (unsigned pos = 0; pos < v->w; pos++) {
		wanted[pos] = want != NULL ? want[pos] : pos < v->n;
		if (wanted[pos] && !s->up[pos])
			rows_out[nout++] = pos;
	}
	if (nout > 0) {
		/* Sources: the first N survivors, data before parity. */
		for (unsigned pos = 0; pos < v->w && nin < v->n; pos++)
			if (s->up[pos]) {
				rows_in[nin] = pos;
				src[nin++] = buf + pos * stride;
				rd[pos] = true;
			}
		if (nin < v->n)
			return FL_ERR(-FL_EDEGRADED);
	}
	raid_batch_init(&b);
	for (unsigned pos = 0; pos < v->w; pos++) {
		struct iovec iov = { buf + pos * stride, stride };

		if (!(rd[pos] || (wanted[pos] && s->up[pos])))
			continue;
		(void)raid_batch_add(v, &b, s->d[pos], RAID_BOP_READ, &iov, 1,
		    s0);
		if (pos >= v->n)
			CTR_ADD(v, parity_reads, ns);
	}
	err = raid_batch_wait(v, &b);	/* all disks at once */
	if (err != 0)
		return err;
	if (nout == 0)
		return 0;
	for (unsigned i = 0; i < nout; i++)
		dst[i] = buf + rows_out[i] * stride;
	err = raid_code_solve(&v->code, rows_in, src, nout, rows_out, dst,
	    stride);
	if (err != 0)
		return err;
	if (nrecon != NULL)
		*nrecon += nout * ns;
	(void)g;
	return 0;
}

/* ---- reads ------------------------------------------------------------- */

/* Is data position pos touched by [gv, gv+cnt) (group-relative VBNs)? */
static bool pos_touched(const raid_vol_t *v, uint64_t gv, uint64_t cnt,
    unsigned pos)
{
	uint64_t first = gv % v->n;

	if (cnt >= v->n)
		return true;
	return ((pos + v->n - first) % v->n) < cnt;
}

static int read_direct(raid_vol_t *v, const struct raid_gsnap *s,
    uint64_t gv, uint64_t cnt, uint8_t *buf)
{
	struct iovec iov[IOV_MAX_BATCH];
	const uint64_t n = v->n, last = gv + cnt - 1;
	struct raid_batch b;
	int err = 0;

	raid_batch_init(&b);

	for (unsigned j = 0; j < v->n; j++) {
		uint64_t sj = gv / n, ej = last / n;

		if (sj * n + j < gv)
			sj++;
		if (ej * n + j > last) {
			if (ej == 0)
				continue;
			ej--;
		}
		if (sj > ej)
			continue;
		for (uint64_t k = sj; k <= ej;) {
			int c = 0;
			uint64_t k0 = k;

			for (; k <= ej && c < IOV_MAX_BATCH; k++, c++) {
				iov[c].iov_base = buf + (k * n + j - gv) *
				    RAID_BLOCK_SIZE;
				iov[c].iov_len = RAID_BLOCK_SIZE;
			}
			if (b.n == RAID_BATCH_MAX) {
				err = raid_batch_wait(v, &b);
				raid_batch_init(&b);
				if (err != 0)
					return err;
			}
			(void)raid_batch_add(v, &b, s->d[j], RAID_BOP_READ,
			    iov, c, k0);
		}
	}
	return raid_batch_wait(v, &b);	/* every data disk at once */
}

/*
 * Degraded read of stripes [i0, i1), all of whose blocks the caller wants:
 * the surviving data blocks go straight into the caller's buffer (as on
 * the healthy path), parity sources into tmp, and the missing data blocks
 * are solved in place, one stripe at a time with one prepared plan.
 */
static int read_inner_degraded(raid_vol_t *v, const struct raid_gsnap *s,
    uint64_t gv, uint64_t i0, uint32_t ns, uint8_t *buf, uint8_t *tmp,
    struct raid_plan *pl)
{
	const uint64_t n = v->n;
	const size_t B = RAID_BLOCK_SIZE;
	unsigned rows_in[RAID_MAX_DATA], rows_out[RAID_MAX_DATA];
	unsigned nin = 0, nout = 0;
	struct iovec iov[RAID_CHUNK_STRIPES];
	struct raid_batch b;
	int err;

	for (unsigned pos = 0; pos < v->w; pos++) {
		if (pos < v->n && !s->up[pos])
			rows_out[nout++] = pos;
		else if (s->up[pos] && nin < v->n)
			rows_in[nin++] = pos;
	}
	if (nin < v->n)
		return FL_ERR(-FL_EDEGRADED);
	raid_batch_init(&b);
	for (unsigned i = 0; i < nin; i++) {
		unsigned pos = rows_in[i];

		if (pos >= v->n) {
			struct iovec pv = {
				tmp + (size_t)(pos - v->n) * ns * B, ns * B
			};

			(void)raid_batch_add(v, &b, s->d[pos], RAID_BOP_READ,
			    &pv, 1, i0);
			CTR_ADD(v, parity_reads, ns);
			continue;
		}
		for (uint32_t k = 0; k < ns; k++) {
			iov[k].iov_base = buf + ((i0 + k) * n + pos - gv) * B;
			iov[k].iov_len = B;
		}
		(void)raid_batch_add(v, &b, s->d[pos], RAID_BOP_READ, iov,
		    (int)ns, i0);
	}
	err = raid_batch_wait(v, &b);
	if (err != 0)
		return err;
	err = raid_code_plan(&v->code, rows_in, nout, rows_out, pl);
	if (err != 0)
		return err;
	for (uint32_t k = 0; k < ns; k++) {
		uint8_t *src[RAID_MAX_DATA], *dst[RAID_MAX_DATA];

		for (unsigned i = 0; i < nin; i++)
			src[i] = rows_in[i] < v->n ?
			    buf + ((i0 + k) * n + rows_in[i] - gv) * B :
			    tmp + ((size_t)(rows_in[i] - v->n) * ns + k) * B;
		for (unsigned o = 0; o < nout; o++)
			dst[o] = buf + ((i0 + k) * n + rows_out[o] - gv) * B;
		raid_code_apply(&v->code, pl, B, src, dst);
	}
	CTR_ADD(v, reconstructions, (uint64_t)nout * ns);
	return 0;
}

/* Degraded read of the blocks of [gv, gv+cnt) in stripes [c0, c0+cn). */
static int read_edge_degraded(raid_vol_t *v, unsigned g,
    const struct raid_gsnap *s, uint64_t gv, uint64_t cnt, uint64_t c0,
    uint32_t cn, uint8_t *buf, uint8_t *tmp)
{
	const uint64_t n = v->n;
	bool want[RAID_MAX_WIDTH] = { false };
	int err;

	for (unsigned j = 0; j < v->n; j++)
		want[j] = pos_touched(v, gv, cnt, j);
	err = raid_read_stripes_dm(v, g, s, c0, cn, want, tmp, NULL);
	if (err != 0)
		return err;
	for (uint64_t k = c0; k < c0 + cn; k++)
		for (unsigned j = 0; j < v->n; j++) {
			uint64_t vb = k * n + j;

			if (vb < gv || vb >= gv + cnt)
				continue;
			memcpy(buf + (vb - gv) * RAID_BLOCK_SIZE,
			    tmp + ((size_t)j * cn + (k - c0)) *
			    RAID_BLOCK_SIZE, RAID_BLOCK_SIZE);
			if (!s->up[j])
				CTR_ADD(v, reconstructions, 1);
		}
	return 0;
}

static int read_degraded(raid_vol_t *v, unsigned g,
    const struct raid_gsnap *s, uint64_t gv, uint64_t cnt, uint8_t *buf)
{
	const uint64_t n = v->n, s0 = gv / n, s1 = (gv + cnt - 1) / n + 1;
	/* Stripes wholly inside the range: [in0, in1). */
	const uint64_t in0 = FL_DIV_ROUND_UP(gv, n), in1 = (gv + cnt) / n;
	uint8_t *tmp = raid_scratch_get(v);
	struct raid_plan *pl = malloc(sizeof(*pl));
	struct raid_range r;
	int err = 0;

	if (tmp == NULL || pl == NULL) {
		raid_scratch_put(v, tmp);
		free(pl);
		return -ENOMEM;
	}
	raid_range_lock(v, &r, g, s0, s1);
	if (in0 >= in1) {
		err = read_edge_degraded(v, g, s, gv, cnt, s0,
		    (uint32_t)(s1 - s0), buf, tmp);
		goto out;
	}
	if (s0 < in0)
		err = read_edge_degraded(v, g, s, gv, cnt, s0, 1, buf, tmp);
	for (uint64_t c0 = in0; c0 < in1 && err == 0;) {
		uint32_t cn = (uint32_t)FL_MIN(in1 - c0, RAID_CHUNK_STRIPES);

		err = read_inner_degraded(v, s, gv, c0, cn, buf, tmp, pl);
		c0 += cn;
	}
	if (err == 0 && in1 < s1)
		err = read_edge_degraded(v, g, s, gv, cnt, in1, 1, buf, tmp);
out:
	raid_range_unlock(v, &r);
	raid_scratch_put(v, tmp);
	free(pl);
	return err;
}

static int read_group(raid_vol_t *v, unsigned g, uint64_t gv, uint64_t cnt,
    uint8_t *buf)
{
	for (unsigned tries = 0;; tries++) {
		struct raid_gsnap s;
		bool degraded = false;
		int err;

		raid_gsnap_take(v, g, &s);
		err = raid_group_check(v, g, &s);
		if (err != 0)
			return err;
		for (unsigned j = 0; j < v->n; j++)
			if (!s.up[j] && pos_touched(v, gv, cnt, j))
				degraded = true;
		err = degraded ? read_degraded(v, g, &s, gv, cnt, buf) :
		    read_direct(v, &s, gv, cnt, buf);
		if (err == -EIO && tries <= v->p + 1)
			continue;
		return err;
	}
}

/* Split a VBN range into per-group pieces. */
#define FOR_EACH_GROUP_PIECE(v, vbn, n, g, gv, cnt, done) \
	for (uint64_t done = 0, per_ = (uint64_t)(v)->n * (v)->disk_blocks, \
	    g##_ = 0, gv = 0, cnt = 0; \
	    done < (n) && ((g##_ = ((vbn) + done) / per_), \
	    (gv = ((vbn) + done) % per_), \
	    (cnt = FL_MIN(per_ - gv, (uint64_t)(n) - done)), 1); \
	    done += cnt) \
		for (unsigned g = (unsigned)g##_, once_ = 1; once_; once_ = 0)

static int check_range(const raid_vol_t *v, uint64_t vbn, uint64_t n)
{
	uint64_t total = (uint64_t)v->ngroups * v->n * v->disk_blocks;

	if (n == 0)
		return 0;
	if (vbn >= total || n > total - vbn)
		return FL_ERR(-ERANGE);
	if (raid_crashed(v))
		return FL_ERR(-FL_ECRASHED);
	return 0;
}

int raid_read(raid_vol_t *v, uint64_t vbn, uint32_t n, void *buf)
{
	int err = check_range(v, vbn, n);

	if (err != 0 || n == 0)
		return err;
	FOR_EACH_GROUP_PIECE(v, vbn, n, g, gv, cnt, done) {
		err = read_group(v, g, gv, cnt,
		    (uint8_t *)buf + done * RAID_BLOCK_SIZE);
		if (err != 0)
			return err;
	}
	CTR_ADD(v, reads, n);
	return 0;
}

/* ---- writes ------------------------------------------------------------ */

/*
 * Add to b the write of the rebuilding disk's blocks for stripes below its
 * cursor (its failure is the rebuild's business, not the writer's).  iov
 * (cnt entries, ns blocks) is cut in place at the cursor.
 */
static void write_rebuilding(raid_vol_t *v, struct raid_batch *b,
    const struct raid_gsnap *s, uint64_t s0, uint32_t ns, struct iovec *iov,
    int cnt)
{
	uint64_t cur = s->rb_cursor;	/* of the snapshot's rebuild */
	size_t left;
	int n = 0;

	if (s->rb_pos < 0 || s0 >= cur)
		return;
	left = (size_t)FL_MIN((uint64_t)ns, cur - s0) * RAID_BLOCK_SIZE;
	for (; n < cnt && left > 0; n++) {
		iov[n].iov_len = FL_MIN(iov[n].iov_len, left);
		left -= iov[n].iov_len;
	}
	(void)raid_batch_add(v, b, s->rb_disk, RAID_BOP_WRITE, iov, n, s0);
}

/*
 * Where a write's blocks are: one buffer of consecutive blocks, or one
 * pointer per block (raid_writev, so that a caller holding the blocks
 * apart needs no copy into one buffer).
 */
struct wsrc {
	const uint8_t *buf;
	const uint8_t *const *ptr;
};

static uint8_t *wsrc_blk(struct wsrc src, uint64_t i)
{
	return (uint8_t *)(uintptr_t)(src.ptr != NULL ? src.ptr[i] :
	    src.buf + i * RAID_BLOCK_SIZE);
}

static struct wsrc wsrc_skip(struct wsrc src, uint64_t i)
{
	if (src.ptr != NULL)
		src.ptr += i;
	else
		src.buf += i * RAID_BLOCK_SIZE;
	return src;
}

/*
 * One chunk of full stripes on its way to the disks: started by
 * chunk_start (range locked, write-intent ticket taken, parity computed,
 * the I/O of every disk submitted) and ended by chunk_finish (waited for,
 * counted, the ticket and the lock given back).
 */
struct wchunk {
	struct raid_batch b;
	struct raid_gsnap s;
	struct raid_range r;
	unsigned ent_pos[RAID_BATCH_MAX];
	uint64_t ticket;
	uint32_t ns;
	int jslot;
	bool live;		/* started: chunk_finish owes the rest */
};

/*
 * Full stripes [s0, s0+ns) of group g from src (VBN order); ns <= chunk.
 * With nowait, -EAGAIN (nothing taken) if someone holds part of the
 * range, instead of waiting for it.
 */
static int chunk_start(raid_vol_t *v, unsigned g, uint64_t s0, uint32_t ns,
    struct wsrc src, uint8_t *pbuf, struct wchunk *c, bool nowait)
{
	struct iovec iov[RAID_CHUNK_STRIPES];
	const size_t pstride = (size_t)ns * RAID_BLOCK_SIZE;
	int err;

	c->live = false;
	c->ns = ns;
	c->jslot = -1;
	if (!nowait)
		raid_range_lock(v, &c->r, g, s0, s0 + ns);
	else if (!range_trylock(v, &c->r, g, s0, s0 + ns))
		return -EAGAIN;
	err = raid_intent_begin(v, g, s0, s0 + ns, &c->ticket);
	if (err != 0)
		goto out_unlock;
	raid_gsnap_take(v, g, &c->s);
	err = raid_group_check(v, g, &c->s);
	if (err != 0)
		goto out;
	for (unsigned j = 0; j < v->n; j++)
		if (!c->s.up[j]) {
			err = raid_journal_invalidate(v, g, &c->s, s0, s0 + ns,
			    &c->jslot);	/* J2 */
			if (err != 0)
				goto out;
			break;
		}
	for (uint32_t k = 0; k < ns; k++) {
		uint8_t *d[RAID_MAX_DATA], *p[RAID_MAX_PARITY];

		for (unsigned j = 0; j < v->n; j++)
			d[j] = wsrc_blk(src, (uint64_t)k * v->n + j);
		for (unsigned i = 0; i < v->p; i++)
			p[i] = pbuf + i * pstride + (size_t)k * RAID_BLOCK_SIZE;
		raid_code_encode(&v->code, RAID_BLOCK_SIZE, d, p);
	}
	/* Every disk at once; a disk that fails leaves the stripes
	 * consistent on the survivors. */
	raid_batch_init(&c->b);
	for (unsigned pos = 0; pos < v->w; pos++) {
		unsigned e0 = c->b.n;
		int cnt;

		if (!c->s.up[pos] && (int)pos != c->s.rb_pos)
			continue;
		if (pos >= v->n) {
			iov[0].iov_base = pbuf + (pos - v->n) * pstride;
			iov[0].iov_len = pstride;
			cnt = 1;
		} else {
			cnt = (int)ns;
			for (uint32_t k = 0; k < ns; k++) {
				iov[k].iov_base = wsrc_blk(src,
				    (uint64_t)k * v->n + pos);
				iov[k].iov_len = RAID_BLOCK_SIZE;
			}
		}
		if ((int)pos == c->s.rb_pos)
			write_rebuilding(v, &c->b, &c->s, s0, ns, iov, cnt);
		else
			(void)raid_batch_add(v, &c->b, c->s.d[pos],
			    RAID_BOP_WRITE, iov, cnt, s0);
		if (c->b.n > e0)
			c->ent_pos[e0] = pos;
	}
	c->live = true;
	return 0;
out:
	raid_journal_done(v, g, c->jslot);
	raid_intent_end(v, c->ticket);
out_unlock:
	raid_range_unlock(v, &c->r);
	return err;
}

static int chunk_finish(raid_vol_t *v, unsigned g, struct wchunk *c)
{
	int err;

	c->live = false;
	err = raid_batch_wait(v, &c->b);
	if (err == -FL_ECRASHED)
		goto out;
	for (unsigned i = 0; i < c->b.n; i++) {
		unsigned pos = c->ent_pos[i];

		if (c->b.err[i] == 0 && pos >= v->n && (int)pos != c->s.rb_pos)
			CTR_ADD(v, parity_writes, c->ns);
	}
	/* Survivors hold consistent stripes unless too many failed. */
	raid_gsnap_take(v, g, &c->s);
	err = raid_group_check(v, g, &c->s);
	if (err == 0)
		CTR_ADD(v, full_stripe_writes, c->ns);
out:
	raid_journal_done(v, g, c->jslot);
	raid_intent_end(v, c->ticket);
	raid_range_unlock(v, &c->r);
	return err;
}

/*
 * A chunk the next one may be started beside: all of the group's disks
 * up and none rebuilding, so it holds no journal slot, and the degraded
 * paths never hold two of anything at once.
 */
static bool chunk_plain(const struct wchunk *c)
{
	return c->jslot < 0 && c->s.rb_pos < 0 && c->s.nout == 0;
}

/*
 * Write streams (raid.h): full stripes a chunk at a time, the next
 * chunk's parity computed and its I/O queued while the disks write the
 * previous one, so the disks do not wait for the encoder.  A stream keeps
 * that across calls; write_full below is a stream of one call.  Chunks
 * live in a ring of WSTREAM_SLOTS, oldest at head; after a chunk is
 * started the oldest are finished while the others still queue a whole
 * chunk of stripes, so about one chunk waits at the disks when a call
 * returns (several small ones at most WSTREAM_SLOTS).  A slot's parity
 * buffer is taken from the scratch pool when first used.
 *
 * Range locks.  Calls come in any VBN order (a walk's batches do not
 * follow one another upward), so the stream never waits for a range lock
 * while it holds one: with chunks in flight it only tries, and a range
 * that someone holds (another writer, a rebuild, its own chunk in flight)
 * first drains the stream, then waits with nothing held.  So it takes no
 * part in any lock cycle, whatever order others take ranges in.
 *
 * A chunk that is not plain (journal slot, rebuild, a disk out) is
 * finished before the next is started.
 */
#define WSTREAM_SLOTS	4u

static int write_src(raid_vol_t *v, uint64_t vbn, uint32_t n,
    struct wsrc src);

struct raid_wstream {
	raid_vol_t *v;
	struct wchunk c[WSTREAM_SLOTS];
	unsigned g[WSTREAM_SLOTS];
	uint8_t *pbuf[WSTREAM_SLOTS];
	unsigned head, nlive;
	uint32_t live_stripes;
	uint64_t started, done;		/* sequence numbers */
	int err;
};

int raid_wstream_open(raid_vol_t *v, raid_wstream_t **out)
{
	struct raid_wstream *ws = calloc(1, sizeof(*ws));

	*out = NULL;
	if (ws == NULL)
		return -ENOMEM;
	ws->v = v;
	*out = ws;
	return 0;
}

static void ws_finish_oldest(struct raid_wstream *ws)
{
	unsigned i = ws->head;
	int err = chunk_finish(ws->v, ws->g[i], &ws->c[i]);

	if (err != 0 && ws->err == 0)
		ws->err = err;
	ws->live_stripes -= ws->c[i].ns;
	ws->head = (i + 1) % WSTREAM_SLOTS;
	ws->nlive--;
	ws->done++;
}

uint64_t raid_wstream_done(const raid_wstream_t *ws)
{
	return ws->done;
}

int raid_wstream_wait(raid_wstream_t *ws, uint64_t seq)
{
	while (ws->nlive > 0 && ws->done < seq)
		ws_finish_oldest(ws);
	return ws->err;
}

int raid_wstream_drain(raid_wstream_t *ws)
{
	return raid_wstream_wait(ws, ws->started);
}

/* Drain, and give the parity buffers back; the stream's error. */
static int ws_release(struct raid_wstream *ws)
{
	int err = raid_wstream_drain(ws);

	for (unsigned i = 0; i < WSTREAM_SLOTS; i++) {
		raid_scratch_put(ws->v, ws->pbuf[i]);
		ws->pbuf[i] = NULL;
	}
	return err;
}

int raid_wstream_close(raid_wstream_t *ws)
{
	int err;

	if (ws == NULL)
		return 0;
	err = ws_release(ws);
	free(ws);
	return err;
}

/* Start chunk slot i, its parity buffer taken if it has none yet. */
static int ws_chunk_start(struct raid_wstream *ws, unsigned i, unsigned g,
    uint64_t s0, uint32_t ns, struct wsrc src, bool nowait)
{
	if (ws->pbuf[i] == NULL)
		ws->pbuf[i] = raid_scratch_get(ws->v);
	if (ws->pbuf[i] == NULL)
		return -ENOMEM;
	return chunk_start(ws->v, g, s0, ns, src, ws->pbuf[i], &ws->c[i],
	    nowait);
}

/* Start one chunk: full stripes [s0, s0+ns) of group g. */
static int ws_start(struct raid_wstream *ws, unsigned g, uint64_t s0,
    uint32_t ns, struct wsrc src)
{
	if (ws->nlive == WSTREAM_SLOTS)
		ws_finish_oldest(ws);
	if (ws->nlive > 0 && !chunk_plain(&ws->c[(ws->head + ws->nlive - 1) %
	    WSTREAM_SLOTS]))
		(void)raid_wstream_drain(ws);
	if (ws->err != 0)
		return ws->err;
	unsigned i = (ws->head + ws->nlive) % WSTREAM_SLOTS;
	int err = ws_chunk_start(ws, i, g, s0, ns, src, ws->nlive > 0);
	if (err == -EAGAIN) {
		/* Held by someone: wait for it with nothing of ours held. */
		err = raid_wstream_drain(ws);
		i = ws->head;
		if (err == 0)
			err = ws_chunk_start(ws, i, g, s0, ns, src, false);
	}
	if (err != 0) {
		ws->err = err;
		return err;
	}
	ws->g[i] = g;
	ws->nlive++;
	ws->live_stripes += ns;
	ws->started++;
	/* Keep about a chunk queued behind the newest. */
	while (ws->nlive > 1 && ws->live_stripes - ws->c[ws->head].ns >=
	    RAID_CHUNK_STRIPES)
		ws_finish_oldest(ws);
	return ws->err;
}

/* Full stripes [s0, s0+ns) of group g: a stream of one call, drained. */
static int write_full(raid_vol_t *v, unsigned g, uint64_t s0, uint64_t ns,
    struct wsrc src)
{
	struct raid_wstream ws = { .v = v };

	for (uint64_t done = 0; done < ns && ws.err == 0;) {
		uint32_t cn = (uint32_t)FL_MIN(ns - done,
		    (uint64_t)RAID_CHUNK_STRIPES);

		(void)ws_start(&ws, g, s0 + done, cn,
		    wsrc_skip(src, done * v->n));
		done += cn;
	}
	return ws_release(&ws);
}

int raid_wstream_writev(raid_wstream_t *ws, uint64_t vbn, uint32_t n,
    const uint8_t *const *blocks, uint64_t *seq)
{
	raid_vol_t *v = ws->v;
	struct wsrc src = { .ptr = blocks };
	int err = ws->err;

	*seq = ws->started;
	if (err == 0)
		err = check_range(v, vbn, n);
	if (err != 0 || n == 0)
		return err;
	if (vbn % v->n != 0 || n % v->n != 0) {
		/* Not whole stripes: at once, after what is in flight. */
		err = raid_wstream_drain(ws);
		if (err == 0)
			err = write_src(v, vbn, n, src);
		if (err != 0 && ws->err == 0)
			ws->err = err;
		return err;
	}
	FOR_EACH_GROUP_PIECE(v, vbn, n, g, gv, cnt, done) {
		for (uint64_t k = 0; k < cnt && err == 0;) {
			uint32_t cn = (uint32_t)FL_MIN((uint64_t)
			    RAID_CHUNK_STRIPES, (cnt - k) / v->n);

			err = ws_start(ws, g, (gv + k) / v->n, cn,
			    wsrc_skip(src, done + k));
			k += (uint64_t)cn * v->n;
		}
		if (err != 0)
			return err;
	}
	CTR_ADD(v, writes, n);
	*seq = ws->started;
	return ws->err;
}

/* With a data disk out, journal the missing blocks' new values (J1). */
static int journal_missing(raid_vol_t *v, unsigned g,
    const struct raid_gsnap *s, uint64_t st, uint8_t *stripe, int *jslot)
{
	unsigned miss[RAID_MAX_PARITY], nmiss = 0;
	uint8_t *blk[RAID_MAX_PARITY];

	for (unsigned j = 0; j < v->n && nmiss < v->p; j++)
		if (!s->up[j]) {
			miss[nmiss] = j;
			blk[nmiss++] = stripe + (size_t)j * RAID_BLOCK_SIZE;
		}
	if (nmiss == 0)
		return 0;
	return raid_journal_log(v, g, s, st, nmiss, miss, blk, jslot);
}

/*
 * Reconstruct-write of data positions [a, a+k) of stripe st (R3): the new
 * blocks from buf, the others read (or solved from survivors when their
 * disk is out), then every parity recomputed and written.
 */
static int write_partial(raid_vol_t *v, unsigned g, uint64_t st, unsigned a,
    unsigned k, struct wsrc src)
{
	const size_t B = RAID_BLOCK_SIZE;
	uint8_t *stripe = raid_balloc(v->w), *tmp = raid_balloc(v->w);
	struct raid_range r;
	uint64_t ticket = 0;
	int err = 0, jslot = -1;

	if (stripe == NULL || tmp == NULL) {
		free(stripe);
		free(tmp);
		return -ENOMEM;
	}
	raid_range_lock(v, &r, g, st, st + 1);
	err = raid_intent_begin(v, g, st, st + 1, &ticket);
	if (err != 0)
		goto out_unlock;
	for (unsigned tries = 0;; tries++) {
		struct raid_gsnap s;
		bool want[RAID_MAX_WIDTH] = { false }, degraded = false;
		uint8_t *d[RAID_MAX_DATA], *p[RAID_MAX_PARITY];
		struct raid_batch b;

		raid_gsnap_take(v, g, &s);
		err = raid_group_check(v, g, &s);
		if (err != 0)
			break;
		for (unsigned j = 0; j < v->n; j++) {
			want[j] = j < a || j >= a + k;
			if (want[j] && !s.up[j])
				degraded = true;
		}
		err = 0;
		if (degraded) {
			err = raid_read_stripes_dm(v, g, &s, st, 1, want, tmp,
			    NULL);
			for (unsigned j = 0; err == 0 && j < v->n; j++) {
				if (!want[j])
					continue;
				memcpy(stripe + j * B, tmp + j * B, B);
				if (s.up[j])
					CTR_ADD(v, partial_reads, 1);
			}
		} else {
			raid_batch_init(&b);
			for (unsigned j = 0; j < v->n; j++) {
				struct iovec iov = { stripe + j * B, B };

				if (want[j])
					(void)raid_batch_add(v, &b, s.d[j],
					    RAID_BOP_READ_RANDOM, &iov, 1, st);
			}
			err = raid_batch_wait(v, &b);
			if (err == 0)
				CTR_ADD(v, partial_reads, b.n);
		}
		if (err == -EIO && tries <= v->p + 1)
			continue;
		if (err != 0)
			break;
		for (unsigned i = 0; i < k; i++)
			memcpy(stripe + (a + i) * B, wsrc_blk(src, i), B);
		for (unsigned j = 0; j < v->n; j++)
			d[j] = stripe + j * B;
		for (unsigned i = 0; i < v->p; i++)
			p[i] = stripe + (v->n + i) * B;
		raid_code_encode(&v->code, B, d, p);
		err = journal_missing(v, g, &s, st, stripe, &jslot);	/* J1 */
		if (err != 0)
			break;
		raid_batch_init(&b);
		for (unsigned pos = 0; pos < v->w; pos++) {
			struct iovec iov = { stripe + pos * B, B };

			if (pos < v->n && (pos < a || pos >= a + k))
				continue;
			if ((int)pos == s.rb_pos) {
				write_rebuilding(v, &b, &s, st, 1, &iov, 1);
				continue;
			}
			if (!s.up[pos])
				continue;
			(void)raid_batch_add(v, &b, s.d[pos], RAID_BOP_WRITE,
			    &iov, 1, st);
			if (pos >= v->n)
				CTR_ADD(v, parity_writes, 1);
		}
		/* A failed disk needs no retry: the survivors agree. */
		err = raid_batch_wait(v, &b);
		if (err == -FL_ECRASHED)
			break;
		raid_gsnap_take(v, g, &s);
		err = raid_group_check(v, g, &s);
		if (err == 0)
			CTR_ADD(v, partial_stripe_writes, 1);
		break;
	}
	raid_journal_done(v, g, jslot);
	raid_intent_end(v, ticket);
out_unlock:
	raid_range_unlock(v, &r);
	free(stripe);
	free(tmp);
	return err;
}

static int write_group(raid_vol_t *v, unsigned g, uint64_t gv, uint64_t cnt,
    struct wsrc src)
{
	const uint64_t n = v->n;
	int err = 0;

	if (gv % n != 0 || cnt < n) {
		unsigned a = (unsigned)(gv % n);
		unsigned k = (unsigned)FL_MIN(cnt, n - a);

		err = write_partial(v, g, gv / n, a, k, src);
		if (err != 0)
			return err;
		gv += k;
		cnt -= k;
		src = wsrc_skip(src, k);
	}
	if (cnt >= n) {
		uint64_t ns = cnt / n;

		err = write_full(v, g, gv / n, ns, src);
		if (err != 0)
			return err;
		gv += ns * n;
		cnt -= ns * n;
		src = wsrc_skip(src, ns * n);
	}
	if (cnt > 0)
		err = write_partial(v, g, gv / n, 0, (unsigned)cnt, src);
	return err;
}

static int write_src(raid_vol_t *v, uint64_t vbn, uint32_t n, struct wsrc src)
{
	int err = check_range(v, vbn, n);

	if (err != 0 || n == 0)
		return err;
	FOR_EACH_GROUP_PIECE(v, vbn, n, g, gv, cnt, done) {
		err = write_group(v, g, gv, cnt, wsrc_skip(src, done));
		if (err != 0)
			return err;
	}
	CTR_ADD(v, writes, n);
	return 0;
}

int raid_write(raid_vol_t *v, uint64_t vbn, uint32_t n, const void *buf)
{
	return write_src(v, vbn, n, (struct wsrc){ .buf = buf });
}

int raid_writev(raid_vol_t *v, uint64_t vbn, uint32_t n,
    const uint8_t *const *blocks)
{
	return write_src(v, vbn, n, (struct wsrc){ .ptr = blocks });
}

int raid_write_stripes(raid_vol_t *v, uint64_t first_vbn, uint32_t nstripes,
    const void *buf)
{
	uint64_t n = (uint64_t)nstripes * v->n;
	int err;

	if (first_vbn % v->n != 0)
		return FL_ERR(-EINVAL);
	err = check_range(v, first_vbn, n);
	if (err != 0 || n == 0)
		return err;
	FOR_EACH_GROUP_PIECE(v, first_vbn, n, g, gv, cnt, done) {
		err = write_full(v, g, gv / v->n, cnt / v->n,
		    (struct wsrc){ .buf = (const uint8_t *)buf +
		    done * RAID_BLOCK_SIZE });
		if (err != 0)
			return err;
	}
	CTR_ADD(v, writes, n);
	return 0;
}

void raid_prefetch(raid_vol_t *v, uint64_t vbn, uint64_t n)
{
	uint64_t total = (uint64_t)v->ngroups * v->n * v->disk_blocks;

	if (n == 0 || vbn >= total || raid_crashed(v))
		return;
	n = FL_MIN(n, total - vbn);
	FOR_EACH_GROUP_PIECE(v, vbn, n, g, gv, cnt, done) {
		struct raid_gsnap s;
		uint64_t s0 = gv / v->n, s1 = (gv + cnt - 1) / v->n;

		raid_gsnap_take(v, g, &s);
		for (unsigned j = 0; j < v->n; j++)
			if (s.up[j])
				raid_disk_prefetch(v, s.d[j], s0, s1 - s0 + 1);
	}
}

int raid_flush(raid_vol_t *v)
{
	int err;

	if (raid_crashed(v))
		return FL_ERR(-FL_ECRASHED);
	err = raid_intent_flush(v);
	if (err == 0)
		CTR_ADD(v, flushes, 1);
	return err;
}

/* ---- reconstruct / repair --------------------------------------------- */

/* The attempt-th N-subset (lexicographic) of m items into idx[]. */
static bool nth_combination(unsigned m, unsigned n, unsigned attempt,
    unsigned *idx)
{
	for (unsigned i = 0; i < n; i++)
		idx[i] = i;
	for (unsigned a = 0; a < attempt; a++) {
		int i = (int)n - 1;

		while (i >= 0 && idx[i] == m - n + (unsigned)i)
			i--;
		if (i < 0)
			return false;
		idx[i]++;
		for (unsigned j = (unsigned)i + 1; j < n; j++)
			idx[j] = idx[j - 1] + 1;
	}
	return true;
}

int raid_reconstruct(raid_vol_t *v, uint64_t vbn, unsigned attempt,
    void *buf)
{
	uint8_t *tmp = NULL;
	struct raid_range r;
	unsigned g, x;
	uint64_t st;
	int err = check_range(v, vbn, 1);

	if (err != 0)
		return err;
	raid_vbn_split(v, vbn, &g, &st, &x);
	tmp = raid_balloc(v->w + 1);
	if (tmp == NULL)
		return -ENOMEM;
	raid_range_lock(v, &r, g, st, st + 1);
	for (unsigned tries = 0;; tries++) {
		unsigned avail[RAID_MAX_WIDTH], m = 0, idx[RAID_MAX_DATA];
		unsigned rows_in[RAID_MAX_DATA];
		uint8_t *src[RAID_MAX_DATA], *dst[1];
		struct raid_gsnap s;

		raid_gsnap_take(v, g, &s);
		err = raid_group_check(v, g, &s);
		if (err != 0)
			break;
		for (unsigned pos = 0; pos < v->w; pos++)
			if (pos != x && s.up[pos])
				avail[m++] = pos;
		if (m < v->n) {
			err = FL_ERR(-FL_EDEGRADED);
			break;
		}
		if (!nth_combination(m, v->n, attempt, idx)) {
			err = -ENOENT;
			break;
		}
		for (unsigned i = 0; i < v->n && err == 0; i++) {
			rows_in[i] = avail[idx[i]];
			src[i] = tmp + (size_t)i * RAID_BLOCK_SIZE;
			err = raid_disk_read(v, s.d[rows_in[i]], src[i], 1, st);
			if (err == 0 && rows_in[i] >= v->n)
				CTR_ADD(v, parity_reads, 1);
		}
		if (err == -EIO && tries <= v->p + 1)
			continue;
		if (err != 0)
			break;
		dst[0] = tmp + (size_t)v->w * RAID_BLOCK_SIZE;
		err = raid_code_solve(&v->code, rows_in, src, 1, &x, dst,
		    RAID_BLOCK_SIZE);
		if (err == 0) {
			memcpy(buf, dst[0], RAID_BLOCK_SIZE);
			CTR_ADD(v, reconstructions, 1);
		}
		break;
	}
	raid_range_unlock(v, &r);
	free(tmp);
	return err;
}

/*
 * The rebuild's spare after a repair of block x of stripe st, below the
 * rebuild cursor of s (the spare's block of st was written already, and
 * the rebuild will not come back to it).  If x is the rebuilding position
 * the spare gets buf itself.  Otherwise the spare's block was solved from
 * what x held then, which may be the damage just repaired: it is solved
 * again from the stripe as it is now (raid_read_stripes_dm), x's block
 * rewritten, or, when x is out too, solved from parity, which matches the
 * repaired data (raid_repair's premise).  A spare
 * that fails is the rebuild's business (it stops and the old disk gets
 * the position back).  Caller holds the stripe's range lock.
 */
static int repair_spare(raid_vol_t *v, unsigned g,
    const struct raid_gsnap *s, uint64_t st, unsigned x, const void *buf)
{
	const unsigned rb = (unsigned)s->rb_pos;
	bool want[RAID_MAX_WIDTH] = { false };
	uint8_t *tmp;
	int err;

	if (rb == x)
		return raid_disk_write(v, s->rb_disk, buf, 1, st);
	tmp = raid_balloc(v->w);
	if (tmp == NULL)
		return -ENOMEM;
	want[rb] = true;
	err = raid_read_stripes_dm(v, g, s, st, 1, want, tmp, NULL);
	if (err == 0)
		err = raid_disk_write(v, s->rb_disk,
		    tmp + (size_t)rb * RAID_BLOCK_SIZE, 1, st);
	free(tmp);
	return err;
}

/*
 * Rewrite one block in place.  Deliberately not marked in the intent
 * bitmap: parity already matches the good data, so if this write tears,
 * parity still reconstructs the right block, whereas an intent resync
 * would recompute parity from the torn block.
 *
 * During a rebuild of the block's group, the stripe is below the cursor
 * (the spare has its block and keeps it) or at/above it (the rebuild will
 * read the stripe later and write the spare's block itself, over anything
 * written there now).  Below, the spare must agree with the repaired
 * stripe (repair_spare); above, nothing is written to it, as writers do
 * (write_rebuilding).  The cursor is the snapshot's, taken under the
 * stripe's range lock, which the rebuild cannot cross.
 */
int raid_repair(raid_vol_t *v, uint64_t vbn, const void *buf)
{
	struct raid_gsnap s;
	struct raid_range r;
	unsigned g, x;
	uint64_t st;
	bool done = false;
	int err = check_range(v, vbn, 1);

	if (err != 0)
		return err;
	raid_vbn_split(v, vbn, &g, &st, &x);
	raid_range_lock(v, &r, g, st, st + 1);
	raid_gsnap_take(v, g, &s);
	err = raid_group_check(v, g, &s);
	if (err == 0 && s.up[x]) {
		err = raid_disk_write(v, s.d[x], buf, 1, st);
		if (err == -EIO)
			err = 0;	/* disk failed: parity covers it */
		else if (err == 0)
			done = true;
	}
	if (err == 0 && s.rb_pos >= 0 && st < s.rb_cursor) {
		err = repair_spare(v, g, &s, st, x, buf);
		if (err == -EIO || err == -FL_EDEGRADED)
			err = 0;	/* the spare (or a source) failed */
		else if (err == 0 && (unsigned)s.rb_pos == x)
			done = true;
		else if (err == 0)
			fl_info(RAID_SUBSYS, "vbn %llu repaired: group %u "
			    "stripe %llu solved again for the disk being "
			    "rebuilt at position %d", (unsigned long long)vbn,
			    g, (unsigned long long)st, s.rb_pos);
	}
	if (done)
		fl_info(RAID_SUBSYS, "repaired vbn %llu in place%s",
		    (unsigned long long)vbn, s.up[x] ? "" :
		    " on the disk being rebuilt");
	raid_range_unlock(v, &r);
	return err;
}
