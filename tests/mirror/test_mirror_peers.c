/*
 * tests/mirror/test_mirror_peers.c: bad peers.  A wrong key, an unknown
 * relationship, a corrupted frame, a truncated frame, a block whose
 * checksum does not match its parent pointer, the root of another file
 * system: each is refused and logged, the replica keeps its generation and
 * checks clean.  The same CP replayed intact is then adopted (the harness
 * itself is sound).
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
    const void *data)
{
	struct capture *c = arg;

	for (uint32_t i = 0; i < n && c->n < 256; i++) {
		c->gen = gen;
		c->vbn[c->n] = vbn + i;
		memcpy(c->data[c->n++], (const uint8_t *)data + i * 4096, 4096);
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

static void send_cp(struct mir_conn *c, const struct capture *cap,
    uint64_t base, int corrupt_block)
{
	send_begin_cp(c, base, cap->gen);
	for (uint32_t i = 0; i < cap->n; i++) {
		uint8_t blk[4096];
		memcpy(blk, cap->data[i], 4096);
		if ((int)i == corrupt_block)
			blk[100] ^= 0x01;
		struct mir_block b = { .gen = cap->gen, .vbn = cap->vbn[i],
		    .birth = cap->gen, .data = blk };
		mir_block_encode(mir_conn_payload(c), &b);
		assert_int_equal(mir_send_buf(c, MIR_MSG_BLOCK, 32 + 4096), 0);
	}
	struct mir_root r = { .gen = cap->gen, .fsinfo = cap->fsinfo };
	mir_root_encode(mir_conn_payload(c), &r);
	(void)mir_send_buf(c, MIR_MSG_ROOT, 8 + 4096);
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

	/* A relationship the destination does not know. */
	p->id[0] ^= 0xff;
	tm_source_start_opts(p, MIR_SYNC, p->port, 20, 0);
	unchanged(p, g, &rejects);
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

	/* A frame whose checksum is wrong. */
	raw_connect(p, &c, &st);
	assert_int_equal(st.gen, g);
	send_begin_cp(&c, g, g + 1);
	struct mir_block b = { .gen = g + 1, .vbn = cap->vbn[0],
	    .birth = g + 1, .data = cap->data[0] };
	mir_block_encode(mir_conn_payload(&c), &b);
	struct mir_hdr h = { .version = MIR_WIRE_VERSION,
	    .type = MIR_MSG_BLOCK, .length = 32 + 4096, .seq = c.seq_out };
	mir_hdr_encode(c.buf, &h);
	mir_frame_seal(c.buf, 32 + 4096);
	c.buf[MIR_HDR_SIZE + 40] ^= 0x10;
	assert_int_equal(send(c.fd, c.buf, MIR_HDR_SIZE + 32 + 4096,
	    MSG_NOSIGNAL), MIR_HDR_SIZE + 32 + 4096);
	expect_closed(&c);
	unchanged(p, g, &rejects);

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
	send_cp(&c, cap, g, (int)cap->n / 2);
	expect_closed(&c);
	unchanged(p, g, &rejects);
	assert_true(tl_log_count_with("checksum does not match", NULL) >= 1);

	/* A block missing from the batch. */
	raw_connect(p, &c, &st);
	struct capture *short_cap = malloc(sizeof(*short_cap));
	memcpy(short_cap, cap, sizeof(*cap));
	short_cap->n--;
	send_cp(&c, short_cap, g, -1);
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
	send_cp(&c, foreign, g, -1);
	expect_closed(&c);
	unchanged(p, g, &rejects);
	assert_true(tl_log_count_with("another file system", NULL) >= 1);
	free(foreign);
	tl_fs_destroy(other);

	/* Nothing changed: the replica checks clean at g. */
	tm_check_clean(mir_dest_volume(p->md), "replica after bad peers");

	/* The same CP, intact, is adopted. */
	raw_connect(p, &c, &st);
	send_cp(&c, cap, g, -1);
	assert_int_equal(mir_recv(&c, &h), 0);
	assert_int_equal(h.type, MIR_MSG_ACK);
	mir_conn_close(&c);
	assert_int_equal(wafl_generation(mir_dest_volume(p->md)), g + 1);
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
