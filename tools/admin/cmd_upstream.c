/*
** cmd_upstream.c -- `fieldsync-admin upstream status`: a regional
** server's link to head office (docs/tiers.md), as fieldsyncd --upstream
** records it in fs_upstream: the mode, when it last synced, the last
** error, and how many of this server's changes head office does not
** have yet.
*/
#include <stdio.h>
#include <string.h>

#include "../../client/replica_int.h"
#include "admin.h"
#include "store.h"

int admin_cmd_upstream(const char *dir, int argc, char **argv)
{
	fs_replica *r = NULL;
	sqlite3_stmt *st = NULL;
	int json = admin_has_flag(argc, argv, "--json"), rc = 1;

	if (argc < 1 || strcmp(argv[0], "status") ||
	    argc > 2 || (argc == 2 && !json))
		return admin_usage("upstream status [--json]%s", "");
	if (admin_open_db(&r, dir, 0))
		return 1;
	/* Pending: what fs_store__relay_batch() would still send. */
	if (fs_replica__prepare(&st, r,
	        "SELECT json_object('server', server, 'device', device, "
	        "'mode', mode, 'syncs', syncs, 'last_sync', last_sync, "
	        "'last_error', last_error, 'cursor', cursor, 'bootstrapped', "
	        "bootstrapped, 'pending', pending), server, mode, syncs, "
	        "coalesce(last_sync, 'never'), last_error, pending, cursor FROM "
	        "(SELECT *, (SELECT count(*) FROM fs_log l WHERE l.seq > u.pushed "
	        "AND " FS_STORE_RELAYED ") AS pending FROM fs_upstream u "
	        "WHERE id = 1)") < 0) {
		rc = admin_fail("%s%s", fs_replica_errmsg(r), "");
		goto done;
	}
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = admin_fail("this server has no upstream (a regional server is "
		                "started with fieldsyncd --upstream HOST:PORT "
		                "--enroll DIR%s%s)", "", "");
		goto done;
	}
	if (json) {
		printf("%s\n", (const char *)sqlite3_column_text(st, 0));
	} else {
		printf("head office:   %s\n", (const char *)sqlite3_column_text(st, 1));
		printf("mode:          %s\n", (const char *)sqlite3_column_text(st, 2));
		printf("syncs:         %d\n", sqlite3_column_int(st, 3));
		printf("last sync:     %s\n", (const char *)sqlite3_column_text(st, 4));
		if (sqlite3_column_type(st, 5) != SQLITE_NULL)
			printf("last error:    %s\n",
			       (const char *)sqlite3_column_text(st, 5));
		printf("not yet there: %lld change(s)\n",
		       (long long)sqlite3_column_int64(st, 6));
		printf("pulled up to:  %lld (head office's log)\n",
		       (long long)sqlite3_column_int64(st, 7));
	}
	rc = 0;
done:
	fs_replica__finish(r, st);
	fs_replica_close(r);
	return rc;
}
