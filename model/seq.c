/* Prompt → answer examples encoded one way for every trainer and scorer
 * (see seq.h), right-padded batches of them, and what is read back from a
 * forward pass over such a batch. */
#include "model/seq.h"

#include <stdlib.h>
#include <string.h>

#include "model/chat.h"
#include "util/text.h"

int seq_render(const char *template, const char *prompt, char **out, Err *err) {
    *out = NULL;
    if (chat_is_template(template)) return chat_render_prompt(template, prompt, out, err);
    StrBuf b = {0};
    const char *t = template ? template : SEQ_DEFAULT_TEMPLATE, *p;
    int failed = 0;
    while ((p = strstr(t, "{prompt}")) != NULL) {
        failed |= sb_append(&b, t, (size_t)(p - t));
        failed |= sb_puts(&b, prompt);
        t = p + strlen("{prompt}");
    }
    failed |= sb_puts(&b, t);
    if (!failed && !b.s) failed = !(b.s = strdup(""));
    if (failed) {
        sb_free(&b);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    *out = b.s;
    return RLHF_OK;
}

char *seq_render_template(const char *template, const char *prompt) {
    char *out = NULL;
    seq_render(template, prompt, &out, NULL);
    return out;
}

int seq_template_check(const char *template, Err *err) {
    if (chat_is_template(template)) return chat_template_check(template, err);
    if (!strstr(template, "{prompt}"))
        return err_set(err, RLHF_EINVAL,
                       "must contain {prompt}, or name a chat template (chat:FAMILY, e.g. "
                       "chat:qwen2.5; `rlhf template show --model DIR` prints a model's)");
    return RLHF_OK;
}

void seq_example_free(SeqExample *e) {
    free(e->tokens);
    memset(e, 0, sizeof *e);
}

int seq_join(const int *prompt, int n_prompt, const int *answer, int n_answer, int max_len,
             SeqExample *out, Err *err) {
    memset(out, 0, sizeof *out);
    if (max_len < 3) return err_set(err, RLHF_EINVAL, "a context of %d tokens is too short", max_len);
    if (n_prompt < 1) return err_set(err, RLHF_EINVAL, "an example needs a prompt (at least <s>)");
    /* keep <s>, at least one prompt token if there is one, then as much of the
     * answer as fits; the prompt gives way first, from its left */
    int keep_p = n_prompt, keep_a = n_answer;
    if (keep_p + keep_a > max_len) {
        int min_p = n_prompt > 1 ? 2 : 1;
        keep_p = max_len - keep_a;
        if (keep_p < min_p) {
            keep_p = min_p;
            keep_a = max_len - keep_p;
        }
    }
    out->tokens = malloc(sizeof(int) * (size_t)(keep_p + keep_a));
    if (!out->tokens) return err_set(err, RLHF_ENOMEM, "out of memory");
    out->tokens[0] = prompt[0];
    int cut = n_prompt - keep_p;
    memcpy(out->tokens + 1, prompt + 1 + cut, sizeof(int) * (size_t)(keep_p - 1));
    memcpy(out->tokens + keep_p, answer, sizeof(int) * (size_t)keep_a);
    out->n = keep_p + keep_a;
    out->n_prompt = keep_p;
    out->cut = cut;
    out->cut_answer = n_answer - keep_a;
    return RLHF_OK;
}

int seq_encode(const Tokenizer *t, const char *template, const char *prompt, const char *answer,
               int add_eos, int max_len, SeqExample *out, Err *err) {
    memset(out, 0, sizeof *out);
    char *input = NULL;
    size_t al = strlen(answer);
    char *joined = malloc(al + 2);
    int *p = NULL, *a = NULL, np = 0, na = 0;
    int rc = joined ? seq_render(template, prompt, &input, err)
                    : err_set(err, RLHF_ENOMEM, "out of memory");
    if (!rc) {
        size_t il = strlen(input);
        int space = !(il && (input[il - 1] == ' ' || input[il - 1] == '\n' || input[il - 1] == '\t'));
        joined[0] = ' ';
        memcpy(joined + space, answer, al + 1);
        p = malloc(sizeof(int) * (size_t)tok_encode_cap(il));
        a = malloc(sizeof(int) * (size_t)tok_encode_cap(al + 1));
        if (!p || !a) rc = err_set(err, RLHF_ENOMEM, "out of memory");
        if (!rc) rc = tok_encode_prompt(t, input, il, p, tok_encode_cap(il), &np, err);
        if (!rc)
            rc = tok_encode(t, joined, al + (size_t)space, 0, add_eos, a, tok_encode_cap(al + 1), &na,
                            err);
    }
    if (!rc) rc = seq_join(p, np, a, na, max_len, out, err);
    free(input);
    free(joined);
    free(p);
    free(a);
    return rc;
}

int seq_encode_ids(const Tokenizer *t, const char *template, const char *prompt, const int *ids,
                   int n_ids, int max_len, SeqExample *out, Err *err) {
    memset(out, 0, sizeof *out);
    char *input = NULL;
    int rc = seq_render(template, prompt, &input, err), n = 0;
    size_t len = input ? strlen(input) : 0;
    int *p = rc ? NULL : malloc(sizeof(int) * (size_t)tok_encode_cap(len));
    if (!rc && !p) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    if (!rc) rc = tok_encode_prompt(t, input, len, p, tok_encode_cap(len), &n, err);
    if (!rc) rc = seq_join(p, n, ids, n_ids, max_len, out, err);
    free(input), free(p);
    return rc;
}

/* Whether ids decode under t to text, blanks around it aside (text_trim, as
 * gen stores an answer). */
static int ids_spell(const Tokenizer *t, const int *ids, int n, const char *text) {
    char *d = NULL;
    size_t dl = 0;
    if (tok_decode(t, ids, n, &d, &dl, NULL)) return 0;
    const char *s = text_trim(d, &dl);
    int same = strlen(text) == dl && memcmp(s, text, dl) == 0;
    free(d);
    return same;
}

int seq_encode_sampled(const Tokenizer *t, const char *template, const char *prompt,
                       const char *answer, const int *ids, int n_ids, int add_eos, int max_len,
                       SeqExample *out, int *used_ids, Err *err) {
    int use = ids && n_ids > 0 && ids_spell(t, ids, n_ids, answer);
    if (used_ids) *used_ids = use;
    if (use) return seq_encode_ids(t, template, prompt, ids, n_ids, max_len, out, err);
    return seq_encode(t, template, prompt, answer, add_eos, max_len, out, err);
}

int seq_join_text(const Tokenizer *t, const int *prompt, int n_prompt, const char *answer,
                  int max_len, SeqExample *out, Err *err) {
    memset(out, 0, sizeof *out);
    size_t len = 0, al = strlen(answer);
    const char *last = n_prompt > 1 ? tok_piece(t, prompt[n_prompt - 2], prompt[n_prompt - 1], &len)
                                    : NULL;
    int space = !(last && len && (last[len - 1] == ' ' || last[len - 1] == '\n' ||
                                  last[len - 1] == '\t'));
    char *joined = malloc(al + 2);
    int *a = malloc(sizeof(int) * (size_t)tok_encode_cap(al + 1)), na = 0;
    int rc = joined && a ? RLHF_OK : err_set(err, RLHF_ENOMEM, "out of memory");
    if (!rc) {
        joined[0] = ' ';
        memcpy(joined + space, answer, al + 1);
        rc = tok_encode(t, joined, al + (size_t)space, 0, 1, a, tok_encode_cap(al + 1), &na, err);
    }
    if (!rc) rc = seq_join(prompt, n_prompt, a, na, max_len, out, err);
    free(joined);
    free(a);
    return rc;
}

int seq_pack(const SeqExample *ex, int B, int *tokens, int *lens) {
    int T = 1;
    for (int b = 0; b < B; b++)
        if (ex[b].n > T) T = ex[b].n;
    for (int b = 0; b < B; b++) {
        int *row = tokens + (size_t)b * T;
        memcpy(row, ex[b].tokens, sizeof(int) * (size_t)ex[b].n);
        for (int t = ex[b].n; t < T; t++) row[t] = TOK_EOS;
        lens[b] = ex[b].n;
    }
    return T;
}

void seq_last_rewards(const RunState *rs, const int *lens, int B, int T, float *out) {
    for (int b = 0; b < B; b++) out[b] = rs->reward[(size_t)b * T + lens[b] - 1];
}

int seq_answer_targets(const int *tokens, const int *lens, const int *n_prompt, int B, int T,
                       int *targets) {
    int count = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int in = t + 1 >= n_prompt[b] && t + 1 < lens[b];
            targets[(size_t)b * T + t] = in ? tokens[(size_t)b * T + t + 1] : -1;
            count += in;
        }
    return count;
}

void seq_row_sums(const float *x, const int *targets, int B, int T, double *sums) {
    for (int b = 0; b < B; b++) {
        double s = 0;
        for (int t = 0; t < T; t++)
            if (targets[(size_t)b * T + t] >= 0) s += x[(size_t)b * T + t];
        sums[b] = s;
    }
}
