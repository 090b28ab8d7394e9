/* Scratch project databases for the unit tests: one as an older rlhf left it
 * (to test the migrations), opening it migrated, and removing one with its
 * WAL side files. */
#ifndef RLHF_TESTS_UNIT_PROJECT_DB_H
#define RLHF_TESTS_UNIT_PROJECT_DB_H

#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <unistd.h>

#include "db/db.h"

extern const char *const db_migrations[]; /* db/schema.c */

/* A project at path with schema `version`: the first `version` migrations,
 * rlhf's application id, then rows (SQL; may be NULL). */
static inline void project_at_schema(const char *path, int version, const char *rows) {
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
    for (int i = 0; i < version; i++)
        cr_assert_eq(sqlite3_exec(h, db_migrations[i], NULL, NULL, NULL), SQLITE_OK, "%s",
                     sqlite3_errmsg(h));
    char pragmas[96];
    snprintf(pragmas, sizeof pragmas, "PRAGMA application_id = 1380730950; PRAGMA user_version = %d;",
             version);
    cr_assert_eq(sqlite3_exec(h, rows ? rows : "", NULL, NULL, NULL), SQLITE_OK, "%s",
                 sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_exec(h, pragmas, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_close(h);
}

/* Opens the project at path (mode: DB_OPEN_*), which must migrate to this
 * rlhf's schema. */
static inline Db *open_migrated(const char *path, int mode) {
    Db *db;
    Err e = {0};
    int v = 0;
    cr_assert_eq(db_open(path, mode, &db, &e), 0, "%s", e.msg);
    cr_assert_eq(db_schema_version(db, &v, &e), 0, "%s", e.msg);
    cr_assert_eq(v, DB_SCHEMA_VERSION, "migrated to schema %d", v);
    return db;
}

/* Removes a database and its -wal and -shm files. */
static inline void unlink_db(const char *path) {
    char side[1100];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path), unlink(side);
    snprintf(side, sizeof side, "%s-shm", path), unlink(side);
}

#endif
