// CPU reference kernel for convolution_backward: the gradients of a 1-D, 2-D or 3-D convolution
// (plain or transposed, grouped) with respect to its input, weight and bias.
//
// A convolution pairs positions of its strided side with positions of its other side through
// each kernel tap: b = a * stride - padding + tap * dilation, where a runs over the output of a
// plain convolution (b over its input) and over the input of a transposed one (b over its
// output). Every gradient is a sum over those pairs, so one walk over them accumulates both
// grad_input (grad_output times weight) and grad_weight (grad_output times input), in double, and
// rounds each once to the tensors' dtype. grad_bias sums grad_output over the batch and space.
#include <array>
#include <type_traits>
#include <vector>

#include "base/element_cast.h"
#include "kernels/cpu/linalg_internal.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu {
namespace {

using Dims = std::array<int64_t, 3>;

// The geometry, spatial dims padded in front to three (size 1).
struct BackwardGeometry {
  int64_t batch = 0, x_channels = 0, y_channels = 0, groups = 1;
  int64_t w0 = 0, w1 = 0;  // weight [w0, w1, kernel...]
  bool transposed = false;
  Dims x{1, 1, 1}, y{1, 1, 1}, kernel{1, 1, 1};
  Dims stride{1, 1, 1}, pad{0, 0, 0}, dilation{1, 1, 1};
};

int64_t volume(const Dims& d) {
  return d[0] * d[1] * d[2];
}

void place(const std::vector<int64_t>& values, int64_t spatial, Dims& dst) {
  for (int64_t d = 0; d < spatial; ++d) {
    dst[3 - spatial + d] = values.size() == 1 ? values[0] : values[d];
  }
}

// Accumulators for one batch element's pairs: grad_input of that element and its share of
// grad_weight (summed over the batch afterwards, in batch order).
struct Sums {
  std::vector<double> input;   // [x_channels, x...]
  std::vector<double> weight;  // [w0, w1, kernel...]
};

// Walks every (weight channel pair, strided-side position, tap) of batch element n.
void accumulate(const BackwardGeometry& g, const double* gy, const double* x, const double* w,
                int64_t n, bool want_input, bool want_weight, Sums& sums) {
  const int64_t taps = volume(g.kernel), x_plane = volume(g.x), y_plane = volume(g.y);
  const int64_t w0_per_group = g.w0 / g.groups;
  const Dims& a_dims = g.transposed ? g.x : g.y;
  const Dims& b_dims = g.transposed ? g.y : g.x;
  for (int64_t c0 = 0; c0 < g.w0; ++c0) {
    const int64_t group = c0 / w0_per_group;
    for (int64_t c1 = 0; c1 < g.w1; ++c1) {
      // Plain: weight [out, in / groups]; transposed: weight [in, out / groups].
      const int64_t xc = g.transposed ? c0 : group * g.w1 + c1;
      const int64_t yc = g.transposed ? group * g.w1 + c1 : c0;
      const double* gy_plane = gy + (n * g.y_channels + yc) * y_plane;
      const double* x_plane_data = x + (n * g.x_channels + xc) * x_plane;
      const double* wk = w + (c0 * g.w1 + c1) * taps;
      double* gi = want_input ? sums.input.data() + xc * x_plane : nullptr;
      double* gw = want_weight ? sums.weight.data() + (c0 * g.w1 + c1) * taps : nullptr;
      for (int64_t a0 = 0; a0 < a_dims[0]; ++a0) {
        for (int64_t a1 = 0; a1 < a_dims[1]; ++a1) {
          for (int64_t a2 = 0; a2 < a_dims[2]; ++a2) {
            const int64_t a = (a0 * a_dims[1] + a1) * a_dims[2] + a2;
            for (int64_t k0 = 0; k0 < g.kernel[0]; ++k0) {
              const int64_t b0 = a0 * g.stride[0] - g.pad[0] + k0 * g.dilation[0];
              if (b0 < 0 || b0 >= b_dims[0]) continue;
              for (int64_t k1 = 0; k1 < g.kernel[1]; ++k1) {
                const int64_t b1 = a1 * g.stride[1] - g.pad[1] + k1 * g.dilation[1];
                if (b1 < 0 || b1 >= b_dims[1]) continue;
                for (int64_t k2 = 0; k2 < g.kernel[2]; ++k2) {
                  const int64_t b2 = a2 * g.stride[2] - g.pad[2] + k2 * g.dilation[2];
                  if (b2 < 0 || b2 >= b_dims[2]) continue;
                  const int64_t b = (b0 * b_dims[1] + b1) * b_dims[2] + b2;
                  const int64_t k = (k0 * g.kernel[1] + k1) * g.kernel[2] + k2;
                  const int64_t yi = g.transposed ? b : a, xi = g.transposed ? a : b;
                  const double grad = gy_plane[yi];
                  if (gi) gi[xi] += grad * wk[k];
                  if (gw) gw[k] += grad * x_plane_data[xi];
                }
              }
            }
          }
        }
      }
    }
  }
}

Result<std::vector<double>> as_doubles(const Tensor& t) {
  KILN_ASSIGN_OR_RETURN(Tensor c, t.to(DType::kFloat64));
  const double* p = c.data<double>();
  return std::vector<double>(p, p + c.numel());
}

Status store(const std::vector<double>& values, const Tensor& out) {
  return dispatch_dtype(out.dtype(), [&]<typename T>() -> Status {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) {
      T* dst = out.data<T>();
      for (size_t i = 0; i < values.size(); ++i) dst[i] = element_cast<T>(values[i]);
      return ok_status();
    } else {
      return internal_error("convolution_backward: a gradient of dtype ", dtype_name(out.dtype()));
    }
  });
}

BackwardGeometry make_geometry(const Tensor& grad_output, const Tensor& input,
                               const Tensor& weight, ir::OpContext& ctx, bool transposed,
                               int64_t groups) {
  BackwardGeometry g;
  const int64_t spatial = input.dim() - 2;
  g.batch = input.size(0);
  g.x_channels = input.size(1);
  g.y_channels = grad_output.size(1);
  g.w0 = weight.size(0);
  g.w1 = weight.size(1);
  g.groups = groups;
  g.transposed = transposed;
  for (int64_t d = 0; d < spatial; ++d) {
    g.x[3 - spatial + d] = input.size(d + 2);
    g.y[3 - spatial + d] = grad_output.size(d + 2);
    g.kernel[3 - spatial + d] = weight.size(d + 2);
  }
  place(ctx.ints(4), spatial, g.stride);
  place(ctx.ints(5), spatial, g.pad);
  place(ctx.ints(6), spatial, g.dilation);
  return g;
}

}  // namespace

// convolution_backward(grad_output, input, weight, bias_sizes, stride, padding, dilation,
// transposed, output_padding, groups, output_mask) -> (grad_input, grad_weight, grad_bias).
// Inference has checked the shapes and set only the outputs output_mask asks for.
Status convolution_backward_kernel(ir::OpContext& ctx) {
  const Tensor& grad_output = ctx.tensor(0);
  const Tensor& input = ctx.tensor(1);
  const Tensor& weight = ctx.tensor(2);
  const bool transposed = ctx.bool_arg(7);
  const int64_t groups = ctx.int_arg(9);
  KILN_RETURN_IF_ERROR(ctx.error());
  const BackwardGeometry g = make_geometry(grad_output, input, weight, ctx, transposed, groups);
  KILN_RETURN_IF_ERROR(ctx.error());
  auto wanted = [&](size_t i) {
    return ctx.output(i).kind == ir::RtValue::Kind::kTensor && ctx.output(i).tensor.has_data();
  };
  const bool want_input = wanted(0), want_weight = wanted(1), want_bias = wanted(2);
  KILN_ASSIGN_OR_RETURN(std::vector<double> gy, as_doubles(grad_output));
  if (want_input || want_weight) {
    KILN_ASSIGN_OR_RETURN(std::vector<double> x, as_doubles(input));
    KILN_ASSIGN_OR_RETURN(std::vector<double> w, as_doubles(weight));
    const int64_t x_numel = g.x_channels * volume(g.x);
    std::vector<Sums> per_batch(g.batch);
    parallel_for(0, g.batch, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t n = lo; n < hi; ++n) {
        Sums& s = per_batch[n];
        if (want_input) s.input.assign(x_numel, 0.0);
        if (want_weight) s.weight.assign(weight.numel(), 0.0);
        accumulate(g, gy.data(), x.data(), w.data(), n, want_input, want_weight, s);
      }
    });
    if (want_input) {
      std::vector<double> grad_input(input.numel(), 0.0);
      for (int64_t n = 0; n < g.batch; ++n) {
        std::copy(per_batch[n].input.begin(), per_batch[n].input.end(),
                  grad_input.begin() + n * x_numel);
      }
      KILN_RETURN_IF_ERROR(store(grad_input, ctx.output_tensor(0)));
    }
    if (want_weight) {
      std::vector<double> grad_weight(weight.numel(), 0.0);
      for (const Sums& s : per_batch) {
        for (size_t i = 0; i < grad_weight.size(); ++i) grad_weight[i] += s.weight[i];
      }
      KILN_RETURN_IF_ERROR(store(grad_weight, ctx.output_tensor(1)));
    }
  }
  if (want_bias) {
    const int64_t plane = volume(g.y);
    std::vector<double> grad_bias(g.y_channels, 0.0);
    for (int64_t n = 0; n < g.batch; ++n) {
      for (int64_t c = 0; c < g.y_channels; ++c) {
        const double* p = gy.data() + (n * g.y_channels + c) * plane;
        for (int64_t i = 0; i < plane; ++i) grad_bias[c] += p[i];
      }
    }
    KILN_RETURN_IF_ERROR(store(grad_bias, ctx.output_tensor(2)));
  }
  return ok_status();
}

}  // namespace kiln::cpu
