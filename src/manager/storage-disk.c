/* The disk limit of an instance (limits.disk): a project quota on its layer
 * where the store's file system enforces them, else a sparse ext4 image
 * loop-mounted in the monitor's mount namespace. See storage.h. */
#include "storage.h"
#include "manager/image.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <fcntl.h>
#include <inttypes.h>
#include <linux/dqblk_xfs.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <linux/quota.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef EXT4_IOC_RESIZE_FS
#define EXT4_IOC_RESIZE_FS _IOW('f', 16, __u64)
#endif
#define DISK_IMAGE "disk.img"
#define DISK_MNT "disk"
#define DISK_BLOCK 4096ULL
/* Project ids are looked for from here up (other users of project quotas
 * on the same file system usually take small numbers). */
#define PROJID_FIRST 0x10000000u
#define KEY "limits.disk"

extern char **environ;

static const char *fmt_size(uint64_t bytes, char *buf, size_t len)
{
	return image_format_size(bytes, buf, len);
}

/* ---- project quotas -------------------------------------------------------- */

static int quotactl_fd(int fd, unsigned cmd, unsigned id, void *addr)
{
	return (int)syscall(SYS_quotactl_fd, fd, cmd, id, addr);
}

/* Does the file system of fd enforce project quota limits? */
static bool quota_enforced(int fd)
{
	struct fs_quota_statv sv = { .qs_version = FS_QSTATV_VERSION1 };
	return quotactl_fd(fd, QCMD(Q_XGETQSTATV, PRJQUOTA), 0, &sv) == 0 && (sv.qs_flags & FS_QUOTA_PDQ_ENFD);
}

static int project_get(int fd, unsigned *ret)
{
	struct fsxattr fa;
	if (ioctl(fd, FS_IOC_FSGETXATTR, &fa) < 0)
		return -errno;
	*ret = fa.fsx_projid;
	return 0;
}

static int project_set(int fd, unsigned id)
{
	struct fsxattr fa;
	if (ioctl(fd, FS_IOC_FSGETXATTR, &fa) < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (fa.fsx_projid == id && (!S_ISDIR(st.st_mode) || (fa.fsx_xflags & FS_XFLAG_PROJINHERIT)))
		return 0;
	fa.fsx_projid = id;
	if (S_ISDIR(st.st_mode))
		fa.fsx_xflags |= FS_XFLAG_PROJINHERIT;
	return ioctl(fd, FS_IOC_FSSETXATTR, &fa) < 0 ? -errno : 0;
}

static int quota_get(int fd, unsigned id, struct if_dqblk *q)
{
	memset(q, 0, sizeof *q);
	return quotactl_fd(fd, QCMD(Q_GETQUOTA, PRJQUOTA), id, q) < 0 ? -errno : 0;
}

/* Set the hard limit of project id (0: none). */
static int quota_set(int fd, unsigned id, uint64_t bytes)
{
	struct if_dqblk q = { .dqb_bhardlimit = (bytes + QIF_DQBLKSIZE - 1) / QIF_DQBLKSIZE, .dqb_valid = QIF_BLIMITS };
	return quotactl_fd(fd, QCMD(Q_SETQUOTA, PRJQUOTA), id, &q) < 0 ? -errno : 0;
}

static bool quota_free(int fd, unsigned id)
{
	struct if_dqblk q;
	return quota_get(fd, id, &q) == 0 && !q.dqb_curspace && !q.dqb_curinodes && !q.dqb_bhardlimit &&
	       !q.dqb_bsoftlimit && !q.dqb_ihardlimit && !q.dqb_isoftlimit;
}

/* Move an entry of the tree into the project. Opened through O_PATH and
 * reopened only when it is a file or directory: a tenant swapping in a
 * device node meanwhile gets it opened by nobody. */
static int tag_entry(int dirfd, const char *name, const struct stat *st, void *userdata)
{
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
		return 0; /* symlinks and special files carry no data; they inherit when made */
	_cleanup_close_ int p = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	struct stat now;
	if (p < 0 || fstat(p, &now) < 0 || (!S_ISREG(now.st_mode) && !S_ISDIR(now.st_mode)))
		return 0; /* gone or changed meanwhile */
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", p);
	_cleanup_close_ int fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int r = project_set(fd, *(unsigned *)userdata);
	return r < 0 ? err_set(-r, KEY ": move '%s' into the quota project", name) : 0;
}

/* Put upper/ and work/ with all they hold into a project of their own and
 * limit it. The instances directory is locked while a free project id is
 * chosen and taken, so two instances never get the same one. */
static int quota_attach(int dfd, const char *inst_dir, uint64_t bytes)
{
	_cleanup_close_ int upper = openat(dfd, "upper", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int work = openat(dfd, "work", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (upper < 0 || work < 0)
		return err_set(errno, KEY ": open '%s/upper'", inst_dir);
	unsigned id = 0;
	int r = project_get(upper, &id);
	if (r < 0)
		return err_set(-r, KEY ": '%s/upper': project id", inst_dir);
	if (id == 0) {
		_cleanup_close_ int parent = openat(dfd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (parent < 0 || flock(parent, LOCK_EX) < 0)
			return err_set(errno, KEY ": lock the instances directory");
		struct stat st;
		if (fstat(upper, &st) < 0)
			return err_set(errno, "stat '%s/upper'", inst_dir);
		id = PROJID_FIRST + (unsigned)(st.st_ino % 0x40000000u);
		for (unsigned tries = 0; !quota_free(upper, id); tries++, id++)
			if (tries > 100000 || id >= 0xfffffff0u)
				return err_refuse(ENOSPC, KEY ": no free quota project id on the store's file system");
		if ((r = project_set(upper, id)) < 0 || (r = project_set(work, id)) < 0)
			return err_set(-r, KEY ": '%s': set the quota project", inst_dir);
		if ((r = quota_set(upper, id, bytes)) < 0)
			return err_set(-r, KEY ": set the quota of project %u", id);
	}
	/* What is already there (a limit added later) moves into the project. */
	char what[4200];
	snprintf(what, sizeof what, "%s/upper", inst_dir);
	if ((r = storage_tree_walk(upper, what, tag_entry, &id)) < 0)
		return r;
	snprintf(what, sizeof what, "%s/work", inst_dir);
	if ((r = storage_tree_walk(work, what, tag_entry, &id)) < 0)
		return r;
	if ((r = quota_set(upper, id, bytes)) < 0)
		return err_set(-r, KEY ": set the quota of project %u", id);
	return 0;
}

/* ---- disk images ------------------------------------------------------------ */

/* Run an e2fsprogs tool; its first line of error output goes into the
 * message. -ENOENT when the tool is not installed. */
static int run_tool(const char *const argv[], const char *why)
{
	if (!argv[0])
		return -ENOENT;
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return err_set(errno, "pipe");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	pid_t pid;
	int e = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (e != 0) {
		close(pfd[0]);
		return e == ENOENT ? -ENOENT : err_set(e, "%s: run %s", why, argv[0]);
	}
	char out[512] = "";
	ssize_t n = read_all(pfd[0], out, sizeof out - 1);
	close(pfd[0]);
	out[n > 0 ? n : 0] = 0;
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	/* e2fsck: 1 = errors corrected, which is fine */
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
	if (code == 0 || (code == 1 && strstr(argv[0], "e2fsck")))
		return 0;
	char *nl = strchr(out, '\n');
	if (nl)
		*nl = 0;
	return err_refuse(EIO, "%s: %s failed (exit %d)%s%s", why, argv[0], code, *out ? ": " : "", out);
}

/* PATH lookup that also tries the sbin directories (e2fsprogs lives there,
 * often not in a user's PATH). NULL when not found. */
static const char *tool_path(const char *name, char *buf, size_t len)
{
	const char *path = getenv("PATH");
	_cleanup_free_ char *dirs = NULL;
	if (asprintf(&dirs, "%s:/usr/sbin:/sbin", path && *path ? path : "/usr/bin:/bin") < 0)
		return NULL;
	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		struct stat st;
		snprintf(buf, len, "%s/%s", d, name);
		if (*d == '/' && stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
			return buf;
	}
	return NULL;
}

static int image_create(int dfd, const char *inst_dir, uint64_t bytes)
{
	uint64_t size = bytes / DISK_BLOCK * DISK_BLOCK;
	_cleanup_close_ int fd = openat(dfd, DISK_IMAGE, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(errno, KEY ": create '%s/" DISK_IMAGE "'", inst_dir);
	if (ftruncate(fd, (off_t)size) < 0)
		return err_set(errno, KEY ": size '%s/" DISK_IMAGE "'", inst_dir);
	char img[4200], tool[4200], why[4300];
	snprintf(img, sizeof img, "%s/" DISK_IMAGE, inst_dir);
	snprintf(why, sizeof why, KEY ": make the disk image '%s'", img);
	/* 4 KiB blocks whatever the size, so it can grow; no blocks reserved
	 * for root (it would be the instance's root); nothing zeroed now. */
	const char *argv[] = { tool_path("mke2fs", tool, sizeof tool), "-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0",
			       "-E", "nodiscard,lazy_itable_init=1,lazy_journal_init=1", img, NULL };
	int r = run_tool(argv, why);
	if (r == -ENOENT) {
		char dir[4200];
		snprintf(dir, sizeof dir, "%s/..", inst_dir);
		char *real = realpath(dir, NULL);
		r = err_refuse(EOPNOTSUPP, KEY ": the store's file system (%s) has no project quotas (ext4 or xfs "
			       "mounted with prjquota) and mke2fs (e2fsprogs) was not found to make a disk image",
			       real ? real : dir);
		free(real);
	}
	if (r < 0)
		return r;
	/* The layer lives in the image now. */
	if (unlinkat(dfd, "upper", AT_REMOVEDIR) < 0 || unlinkat(dfd, "work", AT_REMOVEDIR) < 0 ||
	    mkdirat(dfd, DISK_MNT, 0700) < 0)
		return err_set(errno, KEY ": '%s'", inst_dir);
	return 0;
}

/* The loop device of a mounted image, from the device of its root. */
static int loop_open_dev(dev_t dev)
{
	char path[128], *buf = NULL;
	snprintf(path, sizeof path, "/sys/dev/block/%u:%u/uevent", major(dev), minor(dev));
	if (read_file_at(AT_FDCWD, path, &buf, NULL) < 0)
		return -ENODEV;
	char *name = strstr(buf, "DEVNAME=");
	char node[128] = "";
	if (name && !strncmp(name + 8, "loop", 4))
		snprintf(node, sizeof node, "/dev/%.*s", (int)strcspn(name + 8, "\n"), name + 8);
	free(buf);
	if (!*node)
		return -ENODEV;
	int fd = open(node, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_rdev != dev)) {
		close(fd);
		return -ENODEV;
	}
	return fd < 0 ? -errno : fd;
}

/* Attach the image to a free loop device that clears itself when its last
 * user goes. The image is flock'ed through the file the loop device keeps:
 * while any loop device has it, nobody attaches or resizes it again. */
static int loop_attach(const char *img, int *ret_fd)
{
	_cleanup_close_ int fd = open(img, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return err_set(errno, "open '%s'", img);
	/* A loop device of an instance that just stopped goes away by itself. */
	for (int i = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; i++) {
		if (errno != EWOULDBLOCK || i >= 100)
			return err_set(errno == EWOULDBLOCK ? EBUSY : errno, "'%s' is in use", img);
		nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
	}
	_cleanup_close_ int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return err_set(errno, "open /dev/loop-control");
	for (int tries = 0; tries < 32; tries++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0)
			return err_set(errno, "find a free loop device");
		char dev[64];
		snprintf(dev, sizeof dev, "/dev/loop%d", n);
		int lfd = open(dev, O_RDWR | O_CLOEXEC);
		if (lfd < 0 && errno == ENOENT)
			continue;
		if (lfd < 0)
			return err_set(errno, "open %s", dev);
		struct loop_config cfg = { .fd = (unsigned)fd };
		cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
		if (ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0) {
			*ret_fd = lfd;
			return 0;
		}
		int e = errno;
		close(lfd);
		if (e != EBUSY)
			return err_set(e, "%s: attach '%s'", dev, img);
		/* another process took it between GET_FREE and CONFIGURE */
	}
	return err_set(EBUSY, "no free loop device for '%s'", img);
}

static bool is_mounted(const char *inst_dir)
{
	char mnt[4200];
	snprintf(mnt, sizeof mnt, "%s/" DISK_MNT, inst_dir);
	struct stat a, b;
	return stat(inst_dir, &a) == 0 && stat(mnt, &b) == 0 && a.st_dev != b.st_dev;
}

int storage_disk_mount(const char *inst_dir)
{
	if (is_mounted(inst_dir))
		return 0; /* a restart in the same namespace */
	char img[4200], mnt[4200], src[64];
	snprintf(img, sizeof img, "%s/" DISK_IMAGE, inst_dir);
	snprintf(mnt, sizeof mnt, "%s/" DISK_MNT, inst_dir);
	int lfd = -1;
	int r = loop_attach(img, &lfd);
	if (r < 0)
		return err_wrap(r, "instance disk");
	snprintf(src, sizeof src, "/proc/self/fd/%d", lfd);
	if (mount(src, mnt, "ext4", MS_NODEV | MS_NOSUID, "errors=remount-ro") < 0)
		r = err_set(errno, "mount the disk image '%s' on '%s'", img, mnt);
	close(lfd); /* the mount holds the device now; without one it clears itself */
	return r;
}

/* ---- the image's size and use ------------------------------------------------- */

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Size and bytes in use of an unmounted image, from its superblock (the
 * kernel writes the free count and the metadata overhead there). */
static int image_sb(int fd, const char *img, uint64_t *ret_size, uint64_t *ret_used)
{
	unsigned char sb[1024];
	if (pread(fd, sb, sizeof sb, 1024) != (ssize_t)sizeof sb || sb[0x38] != 0x53 || sb[0x39] != 0xef)
		return err_refuse(EINVAL, "'%s': not an ext4 file system", img);
	uint64_t bs = 1024ULL << (le32(sb + 0x18) & 15);
	uint64_t blocks = le32(sb + 0x4) | (uint64_t)le32(sb + 0x150) << 32;
	uint64_t free_ = le32(sb + 0xc) | (uint64_t)le32(sb + 0x158) << 32;
	uint64_t overhead = le32(sb + 0x248);
	uint64_t used = blocks > free_ ? blocks - free_ : 0;
	if (ret_size)
		*ret_size = blocks * bs;
	/* Never mounted: no overhead recorded yet, and nothing written. */
	if (ret_used)
		*ret_used = overhead == 0 || overhead > used ? 0 : (used - overhead) * bs;
	return 0;
}

int storage_disk_hold(const char *inst_dir)
{
	if (storage_disk_kind(inst_dir) != STORAGE_DISK_IMAGE)
		return 0;
	char mnt[4200];
	snprintf(mnt, sizeof mnt, "%s/" DISK_MNT, inst_dir);
	_cleanup_close_ int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat a, b;
	if (fd < 0 || fstat(fd, &a) < 0 || stat(inst_dir, &b) < 0)
		return err_set(errno, "open '%s'", mnt);
	if (a.st_dev == b.st_dev)
		return err_set(ENOENT, "'%s' is not mounted", mnt);
	if (dup2(fd, STORAGE_DISK_HOLD_FD) < 0) /* without O_CLOEXEC: through the monitor's execs */
		return err_set(errno, "hold '%s'", mnt);
	return 0;
}

/* The image's mount as the instance's monitor sees it: an fd on its root,
 * through the fd the monitor holds (storage_disk_hold), or else through its
 * root directory (a monitor still in its own mount namespace). */
static int open_mounted(const char *inst_dir, pid_t mnt_pid)
{
	char path[4300];
	struct stat a, b, up;
	if (stat(inst_dir, &b) < 0)
		return -errno;
	snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)mnt_pid, STORAGE_DISK_HOLD_FD);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &a) == 0 && a.st_dev != b.st_dev &&
	    fstatat(fd, "upper", &up, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(up.st_mode))
		return fd;
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof path, "/proc/%d/root%s/" DISK_MNT, (int)mnt_pid, inst_dir);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &a) < 0 || a.st_dev == b.st_dev) {
		close(fd);
		return -ENOENT; /* not mounted there (yet, or any more) */
	}
	return fd;
}

static bool is_mounted_in(const char *inst_dir, pid_t mnt_pid)
{
	int fd = open_mounted(inst_dir, mnt_pid);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

static int image_used(const char *inst_dir, pid_t mnt_pid, uint64_t *ret)
{
	if (mnt_pid > 0) {
		_cleanup_close_ int fd = open_mounted(inst_dir, mnt_pid);
		struct statfs sf;
		if (fd >= 0 && fstatfs(fd, &sf) == 0) {
			*ret = (uint64_t)(sf.f_blocks - sf.f_bfree) * (uint64_t)sf.f_bsize;
			return 0;
		}
	}
	char img[4200];
	snprintf(img, sizeof img, "%s/" DISK_IMAGE, inst_dir);
	_cleanup_close_ int fd = open(img, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(errno, "open '%s'", img);
	return image_sb(fd, img, NULL, ret);
}

/* Grow the mounted image of a running instance. */
static int image_grow_online(const char *inst_dir, const char *img, uint64_t size, pid_t mnt_pid)
{
	_cleanup_close_ int root = open_mounted(inst_dir, mnt_pid);
	if (root < 0)
		return err_refuse(EBUSY, KEY ": the disk image of the running instance is not reachable: stop it first");
	struct stat st;
	if (fstat(root, &st) < 0)
		return err_set(errno, "stat '%s'", img);
	_cleanup_close_ int fd = open(img, O_RDWR | O_CLOEXEC);
	_cleanup_close_ int loop = loop_open_dev(st.st_dev);
	if (fd < 0 || fstat(fd, &st) < 0)
		return err_set(errno, "open '%s'", img);
	if (loop < 0)
		return err_set(-loop, KEY ": '%s': its loop device", img);
	off_t old = st.st_size;
	if (ftruncate(fd, (off_t)size) < 0)
		return err_set(errno, KEY ": grow '%s'", img);
	__u64 blocks = size / DISK_BLOCK;
	int r = 0;
	if (ioctl(loop, LOOP_SET_CAPACITY, 0) < 0)
		r = err_set(errno, KEY ": '%s': the loop device's new size", img);
	else if (ioctl(root, EXT4_IOC_RESIZE_FS, &blocks) < 0)
		r = errno == EPERM ? err_refuse(EPERM, KEY ": ext4 grows a mounted file system only for a process with "
						"CAP_SYS_RESOURCE, which this host does not give: stop the instance, "
						"then set " KEY " again")
				   : err_set(errno, KEY ": grow the file system in '%s'", img);
	if (r < 0 && ftruncate(fd, old) == 0)
		(void)ioctl(loop, LOOP_SET_CAPACITY, 0); /* best effort: as it was */
	return r;
}

/* Resize the image of a stopped instance: e2fsck, then resize2fs. */
static int image_resize_offline(const char *img, uint64_t size, uint64_t old)
{
	_cleanup_close_ int fd = open(img, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return err_set(errno, "open '%s'", img);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return err_refuse(EBUSY, KEY ": '%s' is still mounted (the instance is stopping): try again", img);
	if (size > old && ftruncate(fd, (off_t)size) < 0)
		return err_set(errno, KEY ": grow '%s'", img);
	char fsck[4200], resize[4200], arg[64], why[4300];
	snprintf(why, sizeof why, KEY ": resize '%s'", img);
	snprintf(arg, sizeof arg, "%" PRIu64 "K", size / 1024);
	const char *check[] = { tool_path("e2fsck", fsck, sizeof fsck), "-f", "-p", img, NULL };
	const char *rs[] = { tool_path("resize2fs", resize, sizeof resize), img, arg, NULL };
	int r = run_tool(check, why);
	if (r == 0)
		r = run_tool(rs, why);
	if (r == -ENOENT)
		r = err_refuse(EOPNOTSUPP, "%s: e2fsck and resize2fs (e2fsprogs) are needed", why);
	if (r < 0) {
		if (size > old)
			(void)!ftruncate(fd, (off_t)old); /* best effort: as it was */
		return r;
	}
	if (size < old && ftruncate(fd, (off_t)size) < 0)
		return err_set(errno, KEY ": shrink '%s'", img);
	return 0;
}

/* Mount the image once in a mount namespace of its own and let it go:
 * resize2fs clears the metadata overhead the kernel records in the
 * superblock at mount time, which the usage of a stopped instance needs. */
static void image_mount_once(const char *inst_dir)
{
	pid_t pid = fork();
	if (pid == 0) {
		int r = -1;
		if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
			r = storage_disk_mount(inst_dir);
		_exit(r < 0 ? 1 : 0); /* the namespace, the mount and the loop device go with us */
	}
	while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static int image_resize(const char *inst_dir, uint64_t bytes, pid_t mnt_pid)
{
	char img[4200], a[32], b[32];
	snprintf(img, sizeof img, "%s/" DISK_IMAGE, inst_dir);
	if (bytes == 0)
		return err_refuse(EINVAL, KEY ": the instance's files live in a disk image of that size: it cannot be "
				  "removed, only changed");
	uint64_t size = bytes / DISK_BLOCK * DISK_BLOCK, used = 0, old = 0;
	_cleanup_close_ int fd = open(img, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(errno, "open '%s'", img);
	/* The file system's own size: the superblock's count changes only
	 * when a resize is complete. */
	int r = image_sb(fd, img, &old, NULL);
	if (r == 0)
		r = image_used(inst_dir, mnt_pid, &used);
	if (r < 0)
		return r;
	if (size == old)
		return 0;
	bool running = mnt_pid > 0 && is_mounted_in(inst_dir, mnt_pid);
	if (running && size < old)
		return err_refuse(EBUSY, KEY ": the disk image of a running instance can only grow: stop it to "
				  "shrink it");
	/* ext4 keeps its own metadata (journal, inode tables) on top. */
	if (size < old && used + used / 16 + (8ULL << 20) > size)
		return err_refuse(ENOSPC, KEY ": %s: the instance has %s in use", fmt_size(bytes, a, sizeof a),
				  fmt_size(used, b, sizeof b));
	if (running)
		return image_grow_online(inst_dir, img, size, mnt_pid);
	close(TAKE_FD(fd));
	if ((r = image_resize_offline(img, size, old)) == 0)
		image_mount_once(inst_dir);
	return r;
}

/* ---- the interface ----------------------------------------------------------- */

enum storage_disk storage_disk_kind(const char *inst_dir)
{
	_cleanup_close_ int dfd = open(inst_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return STORAGE_DISK_NONE;
	if (faccessat(dfd, DISK_IMAGE, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return STORAGE_DISK_IMAGE;
	_cleanup_close_ int upper = openat(dfd, "upper", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	unsigned id = 0;
	if (upper >= 0 && project_get(upper, &id) == 0 && id != 0)
		return STORAGE_DISK_QUOTA;
	return STORAGE_DISK_NONE;
}

int storage_disk_create(const char *inst_dir, uint64_t bytes)
{
	_cleanup_close_ int dfd = open(inst_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return err_set(errno, "open '%s'", inst_dir);
	if (quota_enforced(dfd))
		return quota_attach(dfd, inst_dir, bytes);
	return image_create(dfd, inst_dir, bytes);
}

int storage_disk_resize(const char *inst_dir, uint64_t bytes, pid_t mnt_pid)
{
	_cleanup_close_ int dfd = open(inst_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return err_set(errno, "open '%s'", inst_dir);
	enum storage_disk kind = storage_disk_kind(inst_dir);
	if (kind == STORAGE_DISK_IMAGE)
		return image_resize(inst_dir, bytes, mnt_pid);
	if (kind == STORAGE_DISK_NONE && bytes == 0)
		return 0;
	if (!quota_enforced(dfd)) {
		if (kind == STORAGE_DISK_QUOTA && bytes == 0)
			return 0; /* the store lost its quotas: nothing is enforced anyway */
		return err_refuse(EOPNOTSUPP, KEY ": the store's file system has no project quotas (ext4 or xfs "
				  "mounted with prjquota): a disk limit can only be given when the instance is "
				  "created (it then gets a disk image)");
	}
	if (kind == STORAGE_DISK_NONE)
		return quota_attach(dfd, inst_dir, bytes);
	_cleanup_close_ int upper = openat(dfd, "upper", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	unsigned id = 0;
	int r;
	if (upper < 0 || (r = project_get(upper, &id)) < 0)
		return err_set(errno, "open '%s/upper'", inst_dir);
	struct if_dqblk q;
	if ((r = quota_get(upper, id, &q)) < 0)
		return err_set(-r, KEY ": read the quota of project %u", id);
	char a[32], b[32];
	if (bytes && q.dqb_curspace > bytes)
		return err_refuse(ENOSPC, KEY ": %s: the instance has %s in use", fmt_size(bytes, a, sizeof a),
				  fmt_size(q.dqb_curspace, b, sizeof b));
	if ((r = quota_set(upper, id, bytes)) < 0)
		return err_set(-r, KEY ": set the quota of project %u", id);
	return 0;
}

void storage_disk_release(int dirfd, const char *name)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/upper", name);
	_cleanup_close_ int upper = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	unsigned id = 0;
	if (upper >= 0 && project_get(upper, &id) == 0 && id != 0)
		(void)quota_set(upper, id, 0); /* best effort: the files go next */
}

int storage_usage(const char *inst_dir, pid_t mnt_pid, uint64_t *ret)
{
	enum storage_disk kind = storage_disk_kind(inst_dir);
	if (kind == STORAGE_DISK_IMAGE)
		return image_used(inst_dir, mnt_pid, ret);
	char path[4200];
	snprintf(path, sizeof path, "%s/upper", inst_dir);
	_cleanup_close_ int upper = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (upper < 0)
		return err_set(errno, "open '%s'", path);
	unsigned id = 0;
	struct if_dqblk q;
	if (kind == STORAGE_DISK_QUOTA && project_get(upper, &id) == 0 && quota_get(upper, id, &q) == 0) {
		*ret = q.dqb_curspace;
		return 0;
	}
	return storage_tree_usage(upper, path, ret);
}
