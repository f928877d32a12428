/* Unit tests for what `isola-oci update` parses: a linux.resources object on
 * its own (spec_parse_resources) and runc's memory size strings
 * (spec_parse_mem_size). JSON below uses ' for " (converted by q()). */
#include <stdint.h>

#include "spec/spec.h"
#include "util/err.h"
#include "unit.h"

static char *q(const char *s)
{
	char *r = strdup(s);
	for (char *p = r; *p; p++)
		if (*p == '\'')
			*p = '"';
	return r;
}

static int parse(const char *json_q, spec_resources *ret)
{
	char *j = q(json_q);
	err_clear();
	int r = spec_parse_resources(j, strlen(j), "resources.json", ret);
	free(j);
	return r;
}

static void expect_err(const char *json_q, const char *want, int line)
{
	spec_resources r = { 0 };
	int rc = parse(json_q, &r);
	if (rc >= 0) {
		unit_fail++;
		fprintf(stderr, "test-update.c:%d: parse of %s succeeded, want error \"%s\"\n", line, json_q, want);
		spec_resources_free(&r);
		return;
	}
	CHECK_INT(rc, -EINVAL);
	CHECK(!r.present); /* untouched on error */
	if (strcmp(err_msg(), want) == 0)
		unit_pass++;
	else {
		unit_fail++;
		fprintf(stderr, "test-update.c:%d: got \"%s\", want \"%s\"\n", line, err_msg(), want);
	}
}
#define EXPECT_ERR(j, w) expect_err(j, w, __LINE__)

static void test_full(void)
{
	spec_resources r;
	int rc = parse("{'memory': {'limit': 33554432, 'reservation': 1024, 'swap': -1, 'swappiness': 10,"
		       "  'disableOOMKiller': true},"
		       " 'cpu': {'shares': 512, 'quota': 20000, 'period': 100000, 'realtimeRuntime': 5,"
		       "  'realtimePeriod': 10, 'cpus': '0-1', 'mems': '0'},"
		       " 'pids': {'limit': 42},"
		       " 'blockIO': {'weight': 500, 'throttleReadBpsDevice': [{'major': 8, 'minor': 0, 'rate': 1000}]},"
		       " 'hugepageLimits': [{'pageSize': '2MB', 'limit': 4194304}],"
		       " 'network': {'classID': 7, 'priorities': [{'name': 'eth0', 'priority': 3}]},"
		       " 'rdma': {'mlx5_0': {'hcaHandles': 3}},"
		       " 'unified': {'memory.high': '1000000'},"
		       " 'devices': [{'allow': false, 'type': 'c', 'major': 1, 'minor': 3}],"
		       " 'someFutureField': {'x': 1}}",
		       &r);
	CHECK_INT(rc, 0);
	if (rc < 0) {
		fprintf(stderr, "  %s\n", err_msg());
		return;
	}
	CHECK(r.present);
	CHECK(r.memory.limit.has);
	CHECK_INT(r.memory.limit.v, 33554432);
	CHECK_INT(r.memory.reservation.v, 1024);
	CHECK_INT(r.memory.swap.v, -1);
	CHECK_INT(r.memory.swappiness.v, 10);
	CHECK(r.memory.disable_oom_killer.has && r.memory.disable_oom_killer.v);
	CHECK(!r.memory.kernel.has);
	CHECK_INT(r.cpu.shares.v, 512);
	CHECK_INT(r.cpu.quota.v, 20000);
	CHECK_INT(r.cpu.period.v, 100000);
	CHECK_INT(r.cpu.realtime_runtime.v, 5);
	CHECK_INT(r.cpu.realtime_period.v, 10);
	CHECK_STR(r.cpu.cpus, "0-1");
	CHECK_STR(r.cpu.mems, "0");
	CHECK_INT(r.pids.limit.v, 42);
	CHECK_INT(r.blkio.weight.v, 500);
	CHECK_INT(r.blkio.n_throttle[THROTTLE_READ_BPS], 1);
	CHECK_INT(r.blkio.throttle[THROTTLE_READ_BPS][0].rate, 1000);
	CHECK_INT(r.n_hugepages, 1);
	CHECK_STR(r.hugepages[0].page_size, "2MB");
	CHECK_INT(r.network.class_id.v, 7);
	CHECK_INT(r.network.n_priorities, 1);
	CHECK_STR(r.network.priorities[0].name, "eth0");
	CHECK_INT(r.n_rdma, 1);
	CHECK_STR(r.rdma[0].device, "mlx5_0");
	CHECK(r.rdma[0].hca_handles.has && !r.rdma[0].hca_objects.has);
	CHECK_INT(r.n_unified, 1);
	CHECK_STR(r.unified[0].key, "memory.high");
	CHECK_INT(r.n_devices, 1);
	CHECK(!r.devices[0].allow);
	CHECK_INT(r.devices[0].type, 'c');
	CHECK_STR(r.devices[0].access, "rwm"); /* default */
	spec_resources_free(&r);
	CHECK(!r.present && !r.cpu.cpus && !r.n_devices); /* cleared */
	spec_resources_free(&r);                          /* and safe twice */
}

static void test_minimal(void)
{
	spec_resources r;
	CHECK_INT(parse("{}", &r), 0);
	CHECK(r.present);
	CHECK(!r.memory.limit.has && !r.pids.limit.has && !r.cpu.cpus && !r.n_devices);
	spec_resources_free(&r);

	/* null counts as absent; runc's help template (all zeros) parses */
	CHECK_INT(parse("{'memory': null, 'cpu': {'cpus': null}}", &r), 0);
	CHECK(!r.memory.limit.has && !r.cpu.cpus);
	spec_resources_free(&r);
	CHECK_INT(parse("{'memory': {'limit': 0, 'reservation': 0, 'swap': 0},"
			" 'cpu': {'shares': 0, 'quota': 0, 'period': 0, 'realtimeRuntime': 0,"
			"  'realtimePeriod': 0, 'cpus': '', 'mems': ''}, 'blockIO': {'weight': 0}}",
			&r),
		  0);
	CHECK(r.memory.limit.has && r.memory.limit.v == 0);
	CHECK_STR(r.cpu.cpus, "");
	spec_resources_free(&r);
}

static void test_errors(void)
{
	EXPECT_ERR("{'memory': {'limit': 'x'}}", "resources.json: memory.limit: expected integer, got string");
	EXPECT_ERR("{'memory': 5}", "resources.json: memory: expected object, got integer");
	EXPECT_ERR("{'cpu': {'shares': -1}}", "resources.json: cpu.shares: must be at least 0, got -1");
	EXPECT_ERR("{'cpu': {'cpus': 3}}", "resources.json: cpu.cpus: expected string, got integer");
	EXPECT_ERR("{'pids': {'limit': 1.5}}", "resources.json: pids.limit: expected integer, got real number");
	EXPECT_ERR("{'blockIO': {'weight': 70000}}", "resources.json: blockIO.weight: must be at most 65535, got 70000");
	EXPECT_ERR("{'blockIO': {'throttleReadBpsDevice': [{'major': 8, 'minor': 0}]}}",
		   "resources.json: blockIO.throttleReadBpsDevice[0].rate: required property is missing");
	EXPECT_ERR("{'hugepageLimits': [{'limit': 1}]}",
		   "resources.json: hugepageLimits[0].pageSize: required property is missing");
	EXPECT_ERR("{'devices': [{'allow': true, 'access': 'rwx'}]}",
		   "resources.json: devices[0].access: invalid access \"rwx\": must be a combination of r, w and m");
	EXPECT_ERR("{'rdma': {'mlx': {'hcaHandles': 'a'}}}",
		   "resources.json: rdma[\"mlx\"].hcaHandles: expected integer, got string");
	EXPECT_ERR("{'unified': {'memory.high': 5}}",
		   "resources.json: unified[\"memory.high\"]: expected string, got integer");
	EXPECT_ERR("[1]", "resources.json: expected an object at the top level, got array");
	EXPECT_ERR("{'memory': {'limit': 5}", "resources.json:1:23: syntax error: '}' expected near end of file");
	EXPECT_ERR("", "resources.json:1:0: syntax error: '[' or '{' expected near end of file");
}

static void check_size(const char *s, int want_rc, int64_t want, int line)
{
	int64_t v = -12345;
	int rc = spec_parse_mem_size(s, &v);
	if (rc != want_rc || (rc == 0 && v != want)) {
		unit_fail++;
		fprintf(stderr, "test-update.c:%d: spec_parse_mem_size(\"%s\"): got %d/%lld, want %d/%lld\n", line, s, rc,
			(long long)v, want_rc, (long long)want);
	} else
		unit_pass++;
	if (rc < 0 && v != -12345) {
		unit_fail++;
		fprintf(stderr, "test-update.c:%d: \"%s\": output written on error\n", line, s);
	}
}
#define SIZE_OK(s, v) check_size(s, 0, v, __LINE__)
#define SIZE_BAD(s, rc) check_size(s, rc, 0, __LINE__)

static void test_mem_size(void)
{
	SIZE_OK("0", 0);
	SIZE_OK("1048576", 1048576);
	SIZE_OK("512k", 512 * 1024);
	SIZE_OK("512K", 512 * 1024);
	SIZE_OK("64m", 64LL << 20);
	SIZE_OK("64M", 64LL << 20);
	SIZE_OK("64mb", 64LL << 20);
	SIZE_OK("64MiB", 64LL << 20);
	SIZE_OK("64 MB", 64LL << 20);
	SIZE_OK("1g", 1LL << 30);
	SIZE_OK("1.5g", 3LL << 29);
	SIZE_OK("2t", 2LL << 40);
	SIZE_OK("3p", 3LL << 50);
	SIZE_OK("100b", 100);
	SIZE_OK("100B", 100);
	SIZE_OK("0.5k", 512);
	SIZE_BAD("", -EINVAL);
	SIZE_BAD("abc", -EINVAL);
	SIZE_BAD("-1", -EINVAL); /* "-1" is the caller's business */
	SIZE_BAD("64x", -EINVAL);
	SIZE_BAD("64mm", -EINVAL);
	SIZE_BAD("1.", -EINVAL);
	SIZE_BAD(".5m", -EINVAL);
	SIZE_BAD("64  m", -EINVAL);
	SIZE_BAD("64m ", -EINVAL);
	SIZE_BAD("9000p", -ERANGE);
	SIZE_BAD("99999999999999999999", -ERANGE);
}

int main(void)
{
	test_full();
	test_minimal();
	test_errors();
	test_mem_size();
	return unit_done("test-update");
}
