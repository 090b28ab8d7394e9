/* Prompt storage and import. */
#include "db/prompts.h"
#include "db/internal.h"
#include "util/lines.h"
#include "util/text.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int db_valid_split(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 32) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') return 0;
    return 1;
}

int db_prompt_find(Db *db, const char *text, int64_t *id, Err *err) {
    char hash[65];
    sha256_hex(text, strlen(text), hash);
    return db_query_id(db, err, "find prompt", id, "SELECT id FROM prompts WHERE hash = ?", "t", hash);
}

int db_prompt_text(Db *db, int64_t id, char **text, Err *err) {
    sqlite3_stmt *st;
    *text = NULL;
    int row, rc = db_prepare_bind(db, err, &st, "SELECT text FROM prompts WHERE id = ?", "I", id);
    if (rc) return rc;
    if (!(rc = db_step(db, st, &row, err, "read prompt")) && !row)
        rc = err_set(err, RLHF_ENOTFOUND, "no prompt with id %lld", (long long)id);
    else if (!rc && !(*text = db_col_strdup(st, 0)))
        rc = sqlite3_column_type(st, 0) == SQLITE_NULL ? db_null_column(db, err, "prompt", id, "text")
                                                       : err_set(err, RLHF_ENOMEM, "out of memory");
    sqlite3_finalize(st);
    return rc;
}

/* The insert of one prompt: ?1 text, ?2 its hash, ?3 split, ?4 source, ?5 external id. */
static void bind_prompt(sqlite3_stmt *st, const PromptIn *p, const char *hash) {
    db_bind(st, "tttttt", p->text, hash, p->split ? p->split : "train", p->source, p->ext_id, p->tags);
}

int db_prompt_insert(Db *db, const PromptIn *p, int64_t *id, int *inserted, Err *err) {
    char hash[65];
    sha256_hex(p->text, strlen(p->text), hash);
    sqlite3_stmt *st;
    int rc = db_prepare(db,
                        "INSERT INTO prompts(text, hash, split, source, ext_id) "
                        "VALUES(?, ?, ?, ?, ?) ON CONFLICT(hash) DO NOTHING",
                        &st, err);
    if (rc) return rc;
    bind_prompt(st, p, hash);
    if (sqlite3_step(st) != SQLITE_DONE) rc = db_fail(db, err, "insert prompt");
    sqlite3_finalize(st);
    int64_t found = 0;
    if (!rc && !db_took_insert(db, &found, inserted)) rc = db_prompt_find(db, p->text, &found, err);
    if (!rc && p->tags)
        rc = db_run(db, err, "tag prompt",
                    "INSERT INTO prompt_tags(prompt_id, tag) SELECT ?, value FROM json_each(?)"
                    " WHERE true ON CONFLICT DO NOTHING",
                    "It", found, p->tags);
    if (id) *id = found;
    return rc;
}

static int looks_like_jsonl(const char *path) {
    size_t n = strlen(path);
    if (n >= 6 && strcmp(path + n - 6, ".jsonl") == 0) return 1;
    if (n >= 5 && strcmp(path + n - 5, ".json") == 0) return 1;
    return 0;
}

int db_prompts_stage_begin(Db *db, Err *err) {
    /* BEGIN (deferred): writing only TEMP tables locks nothing in the project */
    int rc = db_exec(db,
                     "CREATE TEMP TABLE IF NOT EXISTS prompt_stage(text TEXT NOT NULL,"
                     " hash TEXT NOT NULL, split TEXT NOT NULL, source TEXT, ext_id TEXT, tags TEXT);"
                     "DELETE FROM temp.prompt_stage; BEGIN",
                     err);
    if (!rc) rc = db_prepare(db,
                             "INSERT INTO temp.prompt_stage(text, hash, split, source, ext_id, tags)"
                             " VALUES(?, ?, ?, ?, ?, ?)",
                             &db->stage, err);
    if (rc) db_prompts_stage_abort(db);
    return rc;
}

void db_prompts_stage_abort(Db *db) {
    sqlite3_finalize(db->stage);
    db->stage = NULL;
    if (sqlite3_get_autocommit(db->h) == 0) sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_exec(db->h, "DROP TABLE IF EXISTS temp.prompt_stage", NULL, NULL, NULL);
}

int db_prompts_stage_commit(Db *db, PromptImportStats *stats, Err *err) {
    sqlite3_finalize(db->stage);
    db->stage = NULL;
    /* the staged rows become visible in one short write transaction; the
     * first of equal texts wins, as when inserting row by row */
    /* a cache that holds the growing index keeps the write lock short */
    int rc = db_exec(db, "COMMIT; PRAGMA cache_size = -262144", err);
    if (!rc) rc = db_begin(db, err);
    if (!rc) rc = db_exec(db,
                          "INSERT INTO prompts(text, hash, split, source, ext_id)"
                          " SELECT text, hash, split, source, ext_id FROM temp.prompt_stage"
                          " WHERE true ORDER BY rowid ON CONFLICT(hash) DO NOTHING",
                          err);
    int64_t added = rc ? 0 : sqlite3_changes64(db->h);
    if (!rc) rc = db_exec(db,
                          "INSERT INTO prompt_tags(prompt_id, tag)"
                          " SELECT p.id, j.value FROM temp.prompt_stage s JOIN prompts p ON p.hash = s.hash,"
                          " json_each(s.tags) j WHERE s.tags IS NOT NULL ON CONFLICT DO NOTHING",
                          err);
    if (!rc) rc = db_commit(db, err);
    else db_rollback(db);
    sqlite3_exec(db->h, "DROP TABLE IF EXISTS temp.prompt_stage", NULL, NULL, NULL);
    if (!rc) {
        stats->inserted += added;
        stats->duplicates = stats->read - stats->inserted;
    }
    return rc;
}

/* Stores one prompt read at r's place and counts it as new or duplicate
 * (staged: counted at db_prompts_stage_commit). */
static int store_prompt(Db *db, LineReader *r, const PromptIn *in, PromptImportStats *stats,
                        Err *err) {
    if (db->stage) {
        char hash[65];
        sha256_hex(in->text, strlen(in->text), hash);
        sqlite3_stmt *st = db->stage;
        sqlite3_reset(st);
        bind_prompt(st, in, hash);
        if (sqlite3_step(st) != SQLITE_DONE) {
            db_fail(db, err, "stage prompt");
            return err_prefix(err, "%s:%ld: ", r->path, r->line);
        }
        stats->read++;
        return RLHF_OK;
    }
    int inserted = 0;
    int rc = db_prompt_insert(db, in, NULL, &inserted, err);
    if (rc) return err_prefix(err, "%s:%ld: ", r->path, r->line);
    stats->read++;
    if (inserted) stats->inserted++;
    else stats->duplicates++;
    return RLHF_OK;
}

/* A record's optional "tags" (an array of names, or one name) as a JSON
 * array's text in *out (NULL when absent or empty); errors name the line. */
static int json_tags(LineReader *r, const cJSON *obj, char **out, Err *err) {
    *out = NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "tags");
    if (!t || cJSON_IsNull(t)) return RLHF_OK;
    cJSON *arr = cJSON_IsString(t) ? cJSON_CreateStringArray((const char *const *)&t->valuestring, 1)
                                   : cJSON_IsArray(t) ? cJSON_Duplicate(t, 1) : NULL;
    if (!arr)
        return err_set(err, RLHF_EFORMAT, "%s:%ld: field \"tags\" must be an array of names or one name",
                       r->path, r->line);
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (cJSON_IsString(e) && db_valid_split(e->valuestring)) continue;
        cJSON_Delete(arr);
        return err_set(err, RLHF_EFORMAT,
                       "%s:%ld: field \"tags\": each tag is a name (1-32 letters, digits, '_', '-')",
                       r->path, r->line);
    }
    if (cJSON_GetArraySize(arr) > 0 && !(*out = cJSON_PrintUnformatted(arr))) {
        cJSON_Delete(arr);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    cJSON_Delete(arr);
    return RLHF_OK;
}

/* Reads one JSONL prompt record and stores it. */
static int import_json_line(Db *db, LineReader *r, cJSON *obj, const char *split_override,
                            const char *source_default, PromptImportStats *stats, Err *err) {
    static const char *const text_keys[] = {"prompt", "instruction", "text", NULL};
    const char *text, *split = NULL, *source = NULL, *ext_id = NULL;
    char idbuf[32];
    int rc = jsonl_string_any(r, obj, text_keys, 1, &text, NULL, err);
    if (!rc && !split_override) rc = jsonl_string(r, obj, "split", 0, &split, err);
    if (!rc) rc = jsonl_string(r, obj, "source", 0, &source, err);
    if (rc) return rc;
    const cJSON *idv = cJSON_GetObjectItemCaseSensitive(obj, "id");
    if (cJSON_IsString(idv)) ext_id = idv->valuestring;
    else if (cJSON_IsNumber(idv)) {
        snprintf(idbuf, sizeof idbuf, "%.17g", idv->valuedouble);
        ext_id = idbuf;
    } else if (idv && !cJSON_IsNull(idv))
        return err_set(err, RLHF_EFORMAT, "%s:%ld: field \"id\" must be a string or number",
                       r->path, r->line);
    char *tags = NULL;
    if ((rc = json_tags(r, obj, &tags, err))) return rc;
    if (!*text) {
        free(tags);
        return err_set(err, RLHF_EFORMAT, "%s:%ld: prompt text is empty", r->path, r->line);
    }
    if (split_override) split = split_override;
    if (split && !db_valid_split(split))
        return free(tags), err_set(err, RLHF_EFORMAT,
                       "%s:%ld: field \"split\": \"%.40s\" is not a split name "
                       "(letters, digits, '_' and '-')",
                       r->path, r->line, split);
    PromptIn in = {text, split, source ? source : source_default, ext_id, tags};
    rc = store_prompt(db, r, &in, stats, err);
    free(tags);
    return rc;
}

int db_prompts_import_file(Db *db, const char *path, const char *split_override,
                           PromptImportStats *stats, Err *err) {
    LineReader r;
    int rc = lines_open(&r, path, err);
    if (rc) return rc;
    int json = looks_like_jsonl(path), decided = json;
    char *line;
    size_t len;
    int64_t before = stats->read;
    while (!(rc = lines_next(&r, &line, &len, err)) && line) {
        if (!decided) {
            json = line[0] == '{';
            decided = 1;
        }
        if (!json) {
            PromptIn in = {line, split_override, path_base(path), NULL, NULL};
            if ((rc = store_prompt(db, &r, &in, stats, err))) break;
            continue;
        }
        cJSON *obj;
        if ((rc = jsonl_parse(&r, line, len, &obj, err))) break;
        rc = import_json_line(db, &r, obj, split_override, path_base(path), stats, err);
        cJSON_Delete(obj);
        if (rc) break;
    }
    if (!rc && stats->read == before)
        rc = err_set(err, RLHF_EFORMAT, "%s: no prompts in file", r.path);
    lines_close(&r);
    return rc;
}

int db_prompts_each(Db *db, const PromptFilter *f, int (*fn)(const PromptRow *, void *),
                    void *ctx, Err *err) {
    sqlite3_stmt *st;
    int rc = db_prepare(
        db,
        "SELECT p.id, p.text, p.split, p.source, p.ext_id, p.created_at,"
        " (SELECT count(*) FROM candidates c WHERE c.prompt_id = p.id),"
        " (SELECT count(*) FROM rankings r WHERE r.prompt_id = p.id AND r.is_current AND NOT "
        "r.skipped),"
        " p.kind, (SELECT name FROM labelers l WHERE l.id = p.author_id), p.examples,"
        " (SELECT group_concat(flag, ',') FROM (SELECT DISTINCT flag FROM prompt_flags f"
        "   WHERE f.prompt_id = p.id ORDER BY flag)),"
        " (SELECT count(*) FROM demonstrations d JOIN candidates c ON c.id = d.candidate_id"
        "   WHERE c.prompt_id = p.id),"
        " (SELECT group_concat(tag, ',') FROM (SELECT tag FROM prompt_tags t"
        "   WHERE t.prompt_id = p.id ORDER BY tag))"
        " FROM prompts p"
        " WHERE (?1 IS NULL OR p.split = ?1) AND (?2 IS NULL OR p.source = ?2)"
        "   AND (?3 IS NULL OR instr(p.text, ?3) > 0)"
        "   AND (?6 = 0 OR p.author_id IS NOT NULL)"
        "   AND (?7 = 0 OR EXISTS (SELECT 1 FROM prompt_flags f WHERE f.prompt_id = p.id))"
        "   AND (?8 = 1 OR NOT EXISTS (SELECT 1 FROM prompt_flags f WHERE f.prompt_id = p.id))"
        " ORDER BY p.id LIMIT ?4 OFFSET ?5",
        &st, err);
    if (rc) return rc;
    db_bind(st, "tttIIiii", f ? f->split : NULL, f ? f->source : NULL, f ? f->contains : NULL,
            f && f->limit > 0 ? f->limit : (int64_t)-1, f ? f->offset : (int64_t)0,
            f ? f->written : 0, f ? f->flagged : 0, f ? f->with_flagged || f->flagged : 0);
    int row;
    while (!(rc = db_step(db, st, &row, err, "list prompts")) && row) {
        PromptRow r = {
            .id = sqlite3_column_int64(st, 0),
            .text = (const char *)sqlite3_column_text(st, 1),
            .split = (const char *)sqlite3_column_text(st, 2),
            .source = (const char *)sqlite3_column_text(st, 3),
            .ext_id = (const char *)sqlite3_column_text(st, 4),
            .created_at = (const char *)sqlite3_column_text(st, 5),
            .n_candidates = sqlite3_column_int64(st, 6),
            .n_rankings = sqlite3_column_int64(st, 7),
            .kind = (const char *)sqlite3_column_text(st, 8),
            .author = (const char *)sqlite3_column_text(st, 9),
            .examples = (const char *)sqlite3_column_text(st, 10),
            .flags = (const char *)sqlite3_column_text(st, 11),
            .n_demos = sqlite3_column_int64(st, 12),
            .tags = (const char *)sqlite3_column_text(st, 13),
        };
        if (!r.text) rc = db_null_column(db, err, "prompt", r.id, "text");
        else if (!r.split) rc = db_null_column(db, err, "prompt", r.id, "split");
        else if (!r.created_at) rc = db_null_column(db, err, "prompt", r.id, "created_at");
        if (rc || (rc = fn(&r, ctx)) != 0) break;
    }
    sqlite3_finalize(st);
    return rc;
}

int db_prompt_tag(Db *db, int64_t prompt_id, const char *tag, int on, Err *err) {
    if (!tag || !db_valid_split(tag))
        return err_set(err, RLHF_EINVAL, "tag '%s' is not a name (1-32 letters, digits, '_', '-')",
                       tag ? tag : "");
    int64_t exists = 0;
    int rc = db_query_id(db, err, "find prompt", &exists,
                         "SELECT count(*) FROM prompts WHERE id = ?", "I", prompt_id);
    if (!rc && !exists)
        return err_set(err, RLHF_ENOTFOUND, "no prompt with id %lld", (long long)prompt_id);
    if (rc) return rc;
    if (on)
        return db_run(db, err, "tag prompt",
                      "INSERT INTO prompt_tags(prompt_id, tag) VALUES(?, ?) ON CONFLICT DO NOTHING",
                      "It", prompt_id, tag);
    rc = db_run(db, err, "untag prompt", "DELETE FROM prompt_tags WHERE prompt_id = ? AND tag = ?",
                "It", prompt_id, tag);
    if (!rc && !sqlite3_changes(db->h))
        rc = err_set(err, RLHF_ENOTFOUND, "prompt %lld has no tag '%s'", (long long)prompt_id, tag);
    return rc;
}

int db_prompts_tagged(Db *db, const char *tag, char ***texts, int *n, Err *err) {
    sqlite3_stmt *st = NULL;
    *texts = NULL, *n = 0;
    int cap = 0, row = 1,
        rc = db_prepare_bind(db, err, &st,
                             "SELECT p.text FROM prompt_tags t JOIN prompts p ON p.id = "
                             "t.prompt_id WHERE t.tag = ? ORDER BY p.id",
                             "t", tag);
    while (!rc && !(rc = db_step(db, st, &row, err, "read tagged prompts")) && row &&
           !(rc = db_grow(texts, *n, &cap, 16, sizeof **texts, err))) {
        if (!((*texts)[*n] = db_col_strdup(st, 0)))
            rc = err_set(err, RLHF_ENOMEM, "out of memory");
        else
            ++*n;
    }
    sqlite3_finalize(st);
    if (rc) {
        for (int i = 0; i < *n; i++)
            free((*texts)[i]);
        free(*texts);
        *texts = NULL, *n = 0;
    }
    return rc;
}
