/* For unit tests: a tokenizer of <unk> <s> </s> and the 256 byte tokens, one
 * token per byte, so lengths and ids are known without training one. */
#ifndef RLHF_TEST_BYTE_TOKENIZER_H
#define RLHF_TEST_BYTE_TOKENIZER_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "model/tokenizer.h"

static inline Tokenizer *byte_tokenizer(void) {
    const char *pieces[259];
    size_t lens[259];
    float scores[259];
    static char bytes[256][8];
    pieces[0] = "<unk>", pieces[1] = "\n<s>\n", pieces[2] = "\n</s>\n";
    for (int i = 0; i < 256; i++) {
        snprintf(bytes[i], sizeof bytes[i], "<0x%02X>", i);
        pieces[3 + i] = bytes[i];
    }
    for (int i = 0; i < 259; i++)
        lens[i] = strlen(pieces[i]), scores[i] = 0;
    Tokenizer *t = NULL;
    Err err = {0};
    cr_assert_eq(tok_build(259, pieces, lens, scores, &t, &err), 0, "%s", err.msg);
    return t;
}

#endif
