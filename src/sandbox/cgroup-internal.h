/* Internal interface between cgroup.c (layout, lifecycle, dispatch) and the
 * per-version backends cgroup-v1.c and cgroup-v2.c. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "sandbox/cgroup.h"

/* Resource groups: one per controller a backend writes. cgroup.c decides,
 * per group, which hierarchy (v1 controller or the cgroup2 one) serves it. */
enum cg_res {
	CG_RES_DEVICES,
	CG_RES_MEMORY,
	CG_RES_CPU,
	CG_RES_CPUSET,
	CG_RES_PIDS,
	CG_RES_BLKIO,
	CG_RES_HUGETLB,
	CG_RES_NET_CLS,
	CG_RES_NET_PRIO,
	CG_RES_RDMA,
	CG_RES__MAX
};

/* One mounted hierarchy (from /proc/self/mountinfo). */
struct cg_hier {
	char *mnt;      /* mount point */
	char *root;     /* directory of the hierarchy mounted there ("/" normally) */
	char *key;      /* controllers as /proc/self/cgroup shows them: "cpu,cpuacct",
	                   "name=systemd"; "" for cgroup2 */
	bool v2;
	unsigned ctrls; /* 1 << enum cg_ctrl (cgroup.c) */
	int score;      /* preference among several mounts of one hierarchy */
};

/* The hierarchies in use (cached): 0 or -errno with the message set. */
int cg_layout(const struct cg_hier **ret, size_t *n);
/* The calling process's cgroup in h, relative to h's mount point, from the
 * text of /proc/self/cgroup. */
int cg_own_rel(const char *selfcg, const struct cg_hier *h, char **ret);

typedef int cg_apply_fn(const char *dir, const spec_resources *r);

/* Statistics groups, each read from the hierarchy serving its controller. */
enum cg_stat {
	CG_STAT_CPUACCT, /* cpu.usage: v1 cpuacct, v2 cpu.stat (core) */
	CG_STAT_CPU,     /* cpu.throttling */
	CG_STAT_CPUSET,
	CG_STAT_MEMORY,
	CG_STAT_PIDS,
	CG_STAT_BLKIO,
	CG_STAT_HUGETLB,
	CG_STAT__MAX
};
typedef int cg_stat_fn(const char *dir, struct cgroup_stats *st);

struct cgroup_ops {
	const char *name; /* "cgroup v1" / "cgroup v2" */
	/* NULL where the version has no such controller (net_cls on v2). */
	cg_apply_fn *apply[CG_RES__MAX];
	int (*freeze)(const char *dir, bool frozen);
	/* 1 frozen, 0 not, negative errno on error. */
	int (*freeze_state)(const char *dir);
	/* Would a process put in `dir` freeze (the directory itself or one of
	 * its ancestors up to the first root_len bytes is frozen or freezing)?
	 * 1 with the reason in why ("freezer.state FROZEN, set on <dir>"), 0 not,
	 * negative errno with the message set. */
	int (*frozen_by)(char *dir, size_t root_len, char *why, size_t size);
	/* Fill the group's part of the statistics; errors name the file. */
	cg_stat_fn *stats[CG_STAT__MAX];
};

extern const struct cgroup_ops cgroup_v1_ops, cgroup_v2_ops;

/* Write `val` to dir/file. On error the message is
 * "<field>: write <file>: <strerror>" (field may be NULL: the full path). */
int cg_write(const char *field, const char *dir, const char *file, const char *val);
int cg_writef(const char *field, const char *dir, const char *file, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Read dir/file into buf (NUL-terminated, trailing newline removed).
 * Returns the length or -errno; sets no error message. */
int cg_read(const char *dir, const char *file, char *buf, size_t size);
/* Read dir/file as an unsigned integer ("max" -> UINT64_MAX); -errno, no message. */
int cg_read_u64(const char *dir, const char *file, uint64_t *ret);
/* Value of key `key` in a flat-keyed file such as cgroup.events; -errno. */
int cg_read_key(const char *dir, const char *file, const char *key, int64_t *ret);
/* Read a whole (proc or cgroup) file; -errno, no message. */
int cg_read_whole(const char *path, char **ret);
/* Is `w` (length wl) one of the space-separated words of `list`? */
bool cg_word_in(const char *list, const char *w, size_t wl);
/* Shared by both versions: same file formats. */
int cg_apply_pids(const char *dir, const spec_resources *r);
int cg_apply_rdma(const char *dir, const spec_resources *r);
/* The directory serving a controller: cg's v1 hierarchy of controller `v1`
 * ("cpuacct") if mounted, else the cgroup2 directory when `v2` is enabled
 * there (v2 NULL: the core files, always there). NULL if neither; *is_v2
 * tells which one. */
const char *cg_ctrl_dir(cgroup *cg, const char *v1, const char *v2, bool *is_v2);

/* Statistics helpers (cgroup-stats.c); readers return -errno with the
 * message naming dir/file. */
int cg_stat_err(int r, const char *dir, const char *file);
/* Whitespace-separated integers ("cpuacct.usage_percpu"). */
int cg_stat_u64_list(const char *dir, const char *file, uint64_t **ret, size_t *n);
/* Flat keyed "key value" lines (memory.stat); "max" reads as UINT64_MAX. */
int cg_stat_kv(const char *dir, const char *file, struct cgroup_stat_kv **ret, size_t *n);
/* 0 when key is absent. */
uint64_t cg_stat_kv_get(const struct cgroup_stat_kv *kv, size_t n, const char *key);
void cg_stat_kv_free(struct cgroup_stat_kv *kv, size_t n);
/* A cpu or node list "0-3,8" -> numbers. */
int cg_stat_id_list(const char *dir, const char *file, uint32_t **ret, size_t *n);
int cg_stat_blkio_add(struct cgroup_stats *st, int kind, uint64_t major, uint64_t minor, const char *op,
		      uint64_t value);
/* Huge page sizes of this machine as cgroup file names use them ("2MB"). */
int cg_hugepage_sizes(char (**ret)[16], size_t *n);

/* Sleep ~ms milliseconds (used by retry and poll loops). */
void cg_sleep_ms(unsigned ms);

/* ---- cgroup v2 device filter (cgroup-bpf.c) ---- */
struct bpf_insn;
/* Compile device rules into a BPF_PROG_TYPE_CGROUP_DEVICE program: the last
 * matching rule decides each access, no match denies, type 'a' matches every
 * device and access. *ret is malloc'd. Errors name linux.resources.devices[i]. */
int cg_bpf_devices_compile(const spec_dev_rule *rules, size_t n, struct bpf_insn **ret, size_t *ret_n);
/* Load that program and make it the device program of the cgroup2 directory
 * `dir` (BPF_F_ALLOW_MULTI): attach it, then detach the ones that were there
 * (found with BPF_PROG_QUERY), so an update replaces the previous filter. */
int cg_bpf_devices_apply(const char *dir, const spec_dev_rule *rules, size_t n);
/* How many device programs are attached to `dir` itself, or -errno. */
int cg_bpf_devices_count(const char *dir);
