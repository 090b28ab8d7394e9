/* The generation loop: select prompts lacking candidates, sample, store. */
#include "gen/gen.h"
#include "model/seq.h"
#include "db/candidates.h"
#include "db/prompts.h"
#include "db/registry.h"
#include "model/chat.h"
#include "model/checkpoint.h"
#include "util/sys.h"
#include "util/text.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *gen_apply_template(const char *template, const char *prompt) {
    return seq_render_template(template, prompt);
}

uint64_t gen_seed(uint64_t base, int64_t prompt_id, int draw) {
    /* splitmix-style mixing of (base, prompt, draw) */
    uint64_t z = base ^ ((uint64_t)prompt_id * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)draw << 40);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

char *gen_draw_config(const char *params_json, uint64_t seed) {
    const char *p = params_json ? params_json : "{}", *end = strrchr(p, '}');
    size_t n = end ? (size_t)(end - p) : 0; /* the object up to its closing brace */
    if (!n || p[0] != '{') p = "{", n = 1;
    int empty = strspn(p + 1, " \t\n") + 1 >= n; /* nothing inside the braces */
    StrBuf b = {0};
    sb_printf(&b, "%.*s%s\"seed\":%llu}", (int)n, p, empty ? "" : ",", (unsigned long long)seed);
    return b.s;
}

void gen_samples_free(GenSample *s, int n) {
    for (int i = 0; i < n; i++) {
        free(s[i].text), free(s[i].tokens);
        s[i].text = NULL, s[i].tokens = NULL;
    }
}

/* What one prompt is getting: the texts it had when read, and every new draw
 * (fresh: a text the model had not given this prompt before). */
typedef struct Pending {
    CandidateRow *rows; /* the prompt's stored candidates (any model) */
    int n_rows;
    GenSample *s; /* s[i] is draw draw[i], sampled with seeds[i] */
    uint64_t *seeds;
    int *draw;
    unsigned char *fresh;
    int n, n_fresh;
} Pending;

static int seen_text(const Pending *p, int64_t model_id, const char *text) {
    for (int i = 0; i < p->n_rows; i++)
        if (p->rows[i].model_id == model_id && strcmp(p->rows[i].text, text) == 0) return 1;
    for (int i = 0; i < p->n; i++)
        if (p->fresh[i] && strcmp(p->s[i].text, text) == 0) return 1;
    return 0;
}

/* Stores the pending draws in one short transaction: each draw's candidate
 * (a text stored before is found, not stored twice) and the draw itself.
 * Another gen on the project may have stored candidates for this prompt
 * while we sampled, so with unique the count is read again under the lock
 * and the draws from the first new text past k on are dropped (the recorded
 * draws stay a prefix). */
static int commit_pending(Db *db, const GenOptions *o, const GenBackend *b, const char *cfg,
                          int64_t pid, const Pending *p, GenStats *st, Err *err) {
    int64_t added = 0, dups = 0, have = 0;
    int rc = db_begin(db, err);
    if (!rc && o->unique) rc = db_candidates_count(db, pid, o->model_id, &have, err);
    for (int i = 0; !rc && i < p->n; i++) {
        const GenSample *x = &p->s[i];
        if (o->unique && p->fresh[i] && have >= o->k) break;
        CandidateIn c = {pid, o->model_id, x->text, x->n_tokens, x->sum_logprob, b->params_json,
                         (int64_t)p->seeds[i], 1, x->tokens, x->n_ids, x->finish};
        int inserted = 0;
        int64_t id = 0;
        rc = db_candidate_insert(db, &c, &id, &inserted, err);
        if (inserted) have++, added++;
        else if (p->fresh[i]) dups++;
        if (!rc) rc = db_draw_insert(db, pid, o->model_id, p->draw[i], id, p->seeds[i], cfg, err);
    }
    if (!rc) rc = db_commit(db, err);
    else db_rollback(db);
    /* counted only once the rows are durable */
    if (!rc) st->candidates += added, st->duplicates += dups;
    return rc;
}

/* Gives one prompt what it lacks: k draws, or with unique k distinct texts.
 * No transaction is open while the model samples (a prompt can take many
 * seconds, and labelers, scorers and trainers must not wait on it): the
 * stored candidates are read, the samples drawn, and only then is everything
 * stored at once, so an interrupted or failed run stores either all of a
 * prompt's new draws or none. */
static int gen_prompt(Db *db, const GenOptions *o, const GenBackend *b, const char *cfg, int64_t pid,
                      const char *ptext, GenStats *st, Err *err) {
    int max_draws = o->max_draws > 0 ? o->max_draws : 4 * o->k;
    int cap = max_draws > o->k ? max_draws : o->k;
    char *input = NULL;
    int rc = seq_render(o->template, ptext, &input, err);
    if (rc) return err_prefix(err, "prompt %lld: ", (long long)pid), rc;
    Pending p = {0};
    GenSample *s = calloc((size_t)cap, sizeof *s);
    uint64_t *seeds = calloc((size_t)cap, sizeof *seeds);
    p.s = calloc((size_t)cap, sizeof *p.s);
    p.seeds = calloc((size_t)cap, sizeof *p.seeds);
    p.draw = calloc((size_t)cap, sizeof *p.draw);
    p.fresh = calloc((size_t)cap, 1);
    if (!s || !seeds || !p.s || !p.seeds || !p.draw || !p.fresh)
        rc = err_set(err, RLHF_ENOMEM, "out of memory");
    /* draws are numbered on from all those recorded, so a resumed run (or an
     * eval after gen) goes on with fresh seeds; with own_config only those of
     * this configuration count toward k */
    int64_t have = 0, drawn = 0, mine = 0;
    if (!rc) rc = db_candidates_of_prompt(db, pid, &p.rows, &p.n_rows, err);
    if (!rc) rc = db_draws_count(db, pid, o->model_id, cfg, &drawn, &mine, err);
    for (int i = 0; !rc && i < p.n_rows; i++) have += p.rows[i].model_id == o->model_id;
    int draw = (int)drawn, used = (int)(o->own_config ? mine : drawn);
    while (!rc) {
        int want = o->unique ? (int)(o->k - have - p.n_fresh) : o->k - used;
        if (o->unique && used + want > max_draws) want = max_draws - used;
        if (want <= 0) {
            st->short_prompts += o->unique && have + p.n_fresh < o->k;
            break;
        }
        for (int i = 0; i < want; i++) seeds[i] = gen_seed(o->seed, pid, draw + i);
        memset(s, 0, (size_t)want * sizeof *s);
        rc = b->sample(b->ctx, input, want, seeds, s, err);
        if (rc) {
            gen_samples_free(s, want);
            err_prefix(err, "prompt %lld: ", (long long)pid);
            break;
        }
        for (int i = 0; i < want && !rc; i++) {
            if (!s[i].text && !(s[i].text = strdup(""))) {
                rc = err_set(err, RLHF_ENOMEM, "out of memory");
                break;
            }
            int fresh = !seen_text(&p, o->model_id, s[i].text);
            st->duplicates += !fresh;
            st->tokens += s[i].n_tokens;
            p.fresh[p.n] = (unsigned char)fresh, p.n_fresh += fresh;
            p.seeds[p.n] = seeds[i], p.draw[p.n] = draw + i;
            p.s[p.n++] = s[i];
            s[i].text = NULL, s[i].tokens = NULL;
        }
        gen_samples_free(s, want);
        draw += want, used += want;
        if (!o->unique) break; /* k draws, whatever they gave */
    }
    /* No resampling after the commit is needed even with --unique: each of our
     * texts that another gen stored meanwhile is one of its rows, so the
     * prompt still reaches k. */
    if (!rc && p.n) rc = commit_pending(db, o, b, cfg, pid, &p, st, err);
    gen_samples_free(p.s, p.n);
    db_candidates_free(p.rows, p.n_rows);
    free(p.s), free(p.seeds), free(p.draw), free(p.fresh);
    free(input);
    free(s);
    free(seeds);
    return rc;
}

struct todo {
    int64_t *ids;
    int n, cap;
};

static int collect_todo(int64_t id, int64_t have, void *ctx) {
    (void)have;
    struct todo *t = ctx;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        int64_t *p = realloc(t->ids, (size_t)t->cap * sizeof *p);
        if (!p) return RLHF_ENOMEM;
        t->ids = p;
    }
    t->ids[t->n++] = id;
    return 0;
}

int gen_run(Db *db, const GenOptions *o, const GenBackend *b, Progress *progress, GenStats *st,
            Err *err) {
    memset(st, 0, sizeof *st);
    if (o->k < 1) return err_set(err, RLHF_EINVAL, "k must be at least 1");
    struct todo t = {0};
    char *cfg = gen_draw_config(b->params_json, o->seed);
    if (!cfg) return err_set(err, RLHF_ENOMEM, "out of memory");
    CandidateNeedFilter f = {o->model_id, o->k,       o->split,
                             o->ids,      o->n_ids,   o->limit,
                             !o->unique,  o->own_config ? cfg : NULL};
    int rc = db_prompts_needing_candidates(db, &f, collect_todo, &t, err);
    if (rc == RLHF_ENOMEM) err_set(err, rc, "out of memory");
    st->prompts_selected = t.n;
    if (progress) progress->total = t.n;
    for (int i = 0; !rc && i < t.n; i++) {
        if (sys_interrupted()) {
            st->interrupted = 1;
            break;
        }
        char *text = NULL;
        rc = db_prompt_text(db, t.ids[i], &text, err);
        /* gen_prompt counts again what the prompt has, not taking it from the
         * selection: another gen on the same project may have filled it since */
        if (!rc) rc = gen_prompt(db, o, b, cfg, t.ids[i], text, st, err);
        free(text);
        if (!rc) st->prompts_done++;
        if (progress) {
            char extra[64];
            snprintf(extra, sizeof extra, "%lld candidates", (long long)st->candidates);
            progress_update(progress, st->prompts_done, extra);
        }
    }
    free(t.ids);
    free(cfg);
    return rc;
}

/* Registers the checkpoint (refusing a name already bound to other weights)
 * and settles the template: --template, else the model's, else the project's,
 * else the default. *template is owned by the caller. */
int gen_register_model(Db *db, const char *ckpt, const char *name_flag, const char *tmpl_flag,
                          int64_t *model_id, char **template, char **name_out, Err *err) {
    char sha[65], real[PATH_MAX];
    const char *name = NULL;
    *template = NULL;
    if (name_out) *name_out = NULL;
    int rc = model_file_sha256(ckpt, sha, err);
    if (rc) return rc;
    const char *path = realpath(ckpt, real) ? real : ckpt;
    ModelRow row;
    char *tmpl = NULL;
    /* without --name, a checkpoint registered before (by pretrain, say) is found by its path */
    rc = db_model_get(db, name_flag ? name_flag : path, &row, err);
    if (rc == RLHF_OK) {
        if (row.sha256 && strcmp(row.sha256, sha) != 0)
            rc = err_set(err, RLHF_EINVAL,
                         "the model '%s' in the project has other weights (sha256 %.12s..., this "
                         "file %.12s...); pass --name to register this checkpoint under a new name",
                         row.name, row.sha256, sha);
        if (!rc && row.template && !tmpl_flag) tmpl = strdup(row.template);
        ModelIn m = {row.name, row.kind, path, row.parent_id, sha, row.config, tmpl_flag};
        if (!rc) rc = db_model_upsert(db, &m, model_id, err);
        if (!rc && name_out && !(*name_out = strdup(row.name))) rc = err_set(err, RLHF_ENOMEM, "out of memory");
        db_model_row_free(&row);
    } else if (rc == RLHF_ENOTFOUND) {
        name = name_flag ? name_flag : path_base(ckpt);
        /* a Hugging Face model is registered with its own chat template */
        rc = tmpl_flag ? RLHF_OK : chat_template_find(ckpt, &tmpl, err);
        ModelIn m = {name, "policy", path, 0, sha, NULL, tmpl_flag ? tmpl_flag : tmpl};
        if (!rc) rc = db_model_upsert(db, &m, model_id, err);
        if (!rc && name_out && !(*name_out = strdup(name))) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    }
    if (!rc && !tmpl) rc = db_template_resolve(db, tmpl_flag, ckpt, chat_template_find, &tmpl, NULL, err);
    if (!rc && !tmpl) tmpl = strdup(GEN_DEFAULT_TEMPLATE);
    if (!rc && !tmpl) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    *template = tmpl;
    if (rc && name_out) free(*name_out), *name_out = NULL;
    return rc;
}
