/* Fuzz target: the JSONL importers, one binary per importer (FUZZ_IMPORTER:
 * 0 prompts, 1 candidates, 2 pairs, 3 hh). Every input runs inside one
 * transaction on a project opened once, rolled back afterwards, so each
 * starts from the same store: a project with one prompt and two candidates. */
#include <string.h>

#include "db/candidates.h"
#include "db/prompts.h"
#include "rm/import.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_IMPORTER
#define FUZZ_IMPORTER 0
#endif

static Db *db;

static void cleanup(void) {
    char p[300];
    const char *base = db ? db_path(db) : NULL;
    if (!base) return;
    snprintf(p, sizeof p, "%s", base);
    db_close(db);
    unlink(p);
    strcat(p, "-wal"), unlink(p);
    p[strlen(p) - 4] = 0, strcat(p, "-shm"), unlink(p);
}

static void open_project(void) {
    Err err = {0};
    char path[256];
    snprintf(path, sizeof path, "/tmp/rlhf-fuzz-%ld-project.db", (long)getpid());
    unlink(path);
    if (db_open(path, DB_OPEN_CREATE, &db, &err)) abort();
    atexit(cleanup);
    static const char seed[] =
        "{\"prompt\":\"Name a fruit.\",\"completion\":\"An apple.\",\"model\":\"a\"}\n"
        "{\"prompt\":\"Name a fruit.\",\"completion\":\"A pear.\",\"model\":\"b\"}\n";
    const char *f = fuzz_file("seed.jsonl", (const uint8_t *)seed, sizeof seed - 1);
    CandidateImportStats cs;
    if (db_begin(db, &err) || db_candidates_import_file(db, f, NULL, &cs, &err) ||
        db_commit(db, &err))
        abort();
    unlink(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!db) open_project();
    const char *path = fuzz_file("input.jsonl", data, size);
    Err err = {0};
    if (db_begin(db, &err)) abort();
#if FUZZ_IMPORTER == 0
    PromptImportStats st;
    db_prompts_import_file(db, path, NULL, &st, &err);
#elif FUZZ_IMPORTER == 1
    CandidateImportStats st;
    db_candidates_import_file(db, path, NULL, &st, &err);
#else
    ImportOptions o = {0};
    o.format = FUZZ_IMPORTER == 2 ? IMPORT_PAIRS : IMPORT_HH;
    ImportStats st;
    rm_import_file(db, path, &o, &st, &err);
#endif
    db_rollback(db);
    unlink(path);
    return 0;
}
