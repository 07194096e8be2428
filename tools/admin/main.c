/*
** main.c -- `fieldsync-admin`, the administration and report tool.
**
** Server administration (init, users, devices, dump, reports) arrives with
** the server; until then this binary answers --help and --version and says
** plainly that it has nothing to administer yet.
*/
#include <stdio.h>
#include <string.h>

#include "fieldsync.h"

static const char usage_text[] =
"usage: fieldsync-admin --dir DIR COMMAND [ARGS...]\n"
"\n"
"Administration of a Fieldsync server directory.  Not implemented yet in\n"
"this version: it answers --help and --version only.\n";

int main(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--version")) {
			printf("fieldsync-admin %s\n", FS_VERSION);
			return 0;
		}
	}
	fputs("fieldsync-admin: server administration is not implemented in "
	      "this version\n", stderr);
	return 1;
}
