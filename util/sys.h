/* Operating-system pieces shared by the modules: atomic file writes, an
 * interrupt flag set by SIGINT/SIGTERM so long work can stop cleanly, and time. */
#ifndef RLHF_SYS_H
#define RLHF_SYS_H

#include <stdio.h>

#include "util/err.h"

/* Writes go to PATH.tmp.PID.XXXXXX (made by mkstemp); commit fsyncs, renames over PATH and fsyncs the
 * directory, so readers see the old file or the whole new one, never a part. */
typedef struct AtomicFile {
    FILE *f;
    char path[1024];
    char tmp[1100];
} AtomicFile;

int atomic_open(AtomicFile *a, const char *path, Err *err);
int atomic_commit(AtomicFile *a, Err *err); /* closes; removes the temporary on failure */
void atomic_abort(AtomicFile *a);           /* closes and removes the temporary */
/* A run killed while writing leaves PATH.tmp.PID.XXXXXX behind; removes those whose
 * process is gone (call before writing PATH again). */
void atomic_remove_stale(const char *path);

/* Installs SIGINT/SIGTERM handlers that set a flag instead of killing the
 * process; a second signal kills as usual. */
void sys_catch_interrupts(void);
int sys_interrupted(void);
void sys_reset_interrupt(void);

/* Wall-clock time in milliseconds since the epoch. */
long long sys_time_ms(void);

/* Zeroed memory for the big arrays (weights, gradients, optimizer moments):
 * from 64 MiB up, its own mapping with transparent huge pages asked for, so
 * filling it and walking it cost fewer page faults and TLB misses. Free only
 * with sys_free_big. */
void *sys_alloc_big(size_t bytes);
void sys_free_big(void *p);
/* Resizes memory from sys_alloc_big (old_bytes: its size); a large mapping
 * is moved by mremap, without copying its pages (no second copy in memory);
 * new bytes are zero. NULL on failure (p is then unchanged). */
void *sys_realloc_big(void *p, size_t old_bytes, size_t bytes);

/* Reads a whole file into a NUL-terminated buffer the caller frees. */
int sys_read_file(const char *path, char **out, size_t *len, Err *err);

#endif
