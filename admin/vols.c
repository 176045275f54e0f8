/*
 * admin/vols.c: assembling a volume from its database rows and taking it
 * apart again.
 *
 * Bring-up: the disk paths (members by group and position, then spares)
 * go to raid_open with our event callback; then wafl_mount with the NVLOG
 * at <home>/nvlog/<volume>.log and the cache and CP settings; then the
 * services hear volume_up.  A failure at any step undoes the steps before
 * it and says why in words an administrator can act on (which disks are
 * missing, what raid or wafl said); the caller records the volume offline
 * with that reason (filerd keeps running).
 *
 * Take-down is the reverse: a running scrub is waited for (raid_scrub has
 * no cancel), services hear volume_down, wafl_unmount writes the final CP,
 * raid_close flushes and marks the disks clean.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/adm_impl.h"
#include "admin/svc_mirror.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

void adm_mount_opts(struct adm_ctx *ctx, struct wafl_mount_opts *mo)
{
	sqlite3 *db = ctx->db;

	mo->nvlog_half_bytes = adm_db_setting_u64(db, "nvlog_half_bytes");
	mo->cache_bytes = adm_db_setting_u64(db, "cache_bytes");
	mo->cp_interval_ms = (uint32_t)adm_db_setting_u64(db,
	    "cp_interval_ms");
	mo->dirty_max_bytes = adm_db_setting_u64(db, "dirty_max_bytes");
	mo->prefill = adm_db_setting_u64(db, "cache_prefill") != 0;
}

struct adm_vol *adm_vol_find(struct adm_ctx *ctx, const char *name)
{
	for (struct adm_vol *v = ctx->vols; v != NULL; v = v->next)
		if (strcmp(v->name, name) == 0 && v->raid != NULL)
			return v;
	return NULL;
}

wafl_vol_t *adm_vol_fs(struct adm_vol *v, struct adm_rep *rep)
{
	if (v->wafl == NULL)
		adm_fail(rep, ADM_ERR, "volume %s has no file system mounted "
		    "now: %s", v->name, adm_mirror_fs_owner(v->name));
	return v->wafl;
}

static const char *raid_event_kind(enum raid_event ev)
{
	switch (ev) {
	case RAID_EV_DISK_FAILED: return "disk.failed";
	case RAID_EV_DISK_MISSING: return "disk.missing";
	case RAID_EV_REBUILD_STARTED: return "rebuild.started";
	case RAID_EV_REBUILD_DONE: return "rebuild.done";
	case RAID_EV_REBUILD_FAILED: return "rebuild.failed";
	case RAID_EV_SCRUB_MISMATCH: return "scrub.mismatch";
	case RAID_EV_GROUP_OFFLINE: return "raid.group_offline";
	case RAID_EV_RESYNC: return "raid.resync";
	case RAID_EV_REBUILD_MISMATCH: return "rebuild.mismatch";
	}
	return "raid.event";
}

/* raid's threads, maybe under raid's locks: queue only. */
static void raid_event_cb(void *arg, enum raid_event ev, const char *msg)
{
	struct adm_vol *v = arg;
	bool moves = ev == RAID_EV_DISK_FAILED || ev == RAID_EV_DISK_MISSING ||
	    ev == RAID_EV_REBUILD_STARTED || ev == RAID_EV_REBUILD_DONE ||
	    ev == RAID_EV_REBUILD_FAILED;

	adm_event_queue(v->ctx, v->name, v->id, raid_event_kind(ev), moves,
	    msg);
}

static void missing_disks(char **paths, size_t n, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (paths[i] != NULL && stat(paths[i], &st) == 0)
			continue;
		used += (size_t)snprintf(out + used, used < len ? len - used :
		    0, "%s%s", used == 0 ? "" : ", ",
		    paths[i] != NULL ? paths[i] : "(no disk recorded)");
		if (used >= len)
			break;
	}
}

int adm_raid_open(struct adm_ctx *ctx, const struct adm_vol_rec *rec,
    raid_vol_t **out, char *why, size_t whylen)
{
	struct raid_open_opts o = { 0 };
	char **paths = NULL;
	size_t n = 0;
	int rc;

	rc = adm_vol_paths(ctx->db, rec->id, &paths, &n);
	if (rc != 0) {
		snprintf(why, whylen, "cannot read its disks from the "
		    "database: %s", fl_strerror(rc));
		return rc;
	}
	o.io_timeout_ms = (uint32_t)adm_db_setting_u64(ctx->db,
	    "disk_io_timeout_ms");
	rc = raid_open((const char *const *)paths, n, &o, out);
	if (rc != 0) {
		char miss[512];

		missing_disks(paths, n, miss, sizeof(miss));
		snprintf(why, whylen, "cannot assemble the RAID: %s%s%s",
		    fl_strerror(rc), miss[0] != '\0' ? "; missing disks: " :
		    "", miss);
	}
	adm_paths_free(paths, n);
	return rc;
}

int adm_vol_bringup(struct adm_ctx *ctx, const struct adm_vol_rec *rec,
    char *why, size_t whylen)
{
	struct raid_open_opts ro = { 0 };
	struct wafl_mount_opts mo = { 0 };
	struct adm_vol *v;
	char **paths = NULL;
	size_t n = 0;
	char dir[ADM_PATH_MAX];
	int rc;

	if (adm_vol_find(ctx, rec->name) != NULL)
		return 0;
	v = calloc(1, sizeof(*v));
	if (v == NULL) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	v->ctx = ctx;
	v->id = rec->id;
	snprintf(v->name, sizeof(v->name), "%s", rec->name);
	snprintf(v->nvlog, sizeof(v->nvlog), "%s", rec->nvlog);

	rc = adm_vol_paths(ctx->db, rec->id, &paths, &n);
	if (rc != 0) {
		snprintf(why, whylen, "cannot read its disks from the "
		    "database: %s", fl_strerror(rc));
		goto fail;
	}
	ro.event_fn = raid_event_cb;
	ro.event_arg = v;
	ro.auto_rebuild = adm_db_setting_u64(ctx->db, "auto_rebuild") != 0;
	ro.io_timeout_ms = (uint32_t)adm_db_setting_u64(ctx->db,
	    "disk_io_timeout_ms");
	rc = raid_open((const char *const *)paths, n, &ro, &v->raid);
	if (rc != 0) {
		char miss[512];

		missing_disks(paths, n, miss, sizeof(miss));
		snprintf(why, whylen, "cannot assemble the RAID: %s%s%s",
		    fl_strerror(rc), miss[0] != '\0' ? "; missing disks: " :
		    "", miss);
		v->raid = NULL;
		goto fail;
	}
	snprintf(dir, sizeof(dir), "%s/nvlog", ctx->home);
	(void)mkdir(dir, 0700);
	adm_mount_opts(ctx, &mo);
	mo.nvlog_path = v->nvlog;
	/* A mirror destination: only the mirror writes it (svc_mirror.c). */
	mo.readonly = adm_mirror_is_dest(ctx, rec->id);
	rc = wafl_mount(v->raid, &mo, &v->wafl);
	if (rc != 0 && mo.readonly && adm_mirror_awaits_baseline(ctx,
	    rec->id)) {
		/* A baseline cut short (the volume taken offline, filerd
		 * stopped): online without a file system, as
		 * adm_mirror_make_readonly leaves it, so that the mirror
		 * resumes the baseline from its checkpoint. */
		fl_warn(ADM_SUB, "volume %s: no file system to show until the "
		    "baseline arrives: %s", v->name, fl_strerror(rc));
		v->wafl = NULL;
		rc = 0;
	}
	if (rc != 0) {
		snprintf(why, whylen, "cannot mount the file system: %s",
		    fl_strerror(rc));
		raid_close(v->raid);
		v->raid = NULL;
		v->wafl = NULL;
		goto fail;
	}
	adm_paths_free(paths, n);
	v->online_ns = fl_now_mono_ns();
	v->next = ctx->vols;
	ctx->vols = v;
	fl_info(ADM_SUB, "volume %s online", v->name);
	(void)adm_vol_sync_disks(ctx, v);
	adm_services_volume_up(ctx, v->name, v->wafl);
	return 0;
fail:
	adm_paths_free(paths, n);
	/* Events raised during the attempt name v: drain before freeing. */
	adm_events_drain(ctx);
	free(v);
	return rc;
}

int adm_vol_takedown(struct adm_ctx *ctx, struct adm_vol *v)
{
	int rc = 0;

	if (v->raid == NULL)
		return 0;
	adm_jobs_wait(ctx, v->name, true);	/* its jobs end first */
	if (v->scrub_joinable) {
		pthread_join(v->scrub_thread, NULL);
		v->scrub_joinable = false;
	}
	adm_services_volume_down(ctx, v->name);
	if (v->wafl != NULL) {
		rc = wafl_unmount(v->wafl);
		if (rc != 0)
			fl_err(ADM_SUB, "volume %s: final consistency point "
			    "failed: %s", v->name, fl_strerror(rc));
		v->wafl = NULL;
	}
	raid_close(v->raid);
	v->raid = NULL;
	adm_events_drain(ctx);
	fl_info(ADM_SUB, "volume %s offline", v->name);
	return rc;
}

void adm_vol_forget(struct adm_ctx *ctx, struct adm_vol *v)
{
	for (struct adm_vol **pp = &ctx->vols; *pp != NULL;
	    pp = &(*pp)->next) {
		if (*pp == v) {
			*pp = v->next;
			break;
		}
	}
	free(v);
}

int adm_vol_sync_disks(struct adm_ctx *ctx, struct adm_vol *v)
{
	struct raid_geometry g;
	size_t n;
	int rc;

	if (v->raid == NULL)
		return 0;
	raid_geometry(v->raid, &g);
	n = raid_ndisks(v->raid);
	rc = adm_db_begin(ctx->db);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct raid_disk_info di;
		const char *role;

		if (raid_disk_info(v->raid, i, &di) != 0 || di.path == NULL)
			continue;
		if (di.group >= 0)
			role = (uint32_t)di.position < g.ndata ? "data" :
			    "parity";
		else if (di.state == RAID_DISK_SPARE)
			role = "spare";
		else
			role = "retired";
		if (di.group >= 0)
			rc = adm_db_exec(ctx->db, "UPDATE disks SET group_id = "
			    "(SELECT id FROM raid_groups WHERE volume_id = ? "
			    "AND grp = ?), position = ?, role = ?, state = ? "
			    "WHERE volume_id = ? AND path = ?", "iiissis",
			    v->id, (int64_t)di.group,
			    (int64_t)di.position, role,
			    raid_disk_state_name(di.state), v->id, di.path);
		else
			rc = adm_db_exec(ctx->db, "UPDATE disks SET group_id = "
			    "NULL, position = NULL, role = ?, state = ? WHERE "
			    "volume_id = ? AND path = ?", "ssis", role,
			    raid_disk_state_name(di.state), v->id, di.path);
	}
	if (rc == 0)
		return adm_db_commit(ctx->db);
	adm_db_rollback(ctx->db);
	return rc;
}

void adm_vols_start(struct adm_ctx *ctx)
{
	sqlite3_stmt *st;
	char (*names)[ADM_NAME_MAX] = NULL;
	size_t n = 0, cap = 0;

	if (adm_db_prepare(ctx->db, &st, "SELECT name FROM volumes WHERE "
	    "state = 'online' ORDER BY name", NULL) != 0)
		return;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			size_t nc = cap == 0 ? 8 : cap * 2;
			void *p = realloc(names, nc * sizeof(*names));

			if (p == NULL)
				break;
			names = p;
			cap = nc;
		}
		snprintf(names[n++], ADM_NAME_MAX, "%s", adm_col_text(st, 0));
	}
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++) {
		struct adm_vol_rec rec;
		char why[768];

		if (adm_vol_get(ctx->db, names[i], &rec) != 0)
			continue;
		if (adm_vol_bringup(ctx, &rec, why, sizeof(why)) == 0) {
			adm_event(ctx, rec.name, "volume.online",
			    "volume %s online", rec.name);
			continue;
		}
		fl_err(ADM_SUB, "volume %s stays offline: %s", rec.name, why);
		if (adm_db_begin(ctx->db) == 0) {
			if (adm_vol_set_state(ctx->db, rec.name, "offline",
			    why) == 0 && adm_db_event(ctx->db, rec.name,
			    "volume.offline", why) == 0)
				(void)adm_db_commit(ctx->db);
			else
				adm_db_rollback(ctx->db);
		}
	}
	free(names);
}

void adm_vols_stop(struct adm_ctx *ctx)
{
	while (ctx->vols != NULL) {
		struct adm_vol *v = ctx->vols;

		(void)adm_vol_takedown(ctx, v);
		adm_vol_forget(ctx, v);
	}
}
