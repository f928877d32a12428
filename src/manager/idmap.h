/* Host-wide registry of the instances' host id ranges, one for every store
 * on the host. Each range is reserved where other tools see it, as a line
 * `isola:BASE:COUNT` in /etc/subuid and /etc/subgid (so useradd never gives
 * it to a new user), and recorded with its owner (store directory and
 * instance name) in IDMAP_REGISTRY, so that a range is released when its
 * instance is deleted and the ranges of a store directory that no longer
 * exists can be taken back. Every change happens under lckpwdf(3), the lock
 * shadow's tools (useradd, usermod) take before they edit these files, and
 * each file is replaced atomically (temp, fsync, rename). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDMAP_REGISTRY "/var/lib/isola-idmap"
#define IDMAP_OWNER "isola"
#define IDMAP_SUBUID "/etc/subuid"
#define IDMAP_SUBGID "/etc/subgid"
/* The ranges handed to instances, as Incus does. */
#define IDMAP_POOL_START 1000000LL
#define IDMAP_POOL_END 4000000000LL

struct idmap_range {
	int64_t base, count;
};

/* The lowest base >= start with [base, base+count) inside [start, end) and
 * clear of every range in taken (any order); -1 when there is none. */
int64_t idmap_first_free(const struct idmap_range *taken, size_t n, int64_t start, int64_t end, int64_t count);

/* Whether (name, base) of this store is still in use; entries that are not
 * are stale (a create or delete killed half-way) and taken back. */
typedef bool (*idmap_in_use_fn)(void *ctx, const char *name, int64_t base);

/* Reserve `count` ids for instance `name` of the store at `store` (an
 * absolute path). also_taken: ranges the store's database already uses.
 * Stale entries of this store (in_use says so) and entries of store
 * directories that no longer exist are released first. */
int idmap_reserve(const char *store, const char *name, int64_t count, const struct idmap_range *also_taken,
		  size_t n_taken, idmap_in_use_fn in_use, void *ctx, int64_t *ret_base);
/* Release every range recorded for (store, name); none is not an error. */
int idmap_release(const char *store, const char *name);
/* Before the instance starts: its range must be its own. A range that
 * /etc/subuid or /etc/subgid give to a user, or another instance holds, is
 * refused naming both; a range not yet recorded (an instance made before
 * the registry) is recorded when it is free. */
int idmap_check(const char *store, const char *name, int64_t base, int64_t count);
