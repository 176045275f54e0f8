/*
 * wafl/wafl_impl.h (internal): the in-memory structures of a mounted volume.
 *
 * Two kinds of buffer (docs/wafl.md "Buffers"):
 *   - the clean block cache (cache.c), keyed by VBN.  On-disk blocks never
 *     change while any retained root references them (W3), so a cached copy
 *     is valid as long as its (vbn, birth, checksum) equals the block
 *     pointer that leads to it; entries are verified once, on the way in.
 *   - dirty buffers (dbuf), keyed logically per inode by (level, index).
 *     Modifying a block copies it into a dbuf and dirties every ancestor up
 *     to the inode (copy-on-write in memory).  A dbuf has no VBN until the
 *     CP that writes it; then it becomes a clean cache entry at its new VBN.
 *
 * Lock order (W-L): vol->reclaim_mu (orphan.c) -> vol->cp_lock (shared for every operation, exclusive for
 * the CP freeze) -> vol->rename_lock -> wnode locks (parent before child,
 * a directory before a file it may name (LINK, RENAME); two unrelated
 * wnodes by increasing inode number) -> vol->ialloc_lock ->
 * vol->free_lock, vol->icache_lock, cache lock (leaves; never held while
 * taking another, but for the block pool's lock, a leaf under the cache
 * lock).  The CP thread takes cp_lock exclusive and then touches
 * any wnode without its lock: nobody else runs during the freeze.
 */
#ifndef FILER_WAFL_WAFL_IMPL_H
#define FILER_WAFL_WAFL_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/log.h"
#include "raid/raid.h"
#include "wafl/ondisk.h"
#include "wafl/wafl.h"

struct nvlog;

/* ---------------------------------------------------------------- cache */

struct bcache;

/* Create a cache holding at most max_bytes of block data. */
int bcache_create(uint64_t max_bytes, struct bcache **out);
void bcache_destroy(struct bcache *bc);
/* Copy the block for bp into buf if cached with the same birth and
 * checksum; returns true on a hit. */
bool bcache_get(struct bcache *bc, const struct wafl_bp *bp, void *buf);
/* Insert (or replace) a copy of a verified block. */
void bcache_put(struct bcache *bc, const struct wafl_bp *bp, const void *data);
/* A CP's sealed block: the cache takes data (a pool block) without a copy,
 * pinned.  The giver may still read data, and nobody writes it, until
 * bcache_unpin(bp->vbn).  -ENOMEM: not taken, data is still the giver's.
 * Evicts nothing: the cache may go over its size until bcache_trim. */
int bcache_give(struct bcache *bc, const struct wafl_bp *bp, uint8_t *data);
/* bcache_give for a caller that gives many blocks in a row: between
 * bcache_lock and bcache_unlock (no other bcache call meanwhile). */
void bcache_lock(struct bcache *bc);
int bcache_give_locked(struct bcache *bc, const struct wafl_bp *bp,
    uint8_t *data);
void bcache_unlock(struct bcache *bc);
/* Evict down to the cache's size (after a freeze's gives). */
void bcache_trim(struct bcache *bc);
/* A hint: vbn will be given or looked up soon. */
void bcache_prefetch(struct bcache *bc, uint64_t vbn);
void bcache_unpin(struct bcache *bc, uint64_t vbn);
void bcache_invalidate(struct bcache *bc, uint64_t vbn);
void bcache_invalidate_all(struct bcache *bc);
/* Lend the cached blocks of bp[0..n) that have the same birth and
 * checksum: data[i] is the block's bytes, which do not change until
 * bcache_return(ticket[i]) (they outlive eviction and the cache itself);
 * a miss (or vbn 0) gets NULL in both.  One hold of the lock for all n.
 * Returns the number lent.  Counts the hits only: the caller reads each
 * miss with wafl_read_bp, whose lookup counts it. */
unsigned bcache_lend(struct bcache *bc, const struct wafl_bp *bp,
    unsigned n, const uint8_t **data, void **ticket);
void bcache_return(void *ticket);
void bcache_stats(struct bcache *bc, uint64_t *hits, uint64_t *misses,
    uint64_t *bytes);

/* Every dirty buffer's data is a block of the pool (wafl_blk_alloc,
 * wafl.h). */

/* ------------------------------------------------------------ dbuf table */

struct dbuf {
	uint64_t key;		/* level << 56 | index */
	uint8_t *data;		/* a pool block (wafl_blk_alloc) */
	struct wafl_bp old;	/* block this buffer replaces (vbn 0: new) */
	uint64_t new_vbn;	/* assigned by the CP (0 until then) */
	struct dbuf *next;	/* hash chain */
	/* crc32c of data, computed ahead of the CP freeze (cp.c
	 * cp_precksum); every hand-out of data for writing clears
	 * cksum_ok (wnode.c modify_block). */
	uint32_t cksum;
	bool cksum_ok;
};

#define DBUF_KEY(level, idx)	(((uint64_t)(level) << 56) | (idx))
#define DBUF_LEVEL(key)		((unsigned)((key) >> 56))
#define DBUF_IDX(key)		((key) & ((1ull << 56) - 1))

struct dbuf_tab {
	struct dbuf **slots;
	uint32_t nslots;	/* power of two */
	uint32_t count;
};

/* --------------------------------------------------------------- wnode */

struct wnode {
	struct wafl_vol *vol;
	uint64_t ino;
	struct wafl_dinode di;	/* live inode */
	pthread_rwlock_t lock;
	uint32_t refs;		/* under vol->icache_lock */
	bool dirty;		/* on vol's dirty list */
	uint64_t unlogged_gen;	/* UNSTABLE data not in the NVLOG, written in
				   this generation (0: none); COMMIT makes it
				   durable */
	bool loaded;
	struct dbuf_tab dbufs;
	/* Buffers handed out for writing without a checksum (modify_block,
	 * under lock), and that count when cp_precksum last summed them:
	 * equal, it has nothing to do here.  A hint: a buffer it misses is
	 * summed by the freeze. */
	uint64_t handouts, summed_handouts;
	struct wnode *hnext;	/* icache hash chain */
	struct wnode *dnext;	/* dirty list */
};

/* -------------------------------------------------------------- volume */

#define WAFL_MAX_HOLDS	8
#define WAFL_MAX_PINS	(WAFL_RING_K + WAFL_MAX_HOLDS)

struct wafl_pending {		/* a block freed by CP `gen` */
	uint64_t vbn;
	uint64_t gen;
};

struct alloc_area {		/* one bitmap block's worth of VBNs */
	uint8_t *unavail;	/* NULL until loaded; 1 = not allocatable */
	uint32_t nfree;
};

struct wafl_vol {
	raid_vol_t *raid;
	struct raid_geometry geo;
	uint64_t nvbns;
	struct wafl_mount_opts opts;
	uint64_t pool_reserved;		/* wafl_pool_reserve'd at mount */

	/* Durable state: the newest fsinfo on disk and its slot. */
	struct wafl_fsinfo fsi;
	uint64_t durable_gen;

	/* Active file system. */
	pthread_rwlock_t cp_lock;
	pthread_mutex_t rename_lock;
	uint64_t open_gen;		/* generation new operations join */
	struct wafl_dinode ifile;	/* inode 0, as of the last freeze;
					   changed under icache_lock too
					   (wnode_get reads it without
					   cp_lock) */
	uint64_t blocks_used;		/* active bitmap population */
	uint64_t inodes_used;

	/* Inode cache and the dirty list. */
	pthread_mutex_t icache_lock;
	struct wnode **ihash;
	uint32_t ihash_size;
	uint32_t nwnodes;
	struct wnode *dirty_list;
	uint64_t ndirty_bufs;		/* dbufs in all wnodes */

	/* Inode allocation. */
	pthread_mutex_t ialloc_lock;
	uint64_t next_ino;
	uint64_t *free_inos;		/* numbers freed this mount */
	uint32_t nfree_inos, cap_free_inos;
	/* Orphans (orphan.c): inodes with no link that still hold blocks
	 * they could not free; written to every root block.  Under
	 * ialloc_lock; the freeze reads them with cp_lock exclusive. */
	uint64_t orphans[WAFL_ORPHAN_MAX];
	uint32_t norphans;
	/* An entry went off the list since the last root block: the next
	 * CP writes the list even if nothing else changed (cp_has_work). */
	bool orphans_changed;
	uint64_t orphan_try_ns;		/* last retry (monotonic) */
	pthread_mutex_t reclaim_mu;	/* one orphans_reclaim at a time */
	struct fl_log_repeat orphan_log; /* under reclaim_mu */

	/* Blocks freed by operations of the open generation. */
	pthread_mutex_t free_lock;
	uint64_t *frees;
	uint64_t nfrees, cap_frees;

	/* Allocator (cp thread only, under the freeze). */
	struct alloc_area *areas;
	uint64_t nareas;
	uint64_t alloc_cursor;
	struct wafl_pending *pending;
	uint64_t npending, cap_pending;
	uint64_t snap_only;		/* blocks held only by snapshots */
	struct wnode *ifile_wn;		/* inode 0: not in the icache */
	struct wnode *bitmap_wn;	/* inode 1, referenced while mounted */
	struct wnode *summary_wn;	/* inode 4 */
	struct wnode *snaptab_wn;	/* inode 3 */
	/* Roots held by the mirror (a destination's acknowledged root, a
	 * transfer's source root): their blocks stay unavailable (W3). */
	struct wafl_hold {
		uint64_t gen;		/* 0: free slot */
		struct wafl_bp root;
		uint32_t refs;		/* 0: released, its blocks kept until
					   the next fsinfo is durable */
	} holds[WAFL_MAX_HOLDS];
	/* Checks running (check.c, under check_mu): unmount waits for them,
	 * since an online check walks without cp_serial. */
	pthread_mutex_t check_mu;
	pthread_cond_t check_cv;
	unsigned checks;
	bool unmounting;	/* no check starts (-ESHUTDOWN) */
	/* Online checks holding pins, and a write short of space asking
	 * them to stop and give their pins back (check_yield_space). */
	unsigned checks_pinned;
	bool check_yield;
	/* Roots a running check walks while CPs go on (check.c): retained
	 * like holds (W3: pending frees, allocation areas), with their
	 * snapshots, but never recorded in fsinfo, so a crash or the end of
	 * the check drops them at once.  cp_lock exclusive to change. */
	struct wafl_pin {
		uint64_t gen;		/* 0: free slot */
		struct wafl_bp root;
		uint32_t refs;
	} pins[WAFL_MAX_PINS];
	/* The holds changed since the last CP froze fsinfo (cp_lock): the
	 * unmount's CP runs even with nothing dirty, so that they last. */
	bool holds_unwritten;

	struct bcache *cache;
	struct nvlog *log;

	/* CP thread. */
	pthread_t cp_thread;
	pthread_mutex_t cp_mutex;
	pthread_cond_t cp_cond;		/* requests and completions */
	bool cp_running_thread, cp_stop, cp_requested;
	/* Threads waiting for cp_lock exclusive (atomic; cp_lock_excl,
	 * ops_tx_wrlock). */
	int cp_wanted;
	uint64_t throttle_last_ns;	/* the last throttled wake-up (cp_mutex) */
	pthread_mutex_t cp_serial;	/* one CP at a time */

	uint8_t write_verf[8];		/* new on every mount */
	bool readonly;			/* replica or mounted read-only */
	bool failed;			/* root write or log flush failed */

	struct wafl_cp_observer obs;
	bool has_obs;

	struct wafl_stats stats;
	pthread_mutex_t stats_lock;
};

/* ------------------------------------------------------ block reading */

/*
 * Read the block bp points at into buf, verified against bp's checksum
 * (W1): from the cache, or from raid, repaired through raid parity on a
 * mismatch.  A hole (vbn 0) reads as zeros.  -EIO when no copy verifies.
 */
int wafl_read_bp(struct wafl_vol *v, const struct wafl_bp *bp, void *buf);

/*
 * Read-only tree access (any root: active as of a freeze, snapshot, ring,
 * replica).  di describes the file; fbn a block of it.  Block pointer of
 * (level, idx) is looked up by descending from di's top pointers.
 */
int tree_lookup_bp(struct wafl_vol *v, const struct wafl_dinode *di,
    unsigned level, uint64_t idx, struct wafl_bp *out);
int tree_read_block(struct wafl_vol *v, const struct wafl_dinode *di,
    uint64_t fbn, void *buf);
/* W2 between a block on disk and a child it points to: a child is never
 * born after its parent (-FL_ECORRUPT, logged). */
int tree_check_child(const struct wafl_bp *parent,
    const struct wafl_bp *child);
/* From bp, a block at level `from`, down to the pointer of the block at
 * level `to` whose index there is idx (a hole gives vbn 0); W2 checked. */
int tree_descend(struct wafl_vol *v, struct wafl_bp bp, unsigned from,
    unsigned to, uint64_t idx, struct wafl_bp *out);
/* The active-bitmap inode of the tree under root (and its root block). */
int tree_root_bitmap(struct wafl_vol *v, const struct wafl_bp *root,
    struct wafl_dinode *bm, struct wafl_rootblk *rb_out);
/* Read inode ino from an inode file described by ifile. */
int tree_read_inode(struct wafl_vol *v, const struct wafl_dinode *ifile,
    uint64_t ino, struct wafl_dinode *out);
/* Root block of a root pointer. */
int tree_read_root(struct wafl_vol *v, const struct wafl_bp *root,
    struct wafl_rootblk *rb);

/* ---------------------------------------------------------- wnodes */

/* Get the wnode of an active inode (loaded from the inode file if not
 * cached); a reference the caller drops with wnode_put.  A free inode is
 * returned too (di.mode == 0): callers check. */
int wnode_get(struct wafl_vol *v, uint64_t ino, struct wnode **out);
void wnode_put(struct wnode *wn);
/* Mark the inode fields changed (joins the open CP). */
void wnode_dirty(struct wnode *wn);

/* Block access on an active wnode; caller holds wn->lock (shared for
 * read, exclusive for modify) and cp_lock shared. */
int wn_read_block(struct wnode *wn, uint64_t fbn, void *buf);
/* n whole blocks from fbn into buf, all under one level-1 parent
 * ((fbn + n - 1) / 128 == fbn / 128): the parent is read once.  *nread:
 * the blocks read before an error (n on success). */
int wn_read_blocks(struct wnode *wn, uint64_t fbn, uint32_t n, uint8_t *buf,
    uint32_t *nread);
/* wn_read_blocks without copies where it can: data[i] gets block fbn + i's
 * 4096 bytes, lent by the cache, or read or copied (a dirty block) into a
 * pool block, or wafl_zero_block (a hole); rv keeps the loans and blocks
 * until wafl_rdvec_free.  On an error rv keeps what it took so far. */
int wn_lend_blocks(struct wnode *wn, uint64_t fbn, uint32_t n,
    struct wafl_rdvec *rv, const uint8_t **data);
/* wn_read into rv's pieces (wn_lend_blocks); not for inline files. */
int wn_read_vec(struct wnode *wn, uint64_t off, uint32_t len,
    struct wafl_rdvec *rv, uint32_t *got, bool *eof);
/* An empty rdvec with room for a read of count bytes. */
struct wafl_rdvec *rdvec_alloc(uint32_t count);
/* Append len bytes at p (which stay valid until the rdvec is freed). */
void rdvec_add(struct wafl_rdvec *rv, const uint8_t *p, uint32_t len);
/* What an rdvec frees: a cache loan, a pool block. */
void rdvec_keep_loan(struct wafl_rdvec *rv, void *ticket);
void rdvec_keep_block(struct wafl_rdvec *rv, uint8_t *blk);
extern const uint8_t wafl_zero_block[WAFL_BLOCK_SIZE];
int wn_modify_block(struct wnode *wn, uint64_t fbn, uint8_t **blk);
/* wn_modify_block for a caller that writes all 4096 bytes of *blk before
 * dropping the lock: the old block is not read (nor verified). */
int wn_overwrite_block(struct wnode *wn, uint64_t fbn, uint8_t **blk);
/* Replace block fbn of a regular file with the 4096 bytes at src, and
 * checksum them while they are in the CPU's cache: the CP's freeze and
 * its checksum pass before it then have nothing left to do for it. */
int wn_write_whole_block(struct wnode *wn, uint64_t fbn, const void *src);
/* Free every block at or past fbn (truncate the tree).  */
int wn_truncate_blocks(struct wnode *wn, uint64_t first_fbn);
/* Grow the tree so fbn fits. */
int wn_ensure_height(struct wnode *wn, uint64_t fbn);

/* Byte-level file I/O on an active wnode (file.c). */
int wn_read(struct wnode *wn, uint64_t off, uint32_t len, void *buf,
    uint32_t *got, bool *eof);
int wn_write(struct wnode *wn, uint64_t off, uint32_t len, const void *buf);
int wn_set_size(struct wnode *wn, uint64_t size);
/* A struct dirfile over a directory wnode (dir.h); borrowed wn. */
struct dirfile;
void wn_dirfile(struct wnode *wn, struct dirfile *df);

/* NVLOG replay of one record (logrec.c). */
int wafl_replay_record(struct wafl_vol *v, uint16_t type, const void *payload,
    uint32_t len);

/* Record a block freed by the open generation (applied by the next CP). */
void wafl_defer_free(struct wafl_vol *v, uint64_t vbn);

/* Allocate a free inode number with its new generation. */
int ialloc(struct wafl_vol *v, uint64_t *ino, uint32_t *gen);
void ifree_note(struct wafl_vol *v, uint64_t ino);

/* dbuf table (dbuf.c) */
void dbuf_tab_init(struct dbuf_tab *t);
void dbuf_tab_free(struct dbuf_tab *t);
struct dbuf *dbuf_find(struct dbuf_tab *t, uint64_t key);
struct dbuf *dbuf_insert(struct dbuf_tab *t, uint64_t key);	/* new */
void dbuf_remove(struct dbuf_tab *t, uint64_t key);
/* A dbuf and its key side by side (dbuf_sorted). */
struct dbuf_ref {
	uint64_t key;
	struct dbuf *d;
};
/* All dbufs sorted by key (level first); caller frees the array. */
int dbuf_sorted(struct dbuf_tab *t, struct dbuf_ref **out, uint32_t *n);
/* Empty t without touching its dbufs, which the caller has freed or
 * owns (the CP frees each as it seals it). */
void dbuf_tab_forget(struct dbuf_tab *t);
/* Make t hold exactly the n dbufs of r (whatever it held is forgotten, as
 * by dbuf_tab_forget).  -ENOMEM: t is unchanged. */
int dbuf_tab_relink(struct dbuf_tab *t, const struct dbuf_ref *r,
    uint32_t n);
/* Free one dbuf that is in no table any more, and its data. */
void dbuf_free(struct dbuf *d);
/* Checksum every level-0 buffer whose cksum_ok is clear (cp_precksum). */
void dbuf_precksum(struct dbuf_tab *t);

/* ---------------------------------------------------------- allocator */

int alloc_init(struct wafl_vol *v);
void alloc_fini(struct wafl_vol *v);
/* Allocate one VBN for the CP (sets the active bit). */
int alloc_block(struct wafl_vol *v, uint64_t *vbn);
/* Clear the active bit and hold the block pending, tagged gen. */
int alloc_free_block(struct wafl_vol *v, uint64_t vbn, uint64_t gen);
/* Release pending blocks whose holders have all moved past them. */
void alloc_release(struct wafl_vol *v, uint64_t safe_gen);
/* Pending frees tagged in (after, upto], counted up to enough.  cp_lock
 * held. */
uint64_t pending_tagged(struct wafl_vol *v, uint64_t after, uint64_t upto,
    uint64_t enough);
/* Forget loaded areas (after snapshot delete / rollback). */
void alloc_reset_areas(struct wafl_vol *v);
/* Hold vbn pending (not allocatable) until safe_gen passes gen. */
int alloc_pending_add(struct wafl_vol *v, uint64_t vbn, uint64_t gen);
/* Blocks an operation may still dirty before the volume is full. */
uint64_t alloc_free_estimate(struct wafl_vol *v);
/* Bit of a bitmap file (active or summary) for vbn, live view. */
int bitmap_test(struct wnode *bm, uint64_t vbn, bool *set);
int bitmap_set(struct wnode *bm, uint64_t vbn, bool on);

/* The newest valid fsinfo on the volume's disks (mount.c). */
int fsinfo_read_newest(struct wafl_vol *v, struct wafl_fsinfo *out);
/* The active bitmap, snapshot table and summary map inodes of a root
 * that is about to be used: regular files of the sizes mkfs and the
 * snapshot code give them (the maps: one bit per VBN of nvbns; the table:
 * at most WAFL_MAX_SNAPSHOTS entries), or -FL_ECORRUPT (mount.c). */
int specials_valid(uint64_t nvbns, const struct wafl_dinode *bm,
    const struct wafl_dinode *st, const struct wafl_dinode *sm);
/* The next-inode hint a root block records, as ialloc may start from it
 * (mount.c). */
uint64_t next_ino_hint(uint64_t next_ino);

/*
 * Orphans (orphan.c).  orphans_load takes the list of a root block the
 * volume now runs on (mount, replica advance, rollback).  orphan_add puts
 * an inode whose blocks could not all be freed on the list (wn locked
 * exclusive, cp_lock shared): false when the list is full.
 * orphans_reclaim tries to free every orphan now (no lock held; takes
 * cp_lock shared and each orphan's lock), orphans_reclaim_due only when
 * WAFL_ORPHAN_RETRY_MS passed since the last try.
 */
#define WAFL_ORPHAN_RETRY_MS	60000u
void orphans_load(struct wafl_vol *v, const struct wafl_rootblk *rb);
bool orphan_add(struct wafl_vol *v, uint64_t ino);
void orphans_reclaim(struct wafl_vol *v);
void orphans_reclaim_due(struct wafl_vol *v);
/* The same rule for one of them (ino 1, 3 or 4). */
bool special_inode_ok(uint64_t nvbns, uint64_t ino,
    const struct wafl_dinode *di);

/* Hold again the roots the mounted fsinfo records (replica.c). */
void holds_restore(struct wafl_vol *v);
/* Forget released holds (refs 0) once the fsinfo that no longer records
 * them is durable: their blocks may be reused from here on.  Caller holds
 * cp_serial and cp_lock exclusive, v->fsi being that fsinfo. */
void holds_retire(struct wafl_vol *v);

/* Oldest generation any retained root (ring, hold or pin) has; pending
 * frees tagged at or below it may be released.  Caller holds cp_lock. */
uint64_t retained_oldest_gen(struct wafl_vol *v);
/* The same without the pins: the ring and the holds.  cp_lock held. */
uint64_t retained_oldest_unpinned(struct wafl_vol *v);
/* Pin root `root` of generation gen, which must be retained now (the ring,
 * a hold, or a pin): caller holds cp_serial and cp_lock exclusive.
 * -ENOSPC when every pin slot is taken.  Unpin takes cp_lock itself;
 * the root's blocks may be reused from the next CP on. */
int roots_pin(struct wafl_vol *v, uint64_t gen, const struct wafl_bp *root);
/* At least need pending frees (and at least one) would leave if the pins
 * went: the pins, older than every ring root and hold, alone keep them.
 * cp_lock held (shared is enough). */
bool pins_keep_oldest(struct wafl_vol *v, uint64_t need);
void roots_unpin(struct wafl_vol *v, uint64_t gen);

/* ---------------------------------------------------------- snapshots */

/* Caller holds cp_serial and cp_lock exclusive (snap.c): the name is
 * valid and unused and the table has room / add an entry as is, its id
 * gen << 16 | kind | the smallest suffix no entry of that generation and
 * kind has (kinds keep the ids of created, adopted and imported snapshots
 * of one generation apart). */
#define SNAP_ID_CREATED		0x0000u
#define SNAP_ID_IMPORTED	0x4000u
#define SNAP_ID_ADOPTED		0x8000u
int snap_name_free(struct wafl_vol *v, const char *name);
/* Summary map block a |= bits (a bitmap block), dirtying it only if a bit
 * is new (W9); scratch is a block the caller lends. */
int summary_or_block(struct wafl_vol *v, uint64_t a, const uint8_t *bits,
    uint8_t *scratch);
int snap_insert(struct wafl_vol *v, const char *name, uint64_t gen,
    const struct wafl_bp *root, uint64_t kind, uint64_t origin,
    uint64_t *id);
int snap_drop(struct wafl_vol *v, uint64_t id);

/* Root pointer of generation gen from the ring, the holds, or a snapshot
 * whose root is gen's exactly (a mirror's fallback base: read only while
 * the snapshot exists; a walk of it after a delete fails its checksums,
 * W1).  Caller holds cp_lock.  -ENOENT if gen is retained by none. */
int root_of_gen(struct wafl_vol *v, uint64_t gen, struct wafl_bp *root);
/* Root pointer of a snapshot whose root is generation gen's exactly (its
 * birth is gen: a snapshot made at that CP or adopting that root; not an
 * imported tree, whose root is born at the import's CP too but is
 * another tree); caller holds cp_lock.  -ENOENT if there is none. */
int snap_exact_root(struct wafl_vol *v, uint64_t gen, struct wafl_bp *root);
/* The inode file of snapshot `id` (snap.c); -ESTALE if there is none. */
int snap_ifile(struct wafl_vol *v, uint64_t id, struct wafl_dinode *ifile);

/* ---------------------------------------------------------------- CP */

int cp_start_thread(struct wafl_vol *v);
void cp_stop_thread(struct wafl_vol *v);
/* Run one CP now (caller holds nothing); returns its result.  A CP with
 * nothing dirty writes nothing and returns 0. */
int cp_run(struct wafl_vol *v);
/* Take cp_lock exclusive, letting writers queued on a file's lock know
 * that someone waits (ops_tx_wrlock), so they step out of the way. */
void cp_lock_excl(struct wafl_vol *v);
void cp_request(struct wafl_vol *v);
/* Unreferenced clean wnodes are dropped (all: every one). */
void wnode_trim(struct wafl_vol *v, bool all);
/* The tree under v->ifile replaced the active one: drop or reload every
 * cached wnode but the specials (wnode.c). */
void wnode_reset_all(struct wafl_vol *v);

/* check.c */
/*
 * wafl_check with more detail: errors per invariant (w_errors[n] for Wn),
 * W1 errors parity would repair, and what was walked.  det may be NULL.
 */
struct wafl_check_detail {
	uint64_t w_errors[10];		/* index n: violations of Wn */
	uint64_t repairable;		/* W1: a parity copy verifies */
	uint64_t unrepairable;		/* W1: no copy verifies */
	uint64_t retained_roots;	/* ring, mirror base, snapshot roots */
	uint64_t snapshots;		/* snapshots whose root was read */
	uint64_t log_records;		/* NVLOG records newer than the root */
};
int wafl_check_detail(struct wafl_vol *v, struct wafl_check_result *res,
    struct wafl_check_detail *det);
/*
 * An operation short of space that needs need blocks: if the pins of
 * online checks alone keep at least that many pending frees, ask every
 * check holding pins to stop, and wait (at most CHECK_YIELD_WAIT_MS)
 * until none holds pins.  true if it asked (the caller runs its CPs
 * again).  Called without cp_lock.
 */
bool check_yield_space(struct wafl_vol *v, uint64_t need);
#define CHECK_YIELD_WAIT_MS	30000u
/* end check.c */

#endif
