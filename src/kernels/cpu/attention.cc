// CPU reference kernel for scaled_dot_product_attention, kept whole by kiln's lowering: PyTorch's
// math path, softmax(scale * Q K^T + mask) V, computed a block of query rows at a time so that the
// scores never take more than a block's [rows, S] per thread.
//
// Numerics: float16 and bfloat16 are computed in float32 and rounded once at the end (PyTorch's
// math path upcasts them too); float32 uses kiln's SGEMM; float64 is computed in double. A row
// whose scores are all -inf (fully masked, or S = 0) gives zeros, as PyTorch 2.11's math and CPU
// flash paths do (its _safe_softmax), not NaN; a NaN score makes its row NaN. With both attn_mask
// and is_causal, the mask is added and the causal mask applied on top, as PyTorch's CPU flash path
// does (its math path rejects that combination).
//
// The causal mask follows the path eager would take (see eager_takes_flash_path): the flash path
// overwrites masked scores with -inf, the math path adds a -inf mask, so there a masked score of
// +inf or NaN (from an inf or NaN in the query or key) becomes NaN and the row's output NaN.
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "base/element_cast.h"
#include "ir/infer/attention.h"
#include "ir/op_function_table.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/indexing_util.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu {
namespace {

using ir::AttentionArgs;

// Query rows per work item: enough for SGEMM to run well, few enough to spread one long sequence
// over the threads.
constexpr int64_t kRowBlock = 64;

// c [m, n] = alpha * a [m, k] @ b, with b stored as [n, k] (trans_b) or [k, n]; all row-major and
// contiguous. With k = 0, c is zero whatever alpha is (an infinite default scale when E = 0).
template <typename C>
void gemm(bool trans_b, int64_t m, int64_t n, int64_t k, C alpha, const C* a, const C* b, C* c) {
  if constexpr (std::is_same_v<C, float>) {
    sgemm(false, trans_b, m, n, k, alpha, a, k, b, trans_b ? k : n, 0.0f, c, n);
  } else {
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        C sum = 0;
        for (int64_t p = 0; p < k; ++p) {
          sum += a[i * k + p] * (trans_b ? b[j * k + p] : b[p * n + j]);
        }
        c[i * n + j] = k == 0 ? C(0) : alpha * sum;
      }
    }
  }
}

// The offset of each output batch's matrix in a contiguous operand [dims..., rows, cols]: its
// leading dims broadcast against `batch` (right-aligned, size-1 dims repeating), and under GQA its
// heads (the last leading dim) each serving `repeat` consecutive output heads.
std::vector<int64_t> matrix_offsets(const Shape& batch, const Tensor& t, int64_t repeat) {
  const int64_t rank = t.dim() - 2;
  const int64_t matrix = t.size(rank) * t.size(rank + 1);
  const int64_t count = shape_numel(batch);
  std::vector<int64_t> offsets(static_cast<size_t>(count));
  for (int64_t b = 0; b < count; ++b) {
    int64_t flat = b, offset = 0, stride = matrix;
    for (int64_t d = rank - 1, bd = static_cast<int64_t>(batch.size()) - 1; d >= 0; --d, --bd) {
      int64_t index = flat % batch[bd];
      if (d == rank - 1) index /= repeat;
      if (t.size(d) == 1) index = 0;
      offset += index * stride;
      stride *= t.size(d);
      flat /= batch[bd];
    }
    offsets[b] = offset;
  }
  return offsets;
}

// The mask as additive scores in C (bool: 0 where attending, -inf elsewhere), broadcast to
// [batch..., L, S] as a view (stride 0 on broadcast dims). Converted at the mask's own size.
template <typename C>
Result<Tensor> additive_mask(const AttentionArgs& a) {
  constexpr DType kC = DTypeOf<C>::value;
  Shape scores = a.batch;
  scores.insert(scores.end(), {a.l, a.s});
  if (a.mask->dtype() != DType::kBool) {
    KILN_ASSIGN_OR_RETURN(Tensor converted, a.mask->to(kC));
    return expand_view(converted, scores);
  }
  KILN_ASSIGN_OR_RETURN(Tensor keep, a.mask->contiguous());
  KILN_ASSIGN_OR_RETURN(Tensor additive, Tensor::empty(kC, keep.sizes()));
  const bool* src = keep.data<bool>();
  C* dst = additive.data<C>();
  for (int64_t i = 0; i < keep.numel(); ++i) {
    dst[i] = src[i] ? C(0) : -std::numeric_limits<C>::infinity();
  }
  return expand_view(additive, scores);
}

// Softmax of one row in place. A row of only -inf (or an empty one) becomes zeros; a NaN makes the
// whole row NaN (the max becomes NaN and every exp with it).
template <typename C>
void safe_softmax_row(C* x, int64_t n) {
  C max = -std::numeric_limits<C>::infinity();
  for (int64_t j = 0; j < n; ++j) max = (x[j] > max || std::isnan(x[j])) ? x[j] : max;
  if (max == -std::numeric_limits<C>::infinity()) {
    std::fill(x, x + n, C(0));
    return;
  }
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    x[j] = std::exp(x[j] - max);
    sum += x[j];
  }
  const C inv = static_cast<C>(1.0 / sum);
  for (int64_t j = 0; j < n; ++j) x[j] *= inv;
}

// The operands in C, contiguous, and where each output batch finds its matrices.
struct Operands {
  Tensor q, k, v, mask;  // mask: empty when absent
  std::vector<int64_t> q_offsets, k_offsets, v_offsets, mask_offsets;
};

Result<Tensor> in_compute_type(const Tensor& t, DType compute) {
  if (t.dtype() == compute) return t.contiguous();
  return t.to(compute);
}

template <typename C>
Result<Operands> prepare(const AttentionArgs& a) {
  constexpr DType kC = DTypeOf<C>::value;
  Operands o;
  KILN_ASSIGN_OR_RETURN(o.q, in_compute_type(*a.query, kC));
  KILN_ASSIGN_OR_RETURN(o.k, in_compute_type(*a.key, kC));
  KILN_ASSIGN_OR_RETURN(o.v, in_compute_type(*a.value, kC));
  o.q_offsets = matrix_offsets(a.batch, o.q, 1);
  o.k_offsets = matrix_offsets(a.batch, o.k, a.key_repeat);
  o.v_offsets = matrix_offsets(a.batch, o.v, a.value_repeat);
  if (a.mask) {
    KILN_ASSIGN_OR_RETURN(o.mask, additive_mask<C>(a));
    const int64_t nb = static_cast<int64_t>(a.batch.size());
    const std::span<const int64_t> strides(o.mask.strides().data(), a.batch.size());
    const int64_t count = shape_numel(a.batch);
    o.mask_offsets.resize(static_cast<size_t>(count));
    for (int64_t b = 0; b < count; ++b) {
      int64_t flat = b, offset = 0;
      for (int64_t d = nb - 1; d >= 0; --d) {
        offset += (flat % a.batch[d]) * strides[d];
        flat /= a.batch[d];
      }
      o.mask_offsets[b] = offset;
    }
  }
  return o;
}

// Whether PyTorch 2.11's CPU dispatch (at::_fused_sdp_choice) picks its flash kernel over the math
// path: q, k and v 4-D with one batch size, the same number of heads (or query heads a multiple of
// a shared key / value head count under GQA), E == Ev, nonempty sequences, a mask (if any) of
// rank 2 or 4, and unit last-dim strides. Checked against _fused_sdp_choice on each condition.
bool eager_takes_flash_path(const AttentionArgs& a) {
  const Tensor* qkv[] = {a.query, a.key, a.value};
  for (const Tensor* t : qkv) {
    if (t->dim() != 4 || t->size(0) != a.query->size(0) || t->strides().back() != 1) return false;
  }
  const int64_t hq = a.query->size(1), hk = a.key->size(1), hv = a.value->size(1);
  if (hk != hv || (hq != hk && a.key_repeat == 1)) return false;
  if (a.mask && a.mask->dim() != 2 && a.mask->dim() != 4) return false;
  return a.e == a.ev && a.l > 0 && a.s > 0;
}

// Rows [r0, r1) of output batch `b`: scores, mask, causal mask, softmax, then the product with V
// into `dst` ([r1 - r0, Ev], contiguous).
template <typename C>
void attend_rows(const AttentionArgs& a, const Operands& o, int64_t b, int64_t r0, int64_t r1,
                 bool flash, std::vector<C>& scores, C* dst) {
  const int64_t rows = r1 - r0, s = a.s;
  scores.resize(static_cast<size_t>(rows * s));
  const C* q = o.q.data<C>() + o.q_offsets[b] + r0 * a.e;
  gemm<C>(true, rows, s, a.e, static_cast<C>(a.scale), q, o.k.data<C>() + o.k_offsets[b],
          scores.data());
  for (int64_t i = 0; i < rows; ++i) {
    C* row = scores.data() + i * s;
    if (o.mask.has_data()) {
      const int64_t rs = o.mask.strides()[o.mask.dim() - 2], cs = o.mask.strides().back();
      const C* m = o.mask.data<C>() + o.mask_offsets[b] + (r0 + i) * rs;
      for (int64_t j = 0; j < s; ++j) row[j] += m[j * cs];
    }
    if (a.is_causal) {  // top-left aligned: query row i attends to keys 0..i
      constexpr C kMasked = -std::numeric_limits<C>::infinity();
      for (int64_t j = r0 + i + 1; j < s; ++j) row[j] = flash ? kMasked : row[j] + kMasked;
    }
    safe_softmax_row(row, s);
  }
  gemm<C>(false, rows, a.ev, s, C(1), scores.data(), o.v.data<C>() + o.v_offsets[b], dst);
}

template <typename T>
Status attention(const AttentionArgs& a, Tensor& out) {
  using C = ComputeType<T>;
  KILN_ASSIGN_OR_RETURN(Operands o, prepare<C>(a));
  const int64_t batches = shape_numel(a.batch);
  const int64_t blocks = (a.l + kRowBlock - 1) / kRowBlock;
  T* result = out.data<T>();
  const bool flash = eager_takes_flash_path(a);
  parallel_for(0, batches * blocks, 1, [&](int64_t lo, int64_t hi) {
    std::vector<C> scores, staging;
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t b = item / blocks, r0 = (item % blocks) * kRowBlock;
      const int64_t r1 = std::min(a.l, r0 + kRowBlock);
      T* dst = result + (b * a.l + r0) * a.ev;
      if constexpr (std::is_same_v<T, C>) {
        attend_rows<C>(a, o, b, r0, r1, flash, scores, dst);
      } else {
        staging.resize(static_cast<size_t>((r1 - r0) * a.ev));
        attend_rows<C>(a, o, b, r0, r1, flash, scores, staging.data());
        for (size_t i = 0; i < staging.size(); ++i) dst[i] = element_cast<T>(staging[i]);
      }
    }
  });
  return ok_status();
}

// scaled_dot_product_attention(query, key, value, attn_mask?, dropout_p, is_causal, *, scale?,
// enable_gqa); inference has checked every argument.
Status scaled_dot_product_attention_kernel(ir::OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(AttentionArgs a, ir::attention_args(ctx));
  Tensor& out = ctx.output_tensor(0);
  if (out.numel() == 0) return ok_status();
  return dispatch_dtype(out.dtype(), [&]<typename T>() -> Status {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) {
      return attention<T>(a, out);
    }
    return internal_error("scaled_dot_product_attention kernel: unexpected dtype ",
                          dtype_name(out.dtype()));
  });
}

}  // namespace

Status register_attention_kernels(ir::OpFunctionTable& table) {
  return ir::add_all(table, {
                                {ir::OpKey::aten_scaled_dot_product_attention_default,
                                 scaled_dot_product_attention_kernel},
                            });
}

}  // namespace kiln::cpu
