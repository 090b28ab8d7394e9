/* rlhf sample: a quick look at what a checkpoint writes after a prompt. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/sampling.h"
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
    "  -t, --temperature T 0 = greedy (default 1.0)\n"
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
    "                      \"\\n\\n\", \"Human:\" or \"Assistant:\" unless --stop is given) with N\n"
    "                      samples scored by the reward model --rm; prints all N with their\n"
    "                      rewards and marks the one kept (the highest); with -k K, K such\n"
    "                      answers\n"
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
    int rc = gen_model_open(&g, model_path, tok_path, p, n, 1, (InferWeights)weights, err);
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
            gen_samples_free(&out, 1);
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

/* What the command line asks for. */
typedef struct SampleArgs {
    const char *model_path, *tok_path, *rm_path, *template, *prompt, *dbflag;
    const char *stops[64];
    CliStops stop;
    SampleParams p;
    long k, threads, seed, best_of;
    int raw, weights, json;
} SampleArgs;

/* --template is checked as it comes, before the options after it */
static int take_template(const struct cmd_entry *e, const CliOpt *o, const char *arg) {
    if (cli_check_template(e, arg)) return EXIT_USAGE;
    *(const char **)o->ctx = arg;
    return 0;
}

/* Options into a; -1 to go on, else the exit status. */
static int parse(int argc, char **argv, SampleArgs *a) {
    *a = (SampleArgs){.p = sample_params_default(), .k = 1, .seed = 1, .weights = INFER_WEIGHTS_AUTO};
    a->stop = (CliStops){a->stops, 0, 64};
    CliOpt sampling[CLI_S_N + 1];
    cli_sampling_table(&a->p, &a->seed, sampling);
    /* -t as llama2.c's run.c spells it (the tokenizer has only --tokenizer) */
    sampling[CLI_S_TEMPERATURE].short_name = 't';
    sampling[CLI_S_TOP_K].hi = 1 << 30;
    sampling[CLI_S_TOP_P] = (CliOpt)CLI_O_FLOAT("top-p", &a->p.top_p, 1e-9, 1);
    const CliOpt opts[] = {CLI_O_STR("model", &a->model_path),
                           CLI_O_STR("tokenizer", &a->tok_path),
                           CLI_O_TABLE(sampling),
                           CLI_O_CALL("stop", cli_take_stop, &a->stop),
                           CLI_O_SHORT('k', CLI_O_LONG("num", &a->k, 1, 256)),
                           CLI_O_LONG("threads", &a->threads, 1, 256),
                           CLI_O_FLAG("json", &a->json),
                           CLI_O_LONG("best-of", &a->best_of, 1, 256),
                           CLI_O_STR("rm", &a->rm_path),
                           CLI_O_CALL("template", take_template, &a->template),
                           CLI_O_FLAG("raw", &a->raw),
                           CLI_O_CALL("weights", cli_take_weights, &a->weights),
                           CLI_O_DB(&a->dbflag), /* every command takes --db; sample reads no project */
                           CLI_O_END};
    CliList rest = {0};
    int rc = cli_opts_parse(E, argc, argv, opts, &rest);
    a->prompt = rest.n ? rest.v[0] : NULL;
    free(rest.v);
    if (rc >= 0) return rc;
    a->p.stop = a->stops;
    a->p.n_stop = a->stop.n;
    if (!a->model_path) return cli_usage_error(E, "--model CKPT is required");
    if (rest.n == 0) return cli_usage_error(E, "no PROMPT given (use \"\" for none)");
    if (rest.n > 1) return cli_usage_error(E, "give the prompt as one argument (quote it)");
    if (a->best_of && !a->rm_path) return cli_usage_error(E, "--best-of N needs a reward model (--rm RM)");
    if (!a->best_of && a->rm_path) return cli_usage_error(E, "--rm is for --best-of N");
    if (a->raw && a->template) return cli_usage_error(E, "--raw and --template exclude each other");
    if (a->threads) infer_set_threads((int)a->threads);
    return -1;
}

/* PROMPT "-": all of standard input, newlines kept (caller frees). */
static int read_stdin(char **out, Err *err) {
    StrBuf b = {0};
    char chunk[4096];
    size_t got;
    int bad = sb_append(&b, "", 0);
    while (!bad && (got = fread(chunk, 1, sizeof chunk, stdin)) > 0) bad = sb_append(&b, chunk, got);
    if (bad || ferror(stdin)) {
        sb_free(&b);
        return err_set(err, RLHF_EIO, "reading the prompt from standard input failed");
    }
    *out = b.s;
    return RLHF_OK;
}

static void print_samples(const SampleResult *res, const uint64_t *seeds, int k, int json) {
    for (int i = 0; i < k; i++) {
        if (json) {
            cJSON *j = cJSON_CreateObject();
            cli_json_u64(j, "seed", (unsigned long long)seeds[i]);
            cJSON_AddStringToObject(j, "text", res[i].text);
            cJSON_AddNumberToObject(j, "tokens", res[i].n_tokens);
            cli_json_num(j, "logprob", res[i].logprob, 4);
            cJSON_AddStringToObject(j, "finish", sample_finish_name(res[i].finish));
            cli_json_print(j);
        } else {
            if (k > 1) printf("--- sample %d (seed %llu)\n", i + 1, (unsigned long long)seeds[i]);
            fwrite(res[i].text, 1, res[i].text_len, stdout);
            printf("\n");
        }
    }
}

/* The prompt as the model is asked it: in --template, else in the model's own
 * chat template (as gen asks it) unless --raw; *rendered NULL when as it is. */
static int render_prompt(const SampleArgs *a, char **tmpl, char **rendered, Err *err) {
    int rc = RLHF_OK;
    if (!a->raw && !a->template) rc = chat_template_find(a->model_path, tmpl, err);
    if (!rc && (a->template || *tmpl)) rc = seq_render(a->template ? a->template : *tmpl, a->prompt, rendered, err);
    return rc;
}

/* k samples of the prompt, decoded as one batch, printed. */
static int sample_plain(const SampleArgs *a, Err *err) {
    Model m;
    Tokenizer *tok = NULL;
    Infer st = {0};
    SampleResult *res = NULL;
    int *ids = NULL, n = 0, k = (int)a->k, rc;
    if ((rc = model_load(a->model_path, &m, err))) return rc;
    rc = model_require_policy(&m, a->model_path, err);
    if (!rc) rc = model_load_tokenizer(&m, a->model_path, a->tok_path, &tok, err);
    char *tmpl = NULL, *rendered = NULL;
    if (!rc) rc = render_prompt(a, &tmpl, &rendered, err);
    const char *prompt = rendered ? rendered : a->prompt;
    size_t plen = strlen(prompt);
    if (!rc && !(ids = malloc(sizeof(int) * (size_t)tok_encode_cap(plen))))
        rc = err_set(err, RLHF_ENOMEM, "out of memory");
    if (!rc) rc = tok_encode_prompt(tok, prompt, plen, ids, tok_encode_cap(plen), &n, err);
    if (!rc) rc = infer_create_weights(&st, &m, k, (InferWeights)a->weights, err);
    uint64_t seeds[256];
    for (int i = 0; i < k; i++) seeds[i] = (uint64_t)a->seed + (uint64_t)i;
    if (!rc && !(res = calloc((size_t)k, sizeof *res))) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    double t0 = now_seconds();
    if (!rc && (rc = sample_generate_batch(&st, tok, ids, n, k, &a->p, seeds, res, err)) == RLHF_EFORMAT)
        err_prefix(err, "%s: ", a->model_path);
    double secs = now_seconds() - t0;
    if (!rc) {
        long total = 0;
        for (int i = 0; i < k; i++) total += res[i].n_tokens;
        print_samples(res, seeds, k, a->json);
        fprintf(stderr, "%d prompt tokens, %ld sampled in %.2fs (%.1f tokens/s, %s weights)\n", n,
                total, secs, secs > 0 ? total / secs : 0.0, infer_uses_bf16(&st) ? "bf16" : "f32");
    }
    for (int i = 0; res && i < k; i++) sample_result_free(&res[i]);
    free(res), free(ids), free(tmpl), free(rendered);
    infer_free(&st);
    tok_free(tok);
    model_free(&m);
    return rc;
}

static int exec_sample(int argc, char **argv) {
    SampleArgs a;
    int rc = parse(argc, argv, &a);
    if (rc >= 0) return rc;
    Err err = {0};
    char *stdin_text = NULL;
    if (strcmp(a.prompt, "-") == 0) {
        if (read_stdin(&stdin_text, &err)) return cli_fail(E, &err);
        a.prompt = stdin_text;
    }
    if (a.best_of) {
        BestOfRun b = {a.json, 0};
        if (!a.stop.n) a.p.stop = SAMPLE_CHAT_STOPS, a.p.n_stop = SAMPLE_CHAT_N_STOPS;
        rc = sample_best_of(a.model_path, a.tok_path, a.rm_path, a.template, a.prompt, &a.p,
                            (int)a.best_of, (int)a.k, (uint64_t)a.seed, a.weights, &b, &err);
    } else {
        rc = sample_plain(&a, &err);
    }
    free(stdin_text);
    return rc ? cli_fail(E, &err) : EXIT_OK;
}
