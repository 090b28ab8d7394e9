/* Hugging Face-sized models on random weights, in the shapes of SmolLM2-135M,
 * Qwen2.5-0.5B and Qwen3-0.6B: writing and loading the HF directory (BF16
 * safetensors, as the hub ships them), sampling tokens/s at 1 and 2 threads
 * for one stream and for k = 8 streams on a shared prompt, with fp32 and
 * with bf16 weights, beside the memory-bandwidth bound (weight bytes read per
 * decode step ÷ the read bandwidth measured here), SFT training tokens/s, and one PPO step, each
 * training figure with the peak RSS of a process that did only that.
 * RLHF_BENCH_QUICK=1 runs the smallest shape only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_mem.h"
#include "bench/bench_tok.h"
#include "model/checkpoint.h"
#include "model/hf.h"
#include "model/infer.h"
#include "model/matvec.h"
#include "model/optim.h"
#include "model/parallel.h"
#include "model/sample.h"
#include "rl/ppo.h"
#include "rl/sft.h"
#include "util/progress.h"
#include "util/rng.h"

typedef struct Shape {
    const char *name;
    Config c;
} Shape;

static const Shape shapes[] = {
    {"smollm2-135m", {.dim = 576, .hidden_dim = 1536, .n_layers = 30, .n_heads = 9, .n_kv_heads = 3,
                      .vocab_size = 49152, .seq_len = 2048, .shared_classifier = 1,
                      .norm_eps = 1e-5f, .rope_theta = 100000}},
    {"qwen2.5-0.5b", {.dim = 896, .hidden_dim = 4864, .n_layers = 24, .n_heads = 14, .n_kv_heads = 2,
                      .vocab_size = 151936, .seq_len = 2048, .shared_classifier = 1, .qkv_bias = 1,
                      .norm_eps = 1e-6f, .rope_theta = 1000000}},
    {"qwen3-0.6b", {.dim = 1024, .hidden_dim = 3072, .n_layers = 28, .n_heads = 16, .n_kv_heads = 8,
                    .head_dim = 128, .vocab_size = 151936, .seq_len = 2048, .shared_classifier = 1,
                    .qk_norm = 1, .norm_eps = 1e-6f, .rope_theta = 1000000}},
};

static void die(const char *what, const Err *e) {
    fprintf(stderr, "bench_hf: %s: %s\n", what, e->msg);
    exit(1);
}

static double rand_tokens(Rng *r, int *ids, int n, int V) {
    for (int i = 0; i < n; i++) ids[i] = 3 + (int)rng_below(r, (uint64_t)V - 3);
    return 0;
}

/* tokens/s of k streams decoding steps tokens after a prompt of P tokens
 * (shared by the k), the matrix products reading weights wt */
static double decode_rate(const Model *m, InferWeights wt, int k, int threads, int steps, int P) {
    Err err = {0};
    Infer st;
    infer_set_threads(threads);
    if (infer_create_weights(&st, m, k, wt, &err)) die("infer", &err);
    int *prompt = malloc(sizeof(int) * (size_t)P), tok[8];
    if (!prompt) die("prefill", &(Err){.msg = "out of memory"});
    Rng r;
    rng_seed(&r, 1);
    rand_tokens(&r, prompt, P, m->cfg.vocab_size);
    int bound = matvec_bind(); /* as model/sample.c's runs are */
    if (infer_prefill(&st, prompt, P, &err)) die("prefill", &err);
    free(prompt);
    if (k > 1 && infer_fork(&st, k, &err)) die("fork", &err);
    double t0 = 0;
    for (int s = 0; s <= steps; s++) {
        if (s == 1) t0 = now_seconds(); /* the first step warms up */
        rand_tokens(&r, tok, k, m->cfg.vocab_size);
        int rc = k > 1 ? infer_decode(&st, tok, NULL, &err) : infer_prefill(&st, tok, 1, &err);
        if (rc) die("decode", &err);
    }
    double rate = (double)steps * k / (now_seconds() - t0);
    matvec_unbind(bound);
    infer_free(&st);
    return rate;
}

/* Runs this program again as "bench_hf CHILD DIR SHAPE" (a fresh process:
 * a forked copy would inherit thread pools without their threads) and
 * returns the child's peak RSS in MiB, or -1. */
static long in_child(const char *child, const char *dir, int shape) {
    fflush(stdout);
    char idx[16];
    snprintf(idx, sizeof idx, "%d", shape);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "bench_hf", child, dir, idx, (char *)NULL);
        _exit(127);
    }
    int status;
    struct rusage u;
    if (pid < 0 || wait4(pid, &status, 0, &u) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
        return -1;
    return u.ru_maxrss / 1024;
}

static void sft_child(const char *dir, const Shape *s) {
    Err err = {0};
    Model m;
    AdamW o;
    SftTrainer tr;
    enum { B = 4, NEX = 16, P = 48, A = 80 };
    if (hf_load(dir, &m, &err) || adamw_create(&o, m.n_params, &err)) die("sft", &err);
    infer_set_threads(2);
    if (sft_trainer_init(&tr, &m, &o, B, 1, &err)) die("sft init", &err);
    SftSet set = {0};
    set.ex = calloc(NEX, sizeof *set.ex);
    set.lens = calloc(NEX, sizeof(int));
    Rng r;
    rng_seed(&r, 2);
    for (int i = 0; i < NEX; i++) {
        int p[P], a[A];
        rand_tokens(&r, p, P, m.cfg.vocab_size);
        rand_tokens(&r, a, A, m.cfg.vocab_size);
        if (seq_join(p, P, a, A, m.cfg.seq_len, &set.ex[i], &err)) die("seq", &err);
        set.lens[i] = set.ex[i].n;
    }
    set.n = NEX;
    int idx[B];
    double loss, gn, t0 = 0;
    int64_t toks = 0, t;
    int steps = 3;
    for (int st = 0; st <= steps; st++) {
        if (st == 1) t0 = now_seconds(), toks = 0;
        for (int i = 0; i < B; i++) idx[i] = (st * B + i) % NEX;
        if (sft_step(&tr, &set, idx, B, 1e-5f, &loss, &gn, &t, &err)) die("sft step", &err);
        toks += (int64_t)B * (P + A);
    }
    printf("hf_sft_tokens_per_s shape=%s batch=%dx%d threads=2 value=%.1f\n", s->name, B, P + A,
           toks / (now_seconds() - t0));
    sft_set_free(&set);
    sft_trainer_free(&tr);
    adamw_free(&o);
    model_free(&m);
}

static int ppo_score(void *ctx, const SeqExample *ex, const SampleResult *res, int n, float *scores,
                     Err *err) {
    (void)ctx, (void)ex, (void)err;
    for (int i = 0; i < n; i++) scores[i] = 0.01f * (float)res[i].n_tokens;
    return RLHF_OK;
}

/* One PPO step (policy, reference and value head; the reward a fixed rule, so
 * the figure is the policy's side of the step). */
static void ppo_child(const char *dir, const Shape *s) {
    Err err = {0};
    Model pol, ref;
    if (hf_load(dir, &pol, &err) || hf_load(dir, &ref, &err)) die("ppo load", &err);
    Tokenizer *tok;
    if (bench_tokenizer(pol.cfg.vocab_size, &tok, &err)) die("ppo tokenizer", &err);
    infer_set_threads(2);
    static PpoPrompt prompts[8];
    static int ids[8][24];
    Rng r;
    rng_seed(&r, 4);
    for (int i = 0; i < 8; i++) {
        rand_tokens(&r, ids[i], 24, pol.cfg.vocab_size);
        prompts[i].ids = ids[i], prompts[i].n = 24;
    }
    PpoConfig pc;
    ppo_config_default(&pc);
    pc.prompts = 2, pc.samples = 2, pc.max_new = 32, pc.epochs = 1;
    pc.value_mode = PPO_VALUE_HEAD, pc.length_penalty = 0;
    Ppo p;
    if (ppo_init(&p, &pc, &pol, &ref, NULL, tok, prompts, 8, NULL, NULL, 0, 1, &err)) die("ppo init", &err);
    PpoStats st;
    double t0 = now_seconds();
    if (ppo_step(&p, ppo_score, NULL, &st, &err)) die("ppo step", &err);
    printf("hf_ppo_step_s shape=%s prompts=2 answers=2 new=32 critic=head value=%.1f\n", s->name,
           now_seconds() - t0);
    printf("hf_ppo_rollout_tokens_per_s shape=%s value=%.1f\n", s->name, st.rollout_tokens / st.t_rollout);
    printf("hf_ppo_update_tokens_per_s shape=%s value=%.1f\n", s->name, st.update_tokens / st.t_update);
    ppo_free(&p);
    tok_free(tok);
    model_free(&pol), model_free(&ref);
}

static void bench_shape(const Shape *s, double bw1, double bw2) {
    Err err = {0};
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/bench_hf_%s.%d", s->name, (int)getpid());
    Model m;
    if (model_create(&m, &s->c, 0, &err)) die(s->name, &err);
    model_init_random(&m, 1);
    double t0 = now_seconds();
    if (hf_save(dir, &m, HF_OUT_POLICY, ST_BF16, &err)) die("save", &err);
    double t_save = now_seconds() - t0;
    size_t n_params = m.n_params;
    model_free(&m);
    hf_set_context(s->c.seq_len);
    t0 = now_seconds();
    if (model_load(dir, &m, &err)) die("load", &err);
    double t_load = now_seconds() - t0;
    printf("hf_write_s shape=%s params=%.0fM dtype=bf16 value=%.2f\n", s->name, n_params / 1e6, t_save);
    printf("hf_load_s shape=%s params=%.0fM dtype=bf16 value=%.3f\n", s->name, n_params / 1e6, t_load);
    /* one decode step reads every matrix once (the embedding only one row,
     * but it is also the tied LM head): 4 bytes a parameter in fp32, 2 in
     * bf16 (the norms and biases are a rounding error). fp32 and bf16 runs
     * alternate, so a busy shared machine slows both alike. */
    for (int th = 1; th <= 2; th++) {
        double bw = th == 1 ? bw1 : bw2;
        for (int b = 0; b < 2; b++) {
            const char *dt = b ? "bf16" : "f32";
            InferWeights wt = b ? INFER_WEIGHTS_BF16 : INFER_WEIGHTS_F32;
            double bound = bw * 1e9 / ((b ? 2.0 : 4.0) * (double)n_params);
            double one = decode_rate(&m, wt, 1, th, 16, 32), eight = decode_rate(&m, wt, 8, th, 8, 32);
            printf("hf_sample_tokens_per_s shape=%s weights=%s threads=%d prompt=32 streams=1 "
                   "value=%.1f bound=%.1f\n",
                   s->name, dt, th, one, bound);
            printf("hf_sample_tokens_per_s shape=%s weights=%s threads=%d prompt=32 streams=8 "
                   "value=%.1f bound_one_stream=%.1f\n",
                   s->name, dt, th, eight, bound);
        }
    }
    /* after a long prompt, where attention over the cache is a good part of
     * a step: bf16 weights (their products halve, attention does not) */
    for (int th = 1; th <= 2; th++)
        for (int k = 1; k <= 8; k += 7)
            printf("hf_sample_tokens_per_s shape=%s weights=bf16 threads=%d prompt=1024 streams=%d "
                   "value=%.1f\n",
                   s->name, th, k, decode_rate(&m, INFER_WEIGHTS_BF16, k, th, k > 1 ? 8 : 16, 1024));
    model_free(&m);
    long rss = in_child("sft", dir, (int)(s - shapes));
    printf("hf_sft_peak_rss_mib shape=%s value=%ld\n", s->name, rss);
    rss = in_child("ppo", dir, (int)(s - shapes));
    printf("hf_ppo_peak_rss_mib shape=%s models=policy,ref critic=head value=%ld\n", s->name, rss);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_hf: could not remove %s\n", dir);
}

int main(int argc, char **argv) {
    if (argc == 4) { /* a child of in_child */
        const Shape *s = &shapes[atoi(argv[3])];
        if (strcmp(argv[1], "sft") == 0) sft_child(argv[2], s);
        else ppo_child(argv[2], s);
        return 0;
    }
    double bw1 = bench_read_bandwidth(1), bw2 = bench_read_bandwidth(2);
    printf("memory_read_gb_per_s threads=1 value=%.1f\n", bw1);
    printf("memory_read_gb_per_s threads=2 value=%.1f\n", bw2);
    int quick = getenv("RLHF_BENCH_QUICK") && atoi(getenv("RLHF_BENCH_QUICK"));
    int n = quick ? 1 : (int)(sizeof shapes / sizeof shapes[0]);
    for (int i = 0; i < n; i++) bench_shape(&shapes[i], bw1, bw2);
    return 0;
}
