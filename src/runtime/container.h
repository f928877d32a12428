/* The OCI container lifecycle: create / start / state / kill / delete and
 * the state directory <root>/<id>. */
#pragma once
#include <stdbool.h>
#include <sys/types.h>
#include "spec/spec.h"

#define ISOLA_OCI_VERSION "1.1.0"

enum container_status { ST_CREATING, ST_CREATED, ST_RUNNING, ST_PAUSED, ST_STOPPED };
extern const char *const container_status_names[];

/* Most fds after 0-2 that --preserve-fds may pass on. */
#define RUNTIME_PRESERVE_FDS_MAX 65536

struct create_opts {
	const char *root;           /* state root, e.g. /run/isola-oci */
	const char *id;
	const char *bundle;         /* default "." */
	const char *pid_file;
	const char *console_socket; /* path, or NULL */
	int console_fd;             /* already connected console socket (run), or -1 */
	bool no_pivot;
	int preserve_fds;
	bool keep_parent;           /* run: stay the init's parent (we wait for it) */
};

/* The state of one container, read from its state directory. */
typedef struct {
	char *id, *bundle, *rootfs, *created, *owner, *cgroup;
	pid_t pid;
	unsigned long long starttime;
	enum container_status status;
	char *annotations_json; /* JSON object text */
	char *config_copy;      /* raw config kept for poststart/poststop hooks, or NULL */
} container_state;

int container_create(const struct create_opts *o, pid_t *ret_pid);
int container_start(const char *root, const char *id);
/* Load state and compute the live status. */
int container_load(const char *root, const char *id, container_state *ret);
/* The same, with config_copy read (start, delete, exec, checkpoint). */
int container_load_with_config(const char *root, const char *id, container_state *ret);
void container_state_clear(container_state *st);
/* The spec's state JSON (plus runc's rootfs/created/owner). */
char *container_state_json(const container_state *st);
int container_kill(const char *root, const char *id, int sig, bool all);
int container_delete(const char *root, const char *id, bool force);
/* Every container id in root (sorted); *ret NULL-terminated. */
int container_list_ids(const char *root, char ***ret);
/* The hidden `init` entry point, run in the container after re-exec. */
int container_init_main(int sync_fd);

/* For restore (runtime/checkpoint.c): the container cgroup as create makes
 * it (linux.cgroupsPath, resources, default device rules), and state.json
 * (status running) plus the config copy in the existing <root>/<id>. */
struct cgroup;
int container_restore_cgroup(const oci_spec *s, const char *id, struct cgroup **ret);
int container_write_restored_state(const char *root, const char *id, pid_t pid, const oci_spec *s,
				   const char *raw, size_t rawlen, const char *cgpath);
