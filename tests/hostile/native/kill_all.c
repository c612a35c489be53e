/* SPDX-License-Identifier: MIT */
/* kill(-1, SIGKILL) after forking a child of our own: inside the instance's pid namespace that
 * reaches only the instance's processes (our child dies; we, PID 1, do not), never spored, the
 * zygotes, other instances or host processes of the same uid. event.dry: only answer. */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "hostile.h"

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	cJSON *ev = h_event(event, event_len);
	bool dry = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev, "dry"));
	int err = 0, status = 0;
	pid_t child;
	cJSON *r;

	(void)ctx;
	cJSON_Delete(ev);
	if (dry)
		return h_respond(h_result("dry", 0), ret_response, ret_len);
	if (!h_sandboxed()) /* as root on the host this would kill everything */
		return h_respond(h_result("refused: not sandboxed", EPERM), ret_response, ret_len);
	child = fork();
	if (child == 0) {
		for (;;)
			pause();
	}
	if (kill(-1, SIGKILL) < 0)
		err = errno;
	if (err && child > 0)
		(void)kill(child, SIGKILL);
	if (child > 0 && waitpid(child, &status, 0) < 0)
		status = -1;
	r = h_result("kill(-1, SIGKILL)", err);
	cJSON_AddBoolToObject(r, "child_killed", !err && child > 0 && status > 0 &&
							 WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	cJSON_AddNumberToObject(r, "getpid", getpid());
	return h_respond(r, ret_response, ret_len);
}
