/* isola image list | info | import | export | delete. */
#include "manager/image.h"
#include "manager/limits.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "cmd.h"
#include <ctype.h>
#include <getopt.h>
#include <jansson.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void store_closep(struct image_store **s) { if (*s) image_store_close(*s); }
#define _cleanup_store_ _cleanup_(store_closep)

static int open_store(struct image_store **ret)
{
	return image_store_open(g.state_dir, ret);
}

/* ---- progress bar on a terminal ------------------------------------------- */

struct bar {
	struct timespec start, last;
	bool drawn;
};

static double since(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* Drawn only for operations that last more than half a second, at most ten
 * times a second, on stderr. */
static void bar_update(void *userdata, const char *phase, uint64_t done, uint64_t total)
{
	struct bar *b = userdata;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (since(&b->start, &now) < 0.5 || (b->drawn && since(&b->last, &now) < 0.1))
		return;
	b->last = now;
	b->drawn = true;
	char d[32], t[32];
	image_format_size(done, d, sizeof d);
	if (total && done <= total) {
		int width = 30, fill = (int)((double)done / (double)total * width);
		char bar[32];
		memset(bar, '#', (size_t)fill);
		memset(bar + fill, '.', (size_t)(width - fill));
		bar[width] = '\0';
		fprintf(stderr, "\r%s [%s] %3d%% %s / %s\033[K", phase, bar, (int)(100.0 * (double)done / (double)total),
			d, image_format_size(total, t, sizeof t));
	} else {
		fprintf(stderr, "\r%s %s\033[K", phase, d);
	}
	fflush(stderr);
}

static void bar_done(struct bar *b)
{
	if (b->drawn)
		fputs("\r\033[K", stderr);
}

static const struct image_progress *bar_init(struct bar *b, struct image_progress *p)
{
	*b = (struct bar){ 0 };
	clock_gettime(CLOCK_MONOTONIC, &b->start);
	if (!isatty(STDERR_FILENO))
		return NULL;
	p->fn = bar_update;
	p->userdata = b;
	return p;
}

/* ---- output ------------------------------------------------------------------ */

static json_t *info_json(const struct image_info *i)
{
	char created[64];
	format_time(i->created, created, sizeof created, true);
	json_t *aliases = json_array();
	for (char **a = i->aliases; a && *a; a++)
		json_array_append_new(aliases, json_string(*a));
	return json_pack("{s:s, s:o, s:s, s:s, s:s, s:I, s:s}", "fingerprint", i->fingerprint, "aliases", aliases,
			 "type", i->type, "architecture", i->architecture, "source", i->source,
			 "size", (json_int_t)i->size, "created_at", created);
}

static char *join_aliases(char **aliases)
{
	size_t len = 1;
	for (char **a = aliases; a && *a; a++)
		len += strlen(*a) + 1;
	char *s = calloc(1, len);
	for (char **a = aliases; s && a && *a; a++) {
		if (a != aliases)
			strcat(s, ",");
		strcat(s, *a);
	}
	return s;
}

static void print_images(struct image_info *imgs, size_t n)
{
	enum { ALIAS, FP, TYPE, ARCH, SIZE, CREATED, NCOL };
	static const char *const head[NCOL] = { "ALIAS", "FINGERPRINT", "TYPE", "ARCH", "SIZE", "CREATED" };
	char **cells = calloc(n * NCOL + 1, sizeof *cells);
	if (!cells) {
		fail_cmd(err_set(ENOMEM, "image list"));
		return;
	}
	for (size_t r = 0; r < n; r++) {
		char buf[64], **row = cells + r * NCOL;
		char *al = join_aliases(imgs[r].aliases);
		row[ALIAS] = al && *al ? al : (free(al), strdup("-"));
		row[FP] = strndup(imgs[r].fingerprint, 12);
		row[TYPE] = strdup(imgs[r].type);
		row[ARCH] = strdup(imgs[r].architecture);
		row[SIZE] = strdup(image_format_size(imgs[r].size, buf, sizeof buf));
		format_time(imgs[r].created, buf, sizeof buf, false);
		row[CREATED] = strdup(buf);
	}
	print_table(NCOL, head, cells, n);
	for (size_t i = 0; i < n * NCOL; i++)
		free(cells[i]);
	free(cells);
}

static void print_info(const struct image_info *i)
{
	char size[32], created[64];
	_cleanup_free_ char *al = join_aliases(i->aliases);
	format_time(i->created, created, sizeof created, false);
	printf("Fingerprint:  %s\n", i->fingerprint);
	printf("Aliases:      %s\n", al && *al ? al : "-");
	printf("Type:         %s\n", i->type);
	printf("Architecture: %s\n", i->architecture);
	printf("Size:         %s (%llu bytes)\n", image_format_size(i->size, size, sizeof size),
	       (unsigned long long)i->size);
	printf("Created:      %s\n", created);
	printf("Source:       %s\n", i->source);
}

/* ---- commands ------------------------------------------------------------------ */

/* getopt_long over a subcommand's own argv; permutes, so options may follow
 * the operands. Returns the option or -1; '?' after printing the error. */
static int next_opt(int argc, char **argv, const struct option *opts)
{
	return getopt_long(argc, argv, "", opts, NULL);
}

static int image_cmd_list(int argc, char **argv)
{
	static const struct option opts[] = { { "format", required_argument, 0, 'f' }, { 0, 0, 0, 0 } };
	bool json = false;
	int c;
	optind = 0; /* full getopt reset: a new argv */
	while ((c = next_opt(argc, argv, opts)) != -1) {
		if (c != 'f')
			return option_error("image list", argv);
		if (parse_format("image list", optarg, &json))
			return 1;
	}
	if (optind != argc)
		return usage_error("image list", "unexpected argument \"%s\"", argv[optind]);
	_cleanup_store_ struct image_store *s = NULL;
	struct image_info *imgs;
	size_t n;
	int r = open_store(&s);
	if (r < 0 || (r = image_list(s, &imgs, &n)) < 0)
		return fail_cmd(r);
	if (json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, info_json(&imgs[i]));
		r = print_json(a);
	} else {
		print_images(imgs, n);
	}
	image_info_array_free(imgs, n);
	return r;
}

static int image_cmd_info(int argc, char **argv)
{
	static const struct option opts[] = { { "format", required_argument, 0, 'f' }, { 0, 0, 0, 0 } };
	bool json = false;
	int c;
	optind = 0; /* full getopt reset: a new argv */
	while ((c = next_opt(argc, argv, opts)) != -1) {
		if (c != 'f')
			return option_error("image info", argv);
		if (parse_format("image info", optarg, &json))
			return 1;
	}
	if (argc - optind != 1)
		return usage_error("image info", "expected one image (an alias or a fingerprint prefix)");
	_cleanup_store_ struct image_store *s = NULL;
	struct image_info info;
	int r = open_store(&s);
	if (r < 0 || (r = image_get(s, argv[optind], &info)) < 0)
		return fail_cmd(r);
	if (json)
		r = print_json(info_json(&info));
	else
		print_info(&info);
	image_info_clear(&info);
	return r;
}

static int image_cmd_import(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "alias", required_argument, 0, 'a' }, { "format", required_argument, 0, 'f' },
		{ "max-size", required_argument, 0, 's' }, { "max-ratio", required_argument, 0, 'r' }, { 0, 0, 0, 0 },
	};
	const char *alias = NULL;
	bool json = false;
	uint64_t max_bytes = IMAGE_MAX_BYTES_DEFAULT, max_ratio = IMAGE_MAX_RATIO_DEFAULT;
	int c;
	optind = 0; /* full getopt reset: a new argv */
	while ((c = next_opt(argc, argv, opts)) != -1) {
		switch (c) {
		case 'a': alias = optarg; break;
		case 'f':
			if (parse_format("image import", optarg, &json))
				return 1;
			break;
		case 's':
			if (limits_parse_size("--max-size", optarg, &max_bytes) < 0)
				return fail_cmd(-EINVAL);
			break;
		case 'r': {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(optarg, &end, 10);
			if (!isdigit((unsigned char)*optarg) || *end || errno || v < 1 || v > 1000000)
				return usage_error("image import", "--max-ratio: \"%s\": a whole number from 1 to 1000000",
						   optarg);
			max_ratio = v;
			break;
		}
		default: return option_error("image import", argv);
		}
	}
	if (argc - optind != 1)
		return usage_error("image import", "expected one FILE or DIR (a rootfs tarball or an OCI image layout)");
	_cleanup_store_ struct image_store *s = NULL;
	_cleanup_free_ char *fp = NULL;
	struct bar b;
	struct image_progress p;
	int r = open_store(&s);
	if (r < 0)
		return fail_cmd(r);
	image_store_set_import_limits(s, max_bytes, max_ratio);
	r = image_import(s, argv[optind], alias, bar_init(&b, &p), &fp);
	bar_done(&b);
	if (r < 0)
		return fail_cmd(r); /* messages name the file and the member */
	if (!json) {
		printf("Image imported with fingerprint: %s\n", fp);
		return 0;
	}
	struct image_info info;
	if ((r = image_get(s, fp, &info)) < 0)
		return fail_cmd(r);
	r = print_json(info_json(&info));
	image_info_clear(&info);
	return r;
}

static int image_cmd_export(int argc, char **argv)
{
	static const struct option opts[] = { { 0, 0, 0, 0 } };
	optind = 0; /* full getopt reset: a new argv */
	if (next_opt(argc, argv, opts) != -1)
		return option_error("image export", argv);
	if (argc - optind != 2)
		return usage_error("image export", "expected IMAGE and FILE (.tar, .tar.gz, .tar.zst or .tar.xz)");
	_cleanup_store_ struct image_store *s = NULL;
	struct bar b;
	struct image_progress p;
	int r = open_store(&s);
	if (r < 0)
		return fail_cmd(r);
	r = image_export(s, argv[optind], argv[optind + 1], bar_init(&b, &p));
	bar_done(&b);
	return r < 0 ? fail_cmd(r) : 0;
}

static int image_cmd_delete(int argc, char **argv)
{
	static const struct option opts[] = { { 0, 0, 0, 0 } };
	optind = 0; /* full getopt reset: a new argv */
	if (next_opt(argc, argv, opts) != -1)
		return option_error("image delete", argv);
	if (argc - optind < 1)
		return usage_error("image delete", "expected one or more images");
	_cleanup_store_ struct image_store *s = NULL;
	int r = open_store(&s);
	if (r < 0)
		return fail_cmd(r);
	int status = 0;
	for (int i = optind; i < argc; i++)
		if ((r = image_delete(s, argv[i])) < 0)
			status = fail_cmd(r);
	return status;
}

static const struct command image_commands[] = {
	{ "list", image_cmd_list, "list [--format table|json]" },
	{ "info", image_cmd_info, "info [--format table|json] IMAGE" },
	{ "import", image_cmd_import, "import [--alias NAME] [--format table|json] [--max-size SIZE] [--max-ratio N] "
				      "FILE|DIR\n    an import writes at most --max-size (16GiB) and an archive expands to at "
				      "most\n    --max-ratio (100) times its size once past 64 MiB" },
	{ "export", image_cmd_export, "export IMAGE FILE" },
	{ "delete", image_cmd_delete, "delete IMAGE..." },
};

int cmd_image(int argc, char **argv)
{
	return dispatch("image", image_commands, ARRAY_SIZE(image_commands), argc - 1, argv + 1);
}
