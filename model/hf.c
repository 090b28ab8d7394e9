/* Hugging Face directories: config.json ⇄ Config, safetensors ⇄ the weight
 * array (q/k rows permuted between rotate-half and interleaved RoPE), and the
 * side files carried in the Model's tokenizer blob. */
#include "model/hf.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/safetensors.h"
#include "util/sys.h"
#include "util/text.h"

static int context_cap;

void hf_set_context(int n) { context_cap = n > 0 ? n : 0; }
int hf_context(void) { return context_cap ? context_cap : HF_DEFAULT_CONTEXT; }

int hf_is_dir(const char *path) {
    struct stat sb;
    if (!path || stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) return 0;
    char p[4096];
    snprintf(p, sizeof p, "%s/config.json", path);
    return access(p, F_OK) == 0;
}

/* ---- the side-file archive ------------------------------------------------- */

/* What travels with the weights, in this order. */
static const char *const side_files[] = {"config.json",           "generation_config.json",
                                         "tokenizer.json",        "tokenizer_config.json",
                                         "special_tokens_map.json", "chat_template.jinja",
                                         "tokenizer.model"};
enum { N_SIDE = sizeof side_files / sizeof side_files[0] };

static uint64_t rd_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void wr_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* records: u64 name length, name, u64 data length, data; the last ends the blob */
static int walk_records(const void *blob, size_t len, const char *name, const char **data, size_t *n) {
    if (!blob || len < 8 || memcmp(blob, HF_FILES_MAGIC, 8) != 0) return 0;
    const unsigned char *b = blob;
    size_t pos = 8, want = name ? strlen(name) : 0;
    while (pos < len) {
        if (len - pos < 8) return 0;
        uint64_t nl = rd_u64(b + pos);
        pos += 8;
        if (nl > len - pos || len - pos - nl < 8) return 0;
        const unsigned char *nm = b + pos;
        pos += nl;
        uint64_t dl = rd_u64(b + pos);
        pos += 8;
        if (dl > len - pos) return 0;
        if (name && nl == want && memcmp(nm, name, want) == 0) {
            *data = (const char *)b + pos;
            *n = (size_t)dl;
        }
        pos += dl;
    }
    return 1;
}

int hf_files_is(const void *blob, size_t len) { return walk_records(blob, len, NULL, NULL, NULL); }

const char *hf_files_get(const void *blob, size_t len, const char *name, size_t *n) {
    const char *data = NULL;
    return walk_records(blob, len, name, &data, n) ? data : NULL;
}

int hf_files_pack(const char *const *names, const char *const *texts, const size_t *lens, int n,
                  unsigned char **out, size_t *out_len, Err *err) {
    size_t total = 8;
    for (int i = 0; i < n; i++)
        if (texts[i]) total += 16 + strlen(names[i]) + lens[i];
    unsigned char *b = malloc(total);
    if (!b) return err_set(err, RLHF_ENOMEM, "out of memory");
    size_t pos = 8;
    memcpy(b, HF_FILES_MAGIC, 8);
    for (int i = 0; i < n; i++) {
        if (!texts[i]) continue;
        size_t nl = strlen(names[i]);
        wr_u64(b + pos, nl);
        memcpy(b + pos + 8, names[i], nl);
        pos += 8 + nl;
        wr_u64(b + pos, lens[i]);
        memcpy(b + pos + 8, texts[i], lens[i]);
        pos += 8 + lens[i];
    }
    *out = b;
    *out_len = total;
    return RLHF_OK;
}

/* Reads the side files of dir into one archive. */
static int pack_side_files(const char *dir, unsigned char **out, size_t *out_len, Err *err) {
    char *data[N_SIDE] = {0};
    size_t lens[N_SIDE] = {0};
    int rc = RLHF_OK;
    for (int i = 0; i < N_SIDE && !rc; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, side_files[i]);
        if (access(p, F_OK) == 0) rc = sys_read_file(p, &data[i], &lens[i], err);
    }
    if (!rc) rc = hf_files_pack(side_files, (const char *const *)data, lens, N_SIDE, out, out_len, err);
    for (int i = 0; i < N_SIDE; i++) free(data[i]);
    return rc;
}

/* ---- config.json ------------------------------------------------------------ */

typedef struct Arch {
    const char *name; /* the *ForCausalLM / *ForSequenceClassification prefix */
    const char *model_type;
    int qkv_bias, qk_norm;
} Arch;

static const Arch archs[] = {
    {"Llama", "llama", 0, 0},
    {"Mistral", "mistral", 0, 0},
    {"Qwen2", "qwen2", 1, 0},
    {"Qwen3", "qwen3", 0, 1},
};

typedef struct HfMeta {
    const Arch *arch;
    int is_rm;
    float reward_bias;
} HfMeta;

static int get_int(const cJSON *j, const char *key, int required, int lo, int hi, int *out,
                   const char *path, Err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) return err_set(err, RLHF_EFORMAT, "%s: field %s is missing", path, key);
        return RLHF_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long long)v->valuedouble ||
        v->valuedouble < lo || v->valuedouble > hi)
        return err_set(err, RLHF_EFORMAT, "%s: field %s must be an integer in [%d, %d]", path, key,
                       lo, hi);
    *out = (int)v->valuedouble;
    return RLHF_OK;
}

static int get_float(const cJSON *j, const char *key, double lo, double hi, float *out,
                     const char *path, Err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v)) return RLHF_OK;
    if (!cJSON_IsNumber(v) || !(v->valuedouble > lo && v->valuedouble <= hi))
        return err_set(err, RLHF_EFORMAT, "%s: field %s must be a number in (%g, %g]", path, key, lo, hi);
    *out = (float)v->valuedouble;
    return RLHF_OK;
}

static int get_bool(const cJSON *j, const char *key, int *out, const char *path, Err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v)) return RLHF_OK;
    if (!cJSON_IsBool(v)) return err_set(err, RLHF_EFORMAT, "%s: field %s must be true or false", path, key);
    *out = cJSON_IsTrue(v);
    return RLHF_OK;
}

static int config_from_json(const cJSON *j, const char *path, Config *c, HfMeta *meta, Err *err) {
    memset(c, 0, sizeof *c);
    memset(meta, 0, sizeof *meta);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "architectures");
    const cJSON *a0 = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 0) : NULL;
    if (!cJSON_IsString(a0))
        return err_set(err, RLHF_EFORMAT, "%s: field architectures is missing (expected e.g. [\"LlamaForCausalLM\"])",
                       path);
    for (size_t i = 0; i < sizeof archs / sizeof archs[0] && !meta->arch; i++) {
        size_t n = strlen(archs[i].name);
        const char *s = a0->valuestring;
        if (strncmp(s, archs[i].name, n) != 0) continue;
        if (strcmp(s + n, "ForCausalLM") == 0) meta->arch = &archs[i];
        else if (strcmp(s + n, "ForSequenceClassification") == 0) meta->arch = &archs[i], meta->is_rm = 1;
    }
    if (!meta->arch)
        return err_set(err, RLHF_EINVAL,
                       "%s: architectures: %s is not supported (Llama, Mistral, Qwen2 and Qwen3 "
                       "ForCausalLM or ForSequenceClassification)",
                       path, a0->valuestring);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "model_type");
    if (cJSON_IsString(mt) && strcmp(mt->valuestring, meta->arch->model_type) != 0)
        return err_set(err, RLHF_EINVAL, "%s: model_type %s does not match architectures %s", path,
                       mt->valuestring, a0->valuestring);
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(j, "hidden_act");
    if (act && !(cJSON_IsString(act) && strcmp(act->valuestring, "silu") == 0))
        return err_set(err, RLHF_EINVAL, "%s: hidden_act %s is not supported (silu only)", path,
                       cJSON_IsString(act) ? act->valuestring : "(not a string)");
    if (cJSON_GetObjectItemCaseSensitive(j, "quantization_config"))
        return err_set(err, RLHF_EINVAL, "%s: quantization_config: quantized weights are not supported", path);
    int rc, flag = 0;
    if ((rc = get_bool(j, "attention_bias", &flag, path, err))) return rc;
    if (flag && !meta->arch->qkv_bias)
        return err_set(err, RLHF_EINVAL, "%s: attention_bias true is not supported (o_proj has no bias here)", path);
    flag = 0;
    if ((rc = get_bool(j, "mlp_bias", &flag, path, err))) return rc;
    if (flag) return err_set(err, RLHF_EINVAL, "%s: mlp_bias true is not supported", path);
    int max_pos = 0, sliding = 0, use_sliding = 1, tied = 0;
    if ((rc = get_int(j, "hidden_size", 1, 1, 65536, &c->dim, path, err)) ||
        (rc = get_int(j, "intermediate_size", 1, 1, 262144, &c->hidden_dim, path, err)) ||
        (rc = get_int(j, "num_hidden_layers", 1, 1, 1024, &c->n_layers, path, err)) ||
        (rc = get_int(j, "num_attention_heads", 1, 1, 4096, &c->n_heads, path, err)) ||
        (rc = get_int(j, "vocab_size", 1, 1, 1 << 22, &c->vocab_size, path, err)) ||
        (rc = get_int(j, "max_position_embeddings", 1, 1, 1 << 24, &max_pos, path, err)))
        return rc;
    c->n_kv_heads = c->n_heads;
    if ((rc = get_int(j, "num_key_value_heads", 0, 1, 4096, &c->n_kv_heads, path, err)) ||
        (rc = get_int(j, "head_dim", 0, 2, 4096, &c->head_dim, path, err)) ||
        (rc = get_float(j, "rms_norm_eps", 0, 1, &c->norm_eps, path, err)) ||
        (rc = get_float(j, "rope_theta", 0, 1e12, &c->rope_theta, path, err)) ||
        (rc = get_bool(j, "tie_word_embeddings", &tied, path, err)) ||
        (rc = get_int(j, "sliding_window", 0, 1, 1 << 24, &sliding, path, err)) ||
        (rc = get_bool(j, "use_sliding_window", &use_sliding, path, err)))
        return rc;
    if (!c->head_dim && c->dim % c->n_heads)
        return err_set(err, RLHF_EFORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d and no head_dim is given",
                       path, c->dim, c->n_heads);
    if (c->head_dim == c->dim / c->n_heads && c->dim % c->n_heads == 0) c->head_dim = 0;
    if (!c->norm_eps) c->norm_eps = 1e-6f; /* transformers' default for these configs */
    if (!c->rope_theta) c->rope_theta = 10000.0f;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(j, "rope_scaling");
    if (rs && !cJSON_IsNull(rs)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
        if (!t) t = cJSON_GetObjectItemCaseSensitive(rs, "type");
        const char *type = cJSON_IsString(t) ? t->valuestring : "(none)";
        if (strcmp(type, "llama3") == 0) {
            if ((rc = get_float(rs, "factor", 0, 1e6, &c->rope_factor, path, err)) ||
                (rc = get_float(rs, "low_freq_factor", 0, 1e6, &c->rope_low_freq, path, err)) ||
                (rc = get_float(rs, "high_freq_factor", 0, 1e6, &c->rope_high_freq, path, err)) ||
                (rc = get_int(rs, "original_max_position_embeddings", 1, 1, 1 << 24, &c->rope_orig_ctx, path, err)))
                return err_prefix(err, "rope_scaling: "), rc;
            if (!c->rope_factor || !c->rope_low_freq || !c->rope_high_freq ||
                c->rope_high_freq <= c->rope_low_freq)
                return err_set(err, RLHF_EFORMAT,
                               "%s: rope_scaling: llama3 needs factor, low_freq_factor < high_freq_factor", path);
        } else if (strcmp(type, "default") != 0) {
            return err_set(err, RLHF_EINVAL,
                           "%s: rope_scaling of type %s is not supported (llama3 or none)", path, type);
        }
    }
    c->shared_classifier = tied;
    /* no sliding window is needed while the context stays within it */
    int ctx = hf_context();
    if (ctx > max_pos) ctx = max_pos;
    if (sliding && use_sliding && ctx > sliding) ctx = sliding;
    c->seq_len = ctx;
    if (meta->is_rm) {
        int labels = 1;
        if ((rc = get_int(j, "num_labels", 0, 1, 1 << 20, &labels, path, err))) return rc;
        const cJSON *id2 = cJSON_GetObjectItemCaseSensitive(j, "id2label");
        if (cJSON_IsObject(id2)) labels = cJSON_GetArraySize(id2);
        if (labels != 1)
            return err_set(err, RLHF_EINVAL, "%s: num_labels %d: a reward model has one output", path, labels);
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "rlhf_reward_bias");
        if (cJSON_IsNumber(b)) meta->reward_bias = (float)b->valuedouble;
    }
    c->qkv_bias = meta->arch->qkv_bias;
    c->qk_norm = meta->arch->qk_norm;
    rc = model_config_validate(c, err);
    if (rc) err_prefix(err, "%s: ", path);
    return rc;
}

/* ---- weights -------------------------------------------------------------- */

/* q/k rows of one layer, n_heads heads of hs rows of width w: HF's (halves)
 * order to ours (interleaved pairs), or back. */
void hf_permute_heads(float *dst, const float *src, int n_heads, int hs, size_t w, int to_hf) {
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < hs / 2; i++) {
            size_t ours0 = (size_t)h * hs + 2 * i, ours1 = ours0 + 1;
            size_t hf0 = (size_t)h * hs + i, hf1 = hf0 + hs / 2;
            if (to_hf) {
                memcpy(dst + hf0 * w, src + ours0 * w, w * sizeof(float));
                memcpy(dst + hf1 * w, src + ours1 * w, w * sizeof(float));
            } else {
                memcpy(dst + ours0 * w, src + hf0 * w, w * sizeof(float));
                memcpy(dst + ours1 * w, src + hf1 * w, w * sizeof(float));
            }
        }
}

/* One HF tensor per (our tensor, layer): its name, shape and whether its
 * rows are q/k heads to permute. */
typedef struct Slot {
    char name[128];
    int ndim;
    int64_t shape[2];
    float *dst;      /* where its values live in our array */
    int perm_heads;  /* >0: permute rows in this many heads */
} Slot;

static int build_slots(const Model *m, const HfMeta *meta, float *base, Slot **out, int *n_out,
                       Err *err) {
    const Config *c = &m->cfg;
    int L = c->n_layers, C = c->dim, H = c->hidden_dim, V = c->vocab_size;
    int hs = model_head_size(c), Q = model_q_dim(c), KV = model_kv_dim(c);
    int max = 4 + L * 15;
    Slot *s = calloc((size_t)max, sizeof *s);
    if (!s) return err_set(err, RLHF_ENOMEM, "out of memory");
    int n = 0;
    /* pointers into base laid out as m's params */
    float *p = base;
    float *at[MODEL_NT];
    for (int t = 0; t < MODEL_NT; t++) {
        at[t] = m->sizes[t] ? p : NULL;
        p += m->sizes[t];
    }
#define ADD(nm, nd, d0, d1, ptr, ph)                                                   \
    do {                                                                               \
        snprintf(s[n].name, sizeof s[n].name, "%s", nm);                               \
        s[n].ndim = nd, s[n].shape[0] = d0, s[n].shape[1] = d1, s[n].dst = ptr, s[n].perm_heads = ph; \
        n++;                                                                           \
    } while (0)
    ADD("model.embed_tokens.weight", 2, V, C, at[MODEL_T_EMB], 0);
    for (int l = 0; l < L; l++) {
        char nm[128];
#define LAYER(suffix, nd, d0, d1, t, off, ph)                                 \
    snprintf(nm, sizeof nm, "model.layers.%d.%s", l, suffix);                 \
    ADD(nm, nd, d0, d1, at[t] + (size_t)l * (off), ph)
        LAYER("input_layernorm.weight", 1, C, 0, MODEL_T_RMS_ATT, C, 0);
        LAYER("self_attn.q_proj.weight", 2, Q, C, MODEL_T_WQ, (size_t)Q * C, c->n_heads);
        LAYER("self_attn.k_proj.weight", 2, KV, C, MODEL_T_WK, (size_t)KV * C, c->n_kv_heads);
        LAYER("self_attn.v_proj.weight", 2, KV, C, MODEL_T_WV, (size_t)KV * C, 0);
        LAYER("self_attn.o_proj.weight", 2, C, Q, MODEL_T_WO, (size_t)C * Q, 0);
        if (c->qkv_bias) {
            LAYER("self_attn.q_proj.bias", 1, Q, 0, MODEL_T_BQ, Q, c->n_heads);
            LAYER("self_attn.k_proj.bias", 1, KV, 0, MODEL_T_BK, KV, c->n_kv_heads);
            LAYER("self_attn.v_proj.bias", 1, KV, 0, MODEL_T_BV, KV, 0);
        }
        if (c->qk_norm) {
            LAYER("self_attn.q_norm.weight", 1, hs, 0, MODEL_T_QNORM, hs, 1);
            LAYER("self_attn.k_norm.weight", 1, hs, 0, MODEL_T_KNORM, hs, 1);
        }
        LAYER("post_attention_layernorm.weight", 1, C, 0, MODEL_T_RMS_FFN, C, 0);
        LAYER("mlp.gate_proj.weight", 2, H, C, MODEL_T_W1, (size_t)H * C, 0);
        LAYER("mlp.up_proj.weight", 2, H, C, MODEL_T_W3, (size_t)H * C, 0);
        LAYER("mlp.down_proj.weight", 2, C, H, MODEL_T_W2, (size_t)C * H, 0);
#undef LAYER
    }
    ADD("model.norm.weight", 1, C, 0, at[MODEL_T_RMS_FINAL], 0);
    if (meta->is_rm) ADD("score.weight", 2, 1, C, at[MODEL_T_REWARD], 0);
    else if (!c->shared_classifier) ADD("lm_head.weight", 2, V, C, at[MODEL_T_WCLS], 0);
#undef ADD
    *out = s;
    *n_out = n;
    return RLHF_OK;
}

static size_t slot_numel(const Slot *s) {
    return (size_t)s->shape[0] * (s->ndim == 2 ? (size_t)s->shape[1] : 1);
}

/* rows per head and row width of a slot whose rows are q/k heads */
static void slot_rows(const Slot *s, int *heads, int *hs, size_t *w) {
    *heads = s->perm_heads;
    *hs = (int)(s->shape[0] / s->perm_heads);
    *w = s->ndim == 2 ? (size_t)s->shape[1] : 1;
}

int hf_load(const char *dir, Model *m, Err *err) {
    memset(m, 0, sizeof *m);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text;
    size_t len;
    int rc = sys_read_file(path, &text, &len, err);
    if (rc) return rc;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return err_set(err, RLHF_EFORMAT, "%s: not a JSON object", path);
    }
    Config c;
    HfMeta meta;
    rc = config_from_json(j, path, &c, &meta, err);
    cJSON_Delete(j);
    if (rc) return rc;
    if (meta.is_rm) c.shared_classifier = 1; /* no LM head: do not allocate one */
    SafeTensors st;
    if ((rc = st_open(dir, &st, err))) return rc;
    if ((rc = model_create(m, &c, meta.is_rm ? MODEL_HEAD_REWARD : 0, err))) {
        st_close(&st);
        return err_prefix(err, "%s: ", dir), rc;
    }
    Slot *slots = NULL;
    int ns = 0;
    rc = build_slots(m, &meta, m->params, &slots, &ns, err);
    /* every tensor present and of its shape before anything is converted */
    const StTensor **found = rc ? NULL : calloc((size_t)ns, sizeof *found);
    if (!rc && !found) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < ns; i++)
        rc = st_expect(&st, slots[i].name, slots[i].ndim, slots[i].shape, &found[i], err);
    float *tmp = NULL;
    for (int i = 0; !rc && i < ns; i++) {
        if (!slots[i].perm_heads) {
            st_to_f32(found[i], slots[i].dst);
            continue;
        }
        size_t k = slot_numel(&slots[i]);
        float *t2 = realloc(tmp, k * sizeof *tmp);
        if (!t2) {
            rc = err_set(err, RLHF_ENOMEM, "out of memory");
            break;
        }
        tmp = t2;
        st_to_f32(found[i], tmp);
        int heads, hs;
        size_t w;
        slot_rows(&slots[i], &heads, &hs, &w);
        hf_permute_heads(slots[i].dst, tmp, heads, hs, w, 0);
    }
    if (!rc && meta.is_rm) m->w.reward[c.dim] = meta.reward_bias;
    free(tmp);
    free(found);
    free(slots);
    st_close(&st);
    unsigned char *blob = NULL;
    size_t blen = 0;
    if (!rc) rc = pack_side_files(dir, &blob, &blen, err);
    if (!rc) {
        rc = model_set_tokenizer(m, blob, blen, err);
        free(blob);
    }
    if (rc) model_free(m);
    return rc;
}

/* ---- writing -------------------------------------------------------------- */

static const Arch *arch_of(const Config *c, const cJSON *orig) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(orig, "architectures");
    const cJSON *a0 = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 0) : NULL;
    for (size_t i = 0; a0 && cJSON_IsString(a0) && i < sizeof archs / sizeof archs[0]; i++)
        if (strncmp(a0->valuestring, archs[i].name, strlen(archs[i].name)) == 0 &&
            archs[i].qkv_bias == c->qkv_bias && archs[i].qk_norm == c->qk_norm)
            return &archs[i];
    return c->qk_norm ? &archs[3] : c->qkv_bias ? &archs[2] : &archs[0];
}

static void set_num(cJSON *j, const char *key, double v) {
    cJSON_DeleteItemFromObjectCaseSensitive(j, key);
    cJSON_AddNumberToObject(j, key, v);
}

/* a float field as the decimal it was written as (1e-06, not 9.99999997e-07) */
static void set_numf(cJSON *j, const char *key, float v) {
    char b[32];
    snprintf(b, sizeof b, "%.7g", v);
    set_num(j, key, strtod(b, NULL));
}

static void set_str(cJSON *j, const char *key, const char *v) {
    cJSON_DeleteItemFromObjectCaseSensitive(j, key);
    cJSON_AddStringToObject(j, key, v);
}

static void set_bool(cJSON *j, const char *key, int v) {
    cJSON_DeleteItemFromObjectCaseSensitive(j, key);
    cJSON_AddBoolToObject(j, key, v);
}

/* config.json for m: the one it came with, updated, or a new one. */
static char *config_text(const Model *m, int kind, int dtype) {
    const Config *c = &m->cfg;
    size_t n = 0;
    const char *orig = hf_files_get(m->tokenizer, m->tokenizer_len, "config.json", &n);
    cJSON *j = orig ? cJSON_ParseWithLength(orig, n) : NULL;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        j = cJSON_CreateObject();
    }
    const Arch *a = arch_of(c, j);
    char arch[96];
    snprintf(arch, sizeof arch, "%s%s", a->name, kind == HF_OUT_RM ? "ForSequenceClassification" : "ForCausalLM");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "architectures");
    cJSON *arr = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(arr, cJSON_CreateString(arch));
    set_str(j, "model_type", a->model_type);
    set_str(j, "hidden_act", "silu");
    set_num(j, "hidden_size", c->dim);
    set_num(j, "intermediate_size", c->hidden_dim);
    set_num(j, "num_hidden_layers", c->n_layers);
    set_num(j, "num_attention_heads", c->n_heads);
    set_num(j, "num_key_value_heads", c->n_kv_heads);
    set_num(j, "head_dim", model_head_size(c));
    set_num(j, "vocab_size", c->vocab_size);
    set_numf(j, "rms_norm_eps", model_norm_eps(c));
    set_numf(j, "rope_theta", model_rope_theta(c));
    if (!cJSON_GetObjectItemCaseSensitive(j, "max_position_embeddings"))
        set_num(j, "max_position_embeddings", c->seq_len);
    /* an RM read from HF has no LM head and was given a tied one: keep the
     * original value */
    if (!(m->heads & MODEL_HEAD_REWARD) || !cJSON_GetObjectItemCaseSensitive(j, "tie_word_embeddings"))
        set_bool(j, "tie_word_embeddings", c->shared_classifier);
    if (c->rope_factor > 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(j, "rope_scaling");
        cJSON *r = cJSON_AddObjectToObject(j, "rope_scaling");
        cJSON_AddStringToObject(r, "rope_type", "llama3");
        set_numf(r, "factor", c->rope_factor);
        set_numf(r, "low_freq_factor", c->rope_low_freq);
        set_numf(r, "high_freq_factor", c->rope_high_freq);
        cJSON_AddNumberToObject(r, "original_max_position_embeddings", c->rope_orig_ctx);
    } else {
        cJSON_DeleteItemFromObjectCaseSensitive(j, "rope_scaling");
        cJSON_AddNullToObject(j, "rope_scaling");
    }
    if (a->qkv_bias == 0) set_bool(j, "attention_bias", 0);
    set_str(j, "torch_dtype", dtype == ST_BF16 ? "bfloat16" : dtype == ST_F16 ? "float16" : "float32");
    if (!orig) { /* our own model: llama2.c's tokenizer conventions */
        set_num(j, "bos_token_id", 1);
        set_num(j, "eos_token_id", 2);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(j, "rlhf_reward_bias");
    if (kind == HF_OUT_RM) {
        set_num(j, "num_labels", 1);
        cJSON_DeleteItemFromObjectCaseSensitive(j, "id2label");
        cJSON_DeleteItemFromObjectCaseSensitive(j, "label2id");
        cJSON *i2l = cJSON_AddObjectToObject(j, "id2label");
        cJSON_AddStringToObject(i2l, "0", "LABEL_0");
        cJSON *l2i = cJSON_AddObjectToObject(j, "label2id");
        cJSON_AddNumberToObject(l2i, "LABEL_0", 0);
        /* HF reads the reward at the last token that is not pad_token_id;
         * one the model never writes keeps that the sequence's last token */
        const cJSON *pad = cJSON_GetObjectItemCaseSensitive(j, "pad_token_id");
        if (!cJSON_IsNumber(pad)) set_num(j, "pad_token_id", c->vocab_size - 1);
        set_numf(j, "rlhf_reward_bias", m->w.reward[c->dim]);
    } else {
        cJSON_DeleteItemFromObjectCaseSensitive(j, "num_labels");
        cJSON_DeleteItemFromObjectCaseSensitive(j, "id2label");
        cJSON_DeleteItemFromObjectCaseSensitive(j, "label2id");
    }
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}

int hf_write_text(const char *dir, const char *name, const char *data, size_t n, Err *err) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    AtomicFile a;
    int rc = atomic_open(&a, p, err);
    if (rc) return rc;
    if (fwrite(data, 1, n, a.f) != n) {
        atomic_abort(&a);
        return err_set(err, RLHF_EIO, "%s: write failed", p);
    }
    return atomic_commit(&a, err);
}

int hf_save_tensors(const char *path, const Model *m, const float *base, int kind, int dtype,
                    const StItem *extra, int n_extra, Err *err) {
    HfMeta meta = {.is_rm = kind == HF_OUT_RM};
    Slot *slots;
    int ns;
    int rc = build_slots(m, &meta, (float *)base, &slots, &ns, err);
    if (rc) return rc;
    StItem *items = calloc((size_t)(ns + n_extra), sizeof *items);
    float **owned = calloc((size_t)ns, sizeof *owned);
    if (!items || !owned) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < ns; i++) {
        items[i].name = slots[i].name;
        items[i].ndim = slots[i].ndim;
        items[i].shape[0] = slots[i].shape[0];
        items[i].shape[1] = slots[i].shape[1];
        items[i].data = slots[i].dst;
        if (!slots[i].perm_heads) continue;
        if (!(owned[i] = malloc(slot_numel(&slots[i]) * sizeof(float)))) {
            rc = err_set(err, RLHF_ENOMEM, "out of memory");
            break;
        }
        int heads, hs;
        size_t w;
        slot_rows(&slots[i], &heads, &hs, &w);
        hf_permute_heads(owned[i], slots[i].dst, heads, hs, w, 1);
        items[i].data = owned[i];
    }
    for (int i = 0; !rc && i < n_extra; i++) items[ns + i] = extra[i];
    if (!rc) rc = st_write(path, items, ns + n_extra, dtype, err);
    for (int i = 0; owned && i < ns; i++) free(owned[i]);
    free(owned);
    free(items);
    free(slots);
    return rc;
}

int hf_save(const char *dir, const Model *m, int kind, int dtype, Err *err) {
    if (kind == HF_OUT_RM && !(m->heads & MODEL_HEAD_REWARD))
        return err_set(err, RLHF_EINVAL, "the model has no reward head: write it as a policy");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return err_set(err, RLHF_EIO, "%s: %s", dir, strerror(errno));
    char p[4096];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    int rc = hf_save_tensors(p, m, m->params, kind, dtype, NULL, 0, err);
    if (rc) return rc;
    char *cfg = config_text(m, kind, dtype);
    if (!cfg) return err_set(err, RLHF_ENOMEM, "out of memory");
    rc = hf_write_text(dir, "config.json", cfg, strlen(cfg), err);
    free(cfg);
    for (int i = 1; !rc && i < N_SIDE; i++) {
        size_t n;
        const char *d = hf_files_get(m->tokenizer, m->tokenizer_len, side_files[i], &n);
        if (d) rc = hf_write_text(dir, side_files[i], d, n, err);
    }
    return rc;
}

/* ---- identity --------------------------------------------------------------- */

static int hash_file(Sha256 *s, const char *dir, const char *name, Err *err) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f) return err_set(err, RLHF_EIO, "%s: cannot open: %s", p, strerror(errno));
    sha256_update(s, name, strlen(name) + 1);
    enum { BUF = 1 << 20 };
    unsigned char *buf = malloc(BUF);
    size_t n;
    while (buf && (n = fread(buf, 1, BUF, f)) > 0) sha256_update(s, buf, n);
    int bad = !buf || ferror(f);
    free(buf);
    fclose(f);
    return bad ? err_set(err, RLHF_EIO, "%s: read error", p) : RLHF_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int hf_dir_sha256(const char *dir, char out[65], Err *err) {
    SafeTensors st;
    int rc = st_open(dir, &st, err);
    if (rc) return rc;
    /* the weights files in name order, then the config that reads them */
    char **names = malloc((size_t)st.n_files * sizeof *names);
    if (!names) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    for (int f = 0; !rc && f < st.n_files; f++) {
        const char *slash = strrchr(st.paths[f], '/');
        names[f] = slash ? (char *)slash + 1 : st.paths[f];
    }
    if (!rc) qsort(names, (size_t)st.n_files, sizeof *names, cmp_str);
    Sha256 s;
    sha256_init(&s);
    for (int f = 0; !rc && f < st.n_files; f++) rc = hash_file(&s, dir, names[f], err);
    if (!rc) rc = hash_file(&s, dir, "config.json", err);
    free(names);
    st_close(&st);
    if (rc) return rc;
    unsigned char d[32];
    sha256_final(&s, d);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) out[2 * i] = hex[d[i] >> 4], out[2 * i + 1] = hex[d[i] & 15];
    out[64] = 0;
    return RLHF_OK;
}
