/*
 * admin/cmd_export.c: export add, list, remove, modify.
 *
 * An export is a path /vol/NAME[/DIR] of an existing volume; it holds an
 * ordered list of client rules with the semantics of Linux exports(5):
 * client (*, host, wildcard, address, CIDR), rw or ro, root_squash
 * (default) / all_squash / no squash, anonuid and anongid, secure (client
 * port below 1024, default) or insecure.  The rules live in the database;
 * nfsd reads them through adm_exports_foreach and is told to reload after
 * every change (ADM_RELOAD_EXPORTS).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/adm_impl.h"
#include "common/err.h"
#include "nfsd/nfsd.h"

static int export_vol(struct adm_ctx *ctx, const char *path,
    struct adm_vol_rec *rec, struct adm_rep *rep)
{
	char vol[ADM_NAME_MAX];

	if (!adm_valid_export_path(path, vol, sizeof(vol)))
		return adm_fail(rep, ADM_USAGE, "'%s' is not an export path "
		    "(like /vol/NAME or /vol/NAME/dir)", path);
	if (adm_vol_get(ctx->db, vol, rec) != 0)
		return adm_fail(rep, ADM_ERR, "%s: no volume named %s; see: "
		    "filerctl vol list", path, vol);
	return ADM_OK;
}

static void changed(struct adm_ctx *ctx)
{
	if (ctx->daemon)
		adm_services_reload(ctx, ADM_RELOAD_EXPORTS);
}

static int finish(struct adm_ctx *ctx, int rc, const char *path,
    const char *msg, struct adm_rep *rep)
{
	if (rc == 0)
		rc = adm_db_event(ctx->db, NULL, "export.changed", msg);
	if (rc == 0)
		rc = adm_db_commit(ctx->db);
	else
		adm_db_rollback(ctx->db);
	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "%s: database error: %s", path,
		    fl_strerror(rc));
	changed(ctx);
	adm_say(rep, "%s", msg);
	return ADM_OK;
}

static int export_add(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *path = adm_req_get(req, "path");
	const char *client = adm_req_get(req, "client");
	const char *access = adm_req_get(req, "access");
	const char *squash = adm_req_get(req, "squash");
	const char *secure = adm_req_get(req, "secure");
	struct adm_vol_rec rec;
	int64_t eid = 0, dummy, count = 0;
	bool have;
	char msg[512];
	int st, rc;

	st = export_vol(ctx, path, &rec, rep);
	if (st != ADM_OK)
		return st;
	if (adm_db_i64(ctx->db, &dummy, "SELECT r.id FROM export_rules r JOIN "
	    "exports e ON r.export_id = e.id WHERE e.path = ? AND "
	    "r.client = ?", "ss", path, client) == 0)
		return adm_fail(rep, ADM_ERR, "%s already has a rule for %s; "
		    "change it with: filerctl export modify %s --client %s ...",
		    path, client, path, client);
	/* No more than the NFS server serves: a rule or an export past
	 * them would be stored, said to be added, and then left out. */
	rc = adm_db_i64(ctx->db, &eid, "SELECT id FROM exports WHERE path = ?",
	    "s", path);
	have = rc == 0;
	if (rc == 0) {
		rc = adm_db_i64(ctx->db, &count, "SELECT count(*) FROM "
		    "export_rules WHERE export_id = ?", "i", eid);
		if (rc == 0 && count >= NFSD_MAX_RULES)
			return adm_fail(rep, ADM_ERR, "%s has %" PRId64
			    " client rules, the most an export can have; "
			    "remove one first (filerctl export remove %s "
			    "--client ...)", path, count, path);
	} else if (rc == -ENOENT) {
		rc = adm_db_i64(ctx->db, &count, "SELECT count(*) FROM exports",
		    NULL);
		if (rc == 0 && count >= NFSD_MAX_EXPORTS)
			return adm_fail(rep, ADM_ERR, "there are %" PRId64
			    " exports, the most the NFS server serves; remove "
			    "one first (filerctl export remove PATH)", count);
	}
	if (rc != 0)
		return adm_fail(rep, ADM_ERR, "%s: database error: %s", path,
		    fl_strerror(rc));
	rc = adm_db_begin(ctx->db);
	if (rc == 0 && !have) {
		rc = adm_db_exec(ctx->db, "INSERT INTO exports (path, "
		    "volume_id, created) VALUES (?, ?, ?)", "sii", path, rec.id,
		    (int64_t)time(NULL));
		if (rc == 0)
			rc = adm_db_i64(ctx->db, &eid, "SELECT id FROM exports "
			    "WHERE path = ?", "s", path);
	}
	if (rc == 0)
		rc = adm_db_exec(ctx->db, "INSERT INTO export_rules (export_id, "
		    "client, access, squash, anonuid, anongid, secure) VALUES "
		    "(?, ?, ?, ?, ?, ?, ?)", "isssiii", eid, client,
		    access != NULL ? access : "ro",
		    squash != NULL ? squash : "root",
		    (int64_t)adm_req_u64(req, "anonuid", 65534),
		    (int64_t)adm_req_u64(req, "anongid", 65534),
		    (int64_t)(secure == NULL || strcmp(secure, "yes") == 0));
	snprintf(msg, sizeof(msg), "%s exported to %s (%s)", path, client,
	    access != NULL ? access : "ro");
	return finish(ctx, rc, path, msg, rep);
}

static int export_modify(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *path = adm_req_get(req, "path");
	const char *client = adm_req_get(req, "client");
	const char *access = adm_req_get(req, "access");
	const char *squash = adm_req_get(req, "squash");
	const char *secure = adm_req_get(req, "secure");
	struct adm_vol_rec rec;
	int64_t rid;
	char msg[512];
	int st, rc;

	st = export_vol(ctx, path, &rec, rep);
	if (st != ADM_OK)
		return st;
	if (adm_db_i64(ctx->db, &rid, "SELECT r.id FROM export_rules r JOIN "
	    "exports e ON r.export_id = e.id WHERE e.path = ? AND "
	    "r.client = ?", "ss", path, client) != 0)
		return adm_fail(rep, ADM_ERR, "%s has no rule for %s; add one "
		    "with: filerctl export add %s --client %s", path, client,
		    path, client);
	rc = adm_db_begin(ctx->db);
	if (rc == 0 && access != NULL)
		rc = adm_db_exec(ctx->db, "UPDATE export_rules SET access = ? "
		    "WHERE id = ?", "si", access, rid);
	if (rc == 0 && squash != NULL)
		rc = adm_db_exec(ctx->db, "UPDATE export_rules SET squash = ? "
		    "WHERE id = ?", "si", squash, rid);
	if (rc == 0 && secure != NULL)
		rc = adm_db_exec(ctx->db, "UPDATE export_rules SET secure = ? "
		    "WHERE id = ?", "ii", (int64_t)(strcmp(secure, "yes") == 0),
		    rid);
	if (rc == 0 && adm_req_get(req, "anonuid") != NULL)
		rc = adm_db_exec(ctx->db, "UPDATE export_rules SET anonuid = ? "
		    "WHERE id = ?", "ii", (int64_t)adm_req_u64(req, "anonuid",
		    0), rid);
	if (rc == 0 && adm_req_get(req, "anongid") != NULL)
		rc = adm_db_exec(ctx->db, "UPDATE export_rules SET anongid = ? "
		    "WHERE id = ?", "ii", (int64_t)adm_req_u64(req, "anongid",
		    0), rid);
	snprintf(msg, sizeof(msg), "%s rule for %s modified", path, client);
	return finish(ctx, rc, path, msg, rep);
}

static int export_remove(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *path = adm_req_get(req, "path");
	const char *client = adm_req_get(req, "client");
	int64_t eid, rid;
	char msg[512];
	int rc;

	if (adm_db_i64(ctx->db, &eid, "SELECT id FROM exports WHERE path = ?",
	    "s", path) != 0)
		return adm_fail(rep, ADM_ERR, "%s is not exported; see: "
		    "filerctl export list", path);
	if (client != NULL && adm_db_i64(ctx->db, &rid, "SELECT id FROM "
	    "export_rules WHERE export_id = ? AND client = ?", "is", eid,
	    client) != 0)
		return adm_fail(rep, ADM_ERR, "%s has no rule for %s; see: "
		    "filerctl export list %s", path, client, path);
	rc = adm_db_begin(ctx->db);
	if (client != NULL) {
		if (rc == 0)
			rc = adm_db_exec(ctx->db, "DELETE FROM export_rules "
			    "WHERE id = ?", "i", rid);
		/* The last rule takes the export with it. */
		if (rc == 0)
			rc = adm_db_exec(ctx->db, "DELETE FROM exports WHERE "
			    "id = ? AND NOT EXISTS (SELECT 1 FROM export_rules "
			    "WHERE export_id = ?)", "ii", eid, eid);
		snprintf(msg, sizeof(msg), "%s no longer exported to %s", path,
		    client);
	} else {
		if (rc == 0)
			rc = adm_db_exec(ctx->db, "DELETE FROM exports WHERE "
			    "id = ?", "i", eid);
		snprintf(msg, sizeof(msg), "%s no longer exported", path);
	}
	return finish(ctx, rc, path, msg, rep);
}

static int export_list(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const char *path = adm_req_get(req, "path");
	sqlite3_stmt *st;

	if (adm_db_prepare(ctx->db, &st, "SELECT e.path, v.name, r.client, "
	    "r.access, r.squash, r.anonuid, r.anongid, r.secure FROM "
	    "export_rules r JOIN exports e ON r.export_id = e.id JOIN volumes "
	    "v ON e.volume_id = v.id WHERE ?1 IS NULL OR e.path = ?1 "
	    "ORDER BY e.path, r.id", "s", path) != 0)
		return adm_fail(rep, ADM_ERR, "database error");
	adm_rep_list(rep, "exports");
	while (sqlite3_step(st) == SQLITE_ROW) {
		adm_rep_row(rep, "exports");
		adm_rep_str(rep, "path", adm_col_text(st, 0));
		adm_rep_str(rep, "volume", adm_col_text(st, 1));
		adm_rep_str(rep, "client", adm_col_text(st, 2));
		adm_rep_str(rep, "access", adm_col_text(st, 3));
		adm_rep_str(rep, "squash", adm_col_text(st, 4));
		adm_rep_i64(rep, "anonuid", sqlite3_column_int64(st, 5));
		adm_rep_i64(rep, "anongid", sqlite3_column_int64(st, 6));
		adm_rep_bool(rep, "secure", sqlite3_column_int64(st, 7) != 0);
	}
	sqlite3_finalize(st);
	return ADM_OK;
}

#define RULE_OPTS \
	{ "access", ADM_A_ENUM, 0, 0, 0, "rw|ro", NULL, \
	    "read-write or read-only (ro)" }, \
	{ "rw", ADM_A_ALIAS, 0, 0, 0, "rw", "access", "same as --access rw" }, \
	{ "ro", ADM_A_ALIAS, 0, 0, 0, "ro", "access", "same as --access ro" }, \
	{ "squash", ADM_A_ENUM, 0, 0, 0, "root|all|none", NULL, \
	    "map root (root, the default), everyone (all) or nobody " \
	    "to the anonymous ids" }, \
	{ "anonuid", ADM_A_UINT, 0, 0, UINT32_MAX - 1, NULL, NULL, \
	    "anonymous uid (65534)" }, \
	{ "anongid", ADM_A_UINT, 0, 0, UINT32_MAX - 1, NULL, NULL, \
	    "anonymous gid (65534)" }, \
	{ "secure", ADM_A_ENUM, 0, 0, 0, "yes|no", NULL, \
	    "require a client port below 1024 (yes)" }, \
	{ "insecure", ADM_A_ALIAS, 0, 0, 0, "no", "secure", \
	    "same as --secure no" }

static const struct adm_arg add_args[] = {
	{ "path", ADM_A_EXPPATH, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "/vol/NAME or a directory below it" },
	{ "client", ADM_A_CLIENT, ADM_ARG_REQ, 0, 0, NULL, NULL,
	    "*, host, wildcard (*.lab), address or CIDR" },
	RULE_OPTS,
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg remove_args[] = {
	{ "path", ADM_A_EXPPATH, ADM_ARG_REQ | ADM_ARG_POS, 0, 0, NULL, NULL,
	    "exported path" },
	{ "client", ADM_A_CLIENT, 0, 0, 0, NULL, NULL,
	    "remove only this client's rule" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};
static const struct adm_arg list_args[] = {
	{ "path", ADM_A_EXPPATH, ADM_ARG_POS, 0, 0, NULL, NULL,
	    "only this export" },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL },
};

const struct adm_verb adm_export_verbs[] = {
	{ "export add", add_args, ADM_V_OFFLINE, export_add,
	    "Export a path to a client (one rule; an export holds many)",
	    "Example: filerctl export add /vol/vol0 --client 10.0.0.0/8 --rw" },
	{ "export modify", add_args, ADM_V_OFFLINE, export_modify,
	    "Change the options of an existing rule", NULL },
	{ "export remove", remove_args, ADM_V_OFFLINE, export_remove,
	    "Remove a client's rule, or the whole export", NULL },
	{ "export list", list_args, ADM_V_OFFLINE, export_list,
	    "List exports and their rules", NULL },
	{ NULL, NULL, 0, NULL, NULL, NULL },
};
