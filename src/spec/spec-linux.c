/* config.json parser, the "linux" object: namespaces, id mappings, devices,
 * cgroup resources, seccomp and the rest of linux.*. */
#include <ctype.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>

#include "spec/spec.h"
#include "spec/spec-parse.h"
#include "util/cleanup.h"
#include "util/err.h"

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

static bool has_key(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return v && !json_is_null(v);
}

/* ---- namespaces ---- */

typedef struct {
	int type;
	char *path;
} ns_entry;

static int p_ns_type(spec_ctx *c, json_t *v, void *t)
{
	if (!spec_is_str(v))
		return spec_err(c, "expected string, got %s", spec_json_type(v));
	const char *name = json_string_value(v);
	for (int i = 0; i < NS__MAX; i++)
		if (strcmp(spec_ns_names[i], name) == 0) {
			if (c->spec->linux.ns[i].present)
				return spec_err(c, "duplicate namespace \"%s\"", name);
			*(int *)t = i;
			return 0;
		}
	return spec_err(c, "unknown namespace \"%s\"", name);
}

static const spec_field ns_fields[] = {
	FLD("type", F_FN, ns_entry, type, .flags = SF_REQUIRED, .fn = p_ns_type),
	FLD("path", F_STR, ns_entry, path, .flags = SF_ABSPATH),
	FLD_END
};

static int p_namespaces(spec_ctx *c, json_t *v, void *t)
{
	size_t i;
	json_t *e;
	if (!json_is_array(v))
		return spec_err(c, "expected array, got %s", spec_json_type(v));
	json_array_foreach(v, i, e) {
		size_t saved = spec_push_idx(c, i);
		ns_entry ent = { .type = -1 };
		int r = spec_dispatch(c, e, ns_fields, &ent);
		if (r < 0) {
			free(ent.path);
			return r;
		}
		c->spec->linux.ns[ent.type].present = true;
		c->spec->linux.ns[ent.type].path = ent.path;
		spec_pop(c, saved);
	}
	return 0;
}

/* ---- timeOffsets, devices, propagation, personality, intelRdt ---- */

typedef __typeof__(((oci_spec *)0)->linux.time_offsets[0]) time_offset;
static const spec_field time_offset_fields[] = {
	FLD("secs", F_I64, time_offset, secs),
	FLD("nanosecs", F_U32, time_offset, nanosecs, .lo = 0, .hi = 999999999),
	FLD_END
};

static int p_time_offsets(spec_ctx *c, json_t *v, void *t)
{
	static const char *const clocks[] = { "monotonic", "boottime" };
	const char *key;
	json_t *val;
	if (!json_is_object(v))
		return spec_err(c, "expected object, got %s", spec_json_type(v));
	json_object_foreach(v, key, val) {
		size_t saved = spec_push_mapkey(c, key);
		int i = strcmp(key, clocks[0]) == 0 ? 0 : strcmp(key, clocks[1]) == 0 ? 1 : -1;
		if (i < 0) {
			spec_pop(c, saved);
			return spec_err(c, "unknown clock \"%s\" (expected \"monotonic\" or \"boottime\")", key);
		}
		int r = spec_dispatch(c, val, time_offset_fields, &c->spec->linux.time_offsets[i]);
		if (r < 0)
			return r;
		c->spec->linux.time_offsets[i].has = true;
		spec_pop(c, saved);
	}
	return 0;
}

static const spec_name device_types[] = { { "c", 'c' }, { "b", 'b' }, { "u", 'u' }, { "p", 'p' } };
static const spec_name rule_types[] = { { "a", 'a' }, { "c", 'c' }, { "b", 'b' } };
SPEC_ENUM_FN(p_device_type, device_types, "device type", char)
SPEC_ENUM_FN(p_rule_type, rule_types, "device type", char)

/* Device nodes go under /dev only: a node elsewhere would replace a file of
 * the image (/etc/hostname), and ".." could climb out of /dev. */
static bool device_path_ok(const char *p)
{
	size_t len = strlen(p);
	if (strncmp(p, "/dev/", 5) || p[len - 1] == '/')
		return false;
	for (const char *s = p + 5; *s;) {
		size_t n = strcspn(s, "/");
		if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		s += n + (s[n] == '/');
	}
	return true;
}

static int p_device(spec_ctx *c, json_t *v, void *t)
{
	const spec_device *d = t;
	if (!device_path_ok(d->path)) {
		spec_push_key(c, "path");
		return spec_err(c, "must be a path under /dev (no \".\" or \"..\"), got \"%s\"", d->path);
	}
	if (d->type == 'p')
		return 0;
	for (int i = 0; i < 2; i++) {
		const char *k = i ? "minor" : "major";
		if (!has_key(v, k)) {
			spec_push_key(c, k);
			return spec_err(c, "required for device type \"%c\"", d->type);
		}
	}
	return 0;
}

static const spec_field device_fields[] = {
	FLD("type", F_FN, spec_device, type, .flags = SF_REQUIRED, .fn = p_device_type),
	FLD("path", F_STR, spec_device, path, .flags = SF_REQUIRED | SF_ABSPATH),
	FLD("major", F_I64, spec_device, major),
	FLD("minor", F_I64, spec_device, minor),
	FLD("fileMode", F_OU64, spec_device, file_mode, .lo = 0, .hi = UINT32_MAX),
	FLD("uid", F_OU64, spec_device, uid, .lo = 0, .hi = UINT32_MAX),
	FLD("gid", F_OU64, spec_device, gid, .lo = 0, .hi = UINT32_MAX),
	FLD_END
};

static int p_rootfs_propagation(spec_ctx *c, json_t *v, void *t)
{
	if (!spec_is_str(v))
		return spec_err(c, "expected string, got %s", spec_json_type(v));
	const char *name = json_string_value(v);
	unsigned long p = name[0] ? spec_propagation_from_name(name) : 0;
	if (name[0] && !p)
		return spec_err(c, "unknown propagation \"%s\"", name);
	*(unsigned long *)t = p;
	return 0;
}

static const spec_name personality_domains[] = { { "LINUX", PER_LINUX }, { "LINUX32", PER_LINUX32 } };
SPEC_ENUM_FN(p_personality_domain, personality_domains, "personality domain", unsigned long)

/* personality.flags: the runtime-spec defines no flag values yet. */
static const spec_field personality_fields[] = {
	FLD("domain", F_FN, oci_spec, linux.personality.domain, .flags = SF_REQUIRED, .fn = p_personality_domain),
	FLD_END
};

static int p_intel_rdt(spec_ctx *c, json_t *v, void *t)
{
	if (!json_is_object(v))
		return spec_err(c, "expected object, got %s", spec_json_type(v));
	*(bool *)t = true;
	return 0;
}

/* ---- resources ---- */

static int p_access(spec_ctx *c, json_t *v, void *t)
{
	char *acc = t;
	if (!spec_is_str(v))
		return spec_err(c, "expected string, got %s", spec_json_type(v));
	const char *s = json_string_value(v);
	size_t n = strlen(s);
	if (n > 3 || strspn(s, "rwm") != n || (n > 1 && s[0] == s[1]) || (n > 2 && (s[2] == s[0] || s[2] == s[1])))
		return spec_err(c, "invalid access \"%s\": must be a combination of r, w and m", s);
	memcpy(acc, s, n + 1);
	return 0;
}

static int p_dev_rule(spec_ctx *c, json_t *v, void *t)
{
	spec_dev_rule *d = t;
	if (!d->type)
		d->type = 'a';
	if (!has_key(v, "major"))
		d->major = -1;
	if (!has_key(v, "minor"))
		d->minor = -1;
	if (!d->access[0])
		memcpy(d->access, "rwm", 4);
	return 0;
}

static const spec_field dev_rule_fields[] = {
	FLD("allow", F_BOOL, spec_dev_rule, allow, .flags = SF_REQUIRED),
	FLD("type", F_FN, spec_dev_rule, type, .fn = p_rule_type),
	FLD("major", F_I64, spec_dev_rule, major),
	FLD("minor", F_I64, spec_dev_rule, minor),
	FLD("access", F_FN, spec_dev_rule, access, .fn = p_access),
	FLD_END
};

#define R(m) oci_spec, linux.resources.m
static const spec_field memory_fields[] = {
	FLD("limit", F_OI64, R(memory.limit)),
	FLD("reservation", F_OI64, R(memory.reservation)),
	FLD("swap", F_OI64, R(memory.swap)),
	FLD("kernel", F_OI64, R(memory.kernel)),
	FLD("kernelTCP", F_OI64, R(memory.kernel_tcp)),
	FLD("swappiness", F_OU64, R(memory.swappiness)),
	FLD("disableOOMKiller", F_OBOOL, R(memory.disable_oom_killer)),
	FLD("useHierarchy", F_OBOOL, R(memory.use_hierarchy)),
	FLD("checkBeforeUpdate", F_OBOOL, R(memory.check_before_update)),
	FLD_END
};
static const spec_field cpu_fields[] = {
	FLD("shares", F_OU64, R(cpu.shares)),
	FLD("quota", F_OI64, R(cpu.quota)),
	FLD("burst", F_OU64, R(cpu.burst)),
	FLD("period", F_OU64, R(cpu.period)),
	FLD("realtimeRuntime", F_OI64, R(cpu.realtime_runtime)),
	FLD("realtimePeriod", F_OU64, R(cpu.realtime_period)),
	FLD("cpus", F_STR, R(cpu.cpus)),
	FLD("mems", F_STR, R(cpu.mems)),
	FLD("idle", F_OI64, R(cpu.idle)),
	FLD_END
};
static const spec_field pids_fields[] = {
	FLD("limit", F_OI64, R(pids.limit)),
	FLD_END
};
static const spec_field weight_dev_fields[] = {
	FLD("major", F_I64, spec_weight_dev, major, .flags = SF_REQUIRED),
	FLD("minor", F_I64, spec_weight_dev, minor, .flags = SF_REQUIRED),
	FLD("weight", F_OU64, spec_weight_dev, weight, .lo = 0, .hi = UINT16_MAX),
	FLD("leafWeight", F_OU64, spec_weight_dev, leaf_weight, .lo = 0, .hi = UINT16_MAX),
	FLD_END
};
static const spec_field throttle_fields[] = {
	FLD("major", F_I64, spec_throttle_dev, major, .flags = SF_REQUIRED),
	FLD("minor", F_I64, spec_throttle_dev, minor, .flags = SF_REQUIRED),
	FLD("rate", F_U64, spec_throttle_dev, rate, .flags = SF_REQUIRED),
	FLD_END
};
#define THROTTLE(k, i) \
	FLD_ARR(k, R(blkio.throttle[i]), linux.resources.blkio.n_throttle[i], spec_throttle_dev, .sub = throttle_fields)
static const spec_field blkio_fields[] = {
	FLD("weight", F_OU64, R(blkio.weight), .lo = 0, .hi = UINT16_MAX),
	FLD("leafWeight", F_OU64, R(blkio.leaf_weight), .lo = 0, .hi = UINT16_MAX),
	FLD_ARR("weightDevice", R(blkio.weight_device), linux.resources.blkio.n_weight_device, spec_weight_dev,
		.sub = weight_dev_fields),
	THROTTLE("throttleReadBpsDevice", THROTTLE_READ_BPS),
	THROTTLE("throttleWriteBpsDevice", THROTTLE_WRITE_BPS),
	THROTTLE("throttleReadIOPSDevice", THROTTLE_READ_IOPS),
	THROTTLE("throttleWriteIOPSDevice", THROTTLE_WRITE_IOPS),
	FLD_END
};
#undef THROTTLE
static const spec_field hugepage_fields[] = {
	FLD("pageSize", F_STR, spec_hugepage, page_size, .flags = SF_REQUIRED),
	FLD("limit", F_U64, spec_hugepage, limit, .flags = SF_REQUIRED),
	FLD_END
};
static const spec_field netprio_fields[] = {
	FLD("name", F_STR, spec_netprio, name, .flags = SF_REQUIRED),
	FLD("priority", F_U32, spec_netprio, priority, .flags = SF_REQUIRED),
	FLD_END
};
static const spec_field network_fields[] = {
	FLD("classID", F_OU64, R(network.class_id), .lo = 0, .hi = UINT32_MAX),
	FLD_ARR("priorities", R(network.priorities), linux.resources.network.n_priorities, spec_netprio,
		.sub = netprio_fields),
	FLD_END
};
static const spec_field rdma_fields[] = {
	FLD("hcaHandles", F_OU64, spec_rdma, hca_handles, .lo = 0, .hi = UINT32_MAX),
	FLD("hcaObjects", F_OU64, spec_rdma, hca_objects, .lo = 0, .hi = UINT32_MAX),
	FLD_END
};

/* rdma: { "<device>": { "hcaHandles": N, "hcaObjects": N }, ... } */
static int p_rdma(spec_ctx *c, json_t *v, void *t)
{
	spec_resources *res = &c->spec->linux.resources;
	const char *key;
	json_t *val;
	size_t i = 0;
	if (!json_is_object(v))
		return spec_err(c, "expected object, got %s", spec_json_type(v));
	if (json_object_size(v) == 0)
		return 0;
	if (!(res->rdma = calloc(json_object_size(v), sizeof *res->rdma)))
		return err_set(ENOMEM, "%s: %s", c->file, c->path);
	res->n_rdma = json_object_size(v);
	json_object_foreach(v, key, val) {
		size_t saved = spec_push_mapkey(c, key);
		spec_rdma *d = &res->rdma[i++];
		if (!(d->device = strdup(key)))
			return err_set(ENOMEM, "%s: %s", c->file, c->path);
		int r = spec_dispatch(c, val, rdma_fields, d);
		if (r < 0)
			return r;
		spec_pop(c, saved);
	}
	return 0;
}

static const spec_field resources_fields[] = {
	FLD_ARR("devices", R(devices), linux.resources.n_devices, spec_dev_rule, .sub = dev_rule_fields, .fn = p_dev_rule),
	FLD("memory", F_OBJ, R(memory), .sub = memory_fields),
	FLD("cpu", F_OBJ, R(cpu), .sub = cpu_fields),
	FLD("pids", F_OBJ, R(pids), .sub = pids_fields),
	FLD("blockIO", F_OBJ, R(blkio), .sub = blkio_fields),
	FLD_ARR("hugepageLimits", R(hugepages), linux.resources.n_hugepages, spec_hugepage, .sub = hugepage_fields),
	FLD("network", F_OBJ, R(network), .sub = network_fields),
	FLD("rdma", F_FN, R(rdma), .fn = p_rdma),
	FLD_N("unified", F_MAP, R(unified), linux.resources.n_unified),
	FLD_END
};
#undef R

/* `update -r`: a linux.resources object on its own. The field tables above
 * address an oci_spec, so the object is parsed into a scratch one whose
 * resources are then handed over; paths in errors start at the object
 * ("memory.limit"). */
int spec_parse_resources(const char *json, size_t len, const char *file, spec_resources *ret)
{
	json_error_t e;
	_cleanup_(json_decrefp) json_t *root = json_loadb(json, len, 0, &e);
	if (!root)
		return err_set(0, "%s:%d:%d: syntax error: %s", file, e.line, e.column, e.text);
	if (!json_is_object(root))
		return err_set(0, "%s: expected an object at the top level, got %s", file, spec_json_type(root));
	oci_spec *s = calloc(1, sizeof *s);
	if (!s)
		return err_set(ENOMEM, "%s", file);
	spec_ctx c = { .file = file, .spec = s };
	int r = spec_dispatch(&c, root, resources_fields, s);
	if (r < 0) {
		spec_free(s);
		return r;
	}
	*ret = s->linux.resources;
	ret->present = true;
	memset(&s->linux.resources, 0, sizeof s->linux.resources);
	spec_free(s);
	return 0;
}

/* Sizes as runc's flags take them: "1048576", "512k", "64m", "1.5g", "2GiB",
 * "3 mb" (binary multiples; the unit letter, "i" and "b" are optional). */
int spec_parse_mem_size(const char *s, int64_t *ret)
{
	static const char units[] = "kmgtp";
	const char *p = s;
	long double whole = 0, frac = 0, scale = 1;
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++)
		whole = whole * 10 + (*p - '0');
	if (*p == '.') {
		if (!isdigit((unsigned char)*++p))
			return -EINVAL;
		for (; isdigit((unsigned char)*p); p++)
			frac += (*p - '0') / (scale *= 10);
	}
	if (*p == ' ')
		p++;
	long double mult = 1;
	const char *u = *p ? strchr(units, tolower((unsigned char)*p)) : NULL;
	if (u) {
		for (const char *k = units; k <= u; k++)
			mult *= 1024;
		p++;
	}
	if (*p == 'i' || *p == 'I')
		p++;
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p)
		return -EINVAL;
	long double v = (whole + frac) * mult;
	if (v >= 9223372036854775807.0L)
		return -ERANGE;
	*ret = (int64_t)v;
	return 0;
}

/* ---- seccomp ---- */

static const spec_name seccomp_actions[] = {
	{ "SCMP_ACT_KILL", SCMP_ACT_KILL },
	{ "SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS },
	{ "SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD },
	{ "SCMP_ACT_TRAP", SCMP_ACT_TRAP },
	{ "SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0) },
	{ "SCMP_ACT_TRACE", SCMP_ACT_TRACE(0) },
	{ "SCMP_ACT_ALLOW", SCMP_ACT_ALLOW },
	{ "SCMP_ACT_LOG", SCMP_ACT_LOG },
	{ "SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY },
};
static const spec_name seccomp_ops[] = {
	{ "SCMP_CMP_NE", SCMP_CMP_NE }, { "SCMP_CMP_LT", SCMP_CMP_LT }, { "SCMP_CMP_LE", SCMP_CMP_LE },
	{ "SCMP_CMP_EQ", SCMP_CMP_EQ }, { "SCMP_CMP_GE", SCMP_CMP_GE }, { "SCMP_CMP_GT", SCMP_CMP_GT },
	{ "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
};
static const spec_name seccomp_flags[] = {
	{ "SECCOMP_FILTER_FLAG_TSYNC", 1 << 0 },
	{ "SECCOMP_FILTER_FLAG_LOG", 1 << 1 },
	{ "SECCOMP_FILTER_FLAG_SPEC_ALLOW", 1 << 2 },
	{ "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV },
};
SPEC_ENUM_FN(p_seccomp_action, seccomp_actions, "seccomp action", uint32_t)
SPEC_ENUM_FN(p_seccomp_op, seccomp_ops, "seccomp operator", int)
SPEC_FLAGS_FN(p_seccomp_flags, seccomp_flags, "seccomp flag", unsigned)

/* "SCMP_ARCH_X86_64" -> libseccomp's token for "x86_64". */
static int p_seccomp_arches(spec_ctx *c, json_t *v, void *t)
{
	spec_seccomp *sc = &c->spec->linux.seccomp;
	size_t i;
	json_t *e;
	if (!json_is_array(v))
		return spec_err(c, "expected array of strings, got %s", spec_json_type(v));
	if (json_array_size(v) == 0)
		return 0;
	if (!(sc->arches = calloc(json_array_size(v), sizeof *sc->arches)))
		return err_set(ENOMEM, "%s: %s", c->file, c->path);
	json_array_foreach(v, i, e) {
		size_t saved = spec_push_idx(c, i);
		char lower[64];
		if (!spec_is_str(e))
			return spec_err(c, "expected string, got %s", spec_json_type(e));
		const char *name = json_string_value(e);
		uint32_t arch = 0;
		if (strncmp(name, "SCMP_ARCH_", 10) == 0 && strlen(name + 10) < sizeof lower) {
			size_t k;
			for (k = 0; name[10 + k]; k++)
				lower[k] = (char)tolower((unsigned char)name[10 + k]);
			lower[k] = '\0';
			arch = seccomp_arch_resolve_name(lower);
		}
		if (!arch)
			return spec_err(c, "unknown architecture \"%s\"", name);
		sc->arches[sc->n_arches++] = arch;
		spec_pop(c, saved);
	}
	return 0;
}

static bool action_takes_errno(uint32_t a)
{
	return a == SCMP_ACT_ERRNO(0) || a == SCMP_ACT_TRACE(0);
}

static int p_seccomp_rule(spec_ctx *c, json_t *v, void *t)
{
	const spec_seccomp_rule *rule = t;
	if (rule->errno_ret.has && !action_takes_errno(rule->action)) {
		spec_push_key(c, "errnoRet");
		return spec_err(c, "only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE");
	}
	return 0;
}

static const spec_field seccomp_arg_fields[] = {
	FLD("index", F_U32, spec_seccomp_arg, index, .flags = SF_REQUIRED, .lo = 0, .hi = 5),
	FLD("value", F_U64, spec_seccomp_arg, value, .flags = SF_REQUIRED),
	FLD("valueTwo", F_U64, spec_seccomp_arg, value_two),
	FLD("op", F_FN, spec_seccomp_arg, op, .flags = SF_REQUIRED, .fn = p_seccomp_op),
	FLD_END
};
static const spec_field seccomp_rule_fields[] = {
	FLD_N("names", F_STRV, spec_seccomp_rule, names, n_names, .flags = SF_REQUIRED),
	FLD("action", F_FN, spec_seccomp_rule, action, .flags = SF_REQUIRED, .fn = p_seccomp_action),
	FLD("errnoRet", F_OU64, spec_seccomp_rule, errno_ret, .lo = 0, .hi = UINT32_MAX),
	FLD_ARR("args", spec_seccomp_rule, args, n_args, spec_seccomp_arg, .sub = seccomp_arg_fields),
	FLD_END
};

#define S(m) oci_spec, linux.seccomp.m
static const spec_field seccomp_fields[] = {
	FLD("defaultAction", F_FN, S(default_action), .flags = SF_REQUIRED, .fn = p_seccomp_action),
	FLD("defaultErrnoRet", F_OU64, S(default_errno_ret), .lo = 0, .hi = UINT32_MAX),
	FLD("architectures", F_FN, S(arches), .fn = p_seccomp_arches),
	FLD("flags", F_FN, S(flags), .fn = p_seccomp_flags),
	FLD("listenerPath", F_STR, S(listener_path)),
	FLD("listenerMetadata", F_STR, S(listener_metadata)),
	FLD_ARR("syscalls", S(rules), linux.seccomp.n_rules, spec_seccomp_rule, .sub = seccomp_rule_fields,
		.fn = p_seccomp_rule),
	FLD_END
};
#undef S

static int p_seccomp(spec_ctx *c, json_t *v, void *t)
{
	spec_seccomp *sc = t;
	sc->present = true;
	if (sc->default_errno_ret.has && !action_takes_errno(sc->default_action)) {
		spec_push_key(c, "defaultErrnoRet");
		return spec_err(c, "only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE");
	}
	if (sc->default_action == SCMP_ACT_NOTIFY) {
		spec_push_key(c, "defaultAction");
		return spec_err(c, "SCMP_ACT_NOTIFY cannot be the default action");
	}
	/* Without a listener socket, notified syscalls would block forever. */
	for (size_t i = 0; i < sc->n_rules; i++)
		if (sc->rules[i].action == SCMP_ACT_NOTIFY && !sc->listener_path) {
			spec_push_key(c, "listenerPath");
			return spec_err(c, "required when SCMP_ACT_NOTIFY is used (syscalls[%zu])", i);
		}
	return 0;
}

/* ---- linux ---- */

#define L(m) oci_spec, linux.m
static const spec_field linux_fields[] = {
	FLD("namespaces", F_FN, L(ns), .fn = p_namespaces),
	FLD_ARR("uidMappings", L(uid_mappings), linux.n_uid_mappings, spec_idmap, .sub = spec_idmap_fields),
	FLD_ARR("gidMappings", L(gid_mappings), linux.n_gid_mappings, spec_idmap, .sub = spec_idmap_fields),
	FLD("timeOffsets", F_FN, L(time_offsets), .fn = p_time_offsets),
	FLD_ARR("devices", L(devices), linux.n_devices, spec_device, .sub = device_fields, .fn = p_device),
	FLD("cgroupsPath", F_STR, L(cgroups_path)),
	FLD("resources", F_OBJ, L(resources), .sub = resources_fields, .fn = spec_mark_present),
	FLD("rootfsPropagation", F_FN, L(rootfs_propagation), .fn = p_rootfs_propagation),
	FLD("seccomp", F_OBJ, L(seccomp), .sub = seccomp_fields, .fn = p_seccomp),
	FLD_N("sysctl", F_MAP, L(sysctl), linux.n_sysctl),
	FLD_N("maskedPaths", F_STRV, L(masked_paths), linux.n_masked_paths),
	FLD_N("readonlyPaths", F_STRV, L(readonly_paths), linux.n_readonly_paths),
	FLD("mountLabel", F_STR, L(mount_label)),
	FLD("intelRdt", F_FN, L(intel_rdt), .fn = p_intel_rdt),
	FLD("personality", F_OBJ, L(personality), .sub = personality_fields, .fn = spec_mark_present),
	FLD_END
};
#undef L

int spec_parse_linux(spec_ctx *c, json_t *v, void *t)
{
	return spec_dispatch(c, v, linux_fields, c->spec);
}

void spec_resources_free(spec_resources *r)
{
	if (!r)
		return;
	free(r->devices);
	free(r->cpu.cpus);
	free(r->cpu.mems);
	free(r->blkio.weight_device);
	for (int i = 0; i < 4; i++)
		free(r->blkio.throttle[i]);
	for (size_t i = 0; r->hugepages && i < r->n_hugepages; i++)
		free(r->hugepages[i].page_size);
	free(r->hugepages);
	for (size_t i = 0; r->network.priorities && i < r->network.n_priorities; i++)
		free(r->network.priorities[i].name);
	free(r->network.priorities);
	for (size_t i = 0; r->rdma && i < r->n_rdma; i++)
		free(r->rdma[i].device);
	free(r->rdma);
	spec_kv_free(r->unified, r->n_unified);
	memset(r, 0, sizeof *r);
}

void spec_free_linux(oci_spec *s)
{
	for (int i = 0; i < NS__MAX; i++)
		free(s->linux.ns[i].path);
	free(s->linux.uid_mappings);
	free(s->linux.gid_mappings);
	for (size_t i = 0; s->linux.devices && i < s->linux.n_devices; i++)
		free(s->linux.devices[i].path);
	free(s->linux.devices);
	free(s->linux.cgroups_path);

	spec_resources_free(&s->linux.resources);

	spec_seccomp *sc = &s->linux.seccomp;
	free(sc->arches);
	free(sc->listener_path);
	free(sc->listener_metadata);
	for (size_t i = 0; sc->rules && i < sc->n_rules; i++) {
		spec_strv_free(sc->rules[i].names);
		free(sc->rules[i].args);
	}
	free(sc->rules);

	spec_kv_free(s->linux.sysctl, s->linux.n_sysctl);
	spec_strv_free(s->linux.masked_paths);
	spec_strv_free(s->linux.readonly_paths);
	free(s->linux.mount_label);
}
