/* The running kernel's version, checked once at start: isola needs Linux
 * 5.12 or newer (mount_setattr, used for every bind mount). */
#pragma once
#include <stdbool.h>

#define KERNEL_MIN_MAJOR 5
#define KERNEL_MIN_MINOR 12

/* "5.10.0-28-amd64" -> 5, 10. -EINVAL unless it starts with
 * <digits>.<digits> (each below 2^31). */
int kernel_release_parse(const char *release, unsigned *ret_major, unsigned *ret_minor);
/* Whether `release` is at least major.minor; false if it cannot be parsed. */
bool kernel_release_at_least(const char *release, unsigned major, unsigned minor);
/* uname(), then refuse an older kernel than KERNEL_MIN_*: "Linux 5.12 or
 * newer is needed; this kernel is 5.10.0-28-amd64". */
int kernel_check(void);
