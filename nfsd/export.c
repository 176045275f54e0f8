/*
 * nfsd/export.c: client rules of an export, in the semantics of Linux
 * exports(5).
 *
 *   client spec   "*" (everyone), an IPv4/IPv6 address, a CIDR network
 *                 ("10.0.0.0/8", "fd00::/8"), a host name resolved once
 *                 at nfsd_create to all its addresses, or a host-name
 *                 pattern ("*.lab", "node?.lab").
 *   patterns      match the caller's forward-confirmed name (hostcache.c:
 *                 reverse lookup, then a forward lookup that must give the
 *                 caller's address back, so a forged PTR record grants
 *                 nothing).  '*' matches any run of bytes, dots included,
 *                 '?' one byte, case ignored (nfsd_host_match).  A caller
 *                 without such a name matches no pattern.  Wildcards never
 *                 match addresses ("10.0.*" matches no client: names that
 *                 read as addresses are refused).
 *   first match   rules are tried in configuration order; the first whose
 *                 spec matches the caller applies; no match is a refusal
 *                 (MNT3ERR_ACCES, NFS3ERR_ACCES).  The caller's name is
 *                 looked up only when a pattern rule is reached, so rules
 *                 before the first pattern cost no DNS.
 *   options       ro (default) / rw; root_squash (default: uid 0 and gid 0
 *                 become anonuid/anongid, group 0 in the list too) /
 *                 no_root_squash / all_squash (everyone is anonymous);
 *                 anonuid/anongid (default 65534); secure (default: the
 *                 source port must be < 1024) / insecure.
 *   AUTH_NONE     is the anonymous user, whatever the options.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "nfsd/nfsd_impl.h"

/* IPv4-mapped IPv6 addresses compare as IPv4. */
static void peer_addr(const struct sockaddr_storage *p, sa_family_t *fam,
    uint8_t addr[16], uint16_t *port)
{
	memset(addr, 0, 16);
	if (p->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)p;
		*fam = AF_INET;
		memcpy(addr, &a->sin_addr, 4);
		*port = ntohs(a->sin_port);
	} else if (p->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)p;
		*port = ntohs(a->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
			*fam = AF_INET;
			memcpy(addr, a->sin6_addr.s6_addr + 12, 4);
		} else {
			*fam = AF_INET6;
			memcpy(addr, &a->sin6_addr, 16);
		}
	} else {
		*fam = AF_UNSPEC;
		*port = 0;
	}
}

static int rule_add(struct nfsd_exp *e, size_t *cap,
    const struct nfsd_client_rule *src, const struct nfsd_rule *proto)
{
	if (e->nrules == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;
		struct nfsd_rule *n = realloc(e->rules, ncap * sizeof(*n));
		if (n == NULL)
			return -ENOMEM;
		e->rules = n;
		*cap = ncap;
	}
	struct nfsd_rule *r = &e->rules[e->nrules++];
	*r = *proto;
	snprintf(r->spec, sizeof(r->spec), "%s", src->client);
	r->flags = src->flags;
	r->anonuid = (src->flags & NFSD_ANONUID) ? src->anonuid : NFSD_ANON_ID;
	r->anongid = (src->flags & NFSD_ANONGID) ? src->anongid : NFSD_ANON_ID;
	return 0;
}

/* A host-name pattern: bytes of host names and the wildcards, at least
 * one wildcard, at most NFSD_HOSTNAME_MAX bytes. */
static bool is_pattern(const char *s)
{
	size_t n = strlen(s);

	if (n > NFSD_HOSTNAME_MAX || strpbrk(s, "*?") == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr(".-_*?", s[i]) ==
		    NULL)
			return false;
	return true;
}

static int compile_one(struct nfsd_exp *e, size_t *cap,
    const struct nfsd_client_rule *src)
{
	struct nfsd_rule proto;
	char buf[256];
	char *slash;
	long prefix = -1;

	memset(&proto, 0, sizeof(proto));
	if (src->client == NULL || src->client[0] == '\0' ||
	    strlen(src->client) >= sizeof(buf))
		return -EINVAL;
	if (strcmp(src->client, "*") == 0) {
		proto.any = true;
		return rule_add(e, cap, src, &proto);
	}
	if (strpbrk(src->client, "*?") != NULL) {
		if (!is_pattern(src->client)) {
			fl_err("nfsd", "export %s: bad client pattern %s",
			    e->path, src->client);
			return -EINVAL;
		}
		proto.wildcard = true;
		return rule_add(e, cap, src, &proto);
	}
	snprintf(buf, sizeof(buf), "%s", src->client);
	slash = strchr(buf, '/');
	if (slash != NULL) {
		char *end;
		*slash = '\0';
		prefix = strtol(slash + 1, &end, 10);
		if (*end != '\0' || end == slash + 1 || prefix < 0)
			return -EINVAL;
	}
	if (inet_pton(AF_INET, buf, proto.addr) == 1) {
		proto.family = AF_INET;
		if (prefix > 32)
			return -EINVAL;
		proto.prefix = prefix < 0 ? 32 : (uint32_t)prefix;
		return rule_add(e, cap, src, &proto);
	}
	if (inet_pton(AF_INET6, buf, proto.addr) == 1) {
		proto.family = AF_INET6;
		if (prefix > 128)
			return -EINVAL;
		proto.prefix = prefix < 0 ? 128 : (uint32_t)prefix;
		return rule_add(e, cap, src, &proto);
	}
	if (slash != NULL)
		return -EINVAL;
	/* A host name: every address it has now. */
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	if (getaddrinfo(buf, NULL, &hints, &ai) != 0) {
		fl_err("nfsd", "export %s: cannot resolve client %s", e->path,
		    buf);
		return -EINVAL;
	}
	int rc = 0;
	for (struct addrinfo *a = ai; a != NULL && rc == 0; a = a->ai_next) {
		struct sockaddr_storage ss;
		uint16_t port;
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, a->ai_addr, FL_MIN(sizeof(ss), a->ai_addrlen));
		peer_addr(&ss, &proto.family, proto.addr, &port);
		proto.prefix = proto.family == AF_INET ? 32 : 128;
		rc = rule_add(e, cap, src, &proto);
	}
	freeaddrinfo(ai);
	return rc;
}

int nfsd_rules_compile(struct nfsd_exp *e, const struct nfsd_client_rule *r,
    size_t n)
{
	size_t cap = 0;
	int rc = 0;

	if (n > NFSD_MAX_RULES)
		return -EINVAL;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = compile_one(e, &cap, &r[i]);
	return rc;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, uint32_t bits)
{
	uint32_t bytes = bits / 8, rem = bits % 8;

	if (memcmp(a, b, bytes) != 0)
		return false;
	if (rem == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rem));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

static int fold(char c)
{
	return tolower((unsigned char)c);
}

/*
 * Iterative, with one backtracking point: at a '*' remember where the
 * pattern and the name resume; on a mismatch let that '*' take one more
 * byte.  At most strlen(pattern) * strlen(name) steps, both bounded.
 */
bool nfsd_host_match(const char *pattern, const char *name)
{
	size_t plen = strnlen(pattern, NFSD_HOSTNAME_MAX + 1);
	size_t nlen = strnlen(name, NFSD_HOSTNAME_MAX + 1);
	const char *p = pattern, *n = name, *star = NULL, *resume = NULL;

	if (plen == 0 || plen > NFSD_HOSTNAME_MAX || nlen == 0 ||
	    nlen > NFSD_HOSTNAME_MAX)
		return false;
	while (*n != '\0') {
		if (*p == '*') {
			star = ++p;
			resume = n;
		} else if (*p != '\0' && (*p == '?' || fold(*p) == fold(*n))) {
			p++;
			n++;
		} else if (star != NULL) {
			p = star;
			n = ++resume;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

/* Does r, a rule that is not a host-name pattern, match the address? */
static bool rule_addr_match(const struct nfsd_rule *r, sa_family_t fam,
    const uint8_t *addr)
{
	return r->any || (r->family == fam &&
	    prefix_match(r->addr, addr, r->prefix));
}

const struct nfsd_rule *nfsd_rule_match(struct nfsd *s,
    const struct nfsd_exp *e, const struct sockaddr_storage *peer,
    bool *busy)
{
	sa_family_t fam;
	uint8_t addr[16];
	uint16_t port;
	char name[NFSD_HOSTNAME_MAX + 1];
	int named = 0;		/* 0: not asked yet; 1: name; -1: none */

	if (busy != NULL)
		*busy = false;
	peer_addr(peer, &fam, addr, &port);
	for (size_t i = 0; i < e->nrules; i++) {
		const struct nfsd_rule *r = &e->rules[i];

		if (!r->wildcard) {
			if (rule_addr_match(r, fam, addr))
				return r;
			continue;
		}
		if (named == 0) {
			int rc = fam == AF_UNSPEC ? -ENOENT :
			    nfsd_hostcache_name(s->hosts, fam, addr, name);
			if (rc == -EAGAIN) {
				/* Not known yet: this rule might match, so
				 * neither a later rule nor a refusal may
				 * stand. */
				if (busy != NULL)
					*busy = true;
				return NULL;
			}
			named = rc == 0 ? 1 : -1;
		}
		if (named > 0 && nfsd_host_match(r->spec, name))
			return r;
	}
	return NULL;
}

bool nfsd_req_may_wait_for_name(struct nfsd_req *r)
{
	sa_family_t fam;
	uint8_t addr[16];
	uint16_t port;

	if (!r->srv->patterns)
		return false;
	peer_addr(&r->peer, &fam, addr, &port);
	if (fam == AF_UNSPEC)
		return false;
	/* Does some export reach a pattern rule for this address (no rule
	 * before it matches)?  Only then may its name be needed. */
	bool need = false;
	for (size_t i = 0; i < r->srv->nexps && !need; i++) {
		const struct nfsd_exp *e = &r->srv->exps[i];
		for (size_t j = 0; j < e->nrules; j++) {
			const struct nfsd_rule *ru = &e->rules[j];
			if (ru->wildcard)
				need = true;
			if (ru->wildcard || rule_addr_match(ru, fam, addr))
				break;
		}
	}
	return need && !nfsd_hostcache_ready(r->srv->hosts, fam, addr);
}

bool nfsd_rule_port_ok(const struct nfsd_rule *rule,
    const struct sockaddr_storage *peer)
{
	sa_family_t fam;
	uint8_t addr[16];
	uint16_t port;

	if (rule->flags & NFSD_INSECURE)
		return true;
	peer_addr(peer, &fam, addr, &port);
	return port < 1024;
}

void nfsd_cred_squash(const struct nfsd_rule *rule, bool auth_none,
    const struct wafl_cred *in, struct wafl_cred *out)
{
	if (auth_none || (rule->flags & NFSD_ALL_SQUASH)) {
		memset(out, 0, sizeof(*out));
		out->uid = rule->anonuid;
		out->gid = rule->anongid;
		return;
	}
	*out = *in;
	if (rule->flags & NFSD_NO_ROOT_SQUASH)
		return;
	if (out->uid == 0)
		out->uid = rule->anonuid;
	if (out->gid == 0)
		out->gid = rule->anongid;
	for (uint32_t i = 0; i < out->ngroups && i < NFSD_NGROUPS_MAX; i++)
		if (out->groups[i] == 0)
			out->groups[i] = rule->anongid;
}
