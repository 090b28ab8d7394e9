/* rlhf tokenizer train|encode|decode: train a BPE tokenizer (llama2.c
 * tokenizer.bin format) and look at how it splits text. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "model/tokenizer.h"
#include "util/progress.h"
#include "util/sys.h"

static int exec_tokenizer(int argc, char **argv);

const struct cmd_entry cmd_tokenizer_entry = {
    "tokenizer",
    "train --vocab N --out TOK FILE... | encode --tokenizer TOK TEXT | decode --tokenizer TOK "
    "ID...",
    "train a BPE tokenizer (llama2.c tokenizer.bin); encode or decode text with one",
    "train FILE...       learn a byte-level BPE vocabulary from text files\n"
    "  --vocab N         vocabulary size, including <unk> <s> </s> and the 256 byte\n"
    "                    tokens (default 1024; at least 261)\n"
    "  --out TOK         where to write tokenizer.bin (written atomically)\n"
    "encode TEXT         print the token ids (and pieces with --pieces) of TEXT\n"
    "  --tokenizer TOK   the tokenizer.bin to use\n"
    "  --bos / --eos     add <s> (with the dummy-prefix space) / </s>\n"
    "  --pieces          print one 'id<TAB>piece' line per token\n"
    "decode ID...        print the text of token ids\n"
    "  --tokenizer TOK   the tokenizer.bin to use\n"
    "  -h, --help        show this help\n",
    exec_tokenizer};

static const struct cmd_entry *E = &cmd_tokenizer_entry;

static void on_progress(void *ctx, int done, int total) {
    progress_update(ctx, done, NULL);
    (void)total;
}

static int train(int argc, char **argv) {
    static const struct option opts[] = {CLI_OPT_HELP,
                                         {"vocab", required_argument, NULL, 'v'},
                                         {"out", required_argument, NULL, 'o'},
                                         CLI_OPT_END};
    long vocab = 1024;
    const char *out = NULL;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'v':
            if (cli_parse_long(E, "--vocab", optarg, 261, TOK_MAX_VOCAB, &vocab)) return EXIT_USAGE;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            return cli_help(E);
        default:
            return cli_bad_option(E, argv, c);
        }
    }
    if (!out) return cli_usage_error(E, "train: --out TOK is required");
    if (optind >= argc) return cli_usage_error(E, "train: no corpus FILE given");
    int nf = argc - optind;
    char **texts = calloc((size_t)nf, sizeof(char *));
    size_t *lens = calloc((size_t)nf, sizeof(size_t));
    Err err = {0};
    int rc = texts && lens ? RLHF_OK : err_set(&err, RLHF_ENOMEM, "out of memory");
    size_t total = 0;
    for (int i = 0; !rc && i < nf; i++) {
        rc = sys_read_file(argv[optind + i], &texts[i], &lens[i], &err);
        total += lens[i];
    }
    if (!rc && total == 0) rc = err_set(&err, RLHF_EINVAL, "the corpus is empty");
    Tokenizer *tok = NULL;
    double t0 = now_seconds();
    if (!rc) {
        Progress p;
        progress_start(&p, "tokenizer train", "merges", vocab - 259, 0);
        rc = tok_train((const char *const *)texts, lens, nf, (int)vocab, on_progress, &p, &tok,
                       &err);
        progress_finish(&p, NULL);
    }
    double secs = now_seconds() - t0;
    if (!rc) rc = tok_save(tok, out, &err);
    if (!rc) {
        /* compression on (up to) the first MB of the first file */
        size_t n = lens[0] < (1u << 20) ? lens[0] : (1u << 20);
        int *ids = malloc(sizeof(int) * (size_t)tok_encode_cap(n));
        int nt = 0;
        if (ids && tok_encode(tok, texts[0], n, 0, 0, ids, tok_encode_cap(n), &nt, &err) == 0)
            printf("wrote %s: %d tokens (max length %d) from %.2f MB in %.1fs; %.2f bytes/token\n",
                   out, tok_vocab_size(tok), tok_max_token_length(tok), total / 1e6, secs,
                   nt ? (double)n / nt : 0.0);
        free(ids);
        if (tok_vocab_size(tok) < vocab)
            fprintf(stderr,
                    "rlhf tokenizer: note: the corpus ran out of pairs to merge at %d tokens\n",
                    tok_vocab_size(tok));
    }
    for (int i = 0; texts && i < nf; i++)
        free(texts[i]);
    free(texts);
    free(lens);
    tok_free(tok);
    return rc ? cli_fail(E, &err) : EXIT_OK;
}

/* A piece on one line: newline, tab, backslash and control bytes escaped. */
static void print_piece(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\\')
            fputs("\\\\", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            fputc(c, stdout);
    }
    fputc('\n', stdout);
}

static int encode_decode(int argc, char **argv, int decode) {
    static const struct option opts[] = {CLI_OPT_HELP,
                                         {"tokenizer", required_argument, NULL, 't'},
                                         {"bos", no_argument, NULL, 'b'},
                                         {"eos", no_argument, NULL, 'e'},
                                         {"pieces", no_argument, NULL, 'p'},
                                         CLI_OPT_END};
    const char *path = NULL;
    int bos = 0, eos = 0, pieces = 0, c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            path = optarg;
            break;
        case 'b':
            bos = 1;
            break;
        case 'e':
            eos = 1;
            break;
        case 'p':
            pieces = 1;
            break;
        case 'h':
            return cli_help(E);
        default:
            return cli_bad_option(E, argv, c);
        }
    }
    if (!path) return cli_usage_error(E, "%s: --tokenizer TOK is required", argv[0]);
    if (optind >= argc) return cli_usage_error(E, "%s: nothing to %s", argv[0], argv[0]);
    if (!decode && optind + 1 < argc)
        return cli_usage_error(E, "encode: give the text as one argument");
    Err err = {0};
    Tokenizer *tok;
    if (tok_load(path, &tok, &err)) return cli_fail(E, &err);
    int rc = RLHF_OK;
    if (decode) {
        int n = argc - optind;
        int *ids = malloc(sizeof(int) * (size_t)n);
        for (int i = 0; ids && i < n; i++) {
            char *end;
            errno = 0;
            long v = strtol(argv[optind + i], &end, 10);
            if (errno || end == argv[optind + i] || *end || v < 0 || v >= tok_vocab_size(tok)) {
                fprintf(stderr, "rlhf tokenizer: decode: '%s' is not a token id in 0..%d\n",
                        argv[optind + i], tok_vocab_size(tok) - 1);
                free(ids);
                tok_free(tok);
                return EXIT_USAGE;
            }
            ids[i] = (int)v;
        }
        char *text = NULL;
        size_t len = 0;
        rc = ids ? tok_decode(tok, ids, n, &text, &len, &err)
                 : err_set(&err, RLHF_ENOMEM, "out of memory");
        if (!rc) fwrite(text, 1, len, stdout), fputc('\n', stdout);
        free(text);
        free(ids);
    } else {
        const char *text = argv[optind];
        size_t len = strlen(text);
        int *ids = malloc(sizeof(int) * (size_t)tok_encode_cap(len)), n = 0;
        rc = ids ? tok_encode(tok, text, len, bos, eos, ids, tok_encode_cap(len), &n, &err)
                 : err_set(&err, RLHF_ENOMEM, "out of memory");
        for (int i = 0; !rc && i < n; i++) {
            if (pieces) {
                size_t pl;
                const char *p = tok_raw_piece(tok, ids[i], &pl);
                printf("%d\t", ids[i]);
                print_piece(p, pl);
            } else {
                printf(i ? " %d" : "%d", ids[i]);
            }
        }
        if (!rc && !pieces) printf("\n");
        free(ids);
    }
    tok_free(tok);
    return rc ? cli_fail(E, &err) : EXIT_OK;
}

static int exec_tokenizer(int argc, char **argv) {
    if (argc < 2) return cli_usage_error(E, "expected 'train', 'encode' or 'decode'");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) return cli_help(E);
    if (strcmp(argv[1], "train") == 0) return train(argc - 1, argv + 1);
    if (strcmp(argv[1], "encode") == 0) return encode_decode(argc - 1, argv + 1, 0);
    if (strcmp(argv[1], "decode") == 0) return encode_decode(argc - 1, argv + 1, 1);
    return cli_usage_error(E, "unknown subcommand '%s' (expected train, encode or decode)",
                           argv[1]);
}
