/* Instances: the manager's containers (virtual machines join the same model
 * later). Rows in the state database, a directory <state>/instances/<name>
 * (overlay upper layer, generated OCI bundle, console log and socket), the
 * runtime's state under the run directory, and one monitor process per
 * running instance. Every step that touches the host is recorded first, so
 * a command killed at any point leaves something `list` describes and
 * `delete` removes. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "manager/image.h"
#include "manager/strmap.h"

struct manager;

enum instance_status {
	INSTANCE_STOPPED,
	INSTANCE_RUNNING,
	INSTANCE_FROZEN,
	INSTANCE_STARTING, /* runtime state "created": between create and start */
	INSTANCE_STOPPING, /* the init has exited; its monitor is recording that */
	INSTANCE_BUSY,     /* another command is creating or deleting it right now */
	INSTANCE_BROKEN,   /* a create or delete was interrupted: delete it */
	INSTANCE_DEGRADED, /* running, but something it needs is gone: see problem */
};
const char *instance_status_name(enum instance_status s);

struct instance {
	char *name;
	char *type;            /* "container" */
	char *image;           /* fingerprint */
	char *image_alias;     /* first alias of that image, or NULL */
	char *op;              /* "ready", "creating" or "deleting" */
	bool privileged;
	int64_t idmap_base;    /* host id of root inside, -1 when privileged */
	char **command;        /* NULL-terminated, or NULL: the image's /sbin/init */
	int64_t created_at, last_started_at, last_exit_at;
	bool has_last_exit;
	int last_exit;         /* wait status */
	int restarts;          /* automatic restarts since the last `start` */
	bool stop_requested;
	struct strmap config;  /* limits.*, boot.*, environment.* */
	/* live, filled by instance_get/list */
	enum instance_status status;
	pid_t pid;             /* init's host pid when running, else 0 */
	pid_t monitor_pid;
	const char *problem;   /* DEGRADED: what is wrong ("monitor gone"), static */
};
void instance_clear(struct instance *in);
void instance_array_free(struct instance *a, size_t n);

/* The manager's handle: state directory, run directory, database, images. */
int manager_open(const char *state_dir, struct manager **ret);
void manager_close(struct manager *m);
struct image_store *manager_images(struct manager *m);
const char *manager_state_dir(const struct manager *m);
const char *manager_run_dir(const struct manager *m);

struct instance_create_opts {
	const char *image;       /* alias or fingerprint prefix */
	const char *name;
	bool privileged;
	char **command;          /* NULL-terminated or NULL */
	char **config;           /* "key=value" strings (limits.memory=256MiB, environment.K=V, boot.*) */
};
int instance_create(struct manager *m, const struct instance_create_opts *o);
/* Start a stopped instance; returns once its init runs. */
int instance_start(struct manager *m, const char *name);
/* Stop: the stop signal to init (SIGPWR for a system container, SIGTERM for
 * a command), SIGKILL after timeout_s seconds (<0: wait forever) or at once
 * with force. Returns once the monitor has recorded the exit. */
int instance_stop(struct manager *m, const char *name, bool force, int timeout_s);
int instance_delete(struct manager *m, const char *name, bool force);
int instance_get(struct manager *m, const char *name, struct instance *ret);
int instance_list(struct manager *m, struct instance **ret, size_t *ret_n);
/* Start every instance with boot.autostart=true that is not running;
 * *ret_failed counts failures (their messages go to report()). */
int instance_start_autostart(struct manager *m, void (*report)(const char *name, int r, const char *msg),
			     int *ret_started, int *ret_failed);

/* Configuration keys. Limits change live on a running instance. */
int instance_config_set(struct manager *m, const char *name, const char *key, const char *value);
int instance_config_unset(struct manager *m, const char *name, const char *key);
/* Check a key=value pair on its own (create and set use it). */
int instance_config_check(const char *key, const char *value);
/* Check a key name alone (get and unset): -EINVAL naming an unknown key. */
int instance_config_key_check(const char *key);

/* Paths of an instance's files (malloc'd): "console.log", "console.sock", ... */
char *instance_path(const struct manager *m, const char *name, const char *file);

/* A connected socket to the console of the instance's monitor: it first
 * sends one byte with the pty master attached (for TIOCSWINSZ only), then
 * relays bytes both ways. */
int instance_connect_console(const struct manager *m, const char *name);

/* Current usage of a running (or stopped: disk only) instance. */
struct instance_usage {
	bool has_cgroup;
	uint64_t cpu_ns, memory, memory_peak, processes;
	uint64_t disk;          /* bytes in the instance's own layer */
};
int instance_usage(struct manager *m, const struct instance *in, struct instance_usage *ret);

/* The monitor's exit handler: the init exited with wait status `status`.
 * Cleans the runtime state, records the exit, and restarts per boot.restart
 * (then it does not return: it execs the monitor again). */
int instance_monitor_exit(struct manager *m, const char *name, int status);
/* The monitor saw the host's LXCFS daemon die: restart it and mount its
 * files again in the instance (the other instances' monitors do the same). */
int instance_monitor_lxcfs_gone(struct manager *m, const char *name);

/* Names: [A-Za-z][A-Za-z0-9-]*, at most 63 bytes, no trailing '-'. */
int instance_name_check(const char *name);
/* "no", "always", "on-failure" or "on-failure:N" (N 1..1000). */
int instance_restart_policy_parse(const char *s, int *ret_kind, int *ret_max);
enum { RESTART_NO, RESTART_ON_FAILURE, RESTART_ALWAYS };
