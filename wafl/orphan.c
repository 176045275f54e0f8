/*
 * wafl/orphan.c: inodes whose last link went while their blocks could not
 * all be freed.
 *
 * THEORY
 *   Freeing an inode frees its tree (wn_truncate_blocks), which reads every
 *   pointer block.  One that does not read (W1: no copy verifies, not even
 *   through raid parity) hides the blocks below it.  Wiping the inode then
 *   would leave them allocated with nothing naming them: a leak the check
 *   reports (W4) and nothing ever gives back.  Instead the truncation frees
 *   everything it can reach, clearing each freed pointer as it goes, so the
 *   tree names exactly what is still held, and the inode stays allocated
 *   with nlink 0: an orphan.  Its handle is dead (ops_live), no directory
 *   names it, its number is not reused.
 *
 * ON DISK
 *   The root block carries the list (ondisk.h: up to WAFL_ORPHAN_MAX
 *   inode numbers), written by every CP from v->orphans, so a crash or an
 *   unmount keeps it and the mount finds the orphans without a scan.  A
 *   full list leaves the inode to today's fallback: the inode is wiped and
 *   what it could not free stays allocated (logged; the check reports it).
 *
 * RETRY
 *   orphans_reclaim frees an orphan's tree again (cp_lock shared and the
 *   orphan's lock, as an operation), and once that succeeds wipes the
 *   inode and takes it off the list.  It runs at mount (after the replay),
 *   at every wafl_sync, and from the CP thread once a minute while there
 *   are orphans.  It writes no NVLOG record: it changes nothing a client
 *   was told, and a crash before the CP that records it leaves the orphan
 *   in the durable root, to be freed again by the next mount.  Freed
 *   blocks take the ordinary path (wafl_defer_free, pending until every
 *   retained root and the mirror have moved past them: W3, W6), so a
 *   snapshot or a mirror generation that still names them keeps them.
 *   A reclaimed number goes back to no free list: a record replayed
 *   after a crash before that CP could otherwise name it for a new file
 *   while the mounted root still has the orphan there.
 *
 * HOSTILE DATA
 *   The list is bounded and checked by wafl_rootblk_decode (range,
 *   distinct).  An entry that names an inode that is free or still linked
 *   is dropped from the list, logged, and nothing of it is freed; the
 *   check reports it (W8) as long as a durable root has it.  The drop
 *   dirties nothing else, so it asks for a CP of its own
 *   (orphans_changed): the next sync or timed CP writes the list without
 *   the entry, even on a volume with nothing else to write.
 *
 * LOCKS
 *   reclaim_mu (one pass at a time) before cp_lock; the list itself under
 *   ialloc_lock.
 */
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "wafl/ops.h"
#include "wafl/wafl_impl.h"

void orphans_load(struct wafl_vol *v, const struct wafl_rootblk *rb)
{
	pthread_mutex_lock(&v->ialloc_lock);
	v->norphans = rb->norphans;
	memcpy(v->orphans, rb->orphans, rb->norphans * sizeof(v->orphans[0]));
	v->orphans_changed = false;
	pthread_mutex_unlock(&v->ialloc_lock);
}

bool orphan_add(struct wafl_vol *v, uint64_t ino)
{
	bool ok = false;

	pthread_mutex_lock(&v->ialloc_lock);
	for (uint32_t i = 0; i < v->norphans; i++)
		if (v->orphans[i] == ino)
			ok = true;
	if (!ok && v->norphans < WAFL_ORPHAN_MAX) {
		v->orphans[v->norphans++] = ino;
		ok = true;
	}
	pthread_mutex_unlock(&v->ialloc_lock);
	return ok;
}

/* Off the list; inode_freed: the inode was wiped (one inode less). */
static void orphan_drop(struct wafl_vol *v, uint64_t ino, bool inode_freed)
{
	pthread_mutex_lock(&v->ialloc_lock);
	for (uint32_t i = 0; i < v->norphans; i++) {
		if (v->orphans[i] == ino) {
			v->orphans[i] = v->orphans[--v->norphans];
			v->orphans[v->norphans] = 0;
			v->orphans_changed = true;
			break;
		}
	}
	if (inode_freed && v->inodes_used > 0)
		v->inodes_used--;
	pthread_mutex_unlock(&v->ialloc_lock);
}

/* One orphan: 0 when it is gone from the list, else why it stays. */
static int reclaim_one(struct wafl_vol *v, uint64_t ino)
{
	struct wnode *wn;
	int rc = wnode_get(v, ino, &wn);

	if (rc != 0)
		return rc;
	pthread_rwlock_rdlock(&v->cp_lock);
	pthread_rwlock_wrlock(&wn->lock);
	if (v->failed) {
		rc = -EROFS;
	} else if (wn->di.mode == 0 || wn->di.nlink != 0) {
		fl_err("wafl", "W8: the orphan list names inode %llu, which "
		    "is %s; dropped from the list, nothing of it freed",
		    (unsigned long long)ino, wn->di.mode == 0 ? "free" :
		    "linked");
		orphan_drop(v, ino, false);
	} else {
		rc = wn_truncate_blocks(wn, 0);
		if (rc == 0) {
			ops_inode_wipe(wn);
			orphan_drop(v, ino, true);
			fl_info("wafl", "orphan inode %llu: its blocks are freed",
			    (unsigned long long)ino);
		}
	}
	pthread_rwlock_unlock(&wn->lock);
	pthread_rwlock_unlock(&v->cp_lock);
	wnode_put(wn);
	return rc;
}

void orphans_reclaim(struct wafl_vol *v)
{
	uint64_t inos[WAFL_ORPHAN_MAX];
	uint32_t n, left = 0;
	uint64_t first = 0;
	int first_rc = 0;

	if (v->readonly || (v->fsi.flags & WAFL_FSI_REPLICA))
		return;
	pthread_mutex_lock(&v->reclaim_mu);
	pthread_mutex_lock(&v->ialloc_lock);
	n = v->norphans;
	memcpy(inos, v->orphans, n * sizeof(inos[0]));
	pthread_mutex_unlock(&v->ialloc_lock);
	uint64_t now = fl_now_mono_ns();
	__atomic_store_n(&v->orphan_try_ns, now, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < n; i++) {
		int rc = reclaim_one(v, inos[i]);
		if (rc != 0 && left++ == 0) {
			first = inos[i];
			first_rc = rc;
		}
	}
	if (left > 0) {
		char text[160];
		uint64_t skipped;
		snprintf(text, sizeof(text), "%u orphan inode%s still hold "
		    "blocks they cannot free (inode %llu: %s); retried at the "
		    "next sync or mount, or in a minute", left,
		    left == 1 ? "" : "s", (unsigned long long)first,
		    fl_strerror(first_rc));
		if (fl_log_repeat_due(&v->orphan_log, text, now,
		    (uint64_t)WAFL_ORPHAN_RETRY_MS * 1000000, &skipped))
			fl_err("wafl", "%s", text);
	}
	pthread_mutex_unlock(&v->reclaim_mu);
}

void orphans_reclaim_due(struct wafl_vol *v)
{
	uint32_t n;

	pthread_mutex_lock(&v->ialloc_lock);
	n = v->norphans;
	pthread_mutex_unlock(&v->ialloc_lock);
	if (n > 0 && fl_now_mono_ns() - __atomic_load_n(&v->orphan_try_ns,
	    __ATOMIC_RELAXED) >= (uint64_t)WAFL_ORPHAN_RETRY_MS * 1000000)
		orphans_reclaim(v);
}
