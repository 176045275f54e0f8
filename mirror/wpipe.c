/*
 * mirror/wpipe.c: a walk's callback on a thread of its own.
 *
 * THEORY
 *   A transfer by birth generation reads blocks (wafl_birth_walk) and
 *   sends them (walk_send in source.c).  In one thread the two take turns:
 *   the disks are idle while a run of blocks goes into the socket, and
 *   the link while the next run is read, so the transfer runs at the
 *   harmonic sum of the two rates.  Here the walk's thread only reads:
 *   mir_wpipe_push copies each block into a ring of WPIPE_BLOCKS and
 *   returns, and a thread of the pipe hands the blocks to the real
 *   callback in the same order.  The walk reads up to the ring's size
 *   ahead of the link.
 *
 * ERRORS
 *   The first error of the callback is kept: the consumer stops, and the
 *   next push returns that error, which ends the walk as the callback's
 *   own return would have.  mir_wpipe_finish(p, rc) with the walk's
 *   result rc waits for the consumer (it drains what is queued when rc is
 *   0, and drops it otherwise) and returns rc, else the callback's error.
 *   After it, the callback has run for exactly the blocks it was given,
 *   in order, and no longer runs: the caller may use what the callback
 *   touched.
 *
 * CONCURRENCY
 *   One producer (the walk) and one consumer.  A slot belongs to the
 *   producer from tail until it is published, then to the consumer until
 *   it is released; `mu` covers the counters, and each side is woken
 *   only when the other is waiting for it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mirror/mir_impl.h"

#define WPIPE_BLOCKS	2048u	/* 8 MiB read ahead of the link */

struct wpipe_ent {
	uint64_t vbn, birth;
	uint32_t cksum;
	unsigned flags;
};

struct mir_wpipe {
	wafl_walk_fn *fn;
	void *arg;
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint8_t *data;			/* WPIPE_BLOCKS blocks */
	struct wpipe_ent ent[WPIPE_BLOCKS];
	uint64_t head, tail;		/* consumed, published: head <= tail */
	bool done;			/* no more pushes */
	bool drop;			/* finish: do not drain */
	bool prod_waits, cons_waits;
	int err;			/* the callback's first error */
};

static void *wpipe_main(void *arg)
{
	struct mir_wpipe *p = arg;

	(void)pthread_setname_np(pthread_self(), "mir-wpipe");
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->head == p->tail && !p->done) {
			p->cons_waits = true;
			pthread_cond_wait(&p->cv, &p->mu);
		}
		p->cons_waits = false;
		if (p->head == p->tail || p->drop)
			break;
		uint32_t i = (uint32_t)(p->head % WPIPE_BLOCKS);
		pthread_mutex_unlock(&p->mu);
		const struct wpipe_ent *e = &p->ent[i];
		int rc = p->fn(p->arg, e->vbn, e->birth, e->cksum,
		    p->data + (size_t)i * WAFL_BLOCK_SIZE, e->flags);
		pthread_mutex_lock(&p->mu);
		p->head++;
		if (rc != 0)
			p->err = rc;
		if (p->prod_waits || rc != 0)
			pthread_cond_broadcast(&p->cv);
		if (rc != 0)
			break;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int mir_wpipe_start(wafl_walk_fn *fn, void *arg, struct mir_wpipe **out)
{
	struct mir_wpipe *p = calloc(1, sizeof(*p));
	int rc;

	*out = NULL;
	if (p == NULL)
		return -ENOMEM;
	p->fn = fn;
	p->arg = arg;
	p->data = mir_big_alloc((size_t)WPIPE_BLOCKS * WAFL_BLOCK_SIZE);
	if (p->data == NULL) {
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	rc = -pthread_create(&p->thr, NULL, wpipe_main, p);
	if (rc != 0) {
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		mir_big_free(p->data, (size_t)WPIPE_BLOCKS * WAFL_BLOCK_SIZE);
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

int mir_wpipe_push(void *arg, uint64_t vbn, uint64_t birth, uint32_t cksum,
    const void *blk, unsigned flags)
{
	struct mir_wpipe *p = arg;
	int err;

	pthread_mutex_lock(&p->mu);
	while (p->err == 0 && p->tail - p->head == WPIPE_BLOCKS) {
		p->prod_waits = true;
		pthread_cond_wait(&p->cv, &p->mu);
	}
	p->prod_waits = false;
	err = p->err;
	pthread_mutex_unlock(&p->mu);
	if (err != 0)
		return err;
	/* Slot tail is the producer's until published. */
	uint32_t i = (uint32_t)(p->tail % WPIPE_BLOCKS);
	memcpy(p->data + (size_t)i * WAFL_BLOCK_SIZE, blk, WAFL_BLOCK_SIZE);
	p->ent[i] = (struct wpipe_ent){ .vbn = vbn, .birth = birth,
	    .cksum = cksum, .flags = flags };
	pthread_mutex_lock(&p->mu);
	p->tail++;
	if (p->cons_waits)
		pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

int mir_wpipe_finish(struct mir_wpipe *p, int rc)
{
	pthread_mutex_lock(&p->mu);
	p->done = true;
	p->drop = rc != 0;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thr, NULL);
	if (rc == 0)
		rc = p->err;
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	mir_big_free(p->data, (size_t)WPIPE_BLOCKS * WAFL_BLOCK_SIZE);
	free(p);
	return rc;
}
