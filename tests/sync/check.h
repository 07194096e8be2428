/*
** check.h -- the smallest test harness: CHECK(cond) reports file:line and
** the failed expression and counts failures; main() ends with
** `return CHECK_EXIT();`, which prints a summary and gives 1 if any failed.
*/
#ifndef FS_TEST_CHECK_H
#define FS_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                      \
	do {                                                             \
		check_count++;                                           \
		if (!(cond)) {                                           \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n",     \
			        __FILE__, __LINE__, #cond);              \
			check_failures++;                                \
		}                                                        \
	} while (0)

/* String equality that also shows both strings when it fails. */
#define CHECK_STR(got, want)                                             \
	do {                                                             \
		const char *check_g_ = (got), *check_w_ = (want);        \
		check_count++;                                           \
		if (!check_g_ || strcmp(check_g_, check_w_) != 0) {      \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s\n"\
			        "  got:  \"%s\"\n  want: \"%s\"\n",      \
			        __FILE__, __LINE__, #got, #want,         \
			        check_g_ ? check_g_ : "(null)", check_w_);\
			check_failures++;                                \
		}                                                        \
	} while (0)

#define CHECK_EXIT()                                                     \
	(fprintf(check_failures ? stderr : stdout, "%s: %d of %d checks failed\n", \
	         __FILE__, check_failures, check_count),                 \
	 check_failures ? 1 : 0)

#endif
