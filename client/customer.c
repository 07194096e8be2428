/*
** customer.c -- operations on whole customer records: copy and merge.
**
** Both are ordinary captured writes (capture.c logs them), so a merge
** made offline syncs like any other edit: the re-pointed contacts, visits,
** opportunities, quotes and orders, the filled-in fields and the deleted
** duplicate all travel as changes.
*/
#include "replica_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uuid.h"

int fs_customer_copy(char *out_id, fs_replica *r, const char *id)
{
	const fs_table *t = fs_replica__table(r, "customer");
	fs_buf sql = FS_BUF_INIT;
	sqlite3_stmt *st = NULL;
	char nid[FS_ID_SIZE], now[24];
	size_t i;
	int rc;

	if (!t)
		return r->err.code;
	if ((rc = fs_replica__exists(r, t->name, id ? id : "")) <= 0)
		return rc < 0 ? rc : fs_err__set(&r->err, FS_ENOTFOUND,
		                                 "no customer with id '%s'",
		                                 id ? id : "");
	if (fs_uuid__v7(nid, fs_hlc__wall_ms(), &r->rnd) < 0)
		return fs_err__set(&r->err, FS_ERROR, "no system randomness for an id");
	fs_replica__now(now);
	fs_buf_puts(&sql, "INSERT INTO customer(id");
	for (i = 0; i < t->ncols; i++)
		fs_buf_printf(&sql, ", \"%s\"", t->cols[i].name);
	fs_buf_puts(&sql, ") SELECT ?1");
	for (i = 0; i < t->ncols; i++) {
		const char *c = t->cols[i].name;
		if (!strcmp(c, "name"))
			fs_buf_puts(&sql, ", name || ' (copy)'");
		else if (!strcmp(c, "created_at"))
			fs_buf_puts(&sql, ", ?2");
		else
			fs_buf_printf(&sql, ", \"%s\"", c);
	}
	fs_buf_puts(&sql, " FROM customer WHERE id = ?3");
	if (sql.failed) {
		fs_buf_free(&sql);
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	}
	if ((rc = fs_replica__tx_begin(r)) < 0)
		goto done;
	if ((rc = fs_replica__prepare(&st, r, sql.ptr)) == 0) {
		sqlite3_bind_text(st, 1, nid, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
		rc = fs_replica__step_done(r, st, "copying a customer");
	}
	rc = fs_replica__tx_end(r, rc);
	if (rc == 0 && out_id)
		memcpy(out_id, nid, FS_ID_SIZE);
done:
	fs_replica__finish(r, st);
	fs_buf_free(&sql);
	return rc;
}

static int merge(fs_replica *r, const fs_table *t, const char *keep,
                 const char *dup)
{
	char sql[512];
	size_t i, j;
	int rc;

	if (!strcmp(keep, dup))
		return fs_err__set(&r->err, FS_EINVALID,
		                   "cannot merge a customer with itself");
	if ((rc = fs_replica__exists(r, t->name, keep)) <= 0 ||
	    (rc = fs_replica__exists(r, t->name, dup)) <= 0)
		return rc < 0 ? rc : fs_err__set(&r->err, FS_ENOTFOUND,
		        "no customer with id '%s'",
		        fs_replica__exists(r, t->name, keep) ? dup : keep);
	/* Fill keep's empty fields from the duplicate, one captured UPDATE per
	** field so only the fields that really change are logged. */
	for (i = 0; i < t->ncols; i++) {
		const fs_column *c = &t->cols[i];
		if (!strcmp(c->name, "created_at"))
			continue;
		if (c->ref && !strcmp(c->ref, "customer")) {
			/* Never make keep point at dup or at itself. */
			snprintf(sql, sizeof(sql),
			         "UPDATE customer SET \"%s\" = (SELECT \"%s\" FROM customer "
			         "WHERE id = ?2) WHERE id = ?1 AND (\"%s\" IS NULL) AND "
			         "(SELECT \"%s\" FROM customer WHERE id = ?2) NOT IN (?1, ?2)",
			         c->name, c->name, c->name, c->name);
		} else {
			snprintf(sql, sizeof(sql),
			         "UPDATE customer SET \"%s\" = (SELECT \"%s\" FROM customer "
			         "WHERE id = ?2) WHERE id = ?1 AND (\"%s\" IS NULL OR "
			         "\"%s\" = '')", c->name, c->name, c->name, c->name);
		}
		if ((rc = fs_replica__exec2(r, sql, keep, dup,
		                            "merging customers")) < 0)
			return rc;
	}
	/* Re-point every record that refers to the duplicate. */
	for (i = 0; i < r->schema.ntables; i++) {
		const fs_table *ct = &r->schema.tables[i];
		for (j = 0; j < ct->ncols; j++) {
			const fs_column *c = &ct->cols[j];
			if (!c->ref || strcmp(c->ref, "customer"))
				continue;
			if (ct == t)
				snprintf(sql, sizeof(sql),
				         "UPDATE customer SET \"%s\" = CASE WHEN id = ?1 "
				         "THEN NULL ELSE ?1 END WHERE \"%s\" = ?2",
				         c->name, c->name);
			else
				snprintf(sql, sizeof(sql),
				         "UPDATE \"%s\" SET \"%s\" = ?1 WHERE \"%s\" = ?2",
				         ct->name, c->name, c->name);
			if ((rc = fs_replica__exec2(r, sql, keep, dup,
			                            "merging customers")) < 0)
				return rc;
		}
	}
	return fs_replica__exec2(r, "DELETE FROM customer WHERE id = ?2 AND "
	                         "?1 <> ?2", keep, dup, "merging customers");
}

int fs_customer_merge(fs_replica *r, const char *keep_id,
                      const char *duplicate_id)
{
	const fs_table *t = fs_replica__table(r, "customer");
	int rc;

	if (!t)
		return r->err.code;
	if ((rc = fs_replica__tx_begin(r)) < 0)
		return rc;
	rc = merge(r, t, keep_id ? keep_id : "", duplicate_id ? duplicate_id : "");
	return fs_replica__tx_end(r, rc);
}
