/* Demonstrations out in TRL's SFT formats (see export.h: rm_export_sft). */
#include "db/demos.h"
#include "rm/export.h"
#include "rm/turns.h"

#include <errno.h>
#include <string.h>

typedef struct SftCtx {
    const ExportOptions *o;
    FILE *out, *val;
    ExportStats *st;
    int64_t last_prompt;
} SftCtx;

static void write_nullable(FILE *f, const char *key, int64_t v, int present) {
    if (present)
        fprintf(f, ",\"%s\":%lld", key, (long long)v);
    else
        fprintf(f, ",\"%s\":null", key);
}

static int sft_one(const DemoRow *d, void *ctx) {
    SftCtx *c = ctx;
    int to_val = c->val && rm_prompt_in_val(d->prompt, c->o->val_frac);
    FILE *f = to_val ? c->val : c->out;
    if (c->o->format == EXPORT_SFT) {
        StrBuf b = {0};
        if (rm_prompt_transcript(&b, d->prompt) || sb_puts(&b, RM_ASSISTANT)) {
            sb_free(&b);
            return RLHF_ENOMEM;
        }
        fputs("{\"prompt\":", f);
        rm_json_string(f, b.s);
        fputs(",\"completion\":\" ", f);
        rm_json_span(f, d->text, strlen(d->text));
        fputc('"', f);
        sb_free(&b);
    } else {
        fputs("{\"messages\":", f);
        rm_write_messages(f, d->prompt, d->text);
    }
    fprintf(f, ",\"prompt_id\":%lld,\"candidate_id\":%lld,\"author\":", (long long)d->prompt_id,
            (long long)d->candidate_id);
    rm_json_string(f, d->author);
    write_nullable(f, "edited_from", d->edited_from, d->edited_from > 0);
    write_nullable(f, "edit_distance", d->edit_distance, d->edit_distance >= 0);
    write_nullable(f, "time_ms", d->time_spent_ms, d->time_spent_ms >= 0);
    fprintf(f, ",\"simulated\":%s,\"flagged\":%s,\"split\":", d->simulated ? "true" : "false",
            d->flagged ? "true" : "false");
    rm_json_string(f, d->split);
    fputs("}\n", f);
    if (to_val) c->st->val_records++;
    c->st->records++;
    if (d->prompt_id != c->last_prompt) {
        c->st->prompts++;
        c->st->val_prompts += to_val;
        c->last_prompt = d->prompt_id;
    }
    return ferror(f) ? RLHF_EIO : 0;
}

int rm_export_sft(Db *db, const ExportOptions *o, FILE *out, FILE *val, ExportStats *st, Err *err) {
    memset(st, 0, sizeof *st);
    SftCtx c = {o, out, o->val_frac > 0 ? val : NULL, st, 0};
    DemoFilter f = {o->filter.split, o->filter.labeler, !o->all_demos, o->filter.simulated};
    int rc = db_demos_each(db, &f, sft_one, &c, err);
    if (rc == RLHF_EIO)
        err_set(err, rc, "write failed: %s", strerror(errno ? errno : EIO));
    else if (rc == RLHF_ENOMEM)
        err_set(err, rc, "out of memory");
    return rc;
}
