// CPU kernels for the selecting reductions: amax/amin, max/min (with and without indices),
// argmax/argmin, any/all.
#include "kernels/cpu/reduction_util.h"

namespace kiln::cpu {
namespace {

using ir::OpContext;

// The extreme of one output's block and the row-major index (within the block) of its first
// occurrence. NaN wins and sticks at its first occurrence, as PyTorch's max/argmax do.
template <typename T>
struct Extreme {
  ComputeType<T> value;
  int64_t index;
};

template <typename T, bool kMax>
Extreme<T> find_extreme(const T* src, const ReduceGeometry& g, int64_t base) {
  using C = ComputeType<T>;
  Extreme<T> best{C{}, -1};
  int64_t k = 0;
  for_each_offset(g.inner_sizes, g.inner_strides, base, [&](int64_t off) {
    const C v = static_cast<C>(src[off]);
    if (best.index < 0) {
      best = {v, k};
    } else if (!is_nan_value(best.value)) {
      const bool better = kMax ? v > best.value : v < best.value;
      if (better || is_nan_value(v)) best = {v, k};
    }
    ++k;
  });
  return best;
}

// Writes values (when `values` is non-null) and/or indices (when `indices` is non-null).
template <bool kMax>
Status extreme_kernel(OpContext& ctx, DimsArg kind, Tensor* values, Tensor* indices) {
  const Tensor& self = ctx.tensor(0);
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask, reduce_mask(ctx, kind, 1, self.dim()));
  const ReduceGeometry g = reduce_geometry(self, mask);
  if (g.outer_numel > 0 && g.inner_numel == 0) {
    return invalid_argument("cannot take the ", kMax ? "max" : "min", " of an empty block of ",
                            self.description(), ": the operation has no identity");
  }
  dispatch_dtype(self.dtype(), [&]<typename T>() {
    const T* src = self.data<T>();
    T* value_dst = values ? values->data<T>() : nullptr;
    int64_t* index_dst = indices ? indices->data<int64_t>() : nullptr;
    for_each_output(g, [&](int64_t o, int64_t base) {
      const Extreme<T> e = find_extreme<T, kMax>(src, g, base);
      if (value_dst) value_dst[o] = element_cast<T>(e.value);
      if (index_dst) index_dst[o] = e.index;
    });
  });
  return ok_status();
}

}  // namespace

Status amax_kernel(OpContext& ctx) {
  return extreme_kernel<true>(ctx, DimsArg::kList, &ctx.output_tensor(0), nullptr);
}
Status amin_kernel(OpContext& ctx) {
  return extreme_kernel<false>(ctx, DimsArg::kList, &ctx.output_tensor(0), nullptr);
}
Status max_all_kernel(OpContext& ctx) {
  return extreme_kernel<true>(ctx, DimsArg::kAll, &ctx.output_tensor(0), nullptr);
}
Status min_all_kernel(OpContext& ctx) {
  return extreme_kernel<false>(ctx, DimsArg::kAll, &ctx.output_tensor(0), nullptr);
}
Status max_dim_kernel(OpContext& ctx) {
  return extreme_kernel<true>(ctx, DimsArg::kInt, &ctx.output_tensor(0), &ctx.output_tensor(1));
}
Status min_dim_kernel(OpContext& ctx) {
  return extreme_kernel<false>(ctx, DimsArg::kInt, &ctx.output_tensor(0), &ctx.output_tensor(1));
}
Status argmax_kernel(OpContext& ctx) {
  return extreme_kernel<true>(ctx, DimsArg::kOptionalInt, nullptr, &ctx.output_tensor(0));
}
Status argmin_kernel(OpContext& ctx) {
  return extreme_kernel<false>(ctx, DimsArg::kOptionalInt, nullptr, &ctx.output_tensor(0));
}

namespace {

// any (kAny) or all: the output is bool, or uint8 for a uint8 input.
template <bool kAny>
Status logical_kernel(OpContext& ctx, DimsArg kind) {
  const Tensor& self = ctx.tensor(0);
  Tensor& out = ctx.output_tensor(0);
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask, reduce_mask(ctx, kind, 1, self.dim()));
  const ReduceGeometry g = reduce_geometry(self, mask);
  dispatch_dtype(self.dtype(), [&]<typename T>() {
    const T* src = self.data<T>();
    for_each_output(g, [&](int64_t o, int64_t base) {
      bool acc = !kAny;
      for_each_offset(g.inner_sizes, g.inner_strides, base, [&](int64_t off) {
        const bool v = element_cast<bool>(src[off]);
        acc = kAny ? (acc || v) : (acc && v);
      });
      if (out.dtype() == DType::kUInt8) {
        out.data<uint8_t>()[o] = acc ? 1 : 0;
      } else {
        out.data<bool>()[o] = acc;
      }
    });
  });
  return ok_status();
}

// count_nonzero: int64 counts of the elements that are not zero (nan counts).
Status count_nonzero_kernel(OpContext& ctx, DimsArg kind) {
  const Tensor& self = ctx.tensor(0);
  int64_t* dst = ctx.output_tensor(0).data<int64_t>();
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask, reduce_mask(ctx, kind, 1, self.dim()));
  const ReduceGeometry g = reduce_geometry(self, mask);
  dispatch_dtype(self.dtype(), [&]<typename T>() {
    const T* src = self.data<T>();
    for_each_output(g, [&](int64_t o, int64_t base) {
      int64_t count = 0;
      for_each_offset(g.inner_sizes, g.inner_strides, base,
                      [&](int64_t off) { count += element_cast<bool>(src[off]) ? 1 : 0; });
      dst[o] = count;
    });
  });
  return ok_status();
}

}  // namespace

Status count_nonzero_dims_kernel(OpContext& ctx) {
  return count_nonzero_kernel(ctx, DimsArg::kList);
}
Status count_nonzero_default_kernel(OpContext& ctx) {
  return count_nonzero_kernel(ctx, DimsArg::kOptionalInt);
}

Status any_all_kernel(OpContext& ctx) {
  return logical_kernel<true>(ctx, DimsArg::kAll);
}
Status any_dim_kernel(OpContext& ctx) {
  return logical_kernel<true>(ctx, DimsArg::kInt);
}
Status any_dims_kernel(OpContext& ctx) {
  return logical_kernel<true>(ctx, DimsArg::kListEmptyIsNone);
}
Status all_all_kernel(OpContext& ctx) {
  return logical_kernel<false>(ctx, DimsArg::kAll);
}
Status all_dim_kernel(OpContext& ctx) {
  return logical_kernel<false>(ctx, DimsArg::kInt);
}
Status all_dims_kernel(OpContext& ctx) {
  return logical_kernel<false>(ctx, DimsArg::kListEmptyIsNone);
}

}  // namespace kiln::cpu
