/* The importer: reads every record of a file first, then writes rankings per
 * prompt and labeler group (see import.h for how groups become rankings). */
#include "rm/import.h"
#include "db/candidates.h"
#include "db/prompts.h"
#include "db/rankings.h"
#include "db/registry.h"
#include "rm/turns.h"
#include "util/lines.h"
#include "util/sys.h"
#include "util/text.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int rm_import_format(const char *name) {
    if (strcmp(name, "pairs") == 0) return IMPORT_PAIRS;
    if (strcmp(name, "hh") == 0) return IMPORT_HH;
    if (strcmp(name, "rankings") == 0) return IMPORT_RANKINGS;
    return -1;
}

static const char HUMAN[] = RM_HUMAN, ASSISTANT[] = RM_ASSISTANT;

int rm_hh_split(const char *chosen, const char *rejected, char **prompt, char **a_chosen,
                char **a_rejected, Err *err) {
    *prompt = *a_chosen = *a_rejected = NULL;
    size_t lcp = 0, la = strlen(ASSISTANT);
    while (chosen[lcp] && chosen[lcp] == rejected[lcp])
        lcp++;
    /* the last Assistant turn both transcripts share: the answers start after it */
    const char *turn = NULL;
    for (const char *p = strstr(chosen, ASSISTANT); p && (size_t)(p - chosen) + la <= lcp;
         p = strstr(p + 1, ASSISTANT))
        turn = p;
    if (!turn) {
        if (!strstr(chosen, ASSISTANT) || !strstr(rejected, ASSISTANT))
            return err_set(err, RLHF_EFORMAT, "field \"%s\": no \"\\n\\nAssistant:\" turn",
                           strstr(chosen, ASSISTANT) ? "rejected" : "chosen");
        return err_set(
            err, RLHF_EFORMAT,
            "fields \"chosen\" and \"rejected\" differ before their last Assistant turn");
    }
    size_t off = (size_t)(turn - chosen);
    const char *p = chosen;
    size_t n = off;
    /* text before the first Human turn is a system message, stored as such */
    const char *h = strstr(chosen, HUMAN);
    int system = p != h && h && h < turn;
    if (!system && strncmp(p, HUMAN, strlen(HUMAN)) != 0)
        return err_set(err, RLHF_EFORMAT, "field \"chosen\": does not start with \"\\n\\nHuman:\"");
    if (!system) p += strlen(HUMAN), n -= strlen(HUMAN);
    if (!system && n && *p == ' ') p++, n--;
    const char *ac = chosen + off + la, *ar = rejected + off + la;
    if (*ac == ' ') ac++;
    if (*ar == ' ') ar++;
    *prompt = strndup(p, n);
    *a_chosen = strdup(ac);
    *a_rejected = strdup(ar);
    if (!*prompt || !*a_chosen || !*a_rejected) {
        free(*prompt), free(*a_chosen), free(*a_rejected);
        *prompt = *a_chosen = *a_rejected = NULL;
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    return RLHF_OK;
}

typedef struct Rec {
    long line;
    int64_t ranking_id; /* the exporter's, 0 when absent: one group per ranking */
    char *prompt, *chosen, *rejected, *chosen_model, *rejected_model, *labeler, *split;
    int simulated;
    int same;               /* chosen == rejected: skipped whole */
    int64_t cand_c, cand_r; /* filled when written */
} Rec;

static void rec_free(Rec *r) {
    free(r->prompt), free(r->chosen), free(r->rejected), free(r->chosen_model);
    free(r->rejected_model), free(r->labeler), free(r->split);
}

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

static int jsonl_bool(LineReader *r, const cJSON *obj, const char *key, int *out, Err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = 0;
    if (!v || cJSON_IsNull(v)) return RLHF_OK;
    if (!cJSON_IsBool(v))
        return err_set(err, RLHF_EFORMAT, "%s:%ld: field \"%s\" must be true or false", r->path,
                       r->line, key);
    *out = cJSON_IsTrue(v);
    return RLHF_OK;
}

/* TRL's conversational form: a list of {"role", "content"} messages. */
static int check_messages(LineReader *r, const cJSON *v, const char *key, Err *err) {
    int n = cJSON_GetArraySize(v);
    if (n == 0)
        return err_set(err, RLHF_EFORMAT, "%s:%ld: field \"%s\": empty list of messages", r->path,
                       r->line, key);
    for (int i = 0; i < n; i++) {
        const cJSON *m = cJSON_GetArrayItem(v, i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(content))
            return err_set(err, RLHF_EFORMAT,
                           "%s:%ld: field \"%s\": message %d needs string \"role\" and \"content\"",
                           r->path, r->line, key, i + 1);
        if (i && strcmp(role->valuestring, "system") == 0)
            return err_set(err, RLHF_EFORMAT,
                           "%s:%ld: field \"%s\": message %d: a system message can only come first",
                           r->path, r->line, key, i + 1);
    }
    return RLHF_OK;
}

/* The first n messages as the stored prompt (turns.h): the first turn as is,
 * later ones after "\n\nHuman: " or "\n\nAssistant: ", so a system message
 * first stays one and `export --format hh` writes the conversation back. */
static char *render_turns(const cJSON *v, int n) {
    StrBuf b = {0};
    sb_puts(&b, "");
    for (int i = 0; i < n; i++) {
        const cJSON *m = cJSON_GetArrayItem(v, i);
        const char *role = cJSON_GetObjectItemCaseSensitive(m, "role")->valuestring;
        if (i) sb_puts(&b, strcmp(role, "assistant") == 0 ? RM_ASSISTANT " " : RM_HUMAN " ");
        sb_puts(&b, cJSON_GetObjectItemCaseSensitive(m, "content")->valuestring);
    }
    return b.s;
}

/* An answer field: a string, or messages whose last one is the assistant's. */
static int answer_field(LineReader *r, const cJSON *obj, const char *key, const char **text,
                        const cJSON **msgs, Err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *text = NULL, *msgs = NULL;
    if (!v || cJSON_IsNull(v))
        return err_set(err, RLHF_EFORMAT, "%s:%ld: missing field \"%s\"", r->path, r->line, key);
    if (cJSON_IsString(v)) {
        *text = v->valuestring;
        return RLHF_OK;
    }
    if (!cJSON_IsArray(v))
        return err_set(err, RLHF_EFORMAT,
                       "%s:%ld: field \"%s\" must be a string or a list of messages", r->path,
                       r->line, key);
    int rc = check_messages(r, v, key, err);
    if (rc) return rc;
    const cJSON *last = cJSON_GetArrayItem(v, cJSON_GetArraySize(v) - 1);
    if (strcmp(cJSON_GetObjectItemCaseSensitive(last, "role")->valuestring, "assistant") != 0)
        return err_set(err, RLHF_EFORMAT,
                       "%s:%ld: field \"%s\": the last message is not the assistant's", r->path,
                       r->line, key);
    *text = cJSON_GetObjectItemCaseSensitive(last, "content")->valuestring;
    *msgs = v;
    return RLHF_OK;
}

/* A prompt written as a transcript up to the answer ("\n\nHuman: P\n\nAssistant:",
 * or "S\n\nHuman: P\n\nAssistant:" after a system message, as export writes
 * pairs and TRL's HH files have them) is stored as the HH importer stores it:
 * without the markers around it. *bare: it ended at "Assistant:" exactly, so
 * the answers carry TRL's separating space. */
static char *hh_unwrap(const char *s, int *bare) {
    size_t n = strlen(s), lh = strlen(HUMAN), la = strlen(ASSISTANT);
    int colon = n && s[n - 1] == ':';
    *bare = 0;
    if (n && s[n - 1] == ' ') n--;
    if (n < la || strncmp(s + n - la, ASSISTANT, la) != 0) return strdup(s);
    if (n >= lh + la && strncmp(s, HUMAN, lh) == 0) {
        s += lh, n -= lh + la;
        if (n && *s == ' ') s++, n--;
    } else if (rm_prompt_has_system(s))
        n -= la;
    else
        return strdup(s);
    *bare = colon;
    return strndup(s, n);
}

/* The prompt of a pairs record: "prompt" as a string or messages, else (TRL's
 * implicit prompt) what the chosen and rejected conversations share. */
static int pairs_prompt(LineReader *r, const cJSON *obj, const cJSON *cm, const cJSON *rm,
                        char **out, int *bare, Err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "prompt");
    *out = NULL, *bare = 0;
    if (cJSON_IsString(v))
        *out = hh_unwrap(v->valuestring, bare);
    else if (cJSON_IsArray(v)) {
        int rc = check_messages(r, v, "prompt", err);
        if (rc) return rc;
        *out = render_turns(v, cJSON_GetArraySize(v));
    } else if (v && !cJSON_IsNull(v))
        return err_set(err, RLHF_EFORMAT,
                       "%s:%ld: field \"prompt\" must be a string or a list of messages", r->path,
                       r->line);
    else if (!cm || !rm || cJSON_GetArraySize(cm) < 2)
        return err_set(err, RLHF_EFORMAT, "%s:%ld: missing field \"prompt\"", r->path, r->line);
    else {
        char *a = render_turns(cm, cJSON_GetArraySize(cm) - 1),
             *b = render_turns(rm, cJSON_GetArraySize(rm) - 1);
        int same = a && b && strcmp(a, b) == 0;
        free(b);
        if (!same) {
            free(a);
            return err_set(err, RLHF_EFORMAT,
                           "%s:%ld: no \"prompt\", and \"chosen\" and \"rejected\" differ before "
                           "their last message",
                           r->path, r->line);
        }
        *out = a;
    }
    return *out ? RLHF_OK : err_set(err, RLHF_ENOMEM, "out of memory");
}

static int read_record(LineReader *r, const cJSON *obj, const ImportOptions *o, Rec *rec,
                       Err *err) {
    const char *chosen, *rejected, *cm = NULL, *rm = NULL, *lab = NULL, *split = NULL;
    const cJSON *cmsgs = NULL, *rmsgs = NULL;
    int rc = RLHF_OK;
    if (o->format == IMPORT_PAIRS) {
        rc = answer_field(r, obj, "chosen", &chosen, &cmsgs, err);
        if (!rc) rc = answer_field(r, obj, "rejected", &rejected, &rmsgs, err);
    } else {
        rc = jsonl_string(r, obj, "chosen", 1, &chosen, err);
        if (!rc) rc = jsonl_string(r, obj, "rejected", 1, &rejected, err);
    }
    if (!rc) rc = jsonl_string(r, obj, "chosen_model", 0, &cm, err);
    if (!rc) rc = jsonl_string(r, obj, "rejected_model", 0, &rm, err);
    if (!rc) rc = jsonl_string(r, obj, "labeler", 0, &lab, err);
    if (!rc) rc = jsonl_string(r, obj, "split", 0, &split, err);
    if (!rc) rc = jsonl_bool(r, obj, "simulated", &rec->simulated, err);
    double rid = 0;
    if (!rc) rc = jsonl_number(r, obj, "ranking_id", 0, &rid, NULL, err);
    if (rc) return rc;
    if (rid < 0 || rid != floor(rid) || rid > 9e15)
        return err_set(err, RLHF_EFORMAT, "%s:%ld: field \"ranking_id\" must be a whole number",
                       r->path, r->line);
    rec->ranking_id = (int64_t)rid;
    if (split && !db_valid_split(split))
        return err_set(err, RLHF_EFORMAT, "%s:%ld: field \"split\": not a split name", r->path,
                       r->line);
    if ((cm && !*cm) || (rm && !*rm))
        return err_set(err, RLHF_EFORMAT, "%s:%ld: field \"%s\" is empty", r->path, r->line,
                       cm && !*cm ? "chosen_model" : "rejected_model");
    if (lab && !*lab)
        return err_set(err, RLHF_EFORMAT, "%s:%ld: field \"labeler\" is empty", r->path, r->line);
    rec->line = r->line;
    if (o->format == IMPORT_HH) {
        rc = rm_hh_split(chosen, rejected, &rec->prompt, &rec->chosen, &rec->rejected, err);
        if (rc) return err_prefix(err, "%s:%ld: ", r->path, r->line);
    } else {
        int bare;
        rc = pairs_prompt(r, obj, cmsgs, rmsgs, &rec->prompt, &bare, err);
        if (rc) return rc;
        /* TRL's HH pairs end the prompt at "Assistant:" and start answers with a space */
        if (bare) {
            if (*chosen == ' ') chosen++;
            if (*rejected == ' ') rejected++;
        }
        rec->chosen = strdup(chosen), rec->rejected = strdup(rejected);
    }
    if (!*rec->prompt)
        return err_set(err, RLHF_EFORMAT, "%s:%ld: field \"prompt\" is empty", r->path, r->line);
    rec->chosen_model = dup_or_null(cm), rec->rejected_model = dup_or_null(rm);
    rec->labeler = dup_or_null(lab), rec->split = dup_or_null(split);
    if (!rec->chosen || !rec->rejected) return err_set(err, RLHF_ENOMEM, "out of memory");
    return RLHF_OK;
}

int rm_import_detect(const cJSON *obj) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(obj, "chosen");
    if (cJSON_GetObjectItemCaseSensitive(obj, "prompt") || !cJSON_IsString(c)) return IMPORT_PAIRS;
    return strstr(c->valuestring, ASSISTANT) ? IMPORT_HH : IMPORT_PAIRS;
}

int rm_import_read_pair(LineReader *r, const cJSON *obj, int format, char **prompt, char **chosen,
                        char **rejected, char **labeler, Err *err) {
    ImportOptions o = {0};
    o.format = format;
    Rec rec = {0};
    int rc = read_record(r, obj, &o, &rec, err);
    if (!rc) {
        *prompt = rec.prompt, *chosen = rec.chosen, *rejected = rec.rejected;
        *labeler = rec.labeler;
        rec.prompt = rec.chosen = rec.rejected = rec.labeler = NULL;
    }
    rec_free(&rec);
    return rc;
}

typedef struct Recs {
    Rec *r;
    int64_t n;
    const char *default_labeler;
} Recs;

static const char *labeler_of(const Recs *rs, const ImportOptions *o, const Rec *r) {
    if (o->labeler) return o->labeler;
    return r->labeler ? r->labeler : rs->default_labeler;
}

static const Recs *sort_recs; /* qsort has no context argument */
static const ImportOptions *sort_opts;

static int cmp_rec(const void *x, const void *y) {
    const Rec *a = &sort_recs->r[*(const int64_t *)x], *b = &sort_recs->r[*(const int64_t *)y];
    int c = strcmp(a->prompt, b->prompt);
    if (!c) c = strcmp(labeler_of(sort_recs, sort_opts, a), labeler_of(sort_recs, sort_opts, b));
    if (!c) c = (a->ranking_id > b->ranking_id) - (a->ranking_id < b->ranking_id);
    if (!c) c = (a->line > b->line) - (a->line < b->line);
    return c;
}

typedef struct Group {
    int64_t first, n; /* range in the sorted index */
    long line;        /* first line: groups are written in file order */
} Group;

static int cmp_group(const void *x, const void *y) {
    const Group *a = x, *b = y;
    return (a->line > b->line) - (a->line < b->line);
}

static int submit(Db *db, int64_t prompt_id, const char *labeler, int simulated, const char *source,
                  RankingItemIn *items, int n, ImportStats *st, Err *err) {
    int64_t lid;
    int rc = db_labeler_ensure(db, labeler, simulated, simulated ? source : NULL, &lid, err);
    if (rc) return rc;
    RankingIn in = {0};
    in.prompt_id = prompt_id, in.labeler_id = lid, in.simulated = simulated;
    in.time_spent_ms = -1, in.gold_agreement = NAN, in.source = source;
    in.items = items, in.n_items = n;
    rc = db_ranking_submit(db, &in, NULL, err);
    if (!rc) st->rankings++;
    return rc;
}

/* Writes one prompt+labeler group: candidates first, then either the one
 * ranking the pairs describe or one ranking per pair. */
static int write_group(Db *db, const Recs *rs, const int64_t *idx, const Group *g,
                       const ImportOptions *o, const char *path, const char *source,
                       ImportStats *st, Err *err) {
    /* the same answer twice teaches nothing: such a record leaves no prompt,
     * candidate or ranking behind; the same text from two models is two
     * candidates, and a labeler's order between them is kept */
    const char *model = o->model ? o->model : "import";
    int64_t useful = 0;
    for (int64_t k = 0; k < g->n; k++) {
        Rec *r = &rs->r[idx[g->first + k]];
        r->same = strcmp(r->chosen, r->rejected) == 0 &&
                  strcmp(r->chosen_model ? r->chosen_model : model,
                         r->rejected_model ? r->rejected_model : model) == 0;
        useful += !r->same;
        st->identical += r->same;
    }
    if (!useful) return RLHF_OK;
    Rec *r0 = &rs->r[idx[g->first]];
    const char *split = o->split ? o->split : r0->split;
    PromptIn pin = {r0->prompt, split, source, NULL, NULL};
    int64_t pid;
    int ins = 0, rc = db_prompt_insert(db, &pin, &pid, &ins, err);
    if (rc) return rc;
    st->prompts_new += ins;
    int64_t cands[64];
    int nc = 0, ok = g->n <= 64 * 63 / 2;
    for (int64_t k = 0; k < g->n && !rc; k++) {
        Rec *r = &rs->r[idx[g->first + k]];
        if (r->same) continue;
        int64_t mc, mr;
        rc = db_model_ensure_external(db, r->chosen_model ? r->chosen_model : model, &mc, err);
        if (!rc)
            rc = db_model_ensure_external(db, r->rejected_model ? r->rejected_model : model, &mr,
                                          err);
        CandidateIn cc = {pid, mc, r->chosen, -1, NAN, NULL, 0, 0, NULL, 0, 0};
        CandidateIn cr = {pid, mr, r->rejected, -1, NAN, NULL, 0, 0, NULL, 0, 0};
        if (!rc)
            rc = db_candidate_insert(db, &cc, &r->cand_c, &ins, err), st->candidates_new += ins;
        if (!rc)
            rc = db_candidate_insert(db, &cr, &r->cand_r, &ins, err), st->candidates_new += ins;
        if (rc) return err_prefix(err, "%s:%ld: ", path, r->line);
        int64_t both[2] = {r->cand_c, r->cand_r};
        for (int t = 0; t < 2 && ok; t++) {
            int f = 0;
            while (f < nc && cands[f] != both[t])
                f++;
            if (f == nc) {
                if (nc == 64)
                    ok = 0;
                else
                    cands[nc++] = both[t];
            }
        }
    }
    if (rc) return rc;
    /* the ranking the pairs describe: rank = 1 + candidates beating it; it is
     * the group's own ranking when its strict pairs are exactly the records */
    static unsigned char beats[64][64];
    int rank[64], n_pairs = 0;
    if (ok) memset(beats, 0, sizeof beats);
    for (int64_t k = 0; k < g->n && ok; k++) {
        Rec *r = &rs->r[idx[g->first + k]];
        if (r->same) continue;
        int a = 0, b = 0;
        while (cands[a] != r->cand_c)
            a++;
        while (cands[b] != r->cand_r)
            b++;
        if (beats[a][b] || beats[b][a]) ok = 0; /* the same pair twice */
        beats[a][b] = 1;
        n_pairs++;
    }
    if (n_pairs == 0) return RLHF_OK;
    if (ok) {
        int strict = 0;
        for (int i = 0; i < nc; i++) {
            rank[i] = 1;
            for (int j = 0; j < nc; j++)
                rank[i] += beats[j][i];
        }
        for (int i = 0; i < nc; i++)
            for (int j = 0; j < nc; j++) {
                if (rank[i] < rank[j]) strict++;
                if (beats[i][j] && rank[i] >= rank[j]) ok = 0;
            }
        if (strict != n_pairs) ok = 0;
    }
    const char *lab = labeler_of(rs, o, r0);
    int sim = o->labeler ? 0 : r0->simulated;
    if (ok) {
        RankingItemIn items[64];
        for (int i = 0; i < nc; i++)
            items[i] = (RankingItemIn){cands[i], rank[i], 0, NULL, -1};
        rc = submit(db, pid, lab, sim, source, items, nc, st, err);
        if (rc) return err_prefix(err, "%s:%ld: ", path, r0->line);
        st->pairs += n_pairs;
        return RLHF_OK;
    }
    st->groups_split++;
    int k2 = 0;
    for (int64_t k = 0; k < g->n; k++) {
        Rec *r = &rs->r[idx[g->first + k]];
        if (r->same) continue;
        char name[512];
        if (k2++ == 0)
            snprintf(name, sizeof name, "%s", lab);
        else
            snprintf(name, sizeof name, "%s#%d", lab, k2);
        RankingItemIn items[2] = {{r->cand_c, 1, 0, NULL, -1}, {r->cand_r, 2, 0, NULL, -1}};
        rc = submit(db, pid, name, sim, source, items, 2, st, err);
        if (rc) return err_prefix(err, "%s:%ld: ", path, r->line);
        st->pairs++;
    }
    return RLHF_OK;
}

int rm_import_file(Db *db, const char *path, const ImportOptions *o, ImportStats *st, Err *err) {
    if (o->format == IMPORT_RANKINGS) return rm_import_rankings_file(db, path, o, st, err);
    LineReader lr;
    int rc = lines_open(&lr, path, err);
    if (rc) return rc;
    char source[600];
    snprintf(source, sizeof source, "import:%s", path_base(lr.path));
    Recs rs = {NULL, 0, source};
    int64_t cap = 0;
    cJSON *obj;
    while (!(rc = jsonl_next(&lr, &obj, err)) && obj) {
        if (rs.n == cap) {
            cap = cap ? cap * 2 : 256;
            Rec *p = realloc(rs.r, (size_t)cap * sizeof *p);
            if (!p) {
                cJSON_Delete(obj);
                rc = err_set(err, RLHF_ENOMEM, "out of memory");
                break;
            }
            rs.r = p;
        }
        memset(&rs.r[rs.n], 0, sizeof *rs.r);
        rc = read_record(&lr, obj, o, &rs.r[rs.n], err);
        rs.n++;
        cJSON_Delete(obj);
        if (rc) break;
    }
    if (!rc && rs.n == 0) rc = err_set(err, RLHF_EFORMAT, "%s: no records in file", lr.path);
    int64_t *idx = NULL;
    Group *groups = NULL;
    int64_t ng = 0;
    if (!rc) {
        idx = malloc((size_t)rs.n * sizeof *idx);
        groups = malloc((size_t)rs.n * sizeof *groups);
        if (!idx || !groups) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    }
    if (!rc) {
        for (int64_t i = 0; i < rs.n; i++)
            idx[i] = i;
        sort_recs = &rs, sort_opts = o;
        qsort(idx, (size_t)rs.n, sizeof *idx, cmp_rec);
        for (int64_t i = 0; i < rs.n;) {
            int64_t j = i + 1;
            const Rec *a = &rs.r[idx[i]];
            while (j < rs.n && strcmp(rs.r[idx[j]].prompt, a->prompt) == 0 &&
                   strcmp(labeler_of(&rs, o, &rs.r[idx[j]]), labeler_of(&rs, o, a)) == 0 &&
                   rs.r[idx[j]].ranking_id == a->ranking_id)
                j++;
            groups[ng++] = (Group){i, j - i, a->line};
            i = j;
        }
        qsort(groups, (size_t)ng, sizeof *groups, cmp_group);
        int64_t done = st->records;
        st->records += rs.n;
        for (int64_t g = 0; g < ng && !rc; g++) {
            rc = write_group(db, &rs, idx, &groups[g], o, lr.path, source, st, err);
            done += groups[g].n;
            if (o->progress) progress_update(o->progress, done, NULL);
            if (!rc && sys_interrupted()) rc = err_set(err, RLHF_EINTR, "%s: interrupted", lr.path);
        }
    }
    for (int64_t i = 0; i < rs.n; i++)
        rec_free(&rs.r[i]);
    free(rs.r), free(idx), free(groups);
    lines_close(&lr);
    return rc;
}
