/* model/checkpoint.c: our format and llama2.c's round-trip exactly; truncated,
 * corrupted, mismatched and foreign files are refused with a message that
 * names the file, never a crash. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "model/checkpoint.h"
#include "util/rng.h"
#include "util/text.h"

#include "tests/unit/tmpdir.h"


static void make_model(Model *m, int shared, int heads) {
    Err err = {0};
    Config c;
    cr_assert_eq(model_config_named("tiny", &c, &err), 0);
    c.shared_classifier = shared;
    cr_assert_eq(model_create(m, &c, heads, &err), 0);
    model_init_random(m, 42);
    Rng r;
    rng_seed(&r, 1);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] += 0.01f * (float)rng_normal(&r);
}

static void same_params(const Model *a, const Model *b) {
    cr_assert_eq(memcmp(&a->cfg, &b->cfg, sizeof a->cfg), 0);
    cr_assert_eq(a->n_params, b->n_params);
    cr_assert_eq(memcmp(a->params, b->params, a->n_params * 4), 0);
}

static long file_size(const char *path) {
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    return (long)st.st_size;
}

static void truncate_copy(const char *src, const char *dst, long n) {
    FILE *f = fopen(src, "rb"), *g = fopen(dst, "wb");
    for (long i = 0; i < n; i++) fputc(fgetc(f), g);
    fclose(f);
    fclose(g);
}

static void flip_byte(const char *path, long at) {
    FILE *f = fopen(path, "r+b");
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
}

TestSuite(model_ckpt, .init = tmpdir_setup, .fini = tmpdir_teardown);

Test(model_ckpt, own_format_round_trip_with_everything) {
    Model m, back;
    make_model(&m, 0, MODEL_HEAD_REWARD | MODEL_HEAD_VALUE);
    Err err = {0};
    cr_assert_eq(model_set_tokenizer(&m, "TOKENIZER\0bytes", 15, &err), 0);
    AdamW o, o2;
    cr_assert_eq(adamw_create(&o, m.n_params, &err), 0);
    for (size_t i = 0; i < o.n; i++) o.m[i] = (float)i, o.v[i] = 1.0f / (1 + i);
    o.step = 77;
    o.weight_decay = 0.05f;
    const char extra[] = "{\"pos\":123}";
    cr_assert_eq(model_ckpt_save(tmp_path("a.ckpt"), &m, &o, extra, sizeof extra, &err), 0, "%s", err.msg);
    void *x;
    size_t xl;
    cr_assert_eq(model_ckpt_load(tmp_path("a.ckpt"), &back, &o2, &x, &xl, &err), 0, "%s", err.msg);
    same_params(&m, &back);
    cr_assert_eq(back.heads, MODEL_HEAD_REWARD | MODEL_HEAD_VALUE);
    cr_assert_eq(back.tokenizer_len, 15);
    cr_assert_eq(memcmp(back.tokenizer, "TOKENIZER\0bytes", 15), 0);
    cr_assert_eq(o2.n, o.n);
    cr_assert_eq(o2.step, 77);
    cr_assert_float_eq(o2.weight_decay, 0.05f, 0);
    cr_assert_eq(memcmp(o.m, o2.m, o.n * 4), 0);
    cr_assert_eq(memcmp(o.v, o2.v, o.n * 4), 0);
    cr_assert_eq(xl, sizeof extra);
    cr_assert_str_eq(x, extra);
    free(x);
    /* the weights point into the loaded array and the heads are there */
    cr_assert(back.w.value && back.w.reward && back.w.wcls != back.w.emb);
    adamw_free(&o2);
    model_free(&back);
    /* model_save/model_load: no optimizer; model_load tells formats apart */
    cr_assert_eq(model_save(tmp_path("b.ckpt"), &m, &err), 0);
    cr_assert_eq(model_load(tmp_path("b.ckpt"), &back, &err), 0, "%s", err.msg);
    same_params(&m, &back);
    model_free(&back);
    cr_assert_eq(model_ckpt_load(tmp_path("b.ckpt"), &back, &o2, NULL, NULL, &err), 0);
    cr_assert_eq(o2.n, 0); /* no optimizer state in the file */
    model_free(&back);
    adamw_free(&o);
    model_free(&m);
}

Test(model_ckpt, llama2c_round_trip_shared_and_unshared) {
    for (int shared = 0; shared < 2; shared++) {
        Model m, back;
        make_model(&m, shared, 0);
        Err err = {0};
        cr_assert_eq(model_save_llama2c(tmp_path("l.bin"), &m, &err), 0, "%s", err.msg);
        /* header: 7 ints, vocab negative when the classifier is its own */
        FILE *f = fopen(tmp_path("l.bin"), "rb");
        int hdr[7];
        cr_assert_eq(fread(hdr, 4, 7, f), 7);
        fclose(f);
        cr_assert_eq(hdr[0], m.cfg.dim);
        cr_assert_eq(hdr[5], shared ? m.cfg.vocab_size : -m.cfg.vocab_size);
        long want = 28 + 4 * ((long)m.n_params + (long)m.cfg.seq_len * (m.cfg.dim / m.cfg.n_heads));
        cr_assert_eq(file_size(tmp_path("l.bin")), want);
        cr_assert_eq(model_load(tmp_path("l.bin"), &back, &err), 0, "%s", err.msg);
        same_params(&m, &back);
        cr_assert_eq(back.cfg.shared_classifier, shared);
        model_free(&back);
        model_free(&m);
    }
}

Test(model_ckpt, truncated_files_refused) {
    Model m, back;
    make_model(&m, 1, MODEL_HEAD_VALUE);
    Err err = {0};
    AdamW o;
    adamw_create(&o, m.n_params, &err);
    cr_assert_eq(model_ckpt_save(tmp_path("a.ckpt"), &m, &o, "xy", 2, &err), 0);
    cr_assert_eq(model_save_llama2c(tmp_path("l.bin"), &m, &err), 0);
    long n = file_size(tmp_path("a.ckpt")), nl = file_size(tmp_path("l.bin"));
    long cuts[] = {0, 5, 8, 20, 100, n / 2, n - 33, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        truncate_copy(tmp_path("a.ckpt"), tmp_path("t.ckpt"), cuts[i]);
        err_clear(&err);
        cr_assert_neq(model_load(tmp_path("t.ckpt"), &back, &err), 0, "cut at %ld accepted", cuts[i]);
        cr_assert(strstr(err.msg, tmp_path("t.ckpt")), "message names the file: %s", err.msg);
        cr_assert_null(back.params);
    }
    long lcuts[] = {3, 27, 28, 1000, nl - 4, nl - 1};
    for (size_t i = 0; i < sizeof lcuts / sizeof lcuts[0]; i++) {
        truncate_copy(tmp_path("l.bin"), tmp_path("t.bin"), lcuts[i]);
        err_clear(&err);
        cr_assert_neq(model_load(tmp_path("t.bin"), &back, &err), 0, "llama2.c cut at %ld accepted", lcuts[i]);
        cr_assert(strstr(err.msg, "t.bin"), "%s", err.msg);
    }
    adamw_free(&o);
    model_free(&m);
}

Test(model_ckpt, corrupted_and_mismatched_refused) {
    Model m, back;
    make_model(&m, 1, 0);
    Err err = {0};
    cr_assert_eq(model_set_tokenizer(&m, "TOKENIZER bytes", 15, &err), 0);
    cr_assert_eq(model_save(tmp_path("a.ckpt"), &m, &err), 0);
    long n = file_size(tmp_path("a.ckpt")), params_end = 160 + 4 * (long)m.n_params;
    /* a flipped byte in the header (v1 fields, v2 fields, its check) or the
     * tokenizer is refused by every load, at no cost */
    long at[] = {9, 20, 60, 110, 130, 150, params_end + 3};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "cp %s %s", tmp_path("a.ckpt"), tmp_path("c.ckpt"));
        cr_assert_eq(system(cmd), 0);
        flip_byte(tmp_path("c.ckpt"), at[i]);
        err_clear(&err);
        cr_assert_neq(model_load(tmp_path("c.ckpt"), &back, &err), 0, "flip at %ld accepted", at[i]);
        cr_assert(strstr(err.msg, "c.ckpt"), "%s", err.msg);
        cr_assert_null(back.params);
    }
    /* a flipped byte in the floats or the trailing digest: a load does not
     * read the floats for a checksum, model_verify does */
    long bulk[] = {200, params_end / 2, params_end - 1, n - 1};
    for (size_t i = 0; i < sizeof bulk / sizeof bulk[0]; i++) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "cp %s %s", tmp_path("a.ckpt"), tmp_path("c.ckpt"));
        cr_assert_eq(system(cmd), 0);
        flip_byte(tmp_path("c.ckpt"), bulk[i]);
        err_clear(&err);
        int has = -1;
        cr_assert_eq(model_verify(tmp_path("c.ckpt"), &has, &err), RLHF_EFORMAT, "flip at %ld verified",
                     bulk[i]);
        cr_assert(strstr(err.msg, "c.ckpt") && strstr(err.msg, "checksum"), "%s", err.msg);
        /* resuming (model_ckpt_load) checks the whole file too; model_load does not */
        cr_assert_eq(model_ckpt_load(tmp_path("c.ckpt"), &back, NULL, NULL, NULL, &err), RLHF_EFORMAT);
        cr_assert_eq(model_load(tmp_path("c.ckpt"), &back, &err), 0, "%s", err.msg);
        model_free(&back);
    }
    int has = 0;
    cr_assert_eq(model_verify(tmp_path("a.ckpt"), &has, &err), 0, "%s", err.msg);
    cr_assert_eq(has, 1);
    /* a newer version is refused as such */
    cr_assert_eq(model_save(tmp_path("v.ckpt"), &m, &err), 0);
    FILE *f = fopen(tmp_path("v.ckpt"), "r+b");
    fseek(f, 8, SEEK_SET);
    unsigned v = 99;
    fwrite(&v, 4, 1, f);
    fclose(f);
    cr_assert_eq(model_load(tmp_path("v.ckpt"), &back, &err), RLHF_EVERSION, "%s", err.msg);
    /* a llama2.c header whose config does not match the file's size */
    cr_assert_eq(model_save_llama2c(tmp_path("l.bin"), &m, &err), 0);
    f = fopen(tmp_path("l.bin"), "r+b");
    int hidden = m.cfg.hidden_dim * 2;
    fseek(f, 4, SEEK_SET);
    fwrite(&hidden, 4, 1, f);
    fclose(f);
    cr_assert_eq(model_load(tmp_path("l.bin"), &back, &err), RLHF_EFORMAT);
    cr_assert(strstr(err.msg, "l.bin") && strstr(err.msg, "bytes"), "%s", err.msg);
    /* garbage and text files */
    f = fopen(tmp_path("g.bin"), "wb");
    fputs("hello, this is not a model at all, just some text\n", f);
    fclose(f);
    cr_assert_neq(model_load(tmp_path("g.bin"), &back, &err), 0);
    cr_assert(strstr(err.msg, "g.bin"), "%s", err.msg);
    f = fopen(tmp_path("z.bin"), "wb");
    int zeros[7] = {0};
    fwrite(zeros, 4, 7, f);
    fclose(f);
    cr_assert_neq(model_load(tmp_path("z.bin"), &back, &err), 0);
    cr_assert_neq(model_load(tmp_path("missing.bin"), &back, &err), 0);
    cr_assert(strstr(err.msg, "missing.bin"), "%s", err.msg);
    cr_assert_neq(model_load(tmpdir_name, &back, &err), 0); /* a folder */
    model_free(&m);
}

Test(model_ckpt, write_is_atomic_and_leaves_no_temporary) {
    Model m;
    make_model(&m, 1, 0);
    Err err = {0};
    cr_assert_eq(model_save(tmp_path("a.ckpt"), &m, &err), 0);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "test $(ls %s | wc -l) -eq 1", tmpdir_name);
    cr_assert_eq(system(cmd), 0, "a temporary file was left behind");
    /* an unwritable destination fails cleanly */
    cr_assert_neq(model_save("/nonexistent-dir/x.ckpt", &m, &err), 0);
    cr_assert(strstr(err.msg, "/nonexistent-dir/x.ckpt"), "%s", err.msg);
    char hex[65];
    cr_assert_eq(model_file_sha256(tmp_path("a.ckpt"), hex, &err), 0);
    cr_assert_eq(strlen(hex), 64);
    model_free(&m);
}

/* The registry's digest is remembered on the file for its size, mtime and
 * inode: asked again it is the same, and a write makes it computed afresh. */
Test(model_ckpt, file_sha256_is_remembered_until_the_file_changes) {
    Model m;
    make_model(&m, 1, 0);
    Err err = {0};
    cr_assert_eq(model_save(tmp_path("s.ckpt"), &m, &err), 0);
    model_free(&m);
    char want[65], got[65], cmd[300];
    snprintf(cmd, sizeof cmd, "sha256sum %s | cut -c1-64 > %s", tmp_path("s.ckpt"), tmp_path("s.txt"));
    cr_assert_eq(system(cmd), 0);
    FILE *f = fopen(tmp_path("s.txt"), "r");
    cr_assert_eq(fscanf(f, "%64s", want), 1);
    fclose(f);
    /* an old file (fresh ones are not remembered: mtimes tick coarsely) */
    struct timespec old[2] = {{time(NULL) - 60, 0}, {time(NULL) - 60, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, tmp_path("s.ckpt"), old, 0), 0);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(model_file_sha256(tmp_path("s.ckpt"), got, &err), 0, "%s", err.msg);
        cr_assert_str_eq(got, want);
    }
    flip_byte(tmp_path("s.ckpt"), 500); /* same size, new mtime */
    cr_assert_eq(model_file_sha256(tmp_path("s.ckpt"), got, &err), 0);
    cr_assert_str_neq(got, want);
    cr_assert_eq(system(cmd), 0);
    f = fopen(tmp_path("s.txt"), "r");
    cr_assert_eq(fscanf(f, "%64s", want), 1);
    fclose(f);
    cr_assert_str_eq(got, want);
}

/* A config with every Hugging Face family feature (head_dim with NH*hs != dim,
 * biases, q/k norms, eps, theta, llama3 scaling). */
static void make_hf_model(Model *m) {
    Config c = {.dim = 32, .hidden_dim = 48, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                .vocab_size = 64, .seq_len = 16, .shared_classifier = 1, .head_dim = 12,
                .qkv_bias = 1, .qk_norm = 1, .norm_eps = 1e-6f, .rope_theta = 500000.0f,
                .rope_factor = 8.0f, .rope_low_freq = 1.0f, .rope_high_freq = 4.0f,
                .rope_orig_ctx = 8192};
    Err err = {0};
    cr_assert_eq(model_create(m, &c, MODEL_HEAD_VALUE, &err), 0, "%s", err.msg);
    model_init_random(m, 5);
    Rng r;
    rng_seed(&r, 2);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] += 0.01f * (float)rng_normal(&r);
}

Test(model_ckpt, new_config_fields_round_trip) {
    Model m, back;
    make_hf_model(&m);
    Err err = {0};
    cr_assert(m.w.bq && m.w.bk && m.w.bv && m.w.q_norm && m.w.k_norm);
    cr_assert_eq(m.sizes[MODEL_T_WQ], 2 * 48 * 32);
    cr_assert_eq(model_save(tmp_path("h.ckpt"), &m, &err), 0, "%s", err.msg);
    cr_assert_eq(model_load(tmp_path("h.ckpt"), &back, &err), 0, "%s", err.msg);
    same_params(&m, &back); /* the whole Config compares equal, every new field included */
    cr_assert(back.w.q_norm && back.w.bv);
    model_free(&back);
    int has = 0;
    cr_assert_eq(model_verify(tmp_path("h.ckpt"), &has, &err), 0, "%s", err.msg);
    char js[512];
    model_config_json(&m.cfg, js, sizeof js);
    cr_assert(strstr(js, "\"head_dim\":12") && strstr(js, "\"qk_norm\":true") &&
                  strstr(js, "\"rope_theta\":500000") && strstr(js, "\"factor\":8") &&
                  js[strlen(js) - 1] == '}',
              "%s", js);
    /* a header whose new fields are nonsense is refused with the file named */
    FILE *f = fopen(tmp_path("h.ckpt"), "r+b");
    int hd = 7; /* odd head size */
    fseek(f, 104, SEEK_SET);
    fwrite(&hd, 4, 1, f);
    fclose(f);
    cr_assert_eq(model_load(tmp_path("h.ckpt"), &back, &err), RLHF_EFORMAT);
    cr_assert(strstr(err.msg, "h.ckpt") && strstr(err.msg, "head size"), "%s", err.msg);
    model_free(&m);
}

Test(model_ckpt, version_1_files_still_load) {
    Model m, back;
    make_model(&m, 1, MODEL_HEAD_REWARD);
    Err err = {0};
    cr_assert_eq(model_set_tokenizer(&m, "TOK", 3, &err), 0);
    cr_assert_eq(model_save(tmp_path("v2.ckpt"), &m, &err), 0);
    /* rebuild the file as version 1 wrote it: the 104-byte header, the same
     * sections, the sha256 of everything before it */
    long n = file_size(tmp_path("v2.ckpt"));
    unsigned char *b = malloc(n);
    FILE *f = fopen(tmp_path("v2.ckpt"), "rb");
    cr_assert_eq(fread(b, 1, n, f), (size_t)n);
    fclose(f);
    unsigned v = 1, hsz = 104;
    memcpy(b + 8, &v, 4);
    memcpy(b + 12, &hsz, 4);
    size_t body = n - 160 - 32;
    memmove(b + 104, b + 160, body);
    Sha256 s;
    sha256_init(&s);
    sha256_update(&s, b, 104 + body);
    sha256_final(&s, b + 104 + body);
    f = fopen(tmp_path("v1.ckpt"), "wb");
    fwrite(b, 1, 104 + body + 32, f);
    fclose(f);
    free(b);
    cr_assert_eq(model_load(tmp_path("v1.ckpt"), &back, &err), 0, "%s", err.msg);
    same_params(&m, &back);
    cr_assert_eq(back.tokenizer_len, 3);
    cr_assert_eq(back.heads, MODEL_HEAD_REWARD);
    model_free(&back);
    int has = 0;
    cr_assert_eq(model_verify(tmp_path("v1.ckpt"), &has, &err), 0, "%s", err.msg);
    cr_assert_eq(has, 1);
    flip_byte(tmp_path("v1.ckpt"), 300);
    cr_assert_eq(model_verify(tmp_path("v1.ckpt"), &has, &err), RLHF_EFORMAT);
    model_free(&m);
}

Test(model_ckpt, llama2c_export_refuses_what_it_cannot_hold) {
    Model base;
    make_model(&base, 1, 0);
    Err err = {0};
    struct {
        const char *field, *said;
    } cases[] = {{"qkv_bias", "biases"}, {"qk_norm", "q/k norms"}, {"head_dim", "head size"},
                 {"norm_eps", "eps"},    {"rope_theta", "theta"},   {"rope_factor", "scaling"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Config c = base.cfg;
        const char *f = cases[i].field;
        if (!strcmp(f, "qkv_bias")) c.qkv_bias = 1;
        if (!strcmp(f, "qk_norm")) c.qk_norm = 1;
        if (!strcmp(f, "head_dim")) c.head_dim = 16; /* tiny: dim 32, 4 heads -> 8 */
        if (!strcmp(f, "norm_eps")) c.norm_eps = 1e-6f;
        if (!strcmp(f, "rope_theta")) c.rope_theta = 1e6f;
        if (!strcmp(f, "rope_factor"))
            c.rope_factor = 8, c.rope_low_freq = 1, c.rope_high_freq = 4, c.rope_orig_ctx = 64;
        Model m;
        cr_assert_eq(model_create(&m, &c, 0, &err), 0, "%s", err.msg);
        err_clear(&err);
        cr_assert_eq(model_save_llama2c(tmp_path("x.bin"), &m, &err), RLHF_EINVAL, "%s accepted", f);
        cr_assert(strstr(err.msg, cases[i].said) && strstr(err.msg, "x.bin"), "%s", err.msg);
        cr_assert_neq(access(tmp_path("x.bin"), F_OK), 0, "a file was left behind");
        model_free(&m);
    }
    /* the defaults written out, and head_dim equal to dim/heads, are llama2.c's */
    Config c = base.cfg;
    c.head_dim = 8, c.norm_eps = 1e-5f, c.rope_theta = 10000.0f;
    Model m;
    cr_assert_eq(model_create(&m, &c, 0, &err), 0);
    cr_assert_eq(model_save_llama2c(tmp_path("x.bin"), &m, &err), 0, "%s", err.msg);
    model_free(&m);
    model_free(&base);
}
