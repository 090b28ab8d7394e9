/* Checkpoint files: llama2.c's format (7-int header dim, hidden_dim, n_layers,
 * n_heads, n_kv_heads, vocab_size, seq_len; negative vocab = own classifier;
 * weights in run.c's order with the old freq_cis placeholders) and our own:
 *
 *   "RLHFCKPT" u32 version, u32 header size, i32 config[8], u32 flags,
 *   u64 n_params, u64 tokenizer bytes, u64 extra bytes, i64 optimizer step,
 *   f32 adam betas, eps, weight decay,
 *   (version 2) i32 head_dim, qkv_bias, qk_norm, rope original context,
 *   f32 norm eps, rope theta, rope factor, low and high freq factors, pad,
 *   16 bytes: sha256 of the header, tokenizer and extra bytes (truncated),
 *   f32 params[n_params], tokenizer bytes, [f32 adam m, v], extra bytes,
 *   sha256 of everything before it (32 bytes).
 * Version 1 (104-byte header, no version-2 fields) is still read.
 *
 * Integrity costs nothing at load: model_load (sample, gen, eval, the start
 * of a trainer) checks the header, every size against the file and the small
 * sections' check (header, tokenizer, extra), never the floats. The whole
 * file is read against the trailing sha256 only when asked: model_verify
 * (`rlhf models verify`) and model_ckpt_load (resuming a run, where it costs
 * little beside the training and a corrupt file must not be trained over). Writes are atomic (util/sys.h), so a file is
 * torn only by what happens to it afterwards. Bad files give RLHF_EFORMAT
 * naming the file. */
#ifndef RLHF_MODEL_CHECKPOINT_H
#define RLHF_MODEL_CHECKPOINT_H

#include <stddef.h>

#include "model/model.h"
#include "model/optim.h"
#include "model/tokenizer.h"
#include "util/err.h"

/* Loads either format (told apart by the magic) into a fresh Model; no
 * whole-file checksum (see above). A LoRA adapter is loaded onto its base
 * (named in it by path, checked by sha256) and merged into it. */
int model_load(const char *path, Model *m, Err *err);
/* A LoRA adapter (a checkpoint trained with --lora, model/lora.h) on its
 * base, not merged: m->lora set. Anything else is RLHF_EINVAL naming path. */
int model_load_adapter(const char *path, Model *m, Err *err);
/* The same onto a base already in memory whose file has sha256 base_sha: m
 * becomes a view of base (model_view: no copy of its weights) with the
 * adapter; refused when the adapter names another base. With opt, also the
 * optimizer state and extra bytes (a resume; the whole file is checked). */
int model_load_adapter_onto(const char *path, const Model *base, const char *base_sha, Model *m,
                            AdamW *opt, void **extra, size_t *extra_len, Err *err);
/* The sha256 of the base an adapter names, or "" when path is not an adapter. */
int model_adapter_base(const char *path, char sha[65], Err *err);
/* Saves in our format (with heads and tokenizer, without optimizer state). */
int model_save(const char *path, const Model *m, Err *err);

/* Our format with everything. opt may be NULL (not saved); extra is opaque
 * caller bytes (e.g. a training loop's data position and RNG) or NULL. */
int model_ckpt_save(const char *path, const Model *m, const AdamW *opt, const void *extra,
                    size_t extra_len, Err *err);
/* Reads our format into a fresh Model, verifying the whole file's sha256
 * (for resuming). When opt is not NULL it receives the
 * optimizer state if the file has one (opt->n == 0 when it has none). When
 * extra is not NULL it receives a malloc'd copy of the extra bytes (or NULL). */
int model_ckpt_load(const char *path, Model *m, AdamW *opt, void **extra, size_t *extra_len,
                    Err *err);

/* The whole-file check: our format is read through with every byte hashed
 * against its trailing sha256 (*has_checksum = 1); llama2.c's, which has no
 * checksum, is only loaded (*has_checksum = 0). RLHF_EFORMAT when corrupt. */
int model_verify(const char *path, int *has_checksum, Err *err);

/* Only the tokenizer section of our format (header checked, weights not
 * read): *blob is malloc'd (NULL when the checkpoint carries none). */
int model_ckpt_read_tokenizer(const char *path, void **blob, size_t *len, Err *err);

/* llama2.c's format. Heads and the tokenizer are not saved there; a model
 * with features the format cannot hold (biases, q/k norms, head_dim other
 * than dim/heads, non-default eps, theta or RoPE scaling) is refused
 * (RLHF_EINVAL naming the feature). */
int model_save_llama2c(const char *path, const Model *m, Err *err);
int model_load_llama2c(const char *path, Model *m, Err *err);

/* Loads the tokenizer for a loaded model: tok_path when given, else the one
 * the checkpoint carries; checks it matches the model's vocabulary. */
int model_load_tokenizer(const Model *m, const char *model_path, const char *tok_path,
                         Tokenizer **out, Err *err);

/* The sha256 hex digest of a whole file (for the registry). Remembered in an
 * extended attribute of the file keyed by its size, mtime and inode, so asking
 * again about an unchanged file costs a stat, not a read. */
int model_file_sha256(const char *path, char out[65], Err *err);

#endif
