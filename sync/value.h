/*
** value.h -- the value kinds of schema columns and their text forms.
**
** A column's declared type in the schema SQL names its kind.  Users and the
** JSON/CSV layers speak text ("1234.56"); the database stores exact
** integers for money, quantities, rates and coordinates.  This file is the
** one place that converts between the two.
*/
#ifndef FS_VALUE_H
#define FS_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef enum fs_kind {
	FS_KIND_TEXT = 0,
	FS_KIND_INTEGER,
	FS_KIND_BOOLEAN,
	FS_KIND_DATE,       /* 'YYYY-MM-DD' */
	FS_KIND_TIMESTAMP,  /* 'YYYY-MM-DDTHH:MM:SSZ' (UTC) */
	FS_KIND_MONEY,      /* integer, 2 decimals */
	FS_KIND_QTY,        /* integer, 3 decimals */
	FS_KIND_RATE,       /* integer basis points, 2 decimals of a percent */
	FS_KIND_COORD       /* integer micro-degrees, 6 decimals */
} fs_kind;

/* The kind named by a declared column type ("MONEY" -> FS_KIND_MONEY). */
fs_kind fs_value__kind(const char *decltype);
/* Decimal places of a scaled kind, or -1 for unscaled kinds. */
int fs_value__scale(fs_kind k);
/* What a value of kind k is in a change's JSON (docs/protocol.md), as a
** refusal says it: "a date 'YYYY-MM-DD'". */
const char *fs_value__kind_wants(fs_kind k);

/* Parses a decimal "-12.5" into v * 10^scale.  Refuses more decimals than
** scale, junk, and overflow.  0 or -1 with a reason in err. */
int fs_value__parse_decimal(int64_t *out, const char *s, int scale,
                            char *err, size_t errsz);
/* Appends v / 10^scale; trim drops trailing zeros (and a bare '.'). */
int fs_value__format_decimal(fs_buf *b, int64_t v, int scale, int trim);

int fs_value__parse_int(int64_t *out, const char *s);
int fs_value__parse_bool(int *out, const char *s);
/* 1 if s is a real calendar date 'YYYY-MM-DD'. */
int fs_value__valid_date(const char *s);
/* 1 if s is a timestamp in the form it is stored in,
** 'YYYY-MM-DDTHH:MM:SSZ' (what fs_value__norm_timestamp() gives). */
int fs_value__valid_timestamp(const char *s);
/* Normalises a timestamp to 'YYYY-MM-DDTHH:MM:SSZ' in out (21 bytes).
** Accepts 'T' or ' ' between date and time, optional seconds, optional
** fraction (dropped), 'Z' or +HH:MM / -HH:MM (converted to UTC), or a bare
** date (midnight UTC). */
int fs_value__norm_timestamp(char *out, const char *s);
/* 'YYYY-MM-DDTHH:MM:SSZ' for a Unix time in milliseconds. */
void fs_value__format_time(char *out, uint64_t ms);

#endif
