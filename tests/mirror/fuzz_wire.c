/*
 * tests/mirror/fuzz_wire.c: libFuzzer target over everything a mirror
 * peer decodes from the network (make fuzz).  The input (fuzz_wire.h) is
 * a mode, options and the bytes a peer sent:
 *
 *   FW_STREAM            the bytes arrive on a link (struct mir_conn) and
 *                        every frame mir_recv returns goes to the decoder
 *                        its receiver uses: a destination's (HELLO,
 *                        RESPONSE, BEGIN and its fsinfo, BLOCK and DELTA
 *                        through the link's window, ROOT and its fsinfo,
 *                        ABORT, ERROR), a source's (STATUS, ACK), a
 *                        resync's (RS_ROOTS, RS_BEGIN, RS_TREE after the
 *                        RS_BEGIN before it, RS_END, RS_DONE).  Compressed
 *                        BLOCKs decompress as the options' compression.
 *   FW_HANDSHAKE_DEST    mir_handshake_dest reads them (the first thing a
 *                        destination does with a connection);
 *   FW_HANDSHAKE_SOURCE  mir_handshake_source reads them;
 *   FW_FIRST_FRAME       mir_first_frame_id, as the shared listener routes
 *                        a connection by its first bytes;
 *   FW_PAYLOAD           one payload, handed to every payload decoder
 *                        whatever its length (each must check it), and a
 *                        DELTA's ranges applied to a block.
 *
 * The stream modes feed the bytes through a socket pair into the real
 * receive path (mir_recv: receive buffer, header checks, checksum,
 * sequence, decompression).  The pair is SOCK_SEQPACKET, written by a
 * thread in records of the chunk size: each read of the socket returns one
 * record, so frames split across reads the way TCP may split them, the
 * same way on every run of an input.  Every whole frame is numbered and
 * checksummed first, so that mutated payloads get past the checksum to
 * the decoders; with FW_OPT_RAW the bytes go as they are, and the
 * checks themselves are fuzzed.
 *
 * Besides ASan and UBSan, the target checks what the receivers rely on:
 * a frame mir_recv returns has a length within its type's bounds (a
 * decompressed BLOCK exactly its size); a payload a decoder accepts
 * encodes back to the same bytes (every field is checked, none ignored);
 * mir_first_frame_id never asks for more bytes than the listener peeks.
 * A violation aborts.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "mirror/wire.h"
#include "tests/mirror/fuzz_wire.h"
#include "wafl/ondisk.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FW_FIRST_MAX	(MIR_HDR_SIZE + 64u)	/* what listen.c peeks */

static const uint8_t fw_key[32] = { 0x6b, 0x65, 0x79 };

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

/* ------------------------------------------------------------ feeding */

struct feeder {
	int fd;
	const uint8_t *p;
	size_t len, chunk;
	bool threaded;
	pthread_t thr;
};

static void *feed(void *arg)
{
	struct feeder *f = arg;

	for (size_t off = 0; off < f->len;) {
		size_t n = FL_MIN(f->chunk, f->len - off);
		ssize_t w = send(f->fd, f->p + off, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			break;		/* the reader closed its end */
		off += (size_t)w;
	}
	(void)shutdown(f->fd, SHUT_WR);
	return NULL;
}

/* A link c that reads p (borrowed until link_close) in records of chunk
 * bytes. */
static int link_open(struct mir_conn *c, struct feeder *f, const uint8_t *p,
    size_t len, size_t chunk)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return -errno;
	if (mir_conn_init(c, sv[0], 5000, NULL) != 0) {
		close(sv[0]);
		close(sv[1]);
		return -ENOMEM;
	}
	*f = (struct feeder){ .fd = sv[1], .p = p, .len = len,
	    .chunk = chunk != 0 ? chunk : FL_MAX(len, (size_t)1) };
	/* One record fits in the socket's buffer: no thread needed. */
	f->threaded = chunk != 0 && chunk < len;
	if (!f->threaded) {
		(void)feed(f);
	} else if (pthread_create(&f->thr, NULL, feed, f) != 0) {
		mir_conn_close(c);
		close(sv[1]);
		return -EAGAIN;
	}
	return 0;
}

static void link_close(struct mir_conn *c, struct feeder *f)
{
	mir_conn_close(c);	/* a feeder still writing gets EPIPE */
	if (f->threaded)
		pthread_join(f->thr, NULL);
	close(f->fd);
}

/* Number and checksum every whole frame, as an honest sender would. */
static void seal_frames(uint8_t *p, size_t len)
{
	uint64_t seq = 0;

	for (size_t off = 0; len - off >= MIR_HDR_SIZE; seq++) {
		uint32_t plen = fl_get_le32(p + off + 12);
		if (plen > len - off - MIR_HDR_SIZE)
			break;
		fl_put_le64(p + off + 16, seq);
		mir_frame_seal(p + off, plen);
		off += MIR_HDR_SIZE + plen;
	}
}

/* ----------------------------------------------------------- payloads */

/* Every payload decoder on p (len bytes, nothing after them); those that
 * accept it must encode it back exactly. */
static void every_decoder(const uint8_t *p, uint32_t len, uint8_t sel)
{
	uint8_t *out = malloc(FL_MAX(len, 64u));
	CHECK(out != NULL);

	struct mir_hello hello;
	if (mir_hello_decode(p, len, &hello) == 0) {
		mir_hello_encode(out, &hello);
		CHECK(memcmp(out, p, len) == 0);
	}
	struct mir_response resp;
	if (mir_response_decode(p, len, &resp) == 0) {
		mir_response_encode(out, &resp);
		CHECK(memcmp(out, p, len) == 0);
	}
	struct mir_status_msg st;
	if (mir_status_decode(p, len, &st) == 0) {
		mir_status_encode(out, &st);
		CHECK(memcmp(out, p, len) == 0);
	}
	struct mir_begin *beg = malloc(sizeof(*beg));
	CHECK(beg != NULL);
	if (mir_begin_decode(p, len, beg) == 0) {
		struct wafl_fsinfo f;
		mir_begin_encode(out, beg);
		CHECK(memcmp(out, p, len) == 0);
		if (beg->kind == MIR_XFER_WALK)
			(void)wafl_fsinfo_decode(beg->fsinfo, &f);
	}
	free(beg);
	struct mir_block blk;
	if (mir_block_decode(p, len, &blk) == 0) {
		mir_block_encode(out, &blk);
		CHECK(memcmp(out, p, len) == 0);
	}
	struct mir_delta d;
	if (mir_delta_decode(p, len, &d) == 0) {
		uint8_t base[MIR_BLOCK], blk2[MIR_BLOCK];
		mir_delta_encode_head(out, &d);
		CHECK(memcmp(out, p, MIR_DELTA_HDR) == 0);
		CHECK(d.ranges == p + MIR_DELTA_HDR &&
		    d.ranges_len == len - MIR_DELTA_HDR);
		memset(base, 0xa5, sizeof(base));
		(void)mir_patch_apply(base, d.ranges, d.ranges_len, blk2);
	}
	struct mir_root root;
	if (mir_root_decode(p, len, &root) == 0) {
		struct wafl_fsinfo f;
		mir_root_encode(out, &root);
		CHECK(memcmp(out, p, len) == 0);
		(void)wafl_fsinfo_decode(root.fsinfo, &f);
	}
	uint64_t v, v2;
	if (mir_u64_decode(p, len, &v) == 0) {
		mir_u64_encode(out, v);
		CHECK(memcmp(out, p, len) == 0);
	}
	struct mir_error e;
	if (mir_error_decode(p, len, &e) == 0)
		CHECK(strlen(e.text) == len - 8);
	uint32_t hb;
	if (mir_heartbeat_decode(p, len, &hb) == 0) {
		mir_heartbeat_encode(out, hb);
		CHECK(memcmp(out, p, len) == 0);
	}
	struct mir_rs_root *roots = malloc(MIR_RS_MAX_ROOTS * sizeof(*roots));
	uint32_t room, n;
	CHECK(roots != NULL);
	if (mir_rs_roots_decode(p, len, &room, roots, &n) == 0) {
		uint8_t *o2 = malloc(len);
		CHECK(o2 != NULL);
		CHECK(mir_rs_roots_encode(o2, room, roots, n) == len);
		CHECK(memcmp(o2, p, len) == 0);
		free(o2);
	}
	free(roots);
	struct mir_rs_begin rb;
	if (mir_rs_begin_decode(p, len, &rb) == 0) {
		mir_rs_begin_encode(out, &rb);
		CHECK(memcmp(out, p, len) == 0);
	}
	struct mir_rs_tree prev = fw_rs_prev(sel), tree;
	if (mir_rs_tree_decode(p, len, &fw_rs_default, sel == 0 ? NULL : &prev,
	    &tree) == 0) {
		CHECK(memchr(tree.name, '\0', sizeof(tree.name)) != NULL);
		mir_rs_tree_encode(out, &tree);
		CHECK(memcmp(out, p, len) == 0);
	}
	if (mir_rs_done_decode(p, len, &v, &v2) == 0) {
		mir_rs_done_encode(out, v, v2);
		CHECK(memcmp(out, p, len) == 0);
	}
	if (len >= MIR_HDR_SIZE) {
		struct mir_hdr h;
		if (mir_hdr_decode(p, &h) == 0)
			CHECK(h.length <= mir_payload_max(h.type));
	}
	free(out);
}

/* ------------------------------------------------------------ streams */

/* What a session has seen that later frames are decoded against. */
struct sess {
	struct mir_rs_begin rb;
	struct mir_rs_tree prev;
	bool has_prev;
};

/* One frame, as its receiver decodes it.  A receiver closes the
 * connection at the first frame it refuses; going on finds more. */
static void take_frame(struct mir_conn *c, const struct mir_hdr *h,
    struct sess *s)
{
	const uint8_t *p = mir_conn_payload(c);
	struct wafl_fsinfo f;
	uint64_t v, v2;

	switch (h->type) {
	case MIR_MSG_HELLO: {
		struct mir_hello m;
		(void)mir_hello_decode(p, h->length, &m);
		break;
	}
	case MIR_MSG_RESPONSE: {
		struct mir_response m;
		(void)mir_response_decode(p, h->length, &m);
		break;
	}
	case MIR_MSG_STATUS: {
		struct mir_status_msg m;
		(void)mir_status_decode(p, h->length, &m);
		break;
	}
	case MIR_MSG_BEGIN: {
		struct mir_begin *m = malloc(sizeof(*m));
		CHECK(m != NULL);
		if (mir_begin_decode(p, h->length, m) == 0 &&
		    m->kind == MIR_XFER_WALK)
			(void)wafl_fsinfo_decode(m->fsinfo, &f);
		free(m);
		break;
	}
	case MIR_MSG_BLOCK: {
		struct mir_block b;
		if (mir_block_decode(mir_conn_rx(c), h->length, &b) == 0)
			mir_window_took_block(c, &b);
		break;
	}
	case MIR_MSG_DELTA: {
		struct mir_delta d;
		uint8_t blk[MIR_BLOCK];
		if (mir_delta_decode(p, h->length, &d) == 0)
			(void)mir_window_rebuild(c, &d, blk);
		break;
	}
	case MIR_MSG_ROOT: {
		struct mir_root r;
		if (mir_root_decode(p, h->length, &r) == 0)
			(void)wafl_fsinfo_decode(r.fsinfo, &f);
		break;
	}
	case MIR_MSG_ACK:
	case MIR_MSG_ABORT:
	case MIR_MSG_RS_END:
		(void)mir_u64_decode(p, h->length, &v);
		break;
	case MIR_MSG_ERROR: {
		struct mir_error e;
		(void)mir_error_decode(p, h->length, &e);
		break;
	}
	case MIR_MSG_RS_ROOTS: {
		struct mir_rs_root *r = malloc(MIR_RS_MAX_ROOTS * sizeof(*r));
		uint32_t room, n;
		CHECK(r != NULL);
		(void)mir_rs_roots_decode(p, h->length, &room, r, &n);
		free(r);
		break;
	}
	case MIR_MSG_RS_BEGIN:
		if (mir_rs_begin_decode(p, h->length, &s->rb) != 0)
			s->rb = fw_rs_default;
		s->has_prev = false;
		break;
	case MIR_MSG_RS_TREE: {
		struct mir_rs_tree t;
		if (mir_rs_tree_decode(p, h->length, &s->rb,
		    s->has_prev ? &s->prev : NULL, &t) == 0) {
			s->prev = t;
			s->has_prev = true;
		}
		break;
	}
	case MIR_MSG_RS_DONE:
		(void)mir_rs_done_decode(p, h->length, &v, &v2);
		break;
	case MIR_MSG_HEARTBEAT: {
		uint32_t ms;
		(void)mir_heartbeat_decode(p, h->length, &ms);
		break;
	}
	default:
		/* CHALLENGE, PROOF, RS_HELLO, RS_PROOF, RS_OPEN: nonces,
		 * MACs and ids, compared where they are used */
		break;
	}
}

static void run_stream(struct mir_conn *c, uint8_t opts)
{
	struct sess s = { .rb = fw_rs_default };
	struct mir_hdr h;

	if (!(opts & FW_OPT_NO_WINDOW))
		CHECK(mir_window_create(FW_WINDOW, &c->win) == 0);
	while (mir_recv(c, &h) == 0) {
		CHECK(h.flags == 0);	/* decompressed, if it was */
		CHECK(h.length >= mir_payload_min(h.type) &&
		    h.length <= mir_payload_max(h.type));
		take_frame(c, &h, &s);
	}
}

static int lookup(void *arg, const uint8_t id[MIR_ID_SIZE],
    const uint8_t **key, size_t *key_len)
{
	if (*(const uint8_t *)arg & FW_OPT_UNKNOWN_ID)
		return -ENOENT;
	*key = fw_key;
	*key_len = sizeof(fw_key);
	return 0;
}

static void run_link(uint8_t mode, uint8_t opts, size_t chunk,
    const uint8_t *p, size_t len)
{
	uint8_t compress = opts & FW_OPT_COMPRESS;
	uint8_t *buf = malloc(FL_MAX(len, (size_t)1));
	struct mir_conn c;
	struct feeder f;

	CHECK(buf != NULL);
	memcpy(buf, p, len);
	if (!(opts & FW_OPT_RAW))
		seal_frames(buf, len);
	if (compress > MIR_COMP_LAST)
		compress = MIR_COMP_NONE;
	if (link_open(&c, &f, buf, len, chunk * FW_CHUNK_UNIT) != 0) {
		free(buf);
		return;
	}
	if (mode == FW_STREAM) {
		c.compress = compress;
		run_stream(&c, opts);
	} else if (mode == FW_HANDSHAKE_DEST) {
		/* TLS would hand the bytes to OpenSSL: not ours to fuzz. */
		struct mir_link_opts lo = { .compress = compress, .tls = false };
		uint8_t id[MIR_ID_SIZE];
		(void)mir_handshake_dest(&c, lookup, &opts, &lo, id);
	} else {
		struct mir_peer_cfg pc = { .key = fw_key,
		    .key_len = sizeof(fw_key), .compress = compress };
		struct mir_status_msg st;
		(void)mir_handshake_source(&c, &pc, &st);
	}
	link_close(&c, &f);
	free(buf);
}

static void run_first_frame(const uint8_t *p, size_t len)
{
	uint8_t id[MIR_ID_SIZE];
	size_t need = 0;
	int rc;

	/* As the listener peeks (a buffer of FW_FIRST_MAX), and with
	 * everything there is. */
	rc = mir_first_frame_id(p, FL_MIN(len, (size_t)FW_FIRST_MAX), &need,
	    id);
	CHECK(rc != -EAGAIN || (need > FL_MIN(len, (size_t)FW_FIRST_MAX) &&
	    need <= FW_FIRST_MAX));
	rc = mir_first_frame_id(p, len, &need, id);
	CHECK(rc != -EAGAIN || (need > len && need <= FW_FIRST_MAX));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fl_log_set_level(FL_LOG_ERR);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < FW_PREFIX || size > FW_MAX_LEN + FW_PREFIX)
		return 0;
	uint8_t mode = data[0] % FW_MODES, opts = data[1], sel = data[2];
	const uint8_t *p = data + FW_PREFIX;
	size_t len = size - FW_PREFIX;

	switch (mode) {
	case FW_STREAM:
	case FW_HANDSHAKE_DEST:
	case FW_HANDSHAKE_SOURCE:
		run_link(mode, opts, sel, p, len);
		break;
	case FW_FIRST_FRAME:
		run_first_frame(p, len);
		break;
	default:
		every_decoder(p, (uint32_t)len, sel);
		break;
	}
	return 0;
}
