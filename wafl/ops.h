/*
 * wafl/ops.h (internal): what the operation layer (ops.c, ops_ns.c,
 * ops_data.c) and the NVLOG record code (logrec.c) share.
 *
 * Every modifying operation is one transaction (struct ops_tx):
 *   ops_tx_begin   cp_lock shared, NVLOG room reserved, space checked
 *   (caller)       wnode locks in the W-L order, checks, apply in memory
 *   ops_tx_commit  the record (every choice made) appended under the locks,
 *                  so records of conflicting operations are in LSN order
 *   (caller)       wnode locks dropped
 *   ops_tx_end     cp_lock dropped, wait for the record to be durable
 *                  (W7) unless the caller asked not to (UNSTABLE writes),
 *                  dirty-memory throttle
 * The "apply" functions below change memory only; they are called by the
 * live operation (making the choices: inode number, generation, directory
 * key) and by NVLOG replay (forcing the recorded choices), so replay
 * reproduces exactly what callers were told.  They expect the caller to
 * hold cp_lock shared and the wnode locks they name.
 */
#ifndef FILER_WAFL_OPS_H
#define FILER_WAFL_OPS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "wafl/logrec.h"
#include "wafl/nvlog.h"
#include "wafl/wafl_impl.h"

/* Permission bits asked of ops_may (as in mode's rwx triplets). */
#define OPS_MAY_R	4u
#define OPS_MAY_W	2u
#define OPS_MAY_X	1u

struct ops_tx {
	struct wafl_vol *v;
	struct nvlog_resv resv;
	bool reserved;		/* resv outstanding */
	bool logged;		/* a record was committed: lsn valid */
	bool changed;		/* memory changed without a record (UNSTABLE
				   write): still counted and throttled */
	uint64_t lsn;
	uint64_t start_ns;	/* for the latency figure */
};

/* Start a modifying operation: -EROFS (read-only or failed volume), -EIO
 * (log failed), -ENOSPC (need_blocks do not fit above the reserve), or 0
 * with cp_lock held shared and room for max_payload bytes reserved. */
int ops_tx_begin(struct wafl_vol *v, uint32_t max_payload,
    uint64_t need_blocks, struct ops_tx *tx);
/* Take wn's lock for writing, inside tx (begun with max_payload and
 * need_blocks).  If the lock is busy while a CP waits for cp_lock, tx is
 * given back and begun again once the CP has cp_lock, so that the CP
 * does not wait for every writer queued on the file in turn.  0 with the
 * lock held, or ops_tx_begin's error (tx then ended). */
int ops_tx_wrlock(struct ops_tx *tx, struct wnode *wn, uint32_t max_payload,
    uint64_t need_blocks);
/* Append the record (caller still holds its wnode locks).  A failure
 * leaves memory changed but unlogged: the volume is marked failed. */
int ops_tx_commit(struct ops_tx *tx, uint16_t type, const struct iovec *iov,
    int iovcnt);
/* Drop cp_lock (and an unused reservation); if a record was committed and
 * wait is set, wait until it is durable.  Returns rc, or -EIO if the wait
 * failed (the volume is then marked failed). */
int ops_tx_end(struct ops_tx *tx, int rc, bool wait);
/* Wait until lsn is durable, or, under wafl_defer_begin, note that the
 * thread's reply must wait for it.  -EIO (volume failed) if it never will. */
int ops_wait_lsn(struct wafl_vol *v, uint64_t lsn);

/* Mark the volume failed: it refuses writes until reopened. */
void ops_fail(struct wafl_vol *v, int why);

/* Object references.  ops_obj_get: -EROFS (snapshot and for_write),
 * -ESTALE (snapshot read, reserved or impossible number), or a referenced
 * wnode (not locked).  ops_live: 0 if wn (locked) is in use with gen. */
int ops_obj_get(struct wafl_vol *v, const struct wafl_obj *o, bool for_write,
    struct wnode **out);
int ops_live(const struct wnode *wn, uint32_t gen);

/* Name checks for names a caller creates or removes: -EINVAL (empty, "/",
 * NUL), -ENAMETOOLONG.  "." and ".." are the caller's business. */
int ops_name_check(const char *name, size_t *len);
/* An inode number a directory entry read from disk names: a user inode
 * (WAFL_INO_FIRST_USER .. WAFL_INO_LIMIT - 1; the root and the special
 * files are never named by an entry).  0, or -FL_ECORRUPT, logged. */
int ops_entry_ino_check(uint64_t dir, const char *name, uint64_t ino);
bool ops_is_dot(const char *name);
bool ops_is_dotdot(const char *name);

bool ops_may(const struct wafl_dinode *di, const struct wafl_cred *c,
    unsigned want);
bool ops_cred_in_group(const struct wafl_cred *c, uint32_t gid);
/* The set-id bits a change of a regular file's contents by c takes away
 * (ops_data.c). */
uint32_t ops_write_kills(const struct wafl_cred *c,
    const struct wafl_dinode *di);

enum wafl_type ops_type_of(uint32_t mode);
uint32_t ops_ifmt_of(enum wafl_type t);
void ops_fill_attr(const struct wafl_vol *v, const struct wnode *wn,
    struct wafl_attr *a);
void ops_fill_wcc(const struct wnode *wn, struct wafl_wcc *w);

/* Inode numbers.  ops_ialloc_forced claims exactly (ino, gen) (replay);
 * -FL_ECORRUPT if the inode is in use.  ops_inode_free releases an inode
 * whose last link went (wn locked exclusive).  ops_inode_wipe zeroes a
 * freed inode but its generation (so old handles stay stale) and dirties
 * it; the number's accounting is the caller's. */
int ops_ialloc_forced(struct wafl_vol *v, uint64_t ino, uint32_t gen);
void ops_inode_free(struct wnode *wn);
void ops_inode_wipe(struct wnode *wn);

/* Lock helpers: lock/unlock a set of distinct wnodes in the order given
 * (NULL entries and duplicates skipped). */
void ops_wrlock(struct wnode *const *wns, int n);
void ops_unlock(struct wnode *const *wns, int n);
void ops_put(struct wnode *const *wns, int n);

/* Count one operation for the statistics. */
void ops_count(struct wafl_vol *v, uint64_t ns);

/* ---------------------------------------------------- apply (memory) */

/* Make a new object (create, mkdir, symlink, mknod) named r->name in dir
 * (locked exclusive).  Live: chooses r->ino, r->gen, r->key; replay: uses
 * them.  *child_out: the new wnode, referenced and locked exclusive. */
int ops_apply_make(struct wafl_vol *v, struct wnode *dir, struct rec_make *r,
    bool replay, struct wnode **child_out);
/* Remove r->name (object obj, locked exclusive) from dir (locked
 * exclusive); frees obj's inode with its last link. */
int ops_apply_remove(struct wafl_vol *v, struct wnode *dir, struct wnode *obj,
    const struct rec_remove *r);
/* Rename: every wnode locked exclusive; tgt NULL if toname is free.
 * Live: chooses r->key; replay: uses it. */
int ops_apply_rename(struct wafl_vol *v, struct wnode *fdir,
    struct wnode *tdir, struct wnode *src, struct wnode *tgt,
    struct rec_rename *r, bool replay);
int ops_apply_link(struct wafl_vol *v, struct wnode *dir, struct wnode *obj,
    struct rec_link *r, bool replay);
int ops_apply_setattr(struct wafl_vol *v, struct wnode *wn,
    const struct rec_setattr *r);
int ops_apply_write(struct wafl_vol *v, struct wnode *wn,
    const struct rec_write *r);

/* Read-only snapshot objects (ops_snap.c): the read operations for
 * o->snap != 0, same contracts as their wafl_* counterparts. */
int ops_snap_getattr(struct wafl_vol *v, const struct wafl_obj *o,
    struct wafl_attr *attr);
int ops_snap_access(struct wafl_vol *v, const struct wafl_cred *c,
    const struct wafl_obj *o, uint32_t want, uint32_t *granted,
    struct wafl_attr *attr);
int ops_snap_lookup(struct wafl_vol *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, struct wafl_obj *out,
    struct wafl_attr *attr, struct wafl_attr *dir_attr);
int ops_snap_read(struct wafl_vol *v, const struct wafl_cred *c,
    const struct wafl_obj *o, uint64_t off, uint32_t count, void *buf,
    uint32_t *got, bool *eof, struct wafl_attr *attr);
int ops_snap_readlink(struct wafl_vol *v, const struct wafl_obj *o,
    char *buf, size_t bufsz, size_t *len, struct wafl_attr *attr);
int ops_snap_readdir(struct wafl_vol *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, uint64_t cookie, bool plus,
    wafl_readdir_fn *fn, void *arg, bool *eof, struct wafl_attr *dir_attr);

/* Replay handlers (logrec.c decodes, these lock and apply). */
int ops_replay_make(struct wafl_vol *v, struct rec_make *r);
int ops_replay_remove(struct wafl_vol *v, const struct rec_remove *r);
int ops_replay_rename(struct wafl_vol *v, struct rec_rename *r);
int ops_replay_link(struct wafl_vol *v, struct rec_link *r);
int ops_replay_setattr(struct wafl_vol *v, const struct rec_setattr *r);
int ops_replay_write(struct wafl_vol *v, const struct rec_write *r);

#endif
