/*
** cmd_report.c -- `fieldsync-admin report`: head-office reports.
** (Being written; see docs/reports.md.)
*/
#include "admin.h"

int admin_cmd_report(const char *dir, int argc, char **argv)
{
	(void)dir;
	(void)argc;
	(void)argv;
	return admin_usage("report: not available yet%s", "");
}
