/*
** cmd_org.c -- `fieldsync-admin dept` and `user`: the organisation.
**
** Departments form a tree (head office -> regions -> branches); a
** customer's region field holds a department code.  A user has a role and
** a scope: departments whose subtrees they see, or '*' for the whole
** company (schema/004_scope.sql, docs/scopes.md).  Reps and managers must
** be given a scope: forgetting it must not mean "everything".  Every
** change is logged for the ledger (server/org.h) in its transaction.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../client/replica_int.h"
#include "admin.h"
#include "org.h"

#define usage admin_usage
#define fail admin_fail
#define opt admin_opt
#define has_flag admin_has_flag

/* Prints rows of st: text columns, or as a JSON array of column json. */
static int list_rows(fs_replica *r, sqlite3_stmt *st, int json, int json_col,
                     const char *fmt)
{
	int rc, first = 1;

	if (json)
		printf("[");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (json)
			printf("%s%s", first ? "" : ",\n",
			       sqlite3_column_text(st, json_col));
		else
			printf(fmt, sqlite3_column_text(st, 0),
			       sqlite3_column_text(st, 1), sqlite3_column_text(st, 2));
		first = 0;
	}
	if (json)
		printf("]\n");
	if (rc != SQLITE_DONE)
		return fail("%s%s", sqlite3_errmsg(r->db), "");
	return 0;
}

static int dept_exists(fs_replica *r, const char *code)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r,
	        "SELECT 1 FROM fs_dept WHERE code = ?") < 0)
		return -1;
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_ROW;
	fs_replica__finish(r, st);
	return rc;
}

/* Replaces user's scope with the comma-separated departments of list
** ('*': the whole company).  Inside the caller's transaction. */
static int scope_set(fs_replica *r, const char *user, const char *list)
{
	sqlite3_stmt *st = NULL;
	const char *p = list;
	int rc = 1;

	if (fs_replica__prepare(&st, r,
	        "DELETE FROM fs_user_scope WHERE user = ?") < 0)
		goto sqlfail;
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto sqlfail;
	fs_replica__finish(r, st);
	st = NULL;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char code[80];

		if (len == 0 || len >= sizeof(code)) {
			rc = fail("--region: '%s' is not a list of department "
			          "codes%s", list, "");
			goto done;
		}
		snprintf(code, sizeof(code), "%.*s", (int)len, p);
		if (strcmp(code, "*") && (rc = dept_exists(r, code)) != 1) {
			if (rc < 0)
				goto sqlfail;
			rc = fail("no department '%s' (add it first: fieldsync-admin "
			          "dept add %s --name NAME)", code, code);
			goto done;
		}
		if (fs_replica__prepare(&st, r,
		        "INSERT OR IGNORE INTO fs_user_scope(user, dept) "
		        "VALUES (?, ?)") < 0)
			goto sqlfail;
		sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto sqlfail;
		fs_replica__finish(r, st);
		st = NULL;
		p = end ? end + 1 : p + len;
	}
	rc = 0;
	goto done;
sqlfail:
	rc = fail("%s%s", sqlite3_errmsg(r->db), "");
done:
	fs_replica__finish(r, st);
	return rc;
}

/* The ledger's marker of this change (org.h). */
static int org_logged(fs_replica *r, const char *verb, const char *name)
{
	char what[200];

	snprintf(what, sizeof(what), "%s %s", verb, name);
	return fs_org__logged(r, what);
}

static int role_ok(const char *role)
{
	return !strcmp(role, "rep") || !strcmp(role, "manager") ||
	       !strcmp(role, "office") || !strcmp(role, "admin");
}

static int user_add(fs_replica *r, int argc, char **argv)
{
	const char *role = opt(argc, argv, "--role");
	const char *region = opt(argc, argv, "--region");
	sqlite3_stmt *st = NULL;
	char now[24];
	int rc;

	if (argc < 2 || argv[1][0] == '-' || !role)
		return usage("user add NAME --role rep|manager|office|admin "
		             "--region CODE[,CODE...]|*%s", "");
	if (!role_ok(role))
		return fail("role must be rep, manager, office or admin, not "
		            "'%s'%s", role, "");
	if (!region && (!strcmp(role, "rep") || !strcmp(role, "manager")))
		return usage("a %s needs --region CODE[,CODE...] (or --region '*' "
		             "for the whole company)", role);
	if (!region)
		region = "*";
	if (fs_replica__exec(r, "BEGIN IMMEDIATE", "adding a user") < 0)
		return fail("%s%s", fs_replica_errmsg(r), "");
	fs_replica__now(now);
	if (fs_replica__prepare(&st, r,
	        "INSERT INTO fs_user(name, role, region, created_at) "
	        "VALUES (?, ?, ?, ?)") < 0) {
		rc = fail("%s%s", fs_replica_errmsg(r), "");
		goto done;
	}
	sqlite3_bind_text(st, 1, argv[1], -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, role, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		const char *m = sqlite3_errmsg(r->db);
		rc = strstr(m, "UNIQUE") ? fail("user %s already exists%s", argv[1], "")
		                         : fail("%s%s", m, "");
		goto done;
	}
	if ((rc = scope_set(r, argv[1], region)) != 0)
		goto done;
	if (org_logged(r, "user add", argv[1]) < 0 ||
	    fs_replica__exec(r, "COMMIT", "adding a user") < 0) {
		rc = fail("%s%s", fs_replica_errmsg(r), "");
		goto done;
	}
	printf("user %s added (%s, scope %s)\n", argv[1], role,
	       strcmp(region, "*") ? region : "the whole company");
done:
	fs_replica__finish(r, st);
	if (rc)
		fs_replica__exec(r, "ROLLBACK", "adding a user");
	return rc;
}

static int user_set(fs_replica *r, int argc, char **argv)
{
	const char *role = opt(argc, argv, "--role");
	const char *region = opt(argc, argv, "--region");
	sqlite3_stmt *st = NULL;
	int rc;

	if (argc < 2 || argv[1][0] == '-' || (!role && !region))
		return usage("user set NAME [--role ROLE] [--region CODE[,CODE...]|*]"
		             "%s", "");
	if (role && !role_ok(role))
		return fail("role must be rep, manager, office or admin, not "
		            "'%s'%s", role, "");
	if (fs_replica__exec(r, "BEGIN IMMEDIATE", "changing a user") < 0)
		return fail("%s%s", fs_replica_errmsg(r), "");
	if (fs_replica__prepare(&st, r,
	        "UPDATE fs_user SET role = coalesce(?1, role), "
	        "region = coalesce(?2, region) WHERE name = ?3") < 0) {
		rc = fail("%s%s", fs_replica_errmsg(r), "");
		goto done;
	}
	if (role)
		sqlite3_bind_text(st, 1, role, -1, SQLITE_STATIC);
	if (region)
		sqlite3_bind_text(st, 2, region, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, argv[1], -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = fail("%s%s", sqlite3_errmsg(r->db), "");
		goto done;
	}
	if (sqlite3_changes(r->db) == 0) {
		rc = fail("no user %s%s", argv[1], "");
		goto done;
	}
	if (region && (rc = scope_set(r, argv[1], region)) != 0)
		goto done;
	if (region) {
		/* Its devices fetch a new snapshot at their next sync: records
		** that entered the scope arrive whole, those that left go. */
		fs_replica__finish(r, st);
		st = NULL;
		if (fs_replica__prepare(&st, r,
		        "UPDATE fs_device SET rescope = 1 WHERE user = ?") < 0 ||
		    (sqlite3_bind_text(st, 1, argv[1], -1, SQLITE_STATIC),
		     sqlite3_step(st) != SQLITE_DONE)) {
			rc = fail("%s%s", sqlite3_errmsg(r->db), "");
			goto done;
		}
	}
	if (org_logged(r, "user set", argv[1]) < 0 ||
	    fs_replica__exec(r, "COMMIT", "changing a user") < 0) {
		rc = fail("%s%s", fs_replica_errmsg(r), "");
		goto done;
	}
	printf("user %s:%s%s%s%s\n", argv[1], role ? " role " : "",
	       role ? role : "", region ? " scope " : "",
	       region ? (strcmp(region, "*") ? region : "the whole company") : "");
	rc = 0;
done:
	fs_replica__finish(r, st);
	if (rc)
		fs_replica__exec(r, "ROLLBACK", "changing a user");
	return rc;
}

int admin_cmd_user(const char *dir, int argc, char **argv)
{
	fs_replica *r = NULL;
	sqlite3_stmt *st = NULL;
	int rc = 1;

	if (argc < 1)
		return usage("user needs add, set or list%s", "");
	if (strcmp(argv[0], "add") && strcmp(argv[0], "set") &&
	    strcmp(argv[0], "list"))
		return usage("user: unknown verb '%s'", argv[0]);
	if (admin_open_db(&r, dir, 0))
		return 1;
	if (!strcmp(argv[0], "add")) {
		rc = user_add(r, argc, argv);
	} else if (!strcmp(argv[0], "set")) {
		rc = user_set(r, argc, argv);
	} else if (fs_replica__prepare(&st, r,
	        "SELECT name, role, coalesce((SELECT group_concat(dept, ',') "
	        "FROM (SELECT dept FROM fs_user_scope s WHERE s.user = u.name "
	        "ORDER BY dept)), ''), json_object('name', name, 'role', role, "
	        "'scope', (SELECT json_group_array(dept) FROM (SELECT dept FROM "
	        "fs_user_scope s WHERE s.user = u.name ORDER BY dept)), "
	        "'created_at', created_at) FROM fs_user u ORDER BY name") < 0) {
		rc = fail("%s%s", fs_replica_errmsg(r), "");
	} else {
		rc = list_rows(r, st, has_flag(argc, argv, "--json"), 3,
		               "%-20s %-8s %s\n");
	}
	fs_replica__finish(r, st);
	fs_replica_close(r);
	return rc;
}

/* ---------------------------------------------------------- departments */

/* Whether making parent the parent of code would close a cycle. */
static int makes_cycle(fs_replica *r, const char *code, const char *parent)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r,
	        "WITH RECURSIVE up(code) AS (SELECT ?1 UNION "
	        "SELECT d.parent FROM fs_dept d JOIN up ON d.code = up.code "
	        "WHERE d.parent IS NOT NULL) "
	        "SELECT 1 FROM up WHERE code = ?2") < 0)
		return -1;
	sqlite3_bind_text(st, 1, parent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, code, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_ROW;
	fs_replica__finish(r, st);
	return rc;
}

static int dept_write(fs_replica *r, int add, int argc, char **argv)
{
	const char *name = opt(argc, argv, "--name");
	const char *parent = opt(argc, argv, "--parent");
	const char *code = argv[1];
	sqlite3_stmt *st = NULL;
	char now[24];
	int rc;

	if (parent && !strcmp(parent, "-"))
		parent = "";   /* set: no parent (a top-level department) */
	if (add && (!name || (parent && !*parent)))
		return usage("dept add CODE --name NAME [--parent CODE]%s", "");
	if (!add && !name && !parent)
		return usage("dept set CODE [--name NAME] [--parent CODE|-]%s", "");
	if (!add && dept_exists(r, code) != 1)
		return fail("no department '%s'%s", code, "");
	if (add && dept_exists(r, code) == 1)
		return fail("department '%s' already exists%s", code, "");
	if (parent && *parent) {
		if (dept_exists(r, parent) != 1)
			return fail("no department '%s' (the parent of %s)", parent,
			            code);
		if (!add && makes_cycle(r, code, parent))
			return fail("department %s cannot go under %s: that is inside "
			            "it", code, parent);
	}
	fs_replica__now(now);
	if (fs_replica__exec(r, "BEGIN IMMEDIATE", "changing a department") < 0)
		return fail("%s%s", fs_replica_errmsg(r), "");
	if (fs_replica__prepare(&st, r, add
	        ? "INSERT INTO fs_dept(code, name, parent, created_at) "
	          "VALUES (?1, ?2, nullif(?3, ''), ?4)"
	        : "UPDATE fs_dept SET name = coalesce(?2, name), "
	          "parent = CASE WHEN ?3 IS NULL THEN parent ELSE nullif(?3, '') "
	          "END WHERE code = ?1") < 0) {
		rc = fail("%s%s", fs_replica_errmsg(r), "");
		goto rollback;
	}
	sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	if (name)
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	if (parent)
		sqlite3_bind_text(st, 3, parent, -1, SQLITE_STATIC);
	if (add)
		sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	fs_replica__finish(r, st);
	if (rc != SQLITE_DONE) {
		const char *m = sqlite3_errmsg(r->db);
		rc = fail("%s%s", strstr(m, "department code")
		          ? "a department code is 1 to 64 letters, digits, '-', "
		            "'_' or '.'" : m, "");
		goto rollback;
	}
	if (!add && parent) {
		/* The tree changed: scopes below it did too.  Every scoped
		** user's devices fetch a new snapshot at their next sync. */
		if (fs_replica__exec(r, "UPDATE fs_device SET rescope = 1 WHERE user "
		        "IN (SELECT user FROM fs_user_scope WHERE dept <> '*')",
		        "flagging devices for a new scope") < 0) {
			rc = fail("%s%s", fs_replica_errmsg(r), "");
			goto rollback;
		}
	}
	if (org_logged(r, add ? "dept add" : "dept set", code) < 0 ||
	    fs_replica__exec(r, "COMMIT", "changing a department") < 0) {
		rc = fail("%s%s", fs_replica_errmsg(r), "");
		goto rollback;
	}
	printf("department %s %s\n", code, add ? "added" : "changed");
	return 0;
rollback:
	fs_replica__exec(r, "ROLLBACK", "changing a department");
	return rc;
}

int admin_cmd_dept(const char *dir, int argc, char **argv)
{
	fs_replica *r = NULL;
	sqlite3_stmt *st = NULL;
	int rc = 1;

	if (argc < 1)
		return usage("dept needs add, set or list%s", "");
	if (strcmp(argv[0], "list") && argc < 2)
		return usage("dept %s needs a department CODE", argv[0]);
	if (strcmp(argv[0], "add") && strcmp(argv[0], "set") &&
	    strcmp(argv[0], "list"))
		return usage("dept: unknown verb '%s'", argv[0]);
	if (admin_open_db(&r, dir, 0))
		return 1;
	if (strcmp(argv[0], "list")) {
		rc = dept_write(r, !strcmp(argv[0], "add"), argc, argv);
	} else if (fs_replica__prepare(&st, r,
	        /* The tree, depth first: each department under its parent. */
	        "WITH RECURSIVE t(code, name, parent, depth, path) AS ("
	        "  SELECT code, name, parent, 0, code FROM fs_dept "
	        "  WHERE parent IS NULL "
	        "  UNION ALL SELECT d.code, d.name, d.parent, t.depth + 1, "
	        "  t.path || '/' || d.code FROM fs_dept d JOIN t ON d.parent = t.code"
	        ") SELECT substr('                    ', 1, 2 * min(depth, 10)) "
	        "|| code, name, coalesce(parent, ''), json_object('code', code, "
	        "'name', name, 'parent', parent) FROM t ORDER BY path") < 0) {
		rc = fail("%s%s", fs_replica_errmsg(r), "");
	} else {
		rc = list_rows(r, st, has_flag(argc, argv, "--json"), 3,
		               "%-24s %s%.0s\n");
	}
	fs_replica__finish(r, st);
	fs_replica_close(r);
	return rc;
}
