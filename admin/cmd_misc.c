/*
 * admin/cmd_misc.c: config get/set, stats, events, check.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/adm_impl.h"
#include "nfsd/nfsd.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

/* -------------------------------------------------------------- config */

static void emit_setting(struct adm_ctx *ctx, struct adm_rep *rep,
    const struct adm_setting *s)
{
	char val[256];
	int64_t dummy;
	bool set = adm_db_i64(ctx->db, &dummy, "SELECT 1 FROM settings WHERE "
	    "key = ?", "s", s->key) == 0;

	if (adm_db_setting(ctx->db, s->key, val, sizeof(val)) != 0)
		val[0] = '\0';
	adm_rep_str(rep, "key", s->key);
	adm_rep_str(rep, "value", val);
	adm_rep_str(rep, "default", s->def);
	adm_rep_bool(rep, "is_default", !set);
	adm_rep_str(rep, "applies", s->applies);
	adm_rep_str(rep, "description", s->help);
}

static int config_get(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *key = adm_req_get(req, "key");
	const struct adm_setting *s;
	size_t n;

	if (key != NULL) {
		s = adm_setting_find(key);
		if (s == NULL)
			return adm_fail(rep, ADM_ERR, "no setting named %s; "
			    "see: filerctl config get", key);
		adm_rep_obj(rep, "setting");
		emit_setting(ctx, rep, s);
		return ADM_OK;
	}
	s = adm_settings(&n);
	adm_rep_list(rep, "settings");
	for (size_t i = 0; i < n; i++) {
		adm_rep_row(rep, "settings");
		emit_setting(ctx, rep, &s[i]);
	}
	return ADM_OK;
}

static int config_set(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *key = adm_req_get(req, "key");
	const char *value = adm_req_get(req, "value");
	const struct adm_setting *s = adm_setting_find(key);
	char canon[256], why[512], msg[600];
	int rc;

	if (s == NULL)
		return adm_fail(rep, ADM_ERR, "no setting named %s; see: "
		    "filerctl config get", key);
	if (adm_setting_check(s, value, canon, sizeof(canon), why,
	    sizeof(why)) != 0)
		return adm_fail(rep, ADM_ERR, "%s", why);
	snprintf(msg, sizeof(msg), "setting %s = %s", key, canon);
	rc = adm_db_begin(ctx->db);
	if (rc == 0)
		rc = adm_db_exec(ctx->db, "INSERT INTO settings (key, value) "
		    "VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
		    "excluded.value", "ss", key, canon);
	if (rc == 0)
		rc = adm_db_event(ctx->db, NULL, "config.changed", msg);
	if (rc == 0)
		rc = adm_db_commit(ctx->db);
	else
		adm_db_rollback(ctx->db);
	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "database error: %s",
		    fl_strerror(rc));
	if (ctx->daemon) {
		adm_daemon_apply(ctx);
		adm_services_reload(ctx, ADM_RELOAD_SETTINGS);
	}
	adm_say(rep, "%s = %s (takes effect: %s)", key, canon, s->applies);
	adm_rep_obj(rep, "setting");
	emit_setting(ctx, rep, s);
	return ADM_OK;
}

/* --------------------------------------------------------------- stats */

/* I/Os the disks left unanswered past disk_io_timeout_ms, all disks. */
static uint64_t disk_timeouts(const raid_vol_t *raid)
{
	struct raid_disk_info di;
	uint64_t n = 0;

	for (size_t i = 0; i < raid_ndisks(raid); i++)
		if (raid_disk_info(raid, i, &di) == 0)
			n += di.timeouts;
	return n;
}

static void emit_stats(struct adm_ctx *ctx, struct adm_rep *rep,
    struct adm_vol *v)
{
	struct wafl_stats ws;
	struct raid_status rs;
	double up = (double)(fl_now_mono_ns() - v->online_ns) / 1e9;
	uint64_t lookups;

	wafl_get_stats(v->wafl, &ws);
	raid_status(v->raid, &rs);
	lookups = ws.cache_hits + ws.cache_misses;
	adm_rep_str(rep, "volume", v->name);
	adm_rep_u64(rep, "ops", ws.ops);
	adm_rep_dbl(rep, "ops_per_s", up > 0 ? (double)ws.ops / up : 0);
	adm_rep_dbl(rep, "op_avg_us", ws.ops == 0 ? 0 :
	    (double)ws.op_ns_total / (double)ws.ops / 1e3);
	adm_rep_dbl(rep, "op_max_us", (double)ws.op_ns_max / 1e3);
	adm_rep_u64(rep, "cps", ws.cps);
	adm_rep_dbl(rep, "cp_avg_ms", ws.cps == 0 ? 0 :
	    (double)ws.cp_ns_total / (double)ws.cps / 1e6);
	adm_rep_dbl(rep, "cp_max_ms", (double)ws.cp_ns_max / 1e6);
	adm_rep_dbl(rep, "cp_freeze_max_ms", (double)ws.cp_freeze_ns_max / 1e6);
	adm_rep_dbl(rep, "cp_freeze_avg_ms", ws.cps == 0 ? 0 :
	    (double)ws.cp_freeze_ns_total / (double)ws.cps / 1e6);
	adm_rep_dbl(rep, "cp_write_avg_ms", ws.cps == 0 ? 0 :
	    (double)ws.cp_write_ns_total / (double)ws.cps / 1e6);
	adm_rep_dbl(rep, "cp_write_max_ms", (double)ws.cp_write_ns_max / 1e6);
	adm_rep_u64(rep, "cp_blocks", ws.cp_blocks);
	adm_rep_u64(rep, "generation", wafl_generation(v->wafl));
	adm_rep_dbl(rep, "cache_hit_pct", lookups == 0 ? 0 :
	    100.0 * (double)ws.cache_hits / (double)lookups);
	adm_rep_u64(rep, "cache_hits", ws.cache_hits);
	adm_rep_u64(rep, "cache_misses", ws.cache_misses);
	/* The process's block pool, shared by every volume. */
	adm_rep_u64(rep, "block_pool_bytes", wafl_pool_bytes());
	adm_rep_u64(rep, "nvlog_flushes", ws.log_flushes);
	adm_rep_u64(rep, "nvlog_waits", ws.log_waits);
	adm_rep_u64(rep, "repairs", ws.repairs);
	adm_rep_u64(rep, "read_errors", ws.read_errors);
	adm_rep_u64(rep, "orphans", ws.orphans);
	/* What the mounted file system runs with: settings take effect
	 * when a volume comes online. */
	adm_rep_str(rep, "mounted", ws.readonly ? "read-only" : "read-write");
	adm_rep_u64(rep, "cp_interval_ms", ws.cp_interval_ms);
	adm_rep_u64(rep, "dirty_max_bytes", ws.dirty_max_bytes);
	adm_rep_u64(rep, "cache_bytes", ws.cache_bytes);
	adm_rep_u64(rep, "raid_reads", rs.counters.reads);
	adm_rep_u64(rep, "raid_writes", rs.counters.writes);
	adm_rep_u64(rep, "full_stripe_writes", rs.counters.full_stripe_writes);
	adm_rep_u64(rep, "partial_stripe_writes",
	    rs.counters.partial_stripe_writes);
	adm_rep_u64(rep, "reconstructions", rs.counters.reconstructions);
	adm_rep_u64(rep, "raid_flushes", rs.counters.flushes);
	adm_rep_u64(rep, "disk_timeouts", disk_timeouts(v->raid));
	adm_rep_dbl(rep, "uptime_s", up);
}

static int stats(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *name = adm_req_get(req, "volume");
	struct adm_vol_rec rec;
	struct adm_vol *v;

	if (name != NULL) {
		if (adm_vol_get(ctx->db, name, &rec) != 0)
			return adm_fail(rep, ADM_ERR, "no volume named %s; "
			    "see: filerctl vol list", name);
		v = adm_vol_find(ctx, name);
		if (v == NULL)
			return adm_fail(rep, ADM_ERR, "volume %s is offline",
			    name);
		if (adm_vol_fs(v, rep) == NULL)
			return ADM_ERR;
		adm_rep_obj(rep, "stats");
		emit_stats(ctx, rep, v);
		return ADM_OK;
	}
	adm_rep_list(rep, "stats");
	for (v = ctx->vols; v != NULL; v = v->next) {
		if (v->wafl == NULL)
			continue;
		adm_rep_row(rep, "stats");
		emit_stats(ctx, rep, v);
	}
	/* The NFS server's own counters, since filerd started it. */
	struct nfsd_stats ns;
	if (ctx->daemon && adm_nfsd_stats(&ns)) {
		adm_rep_obj(rep, "nfs");
		adm_rep_u64(rep, "calls", ns.calls);
		adm_rep_u64(rep, "replies", ns.replies);
		adm_rep_u64(rep, "dropped", ns.dropped);
		adm_rep_u64(rep, "garbage_args", ns.garbage);
		adm_rep_u64(rep, "auth_errors", ns.auth_errors);
		adm_rep_u64(rep, "drc_hits", ns.drc_hits);
		adm_rep_u64(rep, "drc_in_progress_drops",
		    ns.drc_inprogress_drops);
		adm_rep_u64(rep, "connections_accepted", ns.conns_accepted);
		adm_rep_u64(rep, "connections_open", ns.conns_open);
		adm_rep_u64(rep, "connections_timed_out", ns.conns_timed_out);
		adm_rep_u64(rep, "connections_refused", ns.conns_refused);
		adm_rep_u64(rep, "records_oversized", ns.records_oversized);
		adm_rep_u64(rep, "reply_batches", ns.reply_batches);
		adm_rep_u64(rep, "replies_batched", ns.reply_batched);
		adm_rep_u64(rep, "quick_acks", ns.quick_acks);
		adm_rep_u64(rep, "host_lookups", ns.host_lookups);
		adm_rep_u64(rep, "host_cache_hits", ns.host_cache_hits);
		adm_rep_u64(rep, "host_stale", ns.host_stale);
		adm_rep_u64(rep, "host_busy", ns.host_busy);
	}
	return ADM_OK;
}

/* -------------------------------------------------------------- events */

static int events(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *since = adm_req_get(req, "since");
	const char *vol = adm_req_get(req, "volume");
	uint64_t limit = adm_req_u64(req, "limit", 100);
	uint64_t from = 0, from_ns;
	sqlite3_stmt *st;

	if (since != NULL && adm_parse_since(since, (uint64_t)time(NULL),
	    &from) != 0)
		return adm_fail(rep, ADM_USAGE, "--since: '%s' is not a time",
		    since);
	/* Event times are int64 nanoseconds (until 2262): a later --since
	 * matches none, rather than wrap around and match them all. */
	from_ns = from > (uint64_t)INT64_MAX / 1000000000ull ?
	    (uint64_t)INT64_MAX : from * 1000000000ull;
	if (ctx->daemon)
		adm_events_drain(ctx);
	if (adm_db_prepare(ctx->db, &st, "SELECT id, time_ns, volume, kind, "
	    "message FROM (SELECT * FROM events WHERE time_ns >= ?1 AND "
	    "(?2 IS NULL OR volume = ?2) ORDER BY id DESC LIMIT ?3) "
	    "ORDER BY id", "usu", from_ns, vol, limit) != 0)
		return adm_fail(rep, ADM_ERR, "database error");
	adm_rep_list(rep, "events");
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t ns = sqlite3_column_int64(st, 1);
		time_t t = (time_t)(ns / 1000000000);
		struct tm tm;
		char when[48], full[64];

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(full, sizeof(full), "%s.%03dZ", when,
		    (int)((ns / 1000000) % 1000));
		adm_rep_row(rep, "events");
		adm_rep_i64(rep, "id", sqlite3_column_int64(st, 0));
		adm_rep_str(rep, "time", full);
		adm_rep_str(rep, "volume", sqlite3_column_type(st, 2) ==
		    SQLITE_NULL ? "-" : adm_col_text(st, 2));
		adm_rep_str(rep, "kind", adm_col_text(st, 3));
		adm_rep_str(rep, "message", adm_col_text(st, 4));
	}
	sqlite3_finalize(st);
	return ADM_OK;
}

/* --------------------------------------------------------------- check */

/*
 * The check of an online volume runs as a job (daemon.c): on a thread of
 * its own, so that filerd serves other requests and runs its schedules
 * and mirrors meanwhile; the volume's file system stays mounted until it
 * is done (adm_jobs_wait).  An offline volume is checked here, on the
 * main thread, which then holds its disks.
 */
struct check_job {
	struct adm_job j;	/* first: finish frees the whole */
	wafl_vol_t *w;
	uint32_t hold_ms;
	char snap[ADM_SNAP_MAX];
	bool has_snap;
	int sync_rc, rc;
	struct wafl_check_result res;
};

/* The reply (and event) for a check that ran; its exit status. */
static int check_answer(struct adm_ctx *ctx, struct adm_rep *rep,
    const char *name, const char *snap, const char *mode, int rc,
    const struct wafl_check_result *res)
{
	adm_rep_obj(rep, "check");
	adm_rep_str(rep, "volume", name);
	adm_rep_str(rep, "mode", mode);
	adm_rep_str(rep, "scope", "active file system, retained CP roots and "
	    "every snapshot");
	adm_rep_u64(rep, "blocks_checked", res->blocks_checked);
	adm_rep_u64(rep, "inodes_checked", res->inodes_checked);
	adm_rep_u64(rep, "dirs_checked", res->dirs_checked);
	adm_rep_u64(rep, "errors", res->errors);
	adm_rep_str(rep, "first_error", res->first_error);
	if (rc == -ENOSPC && res->errors == 0)
		return adm_fail(rep, ADM_ERR, "check of volume %s stopped: the "
		    "volume is nearly full and writes needed the blocks the "
		    "check kept for the roots it was reading; free some space "
		    "and run it again, or check it offline (vol offline)",
		    name);
	if (rc != 0 && res->errors == 0)
		return adm_fail(rep, ADM_ERR, "check of volume %s could not "
		    "run: %s", name, fl_strerror(rc));
	if (res->errors != 0) {
		adm_event(ctx, name, "check.errors", "check found %" PRIu64
		    " errors; first: %s", res->errors, res->first_error);
		return adm_fail(rep, ADM_ERR, "check of volume %s found %"
		    PRIu64 " error(s); first: %s", name, res->errors,
		    res->first_error);
	}
	adm_say(rep, "volume %s is clean%s%s%s: %" PRIu64 " blocks, "
	    "%" PRIu64 " inodes, %" PRIu64 " directories checked", name,
	    snap != NULL ? " (snapshot " : "", snap != NULL ? snap : "",
	    snap != NULL ? " included)" : "", res->blocks_checked,
	    res->inodes_checked, res->dirs_checked);
	return ADM_OK;
}

/* Tests (FILER_CHECK_HOLD_MS): wait ms, so that a test acts while a
 * check runs; a cancel (cancel may be NULL) ends the wait. */
static void check_hold(uint32_t ms, const _Atomic bool *cancel)
{
	for (uint32_t t = 0; t < ms && (cancel == NULL || !*cancel);
	    t += 50) {
		struct timespec ts = { 0, 50 * 1000000L };
		nanosleep(&ts, NULL);
	}
}

/* The job's hold, inside the check once its roots are pinned (CPs go
 * on), in the job's own thread. */
static __thread uint32_t job_hold_ms;
static __thread const _Atomic bool *job_hold_cancel;

static void check_hold_hook(wafl_vol_t *v)
{
	(void)v;
	check_hold(job_hold_ms, job_hold_cancel);
}

static void check_run(struct adm_job *j)
{
	struct check_job *cj = (struct check_job *)j;

	if (cj->hold_ms > 0) {
		job_hold_ms = cj->hold_ms;
		job_hold_cancel = &j->cancel;
		wafl_check_set_test_hook(check_hold_hook);
	}
	/* The checker walks the durable root: a CP first. */
	cj->sync_rc = wafl_sync(cj->w);
	if (cj->sync_rc == 0)
		cj->rc = j->cancel ? -ECANCELED :
		    wafl_check_cancellable(cj->w, &cj->res, &j->cancel);
}

static int check_finish(struct adm_ctx *ctx, struct adm_job *j,
    struct adm_rep *rep)
{
	struct check_job *cj = (struct check_job *)j;
	int st;

	if (cj->sync_rc != 0)
		st = adm_fail(rep, ADM_ERR, "volume %s: consistency point "
		    "before the check failed: %s", j->vol,
		    fl_strerror(cj->sync_rc));
	else if (cj->rc == -ECANCELED)
		st = adm_fail(rep, ADM_ERR, "check of volume %s cancelled "
		    "(check --cancel, the volume went offline, its mirror took "
		    "its file system, or filerd is stopping); run it again",
		    j->vol);
	else
		st = check_answer(ctx, rep, j->vol, cj->has_snap ? cj->snap :
		    NULL, "online", cj->rc, &cj->res);
	free(cj);
	return st;
}

static int check(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *name = adm_req_get(req, "volume");
	const char *snap = adm_req_get(req, "snapshot");
	struct wafl_check_result res;
	struct adm_vol_rec rec;
	struct adm_vol *v;
	raid_vol_t *raid = NULL;
	wafl_vol_t *w = NULL;
	char why[768];
	const char *mode;
	int rc;

	if (adm_vol_get(ctx->db, name, &rec) != 0)
		return adm_fail(rep, ADM_ERR, "no volume named %s; see: "
		    "filerctl vol list", name);
	if (adm_req_flag(req, "cancel")) {
		if (!ctx->daemon || !adm_job_cancel(ctx, name, "check"))
			return adm_fail(rep, ADM_ERR, "no check of volume %s "
			    "is running", name);
		adm_say(rep, "the check of volume %s stops now; its caller is "
		    "told it was cancelled", name);
		return ADM_OK;
	}
	v = ctx->daemon ? adm_vol_find(ctx, name) : NULL;
	if (v != NULL && adm_vol_fs(v, rep) == NULL)
		return ADM_ERR;
	if (v != NULL) {
		uint64_t id;
		struct check_job *cj;

		if (snap != NULL && wafl_snap_lookup(v->wafl, snap, &id) != 0)
			return adm_fail(rep, ADM_ERR, "volume %s has no "
			    "snapshot named %s", name, snap);
		adm_jobs_settle(ctx, name, "check");
		if (adm_job_running(ctx, name, "check"))
			return adm_fail(rep, ADM_ERR, "a check of volume %s is "
			    "running already; wait for it", name);
		cj = calloc(1, sizeof(*cj));
		if (cj == NULL)
			return adm_fail(rep, ADM_ERR, "out of memory");
		snprintf(cj->j.vol, sizeof(cj->j.vol), "%s", name);
		cj->j.kind = "check";
		cj->j.uses_fs = true;
		cj->j.run = check_run;
		cj->j.finish = check_finish;
		cj->w = v->wafl;
		cj->hold_ms = ctx->check_hold_ms;
		if (snap != NULL) {
			snprintf(cj->snap, sizeof(cj->snap), "%s", snap);
			cj->has_snap = true;
		}
		rc = adm_job_start(ctx, &cj->j);
		if (rc == 0)
			return ADM_OK;	/* answered when it is done */
		/* No thread (or not a socket request): check here. */
		w = cj->w;
		free(cj);
		mode = "online";
		rc = wafl_sync(w);
		if (rc != 0)
			return adm_fail(rep, ADM_ERR, "volume %s: consistency "
			    "point before the check failed: %s", name,
			    fl_strerror(rc));
	} else {
		struct wafl_mount_opts mo = { 0 };

		mode = "offline, read-only";
		if (adm_raid_open(ctx, &rec, &raid, why, sizeof(why)) != 0)
			return adm_fail(rep, ADM_ERR, "volume %s: %s", name,
			    why);
		mo.readonly = true;
		mo.nvlog_path = rec.nvlog;	/* rec outlives the mount */
		rc = wafl_mount(raid, &mo, &w);
		if (rc != 0) {
			raid_close(raid);
			return adm_fail(rep, ADM_ERR, "volume %s: cannot mount "
			    "read-only: %s", name, fl_strerror(rc));
		}
	}
	if (snap != NULL) {
		uint64_t id;

		if (wafl_snap_lookup(w, snap, &id) != 0) {
			rc = adm_fail(rep, ADM_ERR, "volume %s has no snapshot "
			    "named %s", name, snap);
			goto out;
		}
	}
	/* An offline check holds the main loop for it too, as a long
	 * request would. */
	if (raid != NULL)
		check_hold(ctx->check_hold_ms, NULL);
	memset(&res, 0, sizeof(res));
	rc = wafl_check(w, &res);
	rc = check_answer(ctx, rep, name, snap, mode, rc, &res);
out:
	if (raid != NULL) {
		(void)wafl_unmount(w);
		raid_close(raid);
	}
	return rc;
}

static const struct adm_arg get_args[] = {
	{ "key", ADM_A_TEXT, ADM_ARG_POS, 0, 64, NULL, NULL,
	    "setting (all when omitted)" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg set_args[] = {
	{ "key", ADM_A_TEXT, ADM_ARG_REQ | ADM_ARG_POS, 0, 64, NULL, NULL,
	    "setting" },
	{ "value", ADM_A_TEXT, ADM_ARG_REQ | ADM_ARG_POS, 0, 255, NULL, NULL,
	    "new value" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg stats_args[] = {
	{ "volume", ADM_A_VOLNAME, ADM_ARG_POS, 0, 0, NULL, NULL,
	    "one volume (all online volumes when omitted)" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg events_args[] = {
	{ "since", ADM_A_TIME, 0, 0, 0, NULL, NULL,
	    "only newer events: 15m, 2h, 3d, 2026-11-25T19:00 (UTC), epoch" },
	{ "volume", ADM_A_VOLNAME, 0, 0, 0, NULL, NULL, "only this volume" },
	{ "limit", ADM_A_UINT, 0, 1, 100000, NULL, NULL,
	    "at most this many, the newest (100)" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg check_args[] = {
	{ "volume", ADM_A_VOLNAME, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "volume name" },
	{ "snapshot", ADM_A_SNAPNAME, 0, 0, 0, NULL, NULL,
	    "a snapshot that must exist (every snapshot is checked)" },
	{ "cancel", ADM_A_FLAG, 0, 0, 0, NULL, NULL,
	    "stop the running check of this volume (its caller is told)" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};

const struct adm_verb adm_misc_verbs[] = {
	{ "config get", get_args, ADM_V_OFFLINE, config_get,
	    "Show one setting or all", NULL },
	{ "config set", set_args, ADM_V_OFFLINE | ADM_V_NEWHOME,
	    config_set,
	    "Change a setting", "Each setting says when a change takes "
	    "effect (now, reload, next volume online)." },
	{ "stats", stats_args, 0, stats,
	    "Operation, consistency point, cache, NVLOG and RAID counters",
	    "Without a volume, the NFS server's counters follow: calls,\n"
	    "replies, dropped and malformed calls, DRC hits, connections,\n"
	    "host-name lookups and calls deferred for them." },
	{ "events", events_args, ADM_V_OFFLINE, events,
	    "Show the event log (disk failures, rebuilds, snapshots...)",
	    NULL },
	{ "check", check_args, ADM_V_OFFLINE, check,
	    "Verify a volume's file system (wafl_check: W1-W9)",
	    "An online volume is checked after a consistency point; an\n"
	    "offline one (or any volume without filerd) is opened read-only.\n"
	    "While the check walks an online volume, that volume's consistency\n"
	    "points wait for it (writes stall once dirty_max_bytes is dirty):\n"
	    "check VOL --cancel stops it." },
	{ NULL, NULL, 0, NULL, NULL, NULL },
};
