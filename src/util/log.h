/* Debug messages and warnings from library code: the library never prints;
 * the front end decides where they go (isola-oci: stderr as
 * "isola-oci: warning: ...", debug with --debug and the --log file; isola:
 * its own prefix). Without a hook they are dropped. */
#pragma once

typedef void (*log_hook_fn)(const char *msg);
void log_set_debug_hook(log_hook_fn fn);
void log_set_warning_hook(log_hook_fn fn);
void log_debugf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Something the caller should know that did not stop the operation. */
void log_warnf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
