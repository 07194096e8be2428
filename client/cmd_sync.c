/*
** cmd_sync.c -- `sync`, `conflicts` and `rejections`: talking to the
** server and reviewing what it decided.
*/
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct bar {
	int tty;
	const char *last_phase;
	uint64_t last_done;
};

/* A progress bar on a terminal, plain lines otherwise (every 10k). */
static int on_progress(const char *phase, uint64_t done, uint64_t total,
                       void *payload)
{
	struct bar *b = payload;

	if (b->tty) {
		if (total) {
			int width = 30, fill = (int)(done * (uint64_t)width / total);
			fprintf(stderr, "\r%-8s [%.*s%*s] %llu/%llu", phase, fill,
			        "##############################", width - fill, "",
			        (unsigned long long)done, (unsigned long long)total);
		} else {
			fprintf(stderr, "\r%-8s %llu", phase, (unsigned long long)done);
		}
		b->last_phase = phase;
		return 0;
	}
	if (!b->last_phase || strcmp(b->last_phase, phase) ||
	    done >= b->last_done + 10000) {
		if (total)
			fprintf(stderr, "%s: %llu/%llu\n", phase,
			        (unsigned long long)done, (unsigned long long)total);
		else
			fprintf(stderr, "%s: %llu\n", phase, (unsigned long long)done);
		b->last_phase = phase;
		b->last_done = done;
	}
	return 0;
}

int cmd_sync(cli *c, int argc, char **argv)
{
	fs_sync_options o = FS_SYNC_OPTIONS_INIT;
	fs_sync_stats st;
	struct bar b = { 0, NULL, 0 };
	int rc;

	(void)argv;
	if (argc)
		return cli_usage("sync takes no argument");
	b.tty = isatty(2);
	o.progress = on_progress;
	o.payload = &b;
	rc = fs_replica_sync(c->r, &st, &o);
	if (b.tty && b.last_phase)
		fputc('\n', stderr);
	if (c->json)
		printf("{\"ok\":%s,\"pushed\":%llu,\"pulled\":%llu,\"conflicts\":%llu,"
		       "\"rejected\":%llu,\"snapshot\":%s,\"bytes_out\":%llu,"
		       "\"bytes_in\":%llu}\n", rc == 0 ? "true" : "false",
		       (unsigned long long)st.pushed, (unsigned long long)st.pulled,
		       (unsigned long long)st.conflicts,
		       (unsigned long long)st.rejected,
		       st.snapshot ? "true" : "false",
		       (unsigned long long)st.bytes_out,
		       (unsigned long long)st.bytes_in);
	else if (rc == 0)
		printf("synced: %llu pushed, %llu pulled%s, %llu bytes out, "
		       "%llu bytes in\n", (unsigned long long)st.pushed,
		       (unsigned long long)st.pulled,
		       st.snapshot ? " (snapshot)" : "",
		       (unsigned long long)st.bytes_out,
		       (unsigned long long)st.bytes_in);
	if (rc < 0) {
		int code = cli_fail(c, rc);
		return rc == FS_ECONFLICT && st.rejected ? EXIT_REJECTED : code;
	}
	return EXIT_OK;
}

struct lst {
	int json;
	int first;
	int n;
};

static int print_item(const char *json, void *payload)
{
	struct lst *l = payload;

	if (l->json)
		printf("%s%s", l->first ? "" : ",\n", json);
	else
		cli_print_record(json), printf("\n");
	l->first = 0;
	l->n++;
	return 0;
}

int cmd_conflicts(cli *c, int argc, char **argv)
{
	static const char *bools[] = { "all", NULL };
	struct lst l = { c->json, 1, 0 };
	cli_opts o;
	int rc, all = 0;

	if (cli_parse(&o, argc, argv, bools) < 0)
		return EXIT_USAGE;
	cli_take(&o, "all", &all);
	if (o.npos >= 1 && !strcmp(o.pos[0], "resolve")) {
		const char *keep = cli_take(&o, "keep", NULL);
		char *end;
		long long id;

		if (o.npos != 2 || !keep || o.n) {
			rc = cli_usage("conflicts resolve ID --keep mine|theirs|winner|"
			               "loser|VALUE");
			goto done;
		}
		id = strtoll(o.pos[1], &end, 10);
		if (*end || id <= 0) {
			rc = cli_usage("conflict ids are numbers, not '%s'", o.pos[1]);
			goto done;
		}
		rc = fs_conflict_resolve(c->r, id, keep);
		rc = rc < 0 ? cli_fail(c, rc) : EXIT_OK;
		goto done;
	}
	if (o.npos || o.n) {
		rc = cli_usage("conflicts [--all] [--json] | conflicts resolve ID "
		               "--keep ...");
		goto done;
	}
	if (c->json)
		printf("[");
	rc = fs_conflict_list(c->r, all, print_item, &l);
	if (c->json)
		printf("]\n");
	else if (rc == 0 && l.n == 0)
		printf("no %sconflicts\n", all ? "" : "open ");
	rc = rc < 0 ? cli_fail(c, rc) : EXIT_OK;
done:
	cli_opts_free(&o);
	return rc;
}

int cmd_rejections(cli *c, int argc, char **argv)
{
	struct lst l = { c->json, 1, 0 };
	int rc;

	(void)argv;
	if (argc)
		return cli_usage("rejections takes no argument");
	if (c->json)
		printf("[");
	rc = fs_rejection_list(c->r, print_item, &l);
	if (c->json)
		printf("]\n");
	else if (rc == 0 && l.n == 0)
		printf("no rejected changes\n");
	return rc < 0 ? cli_fail(c, rc) : EXIT_OK;
}
