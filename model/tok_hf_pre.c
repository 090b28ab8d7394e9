/* The text stages of a tokenizer.json before the BPE model: normalizers (NFC
 * and friends through utf8proc, Prepend, Replace, Lowercase, Strip) and
 * pre-tokenizers (ByteLevel, Split, Metaspace, Digits), each a step of a
 * flattened chain. Regular expressions are PCRE2 in UTF + UCP mode, JIT-compiled,
 * and accept invalid UTF-8 (those bytes never match, so they end up in gaps). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "model/tok_hf.h"

enum {
    N_NFC,
    N_NFD,
    N_NFKC,
    N_NFKD,
    N_LOWER,
    N_PREPEND,
    N_REPLACE,
    N_STRIP,
    P_BYTELEVEL,
    P_SPLIT,
    P_METASPACE,
};
enum { B_REMOVED, B_ISOLATED, B_PREV, B_NEXT, B_CONTIGUOUS };
enum { SCHEME_ALWAYS, SCHEME_FIRST, SCHEME_NEVER };

typedef struct {
    int type;
    char *str, *content; /* a literal pattern / Prepend's text; Replace's content */
    size_t str_len, content_len;
    pcre2_code *re;                       /* a Regex pattern, else NULL (then str is the pattern) */
    int behavior, invert, flag_a, flag_b; /* flags: add_prefix_space/use_regex, left/right, split */
    int scheme;
} Step;

struct HfChain {
    Step *v;
    int n, cap;
};

struct HfScratch {
    pcre2_match_data *md;
    pcre2_jit_stack *js;
    pcre2_match_context *mc;
    HfPieces tmp;
};

/* GPT-2's split rule, used by ByteLevel's use_regex. */
static const char GPT2_RE[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ---- pieces ---------------------------------------------------------------------- */

/* Room for n more bytes (and a NUL) in p->s. */
static int pieces_reserve(HfPieces *p, size_t n) {
    if (p->n_s + n + 1 <= p->cap_s) return RLHF_OK;
    size_t c = (p->n_s + n + 1) * 2;
    char *s2 = realloc(p->s, c);
    if (!s2) return RLHF_ENOMEM;
    p->s = s2;
    p->cap_s = c;
    return RLHF_OK;
}

int hf_pieces_add(HfPieces *p, const char *s, size_t n) {
    if (p->n == p->cap) {
        int c = p->cap ? p->cap * 2 : 64;
        size_t *o = realloc(p->off, sizeof(size_t) * (size_t)c);
        if (!o) return RLHF_ENOMEM;
        p->off = o;
        size_t *l = realloc(p->len, sizeof(size_t) * (size_t)c);
        if (!l) return RLHF_ENOMEM;
        p->len = l;
        p->cap = c;
    }
    if (pieces_reserve(p, n)) return RLHF_ENOMEM;
    if (n) memmove(p->s + p->n_s, s, n); /* s may point into p->s (never past n_s) */
    p->off[p->n] = p->n_s;
    p->len[p->n] = n;
    p->n_s += n;
    p->s[p->n_s] = '\0';
    p->n++;
    return RLHF_OK;
}

/* Appends bytes to the last piece (which must be the last thing in s). */
static int pieces_extend(HfPieces *p, const char *s, size_t n) {
    if (pieces_reserve(p, n)) return RLHF_ENOMEM;
    memcpy(p->s + p->n_s, s, n);
    p->n_s += n;
    p->len[p->n - 1] += n;
    p->s[p->n_s] = '\0';
    return RLHF_OK;
}

void hf_pieces_clear(HfPieces *p) {
    p->n = 0;
    p->n_s = 0;
}

void hf_pieces_free(HfPieces *p) {
    free(p->s);
    free(p->off);
    free(p->len);
    memset(p, 0, sizeof *p);
}

static void swap_pieces(HfPieces *a, HfPieces *b) {
    HfPieces t = *a;
    *a = *b;
    *b = t;
}

/* ---- parsing --------------------------------------------------------------------- */

void hf_chain_free(HfChain *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) {
        free(c->v[i].str);
        free(c->v[i].content);
        pcre2_code_free(c->v[i].re);
    }
    free(c->v);
    free(c);
}

static Step *push_step(HfChain *c, int type) {
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 4;
        Step *v = realloc(c->v, sizeof(Step) * (size_t)cap);
        if (!v) return NULL;
        c->v = v;
        c->cap = cap;
    }
    Step *s = &c->v[c->n++];
    memset(s, 0, sizeof *s);
    s->type = type;
    return s;
}

static char *dup_str(const char *s, size_t *len) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    if (len) *len = n;
    return d;
}

static const char *get_str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int get_bool(const cJSON *o, const char *k, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static int compile_re(const char *pat, const char *where, pcre2_code **out, Err *err) {
    /* Llama 3's and Qwen's case-insensitive contractions, spelled out as ASCII
     * classes as transformers.js does, so that no engine's Unicode case folding
     * (U+017F long s against 's') can make the split differ */
    static const char ci[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
    static const char ascii[] = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
    char *buf = NULL;
    const char *hit = strstr(pat, ci);
    if (hit) {
        size_t a = (size_t)(hit - pat), n = strlen(pat);
        buf = malloc(n + sizeof ascii);
        if (!buf) return err_set(err, RLHF_ENOMEM, "out of memory");
        memcpy(buf, pat, a);
        memcpy(buf + a, ascii, sizeof ascii - 1);
        strcpy(buf + a + sizeof ascii - 1, hit + sizeof ci - 1);
        pat = buf;
    }
    int ec;
    PCRE2_SIZE eo;
    *out = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                         PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
    if (!*out) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        int rc = err_set(err, RLHF_EFORMAT, "%s: regex /%s/ at offset %zu: %s", where, pat,
                         (size_t)eo, (char *)msg);
        free(buf);
        return rc;
    }
    free(buf);
    pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if absent */
    return RLHF_OK;
}

/* A {"String": s} or {"Regex": r} pattern into step s. */
static int parse_pattern(const cJSON *o, const char *where, Step *s, Err *err) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "pattern");
    const char *str = get_str(p, "String"), *re = get_str(p, "Regex");
    if (str) {
        if (!*str) return err_set(err, RLHF_EFORMAT, "%s: pattern.String is empty", where);
        s->str = dup_str(str, &s->str_len);
        return s->str ? RLHF_OK : err_set(err, RLHF_ENOMEM, "out of memory");
    }
    if (re) return compile_re(re, where, &s->re, err);
    return err_set(err, RLHF_EFORMAT, "%s: pattern needs a \"String\" or a \"Regex\"", where);
}

static int parse_norm(const cJSON *j, const char *where, HfChain *c, Err *err) {
    const char *type = get_str(j, "type");
    if (!type) return err_set(err, RLHF_EFORMAT, "%s: no \"type\"", where);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "normalizers"), *e;
        if (!cJSON_IsArray(list))
            return err_set(err, RLHF_EFORMAT, "%s: Sequence without a \"normalizers\" list", where);
        cJSON_ArrayForEach(e, list) {
            int rc = parse_norm(e, where, c, err);
            if (rc) return rc;
        }
        return RLHF_OK;
    }
    static const char *const simple[] = {"NFC", "NFD", "NFKC", "NFKD", "Lowercase"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(type, simple[i]))
            return push_step(c, N_NFC + i) ? RLHF_OK : err_set(err, RLHF_ENOMEM, "out of memory");
    Step *s;
    if (!strcmp(type, "Prepend")) {
        const char *p = get_str(j, "prepend");
        if (!p) return err_set(err, RLHF_EFORMAT, "%s: Prepend without \"prepend\"", where);
        if (!(s = push_step(c, N_PREPEND)) || !(s->str = dup_str(p, &s->str_len)))
            return err_set(err, RLHF_ENOMEM, "out of memory");
        return RLHF_OK;
    }
    if (!strcmp(type, "Replace")) {
        const char *content = get_str(j, "content");
        if (!content) return err_set(err, RLHF_EFORMAT, "%s: Replace without \"content\"", where);
        if (!(s = push_step(c, N_REPLACE)) || !(s->content = dup_str(content, &s->content_len)))
            return err_set(err, RLHF_ENOMEM, "out of memory");
        return parse_pattern(j, where, s, err);
    }
    if (!strcmp(type, "Strip")) {
        if (!(s = push_step(c, N_STRIP))) return err_set(err, RLHF_ENOMEM, "out of memory");
        s->flag_a = get_bool(j, "strip_left", 1);
        s->flag_b = get_bool(j, "strip_right", 1);
        return RLHF_OK;
    }
    return err_set(err, RLHF_EFORMAT,
                   "%s: type \"%s\" is not supported (NFC, NFD, NFKC, NFKD, Lowercase, Prepend, "
                   "Replace, Strip, Sequence)",
                   where, type);
}

static int parse_pre(const cJSON *j, const char *where, HfChain *c, Err *err) {
    const char *type = get_str(j, "type");
    if (!type) return err_set(err, RLHF_EFORMAT, "%s: no \"type\"", where);
    Step *s;
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "pretokenizers"), *e;
        if (!cJSON_IsArray(list))
            return err_set(err, RLHF_EFORMAT, "%s: Sequence without a \"pretokenizers\" list",
                           where);
        cJSON_ArrayForEach(e, list) {
            int rc = parse_pre(e, where, c, err);
            if (rc) return rc;
        }
        return RLHF_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        if (!(s = push_step(c, P_BYTELEVEL))) return err_set(err, RLHF_ENOMEM, "out of memory");
        s->flag_a = get_bool(j, "add_prefix_space", 1);
        s->flag_b = get_bool(j, "use_regex", 1);
        return s->flag_b ? compile_re(GPT2_RE, where, &s->re, err) : RLHF_OK;
    }
    if (!strcmp(type, "Split")) {
        static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious",
                                            "MergedWithNext", "Contiguous"};
        const char *b = get_str(j, "behavior");
        if (!(s = push_step(c, P_SPLIT))) return err_set(err, RLHF_ENOMEM, "out of memory");
        s->behavior = -1;
        for (int i = 0; b && i < 5; i++)
            if (!strcmp(b, names[i])) s->behavior = i;
        if (s->behavior < 0)
            return err_set(err, RLHF_EFORMAT, "%s: Split behavior \"%s\" is not supported", where,
                           b ? b : "(missing)");
        s->invert = get_bool(j, "invert", 0);
        return parse_pattern(j, where, s, err);
    }
    if (!strcmp(type, "Digits")) {
        if (!(s = push_step(c, P_SPLIT))) return err_set(err, RLHF_ENOMEM, "out of memory");
        s->behavior = B_ISOLATED;
        return compile_re(get_bool(j, "individual_digits", 0) ? "\\p{N}" : "\\p{N}+", where, &s->re,
                          err);
    }
    if (!strcmp(type, "Metaspace")) {
        const char *r = get_str(j, "replacement"), *scheme = get_str(j, "prepend_scheme");
        if (r && !hf_one_char(r))
            return err_set(err, RLHF_EFORMAT,
                           "%s: Metaspace replacement \"%s\" is not one character", where, r);
        if (!(s = push_step(c, P_METASPACE)) ||
            !(s->str = dup_str(r ? r : "\xe2\x96\x81", &s->str_len)))
            return err_set(err, RLHF_ENOMEM, "out of memory");
        s->flag_a = get_bool(j, "split", 1);
        s->scheme = get_bool(j, "add_prefix_space", 1) ? SCHEME_ALWAYS : SCHEME_NEVER;
        if (scheme && !strcmp(scheme, "first"))
            s->scheme = SCHEME_FIRST;
        else if (scheme && !strcmp(scheme, "never"))
            s->scheme = SCHEME_NEVER;
        else if (scheme && !strcmp(scheme, "always"))
            s->scheme = SCHEME_ALWAYS;
        else if (scheme)
            return err_set(err, RLHF_EFORMAT, "%s: Metaspace prepend_scheme \"%s\" is unknown",
                           where, scheme);
        return RLHF_OK;
    }
    return err_set(err, RLHF_EFORMAT,
                   "%s: type \"%s\" is not supported (ByteLevel, Split, Metaspace, Digits, "
                   "Sequence)",
                   where, type);
}

static int parse_chain(const cJSON *j, const char *where, HfChain **out, Err *err, int pre) {
    *out = NULL;
    if (!j || cJSON_IsNull(j)) return RLHF_OK;
    if (!cJSON_IsObject(j)) return err_set(err, RLHF_EFORMAT, "%s: not an object", where);
    HfChain *c = calloc(1, sizeof *c);
    if (!c) return err_set(err, RLHF_ENOMEM, "out of memory");
    int rc = pre ? parse_pre(j, where, c, err) : parse_norm(j, where, c, err);
    if (rc) {
        hf_chain_free(c);
        return rc;
    }
    *out = c;
    return RLHF_OK;
}

int hf_norm_parse(const cJSON *j, const char *where, HfChain **out, Err *err) {
    return parse_chain(j, where, out, err, 0);
}
int hf_pre_parse(const cJSON *j, const char *where, HfChain **out, Err *err) {
    return parse_chain(j, where, out, err, 1);
}

int hf_pre_byte_level(const HfChain *c) {
    for (int i = 0; c && i < c->n; i++)
        if (c->v[i].type == P_BYTELEVEL) return 1;
    return 0;
}

/* ---- scratch ---------------------------------------------------------------------- */

HfScratch *hf_scratch_new(void) {
    HfScratch *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->md = pcre2_match_data_create(4, NULL);
    s->mc = pcre2_match_context_create(NULL);
    /* long whitespace runs under \s+(?!\S) backtrack deeply: give JIT room */
    s->js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!s->md || !s->mc) {
        hf_scratch_free(s);
        return NULL;
    }
    if (s->js) pcre2_jit_stack_assign(s->mc, NULL, s->js);
    return s;
}

void hf_scratch_free(HfScratch *s) {
    if (!s) return;
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mc);
    pcre2_jit_stack_free(s->js);
    hf_pieces_free(&s->tmp);
    free(s);
}

/* Next match of step st in s[from..n): 1 with [*a, *b), or 0. Empty matches are skipped. */
static int find(const Step *st, HfScratch *sc, const char *s, size_t n, size_t from, size_t *a,
                size_t *b) {
    if (!st->re) {
        /* the loader refuses empty literals; one here would match nowhere */
        const char *h =
            from < n && st->str_len ? memmem(s + from, n - from, st->str, st->str_len) : NULL;
        if (!h) return 0;
        *a = (size_t)(h - s);
        *b = *a + st->str_len;
        return 1;
    }
    while (from < n) {
        int rc = pcre2_match(st->re, (PCRE2_SPTR)s, n, from, 0, sc->md, sc->mc);
        if (rc < 0) return 0;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
        if (ov[1] > ov[0]) {
            *a = ov[0];
            *b = ov[1];
            return 1;
        }
        from = ov[0] + 1; /* an empty match: step over one character */
        while (from < n && ((unsigned char)s[from] & 0xC0) == 0x80)
            from++;
    }
    return 0;
}

/* ---- normalizers ---------------------------------------------------------------- */

static int utf8_step(const unsigned char *s, size_t n, size_t i, int32_t *cp) {
    utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), cp);
    if (k <= 0) {
        *cp = -1;
        return 1;
    }
    return (int)k;
}

static int norm_step(const Step *st, HfScratch *sc, const char *s, size_t n, HfPieces *out) {
    hf_pieces_clear(out);
    int rc = RLHF_OK;
    switch (st->type) {
    case N_NFC:
    case N_NFD:
    case N_NFKC:
    case N_NFKD: {
        static const int opts[] = {UTF8PROC_COMPOSE, UTF8PROC_DECOMPOSE,
                                   UTF8PROC_COMPOSE | UTF8PROC_COMPAT,
                                   UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT};
        utf8proc_uint8_t *r = NULL;
        /* invalid UTF-8 makes utf8proc refuse; such text is left as it is */
        utf8proc_ssize_t m = n ? utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &r,
                                              UTF8PROC_STABLE | opts[st->type - N_NFC])
                               : 0;
        if (m >= 0 && r)
            rc = hf_pieces_add(out, (char *)r, (size_t)m);
        else
            rc = hf_pieces_add(out, s, n);
        free(r);
        return rc;
    }
    case N_LOWER: {
        rc = hf_pieces_add(out, "", 0);
        for (size_t i = 0; !rc && i < n;) {
            int32_t cp;
            int k = utf8_step((const unsigned char *)s, n, i, &cp);
            if (cp < 0) {
                rc = pieces_extend(out, s + i, 1);
            } else {
                utf8proc_uint8_t b[4];
                utf8proc_ssize_t m = utf8proc_encode_char(utf8proc_tolower(cp), b);
                rc = pieces_extend(out, (char *)b, (size_t)m);
            }
            i += (size_t)k;
        }
        return rc;
    }
    case N_PREPEND:
        if (!n) return hf_pieces_add(out, "", 0);
        rc = hf_pieces_add(out, st->str, st->str_len);
        return rc ? rc : pieces_extend(out, s, n);
    case N_REPLACE: {
        rc = hf_pieces_add(out, "", 0);
        size_t pos = 0, a, b;
        while (!rc && find(st, sc, s, n, pos, &a, &b)) {
            rc = pieces_extend(out, s + pos, a - pos);
            if (!rc) rc = pieces_extend(out, st->content, st->content_len);
            pos = b;
        }
        return rc ? rc : pieces_extend(out, s + pos, n - pos);
    }
    case N_STRIP: {
        size_t a = 0, b = n;
        while (st->flag_a && a < b) {
            int32_t cp;
            int k = utf8_step((const unsigned char *)s, n, a, &cp);
            if (cp < 0 || !(utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS || (cp >= 9 && cp <= 13)))
                break;
            a += (size_t)k;
        }
        while (st->flag_b && b > a) {
            size_t c = b - 1;
            while (c > a && ((unsigned char)s[c] & 0xC0) == 0x80)
                c--;
            int32_t cp;
            utf8_step((const unsigned char *)s, b, c, &cp);
            if (cp < 0 || !(utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS || (cp >= 9 && cp <= 13)))
                break;
            b = c;
        }
        return hf_pieces_add(out, s + a, b - a);
    }
    }
    return RLHF_EINVAL;
}

int hf_norm_apply(const HfChain *c, HfScratch *sc, const char *s, size_t n, HfPieces *out) {
    hf_pieces_clear(out);
    int rc = hf_pieces_add(out, s, n);
    for (int i = 0; !rc && c && i < c->n; i++) {
        rc = norm_step(&c->v[i], sc, out->s, out->len[0], &sc->tmp);
        if (!rc) swap_pieces(out, &sc->tmp);
    }
    return rc;
}

/* ---- pre-tokenizers ------------------------------------------------------------- */

/* Splits piece s[0..n) by the matches of st (HF's SplitDelimiterBehavior) into out. */
static int split_piece(const Step *st, HfScratch *sc, const char *s, size_t n, int behavior,
                       int invert, HfPieces *out) {
    /* walk the piece as alternating (gap, match) runs; "prev" is whether the last
     * run emitted was a match, as HF's folds track it */
    size_t pos = 0, a, b;
    int prev_match = 0, have = 0; /* have: out's last piece belongs to this piece */
    int rc = RLHF_OK;
    while (!rc && pos < n) {
        int found = find(st, sc, s, n, pos, &a, &b);
        if (!found) a = b = n;
        for (int part = 0; part < 2 && !rc; part++) {
            size_t x = part ? a : pos, y = part ? b : a;
            if (y <= x) continue;
            int is_match = part ^ invert;
            switch (behavior) {
            case B_REMOVED:
                if (!is_match) rc = hf_pieces_add(out, s + x, y - x);
                break;
            case B_ISOLATED:
                rc = hf_pieces_add(out, s + x, y - x);
                break;
            case B_PREV:
                if (is_match && !prev_match && have)
                    rc = pieces_extend(out, s + x, y - x);
                else
                    rc = hf_pieces_add(out, s + x, y - x);
                break;
            case B_NEXT:
                /* a match opens a piece that the following gap joins */
                if (!is_match && prev_match && have)
                    rc = pieces_extend(out, s + x, y - x);
                else
                    rc = hf_pieces_add(out, s + x, y - x);
                break;
            case B_CONTIGUOUS:
                if (is_match == prev_match && have)
                    rc = pieces_extend(out, s + x, y - x);
                else
                    rc = hf_pieces_add(out, s + x, y - x);
                break;
            }
            have = 1;
            prev_match = is_match;
        }
        pos = b;
    }
    return rc;
}

static int pre_step(const Step *st, HfScratch *sc, const HfPieces *in, HfPieces *out,
                    int at_start) {
    hf_pieces_clear(out);
    int rc = RLHF_OK;
    for (int i = 0; !rc && i < in->n; i++) {
        const char *s = in->s + in->off[i];
        size_t n = in->len[i];
        switch (st->type) {
        case P_SPLIT:
            rc = split_piece(st, sc, s, n, st->behavior, st->invert, out);
            break;
        case P_BYTELEVEL: {
            const char *p = s;
            HfPieces one = {0};
            if (st->flag_a && (n == 0 || s[0] != ' ')) {
                rc = hf_pieces_add(&one, " ", 1);
                if (!rc) rc = pieces_extend(&one, s, n);
                p = one.s;
                n++;
            }
            if (!rc && st->flag_b)
                rc = split_piece(st, sc, p, n, B_ISOLATED, 0, out);
            else if (!rc)
                rc = hf_pieces_add(out, p, n);
            hf_pieces_free(&one);
            break;
        }
        case P_METASPACE: {
            HfPieces one = {0};
            int first = at_start && i == 0;
            int pre = st->scheme == SCHEME_ALWAYS || (st->scheme == SCHEME_FIRST && first);
            /* HF replaces spaces first, so a leading space counts as the replacement */
            int has =
                (n && s[0] == ' ') || (n >= st->str_len && memcmp(s, st->str, st->str_len) == 0);
            if (pre && !has)
                rc = hf_pieces_add(&one, st->str, st->str_len);
            else
                rc = hf_pieces_add(&one, "", 0);
            for (size_t k = 0; !rc && k < n; k++)
                rc = s[k] == ' ' ? pieces_extend(&one, st->str, st->str_len)
                                 : pieces_extend(&one, s + k, 1);
            if (!rc && st->flag_a) {
                Step lit = {.str = st->str, .str_len = st->str_len};
                rc = split_piece(&lit, sc, one.s, one.len[0], B_NEXT, 0, out);
            } else if (!rc) {
                rc = hf_pieces_add(out, one.s, one.len[0]);
            }
            hf_pieces_free(&one);
            break;
        }
        }
    }
    return rc;
}

int hf_pre_apply(const HfChain *c, HfScratch *sc, HfPieces *io, int at_start) {
    int rc = RLHF_OK;
    for (int i = 0; !rc && c && i < c->n; i++) {
        rc = pre_step(&c->v[i], sc, io, &sc->tmp, at_start);
        if (!rc) swap_pieces(io, &sc->tmp);
    }
    return rc;
}

int hf_one_char(const char *s) {
    int32_t cp;
    size_t n = strlen(s);
    return n && utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &cp) ==
                    (utf8proc_ssize_t)n;
}

int hf_byte_char(int b) {
    /* printable Latin-1 bytes stand for themselves; the rest take 256, 257, ... in order */
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
    int n = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) n++;
    return 256 + n;
}
