/* Scratch files for the unit tests: a file with given text at a path, or
 * given bytes in a new file under /tmp. */
#ifndef RLHF_TESTS_UNIT_FILES_H
#define RLHF_TESTS_UNIT_FILES_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* The path of a new file holding the n bytes at data; the caller unlinks it
 * and frees the path. */
static inline char *write_tmp(const void *data, size_t n) {
    char *path = strdup("/tmp/rlhf-unit-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert(write(fd, data, n) == (ssize_t)n);
    close(fd);
    return path;
}

#endif
