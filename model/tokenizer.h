/* The tokenizer: two kinds behind one opaque type. Hugging Face tokenizer.json
 * (BPE, byte-level or sentencepiece-style; model/tok_hf*.c) and llama2.c's
 * tokenizer.bin format and encoding rules (codepoint
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

/* Loads a tokenizer.bin; refuses truncated or malformed files with a message.
 * A directory or a path ending in .json goes to tok_hf_load. */
int tok_load(const char *path, Tokenizer **out, Err *err);
/* Loads a Hugging Face tokenizer: path is a model directory (tokenizer.json,
 * and when present tokenizer_config.json, generation_config.json, config.json
 * for the bos/eos tokens, add_bos_token and the extra stop ids) or a
 * tokenizer.json file (its directory's configs are read too). Model BPE only;
 * an unsupported type or field is an error naming the file and the field. */
int tok_hf_load(const char *path, Tokenizer **out, Err *err);
/* 1 for a tokenizer.json tokenizer, 0 for llama2.c's kind. */
int tok_is_hf(const Tokenizer *t);
/* The same from bytes in memory (a tokenizer embedded in a checkpoint: either
 * kind, as tok_to_bytes wrote it). */
int tok_load_mem(const void *bytes, size_t len, Tokenizer **out, Err *err);
/* Builds a tokenizer from n pieces (copied) and their scores. */
int tok_build(int n, const char *const *pieces, const size_t *lens, const float *scores,
              Tokenizer **out, Err *err);
/* Serialises to llama2.c layout, or a tokenizer.json tokenizer to the texts it
 * was loaded from behind a magic (for checkpoints; tok_load_mem reads both);
 * *out is malloc'ed and owned by the caller. */
int tok_to_bytes(const Tokenizer *t, unsigned char **out, size_t *len, Err *err);
/* A sha256 hex digest of what the tokenizer means: its pieces and scores, or
 * for the HF kind the texts it was built from, plus its BOS/EOS ids and its
 * stop and special ids. Equal digests: the same ids for the same text. */
int tok_digest(const Tokenizer *t, char out[65], Err *err);
/* RLHF_EINVAL naming a_from and b_from (file names, "--ref X") when a and b
 * have different digests. */
int tok_require_same(const Tokenizer *a, const char *a_from, const Tokenizer *b, const char *b_from,
                     Err *err);
/* Writes tokenizer.bin atomically (temporary file, fsync, rename); llama2.c's
 * kind only. */
int tok_save(const Tokenizer *t, const char *path, Err *err);
void tok_free(Tokenizer *t);

int tok_vocab_size(const Tokenizer *t);
int tok_max_token_length(const Tokenizer *t);
/* The tokenizer's BOS / EOS ids (llama2.c: 1 and 2); -1 when it has none (Qwen
 * has no BOS). */
int tok_bos(const Tokenizer *t);
int tok_eos(const Tokenizer *t);
/* 1 when sampling id ends a sample: EOS and every end-of-text / end-of-turn id
 * (generation_config.json's eos_token_id list, tokenizer_config's eos_token,
 * and <|im_end|>, <|eot_id|>, <|endoftext|>, <|end_of_text|>, </s> when they
 * are special tokens). */
int tok_is_stop(const Tokenizer *t, int id);
/* 1 for a special token (BOS, EOS, <|im_start|>...): no text of its own. */
int tok_is_special(const Tokenizer *t, int id);
float tok_score(const Tokenizer *t, int id);
/* The stored piece of a token (not NUL-terminated when it holds a NUL). */
const char *tok_raw_piece(const Tokenizer *t, int id, size_t *len);
/* Error unless the tokenizer fits a model of n tokens: llama2.c's kind exactly
 * n; a tokenizer.json at most n (models pad their embeddings, Qwen to 151936). */
int tok_check_vocab(const Tokenizer *t, int n, Err *err);

/* Encodes len bytes of text (any bytes; invalid UTF-8 goes through byte fallback).
 * bos: prepend <s> and, as sentencepiece/llama2.c do, a dummy-prefix " " when
 * the text is not empty. The decoder drops that space after <s>, so
 * decode(encode(x)) == x for every x and every bos/eos. Without bos no dummy
 * prefix is added (llama2.c always encodes with bos). eos: append </s>.
 * ids must hold tok_encode_cap(len) entries (cap); *n receives the count. */
int tok_encode(const Tokenizer *t, const char *text, size_t len, int bos, int eos, int *ids,
               int cap, int *n, Err *err);

/* Encoding flags. TOK_ADD_BOS: the special tokens the tokenizer's
 * post-processor adds (HF add_special_tokens=True: BOS for Llama 2/3, nothing
 * for Qwen; add_bos_token in tokenizer_config.json overrides); for llama2.c <s>
 * and the dummy prefix as tok_encode's bos. TOK_ADD_EOS: append EOS.
 * TOK_SPECIAL: special tokens written in the text ("<|im_end|>") become their
 * ids, as HF does by default (use it on a rendered chat template); without it
 * their text is encoded as ordinary text. Non-special added tokens are always
 * matched. llama2.c's kind ignores TOK_SPECIAL.
 * Text is bytes: invalid UTF-8 goes through the byte map (byte-level) or byte
 * fallback (sentencepiece-style), so no byte is lost. */
enum { TOK_ADD_BOS = 1, TOK_ADD_EOS = 2, TOK_SPECIAL = 4 };
int tok_encode_flags(const Tokenizer *t, const char *text, size_t len, int flags, int *ids, int cap,
                     int *n, Err *err);
/* A rendered prompt (a template filled in): special tokens written in it are
 * recognised and BOS is added as the tokenizer adds it, once: a chat template
 * that writes its own BOS text (Llama 3's <|begin_of_text|>, Llama 2's <s>)
 * does not get a second, as HF's apply_chat_template encodes it. */
int tok_encode_prompt(const Tokenizer *t, const char *text, size_t len, int *ids, int cap, int *n,
                      Err *err);
/* Upper bound of the encoders' output for len bytes (either kind: the
 * normalizers of real tokenizer.json files, NFC and the sentencepiece Prepend,
 * can lengthen text). A pathological NFKC expansion beyond it is an error. */
static inline int tok_encode_cap(size_t len) {
    return 3 * (int)len + 8;
}

/* The text token id contributes after token prev: byte tokens give their raw byte,
 * a leading space is dropped right after BOS (or at the start, prev < 0, for a
 * tokenizer.json whose decoder strips it), BOS/EOS and special tokens give "".
 * Byte-level tokens may be partial UTF-8: the raw bytes are returned. */
const char *tok_piece(const Tokenizer *t, int prev, int id, size_t *len);
/* Decodes a sequence (BOS/EOS and special tokens dropped, like HF's
 * skip_special_tokens=True; invalid UTF-8 from byte tokens kept as bytes) into a NUL-terminated
 * malloc'ed string; out_len may be NULL. Ids out of range are an error. */
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
