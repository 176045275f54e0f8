/*
 * admin/cmd_disk.c: disk list, fail, replace, add-spare; scrub start and
 * status.  A disk is named by its number in `vol status` (raid's disk
 * index: group members, then spares) or by its path.
 *
 * Disk moves (failure, rebuild onto a spare) are raid's; raid reports them
 * through events, and the event drain copies raid's view of the disks to
 * the database (adm_vol_sync_disks), so the next start lists every disk at
 * the position it now holds.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin/adm_impl.h"
#include "common/err.h"
#include "common/log.h"

static struct adm_vol *live_vol(struct adm_ctx *ctx, const char *name,
    struct adm_rep *rep)
{
	struct adm_vol_rec rec;
	struct adm_vol *v;

	if (adm_vol_get(ctx->db, name, &rec) != 0) {
		adm_fail(rep, ADM_ERR, "no volume named %s; see: filerctl "
		    "vol list", name);
		return NULL;
	}
	v = adm_vol_find(ctx, name);
	if (v == NULL)
		adm_fail(rep, ADM_ERR, "volume %s is offline%s%s; bring it "
		    "online with: filerctl vol online %s", name,
		    rec.reason[0] != '\0' ? ": " : "", rec.reason, name);
	return v;
}

static int resolve_disk(struct adm_vol *v, const char *arg, size_t *idx,
    struct adm_rep *rep)
{
	size_t n = raid_ndisks(v->raid);
	uint64_t u;

	if (adm_parse_u64(arg, &u) == 0) {
		if (u >= n) {
			adm_fail(rep, ADM_ERR, "volume %s has no disk %s (it "
			    "has %zu); see: filerctl vol status %s", v->name,
			    arg, n, v->name);
			return -ENOENT;
		}
		*idx = (size_t)u;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct raid_disk_info di;

		if (raid_disk_info(v->raid, i, &di) == 0 && di.path != NULL &&
		    strcmp(di.path, arg) == 0) {
			*idx = i;
			return 0;
		}
	}
	adm_fail(rep, ADM_ERR, "%s is not a disk of volume %s; see: filerctl "
	    "vol status %s", arg, v->name, v->name);
	return -ENOENT;
}

static int disk_list(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *only = adm_req_get(req, "volume");
	struct adm_vol_rec rec;
	sqlite3_stmt *st;

	if (only != NULL && adm_vol_get(ctx->db, only, &rec) != 0)
		return adm_fail(rep, ADM_ERR, "no volume named %s; see: "
		    "filerctl vol list", only);
	if (adm_db_prepare(ctx->db, &st, "SELECT v.name, d.path, d.role, "
	    "d.state, g.grp, d.position FROM disks d JOIN volumes v ON "
	    "d.volume_id = v.id LEFT JOIN raid_groups g ON d.group_id = g.id "
	    "WHERE ?1 IS NULL OR v.name = ?1 ORDER BY v.name, "
	    "d.role IN ('spare', 'retired'), d.role = 'retired', g.grp, "
	    "d.position, d.id", "s", only) != 0)
		return adm_fail(rep, ADM_ERR, "database error");
	adm_rep_list(rep, "disks");
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *vname = adm_col_text(st, 0);
		const char *path = adm_col_text(st, 1);
		struct adm_vol *v = ctx->daemon ? adm_vol_find(ctx, vname) :
		    NULL;
		const char *state = adm_col_text(st, 3);

		/* A live volume: raid's current state, not the last copy. */
		for (size_t i = 0; v != NULL && i < raid_ndisks(v->raid); i++) {
			struct raid_disk_info di;

			if (raid_disk_info(v->raid, i, &di) == 0 &&
			    di.path != NULL && strcmp(di.path, path) == 0)
				state = raid_disk_state_name(di.state);
		}
		adm_rep_row(rep, "disks");
		adm_rep_str(rep, "volume", vname);
		adm_rep_str(rep, "path", path);
		adm_rep_str(rep, "role", adm_col_text(st, 2));
		adm_rep_str(rep, "state", state);
		adm_rep_i64(rep, "group", sqlite3_column_type(st, 4) ==
		    SQLITE_NULL ? -1 : sqlite3_column_int64(st, 4));
		adm_rep_i64(rep, "position", sqlite3_column_type(st, 5) ==
		    SQLITE_NULL ? -1 : sqlite3_column_int64(st, 5));
	}
	sqlite3_finalize(st);
	return ADM_OK;
}

static int disk_fail(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *vname = adm_req_get(req, "volume");
	struct adm_vol *v = live_vol(ctx, vname, rep);
	struct raid_disk_info di;
	size_t idx;
	int rc;

	if (v == NULL || resolve_disk(v, adm_req_get(req, "disk"), &idx,
	    rep) != 0)
		return ADM_ERR;
	(void)raid_disk_info(v->raid, idx, &di);
	if (di.group < 0)
		return adm_fail(rep, ADM_ERR, "disk %zu (%s) is a %s, not a "
		    "member of a RAID group", idx, di.path,
		    raid_disk_state_name(di.state));
	if (di.state == RAID_DISK_FAILED || di.state == RAID_DISK_MISSING)
		return adm_fail(rep, ADM_ERR, "disk %zu (%s) is already %s",
		    idx, di.path, raid_disk_state_name(di.state));
	rc = raid_fail_disk(v->raid, idx, "failed by the administrator");
	adm_events_drain(ctx);
	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "cannot fail disk %zu: %s", idx,
		    fl_strerror(rc));
	adm_say(rep, "disk %zu (%s) of volume %s failed; replace it with: "
	    "filerctl disk replace %s %zu", idx, di.path, vname, vname, idx);
	return ADM_OK;
}

static size_t count_state(struct adm_vol *v, enum raid_disk_state s)
{
	size_t c = 0;

	for (size_t i = 0; i < raid_ndisks(v->raid); i++) {
		struct raid_disk_info di;

		if (raid_disk_info(v->raid, i, &di) == 0 && di.state == s)
			c++;
	}
	return c;
}

/* The disk rebuilding into (group, position), or -1. */
static long rebuilding_into(struct adm_vol *v, int group, int position)
{
	for (size_t i = 0; i < raid_ndisks(v->raid); i++) {
		struct raid_disk_info di;

		if (raid_disk_info(v->raid, i, &di) == 0 &&
		    di.state == RAID_DISK_REBUILDING && di.group == group &&
		    di.position == position)
			return (long)i;
	}
	return -1;
}

/*
 * Wait for the running rebuild by polling raid_status, not with
 * raid_rebuild_wait: that joins the rebuild thread under raid's rebuild
 * lock while the thread, with auto_rebuild on, may still want that lock
 * to look for the next failed position.  0 if the group is whole again.
 */
static int rebuild_poll(raid_vol_t *raid, const _Atomic bool *cancel)
{
	struct raid_status rs;

	for (;;) {
		struct timespec ts = { 0, 50 * 1000000L };

		raid_status(raid, &rs);
		if (!rs.rebuilding)
			break;
		if (cancel != NULL && *cancel)
			return -ECANCELED;
		nanosleep(&ts, NULL);
	}
	return rs.degraded || rs.offline ? -EIO : 0;
}

static int wait_rebuild(struct adm_ctx *ctx, struct adm_vol *v)
{
	int rc = rebuild_poll(v->raid, NULL);

	adm_events_drain(ctx);
	return rc;
}

/*
 * `replace --wait` waits for the rebuild as a job (daemon.c): filerd
 * answers other requests meanwhile; an offline or stop of the volume
 * ends the wait (answered so) before it closes the disks.
 */
struct rebuild_job {
	struct adm_job j;	/* first: finish frees the whole */
	raid_vol_t *raid;
	char msg[512];		/* the answer when the group is whole */
	int rc;
};

static void rebuild_run(struct adm_job *j)
{
	struct rebuild_job *rj = (struct rebuild_job *)j;

	rj->rc = rebuild_poll(rj->raid, &j->cancel);
}

static int rebuild_finish(struct adm_ctx *ctx, struct adm_job *j,
    struct adm_rep *rep)
{
	struct rebuild_job *rj = (struct rebuild_job *)j;
	int st = ADM_OK;

	if (rj->rc == -ECANCELED)
		st = adm_fail(rep, ADM_ERR, "volume %s went offline (or "
		    "filerd stopped) before its rebuild ended; a rebuild "
		    "starts over once the volume is online again (see: "
		    "filerctl vol status %s)", j->vol, j->vol);
	else if (rj->rc != 0)
		st = adm_fail(rep, ADM_ERR, "rebuild of volume %s: %s; see: "
		    "filerctl events --volume %s", j->vol,
		    fl_strerror(rj->rc), j->vol);
	else
		adm_say(rep, "%s", rj->msg);
	free(rj);
	return st;
}

/* Answer once the rebuild of v is over (with msg if it made the group
 * whole): *deferred if a job took the request, else the rebuild was
 * waited for here (-EIO: still degraded). */
static int wait_rebuild_job(struct adm_ctx *ctx, struct adm_vol *v,
    const char *msg, bool *deferred)
{
	struct rebuild_job *rj = calloc(1, sizeof(*rj));

	*deferred = false;
	if (rj != NULL) {
		snprintf(rj->j.vol, sizeof(rj->j.vol), "%s", v->name);
		rj->j.kind = "rebuild wait";
		rj->j.uses_fs = false;
		rj->j.run = rebuild_run;
		rj->j.finish = rebuild_finish;
		rj->raid = v->raid;
		snprintf(rj->msg, sizeof(rj->msg), "%s", msg);
		if (adm_job_start(ctx, &rj->j) == 0) {
			*deferred = true;
			return 0;
		}
		free(rj);
	}
	return wait_rebuild(ctx, v);
}

static int disk_replace(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *vname = adm_req_get(req, "volume");
	struct adm_vol *v = live_vol(ctx, vname, rep);
	bool wait = adm_req_flag(req, "wait");
	struct raid_disk_info di;
	char msg[512];
	bool deferred = false;
	size_t idx;
	int rc;

	if (v == NULL || resolve_disk(v, adm_req_get(req, "disk"), &idx,
	    rep) != 0)
		return ADM_ERR;
	(void)raid_disk_info(v->raid, idx, &di);
	if (di.group < 0 && di.state == RAID_DISK_SPARE)
		return adm_fail(rep, ADM_ERR, "disk %zu (%s) is a spare, not "
		    "a member of a RAID group", idx, di.path);
	if (di.group < 0) {
		/* Already out: a spare took its place (auto_rebuild). */
		adm_say(rep, "disk %zu (%s) was already replaced by a spare; "
		    "see: filerctl vol status %s", idx, di.path, vname);
		return ADM_OK;
	}
	if (di.state == RAID_DISK_REBUILDING ||
	    rebuilding_into(v, di.group, di.position) >= 0) {
		/* auto_rebuild (or an earlier replace) started it already. */
		snprintf(msg, sizeof(msg), wait ? "group %d position %d of "
		    "volume %s rebuilt onto a spare" : "group %d position %d "
		    "of volume %s is being rebuilt onto a spare; follow with: "
		    "filerctl vol status %s", di.group, di.position, vname,
		    vname);
		rc = wait ? wait_rebuild_job(ctx, v, msg, &deferred) : 0;
		adm_events_drain(ctx);
		if (deferred)
			return ADM_OK;	/* answered when it is over */
		if (rc != 0)
			return adm_fail(rep, ADM_ERR, "rebuild of volume %s: "
			    "%s", vname, fl_strerror(rc));
		adm_say(rep, "%s", msg);
		return ADM_OK;
	}
	if (count_state(v, RAID_DISK_SPARE) == 0)
		return adm_fail(rep, ADM_ERR, "volume %s has no spare disk; "
		    "add one with: filerctl disk add-spare %s PATH", vname,
		    vname);
	if (di.state == RAID_DISK_OK) {
		rc = raid_fail_disk(v->raid, idx, "replaced by the "
		    "administrator");
		if (rc != 0)
			return adm_fail(rep, ADM_ERR, "cannot take disk %zu "
			    "out: %s", idx, fl_strerror(rc));
	}
	rc = raid_rebuild_start(v->raid);
	if (rc == -EBUSY)
		rc = 0;	/* auto_rebuild started it already */
	snprintf(msg, sizeof(msg), wait ? "disk %zu (%s) of volume %s rebuilt "
	    "onto a spare" : "rebuilding disk %zu (%s) of volume %s onto a "
	    "spare; follow with: filerctl vol status %s", idx, di.path, vname,
	    vname);
	if (rc == 0 && wait)
		rc = wait_rebuild_job(ctx, v, msg, &deferred);
	adm_events_drain(ctx);
	if (deferred)
		return ADM_OK;		/* answered when it is over */
	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "rebuild of volume %s: %s; see: "
		    "filerctl events --volume %s", vname, fl_strerror(rc),
		    vname);
	adm_say(rep, "%s", msg);
	return ADM_OK;
}

static int disk_add_spare(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *vname = adm_req_get(req, "volume");
	const char *path = adm_req_get(req, "path");
	struct adm_vol *v = live_vol(ctx, vname, rep);
	char owner[ADM_NAME_MAX];
	struct stat st;
	bool existed;
	int rc;

	if (v == NULL)
		return ADM_ERR;
	if (adm_db_text(ctx->db, owner, sizeof(owner), "SELECT v.name FROM "
	    "disks d JOIN volumes v ON d.volume_id = v.id WHERE d.path = ?",
	    "s", path) == 0)
		return adm_fail(rep, ADM_ERR, "disk %s is already in use by "
		    "volume %s", path, owner);
	existed = stat(path, &st) == 0;
	if (existed && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return adm_fail(rep, ADM_ERR, "%s is neither a file nor a "
		    "block device", path);
	/*
	 * The row first, in a transaction that holds the database's write
	 * lock: a database that cannot take it (locked, read-only) fails
	 * the verb before raid has labelled anything.  raid adds the spare
	 * inside the transaction; only a failed commit after that leaves a
	 * spare in use that the database does not list (said so).
	 */
	rc = adm_db_begin(ctx->db);
	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "cannot record spare %s: %s",
		    path, fl_strerror(rc));
	rc = adm_db_exec(ctx->db, "INSERT INTO disks (volume_id, path, "
	    "role, state, added) VALUES (?, ?, 'spare', 'spare', ?)",
	    "isi", v->id, path, (int64_t)time(NULL));
	if (rc == 0) {
		char msg[ADM_PATH_MAX + 64];

		snprintf(msg, sizeof(msg), "spare %s added", path);
		rc = adm_db_event(ctx->db, vname, "disk.spare_added", msg);
	}
	if (rc != 0) {
		adm_db_rollback(ctx->db);
		return adm_fail(rep, ADM_ERR, "cannot record spare %s: %s",
		    path, fl_strerror(rc));
	}
	rc = raid_add_spare(v->raid, path);
	if (rc != 0) {
		adm_db_rollback(ctx->db);
		if (!existed)
			(void)unlink(path);
		if (rc == -EEXIST)
			return adm_fail(rep, ADM_ERR, "%s carries the label of "
			    "another volume (a destroyed or foreign one?); "
			    "wipe it or choose another path", path);
		return adm_fail(rep, ADM_ERR, "cannot add spare %s: %s", path,
		    fl_strerror(rc));
	}
	rc = adm_db_commit(ctx->db);
	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "spare %s is labelled and in use "
		    "but could not be recorded: %s", path, fl_strerror(rc));
	(void)adm_vol_sync_disks(ctx, v);
	adm_say(rep, "spare %s added to volume %s", path, vname);
	return ADM_OK;
}

/* ---------------------------------------------------------------- scrub */

static void *scrub_main(void *arg)
{
	struct adm_vol *v = arg;
	struct raid_scrub_result res;
	char msg[256];
	int rc;

	(void)pthread_setname_np(pthread_self(), "raid-scrub");
	memset(&res, 0, sizeof(res));
	rc = raid_scrub(v->raid, true, &res);
	pthread_mutex_lock(&v->ctx->lock);
	v->scrub_res = res;
	v->scrub_err = rc;
	v->scrub_running = false;
	v->scrub_done = true;
	v->scrub_finished = (uint64_t)time(NULL);
	pthread_mutex_unlock(&v->ctx->lock);
	snprintf(msg, sizeof(msg), "scrub %s: %" PRIu64 " stripes checked, "
	    "%" PRIu64 " mismatches, %" PRIu64 " repaired, %" PRIu64
	    " unreadable", rc == 0 ? "done" : fl_strerror(rc),
	    res.stripes_checked, res.mismatches, res.repaired, res.unreadable);
	adm_event_queue(v->ctx, v->name, v->id, "scrub.done", false, msg);
	return NULL;
}

static int scrub_start(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *vname = adm_req_get(req, "volume");
	struct adm_vol *v = live_vol(ctx, vname, rep);
	bool running;

	if (v == NULL)
		return ADM_ERR;
	pthread_mutex_lock(&ctx->lock);
	running = v->scrub_running;
	pthread_mutex_unlock(&ctx->lock);
	if (running) {
		adm_say(rep, "a scrub of volume %s is already running", vname);
		return ADM_OK;
	}
	if (v->scrub_joinable) {
		pthread_join(v->scrub_thread, NULL);
		v->scrub_joinable = false;
	}
	v->scrub_running = true;
	v->scrub_done = false;
	v->scrub_started = (uint64_t)time(NULL);
	if (pthread_create(&v->scrub_thread, NULL, scrub_main, v) != 0) {
		v->scrub_running = false;
		return adm_fail(rep, ADM_ERR, "cannot start the scrub thread");
	}
	v->scrub_joinable = true;
	adm_event(ctx, vname, "scrub.started", "scrub started");
	adm_say(rep, "scrub of volume %s started; follow with: filerctl scrub "
	    "status %s", vname, vname);
	return ADM_OK;
}

static int scrub_status(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *vname = adm_req_get(req, "volume");
	struct adm_vol *v = live_vol(ctx, vname, rep);
	struct raid_status rs;

	if (v == NULL)
		return ADM_ERR;
	raid_status(v->raid, &rs);
	pthread_mutex_lock(&ctx->lock);
	adm_rep_obj(rep, "scrub");
	adm_rep_str(rep, "volume", vname);
	adm_rep_str(rep, "state", v->scrub_running ? "running" :
	    v->scrub_done ? (v->scrub_err == 0 ? "done" : "failed") :
	    "never run");
	adm_rep_u64(rep, "stripes_done", rs.scrub_done);
	adm_rep_u64(rep, "stripes_total", rs.scrub_total);
	if (v->scrub_done) {
		adm_rep_u64(rep, "stripes_checked",
		    v->scrub_res.stripes_checked);
		adm_rep_u64(rep, "mismatches", v->scrub_res.mismatches);
		adm_rep_u64(rep, "repaired", v->scrub_res.repaired);
		adm_rep_u64(rep, "unreadable", v->scrub_res.unreadable);
		adm_rep_str(rep, "error", v->scrub_err == 0 ? "" :
		    fl_strerror(v->scrub_err));
	}
	pthread_mutex_unlock(&ctx->lock);
	return ADM_OK;
}

static const struct adm_arg list_args[] = {
	{ "volume", ADM_A_VOLNAME, ADM_ARG_POS, 0, 0, NULL, NULL,
	    "only this volume's disks" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg fail_args[] = {
	{ "volume", ADM_A_VOLNAME, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "volume name" },
	{ "disk", ADM_A_DISK, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "disk number (see vol status) or path" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg replace_args[] = {
	{ "volume", ADM_A_VOLNAME, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "volume name" },
	{ "disk", ADM_A_DISK, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "disk number (see vol status) or path" },
	{ "wait", ADM_A_FLAG, 0, 0, 0, NULL, NULL,
	    "return when the rebuild is done" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg spare_args[] = {
	{ "volume", ADM_A_VOLNAME, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "volume name" },
	{ "path", ADM_A_PATH, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "image file (created if absent) or block device" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg vol_arg[] = {
	{ "volume", ADM_A_VOLNAME, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "volume name" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};

const struct adm_verb adm_disk_verbs[] = {
	{ "disk list", list_args, ADM_V_OFFLINE, disk_list,
	    "List the disks of every volume (or one)", NULL },
	{ "disk fail", fail_args, 0, disk_fail,
	    "Fail a member disk (the group runs on parity)", NULL },
	{ "disk replace", replace_args, 0, disk_replace,
	    "Take a disk out and rebuild its contents onto a spare",
	    "A failed disk is rebuilt as is; a working one is failed first.\n"
	    "Progress shows in: filerctl vol status VOL" },
	{ "disk add-spare", spare_args, 0, disk_add_spare,
	    "Label an image file or device as a spare of a volume", NULL },
	{ "scrub start", vol_arg, 0, scrub_start,
	    "Verify every stripe's parity in the background (repairing)",
	    NULL },
	{ "scrub status", vol_arg, 0, scrub_status,
	    "Show scrub progress and the last result", NULL },
	{ NULL, NULL, 0, NULL, NULL, NULL },
};
