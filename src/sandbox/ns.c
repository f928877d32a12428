/* Namespaces: joining those given by path (the user namespace first),
 * creating the late ones (cgroup, time with its offsets) and opening
 * linux.namespaces paths with their type checked. */
#include "ns.h"
#include "util/err.h"
#include "util/fs.h"
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/nsfs.h>
#include <linux/sched.h>

int ns_join(const oci_spec *s, const int ns_fds[NS__MAX], bool skip_mnt)
{
	/* The user namespace first: it owns the others and grants the
	 * capabilities to join them. */
	if (ns_fds[NS_USER] >= 0 && setns(ns_fds[NS_USER], CLONE_NEWUSER) < 0)
		return err_set(errno, "linux.namespaces: join user namespace '%s'", s->linux.ns[NS_USER].path);
	for (int t = 0; t < NS__MAX; t++)
		if (t != NS_USER && !(t == NS_MOUNT && skip_mnt) && ns_fds[t] >= 0 &&
		    setns(ns_fds[t], spec_ns_clone_flags[t]) < 0)
			return err_set(errno, "linux.namespaces: join %s namespace '%s'", spec_ns_names[t], s->linux.ns[t].path);
	return 0;
}

int ns_create_late(const oci_spec *s)
{
	if (s->linux.ns[NS_USER].present && setresgid(0, 0, 0) == 0)
		(void)setresuid(0, 0, 0);
	if (s->linux.ns[NS_CGROUP].present && !s->linux.ns[NS_CGROUP].path && unshare(CLONE_NEWCGROUP) < 0)
		return err_set(errno, "unshare cgroup namespace");
	if (s->linux.ns[NS_TIME].present && !s->linux.ns[NS_TIME].path &&
	    (s->linux.time_offsets[0].has || s->linux.time_offsets[1].has)) {
		if (unshare(CLONE_NEWTIME) < 0)
			return err_set(errno, "unshare time namespace");
		char buf[128];
		int n = 0;
		static const char *const clk[2] = { "monotonic", "boottime" };
		for (int i = 0; i < 2; i++)
			if (s->linux.time_offsets[i].has)
				n += snprintf(buf + n, sizeof buf - n, "%s %lld %u\n", clk[i],
					      (long long)s->linux.time_offsets[i].secs, s->linux.time_offsets[i].nanosecs);
		int r = write_file_at(AT_FDCWD, "/proc/self/timens_offsets", buf, (size_t)n);
		if (r < 0)
			return err_wrap(r, "linux.timeOffsets");
	}
	return 0;
}

int ns_open_paths(const oci_spec *s, int fds[NS__MAX])
{
	for (int t = 0; t < NS__MAX; t++) {
		fds[t] = -1;
		if (!s->linux.ns[t].present || !s->linux.ns[t].path)
			continue;
		fds[t] = open(s->linux.ns[t].path, O_RDONLY | O_CLOEXEC);
		if (fds[t] < 0)
			return err_set(errno, "config.json: linux.namespaces: %s namespace path '%s'", spec_ns_names[t], s->linux.ns[t].path);
		int type = ioctl(fds[t], NS_GET_NSTYPE);
		if (type >= 0 && type != spec_ns_clone_flags[t])
			return err_set(0, "config.json: linux.namespaces: '%s' is not a %s namespace", s->linux.ns[t].path, spec_ns_names[t]);
	}
	return 0;
}
