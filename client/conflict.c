/*
** conflict.c -- conflicts and rejections on the client: listing them and
** resolving a conflict.
**
** A conflict arrives from the server (it detected it) with both sides'
** values, authors and clocks.  Resolving writes a kept loser or typed
** value as a new local change (a newer HLC, so it wins everywhere once
** synced); keeping the winner writes nothing, since the winner won
** already and the field may hold another device's newer edit by now
** (this device's own pending edit gives way to it).  Either way it
** queues an 'R' change that marks the conflict resolved on the server
** and, from there, on every replica.
*/
#include "replica_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* A stored value as JSON: itself when valid, else as a JSON string (what
** a modified client sent is listed, never a failed listing). */
#define JSON_OR_TEXT(c) \
	"CASE WHEN json_valid(" c ") THEN json(" c ") ELSE " c " END"

static int list_json(fs_replica *r, const char *sql, fs_json_cb cb,
                     void *payload)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r, sql) < 0)
		return r->err.code;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int stop = cb((const char *)sqlite3_column_text(st, 0), payload);
		if (stop) {
			fs_replica__finish(r, st);
			return stop;
		}
	}
	fs_replica__finish(r, st);
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "listing");
	return 0;
}

int fs_conflict_list(fs_replica *r, int all, fs_json_cb cb, void *payload)
{
	return list_json(r, all
	        ? "SELECT json_object('id', id, 'table', tbl, 'record', rid, "
	          "'field', col, 'reason', reason, 'winner_value', " JSON_OR_TEXT("winner_value") ", "
	          "'winner_author', winner_author, 'winner_device', winner_device, "
	          "'winner_hlc', winner_hlc, 'loser_value', " JSON_OR_TEXT("loser_value") ", "
	          "'loser_author', loser_author, 'loser_device', loser_device, "
	          "'loser_hlc', loser_hlc, 'created_at', created_at, "
	          "'resolved_at', resolved_at, 'resolved_by', resolved_by, "
	          "'resolution', " JSON_OR_TEXT("resolution") ") FROM fs_conflict ORDER BY id"
	        : "SELECT json_object('id', id, 'table', tbl, 'record', rid, "
	          "'field', col, 'reason', reason, 'winner_value', " JSON_OR_TEXT("winner_value") ", "
	          "'winner_author', winner_author, 'winner_device', winner_device, "
	          "'winner_hlc', winner_hlc, 'loser_value', " JSON_OR_TEXT("loser_value") ", "
	          "'loser_author', loser_author, 'loser_device', loser_device, "
	          "'loser_hlc', loser_hlc, 'created_at', created_at, "
	          "'resolved_at', resolved_at, 'resolved_by', resolved_by, "
	          "'resolution', " JSON_OR_TEXT("resolution") ") FROM fs_conflict "
	          "WHERE resolved_at IS NULL ORDER BY id", cb, payload);
}

int fs_rejection_list(fs_replica *r, fs_json_cb cb, void *payload)
{
	return list_json(r,
	        "SELECT json_object('id', id, 'seq', seq, 'table', tbl, "
	        "'record', rid, 'op', op, 'field', col, 'value', " JSON_OR_TEXT("val") ", "
	        "'hlc', hlc, 'reason', reason, 'created_at', created_at) "
	        "FROM fs_rejection ORDER BY id", cb, payload);
}

/* The JSON value to keep for a conflict, per 'keep'; *winner_here: the
** winner was written on this device. */
static int kept_value(char **out, int *winner_here, fs_replica *r,
                      int64_t id, const char *keep, const fs_table **tp,
                      char *rid, char *col)
{
	sqlite3_stmt *st = NULL;
	char mine[64] = "", wdev[64], ldev[64], *v = NULL;
	const char *wval, *lval;
	int rc, side = 0;   /* 1 winner, 2 loser, 3 literal */

	*out = NULL;
	{
		char *d = NULL;
		if (fs_replica_setting_get(&d, r, "server_device") == 0 && d)
			snprintf(mine, sizeof(mine), "%s", d);
		fs_free(d);
		fs_err__clear(&r->err);
	}
	if (fs_replica__prepare(&st, r,
	        "SELECT tbl, rid, col, winner_value, winner_device, loser_value, "
	        "loser_device, resolved_at FROM fs_conflict WHERE id = ?") < 0)
		return r->err.code;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		fs_replica__finish(r, st);
		return rc == SQLITE_DONE
		       ? fs_err__set(&r->err, FS_ENOTFOUND, "no conflict %lld",
		                     (long long)id)
		       : fs_err__sqlite(&r->err, r->db, rc, "reading a conflict");
	}
	if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
		fs_replica__finish(r, st);
		return fs_err__set(&r->err, FS_EINVALID,
		                   "conflict %lld is already resolved", (long long)id);
	}
	*tp = fs_schema__table(&r->schema, (const char *)sqlite3_column_text(st, 0));
	snprintf(rid, 64, "%s", (const char *)sqlite3_column_text(st, 1));
	snprintf(col, 128, "%s", (const char *)sqlite3_column_text(st, 2));
	wval = (const char *)sqlite3_column_text(st, 3);
	snprintf(wdev, sizeof(wdev), "%s", (const char *)sqlite3_column_text(st, 4));
	lval = (const char *)sqlite3_column_text(st, 5);
	snprintf(ldev, sizeof(ldev), "%s", (const char *)sqlite3_column_text(st, 6));
	if (!strcmp(keep, "winner") || !strcmp(keep, "theirs"))
		side = 1;
	else if (!strcmp(keep, "loser"))
		side = 2;
	else if (!strcmp(keep, "mine"))
		side = !strcmp(ldev, mine) ? 2 : !strcmp(wdev, mine) ? 1 : 0;
	else
		side = 3;
	if (!strcmp(keep, "theirs"))
		side = !strcmp(wdev, mine) ? 2 : !strcmp(ldev, mine) ? 1 : 0;
	if (side == 0) {
		fs_replica__finish(r, st);
		return fs_err__set(&r->err, FS_EINVALID,
		                   "neither side of conflict %lld was made on this "
		                   "device: use --keep winner, loser or a value",
		                   (long long)id);
	}
	/* A winner of a change head office refused is not recorded (SQL
	** NULL, unlike a JSON null): *out stays NULL. */
	if (side == 2 || (side == 1 && wval)) {
		const char *s = side == 1 ? wval : lval;
		v = strdup(s ? s : "null");
		if (!v) {
			fs_replica__finish(r, st);
			return fs_err__set(&r->err, FS_ERROR, "out of memory");
		}
	}
	fs_replica__finish(r, st);
	if (!*tp) {
		free(v);
		return fs_err__set(&r->err, FS_ENOTFOUND,
		                   "conflict %lld is about an unknown table",
		                   (long long)id);
	}
	*winner_here = mine[0] && !strcmp(wdev, mine);
	*out = v;   /* NULL for a literal (the caller converts it), or for
	            ** a winner not recorded */
	return side;
}

/* Whether field col of record (tbl, rid) has an edit pending here (0/1,
** <0 on failure). */
static int pending_edit(fs_replica *r, const char *tbl, const char *rid,
                        const char *col)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (fs_replica__prepare(&st, r,
	        "SELECT 1 FROM fs_change WHERE tbl = ?1 AND rid = ?2 AND "
	        "op = 'U' AND col = ?3 LIMIT 1") < 0)
		return r->err.code;
	sqlite3_bind_text(st, 1, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, col, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	fs_replica__finish(r, st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc != SQLITE_DONE)
		return fs_err__sqlite(&r->err, r->db, rc, "reading pending changes");
	return 0;
}

int fs_conflict_resolve(fs_replica *r, int64_t id, const char *keep)
{
	const fs_table *t = NULL;
	char rid[64], col[128], *val = NULL, idtext[32];
	const char *kept;
	sqlite3_stmt *st = NULL;
	int rc, side, winner_here = 0;

	if (!keep || !*keep)
		return fs_err__set(&r->err, FS_EINVALID,
		                   "--keep mine|theirs|winner|loser|VALUE");
	if ((rc = fs_replica__tx_begin(r)) < 0)
		return rc;
	if ((side = kept_value(&val, &winner_here, r, id, keep, &t, rid,
	                       col)) < 0) {
		rc = side;
		goto done;
	}
	if (!col[0]) {
		/* A whole record (created or edited after a delete): the delete
		** stands; its values stay visible in the conflict. */
		if (side == 3 || (side == 2 && strcmp(keep, "theirs"))) {
			rc = fs_err__set(&r->err, FS_EINVALID,
			        "conflict %lld is about a deleted %s: the delete stands "
			        "(keep winner, or re-create the record from the kept "
			        "values)", (long long)id, t->noun);
			goto done;
		}
	} else if (fs_replica__exists(r, t->name, rid) == 1) {
		if (side == 3) {
			/* A value typed by the user: validated like any edit, then
			** read back in stored form for the resolution record. */
			fs_field f = { col, keep };
			rc = fs_record__update(r, t, rid, &f, 1);
			if (rc == 0 && (rc = fs_replica__field_json(&val, r, t, rid,
			                                            col)) > 0)
				rc = 0;
		} else {
			const fs_column *c = fs_schema__column(t, col);
			char sql[256];
			int write = 1;

			if (!c) {
				rc = fs_err__set(&r->err, FS_ENOTFOUND, "%s has no field '%s'",
				                 t->noun, col);
				goto done;
			}
			/* Keeping the winner writes nothing: the winner won already,
			** and the field may hold an edit made since by another
			** device, which writing the winner again would undo
			** everywhere (a conflict of a change head office refused
			** does not even hold head office's value).  The resolution
			** records the value that stands.  An edit of the field still
			** pending here is this device's own, made since: keeping the
			** winner (its value recorded, and another device's) overrides
			** it. */
			if (side == 1) {
				if ((rc = pending_edit(r, t->name, rid, c->name)) < 0)
					goto done;
				write = rc && val && !winner_here;
				rc = 0;
			}
			if (!write) {
				free(val);
				val = NULL;
				if ((rc = fs_replica__field_json(&val, r, t, rid,
				                                 c->name)) > 0)
					rc = 0;
			} else {
				/* Captured: the kept value becomes a new change with a
				** new HLC, so it wins everywhere (unless it already is
				** the value). */
				snprintf(sql, sizeof(sql),
				         "UPDATE \"%s\" SET \"%s\" = json_extract(?1, '$') "
				         "WHERE id = ?2", t->name, c->name);
				if ((rc = fs_replica__prepare(&st, r, sql)) == 0) {
					sqlite3_bind_text(st, 1, val, -1, SQLITE_STATIC);
					sqlite3_bind_text(st, 2, rid, -1, SQLITE_STATIC);
					rc = fs_replica__step_done(r, st, "keeping a value");
					fs_replica__finish(r, st);
				}
			}
		}
		if (rc < 0)
			goto done;
	}
	/* The resolution itself syncs, after the edit it made. */
	if ((rc = fs_replica__flush(r, 1)) < 0)
		goto done;
	snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
	/* What the resolution records: the value kept or standing, else the
	** text typed, or JSON null (a winner never recorded). */
	kept = val ? val : side == 3 ? keep : "null";
	if ((rc = fs_replica__prepare(&st, r,
	        "INSERT INTO fs_change(tbl, rid, op, val, hlc, device, base) "
	        "VALUES ('fs_conflict', ?1, 'R', ?2, fs_hlc_next(), fs_device(), "
	        "fs_base())")) < 0)
		goto done;
	sqlite3_bind_text(st, 1, idtext, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, kept, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "queueing the resolution");
	fs_replica__finish(r, st);
	if (rc < 0)
		goto done;
	/* The time is the resolution's clock, which every replica gets with
	** the R entry: all of them show the same resolved_at. */
	if ((rc = fs_replica__prepare(&st, r,
	        "UPDATE fs_conflict SET resolved_at = (SELECT strftime("
	        "'%Y-%m-%dT%H:%M:%SZ', (hlc >> 16) / 1000, 'unixepoch') "
	        "FROM fs_change WHERE seq = last_insert_rowid()), "
	        "resolved_by = coalesce((SELECT v FROM fs_meta WHERE k = 'user'), "
	        "'me'), resolution = ?2 WHERE id = ?1")) < 0)
		goto done;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, kept, -1, SQLITE_STATIC);
	rc = fs_replica__step_done(r, st, "resolving");
	fs_replica__finish(r, st);
done:
	free(val);
	return fs_replica__tx_end(r, rc);
}
