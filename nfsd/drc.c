/*
 * nfsd/drc.c: the duplicate request cache.
 *
 * THEORY
 *   Clients retransmit after timeouts and reconnects; re-running a
 *   non-idempotent procedure would answer a successful REMOVE with NOENT or
 *   a CREATE(GUARDED) with EXIST.  For procedures flagged NOT_IDEMPOTENT
 *   the dispatcher asks nfsd_drc_begin before running the handler:
 *     - unknown key: an IN_PROGRESS entry is made, the handler runs, and
 *       nfsd_drc_finish stores a copy of the encoded reply (DONE);
 *     - DONE entry: the cached reply is sent again (same xid);
 *     - IN_PROGRESS entry: the duplicate is dropped (the first one will be
 *       answered).
 *   The key is xid + client address and port + program/version/procedure +
 *   crc32c of the first 256 bytes of the arguments (as knfsd does), so a
 *   client reusing an xid for a different call misses.
 *
 *   Bounded: at most `entries` entries, least recently used DONE entries
 *   are evicted first.  The cache is memory only: after a restart it is
 *   empty (accepted, as every NFSv3 server does).  One mutex; entries are
 *   few hundred bytes and the critical sections are a hash probe.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nfsd/nfsd_impl.h"

struct drc_ent {
	struct nfsd_drc_key k;
	bool done;
	uint8_t *reply;
	size_t len;
	struct drc_ent *hnext;
	struct drc_ent *prev, *next;	/* LRU: head newest */
};

struct nfsd_drc {
	pthread_mutex_t lock;
	size_t max, n, nbuckets;
	struct drc_ent **tab;
	struct drc_ent *head, *tail;
};

static bool peer_eq(const struct sockaddr_storage *a,
    const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a,
		    *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return true;
}

static bool key_eq(const struct nfsd_drc_key *a, const struct nfsd_drc_key *b)
{
	return a->xid == b->xid && a->proc == b->proc && a->prog == b->prog &&
	    a->vers == b->vers && a->csum == b->csum &&
	    peer_eq(&a->peer, &b->peer);
}

static size_t key_hash(const struct nfsd_drc *d, const struct nfsd_drc_key *k)
{
	uint64_t h = (uint64_t)k->xid * 0x9e3779b97f4a7c15ull;

	h ^= k->csum + ((uint64_t)k->proc << 32);
	h *= 0xff51afd7ed558ccdull;
	return (size_t)(h >> 17) % d->nbuckets;
}

int nfsd_drc_create(uint32_t entries, struct nfsd_drc **out)
{
	struct nfsd_drc *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -ENOMEM;
	d->max = entries;
	d->nbuckets = entries * 2 + 1;
	d->tab = calloc(d->nbuckets, sizeof(*d->tab));
	if (d->tab == NULL) {
		free(d);
		return -ENOMEM;
	}
	pthread_mutex_init(&d->lock, NULL);
	*out = d;
	return 0;
}

static void lru_unlink(struct nfsd_drc *d, struct drc_ent *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		d->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		d->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct nfsd_drc *d, struct drc_ent *e)
{
	e->prev = NULL;
	e->next = d->head;
	if (d->head != NULL)
		d->head->prev = e;
	d->head = e;
	if (d->tail == NULL)
		d->tail = e;
}

static void ent_remove(struct nfsd_drc *d, struct drc_ent *e)
{
	struct drc_ent **pp = &d->tab[key_hash(d, &e->k)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(d, e);
	free(e->reply);
	free(e);
	d->n--;
}

static struct drc_ent *find(struct nfsd_drc *d, const struct nfsd_drc_key *k)
{
	for (struct drc_ent *e = d->tab[key_hash(d, k)]; e; e = e->hnext)
		if (key_eq(&e->k, k))
			return e;
	return NULL;
}

void nfsd_drc_free(struct nfsd_drc *d)
{
	if (d == NULL)
		return;
	while (d->head != NULL)
		ent_remove(d, d->head);
	free(d->tab);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

enum nfsd_drc_verdict nfsd_drc_begin(struct nfsd_drc *d,
    const struct nfsd_drc_key *k, uint8_t **reply, size_t *len)
{
	enum nfsd_drc_verdict v = DRC_NEW;

	pthread_mutex_lock(&d->lock);
	struct drc_ent *e = find(d, k);
	if (e != NULL) {
		if (!e->done) {
			v = DRC_INPROGRESS;
			goto out;
		}
		/* Copy with 4 bytes of room for the record mark. */
		uint8_t *copy = malloc(4 + e->len);
		if (copy == NULL) {
			v = DRC_INPROGRESS;	/* drop: the client retries */
			goto out;
		}
		memcpy(copy + 4, e->reply, e->len);
		*reply = copy;
		*len = e->len;
		lru_unlink(d, e);
		lru_push(d, e);
		v = DRC_REPLAY;
		goto out;
	}
	/* Make room: evict the oldest finished entries. */
	for (struct drc_ent *t = d->tail; d->n >= d->max && t != NULL;) {
		struct drc_ent *p = t->prev;
		if (t->done)
			ent_remove(d, t);
		t = p;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		goto out;	/* run uncached */
	e->k = *k;
	size_t b = key_hash(d, k);
	e->hnext = d->tab[b];
	d->tab[b] = e;
	lru_push(d, e);
	d->n++;
out:
	pthread_mutex_unlock(&d->lock);
	return v;
}

void nfsd_drc_finish(struct nfsd_drc *d, const struct nfsd_drc_key *k,
    const uint8_t *reply, size_t len)
{
	pthread_mutex_lock(&d->lock);
	struct drc_ent *e = find(d, k);
	if (e != NULL && !e->done) {
		uint8_t *copy = reply != NULL ? malloc(len) : NULL;
		if (copy == NULL) {
			ent_remove(d, e);
		} else {
			memcpy(copy, reply, len);
			e->reply = copy;
			e->len = len;
			e->done = true;
		}
	}
	pthread_mutex_unlock(&d->lock);
}
