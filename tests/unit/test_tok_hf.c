/* model/tok_hf: tokenizer.json fixtures written by hand (byte-level and
 * sentencepiece-style), the encoding flags, stop ids, streaming pieces, exact
 * round trips of any bytes, and clear errors for bad or unsupported files. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/tok_hf.h"
#include "model/tokenizer.h"
#include "util/rng.h"

/* A fresh directory holding the given files (name, text pairs, NULL-ended). */
static char *write_dir(const char *const *files) {
    char *dir = strdup("/tmp/rlhf-tokhf-XXXXXX");
    cr_assert(mkdtemp(dir));
    for (int i = 0; files[i]; i += 2) {
        char p[256];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        FILE *f = fopen(p, "wb");
        cr_assert(f);
        fputs(files[i + 1], f);
        fclose(f);
    }
    return dir;
}

static void rm_dir(char *dir) {
    static const char *const names[] = {"tokenizer.json", "tokenizer_config.json",
                                        "generation_config.json", "config.json"};
    char p[256];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
    free(dir);
}

static char *utf8(int cp) {
    static char b[8];
    memset(b, 0, sizeof b);
    if (cp < 0x80)
        b[0] = (char)cp;
    else if (cp < 0x800)
        b[0] = (char)(0xC0 | cp >> 6), b[1] = (char)(0x80 | (cp & 63));
    else
        b[0] = (char)(0xE0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 63)),
        b[2] = (char)(0x80 | (cp & 63));
    return b;
}

/* GPT-2-style: the 256 byte characters (ids = byte values), merges he, ll,
 * hell, Ġw; <|end|> special (260), <tool> not (261). array_merges: the
 * [a, b] form instead of "a b". */
static char *byte_level_json(int array_merges) {
    cJSON *root = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int b = 0; b < 256; b++)
        cJSON_AddNumberToObject(vocab, utf8(hf_byte_char(b)), b);
    cJSON_AddNumberToObject(vocab, "he", 256);
    cJSON_AddNumberToObject(vocab, "ll", 257);
    cJSON_AddNumberToObject(vocab, "hell", 258);
    cJSON_AddNumberToObject(vocab, "\xc4\xa0w", 259); /* Ġw */
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    static const char *const m[][2] = {{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"\xc4\xa0", "w"}};
    for (int i = 0; i < 4; i++) {
        if (array_merges) {
            cJSON *pair = cJSON_CreateArray();
            cJSON_AddItemToArray(pair, cJSON_CreateString(m[i][0]));
            cJSON_AddItemToArray(pair, cJSON_CreateString(m[i][1]));
            cJSON_AddItemToArray(merges, pair);
        } else {
            char s[32];
            snprintf(s, sizeof s, "%s %s", m[i][0], m[i][1]);
            cJSON_AddItemToArray(merges, cJSON_CreateString(s));
        }
    }
    cJSON *added = cJSON_Parse("[{\"id\":260,\"content\":\"<|end|>\",\"special\":true},"
                               "{\"id\":261,\"content\":\"<tool>\",\"special\":false}]");
    cJSON_AddItemToObject(root, "added_tokens", added);
    cJSON_AddItemToObject(root, "pre_tokenizer",
                          cJSON_Parse("{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
                                      "\"use_regex\":true}"));
    cJSON_AddItemToObject(root, "decoder", cJSON_Parse("{\"type\":\"ByteLevel\"}"));
    cJSON_AddItemToObject(root, "post_processor", cJSON_Parse("{\"type\":\"ByteLevel\"}"));
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

/* sentencepiece-style (Llama 2 / Mistral shape): <unk> <s> </s>, <0x00>..<0xFF>
 * at 3..258, ▁ a b ▁a ab ▁ab at 259..264. */
static char *sp_json(void) {
    cJSON *root = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddBoolToObject(model, "byte_fallback", 1);
    cJSON_AddBoolToObject(model, "fuse_unk", 1);
    cJSON_AddStringToObject(model, "unk_token", "<unk>");
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    cJSON_AddNumberToObject(vocab, "<unk>", 0);
    cJSON_AddNumberToObject(vocab, "<s>", 1);
    cJSON_AddNumberToObject(vocab, "</s>", 2);
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        cJSON_AddNumberToObject(vocab, s, 3 + b);
    }
    static const char *const pieces[] = {"\xe2\x96\x81",
                                         "a",
                                         "b",
                                         "\xe2\x96\x81"
                                         "a",
                                         "ab",
                                         "\xe2\x96\x81"
                                         "ab"};
    for (int i = 0; i < 6; i++)
        cJSON_AddNumberToObject(vocab, pieces[i], 259 + i);
    cJSON_AddItemToObject(model, "merges",
                          cJSON_Parse("[\"\xe2\x96\x81 a\", \"a b\", \"\xe2\x96\x81"
                                      "a b\"]"));
    cJSON_AddItemToObject(root, "added_tokens",
                          cJSON_Parse("[{\"id\":0,\"content\":\"<unk>\",\"special\":true},"
                                      "{\"id\":1,\"content\":\"<s>\",\"special\":true},"
                                      "{\"id\":2,\"content\":\"</s>\",\"special\":true}]"));
    cJSON_AddItemToObject(
        root, "normalizer",
        cJSON_Parse("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":"
                    "\"\xe2\x96\x81\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},"
                    "\"content\":\"\xe2\x96\x81\"}]}"));
    cJSON_AddNullToObject(root, "pre_tokenizer");
    cJSON_AddItemToObject(
        root, "post_processor",
        cJSON_Parse("{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":"
                    "\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
                    "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":"
                    "[\"<s>\"]}}}"));
    cJSON_AddItemToObject(
        root, "decoder",
        cJSON_Parse("{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{"
                    "\"String\":\"\xe2\x96\x81\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},"
                    "{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,"
                    "\"stop\":0}]}"));
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

static Tokenizer *load_json(const char *json, const char *const *extra) {
    const char *files[12] = {"tokenizer.json", json};
    int k = 2;
    for (int i = 0; extra && extra[i]; i++)
        files[k++] = extra[i];
    files[k] = NULL;
    char *dir = write_dir(files);
    Tokenizer *t = NULL;
    Err err = {0};
    int rc = tok_hf_load(dir, &t, &err);
    rm_dir(dir);
    cr_assert_eq(rc, 0, "%s", err.msg);
    return t;
}

static int enc(const Tokenizer *t, const char *s, size_t n, int flags, int *ids) {
    int m = -1;
    Err err = {0};
    cr_assert_eq(tok_encode_flags(t, s, n, flags, ids, tok_encode_cap(n), &m, &err), 0, "%s",
                 err.msg);
    return m;
}

static void assert_ids(const int *got, int n, const int *want, int nw) {
    cr_assert_eq(n, nw, "got %d ids, want %d", n, nw);
    for (int i = 0; i < n; i++)
        cr_assert_eq(got[i], want[i], "id %d: got %d, want %d", i, got[i], want[i]);
}

static void assert_round_trip(const Tokenizer *t, const char *s, size_t n) {
    int *ids = malloc(sizeof(int) * (size_t)tok_encode_cap(n));
    int m = enc(t, s, n, 0, ids);
    char *back = NULL;
    size_t bl = 0;
    Err err = {0};
    cr_assert_eq(tok_decode(t, ids, m, &back, &bl, &err), 0, "%s", err.msg);
    cr_assert_eq(bl, n, "round trip of %zu bytes gave %zu", n, bl);
    cr_assert(memcmp(back, s, n) == 0);
    free(back);
    free(ids);
}

Test(tok_hf, byte_level_merges_by_rank) {
    for (int form = 0; form < 2; form++) {
        char *json = byte_level_json(form);
        Tokenizer *t = load_json(json, NULL);
        free(json);
        int ids[64];
        int n = enc(t, "hello world", 11, 0, ids);
        const int want[] = {258, 'o', 259, 'o', 'r', 'l', 'd'};
        assert_ids(ids, n, want, 7);
        cr_assert(tok_is_hf(t));
        cr_assert_eq(tok_vocab_size(t), 262);
        cr_assert_eq(tok_bos(t), -1);
        /* no template: --bos adds nothing */
        cr_assert_eq(enc(t, "hello world", 11, TOK_ADD_BOS, ids), 7);
        tok_free(t);
    }
}

Test(tok_hf, special_tokens_only_with_the_flag) {
    char *json = byte_level_json(0);
    Tokenizer *t = load_json(json, NULL);
    free(json);
    int ids[64];
    const char *s = "a<|end|>b<tool>";
    int n = enc(t, s, strlen(s), TOK_SPECIAL, ids);
    const int want[] = {'a', 260, 'b', 261};
    assert_ids(ids, n, want, 4);
    n = enc(t, s, strlen(s), 0, ids); /* <|end|> is text now; <tool> (not special) still matched */
    cr_assert_eq(n, 1 + 7 + 1 + 1);
    cr_assert_eq(ids[1], '<');
    cr_assert_eq(ids[n - 1], 261);
    cr_assert(tok_is_stop(t, 260)); /* a special "<|end|>" ends a turn */
    cr_assert(!tok_is_stop(t, 261));
    size_t len;
    tok_piece(t, 'a', 260, &len);
    cr_assert_eq(len, 0);
    char *back;
    Err err = {0};
    n = enc(t, s, strlen(s), TOK_SPECIAL, ids);
    cr_assert_eq(tok_decode(t, ids, n, &back, &len, &err), 0);
    cr_assert_str_eq(back, "ab<tool>"); /* special tokens skipped, as skip_special_tokens */
    free(back);
    tok_free(t);
}

Test(tok_hf, byte_level_any_bytes_round_trip) {
    char *json = byte_level_json(1);
    Tokenizer *t = load_json(json, NULL);
    free(json);
    Rng r;
    rng_seed(&r, 7);
    char buf[512];
    for (int it = 0; it < 200; it++) {
        size_t n = rng_u32(&r) % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = it % 2 ? (char)(rng_u32(&r) % 256)
                            : " helo\n\t\xc3\xa9\xe4\xbd\xa0"[rng_u32(&r) % 12];
        assert_round_trip(t, buf, n);
    }
    /* a two-byte character is two byte tokens; streaming gives the raw bytes */
    int ids[8];
    int n = enc(t, "\xc3\xa9", 2, 0, ids);
    cr_assert_eq(n, 2);
    size_t len;
    const char *p = tok_piece(t, -1, ids[0], &len);
    cr_assert_eq(len, 1);
    cr_assert_eq((unsigned char)p[0], 0xc3);
    tok_free(t);
}

Test(tok_hf, sentencepiece_style) {
    char *json = sp_json();
    Tokenizer *t = load_json(json, NULL);
    free(json);
    int ids[64];
    int n = enc(t, "ab a", 4, TOK_ADD_BOS, ids);
    const int want[] = {1, 264, 262};
    assert_ids(ids, n, want, 3);
    cr_assert_eq(tok_bos(t), 1);
    cr_assert_eq(tok_eos(t), 2);
    cr_assert(tok_is_stop(t, 2));
    n = enc(t, "c", 1, TOK_ADD_EOS, ids); /* not in the vocabulary: byte fallback */
    const int want2[] = {259, 3 + 'c', 2};
    assert_ids(ids, n, want2, 3);
    size_t len;
    const char *p = tok_piece(t, 1, 262, &len); /* after BOS the prepended space goes */
    cr_assert_eq(len, 1);
    cr_assert_eq(p[0], 'a');
    p = tok_piece(t, 264, 262, &len);
    cr_assert(len == 2 && memcmp(p, " a", 2) == 0);
    p = tok_piece(t, 264, 3 + 0xff, &len);
    cr_assert(len == 1 && (unsigned char)p[0] == 0xff);
    const char *texts[] = {"ab a", "  two  spaces ", "x\xff\xfe y\n\t", "\xe4\xbd\xa0\xe5\xa5\xbd",
                           ""};
    for (int i = 0; i < 5; i++)
        assert_round_trip(t, texts[i], strlen(texts[i]));
    Err err = {0};
    cr_assert_eq(tok_check_vocab(t, 300, &err), 0); /* a padded embedding is fine */
    cr_assert_neq(tok_check_vocab(t, 200, &err), 0);
    cr_assert(strstr(err.msg, "265"), "%s", err.msg);
    tok_free(t);
}

Test(tok_hf, configs_name_bos_eos_and_stops) {
    char *json = byte_level_json(0);
    const char *extra[] = {"tokenizer_config.json",
                           "{\"eos_token\": {\"content\": \"<tool>\"}, \"add_bos_token\": true, "
                           "\"bos_token\": \"he\"}",
                           "generation_config.json", "{\"eos_token_id\": [258, 259]}", NULL};
    Tokenizer *t = load_json(json, extra);
    free(json);
    cr_assert_eq(tok_eos(t), 261);
    cr_assert_eq(tok_bos(t), 256);
    cr_assert(tok_is_stop(t, 258) && tok_is_stop(t, 259) && tok_is_stop(t, 261));
    cr_assert(!tok_is_stop(t, 'a'));
    int ids[8];
    int n = enc(t, "x", 1, TOK_ADD_BOS | TOK_ADD_EOS, ids);
    const int want[] = {256, 'x', 261};
    assert_ids(ids, n, want, 3);
    tok_free(t);
}

/* Loading json must fail with a message holding needle. */
static void expect_error(const char *json, const char *needle) {
    const char *files[] = {"tokenizer.json", json, NULL};
    char *dir = write_dir(files);
    Tokenizer *t = NULL;
    Err err = {0};
    int rc = tok_hf_load(dir, &t, &err);
    rm_dir(dir);
    cr_assert_neq(rc, 0, "loaded; expected an error with '%s'", needle);
    cr_assert_null(t);
    cr_assert(strstr(err.msg, needle), "error '%s' lacks '%s'", err.msg, needle);
}

static char *replace(const char *s, const char *a, const char *b) {
    const char *hit = strstr(s, a);
    cr_assert(hit, "fixture lacks %s", a);
    char *out = malloc(strlen(s) + strlen(b) + 1);
    memcpy(out, s, (size_t)(hit - s));
    strcpy(out + (hit - s), b);
    strcat(out, hit + strlen(a));
    return out;
}

Test(tok_hf, bad_files_are_clear_errors) {
    char *json = byte_level_json(0);
    char *cut = strdup(json);
    cut[strlen(cut) / 2] = '\0';
    expect_error(cut, "tokenizer.json: not valid JSON");
    free(cut);
    expect_error("[1, 2]", "not a JSON object");
    expect_error("{\"normalizer\": null}", "tokenizer.json: no \"model\" object");
    char *s = replace(json, "\"type\":\"BPE\"", "\"type\":\"Unigram\"");
    expect_error(s, "tokenizer.json: model.type \"Unigram\" is not supported (BPE only)");
    free(s);
    s = replace(json, "\"type\":\"ByteLevel\",\"add_prefix_space\"",
                "\"type\":\"Whitespace\",\"add_prefix_space\"");
    expect_error(s, "pre_tokenizer: type \"Whitespace\" is not supported");
    free(s);
    s = replace(
        json, "\"pre_tokenizer\":", "\"normalizer\":{\"type\":\"Precompiled\"},\"pre_tokenizer\":");
    expect_error(s, "normalizer: type \"Precompiled\" is not supported");
    free(s);
    s = replace(json, "\"decoder\":{\"type\":\"ByteLevel\"}",
                "\"decoder\":{\"type\":\"WordPiece\"}");
    expect_error(s, "decoder type \"WordPiece\" is not supported");
    free(s);
    s = replace(json, "\"he ll\"", "\"he zz\"");
    expect_error(s, "model.merges[2]");
    free(s);
    s = replace(json, "\"merges\":", "\"merges_x\":");
    expect_error(s, "model.merges is missing");
    free(s);
    s = replace(json, "\"pre_tokenizer\":{",
                "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(a\"},\"behavior\":"
                "\"Isolated\"},\"old_pre\":{");
    expect_error(s, "pre_tokenizer: regex /(a/");
    free(s);
    /* an empty Metaspace replacement would split at every position, for ever */
    s = replace(json, "\"pre_tokenizer\":{",
                "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\"},\"old_pre\":{");
    expect_error(s, "pre_tokenizer: Metaspace replacement \"\" is not one character");
    free(s);
    s = replace(json, "\"decoder\":{\"type\":\"ByteLevel\"}",
                "\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"ab\"}");
    expect_error(s, "decoder Metaspace replacement \"ab\" is not one character");
    free(s);
    free(json);
    Tokenizer *t = NULL;
    Err err = {0};
    cr_assert_neq(tok_hf_load("/nonexistent/model", &t, &err), 0);
    cr_assert(strstr(err.msg, "/nonexistent/model"), "%s", err.msg);
}

Test(tok_hf, split_behaviors) {
    /* Split on "-" with each behavior, over the byte-level vocabulary */
    static const char *const behaviors[] = {"Removed", "Isolated", "MergedWithPrevious",
                                            "MergedWithNext", "Contiguous"};
    /* pieces of "a-b--c" (digits: which bytes start a piece) */
    static const char *const want[] = {"a|b|c", "a|-|b|-|-|c", "a-|b-|-|c", "a|-b|-|-c",
                                       "a|-|b|--|c"};
    char *json = byte_level_json(0);
    for (int i = 0; i < 5; i++) {
        char pre[256];
        snprintf(pre, sizeof pre,
                 "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},"
                 "\"behavior\":\"%s\",\"invert\":false},\"old_pre\":{",
                 behaviors[i]);
        char *s = replace(json, "\"pre_tokenizer\":{", pre);
        cJSON *root = cJSON_Parse(s);
        cr_assert(root);
        HfChain *c = NULL;
        Err err = {0};
        cr_assert_eq(
            hf_pre_parse(cJSON_GetObjectItem(root, "pre_tokenizer"), "pre_tokenizer", &c, &err), 0,
            "%s", err.msg);
        HfScratch *sc = hf_scratch_new();
        HfPieces p = {0};
        hf_pieces_add(&p, "a-b--c", 6);
        cr_assert_eq(hf_pre_apply(c, sc, &p, 1), 0);
        char got[64] = "";
        for (int k = 0; k < p.n; k++) {
            if (k) strcat(got, "|");
            strncat(got, p.s + p.off[k], p.len[k]);
        }
        cr_assert_str_eq(got, want[i], "%s: got %s", behaviors[i], got);
        hf_pieces_free(&p);
        hf_scratch_free(sc);
        hf_chain_free(c);
        cJSON_Delete(root);
        free(s);
    }
    free(json);
}

Test(tok_hf, embeds_in_a_checkpoint) {
    char *json = sp_json();
    const char *extra[] = {"generation_config.json", "{\"eos_token_id\": [2, 264]}", NULL};
    Tokenizer *t = load_json(json, extra);
    free(json);
    unsigned char *b;
    size_t n;
    Err err = {0};
    cr_assert_eq(tok_to_bytes(t, &b, &n, &err), 0, "%s", err.msg);
    Tokenizer *u;
    cr_assert_eq(tok_load_mem(b, n, &u, &err), 0, "%s", err.msg);
    cr_assert(tok_is_hf(u));
    cr_assert(tok_is_stop(u, 264));
    int x[16], y[16];
    int nx = enc(t, "ab a c", 6, TOK_ADD_BOS, x), ny = enc(u, "ab a c", 6, TOK_ADD_BOS, y);
    assert_ids(y, ny, x, nx);
    Tokenizer *v;
    cr_assert_neq(tok_load_mem(b, n - 5, &v, &err), 0); /* truncated */
    cr_assert(strstr(err.msg, "embedded tokenizer.json"), "%s", err.msg);
    /* llama2.c's file format cannot hold it */
    cr_assert_neq(tok_save(t, "/tmp/rlhf-never-written.bin", &err), 0);
    cr_assert(strstr(err.msg, "tokenizer.json"), "%s", err.msg);
    free(b);
    tok_free(u);
    tok_free(t);
}

Test(tok_hf, null_bos_token_means_none) {
    /* Qwen: config.json names a bos_token_id, tokenizer_config.json says none */
    char *json = byte_level_json(0);
    const char *extra[] = {"tokenizer_config.json",
                           "{\"bos_token\": null, \"eos_token\": \"<|end|>\"}", "config.json",
                           "{\"bos_token_id\": 261, \"eos_token_id\": 261}", NULL};
    Tokenizer *t = load_json(json, extra);
    free(json);
    cr_assert_eq(tok_bos(t), -1);
    cr_assert_eq(tok_eos(t), 260);
    cr_assert(tok_is_stop(t, 260) && tok_is_stop(t, 261));
    tok_free(t);
}
