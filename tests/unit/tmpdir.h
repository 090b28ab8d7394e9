/* A scratch folder per test: tmpdir_setup/tmpdir_teardown as a Criterion
 * test's .init/.fini, tmp_path(name) for a path inside it (four at a time). */
#ifndef RLHF_TESTS_UNIT_TMPDIR_H
#define RLHF_TESTS_UNIT_TMPDIR_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

static char tmpdir_name[64];

static inline void tmpdir_setup(void) {
    snprintf(tmpdir_name, sizeof tmpdir_name, "/tmp/rlhf-unit-XXXXXX");
    cr_assert(mkdtemp(tmpdir_name));
}

static inline void tmpdir_teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir_name);
    cr_assert_eq(system(cmd), 0);
}

static inline const char *tmp_path(const char *name) {
    static char buf[4][160];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir_name, name);
    return buf[k];
}

#endif
