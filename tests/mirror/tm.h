/*
 * tests/mirror/tm.h: a source and a destination in one process, talking
 * over loopback TCP, and helpers to compare their trees.  Static
 * functions: each runner includes this once.
 */
#ifndef FILER_TESTS_MIRROR_TM_H
#define FILER_TESTS_MIRROR_TM_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mirror/mirror.h"
#include "tests/lib/tl_log.h"
#include "tests/lib/tl_raid.h"
#include "tests/lib/tl_tmpdir.h"
#include "tests/lib/tl_wafl.h"

static const struct wafl_cred tm_root = { 0, 0, 0, { 0 } };

struct tm_pair {
	struct tl_fs *src;
	struct tl_fs *dst;		/* raid only: the replica is md's */
	mir_source_t *ms;
	mir_dest_t *md;
	uint8_t key[32];
	uint8_t id[16];
	uint16_t port;			/* where the source connects */
};

static __attribute__((unused)) void tm_key(uint8_t key[32], uint8_t id[16])
{
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0xa5 ^ (i * 7));
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(0x10 + i);
}

/* Source 4+1; destination 5+2 (another geometry, a larger VBN space). */
static __attribute__((unused)) struct tm_pair *tm_pair_new(void)
{
	struct tm_pair *p = calloc(1, sizeof(*p));

	p->src = tl_fs_create(4, 1, 8192, false);
	p->dst = tl_fs_create(5, 2, 8192, false);
	assert_int_equal(wafl_unmount(p->dst->v), 0);
	p->dst->v = NULL;
	tm_key(p->key, p->id);
	return p;
}

static __attribute__((unused)) void tm_dest_start(struct tm_pair *p)
{
	struct mir_dest_opts o = { .key = p->key, .key_len = sizeof(p->key),
	    .allow_baseline = true, .io_timeout_ms = 5000 };

	memcpy(o.rel_id, p->id, 16);
	assert_int_equal(mir_dest_start(p->dst->raid, &o, &p->md), 0);
	p->port = mir_dest_port(p->md);
}

static __attribute__((unused)) void tm_source_start_opts(struct tm_pair *p, enum mir_mode mode,
    uint16_t port, uint32_t retry_ms, uint64_t backlog)
{
	struct mir_source_opts o = { .key = p->key, .key_len = sizeof(p->key),
	    .host = "127.0.0.1", .port = port, .mode = mode,
	    .raid = p->src->raid, .allow_baseline = true,
	    .retry_ms = retry_ms, .io_timeout_ms = 5000,
	    .backlog_max_bytes = backlog };

	memcpy(o.rel_id, p->id, 16);
	assert_int_equal(mir_source_start(p->src->v, &o, &p->ms), 0);
}

static __attribute__((unused)) void tm_source_start(struct tm_pair *p)
{
	tm_source_start_opts(p, MIR_SYNC, p->port, 20, 0);
}

static __attribute__((unused)) void tm_pair_free(struct tm_pair *p)
{
	mir_source_stop(p->ms);
	mir_dest_stop(p->md);
	tl_fs_destroy(p->src);
	tl_fs_destroy(p->dst);
	free(p);
}

/* CP on the source, then wait until the destination serves it. */
static __attribute__((unused)) void tm_sync(struct tm_pair *p)
{
	assert_int_equal(wafl_sync(p->src->v), 0);
	uint64_t g = wafl_generation(p->src->v);
	assert_int_equal(mir_source_wait(p->ms, g, 20000), 0);
	assert_true(wafl_generation(mir_dest_volume(p->md)) >= g);
}

static __attribute__((unused)) void tm_check_clean(wafl_vol_t *v, const char *who)
{
	struct wafl_check_result r;

	assert_int_equal(wafl_check(v, &r), 0);
	if (r.errors != 0)
		fprintf(stderr, "%s: check: %llu errors: %s\n", who,
		    (unsigned long long)r.errors, r.first_error);
	assert_int_equal(r.errors, 0);
}

/* ------------------------------------------------ comparing trees */

static __attribute__((unused)) void tm_obj_equal(wafl_vol_t *a, const struct wafl_obj *oa,
    wafl_vol_t *b, const struct wafl_obj *ob, int depth);

struct tm_names {
	char names[512][64];
	uint32_t n;
};

static __attribute__((unused)) int tm_collect(void *arg, const struct wafl_dirent *de)
{
	struct tm_names *nm = arg;

	if (strcmp(de->name, ".") == 0 || strcmp(de->name, "..") == 0)
		return 0;
	assert_true(nm->n < 512);
	snprintf(nm->names[nm->n++], 64, "%s", de->name);
	return 0;
}

static __attribute__((unused)) void tm_list(wafl_vol_t *v, const struct wafl_obj *dir,
    struct tm_names *nm)
{
	bool eof = false;

	nm->n = 0;
	assert_int_equal(wafl_readdir(v, &tm_root, dir, 0, false, tm_collect,
	    nm, &eof, NULL), 0);
	assert_true(eof);
}

static __attribute__((unused)) int tm_cmpstr(const void *x, const void *y)
{
	return strcmp(x, y);
}

static __attribute__((unused)) void tm_obj_equal(wafl_vol_t *a, const struct wafl_obj *oa,
    wafl_vol_t *b, const struct wafl_obj *ob, int depth)
{
	struct wafl_attr aa, ab;

	assert_true(depth < 16);
	assert_int_equal(wafl_getattr(a, oa, &aa), 0);
	assert_int_equal(wafl_getattr(b, ob, &ab), 0);
	assert_int_equal(aa.type, ab.type);
	assert_int_equal(aa.mode, ab.mode);
	assert_int_equal(aa.nlink, ab.nlink);
	assert_int_equal(aa.size, ab.size);
	assert_int_equal(aa.fileid, ab.fileid);
	assert_int_equal(aa.gen, ab.gen);
	assert_int_equal(aa.mtime_ns, ab.mtime_ns);
	if (aa.type == WAFL_REG) {
		static uint8_t ba[65536], bb[65536];
		for (uint64_t off = 0; off < aa.size; off += sizeof(ba)) {
			uint32_t ga = 0, gb = 0;
			bool eof;
			assert_int_equal(wafl_read(a, &tm_root, oa, off,
			    sizeof(ba), ba, &ga, &eof, NULL), 0);
			assert_int_equal(wafl_read(b, &tm_root, ob, off,
			    sizeof(bb), bb, &gb, &eof, NULL), 0);
			assert_int_equal(ga, gb);
			assert_memory_equal(ba, bb, ga);
		}
	} else if (aa.type == WAFL_LNK) {
		char la[1100], lb[1100];
		size_t na = 0, nb = 0;
		assert_int_equal(wafl_readlink(a, &tm_root, oa, la, sizeof(la),
		    &na, NULL), 0);
		assert_int_equal(wafl_readlink(b, &tm_root, ob, lb, sizeof(lb),
		    &nb, NULL), 0);
		assert_int_equal(na, nb);
		assert_memory_equal(la, lb, na);
	} else if (aa.type == WAFL_DIR) {
		struct tm_names *na = calloc(1, sizeof(*na));
		struct tm_names *nb = calloc(1, sizeof(*nb));
		tm_list(a, oa, na);
		tm_list(b, ob, nb);
		assert_int_equal(na->n, nb->n);
		qsort(na->names, na->n, 64, tm_cmpstr);
		qsort(nb->names, nb->n, 64, tm_cmpstr);
		for (uint32_t i = 0; i < na->n; i++) {
			assert_string_equal(na->names[i], nb->names[i]);
			struct wafl_obj ca, cb;
			assert_int_equal(wafl_lookup(a, &tm_root, oa,
			    na->names[i], &ca, NULL, NULL), 0);
			assert_int_equal(wafl_lookup(b, &tm_root, ob,
			    nb->names[i], &cb, NULL, NULL), 0);
			tm_obj_equal(a, &ca, b, &cb, depth + 1);
		}
		free(na);
		free(nb);
	}
}

/* The active trees of a and b are equal (names, attributes, data). */
static __attribute__((unused)) void tm_tree_equal(wafl_vol_t *a, wafl_vol_t *b)
{
	struct wafl_obj ra, rb;

	assert_int_equal(wafl_root(a, &ra), 0);
	assert_int_equal(wafl_root(b, &rb), 0);
	tm_obj_equal(a, &ra, b, &rb, 0);
}

/* Snapshot `name` of a and of b are equal. */
static __attribute__((unused)) void tm_snap_equal(wafl_vol_t *a, wafl_vol_t *b, const char *name)
{
	uint64_t ia, ib;
	struct wafl_obj ra, rb;

	assert_int_equal(wafl_snap_lookup(a, name, &ia), 0);
	assert_int_equal(wafl_snap_lookup(b, name, &ib), 0);
	assert_int_equal(ia, ib);
	assert_int_equal(wafl_snap_root(a, ia, &ra), 0);
	assert_int_equal(wafl_snap_root(b, ib, &rb), 0);
	tm_obj_equal(a, &ra, b, &rb, 0);
}

/* Create or overwrite file `name` in the root directory of v. */
static __attribute__((unused)) struct wafl_obj tm_file(wafl_vol_t *v, const char *name)
{
	struct wafl_obj dir, o;

	assert_int_equal(wafl_root(v, &dir), 0);
	int rc = wafl_create(v, &tm_root, &dir, name, WAFL_UNCHECKED, NULL, 0,
	    &o, NULL, NULL);
	assert_int_equal(rc, 0);
	return o;
}

static __attribute__((unused)) void tm_write(wafl_vol_t *v, const struct wafl_obj *o, uint64_t off,
    const void *buf, uint32_t len)
{
	enum wafl_stable c;

	assert_int_equal(wafl_write(v, &tm_root, o, off, len, buf,
	    WAFL_UNSTABLE, &c, NULL, NULL), 0);
}

#endif
