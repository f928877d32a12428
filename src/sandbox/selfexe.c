/* Read-only handle on the runtime binary for the container init (CVE-2019-5736). */
#include "selfexe.h"
#include "util/err.h"
#include "util/cleanup.h"
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/mount.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

static const char *exe_path = "/proc/self/exe";

void selfexe_set_path(const char *path)
{
	exe_path = path ? path : "/proc/self/exe";
}

/* A detached bind mount of the binary, made read-only: writes through
 * /proc/PID/exe then fail with EROFS, and nobody else can reach the mount. */
static int ro_bind_fd(void)
{
	_cleanup_close_ int tree = (int)syscall(SYS_open_tree, AT_FDCWD, exe_path,
						 OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0)
		return -errno;
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV };
	if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
		return -errno;
	return TAKE_FD(tree);
}

static int sealed_memfd(void)
{
	_cleanup_close_ int src = open(exe_path, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return err_set(errno, "open %s", exe_path);
	struct stat st;
	if (fstat(src, &st) < 0)
		return err_set(errno, "stat %s", exe_path);
	_cleanup_close_ int mfd = memfd_create("isola-oci", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (mfd < 0 && errno == EINVAL)
		mfd = memfd_create("isola-oci", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return err_set(errno, "memfd_create");
	off_t left = st.st_size;
	while (left > 0) {
		ssize_t n = sendfile(mfd, src, NULL, (size_t)left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return err_set(errno, "copy %s", exe_path);
		}
		if (n == 0)
			break;
		left -= n;
	}
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
		return err_set(errno, "seal the runtime copy");
	return TAKE_FD(mfd);
}

int selfexe_protected_fd(void)
{
	int fd = ro_bind_fd();
	if (fd >= 0)
		return fd;
	return sealed_memfd();
}
