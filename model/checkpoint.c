/* Reading and writing checkpoints in llama2.c's format and in our own
 * (see checkpoint.h for the layouts). Every read is bounded by the file size
 * checked up front, so a short or corrupt file is refused, never overrun. */
#include "model/checkpoint.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>

#include "model/hf.h"
#include "model/layers.h"
#include "model/lora.h"
#include "util/sys.h"
#include "util/text.h"

#define MAGIC "RLHFCKPT"
#define VERSION 2u
enum { F_REWARD = 1, F_VALUE = 2, F_TOKENIZER = 4, F_OPTIM = 8, F_EXTRA = 16, F_LORA = 32, F_KNOWN = 63 };

/* With F_LORA (a LoRA adapter, model/lora.h) the header is followed by this
 * block and the base's path, and the parameters are the adapter's array: the
 * base's weights stay in the base's own file, named by path and sha256. */
typedef struct {
    int32_t rank, targets;
    float alpha, dropout;
    char base_sha[64];
    uint32_t path_len, pad;
} LoraBlock;
_Static_assert(sizeof(LoraBlock) == 88, "LoRA block layout");

typedef struct {
    char magic[8];
    uint32_t version, header_size;
    int32_t config[8];
    uint32_t flags, pad;
    uint64_t n_params, tokenizer_len, extra_len;
    int64_t opt_step;
    float beta1, beta2, eps, weight_decay;
    /* version 2: the Hugging Face families' config fields (0: llama2.c's value) */
    int32_t head_dim, qkv_bias, qk_norm, rope_orig_ctx;
    float norm_eps, rope_theta, rope_factor, rope_low_freq, rope_high_freq;
    uint32_t pad2;
    /* first 16 bytes of the sha256 of this header (with check zeroed), the
     * tokenizer and the extra bytes: the small sections are checked at every
     * load for almost nothing; the floats only by model_verify (the trailing
     * sha256 of the whole file) */
    unsigned char check[16];
} Header;

#define V1_HEADER_SIZE offsetof(Header, head_dim)
_Static_assert(V1_HEADER_SIZE == 104, "version 1 header layout");
_Static_assert(sizeof(Header) == 160, "version 2 header layout");

static void header_check(const Header *h, const void *lb, size_t lb_len, const void *tok,
                         size_t tok_len, const void *extra, size_t extra_len, unsigned char out[16]) {
    Header c = *h;
    unsigned char d[32];
    Sha256 s;
    memset(c.check, 0, sizeof c.check);
    sha256_init(&s);
    sha256_update(&s, &c, sizeof c);
    if (lb_len) sha256_update(&s, lb, lb_len);
    if (tok_len) sha256_update(&s, tok, tok_len);
    if (extra_len) sha256_update(&s, extra, extra_len);
    sha256_final(&s, d);
    memcpy(out, d, 16);
}

/* ---- writing ------------------------------------------------------------ */

typedef struct {
    AtomicFile af;
    Sha256 sha;
    int bad;
} Writer;

static void put(Writer *w, const void *p, size_t n) {
    if (w->bad || !n) return;
    sha256_update(&w->sha, p, n);
    if (fwrite(p, 1, n, w->af.f) != n) w->bad = errno ? errno : EIO;
}

static int finish(Writer *w, Err *err) {
    unsigned char d[32];
    sha256_final(&w->sha, d);
    if (!w->bad && fwrite(d, 1, 32, w->af.f) != 32) w->bad = errno ? errno : EIO;
    if (w->bad) {
        int e = w->bad;
        atomic_abort(&w->af);
        return err_set(err, RLHF_EIO, "%s: write failed: %s", w->af.path, strerror(e));
    }
    return atomic_commit(&w->af, err);
}

static void config_to_ints(const Config *c, int32_t *v) {
    v[0] = c->dim, v[1] = c->hidden_dim, v[2] = c->n_layers, v[3] = c->n_heads;
    v[4] = c->n_kv_heads, v[5] = c->vocab_size, v[6] = c->seq_len, v[7] = c->shared_classifier;
}

/* The LoRA block and base path of an adapter (*len 0 without one); malloc'd. */
static int lora_block(const Model *m, unsigned char **out, size_t *len, Err *err) {
    *out = NULL, *len = 0;
    const Lora *lo = m->lora;
    if (!lo) return RLHF_OK;
    if (!lo->base_path || strlen(lo->base_sha) != 64)
        return err_set(err, RLHF_EINVAL, "the LoRA adapter does not name its base");
    LoraBlock b;
    memset(&b, 0, sizeof b);
    b.rank = lo->c.rank, b.targets = lo->c.targets, b.alpha = lo->c.alpha, b.dropout = lo->c.dropout;
    memcpy(b.base_sha, lo->base_sha, 64);
    b.path_len = (uint32_t)strlen(lo->base_path);
    if (!(*out = malloc(sizeof b + b.path_len))) return err_set(err, RLHF_ENOMEM, "out of memory");
    memcpy(*out, &b, sizeof b);
    memcpy(*out + sizeof b, lo->base_path, b.path_len);
    *len = sizeof b + b.path_len;
    return RLHF_OK;
}

int model_ckpt_save(const char *path, const Model *m, const AdamW *opt, const void *extra,
                    size_t extra_len, Err *err) {
    size_t np = model_train_n(m);
    const float *params = m->lora ? m->lora->params : m->params;
    if (opt && opt->n != np)
        return err_set(err, RLHF_EINVAL, "%s: optimizer state has %zu values, model %zu", path,
                       opt->n, np);
    unsigned char *lb;
    size_t lb_len;
    int rc = lora_block(m, &lb, &lb_len, err);
    if (rc) return rc;
    Header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAGIC, 8);
    h.version = VERSION;
    h.header_size = sizeof h;
    config_to_ints(&m->cfg, h.config);
    h.flags = (m->heads & MODEL_HEAD_REWARD ? F_REWARD : 0) | (m->heads & MODEL_HEAD_VALUE ? F_VALUE : 0) |
              (m->tokenizer_len ? F_TOKENIZER : 0) | (opt ? F_OPTIM : 0) | (extra_len ? F_EXTRA : 0) |
              (lb_len ? F_LORA : 0);
    h.n_params = np;
    h.tokenizer_len = m->tokenizer_len;
    h.extra_len = extra ? extra_len : 0;
    if (opt) {
        h.opt_step = opt->step;
        h.beta1 = opt->beta1, h.beta2 = opt->beta2, h.eps = opt->eps, h.weight_decay = opt->weight_decay;
    }
    const Config *c = &m->cfg;
    h.head_dim = c->head_dim, h.qkv_bias = c->qkv_bias, h.qk_norm = c->qk_norm;
    h.rope_orig_ctx = c->rope_orig_ctx, h.norm_eps = c->norm_eps, h.rope_theta = c->rope_theta;
    h.rope_factor = c->rope_factor, h.rope_low_freq = c->rope_low_freq;
    h.rope_high_freq = c->rope_high_freq;
    header_check(&h, lb, lb_len, m->tokenizer, m->tokenizer_len, extra, h.extra_len, h.check);
    Writer w = {0};
    if ((rc = atomic_open(&w.af, path, err))) {
        free(lb);
        return rc;
    }
    sha256_init(&w.sha);
    put(&w, &h, sizeof h);
    put(&w, lb, lb_len);
    free(lb);
    put(&w, params, np * sizeof(float));
    put(&w, m->tokenizer, m->tokenizer_len);
    if (opt) {
        put(&w, opt->m, opt->n * sizeof(float));
        put(&w, opt->v, opt->n * sizeof(float));
    }
    if (extra) put(&w, extra, extra_len);
    return finish(&w, err);
}

int model_save(const char *path, const Model *m, Err *err) {
    return model_ckpt_save(path, m, NULL, NULL, 0, err);
}

/* ---- reading ------------------------------------------------------------ */

typedef struct {
    FILE *f;
    const char *path;
    Sha256 sha;
    int hash; /* model_verify of our format: hash everything for the trailing digest */
    uint64_t size, pos;
} Reader;

static int rd_open(Reader *r, const char *path, Err *err) {
    memset(r, 0, sizeof *r);
    r->path = path;
    r->f = fopen(path, "rb");
    if (!r->f) return err_set(err, RLHF_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(r->f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(r->f);
        r->f = NULL;
        return err_set(err, RLHF_EIO, "%s: not a regular file", path);
    }
    r->size = (uint64_t)st.st_size;
    sha256_init(&r->sha);
    return RLHF_OK;
}

static int get(Reader *r, void *p, size_t n, const char *what, Err *err) {
    if (r->pos + n > r->size || fread(p, 1, n, r->f) != n)
        return err_set(err, RLHF_EFORMAT, "%s: truncated (file ends inside the %s)", r->path, what);
    if (r->hash) sha256_update(&r->sha, p, n);
    r->pos += n;
    return RLHF_OK;
}

/* The config of a header: its 8 ints, then (ours, version 2) the named
 * fields; validated before anything is sized from it. */
static int config_from_header(const int32_t *v, const Header *h, Config *c, const char *path,
                              Err *err) {
    memset(c, 0, sizeof *c);
    c->dim = v[0], c->hidden_dim = v[1], c->n_layers = v[2], c->n_heads = v[3];
    c->n_kv_heads = v[4], c->vocab_size = v[5], c->seq_len = v[6], c->shared_classifier = v[7] != 0;
    if (h) {
        c->head_dim = h->head_dim, c->qkv_bias = h->qkv_bias, c->qk_norm = h->qk_norm;
        c->rope_orig_ctx = h->rope_orig_ctx, c->norm_eps = h->norm_eps;
        c->rope_theta = h->rope_theta, c->rope_factor = h->rope_factor;
        c->rope_low_freq = h->rope_low_freq, c->rope_high_freq = h->rope_high_freq;
    }
    int rc = model_config_validate(c, err);
    if (rc) return err_prefix(err, "%s: bad config in header: ", path), RLHF_EFORMAT;
    return RLHF_OK;
}

/* verify: also hash every byte and compare the trailing sha256 (a full read of
 * the file: only model_verify asks for it) */
/* An adapter's base: loaded from the path it names (itself merged when it
 * is an adapter), checked against its sha256 and config, given the heads,
 * with the adapter attached (its floats still to be read into it). */
static int lora_base(const char *path, const LoraBlock *b, const char *base_path, const Config *c,
                     int heads, Model *m, Err *err) {
    char sha[65], want[65];
    memcpy(want, b->base_sha, 64);
    want[64] = 0;
    int rc = model_file_sha256(base_path, sha, err);
    if (rc) return err_prefix(err, "%s: its LoRA base: ", path), rc;
    if (strcmp(sha, want) != 0)
        return err_set(err, RLHF_EINVAL,
                       "%s: its LoRA base %s changed since the adapter was trained (sha256 %.12s..., "
                       "expected %.12s...)",
                       path, base_path, sha, want);
    if ((rc = model_load(base_path, m, err))) return err_prefix(err, "%s: its LoRA base: ", path), rc;
    Config bc = m->cfg;
    bc.seq_len = c->seq_len; /* the context may be capped differently (--context) */
    if (memcmp(&bc, c, sizeof bc) != 0)
        rc = err_set(err, RLHF_EFORMAT, "%s: its config does not match its LoRA base %s", path,
                     base_path);
    m->cfg.seq_len = c->seq_len;
    LoraConfig lc = {b->rank, b->alpha, b->dropout, b->targets};
    if (!rc) rc = model_set_heads(m, heads, err);
    if (!rc) rc = model_lora_attach(m, &lc, 0, base_path, want, err);
    if (rc) model_free(m);
    return rc;
}

/* An adapter on a base already in memory (onto, whose file's sha256 is
 * onto_sha): a view of it (model_view) with the adapter, no second copy. */
static int lora_onto(const char *path, const LoraBlock *b, const char *base_path,
                     const Model *onto, const char *onto_sha, const Config *c, int heads, Model *m,
                     Err *err) {
    if (strncmp(onto_sha, b->base_sha, 64) != 0)
        return err_set(err, RLHF_EINVAL, "%s: its LoRA base is not the model it is to share", path);
    Config bc = onto->cfg;
    bc.seq_len = c->seq_len;
    if (memcmp(&bc, c, sizeof bc) != 0)
        return err_set(err, RLHF_EFORMAT, "%s: its config does not match its LoRA base", path);
    Lora *lo = calloc(1, sizeof *lo);
    LoraConfig lc = {b->rank, b->alpha, b->dropout, b->targets};
    int rc = lo ? lora_create(lo, &lc, c, 0, err) : err_set(err, RLHF_ENOMEM, "out of memory");
    if (!rc) snprintf(lo->base_sha, sizeof lo->base_sha, "%s", onto_sha);
    if (!rc && !(lo->base_path = strdup(base_path))) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    if (!rc) rc = model_view(m, onto, lo, heads, err);
    if (rc && lo) {
        lora_free(lo);
        free(lo);
    }
    return rc;
}

static int ckpt_read_onto(const char *path, Model *m, AdamW *opt, void **extra, size_t *extra_len,
                          int verify, int keep_lora, const Model *onto, const char *onto_sha,
                          Err *err);

static int ckpt_read(const char *path, Model *m, AdamW *opt, void **extra, size_t *extra_len,
                     int verify, int keep_lora, Err *err) {
    return ckpt_read_onto(path, m, opt, extra, extra_len, verify, keep_lora, NULL, NULL, err);
}

static int ckpt_read_onto(const char *path, Model *m, AdamW *opt, void **extra, size_t *extra_len,
                          int verify, int keep_lora, const Model *onto, const char *onto_sha,
                          Err *err) {
    memset(m, 0, sizeof *m);
    if (opt) memset(opt, 0, sizeof *opt);
    if (extra) *extra = NULL;
    if (extra_len) *extra_len = 0;
    Reader r;
    int rc = rd_open(&r, path, err);
    if (rc) return rc;
    r.hash = verify;
    Header h;
    memset(&h, 0, sizeof h);
    void *xbuf = NULL;
    char *base_path = NULL;
    if ((rc = get(&r, &h, V1_HEADER_SIZE, "header", err))) goto fail;
    if (memcmp(h.magic, MAGIC, 8) != 0) {
        rc = err_set(err, RLHF_EFORMAT, "%s: not an rlhf checkpoint (bad magic)", path);
        goto fail;
    }
    if (h.version > VERSION) {
        rc = err_set(err, RLHF_EVERSION, "%s: checkpoint version %u is newer than this program's %u",
                     path, h.version, VERSION);
        goto fail;
    }
    if (h.version < 1 || h.header_size != (h.version == 1 ? V1_HEADER_SIZE : sizeof h) ||
        (h.flags & ~(uint32_t)F_KNOWN)) {
        rc = err_set(err, RLHF_EFORMAT, "%s: corrupt header (version %u, size %u, flags 0x%x)", path,
                     h.version, h.header_size, h.flags);
        goto fail;
    }
    if (h.version >= 2 &&
        (rc = get(&r, (char *)&h + V1_HEADER_SIZE, sizeof h - V1_HEADER_SIZE, "header", err)))
        goto fail;
    Config c;
    if ((rc = config_from_header(h.config, &h, &c, path, err))) goto fail;
    int heads = (h.flags & F_REWARD ? MODEL_HEAD_REWARD : 0) | (h.flags & F_VALUE ? MODEL_HEAD_VALUE : 0);
    LoraBlock lb;
    memset(&lb, 0, sizeof lb);
    size_t lb_len = 0;
    if (h.flags & F_LORA) {
        if ((rc = get(&r, &lb, sizeof lb, "LoRA block", err))) goto fail;
        LoraConfig lc = {lb.rank, lb.alpha, lb.dropout, lb.targets};
        if (lb.path_len == 0 || lb.path_len > 4096 || lc.alpha <= 0 || lora_config_check(&lc, err)) {
            rc = err_set(err, RLHF_EFORMAT, "%s: corrupt LoRA block (rank %d, base path of %u bytes)",
                         path, lb.rank, lb.path_len);
            goto fail;
        }
        if (!(base_path = calloc(1, lb.path_len + 1))) {
            rc = err_set(err, RLHF_ENOMEM, "out of memory");
            goto fail;
        }
        if ((rc = get(&r, base_path, lb.path_len, "LoRA block", err))) goto fail;
        lb_len = sizeof lb + lb.path_len;
    }
    LoraConfig lcfg = {lb.rank, lb.alpha, lb.dropout, lb.targets};
    size_t n_params = lb_len ? lora_param_count(&lcfg, &c) : model_param_count(&c, heads);
    if (h.n_params != n_params) {
        rc = err_set(err, RLHF_EFORMAT, "%s: header says %llu parameters but its config needs %zu",
                     path, (unsigned long long)h.n_params, n_params);
        goto fail;
    }
    /* every section's size is known now: check the total against the file
     * before allocating anything the header asks for */
    uint64_t optb = (h.flags & F_OPTIM) ? 2 * h.n_params * 4 : 0;
    uint64_t want = h.header_size + lb_len + h.n_params * 4 + h.tokenizer_len + optb + h.extra_len + 32;
    if (h.n_params > r.size || h.tokenizer_len > r.size || h.extra_len > r.size || want != r.size) {
        rc = err_set(err, RLHF_EFORMAT, "%s: %s (file has %llu bytes, header describes %llu)", path,
                     r.size < want || h.n_params > r.size ? "truncated" : "size does not match its header",
                     (unsigned long long)r.size, (unsigned long long)want);
        goto fail;
    }
    if (onto && !lb_len) {
        rc = err_set(err, RLHF_EINVAL, "%s is not a LoRA adapter", path);
        goto fail;
    } else if (onto) {
        if ((rc = lora_onto(path, &lb, base_path, onto, onto_sha, &c, heads, m, err))) goto fail;
    } else if (lb_len) {
        if ((rc = lora_base(path, &lb, base_path, &c, heads, m, err))) goto fail;
    } else if ((rc = model_create(m, &c, heads, err))) {
        err_prefix(err, "%s: ", path);
        goto fail;
    }
    if ((rc = get(&r, model_train_params(m), h.n_params * 4, "parameters", err))) goto fail;
    if (h.tokenizer_len) {
        if (!m->borrowed) free(m->tokenizer);
        m->borrowed &= ~2; /* the view's own tokenizer from here on */
        m->tokenizer = malloc(h.tokenizer_len);
        if (!m->tokenizer) {
            rc = err_set(err, RLHF_ENOMEM, "%s: out of memory", path);
            goto fail;
        }
        m->tokenizer_len = h.tokenizer_len;
        if ((rc = get(&r, m->tokenizer, h.tokenizer_len, "tokenizer", err))) goto fail;
    }
    AdamW o = {0};
    if (h.flags & F_OPTIM) {
        if ((rc = adamw_create(&o, h.n_params, err))) {
            err_prefix(err, "%s: ", path);
            goto fail;
        }
        if ((rc = get(&r, o.m, o.n * 4, "optimizer state", err)) ||
            (rc = get(&r, o.v, o.n * 4, "optimizer state", err))) {
            adamw_free(&o);
            goto fail;
        }
        o.step = h.opt_step;
        o.beta1 = h.beta1, o.beta2 = h.beta2, o.eps = h.eps, o.weight_decay = h.weight_decay;
    }
    if (h.extra_len) {
        xbuf = malloc(h.extra_len);
        if (!xbuf || (rc = get(&r, xbuf, h.extra_len, "training state", err))) {
            if (!xbuf) rc = err_set(err, RLHF_ENOMEM, "%s: out of memory", path);
            adamw_free(&o);
            goto fail;
        }
    }
    unsigned char got_d[32];
    if (h.version >= 2) {
        unsigned char *lbb = malloc(lb_len + 1);
        if (lbb && lb_len) {
            memcpy(lbb, &lb, sizeof lb);
            memcpy(lbb + sizeof lb, base_path, lb.path_len);
        }
        header_check(&h, lbb, lbb ? lb_len : 0, h.tokenizer_len ? m->tokenizer : NULL,
                     h.tokenizer_len, xbuf, h.extra_len, got_d);
        free(lbb);
        if (memcmp(got_d, h.check, 16) != 0) {
            adamw_free(&o);
            rc = err_set(err, RLHF_EFORMAT,
                         "%s: header checksum mismatch (the header, tokenizer or training state is "
                         "corrupt)",
                         path);
            goto fail;
        }
    }
    if (verify) {
        unsigned char want_d[32];
        sha256_final(&r.sha, want_d);
        if (fread(got_d, 1, 32, r.f) != 32 || memcmp(got_d, want_d, 32) != 0) {
            adamw_free(&o);
            rc = err_set(err, RLHF_EFORMAT, "%s: checksum mismatch (the file is corrupt)", path);
            goto fail;
        }
    }
    fclose(r.f);
    free(base_path);
    base_path = NULL;
    if (!keep_lora && (rc = model_lora_merge(m, err))) {
        adamw_free(&o);
        free(xbuf);
        model_free(m);
        return rc;
    }
    if (opt) *opt = o;
    else adamw_free(&o);
    if (extra) *extra = xbuf;
    else free(xbuf);
    if (extra_len) *extra_len = extra ? h.extra_len : 0;
    return RLHF_OK;
fail:
    free(xbuf);
    free(base_path);
    fclose(r.f);
    model_free(m);
    return rc;
}

int model_ckpt_read_tokenizer(const char *path, void **blob, size_t *len, Err *err) {
    *blob = NULL;
    *len = 0;
    Reader r;
    int rc = rd_open(&r, path, err);
    if (rc) return rc;
    Header h;
    memset(&h, 0, sizeof h);
    if ((rc = get(&r, &h, V1_HEADER_SIZE, "header", err))) goto done;
    if (memcmp(h.magic, MAGIC, 8) != 0 || h.version < 1 || h.version > VERSION ||
        h.header_size < V1_HEADER_SIZE || h.n_params > r.size || h.tokenizer_len > r.size ||
        h.header_size + h.n_params * 4 + h.tokenizer_len > r.size) {
        rc = err_set(err, RLHF_EFORMAT, "%s: not a readable rlhf checkpoint", path);
        goto done;
    }
    if (!h.tokenizer_len) goto done;
    uint64_t at = h.header_size + h.n_params * 4;
    if (h.version >= 2 && (h.flags & F_LORA)) { /* an adapter: past its block and base path */
        LoraBlock lb;
        if (fseek(r.f, (long)h.header_size, SEEK_SET) != 0 || fread(&lb, sizeof lb, 1, r.f) != 1 ||
            lb.path_len > 4096) {
            rc = err_set(err, RLHF_EFORMAT, "%s: not a readable rlhf checkpoint", path);
            goto done;
        }
        at += sizeof lb + lb.path_len;
    }
    if (at + h.tokenizer_len > r.size || fseek(r.f, (long)at, SEEK_SET) != 0) {
        rc = err_set(err, RLHF_EFORMAT, "%s: not a readable rlhf checkpoint", path);
        goto done;
    }
    r.pos = at;
    if (!(*blob = malloc(h.tokenizer_len))) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    else if ((rc = get(&r, *blob, h.tokenizer_len, "tokenizer", err))) {
        free(*blob);
        *blob = NULL;
    } else
        *len = h.tokenizer_len;
done:
    fclose(r.f);
    return rc;
}

int model_ckpt_load(const char *path, Model *m, AdamW *opt, void **extra, size_t *extra_len,
                    Err *err) {
    /* a resume: the full check costs little beside the training it continues,
     * and a corrupt file must not be trained over */
    return ckpt_read(path, m, opt, extra, extra_len, 1, 1, err);
}

/* ---- llama2.c ----------------------------------------------------------- */

/* What llama2.c's format cannot say: it has 7 ints of config and run.c's
 * fixed eps, theta and head size. NULL when the model fits. */
static const char *llama2c_missing(const Config *c) {
    if (c->qkv_bias) return "q/k/v biases (qkv_bias)";
    if (c->qk_norm) return "per-head q/k norms (qk_norm)";
    if (c->head_dim && (c->dim % c->n_heads || c->head_dim != c->dim / c->n_heads))
        return "a head size other than dim / heads (head_dim)";
    if (c->norm_eps > 0 && c->norm_eps != MODEL_NORM_EPS) return "an RMSNorm eps other than 1e-5";
    if (c->rope_theta > 0 && c->rope_theta != MODEL_ROPE_THETA) return "a RoPE theta other than 10000";
    if (c->rope_factor > 0) return "RoPE scaling (llama3 rope_scaling)";
    return NULL;
}

int model_save_llama2c(const char *path, const Model *m, Err *err) {
    const Config *c = &m->cfg;
    const char *missing = llama2c_missing(c);
    if (missing)
        return err_set(err, RLHF_EINVAL,
                       "%s: llama2.c's format cannot hold this model's %s; save it in rlhf's own "
                       "checkpoint format instead",
                       path, missing);
    int32_t hdr[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                      c->shared_classifier ? c->vocab_size : -c->vocab_size, c->seq_len};
    int hs = model_head_size(c);
    size_t nf = (size_t)c->seq_len * hs / 2;
    float *cs = malloc(2 * nf * sizeof(float));
    if (!cs) return err_set(err, RLHF_ENOMEM, "%s: out of memory", path);
    /* the old freq_cis_real/imag tables: run.c skips them, export.py wrote them */
    rope_tables(cs, cs + nf, c->seq_len, c);
    Writer w = {0};
    int rc = atomic_open(&w.af, path, err);
    if (rc) {
        free(cs);
        return rc;
    }
    sha256_init(&w.sha);
    put(&w, hdr, sizeof hdr);
    size_t upto = model_tensor_offset(m, MODEL_T_WCLS);
    put(&w, m->params, upto * sizeof(float));
    put(&w, cs, 2 * nf * sizeof(float));
    put(&w, m->params + upto, m->sizes[MODEL_T_WCLS] * sizeof(float));
    free(cs);
    if (w.bad) {
        atomic_abort(&w.af);
        return err_set(err, RLHF_EIO, "%s: write failed: %s", path, strerror(w.bad));
    }
    return atomic_commit(&w.af, err);
}

int model_load_llama2c(const char *path, Model *m, Err *err) {
    memset(m, 0, sizeof *m);
    Reader r;
    int rc = rd_open(&r, path, err);
    if (rc) return rc;
    r.hash = 0;
    int32_t hdr[7];
    if ((rc = get(&r, hdr, sizeof hdr, "llama2.c header", err))) goto fail;
    /* a negative vocab means an unshared classifier; INT32_MIN has no positive */
    int32_t vocab = hdr[5] == INT32_MIN ? 0 : hdr[5] < 0 ? -hdr[5] : hdr[5];
    int32_t ints[8] = {hdr[0], hdr[1], hdr[2], hdr[3], hdr[4], vocab, hdr[6], hdr[5] > 0};
    Config c;
    if ((rc = config_from_header(ints, NULL, &c, path, err))) goto fail;
    size_t nf = (size_t)c.seq_len * model_head_size(&c) / 2;
    uint64_t want = sizeof hdr + ((uint64_t)model_param_count(&c, 0) + 2 * nf) * 4;
    if (r.size != want) {
        rc = err_set(err, RLHF_EFORMAT,
                     "%s: %s: file has %llu bytes, a llama2.c checkpoint of its header's config "
                     "(dim %d, hidden %d, layers %d, vocab %d, seq %d) has %llu",
                     path, r.size < want ? "truncated or not a checkpoint" : "size does not match its header",
                     (unsigned long long)r.size, c.dim, c.hidden_dim, c.n_layers, c.vocab_size, c.seq_len,
                     (unsigned long long)want);
        goto fail;
    }
    if ((rc = model_create(m, &c, 0, err))) {
        err_prefix(err, "%s: ", path);
        goto fail;
    }
    size_t upto = model_tensor_offset(m, MODEL_T_WCLS);
    if ((rc = get(&r, m->params, upto * 4, "weights", err))) goto fail;
    if (fseek(r.f, (long)(2 * nf * 4), SEEK_CUR) != 0) {
        rc = err_set(err, RLHF_EIO, "%s: seek failed: %s", path, strerror(errno));
        goto fail;
    }
    r.pos += 2 * nf * 4;
    if ((rc = get(&r, m->params + upto, m->sizes[MODEL_T_WCLS] * 4, "classifier", err))) goto fail;
    fclose(r.f);
    return RLHF_OK;
fail:
    fclose(r.f);
    model_free(m);
    return rc;
}

int model_load(const char *path, Model *m, Err *err) {
    if (hf_is_dir(path)) return hf_load(path, m, err);
    FILE *f = fopen(path, "rb");
    if (!f) {
        memset(m, 0, sizeof *m);
        return err_set(err, RLHF_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    char magic[8] = {0};
    size_t n = fread(magic, 1, 8, f);
    fclose(f);
    if (n == 8 && memcmp(magic, MAGIC, 8) == 0) return ckpt_read(path, m, NULL, NULL, NULL, 0, 0, err);
    return model_load_llama2c(path, m, err);
}

int model_load_adapter(const char *path, Model *m, Err *err) {
    memset(m, 0, sizeof *m);
    if (hf_is_dir(path))
        return err_set(err, RLHF_EINVAL, "%s is a Hugging Face directory, not a LoRA adapter", path);
    int rc = ckpt_read(path, m, NULL, NULL, NULL, 0, 1, err);
    if (!rc && !m->lora) {
        model_free(m);
        rc = err_set(err, RLHF_EINVAL, "%s is not a LoRA adapter (it was not trained with --lora)",
                     path);
    }
    return rc;
}

int model_load_adapter_onto(const char *path, const Model *base, const char *base_sha, Model *m,
                            AdamW *opt, void **extra, size_t *extra_len, Err *err) {
    memset(m, 0, sizeof *m);
    return ckpt_read_onto(path, m, opt, extra, extra_len, opt != NULL, 1, base, base_sha, err);
}

int model_adapter_base(const char *path, char sha[65], Err *err) {
    sha[0] = 0;
    if (hf_is_dir(path)) return RLHF_OK;
    Reader r;
    int rc = rd_open(&r, path, err);
    if (rc) return rc;
    Header h;
    LoraBlock b;
    memset(&h, 0, sizeof h);
    if (get(&r, &h, sizeof h, "header", err) == RLHF_OK && !memcmp(h.magic, MAGIC, 8) &&
        h.version == VERSION && (h.flags & F_LORA) && get(&r, &b, sizeof b, "LoRA block", err) == RLHF_OK) {
        memcpy(sha, b.base_sha, 64);
        sha[64] = 0;
    }
    fclose(r.f);
    return RLHF_OK;
}

int model_verify(const char *path, int *has_checksum, Err *err) {
    Model m;
    AdamW o;
    void *x = NULL;
    size_t xl = 0;
    char magic[8] = {0};
    *has_checksum = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, RLHF_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t n = fread(magic, 1, 8, f);
    fclose(f);
    int ours = n == 8 && memcmp(magic, MAGIC, 8) == 0;
    int rc = ours ? ckpt_read(path, &m, &o, &x, &xl, 1, 1, err) : model_load_llama2c(path, &m, err);
    if (rc) return rc;
    *has_checksum = ours;
    if (ours) adamw_free(&o);
    free(x);
    model_free(&m);
    return RLHF_OK;
}

int model_load_tokenizer(const Model *m, const char *model_path, const char *tok_path,
                         Tokenizer **out, Err *err) {
    int rc;
    *out = NULL;
    if (tok_path) rc = tok_load(tok_path, out, err);
    else if (m->tokenizer) {
        rc = tok_load_mem(m->tokenizer, m->tokenizer_len, out, err);
        if (rc) err_prefix(err, "%s: embedded tokenizer: ", model_path);
    } else
        rc = err_set(err, RLHF_EINVAL, "%s carries no tokenizer: pass --tokenizer TOK", model_path);
    if (!rc) rc = tok_check_vocab(*out, m->cfg.vocab_size, err);
    /* a given tokenizer of the right size but other pieces would run, read the
     * model's ids as other words, and be written into what is trained from it */
    if (!rc && tok_path && m->tokenizer) {
        Tokenizer *own = NULL;
        /* what a checkpoint carries may hold no tokenizer (a Hugging Face
         * directory converted without its tokenizer files): nothing to compare */
        Err ignored = {0};
        if (tok_load_mem(m->tokenizer, m->tokenizer_len, &own, &ignored) == RLHF_OK) {
            char a[1100];
            snprintf(a, sizeof a, "%s (its own tokenizer)", model_path);
            rc = tok_require_same(own, a, *out, tok_path, err);
            tok_free(own);
        }
    }
    if (rc && *out) {
        tok_free(*out);
        *out = NULL;
    }
    return rc;
}

/* The digest is remembered on the file itself (extended attribute
 * user.rlhf.sha256) with the size, mtime and inode it was computed for, so
 * registering the same checkpoint again (every gen, ppo, best-of run) costs a
 * stat instead of a read of the whole file. Any write changes the mtime or,
 * for our atomic writes, the inode; a file system without user attributes
 * just hashes every time. */
#define SHA_XATTR "user.rlhf.sha256"

static void stamp(const struct stat *st, char *buf, size_t n) {
    snprintf(buf, n, " %llu %lld.%09ld %llu", (unsigned long long)st->st_size,
             (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec, (unsigned long long)st->st_ino);
}

int model_file_sha256(const char *path, char out[65], Err *err) {
    if (hf_is_dir(path)) return hf_dir_sha256(path, out, err);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, RLHF_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    char want[200], got[200];
    int have_st = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
    if (have_st) {
        stamp(&st, want, sizeof want);
        ssize_t n = fgetxattr(fileno(f), SHA_XATTR, got, sizeof got - 1);
        if (n == (ssize_t)(64 + strlen(want)) && (got[n] = 0, strcmp(got + 64, want) == 0)) {
            memcpy(out, got, 64);
            out[64] = 0;
            fclose(f);
            return RLHF_OK;
        }
    }
    Sha256 s;
    sha256_init(&s);
    static const char hex[] = "0123456789abcdef";
    unsigned char buf[1 << 16], d[32];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sha256_update(&s, buf, n);
    int bad = ferror(f);
    if (bad) {
        fclose(f);
        return err_set(err, RLHF_EIO, "%s: read error", path);
    }
    sha256_final(&s, d);
    for (int i = 0; i < 32; i++) out[2 * i] = hex[d[i] >> 4], out[2 * i + 1] = hex[d[i] & 15];
    out[64] = 0;
    struct stat after;
    /* only when nothing changed while it was read, and only for a file last
     * written over 2 s ago: mtimes tick coarsely, so a write in the same tick
     * as the one stamped would keep its mtime. Failure (read-only file, no
     * xattr support) just means hashing again next time. */
    if (have_st && st.st_mtim.tv_sec < time(NULL) - 2 && fstat(fileno(f), &after) == 0 &&
        after.st_mtim.tv_sec == st.st_mtim.tv_sec &&
        after.st_mtim.tv_nsec == st.st_mtim.tv_nsec && after.st_size == st.st_size) {
        snprintf(got, sizeof got, "%s%s", out, want);
        (void)fsetxattr(fileno(f), SHA_XATTR, got, strlen(got), 0);
    }
    fclose(f);
    return RLHF_OK;
}
