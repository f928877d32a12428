/* Mutation fuzzing of the config.json and resources parsers, run briefly in
 * every `make check` (and under ASan+UBSan): seeds are the default spec, the
 * rootless one and the seccomp profile; mutations flip, drop, insert and
 * duplicate bytes. Every input must either parse or fail with a message that
 * names the file; no crash, no leak (ASan), no hang. */
#include "unit.h"
#include "spec/spec.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/cleanup.h"
#include <fcntl.h>
#include <stdint.h>

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static const char *const tokens[] = {
	"{", "}", "[", "]", ",", ":", "\"", "null", "true", "-1", "18446744073709551616",
	"\"linux\"", "\"process\"", "\"mounts\"", "\"namespaces\"", "\"seccomp\"", "\"resources\"",
	"\"type\"", "\"path\"", "1e400", "\"\\u0000\"", "0.5", "\"CAP_TEST\"", "\"RLIMIT_FOO\"",
};

static size_t mutate(const char *seed, size_t len, char *out, size_t cap)
{
	size_t n = len < cap ? len : cap;
	memcpy(out, seed, n);
	int rounds = 1 + (int)(next() % 4);
	for (int i = 0; i < rounds && n > 0; i++) {
		size_t at = next() % n;
		switch (next() % 5) {
		case 0: /* flip a byte */
			out[at] ^= (char)(1 << (next() % 8));
			break;
		case 1: { /* drop a range */
			size_t k = 1 + next() % 16;
			if (at + k > n)
				k = n - at;
			memmove(out + at, out + at + k, n - at - k);
			n -= k;
			break;
		}
		case 2: { /* insert a token */
			const char *t = tokens[next() % ARRAY_SIZE(tokens)];
			size_t k = strlen(t);
			if (n + k >= cap)
				break;
			memmove(out + at + k, out + at, n - at);
			memcpy(out + at, t, k);
			n += k;
			break;
		}
		case 3: /* truncate */
			n = at;
			break;
		default: { /* duplicate a range elsewhere */
			size_t k = 1 + next() % 64, to = next() % n;
			if (at + k > n)
				k = n - at;
			if (n + k >= cap)
				break;
			memmove(out + to + k, out + to, n - to);
			memmove(out + to, out + at, k); /* may overlap */
			n += k;
			break;
		}
		}
	}
	out[n] = '\0';
	return n;
}

int main(void)
{
	char *seeds[4];
	size_t lens[4], nseeds = 0;
	seeds[nseeds] = spec_default_json(false);
	lens[nseeds] = strlen(seeds[nseeds]);
	nseeds++;
	seeds[nseeds] = spec_default_json(true);
	lens[nseeds] = strlen(seeds[nseeds]);
	nseeds++;
	char *prof = NULL;
	size_t plen = 0;
	const char *data = getenv("ISOLA_TEST_DATA");
	char path[512];
	snprintf(path, sizeof path, "%s/seccomp-default.json", data ? data : "tests/data");
	if (read_file_at(AT_FDCWD, path, &prof, &plen) == 0) {
		/* Wrap the profile as linux.seccomp of a default config. */
		size_t cap = lens[0] + plen + 64;
		char *cfg = malloc(cap);
		char *brace = strrchr(seeds[0], '}');
		int k = snprintf(cfg, cap, "%.*s, \"linux\": {\"seccomp\": %s}}", (int)(brace - seeds[0]), seeds[0], prof);
		/* A later "linux" key replaces the first: jansson keeps the last. */
		seeds[nseeds] = cfg;
		lens[nseeds] = (size_t)k;
		nseeds++;
		free(prof);
	}
	int iterations = getenv("ISOLA_FUZZ_ITERATIONS") ? atoi(getenv("ISOLA_FUZZ_ITERATIONS")) : 4000;
	static char buf[1 << 17];
	int parsed = 0, refused = 0, bad_msg = 0;
	for (int i = 0; i < iterations; i++) {
		size_t s = next() % nseeds;
		size_t n = mutate(seeds[s], lens[s], buf, sizeof buf - 1);
		oci_spec *sp = NULL;
		err_clear();
		if (spec_parse(buf, n, "config.json", &sp) == 0) {
			parsed++;
			spec_free(sp);
		} else {
			refused++;
			if (!strstr(err_msg(), "config.json"))
				bad_msg++, fprintf(stderr, "message without the file name: %s\n", err_msg());
		}
		spec_resources res;
		memset(&res, 0, sizeof res);
		if (spec_parse_resources(buf, n, "resources.json", &res) == 0)
			spec_resources_free(&res);
	}
	printf("fuzz: %d inputs, %d parsed, %d refused\n", iterations, parsed, refused);
	CHECK(parsed > 0);
	CHECK(refused > 0);
	CHECK_INT(bad_msg, 0);
	for (size_t i = 0; i < nseeds; i++)
		free(seeds[i]);
	return unit_done("test-spec-fuzz");
}
