/* Helpers shared by the files of db/ only; nothing outside db/ includes this. */
#ifndef RLHF_DB_INTERNAL_H
#define RLHF_DB_INTERNAL_H

#include <sqlite3.h>

#include "db/db.h"

struct Db {
    sqlite3 *h;
    char path[1024];
    int in_tx;
    sqlite3_stmt *stage; /* an open prompt import's insert into temp.prompt_stage */
};

/* Fills err with "what: sqlite's message" and returns RLHF_EDB (RLHF_EBUSY when locked). */
int db_fail(Db *db, Err *err, const char *what);
int db_prepare(Db *db, const char *sql, sqlite3_stmt **st, Err *err);
int db_exec(Db *db, const char *sql, Err *err);
/* Binds text or NULL. */
int db_bind_text(sqlite3_stmt *st, int i, const char *s);
/* strdup of a column (NULL stays NULL). */
char *db_col_strdup(sqlite3_stmt *st, int i);
/* A column the schema holds NOT NULL read back NULL (or a row it points to is
 * missing): a hand-edited database. Fills err naming the row; returns RLHF_EFORMAT. */
int db_null_column(Db *db, Err *err, const char *table, int64_t id, const char *column);
/* Runs a statement expected to return one integer row. */
int db_query_int(Db *db, const char *sql, int64_t *out, Err *err);

extern const char *const db_migrations[];
extern const int db_n_migrations;

#endif
