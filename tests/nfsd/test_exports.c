/*
 * tests/nfsd/test_exports.c: export rules (Linux exports(5) semantics)
 * against MNT and NFS calls: denied hosts, first match wins, ro (ROFS and
 * ACCESS), root_squash / no_root_squash / all_squash / anonuid, AUTH_NONE,
 * secure ports, subdirectory exports, the MOUNT bookkeeping procedures,
 * configuration checks, exports replaced on a running server, and
 * host-name patterns ("local*", "*.invalid") matched by the name of
 * 127.0.0.1 (tests/nfsd/test_hostnames.c tests the matcher, the cache and
 * forward confirmation alone).
 */
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/util.h"
#include "tests/lib/tl_port.h"
#include "tests/nfsd/th_nfs.h"

static struct xb x;
static struct th_reply rp;
static uint32_t xid = 9000;

static void start_with(struct th *t, const struct nfsd_client_rule *r,
    size_t n)
{
	th_config(t);
	for (size_t i = 0; i < n; i++)
		t->rules[i] = r[i];
	t->exp[0].nrules = n;
	th_serve(t);
}

/* GETATTR as uid/gid (uid < 0: AUTH_NONE). */
static uint32_t getattr_as(int fd, const struct th_fh *fh, int uid)
{
	xb_call(&x, xid++, TH_NFS_PROG, 3, 1, uid, uid);
	xb_fh(&x, fh);
	return th_status(fd, &x);
}

/* CREATE UNCHECKED as uid; returns status, owner in *owner. */
static uint32_t create_as(int fd, const struct th_fh *dir, const char *name,
    int uid, uint32_t *owner)
{
	xb_call(&x, xid++, TH_NFS_PROG, 3, 8, uid, uid);
	xb_fh(&x, dir);
	xb_str(&x, name);
	xb_u32(&x, 0);
	xb_u32(&x, 1);
	xb_u32(&x, 0666);
	for (int i = 0; i < 5; i++)
		xb_u32(&x, 0);
	th_rpc_tcp(fd, &x, &rp);
	VERIFY_EQ(rp.stat, 0);
	uint32_t st = rd_u32(&rp.r);
	if (st == 0) {
		VERIFY_EQ(rd_u32(&rp.r), 1);
		uint32_t n;
		rd_opaque(&rp.r, &n);
		struct th_fattr a;
		VERIFY(rd_post_attr(&rp.r, &a));
		*owner = a.uid;
	}
	return st;
}

static void test_denied_host(void **state)
{
	struct th t;
	struct th_fh root;
	struct nfsd_client_rule open = { .client = "*",
	    .flags = NFSD_RW | NFSD_INSECURE };
	struct nfsd_client_rule net10 = { .client = "10.0.0.0/8",
	    .flags = NFSD_RW | NFSD_INSECURE };

	/* A handle obtained while allowed ... */
	start_with(&t, &open, 1);
	int fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	close(fd);
	nfsd_free(t.srv);
	/* ... is refused once the rules no longer admit us. */
	t.rules[0] = net10;
	th_serve(&t);
	fd = th_tcp(t.mnt_port, 0);
	struct th_fh h2;
	assert_int_equal(th_mnt(fd, "/vol/vol0", &h2), 13);	/* ACCES */
	assert_int_equal(th_mnt(fd, "/vol/other", &h2), 2);	/* NOENT */
	assert_int_equal(getattr_as(fd, &root, 0), 13);
	/* FSSTAT, FSINFO, PATHCONF: ACCES and no attributes. */
	for (uint32_t proc = 18; proc <= 20; proc++) {
		xb_call(&x, xid++, TH_NFS_PROG, 3, proc, 0, 0);
		xb_fh(&x, &root);
		th_rpc_tcp(fd, &x, &rp);
		assert_int_equal(rp.stat, 0);
		assert_int_equal(rd_u32(&rp.r), 13);
		assert_int_equal(rd_u32(&rp.r), 0);	/* no attributes */
		assert_int_equal(rp.r.off, rp.r.n);
	}
	close(fd);
	char err[256];
	assert_null(th_nfs_mount(&t, "/vol/vol0", -1, -1, err, sizeof(err)));
	th_stop(&t);
}

static void test_first_match_and_ro(void **state)
{
	struct th t;
	struct th_fh root, f;
	uint32_t owner;
	struct nfsd_client_rule ro_first[2] = {
		{ .client = "127.0.0.1",
		    .flags = NFSD_INSECURE | NFSD_NO_ROOT_SQUASH },
		{ .client = "*",
		    .flags = NFSD_RW | NFSD_INSECURE | NFSD_NO_ROOT_SQUASH },
	};

	start_with(&t, ro_first, 2);
	int fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	assert_int_equal(create_as(fd, &root, "f", 0, &owner), 30);	/* ROFS */
	/* Reads keep working; a file made behind the server's back. */
	struct wafl_cred rc = { 0 };
	struct wafl_obj vr, o;
	struct wafl_attr a;
	struct wafl_dirwcc dw;
	struct wafl_sattr sa = { .set_mode = true, .mode = 0644 };
	assert_int_equal(wafl_root(t.fs->v, &vr), 0);
	assert_int_equal(wafl_create(t.fs->v, &rc, &vr, "f", WAFL_UNCHECKED,
	    &sa, 0, &o, &a, &dw), 0);
	assert_int_equal(th_lookup(fd, &root, "f", &f, NULL), 0);
	/* WRITE, SETATTR, REMOVE, MKDIR: ROFS. */
	xb_call(&x, xid++, TH_NFS_PROG, 3, 7, 0, 0);
	xb_fh(&x, &f);
	xb_u64(&x, 0);
	xb_u32(&x, 1);
	xb_u32(&x, 2);
	xb_opaque(&x, "a", 1);
	assert_int_equal(th_status(fd, &x), 30);
	xb_call(&x, xid++, TH_NFS_PROG, 3, 2, 0, 0);
	xb_fh(&x, &f);
	for (int i = 0; i < 7; i++)
		xb_u32(&x, 0);
	assert_int_equal(th_status(fd, &x), 30);
	xb_call(&x, xid++, TH_NFS_PROG, 3, 12, 0, 0);
	xb_fh(&x, &root);
	xb_str(&x, "f");
	assert_int_equal(th_status(fd, &x), 30);
	/* ACCESS grants no MODIFY / EXTEND / DELETE even to root. */
	xb_call(&x, xid++, TH_NFS_PROG, 3, 4, 0, 0);
	xb_fh(&x, &f);
	xb_u32(&x, 0x3f);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rd_u32(&rp.r), 0);
	rd_post_attr(&rp.r, NULL);
	uint32_t granted = rd_u32(&rp.r);
	assert_int_equal(granted & 0x1c, 0);
	assert_int_equal(granted & 0x01, 0x01);
	close(fd);
	nfsd_free(t.srv);

	/* The other order: the network rule comes first, rw. */
	struct nfsd_client_rule rw_first[2] = {
		{ .client = "127.0.0.0/8",
		    .flags = NFSD_RW | NFSD_INSECURE | NFSD_NO_ROOT_SQUASH },
		{ .client = "127.0.0.1", .flags = NFSD_INSECURE },
	};
	t.rules[0] = rw_first[0];
	t.rules[1] = rw_first[1];
	th_serve(&t);
	fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	assert_int_equal(create_as(fd, &root, "g", 0, &owner), 0);
	close(fd);
	th_stop(&t);
}

static void test_squash(void **state)
{
	struct th t;
	struct th_fh root;
	uint32_t owner;
	struct nfsd_client_rule r = { .client = "*",
	    .flags = NFSD_RW | NFSD_INSECURE };

	start_with(&t, &r, 1);				/* root_squash */
	int fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	/* The root directory is root's 0755: a squashed root cannot write. */
	assert_int_equal(create_as(fd, &root, "a", 0, &owner), 13);
	struct wafl_cred rc = { 0 };
	struct wafl_obj vr;
	struct wafl_attr a;
	struct wafl_sattr sa = { .set_mode = true, .mode = 0777 };
	struct wafl_wcc pre;
	assert_int_equal(wafl_root(t.fs->v, &vr), 0);
	assert_int_equal(wafl_setattr(t.fs->v, &rc, &vr, &sa, NULL, &pre, &a),
	    0);
	assert_int_equal(create_as(fd, &root, "a", 0, &owner), 0);
	assert_int_equal(owner, 65534);
	assert_int_equal(create_as(fd, &root, "b", 1000, &owner), 0);
	assert_int_equal(owner, 1000);
	assert_int_equal(create_as(fd, &root, "c", -1, &owner), 0);
	assert_int_equal(owner, 65534);			/* AUTH_NONE */
	close(fd);
	nfsd_free(t.srv);

	t.rules[0].flags = NFSD_RW | NFSD_INSECURE | NFSD_ANONUID;
	t.rules[0].anonuid = 4321;
	th_serve(&t);
	fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(create_as(fd, &root, "d", 0, &owner), 0);
	assert_int_equal(owner, 4321);
	close(fd);
	nfsd_free(t.srv);

	t.rules[0].flags = NFSD_RW | NFSD_INSECURE | NFSD_NO_ROOT_SQUASH;
	th_serve(&t);
	fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(create_as(fd, &root, "e", 0, &owner), 0);
	assert_int_equal(owner, 0);
	close(fd);
	nfsd_free(t.srv);

	t.rules[0].flags = NFSD_RW | NFSD_INSECURE | NFSD_ALL_SQUASH;
	th_serve(&t);
	fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(create_as(fd, &root, "f", 1000, &owner), 0);
	assert_int_equal(owner, 65534);
	close(fd);
	/* libnfs as root through root_squash sees the same. */
	nfsd_free(t.srv);
	t.rules[0].flags = NFSD_RW | NFSD_INSECURE;
	th_serve(&t);
	struct nfs_context *nfs = th_nfs_mount(&t, "/vol/vol0", 0, 0, NULL, 0);
	assert_non_null(nfs);
	struct nfsfh *fh;
	struct nfs_stat_64 st;
	assert_int_equal(nfs_creat(nfs, "/viaclient", 0644, &fh), 0);
	nfs_close(nfs, fh);
	assert_int_equal(nfs_stat64(nfs, "/viaclient", &st), 0);
	assert_int_equal(st.nfs_uid, 65534);
	nfs_umount(nfs);
	nfs_destroy_context(nfs);
	th_stop(&t);
}

static void test_secure_port(void **state)
{
	struct th t;
	struct th_fh root;
	struct nfsd_client_rule r = { .client = "*",
	    .flags = NFSD_RW | NFSD_NO_ROOT_SQUASH };

	start_with(&t, &r, 1);				/* secure */
	int fd = th_tcp(t.mnt_port, 0);			/* port >= 1024 */
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 13);
	close(fd);
	if (geteuid() != 0) {
		th_stop(&t);
		skip();
	}
	/* From a privileged port (we are root). */
	int pfd = -1;
	for (uint16_t p = 900; p > 600 && pfd < 0; p--) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in la = { .sin_family = AF_INET,
		    .sin_port = htons(p) };
		if (bind(s, (struct sockaddr *)&la, sizeof(la)) == 0) {
			close(s);
			pfd = th_tcp(t.mnt_port, p);
		} else {
			close(s);
		}
	}
	assert_true(pfd >= 0);
	assert_int_equal(th_mnt(pfd, "/vol/vol0", &root), 0);
	assert_int_equal(getattr_as(pfd, &root, 0), 0);
	fd = th_tcp(t.nfs_port, 0);
	assert_int_equal(getattr_as(fd, &root, 0), 13);	/* NFS checks too */
	close(fd);
	close(pfd);
	/* libnfs binds a privileged port when it can. */
	struct nfs_context *nfs = th_nfs_mount(&t, "/vol/vol0", -1, -1, NULL,
	    0);
	assert_non_null(nfs);
	nfs_umount(nfs);
	nfs_destroy_context(nfs);
	th_stop(&t);
}

/*
 * The ".." entry of a READDIR / READDIRPLUS of dir from cookie 0: its
 * fileid, and for READDIRPLUS the fileid in its attributes (0 if none) and
 * its handle (len 0 if none).
 */
static void dotdot_entry(int fd, const struct th_fh *dir, bool plus,
    uint64_t *fileid, uint64_t *attr_fileid, struct th_fh *fh)
{
	xb_call(&x, xid++, TH_NFS_PROG, 3, plus ? 17 : 16, 0, 0);
	xb_fh(&x, dir);
	xb_u64(&x, 0);
	xb_u64(&x, 0);
	if (plus)
		xb_u32(&x, 8192);
	xb_u32(&x, 32768);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 0);
	assert_int_equal(rd_u32(&rp.r), 0);
	rd_post_attr(&rp.r, NULL);
	rd_skip(&rp.r, 8);
	*fileid = 0;
	while (rd_u32(&rp.r) == 1 && !rp.r.bad) {
		uint64_t id = rd_u64(&rp.r);
		uint32_t len;
		const uint8_t *name = rd_opaque(&rp.r, &len);
		rd_u64(&rp.r);
		struct th_fattr a = { 0 };
		uint32_t hl = 0;
		const uint8_t *h = NULL;
		if (plus) {
			rd_post_attr(&rp.r, &a);
			if (rd_u32(&rp.r))
				h = rd_opaque(&rp.r, &hl);
		}
		if (len == 2 && memcmp(name, "..", 2) == 0) {
			*fileid = id;
			if (plus) {
				*attr_fileid = a.fileid;
				fh->len = hl;
				if (h != NULL)
					memcpy(fh->b, h, hl);
			}
		}
	}
	assert_false(rp.r.bad);
	assert_int_not_equal(*fileid, 0);
}

static void test_subdir_export_and_mount_procs(void **state)
{
	struct th t;
	struct th_fh root, sub, h;
	struct th_fattr a, sa;

	th_config(&t);
	struct wafl_cred rc = { 0 };
	struct wafl_obj vr, d, d2;
	struct wafl_attr at;
	struct wafl_dirwcc dw;
	struct wafl_sattr s = { .set_mode = true, .mode = 0755 };
	assert_int_equal(wafl_root(t.fs->v, &vr), 0);
	assert_int_equal(wafl_mkdir(t.fs->v, &rc, &vr, "sub", &s, &d, &at, &dw),
	    0);
	assert_int_equal(wafl_mkdir(t.fs->v, &rc, &d, "deeper", &s, &d2, &at,
	    &dw), 0);
	t.exp[0].path = "/vol/vol0/sub";
	th_serve(&t);
	int fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 2);
	assert_int_equal(th_mnt(fd, "/vol/vol0/sub", &sub), 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0/sub/deeper", &h), 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0/sub/nothere", &h), 2);
	/* ".." of the export root stays there. */
	assert_int_equal(th_lookup(fd, &sub, ".", NULL, &sa), 0);
	assert_int_equal(th_lookup(fd, &sub, "..", NULL, &a), 0);
	assert_int_equal(a.fileid, sa.fileid);
	/* So does its READDIR / READDIRPLUS entry: the root's fileid, and
	 * its handle with its own attributes, not those of the directory
	 * above the export. */
	uint64_t id, aid;
	struct th_fh up;
	dotdot_entry(fd, &sub, false, &id, &aid, &up);
	assert_int_equal(id, sa.fileid);
	dotdot_entry(fd, &sub, true, &id, &aid, &up);
	assert_int_equal(id, sa.fileid);
	assert_int_equal(aid, sa.fileid);
	assert_int_equal(up.len, sub.len);
	assert_memory_equal(up.b, sub.b, sub.len);

	/* EXPORT lists the path and its client spec. */
	xb_call(&x, xid++, TH_MNT_PROG, 3, 5, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 0);
	assert_int_equal(rd_u32(&rp.r), 1);
	uint32_t n;
	const uint8_t *p = rd_opaque(&rp.r, &n);
	assert_int_equal(n, strlen("/vol/vol0/sub"));
	assert_memory_equal(p, "/vol/vol0/sub", n);
	assert_int_equal(rd_u32(&rp.r), 1);
	p = rd_opaque(&rp.r, &n);
	assert_int_equal(n, 1);
	assert_memory_equal(p, "*", 1);
	/* DUMP shows our mounts; UMNTALL forgets them. */
	xb_call(&x, xid++, TH_MNT_PROG, 3, 2, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_non_null(memmem(rp.buf, (size_t)rp.len, "/vol/vol0/sub/deeper",
	    20));
	xb_call(&x, xid++, TH_MNT_PROG, 3, 3, 0, 0);
	xb_str(&x, "/vol/vol0/sub/deeper");
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 0);
	xb_call(&x, xid++, TH_MNT_PROG, 3, 2, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_null(memmem(rp.buf, (size_t)rp.len, "/vol/vol0/sub/deeper",
	    20));
	assert_non_null(memmem(rp.buf, (size_t)rp.len, "/vol/vol0/sub", 13));
	xb_call(&x, xid++, TH_MNT_PROG, 3, 4, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	xb_call(&x, xid++, TH_MNT_PROG, 3, 2, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rd_u32(&rp.r), 0);		/* empty list */
	close(fd);
	th_stop(&t);
}

/* Whether DUMP lists path (exactly) as mounted. */
static bool dump_has(int fd, const char *path)
{
	bool found = false;

	xb_call(&x, xid++, TH_MNT_PROG, 3, 2, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 0);
	for (int i = 0; i < 5000 && rd_u32(&rp.r) == 1; i++) {
		uint32_t n;
		rd_opaque(&rp.r, &n);			/* host */
		const uint8_t *p = rd_opaque(&rp.r, &n);
		if (p != NULL && n == strlen(path) && memcmp(p, path, n) == 0)
			found = true;
	}
	assert_false(rp.r.bad);
	return found;
}

/* How many mount records DUMP lists for host (NULL: for every host). */
static size_t dump_count(int fd, const char *host)
{
	size_t n = 0;

	xb_call(&x, xid++, TH_MNT_PROG, 3, 2, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 0);
	for (int i = 0; i < 10000 && rd_u32(&rp.r) == 1; i++) {
		uint32_t hl, pl;
		const uint8_t *h = rd_opaque(&rp.r, &hl);
		rd_opaque(&rp.r, &pl);
		if (host == NULL || (h != NULL && hl == strlen(host) &&
		    memcmp(h, host, hl) == 0))
			n++;
	}
	assert_false(rp.r.bad);
	assert_int_equal(rp.r.off, rp.r.n);
	return n;
}

/* A TCP connection to port from the loopback address addr (127.0.0.N:
 * another client host, as the server sees it). */
static int tcp_from(const char *addr, uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in la = { .sin_family = AF_INET };
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons(port) };

	assert_true(fd >= 0);
	assert_int_equal(inet_pton(AF_INET, addr, &la.sin_addr), 1);
	assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr), 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&la, sizeof(la)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* MNT or UMNT (proc 1 or 3) of len bytes of path; returns the RPC status
 * (GARBAGE_ARGS 4), the mount status in *st for a MNT accepted. */
static uint32_t mnt_raw(int fd, uint32_t proc, const char *path,
    uint32_t len, uint32_t *st)
{
	xb_call(&x, xid++, TH_MNT_PROG, 3, proc, 0, 0);
	xb_opaque(&x, path, len);
	th_rpc_tcp(fd, &x, &rp);
	if (rp.stat == 0 && proc == 1)
		*st = rd_u32(&rp.r);
	return rp.stat;
}

/*
 * Make dir/names[0]/names[1]/... (each made in the one before) and write
 * "/vol/vol0/" and the names joined by '/' to path.
 */
static void mkdirs(struct th *t, const char *const *names, size_t n,
    char *path, size_t cap)
{
	struct wafl_cred rc = { 0 };
	struct wafl_obj d, sub;
	struct wafl_attr at;
	struct wafl_dirwcc dw;
	struct wafl_sattr s = { .set_mode = true, .mode = 0755 };
	size_t len = (size_t)snprintf(path, cap, "/vol/vol0");

	assert_int_equal(wafl_root(t->fs->v, &d), 0);
	for (size_t i = 0; i < n; i++) {
		int rc2 = wafl_lookup(t->fs->v, &rc, &d, names[i], &sub, &at,
		    NULL);
		if (rc2 == -ENOENT)
			rc2 = wafl_mkdir(t->fs->v, &rc, &d, names[i], &s, &sub,
			    &at, &dw);
		assert_int_equal(rc2, 0);
		d = sub;
		len += (size_t)snprintf(path + len, cap - len, "/%s", names[i]);
		assert_true(len < cap);
	}
}

/*
 * MOUNT's paths are up to 1024 bytes (MNTPATHLEN): a directory whose path
 * is exactly that long mounts, DUMP lists its path whole, and UMNT of it
 * forgets it.  A longer one is GARBAGE_ARGS (test_rpc).  A path of 1024
 * bytes that is "/vol/vol0" and slashes mounts the export, recorded as
 * "/vol/vol0", which UMNT of it forgets.
 */
static void test_mount_path_longest(void **state)
{
	struct th t;
	struct th_fh root;
	static char path[1025], slashes[1025], a[256], b[256], c[256],
	    leaf[256];
	const char *names[] = { a, b, c, leaf };
	uint32_t st = 99;

	memset(a, 'a', 255);
	memset(b, 'b', 255);
	memset(c, 'c', 255);
	memset(leaf, 'l', 246);
	th_config(&t);
	mkdirs(&t, names, 4, path, sizeof(path));
	assert_int_equal(strlen(path), 1024);
	th_serve(&t);
	int fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(mnt_raw(fd, 1, path, 1024, &st), 0);
	assert_int_equal(st, 0);
	assert_true(dump_has(fd, path));
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	assert_int_equal(mnt_raw(fd, 3, path, 1024, &st), 0);
	assert_false(dump_has(fd, path));
	assert_true(dump_has(fd, "/vol/vol0"));

	memset(slashes, '/', 1024);
	memcpy(slashes, "/vol/vol0", 9);
	assert_int_equal(mnt_raw(fd, 1, slashes, 1024, &st), 0);
	assert_int_equal(st, 0);
	assert_false(dump_has(fd, slashes));
	assert_int_equal(dump_count(fd, NULL), 1);
	assert_int_equal(mnt_raw(fd, 3, slashes, 1024, &st), 0);
	assert_int_equal(dump_count(fd, NULL), 0);
	close(fd);
	th_stop(&t);
}

/*
 * A path holding a NUL is refused as it arrives (GARBAGE_ARGS, as NFS
 * names are), never cut at the NUL: MNT of "/vol/vol0\0junk" must not
 * mount /vol/vol0, UMNT of it must not forget /vol/vol0.
 */
static void test_mount_path_with_nul(void **state)
{
	struct th t;
	struct th_fh root;
	static const char bad[] = "/vol/vol0\0junk";
	uint32_t st = 99;

	th_start(&t);
	int fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(mnt_raw(fd, 1, bad, sizeof(bad) - 1, &st), 4);
	assert_false(dump_has(fd, "/vol/vol0"));
	/* A NUL at the very end is no better. */
	assert_int_equal(mnt_raw(fd, 1, bad, 10, &st), 4);
	assert_false(dump_has(fd, "/vol/vol0"));
	/* Over UDP the same. */
	int u = th_udp();
	xb_call(&x, xid++, TH_MNT_PROG, 3, 1, 0, 0);
	xb_opaque(&x, bad, sizeof(bad) - 1);
	th_rpc_udp(u, t.mnt_port, &x, &rp);
	assert_int_equal(rp.stat, 4);
	close(u);

	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	assert_true(dump_has(fd, "/vol/vol0"));
	assert_int_equal(mnt_raw(fd, 3, bad, sizeof(bad) - 1, &st), 4);
	assert_true(dump_has(fd, "/vol/vol0"));
	assert_int_equal(mnt_raw(fd, 3, "/vol/vol0", 9, &st), 0);
	assert_false(dump_has(fd, "/vol/vol0"));
	/* The connection and the server are fine. */
	assert_int_equal(mnt_raw(fd, 1, "/vol/vol0", 9, &st), 0);
	assert_int_equal(st, 0);
	close(fd);
	th_stop(&t);
}

/* UMNT (no reply status) of path over TCP. */
static void umnt(int fd, const char *path)
{
	xb_call(&x, xid++, TH_MNT_PROG, 3, 3, 0, 0);
	xb_str(&x, path);
	th_rpc_tcp(fd, &x, &rp);
	assert_int_equal(rp.stat, 0);
}

/*
 * A mount is recorded under the path it resolved to (the export's path and
 * the directories below it, one slash apart), as Linux mountd records
 * realpath's: "/vol/vol0", "/vol/vol0/" and "/vol/vol0//" name one
 * directory and make one record, and UMNT of any spelling of it forgets
 * that record.  Recorded as spelled, one client could fill the list with
 * spellings of one directory.
 */
static void test_mount_records_resolved_path(void **state)
{
	struct th t;
	struct th_fh h;
	struct wafl_cred rc = { 0 };
	struct wafl_obj vr, d;
	struct wafl_attr at;
	struct wafl_dirwcc dw;
	struct wafl_sattr s = { .set_mode = true, .mode = 0755 };
	static const char *const root_as[] = { "/vol/vol0", "/vol/vol0/",
		"/vol/vol0//", "//vol/vol0", "/vol///vol0/" };
	static const char *const sub_as[] = { "/vol/vol0/sub",
		"/vol/vol0/sub/", "/vol/vol0//sub", "//vol//vol0///sub//" };
	char many[256];

	th_config(&t);
	assert_int_equal(wafl_root(t.fs->v, &vr), 0);
	assert_int_equal(wafl_mkdir(t.fs->v, &rc, &vr, "sub", &s, &d, &at, &dw),
	    0);
	th_serve(&t);
	int fd = th_tcp(t.mnt_port, 0);
	for (size_t i = 0; i < FL_ARRAY_SIZE(root_as); i++)
		if (th_mnt(fd, root_as[i], &h) != 0)
			fail_msg("MNT of %s refused", root_as[i]);
	for (size_t i = 0; i < FL_ARRAY_SIZE(sub_as); i++)
		if (th_mnt(fd, sub_as[i], &h) != 0)
			fail_msg("MNT of %s refused", sub_as[i]);
	/* Many more spellings, as a client filling the list would send. */
	for (size_t k = 1; k < 200; k++) {
		memset(many, '/', sizeof(many));
		memcpy(many, "/vol/vol0", 9);
		memcpy(many + 9 + k, "sub", 4);
		assert_int_equal(th_mnt(fd, many, &h), 0);
	}
	assert_int_equal(dump_count(fd, NULL), 2);
	assert_true(dump_has(fd, "/vol/vol0"));
	assert_true(dump_has(fd, "/vol/vol0/sub"));
	/* A spelling that names nothing mounted forgets nothing. */
	umnt(fd, "/vol/vol0/su");
	assert_int_equal(dump_count(fd, NULL), 2);
	umnt(fd, "/vol/vol0//");
	assert_false(dump_has(fd, "/vol/vol0"));
	assert_true(dump_has(fd, "/vol/vol0/sub"));
	umnt(fd, "//vol/vol0/sub/");
	assert_int_equal(dump_count(fd, NULL), 0);
	/* Another host's mount of the same directory is its own record. */
	assert_int_equal(th_mnt(fd, "/vol/vol0/", &h), 0);
	int fd2 = tcp_from("127.0.0.2", t.mnt_port);
	assert_int_equal(th_mnt(fd2, "/vol/vol0", &h), 0);
	assert_int_equal(dump_count(fd, NULL), 2);
	assert_int_equal(dump_count(fd, "127.0.0.2"), 1);
	close(fd2);
	close(fd);
	th_stop(&t);
}

static pthread_mutex_t full_mu = PTHREAD_MUTEX_INITIALIZER;
static char full_msg[1024];
static int full_logged;

static void full_hook(void *arg, enum fl_log_level level,
    const char *subsys, const char *msg)
{
	if (strstr(msg, "not recorded") == NULL)
		return;
	pthread_mutex_lock(&full_mu);
	snprintf(full_msg, sizeof(full_msg), "%s", msg);
	full_logged++;
	pthread_mutex_unlock(&full_mu);
}

/*
 * The mount list holds at most 4096 records.  Once it is full a MNT is
 * still answered (the records are advisory) but not recorded, which is
 * logged (once a minute at most); DUMP lists the records it holds, older
 * ones are never pushed out.  A UMNT makes room again.  (One host fills
 * it here: its own limit is raised to the whole list.)
 */
static void test_mount_list_full(void **state)
{
	struct th t;
	struct th_fh h;
	struct wafl_cred rc = { 0 };
	struct wafl_obj vr, d;
	struct wafl_attr at;
	struct wafl_dirwcc dw;
	struct wafl_sattr s = { .set_mode = true, .mode = 0755 };
	char name[32], path[64];

	th_config(&t);
	t.cfg.mounts_per_host = 4096;
	assert_int_equal(wafl_root(t.fs->v, &vr), 0);
	for (int i = 0; i < 4096; i++) {
		snprintf(name, sizeof(name), "d%04d", i);
		assert_int_equal(wafl_mkdir(t.fs->v, &rc, &vr, name, &s, &d,
		    &at, &dw), 0);
	}
	th_serve(&t);
	int fd = th_tcp(t.mnt_port, 0);
	for (int i = 0; i < 4096; i++) {
		snprintf(path, sizeof(path), "/vol/vol0/d%04d/", i);
		assert_int_equal(th_mnt(fd, path, &h), 0);
	}
	assert_int_equal(dump_count(fd, NULL), 4096);

	full_logged = 0;
	fl_log_set_hook(full_hook, NULL, FL_LOG_INFO);
	int fd2 = tcp_from("127.0.0.2", t.mnt_port);
	assert_int_equal(th_mnt(fd2, "/vol/vol0", &h), 0);	/* answered */
	assert_int_equal(th_mnt(fd2, "/vol/vol0/d0001", &h), 0);
	assert_int_equal(getattr_as(fd2, &h, 0), 0);
	fl_log_set_hook(NULL, NULL, FL_LOG_ERR);
	pthread_mutex_lock(&full_mu);
	assert_int_equal(full_logged, 1);
	assert_non_null(strstr(full_msg, "/vol/vol0 by 127.0.0.2"));
	pthread_mutex_unlock(&full_mu);
	assert_int_equal(dump_count(fd, NULL), 4096);
	assert_int_equal(dump_count(fd, "127.0.0.2"), 0);
	assert_int_equal(dump_count(fd, "127.0.0.1"), 4096);

	/* Room again after a UMNT (of another spelling). */
	umnt(fd, "/vol/vol0//d0000");
	assert_int_equal(dump_count(fd, NULL), 4095);
	assert_int_equal(th_mnt(fd2, "/vol/vol0", &h), 0);
	assert_int_equal(dump_count(fd, "127.0.0.2"), 1);
	assert_int_equal(dump_count(fd, NULL), 4096);
	close(fd2);
	close(fd);
	th_stop(&t);
}

/*
 * One client address keeps at most 64 mount records (the default of
 * mounts_per_host), so a client mounting directory after directory
 * cannot fill the list and crowd out the others' records.  Past its limit
 * a MNT is answered all the same, with a handle that works (the records
 * are advisory, RFC 1813), and not recorded, which is logged once a
 * minute at most; a mount it has recorded already stays recorded, other
 * hosts are recorded, and its UMNT makes room for it again.  Before the
 * limit, DUMP listed all 70 of the first host's mounts.
 */
static void test_mount_list_per_host(void **state)
{
	struct th t;
	struct th_fh h;
	struct wafl_cred rc = { 0 };
	struct wafl_obj vr, d;
	struct wafl_attr at;
	struct wafl_dirwcc dw;
	struct wafl_sattr s = { .set_mode = true, .mode = 0755 };
	char name[32], path[64];

	th_config(&t);
	assert_int_equal(wafl_root(t.fs->v, &vr), 0);
	for (int i = 0; i < 70; i++) {
		snprintf(name, sizeof(name), "d%02d", i);
		assert_int_equal(wafl_mkdir(t.fs->v, &rc, &vr, name, &s, &d,
		    &at, &dw), 0);
	}
	th_serve(&t);
	int fd = th_tcp(t.mnt_port, 0);
	int fd2 = tcp_from("127.0.0.2", t.mnt_port);
	assert_int_equal(th_mnt(fd2, "/vol/vol0", &h), 0);
	for (int i = 0; i < 64; i++) {
		snprintf(path, sizeof(path), "/vol/vol0/d%02d", i);
		assert_int_equal(th_mnt(fd, path, &h), 0);
	}
	assert_int_equal(dump_count(fd, "127.0.0.1"), 64);

	full_logged = 0;
	fl_log_set_hook(full_hook, NULL, FL_LOG_INFO);
	for (int i = 64; i < 70; i++) {
		snprintf(path, sizeof(path), "/vol/vol0/d%02d", i);
		assert_int_equal(th_mnt(fd, path, &h), 0);	/* answered */
		assert_int_equal(getattr_as(fd, &h, 0), 0);
	}
	/* Mounted again: its record is there, nothing new. */
	assert_int_equal(th_mnt(fd, "/vol/vol0/d05", &h), 0);
	/* Another host is not held back by this one. */
	int fd3 = tcp_from("127.0.0.3", t.mnt_port);
	assert_int_equal(th_mnt(fd3, "/vol/vol0/d69", &h), 0);
	fl_log_set_hook(NULL, NULL, FL_LOG_ERR);
	assert_int_equal(dump_count(fd, "127.0.0.1"), 64);
	assert_int_equal(dump_count(fd, "127.0.0.2"), 1);
	assert_int_equal(dump_count(fd, "127.0.0.3"), 1);
	assert_int_equal(dump_count(fd, NULL), 66);
	assert_true(dump_has(fd, "/vol/vol0/d63"));
	assert_false(dump_has(fd, "/vol/vol0/d64"));
	pthread_mutex_lock(&full_mu);
	assert_int_equal(full_logged, 1);
	assert_non_null(strstr(full_msg, "127.0.0.1 has 64 mount records"));
	assert_non_null(strstr(full_msg, "/vol/vol0/d64"));
	pthread_mutex_unlock(&full_mu);

	/* A UMNT makes room for that host again. */
	umnt(fd, "/vol/vol0/d00");
	assert_int_equal(dump_count(fd, "127.0.0.1"), 63);
	assert_int_equal(th_mnt(fd, "/vol/vol0/d64", &h), 0);
	assert_int_equal(dump_count(fd, "127.0.0.1"), 64);
	close(fd3);
	close(fd2);
	close(fd);
	th_stop(&t);
}

/* x over UDP to port, the reply in r; false when none came within
 * timeout_ms (a UDP client would time out). */
static bool udp_call(int fd, uint16_t port, const struct xb *xq,
    struct th_reply *r, int timeout_ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons(port) };
	struct pollfd pf = { .fd = fd, .events = POLLIN };

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(sendto(fd, xq->b, xq->n, 0, (struct sockaddr *)&sa,
	    sizeof(sa)), (ssize_t)xq->n);
	if (poll(&pf, 1, timeout_ms) != 1)
		return false;
	r->len = recv(fd, r->buf, sizeof(r->buf), 0);
	assert_true(r->len > 0);
	th_parse_reply(r);
	return true;
}

static pthread_mutex_t cut_mu = PTHREAD_MUTEX_INITIALIZER;
static char cut_msg[1024];
static int cut_logged;

static void cut_hook(void *arg, enum fl_log_level level,
    const char *subsys, const char *msg)
{
	if (strstr(msg, "cut") == NULL)
		return;
	pthread_mutex_lock(&cut_mu);
	snprintf(cut_msg, sizeof(cut_msg), "%s", msg);
	cut_logged++;
	pthread_mutex_unlock(&cut_mu);
}

/* The largest reply a MOUNT list takes over UDP: Sun RPC's UDPMSGSIZE,
 * what libtirpc's UDP clients (showmount, rpcinfo) read at most. */
#define MOUNT_UDP_REPLY	8800

/*
 * DUMP and EXPORT replies too large for a datagram.  Over UDP the server
 * answers with as many whole entries as fit in 8800 bytes (UDPMSGSIZE,
 * what a libtirpc client reads) and logs that it cut the list (once a
 * minute); over TCP the whole list goes.  Before, a reply over 64 KiB was
 * never sent over UDP, and the client timed out.
 */
static void test_mount_lists_over_udp(void **state)
{
	struct th t;
	struct th_fh h;
	struct wafl_cred rc = { 0 };
	struct wafl_obj vr, d;
	struct wafl_attr at;
	struct wafl_dirwcc dw;
	struct wafl_sattr s = { .set_mode = true, .mode = 0755 };
	char name[256], path[300];
	enum { NDIRS = 300, NAMELEN = 200 };

	th_config(&t);
	t.cfg.mounts_per_host = NDIRS;	/* one host mounts them all */
	assert_int_equal(wafl_root(t.fs->v, &vr), 0);
	for (int i = 0; i < NDIRS; i++) {
		memset(name, 'x', NAMELEN);
		snprintf(name, sizeof(name), "%03d", i);
		name[3] = 'x';
		name[NAMELEN] = '\0';
		assert_int_equal(wafl_mkdir(t.fs->v, &rc, &vr, name, &s, &d,
		    &at, &dw), 0);
	}
	th_serve(&t);
	int fd = th_tcp(t.mnt_port, 0);
	for (int i = 0; i < NDIRS; i++) {
		memset(name, 'x', NAMELEN);
		snprintf(name, sizeof(name), "%03d", i);
		name[3] = 'x';
		name[NAMELEN] = '\0';
		snprintf(path, sizeof(path), "/vol/vol0/%s", name);
		assert_int_equal(th_mnt(fd, path, &h), 0);
	}
	assert_int_equal(dump_count(fd, NULL), NDIRS);	/* TCP: all */

	/* DUMP over UDP: as many records as fit, each whole, and the list
	 * ended. */
	cut_logged = 0;
	fl_log_set_hook(cut_hook, NULL, FL_LOG_INFO);
	int u = th_udp();
	for (int round = 0; round < 2; round++) {
		xb_call(&x, xid++, TH_MNT_PROG, 3, 2, 0, 0);
		if (!udp_call(u, t.mnt_port, &x, &rp, 3000))
			fail_msg("no reply to a DUMP of %d records over UDP",
			    NDIRS);
		assert_int_equal(rp.stat, 0);
		assert_true(rp.len <= MOUNT_UDP_REPLY);
		int n = 0;
		while (rd_u32(&rp.r) == 1 && n <= NDIRS) {
			uint32_t hl, pl;
			const uint8_t *hp = rd_opaque(&rp.r, &hl);
			const uint8_t *pp = rd_opaque(&rp.r, &pl);
			assert_false(rp.r.bad);
			assert_int_equal(hl, 9);
			assert_memory_equal(hp, "127.0.0.1", 9);
			assert_int_equal(pl, 10 + NAMELEN);
			assert_memory_equal(pp, "/vol/vol0/", 10);
			n++;
		}
		assert_false(rp.r.bad);
		assert_int_equal(rp.r.off, rp.r.n);
		assert_true(n > 0 && n < NDIRS);
		/* Cut only when the next record would not have fit. */
		assert_true(rp.len + 4 + 12 + 4 + 10 + NAMELEN >
		    MOUNT_UDP_REPLY);
	}
	fl_log_set_hook(NULL, NULL, FL_LOG_ERR);
	pthread_mutex_lock(&cut_mu);
	assert_int_equal(cut_logged, 1);
	assert_non_null(strstr(cut_msg, "DUMP"));
	assert_non_null(strstr(cut_msg, "127.0.0.1"));
	pthread_mutex_unlock(&cut_mu);

	/* EXPORT of 64 exports whose paths are 1020 bytes long. */
	static char a[256], b[256], c[256], leaf[256];
	static char epath[64][1025];
	struct nfsd_export exps[64];
	const char *names[] = { a, b, c, leaf };
	memset(a, 'a', 255);
	memset(b, 'b', 255);
	memset(c, 'c', 255);
	for (int i = 0; i < 64; i++) {
		memset(leaf, 'e', 242);
		leaf[0] = (char)('0' + i / 10);
		leaf[1] = (char)('0' + i % 10);
		mkdirs(&t, names, 4, epath[i], sizeof(epath[i]));
		assert_int_equal(strlen(epath[i]), 1020);
		exps[i] = t.exp[0];
		exps[i].path = epath[i];
	}
	assert_int_equal(nfsd_set_exports(t.srv, exps, 64), 0);
	xb_call(&x, xid++, TH_MNT_PROG, 3, 5, 0, 0);
	th_rpc_tcp(fd, &x, &rp);
	int ntcp = 0;
	while (rd_u32(&rp.r) == 1 && ntcp <= 64) {
		uint32_t n;
		rd_opaque(&rp.r, &n);
		while (rd_u32(&rp.r) == 1 && !rp.r.bad)
			rd_opaque(&rp.r, &n);
		ntcp++;
	}
	assert_false(rp.r.bad);
	assert_int_equal(ntcp, 64);				/* TCP: all */
	cut_logged = 0;
	fl_log_set_hook(cut_hook, NULL, FL_LOG_INFO);
	xb_call(&x, xid++, TH_MNT_PROG, 3, 5, 0, 0);
	if (!udp_call(u, t.mnt_port, &x, &rp, 3000))
		fail_msg("no reply to an EXPORT of 64 exports over UDP");
	fl_log_set_hook(NULL, NULL, FL_LOG_ERR);
	assert_int_equal(rp.stat, 0);
	assert_true(rp.len <= MOUNT_UDP_REPLY);
	int nudp = 0;
	while (rd_u32(&rp.r) == 1 && nudp <= 64) {
		uint32_t n;
		const uint8_t *p = rd_opaque(&rp.r, &n);
		assert_false(rp.r.bad);
		assert_int_equal(n, 1020);
		assert_memory_equal(p, epath[nudp], n);
		assert_int_equal(rd_u32(&rp.r), 1);	/* its group, whole */
		p = rd_opaque(&rp.r, &n);
		assert_int_equal(n, 1);
		assert_memory_equal(p, "*", 1);
		assert_int_equal(rd_u32(&rp.r), 0);
		nudp++;
	}
	assert_false(rp.r.bad);
	assert_int_equal(rp.r.off, rp.r.n);
	assert_true(nudp > 0 && nudp < 64);
	pthread_mutex_lock(&cut_mu);
	assert_int_equal(cut_logged, 1);
	assert_non_null(strstr(cut_msg, "EXPORT"));
	pthread_mutex_unlock(&cut_mu);
	close(u);
	close(fd);
	th_stop(&t);
}

/*
 * A subdirectory export whose directory was removed after the server
 * started: MNT of it, or of a path below it, is MNT3ERR_NOENT, not a
 * handle that is stale from the start nor MNT3ERR_IO.
 */
static void test_mount_removed_export_dir(void **state)
{
	struct th t;
	struct th_fh h;
	struct wafl_cred rc = { 0 };
	struct wafl_obj vr, d, d2;
	struct wafl_attr at;
	struct wafl_dirwcc dw;
	struct wafl_sattr s = { .set_mode = true, .mode = 0755 };

	th_config(&t);
	assert_int_equal(wafl_root(t.fs->v, &vr), 0);
	assert_int_equal(wafl_mkdir(t.fs->v, &rc, &vr, "sub", &s, &d, &at, &dw),
	    0);
	assert_int_equal(wafl_mkdir(t.fs->v, &rc, &d, "deeper", &s, &d2, &at,
	    &dw), 0);
	t.exp[0].path = "/vol/vol0/sub";
	th_serve(&t);
	int fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0/sub/deeper", &h), 0);
	assert_int_equal(wafl_rmdir(t.fs->v, &rc, &d, "deeper", &dw), 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0/sub/deeper", &h), 2);
	assert_int_equal(wafl_rmdir(t.fs->v, &rc, &vr, "sub", &dw), 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0/sub", &h), 2);
	assert_int_equal(th_mnt(fd, "/vol/vol0/sub/deeper", &h), 2);
	assert_int_equal(th_mnt(fd, "/vol/vol0/sub/", &h), 2);
	close(fd);
	th_stop(&t);
}

static pthread_mutex_t refused_mu = PTHREAD_MUTEX_INITIALIZER;
static char refused_msg[2048];

static void refused_hook(void *arg, enum fl_log_level level,
    const char *subsys, const char *msg)
{
	if (strstr(msg, "refused mount") == NULL)
		return;
	pthread_mutex_lock(&refused_mu);
	snprintf(refused_msg, sizeof(refused_msg), "%s", msg);
	pthread_mutex_unlock(&refused_mu);
}

/*
 * The path of a refused MNT comes from a client nobody admitted: it goes
 * into the log with its control bytes (and others outside printable
 * ASCII) escaped, so it cannot forge log lines or drive a terminal.
 */
static void test_mount_refused_path_logged(void **state)
{
	struct th t;
	struct nfsd_client_rule net10 = { .client = "10.0.0.0/8",
	    .flags = NFSD_RW | NFSD_INSECURE };
	static const char evil[] = "/vol/vol0/a\n2026-12-05T00:00:00.000Z "
	    "nfsd   ERROR forged\x1b[2J\\x\xff";
	uint32_t st = 99;

	start_with(&t, &net10, 1);
	int fd = th_tcp(t.mnt_port, 0);
	refused_msg[0] = '\0';
	fl_log_set_hook(refused_hook, NULL, FL_LOG_INFO);
	assert_int_equal(mnt_raw(fd, 1, evil, sizeof(evil) - 1, &st), 0);
	assert_int_equal(st, 13);
	fl_log_set_hook(NULL, NULL, FL_LOG_ERR);
	pthread_mutex_lock(&refused_mu);
	assert_non_null(strstr(refused_msg, "refused mount of /vol/vol0/a"
	    "\\x0a2026-12-05T00:00:00.000Z nfsd   ERROR forged\\x1b[2J"
	    "\\x5cx\\xff by 127.0.0.1"));
	for (const char *p = refused_msg; *p != '\0'; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	pthread_mutex_unlock(&refused_mu);
	close(fd);
	th_stop(&t);
}

static void test_bad_config(void **state)
{
	struct th t;
	nfsd_t *s = NULL;
	static const char *const bad_paths[] = { "vol/vol0", "/vol/",
		"/vol//x", "/vol/vol0/../x", "/vol/vol0/", "/export/x" };

	th_config(&t);
	for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		t.exp[0].path = bad_paths[i];
		assert_int_equal(nfsd_create(&t.cfg, &s), -EINVAL);
	}
	t.exp[0].path = "/vol/vol0/missing";
	assert_int_equal(nfsd_create(&t.cfg, &s), -ENOENT);
	t.exp[0].path = "/vol/vol0";
	t.rules[0].client = "300.1.2.3/8";
	assert_int_not_equal(nfsd_create(&t.cfg, &s), 0);
	t.rules[0].client = "10.0.0.0/33";
	assert_int_equal(nfsd_create(&t.cfg, &s), -EINVAL);
	t.rules[0].client = "localhost";		/* a host name */
	assert_int_equal(nfsd_create(&t.cfg, &s), 0);
	nfsd_free(s);
	/* Host-name patterns: taken as they are (no lookup before a call),
	 * unless they hold what no host name holds or are too long. */
	static const char *const good_patterns[] = { "*.lab", "node??.lab",
		"local*", "*", "**", "a*b?c-d_e.*" };
	for (size_t i = 0; i < FL_ARRAY_SIZE(good_patterns); i++) {
		t.rules[0].client = good_patterns[i];
		assert_int_equal(nfsd_create(&t.cfg, &s), 0);
		nfsd_free(s);
	}
	char longpat[300];
	memset(longpat, 'a', sizeof(longpat));
	longpat[0] = '*';
	longpat[254] = '\0';				/* 254 bytes */
	static const char *const bad_patterns[] = { "*.la b", "*.lab/24",
		"@group*", "[ab]*" };
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad_patterns); i++) {
		t.rules[0].client = bad_patterns[i];
		assert_int_equal(nfsd_create(&t.cfg, &s), -EINVAL);
	}
	t.rules[0].client = longpat;
	assert_int_equal(nfsd_create(&t.cfg, &s), -EINVAL);
	longpat[253] = '\0';				/* 253: the most */
	assert_int_equal(strlen(t.rules[0].client), 253);
	assert_int_equal(nfsd_create(&t.cfg, &s), 0);
	nfsd_free(s);
	tl_fs_destroy(t.fs);
}

/* A libnfs client writing and reading a file in a loop while the exports
 * are swapped under it (set_exports below). */
struct swap_client {
	struct th *t;
	_Atomic int stop;
	int rounds, errors;
};

static void *swap_client_main(void *arg)
{
	struct swap_client *c = arg;
	struct nfs_context *nfs = th_nfs_mount(c->t, "/vol/vol0", 0, 0, NULL,
	    0);
	char buf[4096], back[4096];

	if (nfs == NULL) {
		c->errors++;
		return NULL;
	}
	memset(buf, 'q', sizeof(buf));
	for (int i = 0; i < 100000 && !atomic_load(&c->stop); i++) {
		struct nfsfh *fh;

		if (nfs_open(nfs, "/swap", O_RDWR | O_CREAT, &fh) != 0) {
			c->errors++;
			break;
		}
		buf[0] = (char)('a' + i % 26);
		if (nfs_pwrite(nfs, fh, 0, sizeof(buf), buf) !=
		    (int)sizeof(buf) ||
		    nfs_pread(nfs, fh, 0, sizeof(back), back) !=
		    (int)sizeof(back) || memcmp(buf, back, sizeof(buf)) != 0)
			c->errors++;
		nfs_close(nfs, fh);
		c->rounds++;
	}
	nfs_destroy_context(nfs);
	return NULL;
}

static void test_set_exports(void **state)
{
	struct th t;
	struct th_fh root, h2;
	uint32_t owner;
	struct nfsd_client_rule open = { .client = "*",
	    .flags = NFSD_RW | NFSD_INSECURE | NFSD_NO_ROOT_SQUASH };
	struct nfsd_client_rule other = { .client = "127.0.0.2",
	    .flags = NFSD_RW | NFSD_INSECURE };
	struct nfsd_client_rule ro = { .client = "127.0.0.1",
	    .flags = NFSD_INSECURE | NFSD_NO_ROOT_SQUASH };

	start_with(&t, &open, 1);
	int fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	assert_int_equal(create_as(fd, &root, "a", 0, &owner), 0);

	/* Another client allowed: the same connection is refused now. */
	struct nfsd_export e = t.exp[0];
	e.rules = &other;
	e.nrules = 1;
	assert_int_equal(nfsd_set_exports(t.srv, &e, 1), 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &h2), 13);
	assert_int_equal(getattr_as(fd, &root, 0), 13);

	/* Read-only for us: reads work, writes are ROFS. */
	e.rules = &ro;
	assert_int_equal(nfsd_set_exports(t.srv, &e, 1), 0);
	assert_int_equal(getattr_as(fd, &root, 0), 0);
	assert_int_equal(create_as(fd, &root, "b", 0, &owner), 30);

	/* A bad list is refused and the old one stays. */
	struct nfsd_export bad = e;
	bad.path = "/vol/vol0/missing";
	assert_int_equal(nfsd_set_exports(t.srv, &bad, 1), -ENOENT);
	bad.path = "/vol/";
	assert_int_equal(nfsd_set_exports(t.srv, &bad, 1), -EINVAL);
	assert_int_equal(getattr_as(fd, &root, 0), 0);

	/* No exports: the handle names no export. */
	assert_int_equal(nfsd_set_exports(t.srv, NULL, 0), 0);
	assert_int_equal(getattr_as(fd, &root, 0), 10001);	/* BADHANDLE */
	assert_int_equal(th_mnt(fd, "/vol/vol0", &h2), 2);	/* NOENT */

	/* Back again: the old handle works, writes too. */
	assert_int_equal(nfsd_set_exports(t.srv, t.exp, 1), 0);
	assert_int_equal(getattr_as(fd, &root, 0), 0);
	assert_int_equal(create_as(fd, &root, "c", 0, &owner), 0);
	close(fd);

	/* Swaps while a client works: no call fails, nothing leaks. */
	struct swap_client c = { .t = &t };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, swap_client_main, &c), 0);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(nfsd_set_exports(t.srv, t.exp, 1), 0);
		struct timespec ts = { 0, 2 * 1000000L };
		nanosleep(&ts, NULL);
	}
	atomic_store(&c.stop, 1);
	pthread_join(th, NULL);
	assert_int_equal(c.errors, 0);
	assert_true(c.rounds > 0);
	th_stop(&t);
}

/* MNT of .snapshot and .snapshot/NAME: the snapshot is mounted read-only. */
static void test_mnt_snapshot(void **state)
{
	struct th t;
	struct th_fh root, sd, snap, f;
	struct th_fattr a;
	uint32_t owner;
	struct wafl_cred rc = { 0 };
	struct wafl_obj vr, o;
	struct wafl_attr at;
	struct wafl_dirwcc dw;
	struct wafl_sattr sa = { .set_mode = true, .mode = 0755 };
	uint64_t id;

	th_start(&t);
	assert_int_equal(wafl_root(t.fs->v, &vr), 0);
	assert_int_equal(wafl_mkdir(t.fs->v, &rc, &vr, "d", &sa, &o, &at, &dw),
	    0);
	assert_int_equal(wafl_create(t.fs->v, &rc, &o, "f", WAFL_UNCHECKED,
	    &sa, 0, &o, &at, &dw), 0);
	assert_int_equal(wafl_snap_create(t.fs->v, "s1", &id), 0);
	int fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0/.snapshot", &sd), 0);
	assert_int_equal(th_lookup(fd, &sd, "s1", NULL, NULL), 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0/.snapshot/s1", &snap), 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0/.snapshot/s1/d", &snap), 0);
	assert_int_equal(th_lookup(fd, &snap, "f", &f, &a), 0);
	assert_int_not_equal(a.fsid, 0);
	assert_int_equal(create_as(fd, &snap, "g", 0, &owner), 30);	/* ROFS */
	assert_int_equal(th_mnt(fd, "/vol/vol0/.snapshot/nope", &snap), 2);
	assert_int_equal(th_mnt(fd, "/vol/vol0/.snapshot/s1/d/f", &snap), 20);
	assert_int_equal(th_mnt(fd, "/vol/vol0/d/.snapshot", &snap), 2);
	close(fd);
	th_stop(&t);
}

/* ------------------------------------------------- host-name patterns */


#define SKIP_UNNAMED(pat) do { \
	if (!tl_loopback_name_pattern(pat, sizeof(pat))) { \
		print_message("127.0.0.1 has no name that resolves back to " \
		    "it here (getent hosts 127.0.0.1): host-name patterns " \
		    "not tested\n"); \
		skip(); \
	} \
} while (0)

static void test_host_pattern_admits_and_refuses(void **state)
{
	struct th t;
	struct th_fh root, h;
	struct nfsd_stats st;
	struct nfs_stat_64 nst;
	uint32_t owner;
	char pat[64], err[256];

	SKIP_UNNAMED(pat);
	struct nfsd_client_rule named = { .client = pat,
	    .flags = NFSD_RW | NFSD_INSECURE | NFSD_NO_ROOT_SQUASH };
	struct nfsd_client_rule invalid = { .client = "*.invalid",
	    .flags = NFSD_RW | NFSD_INSECURE | NFSD_NO_ROOT_SQUASH };

	/* Our name matches: MNT, NFS calls and libnfs are served. */
	start_with(&t, &named, 1);
	int fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	assert_int_equal(getattr_as(fd, &root, 0), 0);
	assert_int_equal(create_as(fd, &root, "a", 0, &owner), 0);
	close(fd);
	struct nfs_context *nfs = th_nfs_mount(&t, "/vol/vol0", 0, 0, err,
	    sizeof(err));
	if (nfs == NULL)
		fail_msg("libnfs mount with rule %s: %s", pat, err);
	assert_int_equal(nfs_stat64(nfs, "/a", &nst), 0);
	nfs_destroy_context(nfs);
	/* One reverse lookup for all of that: the name is kept per address. */
	nfsd_get_stats(t.srv, &st);
	assert_int_equal(st.host_lookups, 1);
	assert_true(st.host_cache_hits >= 4);
	nfsd_free(t.srv);

	/* A pattern our name does not match: MNT3ERR_ACCES, and NFS3ERR_ACCES
	 * for a handle obtained before. */
	t.rules[0] = invalid;
	th_serve(&t);
	fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &h), 13);
	assert_int_equal(getattr_as(fd, &root, 0), 13);
	assert_int_equal(create_as(fd, &root, "b", 0, &owner), 13);
	close(fd);
	assert_null(th_nfs_mount(&t, "/vol/vol0", 0, 0, NULL, 0));
	nfsd_get_stats(t.srv, &st);
	assert_int_equal(st.host_lookups, 1);

	/* Replaced by the matching rule on the running server: served again,
	 * and the name cached before the swap is still used. */
	struct nfsd_export e = t.exp[0];
	e.rules = &named;
	assert_int_equal(nfsd_set_exports(t.srv, &e, 1), 0);
	fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(getattr_as(fd, &root, 0), 0);
	close(fd);
	nfsd_get_stats(t.srv, &st);
	assert_int_equal(st.host_lookups, 1);
	th_stop(&t);
}

/* Rules are tried in order whatever their kind; a pattern that does not
 * match passes the call on to the next rule. */
static void test_host_pattern_first_match(void **state)
{
	struct th t;
	struct th_fh root;
	struct nfsd_stats st;
	uint32_t owner;
	char pat[64], fname[16];
	const uint32_t rw = NFSD_RW | NFSD_INSECURE | NFSD_NO_ROOT_SQUASH;
	const uint32_t ro = NFSD_INSECURE | NFSD_NO_ROOT_SQUASH;

	SKIP_UNNAMED(pat);
	struct {
		struct nfsd_client_rule r[2];
		uint32_t create;		/* nfsstat3 of a CREATE */
	} cases[] = {
		/* The pattern first: it decides (ro). */
		{ { { .client = pat, .flags = ro },
		    { .client = "127.0.0.1", .flags = rw } }, 30 },
		/* The address first: it decides (ro). */
		{ { { .client = "127.0.0.1", .flags = ro },
		    { .client = pat, .flags = rw } }, 30 },
		/* A pattern not matching, then the address (ro). */
		{ { { .client = "*.invalid", .flags = rw },
		    { .client = "127.0.0.1", .flags = ro } }, 30 },
		/* An address not matching, then the pattern (rw). */
		{ { { .client = "10.0.0.0/8", .flags = ro },
		    { .client = pat, .flags = rw } }, 0 },
		/* Neither matches: refused. */
		{ { { .client = "*.invalid", .flags = rw },
		    { .client = "10.0.0.0/8", .flags = rw } }, 13 },
	};

	/* Rules before any pattern cost no lookup. */
	struct nfsd_client_rule first[2] = {
		{ .client = "127.0.0.1", .flags = rw },
		{ .client = "*.invalid", .flags = ro },
	};
	start_with(&t, first, 2);
	int fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	assert_int_equal(create_as(fd, &root, "first", 0, &owner), 0);
	nfsd_get_stats(t.srv, &st);
	assert_int_equal(st.host_lookups, 0);

	for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
		struct nfsd_export e = t.exp[0];
		e.rules = cases[i].r;
		e.nrules = 2;
		assert_int_equal(nfsd_set_exports(t.srv, &e, 1), 0);
		snprintf(fname, sizeof(fname), "f%zu", i);
		uint32_t got = create_as(fd, &root, fname, 0, &owner);
		if (got != cases[i].create)
			fail_msg("rules %s, %s: CREATE gave %u, not %u",
			    cases[i].r[0].client, cases[i].r[1].client, got,
			    cases[i].create);
	}
	close(fd);
	nfsd_free(t.srv);

	/* The name is looked up again once its TTL has passed. */
	t.cfg.host_cache_ttl_ms = 100;
	t.rules[0] = (struct nfsd_client_rule){ .client = pat, .flags = rw };
	t.exp[0].nrules = 1;
	th_serve(&t);
	fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(getattr_as(fd, &root, 0), 0);
	assert_int_equal(getattr_as(fd, &root, 0), 0);
	nfsd_get_stats(t.srv, &st);
	assert_int_equal(st.host_lookups, 1);
	struct timespec ts = { 0, 250 * 1000000L };
	nanosleep(&ts, NULL);
	assert_int_equal(getattr_as(fd, &root, 0), 0);
	nfsd_get_stats(t.srv, &st);
	assert_int_equal(st.host_lookups, 2);
	close(fd);
	th_stop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_denied_host),
		cmocka_unit_test(test_first_match_and_ro),
		cmocka_unit_test(test_squash),
		cmocka_unit_test(test_secure_port),
		cmocka_unit_test(test_subdir_export_and_mount_procs),
		cmocka_unit_test(test_mount_path_with_nul),
		cmocka_unit_test(test_mount_path_longest),
		cmocka_unit_test(test_mount_records_resolved_path),
		cmocka_unit_test(test_mount_list_full),
		cmocka_unit_test(test_mount_list_per_host),
		cmocka_unit_test(test_mount_lists_over_udp),
		cmocka_unit_test(test_mount_removed_export_dir),
		cmocka_unit_test(test_mount_refused_path_logged),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_set_exports),
		cmocka_unit_test(test_mnt_snapshot),
		cmocka_unit_test(test_host_pattern_admits_and_refuses),
		cmocka_unit_test(test_host_pattern_first_match),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
