/* Pure helpers of the image store: member names, whiteouts, aliases,
 * digests, architecture names, export file names, sizes. No system calls. */
#include "image.h"
#include "util/cleanup.h"
#include "util/err.h"
#include <elf.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

int image_member_path(const char *name, const char *kind, char **ret)
{
	if (!name || !*name)
		return err_set(0, "%s with an empty name", kind);
	if (name[0] == '/')
		return err_set(0, "%s '%s': absolute path refused", kind, name);
	size_t len = strlen(name);
	if (len >= PATH_MAX)
		return err_set(ENAMETOOLONG, "%s '%.64s...'", kind, name);
	_cleanup_free_ char *out = malloc(len + 1);
	if (!out)
		return err_set(ENOMEM, "%s '%s'", kind, name);
	size_t o = 0;
	for (const char *p = name; *p;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return err_set(0, "%s '%s': '..' component refused (it would leave the image)", kind, name);
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	out[o] = '\0';
	*ret = TAKE_PTR(out);
	return 0;
}

bool image_symlink_escapes(const char *linkpath, const char *target)
{
	if (!target || target[0] == '/')
		return false;
	long depth = 0; /* components of the directory holding the link */
	for (const char *p = linkpath; *p; p++)
		if (*p == '/')
			depth++;
	for (const char *p = target; *p;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < 0)
				return true;
		} else if (n > 0 && !(n == 1 && p[0] == '.')) {
			depth++;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	return false;
}

enum image_whiteout image_whiteout_kind(const char *base, const char **ret_target)
{
	static const char prefix[] = ".wh.";
	if (strncmp(base, prefix, sizeof prefix - 1))
		return WHITEOUT_NONE;
	if (!strcmp(base, ".wh..wh..opq"))
		return WHITEOUT_OPAQUE;
	if (!strncmp(base, ".wh..wh.", 8))
		return WHITEOUT_META;
	if (ret_target)
		*ret_target = base + sizeof prefix - 1;
	return WHITEOUT_FILE;
}

int image_alias_check(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0)
		return err_set(0, "alias: must not be empty");
	if (n > 64)
		return err_set(0, "alias \"%.64s...\": longer than 64 characters", name);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return err_set(0, "alias \"%s\": invalid character '%c' at %zu (letters, digits, '.', '_', '-'; "
				       "first a letter or digit)", name, c, i);
	}
	return 0;
}

bool image_digest_valid(const char *digest)
{
	if (!digest || strncmp(digest, "sha256:", 7))
		return false;
	const char *h = digest + 7;
	size_t i = 0;
	for (; h[i]; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return false;
	return i == IMAGE_FINGERPRINT_LEN;
}

static const struct { const char *oci, *kernel; } arches[] = {
	{ "amd64", "x86_64" }, { "386", "i686" }, { "arm64", "aarch64" }, { "arm", "armv7l" },
	{ "ppc64le", "ppc64le" }, { "s390x", "s390x" }, { "riscv64", "riscv64" },
	{ "mips64le", "mips64" }, { "loong64", "loongarch64" },
};

const char *image_arch_from_oci(const char *goarch)
{
	for (size_t i = 0; i < ARRAY_SIZE(arches); i++)
		if (!strcmp(goarch, arches[i].oci))
			return arches[i].kernel;
	return goarch;
}

const char *image_arch_from_elf(unsigned machine)
{
	switch (machine) {
	case EM_X86_64: return "x86_64";
	case EM_386: return "i686";
	case EM_AARCH64: return "aarch64";
	case EM_ARM: return "armv7l";
	case EM_PPC64: return "ppc64le";
	case EM_S390: return "s390x";
	case EM_RISCV: return "riscv64";
	case EM_MIPS: return "mips64";
	default: return NULL;
	}
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && !strcmp(s + n - m, suffix);
}

int image_compression_for(const char *path)
{
	static const struct { const char *suffix; enum image_compression c; } names[] = {
		{ ".tar", COMPRESS_NONE }, { ".tar.gz", COMPRESS_GZIP }, { ".tgz", COMPRESS_GZIP },
		{ ".tar.zst", COMPRESS_ZSTD }, { ".tar.zstd", COMPRESS_ZSTD }, { ".tar.xz", COMPRESS_XZ },
	};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (ends_with(path, names[i].suffix))
			return names[i].c;
	return err_set(0, "'%s': export file name must end in .tar, .tar.gz, .tgz, .tar.zst or .tar.xz", path);
}

uint64_t image_expand_allowance(uint64_t in, uint64_t ratio)
{
	uint64_t a = ratio && in > UINT64_MAX / ratio ? UINT64_MAX : in * ratio;
	return a < IMAGE_RATIO_FLOOR ? IMAGE_RATIO_FLOOR : a;
}

const char *image_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	if (bytes < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	double v = (double)bytes / 1024;
	size_t u = 0;
	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}
