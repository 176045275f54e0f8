/*
 * tests/mirror/test_mirror_crash.c: kill -9 on either side of a sync
 * mirror.  Two real filerds on loopback (free ports for NFS, MOUNT and the
 * mirror listener of each, homes under one scratch directory), mirroring
 * in sync mode while libnfs clients write files of known content to the
 * source: one with FILE_SYNC writes, one with UNSTABLE writes and a COMMIT
 * every 8 records.  The source takes a consistency point every 1 s or
 * every 1 MiB of dirty data, so CPs stream to the destination all along.
 *
 *   dest_kill9      the destination is killed 5 times at random moments:
 *                   a random delay into a run of writes, then the first
 *                   status poll that shows a root of the source it has not
 *                   acknowledged (it is receiving or applying that CP).
 *                   Each time, before the restart, `filerctl check` of its
 *                   volume is clean; after it, it serves a generation at
 *                   least the last one the source counted acknowledged and
 *                   at most the source's, and every file it shows is a
 *                   prefix of what the clients sent (complete records of
 *                   the known content); then the source's acknowledged
 *                   generation advances past it: in-sync, no error.  At
 *                   the end every file reads back identical on both sides.
 *   source_kill9    the source is killed 3 times while both writers are
 *                   busy and CPs stream: `filerctl check` clean; after the
 *                   restart every acknowledged record is there (NVLOG
 *                   replay), the clients write on, the mirror returns to
 *                   in-sync past the generation acknowledged before the
 *                   kill, and both sides read back identical.
 *   source_kill9_behind  the destination is killed, the source runs on for
 *                   more CPs than its ring retains, then is killed too: the
 *                   root the destination serves must stay held across the
 *                   source's crash, so both restart and the mirror catches
 *                   up from it.
 *
 * No transfer after the first is a baseline: the source's log records one
 * transfer from generation 0 in all (filerd's restarts included), its
 * events one "-> transferring", and the bytes it sends after a crash stay
 * below what the clients wrote, 64 KiB of metadata per CP and half the
 * data the baseline carried.
 * Every wait and loop is bounded; a failing test still kills its filerds,
 * and `filerctl check` runs on both volumes at the end of every test (the
 * scratch directory is kept, with both filerds' logs, when it fails).
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/lib/tl_mirror.h"
#include "tests/lib/tl_pattern.h"
#include "tests/lib/tl_port.h"
#include "tests/lib/tl_proc.h"
#include "tests/lib/tl_tmpdir.h"

#define CLIENT_TIMEOUT_MS	5000
#define REC			16384u	/* one WRITE */
#define MAX_RECS		1024	/* 16 MiB per file */
#define BASE_BYTES		(16u << 20)	/* before the baseline */
/* Fewer rounds under the sanitizers, where each costs three times more. */
#ifdef __SANITIZE_ADDRESS__
#define DEST_KILLS		3
#define SOURCE_KILLS		2
#else
#define DEST_KILLS		5
#define SOURCE_KILLS		3
#endif
#define MAX_FILES		32
/* What one CP may ship besides the data clients wrote: inode-file,
 * bitmap and pointer blocks (a generous bound). */
#define CP_META			(64u << 10)

/* A file the test wrote on the source: its content is seed's (tl_pattern). */
struct file {
	char path[32];
	uint32_t seed;
	_Atomic long acked;	/* records acknowledged as stable */
	_Atomic long sent;	/* records whose WRITE was sent */
};

struct ctest {
	char *dir;
	char key[2100];
	struct tl_mirror_side s, d;	/* source, destination */
	struct file files[MAX_FILES];
	int nfiles;
	uint64_t rng;
};

/* ------------------------------------------------------------- helpers */

static uint32_t rnd(struct ctest *t, uint32_t n)
{
	t->rng = tl_mix64(t->rng);
	return (uint32_t)(t->rng % n);
}

/* One side: CPs every second and at every MiB of dirty data, an NVLOG
 * of 2 x 8 MiB, the volume exported to 127.0.0.1. */
static void side_init(struct ctest *t, struct tl_mirror_side *s,
    const char *name, const char *vol, const char *size,
    const uint16_t ports[3])
{
	static const char *const settings[] = {
		"nvlog_half_bytes", "8M",
		"cp_interval_ms", "1000",
		"dirty_max_bytes", "1M",
		"cache_bytes", "64M",
		NULL
	};

	tl_mirror_side_init(s, t->dir, name, vol, size, ports, settings);
	tl_mirror_export(s);
}

/* ------------------------------------------------------------- clients */

/* Mount, retrying while a restarted filerd brings its exports up. */
static struct nfs_context *cl_mount(const struct tl_mirror_side *s)
{
	char err[600] = "";

	for (int i = 0; i < 100; i++) {
		struct nfs_context *nfs = tl_mirror_mount(s,
		    CLIENT_TIMEOUT_MS, err, sizeof(err));

		if (nfs != NULL)
			return nfs;
		ta_sleep_ms(100);
	}
	fail_msg("%s", err);
	return NULL;
}

/* One writer thread: records 0.. of one new file, in order. */
struct writer {
	const struct tl_mirror_side *s;
	struct file *f;
	bool filesync;		/* else UNSTABLE + COMMIT every 8 */
	_Atomic int *stop;
	char err[700];
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct nfs_context *nfs = tl_mirror_mount(w->s,
	    CLIENT_TIMEOUT_MS, w->err, sizeof(w->err));
	struct nfsfh *fh = NULL;
	uint8_t *b = malloc(REC);

	if (nfs == NULL || b == NULL)
		goto out;
	nfs_set_autoreconnect(nfs, 0);		/* fail fast at a kill */
	/* O_SYNC: libnfs sends every WRITE with stable = FILE_SYNC. */
	if (nfs_open(nfs, w->f->path, O_RDWR | O_CREAT |
	    (w->filesync ? O_SYNC : 0), &fh) != 0) {
		snprintf(w->err, sizeof(w->err), "open %s: %s", w->f->path,
		    nfs_get_error(nfs));
		fh = NULL;
		goto out;
	}
	for (long i = 0; i < MAX_RECS && !atomic_load(w->stop); i++) {
		tl_pattern_fill(b, REC, w->f->seed, (uint64_t)i * REC);
		atomic_store(&w->f->sent, i + 1);
		if (tl_nfs_write_all(nfs, fh, (uint64_t)i * REC, b, REC) != 0)
			break;
		if (w->filesync)
			atomic_store(&w->f->acked, i + 1);
		else if (i % 8 == 7 || i == MAX_RECS - 1) {
			if (nfs_fsync(nfs, fh) != 0)
				break;
			atomic_store(&w->f->acked, i + 1);
		}
		/* At most 4 MiB/s per writer: a CP every few hundred ms. */
		ta_sleep_ms(4);
	}
out:
	/* The server may be gone: closing may fail then. */
	if (fh != NULL)
		nfs_close(nfs, fh);
	if (nfs != NULL)
		nfs_destroy_context(nfs);
	free(b);
	return NULL;
}

/* Two writers on two new files of the source. */
struct load {
	struct ctest *t;
	struct writer w[2];
	pthread_t th[2];
	_Atomic int stop;
};

static void load_start(struct ctest *t, struct load *l, const char *tag)
{
	memset(l, 0, sizeof(*l));
	l->t = t;
	for (int i = 0; i < 2; i++) {
		struct file *f;

		assert_true(t->nfiles < MAX_FILES);
		f = &t->files[t->nfiles];
		memset(f, 0, sizeof(*f));
		snprintf(f->path, sizeof(f->path), "/%s-%s", tag,
		    i == 0 ? "sync" : "unstable");
		f->seed = (uint32_t)(t->nfiles + 1);
		t->nfiles++;
		l->w[i].s = &t->s;
		l->w[i].f = f;
		l->w[i].filesync = i == 0;
		l->w[i].stop = &l->stop;
	}
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&l->th[i], NULL, writer_main,
		    &l->w[i]), 0);
}

/* Both writers acknowledged at least n records (bounded). */
static void load_wait(struct load *l, long n)
{
	for (int i = 0; i < 1000; i++) {
		if (atomic_load(&l->w[0].f->acked) >= n &&
		    atomic_load(&l->w[1].f->acked) >= n)
			return;
		if (l->w[0].err[0] != '\0' || l->w[1].err[0] != '\0')
			break;
		ta_sleep_ms(10);
	}
	fail_msg("writers: %ld and %ld records acknowledged (%s%s)",
	    atomic_load(&l->w[0].f->acked), atomic_load(&l->w[1].f->acked),
	    l->w[0].err, l->w[1].err);
}

/* Stop and join; returns the bytes acknowledged.  ok_fail: the server
 * was killed under them, errors are expected. */
static uint64_t load_end(struct load *l, bool ok_fail)
{
	uint64_t bytes = 0;

	atomic_store(&l->stop, 1);
	for (int i = 0; i < 2; i++) {
		pthread_join(l->th[i], NULL);
		if (!ok_fail && l->w[i].err[0] != '\0')
			fail_msg("writer %s: %s", l->w[i].f->path,
			    l->w[i].err);
		bytes += (uint64_t)atomic_load(&l->w[i].f->sent) * REC;
	}
	return bytes;
}

/* Size of path on side s through nfs, or -1 if it does not exist. */
static int64_t file_size(struct nfs_context *nfs, const char *path)
{
	struct nfs_stat_64 st;

	if (nfs_stat64(nfs, path, &st) != 0)
		return -1;
	return (int64_t)st.nfs_size;
}

/*
 * Every file on side s holds the known content over its whole size: at
 * least `acked` records when must_have, at most `sent` records.  Returns
 * the bytes read.
 */
static uint64_t files_verify(struct ctest *t, const struct tl_mirror_side *s,
    bool must_have)
{
	struct nfs_context *nfs = cl_mount(s);
	uint8_t *b = malloc(REC);
	uint64_t total = 0;

	assert_non_null(b);
	for (int k = 0; k < t->nfiles; k++) {
		struct file *f = &t->files[k];
		long acked = atomic_load(&f->acked);
		int64_t size = file_size(nfs, f->path);
		/* Read after the size: a writer may still be adding. */
		long sent = atomic_load(&f->sent);
		struct nfsfh *fh;

		if (size < 0) {
			if (must_have && acked > 0)
				fail_msg("%s: %s missing (%ld records "
				    "acknowledged)", s->vol, f->path, acked);
			continue;
		}
		if (must_have && size < (int64_t)acked * REC)
			fail_msg("%s: %s has %lld bytes, %ld records of %u "
			    "acknowledged", s->vol, f->path, (long long)size,
			    acked, REC);
		if (size > (int64_t)sent * REC)
			fail_msg("%s: %s has %lld bytes, only %ld records "
			    "written", s->vol, f->path, (long long)size, sent);
		assert_int_equal(nfs_open(nfs, f->path, O_RDONLY, &fh), 0);
		for (int64_t off = 0; off < size; off += REC) {
			size_t n = size - off < REC ? (size_t)(size - off) :
			    REC;
			long bad;

			assert_int_equal(tl_nfs_read_all(nfs, fh,
			    (uint64_t)off, b, n), 0);
			bad = tl_pattern_mismatch(b, n & ~(size_t)7, f->seed,
			    (uint64_t)off);
			if (bad >= 0)
				fail_msg("%s: %s: wrong content at offset %ld "
				    "(size %lld)", s->vol, f->path, bad,
				    (long long)size);
			total += n;
		}
		assert_int_equal(nfs_close(nfs, fh), 0);
	}
	free(b);
	nfs_destroy_context(nfs);
	return total;
}

/* Every file reads back identical on both sides. */
static void files_identical(struct ctest *t)
{
	struct nfs_context *a = cl_mount(&t->s), *c = cl_mount(&t->d);
	uint8_t *ba = malloc(1u << 20), *bc = malloc(1u << 20);

	assert_non_null(ba);
	assert_non_null(bc);
	for (int k = 0; k < t->nfiles; k++) {
		const char *p = t->files[k].path;
		int64_t sa = file_size(a, p), sc = file_size(c, p);
		struct nfsfh *fa, *fc;

		if (sa != sc)
			fail_msg("%s: %lld bytes on the source, %lld on the "
			    "destination", p, (long long)sa, (long long)sc);
		if (sa < 0)
			continue;
		assert_int_equal(nfs_open(a, p, O_RDONLY, &fa), 0);
		assert_int_equal(nfs_open(c, p, O_RDONLY, &fc), 0);
		for (int64_t off = 0; off < sa; off += 1 << 20) {
			size_t n = sa - off < (1 << 20) ? (size_t)(sa - off) :
			    (1u << 20);

			assert_int_equal(tl_nfs_read_all(a, fa,
			    (uint64_t)off, ba, n), 0);
			assert_int_equal(tl_nfs_read_all(c, fc,
			    (uint64_t)off, bc, n), 0);
			if (memcmp(ba, bc, n) != 0)
				fail_msg("%s differs near offset %lld", p,
				    (long long)off);
		}
		nfs_close(a, fa);
		nfs_close(c, fc);
	}
	free(ba);
	free(bc);
	nfs_destroy_context(a);
	nfs_destroy_context(c);
}

/* ------------------------------------------------------------- mirrors */

/* Wait until the source shows the destination acknowledged at least
 * min_gen and everything the source has; in-sync, no error.  Returns the
 * acknowledged generation. */
static long wait_acked(const struct ctest *t, long min_gen)
{
	char *js = NULL;

	for (int i = 0; i < 600; i++) {
		free(js);
		js = tl_mirror_status(&t->s);
		long acked = ta_json_long(js, "$.mirrors[0].acked_gen");
		long src = ta_json_long(js, "$.mirrors[0].source_gen");
		char *st = ta_json(js, "$.mirrors[0].state");
		bool ok = acked >= min_gen && acked >= src && st != NULL &&
		    strcmp(st, "in-sync") == 0;

		free(st);
		if (ok) {
			ta_json_eq(js, "$.mirrors[0].last_error", "");
			free(js);
			return acked;
		}
		ta_sleep_ms(50);
	}
	fail_msg("the destination did not acknowledge generation %ld: %s",
	    min_gen, js);
	return 0;
}

/* A CP on the source now (a snapshot is taken by one), then wait until the
 * destination serves it.  Returns the generation. */
static long sync_now(struct ctest *t)
{
	static int n;
	char name[32];
	long g;

	snprintf(name, sizeof(name), "sync%d", n++);
	free(ta_ctl_expect(0, t->s.home, "snap", "create", t->s.vol, name,
	    NULL));
	free(ta_ctl_expect(0, t->s.home, "snap", "delete", t->s.vol, name,
	    NULL));
	g = tl_mirror_long(&t->s, "source_gen");
	g = wait_acked(t, g);
	tl_mirror_wait_served(&t->d, g);
	return g;
}

/* Occurrences of text in file path. */
static int log_count(const char *path, const char *text)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	int n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, text) != NULL)
			n++;
	fclose(f);
	return n;
}

static int events_count(const struct tl_mirror_side *s, const char *text)
{
	char *out = ta_ctl_expect(0, s->home, "events", "--limit", "100000",
	    NULL);
	int n = 0;

	for (char *l = strtok(out, "\n"); l != NULL; l = strtok(NULL, "\n"))
		if (strstr(l, text) != NULL)
			n++;
	free(out);
	return n;
}

/* The only transfer from generation 0 is the first one, and the
 * destination went through transferring once. */
static void assert_one_baseline(const struct ctest *t)
{
	int walks0 = log_count(t->s.d.log, "transfer of generation");
	int base = log_count(t->s.d.log, " after 0 (");

	print_message("source log: %d transfers by birth generation, %d from "
	    "generation 0\n", walks0, base);
	assert_int_equal(base, 1);
	assert_int_equal(events_count(&t->s, "-> transferring"), 1);
}

/* Bytes the source has sent, once the destination acknowledged its
 * newest generation (the counter is live; an ACK publishes every byte of
 * its transfer). */
static long bytes_out(struct ctest *t)
{
	(void)sync_now(t);
	return tl_mirror_long(&t->s, "bytes_out");
}

static void kill9(struct tl_mirror_side *s)
{
	assert_int_equal(ta_daemon_signal_wait(&s->d, SIGKILL), 128 + SIGKILL);
}

/* Two filerds, peers, a sync relationship, BASE_BYTES of data sent by the
 * baseline. */
static int setup(void **state)
{
	struct ctest *t = calloc(1, sizeof(*t));
	uint16_t ports[6];

	assert_non_null(t);
	t->dir = tl_tmpdir_make(NULL, "filer-mirror-crash");
	t->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	if (getenv("FILER_SEED") != NULL)
		t->rng = strtoull(getenv("FILER_SEED"), NULL, 0);
	print_message("seed %llu (FILER_SEED repeats it)\n",
	    (unsigned long long)t->rng);
	/* 3 disks of 192 MiB, one parity (384 MiB, room for every file the
	 * writers may make); the destination larger. */
	assert_int_equal(tl_free_ports(ports, 6), 0);
	side_init(t, &t->s, "src", "vsrc", "192M", &ports[0]);
	side_init(t, &t->d, "dst", "vdst", "256M", &ports[3]);
	tl_mirror_key_write(t->dir, t->key, sizeof(t->key));

	ta_daemon_start(&t->s.d, t->s.home);
	ta_daemon_start(&t->d.d, t->d.home);
	/* Data before the baseline: what a new baseline would send again. */
	{
		struct nfs_context *nfs = cl_mount(&t->s);
		struct nfsfh *fh;
		uint8_t *b = malloc(1u << 20);
		struct file *bf = &t->files[t->nfiles++];

		assert_non_null(b);
		snprintf(bf->path, sizeof(bf->path), "/base");
		bf->seed = 1000;
		assert_int_equal(nfs_creat(nfs, bf->path, 0644, &fh), 0);
		for (uint64_t off = 0; off < BASE_BYTES; off += 1u << 20) {
			tl_pattern_fill(b, 1u << 20, bf->seed, off);
			assert_int_equal(tl_nfs_write_all(nfs, fh, off, b,
			    1u << 20), 0);
		}
		assert_int_equal(nfs_fsync(nfs, fh), 0);
		assert_int_equal(nfs_close(nfs, fh), 0);
		nfs_destroy_context(nfs);
		free(b);
		atomic_store(&bf->acked, BASE_BYTES / REC);
		atomic_store(&bf->sent, BASE_BYTES / REC);
	}
	tl_mirror_peers(&t->s, &t->d, t->key);
	free(ta_ctl_expect(0, t->d.home, "mirror", "create", "src:vsrc",
	    "vdst", "--mode", "sync", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "create", "vsrc",
	    "dst:vdst", "--mode", "sync", NULL));
	free(ta_ctl_expect(0, t->s.home, "mirror", "init", "vsrc", NULL));
	tl_mirror_wait_served(&t->d, wait_acked(t, 1));
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct ctest *t = *state;
	int st = 0;

	if (t->s.d.pid > 0)
		st |= ta_daemon_stop(&t->s.d);
	if (t->d.d.pid > 0)
		st |= ta_daemon_stop(&t->d.d);
	st |= tl_mirror_check(&t->s);
	st |= tl_mirror_check(&t->d);
	if (st == 0)
		tl_tmpdir_remove(t->dir);
	else
		fprintf(stderr, "kept %s (logs: src.log, dst.log)\n", t->dir);
	free(t);
	return st == 0 ? 0 : -1;
}

/* ------------------------------------------------------------- tests */

static void test_dest_kill9(void **state)
{
	struct ctest *t = *state;
	long bytes_out0 = bytes_out(t);
	long g0 = tl_mirror_long(&t->s, "acked_gen");
	uint64_t written = 0;
	int behind = 0;

	for (int k = 0; k < DEST_KILLS; k++) {
		struct load l;
		char tag[16];
		uint32_t delay = 100 + rnd(t, 700);
		double t0;

		snprintf(tag, sizeof(tag), "d%d", k);
		load_start(t, &l, tag);
		load_wait(&l, 2);
		/* A random moment while CPs stream, preferably one where the
		 * source has a root the destination has not acknowledged yet:
		 * it is receiving or applying that CP. */
		ta_sleep_ms(delay);
		long acked = 0, srcg = 0;
		for (int i = 0; i < 50 && srcg <= acked; i++) {
			char *js = tl_mirror_status(&t->s);

			acked = ta_json_long(js, "$.mirrors[0].acked_gen");
			srcg = ta_json_long(js, "$.mirrors[0].source_gen");
			free(js);
		}
		kill9(&t->d);
		if (srcg > acked)
			behind++;
		t0 = tl_now_s();

		/* Its volume checks clean as the crash left it, while the
		 * source and its clients run on. */
		assert_int_equal(tl_mirror_check(&t->d), 0);
		ta_daemon_start(&t->d.d, t->d.home);
		/* It serves a root at least the acknowledged one, at most
		 * the source's, with complete records of what was sent. */
		long served = tl_mirror_long(&t->d, "acked_gen");
		long srcnow = tl_mirror_long(&t->s, "source_gen");
		if (served < acked || served > srcnow)
			fail_msg("restarted destination serves %ld; acked "
			    "before the kill %ld, source now at %ld", served,
			    acked, srcnow);
		files_verify(t, &t->d, false);
		/* The mirror continues from it, past what it served (a CP
		 * made now if the writers are done). */
		long g = srcnow > served ? wait_acked(t, srcnow) :
		    sync_now(t);
		print_message("kill %d: %u ms into the writes, acked %ld "
		    "source %ld; restarted serving %ld; acked %ld after "
		    "%.1f s\n", k + 1, delay, acked, srcg, served, g,
		    tl_now_s() - t0);
		written += load_end(&l, false);
	}
	long g = sync_now(t);
	files_verify(t, &t->s, true);
	files_identical(t);
	long sent = bytes_out(t) - bytes_out0;
	print_message("%d kills (%d with a root of the source not yet "
	    "acknowledged), generation %ld; the clients wrote %llu bytes, the "
	    "source sent %ld\n", DEST_KILLS, behind, g,
	    (unsigned long long)written, sent);
	assert_true((uint64_t)sent < written + (uint64_t)(g - g0) * CP_META +
	    BASE_BYTES / 2);
	assert_one_baseline(t);
}

/*
 * The clients write on after a restart, as clients do: a few records of
 * two new files.  (A source whose restart skipped a generation — NVLOG
 * records of the CP after the torn one make the replay's CP take their
 * generation — has no root at an odd distance from the destination's
 * until its next CP, M2, so it catches up with that CP.)  Returns the
 * bytes written.
 */
static uint64_t write_on(struct ctest *t, const char *tag)
{
	struct load l;
	char tg[16];

	snprintf(tg, sizeof(tg), "%s-after", tag);
	load_start(t, &l, tg);
	load_wait(&l, 8);
	return load_end(&l, false);
}

/* Kill the source while both writers are busy.  Returns the generation
 * the destination acknowledged before; *written the bytes the clients
 * sent. */
static long source_crash(struct ctest *t, const char *tag, long *written)
{
	struct load l;
	uint32_t delay = 100 + rnd(t, 500);

	load_start(t, &l, tag);
	load_wait(&l, 2);
	ta_sleep_ms(delay);
	long acked = tl_mirror_long(&t->s, "acked_gen");
	kill9(&t->s);
	*written = (long)load_end(&l, true);
	long a0 = atomic_load(&l.w[0].f->acked);
	long a1 = atomic_load(&l.w[1].f->acked);
	print_message("source killed %u ms into the writes: %ld FILE_SYNC and "
	    "%ld committed UNSTABLE records acknowledged, destination at "
	    "generation %ld\n", delay, a0, a1, acked);
	assert_true(a0 > 0 && a1 > 0);
	assert_int_equal(tl_mirror_check(&t->s), 0);
	return acked;
}

static void test_source_kill9(void **state)
{
	struct ctest *t = *state;

	for (int k = 0; k < SOURCE_KILLS; k++) {
		char tag[16];
		long written;

		snprintf(tag, sizeof(tag), "s%d", k);
		long acked = source_crash(t, tag, &written);
		ta_daemon_start(&t->s.d, t->s.home);
		/* Everything acknowledged is there (NVLOG replay). */
		files_verify(t, &t->s, true);
		written += (long)write_on(t, tag);
		(void)wait_acked(t, acked + 1);
		long sent = bytes_out(t);	/* ends with a CP acknowledged */
		long g = tl_mirror_long(&t->s, "acked_gen");
		files_identical(t);
		print_message("restarted source: the destination caught up to "
		    "%ld; %ld bytes sent since the restart, %ld written by the "
		    "clients around it\n", g, sent, written);
		assert_true(sent < written + (long)BASE_BYTES / 2);
	}
	assert_one_baseline(t);
}

static void test_source_kill9_behind(void **state)
{
	struct ctest *t = *state;
	struct load l;

	kill9(&t->d);
	long served = tl_mirror_long(&t->s, "acked_gen");
	/* More CPs than the source's ring of 4 retains. */
	load_start(t, &l, "b");
	load_wait(&l, 8);
	for (int i = 0; i < 300; i++) {
		if (tl_mirror_long(&t->s, "source_gen") >= served + 8)
			break;
		ta_sleep_ms(50);
	}
	long srcg = tl_mirror_long(&t->s, "source_gen");
	assert_true(srcg >= served + 8);
	long written = (long)load_end(&l, false), more;
	(void)source_crash(t, "bs", &more);
	written += more;
	print_message("destination down at %ld while the source went to %ld "
	    "and crashed\n", served, srcg);
	assert_int_equal(tl_mirror_check(&t->d), 0);

	ta_daemon_start(&t->s.d, t->s.home);
	ta_daemon_start(&t->d.d, t->d.home);
	/* It serves what it had (the source may not have counted its last
	 * acknowledgement). */
	assert_true(tl_mirror_long(&t->d, "acked_gen") >= served);
	files_verify(t, &t->s, true);
	written += (long)write_on(t, "ba");
	(void)wait_acked(t, served + 1);
	long g = sync_now(t);
	files_identical(t);
	long sent = bytes_out(t);
	print_message("caught up to %ld; %ld bytes sent since the restart, "
	    "%ld written by the clients since the destination went down\n", g,
	    sent, written);
	assert_true(sent < written + (long)BASE_BYTES / 2);
	assert_one_baseline(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dest_kill9, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_source_kill9, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_source_kill9_behind, setup,
		    teardown),
	};

	ta_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
