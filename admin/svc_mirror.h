/*
 * admin/svc_mirror.h: between the mirror service (svc_mirror.c) and the
 * peer and mirror verbs (cmd_mirror.c).  Everything here runs on filerd's
 * main thread.
 */
#ifndef FILER_ADMIN_SVC_MIRROR_H
#define FILER_ADMIN_SVC_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin/adm_impl.h"
#include "mirror/mirror.h"

#define ADM_PEER_KEY_MIN	16
#define ADM_PEER_KEY_MAX	64

/* What `mirror status` shows of one relationship. */
struct adm_mirror_status {
	bool running;		/* the relationship's thread runs here */
	char state[32];
	uint64_t acked_gen;	/* destination's durable, served root */
	uint64_t source_gen;	/* source: newest durable root (dest: 0) */
	uint64_t lag_cps, lag_s;
	uint64_t backlog_bytes, bytes_out, blocks_sent;
	uint64_t connects, link_losses;
	/* Source: sessions refused (either side), and the back-off before
	 * the next attempt (0: the last attempt was not refused). */
	uint64_t refusals;
	uint32_t retry_delay_ms;
	uint64_t transfers, blocks_received;	/* destination */
	/* Destination: DELTAs refused, and the mean time per transfer from
	 * its ROOT to the acknowledgement (checks, writes, flushes, the
	 * switch) and of that in flushes, in microseconds. */
	uint64_t deltas_refused, apply_us_mean, flush_us_mean;
	/* Destination: source connections given up, silent while another
	 * connection waited (docs/mirror.md "Heartbeats"). */
	uint64_t silent_given_up;
	uint16_t port;		/* destination: listening port */
	/* Source, async: seconds until the next scheduled transfer. */
	int64_t next_run_s;
	/* Source: the transfer by birth generation running (or the last):
	 * bytes done, estimated total (0: unknown), rate, ETA (-1: unknown). */
	bool xfer_active;
	uint64_t xfer_bytes, xfer_total, xfer_rate;
	int64_t xfer_eta;
	/* Baselines resumed from a checkpoint; source: blocks not sent
	 * again; destination: the checkpoint's blocks now. */
	uint64_t resumes, blocks_not_resent, ckpt_blocks;
	/* What went wrong last and when (unix time; 0: nothing), cleared
	 * once the relationship is in sync again; then the one cleared and
	 * when. */
	char last_error[192];
	uint64_t last_error_time;
	char resolved_error[192];
	uint64_t resolved_time;
};

/* Async schedules: an interval, a number and a unit (s, m, h, d), from
 * ADM_MIRROR_SCHED_MIN to ADM_MIRROR_SCHED_MAX seconds; without one an
 * async relationship transfers every ADM_MIRROR_SCHED_DEFAULT seconds.
 * An interval that divides a day (at least a minute) may be anchored to a
 * UTC time of day, INTERVAL@HH:MM: transfers then start at HH:MM and
 * every interval before and after it (1d@02:30 nightly at 02:30, 1h@00:15
 * at a quarter past every hour), whenever filerd started. */
#define ADM_MIRROR_SCHED_MIN		1u
#define ADM_MIRROR_SCHED_MAX		(7u * 86400u)
#define ADM_MIRROR_SCHED_DEFAULT	60u
/* *secs, and *at (seconds after midnight UTC, or -1 without an anchor);
 * 0, or -EINVAL for anything but such a schedule. */
int adm_mirror_schedule_parse(const char *s, uint64_t *secs, int64_t *at);
/* "30s", "5m", "1h30m", "1d@02:30"...; "" for 0 (no schedule). */
void adm_mirror_schedule_fmt(uint64_t secs, int64_t at, char *buf,
    size_t len);
/* The newest start time at or before unix time t of an anchored
 * schedule (secs divides a day, 0 <= at < 86400). */
uint64_t adm_mirror_schedule_slot(uint64_t t, uint64_t secs, int64_t at);
/* The interval an async relationship runs at, from its stored schedule_s
 * (0: none given, ADM_MIRROR_SCHED_DEFAULT). */
uint64_t adm_mirror_schedule_of(uint64_t stored);

/* Bring the running relationships in step with the database: start what
 * should run (its volume online, initialized, not broken off), stop what
 * was deleted or broken. */
void adm_mirror_sync(struct adm_ctx *ctx);
/* Stop relationship id here (its row stays). */
void adm_mirror_stop_rel(struct adm_ctx *ctx, int64_t id);
/* Relationship id changed in the database: if it runs here, store its
 * last state, stop it and start it again from its row. */
void adm_mirror_restart_rel(struct adm_ctx *ctx, int64_t id);
/* The listener on mirror_port (docs/mirror.md "One port, several
 * relationships"): false if none runs (nothing here listens). */
bool adm_mirror_listener_status(struct adm_ctx *ctx, uint16_t *port,
    unsigned *attached, struct mir_listener_stats *st);
/* Status of relationship id; false if it does not run here. */
bool adm_mirror_rel_status(struct adm_ctx *ctx, int64_t id,
    struct adm_mirror_status *st);
/* Source: quiesce (on) or resume (off) the running relationship. */
int adm_mirror_quiesce(struct adm_ctx *ctx, int64_t id, bool on);
/* Destination: break off; the volume becomes writable at its last
 * complete root.  0 or a negative errno with why. */
int adm_mirror_break_dest(struct adm_ctx *ctx, int64_t id, char *why,
    size_t whylen);
/*
 * Relationship of volume vol broken off here, no source running on it:
 * the roots kept held for the peer (mir_source_stop keeps the
 * acknowledged root and those sent after it, for a resync) become
 * snapshots mirror.base.<gen> and the holds are released
 * (mir_source_park), so that the blocks the volume frees from now on do
 * not wait behind them until mirror delete.  A mirror.fallback event
 * says so, with why (what broke it off); a failure is a mirror.error
 * event and leaves the holds (the next start, the volume coming online
 * and every snapshot deletion try again).  Nothing if
 * the volume is offline or read-only, or holds no root.  0 (*parked
 * roots, the newest *newest; both may be NULL) or a negative errno.
 */
int adm_mirror_park(struct adm_ctx *ctx, const char *vol, const char *why,
    uint64_t *parked, uint64_t *newest);
/* Whether this filerd runs its half of a resync of relationship id
 * (its row says resyncing; a row a crash left resyncing runs none). */
bool adm_mirror_resync_running(int64_t id);
/* Why vol, online, has no file system mounted now, for an error message
 * ("a resync is overwriting it", ...): the mirror service holds it. */
const char *adm_mirror_fs_owner(const char *vol);
/* A snapshot of vol was deleted (by hand or by the schedule): a park
 * that found the snapshot table full is tried again now. */
void adm_mirror_snapshot_deleted(struct adm_ctx *ctx, const char *vol);
/* Start this filerd's half of a resync of a broken-off relationship:
 * without reverse the destination side is overwritten by the source's,
 * with it the source side by the destination's.  The tick finishes it. */
int adm_mirror_resync(struct adm_ctx *ctx, int64_t id, bool reverse,
    char *why, size_t whylen);
/* A volume that is about to become a destination: remount it read-only
 * (its exports follow). */
int adm_mirror_make_readonly(struct adm_ctx *ctx, const char *vol);

/* T's record that RS_DONE came (mir_resync_opts.done_path), beside the
 * volume's disks: dir/VOL.resync-done. */
void adm_mirror_resync_done_path(const char *dir, const char *vol, char *out,
    size_t len);
/* The baseline checkpoint of destination volume vol whose disk images
 * are in dir. */
void adm_mirror_ckpt_path(const char *dir, const char *vol, char *out,
    size_t len);

/* Hex of a key read from a file (16..64 bytes, one trailing newline
 * ignored). */
int adm_mirror_key_load(const char *path, char *hex, size_t hexlen,
    char *why, size_t whylen);

#endif
