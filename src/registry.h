/* SPDX-License-Identifier: MIT */
/* The function registry: functions, their immutable versions and which one is live, kept under
 * the state dir and in memory. Supervisor only.
 *
 * On disk (STATE = state dir):
 *   STATE/functions/NAME/function.json   the commit point: {"name","live","next","versions":[
 *                                         {"version","sha256","created_us","manifest":{...}}]}
 *   STATE/functions/NAME/versions/N/code/ the unpacked package of version N
 *   STATE/functions/NAME/lambda.json     the Lambda API's own settings (src/lambda.c): kept
 *                                         by registry_open(), never read here, removed with
 *                                         the function
 *   STATE/tmp/                           staging; emptied at open
 * A deploy unpacks into STATE/tmp, fsyncs, renames to versions/N, fsyncs, then replaces
 * function.json atomically. A crash at any point leaves the previous function.json, and
 * registry_open() removes what it does not reference. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "manifest.h"
#include "package.h"
#include "scaling.h"

#define REGISTRY_LAMBDA_JSON "lambda.json"

struct fn_version {
	uint32_t version;
	char sha256[65];    /* of the decoded code archive, lowercase hex */
	int64_t created_us; /* CLOCK_REALTIME */
	struct manifest manifest;
};

struct fn_record {
	char *name;
	uint32_t live;
	uint32_t next; /* the next version number to hand out */
	struct fn_version *versions; /* ascending by version */
	size_t n_versions;
	struct fn_scaling scaling; /* the function's, whatever the version ("scaling" on disk) */
};

struct registry;

/* Opens (creating) the state dir layout, loads every function, cleans up staging and orphans
 * (version dirs that function.json does not reference, function dirs without function.json).
 * A function whose function.json is unreadable or corrupt is kept out of memory and left on disk
 * untouched; the caller logs it through registry_broken_at().
 *
 * Test hook: when the environment variable SPORE_TEST_CRASH_AT is "deploy-staged" (package
 * unpacked and fsynced, before the rename) or "deploy-renamed" (version dir in place, before
 * function.json is replaced), registry_deploy() raises SIGKILL at that point, so tests can prove
 * a crash mid-deploy loses nothing. */
int registry_open(const char *state_dir, struct registry **ret);
struct registry *registry_free(struct registry *r);

/* Functions in memory, sorted by name. The pointers returned stay valid until the next
 * registry_deploy(), registry_set_live(), registry_delete() or registry_free(): copy what must
 * outlive that (manifest_copy()). */
size_t registry_count(const struct registry *r);
const struct fn_record *registry_at(const struct registry *r, size_t i);
const struct fn_record *registry_find(const struct registry *r, const char *name);
const struct fn_version *fn_record_version(const struct fn_record *f, uint32_t version);

/* Names of function dirs that exist on disk but could not be loaded (corrupt function.json). */
size_t registry_broken_count(const struct registry *r);
const char *registry_broken_at(const struct registry *r, size_t i);

/* Deploys code (an archive) with manifest m as the next version of name, making it live.
 * -EINVAL (bad archive or invalid name, *ret_error set when ret_error is not NULL; only with
 * -EINVAL), -ENOSPC/-EDQUOT (disk full), -EBUSY (name is a broken function on disk), other
 * -errno. On success *ret_version is the new version. Nothing of a failed deploy stays on disk or
 * in memory. lim NULL: package_extract()'s defaults. Version numbers come from "next" and are
 * never handed out twice while the function exists (a deleted and re-created function starts
 * again at 1). */
int registry_deploy(struct registry *r, const char *name, const struct manifest *m,
		    const void *code, size_t code_len, const struct package_limits *lim,
		    uint32_t *ret_version, char **ret_error);
/* The same, and in the same commit the function's scaling settings become *sc (NULL: kept as
 * they are, or all default for a new function). */
int registry_deploy_scaled(struct registry *r, const char *name, const struct manifest *m,
			   const struct fn_scaling *sc, const void *code, size_t code_len,
			   const struct package_limits *lim, uint32_t *ret_version,
			   char **ret_error);
/* The two halves of a deploy, for a caller that works on the unpacked code in between
 * (installing dependencies, src/deps.c): registry_stage() unpacks code into STATE/tmp/<name>/code,
 * durably, and opens that directory as code_fd (-EINVAL with *ret_error for a bad archive, as
 * registry_deploy()); registry_deploy_stage() then commits it as the next version of name,
 * exactly as registry_deploy() does (the version number is taken at commit time), and consumes
 * the stage whatever it returns. registry_stage_discard() drops a stage not committed; stages are
 * also removed by the next registry_open(). */
struct registry_stage {
	char name[64];
	char sha256[65]; /* of the archive */
	int code_fd;
};
int registry_stage(struct registry *r, const void *code, size_t code_len,
		   const struct package_limits *lim, struct registry_stage *ret, char **ret_error);
int registry_deploy_stage(struct registry *r, const char *name, const struct manifest *m,
			  const struct fn_scaling *sc, struct registry_stage *st,
			  uint32_t *ret_version, char **ret_error);
void registry_stage_discard(struct registry *r, struct registry_stage *st);
/* A stage holding the code of an existing version (files hard-linked, symlinks and directories
 * made again), with that version's sha256: committed with registry_deploy_stage(), it is a new
 * version with the same code and another manifest. -ENOENT if the function or version is
 * unknown. */
int registry_stage_copy(struct registry *r, const char *name, uint32_t version,
			struct registry_stage *ret);
/* STATE/functions/NAME opened as a directory (O_CLOEXEC), for REGISTRY_LAMBDA_JSON; -ENOENT,
 * -EINVAL for an invalid name. */
int registry_function_dir_fd(const struct registry *r, const char *name);
/* Replaces the function's scaling settings (no new version). -ENOENT, -EBUSY as below. */
int registry_set_scaling(struct registry *r, const char *name, const struct fn_scaling *sc);
/* Makes an existing version live. -ENOENT if the function or version is unknown, -EBUSY if name
 * is a broken function on disk. */
int registry_set_live(struct registry *r, const char *name, uint32_t version);
/* Removes the function from memory and disk. -ENOENT if unknown, -EBUSY if name is a broken
 * function on disk (left for the operator, as registry_open() does). */
int registry_delete(struct registry *r, const char *name);
/* Absolute path of a version's code dir (malloc'ed), or NULL on OOM. */
char *registry_code_dir(const struct registry *r, const char *name, uint32_t version);
