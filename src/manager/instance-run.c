/* Running instances: the generated OCI bundle, start (a monitor process that
 * sets the instance up and keeps its console and log), stop, the
 * monitor's exit handler with the restart policy, live limits and usage. */
#include "instance-internal.h"
#include "idmap.h"
#include "lxcfs.h"
#include "storage.h"
#include "runtime/container.h"
#include "sandbox/cgroup.h"
#include "sandbox/console.h"
#include "spec/spec.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#define _cleanup_json_ _cleanup_(json_decrefp)

/* ---- host facts ----------------------------------------------------------- */

/* Online CPUs of the host as a bitmap (first 256). */
static unsigned host_cpus(bool online[256])
{
	memset(online, 0, 256);
	char *buf = NULL;
	unsigned n = 0;
	if (read_file_at(AT_FDCWD, "/sys/devices/system/cpu/online", &buf, NULL) == 0) {
		for (char *p = buf; *p && *p != '\n';) {
			char *end;
			unsigned long a = strtoul(p, &end, 10), b = a;
			if (end == p)
				break;
			if (*end == '-')
				b = strtoul(end + 1, &end, 10);
			for (unsigned long c = a; c <= b && c < 256; c++)
				online[c] = true;
			p = *end == ',' ? end + 1 : end;
		}
		free(buf);
	}
	for (unsigned c = 0; c < 256; c++)
		n += online[c];
	if (n == 0) {
		online[0] = true;
		n = 1;
	}
	return n;
}

/* Pick `want` CPUs, those pinned by the fewest running instances first. */
static int choose_cpuset(struct manager *m, const char *self, unsigned want, char *out, size_t len)
{
	bool online[256];
	unsigned ncpu = host_cpus(online);
	if (want > ncpu)
		return err_refuse(EINVAL, "limits.cpu: %u CPUs asked, the host has %u", want, ncpu);
	unsigned use[256] = { 0 };
	struct instance *all = NULL;
	size_t n = 0;
	if (instance_list(m, &all, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (!strcmp(all[i].name, self) || all[i].status != INSTANCE_RUNNING)
				continue;
			_cleanup_free_ char *path = instance_path(m, all[i].name, "cpuset");
			char *buf = NULL;
			if (path && read_file_at(AT_FDCWD, path, &buf, NULL) == 0) {
				for (char *p = buf; *p;) {
					char *end;
					unsigned long c = strtoul(p, &end, 10);
					if (end == p)
						break;
					if (c < 256)
						use[c]++;
					p = *end == ',' ? end + 1 : end;
				}
				free(buf);
			}
		}
		instance_array_free(all, n);
	}
	bool pick[256] = { false };
	for (unsigned k = 0; k < want; k++) {
		int best = -1;
		for (unsigned c = 0; c < 256; c++)
			if (online[c] && !pick[c] && (best < 0 || use[c] < use[best]))
				best = (int)c;
		pick[best] = true;
	}
	size_t off = 0;
	out[0] = 0;
	for (unsigned c = 0; c < 256; c++)
		if (pick[c])
			off += (size_t)snprintf(out + off, len - off, "%s%u", off ? "," : "", c);
	return 0;
}

int instance_resources_json(struct manager *m, const struct instance *in, json_t **ret)
{
	const char *values[LIMIT__MAX];
	instance_limit_values(in, values);
	struct sysinfo si;
	bool online[256];
	struct limits_host h = { .ncpus = host_cpus(online) };
	if (sysinfo(&si) == 0)
		h.mem_total = (uint64_t)si.totalram * si.mem_unit;
	char cpuset[1024];
	int r;
	unsigned want = values[LIMIT_CPU] ? limits_cpu_count(values[LIMIT_CPU]) : 0;
	if (want) {
		if ((r = choose_cpuset(m, in->name, want, cpuset, sizeof cpuset)) < 0)
			return r;
		h.cpuset = cpuset;
	}
	_cleanup_free_ char *dir = instance_dir(m, in->name);
	if (dir && storage_block_device(dir, &h.disk_major, &h.disk_minor) == 0)
		h.has_disk = true;
	if ((r = limits_to_resources(values, &h, ret)) < 0)
		return r;
	/* Remember the CPUs for the next instance's choice. */
	_cleanup_free_ char *path = instance_path(m, in->name, "cpuset");
	if (path) {
		if (h.cpuset)
			(void)write_file_atomic_at(AT_FDCWD, path, cpuset, strlen(cpuset), 0644);
		else
			(void)unlink(path);
	}
	return 0;
}

/* ---- the OCI bundle ------------------------------------------------------- */

static const char *const instance_caps[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_SETFCAP", "CAP_CHECKPOINT_RESTORE",
};

/* Kernel-wide operations no instance gets, whatever its capabilities. */
static const char *const denied_syscalls[] = {
	"kexec_load", "kexec_file_load", "open_by_handle_at", "init_module", "finit_module", "delete_module",
	"swapon", "swapoff", "acct", "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
};

static const char *const default_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "HOME=/root",
	"container=isola",
};

/* A privileged instance is host root: what it mounts or unmounts changes
 * what it may write. Unless security.protect_host=false, it gets none of
 * the mount calls, so /proc/sys, /sys and its cgroup files stay read-only
 * (open_tree would clone the writable /proc under the read-only /proc/sys). */
static const char *const mount_syscalls[] = {
	"mount", "umount", "umount2", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
	"mount_setattr",
};

static const char *const masked[] = {
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
	"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
};
static const char *const readonly[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

static json_t *str_array(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *mount_entry(const char *dest, const char *type, const char *source, const char *opts)
{
	json_t *o = json_pack("{s:s, s:s, s:s}", "destination", dest, "type", type, "source", source);
	json_t *a = json_array();
	_cleanup_free_ char *copy = strdup(opts);
	for (char *save = NULL, *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
		json_array_append_new(a, json_string(t));
	json_object_set_new(o, "options", a);
	return o;
}

static bool is_system_container(const struct instance *in)
{
	return in->command == NULL;
}

static int stop_signal(const struct instance *in)
{
	/* busybox init, systemd and sysvinit all shut down on SIGPWR */
	return is_system_container(in) ? SIGPWR : SIGTERM;
}

static char *cgroup_path_for(const struct manager *m, const char *name)
{
	char *p = NULL;
	if (!strcmp(m->state_dir, "/var/lib/isola"))
		return asprintf(&p, "/isola/%s", name) < 0 ? NULL : p;
	/* Another state directory (tests): its own parent, so names never clash. */
	unsigned h = 2166136261u;
	for (const char *s = m->state_dir; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return asprintf(&p, "/isola-%08x/%s", h, name) < 0 ? NULL : p;
}

char *instance_cgroup_path(const struct manager *m, const char *name)
{
	return cgroup_path_for(m, name);
}

static int build_config(struct manager *m, const struct instance *in, json_t **ret)
{
	_cleanup_json_ json_t *c = json_object();
	json_object_set_new(c, "ociVersion", json_string(ISOLA_OCI_VERSION));

	/* process */
	json_t *env = json_array();
	for (size_t i = 0; i < ARRAY_SIZE(default_env); i++) {
		char key[64]; /* environment.NAME replaces the default */
		snprintf(key, sizeof key, "environment.%.*s", (int)strcspn(default_env[i], "="), default_env[i]);
		if (!strmap_get(&in->config, key))
			json_array_append_new(env, json_string(default_env[i]));
	}
	for (size_t i = 0; i < in->config.cap; i++) {
		const char *k = in->config.keys[i], *v = in->config.values[i];
		if (k && v && !strncmp(k, "environment.", 12)) {
			char *kv;
			if (asprintf(&kv, "%s=%s", k + 12, v) >= 0) {
				json_array_append_new(env, json_string(kv));
				free(kv);
			}
		}
	}
	json_t *args = json_array();
	if (in->command)
		for (char **p = in->command; *p; p++)
			json_array_append_new(args, json_string(*p));
	else
		json_array_append_new(args, json_string("/sbin/init"));
	const char *caps[ARRAY_SIZE(instance_caps)];
	size_t ncaps = 0;
	for (size_t i = 0; i < ARRAY_SIZE(instance_caps); i++) {
		int cap = spec_cap_from_name(instance_caps[i]);
		/* only what this host's bounding set can still give */
		if (cap >= 0 && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
			caps[ncaps++] = instance_caps[i];
	}
	json_t *capobj = json_object();
	const char *sets[] = { "bounding", "effective", "permitted" };
	for (size_t i = 0; i < ARRAY_SIZE(sets); i++)
		json_object_set_new(capobj, sets[i], str_array(caps, ncaps));
	json_object_set_new(c, "process", json_pack("{s:b, s:{s:i, s:i}, s:o, s:o, s:s, s:o, s:b}",
						     "terminal", 1, "user", "uid", 0, "gid", 0, "args", args,
						     "env", env, "cwd", "/", "capabilities", capobj,
						     "noNewPrivileges", 0));
	json_object_set_new(c, "root", json_pack("{s:s, s:b}", "path", "rootfs", "readonly", 0));
	json_object_set_new(c, "hostname", json_string(in->name));

	/* security.protect_host=false: a privileged instance asked to write
	 * the host's /proc/sys, /sys and cgroup files and to mount. */
	const char *ph = strmap_get(&in->config, "security.protect_host");
	bool open_host = in->privileged && ph && !strcmp(ph, "false");
	const char *sys_ro = open_host ? "" : ",ro";
	char opts[64];

	/* mounts, then the LXCFS views over /proc and /sys files */
	json_t *mounts = json_array();
	json_array_append_new(mounts, mount_entry("/proc", "proc", "proc", "nosuid,noexec,nodev"));
	json_array_append_new(mounts, mount_entry("/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k"));
	json_array_append_new(mounts, mount_entry("/dev/pts", "devpts", "devpts",
						  "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620"));
	json_array_append_new(mounts, mount_entry("/dev/shm", "tmpfs", "shm", "nosuid,noexec,nodev,mode=1777,size=65536k"));
	json_array_append_new(mounts, mount_entry("/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev"));
	snprintf(opts, sizeof opts, "nosuid,noexec,nodev%s", sys_ro);
	json_array_append_new(mounts, mount_entry("/sys", "sysfs", "sysfs", opts));
	snprintf(opts, sizeof opts, "nosuid,noexec,nodev,relatime%s", sys_ro);
	json_array_append_new(mounts, mount_entry("/sys/fs/cgroup", "cgroup", "cgroup", opts));
	json_array_append_new(mounts, mount_entry("/run", "tmpfs", "tmpfs", "nosuid,nodev,mode=755,size=65536k"));
	/* LXCFS's files as the monitor binds them into the instance's own
	 * directory (instance_lxcfs_bind): the init cannot reach the host's mount. */
	_cleanup_free_ char *lx = instance_path(m, in->name, "lxcfs");
	struct lxcfs_bind *binds = NULL;
	size_t nb = 0;
	if (lx && lxcfs_binds(lxcfs_dir(), &binds, &nb) == 0) {
		for (size_t i = 0; i < nb; i++) {
			char src[PATH_MAX];
			snprintf(src, sizeof src, "%s/%s", lx, binds[i].source);
			json_array_append_new(mounts, mount_entry(binds[i].target, "bind", src, "bind"));
		}
		free(binds);
	}
	json_object_set_new(c, "mounts", mounts);

	/* linux */
	json_t *lin = json_object();
	json_t *ns = json_array();
	const char *nss[] = { "pid", "ipc", "uts", "mount", "network", "cgroup", "user" };
	for (size_t i = 0; i < ARRAY_SIZE(nss) - (in->privileged ? 1 : 0); i++)
		json_array_append_new(ns, json_pack("{s:s}", "type", nss[i]));
	json_object_set_new(lin, "namespaces", ns);
	if (!in->privileged) {
		json_object_set_new(lin, "uidMappings", json_pack("[{s:i, s:I, s:i}]", "containerID", 0, "hostID",
								  (json_int_t)in->idmap_base, "size", IDMAP_RANGE));
		json_object_set_new(lin, "gidMappings", json_pack("[{s:i, s:I, s:i}]", "containerID", 0, "hostID",
								  (json_int_t)in->idmap_base, "size", IDMAP_RANGE));
	}
	_cleanup_free_ char *cg = instance_cgroup_payload(m, in->name);
	json_object_set_new(lin, "cgroupsPath", json_string(cg ? cg : ""));
	json_t *res = NULL;
	int r = instance_resources_json(m, in, &res);
	if (r < 0)
		return r;
	json_object_set_new(lin, "resources", res);
	/* sysinfo(2) (free, uptime) is answered by the monitor from the
	 * instance's cgroup: LXCFS covers files, not system calls. */
	_cleanup_free_ char *listener = instance_path(m, in->name, "seccomp.sock");
	json_t *denied = str_array(denied_syscalls, ARRAY_SIZE(denied_syscalls));
	for (size_t i = 0; in->privileged && !open_host && i < ARRAY_SIZE(mount_syscalls); i++)
		json_array_append_new(denied, json_string(mount_syscalls[i]));
	json_t *sc = json_pack("{s:s, s:s, s:[{s:o, s:s, s:i}, {s:[s], s:s}]}", "defaultAction", "SCMP_ACT_ALLOW",
			       "listenerPath", listener ? listener : "", "syscalls", "names", denied,
			       "action", "SCMP_ACT_ERRNO", "errnoRet", EPERM, "names", "sysinfo", "action",
			       "SCMP_ACT_NOTIFY");
	json_object_set_new(lin, "seccomp", sc);
	json_object_set_new(lin, "maskedPaths", str_array(masked, ARRAY_SIZE(masked)));
	json_t *ro = json_array();
	for (size_t i = 0; i < ARRAY_SIZE(readonly); i++)
		if (!open_host || strcmp(readonly[i], "/proc/sys"))
			json_array_append_new(ro, json_string(readonly[i]));
	json_object_set_new(lin, "readonlyPaths", ro);
	json_object_set_new(c, "linux", lin);
	*ret = TAKE_PTR(c);
	return 0;
}

static int write_bundle(struct manager *m, const struct instance *in)
{
	_cleanup_json_ json_t *c = NULL;
	int r = build_config(m, in, &c);
	if (r < 0)
		return r;
	_cleanup_free_ char *text = json_dumps(c, JSON_INDENT(1));
	_cleanup_free_ char *dir = instance_dir(m, in->name);
	if (!text || !dir)
		return err_set(ENOMEM, "instance '%s': config.json", in->name);
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return err_set(errno, "open '%s'", dir);
	return write_file_atomic_at(dfd, "config.json", text, strlen(text), 0600);
}

/* ---- the monitor side ----------------------------------------------------- */

static char *self_exe(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	return strdup(buf);
}

/* Bind a listening socket at dir/name; the path goes through /proc/self/fd
 * so that deep state directories do not hit the 108-byte sun_path limit. */
static int listen_unix(const char *dir, const char *name)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return err_set(errno, "open '%s'", dir);
	(void)unlinkat(dfd, name, 0);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return err_set(errno, "socket");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/%s", dfd, name);
	mode_t old = umask(0077);
	int r = bind(s, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r < 0 || listen(s, 16) < 0) {
		r = err_set(errno, "socket '%s/%s'", dir, name);
		close(s);
		return r;
	}
	return s;
}

int instance_connect_console(const struct manager *m, const char *name)
{
	_cleanup_free_ char *dir = instance_dir(m, name);
	_cleanup_close_ int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
	if (dfd < 0)
		return err_set(errno, "open '%s'", dir ? dir : name);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return err_set(errno, "socket");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/console.sock", dfd);
	if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(s);
		return err_set(e, "instance '%s': connect to the console of its monitor", name);
	}
	return s;
}

static void report(int fd, int r)
{
	if (fd < 0)
		return;
	char buf[1024];
	int n = r < 0 ? snprintf(buf, sizeof buf, "E%s", err_msg()) : snprintf(buf, sizeof buf, "K");
	(void)!write(fd, buf, (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf - 1));
}

/* In the monitor process (own session, own private mount namespace): mount
 * the storage, create and start the container as our child, then become
 * isola-monitor. Returns only on failure, after cleaning up. */
/* The notify fd the runtime sent to our seccomp listener socket. */
static int take_notify_fd(int lsock)
{
	struct pollfd p = { lsock, POLLIN, 0 };
	if (poll(&p, 1, 2000) <= 0)
		return err_set(ETIMEDOUT, "no seccomp notify fd from the runtime");
	_cleanup_close_ int c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
	int fd = -1;
	if (c < 0 || recv_fd(c, &fd) < 0 || fd < 0)
		return err_set(EPROTO, "receive the seccomp notify fd");
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

/* Files the monitor reads to answer sysinfo(2) for the instance. */
static void sysinfo_files(const struct manager *m, const char *name, char mem_limit[PATH_MAX],
			  char mem_usage[PATH_MAX], char pids[PATH_MAX])
{
	_cleanup_free_ char *cg = instance_cgroup_payload(m, name);
	if (cgroup_mode() == CGROUP_UNIFIED) {
		snprintf(mem_limit, PATH_MAX, "/sys/fs/cgroup%s/memory.max", cg ? cg : "");
		snprintf(mem_usage, PATH_MAX, "/sys/fs/cgroup%s/memory.current", cg ? cg : "");
		snprintf(pids, PATH_MAX, "/sys/fs/cgroup%s/pids.current", cg ? cg : "");
	} else {
		snprintf(mem_limit, PATH_MAX, "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", cg ? cg : "");
		snprintf(mem_usage, PATH_MAX, "/sys/fs/cgroup/memory%s/memory.usage_in_bytes", cg ? cg : "");
		snprintf(pids, PATH_MAX, "/sys/fs/cgroup/pids%s/pids.current", cg ? cg : "");
	}
}

/* In the monitor process (own session, in a mount namespace of its own
 * until the instance runs): mount the storage, create and start the
 * container as our child, then become isola-monitor. Returns only on
 * failure, after cleaning up. */
static int monitor_side_in_ns(struct manager *m, const struct instance *in, int report_fd, int *host_ns)
{
	_cleanup_free_ char *dir = instance_dir(m, in->name);
	_cleanup_free_ char *rootfs = NULL;
	_cleanup_free_ char *exe = self_exe();
	int r;
	if (!dir || !exe)
		return err_set(ENOMEM, "start instance '%s'", in->name);
	char mon[PATH_MAX];
	snprintf(mon, sizeof mon, "%s/isola-monitor", dirname(strcpy((char[PATH_MAX]){ 0 }, exe)));
	/* checked before anything starts: once we report success, we exec it */
	if (access(mon, X_OK) < 0)
		return err_set(errno, "the instance monitor '%s' (installed beside isola)", mon);
	if ((r = image_rootfs_path(m->images, in->image, &rootfs)) < 0)
		return r;
	if ((r = storage_mount(dir, rootfs, in->idmap_base)) < 0 || (r = instance_lxcfs_bind(dir)) < 0 ||
	    (r = instance_cgroup_setup(m, in, dir)) < 0)
		return r;
	int ssock = listen_unix(dir, "seccomp.sock");
	if (ssock < 0)
		return ssock;
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		close(ssock);
		return err_set(errno, "socketpair");
	}
	struct create_opts o = { .root = m->run_dir, .id = in->name, .bundle = dir, .console_fd = sp[1],
				 .keep_parent = true };
	pid_t pid = 0;
	r = container_create(&o, &pid);
	close(sp[1]);
	int master = -1, notify = -1, lsock = -1;
	if (r == 0 && recv_fd(sp[0], &master) < 0)
		r = err_set(EPROTO, "instance '%s': no console from the container", in->name);
	close(sp[0]);
	if (r == 0 && (notify = take_notify_fd(ssock)) < 0)
		r = notify;
	if (r == 0)
		r = container_start(m->run_dir, in->name);
	char logpath[PATH_MAX], pidfile[PATH_MAX];
	snprintf(logpath, sizeof logpath, "%s/console.log", dir);
	snprintf(pidfile, sizeof pidfile, "%s/monitor.pid", dir);
	if (r == 0 && (lsock = listen_unix(dir, "console.sock")) < 0)
		r = lsock;
	/* The instance's namespace has its own copy of what it needs; the
	 * monitor keeps a handle on the disk image's mount for usage. */
	if (r == 0)
		r = storage_disk_hold(dir);
	if (r == 0)
		r = instance_ns_leave(TAKE_FD(*host_ns));
	if (r == 0) {
		char buf[64];
		int n = snprintf(buf, sizeof buf, "%d %llu\n", (int)getpid(), proc_starttime(getpid()));
		_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = write_file_atomic_at(dfd, "monitor.pid", buf, (size_t)n, 0644);
	}
	if (r < 0) {
		char *saved = strdup(err_msg());
		if (pid > 0)
			(void)container_delete(m->run_dir, in->name, true);
		while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		err_set(0, "%s", saved ? saved : "start");
		free(saved);
		int fds[] = { master, lsock, ssock, notify };
		for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
			if (fds[i] >= 0)
				close(fds[i]);
		(void)unlink(pidfile);
		return r;
	}
	report(report_fd, 0);
	if (report_fd >= 0)
		close(report_fd);

	/* Become the monitor: it inherits the init as its child. */
	char pidstr[16], masterstr[16], sockstr[16], ssockstr[16], notifystr[16];
	char mem_limit[PATH_MAX], mem_usage[PATH_MAX], pids[PATH_MAX], lxcfs_pid[PATH_MAX];
	sysinfo_files(m, in->name, mem_limit, mem_usage, pids);
	if (lxcfs_pid_path(lxcfs_dir(), lxcfs_pid, sizeof lxcfs_pid) < 0)
		lxcfs_pid[0] = 0;
	snprintf(pidstr, sizeof pidstr, "%d", (int)pid);
	snprintf(masterstr, sizeof masterstr, "%d", master);
	snprintf(sockstr, sizeof sockstr, "%d", lsock);
	snprintf(ssockstr, sizeof ssockstr, "%d", ssock);
	snprintf(notifystr, sizeof notifystr, "%d", notify);
	int pass[] = { master, lsock, ssock, notify };
	for (size_t i = 0; i < ARRAY_SIZE(pass); i++)
		(void)fcntl(pass[i], F_SETFD, 0);
	char *argv[] = { mon, "--name", in->name, "--init", pidstr, "--master", masterstr, "--console-socket", sockstr,
			 "--log", logpath, "--seccomp-socket", ssockstr, "--notify", notifystr,
			 "--mem-limit-file", mem_limit, "--mem-usage-file", mem_usage, "--pids-file", pids,
			 "--lxcfs-pidfile", lxcfs_pid,
			 "--", exe, "--state-dir", m->state_dir, "__monitor-exit", in->name, NULL };
	execv(mon, argv);
	r = err_set(errno, "exec '%s'", mon);
	/* Without a monitor the instance cannot be looked after: stop it. */
	(void)container_delete(m->run_dir, in->name, true);
	(void)unlink(pidfile);
	return r;
}

static int monitor_side(struct manager *m, const struct instance *in, int report_fd)
{
	int host_ns = -1;
	(void)close(STORAGE_DISK_HOLD_FD); /* the previous run's, when restarting in place */
	int r = instance_ns_enter(&host_ns);
	if (r == 0)
		r = monitor_side_in_ns(m, in, report_fd, &host_ns);
	/* failed: nothing of the instance stays, not even our cgroup */
	char *saved = strdup(err_msg());
	(void)instance_ns_leave(host_ns);
	instance_cgroup_leave();
	instance_cgroup_remove(m, in->name);
	err_set(0, "%s", saved ? saved : "start");
	free(saved);
	return r;
}

/* Fork the monitor: its own session; none of the caller's fds. */
static int spawn_monitor(struct manager *m, const struct instance *in)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return err_set(errno, "pipe");
	pid_t child = fork();
	if (child < 0) {
		int e = errno;
		close(pfd[0]);
		close(pfd[1]);
		return err_set(e, "fork the monitor of '%s'", in->name);
	}
	if (child == 0) {
		close(pfd[0]);
		/* Double fork: the monitor is not our child, and survives us. */
		pid_t g = fork();
		if (g != 0)
			_exit(g < 0 ? 1 : 0);
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		instance_close_inherited_fds();
		setsid();
		signal(SIGPIPE, SIG_IGN);
		int r = monitor_side(m, in, pfd[1]);
		report(pfd[1], r);
		_exit(1);
	}
	close(pfd[1]);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	char buf[1024];
	ssize_t n;
	do
		n = read(pfd[0], buf, sizeof buf - 1);
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n > 0 && buf[0] == 'K')
		return 0;
	if (n > 0) {
		buf[n] = 0;
		return err_set(0, "%s", buf + 1), -EIO;
	}
	return err_set(EIO, "instance '%s': the monitor exited before the instance started", in->name);
}

/* Remove what a stopped container left in the runtime's state. */
static void clean_runtime(struct manager *m, const char *name)
{
	container_state st;
	if (container_load(m->run_dir, name, &st) == 0) {
		container_state_clear(&st);
		(void)container_delete(m->run_dir, name, true);
	}
	err_set(0, "%s", "");
}

static int start_locked(struct manager *m, struct instance *in)
{
	int r;
	if (strcmp(in->op, "ready"))
		return err_refuse(EINVAL, "instance '%s' is broken (an interrupted %s): delete it", in->name,
				  !strcmp(in->op, "creating") ? "create" : "delete");
	if (in->status != INSTANCE_STOPPED)
		return err_refuse(EBUSY, "instance '%s' is already %s", in->name, instance_status_name(in->status));
	clean_runtime(m, in->name);
	_cleanup_free_ char *dir = instance_dir(m, in->name);
	if (!dir)
		return err_set(ENOMEM, "start instance '%s'", in->name);
	if ((r = instance_dir_secure(dir, in->idmap_base)) < 0)
		return r;
	/* Its host ids must still be its own (not given to a user since). */
	if (in->idmap_base >= 0 && (r = idmap_check(m->state_dir, in->name, in->idmap_base, IDMAP_RANGE)) < 0)
		return r;
	if ((r = lxcfs_ensure(lxcfs_dir())) < 0)
		return err_wrap(r, "resource views");
	if ((r = write_bundle(m, in)) < 0)
		return r;
	return spawn_monitor(m, in);
}

int instance_start(struct manager *m, const char *name)
{
	_cleanup_close_ int lock = -1;
	struct instance in;
	int r = instance_lock_load(m, name, &lock, &in);
	if (r < 0)
		return r;
	int64_t v[] = { (int64_t)time(NULL) };
	r = instance_update(m, name, "restarts = 0, stop_requested = 0, last_started_at = ?1", 1, v);
	if (r == 0)
		r = start_locked(m, &in);
	instance_clear(&in);
	return r;
}

/* ---- stop ----------------------------------------------------------------- */

static void lift_io_limits(struct manager *m, const char *name);

bool instance_wait_gone(pid_t pid, int timeout_ms)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return errno == ESRCH;
	struct pollfd p = { fd, POLLIN, 0 };
	int n;
	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	close(fd);
	return n > 0;
}

/* The cgroup parent of this state directory's instances goes with its last
 * instance: the runtime removes only directories a container made itself. */
void instance_cgroup_parent_cleanup(const struct manager *m)
{
	_cleanup_free_ char *leaf = cgroup_path_for(m, "x");
	char *slash = leaf ? strrchr(leaf, '/') : NULL;
	if (!slash || slash == leaf)
		return;
	*slash = 0;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "/sys/fs/cgroup%s", leaf);
	(void)rmdir(path); /* pure cgroup v2; busy while other instances run */
	_cleanup_closedir_ DIR *d = opendir("/sys/fs/cgroup");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.' || e->d_type != DT_DIR)
			continue;
		snprintf(path, sizeof path, "/sys/fs/cgroup/%s%s", e->d_name, leaf);
		(void)rmdir(path);
	}
}

int instance_kill_now(struct manager *m, const char *name)
{
	container_state st;
	if (container_load(m->run_dir, name, &st) == 0) {
		container_state_clear(&st);
		lift_io_limits(m, name);
		(void)container_kill(m->run_dir, name, SIGKILL, true);
		int r = container_delete(m->run_dir, name, true);
		if (r < 0)
			return err_wrap(r, "instance '%s'", name);
	}
	err_set(0, "%s", "");
	/* A monitor still alive runs its exit handler once our lock is free; it
	 * then finds the row gone and exits. */
	return 0;
}

int instance_stop(struct manager *m, const char *name, bool force, int timeout_s)
{
	int lock = -1;
	struct instance in;
	int r = instance_lock_load(m, name, &lock, &in);
	if (r < 0)
		return r;
	enum instance_status status = in.status;
	int sig = stop_signal(&in);
	pid_t init = in.pid;
	instance_clear(&in);
	if (status != INSTANCE_RUNNING && status != INSTANCE_FROZEN && status != INSTANCE_STARTING &&
	    status != INSTANCE_DEGRADED) {
		close(lock);
		return err_refuse(EINVAL, "instance '%s' is not running", name);
	}
	pid_t mon = instance_monitor_pid(m, name);
	if ((r = instance_update(m, name, "stop_requested = 1", 0, NULL)) < 0) {
		close(lock);
		return r;
	}
	if (status == INSTANCE_FROZEN || force)
		sig = SIGKILL;
	lift_io_limits(m, name);
	r = container_kill(m->run_dir, name, sig, sig == SIGKILL);
	/* The monitor's exit handler takes the lock to record the exit. */
	close(lock);
	if (r < 0 && r != -ESRCH)
		return r;
	if (mon > 0) {
		if (!instance_wait_gone(mon, timeout_s < 0 ? -1 : timeout_s * 1000) && sig != SIGKILL) {
			(void)container_kill(m->run_dir, name, SIGKILL, true);
			sig = SIGKILL;
		}
		if (!instance_wait_gone(mon, 30000))
			return err_set(ETIMEDOUT, "instance '%s': its monitor (pid %d) did not record the exit",
				       name, (int)mon);
		err_set(0, "%s", "");
		return 0;
	}
	/* No monitor (killed by hand): nobody else records the end or cleans up.
	 * The init is not our child: wait for it through a pidfd. */
	if (sig != SIGKILL && init > 0)
		(void)instance_wait_gone(init, timeout_s < 0 ? -1 : timeout_s * 1000);
	if ((r = instance_lock(m, name, true, &lock)) < 0)
		return r;
	(void)container_kill(m->run_dir, name, SIGKILL, true);
	if (init > 0)
		(void)instance_wait_gone(init, 10000);
	clean_runtime(m, name);
	instance_cgroup_remove(m, name);
	static const char *const files[] = { "monitor.pid", "console.sock", "seccomp.sock" };
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *path = instance_path(m, name, files[i]);
		if (path)
			(void)unlink(path);
	}
	close(lock); /* the exit status went with the monitor: none is recorded */
	return 0;
}

/* ---- the monitor's exit handler ------------------------------------------ */

static bool wants_restart(const struct instance *in, int status)
{
	if (in->stop_requested)
		return false;
	/* reboot(2) inside a pid namespace ends its init with SIGHUP */
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGHUP)
		return true;
	int kind = RESTART_NO, max = 0;
	const char *pol = strmap_get(&in->config, "boot.restart");
	if (pol)
		(void)instance_restart_policy_parse(pol, &kind, &max);
	if (kind == RESTART_ALWAYS)
		return true;
	if (kind != RESTART_ON_FAILURE)
		return false;
	bool failed = (WIFEXITED(status) && WEXITSTATUS(status) != 0) ||
		      (WIFSIGNALED(status) && WTERMSIG(status) != SIGINT);
	return failed && (max == 0 || in->restarts < max);
}

int instance_monitor_exit(struct manager *m, const char *name, int status)
{
	_cleanup_free_ char *dir = instance_dir(m, name);
	_cleanup_free_ char *pidfile = instance_path(m, name, "monitor.pid");
	_cleanup_free_ char *sock = instance_path(m, name, "console.sock");
	int lock = -1;
	struct instance in;
	/* Out of the instance's cgroup (we were its monitor), so that it can go. */
	instance_cgroup_leave();
	int r = instance_lock_load(m, name, &lock, &in);
	if (r < 0) {
		if (r == -ENOENT) /* deleted meanwhile */
			instance_cgroup_remove(m, name);
		return r == -ENOENT ? 0 : r;
	}
	/* The init is gone; whatever else ran in the instance goes too. */
	lift_io_limits(m, name);
	(void)container_kill(m->run_dir, name, SIGKILL, true);
	clean_runtime(m, name);
	instance_cgroup_remove(m, name);
	if (pidfile)
		(void)unlink(pidfile);
	if (sock)
		(void)unlink(sock);
	_cleanup_free_ char *ssock = instance_path(m, name, "seccomp.sock");
	if (ssock)
		(void)unlink(ssock);
	instance_cgroup_parent_cleanup(m);
	bool again = !strcmp(in.op, "ready") && wants_restart(&in, status);
	int64_t v[] = { status, (int64_t)time(NULL), in.restarts + (again ? 1 : 0) };
	r = instance_update(m, name, "last_exit = ?1, last_exit_at = ?2, restarts = ?3", 3, v);
	if (r < 0 || !again) {
		instance_clear(&in);
		close(lock);
		return r;
	}
	/* Restart in place: this process becomes the monitor again. A short,
	 * growing pause keeps a crashing instance from spinning. */
	in.restarts++;
	unsigned ms = 100u << (in.restarts < 7 ? in.restarts : 7);
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	close(lock);
	nanosleep(&ts, NULL);
	if ((r = instance_lock(m, name, true, &lock)) < 0) {
		instance_clear(&in);
		return r;
	}
	struct instance cur;
	bool stop = true; /* deleted meanwhile */
	if (instance_load(m, name, &cur) == 0) {
		stop = cur.stop_requested || strcmp(cur.op, "ready");
		instance_clear(&cur);
	}
	if (stop) {
		instance_clear(&in);
		close(lock);
		return 0;
	}
	if ((r = write_bundle(m, &in)) == 0) {
		(void)fcntl(lock, F_SETFD, FD_CLOEXEC);
		r = monitor_side(m, &in, -1);
	}
	instance_clear(&in);
	close(lock);
	return r;
}

int instance_start_autostart(struct manager *m, void (*rep)(const char *name, int r, const char *msg),
			     int *ret_started, int *ret_failed)
{
	struct instance *all = NULL;
	size_t n = 0;
	int r = instance_list(m, &all, &n);
	if (r < 0)
		return r;
	int started = 0, failed = 0;
	for (size_t i = 0; i < n; i++) {
		const char *a = strmap_get(&all[i].config, "boot.autostart");
		if (!a || strcmp(a, "true") || all[i].status != INSTANCE_STOPPED)
			continue;
		r = instance_start(m, all[i].name);
		if (r < 0)
			failed++;
		else
			started++;
		if (rep)
			rep(all[i].name, r, r < 0 ? err_msg() : NULL);
	}
	instance_array_free(all, n);
	*ret_started = started;
	*ret_failed = failed;
	return 0;
}

/* ---- live limits and usage ------------------------------------------------ */

static int open_cgroup(struct manager *m, const char *name, cgroup **ret)
{
	container_state st;
	int r = container_load(m->run_dir, name, &st);
	if (r < 0)
		return r;
	r = st.cgroup && *st.cgroup ? cgroup_open(st.cgroup, ret) : err_set(ENOENT, "instance '%s' has no cgroup", name);
	container_state_clear(&st);
	return r;
}

/* A process waiting on throttled I/O (limits.disk.write=1B and an fsync)
 * cannot die: stop, delete and the exit handler lift the instance's disk
 * rate limits first. The configuration keeps them for the next start. */
static void lift_io_limits(struct manager *m, const char *name)
{
	unsigned maj, min;
	_cleanup_free_ char *dir = instance_dir(m, name);
	cgroup *cg = NULL;
	if (dir && storage_block_device(dir, &maj, &min) == 0 && open_cgroup(m, name, &cg) == 0) {
		static const char *const fields[] = { "throttleReadBpsDevice", "throttleWriteBpsDevice",
						      "throttleReadIOPSDevice", "throttleWriteIOPSDevice" };
		json_t *blk = json_object();
		for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
			json_object_set_new(blk, fields[i], json_pack("[{s:i, s:i, s:i}]", "major", maj, "minor", min,
								       "rate", 0));
		_cleanup_json_ json_t *res = json_pack("{s:o}", "blockIO", blk);
		_cleanup_free_ char *text = res ? json_dumps(res, JSON_COMPACT) : NULL;
		spec_resources sr;
		if (text && spec_parse_resources(text, strlen(text), "limits.disk", &sr) == 0) {
			(void)cgroup_apply(cg, &sr); /* best effort: the kill follows anyway */
			spec_resources_free(&sr);
		}
	}
	cgroup_free(cg);
	err_set(0, "%s", "");
}

int instance_apply_limits(struct manager *m, const struct instance *in, const char *key)
{
	_cleanup_json_ json_t *res = NULL;
	int r = instance_resources_json(m, in, &res);
	if (r < 0)
		return r;
	/* A removed limit goes back to "none". */
	int k = limit_key_from_name(key);
	if (!strmap_get(&in->config, key)) {
		switch (k) {
		case LIMIT_MEMORY:
			json_object_set_new(res, "memory", json_pack("{s:I}", "limit", (json_int_t)-1));
			break;
		case LIMIT_PROCESSES:
			json_object_set_new(res, "pids", json_pack("{s:I}", "limit", (json_int_t)-1));
			break;
		case LIMIT_CPU: {
			bool online[256];
			char all[1024] = "";
			size_t off = 0;
			host_cpus(online);
			for (unsigned c = 0; c < 256; c++)
				if (online[c])
					off += (size_t)snprintf(all + off, sizeof all - off, "%s%u", off ? "," : "", c);
			json_object_set_new(res, "cpu", json_pack("{s:s, s:I}", "cpus", all, "quota", (json_int_t)-1));
			break;
		}
		default: {
			unsigned maj, min;
			_cleanup_free_ char *dir = instance_dir(m, in->name);
			if (dir && storage_block_device(dir, &maj, &min) == 0) {
				const char *f = k == LIMIT_DISK_READ ? "throttleReadBpsDevice" : "throttleWriteBpsDevice";
				const char *g = k == LIMIT_DISK_READ ? "throttleReadIOPSDevice" : "throttleWriteIOPSDevice";
				json_object_set_new(res, "blockIO", json_pack("{s:[{s:i, s:i, s:i}], s:[{s:i, s:i, s:i}]}",
									    f, "major", maj, "minor", min, "rate", 0,
									    g, "major", maj, "minor", min, "rate", 0));
			}
		}
		}
	}
	_cleanup_free_ char *text = json_dumps(res, JSON_COMPACT);
	if (!text)
		return err_set(ENOMEM, "limits");
	spec_resources sr;
	if ((r = spec_parse_resources(text, strlen(text), key, &sr)) < 0)
		return r;
	cgroup *cg = NULL;
	if ((r = open_cgroup(m, in->name, &cg)) == 0) {
		/* the instance's own cgroup (payload and monitor) first, then the payload */
		r = instance_cgroup_apply(m, in->name, &sr);
		if (r == 0)
			r = cgroup_apply(cg, &sr);
		struct cgroup_stats st;
		char used[32];
		if (r == -EBUSY && k == LIMIT_MEMORY && cgroup_stats(cg, &st) == 0) {
			/* the kernel could not reclaim down to the new limit */
			r = err_refuse(EBUSY, "%s: \"%s\": instance '%s' uses %s that the kernel cannot reclaim "
				       "(without swap, memory such as /dev/shm stays): free some inside first",
				       key, strmap_get(&in->config, key) ?: "", in->name,
				       image_format_size(st.memory.usage.usage, used, sizeof used));
			cgroup_stats_clear(&st);
		} else if (r < 0)
			r = err_wrap(r, "instance '%s': apply %s", in->name, key);
		cgroup_free(cg);
	}
	spec_resources_free(&sr);
	return r;
}

int instance_usage(struct manager *m, const struct instance *in, struct instance_usage *ret)
{
	memset(ret, 0, sizeof *ret);
	_cleanup_free_ char *dir = instance_dir(m, in->name);
	if (dir)
		(void)storage_usage(dir, in->monitor_pid, &ret->disk);
	if (in->status != INSTANCE_RUNNING && in->status != INSTANCE_FROZEN)
		return 0;
	cgroup *cg = NULL;
	if (open_cgroup(m, in->name, &cg) < 0) {
		err_set(0, "%s", "");
		return 0;
	}
	struct cgroup_stats st;
	if (cgroup_stats(cg, &st) == 0) {
		ret->has_cgroup = true;
		ret->cpu_ns = st.cpu.total;
		ret->memory = st.memory.usage.usage;
		ret->memory_peak = st.memory.usage.max;
		ret->processes = st.pids.current;
		cgroup_stats_clear(&st);
	}
	cgroup_free(cg);
	return 0;
}
