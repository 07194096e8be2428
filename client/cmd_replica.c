/*
** cmd_replica.c -- commands about the replica itself: init, status,
** changes (the pending change log) and dump.
*/
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"

int cmd_init(cli *c, int argc, char **argv)
{
	static const char *bools[] = { "discard-unsynced", NULL };
	const char *user, *server, *enroll;
	int rc, discard = 0;
	cli_opts o;

	if (cli_parse(&o, argc, argv, bools) < 0)
		return EXIT_USAGE;
	user = cli_take(&o, "user", NULL);
	server = cli_take(&o, "server", NULL);
	enroll = cli_take(&o, "enroll", NULL);
	cli_take(&o, "discard-unsynced", &discard);
	if (o.npos || o.n || (!server) != (!enroll) || (discard && !server)) {
		rc = cli_usage("init takes [--user NAME] [--server HOST:PORT "
		               "--enroll DIR [--discard-unsynced]]");
		goto done;
	}
	/* Discarding and enrolling commit together: bad enrolment files
	** leave the unsynced changes where they were. */
	if (discard && (rc = fs_replica_begin(c->r)) < 0) {
		rc = cli_fail(c, rc);
		goto done;
	}
	if (discard && (rc = fs_replica_discard_unsynced(c->r)) < 0) {
		fs_replica_rollback(c->r);
		rc = cli_fail(c, rc);
		goto done;
	}
	if (server && (rc = fs_replica_enroll(c->r, server, enroll)) < 0) {
		if (discard)
			fs_replica_rollback(c->r);
		rc = cli_fail(c, rc);
		goto done;
	}
	if (discard && (rc = fs_replica_commit(c->r)) < 0) {
		rc = cli_fail(c, rc);
		goto done;
	}
	if (user && (rc = fs_replica_setting_set(c->r, "user", user)) < 0) {
		rc = cli_fail(c, rc);
		goto done;
	}
	if (c->json)
		printf("{\"db\":");
	else
		printf("replica %s ready (device %s)\n", c->db,
		       fs_replica_device(c->r));
	if (c->json) {
		fs_buf b = FS_BUF_INIT;
		fs_json__str(&b, c->db);
		fs_buf_puts(&b, ",\"device\":");
		fs_json__str(&b, fs_replica_device(c->r));
		printf("%s}\n", b.ptr);
		fs_buf_free(&b);
	}
	rc = EXIT_OK;
done:
	cli_opts_free(&o);
	return rc;
}

static void json_setting(fs_buf *b, fs_replica *r, const char *key)
{
	char *v = NULL;

	if (fs_replica_setting_get(&v, r, key) == 0 && v)
		fs_json__str(b, v);
	else
		fs_buf_puts(b, "null");
	fs_free(v);
}

int cmd_status(cli *c, int argc, char **argv)
{
	fs_buf b = FS_BUF_INIT;
	int64_t n = 0;
	int rc;

	(void)argv;
	if (argc)
		return cli_usage("status takes no argument");
	if ((rc = fs_change_count(&n, c->r)) < 0)
		return cli_fail(c, rc);
	fs_buf_printf(&b, "{\"pending_changes\":%lld,\"device\":", (long long)n);
	fs_json__str(&b, fs_replica_device(c->r));
	fs_buf_puts(&b, ",\"user\":");
	json_setting(&b, c->r, "user");
	fs_buf_puts(&b, ",\"db\":");
	fs_json__str(&b, c->db);
	fs_buf_printf(&b, ",\"schema_version\":%d", fs_replica_schema_version(c->r));
	fs_buf_puts(&b, ",\"server\":");
	json_setting(&b, c->r, "server");
	fs_buf_puts(&b, ",\"last_sync\":");
	json_setting(&b, c->r, "last_sync");
	fs_buf_putc(&b, '}');
	if (b.failed) {
		fs_buf_free(&b);
		return cli_error("out of memory");
	}
	if (c->json) {
		printf("%s\n", b.ptr);
	} else {
		char *user = NULL, *server = NULL, *last = NULL;
		fs_replica_setting_get(&user, c->r, "user");
		fs_replica_setting_get(&server, c->r, "server");
		fs_replica_setting_get(&last, c->r, "last_sync");
		printf("replica          %s\n", c->db);
		printf("device           %s\n", fs_replica_device(c->r));
		printf("user             %s\n", user ? user : "(not set)");
		printf("schema version   %d\n", fs_replica_schema_version(c->r));
		printf("pending changes  %lld\n", (long long)n);
		printf("server           %s\n", server ? server : "(none)");
		printf("last sync        %s\n", last ? last : "never");
		fs_free(user);
		fs_free(server);
		fs_free(last);
	}
	fs_buf_free(&b);
	return EXIT_OK;
}

struct changes_ctx {
	int json;
	int first;
	fs_buf b;
};

static int print_change(const fs_change *ch, void *payload)
{
	struct changes_ctx *x = payload;
	char hlc[48];

	fs_hlc_format(hlc, sizeof(hlc), ch->hlc);
	if (!x->json) {
		printf("%6lld  %s  %-15s %s  %c %s%s%s\n", (long long)ch->seq, hlc,
		       ch->table, ch->id, ch->op, ch->column ? ch->column : "",
		       ch->column ? " = " : "", ch->value ? ch->value : "");
		return 0;
	}
	fs_buf_clear(&x->b);
	fs_buf_printf(&x->b, "%s{\"seq\":%lld,\"table\":", x->first ? "" : ",\n",
	              (long long)ch->seq);
	fs_json__str(&x->b, ch->table);
	fs_buf_puts(&x->b, ",\"id\":");
	fs_json__str(&x->b, ch->id);
	fs_buf_printf(&x->b, ",\"op\":\"%c\",\"column\":", ch->op);
	if (ch->column)
		fs_json__str(&x->b, ch->column);
	else
		fs_buf_puts(&x->b, "null");
	/* The value is stored as JSON text: embed it as JSON. */
	fs_buf_printf(&x->b, ",\"value\":%s,\"hlc\":%llu,\"hlc_text\":",
	              ch->value ? ch->value : "null",
	              (unsigned long long)ch->hlc);
	fs_json__str(&x->b, hlc);
	fs_buf_puts(&x->b, ",\"device\":");
	fs_json__str(&x->b, ch->device);
	fs_buf_putc(&x->b, '}');
	if (x->b.failed)
		return -1;
	fputs(x->b.ptr, stdout);
	x->first = 0;
	return 0;
}

int cmd_changes(cli *c, int argc, char **argv)
{
	struct changes_ctx x = { c->json, 1, FS_BUF_INIT };
	int rc;

	(void)argv;
	if (argc)
		return cli_usage("changes takes no argument");
	if (c->json)
		printf("[");
	rc = fs_change_foreach(c->r, print_change, &x);
	if (c->json)
		printf("]\n");
	fs_buf_free(&x.b);
	if (rc < 0)
		return fs_replica_errmsg(c->r)[0] ? cli_fail(c, rc)
		                                  : cli_error("out of memory");
	return EXIT_OK;
}

static int print_dump_line(const char *json, void *payload)
{
	(void)payload;
	return puts(json) < 0 ? -1 : 0;
}

int cmd_dump(cli *c, int argc, char **argv)
{
	int rc;

	(void)argv;
	if (argc)
		return cli_usage("dump takes no argument");
	if ((rc = fs_replica_dump(c->r, print_dump_line, NULL)) < 0)
		return fs_replica_errmsg(c->r)[0] ? cli_fail(c, rc)
		                                  : cli_error("writing the dump failed");
	return EXIT_OK;
}
