/* How much labelers agree. Pairwise agreement is the figure InstructGPT
 * reports: over every prompt two labelers both ranked and every pair of
 * candidates both ranked, the share where they prefer the same one (a tie
 * agrees only with a tie). Kendall's tau-b compares whole rankings (ties
 * allowed); Krippendorff's alpha measures the 1–7 scores, reported with the
 * ordinal metric (the scale is ordered, its steps need not be equal) and the
 * interval metric for comparison. NAN marks a figure with no data. */
#ifndef RLHF_RM_AGREEMENT_H
#define RLHF_RM_AGREEMENT_H

#include <stdint.h>

#include "rm/compare.h"

/* tau-b of two rank vectors over the same n items (lower = better; equal = tie);
 * NAN when either has no untied pair. */
double rm_kendall_tau_b(const int *x, const int *y, int n);

enum { ALPHA_INTERVAL = 0, ALPHA_ORDINAL = 1 };
/* Krippendorff's alpha over n (unit, value) observations, values 1..n_values;
 * units with one value are left out (they hold no pair). NAN when undefined. */
double rm_kripp_alpha(const int64_t *unit, const int *value, int64_t n, int n_values, int metric);

typedef struct LabelerAgreement {
    const char *name; /* points into the RmSet */
    int simulated;
    int64_t rankings;
    double mean_time_s;       /* NAN when no time was recorded */
    int64_t compared, agreed; /* pairs shared with other labelers */
    double agreement;         /* agreed / compared */
    double tau;               /* mean tau-b with other labelers' rankings */
    int64_t tau_n;
    double gold; /* mean agreement with gold items; NAN when none */
    int64_t gold_n;
} LabelerAgreement;

/* Two labelers on the prompts both ranked. */
typedef struct PairAgreement {
    int a, b;        /* labeler indices, a < b */
    int64_t prompts; /* rankings compared (= shared prompts unless all versions) */
    int64_t compared, agreed;
    double tau; /* mean over their shared prompts */
} PairAgreement;

typedef struct AgreementReport {
    int64_t prompts, prompts_shared; /* ranked; ranked by two labelers or more */
    int64_t compared, agreed;
    double agreement;
    double agreement_se; /* by resampling shared prompts (seeded); NAN under two */
    double tau;
    int64_t tau_n; /* ranking pairs behind tau */
    double alpha_ordinal, alpha_interval;
    int64_t alpha_units, alpha_values;
    LabelerAgreement *labelers; /* one per s->labelers, same order */
    int n_labelers;
    PairAgreement *pairs; /* every two labelers with a shared prompt, by (a, b);
                             left out past 1000 labelers */
    int n_pairs;
} AgreementReport;

int rm_agreement(const RmSet *s, AgreementReport *r, Err *err);
void rm_agreement_free(AgreementReport *r);

/* Agreement per prompt shared by two labelers or more (prompt ids ascending,
 * NAN where they shared no pair); the caller frees both arrays. */
int rm_prompt_agreement(const RmSet *s, int64_t **prompt_ids, double **rate, int64_t *n, Err *err);

#endif
