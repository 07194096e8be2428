/*
** sales.c -- the sales process rules: quote and order totals, line pricing
** from the catalogue, order status flow, and the customer credit limit.
**
** Money is integer minor units throughout.  A line's net amount is
**   round_half_up(quantity/1000 * unit_price * (10000 - discount)/10000)
** computed exactly in 128-bit integers, its tax round_half_up(net *
** tax_rate / 10000); totals are sums of lines, never stored, so lines
** merged from two devices can never disagree with a stored total.
**
** Credit: a customer's open balance is, over its orders that are not
** cancelled, the sum of max(0, gross - payments).  Creating or submitting
** an order that leaves the balance above credit_limit fails with
** FS_ECREDIT unless FS_ORDER_OVERRIDE_CREDIT is given, which is recorded on
** the order (credit_override, _by, _at).
*/
#include "replica_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "uuid.h"
#include "value.h"

__extension__ typedef __int128 i128;

static sqlite3_int64 round_div(i128 num, i128 den)
{
	/* Half away from zero; amounts here are non-negative by schema. */
	if (num >= 0)
		return (sqlite3_int64)((num + den / 2) / den);
	return (sqlite3_int64)-((-num + den / 2) / den);
}

static sqlite3_int64 line_net(sqlite3_int64 qty, sqlite3_int64 price,
                              sqlite3_int64 disc)
{
	return round_div((i128)qty * price * (10000 - disc), (i128)10000000);
}

static void fn_line_net(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	sqlite3_result_int64(ctx, line_net(sqlite3_value_int64(argv[0]),
	                                   sqlite3_value_int64(argv[1]),
	                                   sqlite3_value_int64(argv[2])));
}

static void fn_line_tax(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	sqlite3_result_int64(ctx, round_div((i128)sqlite3_value_int64(argv[0]) *
	                                    sqlite3_value_int64(argv[1]), 10000));
}

int fs_sales__register(fs_replica *r)
{
	int rc = sqlite3_create_function(r->db, "fs_line_net", 3,
	                SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, fn_line_net,
	                NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function(r->db, "fs_line_tax", 2,
		                SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
		                fn_line_tax, NULL, NULL);
	if (rc != SQLITE_OK)
		return fs_err__sqlite(&r->err, r->db, rc, "registering functions");
	return 0;
}

/* Text of one column of one record, into out (empty if NULL).  1 found,
** 0 no such record, <0 error. */
static int get_text(char *out, size_t size, fs_replica *r, const char *table,
                    const char *col, const char *id)
{
	sqlite3_stmt *st = NULL;
	char sql[160];
	int rc;

	out[0] = '\0';
	snprintf(sql, sizeof(sql), "SELECT \"%s\" FROM \"%s\" WHERE id=?", col,
	         table);
	if (fs_replica__prepare(&st, r, sql) < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
	fs_replica__finish(r, st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return fs_err__sqlite(&r->err, r->db, rc, "reading a record");
}

int fs_totals_get(fs_totals *out, fs_replica *r, const char *entity,
                  const char *id)
{
	const fs_table *t = fs_replica__table(r, entity);
	sqlite3_stmt *st = NULL;
	const char *sql;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!t)
		return r->err.code;
	if (!strcmp(t->name, "quote"))
		sql = "SELECT coalesce(sum(n), 0), coalesce(sum(fs_line_tax(n, tax_rate)), 0), 0 "
		      "FROM (SELECT fs_line_net(quantity, unit_price, discount) n, "
		      "tax_rate FROM quote_line WHERE quote = ?1)";
	else if (!strcmp(t->name, "sales_order"))
		sql = "SELECT coalesce(sum(n), 0), coalesce(sum(fs_line_tax(n, tax_rate)), 0), "
		      "(SELECT coalesce(sum(amount), 0) FROM payment WHERE \"order\" = ?1) "
		      "FROM (SELECT fs_line_net(quantity, unit_price, discount) n, "
		      "tax_rate FROM order_line WHERE \"order\" = ?1)";
	else
		return fs_err__set(&r->err, FS_EINVALID,
		                   "only quotes and orders have totals");
	if ((rc = fs_replica__exists(r, t->name, id ? id : "")) <= 0)
		return rc < 0 ? rc : fs_err__set(&r->err, FS_ENOTFOUND,
		                                 "no %s with id '%s'", t->noun,
		                                 id ? id : "");
	if (fs_replica__prepare(&st, r, sql) < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->net = sqlite3_column_int64(st, 0);
		out->tax = sqlite3_column_int64(st, 1);
		out->gross = out->net + out->tax;
		out->paid = sqlite3_column_int64(st, 2);
	}
	fs_replica__finish(r, st);
	if (rc != SQLITE_ROW)
		return fs_err__sqlite(&r->err, r->db, rc, "computing totals");
	return 0;
}

/* Open balance of a customer over its non-cancelled orders. */
static int open_balance(sqlite3_int64 *out, fs_replica *r, const char *cust)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*out = 0;
	if (fs_replica__prepare(&st, r,
	        "SELECT coalesce(sum(max(0, g - p)), 0) FROM ("
	        " SELECT (SELECT coalesce(sum(n + fs_line_tax(n, tax_rate)), 0) FROM"
	        "   (SELECT fs_line_net(quantity, unit_price, discount) n, tax_rate"
	        "    FROM order_line WHERE \"order\" = o.id)) g,"
	        "  (SELECT coalesce(sum(amount), 0) FROM payment"
	        "   WHERE \"order\" = o.id) p"
	        " FROM sales_order o WHERE o.customer = ? AND o.status <> 'cancelled')") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, cust, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	fs_replica__finish(r, st);
	if (rc != SQLITE_ROW)
		return fs_err__sqlite(&r->err, r->db, rc, "computing open balance");
	return 0;
}

static void money(char *out, size_t size, sqlite3_int64 v)
{
	fs_buf b = FS_BUF_INIT;

	fs_value__format_decimal(&b, v, 2, 0);
	snprintf(out, size, "%s", b.ptr ? b.ptr : "?");
	fs_buf_free(&b);
}

/* Checks the credit limit of the order's customer, counting the order as
** open ('extra' is added for a draft about to become open).  Records the
** override on the order when one is used. */
static int check_credit(fs_replica *r, const char *order_id,
                        sqlite3_int64 extra, unsigned int flags)
{
	char cust[FS_ID_SIZE], limit_s[32], now[24], user[128];
	sqlite3_int64 balance, limit;
	char a[32], b[32];
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = get_text(cust, sizeof(cust), r, "sales_order", "customer",
	                   order_id)) <= 0)
		return rc < 0 ? rc : fs_err__set(&r->err, FS_ENOTFOUND,
		                                 "no order with id '%s'", order_id);
	if ((rc = get_text(limit_s, sizeof(limit_s), r, "customer",
	                   "credit_limit", cust)) < 0)
		return rc;
	if (!limit_s[0])
		return 0;   /* no limit set */
	limit = strtoll(limit_s, NULL, 10);
	if ((rc = open_balance(&balance, r, cust)) < 0)
		return rc;
	balance += extra;
	if (balance <= limit)
		return 0;
	money(a, sizeof(a), balance);
	money(b, sizeof(b), limit);
	if (!(flags & FS_ORDER_OVERRIDE_CREDIT))
		return fs_err__set(&r->err, FS_ECREDIT,
		        "credit limit exceeded: customer %s would owe %s against a "
		        "limit of %s (use --override-credit to override)", cust, a,
		        b);
	fs_replica__now(now);
	if (fs_replica__user(r, user, sizeof(user)) < 0)
		return r->err.code;
	if (fs_replica__prepare(&st, r,
	        "UPDATE sales_order SET credit_override = 1, "
	        "credit_override_by = ?, credit_override_at = ? WHERE id = ?") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, user[0] ? user : r->cap.device, -1,
	                  SQLITE_STATIC);
	sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, order_id, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "recording the credit override");
	fs_replica__finish(r, st);
	return rc;
}

static int status_rank(const char *s)
{
	static const char *flow[] = { "draft", "submitted", "confirmed",
	                              "shipped", "invoiced", NULL };
	int i;

	for (i = 0; flow[i]; i++)
		if (!strcmp(s, flow[i]))
			return i;
	return -1;
}

static int check_transition(fs_replica *r, const char *id, const char *from,
                            const char *to)
{
	int a = status_rank(from), b = status_rank(to);

	if (!strcmp(from, to))
		return 0;
	if (!strcmp(to, "cancelled") && strcmp(from, "invoiced"))
		return 0;
	if (a >= 0 && b == a + 1)
		return 0;
	return fs_err__set(&r->err, FS_EINVALID,
	        "order %s cannot go from %s to %s (orders move draft -> submitted "
	        "-> confirmed -> shipped -> invoiced, or to cancelled before "
	        "invoicing)", id, from, to);
}

static const fs_value *find_val(const fs_value *vals, size_t n,
                                const char *col)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (vals[i].col && !strcmp(vals[i].col->name, col))
			return &vals[i];
	return NULL;
}

/* Lines may change only while their order is a draft (a quote: not yet
** accepted or rejected). */
static int check_line_parent(fs_replica *r, const fs_table *t,
                             const char *parent_id)
{
	char status[32];
	int rc;

	if (!strcmp(t->name, "order_line")) {
		if ((rc = get_text(status, sizeof(status), r, "sales_order",
		                   "status", parent_id)) < 0)
			return rc;
		if (rc == 1 && strcmp(status, "draft"))
			return fs_err__set(&r->err, FS_EINVALID,
			        "order %s is %s: its lines can change only while it is "
			        "a draft", parent_id, status);
	} else if (!strcmp(t->name, "quote_line")) {
		if ((rc = get_text(status, sizeof(status), r, "quote", "status",
		                   parent_id)) < 0)
			return rc;
		if (rc == 1 && strcmp(status, "draft") && strcmp(status, "sent"))
			return fs_err__set(&r->err, FS_EINVALID,
			        "quote %s is %s: its lines can no longer change",
			        parent_id, status);
	}
	return 0;
}

static int check_payment(fs_replica *r, const char *order_id,
                         sqlite3_int64 amount, sqlite3_int64 was)
{
	fs_totals tot;
	char status[32], a[32], b[32];
	int rc;

	if ((rc = get_text(status, sizeof(status), r, "sales_order", "status",
	                   order_id)) < 0)
		return rc;
	if (!strcmp(status, "draft") || !strcmp(status, "cancelled"))
		return fs_err__set(&r->err, FS_EINVALID,
		        "order %s is %s: it cannot take payments", order_id, status);
	if ((rc = fs_totals_get(&tot, r, "sales_order", order_id)) < 0)
		return rc;
	if (tot.paid - was + amount > tot.gross) {
		money(a, sizeof(a), tot.gross - tot.paid + was);
		money(b, sizeof(b), amount);
		return fs_err__set(&r->err, FS_EINVALID,
		        "payment of %s is more than the %s still owed on order %s",
		        b, a, order_id);
	}
	return 0;
}

int fs_sales__before_insert(fs_replica *r, const fs_table *t, fs_value *vals,
                            size_t n)
{
	const fs_value *v;

	if (t->parent_col && (v = find_val(vals, n, t->parent_col->name)) &&
	    v->type == SQLITE_TEXT)
		return check_line_parent(r, t, v->s);
	if (!strcmp(t->name, "sales_order")) {
		v = find_val(vals, n, "status");
		if (v && v->type == SQLITE_TEXT && strcmp(v->s, "draft"))
			return fs_err__set(&r->err, FS_EINVALID,
			        "a new order starts as a draft (then: order submit)");
	}
	if (!strcmp(t->name, "payment") && (v = find_val(vals, n, "order")) &&
	    v->type == SQLITE_TEXT) {
		const fs_value *amt = find_val(vals, n, "amount");
		return check_payment(r, v->s, amt ? amt->i : 0, 0);
	}
	return 0;
}

int fs_sales__reads_before_update(const fs_table *t)
{
	return t->parent_col || !strcmp(t->name, "sales_order") ||
	       !strcmp(t->name, "payment");
}

int fs_sales__before_update(fs_replica *r, const fs_table *t, const char *id,
                            fs_value *vals, size_t n)
{
	const fs_value *v;
	char parent[FS_ID_SIZE], status[32];
	int rc;

	if (t->parent_col) {
		if ((rc = get_text(parent, sizeof(parent), r, t->name,
		                   t->parent_col->name, id)) < 0)
			return rc;
		if ((rc = check_line_parent(r, t, parent)) < 0)
			return rc;
		if ((v = find_val(vals, n, t->parent_col->name)) &&
		    v->type == SQLITE_TEXT)
			return check_line_parent(r, t, v->s);
		return 0;
	}
	if (!strcmp(t->name, "sales_order") &&
	    (v = find_val(vals, n, "status")) && v->type == SQLITE_TEXT) {
		if ((rc = get_text(status, sizeof(status), r, t->name, "status",
		                   id)) < 0)
			return rc;
		if ((rc = check_transition(r, id, status, v->s)) < 0)
			return rc;
		if (!strcmp(v->s, "submitted") && strcmp(status, "submitted"))
			return check_credit(r, id, 0, r->sales_flags);
		return 0;
	}
	if (!strcmp(t->name, "payment")) {
		char order[FS_ID_SIZE], was[32];
		const fs_value *amt = find_val(vals, n, "amount");
		if ((rc = get_text(order, sizeof(order), r, t->name, "order",
		                   id)) < 0 ||
		    (rc = get_text(was, sizeof(was), r, t->name, "amount", id)) < 0)
			return rc;
		if ((v = find_val(vals, n, "order")) && v->type == SQLITE_TEXT)
			return check_payment(r, v->s, amt ? amt->i : strtoll(was, NULL, 10),
			                     strcmp(order, v->s) ? 0 : strtoll(was, NULL, 10));
		if (amt)
			return check_payment(r, order, amt->i, strtoll(was, NULL, 10));
	}
	return 0;
}

int fs_sales__before_delete(fs_replica *r, const fs_table *t, const char *id)
{
	char v[FS_ID_SIZE];
	int rc;

	if (t->parent_col) {
		if ((rc = get_text(v, sizeof(v), r, t->name, t->parent_col->name,
		                   id)) < 0)
			return rc;
		return check_line_parent(r, t, v);
	}
	if (!strcmp(t->name, "sales_order")) {
		if ((rc = get_text(v, sizeof(v), r, t->name, "status", id)) < 0)
			return rc;
		if (strcmp(v, "draft") && strcmp(v, "cancelled"))
			return fs_err__set(&r->err, FS_ECONFLICT,
			        "order %s is %s: only draft or cancelled orders can be "
			        "deleted (cancel it first)", id, v);
	}
	return 0;
}

/* Looks a product up by sku (active products first) or by id. */
static int find_product(char *out_id, fs_replica *r, const char *sku)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r,
	        "SELECT id FROM product WHERE sku = ?1 OR id = ?1 "
	        "ORDER BY active DESC, id LIMIT 1") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, sku, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(out_id, FS_ID_SIZE, "%s",
		         (const char *)sqlite3_column_text(st, 0));
	fs_replica__finish(r, st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return fs_err__set(&r->err, FS_ENOTFOUND, "no product with sku '%s'",
		                   sku);
	return fs_err__sqlite(&r->err, r->db, rc, "looking up a product");
}

/* Catalogue price of a product for a customer: the customer's price list,
** else the list price.  Also the product's tax rate. */
static int catalogue_price(sqlite3_int64 *price, sqlite3_int64 *tax,
                           fs_replica *r, const char *customer,
                           const char *product)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r,
	        "SELECT coalesce((SELECT i.price FROM price_list_item i "
	        "  JOIN customer c ON c.price_list = i.price_list "
	        "  WHERE c.id = ?1 AND i.product = p.id ORDER BY i.id LIMIT 1), "
	        "p.list_price), p.tax_rate FROM product p WHERE p.id = ?2") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, customer ? customer : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, product, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*price = sqlite3_column_int64(st, 0);
		*tax = sqlite3_column_int64(st, 1);
	}
	fs_replica__finish(r, st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return fs_err__set(&r->err, FS_ENOTFOUND, "no product with id '%s'",
		                   product);
	return fs_err__sqlite(&r->err, r->db, rc, "pricing a line");
}

int fs_sales__complete_line(fs_field **out, size_t *nout, char **pool,
                            fs_replica *r, const fs_table *t,
                            const fs_field *fields, size_t n)
{
	const char *parent = NULL, *product = NULL;
	int has_price = 0, has_tax = 0, rc;
	char cust[FS_ID_SIZE], prod[FS_ID_SIZE];
	sqlite3_int64 price, tax;
	fs_buf b = FS_BUF_INIT;
	fs_field *f;
	size_t i, k;

	*out = NULL;
	*pool = NULL;
	*nout = 0;
	for (i = 0; i < n; i++) {
		const char *nm = fields[i].name;
		if (t->parent_col && (!strcmp(nm, t->parent_col->name) ||
		    (!strncmp(nm, t->parent_col->name, strlen(t->parent_col->name)) &&
		     !strcmp(nm + strlen(t->parent_col->name), "_id"))))
			parent = fields[i].value;
		else if (!strcmp(nm, "product") || !strcmp(nm, "product_id"))
			product = fields[i].value;
		else if (!strcmp(nm, "unit_price"))
			has_price = 1;
		else if (!strcmp(nm, "tax_rate"))
			has_tax = 1;
	}
	/* Only priced lines (quote_line, order_line) take catalogue prices. */
	if ((has_price && has_tax) || !parent || !product ||
	    !fs_schema__column(t, "unit_price") ||
	    !fs_schema__column(t, "tax_rate"))
		return 0;
	if ((rc = get_text(cust, sizeof(cust), r, t->parent,
	                   "customer", parent)) < 0)
		return rc;
	if ((rc = find_product(prod, r, product)) < 0)
		return rc;
	if ((rc = catalogue_price(&price, &tax, r, cust[0] ? cust : NULL, prod)) < 0)
		return rc;
	f = calloc(n + 2, sizeof(*f));
	if (!f)
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	fs_value__format_decimal(&b, price, 2, 0);
	fs_buf_putc(&b, '\0');
	k = b.len;
	fs_value__format_decimal(&b, tax, 2, 0);
	if (b.failed) {
		free(f);
		fs_buf_free(&b);
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	}
	for (i = 0; i < n; i++)
		f[i] = fields[i];
	*nout = n;
	if (!has_price) {
		f[*nout].name = "unit_price";
		f[(*nout)++].value = b.ptr;
	}
	if (!has_tax) {
		f[*nout].name = "tax_rate";
		f[(*nout)++].value = b.ptr + k;
	}
	*out = f;
	*pool = fs_buf_detach(&b);
	return 0;
}

/* Inserts one line (quote_line or order_line) for parent. */
static int add_line(fs_replica *r, const fs_table *lt, const char *parent,
                    const char *product, const char *qty, const char *price,
                    const char *discount, const char *tax)
{
	fs_field f[6];
	size_t n = 0;

	f[n].name = lt->parent_col->name;
	f[n++].value = parent;
	f[n].name = "product";
	f[n++].value = product;
	f[n].name = "quantity";
	f[n++].value = qty;
	f[n].name = "unit_price";
	f[n++].value = price;
	f[n].name = "discount";
	f[n++].value = discount ? discount : "0";
	f[n].name = "tax_rate";
	f[n++].value = tax;
	return fs_record__insert(NULL, r, lt, f, n);
}

static int price_text(char *out, size_t size, sqlite3_int64 v)
{
	money(out, size, v);
	return 0;
}

/* Creates a quote or an order (header table ht, line table lt) with lines
** priced from the catalogue unless a price is given. */
static int create_with_lines(char *out_id, fs_replica *r, const char *hname,
                             const char *lname, const char *customer_id,
                             const fs_quote_line *lines, size_t nlines,
                             const fs_field *extra, size_t nextra,
                             unsigned int flags)
{
	const fs_table *qt = fs_replica__table(r, hname);
	const fs_table *lt = qt ? fs_replica__table(r, lname) : NULL;
	fs_field *f = NULL;
	char id[FS_ID_SIZE], user[128];
	size_t i, n = 0;
	int rc;

	if (!qt || !lt)
		return r->err.code;
	if (nlines == 0)
		return fs_err__set(&r->err, FS_EINVALID,
		                   "a %s needs at least one line (--line SKU:QTY)",
		                   qt->noun);
	if ((rc = fs_replica__tx_begin(r)) < 0)
		return rc;
	f = calloc(nextra + 2, sizeof(*f));
	if (!f) {
		rc = fs_err__set(&r->err, FS_ERROR, "out of memory");
		goto done;
	}
	if ((rc = fs_replica__user(r, user, sizeof(user))) < 0)
		goto done;
	f[n].name = "customer";
	f[n++].value = customer_id;
	for (i = 0; i < nextra; i++)
		f[n++] = extra[i];
	if (user[0]) {
		int has_owner = 0;
		for (i = 0; i < nextra; i++)
			has_owner |= !strcmp(extra[i].name, "owner");
		if (!has_owner) {
			f[n].name = "owner";
			f[n++].value = user;
		}
	}
	if ((rc = fs_record__insert(id, r, qt, f, n)) < 0)
		goto done;
	for (i = 0; i < nlines; i++) {
		char prod[FS_ID_SIZE], price[32], tax[32];
		sqlite3_int64 p, t;

		if ((rc = find_product(prod, r, lines[i].sku)) < 0)
			goto done;
		if ((rc = catalogue_price(&p, &t, r, customer_id, prod)) < 0)
			goto done;
		price_text(price, sizeof(price), p);
		price_text(tax, sizeof(tax), t);
		if ((rc = add_line(r, lt, id, prod, lines[i].quantity,
		                   lines[i].unit_price ? lines[i].unit_price : price,
		                   NULL, tax)) < 0) {
			fs_err__prefix(&r->err, "line %zu (%s)", i + 1, lines[i].sku);
			goto done;
		}
	}
	if (!strcmp(qt->name, "sales_order") &&
	    (rc = check_credit(r, id, 0, flags)) < 0)
		goto done;
	if (out_id)
		memcpy(out_id, id, FS_ID_SIZE);
done:
	free(f);
	return fs_replica__tx_end(r, rc);
}

int fs_quote_create(char *out_id, fs_replica *r, const char *customer_id,
                    const fs_quote_line *lines, size_t nlines,
                    const fs_field *extra, size_t nextra)
{
	return create_with_lines(out_id, r, "quote", "quote_line", customer_id,
	                         lines, nlines, extra, nextra, 0);
}

int fs_order_create(char *out_id, fs_replica *r, const char *customer_id,
                    const fs_quote_line *lines, size_t nlines,
                    const fs_field *extra, size_t nextra, unsigned int flags)
{
	return create_with_lines(out_id, r, "sales_order", "order_line",
	                         customer_id, lines, nlines, extra, nextra, flags);
}

/* Copies quote lines into order lines for order_id. */
static int copy_lines(fs_replica *r, const char *quote_id, const char *order_id)
{
	sqlite3_stmt *st = NULL;
	const fs_table *ol = fs_replica__table(r, "order_line");
	int rc;

	if (!ol)
		return r->err.code;
	if (fs_replica__prepare(&st, r,
	        "SELECT product, quantity, unit_price, discount, tax_rate "
	        "FROM quote_line WHERE quote = ? ORDER BY created_at, id") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, quote_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		fs_buf b = FS_BUF_INIT;
		size_t o1, o2, o3;
		char prod[FS_ID_SIZE];

		snprintf(prod, sizeof(prod), "%s",
		         (const char *)sqlite3_column_text(st, 0));
		fs_value__format_decimal(&b, sqlite3_column_int64(st, 1), 3, 1);
		fs_buf_putc(&b, '\0');
		o1 = b.len;
		fs_value__format_decimal(&b, sqlite3_column_int64(st, 2), 2, 0);
		fs_buf_putc(&b, '\0');
		o2 = b.len;
		fs_value__format_decimal(&b, sqlite3_column_int64(st, 3), 2, 1);
		fs_buf_putc(&b, '\0');
		o3 = b.len;
		fs_value__format_decimal(&b, sqlite3_column_int64(st, 4), 2, 1);
		if (b.failed) {
			fs_buf_free(&b);
			fs_replica__finish(r, st);
			return fs_err__set(&r->err, FS_ERROR, "out of memory");
		}
		rc = add_line(r, ol, order_id, prod, b.ptr, b.ptr + o1, b.ptr + o2,
		              b.ptr + o3);
		fs_buf_free(&b);
		if (rc < 0) {
			fs_replica__finish(r, st);
			return rc;
		}
	}
	fs_replica__finish(r, st);
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "copying quote lines");
	return 0;
}

int fs_order_from_quote(char *out_id, fs_replica *r, const char *quote_id,
                        unsigned int flags)
{
	const fs_table *ot = fs_replica__table(r, "sales_order");
	const fs_table *qt = fs_replica__table(r, "quote");
	char cust[FS_ID_SIZE], status[32], now[24], user[128], id[FS_ID_SIZE];
	fs_field f[5], qf[1];
	sqlite3_stmt *st = NULL;
	size_t n = 0;
	int rc;

	if (!ot || !qt)
		return r->err.code;
	if ((rc = fs_replica__tx_begin(r)) < 0)
		return rc;
	if ((rc = get_text(status, sizeof(status), r, "quote", "status",
	                   quote_id ? quote_id : "")) <= 0) {
		if (rc == 0)
			rc = fs_err__set(&r->err, FS_ENOTFOUND, "no quote with id '%s'",
			                 quote_id ? quote_id : "");
		goto done;
	}
	if (!strcmp(status, "rejected") || !strcmp(status, "expired")) {
		rc = fs_err__set(&r->err, FS_EINVALID,
		                 "quote %s is %s: it cannot become an order",
		                 quote_id, status);
		goto done;
	}
	if ((rc = fs_replica__prepare(&st, r,
	        "SELECT id FROM sales_order WHERE quote = ? AND "
	        "status <> 'cancelled' LIMIT 1")) < 0)
		goto done;
	sqlite3_bind_text(st, 1, quote_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		rc = fs_err__set(&r->err, FS_ECONFLICT,
		                 "quote %s is already order %s", quote_id,
		                 (const char *)sqlite3_column_text(st, 0));
		goto done;
	}
	if ((rc = get_text(cust, sizeof(cust), r, "quote", "customer",
	                   quote_id)) < 0 ||
	    (rc = fs_replica__user(r, user, sizeof(user))) < 0)
		goto done;
	fs_replica__now(now);
	f[n].name = "customer";
	f[n++].value = cust;
	f[n].name = "quote";
	f[n++].value = quote_id;
	f[n].name = "ordered_at";
	f[n++].value = now;
	if (user[0]) {
		f[n].name = "owner";
		f[n++].value = user;
	}
	if ((rc = fs_record__insert(id, r, ot, f, n)) < 0)
		goto done;
	if ((rc = copy_lines(r, quote_id, id)) < 0)
		goto done;
	if ((rc = check_credit(r, id, 0, flags)) < 0)
		goto done;
	qf[0].name = "status";
	qf[0].value = "accepted";
	if ((rc = fs_record__update(r, qt, quote_id, qf, 1)) < 0)
		goto done;
	if (out_id)
		memcpy(out_id, id, FS_ID_SIZE);
done:
	fs_replica__finish(r, st);
	return fs_replica__tx_end(r, rc);
}

int fs_order_set_status(fs_replica *r, const char *order_id,
                        const char *status, unsigned int flags)
{
	const fs_table *ot = fs_replica__table(r, "sales_order");
	fs_field f;
	int rc;

	if (!ot)
		return r->err.code;
	f.name = "status";
	f.value = status;
	if ((rc = fs_replica__tx_begin(r)) < 0)
		return rc;
	r->sales_flags = flags;
	rc = fs_record__update(r, ot, order_id, &f, 1);
	r->sales_flags = 0;
	return fs_replica__tx_end(r, rc);
}

int fs_sales__after_insert(fs_replica *r, const fs_table *t, const char *id)
{
	if (!strcmp(t->name, "sales_order"))
		return check_credit(r, id, 0, r->sales_flags);
	return 0;
}
