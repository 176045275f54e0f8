/*
 * admin/settings.c: the settings the appliance knows, their types, ranges,
 * defaults and when a change takes effect.  A key not in this table is
 * refused; a value is stored in its canonical form (sizes in bytes).
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/adm_impl.h"
#include "common/log.h"

static const struct adm_setting settings[] = {
	{ "cp_interval_ms", ADM_ST_UINT, 1000, 3600000, NULL, "10000",
	    "next volume online", "timer consistency point interval" },
	{ "cache_bytes", ADM_ST_SIZE, 1ull << 20, 1ull << 40, NULL,
	    "1073741824", "next volume online", "block cache per volume" },
	{ "cache_prefill", ADM_ST_BOOL, 0, 1, NULL, "true",
	    "next volume online",
	    "map the block cache's memory when a volume comes online" },
	{ "dirty_max_bytes", ADM_ST_SIZE, 1ull << 20, 1ull << 40, NULL,
	    "134217728", "next volume online",
	    "dirty data that triggers a consistency point" },
	{ "nvlog_half_bytes", ADM_ST_SIZE, 1ull << 20, 1ull << 32, NULL,
	    "67108864", "new volumes", "size of each half of a new NVLOG" },
	{ "auto_rebuild", ADM_ST_BOOL, 0, 1, NULL, "true",
	    "next volume online",
	    "rebuild onto a spare by itself when a disk fails" },
	{ "disk_io_timeout_ms", ADM_ST_UINT, 100, 3600000, NULL, "30000",
	    "next volume online",
	    "a disk that answers no read, write or flush in this long is "
	    "failed" },
	{ "nfs_port", ADM_ST_UINT, 1, 65535, NULL, "2049", "reload",
	    "NFS port (TCP and UDP)" },
	{ "mount_port", ADM_ST_UINT, 1, 65535, NULL, "20048", "reload",
	    "MOUNT port (TCP and UDP)" },
	{ "nfs_threads", ADM_ST_UINT, 0, 1024, NULL, "0", "reload",
	    "NFS worker threads (0: one more than the CPUs, 3 to 64)" },
	{ "nfs_rpcbind", ADM_ST_BOOL, 0, 1, NULL, "true", "reload",
	    "register NFS and MOUNT with rpcbind when it runs" },
	{ "nfs_mounts_per_host", ADM_ST_UINT, 1, 4096, NULL, "64", "reload",
	    "MOUNT records (DUMP's list) kept per client address" },
	{ "mirror_port", ADM_ST_UINT, 1, 65535, NULL, "10566", "reload",
	    "port a mirror destination listens on (TCP)" },
	{ "log_level", ADM_ST_ENUM, 0, 0, "err|warn|info|debug", "info",
	    "now", "log verbosity" },
	{ "admin_group", ADM_ST_GROUP, 0, 0, NULL, "", "now",
	    "group whose members may use the control socket (besides root)" },
	{ "events_keep", ADM_ST_UINT, 100, 10000000, NULL, "100000", "now",
	    "event log entries kept" },
};

const struct adm_setting *adm_settings(size_t *n)
{
	*n = sizeof(settings) / sizeof(settings[0]);
	return settings;
}

const struct adm_setting *adm_setting_find(const char *key)
{
	size_t n;
	const struct adm_setting *s = adm_settings(&n);

	for (size_t i = 0; key != NULL && i < n; i++)
		if (strcmp(s[i].key, key) == 0)
			return &s[i];
	return NULL;
}

static bool choice_ok(const char *choices, const char *v)
{
	size_t n = strlen(v);

	for (const char *p = choices; p != NULL && *p != '\0';) {
		const char *bar = strchr(p, '|');
		size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);

		if (len == n && strncmp(p, v, n) == 0)
			return true;
		p = bar != NULL ? bar + 1 : NULL;
	}
	return false;
}

int adm_setting_check(const struct adm_setting *s, const char *value,
    char *out, size_t outlen, char *why, size_t whylen)
{
	uint64_t v;

	if (!adm_valid_text(value, 255)) {
		snprintf(why, whylen, "%s: the value holds control "
		    "characters or is too long", s->key);
		return -EINVAL;
	}
	switch (s->type) {
	case ADM_ST_UINT:
	case ADM_ST_SIZE:
		if ((s->type == ADM_ST_UINT ? adm_parse_u64(value, &v) :
		    adm_parse_size(value, &v)) != 0) {
			snprintf(why, whylen, "%s: '%s' is not a %s", s->key,
			    value, s->type == ADM_ST_UINT ? "number" :
			    "size (like 256M or 1G)");
			return -EINVAL;
		}
		if (v < s->min || v > s->max) {
			snprintf(why, whylen, "%s: %s is out of range "
			    "(%" PRIu64 " .. %" PRIu64 ")", s->key, value,
			    s->min, s->max);
			return -EINVAL;
		}
		snprintf(out, outlen, "%" PRIu64, v);
		return 0;
	case ADM_ST_ENUM:
		if (!choice_ok(s->choices, value)) {
			snprintf(why, whylen, "%s: '%s' is not one of %s",
			    s->key, value, s->choices);
			return -EINVAL;
		}
		snprintf(out, outlen, "%s", value);
		return 0;
	case ADM_ST_BOOL:
		if (choice_ok("true|on|yes|1", value)) {
			snprintf(out, outlen, "true");
		} else if (choice_ok("false|off|no|0", value)) {
			snprintf(out, outlen, "false");
		} else {
			snprintf(why, whylen, "%s: '%s' is not true or false",
			    s->key, value);
			return -EINVAL;
		}
		return 0;
	case ADM_ST_GROUP:
		if (value[0] != '\0' && getgrnam(value) == NULL) {
			snprintf(why, whylen, "%s: no group named '%s' on this "
			    "system", s->key, value);
			return -EINVAL;
		}
		snprintf(out, outlen, "%s", value);
		return 0;
	}
	return -EINVAL;
}

/*
 * A stored value is checked as config set checks a new one: the row may
 * have been written by something other than filerctl.  One that fails is
 * logged (once per key and process) and the default is used instead, so
 * that, say, events_keep 0 never empties the event log.  A group is only
 * checked for its text: the group may come and go on the system, and
 * admin_gid() already treats an unknown one as none.
 */
int adm_db_setting(sqlite3 *db, const char *key, char *out, size_t len)
{
	static bool warned[64];
	const struct adm_setting *s = adm_setting_find(key);
	size_t n, idx;
	char stored[256], canon[256], why[512];
	int rc;

	if (s == NULL)
		return -ENOENT;
	rc = adm_db_text(db, stored, sizeof(stored), "SELECT value FROM "
	    "settings WHERE key = ?", "s", key);
	if (rc == -ENOENT) {
		snprintf(out, len, "%s", s->def);
		return 0;
	}
	if (rc != 0)
		return rc;
	if (s->type == ADM_ST_GROUP ? adm_valid_text(stored, 255) :
	    adm_setting_check(s, stored, canon, sizeof(canon), why,
	    sizeof(why)) == 0) {
		snprintf(out, len, "%s", stored);
		return 0;
	}
	idx = (size_t)(s - adm_settings(&n));
	if (idx < sizeof(warned) / sizeof(warned[0]) && !warned[idx]) {
		warned[idx] = true;
		fl_warn(ADM_SUB, "database: setting %s holds '%s', which is "
		    "not a valid value; the default %s is used (fix it with: "
		    "filerctl config set %s VALUE)", key, stored, s->def, key);
	}
	snprintf(out, len, "%s", s->def);
	return 0;
}

uint64_t adm_db_setting_u64(sqlite3 *db, const char *key)
{
	const struct adm_setting *s = adm_setting_find(key);
	char buf[256];
	uint64_t v = 0;

	if (s == NULL || adm_db_setting(db, key, buf, sizeof(buf)) != 0)
		return 0;
	if (s->type == ADM_ST_BOOL)
		return strcmp(buf, "true") == 0;
	if (adm_parse_u64(buf, &v) != 0)
		(void)adm_parse_u64(s->def, &v);
	return v;
}
