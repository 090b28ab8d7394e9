/* The shared training options (train_opts.h). */
#include "cli/train_opts.h"

#include <limits.h>
#include <string.h>

void cli_train_table(TrainOpts *o, unsigned which, CliOpt t[CLI_TRAIN_MAX]) {
    const CliOpt all[] = {
        CLI_O_DB(&o->db),
        CLI_O_STR("out", &o->out),
        CLI_O_STR("name", &o->name),
        CLI_O_LONG("save-every", &o->save_every, 1, 1L << 40),
        CLI_O_FLAG("resume", &o->resume),
        CLI_O_FLAG("force", &o->force),
        CLI_O_LONG("seed", &o->seed, 0, LONG_MAX),
        CLI_O_LONG("threads", &o->threads, 1, 256),
    };
    const struct {
        unsigned group;
        CliOpt opt;
    } some[] = {
        {CLI_TRAIN_STEPS, CLI_O_LONG("steps", &o->steps, 1, 1L << 40)},
        {CLI_TRAIN_DATA, CLI_O_STR("data", &o->data)},
        {CLI_TRAIN_DATA, CLI_O_STR("tokenizer", &o->tok_path)},
        {CLI_TRAIN_DATA, CLI_O_STR("template", &o->template)},
        {CLI_TRAIN_EPOCHS, CLI_O_LONG("epochs", &o->epochs, 1, 1 << 20)},
        {CLI_TRAIN_ACCUM, CLI_O_LONG("accum", &o->accum, 1, 1 << 16)},
        {CLI_TRAIN_ACCUM, CLI_O_FLAG("group-by-length", &o->group)},
        {CLI_TRAIN_VAL, CLI_O_DBL("val-frac", &o->val_frac, 0, 0.9)},
        {CLI_TRAIN_SCHEDULE, CLI_O_LONG("batch", &o->batch, 1, 1 << 16)},
        {CLI_TRAIN_SCHEDULE, CLI_O_DBL("lr", &o->lr, 0, 10)},
        {CLI_TRAIN_SCHEDULE, CLI_O_DBL("min-lr", &o->min_lr, 0, 10)},
        {CLI_TRAIN_SCHEDULE, CLI_O_LONG("warmup", &o->warmup, 0, 1L << 40)},
        {CLI_TRAIN_SCHEDULE, CLI_O_DBL("weight-decay", &o->wd, 0, 10)},
        {CLI_TRAIN_SCHEDULE, CLI_O_DBL("clip", &o->clip, 0, 1e9)},
        {CLI_TRAIN_SCHEDULE, CLI_O_LONG("eval-every", &o->eval_every, 1, 1L << 40)},
        {CLI_TRAIN_LORA, CLI_O_INT("lora", &o->lora.rank, 1, 4096)},
        {CLI_TRAIN_LORA, CLI_O_FLOAT("lora-alpha", &o->lora.alpha, 1e-6, 1e6)},
        {CLI_TRAIN_LORA, CLI_O_FLOAT("lora-dropout", &o->lora.dropout, 0, 0.99)},
        {CLI_TRAIN_LORA, CLI_O_STR("lora-targets", &o->lora_targets)},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) t[n++] = all[i];
    for (size_t i = 0; i < sizeof some / sizeof some[0]; i++)
        if (which & some[i].group) t[n++] = some[i].opt;
    t[n] = (CliOpt)CLI_O_END;
}

int cli_train_check(const struct cmd_entry *e, TrainOpts *o, unsigned which,
                    const char *init_flag) {
    if (init_flag && !o->init) return cli_usage_error(e, "%s CKPT is required", init_flag);
    o->db = cli_db_path(o->db);
    if ((which & CLI_TRAIN_DATA) && !o->data && !o->db)
        return cli_usage_error(e, "no data: give --db PATH (or $RLHF_DB) for the project's "
                                  "rankings, or --data FILE");
    if ((which & CLI_TRAIN_DATA) && !o->data) o->data = "store";
    if (!o->out) return cli_usage_error(e, "--out CKPT is required");
    if (o->template && cli_check_template(e, o->template)) return EXIT_USAGE;
    if (o->resume && o->force)
        return cli_usage_error(e, "--resume and --force contradict each other");
    if (o->init && !strcmp(o->init, o->out))
        return cli_usage_error(e, "--out must differ from %s", init_flag);
    if (o->min_lr < 0) o->min_lr = o->lr / 10;
    if (!o->lora.rank && (o->lora.alpha > 0 || o->lora.dropout >= 0 || o->lora_targets))
        return cli_usage_error(e, "--lora-alpha, --lora-dropout and --lora-targets need --lora R");
    if (o->lora.rank) {
        Err err = {0};
        if (o->lora_targets && lora_parse_targets(o->lora_targets, &o->lora.targets, &err))
            return cli_usage_error(e, "%s", err.msg);
        if (o->lora.dropout < 0) o->lora.dropout = 0.05f;
        if (lora_config_check(&o->lora, &err)) return cli_usage_error(e, "%s", err.msg);
    }
    return -1;
}

int cli_train(const struct cmd_entry *e, const Trainer *t, const void *opts) {
    Err err = {0};
    char line[512];
    int stopped;
    if (train_run(t, opts, &stopped, line, sizeof line, &err)) return cli_fail(e, &err);
    if (line[0]) printf("%s\n", line);
    return stopped ? EXIT_FAIL : EXIT_OK;
}
