/*
** conf.h -- reading DIR/fieldsync.conf, the server directory's settings:
** "key = value" lines, '#' comments.  Both fieldsyncd and fieldsync-admin
** read it.
*/
#ifndef FS_CONF_H
#define FS_CONF_H

#include <stddef.h>

/* The value of key in DIR/fieldsync.conf into out: 1 found, 0 not there
** (or no file; out untouched). */
int fs_conf__get(const char *dir, const char *key, char *out, size_t size);

#endif
