/*
 * common/log.h: logging with levels.
 *
 * One process-wide sink: stderr (default, for foreground runs and tests) or
 * syslog.  Lines carry a level and a subsystem tag:
 *   2026-11-25T19:56:12.123Z raid   WARN  disk /d/0.img failed: EIO at block 7
 * Thread-safe; one write(2) per line.  A capture hook lets tests and the
 * admin event log see every line at or above a level.
 */
#ifndef FILER_COMMON_LOG_H
#define FILER_COMMON_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

enum fl_log_level {
	FL_LOG_ERR = 0,
	FL_LOG_WARN,
	FL_LOG_INFO,
	FL_LOG_DEBUG,
};

enum fl_log_sink { FL_LOG_STDERR, FL_LOG_SYSLOG };

void fl_log_init(enum fl_log_sink sink, const char *ident);
void fl_log_set_level(enum fl_log_level level);
enum fl_log_level fl_log_get_level(void);
/* "err", "warn", "info", "debug"; returns -EINVAL for anything else. */
int fl_log_parse_level(const char *s, enum fl_log_level *out);

/*
 * The hook is called for every line at or above its level, after the sink,
 * with the formatted message (borrowed for the call).  One hook at a time;
 * NULL removes it.
 */
typedef void fl_log_hook_fn(void *arg, enum fl_log_level level,
    const char *subsys, const char *msg);
void fl_log_set_hook(fl_log_hook_fn *fn, void *arg, enum fl_log_level level);

void fl_log(enum fl_log_level level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fl_vlog(enum fl_log_level level, const char *subsys, const char *fmt,
    va_list ap);

/*
 * A message that may come again and again (a peer retrying what is
 * refused, a stranger knocking): logged when its text changes, and once
 * every interval while it repeats, with how many times it came between.
 * The caller serializes calls on one struct (its own lock or thread).
 */
struct fl_log_repeat {
	char text[192];		/* the text last logged */
	uint64_t ns;		/* when (fl_now_mono_ns); 0: never */
	uint64_t skipped;	/* repeats since, not logged */
};

/* Whether text is to be logged now (at now_ns, fl_now_mono_ns); if so,
 * *skipped is the number of its repeats that were not (0 after a change
 * of text).  A false return counts a repeat. */
bool fl_log_repeat_due(struct fl_log_repeat *r, const char *text,
    uint64_t now_ns, uint64_t interval_ns, uint64_t *skipped);

#define fl_err(sub, ...)	fl_log(FL_LOG_ERR, sub, __VA_ARGS__)
#define fl_warn(sub, ...)	fl_log(FL_LOG_WARN, sub, __VA_ARGS__)
#define fl_info(sub, ...)	fl_log(FL_LOG_INFO, sub, __VA_ARGS__)
#define fl_debug(sub, ...) do { \
	if (fl_log_get_level() >= FL_LOG_DEBUG) \
		fl_log(FL_LOG_DEBUG, sub, __VA_ARGS__); \
} while (0)

#endif
