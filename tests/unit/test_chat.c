/* model/chat: HH transcripts split into turns, families recognised from the
 * real templates' text (tests/ref/templates) and unsure ones refused, bad
 * tokenizer_config.json files named with their field, the stored form, and a
 * chat template through seq_render, seq_encode's join and best_of_prompt. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gen/best_of.h"
#include "model/chat.h"
#include "model/seq.h"
#include "tests/unit/files.h"

static void split_ok(const char *prompt, int n, const char *const *roles,
                     const char *const *contents) {
    ChatConv c;
    Err err = {0};
    cr_assert_eq(chat_split_hh(prompt, &c, &err), RLHF_OK, "%s", err.msg);
    cr_assert_eq(c.n, n, "'%s': %d turns", prompt, c.n);
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(c.msgs[i].role, roles[i]);
        cr_assert_str_eq(c.msgs[i].content, contents[i]);
    }
    chat_conv_free(&c);
}

Test(chat, hh_split) {
    const char *u[] = {"user"}, *uau[] = {"user", "assistant", "user"};
    split_ok("What is 2+2?", 1, u, (const char *[]){"What is 2+2?"});
    /* not a transcript: verbatim, whitespace and all */
    split_ok("  Question:\n\nHuman: x ", 1, u, (const char *[]){"  Question:\n\nHuman: x "});
    split_ok("Human: hi", 1, u, (const char *[]){"hi"});
    split_ok("\n\nHuman: Hi!\n\nAssistant: Hello.\nHow?\n\nHuman: A joke.\n\nAssistant:", 3, uau,
             (const char *[]){"Hi!", "Hello.\nHow?", "A joke."});
    split_ok("Human: a\n\nAssistant: b\n\nHuman: c", 3, uau, (const char *[]){"a", "b", "c"});
    split_ok("Human: \n\nAssistant:", 1, u, (const char *[]){""});
    const char *uaua[] = {"user", "assistant", "user", "assistant", "user"};
    split_ok("Human: 1\n\nAssistant: 2\n\nHuman: 3\n\nAssistant: 4\n\nHuman: 5\n\nAssistant: ", 5,
             uaua, (const char *[]){"1", "2", "3", "4", "5"});
    ChatConv c;
    Err err = {0};
    cr_assert_eq(chat_split_hh("Human: a\n\nAssistant: b", &c, &err), RLHF_EINVAL);
    cr_assert(strstr(err.msg, "ends with an Assistant turn"), "%s", err.msg);
    char *hh = NULL;
    ChatMsg m[] = {{"user", "a"}, {"assistant", "b"}, {"user", "c"}};
    cr_assert_eq(chat_join_hh(m, 3, &hh, &err), RLHF_OK);
    cr_assert_str_eq(hh, "Human: a\n\nAssistant: b\n\nHuman: c");
    free(hh);
}

static char *load(const char *name, Err *err, int *rc) {
    char dir[512], *t = NULL;
    snprintf(dir, sizeof dir, "tests/ref/templates/%s", name);
    *rc = chat_template_load(dir, &t, err);
    return t;
}

Test(chat, families_of_the_real_templates) {
    static const char *const want[][2] = {
        {"qwen2.5", "chat:qwen2.5"},   {"qwen3", "chat:qwen3"},
        {"smollm2", "chat:smollm2"},   {"llama3", "chat:llama3"},
        {"llama3.2", "chat:llama3.1"}, {"llama2-chat", "chat:llama2"},
        {"mistral-v0.1", "chat:mistral"}, {"tinyllama", "chat:zephyr"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        Err err = {0};
        int rc;
        char *t = load(want[i][0], &err, &rc);
        cr_assert_eq(rc, RLHF_OK, "%s: %s", want[i][0], err.msg);
        cr_assert_str_eq(t, want[i][1]);
        cr_assert_eq(chat_template_check(t, &err), RLHF_OK);
        free(t);
    }
}

static int detect(const char *jinja, char **t) {
    Err err = {0};
    *t = NULL;
    return chat_template_detect(jinja, NULL, NULL, t, &err);
}

Test(chat, detection_by_markers_and_refusals) {
    char *t;
    /* plain ChatML, with its newline written as an escape */
    cr_assert_eq(detect("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                        "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if "
                        "add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
                        &t),
                 RLHF_OK);
    cr_assert_str_eq(t, "chat:chatml");
    free(t);
    /* ChatML with a default system message of its own (Qwen2's): not plain */
    cr_assert_eq(detect("{% if loop.first and messages[0]['role'] != 'system' %}{{ "
                        "'<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif "
                        "%}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                        "'<|im_end|>'}}{{ '<|im_start|>assistant\\n' }}",
                        &t),
                 RLHF_EINVAL);
    /* Llama 2 with transformers' old default-prompt switch */
    cr_assert_eq(detect("{% elif USE_DEFAULT_PROMPT == true %}<<SYS>>{{ bos_token + '[INST] ' + "
                        "content.strip() + ' [/INST]' }}{{ ' ' + content.strip() + ' ' + eos_token }}",
                        &t),
                 RLHF_EINVAL);
    /* unknown */
    Err err = {0};
    cr_assert_eq(chat_template_detect("{% for m in messages %}{{ m.content }}{% endfor %}", NULL,
                                      NULL, &t, &err),
                 RLHF_EINVAL);
    cr_assert(strstr(err.msg, "unrecognised chat template"), "%s", err.msg);
    cr_assert(strstr(err.msg, "--template"), "%s", err.msg);
    cr_assert_eq(detect("", &t), RLHF_EINVAL);
}

static char *load_dir(const char *dir, Err *err, int *rc) {
    char *t = NULL;
    *rc = chat_template_load(dir, &t, err);
    return t;
}

Test(chat, tokenizer_config_files) {
    char dir[] = "/tmp/rlhf-chat-XXXXXX", cfg[256], jinja[256];
    cr_assert(mkdtemp(dir));
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    snprintf(jinja, sizeof jinja, "%s/chat_template.jinja", dir);
    Err err = {0};
    int rc;
    char *t = load_dir(dir, &err, &rc);
    cr_assert_eq(rc, RLHF_ENOTFOUND);
    char *found = (char *)1;
    cr_assert_eq(chat_template_find(dir, &found, &err), RLHF_OK);
    cr_assert_null(found);
    /* the list form: the one named default */
    write_file(cfg, "{\"bos_token\": {\"content\": \"<B>\"}, \"eos_token\": null, \"chat_template\": "
                    "[{\"name\": \"tool_use\", \"template\": \"x\"}, {\"name\": \"default\", "
                    "\"template\": \"{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' "
                    "+ message['role'] + '<|end_header_id|>\\\\n\\\\n' + message['content'] | trim + "
                    "'<|eot_id|>' }}{% endfor %}\"}]}");
    t = load_dir(dir, &err, &rc);
    cr_assert_eq(rc, RLHF_OK, "%s", err.msg);
    cr_assert_str_eq(t, "chat:llama3 bos=<B>");
    free(t);
    /* chat_template.jinja beside it wins */
    write_file(jinja, "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
                      "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{{ "
                      "'<|im_start|>assistant\n' }}");
    t = load_dir(dir, &err, &rc);
    cr_assert_eq(rc, RLHF_OK, "%s", err.msg);
    cr_assert_str_eq(t, "chat:chatml");
    free(t);
    unlink(jinja);
    /* malformed: the file and the field are named */
    static const char *const bad[][2] = {
        {"{\"chat_template\": 3}", "field \"chat_template\""},
        {"{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"}]}", "\"default\""},
        {"{\"chat_template\": [{\"name\": 1}]}", "field \"chat_template\"[0]"},
        {"{\"bos_token\": 7, \"chat_template\": \"x\"}", "field \"bos_token\""},
        {"{\"eos_token\": {\"content\": false}, \"chat_template\": \"x\"}", "field \"eos_token\""},
        {"{\"chat_template\": ", "not a JSON object"},
        {"[1]", "not a JSON object"},
        {"{\"bos_token\": \"<s>\"}", "no field \"chat_template\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(cfg, bad[i][0]);
        err_clear(&err);
        t = load_dir(dir, &err, &rc);
        cr_assert_neq(rc, RLHF_OK, "%s", bad[i][0]);
        cr_assert_null(t);
        cr_assert(strstr(err.msg, cfg), "%s", err.msg);
        cr_assert(strstr(err.msg, bad[i][1]), "%s: %s", bad[i][0], err.msg);
    }
    /* an unrecognised template is an error that find passes on */
    write_file(cfg, "{\"chat_template\": \"{{ messages }}\"}");
    cr_assert_eq(chat_template_find(dir, &found, &err), RLHF_EINVAL);
    cr_assert(strstr(err.msg, "--template"), "%s", err.msg);
    unlink(cfg);
    rmdir(dir);
}

Test(chat, stored_form) {
    Err err = {0};
    char *t = NULL;
    cr_assert_eq(chat_template_detect("{{ '<|user|>\\n' + message['content'] + eos_token }}\n{% "
                                      "if loop.last and add_generation_prompt %}<|assistant|>",
                                      "<s>", "<e%d s>", &t, &err),
                 RLHF_OK, "%s", err.msg);
    cr_assert_str_eq(t, "chat:zephyr eos=<e%25d%20s>");
    ChatMsg m[] = {{"user", "hi"}};
    char *out = NULL;
    cr_assert_eq(chat_render(t, m, 1, 1, &out, &err), RLHF_OK, "%s", err.msg);
    cr_assert_str_eq(out, "<|user|>\nhi<e%d s>\n<|assistant|>\n");
    free(out), free(t);
    cr_assert_eq(chat_template_check("chat:llama3.2", &err), RLHF_OK);
    cr_assert_eq(chat_template_check("chat:nosuch", &err), RLHF_EINVAL);
    cr_assert(strstr(err.msg, "qwen2.5"), "%s", err.msg);
    cr_assert_eq(chat_template_check("chat:llama2 bos=%zz", &err), RLHF_EINVAL);
    cr_assert_eq(chat_template_check("chat:llama2 pad=x", &err), RLHF_EINVAL);
    cr_assert_eq(chat_template_check("chat:llama2 bos=a bos=b", &err), RLHF_EINVAL);
    /* roles the templates render, and the alternation Llama 2 and Mistral need */
    ChatMsg tool[] = {{"tool", "x"}};
    cr_assert_eq(chat_render("chat:chatml", tool, 1, 1, &out, &err), RLHF_EINVAL);
    ChatMsg uu[] = {{"user", "a"}, {"user", "b"}};
    cr_assert_eq(chat_render("chat:llama2", uu, 2, 1, &out, &err), RLHF_EINVAL);
    ChatMsg su[] = {{"system", "s"}, {"user", "b"}};
    cr_assert_eq(chat_render("chat:mistral", su, 2, 1, &out, &err), RLHF_EINVAL);
    cr_assert(strstr(err.msg, "no system role"), "%s", err.msg);
    /* Python's '' != false: an empty system message still gets its block */
    ChatMsg es[] = {{"system", ""}, {"user", "b"}};
    cr_assert_eq(chat_render("chat:llama2", es, 2, 1, &out, &err), RLHF_OK);
    cr_assert_str_eq(out, "<s>[INST] <<SYS>>\n\n<</SYS>>\n\nb [/INST]");
    free(out);
}

Test(chat, seq_render_and_best_of_prompt) {
    static const char *const fams[] = {"chat:chatml", "chat:qwen2.5", "chat:qwen3",
                                       "chat:smollm2", "chat:llama3", "chat:llama3.1",
                                       "chat:llama2", "chat:mistral", "chat:zephyr"};
    static const char *const prompts[] = {
        "What is 2+2?", "Line one\nline two", "Human: Hi!\n\nAssistant: Hello.\n\nHuman: A joke?",
        "Human: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: d\n\nHuman: e"};
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++)
        for (size_t p = 0; p < sizeof prompts / sizeof prompts[0]; p++) {
            Err err = {0};
            char *in = NULL;
            cr_assert_eq(seq_render(fams[f], prompts[p], &in, &err), RLHF_OK, "%s", err.msg);
            char *back = best_of_prompt(fams[f], in);
            cr_assert_not_null(back, "%s: %s", fams[f], in);
            cr_assert_str_eq(back, prompts[p], "%s", fams[f]);
            free(back);
            /* not a rendering of this template */
            cr_assert_null(best_of_prompt(fams[f], "Human: What is 2+2?\nAssistant:"));
            free(in);
        }
    Err err = {0};
    char *in = NULL;
    cr_assert_eq(seq_render("chat:qwen2.5", "Human: a\n\nAssistant: b", &in, &err), RLHF_EINVAL);
    cr_assert_null(seq_render_template("chat:qwen2.5", "Human: a\n\nAssistant: b"));
    cr_assert_eq(seq_render(NULL, "x", &in, &err), RLHF_OK);
    cr_assert_str_eq(in, "Human: x\nAssistant:");
    free(in);
    cr_assert_eq(seq_template_check("Q: {prompt}", &err), RLHF_OK);
    cr_assert_eq(seq_template_check("no placeholder", &err), RLHF_EINVAL);
    cr_assert_eq(seq_template_check("chat:qwen3", &err), RLHF_OK);
}
