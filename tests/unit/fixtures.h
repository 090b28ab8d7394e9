/* Fixtures several unit-test files share: a scratch project database and a
 * byte-level tokenizer (one token per byte) built in memory. */
#ifndef RLHF_TESTS_UNIT_FIXTURES_H
#define RLHF_TESTS_UNIT_FIXTURES_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "model/tokenizer.h"

/* A new project in /tmp; path (64 bytes) receives its name. */
static inline Db *tmp_db(char *path) {
    strcpy(path, "/tmp/rlhf-unit-db-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    unlink(path);
    Db *db;
    Err err = {0};
    cr_assert_eq(db_open(path, DB_OPEN_CREATE, &db, &err), 0, "%s", err.msg);
    return db;
}

/* Closes db and removes its files. */
static inline void rm_db(Db *db, const char *path) {
    char p[600];
    db_close(db);
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path), unlink(p);
    snprintf(p, sizeof p, "%s-shm", path), unlink(p);
}

/* <unk> <s> </s> and the 256 byte tokens: one token per byte. */
static inline Tokenizer *byte_tokenizer(void) {
    const char *pieces[259];
    size_t lens[259];
    float scores[259];
    static char bytes[256][8];
    pieces[0] = "<unk>", pieces[1] = "\n<s>\n", pieces[2] = "\n</s>\n";
    for (int i = 0; i < 256; i++) {
        snprintf(bytes[i], sizeof bytes[i], "<0x%02X>", i);
        pieces[3 + i] = bytes[i];
    }
    for (int i = 0; i < 259; i++) lens[i] = strlen(pieces[i]), scores[i] = 0;
    Tokenizer *t = NULL;
    Err err = {0};
    cr_assert_eq(tok_build(259, pieces, lens, scores, &t, &err), 0, "%s", err.msg);
    return t;
}

#endif
