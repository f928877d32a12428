/* Tries to push keystrokes into the terminal the host ran it from: TIOCSTI on
 * fds 0, 1 and 2 and on /dev/tty. Prints one line per attempt,
 * "fd N: injected" or "fd N: <errno name>", and exits 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void try(int fd, const char *label)
{
	const char *payload = "PWNED\n";
	if (!isatty(fd)) {
		printf("%s: not a tty\n", label);
		return;
	}
	for (const char *p = payload; *p; p++)
		if (ioctl(fd, TIOCSTI, p) < 0) {
			printf("%s: %s\n", label, strerrorname_np(errno));
			return;
		}
	printf("%s: injected\n", label);
}

int main(void)
{
	try(0, "fd 0");
	try(1, "fd 1");
	try(2, "fd 2");
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		printf("/dev/tty: %s\n", strerrorname_np(errno));
	else
		try(fd, "/dev/tty");
	fflush(stdout);
	return 0;
}
