/*
** admin.h -- what the files of `fieldsync-admin` share: messages, options,
** opening a server directory, and the commands that live in cmd_*.c.
** Every command returns the process exit code: 0 ok, 1 error, 2 usage.
*/
#ifndef FS_ADMIN_H
#define FS_ADMIN_H

#include "fieldsync.h"

/* Print "fieldsync-admin: " + the formatted message; return 2 / 1. */
int admin_usage(const char *fmt, const char *arg);
int admin_fail(const char *fmt, const char *a, const char *b);
/* Opens DIR/server.db (create: a new one).  0, or 1 after saying why. */
int admin_open_db(fs_replica **r, const char *dir, int create);
/* The value after option name, or NULL; whether flag name is present. */
const char *admin_opt(int argc, char **argv, const char *name);
int admin_has_flag(int argc, char **argv, const char *name);
/* `init`: a new server directory; ledger 0 leaves out DIR/ledger.git. */
int admin_init_dir(const char *dir, int argc, char **argv, int ledger);

int admin_cmd_history(const char *dir, int argc, char **argv);  /* cmd_history.c */
int admin_cmd_verify(const char *dir);                          /* cmd_verify.c */
int admin_cmd_restore(int argc, char **argv);                   /* cmd_restore.c */
int admin_cmd_ledger(const char *dir, int argc, char **argv);   /* cmd_restore.c */
int admin_cmd_user(const char *dir, int argc, char **argv);     /* cmd_org.c */
int admin_cmd_dept(const char *dir, int argc, char **argv);     /* cmd_org.c */
int admin_cmd_report(const char *dir, int argc, char **argv);   /* cmd_report.c */
int admin_cmd_compact(const char *dir, int argc, char **argv);  /* cmd_compact.c */
int admin_cmd_upstream(const char *dir, int argc, char **argv); /* cmd_upstream.c */

#endif
