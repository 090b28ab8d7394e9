/* Error reporting for library code: a status code plus a message.
 * Library functions never print or exit; they return a status and fill an Err
 * that the caller (in the end, cli/) decides how to show. */
#ifndef RLHF_ERR_H
#define RLHF_ERR_H

#include <stddef.h>

enum {
    RLHF_OK = 0,
    RLHF_EINVAL = 1,   /* bad argument or input */
    RLHF_EIO = 2,      /* file system */
    RLHF_ENOMEM = 3,   /* allocation failed */
    RLHF_EDB = 4,      /* SQLite */
    RLHF_EFORMAT = 5,  /* malformed file (JSON, checkpoint, tokenizer) */
    RLHF_EVERSION = 6, /* written by a newer version */
    RLHF_ENOTFOUND = 7,
    RLHF_EINTR = 8, /* interrupted by a signal; finished work is kept */
    RLHF_EBUSY = 9,
};

typedef struct Err {
    int code;
    char msg[1024];
} Err;

/* Sets code and message; returns code so callers can `return err_set(...)`.
 * A NULL err is allowed and ignored. */
int err_set(Err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prepends context ("file.jsonl:3: ") to the message already in err. */
int err_prefix(Err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(Err *err);
const char *err_code_name(int code);

#endif
