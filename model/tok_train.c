/* Byte-level BPE training for the llama2.c tokenizer format: picks base codepoint
 * tokens, splits the corpus into chunks (a word with its leading space, a digit
 * run, a punctuation run, a whitespace run), counts unique chunks, then merges
 * the most frequent adjacent pair until the vocabulary is full. Pair counts are
 * updated only in the chunks that hold the merged pair, and a lazy max-heap
 * finds the next pair, so a 1k vocabulary on a few MB takes seconds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/tokenizer.h"
#include "util/text.h"

enum { MAX_CHUNK = 32, MAX_PIECE = 64, N_RESERVED = 259 };

/* ---- a small open-addressing map from uint64 keys to int values ---------------- */
typedef struct {
    uint64_t *keys;
    int *vals; /* -1 = empty */
    size_t cap, n;
} Map;

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static int map_init(Map *m, size_t cap) {
    m->cap = 16;
    while (m->cap < cap)
        m->cap <<= 1;
    m->n = 0;
    m->keys = malloc(sizeof(uint64_t) * m->cap);
    m->vals = malloc(sizeof(int) * m->cap);
    if (!m->keys || !m->vals) return -1;
    memset(m->vals, 0xff, sizeof(int) * m->cap);
    return 0;
}

static void map_free(Map *m) {
    free(m->keys);
    free(m->vals);
}

/* Slot of key: vals[slot] is -1 when absent. */
static size_t map_slot(const Map *m, uint64_t key) {
    size_t h = mix64(key) & (m->cap - 1);
    while (m->vals[h] >= 0 && m->keys[h] != key)
        h = (h + 1) & (m->cap - 1);
    return h;
}

static int map_grow(Map *m) {
    if ((m->n + 1) * 2 < m->cap) return 0;
    Map g;
    if (map_init(&g, m->cap * 2)) {
        map_free(&g);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->vals[i] >= 0) {
            size_t s = map_slot(&g, m->keys[i]);
            g.keys[s] = m->keys[i];
            g.vals[s] = m->vals[i];
        }
    g.n = m->n;
    map_free(m);
    *m = g;
    return 0;
}

/* ---- training state ------------------------------------------------------------- */
typedef struct {
    int *sym, len;
    int64_t freq;
} Word;

typedef struct {
    int a, b;
    int64_t count;
    int *words, nwords, capwords; /* chunks that held the pair (may be stale) */
    int done, stamp;
} Pair;

typedef struct {
    int64_t count;
    int a, b;
} HeapItem;

typedef struct {
    char **piece;
    size_t *plen;
    float *score;
    int n, cap;
    Map cp; /* codepoint key -> token id for base characters */
    Word *words;
    int nwords, capwords;
    Map wordmap; /* chunk hash -> word index (chained through probing on the hash) */
    Pair *pairs;
    int npairs, cappairs;
    Map pairmap; /* (a << 32 | b) -> pair index */
    HeapItem *heap;
    size_t nheap, capheap;
    int *touched, ntouched, stamp;
} Trainer;

static uint64_t cp_key(const char *s, size_t n) {
    uint64_t k = n;
    for (size_t i = 0; i < n; i++)
        k |= (uint64_t)(unsigned char)s[i] << (8 * (i + 1));
    return k;
}

static int add_piece(Trainer *t, const char *s, size_t n, float score) {
    if (t->n == t->cap) return -1;
    t->piece[t->n] = malloc(n + 1);
    if (!t->piece[t->n]) return -1;
    memcpy(t->piece[t->n], s, n);
    t->piece[t->n][n] = '\0';
    t->plen[t->n] = n;
    t->score[t->n] = score;
    return t->n++;
}

static int heap_better(const HeapItem *x, const HeapItem *y) {
    if (x->count != y->count) return x->count > y->count;
    if (x->a != y->a) return x->a < y->a;
    return x->b < y->b;
}

static int heap_push(Trainer *t, HeapItem it) {
    if (t->nheap == t->capheap) {
        size_t c = t->capheap ? t->capheap * 2 : 1024;
        HeapItem *h = realloc(t->heap, sizeof *h * c);
        if (!h) return -1;
        t->heap = h;
        t->capheap = c;
    }
    size_t i = t->nheap++;
    while (i > 0 && heap_better(&it, &t->heap[(i - 1) / 2])) {
        t->heap[i] = t->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    t->heap[i] = it;
    return 0;
}

static HeapItem heap_pop(Trainer *t) {
    HeapItem top = t->heap[0], last = t->heap[--t->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= t->nheap) break;
        if (c + 1 < t->nheap && heap_better(&t->heap[c + 1], &t->heap[c])) c++;
        if (!heap_better(&t->heap[c], &last)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (t->nheap > 0) t->heap[i] = last;
    return top;
}

/* Adds delta occurrences of pair (a, b) seen in word w; returns -1 on OOM. */
static int pair_add(Trainer *t, int a, int b, int64_t delta, int w) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    if (map_grow(&t->pairmap)) return -1;
    size_t s = map_slot(&t->pairmap, key);
    int pi = t->pairmap.vals[s];
    if (pi < 0) {
        if (delta <= 0) return 0;
        if (t->npairs == t->cappairs) {
            int c = t->cappairs ? t->cappairs * 2 : 4096;
            Pair *p = realloc(t->pairs, sizeof *p * c);
            if (!p) return -1;
            t->pairs = p;
            t->cappairs = c;
        }
        pi = t->npairs++;
        memset(&t->pairs[pi], 0, sizeof(Pair));
        t->pairs[pi].a = a;
        t->pairs[pi].b = b;
        t->pairmap.keys[s] = key;
        t->pairmap.vals[s] = pi;
        t->pairmap.n++;
    }
    Pair *p = &t->pairs[pi];
    p->count += delta;
    if (delta > 0 && (p->nwords == 0 || p->words[p->nwords - 1] != w)) {
        if (p->nwords == p->capwords) {
            int c = p->capwords ? p->capwords * 2 : 4;
            int *ws = realloc(p->words, sizeof(int) * c);
            if (!ws) return -1;
            p->words = ws;
            p->capwords = c;
        }
        p->words[p->nwords++] = w;
    }
    if (p->stamp != t->stamp) {
        p->stamp = t->stamp;
        t->touched[t->ntouched++] = pi;
    }
    return 0;
}

static int word_pairs(Trainer *t, int w, int sign) {
    Word *wd = &t->words[w];
    for (int i = 0; i + 1 < wd->len; i++)
        if (pair_add(t, wd->sym[i], wd->sym[i + 1], sign * wd->freq, w)) return -1;
    return 0;
}

/* Pushes the current counts of the pairs touched since the last flush. */
static int flush_touched(Trainer *t) {
    for (int i = 0; i < t->ntouched; i++) {
        Pair *p = &t->pairs[t->touched[i]];
        if (p->count > 0 && !p->done) {
            HeapItem it = {p->count, p->a, p->b};
            if (heap_push(t, it)) return -1;
        }
    }
    t->ntouched = 0;
    t->stamp++;
    return 0;
}

/* Records one chunk of symbols (count 1 more if seen before). */
static int add_chunk(Trainer *t, const int *sym, int len) {
    if (len < 2) return 0; /* nothing to merge */
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < len; i++)
        h = (h ^ (uint64_t)(uint32_t)sym[i]) * 1099511628211ULL;
    if (map_grow(&t->wordmap)) return -1;
    /* probe on the hash; compare the symbols to tell collisions apart */
    size_t cap = t->wordmap.cap, s = mix64(h) & (cap - 1);
    for (;; s = (s + 1) & (cap - 1)) {
        int wi = t->wordmap.vals[s];
        if (wi < 0) break;
        Word *w = &t->words[wi];
        if (t->wordmap.keys[s] == h && w->len == len &&
            memcmp(w->sym, sym, sizeof(int) * len) == 0) {
            w->freq++;
            return 0;
        }
    }
    if (t->nwords == t->capwords) {
        int c = t->capwords ? t->capwords * 2 : 4096;
        Word *ws = realloc(t->words, sizeof(Word) * c);
        if (!ws) return -1;
        t->words = ws;
        t->capwords = c;
    }
    Word *w = &t->words[t->nwords];
    w->sym = malloc(sizeof(int) * len);
    if (!w->sym) return -1;
    memcpy(w->sym, sym, sizeof(int) * len);
    w->len = len;
    w->freq = 1;
    t->wordmap.keys[s] = h;
    t->wordmap.vals[s] = t->nwords++;
    t->wordmap.n++;
    return 0;
}

enum { C_LETTER, C_DIGIT, C_SPACE, C_WS, C_PUNCT };

static int char_class(const char *s, size_t n) {
    unsigned char c = (unsigned char)s[0];
    if (n > 1 || c >= 0x80) return C_LETTER;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return C_LETTER;
    if (c >= '0' && c <= '9') return C_DIGIT;
    if (c == ' ') return C_SPACE;
    if (c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f') return C_WS;
    return C_PUNCT;
}

static size_t cp_end(const char *s, size_t i, size_t len) {
    size_t j = i + 1;
    while (j < len && j - i < 4 && ((unsigned char)s[j] & 0xC0) == 0x80)
        j++;
    return j;
}

/* Splits one text (with the encoder's dummy-prefix space) into chunks: runs of
 * one class, where the last space of a space run joins the word, number or
 * punctuation run after it (" the", " 42", " ..."). */
static int chunk_text(Trainer *t, const char *text, size_t len, int space_id) {
    int sym[MAX_CHUNK], n = 0, cls = -1;
    if (space_id >= 0) {
        sym[n++] = space_id;
        cls = C_SPACE;
    }
    for (size_t i = 0; i < len;) {
        size_t j = cp_end(text, i, len);
        int id = t->cp.vals[map_slot(&t->cp, cp_key(text + i, j - i))];
        int c = id >= 0 ? char_class(text + i, j - i) : -1;
        i = j;
        if (c < 0) { /* no base token: byte fallback, a barrier to merges */
            if (add_chunk(t, sym, n)) return -1;
            n = 0;
            cls = -1;
            continue;
        }
        if (cls == C_SPACE && c != C_SPACE && c != C_WS && n > 0) {
            if (add_chunk(t, sym, n - 1)) return -1;
            sym[0] = sym[n - 1];
            n = 1;
        } else if (c != cls || n == MAX_CHUNK) {
            if (add_chunk(t, sym, n)) return -1;
            n = 0;
        }
        sym[n++] = id;
        cls = c;
    }
    return add_chunk(t, sym, n);
}

typedef struct {
    uint64_t key;
    int64_t count;
} CpCount;

static int cmp_cp(const void *x, const void *y) {
    const CpCount *a = x, *b = y;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return a->key < b->key ? -1 : a->key > b->key;
}

static void trainer_free(Trainer *t) {
    for (int i = 0; i < t->n; i++)
        free(t->piece[i]);
    free(t->piece);
    free(t->plen);
    free(t->score);
    map_free(&t->cp);
    for (int i = 0; i < t->nwords; i++)
        free(t->words[i].sym);
    free(t->words);
    map_free(&t->wordmap);
    for (int i = 0; i < t->npairs; i++)
        free(t->pairs[i].words);
    free(t->pairs);
    map_free(&t->pairmap);
    free(t->heap);
    free(t->touched);
}

/* Chooses the base characters: printable ASCII, \n and \t when they fit, then
 * the most frequent codepoints up to half of the free vocabulary. */
static int pick_chars(Trainer *t, const char *const *texts, const size_t *lens, int n_texts,
                      int vocab_size) {
    Map counts;
    if (map_init(&counts, 1024)) return -1;
    CpCount *cc = NULL;
    int ncc = 0, rc = -1;
    for (int f = 0; f < n_texts; f++)
        for (size_t i = 0; i < lens[f];) {
            size_t j = cp_end(texts[f], i, lens[f]);
            if (utf8_invalid_at(texts[f] + i, j - i) < 0) {
                if (map_grow(&counts)) goto out;
                size_t s = map_slot(&counts, cp_key(texts[f] + i, j - i));
                if (counts.vals[s] < 0) {
                    CpCount *c2 = realloc(cc, sizeof *cc * (ncc + 1));
                    if (!c2) goto out;
                    cc = c2;
                    cc[ncc] = (CpCount){cp_key(texts[f] + i, j - i), 0};
                    counts.keys[s] = cc[ncc].key;
                    counts.vals[s] = ncc++;
                    counts.n++;
                }
                cc[counts.vals[s]].count++;
            }
            i = j;
        }
    qsort(cc, (size_t)ncc, sizeof *cc, cmp_cp);
    int free_slots = vocab_size - N_RESERVED, budget = free_slots / 2;
    if (free_slots >= 97) {
        for (int c = 0x20; c <= 0x7e + 2; c++) {
            char ch = (char)(c <= 0x7e ? c : c == 0x7f ? '\n' : '\t');
            size_t s = map_slot(&t->cp, cp_key(&ch, 1));
            if (map_grow(&t->cp)) goto out;
            s = map_slot(&t->cp, cp_key(&ch, 1));
            int id = add_piece(t, &ch, 1, -1e6f);
            if (id < 0) goto out;
            t->cp.keys[s] = cp_key(&ch, 1);
            t->cp.vals[s] = id;
            t->cp.n++;
        }
    }
    if (budget < 1) budget = 1;
    for (int i = 0; i < ncc && t->n - N_RESERVED < budget; i++) {
        if (cc[i].count < 2 && t->n - N_RESERVED >= 1) break;
        if (map_grow(&t->cp)) goto out;
        size_t s = map_slot(&t->cp, cc[i].key);
        if (t->cp.vals[s] >= 0) continue;
        char buf[4];
        size_t n = (size_t)(cc[i].key & 0xff);
        for (size_t k = 0; k < n; k++)
            buf[k] = (char)(cc[i].key >> (8 * (k + 1)));
        int id = add_piece(t, buf, n, -1e6f);
        if (id < 0) goto out;
        t->cp.keys[s] = cc[i].key;
        t->cp.vals[s] = id;
        t->cp.n++;
    }
    rc = 0;
out:
    map_free(&counts);
    free(cc);
    return rc;
}

/* Replaces every (a, b) in word w by c, keeping pair counts current. */
static int merge_word(Trainer *t, int w, int a, int b, int c) {
    Word *wd = &t->words[w];
    int found = 0;
    for (int i = 0; i + 1 < wd->len; i++)
        if (wd->sym[i] == a && wd->sym[i + 1] == b) found = 1;
    if (!found) return 0; /* stale entry in the pair's word list */
    if (word_pairs(t, w, -1)) return -1;
    int o = 0;
    for (int i = 0; i < wd->len; i++) {
        if (i + 1 < wd->len && wd->sym[i] == a && wd->sym[i + 1] == b) {
            wd->sym[o++] = c;
            i++;
        } else {
            wd->sym[o++] = wd->sym[i];
        }
    }
    wd->len = o;
    return word_pairs(t, w, +1);
}

int tok_train(const char *const *texts, const size_t *lens, int n_texts, int vocab_size,
              TokProgressFn progress, void *ctx, Tokenizer **out, Err *err) {
    *out = NULL;
    if (vocab_size <= N_RESERVED + 1 || vocab_size > TOK_MAX_VOCAB)
        return err_set(err, RLHF_EINVAL, "tokenizer: vocabulary size %d must be in %d..%d",
                       vocab_size, N_RESERVED + 2, TOK_MAX_VOCAB);
    Trainer t = {0};
    int rc = RLHF_ENOMEM;
    t.cap = vocab_size;
    t.piece = calloc((size_t)vocab_size, sizeof(char *));
    t.plen = calloc((size_t)vocab_size, sizeof(size_t));
    t.score = calloc((size_t)vocab_size, sizeof(float));
    if (!t.piece || !t.plen || !t.score || map_init(&t.cp, 512) || map_init(&t.wordmap, 4096) ||
        map_init(&t.pairmap, 4096))
        goto fail;
    static const char *control[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++)
        if (add_piece(&t, control[i], strlen(control[i]), 0.0f) < 0) goto fail;
    for (int b = 0; b < 256; b++) {
        char buf[8];
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        if (add_piece(&t, buf, 6, 0.0f) < 0) goto fail;
    }
    if (pick_chars(&t, texts, lens, n_texts, vocab_size)) goto fail;
    int space_id = -1;
    {
        size_t s = map_slot(&t.cp, cp_key(" ", 1));
        space_id = t.cp.vals[s];
    }
    for (int f = 0; f < n_texts; f++)
        if (chunk_text(&t, texts[f], lens[f], space_id)) goto fail;
    /* touched can hold every pair at once (the initial count) */
    int64_t maxpairs = 16;
    for (int w = 0; w < t.nwords; w++)
        maxpairs += t.words[w].len;
    t.touched = malloc(sizeof(int) * (size_t)maxpairs * 2);
    if (!t.touched) goto fail;
    t.stamp = 1;
    for (int w = 0; w < t.nwords; w++)
        if (word_pairs(&t, w, +1)) goto fail;
    if (flush_touched(&t)) goto fail;
    int total = vocab_size - t.n, merges = 0;
    char buf[2 * MAX_PIECE];
    while (t.n < vocab_size && t.nheap > 0) {
        HeapItem it = heap_pop(&t);
        size_t s = map_slot(&t.pairmap, (uint64_t)(uint32_t)it.a << 32 | (uint32_t)it.b);
        Pair *p = &t.pairs[t.pairmap.vals[s]];
        if (p->done || p->count != it.count) continue; /* stale */
        p->done = 1;
        size_t la = t.plen[it.a], lb = t.plen[it.b];
        if (la + lb > MAX_PIECE) continue;
        memcpy(buf, t.piece[it.a], la);
        memcpy(buf + la, t.piece[it.b], lb);
        /* a merge that spells a control or byte token ("<s>", "<0x41>") would decode
         * wrongly; one that spells an earlier token reuses it */
        int c = -1, forbidden = 0;
        for (int i = 0; i < t.n; i++)
            if (t.plen[i] == la + lb && memcmp(t.piece[i], buf, la + lb) == 0) {
                if (i < N_RESERVED) forbidden = 1;
                c = i;
                break;
            }
        if (forbidden) continue;
        if (c < 0 && (c = add_piece(&t, buf, la + lb, -(float)merges)) < 0) goto fail;
        merges++;
        /* the word list grows while we merge (new pairs), so copy it first */
        int nw = p->nwords;
        int *ws = malloc(sizeof(int) * (size_t)(nw ? nw : 1));
        if (!ws) goto fail;
        memcpy(ws, p->words, sizeof(int) * (size_t)nw);
        int a = it.a, b = it.b;
        for (int i = 0; i < nw; i++)
            if (merge_word(&t, ws[i], a, b, c)) {
                free(ws);
                goto fail;
            }
        free(ws);
        if (flush_touched(&t)) goto fail;
        if (progress && (merges % 32 == 0)) progress(ctx, merges, total);
    }
    if (progress) progress(ctx, merges, total);
    rc = tok_build(t.n, (const char *const *)t.piece, t.plen, t.score, out, err);
    trainer_free(&t);
    return rc;
fail:
    trainer_free(&t);
    return err_set(err, RLHF_ENOMEM, "tokenizer training: out of memory");
}
