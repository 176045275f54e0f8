/*
 * tests/wafl/test_dir: the directory index (wafl/dir.h, invariants D1..D7
 * in wafl/dir.c) over an in-memory dirfile.  SipHash-2-4 reference vectors;
 * 100k names inserted, looked up and removed (random and sequential), with
 * dir_check after; duplicates; forced keys reproducing a run exactly;
 * forced hash collisions (groups spanning leaves, seq reuse, a full group);
 * keys arriving in ascending and descending order;
 * READDIR cookies under creates and removes between calls; block reads per
 * lookup at 1k and 100k entries; random corruption (every call returns 0
 * or an error, never crashes; dir_check reports structural damage).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "wafl/dir.h"

/* ------------------------------------------------------------------ */
/* An in-memory dirfile: a growable array of separately allocated blocks
 * (so modify pointers stay valid while the file grows). */

struct memdir {
	uint8_t **blk;
	uint64_t n;
	uint64_t cap;
	uint64_t reads;
	uint64_t modifies;
	int64_t fail_after;	/* modify fails when this reaches 0; -1 never */
	dir_hash_fn *hash;	/* NULL: SipHash; set for the test's duration */
	uint8_t key[16];
	struct dirfile df;
};

static int md_read(void *ctx, uint64_t fbn, void *buf)
{
	struct memdir *md = ctx;

	md->reads++;
	if (fbn < md->n && md->blk[fbn] != NULL)
		memcpy(buf, md->blk[fbn], DIR_BLOCK_SIZE);
	else
		memset(buf, 0, DIR_BLOCK_SIZE);
	return 0;
}

static int md_modify(void *ctx, uint64_t fbn, uint8_t **blk)
{
	struct memdir *md = ctx;

	md->modifies++;
	if (md->fail_after >= 0 && md->fail_after-- == 0)
		return -ENOSPC;
	if (fbn >= md->cap) {
		uint64_t cap = md->cap ? md->cap : 16;

		while (cap <= fbn)
			cap *= 2;
		md->blk = realloc(md->blk, cap * sizeof(*md->blk));
		assert_non_null(md->blk);
		memset(md->blk + md->cap, 0, (cap - md->cap) *
		    sizeof(*md->blk));
		md->cap = cap;
	}
	if (md->blk[fbn] == NULL) {
		md->blk[fbn] = calloc(1, DIR_BLOCK_SIZE);
		assert_non_null(md->blk[fbn]);
	}
	if (fbn >= md->n)
		md->n = fbn + 1;
	*blk = md->blk[fbn];
	return 0;
}

static uint64_t md_nblocks(void *ctx)
{
	return ((struct memdir *)ctx)->n;
}

/* A directory; hash (NULL: SipHash) becomes the process's name hash. */
static struct memdir *md_new(dir_hash_fn *hash)
{
	struct memdir *md = calloc(1, sizeof(*md));

	assert_non_null(md);
	for (int i = 0; i < 16; i++)
		md->key[i] = (uint8_t)(0xa5 ^ (i * 37));
	md->df.ctx = md;
	md->df.read = md_read;
	md->df.modify = md_modify;
	md->df.nblocks = md_nblocks;
	md->df.hash_key = md->key;
	md->hash = hash;
	dir_test_set_hash(hash);
	md->fail_after = -1;
	assert_int_equal(dir_init(&md->df), 0);
	return md;
}

static struct memdir *md_clone(const struct memdir *src)
{
	struct memdir *md = calloc(1, sizeof(*md));

	assert_non_null(md);
	*md = *src;
	md->df.ctx = md;
	md->df.hash_key = md->key;
	md->blk = calloc(src->cap, sizeof(*md->blk));
	assert_non_null(md->blk);
	for (uint64_t i = 0; i < src->n; i++) {
		if (src->blk[i] == NULL)
			continue;
		md->blk[i] = malloc(DIR_BLOCK_SIZE);
		assert_non_null(md->blk[i]);
		memcpy(md->blk[i], src->blk[i], DIR_BLOCK_SIZE);
	}
	return md;
}

static void md_free(struct memdir *md)
{
	for (uint64_t i = 0; i < md->n; i++)
		free(md->blk[i]);
	free(md->blk);
	free(md);
}

static bool md_equal(const struct memdir *a, const struct memdir *b)
{
	if (a->n != b->n)
		return false;
	for (uint64_t i = 0; i < a->n; i++) {
		static const uint8_t zero[DIR_BLOCK_SIZE];
		const uint8_t *x = a->blk[i] ? a->blk[i] : zero;
		const uint8_t *y = b->blk[i] ? b->blk[i] : zero;

		if (memcmp(x, y, DIR_BLOCK_SIZE) != 0)
			return false;
	}
	return true;
}

/* Header fields, at the offsets documented in dir.c. */
static uint32_t md_height(const struct memdir *md)
{
	return fl_get_le32(md->blk[0] + 24);
}

static uint64_t md_hdr_nblocks(const struct memdir *md)
{
	return fl_get_le64(md->blk[0] + 40);
}

static uint64_t md_hdr_nfree(const struct memdir *md)
{
	return fl_get_le64(md->blk[0] + 56);
}

static void md_check_clean(struct memdir *md)
{
	const char *why = NULL;
	int err = dir_check(&md->df, NULL, NULL, &why);

	if (err != 0)
		fail_msg("dir_check: %d %s", err, why ? why : "?");
}

/* ------------------------------------------------------------------ */
/* Names */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}

struct name {
	uint8_t len;
	char s[DIR_NAME_MAX + 1];
	uint64_t key;
	bool present;
};

static void name_random(struct name *nm, uint32_t i)
{
	static const char cs[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
	/* Unique: a prefix from i, then random characters; a few are long. */
	int n = snprintf(nm->s, sizeof(nm->s), "%" PRIu32 "-", i);
	int len = (rnd() % 64 == 0) ? (int)DIR_NAME_MAX : n + (int)(rnd() % 24);

	for (int k = n; k < len; k++)
		nm->s[k] = cs[rnd() % (sizeof(cs) - 1)];
	nm->s[len] = '\0';
	nm->len = (uint8_t)len;
	nm->present = false;
}

static void name_seq(struct name *nm, uint32_t i)
{
	nm->len = (uint8_t)snprintf(nm->s, sizeof(nm->s), "file%07" PRIu32, i);
	nm->present = false;
}

static struct name *names_new(uint32_t n, bool random)
{
	struct name *v = calloc(n, sizeof(*v));

	assert_non_null(v);
	for (uint32_t i = 0; i < n; i++) {
		if (random)
			name_random(&v[i], i);
		else
			name_seq(&v[i], i);
	}
	return v;
}

static uint64_t name_group(const struct memdir *md, const struct name *nm)
{
	uint64_t h = md->hash ? md->hash(md->key, nm->s, nm->len) :
	    wafl_siphash24(md->key, nm->s, nm->len);

	h >>= 8;
	return h ? h : 1;
}

static void add_ok(struct memdir *md, struct name *nm, uint64_t ino)
{
	uint64_t key = 0;
	int err = dir_add(&md->df, nm->s, nm->len, ino, (uint8_t)(ino & 7), 0,
	    &key);

	if (err != 0)
		fail_msg("dir_add %s: %d", nm->s, err);
	assert_true(key >= DIR_KEY_MIN);
	assert_true(key >> 8 == name_group(md, nm));
	nm->key = key;
	nm->present = true;
}

static void remove_ok(struct memdir *md, struct name *nm)
{
	struct dir_ent e;
	int err = dir_remove(&md->df, nm->s, nm->len, &e);

	if (err != 0)
		fail_msg("dir_remove %s: %d", nm->s, err);
	assert_true(e.key == nm->key);
	assert_int_equal(e.namelen, nm->len);
	assert_memory_equal(e.name, nm->s, nm->len + 1u);
	nm->present = false;
}

static void lookup_ok(struct memdir *md, const struct name *nm, uint64_t ino)
{
	struct dir_ent e;
	int err = dir_lookup(&md->df, nm->s, nm->len, &e);

	if (err != 0)
		fail_msg("dir_lookup %s: %d", nm->s, err);
	assert_true(e.key == nm->key);
	assert_true(e.ino == ino);
	assert_int_equal(e.type, ino & 7);
	assert_int_equal(e.namelen, nm->len);
	assert_string_equal(e.name, nm->s);
}

static void count_is(struct memdir *md, uint64_t want)
{
	uint64_t c = ~0ull;

	assert_int_equal(dir_count(&md->df, &c), 0);
	assert_true(c == want);
}

/* Iterate everything, checking key order; returns the number listed. */
struct collect {
	uint64_t n;
	uint64_t last;
	uint64_t *keys;		/* optional, room for cap */
	uint64_t cap;
	uint64_t limit;		/* stop (return 1) after this many; 0 = all */
};

static int collect_fn(void *arg, const struct dir_ent *e)
{
	struct collect *c = arg;

	if (c->limit != 0 && c->n >= c->limit)
		return 1;
	assert_true(e->key > c->last);
	assert_true(e->key >= DIR_KEY_MIN);
	assert_int_equal(e->name[e->namelen], 0);
	c->last = e->key;
	if (c->keys != NULL && c->n < c->cap)
		c->keys[c->n] = e->key;
	c->n++;
	return 0;
}

static uint64_t list_all(struct memdir *md)
{
	struct collect c = { 0 };

	assert_int_equal(dir_iterate(&md->df, 0, collect_fn, &c), 0);
	return c.n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Every present name's key, sorted. */
static uint64_t present_keys(const struct name *v, uint32_t n, uint64_t *out)
{
	uint64_t k = 0;

	for (uint32_t i = 0; i < n; i++)
		if (v[i].present)
			out[k++] = v[i].key;
	qsort(out, k, sizeof(*out), cmp_u64);
	return k;
}

/* A weak hash for collision tests: only 3 bits of group. */
static uint64_t weak_hash(const uint8_t *key, const void *name, size_t len)
{
	const uint8_t *p = name;
	uint32_t h = 0;

	for (size_t i = 0; i < len; i++)
		h = h * 31 + p[i];
	return (uint64_t)(h % 7 + 1) << 8;	/* groups 1..7 */
}

/* ------------------------------------------------------------------ */
/* Tests */

static void test_siphash_vectors(void **state)
{
	/* SipHash-2-4 reference vectors (paper, Appendix A, and vectors.h of
	 * the reference implementation): key 00..0f, message 00..len-1. */
	static const uint8_t want[64][8] = {
	{ 0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72 },
	{ 0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74 },
	{ 0x5a, 0x4f, 0xa9, 0xd9, 0x09, 0x80, 0x6c, 0x0d },
	{ 0x2d, 0x7e, 0xfb, 0xd7, 0x96, 0x66, 0x67, 0x85 },
	{ 0xb7, 0x87, 0x71, 0x27, 0xe0, 0x94, 0x27, 0xcf },
	{ 0x8d, 0xa6, 0x99, 0xcd, 0x64, 0x55, 0x76, 0x18 },
	{ 0xce, 0xe3, 0xfe, 0x58, 0x6e, 0x46, 0xc9, 0xcb },
	{ 0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab },
	{ 0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93 },
	{ 0xb0, 0xe4, 0xa9, 0x0b, 0xdf, 0x82, 0x00, 0x9e },
	{ 0xf3, 0xb9, 0xdd, 0x94, 0xc5, 0xbb, 0x5d, 0x7a },
	{ 0xa7, 0xad, 0x6b, 0x22, 0x46, 0x2f, 0xb3, 0xf4 },
	{ 0xfb, 0xe5, 0x0e, 0x86, 0xbc, 0x8f, 0x1e, 0x75 },
	{ 0x90, 0x3d, 0x84, 0xc0, 0x27, 0x56, 0xea, 0x14 },
	{ 0xee, 0xf2, 0x7a, 0x8e, 0x90, 0xca, 0x23, 0xf7 },
	{ 0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1 },
	{ 0xdb, 0x9b, 0xc2, 0x57, 0x7f, 0xcc, 0x2a, 0x3f },
	{ 0x94, 0x47, 0xbe, 0x2c, 0xf5, 0xe9, 0x9a, 0x69 },
	{ 0x9c, 0xd3, 0x8d, 0x96, 0xf0, 0xb3, 0xc1, 0x4b },
	{ 0xbd, 0x61, 0x79, 0xa7, 0x1d, 0xc9, 0x6d, 0xbb },
	{ 0x98, 0xee, 0xa2, 0x1a, 0xf2, 0x5c, 0xd6, 0xbe },
	{ 0xc7, 0x67, 0x3b, 0x2e, 0xb0, 0xcb, 0xf2, 0xd0 },
	{ 0x88, 0x3e, 0xa3, 0xe3, 0x95, 0x67, 0x53, 0x93 },
	{ 0xc8, 0xce, 0x5c, 0xcd, 0x8c, 0x03, 0x0c, 0xa8 },
	{ 0x94, 0xaf, 0x49, 0xf6, 0xc6, 0x50, 0xad, 0xb8 },
	{ 0xea, 0xb8, 0x85, 0x8a, 0xde, 0x92, 0xe1, 0xbc },
	{ 0xf3, 0x15, 0xbb, 0x5b, 0xb8, 0x35, 0xd8, 0x17 },
	{ 0xad, 0xcf, 0x6b, 0x07, 0x63, 0x61, 0x2e, 0x2f },
	{ 0xa5, 0xc9, 0x1d, 0xa7, 0xac, 0xaa, 0x4d, 0xde },
	{ 0x71, 0x65, 0x95, 0x87, 0x66, 0x50, 0xa2, 0xa6 },
	{ 0x28, 0xef, 0x49, 0x5c, 0x53, 0xa3, 0x87, 0xad },
	{ 0x42, 0xc3, 0x41, 0xd8, 0xfa, 0x92, 0xd8, 0x32 },
	{ 0xce, 0x7c, 0xf2, 0x72, 0x2f, 0x51, 0x27, 0x71 },
	{ 0xe3, 0x78, 0x59, 0xf9, 0x46, 0x23, 0xf3, 0xa7 },
	{ 0x38, 0x12, 0x05, 0xbb, 0x1a, 0xb0, 0xe0, 0x12 },
	{ 0xae, 0x97, 0xa1, 0x0f, 0xd4, 0x34, 0xe0, 0x15 },
	{ 0xb4, 0xa3, 0x15, 0x08, 0xbe, 0xff, 0x4d, 0x31 },
	{ 0x81, 0x39, 0x62, 0x29, 0xf0, 0x90, 0x79, 0x02 },
	{ 0x4d, 0x0c, 0xf4, 0x9e, 0xe5, 0xd4, 0xdc, 0xca },
	{ 0x5c, 0x73, 0x33, 0x6a, 0x76, 0xd8, 0xbf, 0x9a },
	{ 0xd0, 0xa7, 0x04, 0x53, 0x6b, 0xa9, 0x3e, 0x0e },
	{ 0x92, 0x59, 0x58, 0xfc, 0xd6, 0x42, 0x0c, 0xad },
	{ 0xa9, 0x15, 0xc2, 0x9b, 0xc8, 0x06, 0x73, 0x18 },
	{ 0x95, 0x2b, 0x79, 0xf3, 0xbc, 0x0a, 0xa6, 0xd4 },
	{ 0xf2, 0x1d, 0xf2, 0xe4, 0x1d, 0x45, 0x35, 0xf9 },
	{ 0x87, 0x57, 0x75, 0x19, 0x04, 0x8f, 0x53, 0xa9 },
	{ 0x10, 0xa5, 0x6c, 0xf5, 0xdf, 0xcd, 0x9a, 0xdb },
	{ 0xeb, 0x75, 0x09, 0x5c, 0xcd, 0x98, 0x6c, 0xd0 },
	{ 0x51, 0xa9, 0xcb, 0x9e, 0xcb, 0xa3, 0x12, 0xe6 },
	{ 0x96, 0xaf, 0xad, 0xfc, 0x2c, 0xe6, 0x66, 0xc7 },
	{ 0x72, 0xfe, 0x52, 0x97, 0x5a, 0x43, 0x64, 0xee },
	{ 0x5a, 0x16, 0x45, 0xb2, 0x76, 0xd5, 0x92, 0xa1 },
	{ 0xb2, 0x74, 0xcb, 0x8e, 0xbf, 0x87, 0x87, 0x0a },
	{ 0x6f, 0x9b, 0xb4, 0x20, 0x3d, 0xe7, 0xb3, 0x81 },
	{ 0xea, 0xec, 0xb2, 0xa3, 0x0b, 0x22, 0xa8, 0x7f },
	{ 0x99, 0x24, 0xa4, 0x3c, 0xc1, 0x31, 0x57, 0x24 },
	{ 0xbd, 0x83, 0x8d, 0x3a, 0xaf, 0xbf, 0x8d, 0xb7 },
	{ 0x0b, 0x1a, 0x2a, 0x32, 0x65, 0xd5, 0x1a, 0xea },
	{ 0x13, 0x50, 0x79, 0xa3, 0x23, 0x1c, 0xe6, 0x60 },
	{ 0x93, 0x2b, 0x28, 0x46, 0xe4, 0xd7, 0x06, 0x66 },
	{ 0xe1, 0x91, 0x5f, 0x5c, 0xb1, 0xec, 0xa4, 0x6c },
	{ 0xf3, 0x25, 0x96, 0x5c, 0xa1, 0x6d, 0x62, 0x9f },
	{ 0x57, 0x5f, 0xf2, 0x8e, 0x60, 0x38, 0x1b, 0xe5 },
	{ 0x72, 0x45, 0x06, 0xeb, 0x4c, 0x32, 0x8a, 0x95 }
	};
	uint8_t key[16], msg[64];

	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	for (size_t len = 0; len < 64; len++)
		assert_true(wafl_siphash24(key, msg, len) ==
		    fl_get_le64(want[len]));
	/* The paper's worked example: 15 bytes -> a129ca6149be45e5. */
	assert_true(wafl_siphash24(key, msg, 15) == 0xa129ca6149be45e5ull);
}

static void test_basics(void **state)
{
	struct memdir *md = md_new(NULL);
	char longname[DIR_NAME_MAX + 2];
	struct dir_ent e;
	struct collect c = { 0 };
	uint64_t key, key2;
	const char *why = "x";

	/* Empty directory. */
	count_is(md, 0);
	assert_int_equal(list_all(md), 0);
	assert_int_equal(dir_check(&md->df, NULL, NULL, &why), 0);
	assert_null(why);
	assert_int_equal(dir_lookup(&md->df, "a", 1, &e), -ENOENT);
	assert_int_equal(dir_remove(&md->df, "a", 1, NULL), -ENOENT);

	/* Name lengths. */
	memset(longname, 'x', sizeof(longname));
	assert_int_equal(dir_add(&md->df, "", 0, 1, 0, 0, &key), -EINVAL);
	assert_int_equal(dir_lookup(&md->df, "", 0, &e), -EINVAL);
	assert_int_equal(dir_remove(&md->df, "", 0, &e), -EINVAL);
	assert_int_equal(dir_add(&md->df, longname, DIR_NAME_MAX + 1, 1, 0, 0,
	    &key), -ENAMETOOLONG);
	assert_int_equal(dir_lookup(&md->df, longname, DIR_NAME_MAX + 1, &e),
	    -ENAMETOOLONG);
	assert_int_equal(dir_add(&md->df, longname, DIR_NAME_MAX, 7, 4, 0,
	    &key), 0);
	assert_int_equal(dir_lookup(&md->df, longname, DIR_NAME_MAX, &e), 0);
	assert_int_equal(e.namelen, DIR_NAME_MAX);
	assert_int_equal(e.name[DIR_NAME_MAX], '\0');
	assert_true(e.ino == 7 && e.type == 4 && e.key == key);

	/* Duplicates. */
	assert_int_equal(dir_add(&md->df, "a", 1, 2, 1, 0, &key), 0);
	assert_int_equal(dir_add(&md->df, "a", 1, 3, 1, 0, &key2), -EEXIST);
	assert_int_equal(dir_add(&md->df, "a", 1, 3, 1, key, &key2), -EEXIST);
	count_is(md, 2);
	/* A forced key must carry the name's hash. */
	assert_int_equal(dir_add(&md->df, "b", 1, 3, 1, key, &key2),
	    -FL_ECORRUPT);
	assert_int_equal(dir_add(&md->df, "b", 1, 3, 1, 5, &key2),
	    -FL_ECORRUPT);
	/* A forced key of a free seq in the right group is taken as is. */
	assert_int_equal(dir_remove(&md->df, "a", 1, &e), 0);
	assert_true(e.key == key && e.ino == 2);
	assert_int_equal(dir_add(&md->df, "a", 1, 2, 1, key | 9, &key2), 0);
	assert_true(key2 == (key | 9));
	assert_int_equal(dir_lookup(&md->df, "a", 1, &e), 0);
	assert_true(e.key == (key | 9));
	/* The same name with another key is still a duplicate. */
	assert_int_equal(dir_add(&md->df, "a", 1, 2, 1, key, &key2), -EEXIST);

	/* Cookies: none after the largest possible key. */
	assert_int_equal(dir_iterate(&md->df, UINT64_MAX, collect_fn, &c), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(list_all(md), 2);
	md_check_clean(md);
	md_free(md);

	/* An uninitialised directory is corrupt, not a crash. */
	md = calloc(1, sizeof(*md));
	assert_non_null(md);
	md->fail_after = -1;
	md->df = (struct dirfile){ .ctx = md, .read = md_read,
	    .modify = md_modify, .nblocks = md_nblocks, .hash_key = md->key };
	assert_int_equal(dir_lookup(&md->df, "a", 1, &e), -FL_ECORRUPT);
	assert_int_equal(dir_add(&md->df, "a", 1, 1, 1, 0, NULL),
	    -FL_ECORRUPT);
	assert_int_equal(dir_check(&md->df, NULL, NULL, &why), -FL_ECORRUPT);
	assert_non_null(why);
	md_free(md);
}

static uint64_t reads_per_lookup(struct memdir *md, struct name *v,
    uint32_t n, uint64_t *maxp)
{
	uint64_t total = 0, max = 0;

	for (int k = 0; k < 200; k++) {
		struct name *nm = &v[rnd() % n];
		uint64_t before = md->reads;
		struct dir_ent e;

		if (!nm->present)
			continue;
		assert_int_equal(dir_lookup(&md->df, nm->s, nm->len, &e), 0);
		total += md->reads - before;
		if (md->reads - before > max)
			max = md->reads - before;
	}
	*maxp = max;
	return total;
}

static int count_fn(void *arg, const struct dir_ent *e)
{
	(*(uint64_t *)arg)++;
	return 0;
}

/* 100k names: insert, look up, list, remove half, remove all, reuse. */
static void run_100k(bool random)
{
	const uint32_t N = 100000;
	struct memdir *md = md_new(NULL);
	struct name *v = names_new(N, random);
	uint64_t *keys = calloc(N, sizeof(*keys));
	uint32_t *order = calloc(N, sizeof(*order));
	struct collect c = { 0 };
	uint64_t nk, fncount = 0, nblocks_full;

	assert_non_null(keys);
	assert_non_null(order);
	for (uint32_t i = 0; i < N; i++) {
		add_ok(md, &v[i], i + 1000);
		if (random && (i + 1 == 1000 || i + 1 == 10000 ||
		    i + 1 == N)) {
			uint64_t max, r0 = md->reads, m0 = md->modifies;
			uint64_t tot = reads_per_lookup(md, v, i + 1, &max);
			uint32_t h = md_height(md);
			struct name extra;

			/* One lookup = the header + one block per level. */
			assert_true(max == h + 1);
			r0 = md->reads;
			m0 = md->modifies;
			name_random(&extra, N + 1);
			add_ok(md, &extra, 1);
			printf("  %6" PRIu32 " entries: height %" PRIu32
			    ", lookup reads avg %.2f max %" PRIu64
			    "; add reads %" PRIu64 " modifies %" PRIu64 "\n",
			    i + 1, h, tot / 200.0, max, md->reads - r0,
			    md->modifies - m0);
			remove_ok(md, &extra);
		}
	}
	count_is(md, N);
	/* Keys unique, listed once each in key order. */
	nk = present_keys(v, N, keys);
	assert_true(nk == N);
	for (uint32_t i = 1; i < N; i++)
		assert_true(keys[i] > keys[i - 1]);
	c.keys = calloc(N, sizeof(uint64_t));
	c.cap = N;
	assert_non_null(c.keys);
	assert_int_equal(dir_iterate(&md->df, 0, collect_fn, &c), 0);
	assert_true(c.n == N);
	assert_memory_equal(c.keys, keys, N * sizeof(uint64_t));
	free(c.keys);
	assert_int_equal(dir_check(&md->df, count_fn, &fncount, NULL), 0);
	assert_true(fncount == N);
	for (uint32_t i = 0; i < N; i++)
		lookup_ok(md, &v[i], i + 1000);

	/* Remove half, in random order (sequential: in name order). */
	for (uint32_t i = 0; i < N; i++)
		order[i] = i;
	if (random) {
		for (uint32_t i = N - 1; i > 0; i--) {
			uint32_t j = (uint32_t)(rnd() % (i + 1)), t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
	}
	for (uint32_t i = 0; i < N / 2; i++)
		remove_ok(md, &v[order[i]]);
	count_is(md, N - N / 2);
	md_check_clean(md);
	for (uint32_t i = 0; i < N; i++) {
		struct dir_ent e;

		if (v[i].present)
			lookup_ok(md, &v[i], i + 1000);
		else
			assert_int_equal(dir_lookup(&md->df, v[i].s, v[i].len,
			    &e), -ENOENT);
	}
	assert_true(list_all(md) == N - N / 2);
	assert_int_equal(dir_remove(&md->df, v[order[0]].s, v[order[0]].len,
	    NULL), -ENOENT);

	/* Remove the rest: the tree shrinks to one empty leaf. */
	for (uint32_t i = N / 2; i < N; i++)
		remove_ok(md, &v[order[i]]);
	count_is(md, 0);
	assert_int_equal(list_all(md), 0);
	md_check_clean(md);
	assert_int_equal(md_height(md), 1);
	nblocks_full = md_hdr_nblocks(md);
	assert_true(md_hdr_nfree(md) == nblocks_full - 2);

	/* Insert again: freed nodes are reused before the file grows. */
	for (uint32_t i = 0; i < (random ? N : N / 10); i++)
		add_ok(md, &v[i], i + 1000);
	md_check_clean(md);
	assert_true(md_hdr_nblocks(md) <= nblocks_full + nblocks_full / 10);
	printf("  %s: %" PRIu64 " blocks for %" PRIu32 " entries; emptied "
	    "and refilled with %" PRIu32 ": %" PRIu64 " blocks (%" PRIu64
	    " free)\n", random ? "random names" : "sequential names",
	    nblocks_full, N, random ? N : N / 10, md_hdr_nblocks(md),
	    md_hdr_nfree(md));
	free(order);
	free(keys);
	free(v);
	md_free(md);
}

static void test_100k_random(void **state)
{
	run_100k(true);
}

static void test_100k_sequential(void **state)
{
	run_100k(false);
}

/* A hash that is the name's number: keys in name order. */
static uint64_t number_hash(const uint8_t *key, const void *name, size_t len)
{
	char s[32];

	memcpy(s, name, FL_MIN(len, sizeof(s) - 1));
	s[FL_MIN(len, sizeof(s) - 1)] = '\0';
	return (strtoull(s + 4, NULL, 10) + 1) << 8;
}

/* Keys arriving in ascending and in descending order (the split edges). */
static void test_ordered_keys(void **state)
{
	const uint32_t N = 20000;
	struct name *v = names_new(N, false);

	for (int dirn = 0; dirn < 2; dirn++) {
		struct memdir *md = md_new(number_hash);

		for (uint32_t k = 0; k < N; k++) {
			uint32_t i = dirn == 0 ? k : N - 1 - k;

			add_ok(md, &v[i], i);
			assert_true(v[i].key == ((uint64_t)i + 1) << 8);
		}
		md_check_clean(md);
		assert_true(list_all(md) == N);
		for (uint32_t i = 0; i < N; i++)
			lookup_ok(md, &v[i], i);
		printf("  %s keys: %" PRIu64 " blocks for %" PRIu32
		    " entries, height %" PRIu32 "\n",
		    dirn == 0 ? "ascending" : "descending",
		    md_hdr_nblocks(md), N, md_height(md));
		/* Remove every other one, then the rest. */
		for (uint32_t i = 0; i < N; i += 2)
			remove_ok(md, &v[i]);
		md_check_clean(md);
		for (uint32_t i = 1; i < N; i += 2)
			remove_ok(md, &v[i]);
		count_is(md, 0);
		md_check_clean(md);
		assert_int_equal(md_height(md), 1);
		md_free(md);
	}
	free(v);
}

/* A name (from a counter) whose weak hash group is grp. */
static void name_in_group(struct memdir *md, struct name *nm, uint64_t grp,
    uint32_t *ctr, bool longname)
{
	for (;;) {
		int n = snprintf(nm->s, sizeof(nm->s), "g%" PRIu32 "-",
		    (*ctr)++);

		if (longname) {
			memset(nm->s + n, 'L', DIR_NAME_MAX - n);
			n = DIR_NAME_MAX;
			nm->s[n] = '\0';
		}
		nm->len = (uint8_t)n;
		nm->present = false;
		if (name_group(md, nm) == grp)
			return;
	}
}

/* Forced collisions: groups of 256 names spanning many leaves. */
static void test_collisions(void **state)
{
	const uint32_t G = 7, N = 256 * 7;
	struct memdir *md = md_new(weak_hash);
	struct name *v = calloc(N + 8, sizeof(*v));
	uint64_t *keys = calloc(N, sizeof(*keys));
	uint32_t ctr = 0, k = 0;
	struct name extra;
	uint64_t key;

	assert_non_null(v);
	assert_non_null(keys);
	/* Fill every group: seq takes 0, 1, 2, ... */
	for (uint64_t g = 1; g <= G; g++) {
		for (uint32_t s = 0; s < 256; s++, k++) {
			name_in_group(md, &v[k], g, &ctr, (k % 3) == 0);
			add_ok(md, &v[k], k);
			assert_true(v[k].key == (g << 8 | s));
		}
		/* The 257th name of a group has no seq left. */
		name_in_group(md, &extra, g, &ctr, false);
		assert_int_equal(dir_add(&md->df, extra.s, extra.len, 1, 1, 0,
		    &key), -ENOSPC);
	}
	count_is(md, N);
	md_check_clean(md);
	assert_true(md_height(md) >= 2);
	for (uint32_t i = 0; i < N; i++)
		lookup_ok(md, &v[i], i);
	assert_true(list_all(md) == N);

	/* A removed seq is the next one given in its group. */
	remove_ok(md, &v[3 * 256 + 200]);
	remove_ok(md, &v[3 * 256 + 5]);
	name_in_group(md, &extra, 4, &ctr, true);
	add_ok(md, &extra, 9);
	assert_true(extra.key == (4ull << 8 | 5));
	name_in_group(md, &extra, 4, &ctr, false);
	add_ok(md, &extra, 9);
	assert_true(extra.key == (4ull << 8 | 200));
	md_check_clean(md);

	/* Remove everything, group by group from the middle. */
	for (uint32_t i = 0; i < N; i++) {
		uint32_t j = (i * 977) % N;

		if (v[j].present)
			remove_ok(md, &v[j]);
	}
	count_is(md, 2);
	md_check_clean(md);
	free(keys);
	free(v);
	md_free(md);
}

/* Replay: the keys a run handed out, forced in the same order, rebuild
 * the same directory block for block. */
static void test_replay(void **state)
{
	const uint32_t POOL = 1200, OPS = 6000;
	struct memdir *a = md_new(weak_hash), *b = md_new(weak_hash);
	struct name *v = names_new(POOL, true);
	struct { uint32_t idx; uint64_t key; bool add; } *log;
	uint64_t key;

	log = calloc(OPS, sizeof(*log));
	assert_non_null(log);
	for (uint32_t i = 0; i < OPS; i++) {
		uint32_t j = (uint32_t)(rnd() % POOL);

		log[i].idx = j;
		log[i].add = !v[j].present;
		if (log[i].add)
			add_ok(a, &v[j], j);
		else
			remove_ok(a, &v[j]);
		log[i].key = v[j].key;
	}
	md_check_clean(a);
	for (uint32_t i = 0; i < OPS; i++) {
		struct name *nm = &v[log[i].idx];

		if (log[i].add) {
			assert_int_equal(dir_add(&b->df, nm->s, nm->len,
			    log[i].idx, (uint8_t)(log[i].idx & 7), log[i].key,
			    &key), 0);
			assert_true(key == log[i].key);
		} else {
			assert_int_equal(dir_remove(&b->df, nm->s, nm->len,
			    NULL), 0);
		}
	}
	assert_true(md_equal(a, b));
	md_check_clean(b);
	/* Replaying an add twice is refused. */
	for (uint32_t i = OPS; i-- > 0;) {
		struct name *nm = &v[log[i].idx];

		if (log[i].add && nm->present && nm->key == log[i].key) {
			assert_int_equal(dir_add(&b->df, nm->s, nm->len, 1, 1,
			    log[i].key, &key), -EEXIST);
			break;
		}
	}
	free(log);
	free(v);
	md_free(a);
	md_free(b);
}

/*
 * READDIR under change: list in small batches, resuming at the last key
 * taken; between batches, remove some entries and add new ones.  Every
 * entry present for the whole listing is returned exactly once, no name
 * twice, keys strictly increasing.
 */
static void run_iterate_changing(dir_hash_fn *hash, uint32_t n0,
    uint32_t extra, uint32_t batch)
{
	struct memdir *md = md_new(hash);
	uint32_t total = n0 + extra, next_new = n0, calls = 0;
	struct name *v = names_new(total, true);
	uint8_t *seen = calloc(total, 1);
	bool *removed = calloc(total, sizeof(bool));
	uint64_t cookie = 0, *keys = calloc(batch, sizeof(uint64_t));
	int rc;

	assert_non_null(seen);
	assert_non_null(removed);
	assert_non_null(keys);
	for (uint32_t i = 0; i < n0; i++)
		add_ok(md, &v[i], i);
	do {
		struct collect c = { .last = cookie, .keys = keys,
		    .cap = batch, .limit = batch };

		rc = dir_iterate(&md->df, cookie, collect_fn, &c);
		assert_true(rc == 0 || rc == 1);
		assert_true(c.n <= batch);
		for (uint64_t k = 0; k < c.n; k++) {
			struct dir_ent e;
			uint32_t i;

			/* Find the name by key (a key is one entry at a
			 * time; look it up through the listing order). */
			for (i = 0; i < next_new; i++)
				if (v[i].present && v[i].key == keys[k])
					break;
			assert_true(i < next_new);
			assert_int_equal(dir_lookup(&md->df, v[i].s, v[i].len,
			    &e), 0);
			assert_int_equal(seen[i], 0);
			seen[i] = 1;
		}
		if (c.n > 0)
			cookie = keys[c.n - 1];
		calls++;
		/* Change the directory between calls. */
		for (int r = 0; r < 3; r++) {
			uint32_t j = (uint32_t)(rnd() % next_new);

			if (v[j].present) {
				remove_ok(md, &v[j]);
				removed[j] = true;
			}
		}
		for (int r = 0; r < 3 && next_new < total; r++, next_new++)
			add_ok(md, &v[next_new], next_new);
	} while (rc == 1);
	for (uint32_t i = 0; i < n0; i++)
		if (!removed[i])
			assert_int_equal(seen[i], 1);
	printf("  %" PRIu32 " entries listed in %" PRIu32 " calls while "
	    "changing\n", n0, calls);
	md_check_clean(md);
	free(keys);
	free(removed);
	free(seen);
	free(v);
	md_free(md);
}

static void test_iterate_changing(void **state)
{
	run_iterate_changing(NULL, 5000, 3000, 40);
	run_iterate_changing(weak_hash, 1200, 500, 7);
}

/* Blocks 0..a->n-1 of b equal a's (b may have grown). */
static bool md_prefix_equal(const struct memdir *a, const struct memdir *b)
{
	for (uint64_t i = 0; i < a->n; i++) {
		if (a->blk[i] == NULL)
			continue;
		if (i >= b->n || memcmp(a->blk[i], b->blk[i],
		    DIR_BLOCK_SIZE) != 0)
			return false;
	}
	return true;
}

/*
 * A failed modify (space, I/O) at any point of an add or a remove leaves
 * the directory exactly as it was; the same call then succeeds.  Long names
 * make splits and emptied leaves frequent.
 */
static void test_modify_failure(void **state)
{
	const uint32_t N = 2000;
	struct memdir *md = md_new(NULL);
	struct name *v = calloc(N, sizeof(*v));
	uint32_t failures = 0;

	assert_non_null(v);
	for (uint32_t i = 0; i < N; i++) {
		name_random(&v[i], i);
		if (v[i].len < 200)
			memset(v[i].s + v[i].len, 'y', 200u - v[i].len);
		v[i].len = 200;
		v[i].s[200] = '\0';
	}
	for (uint32_t op = 0; op < 4 * N; op++) {
		struct name *nm = &v[op < N ? op : rnd() % N];
		bool add = !nm->present;

		/* One op in 4: fail at every modify in turn, then succeed. */
		struct memdir *snap = op % 4 == 0 ? md_clone(md) : NULL;

		for (int64_t k = snap != NULL ? 0 : -1;; k++) {
			uint64_t key = 0;
			int rc;

			md->fail_after = k;
			rc = add ? dir_add(&md->df, nm->s, nm->len, op, 1, 0,
			    &key) : dir_remove(&md->df, nm->s, nm->len, NULL);
			md->fail_after = -1;
			if (rc == 0) {
				nm->present = add;
				nm->key = key;
				break;
			}
			assert_int_equal(rc, -ENOSPC);
			assert_non_null(snap);
			assert_true(md_prefix_equal(snap, md));
			failures++;
		}
		if (snap != NULL)
			md_free(snap);
		if (op % 500 == 0)
			md_check_clean(md);
	}
	md_check_clean(md);
	printf("  %" PRIu32 " injected modify failures, directory unchanged "
	    "by each\n", failures);
	free(v);
	md_free(md);
}

/* Every call on a damaged directory returns 0 or an error. */
static bool rc_ok(int rc)
{
	return rc == 0 || rc == -ENOENT || rc == -EEXIST ||
	    rc == -FL_ECORRUPT || rc == -ENOSPC;
}

static uint32_t corrupt_ops(struct memdir *md, struct name *v, uint32_t n,
    uint32_t *ctr)
{
	struct collect c = { .last = 0 };
	struct dir_ent e;
	uint64_t cnt, key;
	struct name nm;
	uint32_t bad = 0;
	int rc;

	for (int k = 0; k < 20; k++) {
		struct name *x = &v[rnd() % n];

		rc = dir_lookup(&md->df, x->s, x->len, &e);
		assert_true(rc_ok(rc));
		bad += rc == -FL_ECORRUPT;
	}
	for (int k = 0; k < 6; k++) {
		name_random(&nm, 1000000 + (*ctr)++);
		rc = dir_add(&md->df, nm.s, nm.len, 1, 1, 0, &key);
		assert_true(rc_ok(rc));
		bad += rc == -FL_ECORRUPT;
		struct name *x = &v[rnd() % n];
		rc = dir_remove(&md->df, x->s, x->len, &e);
		assert_true(rc_ok(rc));
		bad += rc == -FL_ECORRUPT;
	}
	/* Listing: keys must still come out strictly increasing. */
	rc = dir_iterate(&md->df, 0, collect_fn, &c);
	assert_true(rc_ok(rc));
	rc = dir_count(&md->df, &cnt);
	assert_true(rc_ok(rc));
	rc = dir_check(&md->df, NULL, NULL, NULL);
	assert_true(rc == 0 || rc == -FL_ECORRUPT);
	return bad;
}

static void test_corruption(void **state)
{
	const uint32_t N = 6000, ROUNDS = 1000;
	struct memdir *base = md_new(NULL);
	struct name *v = names_new(N, true);
	uint32_t ctr = 0, detected = 0, clean = 0, present = 0;
	uint64_t nblocks;

	for (uint32_t i = 0; i < N; i++)
		add_ok(base, &v[i], i);
	/* Empty a quarter of the key space so the free list has nodes. */
	for (uint32_t i = 0; i < N; i++) {
		if (v[i].key < (1ull << 62))
			remove_ok(base, &v[i]);
		present += v[i].present;
	}
	md_check_clean(base);
	assert_true(md_hdr_nfree(base) > 0);
	nblocks = base->n;

	/* A wrong magic in any block, and a changed name byte in any leaf,
	 * is reported. */
	for (uint64_t b = 0; b < nblocks; b++) {
		struct memdir *md = md_clone(base);
		const char *why = NULL;

		md->blk[b][1] ^= 0x20;
		assert_int_equal(dir_check(&md->df, NULL, NULL, &why),
		    -FL_ECORRUPT);
		assert_non_null(why);
		corrupt_ops(md, v, N, &ctr);
		md_free(md);
		if (memcmp(base->blk[b], "FLRDIRL1", 8) == 0 &&
		    fl_get_le16(base->blk[b] + 18) > 0) {
			md = md_clone(base);
			md->blk[b][32 + 18] ^= 0x01;
			assert_int_equal(dir_check(&md->df, NULL, NULL, &why),
			    -FL_ECORRUPT);
			md_free(md);
		}
	}

	/* Random damage: flipped bytes, random blocks, misplaced blocks. */
	for (uint32_t r = 0; r < ROUNDS; r++) {
		struct memdir *md = md_clone(base);
		uint64_t b = rnd() % nblocks;
		int kind = (int)(rnd() % 10);
		const char *why = NULL;
		int rc;

		if (kind == 0) {
			for (uint32_t i = 0; i < DIR_BLOCK_SIZE; i++)
				md->blk[b][i] = (uint8_t)rnd();
		} else if (kind == 1) {
			memcpy(md->blk[b], base->blk[rnd() % nblocks],
			    DIR_BLOCK_SIZE);
		} else {
			/* 1..3 bytes, mostly in the used front of a block. */
			int nb = 1 + (int)(rnd() % 3);

			for (int k = 0; k < nb; k++) {
				uint32_t off = (uint32_t)(rnd() %
				    (rnd() % 2 ? 128 : DIR_BLOCK_SIZE));

				md->blk[b][off] ^= (uint8_t)(1 + rnd() % 255);
			}
		}
		rc = dir_check(&md->df, NULL, NULL, &why);
		assert_true(rc == 0 || rc == -FL_ECORRUPT);
		if (rc == 0) {
			/* Undetected damage (an ino, a type, a seq, a
			 * harmless separator): the directory still works. */
			uint64_t cnt;

			clean++;
			assert_int_equal(dir_count(&md->df, &cnt), 0);
			assert_true(cnt == present);
			assert_true(list_all(md) == present);
			for (int k = 0; k < 50; k++) {
				struct name *x = &v[rnd() % N];
				struct dir_ent e;

				assert_int_equal(dir_lookup(&md->df, x->s,
				    x->len, &e), x->present ? 0 : -ENOENT);
			}
		} else {
			assert_non_null(why);
			detected++;
		}
		corrupt_ops(md, v, N, &ctr);
		md_free(md);
	}
	printf("  %" PRIu32 " damaged copies: %" PRIu32 " reported by "
	    "dir_check, %" PRIu32 " consistent (ino/type/seq/slack)\n",
	    ROUNDS, detected, clean);
	free(v);
	md_free(base);
}

/* Each test leaves SipHash in place for the next. */
static int restore_hash(void **state)
{
	dir_test_set_hash(NULL);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_siphash_vectors, restore_hash),
		cmocka_unit_test_teardown(test_basics, restore_hash),
		cmocka_unit_test_teardown(test_100k_random, restore_hash),
		cmocka_unit_test_teardown(test_100k_sequential, restore_hash),
		cmocka_unit_test_teardown(test_ordered_keys, restore_hash),
		cmocka_unit_test_teardown(test_collisions, restore_hash),
		cmocka_unit_test_teardown(test_replay, restore_hash),
		cmocka_unit_test_teardown(test_iterate_changing, restore_hash),
		cmocka_unit_test_teardown(test_modify_failure, restore_hash),
		cmocka_unit_test_teardown(test_corruption, restore_hash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
