/* Tokenizer loading, saving, encoding and decoding with llama2.c's tokenizer.bin
 * semantics, and the dispatch to the Hugging Face kind (hf != NULL, tok_hf.c).
 * Owns the Tokenizer struct; training lives in tok_train.c and builds its
 * result through tok_build. */
#include "model/tokenizer.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/hf.h"
#include "model/tok_hf.h"
#include "util/sys.h"
#include "util/text.h"

struct Tokenizer {
    TokHF *hf; /* a tokenizer.json; then nothing below is used */
    int vocab_size, max_token_length;
    float *scores;
    size_t *off; /* piece i is blob[off[i] .. off[i] + len[i]) */
    int *len;
    char *blob;       /* pieces back to back, each followed by a NUL */
    short *byte;      /* byte value of a <0xNN> token, else -1 */
    int byte_id[256]; /* token for byte fallback of each byte value (TOK_UNK if none) */
    int *table;       /* open addressing, id + 1 (0 = empty); control and byte tokens left out */
    /* adj bit (x, y) for ASCII x, y: some mergeable piece holds byte x right
     * before byte y (so a token may span a point between them) */
    unsigned char adj[128 * 128 / 8];
    uint32_t mask;
};

static int hf_wrap(const char *path, const void *bytes, size_t len, Tokenizer **out, Err *err);

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* Token id whose piece is exactly s[0..n), or -1. Control and byte tokens are
 * not found: merging the characters of the text "<s>" must not give BOS. */
static int lookup(const Tokenizer *t, const char *s, size_t n) {
    if (n == 0 || n > (size_t)t->max_token_length) return -1;
    for (uint32_t h = hash_bytes(s, n) & t->mask;; h = (h + 1) & t->mask) {
        int e = t->table[h];
        if (!e) return -1;
        int id = e - 1;
        if ((size_t)t->len[id] == n && memcmp(t->blob + t->off[id], s, n) == 0) return id;
    }
}

static int parse_byte_piece(const char *p, int n) {
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return -1;
    const char *a = strchr(hex, p[3]), *b = strchr(hex, p[4]);
    if (!p[3] || !p[4] || !a || !b) return -1;
    return (int)((a - hex) * 16 + (b - hex));
}

void tok_free(Tokenizer *t) {
    if (!t) return;
    tokhf_free(t->hf);
    free(t->scores);
    free(t->off);
    free(t->len);
    free(t->blob);
    free(t->byte);
    free(t->table);
    free(t);
}

int tok_build(int n, const char *const *pieces, const size_t *lens, const float *scores,
              Tokenizer **out, Err *err) {
    *out = NULL;
    if (n < 3 || n > TOK_MAX_VOCAB)
        return err_set(err, RLHF_EINVAL, "tokenizer: vocabulary of %d tokens (need 3..%d)", n,
                       TOK_MAX_VOCAB);
    Tokenizer *t = calloc(1, sizeof *t);
    if (!t) return err_set(err, RLHF_ENOMEM, "tokenizer: out of memory");
    size_t total = 0;
    int maxlen = 1;
    for (int i = 0; i < n; i++) {
        total += lens[i] + 1;
        if ((int)lens[i] > maxlen) maxlen = (int)lens[i];
    }
    uint32_t cap = 1;
    while (cap < (uint32_t)n * 2)
        cap <<= 1;
    t->vocab_size = n;
    t->max_token_length = maxlen;
    t->scores = malloc(sizeof(float) * n);
    t->off = malloc(sizeof(size_t) * n);
    t->len = malloc(sizeof(int) * n);
    t->blob = malloc(total);
    t->byte = malloc(sizeof(short) * n);
    t->table = calloc(cap, sizeof(int));
    t->mask = cap - 1;
    if (!t->scores || !t->off || !t->len || !t->blob || !t->byte || !t->table) {
        tok_free(t);
        return err_set(err, RLHF_ENOMEM, "tokenizer: out of memory");
    }
    for (int b = 0; b < 256; b++)
        t->byte_id[b] = TOK_UNK;
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(scores[i])) {
            tok_free(t);
            return err_set(err, RLHF_EFORMAT, "tokenizer: token %d has a non-finite score", i);
        }
        t->scores[i] = scores[i];
        t->off[i] = pos;
        t->len[i] = (int)lens[i];
        memcpy(t->blob + pos, pieces[i], lens[i]);
        t->blob[pos + lens[i]] = '\0';
        pos += lens[i] + 1;
        int b = parse_byte_piece(pieces[i], (int)lens[i]);
        t->byte[i] = (short)b;
        if (b >= 0 && t->byte_id[b] == TOK_UNK) t->byte_id[b] = i;
        if (i <= TOK_EOS || b >= 0 || lens[i] == 0) continue;
        for (size_t k = 0; k + 1 < lens[i]; k++) {
            unsigned char x = (unsigned char)pieces[i][k], y = (unsigned char)pieces[i][k + 1];
            if (x < 0x80 && y < 0x80) t->adj[x * 16 + y / 8] |= (unsigned char)(1u << (y % 8));
        }
        if (lookup(t, pieces[i], lens[i]) >= 0) continue; /* duplicate: first id wins */
        uint32_t h = hash_bytes(pieces[i], lens[i]) & t->mask;
        while (t->table[h])
            h = (h + 1) & t->mask;
        t->table[h] = i + 1;
    }
    *out = t;
    return RLHF_OK;
}

int tok_load_mem(const void *bytes, size_t len, Tokenizer **out, Err *err) {
    *out = NULL;
    if (hf_files_is(bytes, len)) return hf_wrap(NULL, bytes, len, out, err);
    if (len >= 8 && memcmp(bytes, HF_FILES_MAGIC, 8) == 0)
        return err_set(err, RLHF_EFORMAT, "embedded tokenizer.json and its configs: truncated or damaged");
    const unsigned char *p = bytes;
    if (len < sizeof(int))
        return err_set(err, RLHF_EFORMAT, "not a tokenizer: %zu bytes, too short for the header",
                       len);
    int maxlen;
    memcpy(&maxlen, p, sizeof maxlen);
    if (maxlen < 1 || maxlen > 65536)
        return err_set(err, RLHF_EFORMAT,
                       "not a tokenizer.bin: max_token_length %d is out of range (1..65536)",
                       maxlen);
    /* first pass: count and validate the records */
    size_t pos = sizeof(int);
    int n = 0;
    while (pos < len) {
        if (len - pos < 8)
            return err_set(
                err, RLHF_EFORMAT,
                "tokenizer truncated: token %d's header at byte %zu needs 8 bytes, %zu left", n,
                pos, len - pos);
        float score;
        int l;
        memcpy(&score, p + pos, 4);
        memcpy(&l, p + pos + 4, 4);
        if (!isfinite(score))
            return err_set(err, RLHF_EFORMAT, "corrupt tokenizer: token %d (byte %zu) has score %g",
                           n, pos, (double)score);
        if (l < 1 || l > maxlen)
            return err_set(err, RLHF_EFORMAT,
                           "corrupt tokenizer: token %d (byte %zu) has length %d, outside 1..%d", n,
                           pos, l, maxlen);
        if (len - pos - 8 < (size_t)l)
            return err_set(err, RLHF_EFORMAT,
                           "tokenizer truncated: token %d needs %d bytes at byte %zu, %zu left", n,
                           l, pos + 8, len - pos - 8);
        pos += 8 + (size_t)l;
        if (++n > TOK_MAX_VOCAB)
            return err_set(err, RLHF_EFORMAT, "corrupt tokenizer: more than %d tokens",
                           TOK_MAX_VOCAB);
    }
    if (n < 3)
        return err_set(err, RLHF_EFORMAT, "tokenizer has %d tokens; need at least <unk>, <s>, </s>",
                       n);
    const char **pieces = malloc(sizeof(char *) * n);
    size_t *lens = malloc(sizeof(size_t) * n);
    float *scores = malloc(sizeof(float) * n);
    int rc = RLHF_OK;
    if (!pieces || !lens || !scores) rc = err_set(err, RLHF_ENOMEM, "tokenizer: out of memory");
    pos = sizeof(int);
    for (int i = 0; !rc && i < n; i++) {
        int l;
        memcpy(&scores[i], p + pos, 4);
        memcpy(&l, p + pos + 4, 4);
        lens[i] = (size_t)l;
        pieces[i] = (const char *)p + pos + 8;
        pos += 8 + (size_t)l;
    }
    if (!rc) rc = tok_build(n, pieces, lens, scores, out, err);
    /* keep the file's max_token_length (llama2.c's buffers are sized from it) */
    if (!rc && maxlen > (*out)->max_token_length) (*out)->max_token_length = maxlen;
    free(pieces);
    free(lens);
    free(scores);
    return rc;
}

/* Wraps a loaded TokHF (path, or embedded bytes when path is NULL). */
static int hf_wrap(const char *path, const void *bytes, size_t len, Tokenizer **out, Err *err) {
    *out = NULL;
    Tokenizer *t = calloc(1, sizeof *t);
    if (!t) return err_set(err, RLHF_ENOMEM, "tokenizer: out of memory");
    int rc = path ? tokhf_load(path, &t->hf, err) : tokhf_from_bytes(bytes, len, &t->hf, err);
    if (rc) {
        free(t);
        return rc;
    }
    t->vocab_size = tokhf_vocab_size(t->hf);
    t->max_token_length = tokhf_max_token_length(t->hf);
    *out = t;
    return RLHF_OK;
}

int tok_hf_load(const char *path, Tokenizer **out, Err *err) {
    return hf_wrap(path, NULL, 0, out, err);
}

int tok_is_hf(const Tokenizer *t) {
    return t->hf != NULL;
}

int tok_load(const char *path, Tokenizer **out, Err *err) {
    char *buf;
    size_t len;
    *out = NULL;
    struct stat st;
    size_t pl = strlen(path);
    if ((stat(path, &st) == 0 && S_ISDIR(st.st_mode)) ||
        (pl >= 5 && strcmp(path + pl - 5, ".json") == 0))
        return tok_hf_load(path, out, err);
    int rc = sys_read_file(path, &buf, &len, err);
    if (rc) return rc;
    rc = tok_load_mem(buf, len, out, err);
    free(buf);
    if (rc) err_prefix(err, "%s: ", path);
    return rc;
}

int tok_digest(const Tokenizer *t, char out[65], Err *err) {
    unsigned char *b = NULL;
    size_t n = 0;
    /* tok_to_bytes holds the pieces and scores (llama2.c's kind) or the source
     * texts with their merges and added tokens (the HF kind); the ids that
     * begin and end a sequence are hashed as well, since two files may agree
     * on pieces yet stop on different ids */
    int rc = tok_to_bytes(t, &b, &n, err);
    if (rc) return rc;
    Sha256 c;
    sha256_init(&c);
    sha256_update(&c, b, n);
    free(b);
    int v = tok_vocab_size(t), ids[3] = {v, tok_bos(t), tok_eos(t)};
    sha256_update(&c, ids, sizeof ids);
    for (int i = 0; i < v; i++) {
        unsigned char f = (unsigned char)(tok_is_stop(t, i) | tok_is_special(t, i) << 1);
        if (f) {
            sha256_update(&c, &i, sizeof i);
            sha256_update(&c, &f, 1);
        }
    }
    unsigned char d[32];
    sha256_final(&c, d);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
    return RLHF_OK;
}

int tok_require_same(const Tokenizer *a, const char *a_from, const Tokenizer *b, const char *b_from,
                     Err *err) {
    char da[65], db[65];
    int rc = tok_digest(a, da, err);
    if (!rc) rc = tok_digest(b, db, err);
    if (!rc && strcmp(da, db) != 0)
        rc = err_set(err, RLHF_EINVAL,
                     "%s and %s use different tokenizers (digest %.12s... vs %.12s...); token ids "
                     "mean what one tokenizer says, so both must come from the same one",
                     a_from, b_from, da, db);
    return rc;
}

int tok_to_bytes(const Tokenizer *t, unsigned char **out, size_t *len, Err *err) {
    *out = NULL;
    if (t->hf) return tokhf_to_bytes(t->hf, out, len, err);
    size_t n = sizeof(int);
    for (int i = 0; i < t->vocab_size; i++)
        n += 8 + (size_t)t->len[i];
    unsigned char *b = malloc(n);
    if (!b) return err_set(err, RLHF_ENOMEM, "tokenizer: out of memory");
    size_t pos = 0;
    memcpy(b, &t->max_token_length, 4);
    pos = 4;
    for (int i = 0; i < t->vocab_size; i++) {
        memcpy(b + pos, &t->scores[i], 4);
        memcpy(b + pos + 4, &t->len[i], 4);
        memcpy(b + pos + 8, t->blob + t->off[i], (size_t)t->len[i]);
        pos += 8 + (size_t)t->len[i];
    }
    *out = b;
    *len = n;
    return RLHF_OK;
}

int tok_save(const Tokenizer *t, const char *path, Err *err) {
    if (t->hf)
        return err_set(err, RLHF_EINVAL,
                       "%s: llama2.c's tokenizer.bin cannot hold a tokenizer.json tokenizer; "
                       "use the tokenizer.json itself",
                       path);
    unsigned char *b;
    size_t n;
    int rc = tok_to_bytes(t, &b, &n, err);
    if (rc) return rc;
    AtomicFile a;
    rc = atomic_open(&a, path, err);
    if (!rc) {
        if (fwrite(b, 1, n, a.f) != n) {
            atomic_abort(&a);
            rc = err_set(err, RLHF_EIO, "%s: write failed", path);
        } else {
            rc = atomic_commit(&a, err);
        }
    }
    free(b);
    return rc;
}

int tok_vocab_size(const Tokenizer *t) {
    return t->vocab_size;
}
int tok_max_token_length(const Tokenizer *t) {
    return t->max_token_length;
}
float tok_score(const Tokenizer *t, int id) {
    if (t->hf) return 0.0f;
    return id >= 0 && id < t->vocab_size ? t->scores[id] : 0.0f;
}

int tok_bos(const Tokenizer *t) {
    return t->hf ? tokhf_bos(t->hf) : TOK_BOS;
}
int tok_eos(const Tokenizer *t) {
    return t->hf ? tokhf_eos(t->hf) : TOK_EOS;
}
int tok_is_stop(const Tokenizer *t, int id) {
    return t->hf ? tokhf_is_stop(t->hf, id) : id == TOK_EOS;
}
int tok_is_special(const Tokenizer *t, int id) {
    return t->hf ? tokhf_is_special(t->hf, id) : id == TOK_BOS || id == TOK_EOS;
}

const char *tok_raw_piece(const Tokenizer *t, int id, size_t *len) {
    if (t->hf) return tokhf_raw_piece(t->hf, id, len);
    if (id < 0 || id >= t->vocab_size) {
        *len = 0;
        return "";
    }
    *len = (size_t)t->len[id];
    return t->blob + t->off[id];
}

int tok_check_vocab(const Tokenizer *t, int n, Err *err) {
    if (t->hf) {
        if (t->vocab_size > n)
            return err_set(err, RLHF_EINVAL,
                           "tokenizer has %d tokens but the model's vocabulary has %d: wrong "
                           "tokenizer",
                           t->vocab_size, n);
        return RLHF_OK;
    }
    if (t->vocab_size != n)
        return err_set(err, RLHF_EINVAL,
                       "tokenizer has %d tokens but the model's vocabulary has %d: wrong tokenizer",
                       t->vocab_size, n);
    return RLHF_OK;
}

/* ---- encoding ---------------------------------------------------------------- */

/* A candidate merge of node l with its right neighbour r into token id. Stale
 * entries are skipped when popped (node versions changed). */
typedef struct {
    float score;
    int l, r, id;
    unsigned vl, vr;
} Cand;

/* llama2.c scans for the highest score and takes the leftmost on ties; node index
 * order is text order, so (score desc, l asc) picks the same pair. */
static int cand_better(const Cand *a, const Cand *b) {
    return a->score > b->score || (a->score == b->score && a->l < b->l);
}

static void heap_push(Cand *h, int *n, Cand c) {
    int i = (*n)++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!cand_better(&c, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static Cand heap_pop(Cand *h, int *n) {
    Cand top = h[0], last = h[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_better(&h[c + 1], &h[c])) c++;
        if (!cand_better(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

typedef struct {
    int *id, *prev, *next;
    unsigned *ver;
    unsigned char *merge; /* 0 for byte-fallback symbols, which never merge */
    Cand *heap;
    int nheap;
    char *buf;
} EncState;

static void try_pair(const Tokenizer *t, EncState *s, int l, int r) {
    if (l < 0 || r < 0 || !s->merge[l] || !s->merge[r]) return;
    size_t a, b;
    const char *pa = tok_raw_piece(t, s->id[l], &a), *pb = tok_raw_piece(t, s->id[r], &b);
    if (a + b > (size_t)t->max_token_length) return;
    memcpy(s->buf, pa, a);
    memcpy(s->buf + a, pb, b);
    int id = lookup(t, s->buf, a + b);
    if (id < 0) return;
    Cand c = {t->scores[id], l, r, id, s->ver[l], s->ver[r]};
    heap_push(s->heap, &s->nheap, c);
}

static void enc_free(EncState *s) {
    free(s->id), free(s->prev), free(s->next), free(s->ver), free(s->merge), free(s->heap);
    free(s->buf);
}

/* Room for nsym symbols; 0 or -1 when out of memory. */
static int enc_reserve(EncState *s, size_t *cap, size_t nsym) {
    if (nsym <= *cap) return 0;
    size_t c = nsym < 256 ? 256 : nsym;
    int *id = realloc(s->id, sizeof(int) * c);
    if (id) s->id = id;
    int *prev = realloc(s->prev, sizeof(int) * c);
    if (prev) s->prev = prev;
    int *next = realloc(s->next, sizeof(int) * c);
    if (next) s->next = next;
    unsigned *ver = realloc(s->ver, sizeof(unsigned) * c);
    if (ver) s->ver = ver;
    unsigned char *merge = realloc(s->merge, c);
    if (merge) s->merge = merge;
    /* each merge pushes at most two candidates; the initial scan one per symbol */
    Cand *heap = realloc(s->heap, sizeof(Cand) * (3 * c + 1));
    if (heap) s->heap = heap;
    if (!id || !prev || !next || !ver || !merge || !heap) return -1;
    *cap = c;
    return 0;
}

/* Encodes one segment (with the dummy-prefix space first when asked) and
 * appends its tokens to ids[*n]. */
static void encode_segment(const Tokenizer *t, EncState *s, const char *text, size_t len, int dummy,
                           int *ids, int *n) {
    int m = 0; /* symbols */
#define PUSH_SYM(tokid, can)                                                                       \
    do {                                                                                           \
        s->id[m] = (tokid);                                                                        \
        s->merge[m] = (unsigned char)(can);                                                        \
        s->ver[m] = 0;                                                                             \
        m++;                                                                                       \
    } while (0)
    if (dummy) {
        int sp = lookup(t, " ", 1);
        if (sp >= 0)
            PUSH_SYM(sp, 1);
        else
            PUSH_SYM(t->byte_id[' '], 0);
    }
    /* codepoints as llama2.c splits them: a lead byte plus up to 3 continuation bytes */
    for (size_t i = 0; i < len;) {
        size_t j = i + 1;
        while (j < len && j - i < 4 && ((unsigned char)text[j] & 0xC0) == 0x80)
            j++;
        int id = lookup(t, text + i, j - i);
        if (id >= 0)
            PUSH_SYM(id, 1);
        else
            for (size_t k = i; k < j; k++)
                PUSH_SYM(t->byte_id[(unsigned char)text[k]], 0);
        i = j;
    }
#undef PUSH_SYM
    for (int i = 0; i < m; i++) {
        s->prev[i] = i - 1;
        s->next[i] = i + 1 < m ? i + 1 : -1;
    }
    s->nheap = 0;
    for (int i = 0; i + 1 < m; i++)
        try_pair(t, s, i, i + 1);
    while (s->nheap > 0) {
        Cand c = heap_pop(s->heap, &s->nheap);
        if (s->ver[c.l] != c.vl || s->ver[c.r] != c.vr || s->next[c.l] != c.r) continue;
        /* merge r into l */
        s->id[c.l] = c.id;
        s->ver[c.l]++;
        s->ver[c.r]++;
        int rn = s->next[c.r];
        s->next[c.l] = rn;
        if (rn >= 0) s->prev[rn] = c.l;
        s->next[c.r] = -2; /* dead */
        try_pair(t, s, s->prev[c.l], c.l);
        try_pair(t, s, c.l, rn);
    }
    for (int i = m > 0 ? 0 : -1; i >= 0; i = s->next[i])
        ids[(*n)++] = s->id[i];
}

int tok_encode(const Tokenizer *t, const char *text, size_t len, int bos, int eos, int *ids,
               int cap, int *n_out, Err *err) {
    return tok_encode_flags(t, text, len, (bos ? TOK_ADD_BOS : 0) | (eos ? TOK_ADD_EOS : 0), ids,
                            cap, n_out, err);
}

static int encode_hf(const Tokenizer *t, const char *text, size_t len, int flags, int *ids, int cap,
                     int *n_out, Err *err) {
    int *v, n;
    int rc = tokhf_encode(t->hf, text, len, flags, &v, &n, err);
    if (rc) return rc;
    if (n > cap)
        rc = err_set(err, RLHF_EINVAL, "tokenizer: output room %d < %d tokens", cap, n);
    else if (n)
        memcpy(ids, v, sizeof(int) * (size_t)n), *n_out = n;
    free(v);
    return rc;
}

int tok_encode_prompt(const Tokenizer *t, const char *text, size_t len, int *ids, int cap, int *n,
                      Err *err) {
    int rc = tok_encode_flags(t, text, len, TOK_ADD_BOS | TOK_SPECIAL, ids, cap, n, err);
    int bos = tok_bos(t);
    if (!rc && bos >= 0 && *n >= 2 && ids[0] == bos && ids[1] == bos) {
        memmove(ids, ids + 1, (size_t)(*n - 1) * sizeof *ids);
        (*n)--;
    }
    return rc;
}

int tok_encode_flags(const Tokenizer *t, const char *text, size_t len, int flags, int *ids, int cap,
                     int *n_out, Err *err) {
    *n_out = 0;
    if (len > (size_t)INT32_MAX / 3 - 8)
        return err_set(err, RLHF_EINVAL, "tokenizer: text of %zu bytes is too long", len);
    if (t->hf) return encode_hf(t, text, len, flags, ids, cap, n_out, err);
    int bos = flags & TOK_ADD_BOS, eos = flags & TOK_ADD_EOS;
    /* llama2.c's kind: a codepoint or byte per token at most, plus <s>, the
     * dummy prefix and </s> */
    if (cap < (int)len + 3)
        return err_set(err, RLHF_EINVAL, "tokenizer: output room %d < %d", cap, (int)len + 3);
    int n = 0;
    if (bos) ids[n++] = TOK_BOS;
    EncState s = {0};
    size_t room = 0;
    s.buf = malloc((size_t)t->max_token_length * 2 + 8);
    /* Segments end between two ASCII bytes that no piece holds side by side:
     * no token can span such a point, so merging each segment alone gives
     * exactly what merging the whole text would, in memory that follows the
     * longest segment instead of the text. */
    for (size_t pos = 0; pos < len || (pos == 0 && len == 0);) {
        size_t end = pos + 1;
        while (end < len) {
            unsigned char x = (unsigned char)text[end - 1], y = (unsigned char)text[end];
            if (x < 0x80 && y < 0x80 && !(t->adj[x * 16 + y / 8] & (1u << (y % 8)))) break;
            end++;
        }
        if (end > len) end = len;
        int dummy = bos && pos == 0 && len > 0;
        if (!s.buf || enc_reserve(&s, &room, end - pos + 1)) {
            enc_free(&s);
            return err_set(err, RLHF_ENOMEM, "tokenizer: out of memory encoding %zu bytes", len);
        }
        encode_segment(t, &s, text + pos, end - pos, dummy, ids, &n);
        if (len == 0) break;
        pos = end;
    }
    if (eos) ids[n++] = TOK_EOS;
    *n_out = n;
    enc_free(&s);
    return RLHF_OK;
}

/* ---- decoding ---------------------------------------------------------------- */

static const unsigned char byte_chars[256] = {
#define R16(x)                                                                                     \
    x, x + 1, x + 2, x + 3, x + 4, x + 5, x + 6, x + 7, x + 8, x + 9, x + 10, x + 11, x + 12,      \
        x + 13, x + 14, x + 15
    R16(0),   R16(16),  R16(32),  R16(48),  R16(64),  R16(80),  R16(96), R16(112), R16(128),
    R16(144), R16(160), R16(176), R16(192), R16(208), R16(224), R16(240)
#undef R16
};

const char *tok_piece(const Tokenizer *t, int prev, int id, size_t *len) {
    if (t->hf) return tokhf_piece(t->hf, prev, id, len);
    *len = 0;
    if (id < 0 || id >= t->vocab_size || id == TOK_BOS || id == TOK_EOS) return "";
    if (t->byte[id] >= 0) {
        *len = 1;
        return (const char *)&byte_chars[t->byte[id]];
    }
    const char *p = tok_raw_piece(t, id, len);
    if (prev == TOK_BOS && *len > 0 && p[0] == ' ') {
        p++;
        (*len)--;
    }
    return p;
}

int tok_decode(const Tokenizer *t, const int *ids, int n, char **out, size_t *out_len, Err *err) {
    if (t->hf) return tokhf_decode(t->hf, ids, n, out, out_len, err);
    *out = NULL;
    size_t total = 1;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->vocab_size)
            return err_set(err, RLHF_EINVAL, "tokenizer: id %d at position %d is outside 0..%d",
                           ids[i], i, t->vocab_size - 1);
        total += (size_t)t->len[ids[i]];
    }
    char *s = malloc(total);
    if (!s) return err_set(err, RLHF_ENOMEM, "tokenizer: out of memory");
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        size_t l;
        const char *p = tok_piece(t, i > 0 ? ids[i - 1] : -1, ids[i], &l);
        memcpy(s + pos, p, l);
        pos += l;
    }
    s[pos] = '\0';
    *out = s;
    if (out_len) *out_len = pos;
    return RLHF_OK;
}
