/* Unit tests for the kernel version check: real uname release strings. */
#include "util/kernel.h"
#include "util/err.h"
#include "unit.h"
#include <errno.h>

static void test_parse(void)
{
	static const struct { const char *release; unsigned major, minor; } good[] = {
		{ "5.10.0-28-amd64", 5, 10 }, { "6.18.44-fc-v1147", 6, 18 }, { "5.12", 5, 12 },
		{ "4.19.0+", 4, 19 }, { "5.12.0-rc1", 5, 12 }, { "2.6.32-754.el6.x86_64", 2, 6 },
		{ "6.1.0-18-cloud-amd64", 6, 1 }, { "5.15.0-1051-azure", 5, 15 }, { "10.0", 10, 0 },
		{ "2.6.78-fc-v1147", 2, 6 }, /* setarch --uname-2.6 */
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		unsigned ma = 99, mi = 99;
		CHECK_INT(kernel_release_parse(good[i].release, &ma, &mi), 0);
		CHECK_INT(ma, good[i].major);
		CHECK_INT(mi, good[i].minor);
	}
	static const char *const bad[] = { "", "5", "5.", ".12", "v5.12", "5.x", "abc", "99999999999.1", "5.99999999999",
					   "-5.12", " 5.12" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		unsigned ma = 99, mi = 99;
		CHECK_INT(kernel_release_parse(bad[i], &ma, &mi), -EINVAL);
		CHECK_INT(ma, 99); /* outputs untouched on failure */
		CHECK_INT(mi, 99);
	}
	unsigned ma, mi;
	CHECK_INT(kernel_release_parse(NULL, &ma, &mi), -EINVAL);
}

static void test_compare(void)
{
	/* against 5.12: numeric, not lexical (5.9 < 5.12 < 5.100) */
	static const struct { const char *release; bool ok; } cases[] = {
		{ "5.10.0-28-amd64", false }, { "6.18.44-fc-v1147", true }, { "5.12", true },
		{ "4.19.0+", false }, { "5.11.22", false }, { "5.12.0-rc1", true }, { "5.9.16", false },
		{ "5.100.1", true }, { "6.0", true }, { "3.99", false }, { "2.6.78-fc-v1147", false },
		{ "garbage", false }, { "", false },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bool got = kernel_release_at_least(cases[i].release, 5, 12);
		if (got == cases[i].ok) {
			unit_pass++;
		} else {
			unit_fail++;
			fprintf(stderr, "test-kernel.c: %s at least 5.12: got %d, want %d\n", cases[i].release, got,
				cases[i].ok);
		}
	}
	CHECK(kernel_release_at_least("5.12", KERNEL_MIN_MAJOR, KERNEL_MIN_MINOR));
	CHECK(!kernel_release_at_least("5.11", KERNEL_MIN_MAJOR, KERNEL_MIN_MINOR));
}

/* The machine running the tests is new enough (the integration tests need it). */
static void test_check_here(void)
{
	err_clear();
	CHECK_INT(kernel_check(), 0);
}

int main(void)
{
	test_parse();
	test_compare();
	test_check_here();
	return unit_done("test-kernel");
}
