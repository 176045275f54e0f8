/*
 * wafl/logrec.h (internal): payloads of the NVLOG records of the operation
 * layer, one explicit little-endian encode/decode pair per record type
 * (STYLE.md 5), and the replay entry point mount.c calls for each record.
 *
 * A record carries every choice the server made and told its caller:
 * inode number, generation, directory key (the READDIR cookie), and every
 * timestamp, so replay (W7) reproduces them exactly.  Record types 1..63
 * belong to the operation layer; other wafl record types (if any) start at
 * 64.  Payload layouts (offset size field), all fields little-endian:
 *
 * MAKE (1): create, mkdir, symlink, mknod
 *     0  8 dir        8  8 ino       16  4 gen        20  4 mode (S_IFMT|perm)
 *    24  8 key       32  4 uid       36  4 gid        40  4 rdev_major
 *    44  4 rdev_minor 48 4 flags (WAFL_INO_EXCL)      52  4 reserved 0
 *    56  8 size      64  8 verifier  72  8 atime      80  8 mtime
 *    88  8 ctime     96  2 namelen   98  2 targetlen
 *   100  name (namelen bytes), then target (targetlen bytes, symlinks)
 * REMOVE (2): remove, rmdir
 *     0  8 dir        8  8 ino       16  8 ctime      24  4 flags (1: rmdir)
 *    28  2 namelen   30  name
 * RENAME (3)
 *     0  8 fromdir    8  8 todir     16  8 ino (moved) 24  8 tino (replaced,
 *    0: none)        32  8 key (new entry in todir)   40  8 ctime
 *    48  2 fromlen   50  2 tolen     52  fromname, then toname
 * LINK (4)
 *     0  8 ino        8  4 gen       12  4 reserved 0 16  8 dir
 *    24  8 key       32  8 ctime     40  2 namelen    42  name
 * SETATTR (5): setattr, and CREATE UNCHECKED truncating an existing file
 *     0  8 ino        8  4 gen       12  4 mask (REC_SA_*)
 *    16  4 mode      20  4 uid       24  4 gid        28  4 reserved 0
 *    32  8 size      40  8 atime     48  8 mtime      56  8 ctime
 * WRITE (6)
 *     0  8 ino        8  4 gen       12  4 len        16  8 off
 *    24  8 mtime (= ctime)           32  data (len bytes)
 * Decoders bound every length by the payload and by WAFL_NAME_MAX /
 * WAFL_PATH_MAX and refuse names with '/' or NUL: -FL_ECORRUPT.
 */
#ifndef FILER_WAFL_LOGREC_H
#define FILER_WAFL_LOGREC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "wafl/wafl.h"

struct wafl_vol;

enum {
	REC_MAKE = 1,
	REC_REMOVE = 2,
	REC_RENAME = 3,
	REC_LINK = 4,
	REC_SETATTR = 5,
	REC_WRITE = 6,
};

#define REC_MAKE_FIXED		100u
#define REC_REMOVE_FIXED	30u
#define REC_RENAME_FIXED	52u
#define REC_LINK_FIXED		42u
#define REC_SETATTR_SIZE	64u
#define REC_WRITE_FIXED		32u
/* The largest non-WRITE payload (a MAKE with a full name and target). */
#define REC_MAX_NS_PAYLOAD	(REC_MAKE_FIXED + WAFL_NAME_MAX + WAFL_PATH_MAX)

#define REC_REMOVE_RMDIR	0x1u

#define REC_SA_MODE	0x01u
#define REC_SA_UID	0x02u
#define REC_SA_GID	0x04u
#define REC_SA_SIZE	0x08u
#define REC_SA_ATIME	0x10u
#define REC_SA_MTIME	0x20u
#define REC_SA_ALL	0x3fu

/* Names are borrowed (from the caller, or from the decode buffer) and
 * NUL-terminated; decode copies them into the record's own arrays. */
struct rec_make {
	uint64_t dir, ino, key, size, verifier;
	uint64_t atime, mtime, ctime;
	uint32_t gen, mode, uid, gid, rdev_major, rdev_minor, flags;
	const char *name;
	const char *target;		/* symlinks; NULL otherwise */
	char namebuf[WAFL_NAME_MAX + 1];
	char targetbuf[WAFL_PATH_MAX + 1];
};

struct rec_remove {
	uint64_t dir, ino, ctime;
	uint32_t flags;
	const char *name;
	char namebuf[WAFL_NAME_MAX + 1];
};

struct rec_rename {
	uint64_t fromdir, todir, ino, tino, key, ctime;
	const char *fromname, *toname;
	char frombuf[WAFL_NAME_MAX + 1], tobuf[WAFL_NAME_MAX + 1];
};

struct rec_link {
	uint64_t ino, dir, key, ctime;
	uint32_t gen;
	const char *name;
	char namebuf[WAFL_NAME_MAX + 1];
};

struct rec_setattr {
	uint64_t ino, size, atime, mtime, ctime;
	uint32_t gen, mask, mode, uid, gid;
};

struct rec_write {
	uint64_t ino, off, mtime;
	uint32_t gen, len;
	const void *data;		/* borrowed */
};

/* Encoders write the fixed part (and names) into buf, which must hold
 * REC_MAX_NS_PAYLOAD bytes (REC_WRITE_FIXED for write: the data goes in a
 * second iovec); they return the bytes written. */
uint32_t rec_make_encode(uint8_t *buf, const struct rec_make *r);
uint32_t rec_remove_encode(uint8_t *buf, const struct rec_remove *r);
uint32_t rec_rename_encode(uint8_t *buf, const struct rec_rename *r);
uint32_t rec_link_encode(uint8_t *buf, const struct rec_link *r);
uint32_t rec_setattr_encode(uint8_t *buf, const struct rec_setattr *r);
uint32_t rec_write_encode(uint8_t *buf, const struct rec_write *r);

/* Decoders: 0 or -FL_ECORRUPT. */
int rec_make_decode(const uint8_t *p, uint32_t len, struct rec_make *r);
int rec_remove_decode(const uint8_t *p, uint32_t len, struct rec_remove *r);
int rec_rename_decode(const uint8_t *p, uint32_t len, struct rec_rename *r);
int rec_link_decode(const uint8_t *p, uint32_t len, struct rec_link *r);
int rec_setattr_decode(const uint8_t *p, uint32_t len, struct rec_setattr *r);
int rec_write_decode(const uint8_t *p, uint32_t len, struct rec_write *r);

/*
 * Re-apply one record at mount (single-threaded, before the CP thread,
 * no log appends).  0, -FL_ECORRUPT for a record that does not decode or
 * does not fit the tree it is replayed on, or an I/O error.
 */
int wafl_replay_record(struct wafl_vol *v, uint16_t type, const void *payload,
    uint32_t len);

#endif
