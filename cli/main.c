/* rlhf: one binary for the whole human-feedback loop. The command table is
 * built from cli/cmd_*.c (see the Makefile's cli_table.h rule). */
#include "cli/cli.h"
#include "model/blas_select.h"
#include "model/dist.h"
#include "model/hf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CMD(x) extern const struct cmd_entry x;
#include "cli_table.h"
#undef CMD

static const struct cmd_entry *const commands[] = {
#define CMD(x) &x,
#include "cli_table.h"
#undef CMD
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const struct cmd_entry *find(const char *name) {
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0) return commands[i];
    return NULL;
}

static void usage(FILE *f) {
    fprintf(f, "usage: rlhf COMMAND [OPTIONS]   (rlhf help COMMAND for its options)\n\n"
               "The human-feedback loop: prompts -> gen -> label -> export -> train-rm -> ppo/dpo.\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "\nEvery command takes --db PATH (default $RLHF_DB) and --help; --db and --context\n"
               "may also come before the command (rlhf --db my.db status).\n");
}

/* The commands that split their batches over MPI ranks; any other command
 * under mpirun -np N>1 would only run N copies of itself, so it refuses. */
static int dist_supported(const char *name) {
    static const char *const ok[] = {"pretrain", "sft", "dpo", "train-rm", "ppo"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(ok[i], name) == 0) return 1;
    return 0;
}

/* Global options before the command, as git takes `git -C DIR log`:
 * `rlhf --db X import ...`. --db becomes $RLHF_DB for the command (a --db
 * after the command still wins); --context is the command's --context (one
 * after the command wins). They are taken out of argv, so argv[1] is the
 * command again. Returns EXIT_OK or EXIT_USAGE (reported). */
static int take_globals(int *argc, char **argv, const char **context) {
    int i = 1;
    while (i < *argc && strncmp(argv[i], "--", 2) == 0 && argv[i][2]) {
        const char *a = argv[i], *v = NULL;
        int k = 2;
        if (strncmp(a, "--db=", 5) == 0 || strncmp(a, "--context=", 10) == 0)
            v = strchr(a, '=') + 1, k = 1;
        else if (strcmp(a, "--db") == 0 || strcmp(a, "--context") == 0)
            v = i + 1 < *argc ? argv[i + 1] : NULL;
        else
            break; /* --help, --version, or not ours: main decides */
        int db = a[2] == 'd';
        if (!v || !*v) {
            fprintf(stderr, "rlhf: %s needs a value\n", db ? "--db" : "--context");
            return EXIT_USAGE;
        }
        if (db)
            setenv("RLHF_DB", v, 1);
        else
            *context = v;
        i += k;
    }
    if (i < *argc && strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i], "--help") &&
        strcmp(argv[i], "--version")) {
        fprintf(stderr, "rlhf: unknown option '%s' before the command (global options: --db PATH, "
                        "--context N)\n",
                argv[i]);
        return EXIT_USAGE;
    }
    memmove(argv + 1, argv + i, (size_t)(*argc - i + 1) * sizeof *argv);
    *argc -= i - 1;
    return EXIT_OK;
}

/* --context N (or the global option's, or $RLHF_CONTEXT), taken out of argv
 * before the command parses it: every command that reads a Hugging Face
 * model accepts it. */
static int take_context(const struct cmd_entry *e, const char *global, int *argc, char **argv) {
    const char *v = getenv("RLHF_CONTEXT"), *from = "RLHF_CONTEXT";
    if (global) v = global, from = "--context";
    for (int i = 2; i < *argc; i++) {
        int eq = strncmp(argv[i], "--context=", 10) == 0;
        if (strcmp(argv[i], "--") == 0) break;
        if (!eq && strcmp(argv[i], "--context") != 0) continue;
        if (!eq && i + 1 >= *argc) {
            fprintf(stderr, "rlhf %s: --context needs a value\n", e->name);
            return EXIT_USAGE;
        }
        v = eq ? argv[i] + 10 : argv[i + 1];
        from = "--context";
        int k = eq ? 1 : 2;
        memmove(argv + i, argv + i + k, (size_t)(*argc - i - k + 1) * sizeof *argv);
        *argc -= k;
        i--;
    }
    if (!v || !*v) return EXIT_OK;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (*end || errno || n < 16 || n > 1 << 20) {
        fprintf(stderr, "rlhf %s: %s: '%s' is not a context length (16 to 1048576 tokens)\n", e->name,
                from, v);
        return EXIT_USAGE;
    }
    hf_set_context((int)n);
    return EXIT_OK;
}

int main(int argc, char **argv) {
    blas_select_at_start(argv);
    const char *context = NULL;
    if (take_globals(&argc, argv, &context) != EXIT_OK) return EXIT_USAGE;
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("rlhf %s (schema %d)\n", RLHF_VERSION, DB_SCHEMA_VERSION);
        printf("BLAS: OpenBLAS kernel %s (%s)\n", blas_kernel(), blas_kernel_reason());
        printf("CPU: %s\n", blas_cpu_name());
        printf("MPI: %s\n", dist_describe());
        return EXIT_OK;
    }
    if (strcmp(name, "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return EXIT_OK;
        }
        const struct cmd_entry *e = find(argv[2]);
        if (!e) {
            fprintf(stderr, "rlhf: unknown command '%s' (see: rlhf --help)\n", argv[2]);
            return EXIT_USAGE;
        }
        return cli_help(e);
    }
    const struct cmd_entry *e = find(name);
    if (!e) {
        fprintf(stderr, "rlhf: unknown command '%s' (see: rlhf --help)\n", name);
        return EXIT_USAGE;
    }
    if (take_context(e, context, &argc, argv) != EXIT_OK) return EXIT_USAGE;
    cli_getopt_reset();
    dist_init(&argc, &argv);
    if (dist_rank() != 0) {
        /* rank 0 alone speaks on stdout and draws progress */
        if (!freopen("/dev/null", "w", stdout)) return EXIT_FAIL;
        unsetenv("RLHF_PROGRESS");
    }
    if (dist_size() > 1 && !dist_supported(e->name)) {
        if (dist_rank() == 0)
            fprintf(stderr, "rlhf %s: does not run data-parallel; run it without mpirun (%d ranks here)\n",
                    e->name, dist_size());
        dist_finalize();
        return EXIT_USAGE;
    }
    int rc = e->exec(argc - 1, argv + 1);
    /* results go to stdout: a full disk or a closed pipe must not pass for
     * success (the error flag stays set from the first failed write) */
    errno = 0;
    int failed = fflush(stdout) != 0 || ferror(stdout);
    if (failed && rc == EXIT_OK) {
        fprintf(stderr, "rlhf %s: writing standard output failed: %s\n", e->name,
                errno ? strerror(errno) : "a write failed");
        rc = EXIT_FAIL;
    }
    /* a rank that failed must not leave the others waiting in a collective */
    if (rc != EXIT_OK && !dist_agreed_stop()) dist_abort(rc);
    dist_finalize();
    return rc;
}
