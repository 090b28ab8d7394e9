/* Labeling throughput: a simulated labeler (rule demo) claiming and submitting
 * prompts through the same session path as a person, one transaction per
 * claim and per submit; and the cost of one claim on a large queue. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "annotator/autolabel.h"
#include "annotator/rules.h"
#include "annotator/session.h"
#include "db/candidates.h"
#include "db/prompts.h"
#include "db/registry.h"
#include "util/progress.h"

static int fill(Db *db, int n_prompts, int k, Err *e) {
    int64_t mid;
    int rc = db_begin(db, e);
    if (!rc) rc = db_model_ensure_external(db, "bench", &mid, e);
    for (int p = 0; !rc && p < n_prompts; p++) {
        char text[96];
        snprintf(text, sizeof text, "What color is the sky on day %d of the bench?", p);
        PromptIn pin = {text, NULL, NULL, NULL};
        int64_t pid, cid;
        rc = db_prompt_insert(db, &pin, &pid, NULL, e);
        for (int c = 0; !rc && c < k; c++) {
            char ans[128];
            snprintf(ans, sizeof ans, "On day %d the sky is blue, answer number %d of the bench.", p, c);
            CandidateIn cin = {pid, mid, ans, -1, NAN, NULL, 0, 0};
            rc = db_candidate_insert(db, &cin, &cid, NULL, e);
        }
    }
    if (!rc) rc = db_commit(db, e);
    return rc;
}

int main(void) {
    const int n_prompts = 2000, k = 4, n_label = 500;
    char path[64];
    snprintf(path, sizeof path, "/tmp/rlhf-bench-label-%d.db", (int)getpid());
    Db *db;
    Err e = {0};
    if (db_open(path, DB_OPEN_CREATE, &db, &e) || fill(db, n_prompts, k, &e)) {
        fprintf(stderr, "bench_label: %s\n", e.msg);
        return 1;
    }
    AssignOpts ao = {1, 600, 0, NULL};
    LabelSession s;
    AutoOpts o = {rule_find("demo"), NULL, 0, 0.1, 1, n_label};
    AutoStats st = {0};
    int rc = ls_open(&s, db, "bench", 1, "demo", "auto:demo", &ao, 0, 1, &e);
    if (!rc) rc = auto_run(&s, &o, &st, &e);
    if (!rc) {
        printf("label_auto_prompts_per_s queue=%d k=%d rule=demo prompts=%lld value=%.1f\n", n_prompts, k,
               (long long)st.ranked, st.ranked / st.seconds);
        /* one claim + release on the remaining queue */
        double t0 = now_seconds();
        int n = 200;
        for (int i = 0; i < n && !rc; i++) {
            Claim c;
            rc = db_assign_claim(db, s.labeler_id, &ao, &c, &e);
            if (!rc && c.prompt_id) rc = db_assign_release(db, s.labeler_id, c.prompt_id, &e);
        }
        printf("label_claim_ms queue=%d done=%d value=%.3f\n", n_prompts, n_label, 1000 * (now_seconds() - t0) / n);
        LabelProgress p;
        t0 = now_seconds();
        if (!rc) rc = ls_progress(&s, &p, &e);
        printf("label_progress_ms queue=%d value=%.3f\n", n_prompts, 1000 * (now_seconds() - t0));
    }
    if (rc) fprintf(stderr, "bench_label: %s\n", e.msg);
    ls_close(&s);
    db_close(db);
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char aux[80];
        snprintf(aux, sizeof aux, "%s%s", path, suffix[i]);
        unlink(aux);
    }
    return rc ? 1 : 0;
}
