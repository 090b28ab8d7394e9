/* model/checkpoint.c: our format and llama2.c's round-trip exactly; truncated,
 * corrupted, mismatched and foreign files are refused with a message that
 * names the file, never a crash. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/checkpoint.h"
#include "util/rng.h"

static char dir[64];

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/rlhf-ckpt-XXXXXX");
    cr_assert(mkdtemp(dir));
}
static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static const char *p(const char *name) {
    static char buf[4][128];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

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

TestSuite(model_ckpt, .init = setup, .fini = teardown);

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
    cr_assert_eq(model_ckpt_save(p("a.ckpt"), &m, &o, extra, sizeof extra, &err), 0, "%s", err.msg);
    void *x;
    size_t xl;
    cr_assert_eq(model_ckpt_load(p("a.ckpt"), &back, &o2, &x, &xl, &err), 0, "%s", err.msg);
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
    cr_assert_eq(model_save(p("b.ckpt"), &m, &err), 0);
    cr_assert_eq(model_load(p("b.ckpt"), &back, &err), 0, "%s", err.msg);
    same_params(&m, &back);
    model_free(&back);
    cr_assert_eq(model_ckpt_load(p("b.ckpt"), &back, &o2, NULL, NULL, &err), 0);
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
        cr_assert_eq(model_save_llama2c(p("l.bin"), &m, &err), 0, "%s", err.msg);
        /* header: 7 ints, vocab negative when the classifier is its own */
        FILE *f = fopen(p("l.bin"), "rb");
        int hdr[7];
        cr_assert_eq(fread(hdr, 4, 7, f), 7);
        fclose(f);
        cr_assert_eq(hdr[0], m.cfg.dim);
        cr_assert_eq(hdr[5], shared ? m.cfg.vocab_size : -m.cfg.vocab_size);
        long want = 28 + 4 * ((long)m.n_params + (long)m.cfg.seq_len * (m.cfg.dim / m.cfg.n_heads));
        cr_assert_eq(file_size(p("l.bin")), want);
        cr_assert_eq(model_load(p("l.bin"), &back, &err), 0, "%s", err.msg);
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
    cr_assert_eq(model_ckpt_save(p("a.ckpt"), &m, &o, "xy", 2, &err), 0);
    cr_assert_eq(model_save_llama2c(p("l.bin"), &m, &err), 0);
    long n = file_size(p("a.ckpt")), nl = file_size(p("l.bin"));
    long cuts[] = {0, 5, 8, 20, 100, n / 2, n - 33, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        truncate_copy(p("a.ckpt"), p("t.ckpt"), cuts[i]);
        err_clear(&err);
        cr_assert_neq(model_load(p("t.ckpt"), &back, &err), 0, "cut at %ld accepted", cuts[i]);
        cr_assert(strstr(err.msg, p("t.ckpt")), "message names the file: %s", err.msg);
        cr_assert_null(back.params);
    }
    long lcuts[] = {3, 27, 28, 1000, nl - 4, nl - 1};
    for (size_t i = 0; i < sizeof lcuts / sizeof lcuts[0]; i++) {
        truncate_copy(p("l.bin"), p("t.bin"), lcuts[i]);
        err_clear(&err);
        cr_assert_neq(model_load(p("t.bin"), &back, &err), 0, "llama2.c cut at %ld accepted", lcuts[i]);
        cr_assert(strstr(err.msg, "t.bin"), "%s", err.msg);
    }
    adamw_free(&o);
    model_free(&m);
}

Test(model_ckpt, corrupted_and_mismatched_refused) {
    Model m, back;
    make_model(&m, 1, 0);
    Err err = {0};
    cr_assert_eq(model_save(p("a.ckpt"), &m, &err), 0);
    long n = file_size(p("a.ckpt"));
    /* any flipped byte: in the params (checksum), the header, the digest */
    long at[] = {200, n / 2, n - 40, n - 1, 9, 20, 60};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "cp %s %s", p("a.ckpt"), p("c.ckpt"));
        cr_assert_eq(system(cmd), 0);
        flip_byte(p("c.ckpt"), at[i]);
        err_clear(&err);
        cr_assert_neq(model_load(p("c.ckpt"), &back, &err), 0, "flip at %ld accepted", at[i]);
        cr_assert(strstr(err.msg, "c.ckpt"), "%s", err.msg);
    }
    flip_byte(p("a.ckpt"), 200);
    model_load(p("a.ckpt"), &back, &err);
    cr_assert(strstr(err.msg, "checksum"), "%s", err.msg);
    /* a newer version is refused as such */
    cr_assert_eq(model_save(p("v.ckpt"), &m, &err), 0);
    FILE *f = fopen(p("v.ckpt"), "r+b");
    fseek(f, 8, SEEK_SET);
    unsigned v = 99;
    fwrite(&v, 4, 1, f);
    fclose(f);
    cr_assert_eq(model_load(p("v.ckpt"), &back, &err), RLHF_EVERSION, "%s", err.msg);
    /* a llama2.c header whose config does not match the file's size */
    cr_assert_eq(model_save_llama2c(p("l.bin"), &m, &err), 0);
    f = fopen(p("l.bin"), "r+b");
    int hidden = m.cfg.hidden_dim * 2;
    fseek(f, 4, SEEK_SET);
    fwrite(&hidden, 4, 1, f);
    fclose(f);
    cr_assert_eq(model_load(p("l.bin"), &back, &err), RLHF_EFORMAT);
    cr_assert(strstr(err.msg, "l.bin") && strstr(err.msg, "bytes"), "%s", err.msg);
    /* garbage and text files */
    f = fopen(p("g.bin"), "wb");
    fputs("hello, this is not a model at all, just some text\n", f);
    fclose(f);
    cr_assert_neq(model_load(p("g.bin"), &back, &err), 0);
    cr_assert(strstr(err.msg, "g.bin"), "%s", err.msg);
    f = fopen(p("z.bin"), "wb");
    int zeros[7] = {0};
    fwrite(zeros, 4, 7, f);
    fclose(f);
    cr_assert_neq(model_load(p("z.bin"), &back, &err), 0);
    cr_assert_neq(model_load(p("missing.bin"), &back, &err), 0);
    cr_assert(strstr(err.msg, "missing.bin"), "%s", err.msg);
    cr_assert_neq(model_load(dir, &back, &err), 0); /* a folder */
    model_free(&m);
}

Test(model_ckpt, write_is_atomic_and_leaves_no_temporary) {
    Model m;
    make_model(&m, 1, 0);
    Err err = {0};
    cr_assert_eq(model_save(p("a.ckpt"), &m, &err), 0);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "test $(ls %s | wc -l) -eq 1", dir);
    cr_assert_eq(system(cmd), 0, "a temporary file was left behind");
    /* an unwritable destination fails cleanly */
    cr_assert_neq(model_save("/nonexistent-dir/x.ckpt", &m, &err), 0);
    cr_assert(strstr(err.msg, "/nonexistent-dir/x.ckpt"), "%s", err.msg);
    char hex[65];
    cr_assert_eq(model_file_sha256(p("a.ckpt"), hex, &err), 0);
    cr_assert_eq(strlen(hex), 64);
    model_free(&m);
}
