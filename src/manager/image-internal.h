/* Shared between the image store files: image.c (store, database rows),
 * image-extract.c (applying tar layers safely), image-oci.c (OCI layouts),
 * image-export.c, image-builtin.c (the busybox image). */
#pragma once
#include "image.h"
#include "db.h"
#include <archive.h>
#include <openssl/evp.h>
#include <stdio.h>

/* A refusal of bad input: the message says it all, no strerror appended. */

static inline const char *archive_msg(struct archive *a)
{
	const char *m = archive_error_string(a);
	return m ? m : "unknown error";
}

struct image_store {
	struct db *db;
	char *state_dir;
	char *images_dir;
	int images_fd;
	uint64_t max_bytes, max_ratio; /* import limits (image_store_set_import_limits) */
};

/* What one import may write: max_bytes in all (every layer together), and
 * each archive at most max_ratio times its own size (image_expand_allowance).
 * Every member counts its declared size (a sparse file its whole length)
 * plus 512 bytes, before anything of it is written. */
struct image_budget {
	uint64_t max_bytes, max_ratio;
	uint64_t used;
};

/* Reads an input file for libarchive, hashing (sha256) and reporting progress
 * on the way. `base` is added to the progress of this file (several layers
 * make one bar). */
struct image_reader {
	int fd;
	const char *what;     /* names the input in errors */
	EVP_MD_CTX *md;
	uint64_t done, base, total;
	const struct image_progress *progress;
	const char *phase;
	int error;            /* -errno of a failed read */
	struct image_budget *budget; /* NULL: no limits */
	uint64_t in_size;     /* bytes of the input file (0: unknown) */
	uint64_t expanded;    /* bytes its members declared so far */
	unsigned char buf[1 << 16];
};
int image_reader_init(struct image_reader *rd, int fd, const char *what);
/* Read what libarchive left unread (so the digest covers the whole file),
 * then write the sha256 as 64 hex digits + NUL. */
int image_reader_finish(struct image_reader *rd, char hex[IMAGE_FINGERPRINT_LEN + 1]);
void image_reader_free(struct image_reader *rd);
void image_progress_report(const struct image_progress *p, const char *phase, uint64_t done, uint64_t total);

/* Apply one tar stream (any compression libarchive knows) onto the
 * directory root_fd, as an OCI layer: whiteouts remove, opaque markers
 * empty a directory of what lower layers put there. Every path is resolved
 * beneath root_fd without following symlinks; absolute names, "..",
 * symlinks leading above the root, hard links to outside and device nodes
 * are refused with a message naming the member. */
int image_apply_layer(int root_fd, struct image_reader *rd);

/* OCI image layout in layout_fd (extracted or given as a directory): apply
 * the manifest's layers onto root_fd. Returns the manifest digest (hex) as
 * the fingerprint and the architecture from the image config. */
int image_oci_apply(int layout_fd, const char *what, int root_fd, const struct image_progress *p,
		    struct image_budget *budget, char ret_fingerprint[IMAGE_FINGERPRINT_LEN + 1], char **ret_arch);
/* Does dir_fd hold an OCI image layout (oci-layout file and index.json)? */
bool image_oci_is_layout(int dir_fd);

/* Write the tree under root_fd as a tarball to out_fd. */
int image_export_tree(int root_fd, int out_fd, enum image_compression c, const char *what,
		      uint64_t total, const struct image_progress *p);

/* Build the busybox rootfs into the empty directory root_fd from the host's
 * static busybox; the fingerprint is the sha256 of a version tag and the
 * binary. */
int image_builtin_build(int root_fd, char fingerprint[IMAGE_FINGERPRINT_LEN + 1], char **ret_source);

/* Open path as a regular file, refusing anything else (a FIFO, a device)
 * before it is opened for reading; with in_root, path is resolved beneath
 * dir_fd (openat_in_root). Errors name `what`. */
int image_open_regular(int dir_fd, const char *path, bool in_root, const char *what);

/* Bytes of file data under root_fd (hard links counted once). */
int image_tree_size(int root_fd, uint64_t *ret);
/* Architecture of the rootfs from its /bin/sh (or /bin/busybox) ELF header;
 * the host's when neither tells. */
char *image_detect_arch(int root_fd);
void image_hex(const unsigned char *d, size_t n, char *out);
