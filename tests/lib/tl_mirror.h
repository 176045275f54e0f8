/*
 * tests/lib/tl_mirror.h: two real filerds on loopback for the mirror
 * runners (tests/mirror/test_mirror_crash, tests/admin/test_mirror_cli,
 * tests/admin/test_mirror_states): a side is a home under the test's
 * scratch directory with one volume, its own NFS, MOUNT and mirror ports,
 * and the filerd started on it; libnfs clients write and read back files
 * of known contents on a side.
 *
 * Header-only (static functions) on top of tests/admin/ta.h, whose
 * program paths are the runner's own (ta_init); the runner links -lnfs.
 */
#ifndef FILER_TESTS_LIB_TL_MIRROR_H
#define FILER_TESTS_LIB_TL_MIRROR_H

#include "tests/admin/ta.h"
#include "tests/lib/tl_nfs.h"
#include "tests/lib/tl_pattern.h"
#include "tests/lib/tl_port.h"

struct tl_mirror_side {
	char home[2048];
	struct ta_daemon d;
	uint16_t nfs_port, mnt_port, mir_port;
	const char *vol;
};

static __attribute__((unused)) void tl_mirror_set(const char *home,
    const char *key, const char *val)
{
	free(ta_ctl_expect(0, home, "config", "set", key, val, NULL));
}

static __attribute__((unused)) void tl_mirror_set_u(const char *home,
    const char *key, unsigned val)
{
	char b[16];

	snprintf(b, sizeof(b), "%u", val);
	tl_mirror_set(home, key, b);
}

/*
 * Side `name` under dir: settings (key, value pairs, NULL-terminated; may
 * be NULL) first, so the volume is created with them; volume vol of 3
 * disks of size, one parity; ports[0..2] for NFS, MOUNT and the mirror;
 * no rpcbind; 4 NFS threads; no cache prefill.  filerd is not started.
 */
static __attribute__((unused)) void tl_mirror_side_init(
    struct tl_mirror_side *s, const char *dir, const char *name,
    const char *vol, const char *size, const uint16_t ports[3],
    const char *const *settings)
{
	snprintf(s->home, sizeof(s->home), "%s/%s", dir, name);
	s->vol = vol;
	s->nfs_port = ports[0];
	s->mnt_port = ports[1];
	s->mir_port = ports[2];
	for (int i = 0; settings != NULL && settings[i] != NULL; i += 2)
		tl_mirror_set(s->home, settings[i], settings[i + 1]);
	free(ta_ctl_expect(0, s->home, "vol", "create", vol, "--disks", "3",
	    "--parity", "1", "--size", size, NULL));
	tl_mirror_set_u(s->home, "nfs_port", s->nfs_port);
	tl_mirror_set_u(s->home, "mount_port", s->mnt_port);
	tl_mirror_set_u(s->home, "mirror_port", s->mir_port);
	tl_mirror_set(s->home, "nfs_rpcbind", "false");
	tl_mirror_set_u(s->home, "nfs_threads", 4);
	/* Not the block pool mapped ahead at every start (admin's
	 * test_cache_prefill tests that): these filerds restart often. */
	tl_mirror_set(s->home, "cache_prefill", "false");
}

/* The shared key both peers are given: dir/mirror.key, its path in key. */
static __attribute__((unused)) void tl_mirror_key_write(const char *dir,
    char *key, size_t keylen)
{
	FILE *f;

	snprintf(key, keylen, "%s/mirror.key", dir);
	f = fopen(key, "w");
	assert_non_null(f);
	fprintf(f, "0123456789abcdef-a-test-key-of-40-bytes!\n");
	fclose(f);
}

/* peer add on both sides: s knows d as "dst", d knows s as "src". */
static __attribute__((unused)) void tl_mirror_peers(
    const struct tl_mirror_side *s, const struct tl_mirror_side *d,
    const char *key)
{
	char a[64];

	snprintf(a, sizeof(a), "127.0.0.1:%u", d->mir_port);
	free(ta_ctl_expect(0, s->home, "peer", "add", "dst", "--address", a,
	    "--key-file", key, NULL));
	snprintf(a, sizeof(a), "127.0.0.1:%u", s->mir_port);
	free(ta_ctl_expect(0, d->home, "peer", "add", "src", "--address", a,
	    "--key-file", key, NULL));
}

/* filerctl check of the side's volume (offline or online): its exit
 * status, the output shown when it is not 0. */
static __attribute__((unused)) int tl_mirror_check(
    const struct tl_mirror_side *s)
{
	struct ta_out o = ta_ctl(s->home, "check", s->vol, NULL);
	int st = o.status;

	if (st != 0)
		fprintf(stderr, "filerctl check %s: exit %d\n%s%s\n", s->vol,
		    st, o.out, o.err);
	ta_out_free(&o);
	return st;
}

/* mirror status --json (owned). */
static __attribute__((unused)) char *tl_mirror_status(
    const struct tl_mirror_side *s)
{
	return ta_ctl_expect(0, s->home, "mirror", "status", "--json", NULL);
}

/* A number of the side's first relationship in its status: field
 * "acked_gen" is $.mirrors[0].acked_gen. */
static __attribute__((unused)) long tl_mirror_long(
    const struct tl_mirror_side *s, const char *field)
{
	char *js = tl_mirror_status(s), path[128];
	long v;

	snprintf(path, sizeof(path), "$.mirrors[0].%s", field);
	v = ta_json_long(js, path);
	free(js);
	return v;
}

/* Wait (30 s bound) until side d's first relationship is in-sync and
 * serves at least generation gen. */
static __attribute__((unused)) void tl_mirror_wait_served(
    const struct tl_mirror_side *d, long gen)
{
	char *js = NULL;

	for (int i = 0; i < 600; i++) {
		free(js);
		js = tl_mirror_status(d);
		char *st = ta_json(js, "$.mirrors[0].state");
		bool ok = st != NULL && strcmp(st, "in-sync") == 0 &&
		    ta_json_long(js, "$.mirrors[0].acked_gen") >= gen;

		free(st);
		if (ok) {
			free(js);
			return;
		}
		ta_sleep_ms(50);
	}
	fail_msg("the secondary does not serve generation %ld: %s", gen, js);
}

/* libnfs mount of the side's volume as root; NULL, with why in err. */
static __attribute__((unused)) struct nfs_context *tl_mirror_mount(
    const struct tl_mirror_side *s, int timeout_ms, char *err,
    size_t errlen)
{
	char path[64];

	snprintf(path, sizeof(path), "/vol/%s", s->vol);
	return tl_nfs_mount(path, s->nfs_port, s->mnt_port, timeout_ms, err,
	    errlen);
}

/* Side s's volume exported to 127.0.0.1, writable, no squash, any port. */
static __attribute__((unused)) void tl_mirror_export(
    const struct tl_mirror_side *s)
{
	char path[96];

	snprintf(path, sizeof(path), "/vol/%s", s->vol);
	free(ta_ctl_expect(0, s->home, "export", "add", path, "--client",
	    "127.0.0.1", "--rw", "--squash", "none", "--insecure", NULL));
}

/*
 * The two sides of a relationship under dir: the source "src" (volume
 * vsrc, disks of 64M) and the destination "dst" (vdst, disks of dst_size:
 * it may be larger), on six free ports, and the peer key written to dir
 * (tl_mirror_key_write).  filerd is not started.
 */
static __attribute__((unused)) void tl_mirror_pair_init(
    struct tl_mirror_side *s, struct tl_mirror_side *d, const char *dir,
    const char *dst_size, char *key, size_t keylen)
{
	uint16_t ports[6];

	assert_int_equal(tl_free_ports(ports, 6), 0);
	tl_mirror_side_init(s, dir, "src", "vsrc", "64M", &ports[0], NULL);
	tl_mirror_side_init(d, dir, "dst", "vdst", dst_size, &ports[3], NULL);
	tl_mirror_key_write(dir, key, keylen);
}

/* Both volumes exported, both filerds started, each the other's peer. */
static __attribute__((unused)) void tl_mirror_pair_start(
    struct tl_mirror_side *s, struct tl_mirror_side *d, const char *key)
{
	tl_mirror_export(s);
	tl_mirror_export(d);
	ta_daemon_start(&s->d, s->home);
	ta_daemon_start(&d->d, d->home);
	tl_mirror_peers(s, d, key);
}

/* A test's end: the filerds still running killed (SIGKILL: a failed
 * test may have left them anywhere), then `check` of the source and, with
 * check_d, of the destination; 0 if every check was clean. */
static __attribute__((unused)) int tl_mirror_pair_end(
    struct tl_mirror_side *s, struct tl_mirror_side *d, bool check_d)
{
	int st = 0;

	if (s->d.pid > 0)
		(void)ta_daemon_signal_wait(&s->d, SIGKILL);
	if (d->d.pid > 0)
		(void)ta_daemon_signal_wait(&d->d, SIGKILL);
	st |= tl_mirror_check(s);
	if (check_d)
		st |= tl_mirror_check(d);
	return st;
}

/*
 * Wait (40 s bound) until source s's status shows the destination
 * acknowledged the source's newest generation, at least min_gen, with
 * no lag (in CPs and in seconds: an idle mirror never lags), and says
 * in-sync; returns that generation.
 */
static __attribute__((unused)) long tl_mirror_wait_acked(
    const struct tl_mirror_side *s, long min_gen)
{
	char *js = NULL;

	for (int i = 0; i < 800; i++) {
		free(js);
		js = tl_mirror_status(s);
		long acked = ta_json_long(js, "$.mirrors[0].acked_gen");
		long src = ta_json_long(js, "$.mirrors[0].source_gen");

		if (acked >= min_gen && acked >= src) {
			assert_int_equal(ta_json_long(js,
			    "$.mirrors[0].lag_cps"), 0);
			assert_int_equal(ta_json_long(js,
			    "$.mirrors[0].lag_seconds"), 0);
			char *st = ta_json(js, "$.mirrors[0].state");
			bool in_sync = st != NULL &&
			    strcmp(st, "in-sync") == 0;
			free(st);
			if (in_sync) {
				free(js);
				return acked;
			}
		}
		ta_sleep_ms(50);
	}
	fail_msg("the destination did not acknowledge generation %ld, or "
	    "the source did not say in-sync: %s", min_gen, js);
	return 0;
}

/* ------------------------------------------------------------ clients */

#define TL_MIRROR_MIB	(1u << 20)

/* A libnfs client mounted on side s's export (5 s a call); fails the
 * test if it cannot mount. */
static __attribute__((unused)) struct nfs_context *tl_mirror_client(
    const struct tl_mirror_side *s)
{
	char err[600];
	struct nfs_context *nfs = tl_mirror_mount(s, 5000, err, sizeof(err));

	if (nfs == NULL)
		fail_msg("libnfs %s", err);
	return nfs;
}

/* A new file path of mib MiB on side s over NFS, the content of seed
 * (tl_pattern), then COMMITted. */
static __attribute__((unused)) void tl_mirror_write(
    const struct tl_mirror_side *s, const char *path, uint32_t seed,
    unsigned mib)
{
	struct nfs_context *nfs = tl_mirror_client(s);
	struct nfsfh *fh;
	uint8_t *b = malloc(TL_MIRROR_MIB);

	assert_non_null(b);
	assert_int_equal(nfs_creat(nfs, path, 0644, &fh), 0);
	for (unsigned m = 0; m < mib; m++) {
		tl_pattern_fill(b, TL_MIRROR_MIB, seed,
		    (uint64_t)m * TL_MIRROR_MIB);
		for (size_t off = 0; off < TL_MIRROR_MIB; off += 65536)
			assert_int_equal(nfs_pwrite(nfs, fh,
			    (uint64_t)m * TL_MIRROR_MIB + off, 65536, b + off),
			    65536);
	}
	assert_int_equal(nfs_fsync(nfs, fh), 0);
	assert_int_equal(nfs_close(nfs, fh), 0);
	nfs_destroy_context(nfs);
	free(b);
}

/* path on side s reads back over NFS as tl_mirror_write(s, path, seed,
 * mib) wrote it. */
static __attribute__((unused)) void tl_mirror_read_compare(
    const struct tl_mirror_side *s, const char *path, uint32_t seed,
    unsigned mib)
{
	struct nfs_context *nfs = tl_mirror_client(s);
	struct nfsfh *fh;
	uint8_t *got = malloc(TL_MIRROR_MIB);

	assert_non_null(got);
	assert_int_equal(nfs_open(nfs, path, O_RDONLY, &fh), 0);
	for (unsigned m = 0; m < mib; m++) {
		uint64_t base = (uint64_t)m * TL_MIRROR_MIB;

		for (size_t off = 0; off < TL_MIRROR_MIB; off += 65536)
			assert_int_equal(nfs_pread(nfs, fh, base + off, 65536,
			    got + off), 65536);
		assert_int_equal(tl_pattern_mismatch(got, TL_MIRROR_MIB, seed,
		    base), -1);
	}
	assert_int_equal(nfs_close(nfs, fh), 0);
	nfs_destroy_context(nfs);
	free(got);
}

#endif
