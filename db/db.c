/* Opening, migrating and transacting on the project database. */
#include "db/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 'RLHF' in PRAGMA application_id marks our files. */
#define DB_APPLICATION_ID 0x524c4846

int db_fail(Db *db, Err *err, const char *what) {
    int ec = db && db->h ? sqlite3_errcode(db->h) : SQLITE_ERROR;
    const char *m = db && db->h ? sqlite3_errmsg(db->h) : "no database";
    int code = (ec == SQLITE_BUSY || ec == SQLITE_LOCKED) ? RLHF_EBUSY : RLHF_EDB;
    if (ec == SQLITE_READONLY) return err_set(err, RLHF_EDB, "%s: %s: database is read-only", db->path, what);
    return err_set(err, code, "%s: %s: %s", db ? db->path : "?", what, m);
}

int db_prepare(Db *db, const char *sql, sqlite3_stmt **st, Err *err) {
    if (sqlite3_prepare_v2(db->h, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return db_fail(db, err, "prepare");
    }
    return RLHF_OK;
}

int db_exec(Db *db, const char *sql, Err *err) {
    char *msg = NULL;
    if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int ec = sqlite3_errcode(db->h);
        err_set(err, ec == SQLITE_BUSY ? RLHF_EBUSY : RLHF_EDB, "%s: %s", db->path,
                msg ? msg : sqlite3_errmsg(db->h));
        sqlite3_free(msg);
        return err ? err->code : RLHF_EDB;
    }
    return RLHF_OK;
}

int db_bind_text(sqlite3_stmt *st, int i, const char *s) {
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

char *db_col_strdup(sqlite3_stmt *st, int i) {
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? strdup((const char *)s) : NULL;
}

int db_null_column(Db *db, Err *err, const char *table, int64_t id, const char *column) {
    return err_set(err, RLHF_EFORMAT,
                   "%s: %s %lld has no %s (NULL or missing: was the database edited by hand?)",
                   db->path, table, (long long)id, column);
}

int db_query_int(Db *db, const char *sql, int64_t *out, Err *err) {
    sqlite3_stmt *st;
    int rc = db_prepare(db, sql, &st, err);
    if (rc) return rc;
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    else if (s == SQLITE_DONE) *out = 0;
    else rc = db_fail(db, err, "query");
    sqlite3_finalize(st);
    return rc;
}

static void bind_args(sqlite3_stmt *st, const char *fmt, va_list ap) {
    for (int i = 1; *fmt; fmt++, i++) {
        int present = *fmt == '?' ? (fmt++, va_arg(ap, int)) : 1;
        switch (*fmt) {
        case 'i': {
            int v = va_arg(ap, int);
            present ? sqlite3_bind_int(st, i, v) : sqlite3_bind_null(st, i);
            break;
        }
        case 'I': {
            int64_t v = va_arg(ap, int64_t);
            present ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i);
            break;
        }
        case 'd': {
            double v = va_arg(ap, double);
            present ? sqlite3_bind_double(st, i, v) : sqlite3_bind_null(st, i);
            break;
        }
        case 't': {
            const char *v = va_arg(ap, const char *);
            db_bind_text(st, i, present ? v : NULL);
            break;
        }
        default: /* a letter no caller should write: leave the rest unbound (NULL) */
            return;
        }
    }
}

int db_bind(sqlite3_stmt *st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    bind_args(st, fmt, ap);
    va_end(ap);
    return RLHF_OK;
}

int db_prepare_bind(Db *db, Err *err, sqlite3_stmt **st, const char *sql, const char *fmt, ...) {
    int rc = db_prepare(db, sql, st, err);
    if (rc) return rc;
    va_list ap;
    va_start(ap, fmt);
    bind_args(*st, fmt, ap);
    va_end(ap);
    return RLHF_OK;
}

int db_step(Db *db, sqlite3_stmt *st, int *row, Err *err, const char *what) {
    int s = sqlite3_step(st);
    if (row) *row = s == SQLITE_ROW;
    return s == SQLITE_ROW || s == SQLITE_DONE ? RLHF_OK : db_fail(db, err, what);
}

int db_run(Db *db, Err *err, const char *what, const char *sql, const char *fmt, ...) {
    sqlite3_stmt *st;
    int rc = db_prepare(db, sql, &st, err);
    if (rc) return rc;
    va_list ap;
    va_start(ap, fmt);
    bind_args(st, fmt, ap);
    va_end(ap);
    if (sqlite3_step(st) != SQLITE_DONE) rc = db_fail(db, err, what);
    sqlite3_finalize(st);
    return rc;
}

int db_query_id(Db *db, Err *err, const char *what, int64_t *out, const char *sql, const char *fmt, ...) {
    sqlite3_stmt *st;
    *out = 0;
    int rc = db_prepare(db, sql, &st, err), row;
    if (rc) return rc;
    va_list ap;
    va_start(ap, fmt);
    bind_args(st, fmt, ap);
    va_end(ap);
    if (!(rc = db_step(db, st, &row, err, what)) && row) *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

int db_grow(void *ap, int n, int *cap, int first, size_t size, Err *err) {
    if (n < *cap) return RLHF_OK;
    void *a;
    memcpy(&a, ap, sizeof a); /* ap points at a T *, not a void * */
    int nc = *cap ? *cap * 2 : first;
    void *p = realloc(a, (size_t)nc * size);
    if (!p) return err_set(err, RLHF_ENOMEM, "out of memory");
    memcpy(ap, &p, sizeof p);
    *cap = nc;
    return RLHF_OK;
}

int db_took_insert(Db *db, int64_t *id, int *inserted) {
    int ins = sqlite3_changes(db->h) > 0;
    if (inserted) *inserted = ins;
    if (ins && id) *id = sqlite3_last_insert_rowid(db->h);
    return ins;
}

int db_begin_own(Db *db, int *own, Err *err) {
    *own = !db->in_tx;
    return *own ? db_begin(db, err) : RLHF_OK;
}

int db_end_own(Db *db, int own, int rc, Err *err) {
    if (!own) return rc;
    if (rc) db_rollback(db);
    else rc = db_commit(db, err);
    return rc;
}

static int migrate(Db *db, Err *err) {
    int64_t v;
    int rc = db_begin(db, err);
    if (rc) return rc;
    /* re-read inside the write lock: another process may have migrated meanwhile */
    rc = db_query_int(db, "PRAGMA user_version", &v, err);
    if (!rc && (v < 0 || v > db_n_migrations))
        rc = err_set(err, RLHF_EFORMAT, "%s: schema version %lld is not one rlhf knows (0..%d)",
                     db->path, (long long)v, db_n_migrations);
    for (int i = (int)v; !rc && i < db_n_migrations; i++) {
        rc = db_exec(db, db_migrations[i], err);
        if (rc) err_prefix(err, "migration %d -> %d: ", i, i + 1);
    }
    if (!rc && v < db_n_migrations) {
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d; PRAGMA application_id = %d;",
                 db_n_migrations, DB_APPLICATION_ID);
        rc = db_exec(db, sql, err);
    }
    if (rc) {
        db_rollback(db);
        return rc;
    }
    return db_commit(db, err);
}

/* 1 when a plain read-only open reads the database, -wal included (it can
 * when -shm exists or can be made). */
static int readable_with_wal(const char *path) {
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
             sqlite3_prepare_v2(h, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) ==
                 SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    sqlite3_close_v2(h);
    return ok;
}

int db_open(const char *path, int mode, Db **out, Err *err) {
    *out = NULL;
    if (!path || !*path)
        return err_set(err, RLHF_EINVAL, "no database given (use --db PATH or set RLHF_DB)");
    struct stat sb;
    int exists = stat(path, &sb) == 0;
    if (mode != DB_OPEN_CREATE && !exists)
        return err_set(err, RLHF_ENOTFOUND, "%s: no such project database (create it with: rlhf init %s)",
                       path, path);
    if (exists && S_ISDIR(sb.st_mode)) return err_set(err, RLHF_EINVAL, "%s: is a directory", path);
    if (mode != DB_OPEN_READONLY && exists && access(path, W_OK) != 0)
        return err_set(err, RLHF_EIO, "%s: database is read-only (%s)", path, strerror(errno));

    Db *db = calloc(1, sizeof *db);
    if (!db) return err_set(err, RLHF_ENOMEM, "out of memory");
    snprintf(db->path, sizeof db->path, "%s", path);
    int flags = mode == DB_OPEN_READONLY ? SQLITE_OPEN_READONLY
                : mode == DB_OPEN_CREATE ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                         : SQLITE_OPEN_READWRITE;
    /* A WAL database we cannot write (another user's, a read-only copy) may
     * not be able to create its -shm file; then read it as immutable, but only
     * when no -wal holds commits that immutable=1 would silently skip. */
    char uri[3200];
    const char *name = path;
    if (mode == DB_OPEN_READONLY && access(path, W_OK) != 0 && !readable_with_wal(path)) {
        char wal[1100];
        snprintf(wal, sizeof wal, "%s-wal", path);
        struct stat ws;
        if (stat(wal, &ws) == 0 && ws.st_size > 0) {
            free(db);
            return err_set(err, RLHF_EIO,
                           "%s: its write-ahead log %s holds changes not yet in the database "
                           "(a writer was stopped), and it cannot be read without write access; "
                           "open the project once with write access (e.g. rlhf status as its "
                           "owner) or copy both files somewhere writable",
                           path, wal);
        }
        size_t k = (size_t)snprintf(uri, sizeof uri, "file:");
        for (const unsigned char *p = (const unsigned char *)path; *p && k + 4 < sizeof uri; p++) {
            if (*p == '?' || *p == '#' || *p == '%') k += (size_t)snprintf(uri + k, 4, "%%%02X", *p);
            else uri[k++] = (char)*p;
        }
        snprintf(uri + k, sizeof uri - k, "?immutable=1");
        name = uri;
        flags |= SQLITE_OPEN_URI;
    }
    if (sqlite3_open_v2(name, &db->h, flags, NULL) != SQLITE_OK) {
        err_set(err, RLHF_EDB, "%s: cannot open: %s", path, db->h ? sqlite3_errmsg(db->h) : "out of memory");
        db_close(db);
        return RLHF_EDB;
    }
    sqlite3_extended_result_codes(db->h, 0);
    /* several labelers write at once: wait for the lock rather than fail */
    sqlite3_busy_timeout(db->h, 15000);

    int64_t app = 0, ver = 0;
    int rc = db_query_int(db, "PRAGMA application_id", &app, err);
    if (!rc) rc = db_query_int(db, "PRAGMA user_version", &ver, err);
    if (rc) {
        err_set(err, RLHF_EFORMAT, "%s: not an rlhf project database (%s)", path,
                sqlite3_errmsg(db->h));
        db_close(db);
        return RLHF_EFORMAT;
    }
    if (ver < 0) { /* a hand-edited version would index the migrations table */
        err_set(err, RLHF_EFORMAT, "%s: schema version %lld is not one rlhf knows (0..%d)", path,
                (long long)ver, DB_SCHEMA_VERSION);
        db_close(db);
        return RLHF_EFORMAT;
    }
    if (ver > DB_SCHEMA_VERSION) {
        err_set(err, RLHF_EVERSION,
                "%s: database schema version %lld is newer than this rlhf supports (%d); "
                "upgrade rlhf to open it",
                path, (long long)ver, DB_SCHEMA_VERSION);
        db_close(db);
        return RLHF_EVERSION;
    }
    if ((app != 0 && app != DB_APPLICATION_ID) || (app == 0 && ver != 0)) {
        err_set(err, RLHF_EFORMAT, "%s: not an rlhf project database", path);
        db_close(db);
        return RLHF_EFORMAT;
    }
    if (ver == 0 && mode != DB_OPEN_CREATE) {
        int64_t ntab = 0;
        db_query_int(db, "SELECT count(*) FROM sqlite_master", &ntab, NULL);
        err_set(err, RLHF_EFORMAT, "%s: %s", path,
                ntab ? "not an rlhf project database"
                     : "not initialised (run: rlhf init with this path)");
        db_close(db);
        return RLHF_EFORMAT;
    }
    if (mode == DB_OPEN_READONLY && ver < DB_SCHEMA_VERSION) {
        /* a reading command on a project an older rlhf made: the queries
         * need the current tables, so migrate it once through a writable
         * connection (all-or-nothing, as any writer would), then read */
        db_close(db);
        if (access(path, W_OK) != 0)
            return err_set(err, RLHF_EVERSION,
                           "%s: schema version %lld is older than this rlhf's (%d), and the "
                           "file is read-only; open it once with write access (e.g. rlhf status "
                           "as its owner) to upgrade it",
                           path, (long long)ver, DB_SCHEMA_VERSION);
        Db *w = NULL;
        rc = db_open(path, DB_OPEN_EXISTING, &w, err);
        db_close(w);
        return rc ? rc : db_open(path, DB_OPEN_READONLY, out, err);
    }
    if (mode != DB_OPEN_READONLY) {
        rc = db_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err);
        if (!rc && ver < DB_SCHEMA_VERSION) rc = migrate(db, err);
    }
    if (!rc) rc = db_exec(db, "PRAGMA foreign_keys=ON;", err);
    if (rc) {
        db_close(db);
        return rc;
    }
    *out = db;
    return RLHF_OK;
}

void db_close(Db *db) {
    if (!db) return;
    sqlite3_finalize(db->stage);
    if (db->h) sqlite3_close_v2(db->h);
    free(db);
}

const char *db_path(const Db *db) {
    return db->path;
}

int db_schema_version(Db *db, int *version, Err *err) {
    int64_t v = 0;
    int rc = db_query_int(db, "PRAGMA user_version", &v, err);
    *version = (int)v;
    return rc;
}

int db_begin(Db *db, Err *err) {
    int rc = db_exec(db, "BEGIN IMMEDIATE", err);
    if (!rc) db->in_tx = 1;
    return rc;
}

int db_commit(Db *db, Err *err) {
    int rc = db_exec(db, "COMMIT", err);
    if (rc) db_rollback(db);
    db->in_tx = 0;
    return rc;
}

void db_rollback(Db *db) {
    if (sqlite3_get_autocommit(db->h) == 0) sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    db->in_tx = 0;
}

int db_setting_get(Db *db, const char *key, char **value, Err *err) {
    sqlite3_stmt *st;
    *value = NULL;
    int row, rc = db_prepare_bind(db, err, &st, "SELECT value FROM settings WHERE key = ?", "t", key);
    if (rc) return rc;
    if (!(rc = db_step(db, st, &row, err, "read setting")) && row) *value = db_col_strdup(st, 0);
    sqlite3_finalize(st);
    return rc;
}

int db_setting_set(Db *db, const char *key, const char *value, Err *err) {
    return db_run(db, err, "write setting",
                  "INSERT INTO settings(key, value) VALUES(?, ?) "
                  "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                  "tt", key, value);
}

int db_setting_delete(Db *db, const char *key, Err *err) {
    return db_run(db, err, "delete setting", "DELETE FROM settings WHERE key = ?", "t", key);
}

int db_setting_try_set(Db *db, const char *key, const char *value, Err *err) {
    sqlite3_busy_timeout(db->h, 0);
    int rc = db_setting_set(db, key, value, err);
    if (rc && sqlite3_errcode(db->h) == SQLITE_BUSY) rc = err_set(err, RLHF_EBUSY, "the database is busy");
    sqlite3_busy_timeout(db->h, 15000);
    return rc;
}
