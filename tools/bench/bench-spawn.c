/* SPDX-License-Identifier: MIT */
/* bench-spawn: what isolating one invocation costs without spore, timed from C so the launcher
 * adds microseconds, not milliseconds.
 *   bench-spawn [-n N] [-w WARMUP] [-b] [-e EXPECT] -- CMD [ARG...]
 *   bench-spawn -f [-n N] [-w WARMUP] [-b]
 * Runs CMD N times (posix_spawn; "{}" in an ARG becomes the run's index, for unique container
 * names) with its stdout in a pipe and its stderr on /dev/null; a run counts as an error when it
 * exits non-zero or, with -e, when its stdout lacks EXPECT. -f times fork() + _exit(0) + waitpid
 * instead: the physical floor. Without -b the runs are sequential and each is timed from its
 * spawn to its reap; with -b (a burst) all N start at once and each is timed from the start of
 * the burst to its reap. Prints one JSON line: {"n","errors","wall_us","lat_us":[...]}. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct run {
	pid_t pid;
	int out; /* read end of its stdout, or -1 */
	double t0, lat;
	bool done;
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static const char *expect;
static bool fork_floor;
static char **cmd;
static int n_cmd;
static int devnull = -1;

/* Starts run idx; returns its pid or -errno. */
static int start(struct run *r, int idx)
{
	r->out = -1;
	r->done = false;
	if (fork_floor) {
		pid_t pid = fork();
		if (pid < 0)
			return -errno;
		if (pid == 0)
			_exit(0);
		r->pid = pid;
		return pid;
	}

	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	char idxs[16];
	snprintf(idxs, sizeof(idxs), "%d", idx);
	char **argv = calloc((size_t)n_cmd + 1, sizeof(char *));
	char **owned = calloc((size_t)n_cmd + 1, sizeof(char *));
	if (!argv || !owned) {
		free(argv);
		free(owned);
		close(p[0]);
		close(p[1]);
		return -ENOMEM;
	}
	for (int i = 0; i < n_cmd; i++) {
		owned[i] = NULL;
		argv[i] = cmd[i];
		char *at = strstr(cmd[i], "{}");
		if (at) {
			size_t pre = (size_t)(at - cmd[i]);
			size_t len = strlen(cmd[i]) + strlen(idxs);
			owned[i] = malloc(len);
			if (owned[i]) {
				snprintf(owned[i], len, "%.*s%s%s", (int)pre, cmd[i], idxs, at + 2);
				argv[i] = owned[i];
			}
		}
	}
	argv[n_cmd] = NULL;

	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, devnull, 2);
	pid_t pid;
	int k = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	for (int i = 0; i < n_cmd; i++)
		free(owned[i]);
	free(owned);
	free(argv);
	close(p[1]);
	if (k != 0) {
		close(p[0]);
		return -k;
	}
	r->pid = pid;
	r->out = p[0];
	return pid;
}

/* Reaps run r (its status st); returns true when it succeeded. */
static bool finish(struct run *r, int st)
{
	bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;

	if (r->out >= 0) {
		char buf[65536];
		size_t len = 0;
		for (;;) {
			ssize_t n = read(r->out, buf + len, sizeof(buf) - 1 - len);
			if (n <= 0)
				break;
			len += (size_t)n;
			if (len == sizeof(buf) - 1)
				break;
		}
		buf[len] = 0;
		if (expect && !strstr(buf, expect))
			ok = false;
		close(r->out);
		r->out = -1;
	}
	r->done = true;
	return ok;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-n N] [-w WARMUP] [-b] [-e EXPECT] -- CMD [ARG...]\n"
		"       %s -f [-n N] [-w WARMUP] [-b]\n",
		argv0, argv0);
	exit(2);
}

/* Runs n runs (sequential, or one burst); fills lat (n entries) when non-NULL; returns errors. */
static int batch(struct run *runs, int n, bool burst, double *ret_wall)
{
	int errors = 0;
	double t0 = now_us();

	if (!burst) {
		for (int i = 0; i < n; i++) {
			double s = now_us();
			int st = 0;
			if (start(&runs[i], i) < 0) {
				errors++;
				runs[i].lat = 0;
				continue;
			}
			while (waitpid(runs[i].pid, &st, 0) < 0 && errno == EINTR)
				;
			runs[i].lat = now_us() - s;
			if (!finish(&runs[i], st))
				errors++;
		}
		*ret_wall = now_us() - t0;
		return errors;
	}

	int started = 0;
	for (int i = 0; i < n; i++) {
		if (start(&runs[i], i) < 0) {
			errors++;
			runs[i].done = true;
			runs[i].lat = 0;
			continue;
		}
		started++;
	}
	while (started > 0) {
		int st = 0;
		pid_t pid = waitpid(-1, &st, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		double t = now_us();
		for (int i = 0; i < n; i++)
			if (!runs[i].done && runs[i].pid == pid) {
				runs[i].lat = t - t0;
				if (!finish(&runs[i], st))
					errors++;
				started--;
				break;
			}
	}
	*ret_wall = now_us() - t0;
	return errors;
}

int main(int argc, char **argv)
{
	int n = 20, warmup = 2, opt;
	bool burst = false;

	while ((opt = getopt(argc, argv, "+n:w:be:f")) != -1) {
		switch (opt) {
		case 'n':
			n = atoi(optarg);
			break;
		case 'w':
			warmup = atoi(optarg);
			break;
		case 'b':
			burst = true;
			break;
		case 'e':
			expect = optarg;
			break;
		case 'f':
			fork_floor = true;
			break;
		default:
			usage(argv[0]);
		}
	}
	cmd = argv + optind;
	n_cmd = argc - optind;
	if (n <= 0 || warmup < 0 || (!fork_floor && n_cmd <= 0))
		usage(argv[0]);
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull < 0) {
		perror("bench-spawn: /dev/null");
		return 1;
	}
	/* A burst keeps one pipe per run open. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}

	int cap = n > warmup ? n : warmup;
	struct run *runs = calloc((size_t)cap, sizeof(*runs));
	if (!runs)
		return 1;
	double wall;
	int errors = 0;
	if (warmup > 0)
		errors = batch(runs, warmup, false, &wall);
	if (errors) {
		fprintf(stderr, "bench-spawn: %d of %d warm-up runs failed\n", errors, warmup);
		return 1;
	}
	errors = batch(runs, n, burst, &wall);
	printf("{\"n\":%d,\"errors\":%d,\"wall_us\":%.1f,\"lat_us\":[", n, errors, wall);
	for (int i = 0; i < n; i++)
		printf("%s%.1f", i ? "," : "", runs[i].lat);
	printf("]}\n");
	free(runs);
	return 0;
}
