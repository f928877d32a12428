/* Error reporting: one thread-local "last error" slot, set where an error is
 * decided and shown once by the front end. Functions return 0 or -errno. */
#pragma once
#include <errno.h>
#include <stdarg.h>

/* Record "<fmt>: strerror(errnum)" (or just <fmt> when errnum == 0) and
 * return -errnum (-EINVAL when errnum == 0). */
int err_set(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current message with "<fmt>: " and return r unchanged. */
int err_wrap(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *err_msg(void);
void err_clear(void);
