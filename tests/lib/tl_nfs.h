/*
 * tests/lib/tl_nfs.h: the libnfs client as tests and benchmarks use it
 * against filerd on loopback.
 *
 * Only runners linked with -lnfs may call these (tests/lib is an archive:
 * a runner that calls none of them does not pull libnfs in).
 */
#ifndef FILER_TESTS_LIB_TL_NFS_H
#define FILER_TESTS_LIB_TL_NFS_H

#include <stddef.h>
#include <stdint.h>

#include <nfsc/libnfs.h>

/*
 * Mount url ("nfs://127.0.0.1/vol/x?nfsport=..&mountport=..") as root
 * (uid and gid 0), no directory cache, timeout_ms per RPC.  Returns an
 * owned context (nfs_destroy_context), or NULL with the reason in err
 * (err may be NULL when errlen is 0).
 */
struct nfs_context *tl_nfs_mount_url(const char *url, int timeout_ms,
    char *err, size_t errlen);

/* The same for an export of a filerd on 127.0.0.1 at these ports. */
struct nfs_context *tl_nfs_mount(const char *export_path, uint16_t nfs_port,
    uint16_t mnt_port, int timeout_ms, char *err, size_t errlen);

/* All n bytes at off, however many calls it takes: 0, a negative errno,
 * or -EIO when the server transfers nothing. */
int tl_nfs_write_all(struct nfs_context *nfs, struct nfsfh *fh, uint64_t off,
    const void *b, size_t n);
int tl_nfs_read_all(struct nfs_context *nfs, struct nfsfh *fh, uint64_t off,
    void *b, size_t n);

#endif
