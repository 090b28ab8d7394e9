/* The shared sampling options (sampling.h). */
#include "cli/sampling.h"

#include <limits.h>

/* --top-p in (0, 1]: the range's message first, then what the value must be */
static int take_top_p(const struct cmd_entry *e, const CliOpt *o, const char *arg) {
    double d;
    if (cli_parse_double(e, "--top-p", arg, 0, 1, &d) || d <= 0)
        return cli_usage_error(e, "--top-p: must be in (0, 1]");
    *(float *)o->ctx = (float)d;
    return 0;
}

void cli_sampling_table(SampleParams *p, long *seed, CliOpt t[CLI_S_N + 1]) {
    t[CLI_S_TEMPERATURE] = (CliOpt)CLI_O_FLOAT("temperature", &p->temperature, 0, 100);
    t[CLI_S_TOP_K] = (CliOpt)CLI_O_INT("top-k", &p->top_k, 0, 1 << 20);
    t[CLI_S_TOP_P] = (CliOpt)CLI_O_CALL("top-p", take_top_p, &p->top_p);
    t[CLI_S_MAX_TOKENS] = (CliOpt)CLI_O_INT("max-tokens", &p->max_tokens, 1, 1 << 20);
    t[CLI_S_SEED] = (CliOpt)CLI_O_LONG("seed", seed, 0, LONG_MAX);
    t[CLI_S_N] = (CliOpt)CLI_O_END;
}

int cli_take_stop(const struct cmd_entry *e, const CliOpt *o, const char *arg) {
    CliStops *s = o->ctx;
    if (!*arg) return cli_usage_error(e, "--stop: empty string");
    if (s->n == s->max) return cli_usage_error(e, "--stop: at most %d stop strings", s->max);
    s->v[s->n++] = arg;
    return 0;
}

int cli_take_weights(const struct cmd_entry *e, const CliOpt *o, const char *arg) {
    return cli_parse_weights(e, arg, o->ctx) ? EXIT_USAGE : 0;
}
