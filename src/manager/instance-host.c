/* What a running instance holds of the host, kept to what it needs: its
 * directory open to its own root group only, a mount namespace for the
 * monitor that lives only while the instance is set up, none of the
 * caller's fds, and a cgroup that holds the instance and its monitor under
 * one set of limits. Also the repair of an instance whose monitor or LXCFS
 * daemon died. */
#include "instance-internal.h"
#include "lxcfs.h"
#include "runtime/container.h"
#include "sandbox/cgroup.h"
#include "spec/spec.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>

#define CGROUP_ROOT "/sys/fs/cgroup"

/* ---- the instance's directory ----------------------------------------------- */

/* The instance's root (host uid and gid idmap_base) must reach rootfs/ and
 * lxcfs/ below it while its init sets up; nobody else needs anything in it.
 * So root:<instance's root gid> 0750, or root's alone for a privileged one.
 * The store above (0711) gives no listing. */
int instance_dir_secure(const char *dir, int64_t idmap_base)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_set(errno, "open '%s'", dir);
	gid_t gid = idmap_base >= 0 ? (gid_t)idmap_base : 0;
	if (fchown(fd, 0, gid) < 0)
		return err_set(errno, "chown '%s'", dir);
	if (fchmod(fd, idmap_base >= 0 ? 0750 : 0700) < 0)
		return err_set(errno, "chmod '%s'", dir);
	return 0;
}

/* ---- what the monitor keeps of the caller ------------------------------------ */

/* Everything the manager opens is close-on-exec; an fd without the flag
 * came from the caller (`isola launch ... 5>&1 | cat`) and must reach
 * neither the monitor nor the instance. */
void instance_close_inherited_fds(void)
{
	int close_these[256];
	size_t n;
	do { /* a batch at a time: closing while reading the directory skips entries */
		_cleanup_closedir_ DIR *d = opendir("/proc/self/fd");
		if (!d)
			return;
		int self = dirfd(d);
		struct dirent *e;
		n = 0;
		while ((e = readdir(d)) && n < ARRAY_SIZE(close_these)) {
			char *end;
			long fd = strtol(e->d_name, &end, 10);
			if (*end || end == e->d_name || fd < 3 || fd == self)
				continue;
			int flags = fcntl((int)fd, F_GETFD);
			if (flags >= 0 && !(flags & FD_CLOEXEC))
				close_these[n++] = (int)fd;
		}
		for (size_t i = 0; i < n; i++)
			(void)close(close_these[i]);
	} while (n == ARRAY_SIZE(close_these));
}

/* ---- the monitor's mount namespace ---------------------------------------------- */

/* A namespace of our own for the overlay and LXCFS mounts the instance's
 * init needs while it builds its root (the host never sees them). It is
 * left again once the instance runs, so that no copy of the host's mount
 * table stays alive behind the monitor: host file systems unmounted later
 * are really gone. Slave, so host unmounts reach it meanwhile. */
int instance_ns_enter(int *ret_host_ns)
{
	_cleanup_close_ int host = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (host < 0)
		return err_set(errno, "open /proc/self/ns/mnt");
	if (unshare(CLONE_NEWNS) < 0)
		return err_set(errno, "unshare a mount namespace for the monitor");
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) {
		int r = err_set(errno, "make the monitor's mounts slaves of the host's");
		(void)setns(host, CLONE_NEWNS);
		return r;
	}
	*ret_host_ns = TAKE_FD(host);
	return 0;
}

int instance_ns_leave(int host_ns)
{
	int r = 0;
	if (host_ns < 0)
		return 0;
	if (setns(host_ns, CLONE_NEWNS) < 0)
		r = err_set(errno, "return to the host's mount namespace");
	close(host_ns);
	return r;
}

/* LXCFS's directory, bound at <inst>/lxcfs in the monitor's namespace: the
 * init (the instance's root) reaches its files through the instance's
 * directory, where the path to the host's mount (/run/isola, 0700) is
 * closed to it. Nothing to do when LXCFS does not serve (no binds then). */
int instance_lxcfs_bind(const char *inst_dir)
{
	const char *lx = lxcfs_dir();
	struct lxcfs_bind *binds = NULL;
	size_t n = 0;
	int r = lxcfs_binds(lx, &binds, &n);
	free(binds);
	if (r < 0 || n == 0)
		return r;
	char target[PATH_MAX];
	snprintf(target, sizeof target, "%s/lxcfs", inst_dir);
	if (mkdir(target, 0700) < 0 && errno != EEXIST)
		return err_set(errno, "mkdir '%s'", target);
	(void)umount2(target, MNT_DETACH); /* an earlier start in this namespace */
	if (mount(lx, target, NULL, MS_BIND, NULL) < 0)
		return err_set(errno, "bind the LXCFS directory '%s' on '%s'", lx, target);
	return 0;
}

/* ---- cgroups: <parent>/<name>/{payload,monitor} ------------------------------------ */

static char *cgroup_leaf(const struct manager *m, const char *name, const char *leaf)
{
	_cleanup_free_ char *inst = instance_cgroup_path(m, name);
	char *p = NULL;
	if (!inst)
		return NULL;
	if (!leaf)
		return TAKE_PTR(inst);
	return asprintf(&p, "%s/%s", inst, leaf) < 0 ? NULL : p;
}

char *instance_cgroup_payload(const struct manager *m, const char *name)
{
	return cgroup_leaf(m, name, "payload");
}

/* linux.resources of the bundle without the CPU pinning: the instance's
 * own cgroup holds the limits its payload and its monitor share; which CPUs
 * the payload runs on is set on the payload alone. */
static int bundle_limits(const char *bundle, spec_resources *ret)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/config.json", bundle);
	json_error_t je;
	_cleanup_(json_decrefp) json_t *c = json_load_file(path, 0, &je);
	if (!c)
		return err_set(EINVAL, "%s: %s", path, je.text);
	json_t *res = json_object_get(json_object_get(c, "linux"), "resources");
	if (!res)
		return err_set(EINVAL, "%s: no linux.resources", path);
	json_t *cpu = json_object_get(res, "cpu");
	if (cpu) {
		json_object_del(cpu, "cpus");
		json_object_del(cpu, "mems");
	}
	_cleanup_free_ char *text = json_dumps(res, JSON_COMPACT);
	if (!text)
		return err_set(ENOMEM, "%s: linux.resources", path);
	return spec_parse_resources(text, strlen(text), path, ret);
}

static int cgroup_open_path(const char *path, cgroup **ret)
{
	_cleanup_free_ char *saved = NULL;
	if (asprintf(&saved, "0:%s", path) < 0)
		return err_set(ENOMEM, "cgroup");
	return cgroup_open(saved, ret);
}

int instance_cgroup_apply(struct manager *m, const char *name, const spec_resources *sr)
{
	_cleanup_free_ char *path = cgroup_leaf(m, name, NULL);
	if (!path)
		return err_set(ENOMEM, "cgroup");
	spec_resources r = *sr;
	r.cpu.cpus = NULL;
	r.cpu.mems = NULL;
	cgroup *cg = NULL;
	int k = cgroup_open_path(path, &cg);
	if (k == 0) {
		k = cgroup_apply(cg, &r);
		cgroup_free(cg);
	}
	return k;
}

int instance_cgroup_setup(struct manager *m, const struct instance *in, const char *bundle)
{
	_cleanup_free_ char *path = cgroup_leaf(m, in->name, NULL);
	_cleanup_free_ char *mpath = cgroup_leaf(m, in->name, "monitor");
	if (!path || !mpath)
		return err_set(ENOMEM, "cgroup");
	spec_resources sr;
	int r = bundle_limits(bundle, &sr);
	if (r < 0)
		return r;
	cgroup *cg = NULL, *mon = NULL;
	if ((r = cgroup_create(path, NULL, &cg)) < 0) {
		r = err_wrap(r, "instance '%s': cgroup", in->name);
		goto out;
	}
	if ((r = cgroup_apply(cg, &sr)) < 0) {
		r = err_wrap(r, "instance '%s': limits", in->name);
		goto out;
	}
	/* The monitor works for the instance (console, log, sysinfo answers):
	 * a leaf beside the payload, charged to the instance's limits. */
	if ((r = cgroup_create(mpath, NULL, &mon)) < 0 || (r = cgroup_enter(mon, getpid())) < 0)
		r = err_wrap(r, "instance '%s': the monitor's cgroup", in->name);
out:
	spec_resources_free(&sr);
	cgroup_free(mon);
	cgroup_free(cg);
	return r;
}

/* The root of every hierarchy: one on cgroup v2, one per v1 mount otherwise. */
static size_t hierarchy_roots(char roots[][PATH_MAX], size_t max)
{
	if (cgroup_mode() == CGROUP_UNIFIED) {
		snprintf(roots[0], PATH_MAX, CGROUP_ROOT);
		return 1;
	}
	size_t n = 0;
	_cleanup_closedir_ DIR *d = opendir(CGROUP_ROOT);
	struct dirent *e;
	while (d && (e = readdir(d)) && n < max)
		if (e->d_name[0] != '.' && e->d_type == DT_DIR)
			snprintf(roots[n++], PATH_MAX, "%s/%s", CGROUP_ROOT, e->d_name);
	return n;
}

/* The exit handler runs in the monitor's leaf; it moves to the root of every
 * hierarchy so that the instance's cgroups can go. */
void instance_cgroup_leave(void)
{
	char roots[32][PATH_MAX];
	size_t n = hierarchy_roots(roots, ARRAY_SIZE(roots));
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX + 16];
		snprintf(path, sizeof path, "%s/cgroup.procs", roots[i]);
		(void)write_file_at(AT_FDCWD, path, "0", 1); /* best effort: rmdir says what is left */
	}
	err_clear();
}

static void rmdir_busy(const char *path)
{
	for (int i = 0; i < 50; i++) {
		if (rmdir(path) == 0 || errno != EBUSY)
			return;
		struct timespec ts = { 0, 20 * 1000000L }; /* tasks still exiting */
		nanosleep(&ts, NULL);
	}
}

void instance_cgroup_remove(const struct manager *m, const char *name)
{
	_cleanup_free_ char *path = cgroup_leaf(m, name, NULL);
	if (!path)
		return;
	char roots[32][PATH_MAX];
	size_t n = hierarchy_roots(roots, ARRAY_SIZE(roots));
	static const char *const leaves[] = { "/monitor", "/payload", "" };
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < ARRAY_SIZE(leaves); k++) {
			char dir[3 * PATH_MAX];
			snprintf(dir, sizeof dir, "%s%s%s", roots[i], path, leaves[k]);
			rmdir_busy(dir);
		}
	instance_cgroup_parent_cleanup(m);
}

/* ---- repairs ----------------------------------------------------------------- */

int instance_lxcfs_repair(struct manager *m, const char *name)
{
	const char *lx = lxcfs_dir();
	int r = lxcfs_ensure(lx);
	if (r < 0)
		return err_wrap(r, "instance '%s': restart LXCFS", name);
	container_state st;
	if (container_load(m->run_dir, name, &st) < 0) {
		err_clear();
		return 0; /* not running: its next start mounts the new daemon's files */
	}
	pid_t init = st.pid;
	bool live = st.status == ST_RUNNING || st.status == ST_PAUSED || st.status == ST_CREATED;
	container_state_clear(&st);
	if (!live || init <= 0)
		return 0;
	unsigned n = 0;
	if ((r = lxcfs_rebind(lx, init, &n)) < 0)
		return err_wrap(r, "instance '%s'", name);
	return 0;
}

int instance_monitor_lxcfs_gone(struct manager *m, const char *name)
{
	return instance_lxcfs_repair(m, name);
}
