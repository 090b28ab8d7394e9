/* Shared by the libFuzzer targets (make fuzz): the readers under test take
 * file paths, so each input is written to a scratch file of this process. */
#ifndef RLHF_TESTS_FUZZ_H
#define RLHF_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Writes data to /tmp/rlhf-fuzz-PID-NAME (NAME may carry an extension the
 * reader looks at) and returns that path (static storage). */
static inline const char *fuzz_file(const char *name, const uint8_t *data, size_t size) {
    static char path[256];
    snprintf(path, sizeof path, "%s/rlhf-fuzz-%ld-%s", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (long)getpid(), name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();
    return path;
}

#endif
