// Private to the CPU normalization kernels: helpers shared by softmax (normalization.cc) and the
// norms (normalization_norms.cc), and the kernels registered by register_normalization_kernels.
#pragma once

#include <limits>
#include <vector>

#include "base/element_cast.h"
#include "base/tensor.h"
#include "ir/op_context.h"

namespace kiln::cpu {

// The elements of an optional per-channel or per-feature parameter as float, or `count` copies of
// `fill` when the parameter is absent.
Result<std::vector<float>> param_values(const Tensor* t, int64_t count, float fill);

// Calls fn.template operator()<T, S>() with T the input's element type and S the statistics'
// (T itself, or float for mixed precision). Only floating T reach `fn`.
template <typename Fn>
void dispatch_floating_pair(DType input, DType stats, Fn&& fn) {
  dispatch_dtype(input, [&]<typename T>() {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) {
      if (stats == input) {
        fn.template operator()<T, T>();
      } else if constexpr (!std::is_same_v<T, float>) {
        if (stats == DType::kFloat32) fn.template operator()<T, float>();
      }
    }
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

// The largest of n values as float, skipping nan (callers propagate nan another way).
template <typename T>
float lane_max(const T* x, int64_t n) {
  constexpr int kLanes = 8;
  constexpr float kLowest = -std::numeric_limits<float>::infinity();
  float partial[kLanes] = {kLowest, kLowest, kLowest, kLowest, kLowest, kLowest, kLowest, kLowest};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const float v = static_cast<float>(x[i + j]);
      partial[j] = v > partial[j] ? v : partial[j];
    }
  }
  float max = kLowest;
  for (; i < n; ++i) {
    const float v = static_cast<float>(x[i]);
    max = v > max ? v : max;
  }
  for (int j = 0; j < kLanes; ++j) max = partial[j] > max ? partial[j] : max;
  return max;
}

Status layer_norm_kernel(ir::OpContext& ctx);
Status rms_norm_kernel(ir::OpContext& ctx);
Status batch_norm_kernel(ir::OpContext& ctx);
Status group_norm_kernel(ir::OpContext& ctx);

}  // namespace kiln::cpu
