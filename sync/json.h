/*
** json.h -- writing JSON text.
**
** Only writing lives here; reading JSON goes through SQLite's json_each()
** and json_extract(), which the library already links.  The string form is
** canonical (the same bytes for the same string), which `dump` relies on:
** '"' and '\' and control characters are escaped (\n \r \t \b \f, others as
** \u00XX); every other byte, UTF-8 included, is written as is.
*/
#ifndef FS_JSON_H
#define FS_JSON_H

#include "buf.h"

int fs_json__str(fs_buf *b, const char *s);
int fs_json__strn(fs_buf *b, const char *s, size_t n);

#endif
