/*
** report_table.h -- the result of a head-office report (cmd_report.c) held
** in memory and written as an aligned text table, RFC 4180 CSV or one JSON
** array (report_table.c).
**
** A report is one SQL query whose columns are described by admin_col: a
** name (the header, CSV heading and JSON key) and a kind saying how the
** integer or text SQLite returns is shown.  Money is integer minor units
** and percentages integer hundredths of a percent, so every figure is
** printed exactly, never through floating point:
**
**   kind    SQLite    text          CSV         JSON
**   TEXT    text      as is         field       "string"
**   INT     integer   12            12          12
**   MONEY   cents     1234.50       1234.50     1234.50
**   PCT     1/100 %   66.67%        66.67       66.67
**   BOOL    0/1       yes / no      true/false  true/false
**   NULL    -         -             (empty)     null
*/
#ifndef FS_ADMIN_REPORT_TABLE_H
#define FS_ADMIN_REPORT_TABLE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef enum admin_col_kind {
	ADMIN_COL_TEXT,
	ADMIN_COL_INT,
	ADMIN_COL_MONEY,
	ADMIN_COL_PCT,
	ADMIN_COL_BOOL
} admin_col_kind;

#define ADMIN_COL_TOTAL   0x1   /* summed on the text table's total line */
#define ADMIN_COL_MACHINE 0x2   /* only in CSV and JSON (ids) */

typedef struct admin_col {
	const char *name;
	admin_col_kind kind;
	unsigned int flags;
} admin_col;

typedef struct admin_cell {
	int null;
	int64_t i;       /* every kind but TEXT */
	char *s;         /* TEXT, owned */
} admin_cell;

typedef struct admin_table {
	const admin_col *cols;   /* borrowed; column 0 is TEXT when any
	                         ** column has ADMIN_COL_TOTAL (it says
	                         ** "total") */
	size_t ncols;
	admin_cell *cells;       /* nrows * ncols, row-major */
	size_t nrows, cap;
} admin_table;

typedef enum admin_out {
	ADMIN_OUT_TEXT,
	ADMIN_OUT_CSV,
	ADMIN_OUT_JSON
} admin_out;

/* An empty table of those columns. */
void admin_table_init(admin_table *t, const admin_col *cols, size_t ncols);
/* Frees the cells; the table is empty again.  Accepts a zeroed table. */
void admin_table_free(admin_table *t);
/* Steps st to its end, appending one row per result row (st has ncols
** columns).  SQLITE_DONE, SQLITE_NOMEM when a row could not be stored, or
** the error sqlite3_step() returned; the rows read so far stay. */
int admin_table_fill(admin_table *t, sqlite3_stmt *st);
const admin_cell *admin_table_cell(const admin_table *t, size_t row,
                                   size_t col);
/* Appends the table in the format asked for; the text form starts with
** caption (if not NULL) on a line of its own.  0, or -1 when out could not
** grow. */
int admin_table_render(fs_buf *out, const admin_table *t, admin_out fmt,
                       const char *caption);

#endif
