/* The unit tests run on the OpenBLAS kernel rlhf itself would choose (the
 * constructor restarts this binary as rlhf's main does), so the
 * finite-difference and layer tests check the kernel users get. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "model/blas_select.h"

__attribute__((constructor)) static void choose_kernel(void) { blas_select_at_start(NULL); }

Test(blas_select, the_reason_matches_the_environment) {
    const char *env = getenv("OPENBLAS_CORETYPE"), *why = blas_kernel_reason();
    cr_assert(blas_kernel() && *blas_kernel());
    if (!env) {
        cr_assert(strstr(why, "OpenBLAS's own choice"), "%s", why);
        cr_assert_str_eq(blas_kernel(), blas_kernel_openblas_pick());
    } else if (getenv("RLHF_BLAS_FALLBACK")) {
        cr_assert(strstr(why, "chosen by rlhf"), "%s", why);
        cr_assert_str_neq(blas_kernel(), blas_kernel_openblas_pick());
    } else {
        cr_assert(strstr(why, "environment"), "%s", why);
    }
}
