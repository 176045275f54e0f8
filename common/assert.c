#include "common/assert.h"

#include <inttypes.h>
#include <stdlib.h>

#include "common/log.h"

void fl_assert_fail(const char *expr, const char *file, int line,
    const char *func)
{
	fl_log(FL_LOG_ERR, "assert", "VERIFY(%s) failed at %s:%d %s()", expr,
	    file, line, func);
	abort();
}

void fl_verify_cmp_fail(const char *expr, uint64_t a, uint64_t b,
    const char *file, int line, const char *func)
{
	fl_log(FL_LOG_ERR, "assert",
	    "VERIFY(%s) failed (%" PRIu64 " vs %" PRIu64 ") at %s:%d %s()",
	    expr, a, b, file, line, func);
	abort();
}
