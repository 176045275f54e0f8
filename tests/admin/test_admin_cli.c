/*
 * tests/admin/test_admin_cli.c: filerd and filerctl end to end, as an
 * administrator uses them: volume lifecycle across a restart, a second
 * filerd refused, every bad-input case leaving database and disks
 * unchanged (A2), JSON output, exports and settings round trips, help,
 * the socket's permissions, and verbs that need a running filerd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/admin/ta.h"
#include "tests/lib/tl_port.h"
#include "tests/lib/tl_tmpdir.h"

static int setup(void **state)
{
	return ta_fx_setup(state, "filer-admin");
}

static int teardown(void **state)
{
	return ta_fx_teardown(state);
}

static void create_vol(struct ta_fx *t, const char *name, const char *disks,
    const char *parity)
{
	free(ta_ctl_expect(0, t->home, "vol", "create", name, "--disks", disks,
	    "--parity", parity, "--size", "8M", NULL));
}

/* Volume lifecycle: create (offline), start, status, snapshot, clean stop,
 * restart keeps volume and snapshot; a second filerd is refused. */
static void test_lifecycle(void **state)
{
	struct ta_fx *t = *state;
	struct ta_daemon second;
	struct ta_out o;
	char *js, path[PATH_MAX + 32];
	char pidtxt[32];

	/* Without filerd, vol create edits the database directly. */
	create_vol(t, "vol0", "4", "1");
	js = ta_ctl_expect(0, t->home, "--json", "vol", "list", NULL);
	assert_true(ta_json_valid(js));
	ta_json_eq(js, "$.volumes[0].name", "vol0");
	ta_json_eq(js, "$.volumes[0].state", "online");
	assert_int_equal(ta_json_long(js, "$.volumes[0].data_disks"), 3);
	free(js);

	ta_daemon_start(&t->d, t->home);
	snprintf(pidtxt, sizeof(pidtxt), "pid %ld", (long)t->d.pid);

	/* A second filerd on the same home: refused, naming the first. */
	{
		const char *argv[] = { "filerd", "--home", t->home,
		    "--foreground", NULL };

		o = ta_runv(argv, -1, NULL);
		assert_int_equal(o.status, 1);
		assert_non_null(strstr(o.err, "already running"));
		assert_non_null(strstr(o.err, pidtxt));
		ta_out_free(&o);
		(void)second;
	}

	js = ta_ctl_expect(0, t->home, "--json", "vol", "status", "vol0", NULL);
	ta_json_eq(js, "$.volume.state", "online");
	ta_json_eq(js, "$.volume.raid", "normal");
	assert_int_equal(ta_json_long(js, "$.volume.size_bytes") > 0, 1);
	ta_json_eq(js, "$.disks[3].role", "parity");
	ta_json_eq(js, "$.disks[0].state", "ok");
	assert_int_equal(ta_json_long(js, "$.disks[0].timeouts"), 0);
	free(js);
	free(ta_ctl_expect(0, t->home, "snap", "create", "vol0", "before",
	    NULL));
	js = ta_ctl_expect(0, t->home, "--json", "stats", "vol0", NULL);
	assert_true(ta_json_long(js, "$.stats.cps") >= 1);
	assert_int_equal(ta_json_long(js, "$.stats.disk_timeouts"), 0);
	assert_int_equal(ta_json_long(js, "$.stats.orphans"), 0);
	free(js);

	/* SIGTERM: exit 0, socket and pid file gone. */
	assert_int_equal(ta_daemon_stop(&t->d), 0);
	snprintf(path, sizeof(path), "%s/filerd.sock", t->home);
	assert_false(ta_exists(path));
	snprintf(path, sizeof(path), "%s/filerd.pid", t->home);
	assert_false(ta_exists(path));

	/* Restart: the volume comes back with its snapshot. */
	ta_daemon_start(&t->d, t->home);
	js = ta_ctl_expect(0, t->home, "--json", "snap", "list", "vol0", NULL);
	ta_json_eq(js, "$.snapshots[0].name", "before");
	free(js);
	js = ta_ctl_expect(0, t->home, "--json", "vol", "list", NULL);
	ta_json_eq(js, "$.volumes[0].state", "online");
	free(js);
	js = ta_ctl_expect(0, t->home, "--json", "check", "vol0", NULL);
	assert_int_equal(ta_json_long(js, "$.check.errors"), 0);
	free(js);
	js = ta_ctl_expect(0, t->home, "--json", "events", NULL);
	assert_true(ta_json_valid(js));
	assert_non_null(strstr(js, "\"filerd.stopped\""));
	assert_non_null(strstr(js, "\"snapshot.created\""));
	free(js);

	/* offline / online round trip while running. */
	free(ta_ctl_expect(0, t->home, "vol", "offline", "vol0", NULL));
	js = ta_ctl_expect(0, t->home, "--json", "vol", "list", NULL);
	ta_json_eq(js, "$.volumes[0].state", "offline");
	free(js);
	free(ta_ctl_expect(1, t->home, "snap", "list", "vol0", NULL));
	free(ta_ctl_expect(0, t->home, "vol", "online", "vol0", NULL));
	js = ta_ctl_expect(0, t->home, "--json", "snap", "list", "vol0", NULL);
	ta_json_eq(js, "$.snapshots[0].name", "before");
	free(js);
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

/* Each bad input: the stated exit status, and nothing changed. */
static void check_unchanged(struct ta_fx *t, const char *before_db,
    const char *before_disks)
{
	char disks[PATH_MAX + 16];
	char *now = ta_ctl_expect(0, t->home, "--json", "vol", "list", NULL);
	char *now_disks, *now_dl;

	snprintf(disks, sizeof(disks), "%s/disks", t->home);
	now_disks = ta_dir_listing(disks);
	now_dl = ta_ctl_expect(0, t->home, "--json", "disk", "list", NULL);
	assert_string_equal(now, before_db);
	assert_string_equal(now_disks, before_disks);
	free(now);
	free(now_disks);
	free(now_dl);
}

static void bad_inputs(struct ta_fx *t, const char *keep)
{
	char disks[PATH_MAX + 16], used[PATH_MAX + 32], nvlog[PATH_MAX + 64];
	char *before, *before_disks;
	struct ta_out o;

	snprintf(disks, sizeof(disks), "%s/disks", t->home);
	snprintf(used, sizeof(used), "%s/vol0-d1.img", disks);
	before = ta_ctl_expect(0, t->home, "--json", "vol", "list", NULL);
	before_disks = ta_dir_listing(disks);

#define BAD(st, ...) do { \
	free(ta_ctl_expect(st, t->home, __VA_ARGS__, NULL)); \
	check_unchanged(t, before, before_disks); \
} while (0)
	/* Usage (2): malformed values, missing or unknown arguments. */
	BAD(2, "vol", "create", "v2", "--disks", "4", "--parity", "1",
	    "--size", "12Q");
	BAD(2, "vol", "create", "v2", "--disks", "4", "--parity", "1",
	    "--size", "1000000");			/* not 4K-aligned */
	BAD(2, "vol", "create", "v2", "--disks", "4", "--parity", "1",
	    "--size", "4K");				/* too small */
	BAD(2, "vol", "create", "v2", "--disks", "2", "--parity", "2",
	    "--size", "8M");				/* no data disk */
	BAD(2, "vol", "create", "v2", "--disks", "4", "--parity", "7",
	    "--size", "8M");
	BAD(2, "vol", "create", "2bad", "--disks", "4", "--parity", "1",
	    "--size", "8M");				/* bad name */
	BAD(2, "vol", "create", "v2", "--disks", "4", "--parity", "1");
	BAD(2, "vol", "create", "v2", "--disks", "4", "--parity", "1",
	    "--size", "8M", "--colour", "blue");
	BAD(2, "vol", "create", "v2", "extra", "--disks", "4", "--parity",
	    "1", "--size", "8M");
	BAD(2, "vol", "frobnicate");
	BAD(2, "export", "add", "/data", "--client", "*");
	BAD(2, "export", "add", "/vol/vol0", "--client", "10.0.0.0/99");
	BAD(2, "config", "set", "cp_interval_ms");
	BAD(2, "vol", "destroy", "vol0");		/* no --force */
	/* Errors (1): well-formed but refused. */
	BAD(1, "vol", "create", "vol0", "--disks", "4", "--parity", "1",
	    "--size", "8M");				/* duplicate */
	BAD(1, "vol", "status", "nosuch");
	BAD(1, "vol", "destroy", "nosuch", "--force");
	BAD(1, "vol", "create", "v2", "--disks", "3", "--parity", "1",
	    "--size", "8M", "--dir", "/nonexistent/dir");
	BAD(1, "export", "add", "/vol/nosuch", "--client", "*");
	BAD(1, "config", "set", "cp_interval_ms", "10");	/* range */
	BAD(1, "config", "set", "disk_io_timeout_ms", "50");	/* range */
	BAD(1, "config", "set", "disk_io_timeout_ms", "3s");
	BAD(1, "config", "set", "no_such_key", "1");
	BAD(1, "config", "set", "log_level", "loud");
#undef BAD

	/* A disk in use by another volume, and a destroyed volume's disks
	 * left in place: both refused, nothing changed. */
	o = ta_ctl(t->home, "vol", "create", keep, "--disks", "3",
	    "--parity", "1", "--size", "8M", NULL);
	assert_int_equal(o.status, 0);
	ta_out_free(&o);
	free(ta_ctl_expect(0, t->home, "vol", "destroy", keep, "--force",
	    "--keep-disks", NULL));
	free(before);
	free(before_disks);
	before = ta_ctl_expect(0, t->home, "--json", "vol", "list", NULL);
	before_disks = ta_dir_listing(disks);
	o = ta_ctl(t->home, "vol", "create", keep, "--disks", "3",
	    "--parity", "1", "--size", "8M", NULL);
	assert_int_equal(o.status, 1);
	assert_non_null(strstr(o.err, "already exists"));
	ta_out_free(&o);
	check_unchanged(t, before, before_disks);
	snprintf(nvlog, sizeof(nvlog), "%s/%s-d0.img", disks, keep);
	assert_true(ta_exists(nvlog));

	o = ta_ctl(t->home, "disk", "add-spare", "vol0", used, NULL);
	if (o.status != 2) {	/* needs filerd: refused either way */
		assert_int_equal(o.status, 1);
		assert_true(strstr(o.err, "in use by volume vol0") != NULL ||
		    strstr(o.err, "not running") != NULL);
	}
	ta_out_free(&o);
	check_unchanged(t, before, before_disks);
	free(before);
	free(before_disks);
}

static void test_bad_inputs(void **state)
{
	struct ta_fx *t = *state;

	create_vol(t, "vol0", "4", "1");
	/* Without filerd (direct database edits)... */
	bad_inputs(t, "keep1");
	/* ...and through filerd: the same answers. */
	ta_daemon_start(&t->d, t->home);
	bad_inputs(t, "keep2");
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

/* Verbs that need filerd say how to start it. */
static void test_needs_daemon(void **state)
{
	struct ta_fx *t = *state;
	struct ta_out o;

	create_vol(t, "vol0", "3", "1");
	o = ta_ctl(t->home, "snap", "create", "vol0", "s1", NULL);
	assert_int_equal(o.status, 1);
	assert_non_null(strstr(o.err, "filerd is not running on"));
	assert_non_null(strstr(o.err, "start it with: filerd --home"));
	ta_out_free(&o);
	o = ta_ctl(t->home, "stats", NULL);
	assert_int_equal(o.status, 1);
	ta_out_free(&o);
	/* check works offline (read-only mount). */
	free(ta_ctl_expect(0, t->home, "check", "vol0", NULL));
}

static void test_exports_config(void **state)
{
	struct ta_fx *t = *state;
	char *js;

	create_vol(t, "vol0", "3", "1");
	/* Ports of its own, so that NFS starts (and says with how many
	 * workers) while other runners serve on the default ones. */
	uint16_t ports[2];
	char np[8], mp[8];
	assert_int_equal(tl_free_ports(ports, 2), 0);
	snprintf(np, sizeof(np), "%u", ports[0]);
	snprintf(mp, sizeof(mp), "%u", ports[1]);
	free(ta_ctl_expect(0, t->home, "config", "set", "nfs_port", np, NULL));
	free(ta_ctl_expect(0, t->home, "config", "set", "mount_port", mp,
	    NULL));
	ta_daemon_start(&t->d, t->home);
	free(ta_ctl_expect(0, t->home, "export", "add", "/vol/vol0",
	    "--client", "10.0.0.0/8", "--rw", NULL));
	free(ta_ctl_expect(0, t->home, "export", "add", "/vol/vol0",
	    "--client", "*", "--squash", "all", "--anonuid", "1000",
	    "--insecure", NULL));
	free(ta_ctl_expect(0, t->home, "export", "add", "/vol/vol0/home",
	    "--client", "host1.lab", NULL));
	free(ta_ctl_expect(1, t->home, "export", "add", "/vol/vol0",
	    "--client", "*", NULL));	/* duplicate rule */
	js = ta_ctl_expect(0, t->home, "--json", "export", "list", NULL);
	assert_true(ta_json_valid(js));
	ta_json_eq(js, "$.exports[0].path", "/vol/vol0");
	ta_json_eq(js, "$.exports[0].client", "10.0.0.0/8");
	ta_json_eq(js, "$.exports[0].access", "rw");
	ta_json_eq(js, "$.exports[0].squash", "root");
	ta_json_eq(js, "$.exports[1].client", "*");
	ta_json_eq(js, "$.exports[1].squash", "all");
	ta_json_eq(js, "$.exports[1].anonuid", "1000");
	ta_json_eq(js, "$.exports[1].secure", "0");
	ta_json_eq(js, "$.exports[2].path", "/vol/vol0/home");
	ta_json_eq(js, "$.exports[2].access", "ro");
	free(js);
	free(ta_ctl_expect(0, t->home, "export", "modify", "/vol/vol0",
	    "--client", "*", "--ro", "--squash", "none", NULL));
	js = ta_ctl_expect(0, t->home, "--json", "export", "list",
	    "/vol/vol0", NULL);
	ta_json_eq(js, "$.exports[1].squash", "none");
	free(js);
	free(ta_ctl_expect(0, t->home, "export", "remove", "/vol/vol0",
	    "--client", "10.0.0.0/8", NULL));
	free(ta_ctl_expect(0, t->home, "export", "remove", "/vol/vol0/home",
	    NULL));
	free(ta_ctl_expect(1, t->home, "export", "remove", "/vol/vol0/home",
	    NULL));
	js = ta_ctl_expect(0, t->home, "--json", "export", "list", NULL);
	ta_json_eq(js, "$.exports[0].client", "*");
	assert_null(ta_json(js, "$.exports[1]"));
	free(js);

	/* NFS workers by default: one more than the CPUs, 3 to 64 (filerd
	 * says how many it started). */
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	long workers = (cpus < 2 ? 2 : cpus) + 1;
	char wline[64];
	workers = workers > 64 ? 64 : workers;
	snprintf(wline, sizeof(wline), "), %ld worker threads", workers);
	assert_int_equal(ta_daemon_log_count(&t->d, wline), 1);
	js = ta_ctl_expect(0, t->home, "--json", "config", "get",
	    "nfs_threads", NULL);
	ta_json_eq(js, "$.setting.value", "0");
	ta_json_eq(js, "$.setting.is_default", "1");
	free(js);

	/* Settings: defaults, set, canonical form, survives a restart. */
	js = ta_ctl_expect(0, t->home, "--json", "config", "get",
	    "cp_interval_ms", NULL);
	ta_json_eq(js, "$.setting.value", "10000");
	ta_json_eq(js, "$.setting.is_default", "1");
	free(js);
	free(ta_ctl_expect(0, t->home, "config", "set", "cp_interval_ms",
	    "2000", NULL));
	free(ta_ctl_expect(0, t->home, "config", "set", "cache_bytes", "64M",
	    NULL));
	free(ta_ctl_expect(0, t->home, "config", "set", "log_level", "debug",
	    NULL));
	assert_int_equal(ta_daemon_stop(&t->d), 0);
	/* Offline too (direct edit). */
	free(ta_ctl_expect(0, t->home, "config", "set", "nfs_threads", "16",
	    NULL));
	free(ta_ctl_expect(0, t->home, "config", "set", "disk_io_timeout_ms",
	    "5000", NULL));
	ta_daemon_start(&t->d, t->home);
	js = ta_ctl_expect(0, t->home, "--json", "config", "get", NULL);
	assert_true(ta_json_valid(js));
	free(js);
	js = ta_ctl_expect(0, t->home, "--json", "config", "get",
	    "cache_bytes", NULL);
	ta_json_eq(js, "$.setting.value", "67108864");
	free(js);
	js = ta_ctl_expect(0, t->home, "--json", "config", "get",
	    "nfs_threads", NULL);
	ta_json_eq(js, "$.setting.value", "16");
	free(js);
	assert_int_equal(ta_daemon_log_count(&t->d, "), 16 worker threads"),
	    1);
	js = ta_ctl_expect(0, t->home, "--json", "config", "get",
	    "disk_io_timeout_ms", NULL);
	ta_json_eq(js, "$.setting.value", "5000");
	free(js);
	js = ta_ctl_expect(0, t->home, "--json", "export", "list", NULL);
	ta_json_eq(js, "$.exports[0].client", "*");
	free(js);
	/* SIGHUP reloads; the daemon keeps serving. */
	kill(t->d.pid, SIGHUP);
	ta_sleep_ms(200);
	js = ta_ctl_expect(0, t->home, "--json", "events", "--since", "10m",
	    NULL);
	assert_non_null(strstr(js, "filerd.reload"));
	free(js);
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

static void test_help(void **state)
{
	const char *groups[] = { "vol", "disk", "snap", "export", "config",
	    "scrub" };
	struct ta_out o;

	(void)state;
	o = ta_runv((const char *const[]){ "filerctl", "--help", NULL }, -1,
	    NULL);
	assert_int_equal(o.status, 0);
	assert_non_null(strstr(o.out, "vol create"));
	ta_out_free(&o);
	o = ta_runv((const char *const[]){ "filerctl", NULL }, -1, NULL);
	assert_int_equal(o.status, 2);
	ta_out_free(&o);
	o = ta_runv((const char *const[]){ "filerd", "--bogus", NULL }, -1,
	    NULL);
	assert_int_equal(o.status, 2);
	ta_out_free(&o);
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		o = ta_runv((const char *const[]){ "filerctl", groups[i],
		    "--help", NULL }, -1, NULL);
		assert_int_equal(o.status, 0);
		ta_out_free(&o);
	}
	/* Every verb has --help. */
	{
		const char *verbs[][2] = {
			{ "vol", "create" }, { "vol", "list" },
			{ "vol", "status" }, { "vol", "online" },
			{ "vol", "offline" }, { "vol", "destroy" },
			{ "disk", "list" }, { "disk", "fail" },
			{ "disk", "replace" }, { "disk", "add-spare" },
			{ "scrub", "start" }, { "scrub", "status" },
			{ "snap", "create" }, { "snap", "list" },
			{ "snap", "delete" }, { "snap", "rollback" },
			{ "snap", "schedule" }, { "export", "add" },
			{ "export", "list" }, { "export", "remove" },
			{ "export", "modify" }, { "config", "get" },
			{ "config", "set" }, { "stats", NULL },
			{ "events", NULL }, { "check", NULL },
		};

		for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
			const char *argv[] = { "filerctl", verbs[i][0],
			    verbs[i][1] != NULL ? verbs[i][1] : "--help",
			    verbs[i][1] != NULL ? "--help" : NULL, NULL };

			o = ta_runv(argv, -1, NULL);
			if (o.status != 0 || strstr(o.out,
			    "usage: filerctl") == NULL)
				fail_msg("%s %s --help: %d %s", verbs[i][0],
				    verbs[i][1], o.status, o.err);
			ta_out_free(&o);
		}
	}
}

/* The socket is 0600; a caller other than root is refused. */
static void test_socket_permissions(void **state)
{
	struct ta_fx *t = *state;
	char sock[PATH_MAX + 16];
	struct stat st;
	struct ta_out o;

	create_vol(t, "vol0", "3", "1");
	ta_daemon_start(&t->d, t->home);
	snprintf(sock, sizeof(sock), "%s/filerd.sock", t->home);
	assert_int_equal(stat(sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	if (geteuid() == 0) {
		/* Let nobody reach the socket file: only its mode stops it. */
		assert_int_equal(chmod(t->dir, 0755), 0);
		assert_int_equal(chmod(t->home, 0755), 0);
		o = ta_runv((const char *const[]){ "filerctl", "--home",
		    t->home, "vol", "list", NULL }, 65534, NULL);
		if (o.status != 126) {	/* 126: could not drop privileges */
			assert_int_equal(o.status, 1);
			assert_non_null(strstr(o.err, "permission denied"));
		}
		ta_out_free(&o);
	}
	/* The daemon still serves root. */
	free(ta_ctl_expect(0, t->home, "vol", "list", NULL));
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lifecycle, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_inputs, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_needs_daemon, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_exports_config, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_help, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_permissions, setup,
		    teardown),
	};

	ta_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
