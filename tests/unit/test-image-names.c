/* Unit tests of the image store's pure helpers: member names, symlink
 * escapes, whiteouts, aliases, digests, architectures, export names, sizes,
 * and the small hash map. */
#include "manager/image.h"
#include "manager/strmap.h"
#include "util/err.h"
#include "unit.h"
#include <elf.h>
#include <stdio.h>

static void check_path(const char *in, const char *want)
{
	char *out = NULL;
	int r = image_member_path(in, "member", &out);
	if (want) {
		CHECK_INT(r, 0);
		CHECK_STR(out, want);
	} else {
		CHECK(r < 0);
		CHECK(out == NULL);
	}
	free(out);
}

static void test_member_path(void)
{
	check_path("a/b", "a/b");
	check_path("./a//b/", "a/b");
	check_path("./", "");
	check_path(".", "");
	check_path("././etc/./passwd", "etc/passwd");
	check_path("a/..b/c..", "a/..b/c..");
	check_path(".wh..wh..opq", ".wh..wh..opq");
	check_path("/etc/passwd", NULL);
	check_path("..", NULL);
	check_path("../x", NULL);
	check_path("a/../../x", NULL);
	check_path("a/..", NULL);
	check_path("", NULL);
	char *out = NULL;
	image_member_path("../x", "hard link target", &out);
	CHECK_STR(err_msg(), "hard link target '../x': '..' component refused (it would leave the image)");
	image_member_path("/abs", "member", &out);
	CHECK_STR(err_msg(), "member '/abs': absolute path refused");
}

static void test_symlink_escapes(void)
{
	CHECK(!image_symlink_escapes("bin/sh", "busybox"));
	CHECK(!image_symlink_escapes("bin/sh", "/bin/busybox"));
	CHECK(!image_symlink_escapes("bin/sh", "/../../../etc"));   /* absolute: resolved in the root */
	CHECK(!image_symlink_escapes("usr/bin/awk", "../../bin/busybox"));
	CHECK(image_symlink_escapes("usr/bin/awk", "../../../bin/busybox"));
	CHECK(image_symlink_escapes("evil", ".."));
	CHECK(image_symlink_escapes("evil", "../etc"));
	CHECK(!image_symlink_escapes("a/evil", ".."));
	CHECK(!image_symlink_escapes("a/evil", "./b/../.."));
	CHECK(image_symlink_escapes("a/evil", "./b/../../.."));
	CHECK(!image_symlink_escapes("x", "a//b/./c"));
}

static void test_whiteouts(void)
{
	const char *t = NULL;
	CHECK_INT(image_whiteout_kind("passwd", &t), WHITEOUT_NONE);
	CHECK_INT(image_whiteout_kind(".wh..wh..opq", &t), WHITEOUT_OPAQUE);
	CHECK_INT(image_whiteout_kind(".wh..wh.plnk", &t), WHITEOUT_META);
	CHECK_INT(image_whiteout_kind(".wh.passwd", &t), WHITEOUT_FILE);
	CHECK_STR(t, "passwd");
	CHECK_INT(image_whiteout_kind(".wh.", &t), WHITEOUT_FILE);
	CHECK_STR(t, "");
	CHECK_INT(image_whiteout_kind(".whx", &t), WHITEOUT_NONE);
}

static void test_aliases(void)
{
	CHECK_INT(image_alias_check("busybox"), 0);
	CHECK_INT(image_alias_check("debian-12.2_slim"), 0);
	CHECK_INT(image_alias_check("9lives"), 0);
	CHECK(image_alias_check("") < 0);
	CHECK(image_alias_check("-x") < 0);
	CHECK(image_alias_check(".hidden") < 0);
	CHECK(image_alias_check("a/b") < 0);
	CHECK_CONTAINS(err_msg(), "invalid character '/' at 1");
	CHECK(image_alias_check("a b") < 0);
	char long_name[80];
	memset(long_name, 'a', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	CHECK(image_alias_check(long_name) < 0);
	long_name[64] = '\0';
	CHECK_INT(image_alias_check(long_name), 0);
}

static void test_digests(void)
{
	const char *good = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	CHECK(image_digest_valid(good));
	CHECK(!image_digest_valid("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
	CHECK(!image_digest_valid("sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	CHECK(!image_digest_valid("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"));
	CHECK(!image_digest_valid("sha256:../../../../../../../../../../../../../../../../../etc/passwd"));
	CHECK(!image_digest_valid("sha256:"));
	CHECK(!image_digest_valid(NULL));
}

static void test_arch(void)
{
	CHECK_STR(image_arch_from_oci("amd64"), "x86_64");
	CHECK_STR(image_arch_from_oci("arm64"), "aarch64");
	CHECK_STR(image_arch_from_oci("386"), "i686");
	CHECK_STR(image_arch_from_oci("weird"), "weird");
	CHECK_STR(image_arch_from_elf(EM_X86_64), "x86_64");
	CHECK_STR(image_arch_from_elf(EM_AARCH64), "aarch64");
	CHECK(image_arch_from_elf(0xffff) == NULL);
}

static void test_compression(void)
{
	CHECK_INT(image_compression_for("x.tar"), COMPRESS_NONE);
	CHECK_INT(image_compression_for("/a/b.tar.gz"), COMPRESS_GZIP);
	CHECK_INT(image_compression_for("b.tgz"), COMPRESS_GZIP);
	CHECK_INT(image_compression_for("b.tar.zst"), COMPRESS_ZSTD);
	CHECK_INT(image_compression_for("b.tar.xz"), COMPRESS_XZ);
	CHECK(image_compression_for("b.zip") < 0);
	CHECK(image_compression_for(".tar") < 0);
	CHECK_CONTAINS(err_msg(), "must end in .tar");
}

static void test_sizes(void)
{
	char buf[32];
	CHECK_STR(image_format_size(0, buf, sizeof buf), "0 B");
	CHECK_STR(image_format_size(1023, buf, sizeof buf), "1023 B");
	CHECK_STR(image_format_size(1024, buf, sizeof buf), "1.00 KiB");
	CHECK_STR(image_format_size(1982425, buf, sizeof buf), "1.89 MiB");
	CHECK_STR(image_format_size(50ULL << 20, buf, sizeof buf), "50.0 MiB");
	CHECK_STR(image_format_size(300ULL << 30, buf, sizeof buf), "300 GiB");
	CHECK_STR(image_format_size(5ULL << 50, buf, sizeof buf), "5120 TiB");
}

/* The expansion an import allows an archive: a 300 KB .tar.gz may not
 * become 300 MB, a 10 KB tar may not declare 4 GiB; small ones get the floor. */
static void test_expand_allowance(void)
{
	CHECK_INT(image_expand_allowance(300000, 100), IMAGE_RATIO_FLOOR);
	CHECK(image_expand_allowance(300000, 100) < 300000000ULL);
	CHECK(image_expand_allowance(10240, 100) < (4ULL << 30));
	CHECK_INT(image_expand_allowance(1ULL << 30, 100), 100ULL << 30);
	CHECK_INT(image_expand_allowance(0, 100), IMAGE_RATIO_FLOOR);
	CHECK_INT(image_expand_allowance(UINT64_MAX / 2, 3), UINT64_MAX); /* saturates */
	CHECK_INT(image_expand_allowance(1ULL << 20, 1000), 1000ULL << 20);
	CHECK_INT(image_expand_allowance(1ULL << 20, 1), IMAGE_RATIO_FLOOR);
}

static void test_strmap(void)
{
	struct strmap m = { 0 };
	CHECK(!strmap_has(&m, "x"));
	CHECK(strmap_get(&m, "x") == NULL);
	char key[32], val[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof key, "k%d", i);
		snprintf(val, sizeof val, "v%d", i);
		CHECK_INT(strmap_put(&m, key, i % 2 ? val : NULL), 0);
	}
	CHECK_INT(m.len, 1000);
	CHECK(strmap_has(&m, "k0") && strmap_get(&m, "k0") == NULL);
	CHECK_STR(strmap_get(&m, "k999"), "v999");
	CHECK_INT(strmap_put(&m, "k999", "again"), 0);
	CHECK_STR(strmap_get(&m, "k999"), "again");
	CHECK_INT(m.len, 1000);
	CHECK(!strmap_has(&m, "k1000"));
	strmap_clear(&m);
	CHECK(!strmap_has(&m, "k1"));
}

int main(void)
{
	test_expand_allowance();
	test_member_path();
	test_symlink_escapes();
	test_whiteouts();
	test_aliases();
	test_digests();
	test_arch();
	test_compression();
	test_sizes();
	test_strmap();
	return unit_done("test-image-names");
}
