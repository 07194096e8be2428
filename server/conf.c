/*
** conf.c -- DIR/fieldsync.conf (conf.h).
*/
#include "conf.h"

#include <stdio.h>
#include <string.h>

int fs_conf__get(const char *dir, const char *key, char *out, size_t size)
{
	char path[1100], line[512];
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/fieldsync.conf", dir);
	if (!(f = fopen(path, "r")))
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *k = line + strspn(line, " \t"), *v = strchr(line, '=');
		if (*k == '#' || !v)
			continue;
		*v++ = '\0';
		k[strcspn(k, " \t")] = '\0';
		v += strspn(v, " \t");
		v[strcspn(v, " \t\r\n")] = '\0';
		if (!strcmp(k, key)) {
			snprintf(out, size, "%s", v);
			found = 1;
		}
	}
	fclose(f);
	return found;
}
