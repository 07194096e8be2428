/*
** org.c -- the organisation as ledger files (org.h).
*/
#include "org.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../client/replica_int.h"

/* The rows of sql (one JSON object each) as a JSON array, one per line. */
static int array_of(char **out, fs_replica *r, const char *sql)
{
	fs_buf b = FS_BUF_INIT;
	sqlite3_stmt *st = NULL;
	int rc, n = 0;

	*out = NULL;
	if (fs_replica__prepare(&st, r, sql) < 0)
		return r->err.code;
	fs_buf_puts(&b, "[");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		fs_buf_puts(&b, n++ ? ",\n  " : "\n  ");
		fs_buf_puts(&b, (const char *)sqlite3_column_text(st, 0));
	}
	fs_replica__finish(r, st);
	fs_buf_puts(&b, n ? "\n]\n" : "]\n");
	if (rc != SQLITE_DONE) {
		fs_buf_free(&b);
		return fs_err__sqlite(&r->err, r->db, rc, "reading the organisation");
	}
	if (b.failed || !(*out = strdup(b.ptr))) {
		fs_buf_free(&b);
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	}
	fs_buf_free(&b);
	return 0;
}

int fs_org__json(char **depts, char **users, fs_replica *r)
{
	int rc;

	*users = NULL;
	if ((rc = array_of(depts, r,
	        "SELECT json_object('code', code, 'name', name, 'parent', parent, "
	        "'created_at', created_at) FROM fs_dept ORDER BY code")) < 0)
		return rc;
	if ((rc = array_of(users, r,
	        "SELECT json_object('name', name, 'role', role, 'scope', "
	        "(SELECT json_group_array(dept) FROM (SELECT dept FROM "
	        "fs_user_scope s WHERE s.user = u.name ORDER BY dept)), "
	        "'created_at', created_at) FROM fs_user u ORDER BY name")) < 0) {
		free(*depts);
		*depts = NULL;
	}
	return rc;
}

int fs_org__logged(fs_replica *r, const char *what)
{
	sqlite3_stmt *st = NULL;
	struct timespec ts;
	int64_t hlc;
	int rc;

	/* A clock past every other: the ledger's commit sorts after them. */
	clock_gettime(CLOCK_REALTIME, &ts);
	hlc = ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000) * 65536;
	if (fs_replica__prepare(&st, r,
	        "INSERT INTO fs_log(tbl, rid, op, col, val, hlc, device, author) "
	        "VALUES ('" FS_ORG_TABLE "', 'org', 'U', 'changed', "
	        "json_quote(?1), max(?2, coalesce((SELECT v FROM fs_meta WHERE "
	        "k = 'hlc'), 0) + 1), 'fieldsync-admin', 'fieldsync-admin')") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, what, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, hlc);
	rc = fs_replica__step_done(r, st, "logging an organisation change");
	fs_replica__finish(r, st);
	return rc;
}

/* Runs one INSERT ... FROM json_each(?1) over the text of a ledger file;
** *n receives the rows inserted. */
static int insert_from(fs_replica *r, const char *sql, const char *json,
                       const char *what, int *n)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r, sql) < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, what);
	fs_replica__finish(r, st);
	if (rc == 0 && n)
		*n = sqlite3_changes(r->db);
	return rc;
}

int fs_org__restore(fs_replica *r, const char *depts, const char *users,
                    int *ndepts, int *nusers)
{
	int rc;

	*ndepts = *nusers = 0;
	/* In one statement each: foreign keys are not enforced, so the order
	** of parents and children does not matter. */
	if (depts && (rc = insert_from(r,
	        "INSERT INTO fs_dept(code, name, parent, created_at) "
	        "SELECT json_extract(value, '$.code'), json_extract(value, "
	        "'$.name'), json_extract(value, '$.parent'), "
	        "json_extract(value, '$.created_at') FROM json_each(?1)", depts,
	        "restoring the departments", ndepts)) < 0)
		return rc;
	if (users && ((rc = insert_from(r,
	        "INSERT INTO fs_user(name, role, region, created_at) "
	        "SELECT json_extract(value, '$.name'), json_extract(value, "
	        "'$.role'), (SELECT group_concat(s.value, ',') FROM "
	        "json_each(json_extract(u.value, '$.scope')) s), "
	        "json_extract(value, '$.created_at') FROM json_each(?1) u", users,
	        "restoring the users", nusers)) < 0 ||
	    (rc = insert_from(r,
	        "INSERT INTO fs_user_scope(user, dept) "
	        "SELECT json_extract(u.value, '$.name'), s.value FROM "
	        "json_each(?1) u, json_each(json_extract(u.value, '$.scope')) s",
	        users, "restoring the scopes", NULL)) < 0))
		return rc;
	return 0;
}

int fs_org__depts_mirror(fs_replica *r, const char *depts, int *changed)
{
	sqlite3_stmt *st = NULL;
	int rc, moved = 0;

	*changed = 0;
	if ((rc = fs_replica__exec(r, "BEGIN IMMEDIATE",
	                           "copying the departments")) < 0)
		return rc;
	/* Departments that exist here under another parent. */
	if (fs_replica__prepare(&st, r,
	        "SELECT count(*) FROM json_each(?1) j JOIN fs_dept d ON "
	        "d.code = j.value->>'code' WHERE d.parent IS NOT "
	        "j.value->>'parent'") < 0) {
		rc = r->err.code;
		goto done;
	}
	sqlite3_bind_text(st, 1, depts, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		rc = fs_err__sqlite(&r->err, r->db, rc, "reading the departments");
		goto done;
	}
	moved = sqlite3_column_int(st, 0);
	fs_replica__finish(r, st);
	st = NULL;
	/* One statement: foreign keys are checked at its end, so parents
	** and children may come in any order. */
	if (fs_replica__prepare(&st, r,
	        "INSERT INTO fs_dept(code, name, parent, created_at) "
	        "SELECT value->>'code', value->>'name', value->>'parent', "
	        "coalesce(value->>'created_at', strftime('%Y-%m-%dT%H:%M:%SZ', "
	        "'now')) FROM json_each(?1) WHERE json_type(value) = 'object' "
	        "ON CONFLICT(code) DO UPDATE SET name = excluded.name, "
	        "parent = excluded.parent WHERE name IS NOT excluded.name OR "
	        "parent IS NOT excluded.parent") < 0) {
		rc = r->err.code;
		goto done;
	}
	sqlite3_bind_text(st, 1, depts, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "copying the departments");
	fs_replica__finish(r, st);
	st = NULL;
	if (rc < 0)
		goto done;
	*changed = sqlite3_changes(r->db);
	if (moved && (rc = fs_replica__exec(r, "UPDATE fs_device SET rescope = 1",
	                                    "marking devices to bootstrap")) < 0)
		goto done;
	if (*changed)
		rc = fs_org__logged(r, "departments copied from head office");
done:
	fs_replica__finish(r, st);
	if (rc < 0) {
		fs_err keep = r->err;
		fs_replica__exec(r, "ROLLBACK", "copying the departments");
		r->err = keep;
		return rc;
	}
	return fs_replica__exec(r, "COMMIT", "copying the departments");
}
