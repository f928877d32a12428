/* The OCI runtime-spec config.json model: plain C structs filled once by
 * spec_parse_*(), validated there, then read-only for the rest of the code. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

/* GNU C predefines `linux` as 1; oci_spec has a member of that name. */
#undef linux

/* An optional integer: has == false means the field was absent or null. */
typedef struct { bool has; int64_t v; } opt_i64;
typedef struct { bool has; uint64_t v; } opt_u64;
typedef struct { bool has; bool v; } opt_bool;

typedef struct {
	char *key, *value;
} spec_kv;

typedef struct {
	uint32_t container_id, host_id, size;
} spec_idmap;

typedef struct {
	char *path;
	char **args; /* NULL-terminated, may be NULL */
	char **env;  /* NULL-terminated, may be NULL */
	opt_i64 timeout; /* seconds, > 0 */
} spec_hook;

typedef struct {
	spec_hook *v;
	size_t n;
} spec_hooks;

enum { HOOK_PRESTART, HOOK_CREATE_RUNTIME, HOOK_CREATE_CONTAINER, HOOK_START_CONTAINER,
       HOOK_POSTSTART, HOOK_POSTSTOP, HOOK__MAX };
extern const char *const spec_hook_names[HOOK__MAX];

typedef struct {
	int resource; /* RLIMIT_* */
	uint64_t soft, hard;
} spec_rlimit;

/* Capability sets as bitmasks of CAP_* numbers (bit n = capability n). */
typedef struct {
	bool present; /* process.capabilities given at all */
	uint64_t bounding, effective, inheritable, permitted, ambient;
} spec_caps;

/* Mount option parsing result (spec/mountopts.c). */
typedef struct {
	unsigned long flags;       /* MS_* to set */
	unsigned long clear;       /* MS_* explicitly cleared (rw, suid, dev, exec, ...) */
	unsigned long propagation; /* MS_PRIVATE|MS_SLAVE|MS_SHARED|MS_UNBINDABLE [|MS_REC], 0 = none */
	bool bind, rec;            /* bind / rbind */
	bool recursive_ro;         /* "rro": MOUNT_ATTR_RDONLY recursively */
	bool idmap, ridmap;
	char *data;                /* remaining filesystem-specific options joined with ',' (may be NULL) */
	bool tmpcopyup;            /* tmpfs: copy what the rootfs has at the destination into it (runc, crun) */
} spec_mount_opts;

typedef struct {
	char *destination; /* absolute path inside the container */
	char *type;        /* may be NULL (bind mounts) */
	char *source;      /* may be NULL */
	char **options;    /* NULL-terminated, may be NULL */
	spec_mount_opts opts;
	spec_idmap *uid_mappings, *gid_mappings;
	size_t n_uid_mappings, n_gid_mappings;
} spec_mount;

enum spec_ns_type { NS_PID, NS_NETWORK, NS_MOUNT, NS_IPC, NS_UTS, NS_USER, NS_CGROUP, NS_TIME, NS__MAX };
extern const char *const spec_ns_names[NS__MAX];  /* "pid", "network", ... */
extern const int spec_ns_clone_flags[NS__MAX];    /* CLONE_NEWPID, ... */
extern const char *const spec_ns_proc_names[NS__MAX]; /* "pid", "net", "mnt", ... (/proc/PID/ns/<name>) */

typedef struct {
	bool present;  /* the namespace is listed in linux.namespaces */
	char *path;    /* join this one instead of creating (may be NULL) */
} spec_ns;

typedef struct {
	char type;     /* 'c', 'b', 'u', 'p' */
	char *path;    /* absolute, inside the container */
	int64_t major, minor;
	opt_u64 file_mode; /* permission bits */
	opt_u64 uid, gid;
} spec_device;

typedef struct {
	bool allow;
	char type;      /* 'a', 'c', 'b' ('a' when absent) */
	int64_t major, minor; /* -1 = wildcard */
	char access[4]; /* subset of "rwm" ("rwm" when absent) */
} spec_dev_rule;

typedef struct { int64_t major, minor; opt_u64 weight, leaf_weight; } spec_weight_dev;
typedef struct { int64_t major, minor; uint64_t rate; } spec_throttle_dev;
typedef struct { char *page_size; uint64_t limit; } spec_hugepage;
typedef struct { char *name; uint32_t priority; } spec_netprio;
typedef struct { char *device; opt_u64 hca_handles, hca_objects; } spec_rdma;

typedef struct {
	bool present;
	spec_dev_rule *devices; size_t n_devices;
	struct {
		opt_i64 limit, reservation, swap, kernel, kernel_tcp;
		opt_u64 swappiness;
		opt_bool disable_oom_killer, use_hierarchy, check_before_update;
	} memory;
	struct {
		opt_u64 shares, period, realtime_period, burst;
		opt_i64 quota, realtime_runtime, idle;
		char *cpus, *mems;
	} cpu;
	struct { opt_i64 limit; } pids;
	struct {
		opt_u64 weight, leaf_weight;
		spec_weight_dev *weight_device; size_t n_weight_device;
		spec_throttle_dev *throttle[4]; size_t n_throttle[4]; /* read bps, write bps, read iops, write iops */
	} blkio;
	spec_hugepage *hugepages; size_t n_hugepages;
	struct {
		opt_u64 class_id;
		spec_netprio *priorities; size_t n_priorities;
	} network;
	spec_rdma *rdma; size_t n_rdma;
	spec_kv *unified; size_t n_unified;
} spec_resources;

enum { THROTTLE_READ_BPS, THROTTLE_WRITE_BPS, THROTTLE_READ_IOPS, THROTTLE_WRITE_IOPS };

typedef struct {
	uint32_t index;
	uint64_t value, value_two;
	int op; /* enum scmp_compare value (SCMP_CMP_*) */
} spec_seccomp_arg;

typedef struct {
	char **names; size_t n_names;
	uint32_t action; /* SCMP_ACT_* base value, without errno/trace data */
	opt_u64 errno_ret;
	spec_seccomp_arg *args; size_t n_args;
} spec_seccomp_rule;

typedef struct {
	bool present;
	uint32_t default_action;
	opt_u64 default_errno_ret;
	uint32_t *arches; size_t n_arches; /* SCMP_ARCH_* tokens */
	unsigned flags; /* SECCOMP_FILTER_FLAG_* */
	char *listener_path, *listener_metadata;
	spec_seccomp_rule *rules; size_t n_rules;
} spec_seccomp;

typedef struct {
	char *oci_version;
	char *bundle;       /* absolute bundle directory (set by spec_load_bundle) */

	struct {
		bool present;
		bool terminal;
		opt_u64 console_height, console_width;
		uid_t uid; gid_t gid;
		opt_u64 umask;
		gid_t *additional_gids; size_t n_additional_gids;
		char *username;
		char **args; size_t n_args; /* NULL-terminated */
		char **env; size_t n_env;   /* NULL-terminated */
		char *cwd;
		spec_caps caps;
		spec_rlimit *rlimits; size_t n_rlimits;
		bool no_new_privileges;
		char *apparmor_profile, *selinux_label;
		opt_i64 oom_score_adj;
		struct { bool has; int klass, priority; } io_priority;
		struct { bool has; int policy; int nice, priority; uint64_t flags, runtime, deadline, period; } scheduler;
		char *cpu_affinity_initial, *cpu_affinity_final;
	} process;

	char *root_path; /* absolute (resolved against bundle) */
	bool root_readonly;
	char *hostname, *domainname;

	spec_mount *mounts; size_t n_mounts;
	spec_hooks hooks[HOOK__MAX];
	spec_kv *annotations; size_t n_annotations;

	struct {
		spec_ns ns[NS__MAX];
		spec_idmap *uid_mappings, *gid_mappings;
		size_t n_uid_mappings, n_gid_mappings;
		struct { bool has; int64_t secs; uint32_t nanosecs; } time_offsets[2]; /* 0 monotonic, 1 boottime */
		spec_device *devices; size_t n_devices;
		char *cgroups_path;
		spec_resources resources;
		unsigned long rootfs_propagation; /* MS_* | MS_REC, 0 = default */
		spec_seccomp seccomp;
		spec_kv *sysctl; size_t n_sysctl;
		char **masked_paths; size_t n_masked_paths;
		char **readonly_paths; size_t n_readonly_paths;
		char *mount_label;
		bool intel_rdt;
		struct { bool has; unsigned long domain; } personality;
	} linux;
} oci_spec;

/* Parse config.json text. `file` names it in error messages. On error returns
 * -errno with err_msg() like "config.json: linux.namespaces[2].type: unknown
 * namespace \"pidd\"" or "config.json:3:14: syntax error: ...". */
int spec_parse(const char *json, size_t len, const char *file, oci_spec **ret);
/* Read and parse <bundle>/config.json; sets root_path and bundle absolute. */
int spec_load_bundle(const char *bundle, oci_spec **ret, char **ret_raw, size_t *ret_rawlen);
void spec_free(oci_spec *s);

/* Parse a linux.resources object on its own (`update -r FILE`). Errors name
 * the file and the field: "resources.json: memory.limit: expected integer,
 * got string". *ret (present = true) is freed with spec_resources_free(). */
int spec_parse_resources(const char *json, size_t len, const char *file, spec_resources *ret);
void spec_resources_free(spec_resources *r);
/* A size as runc's flags take it: bytes or with a k/m/g/t/p suffix (binary
 * multiples, optional "i"/"b": "64m", "1.5g", "2GiB"). 0, -EINVAL or -ERANGE. */
int spec_parse_mem_size(const char *s, int64_t *ret);

/* Mount option keywords (pure table lookup, spec/mountopts.c). Returns 0 or
 * -EINVAL with err_msg() naming the unknown option. */
int spec_mount_opts_parse(char *const *options, spec_mount_opts *out);
/* The i-th mount option keyword the runtime implements (features), NULL
 * past the last. */
const char *spec_mount_option_name(size_t i);
/* "rprivate", "shared", ... -> MS_* flags, 0 if unknown. */
unsigned long spec_propagation_from_name(const char *name);

/* The `isola-oci spec` template: a default config (runc-compatible). */
char *spec_default_json(bool rootless);

/* Look up a capability name ("CAP_SYS_ADMIN") -> number, -1 if unknown. */
int spec_cap_from_name(const char *name);
/* Number -> "CAP_SYS_ADMIN", NULL past the last capability the runtime knows. */
const char *spec_cap_name(int cap);
int spec_rlimit_from_name(const char *name);
