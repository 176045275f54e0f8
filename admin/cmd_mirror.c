/*
 * admin/cmd_mirror.c: peer add, list, remove; mirror create, init,
 * quiesce, resume, break, delete, status.
 *
 * `mirror resync` runs on both filerds of a broken-off relationship
 * (svc_mirror.c, docs/mirror.md "Resync").
 *
 * A relationship is configured on both filerds: on the source's with
 * `mirror create SRCVOL PEER:DSTVOL` (PEER names the destination filerd),
 * on the destination's with `mirror create PEER:SRCVOL DSTVOL` (PEER names
 * the source filerd).  Both peers carry the same key.  A relationship is
 * named by its local volume in the other verbs: a volume takes part in at
 * most one relationship.  svc_mirror.c runs what the rows say.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/adm_impl.h"
#include "admin/svc_mirror.h"
#include "mirror/mirror.h"
#include "mirror/wire.h"
#include "common/err.h"
#include "common/log.h"

/* ---------------------------------------------------------------- peers */

static bool split_hostport(const char *s, char *host, size_t hlen,
    uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	uint64_t p;
	size_t n;

	if (colon == NULL || colon == s)
		return false;
	n = (size_t)(colon - s);
	if (n >= hlen || adm_parse_u64(colon + 1, &p) != 0 || p < 1 ||
	    p > 65535)
		return false;
	memcpy(host, s, n);
	host[n] = '\0';
	if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	for (const char *c = host; *c != '\0'; c++)
		if (!(*c == '.' || *c == '-' || *c == ':' || *c == '_' ||
		    (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
		    (*c >= 'A' && *c <= 'Z')))
			return false;
	*port = (uint16_t)p;
	return true;
}

static int peer_add(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *name = adm_req_get(req, "name");
	const char *addr = adm_req_get(req, "address");
	const char *kf = adm_req_get(req, "key_file");
	char host[256], hex[2 * ADM_PEER_KEY_MAX + 1], why[512];
	uint16_t port;
	int rc;

	if (!split_hostport(addr, host, sizeof(host), &port))
		return adm_fail(rep, ADM_USAGE, "--address: '%s' is not "
		    "HOST:PORT (like 192.0.2.7:10566)", addr);
	rc = adm_mirror_key_load(kf, hex, sizeof(hex), why, sizeof(why));
	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "%s", why);
	rc = adm_db_exec(ctx->db, "INSERT INTO mirror_peers (name, address, "
	    "port, psk) VALUES (?, ?, ?, ?)", "ssis", name, host,
	    (int64_t)port, hex);
	if (rc == -EEXIST)
		return adm_fail(rep, ADM_ERR, "a peer named %s exists; remove "
		    "it first: filerctl peer remove %s", name, name);
	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "cannot store the peer: %s",
		    fl_strerror(rc));
	adm_event(ctx, NULL, "peer.added", "peer %s at %s:%u", name, host,
	    port);
	adm_say(rep, "peer %s added (%s:%u)", name, host, port);
	return ADM_OK;
}

static int peer_list(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	sqlite3_stmt *st;

	if (adm_db_prepare(ctx->db, &st, "SELECT p.name, p.address, p.port, "
	    "(SELECT count(*) FROM mirrors m WHERE m.peer_id = p.id) FROM "
	    "mirror_peers p ORDER BY p.name", NULL) != 0)
		return adm_fail(rep, ADM_ERR, "cannot read the peers");
	adm_rep_list(rep, "peers");
	while (sqlite3_step(st) == SQLITE_ROW) {
		adm_rep_row(rep, "peers");
		adm_rep_str(rep, "name", adm_col_text(st, 0));
		adm_rep_str(rep, "address", adm_col_text(st, 1));
		adm_rep_u64(rep, "port", (uint64_t)sqlite3_column_int64(st, 2));
		adm_rep_u64(rep, "mirrors",
		    (uint64_t)sqlite3_column_int64(st, 3));
	}
	sqlite3_finalize(st);
	return ADM_OK;
}

static int peer_remove(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *name = adm_req_get(req, "name");
	int64_t id, n = 0;

	if (adm_db_i64(ctx->db, &id, "SELECT id FROM mirror_peers WHERE "
	    "name = ?", "s", name) != 0)
		return adm_fail(rep, ADM_ERR, "no peer named %s; see: filerctl "
		    "peer list", name);
	(void)adm_db_i64(ctx->db, &n, "SELECT count(*) FROM mirrors WHERE "
	    "peer_id = ?", "i", id);
	if (n > 0)
		return adm_fail(rep, ADM_ERR, "peer %s is used by %" PRId64
		    " mirror relationship(s); delete them first (filerctl "
		    "mirror delete VOLUME)", name, n);
	if (adm_db_exec(ctx->db, "DELETE FROM mirror_peers WHERE id = ?", "i",
	    id) != 0)
		return adm_fail(rep, ADM_ERR, "cannot remove the peer");
	adm_event(ctx, NULL, "peer.removed", "peer %s removed", name);
	adm_say(rep, "peer %s removed", name);
	return ADM_OK;
}

/* ------------------------------------------------------------ mirrors */

struct rel {
	int64_t id;
	char vol[ADM_NAME_MAX];
	char rvol[ADM_NAME_MAX];
	char peer[64];
	char direction[16];
	char mode[8];
	char state[32];
	uint64_t acked;
	char err[192];
	int64_t created;
	uint64_t schedule_s;
	int64_t schedule_at;	/* anchored: seconds after 00:00 UTC; -1 */
	char compress[8];
	bool tls;
	uint64_t throttle_bps;	/* the source's send limit; 0: none */
};

#define REL_SELECT "SELECT m.id, v.name, m.remote_volume, p.name, " \
	"m.direction, m.mode, m.state, m.acked_gen, m.last_error, m.created, " \
	"m.schedule_s, m.compress, m.tls, m.throttle_bps, m.schedule_at " \
	"FROM mirrors m JOIN volumes v ON v.id = m.volume_id JOIN " \
	"mirror_peers p ON p.id = m.peer_id "

static void rel_read(sqlite3_stmt *st, struct rel *r)
{
	r->id = sqlite3_column_int64(st, 0);
	snprintf(r->vol, sizeof(r->vol), "%s", adm_col_text(st, 1));
	snprintf(r->rvol, sizeof(r->rvol), "%s", adm_col_text(st, 2));
	snprintf(r->peer, sizeof(r->peer), "%s", adm_col_text(st, 3));
	snprintf(r->direction, sizeof(r->direction), "%s",
	    adm_col_text(st, 4));
	snprintf(r->mode, sizeof(r->mode), "%s", adm_col_text(st, 5));
	snprintf(r->state, sizeof(r->state), "%s", adm_col_text(st, 6));
	r->acked = (uint64_t)sqlite3_column_int64(st, 7);
	snprintf(r->err, sizeof(r->err), "%s", adm_col_text(st, 8));
	r->created = sqlite3_column_int64(st, 9);
	r->schedule_s = (uint64_t)sqlite3_column_int64(st, 10);
	snprintf(r->compress, sizeof(r->compress), "%s", adm_col_text(st, 11));
	r->tls = sqlite3_column_int64(st, 12) != 0;
	r->throttle_bps = (uint64_t)sqlite3_column_int64(st, 13);
	r->schedule_at = sqlite3_column_int64(st, 14);
}

static int rel_by_volume(struct adm_ctx *ctx, const char *vol, struct rel *r,
    struct adm_rep *rep)
{
	sqlite3_stmt *st;
	int rc = -ENOENT;

	if (adm_db_prepare(ctx->db, &st, REL_SELECT "WHERE v.name = ?", "s",
	    vol) != 0)
		return adm_fail(rep, ADM_ERR, "cannot read the relationships");
	if (sqlite3_step(st) == SQLITE_ROW) {
		rel_read(st, r);
		rc = 0;
	}
	sqlite3_finalize(st);
	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "volume %s is in no mirror "
		    "relationship; see: filerctl mirror status", vol);
	return ADM_OK;
}

static bool is_source(const struct rel *r)
{
	return strcmp(r->direction, "source") == 0;
}

/* "PEER:VOL" into peer and vol. */
static bool split_remote(const char *s, char *peer, size_t plen, char *vol,
    size_t vlen)
{
	const char *colon = strchr(s, ':');
	size_t n;

	if (colon == NULL)
		return false;
	n = (size_t)(colon - s);
	if (n == 0 || n >= plen || strlen(colon + 1) >= vlen)
		return false;
	memcpy(peer, s, n);
	peer[n] = '\0';
	snprintf(vol, vlen, "%s", colon + 1);
	return adm_valid_volname(peer) && adm_valid_volname(vol);
}

/* --throttle t: "none" (or 0) or a rate per second like 512K, 20M or 1G,
 * 64 KiB to 1 TiB (MIR_THROTTLE_MIN, MIR_THROTTLE_MAX: what a resync's
 * RS_BEGIN may carry), into *bps; ADM_USAGE (rep says why) otherwise. */
static int throttle_arg(struct adm_rep *rep, const char *t, uint64_t *bps)
{
	uint64_t v;

	if (strcmp(t, "none") == 0 || strcmp(t, "0") == 0) {
		*bps = 0;
		return ADM_OK;
	}
	if (adm_parse_size(t, &v) != 0 || v < MIR_THROTTLE_MIN ||
	    v > MIR_THROTTLE_MAX)
		return adm_fail(rep, ADM_USAGE, "--throttle: '%s' is not a "
		    "rate: bytes a second with K, M or G (512K, 20M, 1G), from "
		    "64K to 1T, or none", t);
	*bps = v;
	return ADM_OK;
}

/* ", throttle 20M/s", or nothing without one. */
static void throttle_fmt(uint64_t bps, char *out, size_t len)
{
	char sz[32];

	if (bps == 0) {
		out[0] = '\0';
		return;
	}
	adm_fmt_size(bps, sz, sizeof(sz));
	snprintf(out, len, ", throttle %s/s", sz);
}

/* --schedule sched for a relationship in mode: its seconds into *secs,
 * its anchor into *at (-1: none); ADM_USAGE (rep says why) unless mode
 * is async and sched a schedule. */
static int sched_arg(struct adm_rep *rep, const char *mode, const char *sched,
    uint64_t *secs, int64_t *at)
{
	if (strcmp(mode, "async") != 0)
		return adm_fail(rep, ADM_USAGE, "--schedule needs --mode async "
		    "(sync mode ships every CP as it is written)");
	if (adm_mirror_schedule_parse(sched, secs, at) != 0)
		return adm_fail(rep, ADM_USAGE, "--schedule: '%s' is not an "
		    "interval: a number and a unit, s, m, h or d (30s, 5m, 1h, "
		    "1d), from %us to %ud, optionally @HH:MM (UTC) when it "
		    "divides a day (1d@02:30, 1h@00:15)", sched,
		    ADM_MIRROR_SCHED_MIN, ADM_MIRROR_SCHED_MAX / 86400);
	return ADM_OK;
}

static int mirror_create(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *src = adm_req_get(req, "source");
	const char *dst = adm_req_get(req, "destination");
	const char *mode = adm_req_get(req, "mode");
	const char *sched = adm_req_get(req, "schedule");
	const char *comp = adm_req_get(req, "compress");
	const char *thr = adm_req_get(req, "throttle");
	bool tls = adm_req_flag(req, "tls");
	char peer[64], rvol[ADM_NAME_MAX], sbuf[32], tbuf[48], opts[160];
	uint64_t throttle = 0;
	const char *lvol;
	bool dest;
	struct adm_vol_rec rec;
	int64_t peer_id, n = 0;
	uint64_t sched_s = 0;
	int64_t sched_at = -1;
	int rc;

	if (mode == NULL)
		mode = "sync";
	if (comp == NULL)
		comp = "none";
	if (strchr(dst, ':') != NULL && strchr(src, ':') == NULL) {
		dest = false;
		lvol = src;
		if (!split_remote(dst, peer, sizeof(peer), rvol, sizeof(rvol)))
			return adm_fail(rep, ADM_USAGE, "'%s' is not "
			    "PEER:VOLUME", dst);
	} else if (strchr(src, ':') != NULL && strchr(dst, ':') == NULL) {
		dest = true;
		lvol = dst;
		if (!split_remote(src, peer, sizeof(peer), rvol, sizeof(rvol)))
			return adm_fail(rep, ADM_USAGE, "'%s' is not "
			    "PEER:VOLUME", src);
	} else {
		return adm_fail(rep, ADM_USAGE, "one side is a local volume, "
		    "the other PEER:VOLUME: on the source filerd, mirror "
		    "create SRCVOL PEER:DSTVOL; on the destination's, mirror "
		    "create PEER:SRCVOL DSTVOL");
	}
	if (!adm_valid_volname(lvol))
		return adm_fail(rep, ADM_USAGE, "'%s' is not a valid volume "
		    "name", lvol);
	if (sched != NULL && dest)
		return adm_fail(rep, ADM_USAGE, "--schedule belongs on the "
		    "source filerd (mirror create SRCVOL PEER:DSTVOL --mode "
		    "async --schedule ...)");
	if (sched != NULL && sched_arg(rep, mode, sched, &sched_s,
	    &sched_at) != 0)
		return ADM_USAGE;
	if (thr != NULL && dest)
		return adm_fail(rep, ADM_USAGE, "--throttle belongs on the "
		    "source filerd, which sends (mirror create SRCVOL "
		    "PEER:DSTVOL --throttle ...)");
	if (thr != NULL && throttle_arg(rep, thr, &throttle) != ADM_OK)
		return ADM_USAGE;
	if (adm_vol_get(ctx->db, lvol, &rec) != 0)
		return adm_fail(rep, ADM_ERR, "no volume named %s; see: "
		    "filerctl vol list", lvol);
	if (adm_db_i64(ctx->db, &peer_id, "SELECT id FROM mirror_peers WHERE "
	    "name = ?", "s", peer) != 0)
		return adm_fail(rep, ADM_ERR, "no peer named %s; add it with: "
		    "filerctl peer add %s --address HOST:PORT --key-file F",
		    peer, peer);
	(void)adm_db_i64(ctx->db, &n, "SELECT count(*) FROM mirrors WHERE "
	    "volume_id = ?", "i", rec.id);
	if (n > 0)
		return adm_fail(rep, ADM_ERR, "volume %s is already in a mirror "
		    "relationship (filerctl mirror status)", lvol);
	if (dest) {
		if (adm_vol_find(ctx, lvol) == NULL)
			return adm_fail(rep, ADM_ERR, "volume %s is offline; "
			    "bring it online first: filerctl vol online %s",
			    lvol, lvol);
	}
	rc = adm_db_exec(ctx->db, "INSERT INTO mirrors (volume_id, peer_id, "
	    "remote_volume, direction, mode, state, created, schedule_s, "
	    "compress, tls, throttle_bps, schedule_at) VALUES (?, ?, ?, ?, ?, "
	    "'uninitialized', strftime('%s', 'now'), ?, ?, ?, ?, ?)",
	    "iisssisiii", rec.id, peer_id, rvol, dest ? "destination" :
	    "source", mode, (int64_t)sched_s, comp, (int64_t)(tls ? 1 : 0),
	    (int64_t)throttle, sched_at);
	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "cannot store the relationship: "
		    "%s", fl_strerror(rc));
	/* What the log and the answer say of the options. */
	adm_mirror_schedule_fmt(strcmp(mode, "async") == 0 ?
	    adm_mirror_schedule_of(sched_s) : 0, sched_at, sbuf, sizeof(sbuf));
	throttle_fmt(throttle, tbuf, sizeof(tbuf));
	snprintf(opts, sizeof(opts), "%s%s%s, compression %s, TLS %s%s", mode,
	    sbuf[0] != '\0' ? " every " : "", sbuf, comp, tls ? "on" : "off",
	    tbuf);
	mode = opts;
	adm_event(ctx, lvol, "mirror.created", "mirror %s %s %s:%s (%s), "
	    "uninitialized", lvol, dest ? "from" : "to", peer, rvol, mode);
	if (dest) {
		/* From now on only the mirror writes the volume. */
		(void)adm_mirror_make_readonly(ctx, lvol);
		adm_mirror_sync(ctx);
		adm_say(rep, "mirror destination %s (from %s:%s, %s) created; "
		    "it is read-only and waits for the source's baseline "
		    "(filerctl mirror init %s on the source)", lvol, peer,
		    rvol, mode, rvol);
	} else {
		adm_say(rep, "mirror %s to %s:%s (%s) created; start the "
		    "baseline with: filerctl mirror init %s", lvol, peer,
		    rvol, mode, lvol);
	}
	return ADM_OK;
}

/*
 * `mirror modify VOL [--mode M] [--schedule T] [--compress C] [--tls on|off]`:
 * the row changes and the relationship restarts with it (as after a
 * filerd restart: a source catches up by birth generation, a quiesced one
 * stays quiesced).  Mode and schedule are the source's; link options must
 * match on both filerds, so they are changed on each (until then the
 * destination refuses the link, and the source's status says why).
 */
static int mirror_modify(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *mode = adm_req_get(req, "mode");
	const char *sched = adm_req_get(req, "schedule");
	const char *comp = adm_req_get(req, "compress");
	const char *tls = adm_req_get(req, "tls");
	const char *thr = adm_req_get(req, "throttle");
	char before[160], after[160], sb[32], sa[32], tb[48], ta[48];
	uint64_t sched_s, throttle;
	int64_t sched_at;
	bool tls_on;
	struct rel r;
	int rc;

	if (mode == NULL && sched == NULL && comp == NULL && tls == NULL &&
	    thr == NULL)
		return adm_fail(rep, ADM_USAGE, "nothing to change: give "
		    "--mode, --schedule, --compress, --tls or --throttle");
	if (rel_by_volume(ctx, adm_req_get(req, "volume"), &r, rep) != ADM_OK)
		return ADM_ERR;
	if (!is_source(&r) && (mode != NULL || sched != NULL || thr != NULL))
		return adm_fail(rep, ADM_USAGE, "--mode, --schedule and "
		    "--throttle are the source's: change them on the source "
		    "filerd (mirror modify %s there)", r.rvol);
	throttle = r.throttle_bps;
	if (thr != NULL && throttle_arg(rep, thr, &throttle) != ADM_OK)
		return ADM_USAGE;
	if (strcmp(r.state, "resyncing") == 0)
		return adm_fail(rep, ADM_ERR, "mirror %s: a resync is running; "
		    "change the relationship once it is done", r.vol);
	struct adm_mirror_status ms;
	bool running = adm_mirror_rel_status(ctx, r.id, &ms);
	if (mode == NULL)
		mode = r.mode;
	if (comp == NULL)
		comp = r.compress;
	tls_on = tls != NULL ? strcmp(tls, "on") == 0 : r.tls;
	sched_s = strcmp(mode, "async") == 0 ? r.schedule_s : 0;
	sched_at = strcmp(mode, "async") == 0 ? r.schedule_at : -1;
	if (sched != NULL && sched_arg(rep, mode, sched, &sched_s,
	    &sched_at) != 0)
		return ADM_USAGE;
	adm_mirror_schedule_fmt(strcmp(r.mode, "async") == 0 && is_source(&r) ?
	    adm_mirror_schedule_of(r.schedule_s) : 0, r.schedule_at, sb,
	    sizeof(sb));
	adm_mirror_schedule_fmt(strcmp(mode, "async") == 0 && is_source(&r) ?
	    adm_mirror_schedule_of(sched_s) : 0, sched_at, sa, sizeof(sa));
	throttle_fmt(r.throttle_bps, tb, sizeof(tb));
	throttle_fmt(throttle, ta, sizeof(ta));
	snprintf(before, sizeof(before), "%s%s%s, compression %s, TLS %s%s",
	    r.mode, sb[0] != '\0' ? " every " : "", sb, r.compress,
	    r.tls ? "on" : "off", tb);
	snprintf(after, sizeof(after), "%s%s%s, compression %s, TLS %s%s",
	    mode, sa[0] != '\0' ? " every " : "", sa, comp,
	    tls_on ? "on" : "off", ta);
	if (strcmp(before, after) == 0 && sched_s == r.schedule_s &&
	    sched_at == r.schedule_at && throttle == r.throttle_bps) {
		adm_say(rep, "mirror %s: unchanged (%s)", r.vol, after);
		return ADM_OK;
	}
	rc = adm_db_exec(ctx->db, "UPDATE mirrors SET mode = ?, schedule_s = "
	    "?, compress = ?, tls = ?, throttle_bps = ?, schedule_at = ? "
	    "WHERE id = ?", "sisiiii", mode, (int64_t)sched_s, comp,
	    (int64_t)(tls_on ? 1 : 0), (int64_t)throttle, sched_at, r.id);
	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "cannot store the change: %s",
		    fl_strerror(rc));
	adm_event(ctx, r.vol, "mirror.modified", "mirror %s %s %s:%s: %s -> "
	    "%s", r.vol, is_source(&r) ? "to" : "from", r.peer, r.rvol,
	    before, after);
	adm_mirror_restart_rel(ctx, r.id);
	if (running && !adm_mirror_rel_status(ctx, r.id, &ms)) {
		struct rel now;
		if (rel_by_volume(ctx, r.vol, &now, rep) != ADM_OK)
			return ADM_ERR;
		return adm_fail(rep, ADM_ERR, "mirror %s: the change is stored "
		    "(%s), but the relationship did not start again: %s; see: "
		    "filerctl mirror status %s", r.vol, after, now.err[0] !=
		    '\0' ? now.err : "no reason recorded", r.vol);
	}
	if (strcmp(comp, r.compress) != 0 || tls_on != r.tls)
		adm_say(rep, "mirror %s: %s (was %s); the link options must "
		    "match: on %s run filerctl mirror modify %s --compress %s "
		    "--tls %s", r.vol, after, before, r.peer, r.rvol, comp,
		    tls_on ? "on" : "off");
	else
		adm_say(rep, "mirror %s: %s (was %s)", r.vol, after, before);
	return ADM_OK;
}

static int mirror_init(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	struct rel r;

	if (rel_by_volume(ctx, adm_req_get(req, "volume"), &r, rep) != ADM_OK)
		return ADM_ERR;
	if (!is_source(&r))
		return adm_fail(rep, ADM_ERR, "%s is a mirror destination; run "
		    "mirror init on the source filerd", r.vol);
	if (strcmp(r.state, "uninitialized") != 0)
		return adm_fail(rep, ADM_ERR, "mirror %s is %s, not "
		    "uninitialized", r.vol, r.state);
	if (adm_vol_find(ctx, r.vol) == NULL)
		return adm_fail(rep, ADM_ERR, "volume %s is offline", r.vol);
	if (adm_db_exec(ctx->db, "UPDATE mirrors SET state = 'transferring' "
	    "WHERE id = ?", "i", r.id) != 0)
		return adm_fail(rep, ADM_ERR, "cannot update the relationship");
	adm_event(ctx, r.vol, "mirror.state", "mirror %s to %s:%s: "
	    "uninitialized -> transferring: baseline started", r.vol, r.peer,
	    r.rvol);
	adm_mirror_sync(ctx);
	adm_say(rep, "mirror %s: baseline to %s:%s started; follow it with: "
	    "filerctl mirror status", r.vol, r.peer, r.rvol);
	return ADM_OK;
}

static int mirror_quiesce_common(struct adm_ctx *ctx,
    const struct adm_req *req, struct adm_rep *rep, bool on)
{
	struct rel r;

	if (rel_by_volume(ctx, adm_req_get(req, "volume"), &r, rep) != ADM_OK)
		return ADM_ERR;
	if (!is_source(&r))
		return adm_fail(rep, ADM_ERR, "%s is a mirror destination; %s "
		    "runs on the source filerd", r.vol, on ? "quiesce" :
		    "resume");
	if (on && strcmp(r.state, "quiesced") == 0) {
		adm_say(rep, "mirror %s is already quiesced", r.vol);
		return ADM_OK;
	}
	if (!on && strcmp(r.state, "quiesced") != 0)
		return adm_fail(rep, ADM_ERR, "mirror %s is %s, not quiesced: "
		    "nothing to resume", r.vol, r.state);
	if (adm_mirror_quiesce(ctx, r.id, on) != 0)
		return adm_fail(rep, ADM_ERR, "mirror %s is %s and does not run "
		    "(initialize it, or bring its volume online)", r.vol,
		    r.state);
	adm_say(rep, "mirror %s %s", r.vol, on ? "quiesced" : "resumed");
	return ADM_OK;
}

static int mirror_quiesce(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	return mirror_quiesce_common(ctx, req, rep, true);
}

static int mirror_resume(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	return mirror_quiesce_common(ctx, req, rep, false);
}

/* What a break of a source left on its volume (mirror_break's reply):
 * the roots parked (the newest), or the error that kept them held. */
struct break_park {
	uint64_t parked, newest;
	int rc;
};

static int do_break(struct adm_ctx *ctx, struct rel *r, struct adm_rep *rep,
    struct break_park *bp)
{
	char why[512];

	if (strcmp(r->state, "broken-off") == 0)
		return ADM_OK;
	if (is_source(r)) {
		struct adm_mirror_status ms;
		uint64_t acked = r->acked;

		/* The row's or the running relationship's, whichever is
		 * newer (a restarted source says 0 until it reconnects). */
		if (adm_mirror_rel_status(ctx, r->id, &ms) &&
		    ms.acked_gen > acked)
			acked = ms.acked_gen;

		adm_mirror_stop_rel(ctx, r->id);
		if (acked == 0) {
			/* Nothing was acknowledged: the root kept for a
			 * baseline's resume is no common base for a resync,
			 * and a stopped source would hold it until delete. */
			struct adm_vol *av = adm_vol_find(ctx, r->vol);

			if (av != NULL && av->wafl != NULL)
				(void)mir_source_forget(av->wafl);
		}
		if (adm_db_exec(ctx->db, "UPDATE mirrors SET state = "
		    "'broken-off' WHERE id = ?", "i", r->id) != 0)
			return adm_fail(rep, ADM_ERR, "cannot update the "
			    "relationship");
		adm_event(ctx, r->vol, "mirror.state", "mirror %s to %s:%s: "
		    "%s -> broken-off: by the administrator", r->vol, r->peer,
		    r->rvol, r->state);
		if (acked != 0) {
			/* The stopped source keeps the acknowledged root
			 * (and the roots sent after it) held for a resync,
			 * and no fallback runs to bound what waits behind
			 * them: they become mirror.base snapshots, which a
			 * resync finds as well (mir_source_park). */
			struct break_park p = { 0 };
			const char *crash =
			    getenv("FILER_MIRROR_CRASH_BEFORE_PARK");

			if (crash != NULL && strcmp(crash, "1") == 0) {
				/* Tests: a crash between the row's update
				 * and the park; the start parks. */
				fl_warn(ADM_SUB, "mirror %s: broken off, "
				    "killing filerd before the park "
				    "(FILER_MIRROR_CRASH_BEFORE_PARK)", r->vol);
				(void)raise(SIGKILL);
			}
			p.rc = adm_mirror_park(ctx, r->vol, "broken off by the "
			    "administrator", &p.parked, &p.newest);
			if (bp != NULL)
				*bp = p;
		}
		return ADM_OK;
	}
	if (adm_mirror_break_dest(ctx, r->id, why, sizeof(why)) != 0)
		return adm_fail(rep, ADM_ERR, "mirror %s: break failed: %s",
		    r->vol, why);
	return ADM_OK;
}

/* Break and delete wait for this filerd's half of a resync: the job
 * runs on, finishes and starts the relationship again whatever the row
 * says (T's volume rolled back and remounted read-only). */
static int refuse_resyncing(const struct rel *r, struct adm_rep *rep,
    const char *verb)
{
	return adm_fail(rep, ADM_ERR, "mirror %s: a resync is running here; "
	    "%s the relationship once it is done, or take volume %s offline "
	    "to interrupt the resync first", r->vol, verb, r->vol);
}

static int mirror_break(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	struct rel r;

	if (rel_by_volume(ctx, adm_req_get(req, "volume"), &r, rep) != ADM_OK)
		return ADM_ERR;
	if (adm_mirror_resync_running(r.id))
		return refuse_resyncing(&r, rep, "break");
	if (strcmp(r.state, "broken-off") == 0) {
		adm_say(rep, "mirror %s is already broken off", r.vol);
		return ADM_OK;
	}
	struct break_park bp = { 0 };

	if (do_break(ctx, &r, rep, &bp) != ADM_OK)
		return ADM_ERR;
	if (is_source(&r) && bp.rc != 0)
		adm_say(rep, "mirror %s to %s:%s broken off; the source no "
		    "longer ships its changes; the roots held for %s:%s could "
		    "not become snapshots (%s): they stay held, and the blocks "
		    "this volume frees wait behind them (see the events)",
		    r.vol, r.peer, r.rvol, r.peer, r.rvol, fl_strerror(bp.rc));
	else if (is_source(&r) && bp.parked != 0)
		adm_say(rep, "mirror %s to %s:%s broken off; the source no "
		    "longer ships its changes; the roots it held for a resync "
		    "are snapshots now (%llu, the newest mirror.base.%llu), so "
		    "the blocks this volume frees are reused",
		    r.vol, r.peer, r.rvol, (unsigned long long)bp.parked,
		    (unsigned long long)bp.newest);
	else if (is_source(&r))
		adm_say(rep, "mirror %s to %s:%s broken off; the source no "
		    "longer ships its changes", r.vol, r.peer, r.rvol);
	else
		adm_say(rep, "mirror %s broken off: the volume is writable at "
		    "its last complete generation", r.vol);
	return ADM_OK;
}

static int mirror_resync(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	struct rel r;
	char why[256];
	bool reverse = adm_req_flag(req, "reverse");

	if (rel_by_volume(ctx, adm_req_get(req, "volume"), &r, rep) != ADM_OK)
		return ADM_ERR;
	if (adm_mirror_resync(ctx, r.id, reverse, why, sizeof(why)) != 0)
		return adm_fail(rep, ADM_ERR, "mirror %s: resync: %s", r.vol,
		    why);
	bool t_side = !is_source(&r) != reverse;
	if (t_side)
		adm_say(rep, "mirror %s: resync started; this volume is "
		    "overwritten with %s:%s from the newest generation both "
		    "hold; what was written here since is kept on %s as "
		    "snapshot resync.GEN, and each snapshot made here since as "
		    "resync.GEN.NAME (the event log names them); run `mirror "
		    "resync %s%s` on %s too",
		    r.vol, r.peer, r.rvol, r.peer, r.rvol,
		    reverse ? " --reverse" : "", r.peer);
	else
		adm_say(rep, "mirror %s: resync started; %s:%s is overwritten "
		    "with this volume, and what was written there since the "
		    "common generation comes here as snapshot resync.GEN, and "
		    "each snapshot made there since as resync.GEN.NAME (the "
		    "event log names them); run `mirror resync %s%s` on %s "
		    "too", r.vol, r.peer, r.rvol,
		    r.rvol, reverse ? " --reverse" : "", r.peer);
	return ADM_OK;
}

static int mirror_delete(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	struct rel r;

	if (rel_by_volume(ctx, adm_req_get(req, "volume"), &r, rep) != ADM_OK)
		return ADM_ERR;
	if (adm_mirror_resync_running(r.id))
		return refuse_resyncing(&r, rep, "delete");
	/* A destination is broken off first: its volume stays, writable. */
	if (!is_source(&r) && strcmp(r.state, "uninitialized") != 0 &&
	    do_break(ctx, &r, rep, NULL) != ADM_OK)
		return ADM_ERR;
	adm_mirror_stop_rel(ctx, r.id);
	if (adm_db_exec(ctx->db, "DELETE FROM mirrors WHERE id = ?", "i",
	    r.id) != 0)
		return adm_fail(rep, ADM_ERR, "cannot delete the relationship");
	{
		/* An interrupted baseline's checkpoint (a destination's) and
		 * the record of a resync's end (either side's) go with it. */
		struct adm_vol_rec rec;
		char path[ADM_PATH_MAX + ADM_NAME_MAX + 16];

		if (adm_vol_get(ctx->db, r.vol, &rec) == 0) {
			if (!is_source(&r)) {
				adm_mirror_ckpt_path(rec.dir, r.vol, path,
				    sizeof(path));
				(void)unlink(path);
			}
			adm_mirror_resync_done_path(rec.dir, r.vol, path,
			    sizeof(path));
			(void)unlink(path);
		}
	}
	adm_event(ctx, r.vol, "mirror.deleted", "mirror %s %s %s:%s deleted",
	    r.vol, is_source(&r) ? "to" : "from", r.peer, r.rvol);
	{
		/* The peer's root is no longer kept here: the source's holds
		 * and fallback snapshot, the broken-off destination's
		 * mirror.base.<gen> (M6). */
		struct adm_vol *av = adm_vol_find(ctx, r.vol);

		if (av != NULL && av->wafl != NULL)
			(void)mir_source_forget(av->wafl);
	}
	if (!is_source(&r) && strcmp(r.state, "uninitialized") == 0) {
		/* Never received anything: writable again as it was. */
		struct adm_vol *av = adm_vol_find(ctx, r.vol);

		if (av != NULL && av->wafl != NULL) {
			wafl_vol_t *w = av->wafl;
			struct wafl_mount_opts mo = { .nvlog_path = av->nvlog };

			adm_jobs_wait(ctx, av->name, false);
			av->wafl = NULL;
			adm_services_reload(ctx, ADM_RELOAD_EXPORTS);
			(void)wafl_unmount(w);
			adm_mount_opts(ctx, &mo);
			if (wafl_mount(av->raid, &mo, &av->wafl) == 0)
				adm_services_reload(ctx, ADM_RELOAD_EXPORTS);
			else
				av->wafl = NULL;
		}
	}
	adm_mirror_sync(ctx);
	adm_say(rep, "mirror %s deleted", r.vol);
	return ADM_OK;
}

static int mirror_status(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *vol = adm_req_get(req, "volume");
	sqlite3_stmt *st;
	bool any = false;
	int rc;

	if (vol != NULL)
		rc = adm_db_prepare(ctx->db, &st, REL_SELECT "WHERE v.name = ? "
		    "ORDER BY v.name", "s", vol);
	else
		rc = adm_db_prepare(ctx->db, &st, REL_SELECT "ORDER BY v.name",
		    NULL);
	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "cannot read the relationships");
	adm_rep_list(rep, "mirrors");
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct rel r;
		struct adm_mirror_status s;
		char sched[32];
		bool run;

		rel_read(st, &r);
		run = adm_mirror_rel_status(ctx, r.id, &s);
		any = true;
		adm_rep_row(rep, "mirrors");
		adm_rep_str(rep, "volume", r.vol);
		adm_rep_str(rep, "direction", r.direction);
		adm_rep_str(rep, "peer", r.peer);
		adm_rep_str(rep, "remote_volume", r.rvol);
		adm_rep_str(rep, "mode", r.mode);
		adm_rep_str(rep, "state", run ? s.state : r.state);
		adm_rep_bool(rep, "running", run);
		adm_rep_u64(rep, "acked_gen", run ? s.acked_gen : r.acked);
		adm_rep_u64(rep, "source_gen", s.source_gen);
		adm_rep_u64(rep, "lag_cps", s.lag_cps);
		adm_rep_u64(rep, "lag_seconds", s.lag_s);
		adm_rep_u64(rep, "backlog_bytes", s.backlog_bytes);
		adm_rep_u64(rep, "bytes_out", s.bytes_out);
		adm_rep_u64(rep, "transfers", s.transfers);
		if (!is_source(&r))
			adm_rep_u64(rep, "port", s.port);
		/* The source runs the schedule. */
		adm_mirror_schedule_fmt(strcmp(r.mode, "async") != 0 ||
		    !is_source(&r) ? 0 : adm_mirror_schedule_of(r.schedule_s),
		    r.schedule_at, sched, sizeof(sched));
		adm_rep_str(rep, "schedule", sched);
		if (is_source(&r) && strcmp(r.mode, "async") == 0)
			adm_rep_i64(rep, "next_run_s", run ? s.next_run_s : -1);
		adm_rep_str(rep, "compress", r.compress);
		adm_rep_bool(rep, "tls", r.tls);
		if (is_source(&r)) {
			char tt[48];

			adm_fmt_size(r.throttle_bps, tt, sizeof(tt));
			adm_rep_u64(rep, "throttle_bps", r.throttle_bps);
			if (r.throttle_bps != 0)
				strcat(tt, "/s");
			adm_rep_str(rep, "throttle", r.throttle_bps == 0 ?
			    "none" : tt);
			adm_rep_bool(rep, "transferring", s.xfer_active);
			adm_rep_u64(rep, "transfer_bytes", s.xfer_bytes);
			adm_rep_u64(rep, "transfer_total_bytes", s.xfer_total);
			adm_rep_u64(rep, "transfer_rate_bps", s.xfer_rate);
			adm_rep_i64(rep, "transfer_eta_s", s.xfer_eta);
			adm_rep_u64(rep, "baseline_resumes", s.resumes);
			adm_rep_u64(rep, "blocks_not_resent",
			    s.blocks_not_resent);
			adm_rep_u64(rep, "refusals", s.refusals);
			adm_rep_u64(rep, "retry_delay_ms", s.retry_delay_ms);
		} else {
			adm_rep_u64(rep, "checkpoint_blocks", s.ckpt_blocks);
			adm_rep_u64(rep, "baseline_resumes", s.resumes);
			adm_rep_u64(rep, "blocks_received", s.blocks_received);
			adm_rep_u64(rep, "deltas_refused", s.deltas_refused);
			adm_rep_u64(rep, "silent_given_up", s.silent_given_up);
			adm_rep_u64(rep, "apply_us_mean", s.apply_us_mean);
			adm_rep_u64(rep, "flush_us_mean", s.flush_us_mean);
		}
		adm_rep_str(rep, "last_error", run ? s.last_error : r.err);
		adm_rep_u64(rep, "last_error_time", run ? s.last_error_time :
		    0);
		adm_rep_str(rep, "resolved_error", run ? s.resolved_error : "");
		adm_rep_u64(rep, "resolved_time", run ? s.resolved_time : 0);
	}
	sqlite3_finalize(st);
	if (vol != NULL && !any)
		return adm_fail(rep, ADM_ERR, "volume %s is in no mirror "
		    "relationship", vol);
	/* The one port this filerd receives relationships on: what it
	 * routed and what it refused (an id nobody here has is never seen
	 * by any relationship above). */
	struct mir_listener_stats ls;
	unsigned attached;
	uint16_t port;
	if (vol == NULL && adm_mirror_listener_status(ctx, &port, &attached,
	    &ls)) {
		adm_rep_obj(rep, "listener");
		adm_rep_u64(rep, "port", port);
		adm_rep_u64(rep, "receiving", attached);
		adm_rep_u64(rep, "accepted", ls.accepted);
		adm_rep_u64(rep, "routed", ls.routed);
		adm_rep_u64(rep, "unknown_relationship", ls.unknown);
		adm_rep_u64(rep, "malformed", ls.malformed);
		adm_rep_u64(rep, "timed_out", ls.timeouts);
		adm_rep_u64(rep, "busy", ls.busy);
		adm_rep_str(rep, "last_refusal", ls.last_refusal);
		adm_rep_u64(rep, "last_refusal_time", ls.last_refusal_time);
	}
	return ADM_OK;
}

/* ---------------------------------------------------------------- table */

static const struct adm_arg peer_add_args[] = {
	{ "name", ADM_A_VOLNAME, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "peer name (the other filerd)" },
	{ "address", ADM_A_TEXT, ADM_ARG_REQ, 0, 255, NULL, NULL,
	    "HOST:PORT of its mirror listener (its mirror_port)" },
	{ "key_file", ADM_A_PATH, ADM_ARG_REQ, 0, 0, NULL, NULL,
	    "file with the pre-shared key (16..64 bytes), the same on both "
	    "filerds" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg peer_name_args[] = {
	{ "name", ADM_A_VOLNAME, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "peer name" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg no_args[] = {
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg create_args[] = {
	{ "source", ADM_A_TEXT, ADM_ARG_REQ | ADM_ARG_POS, 0, 96, NULL, NULL,
	    "source volume: local name, or PEER:VOLUME on the destination" },
	{ "destination", ADM_A_TEXT, ADM_ARG_REQ | ADM_ARG_POS, 0, 96, NULL,
	    NULL, "destination: PEER:VOLUME, or the local volume on the "
	    "destination" },
	{ "mode", ADM_A_ENUM, 0, 0, 0, "sync|async", NULL,
	    "sync: every CP as it is written (default); async: the newest "
	    "root on a schedule and on resume" },
	{ "schedule", ADM_A_TEXT, 0, 0, 16, NULL, NULL,
	    "async, on the source: the interval between transfers, like 30s, "
	    "5m, 1h or 1d (1s..7d; default 1m), optionally at a UTC time "
	    "of day: 1d@02:30, 1h@00:15" },
	{ "compress", ADM_A_ENUM, 0, 0, 0, "none|lz4|zstd", NULL,
	    "compress the blocks on the link (default none); the same on "
	    "both filerds" },
	{ "tls", ADM_A_FLAG, 0, 0, 0, NULL, NULL,
	    "encrypt the link (TLS 1.3 keyed by the peers' key); the same "
	    "on both filerds" },
	{ "throttle", ADM_A_TEXT, 0, 0, 24, NULL, NULL,
	    "on the source: send at most this many bytes a second, like 512K, "
	    "20M or 1G (64K..1T; default none)" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg modify_args[] = {
	{ "volume", ADM_A_VOLNAME, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "the relationship's local volume" },
	{ "mode", ADM_A_ENUM, 0, 0, 0, "sync|async", NULL,
	    "on the source: sync (every CP) or async (on a schedule)" },
	{ "schedule", ADM_A_TEXT, 0, 0, 16, NULL, NULL,
	    "async, on the source: the interval between transfers (1s..7d), "
	    "optionally @HH:MM UTC (1d@02:30)" },
	{ "compress", ADM_A_ENUM, 0, 0, 0, "none|lz4|zstd", NULL,
	    "compression on the link; change it on both filerds" },
	{ "tls", ADM_A_ENUM, 0, 0, 0, "on|off", NULL,
	    "TLS on the link; change it on both filerds" },
	{ "throttle", ADM_A_TEXT, 0, 0, 24, NULL, NULL,
	    "on the source: the send limit in bytes a second (512K, 20M, "
	    "1G) or none" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg vol_args[] = {
	{ "volume", ADM_A_VOLNAME, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "the relationship's local volume" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg resync_args[] = {
	{ "volume", ADM_A_VOLNAME, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "the relationship's local volume (broken off)" },
	{ "reverse", ADM_A_FLAG, 0, 0, 0, NULL, NULL,
	    "overwrite the source's volume with the destination's (failback); "
	    "the relationship turns around, its throttle with it" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg status_args[] = {
	{ "volume", ADM_A_VOLNAME, ADM_ARG_POS, 0, 0, NULL, NULL,
	    "only this volume's relationship" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};

const struct adm_verb adm_mirror_verbs[] = {
	{ "peer add", peer_add_args, 0, peer_add,
	    "Register another filerd for mirroring",
	    "The key file is read by filerd; both filerds of a relationship\n"
	    "must register each other with the same key." },
	{ "peer list", no_args, 0, peer_list, "List mirror peers", NULL },
	{ "peer remove", peer_name_args, 0, peer_remove,
	    "Remove a peer no relationship uses", NULL },
	{ "mirror create", create_args, 0, mirror_create,
	    "Create a mirror relationship (on both filerds)",
	    "On the source: mirror create SRCVOL PEER:DSTVOL.  On the\n"
	    "destination: mirror create PEER:SRCVOL DSTVOL; the destination\n"
	    "volume must have at least the source's size and becomes read-only\n"
	    "(exported read-only) until the relationship is broken." },
	{ "mirror modify", modify_args, 0, mirror_modify,
	    "Change a relationship's mode, schedule or link options",
	    "The relationship restarts with the new options and catches up by\n"
	    "birth generation (a baseline under way resumes after the\n"
	    "destination's checkpoint); a quiesced one stays quiesced.\n"
	    "Mode and schedule are set on the source.  Compression and TLS\n"
	    "must be the same on both filerds: change them on each (until\n"
	    "then the destination refuses the link and the source's status\n"
	    "says why)." },
	{ "mirror init", vol_args, 0, mirror_init,
	    "Start the baseline transfer (on the source)", NULL },
	{ "mirror quiesce", vol_args, 0, mirror_quiesce,
	    "Stop shipping changes for now (on the source)", NULL },
	{ "mirror resume", vol_args, 0, mirror_resume,
	    "Ship changes again after quiesce", NULL },
	{ "mirror break", vol_args, 0, mirror_break,
	    "Break a relationship off",
	    "On the destination the volume becomes writable at its last\n"
	    "complete generation; handles taken on the source work on it." },
	{ "mirror resync", resync_args, 0, mirror_resync,
	    "Resync a broken-off relationship (on both filerds)",
	    "Without --reverse the destination's volume is overwritten with\n"
	    "the source's from the newest generation both hold; with it the\n"
	    "source's volume is overwritten with the destination's and the\n"
	    "relationship turns around, its throttle with it (the new source\n"
	    "has the rate the old one had).  What the overwritten side wrote\n"
	    "since that generation is kept on the other side as snapshot\n"
	    "resync.GEN, and each snapshot it made since as resync.GEN.NAME;\n"
	    "the mirror.resync event names them.  Run the same command on\n"
	    "both filerds; the overwritten volume leaves the exports at once." },
	{ "mirror delete", vol_args, 0, mirror_delete,
	    "Delete a relationship (a destination is broken off first)",
	    NULL },
	{ "mirror status", status_args, 0, mirror_status,
	    "State, acknowledged generation, lag, backlog, last error",
	    "lag_cps and lag_seconds are zero when the source has nothing\n"
	    "newer than what the destination acknowledged." },
	{ NULL, NULL, 0, NULL, NULL, NULL },
};
