/*
 * tests/lib/tl_netns.c: a private network and mount namespace (see
 * tl_netns.h).
 */
#include "tests/lib/tl_netns.h"

#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

static int lo_up(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rc = 0;

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0)
		rc = -errno;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (rc == 0 && ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

int tl_netns_enter(char *why, size_t whylen)
{
	int rc;

	if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
		snprintf(why, whylen, "unshare(network, mount namespace): %s",
		    strerror(errno));
		return -1;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV,
	    "mode=0755") != 0) {
		snprintf(why, whylen, "private /run: %s", strerror(errno));
		return -1;
	}
	if ((rc = lo_up()) != 0) {
		snprintf(why, whylen, "loopback up: %s", strerror(-rc));
		return -1;
	}
	return 0;
}
