/* `exec`: another process in a created or running container. The container's
 * saved config, with process replaced and every namespace pointed at the
 * init's, goes through the same child and init code as create. */
#include "exec.h"
#include "container.h"
#include "internal.h"
#include "sandbox/ns.h"
#include "sync.h"
#include "sandbox/cgroup.h"
#include "sandbox/seccomp.h"
#include "sandbox/selfexe.h"
#include "util/err.h"
#include "util/cleanup.h"
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static int set_env(json_t *proc, const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (!eq)
		return err_set(0, "--env: \"%s\" is not KEY=VALUE", kv);
	json_t *env = json_object_get(proc, "env");
	if (!json_is_array(env)) {
		env = json_array();
		json_object_set_new(proc, "env", env);
	}
	size_t i;
	json_t *v;
	json_array_foreach(env, i, v) {
		const char *e = json_string_value(v);
		if (e && !strncmp(e, kv, (size_t)(eq - kv) + 1))
			return json_array_set_new(env, i, json_string(kv)) ? -ENOMEM : 0;
	}
	return json_array_append_new(env, json_string(kv)) ? -ENOMEM : 0;
}

static int parse_id(const char *s, const char *what, json_int_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	/* (u32)-1 would mean "unchanged" to setresuid: ids are 0..2^31-1. */
	if (!*s || *s == '-' || *end || errno || v > 0x7fffffffULL)
		return err_set(0, "%s: \"%s\" is not a numeric id from 0 to 2147483647", what, s);
	*ret = (json_int_t)v;
	return 0;
}

/* The process object exec runs: --process, or the container's own with
 * the flags applied. */
static int build_process(const struct exec_opts *o, json_t *config, json_t **ret)
{
	json_t *proc;
	if (o->process_file) {
		json_error_t je;
		proc = json_load_file(o->process_file, 0, &je);
		if (!proc)
			return err_set(0, "%s:%d:%d: %s", o->process_file, je.line, je.column, je.text);
		if (!json_is_object(proc)) {
			json_decref(proc);
			return err_set(0, "%s: a process object is expected", o->process_file);
		}
	} else {
		proc = json_deep_copy(json_object_get(config, "process"));
		if (!proc)
			proc = json_object();
		if (!o->args || !o->args[0]) {
			json_decref(proc);
			return err_set(0, "exec: no command given");
		}
		json_t *args = json_array();
		for (char **a = o->args; *a; a++)
			json_array_append_new(args, json_string(*a));
		json_object_set_new(proc, "args", args);
		json_object_set_new(proc, "terminal", json_false());
	}
	int r = 0;
	for (char **e = o->env; e && *e && r == 0; e++)
		r = set_env(proc, *e);
	if (r == 0 && o->cwd)
		json_object_set_new(proc, "cwd", json_string(o->cwd));
	if (r == 0 && o->tty >= 0)
		json_object_set_new(proc, "terminal", json_boolean(o->tty));
	/* The size is set before the process runs: a copy made afterwards
	 * races with its first look at the terminal. */
	if (r == 0 && o->tty == 1 && o->rows && o->cols)
		json_object_set_new(proc, "consoleSize", json_pack("{s:i, s:i}", "height", o->rows, "width", o->cols));
	if (r == 0 && o->no_new_privs)
		json_object_set_new(proc, "noNewPrivileges", json_true());
	json_t *user = json_object_get(proc, "user");
	if (!json_is_object(user)) {
		user = json_pack("{s:i, s:i}", "uid", 0, "gid", 0);
		json_object_set_new(proc, "user", user);
	}
	if (r == 0 && o->user) {
		_cleanup_free_ char *u = strdup(o->user);
		char *colon = u ? strchr(u, ':') : NULL;
		json_int_t uid, gid;
		if (colon)
			*colon = '\0';
		if (!u)
			r = -ENOMEM;
		else if ((r = parse_id(u, "--user", &uid)) == 0) {
			json_object_set_new(user, "uid", json_integer(uid));
			if (colon && (r = parse_id(colon + 1, "--user", &gid)) == 0)
				json_object_set_new(user, "gid", json_integer(gid));
		}
	}
	if (r == 0 && o->additional_gids) {
		json_t *g = json_array();
		for (char **a = o->additional_gids; *a && r == 0; a++) {
			json_int_t gid;
			if ((r = parse_id(*a, "--additional-gids", &gid)) == 0)
				json_array_append_new(g, json_integer(gid));
		}
		json_object_set_new(user, "additionalGids", g);
	}
	if (r == 0 && o->caps) {
		json_t *caps = json_object_get(proc, "capabilities");
		if (!json_is_object(caps)) {
			caps = json_object();
			json_object_set_new(proc, "capabilities", caps);
		}
		static const char *const sets[] = { "bounding", "effective", "permitted", "ambient", "inheritable" };
		for (size_t i = 0; i < ARRAY_SIZE(sets); i++) {
			json_t *set = json_object_get(caps, sets[i]);
			if (!json_is_array(set)) {
				set = json_array();
				json_object_set_new(caps, sets[i], set);
			}
			for (char **c = o->caps; *c; c++)
				json_array_append_new(set, json_string(*c));
		}
	}
	if (r < 0) {
		json_decref(proc);
		return r;
	}
	*ret = proc;
	return 0;
}

/* The container's config with `proc` as process and every namespace it has
 * joined through the init's /proc/PID/ns entries. */
static int exec_config(const struct exec_opts *o, const container_state *st, char **ret, size_t *ret_len)
{
	json_error_t je;
	json_t *config = json_loads(st->config_copy, 0, &je);
	if (!config)
		return err_set(0, "container \"%s\": saved config is unreadable: %s", o->id, je.text);
	json_t *proc = NULL;
	int r = build_process(o, config, &proc);
	if (r < 0) {
		json_decref(config);
		return r;
	}
	json_object_set_new(config, "process", proc);
	json_object_del(config, "hooks");
	json_t *lx = json_object_get(config, "linux");
	json_object_del(lx, "timeOffsets");
	json_t *nss = json_object_get(lx, "namespaces");
	size_t i;
	json_t *ns;
	json_array_foreach(nss, i, ns) {
		const char *type = json_string_value(json_object_get(ns, "type"));
		for (int t = 0; type && t < NS__MAX; t++) {
			if (strcmp(type, spec_ns_names[t]))
				continue;
			char path[64];
			snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)st->pid, spec_ns_proc_names[t]);
			json_object_set_new(ns, "path", json_string(path));
		}
	}
	*ret = json_dumps(config, JSON_COMPACT);
	json_decref(config);
	if (!*ret)
		return err_set(ENOMEM, "exec");
	*ret_len = strlen(*ret);
	return 0;
}

/* The exec'd process: its pid and, when it is not our child (pid
 * namespace), a pidfd, so that a failure never signals a reused pid. */
struct exec_proc {
	pid_t child;  /* our child: the process itself, or the init that forks it */
	pid_t pid;
	int pidfd;
};

static void exec_proc_kill(struct exec_proc *p)
{
	if (p->pidfd >= 0)
		(void)syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
	if (p->child > 0) {
		kill(p->child, SIGKILL); /* not reaped yet: the pid is its own */
		waitpid(p->child, NULL, 0);
		p->child = 0;
	}
}

static int exec_handshake(int sync, const oci_spec *s, const struct exec_opts *o, struct exec_proc *p,
			  const char *raw, size_t rawlen, int console_fd, const int ns_fds[NS__MAX], const char *cgpath,
			  bool joined)
{
	struct sync_msg m;
	int r;
	cgroup *cg = NULL;
	bool pidns = s->linux.ns[NS_PID].present;
	/* The init re-executed at once: it reads the process first, joins the
	 * namespaces, waits to be in the cgroup, then forks into the pid
	 * namespace (init.c, slow_enter). */
	struct init_opts io = { 0 };
	io.flags = INIT_EXEC | INIT_SLOW | (s->linux.ns[NS_USER].present ? INIT_USERNS : 0) |
		   (s->linux.seccomp.present ? INIT_SECCOMP : 0) | (s->linux.ns[NS_MOUNT].present ? INIT_MOUNTNS : 0);
	io.fifo_fd = io.status_fd = io.exe_fd = -1;
	for (int t = 0; t < NS__MAX; t++)
		io.ns_fds[t] = ns_fds[t];
	io.console_fd = console_fd;
	io.preserve_fds = o->preserve_fds;
	snprintf(io.id, sizeof io.id, "%s", o->id);
	if ((r = sync_send(sync, SYNC_CONFIG, raw, rawlen, -1)) < 0 ||
	    (r = sync_send(sync, SYNC_OPTS, &io, sizeof io, -1)) < 0)
		return err_set(-r, "exec: send the process");
	if (!joined && cgpath[0] && (r = cgroup_open(cgpath, &cg)) == 0) {
		r = cgroup_enter(cg, p->child);
		cgroup_free(cg);
		if (r < 0)
			return err_wrap(r, "exec: join the container's cgroup");
	}
	if ((r = sync_send(sync, SYNC_MAPPED, NULL, 0, -1)) < 0)
		return err_set(-r, "exec: start the process");
	if (s->linux.seccomp.present && (r = runtime_send_seccomp(sync, s, o->root)) < 0)
		return r;
	if (!pidns)
		p->pid = p->child;
	else {
		/* The init joins the mount namespace, then forks into the pid
		 * namespace: its child's pid (and pidfd) comes first. */
		if ((r = sync_expect(sync, SYNC_PID, &m)) < 0)
			return r;
		int32_t pid;
		memcpy(&pid, m.data, sizeof pid);
		p->pid = pid;
		p->pidfd = m.fd;
		m.fd = -1;
		sync_msg_clear(&m);
		waitpid(p->child, NULL, 0);
		p->child = 0;
	}
	/* The socket closes when the process execs; an error comes first. */
	for (;;) {
		r = sync_recv(sync, &m);
		if (r == -EPIPE)
			return 0;
		if (r < 0)
			return err_set(-r, "exec: read from the process");
		if (m.type == SYNC_ERROR) {
			err_set(0, "%s", (char *)m.data);
			sync_msg_clear(&m);
			return -EIO;
		}
		if (m.type == SYNC_LISTENER) {
			r = runtime_send_listener(s, o->id, "running", p->pid, "", m.fd);
			sync_msg_clear(&m);
			if (r < 0)
				return r;
			continue;
		}
		sync_msg_clear(&m);
	}
}

int container_exec(const struct exec_opts *o, pid_t *ret_pid)
{
	*ret_pid = 0;
	container_state st;
	int r = container_load_with_config(o->root, o->id, &st);
	if (r < 0)
		return r;
	oci_spec *s = NULL;
	_cleanup_free_ char *raw = NULL;
	size_t rawlen = 0;
	/* The namespaces are joined only after the re-exec (slow path). */
	struct child_args ca = { .sync = -1, .exe_fd = -1, .fifo_fd = -1, .status_fd = -1, .console_fd = o->console_fd,
				 .slow = true };
	int sync = -1;
	for (int t = 0; t < NS__MAX; t++)
		ca.ns_fds[t] = -1;
	pid_t child = 0;

	if (o->preserve_fds < 0 || o->preserve_fds > RUNTIME_PRESERVE_FDS_MAX) {
		r = err_set(EINVAL, "--preserve-fds: %d is not a count from 0 to %d", o->preserve_fds, RUNTIME_PRESERVE_FDS_MAX);
		goto out;
	}
	if (st.status != ST_CREATED && st.status != ST_RUNNING) {
		r = err_set(0, "cannot exec in container \"%s\": it is %s", o->id, container_status_names[st.status]);
		goto out;
	}
	if (!st.config_copy) {
		r = err_set(0, "container \"%s\" has no saved config", o->id);
		goto out;
	}
	if ((r = exec_config(o, &st, &raw, &rawlen)) < 0)
		goto out;
	if ((r = spec_parse(raw, rawlen, o->process_file ? o->process_file : "config.json", &s)) < 0)
		goto out;
	if (!s->process.present || !s->process.n_args) {
		r = err_set(0, "exec: process.args: no command given");
		goto out;
	}
	if (o->console_socket && ca.console_fd < 0 && (ca.console_fd = runtime_connect_unix(o->console_socket)) < 0) {
		r = err_wrap(ca.console_fd, "--console-socket");
		goto out;
	}
	if (s->process.terminal && ca.console_fd < 0) {
		r = err_set(0, "exec: a terminal needs --console-socket");
		goto out;
	}
	ca.s = s;
	if ((r = ns_open_paths(s, ca.ns_fds)) < 0)
		goto out;
	/* The child joins the container's cgroup itself before it
	 * re-executes (cgroup.h: no host-wide migration lock); where the
	 * files cannot be opened, the runtime moves it. */
	cgroup *cg = NULL;
	cgroup_join join = CGROUP_JOIN_INIT;
	if (st.cgroup[0] && cgroup_open(st.cgroup, &cg) == 0 && cgroup_join_open(cg, &join) == 0)
		ca.join = &join;
	err_clear();
	child = runtime_spawn_child(&ca, 0, &sync);
	bool joined = ca.join != NULL; /* the clone may have fallen back */
	cgroup_join_close(&join);
	cgroup_free(cg);
	if (child < 0) {
		r = (int)child;
		child = 0;
		goto out;
	}
	struct exec_proc proc = { .child = child, .pidfd = -1 };
	child = 0;
	r = exec_handshake(sync, s, o, &proc, raw, rawlen, ca.console_fd, ca.ns_fds, st.cgroup, joined);
	if (r < 0)
		exec_proc_kill(&proc);
	else
		*ret_pid = proc.pid;
	if (proc.pidfd >= 0)
		close(proc.pidfd);
out:
	if (sync >= 0)
		close(sync);
	if (ca.exe_fd >= 0)
		close(ca.exe_fd);
	if (ca.console_fd >= 0 && ca.console_fd != o->console_fd)
		close(ca.console_fd);
	for (int t = 0; t < NS__MAX; t++)
		if (ca.ns_fds[t] >= 0)
			close(ca.ns_fds[t]);
	spec_free(s);
	container_state_clear(&st);
	return r;
}
