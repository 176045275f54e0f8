/*
 * admin/ctx.c: the admin context shared by filerd and offline filerctl:
 * the home directory and its lock, the event queue, the service registry
 * and the accessors admin.h offers to service adapters.
 *
 * THE HOME LOCK (A3)
 *   <home>/filerd.pid is flock()ed exclusively by filerd for its whole life
 *   (it writes its pid in it) and by filerctl for the length of an offline
 *   edit (it writes nothing).  A second filerd finds the lock held and
 *   names the pid in the file.  After taking the lock we check the path
 *   still names the file we locked: a filerd that exited just before
 *   unlinked it, and a lock on an unlinked file protects nothing.
 *
 * EVENTS
 *   raid raises events from its own threads, possibly under its locks, so
 *   the callback only queues (adm_event_queue, a mutex and an eventfd); the
 *   main thread drains the queue into the events table and, for events that
 *   move disks (failure, rebuild), copies raid's view of the disks to the
 *   database.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/adm_impl.h"
#include "common/log.h"
#include "common/util.h"

int adm_ctx_init(struct adm_ctx *ctx, const char *home)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->lock_fd = -1;
	ctx->wake_fd = -1;
	ctx->req_fd = -1;
	if (strlen(home) >= ADM_HOME_MAX - 16 || home[0] == '\0')
		return -ENAMETOOLONG;
	snprintf(ctx->home, sizeof(ctx->home), "%s", home);
	/* Strip trailing slashes (but keep "/"). */
	for (size_t n = strlen(ctx->home); n > 1 && ctx->home[n - 1] == '/';
	    n--)
		ctx->home[n - 1] = '\0';
	snprintf(ctx->db_path, sizeof(ctx->db_path), "%s/filer.db", ctx->home);
	snprintf(ctx->sock_path, sizeof(ctx->sock_path), "%s/filerd.sock",
	    ctx->home);
	snprintf(ctx->pid_path, sizeof(ctx->pid_path), "%s/filerd.pid",
	    ctx->home);
	pthread_mutex_init(&ctx->lock, NULL);
	ctx->evq_tail = &ctx->evq;
	ctx->clock_scale = 1.0;
	ctx->clock_base_real = (uint64_t)(fl_now_real_ns() / 1000000000ull);
	ctx->clock_base_mono = fl_now_mono_ns();
	ctx->start_s = ctx->clock_base_real;
	return 0;
}

void adm_ctx_fini(struct adm_ctx *ctx)
{
	struct adm_event_q *e, *next;

	for (e = ctx->evq; e != NULL; e = next) {
		next = e->next;
		free(e->vol);
		free(e->kind);
		free(e->msg);
		free(e);
	}
	ctx->evq = NULL;
	adm_db_close(ctx->db);
	ctx->db = NULL;
	if (ctx->wake_fd >= 0)
		close(ctx->wake_fd);
	ctx->wake_fd = -1;
	pthread_mutex_destroy(&ctx->lock);
}

static long read_pid(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

int adm_home_lock(struct adm_ctx *ctx, long *holder)
{
	*holder = 0;
	for (int attempt = 0; attempt < 10; attempt++) {
		struct stat a, b;
		int fd = open(ctx->pid_path, O_RDWR | O_CREAT | O_CLOEXEC,
		    0644);

		if (fd < 0)
			return -errno;
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			int e = errno;

			close(fd);
			if (e == EWOULDBLOCK) {
				*holder = read_pid(ctx->pid_path);
				return -EBUSY;
			}
			return -e;
		}
		if (fstat(fd, &a) == 0 && stat(ctx->pid_path, &b) == 0 &&
		    a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
			ctx->lock_fd = fd;
			return 0;
		}
		close(fd);	/* unlinked under us: take the new one */
	}
	return -EAGAIN;
}

void adm_home_unlock(struct adm_ctx *ctx, bool remove_pid)
{
	if (ctx->lock_fd < 0)
		return;
	if (remove_pid)
		(void)unlink(ctx->pid_path);
	close(ctx->lock_fd);
	ctx->lock_fd = -1;
}

/* ------------------------------------------------------------- events */

void adm_event_queue(struct adm_ctx *ctx, const char *vol, int64_t vol_id,
    const char *kind, bool disks_changed, const char *msg)
{
	struct adm_event_q *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return;
	e->vol = vol != NULL ? strdup(vol) : NULL;
	e->kind = strdup(kind);
	e->msg = strdup(msg);
	e->vol_id = vol_id;
	e->disks_changed = disks_changed;
	e->time_ns = fl_now_real_ns();
	if (e->kind == NULL || e->msg == NULL || (vol != NULL &&
	    e->vol == NULL)) {
		free(e->vol);
		free(e->kind);
		free(e->msg);
		free(e);
		return;
	}
	pthread_mutex_lock(&ctx->lock);
	*ctx->evq_tail = e;
	ctx->evq_tail = &e->next;
	pthread_mutex_unlock(&ctx->lock);
	if (ctx->wake_fd >= 0) {
		uint64_t one = 1;

		(void)!write(ctx->wake_fd, &one, sizeof(one));
	}
}

void adm_events_drain(struct adm_ctx *ctx)
{
	struct adm_event_q *list, *e, *next;
	bool open_tx;

	pthread_mutex_lock(&ctx->lock);
	list = ctx->evq;
	ctx->evq = NULL;
	ctx->evq_tail = &ctx->evq;
	pthread_mutex_unlock(&ctx->lock);
	if (list == NULL || ctx->db == NULL)
		goto out;
	open_tx = adm_db_begin(ctx->db) == 0;
	for (e = list; e != NULL; e = e->next) {
		if (adm_db_exec(ctx->db, "INSERT INTO events (time_ns, volume, "
		    "kind, message) VALUES (?, ?, ?, ?)", "usss", e->time_ns,
		    e->vol, e->kind, e->msg) != 0)
			break;
	}
	if (open_tx && adm_db_commit(ctx->db) == 0) {
		uint64_t keep = adm_db_setting_u64(ctx->db, "events_keep");

		(void)adm_db_exec(ctx->db, "DELETE FROM events WHERE id <= "
		    "(SELECT max(id) FROM events) - ?", "u", keep);
	}
	for (e = list; e != NULL; e = e->next) {
		struct adm_vol *v;

		if (!e->disks_changed)
			continue;
		for (v = ctx->vols; v != NULL; v = v->next)
			if (v->id == e->vol_id && v->raid != NULL)
				(void)adm_vol_sync_disks(ctx, v);
	}
out:
	for (e = list; e != NULL; e = next) {
		next = e->next;
		free(e->vol);
		free(e->kind);
		free(e->msg);
		free(e);
	}
}

void adm_event(struct adm_ctx *ctx, const char *vol, const char *kind,
    const char *fmt, ...)
{
	char msg[ADM_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	adm_event_queue(ctx, vol, 0, kind, false, msg);
}

uint64_t adm_sched_now(const struct adm_ctx *ctx)
{
	double el = (double)(fl_now_mono_ns() - ctx->clock_base_mono) / 1e9;

	return ctx->clock_base_real + (uint64_t)(el * ctx->clock_scale);
}

/* ----------------------------------------------------------- services */

#define ADM_MAX_SERVICES 8
static const struct adm_service *services[ADM_MAX_SERVICES];
static bool service_up[ADM_MAX_SERVICES];
static size_t nservices;

int adm_service_register(const struct adm_service *s)
{
	if (s == NULL || s->name == NULL)
		return -EINVAL;
	if (nservices >= ADM_MAX_SERVICES)
		return -ENOSPC;
	services[nservices++] = s;
	return 0;
}

void adm_services_start(struct adm_ctx *ctx)
{
	for (size_t i = 0; i < nservices; i++) {
		int rc = services[i]->start != NULL ?
		    services[i]->start(ctx) : 0;

		service_up[i] = rc == 0;
		if (rc != 0) {
			fl_err(ADM_SUB, "service %s did not start: %s",
			    services[i]->name, fl_strerror(rc));
			adm_event(ctx, NULL, "service.failed", "service %s did "
			    "not start: %s", services[i]->name,
			    fl_strerror(rc));
		} else {
			fl_info(ADM_SUB, "service %s started",
			    services[i]->name);
		}
	}
}

void adm_services_stop(struct adm_ctx *ctx)
{
	for (size_t i = nservices; i-- > 0;) {
		if (service_up[i] && services[i]->stop != NULL)
			services[i]->stop(ctx);
		service_up[i] = false;
	}
}

void adm_services_reload(struct adm_ctx *ctx, unsigned what)
{
	for (size_t i = 0; i < nservices; i++) {
		int rc;

		if (!service_up[i] || services[i]->reload == NULL)
			continue;
		rc = services[i]->reload(ctx, what);
		if (rc != 0)
			fl_warn(ADM_SUB, "service %s: reload failed: %s",
			    services[i]->name, fl_strerror(rc));
	}
}

void adm_services_volume_up(struct adm_ctx *ctx, const char *name,
    wafl_vol_t *v)
{
	for (size_t i = 0; i < nservices; i++)
		if (service_up[i] && services[i]->volume_up != NULL)
			services[i]->volume_up(ctx, name, v);
}

void adm_services_volume_down(struct adm_ctx *ctx, const char *name)
{
	for (size_t i = nservices; i-- > 0;)
		if (service_up[i] && services[i]->volume_down != NULL)
			services[i]->volume_down(ctx, name);
}

/* ---------------------------------------------------------- accessors */

const char *adm_home(const struct adm_ctx *ctx)
{
	return ctx->home;
}

int adm_setting_get(struct adm_ctx *ctx, const char *key, char *buf,
    size_t len)
{
	char tmp[256];
	int rc = adm_db_setting(ctx->db, key, tmp, sizeof(tmp));

	if (rc != 0)
		return rc;
	if (strlen(tmp) >= len)
		return -ENOSPC;
	memcpy(buf, tmp, strlen(tmp) + 1);
	return 0;
}

uint64_t adm_setting_u64(struct adm_ctx *ctx, const char *key)
{
	return adm_db_setting_u64(ctx->db, key);
}

wafl_vol_t *adm_volume(struct adm_ctx *ctx, const char *name)
{
	struct adm_vol *v = adm_vol_find(ctx, name);

	return v != NULL ? v->wafl : NULL;
}

int adm_exports_foreach(struct adm_ctx *ctx, adm_export_fn *fn, void *arg)
{
	sqlite3_stmt *st;
	int rc = adm_db_prepare(ctx->db, &st, "SELECT e.path, v.name, "
	    "r.client, r.access, r.squash, r.anonuid, r.anongid, r.secure, "
	    "v.id FROM export_rules r JOIN exports e ON r.export_id = e.id "
	    "JOIN volumes v ON e.volume_id = v.id ORDER BY e.path, r.id", NULL);
	int cb = 0;

	if (rc != 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct adm_export_rule r;
		const char *sq = adm_col_text(st, 4);
		const char *acc = adm_col_text(st, 3);
		int64_t uid = sqlite3_column_int64(st, 5);
		int64_t gid = sqlite3_column_int64(st, 6);
		char vol[ADM_NAME_MAX];

		r.path = adm_col_text(st, 0);
		r.volume = adm_col_text(st, 1);
		r.client = adm_col_text(st, 2);
		/* A rule as export add would have stored it, or none: an
		 * anonymous id past 32 bits would wrap (4294967296 is root),
		 * an unknown squash would read as root squash. */
		if (!adm_valid_export_path(r.path, vol, sizeof(vol)) ||
		    strcmp(vol, r.volume) != 0 ||
		    !adm_valid_client(r.client) ||
		    (strcmp(acc, "rw") != 0 && strcmp(acc, "ro") != 0) ||
		    (strcmp(sq, "root") != 0 && strcmp(sq, "all") != 0 &&
		    strcmp(sq, "none") != 0) || uid < 0 ||
		    uid > (int64_t)UINT32_MAX - 1 || gid < 0 ||
		    gid > (int64_t)UINT32_MAX - 1) {
			fl_err(ADM_SUB, "database: export %s, rule for %s: "
			    "impossible values (access %s, squash %s, anonuid "
			    "%" PRId64 ", anongid %" PRId64 "); the rule is not "
			    "served", r.path, r.client, acc, sq, uid, gid);
			adm_event(ctx, r.volume, "export.refused", "%s: the "
			    "rule for %s holds impossible values and is not "
			    "served; fix it (filerctl export modify) or "
			    "remove it", r.path, r.client);
			continue;
		}
		r.rw = strcmp(acc, "rw") == 0;
		r.squash = strcmp(sq, "all") == 0 ? ADM_SQUASH_ALL :
		    strcmp(sq, "none") == 0 ? ADM_SQUASH_NONE : ADM_SQUASH_ROOT;
		r.anonuid = (uint32_t)uid;
		r.anongid = (uint32_t)gid;
		r.secure = sqlite3_column_int64(st, 7) != 0;
		/* A mirror destination is served read-only (svc_mirror.c). */
		if (r.rw && adm_mirror_is_dest(ctx, sqlite3_column_int64(st, 8)))
			r.rw = false;
		cb = fn(arg, &r);
		if (cb != 0)
			break;
	}
	sqlite3_finalize(st);
	if (cb != 0)
		return cb;
	return rc == SQLITE_DONE ? 0 : -EIO;
}
