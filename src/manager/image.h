/* The image store: <state>/images/<fingerprint>/rootfs plus rows in the
 * state database. Images come from the built-in busybox image, rootfs
 * tarballs (.tar, .tar.gz, .tar.zst, ...) and OCI image layouts (directory
 * or archive); every import is extracted into a temporary directory inside
 * the store and renamed into place only when complete. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAGE_BUILTIN_ALIAS "busybox"
#define IMAGE_FINGERPRINT_LEN 64

struct image_store;

struct image_info {
	char *fingerprint;  /* 64 hex digits */
	char *type;         /* "builtin", "rootfs" or "oci" */
	char *source;       /* the file or directory it was imported from */
	char *architecture; /* kernel name: x86_64, aarch64, ... */
	uint64_t size;      /* bytes of file data in the rootfs */
	int64_t created;    /* unix time */
	char **aliases;     /* NULL-terminated, sorted */
};
void image_info_clear(struct image_info *info);
void image_info_array_free(struct image_info *a, size_t n);

/* Progress of a long import or export, for a front end to draw; total is 0
 * when unknown. Called often: the callee rate-limits. */
struct image_progress {
	void (*fn)(void *userdata, const char *phase, uint64_t done, uint64_t total);
	void *userdata;
};

/* Open the store under state_dir (created when absent, with its database);
 * the built-in busybox image is made on first use. */
int image_store_open(const char *state_dir, struct image_store **ret);

/* Import limits: an import writes at most max_bytes, and each archive in it
 * expands to at most max_ratio times its own size once past
 * IMAGE_RATIO_FLOOR (a small archive may always give that much). */
#define IMAGE_MAX_BYTES_DEFAULT (16ULL << 30)
#define IMAGE_MAX_RATIO_DEFAULT 100
#define IMAGE_RATIO_FLOOR (64ULL << 20)
void image_store_set_import_limits(struct image_store *s, uint64_t max_bytes, uint64_t max_ratio);
void image_store_close(struct image_store *s);

/* Every image, sorted by first alias then fingerprint. */
int image_list(struct image_store *s, struct image_info **ret, size_t *ret_n);
/* ref: an alias, or a unique prefix of a fingerprint. */
int image_get(struct image_store *s, const char *ref, struct image_info *ret);
/* Import a rootfs tarball or an OCI image layout (directory or archive).
 * alias may be NULL. *ret_fingerprint (optional) is malloc'd. */
int image_import(struct image_store *s, const char *path, const char *alias,
		 const struct image_progress *progress, char **ret_fingerprint);
/* Write the image's rootfs as a tarball; compression from the file name
 * (.tar, .tar.gz/.tgz, .tar.zst, .tar.xz). */
int image_export(struct image_store *s, const char *ref, const char *path,
		 const struct image_progress *progress);
/* Remove an image and its aliases (not the built-in one). */
int image_delete(struct image_store *s, const char *ref);
/* Absolute path of an image's rootfs (for the instance code). */
int image_rootfs_path(struct image_store *s, const char *ref, char **ret);

/* For the instance code: the store's database connection, and an image
 * with its row id. */
struct db;
struct db *image_store_db(struct image_store *s);
int image_resolve_id(struct image_store *s, const char *ref, struct image_info *ret, int64_t *ret_id);

/* ---- pure helpers (tests/unit/test-image-*.c) ------------------------- */

/* Canonical relative form of an archive member name: "./a//b/" -> "a/b",
 * "." -> "". Refuses absolute names and ".." components (-EINVAL, message
 * "<kind> '<name>': ..."; kind is e.g. "member" or "hard link target"). */
int image_member_path(const char *name, const char *kind, char **ret);
/* Does a symlink at `linkpath` (canonical, relative to the image root) with
 * target `target` lead above the image root? Absolute targets are resolved
 * inside the root by whoever follows them, so they do not. */
bool image_symlink_escapes(const char *linkpath, const char *target);
enum image_whiteout { WHITEOUT_NONE, WHITEOUT_FILE, WHITEOUT_OPAQUE, WHITEOUT_META };
/* Classify a member's basename: ".wh..wh..opq" (opaque), ".wh..wh.*" (aufs
 * metadata, skipped), ".wh.NAME" (*ret_target = NAME). */
enum image_whiteout image_whiteout_kind(const char *base, const char **ret_target);
/* Alias names: [A-Za-z0-9][A-Za-z0-9._-]*, at most 64 bytes. */
int image_alias_check(const char *name);
/* "sha256:<64 lowercase hex>"? */
bool image_digest_valid(const char *digest);
/* OCI/Go architecture names to the kernel's (amd64 -> x86_64); unknown
 * names are returned as they are. */
const char *image_arch_from_oci(const char *goarch);
/* The kernel's name for an ELF e_machine, or NULL. */
const char *image_arch_from_elf(unsigned machine);
enum image_compression { COMPRESS_NONE, COMPRESS_GZIP, COMPRESS_ZSTD, COMPRESS_XZ };
/* Compression implied by an export file name, -EINVAL when not a tarball name. */
int image_compression_for(const char *path);
/* What an archive of `in` bytes may expand to: in * ratio, at least
 * IMAGE_RATIO_FLOOR, UINT64_MAX on overflow. */
uint64_t image_expand_allowance(uint64_t in, uint64_t ratio);
/* "1.5 MiB" style sizes into buf. */
const char *image_format_size(uint64_t bytes, char *buf, size_t len);
