/*
** fuzz_json.c -- fuzz target: record JSON from a peer (sync/json_read.c),
** and the escaping writer round trip (sync/json.c).
**
** Every member a successful walk reports is re-encoded and must read back
** to the same bytes.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int roundtrip(void *payload, const fs_json_member *m)
{
	fs_buf b, t;
	fs_json_member back;
	const char *p;
	fs_err e;

	(void)payload;
	if (m->type != FS_JSON_TEXT)
		return 0;
	fs_buf_init(&b, 0);
	fs_buf_init(&t, 0);
	fs_json__strn(&b, m->val, m->vlen);
	p = b.ptr;
	if (b.failed || fs_json__scalar(&back, &p, b.ptr + b.len, &t, &e) != 0 ||
	    back.type != FS_JSON_TEXT || back.vlen != m->vlen ||
	    memcmp(back.val, m->val, m->vlen) != 0)
		abort();   /* the writer and the reader disagree */
	fs_buf_free(&b);
	fs_buf_free(&t);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fs_buf scratch;
	fs_json_member m;
	const char *p = (const char *)data;
	fs_err e;

	(void)fs_json__object_each((const char *)data, size, roundtrip, NULL, &e);
	fs_buf_init(&scratch, 0);
	(void)fs_json__scalar(&m, &p, (const char *)data + size, &scratch, &e);
	fs_buf_free(&scratch);
	return 0;
}
