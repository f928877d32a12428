/* VM disks through qemu-img: info and consistency checks of qcow2 files,
 * copy-on-write overlays. The format is always given explicitly (-f qcow2):
 * a file is never probed into a format it did not claim, and a disk's
 * backing file must be the one expected (a qcow2 header naming
 * /etc/shadow as its backing file would otherwise hand it to the guest). */
#include "vm/vm-internal.h"
#include "util/cleanup.h"
#include "util/err.h"
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define QEMU_IMG_TIMEOUT_MS 60000

static char *qemu_img(void)
{
	const char *e = getenv("ISOLA_QEMU_IMG");
	return (char *)(e && *e ? e : "qemu-img");
}

/* qemu-img's complaint, without its program-name prefix. */
static const char *img_error(char *err)
{
	const char *l = vm_last_line(err);
	if (strncmp(l, "qemu-img: ", 10) == 0)
		l += 10;
	return *l ? l : "qemu-img failed";
}

static int info_json(const char *path, json_t **ret)
{
	/* qemu-img too reads "json:{...}" or "nbd:..." as a protocol */
	if (path[0] != '/')
		return vm_refuse(EINVAL, "disk %s: not an absolute path", path);
	char *argv[] = { qemu_img(), "info", "--output=json", "-U", "-f", "qcow2", (char *)path, NULL };
	_cleanup_free_ char *out = NULL, *err = NULL;
	int status, r = vm_run(argv, QEMU_IMG_TIMEOUT_MS, &out, &err, &status);
	if (r < 0)
		return err_wrap(r, "disk %s", path);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return vm_refuse(EINVAL, "disk %s: not a usable qcow2 file: %s", path, img_error(err));
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		return vm_refuse(EPROTO, "disk %s: qemu-img info: unreadable output", path);
	}
	*ret = j;
	return 0;
}

int vm_disk_info(const char *path, struct vm_disk_info *ret)
{
	json_t *j = NULL;
	int r = info_json(path, &j);
	if (r < 0)
		return r;
	struct vm_disk_info d = { 0 };
	snprintf(d.format, sizeof d.format, "%s", json_string_value(json_object_get(j, "format")) ?: "");
	d.virtual_size = (uint64_t)json_integer_value(json_object_get(j, "virtual-size"));
	d.actual_size = (uint64_t)json_integer_value(json_object_get(j, "actual-size"));
	d.has_backing = json_object_get(j, "backing-filename") != NULL;
	d.corrupt = json_is_true(json_object_get(json_object_get(json_object_get(j, "format-specific"), "data"), "corrupt"));
	json_decref(j);
	*ret = d;
	return 0;
}

int vm_disk_check(const char *path, const char *backing)
{
	json_t *j = NULL;
	int r = info_json(path, &j);
	if (r < 0)
		return r;
	const char *fmt = json_string_value(json_object_get(j, "format"));
	const char *bf = json_string_value(json_object_get(j, "full-backing-filename"));
	if (!bf)
		bf = json_string_value(json_object_get(j, "backing-filename"));
	const char *bfmt = json_string_value(json_object_get(j, "backing-filename-format"));
	bool corrupt = json_is_true(json_object_get(json_object_get(json_object_get(j, "format-specific"), "data"), "corrupt"));
	if (!fmt || strcmp(fmt, "qcow2") != 0)
		r = vm_refuse(EINVAL, "disk %s: format %s, not qcow2", path, fmt ? fmt : "unknown");
	else if (corrupt)
		r = vm_refuse(EINVAL, "disk %s: corrupt qcow2: the image is marked corrupt", path);
	else if (bf && !backing)
		r = vm_refuse(EINVAL, "disk %s: has a backing file (%s) where none is expected", path, bf);
	else if (backing && (!bf || strcmp(bf, backing) != 0))
		r = vm_refuse(EINVAL, "disk %s: backing file %s, expected %s", path, bf ? bf : "none", backing);
	else if (backing && (!bfmt || strcmp(bfmt, "qcow2") != 0))
		r = vm_refuse(EINVAL, "disk %s: the backing file's format is not given as qcow2", path);
	json_decref(j);
	if (r < 0)
		return r;

	char *argv[] = { qemu_img(), "check", "--output=json", "-f", "qcow2", (char *)path, NULL };
	_cleanup_free_ char *out = NULL, *err = NULL;
	int status;
	if ((r = vm_run(argv, QEMU_IMG_TIMEOUT_MS, &out, &err, &status)) < 0)
		return err_wrap(r, "disk %s", path);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (code == 0 || code == 3) /* 3: leaked clusters only, harmless */
		return 0;
	if (code == 2) {
		json_t *c = json_loads(out, 0, NULL);
		long long n = json_integer_value(json_object_get(c, "corruptions"));
		json_decref(c);
		return vm_refuse(EINVAL, "disk %s: corrupt qcow2: qemu-img check found %lld corruptions", path, n);
	}
	return vm_refuse(EINVAL, "disk %s: qemu-img check could not check it: %s", path, img_error(err));
}

int vm_disk_overlay_create(const char *base, const char *path)
{
	if (base[0] != '/' || path[0] != '/')
		return vm_refuse(EINVAL, "disk %s: the disk and its base %s must be absolute paths", path, base);
	if (strchr(base, ',') || strchr(path, ','))
		return vm_refuse(EINVAL, "disk %s: file names with a comma are not supported by QEMU's options", path);
	struct stat st;
	if (lstat(path, &st) == 0)
		return err_set(EEXIST, "disk %s", path);
	_cleanup_free_ char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmp-%d", path, (int)getpid()) < 0)
		return err_set(ENOMEM, "disk %s", path);
	(void)unlink(tmp); /* a leftover of a killed create by a reused pid */
	char *argv[] = { qemu_img(), "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", (char *)base, tmp, NULL };
	_cleanup_free_ char *err = NULL;
	int status, r = vm_run(argv, QEMU_IMG_TIMEOUT_MS, NULL, &err, &status);
	if (r < 0)
		return err_wrap(r, "disk %s", path);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		(void)unlink(tmp);
		return vm_refuse(EINVAL, "disk %s: overlay on %s: %s", path, base, img_error(err));
	}
	int fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
		int e = errno;
		(void)unlink(tmp);
		return err_set(e, "disk %s", path);
	}
	return 0;
}
