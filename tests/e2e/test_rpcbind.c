/*
 * tests/e2e/test_rpcbind.c: filerd and rpcbind.  The runner moves itself
 * into a private network namespace (loopback only) and mount namespace
 * with a tmpfs on /run, so the rpcbind it starts there (Debian's, `rpcbind
 * -f`) and the ports filerd takes (the default 2049 and 20048 among them)
 * are its own: nothing host-wide is seen or touched.  That needs root; as
 * another user, or without rpcbind installed, every test is skipped and
 * the reason printed.
 *
 *   default_ports     rpcbind runs, default settings: NFS v3 and MOUNT v3
 *                     registered on tcp and udp at 2049 and 20048
 *                     (`rpcinfo -p`, libtirpc's rpcb_getaddr), the NULL
 *                     procedure answers through rpcbind (`rpcinfo -t/-u`),
 *                     libnfs mounts an nfs:// URL without ports (it asks
 *                     the portmapper) and writes and reads a file; a clean
 *                     stop unregisters all four
 *   configured_ports  nfs_port / mount_port set: registered there, a stale
 *                     registration of another port replaced
 *   no_rpcbind        rpcbind not running: filerd serves on its ports
 *                     anyway (libnfs with nfsport= / mountport=) and logs
 *                     that it could not register
 *   rpcbind_off       nfs_rpcbind false: nothing registered although
 *                     rpcbind runs, and the log says so
 *
 * Every wait is bounded; a failed test still stops its filerd and rpcbind
 * (teardown).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <rpc/rpc.h>
#include <rpc/rpcb_clnt.h>

#include "tests/admin/ta.h"
#include "tests/lib/tl_netns.h"
#include "tests/lib/tl_nfs.h"
#include "tests/lib/tl_tmpdir.h"

#define VOL_PATH	"/vol/vol0"
#define NFS_PROG	100003u
#define MOUNT_PROG	100005u
#define CLIENT_TIMEOUT_MS	5000

static const char *rpcbind_prog, *rpcinfo_prog;
static char skip_why[256];	/* non-empty: every test is skipped */

struct rb {
	char *dir;
	char home[2048];
	struct ta_daemon d;
	pid_t rpcbind;
};

/* ---------------------------------------------------------- namespace */

/* Private network (loopback up) and mount namespace with its own /run
 * (rpcbind's socket and lock); on failure skip_why says why. */
static void enter_namespaces(void)
{
	static const char *const rb[] = { "/usr/sbin/rpcbind", "/sbin/rpcbind",
	    NULL };
	static const char *const ri[] = { "/usr/sbin/rpcinfo", "/sbin/rpcinfo",
	    "/usr/bin/rpcinfo", NULL };

	for (int i = 0; rb[i] != NULL && rpcbind_prog == NULL; i++)
		if (access(rb[i], X_OK) == 0)
			rpcbind_prog = rb[i];
	for (int i = 0; ri[i] != NULL && rpcinfo_prog == NULL; i++)
		if (access(ri[i], X_OK) == 0)
			rpcinfo_prog = ri[i];
	if (rpcbind_prog == NULL || rpcinfo_prog == NULL) {
		snprintf(skip_why, sizeof(skip_why), "rpcbind or rpcinfo not "
		    "installed (Debian package rpcbind; make installs it)");
		return;
	}
	if (geteuid() != 0) {
		snprintf(skip_why, sizeof(skip_why), "not root: the test runs "
		    "its own rpcbind in a private network namespace");
		return;
	}
	(void)tl_netns_enter(skip_why, sizeof(skip_why));
}

/* ------------------------------------------------------------ helpers */

/* Does something accept TCP connections on 127.0.0.1:port? */
static bool tcp_listening(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	assert_true(fd >= 0);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static void rpcbind_start(struct rb *t)
{
	char log[2200];

	snprintf(log, sizeof(log), "%s/rpcbind.log", t->dir);
	t->rpcbind = fork();
	assert_true(t->rpcbind >= 0);
	if (t->rpcbind == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execl(rpcbind_prog, "rpcbind", "-f", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		if (tcp_listening(111) && access("/run/rpcbind.sock", F_OK) == 0)
			return;
		if (waitpid(t->rpcbind, NULL, WNOHANG) == t->rpcbind) {
			t->rpcbind = 0;
			fail_msg("rpcbind exited at startup (see %s)", log);
		}
		ta_sleep_ms(50);
	}
	fail_msg("rpcbind did not listen on 127.0.0.1:111 within 10 s");
}

static void rpcbind_stop(struct rb *t)
{
	int st;

	if (t->rpcbind <= 0)
		return;
	kill(t->rpcbind, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(t->rpcbind, &st, WNOHANG) == t->rpcbind) {
			t->rpcbind = 0;
			return;
		}
		ta_sleep_ms(50);
	}
	kill(t->rpcbind, SIGKILL);
	waitpid(t->rpcbind, &st, 0);
	t->rpcbind = 0;
}

/* rpcinfo args... (NULL-terminated), 20 s at most; output and exit status
 * (rpcinfo's stderr with its stdout). */
static struct ta_out rpcinfo(const char *a, ...)
{
	const char *argv[16] = { "timeout", "20", rpcinfo_prog };
	struct ta_out o = { -1, NULL, NULL };
	size_t len = 0;
	int n = 3, p[2], st;
	va_list ap;

	va_start(ap, a);
	for (const char *s = a; s != NULL && n < 15; s = va_arg(ap,
	    const char *))
		argv[n++] = s;
	va_end(ap);
	argv[n] = NULL;
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		execvp("timeout", (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	ta_append(&o.out, &len, "", 0);
	for (;;) {
		char buf[4096];
		ssize_t k = read(p[0], buf, sizeof(buf));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		ta_append(&o.out, &len, buf, (size_t)k);
	}
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	o.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return o;
}

/* Is "prog vers proto port" a line of `rpcinfo -p` output? */
static bool pmap_has(const char *out, uint32_t prog, uint32_t vers,
    const char *proto, uint16_t port)
{
	char line[256];

	for (const char *s = out; *s != '\0';) {
		const char *e = strchr(s, '\n');
		size_t n = e != NULL ? (size_t)(e - s) : strlen(s);
		unsigned long p, v, po;
		char pr[16];

		snprintf(line, sizeof(line), "%.*s", (int)n, s);
		if (sscanf(line, "%lu %lu %15s %lu", &p, &v, pr, &po) == 4 &&
		    p == prog && v == vers && strcmp(pr, proto) == 0 &&
		    (port == 0 || po == port))
			return true;
		s += n + (e != NULL);
	}
	return false;
}

/*
 * libtirpc's rpcbind client calls run in a child process, which answers
 * with its exit status: they leave small allocations behind that are not
 * ours to free (a leak checker would fail this runner for them).
 */
static int in_child(int (*fn)(const void *), const void *arg)
{
	int st;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn(arg));
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

struct getaddr_arg {
	uint32_t prog;
	const char *netid;
	int fd;			/* the port goes here, 2 bytes */
};

static int getaddr_child(const void *p)
{
	const struct getaddr_arg *a = p;
	struct netconfig *nc = getnetconfigent(a->netid);
	struct sockaddr_storage ss;
	struct netbuf nb = { .maxlen = sizeof(ss), .buf = &ss };
	uint8_t port[2] = { 0, 0 };

	if (nc == NULL)
		return 1;
	if (rpcb_getaddr(a->prog, 3, nc, &nb, "127.0.0.1") &&
	    ((struct sockaddr *)&ss)->sa_family == AF_INET)
		memcpy(port, &((struct sockaddr_in *)&ss)->sin_port, 2);
	return write(a->fd, port, 2) == 2 ? 0 : 1;
}

/* The port rpcbind gives for prog v3 on netid ("tcp"/"udp"), through
 * libtirpc's rpcb_getaddr; 0 if not registered. */
static uint16_t rpcb_port(uint32_t prog, const char *netid)
{
	struct getaddr_arg a = { .prog = prog, .netid = netid };
	int p[2];
	uint16_t port = 0;

	assert_int_equal(pipe(p), 0);
	a.fd = p[1];
	assert_int_equal(in_child(getaddr_child, &a), 0);
	assert_int_equal(read(p[0], &port, 2), 2);
	close(p[0]);
	close(p[1]);
	return ntohs(port);
}

/* Register NFS v3 over tcp at 127.0.0.1 port 999 (a stale entry). */
static int stale_child(const void *unused)
{
	struct netconfig *nc = getnetconfigent("tcp");
	struct netbuf *nb;
	bool ok;

	if (nc == NULL)
		return 1;
	nb = uaddr2taddr(nc, "127.0.0.1.3.231");
	if (nb == NULL)
		return 1;
	ok = rpcb_set(NFS_PROG, 3, nc, nb);
	return ok ? 0 : 1;
}

/* All four registrations at these ports, seen by rpcinfo -p and by
 * rpcb_getaddr; the NULL procedure answers through rpcbind. */
static void check_registered(uint16_t nfs_port, uint16_t mnt_port)
{
	static const char *const protos[] = { "tcp", "udp" };
	struct ta_out o = rpcinfo("-p", "127.0.0.1", NULL);

	if (o.status != 0)
		fail_msg("rpcinfo -p: exit %d\n%s", o.status, o.out);
	for (int i = 0; i < 2; i++) {
		if (!pmap_has(o.out, NFS_PROG, 3, protos[i], nfs_port) ||
		    !pmap_has(o.out, MOUNT_PROG, 3, protos[i], mnt_port))
			fail_msg("rpcinfo -p lacks NFS v3 at %u or MOUNT v3 at "
			    "%u over %s:\n%s", nfs_port, mnt_port, protos[i],
			    o.out);
		assert_int_equal(rpcb_port(NFS_PROG, protos[i]), nfs_port);
		assert_int_equal(rpcb_port(MOUNT_PROG, protos[i]), mnt_port);
	}
	ta_out_free(&o);
	static const char *const calls[][3] = {
		{ "-t", "nfs", "3" }, { "-u", "nfs", "3" },
		{ "-t", "mountd", "3" }, { "-u", "mountd", "3" },
	};
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		o = rpcinfo(calls[i][0], "127.0.0.1", calls[i][1], calls[i][2],
		    NULL);
		if (o.status != 0 || strstr(o.out, "ready and waiting") == NULL)
			fail_msg("rpcinfo %s 127.0.0.1 %s %s: exit %d\n%s",
			    calls[i][0], calls[i][1], calls[i][2], o.status,
			    o.out);
		ta_out_free(&o);
	}
}

/* None of NFS and MOUNT registered (rpcbind itself still answers). */
static void check_unregistered(void)
{
	struct ta_out o = rpcinfo("-p", "127.0.0.1", NULL);

	if (o.status != 0)
		fail_msg("rpcinfo -p: exit %d\n%s", o.status, o.out);
	if (pmap_has(o.out, NFS_PROG, 3, "tcp", 0) ||
	    pmap_has(o.out, NFS_PROG, 3, "udp", 0) ||
	    pmap_has(o.out, MOUNT_PROG, 3, "tcp", 0) ||
	    pmap_has(o.out, MOUNT_PROG, 3, "udp", 0))
		fail_msg("still registered after filerd stopped:\n%s", o.out);
	assert_true(pmap_has(o.out, 100000, 2, "tcp", 111));
	ta_out_free(&o);
	assert_int_equal(rpcb_port(NFS_PROG, "tcp"), 0);
	assert_int_equal(rpcb_port(MOUNT_PROG, "udp"), 0);
}

/* Mount url with libnfs, write a file, read it back. */
static void nfs_roundtrip(const char *url, const char *name)
{
	char path[128], buf[64], err[600];
	struct nfs_context *nfs = tl_nfs_mount_url(url, CLIENT_TIMEOUT_MS, err,
	    sizeof(err));
	struct nfsfh *fh;
	const char msg[] = "through the portmapper\n";

	if (nfs == NULL)
		fail_msg("libnfs %s", err);
	snprintf(path, sizeof(path), "/%s", name);
	assert_int_equal(nfs_creat(nfs, path, 0644, &fh), 0);
	assert_int_equal(nfs_write(nfs, fh, sizeof(msg) - 1, msg),
	    (int)sizeof(msg) - 1);
	assert_int_equal(nfs_close(nfs, fh), 0);
	assert_int_equal(nfs_open(nfs, path, O_RDONLY, &fh), 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(nfs_read(nfs, fh, sizeof(buf), buf),
	    (int)sizeof(msg) - 1);
	assert_string_equal(buf, msg);
	assert_int_equal(nfs_close(nfs, fh), 0);
	nfs_destroy_context(nfs);
}

/* Does filerd's log contain s? */
static bool log_has(const struct rb *t, const char *s)
{
	FILE *f = fopen(t->d.log, "r");
	char line[2048];
	bool found = false;

	while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, s) != NULL;
	if (f != NULL)
		fclose(f);
	return found;
}

/* log_has, or fail with filerd's log printed. */
static void assert_log_has(const struct rb *t, const char *s)
{
	char line[2048];
	FILE *f;

	if (log_has(t, s))
		return;
	print_error("filerd's log (%s) has no \"%s\":\n", t->d.log, s);
	f = fopen(t->d.log, "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		print_error("  %s", line);
	if (f != NULL)
		fclose(f);
	fail();
}

static void set_ports(struct rb *t, uint16_t nfs_port, uint16_t mnt_port)
{
	char np[16], mp[16];

	snprintf(np, sizeof(np), "%u", nfs_port);
	snprintf(mp, sizeof(mp), "%u", mnt_port);
	free(ta_ctl_expect(0, t->home, "config", "set", "nfs_port", np, NULL));
	free(ta_ctl_expect(0, t->home, "config", "set", "mount_port", mp,
	    NULL));
}

/* ------------------------------------------------------------- tests */

static int setup(void **state)
{
	struct rb *t;

	if (skip_why[0] != '\0') {
		*state = NULL;
		return 0;
	}
	t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->dir = tl_tmpdir_make(NULL, "filer-rpcbind");
	snprintf(t->home, sizeof(t->home), "%s/home", t->dir);
	free(ta_ctl_expect(0, t->home, "vol", "create", "vol0", "--disks", "4",
	    "--parity", "1", "--size", "64M", NULL));
	free(ta_ctl_expect(0, t->home, "export", "add", VOL_PATH, "--client",
	    "127.0.0.1", "--rw", "--squash", "none", "--insecure", NULL));
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct rb *t = *state;

	if (t == NULL)
		return 0;
	if (t->d.pid > 0)
		(void)ta_daemon_signal_wait(&t->d, SIGKILL);
	rpcbind_stop(t);
	tl_tmpdir_remove(t->dir);
	free(t);
	return 0;
}

#define SKIP_UNLESS_READY(t) do {					\
	if ((t) == NULL) {						\
		fprintf(stderr, "skipped: %s\n", skip_why);		\
		skip();							\
	}								\
} while (0)

static void test_default_ports(void **state)
{
	struct rb *t = *state;

	SKIP_UNLESS_READY(t);
	rpcbind_start(t);
	ta_daemon_start(&t->d, t->home);
	check_registered(2049, 20048);
	assert_log_has(t, "registered with rpcbind");
	nfs_roundtrip("nfs://127.0.0.1" VOL_PATH, "default");
	assert_int_equal(ta_daemon_stop(&t->d), 0);
	check_unregistered();
}

static void test_configured_ports(void **state)
{
	struct rb *t = *state;

	SKIP_UNLESS_READY(t);
	set_ports(t, 3049, 30048);
	rpcbind_start(t);
	/* A stale registration (a server that died without unregistering)
	 * is replaced. */
	assert_int_equal(in_child(stale_child, NULL), 0);
	assert_int_equal(rpcb_port(NFS_PROG, "tcp"), 999);

	ta_daemon_start(&t->d, t->home);
	check_registered(3049, 30048);
	nfs_roundtrip("nfs://127.0.0.1" VOL_PATH, "configured");
	assert_int_equal(ta_daemon_stop(&t->d), 0);
	check_unregistered();
}

static void test_no_rpcbind(void **state)
{
	struct rb *t = *state;
	struct ta_out o;

	SKIP_UNLESS_READY(t);
	/* Below the kernel's ephemeral range (32768 up), where rpcbind's
	 * and the clients' own sockets could hold a port first. */
	set_ports(t, 4049, 24048);
	assert_false(tcp_listening(111));
	ta_daemon_start(&t->d, t->home);
	assert_log_has(t, "rpcbind is not running");
	assert_log_has(t, "nfsport=/mountport=");
	o = rpcinfo("-p", "127.0.0.1", NULL);
	assert_int_not_equal(o.status, 0);
	ta_out_free(&o);
	nfs_roundtrip("nfs://127.0.0.1" VOL_PATH "?nfsport=4049&mountport="
	    "24048", "norpcbind");
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

static void test_rpcbind_off(void **state)
{
	struct rb *t = *state;

	SKIP_UNLESS_READY(t);
	set_ports(t, 5049, 25048);
	free(ta_ctl_expect(0, t->home, "config", "set", "nfs_rpcbind", "false",
	    NULL));
	rpcbind_start(t);
	ta_daemon_start(&t->d, t->home);
	assert_log_has(t, "rpcbind not used");
	check_unregistered();
	nfs_roundtrip("nfs://127.0.0.1" VOL_PATH "?nfsport=5049&mountport="
	    "25048", "off");
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_default_ports, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_configured_ports, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_rpcbind, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rpcbind_off, setup,
		    teardown),
	};

	ta_init();
	enter_namespaces();
	if (skip_why[0] != '\0')
		fprintf(stderr, "test_rpcbind: every test is skipped: %s\n",
		    skip_why);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
