/*
** main.c -- `fieldsyncd`, the Fieldsync server.
**
** The sync server (TLS listener, central database, merge) is the next
** milestone; until then this binary only answers --help and --version and
** says plainly that it cannot serve yet.
*/
#include <stdio.h>
#include <string.h>

#include "fieldsync.h"

static const char usage_text[] =
"usage: fieldsyncd --dir DIR --listen HOST:PORT\n"
"\n"
"The Fieldsync sync server.  Not implemented yet in this version: it\n"
"answers --help and --version only.\n";

int main(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--version")) {
			printf("fieldsyncd %s\n", FS_VERSION);
			return 0;
		}
	}
	fputs("fieldsyncd: the sync server is not implemented in this version\n",
	      stderr);
	return 1;
}
