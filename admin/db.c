/*
 * admin/db.c: the configuration store.
 *
 * THEORY
 *   One sqlite database, <home>/filer.db, in WAL mode (readers never block
 *   the writer, a crash leaves the last committed transaction), with
 *   foreign keys on and synchronous=FULL (a committed change survives a
 *   power cut).  The schema's version is PRAGMA user_version; the
 *   migrations below take a database from version N-1 to N, each inside one
 *   transaction together with the user_version bump, so a crash during an
 *   upgrade leaves the old version intact.  A database newer than this
 *   program is refused rather than guessed at.
 *
 *   Every change goes through a transaction (A1): handlers call
 *   adm_db_begin/adm_db_commit around all their statements, and a failure
 *   anywhere rolls back.
 *
 * TABLES (docs/admin.md has the columns)
 *   volumes, raid_groups, disks, exports, export_rules, snap_schedules,
 *   mirror_peers, mirrors, settings, events.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/adm_impl.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

struct adm_migration {
	int version;
	const char *sql;
};

static const struct adm_migration migrations[] = {
	{ 1,
	"CREATE TABLE volumes ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  uuid TEXT NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'online'"
	"    CHECK (state IN ('online', 'offline')),"
	"  reason TEXT NOT NULL DEFAULT '',"
	"  nvlog_path TEXT NOT NULL,"
	"  dir TEXT NOT NULL,"
	"  ngroups INTEGER NOT NULL CHECK (ngroups >= 1),"
	"  ndata INTEGER NOT NULL CHECK (ndata >= 1),"
	"  nparity INTEGER NOT NULL CHECK (nparity BETWEEN 1 AND 3),"
	"  disk_blocks INTEGER NOT NULL CHECK (disk_blocks > 0),"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE raid_groups ("
	"  id INTEGER PRIMARY KEY,"
	"  volume_id INTEGER NOT NULL REFERENCES volumes(id)"
	"    ON DELETE CASCADE,"
	"  grp INTEGER NOT NULL,"
	"  ndata INTEGER NOT NULL,"
	"  nparity INTEGER NOT NULL,"
	"  UNIQUE (volume_id, grp));"
	"CREATE TABLE disks ("
	"  id INTEGER PRIMARY KEY,"
	"  volume_id INTEGER NOT NULL REFERENCES volumes(id)"
	"    ON DELETE CASCADE,"
	"  group_id INTEGER REFERENCES raid_groups(id) ON DELETE CASCADE,"
	"  position INTEGER,"
	"  path TEXT NOT NULL UNIQUE,"
	"  role TEXT NOT NULL"
	"    CHECK (role IN ('data', 'parity', 'spare', 'retired')),"
	"  state TEXT NOT NULL DEFAULT 'ok',"
	"  added INTEGER NOT NULL);"
	"CREATE INDEX disks_by_volume ON disks(volume_id);"
	"CREATE TABLE exports ("
	"  id INTEGER PRIMARY KEY,"
	"  path TEXT NOT NULL UNIQUE,"
	"  volume_id INTEGER NOT NULL REFERENCES volumes(id)"
	"    ON DELETE CASCADE,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE export_rules ("
	"  id INTEGER PRIMARY KEY,"
	"  export_id INTEGER NOT NULL REFERENCES exports(id)"
	"    ON DELETE CASCADE,"
	"  client TEXT NOT NULL,"
	"  access TEXT NOT NULL DEFAULT 'ro' CHECK (access IN ('rw', 'ro')),"
	"  squash TEXT NOT NULL DEFAULT 'root'"
	"    CHECK (squash IN ('root', 'all', 'none')),"
	"  anonuid INTEGER NOT NULL DEFAULT 65534,"
	"  anongid INTEGER NOT NULL DEFAULT 65534,"
	"  secure INTEGER NOT NULL DEFAULT 1 CHECK (secure IN (0, 1)),"
	"  UNIQUE (export_id, client));"
	"CREATE TABLE snap_schedules ("
	"  volume_id INTEGER PRIMARY KEY REFERENCES volumes(id)"
	"    ON DELETE CASCADE,"
	"  hourly INTEGER NOT NULL DEFAULT 0 CHECK (hourly >= 0),"
	"  daily INTEGER NOT NULL DEFAULT 0 CHECK (daily >= 0),"
	"  weekly INTEGER NOT NULL DEFAULT 0 CHECK (weekly >= 0));"
	"CREATE TABLE mirror_peers ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  address TEXT NOT NULL,"
	"  port INTEGER NOT NULL,"
	"  psk TEXT NOT NULL DEFAULT '');"
	"CREATE TABLE mirrors ("
	"  id INTEGER PRIMARY KEY,"
	"  volume_id INTEGER NOT NULL REFERENCES volumes(id)"
	"    ON DELETE CASCADE,"
	"  peer_id INTEGER NOT NULL REFERENCES mirror_peers(id),"
	"  remote_volume TEXT NOT NULL,"
	"  direction TEXT NOT NULL CHECK (direction IN ('source', 'destination')),"
	"  state TEXT NOT NULL DEFAULT 'uninitialized',"
	"  acked_gen INTEGER NOT NULL DEFAULT 0,"
	"  last_error TEXT NOT NULL DEFAULT '',"
	"  created INTEGER NOT NULL,"
	"  UNIQUE (volume_id, peer_id, remote_volume));"
	"CREATE TABLE settings ("
	"  key TEXT PRIMARY KEY,"
	"  value TEXT NOT NULL);"
	"CREATE TABLE events ("
	"  id INTEGER PRIMARY KEY,"
	"  time_ns INTEGER NOT NULL,"
	"  volume TEXT,"
	"  kind TEXT NOT NULL,"
	"  message TEXT NOT NULL);"
	"CREATE INDEX events_by_time ON events(time_ns);"
	},
	{ 2,
	"ALTER TABLE mirrors ADD COLUMN mode TEXT NOT NULL DEFAULT 'sync'"
	"  CHECK (mode IN ('sync', 'async'));"
	},
	/* Per relationship: the async schedule (seconds between transfers;
	 * 0: the default), BLOCK compression and TLS on the link. */
	{ 3,
	"ALTER TABLE mirrors ADD COLUMN schedule_s INTEGER NOT NULL DEFAULT 0"
	"  CHECK (schedule_s >= 0);"
	"ALTER TABLE mirrors ADD COLUMN compress TEXT NOT NULL DEFAULT 'none'"
	"  CHECK (compress IN ('none', 'lz4', 'zstd'));"
	"ALTER TABLE mirrors ADD COLUMN tls INTEGER NOT NULL DEFAULT 0"
	"  CHECK (tls IN (0, 1));"
	},
	/* Per relationship: the source's send rate limit, bytes a second
	 * (0: none). */
	{ 4,
	"ALTER TABLE mirrors ADD COLUMN throttle_bps INTEGER NOT NULL "
	"  DEFAULT 0 CHECK (throttle_bps >= 0);"
	},
	/* Per relationship: an async schedule's anchor, seconds after
	 * 00:00 UTC (-1: none, the interval counts from filerd's start). */
	{ 5,
	"ALTER TABLE mirrors ADD COLUMN schedule_at INTEGER NOT NULL "
	"  DEFAULT -1 CHECK (schedule_at >= -1 AND schedule_at < 86400);"
	},
};

static int db_err(sqlite3 *db, const char *what)
{
	int code = sqlite3_extended_errcode(db);

	if ((code & 0xff) == SQLITE_CONSTRAINT)
		return -EEXIST;
	fl_err(ADM_SUB, "database: %s: %s", what, sqlite3_errmsg(db));
	if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED)
		return -EBUSY;
	return -EIO;
}

static int bind_va(sqlite3 *db, sqlite3_stmt *st, const char *fmt,
    va_list ap)
{
	int rc = SQLITE_OK;

	for (int i = 0; fmt != NULL && fmt[i] != '\0' && rc == SQLITE_OK;
	    i++) {
		switch (fmt[i]) {
		case 's': {
			const char *s = va_arg(ap, const char *);

			rc = s == NULL ? sqlite3_bind_null(st, i + 1) :
			    sqlite3_bind_text(st, i + 1, s, -1,
			    SQLITE_TRANSIENT);
			break;
		}
		case 'i':
			rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
			break;
		case 'u':
			rc = sqlite3_bind_int64(st, i + 1,
			    (int64_t)va_arg(ap, uint64_t));
			break;
		default:
			rc = SQLITE_MISUSE;
		}
	}
	return rc == SQLITE_OK ? 0 : db_err(db, "bind");
}

static int prepare_va(sqlite3 *db, sqlite3_stmt **st, const char *sql,
    const char *fmt, va_list ap)
{
	int rc;

	*st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
		return db_err(db, sql);
	rc = bind_va(db, *st, fmt, ap);
	if (rc != 0) {
		sqlite3_finalize(*st);
		*st = NULL;
	}
	return rc;
}

int adm_db_prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql,
    const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = prepare_va(db, st, sql, fmt, ap);
	va_end(ap);
	return rc;
}

int adm_db_exec(sqlite3 *db, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = prepare_va(db, &st, sql, fmt, ap);
	va_end(ap);
	if (rc != 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	rc = rc == SQLITE_DONE ? 0 : db_err(db, sql);
	sqlite3_finalize(st);
	return rc;
}

int adm_db_i64(sqlite3 *db, int64_t *out, const char *sql,
    const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = prepare_va(db, &st, sql, fmt, ap);
	va_end(ap);
	if (rc != 0)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : db_err(db, sql);
	}
	sqlite3_finalize(st);
	return rc;
}

int adm_db_text(sqlite3 *db, char *out, size_t len, const char *sql,
    const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = prepare_va(db, &st, sql, fmt, ap);
	va_end(ap);
	if (rc != 0)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(out, len, "%s", adm_col_text(st, 0));
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : db_err(db, sql);
	}
	sqlite3_finalize(st);
	return rc;
}

const char *adm_col_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	return t == NULL ? "" : (const char *)t;
}

int adm_db_begin(sqlite3 *db)
{
	return adm_db_exec(db, "BEGIN IMMEDIATE", NULL);
}

int adm_db_commit(sqlite3 *db)
{
	int rc = adm_db_exec(db, "COMMIT", NULL);

	if (rc != 0)
		adm_db_rollback(db);
	return rc;
}

void adm_db_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int adm_db_user_version(sqlite3 *db)
{
	int64_t v = -1;

	if (adm_db_i64(db, &v, "PRAGMA user_version", NULL) != 0)
		return -1;
	return (int)v;
}

/* Run every migration above the database's version, each atomically. */
static int db_migrate(sqlite3 *db, char *err, size_t errlen)
{
	int have = adm_db_user_version(db);

	if (have < 0) {
		snprintf(err, errlen, "cannot read the schema version: %s",
		    sqlite3_errmsg(db));
		return -EIO;
	}
	if (have > ADM_SCHEMA_VERSION) {
		snprintf(err, errlen, "the database has schema version %d, "
		    "newer than this program's %d; use a newer filer",
		    have, ADM_SCHEMA_VERSION);
		return -EPROTO;
	}
	for (size_t i = 0; i < FL_ARRAY_SIZE(migrations); i++) {
		const struct adm_migration *m = &migrations[i];
		char pragma[64];
		char *msg = NULL;

		if (m->version <= have)
			continue;
		if (adm_db_begin(db) != 0 ||
		    sqlite3_exec(db, m->sql, NULL, NULL, &msg) != SQLITE_OK) {
			snprintf(err, errlen, "schema migration to version %d "
			    "failed: %s", m->version,
			    msg != NULL ? msg : sqlite3_errmsg(db));
			sqlite3_free(msg);
			adm_db_rollback(db);
			return -EIO;
		}
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d",
		    m->version);
		if (adm_db_exec(db, pragma, NULL) != 0 ||
		    adm_db_commit(db) != 0) {
			snprintf(err, errlen, "schema migration to version %d "
			    "failed: %s", m->version, sqlite3_errmsg(db));
			adm_db_rollback(db);
			return -EIO;
		}
		fl_info(ADM_SUB, "database schema migrated to version %d",
		    m->version);
	}
	return 0;
}

int adm_db_open(const char *path, sqlite3 **out, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	int rc;

	*out = NULL;
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return -EIO;
	}
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, "PRAGMA journal_mode = WAL;"
	    "PRAGMA foreign_keys = ON;"
	    "PRAGMA synchronous = FULL;", NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "cannot configure %s: %s", path,
		    msg != NULL ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		sqlite3_close(db);
		return -EIO;
	}
	rc = db_migrate(db, err, errlen);
	if (rc != 0) {
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return 0;
}

void adm_db_close(sqlite3 *db)
{
	if (db != NULL)
		sqlite3_close(db);
}

/* ------------------------------------------------------------ volumes */

#define VOL_COLS "id, name, uuid, state, reason, nvlog_path, dir, ngroups, " \
	"ndata, nparity, disk_blocks, created"

static void vol_row(sqlite3_stmt *st, struct adm_vol_rec *r)
{
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	snprintf(r->name, sizeof(r->name), "%s", adm_col_text(st, 1));
	snprintf(r->uuid, sizeof(r->uuid), "%s", adm_col_text(st, 2));
	snprintf(r->state, sizeof(r->state), "%s", adm_col_text(st, 3));
	snprintf(r->reason, sizeof(r->reason), "%s", adm_col_text(st, 4));
	snprintf(r->nvlog, sizeof(r->nvlog), "%s", adm_col_text(st, 5));
	snprintf(r->dir, sizeof(r->dir), "%s", adm_col_text(st, 6));
	r->ngroups = (uint32_t)sqlite3_column_int64(st, 7);
	r->ndata = (uint32_t)sqlite3_column_int64(st, 8);
	r->nparity = (uint32_t)sqlite3_column_int64(st, 9);
	r->disk_blocks = (uint64_t)sqlite3_column_int64(st, 10);
	r->created = sqlite3_column_int64(st, 11);
}

int adm_vol_get(sqlite3 *db, const char *name, struct adm_vol_rec *r)
{
	sqlite3_stmt *st;
	int rc = adm_db_prepare(db, &st, "SELECT " VOL_COLS
	    " FROM volumes WHERE name = ?", "s", name);

	if (rc != 0)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		vol_row(st, r);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : db_err(db, "volume");
	}
	sqlite3_finalize(st);
	return rc;
}

int adm_vol_set_state(sqlite3 *db, const char *name, const char *state,
    const char *reason)
{
	return adm_db_exec(db, "UPDATE volumes SET state = ?, reason = ? "
	    "WHERE name = ?", "sss", state, reason, name);
}

void adm_paths_free(char **paths, size_t n)
{
	if (paths == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

int adm_vol_paths(sqlite3 *db, int64_t vol_id, char ***out, size_t *nout)
{
	int64_t ngroups = 0, ndata = 0, nparity = 0, nspares = 0;
	sqlite3_stmt *st = NULL;
	char **paths = NULL;
	size_t width, members, n;
	int rc;

	*out = NULL;
	*nout = 0;
	if ((rc = adm_db_i64(db, &ngroups, "SELECT ngroups FROM volumes "
	    "WHERE id = ?", "i", vol_id)) != 0 ||
	    (rc = adm_db_i64(db, &ndata, "SELECT ndata FROM volumes "
	    "WHERE id = ?", "i", vol_id)) != 0 ||
	    (rc = adm_db_i64(db, &nparity, "SELECT nparity FROM volumes "
	    "WHERE id = ?", "i", vol_id)) != 0 ||
	    (rc = adm_db_i64(db, &nspares, "SELECT count(*) FROM disks "
	    "WHERE volume_id = ? AND role = 'spare'", "i", vol_id)) != 0)
		return rc;
	/* The geometry sizes the table below and indexes it: a row outside
	 * what raid can hold is corruption, never a size to allocate. */
	if (ngroups < 1 || ngroups > RAID_MAX_GROUPS || ndata < 1 ||
	    ndata > RAID_MAX_DATA || nparity < 1 ||
	    nparity > RAID_MAX_PARITY) {
		fl_err(ADM_SUB, "database: volume %" PRId64 " has an impossible "
		    "geometry (%" PRId64 " groups of %" PRId64 " data + %"
		    PRId64 " parity disks)", vol_id, ngroups, ndata, nparity);
		return -FL_ECORRUPT;
	}
	width = (size_t)(ndata + nparity);
	members = (size_t)ngroups * width;
	n = members + (size_t)nspares;
	paths = calloc(n == 0 ? 1 : n, sizeof(*paths));
	if (paths == NULL)
		return -ENOMEM;
	/* Members: each (group, position) slot; an empty slot stays NULL and
	 * raid_open treats it as a missing disk. */
	rc = adm_db_prepare(db, &st, "SELECT g.grp, d.position, d.path "
	    "FROM disks d JOIN raid_groups g ON d.group_id = g.id "
	    "WHERE d.volume_id = ? AND d.role IN ('data', 'parity')",
	    "i", vol_id);
	if (rc != 0)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t g = sqlite3_column_int64(st, 0);
		int64_t p = sqlite3_column_int64(st, 1);
		size_t slot;

		if (g < 0 || g >= ngroups || p < 0 || p >= (int64_t)width)
			continue;
		slot = (size_t)g * width + (size_t)p;
		free(paths[slot]);
		paths[slot] = strdup(adm_col_text(st, 2));
		if (paths[slot] == NULL) {
			rc = -ENOMEM;
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		rc = db_err(db, "disks");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	rc = adm_db_prepare(db, &st, "SELECT path FROM disks WHERE "
	    "volume_id = ? AND role = 'spare' ORDER BY id", "i", vol_id);
	if (rc != 0)
		goto out;
	for (size_t i = members; i < n &&
	    (rc = sqlite3_step(st)) == SQLITE_ROW; i++) {
		paths[i] = strdup(adm_col_text(st, 0));
		if (paths[i] == NULL) {
			rc = -ENOMEM;
			goto out;
		}
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE && n > members) {
		rc = db_err(db, "disks");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	if (rc != 0) {
		adm_paths_free(paths, n);
		return rc;
	}
	*out = paths;
	*nout = n;
	return 0;
}

/* ------------------------------------------------------------ events */

int adm_db_event(sqlite3 *db, const char *vol, const char *kind,
    const char *msg)
{
	uint64_t keep = adm_db_setting_u64(db, "events_keep");
	int rc = adm_db_exec(db, "INSERT INTO events (time_ns, volume, kind, "
	    "message) VALUES (?, ?, ?, ?)", "usss", fl_now_real_ns(), vol,
	    kind, msg);

	if (rc == 0 && keep > 0)
		rc = adm_db_exec(db, "DELETE FROM events WHERE id <= "
		    "(SELECT max(id) FROM events) - ?", "u", keep);
	return rc;
}
