/*
 * wafl/ops_data.c: object and data operations — root, GETATTR, SETATTR,
 * ACCESS, LOOKUP, READ, WRITE, COMMIT, READLINK, READDIR(PLUS), FSSTAT —
 * and the replay of SETATTR and WRITE records.
 *
 * Reads hold cp_lock shared and the object's lock shared; they log
 * nothing and change nothing (no atime updates).  A directory's lock is
 * taken before a child's; ".." is read by first dropping the child's lock
 * (a child never waits for its parent while holding its own lock).
 *
 * DATA_SYNC and FILE_SYNC writes carry their data in the NVLOG record,
 * wait for it and report FILE_SYNC (metadata is in the same record).
 * UNSTABLE writes change memory only and mark the file (unlogged_gen):
 * NFS lets a server lose them until COMMIT (the write verifier changes on
 * every mount, so clients resend), and they reach the disk once, in a CP,
 * instead of twice.  COMMIT makes them durable with a CP (atomic: all of
 * the generation's data or none), unless a CP already did, then
 * nvlog_sync for the logged operations before it.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "wafl/dir.h"
#include "wafl/ops.h"

/* Largest WRITE: what one log record holds. */
#define OPS_WRITE_MAX	(NVLOG_MAX_PAYLOAD - REC_WRITE_FIXED)

static bool is_owner(const struct wafl_cred *c, const struct wafl_dinode *di)
{
	return c == NULL || c->uid == 0 || c->uid == di->uid;
}

/* Get a live object for reading: referenced, cp_lock and its lock held
 * shared.  On error nothing is held. */
static int read_begin(struct wafl_vol *v, const struct wafl_obj *o,
    struct wnode **out)
{
	struct wnode *wn;
	int rc = ops_obj_get(v, o, false, &wn);

	*out = NULL;
	if (rc != 0)
		return rc;
	pthread_rwlock_rdlock(&v->cp_lock);
	pthread_rwlock_rdlock(&wn->lock);
	rc = ops_live(wn, o->gen);
	if (rc != 0) {
		pthread_rwlock_unlock(&wn->lock);
		pthread_rwlock_unlock(&v->cp_lock);
		wnode_put(wn);
		return rc;
	}
	*out = wn;
	return 0;
}

static void read_end(struct wafl_vol *v, struct wnode *wn)
{
	pthread_rwlock_unlock(&wn->lock);
	pthread_rwlock_unlock(&v->cp_lock);
	wnode_put(wn);
}

static int map_corrupt(int rc)
{
	return rc == -FL_ECORRUPT ? -EIO : rc;
}

/* ------------------------------------------------------------- root */

int wafl_root(wafl_vol_t *v, struct wafl_obj *root)
{
	struct wnode *wn;
	int rc;

	pthread_rwlock_rdlock(&v->cp_lock);
	rc = wnode_get(v, WAFL_INO_ROOTDIR, &wn);
	if (rc == 0) {
		pthread_rwlock_rdlock(&wn->lock);
		*root = (struct wafl_obj){ WAFL_INO_ROOTDIR, wn->di.gen, 0 };
		if (!S_ISDIR(wn->di.mode))
			rc = FL_ERR(-EIO);
		pthread_rwlock_unlock(&wn->lock);
		wnode_put(wn);
	}
	pthread_rwlock_unlock(&v->cp_lock);
	return rc;
}

int wafl_getattr(wafl_vol_t *v, const struct wafl_obj *o,
    struct wafl_attr *attr)
{
	struct wnode *wn;
	int rc;

	if (o->snap != 0)
		return ops_snap_getattr(v, o, attr);
	rc = read_begin(v, o, &wn);

	if (rc != 0)
		return rc;
	ops_fill_attr(v, wn, attr);
	read_end(v, wn);
	return 0;
}

/* ---------------------------------------------------------- setattr */

/*
 * A file made by an EXCLUSIVE CREATE keeps its verifier until the first
 * change after it (the client's SETATTR, or a write): a CREATE with that
 * verifier is a retransmission until then, EEXIST after, as when a
 * server keeps the verifier in the file's times.  Applied the same way
 * live and in replay.
 */
static void excl_done(struct wafl_dinode *di)
{
	di->flags &= ~WAFL_INO_EXCL;
	di->verifier = 0;
}

int ops_apply_setattr(struct wafl_vol *v, struct wnode *wn,
    const struct rec_setattr *r)
{
	struct wafl_dinode *di = &wn->di;
	int rc;

	if (r->mask & REC_SA_SIZE) {
		if (!S_ISREG(di->mode))
			return FL_ERR(-FL_ECORRUPT);
		rc = wn_set_size(wn, r->size);
		if (rc != 0)
			return rc;
	}
	if (r->mask & REC_SA_MODE)
		di->mode = (di->mode & S_IFMT) | (r->mode & 07777);
	if (r->mask & REC_SA_UID)
		di->uid = r->uid;
	if (r->mask & REC_SA_GID)
		di->gid = r->gid;
	if (r->mask & REC_SA_ATIME)
		di->atime_ns = r->atime;
	if (r->mask & REC_SA_MTIME)
		di->mtime_ns = r->mtime;
	di->ctime_ns = r->ctime;
	excl_done(di);
	wnode_dirty(wn);
	return 0;
}

/* One time attribute: DONT, SERVER (owner or writer), CLIENT (owner). */
static int time_plan(enum wafl_time_how how, uint64_t client_ns, uint64_t now,
    bool owner, bool may_write, uint32_t bit, uint32_t *mask, uint64_t *out)
{
	switch (how) {
	case WAFL_TIME_DONT:
		return 0;
	case WAFL_TIME_SERVER:
		if (!may_write)
			return -EACCES;
		*out = now;
		break;
	case WAFL_TIME_CLIENT:
		if (!owner)
			return -EPERM;
		*out = client_ns;
		break;
	default:
		return FL_ERR(-EINVAL);
	}
	*mask |= bit;
	return 0;
}

/*
 * The set-id bits a change of a regular file's contents by c takes away,
 * as the kernel's file_remove_privs does for a writer without
 * CAP_FSETID: set-user-ID always, set-group-ID when group execute is on
 * too (without it the bit marks mandatory locking, not a program).  Root
 * keeps them; anyone else, the owner too, could otherwise change a
 * set-id program and keep its privilege.
 */
uint32_t ops_write_kills(const struct wafl_cred *c,
    const struct wafl_dinode *di)
{
	uint32_t kill = 0;

	if (c == NULL || c->uid == 0 || !S_ISREG(di->mode))
		return 0;
	if (di->mode & S_ISUID)
		kill |= S_ISUID;
	if ((di->mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		kill |= S_ISGID;
	return kill;
}

/* Build the record for sa on wn (locked): permission checks and the
 * resolved values.  *none: nothing to change. */
static int setattr_plan(const struct wafl_cred *c, const struct wnode *wn,
    const struct wafl_sattr *sa, struct rec_setattr *r)
{
	const struct wafl_dinode *di = &wn->di;
	uint64_t now = fl_now_real_ns();
	bool owner = is_owner(c, di);
	bool root = c == NULL || c->uid == 0;

	memset(r, 0, sizeof(*r));
	r->ino = wn->ino;
	r->gen = di->gen;
	r->ctime = now;
	if (sa->set_size) {
		if (S_ISDIR(di->mode))
			return -EISDIR;
		if (!S_ISREG(di->mode))
			return FL_ERR(-EINVAL);
		if (sa->size > WAFL_MAX_FILE_SIZE)
			return -EFBIG;
		if (!owner && !ops_may(di, c, OPS_MAY_W))
			return -EACCES;
		r->mask |= REC_SA_SIZE | REC_SA_MTIME;
		r->size = sa->size;
		r->mtime = now;
	}
	if (sa->set_uid && sa->uid != di->uid) {
		if (!root)
			return -EPERM;
		r->mask |= REC_SA_UID;
		r->uid = sa->uid;
	}
	if (sa->set_gid && sa->gid != di->gid) {
		if (!root && !(owner && ops_cred_in_group(c, sa->gid)))
			return -EPERM;
		r->mask |= REC_SA_GID;
		r->gid = sa->gid;
	}
	if (sa->set_mode) {
		if (!owner)
			return -EPERM;
		r->mask |= REC_SA_MODE;
		r->mode = sa->mode & 07777;
		uint32_t g = (r->mask & REC_SA_GID) ? r->gid : di->gid;
		if (!root && !S_ISDIR(di->mode) && !ops_cred_in_group(c, g))
			r->mode &= ~(uint32_t)S_ISGID;
	} else if ((r->mask & (REC_SA_UID | REC_SA_GID)) && S_ISREG(di->mode) &&
	    (di->mode & (S_ISUID | S_ISGID))) {
		/* A new owner or group drops set-id bits (as chown(2)). */
		r->mask |= REC_SA_MODE;
		r->mode = di->mode & 07777 & ~(uint32_t)(S_ISUID | S_ISGID);
	} else if ((r->mask & REC_SA_SIZE) && ops_write_kills(c, di) != 0) {
		/* So does a change of the contents (ops_write_kills). */
		r->mask |= REC_SA_MODE;
		r->mode = di->mode & 07777 & ~ops_write_kills(c, di);
	}
	bool may_w = owner || ops_may(di, c, OPS_MAY_W);
	int rc = time_plan(sa->atime_how, sa->atime_ns, now, owner, may_w,
	    REC_SA_ATIME, &r->mask, &r->atime);
	if (rc == 0)
		rc = time_plan(sa->mtime_how, sa->mtime_ns, now, owner, may_w,
		    REC_SA_MTIME, &r->mask, &r->mtime);
	return rc;
}

static bool sattr_empty(const struct wafl_sattr *sa)
{
	return !sa->set_mode && !sa->set_uid && !sa->set_gid &&
	    !sa->set_size && sa->atime_how == WAFL_TIME_DONT &&
	    sa->mtime_how == WAFL_TIME_DONT;
}

/* o's wnode, write-locked, in a transaction for one SETATTR record (the
 * caller checks it is live, unlocks, puts it and ends tx). */
static int setattr_begin(struct wafl_vol *v, const struct wafl_obj *o,
    struct wnode **wn, struct ops_tx *tx)
{
	int rc = ops_obj_get(v, o, true, wn);

	if (rc != 0)
		return rc;
	rc = ops_tx_begin(v, REC_SETATTR_SIZE, 0, tx);
	if (rc != 0) {
		wnode_put(*wn);
		return rc;
	}
	pthread_rwlock_wrlock(&(*wn)->lock);
	return 0;
}

int wafl_setattr(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *o, const struct wafl_sattr *sa,
    const uint64_t *guard_ctime, struct wafl_wcc *pre,
    struct wafl_attr *post)
{
	struct wnode *wn;
	struct ops_tx tx;
	struct rec_setattr r;
	int rc;

	if (pre != NULL)
		pre->valid = false;
	if (sa == NULL)
		return FL_ERR(-EINVAL);
	rc = setattr_begin(v, o, &wn, &tx);
	if (rc != 0)
		return rc;
	rc = ops_live(wn, o->gen);
	if (rc != 0)
		goto unlock;
	ops_fill_wcc(wn, pre);
	if (guard_ctime != NULL && *guard_ctime != wn->di.ctime_ns) {
		rc = -FL_ENOTSYNC;
		goto unlock;
	}
	if (sattr_empty(sa))
		goto unlock;
	rc = setattr_plan(c, wn, sa, &r);
	if (rc == 0)
		rc = ops_apply_setattr(v, wn, &r);
	if (rc == 0) {
		uint8_t buf[REC_SETATTR_SIZE];
		struct iovec iov = { buf, rec_setattr_encode(buf, &r) };
		rc = ops_tx_commit(&tx, REC_SETATTR, &iov, 1);
	}
unlock:
	if (ops_live(wn, o->gen) == 0)
		ops_fill_attr(v, wn, post);
	pthread_rwlock_unlock(&wn->lock);
	wnode_put(wn);
	return map_corrupt(ops_tx_end(&tx, rc, true));
}

/* ----------------------------------------------------------- access */

int wafl_access(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *o, uint32_t want, uint32_t *granted,
    struct wafl_attr *attr)
{
	struct wnode *wn;
	uint32_t g = 0;
	int rc;

	*granted = 0;
	if (o->snap != 0)
		return ops_snap_access(v, c, o, want, granted, attr);
	rc = read_begin(v, o, &wn);
	if (rc != 0)
		return rc;
	const struct wafl_dinode *di = &wn->di;
	bool dir = S_ISDIR(di->mode);
	bool ro = v->readonly || o->snap != 0;
	if (ops_may(di, c, OPS_MAY_R))
		g |= WAFL_ACCESS_READ;
	if (dir && ops_may(di, c, OPS_MAY_X))
		g |= WAFL_ACCESS_LOOKUP;
	if (!dir && ops_may(di, c, OPS_MAY_X))
		g |= WAFL_ACCESS_EXECUTE;
	/* A directory's entries change only with search permission too, as
	 * every namespace operation checks. */
	if (!ro && ops_may(di, c, dir ? OPS_MAY_W | OPS_MAY_X : OPS_MAY_W)) {
		g |= WAFL_ACCESS_MODIFY | WAFL_ACCESS_EXTEND;
		if (dir)
			g |= WAFL_ACCESS_DELETE;
	}
	*granted = g & want;
	ops_fill_attr(v, wn, attr);
	read_end(v, wn);
	return 0;
}

/* ----------------------------------------------------------- lookup */

int wafl_lookup(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, struct wafl_obj *out,
    struct wafl_attr *attr, struct wafl_attr *dir_attr)
{
	struct wnode *dw, *wn = NULL;
	struct dirfile df;
	struct dir_ent ent;
	size_t nl;
	int rc;

	if (name == NULL || name[0] == '\0')
		return -ENOENT;
	rc = ops_name_check(name, &nl);
	if (rc != 0)
		return rc;
	if (dir->snap != 0)
		return ops_snap_lookup(v, c, dir, name, out, attr, dir_attr);
	rc = read_begin(v, dir, &dw);
	if (rc != 0)
		return rc;
	if (!S_ISDIR(dw->di.mode)) {
		rc = -ENOTDIR;
		goto out;
	}
	ops_fill_attr(v, dw, dir_attr);
	if (!ops_may(&dw->di, c, OPS_MAY_X)) {
		rc = -EACCES;
		goto out;
	}
	if (ops_is_dot(name)) {
		*out = (struct wafl_obj){ dw->ino, dw->di.gen, 0 };
		ops_fill_attr(v, dw, attr);
		goto out;
	}
	if (ops_is_dotdot(name)) {
		/* Never wait for the parent while holding the child. */
		uint64_t parent = dw->di.parent;
		pthread_rwlock_unlock(&dw->lock);
		if (dw->ino == WAFL_INO_ROOTDIR)
			parent = WAFL_INO_ROOTDIR;
		rc = wnode_get(v, parent, &wn);
		if (rc == 0) {
			pthread_rwlock_rdlock(&wn->lock);
			if (!S_ISDIR(wn->di.mode))
				rc = FL_ERR(-FL_ECORRUPT);
			*out = (struct wafl_obj){ wn->ino, wn->di.gen, 0 };
			ops_fill_attr(v, wn, attr);
			pthread_rwlock_unlock(&wn->lock);
			wnode_put(wn);
		}
		pthread_rwlock_unlock(&v->cp_lock);
		wnode_put(dw);
		return map_corrupt(rc);
	}
	wn_dirfile(dw, &df);
	rc = dir_lookup(&df, name, nl, &ent);
	if (rc == 0)
		rc = ops_entry_ino_check(dw->ino, name, ent.ino);
	if (rc != 0)
		goto out;
	rc = wnode_get(v, ent.ino, &wn);
	if (rc != 0)
		goto out;
	pthread_rwlock_rdlock(&wn->lock);
	if (wn->di.mode == 0) {
		rc = FL_ERR(-FL_ECORRUPT);
	} else {
		*out = (struct wafl_obj){ wn->ino, wn->di.gen, 0 };
		ops_fill_attr(v, wn, attr);
	}
	pthread_rwlock_unlock(&wn->lock);
	wnode_put(wn);
out:
	read_end(v, dw);
	return map_corrupt(rc);
}

/* ------------------------------------------------------- read, write */

/* May c READ the object of di?  Its owner may, and so may whoever may
 * execute it: a client runs a program by reading it (mode 0711). */
static int read_allowed(const struct wafl_cred *c,
    const struct wafl_dinode *di)
{
	if (S_ISDIR(di->mode))
		return -EISDIR;
	if (!S_ISREG(di->mode))
		return FL_ERR(-EINVAL);
	if (!is_owner(c, di) && !ops_may(di, c, OPS_MAY_R) &&
	    !ops_may(di, c, OPS_MAY_X))
		return -EACCES;
	return 0;
}

/* wafl_read into rv (pieces lent or filled) or, with rv NULL, into buf. */
static int read_into(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *o, uint64_t off, uint32_t count, void *buf,
    struct wafl_rdvec *rv, uint32_t *got, bool *eof, struct wafl_attr *attr)
{
	struct wnode *wn;
	int rc;

	*got = 0;
	*eof = false;
	if (o->snap != 0)
		return ops_snap_read(v, c, o, off, count, buf, got, eof, attr);
	rc = read_begin(v, o, &wn);
	if (rc != 0)
		return rc;
	rc = read_allowed(c, &wn->di);
	if (rc == 0 && rv != NULL && (wn->di.flags & WAFL_INO_INLINE)) {
		/* Data in the inode: copied. */
		rv->buf = malloc(count ? count : 1);
		rc = rv->buf == NULL ? -ENOMEM : wn_read(wn, off, count,
		    rv->buf, got, eof);
		if (rc == 0 && *got > 0)
			rdvec_add(rv, rv->buf, *got);
	} else if (rc == 0 && rv != NULL) {
		rc = wn_read_vec(wn, off, count, rv, got, eof);
	} else if (rc == 0) {
		rc = wn_read(wn, off, count, buf, got, eof);
	}
	ops_fill_attr(v, wn, attr);
	read_end(v, wn);
	return map_corrupt(rc);
}

int wafl_read(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *o, uint64_t off, uint32_t count, void *buf,
    uint32_t *got, bool *eof, struct wafl_attr *attr)
{
	return read_into(v, c, o, off, count, buf, NULL, got, eof, attr);
}

int wafl_read_vec(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *o, uint64_t off, uint32_t count,
    struct wafl_rdvec **out, uint32_t *got, bool *eof,
    struct wafl_attr *attr)
{
	struct wafl_rdvec *rv = rdvec_alloc(count);
	int rc;

	*out = NULL;
	*got = 0;
	*eof = false;
	if (rv == NULL)
		return -ENOMEM;
	if (o->snap == 0) {
		rc = read_into(v, c, o, off, count, NULL, rv, got, eof, attr);
	} else {
		/* A snapshot's file: copied. */
		rv->buf = malloc(count ? count : 1);
		rc = rv->buf == NULL ? -ENOMEM : read_into(v, c, o, off,
		    count, rv->buf, NULL, got, eof, attr);
		if (rc == 0 && *got > 0)
			rdvec_add(rv, rv->buf, *got);
	}
	if (rc != 0) {
		wafl_rdvec_free(rv);
		return rc;
	}
	*out = rv;
	return 0;
}

int ops_apply_write(struct wafl_vol *v, struct wnode *wn,
    const struct rec_write *r)
{
	int rc;

	if (!S_ISREG(wn->di.mode))
		return FL_ERR(-FL_ECORRUPT);
	rc = wn_write(wn, r->off, r->len, r->data);
	wn->di.mtime_ns = wn->di.ctime_ns = r->mtime;
	excl_done(&wn->di);
	wnode_dirty(wn);
	return rc;
}

/*
 * Take the set-id bits a write by c removes (ops_write_kills) off o's mode:
 * a SETATTR record of its own, logged before the write's, so that replay
 * never finds the new contents under the old bits.  It need not wait for
 * the log: the write's own wait (FILE_SYNC) or its COMMIT's CP covers it.
 */
static int kill_setid(struct wafl_vol *v, const struct wafl_cred *c,
    const struct wafl_obj *o)
{
	struct wnode *wn;
	struct ops_tx tx;
	struct rec_setattr r;
	int rc = setattr_begin(v, o, &wn, &tx);

	if (rc != 0)
		return rc;
	rc = ops_live(wn, o->gen);
	uint32_t kill = rc == 0 ? ops_write_kills(c, &wn->di) : 0;
	if (kill != 0) {
		memset(&r, 0, sizeof(r));
		r.ino = wn->ino;
		r.gen = wn->di.gen;
		r.ctime = fl_now_real_ns();
		r.mask = REC_SA_MODE;
		r.mode = wn->di.mode & 07777 & ~kill;
		rc = ops_apply_setattr(v, wn, &r);
		if (rc == 0) {
			uint8_t rb[REC_SETATTR_SIZE];
			struct iovec iov = { rb, rec_setattr_encode(rb, &r) };
			rc = ops_tx_commit(&tx, REC_SETATTR, &iov, 1);
		}
	}
	pthread_rwlock_unlock(&wn->lock);
	wnode_put(wn);
	return map_corrupt(ops_tx_end(&tx, rc, false));
}

int wafl_write(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *o, uint64_t off, uint32_t count, const void *buf,
    enum wafl_stable stable, enum wafl_stable *committed,
    struct wafl_wcc *pre, struct wafl_attr *post)
{
	struct wnode *wn;
	struct ops_tx tx;
	struct wafl_wcc *wcc = pre;	/* this try's pre-op attributes */
	int rc, kills = 0;

	if (pre != NULL)
		pre->valid = false;
again:
	*committed = WAFL_UNSTABLE;
	if (count > OPS_WRITE_MAX)
		return FL_ERR(-EINVAL);
	if (off > WAFL_MAX_FILE_SIZE || count > WAFL_MAX_FILE_SIZE - off)
		return -EFBIG;
	rc = ops_obj_get(v, o, true, &wn);
	if (rc != 0)
		return rc;
	uint64_t need = count / WAFL_BLOCK_SIZE + 2 + 2 * WAFL_MAX_HEIGHT;
	bool unstable = stable == WAFL_UNSTABLE;
	uint32_t payload = REC_WRITE_FIXED + (unstable ? 0 : count);
	rc = ops_tx_begin(v, payload, need, &tx);
	if (rc == 0)
		rc = ops_tx_wrlock(&tx, wn, payload, need);
	if (rc != 0) {
		wnode_put(wn);
		return rc;
	}
	rc = ops_live(wn, o->gen);
	if (rc != 0)
		goto unlock;
	ops_fill_wcc(wn, wcc);
	if (S_ISDIR(wn->di.mode)) {
		rc = -EISDIR;
		goto unlock;
	}
	if (!S_ISREG(wn->di.mode)) {
		rc = FL_ERR(-EINVAL);
		goto unlock;
	}
	if (!is_owner(c, &wn->di) && !ops_may(&wn->di, c, OPS_MAY_W)) {
		rc = -EACCES;
		goto unlock;
	}
	if (count == 0)
		goto unlock;
	if (ops_write_kills(c, &wn->di) != 0) {
		/* The bits go first, in a record of their own; then the
		 * write starts over (the wcc data stay the first try's). */
		pthread_rwlock_unlock(&wn->lock);
		wnode_put(wn);
		(void)ops_tx_end(&tx, 0, false);
		if (++kills > 3)
			return -EAGAIN;	/* chmod +s racing every try */
		rc = kill_setid(v, c, o);
		if (rc != 0)
			return rc;
		wcc = NULL;
		goto again;
	}
	struct rec_write r = {
		.ino = wn->ino, .gen = wn->di.gen, .off = off, .len = count,
		.mtime = fl_now_real_ns(), .data = buf,
	};
	rc = ops_apply_write(v, wn, &r);
	if (rc != 0) {
		fl_warn("wafl", "write to inode %llu failed: %s",
		    (unsigned long long)wn->ino, fl_strerror(rc));
		goto unlock;
	}
	if (unstable) {
		wn->unlogged_gen = v->open_gen;
		tx.changed = true;
		goto unlock;
	}
	uint8_t hdr[REC_WRITE_FIXED];
	struct iovec iov[2] = {
		{ hdr, rec_write_encode(hdr, &r) },
		{ (void *)(uintptr_t)buf, count },
	};
	rc = ops_tx_commit(&tx, REC_WRITE, iov, 2);
unlock:
	if (ops_live(wn, o->gen) == 0)
		ops_fill_attr(v, wn, post);
	pthread_rwlock_unlock(&wn->lock);
	wnode_put(wn);
	rc = ops_tx_end(&tx, rc, stable != WAFL_UNSTABLE);
	if (rc == 0)
		*committed = stable == WAFL_UNSTABLE && count > 0 ?
		    WAFL_UNSTABLE : WAFL_FILE_SYNC;
	return map_corrupt(rc);
}

/* Make o's UNSTABLE data durable: CP until a durable root holds it.  A CP
 * is atomic, so a COMMIT cut short by a crash leaves either all of the
 * file's data of that generation or none of it. */
static int commit_unlogged(struct wafl_vol *v, const struct wafl_obj *o)
{
	struct wnode *wn;
	int rc = ops_obj_get(v, o, true, &wn);

	if (rc != 0)
		return rc;
	while (rc == 0) {
		pthread_rwlock_rdlock(&v->cp_lock);
		pthread_rwlock_rdlock(&wn->lock);
		uint64_t durable = __atomic_load_n(&v->durable_gen,
		    __ATOMIC_ACQUIRE);
		bool need = ops_live(wn, o->gen) == 0 && wn->unlogged_gen != 0 &&
		    wn->unlogged_gen > durable;
		pthread_rwlock_unlock(&wn->lock);
		pthread_rwlock_unlock(&v->cp_lock);
		if (!need)
			break;
		rc = cp_run(v);
		if (rc != 0)
			rc = -EIO;
	}
	wnode_put(wn);
	return rc;
}

int wafl_commit(wafl_vol_t *v, const struct wafl_obj *o,
    struct wafl_attr *post)
{
	struct wnode *wn;
	int rc;

	if (o->snap != 0)	/* nothing unstable in a snapshot */
		return ops_snap_getattr(v, o, post);
	if (!v->readonly && v->log != NULL &&
	    !__atomic_load_n(&v->failed, __ATOMIC_ACQUIRE)) {
		rc = commit_unlogged(v, o);
		if (rc != 0)
			return rc == -ESTALE ? rc : -EIO;
	}
	rc = read_begin(v, o, &wn);
	if (rc != 0)
		return rc;
	ops_fill_attr(v, wn, post);
	read_end(v, wn);
	if (v->readonly || v->log == NULL)
		return 0;
	if (__atomic_load_n(&v->failed, __ATOMIC_ACQUIRE))
		return -EIO;
	rc = nvlog_sync(v->log);
	if (rc != 0) {
		ops_fail(v, rc);
		return -EIO;
	}
	return 0;
}

/* --------------------------------------------------------- readlink */

int wafl_readlink(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *o, char *buf, size_t bufsz, size_t *len,
    struct wafl_attr *attr)
{
	struct wnode *wn;
	uint32_t got = 0;
	bool eof;
	int rc;

	if (o->snap != 0)
		return ops_snap_readlink(v, o, buf, bufsz, len, attr);
	rc = read_begin(v, o, &wn);
	*len = 0;
	if (rc != 0)
		return rc;
	const struct wafl_dinode *di = &wn->di;
	if (!S_ISLNK(di->mode)) {
		rc = FL_ERR(-EINVAL);
	} else if (di->size > WAFL_PATH_MAX) {
		rc = FL_ERR(-EIO);	/* not a link this code made */
	} else if (bufsz < di->size + 1) {
		rc = -ENAMETOOLONG;
	} else {
		rc = wn_read(wn, 0, (uint32_t)di->size, buf, &got, &eof);
		if (rc == 0 && got != di->size)
			rc = FL_ERR(-EIO);
		if (rc == 0) {
			buf[got] = '\0';
			*len = got;
		}
	}
	ops_fill_attr(v, wn, attr);
	read_end(v, wn);
	return map_corrupt(rc);
}

/* ---------------------------------------------------------- readdir */

struct rd_ctx {
	struct wafl_vol *v;
	bool plus;
	wafl_readdir_fn *fn;
	void *arg;
	bool stopped;
	bool search;		/* the caller may look names up (x) */
};

static int rd_emit(struct rd_ctx *x, const char *name, uint64_t ino,
    uint64_t cookie, const struct wafl_obj *obj, const struct wafl_attr *a)
{
	struct wafl_dirent de = {
		.name = name, .fileid = ino, .cookie = cookie,
		.obj = x->plus ? obj : NULL, .attr = x->plus ? a : NULL,
	};

	if (x->fn(x->arg, &de) != 0) {
		x->stopped = true;
		return 1;
	}
	return 0;
}

static int rd_entry(void *arg, const struct dir_ent *ent)
{
	struct rd_ctx *x = arg;
	struct wafl_attr a;
	struct wafl_obj obj;
	bool have = false;

	/* A reserved inode an entry names gets no handle or attributes, nor
	 * does any entry for a caller without search permission: it could
	 * not LOOKUP them (names only, as READDIR). */
	if (x->plus && x->search && ent->ino >= WAFL_INO_FIRST_USER &&
	    ent->ino < WAFL_INO_LIMIT) {
		struct wnode *wn;
		if (wnode_get(x->v, ent->ino, &wn) == 0) {
			pthread_rwlock_rdlock(&wn->lock);
			if (wn->di.mode != 0) {
				obj = (struct wafl_obj){ wn->ino, wn->di.gen,
				    0 };
				ops_fill_attr(x->v, wn, &a);
				have = true;
			}
			pthread_rwlock_unlock(&wn->lock);
			wnode_put(wn);
		}
	}
	return rd_emit(x, ent->name, ent->ino, ent->key, have ? &obj : NULL,
	    have ? &a : NULL);
}

int wafl_readdir(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, uint64_t cookie, bool plus,
    wafl_readdir_fn *fn, void *arg, bool *eof, struct wafl_attr *dir_attr)
{
	struct rd_ctx x = { v, plus, fn, arg, false, false };
	struct wafl_attr pa;
	struct wafl_obj pobj;
	bool have_parent = false;
	struct wnode *dw;
	int rc;

	*eof = false;
	if (dir->snap != 0)
		return ops_snap_readdir(v, c, dir, cookie, plus, fn, arg, eof,
		    dir_attr);
	if (plus && cookie <= 1) {
		/* ".." first, without holding the directory (child before
		 * parent would invert the lock order). */
		rc = read_begin(v, dir, &dw);
		if (rc != 0)
			return rc;
		uint64_t parent = dw->ino == WAFL_INO_ROOTDIR ?
		    WAFL_INO_ROOTDIR : dw->di.parent;
		bool isdir = S_ISDIR(dw->di.mode);
		read_end(v, dw);
		struct wnode *pw;
		if (isdir && wnode_get(v, parent, &pw) == 0) {
			pthread_rwlock_rdlock(&v->cp_lock);
			pthread_rwlock_rdlock(&pw->lock);
			if (S_ISDIR(pw->di.mode)) {
				pobj = (struct wafl_obj){ pw->ino, pw->di.gen,
				    0 };
				ops_fill_attr(v, pw, &pa);
				have_parent = true;
			}
			pthread_rwlock_unlock(&pw->lock);
			pthread_rwlock_unlock(&v->cp_lock);
			wnode_put(pw);
		}
	}
	rc = read_begin(v, dir, &dw);
	if (rc != 0)
		return rc;
	if (!S_ISDIR(dw->di.mode)) {
		rc = -ENOTDIR;
		goto out;
	}
	ops_fill_attr(v, dw, dir_attr);
	if (!ops_may(&dw->di, c, OPS_MAY_R)) {
		rc = -EACCES;
		goto out;
	}
	x.search = ops_may(&dw->di, c, OPS_MAY_X);
	if (cookie == 0) {
		struct wafl_attr da;
		struct wafl_obj dobj = { dw->ino, dw->di.gen, 0 };
		ops_fill_attr(v, dw, &da);
		if (rd_emit(&x, ".", dw->ino, 1, &dobj, &da) != 0)
			goto out;
	}
	if (cookie <= 1) {
		uint64_t parent = dw->ino == WAFL_INO_ROOTDIR ?
		    WAFL_INO_ROOTDIR : dw->di.parent;
		if (rd_emit(&x, "..", parent, 2, have_parent ? &pobj : NULL,
		    have_parent ? &pa : NULL) != 0)
			goto out;
	}
	struct dirfile df;
	wn_dirfile(dw, &df);
	rc = dir_iterate(&df, cookie < 2 ? 2 : cookie, rd_entry, &x);
	if (rc > 0)
		rc = 0;
	if (rc == 0 && !x.stopped)
		*eof = true;
out:
	read_end(v, dw);
	return map_corrupt(rc);
}

uint64_t wafl_cookieverf(const wafl_vol_t *v, const struct wafl_obj *dir)
{
	/* Cookies are hash keys that stay valid: one constant per file
	 * system (the same on a mirror after failover). */
	return fl_get_le64(v->fsi.dir_key) | 1;
}

/* ------------------------------------------------------------ statfs */

int wafl_statfs(wafl_vol_t *v, struct wafl_fsstat *st)
{
	uint64_t reserve = v->nvbns / 100 < 256 ? 256 : v->nvbns / 100;

	pthread_rwlock_rdlock(&v->cp_lock);
	uint64_t est = alloc_free_estimate(v);
	uint64_t dirty = __atomic_load_n(&v->ndirty_bufs, __ATOMIC_RELAXED);
	uint64_t used_inodes = v->inodes_used;
	pthread_rwlock_unlock(&v->cp_lock);
	uint64_t free_blocks = est > dirty ? est - dirty : 0;
	st->tbytes = v->nvbns * WAFL_BLOCK_SIZE;
	st->fbytes = free_blocks * WAFL_BLOCK_SIZE;
	st->abytes = free_blocks > reserve ?
	    (free_blocks - reserve) * WAFL_BLOCK_SIZE : 0;
	/* An inode costs 512 bytes of inode file: the space bounds them. */
	uint64_t ffree = free_blocks * WAFL_INODES_PER_BLOCK;
	uint64_t cap = (1ull << 40) - WAFL_INO_FIRST_USER;
	if (ffree > cap)
		ffree = cap;
	st->ffiles = ffree;
	st->afiles = st->abytes / WAFL_INODE_SIZE < ffree ?
	    st->abytes / WAFL_INODE_SIZE : ffree;
	st->tfiles = used_inodes + ffree;
	return 0;
}

/* ----------------------------------------------------------- replay */

static int replay_obj(struct wafl_vol *v, uint64_t ino, uint32_t gen,
    struct wnode **out)
{
	int rc;

	/* What a client can name (ops_obj_get): never a special file. */
	*out = NULL;
	if (ino != WAFL_INO_ROOTDIR && (ino < WAFL_INO_FIRST_USER ||
	    ino >= WAFL_INO_LIMIT)) {
		fl_err("wafl", "replay: inode %llu is no client's object",
		    (unsigned long long)ino);
		return FL_ERR(-FL_ECORRUPT);
	}
	rc = wnode_get(v, ino, out);
	if (rc != 0)
		return rc;
	if ((*out)->di.mode == 0 || (*out)->di.gen != gen) {
		fl_err("wafl", "replay: inode %llu generation %u is not in use",
		    (unsigned long long)ino, gen);
		wnode_put(*out);
		*out = NULL;
		return FL_ERR(-FL_ECORRUPT);
	}
	return 0;
}

int ops_replay_setattr(struct wafl_vol *v, const struct rec_setattr *r)
{
	struct wnode *wn;
	int rc;

	pthread_rwlock_rdlock(&v->cp_lock);
	rc = replay_obj(v, r->ino, r->gen, &wn);
	if (rc == 0) {
		pthread_rwlock_wrlock(&wn->lock);
		rc = ops_apply_setattr(v, wn, r);
		pthread_rwlock_unlock(&wn->lock);
		wnode_put(wn);
	}
	pthread_rwlock_unlock(&v->cp_lock);
	return rc;
}

int ops_replay_write(struct wafl_vol *v, const struct rec_write *r)
{
	struct wnode *wn;
	int rc;

	pthread_rwlock_rdlock(&v->cp_lock);
	rc = replay_obj(v, r->ino, r->gen, &wn);
	if (rc == 0) {
		pthread_rwlock_wrlock(&wn->lock);
		rc = ops_apply_write(v, wn, r);
		pthread_rwlock_unlock(&wn->lock);
		wnode_put(wn);
	}
	pthread_rwlock_unlock(&v->cp_lock);
	return rc;
}
