/* Examples as trainers and scorers encode them (model/seq.h): the prompt part
 * equals what gen prefills, the answer follows after one space with </s>,
 * long prompts lose their left end (never <s>), answer targets line up with
 * the logits rows that predict them. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/seq.h"
#include "model/tokenizer.h"
#include "tests/unit/fixtures.h"

Test(seq, encode_matches_the_prefill_and_appends_the_answer) {
    Tokenizer *t = byte_tokenizer();
    Err err = {0};
    SeqExample e;
    cr_assert_eq(seq_encode(t, "Q: {prompt}\nA:", "hi", "yo", 1, 64, &e, &err), 0, "%s", err.msg);
    const char *input = "Q: hi\nA:";
    int p[32], np;
    cr_assert_eq(tok_encode(t, input, strlen(input), 1, 0, p, 32, &np, &err), 0);
    cr_assert_eq(e.n_prompt, np);
    cr_assert_eq(memcmp(e.tokens, p, sizeof(int) * (size_t)np), 0);
    /* " yo" + </s> */
    cr_assert_eq(e.n, np + 4);
    cr_assert_eq(e.tokens[np], 3 + ' ');
    cr_assert_eq(e.tokens[np + 1], 3 + 'y');
    cr_assert_eq(e.tokens[e.n - 1], TOK_EOS);
    cr_assert_eq(e.cut, 0);
    seq_example_free(&e);
    /* a template ending in a space adds none */
    cr_assert_eq(seq_encode(t, "{prompt}: ", "hi", "yo", 0, 64, &e, &err), 0);
    cr_assert_eq(e.tokens[e.n_prompt], 3 + 'y');
    cr_assert_eq(e.n - e.n_prompt, 2);
    seq_example_free(&e);
    tok_free(t);
}

Test(seq, long_prompts_lose_their_left_end) {
    int prompt[10] = {1, 10, 11, 12, 13, 14, 15, 16, 17, 18}, answer[3] = {20, 21, 2};
    SeqExample e;
    Err err = {0};
    cr_assert_eq(seq_join(prompt, 10, answer, 3, 8, &e, &err), 0);
    int want[8] = {1, 15, 16, 17, 18, 20, 21, 2};
    cr_assert_eq(e.n, 8);
    cr_assert_eq(memcmp(e.tokens, want, sizeof want), 0);
    cr_assert_eq(e.n_prompt, 5);
    cr_assert_eq(e.cut, 5);
    cr_assert_eq(e.cut_answer, 0);
    seq_example_free(&e);
    /* an answer that alone fills the context keeps <s>, one prompt token, and its start */
    cr_assert_eq(seq_join(prompt, 10, answer, 3, 4, &e, &err), 0);
    int want2[4] = {1, 18, 20, 21};
    cr_assert_eq(memcmp(e.tokens, want2, sizeof want2), 0);
    cr_assert_eq(e.cut_answer, 1);
    seq_example_free(&e);
    cr_assert_eq(seq_join(prompt, 10, answer, 3, 2, &e, &err), RLHF_EINVAL);
}

Test(seq, targets_line_up_with_the_predicting_row) {
    int pa[3] = {1, 5, 6}, aa[2] = {7, 2}, pb[2] = {1, 5}, ab[1] = {2};
    SeqExample ex[2];
    Err err = {0};
    cr_assert_eq(seq_join(pa, 3, aa, 2, 16, &ex[0], &err), 0);
    cr_assert_eq(seq_join(pb, 2, ab, 1, 16, &ex[1], &err), 0);
    int tokens[10], lens[2], targets[10];
    int T = seq_pack(ex, 2, tokens, lens);
    cr_assert_eq(T, 5);
    cr_assert_eq(lens[1], 3);
    cr_assert_eq(tokens[5 + 3], TOK_EOS); /* padding */
    int np[2] = {ex[0].n_prompt, ex[1].n_prompt};
    cr_assert_eq(seq_answer_targets(tokens, lens, np, 2, T, targets), 3);
    int want[10] = {-1, -1, 7, 2, -1, -1, 2, -1, -1, -1};
    cr_assert_eq(memcmp(targets, want, sizeof want), 0);
    float x[10] = {9, 9, 0.5f, 0.25f, 9, 9, 2, 9, 9, 9};
    double sums[2];
    seq_row_sums(x, targets, 2, T, sums);
    cr_assert_float_eq(sums[0], 0.75, 1e-9);
    cr_assert_float_eq(sums[1], 2.0, 1e-9);
    seq_example_free(&ex[0]);
    seq_example_free(&ex[1]);
}
