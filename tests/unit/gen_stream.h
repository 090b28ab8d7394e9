/* A test double for GenBackend.sample_stream over any sample function:
 * inputs are taken while their draws fit in `streams`, and the newest in
 * flight is done first (so the first input stays in flight to the end and
 * inputs are done out of order); an input containing bad_input fails alone,
 * after those in flight are done. Its sample (fake_stream_sample) is the
 * wrapped one, so one ctx serves both. */
#ifndef RLHF_TESTS_UNIT_GEN_STREAM_H
#define RLHF_TESTS_UNIT_GEN_STREAM_H

#include <criterion/criterion.h>
#include <string.h>

#include "gen/gen.h"

typedef struct FakeStream {
    int (*sample)(void *ctx, const char *input, int n, const uint64_t *seeds, GenSample *out,
                  Err *err);
    void *ctx;
    const char *bad_input;
    int streams, most_prompts, most_draws, refills, taken;
} FakeStream;

static inline int fake_stream_sample(void *ctx, const char *input, int n, const uint64_t *seeds,
                                     GenSample *out, Err *err) {
    FakeStream *m = ctx;
    return m->sample(m->ctx, input, n, seeds, out, err);
}

static inline int fake_stream(void *ctx, const GenFeed *gf, int *bad, Err *err) {
    FakeStream *m = ctx;
    struct {
        int tag, n;
        GenSample s[64];
    } fl[16];
    int nf = 0, used = 0, ended = 0, pending = 0, rc = RLHF_OK, n = 0, tag = -1, dones = 0;
    const char *input = NULL;
    const uint64_t *seeds = NULL;
    Err late = {0};
    *bad = -1;
    for (;;) {
        while (!ended) {
            if (!pending && !gf->next(gf->ctx, &input, &n, &seeds, &tag)) {
                ended = nf == 0;
                break;
            }
            pending = 1;
            if (m->bad_input && strstr(input, m->bad_input)) {
                rc = err_set(&late, RLHF_EINVAL, "prompt too long");
                *bad = tag, ended = 1, pending = 0;
                break;
            }
            if (used + n > m->streams) break;
            cr_assert(nf < 16 && n <= 64);
            memset(fl[nf].s, 0, sizeof fl[nf].s);
            cr_assert_eq(m->sample(m->ctx, input, n, seeds, fl[nf].s, err), 0);
            fl[nf].tag = tag, fl[nf].n = n;
            m->refills += dones > 0 && nf > 0;
            m->taken++, nf++, used += n, pending = 0;
            m->most_prompts = nf > m->most_prompts ? nf : m->most_prompts;
            m->most_draws = used > m->most_draws ? used : m->most_draws;
        }
        if (!nf) break;
        nf--, used -= fl[nf].n, dones++;
        int r = gf->done(gf->ctx, fl[nf].tag, fl[nf].s, err);
        gen_samples_free(fl[nf].s, fl[nf].n);
        if (r) {
            for (int i = 0; i < nf; i++)
                gen_samples_free(fl[i].s, fl[i].n);
            *bad = -1;
            return r;
        }
    }
    if (rc) *err = late;
    return rc;
}

#endif
