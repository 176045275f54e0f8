/*
 * tests/lib/tl_log.c: log capture (see tl_log.h).
 */
#include "tests/lib/tl_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
	pthread_mutex_t lock;
	char *lines[TL_LOG_MAX_LINES];
	size_t n;
	size_t dropped;
} cap = { .lock = PTHREAD_MUTEX_INITIALIZER };

static const char *level_name(enum fl_log_level l)
{
	switch (l) {
	case FL_LOG_ERR: return "ERROR";
	case FL_LOG_WARN: return "WARN";
	case FL_LOG_INFO: return "INFO";
	case FL_LOG_DEBUG: return "DEBUG";
	}
	return "?";
}

static void hook(void *arg, enum fl_log_level level, const char *subsys,
    const char *msg)
{
	char *line;

	(void)arg;
	if (asprintf(&line, "%s %s %s", subsys, level_name(level), msg) < 0)
		return;
	pthread_mutex_lock(&cap.lock);
	if (cap.n < TL_LOG_MAX_LINES) {
		cap.lines[cap.n++] = line;
		line = NULL;
	} else {
		cap.dropped++;
	}
	pthread_mutex_unlock(&cap.lock);
	free(line);
}

void tl_log_clear(void)
{
	pthread_mutex_lock(&cap.lock);
	for (size_t i = 0; i < cap.n; i++)
		free(cap.lines[i]);
	cap.n = 0;
	cap.dropped = 0;
	pthread_mutex_unlock(&cap.lock);
}

void tl_log_capture_start(enum fl_log_level level)
{
	tl_log_clear();
	fl_log_set_hook(hook, NULL, level);
}

void tl_log_capture_stop(void)
{
	fl_log_set_hook(NULL, NULL, FL_LOG_ERR);
	tl_log_clear();
}

size_t tl_log_count(void)
{
	size_t n;

	pthread_mutex_lock(&cap.lock);
	n = cap.n;
	pthread_mutex_unlock(&cap.lock);
	return n;
}

size_t tl_log_count_with(const char *s1, ...)
{
	const char *want[16];
	size_t nwant = 0, hits = 0;
	va_list ap;

	va_start(ap, s1);
	for (const char *s = s1; s != NULL && nwant < 16;
	    s = va_arg(ap, const char *))
		want[nwant++] = s;
	va_end(ap);

	pthread_mutex_lock(&cap.lock);
	for (size_t i = 0; i < cap.n; i++) {
		size_t k = 0;
		while (k < nwant && strstr(cap.lines[i], want[k]) != NULL)
			k++;
		if (k == nwant)
			hits++;
	}
	pthread_mutex_unlock(&cap.lock);
	return hits;
}

bool tl_log_line(size_t i, char *out, size_t outlen)
{
	bool ok = false;

	pthread_mutex_lock(&cap.lock);
	if (i < cap.n) {
		snprintf(out, outlen, "%s", cap.lines[i]);
		ok = true;
	}
	pthread_mutex_unlock(&cap.lock);
	return ok;
}

void tl_log_dump(const char *why)
{
	pthread_mutex_lock(&cap.lock);
	fprintf(stderr, "--- captured log (%s): %zu lines, %zu dropped\n",
	    why, cap.n, cap.dropped);
	for (size_t i = 0; i < cap.n; i++)
		fprintf(stderr, "    %s\n", cap.lines[i]);
	pthread_mutex_unlock(&cap.lock);
}
