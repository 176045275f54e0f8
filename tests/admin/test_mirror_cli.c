/*
 * tests/admin/test_mirror_cli.c: mirroring administered through filerctl,
 * between two real filerds on loopback (free ports for NFS, MOUNT and the
 * mirror listener of each), libnfs as the client.
 *
 *   replicate   peer add on both, mirror create on both sides, init; a
 *               file written on the source over NFS (then snap create: a
 *               CP) reads back identical from the read-only secondary
 *               once `mirror status --json` shows the destination
 *               acknowledged the source's generation (lag 0); a write on
 *               the secondary gets NFS3ERR_ROFS; quiesce shows the lag
 *               in CPs and seconds, resume catches up; 20 rounds of
 *               quiesce and resume at once each take effect (status
 *               between them says quiesced, no resume is refused), and
 *               a resume of a running relationship exits 1; both filerds
 *               restart and the relationship resumes without a new
 *               baseline; events record the transitions; break: the
 *               secondary is writable and still holds the data (also
 *               after a restart); `check` clean on both.
 *   small_destination  fewer VBNs than the source: refused by the
 *               source before it sends anything (its status and a
 *               mirror.error event name both sizes), which tells the
 *               destination why (its status and a mirror.error event
 *               there too); the destination keeps its file system;
 *               delete makes it writable.
 *   bad_input   peer and mirror verbs refuse bad addresses, short keys,
 *               unknown peers, duplicates, a peer in use, a relationship
 *               without a remote side, and change nothing.
 *   async_schedule  --mode async --schedule 2s with lz4 and TLS on both
 *               sides: bad schedules and options are usage errors; status
 *               shows the schedule, the next run and the options; a file
 *               written on the source reaches the secondary through a
 *               scheduled transfer, with no CP stream; transfer progress
 *               is reported.
 *   link_mismatch  the two filerds configured with different compression:
 *               the source's status says the destination refused and why.
 *   modify      a sync relationship made async every 2s (a file arrives by
 *               a scheduled transfer), then sync again (the next one by
 *               the CP stream); lz4 on the source alone: the destination
 *               refuses the link and the source's status says why; lz4
 *               on the destination too: in sync again; quiesced stays
 *               quiesced across a modify; bad modifications are usage
 *               errors or refused, and change nothing.
 *   resync_done_at_stop  a resync that finishes while a filerd stops,
 *               after the stop's last tick (held there by
 *               FILER_RESYNC_STOP_HOLD_MS until the job has finished),
 *               on the source's side (W) and then on the destination's
 *               (T): the row says catching-up in its new direction with
 *               no error, not "resync interrupted", and after the
 *               restart the source catches the destination up.
 *   resync_crash_at_done  a filerd killed (SIGKILL) after its half of a
 *               resync finished and before it recorded that (test knob
 *               FILER_RESYNC_CRASH_AT_DONE): W and then T of a plain
 *               resync, W and then T of --reverse; restarted, it
 *               finishes the resync (T from its rolled-back volume, W
 *               once the peer serves the common generation as the
 *               destination): both rows agree with no error, nothing
 *               says interrupted, the new destination serves the new
 *               source's data and what it writes next, T's data is a
 *               snapshot on both sides; then T of a plain resync
 *               killed once it recorded RS_DONE, before its roll back:
 *               restarted, it rolls back and finishes.
 *   resync_crash_unconfirmed  a filerd killed while its half of a
 *               resync waits for the peer's: restarted, its row stays
 *               resyncing while it asks the peer (status says so and
 *               why), a break ends the wait, and the resync run again
 *               on both finishes.
 *   shared_port two relationships between the same two filerds (two
 *               volumes each side), both received on the destination's
 *               one mirror_port: each secondary serves its own source's
 *               files and not the other's; one is broken off and resynced
 *               while the other keeps replicating; after the destination
 *               restarts both resume; `check` clean on all four volumes.
 *   resync_throttle  a relationship with --throttle 1M resyncs no faster
 *               than that, both ways: plain (the source's filerd, the
 *               winner, paces what it reads) and --reverse (the source's
 *               filerd, overwritten, paces what it sends); the
 *               overwritten side's 3 MiB read back from the snapshot.
 *   reverse_keeps_throttle  a relationship with --throttle 1M turned
 *               around by `mirror resync --reverse`: the new source's
 *               status shows 1.0M/s (the old source handed it over in
 *               the resync), the old source's row has none, no state of
 *               either row (each what a crash could leave) says source
 *               without the rate or destination with it, and the new
 *               source's 3 MiB catch-up takes no less than the rate
 *               allows; `mirror modify --throttle 512K` on the new source,
 *               then --reverse again: the first source has 512K/s.
 *   break_parks_source  `mirror break` on a source with an acknowledged
 *               root: no root stays held, the root is snapshot
 *               mirror.base.<acked>, 24 MiB written afterwards leave a
 *               few CPs' frees pending, a restart holds nothing, and a
 *               resync starts from that snapshot (deleted once the
 *               destination acknowledges past it).
 *   start_parks_broken_source  a broken-off source row whose volume
 *               holds roots at filerd's start: parked then.
 *
 * Every wait is bounded; a failing test still kills its filerds.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "admin/svc_mirror.h"
#include "tests/lib/tl_mirror.h"
#include "tests/lib/tl_proc.h"
#include "tests/lib/tl_tmpdir.h"


struct mtest {
	char *dir;
	char key[2100];
	struct tl_mirror_side s, d;	/* source, destination */
	/* The destination holds an interrupted baseline (no file system
	 * yet, by design): teardown does not check it. */
	bool dst_mid_baseline;
};

static int setup_sized(void **state, const char *dst_size)
{
	struct mtest *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->dir = tl_tmpdir_make(NULL, "filer-mirror-cli");
	tl_mirror_pair_init(&t->s, &t->d, t->dir, dst_size, t->key,
	    sizeof(t->key));
	*state = t;
	return 0;
}

static int setup(void **state)
{
	return setup_sized(state, "96M");
}

static int setup_small(void **state)
{
	return setup_sized(state, "32M");
}

static int teardown(void **state)
{
	struct mtest *t = *state;
	int st = tl_mirror_pair_end(&t->s, &t->d, !t->dst_mid_baseline);

	tl_tmpdir_remove(t->dir);
	free(t);
	return st == 0 ? 0 : -1;
}

/* ------------------------------------------------------------- clients */

/* nfs_creat's result on side s (0 or a negative errno). */
static int try_create(const struct tl_mirror_side *s, const char *path)
{
	struct nfs_context *nfs = tl_mirror_client(s);
	struct nfsfh *fh;
	int rc = nfs_creat(nfs, path, 0644, &fh);

	if (rc == 0) {
		assert_int_equal(nfs_pwrite(nfs, fh, 0, 5, "hello"), 5);
		assert_int_equal(nfs_close(nfs, fh), 0);
	}
	nfs_destroy_context(nfs);
	return rc;
}

/* ------------------------------------------------------------- mirrors */

static long wait_acked(const struct mtest *t, long min_gen)
{
	return tl_mirror_wait_acked(&t->s, min_gen);
}

static long source_gen(const struct mtest *t)
{
	return tl_mirror_long(&t->s, "source_gen");
}

static void peers_and_relationship(struct mtest *t)
{
	tl_mirror_peers(&t->s, &t->d, t->key);
	free(ta_ctl_expect(0, t->d.home, "mirror", "create", "src:vsrc",
	    "vdst", "--mode", "sync", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "create", "vsrc",
	    "dst:vdst", "--mode", "sync", NULL));
	char *js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors[0].state", "uninitialized");
	ta_json_eq(js, "$.mirrors[0].direction", "source");
	free(js);
	free(ta_ctl_expect(0, t->s.home, "mirror", "init", "vsrc", NULL));
}

/* Both filerds running with their exports, each knowing the other. */
static void both_started(struct mtest *t)
{
	tl_mirror_pair_start(&t->s, &t->d, t->key);
}

static bool events_have(const struct tl_mirror_side *s, const char *kind,
    const char *text)
{
	char *out = ta_ctl_expect(0, s->home, "events", NULL);
	bool found = false;

	for (char *l = strtok(out, "\n"); l != NULL; l = strtok(NULL, "\n"))
		if (strstr(l, kind) != NULL && strstr(l, text) != NULL)
			found = true;
	free(out);
	return found;
}

/*
 * Quiesce and resume at once, 20 times: the status read between them says
 * quiesced (filerd's tick ran in between and must not report the running
 * state over it), and every resume resumes.  Then a resume of a
 * relationship that is not quiesced is refused with a non-zero status.
 */
static void quiesce_resume_rounds(struct mtest *t)
{
	for (int i = 0; i < 20; i++) {
		char *out = ta_ctl_expect(0, t->s.home, "mirror", "quiesce",
		    "vsrc", NULL);
		assert_non_null(strstr(out, "quiesced"));
		free(out);
		char *js = tl_mirror_status(&t->s);
		ta_json_eq(js, "$.mirrors[0].state", "quiesced");
		free(js);
		out = ta_ctl_expect(0, t->s.home, "mirror", "resume", "vsrc",
		    NULL);
		if (strstr(out, "resumed") == NULL)
			fail_msg("round %d: resume: %s", i, out);
		free(out);
		js = tl_mirror_status(&t->s);
		char *st = ta_json(js, "$.mirrors[0].state");
		if (st == NULL || strcmp(st, "quiesced") == 0)
			fail_msg("round %d: still quiesced after resume: %s",
			    i, js);
		free(st);
		free(js);
	}
	char *js = NULL;
	bool in_sync = false;

	for (int i = 0; i < 400 && !in_sync; i++) {
		free(js);
		js = tl_mirror_status(&t->s);
		char *st = ta_json(js, "$.mirrors[0].state");
		in_sync = st != NULL && strcmp(st, "in-sync") == 0;
		free(st);
		if (!in_sync)
			ta_sleep_ms(50);
	}
	if (!in_sync)
		fail_msg("not in-sync after the rounds: %s", js);
	free(js);
	free(ta_ctl_expect(1, t->s.home, "mirror", "resume", "vsrc", NULL));
}

static void test_replicate(void **state)
{
	struct mtest *t = *state;
	long g;
	char *js;

	tl_mirror_export(&t->s);
	tl_mirror_export(&t->d);
	/* Settings the destination's volume must keep through the break
	 * (the writable mount after it takes them, not the defaults). */
	free(ta_ctl_expect(0, t->d.home, "config", "set", "cp_interval_ms",
	    "2000", NULL));
	free(ta_ctl_expect(0, t->d.home, "config", "set", "dirty_max_bytes",
	    "96M", NULL));
	ta_daemon_start(&t->s.d, t->s.home);
	ta_daemon_start(&t->d.d, t->d.home);
	peers_and_relationship(t);
	g = wait_acked(t, 1);

	/* A write on the source reaches the secondary at the next CP. */
	tl_mirror_write(&t->s, "/data1", 1, 1);
	free(ta_ctl_expect(0, t->s.home, "snap", "create", "vsrc", "s1",
	    NULL));
	g = wait_acked(t, source_gen(t) > g ? source_gen(t) : g + 1);
	tl_mirror_wait_served(&t->d, g);
	tl_mirror_read_compare(&t->d, "/data1", 1, 1);
	assert_int_equal(try_create(&t->d, "/nope"), -EROFS);
	js = tl_mirror_status(&t->d);
	ta_json_eq(js, "$.mirrors[0].direction", "destination");
	ta_json_eq(js, "$.mirrors[0].state", "in-sync");
	assert_true(ta_json_long(js, "$.mirrors[0].acked_gen") >= g);
	free(js);
	assert_true(events_have(&t->s, "mirror.state", "-> in-sync"));
	assert_true(events_have(&t->d, "mirror.state", "-> in-sync"));

	/* Quiesced: the source goes on, the lag shows; resume catches up. */
	free(ta_ctl_expect(0, t->s.home, "mirror", "quiesce", "vsrc", NULL));
	free(ta_ctl_expect(1, t->d.home, "mirror", "quiesce", "vdst", NULL));
	tl_mirror_write(&t->s, "/data3", 3, 1);
	free(ta_ctl_expect(0, t->s.home, "snap", "create", "vsrc", "s3",
	    NULL));
	ta_sleep_ms(1100);
	js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors[0].state", "quiesced");
	assert_true(ta_json_long(js, "$.mirrors[0].lag_cps") >= 1);
	assert_true(ta_json_long(js, "$.mirrors[0].lag_seconds") >= 1);
	assert_int_equal(ta_json_long(js, "$.mirrors[0].acked_gen"), g);
	free(js);
	assert_true(events_have(&t->s, "mirror.state", "-> quiesced"));
	free(ta_ctl_expect(0, t->s.home, "mirror", "resume", "vsrc", NULL));
	g = wait_acked(t, g + 1);
	tl_mirror_wait_served(&t->d, g);
	tl_mirror_read_compare(&t->d, "/data3", 3, 1);
	/* What the destination did since its relationship started (the
	 * catch-up after resume at least): blocks in, none refused, time
	 * spent applying each transfer, its flushes a part of it. */
	js = tl_mirror_status(&t->d);
	assert_true(ta_json_long(js, "$.mirrors[0].transfers") > 0);
	assert_true(ta_json_long(js, "$.mirrors[0].blocks_received") > 0);
	assert_int_equal(ta_json_long(js, "$.mirrors[0].deltas_refused"), 0);
	assert_true(ta_json_long(js, "$.mirrors[0].apply_us_mean") > 0);
	assert_true(ta_json_long(js, "$.mirrors[0].flush_us_mean") <=
	    ta_json_long(js, "$.mirrors[0].apply_us_mean"));
	free(js);
	quiesce_resume_rounds(t);
	g = wait_acked(t, g);

	/* Both restart: the relationship resumes from the database. */
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
	ta_daemon_start(&t->d.d, t->d.home);
	ta_daemon_start(&t->s.d, t->s.home);
	tl_mirror_write(&t->s, "/data2", 2, 1);
	free(ta_ctl_expect(0, t->s.home, "snap", "create", "vsrc", "s2",
	    NULL));
	g = wait_acked(t, g + 1);
	tl_mirror_wait_served(&t->d, g);
	tl_mirror_read_compare(&t->d, "/data2", 2, 1);
	tl_mirror_read_compare(&t->d, "/data1", 1, 1);
	js = tl_mirror_status(&t->s);
	/* Catch-up, not a new baseline: no error recorded. */
	ta_json_eq(js, "$.mirrors[0].last_error", "");
	free(js);

	/* Break: the secondary becomes writable with the data. */
	js = ta_ctl_expect(0, t->d.home, "--json", "stats", "vdst", NULL);
	ta_json_eq(js, "$.stats.mounted", "read-only");
	free(js);
	free(ta_ctl_expect(0, t->d.home, "mirror", "break", "vdst", NULL));
	js = tl_mirror_status(&t->d);
	ta_json_eq(js, "$.mirrors[0].state", "broken-off");
	free(js);
	js = ta_ctl_expect(0, t->d.home, "--json", "stats", "vdst", NULL);
	ta_json_eq(js, "$.stats.mounted", "read-write");
	assert_int_equal(ta_json_long(js, "$.stats.cp_interval_ms"), 2000);
	assert_int_equal(ta_json_long(js, "$.stats.dirty_max_bytes"),
	    96l << 20);
	free(js);
	assert_int_equal(try_create(&t->d, "/after-break"), 0);
	tl_mirror_read_compare(&t->d, "/data2", 2, 1);
	assert_true(events_have(&t->d, "mirror.state", "-> broken-off"));
	free(ta_ctl_expect(0, t->s.home, "mirror", "break", "vsrc", NULL));
	/* A resync's record left beside the disks (torn here) goes with
	 * the relationship. */
	char rec[PATH_MAX];
	snprintf(rec, sizeof(rec), "%s/disks/vsrc.resync-done", t->s.home);
	FILE *f = fopen(rec, "w");
	assert_non_null(f);
	assert_int_equal(fputs("FLRSDONE", f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	free(ta_ctl_expect(0, t->s.home, "mirror", "delete", "vsrc", NULL));
	assert_int_equal(access(rec, F_OK), -1);
	free(ta_ctl_expect(0, t->s.home, "peer", "remove", "dst", NULL));

	/* After a restart the broken-off volume mounts writable again. */
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	ta_daemon_start(&t->d.d, t->d.home);
	assert_int_equal(try_create(&t->d, "/after-restart"), 0);
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
}

static void test_bad_input(void **state)
{
	struct mtest *t = *state;
	char shortkey[2200], *js;
	FILE *f;

	snprintf(shortkey, sizeof(shortkey), "%s/short.key", t->dir);
	f = fopen(shortkey, "w");
	assert_non_null(f);
	fprintf(f, "tooshort\n");
	fclose(f);
	ta_daemon_start(&t->s.d, t->s.home);
	free(ta_ctl_expect(2, t->s.home, "peer", "add", "p1", "--address",
	    "127.0.0.1", "--key-file", t->key, NULL));
	free(ta_ctl_expect(2, t->s.home, "peer", "add", "p1", "--address",
	    "127.0.0.1:99999", "--key-file", t->key, NULL));
	free(ta_ctl_expect(2, t->s.home, "peer", "add", "p1", "--address",
	    "127.0.0.1:1000", NULL));
	free(ta_ctl_expect(1, t->s.home, "peer", "add", "p1", "--address",
	    "127.0.0.1:1000", "--key-file", shortkey, NULL));
	free(ta_ctl_expect(1, t->s.home, "peer", "add", "p1", "--address",
	    "127.0.0.1:1000", "--key-file", "/nonexistent/key", NULL));
	js = ta_ctl_expect(0, t->s.home, "--json", "peer", "list", NULL);
	ta_json_eq(js, "$.peers", "[]");
	free(js);
	free(ta_ctl_expect(0, t->s.home, "peer", "add", "p1", "--address",
	    "127.0.0.1:1000", "--key-file", t->key, NULL));
	free(ta_ctl_expect(1, t->s.home, "peer", "add", "p1", "--address",
	    "127.0.0.1:1001", "--key-file", t->key, NULL));
	free(ta_ctl_expect(1, t->s.home, "mirror", "create", "vsrc",
	    "nopeer:vdst", NULL));
	free(ta_ctl_expect(1, t->s.home, "mirror", "create", "novol",
	    "p1:vdst", NULL));
	free(ta_ctl_expect(2, t->s.home, "mirror", "create", "vsrc", "vdst",
	    NULL));
	free(ta_ctl_expect(2, t->s.home, "mirror", "create", "vsrc",
	    "p1:vdst", "--mode", "sometimes", NULL));
	free(ta_ctl_expect(1, t->s.home, "mirror", "init", "vsrc", NULL));
	free(ta_ctl_expect(1, t->s.home, "mirror", "status", "vsrc", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "create", "vsrc",
	    "p1:vdst", "--mode", "async", NULL));
	free(ta_ctl_expect(1, t->s.home, "mirror", "create", "vsrc",
	    "p1:other", NULL));
	free(ta_ctl_expect(1, t->s.home, "peer", "remove", "p1", NULL));
	js = ta_ctl_expect(0, t->s.home, "--json", "peer", "list", NULL);
	ta_json_eq(js, "$.peers[0].name", "p1");
	assert_int_equal(ta_json_long(js, "$.peers[0].mirrors"), 1);
	assert_null(strstr(js, "psk"));
	free(js);
	js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors[0].mode", "async");
	ta_json_eq(js, "$.mirrors[0].state", "uninitialized");
	free(js);
	/* The source volume stays writable while uninitialized. */
	free(ta_ctl_expect(0, t->s.home, "snap", "create", "vsrc", "x", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "delete", "vsrc", NULL));
	free(ta_ctl_expect(0, t->s.home, "peer", "remove", "p1", NULL));
	js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors", "[]");
	free(js);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
}

/* A destination with fewer VBNs than the source is refused there, said in
 * its status, and keeps its own file system. */
/* Expect a usage error whose message mentions `what`. */
static void usage_error(const char *home, const char *what, ...)
{
	const char *argv[24];
	int n = 0;
	va_list ap;

	argv[n++] = "filerctl";
	argv[n++] = "--home";
	argv[n++] = home;
	va_start(ap, what);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < 23;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	struct ta_out o = ta_runv(argv, -1, NULL);
	if (o.status != 2 || (strstr(o.err, what) == NULL &&
	    strstr(o.out, what) == NULL))
		fail_msg("%s %s: exit %d, stdout %s, stderr %s (wanted a usage "
		    "error about '%s')", argv[3], argv[4], o.status, o.out,
		    o.err, what);
	ta_out_free(&o);
}

static void test_async_schedule(void **state)
{
	struct mtest *t = *state;
	char *js, *out;

	both_started(t);

	usage_error(t->s.home, "not an interval", "mirror", "create", "vsrc",
	    "dst:vdst", "--mode", "async", "--schedule", "5x", NULL);
	usage_error(t->s.home, "not an interval", "mirror", "create", "vsrc",
	    "dst:vdst", "--mode", "async", "--schedule", "0s", NULL);
	usage_error(t->s.home, "not an interval", "mirror", "create", "vsrc",
	    "dst:vdst", "--mode", "async", "--schedule", "8d", NULL);
	usage_error(t->s.home, "not an interval", "mirror", "create", "vsrc",
	    "dst:vdst", "--mode", "async", "--schedule", "every", NULL);
	usage_error(t->s.home, "--mode async", "mirror", "create", "vsrc",
	    "dst:vdst", "--schedule", "5m", NULL);
	usage_error(t->d.home, "source", "mirror", "create", "src:vsrc",
	    "vdst", "--mode", "async", "--schedule", "5m", NULL);
	usage_error(t->s.home, "compress", "mirror", "create", "vsrc",
	    "dst:vdst", "--compress", "gzip", NULL);
	js = tl_mirror_status(&t->s);
	assert_null(strstr(js, "vsrc"));	/* nothing was stored */
	free(js);

	free(ta_ctl_expect(0, t->d.home, "mirror", "create", "src:vsrc",
	    "vdst", "--mode", "async", "--compress", "lz4", "--tls", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "create", "vsrc",
	    "dst:vdst", "--mode", "async", "--schedule", "2s", "--compress",
	    "lz4", "--tls", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "init", "vsrc", NULL));
	long g = wait_acked(t, 1);
	js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors[0].mode", "async");
	ta_json_eq(js, "$.mirrors[0].schedule", "2s");
	ta_json_eq(js, "$.mirrors[0].compress", "lz4");
	long next = ta_json_long(js, "$.mirrors[0].next_run_s");
	assert_true(next >= 0 && next <= 2);
	assert_true(ta_json_long(js, "$.mirrors[0].transfer_total_bytes") >
	    0);
	assert_true(ta_json_long(js, "$.mirrors[0].transfer_bytes") > 0);
	assert_non_null(strstr(js, "\"tls\": true"));
	free(js);
	js = tl_mirror_status(&t->d);
	ta_json_eq(js, "$.mirrors[0].compress", "lz4");
	ta_json_eq(js, "$.mirrors[0].schedule", "");
	free(js);
	out = ta_ctl_expect(0, t->s.home, "mirror", "status", NULL);
	assert_non_null(strstr(out, "2s"));
	free(out);

	/* No CP stream in async mode: a scheduled transfer brings the file
	 * (wait_acked's bound; how soon is for bench, not for a shared
	 * machine's make check). */
	tl_mirror_write(&t->s, "/async1", 11, 1);
	free(ta_ctl_expect(0, t->s.home, "snap", "create", "vsrc", "a1",
	    NULL));
	long want = source_gen(t);
	assert_true(want > g);
	g = wait_acked(t, want);
	tl_mirror_wait_served(&t->d, g);
	tl_mirror_read_compare(&t->d, "/async1", 11, 1);
	assert_true(events_have(&t->s, "mirror.created", "every 2s"));
}

static void test_link_mismatch(void **state)
{
	struct mtest *t = *state;
	char *js = NULL;

	ta_daemon_start(&t->s.d, t->s.home);
	ta_daemon_start(&t->d.d, t->d.home);
	tl_mirror_peers(&t->s, &t->d, t->key);
	free(ta_ctl_expect(0, t->d.home, "mirror", "create", "src:vsrc",
	    "vdst", "--compress", "zstd", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "create", "vsrc",
	    "dst:vdst", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "init", "vsrc", NULL));
	for (int i = 0; i < 200; i++) {
		free(js);
		js = tl_mirror_status(&t->s);
		char *e = ta_json(js, "$.mirrors[0].last_error");
		bool found = e != NULL && strstr(e, "link options differ");
		free(e);
		if (found)
			break;
		ta_sleep_ms(50);
	}
	char *e = ta_json(js, "$.mirrors[0].last_error");
	assert_non_null(e);
	assert_non_null(strstr(e, "link options differ"));
	assert_non_null(strstr(e, "zstd"));
	free(e);
	assert_int_equal(ta_json_long(js, "$.mirrors[0].acked_gen"), 0);
	free(js);
	assert_true(events_have(&t->s, "mirror.error", "link options differ"));
}

static void test_small_destination(void **state)
{
	struct mtest *t = *state;
	char *js = NULL, *err = NULL;

	tl_mirror_export(&t->s);
	tl_mirror_export(&t->d);
	ta_daemon_start(&t->s.d, t->s.home);
	ta_daemon_start(&t->d.d, t->d.home);
	long t0 = (long)time(NULL);
	peers_and_relationship(t);
	/* The source refuses it before sending anything, and says why. */
	for (int i = 0; i < 200; i++) {
		free(js);
		free(err);
		js = tl_mirror_status(&t->s);
		err = ta_json(js, "$.mirrors[0].last_error");
		if (err != NULL && strstr(err, "fewer than this file system's")
		    != NULL)
			break;
		ta_sleep_ms(50);
	}
	if (err == NULL || strstr(err, "fewer than this file system's") == NULL)
		fail_msg("no refusal in the source's status: %s", js);
	/* When it happened last. */
	long when = ta_json_long(js, "$.mirrors[0].last_error_time");
	assert_true(when >= t0 && when <= (long)time(NULL));
	free(js);
	free(err);
	assert_true(events_have(&t->s, "mirror.error",
	    "fewer than this file system's"));
	/* The source told the destination why, before it closed: its
	 * status and a mirror.error event there say so too. */
	js = err = NULL;
	for (int i = 0; i < 200; i++) {
		free(js);
		free(err);
		js = tl_mirror_status(&t->d);
		err = ta_json(js, "$.mirrors[0].last_error");
		if (err != NULL && strstr(err, "fewer than the source's file "
		    "system's") != NULL)
			break;
		ta_sleep_ms(50);
	}
	if (err == NULL || strstr(err, "the source refused") == NULL ||
	    strstr(err, "fewer than the source's file system's") == NULL)
		fail_msg("no refusal in the destination's status: %s", js);
	free(err);
	ta_json_eq(js, "$.mirrors[0].state", "uninitialized");
	assert_int_equal(ta_json_long(js, "$.mirrors[0].acked_gen"), 0);
	when = ta_json_long(js, "$.mirrors[0].last_error_time");
	assert_true(when >= t0 && when <= (long)time(NULL));
	/* The destination's counters: no source was given up for silence. */
	assert_non_null(strstr(js, "\"silent_given_up\": 0"));
	free(js);
	char *dout = ta_ctl_expect(0, t->d.home, "mirror", "status", "vdst",
	    NULL);
	assert_non_null(strstr(dout, "SILENT_GIVEN_UP"));
	free(dout);
	/* Refused again and again: the source backs off rather than trying
	 * every 200 ms (200, 400, 800, 1600 ms...: 5 tries in 3 s, 15 at
	 * 200 ms). */
	ta_sleep_ms(3000);
	js = tl_mirror_status(&t->s);
	long refusals = ta_json_long(js, "$.mirrors[0].refusals");
	long delay = ta_json_long(js, "$.mirrors[0].retry_delay_ms");
	fprintf(stderr, "small destination: %ld refusals, next try in %ld "
	    "ms\n", refusals, delay);
	assert_true(refusals >= 3 && refusals <= 8);
	assert_true(delay >= 800);
	free(js);
	/* The text form has them too. */
	char *out = ta_ctl_expect(0, t->s.home, "mirror", "status", "vsrc",
	    NULL);
	assert_non_null(strstr(out, "LAST_ERROR_TIME"));
	assert_non_null(strstr(out, "REFUSALS"));
	free(out);
	assert_true(events_have(&t->d, "mirror.error",
	    "fewer than the source's file system's"));
	/* Delete: the destination volume is writable again. */
	free(ta_ctl_expect(0, t->d.home, "mirror", "delete", "vdst", NULL));
	assert_int_equal(try_create(&t->d, "/mine"), 0);
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
}

/* The name of the first resync.* snapshot of the volume. */
static void resync_snap(const struct tl_mirror_side *s, const char *vol,
    char *name, size_t len)
{
	char *out = ta_ctl_expect(0, s->home, "snap", "list", vol, NULL);
	char *p = strstr(out, "resync.");

	assert_non_null(p);
	size_t n = strspn(p, "resync.0123456789");
	if (n > 0 && p[n - 1] == '.')
		n--;		/* resync.GEN.NAME: GEN's */
	assert_true(n < len);
	memcpy(name, p, n);
	name[n] = '\0';
	free(out);
}

/* The name of the last resync.* snapshot of the volume other than
 * `other` (a snapshot of an earlier resync). */
static void resync_snap_not(const struct tl_mirror_side *s, const char *vol,
    const char *other, char *name, size_t len)
{
	char *out = ta_ctl_expect(0, s->home, "snap", "list", vol, NULL);

	name[0] = '\0';
	for (char *p = strstr(out, "resync."); p != NULL;
	    p = strstr(p + 1, "resync.")) {
		size_t n = strspn(p, "resync.0123456789");
		if (n > 0 && p[n - 1] == '.')
			n--;
		assert_true(n < len);
		if (strlen(other) == n && strncmp(p, other, n) == 0)
			continue;
		memcpy(name, p, n);
		name[n] = '\0';
	}
	if (name[0] == '\0')
		fail_msg("no resync snapshot but %s on %s: %s", other, vol,
		    out);
	free(out);
}

/* Wait (30 s bound) until field path of side s's status is want, or
 * with sub holds it. */
static void wait_field(const struct tl_mirror_side *s, const char *path,
    const char *want, bool sub)
{
	char *js = NULL;

	for (int i = 0; i < 600; i++) {
		free(js);
		js = tl_mirror_status(s);
		char *cur = ta_json(js, path);
		bool ok = cur != NULL && (sub ? strstr(cur, want) != NULL :
		    strcmp(cur, want) == 0);
		free(cur);
		if (ok) {
			free(js);
			return;
		}
		ta_sleep_ms(50);
	}
	fail_msg("%s never %s '%s': %s", path, sub ? "held" : "became", want,
	    js);
}

/* Wait until the row of side s is in state st. */
static void wait_state(const struct tl_mirror_side *s, const char *st)
{
	wait_field(s, "$.mirrors[0].state", st, false);
}

/* File /base on the source, acknowledged and served by the destination
 * (the baseline's root, then the newest); returns that generation. */
static long base_served(struct mtest *t)
{
	tl_mirror_write(&t->s, "/base", 1, 1);
	long g = wait_acked(t, 1);
	g = wait_acked(t, source_gen(t) > g ? source_gen(t) : g);
	tl_mirror_wait_served(&t->d, g);
	return g;
}

/* Both filerds up with the relationship, /base served by the
 * destination (base_served); returns that generation. */
static long pair_served(struct mtest *t)
{
	tl_mirror_export(&t->s);
	tl_mirror_export(&t->d);
	ta_daemon_start(&t->s.d, t->s.home);
	ta_daemon_start(&t->d.d, t->d.home);
	peers_and_relationship(t);
	return base_served(t);
}

/* Failover: both sides break off (the destination first), so both can
 * write. */
static void break_both(struct mtest *t)
{
	free(ta_ctl_expect(0, t->d.home, "mirror", "break", "vdst", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "break", "vsrc", NULL));
}

/* mirror status --json of vol's relationship only (owned). */
static char *status_of(const struct tl_mirror_side *s, const char *vol)
{
	return ta_ctl_expect(0, s->home, "mirror", "status", vol, "--json",
	    NULL);
}

static void test_resync(void **state)
{
	struct mtest *t = *state;
	char snap[64], path[128];
	long g;

	g = pair_served(t);

	/* Failover: both sides break off and both write. */
	break_both(t);
	tl_mirror_write(&t->s, "/src-new", 2, 1);
	tl_mirror_write(&t->d, "/dst-new", 3, 1);
	tl_mirror_read_compare(&t->d, "/base", 1, 1);
	/* a snapshot the destination makes after the break travels too */
	free(ta_ctl_expect(0, t->d.home, "snap", "create", "vdst", "one",
	    NULL));

	/* A resync whose volume goes offline before the peer's half comes:
	 * interrupted, and it can be run again once the volume is back. */
	free(ta_ctl_expect(0, t->d.home, "mirror", "resync", "vdst", NULL));
	free(ta_ctl_expect(0, t->d.home, "vol", "offline", "vdst", NULL));
	char *rs = status_of(&t->d, "vdst");
	ta_json_eq(rs, "$.mirrors[0].state", "broken-off");
	char *why = ta_json(rs, "$.mirrors[0].last_error");
	assert_non_null(why);
	assert_non_null(strstr(why, "resync interrupted"));
	free(why);
	free(rs);
	free(ta_ctl_expect(0, t->d.home, "vol", "online", "vdst", NULL));
	tl_mirror_read_compare(&t->d, "/dst-new", 3, 1);

	/* Resync: not before the break on that side, then on both. */
	free(ta_ctl_expect(0, t->d.home, "mirror", "resync", "vdst", NULL));
	free(ta_ctl_expect(1, t->d.home, "mirror", "resync", "vdst", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "resync", "vsrc", NULL));
	wait_state(&t->s, "in-sync");
	g = wait_acked(t, 1);
	tl_mirror_wait_served(&t->d, g);
	tl_mirror_read_compare(&t->d, "/src-new", 2, 1);
	tl_mirror_read_compare(&t->d, "/base", 1, 1);
	assert_int_equal(try_create(&t->d, "/nope"), -EROFS);
	/* What the destination wrote is a snapshot on both sides now. */
	resync_snap(&t->s, "vsrc", snap, sizeof(snap));
	snprintf(path, sizeof(path), "/.snapshot/%s/dst-new", snap);
	tl_mirror_read_compare(&t->s, path, 3, 1);
	tl_mirror_read_compare(&t->d, path, 3, 1);
	assert_true(events_have(&t->s, "mirror.resync", snap));
	assert_true(events_have(&t->d, "mirror.resync", "rolled back"));
	/* and the destination's snapshot "one", named in the event */
	char list[160];
	snprintf(list, sizeof(list), "as snapshots %s, %s.one", snap, snap);
	assert_true(events_have(&t->s, "mirror.resync", list));
	assert_true(events_have(&t->d, "mirror.resync", "as 2 snapshots"));
	snprintf(path, sizeof(path), "/.snapshot/%s.one/dst-new", snap);
	tl_mirror_read_compare(&t->s, path, 3, 1);

	/* Failback: break again, write on both, the old destination wins. */
	break_both(t);
	tl_mirror_write(&t->d, "/dst-new2", 4, 1);
	tl_mirror_write(&t->s, "/src-new2", 5, 1);
	free(ta_ctl_expect(0, t->s.home, "mirror", "resync", "vsrc",
	    "--reverse", NULL));
	free(ta_ctl_expect(0, t->d.home, "mirror", "resync", "vdst",
	    "--reverse", NULL));
	wait_state(&t->d, "in-sync");
	char *js = tl_mirror_status(&t->d);
	ta_json_eq(js, "$.mirrors[0].direction", "source");
	free(js);
	js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors[0].direction", "destination");
	free(js);
	/* the old source now serves the old destination's tree */
	for (int i = 0; i < 600; i++) {
		js = tl_mirror_status(&t->d);
		long a = ta_json_long(js, "$.mirrors[0].acked_gen");
		long sg = ta_json_long(js, "$.mirrors[0].source_gen");
		free(js);
		if (a >= sg)
			break;
		ta_sleep_ms(50);
	}
	tl_mirror_read_compare(&t->s, "/dst-new2", 4, 1);
	assert_int_equal(try_create(&t->s, "/nope"), -EROFS);
	assert_int_equal(try_create(&t->d, "/writable"), 0);
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
}

/* Seconds until side s's row leaves 'resyncing' (60 s bound). */
static double resyncing_until(const struct tl_mirror_side *s, double t0)
{
	for (int i = 0; i < 1200; i++) {
		char *js = tl_mirror_status(s);
		char *st = ta_json(js, "$.mirrors[0].state");
		bool on = st != NULL && strcmp(st, "resyncing") == 0;
		free(st);
		free(js);
		if (!on)
			return tl_now_s() - t0;
		ta_sleep_ms(50);
	}
	fail_msg("still resyncing after 60 s");
	return 0;
}

/* Both filerds running, a sync relationship created on both sides,
 * throttled to rate on the source; not initialized. */
static void throttled_created(struct mtest *t, const char *rate)
{
	both_started(t);
	free(ta_ctl_expect(0, t->d.home, "mirror", "create", "src:vsrc",
	    "vdst", "--mode", "sync", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "create", "vsrc",
	    "dst:vdst", "--mode", "sync", "--throttle", rate, NULL));
}

/* The same at 1 MiB/s, its baseline acknowledged and served. */
static void throttled_pair(struct mtest *t)
{
	throttled_created(t, "1M");
	free(ta_ctl_expect(0, t->s.home, "mirror", "init", "vsrc", NULL));
	(void)base_served(t);
}

/*
 * The relationship's throttle (set on the source, 1 MiB/s) limits a
 * resync too, whichever way the data goes: T's 3 MiB cross in no less
 * than 3 s less the bucket's quarter second.  Plain: the destination is
 * overwritten and the source's filerd (W) paces its reads; --reverse:
 * the source is overwritten and its filerd (T) paces its writes.
 */
static void test_resync_throttle(void **state)
{
	struct mtest *t = *state;
	const unsigned mib = 3;
	const double least = mib - 0.25;
	char snap[64], path[128];
	double t0, el;

	throttled_pair(t);

	/* Plain: the destination's 3 MiB go to the source, read at 1 MiB/s
	 * by the source's filerd. */
	break_both(t);
	tl_mirror_write(&t->d, "/dst-bulk", 60, mib);
	free(ta_ctl_expect(0, t->d.home, "mirror", "resync", "vdst", NULL));
	t0 = tl_now_s();
	free(ta_ctl_expect(0, t->s.home, "mirror", "resync", "vsrc", NULL));
	el = resyncing_until(&t->s, t0);
	fprintf(stderr, "resync at 1 MiB/s, the source's filerd reading: "
	    "%u MiB over in %.2f s (no sooner than %.2f s)\n", mib, el,
	    least);
	if (el < least)
		fail_msg("resync of %u MiB in %.2f s: faster than the "
		    "throttle", mib, el);
	wait_state(&t->s, "in-sync");
	resync_snap(&t->s, "vsrc", snap, sizeof(snap));
	snprintf(path, sizeof(path), "/.snapshot/%s/dst-bulk", snap);
	tl_mirror_read_compare(&t->s, path, 60, mib);

	/* --reverse: the source's 3 MiB go to the destination, sent at
	 * 1 MiB/s by the source's filerd. */
	break_both(t);
	tl_mirror_write(&t->s, "/src-bulk", 70, mib);
	free(ta_ctl_expect(0, t->d.home, "mirror", "resync", "vdst",
	    "--reverse", NULL));
	t0 = tl_now_s();
	free(ta_ctl_expect(0, t->s.home, "mirror", "resync", "vsrc",
	    "--reverse", NULL));
	el = resyncing_until(&t->s, t0);
	fprintf(stderr, "resync --reverse at 1 MiB/s, the source's filerd "
	    "sending: %u MiB over in %.2f s (no sooner than %.2f s)\n", mib,
	    el, least);
	if (el < least)
		fail_msg("resync --reverse of %u MiB in %.2f s: faster than "
		    "the throttle", mib, el);
	wait_state(&t->d, "in-sync");
	char first[64];
	snprintf(first, sizeof(first), "%s", snap);
	resync_snap_not(&t->d, "vdst", first, snap, sizeof(snap));
	snprintf(path, sizeof(path), "/.snapshot/%s/src-bulk", snap);
	tl_mirror_read_compare(&t->d, path, 70, mib);
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
}

/* The relationship's throttle as side s's status shows it: the text
 * and the bytes a second. */
static void throttle_is(const struct tl_mirror_side *s, const char *dir,
    const char *text, long bps)
{
	char *js = tl_mirror_status(s);

	ta_json_eq(js, "$.mirrors[0].direction", dir);
	ta_json_eq(js, "$.mirrors[0].throttle", text);
	assert_int_equal(ta_json_long(js, "$.mirrors[0].throttle_bps"), bps);
	free(js);
}

/* Side s's database, beside its running filerd: run sql (db_run), or
 * the first column of its first row (db_long; -1 without a row). */
static void db_run(const struct tl_mirror_side *s, const char *sql)
{
	char path[2200], *msg = NULL;
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/filer.db", s->home);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

/* Open side s's database, prepare sql and take its first step. */
static int db_first(const struct tl_mirror_side *s, const char *sql,
    sqlite3 **db, sqlite3_stmt **st)
{
	char path[2200];

	snprintf(path, sizeof(path), "%s/filer.db", s->home);
	assert_int_equal(sqlite3_open(path, db), SQLITE_OK);
	sqlite3_busy_timeout(*db, 10000);
	assert_int_equal(sqlite3_prepare_v2(*db, sql, -1, st, NULL),
	    SQLITE_OK);
	int rc = sqlite3_step(*st);
	assert_true(rc == SQLITE_ROW || rc == SQLITE_DONE);
	return rc;
}

static long db_long(const struct tl_mirror_side *s, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long v = -1;

	if (db_first(s, sql, &db, &st) == SQLITE_ROW)
		v = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* The first column of the first row of sql on side s's database, as
 * text (owned; "" without a row), beside or without its filerd. */
static char *db_text(const struct tl_mirror_side *s, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char *v = NULL;

	if (db_first(s, sql, &db, &st) == SQLITE_ROW &&
	    sqlite3_column_text(st, 0) != NULL)
		v = strdup((const char *)sqlite3_column_text(st, 0));
	else
		v = strdup("");
	assert_non_null(v);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* How many events of kind on side s hold text. */
static int events_count(const struct tl_mirror_side *s, const char *kind,
    const char *text)
{
	char *out = ta_ctl_expect(0, s->home, "events", NULL);
	int n = 0;

	for (char *l = strtok(out, "\n"); l != NULL; l = strtok(NULL, "\n"))
		n += strstr(l, kind) != NULL && strstr(l, text) != NULL;
	free(out);
	return n;
}

/*
 * A plain resync whose half on the held side (the source's, W, or the
 * destination's, T) finishes while that side's filerd stops, after the
 * mirror service's last tick: its filerd runs with the test knob
 * FILER_RESYNC_STOP_HOLD_MS, which holds the stop there until the job
 * has finished.  The held side's half starts first and can make no
 * progress alone (W connects and finds no half on T's side; T listens
 * and nobody connects); its filerd is stopped and is inside the hold
 * (its log says so) before the other half starts, so no tick of the
 * stopping filerd can see the job finish.  The stop must finish it as
 * the tick would: the row says catching-up from the common generation
 * (at least g), in its new direction, with no error, and the
 * mirror.resync event is there.  The held filerd is started again.
 */
static void resync_done_at_stop(struct mtest *t, bool hold_source, long g,
    const char *const *env)
{
	struct tl_mirror_side *h = hold_source ? &t->s : &t->d;
	struct tl_mirror_side *o = hold_source ? &t->d : &t->s;
	const char *knob = "FILER_RESYNC_STOP_HOLD_MS";
	int held = ta_daemon_log_count(&h->d, knob);
	int done = events_count(h, "mirror.resync", "resync done");

	free(ta_ctl_expect(0, h->home, "mirror", "resync", h->vol, NULL));
	assert_int_equal(kill(h->d.pid, SIGTERM), 0);
	for (int i = 0; i < 600 && ta_daemon_log_count(&h->d, knob) == held;
	    i++)
		ta_sleep_ms(50);
	assert_int_equal(ta_daemon_log_count(&h->d, knob), held + 1);
	free(ta_ctl_expect(0, o->home, "mirror", "resync", o->vol, NULL));
	assert_int_equal(ta_daemon_stop(&h->d), 0);

	char *row = db_text(h, "SELECT state || '|' || direction || '|' || "
	    "last_error FROM mirrors");
	const char *want = hold_source ? "catching-up|source|" :
	    "catching-up|destination|";
	if (strcmp(row, want) != 0)
		fail_msg("the %s's row after a resync that finished as its "
		    "filerd stopped: %s (wanted %s)", hold_source ? "source" :
		    "destination", row, want);
	free(row);
	assert_true(db_long(h, "SELECT acked_gen FROM mirrors") >= g);
	assert_int_equal(events_count(h, "mirror.resync", "resync done"),
	    done + 1);
	ta_daemon_start_env(&h->d, h->home, env);
}

/*
 * One round of test_resync_done_at_stop: both sides break off and each
 * writes a file of its own (contents id on the source, id + 1 on the
 * destination), the resync finishes as the held filerd stops
 * (resync_done_at_stop), and the relationship goes on: the destination
 * serves the source's file read-only, and keeps its own on both sides in
 * a resync snapshot other than `seen` ("" for none), named in snap.
 * Returns the generation acknowledged.
 */
static long done_at_stop_round(struct mtest *t, bool hold_source, long g,
    const char *const *hold, int id, const char *seen, char *snap,
    size_t len)
{
	char src[32], dst[32], path[128];

	snprintf(src, sizeof(src), "/src-new%d", id);
	snprintf(dst, sizeof(dst), "/dst-new%d", id);
	break_both(t);
	tl_mirror_write(&t->s, src, id, 1);
	tl_mirror_write(&t->d, dst, id + 1, 1);
	resync_done_at_stop(t, hold_source, g, hold);
	wait_state(&t->s, "in-sync");
	g = wait_acked(t, 1);
	tl_mirror_wait_served(&t->d, g);
	tl_mirror_read_compare(&t->d, src, id, 1);
	assert_int_equal(try_create(&t->d, "/nope"), -EROFS);
	resync_snap_not(&t->s, "vsrc", seen, snap, len);
	snprintf(path, sizeof(path), "/.snapshot/%s%s", snap, dst);
	tl_mirror_read_compare(&t->s, path, id + 1, 1);
	tl_mirror_read_compare(&t->d, path, id + 1, 1);
	return g;
}

/*
 * A resync that finishes while a filerd stops is finished, not recorded
 * as interrupted (resync_done_at_stop): first on the source's filerd (W,
 * whose volume stays mounted throughout), then on the destination's (T,
 * rolled back: the stop mounts it read-only as the tick would, and
 * filerd unmounts it as it stops).  After each, both sides go on from
 * the common generation: the source catches the destination up, which
 * serves the source's data read-only and keeps its own as a snapshot on
 * both sides; `check` clean on both volumes (teardown).
 */
static void test_resync_done_at_stop(void **state)
{
	struct mtest *t = *state;
	const char *const hold[] = { "FILER_RESYNC_STOP_HOLD_MS", "30000",
	    NULL };
	char first[64], snap[64];
	long g;

	tl_mirror_export(&t->s);
	tl_mirror_export(&t->d);
	ta_daemon_start_env(&t->s.d, t->s.home, hold);
	ta_daemon_start_env(&t->d.d, t->d.home, hold);
	peers_and_relationship(t);
	g = base_served(t);

	/* W's half finishes as the source's filerd stops. */
	g = done_at_stop_round(t, true, g, hold, 2, "", first, sizeof(first));
	/* T's half finishes as the destination's filerd stops; the first
	 * round's data stays. */
	g = done_at_stop_round(t, false, g, hold, 4, first, snap,
	    sizeof(snap));
	tl_mirror_read_compare(&t->d, "/src-new2", 2, 1);
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
}

/* d's log on stderr, for a failure (the directory goes with the
 * test). */
static void log_show(const struct ta_daemon *d)
{
	FILE *f = fopen(d->log, "r");
	char line[1024];

	fprintf(stderr, "--- %s:\n", d->log);
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		fputs(line, stderr);
	if (f != NULL)
		fclose(f);
}

/* Wait (60 s bound) for d's filerd to exit by itself; its status as
 * ta_daemon_signal_wait gives it, -1 if it did not. */
static int daemon_exit_wait(struct ta_daemon *d)
{
	int st = 0;

	for (int i = 0; i < 1200 && d->pid > 0; i++) {
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) :
			    128 + WTERMSIG(st);
		}
		ta_sleep_ms(50);
	}
	return -1;
}

/* Wait (10 s bound: the tick stores what status shows) until side s's
 * row starts with want (direction|state|), its last error saying
 * nothing of a resync (W's source may have met T restarting: that
 * error is the link's). */
static void row_agrees(const struct tl_mirror_side *s, const char *want)
{
	char *row = NULL;

	for (int i = 0; i < 200; i++) {
		free(row);
		row = db_text(s, "SELECT direction || '|' || state || '|' || "
		    "last_error FROM mirrors");
		if (strncmp(row, want, strlen(want)) == 0 &&
		    strstr(row, "resync") == NULL) {
			free(row);
			return;
		}
		ta_sleep_ms(50);
	}
	fail_msg("%s's row is %s, wanted %s...", s->vol, row, want);
}

/*
 * A resync between the current source src and destination dst (plain:
 * src wins; reverse: dst wins) whose half on the crashing side (W, the
 * winner, if crash_w, else T) finishes, after which that side's filerd
 * is killed (SIGKILL) before any tick stored the result: it runs with
 * the test knob FILER_RESYNC_CRASH_AT_DONE, which kills it at the first
 * tick that sees its half finished (when "1"), or T as soon as it has
 * recorded that RS_DONE came, before it rolls back ("record").  Its row
 * is left resyncing while the peer's half finishes and goes on.
 * Restarted, the crashed side must finish the resync itself (T: its
 * volume is rolled back, or it rolls back from its record; W: the peer
 * serves the common generation as the destination), not make it
 * broken-off: both rows agree (W the source, T the destination, no
 * error of the resync), and the relationship goes on.  Returns the
 * generation T serves at the end.
 */
static long crash_at_done_round(struct tl_mirror_side *src,
    struct tl_mirror_side *dst, bool reverse, bool crash_w, long g, int id,
    const char *seen, char *snap, size_t len, const char *when)
{
	const char *const knob[] = { "FILER_RESYNC_CRASH_AT_DONE", when,
	    NULL };
	struct tl_mirror_side *w = reverse ? dst : src;
	struct tl_mirror_side *tt = reverse ? src : dst;
	struct tl_mirror_side *h = crash_w ? w : tt, *o = crash_w ? tt : w;
	const char *rev = reverse ? "--reverse" : NULL;
	char wf[32], tf[32], after[32], path[128];

	snprintf(wf, sizeof(wf), "/w-crash%d", id);
	snprintf(tf, sizeof(tf), "/t-crash%d", id);
	snprintf(after, sizeof(after), "/after-crash%d", id);
	free(ta_ctl_expect(0, dst->home, "mirror", "break", dst->vol, NULL));
	free(ta_ctl_expect(0, src->home, "mirror", "break", src->vol, NULL));
	tl_mirror_write(w, wf, id, 1);
	tl_mirror_write(tt, tf, id + 1, 1);
	assert_int_equal(ta_daemon_stop(&h->d), 0);
	ta_daemon_start_env(&h->d, h->home, knob);
	int done = events_count(h, "mirror.resync", "resync done");
	const char *how = crash_w ? "confirmed at start" :
	    strcmp(when, "record") == 0 ? "as this side recorded" :
	    "was rolled back to it";
	int found = events_count(h, "mirror.resync", how);

	free(ta_ctl_expect(0, h->home, "mirror", "resync", h->vol, rev, NULL));
	free(ta_ctl_expect(0, o->home, "mirror", "resync", o->vol, rev, NULL));
	int st = daemon_exit_wait(&h->d);
	if (st != 128 + SIGKILL) {
		log_show(&h->d);
		log_show(&o->d);
		fail_msg("%s's filerd was not killed after its half of the "
		    "resync (exit status %d)", crash_w ? "W" : "T", st);
	}
	char *row = db_text(h, "SELECT state FROM mirrors");
	assert_string_equal(row, "resyncing");	/* the window */
	free(row);

	ta_daemon_start(&h->d, h->home);
	wait_state(w, "in-sync");
	wait_state(tt, "in-sync");
	g = tl_mirror_wait_acked(w, g);
	tl_mirror_wait_served(tt, g);
	row_agrees(w, "source|in-sync|");
	row_agrees(tt, "destination|in-sync|");
	assert_int_equal(events_count(h, "mirror.resync", "resync done"),
	    done + 1);
	assert_int_equal(events_count(h, "mirror.resync", how), found + 1);
	assert_int_equal(events_count(h, "mirror.state", "interrupted"), 0);

	/* W's data is on T, T's is kept as a snapshot on both sides, and
	 * what W writes now arrives. */
	tl_mirror_read_compare(tt, wf, id, 1);
	assert_int_equal(try_create(tt, "/nope"), -EROFS);
	resync_snap_not(w, w->vol, seen, snap, len);
	snprintf(path, sizeof(path), "/.snapshot/%s%s", snap, tf);
	tl_mirror_read_compare(w, path, id + 1, 1);
	tl_mirror_read_compare(tt, path, id + 1, 1);
	tl_mirror_write(w, after, id + 2, 1);
	g = tl_mirror_wait_acked(w, tl_mirror_long(w, "source_gen"));
	tl_mirror_wait_served(tt, g);
	tl_mirror_read_compare(tt, after, id + 2, 1);
	return g;
}

/*
 * A filerd killed after its half of a resync finished and before it
 * recorded that (crash_at_done_round), each side in each direction: a
 * plain resync with the source's filerd (W: its restart asks the peer,
 * which serves the common generation as the destination, and finishes)
 * killed, then the destination's (T: its volume is rolled back, which
 * comes only after W had its data: finished at start); then --reverse
 * with the destination's filerd killed (now W, its row a destination
 * that becomes the source) and --reverse again with the same filerd
 * killed (now T, its row the source).  Each time both rows end in
 * agreement, the new source catches the new destination up and goes on
 * streaming; `check` clean on both volumes (teardown).
 */
static void test_resync_crash_at_done(void **state)
{
	struct mtest *t = *state;
	char s1[64], s2[64], s3[64], s4[64], s5[64];
	long g;

	g = pair_served(t);

	g = crash_at_done_round(&t->s, &t->d, false, true, g, 2, "", s1,
	    sizeof(s1), "1");
	g = crash_at_done_round(&t->s, &t->d, false, false, g, 4, s1, s2,
	    sizeof(s2), "1");
	/* --reverse: vdst's filerd wins and is killed (W) */
	g = crash_at_done_round(&t->s, &t->d, true, true, g, 6, "", s3,
	    sizeof(s3), "1");
	/* --reverse again: vdst's filerd, now the source, is overwritten
	 * and killed (T) */
	g = crash_at_done_round(&t->d, &t->s, true, false, g, 8, "", s4,
	    sizeof(s4), "1");
	/* T killed once it recorded RS_DONE, before its roll back */
	g = crash_at_done_round(&t->s, &t->d, false, false, g, 10, "", s5,
	    sizeof(s5), "record");
	tl_mirror_read_compare(&t->d, "/w-crash2", 2, 1);
	tl_mirror_read_compare(&t->s, "/w-crash8", 8, 1);
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
}

/*
 * A filerd killed while its half of a resync waits for the peer's (the
 * source's, W: the destination's admin has not run `mirror resync`
 * yet): restarted, its row is still resyncing and it asks the peer,
 * which serves no destination (its row is broken-off); status says
 * resyncing and why.  `mirror break` ends the wait (broken-off, by the
 * administrator), and the resync run again on both finishes.
 */
static void test_resync_crash_unconfirmed(void **state)
{
	struct mtest *t = *state;
	long g;

	g = pair_served(t);
	break_both(t);
	tl_mirror_write(&t->s, "/w-new", 2, 1);
	tl_mirror_write(&t->d, "/t-new", 3, 1);

	free(ta_ctl_expect(0, t->s.home, "mirror", "resync", "vsrc", NULL));
	assert_int_equal(ta_daemon_signal_wait(&t->s.d, SIGKILL),
	    128 + SIGKILL);
	ta_daemon_start(&t->s.d, t->s.home);
	wait_field(&t->s, "$.mirrors[0].last_error", "asking the peer", true);
	char *js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors[0].state", "resyncing");
	free(js);
	ta_sleep_ms(1500);	/* a tick or more: still not confirmed */
	char *row = db_text(&t->s, "SELECT state FROM mirrors");
	assert_string_equal(row, "resyncing");
	free(row);
	/* W's own volume takes writes meanwhile. */
	tl_mirror_write(&t->s, "/w-wait", 4, 1);

	free(ta_ctl_expect(0, t->s.home, "mirror", "break", "vsrc", NULL));
	row = db_text(&t->s, "SELECT state FROM mirrors");
	assert_string_equal(row, "broken-off");
	free(row);
	free(ta_ctl_expect(0, t->s.home, "mirror", "resync", "vsrc", NULL));
	free(ta_ctl_expect(0, t->d.home, "mirror", "resync", "vdst", NULL));
	wait_state(&t->s, "in-sync");
	g = wait_acked(t, g);
	tl_mirror_wait_served(&t->d, g);
	tl_mirror_read_compare(&t->d, "/w-new", 2, 1);
	tl_mirror_read_compare(&t->d, "/w-wait", 4, 1);
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
}

/* Every state the mirror row of side s is updated to goes into table
 * row_states: each one is what a crash of filerd right after it would
 * leave. */
static void row_states_record(const struct tl_mirror_side *s)
{
	db_run(s, "CREATE TABLE row_states (direction TEXT, state TEXT, "
	    "throttle_bps INTEGER); CREATE TRIGGER row_states AFTER UPDATE "
	    "ON mirrors BEGIN INSERT INTO row_states VALUES (NEW.direction, "
	    "NEW.state, NEW.throttle_bps); END;");
}

/* Side s's row never said source without the rate bps (w: the side
 * that becomes the source), or destination with a rate (the old
 * source); it says so now and has that rate.  The record starts over. */
static void row_states_check(const struct tl_mirror_side *s, bool w,
    long bps)
{
	char sql[256];

	if (w) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM row_states "
		    "WHERE direction = 'source' AND throttle_bps != %ld", bps);
		assert_int_equal(db_long(s, sql), 0);
		assert_int_equal(db_long(s, "SELECT throttle_bps FROM "
		    "mirrors WHERE direction = 'source'"), bps);
	} else {
		assert_int_equal(db_long(s, "SELECT count(*) FROM row_states "
		    "WHERE direction = 'destination' AND throttle_bps != 0"),
		    0);
		assert_int_equal(db_long(s, "SELECT throttle_bps FROM "
		    "mirrors WHERE direction = 'destination'"), 0);
	}
	db_run(s, "DELETE FROM row_states");
}

/*
 * The throttle is the relationship's, kept in the source's row: a
 * `mirror resync --reverse` that makes the destination the source takes
 * it along (the old source's filerd sends it in the resync, the new
 * source's row takes it), so the new source's status shows it and its
 * catch-up is paced: the 3 MiB the old destination wrote after the break
 * take no less than 3 s less the bucket's quarter second from the first
 * `mirror resync` to their acknowledgement (the resync before the
 * catch-up only adds to that).  A rate changed on the new source goes
 * back the same way.  The rate moves with the direction, in the same
 * update of the row: no state of either row, which a crash could leave,
 * says source without the rate or destination with it, and the old
 * source's row has none (its status shows no throttle at all).
 */
static void test_reverse_keeps_throttle(void **state)
{
	struct mtest *t = *state;
	const unsigned mib = 3;
	const double least = mib - 0.25;
	double t0, el;

	throttled_pair(t);
	throttle_is(&t->s, "source", "1.0M/s", 1l << 20);

	/* Failover: the destination takes the writes, then fails back. */
	break_both(t);
	tl_mirror_write(&t->d, "/dst-bulk", 80, mib);
	row_states_record(&t->s);
	row_states_record(&t->d);
	t0 = tl_now_s();
	free(ta_ctl_expect(0, t->s.home, "mirror", "resync", "vsrc",
	    "--reverse", NULL));
	free(ta_ctl_expect(0, t->d.home, "mirror", "resync", "vdst",
	    "--reverse", NULL));
	long g = tl_mirror_wait_acked(&t->d, 1);
	el = tl_now_s() - t0;
	fprintf(stderr, "resync --reverse, then the new source's catch-up at "
	    "1 MiB/s: %u MiB acknowledged after %.2f s (no sooner than "
	    "%.2f s)\n", mib, el, least);
	throttle_is(&t->d, "source", "1.0M/s", 1l << 20);
	char *js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors[0].direction", "destination");
	free(js);
	assert_true(events_have(&t->d, "mirror.resync",
	    "throttle 1.0M/s, as the peer had it"));
	assert_true(events_have(&t->s, "mirror.resync",
	    "throttle 1.0M/s, now the peer's"));
	if (el < least)
		fail_msg("catch-up of %u MiB after the reverse resync in "
		    "%.2f s: faster than the throttle", mib, el);
	row_states_check(&t->d, true, 1l << 20);
	row_states_check(&t->s, false, 0);
	tl_mirror_wait_served(&t->s, g);
	tl_mirror_read_compare(&t->s, "/dst-bulk", 80, mib);

	/* The rate set on the new source is the one that goes back. */
	free(ta_ctl_expect(0, t->d.home, "mirror", "modify", "vdst",
	    "--throttle", "512K", NULL));
	throttle_is(&t->d, "source", "512K/s", 512l << 10);
	free(ta_ctl_expect(0, t->s.home, "mirror", "break", "vsrc", NULL));
	free(ta_ctl_expect(0, t->d.home, "mirror", "break", "vdst", NULL));
	free(ta_ctl_expect(0, t->d.home, "mirror", "resync", "vdst",
	    "--reverse", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "resync", "vsrc",
	    "--reverse", NULL));
	g = wait_acked(t, 1);
	throttle_is(&t->s, "source", "512K/s", 512l << 10);
	row_states_check(&t->s, true, 512l << 10);
	row_states_check(&t->d, false, 0);
	js = tl_mirror_status(&t->d);
	ta_json_eq(js, "$.mirrors[0].direction", "destination");
	free(js);
	tl_mirror_wait_served(&t->d, g);
	tl_mirror_read_compare(&t->d, "/dst-bulk", 80, mib);
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
}

/* ------------------------------------------------------------ modify */

static void wait_last_error(const struct tl_mirror_side *s, const char *what)
{
	wait_field(s, "$.mirrors[0].last_error", what, true);
}

static void test_modify(void **state)
{
	struct mtest *t = *state;
	char *js, *out;
	long g;

	tl_mirror_export(&t->s);
	tl_mirror_export(&t->d);
	ta_daemon_start(&t->s.d, t->s.home);
	ta_daemon_start(&t->d.d, t->d.home);
	peers_and_relationship(t);
	tl_mirror_write(&t->s, "/m0", 20, 1);
	g = wait_acked(t, 1);
	tl_mirror_wait_served(&t->d, g);

	/* Refused, and nothing changes. */
	usage_error(t->s.home, "nothing to change", "mirror", "modify", "vsrc",
	    NULL);
	usage_error(t->d.home, "source", "mirror", "modify", "vdst", "--mode",
	    "async", NULL);
	usage_error(t->s.home, "--mode async", "mirror", "modify", "vsrc",
	    "--schedule", "5s", NULL);
	usage_error(t->s.home, "interval", "mirror", "modify", "vsrc",
	    "--mode", "async", "--schedule", "5x", NULL);
	usage_error(t->s.home, "compress", "mirror", "modify", "vsrc",
	    "--compress", "gzip", NULL);
	free(ta_ctl_expect(1, t->s.home, "mirror", "modify", "nosuch",
	    "--mode", "async", NULL));
	js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors[0].mode", "sync");
	free(js);

	/* Async every 2 s: a scheduled transfer brings the next file. */
	out = ta_ctl_expect(0, t->s.home, "mirror", "modify", "vsrc", "--mode",
	    "async", "--schedule", "2s", NULL);
	assert_non_null(strstr(out, "async every 2s"));
	free(out);
	js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors[0].mode", "async");
	ta_json_eq(js, "$.mirrors[0].schedule", "2s");
	free(js);
	tl_mirror_write(&t->s, "/m1", 21, 1);
	free(ta_ctl_expect(0, t->s.home, "snap", "create", "vsrc", "m1",
	    NULL));
	g = wait_acked(t, source_gen(t));
	tl_mirror_wait_served(&t->d, g);
	tl_mirror_read_compare(&t->d, "/m1", 21, 1);
	assert_true(events_have(&t->s, "mirror.modified", "async every 2s"));

	/* Back to sync. */
	free(ta_ctl_expect(0, t->s.home, "mirror", "modify", "vsrc", "--mode",
	    "sync", NULL));
	js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors[0].mode", "sync");
	ta_json_eq(js, "$.mirrors[0].schedule", "");
	free(js);
	tl_mirror_write(&t->s, "/m2", 22, 1);
	g = wait_acked(t, source_gen(t));
	tl_mirror_wait_served(&t->d, g);
	tl_mirror_read_compare(&t->d, "/m2", 22, 1);

	/* Compression on one side only: refused until both agree. */
	out = ta_ctl_expect(0, t->s.home, "mirror", "modify", "vsrc",
	    "--compress", "lz4", NULL);
	assert_non_null(strstr(out, "must match"));
	free(out);
	wait_last_error(&t->s, "link options differ");
	free(ta_ctl_expect(0, t->d.home, "mirror", "modify", "vdst",
	    "--compress", "lz4", "--tls", "on", NULL));
	wait_last_error(&t->s, "link options differ");
	wait_last_error(&t->d, "link options differ");
	js = tl_mirror_status(&t->d);
	assert_true(ta_json_long(js, "$.mirrors[0].last_error_time") > 0);
	free(js);
	/* A restart cures nothing: the destination still shows the refusal
	 * right after it, and no event says it was resolved. */
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	ta_daemon_start(&t->d.d, t->d.home);
	wait_last_error(&t->d, "link options differ");
	js = tl_mirror_status(&t->d);
	assert_true(ta_json_long(js, "$.mirrors[0].last_error_time") > 0);
	free(js);
	ta_sleep_ms(1500);	/* filerd's ticks compare the row's error */
	wait_last_error(&t->d, "link options differ");
	assert_false(events_have(&t->d, "mirror.resolved",
	    "link options differ"));
	free(ta_ctl_expect(0, t->s.home, "mirror", "modify", "vsrc", "--tls",
	    "on", NULL));
	tl_mirror_write(&t->s, "/m3", 23, 1);
	g = wait_acked(t, source_gen(t));
	tl_mirror_wait_served(&t->d, g);
	tl_mirror_read_compare(&t->d, "/m3", 23, 1);
	js = tl_mirror_status(&t->d);
	ta_json_eq(js, "$.mirrors[0].compress", "lz4");
	assert_non_null(strstr(js, "\"tls\": true"));
	free(js);
	/* In sync again: neither side shows the refusal as its last error
	 * any more; the destination keeps it as the resolved one, with its
	 * time, and both sides' events say it was resolved. */
	wait_field(&t->d, "$.mirrors[0].last_error", "", false);
	js = tl_mirror_status(&t->d);
	ta_json_eq(js, "$.mirrors[0].state", "in-sync");
	assert_int_equal(ta_json_long(js, "$.mirrors[0].last_error_time"), 0);
	char *res = ta_json(js, "$.mirrors[0].resolved_error");
	if (res == NULL || strstr(res, "link options differ") == NULL)
		fail_msg("the refusal is not the resolved error: %s", js);
	free(res);
	assert_true(ta_json_long(js, "$.mirrors[0].resolved_time") > 0);
	free(js);
	wait_field(&t->s, "$.mirrors[0].last_error", "", false);
	js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors[0].state", "in-sync");
	assert_int_equal(ta_json_long(js, "$.mirrors[0].last_error_time"), 0);
	free(js);
	assert_true(events_have(&t->d, "mirror.resolved",
	    "link options differ"));
	assert_true(events_have(&t->s, "mirror.resolved",
	    "link options differ"));

	/* Quiesced stays quiesced. */
	free(ta_ctl_expect(0, t->s.home, "mirror", "quiesce", "vsrc", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "modify", "vsrc", "--mode",
	    "async", NULL));
	js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors[0].state", "quiesced");
	ta_json_eq(js, "$.mirrors[0].schedule", "1m");
	free(js);
	free(ta_ctl_expect(0, t->s.home, "mirror", "resume", "vsrc", NULL));
	g = wait_acked(t, source_gen(t));
	tl_mirror_wait_served(&t->d, g);
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
}

/* ------------------------------------------------------ shared port */

/* Wait (30 s bound) until vol's relationship on side s says in-sync with
 * generation at least gen acknowledged (source) or served (destination)
 * and, on the source, nothing newer; returns that generation. */
static long wait_vol(const struct tl_mirror_side *s, const char *vol,
    long gen)
{
	char *js = NULL;

	for (int i = 0; i < 600; i++) {
		free(js);
		js = status_of(s, vol);
		char *st = ta_json(js, "$.mirrors[0].state");
		char *dir = ta_json(js, "$.mirrors[0].direction");
		long a = ta_json_long(js, "$.mirrors[0].acked_gen");
		bool src = dir != NULL && strcmp(dir, "source") == 0;
		bool ok = st != NULL && strcmp(st, "in-sync") == 0 &&
		    a >= gen && a > 0 && (!src ||
		    a >= ta_json_long(js, "$.mirrors[0].source_gen"));

		free(st);
		free(dir);
		if (ok) {
			free(js);
			return a;
		}
		ta_sleep_ms(50);
	}
	fail_msg("mirror of %s not in-sync at generation %ld: %s", vol, gen,
	    js);
	return 0;
}

/* The file is on the source s and, once both sides say so, on its
 * secondary d. */
static void replicated(const struct tl_mirror_side *s,
    const struct tl_mirror_side *d, const char *path, uint32_t seed)
{
	tl_mirror_write(s, path, seed, 1);
	long g = wait_vol(s, s->vol, 1);
	wait_vol(d, d->vol, g);
	tl_mirror_read_compare(d, path, seed, 1);
}

static bool exists_on(const struct tl_mirror_side *s, const char *path)
{
	struct nfs_context *nfs = tl_mirror_client(s);
	struct nfs_stat_64 st;
	int rc = nfs_stat64(nfs, path, &st);

	nfs_destroy_context(nfs);
	return rc == 0;
}

/*
 * --throttle: bad rates and a throttle on the destination are refused; a
 * baseline of 72 MiB at 4 MiB/s reaches the destination's first checkpoint
 * (32 MiB) no sooner than the rate allows; a quiesce then ends the walk
 * at once (not when its remaining 40 MiB are through), the source filerd
 * restarts keeping the baseline's root held, `mirror modify --throttle
 * none` restarts the relationship in the middle of its baseline, and
 * after resume the baseline continues after the checkpoint instead of
 * starting over; the file reads back whole from the secondary.
 */
static void test_throttle(void **state)
{
	struct mtest *t = *state;
	const unsigned mib = 72;
	char *js, *out;
	long ckpt = 0;
	double t0, t_ckpt;

	both_started(t);
	free(ta_ctl_expect(0, t->d.home, "mirror", "create", "src:vsrc",
	    "vdst", "--mode", "sync", NULL));
	usage_error(t->d.home, "source", "mirror", "modify", "vdst",
	    "--throttle", "8M", NULL);
	usage_error(t->s.home, "64K", "mirror", "create", "vsrc", "dst:vdst",
	    "--throttle", "10K", NULL);
	usage_error(t->s.home, "rate", "mirror", "create", "vsrc", "dst:vdst",
	    "--throttle", "fast", NULL);
	out = ta_ctl_expect(0, t->s.home, "mirror", "create", "vsrc",
	    "dst:vdst", "--mode", "sync", "--throttle", "4M", NULL);
	assert_non_null(strstr(out, "throttle 4.0M/s"));
	free(out);
	js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors[0].throttle", "4.0M/s");
	assert_int_equal(ta_json_long(js, "$.mirrors[0].throttle_bps"),
	    4l << 20);
	free(js);
	tl_mirror_write(&t->s, "/big", 40, mib);

	t0 = tl_now_s();
	free(ta_ctl_expect(0, t->s.home, "mirror", "init", "vsrc", NULL));
	for (int i = 0; i < 1200 && ckpt == 0; i++) {
		ta_sleep_ms(50);
		ckpt = tl_mirror_long(&t->d, "checkpoint_blocks");
	}
	t_ckpt = tl_now_s() - t0;
	if (ckpt == 0)
		fail_msg("no checkpoint on the destination within 60 s");
	/* Quiesced in the middle of the walk: it ends there, and nothing
	 * more is sent (the rest would take 10 s at this rate). */
	free(ta_ctl_expect(0, t->s.home, "mirror", "quiesce", "vsrc", NULL));
	ta_sleep_ms(1000);
	long out1 = tl_mirror_long(&t->s, "bytes_out");
	ta_sleep_ms(1500);
	js = tl_mirror_status(&t->s);
	long out2 = ta_json_long(js, "$.mirrors[0].bytes_out");
	ta_json_eq(js, "$.mirrors[0].state", "quiesced");
	assert_int_equal(ta_json_long(js, "$.mirrors[0].acked_gen"), 0);
	free(js);
	fprintf(stderr, "checkpoint of %ld blocks after %.2f s at 4 MiB/s; "
	    "%ld bytes sent in the 1.5 s after quiesce\n", ckpt, t_ckpt,
	    out2 - out1);
	if (out2 - out1 > (1l << 20))
		fail_msg("%ld bytes sent in 1.5 s after mirror quiesce: the "
		    "walk went on", out2 - out1);
	/* The baseline's root stays held for the resume, also across a
	 * restart of the source filerd (recorded in fsinfo, held again by
	 * the mount). */
	js = ta_ctl_expect(0, t->s.home, "--json", "vol", "status", "vsrc",
	    NULL);
	char *held = ta_json(js, "$.volume.held_roots");
	if (held == NULL || held[0] == '\0')
		fail_msg("no root held during a quiesced baseline: %s", js);
	free(js);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
	ta_daemon_start(&t->s.d, t->s.home);
	js = ta_ctl_expect(0, t->s.home, "--json", "vol", "status", "vsrc",
	    NULL);
	ta_json_eq(js, "$.volume.held_roots", held);
	free(held);
	free(js);
	/* 32 MiB at 4 MiB/s, less the bucket's quarter second: 7.75 s. */
	if (t_ckpt < 6.5)
		fail_msg("the checkpoint's %ld blocks arrived in %.2f s: "
		    "faster than the throttle allows", ckpt, t_ckpt);

	/* Lifted in the middle of the baseline, which resumes. */
	out = ta_ctl_expect(0, t->s.home, "mirror", "modify", "vsrc",
	    "--throttle", "none", NULL);
	assert_non_null(strstr(out, "(was sync, compression none, TLS off, "
	    "throttle 4.0M/s)"));
	free(out);
	free(ta_ctl_expect(0, t->s.home, "mirror", "resume", "vsrc", NULL));
	long g = wait_acked(t, 1);
	js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors[0].throttle", "none");
	assert_true(ta_json_long(js, "$.mirrors[0].baseline_resumes") >= 1);
	assert_true(ta_json_long(js, "$.mirrors[0].blocks_not_resent") >=
	    ckpt);
	free(js);
	assert_true(events_have(&t->s, "mirror.modified", "throttle 4.0M/s"));
	tl_mirror_wait_served(&t->d, g);
	tl_mirror_read_compare(&t->d, "/big", 40, mib);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
}

/*
 * Anchored async schedules, INTERVAL@HH:MM: parsed, printed and placed on
 * the clock exactly (the functions filerd uses), refused where the
 * interval does not divide a day; then a relationship on 5m@00:02 with
 * filerd's schedule clock 60 times faster (FILER_CLOCK_SCALE) ships a
 * file written after its baseline at a slot, and its status shows the
 * schedule and when the next slot comes.
 */
static void test_anchored_schedule(void **state)
{
	struct mtest *t = *state;
	const char *env[] = { "FILER_CLOCK_SCALE", "60", NULL };
	uint64_t secs;
	int64_t at;
	char buf[48], *js;

	assert_int_equal(adm_mirror_schedule_parse("1d@02:30", &secs, &at), 0);
	assert_int_equal(secs, 86400);
	assert_int_equal(at, 9000);
	adm_mirror_schedule_fmt(secs, at, buf, sizeof(buf));
	assert_string_equal(buf, "1d@02:30");
	assert_int_equal(adm_mirror_schedule_parse("1h@00:15", &secs, &at), 0);
	assert_int_equal(at, 900);
	/* Quarter past each hour: 2023-11-14 22:13:20 UTC -> 21:15:00. */
	assert_int_equal(adm_mirror_schedule_slot(1700000000, secs, at),
	    1699996500);
	assert_int_equal(adm_mirror_schedule_slot(1700003700, secs, at),
	    1700003700);
	assert_int_equal(adm_mirror_schedule_slot(1700003699, secs, at),
	    1700000100);
	assert_int_equal(adm_mirror_schedule_parse("90s", &secs, &at), 0);
	assert_int_equal(at, -1);
	adm_mirror_schedule_fmt(secs, at, buf, sizeof(buf));
	assert_string_equal(buf, "1m30s");
	static const char *const bad[] = { "7m@01:00", "30s@00:00",
	    "2d@00:00", "1d@24:00", "1h@00:60", "1d@2:30", "1d@", "1d@02:30x",
	    "1d@02-30", "@02:30" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (adm_mirror_schedule_parse(bad[i], &secs, &at) != -EINVAL)
			fail_msg("schedule '%s' accepted", bad[i]);

	tl_mirror_export(&t->s);
	tl_mirror_export(&t->d);
	ta_daemon_start_env(&t->s.d, t->s.home, env);
	ta_daemon_start(&t->d.d, t->d.home);
	tl_mirror_peers(&t->s, &t->d, t->key);
	usage_error(t->s.home, "divides a day", "mirror", "create", "vsrc",
	    "dst:vdst", "--mode", "async", "--schedule", "7m@01:00", NULL);
	free(ta_ctl_expect(0, t->d.home, "mirror", "create", "src:vsrc",
	    "vdst", "--mode", "async", NULL));
	char *out = ta_ctl_expect(0, t->s.home, "mirror", "create", "vsrc",
	    "dst:vdst", "--mode", "async", "--schedule", "5m@00:02", NULL);
	assert_non_null(strstr(out, "async every 5m@00:02"));
	free(out);
	free(ta_ctl_expect(0, t->s.home, "mirror", "init", "vsrc", NULL));
	wait_acked(t, 1);
	js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors[0].schedule", "5m@00:02");
	long next = ta_json_long(js, "$.mirrors[0].next_run_s");
	if (next < 0 || next > 300)
		fail_msg("next_run_s %ld for 5m@00:02: %s", next, js);
	free(js);
	/* A slot every 5 s of real time: the file follows at one. */
	tl_mirror_write(&t->s, "/slot", 31, 1);
	long g = wait_acked(t, source_gen(t));
	tl_mirror_wait_served(&t->d, g);
	tl_mirror_read_compare(&t->d, "/slot", 31, 1);
	/* Back to a plain interval. */
	out = ta_ctl_expect(0, t->s.home, "mirror", "modify", "vsrc",
	    "--schedule", "1h", NULL);
	assert_non_null(strstr(out, "async every 1h,"));
	assert_non_null(strstr(out, "(was async every 5m@00:02,"));
	free(out);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
}

/*
 * `mirror break` on a source whose baseline runs, nothing acknowledged:
 * the root kept for a resume is no base for a resync, so its hold is
 * released (vol status shows no held roots), not kept until delete.
 */
static void test_break_unacknowledged_source(void **state)
{
	struct mtest *t = *state;
	char *js, *held = NULL;

	throttled_created(t, "64K");
	tl_mirror_write(&t->s, "/slow", 50, 4);
	free(ta_ctl_expect(0, t->s.home, "mirror", "init", "vsrc", NULL));
	for (int i = 0; i < 200; i++) {
		free(held);
		js = ta_ctl_expect(0, t->s.home, "--json", "vol", "status",
		    "vsrc", NULL);
		held = ta_json(js, "$.volume.held_roots");
		free(js);
		if (held != NULL && held[0] != '\0')
			break;
		ta_sleep_ms(50);
	}
	if (held == NULL || held[0] == '\0')
		fail_msg("the baseline holds no root");
	free(held);
	assert_int_equal(tl_mirror_long(&t->s, "acked_gen"), 0);
	free(ta_ctl_expect(0, t->s.home, "mirror", "break", "vsrc", NULL));
	js = ta_ctl_expect(0, t->s.home, "--json", "vol", "status", "vsrc",
	    NULL);
	ta_json_eq(js, "$.volume.held_roots", "");
	free(js);
	t->dst_mid_baseline = true;
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
}

/* Generation of snapshot name of side s's volume vol, or -1. */
static long snap_gen(const struct tl_mirror_side *s, const char *vol,
    const char *name)
{
	char *js = ta_ctl_expect(0, s->home, "--json", "snap", "list", vol,
	    NULL), path[64];
	long gen = -1;

	for (int i = 0; gen < 0; i++) {
		snprintf(path, sizeof(path), "$.snapshots[%d].name", i);
		char *nm = ta_json(js, path);
		if (nm == NULL)
			break;
		if (strcmp(nm, name) == 0) {
			snprintf(path, sizeof(path),
			    "$.snapshots[%d].generation", i);
			gen = ta_json_long(js, path);
		}
		free(nm);
	}
	free(js);
	return gen;
}

/* The roots side s's volume vol holds ("" none; owned). */
static char *held_roots(const struct tl_mirror_side *s, const char *vol)
{
	char *js = ta_ctl_expect(0, s->home, "--json", "vol", "status", vol,
	    NULL);
	char *held = ta_json(js, "$.volume.held_roots");

	assert_non_null(held);
	free(js);
	return held;
}

/* Wait (30 s bound) until side s's volume vol has fewer than max
 * blocks pending; fails with the last count.  A CP runs only with
 * something to write, and the ring keeps the frees of its last CPs
 * pending: a small file created every half second makes the CPs that
 * move the ring on. */
static void wait_pending_below(const struct tl_mirror_side *s,
    const char *vol, long max)
{
	long n = -1;

	for (int i = 0; i < 60; i++) {
		char *js = ta_ctl_expect(0, s->home, "--json", "vol", "status",
		    vol, NULL);
		n = ta_json_long(js, "$.volume.pending_blocks");
		free(js);
		if (n < max)
			return;
		char path[32];
		snprintf(path, sizeof(path), "/tick%d", i);
		assert_int_equal(try_create(s, path), 0);
		ta_sleep_ms(500);
	}
	fail_msg("%s: %ld blocks still pending after 30 s (wanted fewer "
	    "than %ld)", vol, n, max);
}

/*
 * `mirror break` on a source whose destination acknowledged a root.
 * The stopped source keeps that root held for a resync, and with no
 * source running no fallback bounded what waited behind it: every block
 * the volume freed from then on stayed pending, across restarts, until
 * `mirror delete` (a source taking writes after a break ran out of
 * space).  The break parks it: no root is held, the destination's root
 * is snapshot mirror.base.<acked>, 24 MiB written over a 6 MiB file
 * leave a few CPs' frees pending (before: about 5,000 blocks, still 30 s
 * later), a restart finds nothing held, and a resync afterwards starts
 * from that snapshot, which the acknowledgement past it deletes.
 */
static void test_break_parks_source(void **state)
{
	struct mtest *t = *state;
	char base[64], *held, want[96];

	/* CPs every second: the frees leave the ring within seconds */
	free(ta_ctl_expect(0, t->s.home, "config", "set", "cp_interval_ms",
	    "1000", NULL));
	(void)pair_served(t);
	break_both(t);
	long acked = tl_mirror_long(&t->s, "acked_gen");
	assert_true(acked > 0);
	held = held_roots(&t->s, "vsrc");
	assert_string_equal(held, "");
	free(held);
	snprintf(base, sizeof(base), "mirror.base.%ld", acked);
	assert_int_equal(snap_gen(&t->s, "vsrc", base), acked);
	assert_true(events_have(&t->s, "mirror.fallback", "broken off by the "
	    "administrator"));
	/* the volume goes on taking writes: its frees are reused */
	for (uint32_t i = 0; i < 4; i++)
		tl_mirror_write(&t->s, "/churn", 10 + 8 * i, 6);
	wait_pending_below(&t->s, "vsrc", 1024);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
	ta_daemon_start(&t->s.d, t->s.home);
	held = held_roots(&t->s, "vsrc");
	assert_string_equal(held, "");
	free(held);
	assert_int_equal(snap_gen(&t->s, "vsrc", base), acked);
	/* the resync starts from the snapshot */
	free(ta_ctl_expect(0, t->d.home, "mirror", "resync", "vdst", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "resync", "vsrc", NULL));
	wait_state(&t->s, "in-sync");
	long g = wait_acked(t, acked + 1);
	tl_mirror_wait_served(&t->d, g);
	snprintf(want, sizeof(want), "from common generation %ld", acked);
	assert_true(events_have(&t->s, "mirror.resync", want));
	tl_mirror_read_compare(&t->d, "/churn", 34, 6);
	tl_mirror_read_compare(&t->d, "/base", 1, 1);
	for (int i = 0; i < 200 && snap_gen(&t->s, "vsrc", base) >= 0; i++)
		ta_sleep_ms(50);
	assert_int_equal(snap_gen(&t->s, "vsrc", base), -1);
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
}

/*
 * A broken-off source whose volume still holds roots at filerd's start
 * (broken off before breaks parked them, or a crash between the
 * source's stop and the park): the start parks them.  Made here by
 * stopping filerd while the relationship runs (the stop keeps the
 * acknowledged root held, recorded in fsinfo) and marking the row
 * broken-off in the database, as such a break left it.
 */
static void test_start_parks_broken_source(void **state)
{
	struct mtest *t = *state;
	char base[64], *held;

	long g = pair_served(t);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
	db_run(&t->s, "UPDATE mirrors SET state = 'broken-off'");
	ta_daemon_start(&t->s.d, t->s.home);
	held = held_roots(&t->s, "vsrc");
	assert_string_equal(held, "");
	free(held);
	snprintf(base, sizeof(base), "mirror.base.%ld", g);
	assert_int_equal(snap_gen(&t->s, "vsrc", base), g);
	assert_true(events_have(&t->s, "mirror.fallback", "at start"));
	char *js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors[0].state", "broken-off");
	free(js);
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
}

/*
 * filerd killed (SIGKILL) after `mirror break` stored the source's row
 * broken-off and stopped its source, before the park
 * (FILER_MIRROR_CRASH_BEFORE_PARK): the volume comes back with the holds
 * of its last CP (the acknowledged root or an earlier one), the restart
 * parks them, so the volume holds nothing behind a relationship that no
 * longer runs, `filerctl check` is clean, and a resync still finds a
 * common generation instead of needing a new baseline.
 */
static void test_crash_before_park(void **state)
{
	const char *const knob[] = { "FILER_MIRROR_CRASH_BEFORE_PARK", "1",
	    NULL };
	struct mtest *t = *state;
	char base[64], want[96], *held;

	(void)pair_served(t);
	long acked = tl_mirror_long(&t->s, "acked_gen");
	assert_true(acked > 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
	ta_daemon_start_env(&t->s.d, t->s.home, knob);
	wait_state(&t->s, "in-sync");
	acked = tl_mirror_long(&t->s, "acked_gen");
	free(ta_ctl_expect(0, t->d.home, "mirror", "break", "vdst", NULL));
	struct ta_out o = ta_ctl(t->s.home, "mirror", "break", "vsrc", NULL);
	assert_int_not_equal(o.status, 0);	/* filerd died answering */
	ta_out_free(&o);
	assert_int_equal(daemon_exit_wait(&t->s.d), 128 + SIGKILL);
	ta_daemon_start(&t->s.d, t->s.home);
	char *js = tl_mirror_status(&t->s);
	ta_json_eq(js, "$.mirrors[0].state", "broken-off");
	free(js);
	held = held_roots(&t->s, "vsrc");
	assert_string_equal(held, "");
	free(held);
	/* What the crash left held is the hold list of the last CP before
	 * it: the acknowledged root, or one acknowledged before it. */
	js = ta_ctl_expect(0, t->s.home, "--json", "snap", "list", "vsrc",
	    NULL);
	char *name = ta_json(js, "$.snapshots[0].name");
	free(js);
	assert_non_null(name);
	assert_true(strncmp(name, "mirror.base.", 12) == 0);
	long pg = strtol(name + 12, NULL, 10);
	free(name);
	assert_true(pg > 0 && pg <= acked);
	snprintf(base, sizeof(base), "mirror.base.%ld", pg);
	assert_int_equal(snap_gen(&t->s, "vsrc", base), pg);
	assert_true(events_have(&t->s, "mirror.fallback", "at start"));
	free(ta_ctl_expect(0, t->s.home, "check", "vsrc", NULL));
	tl_mirror_write(&t->s, "/after-crash", 7, 1);
	free(ta_ctl_expect(0, t->d.home, "mirror", "resync", "vdst", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "resync", "vsrc", NULL));
	wait_state(&t->s, "in-sync");
	long g = wait_acked(t, pg + 1);
	tl_mirror_wait_served(&t->d, g);
	/* From the parked root, or a newer one both sides still retain
	 * (the source's ring of recent roots): never a new baseline. */
	bool found = false;
	for (long c = pg; c <= acked && !found; c++) {
		snprintf(want, sizeof(want), "from common generation %ld", c);
		found = events_have(&t->s, "mirror.resync", want);
	}
	assert_true(found);
	tl_mirror_read_compare(&t->d, "/after-crash", 7, 1);
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
}

/*
 * The overwritten side of a resync whose other half has not started: its
 * volume is taken from NFS and the admin commands while the resync owns
 * it.  Every command that reads or changes the file system answers with
 * an error that says so (filerd stays up), `vol status` still shows the
 * volume, and once the other half runs the resync finishes as usual.
 */
static void test_commands_during_resync(void **state)
{
	struct mtest *t = *state;

	(void)pair_served(t);
	break_both(t);
	tl_mirror_write(&t->d, "/diverged", 3, 1);
	free(ta_ctl_expect(0, t->d.home, "mirror", "resync", "vdst", NULL));
	const char *const cmds[][5] = {
		{ "snap", "create", "vdst", "x", NULL },
		{ "snap", "delete", "vdst", "x", NULL },
		{ "snap", "rollback", "vdst", "x", NULL },
		{ "snap", "list", "vdst", NULL },
		{ "stats", "vdst", NULL },
		{ "check", "vdst", NULL },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		struct ta_out o = ta_ctl(t->d.home, cmds[i][0], cmds[i][1],
		    cmds[i][2], cmds[i][3], cmds[i][4]);
		if (o.status == 0 || strstr(o.err, "resync") == NULL)
			fail_msg("filerctl %s %s during a resync: status %d, "
			    "%s%s", cmds[i][0], cmds[i][1], o.status, o.out,
			    o.err);
		ta_out_free(&o);
	}
	char *js = ta_ctl_expect(0, t->d.home, "--json", "vol", "status",
	    "vdst", NULL);
	ta_json_eq(js, "$.volume.name", "vdst");
	free(js);
	free(ta_ctl_expect(0, t->d.home, "stats", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "resync", "vsrc", NULL));
	wait_state(&t->s, "in-sync");
	long g = wait_acked(t, 1);
	tl_mirror_wait_served(&t->d, g);
	free(ta_ctl_expect(0, t->d.home, "snap", "list", "vdst", NULL));
	tl_mirror_read_compare(&t->d, "/base", 1, 1);
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
}

/*
 * A source broken off while its snapshot table is full: the park cannot
 * make mirror.base.<acked>, so the holds stay (and the command and a
 * mirror.error event say so).  Deleting a snapshot tries again.
 */
static void test_park_after_snapshot_delete(void **state)
{
	struct mtest *t = *state;
	char base[64], name[32], *held;
	int made = 0;

	long g = pair_served(t);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "fill%d", i);
		struct ta_out o = ta_ctl(t->s.home, "snap", "create", "vsrc",
		    name, NULL);
		int st = o.status;
		ta_out_free(&o);
		if (st != 0)
			break;
		made++;
	}
	assert_true(made > 0 && made < 300);	/* the table filled up */
	free(ta_ctl_expect(0, t->d.home, "mirror", "break", "vdst", NULL));
	char *out = ta_ctl_expect(0, t->s.home, "mirror", "break", "vsrc",
	    NULL);
	free(out);
	long acked = tl_mirror_long(&t->s, "acked_gen");
	assert_true(acked >= g);
	held = held_roots(&t->s, "vsrc");
	assert_string_not_equal(held, "");	/* nothing released */
	free(held);
	snprintf(base, sizeof(base), "mirror.base.%ld", acked);
	assert_int_equal(snap_gen(&t->s, "vsrc", base), -1);
	assert_true(events_have(&t->s, "mirror.error", "stay held"));
	/* A slot freed: the park runs again and goes through. */
	free(ta_ctl_expect(0, t->s.home, "snap", "delete", "vsrc", "fill0",
	    NULL));
	held = held_roots(&t->s, "vsrc");
	assert_string_equal(held, "");
	free(held);
	assert_int_equal(snap_gen(&t->s, "vsrc", base), acked);
	assert_true(events_have(&t->s, "mirror.fallback", "a snapshot was "
	    "deleted"));
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
}

static void test_shared_port(void **state)
{
	struct mtest *t = *state;
	struct tl_mirror_side s2 = t->s, d2 = t->d;

	s2.vol = "vsrc2";
	d2.vol = "vdst2";
	free(ta_ctl_expect(0, t->s.home, "vol", "create", "vsrc2", "--disks",
	    "3", "--parity", "1", "--size", "64M", NULL));
	free(ta_ctl_expect(0, t->d.home, "vol", "create", "vdst2", "--disks",
	    "3", "--parity", "1", "--size", "96M", NULL));
	tl_mirror_export(&t->s);
	tl_mirror_export(&t->d);
	free(ta_ctl_expect(0, t->s.home, "export", "add", "/vol/vsrc2",
	    "--client", "127.0.0.1", "--rw", "--squash", "none", "--insecure",
	    NULL));
	free(ta_ctl_expect(0, t->d.home, "export", "add", "/vol/vdst2",
	    "--client", "127.0.0.1", "--rw", "--squash", "none", "--insecure",
	    NULL));
	ta_daemon_start(&t->s.d, t->s.home);
	ta_daemon_start(&t->d.d, t->d.home);
	peers_and_relationship(t);
	/* The second relationship started on the source before the
	 * destination knows it: its listener refuses it, says so in its
	 * status, and takes it once it is created there too. */
	free(ta_ctl_expect(0, t->s.home, "mirror", "create", "vsrc2",
	    "dst:vdst2", "--mode", "sync", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "init", "vsrc2", NULL));
	char *js = NULL;
	for (int i = 0; i < 600; i++) {
		free(js);
		js = tl_mirror_status(&t->d);
		if (ta_json_long(js, "$.listener.unknown_relationship") >= 1)
			break;
		ta_sleep_ms(50);
	}
	assert_true(ta_json_long(js, "$.listener.unknown_relationship") >= 1);
	assert_int_equal(ta_json_long(js, "$.listener.receiving"), 1);
	assert_int_equal(ta_json_long(js, "$.listener.port"), t->d.mir_port);
	char *why = ta_json(js, "$.listener.last_refusal");
	assert_non_null(why);
	assert_non_null(strstr(why, "which this filerd does not receive"));
	free(why);
	free(js);
	free(ta_ctl_expect(0, t->d.home, "mirror", "create", "src:vsrc2",
	    "vdst2", "--mode", "sync", NULL));

	replicated(&t->s, &t->d, "/one", 1);
	replicated(&s2, &d2, "/two", 2);
	js = tl_mirror_status(&t->d);
	assert_int_equal(ta_json_long(js, "$.listener.receiving"), 2);
	assert_true(ta_json_long(js, "$.listener.routed") >= 2);
	free(js);
	/* The text form shows the listener too. */
	char *txt = ta_ctl_expect(0, t->d.home, "mirror", "status", NULL);
	assert_non_null(strstr(txt, "unknown_relationship"));
	free(txt);
	assert_false(exists_on(&t->d, "/two"));
	assert_false(exists_on(&d2, "/one"));
	assert_int_equal(try_create(&d2, "/nope"), -EROFS);

	/* The first relationship fails over and resyncs; the second goes
	 * on replicating through the same port meanwhile. */
	break_both(t);
	tl_mirror_write(&t->s, "/src-new", 3, 1);
	tl_mirror_write(&t->d, "/dst-new", 4, 1);
	replicated(&s2, &d2, "/two-b", 5);
	free(ta_ctl_expect(0, t->d.home, "mirror", "resync", "vdst", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "resync", "vsrc", NULL));
	replicated(&s2, &d2, "/two-c", 6);
	long g = wait_vol(&t->s, "vsrc", 1);
	wait_vol(&t->d, "vdst", g);
	tl_mirror_read_compare(&t->d, "/src-new", 3, 1);
	tl_mirror_read_compare(&t->d, "/one", 1, 1);
	assert_false(exists_on(&t->d, "/dst-new"));
	assert_int_equal(try_create(&t->d, "/nope"), -EROFS);
	assert_true(events_have(&t->d, "mirror.resync", "rolled back"));

	/* The destination restarts: both relationships come back. */
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	ta_daemon_start(&t->d.d, t->d.home);
	replicated(&t->s, &t->d, "/one-after", 7);
	replicated(&s2, &d2, "/two-after", 8);
	tl_mirror_read_compare(&d2, "/two", 2, 1);
	assert_int_equal(ta_daemon_stop(&t->d.d), 0);
	assert_int_equal(ta_daemon_stop(&t->s.d), 0);
	assert_int_equal(tl_mirror_check(&s2), 0);
	assert_int_equal(tl_mirror_check(&d2), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_replicate, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_async_schedule, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_link_mismatch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_resync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resync_done_at_stop,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_resync_crash_at_done,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_resync_crash_unconfirmed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_port, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_resync_throttle, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reverse_keeps_throttle,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_modify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_throttle, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_anchored_schedule, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_break_unacknowledged_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_break_parks_source, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_start_parks_broken_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_before_park, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_commands_during_resync,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_park_after_snapshot_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_small_destination,
		    setup_small, teardown),
	};

	ta_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
