/*
** svg.h -- a standalone SVG bar chart, in plain C, for the head-office
** reports (cmd_report.c): one bar per category, the value written above
** each bar, a y axis with round ticks, axis titles and a chart title.
**
** Values are exact integers with a decimal scale (money: minor units,
** scale 2); labels and ticks are printed from the integers, never through
** floating point.  The text is XML-escaped, so any label is safe.
*/
#ifndef FS_ADMIN_SVG_H
#define FS_ADMIN_SVG_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct admin_svg_chart {
	const char *title;       /* top line */
	const char *x_title;     /* under the category labels */
	const char *y_title;     /* beside the y axis */
	int scale;               /* decimals of the values (0: counts) */
	const char *const *labels;
	const int64_t *values;   /* >= 0; negative values are drawn as 0 */
	size_t n;                /* bars; 0 draws empty axes */
} admin_svg_chart;

/* Appends the whole SVG document to out.  0, or -1 when out could not
** grow (out->failed is set; its content is then incomplete). */
int admin_svg_bars(fs_buf *out, const admin_svg_chart *c);

#endif
