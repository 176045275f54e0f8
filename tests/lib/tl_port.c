/*
 * tests/lib/tl_port.c: free ports (see tl_port.h).
 */
#include "tests/lib/tl_port.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

uint16_t tl_free_port(int fds[2])
{
	for (int tries = 0; tries < 100; tries++) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		socklen_t sl = sizeof(sa);
		int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		if (t >= 0 && u >= 0 &&
		    bind(t, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		    getsockname(t, (struct sockaddr *)&sa, &sl) == 0 &&
		    bind(u, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			fds[0] = t;
			fds[1] = u;
			return ntohs(sa.sin_port);
		}
		if (t >= 0)
			close(t);
		if (u >= 0)
			close(u);
	}
	return 0;
}

bool tl_port_open(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	    .sin_port = htons(port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

int tl_free_ports(uint16_t *ports, int n)
{
	int held[TL_MAX_PORTS][2], rc = 0, k;

	/* Every chosen port is held until all are chosen. */
	for (k = 0; k < n; k++) {
		if (k == TL_MAX_PORTS ||
		    (ports[k] = tl_free_port(held[k])) == 0) {
			rc = -1;
			break;
		}
	}
	while (k-- > 0) {
		close(held[k][0]);
		close(held[k][1]);
	}
	return rc;
}

bool tl_loopback_name_pattern(char *pat, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char name[NI_MAXHOST];
	bool back = false;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (getnameinfo((struct sockaddr *)&sa, sizeof(sa), name, sizeof(name),
	    NULL, 0, NI_NAMEREQD) != 0 || strlen(name) > 253 ||
	    getaddrinfo(name, NULL, &hints, &ai) != 0)
		return false;
	for (struct addrinfo *a = ai; a != NULL; a = a->ai_next)
		back |= a->ai_family == AF_INET &&
		    ((struct sockaddr_in *)a->ai_addr)->sin_addr.s_addr ==
		    sa.sin_addr.s_addr;
	freeaddrinfo(ai);
	if (!back)
		return false;
	if (strncasecmp(name, "local", 5) == 0)
		snprintf(pat, len, "local*");
	else
		snprintf(pat, len, "%c*", name[0]);
	return true;
}
