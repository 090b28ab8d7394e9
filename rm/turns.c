/* Stored prompts as conversation turns (see turns.h). */
#include "rm/turns.h"
#include "rm/export.h"

#include <string.h>

int rm_prompt_has_system(const char *prompt) {
    const char *h = strstr(prompt, RM_HUMAN), *a = strstr(prompt, RM_ASSISTANT);
    return h && h != prompt && (!a || h < a);
}

int rm_prompt_transcript(StrBuf *b, const char *prompt) {
    int whole = rm_prompt_has_system(prompt) || strncmp(prompt, RM_HUMAN, strlen(RM_HUMAN)) == 0;
    int rc = whole ? 0 : sb_puts(b, RM_HUMAN " ");
    return rc ? rc : sb_puts(b, prompt);
}

/* The next marker at or after p; *user tells which. */
static const char *next_marker(const char *p, int *user) {
    const char *h = strstr(p, RM_HUMAN), *a = strstr(p, RM_ASSISTANT);
    *user = h && (!a || h < a);
    return *user ? h : a;
}

static void message(FILE *f, int first, const char *role, const char *s, size_t n) {
    fprintf(f, "%s{\"role\":\"%s\",\"content\":\"", first ? "" : ",", role);
    rm_json_span(f, s, n);
    fputs("\"}", f);
}

/* Whether the turns of prompt end with the user's (else it is one message). */
static int ends_with_user(const char *prompt) {
    int user = !rm_prompt_has_system(prompt), u;
    for (const char *m = prompt; (m = next_marker(m, &u)); m++)
        user = u;
    return user;
}

void rm_write_messages(FILE *f, const char *prompt, const char *answer) {
    putc('[', f);
    if (!ends_with_user(prompt)) {
        message(f, 1, "user", prompt, strlen(prompt));
    } else {
        int first = 1, user = 0;
        const char *role = rm_prompt_has_system(prompt) ? "system" : "user", *s = prompt;
        if (strncmp(prompt, RM_HUMAN, strlen(RM_HUMAN)) == 0) /* a transcript whole */
            role = "user", s = prompt + strlen(RM_HUMAN) + (prompt[strlen(RM_HUMAN)] == ' ');
        for (;;) {
            const char *m = next_marker(s, &user);
            message(f, first, role, s, m ? (size_t)(m - s) : strlen(s));
            first = 0;
            if (!m) break;
            s = m + strlen(user ? RM_HUMAN : RM_ASSISTANT);
            if (*s == ' ') s++;
            role = user ? "user" : "assistant";
        }
    }
    if (answer) message(f, 0, "assistant", answer, strlen(answer));
    putc(']', f);
}
