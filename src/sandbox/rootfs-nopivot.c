/* --no-pivot: the host's root stays in the container's mount namespace,
 * beneath the container's chroot. The kernel lets a new procfs or sysfs be
 * mounted in a user namespace only where one of that filesystem is already
 * fully visible in the mount namespace, and the host's /proc and /sys are:
 * a process of the container that makes a nested user, mount and pid
 * namespace could mount a /proc without the container's maskedPaths and
 * readonlyPaths (/proc/kcore, /proc/sysrq-trigger, /proc/sys writable for
 * its namespaces). So before the chroot every procfs and sysfs mount of the
 * host (its whole filesystem, outside the rootfs) is detached, or, where it
 * is locked (a user namespace copied it), covered with an empty read-only
 * tmpfs: once locked in the nested copy, that cover keeps it from being
 * fully visible. */
#include "rootfs-internal.h"
#include "util/err.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/mount.h>

struct mi {
	uint64_t id, parent;
	bool target; /* a whole procfs or sysfs */
	char *mountpoint;
};

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/* The next space-separated field of *p, NUL-terminated; NULL at the end. */
static char *field(char **p)
{
	char *f = *p;
	if (!f || !*f)
		return NULL;
	char *sp = strchr(f, ' ');
	if (sp) {
		*sp = '\0';
		*p = sp + 1;
	} else {
		*p = NULL;
	}
	return f;
}

/* One line: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE ...". */
static bool parse_line(char *line, struct mi *m)
{
	char *p = line, *f[6];
	for (int i = 0; i < 6; i++)
		if (!(f[i] = field(&p)))
			return false;
	char *fstype;
	while ((fstype = field(&p)) && strcmp(fstype, "-"))
		;
	if (!fstype || !(fstype = field(&p)))
		return false;
	m->id = strtoull(f[0], NULL, 10);
	m->parent = strtoull(f[1], NULL, 10);
	m->target = !strcmp(f[3], "/") && (!strcmp(fstype, "proc") || !strcmp(fstype, "sysfs"));
	unescape(f[4]);
	m->mountpoint = f[4];
	return true;
}

static const struct mi *find_id(const struct mi *v, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].id == id)
			return &v[i];
	return NULL;
}

/* m lies in the rootfs (the mount root_id or one beneath it). */
static bool beneath(const struct mi *v, size_t n, const struct mi *m, uint64_t root_id)
{
	for (size_t depth = 0; m && depth <= n; depth++) {
		if (m->id == root_id)
			return true;
		if (m->parent == m->id)
			break;
		m = find_id(v, n, m->parent);
	}
	return false;
}

static int mount_id_of(int fd, uint64_t *ret)
{
	struct statx stx;
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID, &stx) < 0)
		return -errno;
	if (!(stx.stx_mask & STATX_MNT_ID))
		return -EOPNOTSUPP;
	*ret = stx.stx_mnt_id;
	return 0;
}

static int cover(int fd, const char *where)
{
	_cleanup_close_ int fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0 || syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "size", "0", 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "000", 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return err_set(errno, "--no-pivot: make a tmpfs to cover the host's %s", where);
	_cleanup_close_ int mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC,
					       MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	if (mnt < 0 || syscall(SYS_move_mount, mnt, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return err_set(errno, "--no-pivot: cover the host's %s", where);
	return 0;
}

int rootfs_hide_host_kernfs(int rootfd)
{
	uint64_t root_id;
	int r = mount_id_of(rootfd, &root_id);
	if (r < 0)
		return err_set(-r, "--no-pivot: mount id of the rootfs");
	_cleanup_free_ char *text = NULL;
	if ((r = read_file_at(AT_FDCWD, "/proc/self/mountinfo", &text, NULL)) < 0)
		return err_wrap(r, "--no-pivot: read the mount table");
	size_t n = 0, cap = 0;
	_cleanup_free_ struct mi *v = NULL;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (n == cap) {
			struct mi *nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof *v);
			if (!nv)
				return err_set(ENOMEM, "--no-pivot: read the mount table");
			v = nv;
		}
		if (parse_line(line, &v[n]))
			n++;
	}
	for (size_t i = 0; i < n; i++) {
		if (!v[i].target || beneath(v, n, &v[i], root_id))
			continue;
		/* Gone already (with a mount above it), or the path now leads
		 * elsewhere (covered by another mount): nothing to do here. */
		_cleanup_close_ int fd = open(v[i].mountpoint, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		uint64_t id;
		if (fd < 0 || mount_id_of(fd, &id) < 0 || id != v[i].id)
			continue;
		/* Our mount tree is a slave of the host's: nothing propagates back. */
		if (umount2(v[i].mountpoint, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
			continue;
		if (errno != EINVAL && errno != EPERM)
			return err_set(errno, "--no-pivot: detach the host's %s", v[i].mountpoint);
		if ((r = cover(fd, v[i].mountpoint)) < 0)
			return r;
	}
	return 0;
}
