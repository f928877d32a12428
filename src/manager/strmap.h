/* A small string-keyed hash map (open addressing) for the image code: paths
 * seen in a layer, inodes already written to an export. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct strmap {
	char **keys;
	char **values;
	size_t cap, len;
};

/* Insert or replace key (copied) with value (copied; may be NULL). */
int strmap_put(struct strmap *m, const char *key, const char *value);
bool strmap_has(const struct strmap *m, const char *key);
/* The value stored for key, or NULL (also when stored as NULL). */
const char *strmap_get(const struct strmap *m, const char *key);
void strmap_clear(struct strmap *m);
