/*
 * tests/lib/tl_raid.c: helpers around raid/ for tests (see tl_raid.h).
 */
#include "tests/lib/tl_raid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "tests/lib/tl_tmpdir.h"

void tl_fill_random(void *buf, size_t len, uint64_t *s)
{
	uint8_t *p = buf;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t r = tl_rand(s);
		memcpy(p + i, &r, 8);
	}
	if (i < len) {
		uint64_t r = tl_rand(s);
		memcpy(p + i, &r, len - i);
	}
}

void tl_event_record(void *arg, enum raid_event ev, const char *msg)
{
	struct tl_events *e = arg;

	if ((unsigned)ev >= TL_NEVENTS)
		return;
	pthread_mutex_lock(&e->lock);
	e->count[ev]++;
	snprintf(e->last[ev], sizeof(e->last[ev]), "%s", msg ? msg : "");
	pthread_mutex_unlock(&e->lock);
}

uint64_t tl_events_count(struct tl_events *e, enum raid_event ev)
{
	uint64_t n;

	pthread_mutex_lock(&e->lock);
	n = e->count[ev];
	pthread_mutex_unlock(&e->lock);
	return n;
}

void tl_events_reset(struct tl_events *e)
{
	pthread_mutex_lock(&e->lock);
	memset(e->count, 0, sizeof(e->count));
	memset(e->last, 0, sizeof(e->last));
	pthread_mutex_unlock(&e->lock);
}

size_t tl_vol_add_path(struct tl_vol *t, const char *name)
{
	char p[4096];

	if (t->npaths >= TL_MAX_PATHS)
		abort();
	tl_path(p, sizeof(p), t->dir, "%s", name);
	t->paths[t->npaths] = strdup(p);
	if (t->paths[t->npaths] == NULL)
		abort();
	return t->npaths++;
}

static void open_opts(struct tl_vol *t, struct raid_open_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->event_fn = tl_event_record;
	o->event_arg = &t->events;
	o->fault_inject = t->fault_inject;
	o->auto_rebuild = t->auto_rebuild;
}

int tl_vol_create(struct tl_vol *t, const char *base, uint32_t ngroups,
    uint32_t ndata, uint32_t nparity, uint64_t disk_blocks,
    bool fault_inject)
{
	struct raid_create_opts c;
	struct raid_open_opts o;
	char name[64];

	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->events.lock, NULL);
	t->dir = tl_tmpdir_make(base, "filer-raid");
	t->ngroups = ngroups;
	t->ndata = ndata;
	t->nparity = nparity;
	t->disk_blocks = disk_blocks;
	t->nvbns = (uint64_t)ngroups * ndata * disk_blocks;
	t->fault_inject = fault_inject;
	for (uint32_t g = 0; g < ngroups; g++) {
		for (uint32_t d = 0; d < ndata + nparity; d++) {
			snprintf(name, sizeof(name), "d%u_%u.img", g, d);
			tl_vol_add_path(t, name);
		}
	}
	t->shadow = calloc(t->nvbns, TL_BS);
	if (t->shadow == NULL)
		abort();
	memset(&c, 0, sizeof(c));
	c.ngroups = ngroups;
	c.ndata = ndata;
	c.nparity = nparity;
	c.disk_blocks = disk_blocks;
	c.paths = (const char *const *)t->paths;
	open_opts(t, &o);
	return raid_create(&c, &o, &t->v);
}

int tl_vol_open_paths(struct tl_vol *t, const char *const *paths, size_t n)
{
	struct raid_open_opts o;

	int rc;

	open_opts(t, &o);
	t->v = NULL;
	rc = raid_open(paths, n, &o, &t->v);
	if (rc != 0)
		t->v = NULL;
	return rc;
}

int tl_vol_open(struct tl_vol *t)
{
	return tl_vol_open_paths(t, (const char *const *)t->paths, t->npaths);
}

void tl_vol_close(struct tl_vol *t)
{
	if (t->v != NULL)
		raid_close(t->v);
	t->v = NULL;
}

void tl_vol_destroy(struct tl_vol *t)
{
	tl_vol_close(t);
	for (size_t i = 0; i < t->npaths; i++)
		free(t->paths[i]);
	free(t->shadow);
	tl_tmpdir_remove(t->dir);
	pthread_mutex_destroy(&t->events.lock);
	memset(t, 0, sizeof(*t));
}

int tl_vol_fill(struct tl_vol *t, uint64_t seed)
{
	uint64_t rng = seed;
	uint64_t per_group = (uint64_t)t->ndata * t->disk_blocks;
	uint32_t chunk = 16;	/* stripes per call */
	int rc;

	tl_fill_random(t->shadow, t->nvbns * TL_BS, &rng);
	for (uint32_t g = 0; g < t->ngroups; g++) {
		for (uint64_t s = 0; s < t->disk_blocks; s += chunk) {
			uint32_t ns = (uint32_t)(t->disk_blocks - s < chunk ?
			    t->disk_blocks - s : chunk);
			uint64_t vbn = g * per_group + s * t->ndata;
			rc = raid_write_stripes(t->v, vbn, ns, tl_shadow(t, vbn));
			if (rc != 0)
				return rc;
		}
	}
	return raid_flush(t->v);
}

int tl_vol_write_random(struct tl_vol *t, uint64_t vbn, uint32_t n,
    uint64_t *rng)
{
	uint8_t *buf = malloc((size_t)n * TL_BS);
	int rc;

	if (buf == NULL)
		abort();
	tl_fill_random(buf, (size_t)n * TL_BS, rng);
	rc = raid_write(t->v, vbn, n, buf);
	if (rc == 0)
		memcpy(tl_shadow(t, vbn), buf, (size_t)n * TL_BS);
	free(buf);
	return rc;
}

long tl_first_diff_block(const void *a, const void *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (memcmp((const uint8_t *)a + i * TL_BS,
		    (const uint8_t *)b + i * TL_BS, TL_BS) != 0)
			return (long)i;
	}
	return -1;
}

uint64_t tl_vol_verify(struct tl_vol *t, int *read_err)
{
	uint32_t chunk = t->ndata;
	uint8_t *buf = malloc((size_t)chunk * TL_BS);
	uint64_t bad = 0;
	int reported = 0;

	if (buf == NULL)
		abort();
	if (read_err != NULL)
		*read_err = 0;
	for (uint64_t vbn = 0; vbn < t->nvbns; vbn += chunk) {
		uint32_t n = (uint32_t)(t->nvbns - vbn < chunk ?
		    t->nvbns - vbn : chunk);
		int rc = raid_read(t->v, vbn, n, buf);
		if (rc != 0) {
			if (read_err != NULL && *read_err == 0)
				*read_err = rc;
			if (reported++ < 4)
				fprintf(stderr, "  read vbn %llu+%u: %s\n",
				    (unsigned long long)vbn, n,
				    fl_strerror(rc));
			bad += n;
			continue;
		}
		for (uint32_t i = 0; i < n; i++) {
			if (memcmp(buf + (size_t)i * TL_BS,
			    tl_shadow(t, vbn + i), TL_BS) == 0)
				continue;
			if (reported++ < 4)
				fprintf(stderr, "  vbn %llu: wrong data\n",
				    (unsigned long long)(vbn + i));
			bad++;
		}
	}
	free(buf);
	return bad;
}

int64_t tl_find_data_offset(const char *path, const void *expect,
    uint64_t block)
{
	int fd = open(path, O_RDONLY);
	int64_t size = tl_file_size(path);
	int64_t found = -1;
	uint8_t *win = malloc(1 << 20);
	const size_t winlen = 1 << 20;

	if (fd < 0 || size < 0 || win == NULL)
		goto out;
	/* Windows overlapping by one block so no candidate is missed. */
	for (int64_t off = 0; off + TL_BS <= size && found < 0;
	    off += winlen - TL_BS) {
		ssize_t r = pread(fd, win, winlen, off);
		if (r < (ssize_t)TL_BS)
			break;
		for (size_t k = 0; k + TL_BS <= (size_t)r; k += 512) {
			if (memcmp(win + k, expect, TL_BS) == 0) {
				found = off + (int64_t)k;
				break;
			}
		}
	}
	if (found >= 0)
		found -= (int64_t)(block * TL_BS);
out:
	if (fd >= 0)
		close(fd);
	free(win);
	return found;
}

int tl_image_read_block(const char *path, int64_t data_off, uint64_t block,
    void *buf)
{
	int fd = open(path, O_RDONLY);
	ssize_t r;

	if (fd < 0)
		return -errno;
	r = pread(fd, buf, TL_BS, data_off + (int64_t)(block * TL_BS));
	close(fd);
	if (r < 0)
		return -errno;
	if (r != (ssize_t)TL_BS)
		return -EIO;
	return 0;
}

int tl_vol_save_images(struct tl_vol *t, const char *suffix)
{
	size_t members = (size_t)t->ngroups * (t->ndata + t->nparity);
	char to[4200];

	for (size_t i = 0; i < members; i++) {
		snprintf(to, sizeof(to), "%s.%s", t->paths[i], suffix);
		int rc = tl_copy_file(t->paths[i], to);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int tl_vol_restore_images(struct tl_vol *t, const char *suffix)
{
	size_t members = (size_t)t->ngroups * (t->ndata + t->nparity);
	char from[4200];

	for (size_t i = 0; i < members; i++) {
		snprintf(from, sizeof(from), "%s.%s", t->paths[i], suffix);
		int rc = tl_copy_file(from, t->paths[i]);
		if (rc != 0)
			return rc;
	}
	return 0;
}
