/*
 * tests/e2e/test_nfs_e2e.c: the appliance end to end.  Every test runs the
 * real programs built next to this runner (build/ or build/asan/): a volume
 * and an export made with filerctl, free loopback ports set with `filerctl
 * config set nfs_port/mount_port` (rpcbind left alone), filerd started in
 * the foreground on a scratch home and stopped by the test.  The clients
 * are independent of the server: libnfs's C API (one context per thread),
 * the nfs-ls / nfs-cp / nfs-cat tools of libnfs-utils, and hand-built RPC
 * (tests/nfsd/th.h) where the exact reply matters (write verifier, a
 * saved handle, a status code).
 *
 *   large_and_sparse   32 MiB through libnfs and nfs-cp, read back after a
 *                      restart; a sparse file with holes and a far offset
 *   concurrent         8 clients writing and reading their own files, one
 *                      shared file (disjoint regions) and one directory
 *   kill9              kill -9 while clients write FILE_SYNC, UNSTABLE +
 *                      COMMIT and make metadata changes: after the restart
 *                      every acknowledged operation is there, the write
 *                      verifier changed, a saved handle still works
 *                      (TCP and UDP), filerctl check is clean
 *   export_rules       denied host (rule for 127.0.0.2, calls from
 *                      127.0.0.1), rules changed while filerd runs, ro
 *                      export (NFS3ERR_ROFS), export removed, SIGHUP
 *   export_host_pattern  a host-name pattern is served, not refused:
 *                      "local*" admits 127.0.0.1 (named localhost),
 *                      "*.invalid" refuses it (MNT3ERR_ACCES), no
 *                      export.refused event
 *   snapshot           .snapshot/NAME after filerctl snap create, through
 *                      libnfs and nfs-cat, read-only
 *   service_changes    vol offline/online (export gone, then the old handle
 *                      works again), nfs_port changed while running, a
 *                      port taken by another program (kept serving on the
 *                      old one; at startup: NFS comes up with the next
 *                      settings change)
 *
 * Traffic stays on 127.0.0.0/8; every loop and wait is bounded; a test
 * that fails still kills its filerd (teardown).
 */
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <nfsc/libnfs.h>

#include "tests/admin/ta.h"
#include "tests/lib/tl_nfs.h"
#include "tests/lib/tl_port.h"
#include "tests/lib/tl_tmpdir.h"
#include "tests/nfsd/th.h"

#define VOL_PATH	"/vol/vol0"
#define CLIENT_TIMEOUT_MS	5000

struct e2e {
	char *dir;
	char home[2048];
	struct ta_daemon d;
	uint16_t nfs_port, mnt_port;
};

/* ------------------------------------------------------------ helpers */

/* A port free for TCP and UDP, its sockets held in fds (tl_port.h). */
static uint16_t free_port(int fds[2])
{
	uint16_t p = tl_free_port(fds);

	if (p == 0)
		fail_msg("no free port");
	return p;
}

static int setup(void **state)
{
	struct e2e *t = calloc(1, sizeof(*t));
	uint16_t ports[2];
	char np[16], mp[16];

	assert_non_null(t);
	t->dir = tl_tmpdir_make(NULL, "filer-e2e");
	snprintf(t->home, sizeof(t->home), "%s/home", t->dir);
	assert_int_equal(tl_free_ports(ports, 2), 0);
	t->nfs_port = ports[0];
	t->mnt_port = ports[1];
	snprintf(np, sizeof(np), "%u", t->nfs_port);
	snprintf(mp, sizeof(mp), "%u", t->mnt_port);
	free(ta_ctl_expect(0, t->home, "vol", "create", "vol0", "--disks", "5",
	    "--parity", "2", "--size", "128M", NULL));
	free(ta_ctl_expect(0, t->home, "config", "set", "nfs_port", np, NULL));
	free(ta_ctl_expect(0, t->home, "config", "set", "mount_port", mp,
	    NULL));
	free(ta_ctl_expect(0, t->home, "config", "set", "nfs_rpcbind", "false",
	    NULL));
	free(ta_ctl_expect(0, t->home, "config", "set", "nfs_threads", "8",
	    NULL));
	*state = t;
	return 0;
}

/* The volume must check clean at the end of every test (offline: filerd
 * has stopped, or is killed here). */
static int teardown(void **state)
{
	struct e2e *t = *state;
	struct ta_out o;

	if (t->d.pid > 0)
		(void)ta_daemon_signal_wait(&t->d, SIGKILL);
	o = ta_ctl(t->home, "check", "vol0", NULL);
	if (o.status != 0)
		fprintf(stderr, "filerctl check vol0: exit %d\n%s%s\n",
		    o.status, o.out, o.err);
	int st = o.status;
	ta_out_free(&o);
	tl_tmpdir_remove(t->dir);
	free(t);
	return st == 0 ? 0 : -1;
}

static void export_open(struct e2e *t)
{
	free(ta_ctl_expect(0, t->home, "export", "add", VOL_PATH, "--client",
	    "127.0.0.1", "--rw", "--squash", "none", "--insecure", NULL));
}

static void daemon_stop_clean(struct e2e *t)
{
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

static void url(const struct e2e *t, char *out, size_t len, const char *path)
{
	snprintf(out, len, "nfs://127.0.0.1%s?nfsport=%u&mountport=%u", path,
	    t->nfs_port, t->mnt_port);
}

/* libnfs mount of path as root; NULL (error in err) on failure. */
static struct nfs_context *cl_mount_err(const struct e2e *t, const char *path,
    char *err, size_t errlen)
{
	return tl_nfs_mount(path, t->nfs_port, t->mnt_port, CLIENT_TIMEOUT_MS,
	    err, errlen);
}

static struct nfs_context *cl_mount(const struct e2e *t, const char *path)
{
	char err[512];
	struct nfs_context *nfs = cl_mount_err(t, path, err, sizeof(err));

	if (nfs == NULL)
		fail_msg("libnfs mount of %s failed: %s", path, err);
	return nfs;
}

/* Deterministic content: byte at absolute offset off of stream seed. */
static uint8_t pat(uint32_t seed, uint64_t off)
{
	uint64_t x = (off >> 3) * 0x9e3779b97f4a7c15ull + seed;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 32;
	return (uint8_t)(x >> ((off & 7) * 8));
}

static void fill(uint8_t *b, size_t n, uint32_t seed, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		b[i] = pat(seed, off + i);
}

static bool check(const uint8_t *b, size_t n, uint32_t seed, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != pat(seed, off + i))
			return false;
	return true;
}

/* Run a shell command line (libnfs-utils tools); exit status, output into
 * out (NUL-terminated, truncated to len). */
static int sh(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int sh(char *out, size_t len, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	FILE *p;
	size_t n = 0;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	assert_non_null(p);
	if (out != NULL && len > 0) {
		n = fread(out, 1, len - 1, p);
		out[n] = '\0';
	}
	{
		char sink[4096];

		while (fread(sink, 1, sizeof(sink), p) > 0)
			;
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void write_local(const char *path, size_t n, uint32_t seed)
{
	uint8_t *b = malloc(n);
	FILE *f = fopen(path, "w");

	assert_non_null(b);
	assert_non_null(f);
	fill(b, n, seed, 0);
	assert_int_equal(fwrite(b, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	free(b);
}

static bool local_matches(const char *path, size_t n, uint32_t seed)
{
	uint8_t *b = malloc(n + 1);
	FILE *f = fopen(path, "r");
	bool ok;

	assert_non_null(b);
	if (f == NULL) {
		free(b);
		return false;
	}
	ok = fread(b, 1, n + 1, f) == n && check(b, n, seed, 0);
	fclose(f);
	free(b);
	return ok;
}

/* ---------------------------------------------------- raw RPC (th.h) */

static uint32_t raw_xid = 0x7e2e0000;

/* MNT + LOOKUP of name in the export root: the file's handle. */
static void raw_handle(const struct e2e *t, const char *name,
    struct th_fh *fh)
{
	struct th_fh root;
	int fd = th_tcp(t->mnt_port, 0);

	assert_int_equal(th_mnt(fd, VOL_PATH, &root), 0);
	close(fd);
	fd = th_tcp(t->nfs_port, 0);
	assert_int_equal(th_lookup(fd, &root, name, fh, NULL), 0);
	close(fd);
}

/* WRITE n bytes at off with stable (0 UNSTABLE, 2 FILE_SYNC); returns the
 * status, the verifier into verf. */
static uint32_t raw_write(const struct e2e *t, const struct th_fh *fh,
    uint64_t off, const uint8_t *data, uint32_t n, uint32_t stable,
    uint8_t verf[8], uint32_t *committed)
{
	static struct xb x;
	static struct th_reply rp;
	int fd = th_tcp(t->nfs_port, 0);
	uint32_t st;

	xb_call(&x, raw_xid++, TH_NFS_PROG, 3, 7, 0, 0);
	xb_fh(&x, fh);
	xb_u64(&x, off);
	xb_u32(&x, n);
	xb_u32(&x, stable);
	xb_opaque(&x, data, n);
	th_rpc_tcp(fd, &x, &rp);
	close(fd);
	assert_int_equal(rp.stat, 0);
	st = rd_u32(&rp.r);
	rd_wcc(&rp.r, NULL, NULL);
	if (st == 0) {
		assert_int_equal(rd_u32(&rp.r), n);
		*committed = rd_u32(&rp.r);
		memcpy(verf, rp.r.p + rp.r.off, 8);
		rd_skip(&rp.r, 8);
		assert_false(rp.r.bad);
	}
	return st;
}

/* GETATTR of a saved handle: status, attributes into a. */
static uint32_t raw_getattr(const struct e2e *t, const struct th_fh *fh,
    struct th_fattr *a)
{
	static struct xb x;
	static struct th_reply rp;
	int fd = th_tcp(t->nfs_port, 0);
	uint32_t st;

	xb_call(&x, raw_xid++, TH_NFS_PROG, 3, 1, 0, 0);
	xb_fh(&x, fh);
	th_rpc_tcp(fd, &x, &rp);
	close(fd);
	assert_int_equal(rp.stat, 0);
	st = rd_u32(&rp.r);
	if (st == 0)
		rd_fattr(&rp.r, a);
	return st;
}

/* MNT from a chosen source address (127.0.0.x): mountstat3. */
static uint32_t raw_mnt_from(const struct e2e *t, const char *src,
    const char *path)
{
	struct sockaddr_in la = { .sin_family = AF_INET };
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons(t->mnt_port) };
	struct th_fh fh;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint32_t st;

	assert_true(fd >= 0);
	inet_pton(AF_INET, src, &la.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&la, sizeof(la)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	st = th_mnt(fd, path, &fh);
	close(fd);
	return st;
}

/* CREATE UNCHECKED of name in the export root: nfsstat3. */
static uint32_t raw_create(const struct e2e *t, const char *name)
{
	static struct xb x;
	struct th_fh root;
	int fd = th_tcp(t->mnt_port, 0);
	uint32_t st;

	assert_int_equal(th_mnt(fd, VOL_PATH, &root), 0);
	close(fd);
	fd = th_tcp(t->nfs_port, 0);
	xb_call(&x, raw_xid++, TH_NFS_PROG, 3, 8, 0, 0);
	xb_fh(&x, &root);
	xb_str(&x, name);
	xb_u32(&x, 0);			/* UNCHECKED */
	xb_u32(&x, 1);
	xb_u32(&x, 0644);
	for (int i = 0; i < 5; i++)
		xb_u32(&x, 0);
	st = th_status(fd, &x);
	close(fd);
	return st;
}

/* -------------------------------------------------------------- tests */

#define BIG_BYTES	(32u << 20)
#define CHUNK		(1u << 20)

static void test_large_and_sparse(void **state)
{
	struct e2e *t = *state;
	struct nfs_context *nfs;
	struct nfsfh *fh;
	struct nfs_stat_64 st;
	uint8_t *b = malloc(CHUNK);
	char u[512], local[2200], back[2200], out[256];

	assert_non_null(b);
	export_open(t);
	ta_daemon_start(&t->d, t->home);
	nfs = cl_mount(t, VOL_PATH);

	/* 32 MiB through the API, 1 MiB at a time. */
	assert_int_equal(nfs_creat(nfs, "/big", 0644, &fh), 0);
	for (uint64_t off = 0; off < BIG_BYTES; off += CHUNK) {
		fill(b, CHUNK, 1, off);
		assert_int_equal(tl_nfs_write_all(nfs, fh, off, b, CHUNK), 0);
	}
	assert_int_equal(nfs_fsync(nfs, fh), 0);
	assert_int_equal(nfs_close(nfs, fh), 0);

	/* Sparse: data at 0, 100 MiB and 3 GiB; holes read as zeros. */
	assert_int_equal(nfs_creat(nfs, "/sparse", 0644, &fh), 0);
	const uint64_t offs[3] = { 0, 100ull << 20, 3ull << 30 };
	for (int i = 0; i < 3; i++) {
		fill(b, 8192, 2, offs[i]);
		assert_int_equal(tl_nfs_write_all(nfs, fh, offs[i], b, 8192),
		    0);
	}
	assert_int_equal(nfs_close(nfs, fh), 0);
	assert_int_equal(nfs_stat64(nfs, "/sparse", &st), 0);
	assert_int_equal(st.nfs_size, (3ull << 30) + 8192);
	assert_true(st.nfs_used < (1u << 20));
	assert_int_equal(nfs_open(nfs, "/sparse", O_RDONLY, &fh), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tl_nfs_read_all(nfs, fh, offs[i], b, 8192), 0);
		assert_true(check(b, 8192, 2, offs[i]));
	}
	assert_int_equal(tl_nfs_read_all(nfs, fh, 50ull << 20, b, 65536), 0);
	for (size_t i = 0; i < 65536; i++)
		assert_int_equal(b[i], 0);
	/* Past EOF: nothing, no error. */
	assert_int_equal(nfs_pread(nfs, fh, (3ull << 30) + 8192, 4096, b), 0);
	assert_int_equal(nfs_close(nfs, fh), 0);
	nfs_destroy_context(nfs);

	/* The tools: nfs-cp in and out, nfs-ls shows the sizes. */
	snprintf(local, sizeof(local), "%s/local.bin", t->dir);
	snprintf(back, sizeof(back), "%s/back.bin", t->dir);
	write_local(local, 6u << 20, 3);
	url(t, u, sizeof(u), VOL_PATH "/viacp");
	assert_int_equal(sh(NULL, 0, "nfs-cp '%s' '%s' 2>&1", local, u), 0);
	assert_int_equal(sh(NULL, 0, "nfs-cp '%s' '%s' 2>&1", u, back), 0);
	assert_true(local_matches(back, 6u << 20, 3));
	url(t, u, sizeof(u), VOL_PATH);
	char ls[4096];
	assert_int_equal(sh(ls, sizeof(ls), "nfs-ls '%s' 2>&1", u), 0);
	assert_non_null(strstr(ls, " 33554432 big"));
	assert_non_null(strstr(ls, " 6291456 viacp"));
	assert_non_null(strstr(ls, " 3221233664 sparse"));

	/* After a restart everything reads back. */
	daemon_stop_clean(t);
	ta_daemon_start(&t->d, t->home);
	nfs = cl_mount(t, VOL_PATH);
	assert_int_equal(nfs_open(nfs, "/big", O_RDONLY, &fh), 0);
	for (uint64_t off = 0; off < BIG_BYTES; off += CHUNK) {
		assert_int_equal(tl_nfs_read_all(nfs, fh, off, b, CHUNK), 0);
		assert_true(check(b, CHUNK, 1, off));
	}
	assert_int_equal(nfs_close(nfs, fh), 0);
	nfs_destroy_context(nfs);
	unlink(back);
	url(t, u, sizeof(u), VOL_PATH "/viacp");
	assert_int_equal(sh(NULL, 0, "nfs-cp '%s' '%s' 2>&1", u, back), 0);
	assert_true(local_matches(back, 6u << 20, 3));
	url(t, u, sizeof(u), VOL_PATH "/sparse");
	assert_int_equal(sh(out, 16, "nfs-cat '%s' 2>/dev/null | head -c 8",
	    u), 0);
	fill(b, 8, 2, 0);
	assert_memory_equal(out, b, 8);
	daemon_stop_clean(t);
	free(b);
}

/* ------------------------------------------------------- concurrency */

#define NCLIENTS	8
#define OWN_BYTES	(1u << 20)
#define SHARED_REGION	(256u << 10)
#define DIR_FILES	40

struct client {
	const struct e2e *t;
	int id;
	pthread_barrier_t *bar;
	char err[256];
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct nfs_context *nfs = cl_mount_err(c->t, VOL_PATH, c->err,
	    sizeof(c->err));
	uint8_t *b = malloc(OWN_BYTES);
	struct nfsfh *fh = NULL;
	char name[64];
	int bar_waits = 0;

#define CFAIL(...) do { snprintf(c->err, sizeof(c->err), __VA_ARGS__); \
	goto out; } while (0)
	if (nfs == NULL)
		goto out;		/* c->err says why */
	if (b == NULL)
		CFAIL("out of memory");
	/* Own file, written in 64 KiB pieces, then read back whole. */
	snprintf(name, sizeof(name), "/own%d", c->id);
	if (nfs_creat(nfs, name, 0644, &fh) != 0)
		CFAIL("creat %s: %s", name, nfs_get_error(nfs));
	for (uint32_t off = 0; off < OWN_BYTES; off += 65536) {
		fill(b, 65536, 100 + (uint32_t)c->id, off);
		if (tl_nfs_write_all(nfs, fh, off, b, 65536) != 0)
			CFAIL("write %s: %s", name, nfs_get_error(nfs));
	}
	nfs_close(nfs, fh);
	fh = NULL;
	/* The shared file: each its own region (the file exists). */
	if (nfs_open(nfs, "/shared", O_RDWR, &fh) != 0)
		CFAIL("open shared: %s", nfs_get_error(nfs));
	fill(b, SHARED_REGION, 200, (uint64_t)c->id * SHARED_REGION);
	if (tl_nfs_write_all(nfs, fh, (uint64_t)c->id * SHARED_REGION, b,
	    SHARED_REGION) != 0 || nfs_fsync(nfs, fh) != 0)
		CFAIL("write shared: %s", nfs_get_error(nfs));
	/* Files in one directory. */
	for (int i = 0; i < DIR_FILES; i++) {
		struct nfsfh *f;

		snprintf(name, sizeof(name), "/dir/c%d-%d", c->id, i);
		if (nfs_creat(nfs, name, 0644, &f) != 0)
			CFAIL("creat %s: %s", name, nfs_get_error(nfs));
		nfs_close(nfs, f);
	}
	pthread_barrier_wait(c->bar);
	bar_waits++;
	/* Everyone has written: read the shared file whole, and own again. */
	for (int k = 0; k < NCLIENTS; k++) {
		if (tl_nfs_read_all(nfs, fh, (uint64_t)k * SHARED_REGION, b,
		    SHARED_REGION) != 0)
			CFAIL("read shared: %s", nfs_get_error(nfs));
		if (!check(b, SHARED_REGION, 200, (uint64_t)k * SHARED_REGION))
			CFAIL("shared region %d differs", k);
	}
	nfs_close(nfs, fh);
	fh = NULL;
	snprintf(name, sizeof(name), "/own%d", c->id);
	if (nfs_open(nfs, name, O_RDONLY, &fh) != 0 ||
	    tl_nfs_read_all(nfs, fh, 0, b, OWN_BYTES) != 0)
		CFAIL("read %s: %s", name, nfs_get_error(nfs));
	if (!check(b, OWN_BYTES, 100 + (uint32_t)c->id, 0))
		CFAIL("%s differs", name);
out:
	if (bar_waits == 0)
		pthread_barrier_wait(c->bar);
	if (fh != NULL)
		nfs_close(nfs, fh);
	if (nfs != NULL)
		nfs_destroy_context(nfs);
	free(b);
	return NULL;
#undef CFAIL
}

static void test_concurrent(void **state)
{
	struct e2e *t = *state;
	struct client c[NCLIENTS];
	pthread_t th[NCLIENTS];
	pthread_barrier_t bar;
	struct nfs_context *nfs;
	struct nfsfh *fh;
	struct nfsdir *d;
	struct nfsdirent *de;
	int n = 0;

	export_open(t);
	ta_daemon_start(&t->d, t->home);
	nfs = cl_mount(t, VOL_PATH);
	assert_int_equal(nfs_creat(nfs, "/shared", 0644, &fh), 0);
	assert_int_equal(nfs_close(nfs, fh), 0);
	assert_int_equal(nfs_mkdir(nfs, "/dir"), 0);
	pthread_barrier_init(&bar, NULL, NCLIENTS);
	for (int i = 0; i < NCLIENTS; i++) {
		c[i] = (struct client){ .t = t, .id = i, .bar = &bar };
		assert_int_equal(pthread_create(&th[i], NULL, client_main,
		    &c[i]), 0);
	}
	for (int i = 0; i < NCLIENTS; i++) {
		pthread_join(th[i], NULL);
		if (c[i].err[0] != '\0')
			fail_msg("client %d: %s", i, c[i].err);
	}
	pthread_barrier_destroy(&bar);
	assert_int_equal(nfs_opendir(nfs, "/dir", &d), 0);
	while ((de = nfs_readdir(nfs, d)) != NULL)
		if (de->name[0] == 'c')
			n++;
	nfs_closedir(nfs, d);
	assert_int_equal(n, NCLIENTS * DIR_FILES);
	nfs_destroy_context(nfs);
	daemon_stop_clean(t);
}

/* ------------------------------------------------------------ kill -9 */

#define REC		4096u
#define MAX_RECS	100000

enum kind { K_FILESYNC, K_COMMIT, K_META };

struct writer {
	const struct e2e *t;
	enum kind kind;
	_Atomic int *stop;
	_Atomic long acked;	/* records (or metadata steps) acknowledged */
	char err[256];
};

/* Metadata step i: even = create m<i/2>, odd = rename it to r<i/2>;
 * every 16th create is a mkdir d<i/2> instead. */
static void meta_names(long i, char *a, char *b, size_t len, bool *dir)
{
	long k = i / 2;

	*dir = k % 16 == 0;
	snprintf(a, len, "/meta/%s%ld", *dir ? "dm" : "m", k);
	snprintf(b, len, "/meta/%s%ld", *dir ? "dr" : "r", k);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct nfs_context *nfs = cl_mount_err(w->t, VOL_PATH, w->err,
	    sizeof(w->err));
	struct nfsfh *fh = NULL;
	uint8_t b[REC];

	if (nfs == NULL)
		return NULL;
	nfs_set_autoreconnect(nfs, 0);		/* fail fast at the kill */
	/* O_SYNC: libnfs sends every WRITE with stable = FILE_SYNC. */
	if (w->kind == K_FILESYNC &&
	    nfs_open(nfs, "/sync", O_RDWR | O_SYNC, &fh) != 0)
		goto out;
	if (w->kind == K_COMMIT && nfs_open(nfs, "/unstable", O_RDWR, &fh) != 0)
		goto out;
	for (long i = 0; i < MAX_RECS && !atomic_load(w->stop); i++) {
		if (w->kind == K_META) {
			char a[64], bn[64];
			bool dir;
			int rc;

			meta_names(i, a, bn, sizeof(a), &dir);
			if (i % 2 == 1) {
				rc = nfs_rename(nfs, a, bn);
			} else if (dir) {
				rc = nfs_mkdir(nfs, a);
			} else {
				struct nfsfh *f;

				rc = nfs_creat(nfs, a, 0644, &f);
				if (rc == 0)
					nfs_close(nfs, f);
			}
			if (rc != 0)
				break;
			atomic_store(&w->acked, i + 1);
			continue;
		}
		fill(b, REC, w->kind == K_FILESYNC ? 11 : 12,
		    (uint64_t)i * REC);
		if (tl_nfs_write_all(nfs, fh, (uint64_t)i * REC, b, REC) != 0)
			break;
		if (w->kind == K_FILESYNC)
			atomic_store(&w->acked, i + 1);
		else if (i % 8 == 7 && nfs_fsync(nfs, fh) == 0)
			atomic_store(&w->acked, i + 1);
		else if (i % 8 == 7)
			break;
	}
out:
	/* The server is gone: closing may fail, nothing is flushed then. */
	if (fh != NULL)
		nfs_close(nfs, fh);
	nfs_destroy_context(nfs);
	return NULL;
}

static void test_kill9(void **state)
{
	struct e2e *t = *state;
	struct nfs_context *nfs;
	struct nfsfh *fh;
	struct th_fh hsync, hraw;
	struct th_fattr a;
	uint8_t verf1[8], verf2[8], b[REC];
	uint32_t committed;
	_Atomic int stop = 0;
	struct writer w[3] = {
		{ .t = t, .kind = K_FILESYNC, .stop = &stop },
		{ .t = t, .kind = K_COMMIT, .stop = &stop },
		{ .t = t, .kind = K_META, .stop = &stop },
	};
	pthread_t th[3];

	export_open(t);
	ta_daemon_start(&t->d, t->home);
	nfs = cl_mount(t, VOL_PATH);
	assert_int_equal(nfs_creat(nfs, "/sync", 0644, &fh), 0);
	assert_int_equal(nfs_close(nfs, fh), 0);
	assert_int_equal(nfs_creat(nfs, "/unstable", 0644, &fh), 0);
	assert_int_equal(nfs_close(nfs, fh), 0);
	assert_int_equal(nfs_creat(nfs, "/raw", 0644, &fh), 0);
	assert_int_equal(nfs_close(nfs, fh), 0);
	assert_int_equal(nfs_mkdir(nfs, "/meta"), 0);
	nfs_destroy_context(nfs);

	/* Handles saved before the crash; a FILE_SYNC write's verifier. */
	raw_handle(t, "sync", &hsync);
	raw_handle(t, "raw", &hraw);
	fill(b, REC, 13, 0);
	assert_int_equal(raw_write(t, &hraw, 0, b, REC, 2, verf1, &committed),
	    0);
	assert_int_equal(committed, 2);

	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, writer_main,
		    &w[i]), 0);
	/* Let them work (bounded), then kill -9 in the middle of it. */
	for (int i = 0; i < 200; i++) {
		ta_sleep_ms(10);
		if (i >= 60 && atomic_load(&w[0].acked) > 16 &&
		    atomic_load(&w[1].acked) > 16 &&
		    atomic_load(&w[2].acked) > 16)
			break;
	}
	assert_int_equal(ta_daemon_signal_wait(&t->d, SIGKILL), 128 + SIGKILL);
	atomic_store(&stop, 1);
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		if (w[i].err[0] != '\0')
			fail_msg("writer %d: %s", i, w[i].err);
	}
	long acked_sync = atomic_load(&w[0].acked);
	long acked_commit = atomic_load(&w[1].acked);
	long acked_meta = atomic_load(&w[2].acked);
	print_message("acknowledged before kill -9: %ld FILE_SYNC records, "
	    "%ld committed UNSTABLE records, %ld metadata steps\n",
	    acked_sync, acked_commit, acked_meta);
	assert_true(acked_sync > 0 && acked_commit > 0 && acked_meta > 0);

	/* Restart: NVLOG replay. */
	ta_daemon_start(&t->d, t->home);

	/* Old handles work; the FILE_SYNC write is there; new verifier. */
	assert_int_equal(raw_getattr(t, &hsync, &a), 0);
	assert_true(a.size >= (uint64_t)acked_sync * REC);
	assert_int_equal(raw_getattr(t, &hraw, &a), 0);
	assert_int_equal(a.size, REC);
	assert_int_equal(raw_write(t, &hraw, REC, b, REC, 0, verf2,
	    &committed), 0);
	assert_memory_not_equal(verf1, verf2, 8);
	/* The saved handle over UDP too. */
	{
		static struct xb x;
		static struct th_reply rp;
		int fd = th_udp();

		xb_call(&x, raw_xid++, TH_NFS_PROG, 3, 1, 0, 0);
		xb_fh(&x, &hsync);
		th_rpc_udp(fd, t->nfs_port, &x, &rp);
		close(fd);
		assert_int_equal(rp.stat, 0);
		assert_int_equal(rd_u32(&rp.r), 0);
	}

	nfs = cl_mount(t, VOL_PATH);
	assert_int_equal(nfs_open(nfs, "/raw", O_RDONLY, &fh), 0);
	assert_int_equal(tl_nfs_read_all(nfs, fh, 0, b, REC), 0);
	assert_true(check(b, REC, 13, 0));
	assert_int_equal(nfs_close(nfs, fh), 0);
	const struct { const char *path; long n; uint32_t seed; } files[] = {
		{ "/sync", acked_sync, 11 }, { "/unstable", acked_commit, 12 },
	};
	for (int f = 0; f < 2; f++) {
		assert_int_equal(nfs_open(nfs, files[f].path, O_RDONLY, &fh), 0);
		for (long i = 0; i < files[f].n; i++) {
			assert_int_equal(tl_nfs_read_all(nfs, fh,
			    (uint64_t)i * REC, b, REC), 0);
			if (!check(b, REC, files[f].seed, (uint64_t)i * REC))
				fail_msg("%s: acknowledged record %ld of %ld "
				    "lost", files[f].path, i, files[f].n);
		}
		assert_int_equal(nfs_close(nfs, fh), 0);
	}
	/* Metadata: every acknowledged step, the one in flight either way. */
	for (long i = 0; i < acked_meta; i += 2) {
		char m[64], r[64];
		bool dir;
		struct nfs_stat_64 st;
		bool have_m, have_r;

		meta_names(i, m, r, sizeof(m), &dir);
		have_m = nfs_stat64(nfs, m, &st) == 0;
		have_r = nfs_stat64(nfs, r, &st) == 0;
		if (i + 2 <= acked_meta) {		/* renamed */
			if (have_m || !have_r)
				fail_msg("step %ld: %s %s, %s %s", i, m,
				    have_m ? "present" : "absent", r,
				    have_r ? "present" : "absent");
		} else {		/* made; the rename in flight */
			assert_true(have_m != have_r);
		}
	}
	nfs_destroy_context(nfs);

	/* The file system checks clean while filerd runs, and offline
	 * after a clean stop (teardown). */
	char *js = ta_ctl_expect(0, t->home, "--json", "check", "vol0", NULL);
	ta_json_eq(js, "$.check.errors", "0");
	free(js);
	daemon_stop_clean(t);
}

/* ------------------------------------------------------ export rules */

static void test_export_rules(void **state)
{
	struct e2e *t = *state;
	struct nfs_context *nfs;
	struct nfsfh *fh;
	char err[512], u[512], out[512];

	/* Allowed: 127.0.0.2 only.  We call from 127.0.0.1. */
	free(ta_ctl_expect(0, t->home, "export", "add", VOL_PATH, "--client",
	    "127.0.0.2", "--rw", "--squash", "none", "--insecure", NULL));
	ta_daemon_start(&t->d, t->home);
	assert_int_equal(raw_mnt_from(t, "127.0.0.1", VOL_PATH), 13);
	assert_int_equal(raw_mnt_from(t, "127.0.0.2", VOL_PATH), 0);
	assert_null(cl_mount_err(t, VOL_PATH, err, sizeof(err)));
	url(t, u, sizeof(u), VOL_PATH);
	assert_int_not_equal(sh(out, sizeof(out), "nfs-ls '%s' 2>&1", u), 0);

	/* Changed while filerd runs: 127.0.0.1 read-only. */
	free(ta_ctl_expect(0, t->home, "export", "add", VOL_PATH, "--client",
	    "127.0.0.1", "--ro", "--squash", "none", "--insecure", NULL));
	nfs = cl_mount(t, VOL_PATH);
	assert_int_equal(raw_create(t, "f"), 30);		/* ROFS */
	assert_int_equal(nfs_creat(nfs, "/f", 0644, &fh), -EROFS);
	assert_int_not_equal(sh(out, sizeof(out), "nfs-cp /etc/hostname "
	    "'%s' 2>&1", (url(t, u, sizeof(u), VOL_PATH "/h"), u)), 0);
	nfs_destroy_context(nfs);

	/* rw: writes work (the same connection setup, no restart). */
	free(ta_ctl_expect(0, t->home, "export", "modify", VOL_PATH,
	    "--client", "127.0.0.1", "--rw", NULL));
	assert_int_equal(raw_create(t, "f"), 0);
	url(t, u, sizeof(u), VOL_PATH "/h");
	assert_int_equal(sh(out, sizeof(out), "nfs-cp /etc/hostname '%s' 2>&1",
	    u), 0);

	/* A secure rule refuses our unprivileged source port... */
	free(ta_ctl_expect(0, t->home, "export", "modify", VOL_PATH,
	    "--client", "127.0.0.1", "--secure", "yes", NULL));
	{
		int fd = th_tcp(t->mnt_port, 0);
		struct th_fh fh0;

		assert_int_equal(th_mnt(fd, VOL_PATH, &fh0), 13);
		close(fd);
	}
	/* ... and root_squash maps root to nobody (the file is 0644 root's). */
	free(ta_ctl_expect(0, t->home, "export", "modify", VOL_PATH,
	    "--client", "127.0.0.1", "--secure", "no", "--squash", "root",
	    NULL));
	nfs = cl_mount(t, VOL_PATH);
	assert_int_equal(nfs_open(nfs, "/h", O_WRONLY, &fh), -EACCES);
	nfs_destroy_context(nfs);

	/* Removed: the path is no export any more. */
	free(ta_ctl_expect(0, t->home, "export", "remove", VOL_PATH, NULL));
	assert_int_equal(raw_mnt_from(t, "127.0.0.1", VOL_PATH), 2);
	/* SIGHUP re-reads the configuration and keeps serving. */
	export_open(t);
	kill(t->d.pid, SIGHUP);
	ta_sleep_ms(200);
	nfs = cl_mount(t, VOL_PATH);
	assert_int_equal(nfs_open(nfs, "/h", O_RDONLY, &fh), 0);
	assert_int_equal(nfs_close(nfs, fh), 0);
	nfs_destroy_context(nfs);
	daemon_stop_clean(t);
}


static void test_export_host_pattern(void **state)
{
	struct e2e *t = *state;
	struct nfs_context *nfs;
	struct nfsfh *fh;
	char spec[64], err[512];
	char *js;

	if (!tl_loopback_name_pattern(spec, sizeof(spec))) {
		print_message("127.0.0.1 has no name that resolves back to it "
		    "here (getent hosts 127.0.0.1): host-name patterns not "
		    "tested\n");
		skip();
	}
	/* Our name matches: served (MNT, libnfs, a write). */
	free(ta_ctl_expect(0, t->home, "export", "add", VOL_PATH, "--client",
	    spec, "--rw", "--squash", "none", "--insecure", NULL));
	ta_daemon_start(&t->d, t->home);
	assert_int_equal(raw_mnt_from(t, "127.0.0.1", VOL_PATH), 0);
	nfs = cl_mount(t, VOL_PATH);
	assert_int_equal(nfs_creat(nfs, "/w", 0644, &fh), 0);
	assert_int_equal(nfs_close(nfs, fh), 0);
	nfs_destroy_context(nfs);

	/* Only a pattern we do not match, changed while filerd runs: the
	 * export is there (ACCES, not NOENT) and refuses us. */
	free(ta_ctl_expect(0, t->home, "export", "remove", VOL_PATH, NULL));
	free(ta_ctl_expect(0, t->home, "export", "add", VOL_PATH, "--client",
	    "*.invalid", "--rw", "--squash", "none", "--insecure", NULL));
	assert_int_equal(raw_mnt_from(t, "127.0.0.1", VOL_PATH), 13);
	assert_null(cl_mount_err(t, VOL_PATH, err, sizeof(err)));

	/* Neither export was refused. */
	js = ta_ctl_expect(0, t->home, "--json", "events", NULL);
	assert_null(strstr(js, "\"export.refused\""));
	free(js);
	/* The NFS counters: calls served, our name looked up (once, then
	 * from the cache), nothing deferred; the MNTs and the CREATE were
	 * acknowledged at once (quick_acks). */
	js = ta_ctl_expect(0, t->home, "--json", "stats", NULL);
	assert_true(ta_json_long(js, "$.nfs.calls") > 0);
	assert_true(ta_json_long(js, "$.nfs.quick_acks") >= 1);
	assert_true(ta_json_long(js, "$.nfs.reply_batches") >= 0);
	assert_true(ta_json_long(js, "$.nfs.replies") > 0);
	assert_true(ta_json_long(js, "$.nfs.connections_accepted") >= 3);
	assert_true(ta_json_long(js, "$.nfs.host_lookups") >= 1);
	assert_true(ta_json_long(js, "$.nfs.host_cache_hits") >= 1);
	assert_int_equal(ta_json_long(js, "$.nfs.host_busy"), 0);
	free(js);
	daemon_stop_clean(t);
}

/* ----------------------------------------------------------- snapshot */

static void test_snapshot(void **state)
{
	struct e2e *t = *state;
	struct nfs_context *nfs;
	struct nfsfh *fh;
	uint8_t b[8192];
	char u[512], out[8200];

	export_open(t);
	ta_daemon_start(&t->d, t->home);
	nfs = cl_mount(t, VOL_PATH);
	assert_int_equal(nfs_mkdir(nfs, "/d"), 0);
	assert_int_equal(nfs_creat(nfs, "/d/f", 0644, &fh), 0);
	fill(b, sizeof(b), 21, 0);
	assert_int_equal(tl_nfs_write_all(nfs, fh, 0, b, sizeof(b)), 0);
	assert_int_equal(nfs_close(nfs, fh), 0);
	free(ta_ctl_expect(0, t->home, "snap", "create", "vol0", "before",
	    NULL));
	/* Changed and removed after the snapshot. */
	assert_int_equal(nfs_open(nfs, "/d/f", O_RDWR, &fh), 0);
	fill(b, sizeof(b), 22, 0);
	assert_int_equal(tl_nfs_write_all(nfs, fh, 0, b, sizeof(b)), 0);
	assert_int_equal(nfs_close(nfs, fh), 0);
	assert_int_equal(nfs_creat(nfs, "/new", 0644, &fh), 0);
	assert_int_equal(nfs_close(nfs, fh), 0);

	/* Through the active mount: .snapshot/before/d/f is the old data. */
	assert_int_equal(nfs_open(nfs, "/.snapshot/before/d/f", O_RDONLY, &fh),
	    0);
	assert_int_equal(tl_nfs_read_all(nfs, fh, 0, b, sizeof(b)), 0);
	assert_true(check(b, sizeof(b), 21, 0));
	assert_int_equal(nfs_close(nfs, fh), 0);
	{
		struct nfs_stat_64 st;

		assert_int_not_equal(nfs_stat64(nfs, "/.snapshot/before/new",
		    &st), 0);
	}
	/* libnfs's open asks ACCESS, which grants no MODIFY here. */
	int orc = nfs_open(nfs, "/.snapshot/before/d/f", O_RDWR, &fh);
	assert_true(orc == -EACCES || orc == -EROFS);
	assert_int_equal(nfs_creat(nfs, "/.snapshot/before/x", 0644, &fh),
	    -EROFS);
	nfs_destroy_context(nfs);

	/* The tools, by path: nfs-ls of .snapshot, nfs-cat of the file. */
	url(t, u, sizeof(u), VOL_PATH "/.snapshot");
	assert_int_equal(sh(out, sizeof(out), "nfs-ls '%s' 2>&1", u), 0);
	assert_non_null(strstr(out, "before"));
	url(t, u, sizeof(u), VOL_PATH "/.snapshot/before/d/f");
	assert_int_equal(sh(out, sizeof(out), "nfs-cat '%s' 2>/dev/null", u),
	    0);
	assert_true(check((const uint8_t *)out, sizeof(b), 21, 0));
	/* After a restart too. */
	daemon_stop_clean(t);
	ta_daemon_start(&t->d, t->home);
	assert_int_equal(sh(out, sizeof(out), "nfs-cat '%s' 2>/dev/null", u),
	    0);
	assert_true(check((const uint8_t *)out, sizeof(b), 21, 0));
	daemon_stop_clean(t);
}

/* ------------------------------------------- the service follows filerd */

/*
 * Batches of eight 1 MiB UNSTABLE WRITEs in flight on one connection, with
 * nothing sent between a batch's calls and its replies; dirty_max_bytes
 * 1M, so each batch pushes the volume over its dirty-data wall.  Every
 * reply must come without a later operation to release it: a WRITE whose
 * writer looked at the dirty total just before a CP froze once waited for
 * a next CP that nothing brought (about 6 batches in 100 were held).  The
 * timer CP is pushed far out, so only the server's own logic can answer.
 */
#define WALL_BATCHES	100
/* A batch takes milliseconds on an idle machine, and up to seconds when
 * other runners share its CPUs and disk; a held reply waits for the timer
 * CP, ten minutes out. */
#define WALL_WAIT_MS	30000
#define WALL_GAP_MS	100

static void test_write_replies_at_the_wall(void **state)
{
	struct e2e *t = *state;
	static struct xb x;
	static struct th_reply rp;
	struct th_fh fh[8];
	uint8_t *data = malloc(CHUNK), buf[4096];

	assert_non_null(data);
	memset(data, 0x33, CHUNK);
	free(ta_ctl_expect(0, t->home, "config", "set", "dirty_max_bytes",
	    "1M", NULL));
	/* No timer CP to release a held reply by chance. */
	free(ta_ctl_expect(0, t->home, "config", "set", "cp_interval_ms",
	    "600000", NULL));
	export_open(t);
	ta_daemon_start(&t->d, t->home);
	for (int i = 0; i < 8; i++) {
		char name[16];
		snprintf(name, sizeof(name), "wall%d", i);
		assert_int_equal(raw_create(t, name), 0);
		raw_handle(t, name, &fh[i]);
	}
	int fd = th_tcp(t->nfs_port, 0);
	for (int b = 0; b < WALL_BATCHES; b++) {
		for (int i = 0; i < 8; i++) {
			xb_call(&x, raw_xid++, TH_NFS_PROG, 3, 7, 0, 0);
			xb_fh(&x, &fh[i]);
			xb_u64(&x, 0);
			xb_u32(&x, CHUNK);
			xb_u32(&x, 0);			/* UNSTABLE */
			xb_opaque(&x, data, CHUNK);
			th_send_record(fd, &x);
		}
		for (int i = 0; i < 8; i++) {
			ssize_t n = th_recv_record(fd, buf, sizeof(buf),
			    WALL_WAIT_MS);
			if (n <= 0)
				fail_msg("batch %d: %d of 8 WRITE replies "
				    "missing after %d ms", b, 8 - i,
				    WALL_WAIT_MS);
			memcpy(rp.buf, buf, (size_t)n);
			rp.len = n;
			th_parse_reply(&rp);
			assert_int_equal(rp.stat, 0);
			assert_int_equal(rd_u32(&rp.r), 0);	/* NFS3_OK */
		}
		/* Idle: the CP thread finishes, and the next batch's first
		 * CP freezes among its writes. */
		ta_sleep_ms(WALL_GAP_MS);
	}
	close(fd);
	free(data);
	daemon_stop_clean(t);
}

static bool port_answers(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	assert_true(fd >= 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static void set_port(struct e2e *t, const char *key, uint16_t port)
{
	char v[16];

	snprintf(v, sizeof(v), "%u", port);
	free(ta_ctl_expect(0, t->home, "config", "set", key, v, NULL));
}

static void test_service_changes(void **state)
{
	struct e2e *t = *state;
	struct nfs_context *nfs;
	struct nfsfh *fh;
	struct th_fh h;
	struct th_fattr a;
	int hold[2], spare[2];
	char *js;

	export_open(t);
	ta_daemon_start(&t->d, t->home);
	nfs = cl_mount(t, VOL_PATH);
	assert_int_equal(nfs_creat(nfs, "/f", 0644, &fh), 0);
	assert_int_equal(nfs_close(nfs, fh), 0);
	nfs_destroy_context(nfs);
	raw_handle(t, "f", &h);

	/* A volume going offline takes its export along; back online, the
	 * old handle works again (the key lives in the file system). */
	free(ta_ctl_expect(0, t->home, "vol", "offline", "vol0", NULL));
	assert_int_equal(raw_getattr(t, &h, &a), 10001);	/* BADHANDLE */
	assert_int_equal(raw_mnt_from(t, "127.0.0.1", VOL_PATH), 2);
	free(ta_ctl_expect(0, t->home, "vol", "online", "vol0", NULL));
	assert_int_equal(raw_getattr(t, &h, &a), 0);

	/* New ports: the server moves (the handle still works there). */
	uint16_t old_nfs = t->nfs_port;
	t->nfs_port = free_port(spare);
	close(spare[0]);
	close(spare[1]);
	set_port(t, "nfs_port", t->nfs_port);
	assert_false(port_answers(old_nfs));
	assert_int_equal(raw_getattr(t, &h, &a), 0);
	nfs = cl_mount(t, VOL_PATH);
	nfs_destroy_context(nfs);

	/* A port held by someone else: the setting is stored, the server
	 * stays where it was and says why. */
	uint16_t taken = free_port(hold);
	assert_int_equal(listen(hold[0], 4), 0);
	set_port(t, "nfs_port", taken);
	assert_int_equal(raw_getattr(t, &h, &a), 0);
	js = ta_ctl_expect(0, t->home, "--json", "events", NULL);
	assert_non_null(strstr(js, "\"service.failed\""));
	free(js);

	/* Taken at startup: filerd serves the rest and NFS comes up with
	 * the next settings change once the port is free. */
	daemon_stop_clean(t);
	ta_daemon_start(&t->d, t->home);
	assert_true(port_answers(taken));		/* our socket */
	close(hold[0]);
	close(hold[1]);
	t->nfs_port = taken;
	assert_false(port_answers(taken));
	free(ta_ctl_expect(0, t->home, "config", "set", "nfs_threads", "4",
	    NULL));
	assert_true(port_answers(taken));
	assert_int_equal(raw_getattr(t, &h, &a), 0);
	daemon_stop_clean(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_large_and_sparse, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kill9, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_replies_at_the_wall,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_export_rules, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_export_host_pattern,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_service_changes, setup,
		    teardown),
	};

	ta_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
