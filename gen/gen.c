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

/* One prompt being given what it lacks: k draws, or with unique k distinct
 * texts. No transaction is open while the model samples (a prompt can take
 * many seconds, and labelers, scorers and trainers must not wait on it): the
 * stored candidates are read, the samples drawn, and only then is everything
 * stored at once, so an interrupted or failed run stores either all of a
 * prompt's new draws or none. */
typedef struct Job {
    int64_t pid;
    char *input; /* the prompt in the template */
    Pending p;
    int64_t have; /* the model's stored candidates */
    int draw, used;
} Job;

/* Samples per prompt at most with unique, and the most draws a prompt takes
 * in one run (what its arrays hold) */
static int max_draws(const GenOptions *o) {
    return o->max_draws > 0 ? o->max_draws : 4 * o->k;
}
static int draws_cap(const GenOptions *o) {
    return max_draws(o) > o->k ? max_draws(o) : o->k;
}

static void job_free(Job *j) {
    gen_samples_free(j->p.s, j->p.n);
    db_candidates_free(j->p.rows, j->p.n_rows);
    free(j->p.s), free(j->p.seeds), free(j->p.draw), free(j->p.fresh);
    free(j->input);
    memset(j, 0, sizeof *j);
}

/* Reads what prompt pid has; draws are numbered on from all those recorded,
 * so a resumed run (or an eval after gen) goes on with fresh seeds; with
 * own_config only those of this configuration count toward k. */
static int job_open(Db *db, const GenOptions *o, const char *cfg, int64_t pid, Job *j, Err *err) {
    memset(j, 0, sizeof *j);
    j->pid = pid;
    int cap = draws_cap(o);
    char *text = NULL;
    int rc = db_prompt_text(db, pid, &text, err);
    if (!rc && (rc = seq_render(o->template, text, &j->input, err)))
        err_prefix(err, "prompt %lld: ", (long long)pid);
    free(text);
    if (rc) return rc;
    j->p.s = calloc((size_t)cap, sizeof *j->p.s);
    j->p.seeds = calloc((size_t)cap, sizeof *j->p.seeds);
    j->p.draw = calloc((size_t)cap, sizeof *j->p.draw);
    j->p.fresh = calloc((size_t)cap, 1);
    if (!j->p.s || !j->p.seeds || !j->p.draw || !j->p.fresh)
        return err_set(err, RLHF_ENOMEM, "out of memory");
    int64_t drawn = 0, mine = 0;
    if (!rc) rc = db_candidates_of_prompt(db, pid, &j->p.rows, &j->p.n_rows, err);
    if (!rc) rc = db_draws_count(db, pid, o->model_id, cfg, &drawn, &mine, err);
    for (int i = 0; !rc && i < j->p.n_rows; i++) j->have += j->p.rows[i].model_id == o->model_id;
    j->draw = (int)drawn, j->used = (int)(o->own_config ? mine : drawn);
    return rc;
}

/* The draws the prompt wants next (0: none), their seeds into seeds. */
static int job_want(const GenOptions *o, const Job *j, uint64_t *seeds) {
    int want = o->unique ? (int)(o->k - j->have - j->p.n_fresh) : o->k - j->used;
    if (o->unique && j->used + want > max_draws(o)) want = max_draws(o) - j->used;
    if (!o->unique && j->p.n) want = 0; /* k draws, whatever they gave */
    for (int i = 0; i < want; i++) seeds[i] = gen_seed(o->seed, j->pid, j->draw + i);
    return want > 0 ? want : 0;
}

/* Takes the want draws in s (seeded from seeds) into the job. */
static int job_take(Job *j, int64_t model_id, GenSample *s, const uint64_t *seeds, int want,
                    GenStats *st, Err *err) {
    for (int i = 0; i < want; i++) {
        if (!s[i].text && !(s[i].text = strdup("")))
            return err_set(err, RLHF_ENOMEM, "out of memory");
        int fresh = !seen_text(&j->p, model_id, s[i].text);
        st->duplicates += !fresh;
        st->tokens += s[i].n_tokens;
        j->p.fresh[j->p.n] = (unsigned char)fresh, j->p.n_fresh += fresh;
        j->p.seeds[j->p.n] = seeds[i], j->p.draw[j->p.n] = j->draw + i;
        j->p.s[j->p.n++] = s[i];
        s[i].text = NULL, s[i].tokens = NULL;
    }
    j->draw += want, j->used += want;
    return RLHF_OK;
}

/* Samples what the job still wants, prompt alone, and stores its draws. No
 * resampling after the commit is needed even with --unique: each of our
 * texts that another gen stored meanwhile is one of its rows, so the prompt
 * still reaches k. */
static int job_finish(Db *db, const GenOptions *o, const GenBackend *b, const char *cfg, Job *j,
                      GenStats *st, Err *err) {
    int cap = draws_cap(o), rc = RLHF_OK, want;
    GenSample *s = calloc((size_t)cap, sizeof *s);
    uint64_t *seeds = calloc((size_t)cap, sizeof *seeds);
    if (!s || !seeds) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    while (!rc && (want = job_want(o, j, seeds)) > 0) {
        memset(s, 0, (size_t)want * sizeof *s);
        rc = b->sample(b->ctx, j->input, want, seeds, s, err);
        if (rc) err_prefix(err, "prompt %lld: ", (long long)j->pid);
        else rc = job_take(j, o->model_id, s, seeds, want, st, err);
        gen_samples_free(s, want);
    }
    st->short_prompts += !rc && o->unique && j->have + j->p.n_fresh < o->k;
    if (!rc && j->p.n) rc = commit_pending(db, o, b, cfg, j->pid, &j->p, st, err);
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

static void count_done(Progress *progress, GenStats *st) {
    st->prompts_done++;
    if (progress) {
        char extra[64];
        snprintf(extra, sizeof extra, "%lld candidates", (long long)st->candidates);
        progress_update(progress, st->prompts_done, extra);
    }
}

/* The prompts as a backend's stream: a prompt is opened when the backend has
 * room for its draws and stored as soon as they are done (or, with unique,
 * taken again for more), each in its own transaction, so prompts are stored
 * in the order their answers end. A job's slot is its tag. */
typedef struct {
    Db *db;
    const GenOptions *o;
    const GenBackend *b;
    const char *cfg;
    Progress *progress;
    GenStats *st;
    const int64_t *ids;
    int n, at; /* the prompts; the next to open */
    int slots, cap;
    Job *jobs;
    unsigned char *busy;
    int *want;       /* a slot's draws in flight */
    uint64_t *seeds; /* their seeds: cap a slot */
    int *again, n_again; /* slots wanting more draws (unique), oldest first */
    int late;            /* gen's own error (a prompt that cannot be read): no more are opened */
    Err late_err;
} Stream;

static uint64_t *slot_seeds(Stream *f, int i) {
    return f->seeds + (size_t)i * (size_t)f->cap;
}

static int stream_next(void *ctx, const char **input, int *n, const uint64_t **seeds, int *tag) {
    Stream *f = ctx;
    int i = -1;
    if (f->n_again) {
        i = f->again[0];
        memmove(f->again, f->again + 1, sizeof(int) * (size_t)--f->n_again);
    }
    while (i < 0 && !f->late && f->at < f->n) {
        if (sys_interrupted()) {
            f->st->interrupted = 1;
            break;
        }
        int slot = 0;
        while (slot < f->slots && f->busy[slot])
            slot++;
        if (slot == f->slots) break; /* none free now (cannot happen: 2 per stream) */
        Job *j = &f->jobs[slot];
        int rc = job_open(f->db, f->o, f->cfg, f->ids[f->at++], j, &f->late_err);
        int want = rc ? 0 : job_want(f->o, j, slot_seeds(f, slot));
        if (!rc && want == 0) { /* nothing to sample: stored (nothing) at once */
            rc = job_finish(f->db, f->o, f->b, f->cfg, j, f->st, &f->late_err);
            if (!rc) count_done(f->progress, f->st);
        }
        if (rc || want == 0) {
            job_free(j);
            f->late = rc;
            continue;
        }
        f->busy[slot] = 1, f->want[slot] = want, i = slot;
    }
    if (i < 0) return 0;
    *input = f->jobs[i].input, *n = f->want[i], *seeds = slot_seeds(f, i), *tag = i;
    return 1;
}

static int stream_done(void *ctx, int tag, GenSample *out, Err *err) {
    Stream *f = ctx;
    Job *j = &f->jobs[tag];
    int rc = job_take(j, f->o->model_id, out, slot_seeds(f, tag), f->want[tag], f->st, err);
    if (rc) return rc;
    if ((f->want[tag] = job_want(f->o, j, slot_seeds(f, tag))) > 0) {
        f->again[f->n_again++] = tag;
        return RLHF_OK;
    }
    rc = job_finish(f->db, f->o, f->b, f->cfg, j, f->st, err);
    job_free(j);
    f->busy[tag] = 0;
    if (!rc) count_done(f->progress, f->st);
    return rc;
}

/* Prompts ids[0..n) through the backend's stream. What a prompt gets and the
 * errors are those of prompt by prompt: a prompt the backend names as at
 * fault, or one that cannot be read, fails after those before it are
 * stored (their further draws with unique, if any were still wanted, alone
 * after the stream). */
static int gen_stream(Db *db, const GenOptions *o, const GenBackend *b, const char *cfg,
                      const int64_t *ids, int n, Progress *progress, GenStats *st, Err *err) {
    Stream f = {.db = db, .o = o, .b = b, .cfg = cfg, .progress = progress, .st = st,
                .ids = ids, .n = n, .slots = 2 * b->max_batch + 2, .cap = draws_cap(o)};
    f.jobs = calloc((size_t)f.slots, sizeof *f.jobs);
    f.busy = calloc((size_t)f.slots, 1);
    f.want = calloc((size_t)f.slots, sizeof *f.want);
    f.again = calloc((size_t)f.slots, sizeof *f.again);
    f.seeds = calloc((size_t)f.slots * (size_t)f.cap, sizeof *f.seeds);
    int rc = RLHF_OK, bad = -1;
    if (!f.jobs || !f.busy || !f.want || !f.again || !f.seeds)
        rc = err_set(err, RLHF_ENOMEM, "out of memory");
    GenFeed gf = {&f, stream_next, stream_done};
    if (!rc) rc = b->sample_stream(b->ctx, &gf, &bad, err);
    if (rc && bad >= 0) { /* the prompts before it are stored first */
        err_prefix(err, "prompt %lld: ", (long long)f.jobs[bad].pid);
        f.late = rc, f.late_err = *err, rc = RLHF_OK;
        job_free(&f.jobs[bad]);
        f.busy[bad] = 0;
    }
    for (int q = 0; !rc && q < f.n_again; q++) { /* unique's further draws, alone */
        Job *j = &f.jobs[f.again[q]];
        if (!(rc = job_finish(db, o, b, cfg, j, st, err))) count_done(progress, st);
        job_free(j);
        f.busy[f.again[q]] = 0;
    }
    for (int i = 0; f.jobs && i < f.slots; i++)
        job_free(&f.jobs[i]);
    if (!rc && f.late) rc = f.late, *err = f.late_err;
    free(f.jobs), free(f.busy), free(f.want), free(f.again), free(f.seeds);
    return rc;
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
    /* several prompts at once where the backend takes them and k leaves room */
    if (!rc && b->sample_stream && b->max_batch >= 2 * o->k && t.n > 1) {
        rc = gen_stream(db, o, b, cfg, t.ids, t.n, progress, st, err);
        t.n = 0;
    }
    for (int i = 0; !rc && i < t.n;) {
        if (sys_interrupted()) {
            st->interrupted = 1;
            break;
        }
        Job j;
        rc = job_open(db, o, cfg, t.ids[i], &j, err);
        if (!rc) rc = job_finish(db, o, b, cfg, &j, st, err);
        job_free(&j);
        if (!rc) count_done(progress, st);
        i++;
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
