/*
 * admin/svc_nfsd.c: the NFS service, nfsd/ plugged into filerd.
 *
 * THEORY
 *   An adm_service (admin.h) that turns the configuration into a running
 *   nfsd (nfsd/nfsd.h) and keeps the two in step.  Everything here runs on
 *   filerd's main thread, so the one server this file holds (svc below)
 *   needs no lock.
 *
 *   Configuration -> nfsd:
 *     settings  nfs_port, mount_port, nfs_threads, nfs_rpcbind,
 *               nfs_mounts_per_host
 *               -> struct nfsd_config (all IPv4 addresses);
 *     exports   adm_exports_foreach gives the rules ordered by export path,
 *               then in their configured order; consecutive rows of one
 *               path become one struct nfsd_export whose rules keep that
 *               order (the first match wins in nfsd as in exports(5)):
 *                 access rw          -> NFSD_RW (else read-only)
 *                 squash none / all  -> NFSD_NO_ROOT_SQUASH / NFSD_ALL_SQUASH
 *                 secure false       -> NFSD_INSECURE
 *                 anonuid, anongid   -> always given (NFSD_ANONUID|ANONGID)
 *               The export's volume is the mounted one (adm_volume); its
 *               file-handle key is the volume's own (wafl_fh_key), which
 *               lives in fsinfo, so handles survive restarts and follow the
 *               file system to a mirror.
 *
 *   Events and what they do:
 *     start         after every online volume is mounted: build the config,
 *                   nfsd_create, nfsd_start.  A port that cannot be bound
 *                   is reported (log, service.failed event) and filerd goes
 *                   on without NFS; a later reload tries again.
 *     reload        ADM_RELOAD_EXPORTS: a new export list is swapped into
 *                   the running server (nfsd_set_exports: connections, DRC
 *                   and mounts stay).  ADM_RELOAD_SETTINGS: if the ports,
 *                   threads or rpcbind choice changed, the server is
 *                   restarted with them (clients reconnect); if the new
 *                   ports cannot be bound, the old ones are taken again.
 *                   SIGHUP sends both.
 *     volume_down   the volume's exports are taken out before it unmounts
 *                   (their handles get NFS3ERR_BADHANDLE meanwhile).
 *     volume_up     they are put back (same key: old handles work again).
 *     stop          at SIGTERM, before the volumes unmount: nfsd_stop
 *                   (rpcbind unregistered, threads joined), nfsd_free.
 *
 *   An export nfsd refuses (a subdirectory that does not exist, a client
 *   spec nfsd cannot use such as a host name that does not resolve) does
 *   not take the others down: the list is then checked export by export,
 *   the refused ones are logged and recorded as export.refused events, the
 *   rest is served.  Host-name patterns ("*.lab") are served: nfsd matches
 *   them when clients call, never at configuration time.
 *   Exports of an offline volume are left out until it comes online.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/adm_impl.h"
#include "common/err.h"
#include "common/log.h"
#include "nfsd/nfsd.h"

struct svc_settings {
	uint16_t nfs_port, mount_port;
	uint32_t threads;
	bool rpcbind;
	uint32_t mounts_per_host;
};

static struct {
	nfsd_t *srv;			/* NULL: not serving */
	struct svc_settings cur;	/* what srv runs with */
	char down[ADM_NAME_MAX];	/* volume in volume_down, or "" */
} svc;

/* The NFS server's counters; false when it does not serve (main loop). */
bool adm_nfsd_stats(struct nfsd_stats *st)
{
	if (svc.srv == NULL)
		return false;
	nfsd_get_stats(svc.srv, st);
	return true;
}

/* ------------------------------------------------- configuration -> nfsd */

struct svc_export {
	char *path;
	char volume[ADM_NAME_MAX];
	struct nfsd_client_rule rules[NFSD_MAX_RULES];
	char *clients[NFSD_MAX_RULES];
	size_t nrules;
};

struct svc_list {
	struct adm_ctx *ctx;
	struct svc_export e[NFSD_MAX_EXPORTS];
	struct nfsd_export x[NFSD_MAX_EXPORTS];
	size_t n;
	char cur[ADM_PATH_MAX];		/* path of the rows being read */
	bool cur_skip;			/* ... which are left out */
	bool oom;
};

static void list_free(struct svc_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->e[i].path);
		for (size_t j = 0; j < l->e[i].nrules; j++)
			free(l->e[i].clients[j]);
	}
	free(l);
}

static int collect(void *arg, const struct adm_export_rule *r)
{
	struct svc_list *l = arg;
	struct svc_export *e;
	struct nfsd_client_rule *nr;

	if (strcmp(l->cur, r->path) != 0) {
		wafl_vol_t *v = strcmp(svc.down, r->volume) == 0 ? NULL :
		    adm_volume(l->ctx, r->volume);

		snprintf(l->cur, sizeof(l->cur), "%s", r->path);
		l->cur_skip = true;
		if (v == NULL) {
			fl_info(ADM_SUB, "nfs: %s not exported: volume %s is "
			    "offline", r->path, r->volume);
			return 0;
		}
		if (l->n == NFSD_MAX_EXPORTS) {
			fl_warn(ADM_SUB, "nfs: %s not exported: more than %d "
			    "exports", r->path, NFSD_MAX_EXPORTS);
			return 0;
		}
		e = &l->e[l->n];
		e->path = strdup(r->path);
		if (e->path == NULL) {
			l->oom = true;
			return -ENOMEM;
		}
		snprintf(e->volume, sizeof(e->volume), "%s", r->volume);
		l->x[l->n] = (struct nfsd_export){ .path = e->path, .vol = v,
		    .rules = e->rules };
		wafl_fh_key(v, l->x[l->n].fh_key);
		l->n++;
		l->cur_skip = false;
	}
	if (l->cur_skip)
		return 0;
	e = &l->e[l->n - 1];
	if (e->nrules == NFSD_MAX_RULES) {
		fl_warn(ADM_SUB, "nfs: %s: rule for %s ignored: more than %d "
		    "rules", r->path, r->client, NFSD_MAX_RULES);
		return 0;
	}
	e->clients[e->nrules] = strdup(r->client);
	if (e->clients[e->nrules] == NULL) {
		l->oom = true;
		return -ENOMEM;
	}
	nr = &e->rules[e->nrules];
	nr->client = e->clients[e->nrules];
	nr->flags = NFSD_ANONUID | NFSD_ANONGID;
	if (r->rw)
		nr->flags |= NFSD_RW;
	if (r->squash == ADM_SQUASH_NONE)
		nr->flags |= NFSD_NO_ROOT_SQUASH;
	else if (r->squash == ADM_SQUASH_ALL)
		nr->flags |= NFSD_ALL_SQUASH;
	if (!r->secure)
		nr->flags |= NFSD_INSECURE;
	nr->anonuid = r->anonuid;
	nr->anongid = r->anongid;
	e->nrules++;
	l->x[l->n - 1].nrules = e->nrules;
	return 0;
}

/* The export list from the database, without svc.down's exports.  *out
 * owned (list_free). */
static int list_build(struct adm_ctx *ctx, struct svc_list **out)
{
	struct svc_list *l = calloc(1, sizeof(*l));
	int rc;

	if (l == NULL)
		return -ENOMEM;
	l->ctx = ctx;
	rc = adm_exports_foreach(ctx, collect, l);
	if (rc == 0 && l->oom)
		rc = -ENOMEM;
	if (rc != 0) {
		list_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

/* nfsd refused the list as a whole: keep the exports it accepts alone
 * (a scratch server checks each; nothing is bound). */
static void list_filter(struct adm_ctx *ctx, struct svc_list *l)
{
	size_t keep = 0;

	for (size_t i = 0; i < l->n; i++) {
		struct nfsd_config c = { .exports = &l->x[i], .nexports = 1,
		    .drc_entries = 1, .threads = 1 };
		nfsd_t *s = NULL;
		int rc = nfsd_create(&c, &s);

		nfsd_free(s);
		if (rc != 0) {
			fl_err(ADM_SUB, "nfs: %s not exported: %s", l->e[i].path,
			    rc == -ENOENT ? "no such directory" :
			    rc == -ENOTDIR ? "not a directory" :
			    rc == -EINVAL ? "a client spec nfsd cannot use, "
			    "such as a host name that does not resolve" :
			    fl_strerror(rc));
			adm_event(ctx, l->e[i].volume, "export.refused",
			    "%s not exported: %s", l->e[i].path,
			    fl_strerror(rc));
			free(l->e[i].path);
			for (size_t j = 0; j < l->e[i].nrules; j++)
				free(l->e[i].clients[j]);
			continue;
		}
		if (keep != i) {
			l->e[keep] = l->e[i];
			l->x[keep] = l->x[i];
			l->x[keep].rules = l->e[keep].rules;
		}
		keep++;
	}
	l->n = keep;
}

static void list_log(const struct svc_list *l)
{
	char buf[1024];
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < l->n && off < sizeof(buf); i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s",
		    i ? ", " : "", l->e[i].path);
	fl_info(ADM_SUB, "nfs: %zu export(s)%s%s", l->n, l->n ? ": " : "",
	    buf);
}

static void settings_read(struct adm_ctx *ctx, struct svc_settings *s)
{
	s->nfs_port = (uint16_t)adm_setting_u64(ctx, "nfs_port");
	s->mount_port = (uint16_t)adm_setting_u64(ctx, "mount_port");
	s->threads = (uint32_t)adm_setting_u64(ctx, "nfs_threads");
	s->rpcbind = adm_setting_u64(ctx, "nfs_rpcbind") != 0;
	s->mounts_per_host = (uint32_t)adm_setting_u64(ctx,
	    "nfs_mounts_per_host");
}

static bool settings_same(const struct svc_settings *a,
    const struct svc_settings *b)
{
	return a->nfs_port == b->nfs_port && a->mount_port == b->mount_port &&
	    a->threads == b->threads && a->rpcbind == b->rpcbind &&
	    a->mounts_per_host == b->mounts_per_host;
}

/* ------------------------------------------------------------ serving */

/* Create and start a server with settings st and the configured exports
 * into svc (which must hold none). */
static int serve(struct adm_ctx *ctx, const struct svc_settings *st)
{
	struct nfsd_config cfg = {
		.nfs_port = st->nfs_port,
		.mount_port = st->mount_port,
		.threads = st->threads,
		.register_rpcbind = st->rpcbind,
		.mounts_per_host = st->mounts_per_host,
	};
	struct svc_list *l = NULL;
	nfsd_t *s = NULL;
	int rc = list_build(ctx, &l);

	if (rc != 0)
		return rc;
	cfg.exports = l->x;
	cfg.nexports = l->n;
	rc = nfsd_create(&cfg, &s);
	if (rc != 0 && rc != -ENOMEM) {
		list_filter(ctx, l);
		cfg.nexports = l->n;
		rc = nfsd_create(&cfg, &s);
	}
	if (rc == 0)
		list_log(l);
	list_free(l);
	if (rc != 0)
		return rc;
	rc = nfsd_start(s);
	if (rc != 0) {
		nfsd_free(s);
		fl_err(ADM_SUB, "nfs: cannot serve on ports %u (NFS) and %u "
		    "(MOUNT): %s; choose others with: filerctl config set "
		    "nfs_port N; filerctl config set mount_port M",
		    st->nfs_port, st->mount_port, fl_strerror(rc));
		adm_event(ctx, NULL, "service.failed", "NFS not served: ports "
		    "%u/%u: %s", st->nfs_port, st->mount_port,
		    fl_strerror(rc));
		return rc;
	}
	svc.srv = s;
	svc.cur = *st;
	return 0;
}

static void unserve(void)
{
	nfsd_free(svc.srv);	/* stops it first */
	svc.srv = NULL;
}

/* Swap the configured exports into the running server. */
static int exports_apply(struct adm_ctx *ctx)
{
	struct svc_list *l = NULL;
	int rc;

	if (svc.srv == NULL)
		return 0;
	rc = list_build(ctx, &l);
	if (rc != 0)
		return rc;
	rc = nfsd_set_exports(svc.srv, l->x, l->n);
	if (rc != 0 && rc != -ENOMEM) {
		list_filter(ctx, l);
		rc = nfsd_set_exports(svc.srv, l->x, l->n);
	}
	if (rc == 0)
		list_log(l);
	else
		fl_err(ADM_SUB, "nfs: exports not changed: %s",
		    fl_strerror(rc));
	list_free(l);
	return rc;
}

/* --------------------------------------------------------- the service */

static int nfs_start(struct adm_ctx *ctx)
{
	struct svc_settings st;
	int rc;

	svc.down[0] = '\0';
	settings_read(ctx, &st);
	rc = serve(ctx, &st);
	/* Ports taken: filerd runs on without NFS; reload tries again. */
	return rc == -ENOMEM ? rc : 0;
}

static void nfs_stop(struct adm_ctx *ctx)
{
	if (svc.srv != NULL)
		fl_info(ADM_SUB, "nfs: stopping");
	unserve();
}

static int nfs_reload(struct adm_ctx *ctx, unsigned what)
{
	struct svc_settings st, old = svc.cur;
	bool had = svc.srv != NULL;
	int rc;

	if (!(what & ADM_RELOAD_SETTINGS))
		return (what & ADM_RELOAD_EXPORTS) ? exports_apply(ctx) : 0;
	settings_read(ctx, &st);
	if (had && settings_same(&st, &svc.cur))
		return (what & ADM_RELOAD_EXPORTS) ? exports_apply(ctx) : 0;
	/* New ports, threads or rpcbind choice: a new server (it reads the
	 * exports afresh). */
	if (had)
		fl_info(ADM_SUB, "nfs: restarting with ports %u/%u, %u "
		    "threads", st.nfs_port, st.mount_port, st.threads);
	unserve();
	rc = serve(ctx, &st);
	if (rc != 0 && had && serve(ctx, &old) == 0)
		fl_warn(ADM_SUB, "nfs: still serving on ports %u/%u",
		    old.nfs_port, old.mount_port);
	return rc;
}

static void nfs_volume_up(struct adm_ctx *ctx, const char *name,
    wafl_vol_t *v)
{
	svc.down[0] = '\0';
	(void)exports_apply(ctx);
}

static void nfs_volume_down(struct adm_ctx *ctx, const char *name)
{
	snprintf(svc.down, sizeof(svc.down), "%s", name);
	/* On failure nothing of the volume may stay: no exports at all. */
	if (exports_apply(ctx) != 0 && svc.srv != NULL)
		(void)nfsd_set_exports(svc.srv, NULL, 0);
	svc.down[0] = '\0';
}

const struct adm_service adm_svc_nfsd = {
	.name = "nfs",
	.start = nfs_start,
	.stop = nfs_stop,
	.reload = nfs_reload,
	.volume_up = nfs_volume_up,
	.volume_down = nfs_volume_down,
};
