/*
** cmd_report.c -- `fieldsync-admin report NAME`: head-office reports read
** from the central database (docs/reports.md defines every figure).
**
** Each report is one SQL query over the CRM tables, described by a row of
** the reports[] table below: its columns, the options it takes and the
** chart it can draw.  Every query starts with the same common table
** expressions (common_sql), so that the rules shared by reports are
** written once:
**   sub   the departments of --region: CODE and its whole subtree in
**         fs_dept (UNION, not UNION ALL, so a cycle in the tree ends);
**   cust  the customers whose region is one of them (all without
**         --region); every other record is reached through its customer;
**   ord   every order of those customers with its totals computed from its
**         lines by fs_line_net/fs_line_tax, the functions client/sales.c
**         registers and uses for `fieldsync order show` and the credit
**         check, so the figures are the client's to the cent; its date
**         ("day") is ordered_at, or created_at for an order never given one.
** Money stays integer minor units; percentages and the weighted amount are
** computed by the SQL functions registered here, exactly, in 128-bit
** integers, rounded half up.
**
** Options are all checked before the database is opened: a bad one is a
** usage error (exit 2) and nothing is read.  An unknown --region or a
** chart that cannot be written is an error (exit 1).  The chart is written
** before anything goes to stdout, so a failed run prints no table.
*/
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../client/replica_int.h"
#include "admin.h"
#include "report_table.h"
#include "svg.h"
#include "value.h"

__extension__ typedef __int128 i128;

#define R_DATES 0x1   /* takes --from / --to */
#define R_DAYS  0x2   /* takes --days */
#define R_ASOF  0x4   /* takes --as-of (a day other than today) */
#define R_SVG   0x8   /* takes --svg */
#define R_YEAR  0x10  /* without --from/--to: the 12 months to --as-of */

/* A chart longer than this many bars is refused (a month axis spanning
** centuries is a data error, not a chart). */
#define MAX_BARS 600

typedef struct rdef {
	const char *name;
	const char *title;      /* the caption's first words */
	const char *chart_title;    /* the same for the chart (R_SVG) */
	unsigned int flags;     /* R_* */
	const char *date_of;    /* what --from/--to filter ("created") */
	int days_default, days_max;
	const char *sql;        /* after common_sql */
	const admin_col *cols;
	size_t ncols;
	int chart_label, chart_value;   /* columns charted (R_SVG) */
	int chart_months;       /* the label is YYYY-MM: fill missing months */
	const char *chart_x, *chart_y;
} rdef;

typedef struct ropts {
	const rdef *def;
	const char *region, *from, *to, *asof_arg, *days_arg, *svg;
	char asof[11];          /* --as-of or today (UTC) */
	char year_from[11];     /* R_YEAR: the default period's first day */
	int64_t days;
	admin_out fmt;
} ropts;

/* ------------------------------------------------------------------ SQL */

static const char common_sql[] =
"WITH RECURSIVE sub(code) AS ("
"  SELECT :region WHERE :region IS NOT NULL"
"  UNION SELECT d.code FROM fs_dept d JOIN sub ON d.parent = sub.code),"
" cust AS (SELECT * FROM customer"
"  WHERE :region IS NULL OR region IN (SELECT code FROM sub)),"
" line AS (SELECT \"order\" AS oid, tax_rate,"
"  fs_line_net(quantity, unit_price, discount) AS net FROM order_line),"
" tot AS (SELECT oid, sum(net) AS net, sum(fs_line_tax(net, tax_rate)) AS tax"
"  FROM line GROUP BY oid),"
" pay AS (SELECT \"order\" AS oid, sum(amount) AS paid FROM payment"
"  GROUP BY \"order\"),"
" ord AS (SELECT o.id, o.customer, o.status, o.owner, o.due_date,"
"  c.name AS cname, c.region,"
"  substr(coalesce(o.ordered_at, o.created_at), 1, 10) AS day,"
"  coalesce(t.net, 0) AS net, coalesce(t.tax, 0) AS tax,"
"  coalesce(t.net, 0) + coalesce(t.tax, 0) AS gross,"
"  coalesce(p.paid, 0) AS paid"
"  FROM sales_order o JOIN cust c ON c.id = o.customer"
"  LEFT JOIN tot t ON t.oid = o.id LEFT JOIN pay p ON p.oid = o.id)";

#define IN_PERIOD(d) \
	"(:from IS NULL OR " d " >= :from) AND (:to IS NULL OR " d " <= :to)"

/* Funnel.  reached(S): opportunities now at S or a later stage of lead ->
** qualified -> proposal -> negotiation -> won; every opportunity, a lost
** one too, reached lead.  conversion(S) = reached(next S) / reached(S). */
static const char funnel_sql[] =
", stages(stage, rk) AS (VALUES ('lead', 0), ('qualified', 1),"
"  ('proposal', 2), ('negotiation', 3), ('won', 4), ('lost', 5)),"
" opp AS (SELECT o.stage, coalesce(o.amount, 0) AS amount,"
"  report_muldiv(coalesce(o.amount, 0), coalesce(o.probability, 0), 100)"
"   AS weighted"
"  FROM opportunity o JOIN cust c ON c.id = o.customer"
"  WHERE " IN_PERIOD("substr(o.created_at, 1, 10)") "),"
" agg AS (SELECT s.stage, s.rk, count(opp.stage) AS n,"
"  coalesce(sum(opp.amount), 0) AS amount,"
"  coalesce(sum(opp.weighted), 0) AS weighted"
"  FROM stages s LEFT JOIN opp ON opp.stage = s.stage GROUP BY s.stage, s.rk),"
" reach AS (SELECT a.*, CASE WHEN a.rk = 0 THEN (SELECT sum(n) FROM agg)"
"  WHEN a.rk <= 4 THEN (SELECT sum(n) FROM agg b WHERE b.rk BETWEEN a.rk AND 4)"
"  END AS reached FROM agg a)"
" SELECT stage, n, amount, weighted, reached,"
"  CASE WHEN rk < 4 THEN report_pct((SELECT b.reached FROM reach b"
"   WHERE b.rk = a.rk + 1), reached) END"
" FROM reach a ORDER BY rk";

static const admin_col funnel_cols[] = {
	{ "stage", ADMIN_COL_TEXT, 0 },
	{ "count", ADMIN_COL_INT, ADMIN_COL_TOTAL },
	{ "amount", ADMIN_COL_MONEY, ADMIN_COL_TOTAL },
	{ "weighted", ADMIN_COL_MONEY, ADMIN_COL_TOTAL },
	{ "reached", ADMIN_COL_INT, 0 },
	{ "conversion", ADMIN_COL_PCT, 0 },
};

static const char orders_sql[] =
" SELECT substr(day, 1, 7), region, owner, count(*), sum(net), sum(tax),"
"  sum(gross)"
" FROM ord WHERE status IN ('submitted', 'confirmed', 'shipped', 'invoiced')"
"  AND " IN_PERIOD("day")
" GROUP BY 1, 2, 3 ORDER BY 1, 2, 3";

static const admin_col orders_cols[] = {
	{ "month", ADMIN_COL_TEXT, 0 },
	{ "region", ADMIN_COL_TEXT, 0 },
	{ "rep", ADMIN_COL_TEXT, 0 },
	{ "orders", ADMIN_COL_INT, ADMIN_COL_TOTAL },
	{ "net", ADMIN_COL_MONEY, ADMIN_COL_TOTAL },
	{ "tax", ADMIN_COL_MONEY, ADMIN_COL_TOTAL },
	{ "gross", ADMIN_COL_MONEY, ADMIN_COL_TOTAL },
};

/* ABC.  "before" is the revenue of the customers with strictly more
** revenue, so that customers with equal revenue share a class. */
static const char abc_sql[] =
", rev AS (SELECT customer AS id, sum(net) AS revenue FROM ord"
"  WHERE status IN ('confirmed', 'shipped', 'invoiced') AND " IN_PERIOD("day")
"  GROUP BY customer HAVING sum(net) > 0),"
" r AS (SELECT c.id, c.name, c.code, c.region, rev.revenue,"
"  sum(rev.revenue) OVER () AS total,"
"  sum(rev.revenue) OVER (ORDER BY rev.revenue DESC)"
"   - rev.revenue * count(*) OVER (PARTITION BY rev.revenue) AS before,"
"  sum(rev.revenue) OVER (ORDER BY rev.revenue DESC, c.name, c.id"
"   ROWS UNBOUNDED PRECEDING) AS cum,"
"  row_number() OVER (ORDER BY rev.revenue DESC, c.name, c.id) AS rk"
"  FROM rev JOIN cust c ON c.id = rev.id)"
" SELECT rk, name, code, region, revenue, report_pct(revenue, total),"
"  report_pct(cum, total), report_abc(before, total), id"
" FROM r ORDER BY rk";

static const admin_col abc_cols[] = {
	{ "rank", ADMIN_COL_INT, 0 },
	{ "customer", ADMIN_COL_TEXT, 0 },
	{ "code", ADMIN_COL_TEXT, 0 },
	{ "region", ADMIN_COL_TEXT, 0 },
	{ "revenue", ADMIN_COL_MONEY, ADMIN_COL_TOTAL },
	{ "share", ADMIN_COL_PCT, 0 },
	{ "cumulative", ADMIN_COL_PCT, 0 },
	{ "class", ADMIN_COL_TEXT, 0 },
	{ "customer_id", ADMIN_COL_TEXT, ADMIN_COL_MACHINE },
};

/* Receivables.  Due: the order's due_date, or its date + --days days. */
static const char receivables_sql[] =
", r AS (SELECT o.*,"
"  coalesce(o.due_date, date(o.day, '+' || :days || ' days')) AS due"
"  FROM ord o WHERE o.status = 'invoiced' AND o.gross > o.paid"
"  AND " IN_PERIOD("o.day") ")"
" SELECT cname, region, id, day, due, gross, paid, gross - paid,"
"  max(0, CAST(julianday(:asof) - julianday(due) AS INTEGER)),"
"  julianday(:asof) > julianday(due), customer"
" FROM r ORDER BY cname, customer, day, id";

static const admin_col receivables_cols[] = {
	{ "customer", ADMIN_COL_TEXT, 0 },
	{ "region", ADMIN_COL_TEXT, 0 },
	{ "order", ADMIN_COL_TEXT, 0 },
	{ "ordered", ADMIN_COL_TEXT, 0 },
	{ "due", ADMIN_COL_TEXT, 0 },
	{ "invoiced", ADMIN_COL_MONEY, ADMIN_COL_TOTAL },
	{ "paid", ADMIN_COL_MONEY, ADMIN_COL_TOTAL },
	{ "balance", ADMIN_COL_MONEY, ADMIN_COL_TOTAL },
	{ "days_overdue", ADMIN_COL_INT, 0 },
	{ "overdue", ADMIN_COL_BOOL, 0 },
	{ "customer_id", ADMIN_COL_TEXT, ADMIN_COL_MACHINE },
};

static const char birthdays_sql[] =
", b AS (SELECT k.id, k.name, k.birthday, k.phone, k.mobile,"
"  c.id AS cid, c.name AS cname, c.region,"
"  report_next_birthday(k.birthday, :asof) AS next"
"  FROM contact k JOIN cust c ON c.id = k.customer"
"  WHERE k.birthday IS NOT NULL)"
" SELECT next, CAST(julianday(next) - julianday(:asof) AS INTEGER), name,"
"  birthday, CAST(substr(next, 1, 4) AS INTEGER)"
"   - CAST(substr(birthday, 1, 4) AS INTEGER),"
"  cname, region, phone, mobile, id, cid"
" FROM b WHERE julianday(next) - julianday(:asof) <= :days"
" ORDER BY next, name, id";

static const admin_col birthdays_cols[] = {
	{ "date", ADMIN_COL_TEXT, 0 },
	{ "in_days", ADMIN_COL_INT, 0 },
	{ "contact", ADMIN_COL_TEXT, 0 },
	{ "birthday", ADMIN_COL_TEXT, 0 },
	{ "turns", ADMIN_COL_INT, 0 },
	{ "customer", ADMIN_COL_TEXT, 0 },
	{ "region", ADMIN_COL_TEXT, 0 },
	{ "phone", ADMIN_COL_TEXT, 0 },
	{ "mobile", ADMIN_COL_TEXT, 0 },
	{ "contact_id", ADMIN_COL_TEXT, ADMIN_COL_MACHINE },
	{ "customer_id", ADMIN_COL_TEXT, ADMIN_COL_MACHINE },
};

/* Credit: the open balance exactly as client/sales.c's open_balance(),
** which the client's credit check compares with the limit. */
static const char credit_sql[] =
", bal AS (SELECT customer, sum(max(0, gross - paid)) AS open FROM ord"
"  WHERE status <> 'cancelled' GROUP BY customer),"
" r AS (SELECT c.id, c.name, c.region, c.credit_limit AS lim,"
"  coalesce(b.open, 0) AS open FROM cust c"
"  LEFT JOIN bal b ON b.customer = c.id)"
" SELECT name, region, lim, open, lim - open, report_pct(open, lim),"
"  lim IS NOT NULL AND open > lim AS over, id"
" FROM r WHERE lim IS NOT NULL OR open > 0"
" ORDER BY over DESC, report_pct(open, lim) DESC NULLS LAST, name, id";

static const admin_col credit_cols[] = {
	{ "customer", ADMIN_COL_TEXT, 0 },
	{ "region", ADMIN_COL_TEXT, 0 },
	{ "credit_limit", ADMIN_COL_MONEY, 0 },
	{ "open", ADMIN_COL_MONEY, ADMIN_COL_TOTAL },
	{ "available", ADMIN_COL_MONEY, 0 },
	{ "used", ADMIN_COL_PCT, 0 },
	{ "over_limit", ADMIN_COL_BOOL, 0 },
	{ "customer_id", ADMIN_COL_TEXT, ADMIN_COL_MACHINE },
};

#define COLS(a) a, sizeof(a) / sizeof((a)[0])

static const rdef reports[] = {
	{ "funnel", "Sales funnel: opportunities by stage",
	  "Sales funnel: opportunities by stage", R_DATES | R_SVG,
	  "created", 0, 0, funnel_sql, COLS(funnel_cols), 0, 1, 0, "stage",
	  "opportunities" },
	{ "orders", "Orders by month, region and rep (submitted to invoiced)",
	  "Orders: gross amount by month (submitted to invoiced)",
	  R_DATES | R_SVG, "ordered", 0, 0, orders_sql, COLS(orders_cols), 0, 6,
	  1, "month", "gross amount" },
	{ "abc", "ABC classes of customers by revenue (net of confirmed, "
	  "shipped and invoiced orders)", NULL, R_DATES | R_ASOF | R_YEAR, "ordered",
	  0, 0, abc_sql, COLS(abc_cols), -1, -1, 0, NULL, NULL },
	{ "receivables", "Receivables: invoiced orders not fully paid", NULL,
	  R_DATES | R_DAYS | R_ASOF, "ordered", 30, 36500, receivables_sql,
	  COLS(receivables_cols), -1, -1, 0, NULL, NULL },
	{ "birthdays", "Contact birthdays", NULL, R_DAYS | R_ASOF, NULL, 30, 366,
	  birthdays_sql, COLS(birthdays_cols), -1, -1, 0, NULL, NULL },
	{ "credit", "Credit-limit utilisation (open balance of the orders not "
	  "cancelled, as the client's credit check)", NULL, 0, NULL, 0, 0, credit_sql,
	  COLS(credit_cols), -1, -1, 0, NULL, NULL },
};

#define NAMES "funnel, orders, abc, receivables, birthdays, credit"

/* ----------------------------------------------------- dates, functions */

static int leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m)
{
	static const int d[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
	                           31 };
	return m == 2 && leap(y) ? 29 : d[m - 1];
}

/* The number written by the n digits at s, or -1 if one is not a digit. */
static int digits(const char *s, int n)
{
	int v = 0;

	while (n--) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s++ - '0');
	}
	return v;
}

/* y, m, d of a date fs_value__valid_date() accepted. */
static void split_date(const char *s, int *y, int *m, int *d)
{
	*y = digits(s, 4);
	*m = digits(s + 5, 2);
	*d = digits(s + 8, 2);
}

/* The first day of the 12 months that end on asof (inclusive): the same
** day a year earlier (Feb 28 for Feb 29), plus one day. */
static void year_before(char out[11], const char *asof)
{
	int y, m, d;

	split_date(asof, &y, &m, &d);
	if (y <= 1) {
		snprintf(out, 11, "0001-01-01");
		return;
	}
	y--;
	if (d > month_days(y, m))
		d = month_days(y, m);
	if (++d > month_days(y, m)) {
		d = 1;
		if (++m > 12) {
			m = 1;
			y++;
		}
	}
	snprintf(out, 11, "%04d-%02d-%02d", y, m, d);
}

/* num / den rounded half away from zero (den != 0). */
static i128 round_div(i128 num, i128 den)
{
	if (den < 0) {
		num = -num;
		den = -den;
	}
	if (num >= 0)
		return (num + den / 2) / den;
	return -((-num + den / 2) / den);
}

/* An exact result, or an error rather than a wrapped figure. */
static void result_i128(sqlite3_context *ctx, i128 v)
{
	if (v > INT64_MAX || v < INT64_MIN)
		sqlite3_result_error(ctx, "a figure is too large for the report",
		                     -1);
	else
		sqlite3_result_int64(ctx, (sqlite3_int64)v);
}

static int any_null(int argc, sqlite3_value **argv)
{
	int i;

	for (i = 0; i < argc; i++)
		if (sqlite3_value_type(argv[i]) == SQLITE_NULL)
			return 1;
	return 0;
}

/* report_muldiv(a, b, c): a * b / c rounded half away from zero. */
static void fn_muldiv(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	i128 c;

	if (any_null(argc, argv) || !(c = sqlite3_value_int64(argv[2]))) {
		sqlite3_result_null(ctx);
		return;
	}
	result_i128(ctx, round_div((i128)sqlite3_value_int64(argv[0]) *
	                           sqlite3_value_int64(argv[1]), c));
}

/* report_pct(num, den): num / den in hundredths of a percent, rounded
** half up; NULL when den is NULL or 0. */
static void fn_pct(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	i128 den;

	if (any_null(argc, argv) || !(den = sqlite3_value_int64(argv[1]))) {
		sqlite3_result_null(ctx);
		return;
	}
	result_i128(ctx, round_div((i128)sqlite3_value_int64(argv[0]) * 10000,
	                           den));
}

/* report_abc(before, total): 'A' while the revenue before a customer is
** under 80% of the total, 'B' under 95%, else 'C'. */
static void fn_abc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	i128 before, total;
	const char *cls;

	if (any_null(argc, argv)) {
		sqlite3_result_null(ctx);
		return;
	}
	before = sqlite3_value_int64(argv[0]);
	total = sqlite3_value_int64(argv[1]);
	cls = before * 100 < total * 80 ? "A" : before * 100 < total * 95 ? "B"
	                                                                  : "C";
	sqlite3_result_text(ctx, cls, 1, SQLITE_STATIC);
}

/* report_next_birthday(birthday, asof): the first anniversary of birthday
** on or after asof, 'YYYY-MM-DD'.  Feb 29 falls on Feb 28 in other years.
** NULL for anything that is not a real date. */
static void fn_next_birthday(sqlite3_context *ctx, int argc,
                             sqlite3_value **argv)
{
	const char *b = (const char *)sqlite3_value_text(argv[0]);
	const char *a = (const char *)sqlite3_value_text(argv[1]);
	int by, bm, bd, y, m, d, day;
	char out[16];

	(void)argc;
	if (!b || !a || !fs_value__valid_date(b) || !fs_value__valid_date(a)) {
		sqlite3_result_null(ctx);
		return;
	}
	split_date(b, &by, &bm, &bd);
	split_date(a, &y, &m, &d);
	day = bd > month_days(y, bm) ? month_days(y, bm) : bd;
	if (bm < m || (bm == m && day < d)) {
		y++;
		day = bd > month_days(y, bm) ? month_days(y, bm) : bd;
	}
	snprintf(out, sizeof(out), "%04d-%02d-%02d", y, bm, day);
	sqlite3_result_text(ctx, out, -1, SQLITE_TRANSIENT);
}

static int register_functions(sqlite3 *db)
{
	static const struct {
		const char *name;
		int nargs;
		void (*fn)(sqlite3_context *, int, sqlite3_value **);
	} fns[] = {
		{ "report_muldiv", 3, fn_muldiv },
		{ "report_pct", 2, fn_pct },
		{ "report_abc", 2, fn_abc },
		{ "report_next_birthday", 2, fn_next_birthday },
	};
	size_t i;

	for (i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
		if (sqlite3_create_function(db, fns[i].name, fns[i].nargs,
		                            SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
		                            fns[i].fn, NULL, NULL) != SQLITE_OK)
			return -1;
	return 0;
}

/* -------------------------------------------------------------- options */

/* 2 after saying so if report d was given an option it does not take. */
static int refuse(const rdef *d, unsigned int flag, int given,
                  const char *what)
{
	char msg[120];

	if (!given || (d->flags & flag))
		return 0;
	snprintf(msg, sizeof(msg), "report %s takes no %s", d->name, what);
	return admin_usage("%s", msg);
}

static int parse_opts(ropts *o, int argc, char **argv)
{
	const char *name = NULL;
	char msg[160];
	size_t i;
	int a, rc, csv = 0, json = 0;

	memset(o, 0, sizeof(*o));
	for (a = 0; a < argc; a++) {
		const char *arg = argv[a], **slot = NULL;

		if (!strcmp(arg, "--csv")) {
			csv = 1;
			continue;
		}
		if (!strcmp(arg, "--json")) {
			json = 1;
			continue;
		}
		if (!strcmp(arg, "--region"))
			slot = &o->region;
		else if (!strcmp(arg, "--from"))
			slot = &o->from;
		else if (!strcmp(arg, "--to"))
			slot = &o->to;
		else if (!strcmp(arg, "--days"))
			slot = &o->days_arg;
		else if (!strcmp(arg, "--as-of"))
			slot = &o->asof_arg;
		else if (!strcmp(arg, "--svg"))
			slot = &o->svg;
		if (slot) {
			if (a + 1 >= argc || !strncmp(argv[a + 1], "--", 2) ||
			    !argv[a + 1][0])
				return admin_usage("report: %s needs a value", arg);
			if (*slot)
				return admin_usage("report: %s given twice", arg);
			*slot = argv[++a];
		} else if (arg[0] == '-' && arg[1]) {
			return admin_usage("report: unknown option '%s'", arg);
		} else if (!name) {
			name = arg;
		} else {
			return admin_usage("report: unexpected argument '%s'", arg);
		}
	}
	if (!name)
		return admin_usage("report needs a NAME: %s", NAMES);
	for (i = 0; i < sizeof(reports) / sizeof(reports[0]); i++)
		if (!strcmp(name, reports[i].name))
			o->def = &reports[i];
	if (!o->def) {
		snprintf(msg, sizeof(msg), "unknown report '%.40s' (one of %s)",
		         name, NAMES);
		return admin_usage("%s", msg);
	}
	if (csv && json)
		return admin_usage("report: --csv and --json exclude each other%s",
		                   "");
	o->fmt = csv ? ADMIN_OUT_CSV : json ? ADMIN_OUT_JSON : ADMIN_OUT_TEXT;
	if ((rc = refuse(o->def, R_DATES, o->from || o->to, "--from/--to")) ||
	    (rc = refuse(o->def, R_DAYS, o->days_arg != NULL, "--days")) ||
	    (rc = refuse(o->def, R_ASOF, o->asof_arg != NULL, "--as-of")))
		return rc;
	if (o->svg && !(o->def->flags & R_SVG)) {
		snprintf(msg, sizeof(msg), "report %s has no chart (--svg is for "
		         "funnel and orders)", name);
		return admin_usage("%s", msg);
	}
	if (o->from && !fs_value__valid_date(o->from))
		return admin_usage("report: --from '%s' is not a date (YYYY-MM-DD)",
		                   o->from);
	if (o->to && !fs_value__valid_date(o->to))
		return admin_usage("report: --to '%s' is not a date (YYYY-MM-DD)",
		                   o->to);
	if (o->asof_arg && !fs_value__valid_date(o->asof_arg))
		return admin_usage("report: --as-of '%s' is not a date (YYYY-MM-DD)",
		                   o->asof_arg);
	if (o->from && o->to && strcmp(o->from, o->to) > 0) {
		snprintf(msg, sizeof(msg), "report: --from %s is after --to %s",
		         o->from, o->to);
		return admin_usage("%s", msg);
	}
	o->days = o->def->days_default;
	if (o->days_arg && (fs_value__parse_int(&o->days, o->days_arg) < 0 ||
	                    o->days < 0 || o->days > o->def->days_max)) {
		snprintf(msg, sizeof(msg), "report %s: --days must be a whole "
		         "number from 0 to %d, not '%.20s'", name,
		         o->def->days_max, o->days_arg);
		return admin_usage("%s", msg);
	}
	if (o->asof_arg) {
		snprintf(o->asof, sizeof(o->asof), "%s", o->asof_arg);
	} else {
		char now[24];
		fs_replica__now(now);
		snprintf(o->asof, sizeof(o->asof), "%.10s", now);
	}
	if ((o->def->flags & R_YEAR) && !o->from && !o->to) {
		year_before(o->year_from, o->asof);
		o->from = o->year_from;
		o->to = o->asof;
	}
	return 0;
}

/* "Title; created 2025-01-01 to 2025-03-31; region N and its subtree". */
static void caption(fs_buf *b, const ropts *o, const char *title)
{
	const rdef *d = o->def;

	fs_buf_puts(b, title);
	if (o->from && o->to)
		fs_buf_printf(b, "; %s %s to %s", d->date_of, o->from, o->to);
	else if (o->from)
		fs_buf_printf(b, "; %s from %s", d->date_of, o->from);
	else if (o->to)
		fs_buf_printf(b, "; %s up to %s", d->date_of, o->to);
	if (!strcmp(d->name, "receivables"))
		fs_buf_printf(b, "; as of %s; due %lld days after the order unless "
		              "it has a due date", o->asof, (long long)o->days);
	else if (!strcmp(d->name, "birthdays"))
		fs_buf_printf(b, " from %s, the next %lld days", o->asof,
		              (long long)o->days);
	if (o->region)
		fs_buf_printf(b, "; region %s and its subtree", o->region);
	else
		fs_buf_puts(b, "; all regions");
}

/* ----------------------------------------------------------------- run */

static void bind_text(sqlite3_stmt *st, const char *name, const char *v)
{
	int i = sqlite3_bind_parameter_index(st, name);

	if (i > 0 && v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* 0, or 1 after saying why. */
static int check_region(fs_replica *r, const char *code)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(r->db, "SELECT 1 FROM fs_dept WHERE code = ?", -1,
	                       &st, NULL) != SQLITE_OK)
		return admin_fail("reading the departments: %s%s",
		                  sqlite3_errmsg(r->db), "");
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		return admin_fail("reading the departments: %s%s",
		                  sqlite3_errmsg(r->db), "");
	return admin_fail("unknown region '%s': no such department (`dept list` "
	                  "shows them)%s", code, "");
}

/* Runs the report's query into t.  0, or 1 after saying why. */
static int run(admin_table *t, fs_replica *r, const ropts *o)
{
	fs_buf sql = FS_BUF_INIT;
	sqlite3_stmt *st = NULL;
	int rc;

	fs_buf_puts(&sql, common_sql);
	fs_buf_puts(&sql, o->def->sql);
	if (sql.failed) {
		fs_buf_free(&sql);
		return admin_fail("out of memory%s%s", "", "");
	}
	rc = sqlite3_prepare_v2(r->db, sql.ptr, -1, &st, NULL);
	fs_buf_free(&sql);
	if (rc != SQLITE_OK)
		return admin_fail("report %s: %s", o->def->name,
		                  sqlite3_errmsg(r->db));
	bind_text(st, ":region", o->region);
	bind_text(st, ":from", o->from);
	bind_text(st, ":to", o->to);
	bind_text(st, ":asof", o->asof);
	if ((rc = sqlite3_bind_parameter_index(st, ":days")) > 0)
		sqlite3_bind_int64(st, rc, o->days);
	rc = admin_table_fill(t, st);
	sqlite3_finalize(st);
	if (rc == SQLITE_NOMEM)
		return admin_fail("out of memory%s%s", "", "");
	if (rc != SQLITE_DONE)
		return admin_fail("report %s: %s", o->def->name,
		                  sqlite3_errmsg(r->db));
	return 0;
}

/* The bars: rows grouped by the label column (the rows come ordered by
** it), values summed; for a month axis every month from the first to the
** last, a month without rows a zero bar.  0, or 1 after saying why. */
typedef struct bars {
	char (*label)[16];
	const char **labels;
	int64_t *values;
	size_t n, cap;
} bars;

static int bars_add(bars *b, const char *label, int64_t v)
{
	if (b->n && !strcmp(b->label[b->n - 1], label)) {
		if (__builtin_add_overflow(b->values[b->n - 1], v,
		                           &b->values[b->n - 1]))
			return admin_fail("chart: a total is too large to draw%s%s",
			                  "", "");
		return 0;
	}
	if (b->n == MAX_BARS)
		return admin_fail("chart: more than %s bars; narrow the report with "
		                  "--from/--to%s", "600", "");
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		char (*l)[16] = realloc(b->label, cap * sizeof(*l));
		int64_t *v;

		if (!l)
			return admin_fail("out of memory%s%s", "", "");
		b->label = l;
		if (!(v = realloc(b->values, cap * sizeof(*v))))
			return admin_fail("out of memory%s%s", "", "");
		b->values = v;
		b->cap = cap;
	}
	snprintf(b->label[b->n], sizeof(b->label[0]), "%.15s", label);
	b->values[b->n++] = v;
	return 0;
}

/* "YYYY-MM" -> months since year 0, or -1. */
static long month_index(const char *s)
{
	int y, m;

	if (!s || strlen(s) != 7 || s[4] != '-' || (y = digits(s, 4)) < 0 ||
	    (m = digits(s + 5, 2)) < 1 || m > 12)
		return -1;
	return (long)y * 12 + (m - 1);
}

static int collect_bars(bars *b, const admin_table *t, const rdef *d)
{
	size_t r;

	for (r = 0; r < t->nrows; r++) {
		const admin_cell *l = admin_table_cell(t, r, (size_t)d->chart_label);
		const admin_cell *v = admin_table_cell(t, r, (size_t)d->chart_value);
		const char *label = l->null ? "-" : l->s;

		if (d->chart_months && b->n && month_index(label) >= 0 &&
		    month_index(b->label[b->n - 1]) >= 0) {
			long m = month_index(b->label[b->n - 1]) + 1;
			long end = month_index(label);
			char gap[48];

			for (; m < end; m++) {
				snprintf(gap, sizeof(gap), "%04ld-%02ld", m / 12, m % 12 + 1);
				if (bars_add(b, gap, 0))
					return 1;
			}
		}
		if (bars_add(b, label, v->null ? 0 : v->i))
			return 1;
	}
	return 0;
}

/* Writes the chart to o->svg.  0, or 1 after saying why (a file that
** could not be completed is removed). */
static int write_chart(const admin_table *t, const ropts *o)
{
	const rdef *d = o->def;
	admin_svg_chart c;
	bars b;
	fs_buf svg = FS_BUF_INIT, title = FS_BUF_INIT;
	FILE *f = NULL;
	size_t i;
	int rc = 1;

	memset(&b, 0, sizeof(b));
	if (collect_bars(&b, t, d))
		goto done;
	if (b.n && !(b.labels = calloc(b.n, sizeof(*b.labels)))) {
		admin_fail("out of memory%s%s", "", "");
		goto done;
	}
	for (i = 0; i < b.n; i++)
		b.labels[i] = b.label[i];
	caption(&title, o, d->chart_title);
	memset(&c, 0, sizeof(c));
	c.title = title.ptr;
	c.x_title = d->chart_x;
	c.y_title = d->chart_y;
	c.scale = t->cols[d->chart_value].kind == ADMIN_COL_MONEY ? 2 : 0;
	c.labels = b.labels;
	c.values = b.values;
	c.n = b.n;
	if (title.failed || admin_svg_bars(&svg, &c) < 0) {
		admin_fail("out of memory%s%s", "", "");
		goto done;
	}
	if (!(f = fopen(o->svg, "w"))) {
		admin_fail("cannot write the chart %s: %s", o->svg, strerror(errno));
		goto done;
	}
	if (fwrite(svg.ptr, 1, svg.len, f) != svg.len || fflush(f) != 0) {
		admin_fail("cannot write the chart %s: %s", o->svg, strerror(errno));
		fclose(f);
		remove(o->svg);
		goto done;
	}
	if (fclose(f) != 0) {
		admin_fail("cannot write the chart %s: %s", o->svg, strerror(errno));
		remove(o->svg);
		goto done;
	}
	rc = 0;
done:
	fs_buf_free(&svg);
	fs_buf_free(&title);
	free(b.labels);
	free(b.label);
	free(b.values);
	return rc;
}

int admin_cmd_report(const char *dir, int argc, char **argv)
{
	fs_replica *r = NULL;
	admin_table t;
	fs_buf cap = FS_BUF_INIT, out = FS_BUF_INIT;
	ropts o;
	int rc, in_tx = 0;

	memset(&t, 0, sizeof(t));
	if ((rc = parse_opts(&o, argc, argv)) != 0)
		return rc;
	admin_table_init(&t, o.def->cols, o.def->ncols);
	if (admin_open_db(&r, dir, 0)) {
		fs_replica_close(r);   /* a handle that failed to open, if any */
		return 1;
	}
	rc = 1;
	if (register_functions(r->db) < 0) {
		admin_fail("registering the report functions: %s%s",
		           sqlite3_errmsg(r->db), "");
		goto done;
	}
	/* One read transaction: the region check and the report see the same
	** database. */
	if (fs_replica__exec(r, "BEGIN", "reading the database") < 0) {
		admin_fail("%s%s", fs_replica_errmsg(r), "");
		goto done;
	}
	in_tx = 1;
	if (o.region && check_region(r, o.region))
		goto done;
	if (run(&t, r, &o))
		goto done;
	caption(&cap, &o, o.def->title);
	if (cap.failed) {
		admin_fail("out of memory%s%s", "", "");
		goto done;
	}
	if (o.svg && write_chart(&t, &o))
		goto done;
	if (admin_table_render(&out, &t, o.fmt, cap.ptr) < 0) {
		admin_fail("out of memory%s%s", "", "");
		goto done;
	}
	if (fwrite(out.ptr, 1, out.len, stdout) != out.len ||
	    fflush(stdout) != 0) {
		admin_fail("writing the report: %s%s", strerror(errno), "");
		goto done;
	}
	rc = 0;
done:
	if (in_tx)
		sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
	admin_table_free(&t);
	fs_buf_free(&cap);
	fs_buf_free(&out);
	fs_replica_close(r);
	return rc;
}
