/*
 * tests/mirror/test_mirror_peers.c: bad peers.  A wrong key, an unknown
 * relationship, a corrupted frame, a truncated frame, a block whose
 * checksum does not match its parent pointer, the root of another file
 * system, a DELTA against a block the link's window does not keep, with
 * ranges out of order or past the block, or rebuilding a block that does
 * not match its checksum, or a CP consistent from its root down whose
 * root block lies on a VBN the served root uses: each is refused and
 * logged, the replica keeps its generation and checks clean.  The same
 * CP replayed intact, each block after the first as a DELTA against the
 * one before, is then adopted (the harness and the window are sound).
 */
#include <sys/socket.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "mirror/wire.h"
#include "tests/mirror/tm.h"

struct capture {
	uint64_t gen;
	uint64_t vbn[256];
	uint8_t data[256][4096];
	uint32_t n;
	uint8_t fsinfo[4096];
	bool have_root;
};

static void cap_blocks(void *arg, uint64_t gen, uint64_t vbn, uint32_t n,
    const uint8_t *const *blocks,
    const struct wafl_cp_blkinfo *info)
{
	struct capture *c = arg;

	for (uint32_t i = 0; i < n && c->n < 256; i++) {
		c->gen = gen;
		c->vbn[c->n] = vbn + i;
		memcpy(c->data[c->n++], blocks[i], 4096);
	}
}

static void cap_root(void *arg, uint64_t gen, const void *fsinfo)
{
	struct capture *c = arg;

	memcpy(c->fsinfo, fsinfo, 4096);
	c->have_root = true;
}

/* An authenticated raw connection to the destination. */
static void raw_connect(struct tm_pair *p, struct mir_conn *c,
    struct mir_status_msg *st)
{
	struct mir_peer_cfg pc = { .key = p->key, .key_len = 32 };
	int fd = mir_tcp_connect("127.0.0.1", p->port, 2000);

	assert_true(fd >= 0);
	assert_int_equal(mir_conn_init(c, fd, 3000, NULL), 0);
	memcpy(pc.id, p->id, 16);
	assert_int_equal(mir_handshake_source(c, &pc, st), 0);
}

/* The destination closed the connection (after refusing). */
static void expect_closed(struct mir_conn *c)
{
	struct mir_hdr h;
	int rc;

	do {
		rc = mir_recv(c, &h);	/* an ERROR frame may come first */
	} while (rc == 0);
	assert_true(rc == -ECONNRESET || rc == -EPIPE);
	mir_conn_close(c);
}

static void send_begin_cp(struct mir_conn *c, uint64_t base, uint64_t tgt)
{
	struct mir_begin b = { .kind = MIR_XFER_CP, .base = base,
	    .target = tgt };

	mir_begin_encode(mir_conn_payload(c), &b);
	assert_int_equal(mir_send_buf(c, MIR_MSG_BEGIN, 32 + 4096), 0);
}

/* DELTA{vbn, base} with the given ranges (raw: nothing checked here). */
static void send_delta(struct mir_conn *c, uint64_t gen, uint64_t vbn,
    uint64_t base, const uint8_t *ranges, uint32_t len)
{
	struct mir_delta d = { .gen = gen, .vbn = vbn, .birth = gen,
	    .base = base };

	mir_delta_encode_head(mir_conn_payload(c), &d);
	memcpy(mir_conn_payload(c) + MIR_DELTA_HDR, ranges, len);
	assert_int_equal(mir_send_buf(c, MIR_MSG_DELTA, MIR_DELTA_HDR + len),
	    0);
}

/* The captured CP; block corrupt_block altered (-1: none).  chained: the
 * first block is kept by the window and every later one is a DELTA
 * against the one before it. */
static void send_cp_as(struct mir_conn *c, const struct capture *cap,
    uint64_t base, int corrupt_block, bool chained)
{
	send_begin_cp(c, base, cap->gen);
	for (uint32_t i = 0; i < cap->n; i++) {
		uint8_t blk[4096];
		memcpy(blk, cap->data[i], 4096);
		if ((int)i == corrupt_block)
			blk[100] ^= 0x01;
		uint8_t r[4096];
		uint32_t n = chained && i > 0 ? mir_patch_encode(r,
		    MIR_BLOCK - 1, cap->data[i - 1], blk) : UINT32_MAX;
		if (n != UINT32_MAX) {
			send_delta(c, cap->gen, cap->vbn[i], cap->vbn[i - 1], r,
			    n);
			continue;
		}
		struct mir_block b = { .gen = cap->gen, .vbn = cap->vbn[i],
		    .birth = cap->gen, .hint = chained ? MIR_HINT_KEEP : 0,
		    .data = blk };
		mir_block_encode(mir_conn_payload(c), &b);
		assert_int_equal(mir_send_buf(c, MIR_MSG_BLOCK, 32 + 4096), 0);
	}
	struct mir_root r = { .gen = cap->gen, .fsinfo = cap->fsinfo };
	mir_root_encode(mir_conn_payload(c), &r);
	(void)mir_send_buf(c, MIR_MSG_ROOT, 8 + 4096);
}

/* A block of the tree at gen born at or before `before`: one that root
 * shares with the roots before it. */
struct shared_find {
	uint64_t before, vbn;
};

static int find_shared(void *arg, uint64_t vbn, uint64_t birth,
    uint32_t cksum, const void *data, unsigned flags)
{
	struct shared_find *sf = arg;

	(void)cksum;
	(void)data;
	(void)flags;
	if (birth <= sf->before && sf->vbn == 0)
		sf->vbn = vbn;
	return 0;
}

static void unchanged(struct tm_pair *p, uint64_t gen, uint64_t *rejects)
{
	struct mir_dest_stats ds;

	for (int i = 0; i < 100; i++) {
		mir_dest_stats(p->md, &ds);
		if (ds.rejects > *rejects)
			break;
		usleep(10000);
	}
	assert_true(ds.rejects > *rejects);
	*rejects = ds.rejects;
	assert_int_equal(ds.gen, gen);
	assert_int_equal(wafl_generation(mir_dest_volume(p->md)), gen);
}

static void test_bad_peers(void **state)
{
	struct tm_pair *p = tm_pair_new();
	uint8_t buf[12288];

	struct wafl_obj f = tm_file(p->src->v, "data");
	tl_fill_pattern(buf, sizeof(buf), 3);
	tm_write(p->src->v, &f, 0, buf, sizeof(buf));
	assert_int_equal(wafl_sync(p->src->v), 0);
	tm_dest_start(p);
	tm_source_start(p);
	assert_int_equal(mir_source_wait(p->ms, 0, 20000), 0);
	mir_source_stop(p->ms);
	p->ms = NULL;
	uint64_t g = wafl_generation(mir_dest_volume(p->md));
	uint64_t rejects = 0;
	tl_log_capture_start(FL_LOG_WARN);

	/* Wrong key: the source cannot answer the challenge. */
	uint8_t good[32];
	memcpy(good, p->key, 32);
	p->key[5] ^= 0x40;
	tm_source_start_opts(p, MIR_SYNC, p->port, 20, 0);
	unchanged(p, g, &rejects);
	mir_source_stop(p->ms);
	p->ms = NULL;
	memcpy(p->key, good, 32);
	struct mir_dest_stats ds;
	mir_dest_stats(p->md, &ds);
	assert_true(ds.auth_failures >= 1);
	assert_true(tl_log_count_with("authentication failed", NULL) >= 1);

	/* A relationship the destination does not know.  A wrong-key
	 * connection the stopped source had in flight may still be refused
	 * now and count as a reject: wait for this refusal itself. */
	p->id[0] ^= 0xff;
	tm_source_start_opts(p, MIR_SYNC, p->port, 20, 0);
	unchanged(p, g, &rejects);
	for (int i = 0; i < 200 &&
	    tl_log_count_with("unknown relationship", NULL) < 1; i++)
		usleep(10000);
	mir_source_stop(p->ms);
	p->ms = NULL;
	p->id[0] ^= 0xff;
	assert_true(tl_log_count_with("unknown relationship", NULL) >= 1);

	/* A CP to replay: captured from the source's observer. */
	struct capture *cap = calloc(1, sizeof(*cap));
	struct wafl_cp_observer obs = { .arg = cap, .blocks = cap_blocks,
	    .root = cap_root };
	wafl_set_observer(p->src->v, &obs);
	tl_fill_pattern(buf, sizeof(buf), 4);
	tm_write(p->src->v, &f, 0, buf, sizeof(buf));
	assert_int_equal(wafl_sync(p->src->v), 0);
	wafl_set_observer(p->src->v, NULL);
	assert_true(cap->have_root);
	assert_int_equal(cap->gen, g + 1);

	struct mir_conn c;
	struct mir_status_msg st;

	/* A frame whose checksum is wrong: one bit flipped in the block
	 * head, the first data byte or the last.  The frame's check finds
	 * each (before the block's parent pointer could). */
	struct mir_block b = { .gen = g + 1, .vbn = cap->vbn[0],
	    .birth = g + 1, .data = cap->data[0] };
	struct mir_hdr h = { .version = MIR_WIRE_VERSION,
	    .type = MIR_MSG_BLOCK, .length = 32 + 4096 };
	const unsigned flip[] = { 4, 32, 32 + 4095 };
	for (unsigned i = 0; i < 3; i++) {
		size_t seen = tl_log_count_with("checksum mismatch", NULL);

		raw_connect(p, &c, &st);
		assert_int_equal(st.gen, g);
		send_begin_cp(&c, g, g + 1);
		mir_block_encode(mir_conn_payload(&c), &b);
		h.seq = c.seq_out;
		mir_hdr_encode(c.buf, &h);
		mir_frame_seal(c.buf, 32 + 4096);
		c.buf[MIR_HDR_SIZE + flip[i]] ^= 0x10;
		assert_int_equal(send(c.fd, c.buf, MIR_HDR_SIZE + 32 + 4096,
		    MSG_NOSIGNAL), MIR_HDR_SIZE + 32 + 4096);
		expect_closed(&c);
		unchanged(p, g, &rejects);
		assert_true(tl_log_count_with("checksum mismatch", NULL) >
		    seen);
	}

	/* A truncated frame, then the connection ends. */
	raw_connect(p, &c, &st);
	send_begin_cp(&c, g, g + 1);
	mir_block_encode(mir_conn_payload(&c), &b);
	h.seq = c.seq_out;
	mir_hdr_encode(c.buf, &h);
	mir_frame_seal(c.buf, 32 + 4096);
	assert_int_equal(send(c.fd, c.buf, MIR_HDR_SIZE + 1000, MSG_NOSIGNAL),
	    MIR_HDR_SIZE + 1000);
	mir_conn_close(&c);
	usleep(100000);
	assert_int_equal(wafl_generation(mir_dest_volume(p->md)), g);

	/* A header that lies about its length. */
	raw_connect(p, &c, &st);
	h.seq = c.seq_out;
	h.type = MIR_MSG_ACK;
	h.length = 4096;	/* ACK is 8 bytes */
	mir_hdr_encode(c.buf, &h);
	assert_int_equal(send(c.fd, c.buf, MIR_HDR_SIZE, MSG_NOSIGNAL),
	    MIR_HDR_SIZE);
	expect_closed(&c);
	unchanged(p, g, &rejects);

	/* A block whose data does not match its parent's checksum. */
	raw_connect(p, &c, &st);
	send_cp_as(&c, cap, g, (int)cap->n / 2, false);
	expect_closed(&c);
	unchanged(p, g, &rejects);
	assert_true(tl_log_count_with("checksum does not match", NULL) >= 1);

	/* A block missing from the batch. */
	raw_connect(p, &c, &st);
	struct capture *short_cap = malloc(sizeof(*short_cap));
	memcpy(short_cap, cap, sizeof(*cap));
	short_cap->n--;
	send_cp_as(&c, short_cap, g, -1, false);
	free(short_cap);
	expect_closed(&c);
	unchanged(p, g, &rejects);

	/* The root of another file system (same generation). */
	struct tl_fs *other = tl_fs_create(4, 1, 8192, false);
	struct wafl_obj of = tm_file(other->v, "x");
	for (int i = 0; wafl_generation(other->v) < g + 1 && i < 100; i++) {
		tm_write(other->v, &of, 0, buf, 4096);
		assert_int_equal(wafl_sync(other->v), 0);
	}
	assert_int_equal(wafl_generation(other->v), g + 1);
	struct capture *foreign = malloc(sizeof(*foreign));
	memcpy(foreign, cap, sizeof(*cap));
	assert_int_equal(wafl_root_of(other->v, g + 1, foreign->fsinfo), 0);
	raw_connect(p, &c, &st);
	send_cp_as(&c, foreign, g, -1, false);
	expect_closed(&c);
	unchanged(p, g, &rejects);
	assert_true(tl_log_count_with("another file system", NULL) >= 1);
	free(foreign);
	tl_fs_destroy(other);

	/* A DELTA against a block the window does not keep: the window
	 * is the connection's, so a BLOCK kept on an earlier one is gone. */
	raw_connect(p, &c, &st);
	send_begin_cp(&c, g, g + 1);
	struct mir_block kb = { .gen = g + 1, .vbn = cap->vbn[0],
	    .birth = g + 1, .hint = MIR_HINT_KEEP, .data = cap->data[0] };
	mir_block_encode(mir_conn_payload(&c), &kb);
	assert_int_equal(mir_send_buf(&c, MIR_MSG_BLOCK, 32 + 4096), 0);
	mir_conn_close(&c);
	usleep(50000);
	raw_connect(p, &c, &st);
	send_begin_cp(&c, g, g + 1);
	uint8_t rg[8] = { 0, 0, 4, 0, 1, 2, 3, 4 };	/* 4 bytes at 0 */
	send_delta(&c, g + 1, cap->vbn[1], cap->vbn[0], rg, sizeof(rg));
	expect_closed(&c);
	unchanged(p, g, &rejects);
	assert_true(tl_log_count_with("base not in the window", NULL) >= 1);

	/* Ranges out of order, and past the end of the block. */
	uint8_t bad[2][16] = {
		{ 8, 0, 4, 0, 1, 2, 3, 4, 0, 0, 4, 0, 1, 2, 3, 4 },
		{ 0xfe, 0x0f, 4, 0, 1, 2, 3, 4 },	/* 4094 + 4 */
	};
	uint32_t badlen[2] = { 16, 8 };
	for (int k = 0; k < 2; k++) {
		raw_connect(p, &c, &st);
		send_begin_cp(&c, g, g + 1);
		mir_block_encode(mir_conn_payload(&c), &kb);
		assert_int_equal(mir_send_buf(&c, MIR_MSG_BLOCK, 32 + 4096), 0);
		send_delta(&c, g + 1, cap->vbn[1], cap->vbn[0], bad[k],
		    badlen[k]);
		expect_closed(&c);
		unchanged(p, g, &rejects);
	}
	/* Both refused and counted (unchanged); the log says it once: the
	 * same reason twice within a minute is one line. */
	assert_int_equal(tl_log_count_with("malformed ranges", NULL), 1);
	struct mir_dest_stats dr;
	mir_dest_stats(p->md, &dr);
	assert_int_equal(dr.deltas_refused, 3);

	/* A DELTA that rebuilds a block its parent's checksum refuses:
	 * the first block whose altered form is a DELTA in a chained CP. */
	int k = -1;
	for (uint32_t i = 1; i < cap->n && k < 0; i++) {
		uint8_t blk[4096], r[4096];
		memcpy(blk, cap->data[i], 4096);
		blk[100] ^= 0x01;
		if (mir_patch_encode(r, MIR_BLOCK - 1, cap->data[i - 1], blk) !=
		    UINT32_MAX)
			k = (int)i;
	}
	assert_true(k > 0);
	raw_connect(p, &c, &st);
	send_cp_as(&c, cap, g, k, true);
	expect_closed(&c);
	unchanged(p, g, &rejects);

	/* A CP that verifies from its root down but whose root block lies
	 * on a VBN the served root g uses (a block g + 1 shares with g): a
	 * source that broke M1.  Refused as the block arrives, never
	 * written over. */
	struct shared_find sf = { .before = g };
	assert_int_equal(wafl_birth_walk(p->src->v, g + 1, 0, find_shared, &sf),
	    0);
	assert_true(sf.vbn >= 2);
	struct capture *moved = malloc(sizeof(*moved));
	memcpy(moved, cap, sizeof(*cap));
	struct wafl_fsinfo mf;
	assert_int_equal(wafl_fsinfo_decode(moved->fsinfo, &mf), 0);
	bool relocated = false;
	for (uint32_t i = 0; i < moved->n; i++) {
		if (moved->vbn[i] != mf.root.vbn)
			continue;
		moved->vbn[i] = sf.vbn;
		relocated = true;
	}
	assert_true(relocated);
	mf.root.vbn = sf.vbn;
	mf.ring[0].root.vbn = sf.vbn;
	wafl_fsinfo_encode(moved->fsinfo, &mf);
	raw_connect(p, &c, &st);
	send_cp_as(&c, moved, g, -1, false);
	expect_closed(&c);
	unchanged(p, g, &rejects);
	assert_true(tl_log_count_with("in use by the served root", NULL) >= 1);
	mir_dest_stats(p->md, &dr);
	assert_int_equal(dr.blocks_in_use_refused, 1);
	free(moved);

	/* Nothing changed: the replica checks clean at g. */
	tm_check_clean(mir_dest_volume(p->md), "replica after bad peers");

	/* The same CP, intact and chained through the window, is adopted. */
	struct mir_dest_stats ds0, ds1;
	mir_dest_stats(p->md, &ds0);
	raw_connect(p, &c, &st);
	send_cp_as(&c, cap, g, -1, true);
	assert_int_equal(mir_recv(&c, &h), 0);
	assert_int_equal(h.type, MIR_MSG_ACK);
	mir_conn_close(&c);
	assert_int_equal(wafl_generation(mir_dest_volume(p->md)), g + 1);
	mir_dest_stats(p->md, &ds1);
	assert_true(ds1.blocks_delta > ds0.blocks_delta);
	tm_tree_equal(p->src->v, mir_dest_volume(p->md));
	tm_check_clean(mir_dest_volume(p->md), "replica");
	tl_log_capture_stop();
	free(cap);
	tm_pair_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_peers),
	};
	return cmocka_run_group_tests_name("mirror peers", tests, NULL, NULL);
}
