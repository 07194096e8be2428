/*
** svg.c -- a standalone SVG bar chart (see svg.h).
**
** Layout, in pixels: the plot is PLOT_H high and SLOT wide per bar, with
** margins for the title (top), the tick labels and y title (left) and the
** category labels and x title (bottom).  The y axis runs from 0 to a round
** top value: the smallest 1, 2 or 5 x 10^k step giving at most five ticks
** above zero, times the number of steps needed to reach the largest value.
** Heights are value * PLOT_H / top in 128-bit integers: no overflow and no
** floating point, whatever the amounts.
*/
#include "svg.h"

#include <string.h>

__extension__ typedef __int128 i128;

#define LEFT    100   /* y tick labels and the y title */
#define RIGHT   24
#define TOP     56    /* the title, and the value over a full-height bar */
#define BOTTOM  64    /* category labels and the x title */
#define PLOT_H  300
#define SLOT    72    /* horizontal room per bar */
#define BAR_W   44
#define MIN_W   520
#define TICKS   5

/* Appends s as XML character data or attribute text.  Control characters
** (not allowed in XML 1.0) become '?'. */
static void xml_text(fs_buf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': fs_buf_puts(b, "&amp;"); break;
		case '<': fs_buf_puts(b, "&lt;"); break;
		case '>': fs_buf_puts(b, "&gt;"); break;
		case '"': fs_buf_puts(b, "&quot;"); break;
		case '\'': fs_buf_puts(b, "&apos;"); break;
		default:
			if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n')
				fs_buf_putc(b, '?');
			else
				fs_buf_putc(b, *s);
		}
	}
}

/* Appends v / 10^scale (v >= 0), without trailing zeros when trim: a tick
** of the axis may lie beyond the int64 range of the values. */
static void scaled(fs_buf *b, i128 v, int scale, int trim)
{
	char d[48];
	int n = 0, i;

	do {
		d[n++] = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v > 0 || n <= scale);
	/* d holds the digits least significant first; n > scale. */
	for (i = n - 1; i >= scale; i--)
		fs_buf_putc(b, d[i]);
	for (i = 0; trim && i < scale && d[i] == '0'; i++)
		;
	if (i < scale) {
		int last = i;
		fs_buf_putc(b, '.');
		for (i = scale - 1; i >= last; i--)
			fs_buf_putc(b, d[i]);
	}
}

/* The axis step: the smallest 1/2/5 x 10^k with max <= TICKS * step. */
static i128 nice_step(i128 max, int scale)
{
	i128 raw, p = 1;
	int i;

	if (max <= 0) {
		for (i = 0; i < scale; i++)
			p *= 10;
		return p;   /* an empty chart still shows 0..5 units */
	}
	raw = (max + TICKS - 1) / TICKS;
	while (p * 10 <= raw)
		p *= 10;
	if (p >= raw)
		return p;
	if (2 * p >= raw)
		return 2 * p;
	if (5 * p >= raw)
		return 5 * p;
	return 10 * p;
}

int admin_svg_bars(fs_buf *out, const admin_svg_chart *c)
{
	i128 max = 0, step, top;
	size_t i, nticks;
	long w, h, plot_w, base;

	for (i = 0; i < c->n; i++)
		if (c->values[i] > max)
			max = c->values[i];
	step = nice_step(max, c->scale);
	nticks = max > 0 ? (size_t)((max + step - 1) / step) : TICKS;
	top = step * (i128)nticks;
	plot_w = (long)(c->n ? c->n : 1) * SLOT;
	w = LEFT + plot_w + RIGHT;
	if (w < MIN_W)
		w = MIN_W;
	/* Room for the title: about 8 px a character at 15 px bold. */
	if (c->title && strlen(c->title) < 1000 &&
	    (long)strlen(c->title) * 8 + 40 > w)
		w = (long)strlen(c->title) * 8 + 40;
	h = TOP + PLOT_H + BOTTOM;
	base = TOP + PLOT_H;

	fs_buf_printf(out,
	        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%ld\" "
	        "height=\"%ld\" viewBox=\"0 0 %ld %ld\" "
	        "font-family=\"sans-serif\" font-size=\"12\">\n<title>", w, h, w,
	        h);
	xml_text(out, c->title);
	fs_buf_printf(out, "</title>\n"
	        "<rect width=\"%ld\" height=\"%ld\" fill=\"#ffffff\"/>\n"
	        "<text x=\"%ld\" y=\"28\" text-anchor=\"middle\" font-size=\"15\" "
	        "font-weight=\"bold\">", w, h, w / 2);
	xml_text(out, c->title);
	fs_buf_puts(out, "</text>\n<g class=\"y-axis\">\n");
	for (i = 0; i <= nticks; i++) {
		long y = base - (long)((i128)i * PLOT_H / (i128)nticks);
		fs_buf_printf(out, "<line x1=\"%d\" y1=\"%ld\" x2=\"%ld\" y2=\"%ld\" "
		              "stroke=\"#dddddd\"/>\n<text x=\"%d\" y=\"%ld\" "
		              "text-anchor=\"end\">", LEFT, y, LEFT + plot_w, y,
		              LEFT - 6, y + 4);
		scaled(out, step * (i128)i, c->scale, 1);
		fs_buf_puts(out, "</text>\n");
	}
	fs_buf_printf(out, "</g>\n<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%ld\" "
	              "stroke=\"#333333\"/>\n<line x1=\"%d\" y1=\"%ld\" x2=\"%ld\" "
	              "y2=\"%ld\" stroke=\"#333333\"/>\n<g class=\"bars\">\n",
	              LEFT, TOP, LEFT, base, LEFT, base, LEFT + plot_w, base);
	for (i = 0; i < c->n; i++) {
		int64_t v = c->values[i] > 0 ? c->values[i] : 0;
		long bh = (long)((i128)v * PLOT_H / top);
		long x = LEFT + (long)i * SLOT + (SLOT - BAR_W) / 2;

		fs_buf_printf(out, "<rect class=\"bar\" x=\"%ld\" y=\"%ld\" "
		              "width=\"%d\" height=\"%ld\" fill=\"#4e79a7\"><title>",
		              x, base - bh, BAR_W, bh);
		xml_text(out, c->labels[i]);
		fs_buf_puts(out, ": ");
		scaled(out, v, c->scale, 0);
		fs_buf_printf(out, "</title></rect>\n<text class=\"value\" x=\"%ld\" "
		              "y=\"%ld\" text-anchor=\"middle\">", x + BAR_W / 2,
		              base - bh - 5);
		scaled(out, v, c->scale, 0);
		fs_buf_printf(out, "</text>\n<text class=\"label\" x=\"%ld\" "
		              "y=\"%ld\" text-anchor=\"middle\">", x + BAR_W / 2,
		              base + 18);
		xml_text(out, c->labels[i]);
		fs_buf_puts(out, "</text>\n");
	}
	fs_buf_printf(out, "</g>\n<text x=\"%ld\" y=\"%ld\" "
	              "text-anchor=\"middle\" font-weight=\"bold\">",
	              LEFT + plot_w / 2, base + 46);
	xml_text(out, c->x_title);
	fs_buf_printf(out, "</text>\n<text x=\"22\" y=\"%d\" "
	              "text-anchor=\"middle\" font-weight=\"bold\" "
	              "transform=\"rotate(-90 22 %d)\">", TOP + PLOT_H / 2,
	              TOP + PLOT_H / 2);
	xml_text(out, c->y_title);
	fs_buf_puts(out, "</text>\n</svg>\n");
	return out->failed ? -1 : 0;
}
