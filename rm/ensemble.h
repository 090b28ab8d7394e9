/* An ensemble of reward models (several seeds, or bootstrap resamples of the
 * rankings: train-rm --bootstrap) and how much its members disagree about
 * each prompt: what `label --order uncertain` can hand out first instead of
 * one RM's smallest margin. Reads the members' stored scores (rlhf score). */
#ifndef RLHF_RM_ENSEMBLE_H
#define RLHF_RM_ENSEMBLE_H

#include <stdint.h>

#include "db/db.h"

/* Whether spec names an ensemble: members joined by ',' ("a.ckpt,b.ckpt,c.ckpt";
 * a member may be a combination, rm_score.h), rather than one file. */
int rm_spec_is_ensemble(const char *spec);

/* The disagreement of k members on one prompt's m candidates, from their
 * normalised rewards z[i * k + j] (candidate i, member j): the mean over the
 * m(m-1)/2 pairs of candidates of the standard deviation over members of
 * z(a) - z(b). Members that agree on every difference score 0, however far
 * apart their levels; a pair the members order differently adds the most. */
double rm_ensemble_disagreement(const double *z, int m, int k);

/* For each prompt whose candidates every member scored (two or more), the
 * disagreement above with each member's rewards normalised by the mean and sd
 * of all its scores, stored as RM ens_id's margin negated (so the usual
 * smallest-margin-first order hands out the largest disagreement first; a
 * real margin is never negative). *n gets the number of prompts.
 * RLHF_ENOTFOUND naming the member that has fewer than two scores. */
int rm_ensemble_store(Db *db, int64_t ens_id, const int64_t *members, const char *const *names,
                      int k, int64_t *n, Err *err);

#endif
