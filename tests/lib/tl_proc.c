/*
 * tests/lib/tl_proc.c: child processes and clocks (see tl_proc.h).
 */
#include "tests/lib/tl_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double tl_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double tl_median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

void tl_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

pid_t tl_spawn(char *const argv[], const char *log)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid != 0)
		return pid < 0 ? -1 : pid;
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	int nul = open("/dev/null", O_RDONLY);

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);	/* the parent died before prctl */
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	if (nul >= 0)
		dup2(nul, 0);
	execv(argv[0], argv);
	dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int tl_wait_exit(pid_t pid, long ms)
{
	int st;

	for (long t = 0;; t += 20) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) :
			    128 + WTERMSIG(st);
		if (r < 0 && errno != EINTR)
			return 255;
		if (t >= ms)
			return -1;
		tl_sleep_ms(20);
	}
}

int tl_stop(pid_t pid, long ms)
{
	int st;

	if (pid <= 0)
		return 0;
	kill(pid, SIGTERM);
	st = tl_wait_exit(pid, ms);
	if (st < 0) {
		kill(pid, SIGKILL);
		st = tl_wait_exit(pid, 10000);
	}
	return st;
}
