/*
 * tests/admin/test_mirror_states.c: every filerctl command that names a
 * volume or acts on all volumes, run against a volume in each mirror
 * state two real filerds on loopback can be driven into, libnfs as the
 * client.
 *
 * For each state the probe runs the read-only commands (vol list and
 * status, stats, snap list and schedule, export list, mirror status,
 * events, disk list, scrub status, peer list, config get, check), each
 * plain and with --json, then the ones that change something and may be
 * refused (vol destroy without --force, snap create, rollback and
 * delete, a snapshot schedule, scrub start, an export added and removed,
 * mirror init, modify, quiesce, resume or resync where they change
 * nothing the state is made of; mirror break and delete on a side running
 * its half of a resync, where they must be refused), and
 * last the volume taken offline (with the commands run against it
 * offline) and brought online again.  Every command exits 0, or non-zero
 * with an error on stderr that is not a lost connection nor a filerd that
 * answered nothing; both filerds are still running after each one; on a
 * destination (and on the overwritten side of a resync) no snapshot
 * command succeeds.  Afterwards the relationship finishes what it was
 * doing, the destination serves the source's data, both filerds stop
 * cleanly and `check` is clean on both volumes.
 *
 *   in_sync        source and destination in sync.
 *   quiesced       the source quiesced with a CP not sent; the destination
 *                  meanwhile.
 *   catching_up    the source while its destination's filerd is stopped,
 *                  then the destination while its source's is stopped.
 *   broken_off     both sides broken off.
 *   resync_t_first the overwritten side of a resync whose other half has
 *                  not started (its file system detached), and the
 *                  broken-off winner meanwhile.
 *   resync_w_first the winning side of a resync whose other half has not
 *                  started, and the broken-off overwritten side.
 *   before_baseline  a destination whose relationship exists on it alone,
 *                  then the source's relationship not initialized.
 *   mid_baseline   a destination while a throttled baseline arrives (taken
 *                  offline in the middle: it comes online without a file
 *                  system and the baseline resumes), and its source.
 *
 * Every wait is bounded (filerctl by FILERCTL_TIMEOUT_S); a failing test
 * still kills its filerds.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/lib/tl_mirror.h"
#include "tests/lib/tl_tmpdir.h"

/* filerctl gives up on a silent filerd after this long: a hang fails. */
#define CTL_TIMEOUT_S		"20"

struct mtest {
	char *dir;
	char key[2100];
	struct tl_mirror_side s, d;	/* source, destination */
};

static int setup(void **state)
{
	struct mtest *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->dir = tl_tmpdir_make(NULL, "filer-mirror-states");
	tl_mirror_pair_init(&t->s, &t->d, t->dir, "96M", t->key,
	    sizeof(t->key));
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct mtest *t = *state;
	int st = tl_mirror_pair_end(&t->s, &t->d, true);

	tl_tmpdir_remove(t->dir);
	free(t);
	return st == 0 ? 0 : -1;
}

/* ------------------------------------------------------------- clients */

/* ------------------------------------------------------------- mirrors */

static long wait_acked(const struct mtest *t, long min_gen)
{
	return tl_mirror_wait_acked(&t->s, min_gen);
}

static long source_gen(const struct mtest *t)
{
	return tl_mirror_long(&t->s, "source_gen");
}

/* Both filerds running with their exports, each knowing the other. */
static void both_started(struct mtest *t)
{
	tl_mirror_pair_start(&t->s, &t->d, t->key);
}

static void dst_created(struct mtest *t)
{
	free(ta_ctl_expect(0, t->d.home, "mirror", "create", "src:vsrc",
	    "vdst", "--mode", "sync", NULL));
}

/* Wait (30 s bound) until field path of side s's status is want. */
static void wait_field(const struct tl_mirror_side *s, const char *path,
    const char *want)
{
	char *js = NULL;

	for (int i = 0; i < 600; i++) {
		free(js);
		js = tl_mirror_status(s);
		char *cur = ta_json(js, path);
		bool ok = cur != NULL && strcmp(cur, want) == 0;
		free(cur);
		if (ok) {
			free(js);
			return;
		}
		ta_sleep_ms(50);
	}
	fail_msg("%s never became '%s': %s", path, want, js);
}

static void wait_state(const struct tl_mirror_side *s, const char *st)
{
	wait_field(s, "$.mirrors[0].state", st);
}

static char *row_state(const struct tl_mirror_side *s)
{
	char *js = tl_mirror_status(s);
	char *st = ta_json(js, "$.mirrors[0].state");

	free(js);
	return st;
}

/* What the source wrote is acknowledged and served by the destination;
 * returns that generation. */
static long served(struct mtest *t)
{
	long g = wait_acked(t, 1);

	g = wait_acked(t, source_gen(t) > g ? source_gen(t) : g);
	tl_mirror_wait_served(&t->d, g);
	return g;
}

/* Both filerds up with the relationship, /base served by the
 * destination; returns that generation. */
static long pair_served(struct mtest *t)
{
	both_started(t);
	dst_created(t);
	free(ta_ctl_expect(0, t->s.home, "mirror", "create", "vsrc",
	    "dst:vdst", "--mode", "sync", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "init", "vsrc", NULL));
	tl_mirror_write(&t->s, "/base", 1, 1);
	return served(t);
}

/* Failover: both sides break off (the destination first). */
static void break_both(struct mtest *t)
{
	free(ta_ctl_expect(0, t->d.home, "mirror", "break", "vdst", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "break", "vsrc", NULL));
}

/* A new file on the source reaches the destination. */
static void replicates(struct mtest *t, const char *path, uint32_t seed)
{
	tl_mirror_write(&t->s, path, seed, 1);
	(void)served(t);
	tl_mirror_read_compare(&t->d, path, seed, 1);
}

/* Resync run on both sides (T, the destination, first); in sync after,
 * the destination serving the source's /base and path. */
static void resync_both(struct mtest *t, const char *path, uint32_t seed)
{
	free(ta_ctl_expect(0, t->d.home, "mirror", "resync", "vdst", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "resync", "vsrc", NULL));
	wait_state(&t->s, "in-sync");
	(void)served(t);
	tl_mirror_read_compare(&t->d, "/base", 1, 1);
	replicates(t, path, seed);
}

/* ------------------------------------------------------------- probes */

/* What the probed side's volume is in its relationship. */
enum role {
	R_SRC_RUNNING,	/* a source sending (in sync, catching up, baseline) */
	R_SRC_QUIESCED,
	R_SRC_UNINIT,	/* created, not initialized */
	R_DEST,		/* a destination (before, during or after baseline) */
	R_BROKEN,	/* broken off, writable */
	R_RESYNC_T,	/* the overwritten side of a resync */
	R_RESYNC_W,	/* the winning side of a resync */
};

static const char *const role_names[] = {
	"source", "quiesced source", "uninitialized source", "destination",
	"broken-off", "resync overwritten", "resync winner",
};

/* Command flags. */
#define C_JSON		0x1	/* run plain and with --json */
#define C_SNAP		0x2	/* changes the file system: refused on a
				 * destination or a resync's T */
#define C_NOT_RUNNING_SRC 0x4	/* not on a running source (it would
				 * quiesce it) */
#define C_NOT_QUIESCED	0x8	/* not on a quiesced source (it would
				 * resume it) */
#define C_NOT_BROKEN	0x10	/* not on a broken-off side (it would
				 * start a resync) */
#define C_NOT_UNINIT	0x20	/* not on an uninitialized source (it would
				 * start the baseline) */
#define C_RESYNC_ONLY	0x40	/* only on a side running its half of a
				 * resync, where it must be refused */

struct probe_cmd {
	const char *argv[8];	/* "@" in a word: the volume's name */
	unsigned flags;
};

static const struct probe_cmd probe_cmds[] = {
	{ { "vol", "list" }, C_JSON },
	{ { "vol", "status", "@" }, C_JSON },
	{ { "stats" }, C_JSON },
	{ { "stats", "@" }, C_JSON },
	{ { "snap", "list", "@" }, C_JSON },
	{ { "snap", "schedule", "@" }, C_JSON },
	{ { "export", "list" }, C_JSON },
	{ { "export", "list", "/vol/@" }, C_JSON },
	{ { "mirror", "status" }, C_JSON },
	{ { "mirror", "status", "@" }, C_JSON },
	{ { "events" }, C_JSON },
	{ { "events", "--volume", "@" }, C_JSON },
	{ { "disk", "list" }, C_JSON },
	{ { "disk", "list", "@" }, C_JSON },
	{ { "scrub", "status", "@" }, C_JSON },
	{ { "peer", "list" }, C_JSON },
	{ { "config", "get" }, 0 },
	{ { "check", "@" }, C_JSON },
	{ { "check", "@", "--snapshot", "nosuch" }, 0 },
	{ { "check", "@", "--cancel" }, 0 },
	{ { "vol", "destroy", "@" }, 0 },
	{ { "mirror", "break", "@" }, C_RESYNC_ONLY },
	{ { "mirror", "delete", "@" }, C_RESYNC_ONLY },
	{ { "snap", "create", "@", "probe" }, C_SNAP },
	{ { "snap", "rollback", "@", "probe" }, C_SNAP },
	{ { "snap", "delete", "@", "probe" }, C_SNAP },
	{ { "snap", "rollback", "@", "nosuch" }, C_SNAP },
	{ { "snap", "delete", "@", "nosuch" }, C_SNAP },
	{ { "snap", "schedule", "@", "--hourly", "0" }, 0 },
	{ { "scrub", "start", "@" }, 0 },
	{ { "scrub", "status", "@" }, 0 },
	{ { "export", "add", "/vol/@", "--client", "10.9.9.9", "--ro" }, 0 },
	{ { "export", "remove", "/vol/@", "--client", "10.9.9.9" }, 0 },
	{ { "mirror", "init", "@" }, C_NOT_UNINIT },
	{ { "mirror", "modify", "@", "--mode", "sync" }, 0 },
	{ { "mirror", "quiesce", "@" }, C_NOT_RUNNING_SRC },
	{ { "mirror", "resume", "@" }, C_NOT_QUIESCED },
	{ { "mirror", "resync", "@" }, C_NOT_BROKEN },
	{ { "stats", "@" }, 0 },
	{ { "check", "@" }, 0 },
};

/* Commands run while the volume is offline. */
static const struct probe_cmd offline_cmds[] = {
	{ { "vol", "list" }, C_JSON },
	{ { "vol", "status", "@" }, C_JSON },
	{ { "stats" }, C_JSON },
	{ { "stats", "@" }, 0 },
	{ { "snap", "list", "@" }, 0 },
	{ { "snap", "create", "@", "probe" }, C_SNAP },
	{ { "mirror", "status", "@" }, C_JSON },
	{ { "scrub", "status", "@" }, 0 },
	{ { "disk", "list", "@" }, 0 },
	{ { "check", "@" }, 0 },
	{ { "vol", "offline", "@" }, 0 },
};

static bool role_skips(enum role r, unsigned flags)
{
	return ((flags & C_NOT_RUNNING_SRC) && r == R_SRC_RUNNING) ||
	    ((flags & C_NOT_QUIESCED) && r == R_SRC_QUIESCED) ||
	    ((flags & C_NOT_BROKEN) && r == R_BROKEN) ||
	    ((flags & C_NOT_UNINIT) && r == R_SRC_UNINIT) ||
	    ((flags & C_RESYNC_ONLY) && r != R_RESYNC_T && r != R_RESYNC_W);
}

static bool role_read_only(enum role r)
{
	return r == R_DEST || r == R_RESYNC_T;
}

/* Fail unless the filerd of side s still runs. */
static void alive(const struct tl_mirror_side *s, const char *after)
{
	int st;

	if (s->d.pid <= 0)
		return;
	if (waitpid(s->d.pid, &st, WNOHANG) == s->d.pid)
		fail_msg("filerd of %s died (%s %d) after: %s (see %s)",
		    s->home, WIFSIGNALED(st) ? "signal" : "exit",
		    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), after,
		    s->d.log);
}

/* filerctl [--json] argv on side s for volume vol, bounded; its output
 * (owned).  Exit 0, or non-zero with an error that is filerd's answer. */
static struct ta_out run_cmd(const struct mtest *t,
    const struct tl_mirror_side *s, const char *vol,
    const char *const *words, bool json, char *line, size_t linelen)
{
	static const char *const env[] = { "FILERCTL_TIMEOUT_S",
	    CTL_TIMEOUT_S, NULL };
	const char *argv[TA_MAX_ARGS];
	char bufs[8][128];
	struct ta_out o;
	size_t used = 0;
	int n = 0;

	argv[n++] = "filerctl";
	argv[n++] = "--home";
	argv[n++] = s->home;
	if (json)
		argv[n++] = "--json";
	for (int i = 0; i < 8 && words[i] != NULL; i++) {
		const char *at = strchr(words[i], '@');

		if (at == NULL) {
			argv[n++] = words[i];
			continue;
		}
		snprintf(bufs[i], sizeof(bufs[i]), "%.*s%s%s",
		    (int)(at - words[i]), words[i], vol, at + 1);
		argv[n++] = bufs[i];
	}
	argv[n] = NULL;
	line[0] = '\0';
	for (int i = 3; i < n && used < linelen; i++)
		used += (size_t)snprintf(line + used, linelen - used, "%s%s",
		    i > 3 ? " " : "", argv[i]);
	o = ta_runv(argv, -1, env);
	alive(&t->s, line);
	alive(&t->d, line);
	if (o.status != 0 && (o.err[0] == '\0' || strstr(o.err,
	    "lost the connection") != NULL || strstr(o.err,
	    "sent nothing for") != NULL))
		fail_msg("filerctl %s on %s: exit %d, stderr '%s'", line,
		    s->home, o.status, o.err);
	if (o.status == 0 && json && !ta_json_valid(o.out))
		fail_msg("filerctl %s: not JSON: %s", line, o.out);
	return o;
}

/* The first line of text, for the log. */
static void first_line(const char *text, char *out, size_t len)
{
	size_t n = strcspn(text, "\n");

	if (n >= len)
		n = len - 1;
	memcpy(out, text, n);
	out[n] = '\0';
}

static void run_table(const struct mtest *t, const struct tl_mirror_side *s,
    enum role role, const char *what, const struct probe_cmd *cmds,
    size_t ncmds)
{
	for (size_t i = 0; i < ncmds; i++) {
		if (role_skips(role, cmds[i].flags))
			continue;
		for (int json = 0; json <= !!(cmds[i].flags & C_JSON);
		    json++) {
			char line[512], why[160];
			struct ta_out o = run_cmd(t, s, s->vol,
			    cmds[i].argv, json, line, sizeof(line));

			if (o.status == 0 && (cmds[i].flags & C_SNAP) &&
			    role_read_only(role))
				fail_msg("filerctl %s on a %s %s succeeded: %s",
				    line, role_names[role], what, o.out);
			if (o.status == 0 && (cmds[i].flags & C_RESYNC_ONLY))
				fail_msg("filerctl %s during a resync (%s) "
				    "succeeded: %s", line, role_names[role],
				    o.out);
			first_line(o.status == 0 ? "" : o.err, why,
			    sizeof(why));
			printf("  %-18s %-10s %-44s -> %d %s\n",
			    role_names[role], what, line, o.status, why);
			ta_out_free(&o);
		}
	}
}

/* No snapshot "probe" on a volume that must not have taken one. */
static void no_probe_snapshot(const struct tl_mirror_side *s)
{
	struct ta_out o = ta_ctl(s->home, "snap", "list", s->vol, NULL);

	if (o.status == 0 && strstr(o.out, "probe") != NULL)
		fail_msg("snapshot probe on %s: %s", s->vol, o.out);
	ta_out_free(&o);
}

/* The volume's state in vol status. */
static char *vol_state(const struct tl_mirror_side *s)
{
	char *js = ta_ctl_expect(0, s->home, "--json", "vol", "status",
	    s->vol, NULL);
	char *st = ta_json(js, "$.volume.state");

	free(js);
	return st;
}

/*
 * Every command of the table against side s's volume in role (what names
 * the state), then the volume offline, the commands against an offline
 * volume, and online again.
 */
static void probe(const struct mtest *t, const struct tl_mirror_side *s,
    enum role role, const char *what)
{
	static const char *const offline[] = { "vol", "offline", "@", NULL };
	static const char *const online[] = { "vol", "online", "@", NULL };
	char line[512], *st;
	struct ta_out o;

	printf("[ %s: %s on %s ]\n", what, s->vol, role_names[role]);
	run_table(t, s, role, what, probe_cmds, sizeof(probe_cmds) /
	    sizeof(probe_cmds[0]));
	if (role_read_only(role))
		no_probe_snapshot(s);
	o = run_cmd(t, s, s->vol, offline, false, line, sizeof(line));
	printf("  %-18s %-10s %-44s -> %d %s\n", role_names[role], what,
	    line, o.status, o.status == 0 ? "" : o.err);
	ta_out_free(&o);
	run_table(t, s, role, what, offline_cmds, sizeof(offline_cmds) /
	    sizeof(offline_cmds[0]));
	o = run_cmd(t, s, s->vol, online, false, line, sizeof(line));
	printf("  %-18s %-10s %-44s -> %d %s\n", role_names[role], what,
	    line, o.status, o.status == 0 ? "" : o.err);
	if (o.status != 0)
		fail_msg("vol online %s: %s", s->vol, o.err);
	ta_out_free(&o);
	st = vol_state(s);
	assert_non_null(st);
	assert_string_equal(st, "online");
	free(st);
	if (role_read_only(role))
		no_probe_snapshot(s);
}

static void both_stop(struct mtest *t)
{
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
}

/* -------------------------------------------------------------- states */

static void test_in_sync(void **state)
{
	struct mtest *t = *state;

	(void)pair_served(t);
	probe(t, &t->d, R_DEST, "in-sync");
	replicates(t, "/after-dst", 2);
	probe(t, &t->s, R_SRC_RUNNING, "in-sync");
	replicates(t, "/after-src", 3);
	tl_mirror_read_compare(&t->d, "/base", 1, 1);
	both_stop(t);
}

static void test_quiesced(void **state)
{
	struct mtest *t = *state;
	char *st;

	(void)pair_served(t);
	free(ta_ctl_expect(0, t->s.home, "mirror", "quiesce", "vsrc", NULL));
	wait_state(&t->s, "quiesced");
	tl_mirror_write(&t->s, "/lag", 2, 1);
	probe(t, &t->d, R_DEST, "quiesced");
	probe(t, &t->s, R_SRC_QUIESCED, "quiesced");
	/* still quiesced after everything, and across offline/online */
	st = row_state(&t->s);
	assert_non_null(st);
	assert_string_equal(st, "quiesced");
	free(st);
	free(ta_ctl_expect(0, t->s.home, "mirror", "resume", "vsrc", NULL));
	(void)served(t);
	tl_mirror_read_compare(&t->d, "/lag", 2, 1);
	replicates(t, "/after", 3);
	both_stop(t);
}

static void test_catching_up(void **state)
{
	struct mtest *t = *state;

	(void)pair_served(t);
	/* The destination's filerd stops: the source falls behind. */
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	tl_mirror_write(&t->s, "/while-dst-down", 2, 1);
	wait_state(&t->s, "catching-up");
	probe(t, &t->s, R_SRC_RUNNING, "catching-up");
	ta_daemon_start(&t->d.d, t->d.home);
	(void)served(t);
	tl_mirror_read_compare(&t->d, "/while-dst-down", 2, 1);
	/* The source's filerd stops: the destination waits for it. */
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
	probe(t, &t->d, R_DEST, "src-stopped");
	ta_daemon_start(&t->s.d, t->s.home);
	replicates(t, "/after", 3);
	both_stop(t);
}

static void test_broken_off(void **state)
{
	struct mtest *t = *state;

	(void)pair_served(t);
	break_both(t);
	tl_mirror_write(&t->d, "/dst-new", 2, 1);
	probe(t, &t->d, R_BROKEN, "broken-off");
	probe(t, &t->s, R_BROKEN, "broken-off");
	resync_both(t, "/after", 3);
	both_stop(t);
}

/* After an offline/online of side s during its half of a resync: run
 * that half again if the interruption ended it. */
static void resync_again_if_ended(const struct tl_mirror_side *s)
{
	char *st = row_state(s);

	assert_non_null(st);
	if (strcmp(st, "broken-off") == 0)
		free(ta_ctl_expect(0, s->home, "mirror", "resync", s->vol,
		    NULL));
	free(st);
}

/* A resync whose half on one side (the overwritten one if t_first, else
 * the winner) started alone: that side, then the other still broken off,
 * are probed; then the other half runs and the resync finishes. */
static void resync_one_half(struct mtest *t, bool t_first)
{
	struct tl_mirror_side *a = t_first ? &t->d : &t->s;
	struct tl_mirror_side *b = t_first ? &t->s : &t->d;
	const char *tag = t_first ? "resync-T" : "resync-W";

	(void)pair_served(t);
	break_both(t);
	tl_mirror_write(&t->d, "/diverged", 2, 1);
	tl_mirror_write(&t->s, "/src-new", 3, 1);
	free(ta_ctl_expect(0, a->home, "mirror", "resync", a->vol, NULL));
	probe(t, a, t_first ? R_RESYNC_T : R_RESYNC_W, tag);
	resync_again_if_ended(a);
	probe(t, b, R_BROKEN, tag);
	free(ta_ctl_expect(0, b->home, "mirror", "resync", b->vol, NULL));
	wait_state(&t->s, "in-sync");
	(void)served(t);
	tl_mirror_read_compare(&t->d, "/src-new", 3, 1);
	tl_mirror_read_compare(&t->d, "/base", 1, 1);
	replicates(t, "/after", 4);
	both_stop(t);
}

static void test_resync_t_first(void **state)
{
	resync_one_half(*state, true);
}

static void test_resync_w_first(void **state)
{
	resync_one_half(*state, false);
}

static void test_before_baseline(void **state)
{
	struct mtest *t = *state;

	both_started(t);
	tl_mirror_write(&t->s, "/base", 1, 1);
	/* The relationship on the destination alone. */
	dst_created(t);
	probe(t, &t->d, R_DEST, "no-source");
	/* On the source too, not initialized. */
	free(ta_ctl_expect(0, t->s.home, "mirror", "create", "vsrc",
	    "dst:vdst", "--mode", "sync", NULL));
	probe(t, &t->d, R_DEST, "uninit");
	probe(t, &t->s, R_SRC_UNINIT, "uninit");
	free(ta_ctl_expect(0, t->s.home, "mirror", "init", "vsrc", NULL));
	(void)served(t);
	tl_mirror_read_compare(&t->d, "/base", 1, 1);
	replicates(t, "/after", 2);
	both_stop(t);
}

/* The offset of the first line of file path holding what; SIZE_MAX if
 * none does. */
static size_t log_find(const char *path, const char *what)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	size_t off = 0, at = SIZE_MAX;

	while (f != NULL && at == SIZE_MAX &&
	    fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, what) != NULL)
			at = off;
		off += strlen(line);
	}
	if (f != NULL)
		fclose(f);
	return at;
}

static void test_mid_baseline(void **state)
{
	struct mtest *t = *state;

	both_started(t);
	tl_mirror_write(&t->s, "/big", 10, 6);
	dst_created(t);
	free(ta_ctl_expect(0, t->s.home, "mirror", "create", "vsrc",
	    "dst:vdst", "--mode", "sync", "--throttle", "512K", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "init", "vsrc", NULL));
	/* The destination has received part of the baseline. */
	char *js = NULL;
	for (int i = 0; i < 600; i++) {
		free(js);
		js = tl_mirror_status(&t->d);
		if (ta_json_long(js, "$.mirrors[0].blocks_received") > 0)
			break;
		ta_sleep_ms(50);
	}
	assert_true(ta_json_long(js, "$.mirrors[0].blocks_received") > 0);
	assert_int_equal(ta_json_long(js, "$.mirrors[0].acked_gen"), 0);
	free(js);
	/* The volume's old read-only mount went away before the baseline's
	 * first write (the baseline writes over what it read): what needs
	 * the file system says the baseline is arriving, instead of a check
	 * of the old one finding the blocks the baseline overwrote.  At
	 * once, not within a tick: the baseline waited for it. */
	struct ta_out o = ta_ctl(t->d.home, "check", "vdst", NULL);

	assert_int_not_equal(o.status, 0);
	assert_non_null(strstr(o.err, "waiting for its baseline"));
	ta_out_free(&o);
	/* And in the destination's log: taken away, then overwritten. */
	size_t gone_at = log_find(t->d.d.log, "old file system is no longer "
	    "shown"), wipe_at = log_find(t->d.d.log, "baseline: replacing "
	    "the volume's file system");

	assert_true(gone_at != SIZE_MAX && wipe_at != SIZE_MAX);
	assert_true(gone_at < wipe_at);
	probe(t, &t->d, R_DEST, "baseline");
	probe(t, &t->s, R_SRC_RUNNING, "baseline");
	(void)served(t);
	tl_mirror_read_compare(&t->d, "/big", 10, 1);
	replicates(t, "/after", 2);
	both_stop(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_in_sync, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_quiesced, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_catching_up, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_broken_off, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_resync_t_first, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_resync_w_first, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_before_baseline, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mid_baseline, setup,
		    teardown),
	};

	ta_init();
	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
