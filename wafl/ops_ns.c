/*
 * wafl/ops_ns.c: namespace operations — CREATE (unchecked, guarded,
 * exclusive), MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, RENAME, LINK — and their
 * NVLOG replay.
 *
 * Each live operation follows ops.h: transaction, wnode locks in the W-L
 * order, checks, ops_apply_* (memory), record, unlock, wait.  Replay calls
 * the same ops_apply_* with the recorded inode number, generation and
 * directory key (dir_add's force_key).
 *
 * Link counts (W8): a file's nlink is its number of names; a directory's is
 * 2 + its subdirectories ("." and each child's ".."); di.parent of a
 * directory names the directory holding it (the root's is itself).
 *
 * RENAME locking: vol->rename_lock serializes renames, so directory ancestry
 * only changes under it.  The two directories are locked ancestor first
 * (else by inode number), found by walking di.parent from each to the root;
 * the same walk refuses a directory moved into its own subtree (-EINVAL)
 * and a target that is an ancestor of the source directory (it is not
 * empty).  The moved and the replaced objects are locked after both
 * directories: a directory before a file (a file may also be named in
 * that directory), else by inode number.  The inode numbers of the two
 * directories are not reused while the RENAME holds them (ialloc), so the
 * order found stays right if one is removed meanwhile.  The target name
 * resolves to the old or the new object at every instant another
 * operation can see (all under the locks).
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

/* Blocks a namespace operation may dirty per directory touched: the
 * directory tree's path, splits up to the root, header, indirects. */
#define NS_BLOCKS	(2 * DIR_MAX_HEIGHT + 2 * WAFL_MAX_HEIGHT + 4)

static void dwcc_pre(struct wafl_dirwcc *d, const struct wnode *dir)
{
	if (d != NULL) {
		ops_fill_wcc(dir, &d->pre);
		d->post_valid = false;
	}
}

static void dwcc_post(struct wafl_vol *v, struct wafl_dirwcc *d,
    const struct wnode *dir)
{
	if (d != NULL) {
		ops_fill_attr(v, dir, &d->post);
		d->post_valid = true;
	}
}

static void dwcc_clear(struct wafl_dirwcc *d)
{
	if (d != NULL)
		memset(d, 0, sizeof(*d));
}

/* Checks on a locked directory the caller will modify. */
static int dir_writable(const struct wnode *dw, const struct wafl_obj *o,
    const struct wafl_cred *c)
{
	int rc = ops_live(dw, o->gen);

	if (rc != 0)
		return rc;
	if (!S_ISDIR(dw->di.mode))
		return -ENOTDIR;
	if (!ops_may(&dw->di, c, OPS_MAY_W | OPS_MAY_X))
		return -EACCES;
	return 0;
}

/* An entry of a sticky directory (S_ISVTX) is removed or replaced only by
 * the owner of its object, the owner of the directory, or root. */
static int sticky_ok(const struct wnode *dw, const struct wnode *obj,
    const struct wafl_cred *c)
{
	if (!(dw->di.mode & S_ISVTX) || c == NULL || c->uid == 0 ||
	    c->uid == dw->di.uid || c->uid == obj->di.uid)
		return 0;
	return -EPERM;
}

static int lookup_locked(struct wnode *dw, const char *name,
    struct dir_ent *ent)
{
	struct dirfile df;

	wn_dirfile(dw, &df);
	int rc = dir_lookup(&df, name, strlen(name), ent);
	if (rc == 0)
		rc = ops_entry_ino_check(dw->ino, name, ent->ino);
	return rc;
}

/* Get and lock (exclusive) the live object an entry names. */
static int entry_obj(struct wafl_vol *v, const struct dir_ent *ent,
    struct wnode **out)
{
	struct wnode *wn;
	int rc = wnode_get(v, ent->ino, &wn);

	*out = NULL;
	if (rc != 0)
		return rc;
	pthread_rwlock_wrlock(&wn->lock);
	if (wn->di.mode == 0) {
		pthread_rwlock_unlock(&wn->lock);
		wnode_put(wn);
		fl_err("wafl", "directory entry names free inode %llu",
		    (unsigned long long)ent->ino);
		return FL_ERR(-FL_ECORRUPT);
	}
	*out = wn;
	return 0;
}

/*
 * Get (not lock) the live object an entry of a directory locked exclusive
 * names, and whether it is a directory: read under its lock shared, and
 * fixed while the entry stays (the object is in use).
 */
static int entry_peek(struct wafl_vol *v, const struct dir_ent *ent,
    struct wnode **out, bool *isdir)
{
	int rc = entry_obj(v, ent, out);

	if (rc != 0)
		return rc;
	*isdir = S_ISDIR((*out)->di.mode);
	pthread_rwlock_unlock(&(*out)->lock);
	return 0;
}

static int first_entry(void *arg, const struct dir_ent *ent)
{
	(void)arg;
	(void)ent;
	return 1;
}

static int dir_is_empty(struct wnode *dw, bool *empty)
{
	struct dirfile df;
	uint64_t n = 0;
	int rc;

	wn_dirfile(dw, &df);
	rc = dir_count(&df, &n);
	*empty = n == 0;
	if (rc != 0 || n != 0)
		return rc;
	/* The header's count is read from disk: an empty directory has
	 * no entry in its leaves either (one descent), or its entries'
	 * objects would be orphaned. */
	rc = dir_iterate(&df, 0, first_entry, NULL);
	if (rc == 1) {
		fl_err("wafl", "W8: directory %llu: its header counts no "
		    "entries, its index holds some",
		    (unsigned long long)dw->ino);
		rc = FL_ERR(-FL_ECORRUPT);
	}
	if (rc != 0)
		*empty = false;
	return rc;
}

static int map_corrupt(int rc)
{
	return rc == -FL_ECORRUPT ? -EIO : rc;
}

/* ----------------------------------------------------------- apply */

int ops_apply_make(struct wafl_vol *v, struct wnode *dir, struct rec_make *r,
    bool replay, struct wnode **child_out)
{
	struct wnode *wn = NULL;
	struct dirfile df;
	bool is_dir = S_ISDIR(r->mode);
	int rc;

	*child_out = NULL;
	if (replay)
		rc = ops_ialloc_forced(v, r->ino, r->gen);
	else
		rc = ialloc(v, &r->ino, &r->gen);
	if (rc != 0)
		return rc;
	rc = wnode_get(v, r->ino, &wn);
	if (rc != 0)
		return rc;	/* cannot happen: a claimed inode is cached */
	pthread_rwlock_wrlock(&wn->lock);
	struct wafl_dinode *di = &wn->di;
	di->mode = r->mode;
	di->nlink = is_dir ? 2 : 1;
	di->uid = r->uid;
	di->gid = r->gid;
	di->atime_ns = r->atime;
	di->mtime_ns = r->mtime;
	di->ctime_ns = r->ctime;
	di->crtime_ns = r->ctime;
	di->rdev_major = r->rdev_major;
	di->rdev_minor = r->rdev_minor;
	di->flags = r->flags & WAFL_INO_EXCL;
	di->verifier = r->verifier;
	di->parent = is_dir ? dir->ino : 0;
	wnode_dirty(wn);
	if (is_dir) {
		wn_dirfile(wn, &df);
		rc = dir_init(&df);
	} else if (S_ISLNK(r->mode)) {
		size_t tl = strlen(r->target);
		if (tl <= WAFL_INLINE_MAX) {
			di->flags |= WAFL_INO_INLINE;
			memset(di->u.inline_data, 0, sizeof(di->u.inline_data));
			memcpy(di->u.inline_data, r->target, tl);
			di->size = tl;
		} else {
			rc = wn_write(wn, 0, (uint32_t)tl, r->target);
		}
	} else if (S_ISREG(r->mode) && r->size != 0) {
		rc = wn_set_size(wn, r->size);
	}
	if (rc == 0) {
		wn_dirfile(dir, &df);
		rc = dir_add(&df, r->name, strlen(r->name), r->ino,
		    (uint8_t)ops_type_of(r->mode), replay ? r->key : 0,
		    &r->key);
	}
	if (rc != 0) {
		ops_inode_free(wn);
		pthread_rwlock_unlock(&wn->lock);
		wnode_put(wn);
		return rc;
	}
	if (is_dir)
		dir->di.nlink++;
	dir->di.mtime_ns = dir->di.ctime_ns = r->ctime;
	wnode_dirty(dir);
	*child_out = wn;
	return 0;
}

int ops_apply_remove(struct wafl_vol *v, struct wnode *dir, struct wnode *obj,
    const struct rec_remove *r)
{
	struct dirfile df;
	struct dir_ent ent;
	bool rmdir = r->flags & REC_REMOVE_RMDIR;
	int rc;

	if (rmdir != S_ISDIR(obj->di.mode))
		return FL_ERR(-FL_ECORRUPT);
	wn_dirfile(dir, &df);
	rc = dir_remove(&df, r->name, strlen(r->name), &ent);
	if (rc != 0)
		return rc;
	VERIFY(ent.ino == obj->ino);	/* looked up under the same lock */
	dir->di.mtime_ns = dir->di.ctime_ns = r->ctime;
	if (rmdir && dir->di.nlink > 2)
		dir->di.nlink--;
	wnode_dirty(dir);
	obj->di.ctime_ns = r->ctime;
	if (rmdir)
		obj->di.nlink = 0;
	else if (obj->di.nlink > 0)
		obj->di.nlink--;
	if (obj->di.nlink == 0)
		ops_inode_free(obj);
	else
		wnode_dirty(obj);
	return 0;
}

/* Undo helper for a rename that failed half way: put an entry back with
 * its old key. */
static void rename_restore(struct wafl_vol *v, struct wnode *dw,
    const struct dir_ent *ent)
{
	struct dirfile df;
	int rc;

	wn_dirfile(dw, &df);
	rc = dir_add(&df, ent->name, ent->namelen, ent->ino, ent->type,
	    ent->key, NULL);
	if (rc != 0) {
		fl_err("wafl", "rename: could not restore \"%s\" in directory "
		    "%llu: %s", ent->name, (unsigned long long)dw->ino,
		    fl_strerror(rc));
		ops_fail(v, rc);
	}
}

int ops_apply_rename(struct wafl_vol *v, struct wnode *fdir,
    struct wnode *tdir, struct wnode *src, struct wnode *tgt,
    struct rec_rename *r, bool replay)
{
	struct dirfile fdf, tdf;
	struct dir_ent sent, tent;
	bool src_dir = S_ISDIR(src->di.mode);
	int rc;

	wn_dirfile(fdir, &fdf);
	wn_dirfile(tdir, &tdf);
	if (tgt != NULL) {
		if (S_ISDIR(tgt->di.mode) != src_dir)
			return FL_ERR(-FL_ECORRUPT);
		rc = dir_remove(&tdf, r->toname, strlen(r->toname), &tent);
		if (rc != 0)
			return rc;
		VERIFY(tent.ino == tgt->ino);
	}
	rc = dir_remove(&fdf, r->fromname, strlen(r->fromname), &sent);
	if (rc != 0) {
		if (tgt != NULL)
			rename_restore(v, tdir, &tent);
		return rc;
	}
	VERIFY(sent.ino == src->ino);
	rc = dir_add(&tdf, r->toname, strlen(r->toname), src->ino,
	    (uint8_t)ops_type_of(src->di.mode), replay ? r->key : 0, &r->key);
	if (rc != 0) {
		rename_restore(v, fdir, &sent);
		if (tgt != NULL)
			rename_restore(v, tdir, &tent);
		return rc;
	}
	if (tgt != NULL) {
		tgt->di.ctime_ns = r->ctime;
		if (src_dir) {
			tgt->di.nlink = 0;
			if (tdir->di.nlink > 2)
				tdir->di.nlink--;
		} else if (tgt->di.nlink > 0) {
			tgt->di.nlink--;
		}
		if (tgt->di.nlink == 0)
			ops_inode_free(tgt);
		else
			wnode_dirty(tgt);
	}
	if (src_dir) {
		if (fdir != tdir) {
			if (fdir->di.nlink > 2)
				fdir->di.nlink--;
			tdir->di.nlink++;
		}
		src->di.parent = tdir->ino;
	}
	src->di.ctime_ns = r->ctime;
	wnode_dirty(src);
	fdir->di.mtime_ns = fdir->di.ctime_ns = r->ctime;
	tdir->di.mtime_ns = tdir->di.ctime_ns = r->ctime;
	wnode_dirty(fdir);
	wnode_dirty(tdir);
	return 0;
}

int ops_apply_link(struct wafl_vol *v, struct wnode *dir, struct wnode *obj,
    struct rec_link *r, bool replay)
{
	struct dirfile df;
	int rc;

	if (S_ISDIR(obj->di.mode))
		return FL_ERR(-FL_ECORRUPT);
	wn_dirfile(dir, &df);
	rc = dir_add(&df, r->name, strlen(r->name), obj->ino,
	    (uint8_t)ops_type_of(obj->di.mode), replay ? r->key : 0, &r->key);
	if (rc != 0)
		return rc;
	obj->di.nlink++;
	obj->di.ctime_ns = r->ctime;
	wnode_dirty(obj);
	dir->di.mtime_ns = dir->di.ctime_ns = r->ctime;
	wnode_dirty(dir);
	return 0;
}

/* ------------------------------------------------------------- make */

/* The ids and mode bits a new object gets; -EPERM if the caller asks for
 * an owner or group it may not give. */
static int make_ids(const struct wafl_cred *c, const struct wnode *dir,
    const struct wafl_sattr *sa, uint32_t perm, struct rec_make *r)
{
	r->uid = c->uid;
	r->gid = (dir->di.mode & S_ISGID) ? dir->di.gid : c->gid;
	if (sa != NULL && sa->set_mode)
		perm = sa->mode & 07777;
	if (S_ISDIR(r->mode) && (dir->di.mode & S_ISGID))
		perm |= S_ISGID;
	r->mode |= perm;
	if (sa == NULL)
		return 0;
	if (sa->set_uid) {
		if (c->uid != 0 && sa->uid != c->uid)
			return -EPERM;
		r->uid = sa->uid;
	}
	if (sa->set_gid) {
		if (c->uid != 0 && !ops_cred_in_group(c, sa->gid))
			return -EPERM;
		r->gid = sa->gid;
	}
	/* A set-group-ID file only for a group its maker is in (as chmod in
	 * setattr_plan): a setgid directory gives its group to new files,
	 * not the right to run as that group. */
	if (!S_ISDIR(r->mode) && c->uid != 0 && !ops_cred_in_group(c, r->gid))
		r->mode &= ~(uint32_t)S_ISGID;
	return 0;
}

static void make_times(const struct wafl_sattr *sa, uint64_t now,
    struct rec_make *r)
{
	r->atime = r->mtime = r->ctime = now;
	if (sa == NULL)
		return;
	if (sa->atime_how == WAFL_TIME_CLIENT)
		r->atime = sa->atime_ns;
	if (sa->mtime_how == WAFL_TIME_CLIENT)
		r->mtime = sa->mtime_ns;
}

/* UNCHECKED CREATE over an existing regular file with a size: truncate
 * (only the size is applied, as knfsd does), which takes away the set-id
 * bits a truncating SETATTR takes (ops_write_kills).  obj locked
 * exclusive. */
static int create_truncate(struct wafl_vol *v, struct ops_tx *tx,
    const struct wafl_cred *c, struct wnode *obj, uint64_t size)
{
	uint8_t buf[REC_SETATTR_SIZE];
	int rc;

	if (!ops_may(&obj->di, c, OPS_MAY_W) && c->uid != obj->di.uid)
		return -EACCES;
	uint64_t now = fl_now_real_ns();
	struct rec_setattr sr = {
		.ino = obj->ino, .gen = obj->di.gen, .mask = REC_SA_SIZE,
		.size = size, .ctime = now, .mtime = now,
	};
	if (size != obj->di.size)
		sr.mask |= REC_SA_MTIME;
	uint32_t kill = ops_write_kills(c, &obj->di);
	if (kill != 0) {
		sr.mask |= REC_SA_MODE;
		sr.mode = obj->di.mode & 07777 & ~kill;
	}
	rc = ops_apply_setattr(v, obj, &sr);
	if (rc != 0)
		return rc;
	struct iovec iov = { buf, rec_setattr_encode(buf, &sr) };
	return ops_tx_commit(tx, REC_SETATTR, &iov, 1);
}

/* An existing name met by CREATE: what the caller gets.  obj locked. */
static int create_existing(struct wafl_vol *v, struct ops_tx *tx,
    const struct wafl_cred *c, enum wafl_create_how how,
    const struct wafl_sattr *sa, uint64_t verifier, struct wnode *obj)
{
	switch (how) {
	case WAFL_GUARDED:
		return -EEXIST;
	case WAFL_EXCLUSIVE:
		if (S_ISREG(obj->di.mode) && (obj->di.flags & WAFL_INO_EXCL) &&
		    obj->di.verifier == verifier)
			return 0;	/* a retransmission */
		return -EEXIST;
	case WAFL_UNCHECKED:
		if (!S_ISREG(obj->di.mode))
			return -EEXIST;
		if (sa != NULL && sa->set_size)
			return create_truncate(v, tx, c, obj, sa->size);
		return 0;
	}
	return FL_ERR(-EINVAL);
}

/*
 * The common body of CREATE, MKDIR, SYMLINK and MKNOD.  r holds the type
 * bits in mode, rdev, target; this fills the rest.
 */
static int do_make(struct wafl_vol *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, enum wafl_create_how how,
    const struct wafl_sattr *sa, uint64_t verifier, uint32_t perm,
    struct rec_make *r, struct wafl_obj *out, struct wafl_attr *attr,
    struct wafl_dirwcc *dwcc)
{
	struct wnode *dw = NULL, *obj = NULL;
	struct ops_tx tx;
	struct dir_ent ent;
	size_t nl;
	bool existed = false;
	bool logged_before;
	int rc;

	dwcc_clear(dwcc);
	rc = ops_name_check(name, &nl);
	if (rc != 0)
		return rc;
	if (ops_is_dot(name) || ops_is_dotdot(name))
		return -EEXIST;
	rc = ops_obj_get(v, dir, true, &dw);
	if (rc != 0)
		return rc;
	rc = ops_tx_begin(v, REC_MAX_NS_PAYLOAD, NS_BLOCKS, &tx);
	if (rc != 0) {
		wnode_put(dw);
		return rc;
	}
	pthread_rwlock_wrlock(&dw->lock);
	rc = dir_writable(dw, dir, c);
	if (rc != 0)
		goto unlock;
	dwcc_pre(dwcc, dw);
	rc = lookup_locked(dw, name, &ent);
	if (rc == 0) {
		if (!S_ISREG(r->mode)) {
			rc = -EEXIST;
			goto unlock;
		}
		rc = entry_obj(v, &ent, &obj);
		if (rc == 0)
			rc = create_existing(v, &tx, c, how, sa, verifier, obj);
		existed = true;
		goto unlock;
	}
	if (rc != -ENOENT)
		goto unlock;
	if (S_ISDIR(r->mode) && dw->di.nlink >= WAFL_LINK_MAX) {
		rc = -EMLINK;
		goto unlock;
	}
	r->dir = dw->ino;
	r->name = name;
	if (how == WAFL_EXCLUSIVE) {
		r->flags = WAFL_INO_EXCL;
		r->verifier = verifier;
		sa = NULL;	/* the client follows with SETATTR */
	}
	rc = make_ids(c, dw, sa, perm, r);
	if (rc != 0)
		goto unlock;
	make_times(sa, fl_now_real_ns(), r);
	if (sa != NULL && sa->set_size && S_ISREG(r->mode)) {
		if (sa->size > WAFL_MAX_FILE_SIZE) {
			rc = -EFBIG;
			goto unlock;
		}
		r->size = sa->size;
	}
	rc = ops_apply_make(v, dw, r, false, &obj);
	if (rc != 0)
		goto unlock;
	uint8_t *buf = malloc(REC_MAX_NS_PAYLOAD);
	if (buf == NULL) {
		rc = -ENOMEM;
		ops_fail(v, rc);	/* applied but cannot be logged */
		goto unlock;
	}
	struct iovec iov = { buf, rec_make_encode(buf, r) };
	rc = ops_tx_commit(&tx, REC_MAKE, &iov, 1);
	free(buf);
unlock:
	logged_before = existed && rc == 0 && !tx.logged;
	if (rc == 0 && obj != NULL) {
		if (out != NULL)
			*out = (struct wafl_obj){ obj->ino, obj->di.gen, 0 };
		ops_fill_attr(v, obj, attr);
	}
	if (dwcc != NULL && dwcc->pre.valid)
		dwcc_post(v, dwcc, dw);
	if (obj != NULL) {
		pthread_rwlock_unlock(&obj->lock);
		wnode_put(obj);
	}
	pthread_rwlock_unlock(&dw->lock);
	wnode_put(dw);
	rc = ops_tx_end(&tx, rc, true);
	if (logged_before) {
		/* The object may come from an operation still waiting for
		 * its record: reply only once that is durable too. */
		if (ops_wait_lsn(v, nvlog_committed_lsn(v->log)) != 0)
			rc = -EIO;
	}
	return map_corrupt(rc);
}

int wafl_create(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, enum wafl_create_how how,
    const struct wafl_sattr *sa, uint64_t verifier, struct wafl_obj *out,
    struct wafl_attr *attr, struct wafl_dirwcc *dwcc)
{
	struct rec_make *r = calloc(1, sizeof(*r));
	int rc;

	if (r == NULL)
		return -ENOMEM;
	if (how != WAFL_UNCHECKED && how != WAFL_GUARDED &&
	    how != WAFL_EXCLUSIVE) {
		free(r);
		return FL_ERR(-EINVAL);
	}
	r->mode = S_IFREG;
	rc = do_make(v, c, dir, name, how, sa, verifier,
	    how == WAFL_EXCLUSIVE ? 0600 : 0644, r, out, attr, dwcc);
	free(r);
	return rc;
}

int wafl_mkdir(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, const struct wafl_sattr *sa,
    struct wafl_obj *out, struct wafl_attr *attr, struct wafl_dirwcc *dwcc)
{
	struct rec_make *r = calloc(1, sizeof(*r));
	int rc;

	if (r == NULL)
		return -ENOMEM;
	r->mode = S_IFDIR;
	rc = do_make(v, c, dir, name, WAFL_GUARDED, sa, 0, 0755, r, out, attr,
	    dwcc);
	free(r);
	return rc;
}

int wafl_symlink(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, const char *target,
    const struct wafl_sattr *sa, struct wafl_obj *out,
    struct wafl_attr *attr, struct wafl_dirwcc *dwcc)
{
	struct rec_make *r;
	int rc;

	if (target == NULL || target[0] == '\0')
		return FL_ERR(-EINVAL);
	if (strnlen(target, WAFL_PATH_MAX + 1) > WAFL_PATH_MAX)
		return -ENAMETOOLONG;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->mode = S_IFLNK;
	r->target = target;
	struct wafl_sattr s2;
	if (sa != NULL) {	/* a symlink's mode is always 0777 */
		s2 = *sa;
		s2.set_mode = false;
		s2.set_size = false;
		sa = &s2;
	}
	rc = do_make(v, c, dir, name, WAFL_GUARDED, sa, 0, 0777, r, out, attr,
	    dwcc);
	free(r);
	return rc;
}

int wafl_mknod(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, enum wafl_type type,
    uint32_t rdev_major, uint32_t rdev_minor, const struct wafl_sattr *sa,
    struct wafl_obj *out, struct wafl_attr *attr, struct wafl_dirwcc *dwcc)
{
	struct rec_make *r;
	int rc;

	/* NF3REG / NF3DIR / NF3LNK are not MKNOD's (NFS3ERR_BADTYPE: nfsd
	 * checks the type before calling). */
	if (type != WAFL_CHR && type != WAFL_BLK && type != WAFL_SOCK &&
	    type != WAFL_FIFO)
		return FL_ERR(-EINVAL);
	/* A device node is a privilege (mknod(2)): whoever makes one picks
	 * the device that clients open through it. */
	if ((type == WAFL_CHR || type == WAFL_BLK) && c != NULL && c->uid != 0)
		return -EPERM;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->mode = ops_ifmt_of(type);
	if (type == WAFL_CHR || type == WAFL_BLK) {
		r->rdev_major = rdev_major;
		r->rdev_minor = rdev_minor;
	}
	struct wafl_sattr s2;
	if (sa != NULL) {
		s2 = *sa;
		s2.set_size = false;
		sa = &s2;
	}
	rc = do_make(v, c, dir, name, WAFL_GUARDED, sa, 0, 0644, r, out, attr,
	    dwcc);
	free(r);
	return rc;
}

/* ----------------------------------------------------------- remove */

static int do_remove(struct wafl_vol *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, bool rmdir,
    struct wafl_dirwcc *dwcc)
{
	struct wnode *dw = NULL, *obj = NULL;
	struct ops_tx tx;
	struct dir_ent ent;
	size_t nl;
	int rc;

	dwcc_clear(dwcc);
	rc = ops_name_check(name, &nl);
	if (rc != 0)
		return rc;
	if (ops_is_dot(name))
		return rmdir ? FL_ERR(-EINVAL) : -EISDIR;
	if (ops_is_dotdot(name))
		return rmdir ? -EEXIST : -EISDIR;
	rc = ops_obj_get(v, dir, true, &dw);
	if (rc != 0)
		return rc;
	rc = ops_tx_begin(v, REC_MAX_NS_PAYLOAD, 0, &tx);
	if (rc != 0) {
		wnode_put(dw);
		return rc;
	}
	pthread_rwlock_wrlock(&dw->lock);
	rc = dir_writable(dw, dir, c);
	if (rc != 0)
		goto unlock;
	dwcc_pre(dwcc, dw);
	rc = lookup_locked(dw, name, &ent);
	if (rc == 0)
		rc = entry_obj(v, &ent, &obj);
	if (rc == 0)
		rc = sticky_ok(dw, obj, c);
	if (rc != 0)
		goto unlock;
	if (!rmdir && S_ISDIR(obj->di.mode)) {
		rc = -EISDIR;
		goto unlock;
	}
	if (rmdir) {
		bool empty;
		if (!S_ISDIR(obj->di.mode)) {
			rc = -ENOTDIR;
			goto unlock;
		}
		rc = dir_is_empty(obj, &empty);
		if (rc == 0 && !empty)
			rc = -ENOTEMPTY;
		if (rc != 0)
			goto unlock;
	}
	struct rec_remove r = {
		.dir = dw->ino, .ino = obj->ino, .ctime = fl_now_real_ns(),
		.flags = rmdir ? REC_REMOVE_RMDIR : 0, .name = name,
	};
	rc = ops_apply_remove(v, dw, obj, &r);
	if (rc != 0)
		goto unlock;
	uint8_t buf[REC_REMOVE_FIXED + WAFL_NAME_MAX];
	struct iovec iov = { buf, rec_remove_encode(buf, &r) };
	rc = ops_tx_commit(&tx, REC_REMOVE, &iov, 1);
unlock:
	if (dwcc != NULL && dwcc->pre.valid)
		dwcc_post(v, dwcc, dw);
	if (obj != NULL) {
		pthread_rwlock_unlock(&obj->lock);
		wnode_put(obj);
	}
	pthread_rwlock_unlock(&dw->lock);
	wnode_put(dw);
	return map_corrupt(ops_tx_end(&tx, rc, true));
}

int wafl_remove(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, struct wafl_dirwcc *dwcc)
{
	return do_remove(v, c, dir, name, false, dwcc);
}

int wafl_rmdir(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, struct wafl_dirwcc *dwcc)
{
	return do_remove(v, c, dir, name, true, dwcc);
}

/* ----------------------------------------------------------- rename */

struct chain {
	uint64_t *ino;
	size_t n, cap;
};

static bool chain_has(const struct chain *ch, uint64_t ino)
{
	for (size_t i = 0; i < ch->n; i++)
		if (ch->ino[i] == ino)
			return true;
	return false;
}

/* Directories from ino up to the root (both included), read one at a time
 * under each one's shared lock.  Stable under rename_lock. */
static int chain_build(struct wafl_vol *v, uint64_t ino, struct chain *ch)
{
	int rc = 0;

	ch->n = 0;
	for (;;) {
		struct wnode *wn;
		uint64_t parent;
		bool isdir;

		if (ch->n == ch->cap) {
			size_t cap = ch->cap ? ch->cap * 2 : 64;
			uint64_t *n = realloc(ch->ino, cap * sizeof(*n));
			if (n == NULL)
				return -ENOMEM;
			ch->ino = n;
			ch->cap = cap;
		}
		ch->ino[ch->n++] = ino;
		if (ino == WAFL_INO_ROOTDIR)
			break;
		if (ch->n > (1u << 20))
			return FL_ERR(-FL_ECORRUPT);	/* a parent loop */
		rc = wnode_get(v, ino, &wn);
		if (rc != 0)
			return rc;
		pthread_rwlock_rdlock(&wn->lock);
		parent = wn->di.parent;
		isdir = S_ISDIR(wn->di.mode);
		pthread_rwlock_unlock(&wn->lock);
		wnode_put(wn);
		if (!isdir)
			break;	/* stale or not a directory: checked later */
		if (parent != WAFL_INO_ROOTDIR &&
		    parent < WAFL_INO_FIRST_USER)
			return FL_ERR(-FL_ECORRUPT);
		ino = parent;
	}
	return 0;
}

/* RENAME's lock order (W-L), shared by replay: the two directories
 * ancestor first, else by inode number; then the moved and the replaced
 * object, a directory before a file, else by inode number. */
static void rename_dir_order(struct wnode *fd, struct wnode *td,
    const struct chain *fch, const struct chain *tch, struct wnode *dirs[2])
{
	if (chain_has(tch, fd->ino) ||
	    (!chain_has(fch, td->ino) && fd->ino < td->ino)) {
		dirs[0] = fd;
		dirs[1] = td;
	} else {
		dirs[0] = td;
		dirs[1] = fd;
	}
}

static void rename_obj_order(struct wnode *src, bool src_dir,
    struct wnode *tgt, bool tgt_dir, struct wnode *objs[2])
{
	objs[0] = src;
	objs[1] = tgt;
	if (tgt != NULL && (tgt_dir != src_dir ? tgt_dir :
	    tgt->ino < src->ino)) {
		objs[0] = tgt;
		objs[1] = src;
	}
}

int wafl_rename(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *fromdir, const char *fromname,
    const struct wafl_obj *todir, const char *toname,
    struct wafl_dirwcc *fromwcc, struct wafl_dirwcc *towcc)
{
	struct wnode *fd = NULL, *td = NULL, *src = NULL, *tgt = NULL;
	struct chain fch = { 0 }, tch = { 0 };
	struct wnode *dirs[2], *objs[2];
	bool objs_locked = false;
	struct dir_ent sent, tent;
	struct ops_tx tx;
	size_t nl;
	int rc;

	dwcc_clear(fromwcc);
	dwcc_clear(towcc);
	rc = ops_name_check(fromname, &nl);
	if (rc == 0)
		rc = ops_name_check(toname, &nl);
	if (rc != 0)
		return rc;
	if (ops_is_dot(fromname) || ops_is_dotdot(fromname) ||
	    ops_is_dot(toname) || ops_is_dotdot(toname))
		return FL_ERR(-EINVAL);
	if (fromdir->snap != 0 || todir->snap != 0) {
		/* A snapshot is another file system. */
		return fromdir->snap == todir->snap ? -EROFS : -EXDEV;
	}
	rc = ops_obj_get(v, fromdir, true, &fd);
	if (rc == 0)
		rc = ops_obj_get(v, todir, true, &td);
	if (rc != 0) {
		if (fd != NULL)
			wnode_put(fd);
		return rc;
	}
	rc = ops_tx_begin(v, REC_MAX_NS_PAYLOAD, 2 * NS_BLOCKS, &tx);
	if (rc != 0) {
		wnode_put(fd);
		wnode_put(td);
		return rc;
	}
	pthread_mutex_lock(&v->rename_lock);
	rc = chain_build(v, fd->ino, &fch);
	if (rc == 0)
		rc = chain_build(v, td->ino, &tch);
	if (rc != 0) {
		pthread_mutex_unlock(&v->rename_lock);
		goto out;
	}
	rename_dir_order(fd, td, &fch, &tch, dirs);
	ops_wrlock(dirs, 2);
	rc = dir_writable(fd, fromdir, c);
	if (rc == 0)
		rc = dir_writable(td, todir, c);
	if (rc != 0)
		goto unlock;
	dwcc_pre(fromwcc, fd);
	dwcc_pre(towcc, td);
	rc = lookup_locked(fd, fromname, &sent);
	if (rc != 0)
		goto unlock;
	rc = lookup_locked(td, toname, &tent);
	if (rc == -ENOENT)
		tent.ino = 0;
	else if (rc != 0)
		goto unlock;
	if (tent.ino == sent.ino) {
		rc = 0;		/* the same file: nothing to do */
		goto unlock;
	}
	if (chain_has(&tch, sent.ino)) {
		rc = FL_ERR(-EINVAL);	/* a directory into its own subtree */
		goto unlock;
	}
	bool src_dir, tgt_dir = false;
	rc = entry_peek(v, &sent, &src, &src_dir);
	if (rc != 0)
		goto unlock;
	if (tent.ino != 0 && chain_has(&fch, tent.ino)) {
		/* The target is an ancestor of the source's directory. */
		rc = src_dir ? -ENOTEMPTY : -EISDIR;
		goto unlock;
	}
	if (tent.ino != 0) {
		rc = entry_peek(v, &tent, &tgt, &tgt_dir);
		if (rc != 0)
			goto unlock;
	}
	/* A directory before a file (the file may have a name in the
	 * directory: LOOKUP, READDIRPLUS, REMOVE there hold the directory
	 * and take the file), else by inode number (two directories: neither
	 * is an ancestor of the other, checked above). */
	rename_obj_order(src, src_dir, tgt, tgt_dir, objs);
	ops_wrlock(objs, 2);
	objs_locked = true;
	rc = sticky_ok(fd, src, c);
	if (rc == 0 && tgt != NULL)
		rc = sticky_ok(td, tgt, c);
	/* A directory moving to another parent has its ".." changed: the
	 * caller must be allowed to write it, as rename(2) demands. */
	if (rc == 0 && src_dir && fd != td && !ops_may(&src->di, c, OPS_MAY_W))
		rc = -EACCES;
	if (rc != 0)
		goto unlock;
	if (tgt != NULL) {
		if (src_dir && !tgt_dir) {
			rc = -ENOTDIR;
			goto unlock;
		}
		if (!src_dir && tgt_dir) {
			rc = -EISDIR;
			goto unlock;
		}
		if (tgt_dir) {
			bool empty;
			rc = dir_is_empty(tgt, &empty);
			if (rc == 0 && !empty)
				rc = -ENOTEMPTY;
			if (rc != 0)
				goto unlock;
		}
	}
	if (src_dir && fd != td && td->di.nlink >= WAFL_LINK_MAX &&
	    tgt == NULL) {
		rc = -EMLINK;
		goto unlock;
	}
	struct rec_rename r = {
		.fromdir = fd->ino, .todir = td->ino, .ino = src->ino,
		.tino = tgt != NULL ? tgt->ino : 0, .ctime = fl_now_real_ns(),
		.fromname = fromname, .toname = toname,
	};
	rc = ops_apply_rename(v, fd, td, src, tgt, &r, false);
	if (rc != 0)
		goto unlock;
	uint8_t *buf = malloc(REC_RENAME_FIXED + 2 * WAFL_NAME_MAX);
	if (buf == NULL) {
		rc = -ENOMEM;
		ops_fail(v, rc);
		goto unlock;
	}
	struct iovec iov = { buf, rec_rename_encode(buf, &r) };
	rc = ops_tx_commit(&tx, REC_RENAME, &iov, 1);
	free(buf);
unlock:
	if (fromwcc != NULL && fromwcc->pre.valid)
		dwcc_post(v, fromwcc, fd);
	if (towcc != NULL && towcc->pre.valid)
		dwcc_post(v, towcc, td);
	if (objs_locked)
		ops_unlock(objs, 2);
	if (tgt != NULL)
		wnode_put(tgt);
	if (src != NULL)
		wnode_put(src);
	ops_unlock(dirs, 2);
	pthread_mutex_unlock(&v->rename_lock);
out:
	free(fch.ino);
	free(tch.ino);
	wnode_put(fd);
	wnode_put(td);
	return map_corrupt(ops_tx_end(&tx, rc, true));
}

/* ------------------------------------------------------------- link */

int wafl_link(wafl_vol_t *v, const struct wafl_cred *c,
    const struct wafl_obj *o, const struct wafl_obj *dir, const char *name,
    struct wafl_attr *attr, struct wafl_dirwcc *dwcc)
{
	struct wnode *obj = NULL, *dw = NULL;
	struct ops_tx tx;
	struct dir_ent ent;
	size_t nl;
	int rc;

	dwcc_clear(dwcc);
	rc = ops_name_check(name, &nl);
	if (rc != 0)
		return rc;
	if (ops_is_dot(name) || ops_is_dotdot(name))
		return -EEXIST;
	if (o->snap != dir->snap)
		return -EXDEV;
	rc = ops_obj_get(v, o, true, &obj);
	if (rc != 0)
		return rc;
	/* A directory is refused before any lock: it could be an ancestor
	 * of dir, and ancestors are locked first. */
	pthread_rwlock_rdlock(&obj->lock);
	rc = ops_live(obj, o->gen);
	if (rc == 0 && S_ISDIR(obj->di.mode))
		rc = -EISDIR;
	pthread_rwlock_unlock(&obj->lock);
	if (rc == 0)
		rc = ops_obj_get(v, dir, true, &dw);
	if (rc != 0) {
		wnode_put(obj);
		return rc;
	}
	rc = ops_tx_begin(v, REC_MAX_NS_PAYLOAD, NS_BLOCKS, &tx);
	if (rc != 0) {
		wnode_put(obj);
		wnode_put(dw);
		return rc;
	}
	struct wnode *lk[2] = { dw, obj };
	ops_wrlock(lk, 2);
	rc = dir_writable(dw, dir, c);
	if (rc != 0)
		goto unlock;
	dwcc_pre(dwcc, dw);
	rc = ops_live(obj, o->gen);
	if (rc != 0)
		goto unlock;
	if (S_ISDIR(obj->di.mode)) {
		rc = -EISDIR;
		goto unlock;
	}
	if (obj->di.nlink >= WAFL_LINK_MAX) {
		rc = -EMLINK;
		goto unlock;
	}
	rc = lookup_locked(dw, name, &ent);
	if (rc == 0)
		rc = -EEXIST;
	if (rc != -ENOENT)
		goto unlock;
	struct rec_link r = {
		.ino = obj->ino, .gen = obj->di.gen, .dir = dw->ino,
		.ctime = fl_now_real_ns(), .name = name,
	};
	rc = ops_apply_link(v, dw, obj, &r, false);
	if (rc != 0)
		goto unlock;
	uint8_t buf[REC_LINK_FIXED + WAFL_NAME_MAX];
	struct iovec iov = { buf, rec_link_encode(buf, &r) };
	rc = ops_tx_commit(&tx, REC_LINK, &iov, 1);
unlock:
	if (rc == 0)
		ops_fill_attr(v, obj, attr);
	if (dwcc != NULL && dwcc->pre.valid)
		dwcc_post(v, dwcc, dw);
	ops_unlock(lk, 2);
	wnode_put(obj);
	wnode_put(dw);
	return map_corrupt(ops_tx_end(&tx, rc, true));
}

/* ----------------------------------------------------------- replay */

/* Replay runs single-threaded; locks are taken anyway so the apply
 * functions see what they expect. */
static int replay_dir(struct wafl_vol *v, uint64_t ino, struct wnode **out)
{
	int rc = wnode_get(v, ino, out);

	if (rc != 0)
		return rc;
	if (!S_ISDIR((*out)->di.mode)) {
		wnode_put(*out);
		*out = NULL;
		fl_err("wafl", "replay: inode %llu is not a directory",
		    (unsigned long long)ino);
		return FL_ERR(-FL_ECORRUPT);
	}
	return 0;
}

/* The object a name in dw names; -FL_ECORRUPT unless it is expect. */
static int replay_entry(struct wafl_vol *v, struct wnode *dw,
    const char *name, uint64_t expect, struct wnode **out)
{
	struct dir_ent ent;
	int rc = lookup_locked(dw, name, &ent);

	*out = NULL;
	if (rc == -ENOENT || (rc == 0 && ent.ino != expect)) {
		fl_err("wafl", "replay: \"%s\" in directory %llu does not name "
		    "inode %llu", name, (unsigned long long)dw->ino,
		    (unsigned long long)expect);
		return FL_ERR(-FL_ECORRUPT);
	}
	if (rc != 0)
		return rc;
	rc = entry_obj(v, &ent, out);
	return rc;
}

int ops_replay_make(struct wafl_vol *v, struct rec_make *r)
{
	struct wnode *dw, *obj = NULL;
	int rc;

	pthread_rwlock_rdlock(&v->cp_lock);
	rc = replay_dir(v, r->dir, &dw);
	if (rc == 0) {
		pthread_rwlock_wrlock(&dw->lock);
		rc = ops_apply_make(v, dw, r, true, &obj);
		if (obj != NULL) {
			pthread_rwlock_unlock(&obj->lock);
			wnode_put(obj);
		}
		pthread_rwlock_unlock(&dw->lock);
		wnode_put(dw);
	}
	pthread_rwlock_unlock(&v->cp_lock);
	return rc;
}

int ops_replay_remove(struct wafl_vol *v, const struct rec_remove *r)
{
	struct wnode *dw, *obj = NULL;
	int rc;

	pthread_rwlock_rdlock(&v->cp_lock);
	rc = replay_dir(v, r->dir, &dw);
	if (rc == 0) {
		pthread_rwlock_wrlock(&dw->lock);
		rc = replay_entry(v, dw, r->name, r->ino, &obj);
		if (rc == 0) {
			rc = ops_apply_remove(v, dw, obj, r);
			pthread_rwlock_unlock(&obj->lock);
			wnode_put(obj);
		}
		pthread_rwlock_unlock(&dw->lock);
		wnode_put(dw);
	}
	pthread_rwlock_unlock(&v->cp_lock);
	return rc;
}

/* replay_entry, then the object's type, unlocked (entry_peek). */
static int replay_peek(struct wafl_vol *v, struct wnode *dw, const char *name,
    uint64_t expect, struct wnode **out, bool *isdir)
{
	int rc = replay_entry(v, dw, name, expect, out);

	if (rc != 0)
		return rc;
	*isdir = S_ISDIR((*out)->di.mode);
	pthread_rwlock_unlock(&(*out)->lock);
	return 0;
}

/* Replay runs alone, but takes the live RENAME's locks in its order: the
 * wnodes (and their locks) stay in the inode cache for the live
 * operations after it. */
int ops_replay_rename(struct wafl_vol *v, struct rec_rename *r)
{
	struct wnode *fd = NULL, *td = NULL, *src = NULL, *tgt = NULL;
	struct wnode *dirs[2], *objs[2];
	struct chain fch = { 0 }, tch = { 0 };
	bool src_dir = false, tgt_dir = false;
	int rc;

	pthread_rwlock_rdlock(&v->cp_lock);
	rc = replay_dir(v, r->fromdir, &fd);
	if (rc == 0)
		rc = replay_dir(v, r->todir, &td);
	if (rc != 0)
		goto out;
	pthread_mutex_lock(&v->rename_lock);
	rc = chain_build(v, fd->ino, &fch);
	if (rc == 0)
		rc = chain_build(v, td->ino, &tch);
	if (rc != 0)
		goto unlock_rename;
	rename_dir_order(fd, td, &fch, &tch, dirs);
	ops_wrlock(dirs, 2);
	rc = replay_peek(v, fd, r->fromname, r->ino, &src, &src_dir);
	if (rc == 0 && r->tino != 0)
		rc = replay_peek(v, td, r->toname, r->tino, &tgt, &tgt_dir);
	else if (rc == 0) {
		struct dir_ent ent;
		if (lookup_locked(td, r->toname, &ent) != -ENOENT)
			rc = FL_ERR(-FL_ECORRUPT);
	}
	if (rc == 0) {
		rename_obj_order(src, src_dir, tgt, tgt_dir, objs);
		ops_wrlock(objs, 2);
		rc = ops_apply_rename(v, fd, td, src, tgt, r, true);
		ops_unlock(objs, 2);
	}
	ops_unlock(dirs, 2);
unlock_rename:
	pthread_mutex_unlock(&v->rename_lock);
out:
	if (tgt != NULL)
		wnode_put(tgt);
	if (src != NULL)
		wnode_put(src);
	free(fch.ino);
	free(tch.ino);
	if (fd != NULL)
		wnode_put(fd);
	if (td != NULL)
		wnode_put(td);
	pthread_rwlock_unlock(&v->cp_lock);
	return rc;
}

int ops_replay_link(struct wafl_vol *v, struct rec_link *r)
{
	struct wnode *dw = NULL, *obj = NULL;
	int rc;

	pthread_rwlock_rdlock(&v->cp_lock);
	rc = replay_dir(v, r->dir, &dw);
	if (rc == 0)
		rc = ops_entry_ino_check(r->dir, r->name, r->ino);
	if (rc == 0)
		rc = wnode_get(v, r->ino, &obj);
	if (rc == 0) {
		struct wnode *lk[2] = { dw, obj };
		ops_wrlock(lk, 2);
		if (obj->di.mode == 0 || obj->di.gen != r->gen)
			rc = FL_ERR(-FL_ECORRUPT);
		else
			rc = ops_apply_link(v, dw, obj, r, true);
		ops_unlock(lk, 2);
	}
	if (obj != NULL)
		wnode_put(obj);
	if (dw != NULL)
		wnode_put(dw);
	pthread_rwlock_unlock(&v->cp_lock);
	return rc;
}
