// CPU kernels for layer norm, RMS norm, batch norm (running statistics), group norm and instance
// norm, in their native forms (which also return statistics) and the composite forms that kiln's
// lowering keeps whole (layer_norm, group_norm, instance_norm: the output alone). Statistics are
// computed in double over contiguous rows (two passes, the row staying in cache); the normalized
// output is computed in float, as PyTorch does for every floating input type.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/normalization_util.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu {
namespace {

using ir::OpContext;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Moments {
  double mean;
  double rstd;
};

// Mean and 1/sqrt(var + eps) (biased variance) of n contiguous values. An empty row has mean 0 and
// rstd nan, and a row with an inf or nan has both nan, as in PyTorch.
template <typename T>
Moments row_moments(const T* x, int64_t n, double eps) {
  if (n == 0) return {0.0, kNaN};
  const double sum = lane_sum(n, [&](int64_t i) { return static_cast<double>(x[i]); });
  // PyTorch's row moments give nan (not inf) for a row holding an inf.
  if (!std::isfinite(sum)) return {kNaN, kNaN};
  const double mean = sum / static_cast<double>(n);
  const double squares = lane_sum(n, [&](int64_t i) {
    const double d = static_cast<double>(x[i]) - mean;
    return d * d;
  });
  return {mean, 1.0 / std::sqrt(squares / static_cast<double>(n) + eps)};
}

int64_t row_grain(int64_t row_length) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(row_length, 1));
}

// Rows of length `n` of a contiguous input: y = (x - mean) * rstd * w + b, or for RMS norm
// y = x * rstd * w with rstd = 1/sqrt(mean(x^2) + eps). Writes the statistics when asked. The
// output is computed in C: float for 16- and 32-bit floats, double for float64.
template <typename T, typename S, bool kRms, typename C = ComputeType<T>>
void normalize_rows(const T* x, T* y, int64_t rows, int64_t n, const std::vector<C>& w,
                    const std::vector<C>& b, double eps, S* mean_out, S* rstd_out) {
  parallel_for(0, rows, row_grain(n), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * n;
      T* yr = y + r * n;
      Moments m;
      if constexpr (kRms) {
        const double squares = lane_sum(n, [&](int64_t i) {
          const double v = static_cast<double>(xr[i]);
          return v * v;
        });
        m = {0.0, n == 0 ? kNaN : 1.0 / std::sqrt(squares / static_cast<double>(n) + eps)};
      } else {
        m = row_moments(xr, n, eps);
      }
      const C mean = static_cast<C>(m.mean);
      const C rstd = static_cast<C>(m.rstd);
      for (int64_t i = 0; i < n; ++i) {
        // Centred first: x - mean is exactly 0 for a constant (or one-element) row, where
        // x * rstd - mean * rstd would leave the rounding error of two products of ~x * rstd.
        const C normalized = (static_cast<C>(xr[i]) - mean) * rstd;
        yr[i] = element_cast<T>(kRms ? normalized * w[i] : normalized * w[i] + b[i]);
      }
      if (mean_out) mean_out[r] = element_cast<S>(m.mean);
      if (rstd_out) rstd_out[r] = element_cast<S>(m.rstd);
    }
  });
}

// The row length for a trailing normalized_shape.
int64_t normalized_numel(OpContext& ctx) {
  int64_t n = 1;
  for (int64_t s : ctx.ints(1)) n *= s;
  return n;
}

}  // namespace

// native_layer_norm(input, normalized_shape, weight?, bias?, eps) -> (out, mean, rstd) and
// layer_norm(input, normalized_shape, weight?, bias?, eps, cudnn_enable) -> out.
Status layer_norm_kernel(OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Tensor input, ctx.tensor(0).contiguous());
  const int64_t n = normalized_numel(ctx);
  const int64_t axis = input.dim() - static_cast<int64_t>(ctx.ints(1).size());
  const int64_t rows = shape_numel(std::span(input.sizes()).first(static_cast<size_t>(axis)));
  const double eps = ctx.float_arg(4);
  Tensor& out = ctx.output_tensor(0);
  Tensor* mean = ctx.num_outputs() > 1 ? &ctx.output_tensor(1) : nullptr;
  Tensor* rstd = ctx.num_outputs() > 1 ? &ctx.output_tensor(2) : nullptr;
  const DType stats = mean ? mean->dtype() : input.dtype();
  return dispatch_floating_pair(input.dtype(), stats, [&]<typename T, typename S>() {
    using C = ComputeType<T>;
    KILN_ASSIGN_OR_RETURN(std::vector<C> w, param_values<C>(ctx.optional_tensor(2), n, 1));
    KILN_ASSIGN_OR_RETURN(std::vector<C> b, param_values<C>(ctx.optional_tensor(3), n, 0));
    normalize_rows<T, S, false>(input.data<T>(), out.data<T>(), rows, n, w, b, eps,
                                mean ? mean->data<S>() : nullptr, rstd ? rstd->data<S>() : nullptr);
    return ok_status();
  });
}

// rms_norm / _fused_rms_norm (input, normalized_shape, weight?, eps?). Without eps, the machine
// epsilon of the compute type (float, or double for float64 inputs) is used, as PyTorch does.
// rstd (the fused form's second output) is float32, or float64 for a float64 input.
Status rms_norm_kernel(OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Tensor input, ctx.tensor(0).contiguous());
  const int64_t n = normalized_numel(ctx);
  Tensor& out = ctx.output_tensor(0);
  Tensor* rstd = ctx.num_outputs() > 1 ? &ctx.output_tensor(1) : nullptr;
  const int64_t axis = input.dim() - static_cast<int64_t>(ctx.ints(1).size());
  const int64_t rows = shape_numel(std::span(input.sizes()).first(static_cast<size_t>(axis)));
  return dispatch_floating_pair(input.dtype(), input.dtype(), [&]<typename T, typename>() {
    using C = ComputeType<T>;
    const double eps = ctx.optional_float(3).value_or(std::numeric_limits<C>::epsilon());
    KILN_ASSIGN_OR_RETURN(std::vector<C> w, param_values<C>(ctx.optional_tensor(2), n, 1));
    normalize_rows<T, C, true>(input.data<T>(), out.data<T>(), rows, n, w, {}, eps, nullptr,
                               rstd ? rstd->data<C>() : nullptr);
    return ok_status();
  });
}

namespace {

// y = x * scale[c] + shift[c] over each plane of a contiguous [N, C, *] input, in C.
template <typename T, typename C>
void apply_channel_affine(const Tensor& input, const std::vector<C>& scale,
                          const std::vector<C>& shift, Tensor& out) {
  const int64_t channels = input.size(1);
  const int64_t plane = shape_numel(std::span(input.sizes()).subspan(2));
  const T* x = input.data<T>();
  T* y = out.data<T>();
  parallel_for(0, input.size(0) * channels, row_grain(plane), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const C sc = scale[p % channels], sh = shift[p % channels];
      for (int64_t i = p * plane; i < (p + 1) * plane; ++i) {
        y[i] = element_cast<T>(static_cast<C>(x[i]) * sc + sh);
      }
    }
  });
}

// Batch norm with running statistics: y = x * scale[c] + shift[c] over each [N, C] plane, with
// scale = w / sqrt(var + eps) and shift = b - mean * scale.
template <typename T>
Status batch_norm(OpContext& ctx, const Tensor& input, double eps, Tensor& out) {
  using C = ComputeType<T>;
  const int64_t channels = input.size(1);
  KILN_ASSIGN_OR_RETURN(std::vector<C> w, param_values<C>(ctx.optional_tensor(1), channels, 1));
  KILN_ASSIGN_OR_RETURN(std::vector<C> b, param_values<C>(ctx.optional_tensor(2), channels, 0));
  KILN_ASSIGN_OR_RETURN(std::vector<C> mean, param_values<C>(ctx.optional_tensor(3), channels, 0));
  KILN_ASSIGN_OR_RETURN(std::vector<C> var, param_values<C>(ctx.optional_tensor(4), channels, 1));
  std::vector<C> scale(static_cast<size_t>(channels)), shift(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    const double s = w[c] / std::sqrt(static_cast<double>(var[c]) + eps);
    scale[c] = static_cast<C>(s);
    shift[c] = static_cast<C>(b[c] - mean[c] * s);
  }
  apply_channel_affine<T>(input, scale, shift, out);
  return ok_status();
}

}  // namespace

Status batch_norm_kernel(OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Tensor input, ctx.tensor(0).contiguous());
  // native_batch_norm (`training`) and instance_norm (`use_input_stats`) have a flag before
  // momentum and eps; the _legit_no_training form does not.
  const bool has_flag =
      ctx.node().op != ir::OpKey::aten__native_batch_norm_legit_no_training_default;
  const double eps = ctx.float_arg(has_flag ? 7 : 6);
  return dispatch_floating_pair(input.dtype(), input.dtype(), [&]<typename T, typename>() {
    return batch_norm<T>(ctx, input, eps, ctx.output_tensor(0));
  });
}

namespace {

// Per-channel statistics of a contiguous [N, C, *] input over its N x plane values: the mean, the
// sum of squared deviations from it, and their count. Two passes in double, as PyTorch's CPU
// kernel: an inf gives an inf mean and a nan variance, not a nan mean.
struct ChannelMoments {
  std::vector<double> mean, squares;
  int64_t count = 0;
};

template <typename T>
ChannelMoments channel_moments(const Tensor& input) {
  const int64_t batch = input.size(0), channels = input.size(1);
  const int64_t plane = shape_numel(std::span(input.sizes()).subspan(2));
  ChannelMoments m{std::vector<double>(static_cast<size_t>(channels)),
                   std::vector<double>(static_cast<size_t>(channels)), batch * plane};
  const T* x = input.data<T>();
  parallel_for(0, channels, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      double sum = 0.0;
      for (int64_t n = 0; n < batch; ++n) {
        const T* row = x + (n * channels + c) * plane;
        sum += lane_sum(plane, [&](int64_t i) { return static_cast<double>(row[i]); });
      }
      const double mean = sum / static_cast<double>(m.count);
      double squares = 0.0;
      for (int64_t n = 0; n < batch; ++n) {
        const T* row = x + (n * channels + c) * plane;
        squares += lane_sum(plane, [&](int64_t i) {
          const double d = static_cast<double>(row[i]) - mean;
          return d * d;
        });
      }
      m.mean[c] = mean;
      m.squares[c] = squares;
    }
  });
  return m;
}

// Writes `values` into a [C] tensor of any floating dtype.
Status write_channel_values(const std::vector<double>& values, Tensor& out) {
  KILN_ASSIGN_OR_RETURN(Tensor wide, Tensor::empty(DType::kFloat64, out.sizes()));
  std::copy(values.begin(), values.end(), wide.data<double>());
  return out.copy_from(wide);
}

// Training batch norm: normalizes by the batch's statistics, y = x * alpha[c] + beta[c] with
// alpha = w * invstd and beta = b - mean * alpha (PyTorch's CPU form), and returns them as
// save_mean and save_invstd (written in double, then cast to their dtype).
template <typename T>
Status batch_norm_by_batch(OpContext& ctx, const Tensor& input, const ChannelMoments& m,
                           double eps, Tensor& out, Tensor& save_mean, Tensor& save_invstd) {
  using C = ComputeType<T>;
  const int64_t channels = input.size(1);
  KILN_ASSIGN_OR_RETURN(std::vector<C> w, param_values<C>(ctx.optional_tensor(1), channels, 1));
  KILN_ASSIGN_OR_RETURN(std::vector<C> b, param_values<C>(ctx.optional_tensor(2), channels, 0));
  std::vector<double> invstd(static_cast<size_t>(channels));
  std::vector<C> alpha(static_cast<size_t>(channels)), beta(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    invstd[c] = 1.0 / std::sqrt(m.squares[c] / static_cast<double>(m.count) + eps);
    alpha[c] = static_cast<C>(static_cast<double>(w[c]) * invstd[c]);
    beta[c] = static_cast<C>(static_cast<double>(b[c]) - m.mean[c] * alpha[c]);
  }
  apply_channel_affine<T>(input, alpha, beta, out);
  KILN_RETURN_IF_ERROR(write_channel_values(m.mean, save_mean));
  return write_channel_values(invstd, save_invstd);
}

// running * (1 - momentum) + momentum * batch, per channel, in double.
Status blend_running(const Tensor& running, const std::vector<double>& batch, double momentum,
                     Tensor& out) {
  KILN_ASSIGN_OR_RETURN(Tensor old, running.to(DType::kFloat64));
  std::vector<double> blended(batch.size());
  for (size_t c = 0; c < batch.size(); ++c) {
    blended[c] = (1.0 - momentum) * old.data<double>()[c] + momentum * batch[c];
  }
  return write_channel_values(blended, out);
}

}  // namespace

// _native_batch_norm_legit.no_stats(input, weight?, bias?, training, momentum, eps) and
// _native_batch_norm_legit_functional(input, weight?, bias?, running_mean, running_var, training,
// momentum, eps): training batch norm, the latter also returning the running statistics blended
// with the batch's (the variance unbiased, as PyTorch: a batch of one value gives nan). Outside
// training the functional form normalizes by the running statistics and returns them unchanged.
Status batch_norm_training_kernel(OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Tensor input, ctx.tensor(0).contiguous());
  const bool functional =
      ctx.node().op == ir::OpKey::aten__native_batch_norm_legit_functional_default;
  const bool training = ctx.bool_arg(functional ? 5 : 3);
  const double momentum = ctx.float_arg(functional ? 6 : 4);
  const double eps = ctx.float_arg(functional ? 7 : 5);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (!training) {
    // batch_norm_kernel reads eps at 7, as native_batch_norm's; the saved statistics stay empty.
    KILN_RETURN_IF_ERROR(batch_norm_kernel(ctx));
    for (int i : {3, 4}) KILN_RETURN_IF_ERROR(ctx.output_tensor(i).copy_from(ctx.tensor(i)));
    return ok_status();
  }
  ChannelMoments m;
  KILN_RETURN_IF_ERROR(dispatch_floating_pair(input.dtype(), input.dtype(), [&]<typename T,
                                                                                 typename>() {
    m = channel_moments<T>(input);
    return batch_norm_by_batch<T>(ctx, input, m, eps, ctx.output_tensor(0), ctx.output_tensor(1),
                                  ctx.output_tensor(2));
  }));
  if (!functional) return ok_status();
  std::vector<double> unbiased(m.squares.size());
  for (size_t c = 0; c < unbiased.size(); ++c) {
    unbiased[c] = m.squares[c] / static_cast<double>(m.count - 1);
  }
  KILN_RETURN_IF_ERROR(blend_running(ctx.tensor(3), m.mean, momentum, ctx.output_tensor(3)));
  return blend_running(ctx.tensor(4), unbiased, momentum, ctx.output_tensor(4));
}

namespace {

// Group norm's arguments, read from any of the ops that normalize groups of channels.
struct GroupNormArgs {
  const Tensor* weight;
  const Tensor* bias;
  int64_t channels;
  int64_t groups;
  double eps;
};

// native_group_norm(input, weight?, bias?, N, C, HxW, group, eps),
// group_norm(input, num_groups, weight?, bias?, eps, cudnn_enabled), and instance_norm with input
// statistics: one group per channel.
GroupNormArgs group_norm_args(OpContext& ctx, const Tensor& input) {
  switch (ctx.node().op) {
    case ir::OpKey::aten_native_group_norm_default:
      return {ctx.optional_tensor(1), ctx.optional_tensor(2), ctx.int_arg(4), ctx.int_arg(6),
              ctx.float_arg(7)};
    case ir::OpKey::aten_group_norm_default:
      return {ctx.optional_tensor(2), ctx.optional_tensor(3), input.size(1), ctx.int_arg(1),
              ctx.float_arg(4)};
    default:  // instance_norm(input, weight?, bias?, running_mean?, running_var?, ..., eps, ...)
      return {ctx.optional_tensor(1), ctx.optional_tensor(2), input.size(1), input.size(1),
              ctx.float_arg(7)};
  }
}

// Statistics per (n, group) over C/group channels of HxW contiguous elements, then a per-channel
// affine. `mean` and `rstd` (one per (n, group)) are written when not null.
template <typename T, typename S>
Status group_norm(const GroupNormArgs& args, const Tensor& input, Tensor& out, S* mean, S* rstd) {
  using C = ComputeType<T>;
  const int64_t channels = args.channels, groups = args.groups;
  KILN_ASSIGN_OR_RETURN(std::vector<C> w, param_values<C>(args.weight, channels, 1));
  KILN_ASSIGN_OR_RETURN(std::vector<C> b, param_values<C>(args.bias, channels, 0));
  const int64_t hxw = shape_numel(std::span(input.sizes()).subspan(2));
  const int64_t per_group = channels / groups;
  const int64_t block = per_group * hxw;
  const T* x = input.data<T>();
  T* y = out.data<T>();
  parallel_for(0, input.size(0) * groups, row_grain(block), [&](int64_t lo, int64_t hi) {
    for (int64_t ng = lo; ng < hi; ++ng) {
      const Moments m = row_moments(x + ng * block, block, args.eps);
      if (mean) mean[ng] = element_cast<S>(m.mean);
      if (rstd) rstd[ng] = element_cast<S>(m.rstd);
      // Centred values times rstd, as for layer norm, so a constant group normalizes to exactly 0.
      const C group_mean = static_cast<C>(m.mean);
      const C group_rstd = static_cast<C>(m.rstd);
      for (int64_t k = 0; k < per_group; ++k) {
        const int64_t channel = (ng % groups) * per_group + k;
        const C wc = w[channel], bc = b[channel];
        const int64_t begin = ng * block + k * hxw;
        for (int64_t i = begin; i < begin + hxw; ++i) {
          y[i] = element_cast<T>((static_cast<C>(x[i]) - group_mean) * group_rstd * wc + bc);
        }
      }
    }
  });
  return ok_status();
}

}  // namespace

Status group_norm_kernel(OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Tensor input, ctx.tensor(0).contiguous());
  const GroupNormArgs args = group_norm_args(ctx, input);
  Tensor* mean = ctx.num_outputs() > 1 ? &ctx.output_tensor(1) : nullptr;
  Tensor* rstd = ctx.num_outputs() > 1 ? &ctx.output_tensor(2) : nullptr;
  const DType stats = mean ? mean->dtype() : input.dtype();
  return dispatch_floating_pair(input.dtype(), stats, [&]<typename T, typename S>() {
    return group_norm<T, S>(args, input, ctx.output_tensor(0), mean ? mean->data<S>() : nullptr,
                            rstd ? rstd->data<S>() : nullptr);
  });
}

}  // namespace kiln::cpu
