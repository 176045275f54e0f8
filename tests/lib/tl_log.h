/*
 * tests/lib/tl_log.h: capture log lines (through fl_log_set_hook) so a test
 * can assert that a message was logged, and what it named.
 *
 * One capture at a time (the hook is process-wide).  Lines are kept in
 * memory, oldest first, up to TL_LOG_MAX_LINES; later lines are counted and
 * dropped.  Thread-safe: raid logs from its rebuild thread too.
 */
#ifndef FILER_TESTS_LIB_TL_LOG_H
#define FILER_TESTS_LIB_TL_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/log.h"

#define TL_LOG_MAX_LINES	512

/* Start capturing every line at or above level (FL_LOG_INFO: info, warn,
 * err); forgets lines captured before. */
void tl_log_capture_start(enum fl_log_level level);
void tl_log_capture_stop(void);
void tl_log_clear(void);

size_t tl_log_count(void);
/* Number of captured lines that contain every one of the given strings
 * (NULL-terminated list).  Case-sensitive. */
size_t tl_log_count_with(const char *s1, ...);
/* Copy of line i ("SUBSYS LEVEL message") into out; false if no such line. */
bool tl_log_line(size_t i, char *out, size_t outlen);
/* Print every captured line to stderr (for failing tests). */
void tl_log_dump(const char *why);

#endif
