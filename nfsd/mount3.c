/*
 * nfsd/mount3.c: MOUNT version 3 (RFC 1813 section 5) and its dispatch
 * table.
 *
 *   MNT      the path must be an export or a directory below one (as Linux
 *            mountd allows); the export's first rule matching the caller
 *            decides (no rule, or a privileged port required and not used:
 *            MNT3ERR_ACCES); unknown path MNT3ERR_NOENT, and so is an
 *            export whose directory was removed since the exports were
 *            set (not a handle stale from the start).  The reply carries
 *            the handle and AUTH_SYS as the flavor.  The mount is recorded
 *            (advisory, memory only).  ".snapshot" and ".snapshot/NAME"
 *            in the volume's root resolve as LOOKUP resolves them, so a
 *            snapshot can be mounted (read-only) by its path.
 *   DUMP     the recorded mounts; UMNT / UMNTALL forget them.
 *   EXPORT   every export with its client specs as groups.
 *   DUMP's and EXPORT's lists are cut after the last entry that fits the
 *   reply whole (over UDP MNT_UDP_REPLY_MAX bytes, what a libtirpc client
 *   reads), which is logged: a reply too large for a datagram would never
 *   be sent, and the client would time out.
 *   A denied client learns nothing beyond MNT3ERR_ACCES.
 *   A path (MNT, UMNT) holding a NUL byte is GARBAGE_ARGS.  A path is
 *   logged with the bytes outside printable ASCII escaped (log_path).
 *
 *   A path is put in its canonical form (canon_path: repeated and trailing
 *   slashes dropped) before anything else, as Linux mountd puts it through
 *   realpath: that form is what MNT resolves and what its record keeps,
 *   so the spellings of one directory make one record per client, and
 *   UMNT of any of them forgets it.  The list holds NFSD_MOUNT_RECS_MAX
 *   records, and at most cfg.mounts_per_host (default 64) of one client
 *   address, so one client mounting directory after directory cannot
 *   leave the others no room.  Past either bound a MNT is answered all
 *   the same but not recorded (logged once a minute at most, each bound
 *   on its own), and no record is pushed out for it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/log.h"
#include "common/util.h"
#include "mount3_prot.h"
#include "nfsd/nfsd_impl.h"

/*
 * dirpath (MNT, UMNT) as xdr_dirpath decodes it, but refused (FALSE:
 * GARBAGE_ARGS) when the path holds a NUL byte: decoded as a C string it
 * would end at the NUL, so "/vol/vol0\0junk" would mount /vol/vol0 and
 * UMNT of it forget /vol/vol0.  The same rule as for NFS names
 * (nfs3_xdr.c); GARBAGE_ARGS rather than MNT3ERR_INVAL because UMNT has
 * no status to carry.  Encoding and XDR_FREE are the generated routine's.
 */
static bool_t mnt_xdr_dirpath(XDR *x, dirpath *p)
{
	u_int pos, len;

	if (x->x_op != XDR_DECODE)
		return xdr_dirpath(x, p);
	pos = xdr_getpos(x);
	if (!xdr_u_int(x, &len) || !xdr_setpos(x, pos))
		return FALSE;
	if (!xdr_dirpath(x, p))
		return FALSE;
	return *p != NULL && strlen(*p) == len;
}

/*
 * path in the form MNT resolves and a mount record keeps: a slash
 * following a slash is dropped, and so is a trailing one (but the first):
 * "//vol/vol0//" is "/vol/vol0".  out has room for strlen(path) + 1
 * bytes (the result is never longer).  "." and ".." are left as they are
 * (MNT refuses them).
 */
static void canon_path(const char *path, char *out)
{
	size_t o = 0;

	for (const char *p = path; *p != '\0'; p++)
		if (*p != '/' || o == 0 || out[o - 1] != '/')
			out[o++] = *p;
	if (o > 1 && out[o - 1] == '/')
		o--;
	out[o] = '\0';
}

/*
 * path as it may go into a log line: it comes from a client (one refused,
 * perhaps), so a byte outside printable ASCII, or a backslash, is written
 * \xNN, and the result is cut with "..." to fit out (len >= 8).  Written
 * as it came, a newline would forge log lines and an escape sequence
 * drive the terminal of whoever reads them.
 */
static void log_path(const char *path, char *out, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	ASSERT(len >= 8);
	for (const unsigned char *p = (const unsigned char *)path;
	    *p != '\0'; p++) {
		bool plain = *p >= 0x20 && *p < 0x7f && *p != '\\';
		if (o + (plain ? 1 : 4) + 4 > len) {	/* "..." and NUL */
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (plain) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
}

static void peer_host(const struct nfsd_req *r, char *out, size_t len)
{
	const struct sockaddr_storage *p = &r->peer;

	out[0] = '\0';
	if (p->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)p)->sin_addr,
		    out, (socklen_t)len);
	else if (p->ss_family == AF_INET6)
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)p)->sin6_addr, out,
		    (socklen_t)len);
}

/* The export holding path (longest prefix at a component boundary) and
 * the rest of the path after it. */
static const struct nfsd_exp *find_export(const struct nfsd *s,
    const char *path, const char **rest)
{
	const struct nfsd_exp *best = NULL;
	size_t blen = 0;

	for (size_t i = 0; i < s->nexps; i++) {
		size_t n = strlen(s->exps[i].path);
		if (strncmp(path, s->exps[i].path, n) == 0 &&
		    (path[n] == '\0' || path[n] == '/') && n > blen) {
			best = &s->exps[i];
			blen = n;
		}
	}
	*rest = path + blen;
	return best;
}

/* Walk rest below the export's root, as LOOKUP would: ".snapshot" in the
 * volume's root is the virtual snapshot directory and NAME below it a
 * snapshot's root, so a snapshot can be mounted by its path. */
static mountstat3 walk(const struct nfsd_exp *e, const char *rest,
    struct nfsd_obj *ob)
{
	static const struct wafl_cred root = { 0 };

	ob->exp = e;
	ob->o = e->root;
	ob->snapdir = false;
	while (*rest != '\0') {
		char comp[WAFL_NAME_MAX + 1];
		while (*rest == '/')
			rest++;
		if (*rest == '\0')
			break;
		const char *end = strchr(rest, '/');
		size_t k = end ? (size_t)(end - rest) : strlen(rest);
		if (k > WAFL_NAME_MAX)
			return MNT3ERR_NAMETOOLONG;
		memcpy(comp, rest, k);
		comp[k] = '\0';
		rest += k;
		if (strcmp(comp, "..") == 0 || strcmp(comp, ".") == 0)
			return MNT3ERR_INVAL;
		int rc;
		if (ob->snapdir) {
			uint64_t id;
			rc = wafl_snap_lookup(e->vol, comp, &id);
			if (rc == 0)
				rc = wafl_snap_root(e->vol, id, &ob->o);
			ob->snapdir = false;
			if (rc == -ENOENT || rc == -ESTALE)
				return MNT3ERR_NOENT;
			if (rc != 0)
				return MNT3ERR_IO;
			continue;
		}
		if (strcmp(comp, ".snapshot") == 0 && ob->o.snap == 0 &&
		    ob->o.ino == e->volroot.ino) {
			ob->snapdir = true;
			ob->o = e->volroot;
			continue;
		}
		struct wafl_attr a, da;
		uint64_t snap = ob->o.snap;
		rc = wafl_lookup(e->vol, &root, &ob->o, comp, &ob->o, &a, &da);
		ob->o.snap = snap;
		/* ESTALE: a directory on the way (the export's own, resolved
		 * when the exports were set) was removed since. */
		if (rc == -ENOENT || rc == -ESTALE)
			return MNT3ERR_NOENT;
		if (rc != 0)
			return MNT3ERR_IO;
		if (a.type != WAFL_DIR)
			return MNT3ERR_NOTDIR;
	}
	if (!ob->snapdir && ob->o.ino == e->root.ino &&
	    ob->o.snap == e->root.snap) {
		/* Nothing looked up: the export's directory must still be
		 * there, or the client gets a handle stale from the start. */
		struct wafl_attr a;
		int rc = wafl_getattr(e->vol, &ob->o, &a);
		if (rc == -ENOENT || rc == -ESTALE)
			return MNT3ERR_NOENT;
		if (rc != 0)
			return MNT3ERR_IO;
	}
	return MNT3_OK;
}

/* A record holds any path MNT decodes: cut, DUMP would list another path
 * and UMNT of the one mounted would never find it. */
FL_STATIC_ASSERT(sizeof(((struct nfsd_mount_rec *)0)->path) > MNTPATHLEN,
    "a mount record holds the longest dirpath");

/* Record host's mount of path (canonical) unless it is recorded already:
 * 0, or not recorded: -EDQUOT (host has its limit), -ENOSPC (the list is
 * full), -ENOMEM. */
static int mount_record(struct nfsd *s, const char *host, const char *path)
{
	pthread_mutex_lock(&s->mounts_lock);
	struct nfsd_mount_rec *m = s->mounts;
	size_t n = 0, nhost = 0;
	int rc = 0;
	for (; m != NULL; m = m->next, n++) {
		if (strcmp(m->host, host) != 0)
			continue;
		if (strcmp(m->path, path) == 0)
			goto out;
		nhost++;
	}
	if (nhost >= s->cfg.mounts_per_host) {
		rc = -EDQUOT;
		goto out;
	}
	if (n >= NFSD_MOUNT_RECS_MAX) {
		rc = -ENOSPC;
		goto out;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	snprintf(m->host, sizeof(m->host), "%s", host);
	snprintf(m->path, sizeof(m->path), "%s", path);
	m->next = s->mounts;
	s->mounts = m;
out:
	pthread_mutex_unlock(&s->mounts_lock);
	return rc;
}

/* Whether a rate-limited message may be logged now (*last: when the
 * previous one was, 0 for never): at most one a minute. */
static bool log_due(_Atomic uint64_t *last)
{
	uint64_t now = fl_now_mono_ns(), was = atomic_load(last);

	return (was == 0 || now - was > 60000000000ull) &&
	    atomic_compare_exchange_strong(last, &was, now);
}

/* Forget host's mounts of path (NULL: all of host's). */
static void mount_forget(struct nfsd *s, const char *host, const char *path)
{
	pthread_mutex_lock(&s->mounts_lock);
	for (struct nfsd_mount_rec **pp = &s->mounts; *pp != NULL;) {
		struct nfsd_mount_rec *m = *pp;
		if (strcmp(m->host, host) == 0 &&
		    (path == NULL || strcmp(m->path, path) == 0)) {
			*pp = m->next;
			free(m);
		} else {
			pp = &m->next;
		}
	}
	pthread_mutex_unlock(&s->mounts_lock);
}

static enum nfsd_disp mnt_null(struct nfsd_req *r, void *a, void *s)
{
	return NFSD_REPLY;
}

/* RFC 1813 5.2.1 */
static enum nfsd_disp mnt_mnt(struct nfsd_req *r, void *a, void *s)
{
	const char *path = *(dirpath *)a;
	mountres3 *res = s;
	const char *rest;
	char host[64], shown[512], canon[MNTPATHLEN + 1];
	struct nfsd_obj ob = { 0 };

	canon_path(path, canon);
	const struct nfsd_exp *e = find_export(r->srv, canon, &rest);

	peer_host(r, host, sizeof(host));
	if (e == NULL) {
		res->fhs_status = MNT3ERR_NOENT;
		return NFSD_REPLY;
	}
	bool busy;
	const struct nfsd_rule *rule = nfsd_rule_match(r->srv, e, &r->peer,
	    &busy);
	if (busy) {
		/* Its name is still being looked up: no answer, so the
		 * client asks again (MOUNT has no "try later").  Logged
		 * once a minute at most. */
		static _Atomic uint64_t logged_ns;
		if (log_due(&logged_ns)) {
			log_path(path, shown, sizeof(shown));
			fl_log(FL_LOG_INFO, "nfsd", "mount of %s by %s: its "
			    "host name is not known yet; the request is "
			    "dropped, the client retries", shown, host);
		}
		return NFSD_DROP;
	}
	if (rule == NULL || !nfsd_rule_port_ok(rule, &r->peer)) {
		log_path(path, shown, sizeof(shown));
		fl_log(FL_LOG_INFO, "nfsd", "refused mount of %s by %s%s",
		    shown, host, rule != NULL ? " (insecure port)" : "");
		res->fhs_status = MNT3ERR_ACCES;
		return NFSD_REPLY;
	}
	res->fhs_status = walk(e, rest, &ob);
	if (res->fhs_status != MNT3_OK)
		return NFSD_REPLY;
	mountres3_ok *ok = &res->mountres3_u.mountinfo;
	uint8_t *fh = nfsd_req_alloc(r, NFSD_FH_LEN);
	int *flavors = nfsd_req_alloc(r, sizeof(int));
	if (fh == NULL || flavors == NULL || nfsd_fh_encode(&ob, fh) != 0)
		return NFSD_SYSTEM_ERR;
	ok->fhandle.fhandle3_val = (char *)fh;
	ok->fhandle.fhandle3_len = NFSD_FH_LEN;
	flavors[0] = AUTH_SYS;
	ok->auth_flavors.auth_flavors_val = flavors;
	ok->auth_flavors.auth_flavors_len = 1;
	int mrc = mount_record(r->srv, host, canon);
	if (mrc == -ENOSPC && log_due(&r->srv->mounts_full_logged_ns)) {
		log_path(canon, shown, sizeof(shown));
		fl_log(FL_LOG_WARN, "nfsd", "mount list full (%u records): "
		    "mount of %s by %s answered but not recorded, DUMP does "
		    "not list it (logged once a minute)", NFSD_MOUNT_RECS_MAX,
		    shown, host);
	} else if (mrc == -EDQUOT &&
	    log_due(&r->srv->mounts_host_logged_ns)) {
		log_path(canon, shown, sizeof(shown));
		fl_log(FL_LOG_WARN, "nfsd", "%s has %u mount records, the "
		    "most one client keeps: mount of %s answered but not "
		    "recorded, DUMP does not list it (logged once a minute)",
		    host, r->srv->cfg.mounts_per_host, shown);
	}
	return NFSD_REPLY;
}

/*
 * The most bytes a DUMP or EXPORT reply takes.  Over UDP, Sun RPC's
 * UDPMSGSIZE: libtirpc's UDP clients (showmount, rpcinfo) read no more of
 * a datagram than that, and Linux mountd's UDP transport sends no more
 * (a longer list gets SYSTEM_ERR there).  Over TCP, the record's bound.
 */
#define MNT_UDP_REPLY_MAX	8800u
/* An accepted reply's header with a null verifier: xid, REPLY,
 * MSG_ACCEPTED, verifier flavor and length, SUCCESS. */
#define MNT_REPLY_HEAD		24u
FL_STATIC_ASSERT(MNT_UDP_REPLY_MAX <= NFSD_UDP_REPLY_MAX,
    "a MOUNT list over UDP fits a datagram");

/* XDR size of a string (length, bytes, padding). */
static size_t xdr_str_size(const char *p)
{
	return 4 + ((strlen(p) + 3) & ~(size_t)3);
}

/* Bytes r's reply has for a list's entries: its bound, less the header
 * and the list's end. */
static size_t list_room(const struct nfsd_req *r)
{
	return (r->udp ? MNT_UDP_REPLY_MAX : NFSD_MAX_RECORD) -
	    MNT_REPLY_HEAD - 4;
}

/* A list was cut to n of total entries to fit r's reply: say so, once a
 * minute at most (*last). */
static void log_cut(const struct nfsd_req *r, const char *proc,
    const char *what, size_t n, size_t total, _Atomic uint64_t *last)
{
	char host[64];

	if (!log_due(last))
		return;
	peer_host(r, host, sizeof(host));
	fl_log(FL_LOG_WARN, "nfsd", "%s over %s to %s: %zu of %zu %s fit in "
	    "a reply of %u bytes, the list sent is cut%s (logged once a "
	    "minute)", proc, r->udp ? "UDP" : "TCP", host, n, total, what,
	    r->udp ? MNT_UDP_REPLY_MAX : NFSD_MAX_RECORD,
	    r->udp ? "; over TCP it goes whole" : "");
}

/*
 * RFC 1813 5.2.2.  The list is advisory: one that does not fit the reply
 * (over UDP, more than some 8 KB) is cut after the last record that fits
 * whole, and that is logged.
 */
static enum nfsd_disp mnt_dump(struct nfsd_req *r, void *a, void *s)
{
	mountlist *res = s, *tail = res;
	struct nfsd *srv = r->srv;
	enum nfsd_disp d = NFSD_REPLY;
	size_t room = list_room(r), n = 0, total = 0;
	bool cut = false;

	pthread_mutex_lock(&srv->mounts_lock);
	for (struct nfsd_mount_rec *m = srv->mounts; m != NULL; m = m->next) {
		total++;
		if (cut || d != NFSD_REPLY)
			continue;
		size_t need = 4 + xdr_str_size(m->host) +
		    xdr_str_size(m->path);
		if (need > room) {
			cut = true;
			continue;
		}
		room -= need;
		struct mountbody *b = nfsd_req_alloc(r, sizeof(*b));
		char *h = nfsd_req_alloc(r, strlen(m->host) + 1);
		char *p = nfsd_req_alloc(r, strlen(m->path) + 1);
		if (b == NULL || h == NULL || p == NULL) {
			d = NFSD_SYSTEM_ERR;
			continue;
		}
		strcpy(h, m->host);
		strcpy(p, m->path);
		b->ml_hostname = h;
		b->ml_directory = p;
		*tail = b;
		tail = &b->ml_next;
		n++;
	}
	pthread_mutex_unlock(&srv->mounts_lock);
	if (cut && d == NFSD_REPLY)
		log_cut(r, "DUMP", "mount records", n, total,
		    &srv->dump_cut_logged_ns);
	return d;
}

/* RFC 1813 5.2.3 */
static enum nfsd_disp mnt_umnt(struct nfsd_req *r, void *a, void *s)
{
	const char *path = *(dirpath *)a;
	char host[64], canon[MNTPATHLEN + 1];

	canon_path(path, canon);
	peer_host(r, host, sizeof(host));
	mount_forget(r->srv, host, canon);
	return NFSD_REPLY;
}

/* RFC 1813 5.2.4 */
static enum nfsd_disp mnt_umntall(struct nfsd_req *r, void *a, void *s)
{
	char host[64];

	peer_host(r, host, sizeof(host));
	mount_forget(r->srv, host, NULL);
	return NFSD_REPLY;
}

/* Is rule j of e the first of its spec (a host name compiles to several
 * rules with one spec, listed once)? */
static bool spec_first(const struct nfsd_exp *e, size_t j)
{
	return j == 0 || strcmp(e->rules[j - 1].spec, e->rules[j].spec) != 0;
}

/*
 * RFC 1813 5.2.5.  An export goes with all its groups or not at all (a
 * client reading part of the groups would think itself refused); the list
 * is cut before the first export that does not fit the reply, as DUMP's.
 */
static enum nfsd_disp mnt_export(struct nfsd_req *r, void *a, void *s)
{
	exports *res = s, *tail = res;
	struct nfsd *srv = r->srv;
	size_t room = list_room(r), i;

	for (i = 0; i < srv->nexps; i++) {
		const struct nfsd_exp *e = &srv->exps[i];
		size_t need = 4 + xdr_str_size(e->path) + 4;
		for (size_t j = 0; j < e->nrules; j++)
			if (spec_first(e, j))
				need += 4 + xdr_str_size(e->rules[j].spec);
		if (need > room) {
			log_cut(r, "EXPORT", "exports", i, srv->nexps,
			    &srv->export_cut_logged_ns);
			break;
		}
		room -= need;
		struct exportnode *n = nfsd_req_alloc(r, sizeof(*n));
		if (n == NULL)
			return NFSD_SYSTEM_ERR;
		n->ex_dir = (char *)e->path;
		groups *gt = &n->ex_groups;
		for (size_t j = 0; j < e->nrules; j++) {
			if (!spec_first(e, j))
				continue;
			struct groupnode *g = nfsd_req_alloc(r, sizeof(*g));
			if (g == NULL)
				return NFSD_SYSTEM_ERR;
			g->gr_name = (char *)e->rules[j].spec;
			*gt = g;
			gt = &g->gr_next;
		}
		*tail = n;
		tail = &n->ex_next;
	}
	return NFSD_REPLY;
}

static const struct nfsd_proc mount3_procs[] = {
	[0] = { .name = "NULL", .xdr_args = (xdrproc_t)nfsd_xdr_void,
		.xdr_res = (xdrproc_t)nfsd_xdr_void, .handler = mnt_null },
	[1] = { .name = "MNT", .xdr_args = (xdrproc_t)mnt_xdr_dirpath,
		.args_size = sizeof(dirpath),
		.xdr_res = (xdrproc_t)xdr_mountres3,
		.res_size = sizeof(mountres3), .handler = mnt_mnt },
	[2] = { .name = "DUMP", .xdr_args = (xdrproc_t)nfsd_xdr_void,
		.xdr_res = (xdrproc_t)xdr_mountlist,
		.res_size = sizeof(mountlist), .handler = mnt_dump },
	[3] = { .name = "UMNT", .xdr_args = (xdrproc_t)mnt_xdr_dirpath,
		.args_size = sizeof(dirpath),
		.xdr_res = (xdrproc_t)nfsd_xdr_void, .handler = mnt_umnt },
	[4] = { .name = "UMNTALL", .xdr_args = (xdrproc_t)nfsd_xdr_void,
		.xdr_res = (xdrproc_t)nfsd_xdr_void, .handler = mnt_umntall },
	[5] = { .name = "EXPORT", .xdr_args = (xdrproc_t)nfsd_xdr_void,
		.xdr_res = (xdrproc_t)xdr_exports,
		.res_size = sizeof(exports), .handler = mnt_export },
};

const struct nfsd_prog nfsd_mount3_prog = {
	.prog = MOUNT_PROG, .vers = MOUNT_VERS, .procs = mount3_procs,
	.nprocs = sizeof(mount3_procs) / sizeof(mount3_procs[0]),
};
