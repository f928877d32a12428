/* Mutation fuzzing of the QMP reply parser, run briefly in every `make
 * check` (and under ASan+UBSan). Seeds are messages QEMU 7.2 sends (the
 * greeting, returns of query-status, query-block and query-migrate, errors,
 * events); mutations flip, drop, insert and duplicate bytes. Each input must
 * parse into a consistent message or fail with "QMP message: ..."; no crash,
 * no leak (ASan), no hang. Then whole mutated streams go through a real
 * connection (a socketpair), which must end in an error or at end of file. */
#include "unit.h"
#include "vm/qmp.h"
#include "util/cleanup.h"
#include "util/err.h"
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const seeds[] = {
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}",
	"{\"return\": {}}",
	"{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}, \"id\": 7}",
	"{\"return\": [{\"io-status\": \"ok\", \"device\": \"root\", \"locked\": false, \"removable\": false, \"inserted\": "
	"{\"iops_rd\": 100, \"detect_zeroes\": \"off\", \"image\": {\"virtual-size\": 67108864, \"filename\": \"/x/root.qcow2\", "
	"\"format\": \"qcow2\", \"actual-size\": 397312, \"dirty-flag\": false}, \"iops_wr\": 200, \"ro\": false, \"node-name\": "
	"\"#block151\", \"backing_file_depth\": 1, \"drv\": \"qcow2\", \"iops\": 0, \"bps_wr\": 2000000, \"write_threshold\": 0, "
	"\"encrypted\": false, \"bps\": 0, \"bps_rd\": 1000000, \"cache\": {\"no-flush\": false, \"direct\": false, \"writeback\": true}, "
	"\"file\": \"/x/root.qcow2\"}, \"qdev\": \"vda\", \"type\": \"unknown\"}], \"id\": 3}",
	"{\"return\": {\"expected-downtime\": 300, \"status\": \"completed\", \"setup-time\": 2, \"total-time\": 505, \"ram\": "
	"{\"total\": 268435456, \"transferred\": 69695665, \"mbps\": 1100.5}, \"downtime\": 5}, \"id\": 12}",
	"{\"id\": 4, \"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'value' expects a size\"}}",
	"{\"timestamp\": {\"seconds\": 1796285619, \"microseconds\": 536456}, \"event\": \"SHUTDOWN\", \"data\": {\"guest\": true, \"reason\": \"guest-shutdown\"}}",
	"{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"MIGRATION\", \"data\": {\"status\": \"completed\"}}",
	"{\"event\": \"BALLOON_CHANGE\", \"data\": {\"actual\": 134217728}, \"timestamp\": {\"seconds\": 1, \"microseconds\": 0}}",
	"{\"event\": \"GUEST_PANICKED\", \"data\": {\"action\": \"exit-failure\", \"info\": {\"type\": \"hyper-v\"}}}",
};

static const char *const tokens[] = {
	"{", "}", "[", "]", ",", ":", "\"", "null", "true", "-1", "18446744073709551616", "\"return\"", "\"error\"",
	"\"event\"", "\"data\"", "\"id\"", "\"QMP\"", "\"class\"", "\"desc\"", "1e400", "\"\\u0000\"", "\"\\ud800\"", "\r\n", "\n",
	"\"timestamp\"", "{\"seconds\": -5, \"microseconds\": 9999999999}",
};

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static size_t mutate(const char *seed, size_t len, char *out, size_t cap)
{
	size_t n = len < cap ? len : cap;
	memcpy(out, seed, n);
	int rounds = 1 + (int)(next() % 4);
	for (int i = 0; i < rounds && n > 0; i++) {
		size_t at = next() % n;
		switch (next() % 5) {
		case 0:
			out[at] ^= (char)(1 << (next() % 8));
			break;
		case 1: {
			size_t k = 1 + next() % 16;
			if (at + k > n)
				k = n - at;
			memmove(out + at, out + at + k, n - at - k);
			n -= k;
			break;
		}
		case 2: {
			const char *t = tokens[next() % ARRAY_SIZE(tokens)];
			size_t k = strlen(t);
			if (n + k >= cap)
				break;
			memmove(out + at + k, out + at, n - at);
			memcpy(out + at, t, k);
			n += k;
			break;
		}
		case 3:
			n = at;
			break;
		default: {
			size_t k = 1 + next() % 64, to = next() % n;
			if (at + k > n)
				k = n - at;
			if (n + k >= cap)
				break;
			memmove(out + to + k, out + to, n - to);
			memmove(out + to, out + at, k);
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
	signal(SIGPIPE, SIG_IGN);
	int iterations = getenv("ISOLA_FUZZ_ITERATIONS") ? atoi(getenv("ISOLA_FUZZ_ITERATIONS")) : 4000;
	static char buf[1 << 14];
	int parsed = 0, refused = 0, bad = 0;
	for (int i = 0; i < iterations; i++) {
		const char *s = seeds[next() % ARRAY_SIZE(seeds)];
		size_t n = mutate(s, strlen(s), buf, sizeof buf - 1);
		struct qmp_msg m;
		err_clear();
		if (qmp_msg_parse(buf, n, &m) == 0) {
			parsed++;
			bool consistent = m.root != NULL;
			if (m.kind == QMP_MSG_RETURN)
				consistent &= m.ret != NULL;
			if (m.kind == QMP_MSG_ERROR)
				consistent &= m.err_class && m.err_desc;
			if (m.kind == QMP_MSG_EVENT)
				consistent &= m.event && *m.event && json_is_object(m.data);
			if (!consistent)
				bad++, fprintf(stderr, "inconsistent message from: %s\n", buf);
			qmp_msg_clear(&m);
		} else {
			refused++;
			if (!strstr(err_msg(), "QMP message"))
				bad++, fprintf(stderr, "message without \"QMP message\": %s\n", err_msg());
		}
	}
	printf("fuzz: %d messages, %d parsed, %d refused\n", iterations, parsed, refused);

	/* Streams: greeting, capabilities' answer, then mutated lines. */
	int streams = iterations / 8, ended = 0;
	for (int i = 0; i < streams; i++) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			break;
		const char *head = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n{\"return\": {}, \"id\": 1}\r\n";
		(void)!write(sv[1], head, strlen(head));
		for (int k = 0; k < 8; k++) {
			const char *s = seeds[next() % ARRAY_SIZE(seeds)];
			size_t n = mutate(s, strlen(s), buf, sizeof buf - 3);
			memcpy(buf + n, "\r\n", 3);
			(void)!write(sv[1], buf, n + 2);
		}
		struct qmp *q = NULL;
		int ro = qmp_open_fd(sv[0], "fuzz", 1000, &q);
		close(sv[1]); /* after the capabilities were sent */
		if (ro < 0) {
			bad++, fprintf(stderr, "stream %d: %s\n", i, err_msg());
			continue;
		}
		int r, rounds = 0;
		while ((r = qmp_process(q)) >= 0 && rounds++ < 100)
			while (qmp_wait_event(q, NULL, 0, NULL, NULL) == 0)
				;
		ended += r < 0;
		qmp_close(q);
	}
	printf("fuzz: %d streams, %d ended in an error or at end of file\n", streams, ended);
	CHECK(parsed > 0);
	CHECK(refused > 0);
	CHECK_INT(ended, streams);
	CHECK_INT(bad, 0);
	return unit_done("test-vm-qmp-fuzz");
}
