// Private to the CPU reduction kernels: walking a strided input as (kept dims) x (reduced dims),
// and the kernels of the reduction family, registered by register_reduction_kernels (reduction.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/element_cast.h"
#include "base/tensor.h"
#include "ir/op_context.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu {

// An input split into the dims an op keeps (one output element per index, row-major) and the dims
// it reduces (walked row-major for each output). Adjacent dims that address memory as one dim are
// merged and size-1 dims dropped, so a reduction over contiguous trailing dims is one strided loop.
struct ReduceGeometry {
  Shape outer_sizes, outer_strides;  // kept dims
  Shape inner_sizes, inner_strides;  // reduced dims, in their original order
  int64_t outer_numel = 1;
  int64_t inner_numel = 1;
};

// `mask[d]` is true for the reduced dims of `in` (empty for a 0-d tensor).
ReduceGeometry reduce_geometry(const Tensor& in, const std::vector<bool>& mask);

// How an op names the dims it reduces (mirrors the reduction inference, which validated them).
enum class DimsArg {
  kAll,              // no dim argument: every dim
  kInt,              // `int dim`
  kOptionalInt,      // `int? dim`: None is every dim
  kList,             // `int[1]? dim` / `int[1] dim=[]`: None or [] is every dim
  kListEmptyIsNone,  // any.dims / all.dims: None is every dim, [] is no dim
};
Result<std::vector<bool>> reduce_mask(ir::OpContext& ctx, DimsArg kind, size_t arg, int64_t rank);

// The storage offset (in elements) of the element at row-major index `index` over (sizes, strides).
int64_t flat_offset(int64_t index, const Shape& sizes, const Shape& strides);

// Calls fn(offset) for every element of the (sizes, strides) block starting at `base`, in
// row-major order.
template <typename Fn>
void for_each_offset(const Shape& sizes, const Shape& strides, int64_t base, Fn&& fn) {
  const size_t nd = sizes.size();
  if (nd == 0) {
    fn(base);
    return;
  }
  for (int64_t s : sizes) {
    if (s == 0) return;
  }
  const int64_t last_size = sizes[nd - 1], last_stride = strides[nd - 1];
  if (nd == 1) {  // the common case after coalescing: no odometer needed
    for (int64_t k = 0; k < last_size; ++k) fn(base + k * last_stride);
    return;
  }
  std::vector<int64_t> index(nd, 0);
  int64_t offset = base;
  for (;;) {
    for (int64_t k = 0; k < last_size; ++k) fn(offset + k * last_stride);
    size_t d = nd - 1;
    for (; d > 0; --d) {
      offset += strides[d - 1];
      if (++index[d - 1] < sizes[d - 1]) break;
      offset -= strides[d - 1] * sizes[d - 1];
      index[d - 1] = 0;
    }
    if (d == 0) return;
  }
}

// Calls fn(output_index, input_base_offset) for every output element, spread over the thread pool.
template <typename Fn>
void for_each_output(const ReduceGeometry& g, Fn&& fn) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(g.inner_numel, 1));
  parallel_for(0, g.outer_numel, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) fn(o, flat_offset(o, g.outer_sizes, g.outer_strides));
  });
}

template <typename T>
bool is_nan_value(T v) {
  if constexpr (std::is_floating_point_v<ComputeType<T>>) {
    return static_cast<ComputeType<T>>(v) != static_cast<ComputeType<T>>(v);
  } else {
    return false;
  }
}

// Floating types accumulate in double; integers in uint64_t, which wraps like PyTorch's int64
// arithmetic without the undefined behaviour of signed overflow.
template <typename T>
using AccType = std::conditional_t<std::is_floating_point_v<ComputeType<T>>, double, uint64_t>;

template <typename T>
AccType<T> to_acc(T v) {
  if constexpr (std::is_floating_point_v<ComputeType<T>>) {
    return static_cast<double>(static_cast<ComputeType<T>>(v));
  } else {
    return static_cast<uint64_t>(static_cast<int64_t>(v));
  }
}

template <typename T>
T from_acc(AccType<T> acc) {
  if constexpr (std::is_floating_point_v<ComputeType<T>>) {
    return element_cast<T>(acc);
  } else if constexpr (std::is_same_v<T, bool>) {
    return acc != 0;
  } else {
    return static_cast<T>(static_cast<int64_t>(acc));
  }
}

// Kernels (reduction_*.cc), registered in reduction.cc.
Status amax_kernel(ir::OpContext& ctx);
Status amin_kernel(ir::OpContext& ctx);
Status max_all_kernel(ir::OpContext& ctx);
Status min_all_kernel(ir::OpContext& ctx);
Status max_dim_kernel(ir::OpContext& ctx);
Status min_dim_kernel(ir::OpContext& ctx);
Status argmax_kernel(ir::OpContext& ctx);
Status argmin_kernel(ir::OpContext& ctx);
Status any_all_kernel(ir::OpContext& ctx);
Status any_dim_kernel(ir::OpContext& ctx);
Status any_dims_kernel(ir::OpContext& ctx);
Status all_all_kernel(ir::OpContext& ctx);
Status all_dim_kernel(ir::OpContext& ctx);
Status all_dims_kernel(ir::OpContext& ctx);
Status count_nonzero_dims_kernel(ir::OpContext& ctx);
Status count_nonzero_default_kernel(ir::OpContext& ctx);
Status cumsum_kernel(ir::OpContext& ctx);
Status cumprod_kernel(ir::OpContext& ctx);
Status logsumexp_kernel(ir::OpContext& ctx);
Status linalg_vector_norm_kernel(ir::OpContext& ctx);
Status norm_scalar_kernel(ir::OpContext& ctx);
Status norm_dim_kernel(ir::OpContext& ctx);

}  // namespace kiln::cpu
