/* The SVG line-chart writer, downsampling and the braille raster. */
#include "viz/chart.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

enum { W = 640, H = 240, ML = 58, MR = 14, MT = 30, MB = 36 };

int64_t viz_downsample(const double *x, const double *y, int64_t n, int64_t buckets, double *ox,
                       double *oy) {
    if (n <= 2 * buckets + 2) {
        memcpy(ox, x, (size_t)n * sizeof *x);
        memcpy(oy, y, (size_t)n * sizeof *y);
        return n;
    }
    int64_t m = 0;
    ox[m] = x[0], oy[m++] = y[0];
    for (int64_t b = 0; b < buckets; b++) {
        int64_t s = 1 + b * (n - 2) / buckets, e = 1 + (b + 1) * (n - 2) / buckets;
        int64_t lo = -1, hi = -1;
        for (int64_t i = s; i < e; i++) {
            if (!isfinite(y[i])) continue;
            if (lo < 0 || y[i] < y[lo]) lo = i;
            if (hi < 0 || y[i] > y[hi]) hi = i;
        }
        if (lo < 0) continue;
        int64_t a = lo < hi ? lo : hi, c = lo < hi ? hi : lo;
        ox[m] = x[a], oy[m++] = y[a];
        if (c != a) ox[m] = x[c], oy[m++] = y[c];
    }
    ox[m] = x[n - 1], oy[m++] = y[n - 1];
    return m;
}

int viz_ticks(double lo, double hi, int max, double *out) {
    if (!(hi > lo) || max < 2) {
        out[0] = lo;
        return 1;
    }
    double raw = (hi - lo) / (max - 1), mag = pow(10, floor(log10(raw))), step = mag;
    static const double mult[] = {1, 2, 2.5, 5, 10};
    for (int i = 0; i < 5; i++)
        if ((step = mult[i] * mag) >= raw) break;
    int n = 0;
    for (double t = ceil(lo / step) * step; t <= hi + step * 1e-9 && n < max; t += step)
        out[n++] = fabs(t) < step * 1e-9 ? 0 : t;
    return n;
}

static void fmt_num(char *buf, size_t n, double v) {
    double a = fabs(v);
    if (a >= 1 && a < 1e7 && v == floor(v)) /* steps: 20000, not 2e+04 */
        snprintf(buf, n, "%.0f", v);
    else if (a != 0 && (a >= 1e7 || a < 1e-3))
        snprintf(buf, n, "%.2g", v);
    else
        snprintf(buf, n, "%.4g", v);
}

void viz_html_escape(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* the data's extent over every series (whiskers and the reference line included) */
static int extent(const VizChart *c, double *x0, double *x1, double *y0, double *y1) {
    int any = 0;
    *x0 = *y0 = INFINITY, *x1 = *y1 = -INFINITY;
    for (int k = 0; k < c->n_series; k++) {
        const VizSeries *s = &c->series[k];
        for (int64_t i = 0; i < s->n; i++) {
            if (!isfinite(s->y[i]) || !isfinite(s->x[i])) continue;
            any = 1;
            double lo = s->lo && isfinite(s->lo[i]) ? s->lo[i] : s->y[i];
            double hi = s->hi && isfinite(s->hi[i]) ? s->hi[i] : s->y[i];
            *x0 = fmin(*x0, s->x[i]), *x1 = fmax(*x1, s->x[i]);
            *y0 = fmin(*y0, fmin(lo, s->y[i])), *y1 = fmax(*y1, fmax(hi, s->y[i]));
        }
    }
    if (isfinite(c->hline)) *y0 = fmin(*y0, c->hline), *y1 = fmax(*y1, c->hline);
    if (c->xcats) *x0 = -0.5, *x1 = c->n_xcats - 0.5;
    if (!any) return 0;
    if (*x1 <= *x0) *x0 -= 1, *x1 += 1;
    double pad = (*y1 - *y0) * 0.05;
    if (pad <= 0) pad = fabs(*y0) > 0 ? fabs(*y0) * 0.1 : 1;
    *y0 -= pad, *y1 += pad;
    return 1;
}

int viz_svg_chart(FILE *f, const VizChart *c) {
    double x0, x1, y0, y1;
    int any = extent(c, &x0, &x1, &y0, &y1);
    const double pw = W - ML - MR, ph = H - MT - MB;
#define PX(v) (ML + ((v)-x0) / (x1 - x0) * pw)
#define PY(v) (MT + (1 - ((v)-y0) / (y1 - y0)) * ph)
    fprintf(f,
            "<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" "
            "xmlns=\"http://www.w3.org/2000/svg\">",
            W, H);
    fputs("<title>", f);
    viz_html_escape(f, c->title);
    fputs("</title>", f);
    fprintf(f, "<text class=\"ct\" x=\"%d\" y=\"16\">", ML);
    viz_html_escape(f, c->title);
    fputs("</text>", f);
    if (!any) {
        fprintf(f, "<text class=\"ax\" x=\"%d\" y=\"%d\">no finite values</text></svg>\n",
                W / 2 - 50, H / 2);
        return ferror(f) ? RLHF_EIO : RLHF_OK;
    }
    fprintf(f, "<rect class=\"pa\" x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\"/>", ML, MT, pw,
            ph);
    double t[16];
    char b[32];
    int nt = viz_ticks(y0, y1, 6, t);
    for (int i = 0; i < nt; i++) {
        fmt_num(b, sizeof b, t[i]);
        fprintf(f,
                "<line class=\"gr\" x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
                "<text class=\"ax\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>",
                ML, ML + pw, PY(t[i]), PY(t[i]), ML - 4, PY(t[i]) + 4, b);
    }
    if (c->xcats) {
        for (int i = 0; i < c->n_xcats; i++) {
            fprintf(f, "<text class=\"ax\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">",
                    PX((double)i), H - MB + 14);
            viz_html_escape(f, c->xcats[i]);
            fputs("</text>", f);
        }
    } else {
        nt = viz_ticks(x0, x1, 7, t);
        for (int i = 0; i < nt; i++) {
            fmt_num(b, sizeof b, t[i]);
            fprintf(f, "<text class=\"ax\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>",
                    PX(t[i]), H - MB + 14, b);
        }
    }
    fprintf(f, "<text class=\"ax\" x=\"%.0f\" y=\"%d\" text-anchor=\"end\">", ML + pw, H - 4);
    viz_html_escape(f, c->xlabel ? c->xlabel : "step");
    fputs("</text>", f);
    /* legend along the top right, right to left */
    double lx = W - MR;
    if (isfinite(c->hline)) {
        const char *l = c->hline_label ? c->hline_label : "target";
        lx -= 7.0 * (double)strlen(l) + 18;
        fprintf(f,
                "<line class=\"hl\" x1=\"%.1f\" x2=\"%.1f\" y1=\"12\" y2=\"12\"/><text "
                "class=\"lg\" x=\"%.1f\" y=\"16\">",
                lx, lx + 12, lx + 15);
        viz_html_escape(f, l);
        fputs("</text>", f);
        fprintf(f, "<line class=\"hl\" x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", ML,
                ML + pw, PY(c->hline), PY(c->hline));
    }
    for (int k = c->n_series - 1; k >= 0 && c->n_series > 1; k--) {
        const char *l = c->series[k].name ? c->series[k].name : "";
        lx -= 7.0 * (double)strlen(l) + 18;
        fprintf(f,
                "<rect class=\"k%d\" x=\"%.1f\" y=\"8\" width=\"10\" height=\"8\"/><text "
                "class=\"lg\" x=\"%.1f\" y=\"16\">",
                k % 8, lx, lx + 13);
        viz_html_escape(f, l);
        fputs("</text>", f);
    }
    int cap = c->max_points > 0 ? c->max_points : 300;
    for (int k = 0; k < c->n_series; k++) {
        const VizSeries *s = &c->series[k];
        int whisk = s->lo && s->hi;
        int64_t m = s->n;
        double *xs = NULL, *ys = NULL;
        const double *px = s->x, *py = s->y;
        if (!whisk && s->n > 2 * (int64_t)cap + 2) {
            xs = malloc((size_t)(2 * cap + 2) * sizeof *xs);
            ys = malloc((size_t)(2 * cap + 2) * sizeof *ys);
            if (!xs || !ys) {
                free(xs), free(ys);
                return RLHF_ENOMEM;
            }
            m = viz_downsample(s->x, s->y, s->n, cap, xs, ys);
            px = xs, py = ys;
        }
        fprintf(f, "<g class=\"s%d\">", k % 8);
        if (!c->no_lines && m > 1) {
            fputs("<polyline points=\"", f);
            for (int64_t i = 0; i < m; i++)
                if (isfinite(py[i]) && isfinite(px[i]))
                    fprintf(f, "%.1f,%.1f ", PX(px[i]), PY(py[i]));
            fputs("\"/>", f);
        }
        for (int64_t i = 0; i < m && (c->markers || whisk || m == 1); i++) {
            if (!isfinite(py[i]) || !isfinite(px[i])) continue;
            if (whisk && isfinite(s->lo[i]) && isfinite(s->hi[i]))
                fprintf(f, "<line class=\"wh\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>",
                        PX(px[i]), PX(px[i]), PY(s->lo[i]), PY(s->hi[i]));
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\"/>", PX(px[i]), PY(py[i]));
        }
        fputs("</g>", f);
        free(xs), free(ys);
    }
    fputs("</svg>\n", f);
#undef PX
#undef PY
    return ferror(f) ? RLHF_EIO : RLHF_OK;
}

static void dot(unsigned char *dots, int cols, int rows, int dx, int dy) {
    static const unsigned char bit[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};
    if (dx < 0 || dy < 0 || dx >= 2 * cols || dy >= 4 * rows) return;
    dots[(dy / 4) * cols + dx / 2] |= bit[dy % 4][dx % 2];
}

void viz_braille(const double *x, const double *y, int64_t n, double x0, double x1, double y0,
                 double y1, int cols, int rows, unsigned char *dots) {
    memset(dots, 0, (size_t)cols * (size_t)rows);
    if (cols <= 0 || rows <= 0 || !(x1 > x0) || !(y1 > y0)) {
        if (cols > 0 && rows > 0 && n > 0 && isfinite(y[n - 1]))
            for (int c = 0; c < 2 * cols; c++)
                dot(dots, cols, rows, c, 2 * rows); /* a flat curve: a line across the middle */
        return;
    }
    int W2 = 2 * cols - 1, H4 = 4 * rows - 1, have = 0, px = 0, py = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(y[i]) || !isfinite(x[i])) {
            have = 0;
            continue;
        }
        int cx = (int)lround((x[i] - x0) / (x1 - x0) * W2);
        int cy = (int)lround((1 - (y[i] - y0) / (y1 - y0)) * H4);
        if (have) { /* Bresenham from the previous point */
            int dx = abs(cx - px), sx = px < cx ? 1 : -1, dy = -abs(cy - py), sy = py < cy ? 1 : -1;
            int e = dx + dy, a = px, b = py;
            for (;;) {
                dot(dots, cols, rows, a, b);
                if (a == cx && b == cy) break;
                int e2 = 2 * e;
                if (e2 >= dy) e += dy, a += sx;
                if (e2 <= dx) e += dx, b += sy;
            }
        } else
            dot(dots, cols, rows, cx, cy);
        px = cx, py = cy, have = 1;
    }
}
