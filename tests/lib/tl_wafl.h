/*
 * tests/lib/tl_wafl.h: a file system on a small raid volume in a scratch
 * directory, for wafl tests and benchmarks; plus file helpers that drive the
 * core below the operation layer (internal functions, locks taken as the
 * operation layer takes them).
 */
#ifndef FILER_TESTS_LIB_TL_WAFL_H
#define FILER_TESTS_LIB_TL_WAFL_H

#include <stdbool.h>
#include <stdint.h>

#include "raid/raid.h"
#include "wafl/wafl.h"

#define TL_FS_MAXDISKS	8

struct tl_fs {
	char *dir;
	char paths[TL_FS_MAXDISKS][512];
	const char *pp[TL_FS_MAXDISKS];
	uint32_t ndisks, ndata, nparity;
	uint64_t disk_blocks;
	bool fault_inject;
	raid_vol_t *raid;
	wafl_vol_t *v;
	char logpath[512];
	struct wafl_mount_opts mo;
	uint32_t nfiles;	/* tl_fs_new_file names */
};

/* Make raid (ndata + nparity disks of disk_blocks), mkfs and mount with
 * no CP thread. Aborts the test on failure. */
struct tl_fs *tl_fs_create(uint32_t ndata, uint32_t nparity,
    uint64_t disk_blocks, bool fault_inject);
/* Unmount cleanly, close and reopen raid, mount. */
void tl_fs_remount(struct tl_fs *f);
/* Mount again on the open raid volume (after wafl_abandon). */
void tl_fs_mount(struct tl_fs *f);
void tl_fs_reopen_raid(struct tl_fs *f);
void tl_fs_destroy(struct tl_fs *f);

/* A new regular file "tl-file-N" in the root directory (through
 * wafl_create); returns its inode number. */
uint64_t tl_fs_new_file(struct tl_fs *f);
/* Core-level file helpers (no NVLOG records).  An orphan is a regular
 * file no directory names (for the checker's tests). */
uint64_t tl_fs_new_orphan(struct tl_fs *f);
void tl_fs_write(struct tl_fs *f, uint64_t ino, uint64_t off, const void *buf,
    uint32_t len);
/* Reads len bytes at off; returns bytes read (short at EOF). */
uint32_t tl_fs_read(struct tl_fs *f, uint64_t ino, uint64_t off, void *buf,
    uint32_t len);
void tl_fill_pattern(void *buf, size_t len, uint64_t seed);

#endif
