/* Mutation fuzzing of the host's agent frame reader (agent_reader_next), the
 * parser of everything an untrusted guest sends. Seeds are streams of valid
 * guest frames; mutations flip bytes (lengths and types too), drop, insert
 * and truncate. Each stream is read twice, in one piece and in random chunks
 * as a socket would deliver it: both readings must give the same frames and
 * the same end, every frame must fit its type and lie inside the reader's
 * fixed buffer, and a bad frame must stop the reading. Run in every `make
 * check` (and under ASan+UBSan). */
#include "unit.h"
#include "vm/agent.h"
#include "util/cleanup.h"
#include <stdint.h>

static uint64_t rng = 0x853c49e6748fea9bULL;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t put_frame(uint8_t *out, uint16_t type, uint32_t sid, const void *p, size_t len)
{
	agent_hdr_put(out, type, sid, (uint32_t)len);
	memcpy(out + AGENT_HDR_SIZE, p, len);
	return AGENT_HDR_SIZE + len;
}

static size_t seed_stream(uint8_t *out)
{
	size_t n = 0;
	uint8_t m[24] = { 0 };
	n += put_frame(out + n, AGENT_PONG, 7, m, 12);
	n += put_frame(out + n, AGENT_STARTED, 9, m, 4);
	n += put_frame(out + n, AGENT_STDOUT, 9, "hello world\n", 12);
	n += put_frame(out + n, AGENT_STDERR, 9, "oops\n", 5);
	n += put_frame(out + n, AGENT_EXIT, 9, m, 8);
	n += put_frame(out + n, AGENT_ERROR, 11, "\2\0\0\0exec \"x\": gone", 18);
	n += put_frame(out + n, AGENT_OK, 13, m, 0);
	n += put_frame(out + n, AGENT_MEMINFO_REPLY, 15, m, 24);
	return n;
}

/* Read the stream in chunks of at most `chunk` bytes (0: all at once);
 * record each frame's type, session and length; the final result. */
struct trace {
	uint32_t v[3 * 64];
	int frames, end;
};

static void read_stream(const uint8_t *s, size_t len, size_t chunk, struct trace *t, int *bad)
{
	static struct agent_reader r;
	memset(&r, 0, sizeof r);
	t->frames = 0;
	size_t at = 0;
	for (;;) {
		struct agent_hdr h;
		const uint8_t *p;
		int k = agent_reader_next(&r, &h, &p);
		if (k == 1) {
			if (h.len > AGENT_MAX_PAYLOAD || p < r.buf || p + h.len > r.buf + sizeof r.buf ||
			    agent_frame_validate(&h, p) < 0)
				(*bad)++;
			if (t->frames < 64) {
				t->v[3 * t->frames] = h.type;
				t->v[3 * t->frames + 1] = h.session;
				t->v[3 * t->frames + 2] = h.len;
			}
			t->frames++;
			continue;
		}
		if (k < 0 || at == len) {
			t->end = k;
			return;
		}
		size_t room = agent_reader_room(&r);
		size_t n = chunk ? 1 + next() % chunk : len - at;
		if (n > len - at)
			n = len - at;
		if (n > room)
			n = room;
		if (n == 0) { /* full without a frame: cannot happen with bounded frames */
			(*bad)++;
			t->end = -1;
			return;
		}
		memcpy(r.buf + r.len, s + at, n);
		r.len += n;
		at += n;
	}
}

int main(void)
{
	int iterations = getenv("ISOLA_FUZZ_ITERATIONS") ? atoi(getenv("ISOLA_FUZZ_ITERATIONS")) : 4000;
	static uint8_t seed[4096], buf[8192];
	size_t slen = seed_stream(seed);
	int bad = 0, clean = 0, refused = 0, partial = 0;
	for (int i = 0; i < iterations; i++) {
		size_t n = slen;
		memcpy(buf, seed, n);
		int rounds = 1 + (int)(next() % 3);
		for (int k = 0; k < rounds && n > 0; k++) {
			size_t at = next() % n;
			switch (next() % 4) {
			case 0:
				buf[at] ^= (uint8_t)(1 << (next() % 8));
				break;
			case 1: { /* a random 32-bit value: lengths and magics */
				uint32_t v = (uint32_t)next();
				if (at + 4 <= n)
					memcpy(buf + at, &v, 4);
				break;
			}
			case 2: { /* drop */
				size_t d = 1 + next() % 16;
				if (at + d > n)
					d = n - at;
				memmove(buf + at, buf + at + d, n - at - d);
				n -= d;
				break;
			}
			default:
				n = at;
			}
		}
		struct trace whole, chunked;
		read_stream(buf, n, 0, &whole, &bad);
		read_stream(buf, n, 1 + next() % 40, &chunked, &bad);
		if (whole.frames != chunked.frames || whole.end != chunked.end ||
		    memcmp(whole.v, chunked.v, sizeof(uint32_t) * 3 * (size_t)(whole.frames < 64 ? whole.frames : 64)) != 0)
			bad++, fprintf(stderr, "iteration %d: chunked reading differs\n", i);
		if (whole.end < 0)
			refused++;
		else if (whole.frames == 8)
			clean++;
		else
			partial++;
	}
	printf("fuzz: %d streams: %d read whole, %d refused, %d cut short\n", iterations, clean, refused, partial);
	CHECK(refused > 0);
	CHECK(partial > 0);
	CHECK_INT(bad, 0);
	return unit_done("test-vm-agent-fuzz");
}
