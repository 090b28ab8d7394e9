/* bench_lora: LoRA (rank 16, alpha 32, every projection: q,k,v,o,gate,up,down)
 * against full fine-tuning on random models of the demo, 15m and
 * Qwen2.5-0.5B shapes: SFT and DPO training tokens/s, the time of one PPO step
 * with its four models (policy with value head, reference, reward model),
 * and the peak RSS of each, every configuration in a process of its own so
 * that the peak is its own. With LoRA the reference is the base with the
 * adapter off and the RM an adapter and head on the same base (views, no
 * copies); full fine-tuning holds a reference and an RM of their own. The PPO
 * lines also give the peak over the bytes of the base weights alone.
 * RLHF_BENCH_QUICK=1 leaves out the 0.5B shape; RLHF_BENCH_LORA=SHAPE:TASK:TRAIN
 * (qwen2.5-0.5b:ppo:lora) runs one configuration; RLHF_BENCH_RSS=1 also says
 * on stderr the PPO child's RSS after each stage (models, RM, init, step). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_tok.h"
#include "model/infer.h"
#include "model/lora.h"
#include "rl/dpo.h"
#include "rl/ppo.h"
#include "rl/sft.h"
#include "rm/rm_score.h"
#include "util/progress.h"
#include "util/rng.h"

typedef struct Shape {
    const char *name;
    Config c;
    int B, T, steps; /* training batch B×T tokens, timed steps after one warm-up */
} Shape;

static const LoraConfig LORA = {16, 32, 0, LORA_ALL};

static void die(const char *what, const Err *err) {
    fprintf(stderr, "bench_lora: %s: %s\n", what, err->msg);
    exit(1);
}

static void rand_ids(Rng *r, int *ids, int n, int V) {
    for (int i = 0; i < n; i++) ids[i] = 3 + (int)rng_below(r, (uint64_t)V - 3);
}

/* The model trained: random weights, with an adapter when lora. */
static void make_model(Model *m, const Shape *s, int heads, int lora) {
    Err err = {0};
    if (model_create(m, &s->c, heads, &err)) die(s->name, &err);
    model_init_random(m, 1);
    if (lora && model_lora_attach(m, &LORA, 1, "base", NULL, &err)) die("lora", &err);
    if (model_grads_alloc(m, &err)) die("grads", &err);
}

/* Examples of a short prompt and an answer filling the rest of T. */
static SeqExample *examples(const Shape *s, int n) {
    SeqExample *ex = calloc((size_t)n, sizeof *ex);
    Rng r;
    rng_seed(&r, 5);
    int P = 8, *p = malloc(sizeof(int) * (size_t)s->T), *a = malloc(sizeof(int) * (size_t)s->T);
    Err err = {0};
    for (int i = 0; i < n; i++) {
        rand_ids(&r, p, P, s->c.vocab_size);
        rand_ids(&r, a, s->T - P, s->c.vocab_size);
        if (seq_join(p, P, a, s->T - P, s->c.seq_len, &ex[i], &err)) die("examples", &err);
    }
    free(p), free(a);
    return ex;
}

static void sft_child(const Shape *s, int lora) {
    Err err = {0};
    Model m;
    AdamW o;
    SftTrainer tr;
    make_model(&m, s, 0, lora);
    if (adamw_create(&o, model_train_n(&m), &err) || sft_trainer_init(&tr, &m, &o, s->B, 1, &err))
        die("sft", &err);
    SftSet set = {0};
    set.n = 2 * s->B;
    set.ex = examples(s, set.n);
    set.lens = calloc((size_t)set.n, sizeof(int));
    int idx[64];
    double loss, gn, t0 = 0;
    int64_t toks = 0, t;
    for (int st = 0; st <= s->steps; st++) {
        if (st == 1) t0 = now_seconds(), toks = 0;
        for (int i = 0; i < s->B; i++) idx[i] = (st * s->B + i) % set.n;
        if (sft_step(&tr, &set, idx, s->B, 1e-5f, &loss, &gn, &t, &err)) die("sft step", &err);
        toks += (int64_t)s->B * s->T;
    }
    printf("lora_sft_tokens_per_s shape=%s batch=%dx%d train=%s value=%.1f\n", s->name, s->B, s->T,
           lora ? "lora16-all" : "full", toks / (now_seconds() - t0));
    fflush(stdout);
}

static void dpo_child(const Shape *s, int lora) {
    Err err = {0};
    Model m;
    AdamW o;
    DpoTrainer tr;
    make_model(&m, s, 0, lora);
    int G = s->B; /* pairs per step: 2·G sequences of T */
    if (adamw_create(&o, model_train_n(&m), &err) ||
        dpo_trainer_init(&tr, &m, &o, G, 2, DPO_SIGMOID, 0.1, 0, 1, &err))
        die("dpo", &err);
    DpoSet set = {0};
    int ng = 2 * G;
    set.ex = examples(s, 2 * ng);
    set.chosen = malloc(sizeof(int) * (size_t)ng), set.rejected = malloc(sizeof(int) * (size_t)ng);
    set.lens = malloc(sizeof(int) * (size_t)ng);
    set.ex_start = malloc(sizeof(int) * (size_t)(ng + 1));
    set.pair_start = malloc(sizeof(int) * (size_t)(ng + 1));
    for (int g = 0; g < ng; g++) {
        set.ex_start[g] = 2 * g, set.pair_start[g] = g, set.lens[g] = s->T;
        set.chosen[g] = 2 * g, set.rejected[g] = 2 * g + 1;
    }
    set.ex_start[ng] = 2 * ng, set.pair_start[ng] = ng;
    set.n_ex = 2 * ng, set.n_pairs = ng, set.n_groups = ng, set.max_k = 2;
    if (dpo_reference(&tr, &set, &err)) die("dpo reference", &err);
    int idx[64];
    DpoStats st;
    double gn, t0 = 0;
    int64_t toks = 0;
    for (int k = 0; k <= s->steps; k++) {
        if (k == 1) t0 = now_seconds(), toks = 0;
        for (int i = 0; i < G; i++) idx[i] = (k * G + i) % ng;
        if (dpo_step(&tr, &set, idx, G, 1e-5f, &st, &gn, &err)) die("dpo step", &err);
        toks += (int64_t)2 * G * s->T;
    }
    printf("lora_dpo_tokens_per_s shape=%s pairs=%d len=%d train=%s value=%.1f\n", s->name, G, s->T,
           lora ? "lora16-all" : "full", toks / (now_seconds() - t0));
    fflush(stdout);
}

typedef struct Rm {
    Model m;
    RunState rs;
    int *tokens, lens[8];
} Rm;

static int rm_reward(void *ctx, const SeqExample *ex, const SampleResult *res, int n, float *scores,
                     Err *err) {
    Rm *rm = ctx;
    (void)res;
    return rm_score_model(&rm->m, &rm->rs, rm->tokens, rm->lens, 4, ex, n, scores, err);
}

static void rss(const char *at) {
    if (!getenv("RLHF_BENCH_RSS")) return;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS", 5) || !strncmp(line, "VmHWM", 5)) fprintf(stderr, "%s %s", at, line);
    if (f) fclose(f);
}

/* One PPO step: 2 prompts × 2 answers × 32 new tokens, one epoch, value head. */
static void ppo_child(const Shape *s, int lora) {
    Err err = {0};
    Model pol, ref;
    Rm rm = {0};
    make_model(&pol, s, 0, lora);
    rss("model");
    if (lora) {
        Lora *lo = calloc(1, sizeof *lo);
        if (model_set_heads(&pol, MODEL_HEAD_VALUE, &err) || model_view(&ref, &pol, NULL, 0, &err) ||
            lora_create(lo, &LORA, &s->c, 2, &err) ||
            model_view(&rm.m, &pol, lo, MODEL_HEAD_REWARD, &err))
            die("lora views", &err);
    } else {
        if (model_create(&ref, &s->c, 0, &err) || model_create(&rm.m, &s->c, MODEL_HEAD_REWARD, &err))
            die("models", &err);
        memcpy(ref.params, pol.params, sizeof(float) * pol.n_params);
        memcpy(rm.m.params, pol.params, sizeof(float) * pol.n_params);
    }
    for (int i = 0; i < s->c.dim; i++) rm.m.w.reward[i] = 0.01f * (float)((i % 5) - 2);
    int T = 24 + 32 + 1;
    rm.tokens = malloc(sizeof(int) * 4 * (size_t)s->c.seq_len);
    if (model_runstate_create(&rm.rs, &s->c, 4, T, &err)) die("rm", &err);
    Tokenizer *tok;
    if (bench_tokenizer(s->c.vocab_size, &tok, &err)) die("tokenizer", &err);
    rss("rm+tok");
    static PpoPrompt prompts[8];
    static int ids[8][24];
    Rng r;
    rng_seed(&r, 4);
    for (int i = 0; i < 8; i++) {
        rand_ids(&r, ids[i], 24, s->c.vocab_size);
        ids[i][0] = TOK_BOS;
        prompts[i].ids = ids[i], prompts[i].n = 24;
    }
    PpoConfig pc;
    ppo_config_default(&pc);
    pc.prompts = 2, pc.samples = 2, pc.max_new = 32, pc.epochs = 1, pc.minibatch = 4;
    pc.value_mode = PPO_VALUE_HEAD, pc.length_penalty = 0;
    Ppo p;
    if (ppo_init(&p, &pc, &pol, &ref, NULL, tok, prompts, 8, NULL, NULL, 0, 1, &err)) die("ppo", &err);
    PpoStats st;
    rss("init");
    double t0 = now_seconds();
    if (ppo_step(&p, rm_reward, &rm, &st, &err)) die("ppo step", &err);
    rss("step");
    double dt = now_seconds() - t0;
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    double base_mib = (double)pol.n_params * 4 / (1 << 20);
    const char *how = lora ? "lora16-all" : "full";
    printf("lora_ppo_step_s shape=%s prompts=2 answers=2 new=32 train=%s value=%.2f\n", s->name, how, dt);
    printf("lora_ppo_update_tokens_per_s shape=%s train=%s value=%.1f\n", s->name, how,
           st.update_tokens / st.t_update);
    printf("lora_ppo_peak_over_base shape=%s models=policy+value,ref,rm base_mib=%.0f train=%s "
           "value=%.2f\n",
           s->name, base_mib, how, (double)(u.ru_maxrss / 1024) / base_mib);
    fflush(stdout);
}

/* Runs fn in a child; prints the child's peak RSS. */
static int child(void (*fn)(const Shape *, int), const char *task, const Shape *s, int lora) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        infer_set_threads(2);
        fn(s, lora);
        _exit(0);
    }
    int status;
    struct rusage u;
    if (pid < 0 || wait4(pid, &status, 0, &u) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
        return 1;
    printf("lora_%s_peak_rss_mib shape=%s train=%s value=%ld\n", task, s->name,
           lora ? "lora16-all" : "full", u.ru_maxrss / 1024);
    return 0;
}

int main(void) {
    int quick = getenv("RLHF_BENCH_QUICK") != NULL, rc = 0;
    /* RLHF_BENCH_LORA=SHAPE:TASK:TRAIN runs one configuration (e.g. qwen2.5-0.5b:ppo:lora) */
    const char *one = getenv("RLHF_BENCH_LORA");
    Shape sh[3] = {{"demo", {0}, 8, 128, 6}, {"15m", {0}, 8, 128, 3}, {"qwen2.5-0.5b", {0}, 4, 128, 1}};
    Err err = {0};
    if (model_config_named("demo", &sh[0].c, &err) || model_config_named("15m", &sh[1].c, &err))
        die("config", &err);
    sh[0].c.vocab_size = sh[1].c.vocab_size = 512;
    sh[2].c = (Config){.dim = 896, .hidden_dim = 4864, .n_layers = 24, .n_heads = 14, .n_kv_heads = 2,
                       .vocab_size = 151936, .seq_len = 256, .shared_classifier = 1, .qkv_bias = 1,
                       .norm_eps = 1e-6f, .rope_theta = 1e6f};
    void (*fns[3])(const Shape *, int) = {sft_child, dpo_child, ppo_child};
    const char *tasks[3] = {"sft", "dpo", "ppo"};
    for (int i = 0; i < (quick && !one ? 2 : 3); i++)
        for (int lora = 1; lora >= 0; lora--)
            for (int k = 0; k < 3; k++) {
                char key[64];
                snprintf(key, sizeof key, "%s:%s:%s", sh[i].name, tasks[k], lora ? "lora" : "full");
                if (!one || !strcmp(one, key)) rc |= child(fns[k], tasks[k], &sh[i], lora);
            }
    return rc;
}
