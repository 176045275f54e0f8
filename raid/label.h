/*
 * raid/label.h: the disk label, the one on-disk structure of raid/ besides
 * the write-intent bitmap (intent.c).  Defined once here (STYLE.md 5).
 *
 * PLACEMENT
 *   Every disk starts with two label copies, 4096-byte blocks 0 and 1.  A
 *   label write goes to copy (seq % 2) and is fdatasync'ed before the next
 *   one, so one copy is always intact; on read the valid copy with the
 *   higher seq wins (LMDB meta pages).  Bytes 1024..4095 of a label block
 *   are zero.  Blocks 2 .. 2+intent_blocks-1 hold the write-intent bitmap,
 *   then the data area starts at block data_off (a multiple of 256).
 *
 * FORMAT (little-endian, RAID_LABEL_SIZE = 1024 bytes)
 *   off  size  field
 *     0     8  magic            "FLRDLBL1" (0x314c424c44524c46)
 *     8     4  version          RAID_LABEL_VERSION (1)
 *    12     4  crc32c           of bytes 0..1023 with this field zero
 *    16    16  volume uuid
 *    32    16  disk uuid
 *    48     8  generation       membership generation (R6: older = stale)
 *    56     8  seq              label write counter (picks the copy)
 *    64     4  ngroups          1 .. RAID_MAX_GROUPS
 *    68     4  group            0 .. ngroups-1, 0xffffffff for a spare
 *    72     4  position         0 .. N+P-1, 0xffffffff for a spare
 *    76     4  ndata (N)        1 .. RAID_MAX_DATA
 *    80     4  nparity (P)      1 .. RAID_MAX_PARITY
 *    84     4  flags            bit 0 clean, bit 1 spare; others zero
 *    88     8  disk_blocks      data blocks per disk
 *    96     8  data_off         first data block (4 KiB blocks)
 *   104     8  intent_off       first bitmap block (= 2)
 *   112     4  intent_blocks    bitmap blocks
 *   116     4  region_stripes   stripes per intent bit (1024)
 *   120     8  create_ns        creation time, ns since the epoch
 *   128     8  journal_off      first degraded-write journal block
 *                               (= intent_off + intent_blocks)
 *   136     4  journal_blocks   journal_slots * (1 + P)
 *   140     4  journal_slots    RAID_JOURNAL_SLOTS (32)
 *   144   112  reserved         zero
 *   256   768  member table     32 entries of 24 bytes, one per position
 *                               of the disk's group (N+P used, rest zero):
 *                                 +0 16 disk uuid
 *                                 +16 4 state (enum raid_disk_state)
 *                                 +20 4 reserved, zero
 *                               (all zero for a spare)
 */
#ifndef FILER_RAID_LABEL_H
#define FILER_RAID_LABEL_H

#include <stdbool.h>
#include <stdint.h>

#define RAID_LABEL_MAGIC	0x314c424c44524c46ull	/* "FLRDLBL1" */
#define RAID_LABEL_VERSION	1u
#define RAID_LABEL_SIZE		1024u
#define RAID_LABEL_MEMBERS	32u
#define RAID_LABEL_MEMBER_SIZE	24u
#define RAID_LABEL_MEMBER_OFF	256u
#define RAID_LABEL_NONE		0xffffffffu
#define RAID_LABEL_F_CLEAN	0x1u
#define RAID_LABEL_F_SPARE	0x2u
#define RAID_LABEL_COPIES	2u
#define RAID_INTENT_OFF		2u		/* blocks */
#define RAID_REGION_STRIPES	1024u
#define RAID_DATA_ALIGN		256u		/* blocks (1 MiB) */
#define RAID_JOURNAL_SLOTS	32u

_Static_assert(RAID_LABEL_MEMBER_OFF +
    RAID_LABEL_MEMBERS * RAID_LABEL_MEMBER_SIZE == RAID_LABEL_SIZE,
    "label member table must end the label");
_Static_assert(RAID_LABEL_SIZE <= 4096, "label fits one block");

struct raid_label_member {
	uint8_t uuid[16];
	uint32_t state;
};

/* Decoded form; never written to disk as is. */
struct raid_label {
	uint8_t vol_uuid[16];
	uint8_t disk_uuid[16];
	uint64_t generation;
	uint64_t seq;
	uint32_t ngroups, group, position, ndata, nparity, flags;
	uint64_t disk_blocks, data_off, intent_off;
	uint32_t intent_blocks, region_stripes;
	uint64_t create_ns;
	uint64_t journal_off;
	uint32_t journal_blocks, journal_slots;
	struct raid_label_member member[RAID_LABEL_MEMBERS];
};

/* Encode into buf[RAID_LABEL_SIZE] (computes the checksum). */
void raid_label_encode(const struct raid_label *l, uint8_t *buf);
/*
 * Decode and validate buf[RAID_LABEL_SIZE]: magic, version, checksum and
 * the range of every field.  Returns 0, or -FL_ECORRUPT with a short reason
 * in *why (static string).
 */
int raid_label_decode(const uint8_t *buf, struct raid_label *l,
    const char **why);
/*
 * Read both copies from a device and return the valid one with the higher
 * seq.  -FL_ECORRUPT (why says what) if neither is valid, or the I/O error.
 * has_magic: whether any copy carried the magic (a filer disk at all).
 */
struct raid_dev;
int raid_label_read(struct raid_dev *d, struct raid_label *l,
    const char **why, bool *has_magic);
/* Write l (its seq chooses the copy) and sync. */
int raid_label_write(struct raid_dev *d, const struct raid_label *l);

#endif
