/* Small text helpers: UTF-8 validation, a growable string buffer, SHA-256 hex
 * digests (prompt and candidate identity, checkpoint hashes). */
#ifndef RLHF_TEXT_H
#define RLHF_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Returns the byte offset of the first invalid UTF-8 sequence, or -1 when valid. */
long utf8_invalid_at(const char *s, size_t n);

/* A copy of s[0..n) with every invalid UTF-8 sequence replaced by U+FFFD, so
 * model output is always valid text; caller frees. NULL on allocation failure. */
char *utf8_sanitize(const char *s, size_t n);

/* The length of the control character at s (C0, DEL, or a C1 control
 * U+0080..U+009F, which UTF-8 writes 0xC2 0x80..0x9F; CSI is one): 1 or 2,
 * else 0. What a terminal acts on, so never shown raw. */
size_t text_control_at(const char *s);

/* Levenshtein distance between two UTF-8 texts, counted in code points
 * (an invalid byte counts as one): how much a labeler changed an answer.
 * -1 when out of memory. O(len(a) * len(b)) time, O(len(b)) memory. */
long text_edit_distance(const char *a, const char *b);

/* The last component of a path (what follows the last '/'); points into path. */
const char *path_base(const char *path);
/* The part of s[0..*n) without the blanks (space, \n, \t, \r) at either end:
 * returns where it starts and sets *n to its length. How gen trims an answer. */
const char *text_trim(const char *s, size_t *n);

/* Growable NUL-terminated buffer; the caller owns .s and frees it with sb_free. */
typedef struct StrBuf {
    char *s;
    size_t len, cap;
} StrBuf;

int sb_append(StrBuf *b, const char *s, size_t n); /* 0 or RLHF_ENOMEM */
int sb_puts(StrBuf *b, const char *s);
int sb_printf(StrBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_free(StrBuf *b);

typedef struct Sha256 {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t nbuf;
} Sha256;

void sha256_init(Sha256 *c);
void sha256_update(Sha256 *c, const void *data, size_t n);
void sha256_final(Sha256 *c, unsigned char out[32]);
/* Hex digest of a buffer into out (65 bytes with NUL). */
void sha256_hex(const void *data, size_t n, char out[65]);

#endif
