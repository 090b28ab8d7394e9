/* Fuzz target: opening a corrupted project database (the input is the
 * whole file) for reading and for writing (which migrates), then the reads
 * status, listing and export do. */
#include <string.h>

#include "db/prompts.h"
#include "db/rankings.h"
#include "db/status.h"
#include "tests/fuzz/fuzz.h"

static int count_prompt(const PromptRow *r, void *ctx) {
    (void)r;
    ++*(int *)ctx;
    return 0;
}
static int count_ranking(const RankingRow *r, void *ctx) {
    *(int *)ctx += r->n_items;
    return 0;
}

static void reads(Db *db) {
    Err err = {0};
    DbStatus s;
    if (db_status(db, &s, &err) == RLHF_OK) db_status_free(&s);
    int n = 0;
    db_prompts_each(db, NULL, count_prompt, &n, &err);
    db_rankings_each(db, NULL, count_ranking, &n, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("project.db", data, size);
    char p[300];
    snprintf(p, sizeof p, "%s", path);
    for (int mode = 0; mode < 2; mode++) {
        Db *db = NULL;
        Err err = {0};
        if (db_open(p, mode ? DB_OPEN_EXISTING : DB_OPEN_READONLY, &db, &err) == RLHF_OK) {
            reads(db);
            db_close(db);
        }
    }
    unlink(p);
    size_t n = strlen(p);
    strcat(p, "-wal"), unlink(p);
    p[n] = 0, strcat(p, "-shm"), unlink(p);
    return 0;
}
