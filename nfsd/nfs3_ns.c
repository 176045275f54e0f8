/*
 * nfsd/nfs3_ns.c: NFS version 3 namespace procedures (RFC 1813 3.3.8 to
 * 3.3.15): CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, RENAME, LINK.
 * All are MAKES_WRITE (read-only exports and snapshots answer ROFS in
 * nfs3_resolve) and NOT_IDEMPOTENT (answered through the DRC on
 * retransmission).  wcc data of the directories comes from wafl, taken
 * atomically with the change.
 */
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "nfsd/nfs3_impl.h"

/* The reply shared by CREATE, MKDIR, SYMLINK and MKNOD (same layout). */
static enum nfsd_disp new_obj_reply(struct nfsd_req *r, int rc,
    const struct nfsd_obj *dir, const struct nfsd_obj *ob,
    const struct wafl_attr *at, const struct wafl_dirwcc *dw,
    nfsstat3 *status, post_op_fh3 *fh, post_op_attr *attr, wcc_data *okwcc,
    wcc_data *failwcc, bool resolved)
{
	*status = nfs3_status(r, rc);
	if (rc == 0) {
		if (nfs3_post_fh(r, ob, fh) != 0)
			return NFSD_SYSTEM_ERR;
		nfs3_post_attr(ob, at, attr);
		nfs3_dirwcc(r, dir, dw, okwcc);
	} else if (resolved) {
		nfs3_dirwcc(r, dir, dw, failwcc);
	}
	return NFSD_REPLY;
}

/* RFC 1813 3.3.8 */
enum nfsd_disp nfs3_proc_create(struct nfsd_req *r, void *a, void *s)
{
	CREATE3args *args = a;
	CREATE3res *res = s;
	struct nfsd_obj dir, ob;
	struct wafl_attr at;
	struct wafl_dirwcc dw;
	struct wafl_sattr sa;
	uint64_t verf = 0;
	enum wafl_create_how how = WAFL_UNCHECKED;
	int rc = nfs3_resolve(r, &args->where.dir, &dir);
	bool resolved = nfs3_resolved(rc);

	memset(&dw, 0, sizeof(dw));
	memset(&sa, 0, sizeof(sa));
	if (rc == 0)
		rc = nfs3_name_create(&dir, args->where.name);
	if (rc == 0) {
		switch (args->how.mode) {
		case UNCHECKED:
		case GUARDED:
			how = args->how.mode == GUARDED ? WAFL_GUARDED :
			    WAFL_UNCHECKED;
			rc = nfs3_sattr(&args->how.createhow3_u.obj_attributes,
			    &sa);
			break;
		case EXCLUSIVE:
			how = WAFL_EXCLUSIVE;
			verf = fl_get_le64(
			    (const uint8_t *)args->how.createhow3_u.verf);
			break;
		default:
			rc = -EINVAL;
		}
	}
	ob = dir;
	if (rc == 0)
		rc = wafl_create(dir.exp->vol, &r->cred, &dir.o,
		    args->where.name, how, &sa, verf, &ob.o, &at, &dw);
	CREATE3resok *ok = &res->CREATE3res_u.resok;
	return new_obj_reply(r, rc, &dir, &ob, &at, &dw, &res->status,
	    &ok->obj, &ok->obj_attributes, &ok->dir_wcc,
	    &res->CREATE3res_u.resfail.dir_wcc, resolved);
}

/* RFC 1813 3.3.9 */
enum nfsd_disp nfs3_proc_mkdir(struct nfsd_req *r, void *a, void *s)
{
	MKDIR3args *args = a;
	MKDIR3res *res = s;
	struct nfsd_obj dir, ob;
	struct wafl_attr at;
	struct wafl_dirwcc dw;
	struct wafl_sattr sa;
	int rc = nfs3_resolve(r, &args->where.dir, &dir);
	bool resolved = nfs3_resolved(rc);

	memset(&dw, 0, sizeof(dw));
	if (rc == 0)
		rc = nfs3_name_create(&dir, args->where.name);
	if (rc == 0)
		rc = nfs3_sattr(&args->attributes, &sa);
	ob = dir;
	if (rc == 0)
		rc = wafl_mkdir(dir.exp->vol, &r->cred, &dir.o,
		    args->where.name, &sa, &ob.o, &at, &dw);
	MKDIR3resok *ok = &res->MKDIR3res_u.resok;
	return new_obj_reply(r, rc, &dir, &ob, &at, &dw, &res->status,
	    &ok->obj, &ok->obj_attributes, &ok->dir_wcc,
	    &res->MKDIR3res_u.resfail.dir_wcc, resolved);
}

/* RFC 1813 3.3.10 */
enum nfsd_disp nfs3_proc_symlink(struct nfsd_req *r, void *a, void *s)
{
	SYMLINK3args *args = a;
	SYMLINK3res *res = s;
	struct nfsd_obj dir, ob;
	struct wafl_attr at;
	struct wafl_dirwcc dw;
	struct wafl_sattr sa;
	const char *target = args->symlink.symlink_data;
	int rc = nfs3_resolve(r, &args->where.dir, &dir);
	bool resolved = nfs3_resolved(rc);

	memset(&dw, 0, sizeof(dw));
	if (rc == 0)
		rc = nfs3_name_create(&dir, args->where.name);
	if (rc == 0 && (target == NULL || target[0] == '\0'))
		rc = -EACCES;
	if (rc == 0 && strlen(target) >= WAFL_PATH_MAX)
		rc = -ENAMETOOLONG;
	if (rc == 0)
		rc = nfs3_sattr(&args->symlink.symlink_attributes, &sa);
	ob = dir;
	if (rc == 0)
		rc = wafl_symlink(dir.exp->vol, &r->cred, &dir.o,
		    args->where.name, target, &sa, &ob.o, &at, &dw);
	SYMLINK3resok *ok = &res->SYMLINK3res_u.resok;
	return new_obj_reply(r, rc, &dir, &ob, &at, &dw, &res->status,
	    &ok->obj, &ok->obj_attributes, &ok->dir_wcc,
	    &res->SYMLINK3res_u.resfail.dir_wcc, resolved);
}

/* RFC 1813 3.3.11 */
enum nfsd_disp nfs3_proc_mknod(struct nfsd_req *r, void *a, void *s)
{
	MKNOD3args *args = a;
	MKNOD3res *res = s;
	struct nfsd_obj dir, ob;
	struct wafl_attr at;
	struct wafl_dirwcc dw;
	struct wafl_sattr sa;
	uint32_t maj = 0, min = 0;
	enum wafl_type type = WAFL_FIFO;
	int rc = nfs3_resolve(r, &args->where.dir, &dir);
	bool resolved = nfs3_resolved(rc);

	memset(&dw, 0, sizeof(dw));
	if (rc == 0)
		rc = nfs3_name_create(&dir, args->where.name);
	if (rc == 0) {
		const mknoddata3 *w = &args->what;
		switch (w->type) {
		case NF3CHR:
		case NF3BLK:
			type = w->type == NF3CHR ? WAFL_CHR : WAFL_BLK;
			maj = w->mknoddata3_u.device.spec.specdata1;
			min = w->mknoddata3_u.device.spec.specdata2;
			rc = nfs3_sattr(&w->mknoddata3_u.device.dev_attributes,
			    &sa);
			break;
		case NF3SOCK:
		case NF3FIFO:
			type = w->type == NF3SOCK ? WAFL_SOCK : WAFL_FIFO;
			rc = nfs3_sattr(&w->mknoddata3_u.pipe_attributes, &sa);
			break;
		default:
			rc = 1;		/* BADTYPE, below */
		}
	}
	ob = dir;
	if (rc == 0)
		rc = wafl_mknod(dir.exp->vol, &r->cred, &dir.o,
		    args->where.name, type, maj, min, &sa, &ob.o, &at, &dw);
	MKNOD3resok *ok = &res->MKNOD3res_u.resok;
	if (rc == 1) {
		res->status = NFS3ERR_BADTYPE;
		nfs3_dirwcc(r, &dir, &dw, &res->MKNOD3res_u.resfail.dir_wcc);
		return NFSD_REPLY;
	}
	return new_obj_reply(r, rc, &dir, &ob, &at, &dw, &res->status,
	    &ok->obj, &ok->obj_attributes, &ok->dir_wcc,
	    &res->MKNOD3res_u.resfail.dir_wcc, resolved);
}

/* RFC 1813 3.3.12 */
enum nfsd_disp nfs3_proc_remove(struct nfsd_req *r, void *a, void *s)
{
	REMOVE3args *args = a;
	REMOVE3res *res = s;
	struct nfsd_obj dir;
	struct wafl_dirwcc dw;
	int rc = nfs3_resolve(r, &args->object.dir, &dir);
	bool resolved = nfs3_resolved(rc);

	memset(&dw, 0, sizeof(dw));
	if (rc == 0)
		rc = nfs3_name_lookup(args->object.name);
	if (rc == 0 && (strcmp(args->object.name, ".") == 0 ||
	    strcmp(args->object.name, "..") == 0))
		rc = -EACCES;
	if (rc == 0)
		rc = wafl_remove(dir.exp->vol, &r->cred, &dir.o,
		    args->object.name, &dw);
	res->status = nfs3_status(r, rc);
	if (resolved)
		nfs3_dirwcc(r, &dir, &dw, &res->REMOVE3res_u.resok.dir_wcc);
	return NFSD_REPLY;
}

/* RFC 1813 3.3.13 */
enum nfsd_disp nfs3_proc_rmdir(struct nfsd_req *r, void *a, void *s)
{
	RMDIR3args *args = a;
	RMDIR3res *res = s;
	struct nfsd_obj dir;
	struct wafl_dirwcc dw;
	int rc = nfs3_resolve(r, &args->object.dir, &dir);
	bool resolved = nfs3_resolved(rc);

	memset(&dw, 0, sizeof(dw));
	if (rc == 0)
		rc = nfs3_name_lookup(args->object.name);
	/* RFC 1813 3.3.13: "." is INVAL, ".." is EXIST. */
	if (rc == 0 && strcmp(args->object.name, ".") == 0)
		rc = -EINVAL;
	if (rc == 0 && strcmp(args->object.name, "..") == 0)
		rc = -EEXIST;
	if (rc == 0)
		rc = wafl_rmdir(dir.exp->vol, &r->cred, &dir.o,
		    args->object.name, &dw);
	res->status = nfs3_status(r, rc);
	if (resolved)
		nfs3_dirwcc(r, &dir, &dw, &res->RMDIR3res_u.resok.dir_wcc);
	return NFSD_REPLY;
}

/* RFC 1813 3.3.14 */
enum nfsd_disp nfs3_proc_rename(struct nfsd_req *r, void *a, void *s)
{
	RENAME3args *args = a;
	RENAME3res *res = s;
	struct nfsd_obj from, to;
	struct wafl_dirwcc fw, tw;
	bool have_from = false, have_to = false;
	int rc = nfs3_resolve(r, &args->from.dir, &from);

	memset(&fw, 0, sizeof(fw));
	memset(&tw, 0, sizeof(tw));
	have_from = rc == 0 || rc == -EROFS;
	if (rc == 0) {
		rc = nfs3_resolve(r, &args->to.dir, &to);
		have_to = rc == 0 || rc == -EROFS || rc == -EXDEV;
	}
	if (rc == 0)
		rc = nfs3_name_lookup(args->from.name);
	if (rc == 0) {
		/* The target is a name to make: empty is ACCES, as in
		 * CREATE (not NOENT, which says the source is missing). */
		rc = nfs3_name_lookup(args->to.name);
		if (rc == -ENOENT)
			rc = -EACCES;
		if (rc == 0 && nfs3_name_reserved(&to, args->to.name))
			rc = -EEXIST;
	}
	if (rc == 0 && (strcmp(args->from.name, ".") == 0 ||
	    strcmp(args->from.name, "..") == 0 ||
	    strcmp(args->to.name, ".") == 0 ||
	    strcmp(args->to.name, "..") == 0))
		rc = -EINVAL;
	if (rc == 0)
		rc = wafl_rename(from.exp->vol, &r->cred, &from.o,
		    args->from.name, &to.o, args->to.name, &fw, &tw);
	res->status = nfs3_status(r, rc);
	RENAME3resok *ok = &res->RENAME3res_u.resok;
	if (have_from)
		nfs3_dirwcc(r, &from, &fw, &ok->fromdir_wcc);
	if (have_to)
		nfs3_dirwcc(r, &to, &tw, &ok->todir_wcc);
	return NFSD_REPLY;
}

/* RFC 1813 3.3.15 */
enum nfsd_disp nfs3_proc_link(struct nfsd_req *r, void *a, void *s)
{
	LINK3args *args = a;
	LINK3res *res = s;
	struct nfsd_obj ob, dir;
	struct wafl_attr at;
	struct wafl_dirwcc dw;
	bool have_ob, have_dir = false;
	int rc = nfs3_resolve(r, &args->file, &ob);

	memset(&dw, 0, sizeof(dw));
	have_ob = rc == 0 || rc == -EROFS;
	if (rc == 0) {
		rc = nfs3_resolve(r, &args->link.dir, &dir);
		have_dir = rc == 0 || rc == -EROFS || rc == -EXDEV;
	}
	if (rc == 0)
		rc = nfs3_name_create(&dir, args->link.name);
	if (rc == 0)
		rc = wafl_link(ob.exp->vol, &r->cred, &ob.o, &dir.o,
		    args->link.name, &at, &dw);
	res->status = nfs3_status(r, rc);
	LINK3resok *ok = &res->LINK3res_u.resok;
	if (have_ob) {
		if (rc == 0)
			nfs3_post_attr(&ob, &at, &ok->file_attributes);
		else
			nfs3_post_attr_now(r, &ob, &ok->file_attributes);
	}
	if (have_dir)
		nfs3_dirwcc(r, &dir, &dw, &ok->linkdir_wcc);
	return NFSD_REPLY;
}
