/*
 * mirror/dest.c: the destination of a relationship.
 *
 * THEORY
 *   The destination serves root d read-only (a wafl replica mount).  A
 *   transfer brings a new root g > d and the blocks born after d that g
 *   reaches.  Those blocks lie on VBNs free in d and in every root the
 *   destination may serve (M1, kept by the source), so writing them
 *   disturbs no reader of d.  Before anything becomes visible the tree is
 *   verified in memory (verify.c, M3); then:
 *
 *     blocks -> raid_write, raid_flush -> fsinfo g -> slot g % 2,
 *     raid_flush -> wafl_replica_advance -> ACK g
 *
 *   A crash before the fsinfo write leaves d (its slot untouched, M2); a
 *   torn fsinfo write leaves d; after the flush, g.  No data on the
 *   destination is read to decide anything: the source says which blocks
 *   changed, the checksums say they are right.  Only d's bitmap and
 *   summary map are read, so that a source that broke M1 cannot make a
 *   block land on a VBN that d or its snapshots use (guard_vbn).
 *
 *   Transfers (BEGIN names the kind):
 *     cp    one CP's blocks in VBN order, then ROOT.  Blocks are kept in
 *           memory (bounded) until the root lets them be verified, and
 *           written only then.
 *     walk  a birth-generation walk: BEGIN carries the target fsinfo, so
 *           every block, arriving parent first, is verified as it comes
 *           and handed to the write-behind (dwrite.c), which writes it
 *           on a thread of its own, in whole stripes where it can; ROOT
 *           repeats the fsinfo and waits for the writer (mdw_drain).
 *   A baseline is a walk from generation 0: both fsinfo slots are wiped
 *   first, so no half-overwritten earlier file system is ever mounted.
 *
 * BASELINE CHECKPOINTS
 *   With a checkpoint path, a baseline records in a small file beside the
 *   volume (its fsinfo slots are wiped, no file system is mounted) the
 *   target root and, in arrival order, the {vbn, birth} of every block
 *   written *and flushed* (raid_flush before each append, fdatasync
 *   after):
 *
 *     off size  header (64 bytes)           entries (16 bytes each)
 *       0    8  magic "FLMRCKPT"              0  8  vbn
 *       8    4  version 1                     8  8  birth
 *      12    4  reserved 0
 *      16   16  relationship id
 *      32    8  target generation
 *      40    4  crc32c of the target's fsinfo block
 *      44   16  file system UUID
 *      60    4  crc32c of bytes 0..59
 *
 *   The write-behind makes these sync points (dwrite.c), so the
 *   entries go to the file from its thread (ckpt_synced).
 *
 *   STATUS reports {target, entries}; a source that still holds that
 *   root walks it again (same root, same order) and sends BEGIN with
 *   resume = entries, skipping them.  The destination then reads those
 *   blocks back *from its own disks* and feeds them to the verifier in
 *   the recorded order, exactly as if they had arrived, so M3 holds for
 *   every block of the adopted tree.  These reads verify the
 *   destination's own data; they are counted apart (resume_reads), not as
 *   mirror-path reads, which stay zero for every CP and catch-up
 *   transfer and for the blocks a baseline receives.  A torn last entry
 *   is ignored; a block that does not verify cuts the checkpoint there
 *   (the transfer is refused, the next STATUS names the shorter one); a
 *   source that no longer holds the target starts over with resume 0,
 *   which replaces the file.  It is removed once the root is adopted.
 *
 * FAILURE
 *   Any malformed frame, failed check, unexpected message or unknown
 *   relationship: log, count, close the connection, adopt nothing (M5).
 *   The source reconnects and resumes from the generation STATUS reports.
 *
 * CONCURRENCY
 *   One thread accepts and serves one connection at a time; during a walk
 *   the connection's write-behind writes (and flushes) on two threads of
 *   its own, and touches the checkpoint only at its sync points, while
 *   the serving thread leaves it alone (it is idle at BEGIN and after
 *   mdw_drain or mdw_abort).  Readers use the replica concurrently;
 *   wafl_replica_advance switches them.  `lock` guards the stats and the
 *   replica pointer for status callers.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "mirror/mir_impl.h"
#include "mirror/mirror.h"
#include "mirror/wire.h"

#define WRITE_BATCH	256u	/* cp mode: blocks gathered per write_runs */
#define WALK_BATCH	2048u	/* walk mode: blocks per batch handed to the
				   writer (at most checkpoint_blocks) */
#define WALK_CARRY	16384u	/* walk mode: blocks kept for their stripe */
#define CKPT_MAGIC	"FLMRCKPT"
#define CKPT_VERSION	1u
#define CKPT_HDR	64u
#define CKPT_ENT	16u
#define REPLAY_CHUNK	256u	/* checkpoint entries read back at once */

struct mir_dest {
	raid_vol_t *raid;
	uint64_t nvbns;			/* the raid volume's */
	struct mir_dest_opts o;
	uint8_t key[MIR_KEY_MAX];
	struct mir_acceptor acc;
	pthread_t thr;
	bool running;
	_Atomic bool stop;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	wafl_vol_t *replica;
	bool has_fs;
	struct wafl_fsinfo cur;		/* the served root's fsinfo */
	struct mir_dest_stats st;
	struct fl_log_repeat error_log;	/* set_error's (lock) */

	/* Baseline checkpoint (the thread's; st.ckpt_* mirror it). */
	int ckpt_fd;
	uint64_t ckpt_gen, ckpt_blocks;
	uint32_t ckpt_fsicrc;
	uint8_t ckpt_uuid[16];
	uint8_t *ckpt_buf;		/* entries being appended */
};

struct xfer {
	bool active;
	struct mir_begin b;
	struct wafl_fsinfo fsi;		/* walk: from BEGIN */
	struct mir_verify mv;
	uint64_t reads0, rmw0;
	struct mir_dwriter *dw;		/* walk mode: the write-behind */
	uint8_t *wrun;			/* write_runs' buffer, per connection */
	bool ckpt;			/* a baseline that checkpoints */
	/* VBNs the served root uses, one bitmap block's worth (area) at a
	 * time: a transfer may write none of them (M1, checked here). */
	uint8_t *used;
	uint64_t used_area;		/* UINT64_MAX: none loaded */
	uint64_t guard_reads;		/* this transfer's reads of them */
};

/* Data blocks read for callers; and, apart, what raid itself reads to
 * update parity for writes of partial stripes. */
static uint64_t raid_reads(raid_vol_t *r)
{
	struct raid_status rs;

	raid_status(r, &rs);
	return rs.counters.reads;
}

static uint64_t raid_rmw_reads(raid_vol_t *r)
{
	struct raid_status rs;

	raid_status(r, &rs);
	return rs.counters.partial_reads + rs.counters.parity_reads;
}

/*
 * The link failed or a transfer was refused: last_error says why, rejects
 * counts it.  Logged when the reason changes, and once every
 * ERROR_LOG_S while it repeats (with how often it came meanwhile): a
 * source retrying a refused link, or a stranger knocking with a wrong
 * key, must not fill the log.
 */
#define ERROR_LOG_S	60u

static void set_error(struct mir_dest *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_error(struct mir_dest *d, const char *fmt, ...)
{
	char msg[192];
	uint64_t now = fl_now_mono_ns(), more = 0, gen;
	bool log;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&d->lock);
	snprintf(d->st.last_error, sizeof(d->st.last_error), "%s", msg);
	d->st.last_error_time = (uint64_t)time(NULL);
	gen = d->st.gen;
	log = fl_log_repeat_due(&d->error_log, msg, now,
	    ERROR_LOG_S * 1000000000ull, &more);
	pthread_mutex_unlock(&d->lock);
	if (log && more > 0)
		fl_err("mirror", "destination: %s; nothing adopted, serving "
		    "generation %llu (%llu more since the last one logged)",
		    msg, (unsigned long long)gen, (unsigned long long)more);
	else if (log)
		fl_err("mirror", "destination: %s; nothing adopted, serving "
		    "generation %llu", msg, (unsigned long long)gen);
	/* Counted once it is logged: whoever sees rejects move (a status
	 * poll, the tests) finds the line in the log too. */
	pthread_mutex_lock(&d->lock);
	d->st.rejects++;
	pthread_mutex_unlock(&d->lock);
}

/* The relationship works again (a root adopted, or a source that began
 * its session idle: in sync): the last error is over, and becomes the
 * resolved one. */
static void error_resolved(struct mir_dest *d)
{
	char was[sizeof(d->st.last_error)];

	pthread_mutex_lock(&d->lock);
	memcpy(was, d->st.last_error, sizeof(was));
	if (was[0] != '\0') {
		memcpy(d->st.resolved_error, was, sizeof(was));
		d->st.resolved_time = (uint64_t)time(NULL);
	}
	d->st.last_error[0] = '\0';
	d->st.last_error_time = 0;
	pthread_mutex_unlock(&d->lock);
	if (was[0] != '\0')
		fl_info("mirror", "destination: in sync again (the last error "
		    "was: %s)", was);
}

static int key_lookup(void *arg, const uint8_t id[MIR_ID_SIZE],
    const uint8_t **key, size_t *key_len)
{
	struct mir_dest *d = arg;

	if (memcmp(id, d->o.rel_id, MIR_ID_SIZE) != 0)
		return -ENOENT;
	*key = d->key;
	*key_len = d->o.key_len;
	return 0;
}

/* Mount the replica read-only on whatever root the disks hold. */
static int mount_replica(struct mir_dest *d)
{
	struct wafl_mount_opts mo = d->o.mount;
	wafl_vol_t *v = NULL;
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	struct wafl_fsinfo f;
	int rc;

	mo.readonly = true;
	mo.nvlog_path = NULL;
	if (blk == NULL)
		return -ENOMEM;
	rc = wafl_mount(d->raid, &mo, &v);
	if (rc == 0)
		rc = wafl_root_of(v, wafl_generation(v), blk);
	if (rc == 0)
		rc = wafl_fsinfo_decode(blk, &f);
	if (rc != 0 && v != NULL) {
		wafl_unmount(v);
		v = NULL;
	}
	free(blk);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&d->lock);
	d->replica = v;
	d->has_fs = true;
	d->cur = f;
	d->st.gen = f.gen;
	d->st.state = MIR_IN_SYNC;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* ------------------------------------------------ baseline checkpoint */

static void ckpt_publish(struct mir_dest *d)
{
	pthread_mutex_lock(&d->lock);
	d->st.ckpt_gen = d->ckpt_blocks != 0 ? d->ckpt_gen : 0;
	d->st.ckpt_blocks = d->ckpt_blocks;
	pthread_mutex_unlock(&d->lock);
}

/* The directory entry of a created or removed checkpoint is durable. */
static void ckpt_sync_dir(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s",
		    (int)(slash == path ? 1 : slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

static void ckpt_drop(struct mir_dest *d)
{
	if (d->ckpt_fd >= 0)
		close(d->ckpt_fd);
	d->ckpt_fd = -1;
	if (d->o.checkpoint_path != NULL &&
	    unlink(d->o.checkpoint_path) == 0)
		ckpt_sync_dir(d->o.checkpoint_path);
	d->ckpt_gen = d->ckpt_blocks = 0;
	ckpt_publish(d);
}

/* A checkpoint left by an interrupted baseline (start, no file system).
 * Anything that does not check is removed. */
static void ckpt_load(struct mir_dest *d)
{
	uint8_t h[CKPT_HDR];
	struct stat sb;
	int fd;

	if (d->o.checkpoint_path == NULL)
		return;
	fd = open(d->o.checkpoint_path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	if (d->has_fs || fstat(fd, &sb) != 0 ||
	    pread(fd, h, CKPT_HDR, 0) != (ssize_t)CKPT_HDR ||
	    memcmp(h, CKPT_MAGIC, 8) != 0 ||
	    fl_get_le32(h + 8) != CKPT_VERSION ||
	    fl_crc32c(0, h, 60) != fl_get_le32(h + 60) ||
	    memcmp(h + 16, d->o.rel_id, MIR_ID_SIZE) != 0 ||
	    fl_get_le64(h + 32) == 0) {
		close(fd);
		if (!d->has_fs)
			fl_warn("mirror", "destination: ignoring checkpoint %s "
			    "(not this relationship's, or damaged)",
			    d->o.checkpoint_path);
		ckpt_drop(d);
		return;
	}
	d->ckpt_fd = fd;
	d->ckpt_gen = fl_get_le64(h + 32);
	d->ckpt_fsicrc = fl_get_le32(h + 40);
	memcpy(d->ckpt_uuid, h + 44, 16);
	/* A torn last entry is not one. */
	d->ckpt_blocks = ((uint64_t)sb.st_size - CKPT_HDR) / CKPT_ENT;
	ckpt_publish(d);
	fl_info("mirror", "destination: checkpoint of a baseline of "
	    "generation %llu: %llu blocks written",
	    (unsigned long long)d->ckpt_gen,
	    (unsigned long long)d->ckpt_blocks);
}

/* A new baseline: the checkpoint names its target, no blocks yet. */
static int ckpt_create(struct mir_dest *d, const struct xfer *x)
{
	uint8_t h[CKPT_HDR] = { 0 };
	int fd, rc = 0;

	ckpt_drop(d);
	if (d->o.checkpoint_path == NULL)
		return 0;
	memcpy(h, CKPT_MAGIC, 8);
	fl_put_le32(h + 8, CKPT_VERSION);
	memcpy(h + 16, d->o.rel_id, MIR_ID_SIZE);
	fl_put_le64(h + 32, x->b.target);
	fl_put_le32(h + 40, fl_crc32c(0, x->b.fsinfo, MIR_BLOCK));
	memcpy(h + 44, x->fsi.fs_uuid, 16);
	fl_put_le32(h + 60, fl_crc32c(0, h, 60));
	fd = open(d->o.checkpoint_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600);
	if (fd < 0)
		rc = -errno;
	else if (pwrite(fd, h, CKPT_HDR, 0) != (ssize_t)CKPT_HDR ||
	    fdatasync(fd) != 0)
		rc = -EIO;
	if (rc != 0) {
		if (fd >= 0)
			close(fd);
		fl_warn("mirror", "destination: cannot write the checkpoint %s: "
		    "%s; this baseline is not restartable",
		    d->o.checkpoint_path, fl_strerror(rc));
		return 0;
	}
	ckpt_sync_dir(d->o.checkpoint_path);
	d->ckpt_fd = fd;
	d->ckpt_gen = x->b.target;
	d->ckpt_fsicrc = fl_get_le32(h + 40);
	memcpy(d->ckpt_uuid, x->fsi.fs_uuid, 16);
	d->ckpt_blocks = 0;
	return 0;
}

/* A sync point of the write-behind (its thread): the n blocks handed
 * over since the last one, in arrival order, are written and flushed;
 * record them durably. */
static int ckpt_synced(void *arg, const uint64_t *vbn, const uint64_t *birth,
    uint64_t n)
{
	struct mir_dest *d = arg;

	if (d->ckpt_fd < 0)
		return 0;	/* dropped after a failed append */
	if (d->ckpt_buf == NULL) {
		d->ckpt_buf = malloc(((size_t)d->o.checkpoint_blocks +
		    WALK_BATCH) * CKPT_ENT);
		if (d->ckpt_buf == NULL)
			return -ENOMEM;
	}
	for (uint64_t i = 0; i < n; i++) {
		uint8_t *e = d->ckpt_buf + (size_t)i * CKPT_ENT;
		fl_put_le64(e, vbn[i]);
		fl_put_le64(e + 8, birth[i]);
	}
	size_t len = (size_t)n * CKPT_ENT;
	off_t off = (off_t)(CKPT_HDR + d->ckpt_blocks * CKPT_ENT);
	if (pwrite(d->ckpt_fd, d->ckpt_buf, len, off) != (ssize_t)len ||
	    fdatasync(d->ckpt_fd) != 0) {
		fl_warn("mirror", "destination: checkpoint write failed; this "
		    "baseline is not restartable");
		ckpt_drop(d);
		return 0;
	}
	d->ckpt_blocks += n;
	ckpt_publish(d);
	return 0;
}

/* Cut the checkpoint to its first n entries (they verified). */
static void ckpt_cut(struct mir_dest *d, uint64_t n)
{
	if (n == 0 || d->ckpt_fd < 0 ||
	    ftruncate(d->ckpt_fd, (off_t)(CKPT_HDR + n * CKPT_ENT)) != 0 ||
	    fdatasync(d->ckpt_fd) != 0) {
		ckpt_drop(d);
		return;
	}
	d->ckpt_blocks = n;
	ckpt_publish(d);
}

/*
 * BEGIN(walk, 0, g, resume = n): the first n blocks of this walk are the
 * checkpoint's.  Read them back from this volume and verify them in their
 * recorded order, as if they had just arrived (M3).
 */
static int ckpt_replay(struct mir_dest *d, struct xfer *x)
{
	uint8_t *blks = NULL, *ents = NULL;
	uint64_t n = x->b.resume, good = 0, reads = 0;
	uint64_t vbn[REPLAY_CHUNK], birth[REPLAY_CHUNK];
	int rc = 0;

	if (d->ckpt_fd < 0 || x->b.target != d->ckpt_gen ||
	    n != d->ckpt_blocks ||
	    fl_crc32c(0, x->b.fsinfo, MIR_BLOCK) != d->ckpt_fsicrc) {
		set_error(d, "baseline of generation %llu resumes after %llu "
		    "blocks; this destination's checkpoint is %llu blocks of "
		    "generation %llu", (unsigned long long)x->b.target,
		    (unsigned long long)n,
		    (unsigned long long)d->ckpt_blocks,
		    (unsigned long long)d->ckpt_gen);
		ckpt_drop(d);
		return FL_ERR(-FL_EPROTO);
	}
	blks = malloc((size_t)REPLAY_CHUNK * WAFL_BLOCK_SIZE);
	ents = malloc((size_t)REPLAY_CHUNK * CKPT_ENT);
	if (blks == NULL || ents == NULL)
		rc = -ENOMEM;
	/* Chunks of entries; consecutive VBNs (most of a file's data) are
	 * read in one raid_read. */
	while (good < n && rc == 0) {
		uint64_t cnt = n - good < REPLAY_CHUNK ? n - good : REPLAY_CHUNK;
		size_t len = (size_t)cnt * CKPT_ENT;
		if (pread(d->ckpt_fd, ents, len, (off_t)(CKPT_HDR +
		    good * CKPT_ENT)) != (ssize_t)len) {
			rc = -EIO;
			break;
		}
		for (uint64_t i = 0; i < cnt; i++) {
			vbn[i] = fl_get_le64(ents + i * CKPT_ENT);
			birth[i] = fl_get_le64(ents + i * CKPT_ENT + 8);
		}
		for (uint64_t i = 0; i < cnt && rc == 0;) {
			uint32_t k = 0;
			while (i + k < cnt && vbn[i + k] == vbn[i] + k &&
			    vbn[i + k] >= WAFL_FSINFO_SLOTS &&
			    vbn[i + k] < x->mv.nvbns)
				k++;
			if (k == 0) {
				rc = FL_ERR(-FL_ECORRUPT);	/* outside */
				break;
			}
			rc = raid_read(d->raid, vbn[i], k, blks);
			for (uint32_t j = 0; j < k && rc == 0; j++) {
				reads++;
				const uint8_t *b = blks +
				    (size_t)j * WAFL_BLOCK_SIZE;
				rc = mv_block(&x->mv, vbn[i + j], birth[i + j],
				    fl_crc32c(0, b, WAFL_BLOCK_SIZE), b);
				if (rc == 0)
					good++;
			}
			i += k;
		}
	}
	free(blks);
	free(ents);
	pthread_mutex_lock(&d->lock);
	d->st.resume_reads += reads;
	if (rc == 0)
		d->st.baseline_resumes++;
	pthread_mutex_unlock(&d->lock);
	if (rc != 0) {
		set_error(d, "checkpointed block %llu of the baseline does not "
		    "verify (%s): checkpoint cut to %llu blocks",
		    (unsigned long long)good, x->mv.why[0] ? x->mv.why :
		    fl_strerror(rc), (unsigned long long)good);
		ckpt_cut(d, good);
		return rc;
	}
	fl_info("mirror", "destination: baseline of generation %llu resumed: "
	    "%llu blocks read back and verified", (unsigned long long)x->b.target,
	    (unsigned long long)n);
	return 0;
}

/* ---------------------------------------------------------- applying */

static int write_runs(struct mir_dest *d, const uint64_t *vbn,
    uint8_t *const *data, uint32_t n, uint8_t *run)
{
	for (uint32_t i = 0; i < n;) {
		uint32_t k = 0;
		while (i + k < n && vbn[i + k] == vbn[i] + k) {
			memcpy(run + (size_t)k * WAFL_BLOCK_SIZE, data[i + k],
			    WAFL_BLOCK_SIZE);
			k++;
		}
		int rc = raid_write(d->raid, vbn[i], k, run);
		if (rc != 0)
			return rc;
		pthread_mutex_lock(&d->lock);
		d->st.blocks_written += k;
		pthread_mutex_unlock(&d->lock);
		i += k;
	}
	return 0;
}

struct stash_writer {
	struct mir_dest *d;
	uint64_t vbn[WRITE_BATCH];
	uint8_t *data[WRITE_BATCH];
	uint32_t n;
	uint8_t *run;
};

static int stash_flush(struct stash_writer *w)
{
	int rc = write_runs(w->d, w->vbn, w->data, w->n, w->run);

	w->n = 0;
	return rc;
}

static int stash_write(void *arg, uint64_t vbn, const uint8_t *data)
{
	struct stash_writer *w = arg;

	w->vbn[w->n] = vbn;
	w->data[w->n] = (uint8_t *)(uintptr_t)data;
	if (++w->n == WRITE_BATCH)
		return stash_flush(w);
	return 0;
}

/*
 * The fsinfo the destination writes: the source's, with the ring cut to
 * the new root alone (M4).  Any older root listed there would be whole
 * only for a while: once the source lets it go (a newer acknowledgement
 * releases its hold, its own ring moves on), a later catch-up may write
 * over its blocks, and a break in the middle of that walk would mount a
 * ring whose older trees the allocator and the checker read.  Readers
 * still on the previous root do not depend on this list: only a mount,
 * the allocator and the checker read it.
 */
static void ring_filter(struct wafl_fsinfo *nf)
{
	memset(nf->ring, 0, sizeof(nf->ring));
	nf->ring[0] = (struct wafl_ring_ent){ nf->gen, nf->root };
	nf->ring_len = 1;
	/* The source's holds are its own: their trees need not be whole
	 * here. */
	nf->nholds = 0;
	memset(nf->holds, 0, sizeof(nf->holds));
}

/* Root arrived and verified: make it durable and serve it. */
static int adopt(struct mir_dest *d, struct xfer *x, struct wafl_fsinfo *nf)
{
	uint8_t *blk = NULL;
	int rc = 0;

	uint64_t t0 = fl_now_mono_ns(), t1, t2, t3;

	if (x->b.kind == MIR_XFER_CP) {
		struct stash_writer w = { .d = d, .run = x->wrun };
		rc = mv_for_each_stashed(&x->mv, stash_write, &w);
		if (rc == 0)
			rc = stash_flush(&w);
	} else {
		rc = mdw_drain(x->dw);
	}
	t1 = fl_now_mono_ns();
	if (rc == 0)
		rc = raid_flush(d->raid);
	if (rc != 0)
		goto io;
	ring_filter(nf);
	blk = malloc(WAFL_BLOCK_SIZE);
	if (blk == NULL)
		return -ENOMEM;
	wafl_fsinfo_encode(blk, nf);
	rc = raid_write(d->raid, nf->gen % WAFL_FSINFO_SLOTS, 1, blk);
	if (rc == 0)
		rc = raid_flush(d->raid);
	free(blk);
	if (rc != 0)
		goto io;
	t2 = fl_now_mono_ns();
	uint64_t r1 = raid_reads(d->raid);
	pthread_mutex_lock(&d->lock);
	d->st.mirror_reads += r1 - x->reads0 - x->guard_reads;
	d->st.guard_reads += x->guard_reads;
	d->st.parity_rmw_reads += raid_rmw_reads(d->raid) - x->rmw0;
	pthread_mutex_unlock(&d->lock);
	if (d->replica != NULL) {
		uint64_t g = 0;
		rc = wafl_replica_advance(d->replica, &g);
		if (rc == 0 && g != nf->gen)
			rc = FL_ERR(-FL_ECORRUPT);
	} else {
		rc = mount_replica(d);
	}
	if (rc != 0) {
		set_error(d, "generation %llu is durable but the replica did "
		    "not switch to it: %s", (unsigned long long)nf->gen,
		    fl_strerror(rc));
		return rc;
	}
	t3 = fl_now_mono_ns();
	pthread_mutex_lock(&d->lock);
	d->st.write_ns += t1 - t0;
	d->st.flush_ns += t2 - t1;
	d->st.advance_ns += t3 - t2;
	d->st.advance_reads += raid_reads(d->raid) - r1;
	d->cur = *nf;
	d->has_fs = true;
	d->st.gen = nf->gen;
	d->st.transfers++;
	d->st.state = MIR_IN_SYNC;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	if (x->b.base == 0)
		ckpt_drop(d);	/* the baseline is whole */
	error_resolved(d);
	fl_debug("mirror", "destination: serving generation %llu",
	    (unsigned long long)nf->gen);
	return 0;
io:
	set_error(d, "writing generation %llu failed: %s",
	    (unsigned long long)nf->gen, fl_strerror(rc));
	return rc;
}

/* -------------------------------------------------------- a session */

/* Checks every fsinfo the source sends: it must be the target, of this
 * file system, within this volume. */
static int check_fsinfo(struct mir_dest *d, struct xfer *x,
    const uint8_t *blk, struct wafl_fsinfo *f)
{
	if (wafl_fsinfo_decode(blk, f) != 0) {
		set_error(d, "fsinfo of generation %llu does not verify",
		    (unsigned long long)x->b.target);
		return FL_ERR(-FL_ECORRUPT);
	}
	if (f->gen != x->b.target) {
		set_error(d, "fsinfo of generation %llu in a transfer of %llu",
		    (unsigned long long)f->gen,
		    (unsigned long long)x->b.target);
		return FL_ERR(-FL_EPROTO);
	}
	if (x->b.base != 0 && memcmp(f->fs_uuid, d->cur.fs_uuid, 16) != 0) {
		set_error(d, "root of another file system (unknown "
		    "relationship root)");
		return FL_ERR(-FL_EPROTO);
	}
	if (f->nvbns > d->nvbns) {
		set_error(d, "file system of %llu blocks, volume of %llu",
		    (unsigned long long)f->nvbns,
		    (unsigned long long)d->nvbns);
		return FL_ERR(-FL_EPROTO);
	}
	return 0;
}

static int wipe_for_baseline(struct mir_dest *d)
{
	uint8_t *zero = calloc(WAFL_FSINFO_SLOTS, WAFL_BLOCK_SIZE);
	int rc;

	if (zero == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&d->lock);
	wafl_vol_t *v = d->replica;
	d->replica = NULL;
	d->has_fs = false;
	d->st.gen = 0;
	d->st.state = MIR_TRANSFERRING;
	memset(&d->cur, 0, sizeof(d->cur));
	pthread_mutex_unlock(&d->lock);
	if (v != NULL)
		wafl_unmount(v);
	/* Whoever else reads these disks lets go first (mir_dest_opts). */
	if (d->o.before_baseline != NULL)
		d->o.before_baseline(d->o.before_baseline_arg);
	fl_info("mirror", "destination: baseline: replacing the volume's "
	    "file system");
	rc = raid_write(d->raid, 0, WAFL_FSINFO_SLOTS, zero);
	if (rc == 0)
		rc = raid_flush(d->raid);
	free(zero);
	return rc;
}

static int on_begin(struct mir_dest *d, struct mir_conn *c, struct xfer *x,
    const struct mir_hdr *h)
{
	int rc;

	if (x->active) {
		set_error(d, "BEGIN inside a transfer");
		return FL_ERR(-FL_EPROTO);
	}
	rc = mir_begin_decode(mir_conn_payload(c), h->length, &x->b);
	if (rc != 0) {
		set_error(d, "malformed BEGIN");
		return rc;
	}
	uint64_t served = d->has_fs ? d->cur.gen : 0;
	if (x->b.base == 0) {
		if (x->b.kind != MIR_XFER_WALK ||
		    (d->has_fs && !d->o.allow_baseline)) {
			set_error(d, "baseline refused (volume holds generation "
			    "%llu)", (unsigned long long)served);
			return -EPERM;
		}
	} else if (x->b.base != served) {
		set_error(d, "transfer from generation %llu, serving %llu",
		    (unsigned long long)x->b.base,
		    (unsigned long long)served);
		return FL_ERR(-FL_EPROTO);
	} else if ((x->b.target - x->b.base) % 2 == 0) {
		set_error(d, "transfer %llu -> %llu would overwrite the served "
		    "root's fsinfo slot (M2)", (unsigned long long)x->b.base,
		    (unsigned long long)x->b.target);
		return FL_ERR(-FL_EPROTO);
	} else if (x->b.kind == MIR_XFER_CP &&
	    x->b.target != x->b.base + 1) {
		set_error(d, "CP transfer %llu -> %llu skips generations",
		    (unsigned long long)x->b.base,
		    (unsigned long long)x->b.target);
		return FL_ERR(-FL_EPROTO);
	}
	if (x->b.kind == MIR_XFER_WALK) {
		rc = check_fsinfo(d, x, x->b.fsinfo, &x->fsi);
		if (rc != 0)
			return rc;
	}
	if (x->b.base == 0 && x->b.resume == 0) {
		rc = wipe_for_baseline(d);
		if (rc == 0 && x->b.kind == MIR_XFER_WALK)
			rc = ckpt_create(d, x);
		if (rc != 0)
			return rc;
	}
	uint64_t lim = d->nvbns;
	if (x->b.kind == MIR_XFER_WALK)
		lim = x->fsi.nvbns;
	else if (d->has_fs)
		lim = d->cur.nvbns;
	rc = mv_init(&x->mv, x->b.base, x->b.target, lim);
	if (rc == 0 && x->b.kind == MIR_XFER_WALK)
		rc = mv_expect_root(&x->mv, &x->fsi.root);
	if (rc != 0) {
		set_error(d, "transfer %llu: %s", (unsigned long long)x->b.target,
		    x->mv.why[0] ? x->mv.why : fl_strerror(rc));
		mv_release(&x->mv);
		return rc;
	}
	if (x->b.resume != 0) {
		/* The volume holds no file system since the first attempt
		 * wiped it; nothing to unmount. */
		rc = ckpt_replay(d, x);
		if (rc != 0) {
			mv_release(&x->mv);
			return rc;
		}
	}
	x->ckpt = x->b.base == 0 && d->ckpt_fd >= 0;
	if (x->b.kind == MIR_XFER_WALK)
		mdw_sync(x->dw, x->ckpt);
	x->reads0 = raid_reads(d->raid);
	x->rmw0 = raid_rmw_reads(d->raid);
	x->used_area = UINT64_MAX;	/* the served root may be new */
	x->guard_reads = 0;
	x->active = true;
	return 0;
}

static void xfer_end(struct xfer *x)
{
	if (x->dw != NULL)
		mdw_abort(x->dw);
	if (x->active)
		mv_release(&x->mv);
	x->active = false;
}

/*
 * A transfer brings blocks born after the served root d, which the source
 * allocated on VBNs no root it retains uses, d and d's snapshots among
 * them (M1).  A source that broke that rule (a bug, a lost hold, a peer
 * that lies) must not make this side overwrite what it serves: a block
 * on a VBN that d's active bitmap or summary map has set is refused before
 * it is stashed or written.  The bits come from the replica (its block
 * cache, else the disks: counted as guard_reads, not as mirror_reads);
 * a baseline has no served root to protect.
 */
static int guard_vbn(struct mir_dest *d, struct xfer *x, uint64_t vbn)
{
	uint64_t area = vbn / WAFL_BITS_PER_BLOCK;
	uint32_t bit = (uint32_t)(vbn % WAFL_BITS_PER_BLOCK);
	int rc;

	if (d->replica == NULL || x->b.base == 0)
		return 0;
	if (x->used_area != area) {
		if (x->used == NULL && (x->used = malloc(WAFL_BLOCK_SIZE)) ==
		    NULL)
			return -ENOMEM;
		uint64_t r0 = raid_reads(d->raid);
		x->used_area = UINT64_MAX;
		rc = wafl_replica_used_bits(d->replica, area, x->used);
		x->guard_reads += raid_reads(d->raid) - r0;
		if (rc != 0) {
			set_error(d, "transfer %llu: reading the served root's "
			    "bitmap for vbn %llu: %s",
			    (unsigned long long)x->b.target,
			    (unsigned long long)vbn, fl_strerror(rc));
			return rc;
		}
		x->used_area = area;
	}
	if (((x->used[bit >> 3] >> (bit & 7)) & 1) == 0)
		return 0;
	pthread_mutex_lock(&d->lock);
	d->st.blocks_in_use_refused++;
	pthread_mutex_unlock(&d->lock);
	set_error(d, "transfer %llu: vbn %llu is in use by the served root "
	    "%llu or its snapshots: refused, not overwritten",
	    (unsigned long long)x->b.target, (unsigned long long)vbn,
	    (unsigned long long)x->b.base);
	return FL_ERR(-FL_EPROTO);
}

/* One block of the transfer, from a BLOCK or rebuilt from a DELTA; crc is
 * fl_crc32c(0, data), or NULL if not computed yet (a CP's stashed blocks
 * are checked when their parent arrives, which computes it then). */
static int take_block(struct mir_dest *d, struct xfer *x, uint64_t vbn,
    uint64_t birth, const uint32_t *crc, const uint8_t *data)
{
	int rc;

	pthread_mutex_lock(&d->lock);
	d->st.blocks_received++;
	pthread_mutex_unlock(&d->lock);
	rc = guard_vbn(d, x, vbn);
	if (rc != 0)
		return rc;
	if (x->b.kind == MIR_XFER_CP) {
		rc = mv_stash(&x->mv, vbn, birth, data);
		if (rc == 0 && x->mv.stash_bytes > d->o.batch_max_bytes) {
			set_error(d, "CP %llu larger than %llu bytes",
			    (unsigned long long)x->b.target,
			    (unsigned long long)d->o.batch_max_bytes);
			return -EFBIG;
		}
	} else {
		rc = mv_block(&x->mv, vbn, birth, crc != NULL ? *crc :
		    fl_crc32c(0, data, WAFL_BLOCK_SIZE), data);
		if (rc == 0)
			rc = mdw_put(x->dw, vbn, birth, data);
	}
	if (rc != 0)
		set_error(d, "transfer %llu: %s", (unsigned long long)x->b.target,
		    x->mv.why[0] ? x->mv.why : fl_strerror(rc));
	return rc;
}

static int on_block(struct mir_dest *d, struct mir_conn *c, struct xfer *x,
    const struct mir_hdr *h)
{
	struct mir_block b;
	int rc;

	rc = mir_block_decode(mir_conn_rx(c), h->length, &b);
	if (rc != 0 || b.gen != x->b.target) {
		set_error(d, "malformed BLOCK in transfer %llu",
		    (unsigned long long)x->b.target);
		return FL_ERR(-FL_EPROTO);
	}
	const uint32_t crc = mir_conn_block_crc(c);
	rc = take_block(d, x, b.vbn, b.birth, &crc, b.data);
	if (rc == 0)
		mir_window_took_block(c, &b);
	return rc;
}

/* A DELTA: the block is rebuilt from the window (window.c) and then is
 * verified and written like any other; nothing is read from disk. */
static int on_delta(struct mir_dest *d, struct mir_conn *c, struct xfer *x,
    const struct mir_hdr *h)
{
	struct mir_delta m;
	uint8_t blk[MIR_BLOCK];
	int rc;

	rc = mir_delta_decode(mir_conn_payload(c), h->length, &m);
	if (rc != 0 || m.gen != x->b.target) {
		set_error(d, "malformed DELTA in transfer %llu",
		    (unsigned long long)x->b.target);
		return FL_ERR(-FL_EPROTO);
	}
	rc = mir_window_rebuild(c, &m, blk);
	if (rc != 0) {
		/* Never on an honest link: both windows follow the same
		 * frames (window.c); the link tests assert it. */
		pthread_mutex_lock(&d->lock);
		d->st.deltas_refused++;
		pthread_mutex_unlock(&d->lock);
		set_error(d, "DELTA of vbn %llu in transfer %llu: %s",
		    (unsigned long long)m.vbn, (unsigned long long)x->b.target,
		    mir_window_get(c->win, m.base) == NULL ? "base not in "
		    "the window" : "malformed ranges");
		return rc;
	}
	pthread_mutex_lock(&d->lock);
	d->st.blocks_delta++;
	pthread_mutex_unlock(&d->lock);
	return take_block(d, x, m.vbn, m.birth, NULL, blk);
}

static int on_root(struct mir_dest *d, struct mir_conn *c, struct xfer *x,
    const struct mir_hdr *h)
{
	struct mir_root r;
	struct wafl_fsinfo nf;
	int rc;

	rc = mir_root_decode(mir_conn_payload(c), h->length, &r);
	if (rc != 0 || r.gen != x->b.target) {
		set_error(d, "malformed ROOT in transfer %llu",
		    (unsigned long long)x->b.target);
		return FL_ERR(-FL_EPROTO);
	}
	if (x->b.kind == MIR_XFER_WALK &&
	    memcmp(r.fsinfo, x->b.fsinfo, MIR_BLOCK) != 0) {
		set_error(d, "ROOT differs from the root BEGIN announced");
		return FL_ERR(-FL_EPROTO);
	}
	rc = check_fsinfo(d, x, r.fsinfo, &nf);
	if (rc != 0)
		return rc;
	uint64_t t0 = fl_now_mono_ns();
	if (x->b.kind == MIR_XFER_CP)
		rc = mv_expect_root(&x->mv, &nf.root);
	if (rc == 0)
		rc = mv_finish(&x->mv);
	pthread_mutex_lock(&d->lock);
	d->st.verify_ns += fl_now_mono_ns() - t0;
	pthread_mutex_unlock(&d->lock);
	if (rc != 0) {
		set_error(d, "transfer %llu: %s", (unsigned long long)x->b.target,
		    x->mv.why[0] ? x->mv.why : fl_strerror(rc));
		return rc;
	}
	rc = adopt(d, x, &nf);
	xfer_end(x);
	if (rc != 0)
		return rc;
	uint8_t ack[8];
	mir_u64_encode(ack, nf.gen);
	return mir_send(c, MIR_MSG_ACK, ack, sizeof(ack));
}

/* The source closes the link and says why (an ERROR: a destination too
 * small for it, one it may not send a baseline, a root it no longer
 * retains).  Its reason is this side's last error, so that the status
 * here says why nothing comes; logged when it changes (the source tries
 * again every retry interval).  Not a refusal of this side's: rejects
 * does not count it. */
static void source_refused(struct mir_dest *d, const struct mir_error *e)
{
	char msg[sizeof(d->st.last_error)];

	snprintf(msg, sizeof(msg), "the source refused: %.160s", e->text);
	pthread_mutex_lock(&d->lock);
	bool same = strcmp(msg, d->st.last_error) == 0;
	if (!same)
		memcpy(d->st.last_error, msg, sizeof(msg));
	d->st.last_error_time = (uint64_t)time(NULL);
	pthread_mutex_unlock(&d->lock);
	if (!same)
		fl_warn("mirror", "destination: %s", msg);
}

static void serve_conn(struct mir_dest *d, int fd)
{
	struct mir_conn c;
	struct xfer x = { 0 };
	uint8_t id[MIR_ID_SIZE];
	int rc;

	if (mir_conn_init(&c, fd, d->o.io_timeout_ms, &d->stop) != 0) {
		close(fd);
		return;
	}
	struct mir_link_opts lo = { .compress = d->o.compress,
	    .tls = d->o.tls };
	rc = mir_handshake_dest(&c, key_lookup, d, &lo, id);
	if (rc != 0) {
		/* Counted before the reject (set_error): whoever sees
		 * rejects move sees this one too. */
		if (rc == -EACCES) {
			pthread_mutex_lock(&d->lock);
			d->st.auth_failures++;
			pthread_mutex_unlock(&d->lock);
		}
		set_error(d, "peer refused at handshake: %s",
		    c.sent_error[0] != '\0' ? c.sent_error : fl_strerror(rc));
		goto out;
	}
	/* A peer that passed the handshake gets the write-behind. */
	x.wrun = malloc((size_t)WRITE_BATCH * WAFL_BLOCK_SIZE);
	struct mdw_opts wo = { .raid = d->raid, .batch_blocks = WALK_BATCH,
	    .carry_blocks = WALK_CARRY, .synced_fn = ckpt_synced, .arg = d,
	    .stats_lock = &d->lock, .blocks_written = &d->st.blocks_written };
	if (d->o.checkpoint_path != NULL) {
		wo.sync_every = d->o.checkpoint_blocks;
		if (wo.batch_blocks > d->o.checkpoint_blocks)
			wo.batch_blocks = d->o.checkpoint_blocks;
	}
	rc = x.wrun == NULL ? -ENOMEM : mdw_start(&wo, &x.dw);
	if (rc == 0)
		rc = mir_window_create(MIR_WINDOW_BLOCKS, &c.win);
	if (rc != 0) {
		set_error(d, "cannot start the writer or the link's window: "
		    "%s", fl_strerror(rc));
		goto out;
	}
	struct mir_status_msg sm = { 0 };
	pthread_mutex_lock(&d->lock);
	sm.has_fs = d->has_fs;
	sm.gen = d->has_fs ? d->cur.gen : 0;
	memcpy(sm.fs_uuid, d->cur.fs_uuid, 16);
	sm.nvbns = d->nvbns;
	pthread_mutex_unlock(&d->lock);
	if (!sm.has_fs && d->ckpt_fd >= 0 && d->ckpt_blocks != 0) {
		sm.ckpt_gen = d->ckpt_gen;
		sm.ckpt_blocks = d->ckpt_blocks;
		memcpy(sm.fs_uuid, d->ckpt_uuid, 16);
	}
	uint8_t sp[MIR_STATUS_SIZE];
	mir_status_encode(sp, &sm);
	rc = mir_send(&c, MIR_MSG_STATUS, sp, sizeof(sp));
	/* One connection is served at a time.  A source that vanished (its
	 * host lost power, the network between dropped it: no FIN, no RST)
	 * is silent for good, and its restarted self would wait behind it
	 * forever.  A live source is never silent for long: with nothing to
	 * send it sends a HEARTBEAT every interval it names (at most a
	 * quarter of its timeout).  So one from which nothing has come for
	 * the timeout, and for three of its intervals, is gone, and is given
	 * up once another connection waits.  The waiting one has proved
	 * nothing (it may be a scan, or a peer without the key): it never
	 * costs a live source its link. */
	uint64_t silent_ns = (uint64_t)d->o.io_timeout_ms * 1000000ull;
	uint64_t last_rx = fl_now_mono_ns();
	while (rc == 0 && !d->stop) {
		rc = mir_readable(&c, 100);
		if (rc == 0 && fl_now_mono_ns() - last_rx >= silent_ns &&
		    mir_acceptor_waiting(&d->acc)) {
			fl_warn("mirror", "destination: nothing from the source for "
			    "%llu ms and another connection waits: this one is "
			    "given up%s", (unsigned long long)(silent_ns /
			    1000000ull), x.active ? " with its transfer" : "");
			pthread_mutex_lock(&d->lock);
			d->st.silent_given_up++;
			pthread_mutex_unlock(&d->lock);
			rc = -ETIMEDOUT;
			break;
		}
		if (rc <= 0)
			continue;
		struct mir_hdr h;
		rc = mir_recv(&c, &h);
		if (rc != 0) {
			if (rc == -FL_EPROTO)
				set_error(d, "malformed frame");
			break;
		}
		if (!x.active && (h.type == MIR_MSG_BLOCK ||
		    h.type == MIR_MSG_DELTA || h.type == MIR_MSG_ROOT)) {
			set_error(d, "%s outside a transfer",
			    mir_msg_name(h.type));
			rc = FL_ERR(-FL_EPROTO);
			break;
		}
		switch (h.type) {
		case MIR_MSG_BEGIN:
			rc = on_begin(d, &c, &x, &h);
			break;
		case MIR_MSG_BLOCK:
			rc = on_block(d, &c, &x, &h);
			break;
		case MIR_MSG_DELTA:
			rc = on_delta(d, &c, &x, &h);
			break;
		case MIR_MSG_ROOT:
			rc = on_root(d, &c, &x, &h);
			break;
		case MIR_MSG_ABORT:
			xfer_end(&x);
			break;
		case MIR_MSG_HEARTBEAT: {
			uint32_t ms;
			rc = mir_heartbeat_decode(mir_conn_payload(&c), h.length,
			    &ms);
			if (rc != 0) {
				set_error(d, "malformed HEARTBEAT");
				break;
			}
			/* Outside a transfer: the source took the session
			 * and has nothing to send. */
			if (!x.active)
				error_resolved(d);
			uint64_t hb_ns = 3ull * ms * 1000000ull;
			silent_ns = (uint64_t)d->o.io_timeout_ms * 1000000ull;
			if (silent_ns < hb_ns)
				silent_ns = hb_ns;
			break;
		}
		case MIR_MSG_ERROR: {
			struct mir_error e;
			if (mir_error_decode(mir_conn_payload(&c), h.length,
			    &e) == 0)
				source_refused(d, &e);
			rc = -ECONNABORTED;
			break;
		}
		default:
			set_error(d, "unexpected %s", mir_msg_name(h.type));
			rc = FL_ERR(-FL_EPROTO);
		}
		last_rx = fl_now_mono_ns();
	}
	if (rc != 0 && rc != -ECONNRESET && rc != -ECANCELED)
		fl_info("mirror", "destination: connection closed: %s",
		    fl_strerror(rc));
out:
	xfer_end(&x);
	mdw_stop(x.dw);
	free(x.wrun);
	free(x.used);
	mir_conn_close(&c);
}

static void *dest_thread(void *arg)
{
	struct mir_dest *d = arg;

	(void)pthread_setname_np(pthread_self(), "mir-dest");
	while (!d->stop) {
		int fd = mir_acceptor_next(&d->acc, 100);
		if (fd >= 0)
			serve_conn(d, fd);
	}
	return NULL;
}

/* ---------------------------------------------------------- the API */

int mir_dest_start(raid_vol_t *raid, const struct mir_dest_opts *o,
    mir_dest_t **out)
{
	struct mir_dest *d;
	struct raid_geometry g;
	int rc;

	if (o->key == NULL || o->key_len < MIR_KEY_MIN ||
	    o->key_len > MIR_KEY_MAX)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->raid = raid;
	d->o = *o;
	memcpy(d->key, o->key, o->key_len);
	d->o.key = d->key;
	d->o.last_error = NULL;
	if (o->last_error != NULL && o->last_error[0] != '\0') {
		snprintf(d->st.last_error, sizeof(d->st.last_error), "%s",
		    o->last_error);
		d->st.last_error_time = (uint64_t)time(NULL);
	}
	if (d->o.batch_max_bytes == 0)
		d->o.batch_max_bytes = 256ull << 20;
	if (d->o.io_timeout_ms == 0)
		d->o.io_timeout_ms = 10000;
	raid_geometry(raid, &g);
	d->nvbns = g.nvbns;
	d->acc.lfd = -1;
	d->ckpt_fd = -1;
	if (d->o.checkpoint_blocks == 0)
		d->o.checkpoint_blocks = 8192;
	if (d->o.checkpoint_path != NULL) {
		d->o.checkpoint_path = strdup(d->o.checkpoint_path);
		if (d->o.checkpoint_path == NULL) {
			free(d);
			return -ENOMEM;
		}
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	rc = mount_replica(d);
	if (rc != 0) {
		fl_info("mirror", "destination: no file system on the volume "
		    "yet (%s): waiting for a baseline", fl_strerror(rc));
		d->st.state = MIR_UNINITIALIZED;
	}
	ckpt_load(d);
	rc = mir_acceptor_open(&d->acc, o->listener, o->host, o->port,
	    o->rel_id, false);
	if (rc < 0)
		goto fail;
	rc = pthread_create(&d->thr, NULL, dest_thread, d);
	if (rc != 0) {
		rc = -rc;
		goto fail;
	}
	d->running = true;
	fl_info("mirror", "destination: %s port %u, serving generation %llu",
	    o->listener != NULL ? "receiving through the listener on" :
	    "listening on", d->acc.port, (unsigned long long)d->st.gen);
	*out = d;
	return 0;
fail:
	mir_dest_stop(d);
	return rc;
}

uint16_t mir_dest_port(const mir_dest_t *d)
{
	return d->acc.port;
}

wafl_vol_t *mir_dest_volume(mir_dest_t *d)
{
	pthread_mutex_lock(&d->lock);
	wafl_vol_t *v = d->replica;
	pthread_mutex_unlock(&d->lock);
	return v;
}

void mir_dest_stats(mir_dest_t *d, struct mir_dest_stats *st)
{
	pthread_mutex_lock(&d->lock);
	*st = d->st;
	pthread_mutex_unlock(&d->lock);
}

int mir_dest_wait(mir_dest_t *d, uint64_t gen, uint32_t timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	fl_deadline_ts(&ts, (uint64_t)timeout_ms * 1000);
	pthread_mutex_lock(&d->lock);
	while (d->st.gen < gen && rc == 0)
		rc = pthread_cond_timedwait(&d->cond, &d->lock, &ts);
	pthread_mutex_unlock(&d->lock);
	return rc == 0 ? 0 : -ETIMEDOUT;
}

static void stop_thread(struct mir_dest *d)
{
	d->stop = true;
	if (d->running)
		pthread_join(d->thr, NULL);
	d->running = false;
	mir_acceptor_close(&d->acc);
}

int mir_dest_break(mir_dest_t *d, const char *nvlog_path, wafl_vol_t **out)
{
	struct wafl_mount_opts mo = d->o.mount;
	int rc;

	mo.readonly = false;
	mo.nvlog_path = nvlog_path;
	stop_thread(d);
	pthread_mutex_lock(&d->lock);
	wafl_vol_t *v = d->replica;
	d->replica = NULL;
	pthread_mutex_unlock(&d->lock);
	if (v == NULL)
		return -ENOENT;
	uint64_t gen = wafl_generation(v);
	wafl_unmount(v);
	rc = wafl_mount(d->raid, &mo, out);
	pthread_mutex_lock(&d->lock);
	d->st.state = MIR_BROKEN_OFF;
	d->has_fs = false;
	pthread_mutex_unlock(&d->lock);
	if (rc == 0) {
		/* Root gen stays retained exactly, as snapshot
		 * mirror.base.<gen>: a resync finds it as the common base
		 * however long the broken-off side runs (M6, M7).  Durable
		 * before the break returns (its own CP): a crash before the
		 * next CP would lose it, and the NVLOG's replay and the
		 * CPs after it would then take gen out of the ring. */
		char name[MIR_BASE_NAME_MAX];
		mir_base_name(gen, name, sizeof(name));
		int src = wafl_snap_adopt_root(*out, name, gen, NULL);
		if (src != 0 && src != -EEXIST)
			fl_warn("mirror", "destination: break: snapshot %s: %s",
			    name, fl_strerror(src));
	}
	if (rc == 0)
		fl_info("mirror", "destination: broken off at generation %llu; "
		    "the volume is writable", (unsigned long long)gen);
	else
		fl_err("mirror", "destination: break: mount at generation %llu "
		    "failed: %s", (unsigned long long)gen, fl_strerror(rc));
	return rc;
}

void mir_dest_stop(mir_dest_t *d)
{
	if (d == NULL)
		return;
	stop_thread(d);
	if (d->replica != NULL)
		wafl_unmount(d->replica);
	if (d->ckpt_fd >= 0)
		close(d->ckpt_fd);	/* kept for the next start */
	free(d->ckpt_buf);
	free((char *)(uintptr_t)d->o.checkpoint_path);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d);
}
