/* SPDX-License-Identifier: MIT */
/* Wire protocols between spored, the zygotes and the instances. Shared by both sides; fixed-width
 * types only; both ends are built from the same tree, so no versioning beyond PROTO_VERSION.
 *
 * 1. spored <-> zygote: an AF_UNIX SOCK_SEQPACKET socket, fd 3 in the zygote. One message per
 *    packet, each starting with struct zyg_hdr.
 *      zygote -> spored  ZYG_HELLO    struct zyg_hello, once, after the language is initialised
 *      spored -> zygote  ZYG_SPAWN    struct zyg_spawn + SCM_RIGHTS {chan, stdout, stderr}
 *      zygote -> spored  ZYG_SPAWNED  struct zyg_spawned (pid of the new instance, host pid ns,
 *                                     and the cgroup below --cgroup-pool it was cloned into)
 *      zygote -> spored  ZYG_SPAWN_FAILED struct zyg_spawned (pid = 0, error = -errno)
 *      zygote -> spored  ZYG_EXITED   struct zyg_exited (the zygote reaps its instances)
 *    The zygote exits when fd 3 reaches EOF and kills its instances then (PR_SET_PDEATHSIG).
 *
 * 2. spored <-> instance: an AF_UNIX SOCK_STREAM socket ("chan", fd passed in ZYG_SPAWN), framed:
 *    struct proto_frame header followed by len payload bytes.
 *      spored -> inst  INST_INIT        JSON {"function_name","function_version","handler",
 *                                       "code_dir","memory_mb","timeout_ms","env":{K:V}}
 *      inst -> spored  INST_READY       empty: code loaded, waiting for INST_INVOKE
 *      inst -> spored  INST_INIT_ERROR  JSON {"errorType","errorMessage","stackTrace":[...]}
 *                                       then the instance exits
 *      spored -> inst  INST_INVOKE      struct proto_invoke + the event (JSON bytes, may be empty)
 *      inst -> spored  INST_RESULT      the handler's return value as JSON bytes
 *      inst -> spored  INST_ERROR       JSON {"errorType","errorMessage","stackTrace":[...]}
 *    One invocation at a time. The instance's stdout and stderr are the two pipes it was given;
 *    spored turns their lines into the function's log.
 */
#pragma once

#include <stdint.h>

#define PROTO_VERSION 1
#define PROTO_MAX_FRAME (8u * 1024 * 1024) /* > 6 MiB invoke body + result envelope */

enum zyg_type {
	ZYG_HELLO = 1,
	ZYG_SPAWN = 2,
	ZYG_SPAWNED = 3,
	ZYG_SPAWN_FAILED = 4,
	ZYG_EXITED = 5,
};

struct zyg_hdr {
	uint32_t type;
	uint32_t version;
};

struct zyg_hello {
	struct zyg_hdr hdr;
	int32_t pid;
	char runtime[32];
};

struct zyg_spawn {
	struct zyg_hdr hdr;
	uint64_t token; /* chosen by spored, echoed back */
};

#define ZYG_CGROUP_MAX 48

struct zyg_spawned {
	struct zyg_hdr hdr;
	uint64_t token;
	int32_t pid;
	int32_t error; /* 0 or -errno */
	/* With --cgroup-pool: the child cgroup below the pool the instance was cloned into, now
	 * spored's to limit, kill and remove; "" if none. NUL-terminated. */
	char cgroup[ZYG_CGROUP_MAX];
};

struct zyg_exited {
	struct zyg_hdr hdr;
	int32_t pid;
	int32_t status; /* wait status, as from waitpid() */
};

enum inst_type {
	INST_INIT = 1,
	INST_READY = 2,
	INST_INIT_ERROR = 3,
	INST_INVOKE = 4,
	INST_RESULT = 5,
	INST_ERROR = 6,
};

struct proto_frame {
	uint32_t type;
	uint32_t len; /* payload bytes after this header */
};

struct proto_invoke {
	int64_t deadline_ms; /* CLOCK_REALTIME milliseconds since the epoch */
	char request_id[40]; /* NUL-terminated UUID */
};
