/* rlhf gen: k candidate answers per prompt from the embedded model, into the store. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/sampling.h"
#include "util/text.h"
#include "db/registry.h"
#include "gen/best_of.h"
#include "gen/model_backend.h"
#include "rl/eval.h"
#include "util/sys.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static int exec_gen(int argc, char **argv);

const struct cmd_entry cmd_gen_entry = {
    "gen", "--model CKPT [-k K] [--split S | --ids I,J,...] [--best-of N --rm RM] [options]",
    "sample k candidate answers per prompt from a checkpoint into the project",
    "Fills only what is missing: a rerun, or a run after Ctrl-C or a kill, samples\n"
    "just the prompts that still lack k draws from this model (k distinct candidates\n"
    "with --unique). Identical answers are one candidate; every draw is recorded (so\n"
    "eval counts a repeated answer as often as it was drawn), with the token ids\n"
    "sampled. The same seed gives the same candidates, whatever the order or the\n"
    "interruptions, and the same ids as eval's answers with that seed.\n\n"
    "  --model CKPT      checkpoint (ours or llama2.c's); registered in the project\n"
    "  --tokenizer TOK   tokenizer.bin (default: the one inside the checkpoint)\n"
    "  --name NAME       the model's name in the registry (default: CKPT's file name;\n"
    "                    with --best-of, the best-of model's: default \"<policy>+boN\")\n"
    "  -k K              candidates per prompt (default 4)\n"
    "  --split S         only prompts of split S\n"
    "  --ids I,J,...     only these prompt ids\n"
    "  --limit N         at most N prompts this run\n"
    "  --unique          resample until K distinct answers (at most --max-draws samples)\n"
    "  --max-draws N     samples per prompt at most with --unique (default 4*K)\n"
    "  --template T      chat template, {prompt} marks the prompt; stored with the model\n"
    "                    (default: the model's, else \"Human: {prompt}\\nAssistant:\")\n"
    "  --temperature T   (default 1.0)   --top-k K (default 0: off)   --top-p P (default 1: off)\n"
    "  --max-tokens N    new tokens per answer at most (default 64)\n"
    "  --stop S          stop string (repeatable; default \"\\n\\n\", \"Human:\" and\n"
    "                    \"Assistant:\")\n"
    "  --seed S          base seed (default 1)\n"
    "  --best-of N       each candidate is the best of N samples by the reward model\n"
    "                    --rm; stored as candidates of the policy \"<policy>+boN\" (its\n"
    "                    parent the checkpoint), the other samples' scores summed up on\n"
    "                    stderr; sample 0 of each answer is the plain policy's answer\n"
    "  --rm RM           the reward model of --best-of\n"
    "  --threads N       BLAS threads (default: OpenBLAS's choice)\n"
    "  --batch N         samples decoded at once, of several prompts where K leaves\n"
    "                    room (default 8; never fewer than K), a prompt taken as soon\n"
    "                    as an answer ends and stored once its K are in: the same\n"
    "                    candidates as prompt by prompt (--batch 1), faster\n"
    "  --weights W       f32, bf16 or auto (default): the weights decoding reads. auto is\n"
    "                    bf16 when the model's matrices are exactly bf16 (a model from\n"
    "                    BF16 safetensors): the same candidates, half the memory read per\n"
    "                    token; f32 otherwise. bf16 on f32 weights rounds them to bf16 (a\n"
    "                    slightly different model; its candidates' parameters say so)\n"
    "  --progress        show progress even when stderr is not a terminal\n" CLI_HELP_COMMON,
    exec_gen};

static const struct cmd_entry *E = &cmd_gen_entry;

static int parse_ids(const char *s, int64_t **ids, int *n) {
    *n = 0;
    *ids = NULL;
    int cap = 0;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        int bad = end == s || v < 1 || (*end && *end != ',');
        if (!bad && *n == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *p = realloc(*ids, (size_t)cap * sizeof *p);
            if (p) *ids = p;
            bad = !p;
        }
        if (bad) {
            free(*ids);
            *ids = NULL;
            return -1;
        }
        (*ids)[(*n)++] = v;
        s = *end ? end + 1 : end;
    }
    if (*n) return 0;
    free(*ids);
    *ids = NULL;
    return -1;
}

/* What the command line asks for. */
typedef struct GenArgs {
    const char *dbflag, *ckpt, *tok_path, *name, *tmpl_flag, *rm_path, *ids_arg;
    const char *stops[16];
    CliStops stop;
    int64_t *ids; /* --ids parsed */
    long k, threads, batch, best_of, limit, max_draws, seed;
    int force_progress, weights;
    GenOptions o;
    SampleParams p;
} GenArgs;

/* Options into a (and a->o, a->p); -1 to go on, else the exit status. */
static int parse(int argc, char **argv, GenArgs *a) {
    *a = (GenArgs){.k = 4, .seed = 1, .weights = INFER_WEIGHTS_AUTO, .p = sample_params_chat()};
    a->stop = (CliStops){a->stops, 0, 16};
    CliOpt sampling[CLI_S_N + 1];
    cli_sampling_table(&a->p, &a->seed, sampling);
    const CliOpt opts[] = {CLI_O_DB(&a->dbflag),
                           CLI_O_STR("model", &a->ckpt),
                           CLI_O_STR("tokenizer", &a->tok_path),
                           CLI_O_STR("name", &a->name),
                           CLI_O_STR("split", &a->o.split),
                           CLI_O_STR("ids", &a->ids_arg),
                           CLI_O_LONG("limit", &a->limit, 1, LONG_MAX),
                           CLI_O_FLAG("unique", &a->o.unique),
                           CLI_O_LONG("max-draws", &a->max_draws, 1, 100000),
                           CLI_O_SHORT('k', CLI_O_LONG("", &a->k, 1, 64)),
                           CLI_O_STR("template", &a->tmpl_flag),
                           CLI_O_TABLE(sampling),
                           CLI_O_CALL("stop", cli_take_stop, &a->stop),
                           CLI_O_LONG("threads", &a->threads, 1, 256),
                           CLI_O_LONG("batch", &a->batch, 1, 256),
                           CLI_O_FLAG("progress", &a->force_progress),
                           CLI_O_LONG("best-of", &a->best_of, 2, 256),
                           CLI_O_STR("rm", &a->rm_path),
                           CLI_O_CALL("weights", cli_take_weights, &a->weights),
                           CLI_O_END};
    int rc = cli_opts_parse(E, argc, argv, opts, NULL);
    if (rc >= 0) return rc;
    if (!a->ckpt) return cli_usage_error(E, "--model CKPT is required");
    if (a->best_of && !a->rm_path) return cli_usage_error(E, "--best-of N needs a reward model (--rm RM)");
    if (a->rm_path && !a->best_of) return cli_usage_error(E, "--rm is for --best-of N");
    if (a->o.split && a->ids_arg) return cli_usage_error(E, "give --split or --ids, not both");
    if (a->tmpl_flag && cli_check_template(E, a->tmpl_flag)) return EXIT_USAGE;
    /* parsed last, so no usage error above has to free the list */
    if (a->ids_arg && parse_ids(a->ids_arg, &a->ids, &a->o.n_ids))
        return cli_usage_error(E, "--ids: '%s' is not a list of prompt ids like 1,2,3", a->ids_arg);
    a->o.ids = a->ids;
    if (a->stop.n) { /* else the contract's */
        a->p.stop = a->stops;
        a->p.n_stop = a->stop.n;
    }
    a->o.k = (int)a->k;
    a->o.limit = a->limit;
    a->o.max_draws = (int)a->max_draws;
    a->o.seed = (uint64_t)a->seed;
    if (a->threads) infer_set_threads((int)a->threads);
    return -1;
}

/* The models gen samples with, open, and the registry rows they stand for. */
typedef struct GenSetup {
    GenModel g;
    RmScorer rm;
    BestOf bo;
    char *tmpl, *policy, *bo_name;
    int opened, rm_open, bo_open;
    GenBackend b;
} GenSetup;

static void setup_close(GenSetup *s) {
    if (s->bo_open) best_of_free(&s->bo);
    if (s->rm_open) rm_scorer_close(&s->rm);
    if (s->opened) gen_model_close(&s->g);
    free(s->tmpl), free(s->policy), free(s->bo_name);
}

/* Opens the checkpoints, then registers the model (and its best-of policy)
 * in one transaction: a broken file changes nothing. */
static int setup(Db *db, GenArgs *a, GenSetup *s, Err *err) {
    int64_t policy_id = 0;
    int best_of = (int)a->best_of;
    *s = (GenSetup){0};
    int rc = gen_model_open(&s->g, a->ckpt, a->tok_path, &a->p, best_of ? best_of : (int)a->k,
                            (int)a->batch, (InferWeights)a->weights, err);
    s->opened = rc == RLHF_OK;
    if (!rc && best_of) {
        s->rm_open = (rc = rm_scorer_open_in(db, &s->rm, a->rm_path, NULL, NULL, best_of, err)) == RLHF_OK;
        if (rc) err_prefix(err, "--rm: ");
    }
    if (!rc) rc = db_begin(db, err);
    if (!rc) {
        rc = gen_register_model(db, a->ckpt, best_of ? NULL : a->name, a->tmpl_flag,
                                best_of ? &policy_id : &a->o.model_id, &s->tmpl, &s->policy, err);
        if (!rc && best_of)
            rc = best_of_register(db, policy_id, s->policy, a->name, best_of, a->rm_path, s->tmpl,
                                  &a->o.model_id, &s->bo_name, err);
        if (!rc) rc = db_commit(db, err);
        else db_rollback(db);
    }
    s->b = gen_model_backend(&s->g);
    if (!rc && best_of)
        s->bo_open = (rc = best_of_init(&s->bo, &s->b, best_of, s->tmpl, eval_rm_score, &s->rm,
                                        a->rm_path, err)) == RLHF_OK;
    a->o.template = s->tmpl;
    if (s->bo_open) s->b = best_of_backend(&s->bo);
    return rc;
}

static int exec_gen(int argc, char **argv) {
    GenArgs a;
    int rc = parse(argc, argv, &a);
    if (rc >= 0) return rc;
    int64_t *ids = a.ids;
    Db *db;
    if ((rc = cli_open_db(E, a.dbflag, DB_OPEN_EXISTING, &db))) {
        free(ids);
        return rc;
    }
    Err err = {0};
    GenSetup su;
    if (setup(db, &a, &su, &err)) {
        setup_close(&su);
        free(ids);
        db_close(db);
        return cli_fail(E, &err);
    }
    Progress prog;
    progress_start(&prog, "gen", "prompts", 0, a.force_progress);
    sys_catch_interrupts();
    GenStats st;
    double t0 = now_seconds();
    rc = gen_run(db, &a.o, &su.b, &prog, &st, &err);
    double secs = now_seconds() - t0;
    progress_finish(&prog, NULL);
    if (su.bo_open && su.bo.st.answers)
        fprintf(stderr,
                "best-of-%ld by %s as %s: %lld answers from %lld samples; mean reward of the kept "
                "%.4f, of all samples %.4f, of sample 0 (the plain policy) %.4f\n",
                a.best_of, a.rm_path, su.bo_name, (long long)su.bo.st.answers,
                (long long)su.bo.st.samples, su.bo.st.sum_kept / (double)su.bo.st.answers,
                su.bo.st.sum_all / (double)su.bo.st.samples,
                su.bo.st.sum_first / (double)su.bo.st.answers);
    setup_close(&su);
    free(ids);
    db_close(db);
    if (rc) {
        fprintf(stderr, "rlhf gen: %s\n(%lld prompts finished before the error are kept)\n", err.msg,
                (long long)st.prompts_done);
        return EXIT_FAIL;
    }
    printf("%lld prompts, %lld new candidates, %lld duplicates dropped%s in %.1fs (%lld tokens "
           "sampled, %.1f tokens/s)\n",
           (long long)st.prompts_done, (long long)st.candidates, (long long)st.duplicates,
           st.short_prompts ? " (some prompts have fewer than k distinct answers)" : "", secs,
           (long long)st.tokens, secs > 0 ? (double)st.tokens / secs : 0.0);
    if (st.interrupted) {
        fprintf(stderr, "rlhf gen: interrupted; finished prompts are stored, run again to go on\n");
        return EXIT_FAIL;
    }
    return EXIT_OK;
}
