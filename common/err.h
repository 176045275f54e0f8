/*
 * common/err.h: error codes and the error-origin macro (STYLE.md 7).
 *
 * Internal functions return 0 or a negative number: a negative errno, or one
 * of the module codes below (all above the errno range, so they never clash).
 * fl_strerror() names both kinds.
 *
 * FL_ERR(e) evaluates to e and, when error tracing is on (log level DEBUG),
 * logs where the error was first raised: use it at the place an error is
 * born, not where it is passed along, as OpenZFS does with SET_ERROR.
 */
#ifndef FILER_COMMON_ERR_H
#define FILER_COMMON_ERR_H

#include <errno.h>

enum {
	FL_EBASE = 4096,
	FL_ECORRUPT,	/* on-disk structure or checksum is wrong */
	FL_EPROTO,	/* peer sent something malformed */
	FL_ELABEL,	/* disk label refused (foreign, wrong position, dup) */
	FL_ESTALEDISK,	/* disk label older than its group's */
	FL_EDEGRADED,	/* more disks lost than parity can cover */
	FL_EREADONLY,	/* volume refuses writes (replica, or after a
			   failed root write / log flush) */
	FL_ECRASHED,	/* fault injector: the simulated machine is down */
	FL_ELAST
};

const char *fl_strerror(int err);	/* err may be negative */

int fl_err_origin(int err, const char *file, int line, const char *func);

#define FL_ERR(e) fl_err_origin((e), __FILE__, __LINE__, __func__)

#endif
