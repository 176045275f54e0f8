/*
 * wafl/nvlog.c: the intent log (DESIGN.md §5; the contract and the byte
 * layout are in nvlog.h, the format tables also in docs/wafl-nvlog.md).
 *
 * THEORY
 *
 * Purpose.  Every state-changing operation is appended as one record before
 * its reply, and made durable by fdatasync with group commit.  After a crash
 * the records newer than the mounted fsinfo generation are replayed, in LSN
 * order, so every operation that was acknowledged is redone exactly.
 *
 * Format.  A 4096-byte header block with two slots (the valid one with the
 * higher run wins, like the two fsinfo slots), then two halves of H bytes.
 * Records are packed from the start of a half at 8-byte alignment; each is
 * self-checking (magic, length, crc32c).  The crc is seeded with the run
 * number of the header: a run begins at every nvlog_start, which happens
 * once per mount after replay and the CP that made the replayed operations
 * durable, so one header write retires every record of earlier runs without
 * touching the halves.
 *
 * Invariants (referred to by number below and in the tests):
 *   NV1  Every record with lsn <= durable_lsn reached stable storage: its
 *        bytes were written before an fdatasync that began after them and
 *        completed without error.
 *   NV2  tail + reserved <= H for the current half, so a commit made under
 *        a reservation always has room.
 *   NV3  Within a run each half holds, from offset 0, one run of contiguous
 *        LSNs; the records of a run are appended only after the header
 *        naming the run is durable.
 *   NV4  Once the log has failed, durable_lsn never advances and no call
 *        reports durability for a record it did not already cover.
 *   NV5  LSNs increase by one per record and are never reused while a record
 *        could still validate: a run starts after every LSN of any valid
 *        record in the file and after the previous run's start_lsn.
 *
 * Replay.  Each half is scanned from offset 0 until the first record that
 * fails validation: bad magic, length outside [32, 32 + NVLOG_MAX_PAYLOAD]
 * or past the end of the half, reserved not zero, wrong crc, LSN below the
 * run's start_lsn, or LSN not one more than the previous record of the same
 * half (a stale record of an earlier use of the half, NV3).  Because of NV3
 * the valid records of a half are one LSN-contiguous sequence, so "sort all
 * valid records by LSN" is ordering the two halves by their first LSN.  The
 * records with gen > after_gen are delivered in that order, stopping at the
 * first LSN gap: a lost record ends replay, nothing after it is applied.
 *
 * Crash ordering.  commit: staged, or pwrite (page cache) if large.  wait:
 * the leader's pwrite of the stage, fdatasync, then durable_lsn = the
 * committed LSN captured with the stage before the fdatasync began (NV1).
 * start: header slot write + fdatasync, then appends (NV3).  A torn header
 * write leaves the other slot valid (its bytes are rewritten unchanged).
 *
 * Concurrency.  One mutex (mu) protects all state; commits append under it
 * (so LSN order is file order within a half).  Group commit is a
 * leader/follower scheme on one condvar: a waiter whose record no flush in
 * flight covers, finding fewer than NV_FLUSHES_MAX flushes running,
 * becomes a leader: it captures target = committed_lsn, drops mu for the
 * fdatasync (commits go on meanwhile), retakes mu, publishes durable_lsn
 * and broadcasts.  Other waiters sleep until a flush covering them ends;
 * those committed after every running flush began lead the next one.
 * nvlog_replay runs before nvlog_start and does not hold mu while it
 * calls back.
 *
 * Staging.  A commit does not write its record: it appends it to an
 * in-memory stage, and the flush leader writes the whole stage with one
 * pwrite just before its fdatasync.  Under a burst of small calls that is
 * one system call per flush instead of one per record, and no pwrite under
 * mu, which every commit takes.  NV1 holds: the leader captures target
 * and the stage together under mu, and every record up to target is either
 * in that stage or was written earlier (a record larger than
 * NV_STAGE_DIRECT, or a stage written out because the next record did not
 * follow it or fit).  What is only staged is lost by a kill -9 where a
 * pwrite would have left it in the page cache; it was never acknowledged,
 * and replay stops at the first record missing.  A failed write of the
 * stage latches the log failed like a failed fdatasync: the commit
 * succeeded, its wait reports -EIO.  A released half is appended to again
 * after the next switch, so every byte meant for it from before must be in
 * the file by then, or a late write of it lands on a new record there:
 * nvlog_release_prev writes what is staged and waits out a flush that took
 * an earlier stage (two switches can come with no commit between them,
 * a snapshot's two CPs, and while a leader still holds its stage).
 * nvlog_write_staged does the same for a reader of the file on another
 * handle (the checker); what it writes, like a stage written out, makes
 * the next flush fdatasync the whole file.
 *
 * Asynchronous waiters.  nvlog_when_durable queues a callback instead of
 * blocking, so a server thread can go on with other requests while its
 * record waits for the flush.  Every leader runs lead(): after its flush it
 * takes the callbacks whose LSN is now durable (all of them once the log
 * has failed), runs them with mu dropped, and flushes again while callbacks
 * wait for records that no flush in flight covers.  A caller whose
 * callback no flush in flight covers leads one itself, or, through
 * nvlog_when_durable_later, owes one: it calls nvlog_kick, which leads,
 * once it has queued what it had to queue.  So whenever the queue is not
 * empty some thread is inside lead() and will empty it, or a thread that
 * owes a kick will make one: a callback runs after one or two flushes
 * past that, never later.
 * Callbacks run in the leader's thread, without mu; they must
 * be short and must not call back into the log.
 *
 * Failure.  A failed pwrite or fdatasync latches the log failed (NV4): every
 * later reserve, commit and wait returns -EIO; only closing and reopening
 * (which replays what is on disk) clears it.  Data read from the file is
 * hostile: every field is bounded before use and a bad header gives
 * -FL_ECORRUPT with a message, never an assertion.
 *
 * Crash simulation (tests, NVLOG_OPEN_CRASHSIM).  The log runs its real
 * paths (staging, large records, write-outs, RWF_DSYNC flushes) over a
 * simulated page cache: a write without sync goes to the pending list (in
 * order, under pc_mu) instead of the file; fdatasync writes the whole list
 * to the file; an RWF_DSYNC write goes to the file at once after the
 * pending writes it overlaps (the page cache holds the newest bytes of a
 * range), leaving the others pending, as the kernel writes back that range
 * only.  nvlog_crash_drop_unsynced / _tear_unsynced then throw the pending
 * writes away or apply some of them, whole or torn, and the stage (memory)
 * is lost: what a power cut can leave.
 */
#include "wafl/nvlog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#define NV_SUB			"nvlog"

/* Header slot (nvlog.h). */
#define NVH_MAGIC		0
#define NVH_VERSION		8
#define NVH_RSV0		12
#define NVH_HALF		16
#define NVH_RUN			24
#define NVH_START		32
#define NVH_RSV1		40
#define NVH_RSV1_LEN		20
#define NVH_CRC			60
#define NVH_SLOT_BYTES		64u
#define NVH_SLOT1_OFF		2048u
#define NVH_VERSION_1		1u
#define NVH_MAGIC_STR		"FLRNVLG1"
/* Largest half we accept (keeps every offset far from overflow). */
#define NVLOG_MAX_HALF		(1ull << 40)
/* Largest run and start LSN a header may hold: nvlog_start's run + 1 and
 * highest LSN + 1 then never wrap, and a run refused here is never
 * written. */
#define NVH_MAX_COUNT		(UINT64_MAX / 2)

_Static_assert(NVH_RSV1 + NVH_RSV1_LEN == NVH_CRC, "header slot layout");
_Static_assert(NVH_CRC + 4 == NVH_SLOT_BYTES, "header slot is 64 bytes");
_Static_assert(NVH_SLOT1_OFF + NVH_SLOT_BYTES <= NVLOG_HDR_BLOCK,
    "both header slots fit the header block");

/* Record header (nvlog.h). */
#define NVR_MAGIC		0
#define NVR_LEN			4
#define NVR_LSN			8
#define NVR_GEN			16
#define NVR_TYPE		24
#define NVR_RSV			26
#define NVR_CRC			28
#define NVR_MAGIC_STR		"NVR1"
#define NVR_MAX_LEN		(NVLOG_REC_HDR + NVLOG_MAX_PAYLOAD)
#define NV_STAGE_BYTES		(256u << 10)	/* records staged for a flush */
#define NV_STAGE_DIRECT		(64u << 10)	/* larger ones are written at once */
#define NVR_ALIGN(n)		(((uint64_t)(n) + 7u) & ~(uint64_t)7u)

_Static_assert(NVR_CRC + 4 == NVLOG_REC_HDR, "record header is 32 bytes");
_Static_assert(NVLOG_MIN_HALF % 4096u == 0, "halves are 4096-aligned");
_Static_assert(NVR_ALIGN(NVR_MAX_LEN) <= NVLOG_MIN_HALF,
    "the largest record fits the smallest half");

/* Replay read window: at least one largest record. */
#define NV_RD_BUF		(2u << 20)
_Static_assert(NV_RD_BUF >= NVR_ALIGN(NVR_MAX_LEN), "read window");

struct nvlog_hdr {
	uint64_t half_bytes;
	uint64_t run;
	uint64_t start_lsn;
};

/* A write not yet synced: crash simulation's page cache. */
struct nv_pending {
	struct nv_pending *next;
	uint64_t off;
	uint32_t len;
	uint8_t data[];
};

struct nvlog {
	pthread_mutex_t mu;
	pthread_cond_t cv;		/* flush finished, or log failed */
	int fd;
	char *path;
	unsigned flags;
	unsigned faults;		/* test injection, atomic */

	struct nvlog_hdr hdr;		/* current header slot */
	uint8_t hdr_block[NVLOG_HDR_BLOCK];

	bool scanned;			/* scan_max_lsn is known */
	bool regular;			/* a regular file, not a device */
	bool replaying;
	uint64_t scan_max_lsn;		/* highest valid LSN in the file */

	bool started;
	unsigned cur;			/* current half */
	uint64_t tail;			/* bytes used in the current half */
	uint64_t reserved;		/* bytes reserved there (NV2) */
	bool prev_busy;			/* the other half holds live records */

	uint64_t next_lsn;
	uint64_t committed_lsn;		/* last LSN appended */
	uint64_t durable_lsn;		/* NV1 */
	unsigned nflushing;		/* leaders in their flush */
	uint64_t flushes_begun;		/* st_flushes counts those ended */
	uint64_t flush_started;		/* target of the newest flush begun */
	bool failed;			/* NV4; atomic for nvlog_failed() */
	int fail_err;			/* -EIO, or -FL_ECRASHED */

	uint8_t *recbuf;		/* one encoded record, under mu */
	/* Crash simulation: writes not yet synced, in order (pc_mu). */
	pthread_mutex_t pc_mu;
	struct nv_pending *pend_head, **pend_tail;

	/* Records committed since the last flush began, written by the
	 * next flush's leader with one pwrite (see "Staging" in THEORY):
	 * stage holds the file bytes [stage_off, stage_off + stage_len);
	 * the leader swaps it with spare, which only a leader uses. */
	uint8_t *stage, *spare;
	uint64_t stage_off;
	size_t stage_len;
	/* A record was written outside a flush (a large one, or a stage
	 * written out) since the last flush began: the next one must
	 * fdatasync the whole file, not only write its stage with
	 * RWF_DSYNC.  nodsync: the kernel refused RWF_DSYNC once. */
	bool unsynced_writes;
	bool nodsync;

	/* nvlog_when_durable callbacks, in LSN order; leaders counts the
	 * threads inside lead(), which nvlog_close waits out. */
	struct nv_waiter *aw_head, *aw_last;
	unsigned leaders;

	uint64_t st_records, st_bytes, st_flushes, st_waits;
};

static void lead(struct nvlog *lg);

/* A queued nvlog_when_durable callback. */
struct nv_waiter {
	struct nv_waiter *next;
	uint64_t lsn;
	nvlog_done_fn *fn;
	void *arg;
};

/* ------------------------------------------------------------------ */
/* Encode / decode                                                     */

static void hdr_encode(uint8_t *p, const struct nvlog_hdr *h)
{
	memset(p, 0, NVH_SLOT_BYTES);
	memcpy(p + NVH_MAGIC, NVH_MAGIC_STR, 8);
	fl_put_le32(p + NVH_VERSION, NVH_VERSION_1);
	fl_put_le64(p + NVH_HALF, h->half_bytes);
	fl_put_le64(p + NVH_RUN, h->run);
	fl_put_le64(p + NVH_START, h->start_lsn);
	fl_put_le32(p + NVH_CRC, fl_crc32c(0, p, NVH_CRC));
}

static bool half_bytes_ok(uint64_t h)
{
	return h % 4096u == 0 && h >= NVLOG_MIN_HALF && h <= NVLOG_MAX_HALF;
}

static bool hdr_counts_ok(const struct nvlog_hdr *h)
{
	return h->run != 0 && h->run <= NVH_MAX_COUNT && h->start_lsn != 0 &&
	    h->start_lsn <= NVH_MAX_COUNT;
}

/*
 * 0, or -FL_ECORRUPT with *why set; the slot is untrusted bytes.  *sealed:
 * the slot has its magic and a checksum that matches, so whatever is wrong
 * with it was written that way, not torn.
 */
static int hdr_decode(const uint8_t *p, struct nvlog_hdr *h, const char **why,
    bool *sealed)
{
	*sealed = false;
	if (memcmp(p + NVH_MAGIC, NVH_MAGIC_STR, 8) != 0) {
		*why = "no nvlog magic";
		return -FL_ECORRUPT;
	}
	if (fl_get_le32(p + NVH_CRC) != fl_crc32c(0, p, NVH_CRC)) {
		*why = "header checksum mismatch";
		return -FL_ECORRUPT;
	}
	*sealed = true;
	if (fl_get_le32(p + NVH_VERSION) != NVH_VERSION_1) {
		*why = "unsupported header version";
		return -FL_ECORRUPT;
	}
	if (fl_get_le32(p + NVH_RSV0) != 0) {
		*why = "reserved header field not zero";
		return -FL_ECORRUPT;
	}
	for (unsigned i = 0; i < NVH_RSV1_LEN; i++) {
		if (p[NVH_RSV1 + i] != 0) {
			*why = "reserved header field not zero";
			return -FL_ECORRUPT;
		}
	}
	h->half_bytes = fl_get_le64(p + NVH_HALF);
	h->run = fl_get_le64(p + NVH_RUN);
	h->start_lsn = fl_get_le64(p + NVH_START);
	if (!half_bytes_ok(h->half_bytes)) {
		*why = "half size out of range";
		return -FL_ECORRUPT;
	}
	if (!hdr_counts_ok(h)) {
		*why = "run or start LSN out of range";
		return -FL_ECORRUPT;
	}
	return 0;
}

static unsigned hdr_slot_off(uint64_t run)
{
	return (run & 1) ? NVH_SLOT1_OFF : 0;
}

/*
 * Choose the current slot of a header block: the valid one with the higher
 * run.  -FL_ECORRUPT (with *why) if neither is valid, if they disagree on
 * the size, or if a slot whose checksum matches holds a field out of range:
 * a torn write fails the checksum, so such a slot was written so, and the
 * other slot's run may not be the one the records were written under
 * (falling back to it would retire them at the next nvlog_start).
 */
static int hdr_choose(const uint8_t *blk, struct nvlog_hdr *out,
    const char **why)
{
	struct nvlog_hdr h[2];
	const char *w[2] = { NULL, NULL };
	bool ok[2], sealed[2];

	ok[0] = hdr_decode(blk, &h[0], &w[0], &sealed[0]) == 0;
	ok[1] = hdr_decode(blk + NVH_SLOT1_OFF, &h[1], &w[1], &sealed[1]) == 0;
	if (ok[0] && (h[0].run & 1) != 0) {
		ok[0] = false;
		w[0] = "run in the wrong slot";
	}
	if (ok[1] && (h[1].run & 1) != 1) {
		ok[1] = false;
		w[1] = "run in the wrong slot";
	}
	for (unsigned i = 0; i < 2; i++) {
		if (sealed[i] && !ok[i]) {
			*why = w[i];
			return -FL_ECORRUPT;
		}
	}
	if (!ok[0] && !ok[1]) {
		*why = w[1] != NULL ? w[1] : w[0];
		return -FL_ECORRUPT;
	}
	if (ok[0] && ok[1] && h[0].half_bytes != h[1].half_bytes) {
		*why = "header slots disagree on the half size";
		return -FL_ECORRUPT;
	}
	if (ok[0] && (!ok[1] || h[0].run > h[1].run))
		*out = h[0];
	else
		*out = h[1];
	return 0;
}

/* crc32c over the 8-byte LE run, then the record with its crc field 0. */
static uint32_t rec_crc(uint64_t run, const uint8_t *rec, uint32_t len)
{
	static const uint8_t zero4[4];
	uint8_t r8[8];
	uint32_t c;

	fl_put_le64(r8, run);
	c = fl_crc32c(0, r8, sizeof(r8));
	c = fl_crc32c(c, rec, NVR_CRC);
	c = fl_crc32c(c, zero4, sizeof(zero4));
	return fl_crc32c(c, rec + NVLOG_REC_HDR, len - NVLOG_REC_HDR);
}

/* ------------------------------------------------------------------ */
/* I/O                                                                 */

static uint64_t half_base(const struct nvlog *lg, unsigned h)
{
	return NVLOG_HDR_BLOCK + (uint64_t)h * lg->hdr.half_bytes;
}

/* Crash simulation: apply the pending writes (all, or those overlapping
 * [off, off + len)) to the file, in order.  pc_mu held. */
static int pc_apply(struct nvlog *lg, bool all, uint64_t off, uint64_t len)
{
	struct nv_pending **pp = &lg->pend_head;
	int rc = 0;

	while (*pp != NULL) {
		struct nv_pending *q = *pp;

		if (!all && (q->off >= off + len || q->off + q->len <= off)) {
			pp = &q->next;
			continue;
		}
		if (rc == 0)
			rc = fl_pwrite_full(lg->fd, q->data, q->len, q->off);
		*pp = q->next;
		free(q);
	}
	lg->pend_tail = pp;
	return rc;
}

static int nv_write(struct nvlog *lg, const void *buf, size_t len,
    uint64_t off)
{
	struct nv_pending *pe;

	if (__atomic_load_n(&lg->faults, __ATOMIC_RELAXED) & NVLOG_FAULT_WRITE)
		return FL_ERR(-EIO);
	if (!(lg->flags & NVLOG_OPEN_CRASHSIM))
		return fl_pwrite_full(lg->fd, buf, len, off);
	pe = malloc(sizeof(*pe) + len);
	if (pe == NULL)
		return -ENOMEM;
	pe->next = NULL;
	pe->off = off;
	pe->len = (uint32_t)len;
	memcpy(pe->data, buf, len);
	pthread_mutex_lock(&lg->pc_mu);
	*lg->pend_tail = pe;
	lg->pend_tail = &pe->next;
	pthread_mutex_unlock(&lg->pc_mu);
	return 0;
}

/*
 * Write buf at off and make it durable in one system call (pwritev2 with
 * RWF_DSYNC: the kernel writes back that range and flushes the device's
 * cache, as fdatasync does for the whole file).  1: the kernel does not
 * take RWF_DSYNC, nothing was written; the caller writes and syncs.
 */
static int nv_write_dsync(struct nvlog *lg, const void *buf, size_t len,
    uint64_t off, const char **what)
{
	unsigned f = __atomic_load_n(&lg->faults, __ATOMIC_RELAXED);
	size_t done = 0;

	*what = "record write";
	if (f & NVLOG_FAULT_WRITE)
		return FL_ERR(-EIO);
	*what = "record write and fdatasync (RWF_DSYNC)";
	if (lg->flags & NVLOG_OPEN_CRASHSIM) {
		int rc;

		pthread_mutex_lock(&lg->pc_mu);
		rc = pc_apply(lg, false, off, len);
		if (rc == 0)
			rc = fl_pwrite_full(lg->fd, buf, len, off);
		pthread_mutex_unlock(&lg->pc_mu);
		if (rc != 0)
			return rc;
		done = len;
	}
	while (done < len) {
		struct iovec iov = { .iov_base = (uint8_t *)buf + done,
		    .iov_len = len - done };
		ssize_t k = pwritev2(lg->fd, &iov, 1, (off_t)(off + done),
		    RWF_DSYNC);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && done == 0 && (errno == EOPNOTSUPP ||
		    errno == ENOSYS || errno == EINVAL))
			return 1;
		if (k < 0)
			return -errno;
		if (k == 0)
			return FL_ERR(-EIO);
		done += (size_t)k;
	}
	*what = "fdatasync";
	if (f & NVLOG_FAULT_SYNC)
		return FL_ERR(-EIO);
	return 0;
}

static int nv_sync(struct nvlog *lg)
{
	if (__atomic_load_n(&lg->faults, __ATOMIC_RELAXED) & NVLOG_FAULT_SYNC)
		return FL_ERR(-EIO);
	if (lg->flags & NVLOG_OPEN_CRASHSIM) {
		int rc;

		pthread_mutex_lock(&lg->pc_mu);
		rc = pc_apply(lg, true, 0, 0);
		pthread_mutex_unlock(&lg->pc_mu);
		if (rc != 0)
			return rc;
	}
	if (fdatasync(lg->fd) != 0)
		return -errno;
	return 0;
}

/* Read len bytes at off; bytes past the end of the file read as zeros. */
static int nv_read_zfill(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = pread(fd, buf, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			memset(buf, 0, len);
			return 0;
		}
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Latch the failure (NV4); caller holds mu. */
static void latch_failed(struct nvlog *lg, int err, const char *what, int rc)
{
	if (!lg->failed) {
		lg->fail_err = err;
		__atomic_store_n(&lg->failed, true, __ATOMIC_RELEASE);
		if (err == -EIO)
			fl_err(NV_SUB, "%s: %s failed: %s; the log is failed "
			    "and acknowledges nothing more until reopened",
			    lg->path, what, fl_strerror(rc));
	}
	pthread_cond_broadcast(&lg->cv);
}

static void pending_free(struct nv_pending *p)
{
	while (p != NULL) {
		struct nv_pending *n = p->next;
		free(p);
		p = n;
	}
}

/* Detach the pending list; caller holds mu. */
static struct nv_pending *pending_take(struct nvlog *lg)
{
	struct nv_pending *p = lg->pend_head;

	lg->pend_head = NULL;
	lg->pend_tail = &lg->pend_head;
	return p;
}

/* ------------------------------------------------------------------ */
/* Open, create, close                                                 */

static int fsync_parent_dir(const char *path)
{
	char *copy = strdup(path);
	int rc = 0, dfd;

	if (copy == NULL)
		return -ENOMEM;
	dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0)
		rc = -errno;
	if (dfd >= 0)
		close(dfd);
	free(copy);
	return rc;
}

/*
 * Give every block of a regular log file its disk block now, so that an
 * append never allocates one.  On ext4 (and most file systems) an
 * fdatasync after a write into a hole also writes the inode and the
 * allocation maps: a second synchronous write per flush, about half again
 * the flush's time on this project's machines (docs/wafl-nvlog.md,
 * "Blocks written ahead").  fallocate alone is not enough: the first write
 * into an unwritten extent changes the extent map the same way.  Only the
 * holes are written (with zeros, which is what they read as), so a log
 * that is already whole costs one lseek and keeps its records.  Called by
 * nvlog_start before the run's header, whose fdatasync makes the blocks
 * durable too; a read-only open never writes.
 */
static int nv_fill_holes(struct nvlog *lg, uint64_t end)
{
	static const uint8_t zeros[1 << 16];
	uint64_t off = 0;
	int rc;

	while (off < end) {
		off_t h = lseek(lg->fd, (off_t)off, SEEK_HOLE);
		off_t d;

		if (h < 0) {
			if (errno == ENXIO)	/* off is at or past EOF */
				h = (off_t)off;
			else
				return -errno;
		}
		if ((uint64_t)h >= end)
			break;
		d = lseek(lg->fd, h, SEEK_DATA);
		if (d < 0 && errno != ENXIO)
			return -errno;
		if (d < 0 || (uint64_t)d > end)
			d = (off_t)end;
		for (uint64_t o = (uint64_t)h; o < (uint64_t)d;) {
			size_t n = sizeof(zeros);

			if (n > (uint64_t)d - o)
				n = (size_t)((uint64_t)d - o);
			rc = fl_pwrite_full(lg->fd, zeros, n, o);
			if (rc != 0)
				return rc;
			o += n;
		}
		off = (uint64_t)d;
	}
	return 0;
}

/*
 * Where nv_fill_holes stops: the end of the log, or of the file if it is
 * shorter.  The size of a short file's log comes from its header alone,
 * which may claim halves of up to NVLOG_MAX_HALF (2 x 1 TiB of zeros to
 * write); appends past the end of the file allocate as they go.
 */
static uint64_t fill_end(struct nvlog *lg)
{
	uint64_t end = NVLOG_HDR_BLOCK + 2 * lg->hdr.half_bytes;
	struct stat st;

	if (fstat(lg->fd, &st) == 0 && (uint64_t)st.st_size < end)
		end = (uint64_t)st.st_size;
	return end;
}

/* Write a fresh header block (run 1) and make it durable. */
static int nv_format(struct nvlog *lg, uint64_t half_bytes, bool regular)
{
	int rc;

	lg->hdr.half_bytes = half_bytes;
	lg->hdr.run = 1;
	lg->hdr.start_lsn = 1;
	memset(lg->hdr_block, 0, sizeof(lg->hdr_block));
	hdr_encode(lg->hdr_block + hdr_slot_off(1), &lg->hdr);
	if (regular && ftruncate(lg->fd,
	    (off_t)(NVLOG_HDR_BLOCK + 2 * half_bytes)) != 0) {
		rc = -errno;
		fl_err(NV_SUB, "%s: cannot size the log: %s", lg->path,
		    fl_strerror(rc));
		return rc;
	}
	rc = fl_pwrite_full(lg->fd, lg->hdr_block, NVLOG_HDR_BLOCK, 0);
	if (rc == 0)
		rc = fsync(lg->fd) == 0 ? 0 : -errno;
	if (rc == 0 && regular)
		rc = fsync_parent_dir(lg->path);
	if (rc != 0) {
		fl_err(NV_SUB, "%s: cannot write the log header: %s", lg->path,
		    fl_strerror(rc));
		return rc;
	}
	fl_info(NV_SUB, "%s: created, 2 halves of %" PRIu64 " bytes", lg->path,
	    half_bytes);
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

int nvlog_open_flags(const char *path, uint64_t half_bytes, unsigned flags,
    struct nvlog **out)
{
	struct nvlog *lg = NULL;
	struct stat st;
	uint64_t size;
	bool blk;
	int rc;

	*out = NULL;
	if ((flags & ~NVLOG_OPEN_CRASHSIM) != 0)
		return FL_ERR(-EINVAL);
	lg = calloc(1, sizeof(*lg));
	if (lg == NULL)
		return -ENOMEM;
	lg->fd = -1;
	lg->flags = flags;
	lg->pend_tail = &lg->pend_head;
	lg->path = strdup(path);
	lg->recbuf = malloc(NVR_ALIGN(NVR_MAX_LEN));
	lg->stage = malloc(NV_STAGE_BYTES);
	lg->spare = malloc(NV_STAGE_BYTES);
	if (lg->path == NULL || lg->recbuf == NULL || lg->stage == NULL ||
	    lg->spare == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_init(&lg->mu, NULL);
	pthread_mutex_init(&lg->pc_mu, NULL);
	pthread_cond_init(&lg->cv, NULL);

	lg->fd = open(path, O_RDWR | O_CLOEXEC);
	if (lg->fd < 0 && errno == ENOENT) {
		if (!half_bytes_ok(half_bytes)) {
			rc = FL_ERR(-EINVAL);
			fl_err(NV_SUB, "%s: half size %" PRIu64 " must be a "
			    "multiple of 4096 in [%u, %llu]", path, half_bytes,
			    NVLOG_MIN_HALF, NVLOG_MAX_HALF);
			goto out;
		}
		lg->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600);
	}
	if (lg->fd < 0 || fstat(lg->fd, &st) != 0) {
		rc = -errno;
		fl_err(NV_SUB, "%s: cannot open: %s", path, fl_strerror(rc));
		goto out;
	}
	blk = S_ISBLK(st.st_mode);
	lg->regular = S_ISREG(st.st_mode);
	if (blk) {
		if (ioctl(lg->fd, BLKGETSIZE64, &size) != 0) {
			rc = -errno;
			fl_err(NV_SUB, "%s: cannot get the device size: %s",
			    path, fl_strerror(rc));
			goto out;
		}
	} else if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else {
		rc = FL_ERR(-EINVAL);
		fl_err(NV_SUB, "%s: not a regular file or block device", path);
		goto out;
	}

	if (!blk && size == 0) {
		if (!half_bytes_ok(half_bytes)) {
			rc = FL_ERR(-EINVAL);
			fl_err(NV_SUB, "%s: half size %" PRIu64 " must be a "
			    "multiple of 4096 in [%u, %llu]", path, half_bytes,
			    NVLOG_MIN_HALF, NVLOG_MAX_HALF);
			goto out;
		}
		rc = nv_format(lg, half_bytes, true);
		goto out;
	}
	if (size < NVLOG_HDR_BLOCK) {
		rc = FL_ERR(-FL_ECORRUPT);
		fl_err(NV_SUB, "%s: bad log header: file of %" PRIu64
		    " bytes is shorter than the header block", path, size);
		goto out;
	}
	rc = fl_pread_full(lg->fd, lg->hdr_block, NVLOG_HDR_BLOCK, 0);
	if (rc != 0) {
		fl_err(NV_SUB, "%s: cannot read the log header: %s", path,
		    fl_strerror(rc));
		goto out;
	}
	if (blk && all_zero(lg->hdr_block, NVLOG_HDR_BLOCK)) {
		uint64_t h = (size - NVLOG_HDR_BLOCK) / 2 / 4096 * 4096;

		if (h > NVLOG_MAX_HALF)
			h = NVLOG_MAX_HALF;
		if (h < NVLOG_MIN_HALF) {
			rc = FL_ERR(-ENOSPC);
			fl_err(NV_SUB, "%s: device of %" PRIu64 " bytes is too "
			    "small for a log (needs %llu)", path, size,
			    (unsigned long long)NVLOG_HDR_BLOCK +
			    2ull * NVLOG_MIN_HALF);
			goto out;
		}
		rc = nv_format(lg, h, false);
		goto out;
	}
	{
		const char *why = NULL;

		rc = hdr_choose(lg->hdr_block, &lg->hdr, &why);
		if (rc != 0) {
			rc = FL_ERR(rc);
			fl_err(NV_SUB, "%s: bad log header: %s", path, why);
			goto out;
		}
	}
	if (blk && NVLOG_HDR_BLOCK + 2 * lg->hdr.half_bytes > size) {
		rc = FL_ERR(-FL_ECORRUPT);
		fl_err(NV_SUB, "%s: bad log header: log of 2 x %" PRIu64
		    " bytes does not fit a device of %" PRIu64, path,
		    lg->hdr.half_bytes, size);
		goto out;
	}
	if (!blk && NVLOG_HDR_BLOCK + 2 * lg->hdr.half_bytes > size)
		fl_warn(NV_SUB, "%s: file is %" PRIu64 " bytes, short of the "
		    "log's %" PRIu64 "; the missing tail reads as empty", path,
		    size, NVLOG_HDR_BLOCK + 2 * lg->hdr.half_bytes);
	rc = 0;
out:
	if (rc != 0) {
		if (lg->fd >= 0)
			close(lg->fd);
		if (lg->path != NULL && lg->recbuf != NULL &&
		    lg->stage != NULL && lg->spare != NULL) {
			pthread_cond_destroy(&lg->cv);
			pthread_mutex_destroy(&lg->mu);
			pthread_mutex_destroy(&lg->pc_mu);
		}
		free(lg->recbuf);
		free(lg->stage);
		free(lg->spare);
		free(lg->path);
		free(lg);
		return rc;
	}
	*out = lg;
	return 0;
}

int nvlog_open(const char *path, uint64_t half_bytes, struct nvlog **out)
{
	return nvlog_open_flags(path, half_bytes, 0, out);
}

void nvlog_close(struct nvlog *lg)
{
	struct nv_pending *p;

	if (lg == NULL)
		return;
	pthread_mutex_lock(&lg->mu);
	/* Queued callbacks are run by the leader that owns them (with an
	 * error if the log failed); wait for it to finish. */
	while (lg->nflushing > 0 || lg->leaders > 0 || lg->aw_head != NULL) {
		if (lg->aw_head != NULL && lg->leaders == 0)
			lead(lg);
		else
			pthread_cond_wait(&lg->cv, &lg->mu);
	}
	/* What no flush wrote is written now, as the page cache would have
	 * kept it; no durability is claimed for it. */
	if (lg->stage_len > 0 && !lg->failed)
		(void)nv_write(lg, lg->stage, lg->stage_len, lg->stage_off);
	lg->stage_len = 0;
	pthread_mutex_unlock(&lg->mu);
	/* Crash simulation, clean exit: the page cache keeps its pages
	 * (after a simulated crash the list is empty). */
	pthread_mutex_lock(&lg->pc_mu);
	p = pending_take(lg);
	pthread_mutex_unlock(&lg->pc_mu);
	for (struct nv_pending *q = p; q != NULL; q = q->next)
		(void)fl_pwrite_full(lg->fd, q->data, q->len, q->off);
	pending_free(p);
	close(lg->fd);
	pthread_cond_destroy(&lg->cv);
	pthread_mutex_destroy(&lg->mu);
	pthread_mutex_destroy(&lg->pc_mu);
	free(lg->recbuf);
	free(lg->stage);
	free(lg->spare);
	free(lg->path);
	free(lg);
}

/* ------------------------------------------------------------------ */
/* Scan and replay                                                     */

struct nv_reader {
	struct nvlog *lg;
	uint8_t *buf;
	uint64_t off;		/* file offset of buf[0] */
	size_t len;		/* valid bytes in buf */
};

/* Point *p at [off, off+len) of the file, refilling the window. */
static int rd_get(struct nv_reader *rd, uint64_t off, size_t len,
    uint64_t end, const uint8_t **p)
{
	int rc;

	ASSERT(off + len <= end && len <= NV_RD_BUF);
	if (off < rd->off || off + len > rd->off + rd->len) {
		size_t n = (size_t)FL_MIN((uint64_t)NV_RD_BUF, end - off);

		rc = nv_read_zfill(rd->lg->fd, rd->buf, n, off);
		if (rc != 0) {
			rd->len = 0;
			fl_err(NV_SUB, "%s: read at %" PRIu64 " failed: %s",
			    rd->lg->path, off, fl_strerror(rc));
			return rc;
		}
		rd->off = off;
		rd->len = n;
	}
	*p = rd->buf + (off - rd->off);
	return 0;
}

struct nv_rec {
	uint64_t lsn;
	uint64_t gen;
	uint16_t type;
	uint32_t len;		/* header + payload */
	const uint8_t *payload;	/* into the reader window */
};

/*
 * Validate the record at offset off of half h.  1: valid (*r filled), 0: not
 * a record of this run (scan stops; *why says why), <0: read error.
 * prev_lsn is the LSN of the previous record of the half, 0 for the first.
 */
static int rec_check(struct nv_reader *rd, unsigned h, uint64_t off,
    uint64_t prev_lsn, struct nv_rec *r, const char **why)
{
	struct nvlog *lg = rd->lg;
	uint64_t hb = lg->hdr.half_bytes, base = half_base(lg, h);
	const uint8_t *p;
	uint32_t len;
	int rc;

	if (off + NVLOG_REC_HDR > hb) {
		*why = "end of half";
		return 0;
	}
	rc = rd_get(rd, base + off, NVLOG_REC_HDR, base + hb, &p);
	if (rc != 0)
		return rc;
	if (memcmp(p + NVR_MAGIC, NVR_MAGIC_STR, 4) != 0) {
		*why = all_zero(p, NVLOG_REC_HDR) ? "empty" : "bad magic";
		return 0;
	}
	len = fl_get_le32(p + NVR_LEN);
	if (len < NVLOG_REC_HDR || len > NVR_MAX_LEN || len > hb - off) {
		*why = "length out of bounds";
		return 0;
	}
	if (fl_get_le16(p + NVR_RSV) != 0) {
		*why = "reserved field not zero";
		return 0;
	}
	rc = rd_get(rd, base + off, len, base + hb, &p);
	if (rc != 0)
		return rc;
	if (fl_get_le32(p + NVR_CRC) != rec_crc(lg->hdr.run, p, len)) {
		*why = "checksum mismatch (torn, corrupt, or an earlier run)";
		return 0;
	}
	r->lsn = fl_get_le64(p + NVR_LSN);
	r->gen = fl_get_le64(p + NVR_GEN);
	r->type = fl_get_le16(p + NVR_TYPE);
	r->len = len;
	r->payload = p + NVLOG_REC_HDR;
	if (r->lsn < lg->hdr.start_lsn || r->lsn == UINT64_MAX) {
		*why = "LSN before the run's start";
		return 0;
	}
	if (prev_lsn != 0 && r->lsn != prev_lsn + 1) {
		*why = "LSN not contiguous in the half (stale record)";
		return 0;
	}
	return 1;
}

struct nv_half_scan {
	uint64_t count;		/* valid records from offset 0 */
	uint64_t first_lsn, last_lsn;
	uint64_t newer;		/* of them with gen > after_gen */
	uint64_t end_off;	/* where the scan stopped */
	const char *why;
};

/* Pass 1: find the valid prefix of half h (NV3). */
static int scan_half(struct nv_reader *rd, unsigned h, uint64_t after_gen,
    struct nv_half_scan *s)
{
	struct nv_rec r;
	uint64_t off = 0, prev = 0;
	int rc;

	memset(s, 0, sizeof(*s));
	for (;;) {
		rc = rec_check(rd, h, off, prev, &r, &s->why);
		if (rc < 0)
			return rc;
		if (rc == 0)
			break;
		if (s->count == 0)
			s->first_lsn = r.lsn;
		s->last_lsn = r.lsn;
		s->count++;
		if (r.gen > after_gen)
			s->newer++;
		prev = r.lsn;
		off += NVR_ALIGN(r.len);
	}
	s->end_off = off;
	fl_debug(NV_SUB, "%s: half %u: %" PRIu64 " records (lsn %" PRIu64
	    "..%" PRIu64 "), scan stopped at %" PRIu64 ": %s", rd->lg->path, h,
	    s->count, s->first_lsn, s->last_lsn, off, s->why);
	return 0;
}

int nvlog_replay(struct nvlog *lg, uint64_t after_gen, nvlog_replay_fn *fn,
    void *arg)
{
	struct nv_reader rd = { .lg = lg };
	struct nv_half_scan s[2];
	unsigned order[2], n = 0;
	uint64_t delivered = 0, expect = 0, newer, max_lsn = 0;
	int rc = 0;

	pthread_mutex_lock(&lg->mu);
	if (lg->started || lg->replaying) {
		pthread_mutex_unlock(&lg->mu);
		return FL_ERR(-EBUSY);
	}
	lg->replaying = true;
	pthread_mutex_unlock(&lg->mu);

	rd.buf = malloc(NV_RD_BUF);
	if (rd.buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (unsigned h = 0; h < 2; h++) {
		rc = scan_half(&rd, h, after_gen, &s[h]);
		if (rc != 0)
			goto out;
		if (s[h].count > 0) {
			order[n++] = h;
			max_lsn = FL_MAX(max_lsn, s[h].last_lsn);
		}
	}
	lg->scan_max_lsn = max_lsn;
	lg->scanned = true;
	if (n == 2 && s[order[1]].first_lsn < s[order[0]].first_lsn) {
		order[0] = 1;
		order[1] = 0;
	}
	newer = s[0].newer + s[1].newer;

	/* Pass 2: deliver gen > after_gen in LSN order, stop at a gap. */
	for (unsigned i = 0; i < n; i++) {
		unsigned h = order[i];
		uint64_t off = 0, prev = 0;
		const char *why = NULL;
		struct nv_rec r;

		for (uint64_t k = 0; k < s[h].count; k++) {
			rc = rec_check(&rd, h, off, prev, &r, &why);
			if (rc < 0)
				goto out;
			if (rc == 0) {
				rc = FL_ERR(-EIO);
				fl_err(NV_SUB, "%s: record at half %u offset %"
				    PRIu64 " changed during replay: %s",
				    lg->path, h, off, why);
				goto out;
			}
			prev = r.lsn;
			off += NVR_ALIGN(r.len);
			if (r.gen <= after_gen)
				continue;
			if (delivered > 0 && r.lsn != expect) {
				fl_warn(NV_SUB, "%s: replay stops at a gap: "
				    "lsn %" PRIu64 " is missing (next valid "
				    "is %" PRIu64 "); %" PRIu64 " later "
				    "records not replayed", lg->path, expect,
				    r.lsn, newer - delivered);
				rc = 0;
				goto done;
			}
			if (fn != NULL) {
				rc = fn(arg, r.lsn, r.gen, r.type, r.payload,
				    r.len - NVLOG_REC_HDR);
				if (rc != 0)
					goto out;
			}
			expect = r.lsn + 1;
			delivered++;
		}
	}
	rc = 0;
done:
	if (fn != NULL)
		fl_info(NV_SUB, "%s: replayed %" PRIu64 " records after gen %"
		    PRIu64 " (lsn up to %" PRIu64 ", highest in log %" PRIu64
		    ")", lg->path, delivered, after_gen,
		    delivered > 0 ? expect - 1 : 0, max_lsn);
out:
	free(rd.buf);
	pthread_mutex_lock(&lg->mu);
	lg->replaying = false;
	pthread_mutex_unlock(&lg->mu);
	return rc;
}

int nvlog_start(struct nvlog *lg)
{
	const char *what = "header write";
	struct nvlog_hdr nh;
	uint8_t blk[NVLOG_HDR_BLOCK];
	int rc;

	pthread_mutex_lock(&lg->mu);
	rc = lg->started || lg->replaying ? FL_ERR(-EINVAL) :
	    lg->failed ? lg->fail_err : 0;
	pthread_mutex_unlock(&lg->mu);
	if (rc != 0)
		return rc;
	if (!lg->scanned) {
		/* Learn the highest LSN; nothing is delivered. */
		rc = nvlog_replay(lg, UINT64_MAX, NULL, NULL);
		if (rc != 0)
			return rc;
	}
	/* NV5 */
	nh.half_bytes = lg->hdr.half_bytes;
	nh.run = lg->hdr.run + 1;
	nh.start_lsn = FL_MAX(lg->hdr.start_lsn, lg->scan_max_lsn + 1);
	if (!hdr_counts_ok(&nh)) {
		/* A header the next open would refuse: it would fall back
		 * to the older slot, whose run fails every new record's
		 * crc.  Nothing is written; the log stays as it is. */
		fl_err(NV_SUB, "%s: bad log header: run %" PRIu64 " or "
		    "highest LSN %" PRIu64 " is at the end of its range; "
		    "the log cannot start a new run", lg->path, lg->hdr.run,
		    lg->scan_max_lsn);
		return FL_ERR(-FL_ECORRUPT);
	}
	memcpy(blk, lg->hdr_block, sizeof(blk));
	hdr_encode(blk + hdr_slot_off(nh.run), &nh);
	rc = lg->regular ? nv_fill_holes(lg, fill_end(lg)) : 0;
	if (rc != 0)
		what = "write of the log's blocks ahead";
	/* NV3: the new run's header is durable before its first record. */
	if (rc == 0)
		rc = nv_write(lg, blk, sizeof(blk), 0);
	if (rc == 0)
		rc = nv_sync(lg);

	pthread_mutex_lock(&lg->mu);
	if (rc != 0) {
		latch_failed(lg, -EIO, what, rc);
		rc = -EIO;
		goto out;
	}
	memcpy(lg->hdr_block, blk, sizeof(blk));
	lg->hdr = nh;
	lg->started = true;
	lg->cur = 0;
	lg->tail = 0;
	lg->reserved = 0;
	lg->prev_busy = false;
	lg->next_lsn = nh.start_lsn;
	lg->committed_lsn = nh.start_lsn - 1;
	lg->durable_lsn = nh.start_lsn - 1;
	fl_debug(NV_SUB, "%s: run %" PRIu64 " starts at lsn %" PRIu64,
	    lg->path, nh.run, nh.start_lsn);
out:
	pthread_mutex_unlock(&lg->mu);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Reserve, commit                                                     */

int nvlog_reserve(struct nvlog *lg, uint32_t max_payload,
    struct nvlog_resv *r)
{
	uint64_t need;
	int rc = 0;

	r->bytes = 0;
	if (max_payload > NVLOG_MAX_PAYLOAD)
		return FL_ERR(-EINVAL);
	need = NVR_ALIGN(NVLOG_REC_HDR + max_payload);
	pthread_mutex_lock(&lg->mu);
	if (!lg->started)
		rc = FL_ERR(-EINVAL);
	else if (lg->failed)
		rc = lg->fail_err;
	else if (lg->tail + lg->reserved + need > lg->hdr.half_bytes)
		rc = -EAGAIN;			/* NV2 */
	else {
		lg->reserved += need;
		r->bytes = (uint32_t)need;
	}
	pthread_mutex_unlock(&lg->mu);
	return rc;
}

void nvlog_unreserve(struct nvlog *lg, struct nvlog_resv *r)
{
	pthread_mutex_lock(&lg->mu);
	VERIFY(lg->reserved >= r->bytes);
	lg->reserved -= r->bytes;
	r->bytes = 0;
	pthread_mutex_unlock(&lg->mu);
}

/*
 * Write what the stage holds now, under mu: when a record does not follow
 * it (the first record of a half after a switch) or does not fit.  Rare:
 * a flush empties the stage, and a group of records is far smaller.
 */
static int stage_out(struct nvlog *lg)
{
	int rc = 0;

	if (lg->stage_len > 0) {
		rc = nv_write(lg, lg->stage, lg->stage_len, lg->stage_off);
		lg->unsynced_writes = true;
	}
	lg->stage_len = 0;
	return rc;
}

/* Stage an encoded record for the next flush, or write it now if it is
 * large (a WRITE's data: one copy, one pwrite, as before).  mu held. */
static int stage_record(struct nvlog *lg, const uint8_t *p, uint64_t size,
    uint64_t off)
{
	int rc = 0;

	if (size > NV_STAGE_DIRECT) {
		lg->unsynced_writes = true;
		return nv_write(lg, p, size, off);
	}
	if (lg->stage_len > 0 && (off != lg->stage_off + lg->stage_len ||
	    lg->stage_len + size > NV_STAGE_BYTES))
		rc = stage_out(lg);
	if (rc != 0)
		return rc;
	if (lg->stage_len == 0)
		lg->stage_off = off;
	memcpy(lg->stage + lg->stage_len, p, size);
	lg->stage_len += size;
	return 0;
}

int nvlog_commit(struct nvlog *lg, struct nvlog_resv *r, uint64_t gen,
    uint16_t type, const struct iovec *iov, int iovcnt, uint64_t *lsn)
{
	uint64_t len = NVLOG_REC_HDR, size, off, l;
	uint32_t resv;
	uint8_t *p;
	int rc = 0;

	for (int i = 0; i < iovcnt; i++)
		len += FL_MIN((uint64_t)iov[i].iov_len, (uint64_t)UINT32_MAX);
	size = NVR_ALIGN(len);

	pthread_mutex_lock(&lg->mu);
	resv = r->bytes;			/* always consumed */
	VERIFY(lg->reserved >= resv);
	lg->reserved -= resv;
	r->bytes = 0;
	if (!lg->started) {
		rc = FL_ERR(-EINVAL);
		goto out;
	}
	if (lg->failed) {
		rc = lg->fail_err;
		goto out;
	}
	if (len > NVR_MAX_LEN || size > resv) {
		fl_err(NV_SUB, "%s: record of %" PRIu64 " bytes exceeds its "
		    "reservation of %u", lg->path, len, resv);
		rc = FL_ERR(-EINVAL);
		goto out;
	}
	ASSERT(lg->tail + size <= lg->hdr.half_bytes);	/* NV2 */

	l = lg->next_lsn;
	p = lg->recbuf;
	memcpy(p + NVR_MAGIC, NVR_MAGIC_STR, 4);
	fl_put_le32(p + NVR_LEN, (uint32_t)len);
	fl_put_le64(p + NVR_LSN, l);
	fl_put_le64(p + NVR_GEN, gen);
	fl_put_le16(p + NVR_TYPE, type);
	fl_put_le16(p + NVR_RSV, 0);
	fl_put_le32(p + NVR_CRC, 0);
	off = NVLOG_REC_HDR;
	for (int i = 0; i < iovcnt; i++) {
		memcpy(p + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	memset(p + len, 0, size - len);
	fl_put_le32(p + NVR_CRC, rec_crc(lg->hdr.run, p, (uint32_t)len));

	off = half_base(lg, lg->cur) + lg->tail;
	rc = stage_record(lg, p, size, off);
	if (rc != 0) {
		latch_failed(lg, -EIO, "record write", rc);
		rc = -EIO;
		goto out;
	}
	lg->next_lsn = l + 1;
	lg->committed_lsn = l;
	lg->tail += size;
	lg->st_records++;
	lg->st_bytes += size;
	*lsn = l;
out:
	pthread_mutex_unlock(&lg->mu);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Group commit                                                        */

/*
 * One flush at a time.  Overlapping flushes would let a record committed
 * during a flush wait for one flush, not for the rest of the current one
 * and then the next, but the records that arrive during a flush share the
 * next one instead, and under load fewer, larger groups cost less than
 * the latency an overlapping flush saves (docs/wafl-nvlog.md, "Group
 * commit").  The code relies on it: the stage's spare buffer is free for
 * the leader, and a flush's RWF_DSYNC write makes only its own stage
 * durable, so durable_lsn = target is true only because the flush before
 * it has ended (a second one running beside it could end first).
 */
#define NV_FLUSHES_MAX	1
_Static_assert(NV_FLUSHES_MAX == 1, "flush_locked swaps one spare stage");

static bool flush_useful(const struct nvlog *lg)
{
	return !lg->failed && lg->committed_lsn > lg->flush_started &&
	    lg->nflushing < NV_FLUSHES_MAX;
}

/*
 * Lead one flush: make every record committed so far durable.  Called and
 * returns with mu held; drops it for the I/O.
 */
static void flush_locked(struct nvlog *lg)
{
	uint64_t target = lg->committed_lsn;
	const char *what = "fdatasync";
	uint8_t *buf = lg->stage;
	uint64_t off = lg->stage_off;
	size_t len = lg->stage_len;
	bool whole, refused = false;
	int rc = 0;

	lg->nflushing++;
	lg->flushes_begun++;
	lg->flush_started = target;
	/* One leader at a time (NV_FLUSHES_MAX), so spare is free. */
	lg->stage = lg->spare;
	lg->spare = buf;
	lg->stage_len = 0;
	/* Every record up to target is in this stage, or was written
	 * before (unsynced_writes), or was made durable by the flush before
	 * this one, which ended before this one began. */
	whole = lg->unsynced_writes || len == 0 || lg->nodsync;
	lg->unsynced_writes = false;
	pthread_mutex_unlock(&lg->mu);

	if (!whole) {
		rc = nv_write_dsync(lg, buf, len, off, &what);
		if (rc != 1)
			goto done;
		refused = true;
		rc = 0;
	}
	if (len > 0) {
		rc = nv_write(lg, buf, len, off);
		what = "record write";
	}
	if (rc == 0) {
		what = "fdatasync";
		rc = nv_sync(lg);
	}
done:
	pthread_mutex_lock(&lg->mu);
	if (refused)
		lg->nodsync = true;
	lg->st_flushes++;
	lg->nflushing--;
	if (rc != 0)
		latch_failed(lg, -EIO, what, rc);
	else if (!lg->failed && target > lg->durable_lsn)
		lg->durable_lsn = target;		/* NV1, NV4 */
	pthread_cond_broadcast(&lg->cv);
}

/*
 * Take the queued callbacks that may run now: those whose LSN is durable,
 * or all of them once the log has failed.  mu held.
 */
static struct nv_waiter *waiters_ready(struct nvlog *lg)
{
	struct nv_waiter *head = lg->aw_head, **pp = &lg->aw_head;

	while (*pp != NULL && (lg->failed || (*pp)->lsn <= lg->durable_lsn))
		pp = &(*pp)->next;
	if (pp == &lg->aw_head)
		return NULL;
	lg->aw_head = *pp;
	if (lg->aw_head == NULL)
		lg->aw_last = NULL;
	*pp = NULL;
	return head;
}

/*
 * Lead flushes until no queued callback waits (see THEORY).  Called and
 * returns with mu held and no flush running; drops mu for the I/O and for
 * the callbacks.
 */
static void lead(struct nvlog *lg)
{
	lg->leaders++;
	for (;;) {
		if (flush_useful(lg))
			flush_locked(lg);
		for (;;) {
			struct nv_waiter *w = waiters_ready(lg);
			int err = lg->failed ? lg->fail_err : 0;

			if (w == NULL)
				break;
			pthread_mutex_unlock(&lg->mu);
			while (w != NULL) {
				struct nv_waiter *n = w->next;
				w->fn(w->arg, err, n == NULL);
				free(w);
				w = n;
			}
			pthread_mutex_lock(&lg->mu);
		}
		/* What is left waits for a flush in flight (whose leader
		 * runs it) or for one this thread starts now. */
		if (lg->aw_head == NULL || !flush_useful(lg))
			break;
	}
	lg->leaders--;
	pthread_cond_broadcast(&lg->cv);
}

int nvlog_wait(struct nvlog *lg, uint64_t lsn)
{
	int rc;

	pthread_mutex_lock(&lg->mu);
	if (lsn <= lg->durable_lsn) {
		rc = 0;
		goto out;
	}
	if (!lg->started || lsn > lg->committed_lsn) {
		rc = lg->failed ? lg->fail_err : FL_ERR(-EINVAL);
		goto out;
	}
	lg->st_waits++;
	for (;;) {
		if (lsn <= lg->durable_lsn) {
			rc = 0;
			break;
		}
		if (lg->failed) {
			rc = lg->fail_err;
			break;
		}
		if (lsn > lg->flush_started && flush_useful(lg))
			lead(lg);
		else
			pthread_cond_wait(&lg->cv, &lg->mu);
	}
out:
	pthread_mutex_unlock(&lg->mu);
	return rc;
}

/*
 * Queue fn for lsn.  With may_lead, lead the flush it needs here; without,
 * return true when it needs one that no flush in flight will start, which
 * the caller then owes through nvlog_kick.
 */
static bool when_durable(struct nvlog *lg, uint64_t lsn, nvlog_done_fn *fn,
    void *arg, bool may_lead)
{
	struct nv_waiter *w;
	bool owed = false;
	int rc;

	pthread_mutex_lock(&lg->mu);
	if (lsn <= lg->durable_lsn) {
		rc = 0;
		goto now;
	}
	if (lg->failed || !lg->started || lsn > lg->committed_lsn) {
		rc = lg->failed ? lg->fail_err : FL_ERR(-EINVAL);
		goto now;
	}
	w = malloc(sizeof(*w));
	if (w == NULL) {
		/* Durability first: wait here instead. */
		pthread_mutex_unlock(&lg->mu);
		fn(arg, nvlog_wait(lg, lsn), true);
		return false;
	}
	lg->st_waits++;
	w->next = NULL;
	w->lsn = lsn;
	w->fn = fn;
	w->arg = arg;
	/* LSN order: callers queue in about commit order; keep it exact. */
	if (lg->aw_last == NULL || lg->aw_last->lsn <= lsn) {
		if (lg->aw_last != NULL)
			lg->aw_last->next = w;
		else
			lg->aw_head = w;
		lg->aw_last = w;
	} else {
		struct nv_waiter **pp = &lg->aw_head;
		while ((*pp)->lsn <= lsn)
			pp = &(*pp)->next;
		w->next = *pp;
		*pp = w;
	}
	if (may_lead) {
		if (lsn > lg->flush_started && flush_useful(lg))
			lead(lg);
	} else {
		/* A thread inside lead() flushes again for it before it
		 * leaves; with none, the caller owes the flush. */
		owed = lsn > lg->flush_started && lg->leaders == 0;
	}
	pthread_mutex_unlock(&lg->mu);
	return owed;
now:
	pthread_mutex_unlock(&lg->mu);
	fn(arg, rc, true);
	return false;
}

void nvlog_when_durable(struct nvlog *lg, uint64_t lsn, nvlog_done_fn *fn,
    void *arg)
{
	(void)when_durable(lg, lsn, fn, arg, true);
}

bool nvlog_when_durable_later(struct nvlog *lg, uint64_t lsn,
    nvlog_done_fn *fn, void *arg)
{
	return when_durable(lg, lsn, fn, arg, false);
}

void nvlog_kick(struct nvlog *lg)
{
	pthread_mutex_lock(&lg->mu);
	if (lg->aw_head != NULL && lg->leaders == 0)
		lead(lg);
	pthread_mutex_unlock(&lg->mu);
}

uint64_t nvlog_committed_lsn(struct nvlog *lg)
{
	uint64_t l;

	pthread_mutex_lock(&lg->mu);
	l = lg->committed_lsn;
	pthread_mutex_unlock(&lg->mu);
	return l;
}

int nvlog_sync(struct nvlog *lg)
{
	uint64_t l;

	pthread_mutex_lock(&lg->mu);
	l = lg->committed_lsn;
	pthread_mutex_unlock(&lg->mu);
	return nvlog_wait(lg, l);
}

/*
 * Write what is staged (a stage written out: the next flush syncs the
 * whole file) and wait out every flush begun so far, whose leader writes
 * the stage it took: then every committed byte is in the file.  mu held.
 */
static int write_out_locked(struct nvlog *lg)
{
	uint64_t begun;
	int rc = 0;

	if (lg->stage_len > 0 && !lg->failed) {
		rc = stage_out(lg);
		if (rc != 0) {
			latch_failed(lg, -EIO, "record write", rc);
			rc = -EIO;
		}
	}
	begun = lg->flushes_begun;
	while (lg->st_flushes < begun)
		pthread_cond_wait(&lg->cv, &lg->mu);
	return rc;
}

int nvlog_write_staged(struct nvlog *lg)
{
	int rc;

	pthread_mutex_lock(&lg->mu);
	rc = write_out_locked(lg);
	pthread_mutex_unlock(&lg->mu);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Halves                                                              */

int nvlog_switch(struct nvlog *lg)
{
	int rc = 0;

	pthread_mutex_lock(&lg->mu);
	if (!lg->started) {
		/* The CP after replay, before nvlog_start: nothing is
		 * appended yet, so there is nothing to switch. */
		rc = 0;
	} else if (lg->failed) {
		rc = lg->fail_err;
	} else if (lg->reserved != 0 || lg->prev_busy) {
		fl_err(NV_SUB, "%s: switch refused: %s", lg->path,
		    lg->reserved != 0 ? "reservations outstanding" :
		    "the other half is not released");
		rc = FL_ERR(-EBUSY);
	} else {
		/* "Staging": nothing meant for the half appends go back to
		 * is still only in memory (nvlog_release_prev wrote it out). */
		uint64_t nb = half_base(lg, lg->cur ^ 1);

		ASSERT(lg->stage_len == 0 ||
		    lg->stage_off + lg->stage_len <= nb ||
		    lg->stage_off >= nb + lg->hdr.half_bytes);
		lg->cur ^= 1;
		lg->tail = 0;
		lg->prev_busy = true;
	}
	pthread_mutex_unlock(&lg->mu);
	return rc;
}

void nvlog_release_prev(struct nvlog *lg)
{
	/* The stale records left there carry durable generations and lower
	 * LSNs (NV3), replay skips them.  But what is still to be written
	 * there must be written before the half is reused ("Staging"); a
	 * failure latches the log. */
	pthread_mutex_lock(&lg->mu);
	(void)write_out_locked(lg);
	lg->prev_busy = false;
	pthread_mutex_unlock(&lg->mu);
}

double nvlog_fill(struct nvlog *lg)
{
	double f;

	pthread_mutex_lock(&lg->mu);
	f = (double)(lg->tail + lg->reserved) / (double)lg->hdr.half_bytes;
	pthread_mutex_unlock(&lg->mu);
	return f;
}

bool nvlog_failed(const struct nvlog *lg)
{
	return __atomic_load_n(&lg->failed, __ATOMIC_ACQUIRE);
}

void nvlog_get_stats(struct nvlog *lg, struct nvlog_stats *st)
{
	pthread_mutex_lock(&lg->mu);
	st->records = lg->st_records;
	st->bytes = lg->st_bytes;
	st->flushes = lg->st_flushes;
	st->waits = lg->st_waits;
	st->half = lg->cur;
	st->half_used = lg->tail;
	st->half_bytes = lg->hdr.half_bytes;
	st->next_lsn = lg->next_lsn;
	st->durable_lsn = lg->durable_lsn;
	pthread_mutex_unlock(&lg->mu);
}

/* ------------------------------------------------------------------ */
/* Tests: crash simulation and fault injection                         */

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static int crash_common(struct nvlog *lg, bool tear, uint64_t seed)
{
	struct nv_pending *pend;
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;

	if (!(lg->flags & NVLOG_OPEN_CRASHSIM))
		return FL_ERR(-EINVAL);
	pthread_mutex_lock(&lg->mu);
	while (lg->nflushing > 0)
		pthread_cond_wait(&lg->cv, &lg->mu);
	lg->stage_len = 0;		/* memory: gone */
	pthread_mutex_lock(&lg->pc_mu);
	pend = pending_take(lg);
	pthread_mutex_unlock(&lg->pc_mu);
	latch_failed(lg, -FL_ECRASHED, "simulated crash", -FL_ECRASHED);
	pthread_mutex_unlock(&lg->mu);

	for (struct nv_pending *q = pend; tear && q != NULL; q = q->next) {
		uint32_t cut = 1 + (uint32_t)(xorshift64(&s) % q->len);

		switch (xorshift64(&s) % 4) {
		case 0:			/* never reached the disk */
			break;
		case 1:			/* reached it whole */
			(void)fl_pwrite_full(lg->fd, q->data, q->len, q->off);
			break;
		case 2:			/* torn: a prefix only */
			(void)fl_pwrite_full(lg->fd, q->data, cut, q->off);
			break;
		default:		/* torn, rest garbage */
			for (uint32_t i = cut; i < q->len; i++)
				q->data[i] = (uint8_t)xorshift64(&s);
			(void)fl_pwrite_full(lg->fd, q->data, q->len, q->off);
			break;
		}
	}
	pending_free(pend);
	return 0;
}

int nvlog_crash_drop_unsynced(struct nvlog *lg)
{
	return crash_common(lg, false, 0);
}

int nvlog_crash_tear_unsynced(struct nvlog *lg, uint64_t seed)
{
	return crash_common(lg, true, seed);
}

void nvlog_test_inject(struct nvlog *lg, unsigned faults)
{
	__atomic_store_n(&lg->faults, faults, __ATOMIC_RELAXED);
}
