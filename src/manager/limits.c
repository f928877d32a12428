/* Instance limits: parsing the limits.* values and building the OCI
 * linux.resources object from them. One table row per key: its names, a
 * parser that validates a value into a struct limit_value, and an apply step
 * that adds the parsed value to the resources object. */
#include "limits.h"
#include "util/err.h"
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* A refusal without strerror() in the message, returning -errnum. */

#define MEMORY_MIN (4ULL << 20)
#define DISK_MIN (16ULL << 20)
#define PROCESSES_MAX 4194304
#define CPU_CENTI_MAX (1024 * 100)
#define CPU_PERIOD 100000
#define IOPS_MAX UINT32_MAX

struct limit_value {
	uint64_t n;       /* CPUs in hundredths, bytes, processes, bytes or operations per second */
	unsigned percent; /* memory: a share of the host's memory instead of n bytes */
	bool iops;        /* disk: n counts operations, not bytes */
};

typedef int limit_parse_fn(int key, const char *value, struct limit_value *ret);
typedef int limit_apply_fn(json_t *res, int key, const char *value, const struct limit_value *v,
			   const struct limits_host *host);

static limit_parse_fn parse_cpu, parse_memory, parse_processes, parse_rate, parse_disk;
static limit_apply_fn apply_cpu, apply_memory, apply_processes, apply_rate;

static const struct {
	const char *name, *short_name;
	limit_parse_fn *parse;
	limit_apply_fn *apply;
} keys[LIMIT__MAX] = {
	[LIMIT_CPU] = { "limits.cpu", "cpu", parse_cpu, apply_cpu },
	[LIMIT_MEMORY] = { "limits.memory", "memory", parse_memory, apply_memory },
	[LIMIT_PROCESSES] = { "limits.processes", "processes", parse_processes, apply_processes },
	[LIMIT_DISK_READ] = { "limits.disk.read", "disk.read", parse_rate, apply_rate },
	[LIMIT_DISK_WRITE] = { "limits.disk.write", "disk.write", parse_rate, apply_rate },
	[LIMIT_DISK] = { "limits.disk", "disk", parse_disk, NULL },
};

int limit_key_from_name(const char *name)
{
	for (int k = 0; name && k < LIMIT__MAX; k++)
		if (!strcmp(name, keys[k].name) || !strcmp(name, keys[k].short_name))
			return k;
	return -1;
}

const char *limit_key_name(int key)
{
	return key >= 0 && key < LIMIT__MAX ? keys[key].name : "limits.?";
}

/* Units are case-sensitive: "mb" or "Mib" would be guesses. */
static const struct {
	const char *suffix;
	uint64_t mult;
} units[] = {
	{ "", 1 }, { "B", 1 },
	{ "kB", 1000ULL }, { "KB", 1000ULL }, { "MB", 1000000ULL }, { "GB", 1000000000ULL },
	{ "TB", 1000000000000ULL },
	{ "KiB", 1ULL << 10 }, { "MiB", 1ULL << 20 }, { "GiB", 1ULL << 30 }, { "TiB", 1ULL << 40 },
};
#define UNIT_LIST "B, kB, MB, GB, TB, KiB, MiB, GiB, TiB"
#define RATE_FORMS "a size per second like 10MB or 10MiB/s, or a count like 100iops"

/* "<digits>[.<digits>]" at s, nothing else (no sign, space, exponent or
 * leading '.'): the digits as one integer in *ret_num, the number of decimals
 * (at most 6) in *ret_dec, the rest of s in *ret_end. -ERANGE past 2^64. */
static int parse_decimal(const char *s, uint64_t *ret_num, unsigned *ret_dec, const char **ret_end)
{
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	uint64_t v = 0;
	int dec = -1;
	for (; isdigit((unsigned char)*s) || (*s == '.' && dec < 0); s++) {
		if (*s == '.') {
			if (!isdigit((unsigned char)s[1]))
				return -EINVAL;
			dec = 0;
			continue;
		}
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
		if (dec >= 0 && ++dec > 6)
			return -EINVAL;
	}
	*ret_num = v;
	*ret_dec = dec < 0 ? 0 : (unsigned)dec;
	*ret_end = s;
	return 0;
}

static uint64_t pow10u(unsigned n)
{
	uint64_t p = 1;
	while (n-- > 0)
		p *= 10;
	return p;
}

/* num / 10^dec times the unit spelled by the len bytes at unit, rounded down:
 * -ENOENT for an unknown unit, -ERANGE past INT64_MAX (what JSON carries). */
static int size_bytes(uint64_t num, unsigned dec, const char *unit, size_t len, uint64_t *ret)
{
	for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
		if (strlen(units[i].suffix) != len || memcmp(unit, units[i].suffix, len))
			continue;
		unsigned __int128 b = (unsigned __int128)num * units[i].mult / pow10u(dec);
		if (b > INT64_MAX)
			return -ERANGE;
		*ret = (uint64_t)b;
		return 0;
	}
	return -ENOENT;
}

/* Pure: 0, -EINVAL (not a number with at most 2 decimals), -EDOM (zero) or
 * -ERANGE (more than 1024). */
static int cpu_centi(const char *value, uint64_t *ret)
{
	uint64_t num;
	unsigned dec;
	const char *rest;
	int r = parse_decimal(value, &num, &dec, &rest);
	if (r == -ERANGE)
		return r;
	if (r < 0 || *rest || dec > 2)
		return -EINVAL;
	if (num > CPU_CENTI_MAX) /* before scaling, so it cannot wrap */
		return -ERANGE;
	uint64_t centi = num * pow10u(2 - dec);
	if (centi == 0)
		return -EDOM;
	if (centi > CPU_CENTI_MAX)
		return -ERANGE;
	*ret = centi;
	return 0;
}

static int parse_cpu(int key, const char *value, struct limit_value *ret)
{
	int r = cpu_centi(value, &ret->n);
	if (r == -EDOM)
		return err_refuse(EINVAL, "%s: \"%s\": must be more than 0", keys[key].name, value);
	if (r == -ERANGE)
		return err_refuse(EINVAL, "%s: \"%s\": must be at most 1024 CPUs", keys[key].name, value);
	if (r < 0)
		return err_refuse(EINVAL, "%s: \"%s\": not a number of CPUs (like 1, 2 or 0.5, at most 2 decimals)",
				  keys[key].name, value);
	return 0;
}

static int parse_memory(int key, const char *value, struct limit_value *ret)
{
	uint64_t num;
	unsigned dec;
	const char *rest;
	int r = parse_decimal(value, &num, &dec, &rest);
	if (r == 0 && !strcmp(rest, "%")) {
		if (dec || num < 1 || num > 100)
			return err_refuse(EINVAL, "%s: \"%s\": a percentage must be a whole number from 1 to 100",
					  keys[key].name, value);
		ret->percent = (unsigned)num;
		return 0;
	}
	if (r == 0)
		r = size_bytes(num, dec, rest, strlen(rest), &ret->n);
	if (r == -ERANGE)
		return err_refuse(ERANGE, "%s: \"%s\": too large", keys[key].name, value);
	if (r == -ENOENT)
		return err_refuse(EINVAL, "%s: \"%s\": unknown unit \"%s\" (" UNIT_LIST " or %%)", keys[key].name,
				  value, rest);
	if (r < 0)
		return err_refuse(EINVAL, "%s: \"%s\": not a size (a number with a unit: " UNIT_LIST " or %%)",
				  keys[key].name, value);
	if (ret->n < MEMORY_MIN)
		return err_refuse(EINVAL, "%s: \"%s\": must be at least 4MiB", keys[key].name, value);
	return 0;
}

/* A size without %: name is the setting's name in messages. */
static int parse_size(const char *name, const char *value, uint64_t *ret)
{
	uint64_t num;
	unsigned dec;
	const char *rest;
	if (!value || !*value)
		return err_refuse(EINVAL, "%s: empty value", name);
	int r = parse_decimal(value, &num, &dec, &rest);
	if (r == 0)
		r = size_bytes(num, dec, rest, strlen(rest), ret);
	if (r == -ERANGE)
		return err_refuse(ERANGE, "%s: \"%s\": too large", name, value);
	if (r == -ENOENT)
		return err_refuse(EINVAL, "%s: \"%s\": unknown unit \"%s\" (" UNIT_LIST ")", name, value, rest);
	if (r < 0)
		return err_refuse(EINVAL, "%s: \"%s\": not a size (a number with a unit: " UNIT_LIST ")", name, value);
	return 0;
}

static int parse_disk(int key, const char *value, struct limit_value *ret)
{
	int r = parse_size(keys[key].name, value, &ret->n);
	if (r < 0)
		return r;
	if (ret->n < DISK_MIN)
		return err_refuse(EINVAL, "%s: \"%s\": must be at least 16MiB", keys[key].name, value);
	return 0;
}

int limits_parse_size(const char *field, const char *value, uint64_t *ret)
{
	return parse_size(field, value, ret);
}

static int parse_processes(int key, const char *value, struct limit_value *ret)
{
	const char *rest;
	unsigned dec;
	int r = parse_decimal(value, &ret->n, &dec, &rest);
	if (r == -ERANGE || (r == 0 && !*rest && !dec && (ret->n < 1 || ret->n > PROCESSES_MAX)))
		return err_refuse(EINVAL, "%s: \"%s\": must be between 1 and %d", keys[key].name, value,
				  PROCESSES_MAX);
	if (r < 0 || *rest || dec)
		return err_refuse(EINVAL, "%s: \"%s\": not a whole number", keys[key].name, value);
	return 0;
}

/* A size per second with an optional "/s", or a count of operations with
 * "iops" (lower case only, as units are case-sensitive). */
static int parse_rate(int key, const char *value, struct limit_value *ret)
{
	uint64_t num;
	unsigned dec;
	const char *rest;
	int r = parse_decimal(value, &num, &dec, &rest);
	if (r == 0 && !strcmp(rest, "iops")) {
		if (dec || num < 1 || num > IOPS_MAX)
			return err_refuse(EINVAL, "%s: \"%s\": the count before iops must be a whole number from 1 to %"
					  PRIu32, keys[key].name, value, IOPS_MAX);
		ret->n = num;
		ret->iops = true;
		return 0;
	}
	size_t len = 0;
	if (r == 0) {
		len = strlen(rest);
		if (len >= 2 && !strcmp(rest + len - 2, "/s"))
			len -= 2;
		r = size_bytes(num, dec, rest, len, &ret->n);
	}
	if (r == -ERANGE)
		return err_refuse(ERANGE, "%s: \"%s\": too large", keys[key].name, value);
	if (r == -ENOENT)
		return err_refuse(EINVAL, "%s: \"%s\": unknown unit \"%.*s\" (" UNIT_LIST ", optionally with /s, "
				  "or iops)", keys[key].name, value, (int)len, rest);
	if (r < 0)
		return err_refuse(EINVAL, "%s: \"%s\": not a rate (" RATE_FORMS ")", keys[key].name, value);
	if (ret->n == 0)
		return err_refuse(EINVAL, "%s: \"%s\": must be more than 0", keys[key].name, value);
	return 0;
}

static int limit_parse(int key, const char *value, struct limit_value *ret)
{
	if (key < 0 || key >= LIMIT__MAX)
		return err_refuse(EINVAL, "limits: unknown limit %d", key);
	if (!value || !*value)
		return err_refuse(EINVAL, "%s: empty value", keys[key].name);
	*ret = (struct limit_value){ 0 };
	return keys[key].parse(key, value, ret);
}

int limit_check(int key, const char *value)
{
	struct limit_value v;
	return limit_parse(key, value, &v);
}

int limit_disk_bytes(const char *value, uint64_t *ret)
{
	struct limit_value v;
	int r = limit_parse(LIMIT_DISK, value, &v);
	if (r == 0)
		*ret = v.n;
	return r;
}

unsigned limits_cpu_count(const char *cpu)
{
	uint64_t centi;
	if (!cpu || cpu_centi(cpu, &centi) < 0)
		return 0;
	return (unsigned)((centi + 99) / 100);
}

/* Takes the reference to v, also on failure. */
static int set_new(json_t *obj, const char *field, json_t *v)
{
	if (!v || json_object_set_new(obj, field, v) < 0)
		return err_set(ENOMEM, "linux.resources: %s", field);
	return 0;
}

static int apply_cpu(json_t *res, int key, const char *value, const struct limit_value *v,
		     const struct limits_host *host)
{
	unsigned count = (unsigned)((v->n + 99) / 100);
	if (count > host->ncpus)
		return err_refuse(EINVAL, "%s: \"%s\": the host has %u CPU%s", keys[key].name, value, host->ncpus,
				  host->ncpus == 1 ? "" : "s");
	json_t *cpu = json_object();
	int r = set_new(res, "cpu", cpu);
	if (r == 0 && host->cpuset)
		r = set_new(cpu, "cpus", json_string(host->cpuset));
	if (r == 0 && v->n % 100) { /* exact: at most 2 decimals */
		r = set_new(cpu, "quota", json_integer((json_int_t)(v->n * CPU_PERIOD / 100)));
		if (r == 0)
			r = set_new(cpu, "period", json_integer(CPU_PERIOD));
	}
	return r;
}

static int apply_memory(json_t *res, int key, const char *value, const struct limit_value *v,
			const struct limits_host *host)
{
	uint64_t bytes = v->n;
	if (v->percent) {
		bytes = (uint64_t)((unsigned __int128)host->mem_total * v->percent / 100);
		if (bytes < MEMORY_MIN)
			return err_refuse(EINVAL, "%s: \"%s\": %" PRIu64 " bytes of the host's memory, less than 4MiB",
					  keys[key].name, value, bytes);
		if (bytes > INT64_MAX)
			return err_refuse(ERANGE, "%s: \"%s\": too large", keys[key].name, value);
	}
	return set_new(res, "memory", json_pack("{s:I}", "limit", (json_int_t)bytes));
}

static int apply_processes(json_t *res, int key, const char *value, const struct limit_value *v,
			   const struct limits_host *host)
{
	return set_new(res, "pids", json_pack("{s:I}", "limit", (json_int_t)v->n));
}

static int apply_rate(json_t *res, int key, const char *value, const struct limit_value *v,
		      const struct limits_host *host)
{
	static const char *const fields[2][2] = {
		{ "throttleReadBpsDevice", "throttleReadIOPSDevice" },
		{ "throttleWriteBpsDevice", "throttleWriteIOPSDevice" },
	};
	if (!host->has_disk)
		return err_refuse(EOPNOTSUPP, "%s: the instance storage is not on a block device", keys[key].name);
	json_t *blk = json_object_get(res, "blockIO");
	if (!blk) {
		int r = set_new(res, "blockIO", blk = json_object());
		if (r < 0)
			return r;
	}
	return set_new(blk, fields[key == LIMIT_DISK_WRITE][v->iops],
		       json_pack("[{s:I, s:I, s:I}]", "major", (json_int_t)host->disk_major, "minor",
				 (json_int_t)host->disk_minor, "rate", (json_int_t)v->n));
}

int limits_to_resources(const char *const values[LIMIT__MAX], const struct limits_host *host, json_t **ret)
{
	json_t *res = json_object();
	if (!res)
		return err_set(ENOMEM, "linux.resources");
	for (int k = 0; k < LIMIT__MAX; k++) {
		if (!values[k])
			continue;
		struct limit_value v;
		int r = limit_parse(k, values[k], &v);
		if (r == 0 && keys[k].apply)
			r = keys[k].apply(res, k, values[k], &v, host);
		if (r < 0) {
			json_decref(res);
			return r;
		}
	}
	*ret = res;
	return 0;
}
