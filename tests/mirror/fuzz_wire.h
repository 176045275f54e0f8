/*
 * tests/mirror/fuzz_wire.h: the input of the mirror wire fuzz target
 * (fuzz_wire.c), shared with the program that writes its seed corpus
 * (fuzz_wire_seeds.c).
 *
 *   off size  field
 *     0    1  mode       enum fw_mode (taken modulo FW_MODES)
 *     1    1  options    FW_OPT_*
 *     2    1  chunk      stream modes: the bytes arrive in reads of
 *                        chunk * FW_CHUNK_UNIT bytes (0: as one read);
 *                        FW_PAYLOAD: which RS_TREE came before (0: none)
 *     3    -  bytes      what the peer sent
 */
#ifndef FILER_TESTS_MIRROR_FUZZ_WIRE_H
#define FILER_TESTS_MIRROR_FUZZ_WIRE_H

#include "mirror/wire.h"

enum fw_mode {
	FW_STREAM = 0,		/* frames a link reads, each decoded as its
				   receiver decodes it */
	FW_HANDSHAKE_DEST,	/* mir_handshake_dest over the bytes */
	FW_HANDSHAKE_SOURCE,	/* mir_handshake_source over the bytes */
	FW_FIRST_FRAME,		/* the listener's mir_first_frame_id */
	FW_PAYLOAD,		/* one payload through every decoder */
	FW_MODES
};

#define FW_OPT_COMPRESS		0x03u	/* enum mir_compress of the link (3:
					   none) */
#define FW_OPT_RAW		0x04u	/* read the bytes as they are (else
					   every whole frame is numbered and
					   checksummed first) */
#define FW_OPT_NO_WINDOW	0x08u	/* a link without a window (resync) */
#define FW_OPT_UNKNOWN_ID	0x10u	/* the destination knows no key */

#define FW_PREFIX		3u
#define FW_CHUNK_UNIT		19u	/* odd, so reads end anywhere in a
					   frame */
#define FW_MAX_LEN		65536u	/* make fuzz's -max_len */
#define FW_WINDOW		4u	/* blocks a link's window keeps, so
					   that evictions come early */

/* The RS_BEGIN an RS_TREE is decoded against when none came before it
 * (FW_PAYLOAD, or a stream whose RS_BEGIN was refused). */
static const struct mir_rs_begin fw_rs_default = {
	.base_gen = 10, .base_root = { 100, 10, 0x1234, 0 },
	.gen = 20, .root = { 200, 20, 0x5678, 0 }, .trees = 4,
};
/* FW_PAYLOAD: the tree before the payload's, chosen by the chunk byte
 * sel (0: none). */
static inline struct mir_rs_tree fw_rs_prev(uint8_t sel)
{
	return (struct mir_rs_tree){ .index = (uint32_t)(sel - 1) % 4,
	    .gen = 10 + sel % 12 };
}

#endif
