/*
 * tests/lib/tl_port.h: free ports for the daemons tests and benchmarks
 * start on loopback.
 *
 * A port is "free" when a TCP and a UDP socket both bind it on all
 * addresses (filerd binds 0.0.0.0, NFS and MOUNT over both transports).
 * tl_free_port() keeps the two sockets open in fds, so a later call does
 * not choose the same port and a test can hold it against the daemon;
 * tl_free_ports() chooses n distinct ports at once and closes its
 * sockets before it returns, for the daemon to bind.  tl_port_open()
 * tells whether a daemon listens on one yet.  tl_loopback_name_pattern()
 * is for tests of host-name export rules.
 */
#ifndef FILER_TESTS_LIB_TL_PORT_H
#define FILER_TESTS_LIB_TL_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The port, its TCP socket in fds[0] and UDP socket in fds[1] (the
 * caller's to close); 0 when none was found in 100 tries. */
uint16_t tl_free_port(int fds[2]);

#define TL_MAX_PORTS	16

/* ports[0..n-1], distinct (n <= TL_MAX_PORTS); 0, or -1 when one could
 * not be found. */
int tl_free_ports(uint16_t *ports, int n);

/* Does something accept TCP connections on 127.0.0.1:port? */
bool tl_port_open(uint16_t port);

/*
 * An export host-name pattern for the name 127.0.0.1 has here, found as
 * nfsd finds it (reverse lookup, confirmed by the forward one) but
 * independently of nfsd: "local*" for "localhost" (Debian's /etc/hosts),
 * else the name's first letter and '*'.  false when 127.0.0.1 has no
 * such name (the caller skips).
 */
bool tl_loopback_name_pattern(char *pat, size_t len);

#endif
