/* Internal interface of the Hugging Face tokenizer.json support:
 * tok_hf_load.c builds the model (vocabulary, merges, added tokens, decoded
 * pieces, special ids) from the JSON; tok_hf.c encodes and decodes with it;
 * tok_hf_pre.c owns the text stages before it (normalizers and
 * pre-tokenizers). tokenizer.c dispatches to these for a tokenizer.json. */
#ifndef RLHF_TOK_HF_H
#define RLHF_TOK_HF_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct TokHF TokHF;

/* Pieces of text, back to back in one buffer: piece i is s[off[i] .. off[i] + len[i]). */
typedef struct {
    char *s;
    size_t n_s, cap_s;
    size_t *off, *len;
    int n, cap;
} HfPieces;

int hf_pieces_add(HfPieces *p, const char *s, size_t n); /* 0 or RLHF_ENOMEM */
void hf_pieces_clear(HfPieces *p);
void hf_pieces_free(HfPieces *p);

/* A flattened chain of normalizers or pre-tokenizers (Sequence unrolled). */
typedef struct HfChain HfChain;

/* where names the JSON field for messages ("normalizer", "pre_tokenizer").
 * A JSON null gives *out = NULL (no stage). */
int hf_norm_parse(const cJSON *j, const char *where, HfChain **out, Err *err);
int hf_pre_parse(const cJSON *j, const char *where, HfChain **out, Err *err);
/* Whether the chain holds a ByteLevel pre-tokenizer (the model then sees bytes). */
int hf_pre_byte_level(const HfChain *c);
void hf_chain_free(HfChain *c);

/* Per-call scratch (PCRE2 match data, JIT stack): one per encoding call, so a
 * Tokenizer is shared by threads without locks on these. */
typedef struct HfScratch HfScratch;
HfScratch *hf_scratch_new(void);
void hf_scratch_free(HfScratch *s);

/* Normalizes s[0..n) into out (replaced). NULL chain: a copy. */
int hf_norm_apply(const HfChain *c, HfScratch *sc, const char *s, size_t n, HfPieces *out);
/* Pre-tokenizes the single piece in *io into pieces, in place. at_start: the
 * segment begins the text (Metaspace's prepend_scheme "first"). */
int hf_pre_apply(const HfChain *c, HfScratch *sc, HfPieces *io, int at_start);

/* The GPT-2 byte-to-character map: byte b is the codepoint hf_byte_char(b). */
int hf_byte_char(int b);
/* 1 when s is exactly one valid UTF-8 character (Metaspace's replacement, a char in HF). */
int hf_one_char(const char *s);

/* ---- the model's tables, shared by tok_hf_load.c (which builds them) and
 * tok_hf.c (which encodes and decodes with them) ---- */

enum { K_NORMAL, K_SPECIAL, K_ADDED };

typedef struct {
    int id, special, lstrip, rstrip, single_word;
    const char *s; /* the token's text (in TokHF's blob) */
    size_t len;
} Added;

/* Per-word memo of the model's output: words repeat, merging them is the cost. */
typedef struct {
    uint32_t hash, klen, nids;
    size_t off; /* key bytes then nids ints in arena */
} CacheEnt;

struct TokHF {
    int n_vocab, max_len;
    char *blob; /* token texts (vocabulary form), each NUL-terminated */
    size_t *off;
    int *len;
    char *dblob; /* decoded pieces */
    size_t *doff;
    int *dlen;
    unsigned char *kind;
    int *table; /* text -> id + 1, model vocabulary and added tokens */
    uint32_t mask;
    uint64_t *mkey; /* merges: (left id, right id) -> rank, merged id */
    int *mrank, *mnew;
    uint32_t mmask;
    int byte_level, byte_fallback, fuse_unk, ignore_merges, unk;
    int byte_tok[256]; /* byte-level: the token of each byte's character; else <0xNN> */
    HfChain *norm, *pre;
    Added *added;
    int n_added;
    int *first[256], n_first[256]; /* added tokens by first byte, longest first */
    int prefix[8], n_prefix, suffix[8], n_suffix;
    int bos, eos, *stop, n_stop;
    int strip_start, strip_stop; /* spaces the decoder drops at the start / end */
    char *src[4]; /* the texts it was built from (tokenizer.json, 3 configs), to embed */
    size_t src_len[4];
    pthread_mutex_t lock;
    CacheEnt *cache;
    uint32_t cmask, cn;
    char *arena;
    size_t arena_n, arena_cap;
};

static inline uint32_t hf_fnv(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static inline uint32_t hf_mhash(uint64_t k) {
    k *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(k >> 32);
}

/* The id whose text is s[0..n) (model vocabulary or added token), or -1. */
int hf_vocab_find(const TokHF *h, const char *s, size_t n);

#endif

/* ---- the model (tok_hf.c); tokenizer.c wraps these behind Tokenizer ---- */

/* path: a tokenizer.json file or a directory holding one (and maybe
 * tokenizer_config.json, generation_config.json, config.json). */
int tokhf_load(const char *path, TokHF **out, Err *err);
/* The same from a tokenizer.json text and, optionally, the three config texts
 * (NULL when absent); name is the file name errors start with. */
int tokhf_load_mem(const char *json, size_t len, const char *name, const char *tok_config,
                   const char *gen_config, const char *model_config, TokHF **out, Err *err);
void tokhf_free(TokHF *h);
/* The texts it was loaded from, to embed in a checkpoint (malloc'ed), and back. */
int tokhf_to_bytes(const TokHF *h, unsigned char **out, size_t *len, Err *err);
int tokhf_from_bytes(const void *bytes, size_t len, TokHF **out, Err *err);
/* Encodes into a malloc'ed array *ids of *n ids (flags: TOK_ADD_BOS, ...). */
int tokhf_encode(const TokHF *h, const char *text, size_t len, int flags, int **ids, int *n,
                 Err *err);
int tokhf_vocab_size(const TokHF *h);
int tokhf_max_token_length(const TokHF *h);
int tokhf_bos(const TokHF *h);
int tokhf_eos(const TokHF *h);
int tokhf_is_stop(const TokHF *h, int id);
int tokhf_is_special(const TokHF *h, int id);
const char *tokhf_raw_piece(const TokHF *h, int id, size_t *len);
const char *tokhf_piece(const TokHF *h, int prev, int id, size_t *len);
int tokhf_decode(const TokHF *h, const int *ids, int n, char **out, size_t *out_len, Err *err);
