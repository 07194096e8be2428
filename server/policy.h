/*
** policy.h -- who may read and write what: a user's scope (departments and
** their subtrees, schema/004_scope.sql) and the field and state ownership
** rules of fs_rule.  The store asks; this file answers from the database.
**
** A scope is loaded into the connection as the temporary table
** temp.fs_scope(code): the department codes the user sees, plus '' (the
** mark of reference data, which everyone sees).  Queries filter through
** it (fs_schema__in_scope_sql), so one connection serves one user.
*/
#ifndef FS_POLICY_H
#define FS_POLICY_H

#include "fieldsync.h"
#include "schema.h"
#include "wire.h"

/* Loads user's scope into temp.fs_scope; *all = 1 for the whole company. */
int fs_policy__load_scope(fs_replica *r, const char *user, int *all);

/* 1 when department dept (NULL: none) is in the loaded scope, else 0;
** <0 on failure. */
int fs_policy__in_scope(fs_replica *r, int all, const char *dept);

/* Where stored record (t, rid) belongs: 0 if there is no such record,
** else 1 with *dept its department (malloc'd; NULL when it has none; ""
** for reference data) and, if root is not NULL, *root the id of the
** customer it hangs off (malloc'd, or NULL).  <0 on failure. */
int fs_policy__record_dept(fs_replica *r, const fs_table *t, const char *rid,
                           char **dept, char **root);

/* Where a record of t would belong whose link field (t->scope_col) held
** link (text; NULL for none): *dept and *root (if not NULL) as above. */
int fs_policy__link_dept(fs_replica *r, const fs_table *t, const char *link,
                         char **dept, char **root);

/* The text of member key of JSON object json (numbers as written): 1 and
** *out malloc'd, 0 when absent or null, <0 on malformed JSON or memory. */
int fs_policy__json_member(char **out, const char *json, const char *key,
                           fs_err *e);

/* The text of one JSON scalar (as above). */
int fs_policy__json_text(char **out, const char *json, fs_err *e);

/* The ownership rules, loaded once per pushed batch. */
typedef struct fs_rules fs_rules;
int fs_policy__rules_load(fs_rules **out, fs_replica *r);
void fs_policy__rules_free(fs_rules *rs);

/* Checks a pushed change by a user of role against the rules: 0 allowed,
** 1 refused with *why (owned by rs), <0 on failure. */
int fs_policy__rules_check(fs_rules *rs, fs_replica *r, const char *role,
                           const fs_table *t, const fs_entry *en,
                           const char **why);

#endif
