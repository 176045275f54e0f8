/*
 * admin/proto.c: the control protocol between filerctl and filerd.
 *
 * FORMAT (docs/admin.md, "Control protocol")
 *   Over the unix socket <home>/filerd.sock, one request and one reply per
 *   connection.  Each is a frame: a 4-byte big-endian length, then that
 *   many bytes of UTF-8 text in lines ending with '\n':
 *
 *     request                      reply
 *     FILER/1 request              FILER/1 reply
 *     verb vol create              status 0            (0 ok, 1 error, 2 usage)
 *     a name=vol0                  message volume vol0 created
 *     a disks=4                    t volumes           (starts a table row)
 *     ...                          s name=vol0         (string field)
 *                                  n size=4194304      (number field)
 *                                  b degraded=false    (boolean field)
 *                                  o volume            (starts an object)
 *                                  l disks             (declares a table,
 *                                                       maybe empty)
 *
 *   Requests are at most ADM_REQ_MAX bytes and ADM_REQ_FIELDS fields,
 *   replies at most ADM_REP_MAX bytes.  Keys are [a-z_][a-z0-9_]*, at most
 *   ADM_KEY_MAX - 1 bytes; values hold no control characters (a request
 *   with one is refused; a reply replaces them with '?').
 *
 * HOSTILE INPUT
 *   Both sides check every line of what they receive; a malformed frame
 *   is refused as a whole.  What the fields mean is checked afterwards
 *   against the verb table (verbs.c), field by field.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/adm_impl.h"

/* ------------------------------------------------------------ buffers */

static void buf_reserve(struct adm_buf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->oom || b->len + more + 1 <= b->cap)
		return;
	cap = b->cap == 0 ? 256 : b->cap;
	while (cap < b->len + more + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = true;
		return;
	}
	b->p = p;
	b->cap = cap;
}

void adm_buf_add(struct adm_buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void adm_buf_addf(struct adm_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n);
	if (b->oom)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void adm_buf_free(struct adm_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static bool valid_key(const char *k, size_t n)
{
	if (n == 0 || n >= ADM_KEY_MAX || !((k[0] >= 'a' && k[0] <= 'z') ||
	    k[0] == '_'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') ||
		    (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
			return false;
	return true;
}

/* Append s with control characters replaced: replies never break lines. */
static void add_clean(struct adm_buf *b, const char *s)
{
	size_t n = strlen(s);

	buf_reserve(b, n);
	if (b->oom)
		return;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		b->p[b->len++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	b->p[b->len] = '\0';
}

/* ------------------------------------------------------------ requests */

void adm_req_init(struct adm_req *r, const char *verb)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->verb, sizeof(r->verb), "%s", verb != NULL ? verb : "");
}

int adm_req_set(struct adm_req *r, const char *key, const char *val)
{
	size_t kl = strlen(key);

	if (!valid_key(key, kl) || !adm_valid_text(val, ADM_REQ_MAX / 2))
		return -EINVAL;
	for (size_t i = 0; i < r->n; i++) {
		if (strcmp(r->f[i].key, key) == 0) {
			char *v = strdup(val);

			if (v == NULL)
				return -ENOMEM;
			free(r->f[i].val);
			r->f[i].val = v;
			return 0;
		}
	}
	if (r->n >= ADM_REQ_FIELDS)
		return -E2BIG;
	r->f[r->n].val = strdup(val);
	if (r->f[r->n].val == NULL)
		return -ENOMEM;
	memcpy(r->f[r->n].key, key, kl + 1);
	r->n++;
	return 0;
}

const char *adm_req_get(const struct adm_req *r, const char *key)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->f[i].key, key) == 0)
			return r->f[i].val;
	return NULL;
}

uint64_t adm_req_u64(const struct adm_req *r, const char *key, uint64_t def)
{
	const char *s = adm_req_get(r, key);
	uint64_t v;

	if (s == NULL)
		return def;
	if (adm_parse_u64(s, &v) == 0 || adm_parse_size(s, &v) == 0)
		return v;
	return def;
}

bool adm_req_flag(const struct adm_req *r, const char *key)
{
	const char *s = adm_req_get(r, key);

	return s != NULL && strcmp(s, "true") == 0;
}

void adm_req_free(struct adm_req *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->f[i].val);
	r->n = 0;
}

int adm_req_encode(const struct adm_req *r, struct adm_buf *out)
{
	adm_buf_addf(out, "%s\nverb %s\n", ADM_PROTO_MAGIC_REQ, r->verb);
	for (size_t i = 0; i < r->n; i++)
		adm_buf_addf(out, "a %s=%s\n", r->f[i].key, r->f[i].val);
	if (out->oom)
		return -ENOMEM;
	return out->len > ADM_REQ_MAX ? -E2BIG : 0;
}

static bool valid_verb(const char *s, size_t n)
{
	if (n == 0 || n >= 64 || s[0] == ' ' || s[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == ' ' ||
		    s[i] == '-'))
			return false;
	return true;
}

/* Split p[0..len) into lines; every line must end with '\n'. */
static int next_line(const char **p, const char *end, const char **line,
    size_t *n)
{
	const char *nl;

	if (*p >= end)
		return 0;
	nl = memchr(*p, '\n', (size_t)(end - *p));
	if (nl == NULL)
		return -EPROTO;
	*line = *p;
	*n = (size_t)(nl - *p);
	*p = nl + 1;
	return 1;
}

static bool has_ctl(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

int adm_req_decode(const char *p, size_t len, struct adm_req *r, char *why,
    size_t whylen)
{
	const char *end = p + len, *line;
	size_t n;
	int rc;

	adm_req_init(r, "");
	if (len > ADM_REQ_MAX || memchr(p, '\0', len) != NULL) {
		snprintf(why, whylen, "request too long or holds NUL bytes");
		return -EPROTO;
	}
	if (next_line(&p, end, &line, &n) != 1 ||
	    n != strlen(ADM_PROTO_MAGIC_REQ) ||
	    memcmp(line, ADM_PROTO_MAGIC_REQ, n) != 0) {
		snprintf(why, whylen, "not a FILER/1 request");
		return -EPROTO;
	}
	if (next_line(&p, end, &line, &n) != 1 || n < 6 ||
	    memcmp(line, "verb ", 5) != 0 || !valid_verb(line + 5, n - 5)) {
		snprintf(why, whylen, "missing or malformed verb line");
		return -EPROTO;
	}
	memcpy(r->verb, line + 5, n - 5);
	r->verb[n - 5] = '\0';
	while ((rc = next_line(&p, end, &line, &n)) == 1) {
		const char *eq;
		char key[ADM_KEY_MAX];
		char *val;

		eq = n > 2 ? memchr(line, '=', n) : NULL;
		if (n < 4 || memcmp(line, "a ", 2) != 0 || eq == NULL ||
		    !valid_key(line + 2, (size_t)(eq - line - 2)) ||
		    has_ctl(line, n)) {
			snprintf(why, whylen, "malformed field line");
			goto bad;
		}
		memcpy(key, line + 2, (size_t)(eq - line - 2));
		key[eq - line - 2] = '\0';
		if (adm_req_get(r, key) != NULL) {
			snprintf(why, whylen, "field '%s' given twice", key);
			goto bad;
		}
		val = strndup(eq + 1, (size_t)(line + n - eq - 1));
		if (val == NULL || r->n >= ADM_REQ_FIELDS) {
			free(val);
			snprintf(why, whylen, "too many fields");
			goto bad;
		}
		memcpy(r->f[r->n].key, key, sizeof(key));
		r->f[r->n].val = val;
		r->n++;
	}
	if (rc < 0) {
		snprintf(why, whylen, "request does not end with a newline");
		goto bad;
	}
	return 0;
bad:
	adm_req_free(r);
	return -EPROTO;
}

/* ------------------------------------------------------------ replies */

void adm_rep_init(struct adm_rep *r)
{
	memset(r, 0, sizeof(*r));
}

void adm_rep_free(struct adm_rep *r)
{
	adm_buf_free(&r->body);
}

int adm_fail(struct adm_rep *r, int status, const char *fmt, ...)
{
	va_list ap;

	r->status = status;
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
	return status;
}

void adm_say(struct adm_rep *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
}

void adm_rep_list(struct adm_rep *r, const char *table)
{
	adm_buf_addf(&r->body, "l %s\n", table);
}

void adm_rep_row(struct adm_rep *r, const char *table)
{
	adm_buf_addf(&r->body, "t %s\n", table);
}

void adm_rep_obj(struct adm_rep *r, const char *name)
{
	adm_buf_addf(&r->body, "o %s\n", name);
}

void adm_rep_str(struct adm_rep *r, const char *key, const char *val)
{
	adm_buf_addf(&r->body, "s %s=", key);
	add_clean(&r->body, val != NULL ? val : "");
	adm_buf_add(&r->body, "\n", 1);
}

void adm_rep_u64(struct adm_rep *r, const char *key, uint64_t val)
{
	adm_buf_addf(&r->body, "n %s=%" PRIu64 "\n", key, val);
}

void adm_rep_i64(struct adm_rep *r, const char *key, int64_t val)
{
	adm_buf_addf(&r->body, "n %s=%" PRId64 "\n", key, val);
}

void adm_rep_dbl(struct adm_rep *r, const char *key, double val)
{
	adm_buf_addf(&r->body, "n %s=%.3f\n", key, val);
}

void adm_rep_bool(struct adm_rep *r, const char *key, bool val)
{
	adm_buf_addf(&r->body, "b %s=%s\n", key, val ? "true" : "false");
}

int adm_rep_encode(const struct adm_rep *r, struct adm_buf *out)
{
	adm_buf_addf(out, "%s\nstatus %d\nmessage ", ADM_PROTO_MAGIC_REP,
	    r->status);
	add_clean(out, r->message);
	adm_buf_add(out, "\n", 1);
	if (r->body.len > 0)
		adm_buf_add(out, r->body.p, r->body.len);
	if (out->oom || r->body.oom)
		return -ENOMEM;
	return out->len > ADM_REP_MAX ? -E2BIG : 0;
}

void adm_rep_encode_bounded(const struct adm_rep *r, struct adm_buf *out)
{
	struct adm_rep small;
	int rc = adm_rep_encode(r, out);

	if (rc == 0)
		return;
	adm_buf_free(out);
	adm_rep_init(&small);
	if (rc == -E2BIG)
		adm_fail(&small, ADM_ERR, "the reply is too large; narrow the "
		    "request (e.g. events --limit)");
	else
		adm_fail(&small, ADM_ERR, "out of memory for the reply");
	(void)adm_rep_encode(&small, out);
	adm_rep_free(&small);
}

void adm_reply_free(struct adm_reply *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->items[i].key);
		free(r->items[i].val);
	}
	free(r->items);
	free(r->message);
	memset(r, 0, sizeof(*r));
}

/* A JSON number without an exponent, -?(0|[1-9][0-9]*)(\.[0-9]+)?, the
 * shape adm_rep_* write: --json passes it on as it is. */
static bool valid_number(const char *s, size_t n)
{
	size_t i = 0;

	if (i < n && s[i] == '-')
		i++;
	if (i >= n || s[i] < '0' || s[i] > '9')
		return false;
	if (s[i] == '0')
		i++;
	else
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	if (i < n && s[i] == '.') {
		i++;
		if (i >= n || s[i] < '0' || s[i] > '9')
			return false;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	return i == n;
}

int adm_reply_decode(const char *p, size_t len, struct adm_reply *r)
{
	const char *end = p + len, *line;
	size_t n, cap = 0;
	bool in_rec = false;
	int rc;

	memset(r, 0, sizeof(*r));
	if (memchr(p, '\0', len) != NULL ||
	    next_line(&p, end, &line, &n) != 1 ||
	    n != strlen(ADM_PROTO_MAGIC_REP) ||
	    memcmp(line, ADM_PROTO_MAGIC_REP, n) != 0)
		return -EPROTO;
	if (next_line(&p, end, &line, &n) != 1 || n != 8 ||
	    memcmp(line, "status ", 7) != 0 || line[7] < '0' ||
	    line[7] > '2')
		return -EPROTO;
	r->status = line[7] - '0';
	if (next_line(&p, end, &line, &n) != 1 || n < 8 ||
	    memcmp(line, "message ", 8) != 0)
		return -EPROTO;
	r->message = strndup(line + 8, n - 8);
	if (r->message == NULL)
		return -ENOMEM;
	while ((rc = next_line(&p, end, &line, &n)) == 1) {
		struct adm_item it;
		const char *eq;

		memset(&it, 0, sizeof(it));
		if (n < 3 || line[1] != ' ' || has_ctl(line, n))
			goto bad;
		if (line[0] == 't' || line[0] == 'o' || line[0] == 'l') {
			if (!valid_key(line + 2, n - 2))
				goto bad;
			it.kind = line[0] == 't' ? ADM_IT_ROW :
			    line[0] == 'o' ? ADM_IT_OBJ : ADM_IT_LIST;
			in_rec = it.kind != ADM_IT_LIST;
			it.key = strndup(line + 2, n - 2);
		} else {
			eq = memchr(line, '=', n);
			if (eq == NULL || !valid_key(line + 2,
			    (size_t)(eq - line - 2)))
				goto bad;
			switch (line[0]) {
			case 's': it.kind = ADM_IT_STR; break;
			case 'n': it.kind = ADM_IT_NUM; break;
			case 'b': it.kind = ADM_IT_BOOL; break;
			default: goto bad;
			}
			it.key = strndup(line + 2, (size_t)(eq - line - 2));
			it.val = strndup(eq + 1, (size_t)(line + n - eq - 1));
			if (it.val == NULL)
				goto oom;
			if (it.kind == ADM_IT_NUM &&
			    !valid_number(it.val, strlen(it.val)))
				goto bad_it;
			if (it.kind == ADM_IT_BOOL &&
			    strcmp(it.val, "true") != 0 &&
			    strcmp(it.val, "false") != 0)
				goto bad_it;
			/* Fields only after a row or object header. */
			if (!in_rec)
				goto bad_it;
		}
		if (it.key == NULL)
			goto oom;
		if (r->n == cap) {
			size_t ncap = cap == 0 ? 64 : cap * 2;
			struct adm_item *ni = realloc(r->items,
			    ncap * sizeof(*ni));

			if (ni == NULL)
				goto oom;
			r->items = ni;
			cap = ncap;
		}
		r->items[r->n++] = it;
		continue;
bad_it:
		free(it.key);
		free(it.val);
		goto bad;
oom:
		free(it.key);
		free(it.val);
		adm_reply_free(r);
		return -ENOMEM;
	}
	if (rc < 0)
		goto bad;
	return 0;
bad:
	adm_reply_free(r);
	return -EPROTO;
}

/* ------------------------------------------------------------- frames */

static int write_all(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len > 0) {
		ssize_t w = write(fd, c, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += w;
		len -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t len)
{
	char *c = p;

	while (len > 0) {
		ssize_t r = read(fd, c, len);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EPIPE;
		c += r;
		len -= (size_t)r;
	}
	return 0;
}

int adm_frame_write(int fd, const void *p, size_t len)
{
	uint8_t hdr[4] = {
		(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
		(uint8_t)len,
	};
	int rc;

	if (len > UINT32_MAX)
		return -E2BIG;
	rc = write_all(fd, hdr, sizeof(hdr));
	return rc != 0 ? rc : write_all(fd, p, len);
}

int adm_frame_read(int fd, size_t max, char **out, size_t *lenp)
{
	uint8_t hdr[4];
	size_t len;
	char *p;
	int rc;

	*out = NULL;
	rc = read_all(fd, hdr, sizeof(hdr));
	if (rc != 0)
		return rc;
	len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 |
	    (size_t)hdr[2] << 8 | hdr[3];
	if (len > max)
		return -EMSGSIZE;
	p = malloc(len + 1);
	if (p == NULL)
		return -ENOMEM;
	rc = read_all(fd, p, len);
	if (rc != 0) {
		free(p);
		return rc;
	}
	p[len] = '\0';
	*out = p;
	*lenp = len;
	return 0;
}
