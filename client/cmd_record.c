/*
** cmd_record.c -- the verbs every entity has: add, edit, delete, show, list.
** One implementation for all entities, driven by the schema.
*/
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct list_ctx {
	int json;
	int first;
	long left;   /* records still to print; -1 = no limit */
};

/* Prints one listed record; returns 1 (stop) once --limit is reached. */
static int print_list_item(const char *json, void *payload)
{
	struct list_ctx *l = payload;

	if (l->left == 0)
		return 1;
	if (l->json)
		printf("%s%s", l->first ? "" : ",\n", json);
	else
		cli_print_list_line(json);
	l->first = 0;
	if (l->left > 0)
		l->left--;
	return 0;
}

static int print_human_line(const char *json, void *payload)
{
	(void)payload;
	cli_print_list_line(json);
	return 0;
}

struct lines {
	fs_buf *b;
	int n;
};

static int add_line_json(const char *json, void *payload)
{
	struct lines *l = payload;

	if (l->n++)
		fs_buf_putc(l->b, ',');
	return fs_buf_puts(l->b, json);
}

static void money(fs_buf *b, int64_t v)
{
	fs_buf_printf(b, "%s%lld.%02lld", v < 0 ? "-" : "",
	              (long long)(v < 0 ? -v : v) / 100,
	              (long long)(v < 0 ? -v : v) % 100);
}

int cli_show(cli *c, const char *noun, const char *id)
{
	char *json = NULL;
	fs_buf out = FS_BUF_INIT;
	int rc, has_lines = !strcmp(noun, "quote") || !strcmp(noun, "order") ||
	                    !strcmp(noun, "sales_order");

	if ((rc = fs_record_get_json(&json, c->r, noun, id)) < 0)
		return cli_fail(c, rc);
	if (!has_lines) {
		if (c->json)
			printf("%s\n", json);
		else
			cli_print_record(json);
		fs_free(json);
		return EXIT_OK;
	}
	{
		int isq = !strcmp(noun, "quote");
		fs_field filt = { isq ? "quote" : "order", id };
		struct lines l = { &out, 0 };
		fs_totals t;

		/* The record without its closing brace, then lines and totals. */
		fs_buf_put(&out, json, strlen(json) - 1);
		fs_buf_puts(&out, ",\"lines\":[");
		rc = fs_record_list(c->r, isq ? "quote_line" : "order_line", NULL,
		                    &filt, 1, add_line_json, &l);
		if (rc == 0)
			rc = fs_totals_get(&t, c->r, noun, id);
		if (rc < 0) {
			fs_free(json);
			fs_buf_free(&out);
			return cli_fail(c, rc);
		}
		fs_buf_puts(&out, "],\"totals\":{\"net\":");
		money(&out, t.net);
		fs_buf_puts(&out, ",\"tax\":");
		money(&out, t.tax);
		fs_buf_puts(&out, ",\"gross\":");
		money(&out, t.gross);
		if (!isq) {
			fs_buf_puts(&out, ",\"paid\":");
			money(&out, t.paid);
			fs_buf_puts(&out, ",\"balance\":");
			money(&out, t.gross - t.paid);
		}
		fs_buf_puts(&out, "}}");
		if (c->json) {
			printf("%s\n", out.ptr);
		} else {
			cli_print_record(json);
			printf("%-20s %lld.%02lld\n%-20s %lld.%02lld\n%-20s %lld.%02lld\n",
			       "net", (long long)t.net / 100, (long long)t.net % 100,
			       "tax", (long long)t.tax / 100, (long long)t.tax % 100,
			       "total", (long long)t.gross / 100,
			       (long long)t.gross % 100);
			if (!isq)
				printf("%-20s %lld.%02lld\n", "paid",
				       (long long)t.paid / 100, (long long)t.paid % 100);
			printf("lines:\n");
			fs_record_list(c->r, isq ? "quote_line" : "order_line", NULL,
			               &filt, 1, print_human_line, NULL);
		}
	}
	fs_free(json);
	fs_buf_free(&out);
	return out.failed ? cli_error("out of memory") : EXIT_OK;
}

static int do_add(cli *c, const char *noun, cli_opts *o)
{
	char id[FS_ID_SIZE];
	int over = 0, rc;

	cli_take(o, "override-credit", &over);
	if (o->npos)
		return cli_usage("%s add takes no positional argument ('%s')", noun,
		                 o->pos[0]);
	rc = fs_record_insert_flags(id, c->r, noun, o->fields, o->n,
	                            over ? FS_ORDER_OVERRIDE_CREDIT : 0);
	if (rc < 0)
		return cli_fail(c, rc);
	if (c->json)
		return cli_show(c, noun, id);
	printf("%s\n", id);
	return EXIT_OK;
}

static int do_edit(cli *c, const char *noun, cli_opts *o)
{
	const char *status;
	int over = 0, has_status = 0, rc;

	cli_take(o, "override-credit", &over);
	if (o->npos != 1)
		return cli_usage("%s edit needs one ID", noun);
	if (o->n == 0 && !over)
		return cli_usage("%s edit: nothing to change (give --FIELD VALUE)",
		                 noun);
	if ((rc = fs_replica_begin(c->r)) < 0)
		return cli_fail(c, rc);
	/* An order's status goes through the status flow (credit check). */
	if (!strcmp(noun, "order") || !strcmp(noun, "sales_order")) {
		status = cli_take(o, "status", &has_status);
		if (has_status && (rc = fs_order_set_status(c->r, o->pos[0],
		        status, over ? FS_ORDER_OVERRIDE_CREDIT : 0)) < 0)
			goto fail;
	}
	if (o->n && (rc = fs_record_update(c->r, noun, o->pos[0], o->fields,
	                                   o->n)) < 0)
		goto fail;
	if ((rc = fs_replica_commit(c->r)) < 0)
		return cli_fail(c, rc);
	if (c->json)
		return cli_show(c, noun, o->pos[0]);
	return EXIT_OK;
fail:
	{
		int code = cli_fail(c, rc);
		fs_replica_rollback(c->r);
		return code;
	}
}

static int do_list(cli *c, const char *noun, cli_opts *o)
{
	const char *search = cli_take(o, "search", NULL);
	const char *limit_s = cli_take(o, "limit", NULL);
	struct list_ctx l = { c->json, 1, -1 };
	int rc;

	if (o->npos)
		return cli_usage("%s list takes no positional argument", noun);
	if (limit_s) {
		char *end;
		l.left = strtol(limit_s, &end, 10);
		if (*end || l.left < 0)
			return cli_usage("--limit needs a non-negative number");
	}
	if (c->json)
		printf("[");
	rc = fs_record_list(c->r, noun, search, o->fields, o->n,
	                    print_list_item, &l);
	if (c->json)
		printf("]\n");
	if (rc < 0)
		return cli_fail(c, rc);
	return EXIT_OK;
}

int cmd_record(cli *c, const char *noun, int argc, char **argv)
{
	static const char *bools[] = { "override-credit", NULL };
	const char *verb = argc > 0 ? argv[0] : NULL;
	cli_opts o;
	int rc;

	if (!verb)
		return cli_usage("%s: missing verb (add, edit, delete, show, list)",
		                 noun);
	if (cli_parse(&o, argc - 1, argv + 1, bools) < 0)
		return EXIT_USAGE;
	if (!strcmp(verb, "add"))
		rc = do_add(c, noun, &o);
	else if (!strcmp(verb, "edit"))
		rc = do_edit(c, noun, &o);
	else if (!strcmp(verb, "delete")) {
		if (o.npos != 1 || o.n)
			rc = cli_usage("%s delete needs exactly one ID", noun);
		else if ((rc = fs_record_delete(c->r, noun, o.pos[0])) < 0)
			rc = cli_fail(c, rc);
		else
			rc = EXIT_OK;
	} else if (!strcmp(verb, "show")) {
		if (o.npos != 1 || o.n)
			rc = cli_usage("%s show needs exactly one ID", noun);
		else
			rc = cli_show(c, noun, o.pos[0]);
	} else if (!strcmp(verb, "list"))
		rc = do_list(c, noun, &o);
	else
		rc = cli_usage("%s: unknown verb '%s'", noun, verb);
	cli_opts_free(&o);
	return rc;
}
