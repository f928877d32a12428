/* Instance storage: overlayfs over an (idmapped) image rootfs. */
#include "storage.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

static const char *const dirs[] = { "upper", "work", "lower", "rootfs" };

/* upper/ and work/ in the directory dfd (what names it in messages). */
static int make_layer(int dfd, const char *what, const char *image_rootfs, int64_t idmap_base)
{
	struct stat st;
	if (stat(image_rootfs, &st) < 0)
		return err_set(errno, "image rootfs '%s'", image_rootfs);
	for (size_t i = 0; i < 2; i++)
		if (mkdirat(dfd, dirs[i], i == 0 ? (st.st_mode & 07777) : 0700) < 0) {
			if (errno == EEXIST)
				return 0; /* made before */
			return err_set(errno, "mkdir '%s/%s'", what, dirs[i]);
		}
	/* mkdir applies the umask: set the mode the image root has. */
	if (fchmodat(dfd, "upper", st.st_mode & 07777, 0) < 0)
		return err_set(errno, "chmod '%s/upper'", what);
	if (idmap_base >= 0 && fchownat(dfd, "upper", (uid_t)(idmap_base + st.st_uid), (gid_t)(idmap_base + st.st_gid),
					AT_SYMLINK_NOFOLLOW) < 0)
		return err_set(errno, "chown '%s/upper'", what);
	return 0;
}

int storage_create(const char *inst_dir, const char *image_rootfs, int64_t idmap_base)
{
	_cleanup_close_ int dfd = open(inst_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return err_set(errno, "open '%s'", inst_dir);
	int r = make_layer(dfd, inst_dir, image_rootfs, idmap_base);
	for (size_t i = 2; r == 0 && i < ARRAY_SIZE(dirs); i++)
		if (mkdirat(dfd, dirs[i], 0700) < 0 && errno != EEXIST)
			r = err_set(errno, "mkdir '%s/%s'", inst_dir, dirs[i]);
	return r;
}

/* A child parked in a new user namespace while its maps are written and the
 * namespace is opened; the namespace lives on through the fd. */
int storage_userns_fd(int64_t base, uint32_t count)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return err_set(errno, "pipe");
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid < 0) {
		int e = errno;
		close(pfd[0]);
		close(pfd[1]);
		return err_set(e, "clone a user namespace for the idmapped mount");
	}
	if (pid == 0) {
		char c;
		close(pfd[1]);
		(void)!read(pfd[0], &c, 1);
		_exit(0);
	}
	close(pfd[0]);
	char map[64], path[64];
	snprintf(map, sizeof map, "0 %lld %u\n", (long long)base, count);
	int r = 0, fd = -1;
	static const char *const files[] = { "uid_map", "setgroups", "gid_map" };
	for (size_t i = 0; i < ARRAY_SIZE(files) && r == 0; i++) {
		snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, files[i]);
		const char *data = i == 1 ? "deny" : map;
		if ((r = write_file_at(AT_FDCWD, path, data, strlen(data))) < 0)
			r = err_wrap(r, "user namespace for the idmapped mount: write %s", files[i]);
	}
	if (r == 0) {
		snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			r = err_set(errno, "open %s", path);
	}
	close(pfd[1]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return r < 0 ? r : fd;
}

/* An idmapped clone of the image rootfs attached at inst_dir/lower. */
static int mount_idmapped_lower(const char *image_rootfs, const char *lower, int64_t base)
{
	_cleanup_close_ int tree = (int)syscall(SYS_open_tree, AT_FDCWD, image_rootfs,
						OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0)
		return err_set(errno, "open_tree '%s'", image_rootfs);
	_cleanup_close_ int ns = storage_userns_fd(base, IDMAP_RANGE);
	if (ns < 0)
		return ns;
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID,
				   .userns_fd = (uint64_t)ns };
	if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
		return err_set(errno, "idmapped mount of '%s' (mount_setattr MOUNT_ATTR_IDMAP; needs Linux 5.12 "
			       "and a file system that supports it)", image_rootfs);
	if (syscall(SYS_move_mount, tree, "", AT_FDCWD, lower, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return err_set(errno, "attach the idmapped image at '%s'", lower);
	return 0;
}

/* Drop CAP_SYS_RESOURCE from the effective set while the overlay is
 * mounted: the overlay writes with its mounter's credentials, and that
 * capability would let the instance's writes pass the disk quota. */
static bool sys_resource_lower(struct __user_cap_data_struct saved[2])
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	if (syscall(SYS_capget, &h, saved) < 0 || !(saved[0].effective & (1u << CAP_SYS_RESOURCE)))
		return false;
	struct __user_cap_data_struct d[2] = { saved[0], saved[1] };
	d[0].effective &= ~(1u << CAP_SYS_RESOURCE);
	return syscall(SYS_capset, &h, d) == 0;
}

static void sys_resource_restore(struct __user_cap_data_struct saved[2])
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	(void)syscall(SYS_capset, &h, saved);
}

int storage_mount(const char *inst_dir, const char *image_rootfs, int64_t idmap_base)
{
	char rootfs[4096], lower[4096], layer[4096 + 8], opts[3 * 4096 + 64];
	snprintf(rootfs, sizeof rootfs, "%s/rootfs", inst_dir);
	snprintf(lower, sizeof lower, "%s/lower", inst_dir);
	(void)umount2(rootfs, MNT_DETACH); /* a restart in the same namespace */
	(void)umount2(lower, MNT_DETACH);
	const char *low = image_rootfs;
	int r = 0;
	/* With a disk image the layer lives in it: upper/ and work/ are made
	 * there on the first start. */
	snprintf(layer, sizeof layer, "%s", inst_dir);
	if (storage_disk_kind(inst_dir) == STORAGE_DISK_IMAGE) {
		if ((r = storage_disk_mount(inst_dir)) < 0)
			return r;
		snprintf(layer, sizeof layer, "%s/disk", inst_dir);
		_cleanup_close_ int dfd = open(layer, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0)
			return err_set(errno, "open '%s'", layer);
		if ((r = make_layer(dfd, layer, image_rootfs, idmap_base)) < 0)
			return r;
	}
	if (idmap_base >= 0) {
		if ((r = mount_idmapped_lower(image_rootfs, lower, idmap_base)) < 0)
			return r;
		low = lower;
	}
	if (strpbrk(low, ",:") || strpbrk(inst_dir, ",:"))
		return err_set(EINVAL, "overlay: the path '%s' must not contain ',' or ':'", strpbrk(low, ",:") ? low : inst_dir);
	snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s/upper,workdir=%s/work", low, layer, layer);
	struct __user_cap_data_struct caps[2];
	bool lowered = sys_resource_lower(caps);
	if (mount("overlay", rootfs, "overlay", MS_NODEV, opts) < 0)
		r = err_set(errno, "mount overlay on '%s' (%s)", rootfs, opts);
	if (lowered)
		sys_resource_restore(caps);
	return r;
}

int storage_block_device(const char *inst_dir, unsigned *ret_major, unsigned *ret_minor)
{
	struct stat st;
	if (stat(inst_dir, &st) < 0)
		return err_set(errno, "stat '%s'", inst_dir);
	unsigned maj = major(st.st_dev), min = minor(st.st_dev);
	char path[128], link[4096];
	snprintf(path, sizeof path, "/sys/dev/block/%u:%u", maj, min);
	ssize_t n = readlink(path, link, sizeof link - 1);
	if (n < 0)
		return err_set(ENODEV, "'%s' is not on a block device (device %u:%u)", inst_dir, maj, min);
	link[n] = 0;
	/* A partition: the throttle wants its disk, the parent directory. */
	snprintf(path, sizeof path, "/sys/dev/block/%u:%u/partition", maj, min);
	if (access(path, F_OK) == 0) {
		char dev[4200], *buf = NULL;
		snprintf(dev, sizeof dev, "/sys/dev/block/%u:%u/../dev", maj, min);
		int r = read_file_at(AT_FDCWD, dev, &buf, NULL);
		if (r < 0)
			return err_wrap(r, "disk of partition %u:%u", maj, min);
		int ok = sscanf(buf, "%u:%u", &maj, &min);
		free(buf);
		if (ok != 2)
			return err_set(EINVAL, "%s: unexpected content", dev);
	}
	*ret_major = maj;
	*ret_minor = min;
	return 0;
}
