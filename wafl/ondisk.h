/*
 * wafl/ondisk.h: every on-disk structure of the file system, defined once.
 *
 * All structures are encoded field by field, little-endian, by the
 * encode/decode pairs in ondisk.c (STYLE.md 5).  Decoders validate every
 * field and return -FL_ECORRUPT on anything out of range: disk data is
 * hostile until checked (STYLE.md 6).
 *
 * Block size is 4096.  VBN 0 and VBN 1 are the two fsinfo slots; VBN 0 is
 * never a data block, so vbn == 0 in a block pointer means "hole".
 *
 * ---------------------------------------------------------------------
 * Block pointer (32 bytes)
 *   off size  field
 *     0    8  vbn         0 = hole (no block, reads as zeros)
 *     8    8  birth_gen   CP generation that wrote the block
 *    16    4  checksum    crc32c of the 4096-byte block
 *    20    4  flags       0 (reserved)
 *    24    8  reserved    0
 * A block pointer is the only way to reach a block: every read is checked
 * against the checksum in its parent (W1).
 *
 * ---------------------------------------------------------------------
 * fsinfo (one 4096-byte block, slots at VBN 0 and 1; CP n writes slot n%2)
 *     0    8  magic        "FLRFSINF"
 *     8    4  version      1
 *    12    4  block_size   4096
 *    16    8  generation   CP number of this root (mkfs writes 1)
 *    24   16  fs_uuid      identity of the file system (copied to mirrors)
 *    40    8  fsid         NFS fsid (derived from fs_uuid at mkfs)
 *    48    8  nvbns        VBN space the file system was made for
 *    56    8  create_ns    mkfs time
 *    64    8  write_ns     time this root was written
 *    72   32  root         block pointer of this CP's root block
 *   104  160  ring[4]      last CP roots, newest first: {gen 8, bp 32}
 *                          ring[0] is this CP (same as root)
 *   264   32  fh_key       file-handle MAC key (nfsd, W-never changes)
 *   296   16  dir_key      SipHash key of directory name hashes
 *   312    8  mirror_base  generation a mirror destination holds (0: none)
 *   320    4  flags        WAFL_FSI_REPLICA
 *   324    4  ring_len     number of valid ring entries (1..4)
 *   328    4  nholds       held roots recorded below (0..8)
 *   332    4  reserved     0
 *   336  320  holds[8]     roots the mirror holds (wafl_hold_root),
 *                          oldest first: {gen 8, bp 32}; a root's
 *                          bp.birth == gen, gen <= generation.  Mount
 *                          holds them again, so the allocator keeps
 *                          their blocks across an unmount or a crash
 *                          (W3); a mirror destination writes none.
 *   656 3436  reserved     0
 *  4092    4  checksum     crc32c of bytes 0..4091
 * Mount reads both slots and takes the newest valid generation (W6).
 *
 * ---------------------------------------------------------------------
 * Root block (one per CP, allocated like any block)
 *     0    8  magic        "FLRROOT1"
 *     8    8  generation
 *    16    8  blocks_used  blocks allocated in the active bitmap
 *    24    8  inodes_used
 *    32    8  next_ino     allocation hint
 *    40    4  norphans     entries of the orphan list (0..WAFL_ORPHAN_MAX)
 *    44   84  reserved     0
 *   128  512  inode file's own inode (inode 0), format below
 *   640 2048  orphans[256] inode numbers of the orphans: inodes whose last
 *                          link went while some of their blocks could not
 *                          be freed (an unreadable pointer block); each
 *                          is allocated with nlink 0, its tree naming
 *                          only what it still holds, and is freed by a
 *                          later sync or mount.  16 <= ino < 2^40,
 *                          distinct; entries past norphans 0
 *  2688 1408  reserved     0
 *
 * ---------------------------------------------------------------------
 * Inode (512 bytes, 8 per inode-file block; inode number i lives in
 * inode-file block i/8, slot i%8)
 *     0    4  mode         S_IFMT type bits | 12 permission bits; 0 = free
 *     4    4  nlink
 *     8    4  uid
 *    12    4  gid
 *    16    8  size         bytes
 *    24    8  blocks       4 KiB blocks held (data + indirect)
 *    32    8  atime_ns
 *    40    8  mtime_ns
 *    48    8  ctime_ns
 *    56    8  crtime_ns
 *    64    4  gen          generation; +1 each time the number is reused
 *    68    4  flags        WAFL_INO_INLINE, WAFL_INO_EXCL
 *    72    4  rdev_major
 *    76    4  rdev_minor
 *    80    1  height       tree height (0: top pointers point at data)
 *    81    7  reserved     0
 *    88    8  ino          its own number (checked on read)
 *    96    8  verifier     CREATE EXCLUSIVE verifier (WAFL_INO_EXCL)
 *   104    8  parent       directories: inode number of ".."
 *   112   16  reserved     0
 *   128  384  top[12]      block pointers, or inline data (symlinks of
 *                          up to 384 bytes, WAFL_INO_INLINE)
 * A file of height h maps 12 * 128^h blocks: h = 5 covers 2^50.5 bytes.
 *
 * ---------------------------------------------------------------------
 * Indirect block: 128 block pointers.
 *
 * Bitmap files (active bitmap inode 1, summary map inode 4): block b holds
 * bits for VBNs b*32768 .. b*32768+32767; bit (v % 8) of byte (v / 8) % 4096.
 *
 * Snapshot table (inode 3): a file of 128-byte entries, 32 per block;
 * entry i is slot i (0..WAFL_MAX_SNAPSHOTS-1).
 *     0    8  generation   0 = free slot
 *     8    8  create_ns
 *    16   32  root         block pointer of the snapshot's root block
 *    48    8  id           unique, never reused
 *    56    8  origin       0, or an import's tag for the tree it holds
 *                          (wafl_import_tree.origin): what a repeated
 *                          import finds it by
 *    64   64  name         NUL-padded, 1..63 bytes
 *
 * Directories: see dir.c (header block 0, B+tree of 64-bit hash keys).
 * NVLOG records: see nvlog.h.
 */
#ifndef FILER_WAFL_ONDISK_H
#define FILER_WAFL_ONDISK_H

#include <stdbool.h>
#include <stdint.h>

#define WAFL_BLOCK_SIZE		4096u
#define WAFL_BP_SIZE		32u
#define WAFL_BPS_PER_BLOCK	(WAFL_BLOCK_SIZE / WAFL_BP_SIZE)	/* 128 */
#define WAFL_INODE_SIZE		512u
#define WAFL_INODES_PER_BLOCK	(WAFL_BLOCK_SIZE / WAFL_INODE_SIZE)	/* 8 */
#define WAFL_NTOP		12u
#define WAFL_INLINE_MAX		(WAFL_NTOP * WAFL_BP_SIZE)		/* 384 */
#define WAFL_MAX_HEIGHT		6u
#define WAFL_BITS_PER_BLOCK	(WAFL_BLOCK_SIZE * 8u)			/* 32768 */
#define WAFL_RING_K		4u	/* CP roots kept (K >= 3) */
#define WAFL_SNAP_ENTRY_SIZE	128u
#define WAFL_SNAPS_PER_BLOCK	(WAFL_BLOCK_SIZE / WAFL_SNAP_ENTRY_SIZE)
#define WAFL_MAX_SNAPSHOTS	255u
#define WAFL_SNAP_NAME_MAX	63u
#define WAFL_FSINFO_SLOTS	2u
#define WAFL_FSI_HOLDS		8u	/* held roots recorded in fsinfo */
#define WAFL_ORPHAN_MAX		256u	/* orphan list in the root block */
/* Largest CP generation: fsinfo past it is corrupt, and no CP writes it,
 * so the generation never wraps (open_gen is fsinfo's + 1, + 2 after a
 * replay). */
#define WAFL_GEN_MAX		(1ull << 62)

#define WAFL_FSINFO_MAGIC	"FLRFSINF"
#define WAFL_ROOT_MAGIC		"FLRROOT1"
#define WAFL_FORMAT_VERSION	1u

/* Reserved inode numbers. */
#define WAFL_INO_INODEFILE	0u
#define WAFL_INO_BITMAP		1u
#define WAFL_INO_ROOTDIR	2u
#define WAFL_INO_SNAPTABLE	3u
#define WAFL_INO_SUMMARY	4u
#define WAFL_INO_FIRST_USER	16u
#define WAFL_INO_LIMIT		(1ull << 40)	/* ialloc gives numbers below */

/* Inode flags. */
#define WAFL_INO_INLINE		0x1u
#define WAFL_INO_EXCL		0x2u

/* fsinfo flags. */
#define WAFL_FSI_REPLICA	0x1u

struct wafl_bp {
	uint64_t vbn;
	uint64_t birth;
	uint32_t cksum;
	uint32_t flags;
};

struct wafl_ring_ent {
	uint64_t gen;
	struct wafl_bp root;
};

struct wafl_fsinfo {
	uint64_t gen;
	uint8_t fs_uuid[16];
	uint64_t fsid;
	uint64_t nvbns;
	uint64_t create_ns;
	uint64_t write_ns;
	struct wafl_bp root;
	struct wafl_ring_ent ring[WAFL_RING_K];
	uint32_t ring_len;
	uint8_t fh_key[32];
	uint8_t dir_key[16];
	uint64_t mirror_base;
	uint32_t flags;
	uint32_t nholds;
	struct wafl_ring_ent holds[WAFL_FSI_HOLDS];
};

struct wafl_dinode {
	uint32_t mode;
	uint32_t nlink;
	uint32_t uid, gid;
	uint64_t size;
	uint64_t blocks;
	uint64_t atime_ns, mtime_ns, ctime_ns, crtime_ns;
	uint32_t gen;
	uint32_t flags;
	uint32_t rdev_major, rdev_minor;
	uint8_t height;
	uint64_t ino;
	uint64_t verifier;
	uint64_t parent;
	union {
		struct wafl_bp top[WAFL_NTOP];
		uint8_t inline_data[WAFL_INLINE_MAX];
	} u;
};

struct wafl_rootblk {
	uint64_t gen;
	uint64_t blocks_used;
	uint64_t inodes_used;
	uint64_t next_ino;
	struct wafl_dinode inodefile;
	uint32_t norphans;
	uint64_t orphans[WAFL_ORPHAN_MAX];
};

struct wafl_snapent {
	uint64_t gen;		/* 0: free slot */
	uint64_t create_ns;
	struct wafl_bp root;
	uint64_t id;
	uint64_t origin;	/* 0: none */
	char name[WAFL_SNAP_NAME_MAX + 1];
};

void wafl_bp_encode(uint8_t *p, const struct wafl_bp *bp);
int wafl_bp_decode(const uint8_t *p, struct wafl_bp *bp);

void wafl_fsinfo_encode(uint8_t *blk, const struct wafl_fsinfo *fsi);
int wafl_fsinfo_decode(const uint8_t *blk, struct wafl_fsinfo *fsi);

void wafl_rootblk_encode(uint8_t *blk, const struct wafl_rootblk *rb);
int wafl_rootblk_decode(const uint8_t *blk, struct wafl_rootblk *rb);

/* Encode/decode one inode at p (WAFL_INODE_SIZE bytes).  decode checks
 * that a used inode's self number equals ino and its fields are sane;
 * a free inode (mode 0) decodes with only gen meaningful. */
void wafl_dinode_encode(uint8_t *p, const struct wafl_dinode *di);
int wafl_dinode_decode(const uint8_t *p, uint64_t ino,
    struct wafl_dinode *di);

void wafl_snapent_encode(uint8_t *p, const struct wafl_snapent *se);
int wafl_snapent_decode(const uint8_t *p, struct wafl_snapent *se);

/* Number of file blocks a tree of this height can map. */
uint64_t wafl_height_capacity(unsigned height);

#endif
