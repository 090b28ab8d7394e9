/* The exporter: streams rankings from the store into one of the formats. */
#include "rm/export.h"
#include "db/scores.h"
#include "rm/agreement.h"
#include "rm/compare.h"
#include "rm/turns.h"
#include "util/text.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const format_names[] = {"pairs",      "hh",         "rankings", "arena",   "csv",
                                           "pairs-chat", "arena-json", "sft",      "sft-chat"};

int rm_export_format(const char *name) {
    for (int i = 0; i < (int)(sizeof format_names / sizeof *format_names); i++)
        if (strcmp(name, format_names[i]) == 0) return i;
    return -1;
}

const char *rm_export_format_name(int format) {
    return format >= 0 && format <= EXPORT_SFT_CHAT ? format_names[format] : "?";
}

int rm_prompt_in_val(const char *prompt, double frac) {
    if (frac <= 0) return 0;
    unsigned char d[32];
    Sha256 c;
    sha256_init(&c);
    sha256_update(&c, prompt, strlen(prompt));
    sha256_final(&c, d);
    uint64_t h = 0;
    for (int i = 0; i < 8; i++)
        h = h << 8 | d[i];
    return (double)h / 18446744073709551616.0 < frac;
}

void rm_json_span(FILE *f, const char *s, size_t n) {
    /* clean spans go out in one fwrite: this is the exporter's inner loop */
    const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
    for (; p < end; p++) {
        if (*p >= 0x20 && *p != '"' && *p != '\\') continue;
        if (p > run) fwrite(run, 1, (size_t)(p - run), f);
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            fprintf(f, "\\u%04x", *p);
        }
        run = p + 1;
    }
    if (p > run) fwrite(run, 1, (size_t)(p - run), f);
}

void rm_json_string(FILE *f, const char *s) {
    putc('"', f);
    if (s) rm_json_span(f, s, strlen(s));
    putc('"', f);
}

void rm_csv_field(FILE *f, const char *s) {
    if (!s) return;
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    putc('"', f);
    for (const char *p = s; *p; p++) {
        if (*p == '"') putc('"', f);
        putc(*p, f);
    }
    putc('"', f);
}

int rm_arena_coin(int64_t lo, int64_t hi) {
    uint64_t z = (uint64_t)lo * 0x9E3779B97F4A7C15u ^ (uint64_t)hi;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u; /* splitmix64's finaliser */
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return (int)((z ^ (z >> 31)) & 1);
}

/* The store's "YYYY-MM-DDTHH:MM:SS[.fff]Z" as Unix seconds, as the Arena logs
 * have their tstamp; 0 when it does not parse. */
static double epoch_seconds(const char *iso) {
    struct tm tm = {0};
    double sec = 0;
    if (!iso || sscanf(iso, "%d-%d-%dT%d:%d:%lf", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                       &tm.tm_hour, &tm.tm_min, &sec) != 6)
        return 0;
    tm.tm_year -= 1900, tm.tm_mon -= 1;
    return (double)timegm(&tm) + sec;
}

/* A JSON string of the prompt's HH transcript, then tail, then answer:
 * "\n\nHuman: P\n\nAssistant: A" (hh) or "\n\nHuman: P\n\nAssistant:" (pairs). */
static void transcript(FILE *f, const char *prompt, const char *tail, const char *answer) {
    StrBuf b = {0};
    rm_prompt_transcript(&b, prompt);
    putc('"', f);
    rm_json_span(f, b.s ? b.s : "", b.len);
    rm_json_span(f, tail, strlen(tail));
    if (answer) rm_json_span(f, answer, strlen(answer));
    putc('"', f);
    sb_free(&b);
}

typedef struct ExportCtx {
    Db *db;
    const ExportOptions *o;
    FILE *out, *val;
    ExportStats *st;
    int64_t *allowed; /* sorted prompt ids passing min_agreement; NULL: all */
    int64_t n_allowed;
    int64_t cur_prompt;
    int cur_val, cur_skip;
    int64_t out_records, val_records; /* written to each file: arena-json's commas */
    RmPair *pairs;
    int64_t *margin_ok; /* sorted prompt ids with a margin within max_margin; NULL: all */
    int64_t n_margin_ok;
    Err *err;
} ExportCtx;

/* Whether the RM scored candidate id at least min_score (unscored: no). */
static int score_ok(ExportCtx *c, int64_t cand_id, int *ok) {
    double v;
    int found, rc = db_score_get(c->db, cand_id, c->o->rm_id, &v, &found, c->err);
    *ok = !rc && found && v >= c->o->min_score;
    return rc;
}

static int cmp_i64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

static void write_flags(FILE *f, const char *flags) {
    cJSON *j = flags ? cJSON_Parse(flags) : NULL;
    if (cJSON_IsArray(j)) {
        char *s = cJSON_PrintUnformatted(j);
        fputs(s ? s : "[]", f);
        free(s);
    } else
        fputs("[]", f);
    cJSON_Delete(j);
}

static void write_ranking(FILE *f, const RankingRow *r) {
    fprintf(f, "{\"ranking_id\":%lld,\"prompt_id\":%lld,\"prompt\":", (long long)r->id,
            (long long)r->prompt_id);
    rm_json_string(f, r->prompt);
    fputs(",\"split\":", f);
    rm_json_string(f, r->split);
    fputs(",\"labeler\":", f);
    rm_json_string(f, r->labeler);
    fprintf(f, ",\"simulated\":%s,\"version\":%d,\"completions\":[",
            r->simulated ? "true" : "false", r->version);
    for (int i = 0; i < r->n_items; i++) {
        fprintf(f, "%s{\"id\":%lld,\"model\":", i ? "," : "", (long long)r->items[i].candidate_id);
        rm_json_string(f, r->items[i].model_name);
        fputs(",\"text\":", f);
        rm_json_string(f, r->items[i].text);
        putc('}', f);
    }
    fputs("],\"ranks\":[", f);
    for (int i = 0; i < r->n_items; i++)
        r->items[i].rank ? fprintf(f, "%s%d", i ? "," : "", r->items[i].rank)
                         : fprintf(f, "%snull", i ? "," : "");
    fputs("],\"scores\":[", f);
    for (int i = 0; i < r->n_items; i++)
        r->items[i].likert ? fprintf(f, "%s%d", i ? "," : "", r->items[i].likert)
                           : fprintf(f, "%snull", i ? "," : "");
    fputs("],\"flags\":[", f);
    for (int i = 0; i < r->n_items; i++) {
        if (i) putc(',', f);
        write_flags(f, r->items[i].flags);
    }
    fprintf(f, "],\"none_acceptable\":%s", r->none_acceptable ? "true" : "false");
    fprintf(f, ",\"skipped\":%s,\"skip_reason\":", r->skipped ? "true" : "false");
    r->skip_reason ? rm_json_string(f, r->skip_reason) : (void)fputs("null", f);
    fprintf(f, ",\"current\":%s", r->is_current ? "true" : "false");
    /* every record has every key: a consumer's schema comes from any line */
    if (r->time_spent_ms >= 0)
        fprintf(f, ",\"time_ms\":%lld", (long long)r->time_spent_ms);
    else
        fputs(",\"time_ms\":null", f);
    fputs(",\"source\":", f);
    r->source ? rm_json_string(f, r->source) : (void)fputs("null", f);
    fputs(",\"note\":", f);
    r->note ? rm_json_string(f, r->note) : (void)fputs("null", f);
    fputs(",\"created_at\":", f);
    rm_json_string(f, r->created_at);
    fputs("}\n", f);
}

/* The fields pairs and pairs-chat share after prompt, chosen, rejected. */
static void pair_fields(FILE *f, const ExportOptions *o, const RankingRow *r, const RmPair *p) {
    const RankingItemRow *c = &r->items[p->better], *w = &r->items[p->worse];
    fprintf(f, ",\"prompt_id\":%lld,\"chosen_id\":%lld,\"rejected_id\":%lld,\"chosen_model\":",
            (long long)r->prompt_id, (long long)c->candidate_id, (long long)w->candidate_id);
    rm_json_string(f, c->model_name);
    fputs(",\"rejected_model\":", f);
    rm_json_string(f, w->model_name);
    fputs(",\"labeler\":", f);
    rm_json_string(f, r->labeler);
    fprintf(f, ",\"simulated\":%s,\"rank_gap\":%d", r->simulated ? "true" : "false", p->margin);
    /* TRL's RewardTrainer subtracts a "margin" column inside its loss: one is
     * written only when asked, in train-rm --margin's sense */
    if (o->margin > 0) {
        int both = c->likert > 0 && w->likert > 0;
        fprintf(f, ",\"margin\":%.17g", both ? o->margin * (c->likert - w->likert) : 0.0);
    }
    fprintf(f, ",\"ranking_id\":%lld}\n", (long long)r->id);
}

/* One Arena battle (see export.h for the fields). */
static void write_battle(FILE *f, const RankingRow *r, const RmPair *p) {
    const RankingItemRow *c = &r->items[p->better], *w = &r->items[p->worse];
    /* sides by a coin from the pair alone, never from the outcome: an
     * importer that numbered the chosen answer first must not make model_a
     * win every battle */
    const RankingItemRow *a = c, *b = w;
    int64_t lo = c->candidate_id < w->candidate_id ? c->candidate_id : w->candidate_id;
    int64_t hi = c->candidate_id ^ w->candidate_id ^ lo;
    if (rm_arena_coin(lo, hi)) a = w, b = c;
    const char *winner = p->tie ? (r->none_acceptable ? "tie (bothbad)" : "tie")
                                : a == c ? "model_a" : "model_b";
    /* user turns: one per "Human:" marker, plus a bare opening turn */
    int turns = !rm_prompt_has_system(r->prompt) && strncmp(r->prompt, RM_HUMAN, strlen(RM_HUMAN));
    for (const char *m = r->prompt; (m = strstr(m, RM_HUMAN)); m++)
        turns++;
    fputs("{\"model_a\":", f);
    rm_json_string(f, a->model_name);
    fputs(",\"model_b\":", f);
    rm_json_string(f, b->model_name);
    fprintf(f, ",\"winner\":\"%s\",\"judge\":", winner);
    rm_json_string(f, r->labeler);
    fprintf(f,
            ",\"turn\":%d,\"anony\":true,\"language\":\"unknown\",\"tstamp\":%.3f,"
            "\"dedup_tag\":{\"high_freq\":false,\"sampled\":true},\"conversation_a\":",
            turns, epoch_seconds(r->created_at));
    rm_write_messages(f, r->prompt, a->text);
    fputs(",\"conversation_b\":", f);
    rm_write_messages(f, r->prompt, b->text);
    fprintf(f,
            ",\"question_id\":%lld,\"prompt_id\":%lld,\"ranking_id\":%lld,\"a_id\":%lld,"
            "\"b_id\":%lld}",
            (long long)r->prompt_id, (long long)r->prompt_id, (long long)r->id,
            (long long)a->candidate_id, (long long)b->candidate_id);
}

static void write_pair(FILE *f, const ExportOptions *o, const RankingRow *r, const RmPair *p) {
    const RankingItemRow *c = &r->items[p->better], *w = &r->items[p->worse];
    switch (o->format) {
    case EXPORT_PAIRS:
        /* TRL's standard form: the template on every prompt, the separator
         * on the answer, so prompt + chosen is the HH transcript */
        fputs("{\"prompt\":", f);
        transcript(f, r->prompt, RM_ASSISTANT, NULL);
        fputs(",\"chosen\":\" ", f);
        rm_json_span(f, c->text, strlen(c->text));
        fputs("\",\"rejected\":\" ", f);
        rm_json_span(f, w->text, strlen(w->text));
        putc('"', f);
        pair_fields(f, o, r, p);
        break;
    case EXPORT_PAIRS_CHAT:
        fputs("{\"prompt\":", f);
        rm_write_messages(f, r->prompt, NULL);
        fputs(",\"chosen\":[{\"role\":\"assistant\",\"content\":", f);
        rm_json_string(f, c->text);
        fputs("}],\"rejected\":[{\"role\":\"assistant\",\"content\":", f);
        rm_json_string(f, w->text);
        fputs("}]", f);
        pair_fields(f, o, r, p);
        break;
    case EXPORT_HH:
        fputs("{\"chosen\":", f);
        transcript(f, r->prompt, RM_ASSISTANT " ", c->text);
        fputs(",\"rejected\":", f);
        transcript(f, r->prompt, RM_ASSISTANT " ", w->text);
        fputs("}\n", f);
        break;
    case EXPORT_ARENA:
        write_battle(f, r, p);
        putc('\n', f);
        break;
    case EXPORT_CSV:
        fprintf(f, "%lld,%lld,", (long long)r->prompt_id, (long long)r->id);
        rm_csv_field(f, r->labeler);
        fprintf(f, ",%lld,%lld,", (long long)c->candidate_id, (long long)w->candidate_id);
        rm_csv_field(f, c->model_name);
        putc(',', f);
        rm_csv_field(f, w->model_name);
        fprintf(f, ",%d,%d,", p->tie, p->margin);
        rm_csv_field(f, r->split);
        putc(',', f);
        rm_csv_field(f, r->prompt);
        putc(',', f);
        rm_csv_field(f, c->text);
        putc(',', f);
        rm_csv_field(f, w->text);
        fputs("\r\n", f);
        break;
    }
}

static const char csv_header[] = "prompt_id,ranking_id,labeler,chosen_id,rejected_id,chosen_model,"
                                 "rejected_model,tie,rank_gap,split,prompt,chosen,rejected\r\n";

static int export_one(const RankingRow *r, void *vctx) {
    ExportCtx *c = vctx;
    ExportStats *st = c->st;
    if (r->prompt_id != c->cur_prompt) {
        c->cur_prompt = r->prompt_id;
        c->cur_skip = c->allowed && !bsearch(&r->prompt_id, c->allowed, (size_t)c->n_allowed,
                                             sizeof *c->allowed, cmp_i64);
        int no_margin = !c->cur_skip && c->margin_ok &&
                        !bsearch(&r->prompt_id, c->margin_ok, (size_t)c->n_margin_ok,
                                 sizeof *c->margin_ok, cmp_i64);
        if (c->cur_skip)
            st->prompts_below_agreement++;
        else if (no_margin)
            st->prompts_no_margin++, c->cur_skip = 1;
        else {
            c->cur_val = c->val && rm_prompt_in_val(r->prompt, c->o->val_frac);
            st->prompts++;
            st->val_prompts += c->cur_val;
        }
    }
    if (c->cur_skip) return 0;
    FILE *f = c->cur_val ? c->val : c->out;
    st->rankings++;
    int format = c->o->format, ok = 1, rc;
    int by_score = c->o->rm_id > 0 && !isnan(c->o->min_score);
    if (format == EXPORT_RANKINGS) {
        /* items are sorted by rank: the first is the best-ranked */
        if (by_score) {
            ok = r->n_items > 0 && r->items[0].rank > 0;
            if (ok && (rc = score_ok(c, r->items[0].candidate_id, &ok))) return rc;
            if (!ok) {
                st->rankings--;
                st->below_score++;
                return 0;
            }
        }
        write_ranking(f, r);
        st->records++;
        st->val_records += c->cur_val;
        return ferror(f) ? RLHF_EIO : 0;
    }
    int np = rm_pairs_of_row(r, c->pairs, 64 * 63 / 2);
    if (np < 0) return RLHF_EINVAL;
    int arena = format == EXPORT_ARENA || format == EXPORT_ARENA_JSON;
    int keep_ties = arena || format == EXPORT_CSV;
    for (int i = 0; i < np; i++) {
        const RmPair *p = &c->pairs[i];
        st->pairs++;
        st->ties += p->tie;
        if (p->tie && !keep_ties) {
            st->ties_dropped++;
            continue;
        }
        if (by_score) {
            if ((rc = score_ok(c, r->items[p->better].candidate_id, &ok))) return rc;
            if (!ok) {
                st->below_score++;
                continue;
            }
        }
        /* a model against itself tells a rating nothing */
        if (arena && !c->o->keep_same_model &&
            r->items[p->better].model_id == r->items[p->worse].model_id) {
            st->same_model++;
            continue;
        }
        if (format == EXPORT_ARENA_JSON) {
            int64_t *n = c->cur_val ? &c->val_records : &c->out_records;
            fputs(*n ? ",\n" : "", f);
            write_battle(f, r, p);
            ++*n;
        } else
            write_pair(f, c->o, r, p);
        st->records++;
        st->val_records += c->cur_val;
    }
    return ferror(f) ? RLHF_EIO : 0;
}

int rm_agreeing_prompts(Db *db, const RankingFilter *filter, double min_agreement,
                        int64_t **ids, int64_t *n, Err *err) {
    RankingFilter f = *filter;
    f.labeler = NULL;
    RmSet s;
    int rc = rm_set_load(db, &f, &s, err);
    if (rc) return rc;
    int64_t *pid = NULL, m = 0, k = 0;
    double *rate = NULL;
    rc = rm_prompt_agreement(&s, &pid, &rate, &m, err);
    rm_set_free(&s);
    if (rc) return rc;
    for (int64_t i = 0; i < m; i++)
        if (!isnan(rate[i]) && rate[i] >= min_agreement - 1e-12) pid[k++] = pid[i];
    free(rate);
    *ids = pid;
    *n = k;
    return RLHF_OK;
}

static int count_one(const RankingRow *r, void *ctx) {
    int64_t *last = ctx;
    if (r->prompt_id != last[0]) last[0] = r->prompt_id, last[1]++;
    return 0;
}

/* The prompts the filter's rankings cover. */
static int count_prompts(Db *db, const RankingFilter *f, int64_t *n, Err *err) {
    int64_t last[2] = {0, 0};
    int rc = db_rankings_each(db, f, count_one, last, err);
    *n = last[1];
    return rc;
}

int rm_export(Db *db, const ExportOptions *o, FILE *out, FILE *val, ExportStats *st, Err *err) {
    if (o->format == EXPORT_SFT || o->format == EXPORT_SFT_CHAT)
        return rm_export_sft(db, o, out, val, st, err);
    memset(st, 0, sizeof *st);
    ExportCtx c = {.db = db, .o = o, .out = out, .val = o->val_frac > 0 ? val : NULL, .st = st, .err = err};
    int rc = RLHF_OK;
    if (o->min_agreement >= 0)
        rc = rm_agreeing_prompts(db, &o->filter, o->min_agreement, &c.allowed, &c.n_allowed, err);
    if (rc) return rc;
    /* the prompts by margin: least sure first, and (sorted by id) which pass */
    int64_t *by_margin = NULL;
    double *margins = NULL;
    if (o->rm_id > 0 && (!isnan(o->max_margin) || o->by_margin)) {
        rc = db_margins_list(db, o->rm_id, o->max_margin, &by_margin, &margins, &c.n_margin_ok, err);
        if (!rc && c.n_margin_ok && !(c.margin_ok = malloc((size_t)c.n_margin_ok * sizeof *c.margin_ok)))
            rc = err_set(err, RLHF_ENOMEM, "out of memory");
        if (!rc && !c.margin_ok) c.margin_ok = malloc(sizeof *c.margin_ok); /* none pass */
        if (!rc && c.n_margin_ok) {
            memcpy(c.margin_ok, by_margin, (size_t)c.n_margin_ok * sizeof *c.margin_ok);
            qsort(c.margin_ok, (size_t)c.n_margin_ok, sizeof *c.margin_ok, cmp_i64);
        }
        free(margins);
        if (rc) {
            free(by_margin), free(c.margin_ok), free(c.allowed);
            return rc;
        }
    }
    c.pairs = malloc(64 * 63 / 2 * sizeof *c.pairs);
    if (!c.pairs) {
        free(c.allowed);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    if (o->format == EXPORT_CSV || o->format == EXPORT_ARENA_JSON) {
        const char *head = o->format == EXPORT_CSV ? csv_header : "[\n";
        fputs(head, out);
        if (c.val) fputs(head, c.val);
    }
    /* a skip is a labeler's answer too: rankings, which can hold it, keep it */
    RankingFilter filter = o->filter;
    if (o->format == EXPORT_RANKINGS) filter.with_skipped = 1;
    if (o->by_margin && o->rm_id > 0) {
        /* prompt by prompt in margin order; those without a margin are left out */
        for (int64_t i = 0; !rc && i < c.n_margin_ok; i++) {
            filter.prompt_id = by_margin[i];
            rc = db_rankings_each(db, &filter, export_one, &c, err);
        }
        int64_t all = 0;
        if (!rc) rc = count_prompts(db, &o->filter, &all, err);
        if (!rc) st->prompts_no_margin = all - st->prompts - st->prompts_below_agreement;
    } else
        rc = db_rankings_each(db, &filter, export_one, &c, err);
    if (!rc && o->format == EXPORT_ARENA_JSON) {
        /* one JSON array, as Arena's notebooks read it with pd.read_json */
        fputs(c.out_records ? "\n]\n" : "]\n", out);
        if (c.val) fputs(c.val_records ? "\n]\n" : "]\n", c.val);
        if (ferror(out) || (c.val && ferror(c.val))) rc = RLHF_EIO;
    }
    if (rc == RLHF_EIO)
        err_set(err, rc, "write failed: %s", strerror(errno ? errno : EIO));
    else if (rc == RLHF_EINVAL)
        err_set(err, rc, "a ranking has more than 64 candidates");
    free(c.pairs);
    free(c.allowed);
    free(c.margin_ok);
    free(by_margin);
    return rc;
}
