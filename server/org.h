/*
** org.h -- the organisation (departments, users and their scopes) in the
** ledger, so that an audit shows who was given access to what, when, and
** a restore brings the organisation back (docs/ledger.md).
**
** Admin commands that change it append a marker row to the change log
** (tbl 'fs_org', op 'U' with no clock: pulls never send it); the ledger
** writer, meeting one, rewrites the files below from the database.
*/
#ifndef FS_ORG_H
#define FS_ORG_H

#include "fieldsync.h"

#define FS_ORG_TABLE "fs_org"
#define FS_ORG_DEPTS "org/departments.json"
#define FS_ORG_USERS "org/users.json"

/* The two files' text (malloc'd): JSON arrays, one element per line,
** sorted by code / name. */
int fs_org__json(char **depts, char **users, fs_replica *r);

/* Appends the marker of an organisation change (what: e.g. "user add
** alice") to the log, inside the caller's transaction. */
int fs_org__logged(fs_replica *r, const char *what);

/* Inserts the departments and users of the two files' text (a restore);
** *ndepts and *nusers receive the counts. */
int fs_org__restore(fs_replica *r, const char *depts, const char *users,
                    int *ndepts, int *nusers);

/* At a regional server: makes fs_dept hold head office's departments
** (depts: the JSON array fs_org__json writes), in one transaction.
** Local departments head office does not know are kept.  *changed: how
** many were added or changed; when a parent changed, every device
** bootstraps again (their scopes' subtrees may have changed). */
int fs_org__depts_mirror(fs_replica *r, const char *depts, int *changed);

#endif
