/* The HTML report: a page of sections (final table, runs, ratings, labelers,
 * reward model against labelers, label efficiency), every chart drawn by
 * viz_svg_chart. */
#include "rm/demo_agree.h"
#include "viz/report.h"

#include <cjson/cJSON.h>
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rm/agreement.h"
#include "rm/elo.h"
#include "viz/chart.h"

#define H viz_html_escape

ReportOptions report_options_default(void) {
    ReportOptions o = {0};
    o.rankings = db_ranking_filter_default();
    o.seed = 42;
    return o;
}

/* Known metrics, grouped on one chart each, in this order; the first group
 * whose pattern matches takes the metric. Anything else gets its own chart. */
static const struct {
    const char *title, *unit; /* unit: the y axis's title */
    const char *pat[6];
} GROUPS[] = {
    {"Loss", "loss", {"*loss*"}},
    {"Accuracy", "accuracy (share of pairs)", {"*accurac*"}},
    {"Reward", "reward (RM score)",
     {"objective/scores", "objective/rlhf_reward", "rewards/*", "*reward*"}},
    {"KL", "KL (nats)", {"objective/kl", "objective/kl_full", "*approxkl*", "kl", "*/kl"}},
    {"Entropy", "entropy (nats)", {"*entropy*"}},
    {"Clip fraction", "share clipped", {"*clipfrac*"}},
    {"Answer length", "tokens", {"answer/length*", "*length*"}},
    {"Learning rate", "learning rate", {"lr", "*/lr", "learning_rate"}},
    {"Gradient norm", "L2 norm", {"grad_norm", "*/grad_norm"}},
    {"Throughput", "per second", {"*_per_s"}},
    {"Seconds per step", "seconds", {"time/*"}},
};
enum { N_GROUPS = sizeof GROUPS / sizeof GROUPS[0] };

/* A run of samples/label_efficiency.sh: one order, one repeat, its RM's
 * held-out accuracy (metric heldout_accuracy) at each number of ranked
 * prompts (the step); config {"order": ..., "repeat": ...}. */
#define LABEL_EFF_KIND "label-efficiency"
enum { LE_ORDERS = 8 };

static int is_label_eff(const RunRow *r) {
    return strcmp(r->kind, LABEL_EFF_KIND) == 0;
}

int report_metric_group(const char *name, const char **title) {
    for (int g = 0; g < N_GROUPS; g++)
        for (int k = 0; k < 6 && GROUPS[g].pat[k]; k++)
            if (fnmatch(GROUPS[g].pat[k], name, 0) == 0) {
                if (title) *title = GROUPS[g].title;
                return g;
            }
    if (title) *title = name;
    return -1;
}

static const char CSS[] =
    "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;"
    "max-width:1100px;padding:0 12px 40px;color:#222;background:#fff}"
    "h1{font-size:1.5em;margin:.8em 0 .2em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}"
    "h3{font-size:1.05em;margin:1.2em 0 .3em}nav a{margin-right:1em}"
    ".meta,.note{color:#666;font-size:.9em}.empty{padding:1em;background:#f6f6f6}"
    ".charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(400px,1fr));gap:8px}"
    "figure{margin:0;min-width:0;break-inside:avoid;page-break-inside:avoid}"
    "svg.chart{width:100%;height:auto;display:block}"
    ".wrap{overflow-x:auto;max-width:100%}"
    "table{border-collapse:collapse;margin:.4em 0;font-size:.9em}"
    "th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}"
    "th:first-child,td:first-child,th.judge,td.name{text-align:left}th{background:#f3f3f3}"
    "th.judge{vertical-align:top}td{white-space:nowrap}"
    /* the charts' text sizes are viz/chart.c's (its layout counts on them) */
    ".ct{font-size:15px;font-weight:600;fill:#222}.ax{font-size:13px;fill:#555}"
    ".lg{font-size:13px;fill:#333}.pa{fill:none;stroke:#bbb}.gr{stroke:#eee}"
    ".hl{stroke:#c00;stroke-dasharray:5 4;stroke-width:1.5}"
    "polyline{fill:none;stroke-width:1.8;stroke-linejoin:round;vector-effect:non-scaling-stroke}"
    ".wh{stroke-width:1.5}"
    ".s0 polyline,.s0 .wh{stroke:#1f77b4}.s0 circle,.s0 .bar,.k0{fill:#1f77b4}"
    ".s1 polyline,.s1 .wh{stroke:#ff7f0e}.s1 circle,.s1 .bar,.k1{fill:#ff7f0e}"
    ".s2 polyline,.s2 .wh{stroke:#2ca02c}.s2 circle,.s2 .bar,.k2{fill:#2ca02c}"
    ".s3 polyline,.s3 .wh{stroke:#d62728}.s3 circle,.s3 .bar,.k3{fill:#d62728}"
    ".s4 polyline,.s4 .wh{stroke:#9467bd}.s4 circle,.s4 .bar,.k4{fill:#9467bd}"
    ".s5 polyline,.s5 .wh{stroke:#8c564b}.s5 circle,.s5 .bar,.k5{fill:#8c564b}"
    ".s6 polyline,.s6 .wh{stroke:#e377c2}.s6 circle,.s6 .bar,.k6{fill:#e377c2}"
    ".s7 polyline,.s7 .wh{stroke:#7f7f7f}.s7 circle,.s7 .bar,.k7{fill:#7f7f7f}"
    /* a phone: charts as wide as the screen, so that their text stays readable;
     * wide tables scroll inside their box, their cells wrap */
    "@media (max-width:640px){body{font-size:14px;padding:0 4px 30px}"
    ".charts{grid-template-columns:minmax(0,1fr)}th,td{padding:2px 4px}}"
    "@media print{nav{display:none}body{max-width:none;font-size:11pt}"
    ".charts{grid-template-columns:1fr 1fr}h2{break-after:avoid;page-break-after:avoid}"
    ".wrap{overflow:visible}}";

typedef struct Ctx {
    FILE *f;
    Db *db;
    const ReportOptions *o;
    ReportStats st;
    Err *err;
} Ctx;

static void num(FILE *f, const char *fmt, double v) {
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fputs("&#8212;", f);
}

static void td_num(FILE *f, const char *fmt, double v) {
    fputs("<td>", f);
    num(f, fmt, v);
    fputs("</td>", f);
}

static void td_str(FILE *f, const char *s) {
    fputs("<td>", f);
    if (s && *s)
        H(f, s);
    else
        fputs("&#8212;", f);
    fputs("</td>", f);
}

static int chart(Ctx *c, const VizChart *ch) {
    fputs("<figure>", c->f);
    int rc = viz_svg_chart(c->f, ch);
    fputs("</figure>\n", c->f);
    c->st.charts++;
    if (rc)
        return err_set(c->err, rc, "write a chart: %s",
                       rc == RLHF_ENOMEM ? "out of memory" : "I/O error");
    return RLHF_OK;
}

/* A chart on a row of its own (as wide as the grid's column). */
static int chart_alone(Ctx *c, const VizChart *ch) {
    fputs("<div class=\"charts\">", c->f);
    int rc = chart(c, ch);
    fputs("</div>\n", c->f);
    return rc;
}

static double series_last(const MetricSeries *s, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(s[i].name, name) == 0 && s[i].n > 0) return s[i].value[s[i].n - 1];
    return NAN;
}

static double config_number(const char *json, const char *key) {
    double v = NAN;
    cJSON *j = json ? cJSON_Parse(json) : NULL;
    cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    if (cJSON_IsNumber(x)) v = x->valuedouble;
    cJSON_Delete(j);
    return v;
}

/* ---- runs ------------------------------------------------------------------ */

/* The largest |value| of a curve. */
static double magnitude(const VizSeries *v) {
    double m = 0;
    for (int64_t i = 0; i < v->n; i++)
        if (isfinite(v->y[i])) m = fmax(m, fabs(v->y[i]));
    return m;
}

/* One group's k curves (vs, reordered here) on as many charts as their scales
 * need: from the largest down, a curve joins the chart while its largest
 * |value| is at least a tenth of the chart's, else it would lie flat along
 * one edge (a policy loss of 1e-4 beside a value loss of 0.3). A chart
 * holding only part of the group names its curves in its title. The target
 * line goes on the chart of the largest curves. */
static int group_charts(Ctx *c, int g, VizSeries *vs, int k, double hline) {
    double *mag = malloc(sizeof *mag * (size_t)k);
    if (!mag) return err_set(c->err, RLHF_ENOMEM, "out of memory");
    for (int i = 0; i < k; i++)
        mag[i] = magnitude(&vs[i]);
    for (int i = 1; i < k; i++) /* by magnitude, descending; stable */
        for (int j = i; j > 0 && mag[j] > mag[j - 1]; j--) {
            VizSeries t = vs[j];
            double m = mag[j];
            vs[j] = vs[j - 1], mag[j] = mag[j - 1];
            vs[j - 1] = t, mag[j - 1] = m;
        }
    int rc = RLHF_OK;
    for (int a = 0, b; a < k && !rc; a = b) {
        for (b = a + 1; b < k && mag[b] * 10 >= mag[a]; b++)
            ;
        char title[160];
        int len = snprintf(title, sizeof title, "%s", GROUPS[g].title);
        for (int i = a; i < b && (b - a < k || k == 1) && len < (int)sizeof title; i++)
            len += snprintf(title + len, sizeof title - (size_t)len, "%s%s", i == a ? ": " : ", ",
                            vs[i].name);
        VizChart ch = {.title = title,
                       .ylabel = GROUPS[g].unit,
                       .series = vs + a,
                       .n_series = b - a,
                       .hline = a == 0 ? hline : NAN,
                       .hline_label = "KL target",
                       .max_points = c->o->max_points};
        rc = chart(c, &ch);
    }
    free(mag);
    return rc;
}

static int run_charts(Ctx *c, const RunRow *r) {
    FILE *f = c->f;
    MetricSeries *s;
    int n, rc = db_run_series(c->db, r->id, &s, &n, c->err);
    if (rc) return rc;
    fprintf(f, "<h3 id=\"run-%lld\">Run %lld: ", (long long)r->id, (long long)r->id);
    H(f, r->kind);
    fputs("</h3><p class=\"meta\">", f);
    H(f, r->status);
    fputs(", started ", f);
    H(f, r->started_at);
    if (r->finished_at) fputs(", finished ", f), H(f, r->finished_at);
    if (r->input_model) fputs("; from ", f), H(f, r->input_model);
    if (r->output_model) fputs("; wrote ", f), H(f, r->output_model);
    if (r->note) fputs("; ", f), H(f, r->note);
    fputs("</p>\n", f);
    if (n == 0) fputs("<p class=\"note\">No metrics recorded.</p>\n", f);
    VizSeries *vs = malloc(sizeof *vs * (size_t)(n ? n : 1));
    int *grp = malloc(sizeof *grp * (size_t)(n ? n : 1));
    if (!vs || !grp) rc = err_set(c->err, RLHF_ENOMEM, "out of memory");
    int singles = 0;
    for (int i = 0; !rc && i < n; i++) {
        grp[i] = report_metric_group(s[i].name, NULL);
        singles += s[i].n == 1;
        c->st.points += s[i].n;
    }
    double kl_target = config_number(r->config, "kl_target");
    if (!rc && n > singles) fputs("<div class=\"charts\">\n", f);
    for (int g = 0; !rc && g <= N_GROUPS; g++) {
        /* g == N_GROUPS: the metrics of no group, a chart each */
        int k = 0;
        for (int i = 0; i < n && !rc; i++) {
            if (s[i].n < 2 || (g < N_GROUPS ? grp[i] != g : grp[i] >= 0)) continue;
            vs[k++] = (VizSeries){s[i].name, s[i].step, s[i].value, s[i].n, NULL, NULL};
            if (g == N_GROUPS) {
                VizChart ch = {.title = s[i].name,
                               .ylabel = s[i].name,
                               .series = vs,
                               .n_series = 1,
                               .hline = NAN,
                               .max_points = c->o->max_points};
                rc = chart(c, &ch);
                k = 0;
            }
        }
        if (rc || g == N_GROUPS || k == 0) continue;
        int kl = strcmp(GROUPS[g].title, "KL") == 0 && kl_target > 0;
        rc = group_charts(c, g, vs, k, kl ? kl_target : NAN);
    }
    if (!rc && n > singles) fputs("</div>\n", f);
    if (!rc && singles) {
        fputs("<div class=\"wrap\"><table><tr><th>metric</th><th>step</th><th>value</th></tr>", f);
        for (int i = 0; i < n; i++)
            if (s[i].n == 1) {
                fputs("<tr>", f);
                td_str(f, s[i].name);
                fprintf(f, "<td>%.0f</td>", s[i].step[0]);
                td_num(f, "%.6g", s[i].value[0]);
                fputs("</tr>", f);
            }
        fputs("</table></div>\n", f);
    }
    free(vs), free(grp);
    db_series_free(s, n);
    return rc;
}

static int section_runs(Ctx *c, RunRow *runs, int n) {
    FILE *f = c->f;
    int shown = 0;
    for (int i = 0; i < n; i++)
        shown += strcmp(runs[i].kind, "eval") != 0 && !is_label_eff(&runs[i]);
    fputs("<h2 id=\"runs\">Training runs</h2>\n", f);
    if (!shown) {
        fputs("<p class=\"empty\">No training runs yet.</p>\n", f);
        return RLHF_OK;
    }
    fputs("<div class=\"wrap\"><table><tr><th>run</th><th>kind</th><th>status</th><th>started</th>"
          "<th>from</th><th>wrote</th><th>points</th><th>last step</th></tr>",
          f);
    for (int i = 0; i < n; i++) {
        const RunRow *r = &runs[i];
        if (strcmp(r->kind, "eval") == 0 || is_label_eff(r)) continue;
        fprintf(f, "<tr><td><a href=\"#run-%lld\">%lld</a></td>", (long long)r->id,
                (long long)r->id);
        td_str(f, r->kind), td_str(f, r->status), td_str(f, r->started_at);
        td_str(f, r->input_model), td_str(f, r->output_model);
        fprintf(f, "<td>%lld</td><td>%lld</td></tr>", (long long)r->n_points,
                (long long)r->last_step);
    }
    fputs("</table></div>\n", f);
    for (int i = 0; i < n; i++) {
        if (strcmp(runs[i].kind, "eval") == 0 || is_label_eff(&runs[i])) continue;
        c->st.runs++;
        int rc = run_charts(c, &runs[i]);
        if (rc) return rc;
    }
    return RLHF_OK;
}

/* ---- the final table: eval runs, grouped by their baseline (side a) ------- */

/* The name of side a (0) or b (1) of an eval run: its registered model, else
 * the name in the run's note ("A vs B on N prompts, judge J"), else "?".
 * buf holds a name taken from the note. */
static const char *eval_name(const RunRow *r, int side, char *buf, size_t n) {
    const char *m = side ? r->output_model : r->input_model;
    if (m) return m;
    const char *vs = r->note ? strstr(r->note, " vs ") : NULL;
    const char *on = vs ? strstr(vs + 4, " on ") : NULL;
    if (!on) return "?";
    const char *from = side ? vs + 4 : r->note, *to = side ? on : vs;
    snprintf(buf, n, "%.*s", (int)(to - from), from);
    return buf;
}

/* What one evaluation compared and who judged it. */
typedef struct EvalRow {
    const RunRow *r;
    char base[64], policy[64], judge[64], rm[64];
    double prompts;
    int shown;      /* the newest run of its (baseline, judge, policy): its row */
    char also[128]; /* older runs of the same key, newest first */
} EvalRow;

static void config_string(const char *json, const char *key, char *buf, size_t n) {
    buf[0] = 0;
    cJSON *j = json ? cJSON_Parse(json) : NULL;
    cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    if (cJSON_IsString(x)) snprintf(buf, n, "%s", x->valuestring);
    cJSON_Delete(j);
}

static void eval_row(const RunRow *r, EvalRow *e) {
    memset(e, 0, sizeof *e);
    e->r = r;
    char name[64];
    snprintf(e->base, sizeof e->base, "%s", eval_name(r, 0, name, sizeof name));
    snprintf(e->policy, sizeof e->policy, "%s", eval_name(r, 1, name, sizeof name));
    config_string(r->config, "judge", e->judge, sizeof e->judge);
    const char *j = r->note ? strstr(r->note, ", judge ") : NULL;
    if (!e->judge[0] && j) snprintf(e->judge, sizeof e->judge, "%s", j + 8);
    if (!e->judge[0]) snprintf(e->judge, sizeof e->judge, "?");
    char rm[512];
    config_string(r->config, "rm", rm, sizeof rm);
    const char *slash = strrchr(rm, '/');
    snprintf(e->rm, sizeof e->rm, "%.63s", slash ? slash + 1 : rm);
    e->prompts = config_number(r->config, "prompts");
}

/* Marks the newest run of each (baseline, judge, policy) as its row and
 * lists the older ones beside it (runs are in id order). */
static void eval_dedup(EvalRow *e, int ne) {
    for (int i = ne - 1; i >= 0; i--) {
        int k = i + 1;
        while (k < ne && !(e[k].shown && !strcmp(e[k].base, e[i].base) &&
                           !strcmp(e[k].judge, e[i].judge) && !strcmp(e[k].policy, e[i].policy)))
            k++;
        if (k == ne) {
            e[i].shown = 1;
            continue;
        }
        size_t l = strlen(e[k].also);
        snprintf(e[k].also + l, sizeof e[k].also - l, "%s%lld", l ? ", " : "",
                 (long long)e[i].r->id);
    }
}

/* One table row of an evaluation: side 1 the policy, side 0 the baseline. */
static int eval_table_row(Ctx *c, const EvalRow *e, int side, int span, double *win) {
    FILE *f = c->f;
    MetricSeries *s;
    int ns, rc = db_run_series(c->db, e->r->id, &s, &ns, c->err);
    if (rc) return rc;
    const char *p = side ? "b." : "a.";
    char key[32];
#define V(m) (snprintf(key, sizeof key, "%s%s", p, m), series_last(s, ns, key))
    fputs("<tr>", f);
    if (span) {
        fprintf(f, "<th rowspan=\"%d\" class=\"judge\">", span);
        H(f, e->judge);
        fputs("</th>", f);
    }
    fputs("<td class=\"name\">", f);
    H(f, side ? e->policy : e->base);
    fputs(side ? "</td>" : " (baseline)</td>", f);
    fprintf(f, "<td>%lld", (long long)e->r->id);
    if (side && e->also[0]) fputs(" <span class=\"note\">(also ", f), H(f, e->also), fputs(")</span>", f);
    fputs("</td>", f);
    td_str(f, e->rm);
    td_num(f, "%.0f", e->prompts);
    if (side) {
        td_num(f, "%.3f", V("win_rate"));
        fputs("<td>", f);
        num(f, "%.3f", V("win_lo"));
        fputs(" &#8211; ", f);
        num(f, "%.3f", V("win_hi"));
        fputs("</td>", f);
        td_num(f, "%.3f", V("rm_win_rate"));
        win[0] = V("win_rate"), win[1] = V("win_lo"), win[2] = V("win_hi");
    } else
        fputs("<td>(baseline)</td><td></td><td></td>", f);
    td_num(f, "%.4g", V("reward"));
    td_num(f, "%.4g", V("kl"));
    td_num(f, "%.1f", V("length"));
    td_num(f, "%.3f", V("judge_score"));
    fputs("</tr>", f);
#undef V
    db_series_free(s, ns);
    return RLHF_OK;
}

static int find_name(const char *const *v, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0) return i;
    return -1;
}

/* The table and chart of one baseline: a block of rows per judge (the
 * baseline's own figures first), one row per policy; the chart has the
 * policies along its axis and a series of points per judge. */
static int eval_baseline(Ctx *c, EvalRow *e, int ne, const char *base) {
    FILE *f = c->f;
    int rc = RLHF_OK;
    const char **pol = malloc(sizeof *pol * (size_t)ne), **jud = malloc(sizeof *jud * (size_t)ne);
    double *buf = malloc(sizeof *buf * 5 * (size_t)ne * (size_t)ne + sizeof *buf);
    VizSeries *vs = malloc(sizeof *vs * (size_t)ne);
    if (!pol || !jud || !buf || !vs) rc = err_set(c->err, RLHF_ENOMEM, "out of memory");
    int np = 0, nj = 0;
    for (int i = 0; !rc && i < ne; i++) {
        if (!e[i].shown || strcmp(e[i].base, base) != 0) continue;
        if (find_name(pol, np, e[i].policy) < 0) pol[np++] = e[i].policy;
        if (find_name(jud, nj, e[i].judge) < 0) jud[nj++] = e[i].judge;
    }
    if (!rc) {
        fputs("<h3>Baseline: ", f);
        H(f, base);
        fputs("</h3><div class=\"wrap\"><table><tr><th>judge</th><th>policy</th><th>run</th>"
              "<th>RM</th><th>prompts</th><th>win rate</th><th>95% interval</th>"
              "<th>RM win rate</th><th>reward</th><th>KL</th><th>length</th>"
              "<th>judge score</th></tr>",
              f);
    }
    for (int j = 0; !rc && j < nj; j++) {
        double *x = buf + 5 * (size_t)j * (size_t)ne, *y = x + ne, *lo = y + ne, *hi = lo + ne;
        int k = 0, rows = 1;
        for (int i = 0; i < ne; i++)
            rows += e[i].shown && !strcmp(e[i].base, base) && !strcmp(e[i].judge, jud[j]);
        for (int i = 0; !rc && i < ne; i++) {
            if (!e[i].shown || strcmp(e[i].base, base) || strcmp(e[i].judge, jud[j])) continue;
            double w[3] = {NAN, NAN, NAN};
            if (k == 0) rc = eval_table_row(c, &e[i], 0, rows, w);
            if (!rc) rc = eval_table_row(c, &e[i], 1, 0, w);
            x[k] = find_name(pol, np, e[i].policy), y[k] = w[0], lo[k] = w[1], hi[k] = w[2];
            k++;
        }
        vs[j] = (VizSeries){jud[j], x, y, k, lo, hi};
    }
    if (!rc) fputs("</table></div>\n", f);
    if (!rc) {
        VizChart ch = {.title = "Win rate against the baseline (95% interval)",
                       .xlabel = "policy",
                       .ylabel = "win rate (ties half)",
                       .series = vs,
                       .n_series = nj,
                       .hline = 0.5,
                       .hline_label = "tie",
                       .xcats = pol,
                       .n_xcats = np,
                       .markers = 1,
                       .no_lines = 1};
        rc = chart_alone(c, &ch);
    }
    free(pol), free(jud), free(buf), free(vs);
    return rc;
}

static int section_eval(Ctx *c, RunRow *runs, int n) {
    int ne = 0, rc = RLHF_OK;
    for (int i = 0; i < n; i++)
        ne += strcmp(runs[i].kind, "eval") == 0;
    if (!ne) return RLHF_OK;
    c->st.eval_runs = ne;
    fputs("<h2 id=\"final\">Final table: policies against their baseline</h2>\n"
          "<p class=\"note\">One row per policy and judge, from its newest evaluation (older "
          "ones are named beside it). Win rate: the judge's preference over the baseline's "
          "answer to the same prompt, ties counting half, with a 95% interval over prompts; "
          "RM win rate, reward and KL by the reward model named.</p>\n",
          c->f);
    EvalRow *e = malloc(sizeof *e * (size_t)ne);
    if (!e) return err_set(c->err, RLHF_ENOMEM, "out of memory");
    ne = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(runs[i].kind, "eval") == 0) eval_row(&runs[i], &e[ne++]);
    eval_dedup(e, ne);
    for (int i = 0; !rc && i < ne; i++) {
        int first = 1;
        for (int k = 0; k < i && first; k++)
            first = strcmp(e[k].base, e[i].base) != 0;
        if (first) rc = eval_baseline(c, e, ne, e[i].base);
    }
    free(e);
    return rc;
}

/* ---- ratings --------------------------------------------------------------- */

static const EloTable *sort_t;
static const EloPlayers *sort_p;
static int by_round_rating(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (sort_p->round && sort_p->round[i] != sort_p->round[j])
        return sort_p->round[i] - sort_p->round[j];
    if (sort_t->rating[i] != sort_t->rating[j])
        return sort_t->rating[i] > sort_t->rating[j] ? -1 : 1;
    return strcmp(sort_p->name[i], sort_p->name[j]);
}

static int ratings_by(Ctx *c, const RmSet *s, int by) {
    FILE *f = c->f;
    EloPlayers p = {0};
    EloTable t = {0};
    Battle *b = NULL;
    int64_t nb = 0;
    BattleStats bs = {0};
    EloOptions o = elo_options_default();
    o.method = ELO_BT;
    o.bootstrap = c->o->bootstrap > 0 ? c->o->bootstrap : 200;
    o.seed = c->o->seed;
    int rc = elo_players(c->db, s, by, &p, c->err);
    if (!rc) rc = elo_battles(s, &p, &b, &nb, &bs, c->err);
    const char *what = by == ELO_BY_POLICY ? "policy" : "model";
    if (!rc && nb == 0) {
        fprintf(f, "<p class=\"note\">No battles between two %s.</p>\n",
                by == ELO_BY_POLICY ? "of our own checkpoints (base, sft, policy)" : "models");
        goto out;
    }
    if (!rc) rc = elo_rate(b, nb, p.n, &o, &t, c->err);
    if (rc) goto out;
    int *order = malloc(sizeof *order * (size_t)p.n);
    double *x = malloc(sizeof *x * 4 * (size_t)p.n);
    const char **cats = malloc(sizeof *cats * (size_t)p.n);
    char(*lab)[40] = malloc(sizeof *lab * (size_t)p.n);
    if (!order || !x || !cats || !lab) rc = err_set(c->err, RLHF_ENOMEM, "out of memory");
    int m = 0;
    for (int i = 0; !rc && i < p.n; i++)
        if (t.battles[i] > 0) order[m++] = i;
    if (!rc) {
        sort_t = &t, sort_p = by == ELO_BY_POLICY ? &p : &(EloPlayers){.name = p.name};
        qsort(order, (size_t)m, sizeof *order, by_round_rating);
        fprintf(f,
                "<div class=\"wrap\"><table><tr><th>%s</th>%s<th>rating</th><th>95%% interval</th>"
                "<th>rank</th><th>battles</th><th>win %%</th></tr>",
                what, by == ELO_BY_POLICY ? "<th>round</th><th>lineage</th>" : "");
        for (int k = 0; k < m; k++) {
            int i = order[k];
            fputs("<tr>", f);
            td_str(f, p.name[i]);
            if (by == ELO_BY_POLICY) {
                fprintf(f, "<td>%d</td>", p.round[i]);
                td_str(f, p.lineage[i]);
            }
            fprintf(
                f,
                "<td>%.1f</td><td>%.1f &#8211; %.1f</td><td>%d</td><td>%lld</td><td>%.1f</td></tr>",
                t.rating[i], t.lo[i], t.hi[i], t.rank[i], (long long)t.battles[i],
                100 * t.wins[i] / (double)t.battles[i]);
            x[k] = k, x[m + k] = t.rating[i], x[2 * m + k] = t.lo[i], x[3 * m + k] = t.hi[i];
            if (by == ELO_BY_POLICY)
                snprintf(lab[k], sizeof lab[k], "%.24s r%d", p.name[i], p.round[i]);
            else
                snprintf(lab[k], sizeof lab[k], "%.30s", p.name[i]);
            cats[k] = m <= 24 ? lab[k] : "";
        }
        fputs("</table></div>\n", f);
        char title[96];
        snprintf(title, sizeof title, "Bradley-Terry rating by %s, 95%% bootstrap interval", what);
        VizSeries vs = {"rating", x, x + m, m, x + 2 * m, x + 3 * m};
        VizChart ch = {.title = title,
                       .xlabel = by == ELO_BY_POLICY ? "policy, by round" : "model",
                       .series = &vs,
                       .n_series = 1,
                       .hline = NAN,
                       .xcats = cats,
                       .n_xcats = m,
                       .ylabel = "rating (Bradley-Terry)",
                       .markers = 1,
                       .no_lines = 1};
        rc = chart_alone(c, &ch);
    }
    free(order), free(x), free(cats), free(lab);
out:
    elo_table_free(&t);
    free(b);
    elo_players_free(&p);
    return rc;
}

/* ---- labelers ------------------------------------------------------------- */

typedef struct FlagCount {
    char name[64];
    int64_t n;
} FlagCount;

typedef struct Flags {
    FlagCount v[64];
    int n;
    int64_t items, flagged_items;
} Flags;

/* Evaluation judges rank eval runs' answers, not the project's data: their
 * rankings stay out of agreement, time and flags. */
static int is_judge(const char *labeler) {
    return labeler && strncmp(labeler, "judge:", 6) == 0;
}

static int count_flags(const RankingRow *r, void *ctx) {
    Flags *fl = ctx;
    if (is_judge(r->labeler)) return 0;
    for (int i = 0; i < r->n_items; i++) {
        fl->items++;
        cJSON *a = r->items[i].flags ? cJSON_Parse(r->items[i].flags) : NULL;
        int any = 0;
        cJSON *e;
        cJSON_ArrayForEach(e, a) {
            if (!cJSON_IsString(e)) continue;
            any = 1;
            int k = 0;
            while (k < fl->n && strcmp(fl->v[k].name, e->valuestring) != 0)
                k++;
            if (k == fl->n && fl->n < 64)
                snprintf(fl->v[fl->n++].name, sizeof fl->v[0].name, "%s", e->valuestring);
            if (k < fl->n) fl->v[k].n++;
        }
        fl->flagged_items += any;
        cJSON_Delete(a);
    }
    return 0;
}

/* A share of n in of: a small share keeps two significant digits (1 in 2,623
 * is 0.038%, not 0.0%). */
static void td_share(FILE *f, int64_t n, int64_t of) {
    double p = 100.0 * (double)n / (double)(of ? of : 1);
    fprintf(f, p == 0 || p >= 1 ? "<td>%.1f%%</td>" : "<td>%.2g%%</td>", p);
}

static void agreement_cell(FILE *f, int64_t agreed, int64_t compared) {
    if (!compared) {
        fputs("<td>&#8212;</td>", f);
        return;
    }
    double a = (double)agreed / (double)compared;
    fprintf(f, "<td style=\"background:hsl(%d,70%%,85%%)\">%.0f%%</td>", (int)(120 * a), 100 * a);
}

/* s without the judges' rankings (and the judges): borrows s's items and
 * names; free v->rankings and v->labelers alone. */
static int without_judges(const RmSet *s, RmSet *v, Err *err) {
    *v = *s;
    v->rankings = malloc(sizeof *v->rankings * (size_t)(s->n_rankings ? s->n_rankings : 1));
    v->labelers = malloc(sizeof *v->labelers * (size_t)(s->n_labelers ? s->n_labelers : 1));
    int *map = malloc(sizeof *map * (size_t)(s->n_labelers ? s->n_labelers : 1));
    if (!v->rankings || !v->labelers || !map) {
        free(v->rankings), free(v->labelers), free(map);
        v->rankings = NULL, v->labelers = NULL;
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    v->n_labelers = 0, v->n_rankings = 0;
    for (int i = 0; i < s->n_labelers; i++) {
        map[i] = is_judge(s->labelers[i].name) ? -1 : v->n_labelers;
        if (map[i] >= 0) v->labelers[v->n_labelers++] = s->labelers[i];
    }
    for (int64_t i = 0; i < s->n_rankings; i++)
        if (map[s->rankings[i].labeler] >= 0) {
            v->rankings[v->n_rankings] = s->rankings[i];
            v->rankings[v->n_rankings++].labeler = map[s->rankings[i].labeler];
        }
    free(map);
    return RLHF_OK;
}

/* Names the judges left out, with their rankings. */
static void judges_note(FILE *f, const RmSet *s) {
    int any = 0;
    for (int i = 0; i < s->n_labelers; i++) {
        if (!is_judge(s->labelers[i].name)) continue;
        int64_t n = 0;
        for (int64_t k = 0; k < s->n_rankings; k++)
            n += s->rankings[k].labeler == i;
        fputs(any++ ? ", " : "<p class=\"note\">Left out of every figure below: the evaluation "
                             "judges' own rankings of eval answers (", f);
        H(f, s->labelers[i].name);
        fprintf(f, ": %lld", (long long)n);
    }
    if (any) fputs(").</p>\n", f);
}

/* Answers labelers wrote: per author, how many, time per answer, how many
 * started from a candidate and how far they were edited, and how alike two
 * authors' answers to one prompt are. */
static void section_demos(Ctx *c, const DemoAgreement *dp) {
    const DemoAgreement d = *dp;
    if (!d.demos) return;
    FILE *f = c->f;
    fprintf(
        f,
        "<h2 id=\"demos\">Written answers</h2>\n<p>%lld answers written by labelers to %lld prompts"
        " (demonstrations, models <code>human:NAME</code>); %lld prompts answered by two authors "
        "or more,"
        " whose answers are ",
        (long long)d.demos, (long long)d.prompts, (long long)d.prompts_shared);
    num(f, "%.3f", d.similarity);
    fprintf(f,
            " alike on average (1 &#8722; edit distance / the longer length; %lld pairs, %lld "
            "identical).</p>\n",
            (long long)d.pairs, (long long)d.identical);
    fputs("<div class=\"wrap\"><table><tr><th>author</th><th>kind</th><th>answers</th>"
          "<th>mean time per answer (s)</th><th>from a candidate</th><th>mean edit distance</th>"
          "<th>similarity to others</th></tr>",
          f);
    for (int i = 0; i < d.n_writers; i++) {
        const WriterAgreement *w = &d.writers[i];
        fputs("<tr>", f);
        td_str(f, w->name);
        td_str(f, w->simulated ? "simulated" : "human");
        fprintf(f, "<td>%lld</td>", (long long)w->answers);
        td_num(f, "%.1f", w->mean_time_s);
        fprintf(f, "<td>%lld</td>", (long long)w->edited);
        td_num(f, "%.1f", w->mean_edit);
        td_num(f, "%.3f", w->similarity);
        fputs("</tr>", f);
    }
    fputs("</table></div>\n", f);
}

static int section_labelers(Ctx *c, const RmSet *s, const AgreementReport *r) {
    FILE *f = c->f;
    fputs("<h2 id=\"labelers\">Labelers</h2>\n", f);
    judges_note(f, s);
    fprintf(f, "<p>%lld prompts ranked, %lld by two labelers or more. Pairwise agreement ",
            (long long)r->prompts, (long long)r->prompts_shared);
    num(f, "%.3f", r->agreement);
    if (isfinite(r->agreement_se)) fprintf(f, " &#177; %.3f", r->agreement_se);
    fprintf(f, " (%lld of %lld shared pairs); Kendall's tau-b ", (long long)r->agreed,
            (long long)r->compared);
    num(f, "%.3f", r->tau);
    fputs("; Krippendorff's alpha of the 1&#8211;7 scores ", f);
    num(f, "%.3f", r->alpha_ordinal);
    fputs(".</p>\n", f);
    int n = r->n_labelers;
    if (n >= 2 && n <= 40) {
        fputs("<h3>Agreement matrix (share of shared candidate pairs ordered alike)</h3>"
              "<div class=\"wrap\"><table><tr><th></th>",
              f);
        for (int j = 0; j < n; j++)
            fputs("<th>", f), H(f, r->labelers[j].name), fputs("</th>", f);
        fputs("</tr>", f);
        for (int i = 0; i < n; i++) {
            fputs("<tr><th>", f), H(f, r->labelers[i].name), fputs("</th>", f);
            for (int j = 0; j < n; j++) {
                const PairAgreement *pa = NULL;
                for (int k = 0; k < r->n_pairs && !pa; k++)
                    if ((r->pairs[k].a == i && r->pairs[k].b == j) ||
                        (r->pairs[k].a == j && r->pairs[k].b == i))
                        pa = &r->pairs[k];
                if (i == j)
                    fputs("<td>&#8212;</td>", f);
                else
                    agreement_cell(f, pa ? pa->agreed : 0, pa ? pa->compared : 0);
            }
            fputs("</tr>", f);
        }
        fputs("</table></div>\n", f);
    }
    fputs("<h3>Per labeler</h3><div class=\"wrap\"><table><tr><th>labeler</th><th>kind</th>"
          "<th>rankings</th><th>mean time per prompt (s)</th><th>agreement</th><th>tau-b</th>"
          "<th>gold</th></tr>",
          f);
    double *x = malloc(sizeof *x * 2 * (size_t)(n ? n : 1));
    const char **cats = malloc(sizeof *cats * (size_t)(n ? n : 1));
    if (!x || !cats) {
        free(x), free(cats);
        return err_set(c->err, RLHF_ENOMEM, "out of memory");
    }
    int timed = 0;
    for (int i = 0; i < n; i++) {
        const LabelerAgreement *l = &r->labelers[i];
        fputs("<tr>", f);
        td_str(f, l->name);
        td_str(f, l->simulated ? "simulated" : "human");
        fprintf(f, "<td>%lld</td>", (long long)l->rankings);
        td_num(f, "%.1f", l->mean_time_s);
        td_num(f, "%.3f", l->agreement);
        td_num(f, "%.3f", l->tau);
        td_num(f, "%.3f", l->gold);
        fputs("</tr>", f);
        x[i] = i, x[n + i] = l->mean_time_s, cats[i] = n <= 24 ? l->name : "";
        timed += isfinite(l->mean_time_s);
    }
    fputs("</table></div>\n", f);
    int rc = RLHF_OK;
    if (timed) {
        VizSeries vs = {"seconds", x, x + n, n, NULL, NULL};
        VizChart ch = {.title = "Mean time per prompt (s)",
                       .xlabel = "labeler",
                       .ylabel = "seconds per prompt",
                       .series = &vs,
                       .n_series = 1,
                       .hline = NAN,
                       .xcats = cats,
                       .n_xcats = n,
                       .bars = 1};
        rc = chart_alone(c, &ch);
    }
    free(x), free(cats);
    Flags fl = {0};
    if (!rc) rc = db_rankings_each(c->db, &c->o->rankings, count_flags, &fl, c->err);
    if (rc) return rc;
    fputs("<h3>Flags</h3>", f);
    if (!fl.n)
        fprintf(f, "<p class=\"note\">No flags on %lld ranked candidates.</p>\n",
                (long long)fl.items);
    else {
        fprintf(f,
                "<div class=\"wrap\"><table><tr><th>flag</th><th>candidates</th><th>share of "
                "%lld ranked</th></tr>",
                (long long)fl.items);
        for (int k = 0; k <= fl.n; k++) {
            fputs("<tr>", f);
            td_str(f, k < fl.n ? fl.v[k].name : "any flag");
            int64_t m = k < fl.n ? fl.v[k].n : fl.flagged_items;
            fprintf(f, "<td>%lld</td>", (long long)m);
            td_share(f, m, fl.items);
            fputs("</tr>", f);
        }
        fputs("</table></div>\n", f);
    }
    return RLHF_OK;
}

/* ---- the reward model against the labelers -------------------------------- */

static int is_rm_run(const RunRow *r) {
    return strcmp(r->kind, "rm") == 0 || strcmp(r->kind, "train-rm") == 0;
}

static int heldout_metric(const char *name) {
    return fnmatch("*val*accurac*", name, 0) == 0 || fnmatch("*held*accurac*", name, 0) == 0;
}

static int section_rm(Ctx *c, RunRow *runs, int n, double agreement) {
    FILE *f = c->f;
    int nrm = 0, rc = RLHF_OK;
    for (int i = 0; i < n; i++)
        nrm += is_rm_run(&runs[i]);
    if (!nrm) return RLHF_OK;
    fputs("<h2 id=\"rm\">Reward model against the labelers</h2>\n"
          "<p class=\"note\">A reward model is doing as well as the data allows when its held-out "
          "accuracy reaches the labelers' agreement with each other.</p>\n",
          f);
    MetricSeries **all = calloc((size_t)nrm, sizeof *all);
    int *alln = calloc((size_t)nrm, sizeof *alln);
    VizSeries *vs = calloc((size_t)nrm, sizeof *vs);
    char(*names)[32] = calloc((size_t)nrm, sizeof *names);
    if (!all || !alln || !vs || !names) rc = err_set(c->err, RLHF_ENOMEM, "out of memory");
    fputs("<div class=\"wrap\"><table><tr><th>run</th><th>model</th><th>held-out accuracy</th>"
          "<th>labeler agreement</th></tr>",
          f);
    int k = 0, nv = 0;
    for (int i = 0; !rc && i < n; i++) {
        if (!is_rm_run(&runs[i])) continue;
        if ((rc = db_run_series(c->db, runs[i].id, &all[k], &alln[k], c->err))) break;
        double last = NAN;
        for (int j = 0; j < alln[k]; j++)
            if (heldout_metric(all[k][j].name) && all[k][j].n) {
                const MetricSeries *m = &all[k][j];
                last = m->value[m->n - 1];
                snprintf(names[nv], sizeof names[nv], "run %lld", (long long)runs[i].id);
                vs[nv] = (VizSeries){names[nv], m->step, m->value, m->n, NULL, NULL};
                nv++;
                break;
            }
        fprintf(f, "<tr><td><a href=\"#run-%lld\">%lld</a></td>", (long long)runs[i].id,
                (long long)runs[i].id);
        td_str(f, runs[i].output_model);
        td_num(f, "%.3f", last);
        td_num(f, "%.3f", agreement);
        fputs("</tr>", f);
        k++;
    }
    fputs("</table></div>\n", f);
    if (!rc && nv) {
        VizChart ch = {.title = "Held-out accuracy of the reward model",
                       .ylabel = "accuracy (share of pairs)",
                       .series = vs,
                       .n_series = nv,
                       .hline = agreement,
                       .hline_label = "labeler agreement",
                       .markers = 1,
                       .max_points = c->o->max_points};
        rc = chart_alone(c, &ch);
    }
    for (int i = 0; all && i < nrm; i++)
        db_series_free(all[i], alln[i]);
    free(all), free(alln), free(vs), free(names);
    return rc;
}

/* ---- label efficiency: RM accuracy against rankings, by labeling order ------ */

typedef struct LePoint {
    int order;
    double x, y;
} LePoint;

static int le_cmp(const void *a, const void *b) {
    const LePoint *p = a, *q = b;
    if (p->order != q->order) return p->order - q->order;
    return (p->x > q->x) - (p->x < q->x);
}

/* Each order's mean over runs at each x, whiskers at the lowest and highest run. */
static int le_chart(Ctx *c, LePoint *pt, int np, char (*orders)[32], int no) {
    qsort(pt, (size_t)np, sizeof *pt, le_cmp);
    double *buf = malloc(sizeof *buf * 5 * (size_t)(np ? np : 1));
    VizSeries vs[LE_ORDERS];
    if (!buf) return err_set(c->err, RLHF_ENOMEM, "out of memory");
    double *x = buf, *mean = buf + np, *lo = buf + 2 * np, *hi = buf + 3 * np, *xs = buf + 4 * np;
    int k = 0, nv = 0;
    fputs("<div class=\"wrap\"><table><tr><th>order</th><th>ranked prompts</th><th>runs</th>"
          "<th>mean accuracy</th><th>lowest</th><th>highest</th></tr>",
          c->f);
    for (int o = 0; o < no; o++) {
        int first = k;
        for (int i = 0; i < np && pt[i].order <= o; i++) {
            if (pt[i].order != o || (i > 0 && pt[i - 1].order == o && pt[i - 1].x == pt[i].x))
                continue;
            double sum = 0, l = INFINITY, h = -INFINITY;
            int m = 0;
            for (int j = i; j < np && pt[j].order == o && pt[j].x == pt[i].x; j++, m++)
                sum += pt[j].y, l = fmin(l, pt[j].y), h = fmax(h, pt[j].y);
            x[k] = pt[i].x, mean[k] = sum / m, lo[k] = l, hi[k] = h;
            fputs("<tr>", c->f);
            td_str(c->f, orders[o]);
            fprintf(c->f, "<td>%.0f</td><td>%d</td>", x[k], m);
            td_num(c->f, "%.3f", mean[k]), td_num(c->f, "%.3f", l), td_num(c->f, "%.3f", h);
            fputs("</tr>", c->f);
            k++;
        }
        if (k > first)
            vs[nv++] =
                (VizSeries){orders[o], xs + first, mean + first, k - first, lo + first, hi + first};
    }
    /* drawn a little apart, so that whiskers at one x stay apart (the table has the x) */
    double x0 = INFINITY, x1 = -INFINITY;
    for (int i = 0; i < k; i++) x0 = fmin(x0, x[i]), x1 = fmax(x1, x[i]);
    for (int v = 0, i = 0; v < nv; v++)
        for (int64_t j = 0; j < vs[v].n; j++, i++) xs[i] = x[i] + (v - (nv - 1) / 2.0) * (x1 - x0) * 0.006;
    fputs("</table></div>\n", c->f);
    VizChart ch = {.title = "RM accuracy by labeling order",
                   .xlabel = "ranked prompts",
                   .ylabel = "held-out accuracy",
                   .series = vs,
                   .n_series = nv,
                   .hline = NAN,
                   .markers = 1,
                   .max_points = c->o->max_points};
    int rc = nv ? chart_alone(c, &ch) : RLHF_OK;
    free(buf);
    return rc;
}

static int section_label_eff(Ctx *c, RunRow *runs, int n) {
    int nruns = 0, rc = RLHF_OK, np = 0, cap = 0, no = 0;
    for (int i = 0; i < n; i++)
        nruns += is_label_eff(&runs[i]);
    if (!nruns) return RLHF_OK;
    fprintf(
        c->f,
        "<h2 id=\"label-efficiency\">Label efficiency</h2>\n<p class=\"note\">The "
        "reward model's held-out accuracy against the number of ranked prompts, by the order "
        "prompts were handed out in (%d runs of samples/label_efficiency.sh): each order's mean "
        "over its runs, the whiskers at its lowest and highest run (orders drawn a little apart).</p>\n",
        nruns);
    LePoint *pt = NULL;
    char orders[LE_ORDERS][32];
    for (int i = 0; i < n && !rc; i++) {
        if (!is_label_eff(&runs[i])) continue;
        char order[32];
        config_string(runs[i].config, "order", order, sizeof order);
        int o = 0;
        while (o < no && strcmp(orders[o], order))
            o++;
        if (o == LE_ORDERS) continue; /* more orders than a chart can tell apart */
        if (o == no) memcpy(orders[no++], order, sizeof order);
        MetricSeries *s;
        int ns;
        if ((rc = db_run_series(c->db, runs[i].id, &s, &ns, c->err))) break;
        for (int j = 0; j < ns && !rc; j++) {
            if (strcmp(s[j].name, "heldout_accuracy")) continue;
            for (int64_t t = 0; t < s[j].n && !rc; t++) {
                if (!isfinite(s[j].value[t])) continue;
                if (np == cap) {
                    LePoint *g = realloc(pt, sizeof *pt * (size_t)(cap = cap ? 2 * cap : 64));
                    if (!g) {
                        rc = err_set(c->err, RLHF_ENOMEM, "out of memory");
                        break;
                    }
                    pt = g;
                }
                pt[np++] = (LePoint){o, s[j].step[t], s[j].value[t]};
            }
        }
        db_series_free(s, ns);
    }
    if (!rc) rc = le_chart(c, pt, np, orders, no);
    free(pt);
    return rc;
}

/* ---- the page --------------------------------------------------------------- */

int report_write_html(FILE *f, Db *db, const ReportOptions *o, ReportStats *st, Err *err) {
    Ctx c = {.f = f, .db = db, .o = o, .err = err};
    RunRow *runs = NULL;
    int nruns = 0;
    RmSet s = {0}, people = {0};
    AgreementReport ar = {0};
    DemoAgreement demos = {0};
    int have_ar = 0;
    int rc = db_runs_list(db, &o->runs, &runs, &nruns, err);
    if (!rc) rc = rm_demo_agreement(db, &o->rankings, &demos, err);
    if (!rc) rc = rm_set_load(db, &o->rankings, &s, err);
    if (!rc) rc = without_judges(&s, &people, err);
    if (!rc && people.n_rankings > 0) {
        rc = rm_agreement(&people, &ar, err);
        have_ar = !rc;
    }
    if (rc) goto out;
    const char *title = o->title ? o->title : "rlhf report";
    char when[32];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/><title>",
          f);
    H(f, title);
    fprintf(f, "</title><style>%s</style></head>\n<body>\n<h1>", CSS);
    H(f, title);
    fputs("</h1><p class=\"meta\">", f);
    if (o->project) H(f, o->project), fputs(" &#183; ", f);
    fprintf(f, "made %s by rlhf &#183; %d runs, %lld rankings</p>\n", when, nruns,
            (long long)s.n_rankings);
    int nonempty = nruns > 0 || s.n_rankings > 0 || demos.demos > 0;
    if (!nonempty) {
        fputs("<p class=\"empty\">Nothing to report yet: this project has no runs and no rankings"
              " (for these filters). Train something (<code>rlhf pretrain</code>,"
              " <code>rlhf sft</code>, <code>rlhf train-rm</code>, <code>rlhf ppo</code>) or rank"
              " candidates (<code>rlhf label</code>), then make the report again.</p>\n",
              f);
    } else {
        int evals = 0, rms = 0, effs = 0;
        for (int i = 0; i < nruns; i++)
            evals += strcmp(runs[i].kind, "eval") == 0, rms += is_rm_run(&runs[i]),
                effs += is_label_eff(&runs[i]);
        fprintf(f,
                "<nav>%s<a href=\"#runs\">runs</a><a href=\"#ratings\">ratings</a>%s%s%s%s</nav>\n",
                evals ? "<a href=\"#final\">final table</a>" : "",
                have_ar ? "<a href=\"#labelers\">labelers</a>" : "",
                demos.demos ? "<a href=\"#demos\">written answers</a>" : "",
                rms ? "<a href=\"#rm\">reward model</a>" : "",
                effs ? "<a href=\"#label-efficiency\">label efficiency</a>" : "");
        rc = section_eval(&c, runs, nruns);
        if (!rc) rc = section_runs(&c, runs, nruns);
        if (!rc) {
            fputs("<h2 id=\"ratings\">Ratings</h2>\n", f);
            if (s.n_rankings == 0)
                fputs("<p class=\"empty\">No rankings yet.</p>\n", f);
            else {
                fputs("<h3>By model</h3>\n", f);
                rc = ratings_by(&c, &s, ELO_BY_MODEL);
                if (!rc) fputs("<h3>By policy, across RLHF rounds</h3>\n", f);
                if (!rc) rc = ratings_by(&c, &s, ELO_BY_POLICY);
            }
        }
        if (!rc && have_ar) rc = section_labelers(&c, &s, &ar);
        if (!rc) section_demos(&c, &demos);
        if (!rc) rc = section_rm(&c, runs, nruns, have_ar ? ar.agreement : NAN);
        if (!rc) rc = section_label_eff(&c, runs, nruns);
    }
    if (!rc) fputs("</body></html>\n", f);
    if (!rc && ferror(f)) rc = err_set(err, RLHF_EIO, "write the report");
    c.st.rankings = s.n_rankings;
    c.st.labelers = s.n_labelers;
    if (st) *st = c.st;
out:
    if (have_ar) rm_agreement_free(&ar);
    rm_demo_agreement_free(&demos);
    free(people.rankings), free(people.labelers);
    rm_set_free(&s);
    db_runs_free(runs, nruns);
    return rc;
}
