/* The labeler's editor on a draft file (see editor.h). */
#include "annotator/editor.h"
#include "util/sys.h"
#include "util/text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int on_path(const char *prog) {
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    char buf[1024];
    for (const char *p = path; *p;) {
        const char *q = strchr(p, ':');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        snprintf(buf, sizeof buf, "%.*s/%s", (int)len, len ? p : ".", prog);
        if (access(buf, X_OK) == 0) return 1;
        p = q ? q + 1 : p + len;
    }
    return 0;
}

void ed_command(char *buf, size_t n) {
    const char *term = getenv("TERM"), *v = getenv("VISUAL"), *e = getenv("EDITOR");
    int dumb = !term || strcmp(term, "dumb") == 0;
    if (v && *v && !dumb)
        snprintf(buf, n, "%s", v);
    else if (e && *e)
        snprintf(buf, n, "%s", e);
    else {
        static const char *const fallback[] = {"sensible-editor", "editor", "nano", "vi"};
        snprintf(buf, n, "vi");
        for (size_t i = 0; i < sizeof fallback / sizeof fallback[0]; i++)
            if (on_path(fallback[i])) {
                snprintf(buf, n, "%s", fallback[i]);
                break;
            }
    }
}

int ed_draft_path(const char *db_path, const char *name, char *buf, size_t n, Err *err) {
    char dir[1100];
    snprintf(dir, sizeof dir, "%s.drafts", db_path);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return err_set(err, RLHF_EIO, "%s: cannot make the drafts folder: %s", dir,
                       strerror(errno));
    if ((size_t)snprintf(buf, n, "%s/%s", dir, name) >= n)
        return err_set(err, RLHF_EINVAL, "%s: path too long", dir);
    return RLHF_OK;
}

int ed_draft_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

void ed_draft_remove(const char *path) {
    unlink(path);
}

void ed_result_free(EdResult *r) {
    free(r->text);
    free(r->meta);
    r->text = r->meta = NULL;
}

static int write_draft(const char *path, const char *initial, const char *context, const char *meta,
                       Err *err) {
    AtomicFile a;
    int rc = atomic_open(&a, path, err);
    if (rc) return rc;
    fputs(initial ? initial : "", a.f);
    if (initial && *initial && initial[strlen(initial) - 1] != '\n') fputc('\n', a.f);
    fprintf(a.f, "%s\n", ED_SCISSORS);
    fputs("# Everything from the line above down is ignored. An empty text cancels; if\n"
          "# the editor is killed, this draft is kept and comes back next time.\n",
          a.f);
    for (const char *p = context ? context : ""; *p;) {
        const char *q = strchr(p, '\n');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        fprintf(a.f, "#%s%.*s\n", len ? " " : "", (int)len, p);
        p += len + (q != NULL);
    }
    if (meta) fprintf(a.f, "# rlhf: %s\n", meta);
    return atomic_commit(&a, err);
}

/* Splits the file at the scissors: the text above (trailing blanks cut) and
 * the META line's value below. */
static int parse_draft(char *s, EdResult *r, Err *err) {
    char *cut = NULL;
    for (char *p = s; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, ED_SCISSORS, strlen(ED_SCISSORS)) == 0) {
            cut = p;
            break;
        }
    if (cut) {
        char *m = strstr(cut, "\n# rlhf: ");
        if (m) {
            m += 9;
            size_t len = strcspn(m, "\n");
            r->meta = strndup(m, len);
        }
        *cut = 0;
    }
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    r->text = strndup(s, n);
    if (!r->text) return err_set(err, RLHF_ENOMEM, "out of memory");
    return RLHF_OK;
}

int ed_edit(const char *path, const char *initial, const char *context, const char *meta,
            EdResult *r, Err *err) {
    memset(r, 0, sizeof *r);
    r->recovered = ed_draft_exists(path);
    int rc = r->recovered ? RLHF_OK : write_draft(path, initial, context, meta, err);
    if (rc) return rc;
    char cmd[1024];
    ed_command(cmd, sizeof cmd);
    long long t0 = sys_time_ms();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return err_set(err, RLHF_EIO, "cannot start the editor: %s", strerror(errno));
    if (pid == 0) {
        /* as git runs it: the command is shell words, the file its last argument */
        char script[1200];
        snprintf(script, sizeof script, "exec %s \"$@\"", cmd);
        execl("/bin/sh", "sh", "-c", script, cmd, path, (char *)NULL);
        _exit(127);
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR)
            return err_set(err, RLHF_EIO, "waiting for the editor: %s", strerror(errno));
    r->ms = sys_time_ms() - t0;
    if (WIFSIGNALED(ws)) {
        r->status = ED_KILLED, r->code = WTERMSIG(ws);
        return RLHF_OK;
    }
    if (WEXITSTATUS(ws) > 128 && WEXITSTATUS(ws) <= 128 + 64) { /* a shell's child killed */
        r->status = ED_KILLED, r->code = WEXITSTATUS(ws) - 128;
        return RLHF_OK;
    }
    if (WEXITSTATUS(ws) != 0) {
        r->status = ED_FAILED, r->code = WEXITSTATUS(ws);
        return RLHF_OK;
    }
    char *s = NULL;
    size_t len;
    if ((rc = sys_read_file(path, &s, &len, err))) return rc;
    if (strlen(s) != len)
        rc = err_set(err, RLHF_EFORMAT, "%s: the text holds a NUL byte", path);
    else if (utf8_invalid_at(s, len) >= 0)
        rc = err_set(err, RLHF_EFORMAT, "%s: not valid UTF-8 at byte %ld", path,
                     utf8_invalid_at(s, len));
    if (!rc) rc = parse_draft(s, r, err);
    free(s);
    return rc;
}
