/* The worker pool behind par_for: workers sleep on a condition variable
 * between jobs (no spinning to steal cycles from OpenBLAS's threads). */
#include "model/parallel.h"

#include <cblas.h>
#include <pthread.h>
#include <unistd.h>

#include "model/matvec.h"

static struct {
    pthread_mutex_t mu, busy;
    pthread_cond_t go, done;
    pthread_once_t once;
    int started;   /* workers running */
    uint64_t gen;  /* job generation */
    int pending;   /* parts not finished */
    int parts;
    int64_t n;
    void (*fn)(void *, int64_t, int64_t, int);
    void *ctx;
} P = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
       PTHREAD_COND_INITIALIZER, PTHREAD_ONCE_INIT, 0, 0, 0, 0, 0, 0, 0};

static void range(int64_t n, int parts, int k, int64_t *lo, int64_t *hi) {
    *lo = n * k / parts;
    *hi = n * (k + 1) / parts;
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg; /* 1 .. PAR_MAX-1; part 0 is the caller's */
    uint64_t seen = 0;
    pthread_mutex_lock(&P.mu);
    for (;;) {
        while (P.gen == seen) pthread_cond_wait(&P.go, &P.mu);
        seen = P.gen;
        if (id >= P.parts) continue;
        int64_t lo, hi;
        range(P.n, P.parts, id, &lo, &hi);
        void (*fn)(void *, int64_t, int64_t, int) = P.fn;
        void *ctx = P.ctx;
        pthread_mutex_unlock(&P.mu);
        fn(ctx, lo, hi, id);
        pthread_mutex_lock(&P.mu);
        if (--P.pending == 0) pthread_cond_signal(&P.done);
    }
    return NULL;
}

static void start(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int want = cores < 1 ? 1 : cores > PAR_MAX ? PAR_MAX : (int)cores;
    for (int i = 1; i < want; i++) {
        pthread_t t;
        pthread_attr_t a;
        matvec_thread_attr(&a); /* not the one CPU of a decoding run that starts it */
        if (pthread_create(&t, &a, worker, (void *)(intptr_t)i) != 0) {
            pthread_attr_destroy(&a);
            break;
        }
        pthread_attr_destroy(&a);
        P.started++;
    }
}

static _Thread_local int scoped_threads; /* > 0 inside par_enter/par_leave */

int par_threads(void) {
    int n = scoped_threads ? scoped_threads : openblas_get_num_threads();
    return n < 1 ? 1 : n > PAR_MAX ? PAR_MAX : n;
}

void par_enter(ParScope *s) {
    s->active = scoped_threads == 0;
    s->threads = par_threads();
    if (!s->active) return;
    scoped_threads = s->threads;
    if (s->threads > 1) openblas_set_num_threads(1);
}

void par_leave(ParScope *s) {
    if (!s->active) return;
    if (s->threads > 1) openblas_set_num_threads(s->threads);
    scoped_threads = 0;
}

int par_for(int64_t n, int64_t min_chunk, void (*fn)(void *ctx, int64_t lo, int64_t hi, int part),
            void *ctx) {
    return par_for_threads(par_threads(), n, min_chunk, fn, ctx);
}

int par_for_threads(int threads, int64_t n, int64_t min_chunk,
                    void (*fn)(void *ctx, int64_t lo, int64_t hi, int part), void *ctx) {
    int parts = threads < 1 ? 1 : threads > PAR_MAX ? PAR_MAX : threads;
    if (min_chunk < 1) min_chunk = 1;
    if (n / min_chunk < parts) parts = (int)(n / min_chunk);
    if (parts <= 1 || pthread_mutex_trylock(&P.busy) != 0) {
        fn(ctx, 0, n, 0);
        return 1;
    }
    pthread_once(&P.once, start);
    if (parts > P.started + 1) parts = P.started + 1;
    if (parts <= 1) {
        pthread_mutex_unlock(&P.busy);
        fn(ctx, 0, n, 0);
        return 1;
    }
    pthread_mutex_lock(&P.mu);
    P.n = n;
    P.parts = parts;
    P.fn = fn;
    P.ctx = ctx;
    P.pending = parts - 1;
    P.gen++;
    pthread_cond_broadcast(&P.go);
    pthread_mutex_unlock(&P.mu);
    int64_t lo, hi;
    range(n, parts, 0, &lo, &hi);
    fn(ctx, lo, hi, 0);
    pthread_mutex_lock(&P.mu);
    while (P.pending > 0) pthread_cond_wait(&P.done, &P.mu);
    pthread_mutex_unlock(&P.mu);
    pthread_mutex_unlock(&P.busy);
    return parts;
}
