/* rm/turns: stored prompts (one turn, a dialogue, a system message first) as
 * HH transcripts and TRL messages; and the trainers' file reader (dpo and
 * train-rm --data) reading pairs and pairs-chat exports back to the stored
 * prompts and answers. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rm/export.h"
#include "rm/prefs.h"
#include "rm/turns.h"
#include "tests/unit/fixtures.h"

static char *messages(const char *prompt, const char *answer) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rm_write_messages(f, prompt, answer);
    fclose(f);
    return buf;
}

static char *transcript(const char *prompt) {
    StrBuf b = {0};
    cr_assert_eq(rm_prompt_transcript(&b, prompt), 0);
    return b.s;
}

Test(rm_turns, forms_of_a_stored_prompt) {
    char *m = messages("Hi \"you\"?", "Yes.");
    cr_assert_str_eq(m, "[{\"role\":\"user\",\"content\":\"Hi \\\"you\\\"?\"},"
                        "{\"role\":\"assistant\",\"content\":\"Yes.\"}]");
    free(m);
    m = messages("A\n\nAssistant: B\n\nHuman: C", NULL);
    cr_assert_str_eq(m,
                     "[{\"role\":\"user\",\"content\":\"A\"},{\"role\":\"assistant\",\"content\":"
                     "\"B\"},{\"role\":\"user\",\"content\":\"C\"}]");
    free(m);
    m = messages("Be brief.\n\nHuman: C", NULL);
    cr_assert_str_eq(m, "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                        "{\"role\":\"user\",\"content\":\"C\"}]");
    free(m);
    /* turns that end with the assistant's are no prompt: one user message */
    m = messages("A\n\nAssistant: B", NULL);
    cr_assert_str_eq(m, "[{\"role\":\"user\",\"content\":\"A\\n\\nAssistant: B\"}]");
    free(m);
    cr_assert(rm_prompt_has_system("S\n\nHuman: P\n\nAssistant: A\n\nHuman: Q"));
    cr_assert(!rm_prompt_has_system("P\n\nAssistant: A\n\nHuman: Q"));
    cr_assert(!rm_prompt_has_system("\n\nHuman: P"));
    char *t = transcript("P");
    cr_assert_str_eq(t, "\n\nHuman: P");
    free(t);
    t = transcript("S\n\nHuman: P");
    cr_assert_str_eq(t, "S\n\nHuman: P");
    free(t);
}

static void export_file(Db *db, int format, char *path) {
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    ExportOptions o = {
        .format = format, .filter = db_ranking_filter_default(), .min_agreement = -1};
    ExportStats st;
    Err err = {0};
    cr_assert_eq(rm_export(db, &o, f, NULL, &st, &err), 0, "%s", err.msg);
    fclose(f);
}

Test(rm_turns, trainers_read_the_pairs_exports) {
    char path[64];
    Db *db = tmp_db(path);
    const char *prompts[3] = {"What is 2+2?", "Hi.\n\nAssistant: Hello!\n\nHuman: And 3+3?",
                              "Answer in one word.\n\nHuman: Sky colour?"};
    int rank[3] = {2, 1, 3};
    for (int i = 0; i < 3; i++)
        fixture_ranked(db, prompts[i], "ann", rank, 3, 0, 1);
    int formats[2] = {EXPORT_PAIRS, EXPORT_PAIRS_CHAT};
    for (int k = 0; k < 2; k++) {
        char file[64] = "/tmp/rlhf-unit-turns-XXXXXX";
        export_file(db, formats[k], file);
        PrefSet s;
        Err err = {0};
        cr_assert_eq(prefs_load_file(file, 0, &s, &err), 0, "%s", err.msg);
        unlink(file);
        cr_assert_eq(s.n, 9, "3 pairs of each of 3 prompts");
        for (int g = 0; g < s.n; g++) {
            const PrefGroup *p = &s.g[g];
            cr_assert_str_eq(p->prompt, prompts[g / 3], "format %d", formats[k]);
            char want[128];
            /* the best answer (rank 1) is "answer 1"; pairs come best first */
            snprintf(want, sizeof want, "%s answer %d", prompts[g / 3], g % 3 == 2 ? 0 : 1);
            cr_assert_str_eq(p->answers[0], want);
            cr_assert_str_eq(s.labelers[p->labeler], "ann");
        }
        prefs_free(&s);
    }
    rm_db(db, path);
}
