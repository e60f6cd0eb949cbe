// CPU reference kernels for the normalization ops. This file holds softmax/log_softmax and the
// family's registration; normalization_norms.cc holds layer, batch, group, instance and RMS norm.
#include <cmath>
#include <limits>

#include "ir/infer/infer_util.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/normalization_util.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu {

namespace {

using ir::OpContext;

// The input viewed as [outer, length, inner] around the softmax dim (contiguous).
struct SoftmaxShape {
  int64_t outer = 1, length = 1, inner = 1;
};

SoftmaxShape softmax_shape(const Shape& sizes, int64_t dim) {
  SoftmaxShape s;
  for (int64_t d = 0; d < static_cast<int64_t>(sizes.size()); ++d) {
    if (d < dim) s.outer *= sizes[d];
    if (d == dim) s.length = sizes[d];
    if (d > dim) s.inner *= sizes[d];
  }
  return s;
}

// Softmax over one contiguous row: max, then exp(x - max) (or x - max) kept in `buf`, then one
// output pass. A nan anywhere makes the row nan (through the sum), as in PyTorch.
// Everything is computed in C: float for 16- and 32-bit floats, double for float64.
template <typename T, typename O, bool kLog, typename C = ComputeType<T>>
void softmax_row(const T* x, O* y, int64_t n, std::vector<C>& buf) {
  const C max = lane_max<C>(x, n);
  buf.resize(static_cast<size_t>(n));
  C* b = buf.data();
  if constexpr (kLog) {
    for (int64_t i = 0; i < n; ++i) b[i] = static_cast<C>(x[i]) - max;
    const double sum = lane_sum(n, [&](int64_t i) { return static_cast<double>(std::exp(b[i])); });
    const C log_sum = static_cast<C>(std::log(sum));
    for (int64_t i = 0; i < n; ++i) y[i] = element_cast<O>(b[i] - log_sum);
  } else {
    for (int64_t i = 0; i < n; ++i) b[i] = std::exp(static_cast<C>(x[i]) - max);
    const double sum = lane_sum(n, [&](int64_t i) { return static_cast<double>(b[i]); });
    const C scale = static_cast<C>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) y[i] = element_cast<O>(b[i] * scale);
  }
}

// Softmax over the middle dim of one [length, inner] block, vectorized along `inner`.
template <typename T, typename O, bool kLog, typename C = ComputeType<T>>
void softmax_block(const T* x, O* y, int64_t length, int64_t inner, std::vector<C>& max,
                   std::vector<double>& sum) {
  max.assign(static_cast<size_t>(inner), -std::numeric_limits<C>::infinity());
  sum.assign(static_cast<size_t>(inner), 0.0);
  for (int64_t l = 0; l < length; ++l) {
    for (int64_t i = 0; i < inner; ++i) {
      const C v = static_cast<C>(x[l * inner + i]);
      max[i] = v > max[i] ? v : max[i];
    }
  }
  for (int64_t l = 0; l < length; ++l) {
    for (int64_t i = 0; i < inner; ++i) {
      sum[i] += std::exp(static_cast<C>(x[l * inner + i]) - max[i]);
    }
  }
  for (int64_t l = 0; l < length; ++l) {
    for (int64_t i = 0; i < inner; ++i) {
      const C shifted = static_cast<C>(x[l * inner + i]) - max[i];
      const C v = kLog ? shifted - static_cast<C>(std::log(sum[i]))
                       : static_cast<C>(std::exp(shifted) / sum[i]);
      y[l * inner + i] = element_cast<O>(v);
    }
  }
}

template <typename T, typename O, bool kLog>
void softmax(const Tensor& in, Tensor& out, int64_t dim) {
  const SoftmaxShape s = softmax_shape(in.sizes(), dim);
  const T* src = in.data<T>();
  O* dst = out.data<O>();
  const int64_t block = s.length * s.inner;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(block, 1));
  parallel_for(0, s.outer, grain, [&](int64_t lo, int64_t hi) {
    std::vector<ComputeType<T>> buf;
    std::vector<double> sum;
    for (int64_t o = lo; o < hi; ++o) {
      if (s.inner == 1) {
        softmax_row<T, O, kLog>(src + o * block, dst + o * block, s.length, buf);
      } else {
        softmax_block<T, O, kLog>(src + o * block, dst + o * block, s.length, s.inner, buf, sum);
      }
    }
  });
}

// Runs softmax of `self` (converted to `compute` first when they differ) into output 0.
template <bool kLog>
Status softmax_kernel(OpContext& ctx, DType compute) {
  const Tensor& self = ctx.tensor(0);
  Tensor& out = ctx.output_tensor(0);
  KILN_ASSIGN_OR_RETURN(int64_t dim, ir::wrap_dim(ctx.int_arg(1), self.dim()));
  if (self.dim() == 0) dim = 0;
  Tensor src = self;
  if (self.dtype() != compute) {
    KILN_ASSIGN_OR_RETURN(src, self.to(compute));
  } else {
    KILN_ASSIGN_OR_RETURN(src, self.contiguous());
  }
  dispatch_dtype(compute, [&]<typename T>() {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) {
      if (out.dtype() == compute) {
        softmax<T, T, kLog>(src, out, dim);
      } else if constexpr (kIsReducedFloat<T>) {
        softmax<T, float, kLog>(src, out, dim);  // half_to_float
      }
    }
  });
  return ok_status();
}

Status softmax_default(OpContext& ctx) {
  return softmax_kernel<false>(ctx, ctx.tensor(0).dtype());
}
Status log_softmax_default(OpContext& ctx) {
  return softmax_kernel<true>(ctx, ctx.tensor(0).dtype());
}
Status softmax_int(OpContext& ctx) {
  return softmax_kernel<false>(ctx, ctx.output_tensor(0).dtype());
}
Status log_softmax_int(OpContext& ctx) {
  return softmax_kernel<true>(ctx, ctx.output_tensor(0).dtype());
}

// instance_norm: with input statistics it is group norm with one group per channel; with running
// statistics, batch norm.
Status instance_norm_kernel(OpContext& ctx) {
  const bool use_input_stats = ctx.bool_arg(5);
  KILN_RETURN_IF_ERROR(ctx.error());
  return use_input_stats ? group_norm_kernel(ctx) : batch_norm_kernel(ctx);
}

}  // namespace

Status register_normalization_kernels(ir::OpFunctionTable& table) {
  using ir::OpKey;
  return ir::add_all(
      table, {
                 {OpKey::aten__softmax_default, softmax_default},
                 {OpKey::aten__log_softmax_default, log_softmax_default},
                 {OpKey::aten_softmax_int, softmax_int},
                 {OpKey::aten_log_softmax_int, log_softmax_int},
                 {OpKey::aten_native_layer_norm_default, layer_norm_kernel},
                 {OpKey::aten_layer_norm_default, layer_norm_kernel},
                 {OpKey::aten_rms_norm_default, rms_norm_kernel},
                 {OpKey::aten__fused_rms_norm_default, rms_norm_kernel},
                 {OpKey::aten__native_batch_norm_legit_no_training_default, batch_norm_kernel},
                 {OpKey::aten_native_batch_norm_default, batch_norm_kernel},
                 {OpKey::aten__native_batch_norm_legit_no_stats, batch_norm_training_kernel},
                 {OpKey::aten__native_batch_norm_legit_functional_default,
                  batch_norm_training_kernel},
                 {OpKey::aten_native_group_norm_default, group_norm_kernel},
                 {OpKey::aten_group_norm_default, group_norm_kernel},
                 {OpKey::aten_instance_norm_default, instance_norm_kernel},
             });
}

}  // namespace kiln::cpu
