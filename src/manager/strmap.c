/* A small string-keyed hash map (open addressing, linear probing). */
#include "strmap.h"
#include "util/err.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static size_t slot_of(const struct strmap *m, const char *key)
{
	size_t i = (size_t)hash_str(key) & (m->cap - 1);
	while (m->keys[i] && strcmp(m->keys[i], key))
		i = (i + 1) & (m->cap - 1);
	return i;
}

static int grow(struct strmap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 64;
	struct strmap n = { .cap = ncap, .len = m->len };
	n.keys = calloc(ncap, sizeof *n.keys);
	n.values = calloc(ncap, sizeof *n.values);
	if (!n.keys || !n.values) {
		free(n.keys);
		free(n.values);
		return err_set(ENOMEM, "hash map");
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->keys[i])
			continue;
		size_t j = slot_of(&n, m->keys[i]);
		n.keys[j] = m->keys[i];
		n.values[j] = m->values[i];
	}
	free(m->keys);
	free(m->values);
	*m = n;
	return 0;
}

int strmap_put(struct strmap *m, const char *key, const char *value)
{
	if ((m->len + 1) * 4 >= m->cap * 3) {
		int r = grow(m);
		if (r < 0)
			return r;
	}
	char *v = NULL;
	if (value && !(v = strdup(value)))
		return err_set(ENOMEM, "hash map");
	size_t i = slot_of(m, key);
	if (m->keys[i]) {
		free(m->values[i]);
		m->values[i] = v;
		return 0;
	}
	char *k = strdup(key);
	if (!k) {
		free(v);
		return err_set(ENOMEM, "hash map");
	}
	m->keys[i] = k;
	m->values[i] = v;
	m->len++;
	return 0;
}

bool strmap_has(const struct strmap *m, const char *key)
{
	return m->cap && m->keys[slot_of(m, key)];
}

const char *strmap_get(const struct strmap *m, const char *key)
{
	if (!m->cap)
		return NULL;
	size_t i = slot_of(m, key);
	return m->keys[i] ? m->values[i] : NULL;
}

void strmap_clear(struct strmap *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->keys[i]);
		free(m->values[i]);
	}
	free(m->keys);
	free(m->values);
	*m = (struct strmap){ 0 };
}
