/* SPDX-License-Identifier: MIT */
/* Trace a sibling: PTRACE_ATTACH and PTRACE_SEIZE of a child of ours and of PID 1 (ourselves),
 * process_vm_readv of the child. seccomp refuses all of them: EPERM. */
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "hostile.h"

static int try_ptrace(enum __ptrace_request req, pid_t pid)
{
	if (ptrace(req, pid, NULL, NULL) < 0)
		return errno;
	(void)ptrace(PTRACE_DETACH, pid, NULL, NULL);
	return 0;
}

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	cJSON *out = cJSON_CreateObject(), *results = cJSON_AddArrayToObject(out, "results");
	static char secret[64] = "child memory";
	char buf[64];
	struct iovec local = { buf, sizeof(buf) }, remote = { secret, sizeof(secret) };
	pid_t child;
	char what[64];

	(void)event, (void)event_len, (void)ctx;
	child = fork();
	if (child == 0) {
		for (;;)
			pause();
	}
	if (child < 0)
		return h_respond(h_result("fork", errno), ret_response, ret_len);
	(void)snprintf(what, sizeof(what), "PTRACE_ATTACH child %d", (int)child);
	cJSON_AddItemToArray(results, h_result(what, try_ptrace(PTRACE_ATTACH, child)));
	(void)snprintf(what, sizeof(what), "PTRACE_SEIZE child %d", (int)child);
	cJSON_AddItemToArray(results, h_result(what, try_ptrace(PTRACE_SEIZE, child)));
	cJSON_AddItemToArray(results, h_result("PTRACE_ATTACH 1", try_ptrace(PTRACE_ATTACH, 1)));
	cJSON_AddItemToArray(results,
			     h_result("process_vm_readv child",
				      process_vm_readv(child, &local, 1, &remote, 1, 0) < 0 ? errno : 0));
	(void)kill(child, SIGKILL);
	(void)waitpid(child, NULL, 0);
	return h_respond(out, ret_response, ret_len);
}
