/* The `isola-oci spec` template: a minimal runnable config (runc-compatible
 * contents), optionally adjusted for an unprivileged user. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spec/spec.h"

#define CAPS "[\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"]"

static const char default_json[] =
	"{"
	"  \"ociVersion\": \"1.1.0\","
	"  \"process\": {"
	"    \"terminal\": true,"
	"    \"user\": { \"uid\": 0, \"gid\": 0 },"
	"    \"args\": [\"sh\"],"
	"    \"env\": [\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\", \"TERM=xterm\"],"
	"    \"cwd\": \"/\","
	"    \"capabilities\": {"
	"      \"bounding\": " CAPS ", \"effective\": " CAPS ","
	"      \"permitted\": " CAPS ", \"ambient\": " CAPS
	"    },"
	"    \"rlimits\": [{ \"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024 }],"
	"    \"noNewPrivileges\": true"
	"  },"
	"  \"root\": { \"path\": \"rootfs\", \"readonly\": true },"
	"  \"hostname\": \"isola\","
	"  \"mounts\": ["
	"    { \"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\" },"
	"    { \"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\","
	"      \"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"] },"
	"    { \"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": \"devpts\","
	"      \"options\": [\"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", \"mode=0620\", \"gid=5\"] },"
	"    { \"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\","
	"      \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\"] },"
	"    { \"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": \"mqueue\","
	"      \"options\": [\"nosuid\", \"noexec\", \"nodev\"] },"
	"    { \"destination\": \"/sys\", \"type\": \"sysfs\", \"source\": \"sysfs\","
	"      \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"ro\"] },"
	"    { \"destination\": \"/sys/fs/cgroup\", \"type\": \"cgroup\", \"source\": \"cgroup\","
	"      \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"relatime\", \"ro\"] }"
	"  ],"
	"  \"linux\": {"
	"    \"resources\": { \"devices\": [{ \"allow\": false, \"access\": \"rwm\" }] },"
	"    \"namespaces\": [{ \"type\": \"pid\" }, { \"type\": \"network\" }, { \"type\": \"ipc\" },"
	"                   { \"type\": \"uts\" }, { \"type\": \"mount\" }, { \"type\": \"cgroup\" }],"
	"    \"maskedPaths\": [\"/proc/acpi\", \"/proc/asound\", \"/proc/kcore\", \"/proc/keys\","
	"      \"/proc/latency_stats\", \"/proc/timer_list\", \"/proc/timer_stats\", \"/proc/sched_debug\","
	"      \"/sys/firmware\", \"/proc/scsi\"],"
	"    \"readonlyPaths\": [\"/proc/bus\", \"/proc/fs\", \"/proc/irq\", \"/proc/sys\", \"/proc/sysrq-trigger\"]"
	"  }"
	"}";

/* Remove the array elements whose string member `key` equals `value`. */
static void array_remove_where(json_t *arr, const char *key, const char *value)
{
	for (size_t i = json_array_size(arr); i-- > 0;) {
		const char *s = json_string_value(json_object_get(json_array_get(arr, i), key));
		if (s && strcmp(s, value) == 0)
			json_array_remove(arr, i);
	}
}

static json_t *find_where(json_t *arr, const char *key, const char *value)
{
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e) {
		const char *s = json_string_value(json_object_get(e, key));
		if (s && strcmp(s, value) == 0)
			return e;
	}
	return NULL;
}

/* Unprivileged: a user namespace mapping the caller to root, no network
 * namespace (it could not be configured), host /sys bind-mounted read-only
 * (sysfs cannot be mounted without owning the netns), no cgroup mount and
 * no device cgroup rules, and no gid=5 for devpts (gid 5 is not mapped). */
static int make_rootless(json_t *root)
{
	json_t *linux_ = json_object_get(root, "linux");
	json_t *mounts = json_object_get(root, "mounts");
	json_t *ns = json_object_get(linux_, "namespaces");
	char idmap[128];

	array_remove_where(ns, "type", "network");
	if (json_array_append_new(ns, json_pack("{s:s}", "type", "user")) < 0)
		return -1;
	json_object_del(linux_, "resources");
	snprintf(idmap, sizeof idmap, "[{\"containerID\": 0, \"hostID\": %u, \"size\": 1}]", (unsigned)getuid());
	if (json_object_set_new(linux_, "uidMappings", json_loads(idmap, 0, NULL)) < 0)
		return -1;
	snprintf(idmap, sizeof idmap, "[{\"containerID\": 0, \"hostID\": %u, \"size\": 1}]", (unsigned)getgid());
	if (json_object_set_new(linux_, "gidMappings", json_loads(idmap, 0, NULL)) < 0)
		return -1;

	array_remove_where(mounts, "destination", "/sys/fs/cgroup");
	json_t *sys = find_where(mounts, "destination", "/sys");
	json_t *pts = json_object_get(find_where(mounts, "destination", "/dev/pts"), "options");
	if (!sys || !pts)
		return -1;
	if (json_object_set_new(sys, "type", json_string("none")) < 0 ||
	    json_object_set_new(sys, "source", json_string("/sys")) < 0 ||
	    json_object_set_new(sys, "options", json_pack("[sssss]", "rbind", "nosuid", "noexec", "nodev", "ro")) < 0)
		return -1;
	for (size_t i = json_array_size(pts); i-- > 0;)
		if (strcmp(json_string_value(json_array_get(pts, i)), "gid=5") == 0)
			json_array_remove(pts, i);
	return 0;
}

char *spec_default_json(bool rootless)
{
	json_t *root = json_loads(default_json, 0, NULL);
	if (!root)
		return NULL;
	if (rootless && make_rootless(root) < 0) {
		json_decref(root);
		return NULL;
	}
	char *text = json_dumps(root, JSON_INDENT(4));
	json_decref(root);
	if (!text)
		return NULL;
	size_t n = strlen(text);
	char *out = realloc(text, n + 2);
	if (!out) {
		free(text);
		return NULL;
	}
	memcpy(out + n, "\n", 2);
	return out;
}
