/* Prompts as the project stores them (one user message, or an HH-style
 * transcript) turned into chat messages and back, so a chat template renders
 * every stored prompt and best-of-n can find the prompt in a rendered input. */
#include "model/chat.h"

#include <stdlib.h>
#include <string.h>

#include "util/text.h"

void chat_conv_free(ChatConv *c) {
    free(c->msgs);
    free(c->buf);
    memset(c, 0, sizeof *c);
}

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The next turn marker at or after p: "\n\nHuman:" or "\n\nAssistant:". */
static const char *next_marker(const char *p, int *is_user) {
    const char *h = strstr(p, "\n\nHuman:"), *a = strstr(p, "\n\nAssistant:");
    if (!h && !a) return NULL;
    *is_user = h && (!a || h < a);
    return *is_user ? h : a;
}

int chat_split_hh(const char *prompt, ChatConv *out, Err *err) {
    memset(out, 0, sizeof *out);
    const char *p = prompt;
    while (*p == '\n' || *p == '\r') p++;
    int hh = strncmp(p, "Human:", 6) == 0;
    size_t cap = 1;
    if (hh) /* every turn has a marker, and every marker is longer than 1 byte */
        for (const char *q = p; (q = strchr(q, ':')); q++) cap++;
    out->buf = strdup(hh ? p : prompt);
    out->msgs = calloc(cap, sizeof *out->msgs);
    if (!out->buf || !out->msgs) {
        chat_conv_free(out);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    if (!hh) {
        out->msgs[0] = (ChatMsg){"user", out->buf};
        out->n = 1;
        return RLHF_OK;
    }
    char *s = out->buf + 6;
    int user = 1;
    for (;;) {
        int next_user = 0;
        char *m = (char *)next_marker(s, &next_user);
        char *end = m ? m : s + strlen(s);
        while (s < end && is_space(*s)) s++;
        while (end > s && is_space(end[-1])) end--;
        char *stop = m;
        *end = 0;
        out->msgs[out->n++] = (ChatMsg){user ? "user" : "assistant", s};
        if (!stop) break;
        s = stop + (next_user ? 8 : 12);
        user = next_user;
    }
    /* "...\n\nAssistant:" closing the transcript asks for the answer */
    if (out->n > 1 && !strcmp(out->msgs[out->n - 1].role, "assistant") &&
        !*out->msgs[out->n - 1].content)
        out->n--;
    if (strcmp(out->msgs[out->n - 1].role, "user")) {
        chat_conv_free(out);
        return err_set(err, RLHF_EINVAL,
                       "the prompt's HH transcript ends with an Assistant turn; the last turn "
                       "must be the Human's");
    }
    return RLHF_OK;
}

int chat_join_hh(const ChatMsg *m, int n, char **out, Err *err) {
    StrBuf b = {0};
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        int user = !strcmp(m[i].role, "user");
        if (!user && strcmp(m[i].role, "assistant")) {
            sb_free(&b);
            return err_set(err, RLHF_EINVAL, "an HH transcript has only user and assistant turns");
        }
        rc = sb_printf(&b, "%s%s %s", i ? "\n\n" : "", user ? "Human:" : "Assistant:", m[i].content);
    }
    if (!rc && !b.s) rc = sb_puts(&b, "");
    if (rc) {
        sb_free(&b);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    *out = b.s;
    return RLHF_OK;
}

int chat_render_prompt(const char *template, const char *prompt, char **out, Err *err) {
    ChatConv c;
    *out = NULL;
    int rc = chat_split_hh(prompt, &c, err);
    if (rc) return rc;
    rc = chat_render(template, c.msgs, c.n, 1, out, err);
    chat_conv_free(&c);
    return rc;
}

/* Whether prompt renders to exactly input. */
static int renders_to(const char *template, const char *prompt, const char *input) {
    char *r = NULL;
    int ok = chat_render_prompt(template, prompt, &r, NULL) == RLHF_OK && !strcmp(r, input);
    free(r);
    return ok;
}

/* The text around the placeholders of a rendering: the template's own
 * framing, so an input can be cut back into turns whatever the family. */
static char *render_marked(const char *template, int turns) {
    static const ChatMsg m[3] = {{"user", "\x01"}, {"assistant", "\x02"}, {"user", "\x03"}};
    char *r = NULL;
    return chat_render(template, m, turns, 1, &r, NULL) ? NULL : r;
}

/* Splits input by the framing of a three-turn rendering into an HH transcript. */
static char *split_turns(const char *template, const char *input) {
    char *r3 = render_marked(template, 3);
    char *a = r3 ? strchr(r3, 1) : NULL, *b = a ? strchr(a, 2) : NULL, *c = b ? strchr(b, 3) : NULL;
    if (!c) {
        free(r3);
        return NULL;
    }
    *b = *c = 0;
    const char *sep[2] = {a + 1, b + 1}; /* after a user turn, after an assistant turn */
    size_t pre = (size_t)(a - r3), li = strlen(input), ls = strlen(c + 1);
    char *hh = NULL;
    StrBuf out = {0};
    if (li >= pre + ls && !strncmp(input, r3, pre) && !strcmp(input + li - ls, c + 1)) {
        const char *p = input + pre, *end = input + li - ls;
        int user = 1, fail = 0, turns = 0;
        while (!fail) {
            const char *q = *sep[!user] ? strstr(p, sep[!user]) : NULL;
            if (q && q >= end) q = NULL;
            fail |= sb_printf(&out, "%s%s ", out.len ? "\n\n" : "", user ? "Human:" : "Assistant:");
            fail |= sb_append(&out, p, (size_t)((q ? q : end) - p));
            turns++;
            if (!q) break;
            p = q + strlen(sep[!user]);
            user = !user;
        }
        /* one turn is a plain user message: chat_prompt_of's other path */
        if (!fail && turns > 1) hh = out.s, out.s = NULL;
    }
    sb_free(&out);
    free(r3);
    return hh;
}

char *chat_prompt_of(const char *template, const char *input) {
    /* several turns first: a transcript is what was stored when it renders so */
    char *hh = split_turns(template, input);
    if (hh && renders_to(template, hh, input)) return hh;
    free(hh);
    char *r1 = render_marked(template, 1), *mark = r1 ? strchr(r1, 1) : NULL, *p = NULL;
    if (mark) {
        size_t pre = (size_t)(mark - r1), post = strlen(mark + 1), li = strlen(input);
        if (li >= pre + post && !strncmp(input, r1, pre) && !strcmp(input + li - post, mark + 1))
            p = strndup(input + pre, li - pre - post);
        if (p && !renders_to(template, p, input)) free(p), p = NULL;
    }
    free(r1);
    return p;
}
