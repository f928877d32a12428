/* Instance limits: the `limits.*` configuration keys (`--limit cpu=1`,
 * `isola config set NAME limits.memory 256MiB`), their validation with
 * messages that name the key and the value, and their translation into an
 * OCI linux.resources object. Pure functions: no system calls. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

enum limit_key { LIMIT_CPU, LIMIT_MEMORY, LIMIT_PROCESSES, LIMIT_DISK_READ, LIMIT_DISK_WRITE, LIMIT_DISK, LIMIT__MAX };

/* "cpu" or "limits.cpu" -> LIMIT_CPU; -1 when unknown. */
int limit_key_from_name(const char *name);
/* LIMIT_CPU -> "limits.cpu". */
const char *limit_key_name(int key);

/* Check a value for a key. Accepted forms:
 *   limits.cpu        a number of CPUs > 0 with at most 2 decimals: "1", "2", "0.5", "1.25"
 *   limits.memory     a size: "256MiB", "1GB", "1.5GiB", "1048576" (bytes), or "50%" of the host's memory
 *                     (units B, kB/KB, MB, GB, TB = 1000^n; KiB, MiB, GiB, TiB = 1024^n); at least 4 MiB
 *   limits.processes  an integer 1 .. 4194304
 *   limits.disk.read, limits.disk.write   a rate: a size per second ("10MB", "10MiB/s") or "100iops"
 *   limits.disk       the size of the instance's own layer: a size, at least 16MiB (no %)
 * Returns 0, or -EINVAL with err_msg() like
 *   limits.memory: "12XB": unknown unit "XB" (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB or %)
 *   limits.cpu: "0": must be more than 0 */
int limit_check(int key, const char *value);

/* The bytes of a limits.disk value (checked as limit_check does). */
int limit_disk_bytes(const char *value, uint64_t *ret);
/* A size for another setting (`image import --max-size`): the same units as
 * limits.memory, without %; errors name `field`. */
int limits_parse_size(const char *field, const char *value, uint64_t *ret);

/* The host facts a translation needs. */
struct limits_host {
	unsigned ncpus;            /* online CPUs of the host */
	uint64_t mem_total;        /* bytes (for "50%") */
	const char *cpuset;        /* CPUs chosen for the instance ("0", "0-1", "1,3"), or NULL: no pinning */
	bool has_disk;             /* the block device holding the instance's storage */
	unsigned disk_major, disk_minor;
};

/* Number of CPUs to pin for a limits.cpu value: ceil(value); 0 when unset. */
unsigned limits_cpu_count(const char *cpu);

/* Build the linux.resources JSON object (OCI runtime-spec) for the given
 * values (values[LIMIT_*] may be NULL: unset):
 *   cpu         cpu.cpus = host->cpuset; a fractional value also gives
 *               cpu.quota = value * 100000, cpu.period = 100000
 *   memory      memory.limit (bytes)
 *   processes   pids.limit
 *   disk.*      blockIO.throttle{Read,Write}{Bps,Iops}Device [{major, minor, rate}]
 *               on the host's disk; -EOPNOTSUPP naming the key when !has_disk
 *   disk        nothing: the storage enforces it (storage.h)
 * More CPUs than the host has -> -EINVAL ("limits.cpu: \"4\": the host has 2 CPUs").
 * Always returns an object (possibly empty) on success. */
int limits_to_resources(const char *const values[LIMIT__MAX], const struct limits_host *host, json_t **ret);
