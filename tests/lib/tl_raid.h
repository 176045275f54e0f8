/*
 * tests/lib/tl_raid.h: helpers for tests and benchmarks that drive raid/.
 *
 * struct tl_vol keeps what a test needs around a volume: the scratch
 * directory, the disk paths in position order (then spares), the open
 * handle, the geometry and a shadow copy of every VBN's expected contents.
 * Events raised by raid are counted in tl_vol.events.
 *
 * Nothing here is clever: a test states what it expects with these helpers,
 * and the helpers never hide a failure (they return counts or errors for
 * the test to assert on).
 */
#ifndef FILER_TESTS_LIB_TL_RAID_H
#define FILER_TESTS_LIB_TL_RAID_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "raid/raid.h"

#define TL_MAX_PATHS	64
#define TL_BS		RAID_BLOCK_SIZE

/* Store val as a little-endian field of size 1, 2, 4 or 8 bytes at p
 * (what the hostile-image tests rewrite on disk). */
static inline void tl_put_field(uint8_t *p, uint32_t size, uint64_t val)
{
	if (size == 1)
		p[0] = (uint8_t)val;
	else if (size == 2)
		fl_put_le16(p, (uint16_t)val);
	else if (size == 4)
		fl_put_le32(p, (uint32_t)val);
	else
		fl_put_le64(p, val);
}

/* Deterministic random numbers (splitmix64), one state per user. */
static inline uint64_t tl_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
static inline uint64_t tl_rand_below(uint64_t *s, uint64_t n)
{
	return n == 0 ? 0 : tl_rand(s) % n;
}
void tl_fill_random(void *buf, size_t len, uint64_t *s);

#define TL_NEVENTS	(RAID_EV_REBUILD_MISMATCH + 1)
struct tl_events {
	pthread_mutex_t lock;
	uint64_t count[TL_NEVENTS];
	char last[TL_NEVENTS][256];
};
raid_event_fn tl_event_record;
uint64_t tl_events_count(struct tl_events *e, enum raid_event ev);
void tl_events_reset(struct tl_events *e);

struct tl_vol {
	char *dir;			/* owned scratch directory */
	char *paths[TL_MAX_PATHS];	/* owned strings; members then spares */
	size_t npaths;
	uint32_t ngroups, ndata, nparity;
	uint64_t disk_blocks, nvbns;
	raid_vol_t *v;			/* NULL while closed */
	uint8_t *shadow;		/* nvbns * 4096: expected contents */
	struct tl_events events;
	bool fault_inject;		/* options for the next open */
	bool auto_rebuild;
};

/*
 * Create a volume of ngroups x (ndata + nparity) image files named
 * d<group>_<pos>.img in a fresh scratch directory under base (NULL:
 * $TMPDIR or /tmp).  The shadow starts all zero, as the volume does.
 * Returns raid_create's result.
 */
int tl_vol_create(struct tl_vol *t, const char *base, uint32_t ngroups,
    uint32_t ndata, uint32_t nparity, uint64_t disk_blocks,
    bool fault_inject);
/* Open again with t->paths (NULL entries are missing disks). */
int tl_vol_open(struct tl_vol *t);
/* Open with a caller-built path list. */
int tl_vol_open_paths(struct tl_vol *t, const char *const *paths, size_t n);
void tl_vol_close(struct tl_vol *t);
/* Close if open, remove the scratch directory, free everything. */
void tl_vol_destroy(struct tl_vol *t);

/* Member disk index of (group, position). */
static inline size_t tl_disk(const struct tl_vol *t, uint32_t group,
    uint32_t pos)
{
	return (size_t)group * (t->ndata + t->nparity) + pos;
}
static inline uint8_t *tl_shadow(const struct tl_vol *t, uint64_t vbn)
{
	return t->shadow + vbn * TL_BS;
}
/* Add a path (owned copy) at the end of t->paths; returns its index. */
size_t tl_vol_add_path(struct tl_vol *t, const char *name);

/* Write the whole volume with random data by full stripes; flush. */
int tl_vol_fill(struct tl_vol *t, uint64_t seed);
/* raid_write of n random blocks at vbn, mirrored into the shadow. */
int tl_vol_write_random(struct tl_vol *t, uint64_t vbn, uint32_t n,
    uint64_t *rng);
/*
 * Read every VBN (in chunks of up to a stripe) and compare with the shadow.
 * Returns the number of wrong blocks; a read error counts every block of
 * the chunk and is reported.  *read_err receives the first error (or 0).
 */
uint64_t tl_vol_verify(struct tl_vol *t, int *read_err);

/* First block that differs between a and b (n blocks), or -1. */
long tl_first_diff_block(const void *a, const void *b, size_t n);

/*
 * Byte offset of the data area in a disk image, found by searching the
 * image (at 512-byte steps) for expect, the 4096 bytes that belong at disk
 * block `block`.  Returns the offset of data block 0, or -1 if not found.
 */
int64_t tl_find_data_offset(const char *path, const void *expect,
    uint64_t block);

/* pread/pwrite of one disk block's 4096 bytes at data_off + block * 4096. */
int tl_image_read_block(const char *path, int64_t data_off, uint64_t block,
    void *buf);

/* Snapshot / restore every member image (for destructive per-case tests). */
int tl_vol_save_images(struct tl_vol *t, const char *suffix);
int tl_vol_restore_images(struct tl_vol *t, const char *suffix);

#endif
