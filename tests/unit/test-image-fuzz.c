/* Fuzzing of the image importers, run briefly in every `make check` (and
 * under ASan+UBSan).
 * - Layer extraction (image_apply_layer), structure-aware: random sequences
 *   of tar members whose names and link targets are drawn from hostile
 *   pieces ("..", absolute paths, symlinks to outside, whiteouts, opaque
 *   markers) are written with libarchive and applied onto an empty root.
 *   Whatever the outcome, nothing outside the root may change, no device
 *   node may appear inside it, and a refusal's message names the archive.
 * - OCI layouts (image_oci_apply): index.json, the manifest and the config
 *   are mutated (bytes flipped, dropped, tokens inserted, truncated) with
 *   the digests recomputed, so the JSON parsers see the damage. Every input
 *   must import or fail with a message naming the layout. */
#include "unit.h"
#include "manager/image-internal.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define ITERATIONS 1000

static uint64_t rng = 0x243f6a8885a308d3ULL;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static char base[64];
static char outside_abs[128];

static const char *pick_piece(void)
{
	static const char *const pieces[] = {
		"a", "b", "evil", "a", "b", "x", "a", "b", ".", "", ".wh.a", ".wh.evil", ".wh..wh..opq",
		".wh..wh.plnk", "outside", "target", "x", "dev", "null", "..",
	};
	if (next() % 40 == 0)
		return outside_abs;
	return pieces[next() % ARRAY_SIZE(pieces)];
}

static void random_path(char *buf, size_t len)
{
	buf[0] = '\0';
	int parts = 1 + (int)(next() % 4);
	if (next() % 30 == 0)
		snprintf(buf, len, "/");
	else if (next() % 8 == 0)
		snprintf(buf, len, "./");
	for (int i = 0; i < parts; i++) {
		size_t n = strlen(buf);
		snprintf(buf + n, len - n, "%s%s", i ? "/" : "", pick_piece());
	}
	if (!buf[0])
		snprintf(buf, len, "a");
}

/* One random archive into the memfd; returns its fd. */
static int random_archive(void)
{
	int fd = memfd_create("layer", MFD_CLOEXEC);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (next() % 3 == 0)
		archive_write_add_filter_gzip(a);
	archive_write_open_fd(a, fd);
	int n = 1 + (int)(next() % 10);
	for (int i = 0; i < n; i++) {
		char path[512], target[512];
		random_path(path, sizeof path);
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, path);
		archive_entry_set_mtime(e, 1700000000, 0);
		archive_entry_set_uid(e, next() % 2 ? 0 : 1000);
		archive_entry_set_gid(e, 0);
		const char *data = "payload";
		bool with_data = false;
		switch (next() % 7) {
		case 0: case 1:
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, next() % 2 ? 0644 : 04755);
			archive_entry_set_size(e, 7);
			with_data = true;
			break;
		case 2:
			archive_entry_set_filetype(e, AE_IFDIR);
			archive_entry_set_perm(e, 0755);
			break;
		case 3:
			random_path(target, sizeof target);
			if (next() % 3 == 0)
				snprintf(target, sizeof target, "%s", next() % 2 ? outside_abs : "../../../outside");
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_perm(e, 0777);
			archive_entry_set_symlink(e, target);
			break;
		case 4:
			random_path(target, sizeof target);
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, 0644);
			archive_entry_set_hardlink(e, target);
			break;
		case 5:
			archive_entry_set_filetype(e, next() % 2 ? AE_IFCHR : AE_IFIFO);
			archive_entry_set_perm(e, 0666);
			archive_entry_set_rdevmajor(e, 1);
			archive_entry_set_rdevminor(e, 3);
			break;
		default:
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, 0600);
			archive_entry_set_size(e, 0);
			break;
		}
		archive_write_header(a, e);
		if (with_data)
			archive_write_data(a, data, 7);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	/* Sometimes cut it short: a truncated archive must fail cleanly. */
	if (next() % 10 == 0) {
		struct stat st;
		if (fstat(fd, &st) == 0 && st.st_size > 0)
			(void)ftruncate(fd, (off_t)(next() % (uint64_t)st.st_size));
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static bool outside_intact(void)
{
	_cleanup_closedir_ DIR *d = opendir(base);
	struct dirent *e;
	int n = 0;
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n += !strcmp(e->d_name, "root") || !strcmp(e->d_name, "outside") ? 1 : 100;
	if (n != 2)
		return false;
	_cleanup_closedir_ DIR *o = opendir(outside_abs);
	n = 0;
	while (o && (e = readdir(o)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n += !strcmp(e->d_name, "target") ? 1 : 100;
	char path[256], *content = NULL;
	struct stat st;
	snprintf(path, sizeof path, "%s/target", outside_abs);
	bool ok = n == 1 && lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
		  read_file_at(AT_FDCWD, path, &content, NULL) == 0 && !strcmp(content, "host");
	free(content);
	return ok;
}

static bool has_device(int dir_fd)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
			return true;
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub = openat(fd, e->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0 && has_device(sub))
				return true;
		}
	}
	return false;
}

/* ---- OCI layouts ------------------------------------------------------- */

static const char *const json_tokens[] = {
	"{", "}", "[", "]", ",", ":", "\"", "null", "true", "-1", "1e400", "\"\\u0000\"",
	"\"sha256:\"", "\"../../etc/passwd\"", "\"application/vnd.oci.image.index.v1+json\"",
	"\"manifests\"", "\"layers\"", "\"digest\"", "\"platform\"", "\"architecture\"",
};

static size_t mutate(const char *seed, char *out, size_t cap)
{
	size_t n = strlen(seed);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, seed, n);
	int rounds = 1 + (int)(next() % 3);
	for (int i = 0; i < rounds && n > 0; i++) {
		size_t at = next() % n;
		switch (next() % 4) {
		case 0:
			out[at] ^= (char)(1 << (next() % 8));
			break;
		case 1: {
			size_t k = 1 + next() % 12;
			if (at + k > n)
				k = n - at;
			memmove(out + at, out + at + k, n - at - k);
			n -= k;
			break;
		}
		case 2: {
			const char *t = json_tokens[next() % ARRAY_SIZE(json_tokens)];
			size_t k = strlen(t);
			if (n + k >= cap)
				break;
			memmove(out + at + k, out + at, n - at);
			memcpy(out + at, t, k);
			n += k;
			break;
		}
		default:
			n = at;
			break;
		}
	}
	out[n] = '\0';
	return n;
}

/* Store data as a blob; digest (64 hex) into hex. */
static void put_blob(int layout, const void *data, size_t len, char hex[65])
{
	unsigned char d[32];
	unsigned dlen = sizeof d;
	EVP_Digest(data, len, d, &dlen, EVP_sha256(), NULL);
	image_hex(d, 32, hex);
	char path[128];
	snprintf(path, sizeof path, "blobs/sha256/%s", hex);
	int fd = openat(layout, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		(void)write_all(fd, data, len);
		close(fd);
	}
}

static void put_file(int layout, const char *name, const char *data)
{
	int fd = openat(layout, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		(void)write_all(fd, data, strlen(data));
		close(fd);
	}
}

static void fuzz_oci(int base_fd)
{
	/* one small gzip layer */
	size_t cap = 1 << 16, used = 0;
	char *layer = malloc(cap);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_gzip(a);
	archive_write_open_memory(a, layer, cap, &used);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "etc/hello");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, 5);
	archive_write_header(a, e);
	archive_write_data(a, "hello", 5);
	archive_entry_free(e);
	archive_write_close(a);
	archive_write_free(a);

	int ok = 0, refused = 0, bad_msg = 0;
	for (int i = 0; i < 600; i++) {
		(void)rm_rf_at(base_fd, "layout");
		mkdirat(base_fd, "layout", 0755);
		int layout = openat(base_fd, "layout", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		mkdirat(layout, "blobs", 0755);
		mkdirat(layout, "blobs/sha256", 0755);
		char lh[65], ch[65], mh[65];
		put_blob(layout, layer, used, lh);
		int which = (int)(next() % 4); /* 0 config, 1 manifest, 2 index, 3 oci-layout */
		char seed[2048], buf[4096];
		snprintf(seed, sizeof seed, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":"
			 "{\"type\":\"layers\",\"diff_ids\":[]}}");
		size_t n = which == 0 ? mutate(seed, buf, sizeof buf) : (size_t)snprintf(buf, sizeof buf, "%s", seed);
		put_blob(layout, buf, n, ch);
		snprintf(seed, sizeof seed, "{\"schemaVersion\":2,\"config\":{\"mediaType\":"
			 "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:%s\",\"size\":%zu},"
			 "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
			 "\"digest\":\"sha256:%s\",\"size\":%zu}]}", ch, n, lh, used);
		n = which == 1 ? mutate(seed, buf, sizeof buf) : (size_t)snprintf(buf, sizeof buf, "%s", seed);
		put_blob(layout, buf, n, mh);
		snprintf(seed, sizeof seed, "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
			 "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:%s\",\"size\":%zu,"
			 "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}", mh, n);
		if (which == 2)
			mutate(seed, buf, sizeof buf);
		put_file(layout, "index.json", which == 2 ? buf : seed);
		snprintf(seed, sizeof seed, "{\"imageLayoutVersion\":\"1.0.0\"}");
		if (which == 3)
			mutate(seed, buf, sizeof buf);
		put_file(layout, "oci-layout", which == 3 ? buf : seed);

		mkdirat(base_fd, "root", 0755);
		int root = openat(base_fd, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		char fp[IMAGE_FINGERPRINT_LEN + 1], *arch = NULL;
		err_clear();
		int r = image_oci_apply(layout, "layout", root, NULL, NULL, fp, &arch);
		if (r == 0)
			ok++;
		else
			refused++;
		if (r < 0 && strncmp(err_msg(), "layout: ", 8) && bad_msg++ < 5)
			fprintf(stderr, "oci iteration %d: message does not name the layout: %s\n", i, err_msg());
		if (r == 0)
			CHECK_STR(fp, mh);
		free(arch);
		close(root);
		close(layout);
		(void)rm_rf_at(base_fd, "root");
	}
	(void)rm_rf_at(base_fd, "layout");
	free(layer);
	CHECK_INT(bad_msg, 0);
	CHECK(ok > 0);
	CHECK(refused > 0);
	printf("test-image-fuzz: %d OCI layouts imported, %d refused\n", ok, refused);
}

int main(void)
{
	/* tmpfs when there is one: thousands of tiny trees are made and removed */
	snprintf(base, sizeof base, "/dev/shm/isola-test-fuzz.XXXXXX");
	if (!mkdtemp(base)) {
		snprintf(base, sizeof base, "/tmp/isola-test-fuzz.XXXXXX");
		if (!mkdtemp(base))
			return 1;
	}
	snprintf(outside_abs, sizeof outside_abs, "%s/outside", base);
	char path[256];
	snprintf(path, sizeof path, "%s/target", outside_abs);
	CHECK_INT(mkdir(outside_abs, 0755), 0);
	int tfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	CHECK(tfd >= 0 && write_all(tfd, "host", 4) == 0);
	if (tfd >= 0)
		close(tfd);
	int base_fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	int ok = 0, refused = 0, bad_msg = 0, escaped = 0, devices = 0;
	for (int i = 0; i < ITERATIONS; i++) {
		CHECK_INT(mkdirat(base_fd, "root", 0755), 0);
		int root = openat(base_fd, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int in = random_archive();
		struct image_reader *rd = malloc(sizeof *rd);
		image_reader_init(rd, in, "fuzz.tar");
		err_clear();
		int r = image_apply_layer(root, rd);
		if (r == 0) {
			char hex[IMAGE_FINGERPRINT_LEN + 1];
			r = image_reader_finish(rd, hex);
		}
		image_reader_free(rd);
		free(rd);
		if (r == 0)
			ok++;
		else
			refused++;
		if (r < 0 && getenv("FUZZ_VERBOSE"))
			fprintf(stderr, "%s\n", err_msg());
		if (r < 0 && strncmp(err_msg(), "fuzz.tar", 8)) {
			if (bad_msg++ < 5)
				fprintf(stderr, "iteration %d: message does not name the archive: %s\n", i, err_msg());
		}
		if (!outside_intact() && escaped++ < 1)
			fprintf(stderr, "iteration %d: something changed outside the root\n", i);
		if (has_device(root))
			devices++;
		close(in);
		close(root);
		CHECK_INT(rm_rf_at(base_fd, "root"), 0);
	}
	CHECK_INT(escaped, 0);
	CHECK_INT(devices, 0);
	CHECK_INT(bad_msg, 0);
	CHECK(ok > 0);
	CHECK(refused > 0);
	printf("test-image-fuzz: %d archives applied, %d refused\n", ok, refused);
	fuzz_oci(base_fd);
	close(base_fd);
	(void)rm_rf_at(AT_FDCWD, base);
	return unit_done("test-image-fuzz");
}
