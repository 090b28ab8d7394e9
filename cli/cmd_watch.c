/* rlhf watch: live terminal charts of a run's metrics, read from the store
 * (read-only; WAL lets it read while training writes) about once a second.
 * Braille dots (2x4 per cell) where the terminal speaks UTF-8, ASCII otherwise;
 * 80x24 over ssh is the size it is laid out for; resizes redraw. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "db/report.h"
#include "viz/chart.h"
#include "viz/report.h"

#include <curses.h>
#include <fnmatch.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

static int exec_watch(int argc, char **argv);

const struct cmd_entry cmd_watch_entry = {
    "watch", "[--run ID] [--metric PATTERN] [--interval S]",
    "live terminal charts of a training run's metrics",
    "Charts every metric of a run as it is written (training commands write their metrics\n"
    "with each checkpoint), redrawn every --interval seconds. Without --run it follows the\n"
    "newest running training run, else the newest training run (evaluations, a point per\n"
    "figure, only when there is nothing else), and switches when a new one starts. A metric\n"
    "with one point is shown as its value.\n"
    "  --run ID          watch this run\n"
    "  --metric PATTERN  only metrics whose name matches (shell pattern, e.g. 'loss*')\n"
    "  --interval S      seconds between reads of the store (default 1)\n"
    "Keys: q quit, n / p the next / previous run, f follow the newest again,\n"
    "      space or tab the next page of charts.\n" CLI_HELP_COMMON,
    exec_watch};

static const struct cmd_entry *E = &cmd_watch_entry;

typedef struct Watch {
    Db *db;
    int64_t run_id; /* shown; 0: none yet */
    int follow;
    const char *pattern;
    int page;
    int utf8;
    RunRow *run; /* the shown run's row */
    MetricSeries *s;
    int ns;
    int *order; /* indices into s of the curves to chart, known groups first */
    int no;
    int *single; /* indices into s of the metrics of one point, shown as values */
    int nsingle;
    char msg[1024];
} Watch;

static Watch *sort_w;
static int by_group(const void *a, const void *b) {
    const MetricSeries *x = &sort_w->s[*(const int *)a], *y = &sort_w->s[*(const int *)b];
    int gx = report_metric_group(x->name, NULL), gy = report_metric_group(y->name, NULL);
    if (gx < 0) gx = 1000;
    if (gy < 0) gy = 1000;
    return gx != gy ? gx - gy : strcmp(x->name, y->name);
}

static void clear_data(Watch *w) {
    db_series_free(w->s, w->ns);
    db_runs_free(w->run, w->run ? 1 : 0);
    free(w->order), free(w->single);
    w->s = NULL, w->ns = 0, w->run = NULL, w->order = NULL, w->no = 0;
    w->single = NULL, w->nsingle = 0;
}

/* Reads the run (the newest when following) and its curves; a failed read
 * leaves a message and the screen as it was. */
static void refresh_data(Watch *w) {
    Err err = {0};
    if (w->follow) {
        int64_t id;
        int rc = db_run_to_follow(w->db, &id, &err);
        if (!rc && id != w->run_id) w->run_id = id, w->page = 0;
        if (rc && rc != RLHF_ENOTFOUND) {
            snprintf(w->msg, sizeof w->msg, "%s", err.msg);
            return;
        }
    }
    if (!w->run_id) {
        clear_data(w);
        snprintf(w->msg, sizeof w->msg, "no runs yet: waiting for one to start");
        return;
    }
    RunRow *r = NULL;
    MetricSeries *s = NULL;
    int ns = 0;
    int rc = db_run_get(w->db, w->run_id, &r, &err);
    if (!rc) rc = db_run_series(w->db, w->run_id, &s, &ns, &err);
    if (rc) {
        db_runs_free(r, r ? 1 : 0);
        snprintf(w->msg, sizeof w->msg, "%s", err.msg);
        return;
    }
    clear_data(w);
    w->run = r, w->s = s, w->ns = ns;
    w->order = malloc(sizeof *w->order * (size_t)(ns ? ns : 1));
    w->single = malloc(sizeof *w->single * (size_t)(ns ? ns : 1));
    for (int i = 0; w->order && w->single && i < ns; i++)
        if (!w->pattern || fnmatch(w->pattern, s[i].name, 0) == 0) {
            if (s[i].n == 1)
                w->single[w->nsingle++] = i;
            else
                w->order[w->no++] = i;
        }
    sort_w = w;
    if (w->order) qsort(w->order, (size_t)w->no, sizeof *w->order, by_group);
    w->msg[0] = '\0';
}

static void step_run(Watch *w, int dir) {
    RunRow *r;
    int n;
    Err err = {0};
    if (db_runs_list(w->db, NULL, &r, &n, &err)) {
        snprintf(w->msg, sizeof w->msg, "%s", err.msg);
        return;
    }
    int64_t best = 0;
    for (int i = 0; i < n; i++) {
        int64_t id = r[i].id;
        if (dir > 0 && id > w->run_id && (!best || id < best)) best = id;
        if (dir < 0 && id < w->run_id && id > best) best = id;
    }
    db_runs_free(r, n);
    if (best) w->run_id = best, w->follow = 0, w->page = 0;
}

/* A metric's name as shown: an evaluation's "a.win_rate" is "sft: win rate"
 * (side a is the baseline, b the policy, named by the run). */
static void display_name(const Watch *w, const char *name, char *buf, size_t n) {
    static const char *const words[][2] = {
        {"win_rate", "win rate"},       {"win_lo", "win rate, 95% low"},
        {"win_hi", "win rate, 95% high"}, {"rm_win_rate", "RM win rate"},
        {"reward", "reward"},           {"kl", "KL"},
        {"length", "answer length"},    {"judge_score", "judge score"}};
    const RunRow *r = w->run;
    if (!r || strcmp(r->kind, "eval") != 0 || (name[0] != 'a' && name[0] != 'b') ||
        name[1] != '.') {
        snprintf(buf, n, "%s", name);
        return;
    }
    const char *model = name[0] == 'a' ? r->input_model : r->output_model;
    const char *what = name + 2;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcmp(what, words[i][0]) == 0) what = words[i][1];
    snprintf(buf, n, "%s: %s", model ? model : name[0] == 'a' ? "baseline" : "policy", what);
}

static void fmt(char *b, size_t n, double v) {
    double a = fabs(v);
    if (!isfinite(v))
        snprintf(b, n, "-");
    else if (a != 0 && (a >= 1e5 || a < 1e-3))
        snprintf(b, n, "%.1e", v); /* at most 8 characters */
    else
        snprintf(b, n, "%.4g", v);
}

/* The x axis under a chart: a rule, the first and last step at its ends and
 * the word "step" between them. */
static void step_axis(const Watch *w, int y, int cols, double x0, double x1) {
    enum { LW = 10 };
    char a[32], b[32];
    snprintf(a, sizeof a, "%.0f", x0), snprintf(b, sizeof b, "%.0f", x1);
    mvaddstr(y, LW - 1, w->utf8 ? "\u2514" : "+");
    for (int c = 0; c < cols; c++)
        mvaddstr(y, LW + c, w->utf8 ? "\u2500" : "-");
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la + lb + 8 > cols) return;
    mvaddstr(y, LW, a);
    mvaddstr(y, LW + (cols - 4) / 2, "step");
    mvaddstr(y, LW + cols - lb, b);
}

/* One chart: a title line, then rows of dots with the range on the left. */
static void draw_chart(Watch *w, const MetricSeries *m, int top, int height, int width) {
    enum { LW = 10 }; /* the range's labels, a space and the axis */
    char lo[32], hi[32], last[32], line[512];
    double y0 = INFINITY, y1 = -INFINITY;
    for (int64_t i = 0; i < m->n; i++)
        if (isfinite(m->value[i])) y0 = fmin(y0, m->value[i]), y1 = fmax(y1, m->value[i]);
    fmt(lo, sizeof lo, y0), fmt(hi, sizeof hi, y1),
        fmt(last, sizeof last, m->n ? m->value[m->n - 1] : NAN);
    char name[160];
    display_name(w, m->name, name, sizeof name);
    snprintf(line, sizeof line, "%s  last %s  (step %.0f, %lld points)", name, last,
             m->n ? m->step[m->n - 1] : 0.0, (long long)m->n);
    attron(A_BOLD);
    mvaddnstr(top, 0, line, width);
    attroff(A_BOLD);
    int rows = height - 2, cols = width - LW; /* the title above, the step axis below */
    if (rows < 1 || cols < 4) return;
    unsigned char *dots = malloc((size_t)rows * (size_t)cols);
    if (!dots) return;
    double x0 = m->n ? m->step[0] : 0, x1 = m->n ? m->step[m->n - 1] : 1;
    viz_braille(m->step, m->value, m->n, x0, x1, y0, y1, cols, rows, dots);
    for (int r = 0; r < rows; r++) {
        const char *lab = r == 0 ? hi : r == rows - 1 ? lo : "";
        mvprintw(top + 1 + r, 0, "%*.*s \u2502", LW - 2, LW - 2, lab);
        if (!w->utf8) mvaddch(top + 1 + r, LW - 1, '|');
        for (int c = 0; c < cols; c++) {
            unsigned char d = dots[r * cols + c];
            if (w->utf8) {
                wchar_t ch = (wchar_t)(0x2800 + d);
                if (d) mvaddnwstr(top + 1 + r, LW + c, &ch, 1);
            } else if (d)
                mvaddch(top + 1 + r, LW + c, (d & 0x0f) && (d & 0xf0) ? ':' : '.');
        }
    }
    free(dots);
    step_axis(w, top + 1 + rows, cols, m->n ? m->step[0] : 0, m->n ? m->step[m->n - 1] : 0);
}

/* The metrics of one point (an evaluation's figures), as values in columns
 * from row top; returns the rows used, at most half of avail unless there is
 * nothing to chart. */
static int draw_values(Watch *w, int top, int avail, int width) {
    if (!w->nsingle) return 0;
    int colw = 40, cols = width / colw > 0 ? width / colw : 1;
    int rows = (w->nsingle + cols - 1) / cols, max = w->no ? avail / 2 : avail;
    if (rows > max) rows = max;
    for (int i = 0; i < w->nsingle && i < rows * cols; i++) {
        const MetricSeries *m = &w->s[w->single[i]];
        char name[160], v[32], line[256];
        display_name(w, m->name, name, sizeof name);
        fmt(v, sizeof v, m->value[0]);
        snprintf(line, sizeof line, "%-28.28s %10s", name, v);
        mvaddnstr(top + i % rows, (i / rows) * colw + 1, line, colw - 1);
    }
    return rows + 1;
}

static void draw(Watch *w) {
    erase();
    int H = LINES, W = COLS;
    if (W > 400) W = 400;
    char head[512], when[16];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%H:%M:%S", localtime(&now));
    if (w->run)
        snprintf(head, sizeof head, " run %lld  %s  %s  step %lld  %s%s", (long long)w->run->id,
                 w->run->kind, w->run->status, (long long)w->run->last_step, when,
                 w->follow ? "  (following the newest)" : "");
    else
        snprintf(head, sizeof head, " rlhf watch  %s", when);
    attron(A_REVERSE);
    mvhline(0, 0, ' ', W);
    mvaddnstr(0, 0, head, W);
    attroff(A_REVERSE);
    int avail = H - 2;
    if (w->msg[0])
        mvaddnstr(2, 1, w->msg, W - 2);
    else if (w->run && w->no + w->nsingle == 0)
        mvaddnstr(2, 1,
                  w->pattern ? "no metric of this run matches --metric"
                             : "no metrics yet (training writes them with each checkpoint)",
                  W - 2);
    else if (avail >= 3) {
        int top = 1 + draw_values(w, 1, avail, W);
        avail = H - 1 - top;
        if (w->no == 0 || avail < 3) {
            mvaddnstr(H - 1, 0, " q quit  n/p run  f follow", W);
            refresh();
            return;
        }
        int per = avail / 6 > 0 ? avail / 6 : 1; /* charts per page: six rows each at least */
        if (per > w->no) per = w->no;
        int pages = (w->no + per - 1) / per;
        if (w->page >= pages) w->page = 0;
        int h = avail / per;
        for (int k = 0; k < per; k++) {
            int i = w->page * per + k;
            if (i >= w->no) break;
            draw_chart(w, &w->s[w->order[i]], top, h, W);
            top += h;
        }
        char foot[128];
        snprintf(foot, sizeof foot, " q quit  n/p run  f follow  space: charts %d/%d", w->page + 1,
                 pages);
        mvaddnstr(H - 1, 0, foot, W);
        refresh();
        return;
    }
    mvaddnstr(H - 1, 0, " q quit  n/p run  f follow", W);
    refresh();
}

static int exec_watch(int argc, char **argv) {
    const char *dbflag = NULL;
    Watch w = {.follow = 1};
    double interval = 1;
    long run = 0;
    const CliOpt opts[] = {CLI_O_DB(&dbflag), CLI_O_LONG("run", &run, 1, 1L << 62),
                           CLI_O_STR("metric", &w.pattern),
                           CLI_O_DBL("interval", &interval, 0.1, 3600), CLI_O_END};
    int rc = cli_opts_parse(E, argc, argv, opts, NULL);
    if (rc >= 0) return rc;
    if (run) w.run_id = run, w.follow = 0;
    rc = cli_open_db(E, dbflag, DB_OPEN_READONLY, &w.db);
    if (rc) return rc;
    if (!w.follow) {
        /* a run that is not there: say so before taking the screen */
        RunRow *r;
        Err err = {0};
        rc = db_run_get(w.db, w.run_id, &r, &err);
        if (!rc) db_runs_free(r, 1);
        if (rc) {
            db_close(w.db);
            return cli_fail(E, &err);
        }
    }
    setlocale(LC_ALL, "");
    if (strcmp(nl_langinfo(CODESET), "UTF-8") != 0) setlocale(LC_CTYPE, "C.UTF-8");
    w.utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    SCREEN *scr = newterm(NULL, stdout, stdin);
    if (!scr) {
        db_close(w.db);
        fprintf(stderr, "rlhf watch: cannot start the terminal (TERM=%s)\n",
                getenv("TERM") ? getenv("TERM") : "");
        return EXIT_FAIL;
    }
    set_term(scr);
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    timeout(100);
    long long next = 0;
    for (int quit = 0; !quit;) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (now >= next) {
            refresh_data(&w);
            draw(&w);
            next = now + (long long)(interval * 1000);
        }
        int k = getch();
        switch (k) {
        case 'q':
        case 'Q':
        case 27:
            quit = 1;
            break;
        case 'n':
            step_run(&w, 1), next = 0;
            break;
        case 'p':
            step_run(&w, -1), next = 0;
            break;
        case 'f':
            w.follow = 1, next = 0;
            break;
        case ' ':
        case '\t':
            w.page++, draw(&w);
            break;
        case KEY_RESIZE:
        case 12 /* ^L */:
            clear(), draw(&w);
            break;
        default:
            break;
        }
    }
    endwin();
    delscreen(scr);
    clear_data(&w);
    db_close(w.db);
    return EXIT_OK;
}
