/*
 * tests/wafl/test_ops.c: the operation layer of wafl.h (objects onward):
 * every namespace and data operation's success and error paths, data read
 * back dirty, after a CP and after remount, truncation inside a block and
 * extension (zeros, also after replay), a snapshot between a truncation
 * and a write, writes at each tree height's boundaries up to the largest
 * file, permissions, READDIR cookies,
 * NVLOG replay after a simulated crash (wafl_abandon: no final CP) with the
 * same inode numbers, generations and cookies, ENOSPC and recovery by
 * removal, and concurrent operations under the CP thread.  wafl_check runs
 * after the tests that changed the volume.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "raid/raid.h"
#include "tests/lib/tl_tmpdir.h"
#include "wafl/wafl.h"
#include "wafl/nvlog.h"
#include "wafl/wafl_impl.h"

struct fx {
	char *dir;
	char paths[5][512];
	const char *pp[5];
	raid_vol_t *raid;
	wafl_vol_t *v;
	char logpath[512];
	uint64_t disk_blocks;
	bool cp_thread;
	uint64_t cache_bytes;		/* 0: the default */
	struct wafl_obj root;
};

static const struct wafl_cred ROOT = { 0, 0, 0, { 0 } };
static const struct wafl_cred USER = { 1000, 100, 1, { 100 } };
static const struct wafl_cred OTHER = { 2000, 200, 0, { 0 } };

static void fx_open_raid(struct fx *f, bool create)
{
	struct raid_open_opts oo = { 0 };

	if (create) {
		struct raid_create_opts co = {
			.ngroups = 1, .ndata = 4, .nparity = 1,
			.disk_blocks = f->disk_blocks, .paths = f->pp,
		};
		assert_int_equal(raid_create(&co, &oo, &f->raid), 0);
	} else {
		assert_int_equal(raid_open(f->pp, 5, &oo, &f->raid), 0);
	}
}

static void fx_mount(struct fx *f)
{
	struct wafl_mount_opts mo = {
		.nvlog_path = f->logpath,
		.nvlog_half_bytes = 4 << 20,
		.no_cp_thread = !f->cp_thread,
		.cp_interval_ms = 1000,
		.cache_bytes = f->cache_bytes,
	};
	assert_int_equal(wafl_mount(f->raid, &mo, &f->v), 0);
	assert_int_equal(wafl_root(f->v, &f->root), 0);
}

static int setup_sized(void **state, uint64_t disk_blocks, bool cp_thread)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->disk_blocks = disk_blocks;
	f->cp_thread = cp_thread;
	f->dir = tl_tmpdir_make(NULL, "wafl-ops");
	for (int i = 0; i < 5; i++) {
		tl_path(f->paths[i], sizeof(f->paths[i]), f->dir, "d%d.img", i);
		f->pp[i] = f->paths[i];
	}
	tl_path(f->logpath, sizeof(f->logpath), f->dir, "nvlog");
	fx_open_raid(f, true);
	assert_int_equal(wafl_mkfs(f->raid, NULL), 0);
	fx_mount(f);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_sized(state, 16384, false);
}

static int setup_small(void **state)
{
	return setup_sized(state, 2048, false);
}

static int setup_thread(void **state)
{
	return setup_sized(state, 16384, true);
}

static void remount(struct fx *f);

/* A CP thread and a block cache of 64 blocks: every CP evicts. */
static int setup_tiny_cache(void **state)
{
	int rc = setup_sized(state, 16384, true);
	struct fx *f = *state;

	f->cache_bytes = 64 * 4096;
	remount(f);
	return rc;
}

static void check_clean(struct fx *f)
{
	struct wafl_check_result res;

	assert_int_equal(wafl_sync(f->v), 0);
	int rc = wafl_check(f->v, &res);
	if (rc != 0 || res.errors != 0)
		fail_msg("wafl_check: rc %d, %llu errors, first: %s", rc,
		    (unsigned long long)res.errors, res.first_error);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->v != NULL) {
		check_clean(f);
		assert_int_equal(wafl_unmount(f->v), 0);
	}
	if (f->raid != NULL)
		raid_close(f->raid);
	tl_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static void remount(struct fx *f)
{
	assert_int_equal(wafl_unmount(f->v), 0);
	raid_close(f->raid);
	fx_open_raid(f, false);
	fx_mount(f);
}

/* A crash: no final CP; the log keeps what was appended. */
static void crash_remount(struct fx *f)
{
	wafl_abandon(f->v);
	f->v = NULL;
	raid_close(f->raid);
	fx_open_raid(f, false);
	fx_mount(f);
}

static void pattern(uint8_t *buf, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)((i * 31 + seed * 7 + (i >> 12)) & 0xff);
}

/* ----------------------------------------------------------- helpers */

static struct wafl_obj mk_file(struct fx *f, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, uint32_t mode)
{
	struct wafl_sattr sa = { .set_mode = true, .mode = mode };
	struct wafl_obj o;
	struct wafl_attr a;

	assert_int_equal(wafl_create(f->v, c, dir, name, WAFL_GUARDED, &sa, 0,
	    &o, &a, NULL), 0);
	assert_int_equal(a.type, WAFL_REG);
	assert_int_equal(a.mode, mode);
	return o;
}

static struct wafl_obj mk_dir(struct fx *f, const struct wafl_cred *c,
    const struct wafl_obj *dir, const char *name, uint32_t mode)
{
	struct wafl_sattr sa = { .set_mode = true, .mode = mode };
	struct wafl_obj o;
	struct wafl_attr a;

	assert_int_equal(wafl_mkdir(f->v, c, dir, name, &sa, &o, &a, NULL), 0);
	assert_int_equal(a.type, WAFL_DIR);
	assert_int_equal(a.nlink, 2);
	return o;
}

static struct wafl_attr attr_of(struct fx *f, const struct wafl_obj *o)
{
	struct wafl_attr a;

	assert_int_equal(wafl_getattr(f->v, o, &a), 0);
	return a;
}

static struct wafl_obj look(struct fx *f, const struct wafl_obj *dir,
    const char *name)
{
	struct wafl_obj o;
	struct wafl_attr a, da;

	assert_int_equal(wafl_lookup(f->v, &ROOT, dir, name, &o, &a, &da), 0);
	assert_int_equal(a.fileid, o.ino);
	return o;
}

static struct wafl_obj look2(struct fx *f, const struct wafl_obj *dir,
    const char *n1, const char *n2)
{
	struct wafl_obj d = look(f, dir, n1);

	return look(f, &d, n2);
}

static int look_rc(struct fx *f, const struct wafl_obj *dir, const char *name)
{
	struct wafl_obj o;
	struct wafl_attr a, da;

	return wafl_lookup(f->v, &ROOT, dir, name, &o, &a, &da);
}

static void wr(struct fx *f, const struct wafl_obj *o, uint64_t off,
    const void *buf, uint32_t len, enum wafl_stable st)
{
	enum wafl_stable got;
	struct wafl_wcc pre;
	struct wafl_attr post;

	assert_int_equal(wafl_write(f->v, &ROOT, o, off, len, buf, st, &got,
	    &pre, &post), 0);
	assert_true(pre.valid);
	assert_true(post.size >= off + len);
	if (st != WAFL_UNSTABLE)
		assert_int_equal(got, WAFL_FILE_SYNC);
}

/* The pieces of rv, gathered (malloc'd). */
static uint8_t *rdvec_gather(const struct wafl_rdvec *rv)
{
	uint8_t *out = malloc(rv->len + 1), *p = out;

	for (uint32_t i = 0; i < rv->niov; i++) {
		memcpy(p, rv->iov[i].iov_base, rv->iov[i].iov_len);
		p += rv->iov[i].iov_len;
	}
	assert_int_equal(p - out, rv->len);
	return out;
}

/* wafl_read_vec gives what wafl_read gives, in at most one piece per
 * block touched. */
static void rdvec_check(struct fx *f, const struct wafl_obj *o, uint64_t off,
    const void *expect, uint32_t len)
{
	struct wafl_rdvec *rv;
	struct wafl_attr a;
	uint32_t got;
	bool eof;

	assert_int_equal(wafl_read_vec(f->v, &ROOT, o, off, len, &rv, &got,
	    &eof, &a), 0);
	assert_int_equal(got, len);
	assert_int_equal(rv->len, len);
	assert_true(rv->niov <= (off % 4096 + len + 4095) / 4096);
	uint8_t *g = rdvec_gather(rv);
	assert_memory_equal(g, expect, len);
	free(g);
	wafl_rdvec_free(rv);
}

static void rd_check(struct fx *f, const struct wafl_obj *o, uint64_t off,
    const void *expect, uint32_t len)
{
	uint8_t *buf = malloc(len + 1);
	uint32_t got;
	bool eof;
	struct wafl_attr a;

	assert_int_equal(wafl_read(f->v, &ROOT, o, off, len, buf, &got, &eof,
	    &a), 0);
	assert_int_equal(got, len);
	assert_memory_equal(buf, expect, len);
	free(buf);
	rdvec_check(f, o, off, expect, len);
}

/* ------------------------------------------------------------- tests */

static void test_root_and_getattr(void **state)
{
	struct fx *f = *state;
	struct wafl_attr a = attr_of(f, &f->root);
	struct wafl_obj o;

	assert_int_equal(f->root.ino, 2);
	assert_int_equal(a.type, WAFL_DIR);
	assert_int_equal(a.nlink, 2);
	assert_int_equal(a.fileid, 2);
	/* ".." of the root is the root; "." is itself. */
	o = look(f, &f->root, "..");
	assert_int_equal(o.ino, 2);
	o = look(f, &f->root, ".");
	assert_int_equal(o.ino, 2);
	/* Reserved and impossible inode numbers, wrong generations. */
	struct wafl_obj bad = { 1, 1, 0 };
	assert_int_equal(wafl_getattr(f->v, &bad, &a), -ESTALE);
	bad = (struct wafl_obj){ 12345, 1, 0 };
	assert_int_equal(wafl_getattr(f->v, &bad, &a), -ESTALE);
	bad = (struct wafl_obj){ 2, f->root.gen + 1, 0 };
	assert_int_equal(wafl_getattr(f->v, &bad, &a), -ESTALE);
	bad = (struct wafl_obj){ 1ull << 50, 1, 0 };
	assert_int_equal(wafl_getattr(f->v, &bad, &a), -ESTALE);
	assert_int_equal(look_rc(f, &f->root, "nothing"), -ENOENT);
}

static void test_write_read_back(void **state)
{
	struct fx *f = *state;
	const uint32_t len = 300 * 1000;
	uint8_t *a = malloc(len), *b = malloc(8192);
	struct wafl_dirwcc dw;
	struct wafl_obj o;
	struct wafl_attr at;

	pattern(a, len, 1);
	pattern(b, 8192, 2);
	struct wafl_attr r0 = attr_of(f, &f->root);
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "data",
	    WAFL_GUARDED, NULL, 0, &o, &at, &dw), 0);
	assert_true(dw.pre.valid && dw.post_valid);
	assert_int_equal(dw.pre.mtime_ns, r0.mtime_ns);
	assert_true(dw.post.mtime_ns >= r0.mtime_ns);
	assert_int_equal(at.size, 0);
	assert_int_equal(at.nlink, 1);
	assert_true(o.ino >= 16);
	wr(f, &o, 0, a, len, WAFL_FILE_SYNC);
	wr(f, &o, 10ull << 20, b, 8192, WAFL_DATA_SYNC);	/* sparse */
	rd_check(f, &o, 0, a, len);
	rd_check(f, &o, 10ull << 20, b, 8192);
	assert_int_equal(attr_of(f, &o).size, (10ull << 20) + 8192);
	assert_int_equal(wafl_sync(f->v), 0);
	rd_check(f, &o, 0, a, len);
	remount(f);
	rd_check(f, &o, 0, a, len);
	rd_check(f, &o, 10ull << 20, b, 8192);
	uint8_t z[4096] = { 0 };
	rd_check(f, &o, 5ull << 20, z, sizeof(z));

	/* Reading at and past EOF; eof right at the end. */
	uint32_t got;
	bool eof;
	uint8_t buf[100];
	uint64_t size = (10ull << 20) + 8192;
	assert_int_equal(wafl_read(f->v, &ROOT, &o, size - 50, 100, buf, &got,
	    &eof, &at), 0);
	assert_int_equal(got, 50);
	assert_true(eof);
	assert_int_equal(wafl_read(f->v, &ROOT, &o, size + 10, 100, buf, &got,
	    &eof, &at), 0);
	assert_int_equal(got, 0);
	assert_true(eof);
	assert_int_equal(wafl_read(f->v, &ROOT, &o, 0, 100, buf, &got, &eof,
	    &at), 0);
	assert_false(eof);
	/* Directory: EISDIR for read and write. */
	enum wafl_stable st;
	assert_int_equal(wafl_read(f->v, &ROOT, &f->root, 0, 100, buf, &got,
	    &eof, &at), -EISDIR);
	assert_int_equal(wafl_write(f->v, &ROOT, &f->root, 0, 10, buf,
	    WAFL_FILE_SYNC, &st, NULL, NULL), -EISDIR);
	/* Beyond the largest file. */
	assert_int_equal(wafl_write(f->v, &ROOT, &o, WAFL_MAX_FILE_SIZE - 5,
	    10, buf, WAFL_FILE_SYNC, &st, NULL, NULL), -EFBIG);
	/* A zero-byte write is legal and changes nothing. */
	struct wafl_attr before = attr_of(f, &o);
	assert_int_equal(wafl_write(f->v, &ROOT, &o, 0, 0, buf,
	    WAFL_FILE_SYNC, &st, NULL, &at), 0);
	assert_int_equal(at.mtime_ns, before.mtime_ns);
	/* mtime and ctime move on a write. */
	wr(f, &o, 0, b, 10, WAFL_UNSTABLE);
	at = attr_of(f, &o);
	assert_true(at.mtime_ns >= before.mtime_ns);
	assert_true(at.ctime_ns >= before.ctime_ns);
	struct wafl_attr pc;
	assert_int_equal(wafl_commit(f->v, &o, &pc), 0);
	free(a);
	free(b);
}

/* Bytes that name their own file offset (and seed): a block read from
 * the wrong place never matches. */
static void fill_at(uint8_t *buf, uint64_t off, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t x = off + i;
		buf[i] = (uint8_t)(((uint32_t)(x >> 2) * 0x9e3779b1u + seed +
		    (uint32_t)(x & 3) * 0x85ebca6bu) >> 24);
	}
}

static uint64_t xs(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Reads of every shape against what was written: a file of two levels
 * of indirect blocks (height 2), with a hole of whole level-1 parents,
 * clean, then with dirty data blocks and dirty parents beside clean ones
 * (partial and whole-block overwrites, a write into the hole), then after
 * the CP and after a remount; then cut short and extended again, before
 * and after its CP.  wn_read reads a run of whole blocks under
 * one parent with one read of the parent; every mix of dirty and clean
 * must read the same as block by block. */
static void test_read_runs(void **state)
{
	struct fx *f = *state;
	const uint64_t size = 24ull << 20, hole = 12ull << 20;
	const uint32_t maxio = 1u << 20;
	uint8_t *ref = calloc(1, size);
	struct wafl_dirwcc dw;
	struct wafl_attr at;
	struct wafl_obj o;
	uint64_t x = 0x2545f4914f6cdd1dull;

	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "runs",
	    WAFL_GUARDED, NULL, 0, &o, &at, &dw), 0);
	/* 0 .. 12 MiB written, 12 .. 23 MiB a hole, the last MiB written. */
	for (uint64_t off = 0; off < size; off += maxio) {
		if (off >= hole && off < size - maxio)
			continue;
		fill_at(ref + off, off, maxio, 1);
		wr(f, &o, off, ref + off, maxio, WAFL_UNSTABLE);
	}
	assert_int_equal(wafl_sync(f->v), 0);
	for (int phase = 0; phase < 6; phase++) {
		if (phase == 1) {
			/* Dirty a mix: single whole blocks, partial blocks,
			 * runs across a parent's boundary, the hole. */
			for (int i = 0; i < 40; i++) {
				uint64_t off = xs(&x) % (size - 70000);
				uint32_t len = i % 3 == 0 ? 4096 :
				    (uint32_t)(xs(&x) % 70000) + 1;
				if (i % 3 == 0)
					off &= ~4095ull;
				fill_at(ref + off, off, len, 100 + i);
				wr(f, &o, off, ref + off, len, WAFL_UNSTABLE);
			}
			uint64_t edge = 128 * 4096 * 5 - 3 * 4096;
			fill_at(ref + edge, edge, 6 * 4096, 7);
			wr(f, &o, edge, ref + edge, 6 * 4096, WAFL_UNSTABLE);
			fill_at(ref + hole + 777, hole + 777, 9000, 8);
			wr(f, &o, hole + 777, ref + hole + 777, 9000,
			    WAFL_UNSTABLE);
		} else if (phase == 2) {
			assert_int_equal(wafl_sync(f->v), 0);
		} else if (phase == 3) {
			remount(f);
		} else if (phase == 4) {
			/* Cut to 5 MiB and a bit, then back to the full
			 * size: the parents dirtied by the cut, above clean
			 * ones the disk's tree still points at, say hole. */
			struct wafl_sattr sa = { .set_size = true };
			struct wafl_wcc pre;
			uint64_t cut = (5ull << 20) + 1000;
			sa.size = cut;
			assert_int_equal(wafl_setattr(f->v, &ROOT, &o, &sa,
			    NULL, &pre, &at), 0);
			sa.size = size;
			assert_int_equal(wafl_setattr(f->v, &ROOT, &o, &sa,
			    NULL, &pre, &at), 0);
			memset(ref + cut, 0, size - cut);
		} else if (phase == 5) {
			assert_int_equal(wafl_sync(f->v), 0);
		}
		/* Aligned megabytes, then random shapes. */
		for (uint64_t off = 0; off < size; off += maxio)
			rd_check(f, &o, off, ref + off, maxio);
		for (int i = 0; i < 200; i++) {
			uint32_t len = (uint32_t)(xs(&x) % maxio) + 1;
			uint64_t off = xs(&x) % (size - len + 1);
			if (i % 2 == 0)
				off &= ~4095ull;
			rd_check(f, &o, off, ref + off, len);
		}
	}
	check_clean(f);
	free(ref);
}

/* A lent block keeps its bytes while the cache replaces, evicts and
 * finally destroys its entry: the file is rewritten until the lent VBNs
 * are reused, then the volume is unmounted, and only then are the loans
 * read and given back. */
static void test_read_vec_loans(void **state)
{
	struct fx *f = *state;
	const uint32_t len = 1u << 20;
	uint8_t *a = malloc(len), *b = malloc(len);
	struct wafl_rdvec *rv, *hole;
	struct wafl_dirwcc dw;
	struct wafl_attr at;
	struct wafl_obj o;
	uint32_t got;
	bool eof;

	fill_at(a, 0, len, 1);
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "lent",
	    WAFL_GUARDED, NULL, 0, &o, &at, &dw), 0);
	wr(f, &o, 0, a, len, WAFL_UNSTABLE);
	wr(f, &o, 3ull * len, a, 4096, WAFL_UNSTABLE);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(wafl_read_vec(f->v, &ROOT, &o, 0, len, &rv, &got,
	    &eof, &at), 0);
	assert_int_equal(got, len);
	assert_int_equal(rv->nloan, len / 4096);	/* all from the cache */
	assert_int_equal(rv->nblk, 0);
	assert_int_equal(wafl_read_vec(f->v, &ROOT, &o, len, len, &hole, &got,
	    &eof, &at), 0);
	assert_int_equal(hole->nloan + hole->nblk, 0);	/* the zero block */
	for (int round = 0; round < 6; round++) {
		fill_at(b, 0, len, 10 + round);
		wr(f, &o, 0, b, len, WAFL_UNSTABLE);
		assert_int_equal(wafl_sync(f->v), 0);
		rd_check(f, &o, 0, b, len);
	}
	remount(f);
	uint8_t *g = rdvec_gather(rv);
	assert_memory_equal(g, a, len);
	free(g);
	wafl_rdvec_free(rv);
	g = rdvec_gather(hole);
	memset(b, 0, len);
	assert_memory_equal(g, b, len);
	free(g);
	wafl_rdvec_free(hole);
	check_clean(f);
	free(a);
	free(b);
}

/* A block read from the disk counts one cache miss, whether it is read
 * into a buffer (wafl_read) or into pieces (wafl_read_vec, whose lookup
 * for a loan is the same lookup as the read's). */
static void test_read_vec_misses(void **state)
{
	struct fx *f = *state;
	const uint32_t len = 64 * 4096;
	uint8_t *a = malloc(len), *b = malloc(len);
	struct wafl_stats st0, st1;
	struct wafl_rdvec *rv;
	struct wafl_dirwcc dw;
	struct wafl_attr at;
	struct wafl_obj o;
	uint64_t by_buf, by_vec, hits_buf, hits_vec;
	uint32_t got;
	bool eof;

	fill_at(a, 0, len, 7);
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "cold",
	    WAFL_GUARDED, NULL, 0, &o, &at, &dw), 0);
	wr(f, &o, 0, a, len, WAFL_UNSTABLE);
	remount(f);
	attr_of(f, &o);		/* the inode, cached for both */
	wafl_get_stats(f->v, &st0);
	assert_int_equal(wafl_read(f->v, &ROOT, &o, 0, len, b, &got, &eof,
	    &at), 0);
	wafl_get_stats(f->v, &st1);
	assert_memory_equal(a, b, len);
	by_buf = st1.cache_misses - st0.cache_misses;
	hits_buf = st1.cache_hits - st0.cache_hits;
	remount(f);
	attr_of(f, &o);
	wafl_get_stats(f->v, &st0);
	assert_int_equal(wafl_read_vec(f->v, &ROOT, &o, 0, len, &rv, &got,
	    &eof, &at), 0);
	wafl_get_stats(f->v, &st1);
	assert_int_equal(got, len);
	wafl_rdvec_free(rv);
	by_vec = st1.cache_misses - st0.cache_misses;
	hits_vec = st1.cache_hits - st0.cache_hits;
	assert_true(by_buf >= len / 4096);
	assert_int_equal(by_vec, by_buf);
	assert_int_equal(hits_vec, hits_buf);
	free(a);
	free(b);
}

static void test_create_modes(void **state)
{
	struct fx *f = *state;
	struct wafl_obj o, o2;
	struct wafl_attr a;
	struct wafl_sattr sz = { .set_size = true, .size = 5 };
	char longname[300];

	o = mk_file(f, &ROOT, &f->root, "f", 0640);
	uint8_t data[100];
	pattern(data, sizeof(data), 3);
	wr(f, &o, 0, data, sizeof(data), WAFL_FILE_SYNC);
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "f", WAFL_GUARDED,
	    NULL, 0, &o2, &a, NULL), -EEXIST);
	/* UNCHECKED without size: the existing file, untouched. */
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "f",
	    WAFL_UNCHECKED, NULL, 0, &o2, &a, NULL), 0);
	assert_int_equal(o2.ino, o.ino);
	assert_int_equal(a.size, 100);
	/* UNCHECKED with a size truncates. */
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "f",
	    WAFL_UNCHECKED, &sz, 0, &o2, &a, NULL), 0);
	assert_int_equal(o2.ino, o.ino);
	assert_int_equal(a.size, 5);
	rd_check(f, &o, 0, data, 5);
	/* UNCHECKED over a directory: EEXIST. */
	mk_dir(f, &ROOT, &f->root, "d", 0755);
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "d",
	    WAFL_UNCHECKED, NULL, 0, &o2, &a, NULL), -EEXIST);
	/* EXCLUSIVE: the same verifier gets the same file back. */
	struct wafl_obj x1, x2;
	assert_int_equal(wafl_create(f->v, &USER, &f->root, "x",
	    WAFL_EXCLUSIVE, NULL, 0x1122334455667788ull, &x1, &a, NULL),
	    -EACCES);	/* root dir is 0755 root */
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "x",
	    WAFL_EXCLUSIVE, NULL, 0x1122334455667788ull, &x1, &a, NULL), 0);
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "x",
	    WAFL_EXCLUSIVE, NULL, 0x1122334455667788ull, &x2, &a, NULL), 0);
	assert_int_equal(x1.ino, x2.ino);
	assert_int_equal(x1.gen, x2.gen);
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "x",
	    WAFL_EXCLUSIVE, NULL, 0x99, &x2, &a, NULL), -EEXIST);
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "f",
	    WAFL_EXCLUSIVE, NULL, 0x99, &x2, &a, NULL), -EEXIST);
	/* The verifier survives a remount. */
	remount(f);
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "x",
	    WAFL_EXCLUSIVE, NULL, 0x1122334455667788ull, &x2, &a, NULL), 0);
	assert_int_equal(x1.ino, x2.ino);
	/* Names. */
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "", WAFL_GUARDED,
	    NULL, 0, &o2, &a, NULL), -EINVAL);
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "a/b",
	    WAFL_GUARDED, NULL, 0, &o2, &a, NULL), -EINVAL);
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, ".",
	    WAFL_GUARDED, NULL, 0, &o2, &a, NULL), -EEXIST);
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "..",
	    WAFL_GUARDED, NULL, 0, &o2, &a, NULL), -EEXIST);
	memset(longname, 'n', 256);
	longname[256] = '\0';
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, longname,
	    WAFL_GUARDED, NULL, 0, &o2, &a, NULL), -ENAMETOOLONG);
	longname[255] = '\0';
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, longname,
	    WAFL_GUARDED, NULL, 0, &o2, &a, NULL), 0);
	assert_int_equal(look(f, &f->root, longname).ino, o2.ino);
	/* Creating in a file: ENOTDIR; in a stale directory: ESTALE. */
	assert_int_equal(wafl_create(f->v, &ROOT, &o, "y", WAFL_GUARDED,
	    NULL, 0, &o2, &a, NULL), -ENOTDIR);
	struct wafl_obj stale = { o.ino, o.gen + 7, 0 };
	assert_int_equal(wafl_create(f->v, &ROOT, &stale, "y", WAFL_GUARDED,
	    NULL, 0, &o2, &a, NULL), -ESTALE);
	/* Snapshot objects are read-only. */
	struct wafl_obj snapdir = { 2, f->root.gen, 5 };
	assert_int_equal(wafl_create(f->v, &ROOT, &snapdir, "y",
	    WAFL_GUARDED, NULL, 0, &o2, &a, NULL), -EROFS);
}

static void test_mkdir_rmdir(void **state)
{
	struct fx *f = *state;
	struct wafl_obj d = mk_dir(f, &ROOT, &f->root, "d", 0755);
	struct wafl_obj e = mk_dir(f, &ROOT, &d, "e", 0700);
	struct wafl_obj o;
	struct wafl_attr a;

	assert_int_equal(attr_of(f, &f->root).nlink, 3);
	assert_int_equal(attr_of(f, &d).nlink, 3);
	assert_int_equal(look(f, &e, "..").ino, d.ino);
	assert_int_equal(look(f, &d, "..").ino, 2);
	assert_int_equal(wafl_mkdir(f->v, &ROOT, &d, "e", NULL, &o, &a, NULL),
	    -EEXIST);
	mk_file(f, &ROOT, &e, "file", 0644);
	assert_int_equal(wafl_rmdir(f->v, &ROOT, &d, "e", NULL), -ENOTEMPTY);
	assert_int_equal(wafl_rmdir(f->v, &ROOT, &e, "file", NULL), -ENOTDIR);
	assert_int_equal(wafl_remove(f->v, &ROOT, &d, "e", NULL), -EISDIR);
	assert_int_equal(wafl_rmdir(f->v, &ROOT, &d, ".", NULL), -EINVAL);
	assert_int_equal(wafl_rmdir(f->v, &ROOT, &d, "..", NULL), -EEXIST);
	assert_int_equal(wafl_rmdir(f->v, &ROOT, &d, "zz", NULL), -ENOENT);
	struct wafl_dirwcc dw;
	assert_int_equal(wafl_remove(f->v, &ROOT, &e, "file", &dw), 0);
	assert_true(dw.pre.valid && dw.post_valid);
	assert_int_equal(wafl_rmdir(f->v, &ROOT, &d, "e", &dw), 0);
	assert_int_equal(dw.post.nlink, 2);
	assert_int_equal(wafl_getattr(f->v, &e, &a), -ESTALE);
	assert_int_equal(look_rc(f, &d, "e"), -ENOENT);
	remount(f);
	assert_int_equal(attr_of(f, &d).nlink, 2);
	assert_int_equal(attr_of(f, &f->root).nlink, 3);
	assert_int_equal(wafl_getattr(f->v, &e, &a), -ESTALE);
}

static void test_symlink_mknod(void **state)
{
	struct fx *f = *state;
	struct wafl_obj s1, s2, n;
	struct wafl_attr a;
	char longt[1001], buf[1100];
	size_t len;

	assert_int_equal(wafl_symlink(f->v, &ROOT, &f->root, "s1",
	    "target/of/link", NULL, &s1, &a, NULL), 0);
	assert_int_equal(a.type, WAFL_LNK);
	assert_int_equal(a.size, 14);
	memset(longt, 'q', 1000);
	longt[1000] = '\0';
	assert_int_equal(wafl_symlink(f->v, &ROOT, &f->root, "s2", longt,
	    NULL, &s2, &a, NULL), 0);
	assert_int_equal(a.size, 1000);
	assert_int_equal(wafl_symlink(f->v, &ROOT, &f->root, "s3", "", NULL,
	    &s2, &a, NULL), -EINVAL);
	assert_int_equal(wafl_readlink(f->v, &ROOT, &s1, buf, sizeof(buf),
	    &len, &a), 0);
	assert_int_equal(len, 14);
	assert_string_equal(buf, "target/of/link");
	assert_int_equal(wafl_readlink(f->v, &ROOT, &s1, buf, 5, &len, &a),
	    -ENAMETOOLONG);
	assert_int_equal(wafl_readlink(f->v, &ROOT, &f->root, buf,
	    sizeof(buf), &len, &a), -EINVAL);
	uint32_t got;
	bool eof;
	assert_int_equal(wafl_read(f->v, &ROOT, &s1, 0, 10, buf, &got, &eof,
	    &a), -EINVAL);
	assert_int_equal(wafl_mknod(f->v, &ROOT, &f->root, "tty", WAFL_CHR, 4,
	    64, NULL, &n, &a, NULL), 0);
	assert_int_equal(a.type, WAFL_CHR);
	assert_int_equal(a.rdev_major, 4);
	assert_int_equal(a.rdev_minor, 64);
	assert_int_equal(wafl_mknod(f->v, &ROOT, &f->root, "fifo", WAFL_FIFO,
	    0, 0, NULL, &n, &a, NULL), 0);
	assert_int_equal(a.type, WAFL_FIFO);
	assert_int_equal(wafl_mknod(f->v, &ROOT, &f->root, "reg", WAFL_REG,
	    0, 0, NULL, &n, &a, NULL), -EINVAL);
	assert_int_equal(wafl_mknod(f->v, &ROOT, &f->root, "dir", WAFL_DIR,
	    0, 0, NULL, &n, &a, NULL), -EINVAL);
	remount(f);
	assert_int_equal(wafl_readlink(f->v, &ROOT, &s2, buf, sizeof(buf),
	    &len, &a), 0);
	assert_int_equal(len, 1000);
	assert_memory_equal(buf, longt, 1000);
	assert_int_equal(wafl_readlink(f->v, &ROOT, &s1, buf, sizeof(buf),
	    &len, &a), 0);
	assert_string_equal(buf, "target/of/link");
	assert_int_equal(attr_of(f, (struct wafl_obj[]){ look(f, &f->root, "tty") }).rdev_minor,
	    64);
	assert_int_equal(wafl_remove(f->v, &ROOT, &f->root, "s2", NULL), 0);
	assert_int_equal(wafl_remove(f->v, &ROOT, &f->root, "s1", NULL), 0);
}

static void test_link_remove(void **state)
{
	struct fx *f = *state;
	struct wafl_obj d = mk_dir(f, &ROOT, &f->root, "d", 0777);
	struct wafl_obj o = mk_file(f, &ROOT, &f->root, "f", 0644);
	struct wafl_attr a;
	uint8_t data[5000];

	pattern(data, sizeof(data), 4);
	wr(f, &o, 0, data, sizeof(data), WAFL_FILE_SYNC);
	assert_int_equal(wafl_link(f->v, &ROOT, &o, &d, "g", &a, NULL), 0);
	assert_int_equal(a.nlink, 2);
	assert_int_equal(wafl_link(f->v, &ROOT, &o, &d, "g", &a, NULL),
	    -EEXIST);
	assert_int_equal(wafl_link(f->v, &ROOT, &d, &f->root, "dl", &a,
	    NULL), -EISDIR);
	assert_int_equal(wafl_link(f->v, &ROOT, &o, &o, "x", &a, NULL),
	    -ENOTDIR);
	assert_int_equal(look(f, &d, "g").ino, o.ino);
	assert_int_equal(wafl_remove(f->v, &ROOT, &f->root, "f", NULL), 0);
	assert_int_equal(attr_of(f, &o).nlink, 1);
	rd_check(f, &o, 0, data, sizeof(data));
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(wafl_remove(f->v, &ROOT, &d, "g", NULL), 0);
	assert_int_equal(wafl_getattr(f->v, &o, &a), -ESTALE);
	assert_int_equal(wafl_remove(f->v, &ROOT, &d, "g", NULL), -ENOENT);
	/* The number comes back with a new generation. */
	struct wafl_obj n = mk_file(f, &ROOT, &f->root, "new", 0644);
	if (n.ino == o.ino)
		assert_true(n.gen != o.gen);
	assert_int_equal(wafl_getattr(f->v, &o, &a), n.ino == o.ino &&
	    n.gen == o.gen ? 0 : -ESTALE);
}

static void test_rename(void **state)
{
	struct fx *f = *state;
	struct wafl_obj a = mk_dir(f, &ROOT, &f->root, "a", 0755);
	struct wafl_obj b = mk_dir(f, &ROOT, &f->root, "b", 0755);
	struct wafl_obj ab = mk_dir(f, &ROOT, &a, "ab", 0755);
	struct wafl_obj abc = mk_dir(f, &ROOT, &ab, "abc", 0755);
	struct wafl_obj f1 = mk_file(f, &ROOT, &a, "f1", 0644);
	struct wafl_obj f2 = mk_file(f, &ROOT, &b, "f2", 0644);
	struct wafl_attr at;
	struct wafl_dirwcc fw, tw;

	/* The same file (two names of one inode): nothing happens. */
	assert_int_equal(wafl_link(f->v, &ROOT, &f1, &b, "f1link", &at, NULL),
	    0);
	assert_int_equal(wafl_rename(f->v, &ROOT, &a, "f1", &b, "f1link",
	    NULL, NULL), 0);
	assert_int_equal(look(f, &a, "f1").ino, f1.ino);
	assert_int_equal(look(f, &b, "f1link").ino, f1.ino);
	assert_int_equal(wafl_rename(f->v, &ROOT, &a, "f1", &a, "f1",
	    NULL, NULL), 0);
	/* File over file across directories: the target is replaced. */
	assert_int_equal(wafl_rename(f->v, &ROOT, &a, "f1", &b, "f2", &fw,
	    &tw), 0);
	assert_true(fw.pre.valid && tw.pre.valid && fw.post_valid &&
	    tw.post_valid);
	assert_int_equal(look(f, &b, "f2").ino, f1.ino);
	assert_int_equal(look_rc(f, &a, "f1"), -ENOENT);
	assert_int_equal(wafl_getattr(f->v, &f2, &at), -ESTALE);
	assert_int_equal(attr_of(f, &f1).nlink, 2);
	assert_int_equal(wafl_rename(f->v, &ROOT, &a, "f1", &b, "x", NULL,
	    NULL), -ENOENT);
	/* Errors. */
	assert_int_equal(wafl_rename(f->v, &ROOT, &b, "f2", &a, "ab", NULL,
	    NULL), -EISDIR);
	assert_int_equal(wafl_rename(f->v, &ROOT, &a, "ab", &b, "f2", NULL,
	    NULL), -ENOTDIR);
	assert_int_equal(wafl_rename(f->v, &ROOT, &f->root, "a", &abc, "a2",
	    NULL, NULL), -EINVAL);
	assert_int_equal(wafl_rename(f->v, &ROOT, &f->root, "a", &a, "a2",
	    NULL, NULL), -EINVAL);
	assert_int_equal(wafl_rename(f->v, &ROOT, &ab, "abc", &f->root, "a",
	    NULL, NULL), -ENOTEMPTY);
	assert_int_equal(wafl_rename(f->v, &ROOT, &a, ".", &b, "z", NULL,
	    NULL), -EINVAL);
	assert_int_equal(wafl_rename(f->v, &ROOT, &a, "ab", &b, "..", NULL,
	    NULL), -EINVAL);
	struct wafl_obj snapdir = { 2, f->root.gen, 3 };
	assert_int_equal(wafl_rename(f->v, &ROOT, &a, "ab", &snapdir, "z",
	    NULL, NULL), -EXDEV);
	/* A directory moves: "..", parent field and link counts follow. */
	assert_int_equal(wafl_rename(f->v, &ROOT, &a, "ab", &b, "moved", NULL,
	    NULL), 0);
	assert_int_equal(look2(f, &b, "moved", "..").ino, b.ino);
	assert_int_equal(attr_of(f, &a).nlink, 2);
	assert_int_equal(attr_of(f, &b).nlink, 3);
	/* Directory over an empty directory; over a non-empty one. */
	struct wafl_obj e = mk_dir(f, &ROOT, &a, "empty", 0755);
	assert_int_equal(wafl_rename(f->v, &ROOT, &b, "moved", &a, "empty",
	    NULL, NULL), 0);
	assert_int_equal(wafl_getattr(f->v, &e, &at), -ESTALE);
	assert_int_equal(look(f, &a, "empty").ino, ab.ino);
	assert_int_equal(attr_of(f, &a).nlink, 3);
	assert_int_equal(attr_of(f, &b).nlink, 2);
	struct wafl_obj full = mk_dir(f, &ROOT, &b, "full", 0755);
	mk_file(f, &ROOT, &full, "inside", 0644);
	assert_int_equal(wafl_rename(f->v, &ROOT, &a, "empty", &b, "full",
	    NULL, NULL), -ENOTEMPTY);
	/* Within one directory. */
	assert_int_equal(wafl_rename(f->v, &ROOT, &b, "full", &b, "full2",
	    NULL, NULL), 0);
	assert_int_equal(look(f, &b, "full2").ino, full.ino);
	assert_int_equal(attr_of(f, &b).nlink, 3);
	remount(f);
	assert_int_equal(look(f, &a, "empty").ino, ab.ino);
	assert_int_equal(look2(f, &a, "empty", "..").ino, a.ino);
	assert_int_equal(look(f, &abc, "..").ino, ab.ino);
	assert_int_equal(attr_of(f, &a).nlink, 3);
}

static void test_setattr(void **state)
{
	struct fx *f = *state;
	struct wafl_obj d = mk_dir(f, &ROOT, &f->root, "pub", 0777);
	struct wafl_obj o = mk_file(f, &USER, &d, "mine", 0644);
	struct wafl_attr a = attr_of(f, &o), post;
	struct wafl_wcc pre;
	struct wafl_sattr sa;
	uint8_t data[10000];

	assert_int_equal(a.uid, USER.uid);
	assert_int_equal(a.gid, USER.gid);
	pattern(data, sizeof(data), 5);
	wr(f, &o, 0, data, sizeof(data), WAFL_FILE_SYNC);
	/* Guard. */
	uint64_t bad = a.ctime_ns - 1;
	sa = (struct wafl_sattr){ .set_mode = true, .mode = 0600 };
	assert_int_equal(wafl_setattr(f->v, &USER, &o, &sa, &bad, &pre,
	    &post), -FL_ENOTSYNC);
	a = attr_of(f, &o);
	assert_int_equal(wafl_setattr(f->v, &USER, &o, &sa, &a.ctime_ns, &pre,
	    &post), 0);
	assert_true(pre.valid);
	assert_int_equal(pre.ctime_ns, a.ctime_ns);
	assert_int_equal(post.mode, 0600);
	/* Non-owner chmod, chown by non-root. */
	assert_int_equal(wafl_setattr(f->v, &OTHER, &o, &sa, NULL, &pre,
	    &post), -EPERM);
	sa = (struct wafl_sattr){ .set_uid = true, .uid = 2000 };
	assert_int_equal(wafl_setattr(f->v, &USER, &o, &sa, NULL, &pre,
	    &post), -EPERM);
	assert_int_equal(wafl_setattr(f->v, &ROOT, &o, &sa, NULL, &pre,
	    &post), 0);
	assert_int_equal(post.uid, 2000);
	sa = (struct wafl_sattr){ .set_uid = true, .uid = 1000,
	    .set_gid = true, .gid = 100 };
	assert_int_equal(wafl_setattr(f->v, &ROOT, &o, &sa, NULL, &pre,
	    &post), 0);
	/* Owner may change group to one of its groups only. */
	sa = (struct wafl_sattr){ .set_gid = true, .gid = 200 };
	assert_int_equal(wafl_setattr(f->v, &USER, &o, &sa, NULL, &pre,
	    &post), -EPERM);
	/* Truncate and extend. */
	sa = (struct wafl_sattr){ .set_size = true, .size = 3000 };
	assert_int_equal(wafl_setattr(f->v, &OTHER, &o, &sa, NULL, &pre,
	    &post), -EACCES);
	assert_int_equal(wafl_setattr(f->v, &USER, &o, &sa, NULL, &pre,
	    &post), 0);
	assert_int_equal(pre.size, 10000);
	assert_int_equal(post.size, 3000);
	sa.size = 9000;
	assert_int_equal(wafl_setattr(f->v, &USER, &o, &sa, NULL, &pre,
	    &post), 0);
	rd_check(f, &o, 0, data, 3000);
	uint8_t z[6000] = { 0 };
	rd_check(f, &o, 3000, z, 6000);
	assert_int_equal(wafl_setattr(f->v, &ROOT, &d, &sa, NULL, &pre,
	    &post), -EISDIR);
	/* Times: client and server. */
	sa = (struct wafl_sattr){ .atime_how = WAFL_TIME_CLIENT,
	    .atime_ns = 111, .mtime_how = WAFL_TIME_CLIENT,
	    .mtime_ns = 222 };
	assert_int_equal(wafl_setattr(f->v, &OTHER, &o, &sa, NULL, &pre,
	    &post), -EPERM);
	assert_int_equal(wafl_setattr(f->v, &USER, &o, &sa, NULL, &pre,
	    &post), 0);
	assert_int_equal(post.atime_ns, 111);
	assert_int_equal(post.mtime_ns, 222);
	assert_true(post.ctime_ns > 222);
	sa = (struct wafl_sattr){ .mtime_how = WAFL_TIME_SERVER };
	assert_int_equal(wafl_setattr(f->v, &USER, &o, &sa, NULL, &pre,
	    &post), 0);
	assert_true(post.mtime_ns > 222);
	assert_int_equal(post.atime_ns, 111);
	remount(f);
	a = attr_of(f, &o);
	assert_int_equal(a.atime_ns, 111);
	assert_int_equal(a.size, 9000);
	assert_int_equal(a.mode, 0600);
	assert_int_equal(a.uid, 1000);
}

static void test_permissions_access(void **state)
{
	struct fx *f = *state;
	struct wafl_obj d = mk_dir(f, &ROOT, &f->root, "priv", 0700);
	struct wafl_obj o = mk_file(f, &ROOT, &d, "secret", 0600);
	struct wafl_obj x;
	struct wafl_attr a, da;
	uint32_t g;
	uint8_t buf[10];
	uint32_t got;
	bool eof;

	assert_int_equal(wafl_lookup(f->v, &USER, &d, "secret", &x, &a, &da),
	    -EACCES);
	assert_int_equal(wafl_create(f->v, &USER, &d, "n", WAFL_GUARDED,
	    NULL, 0, &x, &a, NULL), -EACCES);
	assert_int_equal(wafl_remove(f->v, &USER, &d, "secret", NULL),
	    -EACCES);
	assert_int_equal(wafl_read(f->v, &USER, &o, 0, 10, buf, &got, &eof,
	    &a), -EACCES);
	enum wafl_stable st;
	assert_int_equal(wafl_write(f->v, &USER, &o, 0, 10, buf,
	    WAFL_FILE_SYNC, &st, NULL, NULL), -EACCES);
	const uint32_t all = 0x3f;
	assert_int_equal(wafl_access(f->v, &USER, &o, all, &g, &a), 0);
	assert_int_equal(g, 0);
	assert_int_equal(wafl_access(f->v, &ROOT, &o, all, &g, &a), 0);
	assert_int_equal(g, WAFL_ACCESS_READ | WAFL_ACCESS_MODIFY |
	    WAFL_ACCESS_EXTEND);	/* no x bit: no EXECUTE, even root */
	assert_int_equal(wafl_access(f->v, &ROOT, &d, all, &g, &a), 0);
	assert_int_equal(g, WAFL_ACCESS_READ | WAFL_ACCESS_LOOKUP |
	    WAFL_ACCESS_MODIFY | WAFL_ACCESS_EXTEND | WAFL_ACCESS_DELETE);
	assert_int_equal(wafl_access(f->v, &ROOT, &d, WAFL_ACCESS_LOOKUP, &g,
	    &a), 0);
	assert_int_equal(g, WAFL_ACCESS_LOOKUP);
	/* Group access through a supplementary group. */
	struct wafl_sattr sa = { .set_mode = true, .mode = 0750,
	    .set_gid = true, .gid = 100 };
	assert_int_equal(wafl_setattr(f->v, &ROOT, &d, &sa, NULL, NULL, &a),
	    0);
	sa = (struct wafl_sattr){ .set_mode = true, .mode = 0755,
	    .set_gid = true, .gid = 100 };
	assert_int_equal(wafl_setattr(f->v, &ROOT, &o, &sa, NULL, NULL, &a),
	    0);
	assert_int_equal(wafl_access(f->v, &USER, &o, all, &g, &a), 0);
	assert_int_equal(g, WAFL_ACCESS_READ | WAFL_ACCESS_EXECUTE);
	assert_int_equal(wafl_lookup(f->v, &USER, &d, "secret", &x, &a, &da),
	    0);
	assert_int_equal(wafl_lookup(f->v, &OTHER, &d, "secret", &x, &a,
	    &da), -EACCES);
	assert_int_equal(wafl_create(f->v, &USER, &d, "n", WAFL_GUARDED,
	    NULL, 0, &x, &a, NULL), -EACCES);
}

struct rd_col {
	uint64_t cookies[1100];
	char names[1100][32];
	uint64_t fileids[1100];
	bool plus_ok[1100];
	size_t n, limit;
	uint64_t last_cookie;
};

static int rd_cb(void *arg, const struct wafl_dirent *de)
{
	struct rd_col *c = arg;

	if (c->limit != 0 && c->n >= c->limit)
		return 1;
	assert_true(c->n < 1100);
	c->cookies[c->n] = de->cookie;
	snprintf(c->names[c->n], sizeof(c->names[0]), "%s", de->name);
	c->fileids[c->n] = de->fileid;
	c->plus_ok[c->n] = de->attr != NULL && de->obj != NULL &&
	    de->attr->fileid == de->fileid && de->obj->ino == de->fileid;
	c->n++;
	c->last_cookie = de->cookie;
	return 0;
}

static void test_readdir(void **state)
{
	struct fx *f = *state;
	struct wafl_obj d = mk_dir(f, &ROOT, &f->root, "big", 0755);
	struct rd_col *all = calloc(1, sizeof(*all));
	struct rd_col *part = calloc(1, sizeof(*part));
	struct wafl_attr da;
	bool eof;
	const int N = 600;
	char name[32];

	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "entry-%04d", i);
		mk_file(f, &ROOT, &d, name, 0644);
	}
	assert_int_equal(wafl_readdir(f->v, &ROOT, &d, 0, true, rd_cb, all,
	    &eof, &da), 0);
	assert_true(eof);
	assert_int_equal(all->n, (size_t)N + 2);
	assert_string_equal(all->names[0], ".");
	assert_int_equal(all->cookies[0], 1);
	assert_int_equal(all->fileids[0], d.ino);
	assert_string_equal(all->names[1], "..");
	assert_int_equal(all->cookies[1], 2);
	assert_int_equal(all->fileids[1], 2);
	for (size_t i = 0; i < all->n; i++) {
		assert_true(all->plus_ok[i]);
		if (i > 0)
			assert_true(all->cookies[i] > all->cookies[i - 1]);
		if (i >= 2)
			assert_true(all->cookies[i] >= 256);
	}
	/* In chunks of 37 with cookies, with creates and removes between
	 * chunks: every entry that survives is listed exactly once. */
	uint64_t cookie = 0;
	size_t total = 0;
	int round = 0;
	bool seen_removed = false;
	for (;;) {
		part->n = 0;
		part->limit = 37;
		assert_int_equal(wafl_readdir(f->v, &ROOT, &d, cookie, false,
		    rd_cb, part, &eof, &da), 0);
		for (size_t i = 0; i < part->n; i++)
			if (strcmp(part->names[i], "entry-0599") == 0)
				seen_removed = true;
		total += part->n;
		if (part->n > 0)
			cookie = part->last_cookie;
		if (eof)
			break;
		if (round++ == 3) {
			mk_file(f, &ROOT, &d, "late-arrival", 0644);
			assert_int_equal(wafl_remove(f->v, &ROOT, &d,
			    "entry-0599", NULL), 0);
		}
	}
	/* 602 listed, plus maybe the new one, minus maybe the removed. */
	assert_true(total >= (size_t)N + 1 && total <= (size_t)N + 3);
	(void)seen_removed;
	/* Readdir of a file, by a user without read permission. */
	struct wafl_obj o = look(f, &d, "entry-0001");
	assert_int_equal(wafl_readdir(f->v, &ROOT, &o, 0, false, rd_cb, part,
	    &eof, &da), -ENOTDIR);
	struct wafl_obj p = mk_dir(f, &ROOT, &f->root, "noread", 0311);
	assert_int_equal(wafl_readdir(f->v, &USER, &p, 0, false, rd_cb, part,
	    &eof, &da), -EACCES);
	/* Cookies are the same after a remount. */
	remount(f);
	part->n = 0;
	part->limit = 0;
	assert_int_equal(wafl_readdir(f->v, &ROOT, &d, 0, false, rd_cb, part,
	    &eof, &da), 0);
	for (size_t i = 0; i < part->n; i++) {
		for (size_t j = 0; j < all->n; j++) {
			if (strcmp(all->names[j], part->names[i]) == 0) {
				assert_int_equal(all->cookies[j],
				    part->cookies[i]);
				break;
			}
		}
	}
	assert_true(wafl_cookieverf(f->v, &d) != 0);
	free(all);
	free(part);
}

static void test_statfs(void **state)
{
	struct fx *f = *state;
	struct wafl_fsstat s0, s1;

	assert_int_equal(wafl_statfs(f->v, &s0), 0);
	assert_true(s0.tbytes > 0 && s0.fbytes <= s0.tbytes);
	assert_true(s0.abytes <= s0.fbytes);
	assert_true(s0.afiles <= s0.ffiles && s0.ffiles <= s0.tfiles);
	struct wafl_obj o = mk_file(f, &ROOT, &f->root, "big", 0644);
	uint8_t *buf = malloc(1 << 20);
	pattern(buf, 1 << 20, 6);
	for (int i = 0; i < 4; i++)
		wr(f, &o, (uint64_t)i << 20, buf, 1 << 20, WAFL_UNSTABLE);
	assert_int_equal(wafl_sync(f->v), 0);
	assert_int_equal(wafl_statfs(f->v, &s1), 0);
	assert_true(s1.fbytes + (4u << 20) <= s0.fbytes);
	free(buf);
}

/* Everything done without a CP is rebuilt by replay after a crash. */
/*
 * A FILE_SYNC write that took a file's set-id bits away (a non-root
 * writer) is replayed after a crash with the bits gone: the bits' own
 * record comes before the write's.  The pre-op attributes are the file's
 * before both.
 */
static void test_replay_write_kills_setid(void **state)
{
	struct fx *f = *state;
	struct wafl_obj o = mk_file(f, &ROOT, &f->root, "prog", 0644);
	struct wafl_sattr sa = { .set_mode = true, .mode = 06775,
	    .set_uid = true, .uid = USER.uid, .set_gid = true,
	    .gid = USER.gid };
	struct wafl_attr a;
	struct wafl_wcc pre;
	enum wafl_stable got;
	uint8_t d[5000];

	assert_int_equal(wafl_setattr(f->v, &ROOT, &o, &sa, NULL, NULL, &a),
	    0);
	assert_int_equal(a.mode, 06775);
	assert_int_equal(wafl_sync(f->v), 0);
	pattern(d, sizeof(d), 3);
	assert_int_equal(wafl_write(f->v, &USER, &o, 0, sizeof(d), d,
	    WAFL_FILE_SYNC, &got, &pre, &a), 0);
	assert_int_equal(a.mode, 0775);
	assert_true(pre.valid);
	assert_int_equal(pre.size, 0);
	crash_remount(f);
	a = attr_of(f, &o);
	assert_int_equal(a.mode, 0775);
	assert_int_equal(a.size, sizeof(d));
	/* Root's writes keep the bits. */
	sa = (struct wafl_sattr){ .set_mode = true, .mode = 04755 };
	assert_int_equal(wafl_setattr(f->v, &ROOT, &o, &sa, NULL, NULL, &a),
	    0);
	assert_int_equal(wafl_write(f->v, &ROOT, &o, 0, 100, d,
	    WAFL_FILE_SYNC, &got, &pre, &a), 0);
	assert_int_equal(a.mode, 04755);
}

static void test_replay_after_crash(void **state)
{
	struct fx *f = *state;
	struct wafl_attr a;
	struct wafl_obj keep = mk_file(f, &ROOT, &f->root, "before-cp", 0644);
	uint8_t d1[20000], d2[3000];

	pattern(d1, sizeof(d1), 7);
	pattern(d2, sizeof(d2), 8);
	wr(f, &keep, 0, d1, sizeof(d1), WAFL_FILE_SYNC);
	assert_int_equal(wafl_sync(f->v), 0);
	uint64_t g0 = wafl_generation(f->v);

	/* After the CP: a mix of everything, nothing synced. */
	struct wafl_obj dir = mk_dir(f, &ROOT, &f->root, "dir", 0777);
	struct wafl_obj sub = mk_dir(f, &ROOT, &dir, "sub", 0755);
	struct wafl_obj f1 = mk_file(f, &USER, &dir, "f1", 0640);
	struct wafl_obj f2 = mk_file(f, &ROOT, &f->root, "f2", 0644);
	struct wafl_obj gone = mk_file(f, &ROOT, &f->root, "gone", 0644);
	struct wafl_obj s1, s2, nod, x;
	char longt[700];
	memset(longt, 'L', sizeof(longt) - 1);
	longt[sizeof(longt) - 1] = '\0';
	assert_int_equal(wafl_symlink(f->v, &ROOT, &dir, "sl", "short", NULL,
	    &s1, &a, NULL), 0);
	assert_int_equal(wafl_symlink(f->v, &ROOT, &dir, "sl2", longt, NULL,
	    &s2, &a, NULL), 0);
	assert_int_equal(wafl_mknod(f->v, &ROOT, &dir, "blk", WAFL_BLK, 8, 1,
	    NULL, &nod, &a, NULL), 0);
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "ex",
	    WAFL_EXCLUSIVE, NULL, 0xabcdefull, &x, &a, NULL), 0);
	wr(f, &f1, 0, d2, sizeof(d2), WAFL_FILE_SYNC);
	wr(f, &keep, 4096, d2, sizeof(d2), WAFL_DATA_SYNC);
	memcpy(d1 + 4096, d2, sizeof(d2));
	wr(f, &f2, 100, d2, 1000, WAFL_UNSTABLE);
	struct wafl_attr pc;
	assert_int_equal(wafl_commit(f->v, &f2, &pc), 0);
	/* COMMIT of UNSTABLE data is a CP; what follows is replayed. */
	assert_int_equal(wafl_generation(f->v), g0 + 1);
	g0 = wafl_generation(f->v);
	assert_int_equal(wafl_link(f->v, &ROOT, &f2, &sub, "hard", &a, NULL),
	    0);
	assert_int_equal(wafl_rename(f->v, &ROOT, &f->root, "f2", &dir,
	    "f2-moved", NULL, NULL), 0);
	assert_int_equal(wafl_rename(f->v, &ROOT, &dir, "sub", &f->root,
	    "sub-up", NULL, NULL), 0);
	assert_int_equal(wafl_remove(f->v, &ROOT, &f->root, "gone", NULL), 0);
	struct wafl_obj reuse = mk_file(f, &ROOT, &f->root, "reuse", 0600);
	struct wafl_sattr sa = { .set_size = true, .size = 12345,
	    .atime_how = WAFL_TIME_CLIENT, .atime_ns = 42,
	    .set_mode = true, .mode = 0604 };
	assert_int_equal(wafl_setattr(f->v, &ROOT, &keep, &sa, NULL, NULL,
	    &a), 0);
	struct wafl_attr want_keep = attr_of(f, &keep);
	struct wafl_attr want_dir = attr_of(f, &dir);
	struct wafl_attr want_root = attr_of(f, &f->root);
	struct wafl_attr want_f2 = attr_of(f, &f2);
	struct rd_col *before = calloc(1, sizeof(*before));
	struct rd_col *after = calloc(1, sizeof(*after));
	bool eof;
	assert_int_equal(wafl_readdir(f->v, &ROOT, &dir, 0, false, rd_cb,
	    before, &eof, &a), 0);
	assert_int_equal(wafl_generation(f->v), g0);

	crash_remount(f);

	/* Same numbers, generations, cookies, attributes. */
	assert_int_equal(look(f, &f->root, "dir").ino, dir.ino);
	assert_int_equal(look(f, &f->root, "dir").gen, dir.gen);
	assert_int_equal(look(f, &f->root, "sub-up").ino, sub.ino);
	assert_int_equal(look2(f, &f->root, "sub-up", "..").ino, 2);
	assert_int_equal(look(f, &dir, "f1").gen, f1.gen);
	assert_int_equal(look(f, &dir, "f2-moved").ino, f2.ino);
	assert_int_equal(look(f, &sub, "hard").ino, f2.ino);
	assert_int_equal(look(f, &dir, "sl").ino, s1.ino);
	assert_int_equal(look(f, &dir, "blk").ino, nod.ino);
	assert_int_equal(look(f, &f->root, "reuse").gen, reuse.gen);
	assert_int_equal(look_rc(f, &f->root, "gone"), -ENOENT);
	assert_int_equal(look_rc(f, &f->root, "f2"), -ENOENT);
	assert_int_equal(wafl_getattr(f->v, &gone, &a), reuse.ino == gone.ino
	    && reuse.gen == gone.gen ? 0 : -ESTALE);
	struct wafl_obj x2;
	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "ex",
	    WAFL_EXCLUSIVE, NULL, 0xabcdefull, &x2, &a, NULL), 0);
	assert_int_equal(x2.ino, x.ino);
	assert_int_equal(x2.gen, x.gen);

	a = attr_of(f, &keep);
	assert_int_equal(a.size, want_keep.size);
	assert_int_equal(a.mode, 0604);
	assert_int_equal(a.atime_ns, 42);
	assert_int_equal(a.mtime_ns, want_keep.mtime_ns);
	assert_int_equal(a.ctime_ns, want_keep.ctime_ns);
	a = attr_of(f, &dir);
	assert_int_equal(a.nlink, want_dir.nlink);
	assert_int_equal(a.mtime_ns, want_dir.mtime_ns);
	assert_int_equal(a.size, want_dir.size);
	a = attr_of(f, &f->root);
	assert_int_equal(a.nlink, want_root.nlink);
	assert_int_equal(a.ctime_ns, want_root.ctime_ns);
	a = attr_of(f, &f2);
	assert_int_equal(a.nlink, 2);
	assert_int_equal(a.ctime_ns, want_f2.ctime_ns);
	assert_int_equal(attr_of(f, &nod).rdev_major, 8);
	rd_check(f, &keep, 0, d1, 12345);
	rd_check(f, &f1, 0, d2, sizeof(d2));
	rd_check(f, &f2, 100, d2, 1000);
	char buf[1024];
	size_t len;
	assert_int_equal(wafl_readlink(f->v, &ROOT, &s2, buf, sizeof(buf),
	    &len, &a), 0);
	assert_string_equal(buf, longt);
	assert_int_equal(wafl_readlink(f->v, &ROOT, &s1, buf, sizeof(buf),
	    &len, &a), 0);
	assert_string_equal(buf, "short");
	assert_int_equal(wafl_readdir(f->v, &ROOT, &dir, 0, false, rd_cb,
	    after, &eof, &a), 0);
	assert_int_equal(after->n, before->n);
	for (size_t i = 0; i < before->n; i++) {
		assert_string_equal(after->names[i], before->names[i]);
		assert_int_equal(after->cookies[i], before->cookies[i]);
	}
	/* The replayed state is durable: another crash changes nothing. */
	crash_remount(f);
	assert_int_equal(look(f, &dir, "f2-moved").ino, f2.ino);
	rd_check(f, &keep, 0, d1, 12345);
	/* New operations after replay get fresh numbers. */
	struct wafl_obj fresh = mk_file(f, &ROOT, &f->root, "fresh", 0644);
	assert_true(fresh.ino != reuse.ino && fresh.ino != f1.ino);
	free(before);
	free(after);
}

static void test_enospc_and_recovery(void **state)
{
	struct fx *f = *state;
	const uint32_t chunk = 256 * 1024;
	uint8_t *buf = malloc(chunk);
	struct wafl_obj files[64];
	int nfiles = 0, rc = 0;
	enum wafl_stable st;

	pattern(buf, chunk, 9);
	/* 8192 blocks in all: fill until the volume refuses. */
	for (nfiles = 0; nfiles < 64 && rc == 0; nfiles++) {
		char name[16];
		snprintf(name, sizeof(name), "fill%d", nfiles);
		files[nfiles] = mk_file(f, &ROOT, &f->root, name, 0644);
		for (int i = 0; i < 16 && rc == 0; i++)
			rc = wafl_write(f->v, &ROOT, &files[nfiles],
			    (uint64_t)i * chunk, chunk, buf, WAFL_UNSTABLE,
			    &st, NULL, NULL);
	}
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(wafl_sync(f->v), 0);
	struct wafl_fsstat fs;
	assert_int_equal(wafl_statfs(f->v, &fs), 0);
	/* Dirty buffers counted against it until the CP: little is left. */
	assert_true(fs.abytes < 4u << 20);
	/* Removes live on the reserve. */
	for (int i = 0; i < nfiles; i++) {
		char name[16];
		snprintf(name, sizeof(name), "fill%d", i);
		assert_int_equal(wafl_remove(f->v, &ROOT, &f->root, name,
		    NULL), 0);
	}
	for (int i = 0; i < 6; i++)
		assert_int_equal(wafl_sync(f->v), 0);
	struct wafl_obj o = mk_file(f, &ROOT, &f->root, "after", 0644);
	assert_int_equal(wafl_write(f->v, &ROOT, &o, 0, chunk, buf,
	    WAFL_FILE_SYNC, &st, NULL, NULL), 0);
	remount(f);
	rd_check(f, &o, 0, buf, chunk);
	free(buf);
}

/* Snapshot objects: read-only views of the tree as it was. */
static void test_snapshot_reads(void **state)
{
	struct fx *f = *state;
	struct wafl_obj d = mk_dir(f, &ROOT, &f->root, "sd", 0755);
	struct wafl_obj o = mk_file(f, &ROOT, &d, "file", 0644);
	struct wafl_obj sl, so, sr, x;
	struct wafl_attr a, da;
	uint8_t old[9000], new[9000];
	char buf[64];
	size_t len;
	uint64_t id;

	pattern(old, sizeof(old), 10);
	pattern(new, sizeof(new), 11);
	wr(f, &o, 0, old, sizeof(old), WAFL_FILE_SYNC);
	assert_int_equal(wafl_symlink(f->v, &ROOT, &d, "ln", "to/here", NULL,
	    &sl, &a, NULL), 0);
	assert_int_equal(wafl_snap_create(f->v, "s1", &id), 0);
	wr(f, &o, 0, new, sizeof(new), WAFL_FILE_SYNC);
	assert_int_equal(wafl_remove(f->v, &ROOT, &d, "ln", NULL), 0);
	mk_file(f, &ROOT, &d, "later", 0644);

	assert_int_equal(wafl_snap_root(f->v, id, &sr), 0);
	assert_int_equal(wafl_lookup(f->v, &ROOT, &sr, "sd", &x, &a, &da), 0);
	assert_int_equal(x.snap, id);
	assert_int_equal(x.ino, d.ino);
	assert_int_equal(wafl_lookup(f->v, &ROOT, &x, "file", &so, &a, &da),
	    0);
	assert_int_equal(so.ino, o.ino);
	assert_int_equal(a.size, sizeof(old));
	assert_true(a.fsid != attr_of(f, &o).fsid);
	assert_int_equal(wafl_lookup(f->v, &ROOT, &x, "later", &so, &a, &da),
	    -ENOENT);
	assert_int_equal(wafl_lookup(f->v, &ROOT, &x, "..", &so, &a, &da), 0);
	assert_int_equal(so.ino, 2);
	assert_int_equal(wafl_lookup(f->v, &ROOT, &x, "file", &so, &a, &da),
	    0);
	uint8_t rb[9000];
	uint32_t got;
	bool eof;
	assert_int_equal(wafl_read(f->v, &ROOT, &so, 0, sizeof(rb), rb, &got,
	    &eof, &a), 0);
	assert_int_equal(got, sizeof(old));
	assert_true(eof);
	assert_memory_equal(rb, old, sizeof(old));
	rd_check(f, &o, 0, new, sizeof(new));	/* the active file moved on */
	struct wafl_obj sln;
	assert_int_equal(wafl_lookup(f->v, &ROOT, &x, "ln", &sln, &a, &da), 0);
	assert_int_equal(wafl_readlink(f->v, &ROOT, &sln, buf, sizeof(buf),
	    &len, &a), 0);
	assert_string_equal(buf, "to/here");
	struct rd_col *c = calloc(1, sizeof(*c));
	assert_int_equal(wafl_readdir(f->v, &ROOT, &x, 0, true, rd_cb, c, &eof,
	    &da), 0);
	assert_true(eof);
	assert_int_equal(c->n, 4);	/* ".", "..", file, ln */
	for (size_t i = 0; i < c->n; i++)
		assert_true(c->plus_ok[i]);
	free(c);
	uint32_t g;
	assert_int_equal(wafl_access(f->v, &ROOT, &so, 0x3f, &g, &a), 0);
	assert_int_equal(g & (WAFL_ACCESS_MODIFY | WAFL_ACCESS_EXTEND |
	    WAFL_ACCESS_DELETE), 0);
	assert_true(g & WAFL_ACCESS_READ);
	/* Writes: EROFS; a wrong generation or id: ESTALE. */
	enum wafl_stable st;
	assert_int_equal(wafl_write(f->v, &ROOT, &so, 0, 1, rb, WAFL_FILE_SYNC,
	    &st, NULL, NULL), -EROFS);
	assert_int_equal(wafl_remove(f->v, &ROOT, &x, "file", NULL), -EROFS);
	struct wafl_obj bad = so;
	bad.gen++;
	assert_int_equal(wafl_getattr(f->v, &bad, &a), -ESTALE);
	bad = so;
	bad.snap = id + 12345;
	assert_int_equal(wafl_getattr(f->v, &bad, &a), -ESTALE);
	assert_int_equal(wafl_snap_delete(f->v, "s1"), 0);
	assert_int_equal(wafl_getattr(f->v, &so, &a), -ESTALE);
}

/* --------------------------------------------------------- concurrency */

struct worker {
	struct fx *f;
	struct wafl_obj dirs[2];
	int id;
	int errors;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct fx *f = w->f;
	uint64_t seed = (uint64_t)w->id * 7919 + 1;
	uint8_t data[6000];
	char a[32], b[32];

	pattern(data, sizeof(data), (uint64_t)w->id);
	for (int i = 0; i < 150; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		int op = (int)((seed >> 33) % 6);
		const struct wafl_obj *d1 = &w->dirs[(seed >> 20) & 1];
		const struct wafl_obj *d2 = &w->dirs[(seed >> 21) & 1];
		snprintf(a, sizeof(a), "w%d-%d", w->id, (int)((seed >> 40) % 8));
		snprintf(b, sizeof(b), "w%d-%d", w->id, (int)((seed >> 44) % 8));
		struct wafl_obj o;
		struct wafl_attr at;
		enum wafl_stable st;
		int rc = 0;
		switch (op) {
		case 0:
			rc = wafl_create(f->v, &ROOT, d1, a, WAFL_GUARDED,
			    NULL, 0, &o, &at, NULL);
			if (rc == 0)
				rc = wafl_write(f->v, &ROOT, &o, 0,
				    sizeof(data), data, WAFL_UNSTABLE, &st,
				    NULL, NULL);
			break;
		case 1:
			rc = wafl_remove(f->v, &ROOT, d1, a, NULL);
			break;
		case 2:
			rc = wafl_rename(f->v, &ROOT, d1, a, d2, b, NULL,
			    NULL);
			break;
		case 3:
			rc = wafl_mkdir(f->v, &ROOT, d1, a, NULL, &o, &at,
			    NULL);
			break;
		case 4:
			rc = wafl_rmdir(f->v, &ROOT, d1, a, NULL);
			break;
		default:
			rc = wafl_lookup(f->v, &ROOT, d1, a, &o, &at, &at);
			if (rc == 0 && at.type == WAFL_REG) {
				uint8_t buf[6000];
				uint32_t got;
				bool eof;
				rc = wafl_read(f->v, &ROOT, &o, 0,
				    sizeof(buf), buf, &got, &eof, &at);
				if (rc == -ESTALE)
					rc = 0;
			}
			break;
		}
		if (rc != 0 && rc != -EEXIST && rc != -ENOENT &&
		    rc != -ENOTDIR && rc != -EISDIR && rc != -ENOTEMPTY &&
		    rc != -ESTALE)
			w->errors++;
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	struct fx *f = *state;
	struct wafl_obj d0 = mk_dir(f, &ROOT, &f->root, "c0", 0777);
	struct wafl_obj d1 = mk_dir(f, &ROOT, &d0, "c1", 0777);
	struct worker w[6];
	pthread_t t[6];

	for (int i = 0; i < 6; i++) {
		w[i] = (struct worker){ f, { d0, d1 }, i, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, worker_main,
		    &w[i]), 0);
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(wafl_sync(f->v), 0);
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].errors, 0);
	}
	check_clean(f);
	crash_remount(f);
	check_clean(f);
}

/*
 * Lock order under RENAME, against operations that hold a directory and
 * then take an object in it (LOOKUP, READDIRPLUS).  A deadlock is caught
 * by a deadline: the stuck threads hold locks that teardown would wait
 * for, so the runner aborts rather than failing and going on.
 */
#define LO_DEADLINE_S	60

static void lo_wait(atomic_int *done, int n, const char *what)
{
	for (int ms = 0; atomic_load(done) < n; ms++) {
		if (ms >= LO_DEADLINE_S * 1000) {
			fprintf(stderr, "%s: operations still waiting after "
			    "%d s: deadlock\n", what, LO_DEADLINE_S);
			abort();
		}
		usleep(1000);
	}
}

static int lo_count(void *arg, const struct wafl_dirent *de)
{
	(*(int *)arg)++;
	return 0;
}

/* READDIRPLUS of dir until *stop (at least once); errors counted. */
struct lo_lister {
	struct fx *f;
	struct wafl_obj dir;
	int rounds;		/* 0: until stop */
	atomic_int *stop, *done, *errors;
};

static void *lo_list_main(void *arg)
{
	struct lo_lister *l = arg;

	for (int i = 0; l->rounds == 0 ? !atomic_load(l->stop) :
	    i < l->rounds; i++) {
		struct wafl_attr da;
		bool eof;
		int n = 0;
		if (wafl_readdir(l->f->v, &ROOT, &l->dir, 0, true, lo_count,
		    &n, &eof, &da) != 0 || !eof)
			atomic_fetch_add(l->errors, 1);
	}
	atomic_fetch_add(l->done, 1);
	return NULL;
}

/*
 * A file F is "f" in the root and "x" in directory "d".  RENAME of "f"
 * onto "d" (EISDIR) locks F and d; LOOKUP of "x" in d and READDIRPLUS of
 * d hold d and then take F.  RENAME takes the directory first too.
 */
#define LO_ROUNDS	3000

struct lo_renamer {
	struct fx *f;
	atomic_int *done, *errors;
};

static void *lo_rename_main(void *arg)
{
	struct lo_renamer *r = arg;

	for (int i = 0; i < LO_ROUNDS; i++)
		if (wafl_rename(r->f->v, &ROOT, &r->f->root, "f", &r->f->root,
		    "d", NULL, NULL) != -EISDIR)
			atomic_fetch_add(r->errors, 1);
	atomic_fetch_add(r->done, 1);
	return NULL;
}

struct lo_looker {
	struct fx *f;
	struct wafl_obj dir;
	uint64_t ino;
	atomic_int *done, *errors;
};

static void *lo_lookup_main(void *arg)
{
	struct lo_looker *l = arg;

	for (int i = 0; i < LO_ROUNDS; i++) {
		struct wafl_obj o;
		struct wafl_attr a, da;
		int rc = wafl_lookup(l->f->v, &ROOT, &l->dir, "x", &o, &a,
		    &da);
		if (rc != 0 || o.ino != l->ino)
			atomic_fetch_add(l->errors, 1);
	}
	atomic_fetch_add(l->done, 1);
	return NULL;
}

static void test_rename_file_onto_dir_order(void **state)
{
	struct fx *f = *state;
	struct wafl_obj d = mk_dir(f, &ROOT, &f->root, "d", 0777);
	struct wafl_obj o = mk_file(f, &ROOT, &f->root, "f", 0644);
	atomic_int done = 0, errors = 0, stop = 0;
	struct wafl_attr a;
	char name[32];
	pthread_t t[3];

	assert_int_equal(wafl_link(f->v, &ROOT, &o, &d, "x", &a, NULL), 0);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "other-%d", i);
		(void)mk_file(f, &ROOT, &d, name, 0644);
	}
	struct lo_renamer r = { f, &done, &errors };
	struct lo_looker lk = { f, d, o.ino, &done, &errors };
	struct lo_lister ls = { f, d, LO_ROUNDS / 10, &stop, &done, &errors };
	assert_int_equal(pthread_create(&t[0], NULL, lo_rename_main, &r), 0);
	assert_int_equal(pthread_create(&t[1], NULL, lo_lookup_main, &lk), 0);
	assert_int_equal(pthread_create(&t[2], NULL, lo_list_main, &ls), 0);
	lo_wait(&done, 3, "rename of a file onto a directory");
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&errors), 0);
	check_clean(f);
}

/*
 * RENAME orders its two directories by walking up from each; the walk is
 * stable under rename_lock, but a directory it walked from can be removed
 * meanwhile.  Its inode number is not given to a new object while the
 * RENAME holds it: were it reused for a subdirectory of the other
 * directory, RENAME would lock that child before its parent while
 * READDIRPLUS of the parent holds the parent and waits for the child.
 *
 * Here RENAME from fd to a/b/t is held in its walk (the test holds a's
 * lock), t is removed and a directory "n" made in fd, then a's lock is let
 * go while fd is listed.  Without the rule, n gets t's number and the
 * RENAME locks n, then fd.
 */
struct sd_rename {
	struct fx *f;
	struct wafl_obj fd, td;
	int rc;
	atomic_int *done;
};

static void *sd_rename_main(void *arg)
{
	struct sd_rename *r = arg;

	r->rc = wafl_rename(r->f->v, &ROOT, &r->fd, "s", &r->td, "s2", NULL,
	    NULL);
	atomic_fetch_add(r->done, 1);
	return NULL;
}

/* Remove b/t and make fd/n, in a thread of their own (this one holds a). */
struct sd_swap {
	struct fx *f;
	struct wafl_obj b, fd, n;
	int rm_rc, mk_rc;
	atomic_int *done;
};

static void *sd_swap_main(void *arg)
{
	struct sd_swap *s = arg;
	struct wafl_attr a;

	s->rm_rc = wafl_rmdir(s->f->v, &ROOT, &s->b, "t", NULL);
	s->mk_rc = wafl_mkdir(s->f->v, &ROOT, &s->fd, "n", NULL, &s->n, &a,
	    NULL);
	atomic_fetch_add(s->done, 1);
	return NULL;
}

static void test_rename_removed_dir_order(void **state)
{
	struct fx *f = *state;
	struct wafl_obj a = mk_dir(f, &ROOT, &f->root, "a", 0777);
	struct wafl_obj b = mk_dir(f, &ROOT, &a, "b", 0777);
	char name[32];

	for (int round = 0; round < 20; round++) {
		atomic_int done = 0, errors = 0, stop = 0;
		struct wafl_obj t = mk_dir(f, &ROOT, &b, "t", 0777);
		snprintf(name, sizeof(name), "fd-%d", round);
		struct wafl_obj fd = mk_dir(f, &ROOT, &f->root, name, 0777);
		assert_true(t.ino < fd.ino);	/* RENAME: t before fd */
		(void)mk_file(f, &ROOT, &fd, "s", 0644);
		for (int i = 0; i < 100; i++) {
			snprintf(name, sizeof(name), "other-%d", i);
			(void)mk_file(f, &ROOT, &fd, name, 0644);
		}
		/* Nothing for a CP to do while a is held below: RMDIR and
		 * MKDIR take cp_lock then, and the RENAME holds it shared. */
		assert_int_equal(wafl_sync(f->v), 0);
		struct wnode *aw;
		pthread_rwlock_rdlock(&f->v->cp_lock);
		assert_int_equal(wnode_get(f->v, a.ino, &aw), 0);
		pthread_rwlock_unlock(&f->v->cp_lock);
		pthread_rwlock_wrlock(&aw->lock);
		struct sd_rename r = { f, fd, t, 0, &done };
		pthread_t tr, tl;
		assert_int_equal(pthread_create(&tr, NULL, sd_rename_main, &r),
		    0);
		/* The RENAME walks up from t and waits for a. */
		for (int i = 0; i < 5000; i++) {
			if (pthread_mutex_trylock(&f->v->rename_lock) != 0)
				break;
			pthread_mutex_unlock(&f->v->rename_lock);
			usleep(1000);
		}
		usleep(50 * 1000);
		/* No assert until a is let go: teardown would wait for it. */
		atomic_int swapped = 0;
		struct sd_swap sw = { f, b, fd, { 0 }, 0, 0, &swapped };
		pthread_t ts;
		assert_int_equal(pthread_create(&ts, NULL, sd_swap_main, &sw),
		    0);
		lo_wait(&swapped, 1, "remove and make beside a rename");
		pthread_join(ts, NULL);
		struct lo_lister ls = { f, fd, 0, &stop, &done, &errors };
		assert_int_equal(pthread_create(&tl, NULL, lo_list_main, &ls),
		    0);
		usleep(2000);
		pthread_rwlock_unlock(&aw->lock);
		lo_wait(&done, 1, "rename to a removed directory");
		atomic_store(&stop, 1);
		lo_wait(&done, 2, "rename to a removed directory");
		pthread_join(tr, NULL);
		pthread_join(tl, NULL);
		pthread_rwlock_rdlock(&f->v->cp_lock);
		wnode_put(aw);
		pthread_rwlock_unlock(&f->v->cp_lock);
		assert_int_equal(sw.rm_rc, 0);
		assert_int_equal(sw.mk_rc, 0);
		/* The RENAME held t's number: not given to n. */
		assert_int_not_equal(sw.n.ino, t.ino);
		assert_int_equal(r.rc, -ESTALE);
		assert_int_equal(atomic_load(&errors), 0);
	}
	check_clean(f);
}

/*
 * Loans under churn: a writer rewrites a file round after round with CPs
 * between, on a cache of 64 blocks, while two readers take it with
 * wafl_read_vec and keep each result for a while (a ring of 8) before
 * giving it back.  Every read is one round's data, whole (a READ holds the
 * file's lock), and still is when it is given back: by then the lent
 * blocks were evicted, their VBNs freed and written again.
 */
#define RC_BLOCKS	64u
#define RC_ROUNDS	60u

struct rc_shared {
	struct fx *f;
	struct wafl_obj o;
	atomic_int done;
	atomic_int errors;
	atomic_int reads;
};

static void rc_fill(uint8_t *b, uint32_t round)
{
	for (uint32_t i = 0; i < RC_BLOCKS * 4096u / 8u; i++) {
		uint64_t tag = (uint64_t)round << 32 | (i * 8u / 4096u);
		memcpy(b + (size_t)i * 8, &tag, 8);
	}
}

/* The round every block of rv holds, or -1 if they differ or a block is
 * not its own. */
static int64_t rc_round(const struct wafl_rdvec *rv)
{
	uint8_t *g = rdvec_gather(rv);
	int64_t round = -1;

	for (uint32_t i = 0; i < RC_BLOCKS * 4096u / 8u; i++) {
		uint64_t tag;
		memcpy(&tag, g + (size_t)i * 8, 8);
		if ((tag & 0xffffffffu) != i * 8u / 4096u ||
		    (round >= 0 && (int64_t)(tag >> 32) != round)) {
			round = -1;
			break;
		}
		round = (int64_t)(tag >> 32);
	}
	free(g);
	return round;
}

static void *rc_reader(void *arg)
{
	struct rc_shared *sh = arg;
	struct wafl_rdvec *ring[8] = { 0 };
	int64_t seen[8] = { 0 };
	unsigned k = 0;

	while (!atomic_load(&sh->done)) {
		struct wafl_rdvec *rv;
		struct wafl_attr a;
		uint32_t got;
		bool eof;

		if (ring[k] != NULL) {
			if (rc_round(ring[k]) != seen[k])
				atomic_fetch_add(&sh->errors, 1);
			wafl_rdvec_free(ring[k]);
			ring[k] = NULL;
		}
		if (wafl_read_vec(sh->f->v, &ROOT, &sh->o, 0, RC_BLOCKS * 4096u,
		    &rv, &got, &eof, &a) != 0 || got != RC_BLOCKS * 4096u) {
			atomic_fetch_add(&sh->errors, 1);
			break;
		}
		seen[k] = rc_round(rv);
		if (seen[k] < 0)
			atomic_fetch_add(&sh->errors, 1);
		ring[k] = rv;
		k = (k + 1) % 8;
		atomic_fetch_add(&sh->reads, 1);
	}
	for (k = 0; k < 8; k++) {
		if (ring[k] != NULL && rc_round(ring[k]) != seen[k])
			atomic_fetch_add(&sh->errors, 1);
		wafl_rdvec_free(ring[k]);
	}
	return NULL;
}

static void test_read_vec_churn(void **state)
{
	struct fx *f = *state;
	struct rc_shared sh = { .f = f };
	uint8_t *b = malloc(RC_BLOCKS * 4096u);
	struct wafl_dirwcc dw;
	struct wafl_attr at;
	pthread_t t[2];

	assert_int_equal(wafl_create(f->v, &ROOT, &f->root, "churn",
	    WAFL_GUARDED, NULL, 0, &sh.o, &at, &dw), 0);
	rc_fill(b, 0);
	wr(f, &sh.o, 0, b, RC_BLOCKS * 4096u, WAFL_UNSTABLE);
	assert_int_equal(wafl_sync(f->v), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, rc_reader, &sh),
		    0);
	for (uint32_t round = 1; round <= RC_ROUNDS; round++) {
		rc_fill(b, round);
		wr(f, &sh.o, 0, b, RC_BLOCKS * 4096u, WAFL_UNSTABLE);
		if (round % 2 == 0)
			assert_int_equal(wafl_sync(f->v), 0);
		usleep(2000);
	}
	atomic_store(&sh.done, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&sh.errors), 0);
	assert_true(atomic_load(&sh.reads) > 16);
	free(b);
	check_clean(f);
}

/*
 * Writers of one file while CPs come and go: each thread owns a region
 * and rewrites it in whole and partial blocks, round after round; a CP
 * that finds the file's lock busy makes the queued writers step out
 * (ops_tx_wrlock) and begin again after the freeze.  Every region holds
 * its last round after a remount, and the volume checks clean.
 */
#define SF_THREADS	4
#define SF_REGION	(256u * 1024u)
#define SF_ROUNDS	60

struct sf_writer {
	struct fx *f;
	struct wafl_obj o;
	int id;
	int errors;
	atomic_int *done;
};

static void sf_fill(uint8_t *b, int id, int round)
{
	for (uint32_t i = 0; i < SF_REGION; i++)
		b[i] = (uint8_t)(id * 31 + round * 7 + i / 4096);
}

static void *sf_main(void *arg)
{
	struct sf_writer *w = arg;
	uint8_t *b = malloc(SF_REGION);
	enum wafl_stable st;

	for (int round = 0; round < SF_ROUNDS; round++) {
		uint64_t off = (uint64_t)w->id * SF_REGION;
		sf_fill(b, w->id, round);
		/* A partial block first, then the whole region. */
		if (wafl_write(w->f->v, &ROOT, &w->o, off + 100, 1000,
		    b + 100, WAFL_UNSTABLE, &st, NULL, NULL) != 0)
			w->errors++;
		if (wafl_write(w->f->v, &ROOT, &w->o, off, SF_REGION, b,
		    round % 2 ? WAFL_FILE_SYNC : WAFL_UNSTABLE, &st, NULL,
		    NULL) != 0)
			w->errors++;
	}
	free(b);
	atomic_fetch_add(w->done, 1);
	return NULL;
}

static void test_same_file_writers(void **state)
{
	struct fx *f = *state;
	struct wafl_obj o = mk_file(f, &ROOT, &f->root, "shared", 0644);
	struct sf_writer w[SF_THREADS];
	pthread_t t[SF_THREADS];
	uint8_t *want = malloc(SF_REGION), *got = malloc(SF_REGION);
	atomic_int done = 0;

	for (int i = 0; i < SF_THREADS; i++) {
		w[i] = (struct sf_writer){ f, o, i, 0, &done };
		assert_int_equal(pthread_create(&t[i], NULL, sf_main, &w[i]),
		    0);
	}
	/* CPs back to back while the writers run (bounded). */
	for (int i = 0; i < 2000 && atomic_load(&done) < SF_THREADS; i++)
		assert_int_equal(wafl_sync(f->v), 0);
	for (int i = 0; i < SF_THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].errors, 0);
	}
	check_clean(f);
	remount(f);
	for (int i = 0; i < SF_THREADS; i++) {
		uint32_t n;
		bool eof;
		struct wafl_attr at;
		sf_fill(want, i, SF_ROUNDS - 1);
		assert_int_equal(wafl_read(f->v, &ROOT, &o,
		    (uint64_t)i * SF_REGION, SF_REGION, got, &n, &eof, &at), 0);
		assert_int_equal(n, SF_REGION);
		assert_memory_equal(got, want, SF_REGION);
	}
	check_clean(f);
	free(want);
	free(got);
}

/*
 * A CP does not wait for a writer queued on a busy file (ops_tx_wrlock):
 * the file's lock is held here, a writer of the file waits for it holding
 * cp_lock shared, and a CP then asks for cp_lock.  The writer steps out,
 * so the CP completes while the file's lock is still held; then the
 * write completes too.
 */
struct cw_arg {
	struct fx *f;
	struct wafl_obj o;
	atomic_int done;
	int rc;
};

static void *cw_write(void *arg)
{
	struct cw_arg *a = arg;
	static uint8_t buf[8192];
	enum wafl_stable st;

	memset(buf, 0x5a, sizeof(buf));
	a->rc = wafl_write(a->f->v, &ROOT, &a->o, 0, sizeof(buf), buf,
	    WAFL_UNSTABLE, &st, NULL, NULL);
	atomic_store(&a->done, 1);
	return NULL;
}

static void *cw_sync(void *arg)
{
	struct cw_arg *a = arg;

	a->rc = wafl_sync(a->f->v);
	atomic_store(&a->done, 1);
	return NULL;
}

static bool wait_flag(atomic_int *flag, int ms)
{
	for (int i = 0; i < ms && atomic_load(flag) == 0; i++)
		usleep(1000);
	return atomic_load(flag) != 0;
}

static void test_cp_passes_queued_writer(void **state)
{
	struct fx *f = *state;
	struct wafl_obj o = mk_file(f, &ROOT, &f->root, "busy", 0644);
	struct cw_arg w = { .f = f, .o = o }, c = { .f = f, .o = o };
	struct wnode *wn;
	pthread_t tw, tc;

	/* Something to write at the CP, so that it has a freeze. */
	(void)mk_file(f, &ROOT, &f->root, "other", 0644);
	pthread_rwlock_rdlock(&f->v->cp_lock);
	assert_int_equal(wnode_get(f->v, o.ino, &wn), 0);
	pthread_rwlock_unlock(&f->v->cp_lock);
	pthread_rwlock_wrlock(&wn->lock);
	assert_int_equal(pthread_create(&tw, NULL, cw_write, &w), 0);
	usleep(100 * 1000);	/* the writer is queued on the lock */
	assert_int_equal(pthread_create(&tc, NULL, cw_sync, &c), 0);
	bool cp_done = wait_flag(&c.done, 10000);
	bool write_done = atomic_load(&w.done) != 0;
	pthread_rwlock_unlock(&wn->lock);
	pthread_join(tc, NULL);
	pthread_join(tw, NULL);
	pthread_rwlock_rdlock(&f->v->cp_lock);
	wnode_put(wn);
	pthread_rwlock_unlock(&f->v->cp_lock);
	assert_true(cp_done);		/* not held up by the queued writer */
	assert_false(write_done);	/* which waited for the file */
	assert_int_equal(c.rc, 0);
	assert_int_equal(w.rc, 0);
	check_clean(f);
}

/* ------------------------------------------------- deferred durability */

struct dur_acks {
	int calls, ok, lasts;
};

static void dur_done(void *arg, int err, bool last)
{
	struct dur_acks *d = arg;

	d->calls++;
	d->ok += err == 0;
	d->lasts += last;
}

static void count_release(void *arg)
{
	(*(int *)arg)++;
}

static void *snap_thread(void *arg)
{
	struct fx *f = arg;

	assert_int_equal(wafl_snap_create(f->v, "s", NULL), 0);
	return NULL;
}

/*
 * A worker's batch (as nfsd runs it): a SETATTR is committed and its
 * callback queued, with the flush owed until the batch ends.  Meanwhile a
 * snapshot (two CPs, nothing logged between them) brings the log's appends
 * back to the half that record went to.  The batch then commits a large
 * FILE_SYNC WRITE there; once the batch's flush reports it durable it
 * must survive a crash.
 */
static void test_batch_across_snapshot(void **state)
{
	struct fx *f = *state;
	struct wafl_obj o = mk_file(f, &ROOT, &f->root, "f", 0644);
	struct wafl_sattr sa = { .set_mode = true, .mode = 0600 };
	struct dur_acks d = { 0 };
	enum wafl_stable got;
	static uint8_t big[256 << 10];
	pthread_t th;
	uint64_t lsn;
	wafl_vol_t *v;

	pattern(big, sizeof(big), 5);
	wafl_durable_batch_begin(NULL, NULL);
	wafl_defer_begin();
	assert_int_equal(wafl_setattr(f->v, &ROOT, &o, &sa, NULL, NULL, NULL),
	    0);
	v = wafl_defer_end(&lsn);
	assert_non_null(v);
	wafl_when_durable(v, lsn, dur_done, &d);
	assert_int_equal(pthread_create(&th, NULL, snap_thread, f), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	wafl_defer_begin();
	assert_int_equal(wafl_write(f->v, &ROOT, &o, 0, sizeof(big), big,
	    WAFL_FILE_SYNC, &got, NULL, NULL), 0);
	v = wafl_defer_end(&lsn);
	assert_non_null(v);
	wafl_when_durable(v, lsn, dur_done, &d);
	wafl_durable_batch_end();
	assert_int_equal(d.calls, 2);
	assert_int_equal(d.ok, 2);		/* the WRITE is acknowledged */
	crash_remount(f);
	rd_check(f, &o, 0, big, sizeof(big));
}

/*
 * wafl_defer_begin/_end with wafl_when_durable: the operation returns at
 * commit and its callback runs once the record is durable.  Inside
 * wafl_durable_batch_begin/_end no flush starts until the batch ends, and
 * then one flush serves every operation of the batch.
 */
static void test_deferred_durability(void **state)
{
	struct fx *f = *state;
	struct dur_acks d = { 0 };
	struct wafl_stats s0, s1;
	uint64_t lsn;

	/* Alone: the callback runs before wafl_when_durable returns. */
	wafl_defer_begin();
	(void)mk_file(f, &ROOT, &f->root, "alone", 0644);
	wafl_vol_t *v = wafl_defer_end(&lsn);
	assert_ptr_equal(v, f->v);
	assert_true(lsn > 0);
	wafl_when_durable(v, lsn, dur_done, &d);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.ok, 1);

	/* In a batch: four operations, no flush until its end, then one. */
	memset(&d, 0, sizeof(d));
	wafl_get_stats(f->v, &s0);
	wafl_durable_batch_begin(NULL, NULL);
	for (int i = 0; i < 4; i++) {
		char name[32];

		snprintf(name, sizeof(name), "batch-%d", i);
		wafl_defer_begin();
		(void)mk_file(f, &ROOT, &f->root, name, 0644);
		v = wafl_defer_end(&lsn);
		assert_ptr_equal(v, f->v);
		wafl_when_durable(v, lsn, dur_done, &d);
	}
	wafl_get_stats(f->v, &s1);
	assert_int_equal(d.calls, 0);
	assert_int_equal(s1.log_flushes, s0.log_flushes);
	wafl_durable_batch_end();
	wafl_get_stats(f->v, &s1);
	assert_int_equal(s1.log_flushes, s0.log_flushes + 1);
	assert_int_equal(d.calls, 4);
	assert_int_equal(d.ok, 4);
	assert_int_equal(d.lasts, 1);

	/*
	 * An operation that is about to wait in wafl (here the log's half
	 * more than half full: without a CP thread the writer runs the CP)
	 * first calls the batch's release hook and starts the flushes owed:
	 * what the batch held does not wait out the CP.
	 */
	struct { int released; } hk = { 0 };
	struct wafl_obj big = mk_file(f, &ROOT, &f->root, "big", 0644);
	uint8_t *mb = calloc(1, 1u << 20);
	assert_non_null(mb);
	memset(&d, 0, sizeof(d));
	wafl_durable_batch_begin(count_release, &hk.released);
	wafl_defer_begin();
	(void)mk_file(f, &ROOT, &f->root, "held", 0644);
	v = wafl_defer_end(&lsn);
	wafl_when_durable(v, lsn, dur_done, &d);
	assert_int_equal(d.calls, 0);
	for (int i = 0; i < 3 && hk.released == 0; i++) {
		enum wafl_stable got;

		wafl_defer_begin();
		assert_int_equal(wafl_write(f->v, &ROOT, &big,
		    (uint64_t)i << 20, 1u << 20, mb, WAFL_FILE_SYNC, &got,
		    NULL, NULL), 0);
		(void)wafl_defer_end(&lsn);
	}
	assert_int_equal(hk.released, 1);
	assert_int_equal(d.calls, 1);		/* before the batch's end */
	assert_int_equal(d.ok, 1);
	wafl_durable_batch_end();
	assert_true(wafl_sync(f->v) == 0);
	free(mb);

	/* What the callbacks acknowledged survives a crash. */
	crash_remount(f);
	for (int i = 0; i < 4; i++) {
		char name[32];
		struct wafl_obj o;
		struct wafl_attr a;

		snprintf(name, sizeof(name), "batch-%d", i);
		assert_int_equal(wafl_lookup(f->v, &ROOT, &f->root, name, &o,
		    &a, NULL), 0);
	}
	check_clean(f);
}

/* ------------------------------------------- inode loads during CPs */

struct loader {
	wafl_vol_t *v;
	atomic_int stop;
	uint64_t next;		/* inode numbers never used */
	uint64_t loads, bad;
	int last_bad;
};

static void *loader_main(void *arg)
{
	struct loader *l = arg;

	while (!atomic_load(&l->stop)) {
		struct wafl_obj o = { l->next++, 1, 0 };
		struct wafl_attr a;
		int rc = wafl_getattr(l->v, &o, &a);
		l->loads++;
		if (rc != -ESTALE) {
			l->bad++;
			l->last_bad = rc;
		}
	}
	return NULL;
}

/*
 * An operation looks its object up (and loads its inode from the inode
 * file the last freeze left, v->ifile) before it takes cp_lock, so the
 * freeze must not change v->ifile under a load: it takes icache_lock, as
 * rollback and replica advance do.  A thread loads inodes never used
 * (each GETATTR a new one) while CPs run; every answer is ESTALE.  Built
 * with -fsanitize=thread, this reports the race on v->ifile without the
 * lock.
 */
static void test_inode_loads_during_cps(void **state)
{
	struct fx *f = *state;
	struct wafl_obj o = mk_file(f, &ROOT, &f->root, "f", 0644);
	struct loader l = { .v = f->v, .next = 1ull << 20 };
	uint8_t b[100];
	pthread_t t;

	atomic_init(&l.stop, 0);
	pattern(b, sizeof(b), 4);
	assert_int_equal(pthread_create(&t, NULL, loader_main, &l), 0);
	for (int k = 0; k < 50; k++) {
		b[0] = (uint8_t)k;
		wr(f, &o, (uint64_t)k * 4096, b, sizeof(b), WAFL_UNSTABLE);
		assert_int_equal(wafl_sync(f->v), 0);
	}
	atomic_store(&l.stop, 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	if (l.bad != 0)
		fail_msg("%llu of %llu inode loads failed, the last with %d",
		    (unsigned long long)l.bad, (unsigned long long)l.loads,
		    l.last_bad);
}

/* ------------------------------------------- sizes, holes, tree heights */

static void set_size(struct fx *f, const struct wafl_obj *o, uint64_t size)
{
	struct wafl_sattr sa = { .set_size = true, .size = size };
	struct wafl_attr a;

	assert_int_equal(wafl_setattr(f->v, &ROOT, o, &sa, NULL, NULL, &a), 0);
	assert_int_equal(a.size, size);
}

/* Where a step's effect must still be seen: in memory (0), after a CP
 * (1), after a crash and the NVLOG replay (2), after a remount (3). */
static void after_step(struct fx *f, int where)
{
	if (where == 1)
		assert_int_equal(wafl_sync(f->v), 0);
	else if (where == 2)
		crash_remount(f);
	else if (where == 3)
		remount(f);
}

/*
 * A truncation inside a block zeroes the rest of it, so a later extension
 * (SETATTR or a write past EOF) reads zeros there; likewise after a
 * truncation to 0.  Each step is looked at in memory, after a CP, after a
 * crash and replay and after a remount, in every combination.
 */
static void test_truncate_then_extend(void **state)
{
	struct fx *f = *state;
	static uint8_t d[3 * 4096], z[3 * 4096], want[3 * 4096];

	pattern(d, sizeof(d), 3);
	memcpy(want, d, 5000);
	for (int w1 = 0; w1 < 4; w1++) {
		for (int w2 = 0; w2 < 4; w2++) {
			char name[32];
			snprintf(name, sizeof(name), "t%d%d", w1, w2);
			struct wafl_obj o = mk_file(f, &ROOT, &f->root, name,
			    0644);
			wr(f, &o, 0, d, sizeof(d), WAFL_FILE_SYNC);
			after_step(f, w1);
			set_size(f, &o, 5000);
			after_step(f, w2);
			set_size(f, &o, sizeof(d));
			rd_check(f, &o, 0, want, sizeof(want));
			crash_remount(f);
			rd_check(f, &o, 0, want, sizeof(want));
			set_size(f, &o, 0);
			after_step(f, w1);
			set_size(f, &o, 9000);
			rd_check(f, &o, 0, z, 9000);
			after_step(f, w2);
			wr(f, &o, 8000, "x", 1, WAFL_FILE_SYNC);
			crash_remount(f);
			rd_check(f, &o, 0, z, 8000);
			rd_check(f, &o, 8000, "x", 1);
			rd_check(f, &o, 8001, z, 999);
		}
	}
}

/*
 * A snapshot taken between a truncation inside a block and a write past
 * the new EOF keeps the truncated file (its tail zeroed); the active file
 * gets the write over zeros; after a crash and replay, a truncation to 0
 * and the snapshot's deletion, the snapshot's blocks are free again and
 * an extension reads zeros.
 */
static void test_snapshot_between_truncate_and_write(void **state)
{
	struct fx *f = *state;
	static uint8_t d[5 * 4096], z[20000], want[5 * 4096];
	struct wafl_obj o = mk_file(f, &ROOT, &f->root, "s", 0644);
	struct wafl_obj sr, so;
	struct wafl_attr a, da;
	uint64_t id;

	pattern(d, sizeof(d), 4);
	wr(f, &o, 0, d, sizeof(d), WAFL_FILE_SYNC);
	set_size(f, &o, 6000);
	assert_int_equal(wafl_snap_create(f->v, "between", &id), 0);
	wr(f, &o, 10000, d, 100, WAFL_FILE_SYNC);
	memcpy(want, d, 6000);
	memcpy(want + 10000, d, 100);
	rd_check(f, &o, 0, want, 10100);
	crash_remount(f);
	rd_check(f, &o, 0, want, 10100);
	assert_int_equal(wafl_snap_root(f->v, id, &sr), 0);
	assert_int_equal(wafl_lookup(f->v, &ROOT, &sr, "s", &so, &a, &da), 0);
	assert_int_equal(a.size, 6000);
	rd_check(f, &so, 0, d, 6000);
	set_size(f, &o, 0);
	rd_check(f, &so, 0, d, 6000);
	assert_int_equal(wafl_snap_delete(f->v, "between"), 0);
	set_size(f, &o, sizeof(z));
	rd_check(f, &o, 0, z, sizeof(z));
	check_clean(f);
}

/*
 * Writes at the last and first blocks of each tree height (12 blocks in
 * the inode, then x 128 per level) up to the largest file (2^48 bytes),
 * which grow the tree by one or more levels at once; the same offsets
 * again as sizes after the file shrank to 5000 bytes (the tree keeps its
 * height), where only zeros may be read; 0-byte writes far past EOF
 * change nothing; EFBIG past the limit.
 */
static void test_height_boundaries(void **state)
{
	struct fx *f = *state;
	static const uint64_t B = 4096;
	static const uint64_t offs[] = {
		B * 11, B * 12 - 1, B * 12, B * 12 * 128 - 1, B * 12 * 128,
		B * 12 * 128 * 128 - 3, B * 12 * 128 * 128,
		B * 12 * 128 * 128 * 128,
		B * 12 * 128 * 128 * 128 * 128 - B,
		(1ull << 48) - B, (1ull << 48) - 1,
	};
	static uint8_t blk[4096], z[8192];
	enum wafl_stable got;

	pattern(blk, sizeof(blk), 9);
	for (int where = 0; where < 4; where++) {
		char name[32];
		snprintf(name, sizeof(name), "h%d", where);
		struct wafl_obj o = mk_file(f, &ROOT, &f->root, name, 0644);
		wr(f, &o, 0, blk, 100, WAFL_FILE_SYNC);
		for (size_t i = 0; i < FL_ARRAY_SIZE(offs); i++) {
			uint32_t len = (uint32_t)FL_MIN(B, (1ull << 48) -
			    offs[i]);
			wr(f, &o, offs[i], blk, len, WAFL_FILE_SYNC);
			after_step(f, where);
			rd_check(f, &o, offs[i], blk, len);
			rd_check(f, &o, 0, blk, 100);
		}
		assert_int_equal(attr_of(f, &o).size, 1ull << 48);
		assert_int_equal(wafl_write(f->v, &ROOT, &o, 1ull << 48, 1, blk,
		    WAFL_FILE_SYNC, &got, NULL, NULL), -EFBIG);
		assert_int_equal(wafl_write(f->v, &ROOT, &o, (1ull << 48) - 1,
		    2, blk, WAFL_FILE_SYNC, &got, NULL, NULL), -EFBIG);
		set_size(f, &o, 5000);
		assert_int_equal(wafl_write(f->v, &ROOT, &o, 1ull << 40, 0, blk,
		    WAFL_FILE_SYNC, &got, NULL, NULL), 0);
		after_step(f, where);
		assert_int_equal(attr_of(f, &o).size, 5000);
		rd_check(f, &o, 0, blk, 100);
		rd_check(f, &o, 100, z, 4900);
		for (size_t i = 0; i < FL_ARRAY_SIZE(offs); i++) {
			uint8_t b[16];
			uint32_t n;
			bool eof;
			set_size(f, &o, offs[i]);
			after_step(f, where);
			assert_int_equal(wafl_read(f->v, &ROOT, &o, offs[i],
			    sizeof(b), b, &n, &eof, NULL), 0);
			assert_int_equal(n, 0);
			assert_true(eof);
			if (offs[i] >= B)
				rd_check(f, &o, offs[i] - B, z, B);
		}
		set_size(f, &o, 0);
		after_step(f, where);
		check_clean(f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_root_and_getattr, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_write_read_back, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_read_runs, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_read_vec_loans, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_read_vec_misses, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_create_modes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mkdir_rmdir, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_symlink_mknod, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_link_remove, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_setattr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_permissions_access, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_readdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_statfs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_write_kills_setid,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_after_crash, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_reads, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_enospc_and_recovery,
		    setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup_thread,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_rename_file_onto_dir_order, setup_thread, teardown),
		cmocka_unit_test_setup_teardown(
		    test_rename_removed_dir_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_vec_churn,
		    setup_tiny_cache, teardown),
		cmocka_unit_test_setup_teardown(test_same_file_writers,
		    setup_thread, teardown),
		cmocka_unit_test_setup_teardown(test_cp_passes_queued_writer,
		    setup_thread, teardown),
		cmocka_unit_test_setup_teardown(test_batch_across_snapshot,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_deferred_durability, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_inode_loads_during_cps,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncate_then_extend,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_snapshot_between_truncate_and_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_height_boundaries, setup,
		    teardown),
	};
	return cmocka_run_group_tests_name("wafl ops", tests, NULL, NULL);
}
