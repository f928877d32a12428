/* Shared between the isola command files. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

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
/* After getopt returned '?' or ':' (opterr is off): a message naming the
 * command and the option; returns the exit status. */
int option_error(const char *cmd, char **argv);
/* --format: "table" (default) or "json". */
int parse_format(const char *cmd, const char *arg, bool *json);

int cmd_image(int argc, char **argv);

/* output.c: JSON (takes the reference; returns the exit status), tables
 * (cells: nrows * ncol strings, NULL shown as "?"), times in UTC. */
int print_json(json_t *j);
void print_table(size_t ncol, const char *const *head, char **cells, size_t nrows);
void format_time(int64_t t, char *buf, size_t len, bool iso);

/* cmd-instance.c, cmd-exec.c, cmd-config.c: the instance commands. */
int cmd_launch(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_restart(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_monitor_exit(int argc, char **argv);

struct manager;
/* The manager for --state-dir. */
int open_manager(struct manager **ret);
