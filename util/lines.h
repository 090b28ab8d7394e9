/* Line-oriented input for text and JSONL files, with the place of every line kept
 * for error messages. Handles CRLF, a UTF-8 BOM, lines of any length, blank lines
 * (skipped), and refuses invalid UTF-8 and NUL bytes with "file:line: ...".
 * gzip input is read as it is; a damaged stream (bad CRC, cut short) is
 * reported as "file: corrupt gzip data (...)" whatever line it broke. */
#ifndef RLHF_LINES_H
#define RLHF_LINES_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "util/err.h"

typedef struct LineReader {
    FILE *f;
    void *gz; /* the zlib stream under f (gzFile), for its verdict on errors */
    int owns_file;
    char path[512];
    long line; /* 1-based number of the line last returned */
    char *buf;
    size_t cap;
} LineReader;

/* Opens path ("-" is stdin). */
int lines_open(LineReader *r, const char *path, Err *err);
void lines_close(LineReader *r);
/* Next non-blank line without its line ending. *out points into the reader's
 * buffer (valid until the next call); *out is NULL at end of file. */
int lines_next(LineReader *r, char **out, size_t *len, Err *err);
/* Next non-blank line parsed as a JSON object; *out (caller frees with
 * cJSON_Delete) is NULL at end of file. */
int jsonl_next(LineReader *r, cJSON **out, Err *err);
/* Parses a line lines_next returned as one JSON object (errors name r's place). */
int jsonl_parse(LineReader *r, const char *s, size_t n, cJSON **out, Err *err);

/* Field access that names the place on failure ("file:line: field "x": ...").
 * A missing optional field leaves *out NULL and succeeds. */
int jsonl_string(LineReader *r, const cJSON *obj, const char *key, int required,
                 const char **out, Err *err);
/* First of several alternative names present ("prompt", "instruction", "text"). */
int jsonl_string_any(LineReader *r, const cJSON *obj, const char *const *keys, int required,
                     const char **out, const char **which, Err *err);
int jsonl_number(LineReader *r, const cJSON *obj, const char *key, int required, double *out,
                 int *present, Err *err);

#endif
