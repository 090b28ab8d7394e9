/* The tokenizer: llama2.c's tokenizer.bin format and encoding rules (codepoint
 * pieces, byte fallback <0xNN>, greedy merging by score, BOS/EOS), plus a BPE
 * trainer that writes the same format. A Tokenizer owns all its memory.
 *
 * File layout (llama2.c, native endianness): int max_token_length, then for each
 * token: float score, int len, len bytes. The vocabulary size is not stored: it is
 * the number of records, so the file must end exactly after the last one.
 * By convention id 0 is <unk>, 1 is <s> (BOS), 2 is </s> (EOS), 3..258 are the
 * byte tokens <0x00>..<0xFF>. */
#ifndef RLHF_TOKENIZER_H
#define RLHF_TOKENIZER_H

#include <stddef.h>

#include "util/err.h"

typedef struct Tokenizer Tokenizer;

enum { TOK_UNK = 0, TOK_BOS = 1, TOK_EOS = 2, TOK_MAX_VOCAB = 1 << 20 };

/* Loads a tokenizer.bin; refuses truncated or malformed files with a message. */
int tok_load(const char *path, Tokenizer **out, Err *err);
/* The same from bytes in memory (a tokenizer embedded in a checkpoint). */
int tok_load_mem(const void *bytes, size_t len, Tokenizer **out, Err *err);
/* Builds a tokenizer from n pieces (copied) and their scores. */
int tok_build(int n, const char *const *pieces, const size_t *lens, const float *scores,
              Tokenizer **out, Err *err);
/* Serialises to llama2.c layout; *out is malloc'ed and owned by the caller. */
int tok_to_bytes(const Tokenizer *t, unsigned char **out, size_t *len, Err *err);
/* Writes tokenizer.bin atomically (temporary file, fsync, rename). */
int tok_save(const Tokenizer *t, const char *path, Err *err);
void tok_free(Tokenizer *t);

int tok_vocab_size(const Tokenizer *t);
int tok_max_token_length(const Tokenizer *t);
static inline int tok_bos(const Tokenizer *t) {
    (void)t;
    return TOK_BOS;
}
static inline int tok_eos(const Tokenizer *t) {
    (void)t;
    return TOK_EOS;
}
float tok_score(const Tokenizer *t, int id);
/* The stored piece of a token (not NUL-terminated when it holds a NUL). */
const char *tok_raw_piece(const Tokenizer *t, int id, size_t *len);
/* Error unless the tokenizer's vocabulary has exactly n tokens (checkpoint check). */
int tok_check_vocab(const Tokenizer *t, int n, Err *err);

/* Encodes len bytes of text (any bytes; invalid UTF-8 goes through byte fallback).
 * bos: prepend <s> and, as sentencepiece/llama2.c do, a dummy-prefix " " when
 * the text is not empty. The decoder drops that space after <s>, so
 * decode(encode(x)) == x for every x and every bos/eos. Without bos no dummy
 * prefix is added (llama2.c always encodes with bos). eos: append </s>.
 * ids must hold at least len + 3 entries (cap); *n receives the count. */
int tok_encode(const Tokenizer *t, const char *text, size_t len, int bos, int eos, int *ids,
               int cap, int *n, Err *err);
/* Upper bound of tok_encode's output for len bytes. */
static inline int tok_encode_cap(size_t len) {
    return (int)len + 3;
}

/* The text token id contributes after token prev: byte tokens give their raw byte,
 * a leading space is dropped right after BOS, BOS/EOS give "". */
const char *tok_piece(const Tokenizer *t, int prev, int id, size_t *len);
/* Decodes a sequence (BOS/EOS dropped) into a NUL-terminated malloc'ed string;
 * out_len may be NULL. Ids out of range are an error. */
int tok_decode(const Tokenizer *t, const int *ids, int n, char **out, size_t *out_len, Err *err);

/* BPE training. Base symbols are the corpus's most frequent codepoints (every
 * printable ASCII character is always included), then pair merges in order of
 * frequency within pre-tokenized chunks (words with their leading space, digit
 * runs, punctuation runs, whitespace runs). Merge i gets score -i, so greedy
 * encoding by score applies the merges in the order they were learned.
 * vocab_size must be > 259 + 1. progress (may be NULL) is called now and then. */
typedef void (*TokProgressFn)(void *ctx, int merges_done, int merges_total);
int tok_train(const char *const *texts, const size_t *lens, int n_texts, int vocab_size,
              TokProgressFn progress, void *ctx, Tokenizer **out, Err *err);

#endif
