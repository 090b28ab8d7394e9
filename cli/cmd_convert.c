/* rlhf convert: checkpoints between our format and llama2.c's (model.bin +
 * tokenizer.bin), so models made there run here and the other way round. */
#include "cli/cli.h"
#include "model/checkpoint.h"

#include <stdlib.h>
#include <string.h>

static int exec_convert(int argc, char **argv);

const struct cmd_entry cmd_convert_entry = {
    "convert", "--model IN --to llama2c|rlhf --out OUT [--tokenizer TOK] [--tokenizer-out TOK]",
    "convert a checkpoint to llama2.c's format or to ours",
    "  --model IN          checkpoint to read (ours or llama2.c's; told apart by content)\n"
    "  --to FORMAT         llama2c: llama2.c's model.bin (run it with llama2.c's run.c);\n"
    "                      rlhf: our format, which carries its tokenizer and a checksum\n"
    "  --out OUT           file to write (atomically)\n"
    "  --tokenizer TOK     tokenizer.bin to embed when converting to rlhf\n"
    "                      (default: the one IN carries, if any)\n"
    "  --tokenizer-out TOK with --to llama2c: also write the tokenizer IN carries (or\n"
    "                      --tokenizer) as llama2.c's tokenizer.bin\n"
    "llama2.c's format has no reward or value head; converting a model that has one\n"
    "drops it, with a warning.\n" CLI_HELP_COMMON,
    exec_convert};

static const struct cmd_entry *E = &cmd_convert_entry;

static int exec_convert(int argc, char **argv) {
    static const struct option opts[] = {CLI_OPT_DB,
                                         CLI_OPT_HELP,
                                         {"model", required_argument, NULL, 'm'},
                                         {"to", required_argument, NULL, 't'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"tokenizer", required_argument, NULL, 'k'},
                                         {"tokenizer-out", required_argument, NULL, 'K'},
                                         CLI_OPT_END};
    const char *in = NULL, *to = NULL, *out = NULL, *tok_path = NULL, *tok_out = NULL;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'D': break; /* no database involved; accepted like everywhere */
        case 'm': in = optarg; break;
        case 't': to = optarg; break;
        case 'o': out = optarg; break;
        case 'k': tok_path = optarg; break;
        case 'K': tok_out = optarg; break;
        case 'h': return cli_help(E);
        default: return cli_bad_option(E, argv, c);
        }
    }
    if (optind < argc) return cli_usage_error(E, "unexpected argument '%s'", argv[optind]);
    if (!in || !to || !out) return cli_usage_error(E, "--model, --to and --out are required");
    int llama = strcmp(to, "llama2c") == 0;
    if (!llama && strcmp(to, "rlhf") != 0)
        return cli_usage_error(E, "--to: '%s' is not a format (llama2c or rlhf)", to);
    if (tok_out && !llama) return cli_usage_error(E, "--tokenizer-out goes with --to llama2c");
    if (strcmp(in, out) == 0) return cli_usage_error(E, "--out must differ from --model");

    Err err = {0};
    Model m;
    Tokenizer *tok = NULL;
    int rc = model_load(in, &m, &err);
    if (rc) return cli_fail(E, &err);
    /* the tokenizer is needed to embed it, or to write it beside a llama2.c file */
    if (tok_path || m.tokenizer || tok_out) rc = model_load_tokenizer(&m, in, tok_path, &tok, &err);
    unsigned char *bytes = NULL;
    size_t n = 0;
    if (!rc && llama) {
        if (m.heads)
            fprintf(stderr, "rlhf convert: %s has a %s head; llama2.c's format drops it\n", in,
                    m.heads & MODEL_HEAD_REWARD ? "reward" : "value");
        rc = model_save_llama2c(out, &m, &err);
        if (!rc && tok_out) rc = tok_save(tok, tok_out, &err);
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
