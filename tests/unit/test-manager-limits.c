/* Unit tests of the instance limits: accepted and refused values with their
 * messages, the linux.resources object they become (read back through the
 * runtime's own resources parser), instance names and configuration keys,
 * and a seeded mutation fuzz of every parser. */
#include "manager/instance.h"
#include "manager/limits.h"
#include "spec/spec.h"
#include "util/err.h"
#include "unit.h"
#include <stdint.h>

static void ok(int key, const char *v)
{
	int r = limit_check(key, v);
	if (r != 0)
		fprintf(stderr, "  %s=%s: %s\n", limit_key_name(key), v, err_msg());
	CHECK_INT(r, 0);
}

static void bad(int key, const char *v, const char *msg)
{
	int r = limit_check(key, v);
	CHECK(r < 0);
	if (r < 0) {
		CHECK(strncmp(err_msg(), limit_key_name(key), strlen(limit_key_name(key))) == 0);
		CHECK_CONTAINS(err_msg(), msg);
	}
}

static void test_keys(void)
{
	CHECK_INT(limit_key_from_name("cpu"), LIMIT_CPU);
	CHECK_INT(limit_key_from_name("limits.memory"), LIMIT_MEMORY);
	CHECK_INT(limit_key_from_name("disk.write"), LIMIT_DISK_WRITE);
	CHECK_INT(limit_key_from_name("limits.disk"), LIMIT_DISK);
	CHECK_INT(limit_key_from_name("disk"), LIMIT_DISK);
	CHECK_INT(limit_key_from_name("limits.disk.size"), -1);
	CHECK_INT(limit_key_from_name("memory.swap"), -1);
	CHECK_INT(limit_key_from_name("limits.cpu"), LIMIT_CPU);
	CHECK_INT(limit_key_from_name("limits.disk.read"), LIMIT_DISK_READ);
	CHECK_INT(limit_key_from_name("CPU"), -1);
	CHECK_INT(limit_key_from_name(""), -1);
	CHECK_INT(limit_key_from_name(NULL), -1);
	CHECK_STR(limit_key_name(LIMIT_DISK_WRITE), "limits.disk.write");
	CHECK_STR(limit_key_name(-1), "limits.?");
	CHECK_STR(limit_key_name(LIMIT__MAX), "limits.?");
	CHECK_STR(limit_key_name(LIMIT_PROCESSES), "limits.processes");
}

static void test_values(void)
{
	ok(LIMIT_CPU, "1");
	ok(LIMIT_CPU, "0.5");
	ok(LIMIT_CPU, "1.25");
	ok(LIMIT_CPU, "0.01");
	bad(LIMIT_CPU, "0", "must be more than 0");
	bad(LIMIT_CPU, "0.00", "must be more than 0");
	bad(LIMIT_CPU, "abc", "not a number of CPUs");
	bad(LIMIT_CPU, "1.234", "at most 2 decimals");
	bad(LIMIT_CPU, "-1", "not a number");
	bad(LIMIT_CPU, ".5", "not a number");
	bad(LIMIT_CPU, "1e3", "not a number");
	bad(LIMIT_CPU, "2000", "at most 1024");
	ok(LIMIT_MEMORY, "256MiB");
	ok(LIMIT_MEMORY, "1GB");
	ok(LIMIT_MEMORY, "1.5GiB");
	ok(LIMIT_MEMORY, "4194304");
	ok(LIMIT_MEMORY, "50%");
	bad(LIMIT_MEMORY, "12XB", "unknown unit \"XB\"");
	bad(LIMIT_MEMORY, "1KiB", "at least 4MiB");
	bad(LIMIT_MEMORY, "0%", "1 to 100");
	bad(LIMIT_MEMORY, "101%", "1 to 100");
	bad(LIMIT_MEMORY, "99999999999999999999999", "too large");
	bad(LIMIT_MEMORY, "20000000TiB", "too large");
	bad(LIMIT_MEMORY, "", "empty");
	bad(LIMIT_MEMORY, " 1GB", "not a size");
	bad(LIMIT_MEMORY, "1 GB", "unknown unit \" GB\"");
	ok(LIMIT_PROCESSES, "1");
	ok(LIMIT_PROCESSES, "4194304");
	bad(LIMIT_PROCESSES, "0", "between 1 and 4194304");
	bad(LIMIT_PROCESSES, "4194305", "between 1 and 4194304");
	bad(LIMIT_PROCESSES, "1.5", "whole number");
	bad(LIMIT_PROCESSES, "-1", "whole number");
	ok(LIMIT_DISK_READ, "10MB");
	ok(LIMIT_DISK_READ, "10MiB/s");
	ok(LIMIT_DISK_WRITE, "100iops");
	bad(LIMIT_DISK_READ, "fast", "not a rate");
	bad(LIMIT_DISK_READ, "0iops", "from 1");
	bad(LIMIT_DISK_WRITE, "0MB", "more than 0");
	bad(LIMIT_DISK_WRITE, "10XB/s", "unknown unit");
	CHECK_INT(limits_cpu_count("1"), 1);
	CHECK_INT(limits_cpu_count("1.5"), 2);
	CHECK_INT(limits_cpu_count("0.01"), 1);
	CHECK_INT(limits_cpu_count("x"), 0);
}

static void msg(int key, const char *v, int want_r, const char *want)
{
	int r = limit_check(key, v);
	CHECK_INT(r, want_r);
	CHECK_STR(err_msg(), want);
}

/* The exact wording the CLI shows. */
static void test_messages(void)
{
	msg(LIMIT_MEMORY, "12XB", -EINVAL,
	    "limits.memory: \"12XB\": unknown unit \"XB\" (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB or %)");
	msg(LIMIT_MEMORY, "1KiB", -EINVAL, "limits.memory: \"1KiB\": must be at least 4MiB");
	msg(LIMIT_MEMORY, "", -EINVAL, "limits.memory: empty value");
	msg(LIMIT_MEMORY, NULL, -EINVAL, "limits.memory: empty value");
	msg(LIMIT_CPU, "0", -EINVAL, "limits.cpu: \"0\": must be more than 0");
	msg(LIMIT_CPU, "abc", -EINVAL, "limits.cpu: \"abc\": not a number of CPUs (like 1, 2 or 0.5, at most 2 decimals)");
	msg(LIMIT_PROCESSES, "0", -EINVAL, "limits.processes: \"0\": must be between 1 and 4194304");
	msg(LIMIT_DISK_READ, "fast", -EINVAL,
	    "limits.disk.read: \"fast\": not a rate (a size per second like 10MB or 10MiB/s, or a count like 100iops)");
	msg(LIMIT_DISK_WRITE, "10XB/s", -EINVAL, "limits.disk.write: \"10XB/s\": unknown unit \"XB\" "
	    "(B, kB, MB, GB, TB, KiB, MiB, GiB, TiB, optionally with /s, or iops)");
	msg(LIMIT_DISK_READ, "18000000TB", -ERANGE, "limits.disk.read: \"18000000TB\": too large");
	msg(LIMIT_DISK, "1MiB", -EINVAL, "limits.disk: \"1MiB\": must be at least 16MiB");
	msg(LIMIT_DISK, "50%", -EINVAL, "limits.disk: \"50%\": unknown unit \"%\" (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)");
	msg(LIMIT_DISK, "lots", -EINVAL,
	    "limits.disk: \"lots\": not a size (a number with a unit: B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)");
	msg(LIMIT_DISK, "", -EINVAL, "limits.disk: empty value");
	msg(LIMIT_DISK, "9223372036854775808", -ERANGE, "limits.disk: \"9223372036854775808\": too large");
	msg(LIMIT__MAX, "1", -EINVAL, "limits: unknown limit 6");
	msg(-1, "1", -EINVAL, "limits: unknown limit -1");
}

/* Huge numbers are refused, never wrapped into small ones. */
static void test_overflow(void)
{
	bad(LIMIT_CPU, "184467440737095517", "at most 1024");   /* * 100 wraps to 84 */
	bad(LIMIT_CPU, "18446744073709551616", "at most 1024"); /* 2^64 */
	bad(LIMIT_CPU, "1024.01", "at most 1024");
	ok(LIMIT_CPU, "1024");
	ok(LIMIT_CPU, "1024.00");
	bad(LIMIT_CPU, "1 ", "not a number");
	bad(LIMIT_CPU, "+1", "not a number");
	bad(LIMIT_CPU, "1.", "not a number");
	bad(LIMIT_CPU, "0x10", "not a number");
	ok(LIMIT_MEMORY, "9223372036854775807");
	bad(LIMIT_MEMORY, "9223372036854775808", "too large");
	bad(LIMIT_MEMORY, "18446744073709551616", "too large");
	bad(LIMIT_MEMORY, "8388608TiB", "too large"); /* 2^63 */
	ok(LIMIT_MEMORY, "8388607.999999TiB");
	bad(LIMIT_MEMORY, "1.0000001GiB", "not a size"); /* 7 decimals */
	bad(LIMIT_MEMORY, "50.5%", "1 to 100");
	bad(LIMIT_MEMORY, "18446744073709551617%", "too large");
	bad(LIMIT_MEMORY, "1mb", "unknown unit \"mb\"");
	bad(LIMIT_MEMORY, "1GB\n", "unknown unit");
	bad(LIMIT_PROCESSES, "18446744073709551616", "between 1 and 4194304");
	bad(LIMIT_PROCESSES, " 1", "not a whole number");
	bad(LIMIT_PROCESSES, "1e3", "not a whole number");
	ok(LIMIT_DISK_READ, "10/s");
	ok(LIMIT_DISK_READ, "1.5MiB/s");
	ok(LIMIT_DISK_READ, "4294967295iops");
	bad(LIMIT_DISK_READ, "4294967296iops", "from 1 to 4294967295");
	bad(LIMIT_DISK_READ, "1.5iops", "from 1 to 4294967295");
	bad(LIMIT_DISK_READ, "1000IOPS", "unknown unit \"IOPS\""); /* lower case only */
	bad(LIMIT_DISK_READ, "100iops/s", "unknown unit \"iops\"");
	bad(LIMIT_DISK_READ, "10MB/s/s", "unknown unit \"MB/s\"");
	bad(LIMIT_DISK_READ, "/s", "not a rate");
	bad(LIMIT_DISK_READ, "0.1B/s", "more than 0");
	bad(LIMIT_DISK_WRITE, "", "empty");
	CHECK_INT(limits_cpu_count("184467440737095517"), 0);
	CHECK_INT(limits_cpu_count("1024"), 1024);
	CHECK_INT(limits_cpu_count(NULL), 0);
	err_set(0, "untouched");
	CHECK_INT(limits_cpu_count("bogus"), 0);
	CHECK_STR(err_msg(), "untouched"); /* a query, not a check: the last error stays */
}

/* The object is what the runtime reads: parse it back. */
static void resources(const char *const v[LIMIT__MAX], const struct limits_host *h, spec_resources *out)
{
	json_t *j = NULL;
	int r = limits_to_resources(v, h, &j);
	CHECK_INT(r, 0);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	memset(out, 0, sizeof *out);
	CHECK_INT(spec_parse_resources(text ? text : "{}", text ? strlen(text) : 2, "limits", out), 0);
	free(text);
}

static void test_disk(void)
{
	uint64_t b = 0;
	CHECK_INT(limit_disk_bytes("64MiB", &b), 0);
	CHECK_INT(b, 64ULL << 20);
	CHECK_INT(limit_disk_bytes("16MiB", &b), 0);
	CHECK_INT(b, 16ULL << 20);
	CHECK_INT(limit_disk_bytes("1.5GB", &b), 0);
	CHECK_INT(b, 1500000000ULL);
	b = 7;
	CHECK(limit_disk_bytes("16777215", &b) < 0); /* one byte short of 16MiB */
	CHECK_INT(b, 7);                              /* untouched on failure */
	CHECK_INT(limits_parse_size("--max-size", "1KiB", &b), 0);
	CHECK_INT(b, 1024);
	CHECK(limits_parse_size("--max-size", "1XB", &b) < 0);
	CHECK_STR(err_msg(), "--max-size: \"1XB\": unknown unit \"XB\" (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)");
	/* limits.disk adds nothing to linux.resources: the storage enforces it */
	struct limits_host h = { .ncpus = 1, .mem_total = 1ULL << 30 };
	const char *v[LIMIT__MAX] = { [LIMIT_DISK] = "1GiB" };
	spec_resources r;
	resources(v, &h, &r);
	CHECK(!r.memory.limit.has && r.blkio.n_throttle[THROTTLE_WRITE_BPS] == 0);
	spec_resources_free(&r);
	const char *bad_disk[LIMIT__MAX] = { [LIMIT_DISK] = "1MiB" };
	json_t *j = NULL;
	CHECK(limits_to_resources(bad_disk, &h, &j) == -EINVAL && j == NULL);
}

static void test_resources(void)
{
	struct limits_host h = { .ncpus = 4, .mem_total = 8ULL << 30, .cpuset = "1,3", .has_disk = true,
				 .disk_major = 254, .disk_minor = 0 };
	const char *v[LIMIT__MAX] = { "1.5", "256MiB", "100", "10MB", "20iops" };
	spec_resources r;
	resources(v, &h, &r);
	CHECK_INT(r.memory.limit.v, 256LL << 20);
	CHECK_INT(r.pids.limit.v, 100);
	CHECK_STR(r.cpu.cpus, "1,3");
	CHECK_INT(r.cpu.quota.v, 150000);
	CHECK_INT(r.cpu.period.v, 100000);
	CHECK_INT(r.blkio.n_throttle[THROTTLE_READ_BPS], 1);
	if (r.blkio.n_throttle[THROTTLE_READ_BPS] == 1) {
		CHECK_INT(r.blkio.throttle[THROTTLE_READ_BPS][0].major, 254);
		CHECK_INT(r.blkio.throttle[THROTTLE_READ_BPS][0].rate, 10000000);
	}
	CHECK_INT(r.blkio.n_throttle[THROTTLE_WRITE_IOPS], 1);
	spec_resources_free(&r);

	const char *pct[LIMIT__MAX] = { "2", "50%", NULL, NULL, NULL };
	resources(pct, &h, &r);
	CHECK_INT(r.memory.limit.v, 4LL << 30);
	CHECK(!r.cpu.quota.has);
	spec_resources_free(&r);

	const char *none[LIMIT__MAX] = { 0 };
	resources(none, &h, &r);
	CHECK(!r.memory.limit.has);
	spec_resources_free(&r);

	json_t *j = NULL;
	const char *many[LIMIT__MAX] = { "5", NULL, NULL, NULL, NULL };
	CHECK(limits_to_resources(many, &h, &j) == -EINVAL);
	CHECK_CONTAINS(err_msg(), "the host has 4 CPUs");
	h.has_disk = false;
	const char *disk[LIMIT__MAX] = { NULL, NULL, NULL, "1MB", NULL };
	CHECK(limits_to_resources(disk, &h, &j) == -EOPNOTSUPP);
	CHECK_CONTAINS(err_msg(), "limits.disk.read: the instance storage is not on a block device");
	const char *badv[LIMIT__MAX] = { NULL, "12XB", NULL, NULL, NULL };
	CHECK(limits_to_resources(badv, &h, &j) < 0);
	CHECK(j == NULL);
}

static void test_resources_edges(void)
{
	struct limits_host h = { .ncpus = 2, .mem_total = 1ULL << 30, .cpuset = NULL, .has_disk = true,
				 .disk_major = 8, .disk_minor = 16 };
	spec_resources r;
	/* Write rates, bytes and operations, on the host's disk. */
	const char *w[LIMIT__MAX] = { NULL, NULL, NULL, "100iops", "1MiB/s" };
	resources(w, &h, &r);
	CHECK_INT(r.blkio.n_throttle[THROTTLE_READ_IOPS], 1);
	CHECK_INT(r.blkio.n_throttle[THROTTLE_WRITE_BPS], 1);
	CHECK_INT(r.blkio.n_throttle[THROTTLE_READ_BPS], 0);
	CHECK_INT(r.blkio.n_throttle[THROTTLE_WRITE_IOPS], 0);
	if (r.blkio.n_throttle[THROTTLE_READ_IOPS] == 1) {
		CHECK_INT(r.blkio.throttle[THROTTLE_READ_IOPS][0].major, 8);
		CHECK_INT(r.blkio.throttle[THROTTLE_READ_IOPS][0].minor, 16);
		CHECK_INT(r.blkio.throttle[THROTTLE_READ_IOPS][0].rate, 100);
	}
	if (r.blkio.n_throttle[THROTTLE_WRITE_BPS] == 1)
		CHECK_INT(r.blkio.throttle[THROTTLE_WRITE_BPS][0].rate, 1 << 20);
	spec_resources_free(&r);

	/* No pinning: a whole number gives an empty cpu object, a fraction a quota. */
	const char *whole[LIMIT__MAX] = { "2", NULL, NULL, NULL, NULL };
	resources(whole, &h, &r);
	CHECK(r.cpu.cpus == NULL);
	CHECK(!r.cpu.quota.has && !r.cpu.period.has);
	spec_resources_free(&r);
	const char *frac[LIMIT__MAX] = { "0.01", "100%", "4194304", NULL, NULL };
	resources(frac, &h, &r);
	CHECK(r.cpu.cpus == NULL);
	CHECK_INT(r.cpu.quota.v, 1000);
	CHECK_INT(r.cpu.period.v, 100000);
	CHECK_INT(r.memory.limit.v, 1LL << 30);
	CHECK_INT(r.pids.limit.v, 4194304);
	spec_resources_free(&r);
	const char *third[LIMIT__MAX] = { NULL, "33%", NULL, NULL, NULL };
	resources(third, &h, &r);
	CHECK_INT(r.memory.limit.v, (1LL << 30) * 33 / 100);
	spec_resources_free(&r);

	json_t *j = NULL;
	const char *exact[LIMIT__MAX] = { "1.99", NULL, NULL, NULL, NULL };
	CHECK_INT(limits_to_resources(exact, &h, &j), 0);
	json_decref(j);
	const char *over[LIMIT__MAX] = { "2.01", NULL, NULL, NULL, NULL };
	CHECK_INT(limits_to_resources(over, &h, &j), -EINVAL);
	CHECK_STR(err_msg(), "limits.cpu: \"2.01\": the host has 2 CPUs");
	h.ncpus = 1;
	const char *two[LIMIT__MAX] = { "2", NULL, NULL, NULL, NULL };
	CHECK_INT(limits_to_resources(two, &h, &j), -EINVAL);
	CHECK_STR(err_msg(), "limits.cpu: \"2\": the host has 1 CPU");

	/* A share of a small or unknown host memory must still reach 4MiB. */
	h.mem_total = 0;
	const char *pct[LIMIT__MAX] = { NULL, "50%", NULL, NULL, NULL };
	CHECK_INT(limits_to_resources(pct, &h, &j), -EINVAL);
	CHECK_STR(err_msg(), "limits.memory: \"50%\": 0 bytes of the host's memory, less than 4MiB");
	h.mem_total = 8ULL << 20;
	CHECK_INT(limits_to_resources(pct, &h, &j), 0);
	json_decref(j);

	h.has_disk = false;
	const char *wr[LIMIT__MAX] = { NULL, NULL, NULL, NULL, "5iops" };
	CHECK_INT(limits_to_resources(wr, &h, &j), -EOPNOTSUPP);
	CHECK_STR(err_msg(), "limits.disk.write: the instance storage is not on a block device");
	/* The first refused key in table order is the one reported. */
	const char *both[LIMIT__MAX] = { NULL, "1KiB", NULL, "fast", NULL };
	CHECK_INT(limits_to_resources(both, &h, &j), -EINVAL);
	CHECK_CONTAINS(err_msg(), "limits.memory: ");
}

static void test_names_and_keys(void)
{
	CHECK_INT(instance_name_check("web-1"), 0);
	CHECK(instance_name_check("") < 0);
	CHECK(instance_name_check("1web") < 0);
	CHECK(instance_name_check("web_1") < 0);
	CHECK(instance_name_check("web-") < 0);
	CHECK(instance_name_check("a/b") < 0);
	CHECK(instance_name_check("..") < 0);
	char long_name[80];
	memset(long_name, 'a', 64);
	long_name[64] = 0;
	CHECK(instance_name_check(long_name) < 0);
	long_name[63] = 0;
	CHECK_INT(instance_name_check(long_name), 0);
	int kind, max;
	CHECK_INT(instance_restart_policy_parse("on-failure:3", &kind, &max), 0);
	CHECK_INT(kind, RESTART_ON_FAILURE);
	CHECK_INT(max, 3);
	CHECK_INT(instance_restart_policy_parse("always", &kind, &max), 0);
	CHECK_INT(kind, RESTART_ALWAYS);
	CHECK(instance_restart_policy_parse("on-failure:0", &kind, &max) < 0);
	CHECK(instance_restart_policy_parse("on-failure:", &kind, &max) < 0);
	CHECK(instance_restart_policy_parse("on-failurex", &kind, &max) < 0);
	CHECK_INT(instance_config_check("boot.autostart", "true"), 0);
	CHECK(instance_config_check("boot.autostart", "yes") < 0);
	CHECK_INT(instance_config_check("environment.FOO_1", "a b"), 0);
	CHECK(instance_config_check("environment.1FOO", "x") < 0);
	CHECK(instance_config_check("environment.A", "x\ny") < 0);
	CHECK(instance_config_check("limits.bogus", "1") < 0);
	CHECK_CONTAINS(err_msg(), "limits.bogus: unknown limit");
	CHECK(instance_config_check("security.privileged", "true") < 0);
	CHECK(instance_config_check("other", "1") < 0);
	CHECK_INT(instance_config_check("limits.disk", "10GiB"), 0);
	CHECK_INT(instance_config_check("security.protect_host", "false"), 0);
	CHECK(instance_config_check("security.protect_host", "no") < 0);
	CHECK_CONTAINS(err_msg(), "security.protect_host: \"no\": must be true or false");
	/* key names alone, as config get and unset check them */
	CHECK_INT(instance_config_key_check("limits.memory"), 0);
	CHECK_INT(instance_config_key_check("limits.disk"), 0);
	CHECK_INT(instance_config_key_check("environment.PATH"), 0);
	CHECK_INT(instance_config_key_check("boot.restart"), 0);
	CHECK(instance_config_key_check("limits.zzz") < 0);
	CHECK_CONTAINS(err_msg(), "limits.zzz: unknown limit");
	CHECK(instance_config_key_check("nosuchkey") < 0);
	CHECK_CONTAINS(err_msg(), "nosuchkey: unknown configuration key");
	CHECK(instance_config_key_check("environment.1X") < 0);
}

/* Seeded mutation fuzz: valid values with characters and tokens inserted,
 * dropped, replaced or appended, and random bytes. Every value must either be
 * accepted and translate into an object the runtime parses back, or be refused
 * with a message that starts with the key's name; never a crash (and no leak
 * under ASan). ISOLA_FUZZ_SEED and ISOLA_FUZZ_ITERATIONS vary the run. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static const char *const fuzz_seeds[] = {
	"1", "0.5", "1.25", "1024", "256MiB", "1.5GiB", "4194304", "50%", "100%", "100", "10MB", "10MiB/s",
	"100iops", "4294967295iops", "9223372036854775807", "12XB", "0", "",
};
static const char *const fuzz_tokens[] = {
	"18446744073709551616", "99999999999999999999", "184467440737095517", "9223372036854775808", "4294967296",
	"iops", "IOPS", "/s", "%", "KiB", "MiB", "TiB", "TB", "kB", ".", "..", "-", "+", "e9", " ", "\t", "\n", "0",
};

static void fuzz_value(char *buf, size_t cap)
{
	if (next() % 8 == 0) { /* random bytes */
		size_t n = next() % (cap - 1);
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)(1 + next() % 255);
		buf[n] = 0;
		return;
	}
	snprintf(buf, cap, "%s", fuzz_seeds[next() % (sizeof fuzz_seeds / sizeof *fuzz_seeds)]);
	int edits = 1 + (int)(next() % 4);
	for (int e = 0; e < edits; e++) {
		size_t len = strlen(buf), pos = next() % (len + 1);
		char c = "0123456789.%/ikmgtKMGTBsiop-+eE x"[next() % 33];
		switch (next() % 4) {
		case 0: /* insert a character */
			if (len + 1 < cap) {
				memmove(buf + pos + 1, buf + pos, len - pos + 1);
				buf[pos] = c;
			}
			break;
		case 1: /* drop one */
			if (pos < len)
				memmove(buf + pos, buf + pos + 1, len - pos);
			break;
		case 2: /* replace one */
			if (pos < len)
				buf[pos] = c;
			break;
		default: { /* insert a token */
			const char *t = fuzz_tokens[next() % (sizeof fuzz_tokens / sizeof *fuzz_tokens)];
			size_t k = strlen(t);
			if (len + k < cap) {
				memmove(buf + pos + k, buf + pos, len - pos + 1);
				memcpy(buf + pos, t, k);
			}
			break;
		}
		}
	}
}

static bool named(int key)
{
	const char *name = limit_key_name(key), *m = err_msg();
	return !strncmp(m, name, strlen(name)) && m[strlen(name)] == ':';
}

/* What an accepted value became, as the runtime reads it. */
static bool sane(int key, const char *json)
{
	spec_resources r;
	memset(&r, 0, sizeof r);
	if (spec_parse_resources(json, strlen(json), "limits", &r) < 0) {
		fprintf(stderr, "  refused by the runtime: %s: %s\n", json, err_msg());
		return false;
	}
	size_t throttles = 0;
	bool rates_ok = true;
	for (int t = 0; t < 4; t++)
		for (size_t i = 0; i < r.blkio.n_throttle[t]; throttles++, i++)
			rates_ok &= r.blkio.throttle[t][i].rate > 0;
	bool good;
	switch (key) {
	case LIMIT_CPU:
		good = !r.cpu.quota.has || (r.cpu.quota.v >= 1000 && r.cpu.quota.v <= 102400000 && r.cpu.period.v == 100000);
		break;
	case LIMIT_MEMORY:
		good = r.memory.limit.has && r.memory.limit.v >= 4 << 20;
		break;
	case LIMIT_PROCESSES:
		good = r.pids.limit.has && r.pids.limit.v >= 1 && r.pids.limit.v <= 4194304;
		break;
	case LIMIT_DISK: /* enforced by the storage, not the cgroup */
		good = !strcmp(json, "{}");
		break;
	default:
		good = throttles == 1 && rates_ok;
		break;
	}
	spec_resources_free(&r);
	if (!good)
		fprintf(stderr, "  unexpected translation: %s\n", json);
	return good;
}

static void test_fuzz(void)
{
	uint64_t seed = getenv("ISOLA_FUZZ_SEED") ? strtoull(getenv("ISOLA_FUZZ_SEED"), NULL, 0) : 0;
	if (seed) /* xorshift never leaves 0 */
		rng = seed;
	int iterations = getenv("ISOLA_FUZZ_ITERATIONS") ? atoi(getenv("ISOLA_FUZZ_ITERATIONS")) : 20000;
	struct limits_host h = { .ncpus = 2, .mem_total = 1ULL << 30, .cpuset = "0-1", .has_disk = true,
				 .disk_major = 254, .disk_minor = 1 };
	int accepted = 0, refused = 0, unnamed = 0, translated = 0, insane = 0, mismatch = 0, leaked = 0;
	for (int i = 0; i < iterations; i++) {
		char buf[48];
		fuzz_value(buf, sizeof buf);
		int key = (int)(next() % LIMIT__MAX);
		err_clear();
		int r = limit_check(key, buf);
		if (r < 0) {
			refused++;
			if (!named(key) && unnamed++ < 5)
				fprintf(stderr, "  check %s=\"%s\": message without the key: %s\n", limit_key_name(key), buf,
					err_msg());
		} else
			accepted++;
		const char *v[LIMIT__MAX] = { 0 };
		v[key] = buf;
		h.has_disk = next() % 4 != 0;
		json_t *j = NULL;
		err_clear();
		int r2 = limits_to_resources(v, &h, &j);
		if (r2 < 0) {
			if (!named(key) && unnamed++ < 5)
				fprintf(stderr, "  resources %s=\"%s\": message without the key: %s\n", limit_key_name(key),
					buf, err_msg());
			/* A valid value fails only on the host: too many CPUs or no disk. */
			if (r == 0 && !(key == LIMIT_CPU || ((key == LIMIT_DISK_READ || key == LIMIT_DISK_WRITE) && !h.has_disk)))
				mismatch++;
			leaked += j != NULL; /* *ret is written only on success */
			continue;
		}
		if (r < 0)
			mismatch++;
		translated++;
		char *text = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		insane += !sane(key, text);
		free(text);
	}
	printf("fuzz: %d values, %d accepted, %d refused, %d translated\n", iterations, accepted, refused, translated);
	CHECK(accepted > iterations / 20);
	CHECK(refused > iterations / 4);
	CHECK_INT(unnamed, 0);
	CHECK_INT(insane, 0);
	CHECK_INT(mismatch, 0);
	CHECK_INT(leaked, 0);
}

int main(void)
{
	test_keys();
	test_values();
	test_messages();
	test_overflow();
	test_resources();
	test_disk();
	test_resources_edges();
	test_names_and_keys();
	test_fuzz();
	return unit_done("test-manager-limits");
}
