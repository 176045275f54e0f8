/*
 * mirror/dwrite.c: the destination's write-behind for walk transfers.
 *
 * THEORY
 *   The receiving thread verifies each block (verify.c, M3) and hands it
 *   here; a thread of our own writes the blocks to the raid volume while
 *   the next ones arrive.  Only verified blocks are handed over, and they
 *   go to the VBNs the source named, which no root the destination serves
 *   uses (M1), so when they are written does not matter until the root is
 *   adopted: adopt calls mdw_drain first, then raid_flush, then writes the
 *   fsinfo.
 *
 *   Whole stripes.  raid writes a whole stripe from the data alone (R3);
 *   a part of a stripe costs reads of the rest of it and a second write
 *   of its parity.  A walk sends a file's data in VBN order, but the
 *   pointer blocks and inode-file blocks a CP allocated among that data
 *   arrive at other times (parent first), so a stripe's blocks are often
 *   spread over several batches.  So blocks whose stripe is not whole in
 *   a batch are kept (copied into a stripe-shaped slot, the "carry") until
 *   the rest of the stripe comes; whole stripes are written at once, a
 *   run of consecutive stripes in one write of pointers into the batch (a
 *   stripe completed from the carry is first copied out of its slot into
 *   one of RUN_BUFS copy buffers), so that raid gets long writes, which it
 *   sends to the disks a chunk at a time with the next chunk queued, and
 *   nothing is copied to gather them.
 *
 *   A write stream.  Runs go to a raid write stream (raid.h), which
 *   returns with the run's last chunk still on its way, so the disks
 *   write it while this thread sorts the next batch and starts the next
 *   run.  A batch stays held until the stream is past its chunks, and a
 *   copy buffer is reused only once its run is written.  The stream is
 *   drained before any other write or flush of ours (carry_write, a sync
 *   point) and whenever the queue is empty, so an idle writer has nothing
 *   in flight: mdw_drain, and adopt's raid_flush after it, find every
 *   block written.  What is still carried is written as partial stripes when
 *   the carry is full, before every sync point (a baseline checkpoint) and
 *   at the end of the transfer.
 *
 *   Sync points.  With sync_every set, after that many blocks the writer
 *   writes what it carries, calls raid_flush, and passes {vbn, birth} of
 *   every block handed over since the last sync point, in the order they
 *   were handed over, to synced_fn: each of them is durable.
 *
 * CONCURRENCY
 *   One producer (the receiving thread: mdw_put, mdw_drain, mdw_abort)
 *   and the writer thread.  Batches move between them through a queue
 *   under `lock`; a batch belongs to one side at a time.  The carry and
 *   the sync list are the writer's alone, and the producer touches them
 *   only while the writer is idle (mdw_abort waits for that).
 *
 * FAILURE
 *   The first error of the writer (raid_write, raid_flush, synced_fn) is
 *   kept and returned by every later mdw_put and mdw_drain; batches queued
 *   after it are dropped unwritten.  mdw_abort forgets it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/err.h"
#include "common/util.h"
#include "mirror/mir_impl.h"

#define MDW_NBATCH	3u
#define RUN_BUFS	3u	/* runs' copy buffers the stream may hold */

struct mdw_batch {
	uint8_t *data;			/* cap blocks, in arrival order */
	uint64_t *vbn, *birth;
	uint32_t n;
	uint64_t seq;			/* its last chunk in the stream */
	struct mdw_batch *next;
};

/* A stripe some of whose blocks are carried. */
struct mdw_carry {
	uint64_t stripe;		/* UINT64_MAX: free */
	uint32_t mask;			/* positions present */
	uint32_t slot;			/* index of its data in carry_data */
};

struct mir_dwriter {
	struct mdw_opts o;
	uint32_t nd;			/* data blocks per stripe */
	uint32_t full;			/* mask of a whole stripe */
	pthread_t thr;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop, busy;
	int err;
	struct mdw_batch batches[MDW_NBATCH];
	struct mdw_batch *free, *qhead, *qtail;
	struct mdw_batch *cur;		/* the producer's */
	/* Written, but the stream may still be writing from them. */
	struct mdw_batch *held, *held_tail;

	/* The writer's. */
	raid_wstream_t *ws;		/* NULL: raid_writev, one at a time */
	uint64_t seq;			/* newest chunk started in ws */
	uint32_t *idx;			/* batch cap: sort order */
	const uint8_t **ptrs;		/* ptr_stripes stripes: a run's blocks */
	uint32_t ptr_stripes;
	uint8_t *run;			/* RUN_BUFS x run_stripes stripes:
					   completed from the carry */
	uint32_t run_stripes;
	unsigned run_cur;		/* the buffer runs copy into now */
	uint64_t run_seq[RUN_BUFS];	/* last chunk of each buffer's run */
	struct mdw_carry *carry;	/* hash by stripe, ccap entries */
	uint32_t ccap, cused;
	uint8_t *carry_data;		/* cmax stripes */
	uint32_t *cfree;		/* free slots, a stack */
	uint32_t cmax, nfree;
	uint64_t *sync_vbn, *sync_birth;	/* since the last sync point */
	uint64_t nsync, sync_cap;
	bool sync_on;

	/* The flusher (lock): raid_flush after every FLUSH_BLOCKS written,
	 * so the disks write back while the writer fills the page cache. */
	pthread_t fthr;
	uint64_t since_flush;		/* the writer's */
	uint64_t flush_req, flush_done;
};

#define RUN_BLOCKS	1024u	/* completed from the carry per raid write */
#define FLUSH_BLOCKS	4096u

void *mir_big_alloc(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, bytes, MADV_HUGEPAGE);	/* a hint */
	return p;
}

void mir_big_free(void *p, size_t bytes)
{
	if (p != NULL)
		munmap(p, bytes);
}

/* ------------------------------------------------------------ carry */

static uint64_t carry_hash(uint64_t s)
{
	s ^= s >> 31;
	s *= 0x9e3779b97f4a7c15ull;
	return s ^ (s >> 29);
}

static struct mdw_carry *carry_find(struct mir_dwriter *w, uint64_t s)
{
	uint32_t i = (uint32_t)(carry_hash(s) & (w->ccap - 1));

	while (w->carry[i].stripe != UINT64_MAX) {
		if (w->carry[i].stripe == s)
			return &w->carry[i];
		i = (i + 1) & (w->ccap - 1);
	}
	return NULL;
}

static struct mdw_carry *carry_add(struct mir_dwriter *w, uint64_t s)
{
	uint32_t i = (uint32_t)(carry_hash(s) & (w->ccap - 1));

	while (w->carry[i].stripe != UINT64_MAX)
		i = (i + 1) & (w->ccap - 1);
	w->carry[i].stripe = s;
	w->carry[i].mask = 0;
	w->carry[i].slot = w->cfree[--w->nfree];
	w->cused++;
	return &w->carry[i];
}

/* Remove e, shifting back the entries of its probe run (no tombstones). */
static void carry_del(struct mir_dwriter *w, struct mdw_carry *e)
{
	uint32_t i = (uint32_t)(e - w->carry), j = i;

	w->cfree[w->nfree++] = e->slot;
	w->cused--;
	for (;;) {
		w->carry[i].stripe = UINT64_MAX;
		for (;;) {
			j = (j + 1) & (w->ccap - 1);
			if (w->carry[j].stripe == UINT64_MAX)
				return;
			uint32_t k = (uint32_t)(carry_hash(w->carry[j].stripe) &
			    (w->ccap - 1));
			/* Stays if its home k lies cyclically in (i, j]. */
			if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
				continue;
			break;
		}
		w->carry[i] = w->carry[j];
		i = j;
	}
}

static uint8_t *carry_block(struct mir_dwriter *w, const struct mdw_carry *e,
    uint32_t pos)
{
	return w->carry_data + ((size_t)e->slot * w->nd + pos) *
	    WAFL_BLOCK_SIZE;
}

static void count_written(struct mir_dwriter *w, uint64_t n)
{
	w->since_flush += n;
	if (w->since_flush >= FLUSH_BLOCKS) {
		w->since_flush = 0;
		pthread_mutex_lock(&w->lock);
		w->flush_req++;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
	}
	if (w->o.stats_lock != NULL) {
		pthread_mutex_lock(w->o.stats_lock);
		*w->o.blocks_written += n;
		pthread_mutex_unlock(w->o.stats_lock);
	}
}

/* Finish every chunk in flight (before a write of our own that is not
 * a stream's, a flush, or going idle). */
static int stream_drain(struct mir_dwriter *w)
{
	return w->ws != NULL ? raid_wstream_drain(w->ws) : 0;
}

/* Write what e holds: runs of present positions (partial stripes). */
static int carry_write(struct mir_dwriter *w, struct mdw_carry *e)
{
	uint64_t v0 = e->stripe * w->nd;
	int rc = stream_drain(w);

	if (rc != 0)
		return rc;

	for (uint32_t p = 0; p < w->nd;) {
		if (!(e->mask & (1u << p))) {
			p++;
			continue;
		}
		uint32_t k = 1;
		while (p + k < w->nd && (e->mask & (1u << (p + k))))
			k++;
		rc = raid_write(w->o.raid, v0 + p, k, carry_block(w, e, p));
		if (rc != 0)
			return rc;
		count_written(w, k);
		p += k;
	}
	return 0;
}

/* Write everything carried (partial stripes) and forget it. */
static int carry_flush(struct mir_dwriter *w)
{
	int rc = 0;

	for (uint32_t i = 0; i < w->ccap && w->cused > 0 && rc == 0;) {
		struct mdw_carry *e = &w->carry[i];
		if (e->stripe == UINT64_MAX) {
			i++;
			continue;
		}
		rc = carry_write(w, e);
		carry_del(w, e);	/* slot i may now hold another */
	}
	return rc;
}

/* ---------------------------------------------------------- batches */

static int cmp_idx(const void *a, const void *b, void *arg)
{
	const uint64_t *v = arg;
	uint64_t x = v[*(const uint32_t *)a], y = v[*(const uint32_t *)b];

	return x < y ? -1 : x > y;
}

/*
 * A run of consecutive whole stripes, first .. first + n - 1, as one
 * pointer per block (w->ptrs, VBN order): into the batch, or into w->run
 * for the `ncopied` stripes completed from the carry.
 */
struct run {
	uint64_t first;
	uint32_t n;
	uint32_t ncopied;
};

/* The copy buffer runs completed from the carry use now. */
static uint8_t *run_buf(const struct mir_dwriter *w)
{
	return w->run + (size_t)w->run_cur * w->run_stripes * w->nd *
	    WAFL_BLOCK_SIZE;
}

/* Give back the held batches whose chunks the stream has finished, all
 * of them with upto UINT64_MAX (lock held). */
static void release_held(struct mir_dwriter *w, uint64_t upto)
{
	bool any = false;

	while (w->held != NULL && w->held->seq <= upto) {
		struct mdw_batch *b = w->held;

		w->held = b->next;
		b->n = 0;
		b->next = w->free;
		w->free = b;
		any = true;
	}
	if (w->held == NULL)
		w->held_tail = NULL;
	if (any)
		pthread_cond_broadcast(&w->cond);
}

/*
 * The run goes to the stream, which returns with its last chunk still
 * being written (raid.h); the blocks it points at stay untouched until
 * the stream is past it: the batch is held (release_held), and the copy
 * buffer is left for the next of RUN_BUFS, waited for before reuse.
 */
static int run_flush(struct mir_dwriter *w, struct run *r)
{
	int rc = 0;

	if (r->n > 0) {
		if (w->ws != NULL)
			rc = raid_wstream_writev(w->ws, r->first * w->nd,
			    r->n * w->nd, w->ptrs, &w->seq);
		else
			rc = raid_writev(w->o.raid, r->first * w->nd,
			    r->n * w->nd, w->ptrs);
		if (rc == 0)
			count_written(w, (uint64_t)r->n * w->nd);
		if (rc == 0 && r->ncopied > 0 && w->ws != NULL) {
			w->run_seq[w->run_cur] = w->seq;
			w->run_cur = (w->run_cur + 1) % RUN_BUFS;
			rc = raid_wstream_wait(w->ws, w->run_seq[w->run_cur]);
		}
		if (w->ws != NULL && w->held != NULL &&
		    w->held->seq <= raid_wstream_done(w->ws)) {
			pthread_mutex_lock(&w->lock);
			release_held(w, raid_wstream_done(w->ws));
			pthread_mutex_unlock(&w->lock);
		}
	}
	r->n = 0;
	r->ncopied = 0;
	return rc;
}

static int write_batch(struct mir_dwriter *w, struct mdw_batch *b)
{
	const size_t B = WAFL_BLOCK_SIZE;
	struct run r = { 0 };
	int rc = 0;

	/* VBN order; a walk's batch mostly is already. */
	bool sorted = true;
	for (uint32_t i = 0; i < b->n; i++) {
		w->idx[i] = i;
		if (i > 0 && b->vbn[i] < b->vbn[i - 1])
			sorted = false;
	}
	if (!sorted)
		qsort_r(w->idx, b->n, sizeof(w->idx[0]), cmp_idx, b->vbn);

	for (uint32_t i = 0; i < b->n && rc == 0;) {
		uint64_t s = b->vbn[w->idx[i]] / w->nd;
		uint32_t j = i, mask = 0;
		while (j < b->n && b->vbn[w->idx[j]] / w->nd == s) {
			mask |= 1u << (b->vbn[w->idx[j]] % w->nd);
			j++;
		}
		struct mdw_carry *e = w->cused > 0 ? carry_find(w, s) : NULL;
		uint32_t have = mask | (e != NULL ? e->mask : 0);

		if (have != w->full) {
			/* Not whole yet: carry these blocks. */
			if (e == NULL) {
				if (w->nfree == 0)
					rc = carry_flush(w);
				if (rc != 0)
					break;
				e = carry_add(w, s);
			}
			for (uint32_t k = i; k < j; k++) {
				uint32_t p = (uint32_t)(b->vbn[w->idx[k]] %
				    w->nd);
				memcpy(carry_block(w, e, p), b->data +
				    (size_t)w->idx[k] * B, B);
			}
			e->mask |= mask;
			i = j;
			continue;
		}
		/* A whole stripe joins the run of its predecessors; the
		 * run goes to raid as one write, whose stripes raid writes
		 * a chunk at a time with the next one queued. */
		if (r.n > 0 && (r.first + r.n != s || r.n == w->ptr_stripes ||
		    (e != NULL && r.ncopied == w->run_stripes)))
			rc = run_flush(w, &r);
		if (rc != 0)
			break;
		if (r.n == 0)
			r.first = s;
		const uint8_t **ptr = w->ptrs + (size_t)r.n * w->nd;
		if (e != NULL) {
			/* Completed from the carry: copied out of its slot,
			 * which a later stripe of this batch may take. */
			uint8_t *dst = run_buf(w) + (size_t)r.ncopied *
			    w->nd * B;
			for (uint32_t p = 0; p < w->nd; p++) {
				if (e->mask & (1u << p))
					memcpy(dst + (size_t)p * B,
					    carry_block(w, e, p), B);
				ptr[p] = dst + (size_t)p * B;
			}
			carry_del(w, e);
			r.ncopied++;
			for (uint32_t k = i; k < j; k++)
				memcpy(dst + (size_t)(b->vbn[w->idx[k]] %
				    w->nd) * B, b->data +
				    (size_t)w->idx[k] * B, B);
		} else {
			for (uint32_t k = i; k < j; k++)
				ptr[b->vbn[w->idx[k]] % w->nd] = b->data +
				    (size_t)w->idx[k] * B;
		}
		r.n++;
		i = j;
	}
	if (rc == 0)
		rc = run_flush(w, &r);
	return rc;
}

/* After a batch: a sync point if sync_every blocks were handed over. */
static int sync_note(struct mir_dwriter *w, const struct mdw_batch *b)
{
	int rc;

	if (!w->sync_on)
		return 0;
	if (b->n > 0) {
		memcpy(w->sync_vbn + w->nsync, b->vbn, b->n * sizeof(uint64_t));
		memcpy(w->sync_birth + w->nsync, b->birth,
		    b->n * sizeof(uint64_t));
		w->nsync += b->n;
	}
	if (w->nsync < w->o.sync_every)
		return 0;
	rc = stream_drain(w);
	if (rc == 0)
		rc = carry_flush(w);
	if (rc == 0)
		rc = raid_flush(w->o.raid);
	if (rc == 0)
		rc = w->o.synced_fn(w->o.arg, w->sync_vbn, w->sync_birth,
		    w->nsync);
	w->nsync = 0;
	return rc;
}

static void *writer_main(void *arg)
{
	struct mir_dwriter *w = arg;

	(void)pthread_setname_np(pthread_self(), "mir-dwrite");
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->stop && w->qhead == NULL)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->qhead == NULL)
			break;
		struct mdw_batch *b = w->qhead;
		w->qhead = b->next;
		if (w->qhead == NULL)
			w->qtail = NULL;
		w->busy = true;
		int err = w->err;
		pthread_mutex_unlock(&w->lock);
		int rc = 0;
		if (err == 0) {
			rc = write_batch(w, b);
			if (rc == 0)
				rc = sync_note(w, b);
		}
		b->seq = w->seq;
		pthread_mutex_lock(&w->lock);
		if (rc != 0 && w->err == 0)
			w->err = rc;
		b->next = NULL;
		if (w->held_tail != NULL)
			w->held_tail->next = b;
		else
			w->held = b;
		w->held_tail = b;
		if (w->qhead == NULL || rc != 0) {
			/* Going idle: nothing stays in flight, so mdw_drain
			 * and raid_flush find every block written. */
			pthread_mutex_unlock(&w->lock);
			rc = stream_drain(w);
			pthread_mutex_lock(&w->lock);
			if (rc != 0 && w->err == 0)
				w->err = rc;
			release_held(w, UINT64_MAX);
		} else if (w->ws != NULL) {
			release_held(w, raid_wstream_done(w->ws));
		}
		w->busy = false;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Background flushes: blocks written are durable sooner, and the disks'
 * write-back overlaps the writer's next blocks instead of waiting for the
 * sync raid does when a write enters a new write-intent region.  Errors
 * are the writer's (the next mdw_put or mdw_drain returns them). */
static void *flusher_main(void *arg)
{
	struct mir_dwriter *w = arg;

	(void)pthread_setname_np(pthread_self(), "mir-dflush");
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->stop && w->flush_done == w->flush_req)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stop)
			break;
		uint64_t req = w->flush_req;
		pthread_mutex_unlock(&w->lock);
		int rc = raid_flush(w->o.raid);
		pthread_mutex_lock(&w->lock);
		if (rc != 0 && w->err == 0)
			w->err = rc;
		w->flush_done = req;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* ------------------------------------------------------------- API */

static size_t batch_bytes(const struct mir_dwriter *w)
{
	return (size_t)w->o.batch_blocks * WAFL_BLOCK_SIZE;
}

static size_t run_bytes(const struct mir_dwriter *w)
{
	return (size_t)RUN_BUFS * w->run_stripes * w->nd * WAFL_BLOCK_SIZE;
}

static size_t carry_bytes(const struct mir_dwriter *w)
{
	return (size_t)w->cmax * w->nd * WAFL_BLOCK_SIZE;
}

/* Free w and everything it holds (its threads are not running). */
static void mdw_release(struct mir_dwriter *w)
{
	for (unsigned i = 0; i < MDW_NBATCH; i++) {
		mir_big_free(w->batches[i].data, batch_bytes(w));
		free(w->batches[i].vbn);
		free(w->batches[i].birth);
	}
	(void)raid_wstream_close(w->ws);
	free(w->idx);
	free(w->ptrs);
	mir_big_free(w->run, run_bytes(w));
	free(w->carry);
	mir_big_free(w->carry_data, carry_bytes(w));
	free(w->cfree);
	free(w->sync_vbn);
	free(w->sync_birth);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}

int mdw_start(const struct mdw_opts *o, struct mir_dwriter **out)
{
	struct raid_geometry g;
	struct mir_dwriter *w = calloc(1, sizeof(*w));
	int rc = -ENOMEM;

	if (w == NULL)
		return -ENOMEM;
	raid_geometry(o->raid, &g);
	w->o = *o;
	w->nd = g.stripe_width;
	if (w->nd == 0 || w->nd > 32 || o->batch_blocks == 0) {
		free(w);
		return -EINVAL;
	}
	w->full = w->nd == 32 ? UINT32_MAX : (1u << w->nd) - 1;
	w->cmax = o->carry_blocks / w->nd;
	if (w->cmax < 64)
		w->cmax = 64;
	w->ccap = 1;
	while (w->ccap < 2 * w->cmax)
		w->ccap <<= 1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	for (unsigned i = 0; i < MDW_NBATCH; i++) {
		struct mdw_batch *b = &w->batches[i];
		b->data = mir_big_alloc(batch_bytes(w));
		b->vbn = malloc(o->batch_blocks * sizeof(uint64_t));
		b->birth = malloc(o->batch_blocks * sizeof(uint64_t));
		if (b->data == NULL || b->vbn == NULL || b->birth == NULL)
			goto fail;
		b->next = w->free;
		w->free = b;
	}
	w->idx = malloc(o->batch_blocks * sizeof(uint32_t));
	w->ptr_stripes = FL_MAX(o->batch_blocks / w->nd, 1u);
	w->ptrs = malloc((size_t)w->ptr_stripes * w->nd * sizeof(*w->ptrs));
	w->run_stripes = RUN_BLOCKS / w->nd;
	w->run = mir_big_alloc(run_bytes(w));
	(void)raid_wstream_open(o->raid, &w->ws);	/* NULL: one at a time */
	w->carry = malloc(w->ccap * sizeof(*w->carry));
	w->carry_data = mir_big_alloc(carry_bytes(w));
	w->cfree = malloc(w->cmax * sizeof(uint32_t));
	if (w->idx == NULL || w->ptrs == NULL || w->run == NULL ||
	    w->carry == NULL ||
	    w->carry_data == NULL || w->cfree == NULL)
		goto fail;
	for (uint32_t i = 0; i < w->ccap; i++)
		w->carry[i].stripe = UINT64_MAX;
	for (uint32_t i = 0; i < w->cmax; i++)
		w->cfree[i] = w->cmax - 1 - i;
	w->nfree = w->cmax;
	if (o->sync_every != 0) {
		w->sync_cap = o->sync_every + o->batch_blocks;
		w->sync_vbn = malloc(w->sync_cap * sizeof(uint64_t));
		w->sync_birth = malloc(w->sync_cap * sizeof(uint64_t));
		if (w->sync_vbn == NULL || w->sync_birth == NULL)
			goto fail;
	}
	rc = -pthread_create(&w->thr, NULL, writer_main, w);
	if (rc != 0)
		goto fail;
	rc = -pthread_create(&w->fthr, NULL, flusher_main, w);
	if (rc != 0) {
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thr, NULL);
		goto fail;
	}
	*out = w;
	return 0;
fail:
	mdw_release(w);
	return rc;
}

/* Queue the producer's batch (caller holds lock). */
static void queue_cur(struct mir_dwriter *w)
{
	struct mdw_batch *b = w->cur;

	w->cur = NULL;
	if (b == NULL)
		return;
	if (b->n == 0) {
		b->next = w->free;
		w->free = b;
		return;
	}
	b->next = NULL;
	if (w->qtail != NULL)
		w->qtail->next = b;
	else
		w->qhead = b;
	w->qtail = b;
	pthread_cond_broadcast(&w->cond);
}

int mdw_put(struct mir_dwriter *w, uint64_t vbn, uint64_t birth,
    const uint8_t *data)
{
	struct mdw_batch *b = w->cur;

	if (b == NULL || b->n == w->o.batch_blocks) {
		pthread_mutex_lock(&w->lock);
		queue_cur(w);
		while (w->free == NULL && w->err == 0)
			pthread_cond_wait(&w->cond, &w->lock);
		int err = w->err;
		if (err == 0) {
			b = w->cur = w->free;
			w->free = b->next;
		}
		pthread_mutex_unlock(&w->lock);
		if (err != 0)
			return err;
	}
	memcpy(b->data + (size_t)b->n * WAFL_BLOCK_SIZE, data,
	    WAFL_BLOCK_SIZE);
	b->vbn[b->n] = vbn;
	b->birth[b->n] = birth;
	b->n++;
	return 0;
}

/* Wait until the writer has nothing queued and is idle, and no flush
 * runs (lock held). */
static void wait_idle(struct mir_dwriter *w)
{
	while (w->qhead != NULL || w->busy || w->flush_done != w->flush_req)
		pthread_cond_wait(&w->cond, &w->lock);
}

int mdw_drain(struct mir_dwriter *w)
{
	int rc;

	pthread_mutex_lock(&w->lock);
	queue_cur(w);
	wait_idle(w);
	rc = w->err;
	pthread_mutex_unlock(&w->lock);
	/* The writer is idle: what it carries is ours to write. */
	if (rc == 0)
		rc = carry_flush(w);
	/* The caller flushes and adopts (or drops the transfer): no sync
	 * point for the blocks since the last one. */
	w->nsync = 0;
	if (rc != 0) {
		pthread_mutex_lock(&w->lock);
		if (w->err == 0)
			w->err = rc;
		pthread_mutex_unlock(&w->lock);
	}
	return rc;
}

void mdw_sync(struct mir_dwriter *w, bool on)
{
	w->sync_on = on && w->o.sync_every != 0;
	w->nsync = 0;
}

void mdw_abort(struct mir_dwriter *w)
{
	pthread_mutex_lock(&w->lock);
	if (w->cur != NULL) {
		w->cur->n = 0;
		queue_cur(w);
	}
	/* Batches queued are dropped, not written. */
	w->err = w->err != 0 ? w->err : -ECANCELED;
	wait_idle(w);
	w->err = 0;
	pthread_mutex_unlock(&w->lock);
	/* The writer is idle and drained; a stream that failed keeps its
	 * error, so the next transfer gets a new one. */
	if (w->ws != NULL && raid_wstream_drain(w->ws) != 0) {
		(void)raid_wstream_close(w->ws);
		w->ws = NULL;
		(void)raid_wstream_open(w->o.raid, &w->ws);
	}
	w->seq = 0;
	memset(w->run_seq, 0, sizeof(w->run_seq));
	for (uint32_t i = 0; i < w->ccap; i++)
		w->carry[i].stripe = UINT64_MAX;
	for (uint32_t i = 0; i < w->cmax; i++)
		w->cfree[i] = w->cmax - 1 - i;
	w->nfree = w->cmax;
	w->cused = 0;
	w->nsync = 0;
}

void mdw_stop(struct mir_dwriter *w)
{
	if (w == NULL)
		return;
	mdw_abort(w);
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thr, NULL);
	pthread_join(w->fthr, NULL);
	mdw_release(w);
}
