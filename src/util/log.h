/* Debug messages from library code: the front end decides where they go
 * (isola-oci: stderr with --debug, and the --log file). */
#pragma once

typedef void (*log_hook_fn)(const char *msg);
void log_set_debug_hook(log_hook_fn fn);
void log_debugf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
