/* isola-oci checkpoint / restore (runc's flags), through CRIU. */
#include "cmd.h"
#include "runtime/checkpoint.h"
#include "util/err.h"
#include <getopt.h>
#include <signal.h>
#include <string.h>

/* runc's default for both: ./checkpoint */
#define DEFAULT_IMAGE_PATH "checkpoint"

enum { OPT_IMAGE = 256, OPT_WORK, OPT_LEAVE, OPT_TCP, OPT_UNIX, OPT_SHELL, OPT_LOCKS, OPT_PIDFILE };

/* The flags checkpoint and restore share; false when opt is not one. */
static bool criu_flag(int opt, struct criu_flags *f)
{
	switch (opt) {
	case OPT_TCP: f->tcp_established = true; return true;
	case OPT_UNIX: f->ext_unix_sk = true; return true;
	case OPT_SHELL: f->shell_job = true; return true;
	case OPT_LOCKS: f->file_locks = true; return true;
	default: return false;
	}
}

#define CRIU_FLAG_OPTIONS                                                                              \
	{ "tcp-established", no_argument, 0, OPT_TCP }, { "ext-unix-sk", no_argument, 0, OPT_UNIX },  \
	{ "shell-job", no_argument, 0, OPT_SHELL }, { "file-locks", no_argument, 0, OPT_LOCKS }

int cmd_checkpoint(int argc, char **argv)
{
	struct checkpoint_opts o = { .image_path = DEFAULT_IMAGE_PATH };
	static const struct option opts[] = {
		{ "image-path", required_argument, 0, OPT_IMAGE }, { "work-path", required_argument, 0, OPT_WORK },
		{ "leave-running", no_argument, 0, OPT_LEAVE }, CRIU_FLAG_OPTIONS, { 0, 0, 0, 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long_only(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case OPT_IMAGE: o.image_path = optarg; break;
		case OPT_WORK: o.work_path = optarg; break;
		case OPT_LEAVE: o.leave_running = true; break;
		default:
			if (!criu_flag(c, &o.f))
				return usage_error("checkpoint", "unknown option (usage: checkpoint [--image-path DIR] "
								 "[--work-path DIR] [--leave-running] [--tcp-established] "
								 "[--ext-unix-sk] [--shell-job] [--file-locks] ID)");
		}
	}
	if (optind != argc - 1)
		return usage_error("checkpoint", "expected exactly one container id");
	if (!*o.image_path)
		return usage_error("checkpoint", "--image-path must not be empty");
	int r = container_checkpoint(g.root, argv[optind], &o);
	return r < 0 ? fail_cmd(r) : 0;
}

int cmd_restore(int argc, char **argv)
{
	struct restore_opts o = { .root = g.root, .bundle = ".", .image_path = DEFAULT_IMAGE_PATH };
	bool detach = false;
	static const struct option opts[] = {
		{ "image-path", required_argument, 0, OPT_IMAGE }, { "work-path", required_argument, 0, OPT_WORK },
		{ "bundle", required_argument, 0, 'b' }, { "detach", no_argument, 0, 'd' },
		{ "pid-file", required_argument, 0, OPT_PIDFILE }, CRIU_FLAG_OPTIONS, { 0, 0, 0, 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long_only(argc, argv, "+b:d", opts, NULL)) != -1) {
		switch (c) {
		case OPT_IMAGE: o.image_path = optarg; break;
		case OPT_WORK: o.work_path = optarg; break;
		case 'b': o.bundle = optarg; break;
		case 'd': detach = true; break;
		case OPT_PIDFILE: o.pid_file = optarg; break;
		default:
			if (!criu_flag(c, &o.f))
				return usage_error("restore", "unknown option (usage: restore [--image-path DIR] "
							      "[--work-path DIR] [--bundle DIR] [--detach] [--pid-file F] "
							      "[--tcp-established] [--ext-unix-sk] [--shell-job] [--file-locks] ID)");
		}
	}
	if (optind != argc - 1)
		return usage_error("restore", "expected exactly one container id");
	if (!*o.image_path)
		return usage_error("restore", "--image-path must not be empty");
	o.id = argv[optind];
	/* In the foreground the restored init is ours to wait for: block the
	 * signals we forward before it exists (criu itself gets them unblocked). */
	sigset_t mask;
	if (!detach)
		block_forwarded_signals(&mask);
	pid_t pid;
	int r = container_restore(&o, &pid);
	if (r < 0)
		return fail_cmd(r);
	if (detach)
		return 0;
	int status = foreground_wait(pid, -1, &mask);
	if (container_delete(g.root, o.id, true) < 0)
		fail_cmd(-1);
	return status;
}
