/* rlhf models: the model registry (checkpoints made here, external systems). */
#include "cli/cli.h"
#include "db/registry.h"
#include "model/checkpoint.h"

#include <string.h>

static int exec_models(int argc, char **argv);

const struct cmd_entry cmd_models_entry = {
    "models", "[--json] | verify CKPT...",
    "list the registered models (policies, reward models, external systems); verify checkpoints",
    "  --json          JSON lines instead of a table\n"
    "  verify CKPT...  read each checkpoint whole against its sha256 (a load checks only\n"
    "                  its header, sizes, tokenizer and training state, to start fast)\n" CLI_HELP_COMMON,
    exec_models};

/* rlhf models verify CKPT...: exit 1 when any file is corrupt */
static int exec_verify(int argc, char **argv) {
    if (argc < 2) return cli_usage_error(&cmd_models_entry, "verify: no checkpoint given");
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        Err err = {0};
        int has = 0;
        if (model_verify(argv[i], &has, &err)) {
            bad = cli_fail(&cmd_models_entry, &err);
        } else {
            printf("%s: ok (%s)\n", argv[i],
                   has ? "sha256 matches" : "llama2.c format: sizes check, it carries no checksum");
        }
    }
    return bad ? EXIT_FAIL : EXIT_OK;
}

static int print_model(const ModelRow *m, void *ctx) {
    if (*(int *)ctx) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "id", (double)m->id);
        cJSON_AddStringToObject(j, "name", m->name);
        cJSON_AddStringToObject(j, "kind", m->kind);
        m->path ? cJSON_AddStringToObject(j, "path", m->path) : cJSON_AddNullToObject(j, "path");
        m->parent_id ? cJSON_AddNumberToObject(j, "parent_id", (double)m->parent_id)
                     : cJSON_AddNullToObject(j, "parent_id");
        m->sha256 ? cJSON_AddStringToObject(j, "sha256", m->sha256) : cJSON_AddNullToObject(j, "sha256");
        /* the stored config is JSON; anything else goes out as a string */
        cJSON *cfg = m->config ? cJSON_Parse(m->config) : cJSON_CreateNull();
        if (!cfg) cfg = cJSON_CreateString(m->config);
        cJSON_AddItemToObject(j, "config", cfg);
        cJSON_AddStringToObject(j, "created_at", m->created_at);
        return cli_json_print(j);
    }
    char parent[24] = "-";
    if (m->parent_id) snprintf(parent, sizeof parent, "%lld", (long long)m->parent_id);
    printf("%4lld  %-24s %-8s %-6s %s\n", (long long)m->id, cli_shown(m->name, 0),
           cli_shown(m->kind, 0), parent, m->path ? cli_shown(m->path, 0) : "-");
    return 0;
}

static int exec_models(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "verify") == 0) return exec_verify(argc - 1, argv + 1);
    Db *db;
    int json;
    int rc = cli_open_db_json(&cmd_models_entry, argc, argv, &db, &json);
    if (rc >= 0) return rc;
    Err err = {0};
    if (!json) printf("%4s  %-24s %-8s %-6s %s\n", "id", "name", "kind", "parent", "path");
    rc = db_models_each(db, print_model, &json, &err);
    db_close(db);
    return rc ? cli_fail(&cmd_models_entry, &err) : EXIT_OK;
}
