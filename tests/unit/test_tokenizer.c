/* model/tokenizer: llama2.c tokenizer.bin compatibility, exact round trips,
 * BPE training, and refusal of truncated or garbage files. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/tokenizer.h"
#include "util/rng.h"
#include "tests/unit/files.h"

/* ---- helpers ------------------------------------------------------------------ */

typedef struct {
    unsigned char *b;
    size_t n, cap;
} Buf;

static void put(Buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->b = realloc(b->b, b->cap);
    }
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void put_token(Buf *b, float score, const char *s) {
    int l = (int)strlen(s);
    put(b, &score, 4);
    put(b, &l, 4);
    put(b, s, (size_t)l);
}

/* A tokenizer.bin written by hand in llama2.c's layout: the 3 control tokens, the
 * 256 byte tokens, then a few pieces and merges. */
static const char *extra_pieces[] = {" ",  "a",   "b",   "c",  "x",  " a", "ab",
                                     "bc", "abc", " ab", "aa", "cc", "ca"};
static const float extra_scores[] = {-1e3f, -1e3f, -1e3f, -1e3f, -1e3f, -3, -1,
                                     -1,    -2,    -5,    -4,    -1,    -6};
enum { N_EXTRA = sizeof extra_pieces / sizeof extra_pieces[0] };

static Buf handwritten(void) {
    Buf b = {0};
    int maxlen = 6;
    put(&b, &maxlen, 4);
    put_token(&b, 0, "<unk>");
    put_token(&b, 0, "<s>");
    put_token(&b, 0, "</s>");
    for (int i = 0; i < 256; i++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", i);
        put_token(&b, 0, s);
    }
    for (int i = 0; i < N_EXTRA; i++)
        put_token(&b, extra_scores[i], extra_pieces[i]);
    return b;
}

static int lookup(const char **v, int nv, const char *s) {
    for (int i = 0; i < nv; i++)
        if (strcmp(v[i], s) == 0) return i;
    return -1;
}

/* llama2.c's encode() restated (bos always with the dummy " " prefix; byte
 * fallback as id + 3; O(n^2) best-pair scan), as the reference. */
static int ref_encode(const char **vocab, const float *scores, int nv, const char *text, int *out) {
    int n = 0;
    out[n++] = 1;
    char buf[64];
    if (text[0]) out[n++] = lookup(vocab, nv, " ");
    size_t len = 0;
    for (const char *c = text; *c; c++) {
        if ((*c & 0xC0) != 0x80) len = 0;
        buf[len++] = *c;
        buf[len] = 0;
        if ((*(c + 1) & 0xC0) == 0x80 && len < 4) continue;
        int id = lookup(vocab, nv, buf);
        if (id != -1)
            out[n++] = id;
        else
            for (size_t i = 0; i < len; i++)
                out[n++] = (unsigned char)buf[i] + 3;
        len = 0;
    }
    for (;;) {
        float best = -1e10f;
        int best_id = -1, best_idx = -1;
        for (int i = 0; i < n - 1; i++) {
            snprintf(buf, sizeof buf, "%s%s", vocab[out[i]], vocab[out[i + 1]]);
            int id = lookup(vocab, nv, buf);
            if (id != -1 && scores[id] > best) {
                best = scores[id];
                best_id = id;
                best_idx = i;
            }
        }
        if (best_idx == -1) break;
        out[best_idx] = best_id;
        for (int i = best_idx + 1; i < n - 1; i++)
            out[i] = out[i + 1];
        n--;
    }
    return n;
}

static void assert_round_trip(const Tokenizer *t, const char *s, size_t n) {
    int *ids = malloc(sizeof(int) * (size_t)tok_encode_cap(n));
    for (int flags = 0; flags < 4; flags++) {
        int m = 0;
        Err err = {0};
        cr_assert_eq(tok_encode(t, s, n, flags & 1, flags >> 1, ids, tok_encode_cap(n), &m, &err),
                     0, "%s", err.msg);
        char *back;
        size_t bl;
        cr_assert_eq(tok_decode(t, ids, m, &back, &bl, &err), 0);
        cr_assert_eq(bl, n, "length %zu != %zu (flags %d)", bl, n, flags);
        cr_assert(memcmp(back, s, n) == 0, "round trip differs (flags %d)", flags);
        free(back);
    }
    free(ids);
}

static Tokenizer *train_small(int vocab) {
    static const char *text =
        "the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat.\n"
        "Numbers: 12 123 1234. 你好，世界！你好。 emoji: 😀😀 🎉\n";
    const char *texts[2] = {text, text};
    size_t lens[2] = {strlen(text), strlen(text)};
    Tokenizer *t;
    Err err = {0};
    cr_assert_eq(tok_train(texts, lens, 2, vocab, NULL, NULL, &t, &err), 0, "%s", err.msg);
    return t;
}

/* ---- tests -------------------------------------------------------------------- */

Test(tokenizer, handwritten_llama2c_file_loads) {
    Buf b = handwritten();
    char *path = write_tmp(b.b, b.n);
    Tokenizer *t;
    Err err = {0};
    cr_assert_eq(tok_load(path, &t, &err), 0, "%s", err.msg);
    cr_assert_eq(tok_vocab_size(t), 259 + N_EXTRA);
    cr_assert_eq(tok_max_token_length(t), 6);
    cr_assert_eq(tok_bos(t), 1);
    cr_assert_eq(tok_eos(t), 2);
    size_t l;
    cr_assert(strncmp(tok_raw_piece(t, 259 + 8, &l), "abc", l) == 0 && l == 3);
    cr_assert_eq(tok_score(t, 259 + 8), -2.0f);
    /* serialising gives back the same bytes */
    unsigned char *again;
    size_t n;
    cr_assert_eq(tok_to_bytes(t, &again, &n, &err), 0);
    cr_assert_eq(n, b.n);
    cr_assert(memcmp(again, b.b, n) == 0);
    free(again);
    tok_free(t);
    unlink(path);
    free(path);
    free(b.b);
}

Test(tokenizer, encodes_as_llama2c) {
    Buf b = handwritten();
    Tokenizer *t;
    Err err = {0};
    cr_assert_eq(tok_load_mem(b.b, b.n, &t, &err), 0, "%s", err.msg);
    const char *vocab[259 + N_EXTRA];
    float scores[259 + N_EXTRA];
    static char names[259][8];
    for (int i = 0; i < 259; i++) {
        if (i == 0)
            strcpy(names[i], "<unk>");
        else if (i == 1)
            strcpy(names[i], "<s>");
        else if (i == 2)
            strcpy(names[i], "</s>");
        else
            snprintf(names[i], 8, "<0x%02X>", i - 3);
        vocab[i] = names[i];
        scores[i] = 0;
    }
    for (int i = 0; i < N_EXTRA; i++)
        vocab[259 + i] = extra_pieces[i], scores[259 + i] = extra_scores[i];
    /* by hand: " a b c": "ab" and "bc" tie at -1, the leftmost wins; then
     * "abc" (-2) beats " ab" (-5) */
    int ids[64], n;
    cr_assert_eq(tok_encode(t, "abc", 3, 1, 0, ids, 64, &n, &err), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(ids[0], 1);
    cr_assert_eq(ids[1], 259 + 0); /* " " */
    cr_assert_eq(ids[2], 259 + 8); /* "abc" */
    /* random strings over the alphabet, plus bytes that need the fallback */
    Rng r;
    rng_seed(&r, 7);
    const char alpha[] = "abcx d\xc3\xa9";
    for (int iter = 0; iter < 500; iter++) {
        char s[72];
        int len = (int)rng_below(&r, 70);
        for (int i = 0; i < len; i++)
            s[i] = alpha[rng_below(&r, sizeof alpha - 1)];
        s[len] = 0;
        int want[96], got[96];
        int nw = ref_encode(vocab, scores, 259 + N_EXTRA, s, want);
        cr_assert_eq(tok_encode(t, s, (size_t)len, 1, 0, got, 96, &n, &err), 0);
        cr_assert_eq(n, nw, "'%s': %d tokens, llama2.c gives %d", s, n, nw);
        for (int i = 0; i < n; i++)
            cr_assert_eq(got[i], want[i], "'%s' token %d", s, i);
    }
    tok_free(t);
    free(b.b);
}

Test(tokenizer, round_trips_any_bytes) {
    Tokenizer *t = train_small(400);
    Buf b = handwritten();
    Tokenizer *h;
    Err err = {0};
    cr_assert_eq(tok_load_mem(b.b, b.n, &h, &err), 0);
    const char *cases[] = {"",
                           "hello world",
                           " leading space",
                           "  two spaces\n\nand newlines\t tabs ",
                           "你好，世界！中文文本",
                           "emoji 😀🎉👩‍👩‍👧 mixed",
                           "invalid \xff\xfe bytes \x80 stray \xe4\xbd truncated",
                           "<s> </s> <unk> <0x41> look like control tokens",
                           "trailing lead byte \xf0"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_round_trip(t, cases[i], strlen(cases[i]));
        assert_round_trip(h, cases[i], strlen(cases[i]));
    }
    assert_round_trip(t, "nul\0inside", 10);
    Rng r;
    rng_seed(&r, 3);
    for (int iter = 0; iter < 300; iter++) {
        char s[64];
        size_t n = rng_below(&r, sizeof s);
        for (size_t i = 0; i < n; i++)
            s[i] = (char)rng_below(&r, 256);
        assert_round_trip(t, s, n);
    }
    tok_free(t);
    tok_free(h);
    free(b.b);
}

Test(tokenizer, control_text_is_not_a_control_token) {
    Tokenizer *t = train_small(400);
    int ids[64], n;
    Err err = {0};
    cr_assert_eq(tok_encode(t, "<s></s>", 7, 0, 0, ids, 64, &n, &err), 0);
    for (int i = 0; i < n; i++)
        cr_assert(ids[i] != 1 && ids[i] != 2);
    tok_free(t);
}

Test(tokenizer, known_small_merges) {
    const char *texts[1] = {"aaabdaaabac"};
    size_t lens[1] = {11};
    Tokenizer *t;
    Err err = {0};
    cr_assert_eq(tok_train(texts, lens, 1, 300, NULL, NULL, &t, &err), 0, "%s", err.msg);
    size_t l;
    cr_assert_str_eq(tok_raw_piece(t, 0, &l), "<unk>");
    cr_assert_str_eq(tok_raw_piece(t, 1, &l), "<s>");
    cr_assert_str_eq(tok_raw_piece(t, 2, &l), "</s>");
    cr_assert_str_eq(tok_raw_piece(t, 3, &l), "<0x00>");
    cr_assert_str_eq(tok_raw_piece(t, 258, &l), "<0xFF>");
    /* base characters seen at least twice: a, b; then merges by frequency,
     * ties broken by the smaller pair of ids */
    cr_assert_str_eq(tok_raw_piece(t, 259, &l), "a");
    cr_assert_str_eq(tok_raw_piece(t, 260, &l), "b");
    const char *merges[] = {"aa", "ab", "aaab", "aaaba"};
    cr_assert_eq(tok_vocab_size(t), 265);
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(tok_raw_piece(t, 261 + i, &l), merges[i]);
        cr_assert_eq(tok_score(t, 261 + i), -(float)i);
    }
    int ids[32], n;
    cr_assert_eq(tok_encode(t, "aaabdaaabac", 11, 0, 0, ids, 32, &n, &err), 0);
    int want[] = {263, 'd' + 3, 264, 'c' + 3};
    cr_assert_eq(n, 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(ids[i], want[i]);
    tok_free(t);
}

Test(tokenizer, trained_tokenizer_compresses_and_saves) {
    Tokenizer *t = train_small(420);
    cr_assert_gt(tok_vocab_size(t), 300);
    const char *s = "the cat sat on the mat.";
    int ids[64], n;
    Err err = {0};
    cr_assert_eq(tok_encode(t, s, strlen(s), 1, 0, ids, 64, &n, &err), 0);
    cr_assert_lt(n, 10, "only %d merges used", n);
    char path[] = "/tmp/rlhf-tok-save-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    cr_assert_eq(tok_save(t, path, &err), 0, "%s", err.msg);
    Tokenizer *u;
    cr_assert_eq(tok_load(path, &u, &err), 0, "%s", err.msg);
    cr_assert_eq(tok_vocab_size(u), tok_vocab_size(t));
    int ids2[64], n2;
    cr_assert_eq(tok_encode(u, s, strlen(s), 1, 0, ids2, 64, &n2, &err), 0);
    cr_assert_eq(n2, n);
    cr_assert(memcmp(ids, ids2, sizeof(int) * (size_t)n) == 0);
    cr_assert_eq(tok_check_vocab(u, tok_vocab_size(t), &err), 0);
    cr_assert_neq(tok_check_vocab(u, 32000, &err), 0);
    cr_assert(strstr(err.msg, "wrong tokenizer"));
    unlink(path);
    tok_free(t);
    tok_free(u);
}

Test(tokenizer, refuses_truncated_and_garbage) {
    Buf b = handwritten();
    Tokenizer *t;
    Err err = {0};
    /* every cut inside a record is refused; cuts at record boundaries are
     * indistinguishable from a smaller vocabulary (tok_check_vocab catches those) */
    size_t boundary = 4;
    int rec = 0;
    for (size_t cut = 0; cut < b.n; cut++) {
        if (cut == boundary) {
            int l;
            memcpy(&l, b.b + boundary + 4, 4);
            boundary += 8 + (size_t)l;
            rec++;
            if (rec >= 4) continue; /* three control tokens needed */
        }
        int rc = tok_load_mem(b.b, cut, &t, &err);
        cr_assert_neq(rc, 0, "cut at %zu accepted", cut);
        cr_assert_eq(t, NULL);
    }
    cr_assert_eq(tok_load_mem(b.b, 100, &t, &err), RLHF_EFORMAT);
    cr_assert(strstr(err.msg, "truncated"), "%s", err.msg);
    const char *text = "this is a text file, not a tokenizer\n";
    cr_assert_neq(tok_load_mem(text, strlen(text), &t, &err), 0);
    cr_assert(strstr(err.msg, "not a tokenizer"), "%s", err.msg);
    /* a length that runs past max_token_length, a NaN score */
    unsigned char *bad = malloc(b.n);
    memcpy(bad, b.b, b.n);
    int huge = 1000;
    memcpy(bad + 4 + 4, &huge, 4);
    cr_assert_eq(tok_load_mem(bad, b.n, &t, &err), RLHF_EFORMAT);
    cr_assert(strstr(err.msg, "length"), "%s", err.msg);
    memcpy(bad, b.b, b.n);
    float nan = __builtin_nanf("");
    memcpy(bad + 4, &nan, 4);
    cr_assert_eq(tok_load_mem(bad, b.n, &t, &err), RLHF_EFORMAT);
    Rng r;
    rng_seed(&r, 11);
    for (int iter = 0; iter < 200; iter++) {
        for (size_t i = 0; i < b.n; i++)
            bad[i] = (unsigned char)rng_below(&r, 256);
        cr_assert_neq(tok_load_mem(bad, b.n, &t, &err), 0);
    }
    free(bad);
    cr_assert_neq(tok_load("/nonexistent/tok.bin", &t, &err), 0);
    free(b.b);
}

Test(tokenizer, encode_refuses_small_output) {
    Tokenizer *t = train_small(300);
    int ids[4], n;
    Err err = {0};
    cr_assert_eq(tok_encode(t, "hello", 5, 1, 1, ids, 4, &n, &err), RLHF_EINVAL);
    int bad[] = {5, 99999};
    char *out;
    cr_assert_eq(tok_decode(t, bad, 2, &out, NULL, &err), RLHF_EINVAL);
    Tokenizer *u;
    cr_assert_eq(tok_train(NULL, NULL, 0, 100, NULL, NULL, &u, &err), RLHF_EINVAL);
    tok_free(t);
}

/* tok_digest: the same tokenizer from a file and from the bytes a checkpoint
 * carries digests the same; one changed score or piece of the same size does
 * not, and tok_require_same names both sources. */
Test(tokenizer, digest_is_by_content) {
    Buf b = handwritten();
    char *path = write_tmp(b.b, b.n);
    Tokenizer *t, *m, *o;
    Err err = {0};
    cr_assert_eq(tok_load(path, &t, &err), 0, "%s", err.msg);
    unsigned char *bytes;
    size_t n;
    cr_assert_eq(tok_to_bytes(t, &bytes, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(tok_load_mem(bytes, n, &m, &err), 0, "%s", err.msg);
    char d1[65], d2[65], d3[65];
    cr_assert_eq(tok_digest(t, d1, &err), 0);
    cr_assert_eq(tok_digest(m, d2, &err), 0);
    cr_assert_str_eq(d1, d2);
    cr_assert_eq(strlen(d1), 64);
    cr_assert_eq(tok_require_same(t, "a.bin", m, "b.ckpt", &err), 0);
    /* the last piece "ca" becomes "cb": the same size, another tokenizer */
    b.b[b.n - 1] = 'b';
    char *path2 = write_tmp(b.b, b.n);
    cr_assert_eq(tok_load(path2, &o, &err), 0, "%s", err.msg);
    cr_assert_eq(tok_vocab_size(o), tok_vocab_size(t));
    cr_assert_eq(tok_digest(o, d3, &err), 0);
    cr_assert_str_neq(d1, d3);
    cr_assert_neq(tok_require_same(t, "a.bin", o, "b.ckpt", &err), 0);
    cr_assert(strstr(err.msg, "a.bin") && strstr(err.msg, "b.ckpt"), "%s", err.msg);
    tok_free(t), tok_free(m), tok_free(o);
    free(bytes), free(b.b);
    unlink(path), unlink(path2);
    free(path), free(path2);
}
