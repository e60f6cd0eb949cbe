// Direct convolutions on the GPU against a CPU loop reference in double: transposed convolutions
// with output_padding (1-D, 2-D, 3-D; groups, stride, dilation, padding, bias), plain ones, and
// convolution_backward's grad_input, grad_weight and grad_bias for plain and transposed
// convolutions, with strided (channels-last, transposed) operands and an empty batch. Skipped
// without a CUDA device.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cuda/kernel_library_conv_direct.h"
#include "cuda/kernel_module.h"
#include "kernel_library_support.h"

namespace kiln::cuda {
namespace {

using namespace kltest;

void add_conv_direct_family(ModuleSource& module) {
  for (DType t : kFloatTypes) {
    conv_direct_kernel(module, false, t);
    conv_direct_kernel(module, true, t);
    conv_weight_grad_kernel(module, t);
    conv_bias_grad_kernel(module, t);
  }
}

const GpuModule& conv_direct_module() {
  static const GpuModule state = load_gpu_module([] {
    ModuleSource module;
    add_conv_direct_family(module);
    return module.text();
  }());
  return state;
}

class ConvDirectGpuTest : public FamilyGpuTest<conv_direct_module> {};

// --- the CPU reference ---------------------------------------------------------------------------

// One convolution's geometry, spatial dims padded in front to three.
struct Geometry {
  int64_t batch = 1, w0 = 1, w1 = 1, groups = 1;
  int64_t a[3] = {1, 1, 1}, b[3] = {1, 1, 1}, k[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1}, pad[3] = {0, 0, 0}, dil[3] = {1, 1, 1};
};

int64_t volume(const int64_t* d) {
  return d[0] * d[1] * d[2];
}

// `a_side` [N, W0, a...] and `b_side` [N, W1 * groups, b...], the weight [W0, W1, k...]: calls
// f(a_index, b_index, w_index) with flat row-major indices for every pair the convolution makes.
template <typename F>
void for_each_pair(const Geometry& g, F f) {
  const int64_t a_plane = volume(g.a), b_plane = volume(g.b), taps = volume(g.k);
  const int64_t w0_per_group = g.w0 / g.groups;
  for (int64_t n = 0; n < g.batch; ++n) {
    for (int64_t ca = 0; ca < g.w0; ++ca) {
      for (int64_t c1 = 0; c1 < g.w1; ++c1) {
        const int64_t cb = (ca / w0_per_group) * g.w1 + c1;
        for (int64_t a = 0; a < a_plane; ++a) {
          const int64_t ai[3] = {a / (g.a[1] * g.a[2]), (a / g.a[2]) % g.a[1], a % g.a[2]};
          for (int64_t k = 0; k < taps; ++k) {
            const int64_t ki[3] = {k / (g.k[1] * g.k[2]), (k / g.k[2]) % g.k[1], k % g.k[2]};
            int64_t b = 0;
            bool inside = true;
            for (int d = 0; d < 3; ++d) {
              const int64_t bd = ai[d] * g.stride[d] - g.pad[d] + ki[d] * g.dil[d];
              inside = inside && bd >= 0 && bd < g.b[d];
              b = b * g.b[d] + bd;
            }
            if (!inside) continue;
            f((n * g.w0 + ca) * a_plane + a, (n * g.w1 * g.groups + cb) * b_plane + b,
              (ca * g.w1 + c1) * taps + k);
          }
        }
      }
    }
  }
}

// y = conv(x, w) or conv_transpose(x, w) (+ bias, added to the sum rounded to the dtype).
std::vector<double> reference_conv(const Geometry& g, bool transposed, const std::vector<double>& x,
                                   const std::vector<double>& w, const std::vector<double>* bias,
                                   DType dtype) {
  const int64_t y_channels = transposed ? g.w1 * g.groups : g.w0;
  const int64_t y_plane = transposed ? volume(g.b) : volume(g.a);
  std::vector<double> y(static_cast<size_t>(g.batch * y_channels * y_plane), 0.0);
  for_each_pair(g, [&](int64_t ai, int64_t bi, int64_t wi) {
    if (transposed) {
      y[bi] += x[ai] * w[wi];
    } else {
      y[ai] += x[bi] * w[wi];
    }
  });
  y = rounded(y, dtype);
  if (bias) {
    for (size_t i = 0; i < y.size(); ++i) {
      y[i] += (*bias)[(i / y_plane) % y_channels];
    }
  }
  return rounded(y, dtype);
}

std::vector<double> reference_weight_grad(const Geometry& g, const std::vector<double>& a_side,
                                          const std::vector<double>& b_side) {
  std::vector<double> gw(static_cast<size_t>(g.w0 * g.w1 * volume(g.k)), 0.0);
  for_each_pair(g, [&](int64_t ai, int64_t bi, int64_t wi) { gw[wi] += a_side[ai] * b_side[bi]; });
  return gw;
}

std::vector<double> reference_bias_grad(const std::vector<double>& gy, const Shape& sizes) {
  const int64_t channels = sizes[1];
  const int64_t plane = shape_numel(sizes) / std::max<int64_t>(sizes[0] * channels, 1);
  std::vector<double> gb(static_cast<size_t>(channels), 0.0);
  for (size_t i = 0; i < gy.size(); ++i) gb[(i / plane) % channels] += gy[i];
  return gb;
}

// --- cases ---------------------------------------------------------------------------------------

struct Case {
  std::string what;
  DType dtype;
  bool transposed;
  int64_t batch, in_channels, out_channels, groups;
  Shape in_spatial, kernel;
  std::vector<int64_t> stride, padding, dilation, output_padding;
  bool bias = false;
  bool channels_last_input = false;  // x stored with channels innermost
};

int64_t out_size(const Case& c, size_t d) {
  const int64_t span = c.dilation[d] * (c.kernel[d] - 1) + 1;
  if (c.transposed) {
    return (c.in_spatial[d] - 1) * c.stride[d] - 2 * c.padding[d] + span + c.output_padding[d];
  }
  return (c.in_spatial[d] + 2 * c.padding[d] - span) / c.stride[d] + 1;
}

Shape input_sizes(const Case& c) {
  Shape s{c.batch, c.in_channels};
  s.insert(s.end(), c.in_spatial.begin(), c.in_spatial.end());
  return s;
}
Shape output_sizes(const Case& c) {
  Shape s{c.batch, c.out_channels};
  for (size_t d = 0; d < c.in_spatial.size(); ++d) s.push_back(out_size(c, d));
  return s;
}
Shape weight_sizes(const Case& c) {
  Shape s = c.transposed ? Shape{c.in_channels, c.out_channels / c.groups}
                         : Shape{c.out_channels, c.in_channels / c.groups};
  s.insert(s.end(), c.kernel.begin(), c.kernel.end());
  return s;
}

Geometry geometry(const Case& c) {
  Geometry g;
  const Shape w = weight_sizes(c), x = input_sizes(c), y = output_sizes(c);
  const Shape& a = c.transposed ? x : y;
  const Shape& b = c.transposed ? y : x;
  g.batch = c.batch;
  g.w0 = w[0];
  g.w1 = w[1];
  g.groups = c.groups;
  const size_t spatial = c.in_spatial.size();
  for (size_t d = 0; d < spatial; ++d) {
    const size_t at = 3 - spatial + d;
    g.a[at] = a[2 + d];
    g.b[at] = b[2 + d];
    g.k[at] = c.kernel[d];
    g.stride[at] = c.stride[d];
    g.pad[at] = c.padding[d];
    g.dil[at] = c.dilation[d];
  }
  return g;
}

ConvWindowParams params_of(const Case& c) {
  ConvWindowParams p;
  p.stride = c.stride;
  p.padding = c.padding;
  p.dilation = c.dilation;
  p.groups = c.groups;
  return p;
}

// Strides of a layout with channels innermost for [N, C, spatial...] sizes.
Shape channels_last_strides(const Shape& s) {
  Shape strides(s.size());
  int64_t step = s[1];
  strides[1] = 1;
  for (size_t d = s.size(); d-- > 2;) {
    strides[d] = step;
    step *= s[d];
  }
  strides[0] = step;
  return strides;
}

// A view of `sizes` with `strides` (row-major if empty) over fresh random storage in [-1, 1).
Result<DeviceTensor> random_view(DType dtype, const Shape& sizes, Shape strides, uint32_t seed) {
  if (strides.empty()) strides = contiguous_strides(sizes);
  int64_t storage = 1;
  for (int64_t at : view_offsets(sizes, strides)) storage = std::max(storage, at + 1);
  return upload(random_values(static_cast<size_t>(storage), seed, -1.0, 1.0), dtype, sizes,
                strides);
}

double tol(DType dtype) {
  return dtype == DType::kFloat32 ? 1e-5 : tolerance(dtype);
}

const std::vector<Case>& forward_cases() {
  static const std::vector<Case> cases = {
      // The conformance sample: aten.convolution(float32[1, 3, 4], float32[3, 3, 3],
      // float32[3], [2], [2], [1], True, [1], 1).
      {"sample 1-D", DType::kFloat32, true, 1, 3, 3, 1, {4}, {3}, {2}, {2}, {1}, {1}, true},
      {"1-D groups, dilation, output_padding 2",
       DType::kFloat16,
       true,
       2,
       4,
       6,
       2,
       {5},
       {3},
       {3},
       {1},
       {2},
       {2},
       true},
      {"2-D channels-last input",
       DType::kFloat32,
       true,
       2,
       4,
       4,
       2,
       {5, 4},
       {3, 2},
       {2, 3},
       {1, 0},
       {1, 2},
       {1, 2},
       true,
       true},
      {"2-D bf16 no bias",
       DType::kBFloat16,
       true,
       1,
       3,
       2,
       1,
       {3, 3},
       {3, 3},
       {2, 2},
       {1, 1},
       {1, 1},
       {1, 0}},
      {"3-D",
       DType::kFloat32,
       true,
       1,
       2,
       4,
       2,
       {3, 4, 3},
       {2, 3, 2},
       {2, 2, 1},
       {0, 1, 1},
       {1, 1, 2},
       {1, 1, 0},
       true},
      {"3-D fp16 channels-last",
       DType::kFloat16,
       true,
       2,
       2,
       2,
       1,
       {2, 3, 2},
       {2, 2, 2},
       {2, 2, 2},
       {0, 0, 0},
       {1, 1, 1},
       {1, 1, 1},
       true,
       true},
      {"plain 2-D grouped",
       DType::kFloat32,
       false,
       2,
       4,
       6,
       2,
       {7, 6},
       {3, 2},
       {2, 1},
       {1, 1},
       {2, 1},
       {0, 0},
       true},
  };
  return cases;
}

TEST_F(ConvDirectGpuTest, ConvolutionMatchesTheLoopReference) {
  for (const Case& c : forward_cases()) {
    SCOPED_TRACE(c.what);
    const Shape xs = input_sizes(c);
    ASSIGN_OR_FAIL(
        DeviceTensor x,
        random_view(c.dtype, xs, c.channels_last_input ? channels_last_strides(xs) : Shape{}, 11));
    ASSIGN_OR_FAIL(DeviceTensor w, random_view(c.dtype, weight_sizes(c), {}, 12));
    ASSIGN_OR_FAIL(DeviceTensor b, random_view(c.dtype, {c.out_channels}, {}, 13));
    ASSIGN_OR_FAIL(DeviceTensor y, device_output(c.dtype, output_sizes(c)));
    sync(launch_conv_direct(fn(conv_direct_kernel(names_, c.transposed, c.dtype)), x.tensor,
                            w.tensor, c.bias ? &b.tensor : nullptr, y.tensor, params_of(c),
                            c.transposed, nullptr));
    const std::vector<double> bias = b.values();
    const std::vector<double> expected = reference_conv(
        geometry(c), c.transposed, x.values(), w.values(), c.bias ? &bias : nullptr, c.dtype);
    expect_close(y.read(), expected, tol(c.dtype), c.what);
  }
}

// NaN and inf reach exactly the outputs whose sums read them.
TEST_F(ConvDirectGpuTest, NanAndInfPropagate) {
  const Case c = forward_cases()[0];
  const Shape xs = input_sizes(c);
  std::vector<double> values = random_values(static_cast<size_t>(shape_numel(xs)), 21, -1, 1);
  values[1] = kNan;
  values[6] = kInf;
  ASSIGN_OR_FAIL(DeviceTensor x, upload(values, c.dtype, xs));
  ASSIGN_OR_FAIL(DeviceTensor w, random_view(c.dtype, weight_sizes(c), {}, 22));
  ASSIGN_OR_FAIL(DeviceTensor y, device_output(c.dtype, output_sizes(c)));
  sync(launch_conv_direct(fn(conv_direct_kernel(names_, true, c.dtype)), x.tensor, w.tensor,
                          nullptr, y.tensor, params_of(c), true, nullptr));
  expect_close(y.read(),
               reference_conv(geometry(c), true, x.values(), w.values(), nullptr, c.dtype),
               tol(c.dtype), "nan/inf");
}

// --- convolution_backward ------------------------------------------------------------------------

const std::vector<Case>& backward_cases() {
  static const std::vector<Case> cases = {
      // The conformance sample: aten.convolution_backward(float32[1, 3, 6], float32[1, 3, 4],
      // float32[3, 3, 3], [3], [2], [2], [1], True, [1], 1, [True, True, True]).
      {"sample transposed 1-D", DType::kFloat32, true, 1, 3, 3, 1, {4}, {3}, {2}, {2}, {1}, {1}},
      {"plain 2-D grouped, strided, dilated",
       DType::kFloat32,
       false,
       2,
       4,
       6,
       2,
       {7, 6},
       {3, 2},
       {2, 1},
       {1, 1},
       {2, 1},
       {0, 0},
       false,
       true},
      {"plain 1-D fp16", DType::kFloat16, false, 3, 2, 4, 1, {9}, {3}, {2}, {1}, {1}, {0}},
      {"transposed 2-D groups bf16",
       DType::kBFloat16,
       true,
       2,
       4,
       6,
       2,
       {4, 3},
       {2, 3},
       {2, 2},
       {0, 1},
       {1, 1},
       {1, 0}},
      {"transposed 3-D",
       DType::kFloat32,
       true,
       1,
       2,
       2,
       1,
       {2, 3, 2},
       {2, 2, 2},
       {2, 1, 2},
       {0, 1, 0},
       {1, 1, 1},
       {1, 0, 1},
       false,
       true},
      {"plain 3-D fp16 groups",
       DType::kFloat16,
       false,
       2,
       4,
       4,
       4,
       {3, 4, 3},
       {2, 2, 2},
       {1, 2, 1},
       {1, 0, 1},
       {1, 1, 2},
       {0, 0, 0}},
  };
  return cases;
}

TEST_F(ConvDirectGpuTest, BackwardMatchesTheLoopReference) {
  for (const Case& c : backward_cases()) {
    SCOPED_TRACE(c.what);
    const Shape xs = input_sizes(c), ys = output_sizes(c), ws = weight_sizes(c);
    ASSIGN_OR_FAIL(
        DeviceTensor x,
        random_view(c.dtype, xs, c.channels_last_input ? channels_last_strides(xs) : Shape{}, 31));
    // grad_output as the transpose of [C, N, spatial...] storage: strided.
    Shape gy_strides = contiguous_strides(ys);
    {
      Shape swapped = ys;
      std::swap(swapped[0], swapped[1]);
      const Shape s = contiguous_strides(swapped);
      gy_strides = s;
      std::swap(gy_strides[0], gy_strides[1]);
    }
    ASSIGN_OR_FAIL(DeviceTensor gy, random_view(c.dtype, ys, gy_strides, 32));
    ASSIGN_OR_FAIL(DeviceTensor w, random_view(c.dtype, ws, {}, 33));
    ASSIGN_OR_FAIL(DeviceTensor gi, device_output(c.dtype, xs));
    ASSIGN_OR_FAIL(DeviceTensor gw, device_output(c.dtype, ws));
    ASSIGN_OR_FAIL(DeviceTensor gb, device_output(c.dtype, {c.out_channels}));
    const ConvWindowParams p = params_of(c);
    // grad_input: the opposite convolution of grad_output with the same weight.
    sync(launch_conv_direct(fn(conv_direct_kernel(names_, !c.transposed, c.dtype)), gy.tensor,
                            w.tensor, nullptr, gi.tensor, p, !c.transposed, nullptr));
    sync(launch_conv_weight_grad(fn(conv_weight_grad_kernel(names_, c.dtype)), gy.tensor, x.tensor,
                                 gw.tensor, p, c.transposed, nullptr));
    sync(launch_conv_bias_grad(fn(conv_bias_grad_kernel(names_, c.dtype)), gy.tensor, gb.tensor,
                               nullptr));
    const Geometry g = geometry(c);
    const std::vector<double> gyv = gy.values(), xv = x.values(), wv = w.values();
    // Plain: grad_output is the a side; transposed: the input is.
    std::vector<double> expected_gi(static_cast<size_t>(shape_numel(xs)), 0.0);
    for_each_pair(g, [&](int64_t ai, int64_t bi, int64_t wi) {
      if (c.transposed) {
        expected_gi[ai] += gyv[bi] * wv[wi];
      } else {
        expected_gi[bi] += gyv[ai] * wv[wi];
      }
    });
    const std::vector<double> expected_gw =
        c.transposed ? reference_weight_grad(g, xv, gyv) : reference_weight_grad(g, gyv, xv);
    expect_close(gi.read(), rounded(expected_gi, c.dtype), tol(c.dtype), "grad_input");
    expect_close(gw.read(), rounded(expected_gw, c.dtype), tol(c.dtype), "grad_weight");
    expect_close(gb.read(), rounded(reference_bias_grad(gyv, ys), c.dtype), tol(c.dtype),
                 "grad_bias");
  }
}

// An empty batch: grad_weight and grad_bias are sums over nothing, zeros.
TEST_F(ConvDirectGpuTest, EmptyBatchGivesZeroWeightAndBiasGradients) {
  Case c = backward_cases()[1];
  c.batch = 0;
  const Shape xs = input_sizes(c), ys = output_sizes(c), ws = weight_sizes(c);
  ASSIGN_OR_FAIL(DeviceTensor x, random_view(c.dtype, xs, {}, 41));
  ASSIGN_OR_FAIL(DeviceTensor gy, random_view(c.dtype, ys, {}, 42));
  ASSIGN_OR_FAIL(DeviceTensor gw, device_output(c.dtype, ws));
  ASSIGN_OR_FAIL(DeviceTensor gb, device_output(c.dtype, {c.out_channels}));
  sync(launch_conv_weight_grad(fn(conv_weight_grad_kernel(names_, c.dtype)), gy.tensor, x.tensor,
                               gw.tensor, params_of(c), c.transposed, nullptr));
  sync(launch_conv_bias_grad(fn(conv_bias_grad_kernel(names_, c.dtype)), gy.tensor, gb.tensor,
                             nullptr));
  expect_close(gw.read(), std::vector<double>(static_cast<size_t>(shape_numel(ws)), 0.0), 0.0,
               "grad_weight");
  expect_close(gb.read(), std::vector<double>(static_cast<size_t>(c.out_channels), 0.0), 0.0,
               "grad_bias");
}

// A reduction long enough that every lane of the warp sums many pairs.
TEST_F(ConvDirectGpuTest, LongWeightGradientSums) {
  const Case c{"long",   DType::kFloat32, false,  4,      2,      3,     1,
               {40, 37}, {3, 3},          {1, 1}, {1, 1}, {1, 1}, {0, 0}};
  const Shape xs = input_sizes(c), ys = output_sizes(c), ws = weight_sizes(c);
  ASSIGN_OR_FAIL(DeviceTensor x, random_view(c.dtype, xs, {}, 51));
  ASSIGN_OR_FAIL(DeviceTensor gy, random_view(c.dtype, ys, {}, 52));
  ASSIGN_OR_FAIL(DeviceTensor gw, device_output(c.dtype, ws));
  sync(launch_conv_weight_grad(fn(conv_weight_grad_kernel(names_, c.dtype)), gy.tensor, x.tensor,
                               gw.tensor, params_of(c), false, nullptr));
  expect_close(gw.read(), reference_weight_grad(geometry(c), gy.values(), x.values()), 1e-4,
               "grad_weight");
}

}  // namespace
}  // namespace kiln::cuda
