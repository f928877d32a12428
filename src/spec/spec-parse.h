/* Internal to src/spec: the table-driven JSON dispatcher shared by spec.c
 * (top level, process, mounts, hooks) and spec-linux.c (linux.*). */
#pragma once
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "spec/spec.h"

/* Parse state: the file name and the JSON path of the value being read
 * ("linux.resources.memory.limit"), so every error names both. */
typedef struct {
	const char *file;
	oci_spec *spec;
	char path[512];
	size_t len;
} spec_ctx;

/* Value kinds. O* fill an opt_* (has = true); the others a plain C field. */
enum spec_kind {
	F_STR,   /* char * */
	F_BOOL,  /* bool */
	F_OBOOL, /* opt_bool */
	F_OI64,  /* opt_i64 */
	F_OU64,  /* opt_u64 */
	F_I64,   /* int64_t */
	F_U64,   /* uint64_t */
	F_U32,   /* uint32_t (also uid_t / gid_t) */
	F_INT,   /* int */
	F_STRV,  /* char ** (NULL-terminated), count at off_n unless NO_N */
	F_MAP,   /* object of strings -> spec_kv * at off, count at off_n */
	F_OBJ,   /* nested object: `sub` against the same base, then fn(base+off) */
	F_ARR,   /* array of elem_size elements at off, count at off_n; each
	          * element is parsed with `sub` (if any), then fn(element) */
	F_FN,    /* fn(base+off) parses the value itself */
};

enum { SF_REQUIRED = 1, SF_ABSPATH = 2 };
#define NO_N ((size_t)-1)

typedef struct spec_field spec_field;
typedef int (*spec_field_fn)(spec_ctx *c, json_t *v, void *target);

struct spec_field {
	const char *key; /* NULL ends a table */
	enum spec_kind kind;
	unsigned flags;
	size_t off, off_n;
	int64_t lo, hi;  /* integer range; lo == hi == 0: the C type's range */
	const spec_field *sub;
	size_t elem_size;
	spec_field_fn fn;
};

/* The outer macros expand their arguments first, so "T, member" may come
 * from a helper macro such as P(cwd) -> oci_spec, process.cwd. */
#define FLD(...) FLD_(__VA_ARGS__)
#define FLD_N(...) FLD_N_(__VA_ARGS__)
#define FLD_ARR(...) FLD_ARR_(__VA_ARGS__)
#define FLD_(k, kd, T, m, ...) { .key = (k), .kind = (kd), .off = offsetof(T, m), .off_n = NO_N, __VA_ARGS__ }
#define FLD_N_(k, kd, T, m, n, ...) { .key = (k), .kind = (kd), .off = offsetof(T, m), .off_n = offsetof(T, n), __VA_ARGS__ }
#define FLD_ARR_(k, T, m, n, ET, ...) \
	{ .key = (k), .kind = F_ARR, .off = offsetof(T, m), .off_n = offsetof(T, n), .elem_size = sizeof(ET), __VA_ARGS__ }
#define FLD_END { .key = NULL }

/* Keyword tables for enum-like strings. */
typedef struct {
	const char *name;
	int64_t value;
} spec_name;

/* Error at the current path: "<file>: <path>: <message>"; returns -EINVAL. */
int spec_err(spec_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t spec_push_key(spec_ctx *c, const char *key);
size_t spec_push_idx(spec_ctx *c, size_t i);
size_t spec_push_mapkey(spec_ctx *c, const char *key);
void spec_pop(spec_ctx *c, size_t saved);

const char *spec_json_type(const json_t *v);
/* json_is_string(), except for the rewritten big integers (spec.c). */
bool spec_is_str(const json_t *v);
/* Apply a field table to object v; base is the struct the offsets refer to. */
int spec_dispatch(spec_ctx *c, json_t *v, const spec_field *fields, void *base);
int spec_val_str(spec_ctx *c, json_t *v, char **ret);
int spec_val_int(spec_ctx *c, json_t *v, int64_t lo, int64_t hi, int64_t *ret);
int spec_val_u64(spec_ctx *c, json_t *v, uint64_t *ret);
int spec_val_strv(spec_ctx *c, json_t *v, char ***ret, size_t *ret_n);
/* Look up a string in a keyword table; error `unknown <what> "<s>"`. */
int spec_val_name(spec_ctx *c, json_t *v, const spec_name *table, size_t n, const char *what, int64_t *ret);

/* Array of keyword strings -> OR of their values. */
int spec_val_flags(spec_ctx *c, json_t *v, const spec_name *table, size_t n, const char *what, uint64_t *ret);

/* Field callbacks that read a keyword (or a keyword list) into a T. */
#define SPEC_ENUM_FN(fn, table, what, T)                                                   \
	static int fn(spec_ctx *c, json_t *v, void *t)                                      \
	{                                                                                    \
		int64_t x = 0;                                                                   \
		int r = spec_val_name(c, v, table, sizeof(table) / sizeof(table[0]), what, &x); \
		if (r >= 0)                                                                  \
			*(T *)t = (T)x;                                                      \
		return r;                                                                    \
	}
#define SPEC_FLAGS_FN(fn, table, what, T)                                                   \
	static int fn(spec_ctx *c, json_t *v, void *t)                                       \
	{                                                                                     \
		uint64_t x = 0;                                                                   \
		int r = spec_val_flags(c, v, table, sizeof(table) / sizeof(table[0]), what, &x); \
		if (r >= 0)                                                                   \
			*(T *)t = (T)x;                                                       \
		return r;                                                                     \
	}

extern const spec_field spec_idmap_fields[];
/* Field callback for a struct whose first member is its bool has/present. */
int spec_mark_present(spec_ctx *c, json_t *v, void *target);

int spec_parse_linux(spec_ctx *c, json_t *v, void *target);
void spec_free_linux(oci_spec *s);
void spec_kv_free(spec_kv *kv, size_t n);
void spec_strv_free(char **v);

const char *spec_rlimit_name(int resource);
