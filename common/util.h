/*
 * common/util.h: little-endian encode/decode helpers, time, small utilities.
 *
 * Every on-disk and wire structure is encoded field by field with the
 * fl_put_le / fl_get_le helpers (STYLE.md 5): never by casting a buffer.
 */
#ifndef FILER_COMMON_UTIL_H
#define FILER_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <string.h>

#define FL_ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define FL_MIN(a, b)		((a) < (b) ? (a) : (b))
#define FL_MAX(a, b)		((a) > (b) ? (a) : (b))
#define FL_DIV_ROUND_UP(n, d)	(((n) + (d) - 1) / (d))
#define FL_DIV_ROUND_UP_U64(n, d) (((uint64_t)(n) + (d) - 1) / (d))

static inline void fl_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void fl_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void fl_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t fl_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t fl_get_le32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint64_t fl_get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Nanoseconds: monotonic (for intervals) and wall clock (for timestamps). */
uint64_t fl_now_mono_ns(void);
uint64_t fl_now_real_ns(void);
/* The CLOCK_REALTIME instant us microseconds from now, as
 * pthread_cond_timedwait takes it. */
void fl_deadline_ts(struct timespec *ts, uint64_t us);

/* 16 random bytes from getrandom(2); returns 0 or -errno. */
int fl_random_bytes(void *buf, size_t len);

/* Format a 16-byte uuid as 36 chars + NUL into out[37]. */
void fl_uuid_fmt(const uint8_t uuid[16], char out[37]);

/* Loop over short reads/writes and EINTR; return 0 or -errno (-EIO on EOF). */
int fl_pread_full(int fd, void *buf, size_t len, uint64_t off);
int fl_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

#endif
