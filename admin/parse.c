/*
 * admin/parse.c: validation of everything an administrator types: names,
 * sizes, numbers, export paths and client specs, times.  The same
 * functions run in filerctl (before a request is sent) and in filerd
 * (on every request received), so both refuse the same input (A2).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/adm_impl.h"

int adm_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (s == NULL || *s == '\0' || strlen(s) > 20)
		return -EINVAL;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return 0;
}

/* "4096", "64K", "512M", "1G", "2T" (binary multiples; "KiB"/"KB" too). */
int adm_env_u32(const char *name, uint32_t min, uint32_t max, uint32_t *out)
{
	const char *val = getenv(name);
	uint64_t v;

	if (val == NULL)
		return 0;
	if (adm_parse_u64(val, &v) != 0 || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int adm_parse_size(const char *s, uint64_t *out)
{
	char num[24];
	size_t i = 0;
	uint64_t v, mul = 1;
	const char *suf;

	if (s == NULL)
		return -EINVAL;
	while (s[i] >= '0' && s[i] <= '9' && i < sizeof(num) - 1) {
		num[i] = s[i];
		i++;
	}
	num[i] = '\0';
	if (i == 0 || adm_parse_u64(num, &v) != 0)
		return -EINVAL;
	suf = s + i;
	switch (toupper((unsigned char)*suf)) {
	case '\0':
		break;
	case 'K': mul = 1ull << 10; break;
	case 'M': mul = 1ull << 20; break;
	case 'G': mul = 1ull << 30; break;
	case 'T': mul = 1ull << 40; break;
	default:
		return -EINVAL;
	}
	if (*suf != '\0') {
		suf++;
		if (strcmp(suf, "") != 0 && strcasecmp(suf, "B") != 0 &&
		    strcasecmp(suf, "iB") != 0)
			return -EINVAL;
	}
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

void adm_fmt_size(uint64_t b, char *out, size_t len)
{
	static const char units[] = "BKMGTP";
	double d = (double)b;
	int u = 0;

	while (d >= 1024.0 && u < 5) {
		d /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(out, len, "%" PRIu64 "B", b);
	else
		snprintf(out, len, "%.*f%c", d < 10.0 ? 1 : 0, d, units[u]);
}

/* A letter, then letters, digits, '_' or '-': never a number, so JSON and
 * table output never confuse a name with one. */
bool adm_valid_volname(const char *s)
{
	size_t n = s == NULL ? 0 : strlen(s);

	if (n == 0 || n >= ADM_NAME_MAX || !isalpha((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '-')
			return false;
	return true;
}

bool adm_valid_snapname(const char *s)
{
	size_t n = s == NULL ? 0 : strlen(s);

	if (n == 0 || n >= ADM_SNAP_MAX || !isalpha((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("_-.:", s[i]) ==
		    NULL)
			return false;
	return true;
}

bool adm_valid_text(const char *s, size_t max)
{
	size_t n = s == NULL ? 0 : strlen(s);

	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static bool valid_prefix(const char *s, int max)
{
	uint64_t v;

	return adm_parse_u64(s, &v) == 0 && v <= (uint64_t)max &&
	    strlen(s) <= 3;
}

/*
 * exports(5) client specs: "*", an IPv4 or IPv6 address, either with a
 * "/prefix", or a host name that may hold the wildcards '*' and '?'.
 */
bool adm_valid_client(const char *s)
{
	char buf[256];
	char *slash;
	unsigned char a[16];
	size_t n = s == NULL ? 0 : strlen(s);

	if (n == 0 || n >= sizeof(buf))
		return false;
	if (strcmp(s, "*") == 0)
		return true;
	memcpy(buf, s, n + 1);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, a) == 1)
		return slash == NULL || valid_prefix(slash, 32);
	if (inet_pton(AF_INET6, buf, a) == 1)
		return slash == NULL || valid_prefix(slash, 128);
	if (slash != NULL || buf[0] == '.' || buf[0] == '-')
		return false;
	for (size_t i = 0; buf[i] != '\0'; i++)
		if (!isalnum((unsigned char)buf[i]) &&
		    strchr(".-*?_", buf[i]) == NULL)
			return false;
	return n <= 253;
}

/* "/vol/NAME" or "/vol/NAME/a/b": components of [A-Za-z0-9._-], no "."
 * or ".." components, no empty ones, at most ADM_PATH_MAX/4 bytes. */
bool adm_valid_export_path(const char *s, char *vol, size_t vlen)
{
	char buf[ADM_PATH_MAX / 4];
	char *save = NULL, *c;
	int i = 0;
	size_t n = s == NULL ? 0 : strlen(s);

	if (n < 6 || n >= sizeof(buf) || strncmp(s, "/vol/", 5) != 0 ||
	    s[n - 1] == '/')
		return false;
	memcpy(buf, s + 5, n - 4);
	for (c = strtok_r(buf, "/", &save); c != NULL;
	    c = strtok_r(NULL, "/", &save), i++) {
		if (i == 0) {
			if (!adm_valid_volname(c))
				return false;
			if (vol != NULL)
				snprintf(vol, vlen, "%s", c);
			continue;
		}
		if (strcmp(c, ".") == 0 || strcmp(c, "..") == 0)
			return false;
		for (size_t k = 0; c[k] != '\0'; k++)
			if (!isalnum((unsigned char)c[k]) &&
			    strchr("._-", c[k]) == NULL)
				return false;
	}
	return strstr(s, "//") == NULL && i >= 1;
}

/*
 * --since: "30s", "15m", "2h", "3d" ago; epoch seconds; or an ISO date
 * "2026-11-25", "2026-11-25T19:00", "2026-11-25T19:00:00Z" (UTC).
 */
int adm_parse_since(const char *s, uint64_t now_s, uint64_t *out)
{
	size_t n = s == NULL ? 0 : strlen(s);
	uint64_t v;

	if (n == 0 || n > 32)
		return -EINVAL;
	if (strchr("smhd", s[n - 1]) != NULL && n > 1) {
		char num[32];
		uint64_t mul = s[n - 1] == 's' ? 1 : s[n - 1] == 'm' ? 60 :
		    s[n - 1] == 'h' ? 3600 : 86400;

		memcpy(num, s, n - 1);
		num[n - 1] = '\0';
		if (adm_parse_u64(num, &v) != 0 || v > now_s / mul)
			return -EINVAL;
		*out = now_s - v * mul;
		return 0;
	}
	if (adm_parse_u64(s, &v) == 0) {
		*out = v;
		return 0;
	}
	{
		struct tm tm;
		const char *end;
		time_t t;

		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%d", &tm);
		if (end == NULL)
			return -EINVAL;
		if (*end == 'T' || *end == ' ') {
			const char *e2 = strptime(end + 1, "%H:%M:%S", &tm);

			if (e2 == NULL)
				e2 = strptime(end + 1, "%H:%M", &tm);
			if (e2 == NULL)
				return -EINVAL;
			end = e2;
		}
		if (*end == 'Z')
			end++;
		if (*end != '\0')
			return -EINVAL;
		t = timegm(&tm);
		*out = t > 0 ? (uint64_t)t : 0;	/* before 1970: all */
		return 0;
	}
}
