/*
 * nfsd/nfs3_proc.c: NFS version 3 procedures on single objects (RFC 1813
 * section 3.3): NULL, GETATTR, SETATTR, LOOKUP, ACCESS, READLINK, READ,
 * WRITE, COMMIT, FSSTAT, FSINFO, PATHCONF.
 *
 * Every handler has the same shape: resolve the handle(s) (nfs3_resolve
 * applies the export rule and, for MAKES_WRITE procedures, the read-only
 * policy), call wafl, set status through nfs3_status (the procedure's own
 * mapping), fill post-op attributes / wcc data on success and failure.
 * Result memory comes from the request arena.
 */
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "nfsd/nfs3_impl.h"

/* RFC 1813 3.3.0 */
enum nfsd_disp nfs3_proc_null(struct nfsd_req *r, void *a, void *s)
{
	return NFSD_REPLY;
}

/* RFC 1813 3.3.1 */
enum nfsd_disp nfs3_proc_getattr(struct nfsd_req *r, void *a, void *s)
{
	GETATTR3args *args = a;
	GETATTR3res *res = s;
	struct nfsd_obj ob;
	struct wafl_attr at;
	int rc = nfs3_resolve(r, &args->object, &ob);

	if (rc == 0)
		rc = nfs3_getattr(r, &ob, &at);
	res->status = nfs3_status(r, rc);
	if (rc == 0)
		nfs3_fattr(&ob, &at, &res->GETATTR3res_u.resok.obj_attributes);
	return NFSD_REPLY;
}

/* RFC 1813 3.3.2 */
enum nfsd_disp nfs3_proc_setattr(struct nfsd_req *r, void *a, void *s)
{
	SETATTR3args *args = a;
	SETATTR3res *res = s;
	struct nfsd_obj ob;
	struct wafl_sattr sa;
	struct wafl_wcc pre = { 0 };
	struct wafl_attr post;
	uint64_t guard;
	int rc = nfs3_resolve(r, &args->object, &ob);
	bool have = nfs3_resolved(rc);

	if (rc == 0)
		rc = nfs3_sattr(&args->new_attributes, &sa);
	if (rc == 0 && args->guard.check) {
		const nfstime3 *t = &args->guard.sattrguard3_u.obj_ctime;
		guard = (uint64_t)t->seconds * 1000000000ull + t->nseconds;
	}
	if (rc == 0)
		rc = wafl_setattr(ob.exp->vol, &r->cred, &ob.o, &sa,
		    args->guard.check ? &guard : NULL, &pre, &post);
	res->status = nfs3_status(r, rc);
	/* resok and resfail share the layout: wcc_data. */
	if (have)
		nfs3_wcc(r, &ob, &pre, rc == 0 ? &post : NULL,
		    &res->SETATTR3res_u.resok.obj_wcc);
	return NFSD_REPLY;
}

/* LOOKUP inside the virtual .snapshot directory. */
static int lookup_snapdir(struct nfsd_req *r, const struct nfsd_obj *dir,
    const char *name, struct nfsd_obj *out)
{
	uint64_t id;
	int rc;

	*out = *dir;
	if (strcmp(name, ".") == 0)
		return 0;
	out->snapdir = false;
	if (strcmp(name, "..") == 0) {
		out->o = dir->exp->volroot;
		return 0;
	}
	rc = wafl_snap_lookup(dir->exp->vol, name, &id);
	if (rc == 0)
		rc = wafl_snap_root(dir->exp->vol, id, &out->o);
	if (rc == -ESTALE)
		rc = -ENOENT;
	return rc;
}

/* RFC 1813 3.3.3 */
enum nfsd_disp nfs3_proc_lookup(struct nfsd_req *r, void *a, void *s)
{
	LOOKUP3args *args = a;
	LOOKUP3res *res = s;
	const char *name = args->what.name;
	struct nfsd_obj dir, ob;
	struct wafl_attr at, dat;
	bool have_dat = false;
	int rc = nfs3_resolve(r, &args->what.dir, &dir);
	bool have = nfs3_resolved(rc);

	if (rc == 0)
		rc = nfs3_name_lookup(name);
	if (rc != 0)
		goto out;
	ob = dir;
	if (dir.snapdir) {
		rc = lookup_snapdir(r, &dir, name, &ob);
		if (rc == 0)
			rc = nfs3_getattr(r, &ob, &at);
	} else if (strcmp(name, "..") == 0 && nfs3_is_export_root(&dir)) {
		/* ".." of the export root is the export root. */
		rc = nfs3_getattr(r, &ob, &at);
	} else if (strcmp(name, "..") == 0 && dir.o.snap != 0 &&
	    nfs3_is_vol_root(&dir)) {
		/* Up from a snapshot's root: back into .snapshot. */
		ob.o = dir.exp->volroot;
		ob.snapdir = true;
		rc = nfs3_getattr(r, &ob, &at);
	} else if (strcmp(name, ".snapshot") == 0 && dir.o.snap == 0 &&
	    nfs3_is_vol_root(&dir)) {
		ob.snapdir = true;
		ob.o = dir.exp->volroot;
		rc = nfs3_getattr(r, &ob, &at);
	} else {
		rc = wafl_lookup(dir.exp->vol, &r->cred, &dir.o, name, &ob.o,
		    &at, &dat);
		ob.o.snap = dir.o.snap;
		have_dat = rc == 0;
	}
out:
	res->status = nfs3_status(r, rc);
	if (rc == 0) {
		LOOKUP3resok *ok = &res->LOOKUP3res_u.resok;
		if (nfs3_fh(r, &ob, &ok->object) != 0)
			return NFSD_SYSTEM_ERR;
		nfs3_post_attr(&ob, &at, &ok->obj_attributes);
		if (have_dat)
			nfs3_post_attr(&dir, &dat, &ok->dir_attributes);
		else
			nfs3_post_attr_now(r, &dir, &ok->dir_attributes);
	} else if (have) {
		nfs3_post_attr_now(r, &dir,
		    &res->LOOKUP3res_u.resfail.dir_attributes);
	}
	return NFSD_REPLY;
}

/* RFC 1813 3.3.4 */
enum nfsd_disp nfs3_proc_access(struct nfsd_req *r, void *a, void *s)
{
	ACCESS3args *args = a;
	ACCESS3res *res = s;
	struct nfsd_obj ob;
	struct wafl_attr at;
	uint32_t want = args->access & 0x3fu, granted = 0;
	int rc = nfs3_resolve(r, &args->object, &ob);
	bool have = nfs3_resolved(rc);

	if (rc == 0 && ob.snapdir) {
		rc = nfs3_getattr(r, &ob, &at);
		granted = want & (ACCESS3_READ | ACCESS3_LOOKUP |
		    ACCESS3_EXECUTE);
	} else if (rc == 0) {
		rc = wafl_access(ob.exp->vol, &r->cred, &ob.o, want, &granted,
		    &at);
	}
	if (rc == 0 && !nfs3_writable(r, &ob))
		granted &= ~(uint32_t)(ACCESS3_MODIFY | ACCESS3_EXTEND |
		    ACCESS3_DELETE);
	res->status = nfs3_status(r, rc);
	if (rc == 0) {
		res->ACCESS3res_u.resok.access = granted & want;
		nfs3_post_attr(&ob, &at, &res->ACCESS3res_u.resok.obj_attributes);
	} else if (have) {
		nfs3_post_attr_now(r, &ob,
		    &res->ACCESS3res_u.resfail.obj_attributes);
	}
	return NFSD_REPLY;
}

/* RFC 1813 3.3.5 */
enum nfsd_disp nfs3_proc_readlink(struct nfsd_req *r, void *a, void *s)
{
	READLINK3args *args = a;
	READLINK3res *res = s;
	struct nfsd_obj ob;
	struct wafl_attr at;
	size_t len = 0;
	char *buf = NULL;
	int rc = nfs3_resolve(r, &args->symlink, &ob);
	bool have = nfs3_resolved(rc);

	if (rc == 0 && ob.snapdir)
		rc = -EINVAL;
	if (rc == 0) {
		buf = nfsd_req_alloc(r, WAFL_PATH_MAX + 1);
		rc = buf == NULL ? -ENOMEM : wafl_readlink(ob.exp->vol,
		    &r->cred, &ob.o, buf, WAFL_PATH_MAX, &len, &at);
	}
	res->status = nfs3_status(r, rc);
	if (rc == 0) {
		buf[FL_MIN(len, (size_t)WAFL_PATH_MAX)] = '\0';
		res->READLINK3res_u.resok.data = buf;
		nfs3_post_attr(&ob, &at,
		    &res->READLINK3res_u.resok.symlink_attributes);
	} else if (have) {
		nfs3_post_attr_now(r, &ob,
		    &res->READLINK3res_u.resfail.symlink_attributes);
	}
	return NFSD_REPLY;
}

/*
 * READ3res as xdr_READ3res encodes it, but for the data: only its length
 * is encoded; rpc.c sends the bytes (and the XDR padding) from r->rdata,
 * the pieces wafl_read_vec gave, behind the encoded reply.  So a READ's
 * data is not copied in user space at all when it is in the block cache
 * (its blocks are lent until the reply is sent), and once otherwise.
 */
bool_t nfs3_xdr_read3res_head(XDR *x, READ3res *res)
{
	if (!xdr_nfsstat3(x, &res->status))
		return FALSE;
	if (res->status != NFS3_OK)
		return xdr_READ3resfail(x, &res->READ3res_u.resfail);
	READ3resok *ok = &res->READ3res_u.resok;
	return xdr_post_op_attr(x, &ok->file_attributes) &&
	    xdr_count3(x, &ok->count) && xdr_bool(x, &ok->eof) &&
	    xdr_u_int(x, &ok->data.data_len);
}

/* RFC 1813 3.3.6 */
enum nfsd_disp nfs3_proc_read(struct nfsd_req *r, void *a, void *s)
{
	READ3args *args = a;
	READ3res *res = s;
	struct nfsd_obj ob;
	struct wafl_attr at;
	uint32_t count = FL_MIN(args->count, r->udp ? NFSD_MAX_IO_UDP :
	    NFSD_MAX_IO), got = 0;
	bool eof = false;
	struct wafl_rdvec *rv = NULL;
	int rc = nfs3_resolve(r, &args->file, &ob);
	bool have = nfs3_resolved(rc);

	if (rc == 0 && ob.snapdir)
		rc = -EISDIR;
	if (rc == 0) {
		/* The pieces become the data part of the reply as they are
		 * (r->rdata, see nfs3_xdr_read3res_head). */
		rc = wafl_read_vec(ob.exp->vol, &r->cred, &ob.o, args->offset,
		    count, &rv, &got, &eof, &at);
	}
	res->status = nfs3_status(r, rc);
	if (rc == 0) {
		READ3resok *ok = &res->READ3res_u.resok;
		nfs3_post_attr(&ob, &at, &ok->file_attributes);
		ok->count = got;
		ok->eof = eof;
		ok->data.data_len = got;
		ok->data.data_val = NULL;	/* never encoded: r->rdata */
		r->rdata = rv;		/* only with READ3resok, whose */
					/* encoding ends with got */
	}
	if (rc != 0 && have) {
		nfs3_post_attr_now(r, &ob,
		    &res->READ3res_u.resfail.file_attributes);
	}
	return NFSD_REPLY;
}

/*
 * WRITE3args as xdr_WRITE3args decodes them, but the data is left where
 * it arrived: data_val points into the call's record (xdr_inline of the
 * memory stream rpc.c decodes from), which the request owns until
 * nfsd_req_free, after the handler.  So a WRITE's data is not copied
 * between the record and wafl_write.  XDR_FREE releases only the handle.
 */
bool_t nfs3_xdr_write3args_inplace(XDR *x, WRITE3args *a)
{
	u_int len;

	if (x->x_op == XDR_FREE) {
		a->data.data_val = NULL;	/* in the record */
		a->data.data_len = 0;
		return xdr_WRITE3args(x, a);
	}
	if (x->x_op != XDR_DECODE)
		return xdr_WRITE3args(x, a);
	if (!xdr_nfs_fh3(x, &a->file) || !xdr_offset3(x, &a->offset) ||
	    !xdr_count3(x, &a->count) || !xdr_stable_how(x, &a->stable) ||
	    !xdr_u_int(x, &len) || len > NFS3_WIRE_DATALEN)
		return FALSE;
	a->data.data_len = len;
	a->data.data_val = NULL;
	if (len == 0)
		return TRUE;
	a->data.data_val = (char *)xdr_inline(x, (int)((len + 3) & ~3u));
	return a->data.data_val != NULL;
}

/* RFC 1813 3.3.7 */
enum nfsd_disp nfs3_proc_write(struct nfsd_req *r, void *a, void *s)
{
	WRITE3args *args = a;
	WRITE3res *res = s;
	struct nfsd_obj ob;
	struct wafl_wcc pre = { 0 };
	struct wafl_attr post;
	enum wafl_stable committed = WAFL_UNSTABLE;
	int rc = nfs3_resolve(r, &args->file, &ob);
	bool have = nfs3_resolved(rc);

	if (rc == 0 && (args->count > args->data.data_len ||
	    args->stable > FILE_SYNC))
		rc = -EINVAL;
	if (rc == 0 && ob.snapdir)
		rc = -EISDIR;
	if (rc == 0)
		rc = wafl_write(ob.exp->vol, &r->cred, &ob.o, args->offset,
		    args->count, args->data.data_val,
		    (enum wafl_stable)args->stable, &committed, &pre, &post);
	res->status = nfs3_status(r, rc);
	if (rc == 0) {
		WRITE3resok *ok = &res->WRITE3res_u.resok;
		nfs3_wcc(r, &ob, &pre, &post, &ok->file_wcc);
		ok->count = args->count;
		ok->committed = (stable_how)committed;
		wafl_write_verifier(ob.exp->vol, (uint8_t *)ok->verf);
	} else if (have) {
		nfs3_wcc(r, &ob, &pre, NULL, &res->WRITE3res_u.resfail.file_wcc);
	}
	return NFSD_REPLY;
}

/* RFC 1813 3.3.21 */
enum nfsd_disp nfs3_proc_commit(struct nfsd_req *r, void *a, void *s)
{
	COMMIT3args *args = a;
	COMMIT3res *res = s;
	struct nfsd_obj ob;
	struct wafl_attr post;
	int rc = nfs3_resolve(r, &args->file, &ob);
	bool have = nfs3_resolved(rc);

	if (rc == 0 && ob.o.snap == 0 && !ob.snapdir)
		rc = wafl_commit(ob.exp->vol, &ob.o, &post);
	else if (rc == 0)
		rc = nfs3_getattr(r, &ob, &post);	/* nothing to flush */
	res->status = nfs3_status(r, rc);
	if (rc == 0) {
		COMMIT3resok *ok = &res->COMMIT3res_u.resok;
		nfs3_wcc(r, &ob, NULL, &post, &ok->file_wcc);
		wafl_write_verifier(ob.exp->vol, (uint8_t *)ok->verf);
	} else if (have) {
		nfs3_wcc(r, &ob, NULL, NULL,
		    &res->COMMIT3res_u.resfail.file_wcc);
	}
	return NFSD_REPLY;
}

/* RFC 1813 3.3.18 */
enum nfsd_disp nfs3_proc_fsstat(struct nfsd_req *r, void *a, void *s)
{
	FSSTAT3args *args = a;
	FSSTAT3res *res = s;
	struct nfsd_obj ob;
	struct wafl_attr at;
	struct wafl_fsstat st;
	int rc = nfs3_resolve(r, &args->fsroot, &ob);
	bool have = nfs3_resolved(rc);

	if (rc == 0)
		rc = nfs3_getattr(r, &ob, &at);
	if (rc == 0)
		rc = wafl_statfs(ob.exp->vol, &st);
	res->status = nfs3_status(r, rc);
	if (rc != 0 && have)
		nfs3_post_attr_now(r, &ob,
		    &res->FSSTAT3res_u.resfail.obj_attributes);
	if (rc == 0) {
		FSSTAT3resok *ok = &res->FSSTAT3res_u.resok;
		nfs3_post_attr(&ob, &at, &ok->obj_attributes);
		ok->tbytes = st.tbytes;
		ok->fbytes = st.fbytes;
		ok->abytes = st.abytes;
		ok->tfiles = st.tfiles;
		ok->ffiles = st.ffiles;
		ok->afiles = st.afiles;
		ok->invarsec = 0;
	}
	return NFSD_REPLY;
}

/* RFC 1813 3.3.19 */
enum nfsd_disp nfs3_proc_fsinfo(struct nfsd_req *r, void *a, void *s)
{
	FSINFO3args *args = a;
	FSINFO3res *res = s;
	struct nfsd_obj ob;
	struct wafl_attr at;
	uint32_t io = r->udp ? NFSD_MAX_IO_UDP : NFSD_MAX_IO;
	int rc = nfs3_resolve(r, &args->fsroot, &ob);
	bool have = nfs3_resolved(rc);

	if (rc == 0)
		rc = nfs3_getattr(r, &ob, &at);
	res->status = nfs3_status(r, rc);
	if (rc != 0 && have)
		nfs3_post_attr_now(r, &ob,
		    &res->FSINFO3res_u.resfail.obj_attributes);
	if (rc == 0) {
		FSINFO3resok *ok = &res->FSINFO3res_u.resok;
		nfs3_post_attr(&ob, &at, &ok->obj_attributes);
		ok->rtmax = ok->rtpref = io;
		ok->wtmax = ok->wtpref = io;
		ok->rtmult = ok->wtmult = 4096;
		ok->dtpref = r->udp ? 8192 : NFSD_READDIR_MAX;
		/* The largest size a file can have: wafl takes a write
		 * ending there and a size of exactly WAFL_MAX_FILE_SIZE. */
		ok->maxfilesize = WAFL_MAX_FILE_SIZE;
		ok->time_delta.seconds = 0;
		ok->time_delta.nseconds = 1;
		ok->properties = FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS |
		    FSF3_CANSETTIME;
	}
	return NFSD_REPLY;
}

/* RFC 1813 3.3.20 */
enum nfsd_disp nfs3_proc_pathconf(struct nfsd_req *r, void *a, void *s)
{
	PATHCONF3args *args = a;
	PATHCONF3res *res = s;
	struct nfsd_obj ob;
	struct wafl_attr at;
	int rc = nfs3_resolve(r, &args->object, &ob);
	bool have = nfs3_resolved(rc);

	if (rc == 0)
		rc = nfs3_getattr(r, &ob, &at);
	res->status = nfs3_status(r, rc);
	if (rc != 0 && have)
		nfs3_post_attr_now(r, &ob,
		    &res->PATHCONF3res_u.resfail.obj_attributes);
	if (rc == 0) {
		PATHCONF3resok *ok = &res->PATHCONF3res_u.resok;
		nfs3_post_attr(&ob, &at, &ok->obj_attributes);
		ok->linkmax = WAFL_LINK_MAX;
		ok->name_max = WAFL_NAME_MAX;
		ok->no_trunc = TRUE;
		ok->chown_restricted = TRUE;
		ok->case_insensitive = FALSE;
		ok->case_preserving = TRUE;
	}
	return NFSD_REPLY;
}
