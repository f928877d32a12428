/* Instance limits: parsing the limits.* values and building the OCI
 * linux.resources object from them. */
#include "limits.h"
#include "util/err.h"
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define err_refuse(errnum, ...) (err_set(0, __VA_ARGS__), -(errnum))

#define MEMORY_MIN (4ULL << 20)
#define PROCESSES_MAX 4194304
#define CPU_PERIOD 100000

static const struct {
	const char *name, *short_name;
} keys[LIMIT__MAX] = {
	[LIMIT_CPU] = { "limits.cpu", "cpu" },
	[LIMIT_MEMORY] = { "limits.memory", "memory" },
	[LIMIT_PROCESSES] = { "limits.processes", "processes" },
	[LIMIT_DISK_READ] = { "limits.disk.read", "disk.read" },
	[LIMIT_DISK_WRITE] = { "limits.disk.write", "disk.write" },
};

int limit_key_from_name(const char *name)
{
	for (int k = 0; k < LIMIT__MAX; k++)
		if (!strcmp(name, keys[k].name) || !strcmp(name, keys[k].short_name))
			return k;
	return -1;
}

const char *limit_key_name(int key)
{
	return key >= 0 && key < LIMIT__MAX ? keys[key].name : "limits.?";
}

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

/* "<digits>[.<digits>]" at s: value scaled by 10^decimals in *ret_num, the
 * number of decimals in *ret_dec, the rest in *ret_end. */
static int parse_decimal(const char *s, uint64_t *ret_num, int *ret_dec, const char **ret_end)
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
	*ret_dec = dec < 0 ? 0 : dec;
	*ret_end = s;
	return 0;
}

static uint64_t pow10u(int n)
{
	uint64_t p = 1;
	while (n-- > 0)
		p *= 10;
	return p;
}

/* A size in bytes; percent (when allowed) is reported apart. */
static int parse_size(int key, const char *value, bool allow_percent, uint64_t *ret, unsigned *ret_percent)
{
	uint64_t num;
	int dec;
	const char *rest;
	int r = parse_decimal(value, &num, &dec, &rest);
	if (r == -ERANGE)
		return err_refuse(ERANGE, "%s: \"%s\": too large", keys[key].name, value);
	if (r < 0)
		return err_refuse(EINVAL, "%s: \"%s\": not a size (a number with a unit: %s%s)", keys[key].name, value,
				  UNIT_LIST, allow_percent ? " or %" : "");
	if (allow_percent && !strcmp(rest, "%")) {
		if (dec || num < 1 || num > 100)
			return err_refuse(EINVAL, "%s: \"%s\": a percentage must be a whole number from 1 to 100",
					  keys[key].name, value);
		*ret_percent = (unsigned)num;
		*ret = 0;
		return 0;
	}
	for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
		if (strcmp(rest, units[i].suffix))
			continue;
		uint64_t div = pow10u(dec);
		if (num / div > UINT64_MAX / units[i].mult)
			return err_refuse(ERANGE, "%s: \"%s\": too large", keys[key].name, value);
		/* whole part times the unit, plus the fraction's share, rounded down */
		uint64_t whole = num / div * units[i].mult;
		long double frac = (long double)(num % div) * (long double)units[i].mult / (long double)div;
		if (whole > UINT64_MAX - (uint64_t)frac)
			return err_refuse(ERANGE, "%s: \"%s\": too large", keys[key].name, value);
		*ret = whole + (uint64_t)frac;
		if (ret_percent)
			*ret_percent = 0;
		return 0;
	}
	return err_refuse(EINVAL, "%s: \"%s\": unknown unit \"%s\" (%s%s)", keys[key].name, value, rest, UNIT_LIST,
			  allow_percent ? " or %" : "");
}

/* CPUs in hundredths. */
static int parse_cpu(const char *value, uint64_t *ret_centi)
{
	uint64_t num;
	int dec;
	const char *rest;
	int r = parse_decimal(value, &num, &dec, &rest);
	if (r < 0 || *rest || dec > 2)
		return err_refuse(EINVAL, "limits.cpu: \"%s\": not a number of CPUs (like 1, 2 or 0.5, at most 2 decimals)",
				  value);
	uint64_t centi = num * pow10u(2 - dec);
	if (centi == 0)
		return err_refuse(EINVAL, "limits.cpu: \"%s\": must be more than 0", value);
	if (centi > 1024 * 100)
		return err_refuse(EINVAL, "limits.cpu: \"%s\": at most 1024 CPUs", value);
	*ret_centi = centi;
	return 0;
}

static int parse_processes(const char *value, int64_t *ret)
{
	uint64_t num;
	int dec;
	const char *rest;
	int r = parse_decimal(value, &num, &dec, &rest);
	if (r < 0 || *rest || dec)
		return err_refuse(EINVAL, "limits.processes: \"%s\": not a whole number", value);
	if (num < 1 || num > PROCESSES_MAX)
		return err_refuse(EINVAL, "limits.processes: \"%s\": must be between 1 and %d", value, PROCESSES_MAX);
	*ret = (int64_t)num;
	return 0;
}

/* A rate: bytes per second ("10MB", "10MiB/s") or operations ("100iops"). */
static int parse_rate(int key, const char *value, uint64_t *ret, bool *ret_iops)
{
	size_t n = strlen(value);
	if (n > 4 && !strcmp(value + n - 4, "iops")) {
		uint64_t num;
		int dec;
		const char *rest;
		int r = parse_decimal(value, &num, &dec, &rest);
		if (r < 0 || dec || rest != value + n - 4 || num == 0 || num > UINT32_MAX)
			return err_refuse(EINVAL, "%s: \"%s\": the count before iops must be a whole number from 1 to %u",
					  keys[key].name, value, UINT32_MAX);
		*ret = num;
		*ret_iops = true;
		return 0;
	}
	char buf[64];
	if (n >= sizeof buf)
		return err_refuse(EINVAL, "%s: \"%.20s...\": too long", keys[key].name, value);
	memcpy(buf, value, n + 1);
	if (n > 2 && !strcmp(buf + n - 2, "/s"))
		buf[n - 2] = 0;
	if (!isdigit((unsigned char)buf[0]))
		return err_refuse(EINVAL, "%s: \"%s\": not a rate (a size per second like 10MB or 10MiB/s, "
			       "or a count like 100iops)", keys[key].name, value);
	int r = parse_size(key, buf, false, ret, NULL);
	if (r < 0)
		return err_wrap(r, "%s: a rate is a size per second or a count like 100iops", keys[key].name), r;
	if (*ret == 0)
		return err_refuse(EINVAL, "%s: \"%s\": must be more than 0", keys[key].name, value);
	*ret_iops = false;
	return 0;
}

int limit_check(int key, const char *value)
{
	if (key < 0 || key >= LIMIT__MAX)
		return err_refuse(EINVAL, "unknown limit");
	if (!value || !*value)
		return err_refuse(EINVAL, "%s: empty value", keys[key].name);
	uint64_t u;
	int64_t i;
	unsigned pct = 0;
	bool iops;
	switch (key) {
	case LIMIT_CPU:
		return parse_cpu(value, &u);
	case LIMIT_MEMORY: {
		int r = parse_size(key, value, true, &u, &pct);
		if (r < 0)
			return r;
		if (!pct && u < MEMORY_MIN)
			return err_refuse(EINVAL, "limits.memory: \"%s\": must be at least 4MiB", value);
		if (!pct && u > INT64_MAX)
			return err_refuse(ERANGE, "limits.memory: \"%s\": too large", value);
		return 0;
	}
	case LIMIT_PROCESSES:
		return parse_processes(value, &i);
	default:
		return parse_rate(key, value, &u, &iops);
	}
}

unsigned limits_cpu_count(const char *cpu)
{
	uint64_t centi;
	if (!cpu || parse_cpu(cpu, &centi) < 0)
		return 0;
	return (unsigned)((centi + 99) / 100);
}

int limits_to_resources(const char *const values[LIMIT__MAX], const struct limits_host *host, json_t **ret)
{
	json_t *res = json_object();
	int r = 0;
	for (int k = 0; k < LIMIT__MAX && r == 0; k++)
		if (values[k] && (r = limit_check(k, values[k])) < 0)
			break;
	if (r == 0 && values[LIMIT_CPU]) {
		uint64_t centi;
		(void)parse_cpu(values[LIMIT_CPU], &centi);
		unsigned count = (unsigned)((centi + 99) / 100);
		json_t *cpu = json_object();
		if (count > host->ncpus)
			r = err_refuse(EINVAL, "limits.cpu: \"%s\": the host has %u CPU%s", values[LIMIT_CPU], host->ncpus,
				       host->ncpus == 1 ? "" : "s");
		if (host->cpuset)
			json_object_set_new(cpu, "cpus", json_string(host->cpuset));
		if (centi % 100) {
			json_object_set_new(cpu, "quota", json_integer((json_int_t)(centi * CPU_PERIOD / 100)));
			json_object_set_new(cpu, "period", json_integer(CPU_PERIOD));
		}
		json_object_set_new(res, "cpu", cpu);
	}
	if (r == 0 && values[LIMIT_MEMORY]) {
		uint64_t bytes;
		unsigned pct;
		(void)parse_size(LIMIT_MEMORY, values[LIMIT_MEMORY], true, &bytes, &pct);
		if (pct)
			bytes = (uint64_t)((unsigned __int128)host->mem_total * pct / 100);
		json_object_set_new(res, "memory", json_pack("{s:I}", "limit", (json_int_t)bytes));
	}
	if (r == 0 && values[LIMIT_PROCESSES]) {
		int64_t n;
		(void)parse_processes(values[LIMIT_PROCESSES], &n);
		json_object_set_new(res, "pids", json_pack("{s:I}", "limit", (json_int_t)n));
	}
	for (int k = LIMIT_DISK_READ; r == 0 && k <= LIMIT_DISK_WRITE; k++) {
		if (!values[k])
			continue;
		if (!host->has_disk) {
			r = err_refuse(EOPNOTSUPP, "%s: the instance storage is not on a block device", keys[k].name);
			break;
		}
		uint64_t rate;
		bool iops;
		(void)parse_rate(k, values[k], &rate, &iops);
		static const char *const fields[2][2] = {
			{ "throttleReadBpsDevice", "throttleReadIOPSDevice" },
			{ "throttleWriteBpsDevice", "throttleWriteIOPSDevice" },
		};
		json_t *blk = json_object_get(res, "blockIO");
		if (!blk) {
			blk = json_object();
			json_object_set_new(res, "blockIO", blk);
		}
		json_object_set_new(blk, fields[k - LIMIT_DISK_READ][iops],
				    json_pack("[{s:i, s:i, s:I}]", "major", host->disk_major, "minor", host->disk_minor,
					      "rate", (json_int_t)rate));
	}
	if (r < 0) {
		json_decref(res);
		return r;
	}
	*ret = res;
	return 0;
}
