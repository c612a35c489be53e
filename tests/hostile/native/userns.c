/* SPDX-License-Identifier: MIT */
/* New namespaces: unshare(CLONE_NEWUSER) (the usual first step to regain capabilities),
 * unshare(CLONE_NEWNET), clone(CLONE_NEWUSER), setns() into our own network namespace. seccomp
 * refuses them: EPERM. */
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "hostile.h"

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	cJSON *out = cJSON_CreateObject(), *results = cJSON_AddArrayToObject(out, "results");
	long pid;
	int fd;

	(void)event, (void)event_len, (void)ctx;
	cJSON_AddItemToArray(results, h_result("unshare(CLONE_NEWUSER)",
					       unshare(CLONE_NEWUSER) < 0 ? errno : 0));
	cJSON_AddItemToArray(results, h_result("unshare(CLONE_NEWNET)",
					       unshare(CLONE_NEWNET) < 0 ? errno : 0));
	pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, NULL);
	if (pid == 0)
		syscall(SYS_exit_group, 0);
	cJSON_AddItemToArray(results, h_result("clone(CLONE_NEWUSER)", pid < 0 ? errno : 0));
	if (pid > 0)
		(void)waitpid((pid_t)pid, NULL, 0);
	fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	cJSON_AddItemToArray(results,
			     h_result("setns(net)", fd < 0 ? errno : setns(fd, CLONE_NEWNET) < 0 ? errno : 0));
	if (fd >= 0)
		close(fd);
	return h_respond(out, ret_response, ret_len);
}
