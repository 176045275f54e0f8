/*
 * nfsd/nfs3_table.c: the NFS version 3 dispatch table (STYLE.md 11).
 *
 * One const entry per procedure, in procedure-number order: name, XDR of
 * the arguments and of the result (generated from nfsd/nfs3_prot.x; the
 * arguments that carry names through nfs3_xdr.c, which refuses a NUL),
 * handler, flags, and the protocol status the RFC lists for it.  The flags
 * carry shared policy: MAKES_WRITE gives NFS3ERR_ROFS on a read-only
 * export, a snapshot or .snapshot (nfs3_resolve); NOT_IDEMPOTENT sends the
 * call through the duplicate request cache (rpc.c).  Status outside the
 * list becomes: ACCES for PERM; INVAL for ISDIR, NOTDIR and FBIG where
 * INVAL is listed; otherwise NFS3ERR_IO (or SERVERFAULT where IO is not
 * listed).  BADHANDLE, STALE, SERVERFAULT, JUKEBOX and ACCES (export
 * refusal) are always allowed.  One list goes beyond the RFC's: MKDIR's
 * has NFS3ERR_MLINK (see e_mkdir).
 */
#include "nfsd/nfs3_impl.h"

#define W	NFSD_MAKES_WRITE
#define NI	NFSD_NOT_IDEMPOTENT

#define PROC(nm, T, fn, fl, errs) { \
	.name = nm, \
	.xdr_args = (xdrproc_t)xdr_##T##3args, .args_size = sizeof(T##3args), \
	.xdr_res = (xdrproc_t)xdr_##T##3res, .res_size = sizeof(T##3res), \
	.handler = fn, .flags = fl, .errors = errs, \
}

/* The same, arguments decoded by nfs3_xdr.c (names refused with a NUL). */
#define PROCN(nm, T, t, fn, fl, errs) { \
	.name = nm, \
	.xdr_args = (xdrproc_t)nfs3_xdr_##t##3args, \
	.args_size = sizeof(T##3args), \
	.xdr_res = (xdrproc_t)xdr_##T##3res, .res_size = sizeof(T##3res), \
	.handler = fn, .flags = fl, .errors = errs, \
}

static const int e_getattr[] = { NFS3ERR_IO, 0 };
static const int e_setattr[] = { NFS3ERR_PERM, NFS3ERR_IO, NFS3ERR_INVAL,
	NFS3ERR_NOSPC, NFS3ERR_DQUOT, NFS3ERR_NOT_SYNC, NFS3ERR_FBIG, 0 };
static const int e_lookup[] = { NFS3ERR_IO, NFS3ERR_NOENT, NFS3ERR_NOTDIR,
	NFS3ERR_NAMETOOLONG, 0 };
static const int e_access[] = { NFS3ERR_IO, 0 };
static const int e_readlink[] = { NFS3ERR_IO, NFS3ERR_INVAL,
	NFS3ERR_NOTSUPP, 0 };
static const int e_read[] = { NFS3ERR_IO, NFS3ERR_NXIO, NFS3ERR_INVAL,
	NFS3ERR_ISDIR, 0 };
static const int e_write[] = { NFS3ERR_IO, NFS3ERR_FBIG, NFS3ERR_DQUOT,
	NFS3ERR_NOSPC, NFS3ERR_INVAL, NFS3ERR_ISDIR, 0 };
static const int e_create[] = { NFS3ERR_IO, NFS3ERR_EXIST, NFS3ERR_NOTDIR,
	NFS3ERR_NOSPC, NFS3ERR_NAMETOOLONG, NFS3ERR_DQUOT, NFS3ERR_NOTSUPP,
	NFS3ERR_INVAL, 0 };
/* MKDIR: CREATE's list and MLINK, which RFC 1813 lists only for RENAME and
 * LINK.  A directory at the link limit takes no more subdirectories; the
 * filter would make that NFS3ERR_IO, a disk failure to the user.  Linux
 * knfsd answers MLINK there too (its nfserrno filters nothing per
 * procedure) and the Linux client maps it to EMLINK. */
static const int e_mkdir[] = { NFS3ERR_IO, NFS3ERR_EXIST, NFS3ERR_NOTDIR,
	NFS3ERR_NOSPC, NFS3ERR_NAMETOOLONG, NFS3ERR_DQUOT, NFS3ERR_NOTSUPP,
	NFS3ERR_INVAL, NFS3ERR_MLINK, 0 };
static const int e_mknod[] = { NFS3ERR_IO, NFS3ERR_EXIST, NFS3ERR_NOTDIR,
	NFS3ERR_NOSPC, NFS3ERR_NAMETOOLONG, NFS3ERR_DQUOT, NFS3ERR_NOTSUPP,
	NFS3ERR_BADTYPE, NFS3ERR_INVAL, 0 };
static const int e_remove[] = { NFS3ERR_NOENT, NFS3ERR_IO, NFS3ERR_NOTDIR,
	NFS3ERR_NAMETOOLONG, NFS3ERR_ISDIR, NFS3ERR_PERM, 0 };
static const int e_rmdir[] = { NFS3ERR_NOENT, NFS3ERR_IO, NFS3ERR_INVAL,
	NFS3ERR_EXIST, NFS3ERR_NOTDIR, NFS3ERR_NAMETOOLONG, NFS3ERR_NOTEMPTY,
	NFS3ERR_NOTSUPP, 0 };
static const int e_rename[] = { NFS3ERR_NOENT, NFS3ERR_IO, NFS3ERR_EXIST,
	NFS3ERR_XDEV, NFS3ERR_NOTDIR, NFS3ERR_ISDIR, NFS3ERR_INVAL,
	NFS3ERR_NOSPC, NFS3ERR_MLINK, NFS3ERR_NAMETOOLONG, NFS3ERR_NOTEMPTY,
	NFS3ERR_DQUOT, NFS3ERR_NOTSUPP, 0 };
static const int e_link[] = { NFS3ERR_IO, NFS3ERR_EXIST, NFS3ERR_XDEV,
	NFS3ERR_NOTDIR, NFS3ERR_INVAL, NFS3ERR_NOSPC, NFS3ERR_MLINK,
	NFS3ERR_NAMETOOLONG, NFS3ERR_DQUOT, NFS3ERR_NOTSUPP, NFS3ERR_ISDIR, 0 };
static const int e_readdir[] = { NFS3ERR_IO, NFS3ERR_NOTDIR,
	NFS3ERR_BAD_COOKIE, NFS3ERR_TOOSMALL, 0 };
static const int e_readdirplus[] = { NFS3ERR_IO, NFS3ERR_NOTDIR,
	NFS3ERR_BAD_COOKIE, NFS3ERR_TOOSMALL, NFS3ERR_NOTSUPP, 0 };
static const int e_fsstat[] = { NFS3ERR_IO, 0 };
static const int e_fsinfo[] = { 0 };
static const int e_pathconf[] = { 0 };
static const int e_commit[] = { NFS3ERR_IO, 0 };

static const struct nfsd_proc nfs3_procs[] = {
	[0] = { .name = "NULL", .xdr_args = (xdrproc_t)nfsd_xdr_void,
		.xdr_res = (xdrproc_t)nfsd_xdr_void, .handler = nfs3_proc_null },
	[1] = PROC("GETATTR", GETATTR, nfs3_proc_getattr, 0, e_getattr),
	[2] = PROC("SETATTR", SETATTR, nfs3_proc_setattr, W | NI, e_setattr),
	[3] = PROCN("LOOKUP", LOOKUP, lookup, nfs3_proc_lookup, 0, e_lookup),
	[4] = PROC("ACCESS", ACCESS, nfs3_proc_access, 0, e_access),
	[5] = PROC("READLINK", READLINK, nfs3_proc_readlink, 0, e_readlink),
	[6] = { .name = "READ", .xdr_args = (xdrproc_t)xdr_READ3args,
		.args_size = sizeof(READ3args),
		.xdr_res = (xdrproc_t)xdr_READ3res,
		.xdr_res_head = (xdrproc_t)nfs3_xdr_read3res_head,
		.res_size = sizeof(READ3res), .handler = nfs3_proc_read,
		.errors = e_read },
	[7] = { .name = "WRITE",
		.xdr_args = (xdrproc_t)nfs3_xdr_write3args_inplace,
		.args_size = sizeof(WRITE3args),
		.xdr_res = (xdrproc_t)xdr_WRITE3res,
		.res_size = sizeof(WRITE3res), .handler = nfs3_proc_write,
		.flags = W | NI, .errors = e_write },
	[8] = PROCN("CREATE", CREATE, create, nfs3_proc_create,
	    W | NI, e_create),
	[9] = PROCN("MKDIR", MKDIR, mkdir, nfs3_proc_mkdir, W | NI, e_mkdir),
	[10] = PROCN("SYMLINK", SYMLINK, symlink, nfs3_proc_symlink,
	    W | NI, e_create),
	[11] = PROCN("MKNOD", MKNOD, mknod, nfs3_proc_mknod, W | NI, e_mknod),
	[12] = PROCN("REMOVE", REMOVE, remove, nfs3_proc_remove,
	    W | NI, e_remove),
	[13] = PROCN("RMDIR", RMDIR, rmdir, nfs3_proc_rmdir, W | NI, e_rmdir),
	[14] = PROCN("RENAME", RENAME, rename, nfs3_proc_rename,
	    W | NI, e_rename),
	[15] = PROCN("LINK", LINK, link, nfs3_proc_link, W | NI, e_link),
	[16] = PROC("READDIR", READDIR, nfs3_proc_readdir, 0, e_readdir),
	[17] = PROC("READDIRPLUS", READDIRPLUS, nfs3_proc_readdirplus, 0,
	    e_readdirplus),
	[18] = PROC("FSSTAT", FSSTAT, nfs3_proc_fsstat, 0, e_fsstat),
	[19] = PROC("FSINFO", FSINFO, nfs3_proc_fsinfo, 0, e_fsinfo),
	[20] = PROC("PATHCONF", PATHCONF, nfs3_proc_pathconf, 0, e_pathconf),
	[21] = PROC("COMMIT", COMMIT, nfs3_proc_commit, 0, e_commit),
};

const struct nfsd_prog nfsd_nfs3_prog = {
	.prog = NFS_PROG, .vers = NFS_VERS, .procs = nfs3_procs,
	.nprocs = sizeof(nfs3_procs) / sizeof(nfs3_procs[0]),
};
