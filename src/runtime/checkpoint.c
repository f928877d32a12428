/* Checkpoint / restore through the CRIU command line: work out which of the
 * container's mounts, files and namespaces come from outside it, and run
 * `criu dump` or `criu restore` (criu.c) with the matching options. */
#include "checkpoint.h"
#include "container.h"
#include "criu.h"
#include "sandbox/cgroup.h"
#include "spec/spec.h"
#include "util/err.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#define DUMP_LOG "dump.log"
#define RESTORE_LOG "restore.log"
#define CRIU_ROOT "criu-root"   /* in the state dir: the rootfs, bind-mounted for criu --root */
#define CRIU_PIDFILE "criu.pid" /* in the state dir: the restored init's pid */
#define INHERIT_FD_BASE 100     /* where criu finds the descriptors it inherits */
#define INFO_VERSION 1

/* ---- mount tables -------------------------------------------------- */

struct mnt {
	int id;
	dev_t dev;
	char *root, *point, *fstype, *super;
};

struct mnt_list {
	struct mnt *v;
	size_t n;
};

static void mnt_list_clear(struct mnt_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].root);
		free(l->v[i].point);
		free(l->v[i].fstype);
		free(l->v[i].super);
	}
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
	char *o = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

static int mountinfo_read(const char *path, struct mnt_list *ret)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return err_set(errno, "open '%s'", path);
	struct mnt_list l = { 0 };
	size_t cap = 0, sz = 0;
	_cleanup_free_ char *line = NULL;
	while (getline(&line, &sz, f) > 0) {
		if (l.n == cap) {
			struct mnt *v = realloc(l.v, (cap = cap ? cap * 2 : 64) * sizeof *v);
			if (!v) {
				mnt_list_clear(&l);
				return err_set(ENOMEM, "read '%s'", path);
			}
			l.v = v;
		}
		struct mnt *m = &l.v[l.n];
		memset(m, 0, sizeof *m);
		unsigned maj, min;
		int parent;
		char *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%d %d %u:%u %ms %ms", &m->id, &parent, &maj, &min, &m->root, &m->point) != 6 ||
		    sscanf(sep + 3, "%ms %*s %ms", &m->fstype, &m->super) < 1) {
			l.n++;
			mnt_list_clear(&l);
			line[strcspn(line, "\n")] = '\0';
			return err_set(0, "%s: cannot parse \"%s\"", path, line);
		}
		l.n++;
		m->dev = makedev(maj, min);
		unescape_octal(m->root);
		unescape_octal(m->point);
	}
	*ret = l;
	return 0;
}

/* prefix is "/" or a path; true when path is prefix or lies under it. */
static bool path_under(const char *prefix, const char *path)
{
	if (!strcmp(prefix, "/"))
		return path[0] == '/';
	size_t n = strlen(prefix);
	return !strncmp(prefix, path, n) && (path[n] == '\0' || path[n] == '/');
}

static bool dev_on_host(const struct mnt_list *host, dev_t dev)
{
	for (size_t i = 0; i < host->n; i++)
		if (host->v[i].dev == dev)
			return true;
	return false;
}

struct ext_mount {
	char *point;  /* mount point in the container: CRIU's key */
	char *source; /* the same file on the host */
};

static void ext_mounts_free(struct ext_mount *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].point);
		free(v[i].source);
	}
	free(v);
}

/* The host path of container mount m: a host mount of the same filesystem
 * whose root contains m's root (the closest one), joined with the rest. */
static char *host_source(const struct mnt_list *host, const struct mnt *m)
{
	const struct mnt *best = NULL;
	for (size_t i = 0; i < host->n; i++) {
		const struct mnt *h = &host->v[i];
		if (h->dev == m->dev && path_under(h->root, m->root) && (!best || strlen(h->root) > strlen(best->root)))
			best = h;
	}
	if (!best)
		return NULL;
	const char *rest = strcmp(best->root, "/") ? m->root + strlen(best->root) : m->root;
	if (!strcmp(rest, "/"))
		rest = "";
	char *out = NULL;
	if (asprintf(&out, "%s%s", strcmp(best->point, "/") ? best->point : (rest[0] ? "" : "/"), rest) < 0)
		return NULL;
	return out;
}

/* The container's mounts that CRIU cannot recreate by itself: binds of
 * filesystems the host has mounted (bind mounts from the config, the
 * container's own cgroup directories, host device nodes), except where the
 * bound directory is inside the rootfs or inside another mount of the
 * container. Each becomes `--external mnt[POINT]:POINT` at dump and
 * `--external mnt[POINT]:SOURCE` at restore. */
static int find_external_mounts(const struct mnt_list *ct, const struct mnt_list *host, struct ext_mount **ret,
				size_t *ret_n)
{
	const struct mnt *rootm = NULL;
	for (size_t i = 0; i < ct->n; i++)
		if (!strcmp(ct->v[i].point, "/"))
			rootm = &ct->v[i];
	if (!rootm)
		return err_set(0, "the container has no root mount");
	_cleanup_free_ bool *inside = calloc(ct->n ? ct->n : 1, sizeof *inside);
	if (!inside)
		return err_set(ENOMEM, "mount table");
	for (size_t i = 0; i < ct->n; i++) {
		const struct mnt *m = &ct->v[i];
		inside[i] = m == rootm || !dev_on_host(host, m->dev) ||
			    (m->dev == rootm->dev && path_under(rootm->root, m->root));
	}
	/* Binds of parts of the container's own mounts (/proc/sys, a masked
	 * path bound from the /dev tmpfs); repeat until nothing changes. */
	for (bool changed = true; changed;) {
		changed = false;
		for (size_t i = 0; i < ct->n; i++) {
			for (size_t j = 0; !inside[i] && j < ct->n; j++) {
				if (j != i && inside[j] && ct->v[j].dev == ct->v[i].dev && path_under(ct->v[j].root, ct->v[i].root)) {
					inside[i] = true;
					changed = true;
				}
			}
		}
	}
	struct ext_mount *v = calloc(ct->n ? ct->n : 1, sizeof *v);
	size_t n = 0;
	if (!v)
		return err_set(ENOMEM, "mount table");
	for (size_t i = 0; i < ct->n; i++) {
		if (inside[i])
			continue;
		const struct mnt *m = &ct->v[i];
		if (strpbrk(m->point, "[]:")) {
			ext_mounts_free(v, n);
			return err_set(EOPNOTSUPP, "mount '%s': CRIU cannot name an external mount point containing '[', ']' or ':'", m->point);
		}
		v[n].point = strdup(m->point);
		v[n].source = host_source(host, m);
		if (!v[n].point || !v[n].source) {
			bool oom = !v[n].point;
			n++;
			ext_mounts_free(v, n);
			return oom ? err_set(ENOMEM, "mount table")
				   : err_set(0, "mount '%s' (%s, root '%s') comes from the host, but no host mount shows that directory",
					     m->point, m->fstype, m->root);
		}
		n++;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* ---- files the container holds from outside ----------------------- */

struct ext_file {
	char *key;   /* CRIU's id: "pipe:[ino]" or "file[mnt_id:ino]" (hex) */
	char *path;  /* files: the path at dump time; NULL for pipes */
	int flags;   /* open flags at dump time */
	unsigned mode; /* st_mode at dump time: CRIU checks it on restore */
	int fds;     /* bit n: the init has it open at fd n (0..2) */
	int fd;      /* the first fd it was seen at */
};

struct ext_files {
	struct ext_file *v;
	size_t n;
};

static void ext_files_clear(struct ext_files *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].key);
		free(f->v[i].path);
	}
	free(f->v);
	memset(f, 0, sizeof *f);
}

static int ext_files_add(struct ext_files *f, const char *key, const char *path, int flags, unsigned mode,
			 int fd, bool init)
{
	for (size_t i = 0; i < f->n; i++) {
		if (!strcmp(f->v[i].key, key)) {
			if (init && fd <= 2)
				f->v[i].fds |= 1 << fd;
			return 0;
		}
	}
	struct ext_file *v = realloc(f->v, (f->n + 1) * sizeof *v);
	if (!v)
		return err_set(ENOMEM, "file table");
	f->v = v;
	struct ext_file *e = &f->v[f->n];
	*e = (struct ext_file){ .key = strdup(key), .path = path ? strdup(path) : NULL, .flags = flags, .mode = mode,
				.fds = init && fd <= 2 ? 1 << fd : 0, .fd = fd };
	if (!e->key || (path && !e->path)) {
		free(e->key);
		free(e->path);
		return err_set(ENOMEM, "file table");
	}
	f->n++;
	return 0;
}

static bool mnt_id_in(const struct mnt_list *l, int id)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].id == id)
			return true;
	return false;
}

/* The open files of one task that live on mounts outside the container
 * (its standard streams, typically: the caller's files, /dev/null of the
 * host), and, for the init, pipes on fds 0-2. Unreadable entries (a task
 * that just exited) are skipped. */
static int scan_task_files(pid_t pid, bool init, const struct mnt_list *ct, struct ext_files *out)
{
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d)
		return init ? err_set(errno, "open '%s'", dir) : 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		int fd = atoi(e->d_name);
		char p[96], target[PATH_MAX];
		snprintf(p, sizeof p, "/proc/%d/fd/%d", (int)pid, fd);
		ssize_t n = readlink(p, target, sizeof target - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (!strncmp(target, "pipe:", 5)) {
			int r = init && fd <= 2 ? ext_files_add(out, target, NULL, 0, 0, fd, init) : 0;
			if (r < 0)
				return r;
			continue;
		}
		if (target[0] != '/')
			continue; /* sockets, anon inodes: CRIU's own options cover them */
		char info[96];
		snprintf(info, sizeof info, "/proc/%d/fdinfo/%d", (int)pid, fd);
		_cleanup_free_ char *text = NULL;
		if (read_file_at(AT_FDCWD, info, &text, NULL) < 0) {
			err_clear();
			continue;
		}
		const char *mnt = strstr(text, "mnt_id:"), *fl = strstr(text, "flags:");
		struct stat st;
		if (!mnt || !fl || stat(p, &st) < 0)
			continue;
		int mnt_id = atoi(mnt + 7);
		int flags = (int)strtol(fl + 6, NULL, 8);
		if (mnt_id_in(ct, mnt_id))
			continue;
		char key[64];
		snprintf(key, sizeof key, "file[%x:%" PRIx64 "]", (unsigned)mnt_id, (uint64_t)st.st_ino);
		int r = ext_files_add(out, key, target, flags, (unsigned)st.st_mode, fd, init);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The init and its descendants, through /proc/PID/task/TID/children. */
static int scan_tree_files(pid_t pid, bool init, const struct mnt_list *ct, struct ext_files *out, int depth)
{
	int r = scan_task_files(pid, init, ct, out);
	if (r < 0 || depth > 64)
		return r;
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		char p[384];
		snprintf(p, sizeof p, "%s/%s/children", dir, e->d_name);
		_cleanup_free_ char *kids = NULL;
		if (read_file_at(AT_FDCWD, p, &kids, NULL) < 0) {
			err_clear();
			continue;
		}
		for (char *s = kids, *end; *s; s = end) {
			long k = strtol(s, &end, 10);
			if (end == s)
				break;
			if (k > 0 && (r = scan_tree_files((pid_t)k, false, ct, out, depth + 1)) < 0)
				return r;
		}
	}
	return 0;
}

/* ---- the cgroup to freeze during the dump -------------------------- */

static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; p && *p;) {
		if (!strncmp(p, word, n) && (p[n] == ',' || p[n] == '\0'))
			return true;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return false;
}

/* The host directory of the container's freezer cgroup (v1 freezer, else
 * cgroup2), for criu --freeze-cgroup; NULL when there is none. */
static char *freezer_dir(pid_t pid, const struct mnt_list *host)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
	_cleanup_free_ char *text = NULL;
	if (read_file_at(AT_FDCWD, path, &text, NULL) < 0) {
		err_clear();
		return NULL;
	}
	char *v1 = NULL, *v2 = NULL;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		const char *ctrls = c1 + 1, *rel = c2 + 1;
		for (size_t i = 0; i < host->n; i++) {
			const struct mnt *h = &host->v[i];
			if (strcmp(h->root, "/"))
				continue;
			if (!v1 && has_word(ctrls, "freezer") && !strcmp(h->fstype, "cgroup") && has_word(h->super, "freezer"))
				(void)!asprintf(&v1, "%s%s", h->point, rel);
			else if (!v2 && !ctrls[0] && !strcmp(h->fstype, "cgroup2"))
				(void)!asprintf(&v2, "%s%s", h->point, rel);
		}
	}
	if (v1) {
		free(v2);
		return v1;
	}
	return v2;
}

/* ---- shared helpers ------------------------------------------------ */

static void add_flags(struct strv *a, const struct criu_flags *f, bool shell_job)
{
	if (f->tcp_established)
		strv_add(a, "--tcp-established");
	if (f->ext_unix_sk)
		strv_add(a, "--ext-unix-sk");
	if (shell_job)
		strv_add(a, "--shell-job");
	if (f->file_locks)
		strv_add(a, "--file-locks");
}

/* mkdir -p, then the absolute path (criu runs with its own cwd rules). */
static int make_dir_abs(const char *path, const char *option, char **ret)
{
	int r = mkdir_p(path, 0700);
	if (r < 0)
		return err_wrap(r, "%s", option);
	char *abs = realpath(path, NULL);
	if (!abs)
		return err_set(errno, "%s: '%s'", option, path);
	*ret = abs;
	return 0;
}

/* ---- checkpoint ---------------------------------------------------- */

static int write_info(const char *image, const char *id, const struct ext_mount *em, size_t n_em,
		      const struct ext_files *ef, bool shell_job, const oci_spec *s)
{
	json_t *mounts = json_array(), *files = json_array(), *ns = json_array();
	for (size_t i = 0; i < n_em; i++)
		json_array_append_new(mounts, json_pack("{s:s, s:s}", "mountpoint", em[i].point, "source", em[i].source));
	for (size_t i = 0; i < ef->n; i++) {
		const struct ext_file *e = &ef->v[i];
		json_t *fds = json_array();
		for (int fd = 0; fd <= 2; fd++)
			if (e->fds & (1 << fd))
				json_array_append_new(fds, json_integer(fd));
		json_t *o = json_pack("{s:s, s:o, s:i, s:i, s:i}", "key", e->key, "stdio", fds, "fd", e->fd, "flags",
				      e->flags, "mode", (int)e->mode);
		if (o && e->path)
			json_object_set_new(o, "path", json_string(e->path));
		json_array_append_new(files, o);
	}
	if (s->linux.ns[NS_NETWORK].path)
		json_array_append_new(ns, json_string("net"));
	if (s->linux.ns[NS_PID].path)
		json_array_append_new(ns, json_string("pid"));
	json_t *o = json_pack("{s:i, s:s, s:o, s:o, s:o, s:b}", "version", INFO_VERSION, "id", id, "externalMounts",
			      mounts, "externalFiles", files, "externalNamespaces", ns, "shellJob", shell_job);
	_cleanup_free_ char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
	json_decref(o);
	if (!text)
		return err_set(ENOMEM, "checkpoint info");
	_cleanup_close_ int dfd = open(image, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return err_set(errno, "open '%s'", image);
	return write_file_atomic_at(dfd, CHECKPOINT_INFO_FILE, text, strlen(text), 0600);
}

/* --external net[INODE]:extRootNetNS for a joined namespace, as the key
 * restore hands the namespace back under. */
static int add_external_ns(struct strv *a, const oci_spec *s, int t, const char *name, const char *key)
{
	if (!s->linux.ns[t].path)
		return 0;
	struct stat st;
	if (stat(s->linux.ns[t].path, &st) < 0)
		return err_set(errno, "linux.namespaces: %s namespace '%s'", spec_ns_names[t], s->linux.ns[t].path);
	strv_add(a, "--external");
	strv_addf(a, "%s[%llu]:%s", name, (unsigned long long)st.st_ino, key);
	return 0;
}

/* The container's config: the copy in the state directory, else the bundle's. */
static int load_config(const container_state *st, oci_spec **ret)
{
	if (st->config_copy)
		return spec_parse(st->config_copy, strlen(st->config_copy), "config.json", ret);
	return spec_load_bundle(st->bundle, ret, NULL, NULL);
}

static int do_checkpoint(const char *root, const container_state *st, const oci_spec *s,
			 const struct checkpoint_opts *o)
{
	int r;
	_cleanup_free_ char *image = NULL, *work = NULL;
	if ((r = make_dir_abs(o->image_path, "--image-path", &image)) < 0)
		return r;
	if ((r = make_dir_abs(o->work_path ? o->work_path : o->image_path, "--work-path", &work)) < 0)
		return r;
	/* A complete checkpoint is marked by the info file: drop a stale one
	 * before CRIU overwrites the images it describes. */
	char info[PATH_MAX];
	snprintf(info, sizeof info, "%s/%s", image, CHECKPOINT_INFO_FILE);
	if (unlink(info) < 0 && errno != ENOENT)
		return err_set(errno, "remove '%s'", info);

	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mountinfo", (int)st->pid);
	struct mnt_list ct = { 0 }, host = { 0 };
	struct ext_mount *em = NULL;
	size_t n_em = 0;
	struct ext_files ef = { 0 };
	struct strv a = { 0 };
	struct criu_run c = { 0 };
	_cleanup_free_ char *freezer = NULL;
	if ((r = mountinfo_read(path, &ct)) < 0 || (r = mountinfo_read("/proc/self/mountinfo", &host)) < 0 ||
	    (r = find_external_mounts(&ct, &host, &em, &n_em)) < 0 ||
	    (r = scan_tree_files(st->pid, true, &ct, &ef, 0)) < 0)
		goto out;
	freezer = freezer_dir(st->pid, &host);

	strv_add(&a, "criu");
	strv_add(&a, "dump");
	strv_add(&a, "--tree");
	strv_addf(&a, "%d", (int)st->pid);
	strv_add(&a, "--images-dir");
	strv_add(&a, image);
	strv_add(&a, "--work-dir");
	strv_add(&a, work);
	strv_add(&a, "--root");
	strv_add(&a, st->rootfs);
	strv_add(&a, "--manage-cgroups");
	strv_add(&a, "-v4");
	strv_add(&a, "--log-file");
	strv_add(&a, DUMP_LOG);
	if (o->leave_running)
		strv_add(&a, "--leave-running");
	add_flags(&a, &o->f, o->f.shell_job);
	if (freezer) {
		strv_add(&a, "--freeze-cgroup");
		strv_add(&a, freezer);
	}
	for (size_t i = 0; i < n_em; i++) {
		strv_add(&a, "--external");
		strv_addf(&a, "mnt[%s]:%s", em[i].point, em[i].point);
	}
	for (size_t i = 0; i < ef.n; i++) {
		if (ef.v[i].path) { /* pipes need no marking: restore substitutes them by key */
			strv_add(&a, "--external");
			strv_add(&a, ef.v[i].key);
		}
	}
	if ((r = add_external_ns(&a, s, NS_NETWORK, "net", "extRootNetNS")) < 0 ||
	    (r = add_external_ns(&a, s, NS_PID, "pid", "extRootPidNS")) < 0)
		goto out;
	if (a.oom) {
		r = err_set(ENOMEM, "criu arguments");
		goto out;
	}
	c.argv = a.v;
	if ((r = criu_exec(&c)) < 0)
		goto out;
	if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) {
		r = criu_failed("dump", &c, work, DUMP_LOG);
		goto out;
	}
	if ((r = write_info(image, st->id, em, n_em, &ef, o->f.shell_job, s)) < 0) {
		err_wrap(r, "CRIU dump succeeded, but the checkpoint is incomplete");
		goto out;
	}
	/* CRIU has stopped the container's processes; free the id for restore. */
	if (!o->leave_running && (r = container_delete(root, st->id, true)) < 0)
		err_wrap(r, "checkpoint written to '%s', but deleting the stopped container failed", image);
out:
	free(c.output);
	strv_free(&a);
	ext_files_clear(&ef);
	ext_mounts_free(em, n_em);
	mnt_list_clear(&ct);
	mnt_list_clear(&host);
	return r;
}

int container_checkpoint(const char *root, const char *id, const struct checkpoint_opts *o)
{
	if (!o->image_path || !*o->image_path)
		return err_set(0, "checkpoint: --image-path must not be empty");
	container_state st;
	int r = container_load_with_config(root, id, &st);
	if (r < 0)
		return r;
	oci_spec *s = NULL;
	if (st.status != ST_RUNNING && st.status != ST_PAUSED)
		r = err_set(0, "container \"%s\" is %s: only a running or paused container can be checkpointed", id,
			    container_status_names[st.status]);
	else if ((r = load_config(&st, &s)) < 0)
		err_wrap(r, "container \"%s\"", id);
	else if ((r = do_checkpoint(root, &st, s, o)) < 0)
		err_wrap(r, "checkpoint container \"%s\"", id);
	spec_free(s);
	container_state_clear(&st);
	return r;
}

/* ---- restore ------------------------------------------------------- */

static int valid_restore_id(const char *id)
{
	if (!id || !*id)
		return err_set(0, "container id must not be empty");
	if (strlen(id) > 200 || strchr(id, '/') || !strcmp(id, ".") || !strcmp(id, ".."))
		return err_set(0, "invalid container id \"%s\"", id);
	return 0;
}

/* The info file of a checkpoint directory. */
static int read_info(const char *image, json_t **ret)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", image, CHECKPOINT_INFO_FILE);
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = read_file_at(AT_FDCWD, path, &text, &len);
	if (r == -ENOENT)
		return err_set(ENOENT, "--image-path '%s' holds no complete isola-oci checkpoint (%s is missing: "
				       "the dump failed or was not made by isola-oci)", image, CHECKPOINT_INFO_FILE);
	if (r < 0)
		return r;
	json_error_t je;
	json_t *o = json_loadb(text, len, 0, &je);
	if (!json_is_object(o) || json_integer_value(json_object_get(o, "version")) != INFO_VERSION) {
		json_decref(o);
		return err_set(0, "%s: not a checkpoint description of version %d", path, INFO_VERSION);
	}
	*ret = o;
	return 0;
}

/* Where a config bind mount says the source is now (it may differ from
 * the checkpointed host path when restoring from another bundle). */
static const char *config_source(const oci_spec *s, const char *point, char *buf, size_t n)
{
	for (size_t i = 0; i < s->n_mounts; i++) {
		const spec_mount *m = &s->mounts[i];
		bool bind = m->opts.bind || (m->type && !strcmp(m->type, "bind"));
		if (!bind || !m->source || !m->destination)
			continue;
		size_t dl = strlen(m->destination);
		while (dl > 1 && m->destination[dl - 1] == '/')
			dl--;
		if (strlen(point) != dl || strncmp(point, m->destination, dl))
			continue;
		if (m->source[0] == '/')
			snprintf(buf, n, "%s", m->source);
		else
			snprintf(buf, n, "%s/%s", s->bundle, m->source);
		return buf;
	}
	return NULL;
}

struct restore_fds {
	int map[2 * 64]; /* (our fd, criu's fd) */
	size_t n;
	int opened[64];  /* fds we opened, to close */
	size_t n_opened;
};

static void restore_fds_close(struct restore_fds *f)
{
	for (size_t i = 0; i < f->n_opened; i++)
		close(f->opened[i]);
	f->n_opened = 0;
}

static int restore_fds_add(struct restore_fds *f, int ours, bool opened, int *ret_target)
{
	if (f->n >= ARRAY_SIZE(f->map) / 2) {
		if (opened)
			close(ours);
		return err_set(E2BIG, "too many external files in the checkpoint");
	}
	if (opened)
		f->opened[f->n_opened++] = ours;
	f->map[2 * f->n] = ours;
	f->map[2 * f->n + 1] = INHERIT_FD_BASE + (int)f->n;
	*ret_target = INHERIT_FD_BASE + (int)f->n;
	f->n++;
	return 0;
}

static bool fd_has_mode(int fd, unsigned mode)
{
	struct stat st;
	return fstat(fd, &st) == 0 && (!mode || st.st_mode == mode);
}

/* Our descriptor for one external file of the checkpoint, or -1 (a pipe we
 * have no counterpart for: CRIU then restores the pipe itself). CRIU
 * reopens it through /proc with the flags of the dump and insists on the
 * same file type and mode. So: the same path if it is still there (the
 * container goes on writing where it did), else our standard stream at the
 * same position (a pipe, a deleted file: the restore's caller takes over,
 * as after create). Sets *opened when the fd is ours to close. */
static int inherited_fd_for(json_t *e, bool *opened)
{
	const char *path = json_string_value(json_object_get(e, "path"));
	unsigned mode = (unsigned)json_integer_value(json_object_get(e, "mode"));
	json_t *stdio = json_object_get(e, "stdio");
	*opened = false;
	if (path && !strstr(path, " (deleted)")) {
		/* O_PATH: no side effects of opening a device or FIFO here. */
		int fd = open(path, O_PATH | O_CLOEXEC);
		if (fd >= 0 && fd_has_mode(fd, mode)) {
			*opened = true;
			return fd;
		}
		if (fd >= 0)
			close(fd);
	}
	static const int prefer[] = { 1, 2, 0 }; /* output first: what a reader of the container follows */
	int fallback = -1;
	for (size_t k = 0; k < ARRAY_SIZE(prefer); k++) {
		size_t j;
		json_t *fd;
		json_array_foreach(stdio, j, fd) {
			if (json_integer_value(fd) != prefer[k] || fcntl(prefer[k], F_GETFD) < 0)
				continue;
			if (!path || fd_has_mode(prefer[k], mode))
				return prefer[k];
			if (fallback < 0)
				fallback = prefer[k];
		}
	}
	return fallback; /* CRIU will name the mismatch */
}

/* --inherit-fd for the files the container had open from outside it. */
static int add_inherited_files(struct strv *a, json_t *files, struct restore_fds *rf)
{
	size_t i;
	json_t *e;
	json_array_foreach(files, i, e) {
		const char *key = json_string_value(json_object_get(e, "key"));
		if (!key)
			continue;
		bool opened;
		int ours = inherited_fd_for(e, &opened);
		if (ours < 0)
			continue;
		int target;
		int r = restore_fds_add(rf, ours, opened, &target);
		if (r < 0)
			return r;
		strv_add(a, "--inherit-fd");
		strv_addf(a, "fd[%d]:%s", target, key);
	}
	return 0;
}

/* Joined namespaces: net and pid are handed over as inherited descriptors
 * under the keys the dump used, the others joined by path. */
static int add_restore_namespaces(struct strv *a, const oci_spec *s, struct restore_fds *rf)
{
	for (int t = 0; t < NS__MAX; t++) {
		const char *p = s->linux.ns[t].path;
		if (!s->linux.ns[t].present || !p)
			continue;
		if (t == NS_CGROUP)
			return err_set(EOPNOTSUPP, "config.json: linux.namespaces: restore cannot join an existing cgroup namespace ('%s')", p);
		if (t == NS_NETWORK || t == NS_PID) {
			int fd = open(p, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				return err_set(errno, "config.json: linux.namespaces: %s namespace '%s'", spec_ns_names[t], p);
			int target, r = restore_fds_add(rf, fd, true, &target);
			if (r < 0)
				return r;
			strv_add(a, "--inherit-fd");
			strv_addf(a, "fd[%d]:%s", target, t == NS_NETWORK ? "extRootNetNS" : "extRootPidNS");
		} else {
			strv_add(a, "--join-ns");
			strv_addf(a, "%s:%s", spec_ns_proc_names[t], p);
		}
	}
	return 0;
}

/* Create dest (and missing parents) inside the rootfs, without leaving it. */
static int make_path_in_root(int rootfd, const char *dest, bool file)
{
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof path, "%s", dest) >= sizeof path)
		return -ENAMETOOLONG;
	size_t len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		char save = path[i];
		path[i] = '\0';
		int fd = openat_in_root(rootfd, path, O_PATH, 0);
		if (fd >= 0) {
			close(fd);
		} else if (fd == -ENOENT) {
			char *slash = strrchr(path, '/');
			*slash = '\0';
			int pfd = openat_in_root(rootfd, slash == path ? "/" : path, O_PATH | O_DIRECTORY, 0);
			*slash = '/';
			if (pfd < 0)
				return pfd;
			int r = 0;
			if (save == '\0' && file) {
				int f = openat(pfd, slash + 1, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
				if (f < 0)
					r = -errno;
				else
					close(f);
			} else if (mkdirat(pfd, slash + 1, 0755) < 0) {
				r = -errno;
			}
			close(pfd);
			if (r < 0 && r != -EEXIST)
				return r;
		} else {
			return fd;
		}
		path[i] = save;
	}
	return 0;
}

/* The mount points CRIU mounts on must exist in the rootfs; a fresh copy of
 * a bundle lacks those create made. Not below a tmpfs of the config (CRIU
 * restores a tmpfs with its content) nor for cgroup mounts (made inside
 * /sys/fs/cgroup, a tmpfs or the cgroup filesystem itself). */
static int make_mountpoints(const oci_spec *s)
{
	_cleanup_close_ int rootfd = open(s->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return err_set(errno, "config.json: root.path: '%s'", s->root_path);
	for (size_t i = 0; i < s->n_mounts; i++) {
		const spec_mount *m = &s->mounts[i];
		if (!m->destination || (m->type && (!strcmp(m->type, "cgroup") || !strcmp(m->type, "cgroup2"))))
			continue;
		bool on_tmpfs = false;
		for (size_t j = 0; j < s->n_mounts && !on_tmpfs; j++) {
			const spec_mount *t = &s->mounts[j];
			on_tmpfs = j != i && t->type && !strcmp(t->type, "tmpfs") && t->destination &&
				   strcmp(t->destination, m->destination) && path_under(t->destination, m->destination);
		}
		if (on_tmpfs)
			continue;
		bool file = false;
		if ((m->opts.bind || (m->type && !strcmp(m->type, "bind"))) && m->source) {
			char src[PATH_MAX];
			snprintf(src, sizeof src, "%s%s%s", m->source[0] == '/' ? "" : s->bundle,
				 m->source[0] == '/' ? "" : "/", m->source);
			struct stat st;
			file = stat(src, &st) == 0 && !S_ISDIR(st.st_mode);
		}
		int r = make_path_in_root(rootfd, m->destination, file);
		if (r < 0)
			return err_set(-r, "mount %s: create the mount point in the rootfs", m->destination);
	}
	return 0;
}

/* Undo a restore: the restored processes, the cgroup, the state directory. */
static void restore_revert(cgroup *cg, pid_t pid, const char *root, const char *id, bool dir_made)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (cg) {
		for (int i = 0; i < 400 && !cgroup_is_empty(cg); i++) {
			cgroup_kill_all(cg, SIGKILL);
			usleep(5000);
		}
		(void)cgroup_destroy(cg); /* best effort: the error is already set */
	}
	if (dir_made) {
		_cleanup_close_ int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (rfd >= 0)
			(void)rm_rf_at(rfd, id);
	}
}

static int do_restore(const struct restore_opts *o, const oci_spec *s, const char *raw, size_t rawlen,
		      pid_t *ret_pid)
{
	int r;
	_cleanup_free_ char *image = realpath(o->image_path, NULL), *work = NULL;
	if (!image)
		return err_set(errno, "--image-path '%s'", o->image_path);
	json_t *info = NULL;
	if ((r = read_info(image, &info)) < 0)
		return r;
	if ((r = make_dir_abs(o->work_path ? o->work_path : image, "--work-path", &work)) < 0) {
		json_decref(info);
		return r;
	}
	/* Absolute: criu gets paths in the state directory. */
	_cleanup_free_ char *root = NULL;
	if ((r = make_dir_abs(o->root, "--root", &root)) < 0) {
		json_decref(info);
		return r;
	}
	char dir[PATH_MAX - 16], croot[PATH_MAX], pidfile[PATH_MAX];
	if ((size_t)snprintf(dir, sizeof dir, "%s/%s", root, o->id) >= sizeof dir) {
		json_decref(info);
		return err_set(ENAMETOOLONG, "state directory '%s/%s'", root, o->id);
	}
	snprintf(croot, sizeof croot, "%s/%s", dir, CRIU_ROOT);
	snprintf(pidfile, sizeof pidfile, "%s/%s", dir, CRIU_PIDFILE);
	cgroup *cg = NULL;
	bool dir_made = false;
	pid_t pid = 0;
	struct strv a = { 0 };
	struct restore_fds rf = { .n = 0 };
	struct criu_run c = { 0 };
	char *pidtext = NULL;

	/* The state directory first: mkdir is the atomic claim on the id. */
	if (mkdir(dir, 0700) < 0) {
		r = errno == EEXIST ? err_set(EEXIST, "container \"%s\" already exists", o->id)
				    : err_set(errno, "create state directory '%s'", dir);
		goto out;
	}
	dir_made = true;
	if (mkdir(croot, 0700) < 0) {
		r = err_set(errno, "create '%s'", croot);
		goto out;
	}
	if ((r = make_mountpoints(s)) < 0 || (r = container_restore_cgroup(s, o->id, &cg)) < 0)
		goto out;

	strv_add(&a, "criu");
	strv_add(&a, "restore");
	strv_add(&a, "--images-dir");
	strv_add(&a, image);
	strv_add(&a, "--work-dir");
	strv_add(&a, work);
	strv_add(&a, "--root");
	strv_add(&a, croot);
	strv_add(&a, "--manage-cgroups");
	strv_add(&a, "-v4");
	strv_add(&a, "--log-file");
	strv_add(&a, RESTORE_LOG);
	strv_add(&a, "--restore-detached");
	strv_add(&a, "--restore-sibling"); /* the init becomes our child, as after create */
	strv_add(&a, "--pidfile");
	strv_add(&a, pidfile);
	strv_add(&a, "--evasive-devices");
	add_flags(&a, &o->f, o->f.shell_job || json_is_true(json_object_get(info, "shellJob")));
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(info, "externalMounts"), i, e) {
		const char *point = json_string_value(json_object_get(e, "mountpoint"));
		const char *source = json_string_value(json_object_get(e, "source"));
		char buf[PATH_MAX];
		const char *cfg = point ? config_source(s, point, buf, sizeof buf) : NULL;
		if (!point || !source)
			continue;
		strv_add(&a, "--external");
		strv_addf(&a, "mnt[%s]:%s", point, cfg ? cfg : source);
	}
	if ((r = add_inherited_files(&a, json_object_get(info, "externalFiles"), &rf)) < 0 ||
	    (r = add_restore_namespaces(&a, s, &rf)) < 0)
		goto out;
	if (a.oom) {
		r = err_set(ENOMEM, "criu arguments");
		goto out;
	}
	c = (struct criu_run){ .argv = a.v, .fd_map = rf.map, .n_fd_map = rf.n, .cg = cg,
			       .bind_src = s->root_path, .bind_dst = croot };
	if ((r = criu_exec(&c)) < 0)
		goto out;
	if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) {
		r = criu_failed("restore", &c, work, RESTORE_LOG);
		goto out;
	}
	if ((r = read_file_at(AT_FDCWD, pidfile, &pidtext, NULL)) < 0) {
		err_wrap(r, "CRIU restore succeeded, but left no pid file");
		goto out;
	}
	pid = (pid_t)atoi(pidtext);
	if (pid <= 0) {
		r = err_set(0, "CRIU restore wrote an invalid pid \"%s\"", pidtext);
		goto out;
	}
	(void)unlink(pidfile); /* best effort: state.json holds the pid */
	(void)rmdir(croot);
	if ((r = container_write_restored_state(o->root, o->id, pid, s, raw, rawlen, cgroup_path(cg))) < 0 ||
	    (o->pid_file && (r = write_pid_file(o->pid_file, pid)) < 0))
		goto out;
	*ret_pid = pid;
	r = 0;
out:
	if (r < 0)
		restore_revert(cg, pid, o->root, o->id, dir_made);
	restore_fds_close(&rf);
	free(pidtext);
	free(c.output);
	strv_free(&a);
	cgroup_free(cg);
	json_decref(info);
	return r;
}

int container_restore(const struct restore_opts *o, pid_t *ret_pid)
{
	int r = valid_restore_id(o->id);
	if (r < 0)
		return r;
	if (!o->image_path || !*o->image_path)
		return err_set(0, "restore: --image-path must not be empty");
	oci_spec *s = NULL;
	_cleanup_free_ char *raw = NULL;
	size_t rawlen = 0;
	if ((r = spec_load_bundle(o->bundle ? o->bundle : ".", &s, &raw, &rawlen)) < 0)
		return r;
	if ((r = do_restore(o, s, raw, rawlen, ret_pid)) < 0)
		err_wrap(r, "restore container \"%s\"", o->id);
	spec_free(s);
	return r;
}
