/* Shared option handling and error printing for the subcommands. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "db/registry.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/infer.h"
#include "model/seq.h"
#include "util/text.h"

#include <limits.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cli_help(const struct cmd_entry *e) {
    printf("usage: rlhf %s %s\n\n%s\n", e->name, e->usage, e->summary);
    if (e->help && *e->help) printf("\n%s", e->help);
    return EXIT_OK;
}

int cli_bad_option(const struct cmd_entry *e, char **argv, int c) {
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':') fprintf(stderr, "rlhf %s: option '%s' needs a value\n", e->name, arg);
    else if (optopt && optopt != c) fprintf(stderr, "rlhf %s: unknown option '-%c'\n", e->name, optopt);
    else fprintf(stderr, "rlhf %s: unknown option '%s'\n", e->name, arg);
    fprintf(stderr, "usage: rlhf %s %s\n(see: rlhf %s --help)\n", e->name, e->usage, e->name);
    return EXIT_USAGE;
}

int cli_usage_error(const struct cmd_entry *e, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "rlhf %s: ", e->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: rlhf %s %s\n(see: rlhf %s --help)\n", e->name, e->usage, e->name);
    return EXIT_USAGE;
}

int cli_check_template(const struct cmd_entry *e, const char *template) {
    Err err = {0};
    if (!seq_template_check(template, &err)) return 0;
    return cli_usage_error(e, "--template: %s", err.msg);
}

int cli_parse_weights(const struct cmd_entry *e, const char *s, int *w) {
    if (strcmp(s, "f32") == 0 || strcmp(s, "fp32") == 0) *w = INFER_WEIGHTS_F32;
    else if (strcmp(s, "bf16") == 0) *w = INFER_WEIGHTS_BF16;
    else if (strcmp(s, "auto") == 0) *w = INFER_WEIGHTS_AUTO;
    else return cli_usage_error(e, "--weights: '%s' is not f32, bf16 or auto", s);
    return 0;
}

int cli_fail(const struct cmd_entry *e, const Err *err) {
    fprintf(stderr, "rlhf %s: %s\n", e->name, err->msg[0] ? err->msg : err_code_name(err->code));
    return EXIT_FAIL;
}

const char *cli_db_path(const char *flag) {
    if (flag && *flag) return flag;
    const char *env = getenv("RLHF_DB");
    return env && *env ? env : NULL;
}

int cli_open_db(const struct cmd_entry *e, const char *flag, int mode, Db **db) {
    const char *path = cli_db_path(flag);
    if (!path) return cli_usage_error(e, "no database given: pass --db PATH or set RLHF_DB");
    Err err = {0};
    if (db_open(path, mode, db, &err)) return cli_fail(e, &err);
    return EXIT_OK;
}

int cli_parse_long(const struct cmd_entry *e, const char *flag, const char *s, long min, long max,
                   long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        /* a bound that only guards overflow is not worth reading out */
        if (max >= (1L << 31) && min == 1) return cli_usage_error(e, "%s: '%s' is not a positive whole number", flag, s);
        if (max >= (1L << 31)) return cli_usage_error(e, "%s: '%s' is not a whole number %ld or more", flag, s, min);
        return cli_usage_error(e, "%s: '%s' is not a whole number from %ld to %ld", flag, s, min, max);
    }
    *out = v;
    return EXIT_OK;
}

int cli_parse_double(const struct cmd_entry *e, const char *flag, const char *s, double min,
                     double max, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max)) {
        if (max >= 1e15) return cli_usage_error(e, "%s: '%s' is not a number %g or more", flag, s, min);
        return cli_usage_error(e, "%s: '%s' is not a number from %g to %g", flag, s, min, max);
    }
    *out = v;
    return EXIT_OK;
}

void cli_getopt_reset(void) {
    optind = 0; /* glibc: 0 re-initialises the scanner completely */
    opterr = 0;
    optopt = 0;
}

static size_t control_at(const unsigned char *p, int keep_newlines) {
    if (keep_newlines && (*p == '\n' || *p == '\t')) return 0;
    return text_control_at((const char *)p);
}

const char *cli_shown(const char *s, int keep_newlines) {
    static StrBuf ring[8];
    static int next;
    if (!s) return "(null)";
    const unsigned char *p = (const unsigned char *)s;
    for (; *p && !control_at(p, keep_newlines); p++) {}
    if (!*p) return s; /* nothing to show differently: no copy */
    StrBuf *b = &ring[next];
    next = (next + 1) % 8;
    b->len = 0;
    for (p = (const unsigned char *)s; *p; p++) {
        size_t n = control_at(p, keep_newlines);
        int rc = n == 2   ? sb_printf(b, "\\u%04x", p[1])
                 : *p == '\n' && n ? sb_puts(b, "\\n")
                 : n              ? sb_printf(b, "\\x%02x", *p)
                                  : sb_append(b, (const char *)p, 1);
        if (rc) return "(out of memory)";
        p += n == 2;
    }
    return b->s;
}

int cli_json_print(cJSON *j) {
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!s) return fprintf(stderr, "rlhf: out of memory\n"), EXIT_FAIL;
    puts(s);
    free(s);
    return EXIT_OK;
}

cJSON *cli_json_num(cJSON *obj, const char *key, double x, int digits) {
    double k = pow(10, digits);
    /* rounded as the tables show it; cJSON then writes the shortest form */
    return cJSON_AddNumberToObject(obj, key, isfinite(x) ? round(x * k) / k : x);
}

cJSON *cli_json_g(cJSON *obj, const char *key, double x) {
    if (!isfinite(x)) return cJSON_AddNullToObject(obj, key);
    char buf[32];
    snprintf(buf, sizeof buf, "%.6g", x);
    return cJSON_AddNumberToObject(obj, key, strtod(buf, NULL));
}

cJSON *cli_json_u64(cJSON *obj, const char *key, unsigned long long v) {
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", v); /* exact, where a double would round */
    return cJSON_AddRawToObject(obj, key, buf);
}

int cli_dispatch(const struct cmd_entry *e, const struct cli_sub *subs, int argc, char **argv) {
    char names[256] = "";
    for (int i = 0; subs[i].name; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s'%s'",
                 i == 0 ? "" : subs[i + 1].name ? ", " : " or ", subs[i].name);
    if (argc < 2) return cli_usage_error(e, "expected %s", names);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) return cli_help(e);
    for (int i = 0; subs[i].name; i++)
        if (strcmp(argv[1], subs[i].name) == 0) return subs[i].exec(argc - 1, argv + 1);
    return cli_usage_error(e, "unknown subcommand '%s' (expected %s)", argv[1], names);
}

int cli_open_db_json(const struct cmd_entry *e, int argc, char **argv, Db **db, int *json) {
    const char *dbflag = NULL;
    *json = 0;
    const CliOpt opts[] = {CLI_O_DB(&dbflag), CLI_O_FLAG("json", json), CLI_O_END};
    int rc = cli_opts_parse(e, argc, argv, opts, NULL);
    if (rc >= 0) return rc;
    rc = cli_open_db(e, dbflag, DB_OPEN_READONLY, db);
    return rc ? rc : -1;
}

int cli_rm_id(Db *db, const char *path_or_name, int64_t *id, Err *err) {
    ModelRow row;
    if (cli_model_find(db, path_or_name, &row, NULL))
        return err_set(err, RLHF_ENOTFOUND, "no reward model '%s' is registered", path_or_name);
    *id = row.id;
    int rc = strcmp(row.kind, "rm") == 0
                 ? RLHF_OK
                 : err_set(err, RLHF_EINVAL, "%s is registered as a %s model, not as a reward model",
                           path_or_name, row.kind);
    db_model_row_free(&row);
    return rc;
}

int cli_model_find(Db *db, const char *path_or_name, ModelRow *out, Err *err) {
    char abs[PATH_MAX];
    if (realpath(path_or_name, abs) && db_model_get(db, abs, out, NULL) == RLHF_OK) return RLHF_OK;
    return db_model_get(db, path_or_name, out, err);
}
