/* rlhf pretrain: next-token training of the embedded model on text files.
 * Tokenizes the corpus (documents split at blank lines, each with BOS), holds
 * out its tail for validation, trains with AdamW + warm-up/cosine, and writes
 * resumable checkpoints atomically (optimizer state, step, RNG and corpus
 * fingerprint ride in the checkpoint), so `kill -9` and a rerun with --resume
 * continue from the last one. With a database the run, its loss curve and the
 * model are recorded in runs/metrics/models. Under mpirun every rank draws the
 * same windows and trains on its slice of each batch; the gradients are summed
 * over ranks and rank 0 alone writes the checkpoint and the store. */
#include "cli/cli.h"
#include "db/registry.h"
#include "model/checkpoint.h"
#include "model/dist.h"
#include "model/loss.h"
#include "model/model.h"
#include "model/optim.h"
#include "model/tokenizer.h"
#include "util/progress.h"
#include "util/rng.h"
#include "util/sys.h"
#include "util/text.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int exec_pretrain(int argc, char **argv);

const struct cmd_entry cmd_pretrain_entry = {
    "pretrain",
    "--corpus FILE... --tokenizer TOK --config NAME --steps N --out CKPT [--resume]",
    "train the embedded model on text (next-token loss), resumably",
    "  --corpus FILE    training text (repeatable; more files may follow the options).\n"
    "                   Blank lines separate documents: <s> document </s>.\n"
    "  --tokenizer TOK  tokenizer.bin (from `rlhf tokenizer train`); embedded in CKPT\n"
    "  --config NAME    tiny | demo | 15m (default tiny); the vocabulary is the tokenizer's\n"
    "  --dim N --layers N --heads N --kv-heads N --hidden N --seq N   override the config\n"
    "  --steps N        optimizer steps in total (default 100; on --resume, the new total)\n"
    "  --batch B        sequences per micro-batch (default 8)\n"
    "  --accum K        micro-batches per step, gradients accumulated (default 1)\n"
    "  --lr X           peak learning rate (default 1e-3)   --min-lr X (default lr/10)\n"
    "  --warmup N       warm-up steps (default steps/20)    --weight-decay X (default 0.1)\n"
    "  --clip X         gradient clipping by global norm (default 1; 0: off)\n"
    "  --out CKPT       checkpoint to write (our format, with optimizer state)\n"
    "  --resume         continue from CKPT if it exists (else start fresh)\n"
    "  --force          overwrite an existing CKPT instead of refusing\n"
    "  --eval-every N   validation loss every N steps (default steps/10)\n"
    "  --save-every N   checkpoint every N steps (default: as --eval-every)\n"
    "  --val-frac F     share of the corpus held out for validation (default 0.05)\n"
    "  --seed S         initialisation and data order (default 1)\n"
    "  --threads N      BLAS threads (default: OpenBLAS's choice)\n"
    "  --name NAME      model name in the registry (default: CKPT's file name)\n" CLI_HELP_COMMON,
    exec_pretrain};

static const struct cmd_entry *E = &cmd_pretrain_entry;

/* What a checkpoint carries besides weights and AdamW moments (the opaque
 * "extra" bytes of model_ckpt_save). Fixed layout; version bumps on change. */
typedef struct TrainState {
    char magic[8];
    uint32_t version, batch;
    int64_t step, tokens_seen, run_id, n_tokens;
    uint64_t rng[4];
    char data_sha[65];
    char pad[7];
    double last_val;
} TrainState;
#define TS_MAGIC "PRETRAIN"

typedef struct Opts {
    const char **corpus;
    int n_corpus;
    const char *tok_path, *config, *out, *name, *dbflag;
    long over[7]; /* dim layers heads kv hidden seq, unused 0 */
    long steps, batch, accum, warmup, eval_every, save_every, seed, threads;
    double lr, min_lr, wd, clip, val_frac;
    int resume, force;
} Opts;

/* ---- the corpus as one token stream ------------------------------------ */

typedef struct Data {
    int *tok;
    int64_t n, n_train; /* train: [0, n_train), validation: [n_train, n) */
    char sha[65];
} Data;

static int load_corpus(const Opts *o, const Tokenizer *t, Data *d, Err *err) {
    memset(d, 0, sizeof *d);
    int64_t cap = 1 << 16;
    d->tok = malloc((size_t)cap * sizeof(int));
    if (!d->tok) return err_set(err, RLHF_ENOMEM, "out of memory");
    for (int f = 0; f < o->n_corpus; f++) {
        char *text;
        size_t len;
        int rc = sys_read_file(o->corpus[f], &text, &len, err);
        if (rc) return rc;
        /* documents are separated by blank lines */
        size_t i = 0;
        while (i < len) {
            while (i < len && (text[i] == '\n' || text[i] == '\r')) i++;
            if (i >= len) break;
            size_t j = i;
            while (j < len && !(text[j] == '\n' && j + 1 < len && (text[j + 1] == '\n' ||
                                                                     (text[j + 1] == '\r' && j + 2 < len && text[j + 2] == '\n'))))
                j++;
            size_t dl = j - i;
            if (dl > INT_MAX / 2) {
                free(text);
                return err_set(err, RLHF_EINVAL, "%s: a document over 1 GiB", o->corpus[f]);
            }
            int need = tok_encode_cap(dl);
            while (d->n + need > cap) {
                int *p = realloc(d->tok, (size_t)cap * 2 * sizeof(int));
                if (!p) {
                    free(text);
                    return err_set(err, RLHF_ENOMEM, "out of memory for the token stream");
                }
                d->tok = p;
                cap *= 2;
            }
            int got;
            rc = tok_encode(t, text + i, dl, 1, 1, d->tok + d->n, need, &got, err);
            if (rc) {
                free(text);
                return err_prefix(err, "%s: ", o->corpus[f]), rc;
            }
            d->n += got;
            i = j;
        }
        free(text);
    }
    sha256_hex(d->tok, (size_t)d->n * sizeof(int), d->sha);
    return RLHF_OK;
}

/* ---- the run ------------------------------------------------------------ */

typedef struct Run {
    const Opts *o;
    Model m;
    RunState rs;
    AdamW opt;
    TrainState ts;
    Data data;
    Rng rng;
    Db *db;
    int B, T;
    int *xbuf, *ybuf;
    MetricBuf metrics; /* not yet in the database: flushed before each checkpoint */
    int metrics_warned;
} Run;

static void metric(Run *r, int64_t step, const char *name, double v) {
    if (r->db) db_metricbuf_add(&r->metrics, step, name, v);
}

static int flush_metrics(Run *r, Err *err) {
    return db_metricbuf_flush(r->db, r->ts.run_id, &r->metrics, err);
}

static int write_ckpt(void *ctx, Err *err) {
    Run *r = ctx;
    memcpy(r->ts.rng, r->rng.s, sizeof r->ts.rng);
    return model_ckpt_save(r->o->out, &r->m, &r->opt, &r->ts, sizeof r->ts, err);
}

/* final: the run's last save (see cli_save_checkpoint) */
static int save(Run *r, int final, Err *err) {
    if (dist_rank() != 0) return RLHF_OK;
    return cli_save_checkpoint("pretrain", r->db, r->ts.run_id, &r->metrics, final,
                               &r->metrics_warned, write_ckpt, r, err);
}

/* Mean loss over up to 8 batches of consecutive windows of the held-out tail. */
static int eval_val(Run *r, double *out, Err *err) {
    int64_t vn = r->data.n - r->data.n_train;
    int T = r->T;
    if (vn < 2) return *out = NAN, RLHF_OK;
    if (vn < T + 1) T = (int)(vn - 1);
    int64_t windows = (vn - 1) / T;
    if (windows > 8L * r->B) windows = 8L * r->B;
    double total = 0, count = 0;
    for (int64_t w0 = 0; w0 < windows; w0 += r->B) {
        int b = (int)(windows - w0 < r->B ? windows - w0 : r->B);
        for (int i = 0; i < b; i++) {
            const int *src = r->data.tok + r->data.n_train + (w0 + i) * T;
            memcpy(r->xbuf + i * T, src, T * sizeof(int));
            memcpy(r->ybuf + i * T, src + 1, T * sizeof(int));
        }
        LossHeadCe ce = {.targets = r->ybuf};
        int rc = model_forward(&r->m, &r->rs, r->xbuf, b, T, 0, err);
        if (!rc) rc = model_head(&r->m, &r->rs, 0, loss_head_ce, &ce, err);
        if (rc) return rc;
        total += ce.total;
        count += ce.count;
    }
    *out = total / count;
    return RLHF_OK;
}

/* One optimizer step over accum micro-batches of random windows. Every rank
 * draws all B windows (the same RNG stream) and keeps rows [lo, hi); the loss
 * is scaled by the global count, so the summed gradients are one process's.
 * stop: in, this rank was interrupted; out, some rank was. */
static int train_step(Run *r, float lr, double *loss, double *gnorm, int *stop, Err *err) {
    const Opts *o = r->o;
    int B = r->B, T = r->T, N = B * T, lo, hi;
    dist_slice(B, &lo, &hi);
    int nb = hi - lo;
    model_zero_grad(&r->m);
    double total = 0;
    for (long a = 0; a < o->accum; a++) {
        for (int b = 0; b < B; b++) {
            int64_t off = (int64_t)rng_below(&r->rng, (uint64_t)(r->data.n_train - T));
            if (b < lo || b >= hi) continue;
            memcpy(r->xbuf + (b - lo) * T, r->data.tok + off, T * sizeof(int));
            memcpy(r->ybuf + (b - lo) * T, r->data.tok + off + 1, T * sizeof(int));
        }
        LossHeadCe ce = {.targets = r->ybuf, .scale = 1.0f / (N * (float)o->accum), .grad = 1};
        int rc = model_forward(&r->m, &r->rs, r->xbuf, nb, T, 0, err);
        if (!rc) rc = model_head(&r->m, &r->rs, 1, loss_head_ce, &ce, err);
        if (!rc) rc = model_backward(&r->m, &r->rs, r->xbuf, NULL, NULL, NULL, err);
        if (rc) return rc;
        total += ce.total;
    }
    if (dist_size() > 1) {
        double red[2] = {total, *stop};
        if (dist_allreduce_sum(r->m.grads, r->m.n_params) || dist_allreduce_double(red, 2))
            return err_set(err, RLHF_EIO, "MPI all-reduce failed");
        total = red[0];
        *stop = red[1] > 0;
        if (*stop) dist_note_agreed_stop();
    }
    *gnorm = model_grad_clip(&r->m, o->clip);
    adamw_step(&r->opt, &r->m, lr);
    r->ts.tokens_seen += (int64_t)N * o->accum;
    *loss = total / ((double)N * o->accum);
    return RLHF_OK;
}

static int build_config(const Opts *o, int vocab, Config *c, Err *err) {
    int rc = model_config_named(o->config, c, err);
    if (rc) return rc;
    int *f[6] = {&c->dim, &c->n_layers, &c->n_heads, &c->n_kv_heads, &c->hidden_dim, &c->seq_len};
    for (int i = 0; i < 6; i++)
        if (o->over[i]) *f[i] = (int)o->over[i];
    /* --heads alone on a config with kv == heads keeps plain multi-head attention */
    if (o->over[2] && !o->over[3] && c->n_kv_heads > c->n_heads) c->n_kv_heads = c->n_heads;
    c->vocab_size = vocab;
    return model_config_validate(c, err);
}

static int parse(int argc, char **argv, Opts *o) {
    static const struct option opts[] = {
        CLI_OPT_DB, CLI_OPT_HELP,
        {"corpus", required_argument, NULL, 'C'}, {"tokenizer", required_argument, NULL, 'k'},
        {"config", required_argument, NULL, 'c'}, {"dim", required_argument, NULL, 1},
        {"layers", required_argument, NULL, 2}, {"heads", required_argument, NULL, 3},
        {"kv-heads", required_argument, NULL, 4}, {"hidden", required_argument, NULL, 5},
        {"seq", required_argument, NULL, 6}, {"steps", required_argument, NULL, 's'},
        {"batch", required_argument, NULL, 'b'}, {"accum", required_argument, NULL, 'a'},
        {"lr", required_argument, NULL, 'l'}, {"min-lr", required_argument, NULL, 'L'},
        {"warmup", required_argument, NULL, 'w'}, {"weight-decay", required_argument, NULL, 'W'},
        {"clip", required_argument, NULL, 'g'}, {"out", required_argument, NULL, 'o'},
        {"resume", no_argument, NULL, 'r'}, {"force", no_argument, NULL, 'f'},
        {"eval-every", required_argument, NULL, 'e'}, {"save-every", required_argument, NULL, 'S'},
        {"val-frac", required_argument, NULL, 'v'}, {"seed", required_argument, NULL, 'x'},
        {"threads", required_argument, NULL, 't'}, {"name", required_argument, NULL, 'n'},
        CLI_OPT_END};
    static const char *names[] = {"", "--dim", "--layers", "--heads", "--kv-heads", "--hidden", "--seq"};
    static const long maxv[] = {0, 65536, 1024, 4096, 4096, 262144, 1 << 20};
    o->config = "tiny";
    o->steps = 100, o->batch = 8, o->accum = 1, o->warmup = -1, o->eval_every = 0;
    o->save_every = 0, o->seed = 1, o->threads = 0;
    o->lr = 1e-3, o->min_lr = -1, o->wd = 0.1, o->clip = 1.0, o->val_frac = 0.05;
    o->corpus = calloc((size_t)argc + 1, sizeof(char *));
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'D': o->dbflag = optarg; break;
        case 'C': o->corpus[o->n_corpus++] = optarg; break;
        case 'k': o->tok_path = optarg; break;
        case 'c': o->config = optarg; break;
        case 1: case 2: case 3: case 4: case 5: case 6:
            if (cli_parse_long(E, names[c], optarg, 1, maxv[c], &o->over[c - 1])) return EXIT_USAGE;
            break;
        case 's': if (cli_parse_long(E, "--steps", optarg, 1, 1L << 40, &o->steps)) return EXIT_USAGE; break;
        case 'b': if (cli_parse_long(E, "--batch", optarg, 1, 1 << 16, &o->batch)) return EXIT_USAGE; break;
        case 'a': if (cli_parse_long(E, "--accum", optarg, 1, 1 << 16, &o->accum)) return EXIT_USAGE; break;
        case 'l': if (cli_parse_double(E, "--lr", optarg, 0, 10, &o->lr)) return EXIT_USAGE; break;
        case 'L': if (cli_parse_double(E, "--min-lr", optarg, 0, 10, &o->min_lr)) return EXIT_USAGE; break;
        case 'w': if (cli_parse_long(E, "--warmup", optarg, 0, 1L << 40, &o->warmup)) return EXIT_USAGE; break;
        case 'W': if (cli_parse_double(E, "--weight-decay", optarg, 0, 10, &o->wd)) return EXIT_USAGE; break;
        case 'g': if (cli_parse_double(E, "--clip", optarg, 0, 1e9, &o->clip)) return EXIT_USAGE; break;
        case 'o': o->out = optarg; break;
        case 'r': o->resume = 1; break;
        case 'f': o->force = 1; break;
        case 'e': if (cli_parse_long(E, "--eval-every", optarg, 1, 1L << 40, &o->eval_every)) return EXIT_USAGE; break;
        case 'S': if (cli_parse_long(E, "--save-every", optarg, 1, 1L << 40, &o->save_every)) return EXIT_USAGE; break;
        case 'v': if (cli_parse_double(E, "--val-frac", optarg, 0, 0.5, &o->val_frac)) return EXIT_USAGE; break;
        case 'x': if (cli_parse_long(E, "--seed", optarg, 0, LONG_MAX, &o->seed)) return EXIT_USAGE; break;
        case 't': if (cli_parse_long(E, "--threads", optarg, 1, 256, &o->threads)) return EXIT_USAGE; break;
        case 'n': o->name = optarg; break;
        case 'h': return cli_help(E);
        default: return cli_bad_option(E, argv, c);
        }
    }
    while (optind < argc) o->corpus[o->n_corpus++] = argv[optind++];
    if (!o->n_corpus) return cli_usage_error(E, "no corpus given (--corpus FILE)");
    if (!o->tok_path) return cli_usage_error(E, "--tokenizer TOK is required");
    if (!o->out) return cli_usage_error(E, "--out CKPT is required");
    Config tmp;
    Err err = {0};
    if (model_config_named(o->config, &tmp, &err)) return cli_usage_error(E, "--config: %s", err.msg);
    /* the shape flags must make a valid model whatever the vocabulary */
    if (build_config(o, 256, &tmp, &err)) return cli_usage_error(E, "%s", err.msg);
    if (o->resume && o->force) return cli_usage_error(E, "--resume and --force contradict each other");
    if (o->min_lr < 0) o->min_lr = o->lr / 10;
    if (o->warmup < 0) o->warmup = o->steps / 20;
    if (!o->eval_every) o->eval_every = o->steps / 10 > 0 ? o->steps / 10 : 1;
    if (!o->save_every) o->save_every = o->eval_every;
    return -1; /* go on */
}

static void run_free(Run *r) {
    free(r->data.tok);
    free(r->xbuf);
    free(r->ybuf);
    db_metricbuf_free(&r->metrics);
    adamw_free(&r->opt);
    model_runstate_free(&r->rs);
    model_free(&r->m);
    if (r->db) db_close(r->db);
}

/* Registers the checkpoint in the models table and closes the run. */
static int record_end(Run *r, const char *status, double val, Err *err) {
    if (!r->db) return RLHF_OK;
    int rc = flush_metrics(r, err);
    if (rc) return rc;
    char note[128];
    snprintf(note, sizeof note, "step %lld, val loss %.4f", (long long)r->ts.step, val);
    return cli_register_checkpoint(r->db, r->o->out, r->o->name, "base", 0, &r->m.cfg, NULL,
                                   r->ts.run_id, status, note, NULL, err);
}

static int exec_pretrain(int argc, char **argv) {
    Opts o;
    memset(&o, 0, sizeof o);
    int rc = parse(argc, argv, &o);
    if (rc >= 0) {
        free(o.corpus);
        return rc;
    }
    Err err = {0};
    Run r;
    memset(&r, 0, sizeof r);
    r.o = &o;
    Tokenizer *tok = NULL;
    const char *path = cli_db_path(o.dbflag);
    if (o.threads) openblas_set_num_threads((int)o.threads);
    if (dist_rank() == 0) atomic_remove_stale(o.out);
    int exists = access(o.out, F_OK) == 0;
    if (exists && !o.resume && !o.force) {
        fprintf(stderr, "rlhf pretrain: %s exists; pass --resume to continue it or --force to start over\n", o.out);
        free(o.corpus);
        return EXIT_FAIL;
    }
    if (dist_size() > o.batch) {
        rc = err_set(&err, RLHF_EINVAL, "--batch %ld is smaller than the %d MPI ranks", o.batch, dist_size());
        goto fail;
    }
    if (dist_rank() != 0) path = NULL; /* rank 0 alone writes the store */
    if (path && (rc = db_open(path, DB_OPEN_EXISTING, &r.db, &err))) goto fail;
    if ((rc = tok_load(o.tok_path, &tok, &err))) goto fail;
    if ((rc = load_corpus(&o, tok, &r.data, &err))) goto fail;
    Config cfg;
    if ((rc = build_config(&o, tok_vocab_size(tok), &cfg, &err))) goto fail;
    int resumed = 0;
    if (o.resume && exists) {
        void *extra = NULL;
        size_t xl = 0;
        if ((rc = model_ckpt_load(o.out, &r.m, &r.opt, &extra, &xl, &err))) goto fail;
        if (xl != sizeof r.ts || memcmp(extra, TS_MAGIC, 8) != 0 || r.opt.n != r.m.n_params) {
            free(extra);
            rc = err_set(&err, RLHF_EFORMAT, "%s: not a pretraining checkpoint (no training state to resume)", o.out);
            goto fail;
        }
        memcpy(&r.ts, extra, sizeof r.ts);
        free(extra);
        if (memcmp(&r.m.cfg, &cfg, sizeof cfg) != 0) {
            char a[512], b[512];
            model_config_json(&r.m.cfg, a, sizeof a);
            model_config_json(&cfg, b, sizeof b);
            rc = err_set(&err, RLHF_EINVAL, "%s: its config %s does not match the requested %s", o.out, a, b);
            goto fail;
        }
        if (r.ts.n_tokens != r.data.n || strcmp(r.ts.data_sha, r.data.sha) != 0) {
            rc = err_set(&err, RLHF_EINVAL,
                         "%s: the corpus or tokenizer changed since this checkpoint (%lld tokens then, %lld now)",
                         o.out, (long long)r.ts.n_tokens, (long long)r.data.n);
            goto fail;
        }
        memcpy(r.rng.s, r.ts.rng, sizeof r.rng.s);
        resumed = 1;
    } else {
        if ((rc = model_create(&r.m, &cfg, 0, &err))) goto fail;
        model_init_random(&r.m, (uint64_t)o.seed);
        if ((rc = adamw_create(&r.opt, r.m.n_params, &err))) goto fail;
        memcpy(r.ts.magic, TS_MAGIC, 8);
        r.ts.version = 1;
        r.ts.n_tokens = r.data.n;
        memcpy(r.ts.data_sha, r.data.sha, sizeof r.ts.data_sha);
        r.ts.last_val = NAN;
        rng_seed(&r.rng, (uint64_t)o.seed ^ 0x9e3779b97f4a7c15ULL);
    }
    r.opt.weight_decay = (float)o.wd;
    r.ts.batch = (uint32_t)o.batch;
    unsigned char *tb;
    size_t tl;
    if ((rc = tok_to_bytes(tok, &tb, &tl, &err))) goto fail;
    rc = model_set_tokenizer(&r.m, tb, tl, &err);
    free(tb);
    if (rc || (rc = model_grads_alloc(&r.m, &err))) goto fail;
    r.B = (int)o.batch;
    r.T = cfg.seq_len;
    r.data.n_train = r.data.n - (int64_t)(o.val_frac * (double)r.data.n);
    if (r.data.n_train < r.T + 2) {
        rc = err_set(&err, RLHF_EINVAL,
                     "the corpus has %lld tokens (%lld for training): too few for sequences of %d; "
                     "give more text or a smaller --seq",
                     (long long)r.data.n, (long long)r.data.n_train, r.T);
        goto fail;
    }
    if ((rc = model_runstate_create(&r.rs, &cfg, r.B, r.T, &err))) goto fail;
    r.xbuf = malloc((size_t)r.B * r.T * sizeof(int));
    r.ybuf = malloc((size_t)r.B * r.T * sizeof(int));
    if (!r.xbuf || !r.ybuf) {
        rc = err_set(&err, RLHF_ENOMEM, "out of memory");
        goto fail;
    }
    if (r.db && !(resumed && r.ts.run_id > 0)) {
        char cj[1024], cfgj[512];
        model_config_json(&cfg, cfgj, sizeof cfgj);
        snprintf(cj, sizeof cj,
                 "{\"model\":%s,\"steps\":%ld,\"batch\":%ld,\"accum\":%ld,\"lr\":%g,\"min_lr\":%g,"
                 "\"warmup\":%ld,\"weight_decay\":%g,\"clip\":%g,\"seed\":%ld,\"tokens\":%lld}",
                 cfgj, o.steps, o.batch, o.accum, o.lr, o.min_lr, o.warmup, o.wd, o.clip, o.seed,
                 (long long)r.data.n);
        if ((rc = db_run_start(r.db, "pretrain", cj, 0, &r.ts.run_id, &err))) goto fail;
    } else if (r.db && (rc = db_run_resumed(r.db, r.ts.run_id, &err)))
        goto fail;
    if (dist_rank() == 0)
    fprintf(stderr,
            "pretrain: %zu parameters (dim %d, layers %d, heads %d/%d kv, hidden %d, vocab %d, seq %d); "
            "corpus %lld tokens (%lld held out)\n",
            r.m.n_params, cfg.dim, cfg.n_layers, cfg.n_heads,
            cfg.n_kv_heads, cfg.hidden_dim, cfg.vocab_size, cfg.seq_len, (long long)r.data.n,
            (long long)(r.data.n - r.data.n_train));
    if (resumed && dist_rank() == 0) fprintf(stderr, "pretrain: resumed %s at step %lld\n", o.out, (long long)r.ts.step);
    sys_catch_interrupts();
    Progress pg;
    progress_start(&pg, "pretrain", "steps", o.steps, 0);
    if (dist_rank() != 0) pg.enabled = 0;
    double loss = NAN, val = r.ts.last_val, t0 = now_seconds();
    int64_t tok0 = r.ts.tokens_seen, step0 = r.ts.step;
    char extra[160];
    int stopped = 0;
    while (r.ts.step < o.steps && !stopped) {
        float lr = lr_schedule(r.ts.step, o.warmup, o.steps, (float)o.lr, (float)o.min_lr);
        double gn = 0;
        stopped = sys_interrupted();
        if (dist_size() == 1 && stopped) break;
        if ((rc = train_step(&r, lr, &loss, &gn, &stopped, &err))) goto fail;
        if (!isfinite(loss)) {
            rc = err_set(&err, RLHF_EINVAL, "loss became %g at step %lld; try a lower --lr", loss,
                         (long long)r.ts.step + 1);
            goto fail;
        }
        r.ts.step++;
        metric(&r, r.ts.step, "train_loss", loss);
        metric(&r, r.ts.step, "lr", lr);
        metric(&r, r.ts.step, "grad_norm", gn);
        double tps = (double)(r.ts.tokens_seen - tok0) / (now_seconds() - t0 + 1e-9);
        if ((r.ts.step % o.eval_every == 0 || r.ts.step == o.steps) && dist_rank() == 0) {
            if ((rc = eval_val(&r, &val, &err))) goto fail;
            r.ts.last_val = val;
            metric(&r, r.ts.step, "val_loss", val);
            metric(&r, r.ts.step, "tokens_per_s", tps);
            if (!pg.enabled && dist_rank() == 0)
                fprintf(stderr, "step %lld/%ld: loss %.4f, val loss %.4f, lr %.2e, %.0f tokens/s\n",
                        (long long)r.ts.step, o.steps, loss, val, lr, tps);
        }
        if (r.ts.step % o.save_every == 0 || r.ts.step == o.steps)
            if ((rc = save(&r, r.ts.step == o.steps, &err))) goto fail;
        snprintf(extra, sizeof extra, "loss %.4f  val %.4f  lr %.1e  %.0f tok/s", loss, val, lr, tps);
        progress_update(&pg, r.ts.step, extra);
    }
    progress_finish(&pg, NULL);
    stopped = stopped || sys_interrupted();
    if (dist_size() > 1 && dist_rank() == 0 && r.ts.step > step0)
        fprintf(stderr, "pretrain: %d ranks; all-reduce of %zu floats: %.2f ms per step\n", dist_size(),
                r.m.n_params, 1e3 * dist_allreduce_seconds() / (double)(r.ts.step - step0));
    if (stopped || r.ts.step == 0 || (r.ts.step % o.save_every && r.ts.step != o.steps))
        if ((rc = save(&r, 1, &err))) goto fail;
    if ((rc = record_end(&r, stopped ? "interrupted" : "done", val, &err))) goto fail;
    if (stopped && dist_rank() == 0) {
        fprintf(stderr, "pretrain: interrupted at step %lld; checkpoint saved to %s (rerun with --resume)\n",
                (long long)r.ts.step, o.out);
    } else if (isnan(loss)) {
        /* a resumed run that had nothing left to do */
        printf("already trained %lld steps: val loss %.4f; %s is up to date\n", (long long)r.ts.step,
               val, o.out);
    } else {
        printf("trained %lld steps: train loss %.4f, val loss %.4f; wrote %s\n", (long long)r.ts.step,
               loss, val, o.out);
    }
    tok_free(tok);
    run_free(&r);
    free(o.corpus);
    return stopped ? EXIT_FAIL : EXIT_OK;
fail:
    if (r.db && r.ts.run_id > 0) {
        Err e2 = {0};
        db_run_finish(r.db, r.ts.run_id, "failed", 0, err.msg, &e2);
    }
    tok_free(tok);
    run_free(&r);
    free(o.corpus);
    return cli_fail(E, &err);
}
