/* rlhf template show|render: which chat template a Hugging Face model
 * directory (or a Jinja file) is recognised as, and conversations rendered in
 * it, one JSON string per line, as the reference test compares them with the
 * real templates. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "model/chat.h"
#include "model/seq.h"
#include "util/lines.h"
#include "util/sys.h"

#include <stdlib.h>
#include <string.h>

static int exec_template(int argc, char **argv);

const struct cmd_entry cmd_template_entry = {
    "template",
    "show (--model DIR | --template-file F) | render (--model DIR | --template-file F | "
    "--template T) [FILE]",
    "recognise a model's chat template; render conversations in it",
    "show              print the template as rlhf stores it (chat:FAMILY...), for --template\n"
    "render [FILE]     read JSONL (default stdin): {\"messages\": [{\"role\", \"content\"}...]}\n"
    "                  or {\"prompt\": \"...\"} (one user message, or an HH transcript\n"
    "                  \"Human: ...\\n\\nAssistant: ...\\n\\nHuman: ...\", as gen renders prompts);\n"
    "                  print each rendering as one JSON string per line\n"
    "  --model DIR     a Hugging Face directory (tokenizer_config.json, chat_template.jinja)\n"
    "  --template-file F  a Jinja chat template; --bos X and --eos X give its tokens\n"
    "  --template T    a stored template: chat:FAMILY or one with {prompt} (render only)\n"
    "  --no-generation-prompt  leave out the assistant's opening\n"
    "  --keep-going    print null for a conversation the template refuses (the reason on\n"
    "                  stderr) and go on\n"
    "  -h, --help      show this help\n",
    exec_template};

static const struct cmd_entry *E = &cmd_template_entry;

typedef struct Opts {
    const char *model, *file, *bos, *eos, *template;
    int no_gen, keep_going;
} Opts;

/* Options into *o, the arguments into *rest (may be NULL: none taken, and
 * *rest malloc'd); -1 to go on, else the exit status. */
static int parse(int argc, char **argv, Opts *o, CliList *rest) {
    memset(o, 0, sizeof *o);
    const CliOpt opts[] = {CLI_O_STR("model", &o->model), CLI_O_STR("template-file", &o->file),
                           CLI_O_STR("template", &o->template), CLI_O_STR("bos", &o->bos),
                           CLI_O_STR("eos", &o->eos), CLI_O_FLAG("no-generation-prompt", &o->no_gen),
                           CLI_O_FLAG("keep-going", &o->keep_going), CLI_O_END};
    int rc = cli_opts_parse(E, argc, argv, opts, rest);
    if (rc >= 0) return rc;
    if (!!o->model + !!o->file + !!o->template != 1)
        return cli_usage_error(E, "give one of --model DIR, --template-file F and --template T");
    if (o->template && cli_check_template(E, o->template)) return EXIT_USAGE;
    return -1;
}

/* The stored form of the template the options name. */
static int resolve(const Opts *o, char **out, Err *err) {
    if (o->model) return chat_template_load(o->model, out, err);
    if (o->template) return (*out = strdup(o->template)) ? RLHF_OK : err_set(err, RLHF_ENOMEM, "out of memory");
    char *text = NULL;
    size_t len;
    int rc = sys_read_file(o->file, &text, &len, err);
    if (!rc && (rc = chat_template_detect(text, o->bos, o->eos, out, err)))
        err_prefix(err, "%s: ", o->file);
    free(text);
    return rc;
}

static int show(int argc, char **argv) {
    Opts o;
    CliList rest = {0}; /* arguments are let be, as they always were */
    int rc = parse(argc, argv, &o, &rest);
    free(rest.v);
    if (rc >= 0) return rc;
    if (o.template) return cli_usage_error(E, "show takes --model or --template-file");
    Err err = {0};
    char *t = NULL;
    if (resolve(&o, &t, &err)) return cli_fail(E, &err);
    printf("%s\n", t);
    free(t);
    return EXIT_OK;
}

/* One JSONL object rendered: its messages, or its prompt as gen renders it. */
static int render_one(LineReader *r, const cJSON *obj, const char *t, int gen, char **out, Err *err) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(obj, "messages");
    const char *prompt = NULL;
    if (!msgs) {
        int rc = jsonl_string(r, obj, "prompt", 1, &prompt, err);
        if (rc) return err_set(err, rc, "%s:%ld: needs \"messages\" or \"prompt\"", r->path, r->line);
        return seq_render(t, prompt, out, err);
    }
    int n = cJSON_GetArraySize(msgs);
    if (!cJSON_IsArray(msgs) || n < 1)
        return err_set(err, RLHF_EFORMAT, "%s:%ld: \"messages\" must be a non-empty list", r->path,
                       r->line);
    ChatMsg *m = calloc((size_t)n, sizeof *m);
    if (!m) return err_set(err, RLHF_ENOMEM, "out of memory");
    int rc = RLHF_OK;
    for (int i = 0; i < n && !rc; i++) {
        const cJSON *e = cJSON_GetArrayItem(msgs, i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(e, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(content))
            rc = err_set(err, RLHF_EFORMAT,
                         "%s:%ld: messages[%d] needs string fields \"role\" and \"content\"",
                         r->path, r->line, i);
        else
            m[i] = (ChatMsg){role->valuestring, content->valuestring};
    }
    if (!rc && !chat_is_template(t))
        rc = err_set(err, RLHF_EINVAL, "%s:%ld: \"messages\" need a chat template", r->path, r->line);
    if (!rc && (rc = chat_render(t, m, n, gen, out, err)))
        err_prefix(err, "%s:%ld: ", r->path, r->line);
    free(m);
    return rc;
}

static int render(int argc, char **argv) {
    Opts o;
    CliList rest = {0};
    int rc = parse(argc, argv, &o, &rest);
    const char *file = rest.n ? rest.v[0] : "-";
    free(rest.v);
    if (rc >= 0) return rc;
    if (rest.n > 1) return cli_usage_error(E, "render reads one FILE");
    Err err = {0};
    char *t = NULL;
    LineReader r;
    if (resolve(&o, &t, &err)) return cli_fail(E, &err);
    if (lines_open(&r, file, &err)) {
        free(t);
        return cli_fail(E, &err);
    }
    int failed = 0;
    for (;;) {
        cJSON *obj = NULL;
        char *out = NULL;
        if ((rc = jsonl_next(&r, &obj, &err)) || !obj) break;
        rc = render_one(&r, obj, t, !o.no_gen, &out, &err);
        cJSON_Delete(obj);
        if (rc && !o.keep_going) break;
        if (rc) {
            cli_fail(E, &err);
            err_clear(&err);
            failed++;
            printf("null\n");
            continue;
        }
        cJSON *s = cJSON_CreateString(out);
        char *j = s ? cJSON_PrintUnformatted(s) : NULL;
        if (j) printf("%s\n", j);
        else rc = err_set(&err, RLHF_ENOMEM, "out of memory");
        cJSON_free(j);
        cJSON_Delete(s);
        free(out);
        if (rc) break;
    }
    lines_close(&r);
    free(t);
    if (rc) return cli_fail(E, &err);
    if (failed) fprintf(stderr, "rlhf template: %d conversation(s) refused\n", failed);
    return EXIT_OK;
}

static int exec_template(int argc, char **argv) {
    static const struct cli_sub subs[] = {{"show", show}, {"render", render}, {NULL, NULL}};
    return cli_dispatch(E, subs, argc, argv);
}
