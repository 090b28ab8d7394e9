/* Demonstrations for supervised fine-tuning: prompt → answer pairs read from
 * a JSONL file ({"prompt","completion"} or chat-style {"messages": [...]}) or
 * from the store (the top-ranked candidate of each ranked prompt, or every
 * candidate of a named model, e.g. imported demonstrations). SftData owns
 * every string. */
#ifndef RLHF_RL_SFT_DATA_H
#define RLHF_RL_SFT_DATA_H

#include <stdint.h>

#include "db/db.h"
#include "db/rankings.h"
#include "util/err.h"

typedef struct SftPair {
    char *prompt; /* the prompt text, or (rendered = 1) the whole templated
                     conversation before the answer */
    char *answer;
    int rendered;
} SftPair;

typedef struct SftData {
    SftPair *p;
    int n, cap;
    int64_t skipped; /* store: prompts left out (tied or rejected top, no ranking) */
    int64_t demos;   /* store: pairs that are demonstrations people wrote */
    int64_t demos_flagged; /* store: demonstrations left out as flagged */
} SftData;

/* JSONL: {"prompt"|"instruction", "completion"|"response"} or {"messages":
 * [{"role": "system"|"user"|"assistant", "content"}...]} ending with the
 * assistant's answer; earlier turns are rendered with template (NULL: the
 * default) the way the conversation reads to the model. Errors name
 * FILE:LINE and the field. Appends to out. */
int sft_data_load_file(const char *path, const char *template, SftData *out, Err *err);

/* Which demonstrations (answers labelers wrote, db/demos.h) --data store takes. */
enum { SFT_DEMOS_UNFLAGGED = 0, SFT_DEMOS_ALL = 1, SFT_DEMOS_NONE = 2 };

typedef struct SftStoreOptions {
    RankingFilter filter;   /* which rankings count (split, labeler, ...) */
    const char *from_model; /* non-NULL: every candidate of this model instead */
    int demos;              /* SFT_DEMOS_*: the demonstrations, all or only those no other
                               labeler flagged (nor their prompt), or none */
    int no_ranked;          /* the demonstrations alone, not the top-ranked candidates */
    int best_of;            /* rejection sampling (Llama 2): the answers `gen --best-of` kept,
                               of from_model (which must be a best-of policy) or, when NULL,
                               of the newest best-of policy */
} SftStoreOptions;

/* From the store: every demonstration (o->demos says which; the split and
 * people/simulated filters apply, the author for --labeler), then from
 * rankings, per prompt, the candidate with the best mean rank over its
 * current rankings, unless that is a demonstration (taken or left out
 * already); a prompt is skipped when the best mean is shared by different
 * texts or a ranking marks none of its candidates acceptable. */
int sft_data_load_store(Db *db, const SftStoreOptions *o, SftData *out, Err *err);
void sft_data_free(SftData *d);

#endif
