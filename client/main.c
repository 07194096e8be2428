/*
** main.c -- `fieldsync`, the rep's command line.  Parses the global
** options, opens the replica and hands over to the cmd_*.c files.
*/
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
"usage: fieldsync [--db PATH] [--json] COMMAND [ARGS...]\n"
"\n"
"The replica is the SQLite file named by --db PATH, else by FIELDSYNC_DB;\n"
"it is created on first use.\n"
"\n"
"Records (NOUN: customer contact product price_list price_list_item visit\n"
"         opportunity quote quote_line order order_line payment):\n"
"  NOUN add --FIELD VALUE...          create; prints the id (--json: the record)\n"
"  NOUN edit ID --FIELD VALUE...      change fields (\"\" clears a field)\n"
"  NOUN delete ID\n"
"  NOUN show ID\n"
"  NOUN list [--search TEXT] [--FIELD VALUE]... [--limit N]\n"
"  NOUN import FILE.csv               all-or-nothing; a known id updates\n"
"  NOUN export --csv [--out FILE]\n"
"\n"
"Sales:\n"
"  quote new --customer ID --line SKU:QTY[:UNIT_PRICE]... [--FIELD VALUE]...\n"
"  order new --customer ID --line SKU:QTY[:UNIT_PRICE]... [--override-credit]\n"
"  order from-quote QUOTE_ID [--override-credit]\n"
"  order submit|confirm|ship|invoice|cancel ID [--override-credit]\n"
"  visit log --customer ID [--contact ID] [--purpose T] [--outcome T]\n"
"            [--next_step T] [--next_step_due DATE] [--FIELD VALUE]...\n"
"\n"
"Customers:\n"
"  customer copy ID\n"
"  customer merge KEEP_ID DUPLICATE_ID\n"
"\n"
"Sync:\n"
"  init --server HOST:PORT --enroll DIR   point the replica at a server with\n"
"                                     the files `fieldsync-admin device enroll` wrote;\n"
"                                     --discard-unsynced drops pending changes (needed\n"
"                                     to enrol as another user while some are pending)\n"
"  sync                               push local changes, pull everyone else's\n"
"  conflicts [--all]                  concurrent edits the server settled\n"
"  conflicts resolve ID --keep mine|theirs|winner|loser|VALUE\n"
"  rejections                         local changes the server refused\n"
"\n"
"Replica:\n"
"  init [--user NAME]                 create the replica, set the rep's name\n"
"  status                             pending changes, device, schema version\n"
"  changes                            the pending change log, oldest first\n"
"  dump                               every record as canonical JSON lines\n"
"\n"
"Options:\n"
"  --db PATH       the replica file (default: $FIELDSYNC_DB)\n"
"  --json          machine-readable output\n"
"  --help          this text;  --version  the version\n"
"\n"
"Field values: money 1234.56, quantity 2.5, percent 13, date 2026-11-22,\n"
"time 2026-11-22T09:30:00Z, boolean true/false.  Exit codes: 0 ok, 1 error,\n"
"2 usage, 3 refused by the credit limit, 4 database from a newer version,\n"
"5 sync finished but the server refused some changes.\n"
"See docs/cli.md for the details.\n";

struct noun_check {
	const char *want;
	int found;
};

static int noun_cb(const char *noun, const char *table, void *payload)
{
	struct noun_check *c = payload;

	if (!strcmp(noun, c->want) || !strcmp(table, c->want))
		c->found = 1;
	return 0;
}

/* Whether a word is an entity of this program's schema, asked of a
** scratch in-memory replica so that a typo never creates a file. */
static int is_noun(const char *word)
{
	struct noun_check c = { word, 0 };
	fs_replica *r = NULL;

	if (fs_replica_open(&r, ":memory:", NULL) == 0)
		fs_entity_foreach(r, noun_cb, &c);
	fs_replica_close(r);
	return c.found;
}

static int dispatch(cli *c)
{
	const char *cmd = c->argv[0];
	int argc = c->argc - 1;
	char **argv = c->argv + 1;
	const char *verb = argc > 0 ? argv[0] : "";
	int rc;

	if (!strcmp(cmd, "help"))
		return fputs(usage_text, stdout), EXIT_OK;
	if (strcmp(cmd, "init") && strcmp(cmd, "status") &&
	    strcmp(cmd, "changes") && strcmp(cmd, "dump") &&
	    strcmp(cmd, "sync") && strcmp(cmd, "conflicts") &&
	    strcmp(cmd, "rejections") && !is_noun(cmd))
		return cli_usage("unknown command '%s'", cmd);
	if ((rc = cli_open(c)) != 0)
		return rc;
	if (!strcmp(cmd, "init"))
		return cmd_init(c, argc, argv);
	if (!strcmp(cmd, "status"))
		return cmd_status(c, argc, argv);
	if (!strcmp(cmd, "changes"))
		return cmd_changes(c, argc, argv);
	if (!strcmp(cmd, "dump"))
		return cmd_dump(c, argc, argv);
	if (!strcmp(cmd, "sync"))
		return cmd_sync(c, argc, argv);
	if (!strcmp(cmd, "conflicts"))
		return cmd_conflicts(c, argc, argv);
	if (!strcmp(cmd, "rejections"))
		return cmd_rejections(c, argc, argv);
	if (!strcmp(verb, "import"))
		return cmd_import(c, cmd, argc - 1, argv + 1);
	if (!strcmp(verb, "export"))
		return cmd_export(c, cmd, argc - 1, argv + 1);
	if (!strcmp(cmd, "customer") && !strcmp(verb, "copy"))
		return cmd_customer_copy(c, argc - 1, argv + 1);
	if (!strcmp(cmd, "customer") && !strcmp(verb, "merge"))
		return cmd_customer_merge(c, argc - 1, argv + 1);
	if (!strcmp(cmd, "quote") && !strcmp(verb, "new"))
		return cmd_quote_new(c, argc - 1, argv + 1);
	if (!strcmp(cmd, "visit") && !strcmp(verb, "log"))
		return cmd_visit_log(c, argc - 1, argv + 1);
	if ((!strcmp(cmd, "order") || !strcmp(cmd, "sales_order")) &&
	    (!strcmp(verb, "new") || !strcmp(verb, "from-quote") ||
	     !strcmp(verb, "submit") || !strcmp(verb, "confirm") ||
	     !strcmp(verb, "ship") || !strcmp(verb, "invoice") ||
	     !strcmp(verb, "cancel")))
		return cmd_order(c, verb, argc - 1, argv + 1);
	return cmd_record(c, cmd, argc, argv);
}

int main(int argc, char **argv)
{
	cli c;
	char **rest;
	int i, n = 0, rc;

	memset(&c, 0, sizeof(c));
	c.db = getenv("FIELDSYNC_DB");
	rest = calloc((size_t)argc + 1, sizeof(*rest));
	if (!rest)
		return cli_error("out of memory");
	/* Global options may stand anywhere on the line. */
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--db")) {
			if (i + 1 >= argc) {
				free(rest);
				return cli_usage("--db needs a path");
			}
			c.db = argv[++i];
		} else if (!strncmp(argv[i], "--db=", 5)) {
			c.db = argv[i] + 5;
		} else if (!strcmp(argv[i], "--json")) {
			c.json = 1;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage_text, stdout);
			free(rest);
			return EXIT_OK;
		} else if (!strcmp(argv[i], "--version")) {
			printf("fieldsync %s (schema %d)\n", FS_VERSION,
			       fs_schema_version_latest());
			free(rest);
			return EXIT_OK;
		} else {
			rest[n++] = argv[i];
		}
	}
	if (n == 0) {
		fputs(usage_text, stderr);
		free(rest);
		return EXIT_USAGE;
	}
	c.argc = n;
	c.argv = rest;
	rc = dispatch(&c);
	fs_replica_close(c.r);
	free(rest);
	if (fflush(stdout) != 0 && rc == EXIT_OK)
		rc = cli_error("writing output failed");
	return rc;
}
