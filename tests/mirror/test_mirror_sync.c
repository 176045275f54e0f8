/*
 * tests/mirror/test_mirror_sync.c: a source and a destination (another
 * raid geometry, a larger VBN space) over loopback TCP.  After each CP the
 * replica reads back what the source holds: files, directories, hard
 * links, symlinks, sparse files, snapshots; the destination never reads
 * its disks on the mirror path; a reader of the replica never sees part of
 * a CP; a break makes the replica writable with the source's handles;
 * the replica does not switch roots while wafl_check walks it, and checks
 * run while CPs stream in are clean.
 */
#include <pthread.h>
#include <unistd.h>

#include "tests/mirror/tm.h"
#include "wafl/wafl_impl.h"

static void populate(wafl_vol_t *v, int round)
{
	struct wafl_obj dir, sub, f, o;
	uint8_t buf[20000];
	char name[64];

	assert_int_equal(wafl_root(v, &dir), 0);
	snprintf(name, sizeof(name), "dir-%d", round);
	assert_int_equal(wafl_mkdir(v, &tm_root, &dir, name, NULL, &sub, NULL,
	    NULL), 0);
	snprintf(name, sizeof(name), "file-%d", round);
	f = tm_file(v, name);
	tl_fill_pattern(buf, sizeof(buf), (uint64_t)round + 1);
	tm_write(v, &f, 0, buf, sizeof(buf));
	/* A hard link inside the new directory, a symlink, a sparse file. */
	assert_int_equal(wafl_link(v, &tm_root, &f, &sub, "hard", NULL, NULL),
	    0);
	assert_int_equal(wafl_symlink(v, &tm_root, &sub, "sym",
	    "../some/where/else", NULL, &o, NULL, NULL), 0);
	snprintf(name, sizeof(name), "sparse-%d", round);
	o = tm_file(v, name);
	tm_write(v, &o, 5ull << 20, buf, 4096);
	tm_write(v, &o, 64ull << 20, buf, 100);
}

static void test_sync_replica_reads_back(void **state)
{
	struct tm_pair *p = tm_pair_new();

	populate(p->src->v, 0);
	assert_int_equal(wafl_sync(p->src->v), 0);
	tm_dest_start(p);
	tm_source_start(p);
	/* The baseline. */
	assert_int_equal(mir_source_wait(p->ms, 0, 20000), 0);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	assert_int_equal(wafl_fsid(p->src->v), wafl_fsid(mir_dest_volume(p->md)));

	/* From here on nothing on the destination's disks is read. */
	raid_counters_reset(p->dst->raid);
	struct mir_dest_stats ds0;
	mir_dest_stats(p->md, &ds0);
	for (int r = 1; r <= 6; r++) {
		populate(p->src->v, r);
		tm_sync(p);
		tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	}
	/* Changes and removals too. */
	struct wafl_obj root;
	assert_int_equal(wafl_root(p->src->v, &root), 0);
	assert_int_equal(wafl_remove(p->src->v, &tm_root, &root, "file-2",
	    NULL), 0);
	assert_int_equal(wafl_rename(p->src->v, &tm_root, &root, "dir-3",
	    &root, "dir-renamed", NULL, NULL), 0);
	tm_sync(p);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));

	/* Snapshots follow with the CPs that make them. */
	assert_int_equal(wafl_snap_create(p->src->v, "before", NULL), 0);
	populate(p->src->v, 7);
	tm_sync(p);
	tm_snap_equal(p->src->v, mir_dest_volume(p->md), "before");
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));

	struct mir_dest_stats ds;
	struct raid_status rs;
	mir_dest_stats(p->md, &ds);
	raid_status(p->dst->raid, &rs);
	struct mir_source_stats ss;
	mir_source_stats(p->ms, &ss);
	fprintf(stderr, "sync: %llu CP transfers, %llu blocks (%llu as DELTA, "
	    "%llu rebuilt); destination: "
	    "%llu blocks written, mirror-path reads %llu (raid parity "
	    "read-modify-write %llu), replica-switch reads %llu over %llu "
	    "switches, raid reads %llu\n",
	    (unsigned long long)ss.transfers_cp,
	    (unsigned long long)ss.blocks_sent_cp,
	    (unsigned long long)ss.blocks_delta,
	    (unsigned long long)ds.blocks_delta,
	    (unsigned long long)(ds.blocks_written - ds0.blocks_written),
	    (unsigned long long)(ds.mirror_reads - ds0.mirror_reads),
	    (unsigned long long)(ds.parity_rmw_reads - ds0.parity_rmw_reads),
	    (unsigned long long)(ds.advance_reads - ds0.advance_reads),
	    (unsigned long long)(ds.transfers - ds0.transfers),
	    (unsigned long long)rs.counters.reads);
	assert_int_equal(ds.mirror_reads, 0);
	assert_int_equal(ds.rejects, 0);
	assert_true(ss.transfers_cp >= 8);
	/* Metadata the CPs rewrote went as DELTAs against the link's
	 * window, and every one was rebuilt (and verified) there. */
	assert_true(ss.blocks_delta > 0);
	assert_int_equal(ds.blocks_delta, ss.blocks_delta);
	assert_int_equal(ss.state, MIR_IN_SYNC);

	mir_source_stop(p->ms);
	p->ms = NULL;
	tm_check_clean(mir_dest_volume(p->md), "replica");
	tm_check_clean(p->src->v, "source");
	tm_pair_free(p);
}

/* ------------------------------------------- consistency under updates */

#define NSET	5
#define SETBLK	3

struct reader {
	struct tm_pair *p;
	_Atomic bool stop;
	uint64_t consistent, switched, gens_seen;
	int bad;
};

static uint64_t read_seq(wafl_vol_t *v, const char *name, int *bad)
{
	struct wafl_obj root, o;
	uint8_t buf[SETBLK * 4096];
	uint32_t got = 0;
	bool eof;

	if (wafl_root(v, &root) != 0 || wafl_lookup(v, &tm_root, &root, name,
	    &o, NULL, NULL) != 0)
		return UINT64_MAX;
	if (wafl_read(v, &tm_root, &o, 0, sizeof(buf), buf, &got, &eof,
	    NULL) != 0 || got != sizeof(buf)) {
		(*bad)++;
		return UINT64_MAX;
	}
	uint64_t s = 0;
	memcpy(&s, buf, 8);
	for (unsigned b = 1; b < SETBLK; b++) {
		uint64_t t;
		memcpy(&t, buf + b * 4096, 8);
		if (t != s) {
			if (*bad < 3)
				fprintf(stderr, "%s: block 0 has %llu, block "
				    "%u %llu\n", name, (unsigned long long)s, b,
				    (unsigned long long)t);
			(*bad)++;	/* one file torn across a CP */
		}
	}
	return s;
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	wafl_vol_t *v = mir_dest_volume(r->p->md);
	uint64_t last = 0;

	while (!r->stop) {
		uint64_t g1 = wafl_generation(v);
		uint64_t seq[NSET];
		for (int i = 0; i < NSET; i++) {
			char name[32];
			snprintf(name, sizeof(name), "set-%d", i);
			seq[i] = read_seq(v, name, &r->bad);
		}
		uint64_t g2 = wafl_generation(v);
		if (g1 != g2) {
			r->switched++;
			continue;
		}
		if (g1 != last)
			r->gens_seen++;
		last = g1;
		for (int i = 1; i < NSET; i++) {
			if (seq[i] != seq[0]) {
				if (r->bad < 3)
					fprintf(stderr, "gen %llu: set-0 has "
					    "%llu, set-%d %llu\n",
					    (unsigned long long)g1,
					    (unsigned long long)seq[0], i,
					    (unsigned long long)seq[i]);
				r->bad++;	/* two CPs in one root */
			}
		}
		r->consistent++;
	}
	return NULL;
}

static void test_reader_never_sees_partial_cp(void **state)
{
	struct tm_pair *p = tm_pair_new();
	struct wafl_obj f[NSET];
	uint8_t buf[SETBLK * 4096];

	for (int i = 0; i < NSET; i++) {
		char name[32];
		snprintf(name, sizeof(name), "set-%d", i);
		f[i] = tm_file(p->src->v, name);
	}
	memset(buf, 0, sizeof(buf));
	for (int i = 0; i < NSET; i++)
		tm_write(p->src->v, &f[i], 0, buf, sizeof(buf));
	assert_int_equal(wafl_sync(p->src->v), 0);
	tm_dest_start(p);
	tm_source_start(p);
	assert_int_equal(mir_source_wait(p->ms, 0, 20000), 0);

	struct reader r = { .p = p };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, reader_main, &r), 0);
	for (uint64_t seq = 1; seq <= 100; seq++) {
		for (unsigned b = 0; b < SETBLK; b++)
			memcpy(buf + b * 4096, &seq, 8);
		for (int i = 0; i < NSET; i++)
			tm_write(p->src->v, &f[i], 0, buf, sizeof(buf));
		assert_int_equal(wafl_sync(p->src->v), 0);
		/* Let the stream run ahead of the replica now and then. */
		if (seq % 4 == 0)
			assert_int_equal(mir_source_wait(p->ms, 0, 20000), 0);
		else
			usleep(2000);
	}
	assert_int_equal(mir_source_wait(p->ms, 0, 20000), 0);
	usleep(20000);
	r.stop = true;
	pthread_join(t, NULL);
	fprintf(stderr, "reader: %llu consistent reads over %llu roots, %llu "
	    "retried across a switch, %d bad\n",
	    (unsigned long long)r.consistent,
	    (unsigned long long)r.gens_seen, (unsigned long long)r.switched,
	    r.bad);
	assert_true(r.consistent > 0);
	/* Never a partial CP, never an inode of the old tree under the new
	 * root (wafl_replica_advance reloads inodes held mid-operation). */
	assert_int_equal(r.bad, 0);
	assert_true(r.gens_seen > 10);
	int bad = 0;
	assert_int_equal(read_seq(mir_dest_volume(p->md), "set-0", &bad), 100);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	tm_pair_free(p);
}

/* ------------------------------------------------ checking a replica */

struct checker {
	wafl_vol_t *v;
	_Atomic bool stop;
	int checks, bad;
	char first[300];
};

static void *checker_main(void *arg)
{
	struct checker *c = arg;

	while (!c->stop) {
		struct wafl_check_result r;
		int rc = wafl_check(c->v, &r);

		c->checks++;
		if (rc != 0 || r.errors != 0) {
			if (c->bad++ == 0)
				snprintf(c->first, sizeof(c->first), "%s (%d)",
				    r.first_error, rc);
		}
		/* Room for the replica's switch between two checks (back
		 * to back, they could hold it off for long: the source
		 * would fall back and catch up, which is not this test). */
		usleep(2000);
	}
	return NULL;
}

/*
 * The replica keeps the root a check walks: wafl_replica_advance waits
 * for cp_serial, which wafl_check holds (held here by hand: the CP is
 * received but not acknowledged until it is let go).  Then checks run in
 * a loop while 60 CPs rewrite the same files (so each CP frees the
 * blocks of the one before, which the next may reuse): every one clean.
 */
static void test_check_while_streaming(void **state)
{
	struct tm_pair *p = tm_pair_new();
	uint8_t buf[16 * 4096];
	struct wafl_obj f[4];

	(void)state;
	for (int i = 0; i < 4; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%d", i);
		f[i] = tm_file(p->src->v, name);
		tl_fill_pattern(buf, sizeof(buf), (uint64_t)i);
		tm_write(p->src->v, &f[i], 0, buf, sizeof(buf));
	}
	assert_int_equal(wafl_sync(p->src->v), 0);
	tm_dest_start(p);
	tm_source_start(p);
	assert_int_equal(mir_source_wait(p->ms, 0, 20000), 0);
	wafl_vol_t *rep = mir_dest_volume(p->md);
	uint64_t g0 = wafl_generation(rep);

	pthread_mutex_lock(&rep->cp_serial);
	tl_fill_pattern(buf, sizeof(buf), 100);
	tm_write(p->src->v, &f[0], 0, buf, sizeof(buf));
	assert_int_equal(wafl_sync(p->src->v), 0);
	assert_int_equal(mir_source_wait(p->ms, 0, 1000), -ETIMEDOUT);
	assert_int_equal(wafl_generation(rep), g0);
	pthread_mutex_unlock(&rep->cp_serial);
	assert_int_equal(mir_source_wait(p->ms, 0, 20000), 0);
	assert_true(wafl_generation(rep) > g0);

	struct checker c = { .v = rep };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, checker_main, &c), 0);
	for (int round = 0; round < 60; round++) {
		tl_fill_pattern(buf, sizeof(buf), 200 + (uint64_t)round);
		for (int i = 0; i < 4; i++)
			tm_write(p->src->v, &f[i], 0, buf, sizeof(buf));
		assert_int_equal(wafl_sync(p->src->v), 0);
		usleep(1000);
	}
	c.stop = true;
	pthread_join(t, NULL);
	assert_int_equal(mir_source_wait(p->ms, 0, 30000), 0);
	fprintf(stderr, "checks of the replica while streaming: %d, %d not "
	    "clean%s%s\n", c.checks, c.bad, c.bad ? ": " : "", c.first);
	assert_true(c.checks > 0);
	assert_int_equal(c.bad, 0);
	tm_tree_equal(p->src->v, rep);
	tm_pair_free(p);
}

/* ---------------------------------------------------------- break */

static void test_break_keeps_handles(void **state)
{
	struct tm_pair *p = tm_pair_new();
	uint8_t buf[9000], r[9000];

	struct wafl_obj f = tm_file(p->src->v, "kept");
	tl_fill_pattern(buf, sizeof(buf), 77);
	tm_write(p->src->v, &f, 0, buf, sizeof(buf));
	assert_int_equal(wafl_sync(p->src->v), 0);
	tm_dest_start(p);
	tm_source_start(p);
	assert_int_equal(mir_source_wait(p->ms, 0, 20000), 0);
	for (int i = 0; i < 5; i++) {
		buf[i] ^= 0xff;
		tm_write(p->src->v, &f, 0, buf, sizeof(buf));
		tm_sync(p);
	}
	struct wafl_obj root;
	assert_int_equal(wafl_root(p->src->v, &root), 0);
	uint8_t k1[32], k2[32];
	wafl_fh_key(p->src->v, k1);
	uint64_t fsid = wafl_fsid(p->src->v);
	uint64_t g = wafl_generation(p->src->v);

	/* The source is lost; the destination takes over. */
	mir_source_stop(p->ms);
	p->ms = NULL;
	char log[600];
	tl_path(log, sizeof(log), p->dst->dir, "nvlog-broken");
	wafl_vol_t *v = NULL;
	assert_int_equal(mir_dest_break(p->md, log, &v), 0);
	struct mir_dest_stats ds;
	mir_dest_stats(p->md, &ds);
	assert_int_equal(ds.state, MIR_BROKEN_OFF);
	assert_null(mir_dest_volume(p->md));
	/* At the last complete root g, and one CP of the break's own
	 * (which makes the mirror.base snapshot of g durable). */
	assert_int_equal(wafl_generation(v), g + 1);
	assert_int_equal(wafl_fsid(v), fsid);
	wafl_fh_key(v, k2);
	assert_memory_equal(k1, k2, 32);
	/* Handles taken on the source work here. */
	struct wafl_attr a;
	assert_int_equal(wafl_getattr(v, &f, &a), 0);
	uint32_t got = 0;
	bool eof;
	assert_int_equal(wafl_read(v, &tm_root, &f, 0, sizeof(r), r, &got,
	    &eof, NULL), 0);
	assert_int_equal(got, sizeof(r));
	assert_memory_equal(r, buf, sizeof(r));
	/* And it is writable. */
	tl_fill_pattern(buf, sizeof(buf), 78);
	tm_write(v, &f, 4096, buf, sizeof(buf));
	struct wafl_obj n = tm_file(v, "after-break");
	tm_write(v, &n, 0, buf, 100);
	assert_int_equal(wafl_sync(v), 0);
	assert_true(wafl_generation(v) > g);
	tm_check_clean(v, "broken-off destination");
	assert_int_equal(wafl_unmount(v), 0);
	tm_pair_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sync_replica_reads_back),
		cmocka_unit_test(test_reader_never_sees_partial_cp),
		cmocka_unit_test(test_break_keeps_handles),
		cmocka_unit_test(test_check_while_streaming),
	};
	return cmocka_run_group_tests_name("mirror sync", tests, NULL, NULL);
}
