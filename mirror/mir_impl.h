/*
 * mirror/mir_impl.h: internals shared by the mirror's files.
 */
#ifndef FILER_MIRROR_MIR_IMPL_H
#define FILER_MIRROR_MIR_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mirror/mirror.h"
#include "raid/raid.h"
#include "wafl/ondisk.h"
#include "wafl/wafl.h"

/*
 * Large buffers of the transfer path (the verifier's table, the write
 * batches): anonymous memory, zeroed, asking for huge pages, so that a
 * baseline touching hundreds of megabytes takes a page fault and a TLB
 * entry per 2 MiB rather than per 4 KiB.  NULL on failure.  Free with the
 * same size (dwrite.c).
 */
void *mir_big_alloc(size_t bytes);
void mir_big_free(void *p, size_t bytes);

/*
 * A walk's callback run on a thread of its own (wpipe.c), so that the
 * walk reads while the callback sends: start with the real callback, walk
 * with mir_wpipe_push and the pipe as its argument, then
 * mir_wpipe_finish(pipe, the walk's result), which waits for the callback
 * to be done with every block and returns the first error of either.
 */
struct mir_wpipe;
int mir_wpipe_start(wafl_walk_fn *fn, void *arg, struct mir_wpipe **out);
wafl_walk_fn mir_wpipe_push;
int mir_wpipe_finish(struct mir_wpipe *p, int rc);

/*
 * Where a listening side takes its connections from (listen.c): a socket
 * of its own on host:port, or its inbox on a shared listener, keyed by the
 * relationship id and kind (resync: a resync's greetings, else a source's
 * HELLO).  mir_acceptor_next waits up to timeout_ms and returns a
 * connected socket (the caller's) or -1.  -EADDRINUSE from open: the port
 * is taken, or the listener already has a side with that id and kind.
 */
struct mir_inbox;
struct mir_acceptor {
	int lfd;
	mir_listener_t *l;
	struct mir_inbox *in;
	uint16_t port;
};
int mir_acceptor_open(struct mir_acceptor *a, mir_listener_t *l,
    const char *host, uint16_t port, const uint8_t id[16], bool resync);
int mir_acceptor_next(struct mir_acceptor *a, int timeout_ms);
/* A connection waits to be taken (mir_acceptor_next would not wait). */
bool mir_acceptor_waiting(struct mir_acceptor *a);
void mir_acceptor_close(struct mir_acceptor *a);

/*
 * The destination's verifier (verify.c).  It holds what the new tree
 * expects: block pointers {vbn, birth, checksum} found in verified parent
 * blocks, starting from the root pointer in the fsinfo the source sent.
 * Blocks born at or before `base` are already on the destination and are
 * not expected; every other pointer must be satisfied by a received block
 * whose checksum matches (M3).
 *
 *   walk mode   blocks arrive parent first; mv_block checks each against
 *               the expectation its parent set, then parses it.
 *   cp mode     blocks are stashed (copied) as they arrive; once the root
 *               is known, mv_expect_root verifies the tree downward through
 *               the stash.
 * mv_finish: every expectation met, and (cp mode) every stashed block
 * reached from the root.  Every failure is -FL_ECORRUPT with a reason in
 * mv->why.
 */
struct mv_ent;
struct mir_verify {
	uint64_t base, target, nvbns;
	struct mv_ent *tab;
	uint64_t cap, used;
	uint64_t expected, satisfied, stashed, stashed_done;
	uint64_t stash_bytes;
	char why[192];
};

int mv_init(struct mir_verify *mv, uint64_t base, uint64_t target,
    uint64_t nvbns);
void mv_release(struct mir_verify *mv);
/* Expect the tree's root block. */
int mv_expect_root(struct mir_verify *mv, const struct wafl_bp *root);
/* Walk mode: a block arrived; verify it against its expectation.  crc is
 * fl_crc32c(0, data), computed by the caller (as the frame was checked). */
int mv_block(struct mir_verify *mv, uint64_t vbn, uint64_t birth,
    uint32_t crc, const uint8_t *data);
/* cp mode: keep a copy of a block until the root arrives. */
int mv_stash(struct mir_verify *mv, uint64_t vbn, uint64_t birth,
    const uint8_t *data);
int mv_finish(struct mir_verify *mv);
/* cp mode, after mv_finish: call fn for every stashed block in VBN
 * order (they are all verified). */
typedef int mv_block_fn(void *arg, uint64_t vbn, const uint8_t *data);
int mv_for_each_stashed(struct mir_verify *mv, mv_block_fn *fn, void *arg);

/*
 * The destination's write-behind for walk transfers (dwrite.c): verified
 * blocks are handed over in arrival order and written by a thread of its
 * own, in whole stripes where the stripe's blocks have all arrived.
 * mdw_drain returns once every block handed over is written (not flushed:
 * the caller's raid_flush makes them durable).
 */
typedef int mdw_synced_fn(void *arg, const uint64_t *vbn,
    const uint64_t *birth, uint64_t n);
struct mdw_opts {
	raid_vol_t *raid;
	uint32_t batch_blocks;		/* blocks per batch handed over */
	uint32_t carry_blocks;		/* bound of blocks kept for their
					   stripe to fill */
	/* While sync points are on (mdw_sync), one every sync_every blocks
	 * (rounded up to a batch): carried blocks written, raid_flush, then
	 * synced_fn with the blocks handed over since the last one, in
	 * order (called on the writer's thread).  0: never. */
	uint64_t sync_every;
	mdw_synced_fn *synced_fn;
	void *arg;
	/* Blocks written are added to *blocks_written under stats_lock. */
	pthread_mutex_t *stats_lock;
	uint64_t *blocks_written;
};
struct mir_dwriter;
int mdw_start(const struct mdw_opts *o, struct mir_dwriter **out);
/* Copy a verified block into the current batch; a full batch goes to the
 * writer (waiting for a free one).  The writer's first error, if any. */
int mdw_put(struct mir_dwriter *w, uint64_t vbn, uint64_t birth,
    const uint8_t *data);
/* Sync points on or off for the next transfer (the writer is idle). */
void mdw_sync(struct mir_dwriter *w, bool on);
/* Everything handed over written (partial stripes included); the
 * writer's first error, if any. */
int mdw_drain(struct mir_dwriter *w);
/* Forget the transfer: batches not yet written are dropped, the carry
 * and the error cleared.  Returns with the writer idle. */
void mdw_abort(struct mir_dwriter *w);
void mdw_stop(struct mir_dwriter *w);

/*
 * Snapshot trees for transfers by birth generation (snapwalk.c).
 * wafl_birth_walk covers the active tree of a ring or held root; the
 * snapshots its snapshot table names are walked here, reading the source's
 * raid volume directly (snapshot blocks never change, W3) and verifying
 * every block against its parent's checksum (W1).
 */
/* Tests: W's next RS_DONE is not sent, and W goes on as if its send had
 * failed (the lost reply).  One shot, for the whole process. */
void mir_resync_test_drop_reply(void);

struct mir_vset {
	uint64_t *tab;
	uint64_t cap, used;
};
/* 1 added, 0 already present, -ENOMEM. */
int mir_vset_add(struct mir_vset *s, uint64_t vbn);
bool mir_vset_has(const struct mir_vset *s, uint64_t vbn);
void mir_vset_free(struct mir_vset *s);

#define MIR_MAX_SNAP_ROOTS	256u
/* Root pointers of the snapshots in f's tree born after `after`. */
int mir_snap_roots(raid_vol_t *raid, const struct wafl_fsinfo *f,
    uint64_t after, struct wafl_bp *out, size_t max, size_t *n);
/* Every block of the tree at root born after `after`, parent first,
 * skipping (with their subtrees) blocks already in seen; adds to seen.
 * fn's flags are 0: a snapshot's own blocks are never rewritten, so none
 * is worth keeping as the base of a DELTA (window.c). */
int mir_tree_walk(raid_vol_t *raid, const struct wafl_bp *root,
    uint64_t after, struct mir_vset *seen, wafl_walk_fn *fn, void *arg);

/*
 * The fallback for a destination that stays away (retain.c, M6).
 */
#define MIR_BASE_NAME_MAX	64u
void mir_base_name(uint64_t gen, char *buf, size_t len);
/* Generation of fallback snapshot mirror.base.<gen> if it exists (gen 0:
 * any), else 0. */
uint64_t mir_base_snapshot(wafl_vol_t *v, uint64_t gen);
/* Pending blocks over bound: root `acked` (held by the caller) becomes
 * snapshot mirror.base.<acked>.  1 done (release the holds), 0 not
 * needed, or an error. */
int mir_base_fallback(wafl_vol_t *v, uint64_t acked, uint64_t bound);
/* Delete the fallback snapshots older than acked. */
int mir_base_drop_older(wafl_vol_t *v, uint64_t acked);

#endif
