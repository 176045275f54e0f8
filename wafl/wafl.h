/*
 * wafl/wafl.h: the write-anywhere file system.
 *
 * WHAT THIS MODULE PROMISES (docs/wafl.md has the theory and the formats)
 *   A file system on a raid volume whose every block is reached through a
 *   block pointer {vbn, birth generation, checksum}: a Merkle tree rooted in
 *   the fsinfo block.  Blocks are never overwritten while any retained root
 *   (active, the last WAFL_RING_K CP roots, snapshots, a mirror's base) can
 *   reach them, so the newest fsinfo on disk always names an intact tree.
 *
 *   Numbered invariants (checked by wafl_check, cited by asserts/tests):
 *   W1  Every block read is verified against its parent's checksum; a bad
 *       copy is reconstructed through raid parity or the read fails with
 *       EIO.  Wrong data is never returned.
 *   W2  A block pointer's birth generation is the CP that wrote the block,
 *       and is <= its parent's birth generation... (children are never
 *       younger than their parents).
 *   W3  Block reuse: a VBN is allocated only if its active-bitmap bit is
 *       clear, its summary-map bit is clear and it is not pending (held by a
 *       retained CP root or a mirror's base root).
 *   W4  The active bitmap equals the set of blocks reachable from the
 *       active root (the root block included); the two fsinfo slots,
 *       VBN 0 and 1, are never allocated and never in the bitmap.
 *   W5  No block is referenced twice within one tree.
 *   W6  CP ordering: all blocks of CP n are durable (barrier) before
 *       fsinfo n is written to slot n % 2; fsinfo n is durable (barrier)
 *       before CP n's pending frees are released or the NVLOG half holding
 *       CP n's records is reused.  Mount takes the newest valid slot.
 *   W7  Every operation that changes state is in the NVLOG, durable,
 *       before it returns; replay of the records newer than the mounted
 *       generation reproduces exactly what callers were told (inode
 *       numbers, generations, cookies, times).
 *   W8  Link counts equal the number of directory entries naming an inode
 *       (+1 for a directory's own "." and +1 per subdirectory's "..");
 *       every directory's parent field names a directory that holds it.
 *   W9  Summary map equals the OR of every snapshot's active bitmap and
 *       of every adopted snapshot's own summary map (it keeps its root's
 *       snapshots).
 *
 * CONCURRENCY
 *   Every function is safe from many threads (the NFS worker pool).  Locks
 *   are per inode plus a volume lock held shared by operations and
 *   exclusive only for the in-memory freeze at the start of a CP; the CP's
 *   disk writes run while operations continue.  Lock order: wafl_impl.h.
 *
 * OWNERSHIP
 *   wafl_vol_t is created by wafl_mount and freed by wafl_unmount; the raid
 *   volume passed in stays the caller's (close it after unmount).  All
 *   buffers are the caller's and borrowed for the call.
 *
 * ERRORS
 *   0 or a negative errno: -ENOENT, -EEXIST, -ENOTEMPTY, -ENOTDIR, -EISDIR,
 *   -EXDEV, -ENOSPC, -ESTALE (dead handle), -EACCES, -EPERM, -EINVAL,
 *   -ENAMETOOLONG, -EMLINK, -EFBIG, -EROFS (replica, snapshot, or a volume
 *   that refuses writes after a failed root write or log flush), -EIO,
 *   -FL_ENOTSYNC (setattr guard mismatch), -FL_EBADCOOKIE.
 */
#ifndef FILER_WAFL_WAFL_H
#define FILER_WAFL_WAFL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/uio.h>

#include "common/err.h"
#include "raid/raid.h"

typedef struct wafl_vol wafl_vol_t;

enum {
	FL_ENOTSYNC = FL_ELAST + 1,	/* setattr guard: ctime differs */
	FL_EBADCOOKIE,			/* readdir cookie verifier stale */
};

#define WAFL_NAME_MAX		255u
#define WAFL_PATH_MAX		1024u
#define WAFL_MAX_FILE_SIZE	(1ull << 48)
#define WAFL_LINK_MAX		65000u

/* ------------------------------------------------------------ volumes */

struct wafl_mkfs_opts {
	const uint8_t *fs_uuid;		/* 16 bytes, or NULL for random */
};
int wafl_mkfs(raid_vol_t *raid, const struct wafl_mkfs_opts *o);

struct wafl_mount_opts {
	const char *nvlog_path;		/* required unless readonly */
	uint64_t nvlog_half_bytes;	/* new logs; 0: 64 MiB */
	uint64_t cache_bytes;		/* block cache bound; 0: 1 GiB */
	uint32_t cp_interval_ms;	/* timer CP; 0: 10000, min 1000 */
	uint64_t dirty_max_bytes;	/* dirty threshold; 0: 128 MiB */
	bool readonly;			/* no log, no CPs, EROFS */
	bool prefill;			/* grow the block pool at mount to
					   what this volume will use
					   (wafl_pool_reserve) */
	bool no_cp_thread;		/* tests: CPs only by wafl_sync */
	bool crash_sim;			/* tests: NVLOG keeps unsynced records
					   in memory, for wafl_crash */
};
int wafl_mount(raid_vol_t *raid, const struct wafl_mount_opts *o,
    wafl_vol_t **out);
/* Final CP, stop the CP thread, free everything. Returns the final CP's
 * result (the volume is freed either way). */
int wafl_unmount(wafl_vol_t *v);

/*
 * Tests: drop the volume as a crash would (no final CP, no log flush, no
 * raid flush); the raid volume stays open for the caller to crash or close.
 */
void wafl_abandon(wafl_vol_t *v);
/*
 * Tests: power loss now.  Needs crash_sim and a raid volume opened with
 * fault_inject.  Every NVLOG record and raid write not yet covered by a
 * completed flush is dropped, written or torn at random (seeded); from then
 * on every operation fails.  The caller joins its threads, then
 * wafl_abandon()s, raid_close()s and mounts again.
 */
int wafl_crash(wafl_vol_t *v, uint64_t seed);

/* Force a CP and wait until it is durable. */
int wafl_sync(wafl_vol_t *v);
/* Durable generation (newest fsinfo on disk). */
uint64_t wafl_generation(const wafl_vol_t *v);
/* Identity clients see: the fsid, and the key nfsd MACs file handles with
 * (both in fsinfo, so they follow the file system to a mirror). */
uint64_t wafl_fsid(const wafl_vol_t *v);
void wafl_fh_key(const wafl_vol_t *v, uint8_t key[32]);

struct wafl_stats {
	uint64_t cps, cp_ns_total, cp_ns_max, cp_freeze_ns_max;
	uint64_t cp_blocks;		/* blocks written by CPs */
	uint64_t cp_freeze_ns_total;	/* freezes: volume lock held (wait for
					   it included) */
	uint64_t cp_write_ns_total, cp_write_ns_max;	/* write-out: blocks,
						   barriers, fsinfo */
	uint64_t ops;			/* state-changing operations */
	uint64_t op_ns_total, op_ns_max;	/* their latency, log wait
						   included */
	uint64_t repairs, read_errors;	/* W1 events */
	uint64_t cache_hits, cache_misses;
	uint64_t log_flushes, log_waits;
	uint64_t orphans;		/* unlinked inodes still holding blocks
					   they could not free (orphan.c) */
	/* The mount's settings, defaults applied (wafl_mount_opts). */
	uint64_t cache_bytes, dirty_max_bytes;
	uint32_t cp_interval_ms;
	bool readonly;
};
void wafl_get_stats(wafl_vol_t *v, struct wafl_stats *st);

/*
 * 4 KiB block buffers from the process-wide block pool (cache.c): memory
 * already faulted in and never given back to the system, for buffers that
 * come and go by the thousand (dirty buffers, cache entries, the mirror's
 * copies of a CP's blocks).  4096-aligned.  NULL when out of memory.
 */
uint8_t *wafl_blk_alloc(void);
void wafl_blk_free(uint8_t *blk);	/* NULL: nothing */
/* Add delta bytes (negative: take back) to what the pool is to hold and
 * grow it to that now (at most half the machine's memory); returns the
 * bytes the pool has mapped.  Both are 0 under AddressSanitizer, whose
 * builds take every buffer from malloc. */
uint64_t wafl_pool_reserve(int64_t delta);
uint64_t wafl_pool_bytes(void);		/* mapped so far, all volumes */

/*
 * CP observer (the mirror's hook).  For CP n, blocks() is called for every
 * run of consecutive blocks as the CP hands them to raid (same order, same
 * data; blocks[i] is the data of block first_vbn + i, valid during the
 * call only), then root() once with fsinfo n's encoded block after fsinfo n is
 * durable locally.  Both run on the CP thread and must not call back into
 * the volume.  Set or cleared (NULL) between CPs.
 *
 * info[i] says what block i of the run is: the VBN of the block it
 * replaces (0 for a block new in this CP), and whether it is metadata (a
 * pointer block, the root block, or a block of the inode file, bitmap,
 * summary or snapshot table) rather than file or directory data.
 */
struct wafl_cp_blkinfo {
	uint64_t prev_vbn;
	uint32_t cksum;		/* the block's crc32c, as in its pointer */
	bool meta;
};
struct wafl_cp_observer {
	void *arg;
	void (*blocks)(void *arg, uint64_t gen, uint64_t first_vbn,
	    uint32_t n, const uint8_t *const *blocks,
	    const struct wafl_cp_blkinfo *info);
	void (*root)(void *arg, uint64_t gen, const void *fsinfo_block);
};
void wafl_set_observer(wafl_vol_t *v, const struct wafl_cp_observer *obs);
/*
 * Hold back reuse of every block that root `gen` references (a mirror's
 * acknowledged generation, or the root a transfer walks): W3 treats that
 * root as retained until released.  Holds are counted; gen must be in the
 * CP ring or already held.  -ENOENT if gen's root is no longer known,
 * -ENOSPC if WAFL_MAX_HOLDS distinct roots are held.  A released hold
 * keeps its slot until the next CP; when only such slots are left, one
 * CP is run to free them.
 */
int wafl_hold_root(wafl_vol_t *v, uint64_t gen);
/* Hold the newest ring root whose distance from base is odd (the newest
 * if base is 0), chosen and held atomically; *gen gets it.  Generations
 * skip after an NVLOG replay: when no ring root newer than base is at an
 * odd distance, one more CP makes one.  -EALREADY if nothing is newer
 * than base. */
int wafl_hold_newest(wafl_vol_t *v, uint64_t base, uint64_t *gen);
void wafl_release_root(wafl_vol_t *v, uint64_t gen);
/*
 * Held roots are recorded in fsinfo by the next CP and held again by
 * mount, one reference each: a hold survives an unmount and a crash (its
 * blocks are never reused meanwhile).  The generations held now, in no
 * particular order; *n gets the count (may exceed max).
 */
int wafl_held_roots(wafl_vol_t *v, uint64_t *gens, size_t max, size_t *n);

/* Durable root pointer of generation gen (ring, held, or a snapshot's
 * exact root), for transfers. */
int wafl_root_of(wafl_vol_t *v, uint64_t gen, uint8_t fsinfo_block[4096]);

/*
 * Birth-generation walk (DESIGN.md §6): call fn for every block reachable
 * from root `gen` (held by the caller, in the ring, or a snapshot's exact
 * root, which the walk reads only while the snapshot exists) whose birth
 * generation is > after_gen, descending only into block pointers born
 * after after_gen; data is verified (W1) and borrowed for the call.  A
 * parent comes before its children; a destination applies the whole set
 * and only then the root, so the order inside the set does not matter to
 * it.  cksum is the block's crc32c (its pointer's, which data matched).
 * flags is WAFL_WALK_META for metadata (as in struct wafl_cp_blkinfo),
 * else 0.  fn returns non-zero to stop (that value is returned).
 */
#define WAFL_WALK_META	0x1u
typedef int wafl_walk_fn(void *arg, uint64_t vbn, uint64_t birth,
    uint32_t cksum, const void *data, unsigned flags);
int wafl_birth_walk(wafl_vol_t *v, uint64_t gen, uint64_t after_gen,
    wafl_walk_fn *fn, void *arg);

/*
 * Replica mode (mirror destination): a volume mounted read-only follows
 * roots that someone else writes to its disks.  After the blocks of a newer
 * tree and its fsinfo are durable on the raid volume, wafl_replica_advance
 * switches the mounted tree to the newest valid fsinfo atomically: readers
 * in flight finish on the old root, later readers see the new one, and no
 * cached inode or block of the old tree is served for the new one.
 * Returns the generation now mounted in *gen.
 */
int wafl_replica_advance(wafl_vol_t *v, uint64_t *gen);
/*
 * The VBNs the mounted root of a replica uses, one bitmap block's worth at
 * a time (VBNs area * WAFL_BITS_PER_BLOCK and on): its active bitmap ORed
 * with its summary map (the blocks of the snapshots it names).  Bits past
 * the root's VBN space are zero.  A mirror destination checks that a
 * transfer writes none of them.  Reads through the block cache.
 */
int wafl_replica_used_bits(wafl_vol_t *v, uint64_t area,
    uint8_t bits[4096]);

/* ------------------------------------------------------------ objects */

/*
 * An object: inode number and generation, in the active file system
 * (snap == 0) or in snapshot `snap` (its id).  nfsd wraps this in a MAC'd
 * file handle.
 */
struct wafl_obj {
	uint64_t ino;
	uint32_t gen;
	uint64_t snap;
};

enum wafl_type {
	WAFL_REG = 1, WAFL_DIR, WAFL_BLK, WAFL_CHR, WAFL_LNK, WAFL_SOCK,
	WAFL_FIFO,
};

struct wafl_attr {
	enum wafl_type type;
	uint32_t mode;			/* permission bits (07777) */
	uint32_t nlink, uid, gid;
	uint64_t size, used;		/* bytes */
	uint32_t rdev_major, rdev_minor;
	uint64_t fsid, fileid;
	uint64_t atime_ns, mtime_ns, ctime_ns;
	uint32_t gen;
};

/* Pre-operation attributes for weak cache consistency, taken atomically
 * with the change. */
struct wafl_wcc {
	bool valid;
	uint64_t size, mtime_ns, ctime_ns;
};

struct wafl_cred {
	uint32_t uid, gid;
	uint32_t ngroups;
	uint32_t groups[16];
};

enum wafl_time_how { WAFL_TIME_DONT = 0, WAFL_TIME_SERVER, WAFL_TIME_CLIENT };

struct wafl_sattr {
	bool set_mode, set_uid, set_gid, set_size;
	uint32_t mode, uid, gid;
	uint64_t size;
	enum wafl_time_how atime_how, mtime_how;
	uint64_t atime_ns, mtime_ns;
};

int wafl_root(wafl_vol_t *v, struct wafl_obj *root);
int wafl_getattr(wafl_vol_t *v, const struct wafl_obj *o,
    struct wafl_attr *attr);
/* guard_ctime: NULL, or the ctime the object must have (-FL_ENOTSYNC). */
int wafl_setattr(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *o, const struct wafl_sattr *sa,
    const uint64_t *guard_ctime, struct wafl_wcc *pre,
    struct wafl_attr *post);

/* ACCESS bits, as NFSv3's. */
#define WAFL_ACCESS_READ	0x01u
#define WAFL_ACCESS_LOOKUP	0x02u
#define WAFL_ACCESS_MODIFY	0x04u
#define WAFL_ACCESS_EXTEND	0x08u
#define WAFL_ACCESS_DELETE	0x10u
#define WAFL_ACCESS_EXECUTE	0x20u
int wafl_access(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *o, uint32_t want, uint32_t *granted,
    struct wafl_attr *attr);

/* "." and ".." work; ".." of the root is the root. */
int wafl_lookup(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, struct wafl_obj *out,
    struct wafl_attr *attr, struct wafl_attr *dir_attr);

/* READ is allowed to the owner and to whoever may read or execute the
 * file (a client runs a program by reading it). */
int wafl_read(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *o, uint64_t off, uint32_t count, void *buf,
    uint32_t *got, bool *eof, struct wafl_attr *attr);

/*
 * A read's data as pieces to send from where they lie: blocks lent by the
 * block cache (read-only: their bytes stay as they are, even if the block
 * is evicted or the volume unmounted, until wafl_rdvec_free), blocks the
 * read filled, a shared zero block for holes.  iov[0..niov) are the len
 * bytes read, in order.  The rest is the vector's own.
 */
struct wafl_rdvec {
	uint32_t len;
	uint32_t niov;
	struct iovec *iov;
	uint32_t cap;		/* pieces, loans and blocks it has room for */
	uint32_t nloan, nblk;
	void **loan;
	uint8_t **blk;
	void *buf;		/* malloc'd: the whole read, copied */
};
/* wafl_read into a new rdvec (*out; NULL on an error), which the caller
 * frees with wafl_rdvec_free once the bytes are sent.  A live file's
 * blocks are lent by the cache; anything else (a snapshot, an inline file)
 * is copied into one buffer. */
int wafl_read_vec(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *o, uint64_t off, uint32_t count,
    struct wafl_rdvec **out, uint32_t *got, bool *eof,
    struct wafl_attr *attr);
/* Give back every loan and block; NULL is ignored. */
void wafl_rdvec_free(struct wafl_rdvec *rv);

/*
 * Replies without blocking a thread on the NVLOG.  Every operation that
 * changes state returns only once its record is durable (W7), unless the
 * calling thread is between wafl_defer_begin and wafl_defer_end: then the
 * operations return as soon as their records are committed, and
 * wafl_defer_end gives the volume and the LSN that must be durable before
 * any of their results may be reported (NULL and 0 if nothing waits).
 * wafl_when_durable then runs fn(arg, err, last) once that LSN is durable
 * (err 0) or never will be (-EIO, the volume failed): at once in the
 * caller's thread, or later in the thread that finished the flush, where
 * last marks the final callback of those one flush made ready (nvlog.h).
 * fn must be short and must not call into wafl.  Everything queued has run when the
 * volume is closed.  Operations that do their own CPs (COMMIT, snapshots)
 * still block.
 */
void wafl_defer_begin(void);
wafl_vol_t *wafl_defer_end(uint64_t *lsn);
typedef void wafl_durable_fn(void *arg, int err, bool last);
void wafl_when_durable(wafl_vol_t *v, uint64_t lsn, wafl_durable_fn *fn,
    void *arg);
/*
 * Between these two, the calling thread's wafl_when_durable calls do not
 * start the NVLOG flush they wait for: wafl_durable_batch_end does, once,
 * so that the records of several operations share it and the thread is not
 * held up by a flush between them.  Where an operation would wait (the
 * write throttle, a freeze, a CP the thread runs itself), wafl first calls
 * release(arg), for what the caller holds back, and starts the flushes
 * owed so far, so that none of it waits out that wait.  A read that misses
 * the cache does not release: the batch holds what it holds for that read.
 * The thread must reach wafl_durable_batch_end before any of the volumes
 * may be unmounted.  release may be NULL; it must not call into wafl.
 */
void wafl_durable_batch_begin(void (*release)(void *), void *arg);
void wafl_durable_batch_end(void);

/* One WRITE is one NVLOG record: WAFL_WRITE_MAX bytes always fit (a
 * little more does; past the record bound, -EINVAL). */
#define WAFL_WRITE_MAX		(1u << 20)
enum wafl_stable { WAFL_UNSTABLE = 0, WAFL_DATA_SYNC, WAFL_FILE_SYNC };
/* *committed: what the reply may claim (>= stable asked when durable). */
int wafl_write(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *o, uint64_t off, uint32_t count, const void *buf,
    enum wafl_stable stable, enum wafl_stable *committed,
    struct wafl_wcc *pre, struct wafl_attr *post);
/* Make every write to o durable (the whole file). */
int wafl_commit(wafl_vol_t *v, const struct wafl_obj *o,
    struct wafl_attr *post);
/* The write verifier: changes on every mount. */
void wafl_write_verifier(const wafl_vol_t *v, uint8_t verf[8]);

enum wafl_create_how { WAFL_UNCHECKED = 0, WAFL_GUARDED, WAFL_EXCLUSIVE };

/* Namespace operations fill the new object's attributes and the
 * directory's wcc (pre) and post attributes when the pointers are given. */
struct wafl_dirwcc {
	struct wafl_wcc pre;
	struct wafl_attr post;
	bool post_valid;
};

int wafl_create(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, enum wafl_create_how how,
    const struct wafl_sattr *sa, uint64_t verifier, struct wafl_obj *out,
    struct wafl_attr *attr, struct wafl_dirwcc *dwcc);
int wafl_mkdir(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, const struct wafl_sattr *sa,
    struct wafl_obj *out, struct wafl_attr *attr, struct wafl_dirwcc *dwcc);
int wafl_symlink(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, const char *target,
    const struct wafl_sattr *sa, struct wafl_obj *out,
    struct wafl_attr *attr, struct wafl_dirwcc *dwcc);
int wafl_readlink(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *o, char *buf, size_t bufsz, size_t *len,
    struct wafl_attr *attr);
/* CHR and BLK nodes only for uid 0 (-EPERM otherwise). */
int wafl_mknod(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, enum wafl_type type,
    uint32_t rdev_major, uint32_t rdev_minor, const struct wafl_sattr *sa,
    struct wafl_obj *out, struct wafl_attr *attr, struct wafl_dirwcc *dwcc);
/* REMOVE, RMDIR and RENAME in a sticky directory (S_ISVTX): an entry is
 * removed or replaced only by its object's owner, the directory's owner or
 * root (-EPERM otherwise).  RENAME of a directory to another parent needs
 * write permission on the directory itself (its ".." changes; -EACCES). */
int wafl_remove(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, struct wafl_dirwcc *dwcc);
int wafl_rmdir(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, struct wafl_dirwcc *dwcc);
int wafl_rename(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *fromdir, const char *fromname,
    const struct wafl_obj *todir, const char *toname,
    struct wafl_dirwcc *fromwcc, struct wafl_dirwcc *towcc);
int wafl_link(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *o, const struct wafl_obj *dir, const char *name,
    struct wafl_attr *attr, struct wafl_dirwcc *dwcc);

/*
 * READDIR / READDIRPLUS: entries after cookie, in cookie order, "." (cookie
 * 1) and ".." (cookie 2) first.  fn returns non-zero to stop (reply full).
 * With plus, attr and obj are filled for each entry (NULL if they could not
 * be read, and for every entry but "." and ".." when c may read the
 * directory but not search it: names only, as it could LOOKUP none).  *eof is set when the directory ended.  cookieverf: the
 * verifier to hand to clients (cookies stay valid, so it is constant).
 */
struct wafl_dirent {
	const char *name;
	uint64_t fileid;
	uint64_t cookie;
	const struct wafl_obj *obj;	/* plus only */
	const struct wafl_attr *attr;	/* plus only */
};
typedef int wafl_readdir_fn(void *arg, const struct wafl_dirent *de);
int wafl_readdir(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, uint64_t cookie, bool plus,
    wafl_readdir_fn *fn, void *arg, bool *eof, struct wafl_attr *dir_attr);
uint64_t wafl_cookieverf(const wafl_vol_t *v, const struct wafl_obj *dir);

struct wafl_fsstat {
	uint64_t tbytes, fbytes, abytes;
	uint64_t tfiles, ffiles, afiles;
};
int wafl_statfs(wafl_vol_t *v, struct wafl_fsstat *st);

/* --------------------------------------------------------- snapshots */

struct wafl_snapinfo {
	uint64_t id, gen, create_ns;
	uint64_t unique_bytes;		/* held by this snapshot alone */
	char name[64];
};
int wafl_snap_create(wafl_vol_t *v, const char *name, uint64_t *id);
int wafl_snap_delete(wafl_vol_t *v, const char *name);
/*
 * A named snapshot whose root is the retained root of generation gen (a
 * held root, one of the CP ring, or another snapshot's root) itself: its exact root pointer, no new
 * root block; the summary map gains that root's bitmap and its summary
 * map, so the snapshots that root names stay whole while it does, deleted
 * here or not (a mirror peer serves it with them).  Holds on gen are
 * left to the caller.  -ENOENT if gen is not retained so.  Durable when
 * it returns (a CP of its own).
 */
int wafl_snap_adopt_root(wafl_vol_t *v, const char *name, uint64_t gen,
    uint64_t *id);
/*
 * Import (import.c): trees of another copy of this file system, which
 * shares with this one the retained root of generation base_gen (held
 * here or a snapshot, exact same root pointer), become snapshots here,
 * all in one CP.  get() returns the block the other copy has at vbn (its
 * birth > base_gen) into buf; every block is checked against its parent's
 * pointer.  Each such block moves to a VBN chosen here, once however many
 * of the trees hold it (same pointer, same place: the same block),
 * pointers to it are rewritten (children first), each imported tree gets
 * an active bitmap of its own naming every block it uses (the other
 * copy's bitmap trusted only within the base's), its snapshot
 * table and summary map are emptied (nested snapshots are not imported),
 * and the snapshots are durable on return (a CP).  Blocks born at or
 * before base_gen are the base root's and keep their pointers.
 *
 * Refused before anything changes: a name invalid, in use or given twice
 * (-EINVAL, -EEXIST), no room for n more snapshots (-ENOSPC), a block
 * missing, damaged or inconsistent (-FL_ECORRUPT), and, when supplied is
 * not 0, a number of distinct blocks born after base_gen reachable from
 * the roots other than supplied (the caller holds blocks no tree uses:
 * -FL_ECORRUPT), base_gen not retained here (-ENOENT), a pointer born at
 * or before base_gen to a block the base root does not use (the other
 * copy rolled back to an older snapshot: the block may be reused here,
 * -ESTALE).  Two trees with the same root pointer share one imported
 * root.  A failure while the entries are added undoes them and the
 * summary map: all of the snapshots or none.
 */
struct wafl_bp;			/* wafl/ondisk.h */
struct wafl_import_stats {
	uint64_t gen, id;		/* the snapshot's (total: gen, id 0) */
	uint64_t blocks;		/* blocks moved that it uses (total:
					   distinct blocks moved) */
	uint64_t shared;		/* of which moved for an earlier tree
					   of the call (total: the sum) */
	uint64_t bitmap_blocks;		/* new bitmap file */
	uint64_t reached;		/* total only: distinct blocks born
					   after base_gen reached */
};
typedef int wafl_import_get_fn(void *arg, uint64_t vbn, uint64_t birth,
    uint8_t *buf);
struct wafl_import_tree {
	const char *name;		/* in: the snapshot's name here */
	const struct wafl_bp *root;	/* in: the tree's root pointer there */
	uint64_t origin;		/* in: kept in the snapshot's entry
					   (wafl_snap_tree.origin); 0: none */
	struct wafl_import_stats st;	/* out */
};
int wafl_import_snapshots(wafl_vol_t *v, uint64_t base_gen,
    struct wafl_import_tree *trees, size_t n, uint64_t supplied,
    wafl_import_get_fn *get, void *arg, struct wafl_import_stats *total);
/* Tests: the at-th snapshot entry (1-based) of the next import fails
 * with -EIO, after the entries before it were added (0: none).  One
 * shot, for the whole process. */
void wafl_import_test_fail_entry(unsigned at);
/* One tree (supplied 0). */
int wafl_import_snapshot(wafl_vol_t *v, const char *name, uint64_t base_gen,
    const struct wafl_bp *root, wafl_import_get_fn *get, void *arg,
    struct wafl_import_stats *st);
/*
 * The snapshots whose generation is > after, oldest first (generation,
 * then id), with their exact root pointers: the trees an import on the
 * other copy takes.  Fills up to max; *n gets the number there are.
 */
struct wafl_snap_tree {
	char name[64];
	uint64_t gen, id;
	uint64_t vbn, birth;		/* the root block's pointer */
	uint32_t cksum;
	uint64_t origin;		/* an import's tag; 0: none */
};
int wafl_snap_trees_after(wafl_vol_t *v, uint64_t after,
    struct wafl_snap_tree *out, size_t max, size_t *n);
/*
 * Roots this volume retains exactly (ring, holds, snapshots): generation
 * and root pointer, newest first, duplicates removed.  Resync looks for
 * the newest one both sides have.  Imported snapshots are not listed:
 * their roots are born at the import's generation, like the file
 * system's own root of it, but no active tree grew from them.
 */
struct wafl_root_ent {
	uint64_t gen;
	uint64_t vbn, birth;		/* the root block's pointer */
	uint32_t cksum;
};
int wafl_retained_roots(wafl_vol_t *v, struct wafl_root_ent *out,
    size_t max, size_t *n);
/*
 * Roll the file system on this raid volume back to root `root` of
 * generation gen, as a replica (mirror destination) whose ring holds that
 * root alone; the volume must not be mounted.  The root's tree must be
 * whole on the disks (retained until now).  Crash-safe: the newest valid
 * fsinfo is at every instant the old one or the new one (see replica.c).
 */
int wafl_rollback_replica(raid_vol_t *raid, uint64_t gen,
    const struct wafl_bp *root);
/* Snapshot entry by name: its generation and root pointer checksum. */
int wafl_snap_root_info(wafl_vol_t *v, const char *name, uint64_t *gen,
    uint32_t *root_cksum);
/* Blocks freed by CPs and not yet reusable because a retained root (the
 * ring, a hold, or an online check's pin) may still reach them. */
uint64_t wafl_pending_blocks(wafl_vol_t *v);
/* Of those, the ones the ring and the holds keep, without the pins: what
 * a long-held mirror root costs (a running check's pins go when it ends,
 * or when writes need their blocks).  A scan of the pending list. */
uint64_t wafl_pending_blocks_unpinned(wafl_vol_t *v);
/* Fills up to max entries, oldest first; *n gets the number of
 * snapshots. */
int wafl_snap_list(wafl_vol_t *v, struct wafl_snapinfo *out, size_t max,
    size_t *n);
/* Like wafl_snap_list without unique_bytes (no bitmap reads: cheap enough
 * for every READDIR of .snapshot). */
int wafl_snap_names(wafl_vol_t *v, struct wafl_snapinfo *out, size_t max,
    size_t *n);
int wafl_snap_lookup(wafl_vol_t *v, const char *name, uint64_t *id);
int wafl_snap_rollback(wafl_vol_t *v, const char *name);
/* Root object of a snapshot's tree (read-only access).  Objects of a
 * snapshot report their own fsid (the volume's mixed with the snapshot id),
 * so clients see each snapshot as a separate file system; ".." of its root
 * is itself. */
int wafl_snap_root(wafl_vol_t *v, uint64_t id, struct wafl_obj *root);

/* --------------------------------------------------------------- check */

struct wafl_check_result {
	uint64_t blocks_checked, inodes_checked, dirs_checked;
	uint64_t errors;
	char first_error[256];		/* "W4 violated: vbn 812 ..." */
};
/* Walk the durable root (after a CP) and verify W1..W9.  On a writable
 * volume CPs go on meanwhile (the roots it reads are pinned); an unmount
 * waits until it returns (cancel it first for a quick one). */
int wafl_check(wafl_vol_t *v, struct wafl_check_result *res);
/* The same; once *cancel turns true it stops reading and returns
 * -ECANCELED (res zero: nothing was found or verified). */
int wafl_check_cancellable(wafl_vol_t *v, struct wafl_check_result *res,
    const _Atomic bool *cancel);
/* Tests: fn(v) runs in every check once the roots it reads are pinned and
 * CPs may run again (on a replica: with CPs held), in the check's thread;
 * NULL for none. */
void wafl_check_set_test_hook(void (*fn)(wafl_vol_t *v));

#endif
