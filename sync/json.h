/*
** json.h -- writing JSON text (json.c), and reading the members of a flat
** object in one pass (json_read.c).
**
** Reading mostly goes through SQLite's json_each() and json_extract(),
** which the library already links; fs_json__object_each() exists for the
** hot path of applying records (json_read.c says why).  The string form is
** canonical (the same bytes for the same string), which `dump` relies on:
** '"' and '\' and control characters are escaped (\n \r \t \b \f, others as
** \u00XX); every other byte, UTF-8 included, is written as is.
*/
#ifndef FS_JSON_H
#define FS_JSON_H

#include <stdint.h>

#include "buf.h"
#include "err.h"

int fs_json__str(fs_buf *b, const char *s);

typedef enum fs_json_type {
	FS_JSON_NULL,
	FS_JSON_INT,     /* also true (1) and false (0), as json_extract() */
	FS_JSON_REAL,
	FS_JSON_TEXT,    /* val/vlen: the unescaped UTF-8 */
	FS_JSON_NESTED   /* val/vlen: the object or array's JSON text */
} fs_json_type;

typedef struct fs_json_member {
	const char *key;     /* unescaped; NOT NUL-terminated: use klen */
	size_t klen;
	fs_json_type type;
	const char *val;     /* TEXT (unescaped; not NUL-terminated), NESTED;
	                     ** for numbers their source text */
	size_t vlen;
	int copied;          /* TEXT: val is in the scratch buffer, which the
	                     ** next member reuses; else it points into the
	                     ** input and lives as long as it */
	int64_t i;           /* INT */
	double d;            /* REAL */
} fs_json_member;

/* Called for each member in order; the member's pointers are valid only
** during the call.  A non-zero return stops the walk and is returned. */
typedef int (*fs_json_member_cb)(void *payload, const fs_json_member *m);

/* Walks the object json[0..len).  0, the callback's non-zero return, or
** FS_ECORRUPT (message with the byte offset) on malformed JSON. */
int fs_json__object_each(const char *json, size_t len, fs_json_member_cb cb,
                         void *payload, fs_err *e);

/* One scalar value (string, number, true, false, null) at *pp; advances
** *pp past it.  Strings are unescaped into text. */
int fs_json__scalar(fs_json_member *out, const char **pp, const char *end,
                    fs_buf *text, fs_err *e);
int fs_json__strn(fs_buf *b, const char *s, size_t n);

/* A scalar member's value as malloc'd text, as json_extract() gives it
** (numbers as written, true/false as 1/0); NULL for null, and with
** *oom set when memory ran out. */
char *fs_json__member_text(const fs_json_member *m, int *oom);

#endif
