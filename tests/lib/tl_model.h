/*
 * tests/lib/tl_model.h: an in-memory model of a wafl directory tree, for
 * the model-based randomized test (tests/wafl/test_model.c) and the crash
 * tests (tests/wafl/test_crash.c).
 *
 * THE MODEL
 *   A tree of nodes (directories, regular files, symlinks, fifos, devices,
 *   sockets) reached from a root directory by names.  A node named twice is
 *   one node (hard links); each node remembers the wafl object (inode number
 *   and generation) the file system handed out for it, once known.  File
 *   contents are kept per 4 KiB block; every block index ever written stays
 *   in the node (as zeros after a truncate) so that a check reads it back.
 *   Times are compared only where the model knows them exactly (set by a
 *   client); everything else NFSv3 reports that the model predicts (type,
 *   mode, uid, gid, size, nlink, rdev, symlink target, data, names, link
 *   identity, generations) is compared exactly.
 *
 * OPERATIONS
 *   struct tm_op is one public-API operation named by paths ("" is the
 *   model's root, "a/b" a name below it), so an operation list can be
 *   applied again to a copy of the model taken before it (the crash tests
 *   search for the prefix a crashed volume holds).  tm_gen picks a random
 *   operation; tm_exec runs it through wafl_*; tm_apply predicts its result
 *   (0 or the exact negative errno, in the order wafl's checks come) and
 *   changes the model when it succeeds.  Run tm_exec before tm_apply: it
 *   resolves paths to objects through the model as it was.
 *
 * OBSERVING
 *   tm_observe builds a model from a file system through a backend (the
 *   live public API, or a test's own, e.g. a snapshot read through the
 *   internals): READDIR in short pages, LOOKUP of every name, GETATTR,
 *   READ, READLINK, and the "." / ".." structure.  tm_diff compares a model
 *   with an observation and names the first difference.
 *
 * OWNERSHIP
 *   struct tmodel and struct tm_op own their strings and buffers; free with
 *   tm_free / tm_op_clear.  Not thread safe: one model per thread.
 */
#ifndef FILER_TESTS_LIB_TL_MODEL_H
#define FILER_TESTS_LIB_TL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wafl/wafl.h"

#define TM_BLK		4096u

struct tm_blk {
	uint64_t idx;
	uint8_t *data;			/* TM_BLK bytes, or NULL: zeros */
};

struct tm_dent {
	char *name;
	int node;
};

struct tm_node {
	bool live;
	enum wafl_type type;
	uint32_t mode;			/* permission bits, 07777 */
	uint32_t uid, gid;
	uint32_t rdev_major, rdev_minor;
	uint64_t size;
	struct tm_blk *blk;		/* sorted by idx */
	size_t nblk, capblk;
	char *target;			/* symlinks */
	bool excl;			/* created EXCLUSIVE with verifier */
	uint64_t verifier;
	bool atime_known, mtime_known;
	uint64_t atime, mtime;
	bool obj_known;
	struct wafl_obj obj;
	uint32_t names;			/* non-directories: names held */
	uint32_t nlink_seen;		/* observations: what GETATTR said */
	/* directories */
	struct tm_dent *ent;
	size_t nent, capent;
	int parent;			/* the root's is itself */
	uint32_t nsubdirs;
};

struct tmodel {
	struct tm_node *n;
	size_t nn, capn;
	int root;
	/* Observations: bytes past this offset were read only where a hint
	 * asked (UINT64_MAX in a model). */
	uint64_t dense;
};

/* A model whose root directory is the object root with attributes a. */
struct tmodel *tm_new(const struct wafl_obj *root, const struct wafl_attr *a);
void tm_free(struct tmodel *m);
struct tmodel *tm_clone(const struct tmodel *m);
/* Node index of path ("" is the root), or -ENOENT / -ENOTDIR. */
int tm_resolve(const struct tmodel *m, const char *path);
uint32_t tm_nlink(const struct tmodel *m, int node);
/* Number of live nodes. */
size_t tm_count(const struct tmodel *m);

enum tm_opk {
	TM_CREATE = 1, TM_MKDIR, TM_SYMLINK, TM_MKNOD, TM_WRITE, TM_TRUNC,
	TM_SETATTR, TM_REMOVE, TM_RMDIR, TM_RENAME, TM_LINK, TM_COMMIT,
};

struct tm_op {
	enum tm_opk k;
	char *path;			/* the object, or the directory */
	char *name;			/* a name in path */
	char *path2, *name2;		/* RENAME to, LINK into */
	char *target;			/* SYMLINK */
	enum wafl_create_how how;
	enum wafl_type ntype;		/* MKNOD */
	uint32_t rdev_major, rdev_minor;
	struct wafl_sattr sa;		/* CREATE, MKDIR, ..., SETATTR, TRUNC */
	uint64_t verifier;
	uint64_t off, seed;		/* WRITE: data is tl_fill_pattern(seed) */
	uint32_t len;
	enum wafl_stable stable;
	/* tm_exec's results */
	int rc;
	struct wafl_obj out;
	bool post_valid;
	uint64_t post_size;
};

void tm_op_clear(struct tm_op *op);
void tm_op_copy(struct tm_op *dst, const struct tm_op *src);
/* One line describing op, for failure messages. */
void tm_op_describe(const struct tm_op *op, char *buf, size_t len);
/* Stable operations and COMMIT are durable once they return 0 (W7). */
bool tm_op_durable(const struct tm_op *op);

struct tm_gen_opts {
	uint32_t name_pool;		/* names n0..n(pool-1): collisions */
	uint64_t max_off;		/* ordinary write / truncate offsets */
	uint64_t far_off;		/* sparse far offsets (0: none) */
	uint32_t max_len;		/* ordinary write length */
	bool big_writes;		/* now and then up to 1 MiB */
	bool odd_names;			/* 255-byte names, odd bytes */
	bool errors;			/* aim at expected errors too */
	bool exclusive;			/* EXCLUSIVE creates */
	uint32_t max_nodes;		/* stop creating beyond this */
	uint32_t commit_pct;		/* extra COMMITs, percent of ops */
	uint32_t unstable_pct;		/* writes UNSTABLE (0: a third) */
};
/* Pick a random operation valid to describe against m. */
void tm_gen(const struct tmodel *m, uint64_t *rng, const struct tm_gen_opts *go,
    struct tm_op *op);

/* Run op through the public API; returns (and stores in op->rc) its result. */
int tm_exec(wafl_vol_t *v, const struct tmodel *m, struct tm_op *op);
/* The result op must have had on m; applied to m if 0.  out: the object a
 * creating operation returned (NULL if unknown). */
int tm_apply(struct tmodel *m, const struct tm_op *op,
    const struct wafl_obj *out);

/* A file system as tm_observe reads it. */
struct tm_backend {
	void *ctx;
	/* fn(arg, name, obj) for each entry but "." and ".."; *dotdot gets
	 * the fileid ".." names. */
	int (*list)(void *ctx, const struct wafl_obj *dir, uint64_t *dotdot,
	    int (*fn)(void *arg, const char *name, const struct wafl_obj *o),
	    void *arg);
	int (*getattr)(void *ctx, const struct wafl_obj *o,
	    struct wafl_attr *a);
	int (*read)(void *ctx, const struct wafl_obj *o, uint64_t off,
	    uint32_t len, void *buf, uint32_t *got, bool *eof);
	int (*readlink)(void *ctx, const struct wafl_obj *o, char *buf,
	    size_t bufsz, size_t *len);
};
/* The live file system through wafl's public API. */
void tm_backend_live(struct tm_backend *b, wafl_vol_t *v);

/*
 * Observe the tree below root: files are read whole up to dense bytes,
 * and past that at every block the hint model (may be NULL) holds for the
 * same path, plus the last block.  NULL and a message in err on failure.
 */
struct tmodel *tm_observe(const struct tm_backend *b, const struct wafl_obj *root,
    const struct tmodel *hint, uint64_t dense, char *err, size_t errlen);

#define TM_DIFF_OBJS	0x1u	/* known objects must match (W7) */
#define TM_DIFF_ADOPT	0x2u	/* on a match, take the observed objects */
/* 0 if model m and observation o agree; else -1 and the first difference
 * in err. */
int tm_diff(struct tmodel *m, const struct tmodel *o, unsigned flags, char *err,
    size_t errlen);

/*
 * RECOVERY.  UNSTABLE writes change memory only (wafl/ops_data.c): a CP or a
 * COMMIT of the file makes them durable; everything else is logged before
 * it returns.  After a crash the volume holds the newest durable root
 * (every operation of a generation <= its generation, UNSTABLE writes
 * included) plus the NVLOG records after it, replayed in order up to a
 * point.  A journal records, per operation, the generation it ran in
 * (read before and after) and whether it returned; tm_recover searches the
 * states that rule allows for one equal to an observation.
 */
struct tm_jop {
	struct tm_op op;
	int expect;			/* the model's result */
	uint64_t gen_before, gen_after;
};

struct tm_journal {
	struct tmodel *base;		/* the state before the first op */
	struct tm_jop *j;
	size_t n, cap;
};

void tm_journal_start(struct tm_journal *jn, const struct tmodel *base);
void tm_journal_add(struct tm_journal *jn, const struct tm_op *op,
    int expect, uint64_t gen_before, uint64_t gen_after);
void tm_journal_free(struct tm_journal *jn);

/*
 * The model a recovered volume may hold, given the generation of the root
 * it mounted (before replay) and the number of leading operations that
 * returned durable (must all be there).  Returns a new model equal to obs
 * (objects adopted) or NULL, with the closest miss in err.
 */
struct tmodel *tm_recover(const struct tm_journal *jn, uint64_t root_gen,
    size_t must, const struct tmodel *obs, unsigned flags, char *err,
    size_t errlen);

/* xorshift64*: the tests' random numbers. */
uint64_t tm_rand(uint64_t *s);
/* Uniform in [0, n) (0 if n == 0). */
uint64_t tm_below(uint64_t *s, uint64_t n);

/*
 * Test size: FILER_SOAK=1 in the environment multiplies (soak), and an
 * ASan build divides; FILER_TEST_SCALE=<float> overrides both.
 */
double tm_scale(void);
/* FILER_SEED from the environment, else a fresh seed from the clock. */
uint64_t tm_seed(void);

#endif
