/*
 * admin/cmd_vol.c: vol create, list, status, online, offline, destroy.
 *
 * vol create checks everything first (A2): the name is free, the target
 * directory exists, no image path exists already or belongs to a volume in
 * the database, the NVLOG path is free.  Only then are the images made
 * (raid_create, spares, wafl_mkfs), and the database rows inserted in one
 * transaction (A1).  A failure after the images exist removes them, so a
 * refused create leaves disks and database as they were.
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
#include "common/util.h"

#define MAX_IMAGES	(RAID_MAX_GROUPS * (RAID_MAX_DATA + RAID_MAX_PARITY) + 16)

static void fmt_time(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Name of the volume that uses path, or -ENOENT. */
static int disk_owner(struct adm_ctx *ctx, const char *path, char *vol,
    size_t len)
{
	return adm_db_text(ctx->db, vol, len, "SELECT v.name FROM disks d "
	    "JOIN volumes v ON d.volume_id = v.id WHERE d.path = ?", "s",
	    path);
}

static void unlink_all(char paths[][ADM_PATH_MAX], size_t n)
{
	for (size_t i = 0; i < n; i++)
		(void)unlink(paths[i]);
}

static int vol_create(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *name = adm_req_get(req, "name");
	uint32_t ndisks = (uint32_t)adm_req_u64(req, "disks", 0);
	uint32_t np = (uint32_t)adm_req_u64(req, "parity", 1);
	uint32_t ng = (uint32_t)adm_req_u64(req, "groups", 1);
	uint32_t nspares = (uint32_t)adm_req_u64(req, "spares", 0);
	uint64_t size = adm_req_u64(req, "size", 0);
	const char *dirarg = adm_req_get(req, "dir");
	static char paths[MAX_IMAGES][ADM_PATH_MAX];
	const char *pp[MAX_IMAGES];
	struct raid_create_opts co = { 0 };
	struct raid_geometry g;
	struct adm_vol_rec rec;
	raid_vol_t *raid = NULL;
	char dir[ADM_PATH_MAX], nvlog[ADM_PATH_MAX], owner[ADM_NAME_MAX];
	char uuid[37], sz[16], why[768];
	struct stat st;
	size_t nmem, ntotal;
	int64_t vid = 0;
	int rc;

	if (ndisks <= np)
		return adm_fail(rep, ADM_USAGE, "vol create: --disks counts "
		    "the parity disks too, so it must be more than --parity "
		    "(%u); e.g. --disks %u --parity %u gives %u data disks",
		    np, np + 3, np, 3);
	if (ndisks - np > RAID_MAX_DATA)
		return adm_fail(rep, ADM_USAGE, "vol create: at most %u data "
		    "disks per group (--disks minus --parity); use --groups",
		    RAID_MAX_DATA);
	if (adm_vol_get(ctx->db, name, &rec) == 0)
		return adm_fail(rep, ADM_ERR, "volume %s already exists; "
		    "choose another name or destroy it first", name);
	if (dirarg != NULL) {
		snprintf(dir, sizeof(dir), "%s", dirarg);
		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
			return adm_fail(rep, ADM_ERR, "--dir %s is not a "
			    "directory; create it first", dir);
	} else {
		snprintf(dir, sizeof(dir), "%s/disks", ctx->home);
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			return adm_fail(rep, ADM_ERR, "cannot create %s: %s",
			    dir, strerror(errno));
	}
	snprintf(nvlog, sizeof(nvlog), "%s/nvlog/%s.log", ctx->home, name);
	if (stat(nvlog, &st) == 0)
		return adm_fail(rep, ADM_ERR, "%s already exists (left by a "
		    "volume of the same name?); remove it first", nvlog);
	nmem = (size_t)ng * ndisks;
	ntotal = nmem + nspares;
	for (size_t k = 0; k < ntotal; k++) {
		if ((size_t)snprintf(paths[k], ADM_PATH_MAX, "%s/%s-d%zu.img",
		    dir, name, k) >= ADM_PATH_MAX)
			return adm_fail(rep, ADM_ERR, "--dir is too long");
		pp[k] = paths[k];
		if (disk_owner(ctx, paths[k], owner, sizeof(owner)) == 0)
			return adm_fail(rep, ADM_ERR, "disk %s is already in "
			    "use by volume %s", paths[k], owner);
		if (stat(paths[k], &st) == 0)
			return adm_fail(rep, ADM_ERR, "%s already exists (a "
			    "disk of a destroyed or foreign volume?); remove "
			    "it or choose another --dir", paths[k]);
	}

	co.ngroups = ng;
	co.ndata = ndisks - np;
	co.nparity = np;
	co.disk_blocks = size / RAID_BLOCK_SIZE;
	co.paths = pp;
	rc = raid_create(&co, NULL, &raid);
	if (rc != 0) {
		unlink_all(paths, nmem);
		return adm_fail(rep, ADM_ERR, "cannot create the RAID: %s",
		    fl_strerror(rc));
	}
	for (size_t k = nmem; k < ntotal && rc == 0; k++)
		rc = raid_add_spare(raid, paths[k]);
	if (rc == 0)
		rc = wafl_mkfs(raid, NULL);
	raid_geometry(raid, &g);
	fl_uuid_fmt(g.uuid, uuid);
	raid_close(raid);
	if (rc != 0) {
		unlink_all(paths, ntotal);
		return adm_fail(rep, ADM_ERR, "cannot make the file system: %s",
		    fl_strerror(rc));
	}

	rc = adm_db_begin(ctx->db);
	if (rc == 0)
		rc = adm_db_exec(ctx->db, "INSERT INTO volumes (name, uuid, "
		    "state, reason, nvlog_path, dir, ngroups, ndata, nparity, "
		    "disk_blocks, created) VALUES (?, ?, 'online', '', ?, ?, "
		    "?, ?, ?, ?, ?)", "ssssiiiui", name, uuid, nvlog, dir,
		    (int64_t)ng, (int64_t)co.ndata, (int64_t)np,
		    co.disk_blocks, (int64_t)time(NULL));
	if (rc == 0)
		rc = adm_db_i64(ctx->db, &vid, "SELECT id FROM volumes WHERE "
		    "name = ?", "s", name);
	for (uint32_t gi = 0; rc == 0 && gi < ng; gi++)
		rc = adm_db_exec(ctx->db, "INSERT INTO raid_groups (volume_id, "
		    "grp, ndata, nparity) VALUES (?, ?, ?, ?)", "iiii", vid,
		    (int64_t)gi, (int64_t)co.ndata, (int64_t)np);
	for (size_t k = 0; rc == 0 && k < ntotal; k++) {
		if (k < nmem) {
			int64_t gi = (int64_t)(k / ndisks);
			int64_t pos = (int64_t)(k % ndisks);

			rc = adm_db_exec(ctx->db, "INSERT INTO disks "
			    "(volume_id, group_id, position, path, role, added) "
			    "VALUES (?, (SELECT id FROM raid_groups WHERE "
			    "volume_id = ? AND grp = ?), ?, ?, ?, ?)", "iiiissi",
			    vid, vid, gi, pos, paths[k],
			    pos < (int64_t)co.ndata ? "data" : "parity",
			    (int64_t)time(NULL));
		} else {
			rc = adm_db_exec(ctx->db, "INSERT INTO disks "
			    "(volume_id, path, role, state, added) VALUES "
			    "(?, ?, 'spare', 'spare', ?)", "isi", vid, paths[k],
			    (int64_t)time(NULL));
		}
	}
	adm_fmt_size(g.nvbns * RAID_BLOCK_SIZE, sz, sizeof(sz));
	if (rc == 0) {
		char msg[256];

		snprintf(msg, sizeof(msg), "volume %s created: %u group(s) of "
		    "%u data + %u parity disks, %zu spare(s), %s", name, ng,
		    co.ndata, np, (size_t)nspares, sz);
		rc = adm_db_event(ctx->db, name, "volume.created", msg);
	}
	if (rc == 0)
		rc = adm_db_commit(ctx->db);
	else
		adm_db_rollback(ctx->db);
	if (rc != 0) {
		unlink_all(paths, ntotal);
		return adm_fail(rep, ADM_ERR, "cannot record volume %s in the "
		    "database: %s", name, fl_strerror(rc));
	}
	fl_info(ADM_SUB, "volume %s created (%s, uuid %s)", name, sz, uuid);

	if (ctx->daemon && adm_vol_get(ctx->db, name, &rec) == 0 &&
	    adm_vol_bringup(ctx, &rec, why, sizeof(why)) != 0) {
		if (adm_db_begin(ctx->db) == 0) {
			if (adm_vol_set_state(ctx->db, name, "offline", why) ==
			    0 && adm_db_event(ctx->db, name, "volume.offline",
			    why) == 0)
				(void)adm_db_commit(ctx->db);
			else
				adm_db_rollback(ctx->db);
		}
		return adm_fail(rep, ADM_ERR, "volume %s was created but "
		    "cannot be brought online: %s", name, why);
	}
	adm_say(rep, "volume %s created: %s usable (%u x %u data + %u parity "
	    "disks of %s%s)", name, sz, ng, co.ndata, np,
	    adm_req_get(req, "size"), nspares > 0 ? ", with spares" : "");
	adm_rep_obj(rep, "volume");
	adm_rep_str(rep, "name", name);
	adm_rep_str(rep, "uuid", uuid);
	adm_rep_u64(rep, "size_bytes", g.nvbns * RAID_BLOCK_SIZE);
	adm_rep_u64(rep, "disks", nmem);
	adm_rep_u64(rep, "spares", nspares);
	adm_rep_str(rep, "dir", dir);
	return ADM_OK;
}

/* raid condition of a live volume: normal, degraded, rebuilding, failed. */
static const char *raid_condition(const struct raid_status *rs)
{
	if (rs->offline)
		return "failed";
	if (rs->rebuilding)
		return "rebuilding";
	if (rs->degraded)
		return "degraded";
	return "normal";
}

static void emit_volume_fields(struct adm_ctx *ctx, struct adm_rep *rep,
    const struct adm_vol_rec *rec, bool detail)
{
	struct adm_vol *v = ctx->daemon ? adm_vol_find(ctx, rec->name) : NULL;
	uint64_t size = (uint64_t)rec->ngroups * rec->ndata *
	    rec->disk_blocks * RAID_BLOCK_SIZE;
	char created[32];

	adm_rep_str(rep, "name", rec->name);
	if (ctx->daemon)
		adm_rep_str(rep, "state", v != NULL ? "online" : "offline");
	else
		adm_rep_str(rep, "state", rec->state);
	if (v != NULL) {
		struct raid_status rs;
		struct wafl_fsstat fs;

		raid_status(v->raid, &rs);
		adm_rep_str(rep, "raid", raid_condition(&rs));
		if (v->wafl != NULL && wafl_statfs(v->wafl, &fs) == 0) {
			adm_rep_u64(rep, "size_bytes", fs.tbytes);
			adm_rep_u64(rep, "used_bytes", fs.tbytes - fs.fbytes);
		} else {
			adm_rep_u64(rep, "size_bytes", size);
		}
		if (detail) {
			adm_rep_bool(rep, "rebuilding", rs.rebuilding);
			adm_rep_u64(rep, "rebuild_done", rs.rebuild_done);
			adm_rep_u64(rep, "rebuild_total", rs.rebuild_total);
			adm_rep_bool(rep, "scrubbing", rs.scrubbing);
			adm_rep_u64(rep, "scrub_done", rs.scrub_done);
			adm_rep_u64(rep, "scrub_total", rs.scrub_total);
			adm_rep_u64(rep, "generation", v->wafl != NULL ?
			    wafl_generation(v->wafl) : 0);
		}
	} else {
		adm_rep_str(rep, "raid", "-");
		adm_rep_u64(rep, "size_bytes", size);
	}
	adm_rep_u64(rep, "groups", rec->ngroups);
	adm_rep_u64(rep, "data_disks", rec->ndata);
	adm_rep_u64(rep, "parity_disks", rec->nparity);
	if (detail) {
		adm_rep_str(rep, "uuid", rec->uuid);
		adm_rep_u64(rep, "disk_size_bytes",
		    rec->disk_blocks * RAID_BLOCK_SIZE);
		adm_rep_str(rep, "nvlog", rec->nvlog);
		adm_rep_str(rep, "configured_state", rec->state);
		fmt_time(rec->created, created, sizeof(created));
		adm_rep_str(rep, "created", created);
	}
	adm_rep_str(rep, "reason", rec->reason);
}

static int vol_list(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	sqlite3_stmt *st;
	int rc = adm_db_prepare(ctx->db, &st, "SELECT name FROM volumes "
	    "ORDER BY name", NULL);

	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "database error: %s",
		    fl_strerror(rc));
	adm_rep_list(rep, "volumes");
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct adm_vol_rec rec;

		if (adm_vol_get(ctx->db, adm_col_text(st, 0), &rec) != 0)
			continue;
		adm_rep_row(rep, "volumes");
		emit_volume_fields(ctx, rep, &rec, false);
	}
	sqlite3_finalize(st);
	return ADM_OK;
}

/* Held roots listed by vol status (a mirror holds a few at most). */
#define VOL_HOLDS_SHOWN		16

static int vol_status(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *name = adm_req_get(req, "name");
	struct adm_vol_rec rec;
	struct adm_vol *v;
	sqlite3_stmt *st;
	int64_t idx = 0;

	if (adm_vol_get(ctx->db, name, &rec) != 0)
		return adm_fail(rep, ADM_ERR, "no volume named %s; see: "
		    "filerctl vol list", name);
	adm_rep_obj(rep, "volume");
	emit_volume_fields(ctx, rep, &rec, true);
	v = ctx->daemon ? adm_vol_find(ctx, name) : NULL;
	if (v != NULL && v->wafl != NULL) {
		/* What keeps freed space from coming back: roots a mirror
		 * holds, and the blocks waiting behind them. */
		uint64_t gens[VOL_HOLDS_SHOWN];
		size_t n = 0;
		char list[VOL_HOLDS_SHOWN * 21 + 1];
		size_t off = 0;

		list[0] = '\0';
		if (wafl_held_roots(v->wafl, gens, VOL_HOLDS_SHOWN, &n) == 0)
			for (size_t i = 0; i < n && i < VOL_HOLDS_SHOWN; i++)
				off += (size_t)snprintf(list + off,
				    sizeof(list) - off, "%s%llu", i ? "," : "",
				    (unsigned long long)gens[i]);
		adm_rep_str(rep, "held_roots", list);
		adm_rep_u64(rep, "pending_blocks",
		    wafl_pending_blocks(v->wafl));
	}
	if (v != NULL && (v->scrub_running || v->scrub_done)) {
		adm_rep_str(rep, "last_scrub", v->scrub_running ? "running" :
		    v->scrub_err != 0 ? fl_strerror(v->scrub_err) : "done");
		adm_rep_u64(rep, "scrub_mismatches", v->scrub_res.mismatches);
	}
	adm_rep_list(rep, "disks");
	if (v != NULL) {
		size_t n = raid_ndisks(v->raid);

		for (size_t i = 0; i < n; i++) {
			struct raid_disk_info di;

			if (raid_disk_info(v->raid, i, &di) != 0)
				continue;
			adm_rep_row(rep, "disks");
			adm_rep_u64(rep, "disk", i);
			adm_rep_str(rep, "path", di.path);
			adm_rep_i64(rep, "group", di.group);
			adm_rep_i64(rep, "position", di.position);
			adm_rep_str(rep, "role", di.group < 0 ?
			    (di.state == RAID_DISK_SPARE ? "spare" :
			    "retired") : (uint32_t)di.position < rec.ndata ?
			    "data" : "parity");
			adm_rep_str(rep, "state", raid_disk_state_name(di.state));
			adm_rep_u64(rep, "read_errors", di.read_errors);
			adm_rep_u64(rep, "write_errors", di.write_errors);
			adm_rep_u64(rep, "timeouts", di.timeouts);
			adm_rep_str(rep, "reason", di.reason);
		}
		return ADM_OK;
	}
	if (adm_db_prepare(ctx->db, &st, "SELECT d.path, g.grp, d.position, "
	    "d.role, d.state FROM disks d LEFT JOIN raid_groups g ON "
	    "d.group_id = g.id WHERE d.volume_id = ? ORDER BY "
	    "d.role IN ('spare', 'retired'), d.role = 'retired', g.grp, "
	    "d.position, d.id", "i", rec.id) != 0)
		return adm_fail(rep, ADM_ERR, "database error");
	while (sqlite3_step(st) == SQLITE_ROW) {
		adm_rep_row(rep, "disks");
		adm_rep_i64(rep, "disk", idx++);
		adm_rep_str(rep, "path", adm_col_text(st, 0));
		adm_rep_i64(rep, "group", sqlite3_column_type(st, 1) ==
		    SQLITE_NULL ? -1 : sqlite3_column_int64(st, 1));
		adm_rep_i64(rep, "position", sqlite3_column_type(st, 2) ==
		    SQLITE_NULL ? -1 : sqlite3_column_int64(st, 2));
		adm_rep_str(rep, "role", adm_col_text(st, 3));
		adm_rep_str(rep, "state", adm_col_text(st, 4));
	}
	sqlite3_finalize(st);
	return ADM_OK;
}

static int set_state_tx(struct adm_ctx *ctx, const char *name,
    const char *state, const char *reason, const char *kind,
    const char *msg)
{
	int rc = adm_db_begin(ctx->db);

	if (rc == 0)
		rc = adm_vol_set_state(ctx->db, name, state, reason);
	if (rc == 0)
		rc = adm_db_event(ctx->db, name, kind, msg);
	if (rc == 0)
		return adm_db_commit(ctx->db);
	adm_db_rollback(ctx->db);
	return rc;
}

static int vol_online(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *name = adm_req_get(req, "name");
	struct adm_vol_rec rec;
	char why[768], msg[900];

	if (adm_vol_get(ctx->db, name, &rec) != 0)
		return adm_fail(rep, ADM_ERR, "no volume named %s; see: "
		    "filerctl vol list", name);
	if (!ctx->daemon) {
		if (set_state_tx(ctx, name, "online", "", "volume.online",
		    "volume set online (takes effect when filerd starts)") != 0)
			return adm_fail(rep, ADM_ERR, "database error");
		adm_say(rep, "volume %s will be brought online when filerd "
		    "starts", name);
		return ADM_OK;
	}
	if (adm_vol_find(ctx, name) != NULL) {
		adm_say(rep, "volume %s is already online", name);
		return ADM_OK;
	}
	/* The wanted state first: a volume brought up that the database
	 * still calls offline would answer "online" and stay down after
	 * the next start. */
	if (adm_vol_set_state(ctx->db, name, "online", "") != 0)
		return adm_fail(rep, ADM_ERR, "volume %s stays offline: the "
		    "database cannot record it online (see filerd's log)",
		    name);
	if (adm_vol_bringup(ctx, &rec, why, sizeof(why)) != 0) {
		(void)set_state_tx(ctx, name, "offline", why, "volume.offline",
		    why);
		return adm_fail(rep, ADM_ERR, "volume %s stays offline: %s",
		    name, why);
	}
	snprintf(msg, sizeof(msg), "volume %s online", name);
	(void)set_state_tx(ctx, name, "online", "", "volume.online", msg);
	adm_services_reload(ctx, ADM_RELOAD_EXPORTS);
	adm_say(rep, "volume %s is online", name);
	return ADM_OK;
}

static int vol_offline(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *name = adm_req_get(req, "name");
	const char *reason = "taken offline by the administrator";
	struct adm_vol_rec rec;
	struct adm_vol *v;
	int rc = 0;

	if (adm_vol_get(ctx->db, name, &rec) != 0)
		return adm_fail(rep, ADM_ERR, "no volume named %s; see: "
		    "filerctl vol list", name);
	/* The wanted state first: a database that cannot take it (locked
	 * by another program) leaves the volume serving, not offline now
	 * and online again at the next start. */
	if (set_state_tx(ctx, name, "offline", reason, "volume.offline",
	    reason) != 0)
		return adm_fail(rep, ADM_ERR, "volume %s stays as it was: the "
		    "database cannot record it offline (see filerd's log)",
		    name);
	v = ctx->daemon ? adm_vol_find(ctx, name) : NULL;
	if (v != NULL) {
		rc = adm_vol_takedown(ctx, v);
		adm_vol_forget(ctx, v);
	}
	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "volume %s is offline, but its "
		    "final consistency point failed: %s (data since the "
		    "previous one is in the NVLOG)", name, fl_strerror(rc));
	adm_say(rep, "volume %s is offline", name);
	return ADM_OK;
}

static int vol_destroy(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *name = adm_req_get(req, "name");
	bool keep = adm_req_flag(req, "keep_disks");
	struct adm_vol_rec rec;
	struct adm_vol *v;
	sqlite3_stmt *st;
	char (*paths)[ADM_PATH_MAX] = NULL;
	size_t n = 0, cap = 0;
	char msg[256];
	int rc;

	if (adm_vol_get(ctx->db, name, &rec) != 0)
		return adm_fail(rep, ADM_ERR, "no volume named %s; see: "
		    "filerctl vol list", name);
	if (!adm_req_flag(req, "force"))
		return adm_fail(rep, ADM_USAGE, "vol destroy deletes volume %s "
		    "and all its data; add --force to confirm", name);
	if (adm_db_prepare(ctx->db, &st, "SELECT path FROM disks WHERE "
	    "volume_id = ?", "i", rec.id) != 0)
		return adm_fail(rep, ADM_ERR, "database error");
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			size_t nc = cap == 0 ? 16 : cap * 2;
			void *p = realloc(paths, nc * sizeof(*paths));

			if (p == NULL)
				break;
			paths = p;
			cap = nc;
		}
		snprintf(paths[n++], ADM_PATH_MAX, "%s", adm_col_text(st, 0));
	}
	sqlite3_finalize(st);

	snprintf(msg, sizeof(msg), "volume %s destroyed%s", name,
	    keep ? " (disk images kept)" : "");
	rc = adm_db_begin(ctx->db);
	if (rc == 0)
		rc = adm_db_exec(ctx->db, "DELETE FROM volumes WHERE id = ?",
		    "i", rec.id);
	if (rc == 0)
		rc = adm_db_event(ctx->db, name, "volume.destroyed", msg);
	if (rc == 0)
		rc = adm_db_commit(ctx->db);
	else
		adm_db_rollback(ctx->db);
	if (rc != 0) {
		free(paths);
		return adm_fail(rep, ADM_ERR, "cannot remove volume %s from "
		    "the database: %s; it stays as it was", name,
		    fl_strerror(rc));
	}
	/* The rows are gone: now the volume, if it runs (its services
	 * find its exports and relationships gone with them). */
	v = ctx->daemon ? adm_vol_find(ctx, name) : NULL;
	if (v != NULL) {
		(void)adm_vol_takedown(ctx, v);
		adm_vol_forget(ctx, v);
	}
	/* After the commit: a crash here leaves files, never rows. */
	for (size_t i = 0; !keep && i < n; i++)
		(void)unlink(paths[i]);
	(void)unlink(rec.nvlog);
	free(paths);
	if (ctx->daemon)
		adm_services_reload(ctx, ADM_RELOAD_EXPORTS);
	adm_say(rep, "%s", msg);
	return ADM_OK;
}

static const struct adm_arg create_args[] = {
	{ "name", ADM_A_VOLNAME, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "volume name" },
	{ "disks", ADM_A_UINT, ADM_ARG_REQ, 2, RAID_MAX_DATA + RAID_MAX_PARITY,
	    NULL, NULL, "disks per RAID group, parity included" },
	{ "parity", ADM_A_UINT, ADM_ARG_REQ, 1, RAID_MAX_PARITY, NULL, NULL,
	    "parity disks per group (1 RAID-4, 2 double parity, 3)" },
	{ "size", ADM_A_SIZE, ADM_ARG_REQ, 1ull << 20, 16ull << 40, NULL, NULL,
	    "usable size of EACH disk (like 64M, 1G)" },
	{ "spares", ADM_A_UINT, 0, 0, 16, NULL, NULL, "spare disks (0)" },
	{ "groups", ADM_A_UINT, 0, 1, RAID_MAX_GROUPS, NULL, NULL,
	    "RAID groups (1)" },
	{ "dir", ADM_A_PATH, 0, 0, 0, NULL, NULL,
	    "directory for the disk images (HOME/disks)" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg name_arg[] = {
	{ "name", ADM_A_VOLNAME, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "volume name" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg destroy_args[] = {
	{ "name", ADM_A_VOLNAME, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "volume name" },
	{ "force", ADM_A_FLAG, 0, 0, 0, NULL, NULL,
	    "confirm: the volume and its data are deleted" },
	{ "keep_disks", ADM_A_FLAG, 0, 0, 0, NULL, NULL,
	    "leave the disk images in place (they stay labelled)" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};

const struct adm_verb adm_vol_verbs[] = {
	{ "vol create", create_args, ADM_V_OFFLINE | ADM_V_NEWHOME,
	    vol_create,
	    "Create a volume: disk images NAME-dK.img, RAID, file system",
	    "SIZE is the usable size of each disk; the volume holds\n"
	    "groups x (disks - parity) x SIZE.  Example:\n"
	    "  filerctl vol create vol0 --disks 5 --parity 2 --size 1G "
	    "--spares 1" },
	{ "vol list", NULL, ADM_V_OFFLINE, vol_list,
	    "List volumes with their state and size", NULL },
	{ "vol status", name_arg, ADM_V_OFFLINE, vol_status,
	    "Show a volume, its disks, rebuild and scrub progress", NULL },
	{ "vol online", name_arg, ADM_V_OFFLINE, vol_online,
	    "Bring a volume online (assemble RAID, mount)",
	    "Without filerd, marks the volume to be brought online at start." },
	{ "vol offline", name_arg, ADM_V_OFFLINE, vol_offline,
	    "Take a volume offline (final consistency point, close)", NULL },
	{ "vol destroy", destroy_args, ADM_V_OFFLINE, vol_destroy,
	    "Destroy a volume, its exports, schedules and disk images", NULL },
	{ NULL, NULL, 0, NULL, NULL, NULL },
};
