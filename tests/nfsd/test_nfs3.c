/*
 * tests/nfsd/test_nfs3.c: the NFS version 3 procedures.  libnfs (the
 * independent client) drives a real workflow; hand-built calls check each
 * procedure's protocol details and error paths exactly: wcc data, CREATE
 * modes and the exclusive verifier, WRITE stable_how and the verifier,
 * COMMIT, SETATTR guard, LOOKUP of "." / ".." / .snapshot, RMDIR "." / "..",
 * MKNOD types, forged / altered / short / stale handles, handles across a
 * restart, READDIR / READDIRPLUS byte limits and cookies, TCP and UDP,
 * status a procedure may not report mapped to one it may.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tests/nfsd/th_nfs.h"
#include "wafl/nvlog.h"
#include "wafl/wafl_impl.h"

static struct xb x;
static struct th_reply rp;
static uint32_t xid = 5000;

enum {
	P_GETATTR = 1, P_SETATTR, P_LOOKUP, P_ACCESS, P_READLINK, P_READ,
	P_WRITE, P_CREATE, P_MKDIR, P_SYMLINK, P_MKNOD, P_REMOVE, P_RMDIR,
	P_RENAME, P_LINK, P_READDIR, P_READDIRPLUS, P_FSSTAT, P_FSINFO,
	P_PATHCONF, P_COMMIT,
};

struct fx {
	struct th t;
	int fd;
	struct th_fh root;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	th_start(&f->t);
	f->fd = th_tcp(f->t.mnt_port, 0);
	VERIFY0(th_mnt(f->fd, "/vol/vol0", &f->root));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	close(f->fd);
	th_stop(&f->t);
	free(f);
	return 0;
}

/* A call as uid/gid (AUTH_SYS, no groups). */
static void call_as(uint32_t proc, const struct th_fh *fh, int uid, int gid)
{
	xb_call(&x, xid++, TH_NFS_PROG, 3, proc, uid, gid);
	if (fh != NULL)
		xb_fh(&x, fh);
}

static void call(uint32_t proc, const struct th_fh *fh)
{
	call_as(proc, fh, 0, 0);
}

/* Send x, expect an accepted reply; returns nfsstat3, r at the body. */
static uint32_t run(int fd)
{
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 0);
	return rd_u32(&rp.r);
}

static void sattr_none(void)
{
	for (int i = 0; i < 6; i++)
		xb_u32(&x, 0);
}

static void sattr_mode(uint32_t mode)
{
	xb_u32(&x, 1);
	xb_u32(&x, mode);
	for (int i = 0; i < 5; i++)
		xb_u32(&x, 0);
}

static uint32_t create(struct fx *f, const struct th_fh *dir,
    const char *name, uint32_t how, uint64_t verf, struct th_fh *out)
{
	call(P_CREATE, dir);
	xb_str(&x, name);
	xb_u32(&x, how);
	if (how == 2)
		xb_u64(&x, verf);
	else
		sattr_mode(0644);
	uint32_t st = run(f->fd);
	if (st == 0) {
		assert_int_equal(rd_u32(&rp.r), 1);	/* handle follows */
		uint32_t n;
		const uint8_t *p = rd_opaque(&rp.r, &n);
		if (out != NULL) {
			memcpy(out->b, p, n);
			out->len = n;
		}
		assert_true(rd_post_attr(&rp.r, NULL));
	}
	bool pre, post;
	rd_wcc(&rp.r, &pre, &post);
	if (!post)
		fprintf(stderr, "create %s: status %u without post-op\n",
		    name, st);
	assert_true(post);
	if (st == 0)
		assert_true(pre);
	assert_false(rp.r.bad);
	return st;
}

static uint32_t getattr(struct fx *f, const struct th_fh *fh,
    struct th_fattr *a)
{
	call(P_GETATTR, fh);
	uint32_t st = run(f->fd);
	if (st == 0)
		rd_fattr(&rp.r, a);
	return st;
}

static void test_fsinfo_pathconf_fsstat(void **state)
{
	struct fx *f = *state;
	struct th_fattr a;

	assert_int_equal(getattr(f, &f->root, &a), 0);
	assert_int_equal(a.type, 2);
	assert_int_not_equal(a.fsid, 0);

	call(P_FSINFO, &f->root);
	assert_int_equal(run(f->fd), 0);
	assert_true(rd_post_attr(&rp.r, NULL));
	assert_int_equal(rd_u32(&rp.r), 1u << 20);	/* rtmax */
	rd_skip(&rp.r, 8);
	assert_int_equal(rd_u32(&rp.r), 1u << 20);	/* wtmax */
	rd_skip(&rp.r, 8 + 4 + 8);
	assert_int_equal(rd_u32(&rp.r), 0);		/* time_delta */
	assert_int_equal(rd_u32(&rp.r), 1);
	assert_int_equal(rd_u32(&rp.r), 0x1b);		/* properties */

	/* Over UDP the sizes are smaller. */
	int u = th_udp();
	call(P_FSINFO, &f->root);
	th_rpc_udp(u, f->t.nfs_port, &x, &rp);
	assert_int_equal(rp.stat, 0);
	assert_int_equal(rd_u32(&rp.r), 0);
	rd_post_attr(&rp.r, NULL);
	assert_int_equal(rd_u32(&rp.r), 32u << 10);
	close(u);

	call(P_PATHCONF, &f->root);
	assert_int_equal(run(f->fd), 0);
	rd_post_attr(&rp.r, NULL);
	rd_u32(&rp.r);
	assert_int_equal(rd_u32(&rp.r), 255);
	assert_int_equal(rd_u32(&rp.r), 1);		/* no_trunc */

	call(P_FSSTAT, &f->root);
	assert_int_equal(run(f->fd), 0);
	rd_post_attr(&rp.r, NULL);
	uint64_t tbytes = rd_u64(&rp.r), fbytes = rd_u64(&rp.r);
	assert_true(tbytes > 0 && fbytes <= tbytes);
}

static uint32_t write_byte(struct fx *f, const struct th_fh *h,
    uint64_t off, uint32_t count)
{
	call(P_WRITE, h);
	xb_u64(&x, off);
	xb_u32(&x, count);
	xb_u32(&x, 2);				/* FILE_SYNC */
	xb_opaque(&x, "zz", count);
	uint32_t st = run(f->fd);
	bool post;
	rd_wcc(&rp.r, NULL, &post);
	assert_true(post);
	assert_false(rp.r.bad);
	return st;
}

static uint32_t setattr_size(struct fx *f, const struct th_fh *h,
    uint64_t size)
{
	call(P_SETATTR, h);
	for (int i = 0; i < 3; i++)
		xb_u32(&x, 0);
	xb_u32(&x, 1);
	xb_u64(&x, size);
	xb_u32(&x, 0);
	xb_u32(&x, 0);
	xb_u32(&x, 0);				/* no guard */
	uint32_t st = run(f->fd);
	bool post;
	rd_wcc(&rp.r, NULL, &post);
	assert_true(post);
	assert_false(rp.r.bad);
	return st;
}

/*
 * FSINFO's maxfilesize is the largest size a file can have: the last
 * byte (at maxfilesize - 1) can be written, sparse, and SETATTR can set
 * the size to it; a byte at maxfilesize, or a size past it, is FBIG.
 */
static void test_max_file_size(void **state)
{
	struct fx *f = *state;
	struct th_fh h;
	struct th_fattr a;

	call(P_FSINFO, &f->root);
	assert_int_equal(run(f->fd), 0);
	assert_true(rd_post_attr(&rp.r, NULL));
	rd_skip(&rp.r, 7 * 4);			/* rtmax ... dtpref */
	uint64_t max = rd_u64(&rp.r);
	assert_false(rp.r.bad);
	assert_true(max >= 1ull << 40);

	assert_int_equal(create(f, &f->root, "last", 0, 0, &h), 0);
	assert_int_equal(write_byte(f, &h, max - 1, 1), 0);
	assert_int_equal(getattr(f, &h, &a), 0);
	assert_int_equal(a.size, max);
	assert_int_equal(write_byte(f, &h, max, 1), 27);	/* FBIG */
	assert_int_equal(write_byte(f, &h, max - 1, 2), 27);
	assert_int_equal(getattr(f, &h, &a), 0);
	assert_int_equal(a.size, max);
	call(P_READ, &h);
	xb_u64(&x, max - 1);
	xb_u32(&x, 100);
	assert_int_equal(run(f->fd), 0);
	rd_post_attr(&rp.r, NULL);
	assert_int_equal(rd_u32(&rp.r), 1);
	assert_int_equal(rd_u32(&rp.r), 1);		/* eof */
	uint32_t n;
	const uint8_t *p = rd_opaque(&rp.r, &n);
	assert_int_equal(n, 1);
	assert_int_equal(p[0], 'z');

	assert_int_equal(setattr_size(f, &h, 0), 0);
	assert_int_equal(setattr_size(f, &h, max), 0);
	assert_int_equal(getattr(f, &h, &a), 0);
	assert_int_equal(a.size, max);
	assert_int_equal(setattr_size(f, &h, max + 1), 27);
	assert_int_equal(getattr(f, &h, &a), 0);
	assert_int_equal(a.size, max);
	assert_int_equal(setattr_size(f, &h, 0), 0);
}

/* FSSTAT, FSINFO or PATHCONF of fh: the status; whether attributes
 * followed in *attrs.  A failure's reply ends with its post_op_attr. */
static uint32_t fs_proc(struct fx *f, uint32_t proc, const struct th_fh *fh,
    bool *attrs)
{
	call(proc, fh);
	uint32_t st = run(f->fd);
	*attrs = rd_post_attr(&rp.r, NULL);
	assert_false(rp.r.bad);
	if (st != 0)
		assert_int_equal(rp.r.off, rp.r.n);
	return st;
}

/*
 * FSSTAT, FSINFO and PATHCONF may carry the object's attributes when they
 * fail (RFC 1813 resfail).  They do whenever the handle resolved, the
 * caller was admitted and the attributes can be read; the only failures
 * reachable are of the handle itself (BADHANDLE, STALE: nothing to read),
 * and of the export rule (test_exports: a refused client learns nothing).
 * .snapshot and an object in a snapshot answer OK with attributes; once
 * the snapshot is deleted its objects are STALE, without attributes.
 */
static void test_fs_procs_failures(void **state)
{
	struct fx *f = *state;
	static const uint32_t procs[] = { P_FSSTAT, P_FSINFO, P_PATHCONF };
	struct th_fh h, bad, sd, sn, sf;
	uint64_t id;
	bool attrs;

	assert_int_equal(create(f, &f->root, "kept", 0, 0, &h), 0);
	assert_int_equal(wafl_snap_create(f->t.fs->v, "s", &id), 0);
	assert_int_equal(th_lookup(f->fd, &f->root, ".snapshot", &sd, NULL), 0);
	assert_int_equal(th_lookup(f->fd, &sd, "s", &sn, NULL), 0);
	assert_int_equal(th_lookup(f->fd, &sn, "kept", &sf, NULL), 0);
	bad = f->root;
	bad.b[bad.len - 1] ^= 1;
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(fs_proc(f, procs[i], &sd, &attrs), 0);
		assert_true(attrs);
		assert_int_equal(fs_proc(f, procs[i], &sf, &attrs), 0);
		assert_true(attrs);
		assert_int_equal(fs_proc(f, procs[i], &bad, &attrs), 10001);
		assert_false(attrs);
	}
	assert_int_equal(wafl_snap_delete(f->t.fs->v, "s"), 0);
	call(P_REMOVE, &f->root);
	xb_str(&x, "kept");
	assert_int_equal(run(f->fd), 0);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(fs_proc(f, procs[i], &sf, &attrs), 70);
		assert_false(attrs);
		assert_int_equal(fs_proc(f, procs[i], &h, &attrs), 70);
		assert_false(attrs);
		assert_int_equal(fs_proc(f, procs[i], &sd, &attrs), 0);
		assert_true(attrs);
	}
}

static void test_create_modes(void **state)
{
	struct fx *f = *state;
	struct th_fh h1, h2;

	assert_int_equal(create(f, &f->root, "g", 1, 0, &h1), 0);
	assert_int_equal(create(f, &f->root, "g", 1, 0, NULL), 17);
	assert_int_equal(create(f, &f->root, "g", 0, 0, &h2), 0);
	assert_memory_equal(h1.b, h2.b, h1.len);
	/* Exclusive: same verifier again succeeds with the same file. */
	assert_int_equal(create(f, &f->root, "x", 2, 0x1122334455667788ull,
	    &h1), 0);
	assert_int_equal(create(f, &f->root, "x", 2, 0x1122334455667788ull,
	    &h2), 0);
	assert_memory_equal(h1.b, h2.b, h1.len);
	assert_int_equal(create(f, &f->root, "x", 2, 0x99, NULL), 17);
	/* The client's SETATTR that follows ends the creation: the same
	 * verifier is EXIST from then on (a CREATE that late is not a
	 * retransmission of one answered before the SETATTR was sent). */
	call(P_SETATTR, &h1);
	sattr_mode(0640);
	xb_u32(&x, 0);
	assert_int_equal(run(f->fd), 0);
	assert_int_equal(create(f, &f->root, "x", 2, 0x1122334455667788ull,
	    NULL), 17);
	/* So does a WRITE. */
	assert_int_equal(create(f, &f->root, "x2", 2, 0x77, &h1), 0);
	call(P_WRITE, &h1);
	xb_u64(&x, 0);
	xb_u32(&x, 1);
	xb_u32(&x, 2);
	xb_opaque(&x, "w", 1);
	assert_int_equal(run(f->fd), 0);
	assert_int_equal(create(f, &f->root, "x2", 2, 0x77, NULL), 17);
	/* Names. */
	static char longname[300];
	memset(longname, 'l', 256);
	assert_int_equal(create(f, &f->root, longname, 0, 0, NULL), 63);
	assert_int_equal(create(f, &f->root, "a/b", 0, 0, NULL), 13);
	assert_int_equal(create(f, &f->root, "", 0, 0, NULL), 13);
	/* In a non-directory. */
	call(P_CREATE, &h1);
	xb_str(&x, "y");
	xb_u32(&x, 0);
	sattr_none();
	assert_int_equal(run(f->fd), 20);		/* NOTDIR */
}

static void test_write_read_commit(void **state)
{
	struct fx *f = *state;
	struct th_fh h;
	uint8_t verf1[8], verf2[8];

	assert_int_equal(create(f, &f->root, "data", 0, 0, &h), 0);
	call(P_WRITE, &h);
	xb_u64(&x, 0);
	xb_u32(&x, 11);
	xb_u32(&x, 0);				/* UNSTABLE */
	xb_opaque(&x, "hello world", 11);
	assert_int_equal(run(f->fd), 0);
	bool pre, post;
	rd_wcc(&rp.r, &pre, &post);
	assert_true(pre && post);
	assert_int_equal(rd_u32(&rp.r), 11);
	assert_true(rd_u32(&rp.r) <= 2);
	memcpy(verf1, rp.r.p + rp.r.off, 8);

	call(P_COMMIT, &h);
	xb_u64(&x, 0);
	xb_u32(&x, 0);
	assert_int_equal(run(f->fd), 0);
	rd_wcc(&rp.r, NULL, &post);
	assert_true(post);
	memcpy(verf2, rp.r.p + rp.r.off, 8);
	assert_memory_equal(verf1, verf2, 8);

	call(P_WRITE, &h);
	xb_u64(&x, 11);
	xb_u32(&x, 1);
	xb_u32(&x, 2);				/* FILE_SYNC */
	xb_opaque(&x, "!", 1);
	assert_int_equal(run(f->fd), 0);
	rd_wcc(&rp.r, NULL, NULL);
	rd_u32(&rp.r);
	assert_int_equal(rd_u32(&rp.r), 2);

	/* count larger than the data: INVAL. */
	call(P_WRITE, &h);
	xb_u64(&x, 0);
	xb_u32(&x, 5);
	xb_u32(&x, 0);
	xb_opaque(&x, "ab", 2);
	assert_int_equal(run(f->fd), 22);

	call(P_READ, &h);
	xb_u64(&x, 0);
	xb_u32(&x, 100);
	assert_int_equal(run(f->fd), 0);
	struct th_fattr a;
	assert_true(rd_post_attr(&rp.r, &a));
	assert_int_equal(a.size, 12);
	assert_int_equal(rd_u32(&rp.r), 12);
	assert_int_equal(rd_u32(&rp.r), 1);		/* eof */
	uint32_t n;
	const uint8_t *p = rd_opaque(&rp.r, &n);
	assert_int_equal(n, 12);
	assert_memory_equal(p, "hello world!", 12);

	call(P_READ, &h);				/* past EOF */
	xb_u64(&x, 1000);
	xb_u32(&x, 100);
	assert_int_equal(run(f->fd), 0);
	rd_post_attr(&rp.r, NULL);
	assert_int_equal(rd_u32(&rp.r), 0);
	assert_int_equal(rd_u32(&rp.r), 1);

	call(P_READ, &f->root);				/* a directory */
	xb_u64(&x, 0);
	xb_u32(&x, 100);
	assert_int_equal(run(f->fd), 21);

	/* The same over UDP. */
	int u = th_udp();
	call(P_READ, &h);
	xb_u64(&x, 6);
	xb_u32(&x, 1 << 20);			/* clamped to 32 KiB */
	th_rpc_udp(u, f->t.nfs_port, &x, &rp);
	assert_int_equal(rd_u32(&rp.r), 0);
	rd_post_attr(&rp.r, NULL);
	assert_int_equal(rd_u32(&rp.r), 6);
	close(u);
}

/*
 * A client executes a program by reading it: whoever may execute a file
 * may READ it (mode 0711, as Linux knfsd allows), though ACCESS still
 * reports READ from the read bits.  Without x or r: ACCES.
 */
static void test_read_execute_only(void **state)
{
	struct fx *f = *state;
	struct th_fh h;

	assert_int_equal(create(f, &f->root, "prog", 0, 0, &h), 0);
	call(P_WRITE, &h);
	xb_u64(&x, 0);
	xb_u32(&x, 4);
	xb_u32(&x, 2);
	xb_opaque(&x, "\177ELF", 4);
	assert_int_equal(run(f->fd), 0);
	static const struct { uint32_t mode, st; } cases[] = {
		{ 0711, 0 }, { 0744, 0 }, { 0700, 13 },
	};
	for (size_t i = 0; i < 3; i++) {
		call(P_SETATTR, &h);
		sattr_mode(cases[i].mode);
		xb_u32(&x, 0);
		assert_int_equal(run(f->fd), 0);
		call_as(P_READ, &h, 1000, 1000);
		xb_u64(&x, 0);
		xb_u32(&x, 4);
		assert_int_equal(run(f->fd), cases[i].st);
		if (cases[i].st == 0) {
			rd_post_attr(&rp.r, NULL);
			assert_int_equal(rd_u32(&rp.r), 4);
		}
	}
	call(P_SETATTR, &h);
	sattr_mode(0711);
	xb_u32(&x, 0);
	assert_int_equal(run(f->fd), 0);
	call_as(P_ACCESS, &h, 1000, 1000);
	xb_u32(&x, 0x3f);
	assert_int_equal(run(f->fd), 0);
	rd_post_attr(&rp.r, NULL);
	assert_int_equal(rd_u32(&rp.r), 0x20);		/* EXECUTE only */
	/* The same file in a snapshot. */
	struct th_fh sd, sn, sp;
	uint64_t id;
	assert_int_equal(wafl_snap_create(f->t.fs->v, "s", &id), 0);
	assert_int_equal(th_lookup(f->fd, &f->root, ".snapshot", &sd, NULL), 0);
	assert_int_equal(th_lookup(f->fd, &sd, "s", &sn, NULL), 0);
	assert_int_equal(th_lookup(f->fd, &sn, "prog", &sp, NULL), 0);
	call_as(P_READ, &sp, 1000, 1000);
	xb_u64(&x, 0);
	xb_u32(&x, 4);
	assert_int_equal(run(f->fd), 0);
}

static void test_setattr_guard(void **state)
{
	struct fx *f = *state;
	struct th_fh h;
	struct th_fattr a;

	assert_int_equal(create(f, &f->root, "sa", 0, 0, &h), 0);
	assert_int_equal(getattr(f, &h, &a), 0);
	/* size 3 with a wrong guard: NOT_SYNC. */
	call(P_SETATTR, &h);
	xb_u32(&x, 0);
	xb_u32(&x, 0);
	xb_u32(&x, 0);
	xb_u32(&x, 1);
	xb_u64(&x, 3);
	xb_u32(&x, 0);
	xb_u32(&x, 0);
	xb_u32(&x, 1);
	xb_u32(&x, a.ctime_s + 1);
	xb_u32(&x, a.ctime_ns);
	assert_int_equal(run(f->fd), 10002);
	/* The right guard. */
	x.n -= 8;
	xb_u32(&x, a.ctime_s);
	xb_u32(&x, a.ctime_ns);
	((uint8_t *)x.b)[3] ^= 0x55;			/* new xid */
	assert_int_equal(run(f->fd), 0);
	bool pre, post;
	rd_wcc(&rp.r, &pre, &post);
	assert_true(pre && post);
	assert_int_equal(getattr(f, &h, &a), 0);
	assert_int_equal(a.size, 3);
	/* Bad nanoseconds: INVAL. */
	call(P_SETATTR, &h);
	for (int i = 0; i < 4; i++)
		xb_u32(&x, 0);
	xb_u32(&x, 2);
	xb_u32(&x, 1);
	xb_u32(&x, 2000000000u);
	xb_u32(&x, 0);
	xb_u32(&x, 0);
	assert_int_equal(run(f->fd), 22);
}

/* MKDIR name in dir with mode (as root); the new handle into out. */
static void mkdir_mode(struct fx *f, const struct th_fh *dir,
    const char *name, uint32_t mode, struct th_fh *out)
{
	call(P_MKDIR, dir);
	xb_str(&x, name);
	sattr_mode(mode);
	assert_int_equal(run(f->fd), 0);
	/* The mode asked for, whatever the umask-free default. */
	assert_int_equal(th_lookup(f->fd, dir, name, out, NULL), 0);
	call(P_SETATTR, out);
	sattr_mode(mode);
	xb_u32(&x, 0);
	assert_int_equal(run(f->fd), 0);
}

/*
 * A status the RFC does not list for the procedure is not reported as a
 * hard error when it is a refusal (PERM -> ACCES) or an argument that does
 * not apply (ISDIR, FBIG -> INVAL); the wcc data still follows.
 */
static void test_status_mapping(void **state)
{
	struct fx *f = *state;
	struct th_fh d;

	mkdir_mode(f, &f->root, "pub", 0777, &d);
	/* CREATE giving the file to another owner, as an ordinary user. */
	call_as(P_CREATE, &d, 1000, 1000);
	xb_str(&x, "given");
	xb_u32(&x, 0);
	xb_u32(&x, 0);				/* mode */
	xb_u32(&x, 1);				/* uid 0 */
	xb_u32(&x, 0);
	for (int i = 0; i < 4; i++)
		xb_u32(&x, 0);
	assert_int_equal(run(f->fd), 13);		/* ACCES, not IO */
	bool pre, post;
	rd_wcc(&rp.r, &pre, &post);
	assert_true(post);
	assert_false(rp.r.bad);
	/* CREATE with a size past the largest file. */
	call(P_CREATE, &d);
	xb_str(&x, "huge");
	xb_u32(&x, 0);
	for (int i = 0; i < 3; i++)
		xb_u32(&x, 0);
	xb_u32(&x, 1);
	xb_u64(&x, 1ull << 62);
	xb_u32(&x, 0);
	xb_u32(&x, 0);
	assert_int_equal(run(f->fd), 22);		/* INVAL, not IO */
	/* SETATTR of a directory's size. */
	call(P_SETATTR, &d);
	for (int i = 0; i < 3; i++)
		xb_u32(&x, 0);
	xb_u32(&x, 1);
	xb_u64(&x, 0);
	xb_u32(&x, 0);
	xb_u32(&x, 0);
	xb_u32(&x, 0);				/* no guard */
	assert_int_equal(run(f->fd), 22);		/* INVAL, not IO */
	rd_wcc(&rp.r, &pre, &post);
	assert_true(pre && post);
}

static uint32_t mknod_as(struct fx *f, const struct th_fh *dir,
    const char *name, uint32_t type, int uid)
{
	call_as(P_MKNOD, dir, uid, uid);
	xb_str(&x, name);
	xb_u32(&x, type);
	sattr_mode(0666);
	if (type == 3 || type == 4) {		/* NF3BLK, NF3CHR */
		xb_u32(&x, 1);
		xb_u32(&x, 1);
	}
	uint32_t st = run(f->fd);
	if (st != 0) {
		bool post;
		rd_wcc(&rp.r, NULL, &post);
		assert_true(post);
	}
	return st;
}

/* Device nodes are root's to make: an ordinary user (or a squashed root)
 * gets ACCES for NF3CHR and NF3BLK, and may make fifos and sockets. */
static void test_mknod_devices_need_root(void **state)
{
	struct fx *f = *state;
	struct th_fh d;

	mkdir_mode(f, &f->root, "dev", 0777, &d);
	assert_int_equal(mknod_as(f, &d, "mem", 4, 1000), 13);
	assert_int_equal(mknod_as(f, &d, "disk", 3, 1000), 13);
	assert_int_equal(th_lookup(f->fd, &d, "mem", NULL, NULL), 2);
	assert_int_equal(mknod_as(f, &d, "fifo", 7, 1000), 0);
	assert_int_equal(mknod_as(f, &d, "sock", 6, 1000), 0);
	assert_int_equal(mknod_as(f, &d, "mem", 4, 0), 0);
}

static uint32_t create_as(struct fx *f, const struct th_fh *dir,
    const char *name, int uid)
{
	call_as(P_CREATE, dir, uid, uid);
	xb_str(&x, name);
	xb_u32(&x, 1);				/* GUARDED */
	sattr_mode(0666);
	return run(f->fd);
}

static uint32_t rename_as(struct fx *f, const struct th_fh *dir,
    const char *from, const char *to, int uid)
{
	call_as(P_RENAME, dir, uid, uid);
	xb_str(&x, from);
	xb_fh(&x, dir);
	xb_str(&x, to);
	uint32_t st = run(f->fd);
	bool pre, post;
	rd_wcc(&rp.r, &pre, &post);
	assert_true(pre && post);
	rd_wcc(&rp.r, &pre, &post);
	assert_true(pre && post);
	return st;
}

/* A sticky directory (mode 01777, as /tmp): everyone may create in it,
 * but only the owner of an entry (or of the directory, or root) removes,
 * renames or replaces it. */
static void test_sticky_dir(void **state)
{
	struct fx *f = *state;
	struct th_fh d;

	mkdir_mode(f, &f->root, "tmp", 01777, &d);
	assert_int_equal(create_as(f, &d, "a", 1000), 0);
	assert_int_equal(create_as(f, &d, "b", 1001), 0);
	call_as(P_MKDIR, &d, 1000, 1000);
	xb_str(&x, "sub");
	sattr_mode(0777);
	assert_int_equal(run(f->fd), 0);

	/* Another user: refused, and nothing changes. */
	call_as(P_REMOVE, &d, 1001, 1001);
	xb_str(&x, "a");
	assert_int_equal(run(f->fd), 1);		/* PERM */
	call_as(P_RMDIR, &d, 1001, 1001);
	xb_str(&x, "sub");
	assert_int_equal(run(f->fd), 13);
	assert_int_equal(rename_as(f, &d, "a", "mine", 1001), 13);
	assert_int_equal(rename_as(f, &d, "b", "a", 1001), 13);
	assert_int_equal(th_lookup(f->fd, &d, "a", NULL, NULL), 0);
	assert_int_equal(th_lookup(f->fd, &d, "b", NULL, NULL), 0);
	assert_int_equal(th_lookup(f->fd, &d, "sub", NULL, NULL), 0);

	/* Owners and root may. */
	assert_int_equal(rename_as(f, &d, "a", "a2", 1000), 0);
	assert_int_equal(rename_as(f, &d, "b", "b2", 0), 0);
	call_as(P_REMOVE, &d, 1000, 1000);
	xb_str(&x, "a2");
	assert_int_equal(run(f->fd), 0);
	call_as(P_RMDIR, &d, 1000, 1000);
	xb_str(&x, "sub");
	assert_int_equal(run(f->fd), 0);

	/* Without the sticky bit the directory's write access is enough. */
	call(P_SETATTR, &d);
	sattr_mode(0777);
	xb_u32(&x, 0);
	assert_int_equal(run(f->fd), 0);
	call_as(P_REMOVE, &d, 1000, 1000);
	xb_str(&x, "b2");
	assert_int_equal(run(f->fd), 0);
}

/*
 * A setgid directory gives its group to the files made in it; a file made
 * set-group-ID by someone outside that group loses the bit (else anyone
 * with write access there could make a program running as the group).
 */
static void test_setgid_dir_create(void **state)
{
	struct fx *f = *state;
	struct th_fh d, h;
	struct th_fattr a;

	mkdir_mode(f, &f->root, "grp", 02777, &d);
	call(P_SETATTR, &d);				/* group 50 */
	for (int i = 0; i < 2; i++)
		xb_u32(&x, 0);
	xb_u32(&x, 1);
	xb_u32(&x, 50);
	for (int i = 0; i < 3; i++)
		xb_u32(&x, 0);
	xb_u32(&x, 0);
	assert_int_equal(run(f->fd), 0);

	static const struct { const char *name; int gid; uint32_t mode; }
	    cases[] = {
		{ "outsider", 1000, 0755 },	/* not in group 50 */
		{ "member", 50, 02755 },
	};
	for (size_t i = 0; i < 2; i++) {
		call_as(P_CREATE, &d, 1000, cases[i].gid);
		xb_str(&x, cases[i].name);
		xb_u32(&x, 1);
		sattr_mode(02755);
		assert_int_equal(run(f->fd), 0);
		assert_int_equal(th_lookup(f->fd, &d, cases[i].name, &h, &a),
		    0);
		assert_int_equal(getattr(f, &h, &a), 0);
		assert_int_equal(a.gid, 50);
		assert_int_equal(a.mode, cases[i].mode);
	}
	/* MKNOD too; a directory keeps the bit (it is inherited). */
	call_as(P_MKNOD, &d, 1000, 1000);
	xb_str(&x, "fifo");
	xb_u32(&x, 7);
	sattr_mode(02666);
	assert_int_equal(run(f->fd), 0);
	assert_int_equal(th_lookup(f->fd, &d, "fifo", &h, &a), 0);
	assert_int_equal(getattr(f, &h, &a), 0);
	assert_int_equal(a.mode, 0666);
	call_as(P_MKDIR, &d, 1000, 1000);
	xb_str(&x, "sub");
	sattr_mode(0755);
	assert_int_equal(run(f->fd), 0);
	assert_int_equal(th_lookup(f->fd, &d, "sub", &h, &a), 0);
	assert_int_equal(getattr(f, &h, &a), 0);
	assert_int_equal(a.mode, 02755);
}

/* SETATTR of o as root: mode, owner 1000:1000. */
static void setid_file(struct fx *f, const char *name, uint32_t mode,
    struct th_fh *h)
{
	assert_int_equal(create(f, &f->root, name, 0, 0, h), 0);
	call(P_SETATTR, h);
	xb_u32(&x, 1);
	xb_u32(&x, mode);
	xb_u32(&x, 1);
	xb_u32(&x, 1000);
	xb_u32(&x, 1);
	xb_u32(&x, 1000);
	for (int i = 0; i < 3; i++)
		xb_u32(&x, 0);
	xb_u32(&x, 0);				/* no guard */
	assert_int_equal(run(f->fd), 0);
}

/* A WRITE of "x" at 0 as uid (FILE_SYNC); its status. */
static uint32_t write_as(struct fx *f, const struct th_fh *h, int uid)
{
	call_as(P_WRITE, h, uid, uid);
	xb_u64(&x, 0);
	xb_u32(&x, 1);
	xb_u32(&x, 2);				/* FILE_SYNC */
	xb_opaque(&x, "x", 1);
	return run(f->fd);
}

/*
 * A change of a set-id file's contents by anyone but root takes its
 * set-user-ID bit away, and its set-group-ID bit when group execute is
 * on (as Linux does for a writer without CAP_FSETID): else whoever may
 * write a set-id program could change it and keep its privilege.  The
 * owner's writes and truncations count; root's do not; set-group-ID
 * without group execute (a mandatory-locking mark) stays.
 */
static void test_write_kills_setid(void **state)
{
	struct fx *f = *state;
	static const struct { const char *name; uint32_t mode; int uid;
	    uint32_t after; } cases[] = {
		{ "suid-owner", 04755, 1000, 0755 },
		{ "suid-other", 04777, 1001, 0777 },
		{ "sgid-x", 02775, 1000, 0775 },
		{ "both", 06777, 1001, 0777 },
		{ "sgid-nox", 02664, 1000, 02664 },
		{ "suid-root", 04755, 0, 04755 },
	};
	struct th_fh h;
	struct th_fattr a;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		setid_file(f, cases[i].name, cases[i].mode, &h);
		assert_int_equal(write_as(f, &h, cases[i].uid), 0);
		assert_int_equal(getattr(f, &h, &a), 0);
		if (a.mode != cases[i].after)
			fail_msg("%s: mode %o after a write by %d, want %o",
			    cases[i].name, a.mode, cases[i].uid,
			    cases[i].after);
		assert_int_equal(a.size, 1);
	}
	/* A truncation by the owner. */
	setid_file(f, "trunc", 04755, &h);
	call_as(P_SETATTR, &h, 1000, 1000);
	for (int i = 0; i < 3; i++)
		xb_u32(&x, 0);
	xb_u32(&x, 1);
	xb_u64(&x, 0);
	for (int i = 0; i < 2; i++)
		xb_u32(&x, 0);
	xb_u32(&x, 0);
	assert_int_equal(run(f->fd), 0);
	assert_int_equal(getattr(f, &h, &a), 0);
	assert_int_equal(a.mode, 0755);
	/* An UNCHECKED CREATE with a size over the file (open with O_TRUNC)
	 * by its owner: a truncation too. */
	struct th_fh d;
	mkdir_mode(f, &f->root, "open-trunc", 0777, &d);
	assert_int_equal(create(f, &d, "creat-trunc", 0, 0, &h), 0);
	call(P_SETATTR, &h);
	xb_u32(&x, 1);
	xb_u32(&x, 04755);
	for (int i = 0; i < 2; i++) {
		xb_u32(&x, 1);
		xb_u32(&x, 1000);
	}
	for (int i = 0; i < 4; i++)
		xb_u32(&x, 0);
	assert_int_equal(run(f->fd), 0);
	call_as(P_CREATE, &d, 1000, 1000);
	xb_str(&x, "creat-trunc");
	xb_u32(&x, 0);				/* UNCHECKED */
	for (int i = 0; i < 3; i++)
		xb_u32(&x, 0);
	xb_u32(&x, 1);				/* size 0 */
	xb_u64(&x, 0);
	for (int i = 0; i < 2; i++)
		xb_u32(&x, 0);
	assert_int_equal(run(f->fd), 0);
	assert_int_equal(getattr(f, &h, &a), 0);
	assert_int_equal(a.mode, 0755);
}

static void readdirplus_search(struct fx *f, const struct th_fh *d);

/*
 * A directory its caller may read but not search (r without x) lists its
 * names, but READDIRPLUS gives no handle or attributes for them: the
 * caller could not LOOKUP them, and a handle would reach the files anyway.
 */
static void test_readdirplus_needs_search(void **state)
{
	struct fx *f = *state;
	struct th_fh d;

	mkdir_mode(f, &f->root, "locked", 0744, &d);
	assert_int_equal(create(f, &d, "inside", 0, 0, NULL), 0);
	call_as(P_LOOKUP, &d, 1000, 1000);
	xb_str(&x, "inside");
	assert_int_equal(run(f->fd), 13);
	readdirplus_search(f, &d);

	/* The same directory in a snapshot. */
	struct th_fh sd, sn, sl;
	uint64_t id;
	assert_int_equal(wafl_snap_create(f->t.fs->v, "s", &id), 0);
	assert_int_equal(th_lookup(f->fd, &f->root, ".snapshot", &sd, NULL), 0);
	assert_int_equal(th_lookup(f->fd, &sd, "s", &sn, NULL), 0);
	assert_int_equal(th_lookup(f->fd, &sn, "locked", &sl, NULL), 0);
	readdirplus_search(f, &sl);
}

/* READDIRPLUS of d as uid 1000 and as root: "inside" listed, with handle
 * and attributes for root only. */
static void readdirplus_search(struct fx *f, const struct th_fh *d)
{
	for (int uid = 1000; uid >= 0; uid -= 1000) {
		call_as(P_READDIRPLUS, d, uid, uid);
		xb_u64(&x, 0);
		xb_u64(&x, 0);
		xb_u32(&x, 8192);
		xb_u32(&x, 32768);
		assert_int_equal(run(f->fd), 0);
		rd_post_attr(&rp.r, NULL);
		rd_skip(&rp.r, 8);
		bool seen = false;
		while (rd_u32(&rp.r) == 1 && !rp.r.bad) {
			uint32_t len;
			rd_u64(&rp.r);
			const uint8_t *nm = rd_opaque(&rp.r, &len);
			rd_u64(&rp.r);
			bool attrs = rd_post_attr(&rp.r, NULL);
			bool handle = rd_u32(&rp.r) != 0;
			if (handle) {
				uint32_t hl;
				rd_opaque(&rp.r, &hl);
			}
			if (len == 6 && memcmp(nm, "inside", 6) == 0) {
				seen = true;
				/* root searches; uid 1000 may not. */
				assert_int_equal(attrs, uid == 0);
				assert_int_equal(handle, uid == 0);
			}
		}
		assert_false(rp.r.bad);
		assert_true(seen);
	}
}

/* Send x, expect GARBAGE_ARGS. */
static void run_garbage(struct fx *f)
{
	th_rpc_tcp(f->fd, &x, &rp);
	assert_int_equal(rp.stat, 4);
}

/*
 * A name (or a link target) holding a NUL is refused as it arrives
 * (GARBAGE_ARGS), never cut at the NUL: "keep\0x" must not name "keep".
 */
static void test_names_with_nul(void **state)
{
	struct fx *f = *state;
	struct th_fh h, d;
	static const char nul_name[] = "ab\0cd";
	static const char keep_x[] = "keep\0x";

	assert_int_equal(create(f, &f->root, "keep", 0, 0, &h), 0);
	mkdir_mode(f, &f->root, "kd", 0755, &d);

	call(P_CREATE, &f->root);
	xb_opaque(&x, nul_name, 5);
	xb_u32(&x, 0);
	sattr_none();
	run_garbage(f);
	assert_int_equal(th_lookup(f->fd, &f->root, "ab", NULL, NULL), 2);
	call(P_MKDIR, &f->root);
	xb_opaque(&x, nul_name, 5);
	sattr_none();
	run_garbage(f);
	call(P_MKNOD, &f->root);
	xb_opaque(&x, nul_name, 5);
	xb_u32(&x, 7);
	sattr_none();
	run_garbage(f);
	call(P_SYMLINK, &f->root);
	xb_str(&x, "sl");
	sattr_none();
	xb_opaque(&x, nul_name, 5);			/* the target */
	run_garbage(f);
	assert_int_equal(th_lookup(f->fd, &f->root, "sl", NULL, NULL), 2);
	call(P_LOOKUP, &f->root);
	xb_opaque(&x, keep_x, 6);
	run_garbage(f);
	call(P_LINK, &h);
	xb_fh(&x, &f->root);
	xb_opaque(&x, nul_name, 5);
	run_garbage(f);
	call(P_RENAME, &f->root);
	xb_opaque(&x, keep_x, 6);
	xb_fh(&x, &f->root);
	xb_str(&x, "moved");
	run_garbage(f);
	call(P_RENAME, &f->root);
	xb_str(&x, "keep");
	xb_fh(&x, &f->root);
	xb_opaque(&x, nul_name, 5);
	run_garbage(f);
	call(P_REMOVE, &f->root);
	xb_opaque(&x, keep_x, 6);
	run_garbage(f);
	call(P_RMDIR, &f->root);
	xb_opaque(&x, "kd\0", 3);
	run_garbage(f);
	/* Nothing changed. */
	assert_int_equal(th_lookup(f->fd, &f->root, "keep", NULL, NULL), 0);
	assert_int_equal(th_lookup(f->fd, &f->root, "kd", NULL, NULL), 0);
	assert_int_equal(th_lookup(f->fd, &f->root, "moved", NULL, NULL), 2);
}

/* RENAME of a directory to another parent changes its "..": the caller
 * needs write permission on the directory itself, not only on both
 * parents (rename(2)).  Within one parent it does not. */
static void test_rename_dir_needs_write(void **state)
{
	struct fx *f = *state;
	struct th_fh pub, a, b;

	mkdir_mode(f, &f->root, "pub", 0777, &pub);
	mkdir_mode(f, &pub, "a", 0777, &a);
	mkdir_mode(f, &pub, "b", 0755, &b);		/* root's */
	call_as(P_RENAME, &pub, 1000, 1000);
	xb_str(&x, "b");
	xb_fh(&x, &a);
	xb_str(&x, "b");
	assert_int_equal(run(f->fd), 13);
	bool pre, post;
	rd_wcc(&rp.r, &pre, &post);
	assert_true(pre && post);
	assert_int_equal(th_lookup(f->fd, &pub, "b", NULL, NULL), 0);
	assert_int_equal(rename_as(f, &pub, "b", "c", 1000), 0);
	/* The owner may move it. */
	call(P_SETATTR, &b);
	xb_u32(&x, 0);
	xb_u32(&x, 1);
	xb_u32(&x, 1000);
	for (int i = 0; i < 4; i++)
		xb_u32(&x, 0);
	xb_u32(&x, 0);
	assert_int_equal(run(f->fd), 0);
	call_as(P_RENAME, &pub, 1000, 1000);
	xb_str(&x, "c");
	xb_fh(&x, &a);
	xb_str(&x, "c");
	assert_int_equal(run(f->fd), 0);
}

static void test_lookup_access(void **state)
{
	struct fx *f = *state;
	struct th_fh h;
	struct th_fattr a, ra;

	assert_int_equal(getattr(f, &f->root, &ra), 0);
	assert_int_equal(th_lookup(f->fd, &f->root, "nope", NULL, NULL), 2);
	assert_int_equal(th_lookup(f->fd, &f->root, ".", &h, &a), 0);
	assert_int_equal(a.fileid, ra.fileid);
	assert_int_equal(th_lookup(f->fd, &f->root, "..", &h, &a), 0);
	assert_int_equal(a.fileid, ra.fileid);
	static char longname[300];
	memset(longname, 'l', 256);
	assert_int_equal(th_lookup(f->fd, &f->root, longname, NULL, NULL), 63);

	call(P_ACCESS, &f->root);
	xb_u32(&x, 0x3f);
	assert_int_equal(run(f->fd), 0);
	assert_true(rd_post_attr(&rp.r, NULL));
	assert_int_equal(rd_u32(&rp.r) & 0x1f, 0x1f);	/* root, rw */

	/* A directory writable but not searchable: CREATE and REMOVE in it
	 * are refused, so ACCESS grants no MODIFY, EXTEND or DELETE. */
	struct th_fh d;
	mkdir_mode(f, &f->root, "noexec", 0666, &d);
	call_as(P_ACCESS, &d, 1000, 1000);
	xb_u32(&x, 0x3f);
	assert_int_equal(run(f->fd), 0);
	assert_true(rd_post_attr(&rp.r, NULL));
	assert_int_equal(rd_u32(&rp.r), 0x01);		/* READ only */
	call_as(P_CREATE, &d, 1000, 1000);
	xb_str(&x, "f");
	xb_u32(&x, 0);
	sattr_none();
	assert_int_equal(run(f->fd), 13);
	/* Searchable too: all of them. */
	mkdir_mode(f, &f->root, "open", 0777, &d);
	call_as(P_ACCESS, &d, 1000, 1000);
	xb_u32(&x, 0x3f);
	assert_int_equal(run(f->fd), 0);
	assert_true(rd_post_attr(&rp.r, NULL));
	assert_int_equal(rd_u32(&rp.r), 0x1f);
}

static void test_dirs_links_nodes(void **state)
{
	struct fx *f = *state;
	struct th_fh d, h, s;
	struct th_fattr a;

	call(P_MKDIR, &f->root);
	xb_str(&x, "d");
	sattr_mode(0755);
	assert_int_equal(run(f->fd), 0);
	assert_int_equal(th_lookup(f->fd, &f->root, "d", &d, &a), 0);
	assert_int_equal(a.type, 2);
	call(P_MKDIR, &f->root);
	xb_str(&x, "d");
	sattr_none();
	assert_int_equal(run(f->fd), 17);

	assert_int_equal(create(f, &d, "f", 0, 0, &h), 0);
	call(P_RMDIR, &f->root);
	xb_str(&x, "d");
	assert_int_equal(run(f->fd), 66);		/* NOTEMPTY */
	call(P_RMDIR, &d);
	xb_str(&x, ".");
	assert_int_equal(run(f->fd), 22);
	call(P_RMDIR, &d);
	xb_str(&x, "..");
	assert_int_equal(run(f->fd), 17);

	/* SYMLINK / READLINK. */
	call(P_SYMLINK, &f->root);
	xb_str(&x, "sl");
	sattr_none();
	xb_str(&x, "d/f");
	assert_int_equal(run(f->fd), 0);
	assert_int_equal(th_lookup(f->fd, &f->root, "sl", &s, &a), 0);
	assert_int_equal(a.type, 5);
	call(P_READLINK, &s);
	assert_int_equal(run(f->fd), 0);
	rd_post_attr(&rp.r, NULL);
	uint32_t n;
	const uint8_t *p = rd_opaque(&rp.r, &n);
	assert_int_equal(n, 3);
	assert_memory_equal(p, "d/f", 3);
	call(P_READLINK, &h);
	assert_int_equal(run(f->fd), 22);

	/* MKNOD: a fifo works, a regular file is BADTYPE. */
	call(P_MKNOD, &f->root);
	xb_str(&x, "fifo");
	xb_u32(&x, 7);
	sattr_none();
	assert_int_equal(run(f->fd), 0);
	call(P_MKNOD, &f->root);
	xb_str(&x, "chr");
	xb_u32(&x, 4);
	sattr_none();
	xb_u32(&x, 1);
	xb_u32(&x, 3);
	assert_int_equal(run(f->fd), 0);
	call(P_MKNOD, &f->root);
	xb_str(&x, "reg");
	xb_u32(&x, 1);
	assert_int_equal(run(f->fd), 10007);

	/* LINK and RENAME. */
	call(P_LINK, &h);
	xb_fh(&x, &f->root);
	xb_str(&x, "hard");
	assert_int_equal(run(f->fd), 0);
	assert_true(rd_post_attr(&rp.r, &a));
	assert_int_equal(a.nlink, 2);
	call(P_LINK, &d);
	xb_fh(&x, &f->root);
	xb_str(&x, "dirlink");
	assert_int_not_equal(run(f->fd), 0);

	call(P_RENAME, &f->root);			/* no target name */
	xb_str(&x, "hard");
	xb_fh(&x, &d);
	xb_str(&x, "");
	assert_int_equal(run(f->fd), 13);
	call(P_RENAME, &f->root);
	xb_str(&x, "hard");
	xb_fh(&x, &d);
	xb_str(&x, "moved");
	assert_int_equal(run(f->fd), 0);
	bool pre, post;
	rd_wcc(&rp.r, &pre, &post);
	assert_true(pre && post);
	rd_wcc(&rp.r, &pre, &post);
	assert_true(pre && post);
	call(P_RENAME, &f->root);
	xb_str(&x, "hard");
	xb_fh(&x, &d);
	xb_str(&x, "moved");
	assert_int_equal(run(f->fd), 2);

	/* REMOVE, and the removed file's handle goes STALE. */
	call(P_REMOVE, &d);
	xb_str(&x, "moved");
	assert_int_equal(run(f->fd), 0);
	call(P_REMOVE, &d);
	xb_str(&x, "f");
	assert_int_equal(run(f->fd), 0);
	assert_int_equal(getattr(f, &h, &a), 70);
	call(P_REMOVE, &d);
	xb_str(&x, "f");
	assert_int_equal(run(f->fd), 2);
	call(P_RMDIR, &f->root);
	xb_str(&x, "d");
	assert_int_equal(run(f->fd), 0);
}

/* Set the link count of ino in the live volume; returns the old one. */
static uint32_t set_nlink(struct fx *f, uint64_t ino, uint32_t nlink)
{
	struct wafl_vol *v = f->t.fs->v;
	struct wnode *wn;
	uint32_t old;

	pthread_rwlock_rdlock(&v->cp_lock);
	VERIFY0(wnode_get(v, ino, &wn));
	pthread_rwlock_wrlock(&wn->lock);
	old = wn->di.nlink;
	wn->di.nlink = nlink;
	wnode_dirty(wn);
	pthread_rwlock_unlock(&wn->lock);
	wnode_put(wn);
	pthread_rwlock_unlock(&v->cp_lock);
	return old;
}

/*
 * A directory at the link limit takes no more subdirectories.  MKDIR
 * answers NFS3ERR_MLINK, which RFC 1813 lists for RENAME and LINK but not
 * for MKDIR (as Linux knfsd does; EIO would tell the user the disk
 * failed), and a directory moved into it, or a link to a file at the
 * limit, gets MLINK too.  The count is set in the inode, not reached by
 * making 65,000 subdirectories.
 */
static void test_link_limit(void **state)
{
	struct fx *f = *state;
	struct th_fh full, sub, h;
	struct th_fattr a;

	mkdir_mode(f, &f->root, "full", 0755, &full);
	mkdir_mode(f, &f->root, "sub", 0755, &sub);
	assert_int_equal(create(f, &f->root, "file", 0, 0, &h), 0);
	assert_int_equal(getattr(f, &full, &a), 0);
	uint32_t dir_links = set_nlink(f, a.fileid, WAFL_LINK_MAX);
	assert_int_equal(getattr(f, &full, &a), 0);
	assert_int_equal(a.nlink, WAFL_LINK_MAX);

	call(P_MKDIR, &full);
	xb_str(&x, "one-more");
	sattr_none();
	assert_int_equal(run(f->fd), 31);		/* MLINK, not IO */
	bool pre, post;
	rd_wcc(&rp.r, &pre, &post);
	assert_true(post);
	assert_false(rp.r.bad);
	assert_int_equal(th_lookup(f->fd, &full, "one-more", NULL, NULL), 2);

	call(P_RENAME, &f->root);			/* a directory in */
	xb_str(&x, "sub");
	xb_fh(&x, &full);
	xb_str(&x, "sub");
	assert_int_equal(run(f->fd), 31);
	rd_wcc(&rp.r, &pre, &post);
	assert_true(post);
	rd_wcc(&rp.r, &pre, &post);
	assert_true(post);
	assert_false(rp.r.bad);
	assert_int_equal(th_lookup(f->fd, &f->root, "sub", NULL, NULL), 0);
	/* A file may still go in (it adds no link to the directory). */
	call(P_RENAME, &f->root);
	xb_str(&x, "file");
	xb_fh(&x, &full);
	xb_str(&x, "file");
	assert_int_equal(run(f->fd), 0);

	assert_int_equal(getattr(f, &h, &a), 0);
	uint32_t file_links = set_nlink(f, a.fileid, WAFL_LINK_MAX);
	call(P_LINK, &h);
	xb_fh(&x, &f->root);
	xb_str(&x, "hard");
	assert_int_equal(run(f->fd), 31);
	assert_true(rd_post_attr(&rp.r, NULL));
	assert_false(rp.r.bad);
	assert_int_equal(th_lookup(f->fd, &f->root, "hard", NULL, NULL), 2);

	/* Below the limit again, both work. */
	assert_int_equal(getattr(f, &h, &a), 0);
	set_nlink(f, a.fileid, file_links);
	assert_int_equal(getattr(f, &full, &a), 0);
	set_nlink(f, a.fileid, dir_links);
	call(P_MKDIR, &full);
	xb_str(&x, "one-more");
	sattr_none();
	assert_int_equal(run(f->fd), 0);
	call(P_LINK, &h);
	xb_fh(&x, &f->root);
	xb_str(&x, "hard");
	assert_int_equal(run(f->fd), 0);
}

static void test_bad_handles(void **state)
{
	struct fx *f = *state;
	struct th_fh h = f->root;
	struct th_fattr a;

	h.b[h.len - 1] ^= 1;				/* MAC */
	assert_int_equal(getattr(f, &h, &a), 10001);
	h = f->root;
	h.b[16] ^= 1;					/* fileid */
	assert_int_equal(getattr(f, &h, &a), 10001);
	h = f->root;
	h.len -= 1;					/* length */
	assert_int_equal(getattr(f, &h, &a), 10001);
	h.len = 0;
	assert_int_equal(getattr(f, &h, &a), 10001);
	memset(h.b, 0, 64);
	h.len = 64;
	assert_int_equal(getattr(f, &h, &a), 10001);
	/* Modifying procedures too. */
	h = f->root;
	h.b[30] ^= 0x80;
	call(P_CREATE, &h);
	xb_str(&x, "z");
	xb_u32(&x, 0);
	sattr_none();
	assert_int_equal(run(f->fd), 10001);
}

/*
 * Handles stay valid across a server restart; another key refuses them.
 * The MAC is HMAC-SHA256(key, bytes 0..35), first 16 bytes (docs/nfsd.md):
 * handles given out by any build must keep working.
 */
static void test_handles_across_restart(void **state)
{
	struct fx *f = *state;
	struct th_fh h;
	struct th_fattr a;
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	assert_int_equal(create(f, &f->root, "keep", 0, 0, &h), 0);
	assert_int_equal(h.len, 52);
	assert_non_null(HMAC(EVP_sha256(), f->t.exp[0].fh_key, 32, h.b, 36,
	    mac, &maclen));
	assert_memory_equal(h.b + 36, mac, 16);
	close(f->fd);
	nfsd_free(f->t.srv);
	th_serve(&f->t);
	f->fd = th_tcp(f->t.nfs_port, 0);
	assert_int_equal(getattr(f, &h, &a), 0);
	assert_int_equal(a.type, 1);

	close(f->fd);
	nfsd_free(f->t.srv);
	f->t.exp[0].fh_key[0] ^= 1;
	th_serve(&f->t);
	f->fd = th_tcp(f->t.nfs_port, 0);
	assert_int_equal(getattr(f, &h, &a), 10001);
	close(f->fd);
	nfsd_free(f->t.srv);
	f->t.exp[0].fh_key[0] ^= 1;
	th_serve(&f->t);
	f->fd = th_tcp(f->t.mnt_port, 0);
	assert_int_equal(getattr(f, &h, &a), 0);
}

/* READDIR / READDIRPLUS: byte limits honoured, cookies continue, every
 * name exactly once, eof on the last reply only. */
static void list_dir(struct fx *f, const struct th_fh *dir, bool plus,
    uint32_t count, uint32_t dircount, int nfiles)
{
	uint64_t cookie = 0;
	uint8_t verf[8] = { 0 };
	static uint8_t seen[4096];
	int found = 0, replies = 0;
	bool eof = false;

	memset(seen, 0, sizeof(seen));
	if (getenv("TH_DEBUG"))
		fprintf(stderr, "LIST plus=%d count=%u dircount=%u\n", plus,
		    count, dircount);
	while (!eof && replies < 10000) {
		call(plus ? P_READDIRPLUS : P_READDIR, dir);
		xb_u64(&x, cookie);
		xb_opaque(&x, verf, 8);
		x.n -= 4;
		memmove(x.b + x.n - 8, x.b + x.n - 4, 0);
		/* cookieverf is fixed-size: rewrite without the length. */
		x.n -= 8;
		memcpy(x.b + x.n, verf, 8);
		x.n += 8;
		if (plus)
			xb_u32(&x, dircount);
		xb_u32(&x, count);
		assert_int_equal(run(f->fd), 0);
		replies++;
		/* Whole reply minus the 24-byte RPC header. */
		assert_true((size_t)rp.len - 24 <= count);
		rd_post_attr(&rp.r, NULL);
		memcpy(verf, rp.r.p + rp.r.off, 8);
		rd_skip(&rp.r, 8);
		int n = 0;
		size_t dirbytes = 0;
		while (rd_u32(&rp.r) == 1 && !rp.r.bad) {
			rd_u64(&rp.r);
			uint32_t len;
			const uint8_t *name = rd_opaque(&rp.r, &len);
			cookie = rd_u64(&rp.r);
			dirbytes += 8 + 4 + ((len + 3) & ~3u) + 8;
			if (plus) {
				rd_post_attr(&rp.r, NULL);
				if (rd_u32(&rp.r)) {
					uint32_t hl;
					rd_opaque(&rp.r, &hl);
					assert_int_equal(hl, 52);
				}
			}
			n++;
			if (getenv("TH_DEBUG"))
				fprintf(stderr, "%.*s %llx\n", (int)len, name,
				    (unsigned long long)cookie);
			int idx;
			char nm[300];
			snprintf(nm, sizeof(nm), "%.*s", (int)len,
			    (const char *)name);
			if (len > 1 && nm[0] == 'e' &&
			    sscanf(nm + 1, "%d", &idx) == 1 &&
			    idx >= 0 && idx < nfiles) {
				assert_int_equal(seen[idx], 0);
				seen[idx] = 1;
				found++;
			}
		}
		assert_true(n > 0);
		if (getenv("TH_DEBUG"))
			fprintf(stderr, "REPLY n=%d\n", n);
		if (plus && n > 1)
			assert_true(dirbytes <= dircount);
		eof = rd_u32(&rp.r) != 0;
		assert_false(rp.r.bad);
	}
	assert_true(eof);
	if (found != nfiles)
		for (int i = 0; i < nfiles; i++)
			if (!seen[i])
				fprintf(stderr, "missing e%d\n", i);
	assert_int_equal(found, nfiles);
}

static void test_readdir_limits(void **state)
{
	struct fx *f = *state;
	struct th_fh d;
	struct th_fattr a;
	char name[64];

	call(P_MKDIR, &f->root);
	xb_str(&x, "big");
	sattr_none();
	assert_int_equal(run(f->fd), 0);
	assert_int_equal(th_lookup(f->fd, &f->root, "big", &d, &a), 0);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "e%d%s", i,
		    i % 7 == 0 ? "-a-somewhat-longer-name" : "");
		assert_int_equal(create(f, &d, name, 0, 0, NULL), 0);
	}
	list_dir(f, &d, false, 1024, 0, 300);
	list_dir(f, &d, false, 65536, 0, 300);
	list_dir(f, &d, false, 1u << 30, 0, 300);
	list_dir(f, &d, true, 4096, 512, 300);
	list_dir(f, &d, true, 32768, 4096, 300);
	list_dir(f, &d, true, 600, 1 << 20, 300);

	/* A count too small for any entry. */
	call(P_READDIR, &d);
	xb_u64(&x, 0);
	xb_u64(&x, 0);
	xb_u32(&x, 100);
	assert_int_equal(run(f->fd), 10005);
	/* READDIR of a file. */
	struct th_fh h;
	assert_int_equal(th_lookup(f->fd, &d, "e1", &h, &a), 0);
	call(P_READDIR, &h);
	xb_u64(&x, 0);
	xb_u64(&x, 0);
	xb_u32(&x, 4096);
	assert_int_equal(run(f->fd), 20);
	/* A cookie verifier from elsewhere. */
	call(P_READDIR, &d);
	xb_u64(&x, 5);
	xb_u64(&x, 0xdeadbeefull);
	xb_u32(&x, 4096);
	assert_int_equal(run(f->fd), 10003);
}

static void test_snapshot_dir(void **state)
{
	struct fx *f = *state;
	struct th_fh h, sd, sn, sf;
	struct th_fattr a, ra;
	uint64_t id;

	assert_int_equal(create(f, &f->root, "snapped", 0, 0, &h), 0);
	call(P_WRITE, &h);
	xb_u64(&x, 0);
	xb_u32(&x, 4);
	xb_u32(&x, 2);
	xb_opaque(&x, "old!", 4);
	assert_int_equal(run(f->fd), 0);
	assert_int_equal(wafl_snap_create(f->t.fs->v, "hourly.0", &id), 0);

	assert_int_equal(th_lookup(f->fd, &f->root, ".snapshot", &sd, &a), 0);
	assert_int_equal(a.type, 2);
	assert_int_equal(th_lookup(f->fd, &sd, "nope", NULL, NULL), 2);
	assert_int_equal(th_lookup(f->fd, &sd, "hourly.0", &sn, &a), 0);
	assert_int_equal(getattr(f, &f->root, &ra), 0);
	assert_int_not_equal(a.fsid, ra.fsid);
	assert_int_equal(th_lookup(f->fd, &sn, "snapped", &sf, &a), 0);
	assert_int_equal(a.size, 4);
	/* ".." of the snapshot root is .snapshot, of .snapshot the root. */
	assert_int_equal(th_lookup(f->fd, &sn, "..", NULL, &a), 0);
	assert_int_equal(a.fileid, 0xfffffffffffffffeull);
	assert_int_equal(th_lookup(f->fd, &sd, "..", NULL, &a), 0);
	assert_int_equal(a.fileid, ra.fileid);

	/* Read-only: writes get ROFS, ACCESS grants no modification. */
	call(P_WRITE, &sf);
	xb_u64(&x, 0);
	xb_u32(&x, 4);
	xb_u32(&x, 2);
	xb_opaque(&x, "new!", 4);
	assert_int_equal(run(f->fd), 30);
	call(P_CREATE, &sn);
	xb_str(&x, "z");
	xb_u32(&x, 0);
	sattr_none();
	assert_int_equal(run(f->fd), 30);
	call(P_ACCESS, &sf);
	xb_u32(&x, 0x3f);
	assert_int_equal(run(f->fd), 0);
	rd_post_attr(&rp.r, NULL);
	assert_int_equal(rd_u32(&rp.r) & 0x1c, 0);

	/* The active file changes, the snapshot's does not. */
	call(P_WRITE, &h);
	xb_u64(&x, 0);
	xb_u32(&x, 4);
	xb_u32(&x, 2);
	xb_opaque(&x, "new!", 4);
	assert_int_equal(run(f->fd), 0);
	call(P_READ, &sf);
	xb_u64(&x, 0);
	xb_u32(&x, 4);
	assert_int_equal(run(f->fd), 0);
	rd_post_attr(&rp.r, NULL);
	rd_skip(&rp.r, 8);
	uint32_t n;
	const uint8_t *p = rd_opaque(&rp.r, &n);
	assert_int_equal(n, 4);
	assert_memory_equal(p, "old!", 4);

	/* COMMIT in a snapshot and of .snapshot: nothing to flush, OK. */
	call(P_COMMIT, &sf);
	xb_u64(&x, 0);
	xb_u32(&x, 0);
	assert_int_equal(run(f->fd), 0);
	call(P_COMMIT, &sd);
	xb_u64(&x, 0);
	xb_u32(&x, 0);
	assert_int_equal(run(f->fd), 0);
	bool post;
	rd_wcc(&rp.r, NULL, &post);
	assert_true(post);

	/* READDIR of .snapshot lists it. */
	call(P_READDIR, &sd);
	xb_u64(&x, 0);
	xb_u64(&x, 0);
	xb_u32(&x, 4096);
	assert_int_equal(run(f->fd), 0);
	assert_non_null(memmem(rp.buf, (size_t)rp.len, "hourly.0", 8));

	/* The ".." entry of a snapshot's root is .snapshot, as LOOKUP. */
	call(P_READDIR, &sn);
	xb_u64(&x, 0);
	xb_u64(&x, 0);
	xb_u32(&x, 4096);
	assert_int_equal(run(f->fd), 0);
	rd_post_attr(&rp.r, NULL);
	rd_skip(&rp.r, 8);
	uint64_t up = 0;
	while (rd_u32(&rp.r) == 1 && !rp.r.bad) {
		uint64_t fid = rd_u64(&rp.r);
		const uint8_t *nm = rd_opaque(&rp.r, &n);
		rd_u64(&rp.r);
		if (n == 2 && memcmp(nm, "..", 2) == 0)
			up = fid;
	}
	assert_int_equal(up, 0xfffffffffffffffeull);
}

/*
 * ".snapshot" in the volume's root is the virtual directory, which LOOKUP
 * always resolves: no real entry may take the name there (it would be
 * unreachable, and a client would see a file turn into the snapshot
 * directory).  Elsewhere it is an ordinary name.
 */
static void test_snapshot_name_reserved(void **state)
{
	struct fx *f = *state;
	struct th_fh h, d;
	struct th_fattr a;

	assert_int_equal(create(f, &f->root, ".snapshot", 0, 0, NULL), 17);
	assert_int_equal(create(f, &f->root, ".snapshot", 2, 7, NULL), 17);
	call(P_MKDIR, &f->root);
	xb_str(&x, ".snapshot");
	sattr_none();
	assert_int_equal(run(f->fd), 17);
	call(P_SYMLINK, &f->root);
	xb_str(&x, ".snapshot");
	sattr_none();
	xb_str(&x, "t");
	assert_int_equal(run(f->fd), 17);
	call(P_MKNOD, &f->root);
	xb_str(&x, ".snapshot");
	xb_u32(&x, 7);
	sattr_none();
	assert_int_equal(run(f->fd), 17);
	assert_int_equal(create(f, &f->root, "file", 0, 0, &h), 0);
	call(P_LINK, &h);
	xb_fh(&x, &f->root);
	xb_str(&x, ".snapshot");
	assert_int_equal(run(f->fd), 17);
	call(P_RENAME, &f->root);
	xb_str(&x, "file");
	xb_fh(&x, &f->root);
	xb_str(&x, ".snapshot");
	assert_int_equal(run(f->fd), 17);
	/* Still the virtual directory, and "file" still a file. */
	assert_int_equal(th_lookup(f->fd, &f->root, ".snapshot", NULL, &a), 0);
	assert_int_equal(a.fileid, 0xfffffffffffffffeull);
	assert_int_equal(th_lookup(f->fd, &f->root, "file", NULL, &a), 0);
	assert_int_equal(a.type, 1);
	/* Below the root it is an ordinary name. */
	mkdir_mode(f, &f->root, "sub", 0755, &d);
	assert_int_equal(create(f, &d, ".snapshot", 0, 0, NULL), 0);
}

/* The real client: mount, files, directories, listing. */
/*
 * A reply waits for its NVLOG record (the worker does not): if the record
 * never becomes durable the reply is not sent at all, and the DRC does not
 * keep it, so the retransmission runs again and gets an error instead of a
 * success that was never durable.  The server keeps answering reads.
 */
static void test_reply_waits_for_log(void **state)
{
	struct fx *f = *state;
	struct th_fh a, b;
	struct th_fattr at;
	uint8_t buf[4096];

	assert_int_equal(create(f, &f->root, "before", 1, 0, &a), 0);
	nvlog_test_inject(f->t.fs->v->log, NVLOG_FAULT_SYNC);

	uint32_t cxid = xid++;
	xb_call(&x, cxid, TH_NFS_PROG, 3, P_CREATE, 0, 0);
	xb_fh(&x, &f->root);
	xb_str(&x, "lost");
	xb_u32(&x, 1);
	sattr_mode(0644);
	th_send_record(f->fd, &x);
	/* The flush fails: no reply, not even a late one. */
	assert_true(th_recv_record(f->fd, buf, sizeof(buf), 1500) < 0);

	/* The same call again (same xid): executed again, refused. */
	nvlog_test_inject(f->t.fs->v->log, 0);
	th_send_record(f->fd, &x);
	ssize_t n = th_recv_record(f->fd, buf, sizeof(buf), TH_TIMEOUT_MS);
	assert_true(n > 0);
	memcpy(rp.buf, buf, (size_t)n);
	rp.len = n;
	th_parse_reply(&rp);
	assert_int_equal(rp.xid, cxid);
	assert_int_equal(rp.stat, 0);
	assert_int_not_equal(rd_u32(&rp.r), 0);	/* not NFS3_OK */

	/* Reads go on; the file created before is there. */
	assert_int_equal(th_lookup(f->fd, &f->root, "before", &b, NULL), 0);
	assert_int_equal(getattr(f, &a, &at), 0);
}

static void test_libnfs_workflow(void **state)
{
	struct fx *f = *state;
	char err[256] = "";
	struct nfs_context *nfs = th_nfs_mount(&f->t, "/vol/vol0", -1, -1,
	    err, sizeof(err));
	struct nfsfh *fh;
	struct nfs_stat_64 st;
	enum { SZ = 3 << 20 };
	uint8_t *buf = malloc(SZ), *back = malloc(SZ);

	assert_non_null(nfs);
	tl_fill_pattern(buf, SZ, 42);
	assert_int_equal(nfs_mkdir(nfs, "/w"), 0);
	assert_int_equal(nfs_creat(nfs, "/w/big", 0644, &fh), 0);
	assert_int_equal(nfs_pwrite(nfs, fh, 0, SZ, buf), SZ);
	assert_int_equal(nfs_fsync(nfs, fh), 0);
	assert_int_equal(nfs_close(nfs, fh), 0);
	assert_int_equal(nfs_stat64(nfs, "/w/big", &st), 0);
	assert_int_equal(st.nfs_size, SZ);
	assert_int_equal(nfs_open(nfs, "/w/big", O_RDONLY, &fh), 0);
	assert_int_equal(nfs_pread(nfs, fh, 0, SZ, back), SZ);
	assert_memory_equal(buf, back, SZ);
	/* Sparse: a byte far out, zeros before. */
	assert_int_equal(nfs_close(nfs, fh), 0);
	assert_int_equal(nfs_open(nfs, "/w/big", O_RDWR, &fh), 0);
	assert_int_equal(nfs_pwrite(nfs, fh, 100ull << 20, 1, "z"), 1);
	assert_int_equal(nfs_pread(nfs, fh, 50ull << 20, 4096, back), 4096);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(back[i], 0);
	assert_int_equal(nfs_close(nfs, fh), 0);

	assert_int_equal(nfs_rename(nfs, "/w/big", "/w/big2"), 0);
	assert_int_equal(nfs_link(nfs, "/w/big2", "/w/big3"), 0);
	assert_int_equal(nfs_symlink(nfs, "big2", "/w/sl"), 0);
	char target[64] = "";
	assert_int_equal(nfs_readlink(nfs, "/w/sl", target, sizeof(target)),
	    0);
	assert_string_equal(target, "big2");
	assert_int_equal(nfs_chmod(nfs, "/w/big2", 0600), 0);
	assert_int_equal(nfs_truncate(nfs, "/w/big2", 10), 0);
	assert_int_equal(nfs_stat64(nfs, "/w/big3", &st), 0);
	assert_int_equal(st.nfs_size, 10);
	assert_int_equal(st.nfs_mode & 07777, 0600);
	assert_int_equal(st.nfs_nlink, 2);

	struct nfsdir *dir;
	assert_int_equal(nfs_opendir(nfs, "/w", &dir), 0);
	int n = 0;
	for (struct nfsdirent *e; (e = nfs_readdir(nfs, dir)) != NULL;)
		n++;
	nfs_closedir(nfs, dir);
	assert_int_equal(n, 5);		/* . .. big2 big3 sl */

	struct nfs_statvfs_64 sv;
	assert_int_equal(nfs_statvfs64(nfs, "/", &sv), 0);
	assert_true(sv.f_blocks > 0);

	assert_int_equal(nfs_unlink(nfs, "/w/big2"), 0);
	assert_int_equal(nfs_unlink(nfs, "/w/big3"), 0);
	assert_int_equal(nfs_unlink(nfs, "/w/sl"), 0);
	assert_int_equal(nfs_rmdir(nfs, "/w"), 0);
	assert_int_not_equal(nfs_stat64(nfs, "/w", &st), 0);
	nfs_umount(nfs);
	nfs_destroy_context(nfs);
	free(buf);
	free(back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fsinfo_pathconf_fsstat,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_file_size, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fs_procs_failures, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_create_modes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_write_read_commit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_read_execute_only, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_setattr_guard, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_status_mapping, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mknod_devices_need_root,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_sticky_dir, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_write_kills_setid,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_setgid_dir_create, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_readdirplus_needs_search,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_names_with_nul, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rename_dir_needs_write,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_access, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_dirs_links_nodes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_link_limit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_handles, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_handles_across_restart,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_readdir_limits, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_dir, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_name_reserved,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_waits_for_log, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_libnfs_workflow, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
