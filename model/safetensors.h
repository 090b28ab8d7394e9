/* safetensors files (Hugging Face's weight format): an 8-byte little-endian
 * header length, a JSON header {name: {dtype, shape, data_offsets}} and the
 * raw tensors. Read memory-mapped (nothing is copied until a tensor is asked
 * for), single-file or sharded through model.safetensors.index.json; written
 * atomically from float32 arrays in F32, BF16 or F16.
 *
 * Every header is checked against its file before anything is used: offsets
 * inside the data, sizes equal to shape × dtype, no overlaps. Errors name the
 * file and the tensor. A SafeTensors owns its maps and names. */
#ifndef RLHF_MODEL_SAFETENSORS_H
#define RLHF_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum { ST_F32, ST_BF16, ST_F16, ST_NDTYPES };

typedef struct StTensor {
    char *name;
    int dtype;          /* ST_* */
    int ndim;
    int64_t shape[4];
    size_t numel;
    const void *data;   /* inside the file's map */
    int file;           /* index into SafeTensors.paths */
} StTensor;

typedef struct SafeTensors {
    StTensor *t;
    int n;
    int n_files;
    char **paths;
    void **maps;
    size_t *map_len;
} SafeTensors;

/* Opens a .safetensors file, or a directory holding model.safetensors or a
 * model.safetensors.index.json with its shards. */
int st_open(const char *path, SafeTensors *st, Err *err);
void st_close(SafeTensors *st);
/* The tensor called name, or NULL. */
const StTensor *st_find(const SafeTensors *st, const char *name);
/* Checks that tensor name exists with this shape (ndim values); the error
 * names the file and the tensor. */
int st_expect(const SafeTensors *st, const char *name, int ndim, const int64_t *shape,
              const StTensor **out, Err *err);
/* Converts a tensor's n = numel values to float32. */
void st_to_f32(const StTensor *t, float *out);
const char *st_dtype_name(int dtype);
/* The dtype called s ("f32"/"F32", "bf16", "f16"); -1 when unknown. */
int st_dtype_parse(const char *s);

float st_bf16_to_f32(uint16_t h);
uint16_t st_f32_to_bf16(float f); /* round to nearest even */
float st_f16_to_f32(uint16_t h);
uint16_t st_f32_to_f16(float f);  /* round to nearest even */

/* One tensor to write: numel float32 values converted to the file's dtype. */
typedef struct StItem {
    const char *name;
    int ndim;
    int64_t shape[4];
    const float *data;
} StItem;

/* Writes items to path (atomically) in dtype, in the order given. */
int st_write(const char *path, const StItem *items, int n, int dtype, Err *err);

#endif
