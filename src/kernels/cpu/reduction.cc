// CPU reference kernels for the reduction ops. This file holds the accumulating reductions (sum,
// prod, mean, var/std) and the family's registration; reduction_minmax.cc and reduction_misc.cc
// hold the rest.
//
// Inputs are converted to the output dtype first (what a `dtype=` argument means in PyTorch, and
// how bool/int sums become int64), then reduced in double (floating) or wrapping 64-bit integers.
#include <cmath>
#include <limits>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/reduction_util.h"

namespace kiln::cpu {
namespace {

using ir::OpContext;

enum class Accumulate { kSum, kProd, kMean };

// The mean of `count` values summing to `sum`; the mean of nothing is nan, as in PyTorch.
double mean_of(double sum, int64_t count) {
  return count == 0 ? std::numeric_limits<double>::quiet_NaN() : sum / static_cast<double>(count);
}

template <typename T, Accumulate kOp>
void accumulate(const Tensor& in, Tensor& out, const ReduceGeometry& g) {
  const T* src = in.data<T>();
  T* dst = out.data<T>();
  for_each_output(g, [&](int64_t o, int64_t base) {
    AccType<T> acc = kOp == Accumulate::kProd ? AccType<T>(1) : AccType<T>(0);
    for_each_offset(g.inner_sizes, g.inner_strides, base, [&](int64_t off) {
      if constexpr (kOp == Accumulate::kProd && std::is_floating_point_v<ComputeType<T>>) {
        // PyTorch multiplies in the element type itself, so a product whose partial results
        // overflow is inf (and inf * 0 nan) even when the full product would be in range.
        acc = to_acc(element_cast<T>(acc * to_acc(src[off])));
      } else if constexpr (kOp == Accumulate::kProd) {
        acc *= to_acc(src[off]);
      } else {
        acc += to_acc(src[off]);
      }
    });
    if constexpr (kOp == Accumulate::kMean) acc = mean_of(acc, g.inner_numel);
    dst[o] = from_acc<T>(acc);
  });
}

// Sum or mean when the innermost kept dim is contiguous and the reduced dims lie outside it
// (sum over dim 0 of [N, D], over dim 1 of [B, S, D]): whole rows are added into a tile of
// accumulators, so memory is read in order. Each output still sums its values in the same order.
template <typename T, Accumulate kOp>
void accumulate_columns(const T* src, T* dst, const ReduceGeometry& g) {
  constexpr int64_t kTile = 512;
  const int64_t width = g.outer_sizes.back();
  const Shape prefix_sizes(g.outer_sizes.begin(), g.outer_sizes.end() - 1);
  const Shape prefix_strides(g.outer_strides.begin(), g.outer_strides.end() - 1);
  const int64_t tiles = (width + kTile - 1) / kTile;
  const int64_t tasks = g.outer_numel / width * tiles;
  const int64_t grain = std::max<int64_t>(1, 16384 / (kTile * std::max<int64_t>(g.inner_numel, 1)));
  parallel_for(0, tasks, grain, [&](int64_t lo, int64_t hi) {
    std::vector<AccType<T>> acc(kTile);
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t prefix = t / tiles, begin = t % tiles * kTile;
      const int64_t count = std::min(kTile, width - begin);
      std::fill(acc.begin(), acc.end(), AccType<T>(0));
      const int64_t base = flat_offset(prefix, prefix_sizes, prefix_strides) + begin;
      for_each_offset(g.inner_sizes, g.inner_strides, base, [&](int64_t off) {
        for (int64_t j = 0; j < count; ++j) acc[j] += to_acc(src[off + j]);
      });
      T* out = dst + prefix * width + begin;
      for (int64_t j = 0; j < count; ++j) {
        if constexpr (kOp == Accumulate::kMean) {
          out[j] = element_cast<T>(mean_of(acc[j], g.inner_numel));
        } else {
          out[j] = from_acc<T>(acc[j]);
        }
      }
    }
  });
}

template <Accumulate kOp>
Status accumulate_kernel(OpContext& ctx, DimsArg kind) {
  const Tensor& self = ctx.tensor(0);
  Tensor& out = ctx.output_tensor(0);
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask, reduce_mask(ctx, kind, 1, self.dim()));
  Tensor src = self;
  if (self.dtype() != out.dtype()) {
    KILN_ASSIGN_OR_RETURN(src, self.to(out.dtype()));
  }
  const ReduceGeometry g = reduce_geometry(src, mask);
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    if constexpr (kOp == Accumulate::kMean && !std::is_floating_point_v<ComputeType<T>>) {
      return;  // inference allows floating outputs only
    } else if (kOp != Accumulate::kProd && g.outer_numel > 0 && !g.outer_sizes.empty() &&
               g.outer_strides.back() == 1 && !g.inner_sizes.empty()) {
      accumulate_columns<T, kOp>(src.data<T>(), out.data<T>(), g);
    } else {
      accumulate<T, kOp>(src, out, g);
    }
  });
  return ok_status();
}

Status sum_all(OpContext& ctx) {
  return accumulate_kernel<Accumulate::kSum>(ctx, DimsArg::kAll);
}
Status sum_dims(OpContext& ctx) {
  return accumulate_kernel<Accumulate::kSum>(ctx, DimsArg::kList);
}
Status prod_all(OpContext& ctx) {
  return accumulate_kernel<Accumulate::kProd>(ctx, DimsArg::kAll);
}
Status prod_dim(OpContext& ctx) {
  return accumulate_kernel<Accumulate::kProd>(ctx, DimsArg::kInt);
}
Status mean_all(OpContext& ctx) {
  return accumulate_kernel<Accumulate::kMean>(ctx, DimsArg::kAll);
}
Status mean_dims(OpContext& ctx) {
  return accumulate_kernel<Accumulate::kMean>(ctx, DimsArg::kList);
}

// var/std by two passes in double (mean, then squared deviations): exact enough and simple.
// Divides by max(0, n - correction), so n <= correction gives inf or nan as in PyTorch.
template <typename T>
void moments(const Tensor& in, const ReduceGeometry& g, double correction, bool take_sqrt,
             Tensor& out, Tensor* mean_out) {
  const T* src = in.data<T>();
  T* dst = out.data<T>();
  T* mean_dst = mean_out ? mean_out->data<T>() : nullptr;
  const double n = static_cast<double>(g.inner_numel);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for_each_output(g, [&](int64_t o, int64_t base) {
    // The mean by Welford's update, as PyTorch computes it: with infs it gives their nan/inf.
    double mean = n == 0 ? nan : 0.0;
    int64_t count = 0;
    for_each_offset(g.inner_sizes, g.inner_strides, base, [&](int64_t off) {
      mean += (static_cast<double>(src[off]) - mean) / static_cast<double>(++count);
    });
    double squares = 0.0;
    for_each_offset(g.inner_sizes, g.inner_strides, base, [&](int64_t off) {
      const double d = static_cast<double>(src[off]) - mean;
      squares += d * d;
    });
    const double divisor = std::max(0.0, n - correction);
    double var = divisor > 0                             ? squares / divisor
                 : (squares == 0 || std::isnan(squares)) ? nan
                                                         : std::numeric_limits<double>::infinity();
    dst[o] = element_cast<T>(take_sqrt ? std::sqrt(var) : var);
    if (mean_dst) mean_dst[o] = element_cast<T>(mean);
  });
}

// `correction_arg` < 0: the `unbiased` bool at -correction_arg; else a `Scalar? correction`.
Status moments_kernel(OpContext& ctx, DimsArg kind, int correction_arg, bool take_sqrt,
                      bool with_mean) {
  const Tensor& self = ctx.tensor(0);
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask, reduce_mask(ctx, kind, 1, self.dim()));
  double correction = 1.0;
  if (correction_arg < 0) {
    correction = ctx.bool_arg(static_cast<size_t>(-correction_arg)) ? 1.0 : 0.0;
  } else if (auto c = ctx.optional_scalar(static_cast<size_t>(correction_arg))) {
    correction = c->to_double();
  }
  const ReduceGeometry g = reduce_geometry(self, mask);
  Tensor* mean_out = with_mean ? &ctx.output_tensor(1) : nullptr;
  dispatch_dtype(self.dtype(), [&]<typename T>() {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) {
      moments<T>(self, g, correction, take_sqrt, ctx.output_tensor(0), mean_out);
    }
  });
  return ok_status();
}

Status var_default(OpContext& ctx) {
  return moments_kernel(ctx, DimsArg::kAll, -1, false, false);
}
Status var_dim(OpContext& ctx) {
  return moments_kernel(ctx, DimsArg::kList, -2, false, false);
}
Status var_correction(OpContext& ctx) {
  return moments_kernel(ctx, DimsArg::kList, 2, false, false);
}
Status std_default(OpContext& ctx) {
  return moments_kernel(ctx, DimsArg::kAll, -1, true, false);
}
Status std_dim(OpContext& ctx) {
  return moments_kernel(ctx, DimsArg::kList, -2, true, false);
}
Status std_correction(OpContext& ctx) {
  return moments_kernel(ctx, DimsArg::kList, 2, true, false);
}
Status var_mean_default(OpContext& ctx) {
  return moments_kernel(ctx, DimsArg::kAll, -1, false, true);
}
Status var_mean_dim(OpContext& ctx) {
  return moments_kernel(ctx, DimsArg::kList, -2, false, true);
}
Status var_mean_correction(OpContext& ctx) {
  return moments_kernel(ctx, DimsArg::kList, 2, false, true);
}
Status std_mean_default(OpContext& ctx) {
  return moments_kernel(ctx, DimsArg::kAll, -1, true, true);
}
Status std_mean_dim(OpContext& ctx) {
  return moments_kernel(ctx, DimsArg::kList, -2, true, true);
}
Status std_mean_correction(OpContext& ctx) {
  return moments_kernel(ctx, DimsArg::kList, 2, true, true);
}

}  // namespace

Status register_reduction_kernels(ir::OpFunctionTable& table) {
  using ir::OpKey;
  return ir::add_all(table, {
                                {OpKey::aten_sum_default, sum_all},
                                {OpKey::aten_sum_dim_IntList, sum_dims},
                                {OpKey::aten_mean_default, mean_all},
                                {OpKey::aten_mean_dim, mean_dims},
                                {OpKey::aten_prod_default, prod_all},
                                {OpKey::aten_prod_dim_int, prod_dim},
                                {OpKey::aten_amax_default, amax_kernel},
                                {OpKey::aten_amin_default, amin_kernel},
                                {OpKey::aten_max_default, max_all_kernel},
                                {OpKey::aten_min_default, min_all_kernel},
                                {OpKey::aten_max_dim, max_dim_kernel},
                                {OpKey::aten_min_dim, min_dim_kernel},
                                {OpKey::aten_argmax_default, argmax_kernel},
                                {OpKey::aten_argmin_default, argmin_kernel},
                                {OpKey::aten_any_default, any_all_kernel},
                                {OpKey::aten_any_dim, any_dim_kernel},
                                {OpKey::aten_any_dims, any_dims_kernel},
                                {OpKey::aten_all_default, all_all_kernel},
                                {OpKey::aten_all_dim, all_dim_kernel},
                                {OpKey::aten_all_dims, all_dims_kernel},
                                {OpKey::aten_count_nonzero_dim_IntList, count_nonzero_dims_kernel},
                                {OpKey::aten_count_nonzero_default, count_nonzero_default_kernel},
                                {OpKey::aten_var_default, var_default},
                                {OpKey::aten_var_dim, var_dim},
                                {OpKey::aten_var_correction, var_correction},
                                {OpKey::aten_std_default, std_default},
                                {OpKey::aten_std_dim, std_dim},
                                {OpKey::aten_std_correction, std_correction},
                                {OpKey::aten_var_mean_default, var_mean_default},
                                {OpKey::aten_var_mean_dim, var_mean_dim},
                                {OpKey::aten_var_mean_correction, var_mean_correction},
                                {OpKey::aten_std_mean_default, std_mean_default},
                                {OpKey::aten_std_mean_dim, std_mean_dim},
                                {OpKey::aten_std_mean_correction, std_mean_correction},
                                {OpKey::aten_cumsum_default, cumsum_kernel},
                                {OpKey::aten_cumprod_default, cumprod_kernel},
                                {OpKey::aten_logsumexp_default, logsumexp_kernel},
                                {OpKey::aten_linalg_vector_norm_default, linalg_vector_norm_kernel},
                                {OpKey::aten_norm_Scalar, norm_scalar_kernel},
                                {OpKey::aten_norm_ScalarOpt_dim, norm_dim_kernel},
                            });
}

}  // namespace kiln::cpu
