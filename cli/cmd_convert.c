/* rlhf convert: checkpoints between our format, llama2.c's (model.bin +
 * tokenizer.bin) and Hugging Face directories, so models made elsewhere run
 * here and what is trained here goes back to TRL, vLLM or llama.cpp. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "model/checkpoint.h"
#include "model/hf.h"
#include "model/lora.h"
#include "model/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int exec_convert(int argc, char **argv);

const struct cmd_entry cmd_convert_entry = {
    "convert", "--model IN --to hf|llama2c|rlhf|peft --out OUT [--merge] [--dtype bf16|f16|f32] [--as policy|rm]",
    "convert a checkpoint to a Hugging Face directory, llama2.c's format or ours",
    "  --model IN          checkpoint to read: ours, llama2.c's or a Hugging Face directory\n"
    "  --to FORMAT         hf: a Hugging Face directory (config.json, model.safetensors and the\n"
    "                      tokenizer files, chat template and generation config IN carries);\n"
    "                      llama2c: llama2.c's model.bin (run it with llama2.c's run.c);\n"
    "                      rlhf: our format, which carries its tokenizer and a checksum;\n"
    "                      peft: a LoRA adapter (trained with --lora) as a PEFT directory\n"
    "                      (adapter_config.json, adapter_model.safetensors) for\n"
    "                      PeftModel.from_pretrained on the HF base it was trained from\n"
    "  --merge             IN must be a LoRA adapter: fold it into its base's weights\n"
    "                      (W + alpha/R·B A) and write the whole model (--to defaults to rlhf);\n"
    "                      any format but peft loads an adapter merged\n"
    "  --out OUT           file (folder with --to hf) to write; each file atomically\n"
    "  --dtype D           with --to hf: bf16 (default), f16 or f32 safetensors\n"
    "  --as KIND           with --to hf: policy (*ForCausalLM) or rm (*ForSequenceClassification\n"
    "                      with score.weight, as TRL's RewardTrainer writes it; the reward\n"
    "                      head's bias goes to config.json's rlhf_reward_bias). Default: rm\n"
    "                      for a model with a reward head, else policy\n"
    "  --tokenizer TOK     tokenizer.bin to embed when converting to rlhf\n"
    "                      (default: the one IN carries, if any)\n"
    "  --tokenizer-out TOK with --to llama2c: also write the tokenizer IN carries (or\n"
    "                      --tokenizer) as llama2.c's tokenizer.bin\n"
    "llama2.c's format has no reward or value head; converting a model that has one\n"
    "drops it, with a warning.\n" CLI_HELP_COMMON,
    exec_convert};

static const struct cmd_entry *E = &cmd_convert_entry;

/* --to peft: the adapter as it is, named for its HF base. */
static int convert_peft(const char *in, const char *out, const char *dtype_s) {
    int dtype = dtype_s ? st_dtype_parse(dtype_s) : ST_F32;
    if (dtype < 0) return cli_usage_error(E, "--dtype: '%s' is not bf16, f16 or f32", dtype_s);
    Err err = {0};
    Model m;
    if (model_load_adapter(in, &m, &err)) return cli_fail(E, &err);
    const char *base = m.lora->base_path;
    if (m.heads & MODEL_HEAD_VALUE)
        fprintf(stderr, "rlhf convert: %s has a value head (PPO's); PEFT has no place for it: left out\n", in);
    if (!hf_is_dir(base))
        fprintf(stderr, "rlhf convert: %s's base %s is not a Hugging Face directory; the names are "
                        "those of its `convert --to hf` copy\n", in, base);
    int rc = hf_save_peft(out, &m, base, dtype, &err);
    int rm = m.heads & MODEL_HEAD_REWARD;
    model_free(&m);
    if (rc) return cli_fail(E, &err);
    printf("wrote %s (PEFT LoRA adapter, %s, %s)\n", out, rm ? "SEQ_CLS" : "CAUSAL_LM",
           st_dtype_name(dtype));
    return EXIT_OK;
}

static int exec_convert(int argc, char **argv) {
    const char *in = NULL, *to = NULL, *out = NULL, *tok_path = NULL, *tok_out = NULL;
    const char *dtype_s = NULL, *as = NULL, *db = NULL; /* no database involved; --db accepted like everywhere */
    int merge = 0;
    const CliOpt opts[] = {CLI_O_DB(&db), CLI_O_STR("model", &in), CLI_O_STR("to", &to),
                           CLI_O_STR("out", &out), CLI_O_STR("tokenizer", &tok_path),
                           CLI_O_STR("tokenizer-out", &tok_out), CLI_O_STR("dtype", &dtype_s),
                           CLI_O_STR("as", &as), CLI_O_FLAG("merge", &merge), CLI_O_END};
    int rc = cli_opts_parse(E, argc, argv, opts, NULL);
    if (rc >= 0) return rc;
    if (merge && !to) to = "rlhf";
    if (!in || !to || !out) return cli_usage_error(E, "--model, --to and --out are required");
    int llama = strcmp(to, "llama2c") == 0, hf = strcmp(to, "hf") == 0, peft = strcmp(to, "peft") == 0;
    if (!llama && !hf && !peft && strcmp(to, "rlhf") != 0)
        return cli_usage_error(E, "--to: '%s' is not a format (hf, llama2c, rlhf or peft)", to);
    if (peft && (merge || as || tok_path || tok_out))
        return cli_usage_error(E, "--to peft writes the adapter itself: no --merge, --as or --tokenizer");
    if (peft) return convert_peft(in, out, dtype_s);
    if (tok_out && !llama) return cli_usage_error(E, "--tokenizer-out goes with --to llama2c");
    if ((dtype_s || as) && !hf) return cli_usage_error(E, "--dtype and --as go with --to hf");
    int dtype = dtype_s ? st_dtype_parse(dtype_s) : ST_BF16;
    if (dtype < 0) return cli_usage_error(E, "--dtype: '%s' is not bf16, f16 or f32", dtype_s);
    if (as && strcmp(as, "policy") != 0 && strcmp(as, "rm") != 0)
        return cli_usage_error(E, "--as: '%s' is not policy or rm", as);
    if (strcmp(in, out) == 0) return cli_usage_error(E, "--out must differ from --model");

    Err err = {0};
    Model m;
    Tokenizer *tok = NULL;
    rc = merge ? model_load_adapter(in, &m, &err) : model_load(in, &m, &err);
    if (!rc && merge) rc = model_lora_merge(&m, &err);
    if (rc) return cli_fail(E, &err);
    if (hf) {
        int kind = as ? (strcmp(as, "rm") == 0 ? HF_OUT_RM : HF_OUT_POLICY)
                      : (m.heads & MODEL_HEAD_REWARD ? HF_OUT_RM : HF_OUT_POLICY);
        if (!hf_files_is(m.tokenizer, m.tokenizer_len))
            fprintf(stderr, "rlhf convert: %s did not come from a Hugging Face directory: %s gets "
                            "config.json and the weights, no tokenizer files\n", in, out);
        rc = hf_save(out, &m, kind, dtype, &err);
        model_free(&m);
        if (rc) return cli_fail(E, &err);
        printf("wrote %s (Hugging Face %s, %s)\n", out,
               kind == HF_OUT_RM ? "ForSequenceClassification" : "ForCausalLM", st_dtype_name(dtype));
        return EXIT_OK;
    }
    /* the tokenizer is needed to embed it, or to write it beside a llama2.c file */
    /* convert is where a checkpoint is given another tokenizer on purpose
     * (--tokenizer replaces the one inside), so only the size is checked */
    if (tok_path) {
        rc = tok_load(tok_path, &tok, &err);
        if (!rc) rc = tok_check_vocab(tok, m.cfg.vocab_size, &err);
    } else if (m.tokenizer || tok_out)
        rc = model_load_tokenizer(&m, in, tok_path, &tok, &err);
    unsigned char *bytes = NULL;
    size_t n = 0;
    if (!rc && llama) {
        if (m.heads)
            fprintf(stderr, "rlhf convert: %s has a %s head; llama2.c's format drops it\n", in,
                    m.heads & MODEL_HEAD_REWARD ? "reward" : "value");
        rc = model_save_llama2c(out, &m, &err);
        if (!rc && tok_out) rc = tok_save(tok, tok_out, &err);
    } else if (!rc && !tok_path && hf_files_is(m.tokenizer, m.tokenizer_len)) {
        rc = model_save(out, &m, &err); /* the HF side files travel as they are */
    } else if (!rc) {
        if (tok) rc = tok_to_bytes(tok, &bytes, &n, &err);
        if (!rc && tok) rc = model_set_tokenizer(&m, bytes, n, &err);
        if (!rc) rc = model_save(out, &m, &err);
    }
    free(bytes);
    if (tok) tok_free(tok);
    model_free(&m);
    if (rc) return cli_fail(E, &err);
    printf("wrote %s (%s format)%s%s\n", out, llama ? "llama2.c" : "rlhf",
           tok_out ? " and " : "", tok_out ? tok_out : "");
    return EXIT_OK;
}
