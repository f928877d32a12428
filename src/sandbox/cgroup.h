/* cgroup manager: one interface over cgroup v1 (legacy), hybrid and v2
 * (unified) hosts, chosen at run time from /proc/self/mountinfo. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "spec/spec.h"

enum cgroup_mode { CGROUP_LEGACY, CGROUP_HYBRID, CGROUP_UNIFIED };

typedef struct cgroup cgroup; /* opaque */

/* Detect the host layout (cached after the first call). */
enum cgroup_mode cgroup_mode(void);

/* Create the container's cgroup in every mounted hierarchy (each v1 controller
 * hierarchy plus, on hybrid hosts, the unified one). `path` is
 * linux.cgroupsPath: absolute paths are relative to each hierarchy's root,
 * relative ones to the calling process's own cgroup; NULL means "/<id>".
 * Already-existing directories are reused (shared cgroups). On failure,
 * everything this call created is removed again. */
int cgroup_create(const char *path, const char *id, cgroup **ret);
/* Re-open an existing container cgroup from the string cgroup_path() gave. */
int cgroup_open(const char *saved, cgroup **ret);
/* A string that cgroup_open() accepts (stored in state.json). */
const char *cgroup_path(const cgroup *cg);
/* Move pid into the container cgroup in every hierarchy. */
int cgroup_enter(cgroup *cg, pid_t pid);

/* A new process can join the container cgroup without the host-wide lock
 * that moving another process takes (cgroup_threadgroup_rwsem: its first
 * writer after a quiet moment waits for a full RCU grace period, 5-20 ms on
 * a VM): cgroup2 by clone3(CLONE_INTO_CGROUP) with v2_fd, and each v1
 * hierarchy by the process itself writing "0" (the calling thread) to the
 * hierarchy's `tasks` file, which kernels since 5.12 do without that lock
 * ("cgroup: Optimize single thread migration"; older ones take it).
 * The files are opened by the runtime (the kernel checks the opener's
 * credentials), before the clone. */
typedef struct cgroup_join {
	const cgroup *cg;
	int v2_fd;  /* the cgroup2 directory (O_PATH), or -1 */
	int *tasks; /* per hierarchy of cg: its v1 `tasks` file, or -1 */
} cgroup_join;
#define CGROUP_JOIN_INIT { .cg = NULL, .v2_fd = -1, .tasks = NULL }
/* Open what cgroup_join_self() and CLONE_INTO_CGROUP need; on failure
 * (a delegated cgroup whose `tasks` file is not ours) nothing stays open
 * and the caller uses cgroup_enter() instead. */
int cgroup_join_open(const cgroup *cg, cgroup_join *ret);
/* In the new process (single-threaded), once it exists in cgroup2: join
 * every v1 hierarchy. The message names the hierarchy. */
int cgroup_join_self(const cgroup_join *j);
void cgroup_join_close(cgroup_join *j);
/* Apply linux.resources; errors name the field ("linux.resources.memory.limit: ..."). */
int cgroup_apply(cgroup *cg, const spec_resources *r);
/* Send sig to every process in the cgroup (kill --all). */
int cgroup_kill_all(cgroup *cg, int sig);
/* PIDs in the cgroup (host PIDs); *ret malloc'd. */
int cgroup_pids(cgroup *cg, pid_t **ret, size_t *n);
/* true if the cgroup has no process left. */
bool cgroup_is_empty(cgroup *cg);
/* Freeze (pause) / thaw (resume). */
int cgroup_freeze(cgroup *cg, bool frozen);
bool cgroup_is_frozen(cgroup *cg);
/* ---- statistics (`events`): runc's counters and units (bytes, ns) ---- */

/* One memory counter set, as v1's memory.{,memsw.,kmem.,kmem.tcp.}* files. */
struct cgroup_mem_entry { uint64_t limit, usage, max, failcnt; };
/* One line of a blkio statistics file: "8:0 Read 4096" (op may be ""). */
struct cgroup_blkio_entry { uint64_t major, minor; char op[12]; uint64_t value; };
enum {
	CG_BLKIO_SERVICE_BYTES, CG_BLKIO_SERVICED, CG_BLKIO_QUEUED, CG_BLKIO_SERVICE_TIME,
	CG_BLKIO_WAIT_TIME, CG_BLKIO_MERGED, CG_BLKIO_TIME, CG_BLKIO_SECTORS, CG_BLKIO__MAX
};
struct cgroup_hugetlb_entry { char page_size[16]; uint64_t usage, max, failcnt; }; /* "2MB" */
struct cgroup_stat_kv { char *key; uint64_t value; };

/* Controllers that are not there leave their part zero. */
struct cgroup_stats {
	struct {
		uint64_t total, kernel, user;
		uint64_t *percpu, *percpu_kernel, *percpu_user; /* v1 only */
		size_t n_percpu, n_percpu_kernel, n_percpu_user;
		uint64_t periods, throttled_periods, throttled_time;
	} cpu;
	struct {
		bool present;
		uint32_t *cpus, *mems;
		size_t n_cpus, n_mems;
		uint64_t cpu_exclusive, mem_hardwall, mem_exclusive, memory_migrate, memory_spread_page,
			 memory_spread_slab, memory_pressure, sched_load_balance;
		int64_t sched_relax_domain_level;
	} cpuset;
	struct {
		uint64_t cache;
		/* swap is memory+swap, as v1's memsw (v2 values are added up) */
		struct cgroup_mem_entry usage, swap, kernel, kernel_tcp;
		struct cgroup_stat_kv *raw; /* memory.stat */
		size_t n_raw;
	} memory;
	struct { uint64_t current, limit; } pids; /* limit 0: none */
	struct {
		struct cgroup_blkio_entry *v[CG_BLKIO__MAX];
		size_t n[CG_BLKIO__MAX];
	} blkio;
	struct cgroup_hugetlb_entry *hugetlb;
	size_t n_hugetlb;
};

/* Read the counters of every controller the container has (v1 controller
 * hierarchy where mounted, else cgroup2). *ret is cleared with
 * cgroup_stats_clear(). -ENOENT when the cgroup is gone. */
int cgroup_stats(cgroup *cg, struct cgroup_stats *ret);
void cgroup_stats_clear(struct cgroup_stats *st);

/* OOM notifications: v1 an eventfd registered on memory.oom_control through
 * cgroup.event_control, v2 inotify on memory.events (the oom_kill counter). */
typedef struct cgroup_oom_watch cgroup_oom_watch;
int cgroup_oom_watch_open(cgroup *cg, cgroup_oom_watch **ret);
/* Poll this for POLLIN. */
int cgroup_oom_watch_fd(const cgroup_oom_watch *w);
/* Consume what made the fd readable (never blocks): *ret_oom true when an
 * OOM happened since the last call. -ENOENT once the cgroup was removed. */
int cgroup_oom_watch_read(cgroup_oom_watch *w, bool *ret_oom);
void cgroup_oom_watch_free(cgroup_oom_watch *w);

/* Remove the container cgroup directories everywhere (children first); only
 * directories this container created are removed. Processes must be gone. */
int cgroup_destroy(cgroup *cg);
void cgroup_free(cgroup *cg);

/* Inside the container's mount namespace (before pivot_root): mount the
 * cgroup filesystem for an OCI mount of type "cgroup" at `target` (a path,
 * typically /proc/self/fd/N of the resolved directory). `flags` are the
 * mount's MS_* flags (ro, nosuid, ...). With a cgroup namespace the real
 * cgroup filesystem is mounted; without, the container's own cgroup
 * directories are bind-mounted. On v1 a tmpfs holds one directory per
 * hierarchy (and the usual cpu,cpuacct symlinks). */
int cgroup_mount_in_container(const char *target, unsigned long flags, bool cgroupns);
