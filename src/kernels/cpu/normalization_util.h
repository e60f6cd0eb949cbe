// Private to the CPU normalization kernels: helpers shared by softmax (normalization.cc) and the
// norms (normalization_norms.cc), and the kernels registered by register_normalization_kernels.
#pragma once

#include <limits>
#include <vector>

#include "base/element_cast.h"
#include "base/tensor.h"
#include "ir/op_context.h"

namespace kiln::cpu {

// The elements of an optional per-channel or per-feature parameter as C (float or double), or
// `count` copies of `fill` when the parameter is absent.
template <typename C>
Result<std::vector<C>> param_values(const Tensor* t, int64_t count, C fill) {
  if (!t) return std::vector<C>(static_cast<size_t>(count), fill);
  KILN_ASSIGN_OR_RETURN(Tensor converted, t->to(DTypeOf<C>::value));
  const C* data = converted.data<C>();
  return std::vector<C>(data, data + converted.numel());
}

// Returns fn.template operator()<T, S>() (a Status) with T the input's element type and S the
// statistics' (T itself, or float for mixed precision). Inference admits nothing else.
template <typename Fn>
Status dispatch_floating_pair(DType input, DType stats, Fn&& fn) {
  return dispatch_dtype(input, [&]<typename T>() -> Status {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) {
      if (stats == input) return fn.template operator()<T, T>();
      if constexpr (!std::is_same_v<T, float>) {
        if (stats == DType::kFloat32) return fn.template operator()<T, float>();
      }
    }
    return internal_error("normalization kernel: unexpected dtypes ", dtype_name(input), " and ",
                          dtype_name(stats));
  });
}

// Sum over i in [0, n) of value(i) (a double), in independent partial sums so that the adds
// pipeline (and vectorize) instead of forming one long dependency chain.
template <typename Value>
double lane_sum(int64_t n, Value&& value) {
  constexpr int kLanes = 8;
  double partial[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) partial[j] += value(i + j);
  }
  double sum = 0.0;
  for (; i < n; ++i) sum += value(i);
  for (int j = 0; j < kLanes; ++j) sum += partial[j];
  return sum;
}

// The largest of n values in the compute type C, skipping nan (callers propagate nan another way).
template <typename C, typename T>
C lane_max(const T* x, int64_t n) {
  constexpr int kLanes = 8;
  constexpr C kLowest = -std::numeric_limits<C>::infinity();
  C partial[kLanes] = {kLowest, kLowest, kLowest, kLowest, kLowest, kLowest, kLowest, kLowest};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const C v = static_cast<C>(x[i + j]);
      partial[j] = v > partial[j] ? v : partial[j];
    }
  }
  C max = kLowest;
  for (; i < n; ++i) {
    const C v = static_cast<C>(x[i]);
    max = v > max ? v : max;
  }
  for (int j = 0; j < kLanes; ++j) max = partial[j] > max ? partial[j] : max;
  return max;
}

Status layer_norm_kernel(ir::OpContext& ctx);
Status rms_norm_kernel(ir::OpContext& ctx);
Status batch_norm_kernel(ir::OpContext& ctx);
Status batch_norm_training_kernel(ir::OpContext& ctx);
Status group_norm_kernel(ir::OpContext& ctx);

}  // namespace kiln::cpu
