/* Unit tests for the config.json parser, mount options, name tables and the
 * default spec template. JSON below uses ' for " (converted by q()). */
#include <limits.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spec/spec.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "unit.h"

static char *q(const char *s)
{
	char *r = strdup(s);
	for (char *p = r; *p; p++)
		if (*p == '\'')
			*p = '"';
	return r;
}

static int parse(const char *json_q, oci_spec **ret)
{
	char *j = q(json_q);
	err_clear();
	int r = spec_parse(j, strlen(j), "config.json", ret);
	free(j);
	return r;
}

/* A minimal valid config around `extra` (which starts with ',' if any). */
static int parse_min(const char *extra, oci_spec **ret)
{
	char buf[8192];
	snprintf(buf, sizeof buf, "{'ociVersion': '1.1.0', 'root': {'path': 'rootfs'}%s}", extra);
	return parse(buf, ret);
}

/* Expect parse_min(extra) to fail with exactly `want`. */
static void expect_err(const char *extra, const char *want, int line)
{
	oci_spec *s = NULL;
	int r = parse_min(extra, &s);
	if (r >= 0) {
		unit_fail++;
		fprintf(stderr, "test-spec.c:%d: parse of %s succeeded, want error \"%s\"\n", line, extra, want);
		spec_free(s);
		return;
	}
	CHECK_INT(r, -EINVAL);
	if (strcmp(err_msg(), want) == 0)
		unit_pass++;
	else {
		unit_fail++;
		fprintf(stderr, "test-spec.c:%d: got \"%s\", want \"%s\"\n", line, err_msg(), want);
	}
}
#define EXPECT_ERR(extra, want) expect_err(extra, want, __LINE__)

static const spec_mount *find_mount(const oci_spec *s, const char *dest)
{
	for (size_t i = 0; i < s->n_mounts; i++)
		if (strcmp(s->mounts[i].destination, dest) == 0)
			return &s->mounts[i];
	return NULL;
}

#define BIT(c) (UINT64_C(1) << (c))

static void test_default(void)
{
	char *j = spec_default_json(false);
	oci_spec *s = NULL;
	CHECK(j != NULL);
	CHECK_INT(spec_parse(j, strlen(j), "config.json", &s), 0);
	free(j);
	if (!s)
		return;
	CHECK_STR(s->oci_version, "1.1.0");
	CHECK(s->process.present);
	CHECK(s->process.terminal);
	CHECK_INT(s->process.n_args, 1);
	CHECK_STR(s->process.args[0], "sh");
	CHECK(s->process.args[1] == NULL);
	CHECK_INT(s->process.n_env, 2);
	CHECK_STR(s->process.cwd, "/");
	CHECK_INT(s->process.uid, 0);
	uint64_t caps = BIT(CAP_AUDIT_WRITE) | BIT(CAP_KILL) | BIT(CAP_NET_BIND_SERVICE);
	CHECK(s->process.caps.present);
	CHECK_INT(s->process.caps.bounding, caps);
	CHECK_INT(s->process.caps.effective, caps);
	CHECK_INT(s->process.caps.permitted, caps);
	CHECK_INT(s->process.caps.inheritable, 0);
	CHECK_INT(s->process.n_rlimits, 1);
	CHECK_INT(s->process.rlimits[0].resource, RLIMIT_NOFILE);
	CHECK_INT(s->process.rlimits[0].soft, 1024);
	CHECK_INT(s->process.rlimits[0].hard, 1024);
	CHECK(s->process.no_new_privileges);
	CHECK_STR(s->root_path, "rootfs");
	CHECK(s->root_readonly);
	CHECK_INT(s->n_mounts, 7);
	const spec_mount *dev = find_mount(s, "/dev");
	CHECK(dev && dev->opts.flags == (MS_NOSUID | MS_STRICTATIME));
	CHECK_STR(dev ? dev->opts.data : NULL, "mode=755,size=65536k");
	const spec_mount *sys = find_mount(s, "/sys");
	CHECK(sys && sys->opts.flags == (MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY) && !sys->opts.data);
	CHECK(find_mount(s, "/sys/fs/cgroup") != NULL);
	CHECK(find_mount(s, "/dev/mqueue") != NULL);
	const spec_mount *pts = find_mount(s, "/dev/pts");
	CHECK_STR(pts ? pts->opts.data : NULL, "newinstance,ptmxmode=0666,mode=0620,gid=5");
	for (int i = 0; i < NS__MAX; i++)
		CHECK_INT(s->linux.ns[i].present, i != NS_USER && i != NS_TIME);
	CHECK_INT(s->linux.n_masked_paths, 10);
	CHECK_INT(s->linux.n_readonly_paths, 5);
	CHECK(s->linux.resources.present);
	CHECK_INT(s->linux.resources.n_devices, 1);
	if (s->linux.resources.n_devices) {
		const spec_dev_rule *d = &s->linux.resources.devices[0];
		CHECK(!d->allow);
		CHECK_INT(d->type, 'a');
		CHECK_INT(d->major, -1);
		CHECK_INT(d->minor, -1);
		CHECK_STR(d->access, "rwm");
	}
	spec_free(s);

	j = spec_default_json(true);
	s = NULL;
	CHECK(j != NULL);
	CHECK_INT(spec_parse(j, strlen(j), "config.json", &s), 0);
	free(j);
	if (!s)
		return;
	CHECK(s->linux.ns[NS_USER].present);
	CHECK(!s->linux.ns[NS_NETWORK].present);
	CHECK(s->linux.ns[NS_PID].present);
	CHECK_INT(s->linux.n_uid_mappings, 1);
	CHECK_INT(s->linux.n_gid_mappings, 1);
	if (s->linux.n_uid_mappings && s->linux.n_gid_mappings) {
		CHECK_INT(s->linux.uid_mappings[0].container_id, 0);
		CHECK_INT(s->linux.uid_mappings[0].host_id, getuid());
		CHECK_INT(s->linux.uid_mappings[0].size, 1);
		CHECK_INT(s->linux.gid_mappings[0].host_id, getgid());
	}
	sys = find_mount(s, "/sys");
	CHECK(sys && sys->opts.bind && sys->opts.rec && (sys->opts.flags & MS_RDONLY));
	CHECK_STR(sys ? sys->source : NULL, "/sys");
	CHECK(find_mount(s, "/sys/fs/cgroup") == NULL);
	pts = find_mount(s, "/dev/pts");
	CHECK_STR(pts ? pts->opts.data : NULL, "newinstance,ptmxmode=0666,mode=0620");
	CHECK(!s->linux.resources.present);
	spec_free(s);
}

static void test_errors(void)
{
	/* The examples from the parser's contract. */
	EXPECT_ERR(", 'process': {'cwd': '/'}", "config.json: process.args: must be a non-empty array of strings");
	EXPECT_ERR(", 'process': {'args': []}", "config.json: process.args: must be a non-empty array of strings");
	EXPECT_ERR(", 'process': {'args': 'sh'}", "config.json: process.args: must be a non-empty array of strings");
	EXPECT_ERR(", 'process': {'args': ['sh', 1]}", "config.json: process.args: must be a non-empty array of strings");
	EXPECT_ERR(", 'linux': {'resources': {'memory': {'limit': '1024'}}}",
		   "config.json: linux.resources.memory.limit: expected integer, got string");
	EXPECT_ERR(", 'process': {'args': ['sh'], 'rlimits': [{'type': 'RLIMIT_FOO', 'soft': 1, 'hard': 1}]}",
		   "config.json: process.rlimits[0].type: unknown rlimit \"RLIMIT_FOO\"");
	EXPECT_ERR(", 'process': {'args': ['sh'], 'capabilities': {'bounding': ['CAP_KILL', 'CAP_TEST']}}",
		   "config.json: process.capabilities.bounding[1]: unknown capability \"CAP_TEST\"");
	EXPECT_ERR(", 'linux': {'namespaces': [{'type': 'pid'}, {'type': 'network'}, {'type': 'pidd'}]}",
		   "config.json: linux.namespaces[2].type: unknown namespace \"pidd\"");
	EXPECT_ERR(", 'linux': {'namespaces': [{'type': 'pid'}, {'type': 'pid'}]}",
		   "config.json: linux.namespaces[1].type: duplicate namespace \"pid\"");

	/* Required properties and top level. */
	EXPECT_ERR(", 'ociVersion': null", "config.json: ociVersion: required property is missing");
	EXPECT_ERR(", 'ociVersion': ''", "config.json: ociVersion: must not be empty");
	EXPECT_ERR(", 'root': {}", "config.json: root.path: required property is missing");
	EXPECT_ERR(", 'root': 'rootfs'", "config.json: root: expected object, got string");

	/* Types and ranges. */
	EXPECT_ERR(", 'process': {'args': ['sh'], 'user': {'uid': 4294967296}}",
		   "config.json: process.user.uid: must be at most 2147483647, got 4294967296");
	/* (u32)-1 is "unchanged" to setresuid: the process would stay root. */
	EXPECT_ERR(", 'process': {'args': ['sh'], 'user': {'uid': 4294967295}}",
		   "config.json: process.user.uid: must be at most 2147483647, got 4294967295");
	EXPECT_ERR(", 'process': {'args': ['sh'], 'user': {'gid': 4294967295}}",
		   "config.json: process.user.gid: must be at most 2147483647, got 4294967295");
	EXPECT_ERR(", 'process': {'args': ['sh'], 'user': {'additionalGids': [1, 2147483648]}}",
		   "config.json: process.user.additionalGids[1]: must be at most 2147483647, got 2147483648");
	EXPECT_ERR(", 'process': {'args': ['sh'], 'user': {'uid': -1}}",
		   "config.json: process.user.uid: must be at least 0, got -1");
	EXPECT_ERR(", 'process': {'args': ['sh'], 'user': {'additionalGids': [5, 'x']}}",
		   "config.json: process.user.additionalGids[1]: expected integer, got string");
	EXPECT_ERR(", 'process': {'args': ['sh'], 'terminal': 'yes'}",
		   "config.json: process.terminal: expected boolean, got string");
	EXPECT_ERR(", 'linux': {'resources': {'cpu': {'shares': 1.5}}}",
		   "config.json: linux.resources.cpu.shares: expected integer, got real number");
	EXPECT_ERR(", 'linux': {'resources': {'cpu': {'shares': -2}}}",
		   "config.json: linux.resources.cpu.shares: must be at least 0, got -2");
	EXPECT_ERR(", 'process': {'args': ['sh'], 'oomScoreAdj': 1001}",
		   "config.json: process.oomScoreAdj: must be at most 1000, got 1001");
	EXPECT_ERR(", 'process': {'args': ['sh'], 'cwd': 'tmp'}",
		   "config.json: process.cwd: must be an absolute path, got \"tmp\"");
	EXPECT_ERR(", 'process': {'args': ['sh'], 'env': ['A=1', 'B']}",
		   "config.json: process.env[1]: invalid environment variable \"B\": missing '='");
	EXPECT_ERR(", 'process': {'args': ['sh'], 'rlimits': [{'type': 'RLIMIT_NOFILE', 'soft': 1, 'hard': 1},"
		   " {'type': 'RLIMIT_NOFILE', 'soft': 2, 'hard': 2}]}",
		   "config.json: process.rlimits[1].type: duplicate rlimit \"RLIMIT_NOFILE\"");
	EXPECT_ERR(", 'process': {'args': ['sh'], 'rlimits': [{'type': 'RLIMIT_CORE', 'hard': 1}]}",
		   "config.json: process.rlimits[0].soft: required property is missing");
	EXPECT_ERR(", 'process': {'args': ['sh'], 'ioPriority': {'class': 'IOPRIO_CLASS_FOO'}}",
		   "config.json: process.ioPriority.class: unknown ioPriority class \"IOPRIO_CLASS_FOO\"");
	EXPECT_ERR(", 'process': {'args': ['sh'], 'scheduler': {'policy': 'SCHED_OTHER', 'flags': ['SCHED_FLAG_X']}}",
		   "config.json: process.scheduler.flags[0]: unknown scheduler flag \"SCHED_FLAG_X\"");
	EXPECT_ERR(", 'mounts': [{'destination': '/a', 'options': ['rnoatime']}]",
		   "config.json: mounts[0].options: mount option \"rnoatime\" is not supported");
	EXPECT_ERR(", 'mounts': [{'type': 'tmpfs'}]", "config.json: mounts[0].destination: required property is missing");
	/* Relative destinations are refused, not taken as relative to "/". */
	EXPECT_ERR(", 'mounts': [{'destination': '/a', 'type': 'tmpfs'}, {'destination': 'mnt/x', 'type': 'tmpfs'}]",
		   "config.json: mounts[1].destination: must be an absolute path, got \"mnt/x\"");
	EXPECT_ERR(", 'mounts': [{'destination': '../x', 'type': 'tmpfs'}]",
		   "config.json: mounts[0].destination: must be an absolute path, got \"../x\"");
	EXPECT_ERR(", 'mounts': [{'destination': '', 'type': 'tmpfs'}]",
		   "config.json: mounts[0].destination: must be an absolute path, got \"\"");
	EXPECT_ERR(", 'hooks': {'prestart': [{'path': 'bin/true'}]}",
		   "config.json: hooks.prestart[0].path: must be an absolute path, got \"bin/true\"");
	EXPECT_ERR(", 'hooks': {'poststop': [{'path': '/bin/true', 'timeout': 0}]}",
		   "config.json: hooks.poststop[0].timeout: must be at least 1, got 0");
	EXPECT_ERR(", 'annotations': {'a': 'b', 'c.d': 1}", "config.json: annotations[\"c.d\"]: expected string, got integer");

	/* linux.* */
	EXPECT_ERR(", 'linux': {'namespaces': [{'type': 'net', 'path': '/proc/1/ns/net'}]}",
		   "config.json: linux.namespaces[0].type: unknown namespace \"net\"");
	EXPECT_ERR(", 'linux': {'namespaces': [{'type': 'network', 'path': 'ns/net'}]}",
		   "config.json: linux.namespaces[0].path: must be an absolute path, got \"ns/net\"");
	EXPECT_ERR(", 'linux': {'devices': [{'type': 'c', 'path': '/dev/x', 'major': 1}]}",
		   "config.json: linux.devices[0].minor: required for device type \"c\"");
	EXPECT_ERR(", 'linux': {'devices': [{'type': 'x', 'path': '/dev/x'}]}",
		   "config.json: linux.devices[0].type: unknown device type \"x\"");
	/* Device nodes only under /dev. */
	static const char *const bad_dev[] = { "/etc/hostname", "/dev", "/dev/", "/devil", "/dev/../etc/x",
						"/dev/a/../../etc", "/dev/./null", "/dev/null/", "/dev/..", "/dev/net/." };
	for (size_t i = 0; i < ARRAY_SIZE(bad_dev); i++) {
		char extra[256], want[256];
		snprintf(extra, sizeof extra,
			 ", 'linux': {'devices': [{'type': 'c', 'path': '/dev/ok', 'major': 1, 'minor': 3},"
			 " {'type': 'c', 'path': '%s', 'major': 1, 'minor': 3}]}", bad_dev[i]);
		snprintf(want, sizeof want,
			 "config.json: linux.devices[1].path: must be a path under /dev (no \".\" or \"..\"), got \"%s\"",
			 bad_dev[i]);
		EXPECT_ERR(extra, want);
	}
	static const char *const good_dev[] = { "/dev/net/tun", "/dev//x", "/dev/.hidden", "/dev/..x", "/dev/x.." };
	for (size_t i = 0; i < ARRAY_SIZE(good_dev); i++) {
		char extra[256];
		snprintf(extra, sizeof extra, ", 'linux': {'devices': [{'type': 'c', 'path': '%s', 'major': 1, 'minor': 3}]}",
			 good_dev[i]);
		oci_spec *s = NULL;
		if (parse_min(extra, &s) < 0) {
			unit_fail++;
			fprintf(stderr, "test-spec.c:%d: device path %s refused: %s\n", __LINE__, good_dev[i], err_msg());
		} else {
			unit_pass++;
			CHECK_STR(s->linux.devices[0].path, good_dev[i]);
		}
		spec_free(s);
	}
	EXPECT_ERR(", 'linux': {'devices': [{'type': 'p', 'path': 'dev/fifo'}]}",
		   "config.json: linux.devices[0].path: must be an absolute path, got \"dev/fifo\"");
	EXPECT_ERR(", 'linux': {'resources': {'devices': [{'allow': true, 'access': 'rwx'}]}}",
		   "config.json: linux.resources.devices[0].access: invalid access \"rwx\": must be a combination of r, w and m");
	EXPECT_ERR(", 'linux': {'resources': {'devices': [{'access': 'r'}]}}",
		   "config.json: linux.resources.devices[0].allow: required property is missing");
	EXPECT_ERR(", 'linux': {'rootfsPropagation': 'rprivat'}",
		   "config.json: linux.rootfsPropagation: unknown propagation \"rprivat\"");
	EXPECT_ERR(", 'linux': {'timeOffsets': {'realtime': {'secs': 1}}}",
		   "config.json: linux.timeOffsets: unknown clock \"realtime\" (expected \"monotonic\" or \"boottime\")");
	EXPECT_ERR(", 'linux': {'seccomp': {'defaultAction': 'SCMP_ACT_DENY'}}",
		   "config.json: linux.seccomp.defaultAction: unknown seccomp action \"SCMP_ACT_DENY\"");
	EXPECT_ERR(", 'linux': {'seccomp': {'defaultAction': 'SCMP_ACT_ALLOW', 'architectures': ['SCMP_ARCH_VAX']}}",
		   "config.json: linux.seccomp.architectures[0]: unknown architecture \"SCMP_ARCH_VAX\"");
	EXPECT_ERR(", 'linux': {'seccomp': {'defaultAction': 'SCMP_ACT_ALLOW', 'flags': ['SECCOMP_FILTER_FLAG_X']}}",
		   "config.json: linux.seccomp.flags[0]: unknown seccomp flag \"SECCOMP_FILTER_FLAG_X\"");
	EXPECT_ERR(", 'linux': {'seccomp': {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['read'],"
		   " 'action': 'SCMP_ACT_ERRNO', 'args': [{'index': 6, 'value': 1, 'op': 'SCMP_CMP_EQ'}]}]}}",
		   "config.json: linux.seccomp.syscalls[0].args[0].index: must be at most 5, got 6");
	EXPECT_ERR(", 'linux': {'seccomp': {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['read'],"
		   " 'action': 'SCMP_ACT_ERRNO', 'args': [{'index': 0, 'value': 1, 'op': 'SCMP_CMP_XX'}]}]}}",
		   "config.json: linux.seccomp.syscalls[0].args[0].op: unknown seccomp operator \"SCMP_CMP_XX\"");
	EXPECT_ERR(", 'linux': {'seccomp': {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['read'],"
		   " 'action': 'SCMP_ACT_ALLOW', 'errnoRet': 1}]}}",
		   "config.json: linux.seccomp.syscalls[0].errnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE");
	EXPECT_ERR(", 'linux': {'seccomp': {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['read'],"
		   " 'action': 'SCMP_ACT_NOTIFY'}]}}",
		   "config.json: linux.seccomp.listenerPath: required when SCMP_ACT_NOTIFY is used (syscalls[0])");
	EXPECT_ERR(", 'linux': {'personality': {'domain': 'LINUX64'}}",
		   "config.json: linux.personality.domain: unknown personality domain \"LINUX64\"");
	EXPECT_ERR(", 'linux': {'intelRdt': true}", "config.json: linux.intelRdt: expected object, got boolean");
	EXPECT_ERR(", 'linux': {'sysctl': {'net.ipv4.ip_forward': 1}}",
		   "config.json: linux.sysctl[\"net.ipv4.ip_forward\"]: expected string, got integer");
}

/* Integers above INT64_MAX (jansson's limit) for uint64 fields. */
static void test_big_ints(void)
{
	oci_spec *s = NULL;
	CHECK_INT(parse_min(", 'process': {'args': ['sh'], 'rlimits': [{'type': 'RLIMIT_MEMLOCK',"
			    " 'soft': 18446744073709551615, 'hard': 18446744073709551615}, {'type': 'RLIMIT_CORE',"
			    " 'soft': 9223372036854775807, 'hard': 9223372036854775808}]},"
			    " 'linux': {'seccomp': {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['x'],"
			    " 'action': 'SCMP_ACT_ALLOW', 'args': [{'index': 0, 'value': 18446744073709551615,"
			    " 'valueTwo': 12345678901234567890, 'op': 'SCMP_CMP_MASKED_EQ'}]}]}}", &s), 0);
	if (s) {
		CHECK(s->process.rlimits[0].soft == UINT64_MAX && s->process.rlimits[0].hard == UINT64_MAX);
		CHECK(s->process.rlimits[1].soft == INT64_MAX);
		CHECK(s->process.rlimits[1].hard == UINT64_C(9223372036854775808));
		CHECK(s->linux.seccomp.rules[0].args[0].value == UINT64_MAX);
		CHECK(s->linux.seccomp.rules[0].args[0].value_two == UINT64_C(12345678901234567890));
		spec_free(s);
	}
	EXPECT_ERR(", 'process': {'args': ['sh'], 'rlimits': [{'type': 'RLIMIT_CORE', 'soft': 0, 'hard': 18446744073709551616}]}",
		   "config.json: process.rlimits[0].hard: must be at most 18446744073709551615, got 18446744073709551616");
	EXPECT_ERR(", 'process': {'args': ['sh'], 'user': {'uid': 99999999999999999999}}",
		   "config.json: process.user.uid: must be at most 2147483647, got 99999999999999999999");
	EXPECT_ERR(", 'linux': {'resources': {'memory': {'limit': 9223372036854775808}}}",
		   "config.json: linux.resources.memory.limit: must be at most 9223372036854775807, got 9223372036854775808");
	EXPECT_ERR(", 'hostname': 18446744073709551615", "config.json: hostname: expected string, got integer");
	/* Digits inside strings are not numbers. */
	CHECK_INT(parse_min(", 'hostname': '18446744073709551615 99999999999999999999'", &s), 0);
	if (s) {
		CHECK_STR(s->hostname, "18446744073709551615 99999999999999999999");
		spec_free(s);
	}
	/* A text with its own \u0000 is left to jansson, which rejects it. */
	CHECK_INT(parse_min(", 'hostname': 'a\\u0000b', 'x': 18446744073709551615", &s), -EINVAL);
	CHECK_CONTAINS(err_msg(), "config.json:1:");
	CHECK_INT(parse_min(", 'hostname': 'a\\u0000b'", &s), -EINVAL);
	CHECK_CONTAINS(err_msg(), "\\u0000 is not allowed");
	CHECK_INT(parse_min(", 'x': -18446744073709551615", &s), -EINVAL);
	CHECK_CONTAINS(err_msg(), "too big negative integer");
}

static void test_syntax(void)
{
	oci_spec *s = NULL;
	err_clear();
	const char *bad = "{\n  \"ociVersion\": \"1.1.0\",\n  \"root\": {\"path\": \"rootfs\",}\n}\n";
	CHECK_INT(spec_parse(bad, strlen(bad), "config.json", &s), -EINVAL);
	CHECK_STR(err_msg(), "config.json:3:29: syntax error: string or '}' expected near '}'");
	CHECK(s == NULL);

	CHECK_INT(spec_parse("", 0, "config.json", &s), -EINVAL);
	CHECK_CONTAINS(err_msg(), "config.json:1:0: syntax error: ");
	CHECK_INT(parse("[1, 2]", &s), -EINVAL);
	CHECK_STR(err_msg(), "config.json: expected an object at the top level, got array");
	/* Not NUL-terminated: the length is what counts. */
	const char ok[] = "{\"ociVersion\": \"1\", \"root\": {\"path\": \"r\"}}garbage";
	CHECK_INT(spec_parse(ok, sizeof ok - 1 - 7, "config.json", &s), 0);
	spec_free(s);
}

static void test_mount_opts(void)
{
	char *o1[] = { "nosuid", "noexec", "nodev", "ro", "mode=755", "size=65536k", NULL };
	spec_mount_opts m;
	CHECK_INT(spec_mount_opts_parse(o1, &m), 0);
	CHECK_INT(m.flags, MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY);
	CHECK_INT(m.clear, 0);
	CHECK_INT(m.propagation, 0);
	CHECK(!m.bind && !m.rec && !m.recursive_ro);
	CHECK_STR(m.data, "mode=755,size=65536k");
	free(m.data);

	char *o2[] = { "ro", "rw", "suid", "rbind", "rprivate", "shared", "rro", "idmap", NULL };
	CHECK_INT(spec_mount_opts_parse(o2, &m), 0);
	CHECK_INT(m.flags, MS_BIND | MS_REC);
	CHECK_INT(m.clear, MS_RDONLY | MS_NOSUID);
	CHECK_INT(m.propagation, MS_SHARED);
	CHECK(m.bind && m.rec && m.recursive_ro && m.idmap && !m.ridmap);
	CHECK(m.data == NULL);

	char *o3[] = { "bind", "noatime", "nodiratime", "relatime", "strictatime", "sync", "dirsync", "mand",
		       "remount", "ridmap", "", NULL };
	CHECK_INT(spec_mount_opts_parse(o3, &m), 0);
	CHECK_INT(m.flags, MS_BIND | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME | MS_SYNCHRONOUS |
				   MS_DIRSYNC | MS_MANDLOCK | MS_REMOUNT);
	CHECK(m.bind && !m.rec && m.ridmap);
	CHECK(m.data == NULL);

	char *o4[] = { "noexec", "exec", "nodev", "dev", "atime", "diratime", "norelatime", "nostrictatime", "async",
		       "nomand", NULL };
	CHECK_INT(spec_mount_opts_parse(o4, &m), 0);
	CHECK_INT(m.flags, 0);
	CHECK_INT(m.clear, MS_NOEXEC | MS_NODEV | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME |
				   MS_SYNCHRONOUS | MS_MANDLOCK);

	CHECK_INT(spec_mount_opts_parse(NULL, &m), 0);
	CHECK(m.flags == 0 && m.data == NULL && !m.bind);

	char *o5[] = { "mode=1777", "tmpcopyup", NULL };
	CHECK_INT(spec_mount_opts_parse(o5, &m), 0);
	CHECK(m.tmpcopyup);
	CHECK_STR(m.data, "mode=1777");
	free(m.data);
	char *o6[] = { "rnosuid", NULL };
	CHECK_INT(spec_mount_opts_parse(o6, &m), -EINVAL);
	CHECK_CONTAINS(err_msg(), "\"rnosuid\" is not supported");
}

static void test_names(void)
{
	CHECK_INT(spec_propagation_from_name("private"), MS_PRIVATE);
	CHECK_INT(spec_propagation_from_name("rprivate"), MS_PRIVATE | MS_REC);
	CHECK_INT(spec_propagation_from_name("shared"), MS_SHARED);
	CHECK_INT(spec_propagation_from_name("rshared"), MS_SHARED | MS_REC);
	CHECK_INT(spec_propagation_from_name("slave"), MS_SLAVE);
	CHECK_INT(spec_propagation_from_name("rslave"), MS_SLAVE | MS_REC);
	CHECK_INT(spec_propagation_from_name("unbindable"), MS_UNBINDABLE);
	CHECK_INT(spec_propagation_from_name("runbindable"), MS_UNBINDABLE | MS_REC);
	CHECK_INT(spec_propagation_from_name("ro"), 0);
	CHECK_INT(spec_propagation_from_name("rshare"), 0);
	CHECK_INT(spec_propagation_from_name(""), 0);

	CHECK_INT(spec_cap_from_name("CAP_CHOWN"), 0);
	CHECK_INT(spec_cap_from_name("CAP_SYS_ADMIN"), 21);
	CHECK_INT(spec_cap_from_name("CAP_AUDIT_READ"), 37);
	CHECK_INT(spec_cap_from_name("CAP_CHECKPOINT_RESTORE"), 40);
	CHECK_INT(spec_cap_from_name("CAP_TEST"), -1);
	CHECK_INT(spec_cap_from_name("cap_chown"), -1);
	CHECK_INT(spec_cap_from_name(""), -1);

	CHECK_INT(spec_rlimit_from_name("RLIMIT_AS"), RLIMIT_AS);
	CHECK_INT(spec_rlimit_from_name("RLIMIT_CPU"), RLIMIT_CPU);
	CHECK_INT(spec_rlimit_from_name("RLIMIT_NOFILE"), RLIMIT_NOFILE);
	CHECK_INT(spec_rlimit_from_name("RLIMIT_RTTIME"), RLIMIT_RTTIME);
	CHECK_INT(spec_rlimit_from_name("RLIMIT_STACK"), RLIMIT_STACK);
	CHECK_INT(spec_rlimit_from_name("RLIMIT_FOO"), -1);

	CHECK_STR(spec_ns_names[NS_NETWORK], "network");
	CHECK_STR(spec_ns_proc_names[NS_NETWORK], "net");
	CHECK_STR(spec_ns_proc_names[NS_MOUNT], "mnt");
	CHECK_INT(spec_ns_clone_flags[NS_USER], 0x10000000);
	CHECK_INT(spec_ns_clone_flags[NS_TIME], 0x80);
	CHECK_STR(spec_hook_names[HOOK_CREATE_RUNTIME], "createRuntime");
	CHECK_STR(spec_hook_names[HOOK_POSTSTOP], "poststop");
}

static const char full_json[] =
	"{'ociVersion': '1.1.0', 'unknownTopLevel': {'x': [1, 2]},"
	" 'process': {'terminal': false, 'consoleSize': {'height': 24, 'width': 80},"
	"  'user': {'uid': 1000, 'gid': 100, 'umask': 18, 'additionalGids': [5, 6, 2147483647], 'username': 'u'},"
	"  'args': ['/bin/sh', '-c', 'echo hi'], 'env': ['PATH=/bin', 'X=a=b'], 'cwd': '/work',"
	"  'capabilities': {'bounding': ['CAP_SYS_ADMIN', 'CAP_CHOWN', 'CAP_CHECKPOINT_RESTORE'],"
	"   'effective': ['CAP_CHOWN'], 'inheritable': [], 'permitted': ['CAP_CHOWN', 'CAP_KILL'], 'ambient': null},"
	"  'rlimits': [{'type': 'RLIMIT_NOFILE', 'soft': 512, 'hard': 1024}, {'type': 'RLIMIT_CORE', 'soft': 0, 'hard': 0}],"
	"  'noNewPrivileges': true, 'apparmorProfile': 'prof', 'selinuxLabel': 'lbl', 'oomScoreAdj': -500,"
	"  'ioPriority': {'class': 'IOPRIO_CLASS_BE', 'priority': 4},"
	"  'scheduler': {'policy': 'SCHED_DEADLINE', 'nice': -3, 'priority': 0,"
	"   'flags': ['SCHED_FLAG_RESET_ON_FORK', 'SCHED_FLAG_RECLAIM'], 'runtime': 10, 'deadline': 20, 'period': 30},"
	"  'execCPUAffinity': {'initial': '0-1', 'final': '2'}, 'someFutureField': true},"
	" 'root': {'path': '/var/rootfs', 'readonly': false},"
	" 'hostname': 'h', 'domainname': 'd',"
	" 'mounts': [{'destination': '/proc', 'type': 'proc', 'source': 'proc'},"
	"  {'destination': '/data', 'type': 'none', 'source': '/srv', 'options': ['rbind', 'rslave', 'ro'],"
	"   'uidMappings': [{'containerID': 0, 'hostID': 100000, 'size': 65536}],"
	"   'gidMappings': [{'containerID': 0, 'hostID': 200000, 'size': 10}]}],"
	" 'hooks': {'prestart': [{'path': '/bin/a'}],"
	"  'createRuntime': [{'path': '/bin/b', 'args': ['b', '1'], 'env': ['E=1'], 'timeout': 5}, {'path': '/bin/c'}],"
	"  'createContainer': [], 'startContainer': [{'path': '/bin/d'}], 'poststart': [{'path': '/bin/e'}],"
	"  'poststop': [{'path': '/bin/f'}]},"
	" 'annotations': {'org.example.a': '1', 'b': ''},"
	" 'linux': {'namespaces': [{'type': 'pid'}, {'type': 'network', 'path': '/var/run/netns/x'},"
	"   {'type': 'mount'}, {'type': 'ipc'}, {'type': 'uts'}, {'type': 'user'}, {'type': 'cgroup'}, {'type': 'time'}],"
	"  'uidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 1}, {'containerID': 1, 'hostID': 100000, 'size': 65535}],"
	"  'gidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 1}],"
	"  'timeOffsets': {'monotonic': {'secs': -10, 'nanosecs': 5}, 'boottime': {'secs': 86400}},"
	"  'devices': [{'type': 'c', 'path': '/dev/fuse', 'major': 10, 'minor': 229, 'fileMode': 438, 'uid': 0, 'gid': 0},"
	"   {'type': 'p', 'path': '/dev/fifo'}],"
	"  'cgroupsPath': '/isola/c1',"
	"  'resources': {"
	"   'devices': [{'allow': false, 'access': 'rwm'}, {'allow': true, 'type': 'c', 'major': 10, 'minor': 229, 'access': 'rw'},"
	"    {'allow': true, 'type': 'b', 'major': 8}],"
	"   'memory': {'limit': 536870912, 'reservation': 268435456, 'swap': -1, 'kernel': 1, 'kernelTCP': 2,"
	"    'swappiness': 60, 'disableOOMKiller': true, 'useHierarchy': false, 'checkBeforeUpdate': true},"
	"   'cpu': {'shares': 1024, 'quota': 50000, 'burst': 1000, 'period': 100000, 'realtimeRuntime': 950,"
	"    'realtimePeriod': 1000, 'cpus': '0-3', 'mems': '0', 'idle': 1},"
	"   'pids': {'limit': 100},"
	"   'blockIO': {'weight': 500, 'leafWeight': 300,"
	"    'weightDevice': [{'major': 8, 'minor': 0, 'weight': 600}, {'major': 8, 'minor': 16, 'leafWeight': 700}],"
	"    'throttleReadBpsDevice': [{'major': 8, 'minor': 0, 'rate': 1048576}],"
	"    'throttleWriteBpsDevice': [{'major': 8, 'minor': 0, 'rate': 2097152}],"
	"    'throttleReadIOPSDevice': [{'major': 8, 'minor': 0, 'rate': 100}],"
	"    'throttleWriteIOPSDevice': [{'major': 8, 'minor': 0, 'rate': 200}, {'major': 8, 'minor': 16, 'rate': 300}]},"
	"   'hugepageLimits': [{'pageSize': '2MB', 'limit': 209715200}],"
	"   'network': {'classID': 1048577, 'priorities': [{'name': 'eth0', 'priority': 500}, {'name': 'lo', 'priority': 1}]},"
	"   'rdma': {'mlx5_1': {'hcaHandles': 3, 'hcaObjects': 10000}},"
	"   'unified': {'io.weight': '100', 'memory.high': '1G'}},"
	"  'rootfsPropagation': 'rslave',"
	"  'seccomp': {'defaultAction': 'SCMP_ACT_ERRNO', 'defaultErrnoRet': 38,"
	"   'architectures': ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_AARCH64'],"
	"   'flags': ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'],"
	"   'listenerPath': '/run/notify.sock', 'listenerMetadata': 'meta',"
	"   'syscalls': [{'names': ['read', 'write'], 'action': 'SCMP_ACT_ALLOW'},"
	"    {'names': ['personality'], 'action': 'SCMP_ACT_ALLOW',"
	"     'args': [{'index': 0, 'value': 0, 'op': 'SCMP_CMP_EQ'}, {'index': 1, 'value': 255, 'valueTwo': 8, 'op': 'SCMP_CMP_MASKED_EQ'}]},"
	"    {'names': ['mkdir'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 1},"
	"    {'names': ['open'], 'action': 'SCMP_ACT_TRACE'},"
	"    {'names': ['kill'], 'action': 'SCMP_ACT_KILL_PROCESS'}, {'names': ['x'], 'action': 'SCMP_ACT_KILL'},"
	"    {'names': ['y'], 'action': 'SCMP_ACT_KILL_THREAD'}, {'names': ['z'], 'action': 'SCMP_ACT_TRAP'},"
	"    {'names': ['w'], 'action': 'SCMP_ACT_LOG'}, {'names': ['v'], 'action': 'SCMP_ACT_NOTIFY'}]},"
	"  'sysctl': {'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1000'},"
	"  'maskedPaths': ['/proc/kcore'], 'readonlyPaths': ['/proc/sys', '/proc/bus'],"
	"  'mountLabel': 'ml', 'intelRdt': {'closID': 'x'}, 'personality': {'domain': 'LINUX32', 'flags': []}}}";

static void test_full(void)
{
	oci_spec *s = NULL;
	CHECK_INT(parse(full_json, &s), 0);
	if (!s) {
		fprintf(stderr, "full config: %s\n", err_msg());
		return;
	}
	/* process */
	CHECK(s->process.present && !s->process.terminal);
	CHECK(s->process.console_height.has && s->process.console_height.v == 24);
	CHECK_INT(s->process.console_width.v, 80);
	CHECK_INT(s->process.uid, 1000);
	CHECK_INT(s->process.gid, 100);
	CHECK(s->process.umask.has && s->process.umask.v == 022);
	CHECK_INT(s->process.n_additional_gids, 3);
	CHECK_INT(s->process.additional_gids[2], 2147483647u);
	CHECK_STR(s->process.username, "u");
	CHECK_INT(s->process.n_args, 3);
	CHECK_STR(s->process.args[2], "echo hi");
	CHECK(s->process.args[3] == NULL);
	CHECK_INT(s->process.n_env, 2);
	CHECK_STR(s->process.env[1], "X=a=b");
	CHECK(s->process.env[2] == NULL);
	CHECK_STR(s->process.cwd, "/work");
	CHECK(s->process.caps.present);
	CHECK_INT(s->process.caps.bounding, BIT(CAP_SYS_ADMIN) | BIT(CAP_CHOWN) | BIT(40));
	CHECK_INT(s->process.caps.effective, BIT(CAP_CHOWN));
	CHECK_INT(s->process.caps.inheritable, 0);
	CHECK_INT(s->process.caps.permitted, BIT(CAP_CHOWN) | BIT(CAP_KILL));
	CHECK_INT(s->process.caps.ambient, 0);
	CHECK_INT(s->process.n_rlimits, 2);
	CHECK_INT(s->process.rlimits[0].resource, RLIMIT_NOFILE);
	CHECK_INT(s->process.rlimits[0].soft, 512);
	CHECK_INT(s->process.rlimits[0].hard, 1024);
	CHECK_INT(s->process.rlimits[1].resource, RLIMIT_CORE);
	CHECK(s->process.no_new_privileges);
	CHECK_STR(s->process.apparmor_profile, "prof");
	CHECK_STR(s->process.selinux_label, "lbl");
	CHECK(s->process.oom_score_adj.has && s->process.oom_score_adj.v == -500);
	CHECK(s->process.io_priority.has);
	CHECK_INT(s->process.io_priority.klass, 2);
	CHECK_INT(s->process.io_priority.priority, 4);
	CHECK(s->process.scheduler.has);
	CHECK_INT(s->process.scheduler.policy, 6);
	CHECK_INT(s->process.scheduler.nice, -3);
	CHECK_INT(s->process.scheduler.flags, 3);
	CHECK_INT(s->process.scheduler.runtime, 10);
	CHECK_INT(s->process.scheduler.deadline, 20);
	CHECK_INT(s->process.scheduler.period, 30);
	CHECK_STR(s->process.cpu_affinity_initial, "0-1");
	CHECK_STR(s->process.cpu_affinity_final, "2");

	/* root, names, mounts */
	CHECK_STR(s->root_path, "/var/rootfs");
	CHECK(!s->root_readonly);
	CHECK_STR(s->hostname, "h");
	CHECK_STR(s->domainname, "d");
	CHECK_INT(s->n_mounts, 2);
	CHECK_STR(s->mounts[0].type, "proc");
	CHECK(s->mounts[0].options == NULL && s->mounts[0].opts.flags == 0);
	const spec_mount *m = &s->mounts[1];
	CHECK_STR(m->destination, "/data");
	CHECK_STR(m->source, "/srv");
	CHECK_STR(m->options[2], "ro");
	CHECK(m->opts.bind && m->opts.rec);
	CHECK_INT(m->opts.flags, MS_BIND | MS_REC | MS_RDONLY);
	CHECK_INT(m->opts.propagation, MS_SLAVE | MS_REC);
	CHECK_INT(m->n_uid_mappings, 1);
	CHECK_INT(m->uid_mappings[0].host_id, 100000);
	CHECK_INT(m->uid_mappings[0].size, 65536);
	CHECK_INT(m->n_gid_mappings, 1);
	CHECK_INT(m->gid_mappings[0].host_id, 200000);

	/* hooks, annotations */
	CHECK_INT(s->hooks[HOOK_PRESTART].n, 1);
	CHECK_STR(s->hooks[HOOK_PRESTART].v[0].path, "/bin/a");
	CHECK(!s->hooks[HOOK_PRESTART].v[0].timeout.has);
	CHECK_INT(s->hooks[HOOK_CREATE_RUNTIME].n, 2);
	const spec_hook *h = &s->hooks[HOOK_CREATE_RUNTIME].v[0];
	CHECK_STR(h->args[1], "1");
	CHECK(h->args[2] == NULL);
	CHECK_STR(h->env[0], "E=1");
	CHECK(h->timeout.has && h->timeout.v == 5);
	CHECK_INT(s->hooks[HOOK_CREATE_CONTAINER].n, 0);
	CHECK_STR(s->hooks[HOOK_START_CONTAINER].v[0].path, "/bin/d");
	CHECK_STR(s->hooks[HOOK_POSTSTART].v[0].path, "/bin/e");
	CHECK_STR(s->hooks[HOOK_POSTSTOP].v[0].path, "/bin/f");
	CHECK_INT(s->n_annotations, 2);
	CHECK_STR(s->annotations[0].key, "org.example.a");
	CHECK_STR(s->annotations[0].value, "1");
	CHECK_STR(s->annotations[1].value, "");

	/* linux */
	for (int i = 0; i < NS__MAX; i++)
		CHECK(s->linux.ns[i].present);
	CHECK_STR(s->linux.ns[NS_NETWORK].path, "/var/run/netns/x");
	CHECK(s->linux.ns[NS_PID].path == NULL);
	CHECK_INT(s->linux.n_uid_mappings, 2);
	CHECK_INT(s->linux.uid_mappings[1].container_id, 1);
	CHECK_INT(s->linux.uid_mappings[1].size, 65535);
	CHECK_INT(s->linux.n_gid_mappings, 1);
	CHECK(s->linux.time_offsets[0].has && s->linux.time_offsets[0].secs == -10);
	CHECK_INT(s->linux.time_offsets[0].nanosecs, 5);
	CHECK(s->linux.time_offsets[1].has && s->linux.time_offsets[1].secs == 86400);
	CHECK_INT(s->linux.n_devices, 2);
	CHECK_INT(s->linux.devices[0].type, 'c');
	CHECK_STR(s->linux.devices[0].path, "/dev/fuse");
	CHECK_INT(s->linux.devices[0].major, 10);
	CHECK_INT(s->linux.devices[0].minor, 229);
	CHECK(s->linux.devices[0].file_mode.has && s->linux.devices[0].file_mode.v == 0666);
	CHECK(s->linux.devices[0].uid.has && s->linux.devices[0].gid.has);
	CHECK_INT(s->linux.devices[1].type, 'p');
	CHECK(!s->linux.devices[1].file_mode.has);
	CHECK_STR(s->linux.cgroups_path, "/isola/c1");

	const spec_resources *r = &s->linux.resources;
	CHECK(r->present);
	CHECK_INT(r->n_devices, 3);
	CHECK(!r->devices[0].allow && r->devices[0].type == 'a' && r->devices[0].major == -1);
	CHECK(r->devices[1].allow && r->devices[1].type == 'c' && r->devices[1].major == 10 && r->devices[1].minor == 229);
	CHECK_STR(r->devices[1].access, "rw");
	CHECK(r->devices[2].type == 'b' && r->devices[2].major == 8 && r->devices[2].minor == -1);
	CHECK_STR(r->devices[2].access, "rwm");
	CHECK(r->memory.limit.has && r->memory.limit.v == 536870912);
	CHECK_INT(r->memory.reservation.v, 268435456);
	CHECK(r->memory.swap.has && r->memory.swap.v == -1);
	CHECK_INT(r->memory.kernel.v, 1);
	CHECK_INT(r->memory.kernel_tcp.v, 2);
	CHECK(r->memory.swappiness.has && r->memory.swappiness.v == 60);
	CHECK(r->memory.disable_oom_killer.has && r->memory.disable_oom_killer.v);
	CHECK(r->memory.use_hierarchy.has && !r->memory.use_hierarchy.v);
	CHECK(r->memory.check_before_update.has && r->memory.check_before_update.v);
	CHECK_INT(r->cpu.shares.v, 1024);
	CHECK_INT(r->cpu.quota.v, 50000);
	CHECK_INT(r->cpu.burst.v, 1000);
	CHECK_INT(r->cpu.period.v, 100000);
	CHECK_INT(r->cpu.realtime_runtime.v, 950);
	CHECK_INT(r->cpu.realtime_period.v, 1000);
	CHECK_STR(r->cpu.cpus, "0-3");
	CHECK_STR(r->cpu.mems, "0");
	CHECK(r->cpu.idle.has && r->cpu.idle.v == 1);
	CHECK(r->pids.limit.has && r->pids.limit.v == 100);
	CHECK_INT(r->blkio.weight.v, 500);
	CHECK_INT(r->blkio.leaf_weight.v, 300);
	CHECK_INT(r->blkio.n_weight_device, 2);
	CHECK(r->blkio.weight_device[0].weight.has && r->blkio.weight_device[0].weight.v == 600);
	CHECK(!r->blkio.weight_device[0].leaf_weight.has);
	CHECK_INT(r->blkio.weight_device[1].minor, 16);
	CHECK_INT(r->blkio.weight_device[1].leaf_weight.v, 700);
	CHECK_INT(r->blkio.n_throttle[THROTTLE_READ_BPS], 1);
	CHECK_INT(r->blkio.throttle[THROTTLE_READ_BPS][0].rate, 1048576);
	CHECK_INT(r->blkio.throttle[THROTTLE_WRITE_BPS][0].rate, 2097152);
	CHECK_INT(r->blkio.throttle[THROTTLE_READ_IOPS][0].rate, 100);
	CHECK_INT(r->blkio.n_throttle[THROTTLE_WRITE_IOPS], 2);
	CHECK_INT(r->blkio.throttle[THROTTLE_WRITE_IOPS][1].rate, 300);
	CHECK_INT(r->blkio.throttle[THROTTLE_WRITE_IOPS][1].minor, 16);
	CHECK_INT(r->n_hugepages, 1);
	CHECK_STR(r->hugepages[0].page_size, "2MB");
	CHECK_INT(r->hugepages[0].limit, 209715200);
	CHECK(r->network.class_id.has && r->network.class_id.v == 1048577);
	CHECK_INT(r->network.n_priorities, 2);
	CHECK_STR(r->network.priorities[0].name, "eth0");
	CHECK_INT(r->network.priorities[0].priority, 500);
	CHECK_INT(r->n_rdma, 1);
	CHECK_STR(r->rdma[0].device, "mlx5_1");
	CHECK_INT(r->rdma[0].hca_handles.v, 3);
	CHECK_INT(r->rdma[0].hca_objects.v, 10000);
	CHECK_INT(r->n_unified, 2);
	CHECK_STR(r->unified[1].key, "memory.high");
	CHECK_STR(r->unified[1].value, "1G");
	CHECK_INT(s->linux.rootfs_propagation, MS_SLAVE | MS_REC);

	const spec_seccomp *sc = &s->linux.seccomp;
	CHECK(sc->present);
	CHECK_INT(sc->default_action, SCMP_ACT_ERRNO(0));
	CHECK(sc->default_errno_ret.has && sc->default_errno_ret.v == 38);
	CHECK_INT(sc->n_arches, 4);
	CHECK_INT(sc->arches[0], SCMP_ARCH_X86_64);
	CHECK_INT(sc->arches[1], SCMP_ARCH_X86);
	CHECK_INT(sc->arches[2], SCMP_ARCH_X32);
	CHECK_INT(sc->arches[3], SCMP_ARCH_AARCH64);
	CHECK_INT(sc->flags, 2 | 4);
	CHECK_STR(sc->listener_path, "/run/notify.sock");
	CHECK_STR(sc->listener_metadata, "meta");
	CHECK_INT(sc->n_rules, 10);
	CHECK_INT(sc->rules[0].n_names, 2);
	CHECK_STR(sc->rules[0].names[1], "write");
	CHECK(sc->rules[0].names[2] == NULL);
	CHECK_INT(sc->rules[0].action, SCMP_ACT_ALLOW);
	CHECK_INT(sc->rules[1].n_args, 2);
	CHECK_INT(sc->rules[1].args[0].op, SCMP_CMP_EQ);
	CHECK_INT(sc->rules[1].args[1].index, 1);
	CHECK_INT(sc->rules[1].args[1].value, 255);
	CHECK_INT(sc->rules[1].args[1].value_two, 8);
	CHECK_INT(sc->rules[1].args[1].op, SCMP_CMP_MASKED_EQ);
	CHECK_INT(sc->rules[2].action, SCMP_ACT_ERRNO(0));
	CHECK(sc->rules[2].errno_ret.has && sc->rules[2].errno_ret.v == 1);
	CHECK_INT(sc->rules[3].action, SCMP_ACT_TRACE(0));
	CHECK(!sc->rules[3].errno_ret.has);
	CHECK_INT(sc->rules[4].action, SCMP_ACT_KILL_PROCESS);
	CHECK_INT(sc->rules[5].action, SCMP_ACT_KILL);
	CHECK_INT(sc->rules[6].action, SCMP_ACT_KILL_THREAD);
	CHECK_INT(sc->rules[7].action, SCMP_ACT_TRAP);
	CHECK_INT(sc->rules[8].action, SCMP_ACT_LOG);
	CHECK_INT(sc->rules[9].action, SCMP_ACT_NOTIFY);

	CHECK_INT(s->linux.n_sysctl, 2);
	CHECK_STR(s->linux.sysctl[0].key, "net.ipv4.ip_forward");
	CHECK_INT(s->linux.n_masked_paths, 1);
	CHECK_INT(s->linux.n_readonly_paths, 2);
	CHECK_STR(s->linux.readonly_paths[1], "/proc/bus");
	CHECK(s->linux.readonly_paths[2] == NULL);
	CHECK_STR(s->linux.mount_label, "ml");
	CHECK(s->linux.intel_rdt);
	CHECK(s->linux.personality.has);
	CHECK_INT(s->linux.personality.domain, PER_LINUX32);
	spec_free(s);
}

/* Absent optional sections: no process, nulls everywhere. */
static void test_minimal(void)
{
	oci_spec *s = NULL;
	CHECK_INT(parse_min(", 'process': null, 'linux': {'resources': null, 'seccomp': null}, 'mounts': null", &s), 0);
	if (!s)
		return;
	CHECK(!s->process.present);
	CHECK(s->process.args == NULL && s->process.cwd == NULL);
	CHECK(!s->linux.resources.present && !s->linux.seccomp.present);
	CHECK_INT(s->n_mounts, 0);
	CHECK(!s->root_readonly);
	spec_free(s);

	CHECK_INT(parse_min(", 'process': {'args': ['true']}, 'linux': {'resources': {}}", &s), 0);
	if (!s)
		return;
	CHECK_STR(s->process.cwd, "/");
	CHECK(s->process.env == NULL);
	CHECK(!s->process.caps.present);
	CHECK(s->linux.resources.present);
	CHECK(!s->linux.resources.memory.limit.has);
	spec_free(s);
}

static void test_load_bundle(void)
{
	char dir[] = "/tmp/test-spec-XXXXXX", path[PATH_MAX], cwd[PATH_MAX];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/config.json", dir);
	FILE *f = fopen(path, "we");
	const char *json = "{\"ociVersion\": \"1.1.0\", \"root\": {\"path\": \"./rootfs/\"}, \"process\": {\"args\": [\"sh\"]}}";
	fputs(json, f);
	fclose(f);

	CHECK(getcwd(cwd, sizeof cwd) != NULL);
	CHECK_INT(chdir("/tmp"), 0);
	oci_spec *s = NULL;
	char *raw = NULL;
	size_t len = 0;
	char rel[PATH_MAX];
	snprintf(rel, sizeof rel, "./%s/", dir + 5);
	CHECK_INT(spec_load_bundle(rel, &s, &raw, &len), 0);
	if (s) {
		CHECK_STR(s->bundle, dir);
		snprintf(path, sizeof path, "%s/rootfs", dir);
		CHECK_STR(s->root_path, path);
		CHECK_INT(len, strlen(json));
		CHECK_STR(raw, json);
		spec_free(s);
	}
	free(raw);
	/* Absolute bundle; NULL raw outputs are allowed. */
	s = NULL;
	CHECK_INT(spec_load_bundle(dir, &s, NULL, NULL), 0);
	spec_free(s);

	snprintf(path, sizeof path, "%s/config.json", dir);
	unlink(path);
	err_clear();
	CHECK_INT(spec_load_bundle(dir, &s, NULL, NULL), -ENOENT);
	CHECK_CONTAINS(err_msg(), "config.json': No such file or directory");
	rmdir(dir);
	CHECK_INT(chdir(cwd), 0);
}

/* What `features` lists comes from the parser's tables: every name it
 * gives is accepted by the parser, and every capability number has one. */
static void test_feature_tables(void)
{
	size_t n = 0;
	for (size_t i = 0; spec_mount_option_name(i); i++, n++) {
		char *opts[] = { (char *)spec_mount_option_name(i), NULL };
		spec_mount_opts mo;
		memset(&mo, 0, sizeof mo);
		CHECK_INT(spec_mount_opts_parse(opts, &mo), 0);
		free(mo.data);
	}
	CHECK(n >= 40);
	int c = 0;
	for (; spec_cap_name(c); c++)
		CHECK_INT(spec_cap_from_name(spec_cap_name(c)), c);
	CHECK_INT(c, 41);
	CHECK(spec_cap_name(-1) == NULL);
}

int main(void)
{
	test_feature_tables();
	test_default();
	test_errors();
	test_syntax();
	test_big_ints();
	test_mount_opts();
	test_names();
	test_full();
	test_minimal();
	test_load_bundle();
	return unit_done("test-spec");
}
