/* LoRA adapters out as PEFT directories (hf.h, hf_save_peft): the names,
 * shapes and config fields PeftModel.from_pretrained reads. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/hf.h"
#include "model/lora.h"
#include "model/model.h"

static char *adapter_config(const Lora *lo, const char *base_name, int rm) {
    cJSON *j = cJSON_CreateObject(), *t = cJSON_CreateArray();
    cJSON_AddStringToObject(j, "peft_type", "LORA");
    cJSON_AddStringToObject(j, "task_type", rm ? "SEQ_CLS" : "CAUSAL_LM");
    if (base_name) cJSON_AddStringToObject(j, "base_model_name_or_path", base_name);
    else cJSON_AddNullToObject(j, "base_model_name_or_path");
    cJSON_AddNumberToObject(j, "r", lo->c.rank);
    cJSON_AddNumberToObject(j, "lora_alpha", lo->c.alpha);
    cJSON_AddNumberToObject(j, "lora_dropout", lo->c.dropout);
    for (int i = 0; i < LORA_NT; i++)
        if (lo->c.targets & (1 << i)) cJSON_AddItemToArray(t, cJSON_CreateString(lora_target_name(i)));
    cJSON_AddItemToObject(j, "target_modules", t);
    cJSON_AddStringToObject(j, "bias", "none");
    cJSON_AddBoolToObject(j, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(j, "inference_mode", 1);
    cJSON_AddBoolToObject(j, "use_rslora", 0);
    cJSON_AddBoolToObject(j, "use_dora", 0);
    cJSON_AddBoolToObject(j, "init_lora_weights", 1);
    if (rm) {
        cJSON *s = cJSON_CreateArray();
        cJSON_AddItemToArray(s, cJSON_CreateString("score"));
        cJSON_AddItemToObject(j, "modules_to_save", s);
    } else
        cJSON_AddNullToObject(j, "modules_to_save");
    cJSON_AddNullToObject(j, "revision");
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    return text;
}

int hf_save_peft(const char *dir, const Model *m, const char *base_name, int dtype, Err *err) {
    const Lora *lo = m->lora;
    if (!lo) return err_set(err, RLHF_EINVAL, "not a LoRA adapter: nothing to write as PEFT");
    int rm = (m->heads & MODEL_HEAD_REWARD) != 0, R = lo->c.rank, L = lo->L;
    int hs = model_head_size(&m->cfg);
    int heads[LORA_NT] = {m->cfg.n_heads, m->cfg.n_kv_heads}; /* q, k: rows permuted */
    static const char *where[LORA_NT] = {"self_attn", "self_attn", "self_attn", "self_attn",
                                         "mlp", "mlp", "mlp"};
    int n = 0, cap = 2 * LORA_NT * L + 1;
    StItem *items = calloc((size_t)cap, sizeof *items);
    char (*names)[160] = calloc((size_t)cap, sizeof *names);
    float **owned = calloc((size_t)cap, sizeof *owned);
    int rc = items && names && owned ? RLHF_OK : err_set(err, RLHF_ENOMEM, "out of memory");
    for (int l = 0; !rc && l < L; l++)
        for (int t = 0; !rc && t < LORA_NT; t++) {
            if (!(lo->c.targets & (1 << t))) continue;
            for (int ab = 0; ab < 2; ab++) {
                snprintf(names[n], sizeof names[n], "base_model.model.model.layers.%d.%s.%s.lora_%c.weight",
                         l, where[t], lora_target_name(t), ab ? 'B' : 'A');
                StItem *it = &items[n];
                it->name = names[n];
                it->ndim = 2;
                it->shape[0] = ab ? lo->out[t] : R;
                it->shape[1] = ab ? R : lo->in[t];
                it->data = ab ? lora_b(lo, t, l) : lora_a(lo, t, l);
                if (ab && heads[t]) { /* B's rows are q/k outputs: back to HF's order */
                    size_t sz = (size_t)lo->out[t] * R;
                    if (!(owned[n] = malloc(sz * sizeof(float)))) {
                        rc = err_set(err, RLHF_ENOMEM, "out of memory");
                        break;
                    }
                    hf_permute_heads(owned[n], it->data, heads[t], hs, (size_t)R, 1);
                    it->data = owned[n];
                }
                n++;
            }
        }
    if (!rc && rm)
        items[n++] = (StItem){"base_model.model.score.weight", 2, {1, m->cfg.dim}, m->w.reward};
    if (!rc && mkdir(dir, 0777) != 0 && errno != EEXIST)
        rc = err_set(err, RLHF_EIO, "%s: %s", dir, strerror(errno));
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    if (!rc) rc = st_write(path, items, n, dtype, err);
    char *cfg = rc ? NULL : adapter_config(lo, base_name, rm);
    if (!rc && !cfg) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    if (!rc) rc = hf_write_text(dir, "adapter_config.json", cfg, strlen(cfg), err);
    free(cfg);
    for (int i = 0; owned && i < n; i++) free(owned[i]);
    free(owned), free(names), free(items);
    return rc;
}
