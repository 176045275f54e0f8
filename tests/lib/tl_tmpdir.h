/*
 * tests/lib/tl_tmpdir.h: scratch directories for tests and benchmarks.
 *
 * tl_tmpdir_make() creates a fresh directory with mkdtemp(3) under $TMPDIR
 * (or /tmp) and returns its path in an owned, NUL-terminated string;
 * tl_tmpdir_remove() deletes it with everything below it and frees the
 * string.  tl_path() joins a directory and a printf-formatted name into a
 * caller-owned buffer.
 */
#ifndef FILER_TESTS_LIB_TL_TMPDIR_H
#define FILER_TESTS_LIB_TL_TMPDIR_H

#include <stddef.h>
#include <stdint.h>

/* base: parent directory, NULL for $TMPDIR or /tmp.  Aborts on failure. */
char *tl_tmpdir_make(const char *base, const char *prefix);
void tl_tmpdir_remove(char *dir);

/* out[outlen] = dir "/" fmt...; aborts if it does not fit. */
void tl_path(char *out, size_t outlen, const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Byte copy of a file (for duplicate-disk and snapshot/restore tests). */
int tl_copy_file(const char *from, const char *to);

/* True if path lies on a tmpfs/ramfs (so disk bandwidth would be bogus). */
int tl_is_tmpfs(const char *path);

/* Size of a file, or -1. */
int64_t tl_file_size(const char *path);

#endif
