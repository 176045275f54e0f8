/*
 * nfsd/server.c: server life cycle (nfsd.h) and rpcbind registration.
 *
 *   nfsd_create  copies the configuration, checks every export path
 *                ("/vol/NAME" or a subdirectory of it, normalized), resolves
 *                the exported directory on its volume, compiles the client
 *                rules, makes the duplicate request cache and the host
 *                cache (client names for host-name patterns, hostcache.c).
 *   nfsd_start   binds the sockets and starts the threads (transport.c),
 *                then registers NFS v3 and MOUNT v3 on tcp and udp with
 *                rpcbind if asked and rpcbind answers; otherwise it logs
 *                that clients must be given the ports.
 *   nfsd_stop    unregisters, stops the threads, closes the sockets.
 *   nfsd_set_exports  builds a new export table the way nfsd_create does
 *                and swaps it in while the workers are held.  The host
 *                cache stays: it holds names, which the rules do not
 *                change.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <rpc/rpc.h>
#include <rpc/rpcb_clnt.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/util.h"
#include "nfsd/nfsd_impl.h"

static const struct wafl_cred root_cred = { 0 };

/* "/vol/NAME[/a/b]": no empty, "." or ".." component, no trailing "/". */
static int parse_path(const char *path, char *volname, size_t vlen,
    const char **rest)
{
	if (path == NULL || strncmp(path, "/vol/", 5) != 0 ||
	    strlen(path) >= WAFL_PATH_MAX)
		return -EINVAL;
	const char *p = path + 5, *slash = strchr(p, '/');
	size_t n = slash ? (size_t)(slash - p) : strlen(p);
	if (n == 0 || n >= vlen)
		return -EINVAL;
	memcpy(volname, p, n);
	volname[n] = '\0';
	*rest = p + n;
	for (const char *c = *rest; *c != '\0';) {
		c++;	/* the '/' */
		const char *e = strchr(c, '/');
		size_t k = e ? (size_t)(e - c) : strlen(c);
		if (k == 0 || (k == 1 && c[0] == '.') ||
		    (k == 2 && c[0] == '.' && c[1] == '.') || k > WAFL_NAME_MAX)
			return -EINVAL;
		c += k;
	}
	return 0;
}

static int exp_init(struct nfsd_exp *e, const struct nfsd_export *x)
{
	const char *rest;
	struct wafl_attr a;
	int rc;

	if (x->vol == NULL)
		return -EINVAL;
	rc = parse_path(x->path, e->volname, sizeof(e->volname), &rest);
	if (rc != 0)
		return rc;
	snprintf(e->path, sizeof(e->path), "%s", x->path);
	e->id = fl_crc32c(0, e->path, strlen(e->path));
	e->vol = x->vol;
	memcpy(e->key, x->fh_key, sizeof(e->key));
	rc = nfsd_fh_key_init(e);
	if (rc != 0)
		return rc;
	rc = wafl_root(e->vol, &e->volroot);
	if (rc == 0)
		rc = wafl_getattr(e->vol, &e->volroot, &a);
	if (rc != 0)
		return rc;
	e->fsid = a.fsid;
	e->root = e->volroot;
	while (*rest != '\0') {
		char comp[WAFL_NAME_MAX + 1];
		const char *c = rest + 1, *end = strchr(c, '/');
		size_t k = end ? (size_t)(end - c) : strlen(c);
		memcpy(comp, c, k);
		comp[k] = '\0';
		struct wafl_obj next;
		struct wafl_attr da;
		rc = wafl_lookup(e->vol, &root_cred, &e->root, comp, &next, &a,
		    &da);
		if (rc != 0)
			return rc;
		if (a.type != WAFL_DIR)
			return -ENOTDIR;
		e->root = next;
		rest = c + k;
	}
	return nfsd_rules_compile(e, x->rules, x->nrules);
}

static void exps_free(struct nfsd_exp *exps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(exps[i].rules);
		nfsd_fh_key_free(&exps[i]);
	}
	free(exps);
}

/* Compile x[0..n) into an owned table: every path resolved, every rule
 * compiled, no two exports with one path (or handle id), one key per
 * volume.  Nothing is kept on failure. */
static bool exps_patterns(const struct nfsd_exp *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < e[i].nrules; j++)
			if (e[i].rules[j].wildcard)
				return true;
	return false;
}

static int exps_build(const struct nfsd_export *x, size_t n,
    struct nfsd_exp **out, size_t *nout)
{
	struct nfsd_exp *exps;
	size_t done = 0;
	int rc = 0;

	if (n > NFSD_MAX_EXPORTS || (n > 0 && x == NULL))
		return -EINVAL;
	exps = calloc(n ? n : 1, sizeof(*exps));
	if (exps == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		rc = exp_init(&exps[i], &x[i]);
		done = i + 1;
		if (rc != 0) {
			fl_err("nfsd", "export %s: %s",
			    x[i].path ? x[i].path : "?", fl_strerror(rc));
			goto fail;
		}
		for (size_t j = 0; j < i; j++) {
			const struct nfsd_exp *o = &exps[j];
			if (strcmp(o->path, exps[i].path) == 0 ||
			    o->id == exps[i].id ||
			    (o->vol == exps[i].vol &&
			    memcmp(o->key, exps[i].key, sizeof(o->key)))) {
				fl_err("nfsd", "export %s: duplicate path or "
				    "key differs from %s", exps[i].path,
				    o->path);
				rc = -EINVAL;
				goto fail;
			}
		}
	}
	*out = exps;
	*nout = n;
	return 0;
fail:
	exps_free(exps, done);
	return rc;
}

/*
 * One more than the online CPUs, 3 to 64.  A worker holds its thread only
 * while a call runs (a reply that waits for the NVLOG does not hold it),
 * so beyond a worker per CPU, plus one to run while another sleeps in the
 * log's flush or a disk read, workers add lock and scheduler traffic, not
 * throughput: on 2 CPUs, 3 workers served the metadata mix 7-16% faster
 * than 4 and 4 faster than 8; 2 served one client as well as 3 but 16
 * clients less (docs/bench.md).
 */
uint32_t nfsd_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 2)
		n = 2;
	return (uint32_t)FL_MIN(n + 1, 64L);
}

int nfsd_create(const struct nfsd_config *cfg, nfsd_t **out)
{
	struct nfsd *s;
	int rc = 0;

	if (cfg->nexports > NFSD_MAX_EXPORTS ||
	    (cfg->nexports > 0 && cfg->exports == NULL))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->cfg = *cfg;
	s->cfg.bind_addr = NULL;
	s->cfg.exports = NULL;
	snprintf(s->bind_addr, sizeof(s->bind_addr), "%s",
	    cfg->bind_addr ? cfg->bind_addr : "0.0.0.0");
	if (s->cfg.nfs_port == 0)
		s->cfg.nfs_port = NFSD_DEFAULT_NFS_PORT;
	if (s->cfg.mount_port == 0)
		s->cfg.mount_port = NFSD_DEFAULT_MOUNT_PORT;
	if (s->cfg.threads == 0)
		s->cfg.threads = nfsd_default_threads();
	if (s->cfg.threads > 1024)
		s->cfg.threads = 1024;
	if (s->cfg.max_conns == 0)
		s->cfg.max_conns = 16384;
	if (s->cfg.idle_timeout_ms == 0)
		s->cfg.idle_timeout_ms = 360000;
	if (s->cfg.partial_timeout_ms == 0)
		s->cfg.partial_timeout_ms = 30000;
	if (s->cfg.drc_entries == 0)
		s->cfg.drc_entries = 4096;
	if (s->cfg.mounts_per_host == 0)
		s->cfg.mounts_per_host = NFSD_MOUNTS_PER_HOST_DEFAULT;
	if (s->cfg.mounts_per_host > NFSD_MOUNT_RECS_MAX)
		s->cfg.mounts_per_host = NFSD_MOUNT_RECS_MAX;
	if (s->cfg.host_cache_entries == 0)
		s->cfg.host_cache_entries = 1024;
	if (s->cfg.host_cache_entries > 65536)
		s->cfg.host_cache_entries = 65536;
	if (s->cfg.host_cache_ttl_ms == 0)
		s->cfg.host_cache_ttl_ms = 600000;
	if (s->cfg.host_cache_neg_ttl_ms == 0)
		s->cfg.host_cache_neg_ttl_ms = 60000;
	if (s->cfg.host_wait_ms == 0)
		s->cfg.host_wait_ms = 1000;
	if (s->cfg.host_wait_ms > 60000)
		s->cfg.host_wait_ms = 60000;
	pthread_mutex_init(&s->mounts_lock, NULL);
	rc = exps_build(cfg->exports, cfg->nexports, &s->exps, &s->nexps);
	if (rc != 0)
		goto fail;
	s->patterns = exps_patterns(s->exps, s->nexps);
	rc = nfsd_drc_create(s->cfg.drc_entries, &s->drc);
	if (rc != 0)
		goto fail;
	/* At most half the workers wait for names: the others serve the
	 * clients the cache knows, and those that match by address. */
	struct nfsd_hostcache_cfg hc = {
		.entries = s->cfg.host_cache_entries,
		.ttl_ms = s->cfg.host_cache_ttl_ms,
		.neg_ttl_ms = s->cfg.host_cache_neg_ttl_ms,
		.wait_ms = s->cfg.host_wait_ms,
		.max_waiters = s->cfg.threads / 2 > 0 ? s->cfg.threads / 2 : 1,
	};
	rc = nfsd_hostcache_create(&hc, nfsd_host_resolve, &s->hosts);
	if (rc != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	nfsd_free(s);
	return rc;
}

int nfsd_set_exports(nfsd_t *s, const struct nfsd_export *exports,
    size_t nexports)
{
	struct nfsd_exp *exps, *old;
	size_t n, nold;
	int rc = exps_build(exports, nexports, &exps, &n);

	if (rc != 0)
		return rc;
	/* Only workers read the table: hold them, swap, let them go. */
	if (s->started)
		nfsd_transport_pause(s);
	old = s->exps;
	nold = s->nexps;
	s->exps = exps;
	s->nexps = n;
	s->patterns = exps_patterns(exps, n);
	if (s->started)
		nfsd_transport_resume(s);
	exps_free(old, nold);
	return 0;
}

const struct nfsd_exp *nfsd_exp_by_path(const struct nfsd *s,
    const char *path)
{
	for (size_t i = 0; i < s->nexps; i++)
		if (strcmp(s->exps[i].path, path) == 0)
			return &s->exps[i];
	return NULL;
}

/* ------------------------------------------------------------ rpcbind */

static bool rpcbind_answers(void)
{
	struct sockaddr_un su = { .sun_family = AF_UNIX };
	struct sockaddr_in si = { .sin_family = AF_INET,
	    .sin_port = htons(111), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool ok = false;
	int fd;

	snprintf(su.sun_path, sizeof(su.sun_path), "/run/rpcbind.sock");
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		ok = connect(fd, (struct sockaddr *)&su, sizeof(su)) == 0;
		close(fd);
	}
	if (ok)
		return true;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		ok = connect(fd, (struct sockaddr *)&si, sizeof(si)) == 0;
		close(fd);
	}
	return ok;
}

static bool rpcb_one(const struct nfsd *s, uint32_t prog, uint32_t vers,
    const char *netid, uint16_t port, bool set)
{
	struct netconfig *nc = getnetconfigent(netid);
	char uaddr[96];
	bool ok = false;

	if (nc == NULL)
		return false;
	if (!set) {
		ok = rpcb_unset(prog, vers, nc);
		goto out;
	}
	snprintf(uaddr, sizeof(uaddr), "%s.%u.%u", s->bind_addr, port >> 8,
	    port & 0xff);
	struct netbuf *nb = uaddr2taddr(nc, uaddr);
	if (nb != NULL) {
		ok = rpcb_set(prog, vers, nc, nb);
		free(nb->buf);
		free(nb);
	}
out:
	freenetconfigent(nc);
	return ok;
}

static void rpcb_all(struct nfsd *s, bool set)
{
	static const char *const netids[] = { "tcp", "udp" };
	bool ok = true;

	for (size_t i = 0; i < FL_ARRAY_SIZE(netids); i++) {
		if (s->cfg.no_udp && i == 1)
			continue;
		rpcb_one(s, NFS_PROG, NFS_VERS, netids[i], 0, false);
		rpcb_one(s, MOUNT_PROG, MOUNT_VERS, netids[i], 0, false);
		if (!set)
			continue;
		ok &= rpcb_one(s, NFS_PROG, NFS_VERS, netids[i], s->nfs_port,
		    true);
		ok &= rpcb_one(s, MOUNT_PROG, MOUNT_VERS, netids[i],
		    s->mount_port, true);
	}
	if (set && !ok)
		fl_warn("nfsd", "rpcbind refused some registrations");
}

/* ------------------------------------------------------------ control */

int nfsd_start(nfsd_t *s)
{
	int rc;

	if (s->started)
		return -EINVAL;
	rc = nfsd_transport_start(s);
	if (rc != 0)
		return rc;
	s->started = true;
	if (s->cfg.register_rpcbind && rpcbind_answers()) {
		rpcb_all(s, true);
		s->registered = true;
		fl_info("nfsd", "serving NFS v3 on %s port %u, MOUNT v3 on port "
		    "%u (registered with rpcbind), %u worker threads",
		    s->bind_addr, s->nfs_port, s->mount_port, s->cfg.threads);
	} else {
		fl_info("nfsd", "serving NFS v3 on %s port %u, MOUNT v3 on port "
		    "%u (%s: clients need nfsport=/mountport=), %u worker "
		    "threads", s->bind_addr, s->nfs_port, s->mount_port,
		    s->cfg.register_rpcbind ? "rpcbind is not running" :
		    "rpcbind not used", s->cfg.threads);
	}
	return 0;
}

void nfsd_stop(nfsd_t *s)
{
	if (s == NULL || !s->started)
		return;
	if (s->registered) {
		rpcb_all(s, false);
		s->registered = false;
	}
	nfsd_transport_stop(s);
	s->started = false;
}

void nfsd_free(nfsd_t *s)
{
	if (s == NULL)
		return;
	nfsd_stop(s);
	exps_free(s->exps, s->nexps);
	nfsd_drc_free(s->drc);
	nfsd_hostcache_free(s->hosts);
	for (struct nfsd_mount_rec *m = s->mounts, *n; m != NULL; m = n) {
		n = m->next;
		free(m);
	}
	pthread_mutex_destroy(&s->mounts_lock);
	free(s);
}

void nfsd_ports(const nfsd_t *s, uint16_t *nfs_port, uint16_t *mount_port)
{
	if (nfs_port != NULL)
		*nfs_port = s->nfs_port;
	if (mount_port != NULL)
		*mount_port = s->mount_port;
}

void nfsd_get_stats(nfsd_t *s, struct nfsd_stats *st)
{
	st->calls = atomic_load(&s->st.calls);
	st->replies = atomic_load(&s->st.replies);
	st->dropped = atomic_load(&s->st.dropped);
	st->garbage = atomic_load(&s->st.garbage);
	st->auth_errors = atomic_load(&s->st.auth_errors);
	st->drc_hits = atomic_load(&s->st.drc_hits);
	st->drc_inprogress_drops = atomic_load(&s->st.drc_inprogress_drops);
	st->conns_accepted = atomic_load(&s->st.conns_accepted);
	st->conns_open = atomic_load(&s->st.conns_open);
	st->conns_timed_out = atomic_load(&s->st.conns_timed_out);
	st->conns_refused = atomic_load(&s->st.conns_refused);
	st->records_oversized = atomic_load(&s->st.records_oversized);
	st->reply_batches = atomic_load(&s->st.reply_batches);
	st->reply_batched = atomic_load(&s->st.reply_batched);
	st->quick_acks = atomic_load(&s->st.quick_acks);
	struct nfsd_hostcache_stats hs;
	nfsd_hostcache_stats(s->hosts, &hs);
	st->host_lookups = hs.lookups;
	st->host_cache_hits = hs.hits;
	st->host_stale = hs.stale;
	st->host_busy = hs.busy;
}
