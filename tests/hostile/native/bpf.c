/* SPDX-License-Identifier: MIT */
/* bpf(): create an array map and load a socket filter; perf_event_open() too. seccomp refuses
 * them: EPERM. */
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>

#include "hostile.h"

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	long fd = syscall(SYS_bpf, cmd, attr, sizeof(*attr));

	if (fd < 0)
		return errno;
	close((int)fd);
	return 0;
}

int handler(const char *event, size_t event_len, const struct spore_context *ctx, char **ret_response,
	    size_t *ret_len)
{
	cJSON *out = cJSON_CreateObject(), *results = cJSON_AddArrayToObject(out, "results");
	struct bpf_insn prog[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr attr;
	struct perf_event_attr pe;
	long fd;

	(void)event, (void)event_len, (void)ctx;
	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_ARRAY;
	attr.key_size = 4;
	attr.value_size = 4;
	attr.max_entries = 1;
	cJSON_AddItemToArray(results, h_result("bpf(BPF_MAP_CREATE)", sys_bpf(BPF_MAP_CREATE, &attr)));
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
	attr.insns = (uintptr_t)prog;
	attr.insn_cnt = 2;
	attr.license = (uintptr_t) "GPL";
	cJSON_AddItemToArray(results, h_result("bpf(BPF_PROG_LOAD)", sys_bpf(BPF_PROG_LOAD, &attr)));
	memset(&pe, 0, sizeof(pe));
	pe.type = PERF_TYPE_SOFTWARE;
	pe.size = sizeof(pe);
	pe.config = PERF_COUNT_SW_CPU_CLOCK;
	fd = syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0);
	cJSON_AddItemToArray(results, h_result("perf_event_open", fd < 0 ? errno : 0));
	if (fd >= 0)
		close((int)fd);
	return h_respond(out, ret_response, ret_len);
}
