/*
 * nfsd/nfs3_xdr.c: decoding of the NFS version 3 arguments that carry
 * names (RFC 1813 filename3 and nfspath3).
 *
 * The generated routines decode a name as a C string: bytes up to the
 * first NUL are all a handler would see, so "a\0b" would create, remove
 * or rename "a".  These wrappers decode the same fields in the same order
 * and refuse (FALSE: GARBAGE_ARGS, as Linux knfsd answers) a name or a
 * symbolic link's target whose XDR length is not its string length.
 * Encoding and XDR_FREE are the generated routines'.
 */
#include <string.h>

#include "nfsd/nfs3_impl.h"

/* One string field: its length word is read ahead, then the generated
 * routine decodes it; a NUL inside makes the string shorter. */
static bool_t str_dec(XDR *x, char **s, bool path)
{
	u_int pos = xdr_getpos(x), len;

	if (!xdr_u_int(x, &len) || !xdr_setpos(x, pos))
		return FALSE;
	if (!(path ? xdr_nfspath3(x, s) : xdr_filename3(x, s)))
		return FALSE;
	return *s != NULL && strlen(*s) == len;
}

static bool_t dirop_dec(XDR *x, diropargs3 *a)
{
	return xdr_nfs_fh3(x, &a->dir) && str_dec(x, &a->name, false);
}

bool_t nfs3_xdr_lookup3args(XDR *x, LOOKUP3args *a)
{
	if (x->x_op != XDR_DECODE)
		return xdr_LOOKUP3args(x, a);
	return dirop_dec(x, &a->what);
}

bool_t nfs3_xdr_create3args(XDR *x, CREATE3args *a)
{
	if (x->x_op != XDR_DECODE)
		return xdr_CREATE3args(x, a);
	return dirop_dec(x, &a->where) && xdr_createhow3(x, &a->how);
}

bool_t nfs3_xdr_mkdir3args(XDR *x, MKDIR3args *a)
{
	if (x->x_op != XDR_DECODE)
		return xdr_MKDIR3args(x, a);
	return dirop_dec(x, &a->where) && xdr_sattr3(x, &a->attributes);
}

bool_t nfs3_xdr_symlink3args(XDR *x, SYMLINK3args *a)
{
	if (x->x_op != XDR_DECODE)
		return xdr_SYMLINK3args(x, a);
	return dirop_dec(x, &a->where) &&
	    xdr_sattr3(x, &a->symlink.symlink_attributes) &&
	    str_dec(x, &a->symlink.symlink_data, true);
}

bool_t nfs3_xdr_mknod3args(XDR *x, MKNOD3args *a)
{
	if (x->x_op != XDR_DECODE)
		return xdr_MKNOD3args(x, a);
	return dirop_dec(x, &a->where) && xdr_mknoddata3(x, &a->what);
}

bool_t nfs3_xdr_remove3args(XDR *x, REMOVE3args *a)
{
	if (x->x_op != XDR_DECODE)
		return xdr_REMOVE3args(x, a);
	return dirop_dec(x, &a->object);
}

bool_t nfs3_xdr_rmdir3args(XDR *x, RMDIR3args *a)
{
	if (x->x_op != XDR_DECODE)
		return xdr_RMDIR3args(x, a);
	return dirop_dec(x, &a->object);
}

bool_t nfs3_xdr_rename3args(XDR *x, RENAME3args *a)
{
	if (x->x_op != XDR_DECODE)
		return xdr_RENAME3args(x, a);
	return dirop_dec(x, &a->from) && dirop_dec(x, &a->to);
}

bool_t nfs3_xdr_link3args(XDR *x, LINK3args *a)
{
	if (x->x_op != XDR_DECODE)
		return xdr_LINK3args(x, a);
	return xdr_nfs_fh3(x, &a->file) && dirop_dec(x, &a->link);
}
