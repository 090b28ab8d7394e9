/* A set of words: the words of a training corpus, to tell which words of a
 * model's answer its data never had (eval's "unknown words": text garbled
 * into words that are no words of the data). A word is a maximal run of
 * letters, ASCII letters folded to lower case; a byte >= 0x80 counts as a
 * letter, so broken bytes and non-ASCII text make words too. Digits and
 * punctuation separate words. */
#ifndef RLHF_WORDS_H
#define RLHF_WORDS_H

#include <stddef.h>

#include "util/err.h"

typedef struct WordSet {
    char **slot; /* open addressing: NULL or a NUL-terminated lower-case word */
    size_t cap, n;
} WordSet;

/* Adds every word of text[0..n). 0 or RLHF_ENOMEM. */
int wordset_add_text(WordSet *s, const char *text, size_t n);
/* Adds every word of the file at path (read whole, as pretraining reads its
 * corpus). An error names the file. */
int wordset_add_file(WordSet *s, const char *path, Err *err);
/* Adds every word of the comma-separated files of list ("a.txt,b.jsonl");
 * an error names the file, or the list when the files hold no word at all. */
int wordset_add_files(WordSet *s, const char *list, Err *err);
/* 1 when the n bytes at w (one word, any case) are in the set. */
int wordset_has(const WordSet *s, const char *w, size_t n);
/* The first word of text that the set lacks: where it starts, its length in
 * *n; NULL when every word is in the set. */
const char *wordset_first_unknown(const WordSet *s, const char *text, size_t *n);
void wordset_free(WordSet *s);

#endif
