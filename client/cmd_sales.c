/*
** cmd_sales.c -- `quote new`, `order new`, `order from-quote` and the order
** status verbs (submit, confirm, ship, invoice, cancel).
*/
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* Parses every --line SKU:QTY[:UNIT_PRICE] out of o into lines (the text
** is split in place). */
static int take_lines(fs_quote_line **out, size_t *n, cli_opts *o)
{
	fs_quote_line *l = calloc(o->n + 1, sizeof(*l));
	const char *v;
	int present;

	*out = l;
	*n = 0;
	if (!l)
		return cli_error("out of memory");
	while ((v = cli_take(o, "line", &present)) != NULL || present) {
		char *s = (char *)v, *q, *p;

		if (!s || !(q = strchr(s, ':')) || q == s || !q[1])
			return cli_usage("--line takes SKU:QTY[:UNIT_PRICE], not '%s'",
			                 s ? s : "");
		*q++ = '\0';
		p = strchr(q, ':');
		if (p) {
			*p++ = '\0';
			if (!*p)
				return cli_usage("--line %s: empty unit price", s);
		}
		l[*n].sku = s;
		l[*n].quantity = q;
		l[(*n)++].unit_price = p;
	}
	return 0;
}

static int create(cli *c, int is_order, int argc, char **argv)
{
	static const char *bools[] = { "override-credit", NULL };
	fs_quote_line *lines = NULL;
	size_t nlines = 0;
	const char *cust;
	char id[FS_ID_SIZE];
	int over = 0, rc;
	cli_opts o;

	if (cli_parse(&o, argc, argv, bools) < 0)
		return EXIT_USAGE;
	cli_take(&o, "override-credit", &over);
	cust = cli_take(&o, "customer", NULL);
	if (!cust)
		cust = cli_take(&o, "customer_id", NULL);
	if ((rc = take_lines(&lines, &nlines, &o)) != 0)
		goto done;
	if (!cust) {
		rc = cli_usage("%s new needs --customer ID",
		               is_order ? "order" : "quote");
		goto done;
	}
	if (o.npos) {
		rc = cli_usage("unexpected argument '%s'", o.pos[0]);
		goto done;
	}
	if (is_order)
		rc = fs_order_create(id, c->r, cust, lines, nlines, o.fields, o.n,
		                     over ? FS_ORDER_OVERRIDE_CREDIT : 0);
	else
		rc = fs_quote_create(id, c->r, cust, lines, nlines, o.fields, o.n);
	if (rc < 0) {
		rc = cli_fail(c, rc);
		goto done;
	}
	if (c->json)
		rc = cli_show(c, is_order ? "order" : "quote", id);
	else
		rc = (printf("%s\n", id), EXIT_OK);
done:
	free(lines);
	cli_opts_free(&o);
	return rc;
}

int cmd_quote_new(cli *c, int argc, char **argv)
{
	return create(c, 0, argc, argv);
}

int cmd_order(cli *c, const char *verb, int argc, char **argv)
{
	static const struct {
		const char *verb, *status;
	} flow[] = {
		{ "submit", "submitted" }, { "confirm", "confirmed" },
		{ "ship", "shipped" },     { "invoice", "invoiced" },
		{ "cancel", "cancelled" },
	};
	static const char *bools[] = { "override-credit", NULL };
	unsigned int flags;
	char id[FS_ID_SIZE];
	int over = 0, rc;
	size_t i;
	cli_opts o;

	if (!strcmp(verb, "new"))
		return create(c, 1, argc, argv);
	if (cli_parse(&o, argc, argv, bools) < 0)
		return EXIT_USAGE;
	cli_take(&o, "override-credit", &over);
	flags = over ? FS_ORDER_OVERRIDE_CREDIT : 0;
	if (o.npos != 1 || o.n) {
		rc = cli_usage("order %s needs exactly one ID%s", verb,
		               o.n ? " and no other option" : "");
		goto done;
	}
	if (!strcmp(verb, "from-quote")) {
		if ((rc = fs_order_from_quote(id, c->r, o.pos[0], flags)) < 0)
			rc = cli_fail(c, rc);
		else if (c->json)
			rc = cli_show(c, "order", id);
		else
			rc = (printf("%s\n", id), EXIT_OK);
		goto done;
	}
	for (i = 0; i < sizeof(flow) / sizeof(*flow); i++) {
		if (strcmp(verb, flow[i].verb))
			continue;
		if ((rc = fs_order_set_status(c->r, o.pos[0], flow[i].status,
		                              flags)) < 0)
			rc = cli_fail(c, rc);
		else
			rc = c->json ? cli_show(c, "order", o.pos[0]) : EXIT_OK;
		goto done;
	}
	rc = cli_usage("order: unknown verb '%s'", verb);
done:
	cli_opts_free(&o);
	return rc;
}
