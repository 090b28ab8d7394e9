/* OpenBLAS kernel selection at start-up (see blas_select.h). */
#include "model/blas_select.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

extern char *openblas_get_corename(void);

/* Set in the restarted process: what OpenBLAS had picked before. */
#define FALLBACK_VAR "RLHF_BLAS_FALLBACK"

/* Kernels of OpenBLAS that make full use of an AVX2+FMA CPU; anything else on
 * such a CPU is a fallback. */
static int modern_kernel(const char *k) {
    static const char *const good[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake",
                                       "SapphireRapids"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (strcasecmp(k, good[i]) == 0) return 1;
    return 0;
}

static const char *best_for_cpu(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512cd"))
        return "SkylakeX";
    return "Haswell";
#else
    return NULL;
#endif
}

static char **cmdline_argv(void) {
    FILE *f = fopen("/proc/self/cmdline", "rb");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    if (n == 0 || n >= sizeof buf - 1) return NULL;
    buf[n] = 0;
    static char *argv[1024];
    int argc = 0;
    for (size_t i = 0; i < n && argc < 1023; i += strlen(buf + i) + 1) argv[argc++] = buf + i;
    argv[argc] = NULL;
    return argv;
}

static char reason[160];
static char pick[32];

void blas_select_at_start(char **argv) {
    const char *env = getenv("OPENBLAS_CORETYPE"), *fell = getenv(FALLBACK_VAR);
    const char *now = openblas_get_corename();
    snprintf(pick, sizeof pick, "%s", fell && *fell ? fell : now);
    if (fell && *fell && env) {
        snprintf(reason, sizeof reason, "chosen by rlhf: OpenBLAS fell back to %s on this CPU", fell);
        return;
    }
    if (env && *env) {
        snprintf(reason, sizeof reason, "OPENBLAS_CORETYPE set in the environment");
        return;
    }
    const char *best = best_for_cpu();
    if (!best || modern_kernel(now)) {
        snprintf(reason, sizeof reason, "OpenBLAS's own choice");
        return;
    }
    if (!argv) argv = cmdline_argv();
    if (argv && setenv("OPENBLAS_CORETYPE", best, 1) == 0 && setenv(FALLBACK_VAR, now, 1) == 0) {
        execv("/proc/self/exe", argv);
    }
    /* the restart failed: run on, slowly, and say so */
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(FALLBACK_VAR);
    snprintf(reason, sizeof reason, "OpenBLAS's own choice (a fallback; restarting with %s failed)",
             best);
}

const char *blas_kernel(void) { return openblas_get_corename(); }

const char *blas_kernel_openblas_pick(void) {
    if (!pick[0]) snprintf(pick, sizeof pick, "%s", openblas_get_corename());
    return pick;
}

const char *blas_kernel_reason(void) { return reason[0] ? reason : "OpenBLAS's own choice"; }

const char *blas_cpu_name(void) {
    static char name[128];
    if (name[0]) return name;
    snprintf(name, sizeof name, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return name;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *c = strchr(line, ':');
        if (!c) break;
        c++;
        while (*c == ' ' || *c == '\t') c++;
        c[strcspn(c, "\n")] = 0;
        snprintf(name, sizeof name, "%s", c);
        break;
    }
    fclose(f);
    return name;
}
