/* A cache of compiled seccomp programs under the runtime's state root:
 * libseccomp needs milliseconds to compile a ~300-rule profile, and the
 * same profile is used again and again. Each entry stores the canonical
 * form of the filter it was compiled from and is used only when that form
 * matches byte for byte, so no hash collision can hand out a wrong filter. */
#include "sandbox/seccomp.h"
#include "util/err.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include <fcntl.h>
#include <seccomp.h>
#include <string.h>
#include <sys/stat.h>

struct buf { char *p; size_t len, cap; bool oom; };

static void put(struct buf *b, const void *data, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + n)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}
static void put_u64(struct buf *b, uint64_t v) { put(b, &v, sizeof v); }
static void put_str(struct buf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	put_u64(b, n);
	put(b, s, n);
}

/* Everything that decides the compiled program, in a fixed layout. */
static void canonical(const spec_seccomp *s, struct buf *b)
{
	const struct scmp_version *v = seccomp_version();
	/* key-2: programs carry the ENOSYS stub (seccomp-enosys.c) */
	put(b, "isola-seccomp-key-2", 19);
	put_u64(b, v ? ((uint64_t)v->major << 32 | v->minor << 16 | v->micro) : 0);
	put_u64(b, s->default_action);
	put_u64(b, s->default_errno_ret.has);
	put_u64(b, s->default_errno_ret.v);
	put_u64(b, s->flags);
	put_u64(b, s->n_arches);
	for (size_t i = 0; i < s->n_arches; i++)
		put_u64(b, s->arches[i]);
	put_u64(b, s->n_rules);
	for (size_t i = 0; i < s->n_rules; i++) {
		const spec_seccomp_rule *r = &s->rules[i];
		put_u64(b, r->action);
		put_u64(b, r->errno_ret.has);
		put_u64(b, r->errno_ret.v);
		put_u64(b, r->n_names);
		for (size_t j = 0; j < r->n_names; j++)
			put_str(b, r->names[j]);
		put_u64(b, r->n_args);
		for (size_t j = 0; j < r->n_args; j++) {
			put_u64(b, r->args[j].index);
			put_u64(b, r->args[j].value);
			put_u64(b, r->args[j].value_two);
			put_u64(b, (uint64_t)r->args[j].op);
		}
	}
}

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

int seccomp_compile_cached(const spec_seccomp *s, const char *cache_dir, void **ret, size_t *ret_len)
{
	struct buf key = { 0 };
	canonical(s, &key);
	if (key.oom)
		return err_set(ENOMEM, "linux.seccomp");
	char name[64];
	snprintf(name, sizeof name, "%016llx.bpf", (unsigned long long)fnv1a(key.p, key.len));
	_cleanup_close_ int dfd = cache_dir ? open(cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (dfd < 0 && cache_dir && mkdir_p(cache_dir, 0700) == 0)
		dfd = open(cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		char *data = NULL;
		size_t len = 0;
		if (read_file_at(dfd, name, &data, &len) == 0 && len > key.len + 8) {
			uint64_t klen;
			memcpy(&klen, data, 8);
			seccomp_prog check = { 0 };
			if (klen == key.len && !memcmp(data + 8, key.p, key.len) &&
			    seccomp_prog_from_blob(data + 8 + key.len, len - 8 - key.len, &check) == 0) {
				seccomp_prog_free(&check);
				size_t blen = len - 8 - key.len;
				memmove(data, data + 8 + key.len, blen);
				free(key.p);
				*ret = data;
				*ret_len = blen;
				return 0;
			}
		}
		free(data);
		err_clear();
	}
	seccomp_prog prog = { 0 };
	void *blob = NULL;
	size_t blen = 0;
	int r = seccomp_compile(s, &prog);
	if (r == 0)
		r = seccomp_prog_to_blob(&prog, &blob, &blen);
	seccomp_prog_free(&prog);
	if (r < 0) {
		free(key.p);
		return r;
	}
	if (dfd >= 0) {
		uint64_t klen = key.len;
		struct buf entry = { 0 };
		put_u64(&entry, klen);
		put(&entry, key.p, key.len);
		put(&entry, blob, blen);
		if (!entry.oom)
			(void)write_file_atomic_at(dfd, name, entry.p, entry.len, 0600); /* best effort */
		free(entry.p);
		err_clear();
	}
	free(key.p);
	*ret = blob;
	*ret_len = blen;
	return 0;
}
