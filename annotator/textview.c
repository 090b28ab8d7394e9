/* Text layout and word diff for the labeling screen (see textview.h). */
#include "annotator/textview.h"

#include <stdlib.h>
#include <string.h>

wchar_t *tv_widen(const char *s, int *n) {
    size_t len = strlen(s), tabs = 0;
    for (const char *t = strchr(s, '\t'); t; t = strchr(t + 1, '\t')) tabs++;
    wchar_t *w = malloc((len + tabs * (TV_TAB - 1) + 1) * sizeof *w);
    if (!w) return NULL;
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    int k = 0, col = 0; /* col: display column in the line, for tab stops */
    while (p < end) {
        unsigned c = *p, cp;
        int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
        if (extra < 0) {
            w[k++] = 0xFFFD;
            col++;
            p++;
            continue;
        }
        cp = extra ? c & (0x3F >> extra) : c;
        int ok = 1;
        for (int i = 1; i <= extra; i++) {
            if (p + i >= end || (p[i] & 0xC0) != 0x80) {
                ok = 0;
                break;
            }
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        static const unsigned min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (!ok || cp < min_cp[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            w[k++] = 0xFFFD;
            col++;
            p++;
            continue;
        }
        p += extra + 1;
        if (cp == '\t') {
            do w[k++] = ' ', col++;
            while (col % TV_TAB);
            continue;
        }
        if (cp == '\r') continue;
        if (cp != '\n' && (cp < 0x20 || cp == 0x7F || wcwidth((wchar_t)cp) < 0)) cp = '?';
        w[k++] = (wchar_t)cp;
        col = cp == '\n' ? 0 : col + tv_char_width((wchar_t)cp);
    }
    w[k] = 0;
    if (n) *n = k;
    return w;
}

int tv_char_width(wchar_t c) {
    if (c == '\n') return 0;
    int w = wcwidth(c);
    return w < 0 ? 1 : w;
}

int tv_width(const wchar_t *s, int n) {
    int w = 0;
    for (int i = 0; i < n; i++) w += tv_char_width(s[i]);
    return w;
}

int tv_wrap(const wchar_t *s, int n, int width, TvLine *lines, int max) {
    int count = 0, i = 0;
    if (width < 2) width = 2;
    for (;;) {
        int start = i, col = 0, brk = -1; /* brk: index just after the last space */
        while (i < n && s[i] != '\n') {
            int cw = tv_char_width(s[i]);
            if (col + cw > width) break;
            col += cw;
            if (s[i] == ' ') brk = i + 1;
            i++;
        }
        int end = i, next = i + 1, last = i >= n;
        if (i < n && s[i] != '\n') { /* the line is full */
            end = next = brk > start ? brk : i > start ? i : start + 1;
            while (next < n && s[next] == ' ') next++;
            last = next >= n;
        }
        while (end > start && s[end - 1] == ' ') end--; /* trailing spaces are not drawn */
        if (count < max) lines[count].start = start, lines[count].end = end;
        count++;
        if (last) break;
        i = next;
    }
    return count;
}

typedef struct Word {
    int start, end;
} Word;

static int split_words(const wchar_t *s, int n, Word *w, int max) {
    int k = 0;
    for (int i = 0; i < n;) {
        while (i < n && (s[i] == ' ' || s[i] == '\n')) i++;
        if (i >= n) break;
        int st = i;
        while (i < n && s[i] != ' ' && s[i] != '\n') i++;
        if (k == max) return -1;
        w[k].start = st;
        w[k].end = i;
        k++;
    }
    return k;
}

static int same_word(const wchar_t *a, Word x, const wchar_t *b, Word y) {
    return x.end - x.start == y.end - y.start &&
           wmemcmp(a + x.start, b + y.start, (size_t)(x.end - x.start)) == 0;
}

double tv_word_diff(const wchar_t *a, int na, const wchar_t *b, int nb, unsigned char *mark_a,
                    unsigned char *mark_b) {
    if (mark_a) memset(mark_a, 0, (size_t)na);
    if (mark_b) memset(mark_b, 0, (size_t)nb);
    Word *wa = malloc(TV_DIFF_MAX_WORDS * sizeof *wa), *wb = malloc(TV_DIFF_MAX_WORDS * sizeof *wb);
    int ka = wa ? split_words(a, na, wa, TV_DIFF_MAX_WORDS) : -1;
    int kb = wb ? split_words(b, nb, wb, TV_DIFF_MAX_WORDS) : -1;
    double sim = 0;
    unsigned short *L = NULL;
    if (ka < 0 || kb < 0) goto out;
    if (ka + kb == 0) {
        sim = 1;
        goto out;
    }
    /* L[i][j]: LCS length of wa[i..] and wb[j..] */
    L = calloc((size_t)(ka + 1) * (size_t)(kb + 1), sizeof *L);
    if (!L) goto out;
#define AT(i, j) L[(size_t)(i) * (size_t)(kb + 1) + (size_t)(j)]
    for (int i = ka - 1; i >= 0; i--)
        for (int j = kb - 1; j >= 0; j--)
            AT(i, j) = same_word(a, wa[i], b, wb[j]) ? AT(i + 1, j + 1) + 1
                       : AT(i + 1, j) >= AT(i, j + 1) ? AT(i + 1, j)
                                                       : AT(i, j + 1);
    sim = 2.0 * AT(0, 0) / (ka + kb);
    for (int i = 0, j = 0; i < ka || j < kb;) {
        if (i < ka && j < kb && same_word(a, wa[i], b, wb[j])) {
            i++, j++;
        } else if (j >= kb || (i < ka && AT(i + 1, j) >= AT(i, j + 1))) {
            if (mark_a) memset(mark_a + wa[i].start, 1, (size_t)(wa[i].end - wa[i].start));
            i++;
        } else {
            if (mark_b) memset(mark_b + wb[j].start, 1, (size_t)(wb[j].end - wb[j].start));
            j++;
        }
    }
#undef AT
out:
    free(L);
    free(wa);
    free(wb);
    return sim;
}
