/*
 * raid/raid.h: a volume of VBNs over RAID groups of disk images.
 *
 * WHAT THIS MODULE PROMISES
 *   A volume presents a dense array of 4096-byte blocks addressed by 64-bit
 *   volume block numbers (VBNs), 0 .. raid_geometry.nvbns - 1.  Under it are
 *   one or more RAID groups of N data disks and P parity disks (P = 1, 2, 3;
 *   all groups of a volume share N, P and the disk size).  Parity is
 *   computed with ISA-L: XOR for P = 1, Cauchy Reed-Solomon for P >= 2;
 *   reconstruction goes through one matrix-inversion path for every P.
 *   Parity i of a stripe is sum_j E[N+i][j] * data[j] in GF(2^8) (0x11d):
 *   P = 1, E[N][j] = 1 (plain XOR); P >= 2, E[N+i][j] = 1 / ((N+i) ^ j),
 *   the rows of ISA-L's gf_gen_cauchy1_matrix.
 *
 *   VBN mapping (docs/raid.md): groups are concatenated; inside a group,
 *       stripe = v / N, data disk = v % N, disk block = stripe
 *   so N consecutive VBNs starting at a multiple of N form one stripe, and a
 *   writer that allocates consecutive VBNs (wafl's CP does) writes whole
 *   stripes, whose parity needs no reads.  Parity disks are dedicated
 *   (RAID-4 style for P = 1), positions N .. N+P-1 of the group.
 *
 *   R1  A read returns the data last written to that VBN, or an error;
 *       never other data, whatever the state of up to P disks per group.
 *   R2  raid_flush() returns 0 only when every write issued before it is
 *       durable on every working disk.
 *   R3  Full-stripe writes read nothing.  Partial-stripe writes read the
 *       stripe's other data blocks and recompute all parity
 *       (reconstruct-write), so parity never depends on old parity.
 *   R4  Write hole: a stripe is recorded in the on-disk write-intent bitmap
 *       (durably) before any of its blocks is written, and cleared after the
 *       next flush.  Opening a volume resyncs the parity of every stripe
 *       region still marked, before any I/O is served.  So a crash between
 *       data and parity writes never leaves parity that would reconstruct
 *       wrong data for a block that was not being written.  With a data
 *       disk out, a degraded-write journal keeps the missing blocks'
 *       values across the crash (docs/raid.md).
 *   R5  A disk that returns an I/O error, or does not answer a read,
 *       write or flush within raid_open_opts.io_timeout_ms, is failed
 *       automatically (logged with its path and the reason, e.g. "no
 *       answer for 30000 ms", event raised, labels on the remaining disks
 *       updated so it is stale from then on), and the operation goes on
 *       without it: a read is reconstructed, a write or flush proceeds
 *       degraded.  No caller waits on a disk for longer than the timeout
 *       (per attempt: a read that meets several silent disks waits for
 *       each at most once).  More than P failed disks in a group: every
 *       I/O on that group returns -FL_EDEGRADED; never wrong data.
 *   R6  Labels: opening refuses (fails, naming the disk and the reason) a
 *       foreign disk (other volume UUID), a disk at another position than
 *       its label says, and a duplicate (same disk UUID twice).  A stale
 *       disk (label generation older than the group's) and a missing disk
 *       are left out and the group runs degraded if parity allows.
 *
 * WHAT IT NEEDS
 *   Disk paths in position order: group 0 positions 0..N+P-1, group 1 ...,
 *   then spares.  After a rebuild the spare holds the rebuilt position
 *   (raid_disk_info says where); the next open must list it there.  Paths are regular files (image files, created sparse by
 *   raid_create unless preallocation is asked for) or block devices.
 *
 * CONCURRENCY
 *   Every function is safe to call from many threads at once.  Reads and
 *   writes of different stripes proceed in parallel; writes to the same
 *   stripe are serialised by a stripe lock.  Rebuild runs in a background
 *   thread owned by the volume.  Disk I/O runs on a few worker threads
 *   per disk owned by the volume, so that a caller can give up on a disk
 *   that hangs; raid_close returns in bounded time even then (a worker
 *   stuck inside the kernel is left behind, owning nothing of the caller's).
 *
 * OWNERSHIP
 *   raid_vol_t is owned by the caller of raid_create/raid_open and freed by
 *   raid_close.  Buffers passed in are borrowed for the call.  Strings in
 *   struct raid_disk_info are borrowed until raid_close.
 */
#ifndef FILER_RAID_RAID_H
#define FILER_RAID_RAID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAID_BLOCK_SIZE		4096u
#define RAID_MAX_PARITY		3u
#define RAID_MAX_DATA		28u	/* data disks per group */
#define RAID_MAX_GROUPS		16u

typedef struct raid_vol raid_vol_t;

enum raid_disk_state {
	RAID_DISK_OK = 0,
	RAID_DISK_FAILED,	/* failed by error or by request */
	RAID_DISK_MISSING,	/* absent, unlabeled or stale at open */
	RAID_DISK_REBUILDING,	/* a spare being rebuilt into a position */
	RAID_DISK_SPARE,	/* standby, not in any group */
};

const char *raid_disk_state_name(enum raid_disk_state s);

/* Events raised to the owner (admin event log).  msg is borrowed. */
enum raid_event {
	RAID_EV_DISK_FAILED,
	RAID_EV_DISK_MISSING,
	RAID_EV_REBUILD_STARTED,
	RAID_EV_REBUILD_DONE,
	RAID_EV_REBUILD_FAILED,
	RAID_EV_SCRUB_MISMATCH,
	RAID_EV_GROUP_OFFLINE,	/* more than P disks lost in a group */
	RAID_EV_RESYNC,		/* write-intent resync after unclean open */
	/* A rebuild's parity check found a stripe inconsistent. */
	RAID_EV_REBUILD_MISMATCH,
};
typedef void raid_event_fn(void *arg, enum raid_event ev, const char *msg);

struct raid_create_opts {
	uint32_t ngroups;	/* 1 .. RAID_MAX_GROUPS */
	uint32_t ndata;		/* data disks per group, 1 .. RAID_MAX_DATA */
	uint32_t nparity;	/* 1 .. RAID_MAX_PARITY */
	uint64_t disk_blocks;	/* usable 4 KiB blocks per disk (data area) */
	/* ngroups * (ndata + nparity) paths, group-major; created if absent. */
	const char *const *paths;
	bool preallocate;	/* fallocate images instead of leaving sparse */
};

struct raid_open_opts {
	raid_event_fn *event_fn;	/* may be NULL */
	void *event_arg;
	/*
	 * Wrap every disk in the fault injector (raid_fault_*).  Tests only;
	 * costs a lock and a lookup per I/O.
	 */
	bool fault_inject;
	/* Start a rebuild by itself when a disk fails and a spare exists. */
	bool auto_rebuild;
	/*
	 * Longest wait for one disk I/O (read, write, flush), ms; 0 means
	 * RAID_IO_TIMEOUT_DEFAULT_MS, values below RAID_IO_TIMEOUT_MIN_MS
	 * are raised to it.  A disk that does not answer in time is failed
	 * (R5).
	 */
	uint32_t io_timeout_ms;
};

#define RAID_IO_TIMEOUT_DEFAULT_MS	30000u
#define RAID_IO_TIMEOUT_MIN_MS		10u

/*
 * Create a new volume: write labels on every disk, zero parity is implied by
 * zero data (images start as holes).  Then open it as raid_open would.
 * Refuses (-EEXIST) a path that already carries a filer label.
 */
int raid_create(const struct raid_create_opts *c,
    const struct raid_open_opts *o, raid_vol_t **out);

/*
 * Open a volume.  paths: the group members in position order, then any
 * spares (npaths >= ngroups * (N + P) as the labels say).  A NULL path or a
 * path that cannot be opened is a missing disk.  Refusals per R6 return
 * -FL_ELABEL; too many missing/stale disks in a group, -FL_EDEGRADED.
 */
int raid_open(const char *const *paths, size_t npaths,
    const struct raid_open_opts *o, raid_vol_t **out);

/* Flush, mark clean, stop the rebuild thread, close every disk. */
void raid_close(raid_vol_t *v);

struct raid_geometry {
	uint8_t uuid[16];	/* the volume's identity */
	uint32_t ngroups, ndata, nparity;
	uint64_t disk_blocks;	/* data blocks per disk */
	uint64_t nvbns;		/* ngroups * ndata * disk_blocks */
	uint32_t stripe_width;	/* ndata: VBNs per stripe */
};
void raid_geometry(const raid_vol_t *v, struct raid_geometry *g);

/*
 * Read n blocks starting at vbn into buf (n * 4096 bytes).  Blocks on failed
 * or missing disks are reconstructed from parity.  -ERANGE past the end,
 * -FL_EDEGRADED if a block cannot be produced.
 */
int raid_read(raid_vol_t *v, uint64_t vbn, uint32_t n, void *buf);
/*
 * A hint: the n blocks from vbn will be read soon.  Each data disk that
 * holds some of them starts reading its part in the background (the page
 * cache's read-ahead: POSIX_FADV_WILLNEED), so that the raid_read that
 * follows finds them there.  Never waits, never fails; a range past the
 * end is cut.
 */
void raid_prefetch(raid_vol_t *v, uint64_t vbn, uint64_t n);

/*
 * Write n blocks starting at vbn.  Whole stripes inside the range go the
 * full-stripe path (R3); the ragged ends are partial-stripe writes.  Not
 * durable until raid_flush().
 */
int raid_write(raid_vol_t *v, uint64_t vbn, uint32_t n, const void *buf);
/* raid_write of blocks that lie apart: blocks[i] is block vbn + i. */
int raid_writev(raid_vol_t *v, uint64_t vbn, uint32_t n,
    const uint8_t *const *blocks);

/*
 * A write stream: whole-stripe writes that keep the disks busy across
 * calls.  raid_writev returns once its last chunk is written; a stream's
 * raid_wstream_writev returns once its last chunk is on its way, so the
 * caller prepares the next write while the disks still have the previous
 * one (about a chunk of RAID_CHUNK_STRIPES stripes stays queued).
 *
 * Each chunk started gets a sequence number; *seq is that of the call's
 * last chunk.  The blocks passed stay in use until raid_wstream_done
 * reaches *seq (raid_wstream_wait, raid_wstream_drain); the blocks array
 * itself is not kept.  A write that is not whole aligned stripes is
 * written at once, as by raid_writev, after the chunks in flight.  Chunks
 * hold their stripes' range locks while in flight, so a caller must drain
 * before any other write of its own that might touch them, before
 * raid_flush (which waits for them) and before it goes idle.
 *
 * The first error of any chunk is kept: every later call returns it and
 * nothing more is started.  One thread uses a stream at a time.
 */
typedef struct raid_wstream raid_wstream_t;
int raid_wstream_open(raid_vol_t *v, raid_wstream_t **out);
int raid_wstream_writev(raid_wstream_t *ws, uint64_t vbn, uint32_t n,
    const uint8_t *const *blocks, uint64_t *seq);
/* Chunks finished: every chunk with a sequence number up to this one. */
uint64_t raid_wstream_done(const raid_wstream_t *ws);
/* Finish chunks until raid_wstream_done >= seq; the stream's error. */
int raid_wstream_wait(raid_wstream_t *ws, uint64_t seq);
int raid_wstream_drain(raid_wstream_t *ws);
/* Drains, then frees; the stream's error.  NULL: nothing. */
int raid_wstream_close(raid_wstream_t *ws);

/*
 * Write nstripes whole stripes of group-relative stripe numbers, first the
 * stripe containing first_vbn (which must be stripe-aligned).  buf holds
 * nstripes * ndata blocks in VBN order.  -EINVAL if not aligned.
 */
int raid_write_stripes(raid_vol_t *v, uint64_t first_vbn, uint32_t nstripes,
    const void *buf);

/*
 * Barrier (R2): every disk durable, then write-intent bits cleared.
 * -FL_EDEGRADED while some group is offline (more than P out): the other
 * groups' writes are durable all the same.
 */
int raid_flush(raid_vol_t *v);

/*
 * Reconstruct the block at vbn from the other disks of its stripe, without
 * using the block's own disk (the hook wafl uses when a checksum does not
 * match).  attempt 0 uses the first P-subset of the other disks; with
 * P >= 2, attempts 1.. leave out one more disk each, so a second silently
 * corrupt disk (data or parity) can be stepped around.  Returns 0 with the
 * data in buf, -ENOENT when attempt is past the last possibility.
 */
int raid_reconstruct(raid_vol_t *v, uint64_t vbn, unsigned attempt,
    void *buf);

/*
 * Rewrite one block in place on its own disk with data the caller has
 * verified (after raid_reconstruct); parity is already consistent with it.
 * If the block's disk is out there is nothing to rewrite: returns 0.
 * While the group is rebuilt onto a spare, a stripe the rebuild has passed
 * gets its spare block brought in line too (the block itself if it is the
 * position being rebuilt, else solved again from the repaired stripe).
 */
int raid_repair(raid_vol_t *v, uint64_t vbn, const void *buf);

/* Disks, numbered 0 .. raid_ndisks()-1: group members, then spares. */
struct raid_disk_info {
	const char *path;
	enum raid_disk_state state;
	int group;		/* -1 for a spare */
	int position;		/* 0..N-1 data, N..N+P-1 parity; -1 spare */
	uint8_t disk_uuid[16];
	uint64_t read_errors, write_errors;
	uint64_t timeouts;	/* I/Os that got no answer in io_timeout_ms */
	const char *reason;	/* why failed/missing, "" if ok */
};
size_t raid_ndisks(const raid_vol_t *v);
int raid_disk_info(const raid_vol_t *v, size_t disk,
    struct raid_disk_info *info);

/* Fail a member disk by request (admin "disk fail"); logged, event raised. */
int raid_fail_disk(raid_vol_t *v, size_t disk, const char *reason);

/* Label path as a spare of this volume (created if absent). */
int raid_add_spare(raid_vol_t *v, const char *path);

/*
 * Start a background rebuild of the first failed or missing position onto
 * the first spare.  -ENOENT: nothing to rebuild; -ENOSPC: no spare;
 * -EBUSY: a rebuild runs.  Writes go on during the rebuild; stripes below
 * the rebuild cursor are written to the new disk too.
 */
int raid_rebuild_start(raid_vol_t *v);
/* Block until no rebuild runs; returns the last rebuild's result. */
int raid_rebuild_wait(raid_vol_t *v);

/*
 * Scrub: verify every stripe's parity against its data; with repair,
 * rewrite parity that does not match.  Synchronous (the caller chooses the
 * thread); progress is visible in raid_status.
 */
struct raid_scrub_result {
	uint64_t stripes_checked;
	uint64_t mismatches;
	uint64_t repaired;
	uint64_t unreadable;	/* stripes that could not be verified */
};
int raid_scrub(raid_vol_t *v, bool repair, struct raid_scrub_result *res);

struct raid_counters {
	uint64_t reads;			/* data blocks read for callers */
	uint64_t writes;		/* data blocks written for callers */
	uint64_t parity_reads;		/* parity blocks read */
	uint64_t parity_writes;		/* parity blocks written */
	uint64_t full_stripe_writes;	/* stripes written whole */
	uint64_t partial_stripe_writes;	/* stripes written in part */
	uint64_t partial_reads;		/* data blocks read for partial writes */
	uint64_t reconstructions;	/* blocks rebuilt from parity on read */
	uint64_t flushes;
	uint64_t intent_writes;		/* write-intent bitmap block writes */
	/* Stripes a rebuild found inconsistent (its parity check). */
	uint64_t rebuild_mismatches;
};

struct raid_status {
	bool degraded;		/* some group runs on parity */
	bool offline;		/* some group lost more than P disks */
	bool rebuilding;
	uint64_t rebuild_done, rebuild_total;	/* stripes */
	bool scrubbing;
	uint64_t scrub_done, scrub_total;	/* stripes */
	struct raid_counters counters;
};
void raid_status(const raid_vol_t *v, struct raid_status *st);
void raid_counters_reset(raid_vol_t *v);

/*
 * Fault injection (tests; needs raid_open_opts.fault_inject).
 *
 * Disks are numbered as in raid_disk_info.  While a fault is set, the disk
 * behaves as described until cleared.  The crash simulator keeps every write
 * not yet covered by a flush in memory; raid_fault_crash() then applies a
 * random subset of them to the image files (each chosen write whole, or torn
 * at a random 512-byte boundary, per mode), discards the rest, and makes
 * every later I/O on the volume fail with -FL_ECRASHED.  The test then
 * raid_close()s (which writes nothing more) and raid_open()s again.
 */
enum raid_fault_kind {
	RAID_FAULT_NONE = 0,
	RAID_FAULT_DEAD,	/* every I/O returns EIO */
	RAID_FAULT_EIO_READ,	/* reads of [block, block+count) return EIO */
	RAID_FAULT_EIO_WRITE,	/* writes of [block, block+count) return EIO */
	/*
	 * Every I/O (read, write, sync) blocks without an answer until the
	 * fault is changed or cleared (then it goes on as the new kind says)
	 * or the volume is closed (then it fails).
	 */
	RAID_FAULT_HANG,
	/*
	 * A disk of limited bandwidth: block is the rate in MB/s (10^6
	 * bytes per second, >= 1), count is ignored.  Reads and writes share
	 * it as on one spindle: an I/O of n bytes completes n / rate after
	 * the disk is done with the I/O before it (a token bucket without
	 * burst).  Reads are served on the caller's fast path only from a
	 * prefetched range whose bytes have arrived; a prefetch (the page
	 * cache's read-ahead) takes its share of the bandwidth when it is
	 * asked for, so every byte is paid for.  Syncs cost nothing.  Clearing (or changing) the fault releases
	 * waiting I/O at once.  For simulating disks of their own over one
	 * device (bench_raid).
	 */
	RAID_FAULT_THROTTLE,
};
int raid_fault_set(raid_vol_t *v, size_t disk, enum raid_fault_kind kind,
    uint64_t block, uint64_t count);
/* Flip one bit of a disk block (disk-relative data-area block number)
 * directly in the image, bypassing parity. */
int raid_fault_flip_bit(raid_vol_t *v, size_t disk, uint64_t block,
    uint32_t bit);
/* Map a VBN to the disk index and disk block that hold it. */
int raid_vbn_locate(const raid_vol_t *v, uint64_t vbn, size_t *disk,
    uint64_t *block);
/* Disk index of parity p (0..P-1) for the stripe holding vbn. */
int raid_parity_locate(const raid_vol_t *v, uint64_t vbn, unsigned p,
    size_t *disk, uint64_t *block);

enum raid_crash_mode {
	RAID_CRASH_DROP_ALL,	/* no unflushed write reaches the disk */
	RAID_CRASH_RANDOM,	/* a random subset, each whole */
	RAID_CRASH_TEAR,	/* a random subset, some torn */
};
int raid_fault_crash(raid_vol_t *v, enum raid_crash_mode mode,
    uint64_t seed);
/* Number of writes held by the crash simulator (not yet flushed). */
uint64_t raid_fault_pending(const raid_vol_t *v);

#endif
