/*
 * tests/nfsd/test_dir.c: listing a directory of a few thousand entries
 * with READDIR and READDIRPLUS (hand-built calls with small and large
 * counts, and libnfs's own listing) while another thread creates and
 * removes other entries: every entry present for the whole listing shows
 * up exactly once, nothing is listed twice, replies never exceed the
 * counts asked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>

#include "tests/nfsd/th_nfs.h"

#define NSTABLE	10000

static struct xb x;
static struct th_reply rp;
static uint32_t xid = 77000;

struct churn {
	wafl_vol_t *v;
	struct wafl_obj dir;
	_Atomic bool stop;
	unsigned ops;
};

static void *churn_main(void *arg)
{
	struct churn *c = arg;
	struct wafl_cred rc = { 0 };
	struct wafl_sattr sa = { .set_mode = true, .mode = 0644 };
	char name[64];

	for (unsigned i = 0; !c->stop && i < 200000; i++) {
		struct wafl_obj o;
		struct wafl_attr a;
		struct wafl_dirwcc dw;
		snprintf(name, sizeof(name), "tmp-%u", i % 300);
		if (i % 600 < 300)
			(void)wafl_create(c->v, &rc, &c->dir, name,
			    WAFL_GUARDED, &sa, 0, &o, &a, &dw);
		else
			(void)wafl_remove(c->v, &rc, &c->dir, name, &dw);
		c->ops++;
	}
	return NULL;
}

static int stable_index(const char *name, size_t len)
{
	char nm[300];
	int idx;

	snprintf(nm, sizeof(nm), "%.*s", (int)len, name);
	if (strncmp(nm, "stable-", 7) != 0 || sscanf(nm + 7, "%d", &idx) != 1 ||
	    idx < 0 || idx >= NSTABLE)
		return -1;
	return idx;
}

static void raw_list(int fd, const struct th_fh *dir, bool plus,
    uint32_t count, uint32_t dircount)
{
	static uint8_t seen[NSTABLE];
	uint64_t cookie = 0;
	uint8_t verf[8] = { 0 };
	int found = 0;
	bool eof = false;

	memset(seen, 0, sizeof(seen));
	for (int replies = 0; !eof && replies < 20000; replies++) {
		xb_call(&x, xid++, TH_NFS_PROG, 3, plus ? 17 : 16, 0, 0);
		xb_fh(&x, dir);
		xb_u64(&x, cookie);
		memcpy(x.b + x.n, verf, 8);
		x.n += 8;
		if (plus)
			xb_u32(&x, dircount);
		xb_u32(&x, count);
		th_rpc_tcp(fd, &x, &rp);
		assert_int_equal(rp.stat, 0);
		assert_int_equal(rd_u32(&rp.r), 0);
		assert_true((size_t)rp.len - 24 <= count);
		rd_post_attr(&rp.r, NULL);
		memcpy(verf, rp.r.p + rp.r.off, 8);
		rd_skip(&rp.r, 8);
		int n = 0;
		while (rd_u32(&rp.r) == 1 && !rp.r.bad) {
			uint32_t len;
			rd_u64(&rp.r);
			const uint8_t *name = rd_opaque(&rp.r, &len);
			/* Parse the name before the handle's length is read
			 * into len. */
			int idx = stable_index((const char *)name, len);
			cookie = rd_u64(&rp.r);
			if (plus) {
				uint32_t fhlen;
				rd_post_attr(&rp.r, NULL);
				if (rd_u32(&rp.r))
					rd_opaque(&rp.r, &fhlen);
			}
			if (idx >= 0) {
				assert_int_equal(seen[idx], 0);
				seen[idx] = 1;
				found++;
			}
			n++;
		}
		assert_true(n > 0);
		eof = rd_u32(&rp.r) != 0;
		assert_false(rp.r.bad);
	}
	assert_true(eof);
	assert_int_equal(found, NSTABLE);
}

static void test_big_directory_under_change(void **state)
{
	struct th t;
	struct th_fh root, dir;
	struct th_fattr a;
	struct churn c = { 0 };
	struct wafl_cred rc = { 0 };
	struct wafl_sattr sa = { .set_mode = true, .mode = 0755 };
	struct wafl_obj vr, o;
	struct wafl_attr at;
	struct wafl_dirwcc dw;
	char name[64];
	pthread_t th;

	th_start(&t);
	assert_int_equal(wafl_root(t.fs->v, &vr), 0);
	assert_int_equal(wafl_mkdir(t.fs->v, &rc, &vr, "big", &sa, &c.dir,
	    &at, &dw), 0);
	sa.mode = 0644;
	for (int i = 0; i < NSTABLE; i++) {
		snprintf(name, sizeof(name), "stable-%d", i);
		assert_int_equal(wafl_create(t.fs->v, &rc, &c.dir, name,
		    WAFL_GUARDED, &sa, 0, &o, &at, &dw), 0);
	}
	int fd = th_tcp(t.mnt_port, 0);
	assert_int_equal(th_mnt(fd, "/vol/vol0", &root), 0);
	assert_int_equal(th_lookup(fd, &root, "big", &dir, &a), 0);

	c.v = t.fs->v;
	assert_int_equal(pthread_create(&th, NULL, churn_main, &c), 0);
	raw_list(fd, &dir, false, 4096, 0);
	raw_list(fd, &dir, false, 65536, 0);
	raw_list(fd, &dir, true, 8192, 1024);
	raw_list(fd, &dir, true, 131072, 16384);

	/* libnfs's own listing (READDIRPLUS, its own counts). */
	struct nfs_context *nfs = th_nfs_mount(&t, "/vol/vol0", -1, -1, NULL,
	    0);
	assert_non_null(nfs);
	struct nfsdir *d;
	static uint8_t seen[NSTABLE];
	int found = 0;
	assert_int_equal(nfs_opendir(nfs, "/big", &d), 0);
	for (struct nfsdirent *e; (e = nfs_readdir(nfs, d)) != NULL;) {
		int idx = stable_index(e->name, strlen(e->name));
		if (idx >= 0) {
			assert_int_equal(seen[idx], 0);
			seen[idx] = 1;
			found++;
			assert_int_equal(e->type, 1);	/* NF3REG */
		}
	}
	nfs_closedir(nfs, d);
	assert_int_equal(found, NSTABLE);
	c.stop = true;
	pthread_join(th, NULL);
	assert_true(c.ops > 0);
	nfs_umount(nfs);
	nfs_destroy_context(nfs);
	close(fd);
	th_stop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_big_directory_under_change),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
