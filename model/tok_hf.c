/* Encoding and decoding with a Hugging Face BPE tokenizer (TokHF, built by
 * tok_hf_load.c): added tokens matched first and never split, each stretch
 * between them normalized and pre-tokenized (tok_hf_pre.c), each word merged by
 * rank (memoized per word), the post-processor's special tokens around; pieces
 * and whole-sequence decoding from the decoded pieces computed at load. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "model/tok_hf.h"
#include "model/tokenizer.h"

int hf_vocab_find(const TokHF *h, const char *s, size_t n) {
    for (uint32_t i = hf_fnv(s, n) & h->mask;; i = (i + 1) & h->mask) {
        int e = h->table[i];
        if (!e) return -1;
        if ((size_t)h->len[e - 1] == n && memcmp(h->blob + h->off[e - 1], s, n) == 0) return e - 1;
    }
}

static int merge_find(const TokHF *h, int a, int b, int *merged) {
    uint64_t k = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (uint32_t i = hf_mhash(k) & h->mmask;; i = (i + 1) & h->mmask) {
        if (h->mrank[i] < 0) return -1;
        if (h->mkey[i] == k) {
            *merged = h->mnew[i];
            return h->mrank[i];
        }
    }
}

/* ---- encoding ------------------------------------------------------------------- */

typedef struct {
    int *v;
    int n, cap;
} Ids;

static int ids_push(Ids *x, int id) {
    if (x->n == x->cap) {
        int c = x->cap ? x->cap * 2 : 256;
        int *v = realloc(x->v, sizeof(int) * (size_t)c);
        if (!v) return RLHF_ENOMEM;
        x->v = v;
        x->cap = c;
    }
    x->v[x->n++] = id;
    return RLHF_OK;
}

typedef struct {
    int rank, l, r, id, idl, idr;
} Cand;

static int cand_less(const Cand *a, const Cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->l < b->l);
}

typedef struct {
    int *id, *next, *prev;
    unsigned char *can; /* 0: a byte-fallback or unknown symbol, never merged */
    Cand *heap;
    int nheap, cap;
    HfScratch *sc;
    HfPieces seg, pre;
    Ids word;
} Enc;

static void heap_push(Enc *e, Cand c) {
    int i = e->nheap++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!cand_less(&c, &e->heap[p])) break;
        e->heap[i] = e->heap[p];
        i = p;
    }
    e->heap[i] = c;
}

static Cand heap_pop(Enc *e) {
    Cand top = e->heap[0], last = e->heap[--e->nheap];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= e->nheap) break;
        if (c + 1 < e->nheap && cand_less(&e->heap[c + 1], &e->heap[c])) c++;
        if (!cand_less(&e->heap[c], &last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (e->nheap > 0) e->heap[i] = last;
    return top;
}

static int enc_reserve(Enc *e, int m) {
    if (m <= e->cap) return RLHF_OK;
    int c = m < 64 ? 64 : m * 2;
    int *a = realloc(e->id, sizeof(int) * (size_t)c);
    if (a) e->id = a;
    int *b = realloc(e->next, sizeof(int) * (size_t)c);
    if (b) e->next = b;
    int *p = realloc(e->prev, sizeof(int) * (size_t)c);
    if (p) e->prev = p;
    unsigned char *k = realloc(e->can, (size_t)c);
    if (k) e->can = k;
    Cand *h = realloc(e->heap, sizeof(Cand) * (size_t)(3 * c + 1));
    if (h) e->heap = h;
    if (!a || !b || !p || !k || !h) return RLHF_ENOMEM;
    e->cap = c;
    return RLHF_OK;
}

static void try_pair(const TokHF *h, Enc *e, int l, int r) {
    if (l < 0 || r < 0 || !e->can[l] || !e->can[r]) return;
    int merged, rank = merge_find(h, e->id[l], e->id[r], &merged);
    if (rank < 0) return;
    heap_push(e, (Cand){rank, l, r, merged, e->id[l], e->id[r]});
}

/* The model on one pre-token w[0..n): ids appended to e->word. */
static int bpe_word(const TokHF *h, Enc *e, const char *w, size_t n) {
    e->word.n = 0;
    if (h->ignore_merges) {
        /* a word that is itself a token is taken whole */
        int id = -1;
        if (h->byte_level) {
            char buf[1024];
            size_t m = 0;
            for (size_t i = 0; i < n && m + 2 <= sizeof buf; i++)
                m += (size_t)utf8proc_encode_char(hf_byte_char((unsigned char)w[i]),
                                                  (utf8proc_uint8_t *)buf + m);
            if (n * 2 <= sizeof buf) id = hf_vocab_find(h, buf, m);
        } else {
            id = hf_vocab_find(h, w, n);
        }
        if (id >= 0 && h->kind[id] == K_NORMAL) return ids_push(&e->word, id);
    }
    if (enc_reserve(e, (int)n + 1)) return RLHF_ENOMEM;
    int m = 0;
    for (size_t i = 0; i < n;) {
        if (h->byte_level) {
            int id = h->byte_tok[(unsigned char)w[i++]];
            e->id[m] = id >= 0 ? id : h->unk;
            e->can[m] = id >= 0;
            if (e->id[m] >= 0) m++;
            continue;
        }
        int32_t cp;
        utf8proc_ssize_t l =
            utf8proc_iterate((const utf8proc_uint8_t *)w + i, (utf8proc_ssize_t)(n - i), &cp);
        if (l <= 0) l = 1; /* an invalid byte is a character of its own */
        int id = hf_vocab_find(h, w + i, (size_t)l);
        if (id >= 0 && h->kind[id] == K_NORMAL) {
            e->id[m] = id, e->can[m++] = 1;
        } else {
            int all = h->byte_fallback;
            for (utf8proc_ssize_t k = 0; all && k < l; k++)
                if (h->byte_tok[(unsigned char)w[i + k]] < 0) all = 0;
            if (all) {
                for (utf8proc_ssize_t k = 0; k < l; k++)
                    e->id[m] = h->byte_tok[(unsigned char)w[i + k]], e->can[m++] = 0;
            } else if (h->unk >= 0 &&
                       !(h->fuse_unk && m > 0 && !e->can[m - 1] && e->id[m - 1] == h->unk)) {
                e->id[m] = h->unk, e->can[m++] = 0;
            }
        }
        i += (size_t)l;
    }
    for (int i = 0; i < m; i++) {
        e->prev[i] = i - 1;
        e->next[i] = i + 1 < m ? i + 1 : -1;
    }
    e->nheap = 0;
    for (int i = 0; i + 1 < m; i++)
        try_pair(h, e, i, i + 1);
    while (e->nheap > 0) {
        Cand c = heap_pop(e);
        if (e->next[c.l] != c.r || e->id[c.l] != c.idl || e->id[c.r] != c.idr) continue;
        e->id[c.l] = c.id;
        int rn = e->next[c.r];
        e->next[c.l] = rn;
        if (rn >= 0) e->prev[rn] = c.l;
        e->next[c.r] = -2;
        e->id[c.r] = -1;
        try_pair(h, e, e->prev[c.l], c.l);
        try_pair(h, e, c.l, rn);
    }
    for (int i = m ? 0 : -1; i >= 0; i = e->next[i])
        if (ids_push(&e->word, e->id[i])) return RLHF_ENOMEM;
    return RLHF_OK;
}

enum { CACHE_MAX_WORD = 256, CACHE_MAX_ENTRIES = 1 << 19 };

static int cache_get(TokHF *h, const char *w, size_t n, uint32_t hash, Ids *out) {
    int found = 0;
    pthread_mutex_lock(&h->lock);
    for (uint32_t i = h->cache ? hash & h->cmask : 0; h->cache && h->cache[i].klen;
         i = (i + 1) & h->cmask) {
        CacheEnt *c = &h->cache[i];
        if (c->hash == hash && c->klen == n + 1 && !memcmp(h->arena + c->off, w, n)) {
            const int *ids = (const int *)(h->arena + c->off + ((n + 3) & ~(size_t)3));
            found = 1;
            for (uint32_t k = 0; k < c->nids; k++)
                if (ids_push(out, ids[k])) found = -1;
            break;
        }
    }
    pthread_mutex_unlock(&h->lock);
    return found;
}

static void cache_put(TokHF *h, const char *w, size_t n, uint32_t hash, const int *ids, int nids) {
    pthread_mutex_lock(&h->lock);
    if (!h->cache) {
        h->cache = calloc((size_t)CACHE_MAX_ENTRIES * 2, sizeof(CacheEnt));
        h->cmask = CACHE_MAX_ENTRIES * 2 - 1;
    }
    size_t kb = (n + 3) & ~(size_t)3, need = kb + sizeof(int) * (size_t)nids;
    if (h->cache && h->cn < CACHE_MAX_ENTRIES) {
        if (h->arena_n + need > h->arena_cap) {
            size_t c = (h->arena_n + need) * 2;
            char *a = realloc(h->arena, c);
            if (a) h->arena = a, h->arena_cap = c;
        }
        if (h->arena_n + need <= h->arena_cap) {
            uint32_t i = hash & h->cmask;
            while (h->cache[i].klen)
                i = (i + 1) & h->cmask;
            memcpy(h->arena + h->arena_n, w, n);
            if (nids) memcpy(h->arena + h->arena_n + kb, ids, sizeof(int) * (size_t)nids);
            h->cache[i] = (CacheEnt){hash, (uint32_t)n + 1, (uint32_t)nids, h->arena_n};
            h->arena_n += need;
            h->cn++;
        }
    }
    pthread_mutex_unlock(&h->lock);
}

/* Normalizes, pre-tokenizes and encodes one stretch of text between added tokens. */
static int encode_text(TokHF *h, Enc *e, const char *s, size_t n, int at_start, Ids *out) {
    if (!n) return RLHF_OK;
    int rc = hf_norm_apply(h->norm, e->sc, s, n, &e->pre);
    if (!rc) rc = hf_pre_apply(h->pre, e->sc, &e->pre, at_start);
    for (int i = 0; !rc && i < e->pre.n; i++) {
        const char *w = e->pre.s + e->pre.off[i];
        size_t wn = e->pre.len[i];
        if (!wn) continue;
        uint32_t hash = hf_fnv(w, wn);
        int cached = wn <= CACHE_MAX_WORD ? cache_get(h, w, wn, hash, out) : 0;
        if (cached < 0) return RLHF_ENOMEM;
        if (cached) continue;
        rc = bpe_word(h, e, w, wn);
        if (!rc && wn <= CACHE_MAX_WORD) cache_put(h, w, wn, hash, e->word.v, e->word.n);
        for (int k = 0; !rc && k < e->word.n; k++)
            rc = ids_push(out, e->word.v[k]);
    }
    return rc;
}

static int is_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static int is_word_at(const char *s, size_t n, size_t i, int before) {
    /* the character ending at i (before) or starting at i */
    if (before) {
        if (i == 0) return 0;
        size_t a = i - 1;
        while (a > 0 && ((unsigned char)s[a] & 0xC0) == 0x80)
            a--;
        i = a;
    } else if (i >= n) {
        return 0;
    }
    int32_t cp;
    if (utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp) <= 0)
        return 0;
    utf8proc_category_t c = utf8proc_category(cp);
    return cp == '_' || (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
           (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

/* The added token matching at s[i], longest first, or NULL. */
static const Added *match_added(const TokHF *h, const char *s, size_t n, size_t i, int special) {
    unsigned char b = (unsigned char)s[i];
    for (int k = 0; k < h->n_first[b]; k++) {
        const Added *a = &h->added[h->first[b][k]];
        if (a->special && !special) continue;
        if (a->len > n - i || memcmp(s + i, a->s, a->len) != 0) continue;
        if (a->single_word && (is_word_at(s, n, i, 1) || is_word_at(s, n, i + a->len, 0))) continue;
        return a;
    }
    return NULL;
}

int tokhf_encode(const TokHF *hc, const char *text, size_t len, int flags, int **ids_out,
                 int *n_out, Err *err) {
    TokHF *h = (TokHF *)hc; /* only the locked word cache changes */
    *ids_out = NULL;
    *n_out = 0;
    Enc e = {0};
    Ids out = {0};
    e.sc = hf_scratch_new();
    int rc = e.sc ? RLHF_OK : RLHF_ENOMEM;
    for (int i = 0; !rc && (flags & TOK_ADD_BOS) && i < h->n_prefix; i++)
        rc = ids_push(&out, h->prefix[i]);
    size_t start = 0, i = 0;
    while (!rc && i < len) {
        const Added *a = h->n_first[(unsigned char)text[i]]
                             ? match_added(h, text, len, i, flags & TOK_SPECIAL)
                             : NULL;
        if (!a) {
            i++;
            continue;
        }
        size_t end = i;
        if (a->lstrip)
            while (end > start && is_space((unsigned char)text[end - 1]))
                end--;
        rc = encode_text(h, &e, text + start, end - start, start == 0, &out);
        if (!rc) rc = ids_push(&out, a->id);
        i += a->len;
        if (a->rstrip)
            while (i < len && is_space((unsigned char)text[i]))
                i++;
        start = i;
    }
    if (!rc) rc = encode_text(h, &e, text + start, len - start, start == 0, &out);
    for (int k = 0; !rc && (flags & TOK_ADD_BOS) && k < h->n_suffix; k++)
        rc = ids_push(&out, h->suffix[k]);
    if (!rc && (flags & TOK_ADD_EOS) && h->eos >= 0 && !(out.n && out.v[out.n - 1] == h->eos))
        rc = ids_push(&out, h->eos);
    hf_scratch_free(e.sc);
    hf_pieces_free(&e.seg);
    hf_pieces_free(&e.pre);
    free(e.id), free(e.next), free(e.prev), free(e.can), free(e.heap), free(e.word.v);
    if (rc) {
        free(out.v);
        return err_set(err, rc, "tokenizer: out of memory encoding %zu bytes", len);
    }
    *ids_out = out.v;
    *n_out = out.n;
    return RLHF_OK;
}

/* ---- ids and decoding ------------------------------------------------------------ */

int tokhf_vocab_size(const TokHF *h) {
    return h->n_vocab;
}
int tokhf_max_token_length(const TokHF *h) {
    return h->max_len;
}
int tokhf_bos(const TokHF *h) {
    return h->bos;
}
int tokhf_eos(const TokHF *h) {
    return h->eos;
}
int tokhf_is_stop(const TokHF *h, int id) {
    for (int i = 0; i < h->n_stop; i++)
        if (h->stop[i] == id) return 1;
    return 0;
}
int tokhf_is_special(const TokHF *h, int id) {
    return id >= 0 && id < h->n_vocab && h->kind[id] == K_SPECIAL;
}

const char *tokhf_raw_piece(const TokHF *h, int id, size_t *len) {
    if (id < 0 || id >= h->n_vocab) {
        *len = 0;
        return "";
    }
    *len = (size_t)h->len[id];
    return h->blob + h->off[id];
}

const char *tokhf_piece(const TokHF *h, int prev, int id, size_t *len) {
    *len = 0;
    if (id < 0 || id >= h->n_vocab || h->kind[id] == K_SPECIAL) return "";
    const char *p = h->dblob + h->doff[id];
    *len = (size_t)h->dlen[id];
    /* the decoder's Strip / Metaspace drop the space the encoder prepended */
    if ((prev < 0 || prev == h->bos) && h->strip_start && *len && p[0] == ' ') {
        p++;
        (*len)--;
    }
    return p;
}

int tokhf_decode(const TokHF *h, const int *ids, int n, char **out, size_t *out_len, Err *err) {
    *out = NULL;
    size_t total = 1;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= h->n_vocab)
            return err_set(err, RLHF_EINVAL, "tokenizer: id %d at position %d is outside 0..%d",
                           ids[i], i, h->n_vocab - 1);
        total += (size_t)h->dlen[ids[i]];
    }
    char *s = malloc(total);
    if (!s) return err_set(err, RLHF_ENOMEM, "tokenizer: out of memory");
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        if (h->kind[ids[i]] == K_SPECIAL) continue; /* skip_special_tokens */
        memcpy(s + pos, h->dblob + h->doff[ids[i]], (size_t)h->dlen[ids[i]]);
        pos += (size_t)h->dlen[ids[i]];
    }
    size_t a = 0;
    for (int k = 0; k < h->strip_start && a < pos && s[a] == ' '; k++)
        a++;
    for (int k = 0; k < h->strip_stop && pos > a && s[pos - 1] == ' '; k++)
        pos--;
    memmove(s, s + a, pos - a);
    pos -= a;
    s[pos] = '\0';
    *out = s;
    if (out_len) *out_len = pos;
    return RLHF_OK;
}
