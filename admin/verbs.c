/*
 * admin/verbs.c: the verb table, request validation and dispatch.
 *
 * Table-driven (STYLE.md 11): one const entry per verb names its words,
 * its arguments with their types and ranges, whether it may run without
 * filerd, its handler and its help.  filerctl builds requests from argv by
 * this table and checks them before sending; filerd checks every request it
 * receives by the same table before a handler sees it (A2), so a handler
 * may rely on every field being present when required and well-formed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/adm_impl.h"

static const struct adm_verb *const tables[] = {
	adm_vol_verbs, adm_disk_verbs, adm_snap_verbs, adm_export_verbs,
	adm_misc_verbs, adm_mirror_verbs,
};

const struct adm_verb *adm_verb_at(size_t i)
{
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		for (const struct adm_verb *v = tables[t]; v->words != NULL;
		    v++) {
			if (i == 0)
				return v;
			i--;
		}
	}
	return NULL;
}

const struct adm_verb *adm_verb_find(const char *words)
{
	const struct adm_verb *v;

	for (size_t i = 0; (v = adm_verb_at(i)) != NULL; i++)
		if (strcmp(v->words, words) == 0)
			return v;
	return NULL;
}

const struct adm_arg *adm_verb_arg(const struct adm_verb *v,
    const char *name)
{
	for (const struct adm_arg *a = v->args; a != NULL && a->name != NULL;
	    a++)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

static bool in_choices(const char *choices, const char *v)
{
	size_t n = strlen(v);

	for (const char *p = choices; p != NULL && *p != '\0';) {
		const char *bar = strchr(p, '|');
		size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);

		if (len == n && strncmp(p, v, n) == 0)
			return true;
		p = bar != NULL ? bar + 1 : NULL;
	}
	return false;
}

static bool valid_path(const char *s)
{
	return s[0] == '/' && strlen(s) < ADM_PATH_MAX - 64 &&
	    adm_valid_text(s, ADM_PATH_MAX) && strstr(s, "/../") == NULL;
}

/* Check one field; on error a message for the administrator in why. */
static bool arg_ok(const struct adm_arg *a, const char *val, char *why,
    size_t whylen)
{
	uint64_t u;

	switch (a->type) {
	case ADM_A_VOLNAME:
		if (adm_valid_volname(val))
			return true;
		snprintf(why, whylen, "'%s' is not a valid volume name (a "
		    "letter, then letters, digits, '_' or '-'; at most %d)",
		    val, ADM_NAME_MAX - 1);
		return false;
	case ADM_A_SNAPNAME:
		if (adm_valid_snapname(val))
			return true;
		snprintf(why, whylen, "'%s' is not a valid snapshot name (a "
		    "letter, then letters, digits or _-.:; at most %d)", val,
		    ADM_SNAP_MAX - 1);
		return false;
	case ADM_A_PATH:
		if (valid_path(val))
			return true;
		snprintf(why, whylen, "--%s: '%s' is not an absolute path",
		    a->name, val);
		return false;
	case ADM_A_EXPPATH:
		if (adm_valid_export_path(val, NULL, 0))
			return true;
		snprintf(why, whylen, "'%s' is not an export path (like "
		    "/vol/NAME or /vol/NAME/dir)", val);
		return false;
	case ADM_A_UINT:
		if (adm_parse_u64(val, &u) != 0) {
			snprintf(why, whylen, "--%s: '%s' is not a number",
			    a->name, val);
			return false;
		}
		if (u < a->min || u > a->max) {
			snprintf(why, whylen, "--%s: %s is out of range "
			    "(%" PRIu64 " .. %" PRIu64 ")", a->name, val,
			    a->min, a->max);
			return false;
		}
		return true;
	case ADM_A_SIZE: {
		char lo[16], hi[16];

		if (adm_parse_size(val, &u) != 0) {
			snprintf(why, whylen, "--%s: '%s' is not a size (like "
			    "64M, 1G or a number of bytes)", a->name, val);
			return false;
		}
		adm_fmt_size(a->min, lo, sizeof(lo));
		adm_fmt_size(a->max, hi, sizeof(hi));
		if (u < a->min || u > a->max) {
			snprintf(why, whylen, "--%s: %s is out of range "
			    "(%s .. %s)", a->name, val, lo, hi);
			return false;
		}
		if (u % RAID_BLOCK_SIZE != 0) {
			snprintf(why, whylen, "--%s: %s is not a multiple of "
			    "4K", a->name, val);
			return false;
		}
		return true;
	}
	case ADM_A_FLAG:
		if (strcmp(val, "true") == 0)
			return true;
		snprintf(why, whylen, "--%s takes no value", a->name);
		return false;
	case ADM_A_ENUM:
		if (in_choices(a->choices, val))
			return true;
		snprintf(why, whylen, "--%s: '%s' is not one of %s", a->name,
		    val, a->choices);
		return false;
	case ADM_A_TEXT:
		if (adm_valid_text(val, a->max != 0 ? a->max : 255))
			return true;
		snprintf(why, whylen, "%s: the value is too long or holds "
		    "control characters", a->name);
		return false;
	case ADM_A_CLIENT:
		if (adm_valid_client(val))
			return true;
		snprintf(why, whylen, "'%s' is not a client (*, a host name, "
		    "an address or a CIDR like 10.0.0.0/8)", val);
		return false;
	case ADM_A_DISK:
		if (adm_parse_u64(val, &u) == 0 ? u < 1024 : valid_path(val))
			return true;
		snprintf(why, whylen, "'%s' is not a disk (its number in "
		    "'vol status' or its absolute path)", val);
		return false;
	case ADM_A_TIME:
		if (adm_parse_since(val, (uint64_t)time(NULL), &u) == 0)
			return true;
		snprintf(why, whylen, "--%s: '%s' is not a time (like 15m, "
		    "2h, 3d, 2026-11-25T19:00 or epoch seconds)", a->name, val);
		return false;
	case ADM_A_ALIAS:
		break;
	}
	snprintf(why, whylen, "%s cannot be given in a request", a->name);
	return false;
}

int adm_req_validate(const struct adm_verb *v, const struct adm_req *req,
    struct adm_rep *rep)
{
	char why[512];

	for (size_t i = 0; i < req->n; i++) {
		const struct adm_arg *a = adm_verb_arg(v, req->f[i].key);

		if (a == NULL || a->type == ADM_A_ALIAS)
			return adm_fail(rep, ADM_USAGE, "%s: unknown argument "
			    "'%s'; see: filerctl %s --help", v->words,
			    req->f[i].key, v->words);
		if (!arg_ok(a, req->f[i].val, why, sizeof(why)))
			return adm_fail(rep, ADM_USAGE, "%s: %s", v->words, why);
	}
	for (const struct adm_arg *a = v->args; a != NULL && a->name != NULL;
	    a++) {
		if ((a->flags & ADM_ARG_REQ) && adm_req_get(req, a->name) ==
		    NULL)
			return adm_fail(rep, ADM_USAGE, "%s: %s%s is required; "
			    "see: filerctl %s --help", v->words,
			    (a->flags & ADM_ARG_POS) ? "" : "--",
			    a->name, v->words);
	}
	return ADM_OK;
}

int adm_dispatch(struct adm_ctx *ctx, const struct adm_req *req,
    struct adm_rep *rep)
{
	const struct adm_verb *v = adm_verb_find(req->verb);
	int st;

	if (v == NULL || (v->flags & ADM_V_LOCAL))
		return adm_fail(rep, ADM_USAGE, "unknown verb '%s'; see: "
		    "filerctl --help", req->verb);
	st = adm_req_validate(v, req, rep);
	if (st != ADM_OK)
		return st;
	if (!ctx->daemon && !(v->flags & ADM_V_OFFLINE))
		return adm_fail(rep, ADM_ERR, "filerd is not running on %s; "
		    "start it with: filerd --home %s", ctx->home, ctx->home);
	rep->status = ADM_OK;
	st = v->fn(ctx, req, rep);
	rep->status = st;
	return st;
}

static const char *placeholder(const struct adm_arg *a)
{
	switch (a->type) {
	case ADM_A_VOLNAME: return "VOL";
	case ADM_A_SNAPNAME: return "SNAP";
	case ADM_A_PATH: return "PATH";
	case ADM_A_EXPPATH: return "/vol/NAME[/DIR]";
	case ADM_A_UINT: return "N";
	case ADM_A_SIZE: return "SIZE";
	case ADM_A_ENUM: return a->choices;
	case ADM_A_TEXT: return "VALUE";
	case ADM_A_CLIENT: return "CLIENT";
	case ADM_A_DISK: return "DISK";
	case ADM_A_TIME: return "TIME";
	default: return "";
	}
}

void adm_verb_usage(const struct adm_verb *v, struct adm_buf *out)
{
	adm_buf_addf(out, "usage: filerctl [--home DIR] [--json] %s",
	    v->words);
	for (const struct adm_arg *a = v->args; a != NULL && a->name != NULL;
	    a++) {
		bool req = (a->flags & ADM_ARG_REQ) != 0;

		if (a->flags & ADM_ARG_POS)
			adm_buf_addf(out, req ? " %s" : " [%s]",
			    a->type == ADM_A_VOLNAME && strcmp(a->name,
			    "name") == 0 ? "NAME" : placeholder(a));
		else if (a->type == ADM_A_FLAG || a->type == ADM_A_ALIAS)
			adm_buf_addf(out, req ? " --%s" : " [--%s]", a->name);
		else
			adm_buf_addf(out, req ? " --%s %s" : " [--%s %s]",
			    a->name, placeholder(a));
	}
	adm_buf_addf(out, "\n\n%s.\n", v->summary);
	if (v->help != NULL)
		adm_buf_addf(out, "\n%s\n", v->help);
	if (v->args != NULL && v->args->name != NULL)
		adm_buf_addf(out, "\n");
	for (const struct adm_arg *a = v->args; a != NULL && a->name != NULL;
	    a++) {
		char left[64];

		if (a->flags & ADM_ARG_POS)
			snprintf(left, sizeof(left), "%s", a->type ==
			    ADM_A_VOLNAME && strcmp(a->name, "name") == 0 ?
			    "NAME" : placeholder(a));
		else
			snprintf(left, sizeof(left), "--%s", a->name);
		adm_buf_addf(out, "  %-16s %s\n", left,
		    a->help != NULL ? a->help : "");
	}
	if (!(v->flags & ADM_V_OFFLINE) && !(v->flags & ADM_V_LOCAL))
		adm_buf_addf(out, "\nNeeds a running filerd.\n");
}
