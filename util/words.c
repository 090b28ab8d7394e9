/* A hash set of lower-case words (open addressing, FNV-1a). */
#include "util/words.h"
#include "util/sys.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int letter(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

static unsigned char fold(unsigned char c) {
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static uint64_t hash(const char *w, size_t n) {
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ fold((unsigned char)w[i])) * 1099511628211ull;
    return h;
}

static int same(const char *stored, const char *w, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)stored[i] != fold((unsigned char)w[i])) return 0;
    return stored[n] == '\0';
}

/* The slot that holds w, or the empty one where it would go. */
static size_t find(const WordSet *s, const char *w, size_t n) {
    size_t i = (size_t)hash(w, n) & (s->cap - 1);
    while (s->slot[i] && !same(s->slot[i], w, n))
        i = (i + 1) & (s->cap - 1);
    return i;
}

static int grow(WordSet *s) {
    size_t cap = s->cap ? 2 * s->cap : 1024;
    WordSet t = {calloc(cap, sizeof(char *)), cap, s->n};
    if (!t.slot) return RLHF_ENOMEM;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slot[i]) t.slot[find(&t, s->slot[i], strlen(s->slot[i]))] = s->slot[i];
    free(s->slot);
    *s = t;
    return RLHF_OK;
}

static int add(WordSet *s, const char *w, size_t n) {
    if (2 * (s->n + 1) > s->cap && grow(s)) return RLHF_ENOMEM;
    size_t i = find(s, w, n);
    if (s->slot[i]) return RLHF_OK;
    char *c = malloc(n + 1);
    if (!c) return RLHF_ENOMEM;
    for (size_t k = 0; k < n; k++)
        c[k] = (char)fold((unsigned char)w[k]);
    c[n] = '\0';
    s->slot[i] = c, s->n++;
    return RLHF_OK;
}

/* The next word at or after *p (before end): its start, length in *n; NULL at the end. */
static const char *next_word(const char **p, const char *end, size_t *n) {
    const char *a = *p;
    while (a < end && !letter((unsigned char)*a))
        a++;
    const char *b = a;
    while (b < end && letter((unsigned char)*b))
        b++;
    *p = b, *n = (size_t)(b - a);
    return a < end ? a : NULL;
}

int wordset_add_text(WordSet *s, const char *text, size_t n) {
    const char *p = text, *end = text + n, *w;
    size_t len;
    while ((w = next_word(&p, end, &len)))
        if (add(s, w, len)) return RLHF_ENOMEM;
    return RLHF_OK;
}

int wordset_add_file(WordSet *s, const char *path, Err *err) {
    char *text;
    size_t n;
    int rc = sys_read_file(path, &text, &n, err);
    if (!rc && wordset_add_text(s, text, n)) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    free(text);
    return rc;
}

int wordset_add_files(WordSet *s, const char *list, Err *err) {
    char *files = strdup(list);
    if (!files) return err_set(err, RLHF_ENOMEM, "out of memory");
    int rc = RLHF_OK;
    for (char *f = files, *save = NULL; !rc && (f = strtok_r(f, ",", &save)); f = NULL)
        rc = wordset_add_file(s, f, err);
    free(files);
    if (!rc && !s->n) rc = err_set(err, RLHF_EINVAL, "'%s' holds no words", list);
    return rc;
}

int wordset_has(const WordSet *s, const char *w, size_t n) {
    return s->cap && s->slot[find(s, w, n)] != NULL;
}

const char *wordset_first_unknown(const WordSet *s, const char *text, size_t *n) {
    const char *p = text, *end = text + strlen(text), *w;
    while ((w = next_word(&p, end, n)))
        if (!wordset_has(s, w, *n)) return w;
    return NULL;
}

void wordset_free(WordSet *s) {
    for (size_t i = 0; i < s->cap; i++)
        free(s->slot[i]);
    free(s->slot);
    *s = (WordSet){0};
}
