/* Demonstrations, written prompts and their flags (see demos.h). */
#include "db/demos.h"
#include "db/candidates.h"
#include "db/internal.h"
#include "db/prompts.h"
#include "db/registry.h"
#include "util/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const db_prompt_kinds[] = {"plain", "fewshot", "user", NULL};
const char *const db_prompt_flag_names[] = {"unclear", "unsafe", "duplicate", NULL};

static int in_list(const char *const *list, const char *s) {
    for (int i = 0; s && list[i]; i++)
        if (strcmp(list[i], s) == 0) return 1;
    return 0;
}

int db_prompt_kind_valid(const char *kind) {
    return in_list(db_prompt_kinds, kind);
}

static int store_in_tx(Db *db, const DemoIn *d, int64_t *cid, Err *err) {
    char model[160];
    snprintf(model, sizeof model, "human:%s", d->labeler);
    int64_t mid, n = 0;
    int inserted, rc = db_model_ensure_external(db, model, &mid, err);
    if (!rc)
        rc = db_query_id(db, err, "find prompt", &n, "SELECT count(*) FROM prompts WHERE id = ?",
                         "I", d->prompt_id);
    if (!rc && !n)
        return err_set(err, RLHF_ENOTFOUND, "no prompt with id %lld", (long long)d->prompt_id);
    CandidateIn c = {.prompt_id = d->prompt_id, .model_id = mid, .text = d->text, .n_tokens = -1};
    c.sum_logprob = 0.0 / 0.0;
    if (!rc) rc = db_candidate_insert(db, &c, cid, &inserted, err);
    if (!rc && !inserted)
        return err_set(err, RLHF_EINVAL,
                       "prompt %lld: %s wrote this very answer before (candidate %lld)",
                       (long long)d->prompt_id, d->labeler, (long long)*cid);
    if (!rc)
        rc = db_run(
            db, err, "store demonstration",
            "INSERT INTO demonstrations(candidate_id, labeler_id, edited_from, time_spent_ms,"
            " edit_distance, simulated, source) VALUES(?, ?, ?, ?, ?, ?, ?)",
            "II?I?I?Iit", *cid, d->labeler_id, d->edited_from > 0, d->edited_from,
            d->time_spent_ms >= 0, d->time_spent_ms, d->edit_distance >= 0, d->edit_distance,
            d->simulated, d->source);
    if (!rc && d->finish_claim)
        rc = db_run(db, err, "finish assignment",
                    "INSERT INTO assignments(prompt_id, labeler_id, task, status, done_at)"
                    " VALUES(?1, ?2, 'write', 'done', strftime('%Y-%m-%dT%H:%M:%SZ','now'))"
                    " ON CONFLICT(prompt_id, labeler_id, task) DO UPDATE SET status = 'done',"
                    " done_at = excluded.done_at, expires_at = NULL",
                    "II", d->prompt_id, d->labeler_id);
    return rc;
}

int db_demo_store(Db *db, const DemoIn *d, int64_t *candidate_id, Err *err) {
    if (!d->text || !*d->text)
        return err_set(err, RLHF_EINVAL, "an empty answer is no demonstration");
    if (d->edited_from > 0) {
        int64_t same = 0;
        int rc = db_query_id(db, err, "find candidate", &same,
                             "SELECT prompt_id FROM candidates WHERE id = ?", "I", d->edited_from);
        if (rc) return rc;
        if (same != d->prompt_id)
            return err_set(err, RLHF_EINVAL, "candidate %lld is not an answer to prompt %lld",
                           (long long)d->edited_from, (long long)d->prompt_id);
    }
    int64_t cid = 0;
    int own, rc = db_begin_own(db, &own, err);
    if (rc) return rc;
    rc = db_end_own(db, own, store_in_tx(db, d, &cid, err), err);
    if (!rc && candidate_id) *candidate_id = cid;
    return rc;
}

int db_prompt_write(Db *db, const WrittenPromptIn *p, int64_t *id, int *inserted, Err *err) {
    if (!db_prompt_kind_valid(p->kind))
        return err_set(err, RLHF_EINVAL, "prompt kind '%s': one of plain, fewshot, user",
                       p->kind ? p->kind : "");
    if (!p->text || !*p->text) return err_set(err, RLHF_EINVAL, "an empty prompt");
    int own, ins = 0, rc = db_begin_own(db, &own, err);
    if (rc) return rc;
    PromptIn in = {p->text, p->split, "written", NULL, NULL};
    rc = db_prompt_insert(db, &in, id, &ins, err);
    if (!rc && ins)
        rc = db_run(db, err, "store written prompt",
                    "UPDATE prompts SET kind = ?1, author_id = ?2, examples = ?3 WHERE id = ?4",
                    "tItI", p->kind, p->author_id, p->examples, *id);
    if (inserted) *inserted = ins;
    return db_end_own(db, own, rc, err);
}

int db_prompt_flag(Db *db, int64_t prompt_id, int64_t labeler_id, const char *flag,
                   const char *note, Err *err) {
    if (!in_list(db_prompt_flag_names, flag))
        return err_set(err, RLHF_EINVAL, "prompt flag '%s': one of unclear, unsafe, duplicate",
                       flag ? flag : "");
    int64_t author; /* 0: no such prompt; -1: imported, no author */
    int rc = db_query_id(db, err, "find prompt", &author,
                         "SELECT coalesce(author_id, -1) FROM prompts WHERE id = ?", "I", prompt_id);
    if (!rc && !author)
        return err_set(err, RLHF_ENOTFOUND, "no prompt with id %lld", (long long)prompt_id);
    if (!rc && author == labeler_id)
        return err_set(err, RLHF_EINVAL, "prompt %lld is your own: other labelers flag it",
                       (long long)prompt_id);
    if (!rc)
        rc = db_run(db, err, "flag prompt",
                    "INSERT INTO prompt_flags(prompt_id, labeler_id, flag, note) VALUES(?, ?, ?, ?)"
                    " ON CONFLICT(prompt_id, labeler_id, flag) DO UPDATE SET note = "
                    "coalesce(excluded.note, note)",
                    "IItt", prompt_id, labeler_id, flag, note);
    return rc;
}

int db_prompt_unflag(Db *db, int64_t prompt_id, int64_t *removed, Err *err) {
    int64_t exists = 0;
    int rc = db_query_id(db, err, "find prompt", &exists,
                         "SELECT count(*) FROM prompts WHERE id = ?", "I", prompt_id);
    if (!rc && !exists)
        return err_set(err, RLHF_ENOTFOUND, "no prompt with id %lld", (long long)prompt_id);
    if (!rc)
        rc = db_run(db, err, "unflag prompt", "DELETE FROM prompt_flags WHERE prompt_id = ?", "I",
                    prompt_id);
    if (!rc) *removed = sqlite3_changes(db->h);
    return rc;
}

int db_prompt_flags(Db *db, int64_t prompt_id, char **flags, Err *err) {
    sqlite3_stmt *st;
    *flags = NULL;
    int row, rc = db_prepare_bind(
                 db, err, &st,
                 "SELECT group_concat(flag, ',') FROM (SELECT DISTINCT flag FROM prompt_flags"
                 " WHERE prompt_id = ? ORDER BY flag)",
                 "I", prompt_id);
    if (rc) return rc;
    if (!(rc = db_step(db, st, &row, err, "read prompt flags")) && row)
        *flags = db_col_strdup(st, 0);
    sqlite3_finalize(st);
    return rc;
}

int db_prompt_origin(Db *db, int64_t prompt_id, char **kind, char **author, Err *err) {
    sqlite3_stmt *st;
    *kind = *author = NULL;
    int row, rc = db_prepare_bind(
                 db, err, &st,
                 "SELECT p.kind, l.name FROM prompts p LEFT JOIN labelers l ON l.id = p.author_id"
                 " WHERE p.id = ?",
                 "I", prompt_id);
    if (rc) return rc;
    if (!(rc = db_step(db, st, &row, err, "read prompt")) && row) {
        *kind = db_col_strdup(st, 0);
        *author = db_col_strdup(st, 1);
    }
    sqlite3_finalize(st);
    return rc;
}

int db_demos_each(Db *db, const DemoFilter *f, int (*fn)(const DemoRow *, void *), void *ctx,
                  Err *err) {
    sqlite3_stmt *st;
    int rc = db_prepare_bind(
        db, err, &st,
        "SELECT d.candidate_id, c.prompt_id, coalesce(d.edited_from, 0), coalesce(d.time_spent_ms, "
        "-1),"
        " coalesce(d.edit_distance, -1), p.text, p.split, c.text, l.name, d.source, d.created_at, "
        "d.simulated,"
        " EXISTS (SELECT 1 FROM prompt_flags pf WHERE pf.prompt_id = p.id)"
        " OR EXISTS (SELECT 1 FROM ranking_items ri JOIN rankings r ON r.id = ri.ranking_id"
        "   WHERE ri.candidate_id = d.candidate_id AND r.is_current AND r.labeler_id != "
        "d.labeler_id"
        "   AND ri.flags IS NOT NULL AND ri.flags NOT IN ('', '[]'))"
        " FROM demonstrations d JOIN candidates c ON c.id = d.candidate_id"
        " JOIN prompts p ON p.id = c.prompt_id JOIN labelers l ON l.id = d.labeler_id"
        " WHERE (?1 IS NULL OR p.split = ?1) AND (?2 IS NULL OR l.name = ?2) AND (?3 < 0 OR "
        "d.simulated = ?3)"
        " ORDER BY c.prompt_id, d.candidate_id",
        "tti", f ? f->split : NULL, f ? f->labeler : NULL, f ? f->simulated : -1);
    if (rc) return rc;
    int row;
    while (!(rc = db_step(db, st, &row, err, "read demonstrations")) && row) {
        DemoRow r = {0};
        r.candidate_id = sqlite3_column_int64(st, 0);
        r.prompt_id = sqlite3_column_int64(st, 1);
        r.edited_from = sqlite3_column_int64(st, 2);
        r.time_spent_ms = sqlite3_column_int64(st, 3);
        r.edit_distance = sqlite3_column_int64(st, 4);
        r.prompt = (const char *)sqlite3_column_text(st, 5);
        r.split = (const char *)sqlite3_column_text(st, 6);
        r.text = (const char *)sqlite3_column_text(st, 7);
        r.author = (const char *)sqlite3_column_text(st, 8);
        r.source = (const char *)sqlite3_column_text(st, 9);
        r.created_at = (const char *)sqlite3_column_text(st, 10);
        r.simulated = sqlite3_column_int(st, 11);
        r.flagged = sqlite3_column_int(st, 12);
        if (!r.prompt || !r.text || !r.author) {
            rc = db_null_column(db, err, "demonstration", r.candidate_id, "prompt, text or author");
            break;
        }
        if (f && f->unflagged && r.flagged) continue;
        if ((rc = fn(&r, ctx))) break;
    }
    sqlite3_finalize(st);
    return rc;
}
