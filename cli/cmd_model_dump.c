/* rlhf model-dump: a debugging aid for the PyTorch reference test. Builds a
 * random model, runs one batch forward and backward with every output the
 * engine has (logits, masked cross-entropy, log-probs, entropies, reward and
 * value heads) and writes the model, inputs, outputs and all gradients. */
#include "cli/cli.h"
#include "model/checkpoint.h"
#include "model/hf.h"
#include "model/infer.h"
#include "model/loss.h"
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
    "  --seed S        seed for weights and data (default 1)\n" CLI_HELP_COMMON,
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

static int exec_model_dump(int argc, char **argv) {
    static const struct option opts[] = {
        CLI_OPT_DB, CLI_OPT_HELP, {"out", required_argument, NULL, 'o'},
        {"config", required_argument, NULL, 'c'}, {"dim", required_argument, NULL, 1},
        {"layers", required_argument, NULL, 2}, {"heads", required_argument, NULL, 3},
        {"kv-heads", required_argument, NULL, 4}, {"hidden", required_argument, NULL, 5},
        {"seq", required_argument, NULL, 6}, {"vocab", required_argument, NULL, 7},
        {"unshared", no_argument, NULL, 'u'}, {"batch", required_argument, NULL, 'b'},
        {"len", required_argument, NULL, 't'}, {"mask", no_argument, NULL, 'm'},
        {"seed", required_argument, NULL, 's'}, {"head-dim", required_argument, NULL, 8},
        {"qkv-bias", no_argument, NULL, 9}, {"qk-norm", no_argument, NULL, 10},
        {"eps", required_argument, NULL, 11}, {"rope-theta", required_argument, NULL, 12},
        {"rope-llama3", required_argument, NULL, 13}, {"model", required_argument, NULL, 'M'},
        {"greedy", required_argument, NULL, 'g'}, CLI_OPT_END};
    const char *out = NULL, *cname = "tiny", *model_path = NULL;
    long over[8] = {0}, B = 2, T = 8, seed = 1, v, greedy = 0;
    int unshared = 0, use_mask = 0, c, head_dim = 0, qkv_bias = 0, qk_norm = 0, orig = 0;
    double eps = 0, theta = 0, factor = 0, lo = 0, hi = 0;
    char *end;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'D': break;
        case 'o': out = optarg; break;
        case 'c': cname = optarg; break;
        case 1: case 2: case 3: case 4: case 5: case 6: case 7:
            if (cli_parse_long(E, opts[c + 3].name, optarg, 1, 1 << 20, &v)) return EXIT_USAGE;
            over[c] = v;
            break;
        case 8:
            if (cli_parse_long(E, "--head-dim", optarg, 2, 4096, &v)) return EXIT_USAGE;
            head_dim = (int)v;
            break;
        case 9: qkv_bias = 1; break;
        case 10: qk_norm = 1; break;
        case 11:
        case 12: {
            errno = 0;
            double x = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(x > 0))
                return cli_usage_error(E, "--%s expects a positive number, got '%s'",
                                       c == 11 ? "eps" : "rope-theta", optarg);
            *(c == 11 ? &eps : &theta) = x;
            break;
        }
        case 13:
            if (sscanf(optarg, "%lf,%lf,%lf,%d%c", &factor, &lo, &hi, &orig, (char[]){0}) != 4)
                return cli_usage_error(E, "--rope-llama3 expects FACTOR,LOW,HIGH,ORIG, got '%s'", optarg);
            break;
        case 'u': unshared = 1; break;
        case 'b': if (cli_parse_long(E, "--batch", optarg, 1, 4096, &B)) return EXIT_USAGE; break;
        case 't': if (cli_parse_long(E, "--len", optarg, 1, 1 << 20, &T)) return EXIT_USAGE; break;
        case 'm': use_mask = 1; break;
        case 'M': model_path = optarg; break;
        case 'g': if (cli_parse_long(E, "--greedy", optarg, 1, 1 << 16, &greedy)) return EXIT_USAGE; break;
        case 's': if (cli_parse_long(E, "--seed", optarg, 0, 1L << 62, &seed)) return EXIT_USAGE; break;
        case 'h': return cli_help(E);
        default: return cli_bad_option(E, argv, c);
        }
    }
    if (!out) return cli_usage_error(E, "--out DIR is required");
    Err err = {0};
    Config cfg;
    Model m;
    if (model_path) {
        if (model_load(model_path, &m, &err)) return cli_fail(E, &err);
        cfg = m.cfg;
    } else if (model_config_named(cname, &cfg, &err)) return cli_usage_error(E, "%s", err.msg);
    if (over[1]) cfg.dim = over[1];
    if (over[2]) cfg.n_layers = over[2];
    if (over[3]) cfg.n_heads = over[3];
    if (over[4]) cfg.n_kv_heads = over[4];
    if (over[5]) cfg.hidden_dim = over[5];
    if (over[6]) cfg.seq_len = over[6];
    if (over[7]) cfg.vocab_size = over[7];
    if (unshared) cfg.shared_classifier = 0;
    if (!model_path) {
        cfg.head_dim = head_dim, cfg.qkv_bias = qkv_bias, cfg.qk_norm = qk_norm;
        cfg.norm_eps = (float)eps, cfg.rope_theta = (float)theta;
        cfg.rope_factor = (float)factor, cfg.rope_low_freq = (float)lo, cfg.rope_high_freq = (float)hi;
        cfg.rope_orig_ctx = orig;
    } else if (memcmp(&cfg, &m.cfg, sizeof cfg) != 0 || head_dim || qkv_bias || qk_norm || eps ||
               theta || factor) {
        model_free(&m);
        return cli_usage_error(E, "--model takes no config flags");
    }
    if (model_config_validate(&cfg, &err)) return cli_usage_error(E, "%s", err.msg);
    if (T + greedy > cfg.seq_len) {
        if (model_path) model_free(&m);
        return cli_usage_error(E, "--len %ld (+ --greedy) exceeds seq %d", T, cfg.seq_len);
    }
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        err_set(&err, RLHF_EIO, "%s: %s", out, strerror(errno));
        if (model_path) model_free(&m);
        return cli_fail(E, &err);
    }
    RunState rs;
    Rng r;
    int had_reward = 0; /* --model is a reward model: its head is score.weight */
    rng_seed(&r, (uint64_t)seed + 1000);
    if (model_path) {
        /* the weights as read; random heads (a reward model keeps its own) */
        had_reward = m.heads & MODEL_HEAD_REWARD;
        if (model_set_heads(&m, MODEL_HEAD_REWARD | MODEL_HEAD_VALUE, &err)) {
            model_free(&m);
            return cli_fail(E, &err);
        }
        for (int i = 0; i <= cfg.dim; i++) {
            if (!had_reward) m.w.reward[i] = 0.1f * (float)rng_normal(&r);
            m.w.value[i] = 0.1f * (float)rng_normal(&r);
        }
    } else {
    if (model_create(&m, &cfg, MODEL_HEAD_REWARD | MODEL_HEAD_VALUE, &err)) return cli_fail(E, &err);
    model_init_random(&m, (uint64_t)seed);
    /* the init leaves norms at 1 and heads at 0: randomise them so their
     * gradients are exercised too */
    int C = cfg.dim;
    size_t o0 = model_tensor_offset(&m, MODEL_T_RMS_ATT), o1 = model_tensor_offset(&m, MODEL_T_RMS_FFN);
    for (size_t i = 0; i < m.sizes[MODEL_T_RMS_ATT]; i++) m.params[o0 + i] = 1.0f + 0.2f * (float)rng_normal(&r);
    for (size_t i = 0; i < m.sizes[MODEL_T_RMS_FFN]; i++) m.params[o1 + i] = 1.0f + 0.2f * (float)rng_normal(&r);
    for (int i = 0; i < C; i++) m.w.rms_final[i] = 1.0f + 0.2f * (float)rng_normal(&r);
    for (int i = 0; i <= C; i++) m.w.reward[i] = 0.1f * (float)rng_normal(&r);
    for (int i = 0; i <= C; i++) m.w.value[i] = 0.1f * (float)rng_normal(&r);
    for (int t = MODEL_T_BQ; t <= MODEL_T_KNORM; t++) { /* biases 0, q/k gains 1 otherwise */
        float *p = m.params + model_tensor_offset(&m, t), base = t >= MODEL_T_QNORM ? 1.0f : 0.0f;
        for (size_t i = 0; i < m.sizes[t]; i++) p[i] = base + 0.2f * (float)rng_normal(&r);
    }
    }
    int C = cfg.dim, V = cfg.vocab_size, N = (int)(B * T);
    int rc = model_runstate_create(&rs, &cfg, (int)B, (int)T, &err);
    if (rc) {
        model_free(&m);
        return cli_fail(E, &err);
    }
    int *tok = malloc(2 * N * sizeof(int));
    float *fl = malloc((size_t)(7 * N + 2) * sizeof(float) + (size_t)N * V * sizeof(float));
    int *tgt = tok + N;
    float *mask = fl, *ca = fl + N, *cb = fl + 2 * N, *cc = fl + 3 * N, *cd = fl + 4 * N;
    float *logp = fl + 5 * N, *ent = fl + 6 * N, *scal = fl + 7 * N, *dl2 = fl + 7 * N + 2;
    for (int n = 0; n < N; n++) {
        tok[n] = (int)rng_below(&r, V);
        tgt[n] = (int)rng_below(&r, V);
        mask[n] = use_mask ? (float)(rng_below(&r, 3) != 0) : 1.0f;
        ca[n] = 0.3f * (float)rng_normal(&r);
        cb[n] = 0.3f * (float)rng_normal(&r);
        cc[n] = 0.1f * (float)rng_normal(&r);
        cd[n] = 0.1f * (float)rng_normal(&r);
    }
    mask[0] = 1.0f; /* never an all-zero mask */
    rc = model_forward(&m, &rs, tok, (int)B, (int)T, MODEL_FWD_LOGITS, &err);
    char path[1200];
    snprintf(path, sizeof path, "%s/model.bin", out);
    /* llama2.c's format while it can hold the model (older dumps read it), ours otherwise */
    int ours = cfg.head_dim || cfg.qkv_bias || cfg.qk_norm || cfg.norm_eps > 0 || cfg.rope_theta > 0 ||
               cfg.rope_factor > 0;
    if (ours) snprintf(path, sizeof path, "%s/model.ckpt", out);
    if (!rc && !model_path) rc = ours ? model_save(path, &m, &err) : model_save_llama2c(path, &m, &err);
    if (!rc) {
        size_t lb = (size_t)N * V * sizeof(float), nb = N * sizeof(float);
        /* J = mean_mask CE + Σ a·reward + Σ b·value + Σ c·logp + Σ d·entropy */
        loss_logprobs(rs.logits, tgt, N, V, logp, ent);
        double cnt, ce = loss_ce_forward(rs.logits, tgt, mask, N, V, NULL, &cnt);
        double j = ce / cnt;
        for (int n = 0; n < N; n++)
            j += (double)ca[n] * rs.reward[n] + (double)cb[n] * rs.value[n] + (double)cc[n] * logp[n] +
                 (double)cd[n] * ent[n];
        scal[0] = (float)(ce / cnt);
        scal[1] = (float)j;
        const void *hp[] = {m.w.reward, m.w.value};
        size_t hb[] = {(C + 1) * sizeof(float), (C + 1) * sizeof(float)};
        const void *ip[] = {tok, tgt, mask, ca, cb, cc, cd};
        size_t ib[] = {nb, nb, nb, nb, nb, nb, nb};
        rc = write_floats(out, "heads.bin", hp, hb, 2, &err);
        if (!rc) rc = write_floats(out, "inputs.bin", ip, ib, 7, &err);
        if (!rc) {
            const void *op[] = {rs.logits, logp, ent, rs.reward, rs.value, scal};
            size_t ob[] = {lb, nb, nb, nb, nb, 2 * sizeof(float)};
            rc = write_floats(out, "outputs.bin", op, ob, 6, &err);
        }
        /* the gradient of J into the logits buffer, then backward */
        if (!rc) {
            memcpy(dl2, rs.logits, lb);
            loss_ce_backward(rs.logits, tgt, mask, N, V, (float)(1.0 / cnt), NULL);
            loss_logprobs_backward(dl2, tgt, N, V, cc, cd);
            for (size_t i = 0; i < (size_t)N * V; i++) rs.logits[i] += dl2[i];
            rc = model_backward(&m, &rs, tok, rs.logits, ca, cb, &err);
        }
        if (!rc && model_path) {
            StItem heads[2] = {{"rlhf.reward_head", 1, {C + 1}, m.g.reward},
                               {"rlhf.value_head", 1, {C + 1}, m.g.value}};
            snprintf(path, sizeof path, "%s/grads.safetensors", out);
            rc = hf_save_tensors(path, &m, m.grads, had_reward ? HF_OUT_RM : HF_OUT_POLICY, ST_F32,
                                 heads, 2, &err);
        } else if (!rc) {
            const void *gp[] = {m.grads};
            size_t gb[] = {m.n_params * sizeof(float)};
            rc = write_floats(out, "grads.bin", gp, gb, 1, &err);
        }
        if (!rc && greedy) rc = write_greedy(out, &m, tok, (int)T, (int)greedy, &err);
        if (!rc) {
            snprintf(path, sizeof path, "%s/meta.txt", out);
            FILE *f = fopen(path, "w");
            if (!f) rc = err_set(&err, RLHF_EIO, "%s: %s", path, strerror(errno));
            else {
                if (model_path) fprintf(f, "hf\n");
                fprintf(f, "%d %d %d %d %d %d %d %d %ld %ld\n", cfg.dim, cfg.hidden_dim, cfg.n_layers,
                        cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size, cfg.seq_len,
                        cfg.shared_classifier, B, T);
                /* second line: the Hugging Face families' fields (0: llama2.c's) */
                fprintf(f, "%d %d %d %.9g %.9g %.9g %.9g %.9g %d\n", model_head_size(&cfg), cfg.qkv_bias,
                        cfg.qk_norm, (double)model_norm_eps(&cfg), (double)model_rope_theta(&cfg),
                        (double)cfg.rope_factor, (double)cfg.rope_low_freq,
                        (double)cfg.rope_high_freq, cfg.rope_orig_ctx);
                fclose(f);
            }
        }
    }
    free(tok);
    free(fl);
    model_runstate_free(&rs);
    model_free(&m);
    if (rc) return cli_fail(E, &err);
    printf("wrote %s\n", out);
    return EXIT_OK;
}
