/*
 * nfsd/nfsd.h: the NFSv3 and MOUNT v3 server (docs/nfsd.md).
 *
 * WHAT THIS MODULE PROMISES
 *   A server for NFS version 3 (program 100003, all 22 procedures of
 *   RFC 1813) and MOUNT version 3 (program 100005) over TCP and UDP, on
 *   top of wafl volumes.  Both programs are answered on both listening
 *   ports; rpcbind (when it runs and the configuration asks for it) is told
 *   NFS lives on nfs_port and MOUNT on mount_port.
 *   - Every byte from the network is bounded before use: a TCP record is at
 *     most NFSD_MAX_RECORD bytes (the connection is closed past that), a
 *     malformed call gets GARBAGE_ARGS or is dropped, never a crash.
 *   - File handles carry fsid, fileid, generation, snapshot id and a keyed
 *     MAC (HMAC-SHA256 with the export's 32-byte key, truncated to 16
 *     bytes): forged or altered handles get NFS3ERR_BADHANDLE, handles of
 *     dead objects NFS3ERR_STALE; handles depend on nothing that changes on
 *     restart.
 *   - Exports follow Linux exports(5): the first client rule matching the
 *     caller's address applies (ro/rw, root_squash/no_root_squash/
 *     all_squash, anonuid/anongid, secure/insecure); MNT and every NFS call
 *     check it.  A host-name pattern ("*.lab") matches by the caller's
 *     forward-confirmed reverse DNS name, looked up by a worker (never the
 *     event thread) and cached per address (bounded, with a TTL).
 *   - Non-idempotent procedures go through a duplicate request cache.
 *   - A slow or hostile client cannot stall others (non-blocking sockets,
 *     per-connection buffers, partial-record and idle timeouts).
 *
 * WHAT IT NEEDS
 *   Mounted wafl volumes, owned by the caller, that stay mounted from
 *   nfsd_create (or the nfsd_set_exports naming them) until nfsd_stop, or
 *   the nfsd_set_exports leaving them out, returns.  Each export names its
 *   volume and the volume's file-handle key (wafl_fh_key).
 *
 * OWNERSHIP AND THREADS
 *   nfsd_create copies everything out of the config (strings, rules, keys);
 *   the config may be freed afterwards.  nfsd_start spawns one event thread
 *   and cfg->threads workers; nfsd_stop joins them and closes every socket;
 *   nfsd_free frees the server (stopping it first if needed).  Calls on one
 *   server must not race each other; distinct servers are independent.
 *
 * ERRORS
 *   0 or a negative errno: -EINVAL (bad config: path, client spec, key),
 *   -EADDRINUSE (port taken), -ENOENT (export subdirectory missing), -ENOMEM.
 */
#ifndef FILER_NFSD_NFSD_H
#define FILER_NFSD_NFSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wafl/wafl.h"

typedef struct nfsd nfsd_t;

#define NFSD_DEFAULT_NFS_PORT	2049
#define NFSD_DEFAULT_MOUNT_PORT	20048
#define NFSD_MAX_IO		(1u << 20)		/* rtmax/wtmax, TCP */
#define NFSD_MAX_IO_UDP		(32u << 10)		/* rtmax/wtmax, UDP */
#define NFSD_MAX_RECORD		(NFSD_MAX_IO + (64u << 10))
#define NFSD_MAX_EXPORTS	64
#define NFSD_MAX_RULES		64
#define NFSD_FH_KEY_BYTES	32

/* Per-client options (exports(5)).  Defaults, with flags 0: ro,
 * root_squash, secure, anonuid = anongid = 65534. */
enum nfsd_rule_flags {
	NFSD_RW			= 1u << 0,
	NFSD_NO_ROOT_SQUASH	= 1u << 1,
	NFSD_ALL_SQUASH		= 1u << 2,
	NFSD_INSECURE		= 1u << 3,
	NFSD_ANONUID		= 1u << 4,	/* anonuid given */
	NFSD_ANONGID		= 1u << 5,	/* anongid given */
};

struct nfsd_client_rule {
	/* "*", an address ("192.0.2.7", "::1"), a network in CIDR form
	 * ("10.0.0.0/8"), a host name (resolved by nfsd_create) or a host-name
	 * pattern with '*' and '?' ("*.lab", "node??.lab": letters, digits,
	 * '.', '-', '_', at most 253 bytes) matched against the caller's
	 * forward-confirmed name (docs/nfsd.md, Exports). */
	const char *client;
	uint32_t flags;			/* enum nfsd_rule_flags */
	uint32_t anonuid, anongid;	/* with NFSD_ANONUID / NFSD_ANONGID */
};

struct nfsd_export {
	const char *path;		/* "/vol/NAME" or "/vol/NAME/sub/dir" */
	wafl_vol_t *vol;
	/* The volume's file-handle key (fsinfo fh_key).  Every export of one
	 * volume must give the same key. */
	uint8_t fh_key[NFSD_FH_KEY_BYTES];
	const struct nfsd_client_rule *rules;	/* first match wins */
	size_t nrules;
};

#define NFSD_MOUNT_RECS_MAX		4096u	/* mount records in all */
#define NFSD_MOUNTS_PER_HOST_DEFAULT	64u

struct nfsd_config {
	const char *bind_addr;		/* NULL: all IPv4 addresses */
	uint16_t nfs_port;		/* 0: NFSD_DEFAULT_NFS_PORT */
	uint16_t mount_port;		/* 0: NFSD_DEFAULT_MOUNT_PORT */
	bool ephemeral_ports;		/* tests: let the kernel pick both */
	bool no_udp;			/* serve TCP only */
	bool register_rpcbind;		/* tell rpcbind (if it runs) */
	uint32_t threads;		/* workers; 0: nfsd_default_threads */
	uint32_t max_conns;		/* 0: 16384; more are refused */
	uint32_t idle_timeout_ms;	/* idle connection; 0: 360000 */
	uint32_t partial_timeout_ms;	/* half a record stalled; 0: 30000 */
	uint32_t drc_entries;		/* duplicate request cache; 0: 4096 */
	/* MOUNT records (DUMP's list) kept per client address, so one
	 * client cannot fill the list (at most NFSD_MOUNT_RECS_MAX in all);
	 * 0: NFSD_MOUNTS_PER_HOST_DEFAULT.  A MNT past it is answered, not
	 * recorded (RFC 1813: the list is advisory). */
	uint32_t mounts_per_host;
	/* Client names for host-name patterns: addresses kept (0: 1024, at
	 * most 65536), how long a name found (0: 600000 ms) and the lack of
	 * one (0: 60000 ms) are believed. */
	uint32_t host_cache_entries;
	uint32_t host_cache_ttl_ms, host_cache_neg_ttl_ms;
	/* How long a call waits for the name of a client never seen
	 * before (0: 1000 ms); longer, it gets NFS3ERR_JUKEBOX (MOUNT: no
	 * answer, the client retransmits). */
	uint32_t host_wait_ms;
	const struct nfsd_export *exports;
	size_t nexports;
};

int nfsd_create(const struct nfsd_config *cfg, nfsd_t **out);
/* The workers when none are configured: one more than the online CPUs,
 * 3 to 64. */
uint32_t nfsd_default_threads(void);

/* Bind, listen, register with rpcbind, start the threads. */
int nfsd_start(nfsd_t *s);
/* Unregister, stop the threads, close every connection.  Idempotent. */
void nfsd_stop(nfsd_t *s);
void nfsd_free(nfsd_t *s);

/*
 * Replace the exports (a running server too), e.g. after the
 * configuration changed or a volume came or went.  The new list is checked
 * as nfsd_create checks it; on error the old one stays.  Calls in progress
 * finish first; new calls see the new list.  Connections, the DRC and the
 * MOUNT list are kept; handles of an export that stays keep working,
 * handles of one that went get NFS3ERR_BADHANDLE.
 */
int nfsd_set_exports(nfsd_t *s, const struct nfsd_export *exports,
    size_t nexports);

/* Ports actually bound (after nfsd_start). */
void nfsd_ports(const nfsd_t *s, uint16_t *nfs_port, uint16_t *mount_port);

struct nfsd_stats {
	uint64_t calls, replies, dropped;
	uint64_t garbage, auth_errors;
	uint64_t drc_hits, drc_inprogress_drops;
	uint64_t conns_accepted, conns_open, conns_timed_out, conns_refused;
	uint64_t records_oversized;
	/* Sends of several TCP replies in one sendmsg (nfsd_send_replies),
	 * and the replies they carried. */
	uint64_t reply_batches, reply_batched;
	/* Reads acknowledged at once (TCP_QUICKACK): they ended inside a
	 * record or brought a call whose reply may wait. */
	uint64_t quick_acks;
	/* Reverse lookups made for host-name patterns, and names answered
	 * from the host cache. */
	uint64_t host_lookups, host_cache_hits;
	uint64_t host_stale;		/* expired names served, refreshing */
	uint64_t host_busy;		/* calls told to retry: name not known */
};
void nfsd_get_stats(nfsd_t *s, struct nfsd_stats *st);

#endif
