/*
 * tests/admin/test_admin_input.c: what filerd and filerctl do with input
 * they must not trust: a database whose rows were edited behind their
 * back (sqlite opened directly, CHECK constraints switched off), and
 * command lines that are well-formed word by word but wrong as a whole.
 * Each case runs the real programs on a scratch home and checks that the
 * answer is a clear error, the exit status says so, and nothing crashed
 * or changed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sys/file.h>

#include "tests/admin/ta.h"
#include "tests/lib/tl_port.h"
#include "tests/lib/tl_tmpdir.h"

static int setup(void **state)
{
	return ta_fx_setup(state, "filer-input");
}

static int teardown(void **state)
{
	return ta_fx_teardown(state);
}

static void create_vol(struct ta_fx *t, const char *name)
{
	free(ta_ctl_expect(0, t->home, "vol", "create", name, "--disks", "3",
	    "--parity", "1", "--size", "8M", NULL));
}

/* How many times needle occurs in s. */
static int count_of(const char *s, const char *needle)
{
	int n = 0;

	for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* Run sql on home's database as another program would, CHECK
 * constraints off (no filerd may run). */
static void db_edit(struct ta_fx *t, const char *sql)
{
	char path[2100];
	sqlite3 *db;
	char *msg = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/filer.db", t->home);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, "PRAGMA ignore_check_constraints = 1;", NULL,
	    NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, msg != NULL ? msg : "?");
	sqlite3_free(msg);
	sqlite3_close(db);
}

/*
 * A volume row whose geometry no RAID can have (a group count that makes
 * the disk table wrap around, a group number far beyond it): the volume
 * is refused as corrupt, offline by filerctl and at filerd's start, and
 * nothing crashes; the other volumes serve.
 */
static void test_db_bad_geometry(void **state)
{
	struct ta_fx *t = *state;
	struct ta_out o;
	char *js;

	create_vol(t, "vol0");
	create_vol(t, "good");
	db_edit(t, "UPDATE volumes SET ngroups = 6148914691236517206 "
	    "WHERE name = 'vol0';"
	    "UPDATE raid_groups SET grp = 1000000000000 WHERE volume_id = "
	    "(SELECT id FROM volumes WHERE name = 'vol0');");
	o = ta_ctl(t->home, "check", "vol0", NULL);
	assert_int_equal(o.status, 1);
	assert_non_null(strstr(o.err, "corrupt"));
	ta_out_free(&o);

	ta_daemon_start(&t->d, t->home);
	js = ta_ctl_expect(0, t->home, "--json", "vol", "status", "vol0",
	    NULL);
	ta_json_eq(js, "$.volume.state", "offline");
	{
		char *why = ta_json(js, "$.volume.reason");

		assert_non_null(why);
		assert_non_null(strstr(why, "corrupt"));
		free(why);
	}
	free(js);
	js = ta_ctl_expect(0, t->home, "--json", "vol", "status", "good",
	    NULL);
	ta_json_eq(js, "$.volume.state", "online");
	free(js);
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

/*
 * Settings rows are checked when read, as config set checks them: an
 * events_keep of 0 written behind filerctl's back would have filerd
 * delete the whole event log at its first event; a value that is no
 * number at all would read as 0.  The default is used instead (and
 * logged), and filerctl config set still refuses both.
 */
static void test_db_bad_settings(void **state)
{
	struct ta_fx *t = *state;
	char *js;

	create_vol(t, "vol0");
	db_edit(t, "INSERT INTO settings (key, value) VALUES "
	    "('events_keep', '0'), ('cp_interval_ms', 'soon');");
	ta_daemon_start(&t->d, t->home);
	js = ta_ctl_expect(0, t->home, "--json", "events", NULL);
	ta_json_eq(js, "$.events[0].kind", "volume.created");
	free(js);
	js = ta_ctl_expect(0, t->home, "--json", "config", "get",
	    "events_keep", NULL);
	ta_json_eq(js, "$.setting.value", "100000");
	free(js);
	js = ta_ctl_expect(0, t->home, "--json", "config", "get",
	    "cp_interval_ms", NULL);
	ta_json_eq(js, "$.setting.value", "10000");
	free(js);
	free(ta_ctl_expect(1, t->home, "config", "set", "events_keep", "0",
	    NULL));
	assert_int_equal(ta_daemon_stop(&t->d), 0);
	assert_true(ta_daemon_log_count(&t->d, "setting events_keep holds "
	    "'0'") >= 1);
}

/*
 * The NFS server serves at most NFSD_MAX_RULES (64) rules per export and
 * NFSD_MAX_EXPORTS (64) exports: export add refuses the one past either
 * (exit 1, nothing stored) instead of storing a rule that nfsd would
 * then leave out, and takes it again once there is room.
 */
static void test_export_limits(void **state)
{
	struct ta_fx *t = *state;
	struct ta_out o;
	char *js;

	create_vol(t, "vol0");
	free(ta_ctl_expect(0, t->home, "export", "add", "/vol/vol0",
	    "--client", "10.0.0.1", NULL));
	/* 63 more rules on /vol/vol0, 63 more exports of one rule each. */
	db_edit(t, "WITH RECURSIVE k(i) AS (SELECT 2 UNION ALL SELECT i + 1 "
	    "FROM k WHERE i < 64) INSERT INTO export_rules (export_id, client) "
	    "SELECT (SELECT id FROM exports WHERE path = '/vol/vol0'), "
	    "'10.0.0.' || i FROM k;"
	    "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k "
	    "WHERE i < 63) INSERT INTO exports (path, volume_id, created) "
	    "SELECT '/vol/vol0/d' || i, (SELECT id FROM volumes), 0 FROM k;"
	    "INSERT INTO export_rules (export_id, client) SELECT id, '*' "
	    "FROM exports WHERE path != '/vol/vol0';");
	js = ta_ctl_expect(0, t->home, "--json", "export", "list", NULL);
	assert_int_equal(count_of(js, "\"client\": "), 64 + 63);
	free(js);

	o = ta_ctl(t->home, "export", "add", "/vol/vol0", "--client",
	    "10.0.1.1", NULL);
	assert_int_equal(o.status, 1);
	assert_non_null(strstr(o.err, "the most an export can have"));
	ta_out_free(&o);
	o = ta_ctl(t->home, "export", "add", "/vol/vol0/new", "--client", "*",
	    NULL);
	assert_int_equal(o.status, 1);
	assert_non_null(strstr(o.err, "the most the NFS server serves"));
	ta_out_free(&o);
	js = ta_ctl_expect(0, t->home, "--json", "export", "list", NULL);
	assert_int_equal(count_of(js, "\"client\": "), 64 + 63);
	assert_null(strstr(js, "10.0.1.1"));
	assert_null(strstr(js, "/vol/vol0/new"));
	free(js);

	/* Room again: both go in. */
	free(ta_ctl_expect(0, t->home, "export", "remove", "/vol/vol0",
	    "--client", "10.0.0.64", NULL));
	free(ta_ctl_expect(0, t->home, "export", "add", "/vol/vol0",
	    "--client", "10.0.1.1", NULL));
	free(ta_ctl_expect(0, t->home, "export", "remove", "/vol/vol0/d63",
	    NULL));
	free(ta_ctl_expect(0, t->home, "export", "add", "/vol/vol0/new",
	    "--client", "*", NULL));
}

/*
 * Flags that set the same option (--rw and --ro, --secure and
 * --insecure) given together are a usage error: the last one used to win
 * without a word, so "--secure yes --insecure" exported insecure and
 * "export modify --ro --rw" made a rule writable.  Nothing changes.
 */
static void test_conflicting_flags(void **state)
{
	struct ta_fx *t = *state;
	char *before, *after;

	create_vol(t, "vol0");
	free(ta_ctl_expect(0, t->home, "export", "add", "/vol/vol0",
	    "--client", "10.0.0.0/8", NULL));
	before = ta_ctl_expect(0, t->home, "--json", "export", "list", NULL);
#define BAD(...) free(ta_ctl_expect(2, t->home, __VA_ARGS__, NULL))
	BAD("export", "add", "/vol/vol0", "--client", "h1", "--rw", "--ro");
	BAD("export", "add", "/vol/vol0", "--client", "h1", "--ro", "--rw");
	BAD("export", "add", "/vol/vol0", "--client", "h1", "--secure", "yes",
	    "--insecure");
	BAD("export", "add", "/vol/vol0", "--client", "h1", "--insecure",
	    "--secure", "yes");
	BAD("export", "add", "/vol/vol0", "--client", "h1", "--access", "ro",
	    "--rw");
	BAD("export", "modify", "/vol/vol0", "--client", "10.0.0.0/8", "--ro",
	    "--rw");
#undef BAD
	after = ta_ctl_expect(0, t->home, "--json", "export", "list", NULL);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

/*
 * events --since a time past what an int64 of nanoseconds holds (year
 * 3000, a 13-digit epoch) lists no event: the product used to wrap and
 * match every event.  A date before 1970 lists them all.
 */
static void test_events_since_range(void **state)
{
	struct ta_fx *t = *state;
	static const char *const none[] = { "3000-01-01", "9999999999999",
		"2262-04-12", "18446744073" };
	char *js;

	create_vol(t, "vol0");
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		js = ta_ctl_expect(0, t->home, "--json", "events", "--since",
		    none[i], NULL);
		if (strstr(js, "volume.created") != NULL)
			fail_msg("events --since %s: %s", none[i], js);
		free(js);
	}
	js = ta_ctl_expect(0, t->home, "--json", "events", "--since",
	    "1960-01-01", NULL);
	ta_json_eq(js, "$.events[0].kind", "volume.created");
	free(js);
}

/* disk list of a volume that does not exist says so (exit 1), as every
 * other verb naming a volume does; it used to list "no disks", exit 0. */
static void test_disk_list_unknown(void **state)
{
	struct ta_fx *t = *state;
	struct ta_out o;

	create_vol(t, "vol0");
	o = ta_ctl(t->home, "disk", "list", "vol1", NULL);
	assert_int_equal(o.status, 1);
	assert_non_null(strstr(o.err, "no volume named vol1"));
	ta_out_free(&o);
	ta_daemon_start(&t->d, t->home);
	o = ta_ctl(t->home, "disk", "list", "vol1", NULL);
	assert_int_equal(o.status, 1);
	assert_non_null(strstr(o.err, "no volume named vol1"));
	ta_out_free(&o);
	free(ta_ctl_expect(0, t->home, "disk", "list", "vol0", NULL));
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

/* A program run (ta_runv) on a thread of its own. */
struct bg_run {
	const char *const *argv;
	struct ta_out o;
	pthread_t thread;
};

static void *bg_run_main(void *arg)
{
	struct bg_run *b = arg;

	b->o = ta_runv(b->argv, -1, NULL);
	return NULL;
}

/*
 * The home lock held, past the 10 s both programs wait, by something that
 * is not a live filerd (an offline filerctl edit; the pid file may still
 * name a filerd that died): filerd's refusal and filerctl's both say a
 * filerctl holds it.  They used to name the pid in the file as a running
 * filerd and tell the administrator to "kill -TERM" it: a dead pid (maybe
 * reused since), or 0, the caller's own process group.  Neither takes the
 * lock, so the two wait out their 10 s side by side.
 */
static void test_lock_held_by_ctl(void **state)
{
	struct ta_fx *t = *state;
	char pidpath[2100], pidbuf[32];
	const char *const filerd_argv[] = { "filerd", "--home", t->home,
	    "--foreground", NULL };
	struct bg_run filerd_run = { .argv = filerd_argv };
	struct ta_out o;
	pid_t dead;
	int fd, st;

	create_vol(t, "vol0");
	dead = fork();
	assert_true(dead >= 0);
	if (dead == 0)
		_exit(0);
	assert_int_equal(waitpid(dead, &st, 0), dead);
	/* As an offline filerctl holds it, over a dead filerd's pid. */
	snprintf(pidpath, sizeof(pidpath), "%s/filerd.pid", t->home);
	fd = open(pidpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	snprintf(pidbuf, sizeof(pidbuf), "%ld\n", (long)dead);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, pidbuf, strlen(pidbuf), 0),
	    (ssize_t)strlen(pidbuf));
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);

	assert_int_equal(pthread_create(&filerd_run.thread, NULL, bg_run_main,
	    &filerd_run), 0);
	o = ta_ctl(t->home, "vol", "list", NULL);
	assert_int_equal(pthread_join(filerd_run.thread, NULL), 0);
	assert_int_equal(filerd_run.o.status, 1);
	if (strstr(filerd_run.o.err, "locked by a filerctl") == NULL ||
	    strstr(filerd_run.o.err, "kill") != NULL)
		fail_msg("filerd said: %s", filerd_run.o.err);
	ta_out_free(&filerd_run.o);
	assert_int_equal(o.status, 1);
	if (strstr(o.err, "locked by another filerctl") == NULL)
		fail_msg("filerctl said: %s", o.err);
	ta_out_free(&o);

	/* Released: both go on. */
	close(fd);
	free(ta_ctl_expect(0, t->home, "vol", "list", NULL));
	ta_daemon_start(&t->d, t->home);
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

/*
 * A mistyped --home: a verb that only reads (or edits what must exist
 * first) says there is no configuration there, exit 1, and leaves no
 * trace (it used to make the directory, filer.db and filerd.pid, then
 * answer "no volumes").  vol create and config set still make a home.
 */
static void test_no_home(void **state)
{
	struct ta_fx *t = *state;
	char missing[2100], empty[2100];
	struct ta_out o;
	char *ls;

	snprintf(missing, sizeof(missing), "%s/nosuch", t->dir);
	snprintf(empty, sizeof(empty), "%s/empty", t->dir);
	assert_int_equal(mkdir(empty, 0755), 0);
	o = ta_ctl(missing, "vol", "list", NULL);
	assert_int_equal(o.status, 1);
	assert_non_null(strstr(o.err, "holds no filer configuration"));
	ta_out_free(&o);
	assert_false(ta_exists(missing));
	{
		static const char *const verbs[][3] = {
			{ "vol", "list", NULL }, { "config", "get", NULL },
			{ "events", NULL, NULL }, { "export", "list", NULL },
			{ "disk", "list", NULL }, { "vol", "status", "vol0" },
		};

		for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]);
		    i++) {
			o = ta_ctl(empty, verbs[i][0], verbs[i][1],
			    verbs[i][2], NULL);
			assert_int_equal(o.status, 1);
			assert_non_null(strstr(o.err, "holds no filer "
			    "configuration"));
			ta_out_free(&o);
		}
	}
	ls = ta_dir_listing(empty);
	assert_string_equal(ls, "");
	free(ls);
	/* A verb that configures makes the home, as before. */
	free(ta_ctl_expect(0, empty, "config", "set", "log_level", "debug",
	    NULL));
	free(ta_ctl_expect(0, empty, "vol", "list", NULL));
	free(ta_ctl_expect(0, missing, "vol", "create", "vol0", "--disks", "3",
	    "--parity", "1", "--size", "8M", NULL));
	free(ta_ctl_expect(0, missing, "vol", "status", "vol0", NULL));
}

/* check --snapshot with a long name (snapshot names run to 63 bytes) on
 * an online volume names it whole in its answer; the job kept 31 bytes. */
static void test_check_long_snapshot(void **state)
{
	struct ta_fx *t = *state;
	const char *snap = "before-the-upgrade-of-the-home-directories.2026";
	char *out;

	create_vol(t, "vol0");
	ta_daemon_start(&t->d, t->home);
	free(ta_ctl_expect(0, t->home, "snap", "create", "vol0", snap, NULL));
	out = ta_ctl_expect(0, t->home, "check", "vol0", "--snapshot", snap,
	    NULL);
	if (strstr(out, snap) == NULL)
		fail_msg("check said: %s", out);
	free(out);
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

/* --home without a directory (last on the line, or "--home=") is a usage
 * error that says so, for filerctl and filerd alike; it was called an
 * unknown option, or (filerctl --home=) a bad home with exit 1. */
static void test_home_without_dir(void **state)
{
	static const char *const lines[][4] = {
		{ "filerctl", "--home", NULL, NULL },
		{ "filerctl", "--json", "--home", NULL },
		{ "filerctl", "--home=", "vol", "list" },
		{ "filerd", "--home", NULL, NULL },
		{ "filerd", "--foreground", "--home", NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		const char *argv[5] = { lines[i][0], lines[i][1], lines[i][2],
			lines[i][3], NULL };
		struct ta_out o = ta_runv(argv, -1, NULL);

		if (o.status != 2 || strstr(o.err, "--home needs a "
		    "directory") == NULL)
			fail_msg("%s %s: exit %d: %s", lines[i][0],
			    lines[i][1], o.status, o.err);
		ta_out_free(&o);
	}
}

/*
 * snap schedule keep counts are 0..200 each, but a volume holds at most
 * 255 snapshots: a schedule whose counts add up to more (with the ones
 * already stored) is refused, exit 1, and the schedule stays as it was;
 * it used to be stored, and scheduled snapshots then failed once the
 * table was full.
 */
static void test_schedule_total(void **state)
{
	struct ta_fx *t = *state;
	struct ta_out o;
	char *js;

	create_vol(t, "vol0");
	o = ta_ctl(t->home, "snap", "schedule", "vol0", "--hourly", "200",
	    "--daily", "100", NULL);
	assert_int_equal(o.status, 1);
	assert_non_null(strstr(o.err, "at most 255 snapshots"));
	ta_out_free(&o);
	free(ta_ctl_expect(0, t->home, "snap", "schedule", "vol0", "--hourly",
	    "200", NULL));
	free(ta_ctl_expect(1, t->home, "snap", "schedule", "vol0", "--daily",
	    "56", NULL));
	free(ta_ctl_expect(0, t->home, "snap", "schedule", "vol0", "--daily",
	    "50", "--weekly", "5", NULL));
	js = ta_ctl_expect(0, t->home, "--json", "snap", "schedule", "vol0",
	    NULL);
	ta_json_eq(js, "$.schedule.hourly", "200");
	ta_json_eq(js, "$.schedule.daily", "50");
	ta_json_eq(js, "$.schedule.weekly", "5");
	free(js);
}

/*
 * A reply over the protocol's 16 MiB (events --limit 100000 of long
 * messages): filerd answers that it is too large and how to narrow it;
 * filerctl running the verb itself, without filerd, now answers the same
 * (it printed "filerctl: " and nothing else, exit 1).
 */
static void test_reply_too_large(void **state)
{
	struct ta_fx *t = *state;
	struct ta_out o;
	char *js;

	create_vol(t, "vol0");
	db_edit(t, "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
	    "FROM k WHERE i < 99990) INSERT INTO events (time_ns, volume, "
	    "kind, message) SELECT 1700000000000000000 + i, NULL, 'test', "
	    "printf('%0200d', i) FROM k;");
	for (int round = 0; round < 2; round++) {
		if (round == 1)
			ta_daemon_start(&t->d, t->home);
		o = ta_ctl(t->home, "events", "--limit", "100000", NULL);
		assert_int_equal(o.status, 1);
		if (strstr(o.err, "the reply is too large; narrow the "
		    "request") == NULL)
			fail_msg("%s filerd: %s", round ? "with" : "without",
			    o.err);
		ta_out_free(&o);
		js = ta_ctl_expect(0, t->home, "--json", "events", "--limit",
		    "10", NULL);
		assert_true(ta_json_valid(js));
		free(js);
	}
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

/*
 * With --json a script reads one JSON object on stdout whatever went
 * wrong (filerctl(8): "also on errors"): arguments filerctl refuses
 * itself, before anything is sent, included.  Those used to print only
 * to stderr, leaving stdout empty.
 */
static void test_json_errors(void **state)
{
	struct ta_fx *t = *state;
	char empty[2100];
	static const char *const lines[][10] = {
		{ "--json", "vol", "create", "vol1", NULL },
		{ "vol", "create", "vol1", "--json", "--disks", "3", "--parity",
		    "9", "--size", "8M" },
		{ "--json", "export", "add", "/vol/vol0", "--client", "h",
		    "--rw", "--ro", NULL },
		{ "--json", "vol", "status", "vol0", "extra", NULL },
		{ "--json", "vol", "frobnicate", NULL },
		{ "--json", "events", "--since", "yesterday", NULL },
	};

	create_vol(t, "vol0");
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		const char *argv[14] = { "filerctl", "--home", t->home };
		struct ta_out o;
		size_t n = 3;

		for (size_t k = 0; k < 10 && lines[i][k] != NULL; k++)
			argv[n++] = lines[i][k];
		argv[n] = NULL;
		o = ta_runv(argv, -1, NULL);
		if (o.status != 2 || !ta_json_valid(o.out))
			fail_msg("%s %s: exit %d, stdout '%s'", lines[i][1],
			    lines[i][2], o.status, o.out);
		ta_json_eq(o.out, "$.status", "2");
		assert_non_null(strstr(o.err, "filerctl: "));
		ta_out_free(&o);
	}
	/* An error filerctl meets running a verb itself: status 1. */
	snprintf(empty, sizeof(empty), "%s/empty", t->dir);
	assert_int_equal(mkdir(empty, 0755), 0);
	{
		struct ta_out o = ta_ctl(empty, "--json", "vol", "list", NULL);

		assert_int_equal(o.status, 1);
		assert_true(ta_json_valid(o.out));
		ta_json_eq(o.out, "$.status", "1");
		ta_out_free(&o);
	}
}

/*
 * An export rule whose anonymous uid does not fit 32 bits (4294967296
 * wrapped to 0: squashed users served as root) or whose squash is no
 * known one is not served: filerd leaves that rule out and records an
 * export.refused event; the other rules serve.
 */
static void test_db_bad_export_rule(void **state)
{
	struct ta_fx *t = *state;
	uint16_t ports[2];
	char np[8], mp[8], *js;

	create_vol(t, "vol0");
	assert_int_equal(tl_free_ports(ports, 2), 0);
	snprintf(np, sizeof(np), "%u", ports[0]);
	snprintf(mp, sizeof(mp), "%u", ports[1]);
	free(ta_ctl_expect(0, t->home, "config", "set", "nfs_port", np, NULL));
	free(ta_ctl_expect(0, t->home, "config", "set", "mount_port", mp,
	    NULL));
	free(ta_ctl_expect(0, t->home, "export", "add", "/vol/vol0",
	    "--client", "10.0.0.0/8", "--squash", "all", "--anonuid", "1000",
	    NULL));
	free(ta_ctl_expect(0, t->home, "export", "add", "/vol/vol0",
	    "--client", "10.1.0.0/16", "--squash", "root", NULL));
	free(ta_ctl_expect(0, t->home, "export", "add", "/vol/vol0",
	    "--client", "*", NULL));
	db_edit(t, "UPDATE export_rules SET anonuid = 4294967296 WHERE "
	    "client = '10.0.0.0/8';"
	    "UPDATE export_rules SET squash = 'some' WHERE "
	    "client = '10.1.0.0/16';");
	ta_daemon_start(&t->d, t->home);
	js = ta_ctl_expect(0, t->home, "--json", "events", NULL);
	if (strstr(js, "/vol/vol0: the rule for 10.0.0.0/8 holds impossible "
	    "values") == NULL || strstr(js, "/vol/vol0: the rule for "
	    "10.1.0.0/16 holds impossible values") == NULL ||
	    strstr(js, "rule for *") != NULL)
		fail_msg("events: %s", js);
	free(js);
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

/*
 * Another program holds the database's write lock (an sqlite3 shell in
 * a transaction, say) past the 5 s busy timeout: vol offline and vol
 * destroy fail (exit 1) and leave the volume as it was, online and
 * serving.  They used to take it down first and fail on the database
 * after, leaving it offline now but online again at the next start, and
 * destroy not done.  vol online answered "online" with the database
 * still saying offline, so the volume stayed down after a restart.
 */
static void test_db_locked_volume_verbs(void **state)
{
	struct ta_fx *t = *state;
	char path[2100], *js;
	sqlite3 *db;
	struct ta_out o;

	create_vol(t, "vol0");
	ta_daemon_start(&t->d, t->home);
	snprintf(path, sizeof(path), "%s/filer.db", t->home);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	o = ta_ctl(t->home, "vol", "offline", "vol0", NULL);
	assert_int_equal(o.status, 1);
	ta_out_free(&o);
	o = ta_ctl(t->home, "vol", "destroy", "vol0", "--force", NULL);
	assert_int_equal(o.status, 1);
	ta_out_free(&o);
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);

	/* vol online likewise: it is not brought up unless the database
	 * says so, or it would be down again after the next start. */
	free(ta_ctl_expect(0, t->home, "vol", "offline", "vol0", NULL));
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	o = ta_ctl(t->home, "vol", "online", "vol0", NULL);
	assert_int_equal(o.status, 1);
	ta_out_free(&o);
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	js = ta_ctl_expect(0, t->home, "--json", "vol", "status", "vol0",
	    NULL);
	ta_json_eq(js, "$.volume.state", "offline");
	ta_json_eq(js, "$.volume.configured_state", "offline");
	free(js);
	free(ta_ctl_expect(0, t->home, "vol", "online", "vol0", NULL));
	assert_int_equal(ta_daemon_stop(&t->d), 0);
	ta_daemon_start(&t->d, t->home);

	js = ta_ctl_expect(0, t->home, "--json", "vol", "status", "vol0",
	    NULL);
	ta_json_eq(js, "$.volume.state", "online");
	ta_json_eq(js, "$.volume.configured_state", "online");
	free(js);
	/* The lock gone, both work. */
	free(ta_ctl_expect(0, t->home, "vol", "offline", "vol0", NULL));
	free(ta_ctl_expect(0, t->home, "vol", "online", "vol0", NULL));
	free(ta_ctl_expect(0, t->home, "vol", "destroy", "vol0", "--force",
	    NULL));
	js = ta_ctl_expect(0, t->home, "--json", "vol", "list", NULL);
	assert_null(strstr(js, "vol0"));
	free(js);
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

/* disk add-spare on a database that cannot be written fails before raid
 * labels anything: no spare in use that the database does not list.  The
 * lock gone, the same spare is added and listed. */
static void test_db_locked_add_spare(void **state)
{
	struct ta_fx *t = *state;
	char path[2100], spare[2100], *js;
	sqlite3 *db;
	struct ta_out o;

	create_vol(t, "vol0");
	ta_daemon_start(&t->d, t->home);
	snprintf(path, sizeof(path), "%s/filer.db", t->home);
	snprintf(spare, sizeof(spare), "%s/spare0.img", t->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	o = ta_ctl(t->home, "disk", "add-spare", "vol0", spare, NULL);
	assert_int_equal(o.status, 1);
	ta_out_free(&o);
	if (ta_exists(spare))
		fail_msg("a spare the database did not record was labelled "
		    "(%s exists)", spare);
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	free(ta_ctl_expect(0, t->home, "disk", "add-spare", "vol0", spare,
	    NULL));
	js = ta_ctl_expect(0, t->home, "--json", "disk", "list", "vol0", NULL);
	assert_int_equal(count_of(js, "spare0.img"), 1);
	free(js);
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

/* filerd's test knob FILER_CLOCK_SCALE outside 1..10000000 is refused
 * (exit 2) before anything starts; "nan" passed the range check (NaN
 * compares false) and made the schedule clock undefined. */
static void test_clock_scale_env(void **state)
{
	struct ta_fx *t = *state;
	static const char *const bad[] = { "nan", "NAN", "-nan", "0.5", "inf",
		"", "2x" };

	/* A home that cannot be made: a knob let through fails there
	 * (exit 1) instead of running a filerd. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *env[] = { "FILER_CLOCK_SCALE", bad[i], NULL };
		struct ta_out o = ta_runv((const char *const[]){ "filerd",
		    "--home", "/dev/null/home", "--foreground", NULL }, -1,
		    env);

		if (o.status != 2 || strstr(o.err, "FILER_CLOCK_SCALE") ==
		    NULL)
			fail_msg("FILER_CLOCK_SCALE=%s: exit %d: %s", bad[i],
			    o.status, o.err);
		ta_out_free(&o);
	}
	(void)t;
}

/*
 * Scheduled snapshots are named KIND.YYYY-MM-DD_HHMM and the schedule
 * prunes every snapshot of that shape; docs promise that snapshots taken
 * by hand are never pruned, so snap create refuses such a name (exit 1)
 * and takes any other, "hourly.keep" or "hourly.2026-11-25" included.
 */
static void test_snap_schedule_names(void **state)
{
	struct ta_fx *t = *state;
	static const char *const refused[] = { "hourly.2026-11-25_1900",
		"daily.2026-11-25_0000", "weekly.2026-11-23_0000" };
	char *js;

	create_vol(t, "vol0");
	ta_daemon_start(&t->d, t->home);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		struct ta_out o = ta_ctl(t->home, "snap", "create", "vol0",
		    refused[i], NULL);

		if (o.status != 1 || strstr(o.err, "belong to the snapshot "
		    "schedule") == NULL)
			fail_msg("snap create %s: exit %d: %s", refused[i],
			    o.status, o.err);
		ta_out_free(&o);
	}
	free(ta_ctl_expect(0, t->home, "snap", "create", "vol0",
	    "hourly.keep", NULL));
	free(ta_ctl_expect(0, t->home, "snap", "create", "vol0",
	    "hourly.2026-11-25", NULL));
	js = ta_ctl_expect(0, t->home, "--json", "snap", "list", "vol0", NULL);
	assert_null(strstr(js, "_1900"));
	assert_non_null(strstr(js, "hourly.keep"));
	free(js);
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_db_bad_geometry, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_db_bad_settings, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_export_limits, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_conflicting_flags, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_events_since_range, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_disk_list_unknown, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lock_held_by_ctl, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_home, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_long_snapshot, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_home_without_dir, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_schedule_total, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reply_too_large, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_json_errors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_db_bad_export_rule, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_db_locked_volume_verbs,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_locked_add_spare,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_clock_scale_env, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_snap_schedule_names, setup,
		    teardown),
	};

	ta_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
