/* Fuzz target: a Hugging Face directory. The first byte picks what the input
 * is: even, the model.safetensors beside a fixed config.json of a tiny Llama
 * (dim 8, 1 layer, vocabulary 16, tied); odd, the config.json beside a fixed
 * valid safetensors file of that model. hf_load must refuse anything damaged
 * with an error, never crash, and a model it accepts must write back out. */
#include <string.h>
#include <sys/stat.h>

#include "model/hf.h"
#include "tests/fuzz/fuzz.h"

static const char config[] =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":8,"
    "\"intermediate_size\":16,\"num_hidden_layers\":1,\"num_attention_heads\":2,"
    "\"num_key_value_heads\":1,\"vocab_size\":16,\"max_position_embeddings\":32,"
    "\"rms_norm_eps\":1e-5,\"tie_word_embeddings\":true}";

static void put(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) abort();
}

/* the tiny model's valid weights (and config), written by hf_save */
static void valid_weights(const char *dir) {
    Config c = {.dim = 8, .hidden_dim = 16, .n_layers = 1, .n_heads = 2, .n_kv_heads = 1,
                .vocab_size = 16, .seq_len = 32, .shared_classifier = 1};
    Model m;
    Err err = {0};
    if (model_create(&m, &c, 0, &err)) abort();
    model_init_random(&m, 1);
    if (hf_save(dir, &m, HF_OUT_POLICY, ST_BF16, &err)) abort();
    model_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char dir[256], p[300];
    snprintf(dir, sizeof dir, "%s/rlhf-fuzz-hf-%ld", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (long)getpid());
    mkdir(dir, 0777);
    if (data[0] & 1) {
        valid_weights(dir);
        snprintf(p, sizeof p, "%s/config.json", dir);
        put(p, data + 1, size - 1);
    } else {
        snprintf(p, sizeof p, "%s/config.json", dir);
        put(p, config, strlen(config));
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        put(p, data + 1, size - 1);
    }
    Model m;
    Err err = {0};
    hf_set_context(32);
    if (hf_load(dir, &m, &err) == RLHF_OK) {
        char out[300];
        snprintf(out, sizeof out, "%s/out", dir);
        if (hf_save(out, &m, HF_OUT_POLICY, ST_F32, &err) != RLHF_OK) abort();
        model_free(&m);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) abort();
    return 0;
}
