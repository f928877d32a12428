/* The built-in busybox image, built as scripts/mkrootfs.sh does: the host's
 * static /bin/busybox (Debian's busybox-static), one hard link per applet,
 * a few files in /etc, and an inittab so that busybox init can boot it. */
#include "image-internal.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <elf.h>
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define BUSYBOX "/bin/busybox"
/* Part of the fingerprint: bump when the layout built here changes. */
#define BUILTIN_TAG "isola builtin busybox image v2\n"

extern char **environ;

/* A dynamically linked busybox would need the host's loader and libc in
 * the image: refuse one with a PT_INTERP program header. */
static int check_static(int fd)
{
	Elf64_Ehdr eh;
	if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG))
		return err_set(ENOEXEC, "%s: not an ELF executable", BUSYBOX);
	if (eh.e_ident[EI_CLASS] != ELFCLASS64)
		return 0; /* cannot tell cheaply: trust it */
	for (unsigned i = 0; i < eh.e_phnum && i < 256; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) != (ssize_t)sizeof ph)
			return err_set(ENOEXEC, "%s: truncated ELF program headers", BUSYBOX);
		if (ph.p_type == PT_INTERP)
			return err_set(ENOEXEC, "%s is not statically linked: install busybox-static", BUSYBOX);
	}
	return 0;
}

/* Copy the binary into bin/busybox, hashing it on the way. */
static int copy_busybox(int src, int root_fd, char fingerprint[IMAGE_FINGERPRINT_LEN + 1])
{
	_cleanup_close_ int out = openat(root_fd, "bin/busybox", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755);
	if (out < 0)
		return err_set(errno, "built-in image: create bin/busybox");
	struct image_reader *rd = malloc(sizeof *rd);
	if (!rd)
		return err_set(ENOMEM, "built-in image");
	int r = image_reader_init(rd, src, BUSYBOX);
	if (r < 0) {
		free(rd);
		return r;
	}
	EVP_DigestUpdate(rd->md, BUILTIN_TAG, strlen(BUILTIN_TAG));
	for (;;) {
		ssize_t n = read(src, rd->buf, sizeof rd->buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = err_set(errno, "read %s", BUSYBOX);
			break;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(rd->md, rd->buf, (size_t)n);
		if ((r = write_all(out, rd->buf, (size_t)n)) < 0) {
			r = err_set(-r, "built-in image: write bin/busybox");
			break;
		}
	}
	if (r == 0)
		r = image_reader_finish(rd, fingerprint);
	image_reader_free(rd);
	free(rd);
	if (r == 0 && fchmod(out, 0755) < 0)
		r = err_set(errno, "built-in image: chmod bin/busybox");
	return r;
}

/* `busybox --list-full`: one applet path per line (usr/bin/env, sbin/ip). */
static int list_applets(char **ret)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_set(errno, "pipe");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	char *argv[] = { (char *)BUSYBOX, (char *)"--list-full", NULL };
	pid_t pid;
	int e = posix_spawn(&pid, BUSYBOX, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	_cleanup_close_ int rfd = p[0];
	if (e)
		return err_set(e, "run %s --list-full", BUSYBOX);
	size_t cap = 1 << 16, len = 0;
	_cleanup_free_ char *buf = malloc(cap);
	int r = buf ? 0 : err_set(ENOMEM, "busybox applets");
	while (r == 0) {
		if (len + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				r = err_set(ENOMEM, "busybox applets");
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(rfd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = err_set(errno, "read %s --list-full", BUSYBOX);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r < 0)
		return r;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return err_set(EIO, "%s --list-full failed", BUSYBOX);
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	return 0;
}

static int mkdirs(int root_fd, const char *path, mode_t mode)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf;; p++) {
		if (*p == '/' || !*p) {
			char c = *p;
			*p = '\0';
			if (mkdirat(root_fd, buf, 0755) < 0 && errno != EEXIST)
				return err_set(errno, "built-in image: mkdir %s", buf);
			*p = c;
			if (!c)
				break;
		}
	}
	return fchmodat(root_fd, path, mode, 0) < 0 ? err_set(errno, "built-in image: chmod %s", path) : 0;
}

static int write_etc(int root_fd, const char *name, const char *content)
{
	_cleanup_close_ int fd = openat(root_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_set(errno, "built-in image: create %s", name);
	int r = write_all(fd, content, strlen(content));
	return r < 0 ? err_set(-r, "built-in image: write %s", name) : 0;
}

int image_builtin_build(int root_fd, char fingerprint[IMAGE_FINGERPRINT_LEN + 1], char **ret_source)
{
	_cleanup_close_ int src = open(BUSYBOX, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return err_set(errno, "built-in image: %s (install busybox-static)", BUSYBOX);
	int r = check_static(src);
	if (r < 0)
		return err_wrap(r, "built-in image");
	static const struct { const char *path; mode_t mode; } dirs[] = {
		{ "bin", 0755 }, { "sbin", 0755 }, { "usr/bin", 0755 }, { "usr/sbin", 0755 }, { "etc", 0755 },
		{ "root", 0700 }, { "run", 0755 }, { "var", 0755 }, { "proc", 0755 }, { "sys", 0755 },
		{ "dev", 0755 }, { "tmp", 01777 }, { "home/user", 0755 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		if ((r = mkdirs(root_fd, dirs[i].path, dirs[i].mode)) < 0)
			return r;
	if (fchmod(root_fd, 0755) < 0)
		return err_set(errno, "built-in image: chmod rootfs");
	if (geteuid() == 0 && fchownat(root_fd, "home/user", 1000, 1000, AT_SYMLINK_NOFOLLOW) < 0)
		return err_set(errno, "built-in image: chown home/user");
	if ((r = copy_busybox(src, root_fd, fingerprint)) < 0)
		return r;

	_cleanup_free_ char *applets = NULL;
	if ((r = list_applets(&applets)) < 0)
		return r;
	for (char *line = applets, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		_cleanup_free_ char *path = NULL;
		if (!*line || image_member_path(line, "applet", &path) < 0 || !*path || !strcmp(path, "bin/busybox") ||
		    !strcmp(path, "linuxrc"))
			continue;
		char *slash = strrchr(path, '/');
		if (slash) {
			*slash = '\0';
			if ((r = mkdirs(root_fd, path, 0755)) < 0)
				return r;
			*slash = '/';
		}
		if (linkat(root_fd, "bin/busybox", root_fd, path, 0) < 0 && errno != EEXIST)
			return err_set(errno, "built-in image: link %s", path);
	}

	static const struct { const char *name, *content; } etc[] = {
		{ "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"
				"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n" },
		{ "etc/group", "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n" },
		{ "etc/hostname", "isola\n" }, { "etc/hosts", "" }, { "etc/resolv.conf", "" },
		/* busybox init as a system container's PID 1: a shell on the
		 * console; SIGPWR (isola stop) runs the shutdown actions. */
		{ "etc/inittab", "::sysinit:/etc/init.d/rcS\n::respawn:-/bin/cttyhack /bin/sh -l\n::shutdown:/bin/sync\n" },
		{ "etc/init.d/rcS", "#!/bin/sh\necho \"isola: $(hostname) is up\"\n" },
	};
	if ((r = mkdirs(root_fd, "etc/init.d", 0755)) < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(etc); i++)
		if ((r = write_etc(root_fd, etc[i].name, etc[i].content)) < 0)
			return r;
	if (fchmodat(root_fd, "etc/init.d/rcS", 0755, 0) < 0)
		return err_set(errno, "built-in image: chmod etc/init.d/rcS");
	char *s = strdup(BUSYBOX);
	if (!s)
		return err_set(ENOMEM, "built-in image");
	*ret_source = s;
	return 0;
}
