/*
** apply.c -- writing changes that came from elsewhere: a record created,
** a field updated, a record deleted, as decoded from the sync protocol.
**
** Used by the server's merge (server/store.c) and by the client when it
** pulls.  Values arrive as JSON (an object of fields for a creation, a
** JSON scalar for a field); SQLite's json_each/json_extract decode them.
** Fields this schema does not know are skipped, never an error: a client
** one schema version behind keeps syncing.  Capture is off while these run
** (fs_replica__capture_off), so nothing applied here is pushed back.
** The server reads what a device pushes strictly: every value must be of
** its field's kind (misfit()), as the library stores it, or the change is
** refused; a replica takes what its server sends, and a regional server
** what head office sends.
*/
#include "replica_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "hlc.h"
#include "uuid.h"
#include "value.h"

int fs_replica__capture(fs_replica *r, int on)
{
	return fs_capture__switch(&r->cap, on);
}

/* Prepares sql (freed) into *slot, a statement kept for the handle's
** life. */
static int prepare_kept(sqlite3_stmt **slot, fs_replica *r, fs_buf *sql,
                        const char *what)
{
	int rc;

	if (sql->failed) {
		fs_buf_free(sql);
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	}
	rc = sqlite3_prepare_v3(r->db, sql->ptr, -1, SQLITE_PREPARE_PERSISTENT,
	                        slot, NULL);
	fs_buf_free(sql);
	return rc == SQLITE_OK ? 0 : fs_err__sqlite(&r->err, r->db, rc, what);
}

/* Writes `"t"(id, "c1", ...)<values>1, v2, ...` into sql: value k is
** <term>k, or coalesce(<term>k, default) for a column with a default,
** which a NULL or missing field takes (a client one schema version
** behind). */
static void insert_columns(fs_buf *sql, const fs_table *t,
                           const char *values, const char *term)
{
	size_t i;

	fs_buf_putc(sql, '"');
	fs_buf_puts(sql, t->name);
	fs_buf_puts(sql, "\"(id");
	for (i = 0; i < t->ncols; i++)
		fs_buf_printf(sql, ", \"%s\"", t->cols[i].name);
	fs_buf_printf(sql, ")%s1", values);
	for (i = 0; i < t->ncols; i++) {
		const fs_column *c = &t->cols[i];
		if (c->dflt)
			fs_buf_printf(sql, ", coalesce(%s%zu, %s)", term, i + 2,
			              c->dflt);
		else
			fs_buf_printf(sql, ", %s%zu", term, i + 2);
	}
}

/* The INSERT of a whole record into table t, prepared once per handle:
** ?1 the id, ?k+2 column k.  A column with a default takes it for a NULL
** or missing field (a client one schema version behind). */
static int insert_stmt(sqlite3_stmt **out, fs_replica *r, const fs_table *t)
{
	size_t ti = (size_t)(t - r->schema.tables);
	fs_buf sql = FS_BUF_INIT;
	int rc;

	*out = NULL;
	if (!r->apply_ins) {
		r->apply_ins = calloc(r->schema.ntables, sizeof(*r->apply_ins));
		if (!r->apply_ins)
			return fs_err__set(&r->err, FS_ERROR, "out of memory");
	}
	if (r->apply_ins[ti]) {
		*out = r->apply_ins[ti];
		return 0;
	}
	/* INSERT OR REPLACE: a record already here (a replayed creation) takes
	** the fields given. */
	fs_buf_puts(&sql, "INSERT OR REPLACE INTO ");
	insert_columns(&sql, t, " VALUES (?", "?");
	fs_buf_putc(&sql, ')');
	if ((rc = prepare_kept(&r->apply_ins[ti], r, &sql,
	                       "preparing a record insert")) < 0)
		return rc;
	*out = r->apply_ins[ti];
	return 0;
}

typedef struct bind_ctx {
	fs_replica *r;
	const fs_table *t;
	sqlite3_stmt *st;
	int base;            /* st's parameter before the record's id */
	size_t hint;         /* members usually come in column order */
	unsigned char *seen; /* strict: per column of t, bound already */
	char *other[64];     /* keys t does not have (a newer schema's),
	                     ** copied: an escaped key is unescaped into a
	                     ** buffer the next key reuses */
	size_t olen[64], nother;
	const fs_column *want;
	const char *rid;     /* the record's id (strict), or NULL */
	char *want_text;
	int strict, has_want, oom;
	char why[160];       /* a strict reader's refusal */
} bind_ctx;

/* Binds a JSON value as json_extract() would give it: numbers, 1/0 for
** true/false, text unescaped, objects and arrays as their JSON text.
** Text pointing into the caller's JSON (not copied) is bound without a
** copy: it lives until the statement runs. */
static int bind_json(sqlite3_stmt *st, int idx, const fs_json_member *m)
{
	switch (m->type) {
	case FS_JSON_NULL:
		return sqlite3_bind_null(st, idx);
	case FS_JSON_INT:
		return sqlite3_bind_int64(st, idx, m->i);
	case FS_JSON_REAL:
		return sqlite3_bind_double(st, idx, m->d);
	default:
		return sqlite3_bind_text(st, idx, m->val, (int)m->vlen,
		                         m->copied || m->type == FS_JSON_NESTED
		                         ? SQLITE_TRANSIENT : SQLITE_STATIC);
	}
}

/* Whether JSON value m is not of column c's kind as the library stores
** it: the text kinds take strings (a DATE a calendar date, a TIMESTAMP
** its stored UTC form), the others integers (a BOOLEAN 0 or 1; JSON's
** true and false read as 1 and 0).  Null fits any kind: NOT NULL is the
** schema's to refuse.  A device of this library never sends a misfit; a
** faulty or forged one would spread it to every replica.  0 fits, else 1
** with the reason in why.  (rid: the record's id, NULL if unknown.) */
static int misfit(char *why, size_t size, const fs_table *t,
                  const fs_column *c, const char *rid, const fs_json_member *m)
{
	char text[24];
	int ok;

	/* A link to the record itself (a customer its own parent), which the
	** library refuses on a local write (record.c). */
	if (c->ref && rid && m->type == FS_JSON_TEXT && !strcmp(c->ref, t->name) &&
	    m->vlen == strlen(rid) && !memcmp(m->val, rid, m->vlen)) {
		snprintf(why, size, "field %s cannot point at the record itself",
		         c->name);
		return 1;
	}

	switch (c->kind) {
	case FS_KIND_TEXT:
		ok = m->type == FS_JSON_TEXT;
		break;
	case FS_KIND_DATE:
	case FS_KIND_TIMESTAMP:
		ok = m->type == FS_JSON_TEXT && m->vlen < sizeof(text);
		if (ok) {
			memcpy(text, m->val, m->vlen);
			text[m->vlen] = '\0';
			ok = c->kind == FS_KIND_DATE ? fs_value__valid_date(text)
			                             : fs_value__valid_timestamp(text);
		}
		break;
	case FS_KIND_BOOLEAN:
		ok = m->type == FS_JSON_INT && (m->i == 0 || m->i == 1);
		break;
	default:   /* a number: true and false read as 1 and 0, without text */
		ok = m->type == FS_JSON_INT && m->val;
		break;
	}
	if (ok || m->type == FS_JSON_NULL)
		return 0;
	snprintf(why, size, "field %s must be %s", c->name,
	         fs_value__kind_wants(c->kind));
	return 1;
}

/* A key t does not have: remembered, to find it given twice (1). */
static int other_key(bind_ctx *x, const fs_json_member *m)
{
	size_t k;

	for (k = 0; k < x->nother; k++)
		if (x->olen[k] == m->klen && !memcmp(x->other[k], m->key, m->klen)) {
			snprintf(x->why, sizeof(x->why), "field '%.*s' given twice",
			         (int)m->klen, m->key);
			return 1;
		}
	if (x->nother == 64) {
		snprintf(x->why, sizeof(x->why), "more than 64 fields this "
		         "schema does not have");
		return 1;
	}
	if (!(x->other[x->nother] = malloc(m->klen ? m->klen : 1))) {
		x->oom = 1;
		return 1;
	}
	memcpy(x->other[x->nother], m->key, m->klen);
	x->olen[x->nother++] = m->klen;
	return 0;
}

/* Notes a link's value for fs_replica__links_check() (r->ins_link_*). */
static int link_note(bind_ctx *x, const fs_column *c, const fs_json_member *m)
{
	fs_replica *r = x->r;

	if (r->ins_nlinks == FS_LINKS_MAX) {
		snprintf(x->why, sizeof(x->why), "more than %d links", FS_LINKS_MAX);
		return 1;
	}
	if (m->vlen >= sizeof(r->ins_link_id[0]) || memchr(m->val, 0, m->vlen)) {
		snprintf(x->why, sizeof(x->why), "field %s: not a record id",
		         c->name);
		return 1;
	}
	r->ins_link_col[r->ins_nlinks] = c;
	memcpy(r->ins_link_id[r->ins_nlinks], m->val, m->vlen);
	r->ins_link_id[r->ins_nlinks++][m->vlen] = '\0';
	return 0;
}

static int bind_member(void *payload, const fs_json_member *m)
{
	bind_ctx *x = payload;
	const fs_table *t = x->t;
	size_t k, i = 0;

	/* A key with a NUL (from \u0000) names no column; a strict reader
	** refuses it (another reader might stop at the NUL). */
	if (memchr(m->key, 0, m->klen)) {
		if (!x->strict)
			return 0;
		snprintf(x->why, sizeof(x->why), "a field name holds a NUL");
		return 1;
	}
	for (k = 0; k < t->ncols; k++) {
		/* (no NUL in the key: a match ends inside the name) */
		i = (x->hint + k) % t->ncols;
		if (m->klen && t->cols[i].name[0] == m->key[0] &&
		    !strncmp(t->cols[i].name, m->key, m->klen) &&
		    t->cols[i].name[m->klen] == '\0')
			break;
	}
	/* Strict (a pushed record): every reader of it must see the same
	** value of a field -- the server's scope check and rules the first,
	** this INSERT the last -- so a field given twice is refused. */
	if (x->strict) {
		if (k == t->ncols ? other_key(x, m) : x->seen[i]++) {
			if (!x->oom && k < t->ncols)
				snprintf(x->why, sizeof(x->why), "field '%s' given twice",
				         t->cols[i].name);
			return 1;
		}
	}
	if (k == t->ncols)
		return 0;   /* a field this schema does not have */
	if (x->strict == FS_BIND_KINDS &&
	    misfit(x->why, sizeof(x->why), t, &t->cols[i], x->rid, m))
		return 1;
	if (x->strict == FS_BIND_KINDS && t->cols[i].ref &&
	    m->type == FS_JSON_TEXT && link_note(x, &t->cols[i], m))
		return 1;
	x->hint = i + 1;
	if (&t->cols[i] == x->want) {
		x->has_want = 1;
		free(x->want_text);
		x->want_text = fs_json__member_text(m, &x->oom);
		if (x->oom)
			return 1;
	}
	return bind_json(x->st, x->base + (int)i + 2, m) == SQLITE_OK ? 0 : -1;
}

/* Unbinds the fields of the record at parameter base of st (group: a
** row of a group insert; else the single-row INSERT, all of it): a
** record that lacks one must not inherit the value of the last record
** bound there (one refused, say). */
static void unbind_fields(sqlite3_stmt *st, const fs_table *t, int base,
                          int group)
{
	size_t i;

	if (!group) {
		sqlite3_clear_bindings(st);
		return;
	}
	for (i = 0; i < t->ncols; i++)
		sqlite3_bind_null(st, base + (int)i + 2);
}

/* Binds the fields of record rid of t, from json, to st's parameters
** after base (the id's is base + 1, left alone); as
** fs_replica__insert_bind(), but sets no r->ins_bound. */
static int bind_record(fs_replica *r, const fs_table *t, sqlite3_stmt *st,
                       int base, int group, const char *rid,
                       const char *json, int strict, const fs_column *want,
                       char **want_text)
{
	bind_ctx x;
	/* A strict reader into a group's slot unbinds only the fields the
	** record lacks, once it is read (each bind costs). */
	int late = group && strict && json;
	size_t i;
	int rc;

	if (want_text)
		*want_text = NULL;
	if (!late)
		unbind_fields(st, t, base, group);
	x.r = r;
	x.t = t;
	x.st = st;
	x.base = base;
	x.strict = strict;
	r->ins_nlinks = 0;
	x.hint = 0;
	x.nother = 0;
	x.want = want;
	x.rid = rid;
	x.want_text = NULL;
	x.has_want = x.oom = 0;
	x.why[0] = '\0';
	if (!json)
		return 0;   /* no fields: the INSERT's constraints judge */
	/* Only a strict reader tracks the fields seen (a pull of a million
	** records needs no allocation per record). */
	x.seen = NULL;
	if (strict && !(x.seen = calloc(t->ncols ? t->ncols : 1, 1))) {
		unbind_fields(st, t, base, group);
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	}
	rc = fs_json__object_each(json, strlen(json), bind_member, &x, &r->err);
	for (i = 0; late && rc == 0 && i < t->ncols; i++)
		if (!x.seen[i])
			sqlite3_bind_null(st, base + (int)i + 2);
	free(x.seen);
	while (x.nother)
		free(x.other[--x.nother]);
	if (rc == 0) {
		if (want_text)
			*want_text = x.want_text;
		else
			free(x.want_text);
		return x.has_want;
	}
	free(x.want_text);
	unbind_fields(st, t, base, group);
	if (x.oom)
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	if (x.why[0])
		return fs_err__set(&r->err, FS_EINVALID, "%s", x.why);
	if (rc == FS_ECORRUPT)
		return fs_err__prefix(&r->err, "malformed record");
	if (rc > 0 || r->err.code == 0)
		return fs_err__sqlite(&r->err, r->db, sqlite3_errcode(r->db),
		                      t->noun);
	return rc;
}

int fs_replica__insert_bind(fs_replica *r, const fs_table *t,
                            const char *rid, const char *json, int strict,
                            const fs_column *want, char **want_text)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (want_text)
		*want_text = NULL;
	r->ins_bound = NULL;
	if ((rc = insert_stmt(&st, r, t)) < 0)
		return rc;
	rc = bind_record(r, t, st, 0, 0, rid, json, strict, want, want_text);
	if (rc >= 0)
		r->ins_bound = t;
	return rc;
}

int fs_replica__insert_run(fs_replica *r, const fs_table *t,
                           const char *rid)
{
	sqlite3_stmt *st = r->apply_ins ? r->apply_ins[t - r->schema.tables]
	                                : NULL;
	int rc;

	if (r->ins_bound != t || !st)
		return fs_err__set(&r->err, FS_ERROR, "%s %s: inserted unbound",
		                   t->noun, rid);
	r->ins_bound = NULL;
	sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		fs_err__sqlite(&r->err, r->db, rc, t->noun);
	sqlite3_reset(st);   /* (the next bind clears the fields) */
	return rc == SQLITE_DONE ? 0 : r->err.code;
}

/* ------------------------------------------------------ group inserts */

/* A table's group: its INSERT of FS_GROUP_ROWS rows and the slots'
** state.  A slot's id is bound (non-NULL) only while it is added: the
** INSERT takes only such rows (WHERE column1 IS NOT NULL), so a slot
** bound and then refused, or inserted already, costs nothing but its
** place. */
typedef struct fs_group {
	sqlite3_stmt *st;
	int next;            /* the slot the next bind takes */
	int pending;         /* the slot bound and not added, or -1 */
	int nlive;
	unsigned char live[FS_GROUP_ROWS];
	char *json[FS_GROUP_ROWS];   /* the slot's record: its bound values
	                             ** point into it */
	char rid[FS_GROUP_ROWS][FS_ID_SIZE];
	uint64_t tag[FS_GROUP_ROWS];
	int64_t tag2[FS_GROUP_ROWS];
} fs_group;

static int slot_base(const fs_table *t, int slot)
{
	return slot * (int)(t->ncols + 1);
}

/* t's group, with its statement prepared (NULL on failure). */
static fs_group *group_of(fs_replica *r, const fs_table *t)
{
	size_t ti = (size_t)(t - r->schema.tables), i;
	fs_buf sql = FS_BUF_INIT;
	fs_group *g;
	int k;

	if (!r->groups &&
	    !(r->groups = calloc(r->schema.ntables, sizeof(*r->groups)))) {
		fs_err__set(&r->err, FS_ERROR, "out of memory");
		return NULL;
	}
	g = &r->groups[ti];
	if (g->st)
		return g;
	g->pending = -1;
	fs_buf_puts(&sql, "INSERT INTO ");
	insert_columns(&sql, t, " SELECT column", "column");
	fs_buf_puts(&sql, " FROM (VALUES ");
	for (k = 0; k < FS_GROUP_ROWS; k++) {
		fs_buf_puts(&sql, k ? ",(?" : "(?");
		for (i = 0; i < t->ncols; i++)
			fs_buf_puts(&sql, ",?");
		fs_buf_putc(&sql, ')');
	}
	fs_buf_puts(&sql, ") WHERE column1 IS NOT NULL");
	if (prepare_kept(&g->st, r, &sql, "preparing a group insert") < 0)
		return NULL;
	return g;
}

int fs_replica__group_room(fs_replica *r, const fs_table *t)
{
	const fs_group *g = r->groups ? &r->groups[t - r->schema.tables] : NULL;

	return !g || g->next < FS_GROUP_ROWS;
}

int fs_replica__group_bind(fs_replica *r, const fs_table *t,
                           const char *rid, const char *json, int strict,
                           const fs_column *want, char **want_text)
{
	fs_group *g;
	char *copy;
	int slot, rc;

	if (want_text)
		*want_text = NULL;
	fs_replica__group_unpend(r);
	if (!(g = group_of(r, t)))
		return r->err.code;
	if ((slot = g->next) >= FS_GROUP_ROWS)
		return fs_err__set(&r->err, FS_ERROR, "%s %s: group insert full",
		                   t->noun, rid);
	/* The slot's fields point into its JSON until bind_record() has
	** bound them all again (no statement runs in between). */
	copy = NULL;
	if (json && !(copy = strdup(json)))
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	free(g->json[slot]);
	g->json[slot] = copy;
	rc = bind_record(r, t, g->st, slot_base(t, slot), 1, rid, g->json[slot],
	                 strict, want, want_text);
	if (rc >= 0) {
		g->pending = slot;
		r->grp_pending = t;
	}
	return rc;
}

int fs_replica__group_pending(const fs_replica *r, const fs_table *t)
{
	return r->grp_pending == t;
}

void fs_replica__group_unpend(fs_replica *r)
{
	if (r->grp_pending)
		r->groups[r->grp_pending - r->schema.tables].pending = -1;
	r->grp_pending = NULL;
}

int fs_replica__group_add(fs_replica *r, const fs_table *t, const char *rid,
                          uint64_t tag, int64_t tag2)
{
	fs_group *g;
	int slot;

	if (r->grp_pending != t)
		return fs_err__set(&r->err, FS_ERROR, "%s %s: added unbound",
		                   t->noun, rid);
	g = &r->groups[t - r->schema.tables];
	slot = g->pending;
	if (strlen(rid) >= sizeof(g->rid[slot]))
		return fs_err__set(&r->err, FS_EINVALID, "%s id '%s' is too long",
		                   t->noun, rid);
	strcpy(g->rid[slot], rid);
	sqlite3_bind_text(g->st, slot_base(t, slot) + 1, g->rid[slot], -1,
	                  SQLITE_STATIC);
	g->live[slot] = 1;
	g->tag[slot] = tag;
	g->tag2[slot] = tag2;
	g->nlive++;
	g->next = slot + 1;
	g->pending = -1;
	r->grp_pending = NULL;
	return 0;
}

int fs_replica__group_holds(const fs_replica *r, const char *rid)
{
	size_t ti;
	int k;

	for (ti = 0; r->groups && ti < r->schema.ntables; ti++) {
		const fs_group *g = &r->groups[ti];
		for (k = 0; g->nlive && k < g->next; k++)
			if (g->live[k] && !strcmp(g->rid[k], rid))
				return 1;
	}
	return 0;
}

/* Empties g: its added slots' ids unbound.  The slot bound last, if not
** added yet, keeps its place (the caller is still deciding on it). */
static void group_clear(const fs_table *t, fs_group *g)
{
	int k;

	for (k = 0; k < FS_GROUP_ROWS; k++)
		if (g->live[k]) {
			sqlite3_bind_null(g->st, slot_base(t, k) + 1);
			g->live[k] = 0;
		}
	g->nlive = 0;
	g->next = g->pending >= 0 ? g->pending : 0;
}

/* The statement failed on a constraint: SQLite undid it.  Each record
** goes in alone (the INSERT of fs_replica__insert_bind()), and the ones
** refused are reported.  The links noted for the record being decided
** are kept (the binds here note none of their own); the single-row
** INSERT is left unbound (it holds the last record tried). */
static int group_one_by_one(fs_replica *r, const fs_table *t, fs_group *g,
                            fs_group_fail fail, void *ctx)
{
	const fs_column *lcol[FS_LINKS_MAX];
	char lid[FS_LINKS_MAX][64];
	int nlinks = r->ins_nlinks, k, rc = 0;

	memcpy(lcol, r->ins_link_col, sizeof(lcol));
	memcpy(lid, r->ins_link_id, sizeof(lid));
	for (k = 0; k < g->next && rc == 0; k++) {
		if (!g->live[k])
			continue;
		rc = fs_replica__insert_bind(r, t, g->rid[k], g->json[k],
		                             FS_BIND_STRICT, NULL, NULL);
		if (rc >= 0)
			rc = fs_replica__insert_run(r, t, g->rid[k]);
		if (rc == FS_EINVALID || rc == FS_ECORRUPT)
			rc = fail(ctx, t, g->rid[k], g->tag[k], g->tag2[k]);
	}
	memcpy(r->ins_link_col, lcol, sizeof(lcol));
	memcpy(r->ins_link_id, lid, sizeof(lid));
	r->ins_nlinks = nlinks;
	r->ins_bound = NULL;
	return rc;
}

int fs_replica__group_run(fs_replica *r, fs_group_fail fail, void *ctx)
{
	size_t ti;
	int rc = 0;

	for (ti = 0; r->groups && ti < r->schema.ntables && rc == 0; ti++) {
		const fs_table *t = &r->schema.tables[ti];
		fs_group *g = &r->groups[ti];
		int step;

		if (!g->nlive)
			continue;
		step = sqlite3_step(g->st);
		sqlite3_reset(g->st);
		if (step == SQLITE_DONE)
			rc = 0;
		else if ((step & 0xff) == SQLITE_CONSTRAINT)
			rc = group_one_by_one(r, t, g, fail, ctx);
		else
			rc = fs_err__sqlite(&r->err, r->db, step, t->noun);
		group_clear(t, g);
	}
	if (rc < 0)
		fs_replica__group_reset(r);
	return rc;
}

void fs_replica__group_reset(fs_replica *r)
{
	size_t ti;

	fs_replica__group_unpend(r);
	for (ti = 0; r->groups && ti < r->schema.ntables; ti++) {
		fs_group *g = &r->groups[ti];
		if (g->st) {
			sqlite3_reset(g->st);
			group_clear(&r->schema.tables[ti], g);
		}
	}
}

void fs_replica__group_free(fs_replica *r)
{
	size_t ti;
	int k;

	for (ti = 0; r->groups && ti < r->schema.ntables; ti++) {
		sqlite3_finalize(r->groups[ti].st);
		for (k = 0; k < FS_GROUP_ROWS; k++)
			free(r->groups[ti].json[k]);
	}
	free(r->groups);
	r->groups = NULL;
	r->grp_pending = NULL;
}

/* Binds each member of the record's JSON object to its column in one pass
** (json_read.c: json_extract() per column cost 3x the INSERT itself). */
int fs_replica__apply_insert(fs_replica *r, const fs_table *t,
                             const char *rid, const char *json)
{
	/* Not strict: what a server sent is taken as SQLite's json_each
	** would read it (the last of a field given twice). */
	int rc = fs_replica__insert_bind(r, t, rid, json, 0, NULL, NULL);

	if (rc < 0) {
		if (rc == FS_ECORRUPT || rc == FS_EINVALID)
			fs_err__prefix(&r->err, "%s %s", t->noun, rid);
		return rc;
	}
	return fs_replica__insert_run(r, t, rid);
}

/* The UPDATE of column c of table t, prepared once per handle. */
static int update_stmt(sqlite3_stmt **out, fs_replica *r, const fs_table *t,
                       const fs_column *c)
{
	size_t ti = (size_t)(t - r->schema.tables);
	size_t ci = (size_t)(c - t->cols);
	char sql[256];
	int rc;

	*out = NULL;
	if (!r->apply_upd &&
	    !(r->apply_upd = calloc(r->schema.ntables, sizeof(*r->apply_upd))))
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	if (!r->apply_upd[ti] &&
	    !(r->apply_upd[ti] = calloc(t->ncols, sizeof(**r->apply_upd))))
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	if (!r->apply_upd[ti][ci]) {
		snprintf(sql, sizeof(sql), "UPDATE \"%s\" SET \"%s\" = ?1 WHERE id = ?2",
		         t->name, c->name);
		rc = sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
		                        &r->apply_upd[ti][ci], NULL);
		if (rc != SQLITE_OK)
			return fs_err__sqlite(&r->err, r->db, rc, "preparing an update");
	}
	*out = r->apply_upd[ti][ci];
	return 0;
}

/* Reads json_value, one JSON scalar (or an object or array, kept as its
** text), into *m; text holds an unescaped string. */
static int value_read(fs_json_member *m, fs_buf *text, fs_replica *r,
                      const fs_table *t, const char *rid, const fs_column *c,
                      const char *json_value)
{
	const char *p = json_value ? json_value : "null";
	const char *end = p + strlen(p);
	int rc = 0;

	p += strspn(p, " \t\r\n");
	memset(m, 0, sizeof(*m));
	if (p < end && (*p == '{' || *p == '[')) {
		m->type = FS_JSON_NESTED;   /* no column holds one; kept as text */
		m->val = p;
		m->vlen = (size_t)(end - p);
		return 0;
	}
	if ((rc = fs_json__scalar(m, &p, end, text, &r->err)) < 0 ||
	    (p += strspn(p, " \t\r\n")) != end) {
		if (rc < 0 && rc != FS_ECORRUPT)
			return rc;   /* out of memory, say: not the value's fault */
		if (rc == 0)
			fs_err__set(&r->err, FS_ECORRUPT, "text after the value");
		fs_err__prefix(&r->err, "%s %s, field %s", t->noun, rid, c->name);
		return FS_ECORRUPT;
	}
	if (text->failed)
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	return 0;
}

/* Whether the server holds record id of table ref, or held it: its
** tombstone (a link to a record deleted meanwhile is a concurrent edit,
** not a forgery), or, once compaction purged tombstones, an id older than
** the latest one purged (fs_meta 'purged_hlc', server/compact.c; a
** database compacted before that mark was kept: any id).  1 yes, 0 no,
** <0 failure. */
static int held(fs_replica *r, const char *ref, const char *id, size_t len)
{
	sqlite3_stmt *st = NULL;
	char sql[300];
	int64_t ms;
	int rc;

	snprintf(sql, sizeof(sql), "SELECT EXISTS (SELECT 1 FROM \"%s\" WHERE "
	         "id = ?1) OR EXISTS (SELECT 1 FROM fs_clock WHERE tbl = '%s' AND "
	         "rid = ?1 AND col = '*')", ref, ref);
	if (fs_replica__prepare(&st, r, sql) < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, id, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_ROW ? sqlite3_column_int(st, 0)
	                      : fs_err__sqlite(&r->err, r->db, rc, "reading a link");
	fs_replica__finish(r, st);
	if (rc != 0)
		return rc;
	/* Not here: purged, perhaps (the rare case: read only now). */
	if (fs_replica__prepare(&st, r, "SELECT (SELECT v FROM fs_meta WHERE "
	        "k = 'purged_hlc'), EXISTS (SELECT 1 FROM fs_meta WHERE k = "
	        "'compacted_below')") < 0)
		return r->err.code;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		rc = fs_err__sqlite(&r->err, r->db, rc, "reading a link");
	else if (sqlite3_column_type(st, 0) != SQLITE_NULL)
		rc = (ms = fs_uuid__ms(id, len)) >= 0 &&
		     ms <= FS_HLC_MS(sqlite3_column_int64(st, 0));
	else
		rc = sqlite3_column_int(st, 1);
	fs_replica__finish(r, st);
	return rc;
}

static int unheld(fs_replica *r, const fs_table *t, const char *rid,
                  const fs_column *c, const char *id, size_t len)
{
	const fs_table *u = fs_schema__table(&r->schema, c->ref);

	return fs_err__set(&r->err, FS_EINVALID, "%s %s: field %s names %s "
	                   "%.*s, which the server does not hold", t->noun, rid,
	                   c->name, u ? u->noun : c->ref, (int)len, id);
}

int fs_replica__value_check(fs_replica *r, const fs_table *t,
                            const char *rid, const fs_column *c,
                            const char *json_value, int links)
{
	fs_buf text = FS_BUF_INIT;
	fs_json_member m;
	char why[160];
	int rc;

	if ((rc = value_read(&m, &text, r, t, rid, c, json_value)) == FS_ECORRUPT)
		rc = FS_EINVALID;   /* malformed: refused, as a misfit */
	else if (rc == 0 && misfit(why, sizeof(why), t, c, rid, &m))
		rc = fs_err__set(&r->err, FS_EINVALID, "%s %s: %s", t->noun, rid,
		                 why);
	else if (rc == 0 && links && c->ref && m.type == FS_JSON_TEXT &&
	         fs_schema__table(&r->schema, c->ref) &&
	         (rc = held(r, c->ref, m.val, m.vlen)) == 0)
		rc = unheld(r, t, rid, c, m.val, m.vlen);
	fs_buf_free(&text);
	return rc < 0 ? rc : 0;
}

int fs_replica__links_check(fs_replica *r, const fs_table *t,
                            const char *rid)
{
	int i, rc;

	for (i = 0; i < r->ins_nlinks; i++) {
		const fs_column *c = r->ins_link_col[i];
		const char *id = r->ins_link_id[i];
		if (!fs_schema__table(&r->schema, c->ref))
			continue;
		if ((rc = held(r, c->ref, id, strlen(id))) <= 0)
			return rc < 0 ? rc : unheld(r, t, rid, c, id, strlen(id));
	}
	return 0;
}

int fs_replica__apply_update(fs_replica *r, const fs_table *t,
                             const char *rid, const fs_column *c,
                             const char *json_value)
{
	fs_buf text = FS_BUF_INIT;
	fs_json_member m;
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = update_stmt(&st, r, t, c)) < 0)
		return rc;
	if ((rc = value_read(&m, &text, r, t, rid, c, json_value)) < 0) {
		fs_buf_free(&text);
		return rc;
	}
	bind_json(st, 1, &m);
	sqlite3_bind_text(st, 2, rid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	fs_buf_free(&text);
	if (rc != SQLITE_DONE)
		fs_err__sqlite(&r->err, r->db, rc, t->noun);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : r->err.code;
}

int fs_replica__apply_delete(fs_replica *r, const fs_table *t, const char *rid)
{
	sqlite3_stmt *st = NULL;
	char sql[128];
	int rc;

	snprintf(sql, sizeof(sql), "DELETE FROM \"%s\" WHERE id = ?", t->name);
	if (fs_replica__prepare(&st, r, sql) < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	fs_replica__finish(r, st);
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, t->noun);
	return 0;
}

/* The statement reading record ?1 of t as one JSON object, prepared once
** per table (building its SQL, a printf per column, cost 56k
** instructions a call: more than running it). */
static int object_stmt(sqlite3_stmt **out, fs_replica *r, const fs_table *t)
{
	size_t ti = (size_t)(t - r->schema.tables), i;
	fs_buf sql = FS_BUF_INIT;
	int rc;

	*out = NULL;
	if (!r->apply_obj &&
	    !(r->apply_obj = calloc(r->schema.ntables, sizeof(*r->apply_obj))))
		return fs_err__set(&r->err, FS_ERROR, "out of memory");
	if (!r->apply_obj[ti]) {
		fs_buf_puts(&sql, "SELECT json_object(");
		for (i = 0; i < t->ncols; i++)
			fs_buf_printf(&sql, "%s'%s', \"%s\"", i ? ", " : "",
			              t->cols[i].name, t->cols[i].name);
		fs_buf_printf(&sql, ") FROM \"%s\" WHERE id = ?", t->name);
		if ((rc = prepare_kept(&r->apply_obj[ti], r, &sql,
		                       "preparing a record read")) < 0)
			return rc;
	}
	*out = r->apply_obj[ti];
	return 0;
}

int fs_replica__field_json(char **out, fs_replica *r, const fs_table *t,
                           const char *rid, const char *col)
{
	sqlite3_stmt *st = NULL;
	fs_buf sql = FS_BUF_INIT;
	int rc, whole = !col || !*col;

	*out = NULL;
	if (whole) {
		if ((rc = object_stmt(&st, r, t)) < 0)
			return rc;
	} else {
		fs_buf_puts(&sql, "SELECT json_quote(\"");
		fs_buf_puts(&sql, col);
		fs_buf_puts(&sql, "\") FROM \"");
		fs_buf_puts(&sql, t->name);
		fs_buf_puts(&sql, "\" WHERE id = ?");
		if (sql.failed) {
			fs_buf_free(&sql);
			return fs_err__set(&r->err, FS_ERROR, "out of memory");
		}
		rc = fs_replica__prepare(&st, r, sql.ptr);
		fs_buf_free(&sql);
		if (rc < 0)
			return rc;
	}
	sqlite3_bind_text(st, 1, rid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = strdup((const char *)sqlite3_column_text(st, 0));
		rc = *out ? 1 : fs_err__set(&r->err, FS_ERROR, "out of memory");
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = fs_err__sqlite(&r->err, r->db, rc, "reading a field");
	}
	if (whole) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	} else {
		fs_replica__finish(r, st);
	}
	return rc;
}
