/* Table-driven option parsing (opts.h) over getopt_long. */
#include "cli/opts.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_OPTS = 128, CODE0 = 1000 };

/* The table flattened (included tables inline), --help last. */
static int flatten(const CliOpt *t, const CliOpt **flat, int n) {
    for (; t && t->name; t++) {
        if (t->kind == CLI_OPT_TABLE) n = flatten(t->sub, flat, n);
        else if (n < MAX_OPTS) flat[n++] = t;
    }
    return n;
}

/* A bound held as a double as a long: LONG_MAX does not survive the round trip. */
static long bound(double x) {
    return x >= 0x1p63 ? LONG_MAX : x <= -0x1p63 ? LONG_MIN : (long)x;
}

static int take(const struct cmd_entry *e, const CliOpt *o, const char *arg) {
    char flag[64];
    if (*o->name) snprintf(flag, sizeof flag, "--%s", o->name);
    else snprintf(flag, sizeof flag, "-%c", o->short_name);
    long l;
    double d;
    switch (o->kind) {
    case CLI_OPT_STR:
        *(const char **)o->dst = arg;
        break;
    case CLI_OPT_LONG:
        if (cli_parse_long(e, flag, arg, bound(o->lo), bound(o->hi), (long *)o->dst)) return EXIT_USAGE;
        break;
    case CLI_OPT_INT:
        if (cli_parse_long(e, flag, arg, bound(o->lo), bound(o->hi), &l)) return EXIT_USAGE;
        *(int *)o->dst = (int)l;
        break;
    case CLI_OPT_DBL:
        if (cli_parse_double(e, flag, arg, o->lo, o->hi, &d)) return EXIT_USAGE;
        *(double *)o->dst = d;
        break;
    case CLI_OPT_FLOAT:
        if (cli_parse_double(e, flag, arg, o->lo, o->hi, &d)) return EXIT_USAGE;
        *(float *)o->dst = (float)d;
        break;
    case CLI_OPT_FLAG:
        *(int *)o->dst = (int)o->lo;
        break;
    case CLI_OPT_LIST: {
        CliList *li = o->dst;
        const char **v = realloc(li->v, sizeof *v * (size_t)(li->n + 1));
        if (!v) return fprintf(stderr, "rlhf %s: out of memory\n", e->name), EXIT_FAIL;
        li->v = v;
        li->v[li->n++] = arg;
        break;
    }
    case CLI_OPT_WORD: {
        char list[256] = "";
        for (int i = 0; o->words[i]; i++) {
            if (!strcmp(arg, o->words[i])) {
                *(int *)o->dst = i;
                goto seen;
            }
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                     i == 0 ? "" : o->words[i + 1] ? ", " : " or ", o->words[i]);
        }
        if (!o->msg) return cli_usage_error(e, "%s: expected %s, got '%s'", flag, list, arg);
        char msg[512];
        snprintf(msg, sizeof msg, o->msg, arg);
        return cli_usage_error(e, "%s: %s", flag, msg);
    }
    case CLI_OPT_CALL:
    case CLI_OPT_SWITCH: {
        int rc = o->call(e, o, arg);
        if (rc) return rc;
        break;
    }
    case CLI_OPT_TABLE:
        break;
    }
seen:
    if (o->seen) *o->seen = 1;
    return 0;
}

int cli_opts_parse(const struct cmd_entry *e, int argc, char **argv, const CliOpt *opts,
                   CliList *rest) {
    const CliOpt *flat[MAX_OPTS];
    int n = flatten(opts, flat, 0);
    struct option lo[MAX_OPTS + 2];
    char shorts[2 * MAX_OPTS + 4] = ":h";
    size_t ns = 2;
    int nl = 0;
    for (int i = 0; i < n; i++) {
        int arg = flat[i]->kind != CLI_OPT_FLAG && flat[i]->kind != CLI_OPT_SWITCH;
        if (*flat[i]->name)
            lo[nl++] = (struct option){flat[i]->name, arg ? required_argument : no_argument, NULL, CODE0 + i};
        if (flat[i]->short_name) {
            shorts[ns++] = flat[i]->short_name;
            if (arg) shorts[ns++] = ':';
        }
    }
    shorts[ns] = 0;
    lo[nl] = (struct option){"help", no_argument, NULL, 'h'};
    lo[nl + 1] = (struct option){NULL, 0, NULL, 0};
    cli_getopt_reset();
    int c;
    while ((c = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        const CliOpt *o = NULL;
        if (c >= CODE0 && c < CODE0 + n) o = flat[c - CODE0];
        for (int i = 0; !o && i < n; i++)
            if (flat[i]->short_name && flat[i]->short_name == c) o = flat[i];
        if (o) {
            int rc = take(e, o, optarg);
            if (rc == CLI_OPTS_DONE) return EXIT_OK;
            if (rc) return rc;
        } else if (c == 'h') {
            return cli_help(e);
        } else {
            return cli_bad_option(e, argv, c);
        }
    }
    for (; optind < argc; optind++) {
        if (!rest) return cli_usage_error(e, "unexpected argument '%s'", argv[optind]);
        CliOpt li = CLI_O_LIST("", rest);
        int rc = take(e, &li, argv[optind]);
        if (rc) return rc;
    }
    return -1;
}
