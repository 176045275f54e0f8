/*
 * admin/filerd_main.c: main() of filerd, the appliance daemon (filerd(8)).
 *
 *   filerd [--home DIR] [--foreground]
 *
 * Registers the services built so far (their adapters live in admin/svc_*.c)
 * and runs the daemon (admin/daemon.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/adm_impl.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: filerd [--home DIR] [--foreground]\n\n"
	    "The filer appliance daemon (see filerd(8)).\n\n"
	    "  --home DIR     configuration, NVLOGs, socket and disk images\n"
	    "                 (default %s)\n"
	    "  --foreground   stay in the foreground and log to stderr\n"
	    "                 (otherwise detach and log to syslog)\n",
	    ADM_DEFAULT_HOME);
}

/* A test knob: $name, milliseconds from 0 to max, into *out (unset:
 * *out stays).  -1 after saying what is wrong. */
static int env_ms(const char *name, uint32_t max, uint32_t *out)
{
	if (adm_env_u32(name, 0, max, out) == 0)
		return 0;
	fprintf(stderr, "filerd: %s must be a number of milliseconds from 0 "
	    "to %u\n", name, (unsigned)max);
	return -1;
}

int main(int argc, char **argv)
{
	struct adm_daemon_opts o = { .home = ADM_DEFAULT_HOME };
	const char *scale = getenv("FILER_CLOCK_SCALE");

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--home") == 0 ||
		    strncmp(argv[i], "--home=", 7) == 0) {
			o.home = argv[i][6] == '=' ? argv[i] + 7 :
			    i + 1 < argc ? argv[++i] : "";
			if (o.home[0] == '\0')
				break;		/* refused below */
		} else if (strcmp(argv[i], "--foreground") == 0 ||
		    strcmp(argv[i], "-f") == 0) {
			o.foreground = true;
		} else if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "filerd: unknown argument %s\n",
			    argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (o.home[0] == '\0') {
		fprintf(stderr, "filerd: --home needs a directory\n");
		return 2;
	}
	/* Tests: the snapshot schedule clock runs this many times faster. */
	if (scale != NULL) {
		char *end;
		double s = strtod(scale, &end);

		/* NaN compares false both ways: ask for the range. */
		if (*end != '\0' || end == scale || !(s >= 1.0 && s <= 1e7)) {
			fprintf(stderr, "filerd: FILER_CLOCK_SCALE must be a "
			    "number from 1 to 10000000\n");
			return 2;
		}
		o.clock_scale = s;
	}
	/* Tests: a check waits this long before it starts, so a test can
	 * act while it runs (an offline one holds the main loop); the
	 * mirror service's stop, after its last tick, waits this long at
	 * most for running resyncs to finish, so that a test can have one
	 * finish that no tick saw; a running job's caller is sent an empty
	 * frame this often (default 30 s). */
	if (env_ms("FILER_CHECK_HOLD_MS", 60000, &o.check_hold_ms) != 0 ||
	    env_ms("FILER_RESYNC_STOP_HOLD_MS", 60000,
	    &o.resync_stop_hold_ms) != 0 ||
	    env_ms("FILER_KEEPALIVE_MS", 600000, &o.keepalive_ms) != 0)
		return 2;
	if (adm_service_register(&adm_svc_nfsd) != 0 ||
	    adm_service_register(&adm_svc_mirror) != 0)
		return 1;
	return adm_daemon_main(&o);
}
