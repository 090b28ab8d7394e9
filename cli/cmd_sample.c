/* rlhf sample: a quick look at what a checkpoint writes after a prompt. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "gen/best_of.h"
#include "gen/model_backend.h"
#include "rl/eval.h"
#include "model/chat.h"
#include "model/checkpoint.h"
#include "model/seq.h"
#include "model/infer.h"
#include "model/sample.h"
#include "model/tokenizer.h"
#include "util/progress.h"
#include "util/text.h"

static int exec_sample(int argc, char **argv);

const struct cmd_entry cmd_sample_entry = {
    "sample", "--model CKPT [--tokenizer TOK] [--best-of N --rm RM] [options] \"PROMPT\"",
    "sample text from a checkpoint after a prompt",
    "  --model CKPT        checkpoint (ours or llama2.c's)\n"
    "  --tokenizer TOK     tokenizer.bin (default: the one inside the checkpoint)\n"
    "  --temperature T     0 = greedy (default 1.0)\n"
    "  --top-k K           sample among the K likeliest tokens (default 0 = off)\n"
    "  --top-p P           nucleus sampling (default 1.0 = off)\n"
    "  --max-tokens N      new tokens at most (default 256)\n"
    "  --seed S            random seed (default 1); the same seed gives the same text\n"
    "  --stop S            stop when S appears (repeatable); S is not printed\n"
    "  -k, --num K         K samples of the same prompt, decoded as one batch\n"
    "                      (sample i uses seed S + i)\n"
    "  --threads N         BLAS threads (default: OpenBLAS's choice)\n"
    "  --weights W         f32, bf16 or auto (default): the weights decoding reads. auto\n"
    "                      is bf16 when the model's matrices are exactly bf16 (a model\n"
    "                      from BF16 safetensors, as the hub ships them): the same text,\n"
    "                      half the memory read per token; f32 otherwise. bf16 on f32\n"
    "                      weights rounds them to bf16: a slightly different model\n"
    "  --json              one JSON object per sample (text, tokens, logprob, finish)\n"
    "  --best-of N         answer PROMPT as gen does (in the chat template, stopping at\n"
    "                      \"\\n\\n\" and \"Human:\" unless --stop is given) with N samples scored\n"
    "                      by the reward model --rm; prints all N with their rewards and\n"
    "                      marks the one kept (the highest); with -k K, K such answers\n"
    "  --rm RM             the reward model of --best-of\n"
    "  --template T        render PROMPT in this template first (\"...{prompt}...\" or\n"
    "                      chat:FAMILY); with --best-of, for the policy and the RM\n"
    "                      (default there \"Human: {prompt}\\nAssistant:\")\n"
    "  --raw               sample PROMPT as it is, without the model's chat template\n"
    "  --db DB             accepted as by every command; sample reads and writes no project\n"
    "  -h, --help          show this help\n"
    "A model that carries a chat template (a Hugging Face directory, or a checkpoint\n"
    "trained from one) answers PROMPT as one user turn in it, stopping at its\n"
    "end-of-turn token; other models continue PROMPT as it is.\n"
    "Prints the completion only (not the prompt); speed goes to stderr.\n"
    "PROMPT - reads the prompt from standard input (all of it, newlines kept).\n",
    exec_sample};

static const struct cmd_entry *E = &cmd_sample_entry;

typedef struct BestOfRun {
    int json, answer;
} BestOfRun;

/* Prints every sample of one best-of answer with its reward, marking the kept. */
static void print_best_of(void *ctx, const char *prompt, const GenSample *s, const uint64_t *seeds,
                          const float *scores, int n, int kept) {
    (void)prompt;
    BestOfRun *b = ctx;
    b->answer++;
    for (int i = 0; i < n; i++) {
        if (b->json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddNumberToObject(j, "answer", b->answer);
            cJSON_AddNumberToObject(j, "sample", i + 1);
            cli_json_u64(j, "seed", (unsigned long long)seeds[i]);
            cJSON_AddStringToObject(j, "text", s[i].text ? s[i].text : "");
            cJSON_AddNumberToObject(j, "tokens", (double)s[i].n_tokens);
            cli_json_num(j, "logprob", s[i].sum_logprob, 4);
            cli_json_g(j, "reward", scores[i]);
            cJSON_AddBoolToObject(j, "kept", i == kept);
            cli_json_print(j);
        } else {
            printf("--- answer %d, sample %d (seed %llu): reward %.4f%s\n%s\n", b->answer, i + 1,
                   (unsigned long long)seeds[i], scores[i], i == kept ? "  [kept: the highest]" : "",
                   s[i].text ? s[i].text : "");
        }
    }
}

/* --best-of: the prompt in the chat template, as gen samples it, k answers of
 * n samples each, every sample printed with its reward. */
static int sample_best_of(const char *model_path, const char *tok_path, const char *rm_path,
                          const char *template, const char *prompt, const SampleParams *p, int n,
                          int k, uint64_t seed, int weights, BestOfRun *run, Err *err) {
    GenModel g;
    RmScorer rm;
    BestOf bo;
    int rc = gen_model_open(&g, model_path, tok_path, p, n, (InferWeights)weights, err);
    if (rc) return rc;
    if ((rc = rm_scorer_open(&rm, rm_path, NULL, template, n, err))) {
        gen_model_close(&g);
        return err_prefix(err, "--rm: ");
    }
    GenBackend inner = gen_model_backend(&g);
    rc = best_of_init(&bo, &inner, n, template, eval_rm_score, &rm, rm_path, err);
    char *input = NULL;
    if (!rc) rc = seq_render(template, prompt, &input, err);
    if (!rc) {
        bo.report = print_best_of, bo.report_ctx = run;
        GenBackend b = best_of_backend(&bo);
        double t0 = now_seconds();
        for (int i = 0; i < k && !rc; i++) {
            uint64_t s = seed + (uint64_t)i;
            GenSample out = {0};
            rc = b.sample(b.ctx, input, 1, &s, &out, err);
            free(out.text);
        }
        double secs = now_seconds() - t0;
        if (!rc)
            fprintf(stderr, "%d answers, best of %d by %s: mean reward kept %.4f, of all samples %.4f (%.2fs)\n",
                    k, n, rm_path, bo.st.sum_kept / (double)k, bo.st.sum_all / (double)bo.st.samples, secs);
        best_of_free(&bo);
    }
    free(input);
    rm_scorer_close(&rm);
    gen_model_close(&g);
    return rc;
}

static int exec_sample(int argc, char **argv) {
    static const struct option opts[] = {CLI_OPT_HELP,
                                         {"model", required_argument, NULL, 'm'},
                                         {"tokenizer", required_argument, NULL, 't'},
                                         {"temperature", required_argument, NULL, 'T'},
                                         {"top-k", required_argument, NULL, 'K'},
                                         {"top-p", required_argument, NULL, 'P'},
                                         {"max-tokens", required_argument, NULL, 'n'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"stop", required_argument, NULL, 'S'},
                                         {"num", required_argument, NULL, 'k'},
                                         {"threads", required_argument, NULL, 'j'},
                                         {"json", no_argument, NULL, 'J'},
                                         {"best-of", required_argument, NULL, 'B'},
                                         {"rm", required_argument, NULL, 'R'},
                                         {"template", required_argument, NULL, 'E'},
                                         {"raw", no_argument, NULL, 'W'},
                                         {"weights", required_argument, NULL, 'w'},
                                         {"db", required_argument, NULL, 'D'},
                                         CLI_OPT_END};
    const char *model_path = NULL, *tok_path = NULL;
    SampleParams p = sample_params_default();
    const char *stops[64];
    long v, k = 1, threads = 0, seed = 1, best_of = 0;
    const char *rm_path = NULL, *template = NULL;
    int raw = 0, weights = INFER_WEIGHTS_AUTO;
    double d;
    int json = 0, c;
    p.stop = stops;
    while ((c = getopt_long(argc, argv, ":hk:", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            model_path = optarg;
            break;
        case 't':
            tok_path = optarg;
            break;
        case 'T':
            if (cli_parse_double(E, "--temperature", optarg, 0, 100, &d)) return EXIT_USAGE;
            p.temperature = (float)d;
            break;
        case 'K':
            if (cli_parse_long(E, "--top-k", optarg, 0, 1 << 30, &v)) return EXIT_USAGE;
            p.top_k = (int)v;
            break;
        case 'P':
            if (cli_parse_double(E, "--top-p", optarg, 1e-9, 1, &d)) return EXIT_USAGE;
            p.top_p = (float)d;
            break;
        case 'n':
            if (cli_parse_long(E, "--max-tokens", optarg, 1, 1 << 20, &v)) return EXIT_USAGE;
            p.max_tokens = (int)v;
            break;
        case 's':
            if (cli_parse_long(E, "--seed", optarg, 0, __LONG_MAX__, &seed)) return EXIT_USAGE;
            break;
        case 'S':
            if (!*optarg) return cli_usage_error(E, "--stop: empty string");
            if (p.n_stop == 64) return cli_usage_error(E, "--stop: at most 64 stop strings");
            stops[p.n_stop++] = optarg;
            break;
        case 'k':
            if (cli_parse_long(E, "--num", optarg, 1, 256, &k)) return EXIT_USAGE;
            break;
        case 'j':
            if (cli_parse_long(E, "--threads", optarg, 1, 256, &threads)) return EXIT_USAGE;
            break;
        case 'J':
            json = 1;
            break;
        case 'D': /* every command takes --db; sample reads no project */
            break;
        case 'B':
            if (cli_parse_long(E, "--best-of", optarg, 1, 256, &best_of)) return EXIT_USAGE;
            break;
        case 'R':
            rm_path = optarg;
            break;
        case 'W': raw = 1; break;
        case 'w':
            if (cli_parse_weights(E, optarg, &weights)) return EXIT_USAGE;
            break;
        case 'E':
            if (cli_check_template(E, optarg)) return EXIT_USAGE;
            template = optarg;
            break;
        case 'h':
            return cli_help(E);
        default:
            return cli_bad_option(E, argv, c);
        }
    }
    if (!model_path) return cli_usage_error(E, "--model CKPT is required");
    if (optind >= argc) return cli_usage_error(E, "no PROMPT given (use \"\" for none)");
    if (optind + 1 < argc) return cli_usage_error(E, "give the prompt as one argument (quote it)");
    if (best_of && !rm_path) return cli_usage_error(E, "--best-of N needs a reward model (--rm RM)");
    if (!best_of && rm_path) return cli_usage_error(E, "--rm is for --best-of N");
    if (raw && template) return cli_usage_error(E, "--raw and --template exclude each other");
    const char *prompt = argv[optind];
    char *stdin_text = NULL;
    if (threads) infer_set_threads((int)threads);

    Err err = {0};
    int rc_bo;
    if (strcmp(prompt, "-") == 0) {
        StrBuf b = {0};
        char chunk[4096];
        size_t got;
        int bad = sb_append(&b, "", 0);
        while (!bad && (got = fread(chunk, 1, sizeof chunk, stdin)) > 0) bad = sb_append(&b, chunk, got);
        if (bad || ferror(stdin)) {
            sb_free(&b);
            err_set(&err, RLHF_EIO, "reading the prompt from standard input failed");
            return cli_fail(E, &err);
        }
        prompt = stdin_text = b.s;
    }
    if (best_of) {
        BestOfRun b = {json, 0};
        if (!p.n_stop) stops[p.n_stop++] = "\n\n", stops[p.n_stop++] = "Human:";
        rc_bo = sample_best_of(model_path, tok_path, rm_path, template, prompt, &p, (int)best_of,
                               (int)k, (uint64_t)seed, weights, &b, &err);
        free(stdin_text);
        return rc_bo ? cli_fail(E, &err) : EXIT_OK;
    }
    Model m;
    Tokenizer *tok = NULL;
    Infer st = {0};
    SampleResult *res = NULL;
    int *ids = NULL, n = 0, rc;
    if ((rc = model_load(model_path, &m, &err))) {
        free(stdin_text);
        return cli_fail(E, &err);
    }
    rc = model_require_policy(&m, model_path, &err);
    if (!rc) rc = model_load_tokenizer(&m, model_path, tok_path, &tok, &err);
    /* a chat model is asked in its own template, as gen asks it */
    char *tmpl = NULL, *rendered = NULL;
    if (!rc && !raw && !template) rc = chat_template_find(model_path, &tmpl, &err);
    if (!rc && (template || tmpl)) rc = seq_render(template ? template : tmpl, prompt, &rendered, &err);
    if (rendered) prompt = rendered;
    size_t plen = strlen(prompt);
    if (!rc && !(ids = malloc(sizeof(int) * (size_t)tok_encode_cap(plen))))
        rc = err_set(&err, RLHF_ENOMEM, "out of memory");
    if (!rc)
        rc = tok_encode_prompt(tok, prompt, plen, ids,
                              tok_encode_cap(plen), &n, &err);
    if (!rc) rc = infer_create_weights(&st, &m, (int)k, (InferWeights)weights, &err);
    uint64_t seeds[256];
    for (int i = 0; i < k; i++)
        seeds[i] = (uint64_t)seed + (uint64_t)i;
    if (!rc && !(res = calloc((size_t)k, sizeof *res)))
        rc = err_set(&err, RLHF_ENOMEM, "out of memory");
    double t0 = now_seconds();
    if (!rc && (rc = sample_generate_batch(&st, tok, ids, n, (int)k, &p, seeds, res, &err)) ==
                   RLHF_EFORMAT)
        err_prefix(&err, "%s: ", model_path);
    double secs = now_seconds() - t0;
    if (!rc) {
        long total = 0;
        for (int i = 0; i < k; i++) {
            total += res[i].n_tokens;
            if (json) {
                cJSON *j = cJSON_CreateObject();
                cli_json_u64(j, "seed", (unsigned long long)seeds[i]);
                cJSON_AddStringToObject(j, "text", res[i].text);
                cJSON_AddNumberToObject(j, "tokens", res[i].n_tokens);
                cli_json_num(j, "logprob", res[i].logprob, 4);
                cJSON_AddStringToObject(j, "finish", sample_finish_name(res[i].finish));
                cli_json_print(j);
            } else {
                if (k > 1)
                    printf("--- sample %d (seed %llu)\n", i + 1, (unsigned long long)seeds[i]);
                fwrite(res[i].text, 1, res[i].text_len, stdout);
                printf("\n");
            }
        }
        fprintf(stderr, "%d prompt tokens, %ld sampled in %.2fs (%.1f tokens/s, %s weights)\n", n,
                total, secs, secs > 0 ? total / secs : 0.0, infer_uses_bf16(&st) ? "bf16" : "f32");
    }
    for (int i = 0; res && i < k; i++)
        sample_result_free(&res[i]);
    free(res);
    free(ids);
    free(stdin_text);
    free(tmpl);
    free(rendered);
    infer_free(&st);
    tok_free(tok);
    model_free(&m);
    return rc ? cli_fail(E, &err) : EXIT_OK;
}
