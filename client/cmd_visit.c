/*
** cmd_visit.c -- `visit log`: record a call report in one command.
*/
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int cmd_visit_log(cli *c, int argc, char **argv)
{
	char id[FS_ID_SIZE], now[32], user[128] = "";
	char *u = NULL;
	fs_field *f;
	time_t t = time(NULL);
	struct tm tm;
	size_t n;
	int rc, has;
	cli_opts o;

	if (cli_parse(&o, argc, argv, NULL) < 0)
		return EXIT_USAGE;
	if (o.npos) {
		rc = cli_usage("visit log: unexpected argument '%s'", o.pos[0]);
		goto done;
	}
	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (fs_replica_setting_get(&u, c->r, "user") == 0 && u)
		snprintf(user, sizeof(user), "%s", u);
	fs_free(u);
	/* Fill what a completed visit needs unless the rep gave it. */
	f = realloc(o.fields, (o.n + 5) * sizeof(*f));
	if (!f) {
		rc = cli_error("out of memory");
		goto done;
	}
	o.fields = f;
	n = o.n;
	cli_take(&o, "status", &has);
	if (has) {
		rc = cli_usage("visit log records a completed visit; use visit add "
		               "or visit edit to set a status");
		goto done;
	}
	f[o.n].name = "status";
	f[o.n++].value = "completed";
	(void)n;
	{
		const char *names[] = { "started_at", "ended_at", "rep" };
		const char *vals[] = { now, now, user[0] ? user : NULL };
		size_t i, j;
		for (i = 0; i < 3; i++) {
			int given = 0;
			for (j = 0; j < o.n; j++)
				given |= !strcmp(o.fields[j].name, names[i]);
			if (!given && vals[i]) {
				f[o.n].name = names[i];
				f[o.n++].value = vals[i];
			}
		}
	}
	if ((rc = fs_record_insert(id, c->r, "visit", o.fields, o.n)) < 0) {
		rc = cli_fail(c, rc);
		goto done;
	}
	rc = c->json ? cli_show(c, "visit", id) : (printf("%s\n", id), EXIT_OK);
done:
	cli_opts_free(&o);
	return rc;
}
