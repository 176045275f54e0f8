/*
 * admin/cli.c: filerctl.
 *
 *   filerctl [--home DIR] [--json] VERB [ARGS...]
 *
 * argv becomes a request by the verb table (verbs.c) and is checked by it
 * before anything is sent: usage errors exit 2 without touching filerd.
 * The request goes to filerd over <home>/filerd.sock.  When no filerd runs
 * (no socket, or nobody listening), a verb that makes sense offline runs
 * here against the database, under the home lock (A3) and through the same
 * handlers filerd uses; any other verb says how to start filerd.
 *
 * The reply is printed as tables and "key: value" blocks, or with --json
 * as one JSON object: {"status": 0, "message": "...", <tables as arrays>,
 * <objects as objects>}.  Exit status: 0 ok, 1 error, 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "admin/adm_impl.h"
#include "common/log.h"

struct cli {
	const char *home;
	bool json;
	uint32_t timeout_s;	/* give up on a filerd silent this long */
};

static void print_verbs(FILE *f, const char *prefix)
{
	const struct adm_verb *v;

	for (size_t i = 0; (v = adm_verb_at(i)) != NULL; i++) {
		if (prefix != NULL && strncmp(v->words, prefix,
		    strlen(prefix)) != 0)
			continue;
		fprintf(f, "  %-16s %s\n", v->words, v->summary);
	}
}

static void usage_main(FILE *f)
{
	fprintf(f, "usage: filerctl [--home DIR] [--json] VERB [ARGS...]\n\n"
	    "Manage the filer appliance through filerd (see filerctl(8)).\n\n"
	    "  --home DIR   filerd's home (default $FILER_HOME or %s)\n"
	    "  --json       print the reply as JSON\n\n"
	    "Verbs (filerctl VERB --help for each):\n", ADM_DEFAULT_HOME);
	print_verbs(f, NULL);
}

/* Longest verb whose words start argv; *used gets how many words. */
static const struct adm_verb *match_verb(int argc, char **argv, int *used)
{
	char words[64] = "";
	const struct adm_verb *best = NULL;

	for (int i = 0; i < argc && i < 3; i++) {
		const struct adm_verb *v;

		if (argv[i][0] == '-' || strlen(words) + strlen(argv[i]) + 2 >
		    sizeof(words))
			break;
		if (i > 0)
			strcat(words, " ");
		strcat(words, argv[i]);
		v = adm_verb_find(words);
		if (v != NULL && !(v->flags & ADM_V_LOCAL)) {
			best = v;
			*used = i + 1;
		}
	}
	return best;
}

static bool is_group(int argc, char **argv)
{
	const struct adm_verb *v;
	size_t n = strlen(argv[0]);

	(void)argc;
	for (size_t i = 0; (v = adm_verb_at(i)) != NULL; i++)
		if (strncmp(v->words, argv[0], n) == 0 && v->words[n] == ' ')
			return true;
	return false;
}

static void json_str(FILE *f, const char *s);

/* A reply object for an error filerctl finds itself, on stdout. */
static void json_error(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void json_error(int status, const char *fmt, ...)
{
	char msg[ADM_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("{\"status\": %d, \"message\": ", status);
	json_str(stdout, msg);
	printf("}\n");
	fflush(stdout);
}

/* An error filerctl finds itself (no reply from filerd to show): on
 * stderr, and with --json as a reply object on stdout too, so that a
 * script reading stdout gets one whatever went wrong.  Returns status. */
static int cli_error(const struct cli *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cli_error(const struct cli *c, int status, const char *fmt, ...)
{
	char msg[ADM_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->json)
		json_error(status, "%s", msg);
	fprintf(stderr, "filerctl: %s\n", msg);
	return status;
}

static int usage_error(const struct cli *c, const struct adm_verb *v,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int usage_error(const struct cli *c, const struct adm_verb *v,
    const char *fmt, ...)
{
	char msg[ADM_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)cli_error(c, ADM_USAGE, "%s", msg);
	if (v != NULL)
		fprintf(stderr, "see: filerctl %s --help\n", v->words);
	return ADM_USAGE;
}

/* argv (after the verb's words) to fields, by the verb's table. */
static int parse_args(const struct cli *c, const struct adm_verb *v,
    int argc, char **argv, struct adm_req *req)
{
	const struct adm_arg *pos[8];
	size_t npos = 0, ipos = 0;

	for (const struct adm_arg *a = v->args; a != NULL && a->name != NULL;
	    a++)
		if ((a->flags & ADM_ARG_POS) && npos < 8)
			pos[npos++] = a;
	for (int i = 0; i < argc; i++) {
		const char *s = argv[i];

		if (strncmp(s, "--", 2) == 0 && s[2] != '\0') {
			char name[ADM_KEY_MAX];
			const char *eq = strchr(s + 2, '=');
			const char *val = NULL;
			size_t nl = eq != NULL ? (size_t)(eq - s - 2) :
			    strlen(s + 2);
			const struct adm_arg *a;

			if (nl == 0 || nl >= sizeof(name))
				return usage_error(c, v, "unknown option %s",
				    s);
			memcpy(name, s + 2, nl);
			name[nl] = '\0';
			for (char *ch = name; *ch != '\0'; ch++)
				if (*ch == '-')
					*ch = '_';
			a = adm_verb_arg(v, name);
			if (a == NULL || (a->flags & ADM_ARG_POS))
				return usage_error(c, v, "%s: unknown option %s",
				    v->words, s);
			if (a->type == ADM_A_FLAG || a->type == ADM_A_ALIAS) {
				if (eq != NULL)
					return usage_error(c, v, "%s takes no "
					    "value", s);
				if (a->type == ADM_A_ALIAS) {
					/* --rw --ro, --secure yes --insecure:
					 * the last one must not win quietly. */
					if (adm_req_get(req, a->target) !=
					    NULL)
						return usage_error(c, v,
						    "%s sets --%s, which is "
						    "given already", s,
						    a->target);
					if (adm_req_set(req, a->target,
					    a->choices) != 0)
						return usage_error(c, v,
						    "bad %s", s);
					continue;
				}
				val = "true";
			} else if (eq != NULL) {
				val = eq + 1;
			} else if (i + 1 < argc) {
				val = argv[++i];
			} else {
				return usage_error(c, v, "%s needs a value", s);
			}
			if (adm_req_get(req, a->name) != NULL)
				return usage_error(c, v, "--%s given twice (or "
				    "with a flag that sets it)", a->name);
			if (adm_req_set(req, a->name, val) != 0)
				return usage_error(c, v, "%s: the value holds "
				    "control characters or is too long", s);
			continue;
		}
		if (ipos >= npos)
			return usage_error(c, v, "%s: unexpected argument '%s'",
			    v->words, s);
		if (adm_req_set(req, pos[ipos]->name, s) != 0)
			return usage_error(c, v, "'%s': the value holds control "
			    "characters or is too long", s);
		ipos++;
	}
	return ADM_OK;
}

/* ------------------------------------------------------------ output */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';
	    p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void json_fields(FILE *f, const struct adm_reply *r, size_t i)
{
	bool first = true;

	fputc('{', f);
	for (size_t k = i + 1; k < r->n && r->items[k].kind >= ADM_IT_STR;
	    k++) {
		const struct adm_item *it = &r->items[k];

		fprintf(f, "%s", first ? "" : ", ");
		first = false;
		json_str(f, it->key);
		fprintf(f, ": ");
		if (it->kind == ADM_IT_STR)
			json_str(f, it->val);
		else
			fputs(it->val, f);
	}
	fputc('}', f);
}

static bool seen_before(const struct adm_reply *r, size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (r->items[k].kind <= ADM_IT_OBJ &&
		    strcmp(r->items[k].key, r->items[i].key) == 0)
			return true;
	return false;
}

static void print_json(FILE *f, const struct adm_reply *r)
{
	fprintf(f, "{\"status\": %d, \"message\": ", r->status);
	json_str(f, r->message);
	for (size_t i = 0; i < r->n; i++) {
		const struct adm_item *it = &r->items[i];
		bool first = true;

		if (it->kind > ADM_IT_OBJ || seen_before(r, i))
			continue;
		fprintf(f, ", ");
		json_str(f, it->key);
		fprintf(f, ": ");
		if (it->kind == ADM_IT_OBJ) {
			json_fields(f, r, i);
			continue;
		}
		fputc('[', f);
		for (size_t k = i; k < r->n; k++) {
			if (r->items[k].kind != ADM_IT_ROW ||
			    strcmp(r->items[k].key, it->key) != 0)
				continue;
			fprintf(f, "%s", first ? "" : ", ");
			first = false;
			json_fields(f, r, k);
		}
		fputc(']', f);
	}
	fprintf(f, "}\n");
}

/* Human form of a value: sizes for *_bytes. */
static void human_val(const struct adm_item *it, char *out, size_t len)
{
	size_t kl = strlen(it->key);
	uint64_t u;

	if (it->kind == ADM_IT_NUM && kl > 6 &&
	    strcmp(it->key + kl - 6, "_bytes") == 0 &&
	    adm_parse_u64(it->val, &u) == 0) {
		adm_fmt_size(u, out, len);
		return;
	}
	snprintf(out, len, "%s", it->val[0] != '\0' ? it->val : "-");
}

#define MAX_COLS 64

static void print_table(FILE *f, const struct adm_reply *r, const char *name)
{
	const char *cols[MAX_COLS];
	size_t width[MAX_COLS], ncols = 0, nrows = 0;
	char val[512];

	/* Columns: keys in order of first appearance. */
	for (size_t i = 0; i < r->n; i++) {
		if (r->items[i].kind != ADM_IT_ROW ||
		    strcmp(r->items[i].key, name) != 0)
			continue;
		nrows++;
		for (size_t k = i + 1; k < r->n &&
		    r->items[k].kind >= ADM_IT_STR; k++) {
			size_t c;
			size_t w;

			for (c = 0; c < ncols; c++)
				if (strcmp(cols[c], r->items[k].key) == 0)
					break;
			if (c == ncols) {
				if (ncols == MAX_COLS)
					continue;
				cols[ncols] = r->items[k].key;
				width[ncols++] = strlen(r->items[k].key);
			}
			human_val(&r->items[k], val, sizeof(val));
			w = strlen(val);
			if (w > width[c])
				width[c] = w;
		}
	}
	if (nrows == 0) {
		fprintf(f, "no %s\n", name);
		return;
	}
	for (size_t c = 0; c < ncols; c++) {
		for (const char *p = cols[c]; *p != '\0'; p++)
			fputc(*p >= 'a' && *p <= 'z' ? *p - 32 : *p, f);
		if (c + 1 < ncols)
			fprintf(f, "%*s", (int)(width[c] - strlen(cols[c]) + 2),
			    "");
	}
	fputc('\n', f);
	for (size_t i = 0; i < r->n; i++) {
		if (r->items[i].kind != ADM_IT_ROW ||
		    strcmp(r->items[i].key, name) != 0)
			continue;
		for (size_t c = 0; c < ncols; c++) {
			snprintf(val, sizeof(val), "-");
			for (size_t k = i + 1; k < r->n &&
			    r->items[k].kind >= ADM_IT_STR; k++)
				if (strcmp(r->items[k].key, cols[c]) == 0)
					human_val(&r->items[k], val,
					    sizeof(val));
			if (c + 1 < ncols)
				fprintf(f, "%-*s  ", (int)width[c], val);
			else
				fprintf(f, "%s", val);
		}
		fputc('\n', f);
	}
}

static void print_human(FILE *f, const struct adm_reply *r)
{
	bool any = false, shown = false;	/* shown: a table or object */

	if (r->message[0] != '\0') {
		fprintf(f, "%s\n", r->message);
		any = true;
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct adm_item *it = &r->items[i];
		size_t kw = 0;
		char val[512];

		if (it->kind > ADM_IT_OBJ || seen_before(r, i))
			continue;
		if (any)
			fputc('\n', f);
		any = true;
		if (it->kind != ADM_IT_OBJ) {
			print_table(f, r, it->key);
			shown = true;
			continue;
		}
		/* An object after a table or another object says what it
		 * is ("nfs:" after the volumes' counters). */
		if (shown)
			fprintf(f, "%s:\n", it->key);
		shown = true;
		for (size_t k = i + 1; k < r->n &&
		    r->items[k].kind >= ADM_IT_STR; k++)
			if (strlen(r->items[k].key) > kw)
				kw = strlen(r->items[k].key);
		for (size_t k = i + 1; k < r->n &&
		    r->items[k].kind >= ADM_IT_STR; k++) {
			human_val(&r->items[k], val, sizeof(val));
			fprintf(f, "%-*s  %s\n", (int)kw + 1, r->items[k].key,
			    val);
		}
	}
}

static int show(const struct cli *c, const struct adm_reply *r)
{
	if (c->json)
		print_json(stdout, r);
	if (r->status != ADM_OK) {
		fprintf(stderr, "filerctl: %s\n", r->message);
		return r->status;
	}
	if (!c->json)
		print_human(stdout, r);
	return ADM_OK;
}

/* -------------------------------------------------------- transports */

/* 0 with *fd connected; -ENOENT/-ECONNREFUSED: nobody listens. */
static int connect_home(const char *sock_path, int *fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s;

	if (strlen(sock_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;

		close(s);
		return -e;
	}
	*fd = s;
	return 0;
}

/*
 * filerctl gives up on a filerd that sends nothing for this long
 * ($FILERCTL_TIMEOUT_S overrides it, 1 to 86400).  A request that runs
 * long (a check) is sent an empty frame every 30 s meanwhile
 * (adm_jobs_keepalive), so the limit counts silence, not the work.
 */
#define REPLY_TIMEOUT_S	600

static int via_socket(const struct cli *c, int fd, const struct adm_req *req)
{
	unsigned limit = c->timeout_s;
	struct timeval tv = { .tv_sec = limit };
	struct adm_buf out = { 0 };
	struct adm_reply r;
	char *in = NULL;
	size_t len = 0;
	int rc, st;

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	rc = adm_req_encode(req, &out);
	if (rc == 0)
		rc = adm_frame_write(fd, out.p, out.len);
	adm_buf_free(&out);
	/* Empty frames: the request is still running there. */
	while (rc == 0) {
		rc = adm_frame_read(fd, ADM_REP_MAX, &in, &len);
		if (rc != 0 || len > 0)
			break;
		free(in);
		in = NULL;
	}
	if (rc == -EAGAIN || rc == -EWOULDBLOCK)
		return cli_error(c, ADM_ERR, "filerd sent nothing for %u s; "
		    "gave up waiting (the request may still run there: see "
		    "its log, journalctl -u filerd, or stderr with "
		    "--foreground)", limit);
	if (rc != 0)
		return cli_error(c, ADM_ERR, "lost the connection to filerd: "
		    "%s; see its log (journalctl -u filerd, or stderr with "
		    "--foreground)", strerror(rc == -EPIPE ? EPIPE : -rc));
	rc = adm_reply_decode(in, len, &r);
	free(in);
	if (rc != 0)
		return cli_error(c, ADM_ERR, "malformed reply from filerd");
	st = show(c, &r);
	adm_reply_free(&r);
	return st;
}

static void no_config(struct adm_rep *rep, const struct adm_ctx *ctx)
{
	adm_fail(rep, ADM_ERR, "%s holds no filer configuration (no "
	    "filer.db): check --home (or $FILER_HOME), or create a volume "
	    "there first", ctx->home);
}

/* No filerd: run the verb here, under the home lock (A3). */
static int offline(const struct cli *c, const struct adm_verb *v,
    const struct adm_req *req)
{
	struct adm_ctx *ctx = calloc(1, sizeof(*ctx));
	struct adm_buf out = { 0 };
	struct adm_rep rep;
	struct adm_reply r;
	char err[512];
	long holder = 0;
	int st = ADM_ERR, rc;

	if (ctx == NULL || adm_ctx_init(ctx, c->home) != 0) {
		free(ctx);
		return cli_error(c, ADM_ERR, "bad --home %s", c->home);
	}
	adm_rep_init(&rep);
	if (!(v->flags & ADM_V_OFFLINE)) {
		adm_fail(&rep, ADM_ERR, "filerd is not running on %s; start "
		    "it with: filerd --home %s", ctx->home, ctx->home);
		goto render;
	}
	/* Only a verb that configures something makes a new home (as filerd
	 * would make it); the others, on a home without a database (a
	 * mistyped --home), say so and leave no trace there.  A pid file
	 * but no database: a first filerd may be creating it; wait below. */
	if (!(v->flags & ADM_V_NEWHOME) && access(ctx->db_path, F_OK) != 0 &&
	    access(ctx->pid_path, F_OK) != 0) {
		no_config(&rep, ctx);
		goto render;
	}
	if (access(ctx->home, F_OK) != 0 && mkdir(ctx->home, 0755) != 0) {
		adm_fail(&rep, ADM_ERR, "cannot create %s: %s (its parent must "
		    "exist)", ctx->home, strerror(errno));
		goto render;
	}
	/* Paths stored in the database (disk images, NVLOG) must not depend
	 * on the directory filerctl ran in: work on the absolute home, as
	 * filerd does. */
	if (ctx->home[0] != '/') {
		char *real = realpath(ctx->home, NULL);

		adm_ctx_fini(ctx);
		rc = real != NULL ? adm_ctx_init(ctx, real) : -errno;
		free(real);
		if (rc != 0) {
			(void)adm_ctx_init(ctx, c->home);	/* as before */
			adm_fail(&rep, ADM_ERR, "cannot use %s as home: %s",
			    c->home, strerror(-rc));
			goto render;
		}
	}
	rc = adm_home_lock(ctx, &holder);
	/* Held: filerd is starting (then its socket answers soon) or another
	 * filerctl edits.  Wait a little for either. */
	for (int i = 0; i < 100 && rc == -EBUSY; i++) {
		struct timespec ts = { 0, 100 * 1000000L };
		int fd;

		nanosleep(&ts, NULL);
		if (connect_home(ctx->sock_path, &fd) == 0) {
			adm_rep_free(&rep);
			adm_ctx_fini(ctx);
			free(ctx);
			st = via_socket(c, fd, req);
			close(fd);
			return st;
		}
		rc = adm_home_lock(ctx, &holder);
	}
	if (rc == -EBUSY && holder > 0 && (kill((pid_t)holder, 0) == 0 ||
	    errno != ESRCH)) {
		adm_fail(&rep, ADM_ERR, "%s stays locked by filerd (pid %ld) "
		    "but it does not answer on %s; is it still starting, or "
		    "hung?", ctx->home, holder, ctx->sock_path);
		goto render;
	}
	if (rc == -EBUSY) {
		adm_fail(&rep, ADM_ERR, "%s stays locked by another filerctl "
		    "editing it without filerd; try again when it is done",
		    ctx->home);
		goto render;
	}
	if (rc != 0) {
		adm_fail(&rep, ADM_ERR, "cannot lock %s: %s", ctx->pid_path,
		    strerror(-rc));
		goto render;
	}
	if (!(v->flags & ADM_V_NEWHOME) && access(ctx->db_path, F_OK) != 0) {
		no_config(&rep, ctx);
		adm_home_unlock(ctx, false);
		goto render;
	}
	if (adm_db_open(ctx->db_path, &ctx->db, err, sizeof(err)) != 0) {
		adm_fail(&rep, ADM_ERR, "%s", err);
		adm_home_unlock(ctx, false);
		goto render;
	}
	(void)adm_dispatch(ctx, req, &rep);
	adm_events_drain(ctx);		/* events a handler queued */
	adm_db_close(ctx->db);
	ctx->db = NULL;
	adm_home_unlock(ctx, false);
render:
	/* As filerd would answer it: a reply too large to send is refused
	 * the same way here. */
	adm_rep_encode_bounded(&rep, &out);
	if (!out.oom && adm_reply_decode(out.p, out.len, &r) == 0) {
		st = show(c, &r);
		adm_reply_free(&r);
	} else {
		st = cli_error(c, ADM_ERR, "%s", rep.message);
	}
	adm_buf_free(&out);
	adm_rep_free(&rep);
	adm_ctx_fini(ctx);
	free(ctx);
	return st;
}

int adm_cli_main(int argc, char **argv)
{
	struct cli c = { .home = getenv("FILER_HOME"), .json = false,
	    .timeout_s = REPLY_TIMEOUT_S };
	const struct adm_verb *v;
	struct adm_req req;
	struct adm_rep rep;
	char sock[ADM_PATH_MAX + 16];
	int i = 1, used = 0, st, fd = -1, rc;

	if (c.home == NULL || c.home[0] == '\0')
		c.home = ADM_DEFAULT_HOME;
	fl_log_init(FL_LOG_STDERR, "filerctl");
	fl_log_set_level(FL_LOG_WARN);
	if (adm_env_u32("FILERCTL_TIMEOUT_S", 1, 86400, &c.timeout_s) != 0) {
		fprintf(stderr, "filerctl: FILERCTL_TIMEOUT_S must be a number "
		    "of seconds from 1 to 86400\n");
		return ADM_USAGE;
	}
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			c.json = true;
		} else if (strcmp(argv[i], "--home") == 0 ||
		    strncmp(argv[i], "--home=", 7) == 0) {
			c.home = argv[i][6] == '=' ? argv[i] + 7 :
			    i + 1 < argc ? argv[++i] : "";
			if (c.home[0] == '\0') {
				fprintf(stderr, "filerctl: --home needs a "
				    "directory\n");
				return ADM_USAGE;
			}
		} else if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage_main(stdout);
			return ADM_OK;
		} else {
			fprintf(stderr, "filerctl: unknown option %s\n",
			    argv[i]);
			usage_main(stderr);
			return ADM_USAGE;
		}
	}
	if (i >= argc) {
		usage_main(stderr);
		return ADM_USAGE;
	}
	if (strcmp(argv[i], "help") == 0) {
		usage_main(stdout);
		return ADM_OK;
	}
	v = match_verb(argc - i, argv + i, &used);
	if (v == NULL) {
		if (is_group(argc - i, argv + i)) {
			bool help = i + 1 < argc && (strcmp(argv[i + 1],
			    "--help") == 0 || strcmp(argv[i + 1], "-h") == 0);

			if (!help && c.json)
				json_error(ADM_USAGE, "which one? see: "
				    "filerctl %s --help", argv[i]);
			fprintf(help ? stdout : stderr, "%s%s verbs:\n",
			    help ? "" : "filerctl: which one? ", argv[i]);
			print_verbs(help ? stdout : stderr, argv[i]);
			return help ? ADM_OK : ADM_USAGE;
		}
		(void)cli_error(&c, ADM_USAGE, "unknown verb '%s'", argv[i]);
		usage_main(stderr);
		return ADM_USAGE;
	}
	/* --json may also follow the verb: filerctl mirror status --json. */
	for (int k = i + used; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0) {
			c.json = true;
			memmove(&argv[k], &argv[k + 1],
			    (size_t)(argc - k - 1) * sizeof(*argv));
			argc--;
			k--;
		}
	}
	for (int k = i + used; k < argc; k++) {
		if (strcmp(argv[k], "--help") == 0 ||
		    strcmp(argv[k], "-h") == 0) {
			struct adm_buf b = { 0 };

			adm_verb_usage(v, &b);
			fputs(b.p != NULL ? b.p : "", stdout);
			adm_buf_free(&b);
			return ADM_OK;
		}
	}
	adm_req_init(&req, v->words);
	st = parse_args(&c, v, argc - i - used, argv + i + used, &req);
	if (st != ADM_OK) {
		adm_req_free(&req);
		return st;
	}
	adm_rep_init(&rep);
	st = adm_req_validate(v, &req, &rep);
	if (st != ADM_OK) {
		(void)cli_error(&c, st, "%s", rep.message);
		adm_rep_free(&rep);
		adm_req_free(&req);
		return st;
	}
	adm_rep_free(&rep);

	snprintf(sock, sizeof(sock), "%s/filerd.sock", c.home);
	rc = connect_home(sock, &fd);
	if (rc == 0) {
		st = via_socket(&c, fd, &req);
		close(fd);
	} else if (rc == -ENOENT || rc == -ECONNREFUSED) {
		st = offline(&c, v, &req);
	} else if (rc == -EACCES || rc == -EPERM) {
		st = cli_error(&c, ADM_ERR, "permission denied on %s: only "
		    "root (or the configured admin_group) may manage filerd",
		    sock);
	} else {
		st = cli_error(&c, ADM_ERR, "cannot reach filerd at %s: %s",
		    sock, strerror(-rc));
	}
	adm_req_free(&req);
	return st;
}
