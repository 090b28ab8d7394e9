/* Reading SFT demonstrations from files and from the store (sft_data.h). */
#include "rl/sft_data.h"

#include <stdlib.h>
#include <string.h>

#include "db/candidates.h"
#include "db/demos.h"
#include "db/prompts.h"
#include "db/registry.h"
#include "model/chat.h"
#include "model/seq.h"
#include "util/lines.h"
#include "util/text.h"

static int add(SftData *d, const char *prompt, const char *answer, int rendered, Err *err) {
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 64;
        SftPair *p = realloc(d->p, sizeof *p * (size_t)cap);
        if (!p) return err_set(err, RLHF_ENOMEM, "out of memory");
        d->p = p, d->cap = cap;
    }
    SftPair *p = &d->p[d->n];
    p->prompt = strdup(prompt);
    p->answer = strdup(answer);
    p->rendered = rendered;
    if (!p->prompt || !p->answer) {
        free(p->prompt), free(p->answer);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    d->n++;
    return RLHF_OK;
}

void sft_data_free(SftData *d) {
    for (int i = 0; i < d->n; i++)
        free(d->p[i].prompt), free(d->p[i].answer);
    free(d->p);
    memset(d, 0, sizeof *d);
}

/* A chat record: system text goes before the first user turn; every earlier
 * user/assistant exchange is rendered with the template, so the model reads
 * "Human: u1\nAssistant: a1\nHuman: u2\nAssistant:" for the default one. */
static int load_messages(LineReader *r, const cJSON *msgs, const char *template, SftData *out,
                         Err *err) {
    if (!cJSON_IsArray(msgs))
        return err_set(err, RLHF_EFORMAT, "%s:%ld: field \"messages\" must be an array", r->path,
                       r->line);
    int n = cJSON_GetArraySize(msgs);
    StrBuf conv = {0}, user = {0};
    const char *system = NULL, *answer = NULL;
    int turns = 0, rc = RLHF_OK, chat = chat_is_template(template);
    for (int i = 0; i < n && !rc; i++) {
        const cJSON *m = cJSON_GetArrayItem(msgs, i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(content)) {
            rc = err_set(err, RLHF_EFORMAT,
                         "%s:%ld: messages[%d] needs string fields \"role\" and \"content\"",
                         r->path, r->line, i);
            break;
        }
        const char *ro = role->valuestring, *c = content->valuestring;
        if (!strcmp(ro, "system")) {
            system = c;
        } else if (!strcmp(ro, "user")) {
            if (user.len) rc = sb_puts(&user, "\n");
            if (!rc && system && !turns && !user.len) rc = sb_printf(&user, "%s\n\n", system);
            if (!rc) rc = sb_puts(&user, c);
        } else if (!strcmp(ro, "assistant")) {
            if (!user.len) {
                rc = err_set(err, RLHF_EFORMAT,
                             "%s:%ld: messages[%d]: an assistant turn with no "
                             "user turn before it",
                             r->path, r->line, i);
                break;
            }
            if (i == n - 1) {
                answer = c;
                break;
            }
            /* a chat template renders the whole conversation from an HH
             * transcript (seq_render); a {prompt} template each turn here */
            char *turn = chat ? NULL : seq_render_template(template, user.s);
            if (chat) rc = sb_printf(&conv, "Human: %s\n\nAssistant: %s\n\n", user.s, c);
            else rc = turn ? sb_printf(&conv, "%s %s\n", turn, c) : RLHF_ENOMEM;
            free(turn);
            sb_free(&user);
            memset(&user, 0, sizeof user);
            turns++;
        } else {
            rc = err_set(err, RLHF_EFORMAT,
                         "%s:%ld: messages[%d]: unknown role \"%s\" (system, "
                         "user or assistant)",
                         r->path, r->line, i, ro);
        }
    }
    if (!rc && !answer)
        rc = err_set(err, RLHF_EFORMAT, "%s:%ld: \"messages\" must end with an assistant turn",
                     r->path, r->line);
    if (!rc) {
        if (turns) {
            char *last = chat ? NULL : seq_render_template(template, user.s);
            if (chat) rc = sb_printf(&conv, "Human: %s", user.s);
            else rc = last ? sb_puts(&conv, last) : RLHF_ENOMEM;
            free(last);
            if (!rc) rc = add(out, conv.s, answer, !chat, err);
        } else {
            rc = add(out, user.s, answer, 0, err);
        }
    }
    if (rc == RLHF_ENOMEM && !err->msg[0]) err_set(err, rc, "out of memory");
    sb_free(&conv);
    sb_free(&user);
    return rc;
}

int sft_data_load_file(const char *path, const char *template, SftData *out, Err *err) {
    LineReader r;
    int rc = lines_open(&r, path, err);
    if (rc) return rc;
    static const char *const pk[] = {"prompt", "instruction", NULL};
    static const char *const ak[] = {"completion", "response", NULL};
    for (;;) {
        cJSON *o = NULL;
        if ((rc = jsonl_next(&r, &o, err)) || !o) break;
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(o, "messages");
        if (msgs) {
            rc = load_messages(&r, msgs, template, out, err);
        } else {
            const char *p, *a;
            rc = jsonl_string_any(&r, o, pk, 1, &p, NULL, err);
            if (!rc) rc = jsonl_string_any(&r, o, ak, 1, &a, NULL, err);
            if (!rc && !*a)
                rc = err_set(err, RLHF_EFORMAT, "%s:%ld: the answer is empty", r.path, r.line);
            if (!rc) rc = add(out, p, a, 0, err);
        }
        cJSON_Delete(o);
        if (rc) break;
    }
    lines_close(&r);
    return rc;
}

/* ---- the store ---------------------------------------------------------- */

typedef struct Cand {
    int64_t id;
    const char *text; /* owned by the Top collecting it */
    double rank_sum;
    int n;
} Cand;

typedef struct Top {
    SftData *out;
    int64_t prompt_id; /* the prompt being collected, 0 before the first */
    char *prompt;
    Cand *c;
    char **texts;
    int n, cap, rejected;
    Err *err;
    const int64_t *demo_ids; /* sorted: candidates that are demonstrations */
    int n_demo_ids;
} Top;

static int is_demo(const Top *t, int64_t id) {
    int lo = 0, hi = t->n_demo_ids;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (t->demo_ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < t->n_demo_ids && t->demo_ids[lo] == id;
}

static void top_reset(Top *t) {
    for (int i = 0; i < t->n; i++)
        free(t->texts[i]);
    free(t->prompt);
    t->prompt = NULL;
    t->n = 0;
    t->rejected = 0;
}

/* Emits the collected prompt's best candidate, if it has one clear best. */
static int top_emit(Top *t) {
    if (!t->prompt_id) return RLHF_OK;
    int best = -1, tied = 0;
    for (int i = 0; i < t->n; i++) {
        double m = t->c[i].rank_sum / t->c[i].n;
        if (best < 0 || m < t->c[best].rank_sum / t->c[best].n - 1e-9) {
            best = i, tied = 0;
        } else if (m < t->c[best].rank_sum / t->c[best].n + 1e-9 &&
                   strcmp(t->c[i].text, t->c[best].text) != 0) {
            tied = 1;
        }
    }
    int rc = RLHF_OK;
    if (best < 0 || tied || t->rejected)
        t->out->skipped++;
    else if (is_demo(t, t->c[best].id))
        ; /* a demonstration at the top: taken with the demonstrations, or left out as flagged */
    else
        rc = add(t->out, t->prompt, t->c[best].text, 0, t->err);
    top_reset(t);
    return rc;
}

static int on_ranking(const RankingRow *r, void *ctx) {
    Top *t = ctx;
    int rc;
    if (r->prompt_id != t->prompt_id) {
        if ((rc = top_emit(t))) return rc;
        t->prompt_id = r->prompt_id;
        if (!(t->prompt = strdup(r->prompt))) return err_set(t->err, RLHF_ENOMEM, "out of memory");
    }
    if (r->none_acceptable) t->rejected = 1;
    for (int k = 0; k < r->n_items; k++) {
        const RankingItemRow *it = &r->items[k];
        if (it->rank <= 0) continue;
        int i = 0;
        while (i < t->n && t->c[i].id != it->candidate_id)
            i++;
        if (i == t->n) {
            if (t->n == t->cap) {
                int cap = t->cap ? t->cap * 2 : 16;
                Cand *c = realloc(t->c, sizeof *c * (size_t)cap);
                char **tx = c ? realloc(t->texts, sizeof *tx * (size_t)cap) : NULL;
                if (c) t->c = c;
                if (tx) t->texts = tx;
                if (!c || !tx) return err_set(t->err, RLHF_ENOMEM, "out of memory");
                t->cap = cap;
            }
            if (!(t->texts[i] = strdup(it->text ? it->text : "")))
                return err_set(t->err, RLHF_ENOMEM, "out of memory");
            t->c[i] = (Cand){it->candidate_id, t->texts[i], 0, 0};
            t->n++;
        }
        t->c[i].rank_sum += it->rank;
        t->c[i].n++;
    }
    return RLHF_OK;
}

static int collect_id(const PromptRow *p, void *ctx) {
    int64_t **ids = ctx;
    size_t n = (size_t)(*ids)[0];
    int64_t *q = realloc(*ids, sizeof(int64_t) * (n + 2));
    if (!q) return RLHF_ENOMEM;
    q[n + 1] = p->id;
    q[0] = (int64_t)n + 1;
    *ids = q;
    return 0;
}

static int load_model_candidates(Db *db, const SftStoreOptions *o, SftData *out, Err *err) {
    ModelRow mr;
    char *newest = NULL;
    const char *from = o->from_model;
    int rc = RLHF_OK;
    if (o->best_of && !from) {
        if ((rc = db_model_newest_best_of(db, &newest, err))) return rc;
        if (!newest)
            return err_set(err, RLHF_ENOTFOUND, "--data best-of: no best-of policy in the project "
                                                "(rlhf gen --best-of N --rm RM first)");
        from = newest;
    }
    rc = db_model_get(db, from, &mr, err);
    if (rc == RLHF_ENOTFOUND)
        rc = err_set(err, RLHF_ENOTFOUND, "--from-model: no model named '%s' in the project", from);
    if (!rc && o->best_of && !(mr.config && strstr(mr.config, "\"best_of\"")))
        rc = err_set(err, RLHF_EINVAL, "--data best-of: '%s' is not a best-of policy (rlhf gen --best-of)", from);
    free(newest);
    if (rc) {
        if (rc != RLHF_ENOTFOUND) db_model_row_free(&mr);
        return rc;
    }
    int64_t mid = mr.id;
    db_model_row_free(&mr);
    int64_t *ids = calloc(1, sizeof(int64_t)); /* ids[0] = count, then the ids */
    if (!ids) return err_set(err, RLHF_ENOMEM, "out of memory");
    PromptFilter pf = {0};
    pf.split = o->filter.split;
    rc = db_prompts_each(db, &pf, collect_id, &ids, err);
    if (rc == RLHF_ENOMEM) err_set(err, rc, "out of memory");
    for (int64_t i = 1; !rc && i <= ids[0]; i++) {
        CandidateRow *c;
        int nc;
        char *prompt = NULL;
        if ((rc = db_candidates_of_prompt(db, ids[i], &c, &nc, err))) break;
        for (int k = 0; k < nc && !rc; k++) {
            if (c[k].model_id != mid) continue;
            if (!prompt && (rc = db_prompt_text(db, ids[i], &prompt, err))) break;
            rc = add(out, prompt, c[k].text, 0, err);
        }
        free(prompt);
        db_candidates_free(c, nc);
    }
    free(ids);
    return rc;
}

typedef struct DemoCtx {
    SftData *out;
    const SftStoreOptions *o;
    int64_t *ids;
    int n, cap;
    Err *err;
} DemoCtx;

static int on_demo(const DemoRow *d, void *ctx) {
    DemoCtx *c = ctx;
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 64;
        int64_t *p = realloc(c->ids, sizeof *p * (size_t)cap);
        if (!p) return err_set(c->err, RLHF_ENOMEM, "out of memory");
        c->ids = p, c->cap = cap;
    }
    c->ids[c->n++] = d->candidate_id;
    if (d->flagged && c->o->demos == SFT_DEMOS_UNFLAGGED) {
        c->out->demos_flagged++;
        return 0;
    }
    c->out->demos++;
    return add(c->out, d->prompt, d->text, 0, c->err);
}

static int cmp_id(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int sft_data_load_store(Db *db, const SftStoreOptions *o, SftData *out, Err *err) {
    if (o->from_model || o->best_of) return load_model_candidates(db, o, out, err);
    DemoCtx dc = {out, o, NULL, 0, 0, err};
    DemoFilter df = {o->filter.split, o->filter.labeler, 0, o->filter.simulated};
    int rc = o->demos == SFT_DEMOS_NONE ? RLHF_OK : db_demos_each(db, &df, on_demo, &dc, err);
    if (dc.n) qsort(dc.ids, (size_t)dc.n, sizeof *dc.ids, cmp_id);
    Top t = {0};
    t.out = out, t.err = err, t.demo_ids = dc.ids, t.n_demo_ids = dc.n;
    if (!rc && !o->no_ranked) rc = db_rankings_each(db, &o->filter, on_ranking, &t, err);
    if (!rc) rc = top_emit(&t);
    top_reset(&t);
    free(t.c);
    free(t.texts);
    free(dc.ids);
    return rc;
}
