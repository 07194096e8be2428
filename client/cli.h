/*
** cli.h -- shared plumbing of the `fieldsync` command line: argument
** parsing, output of records, and the mapping of error codes to exit codes.
*/
#ifndef FS_CLI_H
#define FS_CLI_H

#include <stdio.h>

#include "fieldsync.h"

/* Exit codes (documented in docs/cli.md). */
#define EXIT_OK      0
#define EXIT_ERR     1
#define EXIT_USAGE   2
#define EXIT_CREDIT  3
#define EXIT_VERSION 4
#define EXIT_REJECTED 5   /* sync done, but the server refused changes */

typedef struct cli {
	const char *db;      /* --db or FIELDSYNC_DB */
	int json;            /* --json */
	int argc;            /* what is left after global options */
	char **argv;
	fs_replica *r;
} cli;

/* Parsed "--name value" pairs after the positional arguments. */
typedef struct cli_opts {
	fs_field *fields;
	size_t n;
	const char *pos[8];  /* positional arguments */
	size_t npos;
} cli_opts;

/* Splits argv into positionals and --name value pairs (also --name=value;
** "" means NULL).  Flags listed in 'bool_flags' (NULL-terminated) take no
** value and are returned with value "1".  Returns 0 or prints usage and
** returns -1. */
int cli_parse(cli_opts *o, int argc, char **argv, const char **bool_flags);
void cli_opts_free(cli_opts *o);
/* Removes and returns the field named 'name' (or NULL if absent);
** *present says whether it was there. */
const char *cli_take(cli_opts *o, const char *name, int *present);

int cli_open(cli *c);
/* Reports the replica's last error and returns the matching exit code. */
int cli_fail(cli *c, int rc);
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints a JSON record human-readably ("field: value" lines). */
void cli_print_record(const char *json);
/* Prints one line of a list: id and a few leading fields. */
void cli_print_list_line(const char *json);

/* Commands. */
int cmd_record(cli *c, const char *noun, int argc, char **argv);
int cmd_quote_new(cli *c, int argc, char **argv);
int cmd_order(cli *c, const char *verb, int argc, char **argv);
int cmd_visit_log(cli *c, int argc, char **argv);
int cmd_import(cli *c, const char *noun, int argc, char **argv);
int cmd_export(cli *c, const char *noun, int argc, char **argv);
int cmd_customer_copy(cli *c, int argc, char **argv);
int cmd_customer_merge(cli *c, int argc, char **argv);
int cmd_init(cli *c, int argc, char **argv);
int cmd_status(cli *c, int argc, char **argv);
int cmd_changes(cli *c, int argc, char **argv);
int cmd_dump(cli *c, int argc, char **argv);
int cmd_sync(cli *c, int argc, char **argv);
int cmd_conflicts(cli *c, int argc, char **argv);
int cmd_rejections(cli *c, int argc, char **argv);

/* Prints a record as JSON (with "lines" and "totals" for quotes/orders)
** or human-readably. */
int cli_show(cli *c, const char *noun, const char *id);

#endif
