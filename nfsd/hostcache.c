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
 *   Lookups are slow (a resolver timeout is seconds), so:
 *     - they run on the workers only, inside nfsd_rule_match, never on
 *       the event thread (ASSERTed: nfsd_on_event_thread);
 *     - each answer is kept per client address: a name for ttl_ms, no
 *       name for neg_ttl_ms (shorter, so a repaired DNS is seen soon and
 *       a passing resolver failure refuses a client only briefly); a
 *       call from a client seen within that time costs a hash probe;
 *     - at most `entries` addresses are kept; the least recently used
 *       answer is evicted first.  The table (entries slots and their hash
 *       buckets, about 300 bytes a slot) is allocated at the first lookup,
 *       so a server without pattern rules never pays for it;
 *     - one lookup per address at a time: while one worker resolves an
 *       address (its slot PENDING), other workers asking for the same
 *       address wait for that answer instead of asking the resolver again.
 *       A PENDING slot is never evicted; if every slot is PENDING (more
 *       lookups in flight than slots) the lookup runs uncached.
 *
 *   Concurrency: one mutex over the table, held for hash probes only,
 *   never across a lookup; one condition variable, broadcast when a
 *   PENDING slot gets its answer.
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

/* Does name's forward lookup give family/addr back?  IPv4-mapped IPv6
 * results compare as IPv4. */
static bool name_leads_back(const char *name, sa_family_t family,
    const uint8_t *addr)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	bool found = false;

	if (getaddrinfo(name, NULL, &hints, &ai) != 0)
		return false;
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
	return found;
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
	if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), NULL,
	    0, NI_NAMEREQD) != 0 || !name_ok(host))
		return -ENOENT;
	if (!name_leads_back(host, family, addr)) {
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

enum host_state { HOST_FREE = 0, HOST_PENDING, HOST_NAMED, HOST_UNNAMED };

struct host_ent {
	sa_family_t family;
	uint8_t addr[16];
	enum host_state state;
	uint64_t expires_ns;		/* NAMED / UNNAMED: believed until */
	struct host_ent *hnext;		/* bucket chain */
	struct host_ent *prev, *next;	/* LRU (head newest), or free list */
	char name[NFSD_HOSTNAME_MAX + 1];	/* NAMED */
};

struct nfsd_hostcache {
	pthread_mutex_t lock;
	pthread_cond_t answered;	/* a PENDING slot got its answer */
	nfsd_resolve_fn resolve;
	uint32_t max;
	uint64_t ttl_ns, neg_ttl_ns;
	uint64_t seed;			/* hash, against chosen addresses */
	struct host_ent *slots;		/* max of them; NULL until used */
	struct host_ent **tab;
	size_t nbuckets;
	struct host_ent *head, *tail;	/* LRU of slots in use */
	struct host_ent *free;
	uint64_t lookups, hits;
};

int nfsd_hostcache_create(uint32_t entries, uint32_t ttl_ms,
    uint32_t neg_ttl_ms, nfsd_resolve_fn resolve,
    struct nfsd_hostcache **out)
{
	struct nfsd_hostcache *c;

	if (entries == 0 || entries > HOSTCACHE_MAX_ENTRIES || resolve == NULL)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->resolve = resolve;
	c->max = entries;
	c->ttl_ns = (uint64_t)ttl_ms * 1000000u;
	c->neg_ttl_ns = (uint64_t)neg_ttl_ms * 1000000u;
	if (fl_random_bytes(&c->seed, sizeof(c->seed)) != 0)
		c->seed = fl_now_mono_ns();
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->answered, NULL);
	*out = c;
	return 0;
}

void nfsd_hostcache_free(struct nfsd_hostcache *c)
{
	if (c == NULL)
		return;
	free(c->slots);
	free(c->tab);
	pthread_cond_destroy(&c->answered);
	pthread_mutex_destroy(&c->lock);
	free(c);
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

/* The table, at the first lookup.  false: no memory (run uncached). */
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

/* A slot for family/addr, PENDING, in the hash and at the LRU head: a
 * free one, else the least recently used answered one.  NULL when every
 * slot is PENDING (or no memory). */
static struct host_ent *slot_take(struct nfsd_hostcache *c,
    sa_family_t family, const uint8_t *addr)
{
	struct host_ent *e = NULL;

	if (!table_alloc(c))
		return NULL;
	if (c->free != NULL) {
		e = c->free;
		c->free = e->next;
		e->next = NULL;
	} else {
		for (e = c->tail; e != NULL && e->state == HOST_PENDING;
		    e = e->prev)
			;
		if (e == NULL)
			return NULL;
		struct host_ent **pp = &c->tab[bucket(c, e->family, e->addr)];
		while (*pp != e)
			pp = &(*pp)->hnext;
		*pp = e->hnext;
		lru_unlink(c, e);
	}
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

int nfsd_hostcache_name(struct nfsd_hostcache *c, sa_family_t family,
    const uint8_t *addr, char *name)
{
	char found[NFSD_HOSTNAME_MAX + 1];
	struct host_ent *e;
	int rc;

	ASSERT(!nfsd_on_event_thread());
	if (family != AF_INET && family != AF_INET6)
		return -ENOENT;
	pthread_mutex_lock(&c->lock);
	/* Another worker is asking the resolver about this address: its
	 * answer is ours.  (Look again after each wake-up: the slot may
	 * have been answered and reused meanwhile.) */
	while ((e = find(c, family, addr)) != NULL &&
	    e->state == HOST_PENDING)
		pthread_cond_wait(&c->answered, &c->lock);
	if (e != NULL && fl_now_mono_ns() < e->expires_ns) {
		c->hits++;
		lru_unlink(c, e);
		lru_push(c, e);
		rc = e->state == HOST_NAMED ? 0 : -ENOENT;
		if (rc == 0)
			memcpy(name, e->name, strlen(e->name) + 1);
		goto out;
	}
	/* Unknown, or known too long ago: ask (without the lock). */
	if (e != NULL) {
		e->state = HOST_PENDING;
		lru_unlink(c, e);
		lru_push(c, e);
	} else {
		e = slot_take(c, family, addr);
	}
	c->lookups++;
	pthread_mutex_unlock(&c->lock);
	rc = c->resolve(family, addr, found) == 0 ? 0 : -ENOENT;
	if (rc == 0 && (found[0] == '\0' ||
	    strnlen(found, sizeof(found)) == sizeof(found)))
		rc = -ENOENT;		/* a resolver that broke its promise */
	pthread_mutex_lock(&c->lock);
	if (e != NULL) {
		ASSERT(e->state == HOST_PENDING);
		e->state = rc == 0 ? HOST_NAMED : HOST_UNNAMED;
		e->expires_ns = fl_now_mono_ns() +
		    (rc == 0 ? c->ttl_ns : c->neg_ttl_ns);
		if (rc == 0)
			memcpy(e->name, found, strlen(found) + 1);
		pthread_cond_broadcast(&c->answered);
	}
	if (rc == 0)
		memcpy(name, found, strlen(found) + 1);
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void nfsd_hostcache_stats(struct nfsd_hostcache *c, uint64_t *lookups,
    uint64_t *hits)
{
	pthread_mutex_lock(&c->lock);
	*lookups = c->lookups;
	*hits = c->hits;
	pthread_mutex_unlock(&c->lock);
}
