/* Debug messages from library code, routed by the front end (see log.h). */
#include "log.h"
#include <stdarg.h>
#include <stdio.h>

static log_hook_fn debug_hook;

void log_set_debug_hook(log_hook_fn fn) { debug_hook = fn; }

void log_debugf(const char *fmt, ...)
{
	if (!debug_hook)
		return;
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	debug_hook(buf);
}
