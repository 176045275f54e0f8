/*
 * tests/bench/benchout.h: how every benchmark reports its figures.
 *
 * A benchmark prints a readable table on stdout and appends one JSON object
 * per figure, one per line, to <outdir>/<bench>.json, so figures can be
 * compared across runs and plotted:
 *
 *   {"bench":"raid","metric":"full-stripe write","value":180.2,"unit":"MB/s",
 *    "peer":"disk sequential write","peer_value":211.0,"ratio":0.854,
 *    "goal":">= 0.8"}
 *
 * peer, peer_value and ratio are null for a figure without a peer.  goal is
 * a string "<op> <number>" or null: for a figure with a peer it applies to
 * the ratio, otherwise to the value.  A missed goal is marked in the table
 * and counted; whether that fails the run is the benchmark's choice.
 *
 * Header-only (static inline) so any benchmark can include it; one struct
 * benchout per benchmark run, not shared between threads.
 */
#ifndef FILER_TESTS_BENCH_BENCHOUT_H
#define FILER_TESTS_BENCH_BENCHOUT_H

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct benchout {
	char bench[64];
	char path[4096];
	FILE *json;		/* NULL if the file could not be opened */
	int figures;
	int missed;
};

/* The scratch directory of a run writing its JSON to outdir:
 * $FILER_BENCH_DIR, else bench-tmp next to outdir (<outdir>/../bench-tmp),
 * created if it is missing. */
static inline void benchout_scratch(const char *outdir, char *base,
    size_t len)
{
	const char *env = getenv("FILER_BENCH_DIR");
	char tmp[4096];

	if (env != NULL) {
		snprintf(base, len, "%s", env);
	} else {
		snprintf(tmp, sizeof(tmp), "%s", outdir);
		snprintf(base, len, "%s/bench-tmp", dirname(tmp));
	}
	mkdir(base, 0755);
}

/* Open (append) <outdir>/<bench>.json, print the table head.  0 or -errno;
 * on error the table is still printed, without JSON. */
static inline int benchout_open(struct benchout *b, const char *outdir,
    const char *bench, const char *title)
{
	int rc = 0;

	memset(b, 0, sizeof(*b));
	snprintf(b->bench, sizeof(b->bench), "%s", bench);
	mkdir(outdir, 0755);
	snprintf(b->path, sizeof(b->path), "%s/%s.json", outdir, bench);
	b->json = fopen(b->path, "a");
	if (b->json == NULL) {
		rc = -errno;
		fprintf(stderr, "benchout: %s: %s\n", b->path,
		    strerror(errno));
	}
	printf("\n== %s: %s\n", bench, title);
	printf("%-34s %12s %-6s  %-26s %10s %7s  %-8s\n", "metric", "value",
	    "unit", "peer", "peer", "ratio", "goal");
	printf("%.*s\n", 112, "----------------------------------------"
	    "----------------------------------------"
	    "----------------------------------------");
	fflush(stdout);
	return rc;
}

static inline void benchout_json_str(FILE *f, const char *s)
{
	if (s == NULL) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static inline void benchout_json_num(FILE *f, double v, bool present)
{
	if (!present || isnan(v) || isinf(v))
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

/* Does x meet "op g"?  op: ">=", "<=", "==", ">", "<". */
static inline bool benchout_meets(double x, const char *op, double g)
{
	if (strcmp(op, ">=") == 0)
		return x >= g;
	if (strcmp(op, "<=") == 0)
		return x <= g;
	if (strcmp(op, ">") == 0)
		return x > g;
	if (strcmp(op, "<") == 0)
		return x < g;
	return x == g;
}

/*
 * The general form.  peer NULL: no peer.  goal_op NULL: no goal.  Returns
 * whether the goal is met (true when there is none).
 */
static inline bool benchout_add(struct benchout *b, const char *metric,
    double value, const char *unit, const char *peer, double peer_value,
    const char *goal_op, double goal_value)
{
	bool has_peer = peer != NULL;
	double ratio = has_peer && peer_value != 0 ? value / peer_value : NAN;
	char goal[32] = "";
	bool met = true;

	if (goal_op != NULL) {
		snprintf(goal, sizeof(goal), "%s %g", goal_op, goal_value);
		met = benchout_meets(has_peer ? ratio : value, goal_op,
		    goal_value);
		if (!met)
			b->missed++;
	}
	b->figures++;

	printf("%-34s %12.4g %-6s  %-26s ", metric, value, unit,
	    has_peer ? peer : "");
	if (has_peer)
		printf("%10.4g %7.3f  ", peer_value, ratio);
	else
		printf("%10s %7s  ", "", "");
	printf("%-8s %s\n", goal, goal_op == NULL ? "" :
	    met ? "ok" : "MISSED");
	fflush(stdout);

	if (b->json != NULL) {
		FILE *f = b->json;
		fputs("{\"bench\":", f);
		benchout_json_str(f, b->bench);
		fputs(",\"metric\":", f);
		benchout_json_str(f, metric);
		fputs(",\"value\":", f);
		benchout_json_num(f, value, true);
		fputs(",\"unit\":", f);
		benchout_json_str(f, unit);
		fputs(",\"peer\":", f);
		benchout_json_str(f, peer);
		fputs(",\"peer_value\":", f);
		benchout_json_num(f, peer_value, has_peer);
		fputs(",\"ratio\":", f);
		benchout_json_num(f, ratio, has_peer);
		fputs(",\"goal\":", f);
		benchout_json_str(f, goal_op != NULL ? goal : NULL);
		fputs("}\n", f);
		fflush(f);
	}
	return met;
}

/* A figure on its own. */
static inline void benchout_figure(struct benchout *b, const char *metric,
    double value, const char *unit)
{
	benchout_add(b, metric, value, unit, NULL, 0, NULL, 0);
}

/* A figure against a peer, with an optional goal on the ratio. */
static inline bool benchout_vs(struct benchout *b, const char *metric,
    double value, const char *unit, const char *peer, double peer_value,
    const char *goal_op, double goal_ratio)
{
	return benchout_add(b, metric, value, unit, peer, peer_value, goal_op,
	    goal_ratio);
}

/* A free-text line under the table (conditions of the run). */
static inline void benchout_note(struct benchout *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void benchout_note(struct benchout *b, const char *fmt, ...)
{
	va_list ap;

	(void)b;
	fputs("  note: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* Close the JSON file, print the tally; returns the number of goals
 * missed. */
static inline int benchout_close(struct benchout *b)
{
	printf("%d figures, %d goals missed%s%s\n", b->figures, b->missed,
	    b->json != NULL ? "; appended to " : "",
	    b->json != NULL ? b->path : "");
	if (b->json != NULL)
		fclose(b->json);
	b->json = NULL;
	return b->missed;
}

#endif
