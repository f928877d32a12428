/* The container process's identity and limits (see process.h). */
#include "process.h"
#include "util/err.h"
#include "util/cleanup.h"
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/capability.h>

static int last_cap(void)
{
	static int cached = -1;
	if (cached < 0) {
		/* Probe the bounding set instead of reading /proc (no /proc needed). */
		int c = 0;
		while (c < 64 && prctl(PR_CAPBSET_READ, c + 1, 0, 0, 0) >= 0)
			c++;
		cached = c;
	}
	return cached;
}

static int capset_sets(uint64_t eff, uint64_t perm, uint64_t inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = {
		{ (uint32_t)eff, (uint32_t)perm, (uint32_t)inh },
		{ (uint32_t)(eff >> 32), (uint32_t)(perm >> 32), (uint32_t)(inh >> 32) },
	};
	return (int)syscall(SYS_capset, &h, d);
}

int process_set_user_and_caps(const oci_spec *s, bool userns)
{
	const spec_caps *c = &s->process.caps;
	uint64_t known = last_cap() >= 63 ? ~0ULL : (1ULL << (last_cap() + 1)) - 1;
	if (c->present) {
		for (int cap = 0; cap <= last_cap(); cap++)
			if (!(c->bounding & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
				return err_set(errno, "process.capabilities.bounding: drop capability %d", cap);
	}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return err_set(errno, "prctl(PR_SET_KEEPCAPS)");
	if (!(userns && s->process.n_additional_gids == 0)) {
		if (setgroups(s->process.n_additional_gids, s->process.additional_gids) < 0)
			return errno == EINVAL ? err_set(EINVAL, "process.user.additionalGids: a gid is not mapped in the container's user namespace")
					       : err_set(errno, "process.user.additionalGids: setgroups");
	}
	/* EINVAL: the id has no mapping in the user namespace. */
	if (setresgid(s->process.gid, s->process.gid, s->process.gid) < 0)
		return errno == EINVAL ? err_set(EINVAL, "process.user.gid: gid %u is not mapped in the container's user namespace",
						 (unsigned)s->process.gid)
				       : err_set(errno, "process.user.gid: setresgid(%u)", (unsigned)s->process.gid);
	if (setresuid(s->process.uid, s->process.uid, s->process.uid) < 0)
		return errno == EINVAL ? err_set(EINVAL, "process.user.uid: uid %u is not mapped in the container's user namespace",
						 (unsigned)s->process.uid)
				       : err_set(errno, "process.user.uid: setresuid(%u)", (unsigned)s->process.uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return err_set(errno, "prctl(PR_SET_KEEPCAPS)");
	if (!c->present)
		return 0; /* no capabilities object: keep what the user switch left */
	if (capset_sets(c->effective & known, c->permitted & known, c->inheritable & known) < 0) {
		int e = errno;
		/* Name the capability the runtime itself lacks. */
		for (int cap = 0; cap <= last_cap(); cap++)
			if ((c->permitted & (1ULL << cap)) && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 0)
				return err_set(e, "process.capabilities: capability %d is not in the runtime's bounding set", cap);
		return err_set(e, "process.capabilities: capset");
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return err_set(errno, "process.capabilities.ambient: clear");
	/* The kernel allows an ambient capability only when it is permitted
	 * and inheritable; like runc, others in the list are skipped. */
	uint64_t ambient = c->ambient & c->permitted & c->inheritable;
	for (int cap = 0; cap <= last_cap(); cap++)
		if ((ambient & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			return err_set(errno, "process.capabilities.ambient: raise capability %d", cap);
	return 0;
}

int process_set_rlimits(const oci_spec *s)
{
	for (size_t i = 0; i < s->process.n_rlimits; i++) {
		const spec_rlimit *l = &s->process.rlimits[i];
		struct rlimit rl = { l->soft, l->hard };
		if (setrlimit(l->resource, &rl) < 0) {
			struct rlimit cur;
			getrlimit(l->resource, &cur);
			if (errno == EPERM)
				return err_set(EPERM, "process.rlimits[%zu]: hard limit %llu is above the runtime's hard limit %llu",
					       i, (unsigned long long)l->hard, (unsigned long long)cur.rlim_max);
			return err_set(errno, "process.rlimits[%zu]: setrlimit", i);
		}
	}
	return 0;
}

int process_set_sched(const oci_spec *s)
{
	if (s->process.scheduler.has) {
		struct {
			uint32_t size; uint32_t policy; uint64_t flags; int32_t nice; uint32_t priority;
			uint64_t runtime, deadline, period;
		} a = { 48, (uint32_t)s->process.scheduler.policy, s->process.scheduler.flags,
			s->process.scheduler.nice, (uint32_t)s->process.scheduler.priority,
			s->process.scheduler.runtime, s->process.scheduler.deadline, s->process.scheduler.period };
		if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
			return err_set(errno, "process.scheduler: sched_setattr");
	}
	if (s->process.io_priority.has) {
		int prio = (s->process.io_priority.klass << 13) | s->process.io_priority.priority;
		if (syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, prio) < 0)
			return err_set(errno, "process.ioPriority: ioprio_set");
	}
	if (s->linux.personality.has && personality(s->linux.personality.domain) < 0)
		return err_set(errno, "linux.personality");
	return 0;
}

const char *process_env_path(char *const *env)
{
	for (size_t i = 0; env && env[i]; i++)
		if (!strncmp(env[i], "PATH=", 5))
			return env[i] + 5;
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

int process_find_executable(const oci_spec *s, char **ret)
{
	const char *name = s->process.args[0];
	struct stat st;
	if (strchr(name, '/')) {
		if (stat(name, &st) < 0)
			return err_set(errno, "process.args[0]: exec '%s'", name);
		if (S_ISDIR(st.st_mode))
			return err_set(EACCES, "process.args[0]: '%s' is a directory", name);
		*ret = strdup(name);
		return *ret ? 0 : -ENOMEM;
	}
	const char *path = process_env_path(s->process.env);
	char buf[PATH_MAX];
	for (const char *p = path; ; ) {
		const char *end = strchrnul(p, ':');
		int n = snprintf(buf, sizeof buf, "%.*s/%s", (int)(end - p), p, name);
		if (n > 0 && (size_t)n < sizeof buf && end > p && stat(buf, &st) == 0 &&
		    S_ISREG(st.st_mode) && (st.st_mode & 0111)) {
			*ret = strdup(buf);
			return *ret ? 0 : -ENOMEM;
		}
		if (!*end)
			break;
		p = end + 1;
	}
	return err_set(ENOENT, "process.args[0]: executable file '%s' not found in $PATH", name);
}

/* The home directory of uid in the container's /etc/passwd, or "/". The
 * file is the tenant's: not followed out of the root (we are inside it),
 * never a FIFO or device that could block us, read up to a bound. */
static char *passwd_home(uid_t uid)
{
	char *home = NULL;
	int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	FILE *f = NULL;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !(f = fdopen(fd, "re"))) {
		if (fd >= 0)
			close(fd);
		return strdup("/");
	}
	char *line = NULL;
	size_t cap = 0, total = 0;
	ssize_t n;
	while (!home && total < (16u << 20) && (n = getline(&line, &cap, f)) > 0) {
		total += (size_t)n;
		/* name:passwd:uid:gid:gecos:home:shell */
		char *fields[7] = { 0 }, *p = line;
		size_t k = 0;
		for (; k < 7 && p; k++) {
			fields[k] = p;
			p = strchr(p, ':');
			if (p)
				*p++ = '\0';
		}
		if (k < 6)
			continue;
		char *end;
		errno = 0;
		unsigned long u = strtoul(fields[2], &end, 10);
		if (errno || end == fields[2] || *end || u != uid)
			continue;
		fields[5][strcspn(fields[5], "\n")] = '\0';
		if (fields[5][0])
			home = strdup(fields[5]);
	}
	free(line);
	fclose(f);
	return home ? home : strdup("/");
}

int process_env(const oci_spec *s, char ***ret)
{
	size_t n = s->process.env ? s->process.n_env : 0;
	for (size_t i = 0; i < n; i++)
		if (!strncmp(s->process.env[i], "HOME=", 5)) {
			*ret = NULL; /* process.env as it is */
			return 0;
		}
	_cleanup_free_ char *home = passwd_home(s->process.uid);
	char **env = calloc(n + 2, sizeof *env);
	char *kv = NULL;
	if (!home || !env || asprintf(&kv, "HOME=%s", home) < 0) {
		free(env);
		return err_set(ENOMEM, "process.env: HOME");
	}
	for (size_t i = 0; i < n; i++)
		env[i] = s->process.env[i];
	env[n] = kv;
	*ret = env;
	return 0;
}
