/*
 * admin/cmd_snap.c: snap create, list, delete, rollback, schedule; and the
 * schedule runner filerd calls from its main loop.
 *
 * SCHEDULES
 *   Per volume: keep counts for hourly, daily and weekly snapshots.  Periods
 *   are UTC: an hour, a day from 00:00, a week from Monday 00:00.  When a
 *   period starts (and at filerd's start, for the current period if its
 *   snapshot is missing) filerd takes KIND.YYYY-MM-DD_HHMM, the period's
 *   start time, e.g. hourly.2026-11-25_1900, then deletes the oldest
 *   snapshots of that kind beyond the keep count.  Names of one kind sort
 *   by time, so "oldest" is "first by name".  Only names of exactly that
 *   shape are touched; snapshots taken by hand are never pruned.
 *   The clock may run faster for tests (FILER_CLOCK_SCALE, docs/admin.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/adm_impl.h"
#include "admin/svc_mirror.h"
#include "common/err.h"
#include "common/log.h"

/* wafl keeps at most 255 snapshots per volume (wafl/ondisk.h). */
#define ADM_SNAP_LIST_MAX	256
#define ADM_SNAP_KEEP_MAX	255

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
		adm_fail(rep, ADM_ERR, "volume %s is offline; bring it online "
		    "with: filerctl vol online %s", name, name);
	else if (adm_vol_fs(v, rep) == NULL)
		return NULL;
	return v;
}

static bool sched_name(const char *name, const char *kind);

static int snap_create(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *vname = adm_req_get(req, "volume");
	const char *sname = adm_req_get(req, "name");
	struct adm_vol *v = live_vol(ctx, vname, rep);
	uint64_t id;
	int rc;

	if (v == NULL)
		return ADM_ERR;
	/* The schedule prunes every snapshot of its names' shape: one
	 * taken by hand under such a name would be deleted with them. */
	if (sched_name(sname, "hourly") || sched_name(sname, "daily") ||
	    sched_name(sname, "weekly"))
		return adm_fail(rep, ADM_ERR, "snapshot names like %s belong "
		    "to the snapshot schedule, which deletes them when they "
		    "expire; choose another name", sname);
	rc = wafl_snap_create(v->wafl, sname, &id);
	if (rc == -EEXIST)
		return adm_fail(rep, ADM_ERR, "volume %s already has a snapshot "
		    "named %s", vname, sname);
	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "cannot create snapshot %s of "
		    "volume %s: %s", sname, vname, fl_strerror(rc));
	adm_event(ctx, vname, "snapshot.created", "snapshot %s created",
	    sname);
	adm_say(rep, "snapshot %s of volume %s created", sname, vname);
	adm_rep_obj(rep, "snapshot");
	adm_rep_str(rep, "volume", vname);
	adm_rep_str(rep, "name", sname);
	adm_rep_u64(rep, "id", id);
	return ADM_OK;
}

static int snap_delete(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *vname = adm_req_get(req, "volume");
	const char *sname = adm_req_get(req, "name");
	struct adm_vol *v = live_vol(ctx, vname, rep);
	int rc;

	if (v == NULL)
		return ADM_ERR;
	rc = wafl_snap_delete(v->wafl, sname);
	if (rc == -ENOENT)
		return adm_fail(rep, ADM_ERR, "volume %s has no snapshot named "
		    "%s; see: filerctl snap list %s", vname, sname, vname);
	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "cannot delete snapshot %s: %s",
		    sname, fl_strerror(rc));
	adm_event(ctx, vname, "snapshot.deleted", "snapshot %s deleted",
	    sname);
	adm_mirror_snapshot_deleted(ctx, vname);
	adm_say(rep, "snapshot %s of volume %s deleted", sname, vname);
	return ADM_OK;
}

static int snap_rollback(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *vname = adm_req_get(req, "volume");
	const char *sname = adm_req_get(req, "name");
	struct adm_vol *v = live_vol(ctx, vname, rep);
	uint64_t id;
	int rc;

	if (v == NULL)
		return ADM_ERR;
	if (wafl_snap_lookup(v->wafl, sname, &id) != 0)
		return adm_fail(rep, ADM_ERR, "volume %s has no snapshot named "
		    "%s; see: filerctl snap list %s", vname, sname, vname);
	/* Services drop what they hold of the old tree first. */
	adm_services_volume_down(ctx, vname);
	rc = wafl_snap_rollback(v->wafl, sname);
	adm_services_volume_up(ctx, vname, v->wafl);
	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "cannot roll volume %s back to "
		    "%s: %s", vname, sname, fl_strerror(rc));
	adm_event(ctx, vname, "snapshot.rollback", "rolled back to snapshot "
	    "%s", sname);
	adm_say(rep, "volume %s rolled back to snapshot %s", vname, sname);
	return ADM_OK;
}

static int snap_list(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *vname = adm_req_get(req, "volume");
	struct adm_vol *v = live_vol(ctx, vname, rep);
	struct wafl_snapinfo *si;
	size_t n = 0;
	int rc;

	if (v == NULL)
		return ADM_ERR;
	si = calloc(ADM_SNAP_LIST_MAX, sizeof(*si));
	if (si == NULL)
		return adm_fail(rep, ADM_ERR, "out of memory");
	rc = wafl_snap_list(v->wafl, si, ADM_SNAP_LIST_MAX, &n);
	if (rc != 0) {
		free(si);
		return adm_fail(rep, ADM_ERR, "cannot list snapshots: %s",
		    fl_strerror(rc));
	}
	adm_rep_list(rep, "snapshots");
	for (size_t i = 0; i < n && i < ADM_SNAP_LIST_MAX; i++) {
		time_t t = (time_t)(si[i].create_ns / 1000000000ull);
		struct tm tm;
		char when[32];

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		adm_rep_row(rep, "snapshots");
		adm_rep_str(rep, "name", si[i].name);
		adm_rep_u64(rep, "id", si[i].id);
		adm_rep_u64(rep, "generation", si[i].gen);
		adm_rep_str(rep, "created", when);
		adm_rep_u64(rep, "unique_bytes", si[i].unique_bytes);
	}
	free(si);
	return ADM_OK;
}

static int snap_schedule(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *vname = adm_req_get(req, "volume");
	static const char *const kinds[] = { "hourly", "daily", "weekly" };
	struct adm_vol_rec rec;
	int64_t cur[3] = { 0, 0, 0 };
	bool change = false;
	sqlite3_stmt *st;
	int rc;

	if (adm_vol_get(ctx->db, vname, &rec) != 0)
		return adm_fail(rep, ADM_ERR, "no volume named %s; see: "
		    "filerctl vol list", vname);
	if (adm_db_prepare(ctx->db, &st, "SELECT hourly, daily, weekly FROM "
	    "snap_schedules WHERE volume_id = ?", "i", rec.id) != 0)
		return adm_fail(rep, ADM_ERR, "database error");
	if (sqlite3_step(st) == SQLITE_ROW)
		for (int k = 0; k < 3; k++)
			cur[k] = sqlite3_column_int64(st, k);
	sqlite3_finalize(st);
	for (int k = 0; k < 3; k++) {
		if (adm_req_get(req, kinds[k]) != NULL) {
			cur[k] = (int64_t)adm_req_u64(req, kinds[k], 0);
			change = true;
		}
	}
	/* Keep counts past what a volume holds would make the schedule
	 * fail (snapshot.failed events) once the table is full. */
	if (change && cur[0] + cur[1] + cur[2] > ADM_SNAP_KEEP_MAX)
		return adm_fail(rep, ADM_ERR, "snap schedule: keeping %" PRId64
		    " hourly, %" PRId64 " daily and %" PRId64 " weekly "
		    "snapshots makes %" PRId64 "; a volume holds at most %d "
		    "snapshots (its own included)", cur[0], cur[1], cur[2],
		    cur[0] + cur[1] + cur[2], ADM_SNAP_KEEP_MAX);
	if (change) {
		rc = adm_db_begin(ctx->db);
		if (rc == 0)
			rc = adm_db_exec(ctx->db, "INSERT INTO snap_schedules "
			    "(volume_id, hourly, daily, weekly) VALUES "
			    "(?, ?, ?, ?) ON CONFLICT (volume_id) DO UPDATE SET "
			    "hourly = excluded.hourly, daily = excluded.daily, "
			    "weekly = excluded.weekly", "iiii", rec.id, cur[0],
			    cur[1], cur[2]);
		if (rc == 0) {
			char msg[128];

			snprintf(msg, sizeof(msg), "snapshot schedule: hourly "
			    "%" PRId64 ", daily %" PRId64 ", weekly %" PRId64,
			    cur[0], cur[1], cur[2]);
			rc = adm_db_event(ctx->db, vname, "snapshot.schedule",
			    msg);
		}
		if (rc == 0)
			rc = adm_db_commit(ctx->db);
		else
			adm_db_rollback(ctx->db);
		if (rc != 0)
			return adm_fail(rep, ADM_ERR, "database error: %s",
			    fl_strerror(rc));
		adm_say(rep, "snapshot schedule of volume %s: keep %" PRId64
		    " hourly, %" PRId64 " daily, %" PRId64 " weekly", vname,
		    cur[0], cur[1], cur[2]);
	}
	adm_rep_obj(rep, "schedule");
	adm_rep_str(rep, "volume", vname);
	for (int k = 0; k < 3; k++)
		adm_rep_i64(rep, kinds[k], cur[k]);
	return ADM_OK;
}

/* ------------------------------------------------------------- runner */

static const struct {
	const char *kind;
	uint64_t period;	/* seconds */
	uint64_t offset;	/* epoch (a Thursday) to the period's start */
} sched_kinds[3] = {
	{ "hourly", 3600, 0 },
	{ "daily", 86400, 0 },
	{ "weekly", 7 * 86400, 3 * 86400 },	/* weeks start on Monday */
};

/* "hourly.2026-11-25_1900": kind, '.', exactly the strftime shape. */
static bool sched_name(const char *name, const char *kind)
{
	size_t k = strlen(kind);
	const char *p = name + k + 1;

	if (strncmp(name, kind, k) != 0 || name[k] != '.' ||
	    strlen(p) != 15)
		return false;
	for (int i = 0; i < 15; i++) {
		bool digit = p[i] >= '0' && p[i] <= '9';

		if ((i == 4 || i == 7) ? p[i] != '-' : i == 10 ? p[i] != '_' :
		    !digit)
			return false;
	}
	return true;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(((const struct wafl_snapinfo *)a)->name,
	    ((const struct wafl_snapinfo *)b)->name);
}

static void sched_prune(struct adm_ctx *ctx, struct adm_vol *v,
    const char *kind, int64_t keep)
{
	struct wafl_snapinfo *si = calloc(ADM_SNAP_LIST_MAX, sizeof(*si));
	size_t n = 0, m = 0;

	if (si == NULL || wafl_snap_list(v->wafl, si, ADM_SNAP_LIST_MAX,
	    &n) != 0) {
		free(si);
		return;
	}
	n = n < ADM_SNAP_LIST_MAX ? n : ADM_SNAP_LIST_MAX;
	for (size_t i = 0; i < n; i++)
		if (sched_name(si[i].name, kind))
			si[m++] = si[i];
	qsort(si, m, sizeof(*si), cmp_names);
	bool deleted = false;
	for (size_t i = 0; (int64_t)(m - i) > keep; i++) {
		int rc = wafl_snap_delete(v->wafl, si[i].name);

		if (rc == 0) {
			adm_event(ctx, v->name, "snapshot.expired", "scheduled "
			    "snapshot %s deleted (keep %" PRId64 " %s)",
			    si[i].name, keep, kind);
			deleted = true;
		} else
			fl_warn(ADM_SUB, "volume %s: cannot delete expired "
			    "snapshot %s: %s", v->name, si[i].name,
			    fl_strerror(rc));
	}
	free(si);
	if (deleted)
		adm_mirror_snapshot_deleted(ctx, v->name);
}

void adm_sched_run(struct adm_ctx *ctx)
{
	uint64_t now = adm_sched_now(ctx);

	for (struct adm_vol *v = ctx->vols; v != NULL; v = v->next) {
		int64_t keep[3] = { 0, 0, 0 };
		sqlite3_stmt *st;

		if (v->wafl == NULL || adm_db_prepare(ctx->db, &st,
		    "SELECT hourly, daily, weekly FROM snap_schedules WHERE "
		    "volume_id = ?", "i", v->id) != 0)
			continue;
		if (sqlite3_step(st) == SQLITE_ROW)
			for (int k = 0; k < 3; k++)
				keep[k] = sqlite3_column_int64(st, k);
		sqlite3_finalize(st);
		for (int k = 0; k < 3; k++) {
			uint64_t per = (now + sched_kinds[k].offset) /
			    sched_kinds[k].period;
			time_t start = (time_t)(per * sched_kinds[k].period -
			    sched_kinds[k].offset);
			char name[ADM_SNAP_MAX], stamp[32];
			struct tm tm;
			uint64_t id;
			int rc;

			if (keep[k] <= 0 || v->sched_last[k] == (int64_t)per)
				continue;
			v->sched_last[k] = (int64_t)per;
			gmtime_r(&start, &tm);
			strftime(stamp, sizeof(stamp), "%Y-%m-%d_%H%M", &tm);
			snprintf(name, sizeof(name), "%s.%s",
			    sched_kinds[k].kind, stamp);
			if (wafl_snap_lookup(v->wafl, name, &id) != 0) {
				rc = wafl_snap_create(v->wafl, name, &id);
				if (rc == 0)
					adm_event(ctx, v->name,
					    "snapshot.created", "scheduled "
					    "snapshot %s created", name);
				else
					adm_event(ctx, v->name,
					    "snapshot.failed", "scheduled "
					    "snapshot %s: %s", name,
					    fl_strerror(rc));
			}
			sched_prune(ctx, v, sched_kinds[k].kind, keep[k]);
		}
	}
}

static const struct adm_arg vol_name_args[] = {
	{ "volume", ADM_A_VOLNAME, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "volume name" },
	{ "name", ADM_A_SNAPNAME, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "snapshot name" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg vol_args[] = {
	{ "volume", ADM_A_VOLNAME, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "volume name" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg sched_args[] = {
	{ "volume", ADM_A_VOLNAME, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "volume name" },
	{ "hourly", ADM_A_UINT, 0, 0, 200, NULL, NULL,
	    "hourly snapshots to keep (0: none)" },
	{ "daily", ADM_A_UINT, 0, 0, 200, NULL, NULL,
	    "daily snapshots to keep" },
	{ "weekly", ADM_A_UINT, 0, 0, 200, NULL, NULL,
	    "weekly snapshots to keep" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};

const struct adm_verb adm_snap_verbs[] = {
	{ "snap create", vol_name_args, 0, snap_create,
	    "Create a snapshot of a volume", NULL },
	{ "snap list", vol_args, 0, snap_list,
	    "List a volume's snapshots", NULL },
	{ "snap delete", vol_name_args, 0, snap_delete,
	    "Delete a snapshot", NULL },
	{ "snap rollback", vol_name_args, 0, snap_rollback,
	    "Roll the whole volume back to a snapshot",
	    "Everything written after the snapshot is lost." },
	{ "snap schedule", sched_args, ADM_V_OFFLINE, snap_schedule,
	    "Show or set a volume's snapshot schedule",
	    "Scheduled snapshots are named like hourly.2026-11-25_1900 (UTC);\n"
	    "the oldest beyond the keep count are deleted.  Without options,\n"
	    "shows the schedule." },
	{ NULL, NULL, 0, NULL, NULL, NULL },
};
