/* Attacker for the exec race tests, run as root inside a container or
 * instance. It polls /proc for processes that the host brings in (the
 * runtime's exec helper) and, for each, tries what a hostile tenant would:
 *   root  - open /proc/PID/root/<marker>: the host's file system through the
 *           helper's root (the marker exists only on the host);
 *   cwd   - open /proc/PID/cwd/<marker-name>: the host directory the exec
 *           was started from;
 *   exe   - open /proc/PID/exe for writing while it is the runtime binary;
 *   attach- PTRACE_SEIZE of a process that is still the runtime (its argv[0]
 *           is "isola-oci"), i.e. before it has become the tenant's command.
 * Usage: exec-race MARKER_PATH STOPFILE [attach]
 * Runs until STOPFILE exists, then prints "scans=N seen=N root=N cwd=N exe=N
 * attach=N" and the first host path it reached, if any. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static long n_root, n_cwd, n_exe, n_attach, n_seen;
static char first_win[1200];

static void win(long *counter, const char *what, int pid)
{
	(*counter)++;
	if (!first_win[0])
		snprintf(first_win, sizeof first_win, "%s via pid %d", what, pid);
}

static int is_runtime(int pid)
{
	char path[64], buf[64] = "";
	snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	return n > 0 && strncmp(buf, "isola-oci", 9) == 0;
}

static void attack(int pid, const char *marker, const char *marker_name, int do_attach)
{
	char path[1024];
	int fd;
	snprintf(path, sizeof path, "/proc/%d/root%s", pid, marker);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		close(fd);
		win(&n_root, path, pid);
	}
	snprintf(path, sizeof path, "/proc/%d/cwd/%s", pid, marker_name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		close(fd);
		win(&n_cwd, path, pid);
	}
	snprintf(path, sizeof path, "/proc/%d/exe", pid);
	if (is_runtime(pid) && (fd = open(path, O_WRONLY | O_CLOEXEC)) >= 0) {
		close(fd);
		win(&n_exe, path, pid);
	}
	if (do_attach && is_runtime(pid) && ptrace(PTRACE_SEIZE, pid, 0, 0) == 0) {
		/* Attached to the runtime while it still runs the runtime's code:
		 * code injection from here on. SEIZE sends no SIGSTOP; stop it
		 * with INTERRUPT just long enough to detach cleanly. */
		int st;
		int still = is_runtime(pid);
		if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0 && waitpid(pid, &st, __WALL) == pid && WIFSTOPPED(st))
			(void)ptrace(PTRACE_DETACH, pid, 0, 0);
		if (still)
			win(&n_attach, "ptrace attach to the runtime", pid);
	}
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: exec-race MARKER_PATH STOPFILE [attach]\n");
		return 2;
	}
	const char *marker = argv[1], *stop = argv[2];
	const char *marker_name = strrchr(marker, '/') ? strrchr(marker, '/') + 1 : marker;
	int do_attach = argc > 3 && !strcmp(argv[3], "attach");
	int self = getpid();
	static unsigned char seen[1 << 19]; /* pid_max 4194304 */
	long scans = 0;
	/* Announce readiness, so the host starts its execs only once we watch. */
	printf("ready\n");
	fflush(stdout);
	while (access(stop, F_OK) != 0) {
		DIR *d = opendir("/proc");
		if (!d)
			return 3;
		struct dirent *e;
		while ((e = readdir(d))) {
			int pid = atoi(e->d_name);
			if (pid <= 1 || pid == self)
				continue;
			if (pid < (1 << 22) && !(seen[pid >> 3] & (1 << (pid & 7)))) {
				seen[pid >> 3] |= (unsigned char)(1 << (pid & 7));
				n_seen++;
			}
			attack(pid, marker, marker_name, do_attach);
		}
		closedir(d);
		scans++;
	}
	printf("scans=%ld seen=%ld root=%ld cwd=%ld exe=%ld attach=%ld\n", scans, n_seen, n_root, n_cwd, n_exe,
	       n_attach);
	if (first_win[0])
		printf("first: %s\n", first_win);
	return 0;
}
