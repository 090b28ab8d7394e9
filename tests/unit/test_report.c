/* The report's pieces: downsampling, ticks, the braille raster, the SVG
 * chart writer, metric grouping, the run and curve queries, the page. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/registry.h"
#include "db/report.h"
#include "fixtures.h"
#include "viz/chart.h"
#include "viz/report.h"

Test(viz, downsample_keeps_ends_and_extremes) {
    enum { N = 10000, B = 50 };
    static double x[N], y[N], ox[2 * B + 2], oy[2 * B + 2];
    for (int i = 0; i < N; i++)
        x[i] = i, y[i] = sin(i * 0.01);
    y[4321] = 50, y[777] = -50;
    int64_t m = viz_downsample(x, y, N, B, ox, oy);
    cr_assert(m <= 2 * B + 2 && m > B);
    cr_assert_eq(ox[0], 0);
    cr_assert_eq(ox[m - 1], N - 1);
    int hi = 0, lo = 0;
    for (int64_t i = 0; i < m; i++) {
        if (i) cr_assert(ox[i] > ox[i - 1], "out of order at %lld", (long long)i);
        hi |= oy[i] == 50, lo |= oy[i] == -50;
    }
    cr_assert(hi && lo, "an extreme was lost");
    /* short curves pass through unchanged */
    cr_assert_eq(viz_downsample(x, y, 10, B, ox, oy), 10);
    cr_assert_eq(oy[3], y[3]);
}

Test(viz, ticks_are_round_and_inside) {
    double t[16];
    int n = viz_ticks(0.13, 0.91, 6, t);
    cr_assert(n >= 3 && n <= 6);
    for (int i = 0; i < n; i++) {
        cr_assert(t[i] >= 0.13 && t[i] <= 0.91);
        cr_assert_float_eq(t[i] * 10, round(t[i] * 10), 1e-9, "%g is not round", t[i]);
    }
    cr_assert_eq(viz_ticks(5, 5, 6, t), 1);
}

Test(viz, braille_diagonal_and_flat) {
    enum { C = 10, R = 4 };
    unsigned char d[C * R];
    double x[] = {0, 1}, y[] = {0, 1};
    viz_braille(x, y, 2, 0, 1, 0, 1, C, R, d);
    cr_assert(d[(R - 1) * C + 0] & 0x40, "bottom-left dot");
    cr_assert(d[0 * C + C - 1] & 0x08, "top-right dot");
    cr_assert_eq(d[0], 0, "top-left is empty");
    int cells = 0;
    for (int i = 0; i < C * R; i++)
        cells += d[i] != 0;
    cr_assert(cells >= C, "the line is joined: %d cells", cells);
    /* a constant curve has no y range: a line across the middle */
    double fy[] = {2, 2};
    viz_braille(x, fy, 2, 0, 1, 2, 2, C, R, d);
    for (int c = 0; c < C; c++)
        cr_assert(d[(R / 2) * C + c] != 0);
}

static char *chart_text(const VizChart *c) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(viz_svg_chart(f, c), 0);
    fclose(f);
    return buf;
}

Test(viz, svg_chart) {
    double x[] = {1, 2, 3, 4}, y[] = {1, NAN, 3, 2}, y2[] = {0, 1, 0, 1};
    VizSeries s[2] = {{"a<b", x, y, 4, NULL, NULL}, {"second", x, y2, 4, NULL, NULL}};
    VizChart c = {
        .title = "KL & co", .series = s, .n_series = 2, .hline = 2.5, .hline_label = "target"};
    char *t = chart_text(&c);
    cr_assert(strstr(t, "<svg class=\"chart\" viewBox=\"0 0 520 "));
    cr_assert(strstr(t, "<title>KL &amp; co</title>"));
    cr_assert(strstr(t, "a&lt;b"), "legend escaped");
    cr_assert(strstr(t, "class=\"hl\""), "target line");
    cr_assert(!strstr(t, "nan"), "a NaN reached the SVG");
    int polys = 0;
    for (const char *p = t; (p = strstr(p, "<polyline")); p++)
        polys++;
    cr_assert_eq(polys, 2);
    free(t);
    /* nothing finite: a note, not a broken chart */
    double ny[] = {NAN, INFINITY};
    VizSeries e = {"x", x, ny, 2, NULL, NULL};
    VizChart ce = {.title = "empty", .series = &e, .n_series = 1, .hline = NAN};
    t = chart_text(&ce);
    cr_assert(strstr(t, "no finite values"));
    free(t);
    /* intervals: a whisker per point, category names on the axis */
    double lo[] = {0.5, 1.5}, hi[] = {1.5, 2.5}, cy[] = {1, 2}, cx[] = {0, 1};
    const char *cats[] = {"sft", "ppo-1"};
    VizSeries w = {"rating", cx, cy, 2, lo, hi};
    VizChart cw = {.title = "ratings",
                   .series = &w,
                   .n_series = 1,
                   .hline = NAN,
                   .xcats = cats,
                   .n_xcats = 2,
                   .no_lines = 1};
    t = chart_text(&cw);
    cr_assert(strstr(t, ">ppo-1</text>"));
    int wh = 0;
    for (const char *p = t; (p = strstr(p, "class=\"wh\"")); p++)
        wh++;
    cr_assert_eq(wh, 2);
    cr_assert(!strstr(t, "<polyline"));
    free(t);
}

/* every x="..." of the chart's text and shapes lies on the canvas */
static void assert_on_canvas(const char *t) {
    for (const char *p = t; (p = strstr(p, " x=\"")); p++) {
        double x = atof(p + 4);
        cr_assert(x >= 0 && x <= VIZ_W, "x=%g off the canvas", x);
    }
}

Test(viz, legend_and_categories_stay_on_canvas) {
    double x[] = {1, 2, 3}, y[] = {1, 2, 3};
    VizSeries s[6];
    const char *names[] = {"rewards/chosen",      "rewards/rejected",      "rewards/margins",
                           "eval/rewards/chosen", "eval/rewards/rejected", "eval/rewards/margins"};
    for (int i = 0; i < 6; i++)
        s[i] = (VizSeries){names[i], x, y, 3, NULL, NULL};
    VizChart c = {.title = "Reward", .ylabel = "reward", .series = s, .n_series = 6, .hline = NAN};
    char *t = chart_text(&c);
    assert_on_canvas(t);
    cr_assert(strstr(t, ">eval/rewards/margins</text>"));
    cr_assert(strstr(t, "rotate(-90 16 "), "a y-axis title");
    free(t);
    /* eight long names on eight categories: upright, as bars */
    const char *cats[] = {"sim-careful-r2", "sim-hasty-r2", "sim-biased", "sim-careful",
                          "sim-hasty",      "alice-long-name", "bob-long-name", "carol-long"};
    double cx[8], cy[8];
    for (int i = 0; i < 8; i++)
        cx[i] = i, cy[i] = i + 1;
    VizSeries b = {"seconds", cx, cy, 8, NULL, NULL};
    VizChart cb = {.title = "Mean time per prompt (s)", .series = &b, .n_series = 1,
                   .hline = NAN, .xcats = cats, .n_xcats = 8, .bars = 1};
    t = chart_text(&cb);
    assert_on_canvas(t);
    cr_assert(strstr(t, "text-anchor=\"end\" transform=\"rotate(-90"), "names stand upright");
    int bars = 0;
    for (const char *p = t; (p = strstr(p, "class=\"bar\"")); p++)
        bars++;
    cr_assert_eq(bars, 8);
    free(t);
}

Test(viz, metric_groups) {
    const char *title;
    cr_assert_eq(report_metric_group("train_loss", &title),
                 report_metric_group("loss/value_avg", NULL));
    cr_assert_str_eq(title, "Loss");
    report_metric_group("objective/kl", &title);
    cr_assert_str_eq(title, "KL");
    report_metric_group("rewards/accuracies", &title);
    cr_assert_str_eq(title, "Accuracy");
    report_metric_group("rewards/margins", &title);
    cr_assert_str_eq(title, "Reward");
    report_metric_group("val/clipfrac_avg", &title);
    cr_assert_str_eq(title, "Clip fraction");
    cr_assert_eq(report_metric_group("something/new", &title), -1);
    cr_assert_str_eq(title, "something/new");
}

Test(db_report, runs_and_series) {
    char path[64];
    Db *db = tmp_db(path);
    Err e = {0};
    int64_t a, b, id;
    cr_assert_eq(db_run_newest(db, 0, &id, &e), RLHF_ENOTFOUND);
    cr_assert_eq(db_run_start(db, "pretrain", "{}", 0, &a, &e), 0);
    cr_assert_eq(db_run_start(db, "ppo", "{\"kl_target\":6}", 0, &b, &e), 0);
    for (int s = 1; s <= 5; s++) {
        cr_assert_eq(db_metric_add(db, a, s, "train_loss", 5.0 - s, &e), 0);
        cr_assert_eq(db_metric_add(db, a, 10 * s, "val_loss", s, &e), 0);
    }
    cr_assert_eq(db_run_finish(db, a, "done", 0, NULL, &e), 0);
    cr_assert_eq(db_run_newest(db, 0, &id, &e), 0);
    cr_assert_eq(id, b);
    cr_assert_eq(db_run_newest(db, 1, &id, &e), 0);
    cr_assert_eq(id, b);
    cr_assert_eq(db_run_finish(db, b, "failed", 0, "boom", &e), 0);
    cr_assert_eq(db_run_newest(db, 1, &id, &e), RLHF_ENOTFOUND);
    /* an evaluation after them: watch still follows the training run */
    int64_t ev;
    cr_assert_eq(db_run_start(db, "eval", "{}", 0, &ev, &e), 0);
    cr_assert_eq(db_run_finish(db, ev, "done", 0, NULL, &e), 0);
    cr_assert_eq(db_run_to_follow(db, &id, &e), 0);
    cr_assert_eq(id, b);
    cr_assert_eq(db_run_newest(db, 0, &id, &e), 0);
    cr_assert_eq(id, ev);

    RunRow *r;
    int n;
    cr_assert_eq(db_runs_list(db, NULL, &r, &n, &e), 0, "%s", e.msg);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(r[0].kind, "pretrain");
    cr_assert_eq(r[0].n_points, 10);
    cr_assert_eq(r[0].last_step, 50);
    cr_assert_str_eq(r[1].note, "boom");
    db_runs_free(r, n);
    RunFilter f = {.kind = "ppo"};
    cr_assert_eq(db_runs_list(db, &f, &r, &n, &e), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(r[0].id, b);
    db_runs_free(r, n);
    f = (RunFilter){.since = "2999-01-01"};
    cr_assert_eq(db_runs_list(db, &f, &r, &n, &e), 0);
    cr_assert_eq(n, 0);
    db_runs_free(r, n);

    cr_assert_eq(db_run_get(db, b, &r, &e), 0);
    cr_assert_str_eq(r[0].config, "{\"kl_target\":6}");
    db_runs_free(r, 1);
    cr_assert_eq(db_run_get(db, 99, &r, &e), RLHF_ENOTFOUND);
    cr_assert(strstr(e.msg, "99"));

    MetricSeries *s;
    cr_assert_eq(db_run_series(db, a, &s, &n, &e), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(s[0].name, "train_loss");
    cr_assert_eq(s[0].n, 5);
    cr_assert_eq(s[0].step[4], 5);
    cr_assert_eq(s[0].value[4], 0);
    cr_assert_str_eq(s[1].name, "val_loss");
    cr_assert_eq(s[1].step[1], 20);
    db_series_free(s, n);
    cr_assert_eq(db_run_series(db, b, &s, &n, &e), 0);
    cr_assert_eq(n, 0);
    db_series_free(s, n);
    rm_db(db, path);
}

static char *page(Db *db, const ReportOptions *o, ReportStats *st) {
    char *buf = NULL;
    size_t len = 0;
    Err e = {0};
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(report_write_html(f, db, o, st, &e), 0, "%s", e.msg);
    fclose(f);
    return buf;
}

Test(viz_report, empty_then_a_run) {
    char path[64];
    Db *db = tmp_db(path);
    ReportOptions o = report_options_default();
    ReportStats st;
    char *t = page(db, &o, &st);
    cr_assert(strstr(t, "Nothing to report yet"));
    cr_assert(strstr(t, "</html>"));
    cr_assert_eq(st.charts, 0);
    free(t);
    Err e = {0};
    int64_t r;
    cr_assert_eq(db_run_start(db, "ppo", "{\"kl_target\":6}", 0, &r, &e), 0);
    for (int s = 1; s <= 20; s++) {
        db_metric_add(db, r, s, "objective/kl", s, &e);
        db_metric_add(db, r, s, "objective/scores", s, &e);
        db_metric_add(db, r, s, "objective/rlhf_reward", s, &e);
        db_metric_add(db, r, s, "brand/new", s, &e);
    }
    db_metric_add(db, r, 0, "only/once", 7, &e);
    t = page(db, &o, &st);
    cr_assert_eq(st.runs, 1);
    cr_assert_eq(st.charts, 3, "KL, Reward, brand/new: %d", st.charts);
    cr_assert_eq(st.points, 81);
    cr_assert(strstr(t, "KL target"));
    cr_assert(strstr(t, "<title>brand/new</title>"));
    cr_assert(strstr(t, "<td>only/once</td>"), "a single point goes to the table");
    cr_assert(!strstr(t, "Nothing to report"));
    free(t);
    rm_db(db, path);
}

/* Label efficiency: runs of samples/label_efficiency.sh draw one curve per
 * order, the mean over repeats with whiskers at the lowest and highest run;
 * without such runs the section is absent, and they do not show as training runs. */
Test(viz_report, label_efficiency_curve) {
    char path[64];
    Db *db = tmp_db(path);
    ReportOptions o = report_options_default();
    ReportStats st;
    Err e = {0};
    int64_t r;
    cr_assert_eq(db_run_start(db, "ppo", "{}", 0, &r, &e), 0);
    for (int s = 1; s <= 5; s++)
        db_metric_add(db, r, s, "objective/scores", s, &e);
    char *t = page(db, &o, &st);
    cr_assert(!strstr(t, "Label efficiency"), "no curve without its runs");
    cr_assert(!strstr(t, "#label-efficiency"));
    free(t);
    /* random: 0.5/0.6 at 8, 0.7/0.8 at 16; uncertain: 0.6/0.6 at 8, 0.9/0.7 at 16 */
    const char *orders[] = {"random", "uncertain"};
    double acc[2][2][2] = {{{0.5, 0.7}, {0.6, 0.8}}, {{0.6, 0.9}, {0.6, 0.7}}};
    for (int k = 0; k < 2; k++)
        for (int rep = 0; rep < 2; rep++) {
            char cfg[96];
            snprintf(cfg, sizeof cfg, "{\"order\":\"%s\",\"repeat\":%d}", orders[k], rep + 1);
            cr_assert_eq(db_run_start(db, "label-efficiency", cfg, 0, &r, &e), 0);
            for (int s = 0; s < 2; s++)
                cr_assert_eq(
                    db_metric_add(db, r, 8 * (s + 1), "heldout_accuracy", acc[k][rep][s], &e), 0);
            cr_assert_eq(db_run_finish(db, r, "done", 0, NULL, &e), 0);
        }
    t = page(db, &o, &st);
    cr_assert(strstr(t, "<h2 id=\"label-efficiency\">Label efficiency</h2>"));
    cr_assert(strstr(t, "<a href=\"#label-efficiency\">"));
    cr_assert(strstr(t, "RM accuracy by labeling order"), "the chart");
    cr_assert_eq(st.runs, 1, "label-efficiency runs are not training runs");
    /* the table: order, ranked, runs, mean, lowest, highest */
    cr_assert(
        strstr(t, "<td>random</td><td>8</td><td>2</td><td>0.550</td><td>0.500</td><td>0.600</td>"),
        "%s", strstr(t, "Label efficiency"));
    cr_assert(strstr(
        t, "<td>random</td><td>16</td><td>2</td><td>0.750</td><td>0.700</td><td>0.800</td>"));
    cr_assert(strstr(
        t, "<td>uncertain</td><td>16</td><td>2</td><td>0.800</td><td>0.700</td><td>0.900</td>"));
    const char *sec = strstr(t, "Label efficiency</h2>");
    cr_assert(strstr(sec, "<svg") && strstr(sec, ">uncertain<") && strstr(sec, ">random<"),
              "both curves in the chart's legend");
    free(t);
    rm_db(db, path);
}
