/* rlhf score: reward-model scores for the store's candidates (kept per
 * candidate and RM, so other commands can sort and filter by them) or for a
 * JSONL file of prompt/answer records (written back with a "score" field). */
#include "cli/cli.h"
#include "rl/run.h"
#include "cli/opts.h"
#include "rm/ensemble.h"
#include "rm/rm_score.h"
#include "db/registry.h"
#include "db/scores.h"
#include "model/checkpoint.h"
#include "rm/rm_score.h"
#include "util/lines.h"
#include "util/progress.h"
#include "util/sys.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int exec_score(int argc, char **argv);

const struct cmd_entry cmd_score_entry = {
    "score", "--rm RM [--split S] [--model NAME] [--redo] | --in FILE [--out FILE]",
    "score candidates with a reward model (stored per candidate and RM)",
    "  --rm RM          the reward model (from `rlhf train-rm`), or a combination\n"
    "                   (A*0.7+B*0.3, A+S!T: see rlhf ppo), or an ensemble A,B,C: each\n"
    "                   scores the store, then the ensemble's disagreement per prompt (mean\n"
    "                   over candidate pairs of the sd over members of the normalised\n"
    "                   reward difference) is kept, negated, as the margin of A,B,C, so\n"
    "                   label --order uncertain --rm A,B,C hands out the largest first\n"
    "  --split S        only candidates of prompts in split S\n"
    "  --model NAME     only candidates from this model\n"
    "  --redo           score again candidates this RM already scored\n"
    "  --in FILE        score a JSONL file of {\"prompt\", "
    "\"completion\"|\"response\"|\"answer\"}\n"
    "                   records instead of the store\n"
    "  --out FILE       with --in: where the records go with a \"score\" field (default stdout)\n"
    "  --tokenizer TOK  tokenizer.bin when RM carries none\n"
    "  --template T     chat template (default: RM's in the registry, else the default)\n"
    "  --batch N        answers per forward pass (default 16)\n" CLI_HELP_COMMON,
    exec_score};

static const struct cmd_entry *E = &cmd_score_entry;

typedef struct Stat {
    int64_t n;
    double sum, sum2;
} Stat;

static void stat_add(Stat *s, const float *x, int n) {
    for (int i = 0; i < n; i++) s->n++, s->sum += x[i], s->sum2 += (double)x[i] * x[i];
}

static void stat_print(const Stat *s, const char *what, const char *rm, int64_t cut) {
    double mean = s->n ? s->sum / s->n : NAN, var = s->n ? s->sum2 / s->n - mean * mean : NAN;
    printf("scored %lld %s with %s: mean %.4f, sd %.4f\n", (long long)s->n, what, rm, mean,
           var > 0 ? sqrt(var) : 0.0);
    if (cut) fprintf(stderr, "score: %lld prompts were cut from the left to fit the context\n", (long long)cut);
}

typedef struct Rec {
    cJSON *obj;
    const char *prompt, *answer;
} Rec;

static int score_file(RmScorer *sc, const char *in, const char *out_path, const char *rm, Err *err) {
    static const char *const prompt_keys[] = {"prompt", "instruction", NULL};
    static const char *const answer_keys[] = {"completion", "response", "answer", NULL};
    LineReader lr;
    int rc = lines_open(&lr, in, err);
    if (rc) return rc;
    Rec *recs = NULL;
    int n = 0, cap = 0;
    cJSON *obj;
    /* every record is read and checked before anything is written */
    while (!(rc = jsonl_next(&lr, &obj, err)) && obj) {
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            Rec *p = realloc(recs, sizeof *p * (size_t)cap);
            if (!p) {
                cJSON_Delete(obj);
                rc = err_set(err, RLHF_ENOMEM, "out of memory");
                break;
            }
            recs = p;
        }
        recs[n].obj = obj;
        rc = jsonl_string_any(&lr, obj, prompt_keys, 1, &recs[n].prompt, NULL, err);
        if (!rc) rc = jsonl_string_any(&lr, obj, answer_keys, 1, &recs[n].answer, NULL, err);
        n++;
        if (rc) break;
    }
    if (!rc && n == 0) rc = err_set(err, RLHF_EFORMAT, "%s: no records in file", lr.path);
    lines_close(&lr);
    const char **p = malloc(sizeof *p * (size_t)(n ? n : 1)), **a = malloc(sizeof *a * (size_t)(n ? n : 1));
    float *s = malloc(sizeof *s * (size_t)(n ? n : 1));
    if (!rc && (!p || !a || !s)) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < n; i++) p[i] = recs[i].prompt, a[i] = recs[i].answer;
    if (!rc) rc = rm_score_texts(sc, p, a, n, s, err);
    AtomicFile af = {0};
    FILE *f = stdout;
    if (!rc && out_path) {
        rc = atomic_open(&af, out_path, err);
        f = af.f;
    }
    for (int i = 0; !rc && i < n; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(recs[i].obj, "score");
        cJSON_AddNumberToObject(recs[i].obj, "score", s[i]);
        char *t = cJSON_PrintUnformatted(recs[i].obj);
        if (!t) rc = err_set(err, RLHF_ENOMEM, "out of memory");
        else fputs(t, f), fputc('\n', f);
        free(t);
    }
    if (!rc && !out_path && (fflush(stdout) || ferror(stdout)))
        rc = err_set(err, RLHF_EIO, "writing to stdout failed");
    if (out_path && af.f) {
        if (rc) atomic_abort(&af);
        else rc = atomic_commit(&af, err);
    }
    if (!rc) {
        Stat st = {0};
        stat_add(&st, s, n);
        /* the records went to stdout: the summary goes to stderr then */
        if (!out_path) {
            double mean = st.sum / st.n;
            fprintf(stderr, "score: %lld records scored with %s: mean %.4f\n", (long long)st.n, rm, mean);
        } else
            stat_print(&st, "records", rm, sc->cut);
    }
    for (int i = 0; i < n; i++) cJSON_Delete(recs[i].obj);
    free(recs), free(p), free(a), free(s);
    return rc;
}

/* The RM's id in the registry, registering it (kind rm) when absent. */
static int rm_model_id(Db *db, const char *rm, const RmScorer *sc, int64_t *id, Err *err) {
    int rc = cli_rm_id(db, rm, id, err);
    if (rc != RLHF_ENOTFOUND) return rc;
    err_clear(err);
    if (rm_spec_is_combined(rm)) {
        /* a combination is registered by its spec: its scores and margins are kept under it */
        ModelIn mi = {rm, "rm", NULL, 0, NULL, "{\"combined\":true}", sc->template};
        return db_model_upsert(db, &mi, id, err);
    }
    return train_register_checkpoint(db, rm, NULL, "rm", 0, &sc->m.cfg, sc->template, 0, NULL, NULL, id, err);
}

static int score_store(RmScorer *sc, Db *db, const char *rm, const char *split, const char *model,
                       int redo, Err *err) {
    int64_t rm_id, model_id = 0;
    int rc = RLHF_OK;
    /* --model is checked before the RM is registered: a refused run registers nothing */
    if (model) {
        ModelRow row;
        if ((rc = db_model_get(db, model, &row, err))) return rc;
        model_id = row.id;
        db_model_row_free(&row);
    }
    if ((rc = rm_model_id(db, rm, sc, &rm_id, err))) return rc;
    ScoreTodoFilter f = {redo ? 0 : rm_id, model_id, split, 0, 256};
    Stat st = {0};
    Progress pg;
    progress_start(&pg, "score", "candidates", 0, 0);
    sys_catch_interrupts();
    float *s = malloc(sizeof *s * (size_t)f.limit);
    const char **p = malloc(sizeof *p * (size_t)f.limit), **a = malloc(sizeof *a * (size_t)f.limit);
    unsigned char *cut = malloc((size_t)f.limit);
    if (!s || !p || !a || !cut) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    /* chunk by chunk, each committed: an interrupted run keeps what it scored */
    while (!rc && !sys_interrupted()) {
        ScoreTodo *rows;
        int n;
        if ((rc = db_score_todo(db, &f, &rows, &n, err)) || n == 0) break;
        /* an answer cut at max tokens is scored unfinished, as eval and PPO score it */
        for (int i = 0; i < n; i++) p[i] = rows[i].prompt, a[i] = rows[i].text, cut[i] = (unsigned char)rows[i].cut;
        rc = rm_score_texts_cut(sc, p, a, cut, n, s, err);
        if (!rc) rc = db_begin(db, err);
        for (int i = 0; !rc && i < n; i++) rc = db_score_put(db, rows[i].cand_id, rm_id, s[i], err);
        if (!rc) rc = db_commit(db, err);
        else db_rollback(db);
        f.after_id = rows[n - 1].cand_id;
        db_score_todo_free(rows, n);
        if (!rc) stat_add(&st, s, n);
        progress_update(&pg, st.n, NULL);
    }
    progress_finish(&pg, NULL);
    free(s), free(p), free(a), free(cut);
    if (rc) return rc;
    if (sys_interrupted()) {
        fprintf(stderr, "score: interrupted after %lld candidates; run it again to go on\n", (long long)st.n);
        return err_set(err, RLHF_EINTR, "interrupted");
    }
    /* the margins are refreshed even when nothing new was scored: new rankings do not move them,
     * but a first run of this version on old scores must fill them */
    int64_t n_margins = 0;
    if ((rc = db_margins_refresh(db, rm_id, &n_margins, err))) return rc;
    if (st.n == 0)
        printf("nothing to score: every candidate%s%s already has a score by %s (--redo scores again)\n",
               split ? " of that split" : "", model ? " of that model" : "", rm);
    else
        stat_print(&st, "candidates", rm, sc->cut);
    printf("margins of %lld prompts stored for %s (rlhf label --order uncertain hands out the smallest first)\n",
           (long long)n_margins, rm);
    return RLHF_OK;
}

/* --rm A,B,C: each member scores the store as it would alone (its scores and
 * margins kept), then the ensemble's disagreement is stored under the spec as
 * the margins `label --order uncertain --rm A,B,C` reads. */
static int score_ensemble(Db *db, const char *spec, const char *tok_path, const char *template,
                          int batch, const char *split, const char *model, int redo, Err *err) {
    char *copy = strdup(spec), *names[16], *save = NULL;
    int64_t ids[16], ens_id = 0, n = 0;
    int k = 0, rc = copy ? RLHF_OK : err_set(err, RLHF_ENOMEM, "out of memory");
    for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && !rc;
         t = strtok_r(NULL, ",", &save))
        if (k == 16)
            rc = err_set(err, RLHF_EINVAL, "--rm '%s': an ensemble of 16 reward models at most",
                         spec);
        else
            names[k++] = t;
    if (!rc && k < 2)
        rc = err_set(err, RLHF_EINVAL, "--rm '%s': an ensemble needs two reward models or more",
                     spec);
    for (int j = 0; j < k && !rc; j++) {
        RmScorer sc;
        if ((rc = rm_scorer_open_in(db, &sc, names[j], tok_path, template, batch, err))) break;
        rc = score_store(&sc, db, names[j], split, model, redo, err);
        rm_scorer_close(&sc);
        if (!rc) rc = cli_rm_id(db, names[j], &ids[j], err);
    }
    if (!rc && (rc = cli_rm_id(db, spec, &ens_id, err)) == RLHF_ENOTFOUND) {
        err_clear(err);
        ModelIn mi = {spec, "rm", NULL, 0, NULL, "{\"ensemble\":true}", NULL};
        rc = db_model_upsert(db, &mi, &ens_id, err);
    }
    if (!rc) rc = rm_ensemble_store(db, ens_id, ids, (const char *const *)names, k, &n, err);
    if (!rc)
        printf(
            "disagreement of %lld prompts stored for the ensemble %s (rlhf label --order uncertain "
            "hands out the largest first)\n",
            (long long)n, spec);
    free(copy);
    return rc;
}

static int exec_score(int argc, char **argv) {
    const char *dbflag = NULL, *rm = NULL, *split = NULL, *model = NULL, *in = NULL, *out = NULL;
    const char *tok_path = NULL, *template = NULL;
    long batch = 16;
    int redo = 0;
    const CliOpt opts[] = {CLI_O_DB(&dbflag), CLI_O_STR("rm", &rm), CLI_O_STR("split", &split),
                           CLI_O_STR("model", &model), CLI_O_FLAG("redo", &redo),
                           CLI_O_STR("in", &in), CLI_O_STR("out", &out),
                           CLI_O_STR("tokenizer", &tok_path), CLI_O_STR("template", &template),
                           CLI_O_LONG("batch", &batch, 1, 4096), CLI_O_END};
    int rc = cli_opts_parse(E, argc, argv, opts, NULL);
    if (rc >= 0) return rc;
    if (!rm) return cli_usage_error(E, "--rm RM is required");
    if (out && !in) return cli_usage_error(E, "--out goes with --in FILE (store scores stay in the store)");
    if (in && rm_spec_is_ensemble(rm))
        return cli_usage_error(E, "an ensemble (--rm A,B,...) scores the store, not --in");
    if (in && (split || model || redo)) return cli_usage_error(E, "--split, --model and --redo are for the store, not --in");
    Db *db = NULL;
    Err err = {0};
    if (!in || cli_db_path(dbflag)) {
        if ((rc = cli_open_db(E, dbflag, DB_OPEN_EXISTING, &db))) return rc;
    }
    if (!in && rm_spec_is_ensemble(rm)) {
        rc = score_ensemble(db, rm, tok_path, template, (int)batch, split, model, redo, &err);
        db_close(db);
        return rc ? cli_fail(E, &err) : EXIT_OK;
    }
    RmScorer sc;
    rc = rm_scorer_open_in(db, &sc, rm, tok_path, template, (int)batch, &err);
    if (!rc) {
        rc = in ? score_file(&sc, in, out, rm, &err) : score_store(&sc, db, rm, split, model, redo, &err);
        rm_scorer_close(&sc);
    }
    if (db) db_close(db);
    return rc ? cli_fail(E, &err) : EXIT_OK;
}
