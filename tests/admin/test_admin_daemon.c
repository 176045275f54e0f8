/*
 * tests/admin/test_admin_daemon.c: filerd under the events it exists for:
 * a disk failed and rebuilt onto a spare while it runs (and the positions
 * kept across a restart), a volume whose disks are missing reported
 * offline with the reason while the others serve, snapshot schedules on a
 * fast clock, kill -9 in the middle of configuration changes (database
 * consistent, restart clean), concurrent filerctl calls, a scrub; the
 * check of an online volume, which runs while filerd answers other
 * requests, holds the volume's file system until it is done (an offline
 * waits for it) and is answered before a stop; a client that sends its
 * request in two parts, with another client served in between.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "admin/adm_impl.h"
#include "tests/admin/ta.h"
#include "tests/lib/tl_tmpdir.h"

static int setup(void **state)
{
	return ta_fx_setup(state, "filer-admind");
}

static int teardown(void **state)
{
	return ta_fx_teardown(state);
}

/* Poll `vol status` until field at path equals want (15 s bound). */
static void wait_status(struct ta_fx *t, const char *vol, const char *path,
    const char *want)
{
	for (int i = 0; i < 300; i++) {
		char *js = ta_ctl_expect(0, t->home, "--json", "vol", "status",
		    vol, NULL);
		char *got = ta_json(js, path);
		bool ok = got != NULL && strcmp(got, want) == 0;

		free(got);
		if (ok) {
			free(js);
			return;
		}
		if (i == 299)
			fprintf(stderr, "last status: %s\n", js);
		free(js);
		ta_sleep_ms(50);
	}
	fail_msg("vol status %s: %s never became %s", vol, path, want);
}

static void test_disk_fail_rebuild(void **state)
{
	struct ta_fx *t = *state;
	char spare[2200], *js;

	snprintf(spare, sizeof(spare), "%s/spare0.img", t->dir);
	free(ta_ctl_expect(0, t->home, "vol", "create", "vol0", "--disks", "4",
	    "--parity", "1", "--size", "8M", NULL));
	ta_daemon_start(&t->d, t->home);
	free(ta_ctl_expect(0, t->home, "snap", "create", "vol0", "s1", NULL));

	/* disk fail: vol status shows it, the event log has it. */
	free(ta_ctl_expect(0, t->home, "disk", "fail", "vol0", "1", NULL));
	js = ta_ctl_expect(0, t->home, "--json", "vol", "status", "vol0",
	    NULL);
	ta_json_eq(js, "$.disks[1].state", "failed");
	ta_json_eq(js, "$.volume.raid", "degraded");
	free(js);
	free(ta_ctl_expect(1, t->home, "disk", "fail", "vol0", "1", NULL));
	free(ta_ctl_expect(1, t->home, "disk", "fail", "vol0", "9", NULL));
	js = ta_ctl_expect(0, t->home, "--json", "events", "--volume", "vol0",
	    NULL);
	assert_non_null(strstr(js, "\"disk.failed\""));
	free(js);
	/* Still serving on parity. */
	free(ta_ctl_expect(0, t->home, "snap", "create", "vol0", "s2", NULL));
	/* No spare yet: replace says what to do. */
	free(ta_ctl_expect(1, t->home, "disk", "replace", "vol0", "1", NULL));

	free(ta_ctl_expect(0, t->home, "disk", "add-spare", "vol0", spare,
	    NULL));
	free(ta_ctl_expect(0, t->home, "disk", "replace", "vol0", "1",
	    "--wait", NULL));
	wait_status(t, "vol0", "$.volume.raid", "normal");
	js = ta_ctl_expect(0, t->home, "--json", "vol", "status", "vol0",
	    NULL);
	/* The spare (disk 4) now holds position 1. */
	ta_json_eq(js, "$.disks[4].path", spare);
	ta_json_eq(js, "$.disks[4].position", "1");
	ta_json_eq(js, "$.disks[4].state", "ok");
	ta_json_eq(js, "$.disks[1].role", "retired");
	free(js);
	js = ta_ctl_expect(0, t->home, "--json", "events", NULL);
	assert_non_null(strstr(js, "\"rebuild.done\""));
	free(js);

	/* Restart: the database lists the spare at its new position. */
	assert_int_equal(ta_daemon_stop(&t->d), 0);
	js = ta_ctl_expect(0, t->home, "--json", "disk", "list", "vol0",
	    NULL);
	ta_json_eq(js, "$.disks[1].path", spare);
	ta_json_eq(js, "$.disks[1].role", "data");
	free(js);
	ta_daemon_start(&t->d, t->home);
	js = ta_ctl_expect(0, t->home, "--json", "vol", "status", "vol0",
	    NULL);
	ta_json_eq(js, "$.volume.state", "online");
	ta_json_eq(js, "$.volume.raid", "normal");
	free(js);
	js = ta_ctl_expect(0, t->home, "--json", "snap", "list", "vol0", NULL);
	ta_json_eq(js, "$.snapshots[1].name", "s2");
	free(js);

	/* A scrub after the rebuild finds parity consistent. */
	free(ta_ctl_expect(0, t->home, "scrub", "start", "vol0", NULL));
	for (int i = 0; i < 300; i++) {
		char *st;

		js = ta_ctl_expect(0, t->home, "--json", "scrub", "status",
		    "vol0", NULL);
		st = ta_json(js, "$.scrub.state");
		if (st != NULL && strcmp(st, "done") == 0) {
			free(st);
			break;
		}
		free(st);
		free(js);
		js = NULL;
		ta_sleep_ms(50);
	}
	assert_non_null(js);
	assert_int_equal(ta_json_long(js, "$.scrub.mismatches"), 0);
	free(js);
	js = ta_ctl_expect(0, t->home, "--json", "check", "vol0", NULL);
	assert_int_equal(ta_json_long(js, "$.check.errors"), 0);
	free(js);
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

static void test_missing_disks_offline(void **state)
{
	struct ta_fx *t = *state;
	char path[2200], *js;

	free(ta_ctl_expect(0, t->home, "vol", "create", "good", "--disks", "3",
	    "--parity", "1", "--size", "8M", NULL));
	free(ta_ctl_expect(0, t->home, "vol", "create", "bad", "--disks", "3",
	    "--parity", "1", "--size", "8M", NULL));
	free(ta_ctl_expect(0, t->home, "vol", "create", "deg", "--disks", "3",
	    "--parity", "1", "--size", "8M", NULL));
	/* Two disks gone from a single-parity group: beyond parity. */
	for (int k = 0; k < 2; k++) {
		snprintf(path, sizeof(path), "%s/disks/bad-d%d.img", t->home, k);
		assert_int_equal(unlink(path), 0);
	}
	/* One disk gone: runs degraded. */
	snprintf(path, sizeof(path), "%s/disks/deg-d2.img", t->home);
	assert_int_equal(unlink(path), 0);

	ta_daemon_start(&t->d, t->home);
	js = ta_ctl_expect(0, t->home, "--json", "vol", "list", NULL);
	ta_json_eq(js, "$.volumes[0].name", "bad");
	ta_json_eq(js, "$.volumes[0].state", "offline");
	{
		char *reason = ta_json(js, "$.volumes[0].reason");

		assert_non_null(reason);
		assert_non_null(strstr(reason, "missing disks"));
		assert_non_null(strstr(reason, "bad-d0.img"));
		free(reason);
	}
	ta_json_eq(js, "$.volumes[1].name", "deg");
	ta_json_eq(js, "$.volumes[1].state", "online");
	ta_json_eq(js, "$.volumes[1].raid", "degraded");
	ta_json_eq(js, "$.volumes[2].name", "good");
	ta_json_eq(js, "$.volumes[2].state", "online");
	free(js);
	js = ta_ctl_expect(0, t->home, "--json", "events", NULL);
	assert_non_null(strstr(js, "\"volume.offline\""));
	free(js);
	/* The rest keeps running. */
	free(ta_ctl_expect(0, t->home, "snap", "create", "good", "s", NULL));
	free(ta_ctl_expect(0, t->home, "snap", "create", "deg", "s", NULL));
	/* bad stays offline, with its reason, until its disks return. */
	free(ta_ctl_expect(1, t->home, "vol", "online", "bad", NULL));
	free(ta_ctl_expect(1, t->home, "snap", "create", "bad", "s", NULL));
	js = ta_ctl_expect(0, t->home, "--json", "vol", "status", "bad", NULL);
	ta_json_eq(js, "$.volume.state", "offline");
	free(js);
	/* A clean stop despite the offline volume; it stays offline. */
	assert_int_equal(ta_daemon_stop(&t->d), 0);
	ta_daemon_start(&t->d, t->home);
	js = ta_ctl_expect(0, t->home, "--json", "vol", "list", NULL);
	ta_json_eq(js, "$.volumes[0].state", "offline");
	ta_json_eq(js, "$.volumes[2].state", "online");
	free(js);
	/* Destroying it removes what is left. */
	free(ta_ctl_expect(0, t->home, "vol", "destroy", "bad", "--force",
	    NULL));
	snprintf(path, sizeof(path), "%s/disks/bad-d2.img", t->home);
	assert_false(ta_exists(path));
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

static int count_prefix(const char *js, const char *prefix)
{
	int n = 0;

	for (int i = 0; i < 300; i++) {
		char path[64], *name;

		snprintf(path, sizeof(path), "$.snapshots[%d].name", i);
		name = ta_json(js, path);
		if (name == NULL)
			break;
		if (strncmp(name, prefix, strlen(prefix)) == 0)
			n++;
		free(name);
	}
	return n;
}

/* Hourly schedule on a clock 3600x faster: one hour per second. */
static void test_schedule(void **state)
{
	struct ta_fx *t = *state;
	const char *env[] = { "FILER_CLOCK_SCALE", "3600", NULL };
	char *js;

	free(ta_ctl_expect(0, t->home, "vol", "create", "vol0", "--disks", "3",
	    "--parity", "1", "--size", "8M", NULL));
	free(ta_ctl_expect(0, t->home, "snap", "schedule", "vol0", "--hourly",
	    "2", NULL));
	ta_daemon_start_env(&t->d, t->home, env);
	free(ta_ctl_expect(0, t->home, "snap", "create", "vol0", "manual",
	    NULL));
	ta_sleep_ms(4500);
	js = ta_ctl_expect(0, t->home, "--json", "snap", "list", "vol0", NULL);
	assert_int_equal(count_prefix(js, "hourly."), 2);
	assert_int_equal(count_prefix(js, "manual"), 1);	/* never pruned */
	{
		char *name = ta_json(js, "$.snapshots[1].name");

		/* hourly.YYYY-MM-DD_HHMM */
		assert_non_null(name);
		assert_int_equal(strlen(name), strlen("hourly.2026-11-25_1900"));
		assert_int_equal(name[17], '_');
		free(name);
	}
	free(js);
	js = ta_ctl_expect(0, t->home, "--json", "snap", "schedule", "vol0",
	    NULL);
	ta_json_eq(js, "$.schedule.hourly", "2");
	free(js);
	js = ta_ctl_expect(0, t->home, "--json", "events", NULL);
	assert_non_null(strstr(js, "\"snapshot.expired\""));
	free(js);
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

/*
 * A volume coming online maps the block pool it will use (its cache and
 * twice its dirty threshold, no more than the volume holds): 128 MiB here.
 * With cache_prefill off, only what the mount itself needed.  The ASan
 * build takes its buffers from malloc and has no pool to look at.
 */
static void test_cache_prefill(void **state)
{
	struct ta_fx *t = *state;
	char *js;

	if (strstr(ta_bindir, "/asan") != NULL)
		skip();
	free(ta_ctl_expect(0, t->home, "vol", "create", "vol0", "--disks", "3",
	    "--parity", "1", "--size", "64M", NULL));
	ta_daemon_start(&t->d, t->home);
	js = ta_ctl_expect(0, t->home, "--json", "stats", "vol0", NULL);
	assert_true(ta_json_long(js, "$.stats.block_pool_bytes") >=
	    128l << 20);
	assert_true(ta_json_long(js, "$.stats.block_pool_bytes") <
	    160l << 20);
	free(js);
	assert_int_equal(ta_daemon_stop(&t->d), 0);

	free(ta_ctl_expect(0, t->home, "config", "set", "cache_prefill",
	    "false", NULL));
	ta_daemon_start(&t->d, t->home);
	js = ta_ctl_expect(0, t->home, "--json", "stats", "vol0", NULL);
	assert_true(ta_json_long(js, "$.stats.block_pool_bytes") <
	    32l << 20);
	free(js);
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

/* kill -9 while configuration changes run: the database stays
 * consistent (each change whole or absent), filerd restarts cleanly. */
static void test_kill9_during_changes(void **state)
{
	struct ta_fx *t = *state;
	char dbpath[2200];

	free(ta_ctl_expect(0, t->home, "vol", "create", "vol0", "--disks", "3",
	    "--parity", "1", "--size", "8M", NULL));
	snprintf(dbpath, sizeof(dbpath), "%s/filer.db", t->home);
	for (int round = 0; round < 4; round++) {
		pid_t kids[6];

		ta_daemon_start(&t->d, t->home);
		for (int k = 0; k < 6; k++) {
			kids[k] = fork();
			assert_true(kids[k] >= 0);
			if (kids[k] == 0) {
				char client[32], snap[32];
				struct ta_out o;

				snprintf(client, sizeof(client), "10.%d.%d.0/24",
				    round, k);
				snprintf(snap, sizeof(snap), "r%dk%d", round, k);
				o = ta_ctl(t->home, "export", "add",
				    "/vol/vol0", "--client", client, NULL);
				ta_out_free(&o);
				o = ta_ctl(t->home, "snap", "create", "vol0",
				    snap, NULL);
				ta_out_free(&o);
				_exit(0);
			}
		}
		ta_sleep_ms(20 + 30 * round);
		assert_int_equal(ta_daemon_signal_wait(&t->d, SIGKILL),
		    128 + SIGKILL);
		for (int k = 0; k < 6; k++)
			waitpid(kids[k], NULL, 0);
		/* The database is intact and every rule is whole. */
		{
			sqlite3 *db;
			sqlite3_stmt *st;

			assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
			assert_int_equal(sqlite3_prepare_v2(db,
			    "PRAGMA integrity_check", -1, &st, NULL),
			    SQLITE_OK);
			assert_int_equal(sqlite3_step(st), SQLITE_ROW);
			assert_string_equal(sqlite3_column_text(st, 0), "ok");
			sqlite3_finalize(st);
			assert_int_equal(sqlite3_prepare_v2(db,
			    "SELECT count(*) FROM export_rules r LEFT JOIN "
			    "exports e ON r.export_id = e.id WHERE e.id IS "
			    "NULL", -1, &st, NULL), SQLITE_OK);
			assert_int_equal(sqlite3_step(st), SQLITE_ROW);
			assert_int_equal(sqlite3_column_int(st, 0), 0);
			sqlite3_finalize(st);
			sqlite3_close(db);
		}
	}
	/* Restart after the last kill: stale socket and pid file are no
	 * obstacle, the volume replays its NVLOG and checks clean. */
	ta_daemon_start(&t->d, t->home);
	{
		char *js = ta_ctl_expect(0, t->home, "--json", "vol", "list",
		    NULL);

		ta_json_eq(js, "$.volumes[0].state", "online");
		free(js);
		js = ta_ctl_expect(0, t->home, "--json", "check", "vol0",
		    NULL);
		assert_int_equal(ta_json_long(js, "$.check.errors"), 0);
		free(js);
		js = ta_ctl_expect(0, t->home, "--json", "export", "list",
		    NULL);
		assert_true(ta_json_valid(js));
		free(js);
	}
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

/* Many filerctl at once: every one answered, every change made. */
static void test_concurrent_ctl(void **state)
{
	struct ta_fx *t = *state;
	enum { N = 12 };
	pid_t kids[N];
	char *js;

	free(ta_ctl_expect(0, t->home, "vol", "create", "vol0", "--disks", "3",
	    "--parity", "1", "--size", "8M", NULL));
	ta_daemon_start(&t->d, t->home);
	for (int k = 0; k < N; k++) {
		kids[k] = fork();
		assert_true(kids[k] >= 0);
		if (kids[k] == 0) {
			char snap[16];
			struct ta_out o;
			int st;

			snprintf(snap, sizeof(snap), "c%02d", k);
			o = ta_ctl(t->home, "snap", "create", "vol0", snap,
			    NULL);
			st = o.status;
			ta_out_free(&o);
			o = ta_ctl(t->home, "--json", "vol", "status", "vol0",
			    NULL);
			st |= o.status;
			ta_out_free(&o);
			_exit(st);
		}
	}
	for (int k = 0; k < N; k++) {
		int st;

		assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	js = ta_ctl_expect(0, t->home, "--json", "snap", "list", "vol0", NULL);
	assert_int_equal(count_prefix(js, "c"), N);
	free(js);
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

/* `filerctl check vol` in a child: exit 0 if filerctl exited with want
 * and its output says what, 1 for any other answer. */
static pid_t check_child(const char *home, const char *vol, int want,
    const char *what)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct ta_out o = ta_ctl(home, "check", vol, NULL);
		int st = o.status == want && (strstr(o.out, what) != NULL ||
		    strstr(o.err, what) != NULL) ? 0 : 1;

		if (st != 0)
			fprintf(stderr, "check %s: exit %d: %s%s\n", vol,
			    o.status, o.out, o.err);
		ta_out_free(&o);
		_exit(st);
	}
	return pid;
}

/* The child's exit status within ms; -1 if it did not exit (it is
 * killed). */
static int child_status_within(pid_t pid, int ms)
{
	for (int i = 0; i < ms / 50; i++) {
		int st;

		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
		ta_sleep_ms(50);
	}
	kill(pid, SIGKILL);
	(void)waitpid(pid, NULL, 0);
	return -1;
}

/* The child's exit status (60 s bound); -1 if it did not exit. */
static int child_status(pid_t pid)
{
	return child_status_within(pid, 60000);
}

static bool still_running(pid_t pid)
{
	int st;

	return waitpid(pid, &st, WNOHANG) == 0;
}

/*
 * A check of an online volume is held 4 s once it has pinned the roots it
 * reads (FILER_CHECK_HOLD_MS): meanwhile filerd answers other requests,
 * refuses a second check of the same volume, and makes and deletes a
 * snapshot of that volume (CPs go on); the check is then answered
 * clean.  An offline of a volume being checked cancels the check (it is
 * answered so) and goes on; so does check --cancel; a stop does the same
 * before filerd exits.
 */
static void test_check_in_background(void **state)
{
	struct ta_fx *t = *state;
	const char *env[] = { "FILER_CHECK_HOLD_MS", "4000", NULL };
	pid_t a, b;

	free(ta_ctl_expect(0, t->home, "vol", "create", "vol0", "--disks", "3",
	    "--parity", "1", "--size", "8M", NULL));
	free(ta_ctl_expect(0, t->home, "vol", "create", "vol1", "--disks", "3",
	    "--parity", "1", "--size", "8M", NULL));
	ta_daemon_start_env(&t->d, t->home, env);
	a = check_child(t->home, "vol0", 0, "is clean");
	ta_sleep_ms(500);
	/* Answered while the check runs. */
	free(ta_ctl_expect(0, t->home, "vol", "list", NULL));
	free(ta_ctl_expect(0, t->home, "events", NULL));
	free(ta_ctl_expect(0, t->home, "vol", "status", "vol1", NULL));
	char *out = ta_ctl_expect(1, t->home, "check", "vol0", NULL);
	free(out);
	/* The check pins what it reads: a snapshot (a CP) of the volume
	 * is made, and deleted (another), while it runs. */
	free(ta_ctl_expect(0, t->home, "snap", "create", "vol0", "during",
	    NULL));
	free(ta_ctl_expect(0, t->home, "snap", "delete", "vol0", "during",
	    NULL));
	assert_true(still_running(a));
	assert_int_equal(child_status(a), 0);
	/* An offline cancels a running check. */
	a = check_child(t->home, "vol0", 1, "cancelled");
	ta_sleep_ms(500);
	assert_true(still_running(a));
	free(ta_ctl_expect(0, t->home, "vol", "offline", "vol0", NULL));
	assert_int_equal(child_status(a), 0);
	/* Offline: checked at once, by filerd itself. */
	out = ta_ctl_expect(0, t->home, "check", "vol0", NULL);
	assert_non_null(strstr(out, "is clean"));
	free(out);
	/* check --cancel stops a running check; then none runs. */
	b = check_child(t->home, "vol1", 1, "cancelled");
	ta_sleep_ms(500);
	assert_true(still_running(b));
	out = ta_ctl_expect(0, t->home, "check", "vol1", "--cancel", NULL);
	assert_non_null(strstr(out, "stops"));
	free(out);
	assert_int_equal(child_status(b), 0);
	free(ta_ctl_expect(1, t->home, "check", "vol1", "--cancel", NULL));
	/* A stop cancels and answers the running check first. */
	b = check_child(t->home, "vol1", 1, "cancelled");
	ta_sleep_ms(500);
	assert_true(still_running(b));
	assert_int_equal(ta_daemon_stop(&t->d), 0);
	assert_int_equal(child_status(b), 0);
}

/* A request as sent on the control socket (length, body): verb, with
 * volume=vol unless vol is NULL. */
static uint8_t *req_frame(const char *verb, const char *vol, size_t *len)
{
	struct adm_req req;
	struct adm_buf body = { 0 };
	uint8_t *frame;

	adm_req_init(&req, verb);
	if (vol != NULL)
		assert_int_equal(adm_req_set(&req, "volume", vol), 0);
	assert_int_equal(adm_req_encode(&req, &body), 0);
	adm_req_free(&req);
	frame = malloc(body.len + 4);
	assert_non_null(frame);
	frame[0] = (uint8_t)(body.len >> 24);
	frame[1] = (uint8_t)(body.len >> 16);
	frame[2] = (uint8_t)(body.len >> 8);
	frame[3] = (uint8_t)body.len;
	memcpy(frame + 4, body.p, body.len);
	*len = body.len + 4;
	adm_buf_free(&body);
	return frame;
}

/* A raw connection to filerd's control socket under home; a reply not
 * there within 30 s is a read error. */
static int ctl_connect(const char *home)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 30 };
	char sock[2100];
	int fd;

	snprintf(sock, sizeof(sock), "%s/filerd.sock", home);
	assert_true(strlen(sock) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* `filerctl vol list` in a child: exit 0 if filerctl succeeded and listed
 * vol, 1 for any other answer. */
static pid_t vol_list_child(const char *home, const char *vol)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct ta_out o = ta_ctl(home, "vol", "list", NULL);
		int st = o.status == 0 && strstr(o.out, vol) != NULL ? 0 : 1;

		if (st != 0)
			fprintf(stderr, "vol list: exit %d: %s%s\n", o.status,
			    o.out, o.err);
		ta_out_free(&o);
		_exit(st);
	}
	return pid;
}

/* The reply on fd is whole and says success. */
static void expect_ok_reply(int fd, const char *who)
{
	struct adm_reply r;
	char *in = NULL;
	size_t len = 0;

	assert_int_equal(adm_frame_read(fd, 1u << 20, &in, &len), 0);
	assert_int_equal(adm_reply_decode(in, len, &r), 0);
	if (r.status != 0)
		fail_msg("%s: the request failed: %s", who, r.message);
	adm_reply_free(&r);
	free(in);
}

/* A reply's numbers are JSON numbers (--json passes them on as they
 * are): what adm_rep_* write decodes, anything else is refused. */
static void test_reply_numbers(void **state)
{
	static const char *const good[] = { "0", "7", "12", "-3", "1.250",
	    "-0.000", "18446744073709551615" };
	static const char *const bad[] = { "007", "-.5", ".5", "5.", "1e3",
	    "-", "", "1.2.3", "+1", "nan", "inf", "0x10", "1 ", "--1" };
	char in[256];
	struct adm_reply r;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int n = snprintf(in, sizeof(in), "%s\nstatus 0\nmessage ok\n"
		    "o x\nn v=%s\n", ADM_PROTO_MAGIC_REP, good[i]);
		if (adm_reply_decode(in, (size_t)n, &r) != 0)
			fail_msg("number \"%s\" refused", good[i]);
		adm_reply_free(&r);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int n = snprintf(in, sizeof(in), "%s\nstatus 0\nmessage ok\n"
		    "o x\nn v=%s\n", ADM_PROTO_MAGIC_REP, bad[i]);
		if (adm_reply_decode(in, (size_t)n, &r) == 0)
			fail_msg("number \"%s\" accepted", bad[i]);
		adm_reply_free(&r);
	}
}

/*
 * A client sends the first two bytes of its request and stops: another
 * filerctl call is served meanwhile, within 5 s, then the first client
 * sends the rest and gets its answer.  Served one connection at a time,
 * the second call would wait for the first request, which waits for this
 * test: the call runs in a child, so the test fails (and says why)
 * instead of waiting with it.
 */
static void test_slow_client(void **state)
{
	struct ta_fx *t = *state;
	size_t len;
	uint8_t *frame;
	pid_t a;
	int fd, st;

	free(ta_ctl_expect(0, t->home, "vol", "create", "vol0", "--disks", "3",
	    "--parity", "1", "--size", "8M", NULL));
	ta_daemon_start(&t->d, t->home);
	frame = req_frame("vol list", NULL, &len);
	fd = ctl_connect(t->home);
	assert_int_equal(write(fd, frame, 2), 2);
	ta_sleep_ms(200);
	/* Served while the first request is half there. */
	a = vol_list_child(t->home, "vol0");
	st = child_status_within(a, 5000);
	if (st < 0)
		fail_msg("filerctl vol list not answered within 5 s while "
		    "another client's request is half sent (does filerd "
		    "serve one control connection at a time?)");
	assert_int_equal(st, 0);
	assert_int_equal(write(fd, frame + 2, len - 2), (ssize_t)(len - 2));
	expect_ok_reply(fd, "the slow client");
	close(fd);
	free(frame);
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

/*
 * A client whose request arrives while another request holds filerd's
 * loop longer than the control socket's 10 s limit is still answered:
 * the limit counts the time until a poll found its request, not the time
 * filerd spent serving someone else.  The other request is a check of an
 * offline volume (served in the loop), held 11 s by FILER_CHECK_HOLD_MS.
 */
static void test_client_behind_long_request(void **state)
{
	struct ta_fx *t = *state;
	const char *env[] = { "FILER_CHECK_HOLD_MS", "11000", NULL };
	size_t len;
	uint8_t *frame;
	pid_t a;
	int fd;

	free(ta_ctl_expect(0, t->home, "vol", "create", "vol0", "--disks", "3",
	    "--parity", "1", "--size", "8M", NULL));
	ta_daemon_start_env(&t->d, t->home, env);
	free(ta_ctl_expect(0, t->home, "vol", "offline", "vol0", NULL));
	frame = req_frame("vol list", NULL, &len);
	fd = ctl_connect(t->home);
	assert_int_equal(write(fd, frame, 2), 2);
	ta_sleep_ms(300);
	/* The offline check holds the loop 11 s; the rest of the first
	 * request arrives meanwhile. */
	a = check_child(t->home, "vol0", 0, "is clean");
	ta_sleep_ms(700);
	assert_true(still_running(a));
	assert_int_equal(write(fd, frame + 2, len - 2), (ssize_t)(len - 2));
	assert_int_equal(child_status(a), 0);
	expect_ok_reply(fd, "the waiting client");
	close(fd);
	free(frame);
	assert_int_equal(ta_daemon_stop(&t->d), 0);
}

/*
 * A check that runs longer than filerctl waits for a silent filerd is
 * still answered: filerd sends the caller an empty frame now and then
 * (FILER_KEEPALIVE_MS here, 30 s by default), which filerctl counts as
 * a sign of life (FILERCTL_TIMEOUT_S here, 600 s by default).  Without
 * those frames the same wait ends in a clear message.  A caller that
 * goes away cancels its check: a new one may start at once.
 */
static void test_check_keepalive(void **state)
{
	struct ta_fx *t = *state;
	const char *env[] = { "FILER_CHECK_HOLD_MS", "3000",
	    "FILER_KEEPALIVE_MS", "200", NULL };
	const char *quiet[] = { "FILER_CHECK_HOLD_MS", "3000",
	    "FILER_KEEPALIVE_MS", "600000", NULL };
	struct ta_out o;
	size_t len;
	uint8_t *frame;
	int fd;

	free(ta_ctl_expect(0, t->home, "vol", "create", "vol0", "--disks", "3",
	    "--parity", "1", "--size", "8M", NULL));
	ta_daemon_start_env(&t->d, t->home, env);
	assert_int_equal(setenv("FILERCTL_TIMEOUT_S", "2", 1), 0);
	o = ta_ctl(t->home, "check", "vol0", NULL);
	if (o.status != 0 || strstr(o.out, "is clean") == NULL)
		fail_msg("check with keepalives: exit %d: %s%s", o.status,
		    o.out, o.err);
	ta_out_free(&o);

	/* The caller goes away while its check is held: the check stops
	 * (logged), and the next keepalive round finds it gone. */
	frame = req_frame("check", "vol0", &len);
	fd = ctl_connect(t->home);
	assert_int_equal(write(fd, frame, len), (ssize_t)len);
	free(frame);
	ta_sleep_ms(500);
	close(fd);
	bool gone = false;
	for (int i = 0; i < 60 && !gone; i++) {
		ta_sleep_ms(50);
		gone = ta_daemon_log_count(&t->d, "went away") > 0;
	}
	assert_true(gone);
	o = ta_ctl(t->home, "check", "vol0", NULL);
	if (o.status != 0 || strstr(o.out, "is clean") == NULL)
		fail_msg("check after a caller left: exit %d: %s%s", o.status,
		    o.out, o.err);
	ta_out_free(&o);
	assert_int_equal(ta_daemon_stop(&t->d), 0);

	/* No empty frames within the wait: filerctl gives up, and says
	 * what it waited for. */
	ta_daemon_start_env(&t->d, t->home, quiet);
	o = ta_ctl(t->home, "check", "vol0", NULL);
	unsetenv("FILERCTL_TIMEOUT_S");
	if (o.status == 0 || strstr(o.err, "sent nothing for 2 s") == NULL)
		fail_msg("check without keepalives: exit %d: %s%s", o.status,
		    o.out, o.err);
	ta_out_free(&o);
	assert_int_equal(ta_daemon_stop(&t->d), 0);

	/* A limit out of range is a usage error, not a silent default. */
	assert_int_equal(setenv("FILERCTL_TIMEOUT_S", "0", 1), 0);
	o = ta_ctl(t->home, "vol", "list", NULL);
	unsetenv("FILERCTL_TIMEOUT_S");
	assert_int_equal(o.status, 2);
	assert_non_null(strstr(o.err, "FILERCTL_TIMEOUT_S must be"));
	ta_out_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_disk_fail_rebuild, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_missing_disks_offline,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_schedule, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kill9_during_changes,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_ctl, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_check_in_background,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_prefill, setup,
		    teardown),
		cmocka_unit_test(test_reply_numbers),
		cmocka_unit_test_setup_teardown(test_slow_client, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_client_behind_long_request,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_keepalive, setup,
		    teardown),
	};

	ta_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
