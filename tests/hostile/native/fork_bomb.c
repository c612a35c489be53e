/* SPDX-License-Identifier: MIT */
/* Fork bomb: for event.seconds (1) fork children that fork forever; count our own forks and
 * their failures and the most processes seen in the namespace; then, PID 1 of the instance's pid
 * namespace, kill(-1, SIGKILL) everything in it and reap. pids_max must stop it. */
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "hostile.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int nprocs(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
			n++;
	closedir(d);
	return n;
}

static __attribute__((noreturn)) void bomb(void)
{
	const struct timespec ms = { 0, 1000000 };

	for (;;)
		if (fork() < 0)
			nanosleep(&ms, NULL);
}

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	cJSON *ev = h_event(event, event_len);
	double seconds = h_num(ev, "seconds", 1), deadline = now() + seconds;
	const struct timespec ms2 = { 0, 2000000 };
	long forked = 0, failed = 0, reaped = 0;
	int last_errno = 0, max_procs = 1;
	cJSON *r;

	(void)ctx;
	cJSON_Delete(ev);
	if (!h_sandboxed()) /* kill(-1) as root on the host would kill everything */
		return h_respond(h_result("refused: not sandboxed", EPERM), ret_response, ret_len);
	while (now() < deadline) {
		pid_t pid = fork();

		if (pid == 0)
			bomb();
		if (pid < 0) {
			failed++;
			last_errno = errno;
			nanosleep(&ms2, NULL);
		} else
			forked++;
		int n = nprocs();
		if (n > max_procs)
			max_procs = n;
	}
	/* PID 1: kill(-1) reaches every other process of the namespace; orphans are ours to reap. */
	for (int round = 0; round < 1000 && kill(-1, SIGKILL) == 0; round++)
		while (waitpid(-1, NULL, 0) > 0)
			reaped++;
	r = h_result(NULL, last_errno);
	cJSON_AddNumberToObject(r, "forked", (double)forked);
	cJSON_AddNumberToObject(r, "failed", (double)failed);
	cJSON_AddNumberToObject(r, "max_procs", max_procs);
	cJSON_AddNumberToObject(r, "reaped", (double)reaped);
	cJSON_AddNumberToObject(r, "left", nprocs());
	return h_respond(r, ret_response, ret_len);
}
