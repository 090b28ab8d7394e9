/* Hugging Face model directories in and out: config.json, (sharded)
 * safetensors, and the side files (tokenizer, its config with the chat
 * template, the generation config) that travel with the weights.
 *
 * Read: LlamaForCausalLM (Llama 2/3/3.2, SmolLM/SmolLM2, TinyLlama),
 * MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM and their
 * *ForSequenceClassification reward models. HF applies RoPE to the two halves
 * of each head (rotate-half); the engine rotates interleaved pairs (llama2.c).
 * The two are the same rotation of a permuted head, so q and k rows (and
 * their biases and norm gains) are permuted on the way in and back on the way
 * out: our row 2i is HF's row i and our row 2i+1 is HF's row i + hs/2.
 * Attention scores are dot products over a head, which the permutation of
 * both q and k leaves unchanged, so nothing else moves.
 *
 * The side files are kept, as read, in the Model's tokenizer blob (an
 * archive: HF_FILES_MAGIC, then name/bytes records), so a checkpoint trained
 * from an HF model carries its tokenizer, chat template and original config,
 * and `convert --to hf` writes them back. */
#ifndef RLHF_MODEL_HF_H
#define RLHF_MODEL_HF_H

#include <stddef.h>

#include "model/model.h"
#include "model/safetensors.h"
#include "util/err.h"

#define HF_FILES_MAGIC "RLHFHF01"
/* The context HF models get when none is set: their max_position_embeddings
 * up to this (KV caches and attention scale with it). */
#define HF_DEFAULT_CONTEXT 2048

/* Whether path is a directory with a config.json. */
int hf_is_dir(const char *path);
/* The context length for HF models (--context / $RLHF_CONTEXT); 0: the default. */
void hf_set_context(int n);
int hf_context(void);

/* Loads an HF directory: the config checked field by field (an unsupported
 * architecture or option names the field), every tensor checked for presence
 * and shape before anything is copied, BF16/F16 converted to float32. A
 * sequence-classification model gets a reward head from score.weight (bias
 * from config.json's rlhf_reward_bias, else 0). */
int hf_load(const char *dir, Model *m, Err *err);

enum { HF_OUT_POLICY, HF_OUT_RM };
/* Writes m as an HF directory: config.json (the original one, updated, when m
 * came from HF), model.safetensors in dtype (ST_*), and the side files m
 * carries. HF_OUT_RM writes *ForSequenceClassification with score.weight
 * and the reward head's bias as config.json's rlhf_reward_bias. */
int hf_save(const char *dir, const Model *m, int kind, int dtype, Err *err);

/* The tensors of base (m->params, or an array laid out like it such as
 * m->grads) under their HF names and layout as a safetensors file, then the
 * extra items. */
int hf_save_tensors(const char *path, const Model *m, const float *base, int kind, int dtype,
                    const StItem *extra, int n_extra, Err *err);

/* A LoRA adapter (m->lora) as PEFT's save_pretrained writes it: DIR/
 * adapter_config.json (peft_type LORA, r, lora_alpha, lora_dropout,
 * target_modules, task_type CAUSAL_LM, or SEQ_CLS with the reward head as
 * modules_to_save "score") and adapter_model.safetensors with
 * base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight (R, in) and
 * .lora_B.weight (out, R), q/k's B rows in HF's rotate-half order, and
 * base_model.model.score.weight for a reward model. base_name goes to
 * base_model_name_or_path. A value head (PPO's) has no PEFT counterpart: left out. */
int hf_save_peft(const char *dir, const Model *m, const char *base_name, int dtype, Err *err);

/* For hf_peft.c: q/k rows between HF's and our order; a file in dir, atomically. */
void hf_permute_heads(float *dst, const float *src, int n_heads, int hs, size_t w, int to_hf);
int hf_write_text(const char *dir, const char *name, const char *data, size_t n, Err *err);

/* A digest of the weights files and config.json (the registry's identity
 * of an HF directory). */
int hf_dir_sha256(const char *dir, char out[65], Err *err);

/* The side-file archive: whether blob is one, and file name's bytes in it
 * (*data points into blob; NULL when absent). */
int hf_files_is(const void *blob, size_t len);
/* An archive of n named texts (NULL texts left out); *out is the caller's. */
int hf_files_pack(const char *const *names, const char *const *texts, const size_t *lens, int n,
                  unsigned char **out, size_t *out_len, Err *err);
const char *hf_files_get(const void *blob, size_t len, const char *name, size_t *n);

#endif
