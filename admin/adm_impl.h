/*
 * admin/adm_impl.h: internals of the admin module, shared by its files.
 *
 *   db.c       the sqlite store: open, schema migrations, bind helpers
 *   proto.c    control protocol: frames, requests, replies (docs/admin.md)
 *   verbs.c    the verb table, request validation, dispatch
 *   cmd_*.c    the verbs' handlers
 *   vols.c     assembling volumes (raid + wafl) and tearing them down
 *   daemon.c   filerd: lock, socket, main loop, signals, events, schedules
 *   cli.c      filerctl: argv to request, reply to table or JSON
 *   svc_nfsd.c the NFS service: configuration -> nfsd
 */
#ifndef FILER_ADMIN_ADM_IMPL_H
#define FILER_ADMIN_ADM_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#include "admin/admin.h"
#include "raid/raid.h"
#include "wafl/wafl.h"

#define ADM_SUB			"admin"
#define ADM_PATH_MAX		1024
#define ADM_HOME_MAX		512	/* leaves room for what we add */
#define ADM_NAME_MAX		32	/* volume names, with NUL */
#define ADM_SNAP_MAX		64	/* snapshot names, with NUL */
#define ADM_MSG_MAX		1024
#define ADM_DEFAULT_HOME	"/var/lib/filer"

/* Exit statuses, also the reply status. */
#define ADM_OK			0
#define ADM_ERR			1
#define ADM_USAGE		2

/* ------------------------------------------------------------- db.c */

#define ADM_SCHEMA_VERSION	5

int adm_db_open(const char *path, sqlite3 **out, char *err, size_t errlen);
void adm_db_close(sqlite3 *db);
int adm_db_begin(sqlite3 *db);
int adm_db_commit(sqlite3 *db);
void adm_db_rollback(sqlite3 *db);
/*
 * Run one statement with bound parameters described by fmt, one char per
 * parameter: 's' const char * (NULL binds NULL), 'i' int64_t, 'u' uint64_t
 * (stored as int64).  Returns 0 or -EIO (logged with the sqlite message);
 * -EEXIST for a constraint violation.
 */
int adm_db_exec(sqlite3 *db, const char *sql, const char *fmt, ...);
/* Prepare and bind; the caller steps and finalizes. */
int adm_db_prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql,
    const char *fmt, ...);
/* First column of the first row as int64; -ENOENT if no row. */
int adm_db_i64(sqlite3 *db, int64_t *out, const char *sql,
    const char *fmt, ...);
/* First column of the first row copied as text; -ENOENT if no row. */
int adm_db_text(sqlite3 *db, char *out, size_t len, const char *sql,
    const char *fmt, ...);
int adm_db_user_version(sqlite3 *db);
const char *adm_col_text(sqlite3_stmt *st, int col);	/* never NULL */

/* Volume rows. */
struct adm_vol_rec {
	int64_t id;
	char name[ADM_NAME_MAX];
	char uuid[37];
	char state[16];		/* "online" | "offline" (wanted state) */
	char reason[256];	/* why offline */
	char nvlog[ADM_PATH_MAX];
	char dir[ADM_PATH_MAX];
	uint32_t ngroups, ndata, nparity;
	uint64_t disk_blocks;
	int64_t created;	/* unix seconds */
};
int adm_vol_get(sqlite3 *db, const char *name, struct adm_vol_rec *r);
int adm_vol_set_state(sqlite3 *db, const char *name, const char *state,
    const char *reason);
/* Disk paths for raid_open: members by group and position, then spares.
 * *paths is owned (free with adm_paths_free). */
int adm_vol_paths(sqlite3 *db, int64_t vol_id, char ***paths, size_t *n);
void adm_paths_free(char **paths, size_t n);

/* Settings: the known keys and their validation. */
enum adm_stype { ADM_ST_UINT, ADM_ST_SIZE, ADM_ST_ENUM, ADM_ST_BOOL,
	ADM_ST_GROUP };
struct adm_setting {
	const char *key;
	enum adm_stype type;
	uint64_t min, max;
	const char *choices;	/* ENUM: "a|b|c" */
	const char *def;
	const char *applies;	/* when a change takes effect */
	const char *help;
};
const struct adm_setting *adm_setting_find(const char *key);
const struct adm_setting *adm_settings(size_t *n);
/* Validate value for s; canonical form into out.  0 or -EINVAL with why. */
int adm_setting_check(const struct adm_setting *s, const char *value,
    char *out, size_t outlen, char *why, size_t whylen);
int adm_db_setting(sqlite3 *db, const char *key, char *out, size_t len);
uint64_t adm_db_setting_u64(sqlite3 *db, const char *key);

/* Event log: insert now (caller's transaction or its own). */
int adm_db_event(sqlite3 *db, const char *vol, const char *kind,
    const char *msg);

/* ---------------------------------------------------------- parsing */

int adm_parse_size(const char *s, uint64_t *out);
int adm_parse_u64(const char *s, uint64_t *out);
/* $name as a number from min to max into *out: 0 (unset: *out stays),
 * -EINVAL if it is set to anything else. */
int adm_env_u32(const char *name, uint32_t min, uint32_t max, uint32_t *out);
void adm_fmt_size(uint64_t bytes, char *out, size_t len);
bool adm_valid_volname(const char *s);
bool adm_valid_snapname(const char *s);
bool adm_valid_client(const char *s);
bool adm_valid_text(const char *s, size_t max);
/* "/vol/NAME[/sub...]": volume name into vol; false if malformed. */
bool adm_valid_export_path(const char *s, char *vol, size_t vlen);
/* Absolute time or relative ("15m", "2h", "3d", epoch seconds, ISO). */
int adm_parse_since(const char *s, uint64_t now_s, uint64_t *out_s);

/* ---------------------------------------------------------- proto.c */

#define ADM_PROTO_MAGIC_REQ	"FILER/1 request"
#define ADM_PROTO_MAGIC_REP	"FILER/1 reply"
#define ADM_REQ_MAX		(64u << 10)
#define ADM_REP_MAX		(16u << 20)
#define ADM_REQ_FIELDS		32
#define ADM_KEY_MAX		32

struct adm_buf {
	char *p;
	size_t len, cap;
	bool oom;
};
void adm_buf_addf(struct adm_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void adm_buf_add(struct adm_buf *b, const char *s, size_t n);
void adm_buf_free(struct adm_buf *b);

struct adm_field {
	char key[ADM_KEY_MAX];
	char *val;		/* owned */
};
struct adm_req {
	char verb[64];
	size_t n;
	struct adm_field f[ADM_REQ_FIELDS];
};
void adm_req_init(struct adm_req *r, const char *verb);
int adm_req_set(struct adm_req *r, const char *key, const char *val);
const char *adm_req_get(const struct adm_req *r, const char *key);
uint64_t adm_req_u64(const struct adm_req *r, const char *key,
    uint64_t def);
bool adm_req_flag(const struct adm_req *r, const char *key);
void adm_req_free(struct adm_req *r);
int adm_req_encode(const struct adm_req *r, struct adm_buf *out);
/* Decoding a request from a peer: every line checked (docs/admin.md). */
int adm_req_decode(const char *p, size_t len, struct adm_req *r, char *why,
    size_t whylen);

/* A reply under construction: status, message and typed records. */
struct adm_rep {
	int status;
	char message[ADM_MSG_MAX];
	struct adm_buf body;
};
void adm_rep_init(struct adm_rep *r);
void adm_rep_free(struct adm_rep *r);
/* Set status and message; returns status, for "return adm_fail(...)". */
int adm_fail(struct adm_rep *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void adm_say(struct adm_rep *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Declare a table (so an empty one still shows), then add rows to it. */
void adm_rep_list(struct adm_rep *r, const char *table);
void adm_rep_row(struct adm_rep *r, const char *table);	/* list item */
void adm_rep_obj(struct adm_rep *r, const char *name);	/* single object */
void adm_rep_str(struct adm_rep *r, const char *key, const char *val);
void adm_rep_u64(struct adm_rep *r, const char *key, uint64_t val);
void adm_rep_i64(struct adm_rep *r, const char *key, int64_t val);
void adm_rep_dbl(struct adm_rep *r, const char *key, double val);
void adm_rep_bool(struct adm_rep *r, const char *key, bool val);
int adm_rep_encode(const struct adm_rep *r, struct adm_buf *out);
/* The same, but a reply that cannot be sent (over ADM_REP_MAX, or no
 * memory) becomes an error reply saying so: what filerd sends and what
 * filerctl shows for a verb it ran itself. */
void adm_rep_encode_bounded(const struct adm_rep *r, struct adm_buf *out);

/* A decoded reply (client side). */
enum adm_item_kind { ADM_IT_LIST, ADM_IT_ROW, ADM_IT_OBJ, ADM_IT_STR, ADM_IT_NUM,
	ADM_IT_BOOL };
struct adm_item {
	enum adm_item_kind kind;
	char *key;		/* table / object name, or field key */
	char *val;
};
struct adm_reply {
	int status;
	char *message;
	size_t n;
	struct adm_item *items;
};
int adm_reply_decode(const char *p, size_t len, struct adm_reply *r);
void adm_reply_free(struct adm_reply *r);

/* Frames: 4-byte big-endian length, then the payload. */
int adm_frame_write(int fd, const void *p, size_t len);
/* Reads one frame of at most max bytes; *out owned (NUL-terminated). */
int adm_frame_read(int fd, size_t max, char **out, size_t *len);

/* ------------------------------------------------------------ verbs */

enum adm_atype {
	ADM_A_VOLNAME,		/* volume name */
	ADM_A_SNAPNAME,		/* snapshot name */
	ADM_A_PATH,		/* absolute path */
	ADM_A_EXPPATH,		/* /vol/NAME[/...] */
	ADM_A_UINT,		/* min..max */
	ADM_A_SIZE,		/* bytes with K/M/G/T, min..max */
	ADM_A_FLAG,		/* present or not */
	ADM_A_ENUM,		/* one of choices */
	ADM_A_TEXT,		/* printable text, max bytes */
	ADM_A_CLIENT,		/* export client spec */
	ADM_A_DISK,		/* disk index or absolute path */
	ADM_A_TIME,		/* --since */
	ADM_A_ALIAS,		/* CLI flag that sets target = value */
};
#define ADM_ARG_REQ	0x1u	/* required */
#define ADM_ARG_POS	0x2u	/* positional, in table order */

struct adm_arg {
	const char *name;
	enum adm_atype type;
	unsigned flags;
	uint64_t min, max;
	const char *choices;	/* ENUM: "a|b"; ALIAS: the value to set */
	const char *target;	/* ALIAS: field it sets */
	const char *help;
};

#define ADM_V_OFFLINE	0x1u	/* may run without filerd (edits the db) */
#define ADM_V_LOCAL	0x2u	/* runs in filerctl itself, never sent */
#define ADM_V_NEWHOME	0x4u	/* offline, may make a new home (the others
				   need its database to exist) */

struct adm_ctx;
typedef int adm_verb_fn(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep);
struct adm_verb {
	const char *words;	/* "vol create" */
	const struct adm_arg *args;	/* terminated by a NULL name */
	unsigned flags;
	adm_verb_fn *fn;
	const char *summary;
	const char *help;	/* paragraph after the synopsis, or NULL */
};

const struct adm_verb *adm_verb_find(const char *words);
/* Iterate: i from 0 until NULL. */
const struct adm_verb *adm_verb_at(size_t i);
const struct adm_arg *adm_verb_arg(const struct adm_verb *v,
    const char *name);
/* Check every field of req against the verb's table (A2): unknown keys,
 * types, ranges, required fields.  ADM_OK or ADM_USAGE with rep filled. */
int adm_req_validate(const struct adm_verb *v, const struct adm_req *req,
    struct adm_rep *rep);
/* Validate and run; ctx->daemon tells whether filerd is this process. */
int adm_dispatch(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep);
void adm_verb_usage(const struct adm_verb *v, struct adm_buf *out);

extern const struct adm_verb adm_vol_verbs[];
extern const struct adm_verb adm_disk_verbs[];
extern const struct adm_verb adm_snap_verbs[];
extern const struct adm_verb adm_export_verbs[];
extern const struct adm_verb adm_misc_verbs[];
extern const struct adm_verb adm_mirror_verbs[];

/* ------------------------------------------------------------- ctx */

/* A volume as filerd holds it. */
struct adm_vol {
	struct adm_vol *next;
	struct adm_ctx *ctx;
	int64_t id;
	char name[ADM_NAME_MAX];
	char nvlog[ADM_PATH_MAX];	/* wafl keeps the pointer: ours */
	raid_vol_t *raid;	/* NULL while offline */
	wafl_vol_t *wafl;
	/* scrub (raid_scrub is synchronous: our own thread) */
	pthread_t scrub_thread;
	bool scrub_joinable;
	bool scrub_running;		/* under ctx->lock */
	bool scrub_done;
	int scrub_err;
	struct raid_scrub_result scrub_res;
	uint64_t scrub_started, scrub_finished;	/* unix seconds */
	uint64_t online_ns;		/* monotonic, when mounted */
	/* snapshot schedule: last period taken per kind */
	int64_t sched_last[3];
};

struct adm_event_q {
	struct adm_event_q *next;
	char *vol, *kind, *msg;
	int64_t vol_id;		/* raid events: volume whose disks changed */
	bool disks_changed;
	uint64_t time_ns;
};

struct adm_ctx {
	char home[ADM_HOME_MAX];
	char db_path[ADM_PATH_MAX];
	char sock_path[ADM_PATH_MAX];
	char pid_path[ADM_PATH_MAX];
	sqlite3 *db;
	bool daemon;		/* filerd: volumes are live here */
	int lock_fd;
	struct adm_vol *vols;
	pthread_mutex_t lock;	/* event queue, scrub flags */
	struct adm_event_q *evq, **evq_tail;
	int wake_fd;		/* eventfd: events queued */
	double clock_scale;	/* schedule clock speed (tests) */
	uint32_t check_hold_ms;	/* tests: a check waits this long first,
				   so that a test sees it running (an
				   offline one in the main loop) */
	uint32_t keepalive_ms;	/* a running job's caller gets an empty
				   frame this often (adm_jobs_keepalive) */
	uint32_t resync_stop_hold_ms;	/* tests: at stop, after the mirror
				   service's last tick, wait this long at
				   most for running resyncs to finish */
	uint64_t clock_base_real;	/* unix seconds at start */
	uint64_t clock_base_mono;	/* monotonic ns at start */
	uint64_t start_s;
	_Atomic int stopping;
	/* The request being served (daemon.c): its connection, until a
	 * handler takes it for a job (then -1). */
	int req_fd;
	struct adm_job *jobs;	/* requests answered later */
};

/*
 * A request answered later (daemon.c), so that a long one (the check of
 * an online volume) holds up neither the other requests nor the main
 * loop's work.  The handler fills a job and calls adm_job_start, which
 * takes the request's connection; run() then works on a thread of its
 * own, and once it has returned the main loop calls finish() to fill the
 * reply (events and the database are the main thread's), sends it and
 * closes the connection.  run() may use vol's file system: every path
 * that unmounts or replaces it first waits for the volume's jobs
 * (adm_jobs_wait).  finish() frees what the handler allocated (the job
 * itself included).
 */
struct adm_job {
	struct adm_job *next;
	char vol[ADM_NAME_MAX];
	const char *kind;	/* "check", "rebuild wait" */
	bool uses_fs;		/* run() uses vol's file system (else only
				   its raid volume) */
	void (*run)(struct adm_job *j);
	int (*finish)(struct adm_ctx *ctx, struct adm_job *j,
	    struct adm_rep *rep);
	/* Set by adm_jobs_wait: run() returns as soon as it can (a check
	 * stops walking, a wait ends) and its finish() says why. */
	_Atomic bool cancel;
	/* daemon.c's */
	struct adm_ctx *ctx;
	int fd;
	pthread_t thr;
	bool joined;
	bool done;		/* under ctx->lock */
	uint64_t alive_ns;	/* the last frame its caller was sent */
};
/* 0, or -errno (the handler then answers at once). */
int adm_job_start(struct adm_ctx *ctx, struct adm_job *j);
/* Send each running job's caller an empty frame every keepalive_ms; a
 * job whose caller went away is cancelled (main thread). */
void adm_jobs_keepalive(struct adm_ctx *ctx);
/* A job of this kind on volume vol is running. */
bool adm_job_running(struct adm_ctx *ctx, const char *vol, const char *kind);
/* Wait for the jobs of this kind on vol that were told to stop (their
 * caller went away, or a cancel), so that a new request is not refused
 * for a job that is ending; adm_jobs_reap answers them (main thread). */
void adm_jobs_settle(struct adm_ctx *ctx, const char *vol, const char *kind);
/* Ask the running jobs of this kind on vol to stop (they are answered
 * when they have); false if none runs. */
bool adm_job_cancel(struct adm_ctx *ctx, const char *vol, const char *kind);
/* Cancel the jobs on volume vol (NULL: every volume) that use what is
 * going away, its file system, or with raid_too its raid volume as well,
 * and wait until they have returned.  Their replies go out at the next
 * adm_jobs_reap. */
void adm_jobs_wait(struct adm_ctx *ctx, const char *vol, bool raid_too);
/* Answer every job whose run() has returned (main thread). */
void adm_jobs_reap(struct adm_ctx *ctx);

int adm_ctx_init(struct adm_ctx *ctx, const char *home);
void adm_ctx_fini(struct adm_ctx *ctx);
/* Take the home lock (flock of the pid file), without blocking.
 * -EBUSY if held; *holder gets the pid written in it (0 if none). */
int adm_home_lock(struct adm_ctx *ctx, long *holder);
void adm_home_unlock(struct adm_ctx *ctx, bool remove_pid);
/* Queue an event (any thread) and wake the main loop. */
void adm_event_queue(struct adm_ctx *ctx, const char *vol, int64_t vol_id,
    const char *kind, bool disks_changed, const char *msg);
/* Drain the queue into the db (main thread). */
void adm_events_drain(struct adm_ctx *ctx);
uint64_t adm_sched_now(const struct adm_ctx *ctx);	/* unix seconds */

/* ------------------------------------------------------------ vols.c */

struct adm_vol *adm_vol_find(struct adm_ctx *ctx, const char *name);
/* v's file system; NULL, with rep failed and saying why, while the
 * volume is online without one (a mirror resync overwriting it, a
 * destination before its baseline). */
wafl_vol_t *adm_vol_fs(struct adm_vol *v, struct adm_rep *rep);
/* The settings every mount of a volume takes (cache, CP interval, dirty
 * threshold, NVLOG size, pool prefill) into mo; the caller sets the
 * NVLOG path and read-only. */
void adm_mount_opts(struct adm_ctx *ctx, struct wafl_mount_opts *mo);
/* Open raid and mount wafl for a db row; on failure *why says why. */
int adm_vol_bringup(struct adm_ctx *ctx, const struct adm_vol_rec *rec,
    char *why, size_t whylen);
/* Unmount (final CP) and close; waits for a running scrub. */
int adm_vol_takedown(struct adm_ctx *ctx, struct adm_vol *v);
void adm_vol_forget(struct adm_ctx *ctx, struct adm_vol *v);
/* Copy raid's view of the disks (positions after a rebuild, states) to the
 * disks table (A1: one transaction). */
int adm_vol_sync_disks(struct adm_ctx *ctx, struct adm_vol *v);
/* Bring up every volume whose configured state is online. */
void adm_vols_start(struct adm_ctx *ctx);
void adm_vols_stop(struct adm_ctx *ctx);
/* Open a volume raid-only (offline check, offline disk edits). */
int adm_raid_open(struct adm_ctx *ctx, const struct adm_vol_rec *rec,
    raid_vol_t **out, char *why, size_t whylen);

/* ---------------------------------------------------------- services */

void adm_services_start(struct adm_ctx *ctx);
void adm_services_stop(struct adm_ctx *ctx);
void adm_services_reload(struct adm_ctx *ctx, unsigned what);
void adm_services_volume_up(struct adm_ctx *ctx, const char *name,
    wafl_vol_t *v);
void adm_services_volume_down(struct adm_ctx *ctx, const char *name);

/* The services filerd registers (admin/svc_*.c). */
extern const struct adm_service adm_svc_nfsd;
/* The NFS server's counters (svc_nfsd.c); false when it does not serve. */
struct nfsd_stats;
bool adm_nfsd_stats(struct nfsd_stats *st);
extern const struct adm_service adm_svc_mirror;
/* svc_mirror.c: a volume filerd mounts read-only (a mirror destination);
 * the running relationships' states into the database (main loop). */
bool adm_mirror_is_dest(struct adm_ctx *ctx, int64_t vol_id);
/* A mirror destination whose baseline has not arrived (a baseline cut
 * short leaves no file system to mount until it resumes and ends). */
bool adm_mirror_awaits_baseline(struct adm_ctx *ctx, int64_t vol_id);
void adm_mirror_tick(struct adm_ctx *ctx);

/* ---------------------------------------------------------- schedule */

/* Take and prune scheduled snapshots that are due (main thread). */
void adm_sched_run(struct adm_ctx *ctx);

/* ------------------------------------------------------------ entry */

struct adm_daemon_opts {
	const char *home;
	bool foreground;
	double clock_scale;	/* 0 or 1: real time */
	uint32_t check_hold_ms;	/* tests: a check job waits this long */
	uint32_t keepalive_ms;	/* tests: a running job's caller is sent
				   an empty frame this often (0: 30 s) */
	uint32_t resync_stop_hold_ms;	/* tests: the mirror service's stop
				   waits this long at most for running
				   resyncs to finish */
};
int adm_daemon_main(const struct adm_daemon_opts *o);
/* Apply settings that take effect now (log level, socket group). */
void adm_daemon_apply(struct adm_ctx *ctx);
int adm_cli_main(int argc, char **argv);

#endif
