/* The state directory of a container: state.json written atomically and
 * read back with the truth of the host (is the init alive, was it started),
 * the saved config, the list of ids. */
#include "container.h"
#include "internal.h"
#include "sandbox/cgroup.h"
#include "util/err.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/nsfs.h>
#include <linux/sched.h>

const char *const container_status_names[] = { "creating", "created", "running", "paused", "stopped" };

unsigned long long runtime_proc_starttime(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* Field 22 (starttime); p points at the end of field 2. */
	int field = 2;
	for (p++; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	return strtoull(p, NULL, 10);
}

static json_t *annotations_obj(const oci_spec *s)
{
	json_t *a = json_object();
	for (size_t i = 0; s && i < s->n_annotations; i++)
		json_object_set_new(a, s->annotations[i].key, json_string(s->annotations[i].value));
	return a;
}

char *state_json_for_hooks(const char *id, const char *status, int pid, const char *bundle, const oci_spec *s)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:o}", "ociVersion", ISOLA_OCI_VERSION, "id", id,
			      "status", status, "pid", pid, "bundle", bundle, "annotations", annotations_obj(s));
	char *out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return out;
}

int runtime_write_state(int dirfd, const char *id, const char *status, pid_t pid, unsigned long long starttime,
		       const char *bundle, const char *rootfs, const char *created, const char *cgpath,
		       const oci_spec *s)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:s, s:s, s:s, s:s, s:s, s:o}",
			      "ociVersion", ISOLA_OCI_VERSION, "id", id, "status", status, "pid", (int)pid,
			      "starttime", (json_int_t)starttime, "bundle", bundle, "rootfs", rootfs,
			      "created", created, "owner", "", "cgroup", cgpath ? cgpath : "",
			      "annotations", annotations_obj(s));
	if (!o)
		return err_set(ENOMEM, "build state");
	_cleanup_free_ char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return err_set(ENOMEM, "build state");
	return write_file_atomic_at(dirfd, STATE_FILE, text, strlen(text), 0600);
}

int runtime_valid_id(const char *id)
{
	if (!id || !*id)
		return err_set(0, "container id must not be empty");
	if (strlen(id) > 200 || strchr(id, '/') || !strcmp(id, ".") || !strcmp(id, ".."))
		return err_set(0, "invalid container id \"%s\"", id);
	return 0;
}

int runtime_open_state_dir(const char *root, const char *id)
{
	int r = runtime_valid_id(id);
	if (r < 0)
		return r;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", root, id);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? err_set(ENOENT, "container \"%s\" does not exist", id)
				       : err_set(errno, "open state directory '%s'", path);
	return fd;
}

static const char *jstr(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

int runtime_load_at(int dirfd, const char *id, container_state *st, bool with_config)
{
	memset(st, 0, sizeof *st);
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = read_file_at(dirfd, STATE_FILE, &text, &len);
	if (r < 0) {
		/* A create killed before its first state write: only the directory. */
		st->id = strdup(id);
		st->status = ST_STOPPED;
		st->bundle = strdup("");
		st->rootfs = strdup("");
		st->created = strdup("");
		st->owner = strdup("");
		st->cgroup = strdup("");
		st->annotations_json = strdup("{}");
		return r == -ENOENT ? 0 : r;
	}
	json_error_t je;
	json_t *o = json_loadb(text, len, 0, &je);
	if (!o)
		return err_set(0, "state of \"%s\" is corrupt: %s", id, je.text);
	st->id = strdup(jstr(o, "id"));
	st->bundle = strdup(jstr(o, "bundle"));
	st->rootfs = strdup(jstr(o, "rootfs"));
	st->created = strdup(jstr(o, "created"));
	st->owner = strdup(jstr(o, "owner"));
	st->cgroup = strdup(jstr(o, "cgroup"));
	st->pid = (pid_t)json_integer_value(json_object_get(o, "pid"));
	st->starttime = (unsigned long long)json_integer_value(json_object_get(o, "starttime"));
	st->annotations_json = json_dumps(json_object_get(o, "annotations"), JSON_COMPACT | JSON_ENCODE_ANY);
	bool stored_creating = !strcmp(jstr(o, "status"), "creating");
	json_decref(o);

	bool alive = st->pid > 0 && runtime_proc_starttime(st->pid) == st->starttime && st->starttime != 0;
	if (alive) {
		char state = 0, path[64], buf[512];
		snprintf(path, sizeof path, "/proc/%d/stat", (int)st->pid);
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
		if (n > 0) {
			buf[n] = '\0';
			char *p = strrchr(buf, ')');
			if (p && p[1])
				state = p[2];
		}
		if (state == 'Z' || state == 'X')
			alive = false;
	}
	if (!alive)
		st->status = ST_STOPPED;
	else if (stored_creating)
		st->status = ST_CREATING;
	else if (faccessat(dirfd, FIFO_FILE, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		st->status = ST_CREATED;
	else
		st->status = ST_RUNNING;
	if (st->status == ST_RUNNING && st->cgroup[0]) {
		cgroup *cg = NULL;
		if (cgroup_open(st->cgroup, &cg) == 0) {
			if (cgroup_is_frozen(cg))
				st->status = ST_PAUSED;
			cgroup_free(cg);
		}
	}
	/* Only start, delete, exec and checkpoint need the saved config. */
	if (with_config && read_file_at(dirfd, CONFIG_COPY, &st->config_copy, NULL) < 0)
		st->config_copy = NULL;
	err_clear();
	return 0;
}

int container_load(const char *root, const char *id, container_state *ret)
{
	_cleanup_close_ int dfd = runtime_open_state_dir(root, id);
	if (dfd < 0)
		return dfd;
	return runtime_load_at(dfd, id, ret, false);
}

int container_load_with_config(const char *root, const char *id, container_state *ret)
{
	_cleanup_close_ int dfd = runtime_open_state_dir(root, id);
	if (dfd < 0)
		return dfd;
	return runtime_load_at(dfd, id, ret, true);
}

void container_state_clear(container_state *st)
{
	free(st->id);
	free(st->bundle);
	free(st->rootfs);
	free(st->created);
	free(st->owner);
	free(st->cgroup);
	free(st->annotations_json);
	free(st->config_copy);
	memset(st, 0, sizeof *st);
}

char *container_state_json(const container_state *st)
{
	json_t *ann = json_loads(st->annotations_json ? st->annotations_json : "{}", 0, NULL);
	if (!json_is_object(ann)) {
		json_decref(ann);
		ann = json_object();
	}
	json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:o}", "ociVersion", ISOLA_OCI_VERSION,
			      "id", st->id, "pid", st->status == ST_STOPPED ? 0 : (int)st->pid,
			      "status", container_status_names[st->status], "bundle", st->bundle,
			      "rootfs", st->rootfs, "created", st->created, "owner", st->owner, "annotations", ann);
	char *out = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	return out;
}

void runtime_now_rfc3339(char *buf, size_t n)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + k, n - k, ".%09ldZ", ts.tv_nsec);
}

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int container_list_ids(const char *root, char ***ret)
{
	size_t n = 0, cap = 16;
	char **v = calloc(cap, sizeof *v);
	if (!v)
		return -ENOMEM;
	DIR *d = opendir(root);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.' || e->d_type != DT_DIR)
				continue;
			if (n + 2 > cap) {
				char **nv = realloc(v, (cap *= 2) * sizeof *v);
				if (!nv)
					break;
				v = nv;
			}
			v[n++] = strdup(e->d_name);
		}
		closedir(d);
	}
	v[n] = NULL;
	qsort(v, n, sizeof *v, cmpstr);
	*ret = v;
	return 0;
}

int container_write_restored_state(const char *root, const char *id, pid_t pid, const oci_spec *s,
				   const char *raw, size_t rawlen, const char *cgpath)
{
	_cleanup_close_ int dfd = runtime_open_state_dir(root, id);
	if (dfd < 0)
		return dfd;
	int r = write_file_atomic_at(dfd, CONFIG_COPY, raw, rawlen, 0600);
	if (r < 0)
		return r;
	char created[64];
	runtime_now_rfc3339(created, sizeof created);
	return runtime_write_state(dfd, id, "running", pid, runtime_proc_starttime(pid), s->bundle, s->root_path, created, cgpath, s);
}
