/*
 * wafl/ops_snap.c: read-only access to snapshot trees (objects with
 * snap != 0): GETATTR, ACCESS, LOOKUP, READ, READLINK, READDIR(PLUS).
 *
 * A snapshot object is read straight from the snapshot's tree: its inode
 * file (snap_ifile), the inode (tree_read_inode) and the blocks under it
 * (tree_read_block), every block verified against its parent (W1).  No
 * wnode, no cache of inodes: nothing in a snapshot changes while it exists
 * (W3 keeps its blocks), and cp_lock is held shared for the call so a
 * snapshot deleted meanwhile answers -ESTALE, never stale data.
 *
 * Attributes: fileid is the inode number, as in the active file system; the
 * fsid is the volume's fsid with the snapshot id mixed in, so clients see
 * each snapshot as its own file system (hard-link and mount-point checks
 * compare fsid and fileid).  ".." of a snapshot's root is that root (nfsd
 * owns the .snapshot directory above it).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/util.h"
#include "wafl/dir.h"
#include "wafl/ops.h"

struct sobj {
	struct wafl_vol *v;
	uint64_t snap, ino;
	struct wafl_dinode ifile;
	struct wafl_dinode di;
};

static int sobj_load(struct wafl_vol *v, uint64_t snap, uint64_t ino,
    struct sobj *s)
{
	int rc;

	if (ino != WAFL_INO_ROOTDIR && (ino < WAFL_INO_FIRST_USER ||
	    ino >= (1ull << 40)))
		return -ESTALE;
	s->v = v;
	s->snap = snap;
	s->ino = ino;
	rc = snap_ifile(v, snap, &s->ifile);
	if (rc == -ENOENT)
		rc = -ESTALE;
	if (rc == 0)
		rc = tree_read_inode(v, &s->ifile, ino, &s->di);
	if (rc == 0 && s->di.mode == 0)
		rc = -ESTALE;
	return rc;
}

static int sobj_get(struct wafl_vol *v, const struct wafl_obj *o,
    struct sobj *s)
{
	int rc = sobj_load(v, o->snap, o->ino, s);

	if (rc == 0 && s->di.gen != o->gen)
		rc = -ESTALE;
	return rc;
}

static void sobj_attr(const struct sobj *s, struct wafl_attr *a)
{
	struct wnode tmp;

	if (a == NULL)
		return;
	memset(&tmp, 0, sizeof(tmp));
	tmp.ino = s->ino;
	tmp.di = s->di;
	ops_fill_attr(s->v, &tmp, a);
	a->fsid = s->v->fsi.fsid ^ (s->snap * 0x9e3779b97f4a7c15ull);
}

static int sdf_read(void *ctx, uint64_t fbn, void *buf)
{
	struct sobj *s = ctx;

	return tree_read_block(s->v, &s->di, fbn, buf);
}

static int sdf_modify(void *ctx, uint64_t fbn, uint8_t **blk)
{
	return -EROFS;
}

static uint64_t sdf_nblocks(void *ctx)
{
	const struct sobj *s = ctx;

	return s->di.size / WAFL_BLOCK_SIZE;
}

static void sobj_dirfile(struct sobj *s, struct dirfile *df)
{
	memset(df, 0, sizeof(*df));
	df->ctx = s;
	df->read = sdf_read;
	df->modify = sdf_modify;
	df->nblocks = sdf_nblocks;
	df->hash_key = s->v->fsi.dir_key;
}

static int map_corrupt(int rc)
{
	return rc == -FL_ECORRUPT ? -EIO : rc;
}

/* Byte read of a snapshot file (or a long symlink). */
static int sobj_read(struct sobj *s, uint64_t off, uint32_t len, void *buf,
    uint32_t *got, bool *eof)
{
	const struct wafl_dinode *di = &s->di;
	uint8_t *blk;
	uint32_t done = 0;
	int rc = 0;

	*got = 0;
	if (off >= di->size) {
		*eof = true;
		return 0;
	}
	if ((uint64_t)len > di->size - off)
		len = (uint32_t)(di->size - off);
	if (di->flags & WAFL_INO_INLINE) {
		if (off + len > WAFL_INLINE_MAX)
			return FL_ERR(-FL_ECORRUPT);
		memcpy(buf, di->u.inline_data + off, len);
		*got = len;
		*eof = true;
		return 0;
	}
	blk = malloc(WAFL_BLOCK_SIZE);
	if (blk == NULL)
		return -ENOMEM;
	while (done < len) {
		uint64_t pos = off + done;
		uint32_t boff = (uint32_t)(pos % WAFL_BLOCK_SIZE);
		uint32_t n = FL_MIN(WAFL_BLOCK_SIZE - boff, len - done);
		rc = tree_read_block(s->v, di, pos / WAFL_BLOCK_SIZE, blk);
		if (rc != 0)
			break;
		memcpy((uint8_t *)buf + done, blk + boff, n);
		done += n;
	}
	free(blk);
	*got = done;
	*eof = off + done >= di->size;
	return rc;
}

int ops_snap_getattr(struct wafl_vol *v, const struct wafl_obj *o,
    struct wafl_attr *attr)
{
	struct sobj *s = malloc(sizeof(*s));
	int rc;

	if (s == NULL)
		return -ENOMEM;
	pthread_rwlock_rdlock(&v->cp_lock);
	rc = sobj_get(v, o, s);
	if (rc == 0)
		sobj_attr(s, attr);
	pthread_rwlock_unlock(&v->cp_lock);
	free(s);
	return map_corrupt(rc);
}

int ops_snap_access(struct wafl_vol *v, const struct wafl_cred *c,
    const struct wafl_obj *o, uint32_t want, uint32_t *granted,
    struct wafl_attr *attr)
{
	struct sobj *s = malloc(sizeof(*s));
	uint32_t g = 0;
	int rc;

	*granted = 0;
	if (s == NULL)
		return -ENOMEM;
	pthread_rwlock_rdlock(&v->cp_lock);
	rc = sobj_get(v, o, s);
	if (rc == 0) {
		bool dir = S_ISDIR(s->di.mode);
		if (ops_may(&s->di, c, OPS_MAY_R))
			g |= WAFL_ACCESS_READ;
		if (ops_may(&s->di, c, OPS_MAY_X))
			g |= dir ? WAFL_ACCESS_LOOKUP : WAFL_ACCESS_EXECUTE;
		*granted = g & want;	/* never MODIFY, EXTEND, DELETE */
		sobj_attr(s, attr);
	}
	pthread_rwlock_unlock(&v->cp_lock);
	free(s);
	return map_corrupt(rc);
}

int ops_snap_lookup(struct wafl_vol *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, struct wafl_obj *out,
    struct wafl_attr *attr, struct wafl_attr *dir_attr)
{
	struct sobj *d = malloc(sizeof(*d)), *s = malloc(sizeof(*s));
	struct dirfile df;
	struct dir_ent ent;
	uint64_t ino = 0;
	int rc;

	if (d == NULL || s == NULL) {
		free(d);
		free(s);
		return -ENOMEM;
	}
	pthread_rwlock_rdlock(&v->cp_lock);
	rc = sobj_get(v, dir, d);
	if (rc != 0)
		goto out;
	if (!S_ISDIR(d->di.mode)) {
		rc = -ENOTDIR;
		goto out;
	}
	sobj_attr(d, dir_attr);
	if (!ops_may(&d->di, c, OPS_MAY_X)) {
		rc = -EACCES;
		goto out;
	}
	if (ops_is_dot(name)) {
		ino = d->ino;
	} else if (ops_is_dotdot(name)) {
		ino = d->ino == WAFL_INO_ROOTDIR ? d->ino : d->di.parent;
	} else {
		sobj_dirfile(d, &df);
		rc = dir_lookup(&df, name, strlen(name), &ent);
		if (rc == 0)
			rc = ops_entry_ino_check(d->ino, name, ent.ino);
		if (rc != 0)
			goto out;
		ino = ent.ino;
	}
	rc = sobj_load(v, dir->snap, ino, s);
	if (rc == -ESTALE)
		rc = FL_ERR(-FL_ECORRUPT);	/* an entry to a free inode */
	if (rc == 0) {
		*out = (struct wafl_obj){ ino, s->di.gen, dir->snap };
		sobj_attr(s, attr);
	}
out:
	pthread_rwlock_unlock(&v->cp_lock);
	free(d);
	free(s);
	return map_corrupt(rc);
}

int ops_snap_read(struct wafl_vol *v, const struct wafl_cred *c,
    const struct wafl_obj *o, uint64_t off, uint32_t count, void *buf,
    uint32_t *got, bool *eof, struct wafl_attr *attr)
{
	struct sobj *s = malloc(sizeof(*s));
	int rc;

	*got = 0;
	*eof = false;
	if (s == NULL)
		return -ENOMEM;
	pthread_rwlock_rdlock(&v->cp_lock);
	rc = sobj_get(v, o, s);
	if (rc == 0) {
		if (S_ISDIR(s->di.mode))
			rc = -EISDIR;
		else if (!S_ISREG(s->di.mode))
			rc = FL_ERR(-EINVAL);
		else if (!(c == NULL || c->uid == 0 || c->uid == s->di.uid) &&
		    !ops_may(&s->di, c, OPS_MAY_R) &&
		    !ops_may(&s->di, c, OPS_MAY_X))	/* as read_allowed */
			rc = -EACCES;
		else
			rc = sobj_read(s, off, count, buf, got, eof);
		sobj_attr(s, attr);
	}
	pthread_rwlock_unlock(&v->cp_lock);
	free(s);
	return map_corrupt(rc);
}

int ops_snap_readlink(struct wafl_vol *v, const struct wafl_obj *o,
    char *buf, size_t bufsz, size_t *len, struct wafl_attr *attr)
{
	struct sobj *s = malloc(sizeof(*s));
	uint32_t got = 0;
	bool eof;
	int rc;

	*len = 0;
	if (s == NULL)
		return -ENOMEM;
	pthread_rwlock_rdlock(&v->cp_lock);
	rc = sobj_get(v, o, s);
	if (rc == 0) {
		if (!S_ISLNK(s->di.mode))
			rc = FL_ERR(-EINVAL);
		else if (s->di.size > WAFL_PATH_MAX)
			rc = FL_ERR(-EIO);
		else if (bufsz < s->di.size + 1)
			rc = -ENAMETOOLONG;
		else
			rc = sobj_read(s, 0, (uint32_t)s->di.size, buf, &got,
			    &eof);
		if (rc == 0 && got != s->di.size)
			rc = FL_ERR(-EIO);
		if (rc == 0) {
			buf[got] = '\0';
			*len = got;
		}
		sobj_attr(s, attr);
	}
	pthread_rwlock_unlock(&v->cp_lock);
	free(s);
	return map_corrupt(rc);
}

struct srd {
	struct wafl_vol *v;
	uint64_t snap;
	bool plus, stopped;
	bool search;		/* the caller may look names up (x) */
	wafl_readdir_fn *fn;
	void *arg;
	struct sobj tmp;
};

static int srd_emit(struct srd *x, const char *name, uint64_t ino,
    uint64_t cookie, bool plus)
{
	struct wafl_attr a;
	struct wafl_obj obj;
	bool have = false;

	if (plus && sobj_load(x->v, x->snap, ino, &x->tmp) == 0) {
		obj = (struct wafl_obj){ ino, x->tmp.di.gen, x->snap };
		sobj_attr(&x->tmp, &a);
		have = true;
	}
	struct wafl_dirent de = {
		.name = name, .fileid = ino, .cookie = cookie,
		.obj = have ? &obj : NULL, .attr = have ? &a : NULL,
	};
	if (x->fn(x->arg, &de) != 0) {
		x->stopped = true;
		return 1;
	}
	return 0;
}

static int srd_entry(void *arg, const struct dir_ent *ent)
{
	struct srd *x = arg;

	/* No handle or attributes for a caller without search permission:
	 * it could not LOOKUP them. */
	return srd_emit(x, ent->name, ent->ino, ent->key,
	    x->plus && x->search);
}

int ops_snap_readdir(struct wafl_vol *v, const struct wafl_cred *c,
    const struct wafl_obj *dir, uint64_t cookie, bool plus,
    wafl_readdir_fn *fn, void *arg, bool *eof, struct wafl_attr *dir_attr)
{
	struct sobj *d = malloc(sizeof(*d));
	struct srd *x = malloc(sizeof(*x));
	struct dirfile df;
	int rc;

	*eof = false;
	if (d == NULL || x == NULL) {
		free(d);
		free(x);
		return -ENOMEM;
	}
	x->v = v;
	x->snap = dir->snap;
	x->plus = plus;
	x->stopped = false;
	x->fn = fn;
	x->arg = arg;
	pthread_rwlock_rdlock(&v->cp_lock);
	rc = sobj_get(v, dir, d);
	if (rc != 0)
		goto out;
	if (!S_ISDIR(d->di.mode)) {
		rc = -ENOTDIR;
		goto out;
	}
	sobj_attr(d, dir_attr);
	if (!ops_may(&d->di, c, OPS_MAY_R)) {
		rc = -EACCES;
		goto out;
	}
	x->search = ops_may(&d->di, c, OPS_MAY_X);
	if (cookie == 0 && srd_emit(x, ".", d->ino, 1, plus) != 0)
		goto out;
	if (cookie <= 1 && srd_emit(x, "..", d->ino == WAFL_INO_ROOTDIR ?
	    d->ino : d->di.parent, 2, plus) != 0)
		goto out;
	sobj_dirfile(d, &df);
	rc = dir_iterate(&df, cookie < 2 ? 2 : cookie, srd_entry, x);
	if (rc > 0)
		rc = 0;
	if (rc == 0 && !x->stopped)
		*eof = true;
out:
	pthread_rwlock_unlock(&v->cp_lock);
	free(d);
	free(x);
	return map_corrupt(rc);
}
