/* The layers of the Llama block, each a forward/backward pair in llm.c style.
 * Shapes: N = B*T rows, C channels, OC output channels. Backward functions
 * ACCUMULATE (+=) into parameter gradients and into input gradients named
 * "+=" below; the others overwrite. All matrix products go through sgemm. */
#ifndef RLHF_MODEL_LAYERS_H
#define RLHF_MODEL_LAYERS_H

#include "model/config.h"

/* out (N,C) = emb[tokens[n]] */
void embedding_forward(float *out, const int *tokens, const float *emb, int N, int C);
/* demb (V,C) += dout rows scattered to their tokens */
void embedding_backward(float *demb, const float *dout, const int *tokens, int N, int C);

/* out (N,C) = w ⊙ x / sqrt(mean(x²) + eps); rstd (N) kept for backward.
 * Per-head q/k norms are the same call over N·heads rows of hs. */
void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                     float eps);
/* dinp (N,C) +=, dw (C) += (eps is inside rstd; dw NULL: frozen) */
void rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp,
                      const float *w, const float *rstd, int N, int C);

/* out (N,OC) = inp (N,C) · W^T, W (OC,C) row-major (llama2.c's layout) */
void matmul_forward(float *out, const float *inp, const float *w, int N, int C, int OC);
/* dinp (N,C) = or += (accumulate_dinp) dout·W; dw (OC,C) += dout^T·inp.
 * dinp or dw may be NULL to skip. */
void matmul_backward(float *dinp, float *dw, const float *dout, const float *inp,
                     const float *w, int N, int C, int OC, int accumulate_dinp);

/* out (N,OC) += b (OC);  db (OC) += Σ_n dout (N,OC) */
void bias_forward(float *out, const float *b, int N, int OC);
void bias_backward(float *db, const float *dout, int N, int OC);

/* Tables for RoPE as llama2.c: pair (2i, 2i+1) of each head rotated by
 * pos·f_i, f_i = theta^(-2i/hs) (model_rope_theta) with llama3 scaling when
 * c->rope_factor > 0; computed in double. cos/sin (T, hs/2), hs = model_head_size(c). */
void rope_tables(float *cos_t, float *sin_t, int T, const Config *c);
/* x (B,T,nh,hs) rotated in place (forward) or by the inverse angle (backward,
 * applied to the gradient). */
void rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int nh, int hs);
void rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int nh,
                   int hs);

/* Causal attention with grouped KV heads.
 * q (B,T,NH,hs), k,v (B,T,NKV,hs) -> out (B,T,NH,hs); att (B,NH,T,T) softmax
 * probabilities (0 above the diagonal). */
void attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                       int B, int T, int NH, int NKV, int hs);
/* dq (B,T,NH,hs) =, dk/dv (B,T,NKV,hs) = ; scratch (PAR_MAX,T,T). Rows go in
 * causal blocks: only the products left of the diagonal block are computed.
 * Both run (batch, kv group) pairs on par_for's threads (model/parallel.h). */
void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                        const float *att, const float *q, const float *k, const float *v, int B,
                        int T, int NH, int NKV, int hs);

/* out (N,H) = silu(h1) ⊙ h3 */
void swiglu_forward(float *out, const float *h1, const float *h3, int n);
/* dh1, dh3 (N,H) = */
void swiglu_backward(float *dh1, float *dh3, const float *dout, const float *h1, const float *h3,
                     int n);

/* out (N,C) = a + b (residual) */
void residual_forward(float *out, const float *a, const float *b, int n);

#endif
