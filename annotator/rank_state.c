/* The ranking state machine (see rank_state.h). Every edit builds the next
 * RankCore from the current one and commits it only if it differs, so no-op
 * keys do not fill the undo stack. */
#include "annotator/rank_state.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rs_init(RankState *s, int n) {
    memset(s, 0, sizeof *s);
    if (n < 0 || n > RS_MAX_CAND) return -1; /* 0: a prompt to write an answer to */
    s->cur.n = n;
    return 0;
}

void rs_free(RankState *s) {
    free(s->undo);
    free(s->redo);
    s->undo = s->redo = NULL;
    s->n_undo = s->n_redo = 0;
}

static int push(RankCore **stack, int *n, const RankCore *c) {
    if (!*stack) {
        *stack = malloc(RS_UNDO_MAX * sizeof **stack);
        if (!*stack) return -1;
    }
    if (*n == RS_UNDO_MAX) { /* forget the oldest step */
        memmove(*stack, *stack + 1, (RS_UNDO_MAX - 1) * sizeof **stack);
        (*n)--;
    }
    (*stack)[(*n)++] = *c;
    return 0;
}

/* Makes next the current state; 1 if it changed something. */
static int commit(RankState *s, const RankCore *in) {
    RankCore next = *in;
    /* ranking a skipped prompt (in review) replaces the skip */
    if (next.skipped && s->cur.skipped &&
        (memcmp(next.level, s->cur.level, sizeof next.level) || next.none_ok != s->cur.none_ok)) {
        next.skipped = 0;
        memset(next.skip_reason, 0, sizeof next.skip_reason);
    }
    if (memcmp(&s->cur, &next, sizeof next) == 0) return 0;
    if (push(&s->undo, &s->n_undo, &s->cur)) return -1;
    s->n_redo = 0;
    s->cur = next;
    return 1;
}

int rs_undo(RankState *s) {
    if (!s->n_undo) return 0;
    if (push(&s->redo, &s->n_redo, &s->cur)) return -1;
    s->cur = s->undo[--s->n_undo];
    return 1;
}

int rs_redo(RankState *s) {
    if (!s->n_redo) return 0;
    if (push(&s->undo, &s->n_undo, &s->cur)) return -1;
    s->cur = s->redo[--s->n_redo];
    return 1;
}

void rs_focus_set(RankState *s, int i) {
    if (i < 0) i = 0;
    if (i >= s->cur.n) i = s->cur.n - 1;
    s->focus = i;
}

void rs_focus_move(RankState *s, int delta) {
    rs_focus_set(s, s->focus + delta);
}

int rs_groups(const RankCore *c) {
    int g = 0;
    for (int i = 0; i < c->n; i++)
        if (c->level[i] > g) g = c->level[i];
    return g;
}

int rs_n_ranked(const RankCore *c) {
    int k = 0;
    for (int i = 0; i < c->n; i++) k += c->level[i] > 0;
    return k;
}

static int group_size(const RankCore *c, int lv) {
    int k = 0;
    for (int i = 0; i < c->n; i++) k += c->level[i] == lv;
    return k;
}

/* Takes candidate i out of the order, closing the gap its group leaves. */
static void take_out(RankCore *c, int i) {
    int lv = c->level[i];
    if (!lv) return;
    c->level[i] = 0;
    if (group_size(c, lv)) return;
    for (int j = 0; j < c->n; j++)
        if (c->level[j] > lv) c->level[j]--;
}

/* Inserts candidate i (unranked) as a group of its own at position pos. */
static void put_alone(RankCore *c, int i, int pos) {
    int g = rs_groups(c);
    if (pos < 1) pos = 1;
    if (pos > g + 1) pos = g + 1;
    for (int j = 0; j < c->n; j++)
        if (c->level[j] >= pos) c->level[j]++;
    c->level[i] = (unsigned char)pos;
}

int rs_move(RankState *s, int delta) {
    RankCore c = s->cur;
    int i = s->focus, lv = c.level[i], g = rs_groups(&c);
    if (delta != 1 && delta != -1) return -1;
    if (!lv) {
        put_alone(&c, i, g + 1);
    } else if (group_size(&c, lv) > 1) {
        take_out(&c, i); /* the group keeps its level */
        put_alone(&c, i, delta > 0 ? lv + 1 : lv);
    } else {
        int other = lv + delta;
        if (other < 1 || other > g) return 0;
        for (int j = 0; j < c.n; j++)
            if (c.level[j] == other) c.level[j] = (unsigned char)lv;
        c.level[i] = (unsigned char)other;
    }
    return commit(s, &c);
}

int rs_place(RankState *s, int pos) {
    if (pos < 1 || pos > s->cur.n) return -1;
    RankCore c = s->cur;
    take_out(&c, s->focus);
    put_alone(&c, s->focus, pos);
    return commit(s, &c);
}

/* The levels the typed places make (distinct places in order; equal ones tie). */
static void levels_of_places(const RankCore *c, unsigned char *level) {
    int next = 1;
    memset(level, 0, RS_MAX_CAND);
    for (int p = 1; p <= c->n; p++) {
        int used = 0;
        for (int i = 0; i < c->n; i++)
            if (c->place[i] == p) level[i] = (unsigned char)next, used = 1;
        next += used;
    }
}

static int places_hold(const RankCore *c) {
    unsigned char level[RS_MAX_CAND];
    int any = 0;
    for (int i = 0; i < c->n; i++) any |= c->place[i];
    if (!any) return 0;
    levels_of_places(c, level);
    return memcmp(level, c->level, (size_t)c->n) == 0;
}

int rs_place_final(RankState *s, int pos) {
    RankCore c = s->cur;
    if (pos < 1 || pos > c.n) return -1;
    if (!places_hold(&c)) {
        int rank[RS_MAX_CAND];
        rs_ranks(&c, rank);
        for (int i = 0; i < c.n; i++) c.place[i] = (unsigned char)rank[i];
    }
    c.place[s->focus] = (unsigned char)pos;
    levels_of_places(&c, c.level);
    return commit(s, &c);
}

int rs_shown_place(const RankCore *c, int i) {
    if (places_hold(c)) return c->place[i];
    int rank[RS_MAX_CAND];
    rs_ranks(c, rank);
    return rank[i];
}

int rs_place_clash(const RankCore *c, int i) {
    if (!places_hold(c) || !c->place[i]) return -1;
    for (int j = 0; j < c->n; j++)
        if (j != i && c->place[j] == c->place[i]) return j;
    return -1;
}

int rs_tie_with(RankState *s, uint32_t mask) {
    const RankCore *c = &s->cur;
    int f = s->focus;
    unsigned char level[RS_MAX_CAND];
    memcpy(level, c->level, sizeof level);
    if (!level[f]) level[f] = (unsigned char)(rs_groups(c) + 1);
    for (int i = 0; i < c->n; i++)
        if (mask >> i & 1) level[i] = level[f];
    return rs_set_levels(s, level);
}

int rs_scores_contradict(const RankCore *c, int *a, int *b) {
    for (int i = 0; i < c->n; i++)
        for (int j = 0; j < c->n; j++) {
            if (i == j || !c->level[i] || !c->level[j] || !c->score[i] || !c->score[j]) continue;
            int above = c->level[i] < c->level[j] && c->score[i] < c->score[j];
            int tied = i < j && c->level[i] == c->level[j] && abs(c->score[i] - c->score[j]) >= 2;
            if (above || tied) {
                *a = i + 1, *b = j + 1;
                return 1;
            }
        }
    return 0;
}

int rs_tie_toggle(RankState *s) {
    RankCore c = s->cur;
    int i = s->focus, lv = c.level[i], g = rs_groups(&c);
    if (!lv) {
        if (!g) return -1; /* nothing ranked to tie with */
        c.level[i] = (unsigned char)g;
    } else if (group_size(&c, lv) > 1) {
        take_out(&c, i);
        put_alone(&c, i, lv + 1);
    } else {
        if (lv == 1) return -1; /* nothing above */
        take_out(&c, i);
        c.level[i] = (unsigned char)(lv - 1);
    }
    return commit(s, &c);
}

int rs_unrank(RankState *s) {
    RankCore c = s->cur;
    take_out(&c, s->focus);
    return commit(s, &c);
}

int rs_clear_order(RankState *s) {
    RankCore c = s->cur;
    memset(c.level, 0, sizeof c.level);
    return commit(s, &c);
}

int rs_score(RankState *s, int value) {
    if (value < 0 || value > 7) return -1;
    RankCore c = s->cur;
    c.score[s->focus] = (unsigned char)value;
    return commit(s, &c);
}

int rs_flag_toggle(RankState *s, int f) {
    if (f < 0 || f > 31) return -1;
    RankCore c = s->cur;
    c.flags[s->focus] ^= 1u << f;
    return commit(s, &c);
}

int rs_none_toggle(RankState *s) {
    RankCore c = s->cur;
    c.none_ok = !c.none_ok;
    return commit(s, &c);
}

int rs_set_note(RankState *s, const char *note) {
    RankCore c = s->cur;
    memset(c.note, 0, sizeof c.note); /* keeps memcmp meaningful */
    snprintf(c.note, sizeof c.note, "%s", note ? note : "");
    return commit(s, &c);
}

int rs_skip(RankState *s, const char *reason) {
    if (!reason || !*reason) return -1;
    RankCore c = s->cur;
    c.skipped = 1;
    memset(c.skip_reason, 0, sizeof c.skip_reason);
    snprintf(c.skip_reason, sizeof c.skip_reason, "%s", reason);
    return commit(s, &c);
}

int rs_set_levels(RankState *s, const unsigned char *level) {
    RankCore c = s->cur;
    /* renumber densely so that callers may pass any levels */
    memset(c.level, 0, sizeof c.level);
    int next = 1;
    for (int lv = 1; lv <= 255; lv++) {
        int used = 0;
        for (int i = 0; i < c.n; i++)
            if (level[i] == lv) c.level[i] = (unsigned char)next, used = 1;
        next += used;
    }
    return commit(s, &c);
}

int rs_apply_expr(RankState *s, const char *expr, char *msg, size_t msgn) {
    unsigned char level[RS_MAX_CAND];
    int k = rs_expr_parse(expr, s->cur.n, level, msg, msgn);
    if (k == RS_EXPR_EMPTY) return rs_clear_order(s);
    if (k < RS_EXPR_SOME) {
        if (k == RS_EXPR_OPEN && msg) snprintf(msg, msgn, "the expression ends in an operator");
        return -1;
    }
    return rs_set_levels(s, level);
}

int rs_complete(const RankCore *c) {
    if (c->skipped || c->none_ok) return 1;
    return c->n >= 2 && rs_n_ranked(c) == c->n;
}

void rs_ranks(const RankCore *c, int *rank) {
    for (int i = 0; i < c->n; i++) {
        rank[i] = 0;
        if (!c->level[i]) continue;
        int better = 0;
        for (int j = 0; j < c->n; j++) better += c->level[j] && c->level[j] < c->level[i];
        rank[i] = better + 1;
    }
}

void rs_format(const RankCore *c, char *buf, size_t n) {
    size_t len = 0;
    int g = rs_groups(c);
    if (n) buf[0] = 0;
    for (int lv = 1; lv <= g; lv++) {
        int first = 1;
        for (int i = 0; i < c->n; i++) {
            if (c->level[i] != lv) continue;
            const char *op = first ? (lv > 1 ? ">" : "") : "=";
            int w = snprintf(buf + len, len < n ? n - len : 0, "%s%d", op, i + 1);
            if (w > 0) len += (size_t)w;
            first = 0;
        }
    }
    if (n && len >= n) buf[n - 1] = 0;
}

int rs_expr_parse(const char *expr, int n, unsigned char *level, char *msg, size_t msgn) {
    unsigned char lv[RS_MAX_CAND] = {0};
    int cur = 1, seen_num = 0, after_op = 0, count = 0;
    char dummy[8];
    if (!msg) msg = dummy, msgn = sizeof dummy;
    msg[0] = 0;
    for (const char *p = expr; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        if (*p >= '0' && *p <= '9') {
            if (seen_num && !after_op) {
                snprintf(msg, msgn, "put > or = between two numbers");
                return RS_EXPR_BAD;
            }
            long v = 0;
            while (*p >= '0' && *p <= '9' && v <= 1000) v = v * 10 + (*p++ - '0');
            /* "1" may be the start of "12" when there are 12 candidates */
            int more = !*p && v >= 1 && v * 10 <= n;
            if ((v < 1 || v > n || lv[v - 1]) && more) return RS_EXPR_OPEN;
            if (v < 1 || v > n) {
                snprintf(msg, msgn, "no candidate %ld (there are 1-%d)", v, n);
                return RS_EXPR_BAD;
            }
            if (lv[v - 1]) {
                snprintf(msg, msgn, "candidate %ld appears twice", v);
                return RS_EXPR_BAD;
            }
            lv[v - 1] = (unsigned char)cur;
            count++;
            seen_num = 1;
            after_op = 0;
        } else if (*p == '>' || *p == '=') {
            if (!seen_num || after_op) {
                snprintf(msg, msgn, "'%c' needs a candidate number before it", *p);
                return RS_EXPR_BAD;
            }
            if (*p == '>') cur++;
            after_op = 1;
            p++;
        } else {
            snprintf(msg, msgn, "unexpected '%c': use numbers, > and =", *p);
            return RS_EXPR_BAD;
        }
    }
    if (!seen_num) return RS_EXPR_EMPTY;
    if (after_op) {
        if (count == n) {
            snprintf(msg, msgn, "every candidate is already ranked");
            return RS_EXPR_BAD;
        }
        return RS_EXPR_OPEN;
    }
    if (level) memcpy(level, lv, (size_t)n);
    if (count < n) snprintf(msg, msgn, "%d of %d ranked", count, n);
    return count == n ? RS_EXPR_ALL : RS_EXPR_SOME;
}

double rs_agreement(const int *rank, const int *gold_rank, int n) {
    int pairs = 0, agree = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (!gold_rank[i] || !gold_rank[j] || gold_rank[i] == gold_rank[j]) continue;
            pairs++;
            int g = gold_rank[i] < gold_rank[j] ? 1 : -1;
            int l = rank[i] && rank[j] && rank[i] != rank[j] ? (rank[i] < rank[j] ? 1 : -1) : 0;
            agree += g == l;
        }
    return pairs ? (double)agree / pairs : NAN;
}

void rs_clock_start(RankClock *k, long long now_ms, long long idle_ms) {
    k->last_ms = now_ms;
    k->spent_ms = 0;
    k->idle_ms = idle_ms;
}

void rs_clock_key(RankClock *k, long long now_ms) {
    long long gap = now_ms - k->last_ms;
    if (gap > 0 && gap <= k->idle_ms) k->spent_ms += gap;
    k->last_ms = now_ms;
}

long long rs_clock_spent(const RankClock *k, long long now_ms) {
    long long gap = now_ms - k->last_ms;
    return k->spent_ms + (gap > 0 && gap <= k->idle_ms ? gap : 0);
}

int rs_scores_parse(const char *text, int n, unsigned char *score, char *msg, size_t msgn) {
    int k = 0;
    if (msg && msgn) msg[0] = 0;
    for (const char *p = text; *p; p++) {
        if (*p == ' ' || *p == ',') continue;
        if ((*p < '0' || *p > '7') && *p != '-') {
            if (msg) snprintf(msg, msgn, "'%c' is not a score: 1-7, or 0 or - for none", *p);
            return RS_EXPR_BAD;
        }
        if (k == n) {
            if (msg) snprintf(msg, msgn, "more scores than the %d candidates", n);
            return RS_EXPR_BAD;
        }
        if (score) score[k] = (unsigned char)(*p == '-' ? 0 : *p - '0');
        k++;
    }
    if (!k) return RS_EXPR_EMPTY;
    if (k < n) {
        if (msg) snprintf(msg, msgn, "%d of %d: [%d] next", k, n, k + 1);
        return RS_EXPR_SOME;
    }
    if (msg) snprintf(msg, msgn, "all %d: Enter applies", n);
    return RS_EXPR_ALL;
}
