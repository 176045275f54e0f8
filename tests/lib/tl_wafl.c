#include "tests/lib/tl_wafl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/assert.h"
#include "tests/lib/tl_tmpdir.h"
#include "wafl/wafl_impl.h"

static void open_raid(struct tl_fs *f, bool create)
{
	struct raid_open_opts oo = { .fault_inject = f->fault_inject };

	if (create) {
		struct raid_create_opts co = {
			.ngroups = 1, .ndata = f->ndata, .nparity = f->nparity,
			.disk_blocks = f->disk_blocks, .paths = f->pp,
		};
		VERIFY0(raid_create(&co, &oo, &f->raid));
	} else {
		VERIFY0(raid_open(f->pp, f->ndisks, &oo, &f->raid));
	}
}

struct tl_fs *tl_fs_create(uint32_t ndata, uint32_t nparity,
    uint64_t disk_blocks, bool fault_inject)
{
	struct tl_fs *f = calloc(1, sizeof(*f));

	VERIFY(f != NULL && ndata + nparity <= TL_FS_MAXDISKS);
	f->dir = tl_tmpdir_make(NULL, "wafl");
	f->ndata = ndata;
	f->nparity = nparity;
	f->ndisks = ndata + nparity;
	f->disk_blocks = disk_blocks;
	f->fault_inject = fault_inject;
	for (uint32_t i = 0; i < f->ndisks; i++) {
		tl_path(f->paths[i], sizeof(f->paths[i]), f->dir, "d%u.img", i);
		f->pp[i] = f->paths[i];
	}
	tl_path(f->logpath, sizeof(f->logpath), f->dir, "nvlog");
	f->mo.nvlog_path = f->logpath;
	f->mo.nvlog_half_bytes = 8 << 20;
	f->mo.no_cp_thread = true;
	open_raid(f, true);
	VERIFY0(wafl_mkfs(f->raid, NULL));
	tl_fs_mount(f);
	return f;
}

void tl_fs_mount(struct tl_fs *f)
{
	VERIFY0(wafl_mount(f->raid, &f->mo, &f->v));
}

void tl_fs_reopen_raid(struct tl_fs *f)
{
	if (f->raid != NULL)
		raid_close(f->raid);
	open_raid(f, false);
}

void tl_fs_remount(struct tl_fs *f)
{
	VERIFY0(wafl_unmount(f->v));
	f->v = NULL;
	tl_fs_reopen_raid(f);
	tl_fs_mount(f);
}

void tl_fs_destroy(struct tl_fs *f)
{
	if (f->v != NULL)
		VERIFY0(wafl_unmount(f->v));
	if (f->raid != NULL)
		raid_close(f->raid);
	tl_tmpdir_remove(f->dir);
	free(f);
}

uint64_t tl_fs_new_file(struct tl_fs *f)
{
	static const struct wafl_cred root = { 0, 0, 0, { 0 } };
	struct wafl_obj dir, o;
	struct wafl_attr a;
	char name[32];

	VERIFY0(wafl_root(f->v, &dir));
	snprintf(name, sizeof(name), "tl-file-%u", ++f->nfiles);
	VERIFY0(wafl_create(f->v, &root, &dir, name, WAFL_GUARDED, NULL, 0, &o,
	    &a, NULL));
	return o.ino;
}

uint64_t tl_fs_new_orphan(struct tl_fs *f)
{
	uint64_t ino;
	uint32_t gen;
	struct wnode *wn;

	pthread_rwlock_rdlock(&f->v->cp_lock);
	VERIFY0(ialloc(f->v, &ino, &gen));
	VERIFY0(wnode_get(f->v, ino, &wn));
	wn->di.mode = S_IFREG | 0644;
	wn->di.nlink = 1;
	wnode_dirty(wn);
	wnode_put(wn);
	pthread_rwlock_unlock(&f->v->cp_lock);
	return ino;
}

void tl_fs_write(struct tl_fs *f, uint64_t ino, uint64_t off, const void *buf,
    uint32_t len)
{
	struct wnode *wn;

	pthread_rwlock_rdlock(&f->v->cp_lock);
	VERIFY0(wnode_get(f->v, ino, &wn));
	pthread_rwlock_wrlock(&wn->lock);
	VERIFY0(wn_write(wn, off, len, buf));
	pthread_rwlock_unlock(&wn->lock);
	wnode_put(wn);
	pthread_rwlock_unlock(&f->v->cp_lock);
}

uint32_t tl_fs_read(struct tl_fs *f, uint64_t ino, uint64_t off, void *buf,
    uint32_t len)
{
	struct wnode *wn;
	uint32_t got = 0;
	bool eof;

	pthread_rwlock_rdlock(&f->v->cp_lock);
	VERIFY0(wnode_get(f->v, ino, &wn));
	pthread_rwlock_rdlock(&wn->lock);
	VERIFY0(wn_read(wn, off, len, buf, &got, &eof));
	pthread_rwlock_unlock(&wn->lock);
	wnode_put(wn);
	pthread_rwlock_unlock(&f->v->cp_lock);
	return got;
}

void tl_fill_pattern(void *buf, size_t len, uint64_t seed)
{
	uint8_t *p = buf;
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		if ((i & 7) == 0)
			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		p[i] = (uint8_t)(s >> ((i & 7) * 8));
	}
}
