/* config.json parser: the table-driven JSON dispatcher, the top level,
 * process, root, mounts, hooks and annotations; spec_load_bundle, spec_free.
 * linux.* lives in spec-linux.c. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spec/spec.h"
#include "spec/spec-parse.h"
#include "util/cleanup.h"
#include "util/err.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

const char *const spec_ns_names[NS__MAX] = {
	[NS_PID] = "pid",   [NS_NETWORK] = "network", [NS_MOUNT] = "mount", [NS_IPC] = "ipc",
	[NS_UTS] = "uts",   [NS_USER] = "user",       [NS_CGROUP] = "cgroup", [NS_TIME] = "time",
};
const int spec_ns_clone_flags[NS__MAX] = {
	[NS_PID] = CLONE_NEWPID, [NS_NETWORK] = CLONE_NEWNET, [NS_MOUNT] = CLONE_NEWNS,
	[NS_IPC] = CLONE_NEWIPC, [NS_UTS] = CLONE_NEWUTS,     [NS_USER] = CLONE_NEWUSER,
	[NS_CGROUP] = CLONE_NEWCGROUP, [NS_TIME] = CLONE_NEWTIME,
};
const char *const spec_ns_proc_names[NS__MAX] = {
	[NS_PID] = "pid", [NS_NETWORK] = "net", [NS_MOUNT] = "mnt",       [NS_IPC] = "ipc",
	[NS_UTS] = "uts", [NS_USER] = "user",   [NS_CGROUP] = "cgroup",   [NS_TIME] = "time",
};
const char *const spec_hook_names[HOOK__MAX] = {
	[HOOK_PRESTART] = "prestart",
	[HOOK_CREATE_RUNTIME] = "createRuntime",
	[HOOK_CREATE_CONTAINER] = "createContainer",
	[HOOK_START_CONTAINER] = "startContainer",
	[HOOK_POSTSTART] = "poststart",
	[HOOK_POSTSTOP] = "poststop",
};

/* ---- paths and errors ---- */

static size_t path_append(spec_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_append(spec_ctx *c, const char *fmt, ...)
{
	size_t saved = c->len;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(c->path + c->len, sizeof c->path - c->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		c->len = c->len + (size_t)n < sizeof c->path ? c->len + (size_t)n : sizeof c->path - 1;
	return saved;
}

size_t spec_push_key(spec_ctx *c, const char *key)
{
	return path_append(c, "%s%s", c->len ? "." : "", key);
}

size_t spec_push_idx(spec_ctx *c, size_t i)
{
	return path_append(c, "[%zu]", i);
}

size_t spec_push_mapkey(spec_ctx *c, const char *key)
{
	return path_append(c, "[\"%s\"]", key);
}

void spec_pop(spec_ctx *c, size_t saved)
{
	c->len = saved;
	c->path[saved] = '\0';
}

int spec_err(spec_ctx *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (c->len)
		return err_set(0, "%s: %s: %s", c->file, c->path, msg);
	return err_set(0, "%s: %s", c->file, msg);
}

static int spec_oom(spec_ctx *c)
{
	return err_set(ENOMEM, "%s: %s", c->file, c->path);
}

/* jansson's integers stop at INT64_MAX, but uint64 fields (rlimits at
 * RLIM_INFINITY, seccomp argument values) may legitimately be larger. Such
 * literals are rewritten before parsing into strings "\u0000<digits>"; a
 * string starting with NUL can only come from here, because texts that
 * contain a \u0000 escape of their own are never rewritten. */
static bool is_big(const json_t *v)
{
	return json_is_string(v) && json_string_length(v) > 0 && json_string_value(v)[0] == '\0';
}

bool spec_is_str(const json_t *v)
{
	return json_is_string(v) && !is_big(v);
}

const char *spec_json_type(const json_t *v)
{
	if (is_big(v))
		return "integer";
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "real number";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	case JSON_NULL: return "null";
	}
	return "unknown";
}

static int type_err(spec_ctx *c, const char *want, const json_t *v)
{
	return spec_err(c, "expected %s, got %s", want, spec_json_type(v));
}

/* ---- value readers ---- */

int spec_val_str(spec_ctx *c, json_t *v, char **ret)
{
	if (!spec_is_str(v))
		return type_err(c, "string", v);
	char *s = strdup(json_string_value(v));
	if (!s)
		return spec_oom(c);
	free(*ret);
	*ret = s;
	return 0;
}

int spec_val_int(spec_ctx *c, json_t *v, int64_t lo, int64_t hi, int64_t *ret)
{
	if (is_big(v))
		return spec_err(c, "must be at most %" PRId64 ", got %s", hi, json_string_value(v) + 1);
	if (!json_is_integer(v))
		return type_err(c, "integer", v);
	int64_t x = json_integer_value(v);
	if (x < lo)
		return spec_err(c, "must be at least %" PRId64 ", got %" PRId64, lo, x);
	if (x > hi)
		return spec_err(c, "must be at most %" PRId64 ", got %" PRId64, hi, x);
	*ret = x;
	return 0;
}

int spec_val_u64(spec_ctx *c, json_t *v, uint64_t *ret)
{
	if (is_big(v)) {
		const char *digits = json_string_value(v) + 1;
		errno = 0;
		unsigned long long x = strtoull(digits, NULL, 10);
		if (errno == ERANGE)
			return spec_err(c, "must be at most %llu, got %s", ULLONG_MAX, digits);
		*ret = x;
		return 0;
	}
	int64_t x = 0;
	int r = spec_val_int(c, v, 0, INT64_MAX, &x);
	if (r >= 0)
		*ret = (uint64_t)x;
	return r;
}

/* The array is stored (and its count set) before the elements are read, so
 * a partly parsed value is still freed by spec_free(). */
int spec_val_strv(spec_ctx *c, json_t *v, char ***ret, size_t *ret_n)
{
	if (!json_is_array(v))
		return type_err(c, "array of strings", v);
	size_t n = json_array_size(v);
	char **strv = calloc(n + 1, sizeof *strv);
	if (!strv)
		return spec_oom(c);
	*ret = strv;
	if (ret_n)
		*ret_n = n;
	for (size_t i = 0; i < n; i++) {
		size_t saved = spec_push_idx(c, i);
		int r = spec_val_str(c, json_array_get(v, i), &strv[i]);
		if (r < 0)
			return r;
		spec_pop(c, saved);
	}
	return 0;
}

int spec_val_name(spec_ctx *c, json_t *v, const spec_name *table, size_t n, const char *what, int64_t *ret)
{
	if (!spec_is_str(v))
		return type_err(c, "string", v);
	const char *s = json_string_value(v);
	for (size_t i = 0; i < n; i++)
		if (strcmp(table[i].name, s) == 0) {
			*ret = table[i].value;
			return 0;
		}
	return spec_err(c, "unknown %s \"%s\"", what, s);
}

int spec_val_flags(spec_ctx *c, json_t *v, const spec_name *table, size_t n, const char *what, uint64_t *ret)
{
	uint64_t mask = 0;
	size_t i;
	json_t *e;
	if (!json_is_array(v))
		return type_err(c, "array of strings", v);
	json_array_foreach(v, i, e) {
		size_t saved = spec_push_idx(c, i);
		int64_t x = 0;
		int r = spec_val_name(c, e, table, n, what, &x);
		if (r < 0)
			return r;
		mask |= (uint64_t)x;
		spec_pop(c, saved);
	}
	*ret = mask;
	return 0;
}

/* Object of strings (annotations, sysctl, unified) -> key/value array. */
static int val_map(spec_ctx *c, json_t *v, spec_kv **ret, size_t *ret_n)
{
	if (!json_is_object(v))
		return type_err(c, "object", v);
	size_t n = json_object_size(v), i = 0;
	if (n == 0)
		return 0;
	spec_kv *kv = calloc(n, sizeof *kv);
	if (!kv)
		return spec_oom(c);
	*ret = kv;
	*ret_n = n;
	const char *key;
	json_t *val;
	json_object_foreach(v, key, val) {
		size_t saved = spec_push_mapkey(c, key);
		if (!spec_is_str(val))
			return type_err(c, "string", val);
		kv[i].key = strdup(key);
		kv[i].value = strdup(json_string_value(val));
		i++;
		if (!kv[i - 1].key || !kv[i - 1].value)
			return spec_oom(c);
		spec_pop(c, saved);
	}
	return 0;
}

static int val_arr(spec_ctx *c, json_t *v, const spec_field *f, void *base)
{
	if (!json_is_array(v))
		return type_err(c, "array", v);
	size_t n = json_array_size(v);
	if (n == 0)
		return 0;
	char *arr = calloc(n, f->elem_size);
	if (!arr)
		return spec_oom(c);
	*(void **)((char *)base + f->off) = arr;
	*(size_t *)((char *)base + f->off_n) = n;
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(v, i);
		void *elem = arr + i * f->elem_size;
		size_t saved = spec_push_idx(c, i);
		int r = 0;
		if (f->sub)
			r = spec_dispatch(c, e, f->sub, elem);
		if (r >= 0 && f->fn)
			r = f->fn(c, e, elem);
		if (r < 0)
			return r;
		spec_pop(c, saved);
	}
	return 0;
}

static void int_range(const spec_field *f, int64_t *lo, int64_t *hi)
{
	if (f->lo || f->hi) {
		*lo = f->lo;
		*hi = f->hi;
		return;
	}
	switch (f->kind) {
	case F_OU64:
	case F_U64: *lo = 0; *hi = INT64_MAX; break;
	case F_U32: *lo = 0; *hi = UINT32_MAX; break;
	case F_INT: *lo = INT_MIN; *hi = INT_MAX; break;
	default: *lo = INT64_MIN; *hi = INT64_MAX; break;
	}
}

static int dispatch_one(spec_ctx *c, json_t *v, const spec_field *f, void *base)
{
	void *t = (char *)base + f->off;
	int64_t x, lo, hi;
	int r;

	switch (f->kind) {
	case F_STR:
		r = spec_val_str(c, v, t);
		if (r < 0)
			return r;
		if ((f->flags & SF_ABSPATH) && (*(char **)t)[0] != '/')
			return spec_err(c, "must be an absolute path, got \"%s\"", *(char **)t);
		return 0;
	case F_BOOL:
	case F_OBOOL:
		if (!json_is_boolean(v))
			return type_err(c, "boolean", v);
		if (f->kind == F_BOOL)
			*(bool *)t = json_is_true(v);
		else
			*(opt_bool *)t = (opt_bool){ true, json_is_true(v) };
		return 0;
	case F_OU64:
	case F_U64:
		if (f->lo || f->hi)
			goto ranged;
		uint64_t u = 0;
		r = spec_val_u64(c, v, &u);
		if (r < 0)
			return r;
		if (f->kind == F_OU64)
			*(opt_u64 *)t = (opt_u64){ true, u };
		else
			*(uint64_t *)t = u;
		return 0;
	case F_OI64:
	case F_I64:
	case F_U32:
	case F_INT:
	ranged:
		int_range(f, &lo, &hi);
		r = spec_val_int(c, v, lo, hi, &x);
		if (r < 0)
			return r;
		switch (f->kind) {
		case F_OI64: *(opt_i64 *)t = (opt_i64){ true, x }; break;
		case F_OU64: *(opt_u64 *)t = (opt_u64){ true, (uint64_t)x }; break;
		case F_I64: *(int64_t *)t = x; break;
		case F_U64: *(uint64_t *)t = (uint64_t)x; break;
		case F_U32: *(uint32_t *)t = (uint32_t)x; break;
		default: *(int *)t = (int)x; break;
		}
		return 0;
	case F_STRV:
		return spec_val_strv(c, v, t, f->off_n == NO_N ? NULL : (size_t *)((char *)base + f->off_n));
	case F_MAP:
		return val_map(c, v, t, (size_t *)((char *)base + f->off_n));
	case F_OBJ:
		r = spec_dispatch(c, v, f->sub, base);
		if (r >= 0 && f->fn)
			r = f->fn(c, v, t);
		return r;
	case F_ARR:
		return val_arr(c, v, f, base);
	case F_FN:
		return f->fn(c, v, t);
	}
	return spec_err(c, "internal error: bad field kind");
}

/* Unknown properties are ignored (runtime-spec: runtimes MUST ignore them);
 * null counts as absent. */
int spec_dispatch(spec_ctx *c, json_t *v, const spec_field *fields, void *base)
{
	if (!json_is_object(v))
		return type_err(c, "object", v);
	for (const spec_field *f = fields; f->key; f++) {
		json_t *fv = json_object_get(v, f->key);
		size_t saved = spec_push_key(c, f->key);
		int r = 0;
		if (!fv || json_is_null(fv)) {
			if (f->flags & SF_REQUIRED)
				r = spec_err(c, "required property is missing");
		} else
			r = dispatch_one(c, fv, f, base);
		if (r < 0)
			return r;
		spec_pop(c, saved);
	}
	return 0;
}

/* ---- process ---- */

/* Target is a struct whose first member is its `has` / `present` flag. */
int spec_mark_present(spec_ctx *c, json_t *v, void *t)
{
	*(bool *)t = true;
	return 0;
}

static int p_args(spec_ctx *c, json_t *v, void *t)
{
	oci_spec *s = c->spec;
	size_t i;
	json_t *e;
	if (!json_is_array(v) || json_array_size(v) == 0)
		return spec_err(c, "must be a non-empty array of strings");
	json_array_foreach(v, i, e)
		if (!spec_is_str(e))
			return spec_err(c, "must be a non-empty array of strings");
	return spec_val_strv(c, v, &s->process.args, &s->process.n_args);
}

static int p_env(spec_ctx *c, json_t *v, void *t)
{
	oci_spec *s = c->spec;
	int r = spec_val_strv(c, v, &s->process.env, &s->process.n_env);
	if (r < 0)
		return r;
	for (size_t i = 0; i < s->process.n_env; i++) {
		const char *e = s->process.env[i], *eq = strchr(e, '=');
		if (!eq || eq == e) {
			spec_push_idx(c, i);
			return spec_err(c, "invalid environment variable \"%s\": %s", e,
					eq ? "empty name" : "missing '='");
		}
	}
	return 0;
}

static int p_gid(spec_ctx *c, json_t *v, void *t)
{
	int64_t x = 0;
	int r = spec_val_int(c, v, 0, INT32_MAX, &x);
	if (r >= 0)
		*(gid_t *)t = (gid_t)x;
	return r;
}

static int p_capset(spec_ctx *c, json_t *v, void *t)
{
	uint64_t mask = 0;
	size_t i;
	json_t *e;
	if (!json_is_array(v))
		return type_err(c, "array of strings", v);
	json_array_foreach(v, i, e) {
		size_t saved = spec_push_idx(c, i);
		if (!spec_is_str(e))
			return type_err(c, "string", e);
		int cap = spec_cap_from_name(json_string_value(e));
		if (cap < 0)
			return spec_err(c, "unknown capability \"%s\"", json_string_value(e));
		mask |= UINT64_C(1) << cap;
		spec_pop(c, saved);
	}
	*(uint64_t *)t = mask;
	return 0;
}

static int p_rlimit_type(spec_ctx *c, json_t *v, void *t)
{
	if (!spec_is_str(v))
		return type_err(c, "string", v);
	int res = spec_rlimit_from_name(json_string_value(v));
	if (res < 0)
		return spec_err(c, "unknown rlimit \"%s\"", json_string_value(v));
	*(int *)t = res;
	return 0;
}

static int p_rlimit_check(spec_ctx *c, json_t *v, void *t)
{
	const spec_rlimit *rl = t, *all = c->spec->process.rlimits;
	for (const spec_rlimit *p = all; p < rl; p++)
		if (p->resource == rl->resource) {
			spec_push_key(c, "type");
			return spec_err(c, "duplicate rlimit \"%s\"", spec_rlimit_name(rl->resource));
		}
	if (rl->soft > rl->hard)
		return spec_err(c, "soft limit %" PRIu64 " exceeds hard limit %" PRIu64, rl->soft, rl->hard);
	return 0;
}

static const spec_name ioprio_classes[] = {
	{ "IOPRIO_CLASS_RT", 1 }, { "IOPRIO_CLASS_BE", 2 }, { "IOPRIO_CLASS_IDLE", 3 },
};
static const spec_name sched_policies[] = {
	{ "SCHED_OTHER", 0 }, { "SCHED_FIFO", 1 }, { "SCHED_RR", 2 },     { "SCHED_BATCH", 3 },
	{ "SCHED_ISO", 4 },   { "SCHED_IDLE", 5 }, { "SCHED_DEADLINE", 6 },
};
/* sched_attr.sched_flags bits (<linux/sched.h>). */
static const spec_name sched_flags[] = {
	{ "SCHED_FLAG_RESET_ON_FORK", 0x01 }, { "SCHED_FLAG_RECLAIM", 0x02 },
	{ "SCHED_FLAG_DL_OVERRUN", 0x04 },    { "SCHED_FLAG_KEEP_POLICY", 0x08 },
	{ "SCHED_FLAG_KEEP_PARAMS", 0x10 },   { "SCHED_FLAG_UTIL_CLAMP_MIN", 0x20 },
	{ "SCHED_FLAG_UTIL_CLAMP_MAX", 0x40 },
};
SPEC_ENUM_FN(p_ioprio_class, ioprio_classes, "ioPriority class", int)
SPEC_ENUM_FN(p_sched_policy, sched_policies, "scheduler policy", int)
SPEC_FLAGS_FN(p_sched_flags, sched_flags, "scheduler flag", uint64_t)

#define P(m) oci_spec, process.m
static const spec_field console_fields[] = {
	FLD("height", F_OU64, P(console_height), .lo = 0, .hi = UINT16_MAX),
	FLD("width", F_OU64, P(console_width), .lo = 0, .hi = UINT16_MAX),
	FLD_END
};
static const spec_field user_fields[] = {
	/* (u32)-1 means "unchanged" to setresuid: the process would stay root.
	 * The kernel's ids are 0..2^31-1. */
	FLD("uid", F_U32, P(uid), .lo = 0, .hi = INT32_MAX),
	FLD("gid", F_U32, P(gid), .lo = 0, .hi = INT32_MAX),
	FLD("umask", F_OU64, P(umask), .lo = 0, .hi = UINT32_MAX),
	FLD_ARR("additionalGids", P(additional_gids), process.n_additional_gids, gid_t, .fn = p_gid),
	FLD("username", F_STR, P(username)),
	FLD_END
};
static const spec_field caps_fields[] = {
	FLD("bounding", F_FN, P(caps.bounding), .fn = p_capset),
	FLD("effective", F_FN, P(caps.effective), .fn = p_capset),
	FLD("inheritable", F_FN, P(caps.inheritable), .fn = p_capset),
	FLD("permitted", F_FN, P(caps.permitted), .fn = p_capset),
	FLD("ambient", F_FN, P(caps.ambient), .fn = p_capset),
	FLD_END
};
static const spec_field rlimit_fields[] = {
	FLD("type", F_FN, spec_rlimit, resource, .flags = SF_REQUIRED, .fn = p_rlimit_type),
	FLD("soft", F_U64, spec_rlimit, soft, .flags = SF_REQUIRED),
	FLD("hard", F_U64, spec_rlimit, hard, .flags = SF_REQUIRED),
	FLD_END
};
static const spec_field ioprio_fields[] = {
	FLD("class", F_FN, P(io_priority.klass), .flags = SF_REQUIRED, .fn = p_ioprio_class),
	FLD("priority", F_INT, P(io_priority.priority), .lo = 0, .hi = 7),
	FLD_END
};
static const spec_field sched_fields[] = {
	FLD("policy", F_FN, P(scheduler.policy), .flags = SF_REQUIRED, .fn = p_sched_policy),
	FLD("nice", F_INT, P(scheduler.nice), .lo = -20, .hi = 19),
	FLD("priority", F_INT, P(scheduler.priority)),
	FLD("flags", F_FN, P(scheduler.flags), .fn = p_sched_flags),
	FLD("runtime", F_U64, P(scheduler.runtime)),
	FLD("deadline", F_U64, P(scheduler.deadline)),
	FLD("period", F_U64, P(scheduler.period)),
	FLD_END
};
static const spec_field affinity_fields[] = {
	FLD("initial", F_STR, P(cpu_affinity_initial)),
	FLD("final", F_STR, P(cpu_affinity_final)),
	FLD_END
};

static int p_process(spec_ctx *c, json_t *v, void *t)
{
	oci_spec *s = c->spec;
	s->process.present = true;
	if (!s->process.args) {
		spec_push_key(c, "args");
		return spec_err(c, "must be a non-empty array of strings");
	}
	if (!s->process.cwd && !(s->process.cwd = strdup("/")))
		return spec_oom(c);
	return 0;
}

static const spec_field process_fields[] = {
	FLD("terminal", F_BOOL, P(terminal)),
	FLD("consoleSize", F_OBJ, P(console_height), .sub = console_fields),
	FLD("user", F_OBJ, P(uid), .sub = user_fields),
	FLD("args", F_FN, P(args), .fn = p_args),
	FLD("env", F_FN, P(env), .fn = p_env),
	FLD("cwd", F_STR, P(cwd), .flags = SF_ABSPATH),
	FLD("capabilities", F_OBJ, P(caps), .sub = caps_fields, .fn = spec_mark_present),
	FLD_ARR("rlimits", P(rlimits), process.n_rlimits, spec_rlimit, .sub = rlimit_fields, .fn = p_rlimit_check),
	FLD("noNewPrivileges", F_BOOL, P(no_new_privileges)),
	FLD("apparmorProfile", F_STR, P(apparmor_profile)),
	FLD("selinuxLabel", F_STR, P(selinux_label)),
	FLD("oomScoreAdj", F_OI64, P(oom_score_adj), .lo = -1000, .hi = 1000),
	FLD("ioPriority", F_OBJ, P(io_priority), .sub = ioprio_fields, .fn = spec_mark_present),
	FLD("scheduler", F_OBJ, P(scheduler), .sub = sched_fields, .fn = spec_mark_present),
	FLD("execCPUAffinity", F_OBJ, P(cpu_affinity_initial), .sub = affinity_fields),
	FLD_END
};
#undef P

/* ---- mounts, hooks, top level ---- */

const spec_field spec_idmap_fields[] = {
	FLD("containerID", F_U32, spec_idmap, container_id, .flags = SF_REQUIRED),
	FLD("hostID", F_U32, spec_idmap, host_id, .flags = SF_REQUIRED),
	FLD("size", F_U32, spec_idmap, size, .flags = SF_REQUIRED),
	FLD_END
};

static int p_mount(spec_ctx *c, json_t *v, void *t)
{
	spec_mount *m = t;
	int r = spec_mount_opts_parse(m->options, &m->opts);
	if (r < 0) {
		spec_push_key(c, "options");
		return err_wrap(r, "%s: %s", c->file, c->path);
	}
	return 0;
}

static const spec_field mount_fields[] = {
	/* A relative destination (deprecated by the runtime-spec) is refused:
	 * "relative to what" is a guess we do not make. */
	FLD("destination", F_STR, spec_mount, destination, .flags = SF_REQUIRED | SF_ABSPATH),
	FLD("type", F_STR, spec_mount, type),
	FLD("source", F_STR, spec_mount, source),
	FLD("options", F_STRV, spec_mount, options),
	FLD_ARR("uidMappings", spec_mount, uid_mappings, n_uid_mappings, spec_idmap, .sub = spec_idmap_fields),
	FLD_ARR("gidMappings", spec_mount, gid_mappings, n_gid_mappings, spec_idmap, .sub = spec_idmap_fields),
	FLD_END
};

static const spec_field hook_fields[] = {
	FLD("path", F_STR, spec_hook, path, .flags = SF_REQUIRED | SF_ABSPATH),
	FLD("args", F_STRV, spec_hook, args),
	FLD("env", F_STRV, spec_hook, env),
	FLD("timeout", F_OI64, spec_hook, timeout, .lo = 1, .hi = INT64_MAX),
	FLD_END
};

#define HOOKS(k, i) FLD_ARR(k, oci_spec, hooks[i].v, hooks[i].n, spec_hook, .sub = hook_fields)
static const spec_field hooks_fields[] = {
	HOOKS("prestart", HOOK_PRESTART),
	HOOKS("createRuntime", HOOK_CREATE_RUNTIME),
	HOOKS("createContainer", HOOK_CREATE_CONTAINER),
	HOOKS("startContainer", HOOK_START_CONTAINER),
	HOOKS("poststart", HOOK_POSTSTART),
	HOOKS("poststop", HOOK_POSTSTOP),
	FLD_END
};
#undef HOOKS

static const spec_field root_fields[] = {
	FLD("path", F_STR, oci_spec, root_path, .flags = SF_REQUIRED),
	FLD("readonly", F_BOOL, oci_spec, root_readonly),
	FLD_END
};

static int p_nonempty(spec_ctx *c, json_t *v, void *t)
{
	int r = spec_val_str(c, v, t);
	if (r >= 0 && !**(char **)t)
		return spec_err(c, "must not be empty");
	return r;
}

static const spec_field top_fields[] = {
	FLD("ociVersion", F_FN, oci_spec, oci_version, .flags = SF_REQUIRED, .fn = p_nonempty),
	FLD("root", F_OBJ, oci_spec, root_path, .flags = SF_REQUIRED, .sub = root_fields),
	FLD("process", F_OBJ, oci_spec, process, .sub = process_fields, .fn = p_process),
	FLD("hostname", F_STR, oci_spec, hostname),
	FLD("domainname", F_STR, oci_spec, domainname),
	FLD_ARR("mounts", oci_spec, mounts, n_mounts, spec_mount, .sub = mount_fields, .fn = p_mount),
	FLD("hooks", F_OBJ, oci_spec, hooks, .sub = hooks_fields),
	FLD_N("annotations", F_MAP, oci_spec, annotations, n_annotations),
	FLD("linux", F_FN, oci_spec, linux, .fn = spec_parse_linux),
	FLD_END
};

static bool is_big_literal(const char *p, size_t n)
{
	static const char int64_max[] = "9223372036854775807";
	if (n > 1 && p[0] == '0')
		return false; /* invalid JSON: leave the error to jansson */
	return n > 19 || (n == 19 && memcmp(p, int64_max, 19) > 0);
}

/* Rewrite integer literals above INT64_MAX as "\u0000<digits>" strings (see
 * is_big()). Returns NULL (and *ret_len untouched) when nothing needs it. */
static char *rewrite_big_ints(const char *s, size_t len, size_t *ret_len)
{
	char *out = NULL;
	size_t o = 0, copied = 0;

	for (size_t i = 0; i < len;) {
		if (s[i] == '"') {
			for (i++; i < len && s[i] != '"'; i++)
				if (s[i] == '\\') {
					if (i + 5 < len && memcmp(s + i + 1, "u0000", 5) == 0)
						goto keep; /* has a NUL of its own: leave to jansson */
					i++;
				}
			i++;
			continue;
		}
		if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '-') {
			i++;
			continue;
		}
		size_t j = i, digits = 0;
		for (; j < len && s[j] && strchr("0123456789-+.eE", s[j]); j++)
			digits += s[j] >= '0' && s[j] <= '9';
		if (digits == j - i && is_big_literal(s + i, j - i)) {
			/* Each literal has >= 19 digits and grows by 8 bytes. */
			if (!out && !(out = malloc(len + len / 2 + 16)))
				return NULL;
			memcpy(out + o, s + copied, i - copied);
			o += i - copied;
			o += (size_t)sprintf(out + o, "\"\\u0000%.*s\"", (int)(j - i), s + i);
			copied = j;
		}
		i = j;
	}
	if (out) {
		memcpy(out + o, s + copied, len - copied);
		*ret_len = o + len - copied;
	}
	return out;
keep:
	free(out);
	return NULL;
}

int spec_parse(const char *json, size_t len, const char *file, oci_spec **ret)
{
	json_error_t e;
	size_t biglen = 0;
	_cleanup_free_ char *big = rewrite_big_ints(json, len, &biglen);
	_cleanup_(json_decrefp) json_t *root =
		big ? json_loadb(big, biglen, JSON_ALLOW_NUL, &e) : json_loadb(json, len, 0, &e);
	if (!root)
		return err_set(0, "%s:%d:%d: syntax error: %s", file, e.line, e.column, e.text);
	if (!json_is_object(root))
		return err_set(0, "%s: expected an object at the top level, got %s", file, spec_json_type(root));

	oci_spec *s = calloc(1, sizeof *s);
	if (!s)
		return err_set(ENOMEM, "%s", file);
	spec_ctx c = { .file = file, .spec = s };
	int r = spec_dispatch(&c, root, top_fields, s);
	if (r < 0) {
		spec_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

/* Lexically clean an absolute path: no "//", "." or ".." components, no
 * trailing slash (like Go's filepath.Clean; symlinks are not resolved). */
static char *path_join_clean(const char *dir, const char *rel)
{
	size_t n = strlen(dir) + strlen(rel) + 3;
	char *in = malloc(n), *out = malloc(n);
	if (!in || !out) {
		free(in);
		free(out);
		return NULL;
	}
	snprintf(in, n, "%s/%s", dir, rel);
	size_t o = 0;
	for (char *save = NULL, *tok = strtok_r(in, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (strcmp(tok, ".") == 0)
			continue;
		if (strcmp(tok, "..") == 0) {
			while (o > 0 && out[--o] != '/')
				;
			continue;
		}
		o += sprintf(out + o, "/%s", tok);
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	free(in);
	return out;
}

static int read_file(const char *path, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return err_set(errno, "open '%s'", path);
	size_t cap = 16384, len = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return err_set(ENOMEM, "read '%s'", path);
	for (;;) {
		if (cap - len < 2) {
			char *nb = realloc(buf, cap *= 2);
			if (!nb)
				return err_set(ENOMEM, "read '%s'", path);
			buf = nb;
		}
		ssize_t k = read(fd, buf + len, cap - len - 1);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return err_set(errno, "read '%s'", path);
		}
		if (k == 0)
			break;
		len += (size_t)k;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

int spec_load_bundle(const char *bundle, oci_spec **ret, char **ret_raw, size_t *ret_rawlen)
{
	_cleanup_free_ char *cwd = NULL, *dir = NULL, *file = NULL, *raw = NULL;
	size_t len = 0;
	int r;

	if (bundle[0] != '/' && !(cwd = getcwd(NULL, 0)))
		return err_set(errno, "getcwd");
	dir = path_join_clean(cwd ? cwd : "/", bundle);
	if (!dir || asprintf(&file, "%s/config.json", strcmp(dir, "/") ? dir : "") < 0)
		return err_set(ENOMEM, "bundle '%s'", bundle);
	r = read_file(file, &raw, &len);
	if (r < 0)
		return r;

	oci_spec *s;
	r = spec_parse(raw, len, "config.json", &s);
	if (r < 0)
		return r;
	if (s->root_path[0] != '/') {
		char *abs = path_join_clean(dir, s->root_path);
		if (!abs) {
			spec_free(s);
			return err_set(ENOMEM, "config.json: root.path");
		}
		free(s->root_path);
		s->root_path = abs;
	}
	s->bundle = TAKE_PTR(dir);
	*ret = s;
	if (ret_raw)
		*ret_raw = TAKE_PTR(raw);
	if (ret_rawlen)
		*ret_rawlen = len;
	return 0;
}

/* ---- freeing ---- */

void spec_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

void spec_kv_free(spec_kv *kv, size_t n)
{
	for (size_t i = 0; kv && i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

void spec_free(oci_spec *s)
{
	if (!s)
		return;
	free(s->oci_version);
	free(s->bundle);

	free(s->process.additional_gids);
	free(s->process.username);
	spec_strv_free(s->process.args);
	spec_strv_free(s->process.env);
	free(s->process.cwd);
	free(s->process.rlimits);
	free(s->process.apparmor_profile);
	free(s->process.selinux_label);
	free(s->process.cpu_affinity_initial);
	free(s->process.cpu_affinity_final);

	free(s->root_path);
	free(s->hostname);
	free(s->domainname);

	for (size_t i = 0; s->mounts && i < s->n_mounts; i++) {
		spec_mount *m = &s->mounts[i];
		free(m->destination);
		free(m->type);
		free(m->source);
		spec_strv_free(m->options);
		free(m->opts.data);
		free(m->uid_mappings);
		free(m->gid_mappings);
	}
	free(s->mounts);

	for (int h = 0; h < HOOK__MAX; h++) {
		for (size_t i = 0; s->hooks[h].v && i < s->hooks[h].n; i++) {
			free(s->hooks[h].v[i].path);
			spec_strv_free(s->hooks[h].v[i].args);
			spec_strv_free(s->hooks[h].v[i].env);
		}
		free(s->hooks[h].v);
	}
	spec_kv_free(s->annotations, s->n_annotations);
	spec_free_linux(s);
	free(s);
}
