/*
 * admin/admin.h: the appliance's management plane (filerd, filerctl).
 *
 * WHAT THIS MODULE PROMISES
 *   filerd assembles the appliance from one sqlite database,
 *   <home>/filer.db (docs/admin.md): it opens and mounts every volume whose
 *   configured state is online, records raid events in the event log, runs
 *   snapshot schedules, starts every registered service (NFS, mirror) once
 *   the volumes are up, and serves the control socket <home>/filerd.sock
 *   that filerctl talks to.  A volume that cannot be assembled (disks
 *   missing or damaged beyond parity) is marked offline with the reason; the
 *   rest of the appliance keeps running.
 *
 *   A1  Every change to the database happens inside one transaction: a
 *       request either changes everything it names or nothing.
 *   A2  A request is validated completely (names, sizes, paths, that no
 *       disk is in use by another volume) before anything on disk or in the
 *       database changes; a refused request leaves both unchanged.
 *   A3  While filerd runs it is the only writer of the database; filerctl
 *       edits it directly only while holding the home's lock (the same lock
 *       filerd holds for its lifetime), so the two never interleave.
 *   A4  SIGTERM: no new request is accepted, services are stopped, every
 *       volume gets its final CP (wafl_unmount) and raid_close, the pid
 *       file is removed, exit status 0.
 *
 * SERVICES (how nfsd and mirror plug in)
 *   Dependencies point down (DESIGN.md §1): nfsd/ and mirror/ never include
 *   this header.  Each is plugged in by a small adapter in admin/
 *   (admin/svc_<module>.c) that wraps the module's own API in a struct
 *   adm_service and registers it (adm_service_register) from filerd's
 *   startup, before any volume is mounted.  filerd calls
 *   start() after every online volume is mounted, in registration order;
 *   stop() in reverse order at shutdown; reload() after SIGHUP or after a
 *   filerctl change of what the service reads (settings, exports);
 *   volume_up()/volume_down() when a volume comes online or is about to go
 *   offline (volume_down returns only when the service no longer touches
 *   the volume).  Every callback runs on filerd's main thread.
 *
 * THREADS
 *   Every adm_* function taking a struct adm_ctx must be called on the main
 *   thread (inside a service callback), except adm_event(), which any
 *   thread may call.
 *
 * OWNERSHIP
 *   struct adm_ctx is filerd's; services borrow it from start() to stop().
 *   A wafl_vol_t returned by adm_volume() is borrowed until that volume's
 *   volume_down() or the service's stop().  Strings handed to callbacks are
 *   borrowed for the call.
 */
#ifndef FILER_ADMIN_ADMIN_H
#define FILER_ADMIN_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wafl/wafl.h"

struct adm_ctx;

/* What changed, for adm_service.reload. */
#define ADM_RELOAD_SETTINGS	0x1u
#define ADM_RELOAD_EXPORTS	0x2u
#define ADM_RELOAD_MIRRORS	0x4u

struct adm_service {
	const char *name;
	/* 0 or a negative errno; a failed start is logged and recorded as an
	 * event, and filerd goes on without the service. */
	int (*start)(struct adm_ctx *ctx);
	void (*stop)(struct adm_ctx *ctx);
	int (*reload)(struct adm_ctx *ctx, unsigned what);
	void (*volume_up)(struct adm_ctx *ctx, const char *name,
	    wafl_vol_t *v);
	void (*volume_down)(struct adm_ctx *ctx, const char *name);
};

/* Register before adm_daemon_run; the struct is borrowed for good. */
int adm_service_register(const struct adm_service *s);

/* The home directory (borrowed for the daemon's lifetime). */
const char *adm_home(const struct adm_ctx *ctx);

/*
 * Settings (docs/admin.md lists the keys).  adm_setting_get copies the
 * value (or its default) into buf; -ENOENT for an unknown key, -ENOSPC if
 * buf is too small.  adm_setting_u64 returns the numeric value, or the
 * default when unset.
 */
int adm_setting_get(struct adm_ctx *ctx, const char *key, char *buf,
    size_t len);
uint64_t adm_setting_u64(struct adm_ctx *ctx, const char *key);

/* Mounted volume by name, or NULL if unknown or offline. */
wafl_vol_t *adm_volume(struct adm_ctx *ctx, const char *name);

/*
 * Export rules in the order an NFS server must try them: per export path,
 * rules in their configured order.  fn returns non-zero to stop.
 */
enum adm_squash { ADM_SQUASH_ROOT = 0, ADM_SQUASH_ALL, ADM_SQUASH_NONE };
struct adm_export_rule {
	const char *path;	/* "/vol/NAME" or "/vol/NAME/sub/dir" */
	const char *volume;
	const char *client;	/* "*", host, wildcard, address or CIDR */
	bool rw;
	enum adm_squash squash;
	uint32_t anonuid, anongid;
	bool secure;		/* client port must be < 1024 */
};
typedef int adm_export_fn(void *arg, const struct adm_export_rule *r);
int adm_exports_foreach(struct adm_ctx *ctx, adm_export_fn *fn, void *arg);

/* Append to the event log (any thread).  vol may be NULL. */
void adm_event(struct adm_ctx *ctx, const char *vol, const char *kind,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
