/* Fixtures several unit-test files share: a scratch project database, a
 * ranked prompt in it, a byte-level tokenizer (one token per byte) built
 * in memory, and a tiny random model. */
#ifndef RLHF_TESTS_UNIT_FIXTURES_H
#define RLHF_TESTS_UNIT_FIXTURES_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <math.h>

#include "db/candidates.h"
#include "db/db.h"
#include "db/prompts.h"
#include "db/rankings.h"
#include "db/registry.h"
#include "model/model.h"
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

/* A prompt with n (<= 8) candidates "<prompt> answer i" of model "m", ranked by
 * labeler with rank[i]; each ranked one scored 8 - rank when likert is set. */
static inline void fixture_ranked(Db *db, const char *prompt, const char *labeler, const int *rank,
                                  int n, int none_ok, int likert) {
    Err err = {0};
    int64_t pid, lab, mid;
    ModelIn m = {"m", "base", NULL, 0, NULL, NULL, NULL};
    cr_assert_eq(db_model_upsert(db, &m, &mid, &err), 0, "%s", err.msg);
    PromptIn pin = {prompt, NULL, NULL, NULL, NULL};
    cr_assert_eq(db_prompt_insert(db, &pin, &pid, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(db_labeler_ensure(db, labeler, 0, NULL, &lab, &err), 0);
    RankingItemIn items[8];
    for (int i = 0; i < n; i++) {
        char text[64];
        snprintf(text, sizeof text, "%s answer %d", prompt, i);
        CandidateIn c = {pid, mid, text, -1, NAN, NULL, 0, 0, NULL, 0, 0};
        cr_assert_eq(db_candidate_insert(db, &c, &items[i].candidate_id, NULL, &err), 0);
        int score = likert && rank[i] ? 8 - rank[i] : 0;
        items[i] = (RankingItemIn){items[i].candidate_id, rank[i], score, NULL, -1};
    }
    RankingIn in = {0};
    in.prompt_id = pid, in.labeler_id = lab, in.time_spent_ms = -1, in.gold_agreement = NAN;
    in.none_acceptable = none_ok;
    in.items = items, in.n_items = n;
    cr_assert_eq(db_ranking_submit(db, &in, NULL, &err), 0, "%s", err.msg);
}

/* A random model from seed: 2 layers, dim 16, 4 heads, vocab 23, context 16, tied. */
static inline void tiny_model(Model *m, uint64_t seed) {
    Config c = {.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 4,
                .vocab_size = 23, .seq_len = 16, .shared_classifier = 1};
    Err err = {0};
    cr_assert_eq(model_create(m, &c, 0, &err), 0, "%s", err.msg);
    model_init_random(m, seed);
}

#endif
