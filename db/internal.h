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

/* Statements with bound values. fmt has a letter a value, bound in order
 * from ?1: i int, I int64_t, d double, t text (copied; NULL binds NULL). A
 * letter after '?' takes an int before its value: 0 binds NULL instead (an
 * optional column). A statement may use fewer parameters than fmt binds. */
int db_bind(sqlite3_stmt *st, const char *fmt, ...);
int db_prepare_bind(Db *db, Err *err, sqlite3_stmt **st, const char *sql, const char *fmt, ...);
/* Steps st once: *row says whether it gave a row; an error fills err with "what". */
int db_step(Db *db, sqlite3_stmt *st, int *row, Err *err, const char *what);
/* Prepares, binds, runs to the end and finalizes a statement that returns no rows. */
int db_run(Db *db, Err *err, const char *what, const char *sql, const char *fmt, ...);
/* Runs a statement for the integer in the first column of its first row
 * (0 when it returns none). */
int db_query_id(Db *db, Err *err, const char *what, int64_t *out, const char *sql, const char *fmt, ...);

/* Makes room for element n in the array whose pointer is at ap (a T **),
 * holding *cap elements of size bytes, doubling from first. Out of memory:
 * RLHF_ENOMEM with err filled, the array and *cap unchanged. */
int db_grow(void *ap, int n, int *cap, int first, size_t size, Err *err);

/* After an INSERT ... ON CONFLICT DO NOTHING: whether it inserted a row
 * (also in *inserted, when not NULL), and then its rowid in *id (when not NULL). */
int db_took_insert(Db *db, int64_t *id, int *inserted);

/* Begins a transaction unless the caller holds one (*own says which), and
 * ends the one it began: commit on rc == 0, else roll back. */
int db_begin_own(Db *db, int *own, Err *err);
int db_end_own(Db *db, int own, int rc, Err *err);

/* A candidate's stored finish ("eos", "stop", "length") as CAND_FINISH_*. */
int db_finish_parse(const char *s);

extern const char *const db_migrations[];
extern const int db_n_migrations;

#endif
