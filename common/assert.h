/*
 * common/assert.h: the two kinds of assertion (STYLE.md 10).
 *
 *   ASSERT(c)  our own logic; checked in debug builds (FILER_DEBUG), compiled
 *              out otherwise.  Never guards data read from disk or network.
 *   VERIFY(c)  always checked; for conditions where continuing would corrupt
 *              data.  Logs the failed expression with its origin and aborts.
 *
 * Data from disk or the network is never checked with either: it returns an
 * error (STYLE.md 6).
 */
#ifndef FILER_COMMON_ASSERT_H
#define FILER_COMMON_ASSERT_H

#include <stdint.h>

void fl_assert_fail(const char *expr, const char *file, int line,
    const char *func) __attribute__((noreturn));
void fl_verify_cmp_fail(const char *expr, uint64_t a, uint64_t b,
    const char *file, int line, const char *func) __attribute__((noreturn));

#define VERIFY(c) \
	((c) ? (void)0 : fl_assert_fail(#c, __FILE__, __LINE__, __func__))
#define VERIFY0(e) do { \
	uint64_t vz_ = (uint64_t)(e); \
	if (vz_ != 0) \
		fl_verify_cmp_fail(#e " == 0", vz_, 0, __FILE__, __LINE__, \
		    __func__); \
} while (0)
#define VERIFY_EQ(a, b) do { \
	uint64_t va_ = (uint64_t)(a), vb_ = (uint64_t)(b); \
	if (va_ != vb_) \
		fl_verify_cmp_fail(#a " == " #b, va_, vb_, __FILE__, __LINE__, \
		    __func__); \
} while (0)

#ifdef FILER_DEBUG
#define ASSERT(c)	VERIFY(c)
#define ASSERT0(e)	VERIFY0(e)
#define ASSERT_EQ(a, b)	VERIFY_EQ(a, b)
#else
#define ASSERT(c)	((void)sizeof(!(c)))
#define ASSERT0(e)	((void)sizeof(e))
#define ASSERT_EQ(a, b)	((void)sizeof((a) == (b)))
#endif

#define FL_STATIC_ASSERT(c, msg) _Static_assert(c, msg)

#endif
