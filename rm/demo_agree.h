/* Agreement between people who wrote answers to the same prompt: for every two
 * demonstrations of a prompt by different authors, how alike the texts are
 * (1 − edit distance / the longer text's length, in code points) and whether
 * they are identical; overall and per author. The counterpart, for written
 * answers, of the ranking agreement in agreement.h. */
#ifndef RLHF_RM_DEMO_AGREE_H
#define RLHF_RM_DEMO_AGREE_H

#include <stdint.h>

#include "db/db.h"
#include "db/rankings.h"

typedef struct WriterAgreement {
    char *name; /* owned */
    int simulated;
    int64_t answers, pairs;
    double mean_time_s; /* NAN when no time was recorded */
    double similarity;  /* mean over the pairs with another author's answer; NAN when none */
    int64_t edited;     /* answers started from a candidate (the rest from empty) */
    double mean_edit;   /* mean edit distance from where the answer started; NAN when unknown */
} WriterAgreement;

typedef struct DemoAgreement {
    int64_t demos, prompts, prompts_shared; /* answers; prompts answered; by two authors or more */
    int64_t pairs, identical;
    double similarity; /* mean over pairs; NAN when none */
    WriterAgreement *writers;
    int n_writers;
} DemoAgreement;

/* Over the demonstrations the filter's split, labeler (author) and
 * people/simulated choose. */
int rm_demo_agreement(Db *db, const RankingFilter *f, DemoAgreement *out, Err *err);
void rm_demo_agreement_free(DemoAgreement *a);

#endif
