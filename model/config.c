/* Named configurations and config validation. */
#include "model/config.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    Config c;
} named[] = {
    /* dim hidden layers heads kv vocab seq shared */
    {"tiny", {32, 64, 2, 4, 2, 256, 64, 1}},
    {"demo", {128, 352, 4, 4, 2, 512, 256, 1}},
    {"15m", {288, 768, 6, 6, 6, 32000, 256, 1}},
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
    if (c->dim % c->n_heads)
        return err_set(err, RLHF_EINVAL, "dim %d is not a multiple of heads %d", c->dim, c->n_heads);
    if (c->n_heads % c->n_kv_heads)
        return err_set(err, RLHF_EINVAL, "heads %d is not a multiple of kv heads %d", c->n_heads,
                       c->n_kv_heads);
    if ((c->dim / c->n_heads) % 2)
        return err_set(err, RLHF_EINVAL, "head size %d must be even (RoPE rotates pairs)",
                       c->dim / c->n_heads);
    if (c->dim > 65536 || c->hidden_dim > 262144 || c->n_layers > 1024 || c->vocab_size > 1 << 22 ||
        c->seq_len > 1 << 20)
        return err_set(err, RLHF_EINVAL, "config too large (dim %d, hidden %d, layers %d, vocab %d, seq %d)",
                       c->dim, c->hidden_dim, c->n_layers, c->vocab_size, c->seq_len);
    return RLHF_OK;
}

void model_config_json(const Config *c, char *buf, int n) {
    snprintf(buf, n,
             "{\"dim\":%d,\"hidden_dim\":%d,\"n_layers\":%d,\"n_heads\":%d,\"n_kv_heads\":%d,"
             "\"vocab_size\":%d,\"seq_len\":%d,\"shared_classifier\":%s}",
             c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size,
             c->seq_len, c->shared_classifier ? "true" : "false");
}
