/*
 * tests/mirror/fuzz_wire_seeds.c: the seed corpus of fuzz_wire (make
 * fuzz): fuzz_wire_seeds DIR writes one file per seed into DIR.
 *
 * Every frame is made by the code that sends it on a link: the payload
 * encoders of wire.h and mir_send*, on a connection whose bytes are
 * captured at the other end of a socket pair (a BLOCK sent through the
 * window becomes a DELTA exactly as a source makes it; a compressed BLOCK
 * is compressed as the link compresses it).  Nothing here writes a frame
 * by hand.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "mirror/wire.h"
#include "tests/mirror/fuzz_wire.h"
#include "wafl/ondisk.h"

static const char *dir;
static int failed;

static void die(const char *what)
{
	fprintf(stderr, "fuzz_wire_seeds: %s\n", what);
	exit(1);
}

static void put_seed(const char *name, uint8_t mode, uint8_t opts,
    uint8_t chunk, const uint8_t *p, size_t len)
{
	char path[512];
	uint8_t pre[FW_PREFIX] = { mode, opts, chunk };
	FILE *f;

	snprintf(path, sizeof(path), "%s/seed-%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(pre, 1, sizeof(pre), f) != sizeof(pre) ||
	    (len > 0 && fwrite(p, 1, len, f) != len) || fclose(f) != 0) {
		perror(path);
		failed = 1;
	}
}

/* A sending link whose bytes are captured. */
struct cap {
	int peer;
	struct mir_conn c;
};

static void cap_open(struct cap *k, uint8_t compress, bool window)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 ||
	    mir_conn_init(&k->c, sv[0], 1000, NULL) != 0)
		die("socket pair");
	k->peer = sv[1];
	k->c.compress = compress;
	if (window && mir_window_create(FW_WINDOW, &k->c.win) != 0)
		die("window");
}

/* Everything sent (the last frame not a BLOCK, so nothing is left
 * gathered) becomes seed name. */
static void cap_close(struct cap *k, const char *name, uint8_t mode,
    uint8_t opts, uint8_t chunk)
{
	uint8_t *buf = malloc(FW_MAX_LEN);
	size_t len = 0;

	if (buf == NULL)
		die("memory");
	for (;;) {
		ssize_t n = recv(k->peer, buf + len, FW_MAX_LEN - len,
		    MSG_DONTWAIT);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (len == FW_MAX_LEN)
		die("a seed longer than the fuzzer takes");
	put_seed(name, mode, opts, chunk, buf, len);
	mir_conn_close(&k->c);
	close(k->peer);
	free(buf);
}

static void send_or_die(struct mir_conn *c, uint16_t type, const void *p,
    uint32_t len)
{
	if (mir_send(c, type, p, len) != 0)
		die(mir_msg_name(type));
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)("filer mirror fuzz seed "[(i + seed) % 23]);
}

static const uint8_t id[MIR_ID_SIZE] = { 0x10, 0x11, 0x12, 0x13 };

/* The payloads, each as its encoder writes it. */
static uint8_t hello_p[32], resp_p[64], status_p[MIR_STATUS_SIZE];
static uint8_t begin_walk_p[32 + MIR_BLOCK], begin_cp_p[32 + MIR_BLOCK];
static uint8_t root_p[8 + MIR_BLOCK], u64_p[8], err_p[8 + MIR_ERRTEXT_MAX];
static uint8_t rs_hello_p[64], rs_proof_p[64], rs_open_p[32];
static uint8_t rs_roots_p[8 + 40 * 3], rs_begin_p[MIR_RS_BEGIN_SIZE];
static uint8_t rs_tree_snap_p[MIR_RS_TREE_SIZE];
static uint8_t rs_tree_last_p[MIR_RS_TREE_SIZE], rs_done_p[16];
static uint8_t block_p[32 + MIR_BLOCK], heartbeat_p[MIR_HEARTBEAT_SIZE];
static uint32_t err_len, rs_roots_len;

static void payloads(void)
{
	struct mir_hello h = { .vmin = MIR_WIRE_VERSION,
	    .vmax = MIR_WIRE_VERSION, .side = MIR_SIDE_SOURCE };
	memcpy(h.id, id, sizeof(id));
	mir_hello_encode(hello_p, &h);

	struct mir_response r;
	memset(r.mac, 0x4d, sizeof(r.mac));
	memset(r.nonce, 0x4e, sizeof(r.nonce));
	mir_response_encode(resp_p, &r);

	struct mir_status_msg st = { .has_fs = true, .gen = 4, .nvbns = 8192,
	    .fs_uuid = { 1, 2, 3 } };
	mir_status_encode(status_p, &st);

	struct wafl_fsinfo fsi = { .gen = 5, .fs_uuid = { 1, 2, 3 },
	    .nvbns = 8192, .root = { 300, 5, 0xabc, 0 }, .ring_len = 1,
	    .ring = { { 5, { 300, 5, 0xabc, 0 } } } };
	struct mir_begin *b = calloc(1, sizeof(*b));
	if (b == NULL)
		die("memory");
	b->kind = MIR_XFER_WALK;
	b->target = 5;
	wafl_fsinfo_encode(b->fsinfo, &fsi);
	mir_begin_encode(begin_walk_p, b);
	b->kind = MIR_XFER_CP;
	b->base = 4;
	mir_begin_encode(begin_cp_p, b);
	struct mir_root rt = { .gen = 5, .fsinfo = b->fsinfo };
	mir_root_encode(root_p, &rt);
	free(b);

	uint8_t data[MIR_BLOCK];
	fill(data, sizeof(data), 0);
	struct mir_block blk = { .gen = 5, .vbn = 10, .birth = 5,
	    .hint = MIR_HINT_KEEP, .data = data };
	mir_block_encode(block_p, &blk);

	mir_u64_encode(u64_p, 5);
	mir_heartbeat_encode(heartbeat_p, mir_heartbeat_ms(10000));
	err_len = mir_error_encode(err_p, 28, "no room on the destination");

	/* resync: T's greeting and proofs, W's roots, T's trees */
	memcpy(rs_hello_p, id, sizeof(id));
	memset(rs_hello_p + MIR_ID_SIZE, 0x5a, MIR_NONCE_SIZE);
	memset(rs_proof_p, 0x6d, MIR_MAC_SIZE);
	memcpy(rs_open_p, id, sizeof(id));
	struct mir_rs_root roots[3] = {
		{ 3, { 250, 3, 0x333, 0 } },
		{ 10, { 100, 10, 0x1234, 0 } },
		{ 12, { 120, 12, 0x1212, 0 } },
	};
	rs_roots_len = mir_rs_roots_encode(rs_roots_p, 200, roots, 3);
	struct mir_rs_begin rb = { .base_gen = 10,
	    .base_root = { 100, 10, 0x1234, 0 }, .gen = 20,
	    .root = { 200, 20, 0x5678, 0 }, .trees = 2,
	    .throttle = MIR_THROTTLE_MIN };
	mir_rs_begin_encode(rs_begin_p, &rb);
	struct mir_rs_tree t = { .index = 0, .gen = 15,
	    .root = { 150, 15, 0x1515, 0 }, .name = "hourly.0" };
	mir_rs_tree_encode(rs_tree_snap_p, &t);
	t = (struct mir_rs_tree){ .index = 1, .gen = 20, .root = rb.root };
	mir_rs_tree_encode(rs_tree_last_p, &t);
	mir_rs_done_encode(rs_done_p, 21, 2);
}

/* Block i of a transfer: the same text with a few bytes of its own. */
static void block_data(uint8_t *p, unsigned i)
{
	fill(p, MIR_BLOCK, 1);
	memcpy(p + 64 * i, "changed", 7);
	p[3000 + i] = (uint8_t)i;
}

/* What a destination reads: the handshake's frames, a walk with BLOCKs
 * and DELTAs through the window (which fills, and evicts), its ROOT, a
 * HEARTBEAT, a CP's BEGIN, an ABORT, an ERROR. */
static void dest_stream(const char *name, uint8_t compress, uint8_t opts,
    uint8_t chunk)
{
	/* {vbn, the block it is a new version of, keep} */
	static const struct { uint64_t vbn, prev; bool keep; } blocks[] = {
		{ 10, 0, true }, { 11, 0, false }, { 13, 0, true },
		{ 14, 0, true }, { 12, 10, true }, { 15, 0, true },
		{ 16, 0, true }, { 17, 14, true }, { 18, 13, false },
	};
	uint8_t data[MIR_BLOCK];
	struct cap k;

	cap_open(&k, compress, true);
	send_or_die(&k.c, MIR_MSG_HELLO, hello_p, sizeof(hello_p));
	send_or_die(&k.c, MIR_MSG_RESPONSE, resp_p, sizeof(resp_p));
	send_or_die(&k.c, MIR_MSG_BEGIN, begin_walk_p, sizeof(begin_walk_p));
	for (unsigned i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
		block_data(data, i);
		if (mir_send_block_win(&k.c, 5, blocks[i].vbn, 5,
		    fl_crc32c(0, data, MIR_BLOCK), data, blocks[i].prev,
		    blocks[i].keep) != 0)
			die("blocks");
	}
	if (k.c.blocks_delta != 2)
		die("deltas");	/* 13 was evicted by 16: 18 goes whole */
	send_or_die(&k.c, MIR_MSG_ROOT, root_p, sizeof(root_p));
	send_or_die(&k.c, MIR_MSG_HEARTBEAT, heartbeat_p,
	    sizeof(heartbeat_p));
	send_or_die(&k.c, MIR_MSG_BEGIN, begin_cp_p, sizeof(begin_cp_p));
	send_or_die(&k.c, MIR_MSG_ABORT, u64_p, sizeof(u64_p));
	send_or_die(&k.c, MIR_MSG_ERROR, err_p, err_len);
	cap_close(&k, name, FW_STREAM, compress | opts, chunk);
}

int main(int argc, char **argv)
{
	struct cap k;

	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_wire_seeds DIR\n");
		return 2;
	}
	dir = argv[1];
	payloads();

	dest_stream("dest", MIR_COMP_NONE, 0, 0);
	dest_stream("dest-raw", MIR_COMP_NONE, FW_OPT_RAW, 0);
	dest_stream("dest-lz4", MIR_COMP_LZ4, 0, 0);
	dest_stream("dest-zstd", MIR_COMP_ZSTD, 0, 0);
	dest_stream("dest-chunk19", MIR_COMP_NONE, 0, 1);
	dest_stream("dest-chunk4161", MIR_COMP_NONE, 0, 219);
	dest_stream("dest-lz4-chunk95", MIR_COMP_LZ4, 0, 5);

	/* a source: STATUS, acknowledgements, a refusal */
	cap_open(&k, MIR_COMP_NONE, false);
	send_or_die(&k.c, MIR_MSG_STATUS, status_p, sizeof(status_p));
	send_or_die(&k.c, MIR_MSG_ACK, u64_p, sizeof(u64_p));
	send_or_die(&k.c, MIR_MSG_ERROR, err_p, err_len);
	cap_close(&k, "source", FW_STREAM, FW_OPT_NO_WINDOW, 0);

	/* resync, W's side: T's greeting, proof, trees and blocks */
	uint8_t data[MIR_BLOCK], end[8];
	fill(data, sizeof(data), 2);
	cap_open(&k, MIR_COMP_NONE, false);
	send_or_die(&k.c, MIR_MSG_RS_HELLO, rs_hello_p, sizeof(rs_hello_p));
	send_or_die(&k.c, MIR_MSG_RS_PROOF, rs_proof_p, sizeof(rs_proof_p));
	send_or_die(&k.c, MIR_MSG_RS_BEGIN, rs_begin_p, sizeof(rs_begin_p));
	send_or_die(&k.c, MIR_MSG_RS_TREE, rs_tree_snap_p,
	    sizeof(rs_tree_snap_p));
	const uint32_t crc = fl_crc32c(0, data, MIR_BLOCK);
	if (mir_send_block(&k.c, 15, 151, 15, crc, data) != 0)
		die("block");
	send_or_die(&k.c, MIR_MSG_RS_TREE, rs_tree_last_p,
	    sizeof(rs_tree_last_p));
	if (mir_send_block(&k.c, 20, 201, 18, crc, data) != 0)
		die("block");
	mir_u64_encode(end, 2);
	send_or_die(&k.c, MIR_MSG_RS_END, end, sizeof(end));
	cap_close(&k, "resync-w", FW_STREAM, FW_OPT_NO_WINDOW, 0);

	/* resync, T's side: W's greeting, proof, roots, reply */
	cap_open(&k, MIR_COMP_NONE, false);
	send_or_die(&k.c, MIR_MSG_RS_OPEN, rs_open_p, sizeof(rs_open_p));
	send_or_die(&k.c, MIR_MSG_RS_PROOF, rs_proof_p, sizeof(rs_proof_p));
	send_or_die(&k.c, MIR_MSG_RS_ROOTS, rs_roots_p, rs_roots_len);
	send_or_die(&k.c, MIR_MSG_RS_DONE, rs_done_p, sizeof(rs_done_p));
	cap_close(&k, "resync-t", FW_STREAM, FW_OPT_NO_WINDOW, 0);

	/* the handshakes (the MACs are wrong: the nonces are random) */
	cap_open(&k, MIR_COMP_NONE, false);
	send_or_die(&k.c, MIR_MSG_HELLO, hello_p, sizeof(hello_p));
	send_or_die(&k.c, MIR_MSG_RESPONSE, resp_p, sizeof(resp_p));
	cap_close(&k, "handshake-dest", FW_HANDSHAKE_DEST, 0, 0);
	cap_open(&k, MIR_COMP_NONE, false);
	send_or_die(&k.c, MIR_MSG_CHALLENGE, rs_proof_p, MIR_NONCE_SIZE);
	send_or_die(&k.c, MIR_MSG_PROOF, rs_proof_p, MIR_MAC_SIZE);
	send_or_die(&k.c, MIR_MSG_STATUS, status_p, sizeof(status_p));
	cap_close(&k, "handshake-source", FW_HANDSHAKE_SOURCE, 0, 0);
	cap_open(&k, MIR_COMP_NONE, false);
	send_or_die(&k.c, MIR_MSG_ERROR, err_p, err_len);
	cap_close(&k, "handshake-source-refused", FW_HANDSHAKE_SOURCE, 0, 0);

	/* first frames, as the listener sees them */
	cap_open(&k, MIR_COMP_NONE, false);
	send_or_die(&k.c, MIR_MSG_HELLO, hello_p, sizeof(hello_p));
	cap_close(&k, "first-hello", FW_FIRST_FRAME, 0, 0);
	cap_open(&k, MIR_COMP_NONE, false);
	send_or_die(&k.c, MIR_MSG_RS_HELLO, rs_hello_p, sizeof(rs_hello_p));
	cap_close(&k, "first-rs-hello", FW_FIRST_FRAME, 0, 0);
	cap_open(&k, MIR_COMP_NONE, false);
	send_or_die(&k.c, MIR_MSG_RS_OPEN, rs_open_p, sizeof(rs_open_p));
	cap_close(&k, "first-rs-open", FW_FIRST_FRAME, 0, 0);

	/* payloads alone */
	put_seed("p-hello", FW_PAYLOAD, 0, 0, hello_p, sizeof(hello_p));
	put_seed("p-response", FW_PAYLOAD, 0, 0, resp_p, sizeof(resp_p));
	put_seed("p-status", FW_PAYLOAD, 0, 0, status_p, sizeof(status_p));
	put_seed("p-begin-walk", FW_PAYLOAD, 0, 0, begin_walk_p,
	    sizeof(begin_walk_p));
	put_seed("p-begin-cp", FW_PAYLOAD, 0, 0, begin_cp_p,
	    sizeof(begin_cp_p));
	put_seed("p-block", FW_PAYLOAD, 0, 0, block_p, sizeof(block_p));
	put_seed("p-root", FW_PAYLOAD, 0, 0, root_p, sizeof(root_p));
	put_seed("p-u64", FW_PAYLOAD, 0, 0, u64_p, sizeof(u64_p));
	put_seed("p-error", FW_PAYLOAD, 0, 0, err_p, err_len);
	put_seed("p-heartbeat", FW_PAYLOAD, 0, 0, heartbeat_p,
	    sizeof(heartbeat_p));
	put_seed("p-rs-roots", FW_PAYLOAD, 0, 0, rs_roots_p, rs_roots_len);
	put_seed("p-rs-begin", FW_PAYLOAD, 0, 0, rs_begin_p,
	    sizeof(rs_begin_p));
	put_seed("p-rs-tree", FW_PAYLOAD, 0, 0, rs_tree_snap_p,
	    sizeof(rs_tree_snap_p));
	/* the last tree of fw_rs_default's four, after the third */
	uint8_t last[MIR_RS_TREE_SIZE];
	struct mir_rs_tree t = { .index = 3, .gen = fw_rs_default.gen,
	    .root = fw_rs_default.root };
	if (fw_rs_prev(3).index != 2)
		die("fw_rs_prev");
	mir_rs_tree_encode(last, &t);
	put_seed("p-rs-tree-last", FW_PAYLOAD, 0, 3, last, sizeof(last));
	put_seed("p-rs-done", FW_PAYLOAD, 0, 0, rs_done_p, sizeof(rs_done_p));
	/* a DELTA: its head and the ranges mir_patch_encode makes */
	uint8_t base[MIR_BLOCK], next[MIR_BLOCK], delta[MIR_DELTA_HDR +
	    MIR_BLOCK];
	memset(base, 0xa5, sizeof(base));
	memcpy(next, base, sizeof(next));
	memcpy(next + 8, "range one", 9);
	memcpy(next + 4000, "two", 3);
	struct mir_delta d = { .gen = 5, .vbn = 12, .birth = 5, .base = 10 };
	mir_delta_encode_head(delta, &d);
	uint32_t n = mir_patch_encode(delta + MIR_DELTA_HDR, MIR_BLOCK - 1,
	    base, next);
	if (n == UINT32_MAX)
		die("patch");
	put_seed("p-delta", FW_PAYLOAD, 0, 0, delta, MIR_DELTA_HDR + n);
	return failed;
}
