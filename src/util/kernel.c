/* The running kernel's version check (see kernel.h). */
#include "kernel.h"
#include "err.h"
#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <sys/utsname.h>

static const char *parse_number(const char *p, unsigned *ret)
{
	if (!isdigit((unsigned char)*p))
		return NULL;
	unsigned long v = 0;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > INT_MAX)
			return NULL;
	}
	*ret = (unsigned)v;
	return p;
}

int kernel_release_parse(const char *release, unsigned *ret_major, unsigned *ret_minor)
{
	unsigned major, minor;
	const char *p = release ? parse_number(release, &major) : NULL;
	if (!p || *p != '.' || !(p = parse_number(p + 1, &minor)))
		return -EINVAL;
	/* What follows the minor number (".0-28-amd64", "-rc1", "+") does not matter. */
	*ret_major = major;
	*ret_minor = minor;
	return 0;
}

bool kernel_release_at_least(const char *release, unsigned major, unsigned minor)
{
	unsigned ma, mi;
	if (kernel_release_parse(release, &ma, &mi) < 0)
		return false;
	return ma > major || (ma == major && mi >= minor);
}

int kernel_check(void)
{
	struct utsname u;
	if (uname(&u) < 0)
		return err_set(errno, "uname");
	if (kernel_release_at_least(u.release, KERNEL_MIN_MAJOR, KERNEL_MIN_MINOR))
		return 0;
	return err_set(0, "Linux %d.%d or newer is needed; this kernel is %s", KERNEL_MIN_MAJOR, KERNEL_MIN_MINOR,
		       u.release);
}
