/* Prompts written by labelers (see prompt_write.h). */
#include "annotator/prompt_write.h"
#include "annotator/editor.h"
#include "db/demos.h"
#include "util/sys.h"
#include "util/text.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *trimmed(const char *s, size_t n) {
    while (n && strchr(" \t\r\n", *s))
        s++, n--;
    while (n && strchr(" \t\r\n", s[n - 1]))
        n--;
    return strndup(s, n);
}

/* The blocks of a few-shot text: the instruction, then "### query" and
 * "### response" blocks in turn, ending with a query. */
static int fewshot(const char *w, char **prompt, char **examples, Err *err) {
    const char *first = strstr(w, "### query");
    if (!first)
        return err_set(err, RLHF_EINVAL,
                       "a fewshot prompt needs example blocks: a line '### query', its text, a "
                       "line '### response', its text, and a last '### query'");
    StrBuf out = {0};
    cJSON *ex = cJSON_CreateArray();
    char *instr = trimmed(w, (size_t)(first - w)), *q = NULL;
    int rc = RLHF_OK, want_query = 1, n_ex = 0;
    if (!instr || !*instr)
        rc = err_set(err, RLHF_EINVAL,
                     "a fewshot prompt starts with its instruction, before the first '### query'");
    else
        sb_puts(&out, instr);
    for (const char *p = first; !rc && p;) {
        int is_q = strncmp(p, "### query", 9) == 0, is_r = strncmp(p, "### response", 12) == 0;
        if (!is_q && !is_r) break;
        if (is_q != want_query) {
            rc = err_set(err, RLHF_EINVAL,
                         "'### %s' where a '### %s' belongs: queries and responses alternate",
                         is_q ? "query" : "response", want_query ? "query" : "response");
            break;
        }
        const char *body = strchr(p, '\n');
        body = body ? body + 1 : p + strlen(p);
        const char *next = strstr(body, "\n### ");
        char *t = trimmed(body, next ? (size_t)(next - body) : strlen(body));
        if (!t || !*t)
            rc = err_set(err, RLHF_EINVAL, "an empty '### %s' block", is_q ? "query" : "response");
        else if (is_q) {
            free(q);
            q = t, t = NULL;
        } else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "query", q);
            cJSON_AddStringToObject(o, "response", t);
            cJSON_AddItemToArray(ex, o);
            sb_printf(&out, "\n\nQuery: %s\nResponse: %s", q, t);
            free(q);
            q = NULL;
            n_ex++;
        }
        free(t);
        want_query = !want_query;
        p = next ? next + 1 : NULL;
    }
    if (!rc && !n_ex)
        rc = err_set(err, RLHF_EINVAL,
                     "a fewshot prompt needs at least one example (a query with its response)");
    if (!rc && !q)
        rc = err_set(err, RLHF_EINVAL,
                     "a fewshot prompt ends with a last '### query' for the model to answer");
    if (!rc) {
        sb_printf(&out, "\n\nQuery: %s\nResponse:", q);
        *prompt = out.s, out.s = NULL;
        *examples = cJSON_PrintUnformatted(ex);
    }
    free(instr);
    free(q);
    sb_free(&out);
    cJSON_Delete(ex);
    return rc;
}

int pw_parse(const char *kind, const char *written, char **prompt, char **examples, Err *err) {
    *prompt = *examples = NULL;
    if (strcmp(kind, "fewshot") == 0) return fewshot(written, prompt, examples, err);
    *prompt = trimmed(written, strlen(written));
    return *prompt ? RLHF_OK : err_set(err, RLHF_ENOMEM, "out of memory");
}

static const char *how_to(const char *kind) {
    if (strcmp(kind, "fewshot") == 0)
        return "Kind fewshot: an instruction, then examples, then the query to answer:\n"
               "  Give the sentiment of each tweet.\n  ### query\n  I loved the film!\n  ### "
               "response\n"
               "  positive\n  ### query\n  What a dull day.";
    if (strcmp(kind, "user") == 0)
        return "Kind user: a request as a real user of an assistant would type it.";
    return "Kind plain: a task stated directly, e.g. \"Write a haiku about the sea.\"";
}

/* One prompt: edit, parse, store. *stop when the labeler saved an empty
 * text; a text that does not parse comes back as *again with the reason in
 * problem, to open the editor on it once more. */
static int write_one(LabelSession *s, const char *kind, const char *split, const char *path,
                     char **again, char *problem, size_t pn, PwStats *st, int *stop, Err *err) {
    char ctx[1400];
    snprintf(ctx, sizeof ctx,
             "%s%.600s%sWrite one new prompt above the scissors (split %s, as %s).\n%s\n"
             "Save an empty text to stop writing prompts.",
             problem[0] ? "NOT STORED: " : "", problem, problem[0] ? "\n\n" : "", split, s->name,
             how_to(kind));
    if (*again) ed_draft_remove(path); /* rewritten below with the reason */
    EdResult r;
    int rc = ed_edit(path, *again ? *again : "", ctx, NULL, &r, err);
    free(*again);
    *again = NULL;
    problem[0] = 0;
    if (rc) return rc;
    if (r.status != ED_OK) {
        *stop = 1;
        rc = err_set(err, RLHF_EIO, "the editor %s %d; the text is kept in %s for next time",
                     r.status == ED_KILLED ? "was killed by signal" : "exited with status", r.code,
                     path);
        ed_result_free(&r);
        return rc;
    }
    if (!r.text[0]) {
        *stop = 1;
        ed_draft_remove(path);
        ed_result_free(&r);
        return RLHF_OK;
    }
    char *prompt, *examples;
    Err pe = {0};
    if (pw_parse(kind, r.text, &prompt, &examples, &pe)) {
        snprintf(problem, pn, "%s", pe.msg);
        fprintf(stderr, "not stored: %s (the editor opens again)\n", pe.msg);
        *again = r.text, r.text = NULL;
        ed_result_free(&r);
        return RLHF_OK;
    }
    int64_t id;
    int ins;
    WrittenPromptIn in = {prompt, kind, examples, split, s->labeler_id};
    rc = db_prompt_write(s->db, &in, &id, &ins, err);
    if (!rc) {
        ed_draft_remove(path);
        if (ins)
            st->written++,
                fprintf(stderr, "prompt %lld stored (%s, split %s)\n", (long long)id, kind, split);
        else
            st->duplicates++,
                fprintf(stderr, "a duplicate of prompt %lld: not stored again\n", (long long)id);
    }
    free(prompt);
    free(examples);
    ed_result_free(&r);
    return rc;
}

int pw_run(LabelSession *s, const char *kind, const char *split, int64_t limit, PwStats *st,
           Err *err) {
    memset(st, 0, sizeof *st);
    if (!db_prompt_kind_valid(kind))
        return err_set(err, RLHF_EINVAL, "--kind: one of plain, fewshot, user");
    char name[64], path[1200], problem[1100] = "", *again = NULL;
    snprintf(name, sizeof name, "prompt-%lld.txt", (long long)s->labeler_id);
    int rc = ed_draft_path(db_path(s->db), name, path, sizeof path, err), stop = 0, fails = 0;
    while (!rc && !stop && (!limit || st->written + st->duplicates < limit)) {
        rc = write_one(s, kind, split, path, &again, problem, sizeof problem, st, &stop, err);
        if (!rc && problem[0] && ++fails == 3)
            rc = err_set(err, RLHF_EINVAL, "%s (three times in a row; the text is kept in %s)",
                         problem, path);
        else if (!problem[0])
            fails = 0;
    }
    if (again) { /* stopped by the limit or an error with a text not stored: keep it */
        AtomicFile a;
        Err e = {0};
        if (!atomic_open(&a, path, &e)) fprintf(a.f, "%s\n", again), atomic_commit(&a, &e);
        free(again);
    }
    return rc;
}
