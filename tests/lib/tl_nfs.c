/*
 * tests/lib/tl_nfs.c: the libnfs client (see tl_nfs.h).
 */
#include "tests/lib/tl_nfs.h"

#include <errno.h>
#include <stdio.h>

struct nfs_context *tl_nfs_mount_url(const char *url, int timeout_ms,
    char *err, size_t errlen)
{
	struct nfs_context *nfs = nfs_init_context();
	struct nfs_url *u;

	if (nfs == NULL) {
		snprintf(err, errlen, "nfs_init_context failed");
		return NULL;
	}
	nfs_set_timeout(nfs, timeout_ms);
	nfs_set_dircache(nfs, 0);
	nfs_set_uid(nfs, 0);
	nfs_set_gid(nfs, 0);
	u = nfs_parse_url_dir(nfs, url);
	if (u == NULL) {
		snprintf(err, errlen, "%s: %s", url, nfs_get_error(nfs));
		goto fail;
	}
	if (nfs_mount(nfs, u->server, u->path) != 0) {
		snprintf(err, errlen, "mount %s: %s", url, nfs_get_error(nfs));
		nfs_destroy_url(u);
		goto fail;
	}
	nfs_destroy_url(u);
	return nfs;
fail:
	nfs_destroy_context(nfs);
	return NULL;
}

struct nfs_context *tl_nfs_mount(const char *export_path, uint16_t nfs_port,
    uint16_t mnt_port, int timeout_ms, char *err, size_t errlen)
{
	char url[512];

	snprintf(url, sizeof(url), "nfs://127.0.0.1%s?nfsport=%u&mountport=%u",
	    export_path, nfs_port, mnt_port);
	return tl_nfs_mount_url(url, timeout_ms, err, errlen);
}

int tl_nfs_write_all(struct nfs_context *nfs, struct nfsfh *fh, uint64_t off,
    const void *b, size_t n)
{
	const char *p = b;

	while (n > 0) {
		int k = nfs_pwrite(nfs, fh, off, n, p);

		if (k <= 0)
			return k < 0 ? k : -EIO;
		off += (uint64_t)k;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int tl_nfs_read_all(struct nfs_context *nfs, struct nfsfh *fh, uint64_t off,
    void *b, size_t n)
{
	char *p = b;

	while (n > 0) {
		int k = nfs_pread(nfs, fh, off, n, p);

		if (k <= 0)
			return k < 0 ? k : -EIO;
		off += (uint64_t)k;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}
