/* Named configurations and config validation. */
#include "model/config.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    Config c;
} named[] = {
    /* the fields not named keep llama2.c's values (zero) */
#define NAMED(d, h, l, nh, nkv, v, s)                                                              \
    {.dim = d, .hidden_dim = h, .n_layers = l, .n_heads = nh, .n_kv_heads = nkv, .vocab_size = v,    \
     .seq_len = s, .shared_classifier = 1}
    {"tiny", NAMED(32, 64, 2, 4, 2, 256, 64)},
    {"demo", NAMED(128, 352, 4, 4, 2, 512, 256)},
    {"15m", NAMED(288, 768, 6, 6, 6, 32000, 256)},
#undef NAMED
};

int model_config_named(const char *name, Config *c, Err *err) {
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (strcmp(named[i].name, name) == 0) {
            *c = named[i].c;
            return RLHF_OK;
        }
    return err_set(err, RLHF_EINVAL, "unknown model config '%s' (expected tiny, demo or 15m)", name);
}

int model_config_validate(const Config *c, Err *err) {
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->vocab_size <= 0 || c->seq_len <= 0)
        return err_set(err, RLHF_EINVAL,
                       "config sizes must be positive (dim %d, hidden %d, layers %d, heads %d, "
                       "kv heads %d, vocab %d, seq %d)",
                       c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                       c->vocab_size, c->seq_len);
    if (c->head_dim < 0) return err_set(err, RLHF_EINVAL, "head_dim %d is negative", c->head_dim);
    if (!c->head_dim && c->dim % c->n_heads)
        return err_set(err, RLHF_EINVAL, "dim %d is not a multiple of heads %d (set head_dim)",
                       c->dim, c->n_heads);
    if (c->n_heads % c->n_kv_heads)
        return err_set(err, RLHF_EINVAL, "heads %d is not a multiple of kv heads %d", c->n_heads,
                       c->n_kv_heads);
    int hs = model_head_size(c);
    if (hs % 2)
        return err_set(err, RLHF_EINVAL, "head size %d must be even (RoPE rotates pairs)", hs);
    if (hs > 4096 || (long long)hs * c->n_heads > 262144)
        return err_set(err, RLHF_EINVAL, "head size %d x %d heads is too large", hs, c->n_heads);
    if ((c->qkv_bias != 0 && c->qkv_bias != 1) || (c->qk_norm != 0 && c->qk_norm != 1))
        return err_set(err, RLHF_EINVAL, "qkv_bias %d and qk_norm %d must be 0 or 1", c->qkv_bias,
                       c->qk_norm);
    /* zero means the default; !(x >= 0) also catches NaN */
    if (!(c->norm_eps >= 0) || c->norm_eps > 0.1f)
        return err_set(err, RLHF_EINVAL, "norm eps %g is out of range (0 for 1e-5, else up to 0.1)",
                       (double)c->norm_eps);
    if (!(c->rope_theta >= 0) || c->rope_theta > 1e12f || (c->rope_theta > 0 && c->rope_theta <= 1))
        return err_set(err, RLHF_EINVAL, "rope theta %g is out of range (0 for 10000, else 1 < theta <= 1e12)",
                       (double)c->rope_theta);
    if (!(c->rope_factor >= 0) || c->rope_factor > 1024)
        return err_set(err, RLHF_EINVAL, "rope scaling factor %g is out of range (0 for none, up to 1024)",
                       (double)c->rope_factor);
    if (c->rope_factor > 0 &&
        (!(c->rope_low_freq > 0) || !(c->rope_high_freq > c->rope_low_freq) ||
         c->rope_high_freq > 1e6f || c->rope_orig_ctx <= 0 || c->rope_orig_ctx > 1 << 24))
        return err_set(err, RLHF_EINVAL,
                       "llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor and a "
                       "positive original context (got low %g, high %g, original %d)",
                       (double)c->rope_low_freq, (double)c->rope_high_freq, c->rope_orig_ctx);
    if (c->rope_factor == 0 && (c->rope_low_freq != 0 || c->rope_high_freq != 0 || c->rope_orig_ctx != 0))
        return err_set(err, RLHF_EINVAL, "rope scaling fields set without a scaling factor");
    if (c->dim > 65536 || c->hidden_dim > 262144 || c->n_layers > 1024 || c->vocab_size > 1 << 22 ||
        c->seq_len > 1 << 20)
        return err_set(err, RLHF_EINVAL, "config too large (dim %d, hidden %d, layers %d, vocab %d, seq %d)",
                       c->dim, c->hidden_dim, c->n_layers, c->vocab_size, c->seq_len);
    return RLHF_OK;
}

void model_config_json(const Config *c, char *buf, int n) {
    int k = snprintf(buf, n,
                     "{\"dim\":%d,\"hidden_dim\":%d,\"n_layers\":%d,\"n_heads\":%d,\"n_kv_heads\":%d,"
                     "\"vocab_size\":%d,\"seq_len\":%d,\"shared_classifier\":%s",
                     c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size,
                     c->seq_len, c->shared_classifier ? "true" : "false");
    /* the Hugging Face families' fields only when they differ from llama2.c's */
#define MORE(...)                                                                                  \
    if (k >= 0 && k < n) k += snprintf(buf + k, n - k, __VA_ARGS__)
    if (c->head_dim) MORE(",\"head_dim\":%d", c->head_dim);
    if (c->qkv_bias) MORE(",\"qkv_bias\":true");
    if (c->qk_norm) MORE(",\"qk_norm\":true");
    if (c->norm_eps > 0) MORE(",\"norm_eps\":%.9g", (double)c->norm_eps);
    if (c->rope_theta > 0) MORE(",\"rope_theta\":%.9g", (double)c->rope_theta);
    if (c->rope_factor > 0)
        MORE(",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":%.9g,\"low_freq_factor\":%.9g,"
             "\"high_freq_factor\":%.9g,\"original_max_position_embeddings\":%d}",
             (double)c->rope_factor, (double)c->rope_low_freq, (double)c->rope_high_freq,
             c->rope_orig_ctx);
    MORE("}");
#undef MORE
}
