/* MPI behind a small interface (see dist.h). Large arrays are reduced in
 * chunks below INT_MAX elements, the count type MPI takes. */
#include "model/dist.h"
#include "util/progress.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

static int g_rank = 0, g_size = 1;
static double g_allreduce_s = 0;

#ifdef RLHF_MPI
#include <mpi.h>

static int g_started = 0;
/* RLHF_DIST_SYNC=1: a barrier before each timed all-reduce, so its time is
 * the transfer alone, not the wait for a slower rank (for bench-mpi) */
static int g_sync = 0;

void dist_init(int *argc, char ***argv) {
    /* only under a launcher: a plain `rlhf` run stays one process and never
     * starts MPI's runtime (slow, and noisy where there is no network) */
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") && !getenv("PMI_SIZE")) return;
    int inited = 0;
    MPI_Initialized(&inited);
    if (inited) return;
    if (MPI_Init(argc, argv) != MPI_SUCCESS) return;
    g_started = 1;
    g_sync = getenv("RLHF_DIST_SYNC") && atoi(getenv("RLHF_DIST_SYNC")) > 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
}

void dist_finalize(void) {
    if (g_started) MPI_Finalize();
    g_started = 0;
}

void dist_abort(int code) {
    if (g_started && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

int dist_compiled(void) { return 1; }

const char *dist_describe(void) {
    static char buf[96];
    int v, sv;
    MPI_Get_version(&v, &sv);
#ifdef OMPI_MAJOR_VERSION
    snprintf(buf, sizeof buf, "OpenMPI %d.%d.%d (MPI %d.%d)", OMPI_MAJOR_VERSION, OMPI_MINOR_VERSION,
             OMPI_RELEASE_VERSION, v, sv);
#else
    snprintf(buf, sizeof buf, "MPI %d.%d", v, sv);
#endif
    return buf;
}

int dist_allreduce_sum(float *x, size_t n) {
    if (g_size == 1) return 0;
    if (g_sync) MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now_seconds();
    for (size_t i = 0; i < n; i += INT_MAX / 2) {
        size_t k = n - i < INT_MAX / 2 ? n - i : INT_MAX / 2;
        if (MPI_Allreduce(MPI_IN_PLACE, x + i, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return -1;
    }
    g_allreduce_s += now_seconds() - t0;
    return 0;
}

int dist_allreduce_double(double *x, size_t n) {
    if (g_size == 1) return 0;
    return MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
}

int dist_bcast(void *buf, size_t bytes) {
    if (g_size == 1) return 0;
    for (size_t i = 0; i < bytes; i += INT_MAX / 2) {
        size_t k = bytes - i < INT_MAX / 2 ? bytes - i : INT_MAX / 2;
        if (MPI_Bcast((char *)buf + i, (int)k, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
    }
    return 0;
}

void dist_barrier(void) {
    if (g_size > 1) MPI_Barrier(MPI_COMM_WORLD);
}

#else /* one process */

void dist_init(int *argc, char ***argv) { (void)argc, (void)argv; }
void dist_finalize(void) {}
void dist_abort(int code) { (void)code; }
int dist_compiled(void) { return 0; }
const char *dist_describe(void) { return "not compiled in"; }
int dist_allreduce_sum(float *x, size_t n) { return (void)x, (void)n, 0; }
int dist_allreduce_double(double *x, size_t n) { return (void)x, (void)n, 0; }
int dist_bcast(void *buf, size_t bytes) { return (void)buf, (void)bytes, 0; }
void dist_barrier(void) {}

#endif

static int g_agreed_stop = 0;
void dist_note_agreed_stop(void) { g_agreed_stop = 1; }
int dist_agreed_stop(void) { return g_agreed_stop; }

int dist_stop_together(int *stop) {
    if (g_size == 1) return 0;
    double s = *stop;
    if (dist_allreduce_double(&s, 1)) return -1;
    if ((*stop = s > 0)) g_agreed_stop = 1;
    return 0;
}

int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
double dist_allreduce_seconds(void) { return g_allreduce_s; }

void dist_slice(int n, int *lo, int *hi) {
    *lo = (int)((long long)n * g_rank / g_size);
    *hi = (int)((long long)n * (g_rank + 1) / g_size);
}
