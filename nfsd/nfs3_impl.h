/*
 * nfsd/nfs3_impl.h: what the NFS version 3 procedure files share (the
 * generated XDR types, attribute and handle conversion, status mapping).
 */
#ifndef FILER_NFSD_NFS3_IMPL_H
#define FILER_NFSD_NFS3_IMPL_H

#include <errno.h>

#include "nfs3_prot.h"
#include "nfsd/nfsd_impl.h"

/* XDR sizes, for READDIR/READDIRPLUS accounting. */
#define NFS3_FATTR_XDR		84u
#define NFS3_POSTATTR_XDR	(4u + NFS3_FATTR_XDR)
#define NFS3_POSTFH_XDR		(4u + 4u + NFSD_FH_LEN)
#define XDR_PAD4(n)		(((size_t)(n) + 3u) & ~(size_t)3u)

/*
 * Resolve a handle of this request: format and MAC, the export's rule for
 * the caller (first match, secure port), the effective credential (into
 * r->cred, on the first handle), and the write policy: for a MAKES_WRITE
 * procedure a read-only export, a snapshot or .snapshot gives -EROFS.
 * A second handle of another export is -EXDEV.
 * Returns 0, -EBADF (BADHANDLE), -EACCES, -EROFS, -EXDEV, or -EAGAIN
 * (JUKEBOX) while the caller's host name, which a rule needs, is still
 * being looked up.
 */
int nfs3_resolve(struct nfsd_req *r, const nfs_fh3 *fh, struct nfsd_obj *ob);
/* After nfs3_resolve: was the handle good and the caller admitted (so the
 * reply may carry the object's attributes)? */
static inline bool nfs3_resolved(int rc)
{
	return rc == 0 || rc == -EROFS || rc == -EXDEV;
}

/* Whether the request may modify through ob (export rw, active fs). */
bool nfs3_writable(const struct nfsd_req *r, const struct nfsd_obj *ob);

/* Attributes of ob (the virtual .snapshot directory is synthesized). */
int nfs3_getattr(struct nfsd_req *r, const struct nfsd_obj *ob,
    struct wafl_attr *a);
void nfs3_fattr(const struct nfsd_obj *ob, const struct wafl_attr *a,
    fattr3 *f);
/* a == NULL: attributes_follow = FALSE. */
void nfs3_post_attr(const struct nfsd_obj *ob, const struct wafl_attr *a,
    post_op_attr *p);
/* Best effort post-op attributes (read now). */
void nfs3_post_attr_now(struct nfsd_req *r, const struct nfsd_obj *ob,
    post_op_attr *p);
void nfs3_wcc(struct nfsd_req *r, const struct nfsd_obj *ob,
    const struct wafl_wcc *pre, const struct wafl_attr *post, wcc_data *w);
void nfs3_dirwcc(struct nfsd_req *r, const struct nfsd_obj *dir,
    const struct wafl_dirwcc *d, wcc_data *w);
/* Handle of ob into fh (arena memory); 0 or -ENOMEM. */
int nfs3_fh(struct nfsd_req *r, const struct nfsd_obj *ob, nfs_fh3 *fh);
int nfs3_post_fh(struct nfsd_req *r, const struct nfsd_obj *ob,
    post_op_fh3 *p);

/* sattr3 -> wafl_sattr; -EINVAL for nanoseconds out of range. */
int nfs3_sattr(const sattr3 *in, struct wafl_sattr *out);
/* Name checks for lookups (dots allowed) and for names to make in dir
 * ("." and ".." and reserved names: -EEXIST). */
int nfs3_name_lookup(const char *name);
int nfs3_name_create(const struct nfsd_obj *dir, const char *name);
/* ".snapshot" in the volume's root: the virtual snapshot directory, which
 * LOOKUP always resolves, so no real entry may take the name. */
bool nfs3_name_reserved(const struct nfsd_obj *dir, const char *name);

/* rc (0 or -errno) -> nfsstat3, as this request's procedure may report. */
nfsstat3 nfs3_status(const struct nfsd_req *r, int rc);

/* Is ob the export's root (".." stays there)? the volume root? */
bool nfs3_is_export_root(const struct nfsd_obj *ob);
bool nfs3_is_vol_root(const struct nfsd_obj *ob);

/* nfs3_xdr.c: arguments with names, decoded as the generated routines do
 * but refused when a name or link target holds a NUL. */
bool_t nfs3_xdr_lookup3args(XDR *x, LOOKUP3args *a);
bool_t nfs3_xdr_create3args(XDR *x, CREATE3args *a);
bool_t nfs3_xdr_mkdir3args(XDR *x, MKDIR3args *a);
bool_t nfs3_xdr_symlink3args(XDR *x, SYMLINK3args *a);
bool_t nfs3_xdr_mknod3args(XDR *x, MKNOD3args *a);
bool_t nfs3_xdr_remove3args(XDR *x, REMOVE3args *a);
bool_t nfs3_xdr_rmdir3args(XDR *x, RMDIR3args *a);
bool_t nfs3_xdr_rename3args(XDR *x, RENAME3args *a);
bool_t nfs3_xdr_link3args(XDR *x, LINK3args *a);

/* nfs3_dir.c: handlers used by the table. */
enum nfsd_disp nfs3_proc_readdir(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_readdirplus(struct nfsd_req *r, void *a, void *s);
/* nfs3_ns.c */
enum nfsd_disp nfs3_proc_create(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_mkdir(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_symlink(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_mknod(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_remove(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_rmdir(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_rename(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_link(struct nfsd_req *r, void *a, void *s);
/* nfs3_proc.c */
enum nfsd_disp nfs3_proc_null(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_getattr(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_setattr(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_lookup(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_access(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_readlink(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_read(struct nfsd_req *r, void *a, void *s);
/* READ3res without the data bytes (they follow from r->rdata). */
bool_t nfs3_xdr_read3res_head(XDR *x, READ3res *res);
/* WRITE3args whose data points into the call's record (not copied). */
bool_t nfs3_xdr_write3args_inplace(XDR *x, WRITE3args *a);
enum nfsd_disp nfs3_proc_write(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_commit(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_fsstat(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_fsinfo(struct nfsd_req *r, void *a, void *s);
enum nfsd_disp nfs3_proc_pathconf(struct nfsd_req *r, void *a, void *s);

#endif
