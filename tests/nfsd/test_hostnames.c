/*
 * tests/nfsd/test_hostnames.c: what host-name patterns in export rules
 * stand on (nfsd/export.c, nfsd/hostcache.c):
 *   pattern_match      nfsd_host_match: case, '?', '*' at the ends and in
 *                      the middle, dots, empty and over-long strings
 *   resolve            nfsd_host_resolve against the system's name of
 *                      127.0.0.1, and names it must not believe: a PTR
 *                      name whose forward lookup leads elsewhere (forged),
 *                      an address written as a name, bad bytes, too long
 *   cache_*            the host cache with a resolver of our own: hits,
 *                      negative answers, TTLs, the bound and LRU eviction,
 *                      one lookup for many workers asking at once, many
 *                      threads over many addresses
 *   forged_ptr_refused a real server: a client at 127.0.0.2 whose PTR
 *                      says "localhost" is refused by "local*" while
 *                      127.0.0.1 is served
 *
 * Reverse lookups are steered by a getnameinfo defined here (it wins over
 * the C library's for the whole program): 127.0.0.2 gets the name the test
 * set, or none; every other address goes to the C library.  Forward
 * lookups are real, of names in /etc/hosts only, so no test asks a DNS
 * server anything.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <netdb.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/util.h"
#include "nfsd/nfsd_impl.h"
#include "tests/nfsd/th_nfs.h"

/* ------------------------------------------------- steered reverse lookups */

static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
/* The PTR name of 127.0.0.2 ("" none), or of 127.0.0.1 when set. */
#define FAKE_MAX	NI_MAXHOST
static char fake_ptr2[FAKE_MAX], fake_ptr1[FAKE_MAX];
static bool fake_ptr1_set;
static _Atomic int fake_answers;	/* reverse lookups steered */
/* While set, a reverse lookup of 127.0.0.2 waits (a resolver that
 * hangs); fake_gate_open lets it go on. */
static bool fake_gate2;
static pthread_cond_t fake_gate_cv = PTHREAD_COND_INITIALIZER;

typedef int (*getnameinfo_fn)(const struct sockaddr *, socklen_t, char *,
    socklen_t, char *, socklen_t, int);

int getnameinfo(const struct sockaddr *restrict sa, socklen_t salen,
    char *restrict host, socklen_t hostlen, char *restrict serv,
    socklen_t servlen, int flags)
{
	static getnameinfo_fn real;
	const struct sockaddr_in *in = (const void *)sa;
	getnameinfo_fn next;

	pthread_mutex_lock(&fake_lock);
	if (real == NULL)
		real = (getnameinfo_fn)dlsym(RTLD_NEXT, "getnameinfo");
	next = real;
	pthread_mutex_unlock(&fake_lock);
	VERIFY(next != NULL);
	if (sa->sa_family == AF_INET && salen >= sizeof(*in) && host != NULL) {
		uint32_t a = ntohl(in->sin_addr.s_addr);
		const char *fake = NULL;
		int rc = 0;

		pthread_mutex_lock(&fake_lock);
		while (a == 0x7f000002u && fake_gate2)
			pthread_cond_wait(&fake_gate_cv, &fake_lock);
		if (a == 0x7f000002u)
			fake = fake_ptr2;
		else if (a == 0x7f000001u && fake_ptr1_set)
			fake = fake_ptr1;
		if (fake != NULL) {
			atomic_fetch_add(&fake_answers, 1);
			if (fake[0] == '\0')
				rc = EAI_NONAME;
			else if (strlen(fake) >= hostlen)
				rc = EAI_OVERFLOW;
			else
				memcpy(host, fake, strlen(fake) + 1);
		}
		pthread_mutex_unlock(&fake_lock);
		if (fake != NULL)
			return rc;
	}
	return next(sa, salen, host, hostlen, serv, servlen, flags);
}

static void fake_gate(bool closed)
{
	pthread_mutex_lock(&fake_lock);
	fake_gate2 = closed;
	pthread_cond_broadcast(&fake_gate_cv);
	pthread_mutex_unlock(&fake_lock);
}

static void fake_set(char *slot, const char *name)
{
	size_t n = strlen(name);

	VERIFY(n < FAKE_MAX);
	pthread_mutex_lock(&fake_lock);
	memcpy(slot, name, n + 1);
	pthread_mutex_unlock(&fake_lock);
}

static const uint8_t lo1[4] = { 127, 0, 0, 1 };
static const uint8_t lo2[4] = { 127, 0, 0, 2 };

/* The system's own forward-confirmed name of 127.0.0.1, or false. */
static bool system_name(char *name, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	bool back = false;

	memcpy(&sa.sin_addr, lo1, 4);
	if (getnameinfo((struct sockaddr *)&sa, sizeof(sa), name,
	    (socklen_t)len, NULL, 0, NI_NAMEREQD) != 0 || strlen(name) > NFSD_HOSTNAME_MAX ||
	    getaddrinfo(name, NULL, &hints, &ai) != 0)
		return false;
	for (struct addrinfo *a = ai; a != NULL; a = a->ai_next)
		back |= a->ai_family == AF_INET &&
		    memcmp(&((struct sockaddr_in *)a->ai_addr)->sin_addr, lo1,
		    4) == 0;
	freeaddrinfo(ai);
	return back;
}

static void skip_unnamed(void)
{
	print_message("127.0.0.1 has no name that resolves back to it here "
	    "(getent hosts 127.0.0.1): skipped\n");
	skip();
}

/* ---------------------------------------------------------- the matcher */

static void test_pattern_match(void **state)
{
	static const struct {
		const char *pat, *name;
		bool match;
	} cases[] = {
		{ "localhost", "localhost", true },
		{ "localhost", "LocalHost", true },	/* case */
		{ "LOCAL*", "localhost", true },
		{ "*.LAB", "a.lab", true },
		{ "local*", "localhost", true },	/* '*' at the end */
		{ "local*", "local", true },		/* '*' may be empty */
		{ "local*", "loca", false },
		{ "*host", "localhost", true },	/* '*' at the start */
		{ "*host", "hostess", false },
		{ "l*t", "localhost", true },		/* in the middle */
		{ "l*t", "localhosts", false },
		{ "*.lab", "a.lab", true },
		{ "*.lab", "a.b.lab", true },		/* '*' eats dots */
		{ "*.lab", "lab", false },
		{ "*.lab", "a.lab.org", false },
		{ "*.lab", "alab", false },
		{ "node?.lab", "node1.lab", true },
		{ "node?.lab", "node.lab", false },	/* '?' is one byte */
		{ "node?.lab", "node12.lab", false },
		{ "node??.lab", "node12.lab", true },
		{ "?", "a", true },
		{ "?", ".", true },
		{ "a?c", "a.c", true },
		{ "*a*b*c*", "xxaxxbxxcxx", true },	/* backtracking */
		{ "*a*b*c*", "xxaxxcxxbxx", false },
		{ "*ab", "aab", true },
		{ "*aab", "aaab", true },
		{ "**", "x", true },
		{ "*?", "x", true },
		{ "*?", "", false },
		{ "*", "", false },			/* empty name */
		{ "", "", false },			/* empty pattern */
		{ "", "a", false },
		{ "a", "", false },
		{ "a", "b", false },
		{ "abc", "ab", false },
		{ "ab", "abc", false },
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++)
		if (nfsd_host_match(cases[i].pat, cases[i].name) !=
		    cases[i].match)
			fail_msg("pattern \"%s\", name \"%s\": expected %s",
			    cases[i].pat, cases[i].name,
			    cases[i].match ? "a match" : "none");

	/* Over-long names and patterns match nothing, not even "*". */
	char name[400], pat[400];
	memset(name, 'a', sizeof(name));
	name[NFSD_HOSTNAME_MAX] = '\0';
	assert_true(nfsd_host_match("*", name));	/* 253: the most */
	assert_true(nfsd_host_match("a*a", name));
	name[NFSD_HOSTNAME_MAX] = 'a';
	name[NFSD_HOSTNAME_MAX + 1] = '\0';
	assert_false(nfsd_host_match("*", name));
	name[sizeof(name) - 1] = '\0';
	assert_false(nfsd_host_match("*", name));
	memset(pat, '*', sizeof(pat));
	pat[NFSD_HOSTNAME_MAX] = '\0';
	assert_true(nfsd_host_match(pat, "x"));
	pat[NFSD_HOSTNAME_MAX] = '*';
	pat[NFSD_HOSTNAME_MAX + 1] = '\0';
	assert_false(nfsd_host_match(pat, "x"));
	/* The worst case stays quick: many stars over a long name. */
	memset(pat, 0, sizeof(pat));
	for (size_t i = 0; i + 2 <= 250; i += 2)
		memcpy(pat + i, "*a", 2);
	strcat(pat, "b");
	name[NFSD_HOSTNAME_MAX] = '\0';
	assert_false(nfsd_host_match(pat, name));
}

/* ---------------------------------------------------------- resolving */

static void test_resolve(void **state)
{
	char want[NI_MAXHOST], got[NFSD_HOSTNAME_MAX + 1];

	if (!system_name(want, sizeof(want)))
		skip_unnamed();
	/* The system's name, confirmed. */
	assert_int_equal(nfsd_host_resolve(AF_INET, lo1, got), 0);
	assert_string_equal(got, want);

	/* No PTR name: no name. */
	fake_set(fake_ptr2, "");
	assert_int_equal(nfsd_host_resolve(AF_INET, lo2, got), -ENOENT);
	/* A forged PTR: 127.0.0.2 claims 127.0.0.1's name, whose forward
	 * lookup does not give 127.0.0.2. */
	fake_set(fake_ptr2, want);
	assert_int_equal(nfsd_host_resolve(AF_INET, lo2, got), -ENOENT);
	/* Names that are addresses would confirm themselves. */
	static const char *const numeric[] = { "127.0.0.2", "127.2",
		"0x7f.0.0.2", "2130706434" };
	for (size_t i = 0; i < FL_ARRAY_SIZE(numeric); i++) {
		fake_set(fake_ptr2, numeric[i]);
		if (nfsd_host_resolve(AF_INET, lo2, got) != -ENOENT)
			fail_msg("PTR name %s believed", numeric[i]);
	}
	/* Bytes no host name has, and names too long. */
	fake_set(fake_ptr2, "local host");
	assert_int_equal(nfsd_host_resolve(AF_INET, lo2, got), -ENOENT);
	fake_set(fake_ptr2, "localhost\n127.0.0.2");
	assert_int_equal(nfsd_host_resolve(AF_INET, lo2, got), -ENOENT);
	char longname[300];
	memset(longname, 'a', sizeof(longname));
	longname[NFSD_HOSTNAME_MAX + 1] = '\0';
	fake_set(fake_ptr2, longname);
	assert_int_equal(nfsd_host_resolve(AF_INET, lo2, got), -ENOENT);
	fake_set(fake_ptr2, "");
	/* Families other than IPv4 and IPv6 have no names. */
	assert_int_equal(nfsd_host_resolve(AF_UNIX, lo1, got), -ENOENT);

	/* 127.0.0.1 under another spelling of its name: names are
	 * case-insensitive, the forward lookup finds it, the name is kept as
	 * the PTR gave it. */
	char upper[NI_MAXHOST];
	for (size_t i = 0; i <= strlen(want); i++)
		upper[i] = (char)toupper((unsigned char)want[i]);
	fake_set(fake_ptr1, upper);
	pthread_mutex_lock(&fake_lock);
	fake_ptr1_set = true;
	pthread_mutex_unlock(&fake_lock);
	int rc = nfsd_host_resolve(AF_INET, lo1, got);
	pthread_mutex_lock(&fake_lock);
	fake_ptr1_set = false;
	pthread_mutex_unlock(&fake_lock);
	assert_int_equal(rc, 0);
	assert_string_equal(got, upper);
}

/* ------------------------------------------------------ the host cache */

/* A resolver of our own: "h<last byte>.test" for addresses whose last
 * byte is even, no name for odd ones; counts its calls; optionally slow. */
static _Atomic int res_calls, res_done;
static _Atomic int res_delay_ms;
static _Atomic int res_temp_fail;	/* answer -EAGAIN (a DNS timeout) */
/* While closed, every lookup waits at the gate (a resolver that hangs). */
static pthread_mutex_t res_gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t res_gate_cv = PTHREAD_COND_INITIALIZER;
static bool res_gate_closed;

static void res_gate(bool closed)
{
	pthread_mutex_lock(&res_gate_lock);
	res_gate_closed = closed;
	pthread_cond_broadcast(&res_gate_cv);
	pthread_mutex_unlock(&res_gate_lock);
}

static int fake_resolve(sa_family_t family, const uint8_t *addr, char *name)
{
	size_t last = family == AF_INET ? 3 : 15;
	int d = atomic_load(&res_delay_ms);

	atomic_fetch_add(&res_calls, 1);
	pthread_mutex_lock(&res_gate_lock);
	while (res_gate_closed)
		pthread_cond_wait(&res_gate_cv, &res_gate_lock);
	pthread_mutex_unlock(&res_gate_lock);
	atomic_fetch_add(&res_done, 1);
	if (atomic_load(&res_temp_fail))
		return -EAGAIN;
	if (d > 0) {
		struct timespec ts = { 0, d * 1000000L };
		nanosleep(&ts, NULL);
	}
	if (addr[last] % 2)
		return -ENOENT;
	snprintf(name, NFSD_HOSTNAME_MAX + 1, "h%u.%s", addr[last],
	    family == AF_INET ? "test" : "test6");
	return 0;
}

static void addr4(uint8_t a[4], uint32_t v)
{
	a[0] = 10;
	a[1] = (uint8_t)(v >> 16);
	a[2] = (uint8_t)(v >> 8);
	a[3] = (uint8_t)v;
}

/* A cache whose callers wait up to wait_ms, waiters of them at once. */
static int hc_create(uint32_t entries, uint32_t ttl_ms, uint32_t neg_ttl_ms,
    uint32_t wait_ms, uint32_t waiters, struct nfsd_hostcache **c)
{
	struct nfsd_hostcache_cfg cfg = { .entries = entries,
	    .ttl_ms = ttl_ms, .neg_ttl_ms = neg_ttl_ms, .wait_ms = wait_ms,
	    .max_waiters = waiters };

	return nfsd_hostcache_create(&cfg, fake_resolve, c);
}

/* Wait (at most 5 s) until the resolver was called (*c: res_calls) or
 * returned (res_done) n times; then it was, exactly. */
static void count_reach(_Atomic int *c, int n)
{
	for (int i = 0; i < 500 && atomic_load(c) < n; i++) {
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
	assert_int_equal(atomic_load(c), n);
}

static void calls_reach(int n)
{
	count_reach(&res_calls, n);
}

static void done_reach(int n)
{
	count_reach(&res_done, n);
}

/* The fake resolver's counters back to zero. */
static void res_reset(void)
{
	atomic_store(&res_calls, 0);
	atomic_store(&res_done, 0);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void test_cache_hits_and_ttl(void **state)
{
	struct nfsd_hostcache *c;
	char name[NFSD_HOSTNAME_MAX + 1];
	uint8_t a[4], b[4], v6[16] = { 0xfd };
	struct nfsd_hostcache_stats hs;

	atomic_store(&res_calls, 0);
	atomic_store(&res_delay_ms, 0);
	assert_int_equal(hc_create(0, 1, 1, 1000, 1, &c), -EINVAL);
	assert_int_equal(hc_create(65537, 1, 1, 1000, 1, &c), -EINVAL);
	assert_int_equal(hc_create(16, 1, 1, 1000, 0, &c), -EINVAL);
	assert_int_equal(hc_create(16, 300, 100, 5000, 1, &c), 0);
	addr4(a, 2);
	addr4(b, 3);
	/* A name, then the same from the cache. */
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), 0);
	assert_string_equal(name, "h2.test");
	memset(name, 0, sizeof(name));
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), 0);
	assert_string_equal(name, "h2.test");
	assert_int_equal(atomic_load(&res_calls), 1);
	/* No name: kept too. */
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, b, name), -ENOENT);
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, b, name), -ENOENT);
	assert_int_equal(atomic_load(&res_calls), 2);
	/* IPv6 is another key, even with the same bytes up front. */
	v6[15] = 2;
	assert_int_equal(nfsd_hostcache_name(c, AF_INET6, v6, name), 0);
	assert_string_equal(name, "h2.test6");
	assert_int_equal(atomic_load(&res_calls), 3);
	nfsd_hostcache_stats(c, &hs);
	assert_int_equal(hs.lookups, 3);
	assert_int_equal(hs.hits, 2);
	/* Other families are never asked about. */
	assert_int_equal(nfsd_hostcache_name(c, AF_UNIX, a, name), -ENOENT);
	assert_int_equal(atomic_load(&res_calls), 3);

	/* The negative TTL (100 ms) passes first: "no name" is asked again
	 * (and waited for: a repaired DNS must not cost a refusal)... */
	sleep_ms(150);
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, b, name), -ENOENT);
	assert_int_equal(atomic_load(&res_calls), 4);
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), 0);
	assert_int_equal(atomic_load(&res_calls), 4);
	/* ... then the positive one (300 ms): the name serves while its
	 * refresh runs (or, past 100 ms more, once it is back). */
	sleep_ms(200);
	memset(name, 0, sizeof(name));
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), 0);
	assert_string_equal(name, "h2.test");
	calls_reach(5);
	nfsd_hostcache_stats(c, &hs);
	assert_int_equal(hs.lookups, 5);
	assert_int_equal(hs.busy, 0);
	nfsd_hostcache_free(c);
	nfsd_hostcache_free(NULL);
}

static void test_cache_bound(void **state)
{
	struct nfsd_hostcache *c;
	char name[NFSD_HOSTNAME_MAX + 1];
	uint8_t a[4];

	atomic_store(&res_calls, 0);
	atomic_store(&res_delay_ms, 0);
	assert_int_equal(hc_create(4, 60000, 60000, 5000, 1, &c), 0);
	for (uint32_t i = 0; i < 4; i++) {
		addr4(a, 2 * i);
		assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), 0);
	}
	assert_int_equal(atomic_load(&res_calls), 4);
	/* Touch the oldest (0): 2 is now the least recently used. */
	addr4(a, 0);
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), 0);
	assert_int_equal(atomic_load(&res_calls), 4);
	/* A fifth address evicts 2, and only 2. */
	addr4(a, 8);
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), 0);
	assert_int_equal(atomic_load(&res_calls), 5);
	static const uint32_t kept[] = { 0, 4, 6, 8 };
	for (size_t i = 0; i < FL_ARRAY_SIZE(kept); i++) {
		addr4(a, kept[i]);
		assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), 0);
	}
	assert_int_equal(atomic_load(&res_calls), 5);
	addr4(a, 2);
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), 0);
	assert_string_equal(name, "h2.test");
	assert_int_equal(atomic_load(&res_calls), 6);
	/* A thousand addresses through four slots: the bound holds, each
	 * answer is still the right one. */
	for (uint32_t i = 0; i < 1000; i++) {
		addr4(a, i);
		int rc = nfsd_hostcache_name(c, AF_INET, a, name);
		if (i % 2) {
			assert_int_equal(rc, -ENOENT);
		} else {
			char want[32];
			assert_int_equal(rc, 0);
			snprintf(want, sizeof(want), "h%u.test", i & 0xff);
			assert_string_equal(name, want);
		}
	}
	nfsd_hostcache_free(c);
}

struct asker {
	struct nfsd_hostcache *c;
	uint32_t first, count, rounds;
	int errors;
};

static void *asker_main(void *arg)
{
	struct asker *k = arg;
	char name[NFSD_HOSTNAME_MAX + 1], want[32];
	uint8_t a[4];

	for (uint32_t r = 0; r < k->rounds; r++) {
		uint32_t v = k->first + (r * 7919u) % k->count;
		addr4(a, v);
		int rc = nfsd_hostcache_name(k->c, AF_INET, a, name);
		snprintf(want, sizeof(want), "h%u.test", v & 0xff);
		if (v % 2 ? rc != -ENOENT : rc != 0 || strcmp(name, want) != 0)
			k->errors++;
	}
	return NULL;
}

static void test_cache_threads(void **state)
{
	struct nfsd_hostcache *c;
	struct asker k[8];
	pthread_t th[8];
	struct nfsd_hostcache_stats hs;

	/* Eight workers ask about one new address at once while the
	 * resolver takes 200 ms: it is asked once, all get the answer. */
	atomic_store(&res_calls, 0);
	atomic_store(&res_delay_ms, 200);
	assert_int_equal(hc_create(64, 60000, 60000, 5000, 8, &c), 0);
	for (int i = 0; i < 8; i++) {
		k[i] = (struct asker){ .c = c, .first = 42, .count = 1,
		    .rounds = 1 };
		assert_int_equal(pthread_create(&th[i], NULL, asker_main,
		    &k[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(k[i].errors, 0);
	}
	assert_int_equal(atomic_load(&res_calls), 1);
	nfsd_hostcache_stats(c, &hs);
	assert_int_equal(hs.lookups, 1);
	assert_int_equal(hs.hits, 7);
	nfsd_hostcache_free(c);

	/* Many threads over more addresses than slots: answers stay right
	 * (run under ASan too). */
	atomic_store(&res_delay_ms, 0);
	assert_int_equal(hc_create(32, 60000, 60000, 5000, 8, &c), 0);
	for (int i = 0; i < 8; i++) {
		k[i] = (struct asker){ .c = c, .first = (uint32_t)i * 10,
		    .count = 100, .rounds = 5000 };
		assert_int_equal(pthread_create(&th[i], NULL, asker_main,
		    &k[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(k[i].errors, 0);
	}
	nfsd_hostcache_free(c);
}

/* ------------------------------------------------------ a real server */

static int tcp_from(const char *src, uint16_t port)
{
	struct sockaddr_in la = { .sin_family = AF_INET };
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	VERIFY(fd >= 0);
	inet_pton(AF_INET, src, &la.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	VERIFY0(bind(fd, (struct sockaddr *)&la, sizeof(la)));
	VERIFY0(connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
	return fd;
}

static void test_forged_ptr_refused(void **state)
{
	struct th t;
	struct th_fh root, h;
	struct nfsd_stats st;
	char want[NI_MAXHOST], pat[NI_MAXHOST];

	if (!system_name(want, sizeof(want)))
		skip_unnamed();
	/* The name's first letter and '*': "l*" for "localhost". */
	snprintf(pat, sizeof(pat), "%c*", want[0]);
	th_config(&t);
	t.rules[0].client = pat;
	th_serve(&t);

	int fd = tcp_from("127.0.0.1", t.mnt_port);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	close(fd);
	/* 127.0.0.2 claims 127.0.0.1's name: the forward lookup says no. */
	fake_set(fake_ptr2, want);
	int steered = atomic_load(&fake_answers);
	fd = tcp_from("127.0.0.2", t.mnt_port);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &h), 13);
	close(fd);
	assert_int_equal(atomic_load(&fake_answers), steered + 1);
	fd = tcp_from("127.0.0.2", t.nfs_port);
	static struct xb x;
	xb_call(&x, 77, TH_NFS_PROG, 3, 1, 0, 0);	/* GETATTR */
	xb_fh(&x, &root);
	assert_int_equal(th_status(fd, &x), 13);
	close(fd);
	nfsd_get_stats(t.srv, &st);
	assert_int_equal(st.host_lookups, 2);
	fake_set(fake_ptr2, "");
	th_stop(&t);
}

struct waiter {
	struct nfsd_hostcache *c;
	uint32_t v;
	int rc;
	char name[NFSD_HOSTNAME_MAX + 1];
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	uint8_t a[4];

	addr4(a, w->v);
	w->rc = nfsd_hostcache_name(w->c, AF_INET, a, w->name);
	return NULL;
}

/*
 * A resolver that hangs: a caller for a new address waits wait_ms and
 * gets -EAGAIN (the lookup goes on, once per address); no more than
 * max_waiters callers wait, the next gets -EAGAIN at once; when the
 * resolver answers, the waiters and later callers get the name; freeing
 * the cache does not wait for a hung lookup.
 */
static void test_cache_slow_resolver(void **state)
{
	struct nfsd_hostcache *c;
	struct nfsd_hostcache_stats hs;
	char name[NFSD_HOSTNAME_MAX + 1];
	uint8_t a[4];
	struct waiter w[2];
	pthread_t th[2];

	res_reset();
	atomic_store(&res_delay_ms, 0);
	res_gate(true);
	assert_int_equal(hc_create(16, 60000, 60000, 100, 2, &c), 0);
	addr4(a, 2);
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), -EAGAIN);
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), -EAGAIN);
	calls_reach(1);			/* one lookup for both */
	assert_int_equal(atomic_load(&res_done), 0);
	res_gate(false);
	done_reach(1);
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), 0);
	assert_string_equal(name, "h2.test");
	nfsd_hostcache_stats(c, &hs);
	assert_int_equal(hs.lookups, 1);
	assert_int_equal(hs.busy, 2);
	nfsd_hostcache_free(c);

	/* Two wait (long), a third is told at once. */
	res_reset();
	res_gate(true);
	assert_int_equal(hc_create(16, 60000, 60000, 20000, 2, &c), 0);
	for (int i = 0; i < 2; i++) {
		w[i] = (struct waiter){ .c = c, .v = 4 + 2 * (uint32_t)i };
		assert_int_equal(pthread_create(&th[i], NULL, waiter_main,
		    &w[i]), 0);
	}
	/* Both lookups started: both callers were counted as waiting in
	 * the same locked step that queued them. */
	calls_reach(2);
	addr4(a, 8);
	double t0 = now_s();
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), -EAGAIN);
	/* At once, not after the 20 s a waiter may wait. */
	if (now_s() - t0 > 5.0)
		fail_msg("the third caller waited %.1f s", now_s() - t0);
	res_gate(false);
	for (int i = 0; i < 2; i++) {
		char want[32];
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].rc, 0);
		snprintf(want, sizeof(want), "h%u.test", w[i].v);
		assert_string_equal(w[i].name, want);
	}
	/* 8's lookup went on without a waiter: its answer is there. */
	calls_reach(3);
	done_reach(3);
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), 0);
	assert_string_equal(name, "h8.test");
	nfsd_hostcache_stats(c, &hs);
	assert_int_equal(hs.busy, 1);
	assert_int_equal(hs.lookups, 3);

	nfsd_hostcache_free(c);

	/* A temporary failure (a DNS timeout) is no answer: the caller is
	 * told to retry, and is not asked about again at once... */
	res_reset();
	assert_int_equal(hc_create(16, 200, 60000, 5000, 2, &c), 0);
	atomic_store(&res_temp_fail, 1);
	addr4(a, 12);
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), -EAGAIN);
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), -EAGAIN);
	assert_int_equal(atomic_load(&res_calls), 1);
	/* ... and a name found before is kept through one: past its TTL
	 * (200 ms) the refresh fails, the old name still serves. */
	atomic_store(&res_temp_fail, 0);
	addr4(a, 14);
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), 0);
	atomic_store(&res_temp_fail, 1);
	sleep_ms(250);
	memset(name, 0, sizeof(name));
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), 0);
	assert_string_equal(name, "h14.test");
	calls_reach(3);
	done_reach(3);
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), 0);
	assert_string_equal(name, "h14.test");
	atomic_store(&res_temp_fail, 0);
	nfsd_hostcache_free(c);

	/* Freed while a lookup hangs: returns at once; the lookup's thread
	 * finishes later and lets the cache go (ASan: no leak, no use after
	 * free). */
	res_reset();
	assert_int_equal(hc_create(16, 60000, 60000, 100, 2, &c), 0);
	res_gate(true);
	addr4(a, 10);
	assert_int_equal(nfsd_hostcache_name(c, AF_INET, a, name), -EAGAIN);
	calls_reach(1);
	t0 = now_s();
	nfsd_hostcache_free(c);
	if (now_s() - t0 > 5.0)
		fail_msg("freeing waited %.1f s for a hung lookup",
		    now_s() - t0);
	res_gate(false);
	done_reach(1);
	sleep_ms(50);
}

/*
 * A real server whose first rule is a host-name pattern, and a resolver
 * that hangs for 127.0.0.2: its GETATTR waits host_wait_ms (2 s) and gets
 * NFS3ERR_JUKEBOX (try later), while 127.0.0.1's calls are answered in
 * the meantime; its later calls get JUKEBOX too, and its MNT no answer;
 * once the lookup ends (no name), 127.0.0.2 is served by the next rule,
 * by address.
 */
static void test_hung_resolver_jukebox(void **state)
{
	struct th t;
	struct th_fh root, h;
	struct nfsd_stats st;
	char want[NI_MAXHOST], pat[NI_MAXHOST];
	static struct xb x;

	if (!system_name(want, sizeof(want)))
		skip_unnamed();
	snprintf(pat, sizeof(pat), "%c*", want[0]);
	th_config(&t);
	t.rules[0] = (struct nfsd_client_rule){ .client = pat,
	    .flags = NFSD_RW | NFSD_NO_ROOT_SQUASH | NFSD_INSECURE };
	t.rules[1] = (struct nfsd_client_rule){ .client = "127.0.0.0/8",
	    .flags = NFSD_NO_ROOT_SQUASH | NFSD_INSECURE };
	t.exp[0].nrules = 2;
	t.cfg.host_wait_ms = 2000;
	th_serve(&t);

	int fd = tcp_from("127.0.0.1", t.mnt_port);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	close(fd);
	fake_set(fake_ptr2, "");	/* no name: no DNS is asked */
	fake_gate(true);
	int f2 = tcp_from("127.0.0.2", t.nfs_port);
	int f1 = tcp_from("127.0.0.1", t.nfs_port);
	/* 127.0.0.2's call waits; 127.0.0.1 is served meanwhile. */
	static struct th_reply rp;
	xb_call(&x, 90, TH_NFS_PROG, 3, 1, 0, 0);
	xb_fh(&x, &root);
	th_send_record(f2, &x);
	for (int i = 0; i < 3; i++) {
		xb_call(&x, 95 + (uint32_t)i, TH_NFS_PROG, 3, 1, 0, 0);
		xb_fh(&x, &root);
		assert_int_equal(th_status(f1, &x), 0);
	}
	struct pollfd pw = { .fd = f2, .events = POLLIN };
	int pr = poll(&pw, 1, 0);
	rp.len = th_recv_record(f2, rp.buf, sizeof(rp.buf), TH_TIMEOUT_MS);
	VERIFY(rp.len > 0);
	th_parse_reply(&rp);
	assert_int_equal(rp.stat, 0);
	/* It was still waiting when 127.0.0.1's three were answered (it
	 * came in one batch with the first: that went on without it). */
	assert_int_equal(pr, 0);
	assert_int_equal(rd_u32(&rp.r), 10008);		/* JUKEBOX */
	for (int i = 0; i < 3; i++) {
		xb_call(&x, 100 + (uint32_t)i, TH_NFS_PROG, 3, 1, 0, 0);
		xb_fh(&x, &root);
		assert_int_equal(th_status(f2, &x), 10008);	/* JUKEBOX */
		xb_call(&x, 200 + (uint32_t)i, TH_NFS_PROG, 3, 1, 0, 0);
		xb_fh(&x, &root);
		assert_int_equal(th_status(f1, &x), 0);
	}
	/* MNT has no "try later": no answer, the client retransmits. */
	int m2 = tcp_from("127.0.0.2", t.mnt_port);
	xb_call(&x, 300, TH_MNT_PROG, 3, 1, 0, 0);
	xb_str(&x, "/vol/vol0");
	th_send_record(m2, &x);
	struct pollfd pf = { .fd = m2, .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 3000), 0);
	close(m2);

	fake_gate(false);
	int ok = -1;
	for (int i = 0; i < 100 && ok != 0; i++) {
		xb_call(&x, 400 + (uint32_t)i, TH_NFS_PROG, 3, 1, 0, 0);
		xb_fh(&x, &root);
		ok = th_status(f2, &x);
		if (ok != 0) {
			assert_int_equal(ok, 10008);
			sleep_ms(20);
		}
	}
	assert_int_equal(ok, 0);
	fd = tcp_from("127.0.0.2", t.mnt_port);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &h), 0);
	close(fd);
	close(f1);
	close(f2);
	nfsd_get_stats(t.srv, &st);
	assert_true(st.host_busy >= 4);
	fake_set(fake_ptr2, "");
	th_stop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pattern_match),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_cache_hits_and_ttl),
		cmocka_unit_test(test_cache_bound),
		cmocka_unit_test(test_cache_threads),
		cmocka_unit_test(test_cache_slow_resolver),
		cmocka_unit_test(test_forged_ptr_refused),
		cmocka_unit_test(test_hung_resolver_jukebox),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
