/*
 * admin/svc_mirror.c: the mirror service, mirror/ plugged into filerd.
 *
 * THEORY
 *   The relationships live in the database (tables mirror_peers and
 *   mirrors, docs/admin.md); this file runs them.  One row per
 *   relationship on each side: direction 'source' on the filerd that holds
 *   the source volume, 'destination' on the other.  Both sides derive the
 *   same 16-byte relationship id from the two volume names, and take the
 *   pre-shared key of the peer the row names.  Everything here runs on
 *   filerd's main thread (service callbacks, verbs, the tick the main loop
 *   calls), so the list of running relationships needs no lock; the
 *   mirror library's threads are reached only through its API.
 *
 *   Source rows run (mir_source_start on the mounted volume) once
 *   `mirror init` took them out of 'uninitialized', unless broken off; a
 *   quiesced row starts quiesced.  A baseline is allowed only while no
 *   generation was ever acknowledged.  The row's state follows the
 *   library's at each tick, except "quiesced": that is the
 *   administrator's (the library's quiesce_requested), set by quiesce,
 *   cleared by resume, and no tick reports the library's state over it
 *   (its thread closes the link a little after mir_source_quiesce
 *   returns).
 *
 *   Destination rows run while their volume is online and the row is not
 *   broken off, all through one listener on the setting mirror_port
 *   (mirror/listen.c), which routes each connection by the relationship
 *   id in its first frame; so does the listening side of a resync.  The
 *   listener runs while anything here listens: started by the first
 *   (lis_get), stopped when the last stops (lis_put).  filerd mounts a destination volume
 *   read-only (vols.c asks adm_mirror_is_dest), so nothing but the
 *   mirror writes to it.  Until a baseline begins that read-only mount
 *   is what the volume shows; from then on the baseline writes over what
 *   it reads, so the next tick takes it away (and a volume whose baseline
 *   was cut short comes online without one, vols.c): the volume shows no
 *   file system; once the destination serves
 *   a generation the relationship is restarted without baseline
 *   permission and the volume's file system becomes the library's replica,
 *   which the NFS service then exports; adm_exports_foreach turns the
 *   volume's rw rules into ro while it is a destination (and the replica
 *   refuses writes anyway: NFS3ERR_ROFS).  Whenever the replica is taken away (stop,
 *   break, volume down) the volume's wafl pointer is cleared and the NFS
 *   service reloaded first, so no export ever points at a freed replica.
 *
 *   The tick (every pass of filerd's main loop, at least once a second)
 *   reads each relationship's state: a change is stored in the row and
 *   recorded as a mirror.state event; the acknowledged generation and the
 *   last error are stored as they change, so status survives restarts.
 *
 *   A broken-off relationship runs nothing here.  Its source's stop kept
 *   the destination's root (and the roots sent after it) held, for a
 *   resync, and the fallback that bounds what waits behind a hold is the
 *   running source's: so the held roots are parked (adm_mirror_park:
 *   snapshots mirror.base.<gen>, which a resync finds too, and the holds
 *   released) wherever a row becomes broken-off with a stopped source or
 *   a resync's leftovers (cmd_mirror.c's break, a failed resync, the end
 *   of a crash's resync wait), and at start or when a volume comes online
 *   for any broken-off row whose volume still holds roots.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "admin/adm_impl.h"
#include "admin/svc_mirror.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "mirror/mirror.h"

#define SEEN_MAX	64

struct mrel {
	struct mrel *next;
	int64_t id;
	char vol[ADM_NAME_MAX];
	char rvol[ADM_NAME_MAX];
	bool dest;
	enum mir_mode mode;
	uint64_t schedule_s;	/* async: seconds between transfers */
	int64_t schedule_at;	/* anchored: seconds after 00:00 UTC; -1 */
	char state[32];		/* as stored */
	uint64_t acked;		/* as stored */
	char err[192];		/* as stored */
	mir_source_t *src;
	mir_dest_t *dst;
	bool baseline;		/* dst accepts a baseline */
	bool replica;		/* the volume's wafl is dst's replica */
	uint16_t port;
	uint64_t last_kick;
	uint64_t fallbacks;	/* source: held roots made snapshots */
	struct { uint64_t gen, t; } seen[SEEN_MAX];
	size_t nseen, seen_next;
	/* A row a crash left resyncing, run as the source it becomes if
	 * the resync had finished, until the peer's STATUS says so
	 * (resync_recover): its row stays resyncing meanwhile. */
	bool confirm;
	bool confirm_was_dest;	/* the row said destination (--reverse) */
	uint64_t confirm_until;	/* now_s() deadline */
};

/* A row of mirrors joined with its volume and peer. */
struct mrow {
	int64_t id;
	char vol[ADM_NAME_MAX];
	char rvol[ADM_NAME_MAX];
	char host[256];
	uint16_t port;
	char psk[2 * ADM_PEER_KEY_MAX + 1];
	bool dest;
	enum mir_mode mode;
	char state[32];
	uint64_t acked;
	char err[192];
	uint64_t schedule_s;
	int64_t schedule_at;	/* -1: not anchored */
	uint8_t compress;	/* enum mir_compress */
	uint64_t throttle_bps;	/* the source's send limit; 0: none */
	bool tls;
	char dir[ADM_PATH_MAX];	/* the volume's directory */
	bool confirm;		/* rec_confirm: run as the source it becomes */
	bool confirm_was_dest;
};

/* A resync running here (mirror/resync.c): this side is T (overwritten)
 * or W (the winner). */
struct rjob {
	struct rjob *next;
	int64_t id;
	char vol[ADM_NAME_MAX];
	bool t_side, reverse, dest;
	uint64_t throttle_bps;	/* the row's at the start */
	mir_resync_t *job;
};

static struct {
	struct mrel *rels;
	struct rjob *jobs;
	mir_listener_t *lis;	/* mirror_port, while anything here listens */
	bool syncing;		/* adm_mirror_sync is starting relationships */
	bool up;
	bool crash_at_done;	/* tests: FILER_RESYNC_CRASH_AT_DONE */
} svc;

/* How long a row a crash left resyncing waits at the next start for the
 * peer to say the resync had finished (resync_recover): as long as a
 * running half waits for its peer (mir_resync_opts.accept_timeout_ms). */
#define RESYNC_CONFIRM_S	600

/*
 * A baseline about to overwrite a volume that still shows its old file
 * system read-only (a destination set up over a volume of its own) first
 * waits, in the destination's thread (mir_dest_opts.before_baseline), for
 * the tick to take that mount away: from then on the volume shows no file
 * system until the replica is served, and nothing reads blocks the
 * baseline is overwriting.  asked counts such waits begun, done the
 * ticks that looked at every relationship after them; a wait gives up
 * after WIPE_WAIT_MS (a filerd busy stopping that destination).
 */
#define WIPE_WAIT_MS		3000u

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t asked, done;
} wipe = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };

static void before_baseline(void *arg)
{
	struct adm_ctx *ctx = arg;
	uint64_t one = 1, mine;
	struct timespec ts;
	bool late = false;

	pthread_mutex_lock(&wipe.mu);
	mine = ++wipe.asked;
	pthread_mutex_unlock(&wipe.mu);
	(void)!write(ctx->wake_fd, &one, sizeof(one));	/* a tick now */
	fl_deadline_ts(&ts, (uint64_t)WIPE_WAIT_MS * 1000);
	pthread_mutex_lock(&wipe.mu);
	while (wipe.done < mine && !late)
		late = pthread_cond_timedwait(&wipe.cv, &wipe.mu, &ts) != 0;
	pthread_mutex_unlock(&wipe.mu);
	if (late)
		fl_warn(ADM_SUB, "a baseline begins before the volume's old "
		    "file system was taken away (%u ms); its readers may get "
		    "I/O errors until the next tick", WIPE_WAIT_MS);
}

static uint64_t now_s(void)
{
	return (uint64_t)time(NULL);
}

/* ------------------------------------------------------------- helpers */

/* The listener takes connections, unless adm_mirror_sync is still
 * starting relationships (it opens it when they all are). */
static void lis_open(void)
{
	if (svc.lis != NULL && !svc.syncing)
		mir_listener_accept(svc.lis);
}

/* The listener, once no destination or resync takes from it. */
static void lis_put(void)
{
	if (svc.lis != NULL && mir_listener_attached(svc.lis) == 0) {
		mir_listener_stop(svc.lis);
		svc.lis = NULL;
	}
}

bool adm_mirror_listener_status(struct adm_ctx *ctx, uint16_t *port,
    unsigned *attached, struct mir_listener_stats *st)
{
	(void)ctx;
	if (svc.lis == NULL)
		return false;
	*port = mir_listener_port(svc.lis);
	*attached = mir_listener_attached(svc.lis);
	mir_listener_stats(svc.lis, st);
	return true;
}

/* The listener on mirror_port, for a destination or resync about to
 * start; a new mirror_port takes effect once nothing uses the old one. */
static int lis_get(struct adm_ctx *ctx, mir_listener_t **out)
{
	uint16_t port = (uint16_t)adm_setting_u64(ctx, "mirror_port");
	int rc;

	if (svc.lis != NULL && port != 0 &&
	    mir_listener_port(svc.lis) != port) {
		lis_put();
		if (svc.lis != NULL) {
			fl_warn(ADM_SUB, "mirror_port is now %u, but a resync "
			    "still listens on %u: the destinations start "
			    "when it ends", port, mir_listener_port(svc.lis));
			return -EBUSY;
		}
	}
	if (svc.lis == NULL) {
		rc = mir_listener_start("0.0.0.0", port, &svc.lis);
		if (rc != 0)
			return rc;
	}
	*out = svc.lis;
	return 0;
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static size_t hex_decode(const char *hex, uint8_t *out, size_t max)
{
	size_t n = 0;

	while (hex[0] != '\0' && hex[1] != '\0' && n < max) {
		int a = hex_val(hex[0]), b = hex_val(hex[1]);

		if (a < 0 || b < 0)
			return 0;
		out[n++] = (uint8_t)(a << 4 | b);
		hex += 2;
	}
	return n;
}

int adm_mirror_key_load(const char *path, char *hex, size_t hexlen,
    char *why, size_t whylen)
{
	uint8_t buf[ADM_PEER_KEY_MAX + 3];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(why, whylen, "cannot read the key file %s: %s", path,
		    strerror(errno));
		return -errno;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0) {
		snprintf(why, whylen, "cannot read the key file %s: %s", path,
		    strerror(errno));
		return -EIO;
	}
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n < ADM_PEER_KEY_MIN || n > ADM_PEER_KEY_MAX) {
		snprintf(why, whylen, "the key file %s must hold %d to %d bytes "
		    "(one trailing newline is ignored); make one with: head -c "
		    "32 /dev/urandom | base64 > FILE", path, ADM_PEER_KEY_MIN,
		    ADM_PEER_KEY_MAX);
		return -EINVAL;
	}
	if (hexlen < 2 * (size_t)n + 1)
		return -ENOSPC;
	for (ssize_t i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", buf[i]);
	return 0;
}

/* Both sides name the relationship by its two volumes. */
static void rel_id(const char *srcvol, const char *dstvol,
    uint8_t id[MIR_REL_ID_SIZE])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char buf[16 + 2 * ADM_NAME_MAX + 2];
	int n = snprintf(buf, sizeof(buf), "filer-mirror %s", srcvol);

	n += 1 + snprintf(buf + n + 1, sizeof(buf) - (size_t)n - 1, "%s",
	    dstvol);
	if (EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen < MIR_REL_ID_SIZE)
		memset(md, 0, sizeof(md));
	memcpy(id, md, MIR_REL_ID_SIZE);
}

static struct mrel *rel_find(int64_t id)
{
	for (struct mrel *r = svc.rels; r != NULL; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

static void exports_reload(struct adm_ctx *ctx)
{
	adm_services_reload(ctx, ADM_RELOAD_EXPORTS);
}

/* Store a column of the row (main thread, its own transaction). */
static void row_store(struct adm_ctx *ctx, struct mrel *r)
{
	(void)adm_db_exec(ctx->db, "UPDATE mirrors SET state = ?, acked_gen "
	    "= ?, last_error = ? WHERE id = ?", "susi", r->state, r->acked,
	    r->err, r->id);
}

static void state_set(struct adm_ctx *ctx, struct mrel *r, const char *st,
    const char *why)
{
	if (strcmp(r->state, st) == 0)
		return;
	adm_event(ctx, r->vol, "mirror.state", "mirror %s %s %s: %s -> %s%s%s",
	    r->vol, r->dest ? "from" : "to", r->rvol, r->state, st,
	    why != NULL ? ": " : "", why != NULL ? why : "");
	fl_info(ADM_SUB, "mirror %s: %s -> %s", r->vol, r->state, st);
	snprintf(r->state, sizeof(r->state), "%s", st);
	row_store(ctx, r);
}

/* ------------------------------------------------------- database rows */

static int rows_read(struct adm_ctx *ctx, struct mrow **out, size_t *n)
{
	sqlite3_stmt *st;
	struct mrow *rows = NULL;
	size_t cnt = 0, cap = 0;
	int rc = adm_db_prepare(ctx->db, &st, "SELECT m.id, v.name, "
	    "m.remote_volume, p.address, p.port, p.psk, m.direction, m.mode, "
	    "m.state, m.acked_gen, m.last_error, m.schedule_s, m.compress, "
	    "m.tls, v.dir, m.throttle_bps, m.schedule_at FROM mirrors m "
	    "JOIN volumes v "
	    "ON v.id = m.volume_id JOIN mirror_peers p ON p.id = m.peer_id "
	    "ORDER BY m.id", NULL);

	if (rc != 0)
		return rc;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct mrow *w;

		if (cnt == cap) {
			size_t nc = cap == 0 ? 4 : cap * 2;
			void *p = realloc(rows, nc * sizeof(*rows));

			if (p == NULL) {
				sqlite3_finalize(st);
				free(rows);
				return -ENOMEM;
			}
			rows = p;
			cap = nc;
		}
		w = &rows[cnt++];
		memset(w, 0, sizeof(*w));
		w->id = sqlite3_column_int64(st, 0);
		snprintf(w->vol, sizeof(w->vol), "%s", adm_col_text(st, 1));
		snprintf(w->rvol, sizeof(w->rvol), "%s", adm_col_text(st, 2));
		snprintf(w->host, sizeof(w->host), "%s", adm_col_text(st, 3));
		w->port = (uint16_t)sqlite3_column_int64(st, 4);
		snprintf(w->psk, sizeof(w->psk), "%s", adm_col_text(st, 5));
		w->dest = strcmp(adm_col_text(st, 6), "destination") == 0;
		w->mode = strcmp(adm_col_text(st, 7), "async") == 0 ?
		    MIR_ASYNC : MIR_SYNC;
		snprintf(w->state, sizeof(w->state), "%s",
		    adm_col_text(st, 8));
		w->acked = (uint64_t)sqlite3_column_int64(st, 9);
		snprintf(w->err, sizeof(w->err), "%s", adm_col_text(st, 10));
		w->schedule_s = (uint64_t)sqlite3_column_int64(st, 11);
		const char *c = adm_col_text(st, 12);
		w->compress = strcmp(c, "zstd") == 0 ? MIR_COMP_ZSTD :
		    strcmp(c, "lz4") == 0 ? MIR_COMP_LZ4 : MIR_COMP_NONE;
		w->tls = sqlite3_column_int64(st, 13) != 0;
		snprintf(w->dir, sizeof(w->dir), "%s", adm_col_text(st, 14));
		w->throttle_bps = (uint64_t)sqlite3_column_int64(st, 15);
		w->schedule_at = sqlite3_column_int64(st, 16);
	}
	sqlite3_finalize(st);
	*out = rows;
	*n = cnt;
	return 0;
}

bool adm_mirror_is_dest(struct adm_ctx *ctx, int64_t vol_id)
{
	int64_t n = 0;

	/* Before the service starts, a volume whose row a stop or a crash
	 * left resyncing is mounted read-only too: nothing (NVLOG replay,
	 * CPs, NFS) writes it before resync_recover has decided what the
	 * resync left. */
	if (adm_db_i64(ctx->db, &n, "SELECT count(*) FROM mirrors WHERE "
	    "volume_id = ? AND state != 'broken-off' AND (direction = "
	    "'destination' OR (? AND state = 'resyncing'))", "ii", vol_id,
	    (int64_t)!svc.up) != 0)
		return false;
	return n > 0;
}

bool adm_mirror_awaits_baseline(struct adm_ctx *ctx, int64_t vol_id)
{
	int64_t n = 0;

	if (adm_db_i64(ctx->db, &n, "SELECT count(*) FROM mirrors WHERE "
	    "volume_id = ? AND direction = 'destination' AND state != "
	    "'broken-off' AND acked_gen = 0", "i", vol_id) != 0)
		return false;
	return n > 0;
}

/* ------------------------------------------------------- running them */

/* Take the volume's file system out of the exports and out of the
 * volume; the caller owns it from then on. */
static wafl_vol_t *vol_detach(struct adm_ctx *ctx, struct adm_vol *av)
{
	wafl_vol_t *w = av->wafl;

	if (w == NULL)
		return NULL;
	adm_jobs_wait(ctx, av->name, false);	/* a check using it */
	av->wafl = NULL;
	exports_reload(ctx);
	return w;
}

/* The volume's file system taken away (vol_detach) and unmounted;
 * false if it had none. */
static bool vol_drop(struct adm_ctx *ctx, struct adm_vol *av)
{
	wafl_vol_t *w = vol_detach(ctx, av);

	if (w == NULL)
		return false;
	(void)wafl_unmount(w);
	return true;
}

static void vol_attach(struct adm_ctx *ctx, struct adm_vol *av,
    wafl_vol_t *w)
{
	av->wafl = w;
	if (w != NULL)
		exports_reload(ctx);
}

int adm_mirror_make_readonly(struct adm_ctx *ctx, const char *vol)
{
	struct adm_vol *av = adm_vol_find(ctx, vol);
	struct wafl_mount_opts mo = { .readonly = true };
	wafl_vol_t *w;
	int rc;

	if (av == NULL)
		return -ENOENT;
	w = vol_detach(ctx, av);
	if (w != NULL) {
		rc = wafl_unmount(w);
		if (rc != 0)
			fl_warn(ADM_SUB, "volume %s: final consistency point: "
			    "%s", vol, fl_strerror(rc));
	}
	adm_mount_opts(ctx, &mo);
	rc = wafl_mount(av->raid, &mo, &w);
	if (rc != 0) {
		fl_warn(ADM_SUB, "volume %s: no file system to show until the "
		    "baseline arrives: %s", vol, fl_strerror(rc));
		return 0;
	}
	vol_attach(ctx, av, w);
	return 0;
}

static int src_run(struct adm_ctx *ctx, struct mrel *r,
    const struct mrow *w, struct adm_vol *av)
{
	uint8_t key[ADM_PEER_KEY_MAX];
	struct mir_source_opts o = {
		.host = w->host,
		.port = w->port,
		.mode = w->mode,
		.raid = av->raid,
		.allow_baseline = w->acked == 0 && !r->confirm,
		.compress = w->compress,
		.tls = w->tls,
		.throttle_bps = w->throttle_bps,
		.last_error = r->err,
	};
	int rc;

	o.key_len = hex_decode(w->psk, key, sizeof(key));
	o.key = key;
	rel_id(w->vol, w->rvol, o.rel_id);
	rc = mir_source_start(av->wafl, &o, &r->src);
	if (rc != 0)
		return rc;
	if (strcmp(w->state, "quiesced") == 0)
		mir_source_quiesce(r->src);
	return 0;
}

static int dst_run(struct adm_ctx *ctx, struct mrel *r,
    const struct mrow *w, struct adm_vol *av, bool baseline)
{
	uint8_t key[ADM_PEER_KEY_MAX];
	struct mir_dest_opts o = {
		.host = "0.0.0.0",
		.port = (uint16_t)adm_setting_u64(ctx, "mirror_port"),
		.allow_baseline = baseline,
		.compress = w->compress,
		.tls = w->tls,
		.last_error = r->err,
		.before_baseline = before_baseline,
		.before_baseline_arg = ctx,
	};
	char ckpt[ADM_PATH_MAX + ADM_NAME_MAX + 16];
	int rc;

	adm_mount_opts(ctx, &o.mount);
	rc = lis_get(ctx, &o.listener);
	if (rc != 0)
		return rc;
	/* An interrupted baseline resumes from here (beside the disks). */
	adm_mirror_ckpt_path(w->dir, w->vol, ckpt, sizeof(ckpt));
	o.checkpoint_path = ckpt;
	o.key_len = hex_decode(w->psk, key, sizeof(key));
	o.key = key;
	rel_id(w->rvol, w->vol, o.rel_id);
	/* The replica replaces the read-only mount. */
	if (!baseline)
		(void)vol_drop(ctx, av);
	rc = mir_dest_start(av->raid, &o, &r->dst);
	lis_open();
	if (rc != 0) {
		r->dst = NULL;
		lis_put();
		if (!baseline)
			(void)adm_mirror_make_readonly(ctx, w->vol);
		return rc;
	}
	r->baseline = baseline;
	r->port = mir_dest_port(r->dst);
	if (!baseline) {
		r->replica = true;
		vol_attach(ctx, av, mir_dest_volume(r->dst));
	}
	return 0;
}

static void rel_stop(struct adm_ctx *ctx, struct mrel *r)
{
	if (r->src != NULL) {
		mir_source_stop(r->src);
		r->src = NULL;
	}
	if (r->dst != NULL) {
		struct adm_vol *av = adm_vol_find(ctx, r->vol);

		if (r->replica && av != NULL)
			(void)vol_detach(ctx, av);
		mir_dest_stop(r->dst);	/* unmounts the replica */
		r->dst = NULL;
		r->replica = false;
		lis_put();
	}
}

static void rel_unlink(struct mrel *r)
{
	for (struct mrel **pp = &svc.rels; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	free(r);
}

static bool should_run(const struct mrow *w)
{
	if (strcmp(w->state, "broken-off") == 0 ||
	    strcmp(w->state, "resyncing") == 0)
		return false;
	return w->dest || strcmp(w->state, "uninitialized") != 0;
}

/*
 * Async schedules: a transfer is due schedule_s after last_kick, on
 * sched_clock.  Interval schedules count on the wall clock from the last
 * start; anchored ones on the schedule clock (adm_sched_now: the wall
 * clock, faster in tests, as snapshot schedules), and last_kick is always
 * a slot, so the next slot is exactly schedule_s later.
 */
static uint64_t sched_clock(const struct adm_ctx *ctx, const struct mrel *r)
{
	return r->schedule_at >= 0 ? adm_sched_now(ctx) : now_s();
}

/* What last_kick becomes for a start at now. */
static uint64_t sched_mark(const struct mrel *r, uint64_t now)
{
	return r->schedule_at >= 0 ? adm_mirror_schedule_slot(now,
	    r->schedule_s, r->schedule_at) : now;
}

static void rel_start(struct adm_ctx *ctx, const struct mrow *w)
{
	struct adm_vol *av = adm_vol_find(ctx, w->vol);
	struct mrel *r;
	int rc;

	if (av == NULL || (!w->dest && av->wafl == NULL))
		return;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return;
	r->id = w->id;
	snprintf(r->vol, sizeof(r->vol), "%s", w->vol);
	snprintf(r->rvol, sizeof(r->rvol), "%s", w->rvol);
	r->dest = w->dest;
	r->mode = w->mode;
	r->schedule_s = adm_mirror_schedule_of(w->schedule_s);
	r->schedule_at = w->schedule_s != 0 && w->schedule_at >= 0 &&
	    w->schedule_at < 86400 && 86400 % r->schedule_s == 0 ?
	    w->schedule_at : -1;
	snprintf(r->state, sizeof(r->state), "%s", w->state);
	snprintf(r->err, sizeof(r->err), "%s", w->err);
	r->acked = w->acked;
	r->confirm = w->confirm;
	r->confirm_was_dest = w->confirm_was_dest;
	r->confirm_until = now_s() + RESYNC_CONFIRM_S;
	/* The next start is an interval from now (anchored: the next
	 * slot, not one now). */
	r->last_kick = sched_mark(r, sched_clock(ctx, r));
	rc = w->dest ? dst_run(ctx, r, w, av, w->acked == 0) :
	    src_run(ctx, r, w, av);
	if (rc != 0) {
		fl_err(ADM_SUB, "mirror %s: cannot start: %s", w->vol,
		    fl_strerror(rc));
		snprintf(r->err, sizeof(r->err), "cannot start: %s%s",
		    fl_strerror(rc), w->dest && rc == -EADDRINUSE ?
		    " (mirror_port in use; filerctl config set mirror_port N)" :
		    "");
		row_store(ctx, r);
		adm_event(ctx, w->vol, "service.failed", "mirror %s: cannot "
		    "start: %s", w->vol, fl_strerror(rc));
		free(r);
		return;
	}
	fl_info(ADM_SUB, "mirror %s %s %s: running (%s)", w->vol,
	    w->dest ? "from" : "to", w->rvol, w->state);
	r->next = svc.rels;
	svc.rels = r;
}

void adm_mirror_sync(struct adm_ctx *ctx)
{
	struct mrow *rows = NULL;
	size_t n = 0;

	if (!svc.up || rows_read(ctx, &rows, &n) != 0)
		return;
	svc.syncing = true;
	/* Stop what is gone or should not run. */
	for (struct mrel *r = svc.rels, *next; r != NULL; r = next) {
		bool keep = false;

		next = r->next;
		for (size_t i = 0; i < n; i++)
			if (rows[i].id == r->id && (should_run(&rows[i]) ||
			    (r->confirm && strcmp(rows[i].state,
			    "resyncing") == 0)))
				keep = true;
		if (!keep) {
			rel_stop(ctx, r);
			rel_unlink(r);
		}
	}
	for (size_t i = 0; i < n; i++)
		if (should_run(&rows[i]) && rel_find(rows[i].id) == NULL)
			rel_start(ctx, &rows[i]);
	free(rows);
	svc.syncing = false;
	lis_open();
}

void adm_mirror_stop_rel(struct adm_ctx *ctx, int64_t id)
{
	struct mrel *r = rel_find(id);

	if (r == NULL)
		return;
	rel_stop(ctx, r);
	rel_unlink(r);
}

static void tick_one(struct adm_ctx *ctx, struct mrel *r, uint64_t t);

void adm_mirror_restart_rel(struct adm_ctx *ctx, int64_t id)
{
	struct mrel *r = rel_find(id);

	if (r != NULL) {
		tick_one(ctx, r, now_s());	/* its state and acked_gen */
		rel_stop(ctx, r);
		rel_unlink(r);
	}
	adm_mirror_sync(ctx);
}

void adm_mirror_ckpt_path(const char *dir, const char *vol, char *out,
    size_t len)
{
	snprintf(out, len, "%s/%s.mirror-ckpt", dir, vol);
}

void adm_mirror_resync_done_path(const char *dir, const char *vol, char *out,
    size_t len)
{
	snprintf(out, len, "%s/%s.resync-done", dir, vol);
}

/* ------------------------------------------------------- schedules */

int adm_mirror_schedule_parse(const char *s, uint64_t *secs, int64_t *at)
{
	uint64_t n = 0, unit;
	const char *p = s;

	*at = -1;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	while (*p >= '0' && *p <= '9') {
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > ADM_MIRROR_SCHED_MAX)
			return -EINVAL;
		p++;
	}
	switch (*p) {
	case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	default: return -EINVAL;
	}
	if (n * unit < ADM_MIRROR_SCHED_MIN || n * unit > ADM_MIRROR_SCHED_MAX)
		return -EINVAL;
	if (p[1] == '@') {
		/* HH:MM, two digits each, UTC. */
		const char *q = p + 2;
		if (strlen(q) != 5 || q[2] != ':')
			return -EINVAL;
		for (int i = 0; i < 5; i++)
			if (i != 2 && (q[i] < '0' || q[i] > '9'))
				return -EINVAL;
		int hh = (q[0] - '0') * 10 + (q[1] - '0');
		int mm = (q[3] - '0') * 10 + (q[4] - '0');
		if (hh > 23 || mm > 59 || n * unit < 60 ||
		    86400 % (n * unit) != 0)
			return -EINVAL;
		*at = hh * 3600 + mm * 60;
	} else if (p[1] != '\0') {
		return -EINVAL;
	}
	*secs = n * unit;
	return 0;
}

uint64_t adm_mirror_schedule_slot(uint64_t t, uint64_t secs, int64_t at)
{
	uint64_t phase = (uint64_t)at % secs;

	if (t < phase)
		return 0;
	return t - (t - phase) % secs;
}

uint64_t adm_mirror_schedule_of(uint64_t stored)
{
	return stored != 0 ? stored : ADM_MIRROR_SCHED_DEFAULT;
}

void adm_mirror_schedule_fmt(uint64_t secs, int64_t at, char *buf,
    size_t len)
{
	static const struct { uint64_t s; char u; } units[] = {
		{ 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' },
	};
	size_t off = 0;
	uint64_t secs0 = secs;

	buf[0] = '\0';
	for (size_t i = 0; i < 4 && secs > 0 && off < len; i++) {
		if (secs < units[i].s)
			continue;
		int n = snprintf(buf + off, len - off, "%llu%c",
		    (unsigned long long)(secs / units[i].s), units[i].u);
		if (n < 0)
			break;
		off += (size_t)n;
		secs %= units[i].s;
	}
	if (at >= 0 && secs0 > 0 && off < len)
		snprintf(buf + off, len - off, "@%02d:%02d", (int)(at / 3600),
		    (int)(at % 3600 / 60));
}

/* ------------------------------------------------------- status, lag */

static void seen_note(struct mrel *r, uint64_t gen, uint64_t t)
{
	for (size_t i = 0; i < r->nseen; i++)
		if (r->seen[i].gen == gen)
			return;
	r->seen[r->seen_next].gen = gen;
	r->seen[r->seen_next].t = t;
	r->seen_next = (r->seen_next + 1) % SEEN_MAX;
	if (r->nseen < SEEN_MAX)
		r->nseen++;
}

/* Seconds since the oldest generation the destination lacks came to be
 * (as far as the ticks saw it); 0 when nothing newer is unacknowledged. */
static uint64_t lag_seconds(const struct mrel *r, uint64_t acked,
    uint64_t source_gen, uint64_t t)
{
	uint64_t since = t;

	if (source_gen <= acked)
		return 0;
	for (size_t i = 0; i < r->nseen; i++)
		if (r->seen[i].gen > acked && r->seen[i].t < since)
			since = r->seen[i].t;
	return t - since;
}

bool adm_mirror_rel_status(struct adm_ctx *ctx, int64_t id,
    struct adm_mirror_status *st)
{
	struct mrel *r = rel_find(id);
	uint64_t t = now_s();

	memset(st, 0, sizeof(*st));
	if (r == NULL)
		return false;
	st->running = true;
	if (r->src != NULL) {
		struct mir_source_stats s;

		mir_source_stats(r->src, &s);
		seen_note(r, s.source_gen, t);
		snprintf(st->state, sizeof(st->state), "%s",
		    r->confirm ? "resyncing" :
		    s.quiesce_requested ? "quiesced" :
		    s.state == MIR_UNINITIALIZED ? "transferring" :
		    mir_state_name(s.state));
		st->acked_gen = s.acked_gen;
		st->source_gen = s.source_gen;
		st->lag_cps = s.source_gen > s.acked_gen ?
		    s.source_gen - s.acked_gen : 0;
		st->lag_s = lag_seconds(r, s.acked_gen, s.source_gen, t);
		st->backlog_bytes = s.backlog_bytes;
		st->bytes_out = s.bytes_out;
		st->blocks_sent = s.blocks_sent_cp + s.blocks_sent_walk;
		st->connects = s.connects;
		st->link_losses = s.link_losses;
		st->refusals = s.refusals;
		st->retry_delay_ms = s.retry_delay_ms;
		st->transfers = s.transfers_cp + s.transfers_walk;
		st->next_run_s = -1;
		if (r->mode == MIR_ASYNC && !s.quiesce_requested) {
			uint64_t due = r->last_kick + r->schedule_s;
			uint64_t now = sched_clock(ctx, r);
			st->next_run_s = due > now ? (int64_t)(due - now) : 0;
		}
		st->xfer_active = s.walk_active;
		st->xfer_bytes = s.walk_bytes_done;
		st->xfer_total = s.walk_bytes_total;
		st->xfer_rate = s.walk_rate_bps;
		st->xfer_eta = s.walk_eta_s == UINT64_MAX ? -1 :
		    (int64_t)s.walk_eta_s;
		st->resumes = s.baseline_resumes;
		st->blocks_not_resent = s.blocks_not_resent;
		snprintf(st->last_error, sizeof(st->last_error), "%s",
		    s.last_error);
		st->last_error_time = s.last_error_time;
		snprintf(st->resolved_error, sizeof(st->resolved_error), "%s",
		    s.resolved_error);
		st->resolved_time = s.resolved_time;
		if (r->confirm && st->last_error_time == 0)
			st->last_error_time = r->confirm_until -
			    RESYNC_CONFIRM_S;
		if (r->confirm)
			snprintf(st->last_error, sizeof(st->last_error),
			    "%.80s%s%.100s", r->err, s.last_error[0] != '\0' ?
			    ": " : "", s.last_error);
	} else if (r->dst != NULL) {
		struct mir_dest_stats s;

		mir_dest_stats(r->dst, &s);
		bool waiting = r->baseline && s.transfers == 0;

		/* After the baseline, until the tick serves the replica. */
		snprintf(st->state, sizeof(st->state), "%s", waiting ?
		    "uninitialized" : r->baseline ? "transferring" :
		    mir_state_name(s.state));
		st->acked_gen = r->baseline ? 0 : s.gen;
		st->transfers = s.transfers;
		st->blocks_received = s.blocks_received;
		st->deltas_refused = s.deltas_refused;
		st->silent_given_up = s.silent_given_up;
		if (s.transfers > 0) {
			st->apply_us_mean = (s.verify_ns + s.write_ns +
			    s.flush_ns + s.advance_ns) / 1000 / s.transfers;
			st->flush_us_mean = s.flush_ns / 1000 / s.transfers;
		}
		st->port = r->port;
		st->resumes = s.baseline_resumes;
		st->ckpt_blocks = s.ckpt_blocks;
		snprintf(st->last_error, sizeof(st->last_error), "%s",
		    s.last_error);
		st->last_error_time = s.last_error_time;
		snprintf(st->resolved_error, sizeof(st->resolved_error), "%s",
		    s.resolved_error);
		st->resolved_time = s.resolved_time;
	}
	return true;
}

int adm_mirror_quiesce(struct adm_ctx *ctx, int64_t id, bool on)
{
	struct mrel *r = rel_find(id);

	if (r == NULL || r->src == NULL)
		return -ENOENT;
	if (on) {
		mir_source_quiesce(r->src);
		state_set(ctx, r, "quiesced", "by the administrator");
	} else {
		mir_source_resume(r->src);
		mir_source_kick(r->src);
		state_set(ctx, r, "catching-up", "resumed");
	}
	return 0;
}

int adm_mirror_break_dest(struct adm_ctx *ctx, int64_t id, char *why,
    size_t whylen)
{
	struct mrel *r = rel_find(id);
	struct adm_vol *av;
	wafl_vol_t *w = NULL;
	uint64_t gen;
	int rc;

	if (r != NULL && r->confirm) {
		/* A row a crash left resyncing, not confirmed yet
		 * (resync_recover): the administrator ends the wait. */
		rel_stop(ctx, r);
		state_set(ctx, r, "broken-off", "by the administrator");
		(void)adm_mirror_park(ctx, r->vol, "broken off by the "
		    "administrator", NULL, NULL);
		rel_unlink(r);
		return 0;
	}
	if (r == NULL || r->dst == NULL) {
		snprintf(why, whylen, "the relationship does not run here (is "
		    "the volume online?)");
		return -ENOENT;
	}
	av = adm_vol_find(ctx, r->vol);
	if (av == NULL) {
		snprintf(why, whylen, "volume %s is offline", r->vol);
		return -ENOENT;
	}
	w = vol_detach(ctx, av);
	if (w != NULL && !r->replica)
		(void)wafl_unmount(w);	/* our read-only mount */
	r->replica = false;
	/* A fresh NVLOG: the old one belongs to the file system the
	 * baseline replaced. */
	(void)unlink(av->nvlog);
	w = NULL;
	gen = 0;
	{
		struct mir_dest_stats s;

		mir_dest_stats(r->dst, &s);
		gen = s.gen;
	}
	rc = mir_dest_break(r->dst, av->nvlog, &w);
	mir_dest_stop(r->dst);
	r->dst = NULL;
	lis_put();
	if (rc != 0) {
		snprintf(why, whylen, "cannot mount the volume writable: %s%s",
		    fl_strerror(rc), rc == -ENOENT ? " (no generation was "
		    "received yet)" : "");
		(void)adm_mirror_make_readonly(ctx, r->vol);
		/* keep running as a destination */
		rel_unlink(r);
		adm_mirror_sync(ctx);
		return rc;
	}
	/* The row first: the exports read it (read-only while a
	 * destination). */
	r->acked = gen;
	state_set(ctx, r, "broken-off", "the volume is writable");
	vol_attach(ctx, av, w);
	rel_unlink(r);
	return 0;
}

int adm_mirror_park(struct adm_ctx *ctx, const char *vol, const char *why,
    uint64_t *parked, uint64_t *newest)
{
	struct adm_vol *av = adm_vol_find(ctx, vol);
	uint64_t n_parked = 0, top = 0;
	struct wafl_stats ws;
	int rc;

	if (parked != NULL)
		*parked = 0;
	if (newest != NULL)
		*newest = 0;
	if (av == NULL || av->wafl == NULL)
		return 0;
	wafl_get_stats(av->wafl, &ws);
	if (ws.readonly)
		return 0;	/* no CPs (a row a crash left resyncing that
				   the start could not decide): later */
	rc = mir_source_park(av->wafl, &n_parked, &top);
	if (rc != 0) {
		fl_warn(ADM_SUB, "mirror %s: %s: the roots held for the peer "
		    "stay held: %s", vol, why, fl_strerror(rc));
		adm_event(ctx, vol, "mirror.error", "mirror %s: %s: the roots "
		    "held for the peer could not become snapshots "
		    "mirror.base.GEN (%s): they stay held, and every block "
		    "the volume frees waits behind them (delete a snapshot, "
		    "which tries again, or mirror delete)", vol, why,
		    fl_strerror(rc));
		return rc;
	}
	if (n_parked == 0)
		return 0;
	adm_event(ctx, vol, "mirror.fallback", "mirror %s: %s: %llu root%s "
	    "held for the peer %s snapshot%s mirror.base.GEN now (the newest "
	    "mirror.base.%llu), and the holds are released", vol, why,
	    (unsigned long long)n_parked, n_parked == 1 ? "" : "s",
	    n_parked == 1 ? "is" : "are", n_parked == 1 ? "" : "s",
	    (unsigned long long)top);
	if (parked != NULL)
		*parked = n_parked;
	if (newest != NULL)
		*newest = top;
	return 0;
}

/*
 * Every broken-off relationship here (of volume vol; NULL: every
 * volume) whose volume still holds roots: parked (adm_mirror_park).  A
 * break parks them at once; this is for holds from before that, or from
 * a crash between the source's stop and its park, which would otherwise
 * keep every block freed since pending until mirror delete.  Either
 * direction: no source or destination runs for a broken-off row, and
 * one relationship per volume (a destination's row keeps a hold only
 * if it was broken off while a crash's resync was being confirmed, or
 * when a resync's winner could not keep the common root as a snapshot).
 */
static void park_broken(struct adm_ctx *ctx, const char *vol,
    const char *why)
{
	struct mrow *rows = NULL;
	size_t n = 0;

	if (rows_read(ctx, &rows, &n) != 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (strcmp(rows[i].state, "broken-off") == 0 &&
		    (vol == NULL || strcmp(rows[i].vol, vol) == 0))
			(void)adm_mirror_park(ctx, rows[i].vol, why, NULL,
			    NULL);
	free(rows);
}

bool adm_mirror_resync_running(int64_t id)
{
	for (const struct rjob *j = svc.jobs; j != NULL; j = j->next)
		if (j->id == id)
			return true;
	return false;
}

const char *adm_mirror_fs_owner(const char *vol)
{
	for (const struct rjob *j = svc.jobs; j != NULL; j = j->next)
		if (j->t_side && strcmp(j->vol, vol) == 0)
			return "a mirror resync is overwriting it (see: filerctl "
			    "mirror status)";
	for (const struct mrel *r = svc.rels; r != NULL; r = r->next)
		if (r->dst != NULL && strcmp(r->vol, vol) == 0)
			return "it is a mirror destination waiting for its "
			    "baseline (see: filerctl mirror status)";
	return "a mirror is changing it; try again";
}

void adm_mirror_snapshot_deleted(struct adm_ctx *ctx, const char *vol)
{
	/* Not before mir_start, which parks what it finds. */
	if (svc.up)
		park_broken(ctx, vol, "a snapshot was deleted");
}

/* ------------------------------------------------------------ resync */

/*
 * `mirror resync VOL [--reverse]`, run on both filerds of a broken-off
 * relationship (docs/mirror.md, "Resync").  Without --reverse the
 * destination's volume is overwritten (T) by the source's (W); with it,
 * the source's volume is overwritten by the broken-off destination's,
 * and the relationship turns around.  Whatever the roles, the filerd
 * whose row is the source connects to its peer and the other listens on
 * mirror_port; the source's paces its side of the connection at the
 * row's throttle (what it sends as T, what it reads as W).  T's volume
 * leaves the exports at once (its admin consented: its active data is
 * rolled back, kept on W as a snapshot).
 * The tick finishes the job: both rows go to 'catching-up' (directions
 * swapped for --reverse) and run again, T as the destination.  filerd's
 * stop and the volume going down end it too (rjob_end): finished the
 * same way if it has finished, else interrupted.
 */
int adm_mirror_resync(struct adm_ctx *ctx, int64_t id, bool reverse,
    char *why, size_t whylen)
{
	struct mrow *rows = NULL, *w = NULL;
	size_t n = 0;
	struct adm_vol *av;
	struct rjob *j;
	uint8_t key[ADM_PEER_KEY_MAX];
	int rc;

	for (j = svc.jobs; j != NULL; j = j->next)
		if (j->id == id) {
			snprintf(why, whylen, "a resync runs already");
			return -EBUSY;
		}
	rc = rows_read(ctx, &rows, &n);
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (rows[i].id == id)
			w = &rows[i];
	if (rc != 0 || w == NULL) {
		snprintf(why, whylen, "no such relationship");
		rc = -ENOENT;
		goto out;
	}
	if (strcmp(w->state, "broken-off") != 0) {
		snprintf(why, whylen, "the relationship is %s here; break it "
		    "off on both filerds first", w->state);
		rc = -EINVAL;
		goto out;
	}
	av = adm_vol_find(ctx, w->vol);
	if (av == NULL || av->raid == NULL || av->wafl == NULL) {
		snprintf(why, whylen, "volume %s is offline", w->vol);
		rc = -ENOENT;
		goto out;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	j->id = id;
	snprintf(j->vol, sizeof(j->vol), "%s", w->vol);
	j->dest = w->dest;
	j->reverse = reverse;
	j->t_side = w->dest != reverse;
	j->throttle_bps = w->throttle_bps;
	struct mir_resync_opts o = {
		.host = w->dest ? "0.0.0.0" : w->host,
		.port = w->dest ? (uint16_t)adm_setting_u64(ctx,
		    "mirror_port") : w->port,
		.listen = w->dest,
		.overwrite = j->t_side,
		.spool_dir = w->dir,
	};
	char done[ADM_PATH_MAX + ADM_NAME_MAX + 16];
	adm_mirror_resync_done_path(w->dir, w->vol, done, sizeof(done));
	if (j->t_side)
		o.done_path = done;
	/* The throttle is the source row's: the relationship's rate on the
	 * link whichever way the data goes.  This filerd paces its side:
	 * as T it sends the bulk, as W it reads it. */
	if (!w->dest && j->t_side)
		o.throttle_send_bps = w->throttle_bps;
	else if (!w->dest)
		o.throttle_recv_bps = w->throttle_bps;
	/* and the rate travels with the source's role: T hands it to W
	 * (RS_BEGIN), whose row takes it when --reverse makes it the
	 * source (rjob_finish). */
	if (!w->dest && j->t_side)
		o.rel_throttle_bps = w->throttle_bps;
	o.key_len = hex_decode(w->psk, key, sizeof(key));
	o.key = key;
	if (w->dest)
		rel_id(w->rvol, w->vol, o.rel_id);
	else
		rel_id(w->vol, w->rvol, o.rel_id);
	if (w->dest && (rc = lis_get(ctx, &o.listener)) != 0) {
		snprintf(why, whylen, "cannot listen on mirror_port: %s",
		    fl_strerror(rc));
		free(j);
		goto out;
	}
	wafl_vol_t *v = j->t_side ? vol_detach(ctx, av) : av->wafl;
	rc = mir_resync_start(v, av->raid, av->nvlog, &o, &j->job);
	lis_open();
	if (rc != 0) {
		if (j->t_side)
			vol_attach(ctx, av, v);
		lis_put();
		snprintf(why, whylen, "cannot start: %s", fl_strerror(rc));
		free(j);
		goto out;
	}
	j->next = svc.jobs;
	svc.jobs = j;
	(void)adm_db_exec(ctx->db, "UPDATE mirrors SET state = 'resyncing', "
	    "last_error = '' WHERE id = ?", "i", id);
	adm_event(ctx, w->vol, "mirror.state", "mirror %s %s %s: broken-off "
	    "-> resyncing: %s", w->vol, w->dest ? "from" : "to", w->rvol,
	    j->t_side ? "this side is overwritten; its data since the common "
	    "generation goes to the peer as a snapshot" : "the peer's data "
	    "since the common generation comes here as a snapshot");
out:
	free(rows);
	return rc;
}

static void rjob_finish(struct adm_ctx *ctx, struct rjob *j, int rc,
    const struct mir_resync_result *res)
{
	struct adm_vol *av = adm_vol_find(ctx, j->vol);
	wafl_vol_t *v = j->t_side ? mir_resync_volume(j->job) : NULL;

	mir_resync_stop(j->job);
	lis_put();
	j->job = NULL;
	if (rc != 0) {
		if (v != NULL && av != NULL)
			vol_attach(ctx, av, v);	/* not rolled back */
		else if (j->t_side && av != NULL && av->raid != NULL) {
			struct wafl_mount_opts mo = { .nvlog_path = av->nvlog };

			adm_mount_opts(ctx, &mo);
			if (wafl_mount(av->raid, &mo, &v) == 0)
				vol_attach(ctx, av, v);
		}
		(void)adm_db_exec(ctx->db, "UPDATE mirrors SET state = "
		    "'broken-off', last_error = ? WHERE id = ?", "si",
		    res->error, j->id);
		adm_event(ctx, j->vol, "mirror.error", "mirror %s: resync "
		    "failed: %s", j->vol, res->error[0] != '\0' ? res->error :
		    fl_strerror(rc));
		/* Broken off again, nothing runs on the volume: a hold the
		 * session left (a winner that kept the common root for a
		 * retry by its hold, its snapshot refused) would keep every
		 * block freed since pending.  A retry finds the root as
		 * the snapshot just as well. */
		(void)adm_mirror_park(ctx, j->vol, "resync failed", NULL,
		    NULL);
		return;
	}
	/* Both sides continue from the common generation: T as the
	 * destination.  The throttle is the source row's: after --reverse
	 * W's row has the rate T's row had (T sent it in RS_BEGIN) and T's,
	 * now the destination's, none.  Direction and rate change in one
	 * statement, so that no state of the row a crash can leave says
	 * source without the rate (or destination with it). */
	bool dest = j->t_side;
	uint64_t moved = !j->reverse ? 0 : dest ? j->throttle_bps :
	    res->rel_throttle_bps;
	(void)adm_db_exec(ctx->db, "UPDATE mirrors SET state = 'catching-up', "
	    "direction = ?, acked_gen = ?, last_error = '', throttle_bps = "
	    "CASE WHEN ? THEN ? ELSE throttle_bps END WHERE id = ?", "siiii",
	    dest ? "destination" : "source", (int64_t)res->base_gen,
	    (int64_t)j->reverse, (int64_t)(dest ? 0 : moved), j->id);
	char thr[96] = "";
	if (moved != 0) {
		char sz[32];

		adm_fmt_size(moved, sz, sizeof(sz));
		snprintf(thr, sizeof(thr), "; throttle %s/s, %s", sz,
		    dest ? "now the peer's" : "as the peer had it");
	}
	if (j->t_side)
		adm_event(ctx, j->vol, "mirror.resync", "mirror %s: resync done "
		    "from common generation %llu: rolled back, this side's "
		    "data is kept on the peer as %u snapshot%s of generation "
		    "%llu (its active tree and each snapshot made here since) "
		    "(%llu blocks sent)%s", j->vol,
		    (unsigned long long)res->base_gen, res->snaps,
		    res->snaps == 1 ? "" : "s",
		    (unsigned long long)res->snap_gen,
		    (unsigned long long)res->blocks_sent, thr);
	else
		adm_event(ctx, j->vol, "mirror.resync", "mirror %s: resync done "
		    "from common generation %llu: the peer's data is kept here "
		    "as snapshot%s %s (%llu blocks received)%s", j->vol,
		    (unsigned long long)res->base_gen,
		    res->snaps > 1 ? "s" : "", res->snap_names[0] != '\0' ?
		    res->snap_names : res->snap_name,
		    (unsigned long long)res->blocks_received, thr);
	if (j->t_side && av != NULL)
		(void)adm_mirror_make_readonly(ctx, j->vol);
}

/*
 * End job j, which leaves svc.jobs because filerd no longer runs it here
 * (filerd stops, or j's volume goes down); j is freed.  A job that has
 * finished is finished as the tick finishes it (rjob_finish): both sides
 * may already have switched, the peer continuing from the common
 * generation, and this row must say so too.  One still running is asked
 * to stop and waited for (mir_resync_cancel); if it finished all the
 * same, likewise.  Only one the stop cut short (T's volume, unless
 * rolled back, is unmounted) goes back to broken-off, "resync
 * interrupted: why": it can be run again.  The relationship is not started here: filerd's next start
 * runs it from the row.
 */
static void rjob_end(struct adm_ctx *ctx, struct rjob *j, const char *why)
{
	struct mir_resync_result res;
	char err[192];
	int rc = mir_resync_wait(j->job, 0, &res);
	bool cut = false;

	if (rc == -EINPROGRESS) {
		/* A half past its last exchange (W after RS_DONE went out,
		 * T rolling back) finishes anyway: its result decides. */
		mir_resync_cancel(j->job);
		rc = mir_resync_wait(j->job, 0, &res);
		cut = rc != 0;
	}
	if (!cut) {
		rjob_finish(ctx, j, rc, &res);
	} else {
		mir_resync_stop(j->job);	/* unmounts T's volume */
		j->job = NULL;
		lis_put();
		snprintf(err, sizeof(err), "resync interrupted: %s", why);
		(void)adm_db_exec(ctx->db, "UPDATE mirrors SET state = "
		    "'broken-off', last_error = ? WHERE id = ?", "si", err,
		    j->id);
		adm_event(ctx, j->vol, "mirror.state", "mirror %s: resyncing "
		    "-> broken-off: %s; run mirror resync again", j->vol, why);
	}
	free(j);
}

static void resync_tick(struct adm_ctx *ctx)
{
	for (struct rjob **pp = &svc.jobs; *pp != NULL;) {
		struct rjob *j = *pp;
		struct mir_resync_result res;
		int rc = mir_resync_wait(j->job, 0, &res);

		if (rc == -EINPROGRESS) {
			pp = &j->next;
			continue;
		}
		if (svc.crash_at_done) {
			/* Tests: a crash after the half finished, before
			 * its result is stored (resync_recover). */
			fl_warn(ADM_SUB, "mirror %s: resync half finished (%s): "
			    "killing filerd before it is recorded "
			    "(FILER_RESYNC_CRASH_AT_DONE)", j->vol,
			    fl_strerror(rc));
			(void)raise(SIGKILL);
		}
		*pp = j->next;
		rjob_finish(ctx, j, rc, &res);
		free(j);
		adm_mirror_sync(ctx);
	}
}

/* ------------------------------------------------------------ the tick */

static void confirm_check(struct adm_ctx *ctx, struct mrel *r);
static void confirm_expire(struct adm_ctx *ctx, struct mrel *r,
    const char *why);

static void tick_one(struct adm_ctx *ctx, struct mrel *r, uint64_t t)
{
	const char *st = NULL;
	char err[192] = "";
	uint64_t acked = r->acked;
	bool store = false;

	if (r->confirm)
		confirm_check(ctx, r);
	if (r->confirm)
		return;		/* the row stays resyncing meanwhile */
	if (r->src != NULL) {
		struct mir_source_stats s;

		mir_source_stats(r->src, &s);
		seen_note(r, s.source_gen, t);
		/* The administrator's quiesce stands until resume: the
		 * state may still be the one it had before. */
		if (s.quiesce_requested)
			st = "quiesced";
		else if (s.state != MIR_UNINITIALIZED &&
		    s.state != MIR_QUIESCED)
			st = mir_state_name(s.state);
		if (s.acked_gen > acked)
			acked = s.acked_gen;
		snprintf(err, sizeof(err), "%s", s.last_error);
		if (s.fallbacks > r->fallbacks) {
			r->fallbacks = s.fallbacks;
			adm_event(ctx, r->vol, "mirror.fallback", "mirror %s: "
			    "destination away too long: its root %llu is "
			    "snapshot mirror.base.%llu, the hold is released",
			    r->vol, (unsigned long long)s.base_snap_gen,
			    (unsigned long long)s.base_snap_gen);
		}
		/* Async: a transfer by birth generation an interval after
		 * the last (anchored: at each slot, once however late the
		 * tick). */
		uint64_t now = sched_clock(ctx, r);
		if (r->mode == MIR_ASYNC && !s.quiesce_requested &&
		    now >= r->last_kick + r->schedule_s) {
			mir_source_kick(r->src);
			r->last_kick = sched_mark(r, now);
		}
	} else if (r->dst != NULL) {
		struct mir_dest_stats s;

		mir_dest_stats(r->dst, &s);
		/* Before its baseline the volume holds a file system of its
		 * own: nothing of the source yet. */
		bool waiting = r->baseline && s.transfers == 0;

		if (!waiting)
			st = mir_state_name(s.state);
		if (!waiting)
			acked = s.gen;
		snprintf(err, sizeof(err), "%s", s.last_error);
		if (r->baseline && !r->replica &&
		    s.state == MIR_TRANSFERRING) {
			/* A baseline began (it wiped the fsinfo slots) and
			 * writes over the disks the volume's read-only mount
			 * reads: until the replica is served the volume
			 * shows no file system (exports first). */
			struct adm_vol *av = adm_vol_find(ctx, r->vol);

			if (av != NULL && vol_drop(ctx, av))
				fl_info(ADM_SUB, "volume %s: a baseline "
				    "arrives; its old file system is no "
				    "longer shown", r->vol);
		}
		if (r->baseline && !waiting && s.gen > 0 &&
		    s.state == MIR_IN_SYNC) {
			/* The baseline arrived: serve the replica, and take
			 * no other baseline while it is exported. */
			struct mrow *rows = NULL;
			size_t n = 0;

			if (rows_read(ctx, &rows, &n) == 0) {
				for (size_t i = 0; i < n; i++) {
					struct adm_vol *av;

					if (rows[i].id != r->id)
						continue;
					av = adm_vol_find(ctx, r->vol);
					mir_dest_stop(r->dst);
					r->dst = NULL;
					if (av != NULL && dst_run(ctx, r,
					    &rows[i], av, false) != 0)
						fl_err(ADM_SUB, "mirror %s: "
						    "cannot restart after the "
						    "baseline", r->vol);
				}
				free(rows);
			}
		}
	}
	if (acked != r->acked) {
		r->acked = acked;
		store = true;
	}
	if (strcmp(err, r->err) != 0) {
		if (err[0] != '\0')
			adm_event(ctx, r->vol, "mirror.error", "mirror %s: %s",
			    r->vol, err);
		else
			adm_event(ctx, r->vol, "mirror.resolved", "mirror %s: "
			    "resolved: %s", r->vol, r->err);
		snprintf(r->err, sizeof(r->err), "%s", err);
		store = true;
	}
	if (st != NULL && strcmp(st, r->state) != 0)
		state_set(ctx, r, st, NULL);	/* stores the row too */
	else if (store)
		row_store(ctx, r);
}

void adm_mirror_tick(struct adm_ctx *ctx)
{
	uint64_t t = now_s(), asked;

	/* The baselines that asked before this tick see it done. */
	pthread_mutex_lock(&wipe.mu);
	asked = wipe.asked;
	pthread_mutex_unlock(&wipe.mu);
	if (svc.up) {
		resync_tick(ctx);
		for (struct mrel *r = svc.rels, *next; r != NULL; r = next) {
			next = r->next;
			tick_one(ctx, r, t);
			if (r->confirm && t >= r->confirm_until)
				confirm_expire(ctx, r, "cut by a stop or "
				    "crash, and the peer did not take it up "
				    "as the destination in time");
		}
	}
	pthread_mutex_lock(&wipe.mu);
	if (wipe.done < asked) {
		wipe.done = asked;
		pthread_cond_broadcast(&wipe.cv);
	}
	pthread_mutex_unlock(&wipe.mu);
}

/* ------------------------------------------- a resync a crash cut */

/*
 * A row left resyncing by a crash (or a stop that could not wait for
 * its half) at this start.  docs/mirror.md, "Resync after a crash", has
 * the table.  What is durable decides:
 *
 *   - T's roll back (mir_resync_rolled_back: the volume's newest root is
 *     the common generation G, as the roll back wrote it) comes after
 *     RS_DONE, which W sends only once T's data is durable on W (M7):
 *     the resync had finished.  Finished here as rjob_finish finishes
 *     it: catching-up, a destination, acknowledged G.
 *   - Otherwise this side is W, or T cut short before its roll back; the
 *     volume alone cannot say whether the peer went on.  The peer can:
 *     this side runs as the source it would be (rel_start, confirm; no
 *     baseline), its row still resyncing, and the first session the
 *     peer's STATUS begins (a destination of this relationship serving
 *     a generation retained here, which only a T that finished the
 *     resync runs) finishes it (confirm_check).  A peer that answers no
 *     such STATUS by RESYNC_CONFIRM_S leaves the row broken-off, as
 *     before, saying what to do.
 */
static void rec_broken(struct adm_ctx *ctx, const struct mrow *w,
    const char *why)
{
	char err[192];

	snprintf(err, sizeof(err), "resync interrupted: %s", why);
	(void)adm_db_exec(ctx->db, "UPDATE mirrors SET state = 'broken-off', "
	    "last_error = ? WHERE id = ?", "si", err, w->id);
	adm_event(ctx, w->vol, "mirror.state", "mirror %s: resyncing -> "
	    "broken-off: %s", w->vol, err);
}

/* T's roll back to g is durable (how: what): the resync had
 * finished. */
static void rec_t_done(struct adm_ctx *ctx, const struct mrow *w,
    struct adm_vol *av, uint64_t g, const char *how)
{
	char path[ADM_PATH_MAX + ADM_NAME_MAX + 16];

	/* As after the roll back: the NVLOG's records were not G's (a
	 * crash may have come before the resync removed it), and the
	 * record of RS_DONE has done its part. */
	if (av->nvlog[0] != '\0')
		(void)unlink(av->nvlog);
	adm_mirror_resync_done_path(w->dir, w->vol, path, sizeof(path));
	(void)unlink(path);
	(void)adm_db_exec(ctx->db, "UPDATE mirrors SET state = 'catching-up', "
	    "direction = 'destination', acked_gen = ?, last_error = '', "
	    "throttle_bps = 0 WHERE id = ?", "ii", (int64_t)g, w->id);
	adm_event(ctx, w->vol, "mirror.resync", "mirror %s: resync done from "
	    "common generation %llu (found at start: %s; this side's data "
	    "since is kept on the peer as snapshots resync.*)", w->vol,
	    (unsigned long long)g, how);
}

/* The volume mounted writable again (it was mounted read-only at start:
 * adm_mirror_is_dest). */
static int vol_remount_rw(struct adm_ctx *ctx, struct adm_vol *av)
{
	struct wafl_mount_opts mo = { .nvlog_path = av->nvlog };
	wafl_vol_t *v;
	int rc;

	(void)vol_drop(ctx, av);
	adm_mount_opts(ctx, &mo);
	rc = wafl_mount(av->raid, &mo, &v);
	if (rc == 0)
		vol_attach(ctx, av, v);
	return rc;
}

/*
 * T's record that RS_DONE came, left by a crash before its roll back:
 * W holds T's data, so the roll back is finished here
 * (mir_resync_done_rollback) and the volume mounted read-only again.
 * As mir_resync_done_rollback: 1 (*g), 0 (no record: nothing changed)
 * or an error.
 */
static int rec_t_record(struct adm_ctx *ctx, const struct mrow *w,
    struct adm_vol *av, uint64_t *g)
{
	char path[ADM_PATH_MAX + ADM_NAME_MAX + 16];
	uint8_t id[MIR_REL_ID_SIZE];
	wafl_vol_t *v;
	int rc;

	adm_mirror_resync_done_path(w->dir, w->vol, path, sizeof(path));
	if (access(path, F_OK) != 0)
		return 0;
	if (w->dest)		/* the session's id, as adm_mirror_resync */
		rel_id(w->rvol, w->vol, id);
	else
		rel_id(w->vol, w->rvol, id);
	(void)vol_drop(ctx, av);
	rc = mir_resync_done_rollback(av->raid, av->nvlog, path, id, g);
	if (rc < 0) {
		(void)vol_remount_rw(ctx, av);	/* as it was (M2) */
	} else {
		struct wafl_mount_opts mo = { .readonly = true };

		adm_mount_opts(ctx, &mo);
		if (wafl_mount(av->raid, &mo, &v) == 0)
			vol_attach(ctx, av, v);
	}
	return rc;
}

static void rec_confirm(struct adm_ctx *ctx, const struct mrow *w,
    struct adm_vol *av)
{
	struct mrow sw = *w;
	struct mrel *r;
	char why[160];
	int rc = vol_remount_rw(ctx, av);

	if (rc != 0) {
		snprintf(why, sizeof(why), "cannot mount the volume writable at "
		    "start: %s", fl_strerror(rc));
		rec_broken(ctx, w, why);
		return;
	}
	/* The source it becomes: this volume to the peer's, at the peer's
	 * address; the rate stays with a source's row (after --reverse the
	 * peer sent it in the resync, which no row here has kept). */
	sw.dest = false;
	sw.confirm = true;
	sw.confirm_was_dest = w->dest;
	if (w->dest)
		sw.throttle_bps = 0;
	rel_start(ctx, &sw);
	r = rel_find(w->id);
	if (r == NULL) {
		rec_broken(ctx, w, "filerd stopped or crashed, and the source "
		    "that would confirm it with the peer cannot start");
		return;
	}
	snprintf(r->err, sizeof(r->err), "resync cut by a stop or crash: "
	    "asking the peer whether it finished");
	row_store(ctx, r);
	adm_event(ctx, w->vol, "mirror.state", "mirror %s: resyncing: this "
	    "side's half was cut by a stop or crash before its result was "
	    "recorded; finished if the peer serves the common generation as "
	    "the destination within %u s, else broken-off", w->vol,
	    RESYNC_CONFIRM_S);
}

static void resync_recover(struct adm_ctx *ctx)
{
	struct mrow *rows = NULL;
	size_t n = 0;

	if (rows_read(ctx, &rows, &n) != 0) {
		(void)adm_db_exec(ctx->db, "UPDATE mirrors SET state = "
		    "'broken-off', last_error = 'resync interrupted' WHERE "
		    "state = 'resyncing'", NULL);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct mrow *w = &rows[i];
		struct adm_vol *av;
		uint64_t g = 0;
		int rb;

		if (strcmp(w->state, "resyncing") != 0)
			continue;
		av = adm_vol_find(ctx, w->vol);
		if (av == NULL || av->raid == NULL || av->wafl == NULL) {
			rec_broken(ctx, w, "the volume was offline at start");
			continue;
		}
		const char *how = "this side was rolled back to it before "
		    "filerd could record it";
		rb = mir_resync_rolled_back(av->wafl, &g);
		if (rb == 0) {
			rb = rec_t_record(ctx, w, av, &g);
			how = "RS_DONE had come, as this side recorded, and the "
			    "roll back to it is finished now";
		}
		if (rb > 0)
			rec_t_done(ctx, w, av, g, how);
		else if (rb == 0)
			rec_confirm(ctx, w, av);
		else
			rec_broken(ctx, w, "cannot read the volume's root, or "
			    "roll it back as T's record of RS_DONE says (see "
			    "the log)");
	}
	free(rows);
}

/*
 * A row left resyncing, run as the source (rec_confirm): the first
 * session the peer's STATUS begins finishes the resync (r->confirm
 * goes).
 */
static void confirm_check(struct adm_ctx *ctx, struct mrel *r)
{
	struct mir_source_stats s;

	mir_source_stats(r->src, &s);
	if (s.sessions == 0)
		return;
	(void)adm_db_exec(ctx->db, "UPDATE mirrors SET state = 'catching-up', "
	    "direction = 'source', acked_gen = ?, last_error = '' WHERE id = ?",
	    "ii", (int64_t)s.acked_gen, r->id);
	r->confirm = false;
	r->acked = s.acked_gen;
	r->err[0] = '\0';
	snprintf(r->state, sizeof(r->state), "catching-up");
	adm_event(ctx, r->vol, "mirror.resync", "mirror %s: resync done from "
	    "common generation %llu (confirmed at start: the peer serves it "
	    "as the destination; this side is the source and keeps the "
	    "peer's data as snapshots resync.*)%s", r->vol,
	    (unsigned long long)s.acked_gen, r->confirm_was_dest ?
	    "; the relationship's throttle, which the peer sent in the "
	    "resync, was not recorded: set it here again if it had one "
	    "(mirror modify --throttle)" : "");
	exports_reload(ctx);	/* a source's export rules now */
}

/* Past the deadline with no such session: broken-off, as before (a
 * resync the peer did not finish either; else the admin must say). r is
 * freed. */
static void confirm_expire(struct adm_ctx *ctx, struct mrel *r,
    const char *why)
{
	struct mir_source_stats s;
	char err[192];

	mir_source_stats(r->src, &s);
	snprintf(err, sizeof(err), "resync interrupted: %s (%.60s)", why,
	    s.last_error[0] != '\0' ? s.last_error : "no answer");
	rel_stop(ctx, r);
	(void)adm_db_exec(ctx->db, "UPDATE mirrors SET state = 'broken-off', "
	    "last_error = ? WHERE id = ?", "si", err, r->id);
	adm_event(ctx, r->vol, "mirror.state", "mirror %s: resyncing -> "
	    "broken-off: %s; if the peer's row says catching-up or in-sync, "
	    "run mirror break there, then mirror resync on both", r->vol, err);
	(void)adm_mirror_park(ctx, r->vol, "resync interrupted", NULL, NULL);
	rel_unlink(r);
	exports_reload(ctx);
}

/* --------------------------------------------------------- the service */

static int mir_start(struct adm_ctx *ctx)
{
	const char *crash = getenv("FILER_RESYNC_CRASH_AT_DONE");

	svc.crash_at_done = crash != NULL && strcmp(crash, "1") == 0;
	if (crash != NULL && strcmp(crash, "record") == 0)
		mir_resync_test_crash_after_done_record();
	svc.up = true;
	resync_recover(ctx);
	park_broken(ctx, NULL, "broken off, found holding roots at start");
	adm_mirror_sync(ctx);
	return 0;
}

/* Tests (FILER_RESYNC_STOP_HOLD_MS): stop, after its last tick, waits
 * up to ms for the running resyncs to finish, so that a test can have
 * one finish that no tick has seen. */
static void stop_hold(uint32_t ms)
{
	uint64_t end = fl_now_mono_ns() + (uint64_t)ms * 1000000;
	unsigned n = 0;

	for (struct rjob *j = svc.jobs; j != NULL; j = j->next)
		n++;
	if (n == 0)
		return;
	fl_info(ADM_SUB, "stopping with %u resync%s running: waiting up to "
	    "%" PRIu32 " ms for %s to finish (FILER_RESYNC_STOP_HOLD_MS)", n,
	    n == 1 ? "" : "s", ms, n == 1 ? "it" : "them");
	for (struct rjob *j = svc.jobs; j != NULL; j = j->next) {
		uint64_t now = fl_now_mono_ns();

		(void)mir_resync_wait(j->job, now < end ?
		    (uint32_t)((end - now) / 1000000) : 0, NULL);
	}
}

static void mir_stop(struct adm_ctx *ctx)
{
	adm_mirror_tick(ctx);	/* last states into the database */
	if (ctx->resync_stop_hold_ms > 0)
		stop_hold(ctx->resync_stop_hold_ms);
	/* A job may have finished since that tick. */
	while (svc.jobs != NULL) {
		struct rjob *j = svc.jobs;

		svc.jobs = j->next;
		rjob_end(ctx, j, "filerd stopped");
	}
	while (svc.rels != NULL) {
		struct mrel *r = svc.rels;

		rel_stop(ctx, r);
		rel_unlink(r);
	}
	lis_put();
	svc.up = false;
}

static int mir_reload(struct adm_ctx *ctx, unsigned what)
{
	if (what & ADM_RELOAD_SETTINGS) {
		uint16_t port = (uint16_t)adm_setting_u64(ctx, "mirror_port");

		/* A new mirror_port: destinations listen again. */
		for (struct mrel *r = svc.rels, *next; r != NULL; r = next) {
			next = r->next;
			if (r->dst != NULL && r->port != port) {
				rel_stop(ctx, r);
				rel_unlink(r);
			}
		}
	}
	if (what & (ADM_RELOAD_SETTINGS | ADM_RELOAD_MIRRORS))
		adm_mirror_sync(ctx);
	return 0;
}

static void mir_volume_up(struct adm_ctx *ctx, const char *name,
    wafl_vol_t *v)
{
	/* Not at filerd's start: mir_start parks what it finds. */
	if (svc.up)
		park_broken(ctx, name, "broken off, found holding roots "
		    "when the volume came online");
	adm_mirror_sync(ctx);
}

static void mir_volume_down(struct adm_ctx *ctx, const char *name)
{
	/* A resync using the volume ends first: finished, as the tick
	 * would; else interrupted (it can be run again). */
	for (struct rjob **pp = &svc.jobs; *pp != NULL;) {
		struct rjob *j = *pp;

		if (strcmp(j->vol, name) != 0) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		rjob_end(ctx, j, "the volume went offline or was rolled back");
	}
	for (struct mrel *r = svc.rels, *next; r != NULL; r = next) {
		next = r->next;
		if (strcmp(r->vol, name) != 0)
			continue;
		tick_one(ctx, r, now_s());
		if (r->confirm) {
			confirm_expire(ctx, r, "the volume went offline or "
			    "was rolled back");
			continue;
		}
		rel_stop(ctx, r);
		rel_unlink(r);
	}
}

const struct adm_service adm_svc_mirror = {
	.name = "mirror",
	.start = mir_start,
	.stop = mir_stop,
	.reload = mir_reload,
	.volume_up = mir_volume_up,
	.volume_down = mir_volume_down,
};
