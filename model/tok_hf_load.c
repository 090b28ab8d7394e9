/* Reading a Hugging Face tokenizer.json (and the configs next to it) into a
 * TokHF: the vocabulary, the merges by rank, added tokens, the normalizer and
 * pre-tokenizer chains (parsed by tok_hf_pre.c), the post-processor's special
 * tokens, the decoder chain reduced to one decoded piece per token, the
 * bos/eos/stop ids; and the embedded form a checkpoint carries. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "model/hf.h"
#include "model/tok_hf.h"
#include "model/tokenizer.h"
#include "util/sys.h"
#include "util/text.h"

static void vocab_insert(TokHF *h, int id) {
    const char *s = h->blob + h->off[id];
    size_t n = (size_t)h->len[id];
    if (hf_vocab_find(h, s, n) >= 0) return;
    uint32_t i = hf_fnv(s, n) & h->mask;
    while (h->table[i])
        i = (i + 1) & h->mask;
    h->table[i] = id + 1;
}

void tokhf_free(TokHF *h) {
    if (!h) return;
    free(h->blob), free(h->off), free(h->len), free(h->dblob), free(h->doff), free(h->dlen);
    free(h->kind), free(h->table), free(h->mkey), free(h->mrank), free(h->mnew);
    hf_chain_free(h->norm);
    hf_chain_free(h->pre);
    free(h->added);
    for (int b = 0; b < 256; b++)
        free(h->first[b]);
    free(h->stop);
    for (int i = 0; i < 4; i++)
        free(h->src[i]);
    free(h->cache);
    free(h->arena);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* ---- loading ------------------------------------------------------------------- */

static const cJSON *field(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* A token named by a config: "text" or {"content": "text"}. */
static const char *token_text(const cJSON *v) {
    if (cJSON_IsString(v)) return v->valuestring;
    const cJSON *c = field(v, "content");
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

static int add_stop(TokHF *h, int id) {
    if (id < 0 || id >= h->n_vocab) return RLHF_OK;
    for (int i = 0; i < h->n_stop; i++)
        if (h->stop[i] == id) return RLHF_OK;
    int *s = realloc(h->stop, sizeof(int) * (size_t)(h->n_stop + 1));
    if (!s) return RLHF_ENOMEM;
    h->stop = s;
    h->stop[h->n_stop++] = id;
    return RLHF_OK;
}

static int parse_merges(TokHF *h, const cJSON *merges, const char *name, Err *err) {
    int n = cJSON_GetArraySize(merges);
    uint32_t cap = 1;
    while (cap < (uint32_t)n * 2 + 2)
        cap <<= 1;
    h->mkey = malloc(sizeof(uint64_t) * cap);
    h->mrank = malloc(sizeof(int) * cap);
    h->mnew = malloc(sizeof(int) * cap);
    if (!h->mkey || !h->mrank || !h->mnew) return err_set(err, RLHF_ENOMEM, "out of memory");
    memset(h->mrank, 0xff, sizeof(int) * cap);
    h->mmask = cap - 1;
    char *buf = malloc((size_t)h->max_len * 2 + 2);
    if (!buf) return err_set(err, RLHF_ENOMEM, "out of memory");
    int rank = 0, rc = RLHF_OK;
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        const char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        if (cJSON_IsString(m)) {
            const char *sp = strchr(m->valuestring, ' ');
            if (sp) a = m->valuestring, la = (size_t)(sp - a), b = sp + 1, lb = strlen(b);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            a = m->child->valuestring, la = strlen(a);
            b = m->child->next->valuestring, lb = strlen(b);
        }
        if (!a) {
            rc = err_set(err, RLHF_EFORMAT,
                         "%s: model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", name, rank);
            break;
        }
        int ia = hf_vocab_find(h, a, la), ib = hf_vocab_find(h, b, lb), im = -1;
        if (ia >= 0 && ib >= 0 && la + lb <= (size_t)h->max_len) {
            memcpy(buf, a, la);
            memcpy(buf + la, b, lb);
            im = hf_vocab_find(h, buf, la + lb);
        }
        if (im < 0) {
            rc = err_set(err, RLHF_EFORMAT,
                         "%s: model.merges[%d] (\"%.*s\" + \"%.*s\") names a token that is not in "
                         "model.vocab",
                         name, rank, (int)la, a, (int)lb, b);
            break;
        }
        uint64_t k = ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib;
        uint32_t i = hf_mhash(k) & h->mmask;
        while (h->mrank[i] >= 0 && h->mkey[i] != k)
            i = (i + 1) & h->mmask;
        if (h->mrank[i] < 0) { /* a repeated merge keeps its first (best) rank */
            h->mkey[i] = k;
            h->mrank[i] = rank;
            h->mnew[i] = im;
        }
        rank++;
    }
    free(buf);
    return rc;
}

/* Appends s to the decoded-piece blob with each decoder step applied in order. */
typedef struct {
    int type; /* 0 ByteLevel, 1 Replace, 2 ByteFallback, 3 Metaspace */
    const char *pat, *content, *repl;
} DecStep;

static int parse_decoder(const cJSON *d, const char *name, DecStep *steps, int *n, TokHF *h,
                         Err *err) {
    if (!d || cJSON_IsNull(d)) return RLHF_OK;
    const cJSON *t = field(d, "type");
    const char *type = cJSON_IsString(t) ? t->valuestring : "";
    if (!strcmp(type, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, field(d, "decoders")) {
            int rc = parse_decoder(e, name, steps, n, h, err);
            if (rc) return rc;
        }
        return RLHF_OK;
    }
    if (*n >= 16) return err_set(err, RLHF_EFORMAT, "%s: decoder: too many steps", name);
    DecStep *s = &steps[*n];
    memset(s, 0, sizeof *s);
    if (!strcmp(type, "ByteLevel")) {
        s->type = 0;
    } else if (!strcmp(type, "Replace")) {
        const cJSON *p = field(field(d, "pattern"), "String"), *c = field(d, "content");
        if (!cJSON_IsString(p) || !cJSON_IsString(c))
            return err_set(err, RLHF_EFORMAT,
                           "%s: decoder Replace needs pattern.String and content (Regex patterns "
                           "are not supported)",
                           name);
        s->type = 1, s->pat = p->valuestring, s->content = c->valuestring;
    } else if (!strcmp(type, "ByteFallback")) {
        s->type = 2;
    } else if (!strcmp(type, "Metaspace")) {
        const cJSON *r = field(d, "replacement"), *ps = field(d, "prepend_scheme");
        s->type = 3, s->repl = cJSON_IsString(r) ? r->valuestring : "\xe2\x96\x81";
        if (!hf_one_char(s->repl))
            return err_set(err, RLHF_EFORMAT,
                           "%s: decoder Metaspace replacement \"%s\" is not one character", name,
                           s->repl);
        int never = (cJSON_IsString(ps) && !strcmp(ps->valuestring, "never")) ||
                    (cJSON_IsFalse(field(d, "add_prefix_space")));
        if (!never) h->strip_start = 1;
    } else if (!strcmp(type, "Fuse")) {
        return RLHF_OK; /* pieces are concatenated anyway */
    } else if (!strcmp(type, "Strip")) {
        const cJSON *c = field(d, "content"), *a = field(d, "start"), *b = field(d, "stop");
        if (!cJSON_IsString(c) || strcmp(c->valuestring, " ") != 0)
            return err_set(err, RLHF_EFORMAT, "%s: decoder Strip: only content \" \" is supported",
                           name);
        h->strip_start += cJSON_IsNumber(a) ? a->valueint : 0;
        h->strip_stop += cJSON_IsNumber(b) ? b->valueint : 0;
        return RLHF_OK;
    } else {
        return err_set(err, RLHF_EFORMAT,
                       "%s: decoder type \"%s\" is not supported (ByteLevel, Metaspace, "
                       "ByteFallback, Fuse, Strip, Replace, Sequence)",
                       name, type);
    }
    (*n)++;
    return RLHF_OK;
}

static int parse_byte_token(const char *p, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return -1;
    const char *a = memchr(hex, p[3], 16), *b = memchr(hex, p[4], 16);
    if (!a || !b) return -1;
    return (int)((a - hex) * 16 + (b - hex));
}

/* The decoded piece of token text s through the decoder steps, appended to sb. */
static int decode_piece(const DecStep *steps, int n, const char *s, size_t len, StrBuf *sb,
                        StrBuf *tmp, const short *rev) {
    tmp->len = 0;
    if (sb_append(tmp, s, len)) return RLHF_ENOMEM;
    StrBuf cur = {0};
    for (int k = 0; k < n; k++) {
        cur.len = 0;
        const DecStep *d = &steps[k];
        const char *p = tmp->s;
        size_t m = tmp->len;
        int rc = 0;
        if (d->type == 0) {
            for (size_t i = 0; i < m && !rc;) {
                int32_t cp;
                utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)p + i,
                                                      (utf8proc_ssize_t)(m - i), &cp);
                if (l <= 0) l = 1, cp = -1;
                int byte = cp >= 0 && cp < 512 ? rev[cp] : -1;
                if (byte >= 0) {
                    char c = (char)byte;
                    rc = sb_append(&cur, &c, 1);
                } else {
                    rc = sb_append(&cur, p + i, (size_t)l);
                }
                i += (size_t)l;
            }
        } else if (d->type == 2) {
            int b = parse_byte_token(p, m);
            char c = (char)b;
            rc = b >= 0 ? sb_append(&cur, &c, 1) : sb_append(&cur, p, m);
        } else {
            const char *pat = d->type == 1 ? d->pat : d->repl,
                       *rep = d->type == 1 ? d->content : " ";
            size_t pl = strlen(pat), i = 0;
            while (!rc && i < m) {
                const char *hit = pl ? memmem(p + i, m - i, pat, pl) : NULL;
                size_t e = hit ? (size_t)(hit - p) : m;
                rc = sb_append(&cur, p + i, e - i);
                if (hit && !rc) rc = sb_append(&cur, rep, strlen(rep));
                i = hit ? e + pl : m;
            }
        }
        if (rc || sb_append(&cur, "", 0)) {
            sb_free(&cur);
            return RLHF_ENOMEM;
        }
        StrBuf t = *tmp;
        *tmp = cur;
        cur = t;
    }
    sb_free(&cur);
    return sb_append(sb, tmp->s ? tmp->s : "", tmp->len);
}

static int cmp_added_len(const void *a, const void *b, void *ctx) {
    const Added *v = ctx;
    size_t x = v[*(const int *)a].len, y = v[*(const int *)b].len;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The ids of a TemplateProcessing "single" list before and after $A. */
static int parse_template(TokHF *h, const cJSON *pp, const char *name, Err *err) {
    const cJSON *single = field(pp, "single"), *sp = field(pp, "special_tokens"), *e;
    int after = 0;
    cJSON_ArrayForEach(e, single) {
        if (field(e, "Sequence")) {
            after = 1;
            continue;
        }
        const cJSON *st = field(field(e, "SpecialToken"), "id");
        if (!cJSON_IsString(st)) continue;
        const cJSON *ids = field(field(sp, st->valuestring), "ids"), *id;
        cJSON_ArrayForEach(id, ids) {
            int *n = after ? &h->n_suffix : &h->n_prefix, *v = after ? h->suffix : h->prefix;
            if (*n >= 8 || !cJSON_IsNumber(id) || id->valueint < 0 || id->valueint >= h->n_vocab)
                return err_set(err, RLHF_EFORMAT,
                               "%s: post_processor.special_tokens[\"%s\"].ids is not a list of "
                               "token ids",
                               name, st->valuestring);
            v[(*n)++] = id->valueint;
        }
    }
    return RLHF_OK;
}

static int parse_post(TokHF *h, const cJSON *pp, const char *name, Err *err) {
    if (!pp || cJSON_IsNull(pp)) return RLHF_OK;
    const cJSON *t = field(pp, "type");
    const char *type = cJSON_IsString(t) ? t->valuestring : "";
    if (!strcmp(type, "TemplateProcessing")) return parse_template(h, pp, name, err);
    if (!strcmp(type, "ByteLevel")) return RLHF_OK;
    if (!strcmp(type, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, field(pp, "processors")) {
            int rc = parse_post(h, e, name, err);
            if (rc) return rc;
        }
        return RLHF_OK;
    }
    if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
        const cJSON *cls = field(pp, "cls"), *sep = field(pp, "sep");
        if (cJSON_GetArraySize(cls) == 2 && cJSON_IsNumber(cls->child->next))
            h->prefix[h->n_prefix++] = cls->child->next->valueint;
        if (cJSON_GetArraySize(sep) == 2 && cJSON_IsNumber(sep->child->next))
            h->suffix[h->n_suffix++] = sep->child->next->valueint;
        return RLHF_OK;
    }
    return err_set(err, RLHF_EFORMAT, "%s: post_processor type \"%s\" is not supported", name,
                   type);
}

static int id_of(const TokHF *h, const cJSON *v) {
    const char *s = token_text(v);
    return s ? hf_vocab_find(h, s, strlen(s)) : -1;
}

static int first_id(const cJSON *v) {
    if (cJSON_IsNumber(v)) return v->valueint;
    if (cJSON_IsArray(v) && cJSON_IsNumber(v->child)) return v->child->valueint;
    return -1;
}

/* bos, eos, stop ids and add_bos_token from the configs (each may be NULL). */
static int apply_configs(TokHF *h, const cJSON *tc, const cJSON *gc, const cJSON *mc) {
    h->bos = h->n_prefix ? h->prefix[0] : -1;
    h->eos = -1;
    const cJSON *cfgs[2] = {gc, mc};
    for (int i = 0; i < 2; i++) {
        if (!cfgs[i]) continue;
        int b = first_id(field(cfgs[i], "bos_token_id")),
            e = first_id(field(cfgs[i], "eos_token_id"));
        if (h->bos < 0 && b >= 0 && b < h->n_vocab) h->bos = b;
        if (h->eos < 0 && e >= 0 && e < h->n_vocab) h->eos = e;
        const cJSON *v, *list = field(cfgs[i], "eos_token_id");
        if (cJSON_IsNumber(list) && add_stop(h, list->valueint)) return RLHF_ENOMEM;
        const cJSON *arr = cJSON_IsArray(list) ? list : NULL;
        cJSON_ArrayForEach(v, arr) {
            if (cJSON_IsNumber(v) && add_stop(h, v->valueint)) return RLHF_ENOMEM;
        }
    }
    if (tc) {
        int b = id_of(h, field(tc, "bos_token")), e = id_of(h, field(tc, "eos_token"));
        if (b >= 0) h->bos = b;
        /* "bos_token": null (Qwen) means none, whatever config.json's bos_token_id says */
        if (cJSON_IsNull(field(tc, "bos_token")) && !h->n_prefix) h->bos = -1;
        if (e >= 0) h->eos = e;
        /* the slow tokenizers' switches, which transformers also applies to the
         * fast ones' template */
        const cJSON *ab = field(tc, "add_bos_token"), *ae = field(tc, "add_eos_token");
        if (cJSON_IsFalse(ab) && h->n_prefix && h->prefix[0] == h->bos) {
            memmove(h->prefix, h->prefix + 1, sizeof(int) * (size_t)--h->n_prefix);
        } else if (cJSON_IsTrue(ab) && h->bos >= 0 && !h->n_prefix) {
            h->prefix[h->n_prefix++] = h->bos;
        }
        if (cJSON_IsTrue(ae) && h->eos >= 0 && !h->n_suffix) h->suffix[h->n_suffix++] = h->eos;
    }
    /* end-of-text and end-of-turn markers of the common families stop generation
     * even when no config names them */
    static const char *const known[] = {"</s>",          "<|endoftext|>", "<|end_of_text|>",
                                        "<|im_end|>",    "<|eot_id|>",    "<|eom_id|>",
                                        "<end_of_turn>", "<|end|>"};
    for (int i = 0; i < (int)(sizeof known / sizeof *known); i++) {
        int id = hf_vocab_find(h, known[i], strlen(known[i]));
        if (id >= 0 && h->kind[id] == K_SPECIAL && add_stop(h, id)) return RLHF_ENOMEM;
    }
    if (h->eos < 0 && h->n_stop) h->eos = h->stop[0];
    if (h->eos >= 0 && add_stop(h, h->eos)) return RLHF_ENOMEM;
    return RLHF_OK;
}

static int build(TokHF *h, const cJSON *root, const char *name, const cJSON *tc, const cJSON *gc,
                 const cJSON *mc, Err *err) {
    const cJSON *model = field(root, "model");
    if (!cJSON_IsObject(model)) return err_set(err, RLHF_EFORMAT, "%s: no \"model\" object", name);
    const cJSON *mt = field(model, "type");
    if (mt && !cJSON_IsString(mt))
        return err_set(err, RLHF_EFORMAT, "%s: model.type is not a string", name);
    if (mt && strcmp(mt->valuestring, "BPE") != 0)
        return err_set(err, RLHF_EFORMAT, "%s: model.type \"%s\" is not supported (BPE only)", name,
                       mt->valuestring);
    const cJSON *vocab = field(model, "vocab"), *merges = field(model, "merges"),
                *added = field(root, "added_tokens"), *e;
    if (!cJSON_IsObject(vocab))
        return err_set(err, RLHF_EFORMAT, "%s: model.vocab is missing or not an object", name);
    if (!cJSON_IsArray(merges))
        return err_set(err, RLHF_EFORMAT, "%s: model.merges is missing or not a list", name);
    if (added && !cJSON_IsArray(added))
        return err_set(err, RLHF_EFORMAT, "%s: added_tokens is not a list", name);
    const char *cs = NULL, *ew = NULL;
    const cJSON *c1 = field(model, "continuing_subword_prefix"),
                *c2 = field(model, "end_of_word_suffix");
    if (cJSON_IsString(c1) && *c1->valuestring) cs = "continuing_subword_prefix";
    if (cJSON_IsString(c2) && *c2->valuestring) ew = "end_of_word_suffix";
    if (cs || ew)
        return err_set(err, RLHF_EFORMAT, "%s: model.%s is not supported", name, cs ? cs : ew);
    /* the vocabulary spans every id of model.vocab and added_tokens */
    long n = 0;
    size_t blob = 0;
    cJSON_ArrayForEach(e, vocab) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= TOK_MAX_VOCAB)
            return err_set(err, RLHF_EFORMAT, "%s: model.vocab[\"%s\"] is not an id in 0..%d", name,
                           e->string, TOK_MAX_VOCAB - 1);
        if (e->valueint + 1 > n) n = e->valueint + 1;
        blob += strlen(e->string) + 1;
    }
    cJSON_ArrayForEach(e, added) {
        const cJSON *id = field(e, "id"), *c = field(e, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= TOK_MAX_VOCAB ||
            !cJSON_IsString(c) || !*c->valuestring)
            return err_set(err, RLHF_EFORMAT,
                           "%s: added_tokens[%d] needs an \"id\" in 0..%d and a non-empty "
                           "\"content\"",
                           name, h->n_added, TOK_MAX_VOCAB - 1);
        if (id->valueint + 1 > n) n = id->valueint + 1;
        blob += strlen(c->valuestring) + 1;
        h->n_added++;
    }
    if (n < 1) return err_set(err, RLHF_EFORMAT, "%s: model.vocab is empty", name);
    h->n_vocab = (int)n;
    uint32_t cap = 1;
    while (cap < (uint32_t)n * 2)
        cap <<= 1;
    h->blob = malloc(blob + 1);
    h->off = calloc((size_t)n, sizeof(size_t));
    h->len = calloc((size_t)n, sizeof(int));
    h->kind = calloc((size_t)n, 1);
    h->table = calloc(cap, sizeof(int));
    h->added = calloc((size_t)h->n_added + 1, sizeof(Added));
    if (!h->blob || !h->off || !h->len || !h->kind || !h->table || !h->added)
        return err_set(err, RLHF_ENOMEM, "out of memory");
    h->mask = cap - 1;
    h->blob[blob] = '\0';
    size_t pos = 0;
    /* ids with no text (gaps) point at the final NUL */
    for (long i = 0; i < n; i++)
        h->off[i] = blob;
    cJSON_ArrayForEach(e, vocab) {
        size_t l = strlen(e->string);
        memcpy(h->blob + pos, e->string, l + 1);
        h->off[e->valueint] = pos;
        h->len[e->valueint] = (int)l;
        pos += l + 1;
        if ((int)l > h->max_len) h->max_len = (int)l;
    }
    int k = 0;
    cJSON_ArrayForEach(e, added) {
        const char *c = field(e, "content")->valuestring;
        int id = field(e, "id")->valueint;
        size_t l = strlen(c);
        memcpy(h->blob + pos, c, l + 1);
        h->off[id] = pos;
        h->len[id] = (int)l;
        Added *a = &h->added[k++];
        *a = (Added){id,
                     cJSON_IsTrue(field(e, "special")),
                     cJSON_IsTrue(field(e, "lstrip")),
                     cJSON_IsTrue(field(e, "rstrip")),
                     cJSON_IsTrue(field(e, "single_word")),
                     h->blob + pos,
                     l};
        h->kind[id] = a->special ? K_SPECIAL : K_ADDED;
        pos += l + 1;
        if ((int)l > h->max_len) h->max_len = (int)l;
    }
    for (long i = 0; i < n; i++)
        if (h->len[i]) vocab_insert(h, (int)i);
    for (int i = 0; i < h->n_added; i++) {
        unsigned char b = (unsigned char)h->added[i].s[0];
        int *f = realloc(h->first[b], sizeof(int) * (size_t)(h->n_first[b] + 1));
        if (!f) return err_set(err, RLHF_ENOMEM, "out of memory");
        h->first[b] = f;
        f[h->n_first[b]++] = i;
    }
    for (int b = 0; b < 256; b++)
        if (h->n_first[b] > 1)
            qsort_r(h->first[b], (size_t)h->n_first[b], sizeof(int), cmp_added_len, h->added);
    int rc = parse_merges(h, merges, name, err);
    if (rc) return rc;
    h->byte_fallback = cJSON_IsTrue(field(model, "byte_fallback"));
    h->fuse_unk = cJSON_IsTrue(field(model, "fuse_unk"));
    h->ignore_merges = cJSON_IsTrue(field(model, "ignore_merges"));
    h->unk = id_of(h, field(model, "unk_token"));
    const cJSON *dr = field(model, "dropout");
    if (cJSON_IsNumber(dr) && dr->valuedouble > 0)
        return err_set(err, RLHF_EFORMAT, "%s: model.dropout %g is not supported", name,
                       dr->valuedouble);
    if ((rc = hf_norm_parse(field(root, "normalizer"), "normalizer", &h->norm, err)) ||
        (rc = hf_pre_parse(field(root, "pre_tokenizer"), "pre_tokenizer", &h->pre, err))) {
        err_prefix(err, "%s: ", name);
        return rc;
    }
    h->byte_level = hf_pre_byte_level(h->pre);
    for (int b = 0; b < 256; b++) {
        char s[8];
        if (h->byte_level) {
            utf8proc_ssize_t l = utf8proc_encode_char(hf_byte_char(b), (utf8proc_uint8_t *)s);
            h->byte_tok[b] = hf_vocab_find(h, s, (size_t)l);
        } else {
            snprintf(s, sizeof s, "<0x%02X>", b);
            h->byte_tok[b] = hf_vocab_find(h, s, 6);
        }
    }
    if ((rc = parse_post(h, field(root, "post_processor"), name, err))) return rc;
    DecStep steps[16];
    int nsteps = 0;
    if ((rc = parse_decoder(field(root, "decoder"), name, steps, &nsteps, h, err))) return rc;
    StrBuf d = {0}, tmp = {0};
    short rev[512];
    for (int c = 0; c < 512; c++)
        rev[c] = -1;
    for (int b = 0; b < 256; b++)
        rev[hf_byte_char(b)] = (short)b;
    h->doff = malloc(sizeof(size_t) * (size_t)n);
    h->dlen = malloc(sizeof(int) * (size_t)n);
    if (!h->doff || !h->dlen) return err_set(err, RLHF_ENOMEM, "out of memory");
    for (long i = 0; i < n && !rc; i++) {
        size_t at = d.len;
        if (h->kind[i] != K_NORMAL)
            rc = sb_append(&d, h->blob + h->off[i], (size_t)h->len[i]);
        else
            rc = decode_piece(steps, nsteps, h->blob + h->off[i], (size_t)h->len[i], &d, &tmp, rev);
        h->doff[i] = at;
        h->dlen[i] = (int)(d.len - at);
    }
    sb_free(&tmp);
    h->dblob = d.s;
    if (rc || (!h->dblob && !(h->dblob = calloc(1, 1))))
        return err_set(err, RLHF_ENOMEM, "out of memory");
    if (apply_configs(h, tc, gc, mc)) return err_set(err, RLHF_ENOMEM, "out of memory");
    return RLHF_OK;
}

static cJSON *parse_opt(const char *text, const char *what, int *bad) {
    if (!text) return NULL;
    cJSON *j = cJSON_Parse(text);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        *bad = 1;
        (void)what;
        return NULL;
    }
    return j;
}

int tokhf_load_mem(const char *json, size_t len, const char *name, const char *tok_config,
                   const char *gen_config, const char *model_config, TokHF **out, Err *err) {
    *out = NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - json) : 0;
        return err_set(err, RLHF_EFORMAT, "%s: not valid JSON (near byte %zu of %zu)", name, at,
                       len);
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set(err, RLHF_EFORMAT, "%s: not a JSON object", name);
    }
    int bad[3] = {0, 0, 0};
    cJSON *tc = parse_opt(tok_config, "tokenizer_config.json", &bad[0]);
    cJSON *gc = parse_opt(gen_config, "generation_config.json", &bad[1]);
    cJSON *mc = parse_opt(model_config, "config.json", &bad[2]);
    TokHF *h = calloc(1, sizeof *h);
    int rc;
    static const char *const cfg_names[3] = {"tokenizer_config.json", "generation_config.json",
                                             "config.json"};
    if (!h) {
        rc = err_set(err, RLHF_ENOMEM, "out of memory");
    } else if (bad[0] || bad[1] || bad[2]) {
        rc = err_set(err, RLHF_EFORMAT, "%s: not a valid JSON object",
                     cfg_names[bad[0]   ? 0
                               : bad[1] ? 1
                                        : 2]);
    } else {
        pthread_mutex_init(&h->lock, NULL);
        rc = build(h, root, name, tc, gc, mc, err);
        const char *texts[4] = {json, tok_config, gen_config, model_config};
        for (int i = 0; !rc && i < 4; i++) {
            if (!texts[i]) continue;
            h->src_len[i] = i ? strlen(texts[i]) : len;
            if (!(h->src[i] = malloc(h->src_len[i] + 1))) {
                rc = err_set(err, RLHF_ENOMEM, "out of memory");
                break;
            }
            memcpy(h->src[i], texts[i], h->src_len[i]);
            h->src[i][h->src_len[i]] = '\0';
        }
    }
    cJSON_Delete(root), cJSON_Delete(tc), cJSON_Delete(gc), cJSON_Delete(mc);
    if (rc) {
        tokhf_free(h);
        return rc;
    }
    *out = h;
    return RLHF_OK;
}

/* Embedded form: the HF side-file archive (model/hf.h) with the texts this
 * tokenizer was read from, the same archive an HF directory's model carries. */
static const char *const src_names[4] = {"tokenizer.json", "tokenizer_config.json",
                                         "generation_config.json", "config.json"};

int tokhf_to_bytes(const TokHF *h, unsigned char **out, size_t *len, Err *err) {
    const char *texts[4];
    size_t lens[4];
    for (int i = 0; i < 4; i++)
        texts[i] = h->src[i], lens[i] = h->src[i] ? h->src_len[i] : 0;
    return hf_files_pack(src_names, texts, lens, 4, out, len, err);
}

int tokhf_from_bytes(const void *bytes, size_t len, TokHF **out, Err *err) {
    *out = NULL;
    char *texts[4] = {NULL, NULL, NULL, NULL};
    size_t lens[4] = {0};
    int rc = RLHF_OK;
    for (int i = 0; i < 4 && !rc; i++) {
        const char *d = hf_files_get(bytes, len, src_names[i], &lens[i]);
        if (!d) continue;
        if (!(texts[i] = malloc(lens[i] + 1))) rc = err_set(err, RLHF_ENOMEM, "out of memory");
        else {
            memcpy(texts[i], d, lens[i]);
            texts[i][lens[i]] = '\0';
        }
    }
    if (!rc && !texts[0]) rc = err_set(err, RLHF_EFORMAT, "embedded files: no tokenizer.json");
    if (!rc)
        rc = tokhf_load_mem(texts[0], lens[0], "tokenizer.json (embedded)", texts[1], texts[2],
                            texts[3], out, err);
    for (int i = 0; i < 4; i++)
        free(texts[i]);
    return rc;
}

/* Reads dir/name into *out (NUL-terminated) when it exists; a missing file is not an error. */
static int read_opt(const char *dir, const char *name, char **out, Err *err) {
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    if (stat(path, &st) != 0) return RLHF_OK;
    size_t n;
    return sys_read_file(path, out, &n, err);
}

int tokhf_load(const char *path, TokHF **out, Err *err) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return err_set(err, RLHF_ENOTFOUND, "%s: no such file or directory", path);
    char *json = NULL, *tc = NULL, *gc = NULL, *mc = NULL;
    size_t len = 0;
    int rc;
    char file[4096];
    if (S_ISDIR(st.st_mode)) {
        snprintf(file, sizeof file, "%s/tokenizer.json", path);
        if (stat(file, &st) != 0)
            return err_set(err, RLHF_ENOTFOUND, "%s: no tokenizer.json in this directory", path);
        rc = sys_read_file(file, &json, &len, err);
        if (!rc) rc = read_opt(path, "tokenizer_config.json", &tc, err);
        if (!rc) rc = read_opt(path, "generation_config.json", &gc, err);
        if (!rc) rc = read_opt(path, "config.json", &mc, err);
    } else {
        snprintf(file, sizeof file, "%s", path);
        rc = sys_read_file(path, &json, &len, err);
        /* a tokenizer.json named directly still takes its neighbours' ids */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            strcpy(dir, ".");
        if (!rc) rc = read_opt(dir, "tokenizer_config.json", &tc, err);
        if (!rc) rc = read_opt(dir, "generation_config.json", &gc, err);
        if (!rc) rc = read_opt(dir, "config.json", &mc, err);
    }
    if (!rc) rc = tokhf_load_mem(json, len, file, tc, gc, mc, out, err);
    free(json), free(tc), free(gc), free(mc);
    return rc;
}
