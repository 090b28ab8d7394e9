/* The labeling session (see session.h): claim, shuffle, gold, submit. */
#include "annotator/session.h"
#include "db/prompts.h"
#include "db/rankings.h"
#include "util/text.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ls_default_flags[] = {"ignores-instruction", "made-up-facts", "harmful",
                                        "wrong-language", NULL};

static void free_flags(char **f, int n) {
    for (int i = 0; i < n; i++) free(f[i]);
}

static int add_flag(char **out, int max, int *n, const char *s, size_t len, Err *err) {
    while (len && (*s == ' ' || *s == '\t')) s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n')) len--;
    if (!len) return RLHF_OK;
    if (*n == max) return err_set(err, RLHF_EINVAL, "label.flags: more than %d flags", max);
    out[*n] = strndup(s, len);
    if (!out[*n]) return err_set(err, RLHF_ENOMEM, "out of memory");
    (*n)++;
    return RLHF_OK;
}

int ls_parse_flags(const char *text, char **out, int max, int *n, Err *err) {
    int rc = RLHF_OK;
    *n = 0;
    const char *p = text;
    while (*p == ' ' || *p == '\n') p++;
    if (*p == '[') {
        cJSON *a = cJSON_Parse(p);
        if (!a || !cJSON_IsArray(a)) {
            cJSON_Delete(a);
            return err_set(err, RLHF_EFORMAT, "label.flags: not a JSON array of strings: %s", text);
        }
        const cJSON *e;
        cJSON_ArrayForEach(e, a) {
            if (!cJSON_IsString(e)) rc = err_set(err, RLHF_EFORMAT, "label.flags: not a JSON array of strings");
            else rc = add_flag(out, max, n, e->valuestring, strlen(e->valuestring), err);
            if (rc) break;
        }
        cJSON_Delete(a);
    } else {
        for (const char *q; !rc && *p; p = *q ? q + 1 : q) {
            q = strchr(p, ',');
            if (!q) q = p + strlen(p);
            rc = add_flag(out, max, n, p, (size_t)(q - p), err);
        }
    }
    if (rc) free_flags(out, *n), *n = 0;
    return rc;
}

int ls_check_name(const char *name, Err *err) {
    size_t n = strlen(name);
    if (n == 0) return err_set(err, RLHF_EINVAL, "a labeler needs a name (--as NAME)");
    if (n > LS_NAME_MAX)
        return err_set(err, RLHF_EINVAL, "labeler name of %zu bytes: at most %d", n, LS_NAME_MAX);
    if (utf8_invalid_at(name, n) >= 0)
        return err_set(err, RLHF_EINVAL, "labeler name is not valid UTF-8");
    for (const char *p = name; *p; p++)
        if (text_control_at(p))
            return err_set(err, RLHF_EINVAL,
                           "labeler name holds a control character (byte %zu): names are "
                           "printable text shown in tables",
                           (size_t)(p - name) + 1);
    return RLHF_OK;
}

int ls_open(LabelSession *s, Db *db, const char *name, int simulated, const char *rule,
            const char *source, const AssignOpts *o, double gold_rate, uint64_t seed, Err *err) {
    memset(s, 0, sizeof *s);
    s->db = db;
    s->simulated = simulated;
    s->opts = *o;
    s->gold_rate = gold_rate;
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->source, sizeof s->source, "%s", source);
    rng_seed(&s->rng, seed);
    if (!*name) return err_set(err, RLHF_EINVAL, "a labeler needs a name (--as NAME)");
    int rc = ls_check_name(name, err);
    if (rc) return rc;
    rc = db_begin(db, err);
    if (!rc) {
        rc = db_labeler_ensure(db, name, simulated, rule, &s->labeler_id, err);
        if (rc) db_rollback(db);
        else rc = db_commit(db, err);
    }
    if (rc) return rc;
    char *text = NULL;
    rc = db_setting_get(db, "label.flags", &text, err);
    if (!rc && text) rc = ls_parse_flags(text, s->flags, LS_MAX_FLAGS, &s->n_flags, err);
    else if (!rc)
        for (; ls_default_flags[s->n_flags]; s->n_flags++) s->flags[s->n_flags] = strdup(ls_default_flags[s->n_flags]);
    free(text);
    return rc;
}

void ls_close(LabelSession *s) {
    free_flags(s->flags, s->n_flags);
    s->n_flags = 0;
    free(s->done);
    s->done = NULL;
    s->n_done = s->cap_done = 0;
}

void ls_item_free(LabelItem *it) {
    free(it->prompt);
    db_candidates_free(it->cand, it->n_cand);
    free(it->gold_expr);
    memset(it, 0, sizeof *it);
}

/* The order a labeler sees a prompt's candidates in: a shuffle fixed by
 * (labeler, prompt), so a resumed screen looks the same as before. */
static void shuffle_for(LabelItem *it, int64_t labeler_id) {
    Rng r;
    rng_seed(&r, (uint64_t)labeler_id * 0x9E3779B97F4A7C15ULL ^ (uint64_t)it->prompt_id * 0xC2B2AE3D27D4EB4FULL);
    for (int i = 0; i < it->n; i++) it->shown[i] = i;
    rng_shuffle(&r, it->shown, (size_t)it->n, sizeof it->shown[0]);
}

static int load_item(LabelSession *s, int64_t prompt_id, LabelItem *it, Err *err) {
    it->prompt_id = prompt_id;
    int rc = db_prompt_text(s->db, prompt_id, &it->prompt, err);
    if (!rc) rc = db_candidates_of_prompt(s->db, prompt_id, &it->cand, &it->n_cand, err);
    if (!rc) rc = db_gold_get(s->db, prompt_id, &it->gold_expr, err);
    if (rc) return rc;
    /* a labeler never ranks her own answer (she knows which it is), and
     * writes hers without seeing other people's (answers stay independent):
     * those go to the end, past what is shown (gold orders count every one) */
    int keep = it->n_cand, write = s->opts.task == ASSIGN_WRITE;
    char own[160];
    snprintf(own, sizeof own, "human:%s", s->name);
    for (int i = 0; !it->gold_expr && i < keep;)
        if (it->cand[i].model_name && (write ? strncmp(it->cand[i].model_name, "human:", 6) == 0
                                             : strcmp(it->cand[i].model_name, own) == 0)) {
            CandidateRow mine = it->cand[i];
            memmove(it->cand + i, it->cand + i + 1, sizeof mine * (size_t)(it->n_cand - i - 1));
            it->cand[it->n_cand - 1] = mine;
            keep--;
        } else
            i++;
    if (keep < (s->opts.task == ASSIGN_WRITE ? 0 : 1))
        return err_set(err, RLHF_EINVAL, "prompt %lld has no candidates", (long long)prompt_id);
    it->n = keep < RS_MAX_CAND ? keep : RS_MAX_CAND;
    shuffle_for(it, s->labeler_id);
    return RLHF_OK;
}

/* Where id is or would go in the sorted list of prompts done this session
 * (claims come oldest first, so inserts are mostly appends). */
static int done_at(const LabelSession *s, int64_t id) {
    int lo = 0, hi = s->n_done;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (s->done[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

int ls_next(LabelSession *s, LabelItem *it, Err *err) {
    memset(it, 0, sizeof *it);
    AssignOpts o = s->opts;
    o.want_gold = s->gold_rate > 0 && rng_double(&s->rng) < s->gold_rate;
    Claim c;
    int rc = db_assign_claim(s->db, s->labeler_id, &o, &c, err);
    if (rc || !c.prompt_id) return rc;
    /* a damaged assignments table or index can hand the same prompt out again
     * and again (a labeler ranked one 6,400 times a minute); stop instead */
    int at = done_at(s, c.prompt_id);
    if (at < s->n_done && s->done[at] == c.prompt_id)
        return err_set(err, RLHF_EFORMAT,
                       "%s: prompt %lld was handed out again after this session ranked it; "
                       "the assignments table or its index is damaged (check with: sqlite3 %s "
                       "'PRAGMA integrity_check', mend with 'REINDEX')",
                       db_path(s->db), (long long)c.prompt_id, db_path(s->db));
    rc = load_item(s, c.prompt_id, it, err);
    it->is_gold = c.is_gold;
    it->resumed = c.resumed;
    snprintf(it->why, sizeof it->why, "%s", c.why);
    if (rc) ls_item_free(it);
    return rc;
}

typedef struct ReviewCtx {
    LabelSession *s;
    LabelItem *it;
    RankState *rs;
    int found;
} ReviewCtx;

static int flag_bits(LabelSession *s, const char *json) {
    uint32_t bits = 0;
    cJSON *a = json ? cJSON_Parse(json) : NULL;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        for (int f = 0; cJSON_IsString(e) && f < s->n_flags; f++)
            if (strcmp(e->valuestring, s->flags[f]) == 0) bits |= 1u << f;
    }
    cJSON_Delete(a);
    return (int)bits;
}

static int review_row(const RankingRow *r, void *ctx) {
    ReviewCtx *c = ctx;
    LabelItem *it = c->it;
    int pos_of[RS_MAX_CAND], ok = 1;
    /* the stored shown order, when it covers exactly the candidates loaded */
    for (int i = 0; i < it->n; i++) pos_of[i] = -1;
    for (int k = 0; k < r->n_items; k++)
        for (int i = 0; i < it->n; i++)
            if (it->cand[i].id == r->items[k].candidate_id) pos_of[i] = r->items[k].shown_pos;
    int used[RS_MAX_CAND] = {0};
    for (int i = 0; i < it->n && ok; i++) {
        ok = pos_of[i] >= 0 && pos_of[i] < it->n && !used[pos_of[i]];
        if (ok) used[pos_of[i]] = 1;
    }
    if (ok)
        for (int i = 0; i < it->n; i++) it->shown[pos_of[i]] = i;
    RankCore *core = &c->rs->cur;
    for (int pos = 0; pos < it->n; pos++) {
        const CandidateRow *cand = &it->cand[it->shown[pos]];
        for (int k = 0; k < r->n_items; k++) {
            if (r->items[k].candidate_id != cand->id) continue;
            core->level[pos] = (unsigned char)(r->items[k].rank > 0 && r->items[k].rank <= 255 ? r->items[k].rank : 0);
            core->score[pos] = (unsigned char)(r->items[k].likert >= 1 && r->items[k].likert <= 7 ? r->items[k].likert : 0);
            core->flags[pos] = (uint32_t)flag_bits(c->s, r->items[k].flags);
        }
    }
    core->none_ok = r->none_acceptable;
    snprintf(core->note, sizeof core->note, "%s", r->note ? r->note : "");
    core->skipped = r->skipped;
    snprintf(core->skip_reason, sizeof core->skip_reason, "%s", r->skip_reason ? r->skip_reason : "");
    c->found = 1;
    return 0;
}

int ls_load_review(LabelSession *s, int64_t prompt_id, LabelItem *it, RankState *rs, Err *err) {
    memset(it, 0, sizeof *it);
    int rc = load_item(s, prompt_id, it, err);
    if (!rc) rc = rs_init(rs, it->n) ? err_set(err, RLHF_EINVAL, "bad candidate count") : RLHF_OK;
    if (rc) {
        ls_item_free(it);
        return rc;
    }
    it->review = 1;
    RankingFilter f = db_ranking_filter_default();
    f.labeler = s->name;
    f.prompt_id = prompt_id;
    f.with_skipped = 1;
    ReviewCtx ctx = {s, it, rs, 0};
    rc = db_rankings_each(s->db, &f, review_row, &ctx, err);
    if (!rc && !ctx.found)
        rc = err_set(err, RLHF_ENOTFOUND, "%s has no ranking of prompt %lld", s->name, (long long)prompt_id);
    if (!rc) {
        /* ranks from the store may have gaps (competition ranking): renumber */
        unsigned char lv[RS_MAX_CAND];
        memcpy(lv, rs->cur.level, sizeof lv);
        rs_set_levels(rs, lv);
        rs->n_undo = 0;
    } else {
        rs_free(rs);
        ls_item_free(it);
    }
    return rc;
}

static int flags_json(const LabelSession *s, uint32_t bits, StrBuf *b) {
    int rc = sb_puts(b, "[");
    for (int f = 0, first = 1; !rc && f < s->n_flags; f++) {
        if (!(bits & (1u << f))) continue;
        rc = sb_printf(b, "%s\"", first ? "" : ",");
        /* flag names come from the project's settings: escape quotes and backslashes */
        for (const char *p = s->flags[f]; !rc && *p; p++)
            rc = *p == '"' || *p == '\\' ? sb_printf(b, "\\%c", *p) : sb_append(b, p, 1);
        if (!rc) rc = sb_puts(b, "\"");
        first = 0;
    }
    if (!rc) rc = sb_append(b, "]", 2); /* keeps the NUL between items */
    return rc;
}

int ls_submit(LabelSession *s, const LabelItem *it, const RankCore *c, long long time_ms,
              double *agreement, Err *err) {
    if (c->n != it->n) return err_set(err, RLHF_EINVAL, "the ranking has %d candidates, the prompt %d", c->n, it->n);
    if (!rs_complete(c))
        return err_set(err, RLHF_EINVAL, "rank every candidate (%d of %d ranked), or mark none acceptable",
                       rs_n_ranked(c), c->n);
    int rank[RS_MAX_CAND];
    rs_ranks(c, rank);
    double agree = NAN;
    if (it->gold_expr && !c->skipped) {
        unsigned char glv[RS_MAX_CAND];
        RankCore g = {0};
        g.n = it->n;
        if (rs_expr_parse(it->gold_expr, it->n, glv, NULL, 0) >= RS_EXPR_SOME) {
            memcpy(g.level, glv, (size_t)it->n);
            int grank[RS_MAX_CAND], lrank[RS_MAX_CAND];
            rs_ranks(&g, grank);
            for (int pos = 0; pos < it->n; pos++) lrank[it->shown[pos]] = rank[pos];
            agree = rs_agreement(lrank, grank, it->n);
            if (c->none_ok && isnan(agree)) agree = NAN;
        }
    }
    RankingItemIn items[RS_MAX_CAND];
    StrBuf shown = {0}, flags = {0};
    size_t flag_at[RS_MAX_CAND];
    int rc = sb_puts(&shown, "[");
    for (int pos = 0; pos < it->n && !rc; pos++) {
        rc = sb_printf(&shown, "%s%lld", pos ? "," : "", (long long)it->cand[it->shown[pos]].id);
        flag_at[pos] = flags.len;
        if (!rc) rc = flags_json(s, c->flags[pos], &flags);
    }
    if (!rc) rc = sb_puts(&shown, "]");
    if (rc) {
        sb_free(&shown);
        sb_free(&flags);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    for (int pos = 0; pos < it->n; pos++) {
        items[pos].candidate_id = it->cand[it->shown[pos]].id;
        items[pos].rank = c->skipped ? 0 : rank[pos];
        items[pos].likert = c->score[pos];
        items[pos].flags = c->flags[pos] ? flags.s + flag_at[pos] : NULL;
        items[pos].shown_pos = pos;
    }
    RankingIn in = {0};
    in.prompt_id = it->prompt_id;
    in.labeler_id = s->labeler_id;
    in.simulated = s->simulated;
    in.skipped = c->skipped;
    in.none_acceptable = c->none_ok;
    in.skip_reason = c->skipped ? c->skip_reason : NULL;
    in.note = c->note[0] ? c->note : NULL;
    in.shown_order = shown.s;
    in.time_spent_ms = time_ms;
    in.gold_agreement = agree;
    in.source = s->source;
    in.items = items;
    in.n_items = it->n;
    int64_t rid;
    /* a claim that ran out while the labeler worked: if others filled the
     * prompt meanwhile, one more ranking would exceed the overlap; refuse it
     * (the screen keeps it) rather than store it silently; a skip still goes */
    int check = !it->review && !c->skipped, taken = 0;
    rc = check ? db_begin(s->db, err) : RLHF_OK;
    if (!rc && check) rc = db_assign_overtaken(s->db, s->labeler_id, it->prompt_id, &s->opts, &taken, err);
    if (!rc && taken)
        rc = err_set(err, RLHF_EBUSY,
                     "prompt %lld: your claim ran out (lease %d s) and other labelers have ranked "
                     "it meanwhile (overlap %d), so this ranking would be one too many; skip it "
                     "to go on",
                     (long long)it->prompt_id, s->opts.lease_s, s->opts.overlap);
    if (!rc) rc = db_ranking_submit(s->db, &in, &rid, err);
    if (check && !rc) rc = db_commit(s->db, err);
    else if (check) db_rollback(s->db);
    sb_free(&shown);
    sb_free(&flags);
    if (!rc && !it->review) {
        if (s->n_done == s->cap_done) {
            int cap = s->cap_done ? 2 * s->cap_done : 64;
            int64_t *d = realloc(s->done, sizeof *d * (size_t)cap);
            if (!d) return err_set(err, RLHF_ENOMEM, "out of memory");
            s->done = d, s->cap_done = cap;
        }
        int at = done_at(s, it->prompt_id);
        if (at == s->n_done || s->done[at] != it->prompt_id) {
            memmove(s->done + at + 1, s->done + at, sizeof *s->done * (size_t)(s->n_done - at));
            s->done[at] = it->prompt_id;
            s->n_done++;
        }
    }
    if (!rc && agreement) *agreement = agree;
    return rc;
}

int ls_progress(LabelSession *s, LabelProgress *p, Err *err) {
    return db_label_progress(s->db, s->labeler_id, &s->opts, p, err);
}

static void draft_key(const LabelSession *s, int64_t prompt_id, char *key, size_t n) {
    snprintf(key, n, "draft.%lld.%lld", (long long)s->labeler_id, (long long)prompt_id);
}

int ls_draft_save(LabelSession *s, int64_t prompt_id, const RankCore *c, int wait, Err *err) {
    cJSON *j = cJSON_CreateObject(), *lv = cJSON_AddArrayToObject(j, "level");
    cJSON *sc = cJSON_AddArrayToObject(j, "score"), *fl = cJSON_AddArrayToObject(j, "flags");
    for (int i = 0; i < c->n; i++) {
        cJSON_AddItemToArray(lv, cJSON_CreateNumber(c->level[i]));
        cJSON_AddItemToArray(sc, cJSON_CreateNumber(c->score[i]));
        cJSON_AddItemToArray(fl, cJSON_CreateNumber(c->flags[i]));
    }
    cJSON_AddBoolToObject(j, "none_ok", c->none_ok);
    cJSON_AddStringToObject(j, "note", c->note);
    char *text = cJSON_PrintUnformatted(j), key[64];
    cJSON_Delete(j);
    if (!text) return err_set(err, RLHF_ENOMEM, "out of memory");
    draft_key(s, prompt_id, key, sizeof key);
    /* without wait, a busy database is RLHF_EBUSY: the screen never freezes on a draft */
    int rc = wait ? db_setting_set(s->db, key, text, err) : db_setting_try_set(s->db, key, text, err);
    free(text);
    return rc;
}

int ls_draft_load(LabelSession *s, int64_t prompt_id, RankCore *c, int *found, Err *err) {
    char key[64], *text = NULL;
    *found = 0;
    draft_key(s, prompt_id, key, sizeof key);
    int rc = db_setting_get(s->db, key, &text, err);
    if (rc || !text) return rc;
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *lv = cJSON_GetObjectItem(j, "level"), *sc = cJSON_GetObjectItem(j, "score");
    const cJSON *fl = cJSON_GetObjectItem(j, "flags"), *note = cJSON_GetObjectItem(j, "note");
    /* a draft that does not fit the prompt (its candidates changed) is dropped */
    if (cJSON_GetArraySize(lv) == c->n && cJSON_GetArraySize(sc) == c->n && cJSON_GetArraySize(fl) == c->n) {
        RankCore d = *c;
        for (int i = 0; i < c->n; i++) {
            d.level[i] = (unsigned char)cJSON_GetArrayItem(lv, i)->valueint;
            d.score[i] = (unsigned char)cJSON_GetArrayItem(sc, i)->valueint;
            d.flags[i] = (uint32_t)cJSON_GetArrayItem(fl, i)->valuedouble;
        }
        d.none_ok = cJSON_IsTrue(cJSON_GetObjectItem(j, "none_ok"));
        if (cJSON_IsString(note)) snprintf(d.note, sizeof d.note, "%s", note->valuestring);
        int ok = 1, used[RS_MAX_CAND + 1] = {0}, top = 0; /* levels 1..top, no gaps */
        for (int i = 0; i < c->n; i++) {
            ok &= d.score[i] <= 7 && d.level[i] <= c->n;
            if (ok) used[d.level[i]] = 1, top = d.level[i] > top ? d.level[i] : top;
        }
        for (int l = 1; ok && l <= top; l++) ok &= used[l];
        if (ok) *c = d, *found = 1;
    }
    cJSON_Delete(j);
    return RLHF_OK;
}

int ls_draft_clear(LabelSession *s, int64_t prompt_id, Err *err) {
    char key[64];
    draft_key(s, prompt_id, key, sizeof key);
    return db_setting_delete(s->db, key, err);
}
