/*
 * tests/lib/tl_model.c: the in-memory model of a wafl tree (tl_model.h).
 *
 * tm_apply states wafl's rules as a reader expects them from wafl.h and
 * RFC 1813, in the order wafl/ops_ns.c and ops_data.c check them, so a
 * disagreement is either a bug in wafl or a rule this file got wrong; the
 * message names the operation and the two results.
 */
#include "tests/lib/tl_model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/assert.h"
#include "tests/lib/tl_wafl.h"

#define TM_MODE_SUID	04000u
#define TM_MODE_SGID	02000u

/* --------------------------------------------------------------- random */

uint64_t tm_rand(uint64_t *s)
{
	uint64_t x = *s;

	if (x == 0)
		x = 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

uint64_t tm_below(uint64_t *s, uint64_t n)
{
	return n == 0 ? 0 : tm_rand(s) % n;
}

static bool chance(uint64_t *s, unsigned pct)
{
	return tm_below(s, 100) < pct;
}

double tm_scale(void)
{
	const char *e = getenv("FILER_TEST_SCALE");
	double k = 1.0;

	if (e != NULL && *e != '\0')
		return atof(e) > 0 ? atof(e) : 1.0;
#if defined(__SANITIZE_ADDRESS__)
	k = 0.3;
#endif
	e = getenv("FILER_SOAK");
	if (e != NULL && *e != '\0' && strcmp(e, "0") != 0)
		k *= 40.0;
	return k;
}

uint64_t tm_seed(void)
{
	const char *e = getenv("FILER_SEED");
	struct timespec ts;

	if (e != NULL && *e != '\0')
		return strtoull(e, NULL, 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec ^
	    ((uint64_t)getpid() << 32);
}

/* ---------------------------------------------------------------- nodes */

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	VERIFY(d != NULL);
	return d;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n == 0 ? 1 : n);

	VERIFY(q != NULL);
	return q;
}

static int node_new(struct tmodel *m, enum wafl_type t)
{
	if (m->nn == m->capn) {
		m->capn = m->capn ? m->capn * 2 : 64;
		m->n = xrealloc(m->n, m->capn * sizeof(*m->n));
	}
	struct tm_node *n = &m->n[m->nn];
	memset(n, 0, sizeof(*n));
	n->live = true;
	n->type = t;
	n->parent = -1;
	return (int)m->nn++;
}

static void node_release(struct tm_node *n)
{
	for (size_t i = 0; i < n->nblk; i++)
		free(n->blk[i].data);
	free(n->blk);
	free(n->target);
	for (size_t i = 0; i < n->nent; i++)
		free(n->ent[i].name);
	free(n->ent);
	memset(n, 0, sizeof(*n));
	n->parent = -1;
}

struct tmodel *tm_new(const struct wafl_obj *root, const struct wafl_attr *a)
{
	struct tmodel *m = calloc(1, sizeof(*m));

	VERIFY(m != NULL);
	m->dense = UINT64_MAX;
	m->root = node_new(m, WAFL_DIR);
	struct tm_node *n = &m->n[m->root];
	n->parent = m->root;
	n->obj = *root;
	n->obj_known = true;
	if (a != NULL) {
		n->mode = a->mode;
		n->uid = a->uid;
		n->gid = a->gid;
	}
	return m;
}

void tm_free(struct tmodel *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nn; i++)
		node_release(&m->n[i]);
	free(m->n);
	free(m);
}

struct tmodel *tm_clone(const struct tmodel *m)
{
	struct tmodel *c = calloc(1, sizeof(*c));

	VERIFY(c != NULL);
	*c = *m;
	c->n = xrealloc(NULL, m->capn * sizeof(*c->n));
	memcpy(c->n, m->n, m->nn * sizeof(*c->n));
	for (size_t i = 0; i < m->nn; i++) {
		struct tm_node *d = &c->n[i];
		const struct tm_node *s = &m->n[i];
		d->blk = xrealloc(NULL, s->capblk * sizeof(*d->blk));
		for (size_t b = 0; b < s->nblk; b++) {
			d->blk[b].idx = s->blk[b].idx;
			d->blk[b].data = NULL;
			if (s->blk[b].data != NULL) {
				d->blk[b].data = xrealloc(NULL, TM_BLK);
				memcpy(d->blk[b].data, s->blk[b].data, TM_BLK);
			}
		}
		d->target = s->target ? xstrdup(s->target) : NULL;
		d->ent = xrealloc(NULL, s->capent * sizeof(*d->ent));
		for (size_t e = 0; e < s->nent; e++) {
			d->ent[e].name = xstrdup(s->ent[e].name);
			d->ent[e].node = s->ent[e].node;
		}
	}
	return c;
}

size_t tm_count(const struct tmodel *m)
{
	size_t k = 0;

	for (size_t i = 0; i < m->nn; i++)
		k += m->n[i].live;
	return k;
}

uint32_t tm_nlink(const struct tmodel *m, int node)
{
	const struct tm_node *n = &m->n[node];

	if (n->type == WAFL_DIR)
		return 2 + n->nsubdirs;
	return n->names;
}

/* ------------------------------------------------------------ directories */

static int ent_find(const struct tmodel *m, int dir, const char *name)
{
	const struct tm_node *d = &m->n[dir];

	for (size_t i = 0; i < d->nent; i++)
		if (strcmp(d->ent[i].name, name) == 0)
			return (int)i;
	return -1;
}

static void ent_add(struct tmodel *m, int dir, const char *name, int node)
{
	struct tm_node *d = &m->n[dir];

	if (d->nent == d->capent) {
		d->capent = d->capent ? d->capent * 2 : 8;
		d->ent = xrealloc(d->ent, d->capent * sizeof(*d->ent));
	}
	d->ent[d->nent].name = xstrdup(name);
	d->ent[d->nent].node = node;
	d->nent++;
}

static void ent_del(struct tmodel *m, int dir, int e)
{
	struct tm_node *d = &m->n[dir];

	free(d->ent[e].name);
	d->ent[e] = d->ent[--d->nent];
}

int tm_resolve(const struct tmodel *m, const char *path)
{
	int cur = m->root;
	const char *p = path;

	while (*p != '\0') {
		const char *sl = strchr(p, '/');
		size_t len = sl ? (size_t)(sl - p) : strlen(p);
		char name[WAFL_NAME_MAX + 1];

		if (m->n[cur].type != WAFL_DIR)
			return -ENOTDIR;
		if (len == 0 || len > WAFL_NAME_MAX)
			return -ENOENT;
		memcpy(name, p, len);
		name[len] = '\0';
		int e = ent_find(m, cur, name);
		if (e < 0)
			return -ENOENT;
		cur = m->n[cur].ent[e].node;
		p += len;
		if (*p == '/')
			p++;
	}
	return cur;
}

/* Is anc on the parent chain of dir (dir included)? */
static bool chain_has(const struct tmodel *m, int dir, int anc)
{
	for (int d = dir;; d = m->n[d].parent) {
		if (d == anc)
			return true;
		if (d == m->root || d < 0)
			return false;
	}
}

/* ------------------------------------------------------------------ data */

static size_t blk_lower(const struct tm_node *n, uint64_t idx)
{
	size_t lo = 0, hi = n->nblk;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (n->blk[mid].idx < idx)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const uint8_t *blk_peek(const struct tm_node *n, uint64_t idx,
    bool *present)
{
	size_t i = blk_lower(n, idx);

	*present = i < n->nblk && n->blk[i].idx == idx;
	return *present ? n->blk[i].data : NULL;
}

/* The block's bytes, made present and writable (zeros if new). */
static uint8_t *blk_make(struct tm_node *n, uint64_t idx)
{
	size_t i = blk_lower(n, idx);

	if (i == n->nblk || n->blk[i].idx != idx) {
		if (n->nblk == n->capblk) {
			n->capblk = n->capblk ? n->capblk * 2 : 8;
			n->blk = xrealloc(n->blk, n->capblk * sizeof(*n->blk));
		}
		memmove(&n->blk[i + 1], &n->blk[i],
		    (n->nblk - i) * sizeof(*n->blk));
		n->blk[i].idx = idx;
		n->blk[i].data = NULL;
		n->nblk++;
	}
	if (n->blk[i].data == NULL) {
		n->blk[i].data = xrealloc(NULL, TM_BLK);
		memset(n->blk[i].data, 0, TM_BLK);
	}
	return n->blk[i].data;
}

/* Remember idx as read (zeros) without data. */
static void blk_mark(struct tm_node *n, uint64_t idx)
{
	bool present;

	(void)blk_peek(n, idx, &present);
	if (!present) {
		uint8_t *d = blk_make(n, idx);
		size_t i = blk_lower(n, idx);
		free(d);
		n->blk[i].data = NULL;
	}
}

static void node_write(struct tm_node *n, uint64_t off, uint32_t len,
    const uint8_t *buf)
{
	uint32_t done = 0;

	while (done < len) {
		uint64_t pos = off + done;
		uint32_t in = (uint32_t)(pos % TM_BLK);
		uint32_t k = TM_BLK - in;
		if (k > len - done)
			k = len - done;
		memcpy(blk_make(n, pos / TM_BLK) + in, buf + done, k);
		done += k;
	}
	if (off + len > n->size)
		n->size = off + len;
}

static void node_truncate(struct tm_node *n, uint64_t size)
{
	if (size < n->size) {
		for (size_t i = 0; i < n->nblk; i++) {
			struct tm_blk *b = &n->blk[i];
			if (b->data == NULL)
				continue;
			if (b->idx * TM_BLK >= size) {
				free(b->data);
				b->data = NULL;
			} else if (b->idx == size / TM_BLK) {
				memset(b->data + size % TM_BLK, 0,
				    TM_BLK - size % TM_BLK);
			}
		}
	}
	n->size = size;
}

/* ------------------------------------------------------------ operations */

void tm_op_clear(struct tm_op *op)
{
	free(op->path);
	free(op->name);
	free(op->path2);
	free(op->name2);
	free(op->target);
	memset(op, 0, sizeof(*op));
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

void tm_op_copy(struct tm_op *dst, const struct tm_op *src)
{
	*dst = *src;
	dst->path = dup_or_null(src->path);
	dst->name = dup_or_null(src->name);
	dst->path2 = dup_or_null(src->path2);
	dst->name2 = dup_or_null(src->name2);
	dst->target = dup_or_null(src->target);
}

bool tm_op_durable(const struct tm_op *op)
{
	if (op->k == TM_WRITE)
		return op->stable != WAFL_UNSTABLE;
	return true;
}

static const char *const op_names[] = {
	[TM_CREATE] = "CREATE", [TM_MKDIR] = "MKDIR",
	[TM_SYMLINK] = "SYMLINK", [TM_MKNOD] = "MKNOD", [TM_WRITE] = "WRITE",
	[TM_TRUNC] = "TRUNCATE", [TM_SETATTR] = "SETATTR",
	[TM_REMOVE] = "REMOVE", [TM_RMDIR] = "RMDIR", [TM_RENAME] = "RENAME",
	[TM_LINK] = "LINK", [TM_COMMIT] = "COMMIT",
};

/* Names may be 255 bytes of anything: print a bounded, visible form. */
static void short_name(const char *s, char *out, size_t len)
{
	size_t k = 0;

	if (s == NULL) {
		snprintf(out, len, "-");
		return;
	}
	for (size_t i = 0; s[i] != '\0' && k + 5 < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (i == 40 && strlen(s) > 48) {
			k += (size_t)snprintf(out + k, len - k, "...(%zu)",
			    strlen(s));
			break;
		}
		if (c >= 0x20 && c < 0x7f)
			out[k++] = (char)c;
		else
			k += (size_t)snprintf(out + k, len - k, "\\x%02x", c);
	}
	out[k] = '\0';
}

void tm_op_describe(const struct tm_op *op, char *buf, size_t len)
{
	char p[128], n[128], p2[128], n2[128];

	short_name(op->path, p, sizeof(p));
	short_name(op->name, n, sizeof(n));
	short_name(op->path2, p2, sizeof(p2));
	short_name(op->name2, n2, sizeof(n2));
	switch (op->k) {
	case TM_WRITE:
		snprintf(buf, len, "WRITE /%s off %llu len %u stable %d", p,
		    (unsigned long long)op->off, op->len, (int)op->stable);
		break;
	case TM_TRUNC:
		snprintf(buf, len, "TRUNCATE /%s to %llu", p,
		    (unsigned long long)op->sa.size);
		break;
	case TM_SETATTR:
		snprintf(buf, len, "SETATTR /%s mode %d:%o uid %d:%u gid %d:%u "
		    "atime %d mtime %d", p, op->sa.set_mode, op->sa.mode,
		    op->sa.set_uid, op->sa.uid, op->sa.set_gid, op->sa.gid,
		    (int)op->sa.atime_how, (int)op->sa.mtime_how);
		break;
	case TM_RENAME:
		snprintf(buf, len, "RENAME /%s : %s -> /%s : %s", p, n, p2, n2);
		break;
	case TM_LINK:
		snprintf(buf, len, "LINK /%s -> /%s : %s", p, p2, n2);
		break;
	case TM_CREATE:
		snprintf(buf, len, "CREATE /%s : %s how %d verf %llu size %d:%llu",
		    p, n, (int)op->how, (unsigned long long)op->verifier,
		    op->sa.set_size, (unsigned long long)op->sa.size);
		break;
	default:
		snprintf(buf, len, "%s /%s : %s", op_names[op->k], p, n);
		break;
	}
}

/* A new node made by CREATE / MKDIR / SYMLINK / MKNOD in dir. */
static int make_node(struct tmodel *m, int dir, const struct tm_op *op,
    enum wafl_type t, uint32_t perm, const struct wafl_sattr *sa,
    const struct wafl_obj *out)
{
	uint32_t dmode = m->n[dir].mode, dgid = m->n[dir].gid;
	int x = node_new(m, t);
	struct tm_node *n = &m->n[x];

	n->mode = perm;
	n->uid = 0;
	n->gid = (dmode & TM_MODE_SGID) ? dgid : 0;
	if (sa != NULL) {
		if (sa->set_mode)
			n->mode = sa->mode & 07777;
		if (sa->set_uid)
			n->uid = sa->uid;
		if (sa->set_gid)
			n->gid = sa->gid;
		if (sa->atime_how == WAFL_TIME_CLIENT) {
			n->atime_known = true;
			n->atime = sa->atime_ns;
		}
		if (sa->mtime_how == WAFL_TIME_CLIENT) {
			n->mtime_known = true;
			n->mtime = sa->mtime_ns;
		}
	}
	if (t == WAFL_DIR && (dmode & TM_MODE_SGID))
		n->mode |= TM_MODE_SGID;
	if (out != NULL) {
		n->obj = *out;
		n->obj_known = true;
	}
	if (t == WAFL_DIR) {
		n->parent = dir;
		m->n[dir].nsubdirs++;
	} else {
		n->names = 1;
	}
	ent_add(m, dir, op->name, x);
	m->n[dir].mtime_known = false;
	return x;
}

/* Drop one name of node x (already taken out of its directory). */
static void unname(struct tmodel *m, int x)
{
	struct tm_node *n = &m->n[x];

	if (n->type == WAFL_DIR) {
		m->n[n->parent].nsubdirs--;
		node_release(n);
		return;
	}
	if (--n->names == 0)
		node_release(n);
}

static int apply_make(struct tmodel *m, const struct tm_op *op,
    const struct wafl_obj *out)
{
	int d = tm_resolve(m, op->path);

	if (d < 0)
		return d;
	if (m->n[d].type != WAFL_DIR)
		return -ENOTDIR;
	int e = ent_find(m, d, op->name);
	if (e >= 0) {
		int x = m->n[d].ent[e].node;
		struct tm_node *n = &m->n[x];
		if (op->k != TM_CREATE)
			return -EEXIST;
		switch (op->how) {
		case WAFL_GUARDED:
			return -EEXIST;
		case WAFL_EXCLUSIVE:
			return n->type == WAFL_REG && n->excl &&
			    n->verifier == op->verifier ? 0 : -EEXIST;
		case WAFL_UNCHECKED:
			if (n->type != WAFL_REG)
				return -EEXIST;
			if (op->sa.set_size) {
				if (op->sa.size != n->size)
					n->mtime_known = false;
				node_truncate(n, op->sa.size);
				n->excl = false;
			}
			return 0;
		}
		return -EINVAL;
	}
	struct wafl_sattr sa = op->sa;
	int x;
	switch (op->k) {
	case TM_CREATE:
		if (op->how == WAFL_EXCLUSIVE) {
			x = make_node(m, d, op, WAFL_REG, 0600, NULL, out);
			m->n[x].excl = true;
			m->n[x].verifier = op->verifier;
			return 0;
		}
		if (sa.set_size && sa.size > WAFL_MAX_FILE_SIZE)
			return -EFBIG;
		x = make_node(m, d, op, WAFL_REG, 0644, &sa, out);
		if (sa.set_size)
			m->n[x].size = sa.size;
		return 0;
	case TM_MKDIR:
		make_node(m, d, op, WAFL_DIR, 0755, &sa, out);
		return 0;
	case TM_SYMLINK:
		sa.set_mode = false;
		x = make_node(m, d, op, WAFL_LNK, 0777, &sa, out);
		m->n[x].target = xstrdup(op->target);
		m->n[x].size = strlen(op->target);
		return 0;
	case TM_MKNOD:
		x = make_node(m, d, op, op->ntype, 0644, &sa, out);
		if (op->ntype == WAFL_CHR || op->ntype == WAFL_BLK) {
			m->n[x].rdev_major = op->rdev_major;
			m->n[x].rdev_minor = op->rdev_minor;
		}
		return 0;
	default:
		return -EINVAL;
	}
}

static int apply_remove(struct tmodel *m, const struct tm_op *op, bool rmdir)
{
	int d = tm_resolve(m, op->path);

	if (d < 0)
		return d;
	if (m->n[d].type != WAFL_DIR)
		return -ENOTDIR;
	int e = ent_find(m, d, op->name);
	if (e < 0)
		return -ENOENT;
	int x = m->n[d].ent[e].node;
	bool isdir = m->n[x].type == WAFL_DIR;
	if (!rmdir && isdir)
		return -EISDIR;
	if (rmdir && !isdir)
		return -ENOTDIR;
	if (rmdir && m->n[x].nent != 0)
		return -ENOTEMPTY;
	ent_del(m, d, e);
	m->n[d].mtime_known = false;
	unname(m, x);
	return 0;
}

static int apply_rename(struct tmodel *m, const struct tm_op *op)
{
	int fd = tm_resolve(m, op->path), td = tm_resolve(m, op->path2);

	if (fd < 0)
		return fd;
	if (td < 0)
		return td;
	if (m->n[fd].type != WAFL_DIR || m->n[td].type != WAFL_DIR)
		return -ENOTDIR;
	int se = ent_find(m, fd, op->name);
	if (se < 0)
		return -ENOENT;
	int src = m->n[fd].ent[se].node;
	int te = ent_find(m, td, op->name2);
	int tgt = te >= 0 ? m->n[td].ent[te].node : -1;
	if (tgt == src)
		return 0;	/* the same file: nothing to do */
	bool sdir = m->n[src].type == WAFL_DIR;
	if (sdir && chain_has(m, td, src))
		return -EINVAL;	/* a directory into its own subtree */
	if (tgt >= 0) {
		bool tdir = m->n[tgt].type == WAFL_DIR;
		if (tdir && chain_has(m, fd, tgt))
			return sdir ? -ENOTEMPTY : -EISDIR;
		if (sdir && !tdir)
			return -ENOTDIR;
		if (!sdir && tdir)
			return -EISDIR;
		if (tdir && m->n[tgt].nent != 0)
			return -ENOTEMPTY;
		ent_del(m, td, te);
		unname(m, tgt);
		/* ent_del moved entries: find the source again. */
		se = ent_find(m, fd, op->name);
	}
	ent_del(m, fd, se);
	ent_add(m, td, op->name2, src);
	if (sdir && fd != td) {
		m->n[fd].nsubdirs--;
		m->n[td].nsubdirs++;
	}
	if (sdir)
		m->n[src].parent = td;
	m->n[fd].mtime_known = false;
	m->n[td].mtime_known = false;
	return 0;
}

static int apply_link(struct tmodel *m, const struct tm_op *op)
{
	int x = tm_resolve(m, op->path);
	int d = tm_resolve(m, op->path2);

	if (x < 0)
		return x;
	if (m->n[x].type == WAFL_DIR)
		return -EISDIR;
	if (d < 0)
		return d;
	if (m->n[d].type != WAFL_DIR)
		return -ENOTDIR;
	if (ent_find(m, d, op->name2) >= 0)
		return -EEXIST;
	ent_add(m, d, op->name2, x);
	m->n[x].names++;
	m->n[d].mtime_known = false;
	return 0;
}

static int apply_write(struct tmodel *m, const struct tm_op *op)
{
	if (op->off > WAFL_MAX_FILE_SIZE ||
	    op->len > WAFL_MAX_FILE_SIZE - op->off)
		return -EFBIG;
	int x = tm_resolve(m, op->path);
	if (x < 0)
		return x;
	struct tm_node *n = &m->n[x];
	if (n->type == WAFL_DIR)
		return -EISDIR;
	if (n->type != WAFL_REG)
		return -EINVAL;
	if (op->len == 0)
		return 0;
	uint8_t *buf = xrealloc(NULL, op->len);
	tl_fill_pattern(buf, op->len, op->seed);
	node_write(n, op->off, op->len, buf);
	free(buf);
	n->mtime_known = false;
	n->excl = false;	/* an EXCLUSIVE create's verifier ends */
	return 0;
}

static void set_time(bool *known, uint64_t *val, enum wafl_time_how how,
    uint64_t client)
{
	if (how == WAFL_TIME_SERVER) {
		*known = false;
	} else if (how == WAFL_TIME_CLIENT) {
		*known = true;
		*val = client;
	}
}

static int apply_setattr(struct tmodel *m, const struct tm_op *op)
{
	const struct wafl_sattr *sa = &op->sa;
	int x = tm_resolve(m, op->path);

	if (x < 0)
		return x;
	struct tm_node *n = &m->n[x];
	if (sa->set_size) {
		if (n->type == WAFL_DIR)
			return -EISDIR;
		if (n->type != WAFL_REG)
			return -EINVAL;
		if (sa->size > WAFL_MAX_FILE_SIZE)
			return -EFBIG;
		node_truncate(n, sa->size);
		n->mtime_known = false;
	}
	bool idchange = (sa->set_uid && sa->uid != n->uid) ||
	    (sa->set_gid && sa->gid != n->gid);
	if (sa->set_uid)
		n->uid = sa->uid;
	if (sa->set_gid)
		n->gid = sa->gid;
	if (sa->set_mode)
		n->mode = sa->mode & 07777;
	else if (idchange && n->type == WAFL_REG)
		n->mode &= ~(TM_MODE_SUID | TM_MODE_SGID);
	set_time(&n->atime_known, &n->atime, sa->atime_how, sa->atime_ns);
	set_time(&n->mtime_known, &n->mtime, sa->mtime_how, sa->mtime_ns);
	if (sa->set_mode || sa->set_uid || sa->set_gid || sa->set_size ||
	    sa->atime_how != WAFL_TIME_DONT || sa->mtime_how != WAFL_TIME_DONT)
		n->excl = false;	/* as after a write */
	return 0;
}

int tm_apply(struct tmodel *m, const struct tm_op *op, const struct wafl_obj *out)
{
	switch (op->k) {
	case TM_CREATE:
	case TM_MKDIR:
	case TM_SYMLINK:
	case TM_MKNOD:
		return apply_make(m, op, out);
	case TM_WRITE:
		return apply_write(m, op);
	case TM_TRUNC:
	case TM_SETATTR:
		return apply_setattr(m, op);
	case TM_REMOVE:
		return apply_remove(m, op, false);
	case TM_RMDIR:
		return apply_remove(m, op, true);
	case TM_RENAME:
		return apply_rename(m, op);
	case TM_LINK:
		return apply_link(m, op);
	case TM_COMMIT:
		return tm_resolve(m, op->path) < 0 ? -ENOENT : 0;
	}
	return -EINVAL;
}

/* ------------------------------------------------------------- generator */

struct plist {
	char **path;
	int *node;
	size_t n, cap;
};

static char *path_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = xrealloc(NULL, a + b + 2);

	if (a == 0) {
		memcpy(p, name, b + 1);
	} else {
		memcpy(p, dir, a);
		p[a] = '/';
		memcpy(p + a + 1, name, b + 1);
	}
	return p;
}

static void plist_add(struct plist *pl, char *path, int node)
{
	if (pl->n == pl->cap) {
		pl->cap = pl->cap ? pl->cap * 2 : 64;
		pl->path = xrealloc(pl->path, pl->cap * sizeof(*pl->path));
		pl->node = xrealloc(pl->node, pl->cap * sizeof(*pl->node));
	}
	pl->path[pl->n] = path;
	pl->node[pl->n] = node;
	pl->n++;
}

static void plist_walk(const struct tmodel *m, int dir, const char *path,
    struct plist *pl)
{
	const struct tm_node *d = &m->n[dir];

	for (size_t i = 0; i < d->nent; i++) {
		char *p = path_join(path, d->ent[i].name);
		int x = d->ent[i].node;
		plist_add(pl, p, x);
		if (m->n[x].type == WAFL_DIR)
			plist_walk(m, x, p, pl);
	}
}

static void plist_free(struct plist *pl)
{
	for (size_t i = 0; i < pl->n; i++)
		free(pl->path[i]);
	free(pl->path);
	free(pl->node);
}

/* A random path whose node has type t (0: any; root included when dirs
 * qualify); NULL if none. */
static const char *pick(const struct tmodel *m, const struct plist *pl,
    uint64_t *rng, enum wafl_type t, bool any_but_root)
{
	size_t k = 0;

	for (size_t i = 0; i < pl->n; i++)
		k += t == 0 || m->n[pl->node[i]].type == t;
	bool root_ok = !any_but_root && (t == 0 || t == WAFL_DIR);
	uint64_t r = tm_below(rng, k + (root_ok ? 1 : 0));
	if (r == k)
		return "";
	for (size_t i = 0; i < pl->n; i++) {
		if (t != 0 && m->n[pl->node[i]].type != t)
			continue;
		if (r-- == 0)
			return pl->path[i];
	}
	return root_ok ? "" : NULL;
}

static const char *pick_dir(const struct tmodel *m, const struct plist *pl,
    uint64_t *rng, const struct tm_gen_opts *go)
{
	if (go->errors && chance(rng, 4)) {
		const char *p = pick(m, pl, rng, 0, true);
		if (p != NULL)
			return p;
	}
	return pick(m, pl, rng, WAFL_DIR, false);
}

static char *gen_name(const struct tmodel *m, const char *dir, uint64_t *rng,
    const struct tm_gen_opts *go, unsigned existing_pct)
{
	int d = tm_resolve(m, dir);
	char buf[WAFL_NAME_MAX + 1];

	if (d >= 0 && m->n[d].type == WAFL_DIR && m->n[d].nent > 0 &&
	    chance(rng, existing_pct)) {
		const struct tm_node *dn = &m->n[d];
		return xstrdup(dn->ent[tm_below(rng, dn->nent)].name);
	}
	if (go->odd_names && chance(rng, 3)) {
		if (chance(rng, 50)) {
			size_t len = WAFL_NAME_MAX - tm_below(rng, 3);
			memset(buf, 'L', len);
			snprintf(buf + len - 3, 4, "%03u",
			    (unsigned)tm_below(rng, 4));
		} else {
			size_t len = 1 + tm_below(rng, 12);
			for (size_t i = 0; i < len; i++) {
				uint8_t c;
				do
					c = (uint8_t)(1 + tm_below(rng, 255));
				while (c == '/');
				buf[i] = (char)c;
			}
			buf[len] = '\0';
			if (strcmp(buf, ".") == 0 || strcmp(buf, "..") == 0)
				buf[0] = 'd';
		}
		return xstrdup(buf);
	}
	snprintf(buf, sizeof(buf), "n%u",
	    (unsigned)tm_below(rng, go->name_pool ? go->name_pool : 16));
	return xstrdup(buf);
}

static void gen_times(uint64_t *rng, struct wafl_sattr *sa, unsigned pct)
{
	if (chance(rng, pct)) {
		sa->atime_how = chance(rng, 70) ? WAFL_TIME_CLIENT :
		    WAFL_TIME_SERVER;
		sa->atime_ns = 1000000000ull * (1 + tm_below(rng, 2000000000)) +
		    tm_below(rng, 1000000000);
	}
	if (chance(rng, pct)) {
		sa->mtime_how = chance(rng, 70) ? WAFL_TIME_CLIENT :
		    WAFL_TIME_SERVER;
		sa->mtime_ns = 1000000000ull * (1 + tm_below(rng, 2000000000)) +
		    tm_below(rng, 1000000000);
	}
}

static void gen_make_sattr(uint64_t *rng, struct wafl_sattr *sa)
{
	memset(sa, 0, sizeof(*sa));
	if (chance(rng, 50)) {
		sa->set_mode = true;
		sa->mode = (uint32_t)tm_below(rng, 010000);
	}
	if (chance(rng, 10)) {
		sa->set_uid = true;
		sa->uid = (uint32_t)tm_below(rng, 4);
	}
	if (chance(rng, 10)) {
		sa->set_gid = true;
		sa->gid = (uint32_t)tm_below(rng, 4);
	}
	gen_times(rng, sa, 10);
}

static uint64_t gen_size(uint64_t *rng, const struct tm_gen_opts *go,
    uint64_t cur)
{
	uint64_t r = tm_below(rng, 100);

	if (r < 10)
		return 0;
	if (r < 40)
		return tm_below(rng, cur + 1);
	if (r < 70)
		return cur + tm_below(rng, go->max_off / 2 + 1);
	if (r < 94 || go->far_off == 0)
		return tm_below(rng, go->max_off + 1);
	return tm_below(rng, go->far_off);
}

static const enum tm_opk gen_table[] = {
	TM_CREATE, TM_CREATE, TM_CREATE, TM_CREATE, TM_CREATE, TM_CREATE,
	TM_MKDIR, TM_MKDIR, TM_MKDIR, TM_SYMLINK, TM_SYMLINK, TM_MKNOD,
	TM_WRITE, TM_WRITE, TM_WRITE, TM_WRITE, TM_WRITE, TM_WRITE, TM_WRITE,
	TM_WRITE, TM_WRITE, TM_WRITE, TM_TRUNC, TM_TRUNC, TM_TRUNC,
	TM_SETATTR, TM_SETATTR, TM_REMOVE, TM_REMOVE, TM_REMOVE, TM_REMOVE,
	TM_RMDIR, TM_RMDIR, TM_RENAME, TM_RENAME, TM_RENAME, TM_RENAME,
	TM_RENAME, TM_LINK, TM_LINK, TM_LINK, TM_COMMIT,
};

void tm_gen(const struct tmodel *m, uint64_t *rng, const struct tm_gen_opts *go,
    struct tm_op *op)
{
	struct plist pl = { 0 };
	const char *p;

	memset(op, 0, sizeof(*op));
	plist_walk(m, m->root, "", &pl);
	for (;;) {
		op->k = gen_table[tm_below(rng,
		    sizeof(gen_table) / sizeof(gen_table[0]))];
		if (go->commit_pct && chance(rng, go->commit_pct))
			op->k = TM_COMMIT;
		bool makes = op->k == TM_CREATE || op->k == TM_MKDIR ||
		    op->k == TM_SYMLINK || op->k == TM_MKNOD ||
		    op->k == TM_LINK;
		if (makes && go->max_nodes && tm_count(m) >= go->max_nodes)
			op->k = chance(rng, 70) ? TM_REMOVE : TM_RMDIR;
		switch (op->k) {
		case TM_CREATE:
		case TM_MKDIR:
		case TM_SYMLINK:
		case TM_MKNOD:
			p = pick_dir(m, &pl, rng, go);
			op->path = xstrdup(p);
			op->name = gen_name(m, p, rng, go,
			    go->errors ? 15 : 3);
			gen_make_sattr(rng, &op->sa);
			if (op->k == TM_CREATE) {
				op->how = (enum wafl_create_how)tm_below(rng,
				    go->exclusive ? 3 : 2);
				op->verifier = 1 + tm_below(rng, 3);
				if (chance(rng, 15)) {
					op->sa.set_size = true;
					op->sa.size = tm_below(rng,
					    go->max_off / 4 + 1);
				}
			} else if (op->k == TM_SYMLINK) {
				size_t len = chance(rng, 10) ?
				    300 + tm_below(rng, WAFL_PATH_MAX - 299) :
				    1 + tm_below(rng, 60);
				op->target = xrealloc(NULL, len + 1);
				for (size_t i = 0; i < len; i++)
					op->target[i] = (char)(chance(rng, 10) ?
					    '/' : 'a' + tm_below(rng, 26));
				op->target[len] = '\0';
			} else if (op->k == TM_MKNOD) {
				static const enum wafl_type ts[] = {
					WAFL_FIFO, WAFL_FIFO, WAFL_FIFO,
					WAFL_CHR, WAFL_BLK, WAFL_SOCK,
				};
				op->ntype = ts[tm_below(rng, 6)];
				op->rdev_major = (uint32_t)tm_below(rng, 300);
				op->rdev_minor = (uint32_t)tm_below(rng, 70000);
			}
			goto out;
		case TM_WRITE:
		case TM_TRUNC:
		case TM_COMMIT:
			p = NULL;
			if (go->errors && chance(rng, 4))
				p = pick(m, &pl, rng, 0, false);
			if (p == NULL)
				p = pick(m, &pl, rng, WAFL_REG, true);
			if (p == NULL)
				continue;
			op->path = xstrdup(p);
			int x = tm_resolve(m, p);
			uint64_t size = x >= 0 ? m->n[x].size : 0;
			if (op->k == TM_TRUNC) {
				op->sa.set_size = true;
				op->sa.size = gen_size(rng, go, size);
				if (go->errors && chance(rng, 2))
					op->sa.size = WAFL_MAX_FILE_SIZE + 1 +
					    tm_below(rng, 5);
				goto out;
			}
			if (op->k == TM_COMMIT)
				goto out;
			if (go->unstable_pct)
				op->stable = chance(rng, go->unstable_pct) ?
				    WAFL_UNSTABLE : (enum wafl_stable)(1 +
				    tm_below(rng, 2));
			else
				op->stable = (enum wafl_stable)tm_below(rng, 3);
			op->seed = tm_rand(rng);
			uint64_t r = tm_below(rng, 100);
			op->len = 1 + (uint32_t)tm_below(rng, go->max_len);
			if (chance(rng, 20))
				op->len = 1 + (uint32_t)tm_below(rng, 8 * 4096);
			if (go->big_writes && chance(rng, 2))
				op->len = 1 + (uint32_t)tm_below(rng, 1 << 20);
			if (chance(rng, 3))
				op->len = 0;
			if (r < 35)
				op->off = size;
			else if (r < 65)
				op->off = tm_below(rng, size + 1);
			else if (r < 85)
				op->off = TM_BLK * tm_below(rng,
				    go->max_off / TM_BLK + 1);
			else if (r < 93 || go->far_off == 0)
				op->off = tm_below(rng, go->max_off + 1);
			else
				op->off = tm_below(rng, go->far_off);
			if (go->errors && chance(rng, 1))
				op->off = WAFL_MAX_FILE_SIZE -
				    tm_below(rng, 2 * (uint64_t)op->len + 1);
			goto out;
		case TM_SETATTR:
			p = pick(m, &pl, rng, 0, false);
			op->path = xstrdup(p);
			if (chance(rng, 50)) {
				op->sa.set_mode = true;
				op->sa.mode = (uint32_t)tm_below(rng, 010000);
			}
			if (chance(rng, 20)) {
				op->sa.set_uid = true;
				op->sa.uid = (uint32_t)tm_below(rng, 4);
			}
			if (chance(rng, 20)) {
				op->sa.set_gid = true;
				op->sa.gid = (uint32_t)tm_below(rng, 4);
			}
			gen_times(rng, &op->sa, 40);
			goto out;
		case TM_REMOVE:
		case TM_RMDIR:
			p = pick_dir(m, &pl, rng, go);
			op->path = xstrdup(p);
			op->name = gen_name(m, p, rng, go, 75);
			goto out;
		case TM_RENAME:
			p = pick_dir(m, &pl, rng, go);
			op->path = xstrdup(p);
			op->name = gen_name(m, p, rng, go, 85);
			p = pick_dir(m, &pl, rng, go);
			op->path2 = xstrdup(p);
			op->name2 = gen_name(m, p, rng, go, 35);
			goto out;
		case TM_LINK:
			p = NULL;
			if (go->errors && chance(rng, 5))
				p = pick(m, &pl, rng, 0, true);
			if (p == NULL)
				p = pick(m, &pl, rng, WAFL_REG, true);
			if (p == NULL)
				continue;
			op->path = xstrdup(p);
			p = pick_dir(m, &pl, rng, go);
			op->path2 = xstrdup(p);
			op->name2 = gen_name(m, p, rng, go,
			    go->errors ? 15 : 3);
			goto out;
		}
	}
out:
	plist_free(&pl);
}

/* ------------------------------------------------------------- execution */

static const struct wafl_cred root_cred = { 0 };

/* The object a path names in m (its parent's handle must be known). */
static int obj_of(const struct tmodel *m, const char *path, struct wafl_obj *o)
{
	int x = tm_resolve(m, path);

	if (x < 0)
		return x;
	VERIFY(m->n[x].obj_known);
	*o = m->n[x].obj;
	return 0;
}

int tm_exec(wafl_vol_t *v, const struct tmodel *m, struct tm_op *op)
{
	const struct wafl_cred *c = &root_cred;
	struct wafl_obj o, o2, out = { 0 };
	struct wafl_attr attr, post;
	struct wafl_dirwcc w1, w2;
	struct wafl_wcc pre;
	struct wafl_sattr sa = op->sa;
	enum wafl_stable committed = WAFL_UNSTABLE;
	int rc;

	op->post_valid = false;
	rc = obj_of(m, op->path, &o);
	VERIFY(rc == 0);
	if (op->path2 != NULL)
		VERIFY(obj_of(m, op->path2, &o2) == 0);
	switch (op->k) {
	case TM_CREATE:
		rc = wafl_create(v, c, &o, op->name, op->how, &sa,
		    op->verifier, &out, &attr, &w1);
		break;
	case TM_MKDIR:
		rc = wafl_mkdir(v, c, &o, op->name, &sa, &out, &attr, &w1);
		break;
	case TM_SYMLINK:
		rc = wafl_symlink(v, c, &o, op->name, op->target, &sa, &out,
		    &attr, &w1);
		break;
	case TM_MKNOD:
		rc = wafl_mknod(v, c, &o, op->name, op->ntype, op->rdev_major,
		    op->rdev_minor, &sa, &out, &attr, &w1);
		break;
	case TM_WRITE: {
		uint8_t *buf = xrealloc(NULL, op->len);
		tl_fill_pattern(buf, op->len, op->seed);
		rc = wafl_write(v, c, &o, op->off, op->len, buf, op->stable,
		    &committed, &pre, &post);
		free(buf);
		if (rc == 0) {
			op->post_valid = true;
			op->post_size = post.size;
			/* What the reply may claim (W7). */
			if (op->stable != WAFL_UNSTABLE &&
			    committed != WAFL_FILE_SYNC)
				rc = -EPROTO;
		}
		break;
	}
	case TM_TRUNC:
	case TM_SETATTR:
		rc = wafl_setattr(v, c, &o, &sa, NULL, &pre, &post);
		if (rc == 0) {
			op->post_valid = true;
			op->post_size = post.size;
		}
		break;
	case TM_REMOVE:
		rc = wafl_remove(v, c, &o, op->name, &w1);
		break;
	case TM_RMDIR:
		rc = wafl_rmdir(v, c, &o, op->name, &w1);
		break;
	case TM_RENAME:
		rc = wafl_rename(v, c, &o, op->name, &o2, op->name2, &w1, &w2);
		break;
	case TM_LINK:
		rc = wafl_link(v, c, &o, &o2, op->name2, &attr, &w1);
		break;
	case TM_COMMIT:
		rc = wafl_commit(v, &o, &post);
		break;
	}
	if (rc == 0 && (op->k == TM_CREATE || op->k == TM_MKDIR ||
	    op->k == TM_SYMLINK || op->k == TM_MKNOD)) {
		op->out = out;
		if (attr.fileid != out.ino || attr.gen != out.gen)
			rc = -EPROTO;	/* attributes of another object */
	}
	op->rc = rc;
	return rc;
}

/* ---------------------------------------------------------- live backend */

struct rd_page {
	char **names;
	uint64_t *ids;
	size_t n, cap;
	uint64_t last_cookie, dotdot;
	bool dot, have_dotdot;
	uint32_t budget;
	int err;
};

static int rd_cb(void *arg, const struct wafl_dirent *de)
{
	struct rd_page *pg = arg;

	if (pg->budget == 0)
		return 1;
	pg->budget--;
	pg->last_cookie = de->cookie;
	if (strcmp(de->name, ".") == 0) {
		pg->dot = true;
		return 0;
	}
	if (strcmp(de->name, "..") == 0) {
		pg->have_dotdot = true;
		pg->dotdot = de->fileid;
		return 0;
	}
	if (pg->n == pg->cap) {
		pg->cap = pg->cap ? pg->cap * 2 : 16;
		pg->names = xrealloc(pg->names, pg->cap * sizeof(*pg->names));
		pg->ids = xrealloc(pg->ids, pg->cap * sizeof(*pg->ids));
	}
	pg->names[pg->n] = xstrdup(de->name);
	pg->ids[pg->n] = de->fileid;
	pg->n++;
	return 0;
}

static int live_list(void *ctx, const struct wafl_obj *dir, uint64_t *dotdot,
    int (*fn)(void *arg, const char *name, const struct wafl_obj *o),
    void *arg)
{
	wafl_vol_t *v = ctx;
	struct rd_page pg = { 0 };
	uint64_t cookie = 0;
	bool eof = false;
	int rc = 0;

	/* Short pages: cookies carry the walk (READDIR as clients do it). */
	for (int pass = 0; !eof; pass++) {
		pg.budget = 3 + (uint32_t)(pass % 5);
		rc = wafl_readdir(v, &root_cred, dir, cookie, pass % 2 == 1,
		    rd_cb, &pg, &eof, NULL);
		if (rc != 0) {
			fprintf(stderr, "tl_model: inode %llu: READDIR from "
			    "cookie %llu: %s\n", (unsigned long long)dir->ino,
			    (unsigned long long)cookie, fl_strerror(rc));
			goto out;
		}
		if (!eof && pg.last_cookie == cookie) {
			rc = -EPROTO;	/* no progress */
			goto out;
		}
		cookie = pg.last_cookie;
	}
	if (!pg.dot || !pg.have_dotdot) {
		rc = -EPROTO;
		goto out;
	}
	*dotdot = pg.dotdot;
	for (size_t i = 0; i < pg.n; i++) {
		for (size_t j = 0; j < i; j++)
			if (strcmp(pg.names[i], pg.names[j]) == 0) {
				rc = -EEXIST;	/* a name listed twice */
				goto out;
			}
	}
	struct wafl_obj self, up;
	struct wafl_attr a;
	rc = wafl_lookup(v, &root_cred, dir, ".", &self, &a, NULL);
	if (rc == 0 && (self.ino != dir->ino || self.gen != dir->gen))
		rc = -EPROTO;
	if (rc == 0)
		rc = wafl_lookup(v, &root_cred, dir, "..", &up, &a, NULL);
	if (rc == 0 && up.ino != pg.dotdot)
		rc = -EPROTO;
	if (rc != 0)
		fprintf(stderr, "tl_model: inode %llu: LOOKUP of \".\" or "
		    "\"..\": %s (\"..\" listed as %llu)\n",
		    (unsigned long long)dir->ino, fl_strerror(rc),
		    (unsigned long long)pg.dotdot);
	for (size_t i = 0; rc == 0 && i < pg.n; i++) {
		struct wafl_obj o;
		rc = wafl_lookup(v, &root_cred, dir, pg.names[i], &o, &a, NULL);
		if (rc != 0 || o.ino != pg.ids[i] || a.fileid != o.ino) {
			char nm[128];
			short_name(pg.names[i], nm, sizeof(nm));
			fprintf(stderr, "tl_model: inode %llu: LOOKUP of "
			    "\"%s\" (listed as %llu): %s, inode %llu\n",
			    (unsigned long long)dir->ino, nm,
			    (unsigned long long)pg.ids[i], fl_strerror(rc),
			    rc == 0 ? (unsigned long long)o.ino : 0ull);
			if (rc == 0)
				rc = -EPROTO;
			break;
		}
		rc = fn(arg, pg.names[i], &o);
	}
out:
	for (size_t i = 0; i < pg.n; i++)
		free(pg.names[i]);
	free(pg.names);
	free(pg.ids);
	return rc;
}

static int live_getattr(void *ctx, const struct wafl_obj *o,
    struct wafl_attr *a)
{
	return wafl_getattr(ctx, o, a);
}

static int live_read(void *ctx, const struct wafl_obj *o, uint64_t off,
    uint32_t len, void *buf, uint32_t *got, bool *eof)
{
	return wafl_read(ctx, &root_cred, o, off, len, buf, got, eof, NULL);
}

static int live_readlink(void *ctx, const struct wafl_obj *o, char *buf,
    size_t bufsz, size_t *len)
{
	return wafl_readlink(ctx, &root_cred, o, buf, bufsz, len, NULL);
}

void tm_backend_live(struct tm_backend *b, wafl_vol_t *v)
{
	b->ctx = v;
	b->list = live_list;
	b->getattr = live_getattr;
	b->read = live_read;
	b->readlink = live_readlink;
}

/* ------------------------------------------------------------ observation */

struct obs {
	const struct tm_backend *b;
	struct tmodel *o;
	const struct tmodel *hint;
	uint64_t dense;
	char *err;
	size_t errlen;
	uint8_t *buf;
	/* while listing one directory */
	int dir;
	const char *dirpath;
	int rc;
};

#define OBS_CHUNK	(256u * 1024u)

static int obs_fail(struct obs *s, int rc, const char *path, const char *what)
{
	char p[128];

	short_name(path, p, sizeof(p));
	snprintf(s->err, s->errlen, "/%s: %s: %s", p, what, fl_strerror(rc));
	return rc != 0 ? rc : -EPROTO;
}

static int obs_read_at(struct obs *s, struct tm_node *n, const char *path,
    uint64_t off, uint32_t len, bool keep_zero)
{
	uint32_t got = 0;
	bool eof = false;
	int rc = s->b->read(s->b->ctx, &n->obj, off, len, s->buf, &got, &eof);

	if (rc != 0)
		return obs_fail(s, rc, path, "READ");
	if (got != len)
		return obs_fail(s, -EPROTO, path, "READ came back short");
	for (uint32_t k = 0; k < len; k += TM_BLK) {
		uint32_t bl = len - k < TM_BLK ? len - k : TM_BLK;
		bool zero = true;
		for (uint32_t i = 0; i < bl && zero; i++)
			zero = s->buf[k + i] == 0;
		uint64_t idx = (off + k) / TM_BLK;
		if (!zero)
			memcpy(blk_make(n, idx), s->buf + k, bl);
		else if (keep_zero)
			blk_mark(n, idx);
	}
	return 0;
}

static int obs_file(struct obs *s, int x, const char *path)
{
	struct tm_node *n = &s->o->n[x];
	uint64_t size = n->size;
	uint64_t dense = size < s->dense ? size : s->dense;
	int rc;

	for (uint64_t off = 0; off < dense; off += OBS_CHUNK) {
		uint32_t len = dense - off < OBS_CHUNK ?
		    (uint32_t)(dense - off) : OBS_CHUNK;
		rc = obs_read_at(s, &s->o->n[x], path, off, len, false);
		if (rc != 0)
			return rc;
	}
	if (size > dense) {
		/* Past the dense part: the blocks the hint knows, their
		 * neighbours, and the last block. */
		int h = s->hint ? tm_resolve(s->hint, path) : -1;
		const struct tm_node *hn = h >= 0 ? &s->hint->n[h] : NULL;
		size_t nb = hn && hn->type == WAFL_REG ? hn->nblk : 0;
		for (size_t i = 0; i <= nb; i++) {
			uint64_t base = i < nb ? hn->blk[i].idx :
			    (size - 1) / TM_BLK;
			for (int d = -1; d <= 1; d++) {
				uint64_t idx = base + (uint64_t)(int64_t)d;
				if ((d < 0 && base == 0) || idx * TM_BLK < dense ||
				    idx * TM_BLK >= size)
					continue;
				uint64_t off = idx * TM_BLK;
				uint32_t len = size - off < TM_BLK ?
				    (uint32_t)(size - off) : TM_BLK;
				rc = obs_read_at(s, &s->o->n[x], path, off,
				    len, true);
				if (rc != 0)
					return rc;
			}
		}
	}
	/* At the end: nothing, and eof. */
	uint32_t got = 1;
	bool eof = false;
	rc = s->b->read(s->b->ctx, &s->o->n[x].obj, size, TM_BLK, s->buf,
	    &got, &eof);
	if (rc != 0)
		return obs_fail(s, rc, path, "READ at end of file");
	if (got != 0 || !eof)
		return obs_fail(s, -EPROTO, path, "READ at end: data or no eof");
	return 0;
}

static int obs_dir(struct obs *s, int dir, const char *path);

static int obs_entry(void *arg, const char *name, const struct wafl_obj *obj)
{
	struct obs *s = arg;
	struct tmodel *o = s->o;
	int dir = s->dir;
	char *path = path_join(s->dirpath, name);
	struct wafl_attr a;
	int rc = 0;

	if (strlen(name) > WAFL_NAME_MAX || strchr(name, '/') != NULL) {
		rc = obs_fail(s, -EPROTO, path, "bad name listed");
		goto out;
	}
	for (size_t i = 0; i < o->nn; i++) {
		if (o->n[i].live && o->n[i].obj.ino == obj->ino &&
		    (int)i != o->root) {
			if (o->n[i].obj.gen != obj->gen ||
			    o->n[i].type == WAFL_DIR) {
				rc = obs_fail(s, -EPROTO, path,
				    "a directory or generation named twice");
				goto out;
			}
			o->n[i].names++;
			ent_add(o, dir, name, (int)i);
			goto out;
		}
	}
	rc = s->b->getattr(s->b->ctx, obj, &a);
	if (rc != 0) {
		rc = obs_fail(s, rc, path, "GETATTR");
		goto out;
	}
	if (a.fileid != obj->ino || a.gen != obj->gen) {
		rc = obs_fail(s, -EPROTO, path, "GETATTR of another object");
		goto out;
	}
	int x = node_new(o, a.type);
	struct tm_node *n = &o->n[x];
	n->mode = a.mode;
	n->uid = a.uid;
	n->gid = a.gid;
	n->size = a.size;
	n->rdev_major = a.rdev_major;
	n->rdev_minor = a.rdev_minor;
	n->atime_known = n->mtime_known = true;
	n->atime = a.atime_ns;
	n->mtime = a.mtime_ns;
	n->obj = *obj;
	n->obj_known = true;
	n->nlink_seen = a.nlink;
	ent_add(o, dir, name, x);
	if (a.type == WAFL_DIR) {
		n->parent = dir;
		o->n[dir].nsubdirs++;
	} else {
		n->names = 1;
	}
	switch (a.type) {
	case WAFL_REG:
		rc = obs_file(s, x, path);
		break;
	case WAFL_LNK: {
		char t[WAFL_PATH_MAX + 1];
		size_t len = 0;
		rc = s->b->readlink(s->b->ctx, obj, t, sizeof(t), &len);
		if (rc != 0) {
			rc = obs_fail(s, rc, path, "READLINK");
			break;
		}
		if (len != a.size || strlen(t) != len) {
			rc = obs_fail(s, -EPROTO, path, "READLINK length");
			break;
		}
		o->n[x].target = xstrdup(t);
		break;
	}
	default:
		break;
	}
out:
	free(path);
	return rc;
}

static int obs_dir(struct obs *s, int dir, const char *path)
{
	uint64_t dotdot = 0;
	int rc;

	/* A copy: the node array grows while the entries come in. */
	struct wafl_obj dobj = s->o->n[dir].obj;

	s->dir = dir;
	s->dirpath = path;
	rc = s->b->list(s->b->ctx, &dobj, &dotdot, obs_entry, s);
	if (rc != 0) {
		if (s->err[0] == '\0')
			obs_fail(s, rc, path, "READDIR/LOOKUP");
		return rc;
	}
	int parent = s->o->n[dir].parent;
	if (dir != s->o->root && dotdot != s->o->n[parent].obj.ino)
		return obs_fail(s, -EPROTO, path, "\"..\" names another dir");
	/* Entries stay put while children are walked (ent arrays only grow
	 * for the directory being listed). */
	size_t nent = s->o->n[dir].nent;
	for (size_t i = 0; i < nent; i++) {
		int x = s->o->n[dir].ent[i].node;
		if (s->o->n[x].type != WAFL_DIR || s->o->n[x].parent != dir)
			continue;
		char *p = path_join(path, s->o->n[dir].ent[i].name);
		rc = obs_dir(s, x, p);
		free(p);
		if (rc != 0)
			return rc;
	}
	return 0;
}

struct tmodel *tm_observe(const struct tm_backend *b, const struct wafl_obj *root,
    const struct tmodel *hint, uint64_t dense, char *err, size_t errlen)
{
	struct wafl_attr a;
	struct obs s = {
		.b = b, .hint = hint, .dense = dense, .err = err,
		.errlen = errlen,
	};
	int rc;

	err[0] = '\0';
	rc = b->getattr(b->ctx, root, &a);
	if (rc != 0) {
		snprintf(err, errlen, "GETATTR of the root: %s",
		    fl_strerror(rc));
		return NULL;
	}
	if (a.type != WAFL_DIR) {
		snprintf(err, errlen, "the root is not a directory");
		return NULL;
	}
	s.o = tm_new(root, &a);
	s.o->dense = dense;
	s.o->n[s.o->root].nlink_seen = a.nlink;
	s.o->n[s.o->root].atime_known = s.o->n[s.o->root].mtime_known = true;
	s.o->n[s.o->root].atime = a.atime_ns;
	s.o->n[s.o->root].mtime = a.mtime_ns;
	s.buf = xrealloc(NULL, OBS_CHUNK);
	rc = obs_dir(&s, s.o->root, "");
	free(s.buf);
	if (rc != 0) {
		tm_free(s.o);
		return NULL;
	}
	return s.o;
}

/* ------------------------------------------------------------------ diff */

struct diff {
	struct tmodel *m;
	const struct tmodel *o;
	unsigned flags;
	int *pm, *po;
	char *err;
	size_t errlen;
};

static int diff_fail(struct diff *d, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int diff_fail(struct diff *d, const char *path, const char *fmt, ...)
{
	char p[128];
	va_list ap;
	int k;

	short_name(path, p, sizeof(p));
	k = snprintf(d->err, d->errlen, "/%s: ", p);
	va_start(ap, fmt);
	if (k >= 0 && (size_t)k < d->errlen)
		vsnprintf(d->err + k, d->errlen - (size_t)k, fmt, ap);
	va_end(ap);
	return -1;
}

static int cmp_name(const void *a, const void *b)
{
	const struct tm_dent *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static int diff_data(struct diff *d, const struct tm_node *mn,
    const struct tm_node *on, const char *path)
{
	static const uint8_t zeros[TM_BLK];
	size_t i = 0, j = 0;

	while (i < mn->nblk || j < on->nblk) {
		uint64_t idx;
		if (j >= on->nblk || (i < mn->nblk &&
		    mn->blk[i].idx < on->blk[j].idx))
			idx = mn->blk[i].idx;
		else
			idx = on->blk[j].idx;
		bool mp, op;
		const uint8_t *mb = blk_peek(mn, idx, &mp);
		const uint8_t *ob = blk_peek(on, idx, &op);
		if (mp && mn->blk[i].idx == idx)
			i++;
		if (op && on->blk[j].idx == idx)
			j++;
		if (idx * TM_BLK >= mn->size)
			continue;
		if (!op && idx * TM_BLK >= d->o->dense)
			continue;	/* not read */
		uint64_t lim = mn->size - idx * TM_BLK;
		uint32_t n = lim < TM_BLK ? (uint32_t)lim : TM_BLK;
		mb = mb ? mb : zeros;
		ob = ob ? ob : zeros;
		if (memcmp(mb, ob, n) != 0) {
			uint32_t k = 0;
			while (mb[k] == ob[k])
				k++;
			return diff_fail(d, path, "data differs at byte %llu "
			    "(block %llu): expected %02x, read %02x",
			    (unsigned long long)(idx * TM_BLK + k),
			    (unsigned long long)idx, mb[k], ob[k]);
		}
	}
	return 0;
}

static int diff_node(struct diff *d, int mi, int oi, const char *path)
{
	struct tm_node *mn = &d->m->n[mi];
	const struct tm_node *on = &d->o->n[oi];

	if (d->pm[mi] != -1 || d->po[oi] != -1) {
		if (d->pm[mi] != oi || d->po[oi] != mi)
			return diff_fail(d, path, "link identity: expected "
			    "%s of another name, found %s",
			    d->pm[mi] != -1 ? "the same file as" : "a file apart",
			    d->po[oi] != -1 ? "a file named before" :
			    "a new file");
		return 0;
	}
	d->pm[mi] = oi;
	d->po[oi] = mi;
	if (mn->type != on->type)
		return diff_fail(d, path, "type %d, expected %d", on->type,
		    mn->type);
	if (mn->mode != on->mode)
		return diff_fail(d, path, "mode %o, expected %o", on->mode,
		    mn->mode);
	if (mn->uid != on->uid || mn->gid != on->gid)
		return diff_fail(d, path, "uid/gid %u/%u, expected %u/%u",
		    on->uid, on->gid, mn->uid, mn->gid);
	uint32_t nl = tm_nlink(d->m, mi);
	if (nl != on->nlink_seen)
		return diff_fail(d, path, "nlink %u, expected %u",
		    on->nlink_seen, nl);
	if (mn->type != WAFL_DIR && mn->size != on->size)
		return diff_fail(d, path, "size %llu, expected %llu",
		    (unsigned long long)on->size,
		    (unsigned long long)mn->size);
	if ((mn->type == WAFL_CHR || mn->type == WAFL_BLK) &&
	    (mn->rdev_major != on->rdev_major ||
	    mn->rdev_minor != on->rdev_minor))
		return diff_fail(d, path, "rdev %u:%u, expected %u:%u",
		    on->rdev_major, on->rdev_minor, mn->rdev_major,
		    mn->rdev_minor);
	if (mn->type == WAFL_LNK && (on->target == NULL ||
	    strcmp(mn->target, on->target) != 0))
		return diff_fail(d, path, "symlink target differs");
	if (mn->atime_known && mn->atime != on->atime)
		return diff_fail(d, path, "atime %llu, expected %llu",
		    (unsigned long long)on->atime,
		    (unsigned long long)mn->atime);
	if (mn->mtime_known && mn->mtime != on->mtime)
		return diff_fail(d, path, "mtime %llu, expected %llu",
		    (unsigned long long)on->mtime,
		    (unsigned long long)mn->mtime);
	if ((d->flags & TM_DIFF_OBJS) && mn->obj_known &&
	    (mn->obj.ino != on->obj.ino || mn->obj.gen != on->obj.gen))
		return diff_fail(d, path, "inode %llu gen %u, expected inode "
		    "%llu gen %u", (unsigned long long)on->obj.ino,
		    on->obj.gen, (unsigned long long)mn->obj.ino,
		    mn->obj.gen);
	if (mn->type == WAFL_REG)
		return diff_data(d, mn, on, path);
	if (mn->type != WAFL_DIR)
		return 0;
	size_t n = mn->nent;
	struct tm_dent *a = xrealloc(NULL, n * sizeof(*a));
	struct tm_dent *b = xrealloc(NULL, on->nent * sizeof(*b));
	if (n > 0) {
		memcpy(a, mn->ent, n * sizeof(*a));
		qsort(a, n, sizeof(*a), cmp_name);
	}
	if (on->nent > 0) {
		memcpy(b, on->ent, on->nent * sizeof(*b));
		qsort(b, on->nent, sizeof(*b), cmp_name);
	}
	int rc = 0;
	size_t i = 0, j = 0;
	while (rc == 0 && (i < n || j < on->nent)) {
		int c = i >= n ? 1 : j >= on->nent ? -1 :
		    strcmp(a[i].name, b[j].name);
		char *p = path_join(path, c <= 0 ? a[i].name : b[j].name);
		if (c < 0)
			rc = diff_fail(d, p, "missing");
		else if (c > 0)
			rc = diff_fail(d, p, "present, expected absent");
		else
			rc = diff_node(d, a[i].node, b[j].node, p);
		free(p);
		i++;
		j++;
	}
	free(a);
	free(b);
	return rc;
}

int tm_diff(struct tmodel *m, const struct tmodel *o, unsigned flags, char *err,
    size_t errlen)
{
	struct diff d = {
		.m = m, .o = o, .flags = flags, .err = err, .errlen = errlen,
	};
	int rc;

	err[0] = '\0';
	d.pm = xrealloc(NULL, m->nn * sizeof(int));
	d.po = xrealloc(NULL, o->nn * sizeof(int));
	for (size_t i = 0; i < m->nn; i++)
		d.pm[i] = -1;
	for (size_t i = 0; i < o->nn; i++)
		d.po[i] = -1;
	rc = diff_node(&d, m->root, o->root, "");
	if (rc == 0 && (flags & TM_DIFF_ADOPT)) {
		for (size_t i = 0; i < m->nn; i++) {
			if (d.pm[i] < 0)
				continue;
			m->n[i].obj = o->n[d.pm[i]].obj;
			m->n[i].obj_known = true;
		}
	}
	free(d.pm);
	free(d.po);
	return rc;
}

/* -------------------------------------------------------------- recovery */

void tm_journal_start(struct tm_journal *jn, const struct tmodel *base)
{
	memset(jn, 0, sizeof(*jn));
	jn->base = tm_clone(base);
}

void tm_journal_add(struct tm_journal *jn, const struct tm_op *op,
    int expect, uint64_t gen_before, uint64_t gen_after)
{
	if (jn->n == jn->cap) {
		jn->cap = jn->cap ? jn->cap * 2 : 64;
		jn->j = xrealloc(jn->j, jn->cap * sizeof(*jn->j));
	}
	struct tm_jop *e = &jn->j[jn->n++];
	tm_op_copy(&e->op, op);
	e->expect = expect;
	e->gen_before = gen_before;
	e->gen_after = gen_after;
}

void tm_journal_free(struct tm_journal *jn)
{
	for (size_t i = 0; i < jn->n; i++)
		tm_op_clear(&jn->j[i].op);
	free(jn->j);
	tm_free(jn->base);
	memset(jn, 0, sizeof(*jn));
}

/* The object a creating operation returned, if it returned. */
static const struct wafl_obj *jop_out(const struct tm_jop *e)
{
	return e->op.rc == 0 ? &e->op.out : NULL;
}

/* The data, size and mtime of the file at path in src, into dst. */
static void copy_file(struct tmodel *dst, const struct tmodel *src,
    const char *path)
{
	int x = tm_resolve(dst, path), y = tm_resolve(src, path);

	if (x < 0 || y < 0 || dst->n[x].type != WAFL_REG)
		return;
	struct tm_node *d = &dst->n[x];
	const struct tm_node *s = &src->n[y];
	for (size_t i = 0; i < d->nblk; i++)
		free(d->blk[i].data);
	d->nblk = 0;
	for (size_t i = 0; i < s->nblk; i++) {
		if (s->blk[i].data != NULL)
			memcpy(blk_make(d, s->blk[i].idx), s->blk[i].data,
			    TM_BLK);
		else
			blk_mark(d, s->blk[i].idx);
	}
	d->size = s->size;
	d->mtime_known = s->mtime_known;
	d->mtime = s->mtime;
}

/* One operation as NVLOG replay carries it: UNSTABLE writes are not in
 * the log; COMMIT logged the file as memory (full) held it. */
static void replay_apply(struct tmodel *r, const struct tmodel *full,
    const struct tm_jop *e)
{
	if (e->expect != 0)
		return;
	if (e->op.k == TM_WRITE && e->op.stable == WAFL_UNSTABLE)
		return;
	if (e->op.k == TM_COMMIT) {
		copy_file(r, full, e->op.path);
		return;
	}
	(void)tm_apply(r, &e->op, jop_out(e));
}

struct tmodel *tm_recover(const struct tm_journal *jn, uint64_t root_gen,
    size_t must, const struct tmodel *obs, unsigned flags, char *err,
    size_t errlen)
{
	size_t c_lo = 0, c_hi = 0;
	char miss[700] = "";
	static char misses[16][700];	/* tests fail from one thread */
	int tried = 0;

	/* Operations of generations <= root_gen are in the root; gen is
	 * known to a window [before, after] (a CP may freeze during one). */
	for (size_t i = 0; i < jn->n; i++) {
		if (jn->j[i].gen_after <= root_gen)
			c_lo = i + 1;
		if (jn->j[i].gen_before <= root_gen)
			c_hi = i + 1;
	}
	for (size_t c = c_lo; c <= c_hi; c++) {
		struct tmodel *full = tm_clone(jn->base);
		for (size_t i = 0; i < c; i++)
			if (jn->j[i].expect == 0)
				(void)tm_apply(full, &jn->j[i].op,
				    jop_out(&jn->j[i]));
		struct tmodel *r = tm_clone(full);
		for (size_t p = c;; p++) {
			if (p >= must) {
				char e2[512];
				tried++;
				if (tm_diff(r, obs, flags, e2, sizeof(e2)) == 0) {
					tm_free(full);
					return r;
				}
				snprintf(miss, sizeof(miss), "root holds %zu ops, "
				    "log %zu more: %s", c, p - c, e2);
				if (tried <= 16)
					snprintf(misses[tried - 1],
					    sizeof(misses[0]), "%s", miss);
			}
			if (p == jn->n)
				break;
			const struct tm_jop *e = &jn->j[p];
			if (e->expect == 0)
				(void)tm_apply(full, &e->op, jop_out(e));
			replay_apply(r, full, e);
		}
		tm_free(r);
		tm_free(full);
	}
	for (int i = 0; i < tried && i < 16; i++)
		fprintf(stderr, "tl_model: recovery candidate %d: %s\n", i,
		    misses[i]);
	snprintf(err, errlen, "no state of %zu operations (%zu durable, root "
	    "generation %llu holds %zu..%zu of them) matches; %d tried; "
	    "last: %s", jn->n, must, (unsigned long long)root_gen, c_lo, c_hi,
	    tried, miss);
	return NULL;
}
