/*
 * mirror/wire.h: the mirror's wire format, defined once (STYLE.md 5).
 *
 * Every message is one frame: a fixed 32-byte header, then `length` bytes
 * of payload.  All integers are little-endian and encoded field by field;
 * nothing is ever copied to or from the socket as a struct.
 *
 * ---------------------------------------------------------------------
 * Frame header (32 bytes)
 *   off size  field
 *     0    4  magic     "FLMR"
 *     4    2  version   MIR_WIRE_VERSION (7)
 *     6    2  type      enum mir_msg_type
 *     8    4  flags     0, or MIR_FLAG_COMPRESSED on a BLOCK of a link
 *                       that negotiated compression (any other bit, or
 *                       the bit elsewhere, is refused)
 *    12    4  length    payload bytes, <= the type's bound (table below);
 *                       compressed: 1 .. the type's size - 1 on the wire,
 *                       exactly the type's size once decompressed
 *    16    8  seq       0, 1, 2 ... per direction and connection
 *    24    4  crc32c    of the header (this field zero) and the payload
 *    28    4  reserved  0
 * A frame with a bad magic, version, type, flags, length, sequence number
 * or checksum is a protocol error: the connection is closed and nothing
 * that frame carried is used.
 *
 * ---------------------------------------------------------------------
 * Payloads (type, direction, exact length; layouts in docs/mirror.md)
 *   HELLO      S->D   32  version_min 2, version_max 2, side 1,
 *                         compress 1 (enum mir_compress), options 1
 *                         (bit 0: TLS), pad 9, relationship id 16
 *   CHALLENGE  D->S   32  nonce_d 32
 *   RESPONSE   S->D   64  mac_s 32 = HMAC(key, "filer-mirror S" id nonce_d),
 *                         nonce_s 32
 *   PROOF      D->S   32  mac_d 32 = HMAC(key, "filer-mirror D" id nonce_s
 *                         nonce_d)
 *   STATUS     D->S   64  has_fs 1, pad 7, generation 8, nvbns 8,
 *                         fs_uuid 16, pad 8, checkpoint target 8,
 *                         checkpoint blocks 8 (a baseline interrupted
 *                         there; fs_uuid is then the target's, has_fs 0)
 *   BEGIN      S->D 4128  kind 1, pad 7, base 8, target 8, resume 8
 *                         (baseline: walk blocks the destination holds
 *                         already and does not get again; else 0),
 *                         fsinfo 4096 (walk: the target's root; cp: zero)
 *   BLOCK      S->D 4128  gen 8, vbn 8, birth 8, hint 4, pad 4, data 4096
 *                         (hint: 0, or MIR_HINT_KEEP)
 *   DELTA      S->D 32..4127  gen 8, vbn 8, birth 8, base 8, ranges
 *                         {offset 2, length 2, bytes}...: the block the
 *                         window keeps at VBN base with those ranges
 *                         replaced (window.c)
 *   ROOT       S->D 4104  gen 8, fsinfo 4096
 *   ACK        D->S    8  generation durable and served on the destination
 *   ABORT      S->D    8  target of the transfer the source gives up
 *   ERROR      both  8..264  code 4, text length 4, text (no NUL)
 *   HEARTBEAT  S->D    8  interval_ms 4 (MIR_HEARTBEAT_MIN_MS..
 *                         MIR_HEARTBEAT_MAX_MS), pad 4 (0): the source
 *                         is alive; it writes something at least every
 *                         interval_ms while the link is up
 *
 * The first frame of every connection, HELLO from a source, RS_HELLO or
 * RS_OPEN from a resync peer (resync.c), goes from the side that connected
 * and names the relationship: a filerd receiving several relationships on
 * one port routes the connection by it (listen.c) before any handshake.
 *
 * With TLS negotiated, HELLO and CHALLENGE go in the clear, then a TLS 1.3
 * handshake keyed by the relationship's pre-shared key, and every later
 * frame (RESPONSE onwards) inside TLS.  Compression applies to BLOCK
 * payloads only, frame by frame, when it makes the payload smaller.
 *
 * The window (mirror/window.c): on a mirror connection both ends keep up
 * to MIR_WINDOW_BLOCKS blocks, changed only by BLOCK and DELTA frames in
 * frame order (BLOCK with MIR_HINT_KEEP: kept; BLOCK without: dropped;
 * DELTA: its base dropped, its block kept).  A DELTA whose base the window
 * does not hold, or whose ranges are malformed, is a protocol error.
 */
#ifndef FILER_MIRROR_WIRE_H
#define FILER_MIRROR_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mirror/mirror.h"
#include "wafl/ondisk.h"

#define MIR_WIRE_MAGIC		0x524d4c46u	/* "FLMR" little-endian */
#define MIR_WIRE_VERSION	7u
#define MIR_HDR_SIZE		32u
#define MIR_MAX_PAYLOAD		(4u << 20)	/* any frame, any version */
#define MIR_ID_SIZE		16u
#define MIR_NONCE_SIZE		32u
#define MIR_MAC_SIZE		32u
#define MIR_KEY_MIN		16u
#define MIR_KEY_MAX		64u
#define MIR_BLOCK		4096u
#define MIR_ERRTEXT_MAX		256u
#define MIR_RS_MAX_ROOTS	512u	/* RS_ROOTS entries */
#define MIR_RS_MAX_TREES	255u	/* RS_BEGIN trees (WAFL_MAX_SNAPSHOTS) */
#define MIR_RS_BEGIN_SIZE	96u
#define MIR_RS_TREE_SIZE	112u
#define MIR_RS_NAME_SIZE	64u	/* RS_TREE name field */
#define MIR_FLAG_COMPRESSED	0x1u
#define MIR_STATUS_SIZE		64u
#define MIR_HINT_KEEP		0x1u	/* BLOCK: the window keeps it */
#define MIR_WINDOW_BLOCKS	8192u	/* 32 MiB at each end of a link */
#define MIR_DELTA_HDR		32u
#define MIR_HEARTBEAT_SIZE	8u
#define MIR_HEARTBEAT_MIN_MS	10u
#define MIR_HEARTBEAT_MAX_MS	60000u

enum mir_msg_type {
	MIR_MSG_HELLO = 1,
	MIR_MSG_CHALLENGE,
	MIR_MSG_RESPONSE,
	MIR_MSG_PROOF,
	MIR_MSG_STATUS,
	MIR_MSG_BEGIN,
	MIR_MSG_BLOCK,
	MIR_MSG_ROOT,
	MIR_MSG_ACK,
	MIR_MSG_ABORT,
	MIR_MSG_ERROR,
	/* resync (mirror/resync.c, docs/mirror.md "Resync") */
	MIR_MSG_RS_HELLO,	/* T->W: id 16, nonce_t 32, pad 16 */
	MIR_MSG_RS_PROOF,	/* both: mac 32, nonce 32 (T's: zero) */
	MIR_MSG_RS_ROOTS,	/* W->T: count 4, free snapshot slots 4,
				   {gen 8, bp 32}... */
	MIR_MSG_RS_BEGIN,	/* T->W: base gen 8, base bp 32, gen 8, bp 32,
				   trees 4, pad 4, throttle 8 */
	MIR_MSG_RS_END,		/* T->W: blocks sent 8 */
	MIR_MSG_RS_DONE,	/* W->T: snapshot gen 8, blocks imported 8 */
	MIR_MSG_DELTA,
	MIR_MSG_RS_TREE,	/* T->W: index 4, name length 4, gen 8, root
				   bp 32, name 64 */
	MIR_MSG_RS_OPEN,	/* W->T, when W connects: id 16, pad 16 */
	MIR_MSG_HEARTBEAT,	/* S->D: interval_ms 4, pad 4 */
	MIR_MSG_LAST = MIR_MSG_HEARTBEAT,
};

enum mir_side { MIR_SIDE_SOURCE = 1, MIR_SIDE_DEST = 2 };
enum mir_xfer_kind { MIR_XFER_CP = 1, MIR_XFER_WALK = 2 };
/* BLOCK payload compression: enum mir_compress (mirror.h). */
#define MIR_COMP_LAST	MIR_COMP_ZSTD

struct mir_hdr {
	uint16_t version;
	uint16_t type;
	uint32_t flags;
	uint32_t length;
	uint64_t seq;
	uint32_t crc;
};

struct mir_hello {
	uint16_t vmin, vmax;
	uint8_t side;
	uint8_t compress;		/* enum mir_compress */
	bool tls;
	uint8_t id[MIR_ID_SIZE];
};
struct mir_response {
	uint8_t mac[MIR_MAC_SIZE];
	uint8_t nonce[MIR_NONCE_SIZE];
};
struct mir_status_msg {
	bool has_fs;
	uint64_t gen;
	uint64_t nvbns;
	uint8_t fs_uuid[16];
	uint64_t ckpt_gen, ckpt_blocks;	/* interrupted baseline, or 0 */
};
struct mir_begin {
	uint8_t kind;
	uint64_t base, target;
	uint64_t resume;		/* baseline: blocks not sent again */
	uint8_t fsinfo[MIR_BLOCK];	/* walk only */
};
/* BLOCK and ROOT decode in place: data points into the payload
 * (borrowed for the life of the frame buffer). */
struct mir_block {
	uint64_t gen, vbn, birth;
	uint32_t hint;
	uint32_t cksum;			/* fl_crc32c(0, data): not on the wire */
	const uint8_t *data;
};
/* DELTA decodes in place too: ranges point into the payload. */
struct mir_delta {
	uint64_t gen, vbn, birth, base;
	const uint8_t *ranges;
	uint32_t ranges_len;
};
struct mir_root {
	uint64_t gen;
	const uint8_t *fsinfo;
};
struct mir_error {
	uint32_t code;
	char text[MIR_ERRTEXT_MAX + 1];
};

/* Exact payload size of a type, or for ERROR its bounds.  0 if unknown. */
uint32_t mir_payload_min(uint16_t type);
uint32_t mir_payload_max(uint16_t type);
const char *mir_msg_name(uint16_t type);

/* Header: encode fills every field but crc; mir_frame_seal computes it
 * over header and payload (which follows the header in one buffer). */
void mir_hdr_encode(uint8_t *p, const struct mir_hdr *h);
/* Decode and bound-check a header (magic, version, type, flags, length
 * against the type's bounds).  -FL_EPROTO on anything wrong. */
int mir_hdr_decode(const uint8_t *p, struct mir_hdr *h);
void mir_frame_seal(uint8_t *frame, uint32_t payload_len);
/* Checksum of a received frame (header + payload in one buffer). */
int mir_frame_check(const uint8_t *frame, const struct mir_hdr *h);

/*
 * The relationship id a connection's first frame names (HELLO, RS_HELLO or
 * RS_OPEN, sequence 0, checksum checked), from the first len bytes received:
 * 0; -EAGAIN if the frame is not all there (*need: its size so far known);
 * -FL_EPROTO if these bytes cannot start a mirror connection.
 */
int mir_first_frame_id(const uint8_t *p, size_t len, size_t *need,
    uint8_t id[MIR_ID_SIZE]);

/* Payload encoders write exactly mir_payload_min(type) bytes (ERROR: the
 * returned length); decoders check the length and every field. */
void mir_hello_encode(uint8_t *p, const struct mir_hello *m);
int mir_hello_decode(const uint8_t *p, uint32_t len, struct mir_hello *m);
void mir_response_encode(uint8_t *p, const struct mir_response *m);
int mir_response_decode(const uint8_t *p, uint32_t len,
    struct mir_response *m);
void mir_status_encode(uint8_t *p, const struct mir_status_msg *m);
int mir_status_decode(const uint8_t *p, uint32_t len,
    struct mir_status_msg *m);
void mir_begin_encode(uint8_t *p, const struct mir_begin *m);
int mir_begin_decode(const uint8_t *p, uint32_t len, struct mir_begin *m);
void mir_block_encode(uint8_t *p, const struct mir_block *m);
int mir_block_decode(const uint8_t *p, uint32_t len, struct mir_block *m);
/* The ranges are encoded by the caller after the 32-byte head. */
void mir_delta_encode_head(uint8_t *p, const struct mir_delta *m);
int mir_delta_decode(const uint8_t *p, uint32_t len, struct mir_delta *m);
void mir_root_encode(uint8_t *p, const struct mir_root *m);
int mir_root_decode(const uint8_t *p, uint32_t len, struct mir_root *m);
void mir_u64_encode(uint8_t *p, uint64_t v);	/* ACK, ABORT */
int mir_u64_decode(const uint8_t *p, uint32_t len, uint64_t *v);
uint32_t mir_error_encode(uint8_t *p, uint32_t code, const char *text);
int mir_error_decode(const uint8_t *p, uint32_t len, struct mir_error *m);
/*
 * HEARTBEAT.  A source that has written nothing for the interval its
 * io timeout gives (mir_heartbeat_ms: a quarter of it, within
 * MIR_HEARTBEAT_MIN_MS..MIR_HEARTBEAT_MAX_MS) sends one, naming that
 * interval, so that the destination can tell a source that is alive and
 * idle from one that vanished without closing its connection.
 */
uint32_t mir_heartbeat_ms(uint32_t io_timeout_ms);
void mir_heartbeat_encode(uint8_t *p, uint32_t interval_ms);
int mir_heartbeat_decode(const uint8_t *p, uint32_t len,
    uint32_t *interval_ms);

/*
 * Resync payloads (resync.c; fields in docs/mirror.md).  A root pointer in
 * any of them decodes as a block pointer (wafl_bp_decode) and names a tree
 * (vbn != 0).  RS_BEGIN and RS_TREE decoders say what they refused in
 * why, the text of the ERROR that answers them.
 */
#define MIR_RS_WHY_MAX	160u
struct mir_rs_root {
	uint64_t gen;
	struct wafl_bp root;
};
/* RS_ROOTS: room (free snapshot slots, <= MIR_RS_MAX_TREES) and n roots
 * (<= MIR_RS_MAX_ROOTS); the encoder returns the payload's length, the
 * decoder fills r (room for MIR_RS_MAX_ROOTS). */
uint32_t mir_rs_roots_encode(uint8_t *p, uint32_t room,
    const struct mir_rs_root *r, uint32_t n);
int mir_rs_roots_decode(const uint8_t *p, uint32_t len, uint32_t *room,
    struct mir_rs_root *r, uint32_t *n);
/* RS_BEGIN: base G before t, each root born at its generation, trees
 * 1..MIR_RS_MAX_TREES, throttle 0 or MIR_THROTTLE_MIN..MIR_THROTTLE_MAX.
 * Whether G is retained is the receiver's to check. */
struct mir_rs_begin {
	uint64_t base_gen;		/* G */
	struct wafl_bp base_root;
	uint64_t gen;			/* t */
	struct wafl_bp root;
	uint32_t trees;
	uint64_t throttle;		/* bytes a second; 0: none */
	char why[MIR_RS_WHY_MAX];	/* decode: what was refused */
};
void mir_rs_begin_encode(uint8_t *p, const struct mir_rs_begin *m);
int mir_rs_begin_decode(const uint8_t *p, uint32_t len,
    struct mir_rs_begin *m);
/* RS_TREE: the next tree of the session RS_BEGIN b opened, after prev
 * (NULL: the first).  name: 1..63 bytes, none below 0x20 nor '/', not
 * "." or ".."; empty for the active tree, the last, whose generation and
 * root are b's.  Generations in (G, t], oldest first, each root born at
 * its generation.  The encoder takes name as NUL-terminated; the decoder
 * fills m, which is not prev. */
struct mir_rs_tree {
	uint32_t index;
	uint64_t gen;
	struct wafl_bp root;
	char name[MIR_RS_NAME_SIZE];	/* NUL-terminated */
	char why[MIR_RS_WHY_MAX];	/* decode: what was refused */
};
void mir_rs_tree_encode(uint8_t *p, const struct mir_rs_tree *m);
int mir_rs_tree_decode(const uint8_t *p, uint32_t len,
    const struct mir_rs_begin *b, const struct mir_rs_tree *prev,
    struct mir_rs_tree *m);
/* RS_DONE: the generation of the snapshots made, blocks imported. */
void mir_rs_done_encode(uint8_t *p, uint64_t gen, uint64_t blocks);
int mir_rs_done_decode(const uint8_t *p, uint32_t len, uint64_t *gen,
    uint64_t *blocks);

/* ------------------------------------------------------------ links */

/*
 * A connection: a socket, a frame buffer and the two sequence counters.
 * Reads and writes wait at most timeout_ms each (then -ETIMEDOUT), counted
 * from the last progress: while the peer takes bytes this side wrote (the
 * socket's output queue shrinks) it is alive, however slowly it reads.  A
 * stop flag, when set, ends waits early (-ECANCELED).
 *
 * BLOCK frames are gathered (sealed, each with its own checksum) in a
 * send buffer of MIR_SEND_BUF bytes and written when it is full; any
 * other frame is written at once with whatever is gathered before it, and
 * so is the buffer before mir_recv or a mir_readable that waits.  So
 * every frame that asks for an answer, and every frame before it, is on
 * the wire before anyone waits for that answer.  Frames are read from the
 * socket in chunks of up to MIR_RECV_BUF bytes.
 */
#define MIR_SEND_BUF	(1u << 20)
#define MIR_RECV_BUF	(512u << 10)

/* A token bucket: bytes per second (0: no limit), the bytes it holds
 * and when it was last filled (monotonic ns). */
struct mir_rate {
	uint64_t bps;
	double tokens;
	uint64_t ns;
};

struct mir_conn {
	int fd;
	uint64_t seq_out, seq_in;
	uint8_t *buf;			/* MIR_HDR_SIZE + MIR_MAX_PAYLOAD */
	uint8_t *obuf;			/* gathered BLOCK frames */
	size_t olen;
	uint8_t *ibuf;			/* bytes read, not yet taken */
	size_t ipos, ilen;
	const uint8_t *rx;		/* the last received payload */
	uint32_t rx_block_crc;		/* fl_crc32c of a received BLOCK's data */
	uint32_t timeout_ms;
	const _Atomic bool *stop;
	uint64_t bytes_out, bytes_in;
	uint64_t tx_ns;			/* last write to the socket (or init) */
	/* Negotiated by the handshake. */
	uint8_t compress;		/* enum mir_compress */
	void *ssl;			/* SSL *, or NULL */
	void *zctx, *zdctx;		/* zstd contexts */
	uint8_t *zbuf;			/* compression scratch */
	uint64_t blocks_compressed;	/* BLOCK frames sent compressed */
	uint64_t blocks_delta;		/* blocks sent as DELTA */
	struct mir_window *win;		/* NULL: no window on this link */
	/* Pacing of what this side sends (mir_conn_throttle) and of what it
	 * reads (mir_conn_throttle_recv). */
	struct mir_rate rate_out, rate_in;
	char peer_error[MIR_ERRTEXT_MAX + 1];	/* last ERROR received */
	char sent_error[MIR_ERRTEXT_MAX + 1];	/* last ERROR sent */
	/* Every wait of the connection also ends at the earliest of these
	 * (fl_now_mono_ns; 0: none): the handshake's (mir_conn_deadline)
	 * and the frame mir_recv is reading, timeout_ms after its first
	 * byte came.  A peer that sends a byte now and then, which each
	 * single wait takes as progress, cannot stretch either. */
	uint64_t hs_deadline_ns, rx_deadline_ns;
};

int mir_conn_init(struct mir_conn *c, int fd, uint32_t timeout_ms,
    const _Atomic bool *stop);
void mir_conn_close(struct mir_conn *c);
/* A handshake starts: it must be over within ms from now (0: the bound
 * is lifted, once it is). */
void mir_conn_deadline(struct mir_conn *c, uint32_t ms);
/* The peer closed or reset the connection (what it sent before is all
 * read): a frame sent now would still be taken by the socket, and
 * never read.  False while unknown (TLS, or bytes not yet read). */
bool mir_conn_peer_gone(struct mir_conn *c);
/* Send at most bps bytes a second on average from now on (0: as fast as
 * the link goes), in pieces of at most MIR_PACE_PIECE with a burst of a
 * quarter second, so the peer never waits long for the next bytes. */
#define MIR_PACE_PIECE		(64u << 10)
#define MIR_THROTTLE_MIN	(64ull << 10)	/* bytes a second */
#define MIR_THROTTLE_MAX	(1ull << 40)	/* 1 TiB a second */
void mir_conn_throttle(struct mir_conn *c, uint64_t bps);
/*
 * Read at most bps bytes a second on average from now on (0: as fast as
 * the peer sends), by the same rules: each read of the socket waits until
 * the bucket holds MIR_PACE_PIECE and takes at most that much.  A peer
 * that sends faster fills the socket buffers and TCP's flow control slows
 * it to the rate; its waits see the progress (above), so its timeout does
 * not trip even at MIR_THROTTLE_MIN.
 */
void mir_conn_throttle_recv(struct mir_conn *c, uint64_t bps);
/* Send one frame of type with payload (len bytes, may be NULL if 0). */
int mir_send(struct mir_conn *c, uint16_t type, const void *payload,
    uint32_t len);
/* Send a frame whose payload the caller encoded into mir_conn_payload(). */
int mir_send_buf(struct mir_conn *c, uint16_t type, uint32_t len);
uint8_t *mir_conn_payload(struct mir_conn *c);
/*
 * The payload of the frame mir_recv returned last, borrowed until the
 * next receive.  For every type but BLOCK it is mir_conn_payload(); a
 * BLOCK that lies whole in the receive buffer is checked and left there
 * (no copy), so BLOCK receivers read it here.
 */
const uint8_t *mir_conn_rx(const struct mir_conn *c);
/*
 * fl_crc32c(0, data) of the BLOCK mir_recv returned last, computed as its
 * frame was checked: a receiver compares it with the block pointer's
 * checksum instead of reading the data again.
 */
uint32_t mir_conn_block_crc(const struct mir_conn *c);
/*
 * Send BLOCK{gen, vbn, birth, data} (MIR_BLOCK bytes of data).  cksum is
 * fl_crc32c(0, data, MIR_BLOCK), known to the caller (the block pointer's):
 * the frame's checksum is derived from it without reading the data again
 * (fl_crc32c_cat4k).
 */
int mir_send_block(struct mir_conn *c, uint64_t gen, uint64_t vbn,
    uint64_t birth, uint32_t cksum, const void *data);
/*
 * Send a block of a transfer through the link's window (c->win): as a
 * DELTA against prev_vbn's block if the window keeps that and the patch is
 * smaller than the block, else as a BLOCK the window keeps when keep.
 * Changes c->win exactly as the receiver's will change.  Without a window,
 * mir_send_block.
 */
int mir_send_block_win(struct mir_conn *c, uint64_t gen, uint64_t vbn,
    uint64_t birth, uint32_t cksum, const void *data, uint64_t prev_vbn,
    bool keep);
/*
 * The receiver's side: after a BLOCK b was taken, the window follows its
 * hint; a DELTA d is rebuilt into out (MIR_BLOCK bytes, verified by
 * nobody yet) and the window follows it.  -FL_EPROTO if the link has no
 * window, the window lacks the base, or the ranges are malformed.
 */
void mir_window_took_block(struct mir_conn *c, const struct mir_block *b);
int mir_window_rebuild(struct mir_conn *c, const struct mir_delta *d,
    uint8_t *out);
/*
 * Receive one frame.  On success *h is its header and the payload is at
 * mir_conn_payload(c) (borrowed until the next receive).  -FL_EPROTO for
 * a malformed frame, -ECONNRESET at end of stream.
 */
int mir_recv(struct mir_conn *c, struct mir_hdr *h);
/* Is a frame (or end of stream) waiting?  1 yes, 0 no, <0 error. */
int mir_readable(struct mir_conn *c, int wait_ms);
/* The same, and the wait also ends (0) when wake_fd becomes readable;
 * the caller empties it. */
int mir_readable_or(struct mir_conn *c, int wait_ms, int wake_fd);

/* Send ERROR (best effort) and log it. */
void mir_send_error(struct mir_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Send ERROR (best effort) without logging it: the caller logs (the
 * source's refusals and the destination's handshake refusals, once per
 * change or minute).  Either way its text stays in c->sent_error. */
void mir_send_error_quiet(struct mir_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------ handshake */

struct mir_peer_cfg {
	uint8_t id[MIR_ID_SIZE];
	const uint8_t *key;
	size_t key_len;
	uint8_t compress;		/* enum mir_compress */
	bool tls;
};
/*
 * What a destination requires of the link; a HELLO that asks for
 * anything else is refused with an ERROR that says what differs.
 */
struct mir_link_opts {
	uint8_t compress;
	bool tls;
};
/*
 * HMAC-SHA256(key, tag || id || n1 [|| n2]): the challenge-response MAC of
 * the mirror handshake ("filer-mirror S"/"D") and of resync's ("filer-resync
 * W"/"T").  tag is at most MIR_MAC_TAG_MAX bytes; n2 may be NULL.
 */
#define MIR_MAC_TAG_MAX	32
int mir_mac(const uint8_t *key, size_t key_len, const char *tag,
    const uint8_t id[MIR_ID_SIZE], const uint8_t *n1, const uint8_t *n2,
    uint8_t out[MIR_MAC_SIZE]);
/*
 * mir_recv a frame of type want (its length already bounded by the type,
 * mir_hdr_decode).  An ERROR becomes the negative of its code (its text
 * kept in c->peer_error); any other type is -FL_EPROTO.
 */
int mir_recv_type(struct mir_conn *c, uint16_t want, struct mir_hdr *h);
/*
 * The source's half: HELLO, answer the CHALLENGE, check the PROOF, read
 * STATUS.  -EACCES if the destination cannot prove the key, -FL_EPROTO on
 * anything malformed, or the negative of the code of an ERROR received.
 */
int mir_handshake_source(struct mir_conn *c, const struct mir_peer_cfg *p,
    struct mir_status_msg *st);
/*
 * The destination's half up to the PROOF: lookup maps the relationship id
 * of the HELLO to its key (0, or -ENOENT: refused).  A refusal is sent to
 * the source (ERROR) and not logged: its text is in c->sent_error for the
 * caller, which logs it (a peer may be refused again and again).  The
 * relationship id goes to id_out.
 */
typedef int mir_key_lookup_fn(void *arg, const uint8_t id[MIR_ID_SIZE],
    const uint8_t **key, size_t *key_len);
int mir_handshake_dest(struct mir_conn *c, mir_key_lookup_fn *lookup,
    void *arg, const struct mir_link_opts *lo, uint8_t id_out[MIR_ID_SIZE]);

/* The window itself (window.c); every call takes NULL as no window. */
int mir_window_create(uint32_t cap, struct mir_window **out);
void mir_window_destroy(struct mir_window *w);
const uint8_t *mir_window_get(const struct mir_window *w, uint64_t vbn);
void mir_window_put(struct mir_window *w, uint64_t vbn, const uint8_t *data);
void mir_window_drop(struct mir_window *w, uint64_t vbn);
/* Patch ranges turning base into data, at most max bytes (else
 * UINT32_MAX); and their application onto base into out. */
uint32_t mir_patch_encode(uint8_t *out, uint32_t max, const uint8_t *base,
    const uint8_t *data);
int mir_patch_apply(const uint8_t *base, const uint8_t *ranges,
    uint32_t len, uint8_t *out);

/* TCP helpers (127.0.0.1 or any IPv4/IPv6 literal or name). */
int mir_tcp_listen(const char *host, uint16_t port, uint16_t *bound_port);
int mir_tcp_connect(const char *host, uint16_t port, uint32_t timeout_ms);
/*
 * TCP keepalive on a link's socket, from the relationship's io timeout
 * (mir_conn_init sets it on every mirror and resync connection, either
 * end): the first probe once nothing has come for the timeout (rounded up
 * to a second), then one every third of it (at least a second), the
 * connection reset (-ETIMEDOUT to its reader) after MIR_KEEPALIVE_PROBES
 * unanswered; and TCP_USER_TIMEOUT as long as all of that, so that data
 * the peer's TCP never acknowledges (a HEARTBEAT to a destination that
 * lost power: keepalive probes only an empty send queue) ends the
 * connection as soon.  A peer that is alive answers at the TCP level,
 * however busy or paced it is.  0 on anything but TCP (socket pairs);
 * -errno if an option cannot be set.
 */
#define MIR_KEEPALIVE_PROBES	3
int mir_tcp_keepalive(int fd, uint32_t io_timeout_ms);

#endif
