/* Chat templates of Hugging Face models, rendered in C. A model's Jinja
 * chat_template is not executed: its family is recognised from the text (key
 * markers; anything unsure is refused) and rendered here exactly as the
 * template renders it, for the roles system, user and assistant without tools.
 *
 * A recognised template is stored as one short string, "chat:FAMILY", plus
 * " bos=X" / " eos=X" only where the family uses a token and the model's
 * differs from the family's usual one (X with '%', space and controls as %XX).
 * The family fixes everything else, so the string is readable in the project
 * DB, can be typed as --template, and renders the same on every machine.
 *
 * Families: chatml (no default system), qwen2.5 and smollm2 (ChatML with their
 * default system messages), qwen3 (ChatML; <think> blocks as its template
 * handles them), llama3, llama3.1 (also 3.2: a system block with "Cutting
 * Knowledge Date: December 2023" and the template's own fallback date,
 * "Today Date: 26 Jul 2024", never today's, so renderings are reproducible),
 * llama2 ([INST] with <<SYS>>), mistral (Mistral-7B-Instruct-v0.1's [INST],
 * no system role), zephyr (TinyLlama-Chat and Zephyr's <|user|> turns). */
#ifndef RLHF_MODEL_CHAT_H
#define RLHF_MODEL_CHAT_H

#include "util/err.h"

#define CHAT_PREFIX "chat:"

typedef struct ChatMsg {
    const char *role; /* "system", "user" or "assistant" */
    const char *content;
} ChatMsg;

/* A conversation split from a prompt; msgs point into buf. */
typedef struct ChatConv {
    ChatMsg *msgs;
    int n;
    char *buf;
} ChatConv;

/* Whether t is a stored chat template ("chat:..."), not a {prompt} template. */
int chat_is_template(const char *t);
/* Checks a stored chat template (family known, fields well formed). */
int chat_template_check(const char *t, Err *err);

/* The stored template of a Hugging Face model directory: chat_template.jinja
 * when present, else tokenizer_config.json's chat_template (the one named
 * "default" when it is a list), recognised, with its bos_token/eos_token
 * (strings or {"content": ...} objects). *template_out is the caller's to
 * free. RLHF_ENOTFOUND when the directory has no chat template; RLHF_EFORMAT
 * naming the file and field when the file is malformed; RLHF_EINVAL when the
 * template is not one this recognises (the message says to pass --template). */
int chat_template_load(const char *model_dir, char **template_out, Err *err);
/* chat_template_load where path is a directory with a chat template; else
 * (a checkpoint file, a directory without one) RLHF_OK with *template_out NULL. */
int chat_template_find(const char *path, char **template_out, Err *err);
/* The same from a template's text and the model's tokens (bos/eos may be NULL). */
int chat_template_detect(const char *jinja, const char *bos, const char *eos, char **template_out,
                         Err *err);

/* Renders msgs[0..n) (n >= 1) as the template does, with the assistant's
 * opening when add_generation_prompt. *out is the caller's to free. Refuses
 * (RLHF_EINVAL) roles other than system/user/assistant and what the template
 * itself raises on (e.g. llama2 and mistral need alternating turns). */
int chat_render(const char *template, const ChatMsg *msgs, int n, int add_generation_prompt,
                char **out, Err *err);

/* A prompt as the project stores it, as messages: an HH transcript
 * ("Human: ...\n\nAssistant: ...\n\nHuman: ...", perhaps opening with blank
 * lines and closing with an empty "Assistant:", which is dropped; each turn's
 * text trimmed) or, when it does not open with "Human:", one user message
 * verbatim. The last turn must be the user's. Free with chat_conv_free. */
int chat_split_hh(const char *prompt, ChatConv *out, Err *err);
void chat_conv_free(ChatConv *c);
/* The HH transcript of user/assistant turns (no system); caller frees. */
int chat_join_hh(const ChatMsg *msgs, int n, char **out, Err *err);

/* chat_split_hh then chat_render with add_generation_prompt. */
int chat_render_prompt(const char *template, const char *prompt, char **out, Err *err);
/* A prompt that chat_render_prompt turns into input (an HH transcript when
 * input holds several turns); NULL when input is not such a rendering or on
 * allocation failure. Caller frees. */
char *chat_prompt_of(const char *template, const char *input);

#endif
