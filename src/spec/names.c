/* Capability and rlimit name tables ("CAP_SYS_ADMIN" -> 21). */
#include <linux/capability.h>
#include <string.h>
#include <sys/resource.h>

#include "spec/spec.h"
#include "spec/spec-parse.h"
#include "util/cleanup.h"

#define N(x) [x] = #x
static const char *const cap_names[] = {
	N(CAP_CHOWN),           N(CAP_DAC_OVERRIDE),   N(CAP_DAC_READ_SEARCH), N(CAP_FOWNER),
	N(CAP_FSETID),          N(CAP_KILL),           N(CAP_SETGID),          N(CAP_SETUID),
	N(CAP_SETPCAP),         N(CAP_LINUX_IMMUTABLE), N(CAP_NET_BIND_SERVICE), N(CAP_NET_BROADCAST),
	N(CAP_NET_ADMIN),       N(CAP_NET_RAW),        N(CAP_IPC_LOCK),        N(CAP_IPC_OWNER),
	N(CAP_SYS_MODULE),      N(CAP_SYS_RAWIO),      N(CAP_SYS_CHROOT),      N(CAP_SYS_PTRACE),
	N(CAP_SYS_PACCT),       N(CAP_SYS_ADMIN),      N(CAP_SYS_BOOT),        N(CAP_SYS_NICE),
	N(CAP_SYS_RESOURCE),    N(CAP_SYS_TIME),       N(CAP_SYS_TTY_CONFIG),  N(CAP_MKNOD),
	N(CAP_LEASE),           N(CAP_AUDIT_WRITE),    N(CAP_AUDIT_CONTROL),   N(CAP_SETFCAP),
	N(CAP_MAC_OVERRIDE),    N(CAP_MAC_ADMIN),      N(CAP_SYSLOG),          N(CAP_WAKE_ALARM),
	N(CAP_BLOCK_SUSPEND),   N(CAP_AUDIT_READ),     N(CAP_PERFMON),         N(CAP_BPF),
	N(CAP_CHECKPOINT_RESTORE),
};
_Static_assert(ARRAY_SIZE(cap_names) == 41, "capabilities 0..40");

static const char *const rlimit_names[] = {
	N(RLIMIT_CPU),    N(RLIMIT_FSIZE),   N(RLIMIT_DATA),     N(RLIMIT_STACK),
	N(RLIMIT_CORE),   N(RLIMIT_RSS),     N(RLIMIT_NPROC),    N(RLIMIT_NOFILE),
	N(RLIMIT_MEMLOCK), N(RLIMIT_AS),     N(RLIMIT_LOCKS),    N(RLIMIT_SIGPENDING),
	N(RLIMIT_MSGQUEUE), N(RLIMIT_NICE),  N(RLIMIT_RTPRIO),   N(RLIMIT_RTTIME),
};
_Static_assert(ARRAY_SIZE(rlimit_names) == 16, "16 rlimits");
#undef N

static int index_of(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

int spec_cap_from_name(const char *name)
{
	return index_of(cap_names, ARRAY_SIZE(cap_names), name);
}

const char *spec_cap_name(int cap)
{
	return cap >= 0 && (size_t)cap < ARRAY_SIZE(cap_names) ? cap_names[cap] : NULL;
}

int spec_rlimit_from_name(const char *name)
{
	return index_of(rlimit_names, ARRAY_SIZE(rlimit_names), name);
}

const char *spec_rlimit_name(int resource)
{
	return resource >= 0 && (size_t)resource < ARRAY_SIZE(rlimit_names) ? rlimit_names[resource] : "?";
}
