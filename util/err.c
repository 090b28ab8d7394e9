/* Status + message error reporting shared by every library module. */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(Err *err, int code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

int err_prefix(Err *err, const char *fmt, ...) {
    if (!err) return RLHF_OK;
    char head[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t h = strlen(head);
    if (h >= sizeof err->msg) h = sizeof err->msg - 1;
    memcpy(err->msg, head, h);
    size_t rest = sizeof err->msg - 1 - h, o = strlen(old);
    if (o > rest) o = rest;
    memcpy(err->msg + h, old, o);
    err->msg[h + o] = '\0';
    return err->code;
}

void err_clear(Err *err) {
    if (!err) return;
    err->code = RLHF_OK;
    err->msg[0] = '\0';
}

const char *err_code_name(int code) {
    switch (code) {
    case RLHF_OK: return "ok";
    case RLHF_EINVAL: return "invalid input";
    case RLHF_EIO: return "i/o error";
    case RLHF_ENOMEM: return "out of memory";
    case RLHF_EDB: return "database error";
    case RLHF_EFORMAT: return "bad format";
    case RLHF_EVERSION: return "unsupported version";
    case RLHF_ENOTFOUND: return "not found";
    case RLHF_EINTR: return "interrupted";
    case RLHF_EBUSY: return "busy";
    }
    return "error";
}
