/*
 * common/log.c: the process-wide log sink (see log.h).
 */
#include "common/log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static struct {
	pthread_mutex_t lock;
	enum fl_log_sink sink;
	enum fl_log_level level;
	fl_log_hook_fn *hook;
	void *hook_arg;
	enum fl_log_level hook_level;
} log_state = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.sink = FL_LOG_STDERR,
	.level = FL_LOG_INFO,
};

static const char *const level_names[] = {
	[FL_LOG_ERR] = "ERROR",
	[FL_LOG_WARN] = "WARN",
	[FL_LOG_INFO] = "INFO",
	[FL_LOG_DEBUG] = "DEBUG",
};

void fl_log_init(enum fl_log_sink sink, const char *ident)
{
	pthread_mutex_lock(&log_state.lock);
	log_state.sink = sink;
	if (sink == FL_LOG_SYSLOG)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	pthread_mutex_unlock(&log_state.lock);
}

void fl_log_set_level(enum fl_log_level level)
{
	__atomic_store_n(&log_state.level, level, __ATOMIC_RELAXED);
}

enum fl_log_level fl_log_get_level(void)
{
	return __atomic_load_n(&log_state.level, __ATOMIC_RELAXED);
}

int fl_log_parse_level(const char *s, enum fl_log_level *out)
{
	static const char *const names[] = { "err", "warn", "info", "debug" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum fl_log_level)i;
			return 0;
		}
	}
	return -22;	/* -EINVAL */
}

void fl_log_set_hook(fl_log_hook_fn *fn, void *arg, enum fl_log_level level)
{
	pthread_mutex_lock(&log_state.lock);
	log_state.hook = fn;
	log_state.hook_arg = arg;
	log_state.hook_level = level;
	pthread_mutex_unlock(&log_state.lock);
}

void fl_vlog(enum fl_log_level level, const char *subsys, const char *fmt,
    va_list ap)
{
	char msg[1024];
	char line[1200];
	fl_log_hook_fn *hook;
	void *hook_arg;
	int to_sink = level <= fl_log_get_level();

	vsnprintf(msg, sizeof(msg), fmt, ap);

	pthread_mutex_lock(&log_state.lock);
	hook = log_state.hook;
	hook_arg = log_state.hook_arg;
	if (hook != NULL && level > log_state.hook_level)
		hook = NULL;
	if (to_sink && log_state.sink == FL_LOG_SYSLOG) {
		static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO,
		    LOG_DEBUG };
		syslog(prio[level], "%s: %s", subsys, msg);
	} else if (to_sink) {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		int n = snprintf(line, sizeof(line),
		    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-6s %-5s %s\n",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, subsys,
		    level_names[level], msg);
		if (n > (int)sizeof(line) - 1)
			n = (int)sizeof(line) - 1;
		ssize_t w = write(STDERR_FILENO, line, (size_t)n);
		(void)w;
	}
	pthread_mutex_unlock(&log_state.lock);
	if (hook != NULL)
		hook(hook_arg, level, subsys, msg);
}

void fl_log(enum fl_log_level level, const char *subsys, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fl_vlog(level, subsys, fmt, ap);
	va_end(ap);
}

bool fl_log_repeat_due(struct fl_log_repeat *r, const char *text,
    uint64_t now_ns, uint64_t interval_ns, uint64_t *skipped)
{
	bool same = strncmp(text, r->text, sizeof(r->text) - 1) == 0;

	if (same && r->ns != 0 && now_ns - r->ns < interval_ns) {
		r->skipped++;
		return false;
	}
	*skipped = same ? r->skipped : 0;
	snprintf(r->text, sizeof(r->text), "%s", text);
	r->ns = now_ns;
	r->skipped = 0;
	return true;
}
