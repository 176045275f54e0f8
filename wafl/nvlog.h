/*
 * wafl/nvlog.h (internal): the intent log (DESIGN.md §5).
 *
 * A log file (or device) of two halves.  Records of the operations that
 * belong to the open CP generation are appended to the current half; at the
 * freeze of a CP the writer switches to the other half, and when that CP's
 * fsinfo is durable the half holding its records is released.  CPs are
 * strictly sequential, so the half switched to is always released already.
 *
 * File layout (half_bytes = H, a multiple of 4096, >= NVLOG_MIN_HALF):
 *   [0, 4096)          log header block: two 64-byte header slots, slot 0
 *                      at offset 0 and slot 1 at offset 2048, rest zero
 *   [4096, 4096+H)     half 0
 *   [4096+H, 4096+2H)  half 1
 * Header slot (the valid slot with the higher run is current):
 *     0    8  magic       "FLRNVLG1"
 *     8    4  version     1
 *    12    4  reserved    0
 *    16    8  half_bytes  H
 *    24    8  run         +1 at every nvlog_start; written to slot run%2;
 *                         1 .. 2^63-1
 *    32    8  start_lsn   first LSN of this run; 1 .. 2^63-1
 *    40   20  reserved    0
 *    60    4  crc32c      of bytes 0..59
 * The creation writes run 1 into slot 1; each nvlog_start writes run+1 into
 * the other slot and fdatasyncs it before any record of the new run is
 * appended (the whole 4096-byte block is written; the old slot's bytes are
 * rewritten unchanged, so a torn write leaves the old slot valid).  A slot
 * with its magic and a matching crc but a field out of range refuses the
 * open: it was not torn, and the other slot's run may not be the records'.
 *
 * Records are packed from the start of a half, 8-byte aligned:
 *     0    4  magic       "NVR1"
 *     4    4  length      bytes of header + payload (not padded)
 *     8    8  lsn         global, +1 per record, never reused
 *    16    8  gen         CP generation the operation belongs to
 *    24    2  type        record type (wafl's op codes)
 *    26    2  reserved    0
 *    28    4  crc32c      of the 8-byte little-endian run of the current
 *                         header, then the record with this field zero
 *    32    -  payload
 * A half is scanned from its start until the first record that does not
 * validate (magic, length bound, reserved, crc, lsn >= start_lsn, lsn one
 * more than the previous record of the same half).  Records of an earlier
 * run fail the crc (the run seeds it), so nvlog_start retires the whole
 * file at once.  Within a run, stale records left by an earlier use of a
 * half carry a generation that is already durable (replay ignores them)
 * and a lower LSN (the scan of the half stops at them).  LSN contiguity
 * across the halves stops replay at the first lost record.
 *
 * Group commit: appends are placed under the log mutex (a small record in
 * a stage that the next flush writes, a large one by pwrite into the page
 * cache); nvlog_wait(lsn) returns once an fdatasync covering lsn completed.
 * The first waiter to find no flush running becomes the flusher; every
 * waiter that arrives during a flush is covered by the next one.  A failed
 * pwrite or fdatasync latches the log failed: every later reserve, commit
 * and wait returns -EIO (durability is never claimed after a failed flush)
 * until the log is closed and opened again.
 *
 * Caller's obligation (wafl): the CP that makes replayed operations durable
 * must carry a generation >= the highest gen replayed, so that a crash
 * before nvlog_start cannot replay them a second time.
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
#define NVLOG_HDR_BLOCK		4096u
/* Smallest half: one record of the largest payload fits, 4096-aligned. */
#define NVLOG_MIN_HALF \
	((NVLOG_REC_HDR + NVLOG_MAX_PAYLOAD + 4095u) & ~4095u)

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
	uint64_t next_lsn;	/* LSN the next commit gets */
	uint64_t durable_lsn;	/* every LSN <= this is durable */
};

/*
 * Open the log at path, creating it (half_bytes each half) if absent or an
 * empty file.  An existing log keeps its own size (half_bytes is then
 * ignored).  A block device is used whole: if its header block is all
 * zeros it is formatted with the largest halves that fit (-ENOSPC if that is
 * under NVLOG_MIN_HALF); otherwise it must hold a log.  -FL_ECORRUPT for a
 * bad header (neither slot valid, or a size that does not fit), -EINVAL for
 * half_bytes not a multiple of 4096 or under NVLOG_MIN_HALF.
 */
int nvlog_open(const char *path, uint64_t half_bytes, struct nvlog **out);
/* Close; committed records not yet durable are left to the page cache. */
void nvlog_close(struct nvlog *lg);

/*
 * Call fn for every valid record with gen > after_gen, in LSN order,
 * stopping at the first gap.  payload is borrowed for the call.  A non-zero
 * return from fn stops the replay and is returned.  The log remembers the
 * highest LSN of any valid record in the file, so nvlog_start continues
 * after it.  fn may be NULL (scan only).  Only before nvlog_start (-EBUSY
 * after); -EIO on a read error.
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
/* Before nvlog_start: nvlog_reserve and _commit return -EINVAL;
 * nvlog_switch and _release_prev do nothing (the CP after replay). */

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
 * its LSN in *lsn.  Not durable until nvlog_wait(lsn).  A small record is
 * only staged in memory until the next flush writes it; a failure to write
 * it is reported by the waits, as a failed fdatasync is.
 */
int nvlog_commit(struct nvlog *lg, struct nvlog_resv *r, uint64_t gen,
    uint16_t type, const struct iovec *iov, int iovcnt, uint64_t *lsn);

/*
 * Block until lsn is durable (group commit).  0, or -EIO if it never will
 * be.  nvlog_commit always consumes the reservation, even when it fails.
 */
int nvlog_wait(struct nvlog *lg, uint64_t lsn);
/* Make every committed record durable. */
int nvlog_sync(struct nvlog *lg);
/*
 * Put every record committed so far in the file, for a reader on another
 * handle (the checker), without making it durable: write what is staged
 * and wait for a flush in flight to end.  It leads no flush and runs no
 * callback.  -EIO if that write failed (the log is then failed).  With
 * NVLOG_OPEN_CRASHSIM, records not yet flushed stay in memory.
 */
int nvlog_write_staged(struct nvlog *lg);
/* The LSN of the last record committed so far (0: none). */
uint64_t nvlog_committed_lsn(struct nvlog *lg);

/*
 * The non-blocking nvlog_wait: fn(arg, err, last) runs once lsn is durable
 * (err 0) or will never be (err -EIO, or the error the log failed with).
 * It may run before this returns, in the caller's thread, or later in the
 * thread that led the flush; callbacks run without the log's lock,
 * and must be short and not call into the log.  A thread runs the
 * callbacks one flush made ready one after the other, and last is true
 * for the final one of such a run (and for a callback run alone), so a
 * callback may gather work and finish it at last.  Every queued callback
 * has run by the time nvlog_close returns.
 */
typedef void nvlog_done_fn(void *arg, int err, bool last);
void nvlog_when_durable(struct nvlog *lg, uint64_t lsn, nvlog_done_fn *fn,
    void *arg);
/*
 * nvlog_when_durable without leading the flush here: true means no flush
 * in flight or to come will cover lsn, and the caller must call
 * nvlog_kick (soon: fn waits until then).  A thread that queues several
 * callbacks this way, then kicks once, has them share one flush and is
 * not held up by the flush between them.
 */
bool nvlog_when_durable_later(struct nvlog *lg, uint64_t lsn,
    nvlog_done_fn *fn, void *arg);
/* Lead the flush (and run the callbacks) that queued callbacks wait for,
 * unless another thread is leading. */
void nvlog_kick(struct nvlog *lg);

/*
 * Switch appends to the other half (CP freeze, caller excludes commits).
 * -EBUSY if reservations are outstanding or the other half was not
 * released; -EIO if the log has failed.
 */
int nvlog_switch(struct nvlog *lg);
/* The CP whose records are in the previous half is durable: free it.  It
 * first writes what is staged and waits for a flush in flight to end, so
 * that nothing meant for that half is written after it is reused. */
void nvlog_release_prev(struct nvlog *lg);

/* Fraction of the current half in use or reserved, 0.0 .. 1.0. */
double nvlog_fill(struct nvlog *lg);
bool nvlog_failed(const struct nvlog *lg);
void nvlog_get_stats(struct nvlog *lg, struct nvlog_stats *st);

/*
 * Tests: open flags and fault injection, for the crash tests of wafl and
 * nvlog.  Never used by the server.
 *
 * NVLOG_OPEN_CRASHSIM keeps every record appended since the last completed
 * fdatasync in memory (standing in for the page cache) and writes it to the
 * file only in the flush.  nvlog_crash_drop_unsynced() then simulates power
 * loss: it waits for a flush in flight to finish, discards the unsynced
 * records and marks the log crashed (every later call returns
 * -FL_ECRASHED; close it and open the file again).  nvlog_crash_tear_unsynced
 * is the same, except that each unsynced record is, at random (seeded),
 * dropped, written whole, or torn (a prefix written, the rest left as it
 * was or overwritten with garbage).  nvlog_close of a crash-simulating log
 * that did not crash writes the unsynced records (a process exit: the page
 * cache survives).  Both return -EINVAL without NVLOG_OPEN_CRASHSIM.
 *
 * nvlog_test_inject makes every later pwrite (NVLOG_FAULT_WRITE) or
 * fdatasync (NVLOG_FAULT_SYNC) of the log fail with EIO; 0 clears.
 */
#define NVLOG_OPEN_CRASHSIM	0x1u
int nvlog_open_flags(const char *path, uint64_t half_bytes, unsigned flags,
    struct nvlog **out);
int nvlog_crash_drop_unsynced(struct nvlog *lg);
int nvlog_crash_tear_unsynced(struct nvlog *lg, uint64_t seed);

#define NVLOG_FAULT_WRITE	0x1u
#define NVLOG_FAULT_SYNC	0x2u
void nvlog_test_inject(struct nvlog *lg, unsigned faults);

#endif
