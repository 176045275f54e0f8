/*
 * tests/admin/ta.h: helpers for the admin end-to-end tests, which run the
 * real programs: a filerd in the foreground as a child process on a
 * scratch home, and filerctl fork/exec'ed with its stdout, stderr and exit
 * status captured.  The programs are the ones built next to this runner
 * (build/filerd for build/tests/admin/test_x, build/asan/filerd for the
 * ASan runner), found through /proc/self/exe.  JSON replies are checked
 * with sqlite's JSON functions.
 *
 * Header-only (static functions): tests/lib/ is linked into every runner,
 * these helpers only into the admin runners.
 */
#ifndef FILER_TESTS_ADMIN_TA_H
#define FILER_TESTS_ADMIN_TA_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/tl_tmpdir.h"

#define TA_MAX_ARGS	32

static char ta_bindir[2048];

/* build/ (or build/asan/): three levels above this runner. */
static __attribute__((unused)) void ta_init(void)
{
	ssize_t n = readlink("/proc/self/exe", ta_bindir,
	    sizeof(ta_bindir) - 1);

	if (n <= 0)
		abort();
	ta_bindir[n] = '\0';
	for (int i = 0; i < 3; i++) {
		char *s = strrchr(ta_bindir, '/');

		if (s == NULL)
			abort();
		*s = '\0';
	}
	signal(SIGPIPE, SIG_IGN);
}

static __attribute__((unused)) void ta_prog(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", ta_bindir, name);
}

static __attribute__((unused)) void ta_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

struct ta_out {
	int status;		/* exit status, or 128 + signal */
	char *out, *err;	/* owned, NUL-terminated */
};

static __attribute__((unused)) void ta_out_free(struct ta_out *o)
{
	free(o->out);
	free(o->err);
	o->out = o->err = NULL;
}

static __attribute__((unused)) void ta_append(char **buf, size_t *len, const char *p, size_t n)
{
	char *b = realloc(*buf, *len + n + 1);

	if (b == NULL)
		abort();
	memcpy(b + *len, p, n);
	*len += n;
	b[*len] = '\0';
	*buf = b;
}

/*
 * Run argv (argv[0] a program name in the build directory), capture.
 * uid >= 0: run as that uid (and gid) in the child.
 */
static __attribute__((unused)) struct ta_out ta_runv(const char *const *argv, int uid,
    const char *const *env)
{
	struct ta_out o = { -1, NULL, NULL };
	size_t olen = 0, elen = 0;
	int po[2], pe[2];
	char prog[PATH_MAX];
	pid_t pid;

	ta_prog(prog, sizeof(prog), argv[0]);
	if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0)
		abort();
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(pe[0]);
		close(po[1]);
		close(pe[1]);
		unsetenv("FILER_HOME");
		for (int i = 0; env != NULL && env[i] != NULL; i += 2)
			setenv(env[i], env[i + 1], 1);
		if (uid >= 0 && (setgid((gid_t)uid) != 0 ||
		    setuid((uid_t)uid) != 0))
			_exit(126);
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	ta_append(&o.out, &olen, "", 0);
	ta_append(&o.err, &elen, "", 0);
	for (int open_fds = 2; open_fds > 0;) {
		struct pollfd pf[2] = {
			{ .fd = po[0], .events = POLLIN },
			{ .fd = pe[0], .events = POLLIN },
		};
		char buf[4096];

		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			break;
		for (int k = 0; k < 2; k++) {
			ssize_t n;

			if (pf[k].fd < 0 || !(pf[k].revents &
			    (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(pf[k].fd, buf, sizeof(buf));
			if (n > 0) {
				if (k == 0)
					ta_append(&o.out, &olen, buf, (size_t)n);
				else
					ta_append(&o.err, &elen, buf, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				close(k == 0 ? po[0] : pe[0]);
				if (k == 0)
					po[0] = -1;
				else
					pe[0] = -1;
				open_fds--;
			}
		}
	}
	{
		int st;

		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		o.status = WIFEXITED(st) ? WEXITSTATUS(st) :
		    128 + WTERMSIG(st);
	}
	return o;
}

/* filerctl --home HOME args... (NULL-terminated). */
static __attribute__((unused)) struct ta_out ta_ctl(const char *home, ...)
{
	const char *argv[TA_MAX_ARGS];
	int n = 0;
	va_list ap;

	argv[n++] = "filerctl";
	argv[n++] = "--home";
	argv[n++] = home;
	va_start(ap, home);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL &&
	    n < TA_MAX_ARGS - 1;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	return ta_runv(argv, -1, NULL);
}

/* Run filerctl, expect exit status st, return stdout (owned). */
static __attribute__((unused)) char *ta_ctl_expect(int st, const char *home, ...)
{
	const char *argv[TA_MAX_ARGS];
	struct ta_out o;
	int n = 0;
	va_list ap;

	argv[n++] = "filerctl";
	argv[n++] = "--home";
	argv[n++] = home;
	va_start(ap, home);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL &&
	    n < TA_MAX_ARGS - 1;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	o = ta_runv(argv, -1, NULL);
	if (o.status != st) {
		fprintf(stderr, "filerctl");
		for (int i = 1; argv[i] != NULL; i++)
			fprintf(stderr, " %s", argv[i]);
		fprintf(stderr, "\n  exit %d, wanted %d\n  stdout: %s\n  "
		    "stderr: %s\n", o.status, st, o.out, o.err);
		fail_msg("unexpected exit status");
	}
	free(o.err);
	return o.out;
}

/* ------------------------------------------------------------ daemon */

struct ta_daemon {
	pid_t pid;
	char home[2048];
	char log[2100];
};

static __attribute__((unused)) bool ta_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Start filerd --foreground on home; wait until it answers. */
static __attribute__((unused)) void ta_daemon_start_env(struct ta_daemon *d, const char *home,
    const char *const *env)
{
	char prog[PATH_MAX], sock[PATH_MAX + 16];

	snprintf(d->home, sizeof(d->home), "%s", home);
	snprintf(d->log, sizeof(d->log), "%s.log", home);
	snprintf(sock, sizeof(sock), "%s/filerd.sock", home);
	ta_prog(prog, sizeof(prog), "filerd");
	d->pid = fork();
	if (d->pid < 0)
		abort();
	if (d->pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		unsetenv("FILER_HOME");
		for (int i = 0; env != NULL && env[i] != NULL; i += 2)
			setenv(env[i], env[i + 1], 1);
		execl(prog, "filerd", "--home", home, "--foreground",
		    (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 3000; i++) {
		int st;

		if (waitpid(d->pid, &st, WNOHANG) == d->pid)
			fail_msg("filerd exited during startup (see %s)",
			    d->log);
		if (ta_exists(sock)) {
			/* stats needs filerd: offline filerctl cannot answer. */
			struct ta_out o = ta_ctl(home, "stats", NULL);
			int s = o.status;

			ta_out_free(&o);
			if (s == 0)
				return;
		}
		ta_sleep_ms(10);
	}
	fail_msg("filerd did not come up within 30 s (see %s)", d->log);
}

static __attribute__((unused)) void ta_daemon_start(struct ta_daemon *d, const char *home)
{
	ta_daemon_start_env(d, home, NULL);
}

/* Send sig, wait for the exit (60 s bound); returns the exit status. */
static __attribute__((unused)) int ta_daemon_signal_wait(struct ta_daemon *d, int sig)
{
	int st = 0;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, sig);
	for (int i = 0; i < 6000; i++) {
		pid_t r = waitpid(d->pid, &st, WNOHANG);

		if (r == d->pid) {
			d->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) :
			    128 + WTERMSIG(st);
		}
		ta_sleep_ms(10);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &st, 0);
	d->pid = 0;
	return -1;
}

/* How many lines of d's log (so far) contain text. */
static __attribute__((unused)) int ta_daemon_log_count(const struct ta_daemon *d,
    const char *text)
{
	FILE *f = fopen(d->log, "r");
	char line[4096];
	int n = 0;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, text) != NULL;
	if (f != NULL)
		fclose(f);
	return n;
}

/* SIGTERM; on an unclean exit, show the daemon's log for the failure. */
static __attribute__((unused)) int ta_daemon_stop(struct ta_daemon *d)
{
	int st = ta_daemon_signal_wait(d, SIGTERM);

	if (st != 0) {
		FILE *f = fopen(d->log, "r");
		char line[1024];

		fprintf(stderr, "filerd exit status %d; its log:\n", st);
		while (f != NULL && fgets(line, sizeof(line), f) != NULL)
			fputs(line, stderr);
		if (f != NULL)
			fclose(f);
	}
	return st;
}

/* ------------------------------------------------------------- JSON */

/* json_extract(json, path) as text (owned), or NULL. */
static __attribute__((unused)) char *ta_json(const char *json, const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char *res = NULL;

	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		abort();
	if (sqlite3_prepare_v2(db, "SELECT json_extract(?, ?)", -1, &st,
	    NULL) != SQLITE_OK)
		abort();
	sqlite3_bind_text(st, 1, json, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) != SQLITE_NULL)
		res = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return res;
}

static __attribute__((unused)) bool ta_json_valid(const char *json)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	bool ok = false;

	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		abort();
	if (sqlite3_prepare_v2(db, "SELECT json_valid(?)", -1, &st, NULL) !=
	    SQLITE_OK)
		abort();
	sqlite3_bind_text(st, 1, json, -1, SQLITE_TRANSIENT);
	ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ok;
}

/* Assert json_extract(json, path) == want. */
static __attribute__((unused)) void ta_json_eq(const char *json, const char *path, const char *want)
{
	char *got = ta_json(json, path);

	if (got == NULL || strcmp(got, want) != 0) {
		fprintf(stderr, "json %s: got %s, wanted %s\nin: %s\n", path,
		    got != NULL ? got : "(null)", want, json);
		free(got);
		fail_msg("JSON field mismatch");
	}
	free(got);
}

static __attribute__((unused)) long ta_json_long(const char *json, const char *path)
{
	char *got = ta_json(json, path);
	long v;

	if (got == NULL) {
		fprintf(stderr, "json %s missing in %s\n", path, json);
		fail_msg("JSON field missing");
	}
	v = strtol(got, NULL, 10);
	free(got);
	return v;
}

/* Names in a directory, sorted, one per line (owned): "disks unchanged". */
static __attribute__((unused)) int ta_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static __attribute__((unused)) char *ta_dir_listing(const char *dir)
{
	DIR *d = opendir(dir);
	char *names[512], *out = NULL;
	size_t n = 0, len = 0;
	struct dirent *e;

	ta_append(&out, &len, "", 0);
	if (d == NULL)
		return out;
	while ((e = readdir(d)) != NULL && n < 512) {
		struct stat st;
		char p[PATH_MAX + 300], line[PATH_MAX + 64];

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (stat(p, &st) != 0)
			continue;
		snprintf(line, sizeof(line), "%s %lld\n", e->d_name,
		    (long long)st.st_size);
		names[n++] = strdup(line);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), ta_cmp_str);
	for (size_t i = 0; i < n; i++) {
		ta_append(&out, &len, names[i], strlen(names[i]));
		free(names[i]);
	}
	return out;
}

/* The runners' fixture: a scratch directory with a home in it, and the
 * filerd a test may start there (killed at teardown). */
struct ta_fx {
	char *dir;		/* scratch, removed at the end */
	char home[2048];
	struct ta_daemon d;
};

static __attribute__((unused)) int ta_fx_setup(void **state, const char *prefix)
{
	struct ta_fx *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->dir = tl_tmpdir_make(NULL, prefix);
	snprintf(t->home, sizeof(t->home), "%s/home", t->dir);
	*state = t;
	return 0;
}

static __attribute__((unused)) int ta_fx_teardown(void **state)
{
	struct ta_fx *t = *state;

	if (t->d.pid > 0)
		(void)ta_daemon_signal_wait(&t->d, SIGKILL);
	tl_tmpdir_remove(t->dir);
	free(t);
	return 0;
}

#endif
