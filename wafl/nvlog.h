/*
 * wafl/nvlog.h (internal): the intent log (DESIGN.md §5).
 *
 * A log file (or device) of two halves.  Records of the operations that
 * belong to the open CP generation are appended to the current half; at the
 * freeze of a CP the writer switches to the other half, and when that CP's
 * fsinfo is durable the half holding its records is released.  CPs are
 * strictly sequential, so the half switched to is always released already.
 *
 * File layout (half_bytes = H, a multiple of 4096):
 *   [0, 4096)          log header: magic "FLRNVLG1", version, half_bytes,
 *                      crc32c.  Written once at creation.
 *   [4096, 4096+H)     half 0
 *   [4096+H, 4096+2H)  half 1
 * Records are packed from the start of a half, 8-byte aligned:
 *     0    4  magic       "NVR1"
 *     4    4  length      bytes of header + payload (not padded)
 *     8    8  lsn         global, +1 per record, never reused
 *    16    8  gen         CP generation the operation belongs to
 *    24    2  type        record type (wafl's op codes)
 *    26    2  reserved    0
 *    28    4  crc32c      of the record with this field zero
 *    32    -  payload
 * A half is scanned from its start until the first record that does not
 * validate (magic, length bound, crc).  Stale records left by an earlier
 * use of a half carry a generation that is already durable, so replay
 * ignores them; LSN contiguity stops replay at the first lost record.
 *
 * Group commit: appends are pwrite()s into the page cache under the log
 * mutex; nvlog_wait(lsn) returns once an fdatasync covering lsn completed.
 * The first waiter to find no flush running becomes the flusher; every
 * waiter that arrives during a flush is covered by the next one.  A failed
 * fdatasync latches the log failed: every later wait returns -EIO.
 *
 * Concurrency: all functions are thread-safe.  Reservations guarantee room:
 * the caller (wafl) holds the volume's CP lock shared from nvlog_reserve to
 * nvlog_commit, and nvlog_switch is only called with it held exclusive, so a
 * reservation never straddles a switch.
 */
#ifndef FILER_WAFL_NVLOG_H
#define FILER_WAFL_NVLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define NVLOG_REC_HDR		32u
#define NVLOG_MAX_PAYLOAD	((1u << 20) + 65536u)

struct nvlog;

struct nvlog_resv {
	uint32_t bytes;		/* reserved, header and padding included */
};

struct nvlog_stats {
	uint64_t records;
	uint64_t bytes;
	uint64_t flushes;	/* fdatasync calls */
	uint64_t waits;		/* nvlog_wait calls that needed durability */
	uint32_t half;		/* current half */
	uint64_t half_used;	/* bytes used in the current half */
	uint64_t half_bytes;
};

/*
 * Open the log at path, creating it (half_bytes each half) if absent.  An
 * existing log keeps its own size (half_bytes is then ignored).  -FL_ECORRUPT
 * for a bad header.
 */
int nvlog_open(const char *path, uint64_t half_bytes, struct nvlog **out);
void nvlog_close(struct nvlog *lg);

/*
 * Call fn for every valid record with gen > after_gen, in LSN order,
 * stopping at the first gap.  payload is borrowed for the call.  A non-zero
 * return from fn stops the replay and is returned.  *last_lsn gets the
 * highest LSN seen in the log (valid or replayed), so new records continue
 * after it.
 */
typedef int nvlog_replay_fn(void *arg, uint64_t lsn, uint64_t gen,
    uint16_t type, const void *payload, uint32_t len);
int nvlog_replay(struct nvlog *lg, uint64_t after_gen, nvlog_replay_fn *fn,
    void *arg);

/*
 * Start appending: both halves are treated as free, new records go to
 * half 0 with LSNs after every LSN in the file.  Called after replay and the
 * CP that made the replayed operations durable (or on a fresh log).
 */
int nvlog_start(struct nvlog *lg);

/*
 * Reserve room for one record of up to max_payload bytes in the current
 * half.  Non-blocking: -EAGAIN if the half lacks room (the caller drops its
 * locks, forces a CP and retries), -EINVAL if max_payload is over
 * NVLOG_MAX_PAYLOAD, -EIO if the log has failed.
 */
int nvlog_reserve(struct nvlog *lg, uint32_t max_payload,
    struct nvlog_resv *r);
void nvlog_unreserve(struct nvlog *lg, struct nvlog_resv *r);

/*
 * Append a record (payload gathered from iov) in the reserved room; returns
 * its LSN in *lsn.  Not durable until nvlog_wait(lsn).
 */
int nvlog_commit(struct nvlog *lg, struct nvlog_resv *r, uint64_t gen,
    uint16_t type, const struct iovec *iov, int iovcnt, uint64_t *lsn);

/* Block until lsn is durable (group commit).  0, or -EIO if it never will
 * be. */
int nvlog_wait(struct nvlog *lg, uint64_t lsn);
/* Make every committed record durable. */
int nvlog_sync(struct nvlog *lg);

/* Switch appends to the other half (CP freeze, caller excludes commits). */
int nvlog_switch(struct nvlog *lg);
/* The CP whose records are in the previous half is durable: free it. */
void nvlog_release_prev(struct nvlog *lg);

/* Fraction of the current half in use or reserved, 0.0 .. 1.0. */
double nvlog_fill(struct nvlog *lg);
bool nvlog_failed(const struct nvlog *lg);
void nvlog_get_stats(struct nvlog *lg, struct nvlog_stats *st);

#endif
