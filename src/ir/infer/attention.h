// The arguments of scaled_dot_product_attention, read and checked once for inference and kernels
// alike. kiln's lowering keeps the op whole (GPU backends run it as one fused attention).
#pragma once

#include "ir/op_context.h"

namespace kiln::ir {

// query [*, Hq, L, E], key [*, Hk, S, E] and value [*, Hv, S, Ev] give [*, Hq, L, Ev]; the leading
// dims of the three broadcast. Pointers refer to the context's tensors.
struct AttentionArgs {
  const Tensor* query = nullptr;
  const Tensor* key = nullptr;
  const Tensor* value = nullptr;
  // Null, or bool (true = attend) or floating (added to the scores), broadcastable to
  // [batch..., L, S].
  const Tensor* mask = nullptr;
  Shape batch;  // the output's leading dims
  int64_t l = 0, s = 0, e = 0, ev = 0;
  double scale = 1.0;  // as given, or 1/sqrt(E)
  bool is_causal = false;
  // Query heads per key / value head: with enable_gqa, key and value heads are repeated (each one
  // serving that many consecutive query heads) to match the query's. 1 without GQA.
  int64_t key_repeat = 1;
  int64_t value_repeat = 1;
};

// Reads and validates scaled_dot_product_attention(query, key, value, attn_mask?, dropout_p,
// is_causal, *, scale?, enable_gqa). dropout_p other than 0 is unsupported: kiln runs inference.
Result<AttentionArgs> attention_args(OpContext& ctx);

}  // namespace kiln::ir
