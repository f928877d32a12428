/* Minimal unit-test harness: CHECK macros that print both sides, and a
 * summary line "N passed, N failed" per program. */
#pragma once
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static int unit_pass, unit_fail;

#define CHECK(cond) do { if (cond) unit_pass++; else { unit_fail++; \
	fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
	if (_a == _b) unit_pass++; else { unit_fail++; \
	fprintf(stderr, "%s:%d: %s == %s: got %lld, want %lld\n", __FILE__, __LINE__, #a, #b, _a, _b); } } while (0)
#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); \
	if (_a && _b && strcmp(_a, _b) == 0) unit_pass++; else { unit_fail++; \
	fprintf(stderr, "%s:%d: %s == %s: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); } } while (0)
#define CHECK_CONTAINS(hay, needle) do { const char *_h = (hay), *_n = (needle); \
	if (_h && strstr(_h, _n)) unit_pass++; else { unit_fail++; \
	fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, _h ? _h : "(null)", _n); } } while (0)

static inline int unit_done(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, unit_pass, unit_fail);
	return unit_fail ? 1 : 0;
}
