/* A progress line on stderr: count, rate, ETA and a caller's extra text.
 * Quiet when stderr is not a terminal unless `force` is set (RLHF_PROGRESS=1 too). */
#ifndef RLHF_PROGRESS_H
#define RLHF_PROGRESS_H

#include <stdint.h>

typedef struct Progress {
    char label[64];
    const char *unit; /* "steps", "prompts", ... */
    int64_t total;    /* 0 when unknown */
    int64_t done;
    double t0, last_draw;
    int enabled, drawn;
} Progress;

void progress_start(Progress *p, const char *label, const char *unit, int64_t total, int force);
/* Sets the count (absolute) and redraws at most ten times a second. extra may be NULL. */
void progress_update(Progress *p, int64_t done, const char *extra);
/* Draws the final line and ends it with a newline. */
void progress_finish(Progress *p, const char *extra);
/* Formats seconds as "1h02m", "3m05s" or "12s" into buf. */
void progress_format_eta(double seconds, char *buf, int n);

/* Monotonic clock in seconds. */
double now_seconds(void);

#endif
