/* Thread-local last-error slot (see err.h). */
#include "err.h"
#include <stdio.h>
#include <string.h>

static _Thread_local char errbuf[4096];

int err_set(int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	if (errnum > 0 && n >= 0 && (size_t)n < sizeof errbuf)
		snprintf(errbuf + n, sizeof errbuf - n, ": %s", strerror(errnum));
	return errnum > 0 ? -errnum : -EINVAL;
}

int err_wrap(int r, const char *fmt, ...)
{
	char prefix[1024], old[sizeof errbuf];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, errbuf, sizeof old);
	snprintf(errbuf, sizeof errbuf, "%s: %s", prefix, old);
	return r;
}

const char *err_msg(void) { return errbuf[0] ? errbuf : "unknown error"; }
void err_clear(void) { errbuf[0] = '\0'; }
