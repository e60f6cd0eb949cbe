// Private to the CPU normalization kernels: helpers shared by softmax (normalization.cc) and the
// norms (normalization_norms.cc), and the kernels registered by register_normalization_kernels.
#pragma once

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

Status layer_norm_kernel(ir::OpContext& ctx);
Status rms_norm_kernel(ir::OpContext& ctx);
Status batch_norm_kernel(ir::OpContext& ctx);
Status group_norm_kernel(ir::OpContext& ctx);

}  // namespace kiln::cpu
