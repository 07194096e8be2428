/*
** report_table.c -- a report's rows in memory, written as text, CSV or
** JSON (see report_table.h for the forms of each kind).
**
** The text table is for people: a caption, a header, numbers right-aligned
** and text left-aligned in columns as wide as their widest cell (counted
** in terminal cells: CJK characters take two, which the customer names of
** our users often are), and a total line for the columns that have one.
** CSV (CRLF line ends, fields quoted by fs_csv__write_field) and JSON (one
** array of objects keyed by column name) are for programs: no caption, no
** total line, and the machine-only columns (ids) included.
*/
#include "report_table.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "json.h"
#include "value.h"

void admin_table_init(admin_table *t, const admin_col *cols, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->cols = cols;
	t->ncols = ncols;
}

void admin_table_free(admin_table *t)
{
	size_t i;

	for (i = 0; t->cells && i < t->nrows * t->ncols; i++)
		free(t->cells[i].s);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

const admin_cell *admin_table_cell(const admin_table *t, size_t row,
                                   size_t col)
{
	return &t->cells[row * t->ncols + col];
}

int admin_table_fill(admin_table *t, sqlite3_stmt *st)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		admin_cell *row;
		size_t c;

		if (t->nrows == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 64;
			admin_cell *p;

			if (cap > SIZE_MAX / sizeof(*p) / (t->ncols ? t->ncols : 1))
				return SQLITE_NOMEM;
			p = realloc(t->cells, cap * t->ncols * sizeof(*p));
			if (!p)
				return SQLITE_NOMEM;
			t->cells = p;
			t->cap = cap;
		}
		row = t->cells + t->nrows * t->ncols;
		memset(row, 0, t->ncols * sizeof(*row));
		t->nrows++;   /* counted now: a failure below frees what is in */
		for (c = 0; c < t->ncols; c++) {
			if (sqlite3_column_type(st, (int)c) == SQLITE_NULL) {
				row[c].null = 1;
			} else if (t->cols[c].kind == ADMIN_COL_TEXT) {
				const char *s = (const char *)sqlite3_column_text(st, (int)c);
				if (!s || !(row[c].s = strdup(s)))
					return SQLITE_NOMEM;
			} else {
				row[c].i = sqlite3_column_int64(st, (int)c);
			}
		}
	}
	return rc;
}

/* ----------------------------------------------------------------- cells */

static int numeric(admin_col_kind k)
{
	return k == ADMIN_COL_INT || k == ADMIN_COL_MONEY || k == ADMIN_COL_PCT;
}

/* Text for people: line breaks and tabs would break the table. */
static void put_plain(fs_buf *b, const char *s)
{
	for (; *s; s++)
		fs_buf_putc(b, (*s == '\n' || *s == '\r' || *s == '\t') ? ' ' : *s);
}

static void put_cell(fs_buf *b, const admin_col *c, const admin_cell *v,
                     admin_out fmt)
{
	if (v->null) {
		if (fmt == ADMIN_OUT_TEXT)
			fs_buf_putc(b, '-');
		else if (fmt == ADMIN_OUT_JSON)
			fs_buf_puts(b, "null");
		return;
	}
	switch (c->kind) {
	case ADMIN_COL_TEXT:
		if (fmt == ADMIN_OUT_CSV)
			fs_csv__write_field(b, v->s);
		else if (fmt == ADMIN_OUT_JSON)
			fs_json__str(b, v->s);
		else
			put_plain(b, v->s);
		break;
	case ADMIN_COL_INT:
		fs_buf_printf(b, "%lld", (long long)v->i);
		break;
	case ADMIN_COL_MONEY:
		fs_value__format_decimal(b, v->i, 2, 0);
		break;
	case ADMIN_COL_PCT:
		fs_value__format_decimal(b, v->i, 2, 0);
		if (fmt == ADMIN_OUT_TEXT)
			fs_buf_putc(b, '%');
		break;
	case ADMIN_COL_BOOL:
		if (fmt == ADMIN_OUT_TEXT)
			fs_buf_puts(b, v->i ? "yes" : "no");
		else
			fs_buf_puts(b, v->i ? "true" : "false");
		break;
	}
}

/* ------------------------------------------------------------------ text */

static int wide(uint32_t cp)
{
	return (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) ||
	       (cp >= 0x3041 && cp <= 0x33FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
	       (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
	       (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
	       (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
	       (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x20000 && cp <= 0x3FFFD);
}

/* Terminal cells taken by the UTF-8 text s[0..n); a byte that does not
** start a well-formed sequence counts as one cell. */
static size_t display_width(const char *s, size_t n)
{
	size_t i = 0, w = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t len, k;
		uint32_t cp;

		if (c < 0x80) {
			w++;
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0) {
			cp = c & 0x1F;
			len = 2;
		} else if ((c & 0xF0) == 0xE0) {
			cp = c & 0x0F;
			len = 3;
		} else if ((c & 0xF8) == 0xF0) {
			cp = c & 0x07;
			len = 4;
		} else {
			w++;
			i++;
			continue;
		}
		for (k = 1; k < len && i + k < n &&
		            ((unsigned char)s[i + k] & 0xC0) == 0x80; k++)
			cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3F);
		if (k < len) {
			w++;
			i++;
			continue;
		}
		w += wide(cp) ? 2 : 1;
		i += len;
	}
	return w;
}

static void pad(fs_buf *b, size_t n)
{
	while (n--)
		fs_buf_putc(b, ' ');
}

/* One line of the table: cell text of each visible column, from cells (one
** per column; NULL: an empty cell, used by the total line). */
typedef struct line_src {
	const admin_cell *cells;
	int header;          /* column names instead of cells */
	int dashes;          /* a rule under the header */
	const char *first;   /* overrides column 0 (the total line's "total") */
} line_src;

static void cell_text(fs_buf *tmp, const admin_table *t, const line_src *ls,
                      size_t c)
{
	fs_buf_clear(tmp);
	if (ls->header)
		fs_buf_puts(tmp, t->cols[c].name);
	else if (c == 0 && ls->first)
		fs_buf_puts(tmp, ls->first);
	else if (ls->first && !(t->cols[c].flags & ADMIN_COL_TOTAL))
		;   /* the total line is empty but for its totals */
	else if (ls->cells)
		put_cell(tmp, &t->cols[c], &ls->cells[c], ADMIN_OUT_TEXT);
}

static void text_line(fs_buf *out, fs_buf *tmp, const admin_table *t,
                      const line_src *ls, const size_t *width)
{
	size_t c, start = out->len, sep = 0;

	for (c = 0; c < t->ncols; c++) {
		size_t w;

		if (t->cols[c].flags & ADMIN_COL_MACHINE)
			continue;
		if (sep)
			pad(out, 2);
		sep = 1;
		if (ls->dashes) {
			for (w = 0; w < width[c]; w++)
				fs_buf_putc(out, '-');
			continue;
		}
		cell_text(tmp, t, ls, c);
		w = display_width(tmp->ptr ? tmp->ptr : "", tmp->len);
		if (numeric(t->cols[c].kind))
			pad(out, width[c] - w);
		fs_buf_put(out, tmp->ptr ? tmp->ptr : "", tmp->len);
		if (!numeric(t->cols[c].kind))
			pad(out, width[c] - w);
	}
	while (out->len > start && out->ptr[out->len - 1] == ' ')
		out->ptr[--out->len] = '\0';
	fs_buf_putc(out, '\n');
}

static int render_text(fs_buf *out, const admin_table *t, const char *caption)
{
	size_t *width = calloc(t->ncols ? t->ncols : 1, sizeof(*width));
	admin_cell *sum = calloc(t->ncols ? t->ncols : 1, sizeof(*sum));
	fs_buf tmp = FS_BUF_INIT;
	line_src ls;
	size_t r, c;
	int totals = 0;

	if (!width || !sum) {
		free(width);
		free(sum);
		return -1;
	}
	for (c = 0; c < t->ncols; c++) {
		sum[c].null = 1;
		if (!(t->cols[c].flags & ADMIN_COL_TOTAL))
			continue;
		totals = t->nrows > 0;
		sum[c].null = 0;
		for (r = 0; r < t->nrows; r++) {
			const admin_cell *v = admin_table_cell(t, r, c);
			if (!v->null && __builtin_add_overflow(sum[c].i, v->i, &sum[c].i)) {
				sum[c].null = 1;   /* shown as "-", never wrapped */
				break;
			}
		}
	}
	/* Widths: the header, every row, the total line. */
	for (c = 0; c < t->ncols; c++) {
		memset(&ls, 0, sizeof(ls));
		ls.header = 1;
		cell_text(&tmp, t, &ls, c);
		width[c] = display_width(tmp.ptr ? tmp.ptr : "", tmp.len);
		memset(&ls, 0, sizeof(ls));
		for (r = 0; r <= t->nrows; r++) {
			size_t w;
			if (r == t->nrows) {
				if (!totals)
					break;
				ls.cells = sum;
				ls.first = "total";
			} else {
				ls.cells = admin_table_cell(t, r, 0);
			}
			cell_text(&tmp, t, &ls, c);
			w = display_width(tmp.ptr ? tmp.ptr : "", tmp.len);
			if (w > width[c])
				width[c] = w;
		}
	}
	if (caption)
		fs_buf_printf(out, "%s\n\n", caption);
	memset(&ls, 0, sizeof(ls));
	ls.header = 1;
	text_line(out, &tmp, t, &ls, width);
	ls.header = 0;
	ls.dashes = 1;
	text_line(out, &tmp, t, &ls, width);
	ls.dashes = 0;
	for (r = 0; r < t->nrows; r++) {
		ls.cells = admin_table_cell(t, r, 0);
		text_line(out, &tmp, t, &ls, width);
	}
	if (t->nrows == 0)
		fs_buf_puts(out, "(none)\n");
	if (totals) {
		ls.cells = NULL;
		ls.dashes = 1;
		text_line(out, &tmp, t, &ls, width);
		ls.dashes = 0;
		ls.cells = sum;
		ls.first = "total";
		text_line(out, &tmp, t, &ls, width);
	}
	fs_buf_free(&tmp);
	free(width);
	free(sum);
	return out->failed || tmp.failed ? -1 : 0;
}

/* ------------------------------------------------------------ CSV, JSON */

static void render_csv(fs_buf *out, const admin_table *t)
{
	size_t r, c;

	for (c = 0; c < t->ncols; c++) {
		if (c)
			fs_buf_putc(out, ',');
		fs_csv__write_field(out, t->cols[c].name);
	}
	fs_buf_puts(out, "\r\n");
	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			if (c)
				fs_buf_putc(out, ',');
			put_cell(out, &t->cols[c], admin_table_cell(t, r, c),
			         ADMIN_OUT_CSV);
		}
		fs_buf_puts(out, "\r\n");
	}
}

static void render_json(fs_buf *out, const admin_table *t)
{
	size_t r, c;

	fs_buf_putc(out, '[');
	for (r = 0; r < t->nrows; r++) {
		fs_buf_puts(out, r ? ",\n{" : "{");
		for (c = 0; c < t->ncols; c++) {
			if (c)
				fs_buf_putc(out, ',');
			fs_json__str(out, t->cols[c].name);
			fs_buf_putc(out, ':');
			put_cell(out, &t->cols[c], admin_table_cell(t, r, c),
			         ADMIN_OUT_JSON);
		}
		fs_buf_putc(out, '}');
	}
	fs_buf_puts(out, "]\n");
}

int admin_table_render(fs_buf *out, const admin_table *t, admin_out fmt,
                       const char *caption)
{
	if (fmt == ADMIN_OUT_TEXT)
		return render_text(out, t, caption);
	if (fmt == ADMIN_OUT_CSV)
		render_csv(out, t);
	else
		render_json(out, t);
	return out->failed ? -1 : 0;
}
