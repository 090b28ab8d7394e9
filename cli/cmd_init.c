/* rlhf init PATH: creates (or migrates) a project database. */
#include "cli/cli.h"

#include <sys/stat.h>

static int exec_init(int argc, char **argv);

const struct cmd_entry cmd_init_entry = {
    "init", "[PATH]", "create a project database (one SQLite file)",
    "PATH defaults to --db or $RLHF_DB. An existing project is migrated to this\n"
    "version's schema and left otherwise unchanged.\n\n" CLI_HELP_COMMON,
    exec_init};

static int exec_init(int argc, char **argv) {
    static const struct option opts[] = {CLI_OPT_DB, CLI_OPT_HELP, CLI_OPT_END};
    const char *dbflag = NULL;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'D': dbflag = optarg; break;
        case 'h': return cli_help(&cmd_init_entry);
        default: return cli_bad_option(&cmd_init_entry, argv, c);
        }
    }
    if (argc - optind > 1) return cli_usage_error(&cmd_init_entry, "expected one PATH");
    const char *path = optind < argc ? argv[optind] : cli_db_path(dbflag);
    if (!path) return cli_usage_error(&cmd_init_entry, "no PATH given (or --db / $RLHF_DB)");
    struct stat sb;
    int existed = stat(path, &sb) == 0;
    Db *db;
    int rc = cli_open_db(&cmd_init_entry, path, DB_OPEN_CREATE, &db);
    if (rc) return rc;
    int v = 0;
    db_schema_version(db, &v, NULL);
    db_close(db);
    printf("%s project %s (schema version %d)\n", existed ? "opened" : "created", path, v);
    return EXIT_OK;
}
