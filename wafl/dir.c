/*
 * wafl/dir.c: directories as a B+tree of 64-bit hash keys in a file
 * (contract in dir.h).
 *
 * THEORY
 *
 * A directory is a file of 4096-byte blocks.  Block 0 is the header; every
 * other block below the header's nblocks is a tree node or a free node.  The
 * tree is a B+tree keyed by
 *     key = max(siphash24(dir_key, name) >> 8, 1) << 8 | seq
 * Entries live only in leaves; internal nodes hold separators.  Keys are
 * unique; all keys of one 56-bit hash ("a hash group", at most 256 names)
 * are adjacent in key order, and seq is the smallest value free in the group
 * when the name is inserted.  A key never changes while its entry exists, so
 * it is the READDIR cookie: dir_iterate(cookie) returns the entries with
 * key > cookie, and creates and removes between two calls never make a
 * listing skip or repeat an entry that survives the whole listing.
 *
 * FORMAT (all fields little-endian; "fbn" = block number in this file)
 *
 * Header, block 0
 *   off size  field
 *     0    8  magic      "FLRDIRH1"
 *     8    4  version    1
 *    12    4  blksize    4096
 *    16    8  root       fbn of the root node (1 <= root < nblocks)
 *    24    4  height     levels, leaves included (1 = root is a leaf),
 *                        1..DIR_MAX_HEIGHT
 *    28    4  reserved   0
 *    32    8  count      entries in the directory
 *    40    8  nblocks    blocks 0..nblocks-1 belong to the index (<= file
 *                        size); new nodes are taken from the free list
 *                        first, then at nblocks
 *    48    8  free_head  first free node, 0 = none
 *    56    8  nfree      length of the free list
 *    64 4032  reserved   0
 *
 * Node header (first 32 bytes of every internal, leaf and free node)
 *     0    8  magic      "FLRDIRI1" internal, "FLRDIRL1" leaf,
 *                        "FLRDIRF1" free
 *     8    8  self       this node's own fbn (catches misdirected pointers)
 *    16    2  level      0 = leaf, height-1 = root; free: 0
 *    18    2  count      internal: children 1..338; leaf: entries 0..213
 *                        (0 only in a root leaf); free: 0
 *    20    2  used       bytes of the body in use: internal 12*count,
 *                        leaf sum of entry sizes, free 0
 *    22    2  reserved   0
 *    24    8  next       free: next free node (0 = end); others 0
 * Internal body, from 32: count slots of 12 bytes, then zeros
 *     0    8  key        separator: child i holds keys in [key[i],
 *                        key[i+1]); key[0] is written 0 and means "the
 *                        node's own lower bound"
 *     8    4  child      fbn of the child (level - 1)
 * Leaf body, from 32: count packed entries in key order, then zeros
 *     0    8  key        >= DIR_KEY_MIN, strictly increasing
 *     8    8  ino        opaque to dir.c
 *    16    1  type       opaque to dir.c
 *    17    1  namelen    1..255
 *    18    n  name       namelen bytes, no terminator; no '/' or NUL,
 *                        not "." or ".." (D2)
 * Free body: zeros.
 *
 * INVARIANTS (dir_check verifies every one; messages name them)
 *   D1  The header's fields are in range (as above).
 *   D2  Every node has its magic, its own fbn in self, the level its parent
 *       implies, count/used consistent and inside the block, reserved and
 *       unused bytes zero; every name one a create could make.
 *   D3  Keys are strictly increasing and inside the range the parents'
 *       separators give; all leaves are at depth height-1; only the root
 *       may be empty (a leaf with no entries).
 *   D4  Each entry's key has its name's 56-bit hash above the seq byte.
 *   D5  No name appears twice (only possible inside one hash group).
 *   D6  The header's count equals the entries in the leaves.
 *   D7  Each block 1..nblocks-1 is reached exactly once: by the tree or
 *       by the free list, whose length is nfree.
 *
 * OPERATIONS
 *   Every call reads the header (one read) and validates it.
 *   lookup: descend to the leaf holding key hash<<8 (height reads), compare
 *     names among the group's keys; a group that straddles a leaf boundary
 *     continues in the next leaf (a new descent).  Cost 1 + height reads.
 *   add: the same scan collects the group's used seqs; the entry goes into
 *     the leaf of its key.  A full leaf splits in two by bytes; the new
 *     separator goes into the parent, which splits in two when full, up to
 *     the root, whose split adds a level.  Every block to be changed or
 *     allocated is obtained through df->modify before anything is changed,
 *     so an I/O or space failure leaves the directory as it was.
 *   remove: the entry is deleted from its leaf.  There is no merging; a
 *     non-root leaf that becomes empty is unlinked from its parent and
 *     freed, and so on upwards; a root left with one child is replaced by
 *     it (best effort, after the removal is complete: a one-child root is
 *     valid, and the next removal tries again).  Freed nodes go on the
 *     free list and are reused before the file grows.
 *   -ENOSPC: a hash group with all 256 seqs taken, a root split beyond
 *     DIR_MAX_HEIGHT, or more than 2^32 blocks (child pointers are u32).
 *   iterate: one descent to the leaf of cookie+1, then a walk of the tree
 *     in key order holding the path (one read per further node).
 *
 * FAILURE
 *   Every block read is validated before use (D2, D3 on the path's bounds):
 *   bad magic, self, level, count, offset or key order returns
 *   -FL_ECORRUPT.  Descent is bounded by the header's height, which is
 *   bounded by DIR_MAX_HEIGHT, and every loop by a count read from a
 *   validated block, so corrupt data never crashes or loops.  dir.c keeps
 *   no state between calls, does no I/O and takes no locks of its own:
 *   the caller holds the directory stable for the call.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "wafl/dir.h"

#define BS		DIR_BLOCK_SIZE
#define MAXH		DIR_MAX_HEIGHT
#define DIR_VERSION	1u

#define HDR_MAGIC	"FLRDIRH1"
#define INT_MAGIC	"FLRDIRI1"
#define LEAF_MAGIC	"FLRDIRL1"
#define FREE_MAGIC	"FLRDIRF1"

/* Header offsets. */
#define H_MAGIC		0
#define H_VERSION	8
#define H_BLKSIZE	12
#define H_ROOT		16
#define H_HEIGHT	24
#define H_RSVD		28
#define H_COUNT		32
#define H_NBLOCKS	40
#define H_FREE		48
#define H_NFREE		56
#define H_END		64

/* Node header offsets. */
#define N_MAGIC		0
#define N_SELF		8
#define N_LEVEL		16
#define N_COUNT		18
#define N_USED		20
#define N_RSVD		22
#define N_NEXT		24
#define N_BODY		32

#define BODY		(BS - N_BODY)		/* 4064 */
#define SLOT		12u			/* internal: key 8 + child 4 */
#define INT_MAX_CHILD	(BODY / SLOT)		/* 338 */
#define ENT_HDR		18u			/* leaf entry without name */
#define LEAF_MAX_ENT	(BODY / (ENT_HDR + 1))	/* 213 */

FL_STATIC_ASSERT(INT_MAX_CHILD == 338, "internal fan-out");
FL_STATIC_ASSERT(LEAF_MAX_ENT == 213, "leaf capacity");
FL_STATIC_ASSERT(ENT_HDR + DIR_NAME_MAX <= BODY / 2,
    "a leaf split must leave both halves fitting");

#define GROUP(key)	((key) >> 8)
#define SEQ_MAX		255u

/* The header, decoded. */
struct dhdr {
	uint64_t root;
	uint32_t height;
	uint64_t count;
	uint64_t nblocks;
	uint64_t free_head;
	uint64_t nfree;
};

/* One leaf entry, decoded; name is borrowed from a block or the caller. */
struct lent {
	uint64_t key;
	uint64_t ino;
	uint8_t type;
	uint8_t namelen;
	const uint8_t *name;
};

struct dleaf {
	uint32_t n;
	uint32_t used;
	struct lent e[LEAF_MAX_ENT + 1];	/* + 1: room for an insert */
};

/* Internal slot, decoded. */
struct islot {
	uint64_t key;
	uint64_t child;
};

/*
 * A descent: node fbn[l] at level l (0 = leaf, height-1 = root), holding
 * keys in [lo[l], max[l]] (inclusive: a key may be UINT64_MAX); for l >= 1,
 * idx[l] is the child taken.
 */
struct dpath {
	uint32_t height;
	uint64_t fbn[MAXH];
	uint32_t idx[MAXH];
	uint64_t lo[MAXH];
	uint64_t max[MAXH];
};

static int corrupt(const char *why, uint64_t fbn)
{
	fl_debug("wafl", "directory block %llu corrupt: %s",
	    (unsigned long long)fbn, why);
	return FL_ERR(-FL_ECORRUPT);
}

static const uint8_t zero_block[BS];

static bool all_zero(const uint8_t *p, size_t len)
{
	ASSERT(len <= BS);
	return memcmp(p, zero_block, len) == 0;
}

/*
 * Little-endian loads and stores for the hot paths (key arrays are
 * scanned on every descent): the same bytes as fl_get_le / fl_put_le,
 * in one access each.
 */
static inline uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static inline uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static inline void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static int name_check(const char *name, size_t len)
{
	if (len == 0 || name == NULL)
		return FL_ERR(-EINVAL);
	if (len > DIR_NAME_MAX)
		return FL_ERR(-ENAMETOOLONG);
	return 0;
}

/* The name hash: SipHash-2-4 except in collision tests. */
static dir_hash_fn *name_hash = wafl_siphash24;

void dir_test_set_hash(dir_hash_fn *fn)
{
	name_hash = fn != NULL ? fn : wafl_siphash24;
}

/* The key of seq 0 of name's hash group. */
static uint64_t name_base(const struct dirfile *df, const void *name,
    size_t len)
{
	uint64_t h;

	ASSERT(df->hash_key != NULL);
	h = name_hash(df->hash_key, name, len);
	h >>= 8;
	if (h == 0)
		h = 1;
	return h << 8;
}

static bool name_eq(const struct lent *e, const void *name, size_t len)
{
	return e->namelen == len && memcmp(e->name, name, len) == 0;
}

static void ent_fill(struct dir_ent *out, const struct lent *e)
{
	out->key = e->key;
	out->ino = e->ino;
	out->type = e->type;
	out->namelen = e->namelen;
	memcpy(out->name, e->name, e->namelen);
	out->name[e->namelen] = '\0';
}

/* ------------------------------------------------------------------ */
/* Header */

static const char *hdr_decode(const uint8_t *b, uint64_t file_blocks,
    struct dhdr *h)
{
	if (memcmp(b + H_MAGIC, HDR_MAGIC, 8) != 0)
		return "D1: bad header magic";
	if (fl_get_le32(b + H_VERSION) != DIR_VERSION)
		return "D1: unknown version";
	if (fl_get_le32(b + H_BLKSIZE) != BS)
		return "D1: bad block size";
	if (fl_get_le32(b + H_RSVD) != 0 || !all_zero(b + H_END, BS - H_END))
		return "D1: reserved header bytes not zero";
	h->root = fl_get_le64(b + H_ROOT);
	h->height = fl_get_le32(b + H_HEIGHT);
	h->count = fl_get_le64(b + H_COUNT);
	h->nblocks = fl_get_le64(b + H_NBLOCKS);
	h->free_head = fl_get_le64(b + H_FREE);
	h->nfree = fl_get_le64(b + H_NFREE);
	if (h->nblocks < 2 || h->nblocks > file_blocks ||
	    h->nblocks > (uint64_t)UINT32_MAX + 1)
		return "D1: nblocks out of range";
	if (h->height < 1 || h->height > MAXH)
		return "D1: height out of range";
	if (h->root < 1 || h->root >= h->nblocks)
		return "D1: root out of range";
	if (h->free_head >= h->nblocks || h->nfree >= h->nblocks ||
	    (h->free_head == 0) != (h->nfree == 0))
		return "D1: free list out of range";
	if (h->count > (h->nblocks - 1) * LEAF_MAX_ENT)
		return "D1: count out of range";
	return NULL;
}

static void hdr_encode(uint8_t *b, const struct dhdr *h)
{
	memset(b, 0, BS);
	memcpy(b + H_MAGIC, HDR_MAGIC, 8);
	fl_put_le32(b + H_VERSION, DIR_VERSION);
	fl_put_le32(b + H_BLKSIZE, BS);
	fl_put_le64(b + H_ROOT, h->root);
	fl_put_le32(b + H_HEIGHT, h->height);
	fl_put_le64(b + H_COUNT, h->count);
	fl_put_le64(b + H_NBLOCKS, h->nblocks);
	fl_put_le64(b + H_FREE, h->free_head);
	fl_put_le64(b + H_NFREE, h->nfree);
}

static int hdr_read(struct dirfile *df, uint8_t *buf, struct dhdr *h)
{
	const char *why;
	int err;

	err = df->read(df->ctx, 0, buf);
	if (err != 0)
		return err;
	why = hdr_decode(buf, df->nblocks(df->ctx), h);
	if (why != NULL)
		return corrupt(why, 0);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Nodes */

static const char *node_common(const uint8_t *b, uint64_t fbn,
    const char *magic)
{
	if (memcmp(b + N_MAGIC, magic, 8) != 0)
		return "D2: bad node magic";
	if (fl_get_le64(b + N_SELF) != fbn)
		return "D2: node self pointer wrong (misdirected block)";
	if (fl_get_le16(b + N_RSVD) != 0)
		return "D2: reserved node bytes not zero";
	return NULL;
}

static void node_header(uint8_t *b, uint64_t fbn, const char *magic,
    uint32_t level, uint32_t count, uint32_t used, uint64_t next)
{
	memcpy(b + N_MAGIC, magic, 8);
	fl_put_le64(b + N_SELF, fbn);
	fl_put_le16(b + N_LEVEL, (uint16_t)level);
	fl_put_le16(b + N_COUNT, (uint16_t)count);
	fl_put_le16(b + N_USED, (uint16_t)used);
	fl_put_le16(b + N_RSVD, 0);
	fl_put_le64(b + N_NEXT, next);
}

static uint32_t node_count(const uint8_t *b)
{
	return fl_get_le16(b + N_COUNT);
}

static uint64_t ikey(const uint8_t *b, uint32_t i)
{
	return get64(b + N_BODY + SLOT * i);
}

static uint64_t ichild(const uint8_t *b, uint32_t i)
{
	return get32(b + N_BODY + SLOT * i + 8);
}

/*
 * Validate an internal node at level level holding keys in [lo, max];
 * children must be below nblocks.
 */
static const char *int_decode(const uint8_t *b, uint64_t fbn, uint32_t level,
    uint64_t lo, uint64_t max, uint64_t nblocks)
{
	const char *why;
	uint32_t n;
	uint64_t prev = lo;

	why = node_common(b, fbn, INT_MAGIC);
	if (why != NULL)
		return why;
	if (fl_get_le16(b + N_LEVEL) != level)
		return "D2: internal node at the wrong level";
	n = node_count(b);
	if (n < 1 || n > INT_MAX_CHILD)
		return "D2: internal node count out of range";
	if (fl_get_le16(b + N_USED) != n * SLOT)
		return "D2: internal node used bytes wrong";
	if (fl_get_le64(b + N_NEXT) != 0)
		return "D2: internal node next not zero";
	if (ikey(b, 0) != 0)
		return "D2: internal node key[0] not zero";
	for (uint32_t i = 0; i < n; i++) {
		uint64_t c = ichild(b, i);

		if (c < 1 || c >= nblocks)
			return "D2: child pointer out of range";
		if (i == 0)
			continue;
		if (ikey(b, i) <= prev || ikey(b, i) > max)
			return "D3: separator out of order or out of range";
		prev = ikey(b, i);
	}
	return NULL;
}

/* Range of child i of internal node b, which holds [lo, max]. */
static void child_range(const uint8_t *b, uint32_t i, uint64_t lo,
    uint64_t max, uint64_t *clo, uint64_t *cmax)
{
	uint32_t n = node_count(b);

	*clo = i == 0 ? lo : ikey(b, i);
	*cmax = i + 1 < n ? ikey(b, i + 1) - 1 : max;
}

/* The child of internal node b whose range holds key. */
static uint32_t child_for(const uint8_t *b, uint64_t key)
{
	/* The last i >= 1 with k[i] <= key, else 0. */
	uint32_t lo = 1, hi = node_count(b);

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (ikey(b, mid) <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

/* Validate a leaf holding keys in [lo, max] and decode its entries. */
static const char *leaf_decode(const uint8_t *b, uint64_t fbn, uint64_t lo,
    uint64_t max, bool is_root, struct dleaf *L)
{
	const char *why;
	uint32_t n, used, off;
	uint64_t prev = 0;

	why = node_common(b, fbn, LEAF_MAGIC);
	if (why != NULL)
		return why;
	if (fl_get_le16(b + N_LEVEL) != 0)
		return "D2: leaf at the wrong level";
	n = node_count(b);
	used = fl_get_le16(b + N_USED);
	if (n > LEAF_MAX_ENT || used > BODY)
		return "D2: leaf count or used bytes out of range";
	if (n == 0 && !is_root)
		return "D3: empty leaf below the root";
	if (fl_get_le64(b + N_NEXT) != 0)
		return "D2: leaf next not zero";
	off = N_BODY;
	for (uint32_t i = 0; i < n; i++) {
		struct lent *e = &L->e[i];

		if (off + ENT_HDR > N_BODY + used)
			return "D2: leaf entry past used bytes";
		e->key = get64(b + off);
		e->ino = get64(b + off + 8);
		e->type = b[off + 16];
		e->namelen = b[off + 17];
		e->name = b + off + ENT_HDR;
		if (e->namelen == 0)
			return "D2: leaf entry with empty name";
		if (off + ENT_HDR + e->namelen > N_BODY + used)
			return "D2: leaf entry name past used bytes";
		/* Names go out to clients as they are: none that no create
		 * makes ("/", NUL, "." and ".."). */
		if (memchr(e->name, '/', e->namelen) != NULL ||
		    memchr(e->name, '\0', e->namelen) != NULL ||
		    (e->name[0] == '.' && (e->namelen == 1 ||
		    (e->namelen == 2 && e->name[1] == '.'))))
			return "D2: leaf entry name no create makes";
		if (e->key < DIR_KEY_MIN || (i > 0 && e->key <= prev))
			return "D3: leaf keys out of order";
		if (e->key < lo || e->key > max)
			return "D3: leaf key outside its parent's range";
		prev = e->key;
		off += ENT_HDR + e->namelen;
	}
	if (off != N_BODY + used)
		return "D2: leaf used bytes do not match its entries";
	L->n = n;
	L->used = used;
	return NULL;
}

static uint32_t ent_size(const struct lent *e)
{
	return ENT_HDR + e->namelen;
}

/* Encode entries e[0..n) as leaf fbn into b (a scratch block). */
static void leaf_encode(uint8_t *b, uint64_t fbn, const struct lent *e,
    uint32_t n)
{
	uint32_t off = N_BODY;

	memset(b, 0, BS);
	for (uint32_t i = 0; i < n; i++) {
		put64(b + off, e[i].key);
		put64(b + off + 8, e[i].ino);
		b[off + 16] = e[i].type;
		b[off + 17] = e[i].namelen;
		memcpy(b + off + ENT_HDR, e[i].name, e[i].namelen);
		off += ent_size(&e[i]);
	}
	ASSERT(off <= BS);
	node_header(b, fbn, LEAF_MAGIC, 0, n, off - N_BODY, 0);
}

static void int_encode(uint8_t *b, uint64_t fbn, uint32_t level,
    const struct islot *s, uint32_t n)
{
	ASSERT(n >= 1 && n <= INT_MAX_CHILD);
	memset(b, 0, BS);
	for (uint32_t i = 0; i < n; i++) {
		put64(b + N_BODY + SLOT * i, i == 0 ? 0 : s[i].key);
		put32(b + N_BODY + SLOT * i + 8, (uint32_t)s[i].child);
	}
	node_header(b, fbn, INT_MAGIC, level, n, n * SLOT, 0);
}

static uint32_t int_slots(const uint8_t *b, struct islot *s)
{
	uint32_t n = node_count(b);

	for (uint32_t i = 0; i < n; i++) {
		s[i].key = ikey(b, i);
		s[i].child = ichild(b, i);
	}
	return n;
}

static const char *free_decode(const uint8_t *b, uint64_t fbn,
    uint64_t nblocks, uint64_t *next)
{
	const char *why = node_common(b, fbn, FREE_MAGIC);

	if (why != NULL)
		return why;
	if (fl_get_le16(b + N_LEVEL) != 0 || node_count(b) != 0 ||
	    fl_get_le16(b + N_USED) != 0)
		return "D2: free node with contents";
	*next = fl_get_le64(b + N_NEXT);
	if (*next >= nblocks || *next == fbn)
		return "D7: free list pointer out of range";
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Descent */

/*
 * Descend from the root to the leaf whose range holds key, reading each
 * node into buf; on return buf holds the leaf, decoded into *L, and *p the
 * path.
 */
static int descend(struct dirfile *df, const struct dhdr *h, uint64_t key,
    uint8_t *buf, struct dpath *p, struct dleaf *L)
{
	uint64_t fbn = h->root, lo = 0, max = UINT64_MAX;
	const char *why;
	int err;

	p->height = h->height;
	for (uint32_t l = h->height - 1;; l--) {
		err = df->read(df->ctx, fbn, buf);
		if (err != 0)
			return err;
		p->fbn[l] = fbn;
		p->lo[l] = lo;
		p->max[l] = max;
		if (l == 0)
			break;
		why = int_decode(buf, fbn, l, lo, max, h->nblocks);
		if (why != NULL)
			return corrupt(why, fbn);
		p->idx[l] = child_for(buf, key);
		child_range(buf, p->idx[l], lo, max, &lo, &max);
		fbn = ichild(buf, p->idx[l]);
	}
	why = leaf_decode(buf, fbn, lo, max, h->height == 1, L);
	if (why != NULL)
		return corrupt(why, fbn);
	return 0;
}

/*
 * Scan the hash group of base for name.  On return: *first is the path to
 * the leaf holding base; if found, *found (and *fpath) describe the entry;
 * if seqs is given, it has a bit set for every seq used in the group.
 * L and buf are scratch.
 */
struct gscan {
	struct dpath first;
	struct dpath fpath;
	bool found;
	struct dir_ent ent;
	uint8_t seqs[32];
};

/* Scratch memory of one operation: one allocation per call. */
struct dscratch {
	uint8_t buf[BS];
	uint8_t tmp[BS];
	struct dleaf L;
	struct gscan g;
	struct islot s[INT_MAX_CHILD + 1];
};

static int group_scan(struct dirfile *df, const struct dhdr *h, uint64_t base,
    const char *name, size_t len, bool want_seqs, uint8_t *buf,
    struct dleaf *L, struct gscan *g)
{
	uint64_t key = base, last = base | SEQ_MAX;
	struct dpath p;
	int err;

	memset(g->seqs, 0, sizeof(g->seqs));
	g->found = false;
	/* Each round moves to a later leaf; a group spans at most 256. */
	for (uint32_t round = 0; round <= SEQ_MAX; round++) {
		err = descend(df, h, key, buf, &p, L);
		if (err != 0)
			return err;
		if (round == 0)
			g->first = p;
		for (uint32_t i = 0; i < L->n; i++) {
			const struct lent *e = &L->e[i];

			if (e->key < base || e->key > last)
				continue;
			g->seqs[(e->key & SEQ_MAX) / 8] |=
			    (uint8_t)(1u << (e->key & 7));
			if (!g->found && name_eq(e, name, len)) {
				g->found = true;
				g->fpath = p;
				ent_fill(&g->ent, e);
			}
		}
		if (p.max[0] >= last || (g->found && !want_seqs))
			return 0;
		key = p.max[0] + 1;
	}
	return corrupt("D3: hash group spans too many leaves", p.fbn[0]);
}

/* ------------------------------------------------------------------ */
/* Allocation */

/*
 * Take a node for writing: from the free list, else at the end of the file.
 * Updates *h in memory only; the caller writes the header at the end.
 */
static int node_alloc(struct dirfile *df, struct dhdr *h, uint64_t *fbn,
    uint8_t **blk)
{
	const char *why;
	uint64_t next;
	int err;

	if (h->free_head != 0) {
		err = df->modify(df->ctx, h->free_head, blk);
		if (err != 0)
			return err;
		why = free_decode(*blk, h->free_head, h->nblocks, &next);
		if (why != NULL)
			return corrupt(why, h->free_head);
		if (h->nfree == 0 || (next == 0) != (h->nfree == 1))
			return corrupt("D7: free list length wrong",
			    h->free_head);
		*fbn = h->free_head;
		h->free_head = next;
		h->nfree--;
	} else {
		if (h->nblocks > UINT32_MAX)
			return FL_ERR(-ENOSPC);	/* child pointers are 32 bits */
		err = df->modify(df->ctx, h->nblocks, blk);
		if (err != 0)
			return err;
		*fbn = h->nblocks++;
	}
	/* Nothing is written here: the caller encodes the whole node once
	 * every block it needs is in hand. */
	return 0;
}

static void node_free(struct dhdr *h, uint64_t fbn, uint8_t *blk)
{
	memset(blk, 0, BS);
	node_header(blk, fbn, FREE_MAGIC, 0, 0, 0, h->free_head);
	h->free_head = fbn;
	h->nfree++;
}

/* ------------------------------------------------------------------ */
/* Insert and remove */

/*
 * Insert entry ne into the leaf of path p (its range holds ne->key).  *h is
 * updated in memory; the caller writes it.
 */
static int tree_insert(struct dirfile *df, struct dhdr *h,
    const struct dpath *p, const struct lent *ne, struct dscratch *sc)
{
	uint8_t *blk[MAXH + 1] = { NULL };	/* modify pointers by level */
	uint8_t *nblk[MAXH + 1] = { NULL };	/* new right siblings */
	uint64_t nfbn[MAXH + 1] = { 0 };
	uint8_t *tmp = sc->tmp;
	struct dleaf *L = &sc->L;
	struct islot *s = sc->s;
	const char *why;
	uint32_t pos, nsplit, total, left, cut, n;
	uint64_t sep, child;
	bool new_root;
	int err;

	err = df->modify(df->ctx, p->fbn[0], &blk[0]);
	if (err != 0)
		goto out;
	why = leaf_decode(blk[0], p->fbn[0], p->lo[0], p->max[0],
	    p->height == 1, L);
	if (why != NULL) {
		err = corrupt(why, p->fbn[0]);
		goto out;
	}
	for (pos = 0; pos < L->n && L->e[pos].key < ne->key; pos++)
		;
	if (pos < L->n && L->e[pos].key == ne->key) {
		err = FL_ERR(-EEXIST);
		goto out;
	}
	memmove(&L->e[pos + 1], &L->e[pos], (L->n - pos) * sizeof(L->e[0]));
	L->e[pos] = *ne;
	L->n++;
	L->used += ent_size(ne);

	if (L->used <= BODY && L->n <= LEAF_MAX_ENT) {
		leaf_encode(tmp, p->fbn[0], L->e, L->n);
		memcpy(blk[0], tmp, BS);
		goto done;
	}

	/*
	 * Splits: find how far up they go, and obtain every block that will
	 * change before changing any.
	 */
	nsplit = 1;
	new_root = true;
	for (uint32_t l = 1; l < p->height; l++) {
		err = df->modify(df->ctx, p->fbn[l], &blk[l]);
		if (err != 0)
			goto out;
		why = int_decode(blk[l], p->fbn[l], l, p->lo[l], p->max[l],
		    h->nblocks);
		if (why != NULL) {
			err = corrupt(why, p->fbn[l]);
			goto out;
		}
		if (node_count(blk[l]) < INT_MAX_CHILD) {
			new_root = false;
			break;
		}
		nsplit++;
	}
	if (new_root && p->height == MAXH) {
		err = FL_ERR(-ENOSPC);
		goto out;
	}
	for (uint32_t l = 0; l < nsplit + (new_root ? 1u : 0u); l++) {
		err = node_alloc(df, h, &nfbn[l], &nblk[l]);
		if (err != 0)
			goto out;
		/* A cycle in the free list would hand out a block twice. */
		for (uint32_t k = 0; k < l; k++) {
			if (nfbn[k] == nfbn[l]) {
				err = corrupt("D7: free list has a cycle",
				    nfbn[l]);
				goto out;
			}
		}
	}

	/* Leaf: cut where the left half first holds half the bytes. */
	total = L->used;
	left = 0;
	for (cut = 0; cut < L->n - 1; cut++) {
		left += ent_size(&L->e[cut]);
		if (left * 2 >= total)
			break;
	}
	cut = FL_MIN(cut + 1, L->n - 1);
	ASSERT(cut >= 1 && cut < L->n);
	leaf_encode(nblk[0], nfbn[0], &L->e[cut], L->n - cut);
	leaf_encode(tmp, p->fbn[0], L->e, cut);
	memcpy(blk[0], tmp, BS);
	sep = L->e[cut].key;
	child = nfbn[0];

	/* Internal levels: insert (sep, child) after the path's child. */
	for (uint32_t l = 1; l < p->height; l++) {
		n = int_slots(blk[l], s);
		pos = p->idx[l] + 1;
		memmove(&s[pos + 1], &s[pos], (n - pos) * sizeof(s[0]));
		s[pos].key = sep;
		s[pos].child = child;
		n++;
		if (n <= INT_MAX_CHILD) {
			int_encode(blk[l], p->fbn[l], l, s, n);
			goto done;
		}
		cut = n / 2;
		int_encode(nblk[l], nfbn[l], l, &s[cut], n - cut);
		int_encode(blk[l], p->fbn[l], l, s, cut);
		sep = s[cut].key;
		child = nfbn[l];
	}

	/* The root split: a new root above it. */
	ASSERT(new_root);
	s[0].key = 0;
	s[0].child = h->root;
	s[1].key = sep;
	s[1].child = child;
	int_encode(nblk[nsplit], nfbn[nsplit], p->height, s, 2);
	h->root = nfbn[nsplit];
	h->height++;
done:
	h->count++;
	err = 0;
out:
	return err;
}

/*
 * Replace a root internal node with a single child by that child, as long
 * as that holds.  Best effort: a one-child root is valid (D3), so a failure
 * here leaves a correct directory and the next removal tries again.
 */
static void tree_collapse(struct dirfile *df, struct dhdr *h, uint8_t *buf)
{
	uint8_t *blk;
	uint64_t child;

	while (h->height > 1) {
		if (df->read(df->ctx, h->root, buf) != 0 ||
		    int_decode(buf, h->root, h->height - 1, 0, UINT64_MAX,
		    h->nblocks) != NULL || node_count(buf) != 1)
			return;
		if (df->modify(df->ctx, h->root, &blk) != 0)
			return;
		child = ichild(buf, 0);
		node_free(h, h->root, blk);
		h->root = child;
		h->height--;
	}
}

/*
 * Remove the entry with key from the leaf of path p.  *collapse is set when
 * the root is left with one child.
 */
static int tree_remove(struct dirfile *df, struct dhdr *h,
    const struct dpath *p, uint64_t key, struct dscratch *sc, bool *collapse)
{
	uint8_t *blk[MAXH] = { NULL };
	uint8_t *tmp = sc->tmp;
	struct dleaf *L = &sc->L;
	struct islot *s = sc->s;
	const char *why;
	uint32_t pos, top, n;
	int err;

	err = df->modify(df->ctx, p->fbn[0], &blk[0]);
	if (err != 0)
		goto out;
	why = leaf_decode(blk[0], p->fbn[0], p->lo[0], p->max[0],
	    p->height == 1, L);
	if (why != NULL) {
		err = corrupt(why, p->fbn[0]);
		goto out;
	}
	for (pos = 0; pos < L->n && L->e[pos].key != key; pos++)
		;
	if (pos == L->n) {
		err = FL_ERR(-ENOENT);
		goto out;
	}
	if (L->n > 1 || p->height == 1) {
		memmove(&L->e[pos], &L->e[pos + 1],
		    (L->n - pos - 1) * sizeof(L->e[0]));
		leaf_encode(tmp, p->fbn[0], L->e, L->n - 1);
		memcpy(blk[0], tmp, BS);
		goto done;
	}

	/*
	 * The leaf empties: unlink it, and each parent it leaves empty.
	 * Obtain every block first.
	 */
	for (top = 1; top < p->height; top++) {
		err = df->modify(df->ctx, p->fbn[top], &blk[top]);
		if (err != 0)
			goto out;
		why = int_decode(blk[top], p->fbn[top], top, p->lo[top],
		    p->max[top], h->nblocks);
		if (why != NULL) {
			err = corrupt(why, p->fbn[top]);
			goto out;
		}
		if (node_count(blk[top]) > 1)
			break;
	}
	node_free(h, p->fbn[0], blk[0]);
	for (uint32_t l = 1; l < p->height; l++) {
		n = int_slots(blk[l], s);
		if (n > 1) {
			pos = p->idx[l];
			memmove(&s[pos], &s[pos + 1], (n - pos - 1) *
			    sizeof(s[0]));
			int_encode(blk[l], p->fbn[l], l, s, n - 1);
			*collapse = l == p->height - 1 && n - 1 == 1;
			break;
		}
		if (l < p->height - 1) {
			node_free(h, p->fbn[l], blk[l]);
			continue;
		}
		/* A root with one child lost it: the tree is empty again. */
		leaf_encode(blk[l], p->fbn[l], NULL, 0);
		h->height = 1;
	}
done:
	h->count--;
	err = 0;
out:
	return err;
}

/* ------------------------------------------------------------------ */
/* The interface */

int dir_init(struct dirfile *df)
{
	struct dhdr h = { .root = 1, .height = 1, .count = 0, .nblocks = 2,
	    .free_head = 0, .nfree = 0 };
	uint8_t *hb, *lb;
	int err;

	err = df->modify(df->ctx, 0, &hb);
	if (err != 0)
		return err;
	err = df->modify(df->ctx, 1, &lb);
	if (err != 0)
		return err;
	leaf_encode(lb, 1, NULL, 0);
	hdr_encode(hb, &h);
	return 0;
}

int dir_lookup(struct dirfile *df, const char *name, size_t len,
    struct dir_ent *out)
{
	struct dscratch *sc;
	uint8_t *buf;
	struct dleaf *L;
	struct gscan *g;
	struct dhdr h;
	int err;

	err = name_check(name, len);
	if (err != 0)
		return err;
	sc = malloc(sizeof(*sc));
	if (sc == NULL)
		return FL_ERR(-ENOMEM);
	buf = sc->buf;
	L = &sc->L;
	g = &sc->g;
	err = hdr_read(df, buf, &h);
	if (err != 0)
		goto out;
	err = group_scan(df, &h, name_base(df, name, len), name, len, false,
	    buf, L, g);
	if (err != 0)
		goto out;
	if (!g->found) {
		err = -ENOENT;
		goto out;
	}
	if (out != NULL)
		*out = g->ent;
out:
	free(sc);
	return err;
}

int dir_add(struct dirfile *df, const char *name, size_t len, uint64_t ino,
    uint8_t type, uint64_t force_key, uint64_t *key_out)
{
	struct dscratch *sc;
	uint8_t *buf, *hb;
	struct dleaf *L;
	struct gscan *g;
	struct dpath p;
	struct lent ne;
	struct dhdr h;
	uint64_t base, key;
	int err;

	err = name_check(name, len);
	if (err != 0)
		return err;
	sc = malloc(sizeof(*sc));
	if (sc == NULL)
		return FL_ERR(-ENOMEM);
	buf = sc->buf;
	L = &sc->L;
	g = &sc->g;
	err = hdr_read(df, buf, &h);
	if (err != 0)
		goto out;
	base = name_base(df, name, len);
	if (force_key != 0 && GROUP(force_key) != GROUP(base)) {
		/* A replayed key that is not this name's. */
		err = FL_ERR(-FL_ECORRUPT);
		goto out;
	}
	err = group_scan(df, &h, base, name, len, true, buf, L, g);
	if (err != 0)
		goto out;
	if (g->found) {
		err = -EEXIST;
		goto out;
	}
	if (force_key != 0) {
		key = force_key;
		if (g->seqs[(key & SEQ_MAX) / 8] & (1u << (key & 7))) {
			err = -EEXIST;
			goto out;
		}
	} else {
		uint32_t seq;

		for (seq = 0; seq <= SEQ_MAX; seq++)
			if (!(g->seqs[seq / 8] & (1u << (seq & 7))))
				break;
		if (seq > SEQ_MAX) {
			err = FL_ERR(-ENOSPC);	/* 256 names, one hash */
			goto out;
		}
		key = base | seq;
	}
	if (key <= g->first.max[0]) {
		p = g->first;
	} else {
		err = descend(df, &h, key, buf, &p, L);
		if (err != 0)
			goto out;
	}
	err = df->modify(df->ctx, 0, &hb);
	if (err != 0)
		goto out;
	ne.key = key;
	ne.ino = ino;
	ne.type = type;
	ne.namelen = (uint8_t)len;
	ne.name = (const uint8_t *)name;
	err = tree_insert(df, &h, &p, &ne, sc);
	if (err != 0)
		goto out;
	hdr_encode(hb, &h);
	if (key_out != NULL)
		*key_out = key;
out:
	free(sc);
	return err;
}

int dir_remove(struct dirfile *df, const char *name, size_t len,
    struct dir_ent *out)
{
	struct dscratch *sc;
	uint8_t *buf, *hb;
	struct dleaf *L;
	struct gscan *g;
	struct dhdr h;
	bool collapse = false;
	int err;

	err = name_check(name, len);
	if (err != 0)
		return err;
	sc = malloc(sizeof(*sc));
	if (sc == NULL)
		return FL_ERR(-ENOMEM);
	buf = sc->buf;
	L = &sc->L;
	g = &sc->g;
	err = hdr_read(df, buf, &h);
	if (err != 0)
		goto out;
	err = group_scan(df, &h, name_base(df, name, len), name, len, false,
	    buf, L, g);
	if (err != 0)
		goto out;
	if (!g->found) {
		err = -ENOENT;
		goto out;
	}
	if (h.count == 0) {
		err = corrupt("D6: entry found in a directory of count 0", 0);
		goto out;
	}
	err = df->modify(df->ctx, 0, &hb);
	if (err != 0)
		goto out;
	err = tree_remove(df, &h, &g->fpath, g->ent.key, sc, &collapse);
	if (err != 0)
		goto out;
	if (collapse)
		tree_collapse(df, &h, sc->buf);
	hdr_encode(hb, &h);
	if (out != NULL)
		*out = g->ent;
out:
	free(sc);
	return err;
}

int dir_iterate(struct dirfile *df, uint64_t cookie, dir_iter_fn *fn,
    void *arg)
{
	uint8_t *bufs = NULL;
	struct dleaf *L = NULL;
	struct dir_ent *ent = NULL;
	uint32_t idx[MAXH];
	uint64_t lo[MAXH], max[MAXH], fbn, clo, cmax;
	const char *why;
	bool first = true;
	struct dhdr h;
	uint32_t l;
	int err;

	bufs = malloc(BS * MAXH);
	L = malloc(sizeof(*L));
	ent = malloc(sizeof(*ent));
	if (bufs == NULL || L == NULL || ent == NULL) {
		err = FL_ERR(-ENOMEM);
		goto out;
	}
	err = hdr_read(df, bufs, &h);
	if (err != 0 || cookie == UINT64_MAX)
		goto out;

	/* Descend to the leaf of cookie + 1 ... */
	fbn = h.root;
	clo = 0;
	cmax = UINT64_MAX;
	l = h.height - 1;
	for (;;) {
		uint8_t *b = bufs + (size_t)BS * l;

		err = df->read(df->ctx, fbn, b);
		if (err != 0)
			goto out;
		lo[l] = clo;
		max[l] = cmax;
		if (l == 0) {
			why = leaf_decode(b, fbn, clo, cmax, h.height == 1, L);
			if (why != NULL) {
				err = corrupt(why, fbn);
				goto out;
			}
			for (uint32_t i = 0; i < L->n; i++) {
				if (L->e[i].key <= cookie)
					continue;
				ent_fill(ent, &L->e[i]);
				err = fn(arg, ent);
				if (err != 0)
					goto out;
			}
			/* ... then on to the next leaf in key order. */
			first = false;
			for (l = 1; l < h.height; l++) {
				b = bufs + (size_t)BS * l;
				if (++idx[l] < node_count(b))
					break;
			}
			if (l >= h.height)
				break;		/* the last leaf is done */
			child_range(b, idx[l], lo[l], max[l], &clo, &cmax);
			fbn = ichild(b, idx[l]);
			l--;
			continue;
		}
		why = int_decode(b, fbn, l, clo, cmax, h.nblocks);
		if (why != NULL) {
			err = corrupt(why, fbn);
			goto out;
		}
		/* Toward the first leaf, follow cookie + 1; later, leftmost. */
		idx[l] = first ? child_for(b, cookie + 1) : 0;
		child_range(b, idx[l], clo, cmax, &clo, &cmax);
		fbn = ichild(b, idx[l]);
		l--;
	}
	err = 0;
out:
	free(ent);
	free(L);
	free(bufs);
	return err;
}

int dir_count(struct dirfile *df, uint64_t *count)
{
	uint8_t *buf;
	struct dhdr h;
	int err;

	buf = malloc(BS);
	if (buf == NULL)
		return FL_ERR(-ENOMEM);
	err = hdr_read(df, buf, &h);
	if (err == 0)
		*count = h.count;
	free(buf);
	return err;
}

/* ------------------------------------------------------------------ */
/* Check */

struct dcheck {
	struct dirfile *df;
	struct dhdr h;
	uint8_t *bufs;		/* one block per level */
	uint8_t *seen;		/* bitmap of blocks reached (D7) */
	struct dleaf *L;
	struct dir_ent *ent;
	uint64_t entries;
	uint64_t fbn;		/* block at fault */
	/* The current hash group (D5). */
	uint64_t grp;
	uint32_t grp_n;
	uint8_t grp_len[SEQ_MAX + 1];
	uint8_t (*grp_name)[DIR_NAME_MAX];
	dir_iter_fn *fn;
	void *arg;
};

/* Mark fbn reached; false if out of range or reached before. */
static const char *check_mark(struct dcheck *c, uint64_t fbn)
{
	c->fbn = fbn;
	if (fbn < 1 || fbn >= c->h.nblocks)
		return "D2: block pointer out of range";
	if (c->seen[fbn / 8] & (1u << (fbn & 7)))
		return "D7: block reached twice";
	c->seen[fbn / 8] |= (uint8_t)(1u << (fbn & 7));
	return NULL;
}

static const char *check_entry(struct dcheck *c, const struct lent *e)
{
	if (GROUP(e->key) != GROUP(name_base(c->df, e->name, e->namelen)))
		return "D4: key's hash part does not match its name";
	if (c->grp_n == 0 || GROUP(e->key) != c->grp) {
		c->grp = GROUP(e->key);
		c->grp_n = 0;
	}
	for (uint32_t i = 0; i < c->grp_n; i++)
		if (name_eq(e, c->grp_name[i], c->grp_len[i]))
			return "D5: name appears twice";
	if (c->grp_n > SEQ_MAX)
		return "D3: hash group larger than 256";
	c->grp_len[c->grp_n] = e->namelen;
	memcpy(c->grp_name[c->grp_n], e->name, e->namelen);
	c->grp_n++;
	c->entries++;
	return NULL;
}

static int check_node(struct dcheck *c, uint64_t fbn, uint32_t level,
    uint64_t lo, uint64_t max, const char **why)
{
	uint8_t *b = c->bufs + (size_t)BS * level;
	uint64_t clo, cmax;
	uint32_t n;
	int err;

	if ((*why = check_mark(c, fbn)) != NULL)
		return FL_ERR(-FL_ECORRUPT);
	err = c->df->read(c->df->ctx, fbn, b);
	if (err != 0) {
		*why = "block read failed";
		return err;
	}
	if (level == 0) {
		*why = leaf_decode(b, fbn, lo, max, level == c->h.height - 1,
		    c->L);
		if (*why == NULL &&
		    !all_zero(b + N_BODY + c->L->used, BODY - c->L->used))
			*why = "D2: leaf bytes past used not zero";
		for (uint32_t i = 0; *why == NULL && i < c->L->n; i++) {
			*why = check_entry(c, &c->L->e[i]);
			if (*why == NULL && c->fn != NULL) {
				ent_fill(c->ent, &c->L->e[i]);
				(void)c->fn(c->arg, c->ent);
			}
		}
		return *why == NULL ? 0 : FL_ERR(-FL_ECORRUPT);
	}
	*why = int_decode(b, fbn, level, lo, max, c->h.nblocks);
	if (*why == NULL) {
		n = node_count(b);
		if (!all_zero(b + N_BODY + n * SLOT, BODY - n * SLOT))
			*why = "D2: internal node bytes past used not zero";
	}
	if (*why != NULL)
		return FL_ERR(-FL_ECORRUPT);
	n = node_count(b);
	for (uint32_t i = 0; i < n; i++) {
		/* b is this level's buffer: children use the one below. */
		child_range(b, i, lo, max, &clo, &cmax);
		err = check_node(c, ichild(b, i), level - 1, clo, cmax, why);
		if (err != 0)
			return err;
	}
	return 0;
}

static int check_free_list(struct dcheck *c, const char **why)
{
	uint8_t *b = c->bufs;
	uint64_t fbn = c->h.free_head, next, n = 0;
	int err;

	while (fbn != 0) {
		if ((*why = check_mark(c, fbn)) != NULL)
			return FL_ERR(-FL_ECORRUPT);
		err = c->df->read(c->df->ctx, fbn, b);
		if (err != 0) {
			*why = "block read failed";
			return err;
		}
		*why = free_decode(b, fbn, c->h.nblocks, &next);
		if (*why == NULL && !all_zero(b + N_BODY, BODY))
			*why = "D2: free node body not zero";
		if (*why != NULL)
			return FL_ERR(-FL_ECORRUPT);
		n++;
		fbn = next;
	}
	if (n != c->h.nfree) {
		*why = "D7: free list length differs from the header's";
		return FL_ERR(-FL_ECORRUPT);
	}
	return 0;
}

int dir_check(struct dirfile *df, dir_iter_fn *fn, void *arg,
    const char **why)
{
	struct dcheck *c;
	const char *w = NULL;
	int err;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		w = "out of memory";
		err = FL_ERR(-ENOMEM);
		goto out;
	}
	c->df = df;
	c->fn = fn;
	c->arg = arg;
	c->bufs = malloc(BS * MAXH);
	c->L = malloc(sizeof(*c->L));
	c->ent = malloc(sizeof(*c->ent));
	c->grp_name = malloc(sizeof(*c->grp_name) * (SEQ_MAX + 1));
	if (c->bufs == NULL || c->L == NULL || c->ent == NULL ||
	    c->grp_name == NULL) {
		w = "out of memory";
		err = FL_ERR(-ENOMEM);
		goto out;
	}
	err = df->read(df->ctx, 0, c->bufs);
	if (err != 0) {
		w = "header read failed";
		goto out;
	}
	w = hdr_decode(c->bufs, df->nblocks(df->ctx), &c->h);
	if (w != NULL) {
		err = FL_ERR(-FL_ECORRUPT);
		goto out;
	}
	c->seen = calloc(1, (size_t)(c->h.nblocks / 8 + 1));
	if (c->seen == NULL) {
		w = "out of memory";
		err = FL_ERR(-ENOMEM);
		goto out;
	}
	err = check_node(c, c->h.root, c->h.height - 1, 0, UINT64_MAX, &w);
	if (err != 0)
		goto out;
	err = check_free_list(c, &w);
	if (err != 0)
		goto out;
	for (uint64_t b = 1; b < c->h.nblocks; b++) {
		if (!(c->seen[b / 8] & (1u << (b & 7)))) {
			c->fbn = b;
			w = "D7: block neither in the tree nor free (leaked)";
			err = FL_ERR(-FL_ECORRUPT);
			goto out;
		}
	}
	if (c->entries != c->h.count) {
		c->fbn = 0;
		w = "D6: header count differs from the entries found";
		err = FL_ERR(-FL_ECORRUPT);
		goto out;
	}
out:
	if (err == -FL_ECORRUPT)
		fl_debug("wafl", "directory check: %s (block %llu)", w,
		    (unsigned long long)(c != NULL ? c->fbn : 0));
	if (why != NULL)
		*why = err == 0 ? NULL : w;
	if (c != NULL) {
		free(c->seen);
		free(c->grp_name);
		free(c->ent);
		free(c->L);
		free(c->bufs);
		free(c);
	}
	return err;
}
