/* Unit tests of the tree walks in src/manager/storage-tree.c on a real file
 * system under /tmp: a chain of 10000 directories with hostile entries
 * (symlinks to / and to a file outside, a mode 000 directory, files without
 * permissions, immutable and append-only attributes when the file system and
 * our capabilities allow them) is measured and removed with only 24 file
 * descriptors allowed, and nothing outside the tree is touched. */
#include "manager/storage.h"
#include "util/err.h"
#include "unit.h"
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEPTH 10000

static void write_file(int dfd, const char *name, size_t bytes, mode_t mode)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	CHECK(fd >= 0);
	static char buf[65536];
	memset(buf, 'z', sizeof buf);
	for (size_t done = 0, n; fd >= 0 && done < bytes; done += n) {
		n = bytes - done < sizeof buf ? bytes - done : sizeof buf;
		CHECK(write(fd, buf, n) == (ssize_t)n);
	}
	if (fd >= 0)
		close(fd);
}

static bool set_attr(int dfd, const char *name, int flag)
{
	int fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int flags = 0;
	bool ok = fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags |= flag, ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0);
	if (fd >= 0)
		close(fd);
	return ok;
}

/* The chain, with hostile entries every 1000 levels; returns whether
 * attributes could be set. */
static bool make_tree(int base, const char *outside)
{
	CHECK_INT(mkdirat(base, "tree", 0755), 0);
	int fd = openat(base, "tree", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool attrs = false;
	for (int i = 0; fd >= 0 && i < DEPTH; i++) {
		if (i % 1000 == 0) {
			CHECK_INT(symlinkat("/", fd, "root"), 0);
			CHECK_INT(symlinkat(outside, fd, "outside"), 0);
			write_file(fd, "closed", 100, 0000);
			CHECK_INT(mkdirat(fd, "shut", 0755), 0);
			int s = openat(fd, "shut", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			write_file(s, "x", 10, 0600);
			close(s);
			CHECK_INT(fchmodat(fd, "shut", 0000, 0), 0);
			write_file(fd, "immutable", 10, 0644);
			write_file(fd, "append", 10, 0644);
			attrs = set_attr(fd, "immutable", FS_IMMUTABLE_FL) && set_attr(fd, "append", FS_APPEND_FL);
		}
		CHECK_INT(mkdirat(fd, "d", 0755), 0);
		int n = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		CHECK(n >= 0);
		close(fd);
		fd = n;
	}
	write_file(fd, "bottom", 1 << 20, 0644);
	/* an immutable directory at the bottom, holding a file */
	CHECK_INT(mkdirat(fd, "frozen", 0755), 0);
	int f = openat(fd, "frozen", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	write_file(f, "in", 10, 0644);
	close(f);
	attrs = set_attr(fd, "frozen", FS_IMMUTABLE_FL) && attrs;
	close(fd);
	return attrs;
}

static void test_deep_tree(void)
{
	char base_path[] = "/tmp/isola-unit-tree.XXXXXX";
	CHECK(mkdtemp(base_path) != NULL);
	int base = open(base_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(base >= 0);
	char outside[sizeof base_path + 16];
	snprintf(outside, sizeof outside, "%s/keep", base_path);
	write_file(base, "keep", 5, 0644);
	bool attrs = make_tree(base, outside);
	if (!attrs)
		fprintf(stderr, "  (no immutable attributes here: that part is not tested)\n");

	/* Only a few descriptors: a walk that holds one per level fails. */
	struct rlimit old, low;
	CHECK_INT(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = (struct rlimit){ 24, old.rlim_max }; /* a raised hard limit needs CAP_SYS_RESOURCE */
	CHECK_INT(setrlimit(RLIMIT_NOFILE, &low), 0);
	int tree = openat(base, "tree", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	uint64_t used = 0;
	int r = storage_tree_usage(tree, "tree", &used);
	if (r < 0)
		fprintf(stderr, "  usage: %s\n", err_msg());
	CHECK_INT(r, 0);
	CHECK(used >= (1 << 20) + (uint64_t)DEPTH * 4096);
	close(tree);
	r = storage_tree_remove(base, "tree", "tree");
	if (r < 0)
		fprintf(stderr, "  remove: %s\n", err_msg());
	CHECK_INT(r, 0);
	CHECK_INT(setrlimit(RLIMIT_NOFILE, &old), 0);
	struct stat st;
	CHECK(fstatat(base, "tree", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
	/* what the symlinks pointed to is still there */
	CHECK_INT(fstatat(base, "keep", &st, 0), 0);
	CHECK_INT(st.st_size, 5);
	CHECK_INT(access("/tmp", F_OK), 0);
	/* gone already: not an error */
	CHECK_INT(storage_tree_remove(base, "tree", "tree"), 0);
	/* a file, a symlink */
	write_file(base, "f", 1, 0000);
	CHECK_INT(storage_tree_remove(base, "f", "f"), 0);
	CHECK_INT(symlinkat("/tmp", base, "l"), 0);
	CHECK_INT(storage_tree_remove(base, "l", "l"), 0);
	CHECK(fstatat(base, "l", &st, AT_SYMLINK_NOFOLLOW) < 0);
	CHECK_INT(storage_tree_remove(base, "keep", "keep"), 0);
	close(base);
	CHECK_INT(rmdir(base_path), 0);
}

static int count(int dirfd, const char *name, const struct stat *st, void *userdata)
{
	(*(int *)userdata)++;
	return 0;
}

static int stop_at_three(int dirfd, const char *name, const struct stat *st, void *userdata)
{
	return ++*(int *)userdata == 3 ? -ECANCELED : 0;
}

static void test_walk(void)
{
	char base_path[] = "/tmp/isola-unit-walk.XXXXXX";
	CHECK(mkdtemp(base_path) != NULL);
	int base = open(base_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK_INT(mkdirat(base, "a", 0755), 0);
	CHECK_INT(mkdirat(base, "a/b", 0755), 0);
	write_file(base, "a/b/f", 1, 0644);
	write_file(base, "g", 1, 0644);
	CHECK_INT(symlinkat("/", base, "s"), 0);
	int n = 0;
	CHECK_INT(storage_tree_walk(base, base_path, count, &n), 0);
	CHECK_INT(n, 5); /* a, a/b, a/b/f, g, s: the symlink is not followed */
	n = 0;
	CHECK_INT(storage_tree_walk(base, base_path, stop_at_three, &n), -ECANCELED);
	CHECK_INT(n, 3);
	close(base);
	CHECK_INT(storage_tree_remove(AT_FDCWD, base_path, base_path), 0);
	CHECK(access(base_path, F_OK) < 0);
}

int main(void)
{
	test_walk();
	test_deep_tree();
	return unit_done("test-manager-storage");
}
