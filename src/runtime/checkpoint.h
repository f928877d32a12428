/* Checkpoint and restore of a container through the CRIU command line
 * (`criu dump` / `criu restore`, found in PATH).
 *
 * A checkpoint directory holds CRIU's images plus one file of ours,
 * CHECKPOINT_INFO_FILE, written only after `criu dump` succeeded: the
 * external mounts and files of the container and how to reconnect them.
 * `restore` refuses a directory without it. When a dump fails, the image
 * directory keeps whatever CRIU wrote (partial images and, when the work
 * directory is the image directory, dump.log) for diagnosis, but never the
 * info file, so it cannot be mistaken for a complete checkpoint; a stale
 * info file from an earlier checkpoint in the same directory is removed
 * before CRIU starts. A failed dump leaves the container as it was. */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

#define CHECKPOINT_INFO_FILE "isola-checkpoint.json"

/* Options both directions share (runc's flag names). */
struct criu_flags {
	bool tcp_established; /* --tcp-established */
	bool ext_unix_sk;     /* --ext-unix-sk */
	bool shell_job;       /* --shell-job */
	bool file_locks;      /* --file-locks */
};

struct checkpoint_opts {
	const char *image_path; /* required (the front end defaults it to ./checkpoint) */
	const char *work_path;  /* CRIU's work directory and dump.log; NULL: image_path */
	bool leave_running;     /* else the container is deleted after a successful dump */
	struct criu_flags f;
};

/* Dump the running (or paused) container `id` to o->image_path. On failure
 * the message names CRIU and quotes the last errors of its log, plus the
 * output of `criu check` when that fails too. */
int container_checkpoint(const char *root, const char *id, const struct checkpoint_opts *o);

struct restore_opts {
	const char *root;       /* state root */
	const char *id;
	const char *bundle;     /* default "." */
	const char *image_path; /* required */
	const char *work_path;  /* NULL: image_path */
	const char *pid_file;
	struct criu_flags f;
};

/* Restore a checkpoint as a new container `id` in the running state (its
 * state directory, cgroup and config as `create` would make them). The
 * restored init becomes a child of the calling process; its standard
 * streams are the caller's where they were a pipe or a file from outside
 * the container at checkpoint time. Prestart/createRuntime hooks are not
 * run (the CRIU command line has no point to run them at). */
int container_restore(const struct restore_opts *o, pid_t *ret_pid);
