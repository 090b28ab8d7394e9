/* Shared between model/chat*.c: the families and a parsed stored template. */
#ifndef RLHF_MODEL_CHAT_IMPL_H
#define RLHF_MODEL_CHAT_IMPL_H

#include "model/chat.h"

/* ChatML-based first, then the Llama 3 ones (chat_render's order relies on it) */
enum {
    CHAT_CHATML = 1,
    CHAT_QWEN25,
    CHAT_QWEN3,
    CHAT_SMOLLM2,
    CHAT_LLAMA3,
    CHAT_LLAMA31,
    CHAT_LLAMA2,
    CHAT_MISTRAL,
    CHAT_ZEPHYR,
};

typedef struct ChatFamilyInfo {
    int family;
    const char *name;
    const char *bos, *eos; /* the usual tokens where the template uses them, else NULL */
} ChatFamilyInfo;

extern const ChatFamilyInfo chat_families[];

typedef struct ChatSpec {
    int family;
    const char *name;
    const char *bos, *eos;  /* never NULL ("" where unused) */
    char *bos_own, *eos_own; /* owned overrides */
} ChatSpec;

int chat_parse(const char *t, ChatSpec *s, Err *err);
void chat_spec_free(ChatSpec *s);
/* The stored form of a family with the model's tokens (NULL: the usual). */
int chat_format(int family, const char *bos, const char *eos, char **out, Err *err);

#endif
