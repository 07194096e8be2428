/*
** main.c -- `fieldsync-admin`, administration of a server directory:
** creating it (central database, company CA, server certificate, config),
** users, device enrolment and revocation, and the server's dump.  The
** ledger's commands (history, verify, restore) are in cmd_*.c.
**
** A server directory:
**   server.db        central database (schema/ migrations, WAL)
**   ledger.git       the ledger: every change, a bare git repository
**   ca.crt, ca.key   the company CA (key 0600): signs server and devices
**   server.crt/.key  the server's identity, for the names given at init
**   fieldsync.conf   settings (listen = HOST:PORT)
** An enrolment directory (device enroll --out DIR2), for one device:
**   ca.crt, device.crt, device.key (0600), device.conf (user, device id)
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../client/replica_int.h"
#include "admin.h"
#include "ledger.h"
#include "pki.h"
#include "policy.h"
#include "uuid.h"

#define usage admin_usage
#define fail admin_fail
#define open_db admin_open_db
#define opt admin_opt
#define has_flag admin_has_flag

static const char usage_text[] =
"usage: fieldsync-admin --dir DIR COMMAND [ARGS...]\n"
"\n"
"  init [--org NAME] [--listen HOST:PORT] [--host NAME]...\n"
"        create DIR: central database, company CA, server certificate for\n"
"        127.0.0.1, localhost and every --host, config (listen address)\n"
"\n"
"The organisation and scopes (docs/scopes.md):\n"
"  dept add CODE --name NAME [--parent CODE]\n"
"  dept set CODE [--name NAME] [--parent CODE|-]\n"
"  dept list [--json]          the department tree (head office, regions,\n"
"                              branches); a customer's region is a CODE\n"
"  user add NAME --role rep|manager|office|admin --region CODE[,CODE...]|*\n"
"        the user sees the customers of those departments and their\n"
"        subtrees ('*': the whole company; office and admin default to it)\n"
"  user set NAME [--role ROLE] [--region CODE[,CODE...]|*]\n"
"  user list [--json]\n"
"\n"
"Devices:\n"
"  device enroll USER --out DIR2 [--relay]\n"
"        issue a device certificate bound to USER; DIR2 receives what the\n"
"        client needs: fieldsync init --server HOST:PORT --enroll DIR2.\n"
"        --relay: the device is a regional server (docs/tiers.md); USER\n"
"        must be office or admin, and its scope is the region it holds\n"
"  device list [--json]\n"
"  device revoke DEVICE_ID     refuse that device from now on\n"
"  upstream status [--json]    a regional server's link to head office:\n"
"                              mode, last sync, last error, changes not yet\n"
"                              at head office (fieldsyncd --upstream)\n"
"  dump [--user NAME]          every live record, exactly as `fieldsync dump`\n"
"                              (--user, or --as: those in NAME's scope, as\n"
"                              NAME's replicas hold them)\n"
"\n"
"Head-office reports (docs/reports.md):\n"
"  report NAME [--region CODE] [--from DATE --to DATE] [--csv|--json]\n"
"        [--svg FILE] [--days N] [--as-of DATE]\n"
"        NAME: funnel, orders, abc, receivables, birthdays, credit.\n"
"        --svg (funnel, orders): a bar chart; --days N: receivables (overdue\n"
"        N days after the order, 30) and birthdays (the next N days, 30);\n"
"        --as-of DATE: abc, receivables, birthdays (default today, UTC)\n"
"\n"
"The ledger (DIR/ledger.git, a git repository of every change; docs/ledger.md):\n"
"  history TABLE ID [--json]   every version of a record, newest first: who,\n"
"                              from which device, when, fields old -> new\n"
"  verify                      the database and the ledger agree (exit 1 and\n"
"                              every difference if not)\n"
"  restore --ledger PATH --to NEWDIR [--as-of DATE|COMMIT]\n"
"        rebuild a server directory from a ledger alone, departments and\n"
"        users included (a new CA: enrol the devices again); DATE is\n"
"        YYYY-MM-DD[THH:MM:SS] (UTC): the ledger as it was then\n"
"  ledger init                 start a ledger for a server directory that has\n"
"                              none (its first commit is the current state)\n"
"  compact [--older-than DAYS] [--active-days DAYS] [--force] [--dry-run]\n"
"        purge from the database the history the ledger holds: log entries\n"
"        older than DAYS (30) that every device seen within --active-days\n"
"        (90) has pulled, and deleted records' clocks; defaults from\n"
"        fieldsync.conf compact_older_than_days / compact_active_days.\n"
"        --force: do not wait for devices (they bootstrap again)\n"
"\n"
"DIR may also come from the environment variable FIELDSYNC_DIR.\n"
"Exit codes: 0 ok, 1 error, 2 usage.\n";

int admin_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "fieldsync-admin: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see fieldsync-admin --help)\n");
	return 2;
}

int admin_fail(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "fieldsync-admin: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	return 1;
}

int admin_open_db(fs_replica **r, const char *dir, int create)
{
	char path[1200];

	snprintf(path, sizeof(path), "%s/server.db", dir);
	if (!create && access(path, F_OK) != 0)
		return fail("%s is not a server directory (no server.db; run "
		            "fieldsync-admin --dir %s init)", dir, dir);
	if (fs_replica__open_server(r, path, create) < 0)
		return fail("%s%s", fs_replica_errmsg(*r), "");
	return 0;
}

const char *admin_opt(int argc, char **argv, const char *name)
{
	int i;

	for (i = 0; i + 1 < argc; i++)
		if (!strcmp(argv[i], name))
			return argv[i + 1];
	return NULL;
}

int admin_has_flag(int argc, char **argv, const char *name)
{
	int i;

	for (i = 0; i < argc; i++)
		if (!strcmp(argv[i], name))
			return 1;
	return 0;
}

static int write_pem(const char *dir, const char *name, const char *text,
                     int mode)
{
	char path[1200];
	fs_err e;

	memset(&e, 0, sizeof(e));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (fs_pki__write_file(path, text, mode, &e) < 0)
		return fail("%s%s", e.msg, "");
	return 0;
}

int admin_init_dir(const char *dir, int argc, char **argv, int ledger)
{
	const char *org = opt(argc, argv, "--org");
	const char *listen = opt(argc, argv, "--listen");
	const char *san[34];
	fs_pki_cert ca, srv;
	fs_replica *r = NULL;
	char path[1200], conf[600];
	fs_err e;
	int i, n = 0, rc = 1;

	memset(&e, 0, sizeof(e));
	memset(&ca, 0, sizeof(ca));
	memset(&srv, 0, sizeof(srv));
	snprintf(path, sizeof(path), "%s/server.db", dir);
	if (access(path, F_OK) == 0)
		return fail("%s already holds a server (server.db exists); "
		            "refusing to overwrite it%s", dir, "");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return fail("cannot create %s: %s", dir, strerror(errno));
	san[n++] = "127.0.0.1";
	san[n++] = "localhost";
	for (i = 0; i + 1 < argc && n < 33; i++)
		if (!strcmp(argv[i], "--host"))
			san[n++] = argv[++i];
	san[n] = NULL;
	if (fs_pki__ca_create(&ca, org ? org : "Fieldsync", &e) < 0 ||
	    fs_pki__issue(&srv, ca.cert_pem, ca.key_pem, FS_PKI_SERVER,
	                  "fieldsyncd", "server", san, -300,
	                  5LL * 365 * 86400, &e) < 0) {
		rc = fail("%s%s", e.msg, "");
		goto done;
	}
	if (write_pem(dir, "ca.key", ca.key_pem, 0600) ||
	    write_pem(dir, "ca.crt", ca.cert_pem, 0644) ||
	    write_pem(dir, "server.key", srv.key_pem, 0600) ||
	    write_pem(dir, "server.crt", srv.cert_pem, 0644))
		goto done;
	snprintf(conf, sizeof(conf),
	         "# Fieldsync server settings (fieldsyncd --dir reads this).\n"
	         "listen = %s\n"
	         "# fieldsync-admin compact: purge log entries older than this\n"
	         "# many days, once every device seen within compact_active_days\n"
	         "# has pulled them (docs/ledger.md, Compaction).\n"
	         "compact_older_than_days = 30\n"
	         "compact_active_days = 90\n", listen ? listen : "127.0.0.1:7443");
	if (write_pem(dir, "fieldsync.conf", conf, 0644))
		goto done;
	if (open_db(&r, dir, 1))
		goto done;
	if (ledger) {
		fs_ledger_options lo = FS_LEDGER_OPTIONS_INIT;
		fs_ledger *l = NULL;

		lo.create = 1;
		snprintf(path, sizeof(path), "%s/" FS_LEDGER_DIR, dir);
		if (fs_ledger_open(&l, path, NULL, &lo, &e) < 0) {
			rc = fail("%s%s", e.msg, "");
			goto done;
		}
		fs_ledger_free(l);
	}
	printf("server directory %s ready: central database, company CA, "
	       "server certificate for", dir);
	for (i = 0; i < n; i++)
		printf(" %s", san[i]);
	printf("\n");
	rc = 0;
done:
	fs_replica_close(r);
	fs_pki__cert_free(&ca);
	fs_pki__cert_free(&srv);
	return rc;
}

static int cmd_device(const char *dir, int argc, char **argv)
{
	fs_replica *r = NULL;
	sqlite3_stmt *st = NULL;
	fs_pki_cert dev;
	char *ca_crt = NULL, *ca_key = NULL, path[1200];
	int rc = 1, json = has_flag(argc, argv, "--json");
	fs_err e;

	memset(&e, 0, sizeof(e));
	memset(&dev, 0, sizeof(dev));
	if (argc < 1)
		return usage("device needs enroll, list or revoke%s", "");
	if (open_db(&r, dir, 0))
		return 1;
	if (!strcmp(argv[0], "enroll")) {
		const char *out = opt(argc, argv, "--out");
		char id[FS_UUID_LEN + 1], now[24], conf[600];
		const char *user = argc >= 2 ? argv[1] : NULL;
		int relay = has_flag(argc, argv, "--relay");

		int k;

		for (k = 2; k < argc; k++) {
			if (!strcmp(argv[k], "--out") && k + 1 < argc)
				k++;
			else if (strcmp(argv[k], "--relay"))
				break;
		}
		if (!user || user[0] == '-' || !out || k < argc) {
			rc = usage("device enroll USER --out DIR2 [--relay]%s", "");
			goto done;
		}
		if (fs_replica__prepare(&st, r,
		        "SELECT role FROM fs_user WHERE name = ?") < 0)
			goto sqlfail;
		sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_ROW) {
			rc = fail("no user %s (add it first: fieldsync-admin user add "
			          "%s --role rep --region CODE)", user, user);
			goto done;
		}
		/* A regional server forwards its reps' changes, which it has
		** checked against its own users' roles: head office checks them
		** against the relay's, which must therefore own every field. */
		if (relay && strcmp((const char *)sqlite3_column_text(st, 0),
		                    "office") &&
		    strcmp((const char *)sqlite3_column_text(st, 0), "admin")) {
			rc = fail("a regional server's user must have role office or "
			          "admin, and %s is a %s (fieldsync-admin user set NAME "
			          "--role office)", user,
			          (const char *)sqlite3_column_text(st, 0));
			goto done;
		}
		fs_replica__finish(r, st);
		st = NULL;
		snprintf(path, sizeof(path), "%s/ca.crt", dir);
		if (fs_pki__read_file(&ca_crt, path, &e) < 0)
			goto efail;
		snprintf(path, sizeof(path), "%s/ca.key", dir);
		if (fs_pki__read_file(&ca_key, path, &e) < 0)
			goto efail;
		if (fs_uuid__v7(id, fs_hlc__wall_ms(), NULL) < 0) {
			rc = fail("no system randomness%s%s", "", "");
			goto done;
		}
		if (fs_pki__issue(&dev, ca_crt, ca_key, FS_PKI_CLIENT, id, user,
		                  NULL, -300, 3LL * 365 * 86400, &e) < 0)
			goto efail;
		if (mkdir(out, 0700) < 0 && errno != EEXIST) {
			rc = fail("cannot create %s: %s", out, strerror(errno));
			goto done;
		}
		snprintf(conf, sizeof(conf), "user = %s\ndevice = %s\n", user, id);
		if (write_pem(out, "ca.crt", ca_crt, 0644) ||
		    write_pem(out, "device.crt", dev.cert_pem, 0644) ||
		    write_pem(out, "device.key", dev.key_pem, 0600) ||
		    write_pem(out, "device.conf", conf, 0644))
			goto done;
		fs_replica__now(now);
		if (fs_replica__prepare(&st, r,
		        "INSERT INTO fs_device(id, user, serial, created_at, relay) "
		        "VALUES (?, ?, ?, ?, ?)") < 0)
			goto sqlfail;
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, dev.serial, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 5, relay);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto sqlfail;
		if (relay)
			printf("regional server %s enrolled for %s; start the regional "
			       "server with:\n  fieldsyncd --dir REGIONAL_DIR "
			       "--upstream HOST:PORT --enroll %s\n", id, user, out);
		else
			printf("device %s enrolled for %s; give %s to the device:\n"
			       "  fieldsync init --server HOST:PORT --enroll %s\n", id,
			       user, out, out);
		rc = 0;
	} else if (!strcmp(argv[0], "list")) {
		int first = 1;
		if (fs_replica__prepare(&st, r,
		        "SELECT id, user, serial, created_at, coalesce(revoked_at, ''), "
		        "json_object('id', id, 'user', user, 'serial', serial, "
		        "'created_at', created_at, 'revoked_at', revoked_at, "
		        "'relay', relay), relay "
		        "FROM fs_device ORDER BY user, created_at") < 0)
			goto sqlfail;
		if (json)
			printf("[");
		while (sqlite3_step(st) == SQLITE_ROW) {
			if (json)
				printf("%s%s", first ? "" : ",\n", sqlite3_column_text(st, 5));
			else
				printf("%s  %-16s %s%s%s\n", sqlite3_column_text(st, 0),
				       sqlite3_column_text(st, 1), sqlite3_column_text(st, 3),
				       sqlite3_column_int(st, 6) ? "  regional server" : "",
				       *sqlite3_column_text(st, 4) ? "  REVOKED" : "");
			first = 0;
		}
		if (json)
			printf("]\n");
		rc = 0;
	} else if (!strcmp(argv[0], "revoke")) {
		char now[24];
		if (argc < 2) {
			rc = usage("device revoke DEVICE_ID%s", "");
			goto done;
		}
		fs_replica__now(now);
		if (fs_replica__prepare(&st, r,
		        "UPDATE fs_device SET revoked_at = ? WHERE id = ? "
		        "AND revoked_at IS NULL") < 0)
			goto sqlfail;
		sqlite3_bind_text(st, 1, now, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, argv[1], -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto sqlfail;
		if (sqlite3_changes(r->db) == 0) {
			rc = fail("no active device %s%s", argv[1], "");
			goto done;
		}
		printf("device %s revoked: its connections are refused from now on\n",
		       argv[1]);
		rc = 0;
	} else {
		rc = usage("device: unknown verb '%s'", argv[0]);
	}
	goto done;
efail:
	rc = fail("%s%s", e.msg, "");
	goto done;
sqlfail:
	rc = fail("%s%s", sqlite3_errmsg(r->db), "");
done:
	fs_replica__finish(r, st);
	fs_replica_close(r);
	fs_pki__cert_free(&dev);
	free(ca_crt);
	free(ca_key);
	return rc;
}

static int print_line(const char *json, void *payload)
{
	(void)payload;
	return puts(json) < 0 ? -1 : 0;
}

static int cmd_dump(const char *dir, const char *user)
{
	fs_replica *r = NULL;
	int rc, all = 1;

	if (open_db(&r, dir, 0))
		return 1;
	if (user) {
		sqlite3_stmt *st = NULL;
		/* What that user's replicas hold: the scope the server serves. */
		if (fs_replica__prepare(&st, r,
		        "SELECT 1 FROM fs_user WHERE name = ?") < 0) {
			rc = fail("%s%s", fs_replica_errmsg(r), "");
			fs_replica_close(r);
			return rc;
		}
		sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		fs_replica__finish(r, st);
		if (rc != SQLITE_ROW) {
			fs_replica_close(r);
			return fail("no user %s%s", user, "");
		}
		if (fs_policy__load_scope(r, user, &all) < 0) {
			rc = fail("%s%s", fs_replica_errmsg(r), "");
			fs_replica_close(r);
			return rc;
		}
	}
	rc = fs_replica__dump_scoped(r, !all, print_line, NULL);
	if (rc < 0)
		fail("%s%s", fs_replica_errmsg(r), "");
	fs_replica_close(r);
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *dir = getenv("FIELDSYNC_DIR");
	char **rest = calloc((size_t)argc + 1, sizeof(*rest));
	int i, n = 0, rc;

	if (!rest)
		return fail("out of memory%s%s", "", "");
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage_text, stdout);
			free(rest);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("fieldsync-admin %s (schema %d)\n", FS_VERSION,
			       fs_schema_version_latest());
			free(rest);
			return 0;
		} else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			dir = argv[++i];
		} else {
			rest[n++] = argv[i];
		}
	}
	if (n == 0) {
		fputs(usage_text, stderr);
		free(rest);
		return 2;
	}
	if (!strcmp(rest[0], "restore")) {   /* --to names the directory */
		rc = admin_cmd_restore(n - 1, rest + 1);
		free(rest);
		return rc;
	}
	if (!dir || !*dir) {
		free(rest);
		return usage("no server directory: give --dir DIR%s", "");
	}
	if (!strcmp(rest[0], "init"))
		rc = admin_init_dir(dir, n - 1, rest + 1, 1);
	else if (!strcmp(rest[0], "history"))
		rc = admin_cmd_history(dir, n - 1, rest + 1);
	else if (!strcmp(rest[0], "verify"))
		rc = n == 1 ? admin_cmd_verify(dir)
		            : usage("verify takes no argument%s", "");
	else if (!strcmp(rest[0], "ledger"))
		rc = admin_cmd_ledger(dir, n - 1, rest + 1);
	else if (!strcmp(rest[0], "user"))
		rc = admin_cmd_user(dir, n - 1, rest + 1);
	else if (!strcmp(rest[0], "dept"))
		rc = admin_cmd_dept(dir, n - 1, rest + 1);
	else if (!strcmp(rest[0], "report"))
		rc = admin_cmd_report(dir, n - 1, rest + 1);
	else if (!strcmp(rest[0], "compact"))
		rc = admin_cmd_compact(dir, n - 1, rest + 1);
	else if (!strcmp(rest[0], "device"))
		rc = cmd_device(dir, n - 1, rest + 1);
	else if (!strcmp(rest[0], "upstream"))
		rc = admin_cmd_upstream(dir, n - 1, rest + 1);
	else if (!strcmp(rest[0], "dump"))
		rc = n == 1 ? cmd_dump(dir, NULL)
		     : n == 3 && (!strcmp(rest[1], "--user") ||
		                  !strcmp(rest[1], "--as")) ? cmd_dump(dir, rest[2])
		     : usage("dump takes no argument but --user NAME%s", "");
	else
		rc = usage("unknown command '%s'", rest[0]);
	free(rest);
	return rc;
}
