/*
 * nfsd/nfsd_impl.h: internals shared by the files of nfsd/ (never included
 * from outside the module).  docs/nfsd.md describes how they fit.
 *
 *   transport.c  event thread, TCP/UDP sockets, record marking, workers
 *   rpc.c        call header, credentials, dispatch, reply encoding
 *   drc.c        duplicate request cache
 *   export.c     client rules, host-name patterns, credential squashing
 *   hostcache.c  forward-confirmed client host names and their cache
 *   fh.c         file-handle format and MAC
 *   nfs3_*.c     the NFS version 3 procedures and their table
 *   mount3.c     the MOUNT version 3 procedures and their table
 *   server.c     create/start/stop, rpcbind
 */
#ifndef FILER_NFSD_NFSD_IMPL_H
#define FILER_NFSD_NFSD_IMPL_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <rpc/rpc.h>

#include "nfsd/nfsd.h"
#include "wafl/wafl.h"

#define NFS_PROG		100003u
#define NFS_VERS		3u
#define MOUNT_PROG		100005u
#define MOUNT_VERS		3u

#define NFSD_AUTH_MAX		400u	/* opaque_auth body (RFC 5531) */
#define NFSD_MACHNAME_MAX	255u
#define NFSD_NGROUPS_MAX	16u
#define NFSD_UDP_MAX		65536u
/* The longest reply sent over UDP (without record mark): under the
 * largest IPv4 UDP payload, 65507 bytes. */
#define NFSD_UDP_REPLY_MAX	(NFSD_UDP_MAX - 64u)
#define NFSD_ANON_ID		65534u
/* Bounds on what one READDIR reply may carry (recursion depth of the
 * generated list encoders); clients asking more simply get less. */
#define NFSD_READDIR_MAX	(64u << 10)
#define NFSD_READDIRPLUS_MAX	(256u << 10)

/* ------------------------------------------------------------ exports */

struct nfsd_rule {
	char spec[256];			/* as configured (EXPORT lists it) */
	bool any;
	bool wildcard;			/* spec is a host-name pattern */
	sa_family_t family;
	uint8_t addr[16];
	uint32_t prefix;		/* bits compared */
	uint32_t flags;			/* enum nfsd_rule_flags */
	uint32_t anonuid, anongid;
};

struct nfsd_exp {
	uint32_t id;			/* crc32c of path: goes in handles */
	char path[WAFL_PATH_MAX];
	char volname[WAFL_NAME_MAX + 1];
	wafl_vol_t *vol;
	uint8_t key[NFSD_FH_KEY_BYTES];
	/* HMAC-SHA256 of key with the key's two pad blocks already hashed
	 * (nfsd_fh_key_init): a handle's MAC hashes only its own bytes. */
	struct evp_md_ctx_st *mac_inner, *mac_outer;
	uint64_t fsid;			/* of the volume */
	struct wafl_obj root;		/* the exported directory */
	struct wafl_obj volroot;	/* the volume's root directory */
	struct nfsd_rule *rules;
	size_t nrules;
};

/* Compile cfg rules into e (resolving host names).  0 or -EINVAL. */
int nfsd_rules_compile(struct nfsd_exp *e, const struct nfsd_client_rule *r,
    size_t n);
/* First rule matching the address, or NULL (denied).  Reaching a wildcard
 * rule asks s's host cache for the caller's name: may wait for the
 * resolver (a bounded time), so workers only (never the event thread).
 * When the name is not known in time, NULL with *busy set (busy may be
 * NULL): the caller asks the client to retry instead of refusing it. */
const struct nfsd_rule *nfsd_rule_match(struct nfsd *s,
    const struct nfsd_exp *e, const struct sockaddr_storage *peer,
    bool *busy);
/* Source port < 1024, or the rule says insecure. */
bool nfsd_rule_port_ok(const struct nfsd_rule *rule,
    const struct sockaddr_storage *peer);
/* Effective credential after squashing (root_squash, all_squash). */
void nfsd_cred_squash(const struct nfsd_rule *rule, bool auth_none,
    const struct wafl_cred *in, struct wafl_cred *out);

/* ---------------------------------------------------- client host names */

/* A host name in text form, without a final dot (RFC 1035: 255 octets on
 * the wire). */
#define NFSD_HOSTNAME_MAX	253u

/*
 * Does name match the exports(5) pattern?  '*' matches any run of bytes,
 * dots included (so "*.lab" matches "a.b.lab"), '?' exactly one byte;
 * ASCII letters match either case; there are no character classes and no
 * escapes.  An empty or over-long (> NFSD_HOSTNAME_MAX) pattern or name
 * matches nothing.
 */
bool nfsd_host_match(const char *pattern, const char *name);

/*
 * The forward-confirmed name of an address (family AF_INET or AF_INET6,
 * addr in network order, 4 or 16 bytes used): the reverse lookup
 * (getnameinfo, NI_NAMEREQD) must give a host name -- at most
 * NFSD_HOSTNAME_MAX bytes of letters, digits, '.', '-' and '_', not an
 * address in text form -- whose forward lookup (getaddrinfo) gives the
 * address back.  0 with the name in name[NFSD_HOSTNAME_MAX + 1], or
 * -ENOENT (no name, a name that does not lead back, the resolver failed).
 * Blocks as long as the resolver does.
 */
typedef int (*nfsd_resolve_fn)(sa_family_t family, const uint8_t *addr,
    char *name);
int nfsd_host_resolve(sa_family_t family, const uint8_t *addr, char *name);

/*
 * The host cache (hostcache.c): resolve's answers per client address,
 * found names for ttl_ms, no name for neg_ttl_ms, at most entries of them
 * (least recently used evicted; the table is allocated at the first
 * lookup).  The resolver runs on NFSD_HOST_RESOLVERS threads of the
 * cache's own, one lookup per address at a time; a caller waits at most
 * wait_ms for an address never answered before, and at most max_waiters
 * callers wait at once.  Thread-safe.  0, -EINVAL or -ENOMEM.
 */
#define NFSD_HOST_RESOLVERS	2
struct nfsd_hostcache_cfg {
	uint32_t entries;
	uint32_t ttl_ms, neg_ttl_ms;
	uint32_t wait_ms;
	uint32_t max_waiters;		/* at least 1 */
};
struct nfsd_hostcache_stats {
	uint64_t lookups;	/* resolutions asked for (misses, refreshes) */
	uint64_t hits;		/* answered from the cache */
	uint64_t stale;		/* answered from an expired entry, refreshing */
	uint64_t busy;		/* -EAGAIN: no answer in time, or too many wait */
};
struct nfsd_hostcache;
int nfsd_hostcache_create(const struct nfsd_hostcache_cfg *cfg,
    nfsd_resolve_fn resolve, struct nfsd_hostcache **out);
/* Lookups in flight finish on their threads, which then go away; this
 * never waits for the resolver. */
void nfsd_hostcache_free(struct nfsd_hostcache *c);
/* As nfsd_host_resolve, through the cache: 0 with the name, -ENOENT (no
 * name), or -EAGAIN when the address was never answered and its lookup
 * did not end within wait_ms (it goes on: a later call finds the answer),
 * max_waiters callers wait already, or every slot waits for a lookup.  An
 * expired answer is given as it was while a lookup refreshes it. */
int nfsd_hostcache_name(struct nfsd_hostcache *c, sa_family_t family,
    const uint8_t *addr, char *name);
void nfsd_hostcache_stats(struct nfsd_hostcache *c,
    struct nfsd_hostcache_stats *st);
/* Would nfsd_hostcache_name answer at once (from the cache, or "retry")?
 * When not, the lookup is started (if it is not running). */
bool nfsd_hostcache_ready(struct nfsd_hostcache *c, sa_family_t family,
    const uint8_t *addr);
struct nfsd_req;
/* Is r from a client whose name a rule of the exports may need and the
 * cache does not hold yet (so that checking its rules may wait)? */
bool nfsd_req_may_wait_for_name(struct nfsd_req *r);

/* --------------------------------------------------------- file handles */

/* An object as nfsd names it: a wafl object of an export, or the virtual
 * ".snapshot" directory of the export's volume. */
struct nfsd_obj {
	const struct nfsd_exp *exp;
	struct wafl_obj o;
	bool snapdir;
};

#define NFSD_FH_LEN		52u

/* Encode into out[NFSD_FH_LEN]. */
/* Set up, and free, e's MAC states from e->key.  0 or -ENOMEM. */
int nfsd_fh_key_init(struct nfsd_exp *e);
void nfsd_fh_key_free(struct nfsd_exp *e);
/* 0, or -ENOMEM (no handle made). */
int nfsd_fh_encode(const struct nfsd_obj *ob, uint8_t *out);
/* Check length, version and MAC and find the export: 0, or -EBADF
 * (NFS3ERR_BADHANDLE) for anything malformed, forged or of no export. */
int nfsd_fh_decode(struct nfsd *s, const uint8_t *fh, size_t len,
    struct nfsd_obj *ob);
/* fsid clients see for an object (snapshot trees get their own). */
uint64_t nfsd_obj_fsid(const struct nfsd_obj *ob);
/* fileid of the virtual .snapshot directory. */
#define NFSD_SNAPDIR_FILEID	0xfffffffffffffffeull

/* ---------------------------------------------------------------- DRC */

struct nfsd_drc;
enum nfsd_drc_verdict { DRC_NEW, DRC_REPLAY, DRC_INPROGRESS };
struct nfsd_drc_key {
	uint32_t xid, prog, vers, proc;
	struct sockaddr_storage peer;
	uint32_t csum;			/* of the call head */
};
int nfsd_drc_create(uint32_t entries, struct nfsd_drc **out);
void nfsd_drc_free(struct nfsd_drc *d);
/* DRC_REPLAY: *reply / *len get an owned copy of the cached reply. */
enum nfsd_drc_verdict nfsd_drc_begin(struct nfsd_drc *d,
    const struct nfsd_drc_key *k, uint8_t **reply, size_t *len);
/* Store the reply (reply may be NULL: forget the entry, no reply sent). */
void nfsd_drc_finish(struct nfsd_drc *d, const struct nfsd_drc_key *k,
    const uint8_t *reply, size_t len);

/* ------------------------------------------------------------- requests */

struct nfsd_conn;

/*
 * One call, from the record read off the wire to the reply sent.  Owned by
 * the worker running it; every allocation made for it hangs off the arena
 * and is released by nfsd_req_free (the one place).
 */
struct nfsd_arena_chunk;
struct nfsd_req {
	struct nfsd *srv;
	struct nfsd_req *next;		/* work queue */
	bool alone;			/* taken alone (transport.c req_alone) */
	struct nfsd_conn *conn;		/* TCP (a reference), or NULL */
	int udp_fd;			/* UDP: the socket to answer on */
	bool udp;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	uint8_t *call;			/* owned: the record */
	size_t call_len;

	/* Decoded call header. */
	uint32_t xid, prog, vers, proc;
	uint32_t flavor;
	struct wafl_cred ucred;		/* as the client sent (AUTH_SYS) */
	size_t head_len;		/* header bytes before the args */

	/* Set by the NFS resolve of the first handle. */
	const struct nfsd_rule *rule;
	bool transient;			/* answered "try later": not cached */
	struct wafl_cred cred;		/* after squashing */

	struct nfsd_arena_chunk *arena;

	/* Reply data sent behind the encoded reply (READ): its pieces as
	 * wafl_read_vec left them, owned, handed to the transport with the
	 * reply, else freed by nfsd_req_free. */
	struct wafl_rdvec *rdata;

	/* A reply waiting for its NVLOG record (rpc.c reply_durable). */
	struct {
		uint8_t *rec;
		struct wafl_rdvec *data;
		size_t len;
		struct nfsd_drc_key key;
		bool in_drc;
		bool immediate;		/* not waiting: corked in a batch */
	} dfr;
};

/* Zeroed memory owned by the request (freed by nfsd_req_free); NULL on
 * failure. */
void *nfsd_req_alloc(struct nfsd_req *r, size_t size);
void nfsd_req_free(struct nfsd_req *r);

/* Procedure table entries. */
enum nfsd_proc_flags {
	NFSD_MAKES_WRITE	= 1u << 0,	/* ROFS on ro export/snapshot */
	NFSD_NOT_IDEMPOTENT	= 1u << 1,	/* through the DRC */
};

/* Handler result: what happens to the RPC (protocol status lives in the
 * result struct). */
enum nfsd_disp { NFSD_REPLY = 0, NFSD_DROP, NFSD_SYSTEM_ERR };

struct nfsd_proc {
	const char *name;
	xdrproc_t xdr_args;
	size_t args_size;
	xdrproc_t xdr_res;
	/* Optional: encodes the result up to the length of its trailing
	 * opaque, whose bytes the handler left in r->rdata; the transport
	 * sends them from there (no copy into the reply buffer). */
	xdrproc_t xdr_res_head;
	size_t res_size;
	enum nfsd_disp (*handler)(struct nfsd_req *r, void *args, void *res);
	uint32_t flags;
	/* Protocol status the RFC lists for this procedure (0-terminated);
	 * anything else is reported as the last entry (nfsd_status). */
	const int *errors;
};

struct nfsd_prog {
	uint32_t prog, vers;
	const struct nfsd_proc *procs;
	uint32_t nprocs;
};

/* XDR of void with the xdrproc_t shape (tirpc declares xdr_void(void)). */
bool_t nfsd_xdr_void(XDR *x, void *p);

extern const struct nfsd_prog nfsd_nfs3_prog;
extern const struct nfsd_prog nfsd_mount3_prog;

/* rpc.c: run one call to completion (reply sent or dropped); frees r. */
void nfsd_rpc_process(struct nfsd_req *r);
/*
 * Between these two, the calling thread's nfsd_rpc_process calls do not
 * send their TCP replies (those with at most NFSD_CORK_DATA_MAX bytes of
 * data): nfsd_rpc_batch_end sends them, each connection's share with one
 * sendmsg.  A worker brackets the requests it took together.
 */
#define NFSD_CORK_DATA_MAX	(64u << 10)
void nfsd_rpc_batch_begin(void);
void nfsd_rpc_batch_end(void);
/* Decode-only path (for the fuzzer): decode header, credentials and
 * arguments of call[len], free everything; returns the accept status that
 * a reply would carry, or -1 when the call would be dropped. */
int nfsd_rpc_decode_only(const uint8_t *call, size_t len);

/* transport.c */
struct nfsd_transport;
int nfsd_transport_start(struct nfsd *s);
void nfsd_transport_stop(struct nfsd *s);
/* Hold the workers: returns once no request is being processed; queued
 * requests wait (the event thread keeps reading) until resume. */
void nfsd_transport_pause(struct nfsd *s);
/* Count replies waiting for the NVLOG (+1 / -1); nfsd_transport_stop
 * waits until none is left. */
void nfsd_transport_deferred(struct nfsd *s, int delta);
void nfsd_transport_resume(struct nfsd *s);
/* Send a reply: rec has 4 bytes of room for the record mark in front of
 * body_len encoded bytes; data (may be NULL), the bytes that follow the
 * encoded reply on the wire, with their XDR padding (READ's data, whose
 * length the encoded reply ends with).  Both are consumed (freed once
 * sent) and go out by sendmsg from where they are, never copied.  Never
 * blocks on a slow client. */
void nfsd_send_reply(struct nfsd_req *r, uint8_t *rec, size_t body_len,
    struct wafl_rdvec *data);
/*
 * nfsd_send_reply for n TCP requests of one connection, each reply in its
 * dfr (rec, len, data; consumed, the fields cleared): one
 * sendmsg for all of them when nothing is queued on the connection (what
 * the socket does not take is queued, as for one reply).  At most
 * NFSD_SEND_BATCH.
 */
#define NFSD_SEND_BATCH		64u
void nfsd_send_replies(struct nfsd_req *const *rs, size_t n);
/*
 * The count of a READ call, from its record as it came (the worker decodes
 * and checks everything again); 0 if the record is too short or a length
 * in it is out of bounds.  After the header: credential and verifier
 * (flavor, length, body), then READ3args (handle, offset, count).
 */
uint32_t nfsd_read_count(const uint8_t *call, size_t len);
/* A request on connection c is finished: flow control, drop its
 * reference (called by nfsd_req_free). */
void nfsd_conn_done(struct nfsd *s, struct nfsd_conn *c);
/* Is the calling thread a server's event thread (which must never
 * block)? */
bool nfsd_on_event_thread(void);

/* ------------------------------------------------------------- server */

struct nfsd_mount_rec {
	struct nfsd_mount_rec *next;
	char host[64];
	char path[WAFL_PATH_MAX + 1];	/* MNTPATHLEN bytes and the NUL */
};

struct nfsd {
	struct nfsd_config cfg;		/* strings not kept */
	char bind_addr[64];
	struct nfsd_exp *exps;
	size_t nexps;
	bool patterns;			/* some rule of exps is a host pattern */
	struct nfsd_drc *drc;
	/* Names of clients for wildcard rules: kept across
	 * nfsd_set_exports (a name does not depend on the rules). */
	struct nfsd_hostcache *hosts;
	struct nfsd_transport *tp;
	uint16_t nfs_port, mount_port;
	bool started, registered;

	pthread_mutex_t mounts_lock;	/* MOUNT's advisory list */
	struct nfsd_mount_rec *mounts;
	_Atomic uint64_t mounts_full_logged_ns;	/* "not recorded" logged */
	_Atomic uint64_t mounts_host_logged_ns;	/* a host at its limit */
	_Atomic uint64_t dump_cut_logged_ns;	/* a DUMP reply cut */
	_Atomic uint64_t export_cut_logged_ns;	/* an EXPORT reply cut */

	struct {
		_Atomic uint64_t calls, replies, dropped, garbage,
		    auth_errors, drc_hits, drc_inprogress_drops,
		    conns_accepted, conns_open, conns_timed_out,
		    conns_refused, records_oversized, reply_batches,
		    reply_batched, quick_acks;
	} st;
};

/* Export by path (exact), for MNT. */
const struct nfsd_exp *nfsd_exp_by_path(const struct nfsd *s,
    const char *path);

#endif
