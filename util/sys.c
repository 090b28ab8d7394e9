/* Atomic file replacement, interrupt flag, wall clock, whole-file reads. */
#include "util/sys.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

int atomic_open(AtomicFile *a, const char *path, Err *err) {
    memset(a, 0, sizeof *a);
    if (strlen(path) >= sizeof a->path) return err_set(err, RLHF_EINVAL, "%s: path too long", path);
    snprintf(a->path, sizeof a->path, "%s", path);
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        /* a device, a pipe (/dev/null, /dev/stdout): written in place, never
         * replaced by a renamed file (which, for root, would replace the device) */
        if ((a->f = fopen(path, "wb"))) return RLHF_OK;
        return err_set(err, RLHF_EIO, "%s: cannot write: %s", path, strerror(errno));
    }
    /* mkstemp: a fresh name made with O_EXCL, so no symlink or other file
     * planted at a guessable name is followed or overwritten; the pid in the
     * name lets atomic_remove_stale tell a dead writer's leftovers */
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld.XXXXXX", path, (long)getpid());
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        int e = errno;
        a->tmp[0] = '\0';
        return err_set(err, RLHF_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    mode_t mask = umask(0); /* mkstemp makes 0600; give the file what fopen would */
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        a->tmp[0] = '\0';
        return err_set(err, RLHF_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    return RLHF_OK;
}

void atomic_abort(AtomicFile *a) {
    if (a->f) fclose(a->f);
    a->f = NULL;
    if (a->tmp[0]) unlink(a->tmp);
}

int atomic_commit(AtomicFile *a, Err *err) {
    if (!a->tmp[0]) { /* written in place (atomic_open) */
        int bad = fflush(a->f) != 0 || ferror(a->f), e = errno;
        bad |= fclose(a->f) != 0;
        a->f = NULL;
        return bad ? err_set(err, RLHF_EIO, "%s: write failed: %s", a->path, strerror(e ? e : EIO))
                   : RLHF_OK;
    }
    if (fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0) {
        int e = errno;
        atomic_abort(a);
        return err_set(err, RLHF_EIO, "%s: write failed: %s", a->path, strerror(e ? e : EIO));
    }
    if (fclose(a->f) != 0) {
        a->f = NULL;
        int e = errno;
        unlink(a->tmp);
        return err_set(err, RLHF_EIO, "%s: close failed: %s", a->path, strerror(e));
    }
    a->f = NULL;
    if (rename(a->tmp, a->path) != 0) {
        int e = errno;
        unlink(a->tmp);
        return err_set(err, RLHF_EIO, "%s: rename failed: %s", a->path, strerror(e));
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", a->path);
    int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd); /* makes the rename itself durable; best effort */
        close(fd);
    }
    return RLHF_OK;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
    if (interrupted) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    interrupted = 1;
}

void sys_catch_interrupts(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int sys_interrupted(void) {
    return interrupted != 0;
}

void sys_reset_interrupt(void) {
    interrupted = 0;
}

long long sys_time_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int sys_read_file(const char *path, char **out, size_t *len, Err *err) {
    *out = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, RLHF_EIO, "%s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return err_set(err, RLHF_ENOMEM, "%s: out of memory", path);
    }
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            char *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                fclose(f);
                return err_set(err, RLHF_ENOMEM, "%s: out of memory", path);
            }
            buf = p;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return err_set(err, RLHF_EIO, "%s: read error", path);
    }
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return RLHF_OK;
}

void atomic_remove_stale(const char *out) {
    char dir[PATH_MAX], base[PATH_MAX];
    const char *slash = strrchr(out, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - out) : 1, slash ? out : ".");
    if (slash && slash == out) snprintf(dir, sizeof dir, "/");
    snprintf(base, sizeof base, "%s.tmp.", slash ? slash + 1 : out);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    size_t bl = strlen(base);
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, base, bl) != 0) continue;
        char *end;
        long pid = strtol(e->d_name + bl, &end, 10);
        /* PATH.tmp.PID.XXXXXX (mkstemp), or PATH.tmp.PID of older versions */
        if (*end == '.' && strlen(end) == 7) end += 7;
        if (*end || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char path[2 * PATH_MAX + 2];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

/* A page in front of the memory holds its mapping's size (0: from calloc). */
enum { BIG_MIN = 64 << 20, BIG_HEAD = 4096 };

void *sys_alloc_big(size_t bytes) {
    if (bytes < BIG_MIN) {
        char *p = calloc(1, bytes + BIG_HEAD);
        return p ? p + BIG_HEAD : NULL;
    }
    size_t len = bytes + BIG_HEAD;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    madvise(p, len, MADV_HUGEPAGE);
    memcpy(p, &len, sizeof len);
    return p + BIG_HEAD;
}

void *sys_realloc_big(void *p, size_t old_bytes, size_t bytes) {
    if (!p) return sys_alloc_big(bytes);
    char *base = (char *)p - BIG_HEAD;
    size_t len;
    memcpy(&len, base, sizeof len);
    if (len && bytes >= BIG_MIN) { /* the pages move, nothing is copied */
        size_t nl = bytes + BIG_HEAD;
        char *q = mremap(base, len, nl, MREMAP_MAYMOVE);
        if (q == MAP_FAILED) return NULL;
        memcpy(q, &nl, sizeof nl);
        return q + BIG_HEAD;
    }
    char *q = sys_alloc_big(bytes);
    if (!q) return NULL;
    memcpy(q, p, old_bytes < bytes ? old_bytes : bytes);
    sys_free_big(p);
    return q;
}

void sys_free_big(void *p) {
    if (!p) return;
    char *base = (char *)p - BIG_HEAD;
    size_t len;
    memcpy(&len, base, sizeof len);
    if (len) munmap(base, len);
    else free(base);
}
