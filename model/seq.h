/* Prompt → answer examples as every trainer and scorer sees them, so the
 * reward model, SFT, DPO and PPO read a text the same way the generator wrote
 * it: <s> + template(prompt) (the tokens gen prefills), then " " + answer and
 * </s>. Too long for the context: the prompt is cut from the left (after <s>)
 * so the whole answer and the end of the conversation stay; only an answer
 * that alone fills the context loses its end (and its </s>).
 *
 * A batch is right-padded: row b holds lens[b] real tokens, then padding.
 * Causal attention keeps padding from reaching the real positions, so the
 * outputs at positions < lens[b] equal those of an unpadded pass. */
#ifndef RLHF_MODEL_SEQ_H
#define RLHF_MODEL_SEQ_H

#include "model/model.h"
#include "model/tokenizer.h"
#include "util/err.h"

typedef struct SeqExample {
    int *tokens;  /* n tokens, owned (seq_example_free) */
    int n;        /* total, <= max_len */
    int n_prompt; /* tokens before the answer (<s> and the templated prompt) */
    int cut;      /* prompt tokens dropped from the left */
    int cut_answer; /* answer tokens dropped from the right (answer alone too long) */
} SeqExample;

/* The chat template used when a model carries none: {prompt} is replaced by
 * the prompt text. Matches samples/corpus.txt. */
#define SEQ_DEFAULT_TEMPLATE "Human: {prompt}\nAssistant:"

/* The model's input for a stored prompt: template (NULL: the default) with
 * every {prompt} replaced, or, for a chat template ("chat:...", model/chat.h),
 * the prompt as a user message (or an HH transcript's turns) rendered with
 * the assistant's opening. *out is the caller's to free. Only a chat template
 * can refuse a prompt (an HH transcript ending with the assistant's turn). */
int seq_render(const char *template, const char *prompt, char **out, Err *err);
/* seq_render without the reason: NULL on any failure; caller frees. */
char *seq_render_template(const char *template, const char *prompt);
/* Checks a --template value: a {prompt} template or a known chat template. */
int seq_template_check(const char *template, Err *err);

/* Renders template (seq_render; NULL: the default) and
 * encodes as above. The join is a space unless the template already ends
 * in whitespace. add_eos: end the answer with </s> (what a finished sample
 * has). max_len >= 3. */
int seq_encode(const Tokenizer *t, const char *template, const char *prompt, const char *answer,
               int add_eos, int max_len, SeqExample *out, Err *err);
/* The same with the prompt already tokenized (ids from BOS on, as gen
 * prefilled them) and the answer as token ids (as sampled). */
int seq_join(const int *prompt, int n_prompt, const int *answer, int n_answer, int max_len,
             SeqExample *out, Err *err);
/* The same with the answer as text (seq_encode's join: a space unless the
 * prompt's last token ends in whitespace), ended with </s>: how an answer cut
 * at a stop string is stored and scored. */
int seq_join_text(const Tokenizer *t, const int *prompt, int n_prompt, const char *answer,
                  int max_len, SeqExample *out, Err *err);
/* Renders template (seq_render) and encodes it as gen prefills it (from <s>
 * on), then appends the answer's ids as sampled (seq_join). */
int seq_encode_ids(const Tokenizer *t, const char *template, const char *prompt, const int *ids,
                   int n_ids, int max_len, SeqExample *out, Err *err);
/* A stored answer as PPO scores it: its sampled ids (</s> included when it
 * was sampled) when ids is not NULL and they spell `answer` under t (decoded,
 * whitespace trimmed at both ends, as gen stores the text): a tokenizer that
 * would spell it otherwise, or answer text edited since, falls back to the
 * text re-encoded (seq_encode, </s> when add_eos). *used_ids (may be NULL)
 * says which. */
int seq_encode_sampled(const Tokenizer *t, const char *template, const char *prompt,
                       const char *answer, const int *ids, int n_ids, int add_eos, int max_len,
                       SeqExample *out, int *used_ids, Err *err);
void seq_example_free(SeqExample *e);

/* Copies examples ex[0..B) into a right-padded (B, T) token array (padding
 * with </s>); T = the longest. tokens holds B*max T. Returns T. */
int seq_pack(const SeqExample *ex, int B, int *tokens, int *lens);

/* Reward head at each row's last real token: out[b] = reward(b, lens[b]-1).
 * After model_forward on the packed batch (rows T apart). */
void seq_last_rewards(const RunState *rs, const int *lens, int B, int T, float *out);

/* Next-token targets of the answer: targets[b*T + t] = tokens[b, t+1] when
 * token t+1 belongs to the answer (n_prompt[b] <= t+1 < lens[b]), else -1.
 * Logits row t predicts it, so these feed loss_ce_* and loss_logprobs(_backward)
 * directly. Returns the number of answer tokens. */
int seq_answer_targets(const int *tokens, const int *lens, const int *n_prompt, int B, int T,
                       int *targets);
/* sums[b] = Σ_t x[b*T + t] over the positions where targets >= 0 (e.g. the
 * per-token log-probabilities of loss_logprobs: the answer's log-probability). */
void seq_row_sums(const float *x, const int *targets, int B, int T, double *sums);

#endif
