/*
 * mirror/mirror.h: mirroring a wafl volume to a destination volume without
 * ever comparing data between the two sites (DESIGN.md §6, docs/mirror.md).
 *
 * WHAT THIS MODULE PROMISES
 *   A source relationship ships the file system's consistency points to a
 *   destination: in sync mode each CP's block writes as the CP writes them,
 *   then its root; after a link loss, or on demand (async), a transfer by
 *   birth generation from the destination's generation.  The destination
 *   writes the blocks to the same VBNs of its own raid volume, verifies
 *   the new tree in memory against the block pointers' checksums, writes
 *   its fsinfo and switches its read-only replica to the new root, then
 *   acknowledges.  It never reads its disks to do so.
 *
 *   Numbered invariants (cited by asserts, tests and docs/mirror.md):
 *   M1  Every root the destination may serve or adopt next is retained on
 *       the source (its CP ring, or a hold): the acknowledged generation
 *       and every generation whose root was sent.  So the blocks of any
 *       later CP land on VBNs free in every root the destination serves.
 *   M2  The destination writes fsinfo g only to slot g % 2 and only when
 *       the other slot holds the root it serves (transfers advance an odd
 *       number of generations; a baseline first wipes both slots).  A torn
 *       fsinfo write therefore leaves the served root.
 *   M3  No root is adopted before every block born after the served
 *       generation that it reaches has arrived and matched the checksum in
 *       its parent pointer, the root's own checksum included.
 *   M4  The destination's fsinfo lists in its ring the new root alone:
 *       an older root stays whole only while the source keeps it, and a
 *       later catch-up may write over it, so a break (which mounts the
 *       ring writable) never meets an older tree there.
 *   M5  A malformed frame, a failed check or an unknown relationship closes
 *       the connection; nothing is adopted and the served root is
 *       unchanged (blocks already written lie on VBNs it does not use:
 *       the source keeps M1, and the destination refuses a block on a
 *       VBN the served root or one of its snapshots uses).
 *   M6  The destination's served root is retained on the source by a hold
 *       (recorded in fsinfo: it survives a source restart or crash) or by
 *       the fallback snapshot mirror.base.<gen> whose root pointer is that
 *       root's exactly (retain.c).
 *   M7  Resync overwrites a side only after the other side made its
 *       divergent data durable as a snapshot, and its new root is the
 *       newest root both sides retained exactly (resync.c).
 *
 * CONCURRENCY
 *   Each source and each destination runs one thread of its own.  The
 *   source's CP observer only copies a CP into a bounded backlog; CPs never
 *   wait for the link.  Status calls are safe from any thread.
 *
 * OWNERSHIP
 *   The wafl volume (source) and the raid volume (destination) stay the
 *   caller's; stop the relationship before unmounting or closing them.
 *   mir_dest_volume() lends the replica until stop, break or a baseline.
 */
#ifndef FILER_MIRROR_MIRROR_H
#define FILER_MIRROR_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raid/raid.h"
#include "wafl/wafl.h"

#define MIR_REL_ID_SIZE		16u

typedef struct mir_source mir_source_t;
typedef struct mir_dest mir_dest_t;
typedef struct mir_listener mir_listener_t;

enum mir_state {
	MIR_UNINITIALIZED = 0,
	MIR_TRANSFERRING,	/* baseline */
	MIR_IN_SYNC,
	MIR_CATCHING_UP,
	MIR_QUIESCED,
	MIR_BROKEN_OFF,
};
const char *mir_state_name(enum mir_state s);

enum mir_mode { MIR_SYNC = 1, MIR_ASYNC };

/* BLOCK compression on the link, per relationship (both sides alike;
 * the values are the wire's, HELLO). */
enum mir_compress { MIR_COMP_NONE = 0, MIR_COMP_LZ4 = 1, MIR_COMP_ZSTD = 2 };
const char *mir_compress_name(unsigned c);

/* ------------------------------------------------------------- source */

struct mir_source_opts {
	uint8_t rel_id[MIR_REL_ID_SIZE];
	const uint8_t *key;		/* pre-shared, 16..64 bytes */
	size_t key_len;
	const char *host;		/* destination address */
	uint16_t port;
	enum mir_mode mode;
	/* The source's raid volume: snapshot trees are read from it for
	 * transfers by birth generation (the birth walk covers the active
	 * tree only).  May be NULL: snapshots made while the link was down
	 * then reach the destination incomplete and are refused there. */
	raid_vol_t *raid;
	uint64_t backlog_max_bytes;	/* 0: 64 MiB */
	uint32_t retry_ms;		/* reconnect interval; 0: 200 */
	/* After refusals in a row (either side refuses the session) the
	 * wait doubles from retry_ms up to this; 0: 30000. */
	uint32_t retry_max_ms;
	uint32_t io_timeout_ms;		/* one frame; 0: 10000 */
	bool allow_baseline;		/* send a full transfer if needed */
	/* Link options; the destination must be configured alike. */
	uint8_t compress;		/* enum mir_compress (wire.h) */
	bool tls;
	/* What the source sends, in bytes a second on average (baselines,
	 * catch-ups and CPs alike; in sync mode CPs that outrun it fill the
	 * backlog, then the relationship catches up).  0: no limit; else at
	 * least MIR_THROTTLE_MIN. */
	uint64_t throttle_bps;
	/* Blocks that may stay pending behind the destination's root while
	 * it is away before that root becomes snapshot mirror.base.<gen>
	 * and the hold is released (M6).  0: a tenth of the volume. */
	uint64_t fallback_blocks;
	/* The last error from before this start (filerd keeps it across a
	 * restart or a change of the relationship): last_error until the
	 * relationship works again, then resolved like any other, so that
	 * a restart alone does not report it resolved.  Its time is the
	 * start's.  NULL or "": none. */
	const char *last_error;
};

struct mir_source_stats {
	enum mir_state state;
	/* Between mir_source_quiesce and mir_source_resume (state turns
	 * MIR_QUIESCED only once the thread has closed the link). */
	bool quiesce_requested;
	uint64_t acked_gen;		/* destination's durable root */
	uint64_t sent_gen;		/* last root sent */
	uint64_t source_gen;		/* newest durable root here */
	uint64_t backlog_bytes;
	uint64_t connects, link_losses, overflows;
	/* Sessions refused (by the destination at its handshake, or here
	 * after its STATUS), and the wait before the next attempt after the
	 * last of a run of them (0: the last attempt was not refused). */
	uint64_t refusals;
	uint32_t retry_delay_ms;
	/* Sessions begun: the destination's STATUS named this file system
	 * at a generation retained here (or a baseline was allowed). */
	uint64_t sessions;
	uint64_t transfers_cp, transfers_walk;
	uint64_t blocks_sent_cp, blocks_sent_walk;
	uint64_t last_walk_blocks, last_walk_base, last_walk_target;
	uint64_t bytes_out;
	uint64_t fallbacks;		/* held roots turned into snapshots */
	uint64_t base_snap_gen;		/* mirror.base.<gen> kept (0: none) */
	/* The transfer by birth generation in progress (or the last one):
	 * block data bytes sent of an estimated total (baseline: the root's
	 * blocks in use; catch-up: the blocks the CPs since the base wrote,
	 * an upper bound; 0: unknown), the rate (moving average over ~5 s)
	 * and the time left at that rate (UINT64_MAX: unknown). */
	bool walk_active;
	uint64_t walk_bytes_done, walk_bytes_total;
	uint64_t walk_rate_bps, walk_eta_s;
	/* Baselines resumed from the destination's checkpoint, the blocks
	 * that were not sent again, and baselines that had to start over. */
	uint64_t baseline_resumes, blocks_not_resent, baseline_restarts;
	uint64_t blocks_compressed;	/* BLOCK frames sent compressed */
	uint64_t blocks_delta;		/* blocks sent as DELTA frames */
	/* What went wrong last, and when (unix time of its last
	 * occurrence); both cleared once the relationship is in sync
	 * again.  "" and 0: nothing wrong since. */
	char last_error[160];
	uint64_t last_error_time;
	/* The last error cleared, and when it was ("" and 0: none). */
	char resolved_error[160];
	uint64_t resolved_time;
};

int mir_source_start(wafl_vol_t *v, const struct mir_source_opts *o,
    mir_source_t **out);
/* Stop the thread, detach the observer, release every hold but the
 * acknowledged root's: that one stays held, recorded in the volume's
 * fsinfo, so a restarted source (or a resync) continues from it by
 * birth generation.  With nothing acknowledged yet, the root of the
 * baseline under way stays held instead, so a restarted source resumes
 * that baseline after the destination's checkpoint.  Holds found on the volume at start (after an
 * unmount or a crash) are adopted by the new relationship. */
void mir_source_stop(mir_source_t *s);
/* The relationship is gone for good: release every root held on v and
 * delete the fallback snapshot (mirror.base.*). */
int mir_source_forget(wafl_vol_t *v);
/*
 * The source is stopped and will not run for a while (broken off): no
 * fallback bounds the frees pending behind the roots it kept held, so
 * park them.  Every root held on v becomes snapshot mirror.base.<gen>,
 * its exact root (one of that name with that root already is fine), and
 * then every hold is released (M6: the destination's root stays
 * retained, by its snapshot).  0 with *parked the number of roots
 * parked and *newest the newest of them (each may be NULL; 0 if none was
 * held).  If one root cannot be kept so
 * (the snapshot table is full, an I/O error, a snapshot of that name
 * with another root), no hold is released: the error, logged.  The
 * snapshots go as fallback snapshots do: with an acknowledgement past
 * them, or mirror delete (mir_source_forget).  v mounted writable, no
 * source or resync running on it.
 */
int mir_source_park(wafl_vol_t *v, uint64_t *parked, uint64_t *newest);
void mir_source_stats(mir_source_t *s, struct mir_source_stats *st);
/* Wait until the destination acknowledged gen (0: the newest durable
 * generation now).  -ETIMEDOUT after timeout_ms. */
int mir_source_wait(mir_source_t *s, uint64_t gen, uint32_t timeout_ms);
/* Async mode: transfer the newest root now (sync mode: no-op). */
void mir_source_kick(mir_source_t *s);
/* Stop shipping (the link stays down) / start again (at once, whatever
 * back-off after refusals was under way). */
void mir_source_quiesce(mir_source_t *s);
void mir_source_resume(mir_source_t *s);
/* Try to connect now rather than after the back-off that follows a
 * refused session: an administrator acted on the relationship. */
void mir_source_retry(mir_source_t *s);

/* -------------------------------------------------------- destination */

struct mir_dest_opts {
	uint8_t rel_id[MIR_REL_ID_SIZE];
	const uint8_t *key;
	size_t key_len;
	const char *host;		/* listen address; NULL: 127.0.0.1 */
	uint16_t port;			/* 0: any free port */
	uint64_t batch_max_bytes;	/* one CP in memory; 0: 256 MiB */
	uint32_t io_timeout_ms;		/* 0: 10000 */
	/* Mount options of the replica and, after a break, of the writable
	 * volume (cache, CP interval, dirty threshold, prefill); the
	 * destination sets nvlog_path and readonly itself. */
	struct wafl_mount_opts mount;
	/* Accept a baseline (full transfer) that replaces whatever file
	 * system the volume holds. */
	bool allow_baseline;
	/* Link options the source must ask for (wire.h). */
	uint8_t compress;		/* enum mir_compress */
	bool tls;
	/* Baseline checkpoints: a file beside the volume recording the
	 * baseline's target and the blocks written and flushed so far, every
	 * checkpoint_blocks blocks (0: 8192).  NULL: an interrupted baseline
	 * starts over. */
	const char *checkpoint_path;
	uint32_t checkpoint_blocks;
	/* Take connections from this shared listener (host and port are
	 * then unused); NULL: listen on host:port alone. */
	mir_listener_t *listener;
	/* The last error from before this start (filerd keeps it across a
	 * restart or a change of the relationship): last_error until the
	 * relationship works again, then resolved like any other, so that
	 * a restart alone does not report it resolved.  Its time is the
	 * start's.  NULL or "": none. */
	const char *last_error;
	/* Called in the destination's connection thread when a baseline is
	 * about to overwrite the volume -- the state already says
	 * transferring, nothing is written yet -- and returns once whatever
	 * else reads the volume's disks (a read-only mount of the file
	 * system the baseline replaces) has let go of them.  It must not
	 * call into d.  NULL: none. */
	void (*before_baseline)(void *arg);
	void *before_baseline_arg;
};

struct mir_dest_stats {
	enum mir_state state;
	uint64_t gen;			/* served root (0: none) */
	uint64_t transfers, blocks_received, blocks_written;
	uint64_t blocks_delta;		/* of blocks_received: from DELTAs */
	uint64_t deltas_refused;	/* base not kept, or bad ranges */
	uint64_t rejects;		/* connections closed on bad input */
	uint64_t auth_failures;
	/* Source connections given up: silent for the timeout (and three
	 * of their heartbeat intervals) while another connection waited. */
	uint64_t silent_given_up;
	uint64_t mirror_reads;		/* raid data reads while receiving
					   and writing transfers: stays 0 */
	uint64_t parity_rmw_reads;	/* raid's own reads to update parity
					   of partially written stripes */
	uint64_t advance_reads;		/* reads of the replica switching
					   to a new root (wafl) */
	/* Blocks of the served root's bitmap and summary map read to check
	 * that no transfer writes a block that root uses (not counted in
	 * mirror_reads), and blocks refused for that. */
	uint64_t guard_reads, blocks_in_use_refused;
	/* Baseline checkpoints: resumed baselines, and the blocks read back
	 * from this volume to verify them again (not counted in
	 * mirror_reads: they are the destination's own data, read for M3). */
	uint64_t baseline_resumes, resume_reads;
	uint64_t ckpt_gen, ckpt_blocks;	/* the checkpoint held now */
	/* Where a transfer's end goes, summed over transfers (ns): the
	 * ROOT's checks (every block's parent verified), writing what was
	 * kept back, the flushes (blocks, then the fsinfo), and the
	 * replica's switch to the new root. */
	uint64_t verify_ns, write_ns, flush_ns, advance_ns;
	/* What went wrong last, and when (unix time of its last
	 * occurrence); both cleared once a root is adopted, or a source's
	 * session begins with nothing to send (in sync).  "" and 0:
	 * nothing wrong since. */
	char last_error[192];
	uint64_t last_error_time;
	/* The last error cleared, and when it was ("" and 0: none). */
	char resolved_error[192];
	uint64_t resolved_time;
};

/* Listen for the source; mount the replica if the volume holds a file
 * system. */
int mir_dest_start(raid_vol_t *raid, const struct mir_dest_opts *o,
    mir_dest_t **out);
uint16_t mir_dest_port(const mir_dest_t *d);
/* The read-only replica (borrowed; NULL before the first transfer). */
wafl_vol_t *mir_dest_volume(mir_dest_t *d);
void mir_dest_stats(mir_dest_t *d, struct mir_dest_stats *st);
/* Wait until the served generation is >= gen.  -ETIMEDOUT. */
int mir_dest_wait(mir_dest_t *d, uint64_t gen, uint32_t timeout_ms);
/*
 * Break: stop listening, unmount the replica and mount the volume
 * writable at its last complete root with a new NVLOG at nvlog_path; the
 * file system keeps its fsid, file-handle key and inode numbers.  The
 * returned volume is the caller's (wafl_unmount it); d keeps nothing.
 */
int mir_dest_break(mir_dest_t *d, const char *nvlog_path,
    wafl_vol_t **out);
void mir_dest_stop(mir_dest_t *d);

/* ----------------------------------------------------------- listener */

/*
 * One port for every relationship a filerd receives (listen.c): the
 * listener reads the relationship id from each connection's first frame
 * and hands the connection to the destination (mir_dest_opts.listener) or
 * resync (mir_resync_opts.listener) started with that id, which then
 * authenticates the peer as on a port of its own.  A connection for an id
 * nobody here takes is refused and logged.  Stop every destination and
 * resync that uses it before mir_listener_stop.
 */
struct mir_listener_stats {
	uint64_t accepted, routed;
	uint64_t unknown;	/* refused: no relationship with that id */
	uint64_t malformed;	/* closed: not a mirror greeting */
	uint64_t timeouts;	/* closed: said nothing in time */
	uint64_t busy;		/* closed: its relationship had enough
				   connections waiting */
	char last_refusal[192];	/* what the last refusal said ("" none) */
	uint64_t last_refusal_time;	/* its unix time */
};

/* Bound and listening, but connections wait in the backlog until
 * mir_listener_accept: start the relationships first, so that none of
 * their peers is refused for coming too early. */
int mir_listener_start(const char *host, uint16_t port,
    mir_listener_t **out);
void mir_listener_accept(mir_listener_t *l);
uint16_t mir_listener_port(const mir_listener_t *l);
/* Destinations and resyncs taking connections from it now. */
unsigned mir_listener_attached(mir_listener_t *l);
void mir_listener_stats(mir_listener_t *l, struct mir_listener_stats *st);
void mir_listener_stop(mir_listener_t *l);

/* ------------------------------------------------------------- resync */

/*
 * Resync after a break (resync.c, docs/mirror.md "Resync"): the side T
 * being overwritten sends its data written since the newest root both
 * sides retain (G) to the winning side W, which keeps it as a snapshot;
 * then T rolls back to G and becomes W's destination (start mir_dest on
 * T's raid volume and a mir_source on W: the catch-up runs from G by
 * birth generation).
 *   M7  T is overwritten only after W made T's divergent data durable as
 *       a snapshot, and T's new root is G exactly, a root both sides
 *       retained throughout.
 */
typedef struct mir_resync mir_resync_t;

struct mir_resync_opts {
	uint8_t rel_id[MIR_REL_ID_SIZE];
	const uint8_t *key;		/* pre-shared, 16..64 bytes */
	size_t key_len;
	const char *host;		/* W: listen (NULL: 127.0.0.1);
					   T: W's address */
	uint16_t port;			/* W: 0 = any free port */
	uint32_t io_timeout_ms;		/* 0: 10000 */
	uint32_t accept_timeout_ms;	/* W: wait for T; 0: 10 minutes */
	uint64_t max_import_bytes;	/* W: T's divergence spooled while
					   importing; 0: 1 GiB */
	const char *spool_dir;		/* W: where (an unlinked file);
					   NULL: /tmp */
	const char *snap_name;		/* W: NULL: resync.<T's generation> */
	bool overwrite;			/* mir_resync_start: this side is T */
	bool listen;			/* mir_resync_start: accept the peer
					   (else connect to host:port) */
	mir_listener_t *listener;	/* listen: through this shared
					   listener (NULL: on host:port) */
	/* The relationship's throttle (mir_source_opts.throttle_bps), for
	 * this side of the connection, in bytes a second: what it writes
	 * and what it reads.  The bulk goes T -> W; filerd gives the rate
	 * to the side whose row is the source alone: to send if it is T
	 * (--reverse), to read if it is W (T's writes then stall on its
	 * full socket: TCP's flow control).  0: no limit; else at least
	 * MIR_THROTTLE_MIN. */
	uint64_t throttle_send_bps;
	uint64_t throttle_recv_bps;
	/* T: the relationship's throttle, sent to W in RS_BEGIN for W's
	 * caller to keep (mir_resync_result.rel_throttle_bps); it paces
	 * nothing here.  filerd gives its row's rate when that row is the
	 * source (--reverse: W's row becomes the source's), else 0.
	 * 0: none; else raised to MIR_THROTTLE_MIN, cut to
	 * MIR_THROTTLE_MAX.  W: unused. */
	uint64_t rel_throttle_bps;
	/* T: a file where T records, durably, that RS_DONE came (the
	 * relationship, G and G's root) before it rolls back; removed once
	 * the roll back is durable.  A crash in between leaves it for
	 * mir_resync_done_rollback.  NULL: no record. */
	const char *done_path;
};

struct mir_resync_result {
	uint64_t base_gen;		/* G */
	uint64_t snap_gen;		/* the snapshot on W */
	uint64_t blocks_sent;		/* T -> W */
	uint64_t blocks_received;	/* W: from T */
	uint64_t blocks_imported;	/* W: moved into the snapshot */
	uint64_t bytes_out, bytes_in;
	char snap_name[64];		/* W: the active tree's snapshot */
	uint32_t snaps;			/* snapshots holding T's data: its
					   active tree and each snapshot it
					   made after G */
	char snap_names[512];		/* W: their names, the active tree's
					   first, ", " between; ", ..." ends
					   a list cut short */
	uint64_t rel_throttle_bps;	/* W: the throttle T's RS_BEGIN
					   carried (0 or MIR_THROTTLE_MIN ..
					   MIR_THROTTLE_MAX; checked) */
	char error[192];
};

/* W: wait (in a thread) for T, import its divergent tree.  The volume
 * stays writable meanwhile. */
int mir_resync_serve(wafl_vol_t *w, const struct mir_resync_opts *o,
    mir_resync_t **out);
uint16_t mir_resync_port(const mir_resync_t *r);
/* 0 once the import is durable; -EINPROGRESS while the session still
 * runs after timeout_ms; or the session's error (which may be -ETIMEDOUT:
 * no peer by the accept deadline, or a link that went silent). */
int mir_resync_wait(mir_resync_t *r, uint32_t timeout_ms,
    struct mir_resync_result *res);
/*
 * Ask the session to stop and wait for its thread; the result stays for
 * mir_resync_wait: 0 if it finished all the same (a half between its last
 * exchange and its end does not stop there), else its error.
 */
void mir_resync_cancel(mir_resync_t *r);
/* Stop (a T volume not taken back with mir_resync_volume is unmounted). */
void mir_resync_stop(mir_resync_t *r);
/*
 * Either side, in a thread, whichever end connects (filerd: the side whose
 * relationship row is the source connects to its peer, the other listens
 * on its mirror port).  T (o->overwrite) hands v over: after
 * mir_resync_wait, mir_resync_volume gives it back if it is still
 * mounted (the resync failed before rolling back), else NULL; raid and
 * nvlog are T's, as for mir_resync_overwrite.
 */
int mir_resync_start(wafl_vol_t *v, raid_vol_t *raid, const char *nvlog,
    const struct mir_resync_opts *o, mir_resync_t **out);
wafl_vol_t *mir_resync_volume(mir_resync_t *r);
/*
 * T: the caller has stopped writes to *t (it is about to be rolled back).
 * Connect to W, send the data written here since G, wait until W has it
 * durably, then unmount *t (*t becomes NULL), roll the raid volume back to
 * root G as a replica and remove the NVLOG at nvlog_path.  If it fails
 * before the roll back, *t stays mounted and unchanged.
 */
int mir_resync_overwrite(wafl_vol_t **t, raid_vol_t *raid,
    const char *nvlog_path, const struct mir_resync_opts *o,
    struct mir_resync_result *res);
/*
 * What a resync's roll back left on T (a mounted volume; filerd mounts a
 * volume whose row says resyncing read-only at start): 1 if its newest
 * root is the one mir_resync_overwrite rolled back to (fsinfo flag
 * WAFL_FSI_REPLICA, which nothing else sets, and a ring of that root
 * alone: a CP since would have made the ring longer, and the first root
 * a source sends replaces it), *gen its generation, the common one; 0 if
 * not (T cut short before its roll back was durable, or W); or a
 * negative errno.
 */
int mir_resync_rolled_back(wafl_vol_t *v, uint64_t *gen);
/*
 * T's record that RS_DONE came (mir_resync_opts.done_path), left by a
 * crash before its roll back was durable: W holds T's data, so the roll
 * back is finished now.  raid is T's volume, not mounted.  1: rolled
 * back to *gen (the NVLOG at nvlog_path removed, the record too); 0: no
 * valid record for relationship rel_id (a torn or foreign one is
 * removed), nothing changed; or a negative errno (the record stays).
 */
int mir_resync_done_rollback(raid_vol_t *raid, const char *nvlog_path,
    const char *done_path, const uint8_t rel_id[MIR_REL_ID_SIZE],
    uint64_t *gen);
/* Tests: T kills its process (SIGKILL) once its record of RS_DONE is
 * durable, before it rolls back. */
void mir_resync_test_crash_after_done_record(void);

#endif
