/* rlhf models: the model registry (checkpoints made here, external systems). */
#include "cli/cli.h"
#include "db/registry.h"

static int exec_models(int argc, char **argv);

const struct cmd_entry cmd_models_entry = {
    "models", "[--json]", "list the registered models (policies, reward models, external systems)",
    "  --json          JSON lines instead of a table\n" CLI_HELP_COMMON, exec_models};

static int print_model(const ModelRow *m, void *ctx) {
    if (*(int *)ctx) {
        printf("{\"id\":%lld,\"name\":", (long long)m->id);
        cli_json_string(stdout, m->name);
        printf(",\"kind\":\"%s\",\"path\":", m->kind);
        if (m->path) cli_json_string(stdout, m->path);
        else printf("null");
        printf(",\"parent_id\":");
        if (m->parent_id) printf("%lld", (long long)m->parent_id);
        else printf("null");
        printf(",\"sha256\":");
        if (m->sha256) cli_json_string(stdout, m->sha256);
        else printf("null");
        printf(",\"config\":%s,\"created_at\":\"%s\"}\n", m->config ? m->config : "null", m->created_at);
        return 0;
    }
    char parent[24] = "-";
    if (m->parent_id) snprintf(parent, sizeof parent, "%lld", (long long)m->parent_id);
    printf("%4lld  %-24s %-8s %-6s %s\n", (long long)m->id, cli_shown(m->name, 0),
           cli_shown(m->kind, 0), parent, m->path ? cli_shown(m->path, 0) : "-");
    return 0;
}

static int exec_models(int argc, char **argv) {
    const char *dbflag;
    int json;
    int done = cli_parse_db_json(&cmd_models_entry, argc, argv, &dbflag, &json);
    if (done >= 0) return done;
    Db *db;
    int rc = cli_open_db(&cmd_models_entry, dbflag, DB_OPEN_READONLY, &db);
    if (rc) return rc;
    Err err = {0};
    if (!json) printf("%4s  %-24s %-8s %-6s %s\n", "id", "name", "kind", "parent", "path");
    rc = db_models_each(db, print_model, &json, &err);
    db_close(db);
    return rc ? cli_fail(&cmd_models_entry, &err) : EXIT_OK;
}
