/* Recognising a Hugging Face chat template from its Jinja text, and reading
 * one (with its bos/eos tokens) from a model directory. Recognition looks for
 * each family's key markers and refuses what would render differently (other
 * default system messages, extra tokens, unknown branches); tool-calling
 * branches are ignored, since no tools are ever given. */
#include "model/chat_impl.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/checkpoint.h"
#include "model/hf.h"
#include "util/sys.h"

static int has(const char *t, const char *s) {
    return strstr(t, s) != NULL;
}

/* s followed by a newline, written in the template either as a newline or as
 * the escape \n inside a string literal */
static int has_nl(const char *t, const char *s) {
    size_t n = strlen(s);
    for (const char *p = t; (p = strstr(p, s)); p++)
        if (p[n] == '\n' || (p[n] == '\\' && p[n + 1] == 'n')) return 1;
    return 0;
}

static int detect_family(const char *t) {
    if (has(t, "<|im_start|>")) {
        if (!has(t, "<|im_end|>") || !has_nl(t, "<|im_start|>assistant")) return 0;
        if (has(t, "<think>") || has(t, "</think>"))
            return has(t, "reasoning_content") && has(t, "last_query_index") &&
                           !has(t, "enable_thinking is defined and enable_thinking is true")
                       ? CHAT_QWEN3
                       : 0;
        if (has(t, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."))
            return CHAT_QWEN25;
        if (has(t, "You are a helpful AI assistant named SmolLM, trained by Hugging Face"))
            return CHAT_SMOLLM2;
        /* a plain ChatML: no system text of its own, no extra tokens */
        if (has(t, "<|im_start|>system") || has(t, "system_message") || has(t, "bos_token") ||
            has(t, "eos_token") || !(has(t, "message['role']") || has(t, "message.role")))
            return 0;
        return CHAT_CHATML;
    }
    if (has(t, "<|start_header_id|>") && has(t, "<|eot_id|>")) {
        if (has(t, "Cutting Knowledge Date: December 2023"))
            return has(t, "\"26 Jul 2024\"") && has(t, "bos_token") ? CHAT_LLAMA31 : 0;
        if (has(t, "system") || !has(t, "bos_token") || !(has(t, "| trim") || has(t, "|trim")))
            return 0;
        return CHAT_LLAMA3;
    }
    if (has(t, "[INST]")) {
        if (has(t, "<<SYS>>"))
            return has(t, "bos_token + '[INST] '") && has(t, "' [/INST]'") &&
                           (has(t, ".strip()") || has(t, "| trim")) &&
                           has(t, "' ' + eos_token") && !has(t, "DEFAULT_SYSTEM_MESSAGE") &&
                           !has(t, "USE_DEFAULT_PROMPT")
                       ? CHAT_LLAMA2
                       : 0;
        return has(t, "{{ bos_token }}") && has(t, "'[INST] ' + message['content'] + ' [/INST]'") &&
                       has(t, "message['content'] + eos_token + ' '") && !has(t, "system") &&
                       !has(t, "tools")
                   ? CHAT_MISTRAL
                   : 0;
    }
    if (has(t, "<|user|>") && has(t, "<|assistant|>"))
        return has_nl(t, "<|user|>") && has(t, "message['content'] + eos_token }}\n{%") &&
                       has(t, "loop.last and add_generation_prompt") && !has(t, "bos_token")
                   ? CHAT_ZEPHYR
                   : 0;
    return 0;
}

int chat_template_detect(const char *jinja, const char *bos, const char *eos, char **out,
                         Err *err) {
    *out = NULL;
    int family = jinja ? detect_family(jinja) : 0;
    if (!family) {
        /* the opening, one line, to say which template it was */
        char head[64];
        size_t k = 0;
        for (const char *p = jinja ? jinja : ""; *p && k < sizeof head - 4; p++)
            head[k++] = (*p == '\n' || *p == '\t') ? ' ' : *p;
        strcpy(head + k, k == sizeof head - 4 ? "..." : "");
        return err_set(err, RLHF_EINVAL,
                       "unrecognised chat template (\"%s\"): rlhf renders the ChatML (Qwen2.5, "
                       "Qwen3, SmolLM2), Llama 2/3/3.1/3.2, Mistral and Zephyr/TinyLlama families; "
                       "pass --template (e.g. \"Human: {prompt}\\nAssistant:\" or chat:chatml)",
                       head);
    }
    return chat_format(family, bos, eos, out, err);
}

/* ---- reading a model directory --------------------------------------------------- */

/* A special token field: a string, null/absent (NULL), or {"content": "..."}. */
static int token_field(const cJSON *cfg, const char *key, const char *path, const char **out,
                       Err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return RLHF_OK;
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (!cJSON_IsString(v))
        return err_set(err, RLHF_EFORMAT,
                       "%s: field \"%s\" must be a string or an object with a string \"content\"",
                       path, key);
    *out = v->valuestring;
    return RLHF_OK;
}

static int template_field(const cJSON *cfg, const char *path, const char **out, Err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return RLHF_OK;
    if (cJSON_IsString(v)) {
        *out = v->valuestring;
        return RLHF_OK;
    }
    if (!cJSON_IsArray(v))
        return err_set(err, RLHF_EFORMAT,
                       "%s: field \"chat_template\" must be a string or a list of {\"name\", "
                       "\"template\"}",
                       path);
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, v) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
        const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(e, "template");
        if (!cJSON_IsString(name) || !cJSON_IsString(tmpl))
            return err_set(err, RLHF_EFORMAT,
                           "%s: field \"chat_template\"[%d] needs string fields \"name\" and "
                           "\"template\"",
                           path, i);
        if (!strcmp(name->valuestring, "default")) *out = tmpl->valuestring;
        i++;
    }
    if (!*out)
        return err_set(err, RLHF_EFORMAT,
                       "%s: field \"chat_template\" is a list without a template named \"default\"",
                       path);
    return RLHF_OK;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The template from the texts of tokenizer_config.json and chat_template.jinja
 * (either may be NULL); names say where they came from, for errors. */
static int template_from_texts(const char *cfg_text, size_t cfg_len, const char *cfg_name,
                               const char *jinja, const char *jinja_name, char **out, Err *err) {
    cJSON *cfg = NULL;
    const char *bos = NULL, *eos = NULL, *tmpl = NULL;
    int rc = RLHF_OK;
    if (cfg_text) {
        cfg = cJSON_ParseWithLength(cfg_text, cfg_len);
        if (!cJSON_IsObject(cfg)) rc = err_set(err, RLHF_EFORMAT, "%s: not a JSON object", cfg_name);
        if (!rc) rc = token_field(cfg, "bos_token", cfg_name, &bos, err);
        if (!rc) rc = token_field(cfg, "eos_token", cfg_name, &eos, err);
        if (!rc && !jinja) rc = template_field(cfg, cfg_name, &tmpl, err);
        if (!rc && !jinja && !tmpl)
            rc = err_set(err, RLHF_ENOTFOUND,
                         "%s: no field \"chat_template\" (and no chat_template.jinja beside it)",
                         cfg_name);
    }
    /* newer directories keep the template in a file of its own */
    if (jinja) tmpl = jinja;
    if (!rc) {
        rc = chat_template_detect(tmpl, bos, eos, out, err);
        if (rc) err_prefix(err, "%s: ", jinja ? jinja_name : cfg_name);
    }
    cJSON_Delete(cfg);
    return rc;
}

/* A checkpoint trained from an HF model carries the directory's side files */
static int template_of_checkpoint(const char *path, char **out, Err *err) {
    void *blob = NULL;
    size_t len = 0, cl = 0, jl = 0;
    int rc = model_ckpt_read_tokenizer(path, &blob, &len, err);
    if (rc) { /* not our checkpoint (llama2.c's, say): no template of its own */
        err_clear(err);
        return RLHF_OK;
    }
    const char *cfg = hf_files_get(blob, len, "tokenizer_config.json", &cl);
    const char *jinja = hf_files_get(blob, len, "chat_template.jinja", &jl);
    char *j = jinja ? strndup(jinja, jl) : NULL;
    char names[2][4200];
    snprintf(names[0], sizeof names[0], "%s: tokenizer_config.json", path);
    snprintf(names[1], sizeof names[1], "%s: chat_template.jinja", path);
    if (cfg || j) rc = template_from_texts(cfg, cl, names[0], j, names[1], out, err);
    if (rc == RLHF_ENOTFOUND) err_clear(err), rc = RLHF_OK;
    free(j);
    free(blob);
    return rc;
}

int chat_template_find(const char *path, char **out, Err *err) {
    struct stat st;
    *out = NULL;
    if (stat(path, &st) != 0) return RLHF_OK;
    if (!S_ISDIR(st.st_mode)) return template_of_checkpoint(path, out, err);
    int rc = chat_template_load(path, out, err);
    if (rc == RLHF_ENOTFOUND) err_clear(err), rc = RLHF_OK;
    return rc;
}

int chat_template_load(const char *dir, char **out, Err *err) {
    *out = NULL;
    char cfg_path[4096], jinja_path[4096];
    snprintf(cfg_path, sizeof cfg_path, "%s/tokenizer_config.json", dir);
    snprintf(jinja_path, sizeof jinja_path, "%s/chat_template.jinja", dir);
    int have_cfg = file_exists(cfg_path), have_jinja = file_exists(jinja_path);
    if (!have_cfg && !have_jinja)
        return err_set(err, RLHF_ENOTFOUND,
                       "%s has no chat template (no tokenizer_config.json or chat_template.jinja)",
                       dir);
    char *text = NULL, *jinja = NULL;
    size_t len = 0, jlen;
    int rc = RLHF_OK;
    if (have_cfg) rc = sys_read_file(cfg_path, &text, &len, err);
    if (!rc && have_jinja) rc = sys_read_file(jinja_path, &jinja, &jlen, err);
    if (!rc) rc = template_from_texts(text, len, cfg_path, jinja, jinja_path, out, err);
    free(text);
    free(jinja);
    return rc;
}
