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
	CHECK_INT(limit_key_from_name("limits.disk"), -1);
	CHECK_INT(limit_key_from_name("memory.swap"), -1);
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
}

/* Mutations of valid values: never a crash, and every refusal names the key. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void test_fuzz(void)
{
	static const char *const seeds[] = { "1", "0.5", "256MiB", "1.5GiB", "50%", "100", "10MB/s", "100iops",
					     "4194304", "12XB" };
	static const char alphabet[] = "0123456789.%/ikmgtKMGTBsiop-+eE x";
	struct limits_host h = { .ncpus = 2, .mem_total = 1ULL << 30, .cpuset = "0", .has_disk = true };
	int refusals_named = 0, refusals = 0;
	for (int i = 0; i < 20000; i++) {
		char buf[48];
		snprintf(buf, sizeof buf, "%s", seeds[next() % (sizeof seeds / sizeof *seeds)]);
		int edits = 1 + (int)(next() % 4);
		for (int e = 0; e < edits; e++) {
			size_t len = strlen(buf), pos = len ? next() % (len + 1) : 0;
			char c = alphabet[next() % (sizeof alphabet - 1)];
			switch (next() % 3) {
			case 0: if (len + 1 < sizeof buf) { memmove(buf + pos + 1, buf + pos, len - pos + 1); buf[pos] = c; } break;
			case 1: if (pos < len) memmove(buf + pos, buf + pos + 1, len - pos); break;
			default: if (pos < len) buf[pos] = c; break;
			}
		}
		int key = (int)(next() % LIMIT__MAX);
		int r = limit_check(key, buf);
		if (r < 0) {
			refusals++;
			refusals_named += strncmp(err_msg(), limit_key_name(key), strlen(limit_key_name(key))) == 0;
		}
		const char *v[LIMIT__MAX] = { 0 };
		v[key] = buf;
		json_t *j = NULL;
		int r2 = limits_to_resources(v, &h, &j);
		if (r == 0 && key != LIMIT_CPU)
			CHECK_INT(r2, 0); /* what passes the check translates */
		json_decref(j);
	}
	CHECK(refusals > 1000);
	CHECK_INT(refusals_named, refusals);
}

int main(void)
{
	test_keys();
	test_values();
	test_resources();
	test_names_and_keys();
	test_fuzz();
	return unit_done("test-manager-limits");
}
