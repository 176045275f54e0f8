/*
 * mirror/resync.c: resync after a break, in either direction.
 *
 * THEORY
 *   After a break both sides may have written: the broken-off side (once
 *   the destination) and the side that kept running.  Resync makes one
 *   side T (the one overwritten) a destination of the other, W (the
 *   winner), without re-copying what they share and without comparing
 *   data:
 *
 *   1. common base.  W lists the roots it retains exactly (ring, holds,
 *      snapshots: generation and root pointer); T picks the newest one it
 *      retains too, G.  Equal root pointers (vbn, birth, checksum) name
 *      the same tree: the Merkle property.  A break keeps the last root
 *      as snapshot mirror.base.<gen> and the source keeps its hold on the
 *      acknowledged root (M6), so G exists after any break.
 *   2. capture.  T (no longer taking writes) sends its trees oldest
 *      first: every snapshot it made after G, then its newest root t.
 *      Each is an RS_TREE followed by its blocks born after G
 *      (mir_tree_walk from T's disks); a block an earlier tree of the
 *      session sent is skipped with its subtree: on T a VBN names one
 *      block in every retained tree (W3), so a shared block crosses once.
 *   3. import.  W makes them snapshots resync.<t> (the active tree) and
 *      resync.<t>.<name> (T's snapshot <name>) in one CP by relocating
 *      them to VBNs of its own (wafl_import_snapshots: T's VBNs may be
 *      used by W's own blocks since G; a block several trees hold moves
 *      once, each imported tree has a bitmap of its own naming it),
 *      durable before it answers.
 *   4. roll back.  T records that RS_DONE came (done_path: G and its
 *      root, flushed), rewrites its fsinfo to root G exactly, as a
 *      replica (wafl_rollback_replica: crash-safe, M2 kept), forgets
 *      its NVLOG and removes the record.  A crash in between leaves the
 *      record, from which the roll back is finished at the next start
 *      (mir_resync_done_rollback); the roll back's own fsinfo says it
 *      happened (mir_resync_rolled_back).  Started as a destination it
 *      serves G; W's source catches up from G by birth generation,
 *      snapshots included, so T ends with W's tree, the imported
 *      snapshots holding T's divergent data.
 *
 *   M7  Resync overwrites T only after W has made all of T's divergent
 *       trees durable as snapshots (RS_DONE, after the CP that holds the
 *       last), and T's new root is G exactly, a root both sides retained
 *       throughout; nothing is read on one side to be compared with the
 *       other.
 *
 *   Bytes: T's divergence goes to W and comes back inside the snapshots,
 *   W's divergence goes to T: the order of the divergence, not of the
 *   volume.
 *
 *   Throttle: the relationship's rate limits the bulk, T -> W, from the
 *   side that has it (filerd: the source's): T paces what it writes, or
 *   W what it reads (mir_conn_throttle_recv), and T, its socket full,
 *   goes at W's pace; its waits count their timeout from the last byte
 *   W took, not from their start (wire.c).  T also hands the rate to W
 *   in RS_BEGIN (rel_throttle_bps, bounded there like every field), so
 *   that the relationship keeps it when W's side becomes the source
 *   (filerd's --reverse: the rate lives in the source's row alone).
 *
 * NAMES
 *   <p> for the active tree, <p>.<name> for T's snapshot <name>, <p> =
 *   snap_name or resync.<t>; a name past 63 bytes keeps the start of
 *   <name> and ends in ~ and the crc32c of <name> (8 hex digits).  If a
 *   name of the set is in use on W (a resync repeated after an import
 *   that became durable), the whole set takes <p> = resync.<t>.<k>,
 *   k = 2..9; then W refuses (EEXIST).  All checked before any change.
 *
 * LOST REPLY
 *   The import is durable before RS_DONE goes out; if that send fails,
 *   or T is gone by then (closed or reset: a crash, or its wait for the
 *   reply ran out while we imported; the socket would still take the
 *   frame), T did not hear of it, keeps its data and may retry.  W then
 *   keeps G: a hold of the session would end with it, so G becomes
 *   snapshot mirror.base.<G> unless a snapshot keeps it already (if even
 *   that fails, the hold stays), and says so in its log.  Each imported
 *   snapshot's entry keeps an origin tag, a MAC under the relationship's
 *   key of (relationship, G, t, the tree's generation, root pointer and
 *   name on T), written in the import's own CP.  A retry that sends the
 *   same trees finds every one of them among W's snapshots by its tag,
 *   all of one import, and is answered with that import: nothing is
 *   imported twice, whether or not W's serve or filerd restarted in
 *   between.  If an admin deleted some of those snapshots meanwhile, the
 *   whole set is imported again under the next suffix.
 *
 * WIRE (T connects to W; docs/mirror.md has the table)
 *   T->W RS_HELLO{id, nonce_t}  W->T RS_PROOF{mac_w, nonce_w}
 *   T->W RS_PROOF{mac_t, 0}     W->T RS_ROOTS{free slots, (gen, bp)...}
 *   T->W RS_BEGIN{G, G bp, t, t bp, trees, throttle},
 *        (RS_TREE{index, name length, gen, root bp, name}, BLOCK...)
 *        x trees, RS_END{count}
 *   W->T RS_DONE{snapshot gen, blocks imported}
 *   mac_w = HMAC-SHA256(key, "filer-resync W" || id || nonce_t)
 *   mac_t = HMAC-SHA256(key, "filer-resync T" || id || nonce_w || nonce_t)
 *   T refuses itself when its trees outnumber the free slots RS_ROOTS
 *   gives.  W checks every field on receipt: trees 1..255 and room for
 *   them in its snapshot table (before a block is taken); a throttle of
 *   0 or MIR_THROTTLE_MIN..MIR_THROTTLE_MAX; trees in order,
 *   no more than announced, names 1..63 bytes, none below 0x20 nor '/' (the
 *   active tree, the last, has none and is t's root), generations in
 *   (G, t] oldest first, roots born at their generation; each BLOCK's
 *   birth in (G, its tree's generation], a VBN once; RS_END after the
 *   last tree with the count received; and the import refuses blocks
 *   that do not check against their parents or that no root reaches,
 *   and pointers born at or before G to blocks G's tree does not use
 *   (T rolled back to an older snapshot: W may have reused them).
 *   A refusal is an ERROR that says what, and changes nothing.
 *
 * LIMITS
 *   The divergent blocks of all trees are spooled to an unlinked file on
 *   W (spool_dir; max_import_bytes, 1 GiB by default, of data for the
 *   session).  At most 254 of T's snapshots travel (more: T refuses
 *   before anything changes), and W must have room for all of them in
 *   its snapshot table.  A snapshot of T's whose root is not of its own
 *   generation is refused by T, naming it.  The imported trees' own
 *   snapshot tables are emptied (their snapshots are G's, which T keeps
 *   as W's, or trees carried).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/assert.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "mirror/mir_impl.h"
#include "mirror/mirror.h"
#include "mirror/wire.h"

_Static_assert(MIR_REL_ID_SIZE == MIR_ID_SIZE, "rel_id is the wire's id");

static const char tag_w[] = "filer-resync W";
static const char tag_t[] = "filer-resync T";

static void rs_error(struct mir_resync_result *r, const char *what, int rc)
{
	if (r->error[0] == '\0')
		snprintf(r->error, sizeof(r->error), "%s: %s", what,
		    fl_strerror(rc));
	fl_err("mirror", "resync: %s: %s", what, fl_strerror(rc));
}

/* ------------------------------------------------------ W: the winner */

/*
 * T's blocks on W until the import: an unlinked spool file (in
 * spool_dir, or the system's temporary directory), an index of
 * {vbn, birth, offset} in memory (24 bytes a block), at most
 * max_import_bytes of data.
 */
struct rs_blk {
	uint64_t vbn, birth, off;
};

struct rs_store {
	struct rs_blk *v;
	uint64_t n, cap, bytes, max;
	int fd;
};

static int cmp_blk(const void *a, const void *b)
{
	const struct rs_blk *x = a, *y = b;

	return x->vbn < y->vbn ? -1 : x->vbn > y->vbn;
}

static int store_open(struct rs_store *s, const char *dir)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/filer-resync.XXXXXX",
	    dir != NULL ? dir : "/tmp");
	s->fd = mkstemp(path);
	if (s->fd < 0)
		return -errno;
	(void)unlink(path);
	return 0;
}

static int store_put(struct rs_store *s, uint64_t vbn, uint64_t birth,
    const uint8_t *data)
{
	if (s->n == s->cap) {
		uint64_t cap = s->cap ? s->cap * 2 : 1024;
		struct rs_blk *nv = realloc(s->v, cap * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	uint64_t off = s->n * WAFL_BLOCK_SIZE;
	for (size_t done = 0; done < WAFL_BLOCK_SIZE;) {
		ssize_t w = pwrite(s->fd, data + done, WAFL_BLOCK_SIZE - done,
		    (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		done += (size_t)w;
	}
	s->v[s->n++] = (struct rs_blk){ vbn, birth, off };
	s->bytes += WAFL_BLOCK_SIZE;
	return 0;
}

static int store_get(void *arg, uint64_t vbn, uint64_t birth, uint8_t *buf)
{
	struct rs_store *s = arg;
	struct rs_blk key = { .vbn = vbn };
	struct rs_blk *b = s->n == 0 ? NULL :
	    bsearch(&key, s->v, s->n, sizeof(*s->v), cmp_blk);

	if (b == NULL || b->birth != birth)
		return FL_ERR(-FL_ECORRUPT);	/* T did not send it */
	for (size_t done = 0; done < WAFL_BLOCK_SIZE;) {
		ssize_t r = pread(s->fd, buf + done, WAFL_BLOCK_SIZE - done,
		    (off_t)(b->off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		done += (size_t)r;
	}
	return 0;	/* the import checks it against its parent (W1) */
}

static void store_free(struct rs_store *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->v);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

/*
 * One of T's trees as RS_TREE announces it: its generation, root, T's
 * name for it (empty: the active tree, always the last) and the name of
 * the snapshot it becomes here.
 */
struct rs_tree {
	uint64_t gen;
	struct wafl_bp root;
	char tname[MIR_RS_NAME_SIZE];
	char name[WAFL_SNAP_NAME_MAX + 1];
	uint64_t origin;		/* W: its tag (rs_origin), once all
					   trees are in */
};

/* res->snap_names: the active tree's snapshot first (the last tree),
 * then T's snapshots oldest first. */
static void rs_list_names(const struct rs_tree *trees, uint32_t n,
    struct mir_resync_result *res)
{
	char *out = res->snap_names;
	size_t cap = sizeof(res->snap_names), len = 0;

	out[0] = '\0';
	for (uint32_t k = 0; k < n; k++) {
		const char *nm = trees[k == 0 ? n - 1 : k - 1].name;
		size_t need = strlen(nm) + (k > 0 ? 2 : 0);
		/* room for this one and, if more follow, ", ..." */
		if (len + need + (k + 1 < n ? 5 : 0) >= cap) {
			snprintf(out + len, cap - len, "%s", k > 0 ? ", ..." :
			    "...");
			return;
		}
		len += (size_t)snprintf(out + len, cap - len, "%s%s",
		    k > 0 ? ", " : "", nm);
	}
}

/*
 * The names here: <p> for the active tree, <p>.<name> for T's snapshot
 * <name>, where <p> is snap_name if given, else resync.<t> (k 1) or
 * resync.<t>.<k>.  A name longer than the limit keeps <p>, the start of
 * <name> and ~ and the crc32c of the whole of <name> in 8 hex digits.
 */
static int rs_names(struct rs_tree *trees, uint32_t n, const char *snap_name,
    uint64_t t, int k)
{
	char pre[WAFL_SNAP_NAME_MAX + 1], buf[2 * MIR_RS_NAME_SIZE + 16];
	size_t pl;

	if (snap_name != NULL)
		pl = strnlen(snap_name, sizeof(pre));
	else if (k == 1)
		pl = (size_t)snprintf(pre, sizeof(pre), "resync.%" PRIu64, t);
	else
		pl = (size_t)snprintf(pre, sizeof(pre), "resync.%" PRIu64 ".%d",
		    t, k);
	if (pl > WAFL_SNAP_NAME_MAX)
		return -ENAMETOOLONG;	/* the import says so too */
	if (snap_name != NULL)
		memcpy(pre, snap_name, pl + 1);
	for (uint32_t i = 0; i < n; i++) {
		struct rs_tree *tr = &trees[i];
		size_t nl = strnlen(tr->tname, sizeof(tr->tname));
		if (nl == 0) {
			memcpy(buf, pre, pl + 1);
		} else if (pl + 1 + nl <= WAFL_SNAP_NAME_MAX) {
			snprintf(buf, sizeof(buf), "%s.%s", pre, tr->tname);
		} else if (pl + 1 + 1 + 9 <= WAFL_SNAP_NAME_MAX) {
			int m = (int)(WAFL_SNAP_NAME_MAX - pl - 1 - 9);
			snprintf(buf, sizeof(buf), "%s.%.*s~%08" PRIx32, pre, m,
			    tr->tname, fl_crc32c(0, tr->tname, nl));
		} else {
			fl_err("mirror", "resync: snapshot name %s leaves no "
			    "room for the other side's snapshot names", pre);
			return -ENAMETOOLONG;
		}
		size_t bl = strlen(buf);
		VERIFY(bl <= WAFL_SNAP_NAME_MAX);
		memcpy(tr->name, buf, bl + 1);
	}
	return 0;
}

struct mir_resync {
	wafl_vol_t *w;			/* W: the winner; T: our volume */
	raid_vol_t *raid;		/* T */
	char *nvlog;			/* T */
	struct mir_resync_opts o;
	uint8_t key[MIR_KEY_MAX];
	struct mir_acceptor acc;	/* listen: where peers come from */
	pthread_t thr;
	bool joined;			/* mir_resync_cancel */
	_Atomic bool stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int rc;
	struct mir_resync_result res;
	/* W: the import this serve made durable last: its counts, for the
	 * reply to a T that retries after losing RS_DONE (rs_repeat). */
	struct {
		uint64_t g, t;
		struct wafl_import_stats is;
		char kept[MIR_BASE_NAME_MAX];	/* G kept as this snapshot */
	} last;
};

static int w_auth(struct mir_resync *r, struct mir_conn *c)
{
	struct mir_hdr h;
	uint8_t nonce_t[MIR_NONCE_SIZE], nonce_w[MIR_NONCE_SIZE];
	uint8_t mac[MIR_MAC_SIZE], p[64] = { 0 };
	int rc = 0;

	/* Connected to T: say which relationship first (T may take its
	 * connections from a listener shared by several, listen.c). */
	if (!r->o.listen) {
		memcpy(p, r->o.rel_id, MIR_ID_SIZE);
		rc = mir_send(c, MIR_MSG_RS_OPEN, p, 32);
		memset(p, 0, sizeof(p));
	}
	if (rc == 0)
		rc = mir_recv_type(c, MIR_MSG_RS_HELLO, &h);
	if (rc != 0)
		return rc;
	static const uint8_t zero[64];
	const uint8_t *pl = mir_conn_payload(c);
	if (memcmp(pl + MIR_ID_SIZE + MIR_NONCE_SIZE, zero, 16) != 0) {
		mir_send_error(c, EPROTO, "malformed RS_HELLO (padding not "
		    "zero)");
		return FL_ERR(-FL_EPROTO);
	}
	if (memcmp(pl, r->o.rel_id, MIR_ID_SIZE) != 0) {
		mir_send_error(c, EPERM, "unknown relationship");
		return -EPERM;
	}
	memcpy(nonce_t, pl + MIR_ID_SIZE, MIR_NONCE_SIZE);
	rc = fl_random_bytes(nonce_w, sizeof(nonce_w));
	if (rc == 0)
		rc = mir_mac(r->o.key, r->o.key_len, tag_w, r->o.rel_id, nonce_t,
		    NULL, mac);
	if (rc != 0)
		return rc;
	memcpy(p, mac, MIR_MAC_SIZE);
	memcpy(p + MIR_MAC_SIZE, nonce_w, MIR_NONCE_SIZE);
	rc = mir_send(c, MIR_MSG_RS_PROOF, p, 64);
	if (rc == 0)
		rc = mir_recv_type(c, MIR_MSG_RS_PROOF, &h);
	if (rc == 0 && memcmp(mir_conn_payload(c) + MIR_MAC_SIZE, zero,
	    MIR_NONCE_SIZE) != 0) {
		/* T's proof carries no nonce: those bytes are zero. */
		mir_send_error(c, EPROTO, "malformed RS_PROOF (nonce not zero)");
		return FL_ERR(-FL_EPROTO);
	}
	if (rc == 0)
		rc = mir_mac(r->o.key, r->o.key_len, tag_t, r->o.rel_id, nonce_w,
		    nonce_t, mac);
	if (rc == 0 && CRYPTO_memcmp(mac, mir_conn_payload(c),
	    MIR_MAC_SIZE) != 0) {
		mir_send_error(c, EACCES, "authentication failed");
		rc = -EACCES;
	}
	return rc;
}

static bool rs_drop_reply;

void mir_resync_test_drop_reply(void)
{
	__atomic_store_n(&rs_drop_reply, true, __ATOMIC_RELAXED);
}

/*
 * The tag an imported snapshot's entry keeps for the tree it holds
 * (wafl_import_tree.origin): the relationship, G, t, and the tree's
 * generation, root pointer and name on T, under the relationship's key.
 * 0 only if the MAC cannot be computed: then the import carries no tag
 * and no retry will match it (0 is what every other snapshot has).
 */
static uint64_t rs_origin(const struct mir_resync *r, uint64_t g,
    uint64_t t, const struct rs_tree *tree)
{
	static const char tag[] = "filer-resync origin";
	uint8_t msg[sizeof(tag) + MIR_ID_SIZE + 6 * 8 + MIR_RS_NAME_SIZE];
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t len = sizeof(tag), nl = strnlen(tree->tname, MIR_RS_NAME_SIZE);

	memcpy(msg, tag, sizeof(tag));
	memcpy(msg + len, r->o.rel_id, MIR_ID_SIZE);
	len += MIR_ID_SIZE;
	const uint64_t f[6] = { g, t, tree->gen, tree->root.vbn,
	    tree->root.birth, tree->root.cksum };
	for (int i = 0; i < 6; i++, len += 8)
		fl_put_le64(msg + len, f[i]);
	memcpy(msg + len, tree->tname, nl);
	len += nl;
	if (HMAC(EVP_sha256(), r->o.key, (int)r->o.key_len, msg, len, mac,
	    &maclen) == NULL || maclen < 8)
		return 0;
	uint64_t o = fl_get_le64(mac);
	return o != 0 ? o : 1;
}

/*
 * A T that retries after losing RS_DONE sends the same trees again: same
 * base, same generation, every tree's root pointer (the Merkle property:
 * the same trees) and name.  If every one of them is a snapshot here
 * already, all made by one import (the origin tags in their entries,
 * durable with the import, so a restart of this serve or of filerd
 * forgets nothing), their names go into trees and nothing is imported
 * twice.  *is gets the import's generation, and its counts if this serve
 * made it.
 */
static bool rs_repeat(struct mir_resync *r, uint64_t g, uint64_t t,
    struct rs_tree *trees, uint32_t ntrees, struct wafl_import_stats *is)
{
	struct wafl_snap_tree *s = calloc(WAFL_MAX_SNAPSHOTS, sizeof(*s));
	size_t *at = calloc(ntrees, sizeof(*at)), n = 0;
	uint64_t gen = 0;
	bool found = false;

	if (s == NULL || at == NULL || wafl_snap_trees_after(r->w, g, s,
	    WAFL_MAX_SNAPSHOTS, &n) != 0)
		n = 0;
	if (n > WAFL_MAX_SNAPSHOTS)
		n = WAFL_MAX_SNAPSHOTS;
	/* One import's entries share its CP's generation: try each
	 * generation a snapshot with the first tree's tag has (a set
	 * imported again after some of it was deleted carries the same
	 * tags). */
	for (size_t c = 0; c < n && !found && trees[0].origin != 0; c++) {
		if (s[c].origin != trees[0].origin)
			continue;
		gen = s[c].gen;
		found = true;
		for (uint32_t i = 0; found && i < ntrees; i++) {
			uint64_t o = trees[i].origin;
			size_t j = 0;
			while (j < n && (s[j].origin != o || s[j].gen != gen))
				j++;
			found = o != 0 && j < n;
			at[i] = j;
		}
	}
	for (uint32_t i = 0; found && i < ntrees; i++)
		snprintf(trees[i].name, sizeof(trees[i].name), "%s",
		    s[at[i]].name);
	free(s);
	free(at);
	if (!found)
		return false;
	if (r->last.g == g && r->last.t == t && r->last.is.gen == gen) {
		*is = r->last.is;
	} else {
		memset(is, 0, sizeof(*is));
		is->gen = gen;
	}
	return true;
}

/* G is a snapshot here (some name, G's exact root: the pointer, not
 * only its generation, which an imported snapshot's root has too). */
static bool base_is_snapshot(wafl_vol_t *w, uint64_t g,
    const struct wafl_bp *root)
{
	struct wafl_snap_tree *s = calloc(WAFL_MAX_SNAPSHOTS, sizeof(*s));
	size_t n = 0;
	bool found = false;

	if (s != NULL && wafl_snap_trees_after(w, g - 1, s,
	    WAFL_MAX_SNAPSHOTS, &n) == 0)
		for (size_t i = 0; i < n && i < WAFL_MAX_SNAPSHOTS; i++)
			found |= s[i].gen == g && s[i].birth == g &&
			    s[i].vbn == root->vbn && s[i].cksum == root->cksum;
	free(s);
	return found;
}

/*
 * The import is durable but RS_DONE did not go out: T did not hear of
 * it, keeps its data, and may retry, which needs G here.  A hold of this
 * session would go with it, so G is kept as snapshot mirror.base.<G>
 * unless a snapshot keeps it already.  False: not kept by a snapshot,
 * the caller keeps its hold instead.
 */
static bool w_keep_base(struct mir_resync *r, uint64_t g,
    const struct wafl_bp *groot)
{
	char bn[MIR_BASE_NAME_MAX];

	if (base_is_snapshot(r->w, g, groot)) {
		fl_warn("mirror", "resync: the reply to the other side was "
		    "lost after the import; generation %" PRIu64 " is a "
		    "snapshot here, kept for its retry", g);
		return true;
	}
	mir_base_name(g, bn, sizeof(bn));
	int rc = wafl_snap_adopt_root(r->w, bn, g, NULL);
	if (rc != 0) {
		fl_warn("mirror", "resync: the reply to the other side was "
		    "lost after the import; snapshot %s: %s: generation %"
		    PRIu64 " stays held for its retry", bn, fl_strerror(rc), g);
		return false;
	}
	snprintf(r->last.kept, sizeof(r->last.kept), "%s", bn);
	fl_warn("mirror", "resync: the reply to the other side was lost "
	    "after the import; generation %" PRIu64 " is kept as snapshot %s "
	    "for its retry (and the catch-up that follows it; a retry here "
	    "that holds G otherwise deletes it)", g, bn);
	return true;
}

static int w_session(struct mir_resync *r, struct mir_conn *c)
{
	struct mir_resync_result *res = &r->res;
	struct wafl_root_ent *roots = calloc(MIR_RS_MAX_ROOTS, sizeof(*roots));
	struct rs_store st = { .max = r->o.max_import_bytes, .fd = -1 };
	struct rs_tree *trees = NULL;
	struct wafl_import_tree *imp = NULL;
	struct mir_hdr h;
	size_t n = 0;
	bool held = false, already = false;
	uint64_t g = 0;
	uint32_t ntrees = 0;
	int rc = roots == NULL ? -ENOMEM : 0;

	if (rc == 0) {
		mir_conn_deadline(c, 2 * c->timeout_ms);
		rc = w_auth(r, c);
		mir_conn_deadline(c, 0);
	}
	if (rc == 0)
		rc = wafl_retained_roots(r->w, roots, MIR_RS_MAX_ROOTS, &n);
	if (rc != 0)
		goto out;
	/* Snapshot slots free here: T checks its trees fit before it
	 * sends anything (RS_BEGIN checks again). */
	size_t have = 0;
	rc = wafl_snap_names(r->w, NULL, 0, &have);
	if (rc != 0)
		goto out;
	struct mir_rs_root *rr = calloc(MIR_RS_MAX_ROOTS, sizeof(*rr));
	if (rr == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		rr[i] = (struct mir_rs_root){ roots[i].gen, { roots[i].vbn,
		    roots[i].birth, roots[i].cksum, 0 } };
	uint32_t rlen = mir_rs_roots_encode(mir_conn_payload(c),
	    have < WAFL_MAX_SNAPSHOTS ? (uint32_t)(WAFL_MAX_SNAPSHOTS - have) :
	    0, rr, (uint32_t)n);
	free(rr);
	rc = mir_send_buf(c, MIR_MSG_RS_ROOTS, rlen);
	if (rc == 0)
		rc = mir_recv_type(c, MIR_MSG_RS_BEGIN, &h);
	if (rc != 0)
		goto out;
	struct mir_rs_begin rb;
	rc = mir_rs_begin_decode(mir_conn_payload(c), h.length, &rb);
	if (rc != 0) {
		mir_send_error(c, EINVAL, "%s", rb.why);
		goto out;
	}
	g = rb.base_gen;
	uint64_t t = rb.gen;
	ntrees = rb.trees;
	bool known = false;
	for (size_t i = 0; i < n; i++)
		known |= roots[i].gen == g && roots[i].vbn == rb.base_root.vbn &&
		    roots[i].birth == rb.base_root.birth &&
		    roots[i].cksum == rb.base_root.cksum;
	if (!known) {
		mir_send_error(c, EINVAL, "base %" PRIu64 " is not a root "
		    "retained here", g);
		rc = FL_ERR(-FL_EPROTO);
		goto out;
	}
	/* The relationship's throttle, for the caller to keep if this
	 * side's row becomes the source (filerd, --reverse). */
	res->rel_throttle_bps = rb.throttle;
	/* Room for every tree T keeps, before a block is taken. */
	rc = wafl_snap_names(r->w, NULL, 0, &have);
	if (rc == 0 && have + ntrees > WAFL_MAX_SNAPSHOTS) {
		mir_send_error(c, ENOSPC, "this side has %zu snapshots of at "
		    "most %u: no room for the other side's %" PRIu32 " trees "
		    "(its active tree and snapshots newer than %" PRIu64 ")",
		    have, WAFL_MAX_SNAPSHOTS, ntrees, g);
		rc = -ENOSPC;
		goto out;
	}
	if (rc != 0)
		goto out;
	trees = calloc(ntrees, sizeof(*trees));
	if (trees == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	/* Keep G while we work, and after: the source that catches the
	 * other side up adopts this hold (M6).  One reference only. */
	uint64_t hg[WAFL_FSI_HOLDS];
	size_t nh = 0;
	(void)wafl_held_roots(r->w, hg, WAFL_FSI_HOLDS, &nh);
	for (size_t i = 0; i < nh && i < WAFL_FSI_HOLDS; i++)
		already |= hg[i] == g;
	held = !already && wafl_hold_root(r->w, g) == 0;
	res->base_gen = g;
	rc = store_open(&st, r->o.spool_dir);
	if (rc != 0) {
		mir_send_error(c, -rc, "no spool file: %s", fl_strerror(rc));
		goto out;
	}
	fl_info("mirror", "resync: importing the other side's generation %"
	    PRIu64 " and %" PRIu32 " snapshot(s) over common generation %"
	    PRIu64, t, ntrees - 1, g);
	/* RS_TREE i, its BLOCKs, ..., RS_END: every tree announced, in
	 * order, the blocks of each born in (G, its generation]. */
	int64_t cur = -1;
	struct mir_rs_tree tm, prev;
	for (;;) {
		rc = mir_recv(c, &h);
		if (rc != 0)
			goto out;
		if (h.type == MIR_MSG_RS_END)
			break;
		if (h.type == MIR_MSG_RS_TREE) {
			rc = mir_rs_tree_decode(mir_conn_payload(c), h.length,
			    &rb, cur < 0 ? NULL : &prev, &tm);
			if (rc != 0) {
				mir_send_error(c, EINVAL, "%s", tm.why);
				goto out;
			}
			prev = tm;
			cur = tm.index;
			trees[cur].gen = tm.gen;
			trees[cur].root = tm.root;
			memcpy(trees[cur].tname, tm.name, sizeof(tm.name));
			continue;
		}
		struct mir_block b;
		if (h.type != MIR_MSG_BLOCK || cur < 0 ||
		    mir_block_decode(mir_conn_rx(c), h.length, &b) != 0 ||
		    b.gen != trees[cur].gen || b.birth <= g ||
		    b.birth > trees[cur].gen) {
			rc = FL_ERR(-FL_EPROTO);
			goto out;
		}
		if (st.bytes + WAFL_BLOCK_SIZE > st.max) {
			mir_send_error(c, EFBIG, "divergence over %" PRIu64
			    " bytes: too large to import", st.max);
			rc = -EFBIG;
			goto out;
		}
		rc = store_put(&st, b.vbn, b.birth, b.data);
		if (rc != 0) {
			mir_send_error(c, -rc, "spooling the blocks: %s",
			    fl_strerror(rc));
			goto out;
		}
	}
	uint64_t count = 0;
	if (mir_u64_decode(mir_conn_payload(c), h.length, &count) != 0 ||
	    count != st.n || cur + 1 != (int64_t)ntrees) {
		mir_send_error(c, EINVAL, "%" PRId64 " of %" PRIu32 " trees, %"
		    PRIu64 " blocks received, %" PRIu64 " announced", cur + 1,
		    ntrees, st.n, count);
		rc = FL_ERR(-FL_EPROTO);
		goto out;
	}
	if (st.n > 0)
		qsort(st.v, st.n, sizeof(*st.v), cmp_blk);
	for (uint64_t i = 1; i < st.n && rc == 0; i++) {
		if (st.v[i].vbn != st.v[i - 1].vbn)
			continue;
		mir_send_error(c, EINVAL, "block %" PRIu64 " sent twice",
		    st.v[i].vbn);
		rc = FL_ERR(-FL_EPROTO);
		goto out;
	}
	imp = calloc(ntrees, sizeof(*imp));
	if (rc == 0 && imp == NULL)
		rc = -ENOMEM;
	struct wafl_import_stats is = { 0 };
	/* Names: resync.<t> for the active tree, resync.<t>.<name> for
	 * T's snapshot <name>.  A resync repeated after a failure may find
	 * a first import here already: the whole set takes the next
	 * suffix, resync.<t>.<k>[.<name>], k = 2..9. */
	for (uint32_t i = 0; rc == 0 && i < ntrees; i++)
		trees[i].origin = rs_origin(r, g, t, &trees[i]);
	bool again = rc == 0 && rs_repeat(r, g, t, trees, ntrees, &is);
	if (again) {
		fl_info("mirror", "resync: the other side's generation %" PRIu64
		    " over %" PRIu64 " is imported already (snapshot %s; the "
		    "reply was lost): not imported again", t, g,
		    trees[ntrees - 1].name);
	}
	for (int k = 1; rc == 0 && !again; k++) {
		rc = rs_names(trees, ntrees, r->o.snap_name, t, k);
		for (uint32_t i = 0; rc == 0 && i < ntrees; i++)
			imp[i] = (struct wafl_import_tree){ .name =
			    trees[i].name, .root = &trees[i].root,
			    .origin = trees[i].origin };
		if (rc == 0)
			rc = wafl_import_snapshots(r->w, g, imp, ntrees, st.n,
			    store_get, &st, &is);
		if (rc != -EEXIST || k >= 9 || r->o.snap_name != NULL)
			break;
		rc = 0;
	}
	if (rc != 0) {
		if (rc == -EEXIST)
			mir_send_error(c, EEXIST, "import failed: the snapshot "
			    "names for the other side's trees (%s...) are in "
			    "use here", trees[ntrees - 1].name);
		else if (rc == -ENOENT || rc == -ESTALE) {
			if (rc == -ENOENT)
				snprintf(res->error, sizeof(res->error), "import "
				    "failed: generation %" PRIu64 " is no longer "
				    "retained here", g);
			else
				snprintf(res->error, sizeof(res->error), "import "
				    "failed: the other side's trees use blocks "
				    "older than generation %" PRIu64 " that its "
				    "root lacks (a snapshot rollback there?): copy "
				    "the data out, then resync", g);
			mir_send_error(c, -rc, "%s", res->error);
		}
		else if (rc == -FL_ECORRUPT)
			mir_send_error(c, -rc, "import failed: the blocks "
			    "sent do not make the trees announced (damaged, "
			    "missing, or reached from none of the roots)");
		else
			mir_send_error(c, rc < 0 ? -rc : rc, "import failed: %s",
			    fl_strerror(rc));
		goto out;
	}
	if (!again) {
		r->last.g = g;
		r->last.t = t;
		r->last.is = is;
	}
	if (!held && !already) {
		/* G only a snapshot here: keep it so by name for the
		 * catch-up that follows (M6). */
		char bn[MIR_BASE_NAME_MAX];
		mir_base_name(g, bn, sizeof(bn));
		int arc = wafl_snap_adopt_root(r->w, bn, g, NULL);
		if (arc != 0 && arc != -EEXIST)
			fl_warn("mirror", "resync: snapshot %s: %s", bn,
			    fl_strerror(arc));
	}
	const char *name = trees[ntrees - 1].name;
	snprintf(res->snap_name, sizeof(res->snap_name), "%s", name);
	res->snaps = ntrees;
	rs_list_names(trees, ntrees, res);
	res->snap_gen = is.gen;
	res->blocks_received = st.n;
	res->blocks_imported = is.blocks;
	mir_rs_done_encode(mir_conn_payload(c), is.gen, is.blocks);
	if (__atomic_exchange_n(&rs_drop_reply, false, __ATOMIC_RELAXED))
		rc = -ECONNRESET;	/* test: as if the send failed */
	else if (mir_conn_peer_gone(c))
		rc = -ECONNRESET;	/* T went away while we imported (a
					   crash): the socket would take
					   RS_DONE, T never hears it */
	else
		rc = mir_send_buf(c, MIR_MSG_RS_DONE, 16);
	if (rc != 0 && !w_keep_base(r, g, &rb.base_root))
		held = false;		/* the hold keeps G instead */
	if (rc == 0 && (held || already) && r->last.kept[0] != '\0') {
		/* a retry that succeeded: the hold keeps G again */
		int drc = wafl_snap_delete(r->w, r->last.kept);
		if (drc == 0)
			fl_info("mirror", "resync: snapshot %s, kept for the "
			    "retry, deleted", r->last.kept);
		r->last.kept[0] = '\0';
	}
	fl_info("mirror", "resync: the other side's data since %" PRIu64
	    " is snapshot %s and %" PRIu32 " more (%" PRIu64 " blocks "
	    "moved; %" PRIu64 " uses by a later tree of a block an earlier "
	    "one moved)", g, name, ntrees - 1, is.blocks, is.shared);
	for (uint32_t i = 0; i + 1 < ntrees; i++)
		fl_info("mirror", "resync: the other side's snapshot %s is "
		    "snapshot %s", trees[i].tname, trees[i].name);
out:
	if (rc != 0 && held)
		wafl_release_root(r->w, g);
	res->bytes_in = c->bytes_in;
	res->bytes_out = c->bytes_out;
	store_free(&st);
	free(roots);
	free(trees);
	free(imp);
	return rc;
}

static int t_session(wafl_vol_t **tp, raid_vol_t *raid,
    const char *nvlog_path, const struct mir_resync_opts *op,
    struct mir_conn *cp, struct mir_resync_result *res);

/* A connection to the peer: accept one (listening side) or connect
 * (retrying: the peer's admin may start its half later).  -1 on stop or
 * deadline. */
static int conn_get(struct mir_resync *r, uint64_t deadline)
{
	while (!r->stop && fl_now_mono_ns() < deadline) {
		if (!r->o.listen) {
			int fd = mir_tcp_connect(r->o.host, r->o.port,
			    r->o.io_timeout_ms);
			if (fd >= 0)
				return fd;
			usleep(200000);
			continue;
		}
		int fd = mir_acceptor_next(&r->acc, 100);
		if (fd >= 0)
			return fd;
	}
	return -1;
}

/* A connection to the peer, paced as the options say. */
static int rs_conn_init(struct mir_conn *c, int fd,
    const struct mir_resync_opts *o, const _Atomic bool *stop)
{
	int rc = mir_conn_init(c, fd, o->io_timeout_ms, stop);

	if (rc == 0) {
		mir_conn_throttle(c, o->throttle_send_bps);
		mir_conn_throttle_recv(c, o->throttle_recv_bps);
	}
	return rc;
}

static void *w_thread(void *arg)
{
	struct mir_resync *r = arg;
	int rc = -ETIMEDOUT, last_rc = 0;
	uint64_t deadline = fl_now_mono_ns() +
	    (uint64_t)r->o.accept_timeout_ms * 1000000ull, logged_ns = 0;

	(void)pthread_setname_np(pthread_self(), "mir-resync");
	for (;;) {
		int fd = conn_get(r, deadline);
		if (fd < 0)
			break;
		struct mir_conn c;
		rc = rs_conn_init(&c, fd, &r->o, &r->stop);
		if (rc == 0 && r->o.overwrite) {
			rc = t_session(&r->w, r->raid, r->nvlog, &r->o, &c,
			    &r->res);
		} else if (rc == 0) {
			rc = w_session(r, &c);
		}
		mir_conn_close(&c);
		/* Go on waiting (until the deadline) for a peer that failed
		 * authentication, was not our peer (EAGAIN), or found no
		 * half of this resync on the other filerd yet (ECONNREFUSED:
		 * its listener does not know the relationship until its
		 * admin starts it). */
		if (rc == 0 || rc == -EFBIG || rc == -EINVAL ||
		    rc == -ENOSPC || rc == -EEXIST || rc == -ENAMETOOLONG ||
		    rc == -ESTALE || rc == -ENOENT ||
		    (r->o.overwrite && (r->w == NULL || (rc != -EACCES &&
		    rc != -ECONNREFUSED && rc != -EAGAIN))))
			break;
		/* Logged when it changes, else once a minute: the other
		 * side may take minutes to start its half. */
		uint64_t now = fl_now_mono_ns();
		if (rc != last_rc || now - logged_ns >= 60000000000ull) {
			rs_error(&r->res, "session", rc);
			logged_ns = now;
			last_rc = rc;
		}
		/* a peer that failed: wait for another */
		r->res.error[0] = '\0';
		if (!r->o.listen)
			usleep(200000);	/* as conn_get between connects */
	}
	if (rc != 0)
		rs_error(&r->res, "resync", rc);
	pthread_mutex_lock(&r->lock);
	r->done = true;
	r->rc = rc;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static int opts_copy(const struct mir_resync_opts *o, struct mir_resync_opts *c,
    uint8_t *key)
{
	if (o->key == NULL || o->key_len < MIR_KEY_MIN ||
	    o->key_len > MIR_KEY_MAX)
		return -EINVAL;
	*c = *o;
	memcpy(key, o->key, o->key_len);
	c->key = key;
	if (c->io_timeout_ms == 0)
		c->io_timeout_ms = 10000;
	if (c->accept_timeout_ms == 0)
		c->accept_timeout_ms = 600000;
	if (c->max_import_bytes == 0)
		c->max_import_bytes = 1ull << 30;
	if (c->throttle_send_bps != 0)
		c->throttle_send_bps = FL_MAX(c->throttle_send_bps,
		    MIR_THROTTLE_MIN);
	if (c->throttle_recv_bps != 0)
		c->throttle_recv_bps = FL_MAX(c->throttle_recv_bps,
		    MIR_THROTTLE_MIN);
	if (c->rel_throttle_bps != 0)
		c->rel_throttle_bps = FL_MIN(FL_MAX(c->rel_throttle_bps,
		    MIR_THROTTLE_MIN), MIR_THROTTLE_MAX);
	return 0;
}

int mir_resync_start(wafl_vol_t *v, raid_vol_t *raid, const char *nvlog,
    const struct mir_resync_opts *o, mir_resync_t **out)
{
	struct mir_resync *r = calloc(1, sizeof(*r));
	int rc;

	if (r == NULL)
		return -ENOMEM;
	rc = opts_copy(o, &r->o, r->key);
	if (rc == 0 && (o->overwrite ? raid == NULL : false))
		rc = -EINVAL;
	if (rc == 0 && !o->listen && (o->host == NULL || o->port == 0))
		rc = -EINVAL;
	if (rc != 0) {
		free(r);
		return rc;
	}
	r->o.host = o->host != NULL ? strdup(o->host) : NULL;
	r->o.snap_name = o->snap_name != NULL ? strdup(o->snap_name) : NULL;
	r->o.spool_dir = o->spool_dir != NULL ? strdup(o->spool_dir) : NULL;
	r->o.done_path = o->done_path != NULL ? strdup(o->done_path) : NULL;
	r->nvlog = nvlog != NULL ? strdup(nvlog) : NULL;
	r->w = v;
	r->raid = raid;
	r->acc.lfd = -1;
	if (o->listen) {
		rc = mir_acceptor_open(&r->acc, o->listener, o->host, o->port,
		    o->rel_id, true);
		if (rc < 0) {
			free((char *)(uintptr_t)r->o.host);
			free((char *)(uintptr_t)r->o.snap_name);
			free((char *)(uintptr_t)r->o.spool_dir);
			free((char *)(uintptr_t)r->o.done_path);
			free(r->nvlog);
			free(r);
			return rc;
		}
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	rc = pthread_create(&r->thr, NULL, w_thread, r);
	if (rc != 0) {
		mir_acceptor_close(&r->acc);
		free((char *)(uintptr_t)r->o.host);
		free((char *)(uintptr_t)r->o.snap_name);
		free((char *)(uintptr_t)r->o.spool_dir);
		free((char *)(uintptr_t)r->o.done_path);
		free(r->nvlog);
		free(r);
		return -rc;
	}
	*out = r;
	return 0;
}

int mir_resync_serve(wafl_vol_t *w, const struct mir_resync_opts *o,
    mir_resync_t **out)
{
	struct mir_resync_opts so = *o;

	so.listen = true;
	so.overwrite = false;
	return mir_resync_start(w, NULL, NULL, &so, out);
}

wafl_vol_t *mir_resync_volume(mir_resync_t *r)
{
	wafl_vol_t *v = r->w;

	r->w = NULL;
	return v;
}

uint16_t mir_resync_port(const mir_resync_t *r)
{
	return r->acc.port;
}

int mir_resync_wait(mir_resync_t *r, uint32_t timeout_ms,
    struct mir_resync_result *res)
{
	struct timespec ts;
	int rc = 0;

	fl_deadline_ts(&ts, (uint64_t)timeout_ms * 1000);
	pthread_mutex_lock(&r->lock);
	while (!r->done && rc == 0)
		rc = pthread_cond_timedwait(&r->cond, &r->lock, &ts);
	if (r->done) {
		rc = r->rc;
		if (res != NULL)
			*res = r->res;
	} else {
		rc = -EINPROGRESS;
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void mir_resync_cancel(mir_resync_t *r)
{
	if (r == NULL || r->joined)
		return;
	r->stop = true;
	pthread_join(r->thr, NULL);
	r->joined = true;
}

void mir_resync_stop(mir_resync_t *r)
{
	if (r == NULL)
		return;
	mir_resync_cancel(r);
	if (r->o.overwrite && r->w != NULL)
		(void)wafl_unmount(r->w);	/* T's, not taken back */
	mir_acceptor_close(&r->acc);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free((char *)(uintptr_t)r->o.host);
	free((char *)(uintptr_t)r->o.snap_name);
	free((char *)(uintptr_t)r->o.spool_dir);
	free((char *)(uintptr_t)r->o.done_path);
	free(r->nvlog);
	free(r);
}

/* ------------------------------------------------ T: the overwritten */

struct t_walk {
	struct mir_conn *c;
	uint64_t gen, blocks;
	const _Atomic bool *stop;
};

static int t_send(void *arg, uint64_t vbn, uint64_t birth, uint32_t cksum,
    const void *data, unsigned flags)
{
	struct t_walk *w = arg;

	w->blocks++;
	return mir_send_block(w->c, w->gen, vbn, birth, cksum, data);
}

static int t_auth(const struct mir_resync_opts *o, struct mir_conn *c)
{
	struct mir_hdr h;
	uint8_t nonce_t[MIR_NONCE_SIZE], mac[MIR_MAC_SIZE], p[64] = { 0 };
	int rc;

	if (o->listen) {
		/* W connected: its RS_OPEN names the relationship.  Anything
		 * else (a source's HELLO for this relationship, while this
		 * side waits for its resync) is not our peer: wait for
		 * another. */
		static const uint8_t pad[16];
		rc = mir_recv_type(c, MIR_MSG_RS_OPEN, &h);
		if (rc == -FL_EPROTO) {
			mir_send_error(c, EBUSY, "a resync of this relationship "
			    "runs here; mirroring resumes after it");
			return -EAGAIN;
		}
		if (rc != 0)
			return rc;
		const uint8_t *pl = mir_conn_payload(c);
		if (memcmp(pl, o->rel_id, MIR_ID_SIZE) != 0 ||
		    memcmp(pl + MIR_ID_SIZE, pad, sizeof(pad)) != 0) {
			mir_send_error(c, EPERM, "unknown relationship");
			return -EACCES;	/* wait for another peer */
		}
	}
	rc = fl_random_bytes(nonce_t, sizeof(nonce_t));
	if (rc != 0)
		return rc;
	memcpy(p, o->rel_id, MIR_ID_SIZE);
	memcpy(p + MIR_ID_SIZE, nonce_t, MIR_NONCE_SIZE);
	rc = mir_send(c, MIR_MSG_RS_HELLO, p, 64);
	if (rc == 0)
		rc = mir_recv_type(c, MIR_MSG_RS_PROOF, &h);
	if (rc == 0)
		rc = mir_mac(o->key, o->key_len, tag_w, o->rel_id, nonce_t, NULL,
		    mac);
	if (rc != 0)
		return rc;
	const uint8_t *pl = mir_conn_payload(c);
	if (CRYPTO_memcmp(mac, pl, MIR_MAC_SIZE) != 0)
		return -EACCES;
	uint8_t nonce_w[MIR_NONCE_SIZE];
	memcpy(nonce_w, pl + MIR_MAC_SIZE, MIR_NONCE_SIZE);
	rc = mir_mac(o->key, o->key_len, tag_t, o->rel_id, nonce_w, nonce_t,
	    mac);
	memset(p, 0, sizeof(p));
	memcpy(p, mac, MIR_MAC_SIZE);
	if (rc == 0)
		rc = mir_send(c, MIR_MSG_RS_PROOF, p, 64);
	return rc;
}

/* Newest root both sides retain exactly. */
static int t_common(wafl_vol_t *t, struct mir_conn *c, uint64_t *ggen,
    struct wafl_bp *groot, uint32_t *room)
{
	struct wafl_root_ent *mine = calloc(MIR_RS_MAX_ROOTS, sizeof(*mine));
	struct mir_rs_root *theirs = calloc(MIR_RS_MAX_ROOTS,
	    sizeof(*theirs));
	struct mir_hdr h;
	size_t n = 0;
	uint32_t cnt = 0;
	int rc = mine == NULL || theirs == NULL ? -ENOMEM : 0;
	bool found = false;

	if (rc == 0)
		rc = wafl_retained_roots(t, mine, MIR_RS_MAX_ROOTS, &n);
	if (rc == 0)
		rc = mir_recv_type(c, MIR_MSG_RS_ROOTS, &h);
	if (rc != 0)
		goto out;
	rc = mir_rs_roots_decode(mir_conn_payload(c), h.length, room, theirs,
	    &cnt);
	if (rc != 0)
		goto out;
	for (uint32_t i = 0; i < cnt; i++) {
		uint64_t gen = theirs[i].gen;
		const struct wafl_bp bp = theirs[i].root;
		for (size_t k = 0; k < n; k++) {
			if (mine[k].gen != gen || mine[k].vbn != bp.vbn ||
			    mine[k].birth != bp.birth ||
			    mine[k].cksum != bp.cksum || bp.birth != gen)
				continue;
			if (!found || gen > *ggen) {
				*ggen = gen;
				*groot = bp;
			}
			found = true;
		}
	}
	if (!found)
		rc = -ENOENT;
out:
	free(mine);
	free(theirs);
	return rc;
}

/*
 * T's snapshots made after G, oldest first: each travels to W with the
 * active tree.  Refused before anything changes when there are more than
 * the wire carries, or one whose root is not of its own generation (not
 * a tree this side wrote).
 */
static int t_snaps_after(wafl_vol_t *t, uint64_t ggen,
    struct wafl_snap_tree *sn, size_t *n, struct mir_resync_result *res)
{
	int rc = wafl_snap_trees_after(t, ggen, sn, MIR_RS_MAX_TREES - 1, n);

	if (rc != 0) {
		rs_error(res, "snapshot list", rc);
		return rc;
	}
	if (*n > MIR_RS_MAX_TREES - 1) {
		snprintf(res->error, sizeof(res->error), "%zu snapshots are "
		    "newer than the common root %" PRIu64 ", at most %u can be "
		    "kept: delete some, then resync", *n, ggen,
		    MIR_RS_MAX_TREES - 1);
		fl_err("mirror", "resync: %s", res->error);
		return -E2BIG;
	}
	for (size_t i = 0; i < *n; i++) {
		if (sn[i].birth == sn[i].gen)
			continue;
		snprintf(res->error, sizeof(res->error), "snapshot %.48s "
		    "(generation %" PRIu64 ") has a root born at %" PRIu64
		    ": not carried; copy out and delete it, then resync",
		    sn[i].name, sn[i].gen, sn[i].birth);
		fl_err("mirror", "resync: %s", res->error);
		return -EINVAL;
	}
	return 0;
}

/* RS_TREE for tree idx, then its blocks born after G that no earlier
 * tree sent (seen: a shared block goes once, with its subtree). */
static int t_send_tree(struct mir_conn *c, raid_vol_t *raid, uint32_t idx,
    const char *name, uint64_t gen, const struct wafl_bp *root, uint64_t g,
    struct mir_vset *seen, struct t_walk *w)
{
	struct mir_rs_tree m = { .index = idx, .gen = gen, .root = *root };
	size_t len = name != NULL ? strlen(name) : 0;
	int rc;

	if (len > WAFL_SNAP_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(m.name, name != NULL ? name : "", len + 1);
	mir_rs_tree_encode(mir_conn_payload(c), &m);
	rc = mir_send_buf(c, MIR_MSG_RS_TREE, MIR_RS_TREE_SIZE);
	w->gen = gen;
	if (rc == 0)
		rc = mir_tree_walk(raid, root, g, seen, t_send, w);
	return rc;
}

/* One more CP (the root directory's times change). */
static int t_bump(wafl_vol_t *t)
{
	struct wafl_obj root;
	struct wafl_sattr sa = { .mtime_how = WAFL_TIME_SERVER };
	const struct wafl_cred cr = { 0 };
	int rc = wafl_root(t, &root);

	if (rc == 0)
		rc = wafl_setattr(t, &cr, &root, &sa, NULL, NULL, NULL);
	if (rc == 0)
		rc = wafl_sync(t);
	return rc;
}

/*
 * Roll T's raid volume back to root `root` of generation g, as a replica
 * (wafl_rollback_replica); t, if mounted, is unmounted first.  The
 * newest root in G's slot takes one more CP first (M2).  Then the NVLOG
 * goes: its records are G's future no more.
 */
static int t_rollback(wafl_vol_t *t, raid_vol_t *raid,
    const char *nvlog_path, uint64_t g, const struct wafl_bp *root)
{
	int rc = 0;

	for (int tries = 0;; tries++) {
		struct wafl_mount_opts mo = { .nvlog_path = nvlog_path,
		    .no_cp_thread = true };
		if (t != NULL)
			rc = wafl_unmount(t);
		t = NULL;
		if (rc == 0)
			rc = wafl_rollback_replica(raid, g, root);
		if (rc != -EAGAIN || tries >= 3)
			break;
		/* the newest root is in G's slot: one more CP first */
		rc = wafl_mount(raid, &mo, &t);
		if (rc == 0)
			rc = t_bump(t);
		if (rc != 0)
			break;
	}
	if (t != NULL)
		(void)wafl_unmount(t);
	if (rc == 0 && nvlog_path != NULL)
		(void)unlink(nvlog_path);
	return rc;
}

/*
 * T's record that RS_DONE came (mir_resync_opts.done_path), 64 bytes,
 * little-endian:
 *
 *   off size field
 *     0    8 magic "FLRSDONE"
 *     8    4 version (1)
 *    12    4 zero
 *    16   16 relationship id
 *    32    8 G
 *    40    8 G's root block: vbn
 *    48    8                 birth (G)
 *    56    4                 crc32c
 *    60    4 crc32c of bytes 0..59
 *
 * Written and flushed (file and directory) before the roll back begins;
 * a torn one fails its checksum and counts as none.
 */
#define RS_DONE_REC_SIZE	64
static const char rs_done_magic[8] = { 'F', 'L', 'R', 'S', 'D', 'O', 'N',
    'E' };

struct rs_done_rec {
	uint8_t rel_id[MIR_REL_ID_SIZE];
	uint64_t gen;
	struct wafl_bp root;
};

static bool rs_crash_after_record;

void mir_resync_test_crash_after_done_record(void)
{
	__atomic_store_n(&rs_crash_after_record, true, __ATOMIC_RELAXED);
}

static int dir_sync(const char *path)
{
	char *dir = strdup(path);
	char *sl = dir != NULL ? strrchr(dir, '/') : NULL;
	int fd, rc = 0;

	if (dir == NULL)
		return -ENOMEM;
	if (sl == dir)
		sl[1] = '\0';
	else if (sl != NULL)
		*sl = '\0';
	fd = open(sl != NULL ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	free(dir);
	return rc;
}

static int done_record_write(const char *path, const uint8_t *rel_id,
    uint64_t g, const struct wafl_bp *root)
{
	uint8_t b[RS_DONE_REC_SIZE] = { 0 };
	int fd, rc = 0;

	memcpy(b, rs_done_magic, 8);
	fl_put_le32(b + 8, 1);
	memcpy(b + 16, rel_id, MIR_REL_ID_SIZE);
	fl_put_le64(b + 32, g);
	fl_put_le64(b + 40, root->vbn);
	fl_put_le64(b + 48, root->birth);
	fl_put_le32(b + 56, root->cksum);
	fl_put_le32(b + 60, fl_crc32c(0, b, 60));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (pwrite(fd, b, sizeof(b), 0) != (ssize_t)sizeof(b))
		rc = errno != 0 ? -errno : -EIO;
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	close(fd);
	if (rc == 0)
		rc = dir_sync(path);
	return rc;
}

/* -ENOENT: none; -FL_ECORRUPT: torn or not a record. */
static int done_record_read(const char *path, struct rs_done_rec *d)
{
	uint8_t b[RS_DONE_REC_SIZE];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = pread(fd, b, sizeof(b), 0);
	close(fd);
	if (n != (ssize_t)sizeof(b) || memcmp(b, rs_done_magic, 8) != 0 ||
	    fl_get_le32(b + 8) != 1 || fl_get_le32(b + 12) != 0 ||
	    fl_get_le32(b + 60) != fl_crc32c(0, b, 60))
		return FL_ERR(-FL_ECORRUPT);
	memcpy(d->rel_id, b + 16, MIR_REL_ID_SIZE);
	d->gen = fl_get_le64(b + 32);
	d->root = (struct wafl_bp){ .vbn = fl_get_le64(b + 40),
	    .birth = fl_get_le64(b + 48), .cksum = fl_get_le32(b + 56) };
	if (d->gen == 0 || d->root.birth != d->gen || d->root.vbn == 0)
		return FL_ERR(-FL_ECORRUPT);
	return 0;
}

int mir_resync_done_rollback(raid_vol_t *raid, const char *nvlog_path,
    const char *done_path, const uint8_t rel_id[MIR_REL_ID_SIZE],
    uint64_t *gen)
{
	struct rs_done_rec d;
	int rc = done_record_read(done_path, &d);

	if (rc == -ENOENT)
		return 0;
	if (rc == 0 && memcmp(d.rel_id, rel_id, MIR_REL_ID_SIZE) != 0)
		rc = -ESRCH;
	if (rc != 0) {
		fl_warn("mirror", "resync: %s is no record of RS_DONE for this "
		    "relationship (%s): removed", done_path, fl_strerror(rc));
		(void)unlink(done_path);
		return 0;
	}
	rc = t_rollback(NULL, raid, nvlog_path, d.gen, &d.root);
	if (rc != 0) {
		fl_err("mirror", "resync: RS_DONE had come (%s), but the roll "
		    "back to generation %" PRIu64 " failed: %s", done_path,
		    d.gen, fl_strerror(rc));
		return rc;
	}
	(void)unlink(done_path);
	fl_warn("mirror", "resync: RS_DONE had come before a crash (%s): "
	    "rolled back to generation %" PRIu64 " now", done_path, d.gen);
	*gen = d.gen;
	return 1;
}

/* T's part on an established connection (see mir_resync_overwrite). */
static int t_session(wafl_vol_t **tp, raid_vol_t *raid,
    const char *nvlog_path, const struct mir_resync_opts *op,
    struct mir_conn *cp, struct mir_resync_result *res)
{
	wafl_vol_t *t = *tp;
	const struct mir_resync_opts o = *op;
	struct { uint64_t gen; struct wafl_bp root; } g = { 0 };
	struct mir_conn c = *cp;
	struct wafl_snap_tree *sn = NULL;
	size_t nsn = 0;
	bool held = false;
	uint64_t tg = 0;
	int rc;

	rc = wafl_sync(t);
	if (rc != 0) {
		rs_error(res, "sync", rc);
		goto out;
	}
	mir_conn_deadline(&c, 2 * c.timeout_ms);
	rc = t_auth(&o, &c);
	mir_conn_deadline(&c, 0);
	if (rc != 0) {
		rs_error(res, "authentication", rc);
		goto out;
	}
	uint32_t room = 0;
	rc = t_common(t, &c, &g.gen, &g.root, &room);
	if (rc != 0) {
		rs_error(res, rc == -ENOENT ? "no generation is retained on "
		    "both sides (a baseline is needed)" : "common generation",
		    rc);
		goto out;
	}
	res->base_gen = g.gen;
	sn = calloc(MIR_RS_MAX_TREES, sizeof(*sn));
	rc = sn == NULL ? -ENOMEM : t_snaps_after(t, g.gen, sn, &nsn, res);
	if (rc != 0)
		goto out;
	if (nsn + 1 > room) {
		snprintf(res->error, sizeof(res->error), "the other side has "
		    "no room for this side's %zu trees (its active tree and "
		    "%zu snapshots newer than %" PRIu64 "): %" PRIu32 " "
		    "snapshot slots are free there; delete snapshots, then "
		    "resync", nsn + 1, nsn, g.gen, room);
		fl_err("mirror", "resync: %s", res->error);
		rc = -ENOSPC;
		goto out;
	}
	/* The tree to keep: this side's newest root, held for the walk. */
	tg = wafl_generation(t);
	uint8_t *fsi = malloc(WAFL_BLOCK_SIZE);
	struct wafl_fsinfo f;
	rc = fsi == NULL ? -ENOMEM : wafl_hold_root(t, tg);
	held = rc == 0;
	if (rc == 0)
		rc = wafl_root_of(t, tg, fsi);
	if (rc == 0)
		rc = wafl_fsinfo_decode(fsi, &f);
	free(fsi);
	if (rc == 0 && tg <= g.gen)
		rc = t_bump(t);		/* a root of our own to send */
	if (rc == 0 && tg <= g.gen) {
		wafl_release_root(t, tg);
		tg = wafl_generation(t);
		rc = wafl_hold_root(t, tg);
		fsi = malloc(WAFL_BLOCK_SIZE);
		if (rc == 0 && fsi == NULL)
			rc = -ENOMEM;
		if (rc == 0)
			rc = wafl_root_of(t, tg, fsi);
		if (rc == 0)
			rc = wafl_fsinfo_decode(fsi, &f);
		free(fsi);
	}
	if (rc != 0) {
		rs_error(res, "root", rc);
		goto out;
	}
	{
		/* Oldest first, the active tree last. */
		uint32_t ntrees = (uint32_t)nsn + 1;
		struct mir_rs_begin b = { .base_gen = g.gen,
		    .base_root = g.root, .gen = tg, .root = f.root,
		    .trees = ntrees, .throttle = o.rel_throttle_bps };
		mir_rs_begin_encode(mir_conn_payload(&c), &b);
		rc = mir_send_buf(&c, MIR_MSG_RS_BEGIN, MIR_RS_BEGIN_SIZE);
		struct t_walk w = { .c = &c };
		struct mir_vset seen = { 0 };
		for (size_t i = 0; rc == 0 && i < nsn; i++) {
			struct wafl_bp sb = { sn[i].vbn, sn[i].birth,
			    sn[i].cksum, 0 };
			rc = t_send_tree(&c, raid, (uint32_t)i, sn[i].name,
			    sn[i].gen, &sb, g.gen, &seen, &w);
		}
		if (rc == 0)
			rc = t_send_tree(&c, raid, (uint32_t)nsn, NULL, tg,
			    &f.root, g.gen, &seen, &w);
		mir_vset_free(&seen);
		uint8_t e[8];
		mir_u64_encode(e, w.blocks);
		if (rc == 0)
			rc = mir_send(&c, MIR_MSG_RS_END, e, 8);
		res->blocks_sent = w.blocks;
		struct mir_hdr h;
		uint32_t saved = c.timeout_ms;
		/* the import's CP, and its reads of every tree */
		c.timeout_ms = o.io_timeout_ms * (6 + ntrees);
		if (rc == 0)
			rc = mir_recv_type(&c, MIR_MSG_RS_DONE, &h);
		c.timeout_ms = saved;
		if (rc == -EPIPE || rc == -ECONNRESET) {
			/* W refused while we were sending: its ERROR, if it
			 * came, says why. */
			int erc = mir_recv_type(&c, MIR_MSG_RS_DONE, &h);
			if (erc != 0 && c.peer_error[0] != '\0')
				rc = erc;
		}
		if (rc != 0) {
			if (c.peer_error[0] != '\0' && res->error[0] == '\0')
				snprintf(res->error, sizeof(res->error), "the "
				    "other side refused: %.160s", c.peer_error);
			rs_error(res, "sending this side's data", rc);
			goto out;
		}
		res->snaps = ntrees;
		rc = mir_rs_done_decode(mir_conn_payload(&c), h.length,
		    &res->snap_gen, &res->blocks_imported);
		if (rc != 0)
			goto out;
	}
	res->bytes_out = c.bytes_out;
	res->bytes_in = c.bytes_in;
	/* W holds our data durably (M7): record that, then roll back to
	 * G.  The record narrows what a crash here leaves undecided to
	 * RS_DONE's way (mir_resync_done_rollback); without it the roll
	 * back goes on all the same. */
	if (o.done_path != NULL) {
		int drc = done_record_write(o.done_path, o.rel_id, g.gen,
		    &g.root);
		if (drc != 0)
			fl_warn("mirror", "resync: cannot record RS_DONE in %s: "
			    "%s", o.done_path, fl_strerror(drc));
		else if (__atomic_load_n(&rs_crash_after_record,
		    __ATOMIC_RELAXED)) {
			fl_warn("mirror", "resync: RS_DONE recorded: killed "
			    "before the roll back (test)");
			(void)raise(SIGKILL);
		}
	}
	wafl_release_root(t, tg);
	held = false;
	*tp = NULL;		/* from here on t is ours to unmount */
	rc = t_rollback(t, raid, nvlog_path, g.gen, &g.root);
	t = NULL;
	if (rc != 0) {
		rs_error(res, "roll back", rc);
		goto out;
	}
	if (o.done_path != NULL)
		(void)unlink(o.done_path);	/* the roll back says it now */
	fl_info("mirror", "resync: rolled back to generation %" PRIu64
	    "; the other side holds this side's data as %" PRIu32 " snapshot(s)"
	    " (generation %" PRIu64 ")", g.gen, res->snaps, res->snap_gen);
out:
	if (held && t != NULL)
		wafl_release_root(t, tg);
	if (t != NULL && *tp == NULL)
		(void)wafl_unmount(t);
	res->bytes_out = c.bytes_out;
	res->bytes_in = c.bytes_in;
	*cp = c;
	free(sn);
	return rc;
}

int mir_resync_overwrite(wafl_vol_t **tp, raid_vol_t *raid,
    const char *nvlog_path, const struct mir_resync_opts *oi,
    struct mir_resync_result *res)
{
	struct mir_resync_opts o;
	uint8_t key[MIR_KEY_MAX];
	struct mir_conn c;
	_Atomic bool never = false;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = opts_copy(oi, &o, key);
	if (rc != 0 || o.host == NULL || o.port == 0)
		return -EINVAL;
	int fd = mir_tcp_connect(o.host, o.port, o.io_timeout_ms);
	if (fd < 0) {
		rs_error(res, "connect", fd);
		return fd;
	}
	rc = rs_conn_init(&c, fd, &o, &never);
	if (rc != 0)
		return rc;
	rc = t_session(tp, raid, nvlog_path, &o, &c, res);
	mir_conn_close(&c);
	return rc;
}

int mir_resync_rolled_back(wafl_vol_t *v, uint64_t *gen)
{
	uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
	struct wafl_fsinfo f;
	uint64_t g = wafl_generation(v);
	int rc = blk == NULL ? -ENOMEM : wafl_root_of(v, g, blk);

	if (rc == 0)
		rc = wafl_fsinfo_decode(blk, &f);
	free(blk);
	if (rc != 0)
		return rc;
	if ((f.flags & WAFL_FSI_REPLICA) == 0 || f.gen != g ||
	    f.ring_len != 1 || f.ring[0].gen != g || f.root.birth != g)
		return 0;
	*gen = g;
	return 1;
}
