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

static void free_samples(GenSample *s, int n) {
    for (int i = 0; i < n; i++) free(s[i].text);
}

/* Samples and stores what one prompt lacks, in one transaction. */
static int gen_prompt(Db *db, const GenOptions *o, const GenBackend *b, int64_t pid,
                      const char *ptext, int64_t have, GenStats *st, Err *err) {
    int max_draws = o->max_draws > 0 ? o->max_draws : 4 * o->k;
    char *input = NULL;
    int rc = seq_render(o->template, ptext, &input, err);
    if (rc) return err_prefix(err, "prompt %lld: ", (long long)pid), rc;
    GenSample *s = calloc((size_t)o->k, sizeof *s);
    uint64_t *seeds = calloc((size_t)o->k, sizeof *seeds);
    rc = (!s || !seeds) ? err_set(err, RLHF_ENOMEM, "out of memory") : db_begin(db, err);
    /* draws already spent on this prompt are recorded by the candidates' count;
     * numbering draws from `have` keeps a resumed run on fresh seeds */
    int draw = (int)have;
    while (!rc && have < o->k) {
        int want = (int)(o->k - have);
        if (o->unique && draw + want > max_draws) want = max_draws - draw;
        if (want <= 0) {
            st->short_prompts++;
            break;
        }
        for (int i = 0; i < want; i++) seeds[i] = gen_seed(o->seed, pid, draw + i);
        memset(s, 0, (size_t)want * sizeof *s);
        rc = b->sample(b->ctx, input, want, seeds, s, err);
        if (rc) {
            err_prefix(err, "prompt %lld: ", (long long)pid);
            break;
        }
        for (int i = 0; i < want && !rc; i++) {
            CandidateIn c = {pid, o->model_id, s[i].text ? s[i].text : "", s[i].n_tokens,
                             s[i].sum_logprob, b->params_json, (int64_t)seeds[i], 1};
            int inserted = 0;
            rc = db_candidate_insert(db, &c, NULL, &inserted, err);
            if (inserted) have++, st->candidates++;
            else st->duplicates++;
        }
        free_samples(s, want);
        draw += want;
        if (!o->unique) break; /* without --unique a duplicate simply counts once */
    }
    if (!rc) rc = db_commit(db, err);
    else db_rollback(db);
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
    CandidateNeedFilter f = {o->model_id, o->k, o->split, o->ids, o->n_ids, o->limit};
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
        int64_t have = 0;
        rc = db_prompt_text(db, t.ids[i], &text, err);
        /* counted again here, not taken from the selection: another gen on the
         * same project may have filled this prompt since */
        if (!rc) rc = db_candidates_count(db, t.ids[i], o->model_id, &have, err);
        if (!rc) rc = gen_prompt(db, o, b, t.ids[i], text, have, st, err);
        free(text);
        if (!rc) st->prompts_done++;
        if (progress) {
            char extra[64];
            snprintf(extra, sizeof extra, "%lld candidates", (long long)st->candidates);
            progress_update(progress, st->prompts_done, extra);
        }
    }
    free(t.ids);
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
    if (!rc && !tmpl && tmpl_flag) tmpl = strdup(tmpl_flag);
    /* a Hugging Face directory's own chat template before the project's */
    if (!rc && !tmpl) rc = chat_template_find(ckpt, &tmpl, err);
    if (!rc && !tmpl) rc = db_setting_get(db, "gen.template", &tmpl, err);
    if (!rc && !tmpl) tmpl = strdup(GEN_DEFAULT_TEMPLATE);
    if (!rc && !tmpl) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    *template = tmpl;
    if (rc && name_out) free(*name_out), *name_out = NULL;
    return rc;
}
