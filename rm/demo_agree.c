/* Agreement between writers of one prompt's answers (demo_agree.h). */
#include "rm/demo_agree.h"
#include "db/demos.h"
#include "util/text.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Answer {
    int w;      /* index into writers */
    char *text; /* owned */
} Answer;

typedef struct Ctx {
    DemoAgreement *a;
    int64_t prompt;
    Answer *ans;
    int n, cap;
    double sim_sum, *w_sim, *w_time, *w_edit;
    int64_t *w_timed, *w_edits;
    Err *err;
} Ctx;

static long code_points(const char *s) {
    long n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Every two answers of the collected prompt by different authors. */
static int flush(Ctx *c) {
    DemoAgreement *a = c->a;
    int shared = 0;
    for (int i = 0; i < c->n; i++)
        for (int j = i + 1; j < c->n; j++) {
            if (c->ans[i].w == c->ans[j].w) continue;
            long d = text_edit_distance(c->ans[i].text, c->ans[j].text);
            if (d < 0) return err_set(c->err, RLHF_ENOMEM, "out of memory");
            long li = code_points(c->ans[i].text), lj = code_points(c->ans[j].text),
                 l = li > lj ? li : lj;
            double sim = l ? 1.0 - (double)d / (double)l : 1.0;
            a->pairs++, a->identical += d == 0, c->sim_sum += sim, shared = 1;
            for (int k = 0; k < 2; k++) {
                int w = c->ans[k ? j : i].w;
                a->writers[w].pairs++;
                c->w_sim[w] += sim;
            }
        }
    a->prompts_shared += shared;
    for (int i = 0; i < c->n; i++)
        free(c->ans[i].text);
    c->n = 0;
    return RLHF_OK;
}

static int writer_of(Ctx *c, const DemoRow *d) {
    DemoAgreement *a = c->a;
    for (int i = 0; i < a->n_writers; i++)
        if (strcmp(a->writers[i].name, d->author) == 0) return i;
    int n = a->n_writers + 1;
    WriterAgreement *w = realloc(a->writers, sizeof *w * (size_t)n);
    if (w) a->writers = w;
    double *s = w ? realloc(c->w_sim, sizeof *s * (size_t)n) : NULL;
    if (s) c->w_sim = s;
    double *t = s ? realloc(c->w_time, sizeof *t * (size_t)n) : NULL;
    if (t) c->w_time = t;
    int64_t *tn = t ? realloc(c->w_timed, sizeof *tn * (size_t)n) : NULL;
    if (tn) c->w_timed = tn;
    double *ed = tn ? realloc(c->w_edit, sizeof *ed * (size_t)n) : NULL;
    if (ed) c->w_edit = ed;
    int64_t *en = ed ? realloc(c->w_edits, sizeof *en * (size_t)n) : NULL;
    if (en) c->w_edits = en;
    if (!en) return -1;
    a->writers[n - 1] = (WriterAgreement){strdup(d->author), d->simulated, 0, 0, NAN, NAN, 0, NAN};
    c->w_sim[n - 1] = c->w_time[n - 1] = c->w_edit[n - 1] = 0,
                 c->w_timed[n - 1] = c->w_edits[n - 1] = 0;
    a->n_writers = n;
    return a->writers[n - 1].name ? n - 1 : -1;
}

static int on_demo(const DemoRow *d, void *ctx) {
    Ctx *c = ctx;
    int rc;
    if (d->prompt_id != c->prompt) {
        if ((rc = flush(c))) return rc;
        c->prompt = d->prompt_id;
        c->a->prompts++;
    }
    int w = writer_of(c, d);
    if (w < 0 ||
        (c->n == c->cap &&
         !(c->ans = realloc(c->ans, sizeof *c->ans * (size_t)(c->cap = c->cap ? 2 * c->cap : 8)))))
        return err_set(c->err, RLHF_ENOMEM, "out of memory");
    if (!(c->ans[c->n].text = strdup(d->text)))
        return err_set(c->err, RLHF_ENOMEM, "out of memory");
    c->ans[c->n++].w = w;
    c->a->demos++;
    c->a->writers[w].answers++;
    if (d->time_spent_ms >= 0) c->w_time[w] += (double)d->time_spent_ms / 1000.0, c->w_timed[w]++;
    if (d->edit_distance >= 0) c->w_edit[w] += (double)d->edit_distance, c->w_edits[w]++;
    c->a->writers[w].edited += d->edited_from > 0;
    return 0;
}

int rm_demo_agreement(Db *db, const RankingFilter *f, DemoAgreement *out, Err *err) {
    memset(out, 0, sizeof *out);
    Ctx c = {0};
    c.a = out, c.err = err;
    DemoFilter df = {f->split, f->labeler, 0, f->simulated};
    int rc = db_demos_each(db, &df, on_demo, &c, err);
    if (!rc) rc = flush(&c);
    for (int i = 0; i < c.n; i++)
        free(c.ans[i].text);
    out->similarity = out->pairs ? c.sim_sum / (double)out->pairs : NAN;
    for (int i = 0; !rc && i < out->n_writers; i++) {
        WriterAgreement *w = &out->writers[i];
        w->similarity = w->pairs ? c.w_sim[i] / (double)w->pairs : NAN;
        w->mean_time_s = c.w_timed[i] ? c.w_time[i] / (double)c.w_timed[i] : NAN;
        w->mean_edit = c.w_edits[i] ? c.w_edit[i] / (double)c.w_edits[i] : NAN;
    }
    free(c.ans), free(c.w_sim), free(c.w_time), free(c.w_timed), free(c.w_edit), free(c.w_edits);
    if (rc) rm_demo_agreement_free(out);
    return rc;
}

void rm_demo_agreement_free(DemoAgreement *a) {
    for (int i = 0; i < a->n_writers; i++)
        free(a->writers[i].name);
    free(a->writers);
    memset(a, 0, sizeof *a);
}
