/* model/safetensors.c and model/hf.c: the dtype conversions are exact where
 * they must be and round to nearest even where they round; a written file
 * reads back bit for bit; an HF directory written from a model loads back to
 * the same weights (the q/k permutation undone); damaged files and
 * unsupported configs are refused naming the file, the tensor or the field. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/hf.h"
#include "model/safetensors.h"
#include "util/rng.h"
#include "util/sys.h"

#include "tests/unit/files.h"
#include "tests/unit/tmpdir.h"


Test(safetensors, bf16_rounds_to_nearest_even) {
    cr_assert_eq(st_f32_to_bf16(1.0f), 0x3f80);
    /* 1 + 2^-8 is halfway between two bf16 values: to the even one (1.0) */
    cr_assert_eq(st_f32_to_bf16(1.0f + 1.0f / 256), 0x3f80);
    /* 1 + 3·2^-8 is halfway: to the even one above */
    cr_assert_eq(st_f32_to_bf16(1.0f + 3.0f / 256), 0x3f82);
    cr_assert_eq(st_f32_to_bf16(-2.0f), 0xc000);
    cr_assert(isnan(st_bf16_to_f32(st_f32_to_bf16(NAN))));
    cr_assert(isinf(st_bf16_to_f32(st_f32_to_bf16(INFINITY))));
    for (uint32_t h = 0; h < 0x10000; h += 7) { /* every bf16 survives the trip */
        float f = st_bf16_to_f32((uint16_t)h);
        if (!isnan(f)) cr_assert_eq(st_f32_to_bf16(f), h, "%x", h);
    }
}

Test(safetensors, f16_exact_and_rounded) {
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = st_f16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        cr_assert_eq(st_f32_to_f16(f), h, "f16 %04x -> %g -> %04x", h, f, st_f32_to_f16(f));
    }
    cr_assert_eq(st_f16_to_f32(0x0001), ldexpf(1, -24)); /* smallest subnormal */
    cr_assert_eq(st_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00); /* halfway: even */
    cr_assert_eq(st_f32_to_f16(1e6f), 0x7c00);               /* overflow: inf */
}

Test(safetensors, write_read_round_trip, .init = tmpdir_setup, .fini = tmpdir_teardown) {
    float a[6] = {1, -2, 3.5f, 1e-3f, -7, 0.25f}, b[3] = {9, 8, 7};
    StItem items[2] = {{"x.weight", 2, {2, 3}, a}, {"y", 1, {3}, b}};
    Err err = {0};
    for (int d = 0; d < ST_NDTYPES; d++) {
        cr_assert_eq(st_write(tmp_path("t.safetensors"), items, 2, d, &err), 0, "%s", err.msg);
        SafeTensors st;
        cr_assert_eq(st_open(tmp_path("t.safetensors"), &st, &err), 0, "%s", err.msg);
        cr_assert_eq(st.n, 2);
        const StTensor *t;
        int64_t shape[2] = {2, 3};
        cr_assert_eq(st_expect(&st, "x.weight", 2, shape, &t, &err), 0, "%s", err.msg);
        cr_assert_eq(t->dtype, d);
        float got[6];
        st_to_f32(t, got);
        for (int i = 0; i < 6; i++) cr_assert_float_eq(got[i], a[i], d == ST_F32 ? 0 : 0.01f * fabsf(a[i]));
        int64_t bad[2] = {3, 2};
        cr_assert_neq(st_expect(&st, "x.weight", 2, bad, &t, &err), 0);
        cr_assert(strstr(err.msg, "x.weight") && strstr(err.msg, "[2, 3]") && strstr(err.msg, "t.safetensors"),
                  "%s", err.msg);
        cr_assert_neq(st_expect(&st, "z", 1, shape, &t, &err), 0);
        cr_assert(strstr(err.msg, "tensor z is missing"), "%s", err.msg);
        st_close(&st);
    }
}

Test(safetensors, damaged_files_refused, .init = tmpdir_setup, .fini = tmpdir_teardown) {
    float a[64] = {0};
    StItem items[1] = {{"w", 1, {64}, a}};
    Err err = {0};
    cr_assert_eq(st_write(tmp_path("t.safetensors"), items, 1, ST_F32, &err), 0);
    struct stat sb;
    stat(tmp_path("t.safetensors"), &sb);
    SafeTensors st;
    /* cut in the data, in the header, before the header */
    long cuts[] = {sb.st_size - 4, 40, 5};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(truncate(tmp_path("t.safetensors"), cuts[i]), 0);
        cr_assert_neq(st_open(tmp_path("t.safetensors"), &st, &err), 0, "cut at %ld", cuts[i]);
        cr_assert(strstr(err.msg, "t.safetensors"), "%s", err.msg);
    }
    /* data_offsets that do not match the dtype and shape */
    const char *h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}";
    FILE *f = fopen(tmp_path("b.safetensors"), "wb");
    uint64_t n = strlen(h);
    fwrite(&n, 8, 1, f);
    fwrite(h, 1, n, f);
    fwrite(a, 4, 4, f);
    fclose(f);
    cr_assert_neq(st_open(tmp_path("b.safetensors"), &st, &err), 0);
    cr_assert(strstr(err.msg, "tensor w") && strstr(err.msg, "12 bytes"), "%s", err.msg);
    h = "{\"w\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}";
    f = fopen(tmp_path("c.safetensors"), "wb");
    n = strlen(h);
    fwrite(&n, 8, 1, f);
    fwrite(h, 1, n, f);
    fwrite(a, 4, 4, f);
    fclose(f);
    cr_assert_neq(st_open(tmp_path("c.safetensors"), &st, &err), 0);
    cr_assert(strstr(err.msg, "I64"), "%s", err.msg);
}

/* A random model with every HF feature, written as an HF directory and read
 * back: the same weights, whatever the dtype rounding (f32 here). */
static void make_model(Model *m, int bias, int qknorm, int head_dim, int shared) {
    Config c = {.dim = 48, .hidden_dim = 96, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                .vocab_size = 120, .seq_len = 64, .shared_classifier = shared, .head_dim = head_dim,
                .qkv_bias = bias, .qk_norm = qknorm, .norm_eps = 1e-6f, .rope_theta = 1e6f};
    Err err = {0};
    cr_assert_eq(model_create(m, &c, 0, &err), 0, "%s", err.msg);
    Rng r;
    rng_seed(&r, 5);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = (float)rng_normal(&r);
}

Test(hf, save_load_round_trip, .init = tmpdir_setup, .fini = tmpdir_teardown) {
    int cases[][4] = {{0, 0, 0, 1}, {1, 0, 0, 0}, {0, 1, 16, 0}};
    for (int k = 0; k < 3; k++) {
        Model m, back;
        Err err = {0};
        make_model(&m, cases[k][0], cases[k][1], cases[k][2], cases[k][3]);
        char d[32];
        snprintf(d, sizeof d, "m%d", k);
        cr_assert_eq(hf_save(tmp_path(d), &m, HF_OUT_POLICY, ST_F32, &err), 0, "%s", err.msg);
        hf_set_context(64);
        cr_assert_eq(hf_load(tmp_path(d), &back, &err), 0, "%s", err.msg);
        hf_set_context(0);
        cr_assert_eq(back.n_params, m.n_params);
        cr_assert_eq(memcmp(back.params, m.params, m.n_params * 4), 0, "case %d", k);
        cr_assert_eq(back.cfg.qkv_bias, m.cfg.qkv_bias);
        cr_assert_eq(back.cfg.qk_norm, m.cfg.qk_norm);
        cr_assert_eq(model_head_size(&back.cfg), model_head_size(&m.cfg));
        cr_assert_float_eq(back.cfg.norm_eps, 1e-6f, 1e-12);
        /* the side files: the config travels in the blob */
        size_t n;
        cr_assert(hf_files_get(back.tokenizer, back.tokenizer_len, "config.json", &n));
        model_free(&m);
        model_free(&back);
    }
}

Test(hf, reward_model_round_trip, .init = tmpdir_setup, .fini = tmpdir_teardown) {
    Model m, back;
    Err err = {0};
    make_model(&m, 1, 0, 0, 0);
    cr_assert_eq(model_set_heads(&m, MODEL_HEAD_REWARD, &err), 0);
    for (int i = 0; i <= m.cfg.dim; i++) m.w.reward[i] = 0.01f * i - 0.2f;
    cr_assert_eq(hf_save(tmp_path("rm"), &m, HF_OUT_RM, ST_F32, &err), 0, "%s", err.msg);
    char *cfg;
    size_t len;
    cr_assert_eq(sys_read_file(tmp_path("rm/config.json"), &cfg, &len, &err), 0);
    cr_assert(strstr(cfg, "Qwen2ForSequenceClassification") && strstr(cfg, "rlhf_reward_bias"), "%s", cfg);
    free(cfg);
    cr_assert_eq(hf_load(tmp_path("rm"), &back, &err), 0, "%s", err.msg);
    cr_assert(back.heads & MODEL_HEAD_REWARD);
    for (int i = 0; i <= m.cfg.dim; i++) cr_assert_float_eq(back.w.reward[i], m.w.reward[i], 1e-6);
    cr_assert_eq(memcmp(back.w.wq, m.w.wq, m.sizes[MODEL_T_WQ] * 4), 0);
    model_free(&m);
    model_free(&back);
}

Test(hf, bad_configs_name_the_field, .init = tmpdir_setup, .fini = tmpdir_teardown) {
    Model m;
    Err err = {0};
    make_model(&m, 0, 0, 0, 1);
    cr_assert_eq(hf_save(tmp_path("d"), &m, HF_OUT_POLICY, ST_BF16, &err), 0, "%s", err.msg);
    model_free(&m);
    char *orig;
    size_t len;
    cr_assert_eq(sys_read_file(tmp_path("d/config.json"), &orig, &len, &err), 0);
    static const struct {
        const char *from, *to, *want;
    } cases[] = {
        {"LlamaForCausalLM", "GPT2LMHeadModel", "architectures"},
        {"\"rope_scaling\":\tnull", "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}", "rope_scaling"},
        {"\"silu\"", "\"gelu\"", "hidden_act"},
        {"\"hidden_size\":\t48", "\"hidden_size\": \"48\"", "hidden_size"},
        {"\"num_hidden_layers\":\t2", "\"num_hidden_layers\": 3", "model.layers.2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *at = strstr(orig, cases[i].from);
        cr_assert(at, "%s not in %s", cases[i].from, orig);
        FILE *f = fopen(tmp_path("d/config.json"), "w");
        fwrite(orig, 1, (size_t)(at - orig), f);
        fputs(cases[i].to, f);
        fputs(at + strlen(cases[i].from), f);
        fclose(f);
        cr_assert_neq(hf_load(tmp_path("d"), &m, &err), 0, "%s", cases[i].to);
        cr_assert(strstr(err.msg, cases[i].want), "want %s in: %s", cases[i].want, err.msg);
    }
    write_file(tmp_path("d/config.json"), "{\"architectures\": [\"LlamaForCausalLM\"],");
    cr_assert_neq(hf_load(tmp_path("d"), &m, &err), 0);
    cr_assert(strstr(err.msg, "config.json"), "%s", err.msg);
    free(orig);
}
