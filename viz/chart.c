/* The SVG line-chart writer, downsampling and the braille raster. */
#include "viz/chart.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

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

/* the data's extent over every series (whiskers, the reference line and a
 * bar's base included) */
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
    if (c->bars) *y0 = fmin(*y0, 0), *y1 = fmax(*y1, 0);
    if (c->xcats) *x0 = -0.5, *x1 = c->n_xcats - 0.5;
    if (!any) return 0;
    if (*x1 <= *x0) *x0 -= 1, *x1 += 1;
    double pad = (*y1 - *y0) * 0.05;
    if (pad <= 0) pad = fabs(*y0) > 0 ? fabs(*y0) * 0.1 : 1;
    if (!c->bars || *y0 < 0) *y0 -= pad;
    *y1 += pad;
    return 1;
}

/* Text sizes (user units; the report's CSS sets the same) and an estimate of
 * a character's width, generous so that estimated boxes hold the real ones. */
enum { FS_TITLE = 15, FS = 13, PH = 180, MR = 14, MT = 34, LEG_ROW = 18, CAT_MAX = 28 };
#define CHW (0.62 * FS)
#define TTW (0.62 * FS_TITLE)

static double text_w(const char *s, double chw) {
    double n = 0;
    for (; s && *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80; /* UTF-8: count characters */
    return n * chw;
}

/* writes s cut to at most max characters (an ellipsis marks a cut) */
static void put_cut(FILE *f, const char *s, int max) {
    int n = 0;
    const char *p = s;
    for (; p && *p; p++)
        if (((unsigned char)*p & 0xc0) != 0x80 && ++n > max) break;
    if (!p || !*p) {
        viz_html_escape(f, s);
        return;
    }
    char buf[256];
    int len = 0;
    for (n = 0, p = s; *p && len < (int)sizeof buf - 1; p++) {
        if (((unsigned char)*p & 0xc0) != 0x80 && ++n > max - 1) break;
        buf[len++] = *p;
    }
    buf[len] = 0;
    viz_html_escape(f, buf);
    fputs("&#8230;", f);
}

typedef struct Layout {
    double ml, pw, h;  /* left margin, plot width, canvas height */
    int leg_top;       /* legend beside the title (1) or in rows below (0) */
    double leg_y;      /* the first legend row's baseline when below */
    int cat_up;        /* category names upright */
    int cat_every;     /* a name at every n-th category */
    double xlab_y;     /* the x axis title's baseline */
} Layout;

static const char *legend_name(const VizChart *c, int k) {
    if (k == c->n_series) return c->hline_label ? c->hline_label : "target";
    return c->series[k].name ? c->series[k].name : "";
}

/* the legend's entries: every series when there are several, and the
 * reference line */
static int legend_has(const VizChart *c, int k) {
    return k == c->n_series ? isfinite(c->hline) : c->n_series > 1;
}

static double legend_entry_w(const VizChart *c, int k) {
    double w = text_w(legend_name(c, k), CHW);
    double cap = VIZ_W - 2 * MR - 14;
    return 14 + (w < cap ? w : cap);
}

static void layout(const VizChart *c, const char ticks[][32], int nt, Layout *L) {
    double tw = 0;
    for (int i = 0; i < nt; i++)
        tw = fmax(tw, text_w(ticks[i], CHW));
    L->ml = (c->ylabel ? 22 : 6) + tw + 8;
    if (L->ml < 40) L->ml = 40;
    L->pw = VIZ_W - L->ml - MR;
    double axis = MT + PH, y = axis + 18; /* the tick labels' baseline */
    L->cat_up = 0, L->cat_every = 1;
    if (c->xcats && c->n_xcats > 0) {
        double slot = L->pw / c->n_xcats, widest = 0;
        for (int i = 0; i < c->n_xcats; i++)
            widest = fmax(widest, fmin(text_w(c->xcats[i], CHW), CAT_MAX * CHW));
        if (widest > slot - 8) {
            L->cat_up = 1;
            while (slot * L->cat_every < FS + 3)
                L->cat_every++;
            y = axis + 8 + widest;
        }
    }
    L->xlab_y = y + 20;
    double leg = 0;
    int entries = 0;
    for (int k = 0; k <= c->n_series; k++)
        if (legend_has(c, k)) leg += legend_entry_w(c, k) + 12, entries++;
    L->leg_top = entries == 0 || 8 + text_w(c->title, TTW) + 20 + leg <= VIZ_W - MR;
    L->leg_y = L->xlab_y + 22;
    double h = L->xlab_y + 10;
    if (!L->leg_top) { /* rows below, left to right */
        double x = L->ml;
        int rows = 1;
        for (int k = 0; k <= c->n_series; k++) {
            if (!legend_has(c, k)) continue;
            double w = legend_entry_w(c, k);
            if (x > L->ml && x + w > VIZ_W - MR) x = L->ml, rows++;
            x += w + 12;
        }
        h = L->leg_y + (rows - 1) * LEG_ROW + 8;
    }
    L->h = ceil(h);
}

static void legend_entry(FILE *f, const VizChart *c, int k, double x, double y) {
    if (k == c->n_series)
        fprintf(f, "<line class=\"hl\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", x,
                x + 11, y - 4, y - 4);
    else
        fprintf(f, "<rect class=\"k%d\" x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"8\"/>", k % 8,
                x, y - 8);
    fprintf(f, "<text class=\"lg\" x=\"%.1f\" y=\"%.1f\">", x + 14, y);
    put_cut(f, legend_name(c, k), (int)((VIZ_W - 2 * MR - 14) / CHW));
    fputs("</text>", f);
}

static void legend(FILE *f, const VizChart *c, const Layout *L) {
    if (L->leg_top) { /* right-aligned on the title's line */
        double x = VIZ_W - MR;
        for (int k = c->n_series; k >= 0; k--)
            if (legend_has(c, k)) x -= legend_entry_w(c, k) + 12, legend_entry(f, c, k, x + 12, 20);
        return;
    }
    double x = L->ml, y = L->leg_y;
    for (int k = 0; k <= c->n_series; k++) {
        if (!legend_has(c, k)) continue;
        double w = legend_entry_w(c, k);
        if (x > L->ml && x + w > VIZ_W - MR) x = L->ml, y += LEG_ROW;
        legend_entry(f, c, k, x, y);
        x += w + 12;
    }
}

int viz_svg_chart(FILE *f, const VizChart *c) {
    double x0, x1, y0, y1;
    int any = extent(c, &x0, &x1, &y0, &y1);
    double t[16];
    char tl[16][32];
    int nt = any ? viz_ticks(y0, y1, 6, t) : 0;
    for (int i = 0; i < nt; i++)
        fmt_num(tl[i], sizeof tl[i], t[i]);
    Layout L;
    layout(c, (const char(*)[32])tl, nt, &L);
    const double ML = L.ml, pw = L.pw, ph = PH;
#define PX(v) (ML + ((v)-x0) / (x1 - x0) * pw)
#define PY(v) (MT + (1 - ((v)-y0) / (y1 - y0)) * ph)
    fprintf(f,
            "<svg class=\"chart\" viewBox=\"0 0 %d %.0f\" role=\"img\" "
            "xmlns=\"http://www.w3.org/2000/svg\">",
            VIZ_W, any ? L.h : 120.0);
    fputs("<title>", f);
    viz_html_escape(f, c->title);
    fputs("</title><text class=\"ct\" x=\"8\" y=\"20\">", f);
    put_cut(f, c->title, (int)((VIZ_W - 16) / TTW));
    fputs("</text>", f);
    if (!any) {
        fprintf(f, "<text class=\"ax\" x=\"%d\" y=\"70\">no finite values</text></svg>\n",
                VIZ_W / 2 - 50);
        return ferror(f) ? RLHF_EIO : RLHF_OK;
    }
    fprintf(f, "<rect class=\"pa\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%.0f\"/>", ML, MT,
            pw, ph);
    for (int i = 0; i < nt; i++)
        fprintf(f,
                "<line class=\"gr\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
                "<text class=\"ax\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>",
                ML, ML + pw, PY(t[i]), PY(t[i]), ML - 5, PY(t[i]) + 4, tl[i]);
    if (c->ylabel) {
        fprintf(f,
                "<text class=\"ax\" x=\"16\" y=\"%.1f\" text-anchor=\"middle\" "
                "transform=\"rotate(-90 16 %.1f)\">",
                MT + ph / 2, MT + ph / 2);
        put_cut(f, c->ylabel, (int)(ph / CHW));
        fputs("</text>", f);
    }
    double axis = MT + ph;
    if (c->xcats) {
        for (int i = 0; i < c->n_xcats; i += L.cat_every) {
            if (L.cat_up)
                fprintf(f,
                        "<text class=\"ax\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
                        "transform=\"rotate(-90 %.1f %.1f)\">",
                        PX((double)i) + FS / 3.0, axis + 8, PX((double)i) + FS / 3.0, axis + 8);
            else
                fprintf(f, "<text class=\"ax\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                        PX((double)i), axis + 18);
            put_cut(f, c->xcats[i], CAT_MAX);
            fputs("</text>", f);
        }
    } else {
        int nx = viz_ticks(x0, x1, 7, t);
        char b[32];
        double last = -1e9;
        for (int i = 0; i < nx; i++) {
            if (!c->xlabel && t[i] != floor(t[i])) continue; /* steps are whole */
            fmt_num(b, sizeof b, t[i]);
            double w = text_w(b, CHW), x = PX(t[i]);
            if (x - w / 2 < last + 6 || x + w / 2 > VIZ_W) continue; /* no overlaps */
            fprintf(f, "<text class=\"ax\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>",
                    x, axis + 18, b);
            last = x + w / 2;
        }
    }
    fprintf(f, "<text class=\"ax\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", ML + pw / 2,
            L.xlab_y);
    viz_html_escape(f, c->xlabel ? c->xlabel : "step");
    fputs("</text>", f);
    if (isfinite(c->hline))
        fprintf(f, "<line class=\"hl\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", ML,
                ML + pw, PY(c->hline), PY(c->hline));
    legend(f, c, &L);
    int cap = c->max_points > 0 ? c->max_points : 300;
    /* several series on categories: side by side within each category */
    double spread = c->xcats && c->n_series > 1 ? fmin(0.6 / c->n_series, 0.2) : 0;
    double bw = c->xcats ? 0.7 * pw / (c->n_xcats > 0 ? c->n_xcats : 1) / c->n_series : 6;
    for (int k = 0; k < c->n_series; k++) {
        const VizSeries *s = &c->series[k];
        int whisk = s->lo && s->hi;
        int64_t m = s->n;
        double *xs = NULL, *ys = NULL;
        const double *px = s->x, *py = s->y;
        double off = spread * (k - (c->n_series - 1) / 2.0);
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
        if (!c->no_lines && !c->bars && m > 1) {
            fputs("<polyline points=\"", f);
            for (int64_t i = 0; i < m; i++)
                if (isfinite(py[i]) && isfinite(px[i]))
                    fprintf(f, "%.1f,%.1f ", PX(px[i]), PY(py[i]));
            fputs("\"/>", f);
        }
        for (int64_t i = 0; i < m && c->bars; i++)
            if (isfinite(py[i]) && isfinite(px[i])) {
                double a = PY(py[i]), z = PY(0.0);
                fprintf(f,
                        "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                        "height=\"%.1f\"/>",
                        PX(px[i] + off) - bw / 2, fmin(a, z), bw, fabs(z - a));
            }
        for (int64_t i = 0; i < m && !c->bars && (c->markers || whisk || m == 1); i++) {
            if (!isfinite(py[i]) || !isfinite(px[i])) continue;
            double x = PX(px[i] + off);
            if (whisk && isfinite(s->lo[i]) && isfinite(s->hi[i]))
                fprintf(f, "<line class=\"wh\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>",
                        x, x, PY(s->lo[i]), PY(s->hi[i]));
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\"/>", x, PY(py[i]));
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
