/* Ensemble disagreement: the per-prompt figure against a hand computation from
 * the members' stored scores, stored negated as the ensemble's margins. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "db/scores.h"
#include "rm/ensemble.h"
#include "tests/unit/project_db.h"

Test(rm_ensemble, disagreement_of_one_prompt) {
    /* two members, two candidates: differences 1 and 3, sd 1 */
    double z[] = {1, 0, 0, -3};
    cr_assert_float_eq(rm_ensemble_disagreement(z, 2, 2), 1.0, 1e-12);
    /* members apart by a constant agree on every difference */
    double same[] = {0, 5, 1, 6, 2, 7};
    cr_assert_float_eq(rm_ensemble_disagreement(same, 3, 2), 0.0, 1e-12);
    cr_assert_float_eq(rm_ensemble_disagreement(z, 1, 2), 0.0, 1e-12, "one candidate: no pair");
    cr_assert(rm_spec_is_ensemble("a.ckpt,b.ckpt"));
    cr_assert(!rm_spec_is_ensemble("a.ckpt"));
}

Test(rm_ensemble, stored_disagreement_equals_the_hand_computation) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/rlhf-ens-%d.db", getpid());
    unlink_db(path);
    /* prompt 1: candidates 1-3, prompt 2: 4-5, prompt 3: 6 alone; members are models 2-4 */
    static const double sc[3][6] = {{1, 2, 3, 0, 4, 2}, {1, 2, 3, 4, 0, 2}, {2, 3, 4, 0, 4, NAN}};
    char rows[2048];
    int len = snprintf(
        rows, sizeof rows,
        "INSERT INTO prompts(id, text, hash) VALUES(1, 'a', 'h1'), (2, 'b', 'h2'), (3, 'c', 'h3');"
        "INSERT INTO models(id, name, kind) VALUES(1, 'gen', 'external'), (2, 'm1', 'rm'),"
        " (3, 'm2', 'rm'), (4, 'm3', 'rm'), (5, 'm1,m2,m3', 'rm');"
        "INSERT INTO candidates(id, prompt_id, model_id, text, hash) VALUES(1, 1, 1, 'x', 'x1'),"
        " (2, 1, 1, 'y', 'y1'), (3, 1, 1, 'z', 'z1'), (4, 2, 1, 'x', 'x2'), (5, 2, 1, 'y', 'y2'),"
        " (6, 3, 1, 'x', 'x3');");
    for (int j = 0; j < 3; j++)
        for (int c = 0; c < 6; c++)
            if (!isnan(sc[j][c]))
                len += snprintf(
                    rows + len, sizeof rows - (size_t)len,
                    "INSERT INTO scores(candidate_id, model_id, score) VALUES(%d, %d, %g);", c + 1,
                    j + 2, sc[j][c]);
    project_at_schema(path, DB_SCHEMA_VERSION, rows);
    Db *db;
    Err e = {0};
    cr_assert_eq(db_open(path, DB_OPEN_EXISTING, &db, &e), 0, "%s", e.msg);
    /* by hand: each member's mean and population sd over its own scores */
    double mean[3], sd[3];
    for (int j = 0; j < 3; j++) {
        double s = 0, s2 = 0;
        int n = 0;
        for (int c = 0; c < 6; c++)
            if (!isnan(sc[j][c])) s += sc[j][c], s2 += sc[j][c] * sc[j][c], n++;
        mean[j] = s / n, sd[j] = sqrt(s2 / n - mean[j] * mean[j]);
    }
    const int first[2] = {0, 3}, count[2] = {3, 2};
    double want[2];
    for (int p = 0; p < 2; p++) {
        double sum = 0;
        int pairs = 0;
        for (int a = first[p]; a < first[p] + count[p]; a++)
            for (int b = a + 1; b < first[p] + count[p]; b++, pairs++) {
                double d[3], m = 0, v = 0;
                for (int j = 0; j < 3; j++)
                    d[j] = (sc[j][a] - mean[j]) / sd[j] - (sc[j][b] - mean[j]) / sd[j],
                    m += d[j] / 3;
                for (int j = 0; j < 3; j++)
                    v += (d[j] - m) * (d[j] - m) / 3;
                sum += sqrt(v);
            }
        want[p] = sum / pairs;
    }
    int64_t members[3] = {2, 3, 4}, n = 0;
    const char *names[3] = {"m1", "m2", "m3"};
    cr_assert_eq(rm_ensemble_store(db, 5, members, names, 3, &n, &e), 0, "%s", e.msg);
    cr_assert_eq(n, 2, "prompt 3 has one candidate (and m3 did not score it)");
    for (int p = 0; p < 2; p++) {
        double got;
        int found;
        cr_assert_eq(db_margin_get(db, p + 1, 5, &got, &found, &e), 0);
        cr_assert(found);
        cr_assert_float_eq(got, -want[p], 1e-9, "prompt %d: %g, by hand %g", p + 1, got, -want[p]);
    }
    cr_assert_gt(want[1], want[0], "the members order prompt 2's answers apart");
    int64_t *ids;
    double *margins;
    cr_assert_eq(db_margins_list(db, 5, NAN, &ids, &margins, &n, &e), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(ids[0], 2, "the largest disagreement comes first");
    free(ids), free(margins);
    /* a member without scores is named */
    int64_t bad[2] = {2, 5};
    const char *bad_names[2] = {"m1", "nothing-scored"};
    cr_assert_eq(rm_ensemble_store(db, 5, bad, bad_names, 2, &n, &e), RLHF_ENOTFOUND);
    cr_assert(strstr(e.msg, "nothing-scored"), "%s", e.msg);
    db_close(db);
    unlink_db(path);
}
