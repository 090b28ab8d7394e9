/* Progress line drawing; writes only to stderr. */
#include "util/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void progress_format_eta(double s, char *buf, int n) {
    if (s < 0 || s != s || s > 1e8) {
        snprintf(buf, (size_t)n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, (size_t)n, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
    else if (t >= 60) snprintf(buf, (size_t)n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, (size_t)n, "%lds", t);
}

void progress_start(Progress *p, const char *label, const char *unit, int64_t total, int force) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->unit = unit ? unit : "items";
    p->total = total;
    const char *env = getenv("RLHF_PROGRESS");
    p->enabled = force || isatty(STDERR_FILENO) || (env && strcmp(env, "1") == 0);
    p->t0 = now_seconds();
}

static void draw(Progress *p, const char *extra, int final) {
    double el = now_seconds() - p->t0;
    double rate = el > 0 ? (double)p->done / el : 0;
    char eta[32] = "";
    char line[512];
    int n;
    if (p->total > 0) {
        if (!final && rate > 0) progress_format_eta((double)(p->total - p->done) / rate, eta, sizeof eta);
        else progress_format_eta(el, eta, sizeof eta);
        n = snprintf(line, sizeof line, "%s %lld/%lld %s (%.0f%%) %.2f %s/s %s %s%s%s", p->label,
                     (long long)p->done, (long long)p->total, p->unit,
                     100.0 * (double)p->done / (double)p->total, rate, p->unit,
                     final ? "in" : "ETA", eta, extra ? "  " : "", extra ? extra : "");
    } else {
        progress_format_eta(el, eta, sizeof eta);
        n = snprintf(line, sizeof line, "%s %lld %s %.2f %s/s %s%s%s", p->label,
                     (long long)p->done, p->unit, rate, p->unit, eta, extra ? "  " : "",
                     extra ? extra : "");
    }
    (void)n;
    if (isatty(STDERR_FILENO)) fprintf(stderr, "\r\033[K%s%s", line, final ? "\n" : "");
    else fprintf(stderr, "%s\n", line);
    fflush(stderr);
    p->drawn = 1;
}

void progress_update(Progress *p, int64_t done, const char *extra) {
    p->done = done;
    if (!p->enabled) return;
    double t = now_seconds();
    /* a pipe gets a line every 2 s, a terminal a redraw ten times a second */
    double every = isatty(STDERR_FILENO) ? 0.1 : 2.0;
    if (p->drawn && t - p->last_draw < every) return;
    p->last_draw = t;
    draw(p, extra, 0);
}

void progress_finish(Progress *p, const char *extra) {
    if (!p->enabled) return;
    draw(p, extra, 1);
}
