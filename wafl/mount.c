/*
 * wafl/mount.c: making, mounting and unmounting a file system.
 *
 * mkfs builds an empty tree in memory (inode file, active bitmap, summary
 * map, snapshot table, root directory) and writes it with an ordinary CP as
 * generation 1, after zeroing both fsinfo slots so no older file system's
 * root can win.
 *
 * mount reads both fsinfo slots and takes the newest that validates (W6),
 * reads that root block (verified against the fsinfo's pointer), replays the
 * NVLOG records newer than the root (W7), runs one CP so the replayed state
 * is on disk, and starts the CP thread.  Nothing in mount depends on the
 * volume's size: bitmaps are read lazily by the allocator.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "wafl/dir.h"
#include "wafl/nvlog.h"
#include "wafl/wafl_impl.h"

static void vol_free(struct wafl_vol *v)
{
	if (v == NULL)
		return;
	struct wnode *specials[] = { v->bitmap_wn, v->summary_wn,
	    v->snaptab_wn };
	for (size_t i = 0; i < FL_ARRAY_SIZE(specials); i++)
		if (specials[i] != NULL)
			wnode_put(specials[i]);
	/* Whatever is still dirty is dropped (crash or failed volume). */
	pthread_mutex_lock(&v->icache_lock);
	for (struct wnode *wn = v->dirty_list; wn != NULL; wn = wn->dnext) {
		wn->dirty = false;
		wn->refs--;
	}
	v->dirty_list = NULL;
	for (uint32_t i = 0; v->ihash != NULL && i < v->ihash_size; i++) {
		struct wnode *wn = v->ihash[i];
		while (wn != NULL) {
			struct wnode *next = wn->hnext;
			dbuf_tab_free(&wn->dbufs);
			pthread_rwlock_destroy(&wn->lock);
			free(wn);
			wn = next;
		}
	}
	pthread_mutex_unlock(&v->icache_lock);
	if (v->ifile_wn != NULL) {
		dbuf_tab_free(&v->ifile_wn->dbufs);
		pthread_rwlock_destroy(&v->ifile_wn->lock);
		free(v->ifile_wn);
	}
	free(v->ihash);
	alloc_fini(v);
	free(v->frees);
	free(v->free_inos);
	bcache_destroy(v->cache);
	if (v->pool_reserved > 0)
		(void)wafl_pool_reserve(-(int64_t)v->pool_reserved);
	if (v->log != NULL)
		nvlog_close(v->log);
	pthread_rwlock_destroy(&v->cp_lock);
	pthread_mutex_destroy(&v->rename_lock);
	pthread_mutex_destroy(&v->icache_lock);
	pthread_mutex_destroy(&v->ialloc_lock);
	pthread_mutex_destroy(&v->reclaim_mu);
	pthread_mutex_destroy(&v->free_lock);
	pthread_mutex_destroy(&v->cp_mutex);
	pthread_mutex_destroy(&v->cp_serial);
	pthread_mutex_destroy(&v->check_mu);
	pthread_cond_destroy(&v->check_cv);
	pthread_mutex_destroy(&v->stats_lock);
	pthread_cond_destroy(&v->cp_cond);
	free(v);
}

static int vol_alloc(raid_vol_t *raid, const struct wafl_mount_opts *o,
    struct wafl_vol **out)
{
	struct wafl_vol *v = calloc(1, sizeof(*v));
	pthread_rwlockattr_t ra;
	int rc;

	if (v == NULL)
		return -ENOMEM;
	v->raid = raid;
	raid_geometry(raid, &v->geo);
	v->nvbns = v->geo.nvbns;
	if (o != NULL)
		v->opts = *o;
	if (v->opts.cache_bytes == 0)
		v->opts.cache_bytes = 1ull << 30;
	if (v->opts.cp_interval_ms == 0)
		v->opts.cp_interval_ms = 10000;
	if (v->opts.cp_interval_ms < 1000)
		v->opts.cp_interval_ms = 1000;
	if (v->opts.dirty_max_bytes == 0)
		v->opts.dirty_max_bytes = 128ull << 20;
	if (v->opts.nvlog_half_bytes == 0)
		v->opts.nvlog_half_bytes = 64ull << 20;
	/* Writer preference: a waiting CP freeze is not starved by a stream
	 * of operations. */
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&v->cp_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&v->rename_lock, NULL);
	pthread_mutex_init(&v->icache_lock, NULL);
	pthread_mutex_init(&v->ialloc_lock, NULL);
	pthread_mutex_init(&v->reclaim_mu, NULL);
	pthread_mutex_init(&v->free_lock, NULL);
	pthread_mutex_init(&v->cp_mutex, NULL);
	pthread_mutex_init(&v->cp_serial, NULL);
	pthread_mutex_init(&v->check_mu, NULL);
	pthread_cond_init(&v->check_cv, NULL);
	pthread_mutex_init(&v->stats_lock, NULL);
	pthread_cond_init(&v->cp_cond, NULL);
	v->ihash_size = 1u << 16;
	v->ihash = calloc(v->ihash_size, sizeof(*v->ihash));
	rc = v->ihash == NULL ? -ENOMEM : 0;
	if (rc == 0)
		rc = bcache_create(v->opts.cache_bytes, &v->cache);
	if (rc == 0)
		rc = fl_random_bytes(v->write_verf, sizeof(v->write_verf));
	if (rc != 0) {
		vol_free(v);
		return rc;
	}
	*out = v;
	return 0;
}

static struct wnode *ifile_wnode_new(struct wafl_vol *v,
    const struct wafl_dinode *di)
{
	struct wnode *wn = calloc(1, sizeof(*wn));

	if (wn == NULL)
		return NULL;
	wn->vol = v;
	wn->ino = WAFL_INO_INODEFILE;
	wn->di = *di;
	wn->refs = 1;
	wn->loaded = true;
	pthread_rwlock_init(&wn->lock, NULL);
	dbuf_tab_init(&wn->dbufs);
	return wn;
}

static int get_specials(struct wafl_vol *v)
{
	int rc = wnode_get(v, WAFL_INO_BITMAP, &v->bitmap_wn);

	if (rc == 0)
		rc = wnode_get(v, WAFL_INO_SUMMARY, &v->summary_wn);
	if (rc == 0)
		rc = wnode_get(v, WAFL_INO_SNAPTABLE, &v->snaptab_wn);
	return rc;
}

uint64_t next_ino_hint(uint64_t next_ino)
{
	/* Only a hint, but ialloc gives no number from WAFL_INO_LIMIT on:
	 * one past it would make every create fail with ENOSPC (and
	 * wrap). */
	return next_ino < WAFL_INO_FIRST_USER || next_ino >= WAFL_INO_LIMIT ?
	    WAFL_INO_FIRST_USER : next_ino;
}

bool special_inode_ok(uint64_t nvbns, uint64_t ino,
    const struct wafl_dinode *di)
{
	if ((di->mode & S_IFMT) != S_IFREG || (di->flags & WAFL_INO_INLINE))
		return false;
	if (ino == WAFL_INO_SNAPTABLE)
		return di->size <= (uint64_t)WAFL_MAX_SNAPSHOTS *
		    WAFL_SNAP_ENTRY_SIZE && di->size % WAFL_SNAP_ENTRY_SIZE == 0;
	return di->size == FL_DIV_ROUND_UP_U64(nvbns, WAFL_BITS_PER_BLOCK) *
	    WAFL_BLOCK_SIZE;
}

int specials_valid(uint64_t nvbns, const struct wafl_dinode *bm,
    const struct wafl_dinode *st, const struct wafl_dinode *sm)
{
	const struct wafl_dinode *di[3] = { bm, st, sm };
	static const uint64_t ino[3] = {
		WAFL_INO_BITMAP, WAFL_INO_SNAPTABLE, WAFL_INO_SUMMARY
	};
	static const char *const what[3] = {
		"active bitmap", "snapshot table", "summary map"
	};

	for (unsigned i = 0; i < 3; i++) {
		if (!special_inode_ok(nvbns, ino[i], di[i])) {
			fl_err("wafl", "the %s's inode is corrupt (mode %#o, "
			    "size %llu)", what[i], di[i]->mode,
			    (unsigned long long)di[i]->size);
			return FL_ERR(-FL_ECORRUPT);
		}
	}
	return 0;
}

static void init_special(struct wnode *wn, uint32_t mode, uint64_t size,
    uint64_t now)
{
	memset(&wn->di, 0, sizeof(wn->di));
	wn->di.mode = mode;
	wn->di.nlink = 1;
	wn->di.gen = 1;
	wn->di.ino = wn->ino;
	wn->di.size = size;
	wn->di.atime_ns = wn->di.mtime_ns = wn->di.ctime_ns =
	    wn->di.crtime_ns = now;
	wnode_dirty(wn);
}

int wafl_mkfs(raid_vol_t *raid, const struct wafl_mkfs_opts *o)
{
	struct wafl_mount_opts mo = { .readonly = false, .no_cp_thread = true };
	struct wafl_vol *v;
	uint8_t *zero = NULL;
	uint64_t now = fl_now_real_ns();
	int rc = vol_alloc(raid, &mo, &v);

	if (rc != 0)
		return rc;
	if (v->nvbns < 64) {
		fl_err("wafl", "mkfs: volume of %llu blocks is too small",
		    (unsigned long long)v->nvbns);
		rc = -ENOSPC;
		goto out;
	}
	zero = calloc(WAFL_FSINFO_SLOTS, WAFL_BLOCK_SIZE);
	rc = zero == NULL ? -ENOMEM :
	    raid_write(raid, 0, WAFL_FSINFO_SLOTS, zero);
	if (rc != 0)
		goto out;

	struct wafl_fsinfo *f = &v->fsi;
	if (o != NULL && o->fs_uuid != NULL)
		memcpy(f->fs_uuid, o->fs_uuid, 16);
	else
		rc = fl_random_bytes(f->fs_uuid, 16);
	if (rc == 0)
		rc = fl_random_bytes(f->fh_key, sizeof(f->fh_key));
	if (rc == 0)
		rc = fl_random_bytes(f->dir_key, sizeof(f->dir_key));
	if (rc != 0)
		goto out;
	f->fsid = fl_get_le64(f->fs_uuid) ^ fl_get_le64(f->fs_uuid + 8);
	f->nvbns = v->nvbns;
	f->create_ns = now;
	f->ring_len = 0;
	v->open_gen = 1;
	v->next_ino = WAFL_INO_FIRST_USER;

	struct wafl_dinode ifd = {
		.mode = S_IFREG | 0600, .nlink = 1, .gen = 1,
		.atime_ns = now, .mtime_ns = now, .ctime_ns = now,
		.crtime_ns = now,
	};
	v->ifile = ifd;
	v->ifile_wn = ifile_wnode_new(v, &ifd);
	if (v->ifile_wn == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = alloc_init(v);
	if (rc == 0)
		rc = get_specials(v);
	if (rc != 0)
		goto out;
	uint64_t nareas = FL_DIV_ROUND_UP_U64(v->nvbns, WAFL_BITS_PER_BLOCK);
	init_special(v->bitmap_wn, S_IFREG | 0600, nareas * WAFL_BLOCK_SIZE,
	    now);
	init_special(v->summary_wn, S_IFREG | 0600, nareas * WAFL_BLOCK_SIZE,
	    now);
	init_special(v->snaptab_wn, S_IFREG | 0600, 0, now);

	struct wnode *root;
	rc = wnode_get(v, WAFL_INO_ROOTDIR, &root);
	if (rc != 0)
		goto out;
	memset(&root->di, 0, sizeof(root->di));
	root->di = (struct wafl_dinode){
		.mode = S_IFDIR | 0755, .nlink = 2, .gen = 1,
		.ino = WAFL_INO_ROOTDIR, .parent = WAFL_INO_ROOTDIR,
		.atime_ns = now, .mtime_ns = now, .ctime_ns = now,
		.crtime_ns = now,
	};
	wnode_dirty(root);
	struct dirfile df;
	wn_dirfile(root, &df);
	rc = dir_init(&df);
	wnode_put(root);
	if (rc != 0)
		goto out;
	v->inodes_used = 5;
	rc = cp_run(v);
	if (rc == 0) {
		char u[37];
		fl_uuid_fmt(f->fs_uuid, u);
		fl_info("wafl", "mkfs: file system %s on %llu blocks", u,
		    (unsigned long long)v->nvbns);
	}
out:
	free(zero);
	vol_free(v);
	return rc;
}

int fsinfo_read_newest(struct wafl_vol *v, struct wafl_fsinfo *out)
{
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	struct wafl_fsinfo cand;
	bool found = false;
	int rc = 0;

	if (blk == NULL)
		return -ENOMEM;
	for (unsigned s = 0; s < WAFL_FSINFO_SLOTS; s++) {
		rc = raid_read(v->raid, s, 1, blk);
		if (rc != 0) {
			fl_warn("wafl", "fsinfo slot %u unreadable: %s", s,
			    fl_strerror(rc));
			continue;
		}
		if (wafl_fsinfo_decode(blk, &cand) != 0)
			continue;
		if (cand.gen % WAFL_FSINFO_SLOTS != s) {
			fl_warn("wafl", "fsinfo slot %u holds generation %llu: "
			    "ignored", s, (unsigned long long)cand.gen);
			continue;
		}
		if (!found || cand.gen > out->gen) {
			*out = cand;
			found = true;
		}
	}
	free(blk);
	if (!found) {
		fl_err("wafl", "no valid fsinfo in either slot: not a filer "
		    "file system, or both roots are damaged");
		return FL_ERR(-FL_ECORRUPT);
	}
	if (out->nvbns > v->geo.nvbns) {
		fl_err("wafl", "file system spans %llu blocks but the volume "
		    "has %llu", (unsigned long long)out->nvbns,
		    (unsigned long long)v->geo.nvbns);
		return FL_ERR(-FL_ECORRUPT);
	}
	return 0;
}

static int replay_cb(void *arg, uint64_t lsn, uint64_t gen, uint16_t type,
    const void *payload, uint32_t len)
{
	struct wafl_vol *v = arg;
	int rc;

	/*
	 * The log holds the records of at most two generations past the
	 * durable root: CP n + 1's, whose half is released only once its
	 * fsinfo is durable, and those of n + 2, which opened at its freeze
	 * (W6, W7).  A record past that is not this root's (and one near
	 * 2^64 would take the generation past its end at the next CP):
	 * the mount is refused, the log kept as it is.  Replay delivers
	 * only gen > fsi.gen.
	 */
	if (gen - v->fsi.gen > 2) {
		fl_err("wafl", "NVLOG replay: record %llu belongs to generation "
		    "%llu, beyond the root's %llu and the two CPs the log can "
		    "hold after it", (unsigned long long)lsn,
		    (unsigned long long)gen, (unsigned long long)v->fsi.gen);
		return FL_ERR(-FL_ECORRUPT);
	}
	rc = wafl_replay_record(v, type, payload, len);
	/* The CP after replay must carry a generation no record exceeds, or
	 * a crash before the log restarts would replay them twice. */
	if (rc == 0 && gen > v->open_gen)
		v->open_gen = gen;

	if (rc != 0)
		fl_err("wafl", "NVLOG replay: record %llu (type %u, gen %llu): "
		    "%s", (unsigned long long)lsn, type,
		    (unsigned long long)gen, fl_strerror(rc));
	return rc;
}

/*
 * What this volume's buffers will take of the block pool: its cache and
 * twice its dirty threshold (the wall, docs/wafl.md), but no more than the
 * volume holds.  Mapped now, at mount, so that no client's request waits
 * on the first touch of a page; on a virtual machine that can cost a
 * second per GiB (docs/bench.md).
 */
static void pool_prefill(struct wafl_vol *v)
{
	uint64_t want = FL_MIN(v->opts.cache_bytes +
	    2 * v->opts.dirty_max_bytes, v->nvbns * WAFL_BLOCK_SIZE);
	uint64_t t0 = fl_now_mono_ns(), had = wafl_pool_bytes(), now;

	v->pool_reserved = want;
	now = wafl_pool_reserve((int64_t)want);
	if (now > had)
		fl_info("wafl", "block pool grown by %llu MiB to %llu MiB in "
		    "%.2f s", (unsigned long long)((now - had) >> 20),
		    (unsigned long long)(now >> 20),
		    (double)(fl_now_mono_ns() - t0) / 1e9);
}

int wafl_mount(raid_vol_t *raid, const struct wafl_mount_opts *o,
    wafl_vol_t **out)
{
	struct wafl_vol *v;
	struct wafl_rootblk rb;
	int rc = vol_alloc(raid, o, &v);

	if (rc != 0)
		return rc;
	v->readonly = v->opts.readonly;
	rc = fsinfo_read_newest(v, &v->fsi);
	if (rc == 0)
		v->nvbns = v->fsi.nvbns;
	if (rc == 0)
		rc = tree_read_root(v, &v->fsi.root, &rb);
	if (rc != 0)
		goto fail;
	v->durable_gen = v->fsi.gen;
	v->open_gen = v->fsi.gen + 1;
	holds_restore(v);
	v->ifile = rb.inodefile;
	v->blocks_used = rb.blocks_used;
	v->inodes_used = rb.inodes_used;
	v->next_ino = next_ino_hint(rb.next_ino);
	orphans_load(v, &rb);
	v->ifile_wn = ifile_wnode_new(v, &rb.inodefile);
	if (v->ifile_wn == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = alloc_init(v);
	if (rc == 0)
		rc = get_specials(v);
	if (rc == 0)
		rc = specials_valid(v->nvbns, &v->bitmap_wn->di,
		    &v->snaptab_wn->di, &v->summary_wn->di);
	if (rc != 0)
		goto fail;
	if (v->opts.prefill)
		pool_prefill(v);

	if (!v->readonly) {
		if (v->opts.nvlog_path == NULL) {
			fl_err("wafl", "mount: no NVLOG path given");
			rc = -EINVAL;
			goto fail;
		}
		rc = nvlog_open_flags(v->opts.nvlog_path,
		    v->opts.nvlog_half_bytes,
		    v->opts.crash_sim ? NVLOG_OPEN_CRASHSIM : 0, &v->log);
		if (rc != 0)
			goto fail;
		struct nvlog_stats before;
		nvlog_get_stats(v->log, &before);
		struct nvlog *lg = v->log;
		v->log = NULL;	/* replay applies without logging */
		rc = nvlog_replay(lg, v->fsi.gen, replay_cb, v);
		v->log = lg;
		if (rc != 0)
			goto fail;
		/*
		 * Make what was replayed durable before reusing the log.  Its
		 * fsinfo goes to slot gen % 2, which must not be the slot of
		 * the root just mounted: with records of two generations past
		 * it (a crash in CP n + 1's write-out) the newest is n + 2,
		 * and a write torn there would leave fsinfo n - 1, whose
		 * successor's records the log no longer holds.  One
		 * generation more puts it over the older root instead, and a
		 * torn write leaves this root and this log to replay again.
		 */
		if (v->open_gen % WAFL_FSINFO_SLOTS ==
		    v->fsi.gen % WAFL_FSINFO_SLOTS)
			v->open_gen++;
		rc = cp_run(v);
		if (rc == 0)
			rc = nvlog_start(v->log);
		if (rc != 0)
			goto fail;
		/* Orphans the last run left (orphan.c): freed now if they
		 * read; the next CP writes it. */
		orphans_reclaim(v);
	}
	if (!v->readonly && !v->opts.no_cp_thread) {
		rc = cp_start_thread(v);
		if (rc != 0)
			goto fail;
	}
	char u[37];
	fl_uuid_fmt(v->fsi.fs_uuid, u);
	fl_info("wafl", "mounted %s at generation %llu%s", u,
	    (unsigned long long)v->fsi.gen, v->readonly ? " (read-only)" : "");
	*out = v;
	return 0;
fail:
	fl_err("wafl", "mount failed: %s", fl_strerror(rc));
	vol_free(v);
	return rc;
}

/* A check (check.c) runs until it is done or its caller cancels it. */
static void checks_wait(struct wafl_vol *v)
{
	pthread_mutex_lock(&v->check_mu);
	v->unmounting = true;
	while (v->checks > 0)
		pthread_cond_wait(&v->check_cv, &v->check_mu);
	pthread_mutex_unlock(&v->check_mu);
}

int wafl_unmount(wafl_vol_t *v)
{
	int rc = 0;

	checks_wait(v);
	cp_stop_thread(v);
	if (!v->readonly && !v->failed) {
		/* Holds changed since the last CP: written even if nothing
		 * else is (a CP with no dirty data is skipped). */
		cp_lock_excl(v);
		if (v->holds_unwritten)
			wnode_dirty(v->summary_wn);
		pthread_rwlock_unlock(&v->cp_lock);
		rc = cp_run(v);
		if (rc == 0 && v->log != NULL)
			rc = nvlog_sync(v->log);
	}
	vol_free(v);
	return rc;
}

void wafl_abandon(wafl_vol_t *v)
{
	checks_wait(v);
	cp_stop_thread(v);
	vol_free(v);
}

int wafl_crash(wafl_vol_t *v, uint64_t seed)
{
	int rc = 0;

	/* The log first: no CP can start once it refuses to switch, so no
	 * root written after this point holds an operation whose record was
	 * lost unless that root itself is durable. */
	if (v->log != NULL)
		rc = nvlog_crash_tear_unsynced(v->log, seed);
	int rrc = raid_fault_crash(v->raid, RAID_CRASH_TEAR, seed);
	return rc != 0 ? rc : rrc;
}

int wafl_sync(wafl_vol_t *v)
{
	if (v->readonly)
		return 0;
	if (v->failed)
		return -EROFS;
	orphans_reclaim(v);
	return cp_run(v);
}

uint64_t wafl_generation(const wafl_vol_t *v)
{
	return __atomic_load_n(&v->durable_gen, __ATOMIC_ACQUIRE);
}

uint64_t wafl_fsid(const wafl_vol_t *v)
{
	return v->fsi.fsid;
}

void wafl_fh_key(const wafl_vol_t *v, uint8_t key[32])
{
	memcpy(key, v->fsi.fh_key, 32);
}

void wafl_get_stats(wafl_vol_t *v, struct wafl_stats *st)
{
	pthread_mutex_lock(&v->stats_lock);
	*st = v->stats;
	pthread_mutex_unlock(&v->stats_lock);
	uint64_t bytes;
	bcache_stats(v->cache, &st->cache_hits, &st->cache_misses, &bytes);
	pthread_mutex_lock(&v->ialloc_lock);
	st->orphans = v->norphans;
	pthread_mutex_unlock(&v->ialloc_lock);
	st->cache_bytes = v->opts.cache_bytes;
	st->dirty_max_bytes = v->opts.dirty_max_bytes;
	st->cp_interval_ms = v->opts.cp_interval_ms;
	st->readonly = v->readonly;
	if (v->log != NULL) {
		struct nvlog_stats ls;
		nvlog_get_stats(v->log, &ls);
		st->log_flushes = ls.flushes;
		st->log_waits = ls.waits;
	}
}

void wafl_set_observer(wafl_vol_t *v, const struct wafl_cp_observer *obs)
{
	pthread_mutex_lock(&v->cp_serial);
	if (obs != NULL) {
		v->obs = *obs;
		v->has_obs = true;
	} else {
		memset(&v->obs, 0, sizeof(v->obs));
		v->has_obs = false;
	}
	pthread_mutex_unlock(&v->cp_serial);
}

void wafl_write_verifier(const wafl_vol_t *v, uint8_t verf[8])
{
	memcpy(verf, v->write_verf, 8);
}
