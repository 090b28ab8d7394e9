/* Text layout for the labeling screen, free of curses so it can be tested:
 * UTF-8 to wide characters, word wrapping by display width (CJK and emoji take
 * two columns), and a word-level diff that shows what differs between two
 * nearly identical candidates. Needs a UTF-8 LC_CTYPE for wcwidth. */
#ifndef RLHF_TEXTVIEW_H
#define RLHF_TEXTVIEW_H

#include <wchar.h>

/* Decodes UTF-8 into a new wide string (caller frees); invalid bytes become
 * U+FFFD, tabs spaces up to the next tab stop (every TV_TAB columns), other
 * control characters (but newline) and
 * characters of no width '?'. *n gets the length. NULL when out of memory. */
#define TV_TAB 8
wchar_t *tv_widen(const char *s, int *n);

/* Display width of one character (0 for combining marks, 2 for wide). */
int tv_char_width(wchar_t c);
/* Display width of s[0..n). */
int tv_width(const wchar_t *s, int n);

typedef struct TvLine {
    int start, end; /* [start, end) into the wide string, without the break */
} TvLine;

/* Wraps s[0..n) into lines of at most width columns, breaking after spaces
 * where possible and at newlines; a word longer than a line is cut. Fills at
 * most max lines and returns how many lines the whole text needs. */
int tv_wrap(const wchar_t *s, int n, int width, TvLine *lines, int max);

/* Word-level diff: marks (1) the characters of words of a that are not in
 * the longest common subsequence of words with b, and the same for b.
 * Returns the similarity 2*common/(words_a + words_b) in [0, 1]; texts of over
 * TV_DIFF_MAX_WORDS words are not compared (0, no marks). */
#define TV_DIFF_MAX_WORDS 600
double tv_word_diff(const wchar_t *a, int na, const wchar_t *b, int nb, unsigned char *mark_a,
                    unsigned char *mark_b);

/* Two texts are worth highlighting when they are this similar but not equal. */
#define TV_NEAR_IDENTICAL 0.6

#endif
