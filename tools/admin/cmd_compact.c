/*
** cmd_compact.c -- `fieldsync-admin compact`: purge from the central
** database the history the ledger holds (server/compact.h says what goes
** and what bounds it; docs/ledger.md, "Compaction").
**
** Settings: --older-than DAYS (fieldsync.conf compact_older_than_days,
** default 30) and --active-days DAYS (compact_active_days, default 90: a
** device not seen for longer does not hold compaction back and will
** bootstrap again).  Without a ledger there is no history to keep, so the
** command refuses unless --force.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../client/replica_int.h"
#include "admin.h"
#include "compact.h"
#include "conf.h"
#include "ledger.h"

#define DAY_MS (86400LL * 1000)

/* A whole number of days from the option or the setting. */
static int days(int64_t *out, int argc, char **argv, const char *dir,
                const char *option, const char *key, int64_t dflt)
{
	const char *v = admin_opt(argc, argv, option);
	char conf[64], *end;
	long long n;

	*out = dflt;
	if (!v && fs_conf__get(dir, key, conf, sizeof(conf)))
		v = conf;
	if (!v)
		return 0;
	n = strtoll(v, &end, 10);
	if (end == v || *end || n < 0 || n > 100000)
		return admin_usage("%s: a number of days (0 or more)", option);
	*out = n;
	return 0;
}

int admin_cmd_compact(const char *dir, int argc, char **argv)
{
	fs_compact_options o;
	fs_compact_result res;
	fs_ledger_options lo = FS_LEDGER_OPTIONS_INIT;
	fs_ledger *l = NULL;
	fs_replica *r = NULL;
	int64_t older, active;
	char path[1200];
	fs_err e;
	int i, rc;

	memset(&o, 0, sizeof(o));
	memset(&e, 0, sizeof(e));
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--older-than") || !strcmp(a, "--active-days")) {
			if (i + 1 == argc)
				return admin_usage("%s needs a number of days", a);
			i++;
		} else if (strcmp(a, "--force") && strcmp(a, "--dry-run")) {
			return admin_usage("compact: unknown option '%s'", a);
		}
	}
	if ((rc = days(&older, argc, argv, dir, "--older-than",
	               "compact_older_than_days", 30)) != 0 ||
	    (rc = days(&active, argc, argv, dir, "--active-days",
	               "compact_active_days", 90)) != 0)
		return rc;
	o.older_than_ms = older * DAY_MS;
	o.active_ms = active * DAY_MS;
	o.force = admin_has_flag(argc, argv, "--force");
	o.dry_run = admin_has_flag(argc, argv, "--dry-run");
	/* The ledger's mark: nothing it has not written may go. */
	snprintf(path, sizeof(path), "%s/" FS_LEDGER_DIR, dir);
	rc = fs_ledger_open(&l, path, NULL, &lo, &e);
	if (rc == FS_ENOTFOUND && !o.force)
		return admin_fail("%s has no ledger: compacting would destroy the "
		                  "only history (start one with fieldsync-admin "
		                  "ledger init, or give --force)", dir, "");
	if (rc < 0 && rc != FS_ENOTFOUND)
		return admin_fail("%s%s", e.msg, "");
	o.ledger_mark = l ? fs_ledger_mark(l) : -1;
	fs_ledger_free(l);
	if (admin_open_db(&r, dir, 0))
		return 1;
	if (fs_compact(r, &o, &res) < 0) {
		rc = admin_fail("compacting: %s%s", fs_replica_errmsg(r), "");
		fs_replica_close(r);
		return rc;
	}
	fs_replica_close(r);
	printf("%s: log entries below seq %lld (the log ends at %lld; %s)\n",
	       o.dry_run ? "would purge" : "purged", (long long)res.horizon,
	       (long long)res.log_end, res.limit);
	printf("  %lld log entries, %lld deleted records' clocks (%lld rows), "
	       "%lld moves", (long long)res.log_rows, (long long)res.tombstones,
	       (long long)res.clock_rows, (long long)res.moves);
	if (!o.dry_run)
		printf(", %lld batch records", (long long)res.batches);
	printf("\n");
	return 0;
}
