/* Debug messages and warnings from library code, routed by the front end
 * (see log.h). */
#include "log.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static log_hook_fn debug_hook, warning_hook;

void log_set_debug_hook(log_hook_fn fn) { debug_hook = fn; }
void log_set_warning_hook(log_hook_fn fn) { warning_hook = fn; }

static void emit(log_hook_fn hook, const char *fmt, va_list ap)
{
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		return; /* out of memory: a warning is not worth failing for */
	hook(msg);
	free(msg);
}

void log_debugf(const char *fmt, ...)
{
	if (!debug_hook)
		return;
	va_list ap;
	va_start(ap, fmt);
	emit(debug_hook, fmt, ap);
	va_end(ap);
}

void log_warnf(const char *fmt, ...)
{
	if (!warning_hook)
		return;
	va_list ap;
	va_start(ap, fmt);
	emit(warning_hook, fmt, ap);
	va_end(ap);
}
