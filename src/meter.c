/* SPDX-License-Identifier: MIT */
/* The meter (meter.h): the loader of bpf/meter.bpf.c, the only file that includes its skeleton,
 * and the per-function stats slots, in the BPF map or in memory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "bpf/meter-build.h"
#include "meter.h"
#include "util/error.h"
#include "util/log.h"

#if METER_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/meter.skel.h"
#endif

#define BPF_FS_MAGIC_ 0xcafe4a11
#define CGROUP2_SUPER_MAGIC_ 0x63677270
#define BPF_FS_DEFAULT_MOUNT "/sys/fs/bpf"

struct meter {
	struct spore_fn_stats *stats; /* max_functions slots */
	uint32_t max_functions;
	size_t map_len; /* mmap length with BPF; 0: stats is calloc'ed */
#if METER_HAVE_BPF
	struct meter_bpf *skel;
	int cg_fd;
#endif
	char *pin_dir; /* set once the pins exist (to remove them) */
	const char *hook;
};

/* ---- the BPF side ------------------------------------------------------------------------ */

#if METER_HAVE_BPF

/* The maps pinned in pin_dir (LIBBPF_PIN_BY_NAME: their names in bpf/meter.bpf.c). */
static const char *const pinned_maps[] = { "fn_stats", "cg_slot" };

static bool slot_open(const struct meter *m, uint32_t slot)
{
	return slot < m->max_functions && m->stats[slot].name[0] != '\0';
}

static int libbpf_print_debug(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[1024];
	size_t l;

	(void)level;
	if (log_get_max_level() < LOG_DEBUG)
		return 0;
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	l = strlen(line);
	while (l > 0 && line[l - 1] == '\n')
		line[--l] = '\0';
	log_debug("meter: %s", line); /* libbpf says "libbpf: " itself */
	return 0;
}

static void unpin_all(const char *dir)
{
	for (size_t i = 0; i < ELEMENTSOF(pinned_maps); i++) {
		char p[PATH_MAX];

		if (snprintf(p, sizeof(p), "%s/%s", dir, pinned_maps[i]) < (int)sizeof(p))
			(void)unlink(p);
	}
}

static bool is_bpffs(const char *path)
{
	struct statfs sfs;

	return statfs(path, &sfs) >= 0 && (uint32_t)sfs.f_type == BPF_FS_MAGIC_;
}

/* Makes sure dir exists on a bpf filesystem: mounts one on /sys/fs/bpf when dir is below it
 * and nothing is mounted there yet (hosts without systemd's mount of it). */
static int bpffs_dir(const char *dir, char **ret_reason)
{
	if (!startswith(dir, "/"))
		return error_set(ret_reason, -EINVAL, "pin directory '%s' is not absolute", dir);
	if (startswith(dir, BPF_FS_DEFAULT_MOUNT "/") && !is_bpffs(BPF_FS_DEFAULT_MOUNT)) {
		if (mount("bpf", BPF_FS_DEFAULT_MOUNT, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "mode=0700") < 0)
			return error_set(ret_reason, -errno, "cannot mount bpffs on %s: %m",
					 BPF_FS_DEFAULT_MOUNT);
		log_debug("meter: mounted bpffs on %s", BPF_FS_DEFAULT_MOUNT);
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return error_set(ret_reason, -errno, "cannot create pin directory '%s': %m", dir);
	if (!is_bpffs(dir))
		return error_set(ret_reason, -ENOTDIR,
				 "pin directory '%s' is not on a bpf filesystem", dir);
	return 0;
}

/* One attempt with one hook. Everything it made is undone on failure. */
static int bpf_try(struct meter *m, const char *pin_dir, uint32_t max_cgroups,
		   enum meter_cpu_hook hook, char **ret_reason)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	struct meter_bpf *skel = NULL;
	struct bpf_link *link = NULL;
	struct bpf_program *prog;
	size_t len;
	void *p;
	int r;

	skel = meter_bpf__open_opts(&opts);
	if (!skel)
		return error_set(ret_reason, -errno, "cannot open the BPF object: %m");
	(void)bpf_map__set_max_entries(skel->maps.fn_stats, m->max_functions);
	(void)bpf_map__set_max_entries(skel->maps.cg_slot, max_cgroups);
	prog = hook == METER_CPU_HOOK_RUNTIME ? skel->progs.on_runtime : skel->progs.on_switch;
	(void)bpf_program__set_autoload(skel->progs.on_runtime, hook == METER_CPU_HOOK_RUNTIME);
	(void)bpf_program__set_autoload(skel->progs.on_switch, hook == METER_CPU_HOOK_SWITCH);
	/* A dead spored's pins would be reused by libbpf, old figures and all. */
	unpin_all(pin_dir);

	r = meter_bpf__load(skel);
	if (r < 0) {
		(void)error_set(ret_reason, r, "cannot load the BPF program %s: %s%s",
				bpf_program__name(prog), strerror(-r),
				r == -EPERM ? " (needs root or CAP_BPF+CAP_PERFMON)" : "");
		goto fail;
	}
	link = bpf_program__attach(prog);
	if (!link) {
		r = -errno;
		(void)error_set(ret_reason, r, "cannot attach the BPF program %s: %s",
				bpf_program__name(prog), strerror(-r));
		goto fail;
	}
	/* The skeleton owns links it finds in its slots: destroy() detaches it. */
	if (hook == METER_CPU_HOOK_RUNTIME)
		skel->links.on_runtime = link;
	else
		skel->links.on_switch = link;

	len = (size_t)m->max_functions * sizeof(struct spore_fn_stats);
	len = (len + (size_t)getpagesize() - 1) & ~((size_t)getpagesize() - 1);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(skel->maps.fn_stats),
		 0);
	if (p == MAP_FAILED) {
		r = -errno;
		(void)error_set(ret_reason, r, "cannot mmap the fn_stats map: %m");
		goto fail;
	}

	m->skel = skel;
	m->cg_fd = bpf_map__fd(skel->maps.cg_slot);
	m->stats = p;
	m->map_len = len;
	m->hook = hook == METER_CPU_HOOK_RUNTIME ? "sched_stat_runtime" : "sched_switch";
	return 0;

fail:
	meter_bpf__destroy(skel);
	unpin_all(pin_dir);
	return r;
}

static int bpf_setup(struct meter *m, const struct meter_config *cfg, char **ret_reason)
{
	static const enum meter_cpu_hook autos[] = {
		METER_CPU_HOOK_RUNTIME,
		METER_CPU_HOOK_SWITCH,
	};
	const char *pin_dir = cfg->pin_dir ?: METER_PIN_DIR_DEFAULT;
	uint32_t max_cgroups = cfg->max_cgroups ?: METER_MAX_CGROUPS_DEFAULT;
	_cleanup_free_ char *dir = NULL, *first = NULL;
	int r;

	(void)libbpf_set_print(libbpf_print_debug);

	if (access("/sys/kernel/btf/vmlinux", R_OK) < 0)
		return error_set(ret_reason, -errno, "no kernel BTF (/sys/kernel/btf/vmlinux: %m)");

	dir = strdup(pin_dir);
	if (!dir)
		return -ENOMEM;
	/* "/sys/fs/bpf/spore/" and "/sys/fs/bpf/spore" are the same directory. */
	for (size_t l = strlen(dir); l > 1 && dir[l - 1] == '/'; l--)
		dir[l - 1] = '\0';
	r = bpffs_dir(dir, ret_reason);
	if (r < 0)
		return r;

	if (cfg->cpu_hook != METER_CPU_HOOK_AUTO)
		r = bpf_try(m, dir, max_cgroups, cfg->cpu_hook, ret_reason);
	else
		for (size_t i = 0; i < ELEMENTSOF(autos); i++) {
			_cleanup_free_ char *why = NULL;

			r = bpf_try(m, dir, max_cgroups, autos[i], &why);
			if (r >= 0 || r == -ENOMEM)
				break;
			log_debug("meter: %s, trying the next hook", why);
			/* The first failure says most (EPERM, no BTF...). */
			if (!first)
				first = TAKE_PTR(why);
		}
	if (r < 0) {
		if (first && ret_reason) {
			free(*ret_reason);
			*ret_reason = TAKE_PTR(first);
		}
		(void)rmdir(dir);
		return r;
	}
	m->pin_dir = TAKE_PTR(dir);
	return 0;
}

static void bpf_teardown(struct meter *m)
{
	if (m->map_len > 0)
		(void)munmap(m->stats, m->map_len);
	m->stats = NULL;
	m->map_len = 0;
	meter_bpf__destroy(m->skel);
	m->skel = NULL;
	m->cg_fd = -EBADF;
	if (m->pin_dir) {
		unpin_all(m->pin_dir);
		(void)rmdir(m->pin_dir); /* ENOTEMPTY: someone else's pins, fine */
		free(m->pin_dir);
		m->pin_dir = NULL;
	}
}

#endif /* METER_HAVE_BPF */

/* ---- the meter ---------------------------------------------------------------------------- */

int meter_new(const struct meter_config *cfg, struct meter **ret, char **ret_reason)
{
	_cleanup_(meter_freep) struct meter *m = NULL;
	_cleanup_free_ char *reason = NULL;
	int r = -EOPNOTSUPP;

	if (!cfg || !ret || cfg->max_functions > METER_MAX_FUNCTIONS_LIMIT ||
	    cfg->max_cgroups > METER_MAX_CGROUPS_LIMIT || cfg->cpu_hook < 0 ||
	    cfg->cpu_hook >= _METER_CPU_HOOK_MAX)
		return -EINVAL;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->max_functions = cfg->max_functions ?: METER_MAX_FUNCTIONS_DEFAULT;
#if METER_HAVE_BPF
	m->cg_fd = -EBADF;
	if (cfg->bpf) {
		r = bpf_setup(m, cfg, &reason);
		if (r == -ENOMEM)
			return r;
	}
#else
	if (cfg->bpf && !(reason = strdup("spore was built without BPF support")))
		return -ENOMEM;
#endif
	if (r < 0) {
		m->stats = calloc(m->max_functions, sizeof(struct spore_fn_stats));
		if (!m->stats)
			return -ENOMEM;
		if (ret_reason && reason)
			*ret_reason = TAKE_PTR(reason);
	}
	*ret = TAKE_PTR(m);
	return 0;
}

struct meter *meter_free(struct meter *m)
{
	if (!m)
		return NULL;
#if METER_HAVE_BPF
	if (m->skel) {
		bpf_teardown(m);
		free(m);
		return NULL;
	}
#endif
	free(m->stats);
	free(m);
	return NULL;
}

bool meter_bpf_active(const struct meter *m)
{
	return m && m->hook;
}

const char *meter_cpu_hook_name(const struct meter *m)
{
	return m ? m->hook : NULL;
}

uint32_t meter_max_functions(const struct meter *m)
{
	return m ? m->max_functions : 0;
}

const char *meter_pin_dir(const struct meter *m)
{
	return m ? m->pin_dir : NULL;
}

int meter_fn_find(struct meter *m, const char *name, uint32_t *ret_slot)
{
	if (!m || !name || !*name)
		return -EINVAL;
	for (uint32_t i = 0; i < m->max_functions; i++)
		if (strncmp(m->stats[i].name, name, SPORE_FN_NAME_MAX) == 0) {
			if (ret_slot)
				*ret_slot = i;
			return 0;
		}
	return -ENOENT;
}

int meter_fn_open(struct meter *m, const char *name, uint32_t *ret_slot)
{
	struct spore_fn_stats *s;
	size_t l;
	int r;

	if (!m || !name || !*name || !ret_slot)
		return -EINVAL;
	l = strlen(name);
	if (l >= SPORE_FN_NAME_MAX)
		return -ENAMETOOLONG;
	r = meter_fn_find(m, name, ret_slot);
	if (r != -ENOENT)
		return r;
	for (uint32_t i = 0; i < m->max_functions; i++) {
		s = &m->stats[i];
		if (s->name[0] != '\0')
			continue;
		/* Readers may look at any time: the counters go to zero before the name appears. */
		memset((char *)s + sizeof(s->name), 0, sizeof(*s) - sizeof(s->name));
		__atomic_thread_fence(__ATOMIC_RELEASE);
		memcpy(s->name, name, l + 1);
		*ret_slot = i;
		return 0;
	}
	return -ENOSPC;
}

#if METER_HAVE_BPF
/* Removes every cgroup id mapped to slot (instances the caller forgot, or did not get to). */
static void cgroups_unmap_slot(struct meter *m, uint32_t slot)
{
	_cleanup_free_ uint64_t *drop = NULL;
	size_t n = 0, cap = 0;
	uint64_t key, next;
	uint64_t *prev = NULL;

	while (bpf_map_get_next_key(m->cg_fd, prev, &next) == 0) {
		uint32_t v;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(m->cg_fd, &key, &v) < 0 || v != slot)
			continue;
		if (n == cap) {
			size_t c = cap ? cap * 2 : 16;
			uint64_t *d = reallocarray(drop, c, sizeof(*d));

			if (!d)
				break; /* the rest stays mapped: charged to a free slot, harmless */
			drop = d;
			cap = c;
		}
		drop[n++] = key;
	}
	for (size_t i = 0; i < n; i++)
		(void)bpf_map_delete_elem(m->cg_fd, &drop[i]);
}
#endif

void meter_fn_close(struct meter *m, uint32_t slot)
{
	struct spore_fn_stats *s;

	if (!m || slot >= m->max_functions)
		return;
#if METER_HAVE_BPF
	if (m->skel)
		cgroups_unmap_slot(m, slot);
#endif
	s = &m->stats[slot];
	/* Name first: readers stop showing the slot before its counters vanish. */
	__atomic_store_n(&s->name[0], '\0', __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memset(s, 0, sizeof(*s));
}

struct spore_fn_stats *meter_fn(struct meter *m, uint32_t slot)
{
	if (!m || slot >= m->max_functions)
		return NULL;
	return &m->stats[slot];
}

int meter_cgroup_add(struct meter *m, uint64_t cgroup_id, uint32_t slot)
{
	if (!m)
		return -EINVAL;
#if METER_HAVE_BPF
	if (m->skel) {
		int r;

		if (!slot_open(m, slot))
			return -ENOENT;
		r = bpf_map_update_elem(m->cg_fd, &cgroup_id, &slot, BPF_ANY);
		return r; /* -E2BIG when full */
	}
#else
	(void)cgroup_id;
	(void)slot;
#endif
	return -EOPNOTSUPP;
}

int meter_cgroup_del(struct meter *m, uint64_t cgroup_id)
{
	if (!m)
		return -EINVAL;
#if METER_HAVE_BPF
	if (m->skel)
		return bpf_map_delete_elem(m->cg_fd, &cgroup_id);
#else
	(void)cgroup_id;
#endif
	return -EOPNOTSUPP;
}

int meter_cgroup_id(const char *cgroup_dir_path, uint64_t *ret)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + 64];
	} h = { .fh.handle_bytes = 64 };
	struct statfs sfs;
	uint64_t id;
	int mnt_id;

	if (!cgroup_dir_path || !ret)
		return -EINVAL;
	if (statfs(cgroup_dir_path, &sfs) < 0)
		return -errno;
	if ((uint32_t)sfs.f_type != CGROUP2_SUPER_MAGIC_)
		return -EMEDIUMTYPE;
	if (name_to_handle_at(AT_FDCWD, cgroup_dir_path, &h.fh, &mnt_id, 0) < 0)
		return -errno;
	/* kernfs file handles carry the node id (the inode number on cgroup2), 8 bytes. */
	if (h.fh.handle_bytes != sizeof(id))
		return -EIO;
	memcpy(&id, h.fh.f_handle, sizeof(id));
	*ret = id;
	return 0;
}

void meter_fn_set_cpu(struct meter *m, uint32_t slot, uint64_t cpu_ns)
{
	if (!m || meter_bpf_active(m) || slot >= m->max_functions)
		return;
	meter_set_(&m->stats[slot].cpu_ns, cpu_ns);
}

void meter_fn_set_memory(struct meter *m, uint32_t slot, uint64_t cur_bytes, uint64_t peak_bytes)
{
	struct spore_fn_stats *s;
	uint64_t peak;

	if (!m || slot >= m->max_functions)
		return;
	s = &m->stats[slot];
	peak = __atomic_load_n(&s->mem_peak_bytes, __ATOMIC_RELAXED);
	if (peak_bytes > peak)
		peak = peak_bytes;
	if (cur_bytes > peak)
		peak = cur_bytes;
	meter_set_(&s->mem_bytes, cur_bytes);
	meter_set_(&s->mem_peak_bytes, peak);
}

static const char *const err_kind_names[_SPORE_ERR_MAX] = {
	[SPORE_ERR_FUNCTION_ERROR] = "function_error",
	[SPORE_ERR_TIMEOUT] = "timeout",
	[SPORE_ERR_CRASHED] = "crashed",
	[SPORE_ERR_OUT_OF_MEMORY] = "out_of_memory",
	[SPORE_ERR_QUEUE_FULL] = "queue_full",
	[SPORE_ERR_QUEUE_TIMEOUT] = "queue_timeout",
	[SPORE_ERR_OTHER] = "other",
};

const char *meter_err_kind_to_string(enum spore_err_kind k)
{
	if (k < 0 || k >= _SPORE_ERR_MAX)
		return NULL;
	return err_kind_names[k];
}

enum spore_err_kind meter_err_kind_from_string(const char *s)
{
	if (!s)
		return _SPORE_ERR_INVALID;
	for (int k = 0; k < _SPORE_ERR_MAX; k++)
		if (streq(err_kind_names[k], s))
			return (enum spore_err_kind)k;
	return SPORE_ERR_OTHER;
}
