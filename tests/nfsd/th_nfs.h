/*
 * tests/nfsd/th_nfs.h: libnfs (the independent client) against the
 * harness's server.  Included after th.h.
 */
#ifndef FILER_TESTS_NFSD_TH_NFS_H
#define FILER_TESTS_NFSD_TH_NFS_H

#include <nfsc/libnfs.h>

#include "tests/nfsd/th.h"

/* Mount path with libnfs over TCP; returns the context, or NULL with the
 * libnfs error in err (if given). */
static TH_UNUSED struct nfs_context *th_nfs_mount(const struct th *t,
    const char *path, int uid, int gid, char *err, size_t errlen)
{
	struct nfs_context *nfs = nfs_init_context();
	char url[512];

	VERIFY(nfs != NULL);
	nfs_set_timeout(nfs, TH_TIMEOUT_MS);
	snprintf(url, sizeof(url),
	    "nfs://127.0.0.1%s?nfsport=%u&mountport=%u&version=3", path,
	    t->nfs_port, t->mnt_port);
	struct nfs_url *u = nfs_parse_url_dir(nfs, url);
	VERIFY(u != NULL);
	if (uid >= 0) {
		nfs_set_uid(nfs, uid);
		nfs_set_gid(nfs, gid);
	}
	int rc = nfs_mount(nfs, u->server, u->path);
	nfs_destroy_url(u);
	if (rc != 0) {
		if (err != NULL)
			snprintf(err, errlen, "%s", nfs_get_error(nfs));
		nfs_destroy_context(nfs);
		return NULL;
	}
	return nfs;
}

#endif
