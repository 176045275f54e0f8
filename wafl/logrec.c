/*
 * wafl/logrec.c: NVLOG record payloads of the operation layer (formats in
 * logrec.h) and their replay.
 *
 * Encoding and decoding go through a cursor over the payload; the decoder
 * checks every length against what is left and against the name limits, so
 * a damaged record (nvlog already verified its crc, but this code does not
 * trust that alone) is refused with -FL_ECORRUPT and never read past its
 * end.  Replay hands the decoded record to the same apply functions the
 * live operations use (ops_ns.c, ops_data.c), with the recorded choices.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "wafl/logrec.h"
#include "wafl/ops.h"

struct wcur {
	uint8_t *p;
	uint32_t off;
};

static void w64(struct wcur *c, uint64_t x)
{
	fl_put_le64(c->p + c->off, x);
	c->off += 8;
}

static void w32(struct wcur *c, uint32_t x)
{
	fl_put_le32(c->p + c->off, x);
	c->off += 4;
}

static void w16(struct wcur *c, uint16_t x)
{
	fl_put_le16(c->p + c->off, x);
	c->off += 2;
}

static void wbytes(struct wcur *c, const void *s, size_t n)
{
	if (n > 0)
		memcpy(c->p + c->off, s, n);
	c->off += (uint32_t)n;
}

struct rcur {
	const uint8_t *p;
	uint32_t len, off;
	bool bad;
};

static bool rneed(struct rcur *c, uint32_t n)
{
	if (c->bad || c->len - c->off < n) {
		c->bad = true;
		return false;
	}
	return true;
}

static uint64_t r64(struct rcur *c)
{
	uint64_t x = 0;

	if (rneed(c, 8))
		x = fl_get_le64(c->p + c->off);
	c->off += c->bad ? 0 : 8;
	return x;
}

static uint32_t r32(struct rcur *c)
{
	uint32_t x = 0;

	if (rneed(c, 4))
		x = fl_get_le32(c->p + c->off);
	c->off += c->bad ? 0 : 4;
	return x;
}

static uint16_t r16(struct rcur *c)
{
	uint16_t x = 0;

	if (rneed(c, 2))
		x = fl_get_le16(c->p + c->off);
	c->off += c->bad ? 0 : 2;
	return x;
}

/* Copy a name of n bytes into buf (max bytes + NUL); names must not hold
 * '/' or NUL, targets must not hold NUL. */
static void rname(struct rcur *c, uint32_t n, uint32_t max, bool is_name,
    char *buf)
{
	if (n > max || (is_name && n == 0) || !rneed(c, n)) {
		c->bad = true;
		buf[0] = '\0';
		return;
	}
	memcpy(buf, c->p + c->off, n);
	buf[n] = '\0';
	c->off += n;
	if (memchr(buf, '\0', n) != NULL ||
	    (is_name && memchr(buf, '/', n) != NULL))
		c->bad = true;
}

static int rdone(struct rcur *c)
{
	if (c->bad || c->off != c->len)
		return FL_ERR(-FL_ECORRUPT);
	return 0;
}

/* ------------------------------------------------------------ MAKE */

uint32_t rec_make_encode(uint8_t *buf, const struct rec_make *r)
{
	struct wcur c = { buf, 0 };
	size_t nl = strlen(r->name);
	size_t tl = r->target != NULL ? strlen(r->target) : 0;

	w64(&c, r->dir);
	w64(&c, r->ino);
	w32(&c, r->gen);
	w32(&c, r->mode);
	w64(&c, r->key);
	w32(&c, r->uid);
	w32(&c, r->gid);
	w32(&c, r->rdev_major);
	w32(&c, r->rdev_minor);
	w32(&c, r->flags);
	w32(&c, 0);
	w64(&c, r->size);
	w64(&c, r->verifier);
	w64(&c, r->atime);
	w64(&c, r->mtime);
	w64(&c, r->ctime);
	w16(&c, (uint16_t)nl);
	w16(&c, (uint16_t)tl);
	wbytes(&c, r->name, nl);
	wbytes(&c, r->target, tl);
	return c.off;
}

int rec_make_decode(const uint8_t *p, uint32_t len, struct rec_make *r)
{
	struct rcur c = { p, len, 0, false };

	r->dir = r64(&c);
	r->ino = r64(&c);
	r->gen = r32(&c);
	r->mode = r32(&c);
	r->key = r64(&c);
	r->uid = r32(&c);
	r->gid = r32(&c);
	r->rdev_major = r32(&c);
	r->rdev_minor = r32(&c);
	r->flags = r32(&c);
	if (r32(&c) != 0)
		c.bad = true;
	r->size = r64(&c);
	r->verifier = r64(&c);
	r->atime = r64(&c);
	r->mtime = r64(&c);
	r->ctime = r64(&c);
	uint16_t nl = r16(&c), tl = r16(&c);
	rname(&c, nl, WAFL_NAME_MAX, true, r->namebuf);
	r->name = r->namebuf;
	r->target = NULL;
	if (!c.bad && (r->mode & S_IFMT) == S_IFLNK) {
		if (tl == 0)
			c.bad = true;
		rname(&c, tl, WAFL_PATH_MAX, false, r->targetbuf);
		r->target = r->targetbuf;
	} else if (tl != 0) {
		c.bad = true;
	}
	return rdone(&c);
}

/* ---------------------------------------------------------- REMOVE */

uint32_t rec_remove_encode(uint8_t *buf, const struct rec_remove *r)
{
	struct wcur c = { buf, 0 };
	size_t nl = strlen(r->name);

	w64(&c, r->dir);
	w64(&c, r->ino);
	w64(&c, r->ctime);
	w32(&c, r->flags);
	w16(&c, (uint16_t)nl);
	wbytes(&c, r->name, nl);
	return c.off;
}

int rec_remove_decode(const uint8_t *p, uint32_t len, struct rec_remove *r)
{
	struct rcur c = { p, len, 0, false };

	r->dir = r64(&c);
	r->ino = r64(&c);
	r->ctime = r64(&c);
	r->flags = r32(&c);
	if (r->flags & ~REC_REMOVE_RMDIR)
		c.bad = true;
	uint16_t nl = r16(&c);
	rname(&c, nl, WAFL_NAME_MAX, true, r->namebuf);
	r->name = r->namebuf;
	return rdone(&c);
}

/* ---------------------------------------------------------- RENAME */

uint32_t rec_rename_encode(uint8_t *buf, const struct rec_rename *r)
{
	struct wcur c = { buf, 0 };
	size_t fl = strlen(r->fromname), tl = strlen(r->toname);

	w64(&c, r->fromdir);
	w64(&c, r->todir);
	w64(&c, r->ino);
	w64(&c, r->tino);
	w64(&c, r->key);
	w64(&c, r->ctime);
	w16(&c, (uint16_t)fl);
	w16(&c, (uint16_t)tl);
	wbytes(&c, r->fromname, fl);
	wbytes(&c, r->toname, tl);
	return c.off;
}

int rec_rename_decode(const uint8_t *p, uint32_t len, struct rec_rename *r)
{
	struct rcur c = { p, len, 0, false };

	r->fromdir = r64(&c);
	r->todir = r64(&c);
	r->ino = r64(&c);
	r->tino = r64(&c);
	r->key = r64(&c);
	r->ctime = r64(&c);
	uint16_t fl = r16(&c), tl = r16(&c);
	rname(&c, fl, WAFL_NAME_MAX, true, r->frombuf);
	rname(&c, tl, WAFL_NAME_MAX, true, r->tobuf);
	r->fromname = r->frombuf;
	r->toname = r->tobuf;
	return rdone(&c);
}

/* ------------------------------------------------------------ LINK */

uint32_t rec_link_encode(uint8_t *buf, const struct rec_link *r)
{
	struct wcur c = { buf, 0 };
	size_t nl = strlen(r->name);

	w64(&c, r->ino);
	w32(&c, r->gen);
	w32(&c, 0);
	w64(&c, r->dir);
	w64(&c, r->key);
	w64(&c, r->ctime);
	w16(&c, (uint16_t)nl);
	wbytes(&c, r->name, nl);
	return c.off;
}

int rec_link_decode(const uint8_t *p, uint32_t len, struct rec_link *r)
{
	struct rcur c = { p, len, 0, false };

	r->ino = r64(&c);
	r->gen = r32(&c);
	if (r32(&c) != 0)
		c.bad = true;
	r->dir = r64(&c);
	r->key = r64(&c);
	r->ctime = r64(&c);
	uint16_t nl = r16(&c);
	rname(&c, nl, WAFL_NAME_MAX, true, r->namebuf);
	r->name = r->namebuf;
	return rdone(&c);
}

/* --------------------------------------------------------- SETATTR */

uint32_t rec_setattr_encode(uint8_t *buf, const struct rec_setattr *r)
{
	struct wcur c = { buf, 0 };

	w64(&c, r->ino);
	w32(&c, r->gen);
	w32(&c, r->mask);
	w32(&c, r->mode);
	w32(&c, r->uid);
	w32(&c, r->gid);
	w32(&c, 0);
	w64(&c, r->size);
	w64(&c, r->atime);
	w64(&c, r->mtime);
	w64(&c, r->ctime);
	return c.off;
}

int rec_setattr_decode(const uint8_t *p, uint32_t len, struct rec_setattr *r)
{
	struct rcur c = { p, len, 0, false };

	r->ino = r64(&c);
	r->gen = r32(&c);
	r->mask = r32(&c);
	r->mode = r32(&c);
	r->uid = r32(&c);
	r->gid = r32(&c);
	if (r32(&c) != 0 || (r->mask & ~REC_SA_ALL) || (r->mode & ~07777u))
		c.bad = true;
	r->size = r64(&c);
	r->atime = r64(&c);
	r->mtime = r64(&c);
	r->ctime = r64(&c);
	if (r->size > WAFL_MAX_FILE_SIZE)
		c.bad = true;
	return rdone(&c);
}

/* ----------------------------------------------------------- WRITE */

uint32_t rec_write_encode(uint8_t *buf, const struct rec_write *r)
{
	struct wcur c = { buf, 0 };

	w64(&c, r->ino);
	w32(&c, r->gen);
	w32(&c, r->len);
	w64(&c, r->off);
	w64(&c, r->mtime);
	return c.off;
}

int rec_write_decode(const uint8_t *p, uint32_t len, struct rec_write *r)
{
	struct rcur c = { p, len, 0, false };

	r->ino = r64(&c);
	r->gen = r32(&c);
	r->len = r32(&c);
	r->off = r64(&c);
	r->mtime = r64(&c);
	if (!c.bad && (len - c.off != r->len ||
	    r->off > WAFL_MAX_FILE_SIZE ||
	    r->len > WAFL_MAX_FILE_SIZE - r->off))
		c.bad = true;
	r->data = c.bad ? NULL : p + c.off;
	c.off = c.bad ? c.off : len;
	return rdone(&c);
}

/* ---------------------------------------------------------- replay */

int wafl_replay_record(struct wafl_vol *v, uint16_t type, const void *payload,
    uint32_t len)
{
	union {
		struct rec_make mk;
		struct rec_remove rm;
		struct rec_rename rn;
		struct rec_link ln;
		struct rec_setattr sa;
		struct rec_write wr;
	} *u = malloc(sizeof(*u));
	const uint8_t *p = payload;
	int rc;

	if (u == NULL)
		return -ENOMEM;
	switch (type) {
	case REC_MAKE:
		rc = rec_make_decode(p, len, &u->mk);
		if (rc == 0)
			rc = ops_replay_make(v, &u->mk);
		break;
	case REC_REMOVE:
		rc = rec_remove_decode(p, len, &u->rm);
		if (rc == 0)
			rc = ops_replay_remove(v, &u->rm);
		break;
	case REC_RENAME:
		rc = rec_rename_decode(p, len, &u->rn);
		if (rc == 0)
			rc = ops_replay_rename(v, &u->rn);
		break;
	case REC_LINK:
		rc = rec_link_decode(p, len, &u->ln);
		if (rc == 0)
			rc = ops_replay_link(v, &u->ln);
		break;
	case REC_SETATTR:
		rc = rec_setattr_decode(p, len, &u->sa);
		if (rc == 0)
			rc = ops_replay_setattr(v, &u->sa);
		break;
	case REC_WRITE:
		rc = rec_write_decode(p, len, &u->wr);
		if (rc == 0)
			rc = ops_replay_write(v, &u->wr);
		break;
	default:
		fl_err("wafl", "NVLOG replay: unknown record type %u", type);
		rc = FL_ERR(-FL_ECORRUPT);
		break;
	}
	free(u);
	return rc;
}
