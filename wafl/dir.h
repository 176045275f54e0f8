/*
 * wafl/dir.h (internal): directories as hashed indexes in a file.
 *
 * A directory is a file of 4096-byte blocks holding a B+tree keyed by a
 * 64-bit key per entry:
 *     key = (siphash24(dir_key, name) >> 8, forced >= 1) << 8 | seq
 * where seq (0..255) is the smallest value not used by another name with the
 * same 56-bit hash when the entry is inserted.  The key is the entry's
 * READDIR cookie: entries are listed in key order and listing resumes at the
 * first key greater than the cookie, so cookies stay valid while entries are
 * added and removed (NFS3-NOTES.md).  Keys are always >= 256, so cookies
 * 0, 1 and 2 stay free for "start", "." and "..".
 *
 * LOOKUP is O(log n): descend the tree to the leaf holding hash<<8, then
 * compare names among the (at most 256) keys of that hash.
 *
 * dir.c owns the block formats (header block 0, internal and leaf nodes; see
 * the table at the top of dir.c and docs/wafl.md) and validates every block
 * it reads: a bad magic, count or offset returns -FL_ECORRUPT.
 *
 * dir.c does no locking and no I/O of its own: it works through struct
 * dirfile, whose owner (the wafl core, or a test) supplies block read and
 * modify functions and holds whatever lock makes the directory stable.
 */
#ifndef FILER_WAFL_DIR_H
#define FILER_WAFL_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIR_NAME_MAX	255u
#define DIR_BLOCK_SIZE	4096u
#define DIR_KEY_MIN	256u	/* every key is >= this (cookies 0..2 free) */
#define DIR_MAX_HEIGHT	8u	/* levels of the tree, leaves included */

struct dirfile {
	void *ctx;
	/* Copy file block fbn into buf (4096 bytes); a hole reads as zeros. */
	int (*read)(void *ctx, uint64_t fbn, void *buf);
	/*
	 * Make file block fbn writable and return a pointer to its 4096 bytes
	 * in *blk (valid until the caller's operation ends).  fbn may be at or
	 * past the end of the file: the file then grows to fbn + 1 blocks and
	 * the new block reads as zeros.
	 */
	int (*modify)(void *ctx, uint64_t fbn, uint8_t **blk);
	/* Current size of the file in blocks (0 for a directory not yet
	 * initialised). */
	uint64_t (*nblocks)(void *ctx);
	const uint8_t *hash_key;	/* 16 bytes */
};

struct dir_ent {
	uint64_t key;		/* == READDIR cookie */
	uint64_t ino;
	uint8_t type;		/* DT_* style type code, opaque to dir.c */
	uint8_t namelen;
	char name[DIR_NAME_MAX + 1];	/* NUL-terminated */
};

/* Initialise an empty directory (writes the header block). */
int dir_init(struct dirfile *df);

/* Find name: 0 and *out filled, or -ENOENT. */
int dir_lookup(struct dirfile *df, const char *name, size_t len,
    struct dir_ent *out);

/*
 * Insert name -> (ino, type).  -EEXIST if the name exists.  With
 * force_key != 0 (NVLOG replay) the entry gets exactly that key (-EEXIST if
 * the key is taken, -FL_ECORRUPT if the key's hash part does not match the
 * name).  The key given is returned in *key_out.  -ENOSPC if all 256 keys
 * of the name's hash group are taken (or the index reached its size limit).
 * A failed call (also a failed df->modify) leaves the directory unchanged.
 */
int dir_add(struct dirfile *df, const char *name, size_t len, uint64_t ino,
    uint8_t type, uint64_t force_key, uint64_t *key_out);

/* Remove name; the removed entry is returned in *out (may be NULL). */
int dir_remove(struct dirfile *df, const char *name, size_t len,
    struct dir_ent *out);

/*
 * Call fn for each entry with key > cookie, in key order, until fn returns
 * non-zero (that value is returned; 1 conventionally means "reply full") or
 * the entries end (returns 0).  ent is borrowed for the call.  fn must not
 * change the directory; change it between calls (the cookie stays valid).
 */
typedef int dir_iter_fn(void *arg, const struct dir_ent *ent);
int dir_iterate(struct dirfile *df, uint64_t cookie, dir_iter_fn *fn,
    void *arg);

/* Number of entries (O(1): kept in the header). */
int dir_count(struct dirfile *df, uint64_t *count);

/*
 * Verify the whole structure: every block's format, keys ordered and
 * within their parents' bounds, each key's hash part equal to its name's
 * hash, no duplicate names, the header's count equal to the entries found.
 * Calls fn (may be NULL) for each entry so a checker can count links
 * (fn's return value is ignored).  Returns 0, -FL_ECORRUPT, or the error
 * of a failed read; *why (may be NULL) gets a static message naming the
 * invariant (D1..D7 in dir.c) that failed.
 */
int dir_check(struct dirfile *df, dir_iter_fn *fn, void *arg,
    const char **why);

/* SipHash-2-4 with a 16-byte key (used for name hashes). */
uint64_t wafl_siphash24(const uint8_t key[16], const void *data, size_t len);

/*
 * Tests only: replace the name hash of every directory in the process (NULL
 * restores wafl_siphash24), to force hash collisions.  Set it while no
 * directory call runs, and keep it for a directory's whole life: keys and
 * dir_check depend on it.
 */
typedef uint64_t dir_hash_fn(const uint8_t key[16], const void *name,
    size_t len);
void dir_test_set_hash(dir_hash_fn *fn);

#endif
