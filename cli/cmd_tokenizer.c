/* rlhf tokenizer train|encode|decode: train a BPE tokenizer (llama2.c
 * tokenizer.bin format) and look at how it, or a Hugging Face tokenizer.json,
 * splits text; --jsonl encodes and decodes whole files, one document a line. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "model/tokenizer.h"
#include "util/progress.h"
#include "util/sys.h"

static int exec_tokenizer(int argc, char **argv);

const struct cmd_entry cmd_tokenizer_entry = {
    "tokenizer",
    "train --vocab N --out TOK FILE... | encode --tokenizer TOK [--jsonl FILE] TEXT | decode "
    "--tokenizer TOK [--jsonl FILE] ID...",
    "train a BPE tokenizer (llama2.c tokenizer.bin); encode or decode text with one or with a "
    "Hugging Face tokenizer.json",
    "train FILE...       learn a byte-level BPE vocabulary from text files\n"
    "  --vocab N         vocabulary size, including <unk> <s> </s> and the 256 byte\n"
    "                    tokens (default 1024; at least 261)\n"
    "  --out TOK         where to write tokenizer.bin (written atomically)\n"
    "encode TEXT         print the token ids (and pieces with --pieces) of TEXT\n"
    "  --tokenizer TOK   a tokenizer.bin, or a Hugging Face model directory or\n"
    "                    tokenizer.json\n"
    "  --bos / --eos     add the start tokens (llama2.c: <s> and the dummy-prefix\n"
    "                    space; tokenizer.json: what its post-processor adds, as\n"
    "                    HF's add_special_tokens) / the end-of-sequence token\n"
    "  --special         turn special tokens written in the text (<|im_end|>) into\n"
    "                    their ids, as HF does by default; without it they are text\n"
    "  --pieces          print one 'id<TAB>piece' line per token\n"
    "  --jsonl FILE      encode every line of FILE ('-': stdin), each a JSON string\n"
    "                    (so newlines and any bytes fit), printing one line of ids\n"
    "                    per line; speed on stderr\n"
    "decode ID...        print the text of token ids (special tokens skipped)\n"
    "  --tokenizer TOK   as for encode\n"
    "  --jsonl FILE      decode every line of FILE ('-': stdin), each space-separated\n"
    "                    ids, printing each text as a JSON string line\n"
    "  -h, --help        show this help\n",
    exec_tokenizer};

static const struct cmd_entry *E = &cmd_tokenizer_entry;

static void on_progress(void *ctx, int done, int total) {
    progress_update(ctx, done, NULL);
    (void)total;
}

static int train(int argc, char **argv) {
    long vocab = 1024;
    const char *out = NULL;
    const CliOpt opts[] = {CLI_O_LONG("vocab", &vocab, 261, TOK_MAX_VOCAB), CLI_O_STR("out", &out),
                           CLI_O_END};
    CliList files = {0};
    int rc = cli_opts_parse(E, argc, argv, opts, &files);
    if (rc < 0 && !out) rc = cli_usage_error(E, "train: --out TOK is required");
    if (rc < 0 && files.n == 0) rc = cli_usage_error(E, "train: no corpus FILE given");
    if (rc >= 0) {
        free(files.v);
        return rc;
    }
    int nf = files.n;
    char **texts = calloc((size_t)nf, sizeof(char *));
    size_t *lens = calloc((size_t)nf, sizeof(size_t));
    Err err = {0};
    rc = texts && lens ? RLHF_OK : err_set(&err, RLHF_ENOMEM, "out of memory");
    size_t total = 0;
    for (int i = 0; !rc && i < nf; i++) {
        rc = sys_read_file(files.v[i], &texts[i], &lens[i], &err);
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
    free(files.v);
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

/* text as one JSON string line, escaped as JSON.stringify does (other bytes raw) */
static void print_json_string(const char *p, size_t n) {
    fputc('"', stdout);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        const char *esc = c == '"'    ? "\\\""
                          : c == '\\' ? "\\\\"
                          : c == '\n' ? "\\n"
                          : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t"
                          : c == '\b' ? "\\b"
                          : c == '\f' ? "\\f"
                                      : NULL;
        if (esc)
            fputs(esc, stdout);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            fputc(c, stdout);
    }
    fputs("\"\n", stdout);
}

/* One document per line of FILE: encode JSON strings to id lines, or decode id
 * lines to JSON strings. Bad lines are errors naming the line. */
static int run_jsonl(const char *tok_path, const char *file, int decode, int flags) {
    Err err = {0};
    Tokenizer *tok;
    if (tok_load(tok_path, &tok, &err)) return cli_fail(E, &err);
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
    if (!f) {
        tok_free(tok);
        err_set(&err, RLHF_EIO, "%s: %s", file, strerror(errno));
        return cli_fail(E, &err);
    }
    char *line = NULL;
    size_t lcap = 0, bytes = 0;
    ssize_t got;
    long lineno = 0;
    int rc = RLHF_OK, *ids = NULL, icap = 0;
    double t0 = now_seconds(), spent = 0;
    while (!rc && (got = getline(&line, &lcap, f)) != -1) {
        lineno++;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = '\0';
        if (decode) {
            int n = 0;
            for (char *p = line; !rc;) {
                while (*p == ' ')
                    p++;
                if (!*p) break;
                char *end;
                errno = 0;
                long v = strtol(p, &end, 10);
                if (errno || end == p || v < 0 || v >= tok_vocab_size(tok)) {
                    rc = err_set(&err, RLHF_EINVAL, "%s:%ld: '%.20s' is not a token id in 0..%d",
                                 file, lineno, p, tok_vocab_size(tok) - 1);
                    break;
                }
                if (n == icap) {
                    icap = icap ? icap * 2 : 1024;
                    int *x = realloc(ids, sizeof(int) * (size_t)icap);
                    if (!x)
                        rc = err_set(&err, RLHF_ENOMEM, "out of memory");
                    else
                        ids = x;
                }
                if (!rc) ids[n++] = (int)v;
                p = end;
            }
            char *text = NULL;
            size_t len = 0;
            if (!rc) rc = tok_decode(tok, ids, n, &text, &len, &err);
            if (!rc) print_json_string(text, len);
            free(text);
            continue;
        }
        cJSON *j = cJSON_ParseWithLength(line, (size_t)got);
        const cJSON *tx = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "text") : j;
        if (!cJSON_IsString(tx)) {
            cJSON_Delete(j);
            rc = err_set(&err, RLHF_EFORMAT, "%s:%ld: not a JSON string (or {\"text\": ...})", file,
                         lineno);
            break;
        }
        size_t len = strlen(tx->valuestring);
        int need = tok_encode_cap(len), n = 0;
        if (need > icap) {
            int *x = realloc(ids, sizeof(int) * (size_t)need);
            if (!x)
                rc = err_set(&err, RLHF_ENOMEM, "out of memory");
            else
                ids = x, icap = need;
        }
        double t1 = now_seconds();
        if (!rc) rc = tok_encode_flags(tok, tx->valuestring, len, flags, ids, icap, &n, &err);
        spent += now_seconds() - t1;
        bytes += len;
        for (int i = 0; !rc && i < n; i++)
            printf(i ? " %d" : "%d", ids[i]);
        if (!rc) fputc('\n', stdout);
        if (rc) err_prefix(&err, "%s:%ld: ", file, lineno);
        cJSON_Delete(j);
    }
    if (!rc && ferror(f)) rc = err_set(&err, RLHF_EIO, "%s: read error", file);
    if (f != stdin) fclose(f);
    if (!rc && !decode)
        fprintf(stderr,
                "rlhf tokenizer: encoded %ld lines, %.2f MB in %.3fs (%.2f MB/s; %.3fs in all)\n",
                lineno, bytes / 1e6, spent, spent > 0 ? bytes / 1e6 / spent : 0.0,
                now_seconds() - t0);
    free(line);
    free(ids);
    tok_free(tok);
    return rc ? cli_fail(E, &err) : EXIT_OK;
}

static int encode_decode(int argc, char **argv, int decode) {
    const char *path = NULL, *jsonl = NULL;
    int bos = 0, eos = 0, pieces = 0, special = 0;
    const CliOpt opts[] = {CLI_O_STR("tokenizer", &path), CLI_O_FLAG("bos", &bos),
                           CLI_O_FLAG("eos", &eos), CLI_O_FLAG("pieces", &pieces),
                           CLI_O_FLAG("special", &special), CLI_O_STR("jsonl", &jsonl), CLI_O_END};
    CliList in = {0};
    int rc = cli_opts_parse(E, argc, argv, opts, &in);
    free(in.v); /* the arguments are argv's last in.n: getopt moved them there */
    if (rc >= 0) return rc;
    char **args = argv + argc - in.n;
    if (!path) return cli_usage_error(E, "%s: --tokenizer TOK is required", argv[0]);
    int flags = (bos ? TOK_ADD_BOS : 0) | (eos ? TOK_ADD_EOS : 0) | (special ? TOK_SPECIAL : 0);
    if (jsonl) {
        if (in.n) return cli_usage_error(E, "%s: --jsonl takes no other input", argv[0]);
        return run_jsonl(path, jsonl, decode, flags);
    }
    if (!in.n) return cli_usage_error(E, "%s: nothing to %s", argv[0], argv[0]);
    if (!decode && in.n > 1) return cli_usage_error(E, "encode: give the text as one argument");
    Err err = {0};
    Tokenizer *tok;
    if (tok_load(path, &tok, &err)) return cli_fail(E, &err);
    if (decode) {
        int n = in.n;
        int *ids = malloc(sizeof(int) * (size_t)n);
        for (int i = 0; ids && i < n; i++) {
            char *end;
            errno = 0;
            long v = strtol(args[i], &end, 10);
            if (errno || end == args[i] || *end || v < 0 || v >= tok_vocab_size(tok)) {
                fprintf(stderr, "rlhf tokenizer: decode: '%s' is not a token id in 0..%d\n",
                        args[i], tok_vocab_size(tok) - 1);
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
        const char *text = args[0];
        size_t len = strlen(text);
        int *ids = malloc(sizeof(int) * (size_t)tok_encode_cap(len)), n = 0;
        rc = ids ? tok_encode_flags(tok, text, len, flags, ids, tok_encode_cap(len), &n, &err)
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
