/* Thread-local last-error slot (see err.h). */
#include "err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char errbuf[4096];

static int vset(int errnum, const char *fmt, va_list ap)
{
	int n = vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	if (errnum > 0 && n >= 0 && (size_t)n < sizeof errbuf)
		snprintf(errbuf + n, sizeof errbuf - n, ": %s", strerror(errnum));
	return errnum > 0 ? -errnum : -EINVAL;
}

int err_set(int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vset(errnum, fmt, ap);
	va_end(ap);
	return r;
}

int err_refuse(int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	(void)vset(0, fmt, ap);
	va_end(ap);
	return errnum > 0 ? -errnum : -EINVAL;
}

int err_wrap(int r, const char *fmt, ...)
{
	char old[sizeof errbuf];
	size_t oldlen = strnlen(errbuf, sizeof errbuf - 1);
	if (!oldlen) /* nothing to wrap: say at least what failed */
		oldlen = (size_t)snprintf(old, sizeof old, "%s", strerror(r < 0 ? -r : EINVAL));
	else
		memcpy(old, errbuf, oldlen);
	old[oldlen] = '\0';
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n + 2 < sizeof errbuf) {
		size_t room = sizeof errbuf - (size_t)n - 3;
		size_t k = oldlen < room ? oldlen : room;
		memcpy(errbuf + n, ": ", 2);
		memcpy(errbuf + n + 2, old, k);
		errbuf[n + 2 + k] = '\0';
	}
	return r;
}

const char *err_msg(void) { return errbuf[0] ? errbuf : "unknown error"; }
int err_has_msg(void) { return errbuf[0] != '\0'; }
void err_clear(void) { errbuf[0] = '\0'; }

err_saved err_save(void)
{
	return (err_saved){ errbuf[0] ? strdup(errbuf) : NULL };
}

int err_restore(err_saved *saved, int r)
{
	if (saved->msg) {
		snprintf(errbuf, sizeof errbuf, "%s", saved->msg);
		free(saved->msg);
		saved->msg = NULL;
	}
	return r;
}
