/*
** json_read.c -- tests of sync/json_read.c against an independent reader:
** SQLite's json_each() and json_valid() on the same texts.
*/
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "check.h"
#include "fieldsync.h"

/* Our members rendered as "key=TYPE:value;" lines, the way SQLite's
** json_each() is rendered below. */
static int render(void *payload, const fs_json_member *m)
{
	fs_buf *b = payload;

	fs_buf_put(b, m->key, m->klen);
	switch (m->type) {
	case FS_JSON_NULL:   fs_buf_puts(b, "=null;"); break;
	case FS_JSON_INT:    fs_buf_printf(b, "=int:%lld;", (long long)m->i); break;
	case FS_JSON_REAL:   fs_buf_printf(b, "=real:%.17g;", m->d); break;
	case FS_JSON_TEXT:
		fs_buf_puts(b, "=text:");
		fs_buf_put(b, m->val, m->vlen);
		fs_buf_putc(b, ';');
		break;
	case FS_JSON_NESTED: fs_buf_puts(b, "=nested;"); break;
	}
	return 0;
}

static char *ours(const char *json, int *rc)
{
	fs_buf b;
	fs_err e;

	memset(&e, 0, sizeof(e));
	fs_buf_init(&b, 0);
	fs_buf_puts(&b, "");
	*rc = fs_json__object_each(json, strlen(json), render, &b, &e);
	return fs_buf_detach(&b);
}

static char *sqlites(sqlite3 *db, const char *json, int *valid)
{
	sqlite3_stmt *st;
	fs_buf b;

	fs_buf_init(&b, 0);
	fs_buf_puts(&b, "");
	CHECK(sqlite3_prepare_v2(db, "SELECT json_valid(?1) AND "
	      "json_type(?1) = 'object'", -1, &st, NULL) == SQLITE_OK);
	sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
	*valid = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (!*valid)
		return fs_buf_detach(&b);
	CHECK(sqlite3_prepare_v2(db, "SELECT key, type, value FROM json_each(?1)",
	      -1, &st, NULL) == SQLITE_OK);
	sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *type = (const char *)sqlite3_column_text(st, 1);
		fs_buf_put(&b, sqlite3_column_blob(st, 0),
		           (size_t)sqlite3_column_bytes(st, 0));
		if (!strcmp(type, "null"))
			fs_buf_puts(&b, "=null;");
		else if (!strcmp(type, "true") || !strcmp(type, "false") ||
		         !strcmp(type, "integer"))
			fs_buf_printf(&b, "=int:%lld;", sqlite3_column_int64(st, 2));
		else if (!strcmp(type, "real"))
			fs_buf_printf(&b, "=real:%.17g;", sqlite3_column_double(st, 2));
		else if (!strcmp(type, "text")) {
			fs_buf_puts(&b, "=text:");
			fs_buf_put(&b, sqlite3_column_blob(st, 2),
			           (size_t)sqlite3_column_bytes(st, 2));
			fs_buf_putc(&b, ';');
		} else
			fs_buf_puts(&b, "=nested;");
	}
	sqlite3_finalize(st);
	return fs_buf_detach(&b);
}

static const char *cases[] = {
	"{}", " { } ", "{\"a\":1}", "{\"a\":-0}", "{\"a\":0,\"b\":-12,\"c\":123456789012}",
	"{\"max\":9223372036854775807,\"min\":-9223372036854775808}",
	"{\"r\":1.5,\"e\":1e3,\"E\":-2.5E-3}",
	"{\"t\":true,\"f\":false,\"n\":null}",
	"{\"long\":1.2345678901234567890123456789012345678901234567890123456789012345678901e2}",
	"{\"s\":\"plain\",\"u\":\"caf\xc3\xa9 \xe5\x8c\x97\xe4\xba\xac\"}",
	"{\"esc\":\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t\"}",
	"{\"uni\":\"\\u00e9\\u4eac\\ud83d\\ude00\\u0041\"}",
	"{\"k\\u0065y\":\"v\",\"\":\"empty key\",\"e\":\"\"}",
	"{\"o\":{\"x\":[1,2,{\"y\":null}]},\"a\":[],\"z\":\"after\"}",
	"{ \"sp\" : 1 ,\n\t\"nl\" :\r\n\"x\" }",
	"{\"name\":\"Customer 7 Trading Co.\",\"credit_limit\":1500000,"
	"\"created_at\":\"2026-11-22T09:00:00Z\",\"lat\":31230416}",
	/* malformed */
	"", "[]", "\"s\"", "1", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}",
	"{,\"a\":1}", "{\"a\":1 \"b\":2}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}",
	"{\"a\":-}", "{\"a\":1e}", "{\"a\":+1}", "{\"a\":tru}", "{\"a\":nul}",
	"{\"a\":\"x}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\uZZZZ\"}",
	"{\"a\":\"tab\there\"}", "{\"a\":1} x", "{\"a\":[1,2}", "{\"a\":{\"b\":1]}",
	"{a:1}", "{'a':1}", "{\"a\":1}}", "{\"a\":[1,]}",
	NULL
};

static void test_against_sqlite(void)
{
	sqlite3 *db;
	size_t i;

	CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
	for (i = 0; cases[i]; i++) {
		int rc, valid;
		char *a = ours(cases[i], &rc), *b = sqlites(db, cases[i], &valid);
		if ((rc == 0) != valid)
			fprintf(stderr, "case %zu %s: ours rc=%d, sqlite valid=%d\n",
			        i, cases[i], rc, valid);
		CHECK((rc == 0) == valid);
		CHECK(rc == 0 || rc == FS_ECORRUPT);
		if (rc == 0 && valid)
			CHECK_STR(a, b);
		free(a);
		free(b);
	}
	sqlite3_close(db);
}

static void test_scalar(void)
{
	static const char *ok[] = { "\"x\"", "12", "-3.5", "true", "false", "null" };
	fs_json_member m;
	fs_buf t;
	fs_err e;
	size_t i;

	fs_buf_init(&t, 0);
	for (i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		const char *p = ok[i];
		CHECK(fs_json__scalar(&m, &p, ok[i] + strlen(ok[i]), &t, &e) == 0);
		CHECK(p == ok[i] + strlen(ok[i]));
	}
	{
		const char *p = "\"a\\nb\"";
		CHECK(fs_json__scalar(&m, &p, p + 6, &t, &e) == 0);
		CHECK(m.type == FS_JSON_TEXT && m.vlen == 3 && !memcmp(m.val, "a\nb", 3));
		CHECK(m.copied);
	}
	{
		const char *p = "nope";
		CHECK(fs_json__scalar(&m, &p, p + 4, &t, &e) == FS_ECORRUPT);
		CHECK(strstr(e.msg, "byte 0") != NULL);
	}
	fs_buf_free(&t);
}

/* Past int64 a number is a real (SQLite 3.40 clamps it to the largest
** integer instead: we do not copy that). */
static void test_big(void)
{
	int rc;
	char *a = ours("{\"big\":9223372036854775808}", &rc);

	CHECK(rc == 0);
	CHECK_STR(a, "big=real:9.2233720368547758e+18;");
	free(a);
}

/* A callback's non-zero return stops the walk and comes back. */
static int stop_at_b(void *payload, const fs_json_member *m)
{
	(*(int *)payload)++;
	return m->klen == 1 && m->key[0] == 'b' ? 7 : 0;
}

static void test_stop(void)
{
	const char *j = "{\"a\":1,\"b\":2,\"c\":3}";
	int n = 0;
	fs_err e;

	CHECK(fs_json__object_each(j, strlen(j), stop_at_b, &n, &e) == 7);
	CHECK(n == 2);
}

int main(void)
{
	test_against_sqlite();
	test_scalar();
	test_big();
	test_stop();
	return CHECK_EXIT();
}
