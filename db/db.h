/* The project store: one SQLite file per project. This module is the only code
 * that speaks SQL. Db owns the sqlite3 handle; every function returns a status
 * and fills Err. Writes happen inside db_begin/db_commit (BEGIN IMMEDIATE), so
 * several processes can write at once: they queue on the busy timeout. */
#ifndef RLHF_DB_H
#define RLHF_DB_H

#include <stdint.h>

#include "util/err.h"

/* The schema version this build writes (PRAGMA user_version). Older files are
 * migrated forward on open; newer ones are refused. */
#define DB_SCHEMA_VERSION 8

typedef struct Db Db;

enum { DB_OPEN_EXISTING = 0, DB_OPEN_CREATE = 1, DB_OPEN_READONLY = 2 };

int db_open(const char *path, int mode, Db **out, Err *err);
void db_close(Db *db);
const char *db_path(const Db *db);
int db_schema_version(Db *db, int *version, Err *err);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. Not nestable. */
int db_begin(Db *db, Err *err);
int db_commit(Db *db, Err *err);
void db_rollback(Db *db);

/* Project settings (key/value), e.g. "label.flags", "label.guidelines", "gen.template". */
int db_setting_get(Db *db, const char *key, char **value, Err *err); /* *value NULL if unset; caller frees */
int db_setting_set(Db *db, const char *key, const char *value, Err *err);
int db_setting_delete(Db *db, const char *key, Err *err); /* no such key: done */
/* db_setting_set without waiting for another writer's lock: RLHF_EBUSY then,
 * for the caller to try again later (the labeling screen's drafts). */
int db_setting_try_set(Db *db, const char *key, const char *value, Err *err);

#endif
