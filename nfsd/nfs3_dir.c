/*
 * nfsd/nfs3_dir.c: READDIR and READDIRPLUS (RFC 1813 3.3.16, 3.3.17).
 *
 * SIZES
 *   The reply is accounted in XDR bytes as it is built, entry by entry:
 *     fixed   status 4 + post_op_attr 88 + cookieverf 8 + list end 4 +
 *             eof 4 = 108
 *     entry3  value_follows 4 + fileid 8 + name 4+pad + cookie 8
 *     entryplus3  the same + post_op_attr (4 or 88) + post_op_fh3 (4 or
 *             4+4+52)
 *   READDIR never exceeds count; READDIRPLUS never exceeds maxcount and
 *   its directory part (fileid, name, cookie: 8 + 4+pad + 8 per entry)
 *   never exceeds dircount, except that the first entry is always sent
 *   when it fits maxcount (clients must make progress).  No entry fitting
 *   at all is NFS3ERR_TOOSMALL.  eof is true only when the walk reached
 *   the end with every entry sent.  Counts over NFSD_READDIR_MAX /
 *   NFSD_READDIRPLUS_MAX are reduced to them (less is always allowed).
 *
 * COOKIES
 *   wafl's cookies (hash keys; "." is 1, ".." 2) stay valid across
 *   creates and removes, so the cookie verifier is wafl's constant and a
 *   mismatch (a verifier from another file system) is BAD_COOKIE.  In the
 *   virtual .snapshot directory the cookie of a snapshot is 2 + its id.
 *
 * ".."
 *   is what LOOKUP gives: the export root's is the root itself (its
 *   fileid, handle and attributes: nothing of the directory above the
 *   export), a snapshot root's is .snapshot.
 */
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "nfsd/nfs3_impl.h"

#define RD_FIXED	(4u + NFS3_POSTATTR_XDR + 8u + 4u + 4u)

struct rd_state {
	struct nfsd_req *r;
	const struct nfsd_obj *dir;
	bool plus;
	size_t max, dirmax;		/* maxcount (count), dircount */
	size_t used, dirused;
	/* The export root's own attributes, for its ".." (READDIRPLUS). */
	struct wafl_attr self;
	bool have_self;
	unsigned nentries;
	bool full;
	int err;
	/* List being built (READDIR uses e3, READDIRPLUS ep3). */
	entry3 *e3_head, **e3_tail;
	entryplus3 *ep_head, **ep_tail;
};

static size_t entry_dir_bytes(size_t namelen)
{
	return 8u + 4u + XDR_PAD4(namelen) + 8u;
}

/* One entry; returns non-zero to stop the walk. */
static int rd_add(struct rd_state *st, const char *name, uint64_t fileid,
    uint64_t cookie, const struct nfsd_obj *ob, const struct wafl_attr *a)
{
	size_t nl = strlen(name);
	size_t dirb = entry_dir_bytes(nl);
	size_t need = 4u + dirb;

	if (st->plus)
		need += (a != NULL ? NFS3_POSTATTR_XDR : 4u) +
		    (ob != NULL ? NFS3_POSTFH_XDR : 4u);
	if (st->used + need > st->max ||
	    (st->plus && st->nentries > 0 && st->dirused + dirb > st->dirmax)) {
		st->full = true;
		return 1;
	}
	char *nm = nfsd_req_alloc(st->r, nl + 1);
	if (nm == NULL) {
		st->err = -ENOMEM;
		return 1;
	}
	memcpy(nm, name, nl + 1);
	if (!st->plus) {
		entry3 *e = nfsd_req_alloc(st->r, sizeof(*e));
		if (e == NULL) {
			st->err = -ENOMEM;
			return 1;
		}
		e->fileid = fileid;
		e->name = nm;
		e->cookie = cookie;
		*st->e3_tail = e;
		st->e3_tail = &e->nextentry;
	} else {
		entryplus3 *e = nfsd_req_alloc(st->r, sizeof(*e));
		if (e == NULL) {
			st->err = -ENOMEM;
			return 1;
		}
		e->fileid = fileid;
		e->name = nm;
		e->cookie = cookie;
		nfs3_post_attr(ob != NULL ? ob : st->dir, a, &e->name_attributes);
		if (ob != NULL && nfs3_post_fh(st->r, ob, &e->name_handle) != 0) {
			st->err = -ENOMEM;
			return 1;
		}
		*st->ep_tail = e;
		st->ep_tail = &e->nextentry;
	}
	st->used += need;
	st->dirused += dirb;
	st->nentries++;
	return 0;
}

static int rd_cb(void *arg, const struct wafl_dirent *de)
{
	struct rd_state *st = arg;
	struct nfsd_obj ob = *st->dir;
	const struct wafl_attr *a = de->attr;
	uint64_t fileid = de->fileid;
	bool have = de->obj != NULL;

	if (have) {
		ob.o = *de->obj;
		ob.o.snap = st->dir->o.snap;
		ob.snapdir = false;
	}
	/* ".." as LOOKUP resolves it: the export root's is itself (nothing
	 * of the directory above the export, not even its fileid), a
	 * snapshot root's is .snapshot. */
	if (strcmp(de->name, "..") == 0 && nfs3_is_export_root(st->dir)) {
		ob = *st->dir;
		fileid = st->dir->o.ino;
		a = st->have_self ? &st->self : NULL;
		have = st->plus;
	} else if (strcmp(de->name, "..") == 0 && st->dir->o.snap != 0 &&
	    nfs3_is_vol_root(st->dir)) {
		fileid = NFSD_SNAPDIR_FILEID;
		have = false;
		a = NULL;
	}
	return rd_add(st, de->name, fileid, de->cookie, have ? &ob : NULL,
	    have ? a : NULL);
}

/* The virtual .snapshot directory: ".", "..", then one entry per
 * snapshot in id order. */
static int rd_snapdir(struct rd_state *st, uint64_t cookie, bool *eof)
{
	const struct nfsd_exp *e = st->dir->exp;
	enum { MAXSNAP = 256 };
	struct wafl_snapinfo *si;
	struct wafl_attr a, ra;
	size_t n = 0;
	int rc;

	*eof = false;
	si = nfsd_req_alloc(st->r, MAXSNAP * sizeof(*si));
	if (si == NULL)
		return -ENOMEM;
	rc = wafl_snap_names(e->vol, si, MAXSNAP, &n);
	if (rc != 0)
		return rc;
	n = FL_MIN(n, (size_t)MAXSNAP);
	/* Sort by id (insertion: n is small). */
	for (size_t i = 1; i < n; i++) {
		struct wafl_snapinfo t = si[i];
		size_t j = i;
		for (; j > 0 && si[j - 1].id > t.id; j--)
			si[j] = si[j - 1];
		si[j] = t;
	}
	rc = nfs3_getattr(st->r, st->dir, &a);
	if (rc != 0)
		return rc;
	if (cookie < 1 && rd_add(st, ".", NFSD_SNAPDIR_FILEID, 1, st->dir, &a))
		return 0;
	if (cookie < 2) {
		struct nfsd_obj up = *st->dir;
		up.snapdir = false;
		up.o = e->volroot;
		if (wafl_getattr(e->vol, &up.o, &ra) != 0 ||
		    rd_add(st, "..", up.o.ino, 2, &up, &ra))
			return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (si[i].id + 2 <= cookie)
			continue;
		struct nfsd_obj so = *st->dir;
		bool have = false;
		so.snapdir = false;
		if (st->plus && wafl_snap_root(e->vol, si[i].id, &so.o) == 0 &&
		    wafl_getattr(e->vol, &so.o, &ra) == 0)
			have = true;
		if (rd_add(st, si[i].name, e->volroot.ino, si[i].id + 2,
		    have ? &so : NULL, have ? &ra : NULL))
			return 0;
	}
	*eof = true;
	return 0;
}

/* Common body; fills status, dir attributes, verifier, eof. */
static int rd_run(struct nfsd_req *r, const nfs_fh3 *fh, uint64_t cookie,
    const char *verf_in, struct rd_state *st, struct nfsd_obj *dir,
    struct wafl_attr *dat, bool *eof, uint8_t verf_out[8], bool *have)
{
	uint64_t cv;
	int rc = nfs3_resolve(r, fh, dir);

	*have = nfs3_resolved(rc);
	*eof = false;
	if (rc != 0)
		return rc;
	st->r = r;
	st->dir = dir;
	st->e3_tail = &st->e3_head;
	st->ep_tail = &st->ep_head;
	cv = dir->snapdir ? 1 : wafl_cookieverf(dir->exp->vol, &dir->o);
	fl_put_le64(verf_out, cv);
	if (cookie != 0 && fl_get_le64((const uint8_t *)verf_in) != 0 &&
	    memcmp(verf_in, verf_out, 8) != 0)
		return -FL_EBADCOOKIE;
	if (st->max < RD_FIXED)
		return -ERANGE;
	st->used = RD_FIXED;
	if (dir->snapdir) {
		rc = rd_snapdir(st, cookie, eof);
		if (rc == 0)
			rc = nfs3_getattr(r, dir, dat);
	} else {
		/* Read before the walk, which holds the directory. */
		if (st->plus && cookie <= 1 && nfs3_is_export_root(dir))
			st->have_self = nfs3_getattr(r, dir, &st->self) == 0;
		rc = wafl_readdir(dir->exp->vol, &r->cred, &dir->o, cookie,
		    st->plus, rd_cb, st, eof, dat);
	}
	if (rc == 0 && st->err != 0)
		rc = st->err;
	if (rc == 0 && st->nentries == 0 && !*eof)
		rc = -ERANGE;		/* not even one entry fits */
	if (st->full)
		*eof = false;
	return rc;
}

/* RFC 1813 3.3.16 */
enum nfsd_disp nfs3_proc_readdir(struct nfsd_req *r, void *a, void *s)
{
	READDIR3args *args = a;
	READDIR3res *res = s;
	struct rd_state st = { .plus = false };
	struct nfsd_obj dir;
	struct wafl_attr dat;
	bool eof, have;
	int rc;

	st.max = FL_MIN(args->count, r->udp ? 8192u : NFSD_READDIR_MAX);
	st.dirmax = st.max;
	READDIR3resok *ok = &res->READDIR3res_u.resok;
	rc = rd_run(r, &args->dir, args->cookie, args->cookieverf, &st, &dir,
	    &dat, &eof, (uint8_t *)ok->cookieverf, &have);
	res->status = nfs3_status(r, rc);
	if (rc == 0) {
		nfs3_post_attr(&dir, &dat, &ok->dir_attributes);
		ok->reply.entries = st.e3_head;
		ok->reply.eof = eof;
	} else if (have) {
		nfs3_post_attr_now(r, &dir,
		    &res->READDIR3res_u.resfail.dir_attributes);
	}
	return NFSD_REPLY;
}

/* RFC 1813 3.3.17 */
enum nfsd_disp nfs3_proc_readdirplus(struct nfsd_req *r, void *a, void *s)
{
	READDIRPLUS3args *args = a;
	READDIRPLUS3res *res = s;
	struct rd_state st = { .plus = true };
	struct nfsd_obj dir;
	struct wafl_attr dat;
	bool eof, have;
	int rc;

	st.max = FL_MIN(args->maxcount, r->udp ? 8192u : NFSD_READDIRPLUS_MAX);
	st.dirmax = args->dircount;
	READDIRPLUS3resok *ok = &res->READDIRPLUS3res_u.resok;
	rc = rd_run(r, &args->dir, args->cookie, args->cookieverf, &st, &dir,
	    &dat, &eof, (uint8_t *)ok->cookieverf, &have);
	res->status = nfs3_status(r, rc);
	if (rc == 0) {
		nfs3_post_attr(&dir, &dat, &ok->dir_attributes);
		ok->reply.entries = st.ep_head;
		ok->reply.eof = eof;
	} else if (have) {
		nfs3_post_attr_now(r, &dir,
		    &res->READDIRPLUS3res_u.resfail.dir_attributes);
	}
	return NFSD_REPLY;
}
