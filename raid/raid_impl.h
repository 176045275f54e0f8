/*
 * raid/raid_impl.h: internals shared by the files of raid/ (not a public
 * header; nothing outside raid/ includes it).
 *
 * Lock order (never taken in the other direction):
 *     range lock  ->  intent.lock  ->  label_lock  ->  state_lock
 *     fault device mutex is a leaf (taken only inside device calls)
 *     deadline device mutex is a leaf (deadline.c; never held across a
 *     device call)
 * rb_lock (rebuild bookkeeping) is never held while taking any of the above
 * except state_lock.
 */
#ifndef FILER_RAID_RAID_IMPL_H
#define FILER_RAID_RAID_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "raid/label.h"
#include "raid/raid.h"

#define RAID_SUBSYS		"raid"
#define RAID_MAX_WIDTH		(RAID_MAX_DATA + RAID_MAX_PARITY)
#define RAID_MAX_SPARES		16u
#define RAID_CHUNK_STRIPES	256u	/* stripes per batched operation */
#define RAID_REASON_LEN		160
#define RAID_SCRATCH_KEEP	4u

/* ---- devices (disk.c, fault.c) ---------------------------------------- */

struct raid_dev;

/*
 * Read flags.  RAID_RD_RANDOM: a read of a few blocks that no read of the
 * blocks after them follows (a partial stripe's other blocks): no
 * readahead, which on a file would fill the page cache with megabytes
 * around each such block (zeros, in an image's holes).
 */
#define RAID_RD_RANDOM	1u

/*
 * The disk-ops vtable.  Offsets are absolute byte offsets on the device.
 * Every call returns 0 or a negative errno (or -FL_ECRASHED from the fault
 * wrapper after a simulated crash).  Short transfers are not reported: a
 * call either moves every byte or fails.
 */
struct raid_dev_ops {
	int (*preadv)(struct raid_dev *d, const struct iovec *iov, int cnt,
	    uint64_t off, unsigned rf);
	/*
	 * preadv only if it needs no device I/O (the data is in memory):
	 * 0 with every byte read, -EAGAIN if the device would be waited for
	 * (some bytes may have been read), or an error.  Never blocks on the
	 * device.  May be NULL.
	 */
	int (*try_preadv)(struct raid_dev *d, const struct iovec *iov, int cnt,
	    uint64_t off, unsigned rf);
	int (*pwritev)(struct raid_dev *d, const struct iovec *iov, int cnt,
	    uint64_t off);
	int (*sync)(struct raid_dev *d);
	void (*close)(struct raid_dev *d);
	/* Hint: [off, off+len) will be read soon (start it in the
	 * background, so reads of several disks overlap).  May be NULL. */
	void (*prefetch)(struct raid_dev *d, uint64_t off, uint64_t len);
	/* Closing: stop waits the device itself controls (the fault
	 * injector's HANG), from any thread.  May be NULL. */
	void (*abort)(struct raid_dev *d);
	/* Hint: [off, off+len) was written and synced and need not stay in
	 * memory (deadline.c).  Never changes what a read returns.  May be
	 * NULL. */
	void (*forget)(struct raid_dev *d, uint64_t off, uint64_t len);
	/* pwritev only hands the buffers to the kernel, which copies them
	 * during the call: a write may run on its caller's buffers even if
	 * the caller may give up on it (deadline.c). */
	bool write_in_place;
};

struct raid_dev {
	const struct raid_dev_ops *ops;
	uint64_t size;		/* bytes */
	bool is_blockdev;
	int fd;			/* the file; -1 for a wrapper */
	int rfd;		/* the file again, for RAID_RD_RANDOM reads
				 * (readahead off); -1: use fd */
	/* The file under every wrapper (st_dev, st_ino): the same disk
	 * however its path is spelled. */
	uint64_t file_dev, file_ino;
};

/* Open (or with create, create) a plain file or block device. */
int raid_dev_open_file(const char *path, bool create, struct raid_dev **out);
/* Grow an image file to size bytes (sparse, or fallocated). */
int raid_dev_size_image(struct raid_dev *d, uint64_t size, bool prealloc,
    bool zero);
int raid_dev_pread(struct raid_dev *d, void *buf, size_t len, uint64_t off);
int raid_dev_pwrite(struct raid_dev *d, const void *buf, size_t len,
    uint64_t off);

/* Shared crash-simulator state of one volume (fault.c). */
struct raid_fault_world {
	atomic_bool crashed;
};
/* Wrap inner (ownership passes to the wrapper). */
int raid_fault_wrap(struct raid_dev *inner, struct raid_fault_world *w,
    struct raid_dev **out);
void raid_fault_bind(struct raid_dev *d, struct raid_fault_world *w,
    uint64_t data_off_blocks);
bool raid_dev_is_fault(const struct raid_dev *d);

/*
 * Deadlines (deadline.c).  Wrap inner so that its I/O runs on worker
 * threads and no caller waits longer than timeout_ms: past it the I/O
 * returns -ETIMEDOUT and so does every later I/O on the device.  Ownership
 * of inner passes to the wrapper on success only.
 */
int raid_dev_deadline_wrap(struct raid_dev *inner, uint32_t timeout_ms,
    struct raid_dev **out);
/* The device under a deadline wrapper (d itself if it is not one). */
struct raid_dev *raid_dev_unwrap(struct raid_dev *d);
/*
 * An I/O in flight.  submit starts it (the iovec array is copied, the
 * buffers it points to are borrowed until wait returns); wait returns its
 * result and frees it.  Every submitted I/O must be waited for.  On a
 * device without a deadline wrapper the I/O runs inside submit, and so
 * does a read whose data is in memory (try_preadv): then *out is NULL,
 * which wait takes as success.
 */
struct raid_dio;
int raid_dio_submit(struct raid_dev *d, bool write, unsigned rf,
    const struct iovec *iov, int cnt, uint64_t off, struct raid_dio **out);
int raid_dio_submit_sync(struct raid_dev *d, struct raid_dio **out);
int raid_dio_wait(struct raid_dio *io);

/* ---- parity (parity.c) ------------------------------------------------ */

struct raid_code {
	unsigned n, p;
	/* (n+p) x n encode matrix: identity, then the parity rows. */
	uint8_t enc[RAID_MAX_WIDTH * RAID_MAX_DATA];
	uint8_t enc_tbls[32 * RAID_MAX_DATA * RAID_MAX_PARITY];
};

int raid_code_init(struct raid_code *c, unsigned n, unsigned p);
/* parity[i] = parity row i over data[0..n-1]; len bytes each. */
void raid_code_encode(const struct raid_code *c, size_t len,
    uint8_t *const *data, uint8_t *const *parity);
/*
 * Solve: given the n blocks of positions rows_in[0..n-1] (distinct, any of
 * 0..n+p-1) in src[], produce the blocks of positions rows_out[0..nout-1]
 * into dst[].  Returns 0, or -EINVAL if the rows do not determine the
 * stripe (cannot happen for an MDS code with distinct rows).
 */
int raid_code_solve(const struct raid_code *c, const unsigned *rows_in,
    uint8_t *const *src, unsigned nout, const unsigned *rows_out,
    uint8_t *const *dst, size_t len);

/* A decode prepared once and applied to many stripes. */
struct raid_plan {
	unsigned nout;
	uint8_t tbls[32 * RAID_MAX_DATA * RAID_MAX_WIDTH];
};
int raid_code_plan(const struct raid_code *c, const unsigned *rows_in,
    unsigned nout, const unsigned *rows_out, struct raid_plan *pl);
void raid_code_apply(const struct raid_code *c, const struct raid_plan *pl,
    size_t len, uint8_t *const *src, uint8_t *const *dst);

/* ---- the volume -------------------------------------------------------- */

struct raid_disk {
	char *path;			/* owned; "" when no path was given */
	struct raid_dev *dev;		/* NULL when not open */
	enum raid_disk_state state;	/* state_lock */
	int group, position;		/* -1 for a spare / removed disk */
	uint8_t uuid[16];
	atomic_uint_least64_t read_errors, write_errors;
	atomic_uint_least64_t timeouts;	/* I/Os that got no answer */
	char reason[RAID_REASON_LEN];	/* state_lock */
};

#define RAID_INTENT_FRONTS	4u

struct raid_intent {
	uint32_t nregions;
	uint32_t nblocks;		/* bitmap blocks on each disk */
	uint8_t *ondisk;		/* bits believed set on disk */
	uint8_t *marked[2];		/* bits marked in epoch e (index e&1) */
	/* A region marked ahead of its writer stays marked on disk through
	 * the flush that closes epoch ahead_until[r] - 1 (0: not ahead);
	 * only regions in [ahead_lo, ahead_hi) may be. */
	uint64_t *ahead_until;
	uint32_t ahead_lo, ahead_hi;
	/* Where the last writes begun ended, plus 1 (0: none), newest at
	 * front_next - 1: a writer moving through the disk may share it with
	 * another (a walk's data and the pointer blocks among it). */
	uint64_t front[RAID_INTENT_FRONTS];
	unsigned front_next;
	uint64_t seq;			/* write sequence of bitmap blocks */
};

enum raid_jslot { JSLOT_FREE, JSLOT_WRITING, JSLOT_UNSYNCED };

/* A journal record loaded at open (journal.c). */
struct raid_jrec {
	uint32_t kind, k;	/* kind 0: empty */
	uint64_t seq, s0, s1;
	unsigned pos[RAID_MAX_PARITY];
	uint8_t *data;		/* k blocks, owned */
};

struct raid_journal {
	uint64_t next_seq;
	uint8_t slot[RAID_JOURNAL_SLOTS];	/* enum raid_jslot */
	struct raid_jrec *recs;			/* by slot; owned */
};

struct raid_group {
	int pos[RAID_MAX_WIDTH];	/* disk index at each position */
	/* The member table written into labels (state_lock). */
	uint8_t member_uuid[RAID_MAX_WIDTH][16];
	enum raid_disk_state member_state[RAID_MAX_WIDTH];
	bool offline_reported;
	struct raid_intent intent;	/* intent lock */
	struct raid_journal journal;	/* journal_lock */
	/*
	 * Recovery (J4): the generation of the group's newest label at open,
	 * and the positions that label records as out (failed or missing),
	 * before open adds the disks it finds absent.
	 */
	uint64_t label_gen;
	bool label_out[RAID_MAX_WIDTH];
};

struct raid_range {
	unsigned group;
	uint64_t s0, s1;
	struct raid_range *next;
};

struct raid_vol {
	/* Geometry: fixed after open. */
	uint8_t uuid[16];
	unsigned ngroups, n, p, w;	/* w = n + p */
	uint64_t disk_blocks;
	uint64_t data_off;		/* blocks */
	uint64_t intent_off;		/* blocks */
	uint64_t journal_off;		/* blocks */
	struct raid_code code;

	raid_event_fn *event_fn;
	void *event_arg;
	bool fault_inject, auto_rebuild;
	uint32_t io_timeout_ms;		/* per disk I/O (deadline.c) */
	struct raid_fault_world world;

	/* Disks: members (group-major at open), then spares. */
	pthread_mutex_t state_lock;
	struct raid_disk *disks;	/* capacity max_disks */
	size_t ndisks, max_disks;
	struct raid_group *groups;
	uint64_t generation;		/* state_lock */
	/* Member failures marked, and how many of them the labels on disk
	 * record (a label write that ended without a crash); state_lock. */
	uint64_t fail_marked, fail_labeled;
	uint64_t label_seq;		/* label_lock */
	pthread_mutex_t label_lock;
	atomic_bool closing;

	/* Range (stripe) locks. */
	pthread_mutex_t range_mu;
	pthread_cond_t range_cv;
	struct raid_range *ranges;

	/* Write intent (intent.c). */
	pthread_mutex_t intent_lock;
	pthread_cond_t intent_cv;
	uint64_t epoch;
	uint64_t inflight[2];
	pthread_mutex_t flush_lock;

	/* Degraded-write journal (journal.c). */
	pthread_mutex_t journal_lock;
	pthread_cond_t journal_cv;

	/* Rebuild (rebuild.c). */
	pthread_mutex_t rb_lock;
	pthread_cond_t rb_cv;
	bool rb_running, rb_joinable;
	atomic_bool rb_cancel;
	pthread_t rb_thread;
	int rb_result;
	unsigned rb_group, rb_pos;
	int rb_old_disk, rb_spare;
	atomic_uint_least64_t rb_cursor;	/* stripes done */
	atomic_uint_least64_t rb_total;

	/* Scratch buffers of (w + 1) * RAID_CHUNK_STRIPES blocks (io.c). */
	pthread_mutex_t scratch_lock;
	void *scratch[RAID_SCRATCH_KEEP];
	unsigned nscratch;

	atomic_bool scrubbing;
	atomic_uint_least64_t scrub_done, scrub_total;

	struct {
		atomic_uint_least64_t reads, writes, parity_reads,
		    parity_writes, full_stripe_writes,
		    partial_stripe_writes, partial_reads, reconstructions,
		    flushes, intent_writes, rebuild_mismatches;
	} ctr;
};

/* Where VBN vbn lies: group *g, its stripe *st, data position *x.  The
 * caller has checked that vbn is inside the volume. */
static inline void raid_vbn_split(const struct raid_vol *v, uint64_t vbn,
    unsigned *g, uint64_t *st, unsigned *x)
{
	uint64_t per = (uint64_t)v->n * v->disk_blocks;

	*g = (unsigned)(vbn / per);
	*st = (vbn % per) / v->n;
	*x = (unsigned)((vbn % per) % v->n);
}

#define CTR_ADD(v, f, x) \
	atomic_fetch_add_explicit(&(v)->ctr.f, (uint64_t)(x), \
	    memory_order_relaxed)

/* A consistent picture of one group, taken under state_lock. */
struct raid_gsnap {
	struct raid_disk *d[RAID_MAX_WIDTH];	/* NULL: nobody there */
	bool up[RAID_MAX_WIDTH];		/* OK: readable, current */
	unsigned nout;
	int rb_pos;				/* rebuilding position or -1 */
	struct raid_disk *rb_disk;
	/*
	 * The rebuild cursor of that same rebuild, read with the states.
	 * Taken under a range lock, it stays right for the locked stripes:
	 * the rebuild cannot move its cursor across them, and a later
	 * rebuild (which resets the cursor) concerns another snapshot.
	 */
	uint64_t rb_cursor;
};

/* open.c */
/* A disk of a volume: the open file plain, in the fault injector if
 * fault, under the I/O deadline (deadline.c).  Ownership of plain passes
 * (closed on failure). */
int raid_dev_wrap_vol(struct raid_dev *plain, bool fault,
    struct raid_fault_world *world, uint32_t timeout_ms,
    struct raid_dev **out);

/* raid.c */
void raid_gsnap_take(raid_vol_t *v, unsigned g, struct raid_gsnap *s);
bool raid_crashed(const raid_vol_t *v);
void raid_event(raid_vol_t *v, enum raid_event ev, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * R5: fail disk idx (if it is a member, spare or rebuilding spare not yet
 * failed): state FAILED, reason, log, event, label generation bumped on the
 * remaining disks.  err is the error that caused it (0 by request).
 */
void raid_disk_fail(raid_vol_t *v, size_t idx, int err, const char *why);
/* Write labels on every working disk; bump the generation if asked. */
int raid_labels_write(raid_vol_t *v, bool bump, bool clean);
/* Write labels if a member failure is not yet recorded in them (flush). */
int raid_labels_record_failures(raid_vol_t *v);
int raid_group_check(raid_vol_t *v, unsigned g, const struct raid_gsnap *s);
uint64_t raid_disk_off(const raid_vol_t *v, uint64_t block);
void raid_vol_free(raid_vol_t *v);

/* io.c: device I/O that fails the disk on error (R5). */
int raid_disk_read(raid_vol_t *v, struct raid_disk *d, void *buf,
    uint64_t nblocks, uint64_t block);
int raid_disk_write(raid_vol_t *v, struct raid_disk *d, const void *buf,
    uint64_t nblocks, uint64_t block);
void raid_disk_prefetch(raid_vol_t *v, struct raid_disk *d, uint64_t block,
    uint64_t nblocks);

/*
 * Disk I/O of several disks at once: every I/O added is started at once
 * (on the disks' workers, deadline.c), raid_batch_wait waits for all of
 * them and fails the disks whose I/O failed (R5).  Buffers are borrowed
 * until raid_batch_wait returns; the iovec arrays are copied.  At most
 * RAID_BATCH_MAX I/Os per batch.
 */
#define RAID_BATCH_MAX	(RAID_MAX_WIDTH + 1)
/* RAID_BOP_READ_RANDOM: a read with RAID_RD_RANDOM. */
enum raid_bop {
	RAID_BOP_READ, RAID_BOP_WRITE, RAID_BOP_SYNC, RAID_BOP_READ_RANDOM,
};
struct raid_batch {
	unsigned n;
	struct raid_disk *d[RAID_BATCH_MAX];
	struct raid_dio *io[RAID_BATCH_MAX];	/* NULL: err[] is final */
	enum raid_bop op[RAID_BATCH_MAX];
	int err[RAID_BATCH_MAX];		/* after wait: 0, -EIO, ... */
};
void raid_batch_init(struct raid_batch *b);
/* Returns the entry's index. */
unsigned raid_batch_add(raid_vol_t *v, struct raid_batch *b,
    struct raid_disk *d, enum raid_bop op, const struct iovec *iov, int cnt,
    uint64_t block);
/* The same at a byte offset of the device (labels, bitmap). */
unsigned raid_batch_add_at(raid_vol_t *v, struct raid_batch *b,
    struct raid_disk *d, enum raid_bop op, const struct iovec *iov, int cnt,
    uint64_t off);
/* 0, -EIO (some disk failed; see err[]) or -FL_ECRASHED.  The entries
 * stay readable until the next raid_batch_init. */
int raid_batch_wait(raid_vol_t *v, struct raid_batch *b);
void *raid_balloc(size_t nblocks);
/*
 * A scratch buffer of (w + 1) * RAID_CHUNK_STRIPES blocks, owned by the caller until
 * raid_scratch_put (reused, so hot paths take no page faults).
 */
void *raid_scratch_get(raid_vol_t *v);
void raid_scratch_put(raid_vol_t *v, void *buf);
/*
 * Read stripes [s0, s0+ns) of group g as a disk-major buffer
 * buf[pos * ns + k] for every position, reconstructing positions that are
 * out.  want[pos] says which positions the caller needs (NULL: all data
 * positions).  Caller holds the range lock.  Returns 0, -EIO (a disk just
 * failed: retake the snapshot and retry), -FL_EDEGRADED or -FL_ECRASHED.
 */
int raid_read_stripes_dm(raid_vol_t *v, unsigned g,
    const struct raid_gsnap *s, uint64_t s0, uint32_t ns, const bool *want,
    uint8_t *buf, unsigned *nrecon);

/* Range locks on (group, stripes [s0, s1)). */
void raid_range_lock(raid_vol_t *v, struct raid_range *r, unsigned g,
    uint64_t s0, uint64_t s1);
void raid_range_unlock(raid_vol_t *v, struct raid_range *r);

/* intent.c */
int raid_intent_init(raid_vol_t *v);
void raid_intent_free(raid_vol_t *v);
/* Encode/write every bitmap block of group g to disk (no sync). */
int raid_intent_write_empty(struct raid_dev *dev, const uint8_t uuid[16],
    unsigned g, uint64_t intent_off, uint32_t nblocks, uint32_t nregions);
/* Begin a write of stripes [s0, s1) of group g: R4 marking; returns the
 * epoch ticket for raid_intent_end. */
int raid_intent_begin(raid_vol_t *v, unsigned g, uint64_t s0, uint64_t s1,
    uint64_t *ticket);
void raid_intent_end(raid_vol_t *v, uint64_t ticket);
/* Flush part of R4: wait for the epoch, sync every disk, clear bits. */
int raid_intent_flush(raid_vol_t *v);
/* Closing: regions marked ahead need not stay marked (intent_lock). */
void raid_intent_drop_ahead(raid_vol_t *v);
/* Open: load bitmaps; resync marked regions if the volume was unclean. */
int raid_intent_recover(raid_vol_t *v, bool unclean);
/* Write group g's bitmap onto one disk and sync it (rebuild done). */
int raid_intent_write_disk(raid_vol_t *v, unsigned g, struct raid_disk *d);
uint32_t raid_intent_nblocks(uint64_t disk_blocks);

/* journal.c */
/*
 * Before a write to stripes of group g while a data position is out:
 * a data record (one stripe; the values of the missing data positions
 * after the write, blocks[pos] for every pos in missing[]) written and
 * synced on every working disk, or for whole stripes an invalidation
 * record (no sync needed).  Returns the slot for raid_journal_done.
 */
int raid_journal_log(raid_vol_t *v, unsigned g, const struct raid_gsnap *s,
    uint64_t stripe, unsigned nmiss, const unsigned *missing,
    uint8_t *const *blocks, int *slot);
int raid_journal_invalidate(raid_vol_t *v, unsigned g,
    const struct raid_gsnap *s, uint64_t s0, uint64_t s1, int *slot);
void raid_journal_done(raid_vol_t *v, unsigned g, int slot);
/* Open: load records of group g (and the next seq). */
int raid_journal_load(raid_vol_t *v, unsigned g);
void raid_journal_free(raid_vol_t *v, unsigned g);
/* Recovery: resync the journaled stripes of group g in dirty regions. */
int raid_journal_resync(raid_vol_t *v, unsigned g, const uint8_t *dirty,
    uint64_t *nstripes);

/* scrub.c */
/*
 * With two or more redundant blocks among the working positions of s,
 * the one block (data or parity) whose removal makes the stripe
 * consistent; blk[pos] is the stripe's block at each working position,
 * tmp room for w blocks.  Returns its position with its right contents in
 * fix, or -1 if no single block explains the mismatch.
 */
int raid_locate_bad(raid_vol_t *v, const struct raid_gsnap *s,
    uint8_t *const *blk, uint8_t *tmp, uint8_t *fix);

/* rebuild.c */
void raid_rebuild_stop(raid_vol_t *v);
void raid_rebuild_maybe_auto(raid_vol_t *v);

#endif
