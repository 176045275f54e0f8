/*
 * tests/lib/tl_tmpdir.c: scratch directories (see tl_tmpdir.h).
 */
#include "tests/lib/tl_tmpdir.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif
#ifndef RAMFS_MAGIC
#define RAMFS_MAGIC 0x858458f6
#endif

char *tl_tmpdir_make(const char *base, const char *prefix)
{
	const char *b = base;
	char *dir;

	if (b == NULL)
		b = getenv("TMPDIR");
	if (b == NULL || *b == '\0')
		b = "/tmp";
	if (asprintf(&dir, "%s/%s.XXXXXX", b, prefix) < 0)
		abort();
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "tl_tmpdir_make: mkdtemp %s: %s\n", dir,
		    strerror(errno));
		abort();
	}
	return dir;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0)
		fprintf(stderr, "tl_tmpdir_remove: %s: %s\n", path,
		    strerror(errno));
	return 0;
}

void tl_tmpdir_remove(char *dir)
{
	if (dir == NULL)
		return;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

void tl_path(char *out, size_t outlen, const char *dir, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(out, outlen, "%s/", dir);

	if (n < 0 || (size_t)n >= outlen)
		abort();
	va_start(ap, fmt);
	int m = vsnprintf(out + n, outlen - (size_t)n, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)(n + m) >= outlen)
		abort();
}

static int all_zero(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

/* Holes stay holes: zero chunks are skipped and the size set at the end. */
int tl_copy_file(const char *from, const char *to)
{
	static __thread char buf[65536];
	int in = open(from, O_RDONLY);
	int out = -1;
	int rc = 0;
	off_t pos = 0;

	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0) {
		rc = -errno;
		goto out;
	}
	for (;;) {
		ssize_t r;
		off_t next = lseek(in, pos, SEEK_DATA);

		if (next < 0 && errno == ENXIO)
			break;		/* only a hole is left */
		if (next < 0)
			next = pos;	/* no SEEK_DATA here: copy it all */
		if (next > pos)
			pos = next & ~(off_t)4095;
		r = pread(in, buf, sizeof(buf), pos);
		if (r < 0) {
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		if (!all_zero(buf, (size_t)r)) {
			for (ssize_t off = 0; off < r;) {
				ssize_t w = pwrite(out, buf + off,
				    (size_t)(r - off), pos + off);
				if (w < 0) {
					rc = -errno;
					goto out;
				}
				off += w;
			}
		}
		pos += r;
	}
	pos = lseek(in, 0, SEEK_END);
	if (pos < 0 || ftruncate(out, pos) != 0)
		rc = -errno;
out:
	if (out >= 0 && close(out) != 0 && rc == 0)
		rc = -errno;
	close(in);
	return rc;
}

int tl_is_tmpfs(const char *path)
{
	struct statfs s;

	if (statfs(path, &s) != 0)
		return -errno;
	return s.f_type == TMPFS_MAGIC || s.f_type == RAMFS_MAGIC;
}

int64_t tl_file_size(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return -1;
	return (int64_t)st.st_size;
}
