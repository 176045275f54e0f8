/*
 * wafl/check.c: the consistency checker (wafl_check, `filerctl check`).
 *
 * PURPOSE
 *   Walk the durable root of a mounted volume (v->fsi.root, the newest
 *   fsinfo on disk) and verify the numbered invariants of wafl.h, naming
 *   the one that fails: "W4 violated: vbn 812 allocated but unreachable".
 *   The checker changes nothing: it repairs no block, takes no wnode, reads
 *   no cached block and writes no log.  docs/wafl-check.md lists every check.
 *
 * HOW IT READS
 *   Its own read path, not wafl_read_bp: raid_read of the block and a crc32c
 *   compare against the block pointer that leads to it, so what is verified
 *   is what is on the disks (the block cache may hold a good copy of a block
 *   that has gone bad underneath).  On a mismatch a W1 violation is reported
 *   and raid_reconstruct is asked for every alternative; if one matches the
 *   error says "repairable from parity" and the walk goes on with the good
 *   copy, otherwise "not repairable" and the subtree below is skipped (and
 *   the checks that depend on it are reported as not verified instead of
 *   producing a cascade of false errors).
 *
 * PHASES (1 and 7 under v->cp_serial, so no CP runs meanwhile; on a
 * writable volume, 2 to 6 let CPs go on: every root they read is pinned
 * first, check_begin; on a replica, or when the pins do not fit, all)
 *   1. fsinfo: the durable slot decodes and names the mounted root, and
 *      every root it records as held is still kept (W3).
 *   2. active walk: root block, inode file, every allocated inode's tree:
 *      W1 (checksums, decoders), W2 (births), W5 (a reachable-set bitmap;
 *      a VBN met twice is reported and not descended again), block counts
 *      against di.blocks and blocks past EOF (W8), an inode table.
 *   3. W4: the active bitmap (inode 1) against the reachable set.
 *   4. retained roots: the older CP roots of the ring, a mirror's held root
 *      and every snapshot (inode 3): each root block reads and decodes, and
 *      a walk pruned at blocks the active tree already holds (or another
 *      retained tree was seen to hold) verifies their blocks (W1, W2) and
 *      that none is allocatable (W3: its allocator area, when loaded, marks
 *      it unavailable).
 *   5. W9: the summary map (inode 4) equals the OR of every snapshot's
 *      active bitmap.  W3: every pending VBN is clear in the active bitmap
 *      and not allocatable.
 *   6. W8: a traversal of the directory tree from the root through a
 *      read-only struct dirfile: dir_check clean, entries name allocated
 *      inodes of the entry's type, every directory reached once with its
 *      parent field naming the directory that holds it, link counts, and
 *      no allocated inode left outside the tree unless it is an orphan
 *      the root block lists (nlink 0, freed later: orphan.c), and every
 *      listed orphan allocated, with nlink 0 and no entry.
 *   7. NVLOG (W7): a second handle on the log file scans it (replay with a
 *      counting callback) and counts the records newer than the root.
 *
 * COST
 *   Reads: every block reachable from the active root once, the blocks of
 *   retained roots that the active root does not share, plus per-block
 *   lookups of the bitmaps and directories.  Memory: three bitmaps of one
 *   bit per VBN (reachable, seen-in-retained, active) and one small record
 *   per allocated inode.
 *
 * HOSTILE DATA
 *   Every count, index and pointer comes from a decoder or is bounded here:
 *   tree heights by the dinode decoder (<= WAFL_MAX_HEIGHT), VBNs by nvbns,
 *   the snapshot table by WAFL_MAX_SNAPSHOTS, directories by dir_check, the
 *   directory traversal by visiting each directory once.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "wafl/dir.h"
#include "wafl/nvlog.h"
#include "wafl/wafl_impl.h"

#define CK_SUB		"wafl"
#define CK_LOG_MAX	64u		/* errors logged one by one */
#define CK_ROOTBLK	UINT64_MAX	/* "ino" of a root block */
#define CK_AREA_BITS	WAFL_BITS_PER_BLOCK

/* ------------------------------------------------------------ context */

#define CKI_DIR_VISITED		0x1u

struct ck_ino {			/* one allocated inode of the active tree */
	uint64_t ino;		/* CK_EMPTY: free slot of the table */
	uint64_t parent;
	uint32_t mode, nlink;
	uint32_t links;		/* directory entries naming it */
	uint32_t subdirs;	/* directories: subdirectories found */
	uint32_t flags;
};
#define CK_EMPTY	UINT64_MAX

struct ck_snap {
	struct wafl_snapent se;
	struct wafl_dinode bm;	/* its active bitmap (inode 1) */
	bool bm_ok;
	/* An adopted root keeps its snapshots: its summary map (inode 4)
	 * counts in W9, and the snapshots it names are walked. */
	bool adopted;
	struct wafl_dinode sm;
	struct wafl_rootblk rb;
};

struct ck {
	struct wafl_vol *v;
	struct wafl_check_result *res;
	struct wafl_check_detail *det;
	const _Atomic bool *cancel;	/* NULL, or set to stop early */
	bool cancelled;
	bool yielded;			/* stopped for writes short of space */
	struct wafl_fsinfo fsi;
	struct wafl_rootblk rb;
	uint64_t nvbns;
	uint64_t nareas;

	uint8_t *reach;		/* reachable from the active root */
	uint8_t *seen;		/* reached in a retained tree */
	uint8_t *snapseen;	/* of those, reached in a snapshot's walk */
	uint8_t *act;		/* active bitmap as read */
	bool *area_bad;		/* active bitmap block unreadable */

	/* Walk mode. */
	bool retained;		/* pruned walk of a retained root */
	bool in_snap;		/* ... and that root is a snapshot's */
	char label[96];		/* "active", "CP root 12", "snapshot 'x'" */

	/* Special inodes of the active tree. */
	struct wafl_dinode special[WAFL_INO_FIRST_USER];
	bool have_special[WAFL_INO_FIRST_USER];

	/* Allocated inodes of the active tree. */
	struct ck_ino *itab;
	uint64_t icap, icount;

	/* Things not verified because something was unreadable. */
	uint64_t skipped;	/* subtrees of the active tree */
	uint64_t inodes_bad;	/* inodes that did not decode */
	uint64_t dirs_incomplete;
	bool ifile_incomplete;	/* some inodes could not be read */

	/* Snapshots. */
	struct ck_snap *snaps;
	uint32_t nsnaps;
	bool snaps_incomplete;

	/* Directory traversal stack. */
	uint64_t *stack;
	uint64_t nstack, capstack;

	uint64_t log_records;
	char morebuf[48];
	int fatal;		/* -ENOMEM latched inside callbacks */

	/* Taken with fsinfo, under cp_serial. */
	struct wafl_hold holds[WAFL_MAX_HOLDS];
	struct wafl_pending *pend;
	uint64_t npend;
	/* Online: CPs go on while the walk runs; the roots it walks are
	 * pinned (their generations here), and so are retained. */
	bool online;
	uint64_t pinned[WAFL_MAX_PINS];
	unsigned npinned;
	/* The generation open then: a snapshot delete, a rollback or an
	 * import tags the frees it makes with it before its CP runs. */
	uint64_t open_gen;
};

static inline bool bit_get(const uint8_t *m, uint64_t i)
{
	return (m[i >> 3] >> (i & 7)) & 1;
}

static inline void bit_set(uint8_t *m, uint64_t i)
{
	m[i >> 3] |= (uint8_t)(1u << (i & 7));
}

/* ------------------------------------------------------------ reports */

static void ck_verror(struct ck *c, unsigned w, uint64_t n, const char *fmt,
    va_list ap) __attribute__((format(printf, 4, 0)));

static void ck_verror(struct ck *c, unsigned w, uint64_t n, const char *fmt,
    va_list ap)
{
	char body[224], msg[256];

	if (c->cancelled)
		return;		/* what is seen after a cancel means nothing */
	vsnprintf(body, sizeof(body), fmt, ap);
	snprintf(msg, sizeof(msg), "W%u violated: %s", w, body);
	if (c->res->errors == 0)
		snprintf(c->res->first_error, sizeof(c->res->first_error),
		    "%s", msg);
	if (c->res->errors < CK_LOG_MAX)
		fl_err(CK_SUB, "check: %s", msg);
	else if (c->res->errors == CK_LOG_MAX)
		fl_err(CK_SUB, "check: further errors are counted, not logged");
	c->res->errors += n;
	if (w < FL_ARRAY_SIZE(c->det->w_errors))
		c->det->w_errors[w] += n;
}

/* One violation of invariant Ww. */
static void ck_error(struct ck *c, unsigned w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void ck_error(struct ck *c, unsigned w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ck_verror(c, w, 1, fmt, ap);
	va_end(ap);
}

/* n violations of Ww reported by one message. */
static void ck_error_n(struct ck *c, unsigned w, uint64_t n,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void ck_error_n(struct ck *c, unsigned w, uint64_t n,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ck_verror(c, w, n, fmt, ap);
	va_end(ap);
}

/* " (and 16 more)" after the first of n, or "" */
static const char *more(uint64_t n, char *buf, size_t len)
{
	if (n <= 1)
		return "";
	snprintf(buf, len, " (and %llu more)", (unsigned long long)(n - 1));
	return buf;
}

/* "inode 17 level 0 block 3 of CP root 12" */
static const char *ck_where(const struct ck *c, uint64_t ino, unsigned level,
    uint64_t idx, char *buf, size_t len)
{
	if (ino == CK_ROOTBLK)
		snprintf(buf, len, "root block of %s", c->label);
	else
		snprintf(buf, len, "inode %llu level %u block %llu of %s",
		    (unsigned long long)ino, level, (unsigned long long)idx,
		    c->label);
	return buf;
}

/* ------------------------------------------------------------ reading */

/*
 * Read the block bp points at into buf and verify it (W1).  0: buf holds
 * the block (possibly reconstructed from parity after a reported
 * mismatch); -EIO: no copy matches.  quiet: a re-read of a block an
 * earlier phase already verified and reported; errors are not reported
 * and blocks are not counted again.
 */
/* The caller asked the check to stop: once true, every read fails at
 * once (-ECANCELED), quietly, so the walks run out without I/O, and the
 * check returns -ECANCELED with nothing reported. */
static bool ck_cancelled(struct ck *c)
{
	if (!c->cancelled && c->cancel != NULL && *c->cancel)
		c->cancelled = true;
	if (!c->cancelled && c->npinned > 0 &&
	    __atomic_load_n(&c->v->check_yield, __ATOMIC_ACQUIRE)) {
		c->cancelled = true;
		c->yielded = true;
	}
	return c->cancelled;
}

/* A WARN that something could not be verified (not after a cancel: then
 * nothing was verified, and nothing is reported). */
static void ck_unverified(struct ck *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ck_unverified(struct ck *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (c->cancelled)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fl_warn(CK_SUB, "check: %s", msg);
}

static int ck_read(struct ck *c, const struct wafl_bp *bp, void *buf,
    uint64_t ino, unsigned level, uint64_t idx, bool quiet)
{
	char where[160];
	int rc;

	if (ck_cancelled(c))
		return -ECANCELED;

	if (bp->vbn < WAFL_FSINFO_SLOTS || bp->vbn >= c->nvbns) {
		if (!quiet)
			ck_error(c, 1, "vbn %llu (%s) is outside the volume "
			    "(%llu blocks)", (unsigned long long)bp->vbn,
			    ck_where(c, ino, level, idx, where, sizeof(where)),
			    (unsigned long long)c->nvbns);
		return -EIO;
	}
	rc = raid_read(c->v->raid, bp->vbn, 1, buf);
	if (rc == 0 && fl_crc32c(0, buf, WAFL_BLOCK_SIZE) == bp->cksum) {
		if (!quiet)
			c->res->blocks_checked++;
		return 0;
	}
	bool fixed = false;
	for (unsigned attempt = 0; attempt < 64; attempt++) {
		int r2 = raid_reconstruct(c->v->raid, bp->vbn, attempt, buf);
		if (r2 == -ENOENT)
			break;
		if (r2 == 0 && fl_crc32c(0, buf, WAFL_BLOCK_SIZE) ==
		    bp->cksum) {
			fixed = true;
			break;
		}
	}
	if (!quiet) {
		c->res->blocks_checked++;
		if (fixed)
			c->det->repairable++;
		else
			c->det->unrepairable++;
		ck_error(c, 1, "vbn %llu (%s, birth %llu): %s; %s",
		    (unsigned long long)bp->vbn,
		    ck_where(c, ino, level, idx, where, sizeof(where)),
		    (unsigned long long)bp->birth,
		    rc != 0 ? fl_strerror(rc) : "checksum mismatch",
		    fixed ? "repairable from parity" : "not repairable");
	}
	return fixed ? 0 : -EIO;
}

/*
 * Read file block fbn of di by descending from its top pointers (a hole
 * reads as zeros).  Used for the bitmaps, the snapshot table, inodes and
 * directories, whose blocks the walks have verified (quiet) or will not
 * walk (loud).
 */
static int ck_lookup_read(struct ck *c, const struct wafl_dinode *di,
    uint64_t ino, uint64_t fbn, void *buf, bool quiet)
{
	struct wafl_bp bp;
	int rc = 0;

	if (di->flags & WAFL_INO_INLINE)
		return -EINVAL;
	if (di->height > WAFL_MAX_HEIGHT ||
	    fbn >= wafl_height_capacity(di->height)) {
		memset(buf, 0, WAFL_BLOCK_SIZE);
		return 0;
	}
	bp = di->u.top[fbn >> (7u * di->height)];
	for (unsigned l = di->height; l > 0; l--) {
		if (bp.vbn == 0)
			break;
		rc = ck_read(c, &bp, buf, ino, l, fbn >> (7u * l), quiet);
		if (rc != 0)
			return rc;
		unsigned slot = (unsigned)((fbn >> (7u * (l - 1))) &
		    (WAFL_BPS_PER_BLOCK - 1));
		struct wafl_bp child;
		if (wafl_bp_decode((uint8_t *)buf + slot * WAFL_BP_SIZE,
		    &child) != 0)
			return -FL_ECORRUPT;
		bp = child;
	}
	if (bp.vbn == 0) {
		memset(buf, 0, WAFL_BLOCK_SIZE);
		return 0;
	}
	return ck_read(c, &bp, buf, ino, 0, fbn, quiet);
}

/* Inode ino of the active inode file (already walked: quiet). */
static int ck_read_inode(struct ck *c, uint64_t ino, struct wafl_dinode *di)
{
	uint8_t *blk;
	int rc;

	if (ino >= c->rb.inodefile.size / WAFL_INODE_SIZE)
		return -ENOENT;
	blk = malloc(WAFL_BLOCK_SIZE);
	if (blk == NULL)
		return -ENOMEM;
	rc = ck_lookup_read(c, &c->rb.inodefile, WAFL_INO_INODEFILE,
	    ino / WAFL_INODES_PER_BLOCK, blk, true);
	if (rc == 0)
		rc = wafl_dinode_decode(blk + (ino % WAFL_INODES_PER_BLOCK) *
		    WAFL_INODE_SIZE, ino, di);
	free(blk);
	return rc;
}

/*
 * Special inode ino (a map or table file) of the root whose inode file is
 * inodefile, read into blk (a scratch block) and decoded into *di; it must
 * be in use and not inline.  -FL_ECORRUPT if not; the read's error else.
 */
static int ck_special_inode(struct ck *c, const struct wafl_dinode *inodefile,
    uint64_t ino, uint8_t *blk, struct wafl_dinode *di)
{
	int rc = ck_lookup_read(c, inodefile, WAFL_INO_INODEFILE,
	    ino / WAFL_INODES_PER_BLOCK, blk, true);

	if (rc == 0 && (wafl_dinode_decode(blk + (ino %
	    WAFL_INODES_PER_BLOCK) * WAFL_INODE_SIZE, ino, di) != 0 ||
	    !special_inode_ok(c->nvbns, ino, di)))
		rc = -FL_ECORRUPT;
	return rc;
}

/* --------------------------------------------------------- inode table */

static uint64_t itab_hash(uint64_t ino, uint64_t cap)
{
	return (ino * 0x9e3779b97f4a7c15ull) & (cap - 1);
}

static struct ck_ino *itab_find(struct ck *c, uint64_t ino)
{
	if (c->icap == 0)
		return NULL;
	for (uint64_t i = itab_hash(ino, c->icap);;
	    i = (i + 1) & (c->icap - 1)) {
		if (c->itab[i].ino == ino)
			return &c->itab[i];
		if (c->itab[i].ino == CK_EMPTY)
			return NULL;
	}
}

static int itab_grow(struct ck *c)
{
	uint64_t ncap = c->icap ? c->icap * 2 : 1024;
	struct ck_ino *n = malloc(ncap * sizeof(*n));

	if (n == NULL)
		return -ENOMEM;
	for (uint64_t i = 0; i < ncap; i++)
		n[i].ino = CK_EMPTY;
	for (uint64_t i = 0; i < c->icap; i++) {
		if (c->itab[i].ino == CK_EMPTY)
			continue;
		uint64_t j = itab_hash(c->itab[i].ino, ncap);
		while (n[j].ino != CK_EMPTY)
			j = (j + 1) & (ncap - 1);
		n[j] = c->itab[i];
	}
	free(c->itab);
	c->itab = n;
	c->icap = ncap;
	return 0;
}

static int itab_add(struct ck *c, uint64_t ino, const struct wafl_dinode *di)
{
	if ((c->icount + 1) * 2 > c->icap) {
		int rc = itab_grow(c);
		if (rc != 0)
			return rc;
	}
	uint64_t i = itab_hash(ino, c->icap);
	while (c->itab[i].ino != CK_EMPTY) {
		if (c->itab[i].ino == ino)
			return 0;	/* cannot happen: one slot per ino */
		i = (i + 1) & (c->icap - 1);
	}
	c->itab[i] = (struct ck_ino){
		.ino = ino, .parent = di->parent, .mode = di->mode,
		.nlink = di->nlink,
	};
	c->icount++;
	return 0;
}

/* ------------------------------------------------------------- walks */

struct ck_tree;
typedef int ck_leaf_fn(struct ck *c, struct ck_tree *t, uint64_t fbn,
    const uint8_t *blk, const struct wafl_bp *bp);

struct ck_tree {		/* one file's tree being walked */
	uint64_t ino;
	uint64_t max_birth;	/* the generation of the root walked */
	uint64_t eof_blocks;	/* data blocks that lie below EOF */
	uint64_t nblocks;	/* non-hole pointers met */
	bool incomplete;	/* a subtree could not be read */
	bool eof_reported;
	ck_leaf_fn *leaf;	/* called with each data block, or NULL */
};

/*
 * Is vbn allocatable right now?  Only a loaded allocator area knows; the
 * CP changes the areas inside its freeze, so a shared cp_lock reads them
 * whole.  With CPs going on (an online check) the answer stays valid for
 * the blocks of the roots walked: they are pinned, so no CP releases them.
 */
static bool ck_allocatable(struct ck *c, uint64_t vbn)
{
	struct wafl_vol *v = c->v;
	uint64_t a = vbn / CK_AREA_BITS;
	bool free_now = false;

	pthread_rwlock_rdlock(&v->cp_lock);
	if (v->areas != NULL && a < v->nareas && v->areas[a].unavail != NULL)
		free_now = !bit_get(v->areas[a].unavail, vbn % CK_AREA_BITS);
	pthread_rwlock_unlock(&v->cp_lock);
	return free_now;
}

/* Visit the block bp (level `level`, index idx in its file) whose parent
 * was born at parent_birth, and everything below it. */
static int ck_visit(struct ck *c, struct ck_tree *t, const struct wafl_bp *bp,
    uint64_t parent_birth, unsigned level, uint64_t idx)
{
	char where[160];
	uint8_t *blk;
	int rc = 0;

	if (bp->vbn == 0)
		return 0;
	if (!c->retained)
		t->nblocks++;
	if (bp->vbn < WAFL_FSINFO_SLOTS || bp->vbn >= c->nvbns) {
		ck_error(c, 1, "vbn %llu (%s) is outside the volume",
		    (unsigned long long)bp->vbn,
		    ck_where(c, t->ino, level, idx, where, sizeof(where)));
		return 0;
	}
	if (bp->birth > parent_birth || bp->birth > t->max_birth)
		ck_error(c, 2, "vbn %llu (%s) born %llu under a parent born "
		    "%llu in a root of generation %llu",
		    (unsigned long long)bp->vbn,
		    ck_where(c, t->ino, level, idx, where, sizeof(where)),
		    (unsigned long long)bp->birth,
		    (unsigned long long)parent_birth,
		    (unsigned long long)t->max_birth);
	if (!c->retained) {
		if (bit_get(c->reach, bp->vbn)) {
			ck_error(c, 5, "vbn %llu referenced twice (again by "
			    "%s)", (unsigned long long)bp->vbn,
			    ck_where(c, t->ino, level, idx, where,
			    sizeof(where)));
			return 0;
		}
		bit_set(c->reach, bp->vbn);
	} else {
		/* Shared with the active tree or seen already: verified. */
		if (bit_get(c->reach, bp->vbn) || bit_get(c->seen, bp->vbn))
			return 0;
		bit_set(c->seen, bp->vbn);
		if (c->in_snap)
			bit_set(c->snapseen, bp->vbn);
		if (ck_allocatable(c, bp->vbn))
			ck_error(c, 3, "vbn %llu (%s) is held by a retained "
			    "root but allocatable", (unsigned long long)bp->vbn,
			    ck_where(c, t->ino, level, idx, where,
			    sizeof(where)));
	}
	if (level == 0 && idx >= t->eof_blocks && !t->eof_reported) {
		t->eof_reported = true;
		ck_error(c, 8, "inode %llu of %s: block %llu lies past its "
		    "size (%llu blocks)", (unsigned long long)t->ino, c->label,
		    (unsigned long long)idx,
		    (unsigned long long)t->eof_blocks);
	}
	blk = malloc(WAFL_BLOCK_SIZE);
	if (blk == NULL)
		return -ENOMEM;
	if (ck_read(c, bp, blk, t->ino, level, idx, false) != 0) {
		t->incomplete = true;
		if (!c->retained)
			c->skipped++;
		goto out;
	}
	if (level > 0) {
		for (unsigned s = 0; s < WAFL_BPS_PER_BLOCK && rc == 0; s++) {
			struct wafl_bp child;
			if (wafl_bp_decode(blk + s * WAFL_BP_SIZE,
			    &child) != 0) {
				ck_error(c, 1, "vbn %llu (%s): block pointer "
				    "%u does not decode",
				    (unsigned long long)bp->vbn,
				    ck_where(c, t->ino, level, idx, where,
				    sizeof(where)), s);
				t->incomplete = true;
				if (!c->retained)
					c->skipped++;
				continue;
			}
			rc = ck_visit(c, t, &child, bp->birth, level - 1,
			    idx * WAFL_BPS_PER_BLOCK + s);
		}
	} else if (t->leaf != NULL) {
		rc = t->leaf(c, t, idx, blk, bp);
	}
out:
	free(blk);
	return rc;
}

/* Walk the tree of di (inode ino) whose inode lives in a block born at
 * parent_birth. */
static int ck_walk_inode(struct ck *c, struct ck_tree *t,
    const struct wafl_dinode *di, uint64_t parent_birth)
{
	int rc = 0;

	t->eof_blocks = FL_DIV_ROUND_UP_U64(di->size, WAFL_BLOCK_SIZE);
	if (di->flags & WAFL_INO_INLINE)
		return 0;
	for (unsigned i = 0; i < WAFL_NTOP && rc == 0; i++)
		rc = ck_visit(c, t, &di->u.top[i], parent_birth, di->height,
		    i);
	return rc;
}

static bool is_special_ino(uint64_t ino)
{
	return ino == WAFL_INO_BITMAP || ino == WAFL_INO_SNAPTABLE ||
	    ino == WAFL_INO_SUMMARY;
}

/* An allocated inode of the active tree. */
static int ck_active_inode(struct ck *c, uint64_t ino,
    const struct wafl_dinode *di, uint64_t blk_birth)
{
	uint32_t type = di->mode & S_IFMT;
	int rc;

	c->res->inodes_checked++;
	if (ino < WAFL_INO_FIRST_USER) {
		c->special[ino] = *di;
		c->have_special[ino] = true;
	}
	if (ino == WAFL_INO_INODEFILE)
		fl_warn(CK_SUB, "check: inode-file slot 0 is allocated "
		    "(inode 0 lives in the root block)");
	else if (is_special_ino(ino) && type != S_IFREG)
		ck_error(c, 1, "special inode %llu has mode 0%o, not a "
		    "regular file", (unsigned long long)ino, di->mode);
	else if (ino > WAFL_INO_SUMMARY && ino < WAFL_INO_FIRST_USER)
		fl_warn(CK_SUB, "check: reserved inode %llu is allocated",
		    (unsigned long long)ino);
	if (ino == WAFL_INO_ROOTDIR || ino >= WAFL_INO_FIRST_USER) {
		rc = itab_add(c, ino, di);
		if (rc != 0)
			return rc;
	}
	if (type == S_IFDIR && di->size % WAFL_BLOCK_SIZE != 0)
		ck_error(c, 8, "directory %llu has size %llu, not a whole "
		    "number of blocks", (unsigned long long)ino,
		    (unsigned long long)di->size);

	struct ck_tree t = { .ino = ino, .max_birth = c->fsi.gen };
	rc = ck_walk_inode(c, &t, di, blk_birth);
	if (rc != 0)
		return rc;
	if (!t.incomplete && t.nblocks != di->blocks)
		ck_error(c, 8, "inode %llu holds %llu blocks but its inode "
		    "says %llu", (unsigned long long)ino,
		    (unsigned long long)t.nblocks,
		    (unsigned long long)di->blocks);
	return 0;
}

/* A data block of an inode file: decode its inodes, walk their trees. */
static int ck_ifile_leaf(struct ck *c, struct ck_tree *t, uint64_t fbn,
    const uint8_t *blk, const struct wafl_bp *bp)
{
	int rc = 0;

	for (unsigned s = 0; s < WAFL_INODES_PER_BLOCK && rc == 0; s++) {
		uint64_t ino = fbn * WAFL_INODES_PER_BLOCK + s;
		struct wafl_dinode di;

		if (fbn >= t->eof_blocks)
			break;		/* reported as past EOF */
		if (wafl_dinode_decode(blk + s * WAFL_INODE_SIZE, ino,
		    &di) != 0) {
			ck_error(c, 1, "inode %llu of %s (inode-file vbn "
			    "%llu) does not decode", (unsigned long long)ino,
			    c->label, (unsigned long long)bp->vbn);
			if (!c->retained)
				c->inodes_bad++;
			continue;
		}
		if (di.mode == 0)
			continue;
		if (!c->retained) {
			rc = ck_active_inode(c, ino, &di, bp->birth);
		} else {
			struct ck_tree it = { .ino = ino,
			    .max_birth = t->max_birth };
			rc = ck_walk_inode(c, &it, &di, bp->birth);
		}
	}
	return rc;
}

/*
 * A retained root (older CP root, mirror base, snapshot): its root block
 * reads and decodes, and its blocks that the active tree does not hold are
 * verified and not allocatable (W3).  out (may be NULL) gets the decoded
 * root block.
 */
static int ck_retained_root(struct ck *c, const struct wafl_bp *root,
    uint64_t gen, struct wafl_rootblk *out)
{
	struct wafl_rootblk rb;
	uint8_t *blk;
	int rc = 0;

	c->retained = true;
	c->det->retained_roots++;
	if (root->vbn < WAFL_FSINFO_SLOTS || root->vbn >= c->nvbns) {
		ck_error(c, 1, "root block of %s: vbn %llu outside the volume",
		    c->label, (unsigned long long)root->vbn);
		return -FL_ECORRUPT;
	}
	if (root->birth != gen)
		ck_error(c, 2, "root block of %s (vbn %llu) born %llu, not "
		    "%llu", c->label, (unsigned long long)root->vbn,
		    (unsigned long long)root->birth, (unsigned long long)gen);
	if (!bit_get(c->reach, root->vbn) && !bit_get(c->seen, root->vbn)) {
		bit_set(c->seen, root->vbn);
		if (c->in_snap)
			bit_set(c->snapseen, root->vbn);
		if (ck_allocatable(c, root->vbn))
			ck_error(c, 3, "vbn %llu (root block of %s) is held "
			    "by a retained root but allocatable",
			    (unsigned long long)root->vbn, c->label);
	}
	blk = malloc(WAFL_BLOCK_SIZE);
	if (blk == NULL)
		return -ENOMEM;
	rc = ck_read(c, root, blk, CK_ROOTBLK, 0, 0, false);
	if (rc != 0)
		goto out;
	if (wafl_rootblk_decode(blk, &rb) != 0) {
		ck_error(c, 1, "root block of %s (vbn %llu) does not decode",
		    c->label, (unsigned long long)root->vbn);
		rc = -FL_ECORRUPT;
		goto out;
	}
	if (rb.gen != root->birth) {
		ck_error(c, 1, "root block of %s (vbn %llu) says generation "
		    "%llu, its pointer %llu", c->label,
		    (unsigned long long)root->vbn, (unsigned long long)rb.gen,
		    (unsigned long long)root->birth);
		rc = -FL_ECORRUPT;
		goto out;
	}
	struct ck_tree t = { .ino = WAFL_INO_INODEFILE, .max_birth = gen,
	    .leaf = ck_ifile_leaf };
	rc = ck_walk_inode(c, &t, &rb.inodefile, root->birth);
	if (rc == 0 && out != NULL)
		*out = rb;
out:
	free(blk);
	c->retained = false;
	return rc;
}

/* ---------------------------------------------------- phase 1 and 2 */

/*
 * W3: every root the durable fsinfo records as held is still kept by this
 * volume (held, or released but not yet gone), so the retained-root phase
 * walks it and the allocator cannot reuse its blocks: a crash now mounts
 * this fsinfo and holds that root again.
 */
static void ck_fsinfo_holds(struct ck *c, const struct wafl_fsinfo *f)
{
	for (unsigned i = 0; i < f->nholds && i < WAFL_FSI_HOLDS; i++) {
		bool kept = false;
		for (unsigned h = 0; !kept && h < WAFL_MAX_HOLDS; h++)
			kept = c->holds[h].gen == f->holds[i].gen &&
			    memcmp(&c->holds[h].root, &f->holds[i].root,
			    sizeof(f->holds[i].root)) == 0;
		if (!kept)
			ck_error(c, 3, "fsinfo %llu records held root %llu, "
			    "which the volume no longer keeps: its blocks "
			    "may be reused", (unsigned long long)f->gen,
			    (unsigned long long)f->holds[i].gen);
	}
}

static int ck_fsinfo(struct ck *c)
{
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	int rc = 0;

	if (blk == NULL)
		return -ENOMEM;
	for (unsigned s = 0; s < WAFL_FSINFO_SLOTS; s++) {
		struct wafl_fsinfo f;
		int r = raid_read(c->v->raid, s, 1, blk);
		bool ok = r == 0 && wafl_fsinfo_decode(blk, &f) == 0;
		c->res->blocks_checked++;
		if (s == c->fsi.gen % WAFL_FSINFO_SLOTS) {
			if (!ok)
				ck_error(c, 1, "fsinfo slot %u (generation "
				    "%llu) %s", s,
				    (unsigned long long)c->fsi.gen,
				    r != 0 ? "unreadable" : "does not decode");
			else if (f.gen != c->fsi.gen ||
			    memcmp(&f.root, &c->fsi.root, sizeof(f.root)) != 0)
				ck_error(c, 6, "fsinfo slot %u holds generation "
				    "%llu, not the mounted root %llu", s,
				    (unsigned long long)f.gen,
				    (unsigned long long)c->fsi.gen);
			else
				ck_fsinfo_holds(c, &f);
		} else if (ok && f.gen > c->fsi.gen && !c->v->readonly) {
			ck_error(c, 6, "fsinfo slot %u holds generation %llu, "
			    "newer than the mounted root %llu", s,
			    (unsigned long long)f.gen,
			    (unsigned long long)c->fsi.gen);
		}
	}
	free(blk);
	if (c->fsi.root.birth != c->fsi.gen || c->fsi.ring_len < 1 ||
	    c->fsi.ring_len > WAFL_RING_K || c->fsi.ring[0].gen != c->fsi.gen ||
	    memcmp(&c->fsi.ring[0].root, &c->fsi.root,
	    sizeof(c->fsi.root)) != 0) {
		ck_error(c, 6, "fsinfo %llu: ring[0] is not the root",
		    (unsigned long long)c->fsi.gen);
	}
	return rc;
}

static int ck_active(struct ck *c)
{
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	const struct wafl_bp *root = &c->fsi.root;
	int rc;

	if (blk == NULL)
		return -ENOMEM;
	snprintf(c->label, sizeof(c->label), "the active root %llu",
	    (unsigned long long)c->fsi.gen);
	rc = ck_read(c, root, blk, CK_ROOTBLK, 0, 0, false);
	if (rc != 0) {
		rc = -FL_ECORRUPT;	/* reported: nothing more to walk */
		goto out;
	}
	bit_set(c->reach, root->vbn);
	if (wafl_rootblk_decode(blk, &c->rb) != 0 ||
	    c->rb.gen != c->fsi.gen) {
		ck_error(c, 1, "root block (vbn %llu) of generation %llu does "
		    "not decode", (unsigned long long)root->vbn,
		    (unsigned long long)c->fsi.gen);
		rc = -FL_ECORRUPT;
		goto out;
	}
	struct ck_tree t = { .ino = WAFL_INO_INODEFILE,
	    .max_birth = c->fsi.gen, .leaf = ck_ifile_leaf };
	c->res->inodes_checked++;
	rc = ck_walk_inode(c, &t, &c->rb.inodefile, root->birth);
	if (rc != 0)
		goto out;
	c->ifile_incomplete = t.incomplete || c->inodes_bad > 0;
	if (!t.incomplete && t.nblocks != c->rb.inodefile.blocks)
		ck_error(c, 8, "inode file holds %llu blocks but its inode "
		    "says %llu", (unsigned long long)t.nblocks,
		    (unsigned long long)c->rb.inodefile.blocks);
	for (uint64_t ino = WAFL_INO_BITMAP; ino <= WAFL_INO_SUMMARY; ino++) {
		if (!c->have_special[ino] && !c->ifile_incomplete)
			ck_error(c, 1, "special inode %llu is not allocated",
			    (unsigned long long)ino);
	}
out:
	free(blk);
	return rc;
}

/* ------------------------------------------------------------ phase 3 */

static int ck_active_bitmap(struct ck *c)
{
	const struct wafl_dinode *bm = &c->special[WAFL_INO_BITMAP];
	uint64_t unreach = 0, freed = 0, beyond = 0, pop = 0;
	uint64_t first_unreach = 0, first_free = 0, first_beyond = 0;
	bool complete = true;
	int rc;

	if (!c->have_special[WAFL_INO_BITMAP]) {
		ck_unverified(c, "W4 not verified: no active bitmap");
		return 0;
	}
	if (bm->flags & WAFL_INO_INLINE) {
		ck_error(c, 1, "active bitmap inode is inline");
		return 0;
	}
	for (uint64_t a = 0; a < c->nareas; a++) {
		rc = ck_lookup_read(c, bm, WAFL_INO_BITMAP, a,
		    c->act + a * WAFL_BLOCK_SIZE, true);
		if (rc == -ENOMEM)
			return rc;
		if (rc != 0) {
			c->area_bad[a] = true;
			complete = false;
			memset(c->act + a * WAFL_BLOCK_SIZE, 0,
			    WAFL_BLOCK_SIZE);
		}
	}
	uint64_t nbits = c->nareas * CK_AREA_BITS;
	for (uint64_t byte = 0; byte < nbits / 8; byte++) {
		uint8_t a = c->act[byte], r = c->reach[byte];
		if (c->area_bad[byte / WAFL_BLOCK_SIZE])
			continue;
		if (byte == 0)
			a &= (uint8_t)~((1u << WAFL_FSINFO_SLOTS) - 1);
		if ((byte + 1) * 8 <= c->nvbns) {
			pop += (uint64_t)__builtin_popcount(a);
			if (a == r)
				continue;
		}
		for (unsigned b = 0; b < 8; b++) {
			uint64_t vbn = byte * 8 + b;
			bool ab = (a >> b) & 1, rb = (r >> b) & 1;
			if (vbn >= c->nvbns) {
				if (ab && beyond++ == 0)
					first_beyond = vbn;
				continue;
			}
			if ((byte + 1) * 8 > c->nvbns)
				pop += ab;
			if (ab && !rb && unreach++ == 0)
				first_unreach = vbn;
			if (!ab && rb && freed++ == 0)
				first_free = vbn;
		}
	}
	if (unreach > 0) {
		if (c->skipped > 0 || c->ifile_incomplete)
			ck_unverified(c, "W4 not fully verified: %llu "
			    "allocated blocks (first vbn %llu) unreached, but "
			    "%llu subtrees and %llu inodes were unreadable",
			    (unsigned long long)unreach,
			    (unsigned long long)first_unreach,
			    (unsigned long long)c->skipped,
			    (unsigned long long)c->inodes_bad);
		else
			ck_error_n(c, 4, unreach, "vbn %llu allocated but "
			    "unreachable%s", (unsigned long long)first_unreach,
			    more(unreach, c->morebuf, sizeof(c->morebuf)));
	}
	if (freed > 0)
		ck_error_n(c, 4, freed, "vbn %llu reachable but free%s",
		    (unsigned long long)first_free,
		    more(freed, c->morebuf, sizeof(c->morebuf)));
	if (beyond > 0)
		ck_error_n(c, 4, beyond, "vbn %llu beyond the volume's %llu "
		    "blocks marked allocated%s",
		    (unsigned long long)first_beyond,
		    (unsigned long long)c->nvbns,
		    more(beyond, c->morebuf, sizeof(c->morebuf)));
	if (complete && pop != c->rb.blocks_used)
		ck_error(c, 4, "root block counts %llu blocks in use, the "
		    "active bitmap holds %llu",
		    (unsigned long long)c->rb.blocks_used,
		    (unsigned long long)pop);
	if (!complete)
		ck_unverified(c, "W4 not verified for unreadable "
		    "bitmap blocks");
	return 0;
}

/* ------------------------------------------------------------ phase 4 */

static int ck_snaptable(struct ck *c)
{
	const struct wafl_dinode *st = &c->special[WAFL_INO_SNAPTABLE];
	uint8_t *blk;
	int rc = 0;

	if (!c->have_special[WAFL_INO_SNAPTABLE]) {
		c->snaps_incomplete = true;
		return 0;
	}
	if (st->flags & WAFL_INO_INLINE) {
		ck_error(c, 1, "snapshot table inode is inline");
		c->snaps_incomplete = true;
		return 0;
	}
	uint64_t nent = st->size / WAFL_SNAP_ENTRY_SIZE;
	if (nent > WAFL_MAX_SNAPSHOTS) {
		ck_error(c, 1, "snapshot table of %llu entries (at most %u)",
		    (unsigned long long)nent, WAFL_MAX_SNAPSHOTS);
		nent = WAFL_MAX_SNAPSHOTS;
	}
	c->snaps = calloc(nent + 1, sizeof(*c->snaps));
	blk = malloc(WAFL_BLOCK_SIZE);
	if (c->snaps == NULL || blk == NULL) {
		free(blk);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < nent; i++) {
		if (i % WAFL_SNAPS_PER_BLOCK == 0) {
			rc = ck_lookup_read(c, st, WAFL_INO_SNAPTABLE,
			    i / WAFL_SNAPS_PER_BLOCK, blk, true);
			if (rc == -ENOMEM)
				goto out;
			if (rc != 0) {
				c->snaps_incomplete = true;
				i += WAFL_SNAPS_PER_BLOCK - 1;
				rc = 0;
				continue;
			}
		}
		struct ck_snap *s = &c->snaps[c->nsnaps];
		if (wafl_snapent_decode(blk + (i % WAFL_SNAPS_PER_BLOCK) *
		    WAFL_SNAP_ENTRY_SIZE, &s->se) != 0) {
			ck_error(c, 1, "snapshot table slot %llu does not "
			    "decode", (unsigned long long)i);
			c->snaps_incomplete = true;
			continue;
		}
		if (s->se.gen == 0)
			continue;
		for (uint32_t j = 0; j < c->nsnaps; j++)
			if (c->snaps[j].se.id == s->se.id ||
			    strcmp(c->snaps[j].se.name, s->se.name) == 0)
				ck_error(c, 9, "snapshot table slots hold "
				    "'%s' (id %llu) and '%s' (id %llu)",
				    c->snaps[j].se.name,
				    (unsigned long long)c->snaps[j].se.id,
				    s->se.name, (unsigned long long)s->se.id);
		if (s->se.root.birth > s->se.gen)
			ck_error(c, 2, "snapshot '%s' of generation %llu has a "
			    "root born %llu", s->se.name,
			    (unsigned long long)s->se.gen,
			    (unsigned long long)s->se.root.birth);
		if (s->se.gen > c->fsi.gen)
			ck_error(c, 2, "snapshot '%s' of generation %llu is "
			    "newer than the root %llu", s->se.name,
			    (unsigned long long)s->se.gen,
			    (unsigned long long)c->fsi.gen);
		c->nsnaps++;
	}
out:
	free(blk);
	return rc;
}

/* Is root the root of one of the active tree's snapshots? */
static bool ck_active_snap(const struct ck *c, const struct wafl_bp *root)
{
	for (uint32_t i = 0; i < c->nsnaps; i++)
		if (c->snaps[i].se.root.vbn == root->vbn &&
		    c->snaps[i].se.root.birth == root->birth)
			return true;
	return false;
}

/*
 * The snapshots of an older or held root that the active tree no longer
 * has (deleted since): the root retains them, so their blocks are
 * verified and must not be allocatable either (W3).  Each snapshot is
 * walked once (done[] holds the root VBNs walked so far).
 */
static int ck_root_snaps(struct ck *c, const struct wafl_rootblk *rb,
    const char *owner, uint64_t *done, uint32_t *ndone, uint32_t maxdone)
{
	struct wafl_dinode st;
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	int rc;

	if (blk == NULL)
		return -ENOMEM;
	rc = ck_special_inode(c, &rb->inodefile, WAFL_INO_SNAPTABLE, blk, &st);
	if (rc == -FL_ECORRUPT)
		ck_error(c, 1, "snapshot table inode of %s does not decode or "
		    "is out of range", owner);
	if (rc != 0) {
		if (rc != -ENOMEM) {
			ck_unverified(c, "snapshots of %s not verified: its "
			    "snapshot table is unreadable", owner);
			rc = 0;
		}
		goto out;
	}
	uint64_t nent = FL_MIN(st.size / WAFL_SNAP_ENTRY_SIZE,
	    (uint64_t)WAFL_MAX_SNAPSHOTS);
	for (uint64_t i = 0; rc == 0 && i < nent; i++) {
		struct wafl_snapent e;
		if (i % WAFL_SNAPS_PER_BLOCK == 0 &&
		    ck_lookup_read(c, &st, WAFL_INO_SNAPTABLE,
		    i / WAFL_SNAPS_PER_BLOCK, blk, true) != 0) {
			ck_unverified(c, "snapshots of %s not verified: its "
			    "snapshot table is unreadable", owner);
			break;
		}
		if (wafl_snapent_decode(blk + (i % WAFL_SNAPS_PER_BLOCK) *
		    WAFL_SNAP_ENTRY_SIZE, &e) != 0 || e.gen == 0 ||
		    ck_active_snap(c, &e.root))
			continue;
		bool seen = false;
		for (uint32_t k = 0; k < *ndone && !seen; k++)
			seen = done[k] == e.root.vbn;
		if (seen || *ndone == maxdone)
			continue;
		done[(*ndone)++] = e.root.vbn;
		snprintf(c->label, sizeof(c->label), "snapshot '%.40s' of %s",
		    e.name, owner);
		rc = ck_retained_root(c, &e.root, e.root.birth, NULL);
		if (rc != -ENOMEM)
			rc = 0;
	}
out:
	free(blk);
	return rc;
}

static int ck_retained(struct ck *c)
{
	const struct wafl_hold *holds = c->holds;
	/* The ring's and the holds' roots, for their snapshots. */
	struct {
		struct wafl_rootblk rb;
		char owner[40];
	} older[WAFL_RING_K + WAFL_MAX_HOLDS];
	uint32_t nolder = 0;
	uint32_t maxdone = WAFL_MAX_SNAPSHOTS * 2, ndone = 0;
	uint64_t *done = calloc(maxdone, sizeof(*done));
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	int rc = 0;

	if (done == NULL || blk == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	/* Older CP roots of the ring (ring[0] is the active root). */
	for (uint32_t i = 1; i < c->fsi.ring_len && i < WAFL_RING_K; i++) {
		const struct wafl_ring_ent *e = &c->fsi.ring[i];
		snprintf(older[nolder].owner, sizeof(older[nolder].owner),
		    "CP root %llu", (unsigned long long)e->gen);
		snprintf(c->label, sizeof(c->label), "%s",
		    older[nolder].owner);
		rc = ck_retained_root(c, &e->root, e->gen, &older[nolder].rb);
		if (rc == -ENOMEM)
			goto out;
		if (rc == 0)
			nolder++;
	}
	/* Roots the mirror holds that have left the ring. */
	for (unsigned h = 0; h < WAFL_MAX_HOLDS; h++) {
		bool known = holds[h].gen == 0;
		for (uint32_t i = 0; !known && i < c->fsi.ring_len &&
		    i < WAFL_RING_K; i++)
			known = c->fsi.ring[i].gen == holds[h].gen;
		for (unsigned k = 0; !known && k < h; k++)
			known = holds[k].gen == holds[h].gen;
		if (known)
			continue;
		snprintf(older[nolder].owner, sizeof(older[nolder].owner),
		    "held root %llu", (unsigned long long)holds[h].gen);
		snprintf(c->label, sizeof(c->label), "%s",
		    older[nolder].owner);
		rc = ck_retained_root(c, &holds[h].root, holds[h].gen,
		    &older[nolder].rb);
		if (rc == -ENOMEM)
			goto out;
		if (rc == 0)
			nolder++;
	}
	for (uint32_t i = 0; i < c->nsnaps; i++) {
		struct ck_snap *s = &c->snaps[i];
		struct wafl_rootblk rb;
		snprintf(c->label, sizeof(c->label), "snapshot '%s'",
		    s->se.name);
		c->in_snap = true;
		rc = ck_retained_root(c, &s->se.root, s->se.root.birth, &rb);
		c->in_snap = false;
		if (rc == -ENOMEM)
			goto out;
		if (rc != 0) {
			c->snaps_incomplete = true;
			continue;
		}
		c->det->snapshots++;
		/* Its active bitmap: inode 1 of its inode file. */
		rc = ck_special_inode(c, &rb.inodefile, WAFL_INO_BITMAP, blk,
		    &s->bm);
		if (rc == -FL_ECORRUPT)
			ck_error(c, 1, "active bitmap inode of %s does not "
			    "decode or is out of range", c->label);
		if (rc == 0 && (s->se.id & (SNAP_ID_IMPORTED |
		    SNAP_ID_ADOPTED)) == SNAP_ID_ADOPTED) {
			s->adopted = true;
			s->rb = rb;
			rc = ck_special_inode(c, &rb.inodefile,
			    WAFL_INO_SUMMARY, blk, &s->sm);
			if (rc == -FL_ECORRUPT)
				ck_error(c, 1, "summary map inode of %s does "
				    "not decode or is out of range", c->label);
		}
		if (rc == -ENOMEM)
			goto out;
		if (rc != 0) {
			c->snaps_incomplete = true;
			continue;
		}
		s->bm_ok = true;
	}
	/* Last, so that the active tree's snapshots mark what they reach
	 * (W9) before these walks prune at it.  Not on a replica: what its
	 * older roots keep is the source's business. */
	rc = 0;
	bool replica = c->fsi.flags & WAFL_FSI_REPLICA;
	for (uint32_t i = 0; rc == 0 && !replica && i < nolder; i++)
		rc = ck_root_snaps(c, &older[i].rb, older[i].owner, done,
		    &ndone, maxdone);
	for (uint32_t i = 0; rc == 0 && !replica && i < c->nsnaps; i++) {
		char owner[96];
		if (!c->snaps[i].adopted || !c->snaps[i].bm_ok)
			continue;
		snprintf(owner, sizeof(owner), "snapshot '%.63s'",
		    c->snaps[i].se.name);
		rc = ck_root_snaps(c, &c->snaps[i].rb, owner, done, &ndone,
		    maxdone);
	}
out:
	free(done);
	free(blk);
	return rc;
}

/* ------------------------------------------------------------ phase 5 */

static int ck_summary(struct ck *c)
{
	const struct wafl_dinode *sm = &c->special[WAFL_INO_SUMMARY];
	uint8_t *or = NULL, *sum = NULL, *tmp = NULL;
	uint64_t extra = 0, missing = 0, first_extra = 0, first_missing = 0;
	uint64_t unkept = 0, first_unkept = 0;
	int rc = 0;

	if (!c->have_special[WAFL_INO_SUMMARY] ||
	    (sm->flags & WAFL_INO_INLINE)) {
		if (c->have_special[WAFL_INO_SUMMARY])
			ck_error(c, 1, "summary map inode is inline");
		return 0;
	}
	if (c->snaps_incomplete) {
		ck_unverified(c, "W9 not verified: a snapshot could not "
		    "be read");
		return 0;
	}
	or = malloc(WAFL_BLOCK_SIZE);
	sum = malloc(WAFL_BLOCK_SIZE);
	tmp = malloc(WAFL_BLOCK_SIZE);
	if (or == NULL || sum == NULL || tmp == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint64_t a = 0; a < c->nareas; a++) {
		bool ok = true;
		memset(or, 0, WAFL_BLOCK_SIZE);
		for (uint32_t i = 0; i < c->nsnaps && ok; i++) {
			rc = ck_lookup_read(c, &c->snaps[i].bm, WAFL_INO_BITMAP,
			    a, tmp, true);
			if (rc == -ENOMEM)
				goto out;
			ok = rc == 0;
			for (uint32_t k = 0; ok && k < WAFL_BLOCK_SIZE; k++)
				or[k] |= tmp[k];
			if (!ok || !c->snaps[i].adopted)
				continue;
			rc = ck_lookup_read(c, &c->snaps[i].sm,
			    WAFL_INO_SUMMARY, a, tmp, true);
			if (rc == -ENOMEM)
				goto out;
			ok = rc == 0;
			for (uint32_t k = 0; ok && k < WAFL_BLOCK_SIZE; k++)
				or[k] |= tmp[k];
		}
		rc = ck_lookup_read(c, sm, WAFL_INO_SUMMARY, a, sum, true);
		if (rc == -ENOMEM)
			goto out;
		if (!ok || rc != 0) {
			rc = 0;
			ck_unverified(c, "W9 not verified for vbns %llu.."
			    "%llu: unreadable", (unsigned long long)(a *
			    CK_AREA_BITS), (unsigned long long)((a + 1) *
			    CK_AREA_BITS - 1));
			continue;
		}
		/* W3: a block only a snapshot reaches is in its bitmap, so
		 * the summary map keeps it from the allocator (an imported
		 * snapshot's rebuilt bitmap, for one). */
		const uint8_t *ss = c->snapseen + a * WAFL_BLOCK_SIZE;
		for (uint32_t i = 0; i < CK_AREA_BITS; i++)
			if (bit_get(ss, i) && !bit_get(sum, i) &&
			    unkept++ == 0)
				first_unkept = a * CK_AREA_BITS + i;
		if (memcmp(or, sum, WAFL_BLOCK_SIZE) == 0)
			continue;
		for (uint32_t i = 0; i < CK_AREA_BITS; i++) {
			uint64_t vbn = a * CK_AREA_BITS + i;
			bool s = bit_get(sum, i), o = bit_get(or, i);
			if (s && !o && extra++ == 0)
				first_extra = vbn;
			if (!s && o && missing++ == 0)
				first_missing = vbn;
		}
	}
	if (extra > 0)
		ck_error_n(c, 9, extra, "vbn %llu in the summary map but in no "
		    "snapshot%s", (unsigned long long)first_extra,
		    more(extra, c->morebuf, sizeof(c->morebuf)));
	if (missing > 0)
		ck_error_n(c, 9, missing, "vbn %llu in a snapshot but not in "
		    "the summary map%s", (unsigned long long)first_missing,
		    more(missing, c->morebuf, sizeof(c->morebuf)));
	if (unkept > 0)
		ck_error_n(c, 3, unkept, "vbn %llu reached from a snapshot "
		    "but not in the summary map%s",
		    (unsigned long long)first_unkept,
		    more(unkept, c->morebuf, sizeof(c->morebuf)));
out:
	free(or);
	free(sum);
	free(tmp);
	return rc;
}

/*
 * The pending list.  A pending block that is active again (after a
 * rollback made an older tree active) is harmless: alloc_release re-tests
 * the active and summary bits before it frees anything.  Nor is a block
 * pending twice (a free and a snapshot delete) whose older entry released
 * it: what must never be allocatable is a block a retained root reaches,
 * and the retained walks check exactly that.
 */
static void ck_pending(struct ck *c)
{
	uint64_t active_again = 0;

	for (uint64_t i = 0; i < c->npend; i++) {
		const struct wafl_pending *p = &c->pend[i];
		if (p->vbn < WAFL_FSINFO_SLOTS || p->vbn >= c->nvbns) {
			ck_error(c, 3, "pending vbn %llu outside the volume",
			    (unsigned long long)p->vbn);
			continue;
		}
		if (p->gen > c->open_gen)
			ck_error(c, 3, "vbn %llu pending for CP %llu, past the "
			    "root %llu and the CP it opens",
			    (unsigned long long)p->vbn,
			    (unsigned long long)p->gen,
			    (unsigned long long)c->fsi.gen);
		if (!c->area_bad[p->vbn / CK_AREA_BITS] &&
		    bit_get(c->act, p->vbn))
			active_again++;
	}
	if (active_again > 0)
		fl_info(CK_SUB, "check: %llu pending blocks are active again "
		    "(they stay allocated)", (unsigned long long)active_again);
}

/* ------------------------------------------------------------ phase 6 */

struct ck_dirctx {
	struct ck *c;
	struct wafl_dinode di;
	struct ck_ino *dir;
	bool io_error;
};

static int ck_df_read(void *ctx, uint64_t fbn, void *buf)
{
	struct ck_dirctx *x = ctx;
	int rc = ck_lookup_read(x->c, &x->di, x->dir->ino, fbn, buf, true);

	/* Unreadable blocks and bad pointers were reported by the walk. */
	if (rc != 0)
		x->io_error = true;
	return rc;
}

static int ck_df_modify(void *ctx, uint64_t fbn, uint8_t **blk)
{
	return -EROFS;
}

static uint64_t ck_df_nblocks(void *ctx)
{
	const struct ck_dirctx *x = ctx;

	return x->di.size / WAFL_BLOCK_SIZE;
}

static bool ent_type_ok(uint8_t t, uint32_t mode)
{
	/* The operation layer stores enum wafl_type codes. */
	uint8_t wt;

	switch (mode & S_IFMT) {
	case S_IFREG: wt = WAFL_REG; break;
	case S_IFDIR: wt = WAFL_DIR; break;
	case S_IFBLK: wt = WAFL_BLK; break;
	case S_IFCHR: wt = WAFL_CHR; break;
	case S_IFLNK: wt = WAFL_LNK; break;
	case S_IFSOCK: wt = WAFL_SOCK; break;
	case S_IFIFO: wt = WAFL_FIFO; break;
	default: return false;
	}
	return t == wt;
}

static int ck_push(struct ck *c, uint64_t ino)
{
	if (c->nstack == c->capstack) {
		uint64_t cap = c->capstack ? c->capstack * 2 : 256;
		uint64_t *n = realloc(c->stack, cap * sizeof(*n));
		if (n == NULL)
			return -ENOMEM;
		c->stack = n;
		c->capstack = cap;
	}
	c->stack[c->nstack++] = ino;
	return 0;
}

static int ck_dir_ent(void *arg, const struct dir_ent *e)
{
	struct ck_dirctx *x = arg;
	struct ck *c = x->c;
	uint64_t d = x->dir->ino;
	struct ck_ino *t;

	if (strcmp(e->name, ".") == 0 || strcmp(e->name, "..") == 0) {
		ck_error(c, 8, "directory %llu stores an entry '%s'",
		    (unsigned long long)d, e->name);
		return 0;
	}
	if (e->ino == WAFL_INO_ROOTDIR) {
		ck_error(c, 8, "entry '%s' in directory %llu names the root "
		    "directory", e->name, (unsigned long long)d);
		return 0;
	}
	if (e->ino < WAFL_INO_FIRST_USER) {
		ck_error(c, 8, "entry '%s' in directory %llu names reserved "
		    "inode %llu", e->name, (unsigned long long)d,
		    (unsigned long long)e->ino);
		return 0;
	}
	t = itab_find(c, e->ino);
	if (t == NULL && c->ifile_incomplete)
		return 0;	/* maybe one of the unreadable inodes */
	if (t == NULL) {
		ck_error(c, 8, "entry '%s' in directory %llu names inode %llu, "
		    "which is free", e->name, (unsigned long long)d,
		    (unsigned long long)e->ino);
		return 0;
	}
	if (!ent_type_ok(e->type, t->mode))
		ck_error(c, 8, "entry '%s' in directory %llu has type %u but "
		    "inode %llu has mode 0%o", e->name, (unsigned long long)d,
		    e->type, (unsigned long long)e->ino, t->mode);
	if ((t->mode & S_IFMT) == S_IFDIR) {
		if (t->links > 0) {
			ck_error(c, 8, "directory %llu reachable twice (again "
			    "as '%s' in directory %llu)",
			    (unsigned long long)e->ino, e->name,
			    (unsigned long long)d);
			if (t->links < UINT32_MAX)
				t->links++;
			return 0;
		}
		t->links = 1;
		x->dir->subdirs++;
		if (t->parent != d)
			ck_error(c, 8, "directory %llu is in directory %llu but "
			    "its parent field says %llu",
			    (unsigned long long)e->ino, (unsigned long long)d,
			    (unsigned long long)t->parent);
		int rc = ck_push(c, e->ino);
		if (rc != 0 && c->fatal == 0)
			c->fatal = rc;
		return 0;
	}
	if (t->links < UINT32_MAX)
		t->links++;
	return 0;
}

static int ck_dir_one(struct ck *c, struct ck_ino *dir)
{
	struct ck_dirctx x = { .c = c, .dir = dir };
	struct dirfile df = {
		.ctx = &x, .read = ck_df_read, .modify = ck_df_modify,
		.nblocks = ck_df_nblocks, .hash_key = c->fsi.dir_key,
	};
	const char *why = NULL;
	int rc;

	dir->flags |= CKI_DIR_VISITED;
	c->res->dirs_checked++;
	rc = ck_read_inode(c, dir->ino, &x.di);
	if (rc == -ENOMEM)
		return rc;
	if (rc != 0 || (x.di.mode & S_IFMT) != S_IFDIR ||
	    (x.di.flags & WAFL_INO_INLINE)) {
		c->dirs_incomplete++;
		if (rc == 0)
			ck_error(c, 8, "directory %llu has an inline or "
			    "non-directory inode", (unsigned long long)dir->ino);
		return 0;
	}
	rc = dir_check(&df, ck_dir_ent, &x, &why);
	if (c->fatal != 0)
		return c->fatal;
	if (rc == -ENOMEM) {
		/* dir_check sizes its maps from the header: a hostile
		 * header can ask for more than memory holds. */
		c->dirs_incomplete++;
		ck_error(c, 8, "directory %llu: index of %llu blocks cannot "
		    "be checked: %s", (unsigned long long)dir->ino,
		    (unsigned long long)(x.di.size / WAFL_BLOCK_SIZE),
		    fl_strerror(rc));
		return 0;
	}
	if (rc != 0) {
		c->dirs_incomplete++;
		if (!x.io_error)
			ck_error(c, 8, "directory %llu: index corrupt: %s",
			    (unsigned long long)dir->ino,
			    why != NULL ? why : fl_strerror(rc));
	}
	return 0;
}

static bool ck_listed_orphan(const struct ck *c, uint64_t ino)
{
	for (uint32_t i = 0; i < c->rb.norphans; i++)
		if (c->rb.orphans[i] == ino)
			return true;
	return false;
}

/* W8: every inode the root block's orphan list names is allocated, with
 * nlink 0 and no directory entry (orphan.c).  An inode with nlink 0 that
 * the list lacks is reported by the link count loop as an orphan. */
static void ck_orphan_list(struct ck *c)
{
	for (uint32_t i = 0; i < c->rb.norphans; i++) {
		uint64_t ino = c->rb.orphans[i];
		struct ck_ino *r = itab_find(c, ino);
		if (r == NULL)
			ck_error(c, 8, "the orphan list names inode %llu, "
			    "which is free", (unsigned long long)ino);
		else if (r->nlink != 0 || r->links != 0)
			ck_error(c, 8, "the orphan list names inode %llu, "
			    "which has nlink %u and %u directory entries",
			    (unsigned long long)ino, r->nlink, r->links);
	}
}

static int ck_namespace(struct ck *c)
{
	struct ck_ino *root = itab_find(c, WAFL_INO_ROOTDIR);
	int rc = 0;

	if (root == NULL || (root->mode & S_IFMT) != S_IFDIR) {
		if (!c->ifile_incomplete)
			ck_error(c, 8, "root directory (inode 2) is not an "
			    "allocated directory");
		ck_unverified(c, "link counts not verified");
		return 0;
	}
	if (root->parent != WAFL_INO_ROOTDIR)
		ck_error(c, 8, "root directory's parent field says %llu, not "
		    "itself", (unsigned long long)root->parent);
	rc = ck_push(c, WAFL_INO_ROOTDIR);
	while (rc == 0 && c->nstack > 0) {
		uint64_t d = c->stack[--c->nstack];
		struct ck_ino *dir = itab_find(c, d);
		if (dir == NULL || (dir->flags & CKI_DIR_VISITED))
			continue;
		rc = ck_dir_one(c, dir);
	}
	if (rc != 0)
		return rc;

	/* Counts are exact only when every directory and inode was read. */
	bool complete = c->dirs_incomplete == 0 && !c->ifile_incomplete;
	if (!complete)
		ck_unverified(c, "W8 link counts not verified: %llu "
		    "directories unreadable%s", (unsigned long long)
		    c->dirs_incomplete, c->ifile_incomplete ?
		    ", inode file incomplete" : "");
	if (complete)
		ck_orphan_list(c);
	for (uint64_t i = 0; i < c->icap; i++) {
		struct ck_ino *r = &c->itab[i];
		bool isdir = (r->mode & S_IFMT) == S_IFDIR;
		if (r->ino == CK_EMPTY)
			continue;
		if (isdir && complete && (r->flags & CKI_DIR_VISITED) &&
		    r->nlink != 2 + r->subdirs)
			ck_error(c, 8, "directory %llu has nlink %u but %u "
			    "subdirectories (expected %u)",
			    (unsigned long long)r->ino, r->nlink, r->subdirs,
			    2 + r->subdirs);
		if (r->ino == WAFL_INO_ROOTDIR || !complete)
			continue;
		if (r->links == 0 && r->nlink == 0 && ck_listed_orphan(c,
		    r->ino))
			continue;	/* an orphan freed later (orphan.c) */
		if (r->links == 0) {
			ck_error(c, 8, "inode %llu (mode 0%o, nlink %u) is "
			    "allocated but in no directory (orphan)",
			    (unsigned long long)r->ino, r->mode, r->nlink);
			continue;
		}
		if (!isdir && r->nlink != r->links)
			ck_error(c, 8, "inode %llu has nlink %u but %u "
			    "directory entries name it",
			    (unsigned long long)r->ino, r->nlink, r->links);
	}
	return 0;
}

/* ------------------------------------------------------------ phase 7 */

static int ck_log_rec(void *arg, uint64_t lsn, uint64_t gen, uint16_t type,
    const void *payload, uint32_t len)
{
	struct ck *c = arg;
	uint64_t open_gen = __atomic_load_n(&c->v->open_gen, __ATOMIC_ACQUIRE);

	c->log_records++;
	if (gen > open_gen)
		ck_error(c, 7, "NVLOG record %llu belongs to generation %llu, "
		    "beyond the open generation %llu", (unsigned long long)lsn,
		    (unsigned long long)gen, (unsigned long long)open_gen);
	return 0;
}

static void ck_nvlog(struct ck *c)
{
	struct wafl_vol *v = c->v;
	struct nvlog *lg;
	int rc;

	if (v->log == NULL || v->opts.nvlog_path == NULL)
		return;
	/* Committed records may still be staged in memory (a flush writes
	 * them): write them, so that the file holds every one.  A failed
	 * log leaves what is on disk, which is what a reopen replays.  Not
	 * nvlog_sync: under cp_serial this thread must not lead flushes,
	 * which it would go on doing, with CPs held off, for as long as
	 * other threads queue callbacks. */
	(void)nvlog_write_staged(v->log);
	/* A second handle: the live one has started appending and cannot
	 * replay.  half_bytes 0 never creates or formats a file. */
	rc = nvlog_open(v->opts.nvlog_path, 0, &lg);
	if (rc != 0) {
		ck_error(c, 7, "NVLOG %s cannot be opened: %s",
		    v->opts.nvlog_path, fl_strerror(rc));
		return;
	}
	rc = nvlog_replay(lg, c->fsi.gen, ck_log_rec, c);
	if (rc != 0)
		ck_error(c, 7, "NVLOG %s unreadable: %s", v->opts.nvlog_path,
		    fl_strerror(rc));
	nvlog_close(lg);
	c->det->log_records = c->log_records;
}

/* --------------------------------------------------------------- main */

static void (*check_test_hook)(struct wafl_vol *v);

void wafl_check_set_test_hook(void (*fn)(wafl_vol_t *v))
{
	__atomic_store_n(&check_test_hook, fn, __ATOMIC_RELEASE);
}

static void check_unpin(struct ck *c)
{
	for (unsigned i = 0; i < c->npinned; i++)
		roots_unpin(c->v, c->pinned[i]);
	c->npinned = 0;
}

/* Pin gen's root, once; false if no pin slot is left. */
static bool check_pin(struct ck *c, uint64_t gen, const struct wafl_bp *root)
{
	for (unsigned i = 0; i < c->npinned; i++)
		if (c->pinned[i] == gen)
			return true;
	if (c->npinned == WAFL_MAX_PINS || roots_pin(c->v, gen, root) != 0)
		return false;
	c->pinned[c->npinned++] = gen;
	return true;
}

/*
 * Under cp_serial: what the check compares with (the durable fsinfo, the
 * holds and the pending list as of that fsinfo), and, on a writable
 * volume, a pin on every root the walk will read: the durable root, the
 * older roots of its ring and every held root, each with its snapshots.
 * Then CPs may go on while the walk runs (the caller drops cp_serial
 * after the fsinfo phase): no block the walk reads is reused meanwhile.
 * On a replica the roots are the source's business (a newer root written
 * there may reuse blocks of an older one), so the check keeps cp_serial,
 * which holds the replica's switch, as it does when the pins do not fit.
 */
static int check_begin(struct ck *c)
{
	struct wafl_vol *v = c->v;
	int rc = 0;

	cp_lock_excl(v);
	c->fsi = v->fsi;
	c->nvbns = v->nvbns;
	c->open_gen = FL_MAX(v->open_gen, c->fsi.gen + 1);
	memcpy(c->holds, v->holds, sizeof(c->holds));
	c->npend = v->npending;
	c->pend = malloc((c->npend + 1) * sizeof(*c->pend));
	if (c->pend == NULL)
		rc = -ENOMEM;
	else if (c->npend > 0)
		memcpy(c->pend, v->pending, c->npend * sizeof(*c->pend));
	c->online = rc == 0 && !v->readonly;
	for (uint32_t i = 0; c->online && i < c->fsi.ring_len &&
	    i < WAFL_RING_K; i++)
		c->online = check_pin(c, c->fsi.ring[i].gen,
		    &c->fsi.ring[i].root);
	for (unsigned h = 0; c->online && h < WAFL_MAX_HOLDS; h++)
		if (c->holds[h].gen != 0)
			c->online = check_pin(c, c->holds[h].gen,
			    &c->holds[h].root);
	/* Counted before cp_lock goes, so that a writer short of space
	 * finds the pins' check to ask (check_mu nests inside cp_lock). */
	if (c->online && c->npinned > 0) {
		pthread_mutex_lock(&v->check_mu);
		v->checks_pinned++;
		pthread_mutex_unlock(&v->check_mu);
	}
	pthread_rwlock_unlock(&v->cp_lock);
	if (!c->online && c->npinned > 0) {
		fl_info(CK_SUB, "check: no pin slot left: consistency points "
		    "wait for the check");
		check_unpin(c);
	}
	return rc;
}

static void check_end(struct ck *c)
{
	struct wafl_vol *v = c->v;
	bool pinned = c->npinned > 0;

	check_unpin(c);
	pthread_mutex_lock(&v->check_mu);
	v->checks--;
	if (pinned && --v->checks_pinned == 0)
		__atomic_store_n(&v->check_yield, false, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&v->check_cv);
	pthread_mutex_unlock(&v->check_mu);
}

bool check_yield_space(struct wafl_vol *v, uint64_t need)
{
	struct timespec until;
	bool had;

	/* Only if the pins alone keep some pending frees: behind a
	 * mirror's older hold, stopping the check gives nothing back. */
	pthread_rwlock_rdlock(&v->cp_lock);
	had = pins_keep_oldest(v, FL_MAX(need, 1));
	pthread_rwlock_unlock(&v->cp_lock);
	if (!had)
		return false;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += CHECK_YIELD_WAIT_MS / 1000;
	pthread_mutex_lock(&v->check_mu);
	had = v->checks_pinned > 0;
	if (had) {
		if (!v->check_yield)
			fl_warn(CK_SUB, "check: stopping the online check: "
			    "writes need the blocks its pinned roots keep");
		__atomic_store_n(&v->check_yield, true, __ATOMIC_RELEASE);
	}
	while (v->checks_pinned > 0 &&
	    pthread_cond_timedwait(&v->check_cv, &v->check_mu, &until) == 0)
		;
	pthread_mutex_unlock(&v->check_mu);
	return had;
}

static int check_run(struct wafl_vol *v, struct wafl_check_result *res,
    struct wafl_check_detail *det, const _Atomic bool *cancel)
{
	struct wafl_check_detail dummy;
	struct ck *c;
	bool serial = false;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	if (det == NULL)
		det = &dummy;
	memset(det, 0, sizeof(*det));
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->v = v;
	c->res = res;
	c->det = det;
	c->cancel = cancel;

	/* Counted before anything else, so that an unmount waits for it;
	 * none starts once an unmount does. */
	pthread_mutex_lock(&v->check_mu);
	bool refused = v->unmounting;
	if (!refused)
		v->checks++;
	pthread_mutex_unlock(&v->check_mu);
	if (refused) {
		free(c);
		return FL_ERR(-ESHUTDOWN);
	}
	pthread_mutex_lock(&v->cp_serial);
	serial = true;
	rc = check_begin(c);
	if (rc != 0)
		goto out;
	c->nareas = FL_DIV_ROUND_UP_U64(c->nvbns, CK_AREA_BITS);
	c->reach = calloc(c->nareas, WAFL_BLOCK_SIZE);
	c->seen = calloc(c->nareas, WAFL_BLOCK_SIZE);
	c->snapseen = calloc(c->nareas, WAFL_BLOCK_SIZE);
	c->act = calloc(c->nareas, WAFL_BLOCK_SIZE);
	c->area_bad = calloc(c->nareas, sizeof(bool));
	if (c->reach == NULL || c->seen == NULL || c->act == NULL ||
	    c->area_bad == NULL || c->snapseen == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = ck_fsinfo(c);
	if (rc == 0 && c->online) {
		/* From here on only the pinned roots are read. */
		pthread_mutex_unlock(&v->cp_serial);
		serial = false;
	}
	void (*hook)(struct wafl_vol *) = __atomic_load_n(&check_test_hook,
	    __ATOMIC_ACQUIRE);
	if (hook != NULL && rc == 0)
		hook(v);
	if (rc == 0)
		rc = ck_active(c);
	if (rc == -FL_ECORRUPT) {
		/* No active tree to check beyond this point. */
		rc = 0;
		goto out;
	}
	if (rc == 0)
		rc = ck_active_bitmap(c);
	if (rc == 0)
		rc = ck_snaptable(c);
	if (rc == 0)
		rc = ck_retained(c);
	if (rc == 0)
		rc = ck_summary(c);
	if (rc == 0) {
		ck_pending(c);
		rc = ck_namespace(c);
	}
	if (rc == 0 && !ck_cancelled(c)) {
		/* No CP switches the log's halves under the scan. */
		if (!serial) {
			pthread_mutex_lock(&v->cp_serial);
			serial = true;
		}
		ck_nvlog(c);
	}
out:
	if (serial)
		pthread_mutex_unlock(&v->cp_serial);
	check_end(c);
	/* Cancelled while it ran (a cancel after the end changes nothing). */
	if (c->cancelled) {
		/* Nothing it found means anything. */
		memset(res, 0, sizeof(*res));
		memset(det, 0, sizeof(*det));
		rc = c->yielded ? FL_ERR(-ENOSPC) : -ECANCELED;
	}
	if (rc == 0 && res->errors > 0)
		rc = -FL_ECORRUPT;
	if (rc == 0)
		fl_info(CK_SUB, "check: generation %llu clean: %llu blocks, "
		    "%llu inodes, %llu directories, %llu snapshots, %llu "
		    "NVLOG records newer than the root",
		    (unsigned long long)c->fsi.gen,
		    (unsigned long long)res->blocks_checked,
		    (unsigned long long)res->inodes_checked,
		    (unsigned long long)res->dirs_checked,
		    (unsigned long long)det->snapshots,
		    (unsigned long long)det->log_records);
	else if (rc == -FL_ECORRUPT)
		fl_err(CK_SUB, "check: generation %llu: %llu errors (%llu "
		    "blocks, %llu inodes, %llu directories checked); first: %s",
		    (unsigned long long)c->fsi.gen,
		    (unsigned long long)res->errors,
		    (unsigned long long)res->blocks_checked,
		    (unsigned long long)res->inodes_checked,
		    (unsigned long long)res->dirs_checked, res->first_error);
	else if (rc == -ECANCELED)
		fl_info(CK_SUB, "check: generation %llu: cancelled",
		    (unsigned long long)c->fsi.gen);
	else if (c->yielded)
		fl_warn(CK_SUB, "check: generation %llu: stopped: writes "
		    "needed the blocks its pins kept (the volume is nearly "
		    "full); check again with more free space, or offline",
		    (unsigned long long)c->fsi.gen);
	else
		fl_err(CK_SUB, "check: could not run to completion: %s",
		    fl_strerror(rc));
	free(c->reach);
	free(c->seen);
	free(c->snapseen);
	free(c->act);
	free(c->area_bad);
	free(c->itab);
	free(c->snaps);
	free(c->stack);
	free(c->pend);
	free(c);
	return rc;
}

int wafl_check_detail(struct wafl_vol *v, struct wafl_check_result *res,
    struct wafl_check_detail *det)
{
	return check_run(v, res, det, NULL);
}

int wafl_check(wafl_vol_t *v, struct wafl_check_result *res)
{
	return check_run(v, res, NULL, NULL);
}

int wafl_check_cancellable(wafl_vol_t *v, struct wafl_check_result *res,
    const _Atomic bool *cancel)
{
	return check_run(v, res, NULL, cancel);
}
