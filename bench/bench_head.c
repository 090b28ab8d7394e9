/* Peak RSS and tokens/s of SFT steps on a model with a large vocabulary
 * (V = 151936 as Qwen's, dim 256, 2 layers, B = 4, T = 256): the LM head's
 * logits and the run state's capacity dominate memory at this shape. Each
 * case runs in a child process so ru_maxrss is that case's alone.
 * seq_len is the model's context (the run state's capacity); the batch is T. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/optim.h"
#include "model/parallel.h"
#include "rl/sft.h"
#include "util/progress.h"
#include "util/rng.h"

enum { B = 4, P = 64, A = 192, NEX = 8 };

static void die(const char *what, const Err *e) {
    fprintf(stderr, "bench_head: %s: %s\n", what, e->msg);
    exit(1);
}

static void sft_child(int seq_len) {
    Err err = {0};
    Config c = {.dim = 256, .hidden_dim = 768, .n_layers = 2, .n_heads = 4, .n_kv_heads = 4,
                .vocab_size = 151936, .seq_len = seq_len, .shared_classifier = 1};
    Model m;
    AdamW o;
    SftTrainer tr;
    if (model_create(&m, &c, 0, &err) || adamw_create(&o, m.n_params, &err)) die("model", &err);
    model_init_random(&m, 1);
    if (sft_trainer_init(&tr, &m, &o, B, 1, &err)) die("sft init", &err);
    SftSet set = {0};
    set.ex = calloc(NEX, sizeof *set.ex);
    set.lens = calloc(NEX, sizeof(int));
    Rng r;
    rng_seed(&r, 2);
    for (int i = 0; i < NEX; i++) {
        int p[P], a[A];
        for (int j = 0; j < P; j++) p[j] = (int)(rng_u64(&r) % (uint64_t)c.vocab_size);
        for (int j = 0; j < A; j++) a[j] = (int)(rng_u64(&r) % (uint64_t)c.vocab_size);
        if (seq_join(p, P, a, A, c.seq_len, &set.ex[i], &err)) die("seq", &err);
        set.lens[i] = set.ex[i].n;
    }
    set.n = NEX;
    int idx[B];
    double loss = 0, gn, t0 = 0;
    int64_t toks = 0, t;
    int steps = 2;
    for (int st = 0; st <= steps; st++) {
        if (st == 1) t0 = now_seconds(), toks = 0;
        for (int i = 0; i < B; i++) idx[i] = (st * B + i) % NEX;
        if (sft_step(&tr, &set, idx, B, 1e-5f, &loss, &gn, &t, &err)) die("sft step", &err);
        toks += (int64_t)B * (P + A);
    }
    printf("head_sft_tokens_per_s V=%d seq_len=%d batch=%dx%d value=%.1f loss=%.6f\n", c.vocab_size,
           seq_len, B, P + A, toks / (now_seconds() - t0), loss);
    fflush(stdout);
    _exit(0);
}

int main(void) {
    int lens[] = {256, 2048};
    for (int i = 0; i < 2; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) sft_child(lens[i]);
        int status;
        struct rusage u;
        long rss = -1;
        if (pid > 0 && wait4(pid, &status, 0, &u) == pid && WIFEXITED(status) && !WEXITSTATUS(status))
            rss = u.ru_maxrss / 1024;
        printf("head_sft_peak_rss_mib V=151936 seq_len=%d batch=%dx%d value=%ld\n", lens[i], B, P + A,
               rss);
    }
    return 0;
}
