/*
 * tests/lib/tl_netns.h: a private network and mount namespace for a test
 * or benchmark that runs its own rpcbind (or takes well-known ports).
 *
 * tl_netns_enter() moves the calling process (before it starts threads)
 * into a new network namespace with only loopback, up, and a new mount
 * namespace with a tmpfs on /run (rpcbind's socket and lock), so nothing
 * host-wide is seen or touched.  It needs root (CAP_SYS_ADMIN).
 */
#ifndef FILER_TESTS_LIB_TL_NETNS_H
#define FILER_TESTS_LIB_TL_NETNS_H

#include <stddef.h>

/* 0, or -1 with the reason in why (NUL-terminated). */
int tl_netns_enter(char *why, size_t whylen);

#endif
