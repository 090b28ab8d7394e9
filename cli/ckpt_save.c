/* The one order every trainer saves in: its buffered metric points first, in
 * one transaction, then the checkpoint that covers them. A crash between the
 * two leaves points for steps the resumed run repeats, and they are upserted
 * by (run, name, step); the other order left steps no run would ever record. */
#include "cli/cli.h"
#include "db/registry.h"

#include <time.h>

/* How long the last save of a run keeps retrying a busy store: past it the run
 * fails with its previous checkpoint and metrics intact, rather than hang. */
#define FINAL_RETRY_S 120

static void pause_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int cli_save_checkpoint(const char *who, Db *db, int64_t run_id, MetricBuf *metrics, int final,
                        int *warned, int (*write)(void *ctx, Err *err), void *ctx, Err *err) {
    int rc = db_metricbuf_flush(db, run_id, metrics, err);
    /* a mid-run save does not retry beyond SQLite's own busy wait: the next
     * save tries again, and training is worth more than a stall here */
    double t0 = now_s(), wait = 1;
    while (rc == RLHF_EBUSY && final && now_s() - t0 < FINAL_RETRY_S) {
        pause_s(wait);
        if (wait < 16) wait *= 2;
        rc = db_metricbuf_flush(db, run_id, metrics, err);
    }
    if (rc && !final) {
        /* a checkpoint ahead of its metrics is the loss this order prevents:
         * skip this one, keep the points and the training, write both next time */
        if (!*warned)
            fprintf(stderr,
                    "%s: warning: cannot write metrics (%s); training goes on, checkpoints wait "
                    "until the store takes them\n",
                    who, err->msg);
        *warned = 1;
        return RLHF_OK;
    }
    if (rc) return rc;
    return write(ctx, err);
}
