/*
** policy.c -- scopes and ownership rules (policy.h; docs/scopes.md).
**
** A record's department is found by following its scope links up to the
** customer (fs_entity.scope_via): a payment's order, that order's
** customer, that customer's region.  Each step is one primary-key lookup,
** so placing a change costs a few B-tree probes whatever the size of the
** database.
*/
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../client/replica_int.h"
#include "json.h"

int fs_policy__load_scope(fs_replica *r, const char *user, int *all)
{
	sqlite3_stmt *st = NULL;
	int rc;

	*all = 0;
	if ((rc = fs_replica__exec(r,
	        "CREATE TEMP TABLE IF NOT EXISTS fs_scope(code TEXT PRIMARY KEY) "
	        "WITHOUT ROWID; DELETE FROM temp.fs_scope; "
	        "INSERT INTO temp.fs_scope VALUES ('')",
	        "loading a scope")) < 0)
		return rc;
	/* The user's departments and everything below them. */
	if (fs_replica__prepare(&st, r,
	        "INSERT OR IGNORE INTO temp.fs_scope(code) "
	        "WITH RECURSIVE sub(code) AS ("
	        "  SELECT dept FROM fs_user_scope WHERE user = ?1 AND dept <> '*' "
	        "  UNION SELECT d.code FROM fs_dept d JOIN sub ON d.parent = sub.code"
	        ") SELECT code FROM sub") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "loading a scope");
	fs_replica__finish(r, st);
	if (rc < 0)
		return rc;
	if (fs_replica__prepare(&st, r,
	        "SELECT 1 FROM fs_user_scope WHERE user = ? AND dept = '*'") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	fs_replica__finish(r, st);
	if (rc == SQLITE_ROW)
		*all = 1;
	else if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "loading a scope");
	return 0;
}

int fs_policy__in_scope(fs_replica *r, int all, const char *dept)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (all)
		return 1;
	if (!dept)
		return 0;
	if (!*dept)
		return 1;   /* reference data */
	if (fs_replica__prepare(&st, r,
	        "SELECT 1 FROM temp.fs_scope WHERE code = ?") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, dept, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	fs_replica__finish(r, st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "checking a scope");
	return 0;
}

/* Field col of stored record (tbl, rid) as text: 0 if there is no such
** record, else 1 with *out its text (malloc'd) or NULL. */
static int stored_field(char **out, fs_replica *r, const char *tbl,
                        const char *rid, const char *col)
{
	fs_buf sql = FS_BUF_INIT;
	sqlite3_stmt *st = NULL;
	int rc;

	*out = NULL;
	if (!rid)
		return 0;
	/* Plain appends, not printf: this runs for every entry merged. */
	fs_buf_puts(&sql, "SELECT \"");
	fs_buf_puts(&sql, col);
	fs_buf_puts(&sql, "\" FROM \"");
	fs_buf_puts(&sql, tbl);
	fs_buf_puts(&sql, "\" WHERE id = ?");
	if (sql.failed)
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	rc = fs_replica__prepare(&st, r, sql.ptr);
	fs_buf_free(&sql);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_NULL &&
		    !(*out = strdup((const char *)sqlite3_column_text(st, 0)))) {
			fs_replica__finish(r, st);
			return fs_err__set(&r->err, FS_ERROR, "out of memory");
		}
		fs_replica__finish(r, st);
		return 1;
	}
	fs_replica__finish(r, st);
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "reading a record");
	return 0;
}

/* The scope link of stored record (t, rid), as stored_field(). */
static int link_of(char **out, fs_replica *r, const fs_table *t,
                   const char *rid)
{
	return stored_field(out, r, t->name, rid, t->scope_col->name);
}

/* Follows the links from t's link value up to the root. */
static int climb(fs_replica *r, const fs_table *t, char *link, char **dept,
                 char **root)
{
	int rc;

	/* t's link value is held; walk until t is the root. */
	while (t->scope_parent && link) {
		char *next = NULL;
		t = t->scope_parent;
		if (!t->scope_parent && root) {
			free(*root);
			if (!(*root = strdup(link))) {
				free(link);
				return fs_err__set(&r->err, FS_ERROR, "out of memory");
			}
		}
		rc = link_of(&next, r, t, link);
		free(link);
		if (rc < 0)
			return rc;
		link = next;   /* NULL when the parent is missing or unlinked */
	}
	*dept = link;
	return 1;
}

int fs_policy__record_dept(fs_replica *r, const fs_table *t, const char *rid,
                           char **dept, char **root)
{
	char *link = NULL;
	int rc;

	*dept = NULL;
	if (root)
		*root = NULL;
	if (!t->scope_col) {
		if ((rc = fs_replica__exists(r, t->name, rid)) <= 0)
			return rc;
		return (*dept = strdup("")) ? 1
		       : fs_err__set(&r->err, FS_ERROR, "out of memory");
	}
	if ((rc = link_of(&link, r, t, rid)) <= 0)
		return rc;
	if (!t->scope_parent && root && !(*root = strdup(rid))) {
		free(link);
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	}
	if ((rc = climb(r, t, link, dept, root)) < 0 && root) {
		free(*root);
		*root = NULL;
	}
	return rc;
}

int fs_policy__link_dept(fs_replica *r, const fs_table *t, const char *link,
                         char **dept, char **root)
{
	char *l = NULL;

	*dept = NULL;
	if (root)
		*root = NULL;
	if (!t->scope_col)
		return (*dept = strdup("")) ? 0
		       : fs_err__set(&r->err, FS_ERROR, "out of memory");
	if (link && !(l = strdup(link)))
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	if (climb(r, t, l, dept, root) < 0) {
		if (root) {
			free(*root);
			*root = NULL;
		}
		return r->err.code;
	}
	return 0;
}

/* ------------------------------------------------------------ JSON text */

typedef struct member_find {
	const char *key;
	size_t klen;
	char *out;
	int found;      /* 1 found non-null, 2 found null */
	int oom;
} member_find;

static int find_cb(void *payload, const fs_json_member *m)
{
	member_find *f = payload;

	if (m->klen != f->klen || memcmp(m->key, f->key, f->klen))
		return 0;
	if (m->type == FS_JSON_NULL) {
		f->found = 2;
		return 1;
	}
	f->found = 1;
	f->out = fs_json__member_text(m, &f->oom);
	return 1;
}

int fs_policy__json_member(char **out, const char *json, const char *key,
                           fs_err *e)
{
	member_find f;
	int rc;

	*out = NULL;
	memset(&f, 0, sizeof(f));
	f.key = key;
	f.klen = strlen(key);
	if (!json)
		return 0;
	rc = fs_json__object_each(json, strlen(json), find_cb, &f, e);
	if (rc < 0)
		return rc;
	if (f.oom)
		return fs_err__set(e, FS_ERROR, "out of memory");
	*out = f.out;
	return f.found == 1;
}

int fs_policy__json_text(char **out, const char *json, fs_err *e)
{
	fs_buf text = FS_BUF_INIT;
	fs_json_member m;
	const char *p = json;
	int rc;

	*out = NULL;
	if (!json)
		return 0;
	while (*p == ' ')
		p++;
	if ((rc = fs_json__scalar(&m, &p, json + strlen(json), &text, e)) < 0) {
		fs_buf_free(&text);
		return rc;
	}
	if (m.type == FS_JSON_NULL) {
		fs_buf_free(&text);
		return 0;
	}
	{
		int oom = 0;
		*out = fs_json__member_text(&m, &oom);
	}
	fs_buf_free(&text);
	return *out ? 1 : fs_err__set(e, FS_ERROR, "out of memory");
}

/* ----------------------------------------------------------------- rules */

typedef struct rule {
	char *tbl, *col, *state_col, *state_in, *value_in, *roles, *why;
} rule;

struct fs_rules {
	rule *v;
	size_t n;
};

void fs_policy__rules_free(fs_rules *rs)
{
	size_t i;

	if (!rs)
		return;
	for (i = 0; i < rs->n; i++) {
		free(rs->v[i].tbl);
		free(rs->v[i].col);
		free(rs->v[i].state_col);
		free(rs->v[i].state_in);
		free(rs->v[i].value_in);
		free(rs->v[i].roles);
		free(rs->v[i].why);
	}
	free(rs->v);
	free(rs);
}

static char *col_dup(sqlite3_stmt *st, int i, int *oom)
{
	char *s;

	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	if (!(s = strdup((const char *)sqlite3_column_text(st, i))))
		*oom = 1;
	return s;
}

int fs_policy__rules_load(fs_rules **out, fs_replica *r)
{
	sqlite3_stmt *st = NULL;
	fs_rules *rs;
	size_t cap = 0;
	int rc, oom = 0;

	*out = NULL;
	if (!(rs = calloc(1, sizeof(*rs))))
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	if (fs_replica__prepare(&st, r,
	        "SELECT tbl, col, state_col, state_in, value_in, roles, why "
	        "FROM fs_rule ORDER BY id") < 0) {
		fs_policy__rules_free(rs);
		return r->err.code;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && !oom) {
		rule *u;
		if (rs->n == cap) {
			rule *v = realloc(rs->v, (cap = cap ? cap * 2 : 8) * sizeof(*v));
			if (!v) {
				oom = 1;
				break;
			}
			rs->v = v;
		}
		u = &rs->v[rs->n++];
		u->tbl = col_dup(st, 0, &oom);
		u->col = col_dup(st, 1, &oom);
		u->state_col = col_dup(st, 2, &oom);
		u->state_in = col_dup(st, 3, &oom);
		u->value_in = col_dup(st, 4, &oom);
		u->roles = col_dup(st, 5, &oom);
		u->why = col_dup(st, 6, &oom);
		if (!u->tbl || !u->col || !u->roles || !u->why)
			oom = 1;
	}
	fs_replica__finish(r, st);
	if (oom) {
		fs_policy__rules_free(rs);
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		fs_policy__rules_free(rs);
		return fs_err__sqlite(&r->err, r->db, rc, "reading fs_rule");
	}
	*out = rs;
	return 0;
}

/* Whether word is one of the comma-separated list. */
static int listed(const char *list, const char *word)
{
	size_t n = strlen(word);
	const char *p = list;

	while (p && *p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && !memcmp(p, word, n))
			return 1;
		p = end ? end + 1 : NULL;
	}
	return 0;
}

/* A field of the record as the change would leave it known: from the
** creation's JSON for 'I', else as stored. */
static int field_of(char **out, fs_replica *r, const fs_table *t,
                    const fs_entry *en, const char *col)
{
	if (en->op == 'I')
		return fs_policy__json_member(out, en->val, col, &r->err);
	return stored_field(out, r, t->name, en->rid, col);
}

/* The rule's state: the record's state_col, or 'link.field'. */
static int state_of(char **out, fs_replica *r, const fs_table *t,
                    const fs_entry *en, const char *state_col)
{
	const char *dot = strchr(state_col, '.');
	const fs_column *link;
	char name[128], *id = NULL;
	int rc;

	if (!dot)
		return field_of(out, r, t, en, state_col);
	snprintf(name, sizeof(name), "%.*s", (int)(dot - state_col), state_col);
	if (!(link = fs_schema__column(t, name)) || !link->ref)
		return fs_err__set(&r->err, FS_ECORRUPT, "fs_rule: %s has no link "
		                   "field '%s'", t->name, name);
	if ((rc = field_of(&id, r, t, en, name)) <= 0)
		return rc;
	rc = stored_field(out, r, link->ref, id, dot + 1);
	free(id);
	return rc;
}

static int rule_covers(fs_replica *r, const rule *u, const fs_table *t,
                       const fs_entry *en)
{
	char *v = NULL;
	int rc;

	/* Which changes: col '*' any; a field rule an update of it, or a
	** creation setting it. */
	if (strcmp(u->col, "*")) {
		if (en->op == 'U' && !(en->col && !strcmp(en->col, u->col)))
			return 0;
		if (en->op == 'D')
			return 0;
		if (en->op == 'I') {
			if ((rc = fs_policy__json_member(&v, en->val, u->col,
			                                 &r->err)) <= 0)
				return rc;
			free(v);
			v = NULL;
		}
	}
	if (u->state_col) {
		if ((rc = state_of(&v, r, t, en, u->state_col)) < 0)
			return rc;
		rc = v && listed(u->state_in ? u->state_in : "", v);
		free(v);
		v = NULL;
		if (!rc)
			return 0;
	}
	if (u->value_in) {
		if (en->op == 'U')
			rc = fs_policy__json_text(&v, en->val, &r->err);
		else if (en->op == 'I' && strcmp(u->col, "*"))
			rc = fs_policy__json_member(&v, en->val, u->col, &r->err);
		else
			return 0;
		if (rc < 0)
			return rc;
		rc = v && listed(u->value_in, v);
		free(v);
		return rc;
	}
	return 1;
}

int fs_policy__rules_check(fs_rules *rs, fs_replica *r, const char *role,
                           const fs_table *t, const fs_entry *en,
                           const char **why)
{
	size_t i;
	int rc;

	*why = NULL;
	for (i = 0; i < rs->n; i++) {
		const rule *u = &rs->v[i];
		if (strcmp(u->tbl, t->name) || listed(u->roles, role))
			continue;
		if ((rc = rule_covers(r, u, t, en)) < 0)
			return rc;
		if (rc) {
			*why = u->why;
			return 1;
		}
	}
	return 0;
}
