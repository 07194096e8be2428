/*
** cli.c -- argument parsing, record printing and error reporting shared by
** the fieldsync subcommands.
*/
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

int cli_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("fieldsync: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see fieldsync --help)\n", stderr);
	return EXIT_USAGE;
}

int cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("fieldsync: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_ERR;
}

int cli_fail(cli *c, int rc)
{
	fprintf(stderr, "fieldsync: %s\n",
	        c->r ? fs_replica_errmsg(c->r) : "out of memory");
	if (rc == FS_ECREDIT)
		return EXIT_CREDIT;
	if (rc == FS_EVERSION)
		return EXIT_VERSION;
	if (rc == FS_EFIELD)
		return EXIT_USAGE;   /* an unknown --FIELD flag */
	return EXIT_ERR;
}

int cli_open(cli *c)
{
	int rc;

	if (!c->db || !*c->db)
		return cli_usage("no replica: give --db PATH or set FIELDSYNC_DB");
	rc = fs_replica_open(&c->r, c->db, NULL);
	if (rc < 0)
		return cli_fail(c, rc);
	return 0;
}

static int is_bool(const char *name, const char **bool_flags)
{
	size_t i;

	for (i = 0; bool_flags && bool_flags[i]; i++)
		if (!strcmp(name, bool_flags[i]))
			return 1;
	return 0;
}

int cli_parse(cli_opts *o, int argc, char **argv, const char **bool_flags)
{
	int i;

	memset(o, 0, sizeof(*o));
	o->fields = calloc((size_t)argc + 1, sizeof(*o->fields));
	if (!o->fields)
		return cli_error("out of memory"), -1;
	for (i = 0; i < argc; i++) {
		char *a = argv[i], *eq;

		if (strncmp(a, "--", 2) || a[2] == '\0') {
			if (o->npos == sizeof(o->pos) / sizeof(*o->pos)) {
				cli_usage("too many arguments");
				goto fail;
			}
			o->pos[o->npos++] = a;
			continue;
		}
		a += 2;
		eq = strchr(a, '=');
		if (eq) {
			*eq = '\0';
			o->fields[o->n].name = a;
			o->fields[o->n++].value = eq[1] ? eq + 1 : NULL;
			continue;
		}
		if (is_bool(a, bool_flags)) {
			o->fields[o->n].name = a;
			o->fields[o->n++].value = "1";
			continue;
		}
		if (i + 1 >= argc) {
			cli_usage("--%s needs a value", a);
			goto fail;
		}
		o->fields[o->n].name = a;
		o->fields[o->n++].value = argv[i + 1][0] ? argv[i + 1] : NULL;
		i++;
	}
	return 0;

fail:
	cli_opts_free(o);   /* callers free only what parsed */
	return -1;
}

void cli_opts_free(cli_opts *o)
{
	free(o->fields);
	memset(o, 0, sizeof(*o));
}

const char *cli_take(cli_opts *o, const char *name, int *present)
{
	size_t i;

	if (present)
		*present = 0;
	for (i = 0; i < o->n; i++) {
		if (strcmp(o->fields[i].name, name))
			continue;
		{
			const char *v = o->fields[i].value;
			memmove(&o->fields[i], &o->fields[i + 1],
			        (o->n - i - 1) * sizeof(*o->fields));
			o->n--;
			if (present)
				*present = 1;
			return v;
		}
	}
	return NULL;
}

/* Walks a JSON object with SQLite's json_each on a private in-memory
** connection (the CLI only formats; the library owns the data). */
static void walk(const char *json, void (*fn)(const char *k, const char *v,
                                              const char *type, void *p),
                 void *p)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	if (sqlite3_open(":memory:", &db) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT key, value, type FROM json_each(?)",
	                       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW)
			fn((const char *)sqlite3_column_text(st, 0),
			   (const char *)sqlite3_column_text(st, 1),
			   (const char *)sqlite3_column_text(st, 2), p);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* json_each hands numbers back as doubles (1000.00 -> 1000.0); for display
** copy the number exactly as the library wrote it after "key":. */
static void print_kv(const char *k, const char *v, const char *type, void *p)
{
	const char *json = p, *at;
	char pat[160];
	size_t n;

	if (!strcmp(type, "null") || !strcmp(type, "array") ||
	    !strcmp(type, "object"))
		return;
	if (!strcmp(type, "real") || !strcmp(type, "integer")) {
		snprintf(pat, sizeof(pat), "\"%s\":", k);
		at = strstr(json, pat);
		if (at) {
			at += strlen(pat);
			n = strspn(at, "-0123456789.eE+");
			printf("%-20s %.*s\n", k, (int)n, at);
			return;
		}
	}
	printf("%-20s %s\n", k, v ? v : "");
}

void cli_print_record(const char *json)
{
	walk(json, print_kv, (void *)json);
}

struct list_line {
	int n;
};

static void list_kv(const char *k, const char *v, const char *type, void *p)
{
	struct list_line *l = p;

	if (!strcmp(type, "null") || l->n >= 4 || !strcmp(k, "created_at"))
		return;
	printf("%s%s", l->n++ ? "  " : "", v ? v : "");
}

void cli_print_list_line(const char *json)
{
	struct list_line l = { 0 };

	walk(json, list_kv, &l);
	putchar('\n');
}
