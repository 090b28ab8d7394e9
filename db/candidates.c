/* Candidate storage and import. */
#include "db/candidates.h"
#include "db/internal.h"
#include "db/prompts.h"
#include "db/registry.h"
#include "util/lines.h"
#include "util/text.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const finish_names[] = {NULL, "eos", "stop", "length"};

int db_finish_parse(const char *s) {
    for (int k = 1; s && k <= CAND_FINISH_LENGTH; k++)
        if (strcmp(s, finish_names[k]) == 0) return k;
    return CAND_FINISH_UNKNOWN;
}

/* Token ids as stored: decimal, space-separated. */
static char *ids_text(const int *ids, int n) {
    StrBuf b = {0};
    for (int i = 0; i < n; i++) sb_printf(&b, "%s%d", i ? " " : "", ids[i]);
    return b.s ? b.s : strdup("");
}

int db_ids_parse(const char *s, int **ids, int *n) {
    *ids = NULL, *n = 0;
    if (!s) return 0;
    int cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ' ';
    if (!(*ids = malloc(sizeof(int) * (size_t)cap))) return -1;
    for (char *p = (char *)s, *end; *p; p = end) {
        long v = strtol(p, &end, 10);
        if (end == p) break;
        (*ids)[(*n)++] = (int)v;
    }
    return 0;
}

int db_candidate_insert(Db *db, const CandidateIn *c, int64_t *id, int *inserted, Err *err) {
    char hash[65];
    sha256_hex(c->text, strlen(c->text), hash);
    char *ids = c->tokens ? ids_text(c->tokens, c->n_ids) : NULL;
    if (c->tokens && !ids) return err_set(err, RLHF_ENOMEM, "out of memory");
    const char *finish = c->finish > 0 && c->finish <= CAND_FINISH_LENGTH ? finish_names[c->finish] : NULL;
    int rc = db_run(db, err, "insert candidate",
                    "INSERT INTO candidates(prompt_id, model_id, text, hash, n_tokens,"
                    " sum_logprob, params, seed, tokens, finish)"
                    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                    " ON CONFLICT(prompt_id, model_id, hash) DO NOTHING",
                    "IItt?I?dt?Itt", c->prompt_id, c->model_id, c->text, hash, c->n_tokens >= 0,
                    c->n_tokens, !isnan(c->sum_logprob), c->sum_logprob, c->params, c->has_seed,
                    c->seed, ids, finish);
    free(ids);
    if (rc || db_took_insert(db, id, inserted)) return rc;
    int64_t found;
    rc = db_query_id(db, err, "find candidate", &found,
                     "SELECT id FROM candidates WHERE prompt_id = ? AND model_id = ? AND hash = ?", "IIt",
                     c->prompt_id, c->model_id, hash);
    if (!rc && !found) rc = db_fail(db, err, "find candidate");
    if (!rc && id) *id = found;
    return rc;
}

int db_candidates_of_prompt(Db *db, int64_t prompt_id, CandidateRow **rows, int *n, Err *err) {
    sqlite3_stmt *st;
    *rows = NULL;
    *n = 0;
    int row, cap = 0;
    int rc = db_prepare_bind(db, err, &st,
                             "SELECT c.id, c.prompt_id, c.model_id, c.n_tokens, c.seed, c.sum_logprob,"
                             " m.name, c.text, c.params, c.tokens, c.finish"
                             " FROM candidates c JOIN models m ON m.id = c.model_id"
                             " WHERE c.prompt_id = ? ORDER BY c.id",
                             "I", prompt_id);
    if (rc) return rc;
    while (!(rc = db_step(db, st, &row, err, "read candidates")) && row) {
        if ((rc = db_grow(rows, *n, &cap, 8, sizeof **rows, err))) break;
        CandidateRow *c = &(*rows)[(*n)++];
        c->id = sqlite3_column_int64(st, 0);
        c->prompt_id = sqlite3_column_int64(st, 1);
        c->model_id = sqlite3_column_int64(st, 2);
        c->n_tokens = sqlite3_column_type(st, 3) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 3);
        c->seed = sqlite3_column_int64(st, 4);
        c->sum_logprob = sqlite3_column_type(st, 5) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 5);
        c->model_name = db_col_strdup(st, 6);
        c->text = db_col_strdup(st, 7);
        c->params = db_col_strdup(st, 8);
        c->tokens = NULL, c->n_ids = 0;
        c->finish = db_finish_parse((const char *)sqlite3_column_text(st, 10));
        if (db_ids_parse((const char *)sqlite3_column_text(st, 9), &c->tokens, &c->n_ids))
            rc = err_set(err, RLHF_ENOMEM, "out of memory");
        else if (!c->text) rc = db_null_column(db, err, "candidate", c->id, "text");
        else if (!c->model_name) rc = db_null_column(db, err, "model", c->model_id, "name");
        if (rc) break;
    }
    sqlite3_finalize(st);
    if (rc) {
        db_candidates_free(*rows, *n);
        *rows = NULL;
        *n = 0;
    }
    return rc;
}

void db_candidates_free(CandidateRow *rows, int n) {
    for (int i = 0; i < n; i++)
        free(rows[i].model_name), free(rows[i].text), free(rows[i].params), free(rows[i].tokens);
    free(rows);
}

int db_candidates_count(Db *db, int64_t prompt_id, int64_t model_id, int64_t *n, Err *err) {
    return db_query_id(db, err, "count candidates", n,
                       "SELECT count(*) FROM candidates WHERE prompt_id = ?1 AND (?2 = 0 OR model_id = ?2)",
                       "II", prompt_id, model_id);
}

int db_draw_insert(Db *db, int64_t prompt_id, int64_t model_id, int draw, int64_t cand_id,
                   uint64_t seed, const char *config, Err *err) {
    return db_run(db, err, "record draw",
                  "INSERT INTO draws(prompt_id, model_id, draw, candidate_id, seed, config)"
                  " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                  "IIiIIt", prompt_id, model_id, draw, cand_id, (int64_t)seed, config);
}

int db_draws_count(Db *db, int64_t prompt_id, int64_t model_id, const char *config, int64_t *all,
                   int64_t *mine, Err *err) {
    int rc = db_query_id(db, err, "count draws", all,
                         "SELECT count(*) FROM draws WHERE prompt_id = ?1 AND model_id = ?2", "II",
                         prompt_id, model_id);
    if (!rc)
        rc = db_query_id(db, err, "count draws", mine,
                         "SELECT count(*) FROM draws WHERE prompt_id = ?1 AND model_id = ?2"
                         " AND config IS ?3",
                         "IIt", prompt_id, model_id, config);
    return rc;
}

int db_draws_first(Db *db, int64_t prompt_id, int64_t model_id, const char *config, int max,
                   int64_t **ids, int *n, Err *err) {
    sqlite3_stmt *st;
    *ids = NULL, *n = 0;
    int row, cap = 0;
    int rc = db_prepare_bind(db, err, &st,
                             "SELECT candidate_id FROM draws WHERE prompt_id = ?1 AND model_id = ?2"
                             " AND config IS ?4 ORDER BY draw LIMIT ?3",
                             "IIit", prompt_id, model_id, max, config);
    if (rc) return rc;
    while (!(rc = db_step(db, st, &row, err, "read draws")) && row) {
        if ((rc = db_grow(ids, *n, &cap, 8, sizeof **ids, err))) break;
        (*ids)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (rc) free(*ids), *ids = NULL, *n = 0;
    return rc;
}

int db_prompts_needing_candidates(Db *db, const CandidateNeedFilter *f,
                                  int (*fn)(int64_t prompt_id, int64_t have, void *ctx), void *ctx,
                                  Err *err) {
    StrBuf ids = {0};
    sb_puts(&ids, "[");
    for (int i = 0; i < f->n_ids; i++) sb_printf(&ids, "%s%lld", i ? "," : "", (long long)f->ids[i]);
    sb_puts(&ids, "]");
    sqlite3_stmt *st;
    int row, rc = db_prepare_bind(
                 db, err, &st,
                 "SELECT p.id, CASE WHEN ?7 THEN (SELECT count(*) FROM draws d"
                 "   WHERE d.prompt_id = p.id AND d.model_id = ?1 AND (?8 IS NULL OR d.config = ?8))"
                 "  ELSE (SELECT count(*) FROM candidates c"
                 "   WHERE c.prompt_id = p.id AND c.model_id = ?1) END AS have"
                 " FROM prompts p WHERE (?2 IS NULL OR p.split = ?2)"
                 " AND NOT EXISTS (SELECT 1 FROM prompt_flags pf WHERE pf.prompt_id = p.id)"
                 " AND (?4 = 0 OR p.id IN (SELECT value FROM json_each(?5)))"
                 " AND have < ?3 ORDER BY p.id LIMIT ?6",
                 "ItiitIit", f->model_id, f->split, f->k, f->ids != NULL, ids.s ? ids.s : "[]",
                 f->limit > 0 ? f->limit : (int64_t)-1, f->by_draws, f->config);
    sb_free(&ids);
    if (rc) return rc;
    while (!(rc = db_step(db, st, &row, err, "select prompts")) && row)
        if ((rc = fn(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), ctx)) != 0) break;
    sqlite3_finalize(st);
    return rc;
}

static int import_record(Db *db, LineReader *r, cJSON *obj, const char *default_model,
                         CandidateImportStats *stats, Err *err) {
    static const char *const answer_keys[] = {"completion", "response", NULL};
    static const char *const prompt_keys[] = {"prompt", "instruction", NULL};
    const char *prompt, *answer, *model = NULL, *split = NULL;
    int rc = jsonl_string_any(r, obj, prompt_keys, 1, &prompt, NULL, err);
    if (!rc) rc = jsonl_string_any(r, obj, answer_keys, 1, &answer, NULL, err);
    if (!rc) rc = jsonl_string(r, obj, "model", default_model == NULL, &model, err);
    if (!rc) rc = jsonl_string(r, obj, "split", 0, &split, err);
    if (rc) return rc;
    if (!model) model = default_model;
    if (!*prompt) return err_set(err, RLHF_EFORMAT, "%s:%ld: field \"prompt\" is empty", r->path, r->line);
    if (!*model) return err_set(err, RLHF_EFORMAT, "%s:%ld: field \"model\" is empty", r->path, r->line);
    if (split && !db_valid_split(split))
        return err_set(err, RLHF_EFORMAT, "%s:%ld: field \"split\": not a split name", r->path, r->line);
    PromptIn pin = {prompt, split, r->path, NULL, NULL};
    int64_t pid, mid = 0, cid;
    int new_prompt = 0, inserted = 0;
    rc = db_prompt_insert(db, &pin, &pid, &new_prompt, err);
    if (!rc) rc = db_model_ensure_external(db, model, &mid, err);
    CandidateIn cin = {pid, mid, answer, -1, NAN, NULL, 0, 0, NULL, 0, 0};
    if (!rc) rc = db_candidate_insert(db, &cin, &cid, &inserted, err);
    if (rc) return err_prefix(err, "%s:%ld: ", r->path, r->line);
    stats->read++;
    stats->new_prompts += new_prompt;
    if (inserted) stats->inserted++;
    else stats->duplicates++;
    return RLHF_OK;
}

int db_candidates_import_file(Db *db, const char *path, const char *default_model,
                              CandidateImportStats *stats, Err *err) {
    LineReader r;
    int rc = lines_open(&r, path, err);
    if (rc) return rc;
    int64_t before = stats->read;
    cJSON *obj;
    while (!(rc = jsonl_next(&r, &obj, err)) && obj) {
        rc = import_record(db, &r, obj, default_model, stats, err);
        cJSON_Delete(obj);
        if (rc) break;
    }
    if (!rc && stats->read == before) rc = err_set(err, RLHF_EFORMAT, "%s: no candidates in file", r.path);
    lines_close(&r);
    return rc;
}
