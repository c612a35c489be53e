/* SPDX-License-Identifier: MIT */
/* Exec setuid-root binaries (/usr/bin/passwd, /usr/bin/su, /usr/bin/mount -t tmpfs): under
 * no_new_privs on nosuid mounts they run, if at all, with our own ids. For each: the exec's
 * errno, the Uid/Gid lines of the exec'd process (read from /proc while it runs or as a zombie)
 * and how it ended. */
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "hostile.h"

static void status_line(pid_t pid, const char *key, char *ret, size_t size)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd;

	ret[0] = 0;
	(void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	char *p = strstr(buf, key);
	if (!p)
		return;
	p += strlen(key);
	while (*p == '\t' || *p == ' ')
		p++;
	size_t len = strcspn(p, "\n");
	(void)snprintf(ret, size, "%.*s", (int)len, p);
}

static cJSON *try_exec(char *const argv[])
{
	int in[2], report[2], err = 0, status = 0;
	char uid[128] = "", gid[128] = "";
	ssize_t n;
	pid_t pid;
	cJSON *r;

	if (pipe2(in, O_CLOEXEC) < 0)
		return h_result(argv[0], errno);
	if (pipe2(report, O_CLOEXEC) < 0) {
		err = errno;
		close(in[0]);
		close(in[1]);
		return h_result(argv[0], err);
	}
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		(void)dup2(in[0], 0);
		if (null >= 0) {
			(void)dup2(null, 1);
			(void)dup2(null, 2);
		}
		execv(argv[0], argv);
		err = errno;
		(void)!write(report[1], &err, sizeof(err));
		_exit(127);
	}
	close(in[0]);
	close(report[1]);
	if (pid < 0) {
		err = errno;
		close(in[1]);
		close(report[0]);
		return h_result(argv[0], err);
	}
	/* EOF on report: exec worked (its CLOEXEC end closed); an int: exec's errno. */
	n = read(report[0], &err, sizeof(err));
	close(report[0]);
	if (n != sizeof(err))
		err = 0;
	if (!err) {
		/* Let it run into its prompt (it waits on our stdin pipe) or its exit: a zombie still
		 * shows its ids. */
		for (int i = 0; i < 20; i++) {
			struct timespec ms10 = { 0, 10000000 };

			status_line(pid, "Uid:", uid, sizeof(uid));
			status_line(pid, "Gid:", gid, sizeof(gid));
			siginfo_t si = { 0 };

			if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
				break; /* exited: a zombie until waitpid() below */
			nanosleep(&ms10, NULL);
		}
	}
	(void)kill(pid, SIGKILL);
	(void)waitpid(pid, &status, 0);
	close(in[1]);
	r = h_result(argv[0], err);
	cJSON_AddStringToObject(r, "uid", uid);
	cJSON_AddStringToObject(r, "gid", gid);
	cJSON_AddNumberToObject(r, "exit", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	cJSON_AddNumberToObject(r, "signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return r;
}

static bool mounted(const char *where)
{
	char buf[65536];
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	char pat[64];
	(void)snprintf(pat, sizeof(pat), " %s ", where);
	return strstr(buf, pat) != NULL;
}

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	cJSON *out = cJSON_CreateObject(), *results = cJSON_AddArrayToObject(out, "results");
	char *passwd[] = { "/usr/bin/passwd", NULL };
	char *su[] = { "/usr/bin/su", "-c", "id", "root", NULL };
	char *mnt[] = { "/usr/bin/mount", "-t", "tmpfs", "none", "/tmp/y", NULL };

	(void)event, (void)event_len, (void)ctx;
	(void)mkdir("/tmp/y", 0755);
	cJSON_AddItemToArray(results, try_exec(passwd));
	cJSON_AddItemToArray(results, try_exec(su));
	cJSON_AddItemToArray(results, try_exec(mnt));
	cJSON_AddBoolToObject(out, "tmp_y_mounted", mounted("/tmp/y"));
	cJSON_AddNumberToObject(out, "uid", getuid());
	cJSON_AddNumberToObject(out, "euid", geteuid());
	return h_respond(out, ret_response, ret_len);
}
