/*
 * mirror/wire.c: frames, payload codecs, the connection and the mutual
 * challenge-response.  The format is defined in wire.h; every field read
 * from the network is bounded here before anyone uses it (STYLE.md 6).
 *
 * Authentication: both sides hold a pre-shared key per relationship.  The
 * destination sends a fresh nonce; the source answers with an HMAC-SHA256
 * over a side tag, the relationship id and that nonce, plus a nonce of its
 * own; the destination proves the key with an HMAC over the other side tag
 * and both nonces.  The side tags keep one side's answer from being
 * reflected as the other's.  HMAC and constant-time comparison are
 * OpenSSL's (libcrypto); no cryptography is written here.
 *
 * Link options (per relationship, both sides configured alike): the HELLO
 * says what the source wants, the destination refuses anything but its
 * own setting with an ERROR naming both.
 *   TLS          after the clear HELLO and CHALLENGE both sides run a
 *                TLS 1.3 handshake (OpenSSL libssl) with an external PSK
 *                derived from the relationship key, HMAC-SHA256(key,
 *                "filer-mirror TLS" || id), and (EC)DHE key exchange:
 *                every later frame is encrypted and integrity-protected
 *                with forward secrecy.  The PSK proves both ends hold the
 *                key, as the challenge-response inside it does again.
 *                No certificates: there is nothing to pin or expire.
 *   compression  BLOCK payloads (32-byte block header + 4096 data bytes)
 *                compressed with lz4 or zstd (level 1), frame by frame,
 *                and sent so only when smaller.  The receiver bounds the
 *                compressed length (< the payload's size), demands exactly
 *                the payload's size back, and treats any failure as a
 *                malformed frame (the connection closes, nothing of it is
 *                used).
 *
 * Buffering (wire.h, struct mir_conn): BLOCK frames, each sealed with its
 * own crc32c as always, are gathered into writes of up to MIR_SEND_BUF;
 * every other frame flushes them, and so does any wait for the peer, so
 * buffering never holds back a frame an answer depends on.  Reads take
 * what the socket holds, up to MIR_RECV_BUF, and frames are cut from it;
 * nothing may be left over when TLS starts (the peer sends nothing past
 * CHALLENGE, or HELLO, before its handshake).
 *
 * Pacing (mir_conn_throttle, mir_conn_throttle_recv): a token bucket for
 * each way, filled at the rate and holding a quarter second (at least
 * MIR_PACE_PIECE).  A write goes out in pieces of at most MIR_PACE_PIECE,
 * each waiting until the bucket holds it; a read of the socket waits
 * until the bucket holds a piece, reads at most a piece and pays for what
 * it read.  Sleeps are at most 50 ms and watch the stop flag.  A peer
 * sending to a paced reader blocks on its full socket buffer; on TCP,
 * POLLOUT comes back only once about a third of the send buffer has
 * drained (the kernel grows it to megabytes on a fast link), which at
 * 64 KiB/s takes longer than any timeout here: so waits count their
 * timeout from the last progress, the output queue shrinking (SIOCOUTQ),
 * not from their start.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>
#include <linux/sockios.h>
#include <lz4.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <zstd.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "mirror/wire.h"

_Static_assert(MIR_HDR_SIZE == 32, "frame header is 32 bytes");
_Static_assert(MIR_PACE_PIECE <= MIR_RECV_BUF, "a paced read fits");

struct type_info {
	const char *name;
	uint32_t min, max;
};

static const struct type_info types[MIR_MSG_LAST + 1] = {
	[MIR_MSG_HELLO] = { "HELLO", 32, 32 },
	[MIR_MSG_CHALLENGE] = { "CHALLENGE", 32, 32 },
	[MIR_MSG_RESPONSE] = { "RESPONSE", 64, 64 },
	[MIR_MSG_PROOF] = { "PROOF", 32, 32 },
	[MIR_MSG_STATUS] = { "STATUS", MIR_STATUS_SIZE, MIR_STATUS_SIZE },
	[MIR_MSG_BEGIN] = { "BEGIN", 32 + MIR_BLOCK, 32 + MIR_BLOCK },
	[MIR_MSG_BLOCK] = { "BLOCK", 32 + MIR_BLOCK, 32 + MIR_BLOCK },
	[MIR_MSG_ROOT] = { "ROOT", 8 + MIR_BLOCK, 8 + MIR_BLOCK },
	[MIR_MSG_ACK] = { "ACK", 8, 8 },
	[MIR_MSG_ABORT] = { "ABORT", 8, 8 },
	[MIR_MSG_ERROR] = { "ERROR", 8, 8 + MIR_ERRTEXT_MAX },
	[MIR_MSG_RS_HELLO] = { "RS_HELLO", 64, 64 },
	[MIR_MSG_RS_PROOF] = { "RS_PROOF", 64, 64 },
	[MIR_MSG_RS_ROOTS] = { "RS_ROOTS", 8, 8 + 40 * MIR_RS_MAX_ROOTS },
	[MIR_MSG_RS_BEGIN] = { "RS_BEGIN", MIR_RS_BEGIN_SIZE,
	    MIR_RS_BEGIN_SIZE },
	[MIR_MSG_RS_END] = { "RS_END", 8, 8 },
	[MIR_MSG_RS_DONE] = { "RS_DONE", 16, 16 },
	[MIR_MSG_DELTA] = { "DELTA", MIR_DELTA_HDR,
	    MIR_DELTA_HDR + MIR_BLOCK - 1 },
	[MIR_MSG_RS_TREE] = { "RS_TREE", MIR_RS_TREE_SIZE, MIR_RS_TREE_SIZE },
	[MIR_MSG_RS_OPEN] = { "RS_OPEN", 32, 32 },
	[MIR_MSG_HEARTBEAT] = { "HEARTBEAT", MIR_HEARTBEAT_SIZE,
	    MIR_HEARTBEAT_SIZE },
};

static bool type_known(uint16_t t)
{
	return t >= 1 && t <= MIR_MSG_LAST;
}

uint32_t mir_payload_min(uint16_t t)
{
	return type_known(t) ? types[t].min : 0;
}

uint32_t mir_payload_max(uint16_t t)
{
	return type_known(t) ? types[t].max : 0;
}

const char *mir_msg_name(uint16_t t)
{
	return type_known(t) ? types[t].name : "UNKNOWN";
}

const char *mir_compress_name(unsigned c)
{
	switch (c) {
	case MIR_COMP_NONE: return "none";
	case MIR_COMP_LZ4: return "lz4";
	case MIR_COMP_ZSTD: return "zstd";
	}
	return "?";
}

/* ------------------------------------------------------------ header */

void mir_hdr_encode(uint8_t *p, const struct mir_hdr *h)
{
	fl_put_le32(p + 0, MIR_WIRE_MAGIC);
	fl_put_le16(p + 4, h->version);
	fl_put_le16(p + 6, h->type);
	fl_put_le32(p + 8, h->flags);
	fl_put_le32(p + 12, h->length);
	fl_put_le64(p + 16, h->seq);
	fl_put_le32(p + 24, 0);
	fl_put_le32(p + 28, 0);
}

int mir_hdr_decode(const uint8_t *p, struct mir_hdr *h)
{
	if (fl_get_le32(p) != MIR_WIRE_MAGIC)
		return FL_ERR(-FL_EPROTO);
	h->version = fl_get_le16(p + 4);
	h->type = fl_get_le16(p + 6);
	h->flags = fl_get_le32(p + 8);
	h->length = fl_get_le32(p + 12);
	h->seq = fl_get_le64(p + 16);
	h->crc = fl_get_le32(p + 24);
	if (h->version != MIR_WIRE_VERSION) {
		fl_warn("mirror", "peer speaks mirror wire version %u, this "
		    "filerd %u: both sides need the same release", h->version,
		    MIR_WIRE_VERSION);
		return FL_ERR(-FL_EPROTO);
	}
	if (!type_known(h->type) ||
	    (h->flags & ~MIR_FLAG_COMPRESSED) != 0 ||
	    fl_get_le32(p + 28) != 0 || h->length > MIR_MAX_PAYLOAD)
		return FL_ERR(-FL_EPROTO);
	if (h->flags & MIR_FLAG_COMPRESSED) {
		/* Only BLOCKs, and only when it shrank them. */
		if (h->type != MIR_MSG_BLOCK || h->length == 0 ||
		    h->length >= types[h->type].max)
			return FL_ERR(-FL_EPROTO);
		return 0;
	}
	if (h->length < types[h->type].min || h->length > types[h->type].max)
		return FL_ERR(-FL_EPROTO);
	return 0;
}

/* crc32c of a frame's header with its crc field zero. */
static uint32_t hdr_crc(const uint8_t *frame)
{
	uint8_t hdr[MIR_HDR_SIZE];

	memcpy(hdr, frame, MIR_HDR_SIZE);
	fl_put_le32(hdr + 24, 0);
	return fl_crc32c(0, hdr, MIR_HDR_SIZE);
}

static uint32_t frame_crc(const uint8_t *frame, uint32_t payload_len)
{
	return fl_crc32c(hdr_crc(frame), frame + MIR_HDR_SIZE, payload_len);
}

/* frame_crc of a BLOCK frame whose data's own crc32c is data_crc: the
 * header and the 32-byte block head are read, the data is not. */
static uint32_t block_frame_crc(const uint8_t *frame, uint32_t data_crc)
{
	uint32_t crc = fl_crc32c(hdr_crc(frame), frame + MIR_HDR_SIZE, 32);

	return fl_crc32c_cat4k(crc, data_crc);
}

void mir_frame_seal(uint8_t *frame, uint32_t payload_len)
{
	fl_put_le32(frame + 24, frame_crc(frame, payload_len));
}

int mir_frame_check(const uint8_t *frame, const struct mir_hdr *h)
{
	return frame_crc(frame, h->length) == h->crc ? 0 :
	    FL_ERR(-FL_EPROTO);
}

/* ---------------------------------------------------------- payloads */

static bool zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

void mir_hello_encode(uint8_t *p, const struct mir_hello *m)
{
	memset(p, 0, 32);
	fl_put_le16(p + 0, m->vmin);
	fl_put_le16(p + 2, m->vmax);
	p[4] = m->side;
	p[5] = m->compress;
	p[6] = m->tls ? 1 : 0;
	memcpy(p + 16, m->id, MIR_ID_SIZE);
}

int mir_hello_decode(const uint8_t *p, uint32_t len, struct mir_hello *m)
{
	if (len != 32 || p[5] > MIR_COMP_LAST || p[6] > 1 || !zero(p + 7, 9))
		return FL_ERR(-FL_EPROTO);
	m->vmin = fl_get_le16(p);
	m->vmax = fl_get_le16(p + 2);
	m->side = p[4];
	m->compress = p[5];
	m->tls = p[6] == 1;
	memcpy(m->id, p + 16, MIR_ID_SIZE);
	if (m->vmin == 0 || m->vmin > m->vmax ||
	    (m->side != MIR_SIDE_SOURCE && m->side != MIR_SIDE_DEST))
		return FL_ERR(-FL_EPROTO);
	return 0;
}

void mir_response_encode(uint8_t *p, const struct mir_response *m)
{
	memcpy(p, m->mac, MIR_MAC_SIZE);
	memcpy(p + MIR_MAC_SIZE, m->nonce, MIR_NONCE_SIZE);
}

int mir_response_decode(const uint8_t *p, uint32_t len,
    struct mir_response *m)
{
	if (len != 64)
		return FL_ERR(-FL_EPROTO);
	memcpy(m->mac, p, MIR_MAC_SIZE);
	memcpy(m->nonce, p + MIR_MAC_SIZE, MIR_NONCE_SIZE);
	return 0;
}

void mir_status_encode(uint8_t *p, const struct mir_status_msg *m)
{
	memset(p, 0, MIR_STATUS_SIZE);
	p[0] = m->has_fs ? 1 : 0;
	fl_put_le64(p + 8, m->gen);
	fl_put_le64(p + 16, m->nvbns);
	memcpy(p + 24, m->fs_uuid, 16);
	fl_put_le64(p + 48, m->ckpt_gen);
	fl_put_le64(p + 56, m->ckpt_blocks);
}

int mir_status_decode(const uint8_t *p, uint32_t len,
    struct mir_status_msg *m)
{
	if (len != MIR_STATUS_SIZE || p[0] > 1 || !zero(p + 1, 7) ||
	    !zero(p + 40, 8))
		return FL_ERR(-FL_EPROTO);
	m->has_fs = p[0] == 1;
	m->gen = fl_get_le64(p + 8);
	m->nvbns = fl_get_le64(p + 16);
	memcpy(m->fs_uuid, p + 24, 16);
	m->ckpt_gen = fl_get_le64(p + 48);
	m->ckpt_blocks = fl_get_le64(p + 56);
	if (m->has_fs != (m->gen != 0))
		return FL_ERR(-FL_EPROTO);
	/* A checkpoint is a baseline's: only without a file system. */
	if ((m->ckpt_gen == 0) != (m->ckpt_blocks == 0) ||
	    (m->has_fs && m->ckpt_gen != 0))
		return FL_ERR(-FL_EPROTO);
	return 0;
}

void mir_begin_encode(uint8_t *p, const struct mir_begin *m)
{
	memset(p, 0, 32);
	p[0] = m->kind;
	fl_put_le64(p + 8, m->base);
	fl_put_le64(p + 16, m->target);
	fl_put_le64(p + 24, m->resume);
	if (m->kind == MIR_XFER_WALK)
		memcpy(p + 32, m->fsinfo, MIR_BLOCK);
	else
		memset(p + 32, 0, MIR_BLOCK);
}

int mir_begin_decode(const uint8_t *p, uint32_t len, struct mir_begin *m)
{
	if (len != 32 + MIR_BLOCK || !zero(p + 1, 7))
		return FL_ERR(-FL_EPROTO);
	m->kind = p[0];
	m->base = fl_get_le64(p + 8);
	m->target = fl_get_le64(p + 16);
	m->resume = fl_get_le64(p + 24);
	if ((m->kind != MIR_XFER_CP && m->kind != MIR_XFER_WALK) ||
	    m->target <= m->base)
		return FL_ERR(-FL_EPROTO);
	/* Only a baseline walk resumes. */
	if (m->resume != 0 && (m->kind != MIR_XFER_WALK || m->base != 0))
		return FL_ERR(-FL_EPROTO);
	if (m->kind == MIR_XFER_WALK)
		memcpy(m->fsinfo, p + 32, MIR_BLOCK);
	else if (!zero(p + 32, MIR_BLOCK))
		return FL_ERR(-FL_EPROTO);
	return 0;
}

/*
 * BLOCK and DELTA begin alike: gen 8, vbn 8, birth 8.  A block of a tree
 * is never at VBN 0 or 1 (the fsinfo slots) and is born in 1..gen.
 */
static void block_head_encode(uint8_t *p, uint64_t gen, uint64_t vbn,
    uint64_t birth)
{
	fl_put_le64(p + 0, gen);
	fl_put_le64(p + 8, vbn);
	fl_put_le64(p + 16, birth);
}

static int block_head_decode(const uint8_t *p, uint64_t *gen, uint64_t *vbn,
    uint64_t *birth)
{
	*gen = fl_get_le64(p);
	*vbn = fl_get_le64(p + 8);
	*birth = fl_get_le64(p + 16);
	return *vbn < 2 || *birth == 0 || *birth > *gen ?
	    FL_ERR(-FL_EPROTO) : 0;
}

void mir_block_encode(uint8_t *p, const struct mir_block *m)
{
	block_head_encode(p, m->gen, m->vbn, m->birth);
	fl_put_le32(p + 24, m->hint);
	fl_put_le32(p + 28, 0);
	memcpy(p + 32, m->data, MIR_BLOCK);
}

int mir_block_decode(const uint8_t *p, uint32_t len, struct mir_block *m)
{
	if (len != 32 + MIR_BLOCK || fl_get_le32(p + 28) != 0)
		return FL_ERR(-FL_EPROTO);
	m->hint = fl_get_le32(p + 24);
	m->data = p + 32;
	if ((m->hint & ~MIR_HINT_KEEP) != 0)
		return FL_ERR(-FL_EPROTO);
	return block_head_decode(p, &m->gen, &m->vbn, &m->birth);
}

void mir_delta_encode_head(uint8_t *p, const struct mir_delta *m)
{
	block_head_encode(p, m->gen, m->vbn, m->birth);
	fl_put_le64(p + 24, m->base);
}

/* The ranges are checked where they are applied (mir_patch_apply). */
int mir_delta_decode(const uint8_t *p, uint32_t len, struct mir_delta *m)
{
	if (len < MIR_DELTA_HDR || len >= MIR_DELTA_HDR + MIR_BLOCK)
		return FL_ERR(-FL_EPROTO);
	m->base = fl_get_le64(p + 24);
	m->ranges = p + MIR_DELTA_HDR;
	m->ranges_len = len - MIR_DELTA_HDR;
	if (m->base < 2)
		return FL_ERR(-FL_EPROTO);
	return block_head_decode(p, &m->gen, &m->vbn, &m->birth);
}

void mir_root_encode(uint8_t *p, const struct mir_root *m)
{
	fl_put_le64(p, m->gen);
	memcpy(p + 8, m->fsinfo, MIR_BLOCK);
}

int mir_root_decode(const uint8_t *p, uint32_t len, struct mir_root *m)
{
	if (len != 8 + MIR_BLOCK)
		return FL_ERR(-FL_EPROTO);
	m->gen = fl_get_le64(p);
	m->fsinfo = p + 8;
	return m->gen == 0 ? FL_ERR(-FL_EPROTO) : 0;
}

void mir_u64_encode(uint8_t *p, uint64_t v)
{
	fl_put_le64(p, v);
}

int mir_u64_decode(const uint8_t *p, uint32_t len, uint64_t *v)
{
	if (len != 8)
		return FL_ERR(-FL_EPROTO);
	*v = fl_get_le64(p);
	return 0;
}

uint32_t mir_heartbeat_ms(uint32_t io_timeout_ms)
{
	uint32_t ms = io_timeout_ms / 4;

	if (ms < MIR_HEARTBEAT_MIN_MS)
		ms = MIR_HEARTBEAT_MIN_MS;
	if (ms > MIR_HEARTBEAT_MAX_MS)
		ms = MIR_HEARTBEAT_MAX_MS;
	return ms;
}

void mir_heartbeat_encode(uint8_t *p, uint32_t interval_ms)
{
	fl_put_le32(p, interval_ms);
	fl_put_le32(p + 4, 0);
}

int mir_heartbeat_decode(const uint8_t *p, uint32_t len,
    uint32_t *interval_ms)
{
	if (len != MIR_HEARTBEAT_SIZE || fl_get_le32(p + 4) != 0)
		return FL_ERR(-FL_EPROTO);
	*interval_ms = fl_get_le32(p);
	if (*interval_ms < MIR_HEARTBEAT_MIN_MS ||
	    *interval_ms > MIR_HEARTBEAT_MAX_MS)
		return FL_ERR(-FL_EPROTO);
	return 0;
}

uint32_t mir_error_encode(uint8_t *p, uint32_t code, const char *text)
{
	size_t n = strlen(text);

	if (n > MIR_ERRTEXT_MAX)
		n = MIR_ERRTEXT_MAX;
	fl_put_le32(p, code);
	fl_put_le32(p + 4, (uint32_t)n);
	memcpy(p + 8, text, n);
	return 8 + (uint32_t)n;
}

int mir_error_decode(const uint8_t *p, uint32_t len, struct mir_error *m)
{
	if (len < 8)
		return FL_ERR(-FL_EPROTO);
	uint32_t n = fl_get_le32(p + 4);
	if (n > MIR_ERRTEXT_MAX || n != len - 8)
		return FL_ERR(-FL_EPROTO);
	m->code = fl_get_le32(p);
	for (uint32_t i = 0; i < n; i++) {
		char ch = (char)p[8 + i];
		m->text[i] = (ch >= 0x20 && ch < 0x7f) ? ch : '?';
	}
	m->text[n] = '\0';
	return 0;
}

/* ------------------------------------------------- resync payloads */

_Static_assert(MIR_RS_BEGIN_SIZE == 96, "RS_BEGIN is 96 bytes");
_Static_assert(MIR_RS_TREE_SIZE == 48 + MIR_RS_NAME_SIZE, "RS_TREE layout");
_Static_assert(WAFL_BP_SIZE == 32, "a root pointer is 32 bytes");
_Static_assert(MIR_RS_NAME_SIZE > WAFL_SNAP_NAME_MAX, "a name and its NUL");

/* A root pointer: a well-formed block pointer that names a tree. */
static int rs_root_decode(const uint8_t *p, struct wafl_bp *bp)
{
	int rc = wafl_bp_decode(p, bp);

	if (rc == 0 && bp->vbn == 0)
		rc = FL_ERR(-FL_EPROTO);
	return rc != 0 ? FL_ERR(-FL_EPROTO) : 0;
}

uint32_t mir_rs_roots_encode(uint8_t *p, uint32_t room,
    const struct mir_rs_root *r, uint32_t n)
{
	ASSERT(n <= MIR_RS_MAX_ROOTS);
	fl_put_le32(p, n);
	fl_put_le32(p + 4, room);
	for (uint32_t i = 0; i < n; i++) {
		fl_put_le64(p + 8 + 40 * i, r[i].gen);
		wafl_bp_encode(p + 16 + 40 * i, &r[i].root);
	}
	return 8 + 40 * n;
}

int mir_rs_roots_decode(const uint8_t *p, uint32_t len, uint32_t *room,
    struct mir_rs_root *r, uint32_t *n)
{
	if (len < 8)
		return FL_ERR(-FL_EPROTO);
	uint32_t cnt = fl_get_le32(p);
	*room = fl_get_le32(p + 4);
	if (cnt > MIR_RS_MAX_ROOTS || len != 8 + 40 * cnt ||
	    *room > MIR_RS_MAX_TREES)
		return FL_ERR(-FL_EPROTO);
	for (uint32_t i = 0; i < cnt; i++) {
		r[i].gen = fl_get_le64(p + 8 + 40 * i);
		if (rs_root_decode(p + 16 + 40 * i, &r[i].root) != 0)
			return FL_ERR(-FL_EPROTO);
	}
	*n = cnt;
	return 0;
}

void mir_rs_begin_encode(uint8_t *p, const struct mir_rs_begin *m)
{
	memset(p, 0, MIR_RS_BEGIN_SIZE);
	fl_put_le64(p, m->base_gen);
	wafl_bp_encode(p + 8, &m->base_root);
	fl_put_le64(p + 40, m->gen);
	wafl_bp_encode(p + 48, &m->root);
	fl_put_le32(p + 80, m->trees);
	fl_put_le64(p + 88, m->throttle);
}

int mir_rs_begin_decode(const uint8_t *p, uint32_t len,
    struct mir_rs_begin *m)
{
	memset(m, 0, sizeof(*m));
	if (len != MIR_RS_BEGIN_SIZE) {
		snprintf(m->why, sizeof(m->why), "RS_BEGIN of %" PRIu32
		    " bytes", len);
		return FL_ERR(-FL_EPROTO);
	}
	m->base_gen = fl_get_le64(p);
	m->gen = fl_get_le64(p + 40);
	m->trees = fl_get_le32(p + 80);
	m->throttle = fl_get_le64(p + 88);
	if (rs_root_decode(p + 8, &m->base_root) != 0 ||
	    rs_root_decode(p + 48, &m->root) != 0) {
		snprintf(m->why, sizeof(m->why), "malformed root pointer");
		return FL_ERR(-FL_EPROTO);
	}
	if (m->base_root.birth != m->base_gen || m->root.birth != m->gen ||
	    m->gen <= m->base_gen) {
		snprintf(m->why, sizeof(m->why), "base %" PRIu64 " (root born %"
		    PRIu64 "), generation %" PRIu64 " (root born %" PRIu64 "): "
		    "not a later root over its base", m->base_gen,
		    m->base_root.birth, m->gen, m->root.birth);
		return FL_ERR(-FL_EPROTO);
	}
	if (m->trees == 0 || m->trees > MIR_RS_MAX_TREES ||
	    fl_get_le32(p + 84) != 0) {
		snprintf(m->why, sizeof(m->why), "%" PRIu32 " trees: 1 to %u",
		    m->trees, MIR_RS_MAX_TREES);
		return FL_ERR(-FL_EPROTO);
	}
	if (m->throttle != 0 && (m->throttle < MIR_THROTTLE_MIN ||
	    m->throttle > MIR_THROTTLE_MAX)) {
		snprintf(m->why, sizeof(m->why), "throttle of %" PRIu64 " bytes "
		    "a second: 0 (none) or %llu to %llu", m->throttle,
		    (unsigned long long)MIR_THROTTLE_MIN,
		    (unsigned long long)MIR_THROTTLE_MAX);
		return FL_ERR(-FL_EPROTO);
	}
	return 0;
}

void mir_rs_tree_encode(uint8_t *p, const struct mir_rs_tree *m)
{
	size_t len = strnlen(m->name, MIR_RS_NAME_SIZE);

	ASSERT(len <= WAFL_SNAP_NAME_MAX);
	memset(p, 0, MIR_RS_TREE_SIZE);
	fl_put_le32(p, m->index);
	fl_put_le32(p + 4, (uint32_t)len);
	fl_put_le64(p + 8, m->gen);
	wafl_bp_encode(p + 16, &m->root);
	memcpy(p + 48, m->name, len);
}

static bool bp_eq(const struct wafl_bp *a, const struct wafl_bp *b)
{
	return a->vbn == b->vbn && a->birth == b->birth && a->cksum == b->cksum;
}

/* The name follows the snapshot name rule (wafl/snap.c), zeros after it. */
int mir_rs_tree_decode(const uint8_t *p, uint32_t len,
    const struct mir_rs_begin *b, const struct mir_rs_tree *prev,
    struct mir_rs_tree *m)
{
	uint32_t want = prev != NULL ? prev->index + 1 : 0;

	memset(m, 0, sizeof(*m));
	if (len != MIR_RS_TREE_SIZE) {
		snprintf(m->why, sizeof(m->why), "RS_TREE of %" PRIu32
		    " bytes", len);
		return FL_ERR(-FL_EPROTO);
	}
	m->index = fl_get_le32(p);
	if (m->index != want || m->index >= b->trees) {
		snprintf(m->why, sizeof(m->why), "tree %" PRIu32 " of %" PRIu32
		    ": not the next one announced", m->index, b->trees);
		return FL_ERR(-FL_EPROTO);
	}
	bool last = m->index + 1 == b->trees;
	uint32_t nlen = fl_get_le32(p + 4);
	const uint8_t *nm = p + 48;
	m->gen = fl_get_le64(p + 8);
	if (rs_root_decode(p + 16, &m->root) != 0) {
		snprintf(m->why, sizeof(m->why), "tree %" PRIu32 ": bad root "
		    "pointer", m->index);
		return FL_ERR(-FL_EPROTO);
	}
	if (nlen > WAFL_SNAP_NAME_MAX) {
		snprintf(m->why, sizeof(m->why), "tree %" PRIu32 ": name of %"
		    PRIu32 " bytes, at most %u", m->index, nlen,
		    WAFL_SNAP_NAME_MAX);
		return FL_ERR(-FL_EPROTO);
	}
	for (uint32_t i = 0; i < MIR_RS_NAME_SIZE; i++) {
		bool bad = i < nlen ? nm[i] < 0x20 || nm[i] == '/' :
		    nm[i] != 0;
		if (bad) {
			snprintf(m->why, sizeof(m->why), "tree %" PRIu32 ": name "
			    "byte %" PRIu32 " invalid", m->index, i);
			return FL_ERR(-FL_EPROTO);
		}
	}
	memcpy(m->name, nm, nlen);
	if (strcmp(m->name, ".") == 0 || strcmp(m->name, "..") == 0 ||
	    (nlen == 0) != last) {
		snprintf(m->why, sizeof(m->why), "tree %" PRIu32 ": %s",
		    m->index, last ? "the last tree is the active one, without "
		    "a name" : "a snapshot without a valid name");
		return FL_ERR(-FL_EPROTO);
	}
	if (m->root.birth != m->gen || m->gen <= b->base_gen ||
	    m->gen > b->gen || (prev != NULL && m->gen < prev->gen)) {
		snprintf(m->why, sizeof(m->why), "tree %" PRIu32 ": generation %"
		    PRIu64 " (root born %" PRIu64 ") not in (%" PRIu64 ", %"
		    PRIu64 "], oldest first", m->index, m->gen, m->root.birth,
		    b->base_gen, b->gen);
		return FL_ERR(-FL_EPROTO);
	}
	if (last && (m->gen != b->gen || !bp_eq(&m->root, &b->root))) {
		snprintf(m->why, sizeof(m->why), "tree %" PRIu32 ": the last "
		    "tree is not the active root announced", m->index);
		return FL_ERR(-FL_EPROTO);
	}
	return 0;
}

void mir_rs_done_encode(uint8_t *p, uint64_t gen, uint64_t blocks)
{
	fl_put_le64(p, gen);
	fl_put_le64(p + 8, blocks);
}

int mir_rs_done_decode(const uint8_t *p, uint32_t len, uint64_t *gen,
    uint64_t *blocks)
{
	if (len != 16)
		return FL_ERR(-FL_EPROTO);
	*gen = fl_get_le64(p);
	*blocks = fl_get_le64(p + 8);
	return 0;
}

/* ------------------------------------------------------------ links */

int mir_conn_init(struct mir_conn *c, int fd, uint32_t timeout_ms,
    const _Atomic bool *stop)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	c->stop = stop;
	c->tx_ns = fl_now_mono_ns();
	c->buf = malloc(MIR_HDR_SIZE + MIR_MAX_PAYLOAD);
	if (c->buf == NULL)
		return -ENOMEM;
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int rc = mir_tcp_keepalive(fd, timeout_ms);
	if (rc != 0)
		fl_warn("mirror", "TCP keepalive on the link: %s",
		    fl_strerror(rc));
	return 0;
}

void mir_conn_deadline(struct mir_conn *c, uint32_t ms)
{
	c->hs_deadline_ns = ms == 0 ? 0 :
	    fl_now_mono_ns() + (uint64_t)ms * 1000000ull;
}

bool mir_conn_peer_gone(struct mir_conn *c)
{
	uint8_t b;
	ssize_t n;

	if (c->fd < 0)
		return true;
	if (c->ssl != NULL || c->ipos < c->ilen)
		return false;	/* TLS, or bytes to read: not known here */
	do {
		n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

void mir_conn_close(struct mir_conn *c)
{
	if (c->ssl != NULL) {
		SSL_CTX *ctx = SSL_get_SSL_CTX(c->ssl);
		SSL_free(c->ssl);
		SSL_CTX_free(ctx);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	free(c->obuf);
	c->obuf = NULL;
	c->olen = 0;
	free(c->ibuf);
	c->ibuf = NULL;
	c->ipos = c->ilen = 0;
	free(c->zbuf);
	c->zbuf = NULL;
	ZSTD_freeCCtx(c->zctx);
	ZSTD_freeDCtx(c->zdctx);
	c->zctx = c->zdctx = NULL;
	mir_window_destroy(c->win);
	c->win = NULL;
}

uint8_t *mir_conn_payload(struct mir_conn *c)
{
	return c->buf + MIR_HDR_SIZE;
}

const uint8_t *mir_conn_rx(const struct mir_conn *c)
{
	return c->rx;
}

uint32_t mir_conn_block_crc(const struct mir_conn *c)
{
	return c->rx_block_crc;
}

/* Bytes this side wrote that the peer has not taken yet (TCP: not
 * acknowledged; a UNIX socket: not read); -1 if the socket cannot say. */
static int out_queued(int fd)
{
	int q = 0;

	return ioctl(fd, SIOCOUTQ, &q) == 0 ? q : -1;
}

/*
 * Wait for fd to be ready for ev; 0 ready, -ETIMEDOUT, -ECANCELED.
 * total_ms counts from the last progress: a slice in which the output
 * queue shrank (the peer took bytes, however slowly it reads) starts the
 * count again.
 */
static int wait_fd(struct mir_conn *c, short ev, int total_ms)
{
	int waited = 0, queued = -1;
	uint64_t dl = c->hs_deadline_ns;

	if (c->rx_deadline_ns != 0 && (dl == 0 || c->rx_deadline_ns < dl))
		dl = c->rx_deadline_ns;
	for (;;) {
		if (c->stop != NULL && *c->stop)
			return -ECANCELED;
		struct pollfd pfd = { .fd = c->fd, .events = ev };
		int slice = total_ms - waited < 50 ? total_ms - waited : 50;
		if (dl != 0) {
			/* The handshake's or the frame's time is up. */
			uint64_t now = fl_now_mono_ns();
			if (now >= dl)
				return -ETIMEDOUT;
			if ((uint64_t)slice * 1000000ull > dl - now)
				slice = (int)((dl - now + 999999) / 1000000);
		}
		int n = poll(&pfd, 1, slice < 0 ? 0 : slice);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
		waited += slice;
		int q = out_queued(c->fd);
		if (q >= 0 && q < queued)
			waited = 0;
		queued = q;
		if (waited >= total_ms)
			return -ETIMEDOUT;
	}
}

/* A TLS call that did not complete: wait for what it wants (0), or the
 * link's error. */
static int ssl_wait(struct mir_conn *c, int ret)
{
	switch (SSL_get_error(c->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return wait_fd(c, POLLIN, (int)c->timeout_ms);
	case SSL_ERROR_WANT_WRITE:
		return wait_fd(c, POLLOUT, (int)c->timeout_ms);
	case SSL_ERROR_ZERO_RETURN:
		return -ECONNRESET;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		return errno != 0 ? -errno : -ECONNRESET;
	default:
		ERR_clear_error();
		return FL_ERR(-FL_EPROTO);	/* a bad TLS record */
	}
}

static void rate_start(struct mir_rate *r, uint64_t bps)
{
	r->bps = bps;
	r->tokens = 0;
	r->ns = fl_now_mono_ns();
}

void mir_conn_throttle(struct mir_conn *c, uint64_t bps)
{
	rate_start(&c->rate_out, bps);
}

void mir_conn_throttle_recv(struct mir_conn *c, uint64_t bps)
{
	rate_start(&c->rate_in, bps);
}

/*
 * A token bucket: wait until bucket r holds len bytes (at most
 * MIR_PACE_PIECE, never more than the burst), in sleeps of at most 50 ms
 * that watch the stop flag.  The caller takes what it used (rate_take).
 */
static int pace(struct mir_conn *c, struct mir_rate *r, size_t len)
{
	double burst = FL_MAX((double)r->bps / 4, (double)MIR_PACE_PIECE);

	for (;;) {
		uint64_t now = fl_now_mono_ns();

		r->tokens = FL_MIN(burst, r->tokens +
		    (double)(now - r->ns) * (double)r->bps / 1e9);
		r->ns = now;
		if (r->tokens >= (double)len)
			return 0;
		if (c->stop != NULL && *c->stop)
			return -ECANCELED;
		double need = ((double)len - r->tokens) / (double)r->bps;
		uint64_t us = (uint64_t)(need * 1e6) + 1;
		if (us > 50000)
			us = 50000;
		struct timespec ts = { 0, (long)us * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* Bytes read or written out of a paced bucket (none without a rate). */
static void rate_take(struct mir_rate *r, size_t len)
{
	if (r->bps != 0)
		r->tokens -= (double)len;
}

static int write_raw(struct mir_conn *c, const uint8_t *p, size_t len)
{
	while (c->ssl != NULL && len > 0) {
		size_t n = 0;
		int ret = SSL_write_ex(c->ssl, p, len, &n);
		if (ret == 1) {
			p += n;
			len -= n;
			c->bytes_out += n;
			c->tx_ns = fl_now_mono_ns();
			continue;
		}
		int rc = ssl_wait(c, ret);
		if (rc != 0)
			return rc;
	}
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			c->bytes_out += (uint64_t)n;
			c->tx_ns = fl_now_mono_ns();
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = wait_fd(c, POLLOUT, (int)c->timeout_ms);
			if (rc != 0)
				return rc;
			continue;
		}
		return n < 0 ? -errno : -ECONNRESET;
	}
	return 0;
}

/* Paced, when the connection has a rate. */
static int write_all(struct mir_conn *c, const uint8_t *p, size_t len)
{
	while (c->rate_out.bps != 0 && len > 0) {
		size_t n = FL_MIN(len, (size_t)MIR_PACE_PIECE);
		int rc = pace(c, &c->rate_out, n);

		if (rc == 0) {
			rate_take(&c->rate_out, n);
			rc = write_raw(c, p, n);
		}
		if (rc != 0)
			return rc;
		p += n;
		len -= n;
	}
	return write_raw(c, p, len);
}

/* Write out the gathered BLOCK frames. */
static int flush_out(struct mir_conn *c)
{
	int rc = 0;

	if (c->olen > 0) {
		rc = write_all(c, c->obuf, c->olen);
		c->olen = 0;
	}
	return rc;
}

/* Read what the socket holds (at least one byte, waiting for it) into
 * the empty receive buffer: up to MIR_RECV_BUF, or with a read rate one
 * piece once the bucket holds it. */
static int fill_in(struct mir_conn *c)
{
	size_t want = MIR_RECV_BUF;

	if (c->ibuf == NULL && (c->ibuf = malloc(MIR_RECV_BUF)) == NULL)
		return -ENOMEM;
	c->ipos = c->ilen = 0;
	if (c->rate_in.bps != 0) {
		int rc = pace(c, &c->rate_in, MIR_PACE_PIECE);
		if (rc != 0)
			return rc;
		want = MIR_PACE_PIECE;
	}
	while (c->ssl != NULL) {
		size_t n = 0;
		int ret = SSL_read_ex(c->ssl, c->ibuf, want, &n);
		if (ret == 1) {
			c->ilen = n;
			c->bytes_in += n;
			rate_take(&c->rate_in, n);
			return 0;
		}
		int rc = ssl_wait(c, ret);
		if (rc != 0)
			return rc;
	}
	for (;;) {
		ssize_t n = recv(c->fd, c->ibuf, want, MSG_DONTWAIT);
		if (n > 0) {
			c->ilen = (size_t)n;
			c->bytes_in += (uint64_t)n;
			rate_take(&c->rate_in, (size_t)n);
			return 0;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int rc = wait_fd(c, POLLIN, (int)c->timeout_ms);
			if (rc != 0)
				return rc;
			continue;
		}
		return -errno;
	}
}

static int read_all(struct mir_conn *c, uint8_t *p, size_t len)
{
	while (len > 0) {
		if (c->ipos == c->ilen) {
			int rc = fill_in(c);
			if (rc != 0)
				return rc;
		}
		size_t n = c->ilen - c->ipos < len ? c->ilen - c->ipos : len;
		memcpy(p, c->ibuf + c->ipos, n);
		c->ipos += n;
		p += n;
		len -= n;
	}
	return 0;
}

#define ZBUF_SIZE	(2 * (32 + MIR_BLOCK) + 512)

static int zbuf_get(struct mir_conn *c)
{
	_Static_assert(ZBUF_SIZE >= LZ4_COMPRESSBOUND(32 + MIR_BLOCK),
	    "lz4 bound");
	if (c->zbuf == NULL)
		c->zbuf = malloc(ZBUF_SIZE);
	return c->zbuf == NULL ? -ENOMEM : 0;
}

/* Compress the payload into zbuf: its length, or 0 (send it plain). */
static uint32_t compress_payload(struct mir_conn *c, uint32_t len)
{
	const uint8_t *src = mir_conn_payload(c);

	if (zbuf_get(c) != 0 || ZSTD_compressBound(len) > ZBUF_SIZE)
		return 0;
	if (c->compress == MIR_COMP_LZ4) {
		int n = LZ4_compress_default((const char *)src,
		    (char *)c->zbuf, (int)len, ZBUF_SIZE);
		return n > 0 ? (uint32_t)n : 0;
	}
	if (c->zctx == NULL && (c->zctx = ZSTD_createCCtx()) == NULL)
		return 0;
	size_t n = ZSTD_compressCCtx(c->zctx, c->zbuf, ZBUF_SIZE, src, len, 1);
	return ZSTD_isError(n) ? 0 : (uint32_t)n;
}

/* A compressed payload (h->length bytes at the payload) back to exactly
 * its type's size, in place.  Anything else is a malformed frame. */
static int decompress_payload(struct mir_conn *c, struct mir_hdr *h)
{
	const uint8_t *src = mir_conn_payload(c);
	uint32_t want = types[h->type].max;
	int rc;

	/* mir_hdr_decode lets the flag through on BLOCKs only; zbuf holds
	 * one uncompressed BLOCK payload and no more. */
	if (h->type != MIR_MSG_BLOCK || want > ZBUF_SIZE ||
	    h->length >= want)
		return FL_ERR(-FL_EPROTO);
	rc = zbuf_get(c);
	if (rc != 0)
		return rc;
	if (c->compress == MIR_COMP_LZ4) {
		int n = LZ4_decompress_safe((const char *)src, (char *)c->zbuf,
		    (int)h->length, (int)want);
		if (n != (int)want)
			return FL_ERR(-FL_EPROTO);
	} else if (c->compress == MIR_COMP_ZSTD) {
		if (ZSTD_getFrameContentSize(src, h->length) != want)
			return FL_ERR(-FL_EPROTO);
		if (c->zdctx == NULL && (c->zdctx = ZSTD_createDCtx()) == NULL)
			return -ENOMEM;
		size_t n = ZSTD_decompressDCtx(c->zdctx, c->zbuf, want, src,
		    h->length);
		if (ZSTD_isError(n) || n != want)
			return FL_ERR(-FL_EPROTO);
	} else {
		return FL_ERR(-FL_EPROTO);	/* not negotiated */
	}
	memcpy(mir_conn_payload(c), c->zbuf, want);
	h->length = want;
	h->flags = 0;
	return 0;
}

int mir_send_buf(struct mir_conn *c, uint16_t type, uint32_t len)
{
	struct mir_hdr h = {
		.version = MIR_WIRE_VERSION, .type = type, .length = len,
		.seq = c->seq_out,
	};

	if (c->fd < 0)
		return -ENOTCONN;
	if (len > MIR_MAX_PAYLOAD)
		return -EINVAL;
	if (type == MIR_MSG_BLOCK && c->compress != MIR_COMP_NONE) {
		uint32_t clen = compress_payload(c, len);
		if (clen > 0 && clen < len) {
			memcpy(mir_conn_payload(c), c->zbuf, clen);
			h.flags = MIR_FLAG_COMPRESSED;
			h.length = len = clen;
			c->blocks_compressed++;
		}
	}
	mir_hdr_encode(c->buf, &h);
	mir_frame_seal(c->buf, len);
	size_t flen = MIR_HDR_SIZE + (size_t)len;
	bool gather = type == MIR_MSG_BLOCK || type == MIR_MSG_DELTA;
	int rc = 0;

	if (c->obuf == NULL && gather &&
	    (c->obuf = malloc(MIR_SEND_BUF)) == NULL)
		return -ENOMEM;
	if (c->olen + flen > MIR_SEND_BUF)
		rc = flush_out(c);
	if (rc == 0 && (c->olen > 0 || gather)) {
		/* Behind the frames gathered before it, in one write. */
		memcpy(c->obuf + c->olen, c->buf, flen);
		c->olen += flen;
		if (!gather)
			rc = flush_out(c);
	} else if (rc == 0) {
		rc = write_all(c, c->buf, flen);
	}
	if (rc == 0)
		c->seq_out++;
	return rc;
}

static int send_block(struct mir_conn *c, const struct mir_block *b)
{
	const uint32_t len = 32 + MIR_BLOCK;
	const size_t flen = MIR_HDR_SIZE + len;
	int rc;

	if (c->compress != MIR_COMP_NONE || c->fd < 0) {
		mir_block_encode(mir_conn_payload(c), b);
		return mir_send_buf(c, MIR_MSG_BLOCK, len);
	}
	/* The frame is encoded where it is gathered: the same bytes as
	 * mir_send_buf's, one copy of the data fewer. */
	if (c->obuf == NULL && (c->obuf = malloc(MIR_SEND_BUF)) == NULL)
		return -ENOMEM;
	if (c->olen + flen > MIR_SEND_BUF) {
		rc = flush_out(c);
		if (rc != 0)
			return rc;
	}
	struct mir_hdr h = { .version = MIR_WIRE_VERSION,
	    .type = MIR_MSG_BLOCK, .length = len, .seq = c->seq_out };
	uint8_t *f = c->obuf + c->olen;
	mir_hdr_encode(f, &h);
	mir_block_encode(f + MIR_HDR_SIZE, b);
	ASSERT(fl_crc32c(0, b->data, MIR_BLOCK) == b->cksum);
	fl_put_le32(f + 24, block_frame_crc(f, b->cksum));
	c->olen += flen;
	c->seq_out++;
	return 0;
}

int mir_send_block(struct mir_conn *c, uint64_t gen, uint64_t vbn,
    uint64_t birth, uint32_t cksum, const void *data)
{
	struct mir_block b = { .gen = gen, .vbn = vbn, .birth = birth,
	    .cksum = cksum, .data = data };

	return send_block(c, &b);
}

int mir_send_block_win(struct mir_conn *c, uint64_t gen, uint64_t vbn,
    uint64_t birth, uint32_t cksum, const void *data, uint64_t prev_vbn,
    bool keep)
{
	int rc;

	if (c->win == NULL)
		return mir_send_block(c, gen, vbn, birth, cksum, data);
	if (c->buf == NULL)
		return -ENOTCONN;
	const uint8_t *base = prev_vbn != 0 ? mir_window_get(c->win, prev_vbn) :
	    NULL;
	if (base != NULL) {
		uint8_t *p = mir_conn_payload(c);
		uint32_t n = mir_patch_encode(p + MIR_DELTA_HDR, MIR_BLOCK - 1,
		    base, data);
		if (n != UINT32_MAX) {
			struct mir_delta d = { .gen = gen, .vbn = vbn,
			    .birth = birth, .base = prev_vbn };
			mir_delta_encode_head(p, &d);
			rc = mir_send_buf(c, MIR_MSG_DELTA, MIR_DELTA_HDR + n);
			if (rc != 0)
				return rc;
			c->blocks_delta++;
			mir_window_drop(c->win, prev_vbn);
			mir_window_put(c->win, vbn, data);
			return 0;
		}
	}
	struct mir_block b = { .gen = gen, .vbn = vbn, .birth = birth,
	    .hint = keep ? MIR_HINT_KEEP : 0, .cksum = cksum, .data = data };
	rc = send_block(c, &b);
	if (rc == 0)
		mir_window_took_block(c, &b);
	return rc;
}

void mir_window_took_block(struct mir_conn *c, const struct mir_block *b)
{
	if (b->hint & MIR_HINT_KEEP)
		mir_window_put(c->win, b->vbn, b->data);
	else
		mir_window_drop(c->win, b->vbn);
}

int mir_window_rebuild(struct mir_conn *c, const struct mir_delta *d,
    uint8_t *out)
{
	const uint8_t *base = mir_window_get(c->win, d->base);
	int rc;

	if (base == NULL)
		return FL_ERR(-FL_EPROTO);
	rc = mir_patch_apply(base, d->ranges, d->ranges_len, out);
	if (rc != 0)
		return rc;
	mir_window_drop(c->win, d->base);
	mir_window_put(c->win, d->vbn, out);
	return 0;
}

int mir_send(struct mir_conn *c, uint16_t type, const void *payload,
    uint32_t len)
{
	if (len > MIR_MAX_PAYLOAD || c->buf == NULL)
		return -EINVAL;
	if (len > 0)
		memmove(mir_conn_payload(c), payload, len);
	return mir_send_buf(c, type, len);
}

/* A frame whose first bytes are in the receive buffer. */
static int recv_frame(struct mir_conn *c, struct mir_hdr *h)
{
	int rc;
	const uint8_t *frame = c->buf;
	if (c->ilen - c->ipos >= MIR_HDR_SIZE) {
		/* The header is in the receive buffer: decode it there. */
		rc = mir_hdr_decode(c->ibuf + c->ipos, h);
		if (rc == 0 && h->type == MIR_MSG_BLOCK &&
		    !(h->flags & MIR_FLAG_COMPRESSED) &&
		    c->ilen - c->ipos >= MIR_HDR_SIZE + (size_t)h->length) {
			/* A whole BLOCK frame: checked and used in place. */
			frame = c->ibuf + c->ipos;
			c->ipos += MIR_HDR_SIZE + (size_t)h->length;
			c->rx = frame + MIR_HDR_SIZE;
		} else if (rc == 0) {
			memcpy(c->buf, c->ibuf + c->ipos, MIR_HDR_SIZE);
			c->ipos += MIR_HDR_SIZE;
		}
	} else {
		rc = read_all(c, c->buf, MIR_HDR_SIZE);
		if (rc != 0)
			return rc;
		rc = mir_hdr_decode(c->buf, h);
	}
	if (rc != 0) {
		fl_warn("mirror", "malformed frame header from peer");
		return rc;
	}
	if (frame == c->buf) {
		rc = read_all(c, c->buf + MIR_HDR_SIZE, h->length);
		if (rc != 0)
			return rc;
	}
	if (h->type == MIR_MSG_BLOCK && !(h->flags & MIR_FLAG_COMPRESSED)) {
		/* One pass over the data: its own crc32c, which the
		 * receiver then compares with the block pointer's. */
		c->rx_block_crc = fl_crc32c(0, frame + MIR_HDR_SIZE + 32,
		    MIR_BLOCK);
		rc = block_frame_crc(frame, c->rx_block_crc) == h->crc ? 0 :
		    FL_ERR(-FL_EPROTO);
	} else {
		rc = mir_frame_check(frame, h);
	}
	if (rc != 0) {
		fl_warn("mirror", "frame %s seq %llu: checksum mismatch",
		    mir_msg_name(h->type), (unsigned long long)h->seq);
		return FL_ERR(-FL_EPROTO);
	}
	if (h->seq != c->seq_in) {
		fl_warn("mirror", "frame %s: sequence %llu, expected %llu",
		    mir_msg_name(h->type), (unsigned long long)h->seq,
		    (unsigned long long)c->seq_in);
		return FL_ERR(-FL_EPROTO);
	}
	c->seq_in++;
	const bool compressed = (h->flags & MIR_FLAG_COMPRESSED) != 0;
	if (compressed && decompress_payload(c, h) != 0) {
		fl_warn("mirror", "frame %s seq %llu: compressed payload does "
		    "not decompress to %u bytes (%s)", mir_msg_name(h->type),
		    (unsigned long long)h->seq, types[h->type].max,
		    c->compress == MIR_COMP_NONE ? "compression was not "
		    "negotiated" : mir_compress_name(c->compress));
		return FL_ERR(-FL_EPROTO);
	}
	if (compressed)		/* a BLOCK (mir_hdr_decode) */
		c->rx_block_crc = fl_crc32c(0, c->rx + 32, MIR_BLOCK);
	return 0;
}

int mir_recv(struct mir_conn *c, struct mir_hdr *h)
{
	int rc;

	if (c->fd < 0)
		return -ENOTCONN;
	c->rx = c->buf + MIR_HDR_SIZE;
	rc = flush_out(c);
	if (rc != 0)
		return rc;
	/* The frame may be long in coming (a wait counts from the last
	 * progress); once it has begun, all of it must come within the
	 * timeout. */
	if (c->ipos == c->ilen) {
		rc = fill_in(c);
		if (rc != 0)
			return rc;
	}
	c->rx_deadline_ns = fl_now_mono_ns() +
	    (uint64_t)c->timeout_ms * 1000000ull;
	rc = recv_frame(c, h);
	c->rx_deadline_ns = 0;
	return rc;
}

int mir_readable(struct mir_conn *c, int wait_ms)
{
	return mir_readable_or(c, wait_ms, -1);
}

int mir_readable_or(struct mir_conn *c, int wait_ms, int wake_fd)
{
	struct pollfd pfd[2] = { { .fd = c->fd, .events = POLLIN },
	    { .fd = wake_fd, .events = POLLIN } };

	if (c->ipos < c->ilen)
		return 1;
	if (wait_ms != 0) {
		int rc = flush_out(c);
		if (rc != 0)
			return rc;
	}
	if (c->ssl != NULL && SSL_pending(c->ssl) > 0)
		return 1;
	int n = poll(pfd, wake_fd >= 0 ? 2 : 1, wait_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n > 0 && pfd[0].revents == 0)
		return 0;		/* woken, nothing to read */
	if (n == 0 || c->ssl == NULL)
		return n > 0 ? 1 : 0;
	/* Bytes on the socket may be a TLS record that holds no frame:
	 * readable only if TLS has application data (or the end). */
	uint8_t b;
	size_t got = 0;
	int ret = SSL_peek_ex(c->ssl, &b, 1, &got);
	if (ret == 1)
		return 1;
	int e = SSL_get_error(c->ssl, ret);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	ERR_clear_error();
	return 1;	/* the end of the stream or an error: mir_recv says */
}

static void send_error_text(struct mir_conn *c, int code, const char *text)
{
	uint8_t p[8 + MIR_ERRTEXT_MAX];
	uint32_t len = mir_error_encode(p, (uint32_t)(code < 0 ? -code : code),
	    text);
	uint32_t saved = c->timeout_ms;
	snprintf(c->sent_error, sizeof(c->sent_error), "%s", text);
	c->timeout_ms = 200;
	(void)mir_send(c, MIR_MSG_ERROR, p, len);
	c->timeout_ms = saved;
}

void mir_send_error(struct mir_conn *c, int code, const char *fmt, ...)
{
	char text[MIR_ERRTEXT_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	fl_warn("mirror", "refusing peer: %s", text);
	send_error_text(c, code, text);
}

void mir_send_error_quiet(struct mir_conn *c, int code, const char *fmt, ...)
{
	char text[MIR_ERRTEXT_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	send_error_text(c, code, text);
}

/* -------------------------------------------------------- handshake */

static const char tag_source[] = "filer-mirror S";
static const char tag_dest[] = "filer-mirror D";

int mir_mac(const uint8_t *key, size_t key_len, const char *tag,
    const uint8_t id[MIR_ID_SIZE], const uint8_t *n1, const uint8_t *n2,
    uint8_t out[MIR_MAC_SIZE])
{
	uint8_t msg[MIR_MAC_TAG_MAX + MIR_ID_SIZE + 2 * MIR_NONCE_SIZE];
	size_t len = strlen(tag);
	unsigned int outlen = 0;

	ASSERT(len <= MIR_MAC_TAG_MAX);
	memcpy(msg, tag, len);
	memcpy(msg + len, id, MIR_ID_SIZE);
	len += MIR_ID_SIZE;
	memcpy(msg + len, n1, MIR_NONCE_SIZE);
	len += MIR_NONCE_SIZE;
	if (n2 != NULL) {
		memcpy(msg + len, n2, MIR_NONCE_SIZE);
		len += MIR_NONCE_SIZE;
	}
	if (HMAC(EVP_sha256(), key, (int)key_len, msg, len, out,
	    &outlen) == NULL || outlen != MIR_MAC_SIZE)
		return -EIO;
	return 0;
}

/* ---------------------------------------------------------------- TLS */

static const char tag_tls[] = "filer-mirror TLS";
static const unsigned char tls_identity[] = "filer-mirror";
static const unsigned char tls13_aes128gcmsha256[] = { 0x13, 0x01 };

struct tls_psk {
	uint8_t key[MIR_MAC_SIZE];
};

static int tls_psk_index = -1;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_init_once(void)
{
	tls_psk_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* The TLS session an external PSK stands for (TLS 1.3, SHA-256). */
static SSL_SESSION *psk_session(SSL *ssl)
{
	const struct tls_psk *k = SSL_get_ex_data(ssl, tls_psk_index);
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, tls13_aes128gcmsha256);
	SSL_SESSION *sess;

	if (k == NULL || cipher == NULL || (sess = SSL_SESSION_new()) == NULL)
		return NULL;
	if (SSL_SESSION_set1_master_key(sess, k->key, sizeof(k->key)) != 1 ||
	    SSL_SESSION_set_cipher(sess, cipher) != 1 ||
	    SSL_SESSION_set_protocol_version(sess, TLS1_3_VERSION) != 1) {
		SSL_SESSION_free(sess);
		return NULL;
	}
	return sess;
}

static int psk_use_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id,
    size_t *idlen, SSL_SESSION **sess)
{
	*sess = psk_session(ssl);
	if (*sess == NULL)
		return 0;
	*id = tls_identity;
	*idlen = sizeof(tls_identity) - 1;
	return 1;
}

static int psk_find_cb(SSL *ssl, const unsigned char *id, size_t idlen,
    SSL_SESSION **sess)
{
	*sess = NULL;
	if (idlen != sizeof(tls_identity) - 1 ||
	    memcmp(id, tls_identity, idlen) != 0)
		return 1;	/* unknown identity: no PSK, the handshake fails */
	*sess = psk_session(ssl);
	return *sess != NULL;
}

/*
 * Run the TLS 1.3 handshake on the connection's socket, keyed by the
 * relationship key, as client (the source) or server.  From here on every
 * frame goes through TLS.
 */
static int tls_start(struct mir_conn *c, const uint8_t *key, size_t key_len,
    const uint8_t id[MIR_ID_SIZE], bool server)
{
	struct tls_psk *k = NULL;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	unsigned int outlen = 0;
	uint8_t msg[sizeof(tag_tls) + MIR_ID_SIZE];
	int rc = -EIO;

	/* Nothing may be read or gathered in the clear past the frames
	 * before TLS: the peer waits for them before it starts. */
	if (c->ipos < c->ilen)
		return FL_ERR(-FL_EPROTO);
	rc = flush_out(c);
	if (rc != 0)
		return rc;
	rc = -EIO;
	pthread_once(&tls_once, tls_init_once);
	k = malloc(sizeof(*k));
	if (k == NULL)
		return -ENOMEM;
	memcpy(msg, tag_tls, sizeof(tag_tls) - 1);
	memcpy(msg + sizeof(tag_tls) - 1, id, MIR_ID_SIZE);
	if (HMAC(EVP_sha256(), key, (int)key_len, msg,
	    sizeof(tag_tls) - 1 + MIR_ID_SIZE, k->key, &outlen) == NULL ||
	    outlen != MIR_MAC_SIZE || tls_psk_index < 0)
		goto out;
	ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (ctx == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") != 1)
		goto out;
	/* One connection, one handshake: no tickets to resume with (and no
	 * post-handshake records that look like frames to poll). */
	(void)SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if (server)
		SSL_CTX_set_psk_find_session_callback(ctx, psk_find_cb);
	else
		SSL_CTX_set_psk_use_session_callback(ctx, psk_use_cb);
	ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, c->fd) != 1 ||
	    SSL_set_ex_data(ssl, tls_psk_index, k) != 1)
		goto out;
	int fl = fcntl(c->fd, F_GETFL);
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0) {
		rc = -errno;
		goto out;
	}
	c->ssl = ssl;
	for (;;) {
		int ret = server ? SSL_accept(ssl) : SSL_connect(ssl);
		if (ret == 1) {
			rc = 0;
			break;
		}
		rc = ssl_wait(c, ret);
		if (rc != 0)
			break;
	}
	if (rc != 0) {
		fl_warn("mirror", "TLS handshake failed: %s%s", fl_strerror(rc),
		    rc == -FL_EPROTO ? " (the peers' keys differ, or the peer "
		    "does not speak TLS)" : "");
		c->ssl = NULL;
	}
out:
	/* The key is only needed during the handshake. */
	if (ssl != NULL)
		SSL_set_ex_data(ssl, tls_psk_index, NULL);
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
	if (rc != 0) {
		SSL_free(ssl);
		SSL_CTX_free(ctx);
		ERR_clear_error();
	}
	return rc;
}

int mir_recv_type(struct mir_conn *c, uint16_t want, struct mir_hdr *h)
{
	int rc = mir_recv(c, h);

	if (rc != 0)
		return rc;
	if (h->type == MIR_MSG_ERROR) {
		struct mir_error e;
		if (mir_error_decode(mir_conn_payload(c), h->length, &e) != 0)
			return FL_ERR(-FL_EPROTO);
		/* The caller reports it (the source's refusals are logged
		 * once per change or minute, not once per retry). */
		fl_debug("mirror", "peer refused: %s (code %u)", e.text,
		    e.code);
		snprintf(c->peer_error, sizeof(c->peer_error), "%s", e.text);
		return e.code > 0 && e.code < 100000 ? -(int)e.code :
		    -ECONNREFUSED;
	}
	if (h->type != want) {
		fl_warn("mirror", "expected %s, peer sent %s",
		    mir_msg_name(want), mir_msg_name(h->type));
		return FL_ERR(-FL_EPROTO);
	}
	return 0;
}

static int handshake_source(struct mir_conn *c, const struct mir_peer_cfg *p,
    struct mir_status_msg *st)
{
	struct mir_hello hello = { .vmin = MIR_WIRE_VERSION,
	    .vmax = MIR_WIRE_VERSION, .side = MIR_SIDE_SOURCE,
	    .compress = p->compress, .tls = p->tls };
	uint8_t buf[64], nonce_d[MIR_NONCE_SIZE];
	struct mir_response resp;
	struct mir_hdr h;
	int rc;

	memcpy(hello.id, p->id, MIR_ID_SIZE);
	mir_hello_encode(buf, &hello);
	rc = mir_send(c, MIR_MSG_HELLO, buf, 32);
	if (rc == 0)
		rc = mir_recv_type(c, MIR_MSG_CHALLENGE, &h);
	if (rc != 0)
		return rc;
	memcpy(nonce_d, mir_conn_payload(c), MIR_NONCE_SIZE);
	/* The destination accepted our link options with its CHALLENGE. */
	if (p->tls) {
		rc = tls_start(c, p->key, p->key_len, p->id, false);
		if (rc != 0)
			return rc;
	}
	c->compress = p->compress;
	rc = fl_random_bytes(resp.nonce, MIR_NONCE_SIZE);
	if (rc == 0)
		rc = mir_mac(p->key, p->key_len, tag_source, p->id, nonce_d,
		    NULL, resp.mac);
	if (rc != 0)
		return rc;
	mir_response_encode(buf, &resp);
	rc = mir_send(c, MIR_MSG_RESPONSE, buf, 64);
	if (rc == 0)
		rc = mir_recv_type(c, MIR_MSG_PROOF, &h);
	if (rc != 0)
		return rc;
	uint8_t want[MIR_MAC_SIZE];
	rc = mir_mac(p->key, p->key_len, tag_dest, p->id, resp.nonce, nonce_d,
	    want);
	if (rc != 0)
		return rc;
	if (CRYPTO_memcmp(want, mir_conn_payload(c), MIR_MAC_SIZE) != 0) {
		fl_warn("mirror", "destination failed to prove the relationship "
		    "key: refused");
		return -EACCES;
	}
	rc = mir_recv_type(c, MIR_MSG_STATUS, &h);
	if (rc == 0)
		rc = mir_status_decode(mir_conn_payload(c), h.length, st);
	return rc;
}

static int handshake_dest(struct mir_conn *c, mir_key_lookup_fn *lookup,
    void *arg, const struct mir_link_opts *lo, uint8_t id_out[MIR_ID_SIZE])
{
	struct mir_hello hello;
	struct mir_response resp;
	uint8_t nonce_d[MIR_NONCE_SIZE], want[MIR_MAC_SIZE];
	const uint8_t *key = NULL;
	size_t key_len = 0;
	struct mir_hdr h;
	int rc;

	rc = mir_recv_type(c, MIR_MSG_HELLO, &h);
	if (rc == 0)
		rc = mir_hello_decode(mir_conn_payload(c), h.length, &hello);
	if (rc != 0)
		return rc;
	if (hello.side != MIR_SIDE_SOURCE || hello.vmin > MIR_WIRE_VERSION ||
	    hello.vmax < MIR_WIRE_VERSION) {
		mir_send_error_quiet(c, FL_EPROTO, "unsupported side or version "
		    "%u..%u", hello.vmin, hello.vmax);
		return FL_ERR(-FL_EPROTO);
	}
	if (lookup(arg, hello.id, &key, &key_len) != 0) {
		char hex[2 * MIR_ID_SIZE + 1];
		for (unsigned i = 0; i < MIR_ID_SIZE; i++)
			snprintf(hex + 2 * i, 3, "%02x", hello.id[i]);
		mir_send_error_quiet(c, ENOENT, "unknown relationship %s", hex);
		return -ENOENT;
	}
	if (hello.compress != lo->compress || hello.tls != lo->tls) {
		mir_send_error_quiet(c, EPROTONOSUPPORT, "link options differ: "
		    "source compression %s, TLS %s; destination compression "
		    "%s, TLS %s",
		    mir_compress_name(hello.compress), hello.tls ? "on" : "off",
		    mir_compress_name(lo->compress), lo->tls ? "on" : "off");
		return -EPROTONOSUPPORT;
	}
	rc = fl_random_bytes(nonce_d, sizeof(nonce_d));
	if (rc == 0)
		rc = mir_send(c, MIR_MSG_CHALLENGE, nonce_d, sizeof(nonce_d));
	if (rc == 0 && lo->tls)
		rc = tls_start(c, key, key_len, hello.id, true);
	if (rc == 0)
		c->compress = lo->compress;
	if (rc == 0)
		rc = mir_recv_type(c, MIR_MSG_RESPONSE, &h);
	if (rc == 0)
		rc = mir_response_decode(mir_conn_payload(c), h.length, &resp);
	if (rc == 0)
		rc = mir_mac(key, key_len, tag_source, hello.id, nonce_d, NULL,
		    want);
	if (rc != 0)
		return rc;
	if (CRYPTO_memcmp(want, resp.mac, MIR_MAC_SIZE) != 0) {
		mir_send_error_quiet(c, EACCES, "authentication failed (wrong "
		    "key)");
		return -EACCES;
	}
	rc = mir_mac(key, key_len, tag_dest, hello.id, resp.nonce, nonce_d,
	    want);
	if (rc == 0)
		rc = mir_send(c, MIR_MSG_PROOF, want, MIR_MAC_SIZE);
	if (rc == 0)
		memcpy(id_out, hello.id, MIR_ID_SIZE);
	return rc;
}

/*
 * The whole handshake, TLS's included, within twice the timeout of one
 * wait: a peer that trickles its frames a byte at a time (each wait sees
 * progress) would otherwise hold the other side, which serves one
 * connection at a time, for as long as it likes before any key is proven.
 */
int mir_handshake_source(struct mir_conn *c, const struct mir_peer_cfg *p,
    struct mir_status_msg *st)
{
	mir_conn_deadline(c, 2 * c->timeout_ms);
	int rc = handshake_source(c, p, st);
	mir_conn_deadline(c, 0);
	return rc;
}

int mir_handshake_dest(struct mir_conn *c, mir_key_lookup_fn *lookup,
    void *arg, const struct mir_link_opts *lo, uint8_t id_out[MIR_ID_SIZE])
{
	mir_conn_deadline(c, 2 * c->timeout_ms);
	int rc = handshake_dest(c, lookup, arg, lo, id_out);
	mir_conn_deadline(c, 0);
	return rc;
}

/* -------------------------------------------------------------- TCP */

int mir_tcp_keepalive(int fd, uint32_t io_timeout_ms)
{
	int proto = 0, one = 1;
	socklen_t pl = sizeof(proto);

	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &pl) != 0)
		return -errno;
	if (proto != IPPROTO_TCP)
		return 0;		/* a socket pair (tests, fuzzing) */
	int idle = (int)((io_timeout_ms + 999) / 1000);
	int intvl = (int)(io_timeout_ms / 3000);
	int cnt = MIR_KEEPALIVE_PROBES;
	if (idle < 1)
		idle = 1;
	if (intvl < 1)
		intvl = 1;
	unsigned int user_ms = (unsigned int)(idle + cnt * intvl) * 1000u;
	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle,
	    sizeof(idle)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl,
	    sizeof(intvl)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms,
	    sizeof(user_ms)) != 0)
		return -errno;
	return 0;
}

int mir_tcp_listen(const char *host, uint16_t port, uint16_t *bound_port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
	    .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE |
	    AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char ps[8];
	int fd = -1, rc;

	snprintf(ps, sizeof(ps), "%u", port);
	rc = getaddrinfo(host, ps, &hints, &ai);
	if (rc != 0)
		return -EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    listen(fd, 8) != 0) {
		rc = -errno;
		goto out;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		rc = -errno;
		goto out;
	}
	*bound_port = ss.ss_family == AF_INET6 ?
	    ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) :
	    ntohs(((struct sockaddr_in *)&ss)->sin_port);
	rc = 0;
out:
	if (ai != NULL)
		freeaddrinfo(ai);
	if (rc != 0 && fd >= 0)
		close(fd);
	return rc == 0 ? fd : rc;
}

int mir_tcp_connect(const char *host, uint16_t port, uint32_t timeout_ms)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
	    .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char ps[8];
	int fd, rc;

	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(host, ps, &hints, &ai) != 0)
		return -EHOSTUNREACH;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
	if (rc != 0 && errno == EINPROGRESS) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int err = 0;
		socklen_t el = sizeof(err);
		if (poll(&pfd, 1, (int)timeout_ms) != 1) {
			rc = -ETIMEDOUT;
			goto out;
		}
		(void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		rc = -err;
	} else if (rc != 0) {
		rc = -errno;
	}
out:
	if (ai != NULL)
		freeaddrinfo(ai);
	if (rc != 0 && fd >= 0)
		close(fd);
	return rc == 0 ? fd : rc;
}
