/* Output helpers shared by the isola commands: JSON, tables, times. */
#include "util/err.h"
#include "cmd.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

void format_time(int64_t t, char *buf, size_t len, bool iso)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, len, iso ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M UTC", &tm);
}

int print_json(json_t *j)
{
	if (!j)
		return fail_cmd(err_set(ENOMEM, "JSON output"));
	char *s = json_dumps(j, JSON_INDENT(2));
	json_decref(j);
	if (!s)
		return fail_cmd(err_set(ENOMEM, "JSON output"));
	printf("%s\n", s);
	free(s);
	return 0;
}

void print_table(size_t ncol, const char *const *head, char **cells, size_t nrows)
{
	size_t *width = calloc(ncol, sizeof *width);
	if (!width)
		return;
	for (size_t c = 0; c < ncol; c++)
		width[c] = strlen(head[c]);
	for (size_t r = 0; r < nrows; r++)
		for (size_t c = 0; c < ncol; c++) {
			const char *v = cells[r * ncol + c];
			if (v && strlen(v) > width[c])
				width[c] = strlen(v);
		}
	for (size_t r = 0; r <= nrows; r++)
		for (size_t c = 0; c < ncol; c++) {
			const char *v = r == 0 ? head[c] : cells[(r - 1) * ncol + c];
			if (!v)
				v = "?";
			if (c + 1 < ncol)
				printf("%-*s  ", (int)width[c], v);
			else
				printf("%s\n", v);
		}
	free(width);
}
