/*
 * wafl/snap.c: named snapshots.
 *
 * A snapshot is a retained CP root: an entry {generation, root pointer,
 * name, id, time} in the snapshot table (inode 3).  Its blocks stay
 * allocated through the summary map (inode 4), the OR of every snapshot's
 * active bitmap (W9), which the allocator consults (W3).
 *
 *   create: CP (so the newest root holds everything done so far), then in
 *           the open generation: add the table entry and OR that root's
 *           bitmap into the summary map; CP again so the table is durable.
 *           Cost: one pass over the bitmap, independent of the data.
 *   delete: clear the entry, recompute the summary map from the remaining
 *           snapshots; blocks that leave it and are not active go pending
 *           (tagged with the open generation: the CP ring may still hold
 *           them); CP.
 *   adopt:  a snapshot whose root is a root the volume already retains
 *           (held or in the ring): table entry with that exact root
 *           pointer, summary |= its bitmap; CP.  The mirror's fallback
 *           and resync's common base use it.
 *   rollback: the active tree becomes the snapshot's tree (its inode file
 *           and bitmap); the snapshot table and summary map stay current;
 *           blocks only the old active tree used go pending; CP.
 *
 * Snapshot operations take cp_serial and cp_lock exclusive around their
 * in-memory work (the allocator's state is only touched under the freeze).
 * A snapshot id is (generation << 16) | n, unique because every snapshot
 * operation ends with a CP that advances the generation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "wafl/wafl_impl.h"

#define AREA_BITS	WAFL_BITS_PER_BLOCK

static uint64_t nslots(struct wafl_vol *v)
{
	return v->snaptab_wn->di.size / WAFL_SNAP_ENTRY_SIZE;
}

/* SNAP_ID_CREATED, _IMPORTED or _ADOPTED (wafl_impl.h). */
static uint64_t snap_kind(uint64_t id)
{
	return id & (SNAP_ID_IMPORTED | SNAP_ID_ADOPTED);
}

/*
 * The entry's root is this file system's root of its generation (taken
 * here, or adopted from a retained root).  Not an imported tree: its root
 * is born at the import's generation too, but this file system's root of
 * that generation is the one that names the import among its snapshots.
 */
static bool snap_is_gen_root(const struct wafl_snapent *e)
{
	return e->gen != 0 && e->root.birth == e->gen &&
	    snap_kind(e->id) != SNAP_ID_IMPORTED;
}

static int snap_read(struct wafl_vol *v, uint64_t slot, struct wafl_snapent *e,
    uint8_t *blk)
{
	int rc = wn_read_block(v->snaptab_wn, slot / WAFL_SNAPS_PER_BLOCK, blk);

	if (rc == 0)
		rc = wafl_snapent_decode(blk + (slot % WAFL_SNAPS_PER_BLOCK) *
		    WAFL_SNAP_ENTRY_SIZE, e);
	return rc;
}

static int snap_write(struct wafl_vol *v, uint64_t slot,
    const struct wafl_snapent *e)
{
	uint8_t *blk;
	int rc = wn_modify_block(v->snaptab_wn, slot / WAFL_SNAPS_PER_BLOCK,
	    &blk);

	if (rc != 0)
		return rc;
	wafl_snapent_encode(blk + (slot % WAFL_SNAPS_PER_BLOCK) *
	    WAFL_SNAP_ENTRY_SIZE, e);
	uint64_t end = (slot + 1) * WAFL_SNAP_ENTRY_SIZE;
	if (v->snaptab_wn->di.size < end)
		v->snaptab_wn->di.size = end;
	v->snaptab_wn->di.mtime_ns = v->snaptab_wn->di.ctime_ns =
	    fl_now_real_ns();
	wnode_dirty(v->snaptab_wn);
	return 0;
}

/* Find a snapshot by name (name != NULL) or id; *slot = its slot. */
static int snap_find(struct wafl_vol *v, const char *name, uint64_t id,
    uint64_t *slot, struct wafl_snapent *e)
{
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	int rc = -ENOENT;

	if (blk == NULL)
		return -ENOMEM;
	for (uint64_t s = 0; s < nslots(v); s++) {
		int r = snap_read(v, s, e, blk);
		if (r != 0) {
			rc = r;
			break;
		}
		if (e->gen == 0)
			continue;
		if (name != NULL ? strcmp(e->name, name) == 0 : e->id == id) {
			*slot = s;
			rc = 0;
			break;
		}
	}
	free(blk);
	return rc;
}

static bool name_ok(const char *name)
{
	size_t n = name == NULL ? 0 : strnlen(name, WAFL_SNAP_NAME_MAX + 1);

	if (n == 0 || n > WAFL_SNAP_NAME_MAX)
		return false;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (name[i] == '/' || (unsigned char)name[i] < 0x20)
			return false;
	return true;
}

static void lock_all(struct wafl_vol *v)
{
	pthread_mutex_lock(&v->cp_serial);
	cp_lock_excl(v);
}

static void unlock_all(struct wafl_vol *v)
{
	pthread_rwlock_unlock(&v->cp_lock);
	pthread_mutex_unlock(&v->cp_serial);
}

int summary_or_block(struct wafl_vol *v, uint64_t a, const uint8_t *bits,
    uint8_t *scratch)
{
	int rc = wn_read_block(v->summary_wn, a, scratch);

	if (rc != 0)
		return rc;
	bool change = false;
	for (uint32_t i = 0; i < WAFL_BLOCK_SIZE && !change; i++)
		change = (bits[i] | scratch[i]) != scratch[i];
	if (!change)
		return 0;	/* not dirtied: nothing to write */
	uint8_t *w;
	rc = wn_modify_block(v->summary_wn, a, &w);
	for (uint32_t i = 0; rc == 0 && i < WAFL_BLOCK_SIZE; i++)
		w[i] |= bits[i];
	if (rc == 0)
		wnode_dirty(v->summary_wn);
	return rc;
}

/* Summary |= the bitmap of the tree under root (W9).  Caller holds
 * lock_all. */
/*
 * The summary map |= root's bitmap, and, with its_snaps (an adopted root:
 * served, or to be rolled back to, with its snapshots), root's own summary
 * map: the blocks of every snapshot root names, deleted here or not.
 */
static int summary_or_root(struct wafl_vol *v, const struct wafl_bp *root,
    bool its_snaps)
{
	struct wafl_dinode bm, sm;
	struct wafl_rootblk rb;
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	uint8_t *sb = malloc(WAFL_BLOCK_SIZE);
	int rc = blk == NULL || sb == NULL ? -ENOMEM : 0;

	if (rc == 0)
		rc = tree_root_bitmap(v, root, &bm, &rb);
	if (rc == 0 && its_snaps)
		rc = tree_read_inode(v, &rb.inodefile, WAFL_INO_SUMMARY, &sm);
	for (uint64_t a = 0; a < v->nareas && rc == 0; a++) {
		rc = tree_read_block(v, &bm, a, blk);
		if (rc == 0)
			rc = summary_or_block(v, a, blk, sb);
		if (rc == 0 && its_snaps)
			rc = tree_read_block(v, &sm, a, blk);
		if (rc == 0 && its_snaps)
			rc = summary_or_block(v, a, blk, sb);
	}
	free(blk);
	free(sb);
	return rc;
}

int wafl_snap_create(wafl_vol_t *v, const char *name, uint64_t *id_out)
{
	struct wafl_bp root;
	uint64_t gen = 0, id = 0;
	int rc;

	if (!name_ok(name))
		return FL_ERR(-EINVAL);
	if (v->readonly || v->failed)
		return FL_ERR(-EROFS);
	rc = cp_run(v);
	if (rc != 0)
		return rc;
	lock_all(v);
	gen = v->durable_gen;
	root = v->fsi.root;
	rc = snap_name_free(v, name);
	if (rc == 0)
		rc = summary_or_root(v, &root, false);
	if (rc == 0)
		rc = snap_insert(v, name, gen, &root, SNAP_ID_CREATED, 0,
		    &id);
	unlock_all(v);
	if (rc == 0)
		rc = cp_run(v);
	if (rc == 0) {
		fl_info("wafl", "snapshot %s created (generation %llu)", name,
		    (unsigned long long)gen);
		if (id_out != NULL)
			*id_out = id;
	}
	return rc;
}

/*
 * A snapshot whose root IS a retained root (a ring root, a held root or
 * another snapshot's root): its exact root pointer goes into the table,
 * no block is written for it, and the summary map gains that root's
 * bitmap, which the root already carries (W4), and that root's summary
 * map: the snapshots it names stay whole with it (W9 counts an adopted
 * root's summary map).  The caller's hold, if any, stays: release it
 * afterwards.
 */
int wafl_snap_adopt_root(wafl_vol_t *v, const char *name, uint64_t gen,
    uint64_t *id_out)
{
	struct wafl_bp root = { 0 };
	uint64_t id = 0;
	int rc;

	if (!name_ok(name))
		return FL_ERR(-EINVAL);
	if (v->readonly || v->failed)
		return FL_ERR(-EROFS);
	lock_all(v);
	rc = root_of_gen(v, gen, &root);
	if (rc == 0)
		rc = snap_name_free(v, name);
	if (rc == 0)
		rc = summary_or_root(v, &root, true);
	if (rc == 0)
		rc = snap_insert(v, name, gen, &root, SNAP_ID_ADOPTED, 0,
		    &id);
	unlock_all(v);
	if (rc == 0)
		rc = cp_run(v);
	if (rc == 0) {
		fl_info("wafl", "snapshot %s adopts root %llu", name,
		    (unsigned long long)gen);
		if (id_out != NULL)
			*id_out = id;
	}
	return rc;
}

/* Recompute the summary map from every snapshot; blocks leaving it that
 * are not active go pending.  Caller holds lock_all. */
static int summary_recompute(struct wafl_vol *v)
{
	uint64_t n = nslots(v), nsnap = 0;
	struct wafl_dinode *bms = calloc(2 * n + 1, sizeof(*bms));
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	uint8_t *acc = malloc(WAFL_BLOCK_SIZE);
	uint8_t *old = malloc(WAFL_BLOCK_SIZE);
	uint8_t *act = malloc(WAFL_BLOCK_SIZE);
	int rc = 0;

	if (bms == NULL || blk == NULL || acc == NULL || old == NULL ||
	    act == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint64_t s = 0; s < n && rc == 0; s++) {
		struct wafl_snapent e;
		struct wafl_rootblk rb;
		rc = snap_read(v, s, &e, blk);
		if (rc == 0 && e.gen != 0)
			rc = tree_root_bitmap(v, &e.root, &bms[nsnap++], &rb);
		/* An adopted root keeps its snapshots (summary_or_root). */
		if (rc == 0 && e.gen != 0 && snap_kind(e.id) == SNAP_ID_ADOPTED)
			rc = tree_read_inode(v, &rb.inodefile,
			    WAFL_INO_SUMMARY, &bms[nsnap++]);
	}
	for (uint64_t a = 0; a < v->nareas && rc == 0; a++) {
		memset(acc, 0, WAFL_BLOCK_SIZE);
		for (uint64_t k = 0; k < nsnap && rc == 0; k++) {
			rc = tree_read_block(v, &bms[k], a, blk);
			for (uint32_t i = 0; rc == 0 && i < WAFL_BLOCK_SIZE; i++)
				acc[i] |= blk[i];
		}
		if (rc == 0)
			rc = wn_read_block(v->summary_wn, a, old);
		if (rc == 0)
			rc = wn_read_block(v->bitmap_wn, a, act);
		if (rc != 0)
			break;
		if (memcmp(acc, old, WAFL_BLOCK_SIZE) == 0)
			continue;
		for (uint32_t i = 0; i < AREA_BITS && rc == 0; i++) {
			uint8_t m = (uint8_t)(1u << (i & 7));
			if ((old[i >> 3] & m) && !(acc[i >> 3] & m) &&
			    !(act[i >> 3] & m)) {
				rc = alloc_pending_add(v, a * AREA_BITS + i,
				    v->open_gen);
				if (v->snap_only > 0)
					v->snap_only--;
			}
		}
		uint8_t *w;
		if (rc == 0)
			rc = wn_modify_block(v->summary_wn, a, &w);
		if (rc == 0)
			memcpy(w, acc, WAFL_BLOCK_SIZE);
	}
	if (rc == 0)
		wnode_dirty(v->summary_wn);
out:
	free(bms);
	free(blk);
	free(acc);
	free(old);
	free(act);
	return rc;
}

int wafl_snap_delete(wafl_vol_t *v, const char *name)
{
	struct wafl_snapent e;
	uint64_t slot;
	int rc;

	if (v->readonly || v->failed)
		return FL_ERR(-EROFS);
	lock_all(v);
	rc = snap_find(v, name, 0, &slot, &e);
	if (rc == 0) {
		struct wafl_snapent empty = { 0 };
		rc = snap_write(v, slot, &empty);
	}
	if (rc == 0)
		rc = summary_recompute(v);
	unlock_all(v);
	if (rc == 0)
		rc = cp_run(v);
	if (rc == 0)
		fl_info("wafl", "snapshot %s deleted", name);
	return rc;
}

int wafl_snap_lookup(wafl_vol_t *v, const char *name, uint64_t *id)
{
	struct wafl_snapent e;
	uint64_t slot;
	int rc;

	pthread_rwlock_rdlock(&v->cp_lock);
	rc = snap_find(v, name, 0, &slot, &e);
	pthread_rwlock_unlock(&v->cp_lock);
	if (rc == 0)
		*id = e.id;
	return rc;
}

int snap_ifile(struct wafl_vol *v, uint64_t id, struct wafl_dinode *ifile)
{
	struct wafl_snapent e;
	struct wafl_rootblk rb;
	uint64_t slot;
	int rc = snap_find(v, NULL, id, &slot, &e);

	if (rc == -ENOENT)
		return -ESTALE;
	if (rc == 0)
		rc = tree_read_root(v, &e.root, &rb);
	if (rc == 0)
		*ifile = rb.inodefile;
	return rc;
}

int wafl_snap_root(wafl_vol_t *v, uint64_t id, struct wafl_obj *root)
{
	struct wafl_dinode ifile, di;
	int rc;

	pthread_rwlock_rdlock(&v->cp_lock);
	rc = snap_ifile(v, id, &ifile);
	if (rc == 0)
		rc = tree_read_inode(v, &ifile, WAFL_INO_ROOTDIR, &di);
	pthread_rwlock_unlock(&v->cp_lock);
	if (rc == 0) {
		root->ino = WAFL_INO_ROOTDIR;
		root->gen = di.gen;
		root->snap = id;
	}
	return rc;
}

/* Oldest first: by generation, then id. */
static int cmp_snapinfo(const void *a, const void *b)
{
	const struct wafl_snapinfo *x = a, *y = b;

	if (x->gen != y->gen)
		return x->gen < y->gen ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

int wafl_snap_names(wafl_vol_t *v, struct wafl_snapinfo *out, size_t max,
    size_t *count)
{
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	size_t k = 0;
	int rc = blk == NULL ? -ENOMEM : 0;

	pthread_rwlock_rdlock(&v->cp_lock);
	for (uint64_t s = 0; rc == 0 && s < nslots(v); s++) {
		struct wafl_snapent e;
		rc = snap_read(v, s, &e, blk);
		if (rc != 0 || e.gen == 0)
			continue;
		if (k < max) {
			memset(&out[k], 0, sizeof(out[k]));
			out[k].id = e.id;
			out[k].gen = e.gen;
			out[k].create_ns = e.create_ns;
			snprintf(out[k].name, sizeof(out[k].name), "%s", e.name);
		}
		k++;
	}
	pthread_rwlock_unlock(&v->cp_lock);
	free(blk);
	*count = k;
	if (k > 0 && max > 0)
		qsort(out, k < max ? k : max, sizeof(*out), cmp_snapinfo);
	return rc;
}

/* Every snapshot, oldest first, with the space each alone holds. */
int wafl_snap_list(wafl_vol_t *v, struct wafl_snapinfo *out, size_t max,
    size_t *count)
{
	uint64_t n;
	size_t k = 0;
	struct wafl_dinode *bms = NULL;
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	uint8_t *tmp = malloc(WAFL_BLOCK_SIZE);
	uint8_t *act = malloc(WAFL_BLOCK_SIZE);
	int rc = 0;

	pthread_rwlock_rdlock(&v->cp_lock);
	n = nslots(v);
	bms = calloc(n + 1, sizeof(*bms));
	struct wafl_snapinfo *all = calloc(n + 1, sizeof(*all));
	uint8_t **maps = calloc(n + 1, sizeof(*maps));
	if (blk == NULL || tmp == NULL || act == NULL || bms == NULL ||
	    all == NULL || maps == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint64_t s = 0; s < n && rc == 0; s++) {
		struct wafl_snapent e;
		rc = snap_read(v, s, &e, blk);
		if (rc != 0 || e.gen == 0)
			continue;
		all[k].id = e.id;
		all[k].gen = e.gen;
		all[k].create_ns = e.create_ns;
		snprintf(all[k].name, sizeof(all[k].name), "%s", e.name);
		rc = tree_root_bitmap(v, &e.root, &bms[k], NULL);
		maps[k] = malloc(WAFL_BLOCK_SIZE);
		if (maps[k] == NULL)
			rc = -ENOMEM;
		k++;
	}
	/* Space each snapshot alone holds: its bits in no other root. */
	for (uint64_t a = 0; a < v->nareas && rc == 0 && k > 0; a++) {
		rc = wn_read_block(v->bitmap_wn, a, act);
		for (size_t i = 0; i < k && rc == 0; i++)
			rc = tree_read_block(v, &bms[i], a, maps[i]);
		for (size_t i = 0; i < k && rc == 0; i++) {
			for (uint32_t b = 0; b < WAFL_BLOCK_SIZE; b++) {
				uint8_t others = act[b];
				for (size_t j = 0; j < k; j++)
					if (j != i)
						others |= maps[j][b];
				all[i].unique_bytes += (uint64_t)
				    __builtin_popcount(maps[i][b] & ~others) *
				    WAFL_BLOCK_SIZE;
			}
		}
	}
	if (k > 0)
		qsort(all, k, sizeof(*all), cmp_snapinfo);
	for (size_t i = 0; i < k && i < max; i++)
		out[i] = all[i];
	*count = k;
out:
	pthread_rwlock_unlock(&v->cp_lock);
	for (size_t i = 0; maps != NULL && i < k; i++)
		free(maps[i]);
	free(maps);
	free(all);
	free(bms);
	free(blk);
	free(tmp);
	free(act);
	return rc;
}

/* A growable set of VBNs (a file tree's blocks), sorted for lookup. */
struct vbnset {
	uint64_t *v;
	uint64_t n, cap;
};

static int vbnset_add(struct vbnset *s, uint64_t vbn)
{
	if (s->n == s->cap) {
		uint64_t cap = s->cap ? s->cap * 2 : 64;
		uint64_t *n = realloc(s->v, cap * sizeof(*n));
		if (n == NULL)
			return -ENOMEM;
		s->v = n;
		s->cap = cap;
	}
	s->v[s->n++] = vbn;
	return 0;
}

static int cmp_vbn(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool vbnset_has(const struct vbnset *s, uint64_t vbn)
{
	return s->n > 0 && bsearch(&vbn, s->v, s->n, sizeof(*s->v),
	    cmp_vbn) != NULL;
}

static int collect_node(struct wafl_vol *v, const struct wafl_bp *bp,
    unsigned level, struct vbnset *s)
{
	int rc;

	if (bp->vbn == 0)
		return 0;
	rc = vbnset_add(s, bp->vbn);
	if (rc != 0 || level == 0)
		return rc;
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	if (blk == NULL)
		return -ENOMEM;
	rc = wafl_read_bp(v, bp, blk);
	for (unsigned c = 0; rc == 0 && c < WAFL_BPS_PER_BLOCK; c++) {
		struct wafl_bp cbp;
		rc = wafl_bp_decode(blk + c * WAFL_BP_SIZE, &cbp);
		if (rc == 0)
			rc = collect_node(v, &cbp, level - 1, s);
	}
	free(blk);
	return rc;
}

/* Every block of the file di describes (clean: no dirty buffers). */
static int collect_tree(struct wafl_vol *v, const struct wafl_dinode *di,
    struct vbnset *s)
{
	int rc = 0;

	if (di->flags & WAFL_INO_INLINE)
		return 0;
	for (unsigned t = 0; t < WAFL_NTOP && rc == 0; t++)
		rc = collect_node(v, &di->u.top[t], di->height, s);
	return rc;
}

static void drop_dirty_state(struct wafl_vol *v)
{
	pthread_mutex_lock(&v->icache_lock);
	for (struct wnode *wn = v->dirty_list; wn != NULL; wn = wn->dnext) {
		wn->dirty = false;
		wn->refs--;
	}
	v->dirty_list = NULL;
	pthread_mutex_unlock(&v->icache_lock);
	pthread_mutex_lock(&v->free_lock);
	v->nfrees = 0;
	pthread_mutex_unlock(&v->free_lock);
	__atomic_store_n(&v->ndirty_bufs, 0, __ATOMIC_RELAXED);
}

int wafl_snap_rollback(wafl_vol_t *v, const char *name)
{
	struct wafl_snapent e;
	struct wafl_rootblk rb;
	struct wafl_dinode bm;
	uint64_t slot;
	uint8_t *cur = malloc(WAFL_BLOCK_SIZE);
	uint8_t *snap = malloc(WAFL_BLOCK_SIZE);
	int rc;

	if (cur == NULL || snap == NULL) {
		free(cur);
		free(snap);
		return -ENOMEM;
	}
	if (v->readonly || v->failed) {
		rc = FL_ERR(-EROFS);
		goto out_free;
	}
	rc = cp_run(v);	/* the current state is a durable root first */
	if (rc != 0)
		goto out_free;
	lock_all(v);
	struct vbnset keep = { 0 }, drop = { 0 };
	uint8_t *fixes = NULL;
	rc = snap_find(v, name, 0, &slot, &e);
	if (rc == 0)
		rc = tree_root_bitmap(v, &e.root, &bm, &rb);
	if (rc == 0 && !special_inode_ok(v->nvbns, WAFL_INO_BITMAP, &bm)) {
		fl_err("wafl", "snapshot %s: its active bitmap's inode is "
		    "corrupt (mode %#o, size %llu)", name, bm.mode,
		    (unsigned long long)bm.size);
		rc = FL_ERR(-FL_ECORRUPT);
	}
	/* The snapshot table and summary map stay the current ones: their
	 * blocks stay active, and the snapshot's own copies of them (held by
	 * the snapshot, through the summary) leave the active bitmap. */
	if (rc == 0)
		rc = collect_tree(v, &v->snaptab_wn->di, &keep);
	if (rc == 0)
		rc = collect_tree(v, &v->summary_wn->di, &keep);
	for (uint64_t ino = WAFL_INO_SNAPTABLE; rc == 0 &&
	    ino <= WAFL_INO_SUMMARY; ino++) {
		struct wafl_dinode old;
		rc = tree_read_inode(v, &rb.inodefile, ino, &old);
		if (rc == 0 && old.mode != 0)
			rc = collect_tree(v, &old, &drop);
	}
	if (rc != 0)
		goto out;
	if (keep.n > 0)
		qsort(keep.v, keep.n, sizeof(*keep.v), cmp_vbn);
	if (drop.n > 0)
		qsort(drop.v, drop.n, sizeof(*drop.v), cmp_vbn);
	/* Everything the durable active tree holds beyond the snapshot is
	 * released through the pending list (the ring still holds it). */
	uint64_t used = 0;
	uint64_t nfix = 0;
	for (uint64_t a = 0; a < v->nareas && rc == 0; a++) {
		bool fix = false;
		rc = wn_read_block(v->bitmap_wn, a, cur);
		if (rc == 0)
			rc = tree_read_block(v, &bm, a, snap);
		for (uint32_t i = 0; rc == 0 && i < AREA_BITS; i++) {
			uint64_t vbn = a * AREA_BITS + i;
			uint8_t m = (uint8_t)(1u << (i & 7));
			bool c = cur[i >> 3] & m, s = snap[i >> 3] & m;
			if (vbn == e.root.vbn || (s && vbnset_has(&drop, vbn)))
				s = false;	/* the snapshot's own roots */
			if (c && vbnset_has(&keep, vbn))
				s = true;	/* current table and summary */
			if (s)
				used++;
			if (c && !s && vbn != v->fsi.root.vbn)
				rc = alloc_pending_add(v, vbn, v->open_gen);
			if (s != (bool)(snap[i >> 3] & m)) {
				if (s)
					snap[i >> 3] |= m;
				else
					snap[i >> 3] &= (uint8_t)~m;
				fix = true;
			}
		}
		if (rc == 0 && fix) {
			uint8_t *n = realloc(fixes, (nfix + 1) *
			    (WAFL_BLOCK_SIZE + 8));
			if (n == NULL) {
				rc = -ENOMEM;
				break;
			}
			fixes = n;
			uint8_t *ent = fixes + nfix * (WAFL_BLOCK_SIZE + 8);
			fl_put_le64(ent, a);
			memcpy(ent + 8, snap, WAFL_BLOCK_SIZE);
			nfix++;
		}
	}
	if (rc != 0)
		goto out;
	drop_dirty_state(v);
	/* The active tree is now the snapshot's: its inode file and bitmap
	 * (minus its own root block); snapshot table and summary stay. */
	dbuf_tab_free(&v->ifile_wn->dbufs);
	dbuf_tab_init(&v->ifile_wn->dbufs);
	pthread_mutex_lock(&v->icache_lock);
	v->ifile_wn->di = rb.inodefile;
	v->ifile = rb.inodefile;
	pthread_mutex_unlock(&v->icache_lock);
	wnode_reset_all(v);
	dbuf_tab_free(&v->bitmap_wn->dbufs);
	dbuf_tab_init(&v->bitmap_wn->dbufs);
	v->bitmap_wn->di = bm;
	for (uint64_t k = 0; k < nfix && rc == 0; k++) {
		uint8_t *ent = fixes + k * (WAFL_BLOCK_SIZE + 8), *w;
		rc = wn_modify_block(v->bitmap_wn, fl_get_le64(ent), &w);
		if (rc == 0)
			memcpy(w, ent + 8, WAFL_BLOCK_SIZE);
	}
	/* +1: the CP below frees the current root block, which the count
	 * above already left out. */
	v->blocks_used = used + 1;
	v->inodes_used = rb.inodes_used;
	v->next_ino = next_ino_hint(rb.next_ino);
	orphans_load(v, &rb);
	alloc_reset_areas(v);
	wnode_dirty(v->bitmap_wn);
	wnode_dirty(v->summary_wn);
	wnode_dirty(v->snaptab_wn);
out:
	unlock_all(v);
	free(keep.v);
	free(drop.v);
	free(fixes);
	if (rc == 0)
		rc = cp_run(v);
	if (rc == 0)
		fl_info("wafl", "rolled back to snapshot %s (generation %llu)",
		    name, (unsigned long long)e.gen);
out_free:
	free(cur);
	free(snap);
	return rc;
}

int wafl_snap_root_info(wafl_vol_t *v, const char *name, uint64_t *gen,
    uint32_t *root_cksum)
{
	struct wafl_snapent e;
	uint64_t slot;
	int rc;

	pthread_rwlock_rdlock(&v->cp_lock);
	rc = snap_find(v, name, 0, &slot, &e);
	pthread_rwlock_unlock(&v->cp_lock);
	if (rc == 0) {
		*gen = e.gen;
		if (root_cksum != NULL)
			*root_cksum = e.root.cksum;
	}
	return rc;
}

int snap_name_free(struct wafl_vol *v, const char *name)
{
	struct wafl_snapent e;
	uint8_t *blk;
	uint64_t slot, nsnaps = 0;
	int rc;

	if (!name_ok(name))
		return FL_ERR(-EINVAL);
	if (snap_find(v, name, 0, &slot, &e) == 0)
		return FL_ERR(-EEXIST);
	blk = malloc(WAFL_BLOCK_SIZE);
	if (blk == NULL)
		return -ENOMEM;
	rc = 0;
	for (uint64_t s = 0; s < nslots(v) && rc == 0; s++) {
		rc = snap_read(v, s, &e, blk);
		if (rc == 0 && e.gen != 0)
			nsnaps++;
	}
	free(blk);
	if (rc == 0 && nsnaps >= WAFL_MAX_SNAPSHOTS) {
		rc = FL_ERR(-ENOSPC);
		fl_warn("wafl", "snapshot %s: the limit of %u is reached", name,
		    WAFL_MAX_SNAPSHOTS);
	}
	return rc;
}

int snap_insert(struct wafl_vol *v, const char *name, uint64_t gen,
    const struct wafl_bp *root, uint64_t kind, uint64_t origin,
    uint64_t *id_out)
{
	struct wafl_snapent e, cur;
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	uint64_t free_slot = UINT64_MAX;
	uint8_t used[(WAFL_MAX_SNAPSHOTS + 1) / 8] = { 0 };
	uint64_t base = (gen << 16) | kind;
	int rc = blk == NULL ? -ENOMEM : 0;

	ASSERT(kind == SNAP_ID_CREATED || kind == SNAP_ID_ADOPTED ||
	    kind == SNAP_ID_IMPORTED);
	for (uint64_t s = 0; rc == 0 && s < nslots(v); s++) {
		rc = snap_read(v, s, &cur, blk);
		if (rc != 0)
			break;
		if (cur.gen == 0) {
			if (free_slot == UINT64_MAX)
				free_slot = s;
			continue;
		}
		/* Ids in use for this generation and kind. */
		if (cur.id >= base && cur.id - base <= WAFL_MAX_SNAPSHOTS)
			used[(cur.id - base) / 8] |=
			    (uint8_t)(1u << ((cur.id - base) % 8));
	}
	free(blk);
	if (rc != 0)
		return rc;
	if (free_slot == UINT64_MAX)
		free_slot = nslots(v);
	/* The smallest suffix no entry has: an id is never given twice while
	 * its first holder exists (W9), however entries come and go. */
	uint64_t n = 0;
	while (n < WAFL_MAX_SNAPSHOTS && (used[n / 8] >> (n % 8)) & 1)
		n++;
	memset(&e, 0, sizeof(e));
	e.gen = gen;
	e.create_ns = fl_now_real_ns();
	e.root = *root;
	e.id = base | n;
	e.origin = origin;
	snprintf(e.name, sizeof(e.name), "%s", name);
	rc = snap_write(v, free_slot, &e);
	if (rc == 0 && id_out != NULL)
		*id_out = e.id;
	return rc;
}

/* Clear the entry of snapshot id: an import undoing the entries it
 * added (the summary map is the caller's to restore).  Caller holds
 * lock_all. */
int snap_drop(struct wafl_vol *v, uint64_t id)
{
	struct wafl_snapent e, empty = { 0 };
	uint64_t slot;
	int rc = snap_find(v, NULL, id, &slot, &e);

	if (rc == 0)
		rc = snap_write(v, slot, &empty);
	return rc;
}

static void root_add(struct wafl_root_ent *out, size_t max, size_t *k,
    uint64_t gen, const struct wafl_bp *root)
{
	for (size_t i = 0; i < *k && i < max; i++)
		if (out[i].gen == gen && out[i].vbn == root->vbn &&
		    out[i].birth == root->birth && out[i].cksum == root->cksum)
			return;
	if (*k < max)
		out[*k] = (struct wafl_root_ent){ gen, root->vbn, root->birth,
		    root->cksum };
	(*k)++;
}

int snap_exact_root(struct wafl_vol *v, uint64_t gen, struct wafl_bp *root)
{
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	int rc = blk == NULL ? -ENOMEM : -ENOENT;

	for (uint64_t s = 0; rc == -ENOENT && s < nslots(v); s++) {
		struct wafl_snapent e;
		if (snap_read(v, s, &e, blk) != 0)
			continue;	/* an unreadable slot names nothing */
		if (e.gen == gen && snap_is_gen_root(&e)) {
			*root = e.root;
			rc = 0;
		}
	}
	free(blk);
	return rc;
}

static int cmp_root_ent(const void *a, const void *b)
{
	const struct wafl_root_ent *x = a, *y = b;

	return x->gen > y->gen ? -1 : x->gen < y->gen;
}

int wafl_retained_roots(wafl_vol_t *v, struct wafl_root_ent *out,
    size_t max, size_t *n)
{
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	size_t k = 0;
	int rc = blk == NULL ? -ENOMEM : 0;

	pthread_rwlock_rdlock(&v->cp_lock);
	for (unsigned i = 0; rc == 0 && i < v->fsi.ring_len; i++)
		root_add(out, max, &k, v->fsi.ring[i].gen,
		    &v->fsi.ring[i].root);
	for (unsigned h = 0; rc == 0 && h < WAFL_MAX_HOLDS; h++)
		if (v->holds[h].gen != 0 && v->holds[h].refs > 0)
			root_add(out, max, &k, v->holds[h].gen,
			    &v->holds[h].root);
	for (uint64_t s = 0; rc == 0 && s < nslots(v); s++) {
		struct wafl_snapent e;
		rc = snap_read(v, s, &e, blk);
		if (rc == 0 && snap_is_gen_root(&e))
			root_add(out, max, &k, e.gen, &e.root);
	}
	pthread_rwlock_unlock(&v->cp_lock);
	free(blk);
	if (rc == 0 && k > 0)
		qsort(out, k < max ? k : max, sizeof(*out), cmp_root_ent);
	*n = k < max ? k : max;
	return rc;
}
