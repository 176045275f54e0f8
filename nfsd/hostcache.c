/*
 * nfsd/hostcache.c: client host names for the host-name patterns of
 * export rules ("*.lab"), and their cache.
 *
 * THEORY
 *   A pattern rule matches a caller by name, and a name is only worth
 *   what the DNS of the caller's network says: a PTR record is written by
 *   whoever owns the address block, so anyone can make 192.0.2.7 claim to
 *   be "host.lab".  As Linux mountd does, a name is believed only when it
 *   is forward-confirmed: the reverse lookup of the address (getnameinfo,
 *   NI_NAMEREQD) gives a name, and the forward lookup of that name
 *   (getaddrinfo) gives the address back.  Names that are not host names
 *   (other bytes than letters, digits, '.', '-', '_'; longer than
 *   NFSD_HOSTNAME_MAX; an address in text form, which would confirm
 *   itself) are no name.  A failed or timed-out lookup is no name too: the
 *   pattern rules do not match and the next rule is tried.
 *
 *   Lookups are slow (a resolver timeout is seconds, and a broken DNS
 *   makes every lookup that slow), and the workers serve every client, so
 *   a lookup must never hold the service up:
 *     - lookups run on NFSD_HOST_RESOLVERS threads of the cache's own,
 *       from a FIFO queue; the workers that need a name (inside
 *       nfsd_rule_match, never the event thread: ASSERTed) only wait;
 *     - each answer is kept per client address: a name for ttl_ms, no
 *       name for neg_ttl_ms (shorter, so a repaired DNS is seen soon and
 *       a passing resolver failure refuses a client only briefly); a
 *       call from a client seen within that time costs a hash probe;
 *     - an expired answer is still given while a lookup refreshes it
 *       (one per address), so a busy client never waits at each TTL;
 *     - for an address never answered a caller waits at most wait_ms,
 *       and at most max_waiters callers wait at once (the server allows
 *       half its workers); otherwise -EAGAIN: NFS answers
 *       NFS3ERR_JUKEBOX, which tells the client to try again later, and
 *       MOUNT drops the call, which the client retransmits.  The lookup
 *       goes on, and a later call finds its answer.  A refusal would be
 *       a guess, and so would a rule after the pattern (the first
 *       matching rule wins);
 *     - at most `entries` addresses are kept; the least recently used
 *       answer is evicted first.  The table (entries slots and their hash
 *       buckets, about 300 bytes a slot) is allocated at the first lookup,
 *       so a server without pattern rules never pays for it, and the
 *       resolver threads start with the first lookup;
 *     - one lookup per address at a time: while an address is queued or
 *       being resolved (`queued`; PENDING until it was answered once),
 *       other callers for it wait for that answer.  A queued slot is
 *       never evicted, so the queue is bounded by the slots; with every
 *       slot queued, a new address gets -EAGAIN at once.
 *
 *   Concurrency: one mutex over the table and the queue, held for hash
 *   probes only, never across a lookup; a condition variable for the
 *   resolvers' work, one broadcast when a lookup got its answer.  The
 *   resolver threads are detached and hold a reference: freeing the
 *   cache never waits for a lookup in flight, whose thread drops the
 *   last reference when it is done.
 *
 *   The cache belongs to the server, not to its export table: an answer
 *   is a name, which does not depend on the rules, so it stays valid
 *   across nfsd_set_exports.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/assert.h"
#include "common/log.h"
#include "common/util.h"
#include "nfsd/nfsd_impl.h"

#define HOSTCACHE_MAX_ENTRIES	65536u

/* ----------------------------------------------------------- resolving */

static size_t addr_len(sa_family_t family)
{
	return family == AF_INET ? 4 : 16;
}

/* A host name (not an address in text form), of a bounded length. */
static bool name_ok(const char *name)
{
	size_t n = strnlen(name, NFSD_HOSTNAME_MAX + 1);
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST,
	    .ai_socktype = SOCK_STREAM }, *ai = NULL;

	if (n == 0 || n > NFSD_HOSTNAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) &&
		    strchr(".-_", name[i]) == NULL)
			return false;
	/* "10.1.2.3", but also "10.258" or "0x7f.1", which getaddrinfo
	 * reads as addresses. */
	if (getaddrinfo(name, NULL, &hints, &ai) == 0) {
		freeaddrinfo(ai);
		return false;
	}
	return true;
}

/* Temporary resolver failures (a timeout, no memory), as against "no
 * such name": they must not be remembered as an answer. */
static bool eai_temporary(int eai)
{
	return eai == EAI_AGAIN || eai == EAI_MEMORY || eai == EAI_SYSTEM;
}

/* Does name's forward lookup give family/addr back?  1 yes, 0 no,
 * -EAGAIN the resolver failed for now.  IPv4-mapped IPv6 results compare
 * as IPv4. */
static int name_leads_back(const char *name, sa_family_t family,
    const uint8_t *addr)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	bool found = false;
	int eai = getaddrinfo(name, NULL, &hints, &ai);

	if (eai != 0)
		return eai_temporary(eai) ? -EAGAIN : 0;
	for (struct addrinfo *a = ai; a != NULL && !found; a = a->ai_next) {
		const uint8_t *p = NULL;
		sa_family_t f = AF_UNSPEC;

		if (a->ai_family == AF_INET &&
		    a->ai_addrlen >= sizeof(struct sockaddr_in)) {
			const struct sockaddr_in *s = (const void *)a->ai_addr;
			f = AF_INET;
			p = (const uint8_t *)&s->sin_addr;
		} else if (a->ai_family == AF_INET6 &&
		    a->ai_addrlen >= sizeof(struct sockaddr_in6)) {
			const struct sockaddr_in6 *s = (const void *)a->ai_addr;
			f = AF_INET6;
			p = s->sin6_addr.s6_addr;
			if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
				f = AF_INET;
				p += 12;
			}
		}
		found = f == family && memcmp(p, addr, addr_len(f)) == 0;
	}
	freeaddrinfo(ai);
	return found ? 1 : 0;
}

int nfsd_host_resolve(sa_family_t family, const uint8_t *addr, char *name)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char host[NI_MAXHOST];

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *s = (void *)&ss;
		s->sin_family = AF_INET;
		memcpy(&s->sin_addr, addr, 4);
		sl = sizeof(*s);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 *s = (void *)&ss;
		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, addr, 16);
		sl = sizeof(*s);
	} else {
		return -ENOENT;
	}
	int eai = getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host),
	    NULL, 0, NI_NAMEREQD);
	if (eai != 0)
		return eai_temporary(eai) ? -EAGAIN : -ENOENT;
	if (!name_ok(host))
		return -ENOENT;
	int back = name_leads_back(host, family, addr);
	if (back < 0)
		return back;
	if (back == 0) {
		char text[INET6_ADDRSTRLEN];

		/* Once per lookup: the cache keeps the answer neg_ttl_ms. */
		if (inet_ntop(family, addr, text, sizeof(text)) == NULL)
			snprintf(text, sizeof(text), "?");
		fl_info("nfsd", "client %s: its name %s does not resolve back "
		    "to it; host-name rules do not match it", text, host);
		return -ENOENT;
	}
	memcpy(name, host, strlen(host) + 1);
	return 0;
}

/* --------------------------------------------------------------- cache */

/*
 * An address's entry: PENDING until its first answer; NAMED or UNNAMED
 * with that answer; RETRY after a temporary resolver failure left nothing
 * to believe (callers are told to retry until expires_ns, then it is
 * asked again).  `queued` while a lookup for it waits or runs: such an
 * entry is never evicted, so the queues are bounded by the slots.
 */
enum host_state {
	HOST_FREE = 0, HOST_PENDING, HOST_NAMED, HOST_UNNAMED, HOST_RETRY
};

/* After a temporary failure: how soon to ask again (at most neg_ttl). */
#define HOST_RETRY_NS		(5000ull * 1000000u)
/* Slots slot_take looks at, from the LRU end, for one it may evict. */
#define HOST_EVICT_SCAN		64

struct host_ent {
	sa_family_t family;
	uint8_t addr[16];
	enum host_state state;
	bool queued;			/* on a queue or with a resolver */
	uint64_t expires_ns;		/* fresh until (RETRY: ask again at) */
	uint64_t usable_ns;		/* NAMED: may serve, refreshing, until */
	uint64_t next_try_ns;		/* no refresh queued before this */
	struct host_ent *hnext;		/* bucket chain */
	struct host_ent *prev, *next;	/* LRU (head newest), or free list */
	struct host_ent *qnext;		/* a queue */
	char name[NFSD_HOSTNAME_MAX + 1];	/* NAMED */
};

struct host_queue {
	struct host_ent *head, **tail;
};

struct nfsd_hostcache {
	pthread_mutex_t lock;
	pthread_cond_t answered;	/* a lookup ended (monotonic clock) */
	pthread_cond_t work;		/* a queue has an entry, or stop */
	nfsd_resolve_fn resolve;
	uint32_t max;
	uint64_t ttl_ns, neg_ttl_ns, wait_ns, retry_ns;
	uint32_t max_waiters, waiters;
	uint64_t seed;			/* hash, against chosen addresses */
	struct host_ent *slots;		/* max of them; NULL until used */
	struct host_ent **tab;
	size_t nbuckets;
	struct host_ent *head, *tail;	/* LRU of slots in use */
	struct host_ent *free;
	/* Lookups to make, FIFO each: addresses never answered first, so a
	 * new client is not behind every refresh. */
	struct host_queue qnew, qold;
	unsigned nthreads;		/* resolver threads started */
	unsigned refs;			/* the owner's and each thread's */
	bool stopping;
	uint64_t warned_ns;		/* last "no resolver thread" warning */
	uint64_t lookups, hits, stale, busy;
};

int nfsd_hostcache_create(const struct nfsd_hostcache_cfg *cfg,
    nfsd_resolve_fn resolve, struct nfsd_hostcache **out)
{
	struct nfsd_hostcache *c;
	pthread_condattr_t ca;

	if (cfg->entries == 0 || cfg->entries > HOSTCACHE_MAX_ENTRIES ||
	    resolve == NULL || cfg->max_waiters == 0)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->resolve = resolve;
	c->max = cfg->entries;
	c->ttl_ns = (uint64_t)cfg->ttl_ms * 1000000u;
	c->neg_ttl_ns = (uint64_t)cfg->neg_ttl_ms * 1000000u;
	c->wait_ns = (uint64_t)cfg->wait_ms * 1000000u;
	c->retry_ns = FL_MIN(HOST_RETRY_NS, c->neg_ttl_ns);
	c->max_waiters = cfg->max_waiters;
	c->refs = 1;
	c->qnew.tail = &c->qnew.head;
	c->qold.tail = &c->qold.head;
	if (fl_random_bytes(&c->seed, sizeof(c->seed)) != 0)
		c->seed = fl_now_mono_ns();
	pthread_mutex_init(&c->lock, NULL);
	/* Waits end by the monotonic clock: a step of the wall clock must
	 * not stretch them. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->answered, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&c->work, NULL);
	*out = c;
	return 0;
}

/* The last reference frees; lock held on entry, released here. */
static void unref_locked(struct nfsd_hostcache *c)
{
	bool last = --c->refs == 0;

	pthread_mutex_unlock(&c->lock);
	if (!last)
		return;
	free(c->slots);
	free(c->tab);
	pthread_cond_destroy(&c->work);
	pthread_cond_destroy(&c->answered);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/*
 * The resolver threads are detached and may be inside a lookup that takes
 * the resolver's whole timeout: they finish it, see stopping and drop
 * their reference, so freeing never waits for the resolver.
 */
void nfsd_hostcache_free(struct nfsd_hostcache *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_broadcast(&c->work);
	unref_locked(c);
}

static size_t bucket(const struct nfsd_hostcache *c, sa_family_t family,
    const uint8_t *addr)
{
	uint64_t h = c->seed ^ family;

	for (size_t i = 0; i < addr_len(family); i++) {
		h ^= addr[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 29;
	return (size_t)(h % c->nbuckets);
}

static struct host_ent *find(struct nfsd_hostcache *c, sa_family_t family,
    const uint8_t *addr)
{
	if (c->slots == NULL)
		return NULL;
	for (struct host_ent *e = c->tab[bucket(c, family, addr)]; e != NULL;
	    e = e->hnext)
		if (e->family == family &&
		    memcmp(e->addr, addr, addr_len(family)) == 0)
			return e;
	return NULL;
}

static void lru_unlink(struct nfsd_hostcache *c, struct host_ent *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct nfsd_hostcache *c, struct host_ent *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head != NULL)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

/* The table, at the first lookup.  false: no memory. */
static bool table_alloc(struct nfsd_hostcache *c)
{
	if (c->slots != NULL)
		return true;
	c->nbuckets = (size_t)c->max * 2 + 1;
	c->tab = calloc(c->nbuckets, sizeof(*c->tab));
	c->slots = calloc(c->max, sizeof(*c->slots));
	if (c->tab == NULL || c->slots == NULL) {
		free(c->tab);
		free(c->slots);
		c->tab = NULL;
		c->slots = NULL;
		return false;
	}
	for (uint32_t i = c->max; i > 0; i--) {
		c->slots[i - 1].next = c->free;
		c->free = &c->slots[i - 1];
	}
	return true;
}

/* Take e out of the hash and the LRU, back to the free list. */
static void slot_drop(struct nfsd_hostcache *c, struct host_ent *e)
{
	struct host_ent **pp = &c->tab[bucket(c, e->family, e->addr)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(c, e);
	memset(e, 0, sizeof(*e));
	e->next = c->free;
	c->free = e;
}

/* A slot for family/addr, PENDING, in the hash and at the LRU head: a
 * free one, else the least recently used one no lookup is about (among
 * the HOST_EVICT_SCAN oldest).  NULL when those all wait for a lookup
 * (or no memory). */
static struct host_ent *slot_take(struct nfsd_hostcache *c,
    sa_family_t family, const uint8_t *addr)
{
	struct host_ent *e = NULL;

	if (!table_alloc(c))
		return NULL;
	if (c->free == NULL) {
		unsigned n = 0;

		for (e = c->tail; e != NULL && e->queued &&
		    n < HOST_EVICT_SCAN; e = e->prev, n++)
			;
		if (e == NULL || e->queued)
			return NULL;
		slot_drop(c, e);
	}
	e = c->free;
	c->free = e->next;
	memset(e, 0, sizeof(*e));
	e->family = family;
	memcpy(e->addr, addr, addr_len(family));
	e->state = HOST_PENDING;
	size_t b = bucket(c, family, addr);
	e->hnext = c->tab[b];
	c->tab[b] = e;
	lru_push(c, e);
	return e;
}

static void *resolver_main(void *arg);

/* Queue e's lookup (a refresh behind the first lookups); a resolver
 * thread takes it.  false: no thread could be started (not queued). */
static bool enqueue(struct nfsd_hostcache *c, struct host_ent *e,
    bool refresh)
{
	struct host_queue *q = refresh ? &c->qold : &c->qnew;

	if (c->nthreads < NFSD_HOST_RESOLVERS) {
		pthread_t t;
		pthread_attr_t at;
		bool ok;

		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		c->refs++;
		ok = pthread_create(&t, &at, resolver_main, c) == 0;
		pthread_attr_destroy(&at);
		if (ok)
			c->nthreads++;
		else
			c->refs--;
		if (c->nthreads == 0) {
			/* Once a minute at most. */
			uint64_t now = fl_now_mono_ns();
			if (now - c->warned_ns > 60000000000ull ||
			    c->warned_ns == 0) {
				c->warned_ns = now;
				fl_warn("nfsd", "host names: no resolver thread "
				    "could be started; clients of host-name "
				    "rules are asked to retry");
			}
			return false;
		}
	}
	e->queued = true;
	e->qnext = NULL;
	*q->tail = e;
	q->tail = &e->qnext;
	c->lookups++;
	pthread_cond_signal(&c->work);
	return true;
}

static struct host_ent *dequeue(struct nfsd_hostcache *c)
{
	struct host_queue *q = c->qnew.head != NULL ? &c->qnew : &c->qold;
	struct host_ent *e = q->head;

	if (e != NULL) {
		q->head = e->qnext;
		if (q->head == NULL)
			q->tail = &q->head;
	}
	return e;
}

static void *resolver_main(void *arg)
{
	struct nfsd_hostcache *c = arg;
	char found[NFSD_HOSTNAME_MAX + 1];

	(void)pthread_setname_np(pthread_self(), "nfsd-resolve");
	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct host_ent *e = NULL;

		while (!c->stopping && (e = dequeue(c)) == NULL)
			pthread_cond_wait(&c->work, &c->lock);
		if (c->stopping)
			break;
		sa_family_t family = e->family;
		uint8_t addr[16];

		memcpy(addr, e->addr, sizeof(addr));
		/* e stays put while queued: slot_take skips it. */
		pthread_mutex_unlock(&c->lock);
		int rc = c->resolve(family, addr, found);
		if (rc == 0 && (found[0] == '\0' ||
		    strnlen(found, sizeof(found)) == sizeof(found)))
			rc = -ENOENT;	/* a resolver that broke its promise */
		else if (rc != 0 && rc != -EAGAIN)
			rc = -ENOENT;
		pthread_mutex_lock(&c->lock);
		uint64_t now = fl_now_mono_ns();
		e->queued = false;
		e->next_try_ns = 0;
		if (rc == 0) {
			e->state = HOST_NAMED;
			e->expires_ns = now + c->ttl_ns;
			/* An old name serves while its refresh runs, at
			 * most neg_ttl past its TTL. */
			e->usable_ns = e->expires_ns + c->neg_ttl_ns;
			memcpy(e->name, found, strlen(found) + 1);
		} else if (rc == -ENOENT) {
			e->state = HOST_UNNAMED;
			e->expires_ns = now + c->neg_ttl_ns;
		} else if (e->state == HOST_NAMED) {
			/* The resolver failed for now: the name found before
			 * stays (until usable_ns, not longer); ask again in a
			 * while. */
			e->next_try_ns = now + c->retry_ns;
		} else {
			/* Nothing to believe: callers retry later. */
			e->state = HOST_RETRY;
			e->expires_ns = now + c->retry_ns;
		}
		pthread_cond_broadcast(&c->answered);
	}
	unref_locked(c);
	return NULL;
}

/* e's answer into name: 0 or -ENOENT. */
static int answer(const struct host_ent *e, char *name)
{
	if (e->state != HOST_NAMED)
		return -ENOENT;
	memcpy(name, e->name, strlen(e->name) + 1);
	return 0;
}

static void mono_deadline(struct timespec *ts, uint64_t ns)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ns += (uint64_t)ts->tv_nsec;
	ts->tv_sec += (time_t)(ns / 1000000000u);
	ts->tv_nsec = (long)(ns % 1000000000u);
}

int nfsd_hostcache_name(struct nfsd_hostcache *c, sa_family_t family,
    const uint8_t *addr, char *name)
{
	struct host_ent *e;
	struct timespec dl;
	bool asked = false, waiting = false, timed_out = false;
	int rc;

	ASSERT(!nfsd_on_event_thread());
	if (family != AF_INET && family != AF_INET6)
		return -ENOENT;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		uint64_t now = fl_now_mono_ns();

		/* Look again after each wake-up: the slot may have been
		 * answered and reused meanwhile. */
		e = find(c, family, addr);
		if (e != NULL && e->state != HOST_PENDING) {
			lru_unlink(c, e);
			lru_push(c, e);
		}
		if (e != NULL && e->state == HOST_NAMED) {
			if (now < e->expires_ns) {
				if (!asked)
					c->hits++;
				rc = answer(e, name);
				break;
			}
			if (!e->queued && now >= e->next_try_ns &&
			    !enqueue(c, e, true))
				e->next_try_ns = now + c->retry_ns;
			if (now < e->usable_ns) {
				/* Served while the refresh runs. */
				c->stale++;
				rc = answer(e, name);
				break;
			}
			/* Too old to believe: wait for the refresh, if one
			 * runs; else the caller retries later. */
			if (!e->queued) {
				rc = -EAGAIN;
				c->busy++;
				break;
			}
		} else if (e != NULL && e->state == HOST_UNNAMED) {
			if (now < e->expires_ns) {
				if (!asked)
					c->hits++;
				rc = -ENOENT;
				break;
			}
			/* "No name" is not served past its TTL: a repaired
			 * DNS must not cost a refusal.  Wait for the new
			 * answer. */
			if (!e->queued && !enqueue(c, e, true)) {
				rc = -EAGAIN;
				c->busy++;
				break;
			}
		} else if (e != NULL && e->state == HOST_RETRY) {
			if (now < e->expires_ns || asked) {
				rc = -EAGAIN;
				c->busy++;
				break;
			}
			e->state = HOST_PENDING;
			if (!enqueue(c, e, false)) {
				e->state = HOST_RETRY;
				e->expires_ns = now + c->retry_ns;
				rc = -EAGAIN;
				c->busy++;
				break;
			}
			asked = true;
		} else if (e == NULL) {
			/* Never asked, or answered and evicted before this
			 * caller woke: ask. */
			e = slot_take(c, family, addr);
			if (e == NULL || !enqueue(c, e, false)) {
				if (e != NULL)
					slot_drop(c, e);
				rc = -EAGAIN;
				c->busy++;
				break;
			}
			asked = true;
		}
		/* No answer to give yet: wait for the lookup, a while, if not
		 * too many wait already (the other workers serve the callers
		 * the cache knows, and those of address rules). */
		if (timed_out) {
			rc = -EAGAIN;	/* the lookup goes on */
			c->busy++;
			break;
		}
		if (!waiting) {
			if (c->waiters >= c->max_waiters) {
				rc = -EAGAIN;
				c->busy++;
				break;
			}
			c->waiters++;
			waiting = true;
			mono_deadline(&dl, c->wait_ns);
		}
		if (pthread_cond_timedwait(&c->answered, &c->lock, &dl) ==
		    ETIMEDOUT)
			timed_out = true;	/* one last look */
	}
	if (waiting)
		c->waiters--;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

bool nfsd_hostcache_ready(struct nfsd_hostcache *c, sa_family_t family,
    const uint8_t *addr)
{
	struct host_ent *e;
	uint64_t now = fl_now_mono_ns();
	bool ready;

	if (family != AF_INET && family != AF_INET6)
		return true;
	pthread_mutex_lock(&c->lock);
	e = find(c, family, addr);
	if (e == NULL) {
		/* Start the lookup now: the call waits for it alone. */
		e = slot_take(c, family, addr);
		if (e != NULL && !enqueue(c, e, false))
			slot_drop(c, e);
		ready = false;
	} else {
		ready = (e->state == HOST_NAMED && now < e->usable_ns) ||
		    (e->state == HOST_UNNAMED && now < e->expires_ns) ||
		    (e->state == HOST_RETRY && now < e->expires_ns);
	}
	pthread_mutex_unlock(&c->lock);
	return ready;
}

void nfsd_hostcache_stats(struct nfsd_hostcache *c,
    struct nfsd_hostcache_stats *st)
{
	pthread_mutex_lock(&c->lock);
	st->lookups = c->lookups;
	st->hits = c->hits;
	st->stale = c->stale;
	st->busy = c->busy;
	pthread_mutex_unlock(&c->lock);
}
