/*
 * nfsd/nfs3_util.c: the edge between NFS version 3 and wafl: handle
 * resolution with the export policy, attribute and wcc conversion, name
 * checks, and the per-procedure status mapping (STYLE.md 7: wafl returns
 * -errno, the procedure's table entry says which nfsstat3 it may report).
 */
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "nfsd/nfs3_impl.h"

bool nfs3_is_export_root(const struct nfsd_obj *ob)
{
	return !ob->snapdir && ob->o.snap == 0 &&
	    ob->o.ino == ob->exp->root.ino;
}

bool nfs3_is_vol_root(const struct nfsd_obj *ob)
{
	return !ob->snapdir && ob->o.ino == ob->exp->volroot.ino;
}

bool nfs3_writable(const struct nfsd_req *r, const struct nfsd_obj *ob)
{
	return r->rule != NULL && (r->rule->flags & NFSD_RW) &&
	    !ob->snapdir && ob->o.snap == 0;
}

int nfs3_resolve(struct nfsd_req *r, const nfs_fh3 *fh, struct nfsd_obj *ob)
{
	const struct nfsd_proc *pc = &nfsd_nfs3_prog.procs[r->proc];
	int rc;

	rc = nfsd_fh_decode(r->srv, (const uint8_t *)fh->data.data_val,
	    fh->data.data_len, ob);
	if (rc != 0)
		return rc;
	bool busy;
	const struct nfsd_rule *rule = nfsd_rule_match(r->srv, ob->exp,
	    &r->peer, &busy);
	if (busy) {
		r->transient = true;
		return -EAGAIN;		/* NFS3ERR_JUKEBOX: try later */
	}
	if (rule == NULL || !nfsd_rule_port_ok(rule, &r->peer))
		return -EACCES;
	if (r->rule == NULL) {
		r->rule = rule;
		nfsd_cred_squash(rule, r->flavor != AUTH_SYS, &r->ucred,
		    &r->cred);
	} else if (rule != r->rule) {
		return -EXDEV;
	}
	if ((pc->flags & NFSD_MAKES_WRITE) && !nfs3_writable(r, ob))
		return -EROFS;
	return 0;
}

/* --------------------------------------------------------- attributes */

static void snapdir_attr(const struct wafl_attr *root, struct wafl_attr *a)
{
	*a = *root;
	a->type = WAFL_DIR;
	a->mode = 0555;
	a->nlink = 2;
	a->uid = 0;
	a->gid = 0;
	a->size = 4096;
	a->used = 4096;
	a->rdev_major = a->rdev_minor = 0;
	a->fileid = NFSD_SNAPDIR_FILEID;
}

int nfs3_getattr(struct nfsd_req *r, const struct nfsd_obj *ob,
    struct wafl_attr *a)
{
	if (ob->snapdir) {
		struct wafl_attr ra;
		int rc = wafl_getattr(ob->exp->vol, &ob->exp->volroot, &ra);
		if (rc == 0)
			snapdir_attr(&ra, a);
		return rc;
	}
	return wafl_getattr(ob->exp->vol, &ob->o, a);
}

static void nfstime(uint64_t ns, nfstime3 *t)
{
	t->seconds = (uint32)(ns / 1000000000ull);
	t->nseconds = (uint32)(ns % 1000000000ull);
}

void nfs3_fattr(const struct nfsd_obj *ob, const struct wafl_attr *a,
    fattr3 *f)
{
	f->type = (ftype3)a->type;	/* wafl_type uses ftype3's values */
	f->mode = a->mode & 07777;
	f->nlink = a->nlink;
	f->uid = a->uid;
	f->gid = a->gid;
	f->size = a->size;
	f->used = a->used;
	f->rdev.specdata1 = a->rdev_major;
	f->rdev.specdata2 = a->rdev_minor;
	f->fsid = nfsd_obj_fsid(ob);
	f->fileid = a->fileid;
	nfstime(a->atime_ns, &f->atime);
	nfstime(a->mtime_ns, &f->mtime);
	nfstime(a->ctime_ns, &f->ctime);
}

void nfs3_post_attr(const struct nfsd_obj *ob, const struct wafl_attr *a,
    post_op_attr *p)
{
	p->attributes_follow = a != NULL;
	if (a != NULL)
		nfs3_fattr(ob, a, &p->post_op_attr_u.attributes);
}

void nfs3_post_attr_now(struct nfsd_req *r, const struct nfsd_obj *ob,
    post_op_attr *p)
{
	struct wafl_attr a;

	if (ob == NULL || ob->exp == NULL || nfs3_getattr(r, ob, &a) != 0)
		p->attributes_follow = FALSE;
	else
		nfs3_post_attr(ob, &a, p);
}

static void pre_attr(const struct wafl_wcc *pre, pre_op_attr *p)
{
	p->attributes_follow = pre != NULL && pre->valid;
	if (p->attributes_follow) {
		wcc_attr *w = &p->pre_op_attr_u.attributes;
		w->size = pre->size;
		nfstime(pre->mtime_ns, &w->mtime);
		nfstime(pre->ctime_ns, &w->ctime);
	}
}

void nfs3_wcc(struct nfsd_req *r, const struct nfsd_obj *ob,
    const struct wafl_wcc *pre, const struct wafl_attr *post, wcc_data *w)
{
	pre_attr(pre, &w->before);
	if (post != NULL)
		nfs3_post_attr(ob, post, &w->after);
	else
		nfs3_post_attr_now(r, ob, &w->after);
}

void nfs3_dirwcc(struct nfsd_req *r, const struct nfsd_obj *dir,
    const struct wafl_dirwcc *d, wcc_data *w)
{
	nfs3_wcc(r, dir, &d->pre, d->post_valid ? &d->post : NULL, w);
}

int nfs3_fh(struct nfsd_req *r, const struct nfsd_obj *ob, nfs_fh3 *fh)
{
	uint8_t *b = nfsd_req_alloc(r, NFSD_FH_LEN);

	if (b == NULL || nfsd_fh_encode(ob, b) != 0)
		return -ENOMEM;
	fh->data.data_val = (char *)b;
	fh->data.data_len = NFSD_FH_LEN;
	return 0;
}

int nfs3_post_fh(struct nfsd_req *r, const struct nfsd_obj *ob,
    post_op_fh3 *p)
{
	int rc = nfs3_fh(r, ob, &p->post_op_fh3_u.handle);

	p->handle_follows = rc == 0;
	return rc;
}

/* -------------------------------------------------------------- input */

static int time_in(enum time_how how, const nfstime3 *t,
    enum wafl_time_how *h, uint64_t *ns)
{
	switch (how) {
	case DONT_CHANGE:
		*h = WAFL_TIME_DONT;
		return 0;
	case SET_TO_SERVER_TIME:
		*h = WAFL_TIME_SERVER;
		return 0;
	case SET_TO_CLIENT_TIME:
		if (t->nseconds >= 1000000000u)
			return -EINVAL;
		*h = WAFL_TIME_CLIENT;
		*ns = (uint64_t)t->seconds * 1000000000ull + t->nseconds;
		return 0;
	}
	return -EINVAL;
}

int nfs3_sattr(const sattr3 *in, struct wafl_sattr *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (in->mode.set_it) {
		out->set_mode = true;
		out->mode = in->mode.set_mode3_u.mode & 07777;
	}
	if (in->uid.set_it) {
		out->set_uid = true;
		out->uid = in->uid.set_uid3_u.uid;
	}
	if (in->gid.set_it) {
		out->set_gid = true;
		out->gid = in->gid.set_gid3_u.gid;
	}
	if (in->size.set_it) {
		out->set_size = true;
		out->size = in->size.set_size3_u.size;
	}
	rc = time_in(in->atime.set_it, &in->atime.set_atime_u.atime,
	    &out->atime_how, &out->atime_ns);
	if (rc == 0)
		rc = time_in(in->mtime.set_it, &in->mtime.set_mtime_u.mtime,
		    &out->mtime_how, &out->mtime_ns);
	return rc;
}

int nfs3_name_lookup(const char *name)
{
	if (name == NULL || name[0] == '\0')
		return -ENOENT;
	if (strlen(name) > WAFL_NAME_MAX)
		return -ENAMETOOLONG;
	if (strchr(name, '/') != NULL)
		return -EACCES;
	return 0;
}

bool nfs3_name_reserved(const struct nfsd_obj *dir, const char *name)
{
	return !dir->snapdir && dir->o.snap == 0 && nfs3_is_vol_root(dir) &&
	    strcmp(name, ".snapshot") == 0;
}

int nfs3_name_create(const struct nfsd_obj *dir, const char *name)
{
	int rc = nfs3_name_lookup(name);

	if (rc == -ENOENT)
		return -EACCES;
	if (rc == 0 && (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    nfs3_name_reserved(dir, name)))
		return -EEXIST;
	return rc;
}

/* ------------------------------------------------------------- status */

static nfsstat3 errno_to_nfs3(int rc)
{
	switch (rc) {
	case 0:			return NFS3_OK;
	case -EPERM:		return NFS3ERR_PERM;
	case -ENOENT:		return NFS3ERR_NOENT;
	case -EIO:		return NFS3ERR_IO;
	case -ENXIO:		return NFS3ERR_NXIO;
	case -EACCES:		return NFS3ERR_ACCES;
	case -EEXIST:		return NFS3ERR_EXIST;
	case -EXDEV:		return NFS3ERR_XDEV;
	case -ENODEV:		return NFS3ERR_NODEV;
	case -ENOTDIR:		return NFS3ERR_NOTDIR;
	case -EISDIR:		return NFS3ERR_ISDIR;
	case -EINVAL:		return NFS3ERR_INVAL;
	case -EFBIG:		return NFS3ERR_FBIG;
	case -ENOSPC:		return NFS3ERR_NOSPC;
	case -EROFS:		return NFS3ERR_ROFS;
	case -FL_EREADONLY:	return NFS3ERR_ROFS;
	case -EMLINK:		return NFS3ERR_MLINK;
	case -ENAMETOOLONG:	return NFS3ERR_NAMETOOLONG;
	case -ENOTEMPTY:	return NFS3ERR_NOTEMPTY;
	case -EDQUOT:		return NFS3ERR_DQUOT;
	case -ESTALE:		return NFS3ERR_STALE;
	case -EBADF:		return NFS3ERR_BADHANDLE;
	case -FL_ENOTSYNC:	return NFS3ERR_NOT_SYNC;
	case -FL_EBADCOOKIE:	return NFS3ERR_BAD_COOKIE;
	case -EOPNOTSUPP:	return NFS3ERR_NOTSUPP;
	case -ERANGE:		return NFS3ERR_TOOSMALL;
	case -EAGAIN:		return NFS3ERR_JUKEBOX;
	case -FL_ECORRUPT:	return NFS3ERR_IO;
	default:		return NFS3ERR_SERVERFAULT;
	}
}

/* Every procedure may report these (handle and export policy). */
static bool always_allowed(nfsstat3 st)
{
	return st == NFS3ERR_BADHANDLE || st == NFS3ERR_STALE ||
	    st == NFS3ERR_SERVERFAULT || st == NFS3ERR_JUKEBOX ||
	    st == NFS3ERR_ACCES;
}

nfsstat3 nfs3_status(const struct nfsd_req *r, int rc)
{
	const struct nfsd_proc *pc = &nfsd_nfs3_prog.procs[r->proc];
	nfsstat3 st = errno_to_nfs3(rc);
	bool io_ok = false, inval_ok = false;

	if (st == NFS3_OK || always_allowed(st))
		return st;
	if (st == NFS3ERR_ROFS && (pc->flags & NFSD_MAKES_WRITE))
		return st;
	for (const int *e = pc->errors; e != NULL && *e != 0; e++) {
		if (*e == (int)st)
			return st;
		if (*e == NFS3ERR_IO)
			io_ok = true;
		if (*e == NFS3ERR_INVAL)
			inval_ok = true;
	}
	/* Not listed for this procedure.  A refusal stays a refusal (ACCES
	 * is always allowed), an argument the procedure cannot apply to
	 * this object is INVAL where listed: neither is a hard error. */
	if (st == NFS3ERR_PERM)
		return NFS3ERR_ACCES;
	if (inval_ok && (st == NFS3ERR_ISDIR || st == NFS3ERR_NOTDIR ||
	    st == NFS3ERR_FBIG))
		return NFS3ERR_INVAL;
	return io_ok ? NFS3ERR_IO : NFS3ERR_SERVERFAULT;
}
