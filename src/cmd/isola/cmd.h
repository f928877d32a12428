/* Shared between the isola command files. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct globals {
	const char *state_dir;
};
extern struct globals g;

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
};
/* Run argv[0] from a table of commands; `group` names it in messages. */
int dispatch(const char *group, const struct command *cmds, size_t n, int argc, char **argv);
void print_usage(FILE *f, const char *group, const struct command *cmds, size_t n);

/* Print "isola: <last error>" on stderr; returns the exit status (1). */
int fail_cmd(int r);
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* --format: "table" (default) or "json". */
int parse_format(const char *cmd, const char *arg, bool *json);

int cmd_image(int argc, char **argv);
