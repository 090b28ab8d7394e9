/* Charts without a plotting library: one SVG line-chart writer that draws
 * every chart of `rlhf report`, the downsampling that keeps a long curve's
 * extremes, and the braille raster behind `rlhf watch`. Nothing here owns
 * the arrays it is given. */
#ifndef RLHF_VIZ_CHART_H
#define RLHF_VIZ_CHART_H

#include <stdint.h>
#include <stdio.h>

typedef struct VizSeries {
    const char *name;
    const double *x, *y; /* n points; non-finite y are left out */
    int64_t n;
    const double *lo, *hi; /* optional whiskers (intervals) at each point; NULL: none */
} VizSeries;

typedef struct VizChart {
    const char *title;
    const char *xlabel; /* NULL: "step" */
    const char *ylabel; /* the y axis's title (quantity and unit); NULL: none */
    const VizSeries *series;
    int n_series;
    double hline;             /* a dashed reference line (a target); NAN: none */
    const char *hline_label;  /* its legend entry */
    const char *const *xcats; /* names at x = 0..n_xcats-1 instead of a numeric axis */
    int n_xcats;
    int markers;    /* a dot at every point (always when a series has whiskers) */
    int no_lines;   /* points only */
    int bars;       /* a bar from 0 to each point (categories); implies no_lines */
    int max_points; /* per series after downsampling; 0: 300 min/max pairs */
} VizChart;

/* Writes one <svg> element (viewBox VIZ_W wide, as tall as its legend and
 * labels need; it scales to its container's width) to f. Text never leaves
 * the canvas: a legend that does not fit beside the title wraps below the
 * plot, crowded category names stand upright. RLHF_EIO when the write fails. */
enum { VIZ_W = 520 };
int viz_svg_chart(FILE *f, const VizChart *c);

/* Keeps the first and last point and each bucket's lowest and highest y, in
 * order: at most 2·buckets + 2 points, written to ox, oy. Returns how many. */
int64_t viz_downsample(const double *x, const double *y, int64_t n, int64_t buckets, double *ox,
                       double *oy);

/* Nice tick values covering [lo, hi]: at most max of them, written to out;
 * returns how many. */
int viz_ticks(double lo, double hi, int max, double *out);

/* Rasterises a curve onto a cols×rows grid of braille cells (2×4 dots each)
 * spanning [x0,x1]×[y0,y1], consecutive points joined: dots[r*cols+c] gets
 * the cell's dot bits (U+2800 + bits is the character). */
void viz_braille(const double *x, const double *y, int64_t n, double x0, double x1, double y0,
                 double y1, int cols, int rows, unsigned char *dots);

/* Writes s to f with < > & " escaped (for HTML text and attributes). */
void viz_html_escape(FILE *f, const char *s);

#endif
