/* rlhf model-dump: a debugging aid for the PyTorch reference test. Builds a
 * random model, runs one batch forward and backward with every output the
 * engine has (logits, masked cross-entropy, log-probs, entropies, reward and
 * value heads) and writes the model, inputs, outputs and all gradients. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "model/checkpoint.h"
#include "model/hf.h"
#include "model/infer.h"
#include "model/loss.h"
#include "model/lora.h"
#include "model/model.h"
#include "util/rng.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int exec_model_dump(int argc, char **argv);

const struct cmd_entry cmd_model_dump_entry = {
    "model-dump",
    "--out DIR [--model M | --config NAME] [--kv-heads N] [--head-dim N] [--qkv-bias] [--qk-norm] "
    "[--eps X] [--rope-theta X] [--rope-llama3 F,LO,HI,ORIG] [--batch B] [--len T] [--seed S]",
    "(debugging) dump a random model's outputs and gradients for the reference test",
    "  --out DIR       folder to write model.bin (llama2.c format, or model.ckpt in ours\n"
    "                  when a feature below is on), heads.bin, inputs.bin, outputs.bin,\n"
    "                  grads.bin and meta.txt\n"
    "  --model M       a checkpoint or Hugging Face directory instead of a random model:\n"
    "                  no model file; meta.txt starts with a line \"hf\" and the gradients\n"
    "                  go to grads.safetensors under the HF names (random heads as\n"
    "                  rlhf.reward_head and rlhf.value_head)\n"
    "  --greedy N      also write greedy.txt: row 0's tokens, then N greedy tokens\n"
    "                  decoded with the KV cache (no stop at EOS)\n"
    "  --config NAME   tiny (default), demo or 15m; then --dim --layers --heads\n"
    "                  --kv-heads --hidden --seq --vocab override\n"
    "  --head-dim N    head size (NH*N may differ from dim, as in Qwen3)\n"
    "  --qkv-bias      q/k/v projection biases (Qwen2)   --qk-norm  per-head q/k RMSNorm (Qwen3)\n"
    "  --eps X         RMSNorm eps   --rope-theta X  RoPE base\n"
    "  --rope-llama3 FACTOR,LOW,HIGH,ORIG   Llama 3.1 RoPE scaling\n"
    "  --unshared      own classifier instead of the tied embedding\n"
    "  --batch B       sequences (default 2)   --len T   tokens each (default 8)\n"
    "  --mask          random 0/1 loss mask (default all ones)\n"
    "  --temperature X the log-probs and entropies of J at temperature X (logits / X,\n"
    "                  as PPO's at --temperature X; default 1)\n"
    "  --seed S        seed for weights and data (default 1)\n"
    "  --lora R        the model is the base plus a LoRA adapter of rank R (random A\n"
    "                  and B; --lora-alpha X, --lora-targets T as for sft): lora.bin and\n"
    "                  lora.txt hold it, grads.bin its gradients (the base is frozen)\n"
    "  --unmerged      --model is a LoRA adapter: run it on its base as trained (the\n"
    "                  default loads it merged, as every other command does)\n" CLI_HELP_COMMON,
    exec_model_dump};

static const struct cmd_entry *E = &cmd_model_dump_entry;

static int write_floats(const char *dir, const char *name, const void *const *parts,
                        const size_t *bytes, int n, Err *err) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return err_set(err, RLHF_EIO, "%s: %s", path, strerror(errno));
    for (int i = 0; i < n; i++)
        if (bytes[i] && fwrite(parts[i], 1, bytes[i], f) != bytes[i]) {
            fclose(f);
            return err_set(err, RLHF_EIO, "%s: write failed", path);
        }
    if (fclose(f) != 0) return err_set(err, RLHF_EIO, "%s: write failed", path);
    return RLHF_OK;
}

/* greedy.txt: the prompt (row 0), then n argmax tokens from the KV cache */
static int write_greedy(const char *dir, const Model *m, const int *prompt, int T, int n, Err *err) {
    Infer st;
    int rc = infer_create(&st, m, 1, err);
    if (rc) return rc;
    int *gen = malloc((size_t)n * sizeof *gen);
    if (!gen) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    if (!rc) rc = infer_prefill(&st, prompt, T, err);
    for (int i = 0; !rc && i < n; i++) {
        const float *lg = infer_logits(&st, 0);
        int best = 0;
        for (int v = 1; v < m->cfg.vocab_size; v++)
            if (lg[v] > lg[best]) best = v;
        gen[i] = best;
        if (i + 1 < n) rc = infer_prefill(&st, &best, 1, err);
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/greedy.txt", dir);
    FILE *f = rc ? NULL : fopen(path, "w");
    if (!rc && !f) rc = err_set(err, RLHF_EIO, "%s: %s", path, strerror(errno));
    if (f) {
        for (int i = 0; i < T; i++) fprintf(f, "%s%d", i ? " " : "", prompt[i]);
        fprintf(f, "\n");
        for (int i = 0; i < n; i++) fprintf(f, "%s%d", i ? " " : "", gen[i]);
        fprintf(f, "\n");
        if (fclose(f) != 0) rc = err_set(err, RLHF_EIO, "%s: write failed", path);
    }
    free(gen);
    infer_free(&st);
    return rc;
}

/* What the command line asks for. */
typedef struct DumpArgs {
    const char *out, *cname, *model_path;
    long over[8], B, T, seed, greedy;
    int unshared, use_mask, head_dim, qkv_bias, qk_norm, orig;
    double eps, theta, factor, lo, hi;
    float temperature;
    int lora;             /* --lora R: an adapter with random A and B on the dumped base */
    int unmerged;         /* --unmerged: --model is a LoRA adapter, run on its base as trained */
    float lora_alpha;
    const char *lora_targets;
} DumpArgs;

/* --eps, --rope-theta: a positive number */
static int take_positive(const struct cmd_entry *e, const CliOpt *o, const char *arg) {
    char *end;
    errno = 0;
    double x = strtod(arg, &end);
    if (errno || end == arg || *end || !(x > 0))
        return cli_usage_error(e, "--%s expects a positive number, got '%s'", o->name, arg);
    *(double *)o->ctx = x;
    return 0;
}

static int take_rope_llama3(const struct cmd_entry *e, const CliOpt *o, const char *arg) {
    DumpArgs *a = o->ctx;
    if (sscanf(arg, "%lf,%lf,%lf,%d%c", &a->factor, &a->lo, &a->hi, &a->orig, (char[]){0}) != 4)
        return cli_usage_error(e, "--rope-llama3 expects FACTOR,LOW,HIGH,ORIG, got '%s'", arg);
    return 0;
}

/* Options into a; -1 to go on, else the exit status. */
static int parse(int argc, char **argv, DumpArgs *a) {
    *a = (DumpArgs){.cname = "tiny", .B = 2, .T = 8, .seed = 1, .temperature = 1};
    const char *db = NULL;
    const CliOpt opts[] = {
        CLI_O_DB(&db), CLI_O_STR("out", &a->out), CLI_O_STR("config", &a->cname),
        CLI_O_LONG("dim", &a->over[1], 1, 1 << 20), CLI_O_LONG("layers", &a->over[2], 1, 1 << 20),
        CLI_O_LONG("heads", &a->over[3], 1, 1 << 20), CLI_O_LONG("kv-heads", &a->over[4], 1, 1 << 20),
        CLI_O_LONG("hidden", &a->over[5], 1, 1 << 20), CLI_O_LONG("seq", &a->over[6], 1, 1 << 20),
        CLI_O_LONG("vocab", &a->over[7], 1, 1 << 20), CLI_O_FLAG("unshared", &a->unshared),
        CLI_O_LONG("batch", &a->B, 1, 4096), CLI_O_LONG("len", &a->T, 1, 1 << 20),
        CLI_O_FLAG("mask", &a->use_mask), CLI_O_FLOAT("temperature", &a->temperature, 1e-3, 100), CLI_O_LONG("seed", &a->seed, 0, 1L << 62),
        CLI_O_INT("head-dim", &a->head_dim, 2, 4096), CLI_O_FLAG("qkv-bias", &a->qkv_bias),
        CLI_O_FLAG("qk-norm", &a->qk_norm), CLI_O_CALL("eps", take_positive, &a->eps),
        CLI_O_CALL("rope-theta", take_positive, &a->theta),
        CLI_O_CALL("rope-llama3", take_rope_llama3, a), CLI_O_STR("model", &a->model_path),
        CLI_O_LONG("greedy", &a->greedy, 1, 1 << 16), CLI_O_INT("lora", &a->lora, 1, 4096),
        CLI_O_FLOAT("lora-alpha", &a->lora_alpha, 1e-6, 1e6), CLI_O_STR("lora-targets", &a->lora_targets),
        CLI_O_FLAG("unmerged", &a->unmerged), CLI_O_END};
    CliList rest = {0}; /* arguments after the options are let be, as they always were */
    int rc = cli_opts_parse(E, argc, argv, opts, &rest);
    free(rest.v);
    if (rc >= 0) return rc;
    if (!a->out) return cli_usage_error(E, "--out DIR is required");
    if (a->lora && a->model_path) return cli_usage_error(E, "--lora dumps a random model (no --model)");
    if (a->unmerged && !a->model_path) return cli_usage_error(E, "--unmerged goes with --model");
    Err err = {0};
    int bits;
    if (a->lora_targets && lora_parse_targets(a->lora_targets, &bits, &err))
        return cli_usage_error(E, "%s", err.msg);
    return -1;
}

/* The config of --model (*m loaded) or of --config with the flags applied;
 * -1 to go on, else the exit status (m freed). */
static int dump_config(const DumpArgs *a, Config *cfg, Model *m) {
    Err err = {0};
    if (a->model_path) {
        if ((a->unmerged ? model_load_adapter(a->model_path, m, &err)
                         : model_load(a->model_path, m, &err)))
            return cli_fail(E, &err);
        *cfg = m->cfg;
    } else if (model_config_named(a->cname, cfg, &err)) return cli_usage_error(E, "%s", err.msg);
    int *field[8] = {NULL, &cfg->dim, &cfg->n_layers, &cfg->n_heads, &cfg->n_kv_heads,
                     &cfg->hidden_dim, &cfg->seq_len, &cfg->vocab_size};
    for (int i = 1; i < 8; i++)
        if (a->over[i]) *field[i] = (int)a->over[i];
    if (a->unshared) cfg->shared_classifier = 0;
    if (!a->model_path) {
        cfg->head_dim = a->head_dim, cfg->qkv_bias = a->qkv_bias, cfg->qk_norm = a->qk_norm;
        cfg->norm_eps = (float)a->eps, cfg->rope_theta = (float)a->theta;
        cfg->rope_factor = (float)a->factor, cfg->rope_low_freq = (float)a->lo;
        cfg->rope_high_freq = (float)a->hi;
        cfg->rope_orig_ctx = a->orig;
    } else if (memcmp(cfg, &m->cfg, sizeof *cfg) != 0 || a->head_dim || a->qkv_bias || a->qk_norm ||
               a->eps || a->theta || a->factor) {
        model_free(m);
        return cli_usage_error(E, "--model takes no config flags");
    }
    if (model_config_validate(cfg, &err)) return cli_usage_error(E, "%s", err.msg);
    if (a->T + a->greedy > cfg->seq_len) {
        if (a->model_path) model_free(m);
        return cli_usage_error(E, "--len %ld (+ --greedy) exceeds seq %d", a->T, cfg->seq_len);
    }
    return -1;
}

/* The weights: --model's as read with random heads (a reward model keeps its
 * own), else a random model with its norms and heads randomised too, so that
 * their gradients are exercised. */
static int dump_weights(const DumpArgs *a, const Config *cfg, Model *m, Rng *r, int *had_reward,
                        Err *err) {
    if (a->model_path) {
        *had_reward = m->heads & MODEL_HEAD_REWARD;
        int rc = model_set_heads(m, MODEL_HEAD_REWARD | MODEL_HEAD_VALUE, err);
        if (rc) return rc;
        for (int i = 0; i <= cfg->dim; i++) {
            if (!*had_reward) m->w.reward[i] = 0.1f * (float)rng_normal(r);
            m->w.value[i] = 0.1f * (float)rng_normal(r);
        }
        return RLHF_OK;
    }
    int rc = model_create(m, cfg, MODEL_HEAD_REWARD | MODEL_HEAD_VALUE, err);
    if (rc) return rc;
    model_init_random(m, (uint64_t)a->seed);
    int C = cfg->dim;
    size_t o0 = model_tensor_offset(m, MODEL_T_RMS_ATT), o1 = model_tensor_offset(m, MODEL_T_RMS_FFN);
    for (size_t i = 0; i < m->sizes[MODEL_T_RMS_ATT]; i++) m->params[o0 + i] = 1.0f + 0.2f * (float)rng_normal(r);
    for (size_t i = 0; i < m->sizes[MODEL_T_RMS_FFN]; i++) m->params[o1 + i] = 1.0f + 0.2f * (float)rng_normal(r);
    for (int i = 0; i < C; i++) m->w.rms_final[i] = 1.0f + 0.2f * (float)rng_normal(r);
    for (int i = 0; i <= C; i++) m->w.reward[i] = 0.1f * (float)rng_normal(r);
    for (int i = 0; i <= C; i++) m->w.value[i] = 0.1f * (float)rng_normal(r);
    for (int t = MODEL_T_BQ; t <= MODEL_T_KNORM; t++) { /* biases 0, q/k gains 1 otherwise */
        float *p = m->params + model_tensor_offset(m, t), base = t >= MODEL_T_QNORM ? 1.0f : 0.0f;
        for (size_t i = 0; i < m->sizes[t]; i++) p[i] = base + 0.2f * (float)rng_normal(r);
    }
    return RLHF_OK;
}

/* --lora: an adapter with A and B both random (a fresh one's B is 0, which
 * would leave A's gradient 0 and test nothing); lora.txt: rank, alpha, the
 * targets' bits; lora.bin: its array (adapters, then both head slots). */
static int dump_lora(const DumpArgs *a, Model *m, Rng *r, Err *err) {
    LoraConfig c = {a->lora, a->lora_alpha, 0, 0};
    int rc = a->lora_targets ? lora_parse_targets(a->lora_targets, &c.targets, err) : RLHF_OK;
    if (!rc) rc = model_lora_attach(m, &c, (uint64_t)a->seed, "base", NULL, err);
    if (rc) return rc;
    Lora *lo = m->lora;
    for (int t = 0; t < LORA_NT; t++)
        if (lo->c.targets & (1 << t))
            for (size_t i = 0; i < (size_t)lo->L * lo->out[t] * lo->c.rank; i++)
                lo->params[lo->off_b[t] + i] = 0.05f * (float)rng_normal(r);
    char path[1200];
    snprintf(path, sizeof path, "%s/lora.txt", a->out);
    FILE *f = fopen(path, "w");
    if (!f) return err_set(err, RLHF_EIO, "%s: %s", path, strerror(errno));
    fprintf(f, "%d %.9g %d\n", lo->c.rank, (double)lo->c.alpha, lo->c.targets);
    fclose(f);
    const void *p[] = {lo->params};
    size_t b[] = {lo->n * sizeof(float)};
    return write_floats(a->out, "lora.bin", p, b, 1, err);
}

/* meta.txt: the shapes, then the Hugging Face families' fields (0: llama2.c's) */
static int write_meta(const DumpArgs *a, const Config *cfg, Err *err) {
    char path[1200];
    snprintf(path, sizeof path, "%s/meta.txt", a->out);
    FILE *f = fopen(path, "w");
    if (!f) return err_set(err, RLHF_EIO, "%s: %s", path, strerror(errno));
    if (a->model_path) fprintf(f, "hf\n");
    fprintf(f, "%d %d %d %d %d %d %d %d %ld %ld\n", cfg->dim, cfg->hidden_dim, cfg->n_layers,
            cfg->n_heads, cfg->n_kv_heads, cfg->vocab_size, cfg->seq_len, cfg->shared_classifier,
            a->B, a->T);
    fprintf(f, "%d %d %d %.9g %.9g %.9g %.9g %.9g %d %.9g\n", model_head_size(cfg), cfg->qkv_bias,
            cfg->qk_norm, (double)model_norm_eps(cfg), (double)model_rope_theta(cfg),
            (double)cfg->rope_factor, (double)cfg->rope_low_freq, (double)cfg->rope_high_freq,
            cfg->rope_orig_ctx, (double)a->temperature);
    fclose(f);
    return RLHF_OK;
}

/* One batch of random data: tokens, targets, the mask and the coefficients of
 * J's terms (tok: 2N ints, fl: 7N + 2 + N*V floats). */
typedef struct DumpBatch {
    int *tok, *tgt;
    float *fl, *mask, *ca, *cb, *cc, *cd, *logp, *ent, *scal, *dl2;
} DumpBatch;

static int batch_make(DumpBatch *d, int N, int V, int use_mask, Rng *r, Err *err) {
    d->tok = malloc(2 * N * sizeof(int));
    d->fl = malloc((size_t)(7 * N + 2) * sizeof(float) + (size_t)N * V * sizeof(float));
    if (!d->tok || !d->fl) return err_set(err, RLHF_ENOMEM, "out of memory");
    float *fl = d->fl;
    d->tgt = d->tok + N;
    d->mask = fl, d->ca = fl + N, d->cb = fl + 2 * N, d->cc = fl + 3 * N, d->cd = fl + 4 * N;
    d->logp = fl + 5 * N, d->ent = fl + 6 * N, d->scal = fl + 7 * N, d->dl2 = fl + 7 * N + 2;
    for (int n = 0; n < N; n++) {
        d->tok[n] = (int)rng_below(r, V);
        d->tgt[n] = (int)rng_below(r, V);
        d->mask[n] = use_mask ? (float)(rng_below(r, 3) != 0) : 1.0f;
        d->ca[n] = 0.3f * (float)rng_normal(r);
        d->cb[n] = 0.3f * (float)rng_normal(r);
        d->cc[n] = 0.1f * (float)rng_normal(r);
        d->cd[n] = 0.1f * (float)rng_normal(r);
    }
    d->mask[0] = 1.0f; /* never an all-zero mask */
    return RLHF_OK;
}

/* J = mean_mask CE + Σ a·reward + Σ b·value + Σ c·logp + Σ d·entropy: the
 * outputs after the forward pass, then its gradients after the backward. */
static int dump_outputs(const DumpArgs *a, Model *m, RunState *rs, DumpBatch *d, int had_reward,
                        Err *err) {
    int C = m->cfg.dim, V = m->cfg.vocab_size, N = (int)(a->B * a->T);
    size_t lb = (size_t)N * V * sizeof(float), nb = N * sizeof(float);
    float temp = a->temperature;
    memcpy(d->dl2, rs->logits, lb);
    loss_logits_temper(d->dl2, N, V, temp);
    loss_logprobs(d->dl2, d->tgt, N, V, d->logp, d->ent);
    double cnt, ce = loss_ce_forward(rs->logits, d->tgt, d->mask, N, V, NULL, &cnt);
    double j = ce / cnt;
    for (int n = 0; n < N; n++)
        j += (double)d->ca[n] * rs->reward[n] + (double)d->cb[n] * rs->value[n] +
             (double)d->cc[n] * d->logp[n] + (double)d->cd[n] * d->ent[n];
    d->scal[0] = (float)(ce / cnt);
    d->scal[1] = (float)j;
    const void *hp[] = {m->w.reward, m->w.value};
    size_t hb[] = {(C + 1) * sizeof(float), (C + 1) * sizeof(float)};
    const void *ip[] = {d->tok, d->tgt, d->mask, d->ca, d->cb, d->cc, d->cd};
    size_t ib[] = {nb, nb, nb, nb, nb, nb, nb};
    int rc = write_floats(a->out, "heads.bin", hp, hb, 2, err);
    if (!rc) rc = write_floats(a->out, "inputs.bin", ip, ib, 7, err);
    if (!rc) {
        const void *op[] = {rs->logits, d->logp, d->ent, rs->reward, rs->value, d->scal};
        size_t ob[] = {lb, nb, nb, nb, nb, 2 * sizeof(float)};
        rc = write_floats(a->out, "outputs.bin", op, ob, 6, err);
    }
    /* the gradient of J into the logits buffer, then backward */
    if (!rc) {
        memcpy(d->dl2, rs->logits, lb);
        loss_logits_temper(d->dl2, N, V, temp);
        loss_ce_backward(rs->logits, d->tgt, d->mask, N, V, (float)(1.0 / cnt), NULL);
        loss_logprobs_backward(d->dl2, d->tgt, N, V, d->cc, d->cd);
        loss_logits_temper(d->dl2, N, V, temp); /* d/d(x/T) → d/dx */
        for (size_t i = 0; i < (size_t)N * V; i++) rs->logits[i] += d->dl2[i];
        rc = model_backward(m, rs, d->tok, rs->logits, d->ca, d->cb, err);
    }
    char path[1200];
    if (!rc && a->model_path && m->lora) {
        /* --unmerged: the outputs are what is compared; the adapter's gradients are
         * checked on random models (--lora) */
    } else if (!rc && a->model_path) {
        StItem heads[2] = {{"rlhf.reward_head", 1, {C + 1}, m->g.reward},
                           {"rlhf.value_head", 1, {C + 1}, m->g.value}};
        snprintf(path, sizeof path, "%s/grads.safetensors", a->out);
        rc = hf_save_tensors(path, m, m->grads, had_reward ? HF_OUT_RM : HF_OUT_POLICY, ST_F32,
                             heads, 2, err);
    } else if (!rc) {
        if (m->lora && m->grads) return err_set(err, RLHF_EINVAL, "a frozen base got gradients");
        const void *gp[] = {model_train_grads(m)};
        size_t gb[] = {model_train_n(m) * sizeof(float)};
        rc = write_floats(a->out, "grads.bin", gp, gb, 1, err);
    }
    return rc;
}

static int exec_model_dump(int argc, char **argv) {
    DumpArgs a;
    int rc = parse(argc, argv, &a);
    if (rc >= 0) return rc;
    Err err = {0};
    Config cfg;
    Model m;
    if ((rc = dump_config(&a, &cfg, &m)) >= 0) return rc;
    if (mkdir(a.out, 0777) != 0 && errno != EEXIST) {
        err_set(&err, RLHF_EIO, "%s: %s", a.out, strerror(errno));
        if (a.model_path) model_free(&m);
        return cli_fail(E, &err);
    }
    RunState rs;
    Rng r;
    int had_reward = 0; /* --model is a reward model: its head is score.weight */
    rng_seed(&r, (uint64_t)a.seed + 1000);
    if (dump_weights(&a, &cfg, &m, &r, &had_reward, &err)) {
        if (a.model_path) model_free(&m);
        return cli_fail(E, &err);
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/model.bin", a.out);
    /* llama2.c's format while it can hold the model (older dumps read it), ours otherwise */
    int ours = cfg.head_dim || cfg.qkv_bias || cfg.qk_norm || cfg.norm_eps > 0 || cfg.rope_theta > 0 ||
               cfg.rope_factor > 0;
    if (ours) snprintf(path, sizeof path, "%s/model.ckpt", a.out);
    rc = a.model_path ? RLHF_OK : ours ? model_save(path, &m, &err) : model_save_llama2c(path, &m, &err);
    if (!rc && a.lora) rc = dump_lora(&a, &m, &r, &err);
    if (!rc) rc = model_runstate_create(&rs, &cfg, (int)a.B, (int)a.T, &err);
    if (rc) {
        model_free(&m);
        return cli_fail(E, &err);
    }
    DumpBatch d = {0};
    rc = batch_make(&d, (int)(a.B * a.T), cfg.vocab_size, a.use_mask, &r, &err);
    if (!rc) rc = model_forward(&m, &rs, d.tok, (int)a.B, (int)a.T, MODEL_FWD_LOGITS, &err);
    if (!rc) rc = dump_outputs(&a, &m, &rs, &d, had_reward, &err);
    if (!rc && a.greedy) rc = write_greedy(a.out, &m, d.tok, (int)a.T, (int)a.greedy, &err);
    if (!rc) rc = write_meta(&a, &cfg, &err);
    free(d.tok);
    free(d.fl);
    model_runstate_free(&rs);
    model_free(&m);
    if (rc) return cli_fail(E, &err);
    printf("wrote %s\n", a.out);
    return EXIT_OK;
}
