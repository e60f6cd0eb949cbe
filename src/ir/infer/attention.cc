// Shape inference for scaled_dot_product_attention, kept whole by kiln's lowering.
#include "ir/infer/attention.h"

#include <cmath>

#include "ir/infer/infer_util.h"
#include "ir/shape_inference.h"

namespace kiln::ir {
namespace {

Shape leading_dims(const Tensor& t, int64_t drop) {
  return Shape(t.sizes().begin(), t.sizes().end() - drop);
}

// With enable_gqa, the number of query heads each head of `t` serves; the heads are dim -3.
Result<int64_t> gqa_repeat(OpContext& ctx, const Tensor& query, const Tensor& t, const char* name) {
  const int64_t hq = query.size(query.dim() - 3), h = t.size(t.dim() - 3);
  if (h <= 0 || hq % h != 0) {
    return op_error(ctx, "enable_gqa expects the number of ", name,
                    " heads to divide the number of query heads, found ", h, " ", name,
                    " heads for ", hq, " query heads");
  }
  return hq / h;
}

// The leading dims of key or value once their heads are repeated to the query's (GQA).
Shape repeated_batch(const Tensor& t, int64_t repeat) {
  Shape batch = leading_dims(t, 2);
  if (!batch.empty()) batch.back() *= repeat;
  return batch;
}

Status check_mask(OpContext& ctx, const AttentionArgs& a) {
  const Tensor& mask = *a.mask;
  const DType dtype = mask.dtype();
  if (dtype != DType::kBool && dtype != DType::kFloat32 && dtype != a.query->dtype()) {
    return op_error(ctx, "expected attn_mask of dtype bool, float32 or the query's dtype ",
                    dtype_name(a.query->dtype()), ", found ", dtype_name(dtype));
  }
  Shape scores = a.batch;
  scores.insert(scores.end(), {a.l, a.s});
  // The mask is added to the scores in place: it broadcasts to their shape, never beyond.
  bool fits = mask.dim() >= 2 && mask.dim() <= static_cast<int64_t>(scores.size());
  for (int64_t i = 1; fits && i <= mask.dim(); ++i) {
    const int64_t m = mask.size(mask.dim() - i), want = scores[scores.size() - i];
    fits = m == want || m == 1;
  }
  if (!fits) {
    return op_error(ctx, "expected attn_mask of rank >= 2 broadcastable to the scores' shape ",
                    shape_to_string(scores), " ([*, L, S]), found ", shape_to_string(mask.sizes()));
  }
  return ok_status();
}

Status check_operands(OpContext& ctx, const Tensor& q, const Tensor& k, const Tensor& v) {
  if (q.dim() < 2 || k.dim() < 2 || v.dim() < 2) {
    return op_error(ctx,
                    "expected query [*, L, E], key [*, S, E] and value [*, S, Ev] of rank >= 2, ",
                    "found ", shape_to_string(q.sizes()), ", ", shape_to_string(k.sizes()), " and ",
                    shape_to_string(v.sizes()));
  }
  if (!is_floating(q.dtype()) || k.dtype() != q.dtype() || v.dtype() != q.dtype()) {
    return op_error(ctx, "expected query, key and value of one floating point dtype, found ",
                    dtype_name(q.dtype()), ", ", dtype_name(k.dtype()), " and ",
                    dtype_name(v.dtype()));
  }
  const int64_t e = q.size(q.dim() - 1), s = k.size(k.dim() - 2);
  if (k.size(k.dim() - 1) != e || v.size(v.dim() - 2) != s) {
    return op_error(ctx, "expected key [*, S, E=", e, "] (E of the query) and value [*, S=", s,
                    ", Ev] (S of the key), found key ", shape_to_string(k.sizes()), " and value ",
                    shape_to_string(v.sizes()));
  }
  return ok_status();
}

}  // namespace

Result<AttentionArgs> attention_args(OpContext& ctx) {
  AttentionArgs a;
  a.query = &ctx.tensor(0);
  a.key = &ctx.tensor(1);
  a.value = &ctx.tensor(2);
  a.mask = ctx.optional_tensor(3);
  const double dropout_p = ctx.float_arg(4);
  a.is_causal = ctx.bool_arg(5);
  const std::optional<double> scale = ctx.optional_float(6);
  const bool enable_gqa = ctx.bool_arg(7);
  KILN_RETURN_IF_ERROR(ctx.error());
  const Tensor &q = *a.query, &k = *a.key, &v = *a.value;
  KILN_RETURN_IF_ERROR(check_operands(ctx, q, k, v));
  if (dropout_p != 0.0) {
    return unsupported(op_name(ctx.node().op), " (node '", ctx.node().name,
                       "'): dropout_p=", dropout_p,
                       " is not supported: kiln runs inference only; export the model in eval "
                       "mode (dropout_p=0)");
  }
  if (enable_gqa) {
    if (q.dim() < 3 || k.dim() < 3 || v.dim() < 3) {
      return op_error(ctx, "enable_gqa expects query, key and value of shape [*, H, L or S, E] ",
                      "(rank >= 3), found ", shape_to_string(q.sizes()), ", ",
                      shape_to_string(k.sizes()), " and ", shape_to_string(v.sizes()));
    }
    KILN_ASSIGN_OR_RETURN(a.key_repeat, gqa_repeat(ctx, q, k, "key"));
    KILN_ASSIGN_OR_RETURN(a.value_repeat, gqa_repeat(ctx, q, v, "value"));
  }
  const Shape qb = leading_dims(q, 2);
  const Shape kb = repeated_batch(k, a.key_repeat), vb = repeated_batch(v, a.value_repeat);
  KILN_ASSIGN_OR_RETURN(Shape qk, broadcast_shapes(qb, kb), op_name(ctx.node().op), " (node '",
                        ctx.node().name, "'): query and key batch dims: ");
  KILN_ASSIGN_OR_RETURN(a.batch, broadcast_shapes(qk, vb), op_name(ctx.node().op), " (node '",
                        ctx.node().name, "'): query/key and value batch dims: ");
  a.l = q.size(q.dim() - 2);
  a.e = q.size(q.dim() - 1);
  a.s = k.size(k.dim() - 2);
  a.ev = v.size(v.dim() - 1);
  a.scale = scale.value_or(1.0 / std::sqrt(static_cast<double>(a.e)));
  if (a.mask) KILN_RETURN_IF_ERROR(check_mask(ctx, a));
  return a;
}

namespace {

// scaled_dot_product_attention -> [batch..., L, Ev] in the query's dtype.
Status scaled_dot_product_attention(OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(AttentionArgs a, attention_args(ctx));
  Shape out = a.batch;
  out.insert(out.end(), {a.l, a.ev});
  ctx.set_output(0, Tensor::meta(a.query->dtype(), std::move(out)));
  return ctx.error();
}

}  // namespace

Status register_attention_inference(OpFunctionTable& table) {
  return add_all(
      table, {
                 {OpKey::aten_scaled_dot_product_attention_default, scaled_dot_product_attention},
             });
}

}  // namespace kiln::ir
