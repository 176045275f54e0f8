/*
 * tests/e2e/test_demo.c: what `make run` and `make demo-mirror` do
 * (admin/demo.sh, admin/demo_mirror.sh), run as a user runs them: the
 * script in a process group of its own, its printout read, the commands it
 * prints run as printed (libnfs-utils' nfs-ls / nfs-cp / nfs-cat, filerctl)
 * through /bin/sh, and SIGINT sent to the whole group as Ctrl-C sends it.
 *
 *   make_run      a fresh home: the volume is made, the printed commands
 *                 copy a file in and out and list a snapshot, a second
 *                 start on the same home is refused, Ctrl-C stops filerd
 *                 cleanly, and a second run serves the same data without
 *                 making the volume again
 *   demo_mirror   two fresh homes: the printed source and secondary URLs,
 *                 a file copied in on the source and a snapshot made as
 *                 printed reach the secondary, which refuses writes;
 *                 Ctrl-C stops both filerds; a second run resumes the
 *                 relationship in sync with the data in place
 *
 * The homes are scratch directories; their NFS, MOUNT and mirror ports are
 * set to free ones before the first run (the scripts keep configured ports
 * that are free) and rpcbind is left alone.  The one printed path outside
 * the home (nfs-cp's copy out to /tmp) is redirected into the home.  Every
 * wait is bounded; a failing test kills the script's process group.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/admin/ta.h"
#include "tests/lib/tl_port.h"
#include "tests/lib/tl_tmpdir.h"

#define START_TIMEOUT_MS	120000
#define STOP_TIMEOUT_MS		60000
#define CMD_TIMEOUT_S		30

static char srcdir[2048];		/* the tree holding admin/demo.sh */

/* A script running in a process group of its own, its output collected
 * by a thread (so neither it nor the filerds it starts block on a full
 * pipe). */
struct demo {
	pid_t pid;			/* also the process group */
	int fd;
	pthread_t reader;
	pthread_mutex_t mu;
	char *out;
	size_t len;
	bool eof;
	int status;			/* once reaped; -1 before */
};

static void *demo_reader(void *arg)
{
	struct demo *d = arg;
	char buf[4096];

	for (;;) {
		ssize_t n = read(d->fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		pthread_mutex_lock(&d->mu);
		if (n <= 0) {
			d->eof = true;
			pthread_mutex_unlock(&d->mu);
			return NULL;
		}
		ta_append(&d->out, &d->len, buf, (size_t)n);
		pthread_mutex_unlock(&d->mu);
	}
}

/* bash SCRIPT BUILD HOME... with stdout and stderr into the collector. */
static void demo_start(struct demo *d, const char *script, ...)
{
	const char *argv[8];
	char path[PATH_MAX];
	int n = 0, p[2];
	va_list ap;

	memset(d, 0, sizeof(*d));
	d->status = -1;
	pthread_mutex_init(&d->mu, NULL);
	ta_append(&d->out, &d->len, "", 0);
	snprintf(path, sizeof(path), "%s/%s", srcdir, script);
	argv[n++] = "bash";
	argv[n++] = path;
	argv[n++] = ta_bindir;
	va_start(ap, script);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < 7;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	if (pipe(p) != 0)
		abort();
	d->pid = fork();
	if (d->pid < 0)
		abort();
	if (d->pid == 0) {
		setpgid(0, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		unsetenv("FILER_HOME");
		execv("/bin/bash", (char *const *)argv);
		_exit(127);
	}
	setpgid(d->pid, d->pid);
	close(p[1]);
	d->fd = p[0];
	if (pthread_create(&d->reader, NULL, demo_reader, d) != 0)
		abort();
}

static char *demo_output(struct demo *d)
{
	pthread_mutex_lock(&d->mu);
	char *s = strdup(d->out);
	pthread_mutex_unlock(&d->mu);
	if (s == NULL)
		abort();
	return s;
}

/* Has the script exited?  Reaps it once. */
static bool demo_exited(struct demo *d)
{
	int st;

	if (d->status >= 0)
		return true;
	if (waitpid(d->pid, &st, WNOHANG) != d->pid)
		return false;
	d->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return true;
}

/* Wait until the script exited and everything it printed was read; its
 * exit status, or -1 if that did not happen in ms. */
static int demo_wait_exit(struct demo *d, long ms)
{
	for (long waited = 0; waited < ms; waited += 50) {
		pthread_mutex_lock(&d->mu);
		bool eof = d->eof;
		pthread_mutex_unlock(&d->mu);
		if (demo_exited(d) && eof)
			return d->status;
		ta_sleep_ms(50);
	}
	return -1;
}

/* Wait until the output holds marker; false if the script exits first or
 * the time runs out (the output is printed for the failure). */
static bool demo_wait_for(struct demo *d, const char *marker, long ms)
{
	for (long waited = 0; waited < ms; waited += 50) {
		char *s = demo_output(d);
		bool found = strstr(s, marker) != NULL;

		if (found) {
			free(s);
			return true;
		}
		if (demo_exited(d)) {
			(void)demo_wait_exit(d, 5000);	/* its last output */
			free(s);
			s = demo_output(d);
			found = strstr(s, marker) != NULL;
			if (!found)
				fprintf(stderr, "script exited (%d) before "
				    "\"%s\":\n%s\n", d->status, marker, s);
			free(s);
			return found;
		}
		free(s);
		ta_sleep_ms(50);
	}
	char *s = demo_output(d);
	fprintf(stderr, "no \"%s\" in %ld ms:\n%s\n", marker, ms, s);
	free(s);
	return false;
}

/* Ctrl-C: SIGINT to the process group; as demo_wait_exit. */
static int demo_interrupt(struct demo *d)
{
	(void)kill(-d->pid, SIGINT);
	return demo_wait_exit(d, STOP_TIMEOUT_MS);
}

/* Kill what is left, collect the reader, free.  Safe to call twice. */
static void demo_end(struct demo *d)
{
	if (d->pid <= 0)
		return;
	if (!demo_exited(d)) {
		(void)kill(-d->pid, SIGKILL);
		while (!demo_exited(d))
			ta_sleep_ms(10);
	}
	/* The filerds of demo_mirror.sh may outlive a killed script. */
	(void)kill(-d->pid, SIGKILL);
	pthread_join(d->reader, NULL);
	close(d->fd);
	free(d->out);
	pthread_mutex_destroy(&d->mu);
	d->pid = 0;
}

/* /bin/sh -c cmd, bounded by timeout(1); stdout returned (owned), exit
 * status in *st. */
static char *sh(const char *cmd, int *st)
{
	char *full, *out = NULL;
	size_t len = 0;
	char buf[4096];
	size_t n;

	/* cmd's single quotes end and restart the outer quoting: '\'' . */
	char *q = NULL;
	size_t ql = 0;
	ta_append(&q, &ql, "", 0);
	for (const char *c = cmd; *c != '\0'; c++) {
		if (*c == '\'')
			ta_append(&q, &ql, "'\\''", 4);
		else
			ta_append(&q, &ql, c, 1);
	}
	if (asprintf(&full, "timeout %d sh -c '%s'", CMD_TIMEOUT_S,
	    q) < 0)
		abort();
	free(q);
	FILE *f = popen(full, "r");
	if (f == NULL)
		abort();
	ta_append(&out, &len, "", 0);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		ta_append(&out, &len, buf, n);
	int rc = pclose(f);
	*st = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
	free(full);
	return out;
}

static char *sh_ok(const char *cmd)
{
	int st;
	char *out = sh(cmd, &st);

	if (st != 0)
		fprintf(stderr, "command failed (%d): %s\n%s\n", st, cmd, out);
	assert_int_equal(st, 0);
	return out;
}

/* The printed line (trimmed) that starts with prefix and contains has
 * (NULL: anything); NULL if none.  Owned. */
static char *printed_line(const char *text, const char *prefix,
    const char *has)
{
	for (const char *l = text; l != NULL && *l != '\0';) {
		const char *e = strchr(l, '\n');
		size_t n = e != NULL ? (size_t)(e - l) : strlen(l);
		const char *s = l;

		while (s < l + n && (*s == ' ' || *s == '\t'))
			s++;
		size_t m = n - (size_t)(s - l);
		char *line = strndup(s, m);
		if (line == NULL)
			abort();
		if (strncmp(line, prefix, strlen(prefix)) == 0 &&
		    (has == NULL || strstr(line, has) != NULL))
			return line;
		free(line);
		l = e != NULL ? e + 1 : NULL;
	}
	return NULL;
}

/* Replace the first "from" in s with "to" (s owned, returned owned). */
static char *replace(char *s, const char *from, const char *to)
{
	char *p = strstr(s, from), *r;

	if (p == NULL)
		return s;
	if (asprintf(&r, "%.*s%s%s", (int)(p - s), s, to,
	    p + strlen(from)) < 0)
		abort();
	free(s);
	return r;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *out = NULL;
	size_t len = 0;
	char buf[4096];
	size_t n;

	if (f == NULL)
		return NULL;
	ta_append(&out, &len, "", 0);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		ta_append(&out, &len, buf, n);
	fclose(f);
	return out;
}

/* Free ports for nfs, mount (and mirror) in home, rpcbind left alone. */
static void set_ports(const char *home, bool mirror)
{
	uint16_t p[3];
	char v[16];

	assert_int_equal(tl_free_ports(p, 3), 0);
	snprintf(v, sizeof(v), "%u", p[0]);
	free(ta_ctl_expect(0, home, "config", "set", "nfs_port", v, NULL));
	snprintf(v, sizeof(v), "%u", p[1]);
	free(ta_ctl_expect(0, home, "config", "set", "mount_port", v, NULL));
	if (mirror) {
		snprintf(v, sizeof(v), "%u", p[2]);
		free(ta_ctl_expect(0, home, "config", "set", "mirror_port", v,
		    NULL));
	}
	free(ta_ctl_expect(0, home, "config", "set", "nfs_rpcbind", "false",
	    NULL));
}

static bool running(const char *home)
{
	struct ta_out o = ta_ctl(home, "stats", NULL);
	bool up = o.status == 0;

	ta_out_free(&o);
	return up;
}

struct fx {
	char *dir;
	struct demo d;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	fx->dir = tl_tmpdir_make(NULL, "filer-demo");
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	demo_end(&fx->d);
	tl_tmpdir_remove(fx->dir);
	free(fx);
	return 0;
}

#define STOP_MARK	"Ctrl-C stops filerd"
#define READY_MARK	"filerd ready:"
#define STOP2_MARK	"Ctrl-C stops both filerds"

static void test_make_run(void **state)
{
	struct fx *fx = *state;
	char home[PATH_MAX], copy[PATH_MAX];
	char *want = slurp("/etc/os-release");

	assert_non_null(want);
	tl_path(home, sizeof(home), fx->dir, "demo");
	tl_path(copy, sizeof(copy), fx->dir, "os-release.copy");
	assert_int_equal(mkdir(home, 0755), 0);
	set_ports(home, false);

	demo_start(&fx->d, "admin/demo.sh", home, NULL);
	assert_true(demo_wait_for(&fx->d, STOP_MARK, START_TIMEOUT_MS));
	/* The banner comes first, then filerd's log, which says when it
	 * serves. */
	assert_true(demo_wait_for(&fx->d, READY_MARK, START_TIMEOUT_MS));
	char *text = demo_output(&fx->d);
	assert_non_null(strstr(text, "creating the demo volume vol0"));

	/* The four libnfs-utils lines, in the order printed. */
	char *ls = printed_line(text, "nfs-ls ", NULL);
	char *cp_in = printed_line(text, "nfs-cp /etc/os-release ", NULL);
	char *cp_out = printed_line(text, "nfs-cp 'nfs://", NULL);
	char *cat = printed_line(text, "nfs-cat ", NULL);
	assert_non_null(ls);
	assert_non_null(cp_in);
	assert_non_null(cp_out);
	assert_non_null(cat);
	assert_non_null(strstr(cp_out, "/tmp/os-release.copy"));
	cp_out = replace(cp_out, "/tmp/os-release.copy", copy);

	free(sh_ok(ls));
	free(sh_ok(cp_in));
	free(sh_ok(cp_out));
	char *got = slurp(copy);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
	got = sh_ok(cat);
	assert_string_equal(got, want);
	free(got);
	got = sh_ok(ls);
	assert_non_null(strstr(got, "os-release"));
	free(got);

	/* The mount line names the ports the listing used. */
	char *mnt = printed_line(text, "mount -t nfs", NULL);
	assert_non_null(mnt);
	assert_non_null(strstr(mnt, "vers=3"));
	assert_non_null(strstr(mnt, "127.0.0.1:/vol/vol0"));
	free(mnt);

	/* filerctl lines: vol status, and snap create then the listing of
	 * the snapshot after "# then:". */
	char *st = printed_line(text, "/", "vol status vol0");
	assert_non_null(st);
	got = sh_ok(st);
	assert_non_null(strstr(got, "vol0"));
	free(got);
	free(st);
	char *snap = printed_line(text, "/", "snap create vol0 demo1");
	assert_non_null(snap);
	char *then = strstr(snap, "# then:");
	assert_non_null(then);
	*then = '\0';
	char *snap_ls = strdup(then + strlen("# then:"));
	free(sh_ok(snap));
	got = sh_ok(snap_ls);
	assert_non_null(strstr(got, "os-release"));
	free(got);
	free(snap_ls);
	free(snap);

	/* A second `make run` on the running home is refused. */
	{
		struct demo d2;

		demo_start(&d2, "admin/demo.sh", home, NULL);
		assert_int_equal(demo_wait_exit(&d2, 30000), 1);
		char *o2 = demo_output(&d2);
		assert_non_null(strstr(o2, "already runs"));
		free(o2);
		demo_end(&d2);
	}
	assert_true(running(home));

	/* Ctrl-C: a clean stop. */
	assert_int_equal(demo_interrupt(&fx->d), 0);
	free(text);
	text = demo_output(&fx->d);
	assert_non_null(strstr(text, "filerd stopped"));
	free(text);
	demo_end(&fx->d);
	assert_false(running(home));

	/* Again: the same volume and data, nothing made anew. */
	demo_start(&fx->d, "admin/demo.sh", home, NULL);
	assert_true(demo_wait_for(&fx->d, STOP_MARK, START_TIMEOUT_MS));
	assert_true(demo_wait_for(&fx->d, READY_MARK, START_TIMEOUT_MS));
	text = demo_output(&fx->d);
	assert_null(strstr(text, "creating the demo volume"));
	char *cat2 = printed_line(text, "nfs-cat ", NULL);
	assert_non_null(cat2);
	got = sh_ok(cat2);
	assert_string_equal(got, want);
	free(got);
	free(cat2);
	assert_int_equal(demo_interrupt(&fx->d), 0);
	demo_end(&fx->d);
	assert_false(running(home));

	free(text);
	free(ls);
	free(cp_in);
	free(cp_out);
	free(cat);
	free(want);
}

/* The URL printed after label ("source (read-write):"); owned. */
static char *printed_url(const char *text, const char *label)
{
	char *line = printed_line(text, label, NULL);

	assert_non_null(line);
	char *u = strstr(line, "nfs://");
	assert_non_null(u);
	char *r = strdup(u);
	free(line);
	return r;
}

/* nfs-cat of url/name until it prints want; false after timeout_ms. */
static bool cat_until(const char *url, const char *name, const char *want,
    long timeout_ms)
{
	char *q = strchr(url, '?');
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "nfs-cat '%.*s/%s%s'", (int)(q - url), url,
	    name, q);
	for (long waited = 0; waited < timeout_ms; waited += 200) {
		int st;
		char *got = sh(cmd, &st);
		bool ok = st == 0 && strcmp(got, want) == 0;

		free(got);
		if (ok)
			return true;
		ta_sleep_ms(200);
	}
	return false;
}

static void test_demo_mirror(void **state)
{
	struct fx *fx = *state;
	char src[PATH_MAX], dst[PATH_MAX], cmd[8192];
	char *want = slurp("/etc/os-release");

	assert_non_null(want);
	tl_path(src, sizeof(src), fx->dir, "src");
	tl_path(dst, sizeof(dst), fx->dir, "dst");
	assert_int_equal(mkdir(src, 0755), 0);
	assert_int_equal(mkdir(dst, 0755), 0);
	set_ports(src, true);

	demo_start(&fx->d, "admin/demo_mirror.sh", src, dst, NULL);
	assert_true(demo_wait_for(&fx->d, STOP2_MARK, START_TIMEOUT_MS));
	char *text = demo_output(&fx->d);
	assert_non_null(strstr(text, "creating the demo volume vol0"));
	assert_non_null(strstr(text, "creating the destination volume vol0"));
	char *surl = printed_url(text, "source (read-write):");
	char *durl = printed_url(text, "secondary (read-only):");
	assert_string_not_equal(surl, durl);
	/* The source's URL is printed first. */
	assert_true(strstr(text, surl) < strstr(text, durl));

	/* As printed: copy in on the source, a snapshot (a CP now), read
	 * on the secondary. */
	char *cp_in = printed_line(text, "nfs-cp /etc/os-release ", NULL);
	char *snap = printed_line(text, "/", "snap create vol0 demo-");
	char *dcat = printed_line(text, "nfs-cat ", NULL);
	assert_non_null(cp_in);
	assert_non_null(snap);
	assert_non_null(dcat);
	free(sh_ok(cp_in));
	free(sh_ok(snap));
	bool seen = false;
	for (int i = 0; i < 150 && !seen; i++) {
		int st;
		char *got = sh(dcat, &st);

		seen = st == 0 && strcmp(got, want) == 0;
		free(got);
		if (!seen)
			ta_sleep_ms(200);
	}
	assert_true(seen);

	/* The secondary is read-only. */
	{
		char *q = strchr(durl, '?');
		int st;

		snprintf(cmd, sizeof(cmd), "nfs-cp /etc/os-release "
		    "'%.*s/written-on-secondary%s'", (int)(q - durl), durl, q);
		free(sh(cmd, &st));
		assert_int_not_equal(st, 0);
	}

	/* The printed status lines work and say in-sync. */
	snprintf(cmd, sizeof(cmd), "%s/filerctl --home %s mirror status",
	    ta_bindir, src);
	assert_non_null(strstr(text, cmd));
	char *got = sh_ok(cmd);
	assert_non_null(strstr(got, "in-sync"));
	free(got);
	snprintf(cmd, sizeof(cmd), "%s/filerctl --home %s mirror status",
	    ta_bindir, dst);
	assert_non_null(strstr(text, cmd));
	got = sh_ok(cmd);
	assert_non_null(strstr(got, "in-sync"));
	free(got);

	/* Ctrl-C stops both.  (The filerds get the SIGINT too, so the
	 * script's own "stopping both filerds" may not come first.) */
	assert_int_equal(demo_interrupt(&fx->d), 0);
	demo_end(&fx->d);
	assert_false(running(src));
	assert_false(running(dst));
	free(text);

	/* Again: the relationship resumes, no new volumes, the data there. */
	demo_start(&fx->d, "admin/demo_mirror.sh", src, dst, NULL);
	assert_true(demo_wait_for(&fx->d, STOP2_MARK, START_TIMEOUT_MS));
	text = demo_output(&fx->d);
	assert_null(strstr(text, "creating the"));
	free(durl);
	durl = printed_url(text, "secondary (read-only):");
	assert_true(cat_until(durl, "os-release", want, 30000));
	snprintf(cmd, sizeof(cmd), "%s/filerctl --home %s --json mirror "
	    "status vol0", ta_bindir, dst);
	got = sh_ok(cmd);
	assert_non_null(strstr(got, "\"state\": \"in-sync\""));
	free(got);
	assert_int_equal(demo_interrupt(&fx->d), 0);
	demo_end(&fx->d);
	assert_false(running(src));
	assert_false(running(dst));

	free(text);
	free(surl);
	free(durl);
	free(cp_in);
	free(snap);
	free(dcat);
	free(want);
}

/* The source tree: the first directory above the build directory that
 * holds admin/demo.sh. */
static void find_srcdir(void)
{
	snprintf(srcdir, sizeof(srcdir), "%s", ta_bindir);
	for (;;) {
		char p[PATH_MAX + 32];

		snprintf(p, sizeof(p), "%s/admin/demo.sh", srcdir);
		if (access(p, R_OK) == 0)
			return;
		char *s = strrchr(srcdir, '/');
		if (s == NULL || s == srcdir)
			abort();
		*s = '\0';
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_make_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_demo_mirror, setup,
		    teardown),
	};

	ta_init();
	find_srcdir();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
