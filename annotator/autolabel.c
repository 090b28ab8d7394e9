/* Simulated labelers: rule + noise, or an external judge (see autolabel.h). */
#include "annotator/autolabel.h"
#include "db/demos.h"
#include "util/progress.h"
#include "util/sys.h"
#include "util/text.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Levels from scores: higher is better, equal scores tie. */
static void levels_from_scores(const double *score, int n, unsigned char *level) {
    for (int i = 0; i < n; i++) {
        int distinct_better = 0;
        for (int j = 0; j < n; j++) {
            if (!(score[j] > score[i])) continue;
            int first = 1; /* count each better value once */
            for (int k = 0; k < j && first; k++) first = score[k] != score[j];
            distinct_better += first;
        }
        level[i] = (unsigned char)(distinct_better + 1);
    }
}

/* The rule's score of one answer in [0, 1], less AUTO_UNKNOWN_WORD_COST when
 * the labeler knows the language and the answer has a word it lacks. */
static double labeler_score(const Rule *r, const WordSet *known, const char *prompt,
                            const char *text) {
    double s = r->score(prompt, text);
    size_t len;
    if (known && known->n && wordset_first_unknown(known, text, &len))
        s -= AUTO_UNKNOWN_WORD_COST;
    if (!(s >= 0)) s = 0; /* also NAN */
    return s > 1 ? 1 : s;
}

void auto_rank_rule(const Rule *r, const WordSet *known, const char *prompt,
                    const char *const *texts, int n, double noise, Rng *rng, unsigned char *level,
                    unsigned char *likert) {
    double score[AUTO_MAX_TEXTS];
    for (int i = 0; i < n && i < AUTO_MAX_TEXTS; i++) {
        double s = labeler_score(r, known, prompt, texts[i]);
        likert[i] = (unsigned char)(1 + lround(6 * s));
        score[i] = s + (noise > 0 ? noise * rng_normal(rng) : 0);
    }
    levels_from_scores(score, n, level);
}

struct Judge {
    pid_t pid, pgid;
    int to, from; /* its stdin, its stdout */
    int timeout_ms;
    char cmd[256];
    StrBuf in;
};

int judge_start(const char *cmd, int timeout_ms, Judge **out, Err *err) {
    *out = NULL;
    int pin[2], pout[2];
    if (pipe(pin)) return err_set(err, RLHF_EIO, "judge: pipe: %s", strerror(errno));
    if (pipe(pout)) {
        close(pin[0]), close(pin[1]);
        return err_set(err, RLHF_EIO, "judge: pipe: %s", strerror(errno));
    }
    Judge *j = calloc(1, sizeof *j);
    if (!j) {
        close(pin[0]), close(pin[1]), close(pout[0]), close(pout[1]);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    /* a judge that dies must give EPIPE on write, not kill us */
    signal(SIGPIPE, SIG_IGN);
    pid_t pid = fork();
    if (pid < 0) {
        close(pin[0]), close(pin[1]), close(pout[0]), close(pout[1]);
        free(j);
        return err_set(err, RLHF_EIO, "judge: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        setpgid(0, 0); /* its own group, so a kill reaches what the shell started */
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        close(pin[0]), close(pin[1]), close(pout[0]), close(pout[1]);
        signal(SIGPIPE, SIG_DFL);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: whichever runs first */
    close(pin[0]);
    close(pout[1]);
    fcntl(pin[1], F_SETFD, FD_CLOEXEC);
    fcntl(pout[0], F_SETFD, FD_CLOEXEC);
    fcntl(pin[1], F_SETFL, fcntl(pin[1], F_GETFL) | O_NONBLOCK);
    j->pid = j->pgid = pid;
    j->to = pin[1];
    j->from = pout[0];
    j->timeout_ms = timeout_ms;
    snprintf(j->cmd, sizeof j->cmd, "%s", cmd);
    *out = j;
    return RLHF_OK;
}

/* Waits up to wait_ms for the judge to exit, then kills its process group.
 * Returns 1 with *status when it exited by itself. */
static int reap(Judge *j, int *status, int wait_ms) {
    if (j->pid <= 0) return 0;
    int exited = 0;
    for (int waited = 0;; waited += 10) {
        if (waitpid(j->pid, status, WNOHANG) == j->pid) {
            exited = 1;
            break;
        }
        if (waited >= wait_ms) break;
        usleep(10000);
    }
    kill(-j->pgid, SIGKILL); /* whatever it left behind */
    if (!exited) {
        kill(j->pid, SIGKILL);
        waitpid(j->pid, NULL, 0);
    }
    j->pid = -1;
    return exited;
}

/* Why the judge is gone, for an error message. */
static int judge_died(Judge *j, const char *when, Err *err) {
    int status = 0;
    if (reap(j, &status, 1000) && WIFEXITED(status))
        return err_set(err, RLHF_EIO, "judge '%s' exited with status %d %s", j->cmd, WEXITSTATUS(status), when);
    if (j->pid < 0 && WIFSIGNALED(status))
        return err_set(err, RLHF_EIO, "judge '%s' was killed by signal %d %s", j->cmd, WTERMSIG(status), when);
    return err_set(err, RLHF_EIO, "judge '%s' closed its output %s", j->cmd, when);
}

static int wait_fd(int fd, short ev, long long deadline) {
    long long left = deadline - sys_time_ms();
    if (left < 0) left = 0;
    struct pollfd p = {fd, ev, 0};
    int r;
    do r = poll(&p, 1, (int)left);
    while (r < 0 && errno == EINTR && !sys_interrupted());
    return r;
}

static int judge_ask(Judge *j, const char *line, size_t len, StrBuf *answer, Err *err) {
    long long deadline = sys_time_ms() + j->timeout_ms;
    for (size_t off = 0; off < len;) {
        if (wait_fd(j->to, POLLOUT, deadline) <= 0)
            return err_set(err, RLHF_EIO, "judge '%s' did not read its input within %d ms", j->cmd, j->timeout_ms);
        ssize_t w = write(j->to, line + off, len - off);
        if (w < 0 && errno == EAGAIN) continue;
        if (w < 0) return judge_died(j, "before reading the prompt", err);
        off += (size_t)w;
    }
    answer->len = 0;
    for (;;) {
        int r = wait_fd(j->from, POLLIN, deadline);
        if (sys_interrupted()) return err_set(err, RLHF_EINTR, "interrupted");
        if (r <= 0) return err_set(err, RLHF_EIO, "judge '%s' did not answer within %d ms", j->cmd, j->timeout_ms);
        char buf[4096];
        ssize_t got = read(j->from, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return judge_died(j, "before answering", err);
        char *nl = memchr(buf, '\n', (size_t)got);
        if (sb_append(answer, buf, nl ? (size_t)(nl - buf) : (size_t)got))
            return err_set(err, RLHF_ENOMEM, "out of memory");
        if (nl) return RLHF_OK; /* anything after the line is a protocol error we ignore */
        if (answer->len > (1u << 20))
            return err_set(err, RLHF_EFORMAT, "judge '%s' answered a line of over 1 MiB", j->cmd);
    }
}

static int bad_answer(Judge *j, const char *why, const char *ans, Err *err) {
    return err_set(err, RLHF_EFORMAT, "judge '%s' answered garbage (%s): %.200s", j->cmd, why, ans ? ans : "");
}

static int parse_answer(Judge *j, const char *ans, int n, unsigned char *level, unsigned char *likert, Err *err) {
    cJSON *o = cJSON_Parse(ans);
    int rc = RLHF_OK;
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return bad_answer(j, "not a JSON object", ans, err);
    }
    const cJSON *scores = cJSON_GetObjectItemCaseSensitive(o, "scores");
    const cJSON *order = cJSON_GetObjectItemCaseSensitive(o, "order");
    const cJSON *lk = cJSON_GetObjectItemCaseSensitive(o, "likert");
    memset(likert, 0, (size_t)n);
    if (cJSON_IsArray(scores)) {
        double s[RS_MAX_CAND];
        int k = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, scores) {
            if (k == n || !cJSON_IsNumber(e) || !isfinite(e->valuedouble)) {
                k = -1;
                break;
            }
            s[k++] = e->valuedouble;
        }
        if (k != n) rc = bad_answer(j, "\"scores\" must hold one finite number per candidate", ans, err);
        else levels_from_scores(s, n, level);
    } else if (cJSON_IsString(order)) {
        char msg[128];
        if (rs_expr_parse(order->valuestring, n, level, msg, sizeof msg) != RS_EXPR_ALL)
            rc = bad_answer(j, msg[0] ? msg : "\"order\" must rank every candidate", ans, err);
    } else if (cJSON_IsArray(order)) {
        int k = 0;
        memset(level, 0, (size_t)n);
        const cJSON *e;
        cJSON_ArrayForEach(e, order) {
            int v = cJSON_IsNumber(e) ? e->valueint : 0;
            if (k == n || v < 1 || v > n || level[v - 1]) {
                k = -1;
                break;
            }
            level[v - 1] = (unsigned char)++k;
        }
        if (k != n) rc = bad_answer(j, "\"order\" must list each position 1..n once", ans, err);
    } else {
        rc = bad_answer(j, "expected \"scores\" or \"order\"", ans, err);
    }
    if (!rc && lk) {
        int k = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, lk) {
            if (k == n || !cJSON_IsNumber(e) || e->valueint < 1 || e->valueint > 7) {
                k = -1;
                break;
            }
            likert[k++] = (unsigned char)e->valueint;
        }
        if (k != n) rc = bad_answer(j, "\"likert\" must hold one integer 1..7 per candidate", ans, err);
    }
    cJSON_Delete(o);
    return rc;
}

int judge_rank(Judge *j, const LabelItem *it, unsigned char *level, unsigned char *likert, Err *err) {
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    if (!o || !arr) {
        cJSON_Delete(o), cJSON_Delete(arr);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    cJSON_AddNumberToObject(o, "prompt_id", (double)it->prompt_id);
    cJSON_AddStringToObject(o, "prompt", it->prompt);
    cJSON_AddItemToObject(o, "candidates", arr);
    for (int pos = 0; pos < it->n; pos++) {
        const CandidateRow *c = &it->cand[it->shown[pos]];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "id", (double)c->id);
        cJSON_AddStringToObject(e, "model", c->model_name ? c->model_name : "");
        cJSON_AddStringToObject(e, "text", c->text);
        cJSON_AddItemToArray(arr, e);
    }
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!line) return err_set(err, RLHF_ENOMEM, "out of memory");
    size_t len = strlen(line);
    line[len] = '\n'; /* cJSON's buffer holds the NUL we replace; write len + 1 bytes */
    int rc = judge_ask(j, line, len + 1, &j->in, err);
    free(line);
    if (!rc) rc = parse_answer(j, j->in.s ? j->in.s : "", it->n, level, likert, err);
    return rc;
}

void judge_stop(Judge *j) {
    if (!j) return;
    if (j->to >= 0) close(j->to);
    if (j->from >= 0) close(j->from);
    int status;
    reap(j, &status, 200); /* it should exit on end of input */
    sb_free(&j->in);
    free(j);
}

int auto_run(LabelSession *s, const AutoOpts *o, AutoStats *st, Err *err) {
    Judge *judge = NULL;
    int rc = RLHF_OK;
    double t0 = now_seconds();
    memset(st, 0, sizeof *st);
    if (o->cmd) rc = judge_start(o->cmd, o->timeout_ms, &judge, err);
    while (!rc && (!o->limit || st->ranked < o->limit)) {
        if (sys_interrupted()) {
            rc = err_set(err, RLHF_EINTR, "interrupted; %lld prompts were stored", (long long)st->ranked);
            break;
        }
        LabelItem it;
        rc = ls_next(s, &it, err);
        if (rc || !it.prompt_id) break;
        long long t_item = sys_time_ms();
        unsigned char level[RS_MAX_CAND], likert[RS_MAX_CAND];
        if (judge) {
            rc = judge_rank(judge, &it, level, likert, err);
        } else {
            const char *texts[RS_MAX_CAND];
            for (int pos = 0; pos < it.n; pos++) texts[pos] = it.cand[it.shown[pos]].text;
            Rng r;
            rng_seed(&r, o->seed ^ ((uint64_t)it.prompt_id * 0x9E3779B97F4A7C15ULL));
            auto_rank_rule(o->rule, o->known, it.prompt, texts, it.n, o->noise, &r, level, likert);
        }
        RankState rs;
        if (!rc && rs_init(&rs, it.n) == 0) {
            rs_set_levels(&rs, level);
            for (int pos = 0; pos < it.n; pos++) {
                rs_focus_set(&rs, pos);
                rs_score(&rs, likert[pos]);
            }
            rc = ls_submit(s, &it, &rs.cur, sys_time_ms() - t_item, NULL, err);
            rs_free(&rs);
            if (!rc) st->ranked++, st->gold += it.is_gold;
        }
        if (rc) {
            /* nothing of this prompt is stored: give it back to the queue */
            Err e2 = {0};
            db_assign_release(s->db, s->labeler_id, it.prompt_id, &e2);
            err_prefix(err, "prompt %lld: ", (long long)it.prompt_id);
        }
        ls_item_free(&it);
    }
    judge_stop(judge);
    st->seconds = now_seconds() - t0;
    return rc;
}

/* One simulated demonstration (see auto_write); *wrote is 0 when the rule
 * cannot answer the prompt. */
static int write_one(LabelSession *s, const AutoOpts *o, const LabelItem *it, int *wrote,
                     Err *err) {
    char clean[256], text[1024];
    long long t0 = sys_time_ms();
    *wrote = rule_demo_answer(it->prompt, clean, sizeof clean);
    if (!*wrote) return RLHF_OK;
    Rng r;
    rng_seed(&r, o->seed ^ ((uint64_t)it->prompt_id * 0x9E3779B97F4A7C15ULL) ^ 0x5752495445ULL);
    int best = -1;
    double best_s = -1e300;
    for (int i = 0; i < it->n; i++) {
        const char *c = it->cand[it->shown[i]].text;
        double sc = labeler_score(o->rule, o->known, it->prompt, c) +
                    (o->noise > 0 ? o->noise * rng_normal(&r) : 0);
        if (sc > best_s) best_s = sc, best = it->shown[i];
    }
    int slip = o->noise > 0 && rng_double(&r) < (o->noise < 1 ? o->noise : 1);
    const char *from = best >= 0 ? it->cand[best].text : "";
    if (slip && best >= 0 && *from) { /* a hasty edit: the first sentence, as it stands */
        size_t len = strcspn(from, ".!?\n");
        snprintf(text, sizeof text, "%.*s.", (int)(len < 900 ? len : 900), from);
    } else
        snprintf(text, sizeof text, "%s", clean);
    DemoIn d = {it->prompt_id,
                s->labeler_id,
                s->name,
                text,
                best >= 0 ? it->cand[best].id : 0,
                sys_time_ms() - t0,
                text_edit_distance(from, text),
                1,
                s->source,
                1};
    return db_demo_store(s->db, &d, NULL, err);
}

int auto_write(LabelSession *s, const AutoOpts *o, AutoStats *st, Err *err) {
    int rc = RLHF_OK;
    double t0 = now_seconds();
    memset(st, 0, sizeof *st);
    while (!rc && (!o->limit || st->ranked < o->limit)) {
        if (sys_interrupted()) {
            rc = err_set(err, RLHF_EINTR, "interrupted; %lld answers were stored",
                         (long long)st->ranked);
            break;
        }
        LabelItem it;
        rc = ls_next(s, &it, err);
        if (rc || !it.prompt_id) break;
        int wrote = 0;
        rc = write_one(s, o, &it, &wrote, err);
        if (!rc && !wrote)
            rc = db_assign_finish(s->db, s->labeler_id, it.prompt_id, ASSIGN_WRITE, 1, err);
        if (!rc) st->ranked += wrote, st->gold += !wrote;
        if (rc) {
            Err e2 = {0};
            db_assign_release(s->db, s->labeler_id, it.prompt_id, &e2);
            err_prefix(err, "prompt %lld: ", (long long)it.prompt_id);
        }
        ls_item_free(&it);
    }
    st->seconds = now_seconds() - t0;
    return rc;
}
