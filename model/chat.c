/* Rendering the recognised chat-template families (see chat.h) and the
 * stored form "chat:FAMILY [bos=X] [eos=X]". Each renderer follows its
 * template's Jinja branch for the roles system/user/assistant without tools,
 * byte for byte (tests/e2e/t_chat_template.sh compares with the real
 * templates). */
#include "model/chat_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"

#define QWEN25_SYSTEM "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
#define SMOLLM2_SYSTEM "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

/* bos/eos: the usual tokens where the family's template uses them, else NULL */
const ChatFamilyInfo chat_families[] = {
    {CHAT_CHATML, "chatml", NULL, NULL},
    {CHAT_QWEN25, "qwen2.5", NULL, NULL},
    {CHAT_QWEN3, "qwen3", NULL, NULL},
    {CHAT_SMOLLM2, "smollm2", NULL, NULL},
    {CHAT_LLAMA3, "llama3", "<|begin_of_text|>", NULL},
    {CHAT_LLAMA31, "llama3.1", "<|begin_of_text|>", NULL},
    {CHAT_LLAMA2, "llama2", "<s>", "</s>"},
    {CHAT_MISTRAL, "mistral", "<s>", "</s>"},
    {CHAT_ZEPHYR, "zephyr", NULL, "</s>"},
    {0, NULL, NULL, NULL},
};

int chat_is_template(const char *t) {
    return t && strncmp(t, CHAT_PREFIX, strlen(CHAT_PREFIX)) == 0;
}

/* ---- the stored form ------------------------------------------------------------- */

static int put_escaped(StrBuf *b, const char *s) {
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++)
        rc = (*p <= ' ' || *p == '%' || *p == 0x7f) ? sb_printf(b, "%%%02X", *p)
                                                     : sb_append(b, (const char *)p, 1);
    return rc;
}

int chat_format(int family, const char *bos, const char *eos, char **out, Err *err) {
    const ChatFamilyInfo *f = NULL;
    for (int i = 0; chat_families[i].name; i++)
        if (chat_families[i].family == family) f = &chat_families[i];
    StrBuf b = {0};
    int rc = f ? sb_printf(&b, CHAT_PREFIX "%s", f->name) : RLHF_EINVAL;
    /* a token is kept only where the family uses it and the model's differs */
    if (!rc && f->bos && bos && strcmp(bos, f->bos)) {
        rc = sb_puts(&b, " bos=");
        if (!rc) rc = put_escaped(&b, bos);
    }
    if (!rc && f->eos && eos && strcmp(eos, f->eos)) {
        rc = sb_puts(&b, " eos=");
        if (!rc) rc = put_escaped(&b, eos);
    }
    if (rc) {
        sb_free(&b);
        return err_set(err, rc, rc == RLHF_ENOMEM ? "out of memory" : "unknown chat family");
    }
    *out = b.s;
    return RLHF_OK;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Copies the value at s (up to a space) into a new string, decoding %XX. */
static int unescape(const char *s, size_t n, char **out) {
    char *v = malloc(n + 1);
    if (!v) return RLHF_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1, lo = hi >= 0 ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || !(hi || lo)) {
                free(v);
                return RLHF_EINVAL;
            }
            v[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            v[k++] = s[i];
        }
    }
    v[k] = 0;
    *out = v;
    return RLHF_OK;
}

void chat_spec_free(ChatSpec *s) {
    free(s->bos_own);
    free(s->eos_own);
    memset(s, 0, sizeof *s);
}

int chat_parse(const char *t, ChatSpec *s, Err *err) {
    memset(s, 0, sizeof *s);
    if (!chat_is_template(t))
        return err_set(err, RLHF_EINVAL, "not a chat template (they start with \"" CHAT_PREFIX "\")");
    const char *p = t + strlen(CHAT_PREFIX);
    size_t nl = strcspn(p, " ");
    const ChatFamilyInfo *f = NULL;
    for (int i = 0; chat_families[i].name; i++)
        if (strlen(chat_families[i].name) == nl && !strncmp(p, chat_families[i].name, nl))
            f = &chat_families[i];
    /* 3.2 uses 3.1's template */
    if (!f && nl == 8 && !strncmp(p, "llama3.2", 8)) f = &chat_families[5];
    if (!f) {
        StrBuf names = {0};
        for (int i = 0; chat_families[i].name; i++)
            sb_printf(&names, "%s%s", i ? ", " : "", chat_families[i].name);
        err_set(err, RLHF_EINVAL, "chat template '%.*s': unknown family (known: %s)", (int)nl, p,
                names.s ? names.s : "");
        sb_free(&names);
        return RLHF_EINVAL;
    }
    s->family = f->family;
    s->name = f->name;
    s->bos = f->bos ? f->bos : "";
    s->eos = f->eos ? f->eos : "";
    p += nl;
    int rc = RLHF_OK;
    while (!rc && *p == ' ') {
        p++;
        size_t n = strcspn(p, " ");
        char **own = !strncmp(p, "bos=", 4) ? &s->bos_own : !strncmp(p, "eos=", 4) ? &s->eos_own : NULL;
        if (!own || *own) {
            rc = err_set(err, RLHF_EINVAL, "chat template '%s': unknown or repeated field '%.*s'", t,
                         (int)n, p);
            break;
        }
        rc = unescape(p + 4, n - 4, own);
        if (rc) err_set(err, rc, "chat template '%s': bad %%XX escape in '%.*s'", t, (int)n, p);
        p += n;
    }
    if (!rc && *p) rc = err_set(err, RLHF_EINVAL, "chat template '%s': stray text '%s'", t, p);
    if (rc) {
        chat_spec_free(s);
        return rc;
    }
    if (s->bos_own) s->bos = s->bos_own;
    if (s->eos_own) s->eos = s->eos_own;
    return RLHF_OK;
}

int chat_template_check(const char *t, Err *err) {
    ChatSpec s;
    int rc = chat_parse(t, &s, err);
    chat_spec_free(&s);
    return rc;
}

/* ---- text helpers as the templates' filters behave ---------------------------------- */

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Appends s[0..n) with characters of set removed from the left and/or right:
 * Jinja's trim / Python's strip() (ASCII whitespace here; the Unicode spaces
 * Python also strips are kept) and Qwen3's strip('\n'). */
static int put_stripped(StrBuf *b, const char *s, size_t n, int left, int right, int only_nl) {
    size_t i = 0;
    while (left && i < n && (only_nl ? s[i] == '\n' : is_space(s[i]))) i++;
    while (right && n > i && (only_nl ? s[n - 1] == '\n' : is_space(s[n - 1]))) n--;
    return sb_append(b, s + i, n - i);
}

static int role_is(const ChatMsg *m, const char *r) {
    return strcmp(m->role, r) == 0;
}

/* ---- the families ---------------------------------------------------------------------- */

static int chatml_block(StrBuf *b, const char *role, const char *content) {
    return sb_printf(b, "<|im_start|>%s\n%s<|im_end|>\n", role, content);
}

static int render_chatml(const ChatSpec *s, const ChatMsg *m, int n, StrBuf *b) {
    int rc = 0, first = 0;
    if (s->family == CHAT_QWEN25) {
        rc = role_is(&m[0], "system") ? chatml_block(b, "system", m[0].content)
                                      : chatml_block(b, "system", QWEN25_SYSTEM);
        first = role_is(&m[0], "system");
    } else if (s->family == CHAT_SMOLLM2 && !role_is(&m[0], "system")) {
        rc = chatml_block(b, "system", SMOLLM2_SYSTEM);
    }
    for (int i = first; i < n && !rc; i++) rc = chatml_block(b, m[i].role, m[i].content);
    return rc;
}

/* Qwen3: prior assistant turns lose their <think> block; turns after the last
 * user query keep (or, the last, get) one. */
static int render_qwen3(const ChatMsg *m, int n, StrBuf *b) {
    int rc = 0, last_query = n - 1;
    if (role_is(&m[0], "system")) rc = chatml_block(b, "system", m[0].content);
    for (int i = n - 1; i >= 0; i--) {
        const char *c = m[i].content;
        size_t lc = strlen(c);
        int wrapped = !strncmp(c, "<tool_response>", 15) && lc >= 16 &&
                      !strcmp(c + lc - 16, "</tool_response>");
        if (role_is(&m[i], "user") && !wrapped) {
            last_query = i;
            break;
        }
    }
    for (int i = 0; i < n && !rc; i++) {
        if (role_is(&m[i], "user") || (role_is(&m[i], "system") && i > 0)) {
            rc = chatml_block(b, m[i].role, m[i].content);
            continue;
        }
        if (!role_is(&m[i], "assistant")) continue;
        const char *c = m[i].content, *content = c, *reason = "", *end = NULL;
        size_t lcontent = strlen(c), lreason = 0;
        const char *close = strstr(c, "</think>");
        if (close) {
            /* content: after the last </think>, less leading newlines */
            for (const char *q = close; q; q = strstr(q + 1, "</think>")) end = q;
            content = end + 8;
            while (*content == '\n') content++;
            lcontent = strlen(content);
            /* reasoning: before the first </think>, after the last <think> there */
            size_t before = (size_t)(close - c);
            while (before && c[before - 1] == '\n') before--;
            reason = c;
            for (const char *q = c; (q = strstr(q, "<think>")) && q + 7 <= c + before; q++)
                reason = q + 7;
            lreason = (size_t)(c + before - reason);
            while (lreason && *reason == '\n') reason++, lreason--;
        }
        rc = sb_puts(b, "<|im_start|>assistant\n");
        if (!rc && i > last_query && (i == n - 1 || lreason)) {
            rc = sb_puts(b, "<think>\n");
            if (!rc) rc = put_stripped(b, reason, lreason, 1, 1, 1);
            if (!rc) rc = sb_puts(b, "\n</think>\n\n");
            if (!rc) rc = put_stripped(b, content, lcontent, 1, 0, 1);
        } else if (!rc) {
            rc = sb_append(b, content, lcontent);
        }
        if (!rc) rc = sb_puts(b, "<|im_end|>\n");
    }
    return rc;
}

static int llama3_block(StrBuf *b, const char *role, const char *content) {
    int rc = sb_printf(b, "<|start_header_id|>%s<|end_header_id|>\n\n", role);
    if (!rc) rc = put_stripped(b, content, strlen(content), 1, 1, 0);
    if (!rc) rc = sb_puts(b, "<|eot_id|>");
    return rc;
}

static int render_llama3(const ChatSpec *s, const ChatMsg *m, int n, StrBuf *b) {
    int rc = sb_puts(b, s->bos), first = 0;
    if (!rc && s->family == CHAT_LLAMA31) {
        rc = sb_puts(b, "<|start_header_id|>system<|end_header_id|>\n\n"
                        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n");
        if (!rc && role_is(&m[0], "system"))
            rc = put_stripped(b, m[0].content, strlen(m[0].content), 1, 1, 0), first = 1;
        if (!rc) rc = sb_puts(b, "<|eot_id|>");
    }
    for (int i = first; i < n && !rc; i++) rc = llama3_block(b, m[i].role, m[i].content);
    return rc;
}

/* Llama 2 and Mistral: user and assistant turns must alternate, user first
 * (the templates raise otherwise). */
static int render_inst(const ChatSpec *s, const ChatMsg *m, int n, StrBuf *b, Err *err) {
    int first = s->family == CHAT_LLAMA2 && role_is(&m[0], "system");
    int rc = s->family == CHAT_MISTRAL ? sb_puts(b, s->bos) : 0;
    for (int i = first, j = 0; i < n && !rc; i++, j++) {
        if (s->family == CHAT_MISTRAL && role_is(&m[i], "system"))
            return err_set(err, RLHF_EINVAL, "mistral template: there is no system role");
        if (role_is(&m[i], "user") != (j % 2 == 0))
            return err_set(err, RLHF_EINVAL,
                           "%s template: conversation roles must alternate user/assistant/...",
                           s->name);
        if (s->family == CHAT_MISTRAL) {
            if (role_is(&m[i], "user"))
                rc = sb_printf(b, "[INST] %s [/INST]", m[i].content);
            else if (role_is(&m[i], "assistant"))
                rc = sb_printf(b, "%s%s ", m[i].content, s->eos);
            else
                return err_set(err, RLHF_EINVAL,
                               "mistral template: only user and assistant roles are supported");
            continue;
        }
        StrBuf c = {0};
        if (j == 0 && first) rc = sb_printf(&c, "<<SYS>>\n%s\n<</SYS>>\n\n", m[0].content);
        if (!rc) rc = sb_puts(&c, m[i].content);
        if (!rc && role_is(&m[i], "user")) {
            rc = sb_printf(b, "%s[INST] ", s->bos);
            if (!rc) rc = put_stripped(b, c.s, c.len, 1, 1, 0);
            if (!rc) rc = sb_puts(b, " [/INST]");
        } else if (!rc && role_is(&m[i], "assistant")) {
            rc = sb_puts(b, " ");
            if (!rc) rc = put_stripped(b, c.s, c.len, 1, 1, 0);
            if (!rc) rc = sb_printf(b, " %s", s->eos);
        }
        sb_free(&c);
    }
    return rc;
}

static int render_zephyr(const ChatSpec *s, const ChatMsg *m, int n, int agp, StrBuf *b) {
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        rc = sb_printf(b, "<|%s|>\n%s%s\n", m[i].role, m[i].content, s->eos);
        if (!rc && i == n - 1 && agp) rc = sb_puts(b, "<|assistant|>\n");
    }
    return rc;
}

int chat_render(const char *template, const ChatMsg *msgs, int n, int agp, char **out, Err *err) {
    *out = NULL;
    if (n < 1) return err_set(err, RLHF_EINVAL, "a conversation needs at least one message");
    for (int i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content ||
            !(role_is(&msgs[i], "system") || role_is(&msgs[i], "user") ||
              role_is(&msgs[i], "assistant")))
            return err_set(err, RLHF_EINVAL,
                           "message %d: role \"%s\" (chat templates render system, user and "
                           "assistant)",
                           i, msgs[i].role ? msgs[i].role : "(none)");
    ChatSpec s;
    int rc = chat_parse(template, &s, err);
    if (rc) return rc;
    StrBuf b = {0};
    switch (s.family) {
    case CHAT_QWEN3: rc = render_qwen3(msgs, n, &b); break;
    case CHAT_LLAMA3:
    case CHAT_LLAMA31: rc = render_llama3(&s, msgs, n, &b); break;
    case CHAT_LLAMA2:
    case CHAT_MISTRAL: rc = render_inst(&s, msgs, n, &b, err); break;
    case CHAT_ZEPHYR: rc = render_zephyr(&s, msgs, n, agp, &b); break;
    default: rc = render_chatml(&s, msgs, n, &b); break;
    }
    if (!rc && agp) {
        if (s.family <= CHAT_SMOLLM2) rc = sb_puts(&b, "<|im_start|>assistant\n");
        else if (s.family <= CHAT_LLAMA31)
            rc = sb_puts(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        /* llama2 and mistral end a user turn with [/INST]; zephyr added its own */
    }
    if (!rc && !b.s) rc = sb_puts(&b, "");
    chat_spec_free(&s);
    if (rc) {
        sb_free(&b);
        return rc == RLHF_ENOMEM ? err_set(err, rc, "out of memory") : rc;
    }
    *out = b.s;
    return RLHF_OK;
}
