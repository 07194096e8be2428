/*
** cmd_customer.c -- moving records in and out (import, export) and the
** customer-only operations copy and merge.
*/
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cmd_import(cli *c, const char *noun, int argc, char **argv)
{
	int64_t n = 0;
	int rc;
	cli_opts o;

	if (cli_parse(&o, argc, argv, NULL) < 0)
		return EXIT_USAGE;
	if (o.npos != 1 || o.n) {
		rc = cli_usage("%s import needs exactly one FILE.csv", noun);
		goto done;
	}
	if ((rc = fs_csv_import(&n, c->r, noun, o.pos[0])) < 0) {
		rc = cli_fail(c, rc);
		goto done;
	}
	if (c->json)
		printf("{\"imported\":%lld}\n", (long long)n);
	else
		printf("imported %lld %s record%s\n", (long long)n, noun,
		       n == 1 ? "" : "s");
	rc = EXIT_OK;
done:
	cli_opts_free(&o);
	return rc;
}

static int write_file(const char *data, size_t len, void *payload)
{
	return fwrite(data, 1, len, payload) == len ? 0 : -1;
}

int cmd_export(cli *c, const char *noun, int argc, char **argv)
{
	static const char *bools[] = { "csv", NULL };
	const char *out;
	FILE *f = stdout;
	char *tmp = NULL;
	int rc;
	cli_opts o;

	if (cli_parse(&o, argc, argv, bools) < 0)
		return EXIT_USAGE;
	cli_take(&o, "csv", NULL);
	out = cli_take(&o, "out", NULL);
	if (o.npos || o.n) {
		rc = cli_usage("%s export takes --csv [--out FILE]", noun);
		goto done;
	}
	if (out) {
		/* Write beside the target and rename: never a half file. */
		size_t n = strlen(out) + 8;
		tmp = malloc(n);
		if (!tmp) {
			rc = cli_error("out of memory");
			goto done;
		}
		snprintf(tmp, n, "%s.tmp", out);
		f = fopen(tmp, "wb");
		if (!f) {
			rc = cli_error("%s: %s", tmp, strerror(errno));
			goto done;
		}
	}
	rc = fs_csv_export(c->r, noun, write_file, f);
	if (rc == -1 && !fs_replica_errmsg(c->r)[0]) {
		rc = cli_error("writing %s: %s", out ? out : "output",
		               strerror(errno));
	} else if (rc < 0) {
		rc = cli_fail(c, rc);
	} else if (fflush(f) != 0 || (out && fclose(f) != 0)) {
		rc = cli_error("writing %s: %s", out ? out : "output",
		               strerror(errno));
		f = NULL;
	} else {
		if (out) {
			f = NULL;
			if (rename(tmp, out) != 0) {
				rc = cli_error("%s: %s", out, strerror(errno));
				goto done;
			}
		}
		rc = EXIT_OK;
	}
	if (out && f) {
		fclose(f);
		remove(tmp);
	} else if (out && rc != EXIT_OK) {
		remove(tmp);
	}
done:
	free(tmp);
	cli_opts_free(&o);
	return rc;
}

int cmd_customer_copy(cli *c, int argc, char **argv)
{
	char id[FS_ID_SIZE];
	int rc;

	if (argc != 1)
		return cli_usage("customer copy needs exactly one ID");
	if ((rc = fs_customer_copy(id, c->r, argv[0])) < 0)
		return cli_fail(c, rc);
	if (c->json)
		return cli_show(c, "customer", id);
	printf("%s\n", id);
	return EXIT_OK;
}

int cmd_customer_merge(cli *c, int argc, char **argv)
{
	int rc;

	if (argc != 2)
		return cli_usage("customer merge needs KEEP_ID DUPLICATE_ID");
	if ((rc = fs_customer_merge(c->r, argv[0], argv[1])) < 0)
		return cli_fail(c, rc);
	if (c->json)
		return cli_show(c, "customer", argv[0]);
	return EXIT_OK;
}
