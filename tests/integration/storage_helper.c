/* A small static program the storage tests copy into an instance's image and
 * run inside it, as the tenant would (test_isola_storage.py):
 *   deep DIR DEPTH BYTES   a chain of DEPTH directories "d" under DIR, made
 *                          with *at() calls (no path length limit), with
 *                          hostile entries every 500 levels (symlinks to /
 *                          and .., a file and a directory with mode 000, a
 *                          fifo) and a file of BYTES bytes at the bottom
 *   fill FILE              write 1 MiB blocks until a write fails; prints
 *                          "<bytes written> <errno name>"
 *   chattr PATH +i|+a      set the immutable or append-only attribute
 *   protect DIR            a subtree with chattr +i/+a files and a mode 000
 *                          directory owned by root (privileged instances)
 *   setproj PATH ID        move PATH to another quota project (prints
 *                          "refused <errno name>" when the kernel says no)
 * Exits non-zero with a message on an unexpected failure. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "storage_helper: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void write_bytes(int dfd, const char *name, long long bytes, mode_t mode)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		die(name);
	static char buf[1 << 16];
	memset(buf, 'x', sizeof buf);
	while (bytes > 0) {
		size_t n = bytes < (long long)sizeof buf ? (size_t)bytes : sizeof buf;
		if (write(fd, buf, n) != (ssize_t)n)
			die("write");
		bytes -= (long long)n;
	}
	close(fd);
}

static void hostile(int dfd)
{
	if (symlinkat("/", dfd, "to-root") < 0 || symlinkat("..", dfd, "to-parent") < 0)
		die("symlink");
	write_bytes(dfd, "no-perm", 4096, 0000);
	if (mkdirat(dfd, "locked", 0755) < 0)
		die("mkdir locked");
	int l = openat(dfd, "locked", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l < 0)
		die("open locked");
	write_bytes(l, "inside", 100, 0600);
	if (mkdirat(l, "sub", 0000) < 0)
		die("mkdir locked/sub");
	close(l);
	if (fchmodat(dfd, "locked", 0000, 0) < 0)
		die("chmod locked");
	if (mkfifoat(dfd, "fifo", 0600) < 0)
		die("mkfifo");
}

static int deep(const char *dir, long depth, long long bytes)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die(dir);
	for (long i = 0; i < depth; i++) {
		if (i % 500 == 0)
			hostile(fd);
		if (mkdirat(fd, "d", 0755) < 0)
			die("mkdir");
		int nfd = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (nfd < 0)
			die("open");
		close(fd);
		fd = nfd;
	}
	write_bytes(fd, "bottom", bytes, 0644);
	close(fd);
	printf("made %ld levels\n", depth);
	return 0;
}

static int fill(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die(path);
	static char buf[1 << 20];
	memset(buf, 'y', sizeof buf);
	long long total = 0;
	int err = 0;
	for (;;) {
		ssize_t n = write(fd, buf, sizeof buf);
		if (n < 0) {
			err = errno;
			break;
		}
		total += n;
		if (n < (ssize_t)sizeof buf) {
			/* a short write: the next one says why */
			continue;
		}
	}
	if (fsync(fd) < 0 && !err)
		err = errno;
	close(fd);
	const char *name = err == ENOSPC ? "ENOSPC" : err == EDQUOT ? "EDQUOT" : strerror(err);
	printf("%lld %s\n", total, name);
	return 0;
}

static int set_flag(const char *path, const char *flag)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		die(path);
	int flags = 0;
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0)
		die("FS_IOC_GETFLAGS");
	flags |= !strcmp(flag, "+a") ? FS_APPEND_FL : FS_IMMUTABLE_FL;
	if (ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0)
		die("FS_IOC_SETFLAGS");
	close(fd);
	return 0;
}

static int protect(const char *dir)
{
	if (mkdir(dir, 0755) < 0)
		die(dir);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die(dir);
	write_bytes(fd, "immutable", 1000, 0644);
	write_bytes(fd, "append-only", 1000, 0644);
	if (mkdirat(fd, "frozen-dir", 0755) < 0)
		die("mkdir frozen-dir");
	int f = openat(fd, "frozen-dir", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	write_bytes(f, "kept", 10, 0644);
	close(f);
	if (mkdirat(fd, "closed", 0000) < 0)
		die("mkdir closed");
	char p[4096];
	snprintf(p, sizeof p, "%s/immutable", dir);
	set_flag(p, "+i");
	snprintf(p, sizeof p, "%s/append-only", dir);
	set_flag(p, "+a");
	snprintf(p, sizeof p, "%s/frozen-dir", dir);
	set_flag(p, "+i");
	close(fd);
	return 0;
}

static int setproj(const char *path, const char *id)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		die(path);
	struct fsxattr fa;
	if (ioctl(fd, FS_IOC_FSGETXATTR, &fa) < 0)
		die("FS_IOC_FSGETXATTR");
	fa.fsx_projid = (unsigned)atol(id);
	if (ioctl(fd, FS_IOC_FSSETXATTR, &fa) < 0)
		printf("refused %s\n", strerror(errno));
	else
		printf("moved\n");
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "deep"))
		return deep(argv[2], atol(argv[3]), atoll(argv[4]));
	if (argc == 3 && !strcmp(argv[1], "fill"))
		return fill(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "chattr"))
		return set_flag(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "protect"))
		return protect(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "setproj"))
		return setproj(argv[2], argv[3]);
	fprintf(stderr, "usage: storage_helper deep DIR DEPTH BYTES | fill FILE | chattr PATH +i|+a | protect DIR | setproj PATH ID\n");
	return 2;
}
