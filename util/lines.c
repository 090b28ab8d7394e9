/* Text and JSONL line reading on cJSON, with file:line error places. */
#include "util/lines.h"
#include "util/text.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* gzip input through a stdio cookie, so getline and the rest stay as they are */
static ssize_t gz_read(void *c, char *buf, size_t n) {
    int k = gzread((gzFile)c, buf, n > (1u << 30) ? 1u << 30 : (unsigned)n), e = Z_OK;
    if (k <= 0) gzerror((gzFile)c, &e);
    if (k < 0 || e != Z_OK) { /* a truncated gzip file ends with Z_BUF_ERROR */
        errno = EIO;
        return -1;
    }
    return k;
}

static int gz_close(void *c) {
    return gzclose((gzFile)c) == Z_OK ? 0 : EOF;
}

/* Reads f through zlib, which passes plain text through as it is and
 * decompresses gzip (the HH-RLHF and Arena files ship as .jsonl.gz). */
static int gz_wrap(LineReader *r, Err *err) {
    int fd = dup(fileno(r->f));
    gzFile g = fd < 0 ? NULL : gzdopen(fd, "rb");
    if (!g) {
        if (fd >= 0) close(fd);
        return err_set(err, RLHF_EIO, "%s: %s", r->path, strerror(errno ? errno : ENOMEM));
    }
    gzbuffer(g, 1 << 17);
    cookie_io_functions_t io = {gz_read, NULL, NULL, gz_close};
    FILE *z = fopencookie(g, "rb", io);
    if (!z) {
        gzclose(g);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    if (r->owns_file) fclose(r->f);
    r->f = z;
    r->gz = g;
    r->owns_file = 1;
    return RLHF_OK;
}

/* A damaged gzip stream hands out garbage before its CRC check fails, or
 * stops mid-line when cut short, so a line's error may be the stream's: on
 * any error, read the rest and let zlib's verdict replace ours. */
static int gz_verdict(LineReader *r, int rc, Err *err) {
    if (!r->gz || gzdirect((gzFile)r->gz)) return rc;
    char buf[1 << 14];
    while (gzread((gzFile)r->gz, buf, sizeof buf) > 0) {}
    int e = Z_OK;
    const char *msg = gzerror((gzFile)r->gz, &e);
    if (e == Z_OK) return rc;
    if (msg && strncmp(msg, "<fd:", 4) == 0 && strstr(msg, ": ")) msg = strstr(msg, ": ") + 2;
    return err_set(err, RLHF_EFORMAT, "%s: corrupt gzip data (%s)", r->path,
                   msg && *msg ? msg : "bad stream");
}

int lines_open(LineReader *r, const char *path, Err *err) {
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s", strcmp(path, "-") == 0 ? "<stdin>" : path);
    if (strcmp(path, "-") == 0) {
        r->f = stdin;
        return gz_wrap(r, err);
    }
    r->f = fopen(path, "rb");
    if (!r->f) return err_set(err, RLHF_EIO, "%s: %s", path, strerror(errno));
    r->owns_file = 1;
    int rc = gz_wrap(r, err);
    if (rc) fclose(r->f), r->f = NULL;
    return rc;
}

void lines_close(LineReader *r) {
    if (r->owns_file && r->f) fclose(r->f);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

int lines_next(LineReader *r, char **out, size_t *len, Err *err) {
    *out = NULL;
    *len = 0;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&r->buf, &r->cap, r->f);
        if (n < 0) {
            if (ferror(r->f))
                return gz_verdict(r,
                                  err_set(err, RLHF_EIO, "%s:%ld: read error: %s", r->path,
                                          r->line + 1, strerror(errno ? errno : EIO)),
                                  err);
            return RLHF_OK;
        }
        r->line++;
        char *s = r->buf;
        size_t m = (size_t)n;
        if (memchr(s, '\0', m))
            return gz_verdict(r,
                              err_set(err, RLHF_EFORMAT, "%s:%ld: NUL byte in text (binary file?)",
                                      r->path, r->line),
                              err);
        if (r->line == 1 && m >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3, m -= 3;
        while (m > 0 && (s[m - 1] == '\n' || s[m - 1] == '\r')) m--;
        s[m] = '\0';
        long bad = utf8_invalid_at(s, m);
        if (bad >= 0)
            return gz_verdict(r,
                              err_set(err, RLHF_EFORMAT, "%s:%ld: invalid UTF-8 at byte %ld",
                                      r->path, r->line, bad + 1),
                              err);
        size_t k = 0;
        while (k < m && (s[k] == ' ' || s[k] == '\t')) k++;
        if (k == m) continue; /* blank */
        *out = s;
        *len = m;
        return RLHF_OK;
    }
}

static int parse_object(LineReader *r, const char *s, size_t n, cJSON **out, Err *err) {
    const char *end = NULL;
    *out = NULL;
    /* cJSON would end the string at an escaped NUL and keep only its start */
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == '\\') {
            if (s[i + 1] == 'u' && i + 6 <= n && memcmp(s + i + 2, "0000", 4) == 0)
                return err_set(err, RLHF_EFORMAT,
                               "%s:%ld: \\u0000 (NUL) in a string at column %ld: not stored",
                               r->path, r->line, (long)i + 1);
            i++;
        }
    cJSON *j = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    if (!j) {
        long col = end ? (long)(end - s) + 1 : 1;
        const char *e = cJSON_GetErrorPtr();
        if (e && e >= s && e <= s + n) col = (long)(e - s) + 1;
        return err_set(err, RLHF_EFORMAT, "%s:%ld: invalid JSON near column %ld", r->path,
                       r->line, col);
    }
    /* trailing garbage after the object */
    while (end && end < s + n && (*end == ' ' || *end == '\t')) end++;
    if (end && end < s + n) {
        cJSON_Delete(j);
        return err_set(err, RLHF_EFORMAT, "%s:%ld: unexpected text after JSON at column %ld",
                       r->path, r->line, (long)(end - s) + 1);
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return err_set(err, RLHF_EFORMAT, "%s:%ld: expected a JSON object", r->path, r->line);
    }
    *out = j;
    return RLHF_OK;
}

int jsonl_parse(LineReader *r, const char *s, size_t n, cJSON **out, Err *err) {
    int rc = parse_object(r, s, n, out, err);
    return rc ? gz_verdict(r, rc, err) : RLHF_OK;
}

int jsonl_next(LineReader *r, cJSON **out, Err *err) {
    char *s;
    size_t n;
    *out = NULL;
    int rc = lines_next(r, &s, &n, err);
    if (rc || !s) return rc;
    return jsonl_parse(r, s, n, out, err);
}

/* Looks key up: *v is NULL for an absent or null field, which is an error only
 * when the field is required. */
static int field(LineReader *r, const cJSON *obj, const char *key, int required,
                 const cJSON **v, Err *err) {
    *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (*v && cJSON_IsNull(*v)) *v = NULL;
    if (!*v && required)
        return err_set(err, RLHF_EFORMAT, "%s:%ld: missing field \"%s\"", r->path, r->line, key);
    return RLHF_OK;
}

static int wrong_type(LineReader *r, const char *key, const char *what, Err *err) {
    return err_set(err, RLHF_EFORMAT, "%s:%ld: field \"%s\" must be %s", r->path, r->line, key,
                   what);
}

int jsonl_string(LineReader *r, const cJSON *obj, const char *key, int required,
                 const char **out, Err *err) {
    const cJSON *v;
    *out = NULL;
    int rc = field(r, obj, key, required, &v, err);
    if (rc || !v) return rc;
    if (!cJSON_IsString(v)) return wrong_type(r, key, "a string", err);
    *out = v->valuestring;
    return RLHF_OK;
}

int jsonl_string_any(LineReader *r, const cJSON *obj, const char *const *keys, int required,
                     const char **out, const char **which, Err *err) {
    *out = NULL;
    if (which) *which = NULL;
    for (int i = 0; keys[i]; i++) {
        if (!cJSON_GetObjectItemCaseSensitive(obj, keys[i])) continue;
        if (which) *which = keys[i];
        return jsonl_string(r, obj, keys[i], required, out, err);
    }
    if (!required) return RLHF_OK;
    StrBuf names = {0};
    for (int i = 0; keys[i]; i++) sb_printf(&names, "%s\"%s\"", i ? " or " : "", keys[i]);
    err_set(err, RLHF_EFORMAT, "%s:%ld: missing field %s", r->path, r->line,
            names.s ? names.s : "");
    sb_free(&names);
    return RLHF_EFORMAT;
}

int jsonl_number(LineReader *r, const cJSON *obj, const char *key, int required, double *out,
                 int *present, Err *err) {
    const cJSON *v;
    if (present) *present = 0;
    int rc = field(r, obj, key, required, &v, err);
    if (rc || !v) return rc;
    if (!cJSON_IsNumber(v)) return wrong_type(r, key, "a number", err);
    *out = v->valuedouble;
    if (present) *present = 1;
    return RLHF_OK;
}
