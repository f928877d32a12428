/* Error reporting: one thread-local "last error" slot, set where an error is
 * decided and shown once by the front end.
 *
 * The contract:
 * - A function named for an action returns 0 on success or a negative errno,
 *   and on failure it has put a message in the slot that names the thing
 *   (file, JSON path, instance, field) and the operation: err_set() where the
 *   error is decided, err_wrap() by callers that add context. A caller never
 *   shows err_msg() for a function that returned 0.
 * - The only failures that may come back without a message are -ENOMEM from
 *   allocation helpers and the documented "not found"/"nothing to do" results
 *   a caller handles itself (e.g. -ENOENT from a lookup); such functions say
 *   so in their header. err_wrap() on an empty slot still yields a message
 *   (the context and strerror of r).
 * - An error that is ignored on purpose is cleared (err_clear()) or saved and
 *   put back around cleanup (err_save()/err_restore()), so that cleanup
 *   cannot replace the message of the error being reported.
 * - Library code never prints; the front end shows err_msg(). */
#pragma once
#include <errno.h>
#include <stdarg.h>

/* Record "<fmt>: strerror(errnum)" (or just <fmt> when errnum == 0) and
 * return -errnum (-EINVAL when errnum == 0). */
int err_set(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A refusal: record <fmt> alone (no strerror: the message says why) and
 * return -errnum. */
int err_refuse(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current message with "<fmt>: " and return r unchanged; with
 * an empty slot, the message is "<fmt>: strerror(-r)". */
int err_wrap(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *err_msg(void);
/* True when the slot holds a message. */
int err_has_msg(void);
void err_clear(void);
/* The current message, to be put back after cleanup that may overwrite it:
 * err_restore() sets it again, frees the copy and returns r. */
typedef struct { char *msg; } err_saved;
err_saved err_save(void);
int err_restore(err_saved *saved, int r);
