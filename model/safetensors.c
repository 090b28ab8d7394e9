/* safetensors reading (memory-mapped, checked) and writing (atomic). */
#include "model/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/parallel.h"
#include "util/sys.h"

static const char *dtype_names[ST_NDTYPES] = {"F32", "BF16", "F16"};
static const size_t dtype_size[ST_NDTYPES] = {4, 2, 2};

const char *st_dtype_name(int d) { return d >= 0 && d < ST_NDTYPES ? dtype_names[d] : "?"; }

int st_dtype_parse(const char *s) {
    for (int d = 0; d < ST_NDTYPES; d++)
        if (strcasecmp(s, dtype_names[d]) == 0) return d;
    if (strcasecmp(s, "float32") == 0 || strcasecmp(s, "fp32") == 0) return ST_F32;
    if (strcasecmp(s, "bfloat16") == 0) return ST_BF16;
    if (strcasecmp(s, "float16") == 0 || strcasecmp(s, "fp16") == 0) return ST_F16;
    return -1;
}

/* A float's bits and back. */
static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float st_bf16_to_f32(uint16_t h) {
    return bits_f32((uint32_t)h << 16);
}

uint16_t st_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13);
    } else if (exp) {
        u = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man) { /* subnormal: value man * 2^-24 */
        float f = ldexpf((float)man, -24);
        return sign ? -f : f;
    } else {
        u = sign;
    }
    return bits_f32(u);
}

uint16_t st_f32_to_f16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00;   /* NaN */
    if (a >= 0x477ff000u) return sign | 0x7c00;  /* rounds to >= 65520: inf */
    if (a < 0x38800000u) {                       /* below 2^-14: subnormal or zero */
        float v = fabsf(f) * 16777216.0f;        /* in units of 2^-24, exact */
        return sign | (uint16_t)nearbyintf(v);   /* default rounding: to nearest even */
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1);   /* round the 13 dropped bits to even */
    return sign | (uint16_t)((r - 0x38000000u) >> 13);
}

typedef struct {
    const StTensor *t;
    float *out;
} Conv;

/* O3 (GCC): the bf16 shift vectorises */
#if defined(__GNUC__) && !defined(__clang__)
#define ST_VECTORISE __attribute__((optimize("O3")))
#else
#define ST_VECTORISE
#endif
ST_VECTORISE static void conv_part(void *ctx, int64_t lo, int64_t hi, int part) {
    const Conv *c = ctx;
    (void)part;
    float *o = c->out;
    if (c->t->dtype == ST_F32) {
        memcpy(o + lo, (const float *)c->t->data + lo, (size_t)(hi - lo) * 4);
        return;
    }
    const uint16_t *h = c->t->data;
    if (c->t->dtype == ST_BF16) {
        uint32_t *u = (uint32_t *)o;
        for (int64_t i = lo; i < hi; i++) u[i] = (uint32_t)h[i] << 16;
    } else {
        for (int64_t i = lo; i < hi; i++) o[i] = st_f16_to_f32(h[i]);
    }
}

void st_to_f32(const StTensor *t, float *out) {
    /* a large model is read at the speed of memory: both threads convert */
    Conv c = {t, out};
    par_for((int64_t)t->numel, 1 << 18, conv_part, &c);
}

void st_close(SafeTensors *st) {
    for (int i = 0; i < st->n; i++) free(st->t[i].name);
    for (int f = 0; f < st->n_files; f++) {
        if (st->maps && st->maps[f] && st->map_len[f]) munmap(st->maps[f], st->map_len[f]);
        if (st->paths) free(st->paths[f]);
    }
    free(st->t);
    free(st->paths);
    free(st->maps);
    free(st->map_len);
    memset(st, 0, sizeof *st);
}

const StTensor *st_find(const SafeTensors *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->t[i].name, name) == 0) return &st->t[i];
    return NULL;
}

int st_expect(const SafeTensors *st, const char *name, int ndim, const int64_t *shape,
              const StTensor **out, Err *err) {
    const StTensor *t = st_find(st, name);
    if (!t)
        return err_set(err, RLHF_EFORMAT, "%s: tensor %s is missing",
                       st->n_files == 1 ? st->paths[0] : "the safetensors files", name);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char want[96] = "", got[96] = "";
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? ", " : "",
                     (long long)shape[i]);
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "",
                     (long long)t->shape[i]);
        return err_set(err, RLHF_EFORMAT, "%s: tensor %s has shape [%s], expected [%s]",
                       st->paths[t->file], name, got, want);
    }
    *out = t;
    return RLHF_OK;
}

static int cmp_offset(const void *a, const void *b) {
    const StTensor *x = a, *y = b;
    if (x->file != y->file) return x->file - y->file;
    const char *p = x->data, *q = y->data;
    return p < q ? -1 : p > q;
}

/* Maps file number f and appends its tensors, checked against the file. */
static int map_file(SafeTensors *st, int f, Err *err) {
    const char *path = st->paths[f];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(err, RLHF_EIO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return err_set(err, RLHF_EFORMAT, "%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return err_set(err, RLHF_EFORMAT, "%s: truncated (%zu bytes, no header)", path, size);
    }
    /* populated: the whole file is read in one sequential pass instead of a
     * page fault per 4 KiB as the conversion walks it */
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return err_set(err, RLHF_EIO, "%s: mmap: %s", path, strerror(errno));
    st->maps[f] = map;
    st->map_len[f] = size;
    const unsigned char *b = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];
    if (hlen < 2 || hlen > 100000000 || hlen > size - 8)
        return err_set(err, RLHF_EFORMAT, "%s: truncated or not safetensors (header of %llu bytes, file of %zu)",
                       path, (unsigned long long)hlen, size);
    cJSON *h = cJSON_ParseWithLength((const char *)b + 8, (size_t)hlen);
    if (!h || !cJSON_IsObject(h)) {
        cJSON_Delete(h);
        return err_set(err, RLHF_EFORMAT, "%s: the header is not a JSON object", path);
    }
    const char *data = (const char *)b + 8 + hlen;
    size_t data_len = size - 8 - (size_t)hlen;
    int first = st->n, rc = RLHF_OK;
    cJSON *e;
    cJSON_ArrayForEach(e, h) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
        cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        const char *name = e->string;
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) ||
            cJSON_GetArraySize(off) != 2) {
            rc = err_set(err, RLHF_EFORMAT, "%s: tensor %s: header entry needs dtype, shape and data_offsets",
                         path, name);
            break;
        }
        int dtype = -1;
        for (int d = 0; d < ST_NDTYPES; d++)
            if (strcmp(dt->valuestring, dtype_names[d]) == 0) dtype = d;
        if (dtype < 0) {
            rc = err_set(err, RLHF_EFORMAT, "%s: tensor %s: dtype %s is not supported (F32, BF16, F16)",
                         path, name, dt->valuestring);
            break;
        }
        int ndim = cJSON_GetArraySize(sh);
        if (ndim > 4) {
            rc = err_set(err, RLHF_EFORMAT, "%s: tensor %s has %d dimensions (at most 4)", path, name, ndim);
            break;
        }
        StTensor t = {.dtype = dtype, .ndim = ndim, .file = f, .numel = 1};
        for (int i = 0; i < ndim && !rc; i++) {
            double v = cJSON_GetArrayItem(sh, i)->valuedouble;
            if (!cJSON_IsNumber(cJSON_GetArrayItem(sh, i)) || v < 0 || v > 1e12 || v != floor(v))
                rc = err_set(err, RLHF_EFORMAT, "%s: tensor %s: bad shape", path, name);
            t.shape[i] = (int64_t)v;
            t.numel *= (size_t)v;
        }
        if (rc) break;
        double lo = cJSON_GetArrayItem(off, 0)->valuedouble, hi = cJSON_GetArrayItem(off, 1)->valuedouble;
        if (!(lo >= 0 && hi >= lo && hi <= (double)data_len)) {
            rc = err_set(err, RLHF_EFORMAT,
                         "%s: tensor %s: data [%.0f, %.0f) lies outside the file's %zu data bytes (truncated?)",
                         path, name, lo, hi, data_len);
            break;
        }
        if ((size_t)(hi - lo) != t.numel * dtype_size[dtype]) {
            rc = err_set(err, RLHF_EFORMAT, "%s: tensor %s: %.0f bytes for %zu %s values", path, name,
                         hi - lo, t.numel, dtype_names[dtype]);
            break;
        }
        t.data = data + (size_t)lo;
        if (((uintptr_t)t.data) % dtype_size[dtype]) {
            rc = err_set(err, RLHF_EFORMAT, "%s: tensor %s is not aligned to its dtype", path, name);
            break;
        }
        if (!(t.name = strdup(name))) {
            rc = err_set(err, RLHF_ENOMEM, "out of memory");
            break;
        }
        StTensor *nt = realloc(st->t, (size_t)(st->n + 1) * sizeof *nt);
        if (!nt) {
            free(t.name);
            rc = err_set(err, RLHF_ENOMEM, "out of memory");
            break;
        }
        st->t = nt;
        st->t[st->n++] = t;
    }
    cJSON_Delete(h);
    if (rc) return rc;
    /* tensors must not overlap (a header that aliases data is damaged) */
    qsort(st->t + first, (size_t)(st->n - first), sizeof *st->t, cmp_offset);
    for (int i = first + 1; i < st->n; i++) {
        const StTensor *a = &st->t[i - 1], *c = &st->t[i];
        if ((const char *)a->data + a->numel * dtype_size[a->dtype] > (const char *)c->data)
            return err_set(err, RLHF_EFORMAT, "%s: tensors %s and %s overlap", path, a->name, c->name);
    }
    return RLHF_OK;
}

static int add_path(SafeTensors *st, const char *path, Err *err) {
    for (int f = 0; f < st->n_files; f++)
        if (strcmp(st->paths[f], path) == 0) return RLHF_OK;
    int n = st->n_files + 1;
    char **p = realloc(st->paths, n * sizeof *p);
    if (p) st->paths = p;
    void **m = realloc(st->maps, n * sizeof *m);
    if (m) st->maps = m;
    size_t *l = realloc(st->map_len, n * sizeof *l);
    if (l) st->map_len = l;
    if (!p || !m || !l || !(st->paths[n - 1] = strdup(path)))
        return err_set(err, RLHF_ENOMEM, "out of memory");
    st->maps[n - 1] = NULL;
    st->map_len[n - 1] = 0;
    st->n_files = n;
    return RLHF_OK;
}

/* Shards named by model.safetensors.index.json's weight_map, each once. */
static int add_index(SafeTensors *st, const char *dir, const char *index, Err *err) {
    char *text;
    size_t len;
    int rc = sys_read_file(index, &text, &len, err);
    if (rc) return rc;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    cJSON *wm = cJSON_GetObjectItemCaseSensitive(j, "weight_map");
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(j);
        return err_set(err, RLHF_EFORMAT, "%s: no weight_map object", index);
    }
    cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || e->valuestring[0] == '.') {
            rc = err_set(err, RLHF_EFORMAT, "%s: weight_map.%s: a shard file name in this folder expected",
                         index, e->string);
            break;
        }
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->valuestring);
        if ((rc = add_path(st, p, err))) break;
    }
    cJSON_Delete(j);
    return rc;
}

int st_open(const char *path, SafeTensors *st, Err *err) {
    memset(st, 0, sizeof *st);
    struct stat sb;
    if (stat(path, &sb) != 0) return err_set(err, RLHF_EIO, "%s: %s", path, strerror(errno));
    int rc;
    if (S_ISDIR(sb.st_mode)) {
        char p[4096];
        snprintf(p, sizeof p, "%s/model.safetensors.index.json", path);
        if (access(p, F_OK) == 0) {
            rc = add_index(st, path, p, err);
        } else {
            snprintf(p, sizeof p, "%s/model.safetensors", path);
            if (access(p, F_OK) != 0)
                return err_set(err, RLHF_ENOTFOUND,
                               "%s: no model.safetensors or model.safetensors.index.json", path);
            rc = add_path(st, p, err);
        }
    } else {
        rc = add_path(st, path, err);
    }
    for (int f = 0; !rc && f < st->n_files; f++) rc = map_file(st, f, err);
    /* a name in two shards would make the weights depend on the order read */
    for (int i = 0; !rc && i < st->n; i++)
        for (int k = i + 1; k < st->n; k++)
            if (strcmp(st->t[i].name, st->t[k].name) == 0) {
                rc = err_set(err, RLHF_EFORMAT, "%s: tensor %s appears twice", st->paths[st->t[k].file],
                             st->t[i].name);
                break;
            }
    if (rc) st_close(st);
    return rc;
}

int st_write(const char *path, const StItem *items, int n, int dtype, Err *err) {
    if (dtype < 0 || dtype >= ST_NDTYPES) return err_set(err, RLHF_EINVAL, "bad safetensors dtype");
    cJSON *h = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    size_t off = 0, es = dtype_size[dtype];
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        cJSON *e = cJSON_AddObjectToObject(h, items[i].name);
        cJSON_AddStringToObject(e, "dtype", dtype_names[dtype]);
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < items[i].ndim; d++) {
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)items[i].shape[d]));
            numel *= (size_t)items[i].shape[d];
        }
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        off += numel * es;
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
    }
    char *text = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!text) return err_set(err, RLHF_ENOMEM, "out of memory");
    size_t hl = strlen(text), padded = (hl + 7) & ~(size_t)7; /* data starts 8-aligned */
    AtomicFile a;
    int rc = atomic_open(&a, path, err);
    if (rc) {
        free(text);
        return rc;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, a.f) == 8 && fwrite(text, 1, hl, a.f) == hl;
    for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', a.f) != EOF;
    free(text);
    enum { CHUNK = 1 << 16 };
    uint16_t *buf = malloc(CHUNK * sizeof *buf);
    if (!buf) ok = 0;
    for (int i = 0; ok && i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < items[i].ndim; d++) numel *= (size_t)items[i].shape[d];
        const float *x = items[i].data;
        if (dtype == ST_F32) {
            ok = fwrite(x, 4, numel, a.f) == numel;
            continue;
        }
        for (size_t s = 0; ok && s < numel; s += CHUNK) {
            size_t k = numel - s < CHUNK ? numel - s : CHUNK;
            for (size_t j = 0; j < k; j++)
                buf[j] = dtype == ST_BF16 ? st_f32_to_bf16(x[s + j]) : st_f32_to_f16(x[s + j]);
            ok = fwrite(buf, 2, k, a.f) == k;
        }
    }
    free(buf);
    if (!ok) {
        atomic_abort(&a);
        return err_set(err, RLHF_EIO, "%s: write failed", path);
    }
    return atomic_commit(&a, err);
}
