/*
 * wafl/replica.c: what the mirror stands on.
 *
 *   holds      roots the mirror needs kept intact on the source: the root a
 *              destination serves (its acknowledged generation) and the
 *              root a transfer walks.  The allocator treats them as
 *              retained (W3), so blocks a destination may still be reading
 *              are never reused on the source, and therefore never
 *              overwritten on the destination by a later CP's blocks.
 *              Every held root is recorded in the fsinfo the next CP
 *              writes (fsinfo.holds), and mount holds them again: a hold
 *              survives an unmount and a crash.  Crash ordering: a root is
 *              held only while it is in the ring or already recorded, and
 *              the CP that moves it out of the ring is the CP that records
 *              the hold, so no durable fsinfo ever loses a held root.  A
 *              release reaches the disk with the next CP, and until that
 *              CP's fsinfo is durable the released root keeps its slot
 *              (refs 0) and its blocks (allocator, pending frees): a crash
 *              before then mounts the older fsinfo, which still records
 *              the hold, and its tree must be whole.  Hold and release take
 *              cp_serial, so the hold list cannot change between a CP's
 *              freeze (which copies it) and its fsinfo write.
 *   birth walk every block of a root born after a generation, descending
 *              only into younger pointers: O(changed blocks), and nothing
 *              on the destination is read or compared.
 *   replica    a read-only mount that switches atomically to a newer root
 *              written to its disks by someone else (the mirror receiver).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "wafl/wafl_impl.h"

FL_STATIC_ASSERT(WAFL_MAX_HOLDS <= WAFL_FSI_HOLDS,
    "every hold fits in fsinfo");

uint64_t retained_oldest_unpinned(struct wafl_vol *v)
{
	uint64_t oldest = v->fsi.ring_len > 0 ?
	    v->fsi.ring[v->fsi.ring_len - 1].gen : v->durable_gen;

	for (unsigned h = 0; h < WAFL_MAX_HOLDS; h++)
		if (v->holds[h].gen != 0 && v->holds[h].gen < oldest)
			oldest = v->holds[h].gen;
	return oldest;
}

uint64_t retained_oldest_gen(struct wafl_vol *v)
{
	uint64_t oldest = retained_oldest_unpinned(v);

	for (unsigned p = 0; p < WAFL_MAX_PINS; p++)
		if (v->pins[p].gen != 0 && v->pins[p].gen < oldest)
			oldest = v->pins[p].gen;
	return oldest;
}

bool pins_keep_oldest(struct wafl_vol *v, uint64_t need)
{
	/* A free tagged g leaves once g <= the oldest retained generation
	 * (alloc_release): without the pins, those in (with, without]. */
	return pending_tagged(v, retained_oldest_gen(v),
	    retained_oldest_unpinned(v), need) >= need;
}

int roots_pin(struct wafl_vol *v, uint64_t gen, const struct wafl_bp *root)
{
	int free_slot = -1;

	for (unsigned p = 0; p < WAFL_MAX_PINS; p++) {
		if (v->pins[p].gen == gen) {
			v->pins[p].refs++;
			return 0;
		}
		if (v->pins[p].gen == 0 && free_slot < 0)
			free_slot = (int)p;
	}
	if (free_slot < 0)
		return FL_ERR(-ENOSPC);
	v->pins[free_slot] = (struct wafl_pin){ gen, *root, 1 };
	return 0;
}

/*
 * No slot is kept until a CP, unlike a released hold: a pin was never
 * in any fsinfo, so no root a crash could mount needs its blocks.  Areas
 * loaded while it stood keep its blocks unavailable through pending
 * entries (area_load), which the next CPs release.
 */
void roots_unpin(struct wafl_vol *v, uint64_t gen)
{
	cp_lock_excl(v);
	for (unsigned p = 0; p < WAFL_MAX_PINS; p++)
		if (v->pins[p].gen == gen && --v->pins[p].refs == 0)
			memset(&v->pins[p], 0, sizeof(v->pins[p]));
	pthread_rwlock_unlock(&v->cp_lock);
}

/* Root pointer of gen from the ring or the holds (not a released one,
 * whose blocks are only kept until the next CP). Caller holds cp_lock.
 * Only these roots can be held: each retains its snapshots too (a
 * snapshot the active tree deletes stays pending behind it, W3), which
 * a snapshot's root does not (its own snapshot table may name snapshots
 * deleted since). */
static int find_root(struct wafl_vol *v, uint64_t gen, struct wafl_bp *root)
{
	for (unsigned i = 0; i < v->fsi.ring_len; i++) {
		if (v->fsi.ring[i].gen == gen) {
			*root = v->fsi.ring[i].root;
			return 0;
		}
	}
	for (unsigned h = 0; h < WAFL_MAX_HOLDS; h++) {
		if (v->holds[h].gen == gen && v->holds[h].refs > 0) {
			*root = v->holds[h].root;
			return 0;
		}
	}
	return -ENOENT;
}

int root_of_gen(struct wafl_vol *v, uint64_t gen, struct wafl_bp *root)
{
	int rc = find_root(v, gen, root);

	return rc == -ENOENT ? snap_exact_root(v, gen, root) : rc;
}

/*
 * The hold list as the next fsinfo records it: distinct generations,
 * oldest first.  Caller holds cp_serial and cp_lock exclusive.  The next
 * CP records it; an unmount runs one for it even with nothing else to
 * write (holds_unwritten), or a hold taken, or released, since the last
 * CP would not last past the unmount.  (A crash before the next CP may
 * lose it: a mirror source checks at every session that the root the
 * destination serves is still retained, M6.)
 */
static void holds_to_fsinfo(struct wafl_vol *v)
{
	struct wafl_fsinfo *f = &v->fsi;

	v->holds_unwritten = true;
	f->nholds = 0;
	memset(f->holds, 0, sizeof(f->holds));
	for (unsigned h = 0; h < WAFL_MAX_HOLDS; h++) {
		if (v->holds[h].gen == 0 || v->holds[h].refs == 0)
			continue;	/* free, or released */
		/* insertion by generation */
		unsigned k = f->nholds;
		VERIFY(k < WAFL_FSI_HOLDS);
		while (k > 0 && f->holds[k - 1].gen > v->holds[h].gen) {
			f->holds[k] = f->holds[k - 1];
			k--;
		}
		f->holds[k] = (struct wafl_ring_ent){ v->holds[h].gen,
		    v->holds[h].root };
		f->nholds++;
	}
}

void holds_restore(struct wafl_vol *v)
{
	memset(v->holds, 0, sizeof(v->holds));
	for (unsigned i = 0; i < v->fsi.nholds && i < WAFL_MAX_HOLDS; i++)
		v->holds[i] = (struct wafl_hold){ v->fsi.holds[i].gen,
		    v->fsi.holds[i].root, 1 };
	if (v->fsi.nholds > 0)
		fl_info("wafl", "%u held root(s) restored, oldest generation "
		    "%llu", v->fsi.nholds,
		    (unsigned long long)v->fsi.holds[0].gen);
}

void holds_retire(struct wafl_vol *v)
{
	bool gone = false;

	for (unsigned h = 0; h < WAFL_MAX_HOLDS; h++) {
		if (v->holds[h].gen == 0 || v->holds[h].refs > 0)
			continue;
		for (unsigned i = 0; i < v->fsi.nholds; i++)
			VERIFY(v->fsi.holds[i].gen != v->holds[h].gen);
		memset(&v->holds[h], 0, sizeof(v->holds[h]));
		gone = true;
	}
	/* Areas loaded while they were held keep their blocks unavailable:
	 * reload them lazily. */
	if (gone)
		alloc_reset_areas(v);
}

int wafl_held_roots(wafl_vol_t *v, uint64_t *gens, size_t max, size_t *n)
{
	size_t k = 0;

	pthread_rwlock_rdlock(&v->cp_lock);
	for (unsigned h = 0; h < WAFL_MAX_HOLDS; h++) {
		if (v->holds[h].gen == 0 || v->holds[h].refs == 0)
			continue;
		if (k < max)
			gens[k] = v->holds[h].gen;
		k++;
	}
	pthread_rwlock_unlock(&v->cp_lock);
	*n = k;
	return 0;
}

/* Caller holds cp_serial and cp_lock exclusive. */
static int hold_locked(struct wafl_vol *v, uint64_t gen)
{
	struct wafl_bp root;
	int free_slot = -1;
	int rc = find_root(v, gen, &root);

	if (rc != 0)
		return rc;
	for (unsigned h = 0; h < WAFL_MAX_HOLDS; h++) {
		if (v->holds[h].gen == gen) {
			/* released but still in the ring: held again */
			if (v->holds[h].refs++ == 0)
				holds_to_fsinfo(v);
			return 0;
		}
		if (v->holds[h].gen == 0 && free_slot < 0)
			free_slot = (int)h;
	}
	if (free_slot < 0)
		return FL_ERR(-ENOSPC);
	v->holds[free_slot] = (struct wafl_hold){ gen, root, 1 };
	holds_to_fsinfo(v);
	return 0;
}

/* One more CP even with nothing dirty (it rewrites the summary map's
 * inode slot): a newer root. */
static int cp_force(struct wafl_vol *v)
{
	cp_lock_excl(v);
	wnode_dirty(v->summary_wn);
	pthread_rwlock_unlock(&v->cp_lock);
	return cp_run(v);
}

/* A released hold keeps its slot until a durable fsinfo no longer
 * records it (holds_retire, at the next CP).  Caller holds cp_lock. */
static bool holds_released(const struct wafl_vol *v)
{
	for (unsigned h = 0; h < WAFL_MAX_HOLDS; h++)
		if (v->holds[h].gen != 0 && v->holds[h].refs == 0)
			return true;
	return false;
}

int wafl_hold_root(wafl_vol_t *v, uint64_t gen)
{
	int rc;

	for (int tries = 0;; tries++) {
		pthread_mutex_lock(&v->cp_serial);
		cp_lock_excl(v);
		rc = hold_locked(v, gen);
		bool retire = rc == -ENOSPC && holds_released(v) &&
		    !v->readonly && tries == 0;
		pthread_rwlock_unlock(&v->cp_lock);
		pthread_mutex_unlock(&v->cp_serial);
		if (!retire)
			return rc;
		/* Every slot taken, some by released holds: one CP frees
		 * those (with no other CP coming, they never would be). */
		rc = cp_force(v);
		if (rc != 0)
			return rc;
	}
}

int wafl_hold_newest(wafl_vol_t *v, uint64_t base, uint64_t *gen)
{
	int rc = 0;

	for (int tries = 0; tries < 3; tries++) {
		/* Chosen and held under the same locks: CPs that complete
		 * while the caller waits for them cannot push the chosen
		 * root out of the ring. */
		pthread_mutex_lock(&v->cp_serial);
		cp_lock_excl(v);
		/* Generations can skip (the CP after an NVLOG replay takes
		 * the records' newest, or one more), so the one before the
		 * newest may not exist: the newest ring root at an odd
		 * distance. */
		uint64_t g = 0;
		for (unsigned i = 0; i < v->fsi.ring_len && g == 0; i++) {
			uint64_t r = v->fsi.ring[i].gen;
			if (r > base && (base == 0 || (r - base) % 2 == 1))
				g = r;
		}
		if (g == 0)
			rc = v->durable_gen <= base ? -EALREADY : -ENOENT;
		else
			rc = hold_locked(v, g);
		bool retire = rc == -ENOSPC && holds_released(v);
		pthread_rwlock_unlock(&v->cp_lock);
		pthread_mutex_unlock(&v->cp_serial);
		if (rc == 0)
			*gen = g;
		if (retire && !v->readonly) {
			/* released holds' slots: one CP frees them */
			rc = cp_force(v);
			if (rc != 0)
				break;
			rc = -ENOSPC;
			continue;
		}
		if (rc != -ENOENT || g != 0 || v->readonly)
			break;
		/* none at an odd distance: a newer root is */
		rc = cp_force(v);
		if (rc != 0)
			break;
		rc = -ENOENT;
	}
	return rc;
}

void wafl_release_root(wafl_vol_t *v, uint64_t gen)
{
	pthread_mutex_lock(&v->cp_serial);
	cp_lock_excl(v);
	for (unsigned h = 0; h < WAFL_MAX_HOLDS; h++) {
		if (v->holds[h].gen == gen && v->holds[h].refs > 0 &&
		    --v->holds[h].refs == 0) {
			/* Out of the next fsinfo; its blocks stay kept until
			 * that fsinfo is durable (holds_retire). */
			holds_to_fsinfo(v);
		}
	}
	pthread_rwlock_unlock(&v->cp_lock);
	pthread_mutex_unlock(&v->cp_serial);
}

int wafl_root_of(wafl_vol_t *v, uint64_t gen, uint8_t blk[4096])
{
	struct wafl_fsinfo f;
	int rc;

	pthread_rwlock_rdlock(&v->cp_lock);
	f = v->fsi;
	rc = root_of_gen(v, gen, &f.root);
	pthread_rwlock_unlock(&v->cp_lock);
	if (rc != 0)
		return rc;
	/* The fsinfo of gen as the source would have written it: the ring
	 * keeps the entries at and before gen. */
	unsigned k = 0;
	struct wafl_ring_ent ring[WAFL_RING_K];
	ring[k++] = (struct wafl_ring_ent){ gen, f.root };
	for (unsigned i = 0; i < f.ring_len && k < WAFL_RING_K; i++)
		if (f.ring[i].gen < gen)
			ring[k++] = f.ring[i];
	memcpy(f.ring, ring, sizeof(ring));
	f.ring_len = k;
	f.gen = gen;
	/* Holds are this volume's business, not the destination's. */
	f.nholds = 0;
	memset(f.holds, 0, sizeof(f.holds));
	wafl_fsinfo_encode(blk, &f);
	return 0;
}

/* ---------------------------------------------------------- birth walk */

#define WALK_RA_MAX	1024u	/* blocks read ahead at most (4 MiB) */

struct walk {
	struct wafl_vol *v;
	uint64_t after;
	wafl_walk_fn *fn;
	void *arg;
	uint64_t blocks;
	uint8_t *run;		/* WAFL_BPS_PER_BLOCK blocks (walk_leaves) */
	/* Read-ahead of the leaves (walk_run): ra holds ra_n blocks from
	 * ra_vbn; seq_next is where the last run asked for ended. */
	uint8_t *ra;		/* WALK_RA_MAX blocks */
	uint64_t ra_vbn, seq_next;
	uint64_t pf_end;	/* prefetched up to here */
	uint32_t ra_n, ra_win;
};

static int walk_tree(struct walk *w, const struct wafl_dinode *di,
    bool is_ifile, bool meta);

/*
 * The n blocks from vbn, read with raid_read: a pointer to them, or NULL
 * if they could not be read.  Runs that follow one another (a file
 * written in order: each level-1 node's leaves start where the last
 * one's ended) are read ahead, in a window that doubles from the run's
 * size up to WALK_RA_MAX, so that the disks get a few large reads rather
 * than one per 128 blocks and its round trip; a run that does not follow
 * the last reads only itself, so a catch-up of scattered blocks reads
 * nothing it does not send.  The blocks are checked by the caller like
 * any other (W1); what is read ahead and not asked for is not used.
 */
static const uint8_t *walk_run(struct walk *w, uint64_t vbn, uint32_t n)
{
	const size_t B = WAFL_BLOCK_SIZE;
	uint64_t ra_end = w->ra_vbn + w->ra_n;

	if (vbn + n > w->v->nvbns)
		return NULL;
	if (w->ra_n > 0 && vbn >= w->ra_vbn && vbn + n <= ra_end) {
		w->seq_next = vbn + n;
		return w->ra + (vbn - w->ra_vbn) * B;
	}
	bool seq = w->ra != NULL && vbn == w->seq_next;
	w->seq_next = vbn + n;
	if (!seq) {
		w->ra_win = n;
		w->ra_n = 0;
		w->pf_end = 0;
		return raid_read(w->v->raid, vbn, n, w->run) == 0 ? w->run :
		    NULL;
	}
	w->ra_win = (uint32_t)FL_MIN((uint64_t)w->ra_win * 2, WALK_RA_MAX);
	/* What the window holds of this run stays; the rest is read from
	 * where the window ended, which is where the prefetch began. */
	uint32_t keep = 0;
	if (w->ra_n > 0 && vbn >= w->ra_vbn && vbn < ra_end) {
		keep = (uint32_t)(ra_end - vbn);
		memmove(w->ra, w->ra + (vbn - w->ra_vbn) * B, keep * B);
	}
	uint64_t from = vbn + keep;
	uint32_t want = (uint32_t)FL_MIN(FL_MAX(w->ra_win, n), WALK_RA_MAX) -
	    keep;
	want = (uint32_t)FL_MIN(want, w->v->nvbns - from);
	w->ra_n = 0;
	if (raid_read(w->v->raid, from, want, w->ra + keep * B) != 0) {
		/* The run alone, so that one bad block ahead costs the
		 * read-ahead, not the run. */
		return raid_read(w->v->raid, vbn, n, w->run) == 0 ? w->run :
		    NULL;
	}
	w->ra_vbn = vbn;
	w->ra_n = keep + want;
	/* The next two windows are on their way (the disks' read-ahead)
	 * while this one is checked and handed on: the disks never wait
	 * for this thread to come back for more. */
	uint64_t pf_to = from + want + 2 * FL_MIN((uint64_t)w->ra_win * 2,
	    WALK_RA_MAX);
	uint64_t pf_from = FL_MAX(from + want, w->pf_end);
	if (pf_from < pf_to) {
		raid_prefetch(w->v->raid, pf_from, pf_to - pf_from);
		w->pf_end = pf_to;
	}
	return w->ra;
}

/*
 * The children of a pointer block above level 1 that the walk will read
 * (born after `after`), asked for ahead (raid_prefetch), a run of
 * consecutive VBNs at a time: a CP allocates a file's level-1 blocks
 * together, so the walk otherwise reads them one round trip each.
 */
static void walk_prefetch_children(struct walk *w, const uint8_t *blk)
{
	uint64_t first = 0, n = 0;

	for (unsigned c = 0; c <= WAFL_BPS_PER_BLOCK; c++) {
		struct wafl_bp cbp = { 0 };
		if (c < WAFL_BPS_PER_BLOCK &&
		    (wafl_bp_decode(blk + c * WAFL_BP_SIZE, &cbp) != 0 ||
		    cbp.birth <= w->after))
			cbp.vbn = 0;
		if (n > 0 && cbp.vbn == first + n) {
			n++;
			continue;
		}
		if (n > 1)
			raid_prefetch(w->v->raid, first, n);
		first = cbp.vbn;
		n = cbp.vbn != 0 ? 1 : 0;
	}
}

/*
 * The children of a file's level-1 node are data blocks: each run of
 * consecutive VBNs among them is read at once (walk_run, which reads
 * ahead of a file read in order),
 * and every block is checked against its pointer (W1) before it is
 * handed on; one that does not check, or a run that cannot be read, goes
 * the single-block way (block cache, reconstruction from parity).  The
 * order of the blocks handed on is the same as walk_node's.
 */
static int walk_leaves(struct walk *w, const struct wafl_bp *bp,
    const uint8_t *blk, unsigned flags)
{
	struct wafl_bp cbp[WAFL_BPS_PER_BLOCK];
	int rc;

	for (unsigned c = 0; c < WAFL_BPS_PER_BLOCK; c++) {
		rc = wafl_bp_decode(blk + c * WAFL_BP_SIZE, &cbp[c]);
		if (rc == 0 && cbp[c].vbn != 0 && cbp[c].birth > bp->birth)
			rc = FL_ERR(-FL_ECORRUPT);	/* W2 */
		if (rc != 0)
			return rc;
	}
	for (unsigned c = 0; c < WAFL_BPS_PER_BLOCK;) {
		if (cbp[c].vbn == 0 || cbp[c].birth <= w->after) {
			c++;
			continue;
		}
		unsigned n = 1;
		while (c + n < WAFL_BPS_PER_BLOCK &&
		    cbp[c + n].vbn == cbp[c].vbn + n &&
		    cbp[c + n].birth > w->after)
			n++;
		const uint8_t *got = walk_run(w, cbp[c].vbn, n);
		for (unsigned k = 0; k < n; k++, c++) {
			const uint8_t *b = got + (size_t)k * WAFL_BLOCK_SIZE;
			if (got == NULL || fl_crc32c(0, b, WAFL_BLOCK_SIZE) !=
			    cbp[c].cksum) {
				/* The single-block way, into the scratch
				 * run (not the read-ahead, which others
				 * may still use). */
				uint8_t *one = w->run + (size_t)k *
				    WAFL_BLOCK_SIZE;
				rc = wafl_read_bp(w->v, &cbp[c], one);
				if (rc != 0)
					return rc;
				b = one;
			}
			rc = w->fn(w->arg, cbp[c].vbn, cbp[c].birth,
			    cbp[c].cksum, b, flags);
			w->blocks++;
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

/* A block at `level` of a file (index idx at that level); meta: the file
 * is metadata (the inode file, bitmap, summary, snapshot table). */
static int walk_node(struct walk *w, const struct wafl_bp *bp,
    unsigned level, uint64_t idx, bool is_ifile, bool meta)
{
	uint8_t *blk;
	int rc;

	if (bp->vbn == 0 || bp->birth <= w->after)
		return 0;
	blk = malloc(WAFL_BLOCK_SIZE);
	if (blk == NULL)
		return -ENOMEM;
	rc = wafl_read_bp(w->v, bp, blk);
	if (rc == 0)
		rc = w->fn(w->arg, bp->vbn, bp->birth, bp->cksum, blk,
		    level > 0 || meta ? WAFL_WALK_META : 0);
	w->blocks++;
	if (rc == 0 && level == 1 && !is_ifile && w->run != NULL) {
		rc = walk_leaves(w, bp, blk, meta ? WAFL_WALK_META : 0);
	} else if (rc == 0 && level > 0) {
		if (level >= 2)
			walk_prefetch_children(w, blk);
		for (unsigned c = 0; c < WAFL_BPS_PER_BLOCK && rc == 0; c++) {
			struct wafl_bp cbp;
			rc = wafl_bp_decode(blk + c * WAFL_BP_SIZE, &cbp);
			if (rc == 0 && cbp.vbn != 0 && cbp.birth > bp->birth)
				rc = FL_ERR(-FL_ECORRUPT);	/* W2 */
			if (rc == 0)
				rc = walk_node(w, &cbp, level - 1,
				    idx * WAFL_BPS_PER_BLOCK + c, is_ifile,
				    meta);
		}
	} else if (rc == 0 && is_ifile) {
		for (unsigned i = 0; i < WAFL_INODES_PER_BLOCK && rc == 0; i++) {
			struct wafl_dinode di;
			uint64_t ino = idx * WAFL_INODES_PER_BLOCK + i;
			rc = wafl_dinode_decode(blk + i * WAFL_INODE_SIZE, ino,
			    &di);
			if (rc == 0 && di.mode != 0 && ino != 0)
				rc = walk_tree(w, &di, false,
				    ino == WAFL_INO_BITMAP ||
				    ino == WAFL_INO_SUMMARY ||
				    ino == WAFL_INO_SNAPTABLE);
		}
	}
	free(blk);
	return rc;
}

static int walk_tree(struct walk *w, const struct wafl_dinode *di,
    bool is_ifile, bool meta)
{
	int rc = 0;

	if (di->flags & WAFL_INO_INLINE)
		return 0;
	for (unsigned t = 0; t < WAFL_NTOP && rc == 0; t++)
		rc = walk_node(w, &di->u.top[t], di->height, t, is_ifile,
		    meta);
	return rc;
}

int wafl_birth_walk(wafl_vol_t *v, uint64_t gen, uint64_t after_gen,
    wafl_walk_fn *fn, void *arg)
{
	struct walk w = { .v = v, .after = after_gen, .fn = fn, .arg = arg };
	struct wafl_rootblk rb;
	struct wafl_bp root;
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	int rc;

	if (blk == NULL)
		return -ENOMEM;
	/* Without it the walk reads one block at a time; without ra, a
	 * run at a time. */
	w.run = malloc((size_t)WAFL_BPS_PER_BLOCK * WAFL_BLOCK_SIZE);
	w.ra = malloc((size_t)WALK_RA_MAX * WAFL_BLOCK_SIZE);
	pthread_rwlock_rdlock(&v->cp_lock);
	rc = root_of_gen(v, gen, &root);
	pthread_rwlock_unlock(&v->cp_lock);
	if (rc != 0)
		goto out;
	if (root.birth <= after_gen)
		goto out;	/* nothing newer */
	rc = wafl_read_bp(v, &root, blk);
	if (rc == 0)
		rc = wafl_rootblk_decode(blk, &rb);
	if (rc == 0)
		rc = fn(arg, root.vbn, root.birth, root.cksum, blk,
		    WAFL_WALK_META);
	if (rc == 0)
		rc = walk_tree(&w, &rb.inodefile, true, true);
	fl_debug("wafl", "birth walk of %llu after %llu: %llu blocks (%s)",
	    (unsigned long long)gen, (unsigned long long)after_gen,
	    (unsigned long long)w.blocks + 1, fl_strerror(rc));
out:
	free(w.run);
	free(w.ra);
	free(blk);
	return rc;
}

/* ------------------------------------------------------------- replica */

int wafl_replica_advance(wafl_vol_t *v, uint64_t *gen)
{
	struct wafl_fsinfo nf;
	struct wafl_rootblk rb;
	struct wafl_dinode bm, st, sm;
	int rc;

	if (!v->readonly)
		return FL_ERR(-EINVAL);
	rc = fsinfo_read_newest(v, &nf);
	if (rc != 0)
		return rc;
	pthread_rwlock_rdlock(&v->cp_lock);
	bool newer = nf.gen > v->fsi.gen;
	pthread_rwlock_unlock(&v->cp_lock);
	if (!newer) {
		*gen = wafl_generation(v);
		return 0;
	}
	/* Read the new tree's roots before switching: readers continue on
	 * the old root meanwhile. */
	rc = tree_read_root(v, &nf.root, &rb);
	if (rc == 0)
		rc = tree_read_inode(v, &rb.inodefile, WAFL_INO_BITMAP, &bm);
	if (rc == 0)
		rc = tree_read_inode(v, &rb.inodefile, WAFL_INO_SNAPTABLE, &st);
	if (rc == 0)
		rc = tree_read_inode(v, &rb.inodefile, WAFL_INO_SUMMARY, &sm);
	if (rc == 0)
		rc = specials_valid(nf.nvbns, &bm, &st, &sm);
	if (rc != 0) {
		fl_err("wafl", "replica: root %llu unreadable (%s); staying at "
		    "%llu", (unsigned long long)nf.gen, fl_strerror(rc),
		    (unsigned long long)v->fsi.gen);
		return rc;
	}
	/* Not while wafl_check walks the served root (it holds
	 * cp_serial): once this switch is done, the next transfer may
	 * write over that root's blocks. */
	pthread_mutex_lock(&v->cp_serial);
	cp_lock_excl(v);
	pthread_mutex_lock(&v->icache_lock);
	v->fsi = nf;
	v->ifile = rb.inodefile;
	v->ifile_wn->di = rb.inodefile;
	v->bitmap_wn->di = bm;
	v->snaptab_wn->di = st;
	v->summary_wn->di = sm;
	pthread_mutex_unlock(&v->icache_lock);
	v->blocks_used = rb.blocks_used;
	v->inodes_used = rb.inodes_used;
	v->next_ino = next_ino_hint(rb.next_ino);
	orphans_load(v, &rb);
	/* Inodes of the old tree go or are reloaded, even those an operation
	 * holds while it waits for cp_lock; cached blocks are keyed by birth
	 * and checksum, so an old block at a reused VBN is never served. */
	wnode_reset_all(v);
	__atomic_store_n(&v->durable_gen, nf.gen, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&v->cp_lock);
	pthread_mutex_unlock(&v->cp_serial);
	*gen = nf.gen;
	fl_debug("wafl", "replica advanced to generation %llu",
	    (unsigned long long)nf.gen);
	return 0;
}

int wafl_replica_used_bits(wafl_vol_t *v, uint64_t area,
    uint8_t bits[WAFL_BLOCK_SIZE])
{
	uint8_t *snap = malloc(WAFL_BLOCK_SIZE);
	int rc = 0;

	if (snap == NULL)
		return -ENOMEM;
	memset(bits, 0, WAFL_BLOCK_SIZE);
	pthread_rwlock_rdlock(&v->cp_lock);
	if (area < FL_DIV_ROUND_UP_U64(v->fsi.nvbns, WAFL_BITS_PER_BLOCK)) {
		struct wnode *wns[] = { v->bitmap_wn, v->summary_wn };
		for (unsigned i = 0; i < 2 && rc == 0; i++) {
			pthread_rwlock_rdlock(&wns[i]->lock);
			rc = wn_read_block(wns[i], area, snap);
			pthread_rwlock_unlock(&wns[i]->lock);
			for (unsigned k = 0; rc == 0 && k < WAFL_BLOCK_SIZE; k++)
				bits[k] |= snap[k];
		}
	}
	pthread_rwlock_unlock(&v->cp_lock);
	free(snap);
	return rc;
}

/* ------------------------------------------------------------ rollback */

/*
 * Crash ordering.  Let t be the newest valid fsinfo, in slot t % 2, and
 * require t % 2 != gen % 2 (else -EAGAIN: the caller runs one more CP).
 *   1. write fsinfo gen (root, ring = {gen}, replica) to slot gen % 2,
 *      over an older generation; flush.  Newest valid: still t.
 *   2. wipe slot t % 2; flush.  Newest valid: gen.
 * A crash or a torn write at any point leaves t or gen, never a mix: the
 * tree of gen was retained all along, so it is whole.
 */
int wafl_rollback_replica(raid_vol_t *raid, uint64_t gen,
    const struct wafl_bp *root)
{
	struct wafl_fsinfo cur[WAFL_FSINFO_SLOTS], nf;
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	int newest = -1, rc = 0;

	if (blk == NULL)
		return -ENOMEM;
	if (root->vbn == 0 || root->birth != gen) {
		rc = FL_ERR(-EINVAL);
		goto out;
	}
	for (unsigned s = 0; s < WAFL_FSINFO_SLOTS; s++) {
		if (raid_read(raid, s, 1, blk) != 0 ||
		    wafl_fsinfo_decode(blk, &cur[s]) != 0 ||
		    cur[s].gen % WAFL_FSINFO_SLOTS != s)
			continue;
		if (newest < 0 || cur[s].gen > cur[newest].gen)
			newest = (int)s;
	}
	if (newest < 0) {
		rc = FL_ERR(-FL_ECORRUPT);
		goto out;
	}
	uint64_t t = cur[newest].gen;
	if (t == gen && memcmp(&cur[newest].root, root, sizeof(*root)) == 0 &&
	    cur[newest].ring_len == 1)
		goto out;		/* already there (a repeat after a crash) */
	if (t <= gen || root->vbn >= cur[newest].nvbns) {
		rc = FL_ERR(-EINVAL);
		goto out;
	}
	if ((unsigned)newest == gen % WAFL_FSINFO_SLOTS) {
		rc = -EAGAIN;
		goto out;
	}
	nf = cur[newest];
	nf.gen = gen;
	nf.root = *root;
	memset(nf.ring, 0, sizeof(nf.ring));
	nf.ring[0] = (struct wafl_ring_ent){ gen, *root };
	nf.ring_len = 1;
	nf.nholds = 0;
	memset(nf.holds, 0, sizeof(nf.holds));
	nf.mirror_base = 0;
	nf.flags |= WAFL_FSI_REPLICA;
	nf.write_ns = fl_now_real_ns();
	wafl_fsinfo_encode(blk, &nf);
	rc = raid_write(raid, gen % WAFL_FSINFO_SLOTS, 1, blk);
	if (rc == 0)
		rc = raid_flush(raid);
	if (rc == 0) {
		memset(blk, 0, WAFL_BLOCK_SIZE);
		rc = raid_write(raid, (uint64_t)newest, 1, blk);
	}
	if (rc == 0)
		rc = raid_flush(raid);
	if (rc == 0)
		fl_warn("wafl", "file system rolled back from generation %llu "
		    "to %llu (replica)", (unsigned long long)t,
		    (unsigned long long)gen);
out:
	free(blk);
	return rc;
}
