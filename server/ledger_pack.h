/*
** ledger_pack.h -- the ledger's in-memory object store for big commits,
** written out as one pack (ledger_pack.c says why and the pack format).
*/
#ifndef FS_LEDGER_PACK_H
#define FS_LEDGER_PACK_H

#include <git2.h>

#include "err.h"
#include "fieldsync.h"

/* A new, empty store: add it to an odb with git_odb_add_backend (which
** then owns it).  0 or -1 (out of memory). */
int fs_ledger__mem_new(git_odb_backend **out);

/* Hashes data as an object of type and stores it (no lookup elsewhere).
** 0 or -1. */
int fs_ledger__mem_put(git_oid *out, git_odb_backend *b, const void *data,
                       size_t len, git_object_t type);

/* Objects held. */
size_t fs_ledger__mem_count(git_odb_backend *b);

/* Writes every object held as one pack into target, then empties the
** store (also on failure).  0 or <0 with e set. */
int fs_ledger__mem_flush(git_odb_backend *b, git_odb *target, fs_err *e);

#endif
