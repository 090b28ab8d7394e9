/* Data-parallel training over MPI: the one module that speaks MPI. Built
 * against OpenMPI when RLHF_MPI is defined (the Makefile does so when
 * pkg-config finds it); otherwise every call is a single-process no-op with
 * rank 0 of 1. Ranks run the same program on the same data order; each takes
 * its slice of a global batch and the gradients are summed here. */
#ifndef RLHF_DIST_H
#define RLHF_DIST_H

#include <stddef.h>

/* Starts MPI when the process was launched by mpirun (harmless otherwise).
 * Call once, first thing in main. */
void dist_init(int *argc, char ***argv);
/* Ends MPI (normal exit). */
void dist_finalize(void);
/* Ends every rank at once: a failed rank must not leave the others waiting in
 * a collective. No-op (returns) when there is one rank. */
void dist_abort(int code);
int dist_rank(void);
int dist_size(void);
/* 1 when compiled with MPI. */
int dist_compiled(void);
/* "OpenMPI 4.1.4" or "not compiled in" (static storage). */
const char *dist_describe(void);

/* In-place sums over all ranks; every rank gets the same result. */
int dist_allreduce_sum(float *x, size_t n);
int dist_allreduce_double(double *x, size_t n);
/* Rank 0's bytes to every rank. */
int dist_bcast(void *buf, size_t bytes);
void dist_barrier(void);

/* Ctrl-C reaches ranks at different steps: a training loop passes its own
 * flag after each step and every rank gets 1 when any rank has it, so all
 * stop after the same step. Once they agree, a failing exit status is no
 * crash (dist_agreed_stop: main ends MPI normally instead of aborting the
 * job). Returns -1 when MPI fails. */
int dist_stop_together(int *stop);
void dist_note_agreed_stop(void);
int dist_agreed_stop(void);

/* This rank's share [*lo, *hi) of n items split as evenly as possible. */
void dist_slice(int n, int *lo, int *hi);

/* Seconds spent inside dist_allreduce_sum since the start (for the bench):
 * transfer and the wait for the slowest rank, or with RLHF_DIST_SYNC=1 in the
 * environment (a barrier first) the transfer alone. */
double dist_allreduce_seconds(void);

#endif
