/* Writing prompts (`rlhf label --task prompt`): the labeler writes new prompts
 * in her editor, one a file, of one kind: plain (a task stated directly),
 * fewshot (an instruction with example query/response pairs and a last query)
 * or user (a request as real users write them). Each is stored with its kind,
 * author and split, deduplicated by hash like an import. */
#ifndef RLHF_PROMPT_WRITE_H
#define RLHF_PROMPT_WRITE_H

#include <stdint.h>

#include "annotator/session.h"

typedef struct PwStats {
    int64_t written, duplicates;
} PwStats;

/* The prompt a written text stands for: the text itself, or for fewshot the
 * instruction, then each example as "Query: ...\nResponse: ..." and the last
 * query as "Query: ..." (*examples gets them as JSON [{"query","response"}]).
 * The examples are blocks starting with a line "### query" or "### response".
 * RLHF_EINVAL with a message saying what is missing. Caller frees both. */
int pw_parse(const char *kind, const char *written, char **prompt, char **examples, Err *err);

/* Opens the editor until the labeler saves an empty text (or limit prompts
 * are stored). A text that does not parse comes back with the reason on top
 * of its comments; a killed editor leaves the draft for the next session. */
int pw_run(LabelSession *s, const char *kind, const char *split, int64_t limit, PwStats *st,
           Err *err);

#endif
