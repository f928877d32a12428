/* OCI image layouts (image-spec 1.x): index.json -> manifest (through
 * nested indexes, picking the host's platform) -> config and layers. Every
 * blob is named by a validated sha256 digest, opened beneath the layout
 * directory and checked against its digest. */
#include "image-internal.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#define MAX_JSON_BLOB (16u << 20)

#define _cleanup_json_ _cleanup_(json_decrefp) /* jansson's; accepts NULL */

bool image_oci_is_layout(int dir_fd)
{
	struct stat st;
	return fstatat(dir_fd, "oci-layout", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	       fstatat(dir_fd, "index.json", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

static int open_blob(int layout_fd, const char *what, const char *digest, const char *field)
{
	if (!image_digest_valid(digest))
		return err_refuse(EINVAL, "%s: %s: digest must be sha256:<64 hex digits>, got \"%s\"", what, field,
			       digest ? digest : "(missing)");
	char path[128], desc[512];
	snprintf(path, sizeof path, "blobs/sha256/%s", digest + 7);
	snprintf(desc, sizeof desc, "%s: %s: blob %s", what, field, path);
	return image_open_regular(layout_fd, path, true, desc);
}

static int load_json_fd(int fd, const char *what, const char *name, const char *want_digest, json_t **ret)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return err_set(errno, "%s: %s", what, name);
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_JSON_BLOB)
		return err_refuse(EINVAL, "%s: %s: not a regular file of at most %u bytes", what, name, MAX_JSON_BLOB);
	_cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return err_set(ENOMEM, "%s: %s", what, name);
	ssize_t n = read_all(fd, buf, (size_t)st.st_size);
	if (n < 0)
		return err_set((int)-n, "%s: read %s", what, name);
	if (want_digest) {
		unsigned char d[32];
		char hex[IMAGE_FINGERPRINT_LEN + 1];
		unsigned len = sizeof d;
		if (EVP_Digest(buf, (size_t)n, d, &len, EVP_sha256(), NULL) != 1)
			return err_set(EIO, "%s: %s: sha256", what, name);
		image_hex(d, 32, hex);
		if (strcmp(hex, want_digest + 7))
			return err_refuse(EINVAL, "%s: %s: content does not match its digest (sha256:%s)", what, name, hex);
	}
	json_error_t jerr;
	json_t *j = json_loadb(buf, (size_t)n, 0, &jerr);
	if (!j)
		return err_refuse(EINVAL, "%s: %s:%d:%d: %s", what, name, jerr.line, jerr.column, jerr.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return err_refuse(EINVAL, "%s: %s: must be a JSON object", what, name);
	}
	*ret = j;
	return 0;
}

static int load_blob_json(int layout_fd, const char *what, const char *digest, const char *field, json_t **ret)
{
	_cleanup_close_ int fd = open_blob(layout_fd, what, digest, field);
	if (fd < 0)
		return fd;
	return load_json_fd(fd, what, field, digest, ret);
}

static const char *host_goarch(void)
{
	static const struct { const char *kernel, *oci; } map[] = {
		{ "x86_64", "amd64" }, { "aarch64", "arm64" }, { "i686", "386" }, { "i386", "386" },
		{ "armv7l", "arm" }, { "ppc64le", "ppc64le" }, { "s390x", "s390x" }, { "riscv64", "riscv64" },
	};
	static struct utsname u;
	if (uname(&u) < 0)
		return "amd64";
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (!strcmp(u.machine, map[i].kernel))
			return map[i].oci;
	return u.machine;
}

static bool is_index_type(const char *mt)
{
	return mt && (!strcmp(mt, "application/vnd.oci.image.index.v1+json") ||
		      !strcmp(mt, "application/vnd.docker.distribution.manifest.list.v2+json"));
}

/* The descriptor for this host out of an index's manifests[]: the first
 * whose platform matches, else the first without a platform, else the only
 * one. */
static int pick_manifest(json_t *index, const char *what, const char *name, json_t **ret)
{
	json_t *ms = json_object_get(index, "manifests");
	if (!json_is_array(ms) || json_array_size(ms) == 0)
		return err_refuse(EINVAL, "%s: %s: manifests: must be a non-empty array", what, name);
	const char *arch = host_goarch();
	json_t *no_platform = NULL, *d;
	size_t i;
	json_array_foreach(ms, i, d) {
		if (!json_is_object(d))
			return err_refuse(EINVAL, "%s: %s: manifests[%zu]: must be an object", what, name, i);
		json_t *pf = json_object_get(d, "platform");
		if (!pf) {
			if (!no_platform)
				no_platform = d;
			continue;
		}
		const char *a = json_string_value(json_object_get(pf, "architecture"));
		const char *os = json_string_value(json_object_get(pf, "os"));
		if (a && !strcmp(a, arch) && (!os || !strcmp(os, "linux"))) {
			*ret = d;
			return 0;
		}
	}
	if (no_platform) {
		*ret = no_platform;
		return 0;
	}
	if (json_array_size(ms) == 1) {
		*ret = json_array_get(ms, 0);
		return 0;
	}
	return err_refuse(ENOENT, "%s: %s: no manifest for linux/%s", what, name, arch);
}

static bool layer_type_ok(const char *mt)
{
	/* Plain, gzip and zstd tar layers of OCI and Docker; libarchive detects
	 * the compression itself. Encrypted layers cannot be applied. */
	return !mt || (strstr(mt, "tar") && !strstr(mt, "encrypted"));
}

int image_oci_apply(int layout_fd, const char *what, int root_fd, const struct image_progress *p,
		    struct image_budget *budget, char ret_fingerprint[IMAGE_FINGERPRINT_LEN + 1], char **ret_arch)
{
	_cleanup_json_ json_t *layout = NULL, *index = NULL, *manifest = NULL, *config = NULL;
	char fwhat[512];
	{
		snprintf(fwhat, sizeof fwhat, "%s: oci-layout", what);
		_cleanup_close_ int fd = image_open_regular(layout_fd, "oci-layout", true, fwhat);
		if (fd < 0)
			return fd;
		int r = load_json_fd(fd, what, "oci-layout", NULL, &layout);
		if (r < 0)
			return r;
		const char *v = json_string_value(json_object_get(layout, "imageLayoutVersion"));
		if (!v || strncmp(v, "1.", 2))
			return err_refuse(EINVAL, "%s: oci-layout: imageLayoutVersion: must be 1.x, got \"%s\"", what,
				       v ? v : "(missing)");
	}
	{
		snprintf(fwhat, sizeof fwhat, "%s: index.json", what);
		_cleanup_close_ int fd = image_open_regular(layout_fd, "index.json", true, fwhat);
		if (fd < 0)
			return fd;
		int r = load_json_fd(fd, what, "index.json", NULL, &index);
		if (r < 0)
			return r;
	}
	/* index.json -> (nested indexes) -> manifest */
	json_t *cur = index;
	char name[128] = "index.json";
	const char *manifest_digest = NULL;
	_cleanup_json_ json_t *nested = NULL;
	for (int depth = 0;; depth++) {
		if (depth > 4)
			return err_set(ELOOP, "%s: indexes nested more than 4 deep", what);
		json_t *desc = NULL;
		int r = pick_manifest(cur, what, name, &desc);
		if (r < 0)
			return r;
		const char *digest = json_string_value(json_object_get(desc, "digest"));
		const char *mt = json_string_value(json_object_get(desc, "mediaType"));
		json_t *blob = NULL;
		char field[128];
		snprintf(field, sizeof field, "manifest %.80s", digest ? digest : "?");
		if ((r = load_blob_json(layout_fd, what, digest, field, &blob)) < 0)
			return r;
		if (!mt)
			mt = json_string_value(json_object_get(blob, "mediaType"));
		if (is_index_type(mt) || (!mt && json_object_get(blob, "manifests"))) {
			if (nested)
				json_decref(nested);
			nested = blob;
			cur = blob;
			snprintf(name, sizeof name, "index %.80s", digest);
			continue;
		}
		manifest = blob;
		manifest_digest = digest;
		break;
	}
	char mname[128];
	snprintf(mname, sizeof mname, "manifest %.80s", manifest_digest);

	json_t *cdesc = json_object_get(manifest, "config");
	char cname[160];
	snprintf(cname, sizeof cname, "%s: config", mname);
	int r = load_blob_json(layout_fd, what, json_string_value(json_object_get(cdesc, "digest")), cname, &config);
	if (r < 0)
		return r;
	const char *os = json_string_value(json_object_get(config, "os"));
	if (os && strcmp(os, "linux"))
		return err_refuse(EINVAL, "%s: config: os: only linux images can be imported, got \"%s\"", what, os);
	const char *arch = json_string_value(json_object_get(config, "architecture"));

	json_t *layers = json_object_get(manifest, "layers");
	if (!json_is_array(layers))
		return err_refuse(EINVAL, "%s: %s: layers: must be an array", what, mname);
	uint64_t total = 0, base = 0;
	size_t i;
	json_t *l;
	json_array_foreach(layers, i, l) {
		json_int_t sz = json_integer_value(json_object_get(l, "size"));
		if (sz > 0)
			total += (uint64_t)sz;
	}
	json_array_foreach(layers, i, l) {
		const char *digest = json_string_value(json_object_get(l, "digest"));
		const char *mt = json_string_value(json_object_get(l, "mediaType"));
		char lwhat[200];
		snprintf(lwhat, sizeof lwhat, "%s: layers[%zu] (%.19s)", what, i, digest ? digest : "?");
		if (!json_is_object(l))
			return err_refuse(EINVAL, "%s: must be an object", lwhat);
		if (!layer_type_ok(mt))
			return err_refuse(EINVAL, "%s: unsupported layer media type \"%s\"", lwhat, mt);
		_cleanup_close_ int fd = open_blob(layout_fd, what, digest, lwhat + strlen(what) + 2);
		if (fd < 0)
			return fd;
		struct image_reader *rd = malloc(sizeof *rd);
		if (!rd)
			return err_set(ENOMEM, "%s", lwhat);
		if ((r = image_reader_init(rd, fd, lwhat)) < 0) {
			free(rd);
			return r;
		}
		rd->progress = p;
		rd->base = base;
		rd->total = total;
		rd->budget = budget;
		char hex[IMAGE_FINGERPRINT_LEN + 1];
		r = image_apply_layer(root_fd, rd);
		if (r == 0)
			r = image_reader_finish(rd, hex);
		base += rd->done;
		image_reader_free(rd);
		free(rd);
		if (r < 0)
			return r;
		if (strcmp(hex, digest + 7))
			return err_refuse(EINVAL, "%s: content does not match its digest (got sha256:%s)", lwhat, hex);
	}
	char *a = strdup(arch ? image_arch_from_oci(arch) : "unknown");
	if (!a)
		return err_set(ENOMEM, "%s", what);
	memcpy(ret_fingerprint, manifest_digest + 7, IMAGE_FINGERPRINT_LEN + 1);
	*ret_arch = a;
	return 0;
}
