/* The rankings importer: each line of `rlhf export --format rankings` becomes
 * its prompt, candidates and ranking again, with ties, scores, flags, note,
 * skip, time and date. Lines go in file order, so a labeler's later version
 * of a prompt supersedes the earlier one as it did in the exporting project. */
#include "db/candidates.h"
#include "db/prompts.h"
#include "db/rankings.h"
#include "db/registry.h"
#include "rm/import.h"
#include "util/lines.h"
#include "util/sys.h"
#include "util/text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ITEMS 64

static int bad(LineReader *r, Err *err, const char *what, const char *key) {
    return err_set(err, RLHF_EFORMAT, "%s:%ld: field \"%s\" %s", r->path, r->line, key, what);
}

/* An optional bool field (absent or null: 0). */
static int get_bool(LineReader *r, const cJSON *obj, const char *key, int *out, Err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = 0;
    if (!v || cJSON_IsNull(v)) return RLHF_OK;
    if (!cJSON_IsBool(v)) return bad(r, err, "must be true or false", key);
    *out = cJSON_IsTrue(v);
    return RLHF_OK;
}

/* A list of n entries (absent or null: none) whose entries are integers in
 * lo..hi or null (0). */
static int get_ints(LineReader *r, const cJSON *obj, const char *key, int n, int lo, int hi,
                    int *out, Err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    memset(out, 0, (size_t)n * sizeof *out);
    if (!v || cJSON_IsNull(v)) return RLHF_OK;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != n)
        return err_set(err, RLHF_EFORMAT,
                       "%s:%ld: field \"%s\" must be a list of %d entries, one per completion",
                       r->path, r->line, key, n);
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        if (cJSON_IsNull(e)) continue;
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < lo ||
            e->valuedouble > hi)
            return err_set(err, RLHF_EFORMAT,
                           "%s:%ld: field \"%s\": entry %d must be %d..%d or null", r->path,
                           r->line, key, i + 1, lo, hi);
        out[i] = (int)e->valuedouble;
    }
    return RLHF_OK;
}

/* "YYYY-MM-DDTHH:MM:SS[.fff]Z", the store's form, so --since/--until still sort. */
static int is_timestamp(const char *s) {
    static const char form[] = "dddd-dd-ddTdd:dd:dd";
    size_t i = 0;
    for (; form[i]; i++)
        if (form[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != form[i]) return 0;
    if (s[i] == '.')
        for (i++; s[i] >= '0' && s[i] <= '9'; i++) {
        }
    return s[i] == 'Z' && !s[i + 1];
}

typedef struct Line {
    const char *prompt, *split, *labeler, *note, *skip_reason, *source, *created_at;
    int simulated, skipped, none_acceptable, n;
    int64_t time_ms;
    const char *model[MAX_ITEMS], *text[MAX_ITEMS];
    int rank[MAX_ITEMS], likert[MAX_ITEMS];
    char *flags[MAX_ITEMS]; /* JSON text, owned; NULL: none */
} Line;

static void line_free(Line *l) {
    for (int i = 0; i < l->n; i++)
        free(l->flags[i]);
}

static int read_completions(LineReader *r, const cJSON *obj, const ImportOptions *o, Line *l,
                            Err *err) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(obj, "completions");
    if (!c || cJSON_IsNull(c))
        return err_set(err, RLHF_EFORMAT, "%s:%ld: missing field \"completions\"", r->path,
                       r->line);
    if (!cJSON_IsArray(c)) return bad(r, err, "must be a list", "completions");
    l->n = cJSON_GetArraySize(c);
    if (l->n < 1 || l->n > MAX_ITEMS) {
        l->n = 0;
        return err_set(err, RLHF_EFORMAT, "%s:%ld: field \"completions\" must hold 1 to %d entries",
                       r->path, r->line, MAX_ITEMS);
    }
    for (int i = 0; i < l->n; i++) {
        const cJSON *e = cJSON_GetArrayItem(c, i);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "model");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "text");
        if (!cJSON_IsString(t) || (m && !cJSON_IsNull(m) && !cJSON_IsString(m)))
            return err_set(err, RLHF_EFORMAT,
                           "%s:%ld: field \"completions\": entry %d needs a string \"text\" (and "
                           "\"model\", if any, a string)",
                           r->path, r->line, i + 1);
        l->text[i] = t->valuestring;
        l->model[i] = cJSON_IsString(m) && *m->valuestring ? m->valuestring
                      : o->model                           ? o->model
                                                           : "import";
    }
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, "flags");
    if (f && !cJSON_IsNull(f) && (!cJSON_IsArray(f) || cJSON_GetArraySize(f) != l->n))
        return err_set(err, RLHF_EFORMAT,
                       "%s:%ld: field \"flags\" must be a list of %d lists, one per completion",
                       r->path, r->line, l->n);
    for (int i = 0; f && cJSON_IsArray(f) && i < l->n; i++) {
        const cJSON *e = cJSON_GetArrayItem(f, i);
        if (cJSON_IsNull(e) || cJSON_GetArraySize(e) == 0) continue;
        int ok = cJSON_IsArray(e);
        for (int k = 0; ok && k < cJSON_GetArraySize(e); k++)
            ok = cJSON_IsString(cJSON_GetArrayItem(e, k));
        if (!ok)
            return err_set(err, RLHF_EFORMAT,
                           "%s:%ld: field \"flags\": entry %d must be a list of strings", r->path,
                           r->line, i + 1);
        if (!(l->flags[i] = cJSON_PrintUnformatted(e)))
            return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    int rc = get_ints(r, obj, "ranks", l->n, 1, l->n, l->rank, err);
    if (!rc) rc = get_ints(r, obj, "scores", l->n, 1, 7, l->likert, err);
    return rc;
}

static int read_line(LineReader *r, const cJSON *obj, const ImportOptions *o, Line *l, Err *err) {
    int rc = jsonl_string(r, obj, "prompt", 1, &l->prompt, err);
    if (!rc) rc = jsonl_string(r, obj, "split", 0, &l->split, err);
    if (!rc) rc = jsonl_string(r, obj, "labeler", 0, &l->labeler, err);
    if (!rc) rc = jsonl_string(r, obj, "note", 0, &l->note, err);
    if (!rc) rc = jsonl_string(r, obj, "skip_reason", 0, &l->skip_reason, err);
    if (!rc) rc = jsonl_string(r, obj, "source", 0, &l->source, err);
    if (!rc) rc = jsonl_string(r, obj, "created_at", 0, &l->created_at, err);
    if (!rc) rc = get_bool(r, obj, "simulated", &l->simulated, err);
    if (!rc) rc = get_bool(r, obj, "skipped", &l->skipped, err);
    if (!rc) rc = get_bool(r, obj, "none_acceptable", &l->none_acceptable, err);
    double t = -1;
    int has_t = 0;
    if (!rc) rc = jsonl_number(r, obj, "time_ms", 0, &t, &has_t, err);
    if (!rc) rc = read_completions(r, obj, o, l, err);
    if (rc) return rc;
    if (has_t && (t < 0 || t != floor(t) || t > 9e15))
        return bad(r, err, "must be a whole number of milliseconds or null", "time_ms");
    l->time_ms = has_t ? (int64_t)t : -1;
    if (!*l->prompt) return bad(r, err, "is empty", "prompt");
    if (l->labeler && !*l->labeler) return bad(r, err, "is empty", "labeler");
    if (l->split && !db_valid_split(l->split)) return bad(r, err, "is not a split name", "split");
    if (l->created_at && !is_timestamp(l->created_at))
        return bad(r, err, "must be a UTC time YYYY-MM-DDTHH:MM:SS[.fff]Z", "created_at");
    return RLHF_OK;
}

/* Writes one line's prompt, candidates and ranking. */
static int write_line(Db *db, const Line *l, const ImportOptions *o, const char *source,
                      ImportStats *st, Err *err) {
    PromptIn pin = {l->prompt, o->split ? o->split : l->split, source, NULL, NULL};
    int64_t pid, cand[MAX_ITEMS], lid;
    int ins = 0, rc = db_prompt_insert(db, &pin, &pid, &ins, err);
    st->prompts_new += ins;
    RankingItemIn items[MAX_ITEMS];
    for (int i = 0; i < l->n && !rc; i++) {
        int64_t mid;
        rc = db_model_ensure_external(db, l->model[i], &mid, err);
        CandidateIn c = {pid, mid, l->text[i], -1, NAN, NULL, 0, 0, NULL, 0, 0};
        if (!rc) rc = db_candidate_insert(db, &c, &cand[i], &ins, err);
        st->candidates_new += ins;
        items[i] = (RankingItemIn){cand[i], l->rank[i], l->likert[i], l->flags[i], -1};
    }
    const char *labeler = o->labeler ? o->labeler : l->labeler ? l->labeler : source;
    int sim = o->labeler ? 0 : l->simulated;
    const char *from = l->source ? l->source : source;
    if (!rc) rc = db_labeler_ensure(db, labeler, sim, sim ? from : NULL, &lid, err);
    if (rc) return rc;
    RankingIn in = {0};
    in.prompt_id = pid, in.labeler_id = lid, in.simulated = sim;
    in.skipped = l->skipped, in.none_acceptable = l->none_acceptable;
    in.skip_reason = l->skip_reason, in.note = l->note;
    in.time_spent_ms = l->time_ms, in.gold_agreement = NAN;
    in.source = from, in.created_at = l->created_at;
    in.items = items, in.n_items = l->n;
    rc = db_ranking_submit(db, &in, NULL, err);
    if (rc) return rc;
    st->rankings++;
    for (int i = 0; i < l->n; i++)
        for (int j = i + 1; j < l->n; j++)
            st->pairs += l->rank[i] && l->rank[j] && l->rank[i] != l->rank[j];
    return RLHF_OK;
}

int rm_import_rankings_file(Db *db, const char *path, const ImportOptions *o, ImportStats *st,
                            Err *err) {
    LineReader lr;
    int rc = lines_open(&lr, path, err);
    if (rc) return rc;
    char source[600];
    snprintf(source, sizeof source, "import:%s", path_base(lr.path));
    int64_t before = st->records;
    cJSON *obj;
    while (!(rc = jsonl_next(&lr, &obj, err)) && obj) {
        Line l;
        memset(&l, 0, sizeof l);
        rc = read_line(&lr, obj, o, &l, err);
        if (!rc && (rc = write_line(db, &l, o, source, st, err)))
            err_prefix(err, "%s:%ld: ", lr.path, lr.line);
        line_free(&l);
        cJSON_Delete(obj);
        if (rc) break;
        st->records++;
        if (o->progress) progress_update(o->progress, st->records, NULL);
        if (sys_interrupted()) rc = err_set(err, RLHF_EINTR, "%s: interrupted", lr.path);
        if (rc) break;
    }
    if (!rc && st->records == before)
        rc = err_set(err, RLHF_EFORMAT, "%s: no records in file", lr.path);
    lines_close(&lr);
    return rc;
}
