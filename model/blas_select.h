/* Which OpenBLAS kernel does the products, and why. Debian's OpenBLAS
 * predates many CPUs and falls back to its oldest x86-64 kernel (Prescott,
 * SSE3) on them, four times slower than what the CPU can run. OpenBLAS reads
 * OPENBLAS_CORETYPE once, when it is loaded, so the fix is to start again:
 * blas_select_at_start() re-executes the program once with the variable set
 * when the environment did not set it and OpenBLAS fell back below what the
 * CPU supports. An OPENBLAS_CORETYPE set in the environment is always obeyed.
 *
 * The choices: SkylakeX on CPUs with AVX-512 (F, BW, DQ, VL, CD), measured
 * correct (the reference and finite-difference tests) and faster than Haswell
 * on such a CPU; Haswell on any other CPU with AVX2 and FMA (the safe floor). */
#ifndef RLHF_MODEL_BLAS_SELECT_H
#define RLHF_MODEL_BLAS_SELECT_H

/* Call first thing in main (argv as main got it; NULL reads /proc/self/cmdline).
 * Returns only when no restart is needed or the restart failed. */
void blas_select_at_start(char **argv);

/* The kernel in use (OpenBLAS's name for it). */
const char *blas_kernel(void);
/* The kernel OpenBLAS picked by itself in this process or, after a restart,
 * in the one before it. */
const char *blas_kernel_openblas_pick(void);
/* Why this kernel: "OPENBLAS_CORETYPE set in the environment", "OpenBLAS's own
 * choice", "chosen by rlhf: OpenBLAS fell back to Prescott; the CPU has ...". */
const char *blas_kernel_reason(void);
/* The CPU's model name from /proc/cpuinfo (or "unknown"). */
const char *blas_cpu_name(void);

#endif
