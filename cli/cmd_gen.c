/* rlhf gen: k candidate answers per prompt from the embedded model, into the store. */
#include "cli/cli.h"
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
    "just the prompts that still lack k candidates from this model. The same seed\n"
    "gives the same candidates, whatever the order or the interruptions.\n\n"
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
    "  --stop S          stop string (repeatable; default \"\\n\\n\" and \"Human:\")\n"
    "  --seed S          base seed (default 1)\n"
    "  --best-of N       each candidate is the best of N samples by the reward model\n"
    "                    --rm; stored as candidates of the policy \"<policy>+boN\" (its\n"
    "                    parent the checkpoint), the other samples' scores summed up on\n"
    "                    stderr; sample 0 of each answer is the plain policy's answer\n"
    "  --rm RM           the reward model of --best-of\n"
    "  --threads N       BLAS threads (default: OpenBLAS's choice)\n"
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

static int exec_gen(int argc, char **argv) {
    static const struct option opts[] = {CLI_OPT_DB,
                                         CLI_OPT_HELP,
                                         {"model", required_argument, NULL, 'm'},
                                         {"tokenizer", required_argument, NULL, 't'},
                                         {"name", required_argument, NULL, 'n'},
                                         {"split", required_argument, NULL, 's'},
                                         {"ids", required_argument, NULL, 'i'},
                                         {"limit", required_argument, NULL, 'l'},
                                         {"unique", no_argument, NULL, 'u'},
                                         {"max-draws", required_argument, NULL, 'M'},
                                         {"template", required_argument, NULL, 'T'},
                                         {"temperature", required_argument, NULL, 'E'},
                                         {"top-k", required_argument, NULL, 'K'},
                                         {"top-p", required_argument, NULL, 'P'},
                                         {"max-tokens", required_argument, NULL, 'x'},
                                         {"stop", required_argument, NULL, 'S'},
                                         {"seed", required_argument, NULL, 'r'},
                                         {"threads", required_argument, NULL, 'j'},
                                         {"progress", no_argument, NULL, 'p'},
                                         {"best-of", required_argument, NULL, 'B'},
                                         {"rm", required_argument, NULL, 'R'},
                                         {"weights", required_argument, NULL, 'w'},
                                         CLI_OPT_END};
    const char *ids_arg = NULL;
    const char *dbflag = NULL, *ckpt = NULL, *tok_path = NULL, *name = NULL, *tmpl_flag = NULL;
    const char *stops[16], *rm_path = NULL;
    long best_of = 0;
    int n_stop = 0, force_progress = 0, weights = INFER_WEIGHTS_AUTO;
    long k = 4, threads = 0, v;
    double d;
    GenOptions o = {0};
    SampleParams p = sample_params_default();
    p.max_tokens = 64;
    int64_t *ids = NULL;
    int c, rc;
    o.seed = 1;
    while ((c = getopt_long(argc, argv, ":hk:", opts, NULL)) != -1) {
        switch (c) {
        case 'D': dbflag = optarg; break;
        case 'm': ckpt = optarg; break;
        case 't': tok_path = optarg; break;
        case 'n': name = optarg; break;
        case 's': o.split = optarg; break;
        case 'i': ids_arg = optarg; break;
        case 'l':
            if (cli_parse_long(E, "--limit", optarg, 1, LONG_MAX, &v)) return EXIT_USAGE;
            o.limit = v;
            break;
        case 'u': o.unique = 1; break;
        case 'M':
            if (cli_parse_long(E, "--max-draws", optarg, 1, 100000, &v)) return EXIT_USAGE;
            o.max_draws = (int)v;
            break;
        case 'k':
            if (cli_parse_long(E, "-k", optarg, 1, 64, &k)) return EXIT_USAGE;
            break;
        case 'T': tmpl_flag = optarg; break;
        case 'E':
            if (cli_parse_double(E, "--temperature", optarg, 0, 100, &d)) return EXIT_USAGE;
            p.temperature = (float)d;
            break;
        case 'K':
            if (cli_parse_long(E, "--top-k", optarg, 0, 1 << 20, &v)) return EXIT_USAGE;
            p.top_k = (int)v;
            break;
        case 'P':
            if (cli_parse_double(E, "--top-p", optarg, 0, 1, &d) || d <= 0)
                return cli_usage_error(E, "--top-p: must be in (0, 1]");
            p.top_p = (float)d;
            break;
        case 'x':
            if (cli_parse_long(E, "--max-tokens", optarg, 1, 1 << 20, &v)) return EXIT_USAGE;
            p.max_tokens = (int)v;
            break;
        case 'S':
            if (n_stop == 16) return cli_usage_error(E, "--stop: at most 16 stop strings");
            if (!*optarg) return cli_usage_error(E, "--stop: empty string");
            stops[n_stop++] = optarg;
            break;
        case 'r':
            if (cli_parse_long(E, "--seed", optarg, 0, LONG_MAX, &v)) return EXIT_USAGE;
            o.seed = (uint64_t)v;
            break;
        case 'j':
            if (cli_parse_long(E, "--threads", optarg, 1, 256, &threads)) return EXIT_USAGE;
            break;
        case 'p': force_progress = 1; break;
        case 'B':
            if (cli_parse_long(E, "--best-of", optarg, 2, 256, &best_of)) return EXIT_USAGE;
            break;
        case 'R': rm_path = optarg; break;
        case 'w':
            if (cli_parse_weights(E, optarg, &weights)) return EXIT_USAGE;
            break;
        case 'h': return cli_help(E);
        default: return cli_bad_option(E, argv, c);
        }
    }
    if (optind < argc) return cli_usage_error(E, "unexpected argument '%s'", argv[optind]);
    if (!ckpt) return cli_usage_error(E, "--model CKPT is required");
    if (best_of && !rm_path) return cli_usage_error(E, "--best-of N needs a reward model (--rm RM)");
    if (rm_path && !best_of) return cli_usage_error(E, "--rm is for --best-of N");
    if (o.split && ids_arg) return cli_usage_error(E, "give --split or --ids, not both");
    if (tmpl_flag && cli_check_template(E, tmpl_flag)) return EXIT_USAGE;
    /* parsed last, so no usage error above has to free the list */
    if (ids_arg && parse_ids(ids_arg, &ids, &o.n_ids))
        return cli_usage_error(E, "--ids: '%s' is not a list of prompt ids like 1,2,3", ids_arg);
    o.ids = ids;
    if (!n_stop) {
        stops[n_stop++] = "\n\n";
        stops[n_stop++] = "Human:";
    }
    p.stop = stops;
    p.n_stop = n_stop;
    o.k = (int)k;
    if (threads) infer_set_threads((int)threads);

    Db *db;
    if ((rc = cli_open_db(E, dbflag, DB_OPEN_EXISTING, &db))) {
        free(ids);
        return rc;
    }
    Err err = {0};
    GenModel g;
    RmScorer rm;
    BestOf bo;
    char *tmpl = NULL, *policy = NULL, *bo_name = NULL;
    int64_t policy_id = 0;
    /* the checkpoints load before anything is registered: a broken file changes nothing */
    int opened = (rc = gen_model_open(&g, ckpt, tok_path, &p, best_of ? (int)best_of : (int)k,
                                                (InferWeights)weights, &err)) == RLHF_OK;
    int rm_open = 0, bo_open = 0;
    if (!rc && best_of) {
        rm_open = (rc = rm_scorer_open_in(db, &rm, rm_path, NULL, NULL, (int)best_of, &err)) == RLHF_OK;
        if (rc) err_prefix(&err, "--rm: ");
    }
    if (!rc) rc = db_begin(db, &err);
    if (!rc) {
        rc = gen_register_model(db, ckpt, best_of ? NULL : name, tmpl_flag, best_of ? &policy_id : &o.model_id,
                                &tmpl, &policy, &err);
        if (!rc && best_of)
            rc = best_of_register(db, policy_id, policy, name, (int)best_of, rm_path, tmpl, &o.model_id,
                                  &bo_name, &err);
        if (!rc) rc = db_commit(db, &err);
        else db_rollback(db);
    }
    GenBackend b = gen_model_backend(&g);
    if (!rc && best_of)
        bo_open = (rc = best_of_init(&bo, &b, (int)best_of, tmpl, eval_rm_score, &rm, rm_path, &err)) == RLHF_OK;
    if (rc) {
        if (opened) gen_model_close(&g);
        if (rm_open) rm_scorer_close(&rm);
        free(ids), free(tmpl), free(policy), free(bo_name);
        db_close(db);
        return cli_fail(E, &err);
    }
    o.template = tmpl;
    if (bo_open) b = best_of_backend(&bo);
    Progress prog;
    progress_start(&prog, "gen", "prompts", 0, force_progress);
    sys_catch_interrupts();
    GenStats st;
    double t0 = now_seconds();
    rc = gen_run(db, &o, &b, &prog, &st, &err);
    double secs = now_seconds() - t0;
    progress_finish(&prog, NULL);
    if (bo_open && bo.st.answers)
        fprintf(stderr,
                "best-of-%ld by %s as %s: %lld answers from %lld samples; mean reward of the kept "
                "%.4f, of all samples %.4f, of sample 0 (the plain policy) %.4f\n",
                best_of, rm_path, bo_name, (long long)bo.st.answers, (long long)bo.st.samples,
                bo.st.sum_kept / (double)bo.st.answers, bo.st.sum_all / (double)bo.st.samples,
                bo.st.sum_first / (double)bo.st.answers);
    if (bo_open) best_of_free(&bo);
    if (rm_open) rm_scorer_close(&rm);
    gen_model_close(&g);
    free(ids), free(tmpl), free(policy), free(bo_name);
    db_close(db);
    if (rc) {
        fprintf(stderr, "rlhf gen: %s\n(%lld prompts finished before the error are kept)\n", err.msg,
                (long long)st.prompts_done);
        return EXIT_FAIL;
    }
    printf("%lld prompts, %lld new candidates, %lld duplicates dropped%s in %.1fs\n",
           (long long)st.prompts_done, (long long)st.candidates, (long long)st.duplicates,
           st.short_prompts ? " (some prompts have fewer than k distinct answers)" : "", secs);
    if (st.interrupted) {
        fprintf(stderr, "rlhf gen: interrupted; finished prompts are stored, run again to go on\n");
        return EXIT_FAIL;
    }
    return EXIT_OK;
}
