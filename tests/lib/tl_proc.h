/*
 * tests/lib/tl_proc.h: child processes, clocks and timings for the
 * benchmarks and the runners that start programs (filerd, rsync,
 * ganesha.nfsd, rpcbind) or time what they do.
 *
 * Every wait is bounded by its caller's ms; a child started here dies with
 * the process that started it (PR_SET_PDEATHSIG).
 */
#ifndef FILER_TESTS_LIB_TL_PROC_H
#define FILER_TESTS_LIB_TL_PROC_H

#include <sys/types.h>

/* Seconds on the monotonic clock. */
double tl_now_s(void);

/* Sleep ms milliseconds, through signals. */
void tl_sleep_ms(long ms);

/* The median of v[0..n) (the upper one of an even n), n > 0; sorts v in
 * place, so v[n - 1] is then the largest. */
double tl_median(double *v, size_t n);

/* Fork and exec argv (argv[0] a path) with stdin from /dev/null, stdout
 * and stderr appended to log.  The pid, or -1. */
pid_t tl_spawn(char *const argv[], const char *log);

/* Wait for pid at most ms: its exit status (128 + signal when killed),
 * or -1 while it still runs. */
int tl_wait_exit(pid_t pid, long ms);

/* SIGTERM, SIGKILL if it has not exited after ms; its exit status.  0 if
 * pid <= 0 (nothing was started). */
int tl_stop(pid_t pid, long ms);

#endif
