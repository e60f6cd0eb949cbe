// The extra pooling family on the GPU against a plain CPU reference written from PyTorch's rules
// (forward windows, and the backward ops as scatters, the opposite of the kernels' gathers):
// ceil_mode, padding, dilation, count_include_pad=False, divisor_override, NaN and ties, unbatched
// and 2-D tensors through pool_view_5d, channels-last and strided views, outputs written with
// their strides. Skipped without a CUDA device.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda/kernel_library_pooling_extra.h"
#include "cuda/kernel_module.h"
#include "cuda/nvrtc_compiler.h"
#include "kernel_library_support.h"

namespace kiln::cuda {
namespace {

using namespace kltest;

// --- the CPU reference, over logical [N, C, D, H, W] values -----------------------------------

struct Dims {
  int64_t n, c, d, h, w;
  Shape shape() const { return {n, c, d, h, w}; }
  int64_t volume() const { return d * h * w; }
  int64_t spatial(int i) const { return i == 0 ? d : i == 1 ? h : w; }
};
Dims dims_of(const Shape& s) { return {s[0], s[1], s[2], s[3], s[4]}; }

int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t span = in + 2 * p - d * (k - 1) - 1;
  int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}
Dims pooled(const Dims& in, const Pool3dParams& p, bool ceil_mode) {
  int64_t o[3];
  for (int i = 0; i < 3; ++i) {
    o[i] = pooled_size(in.spatial(i), p.kernel[i], p.stride[i], p.padding[i], p.dilation[i],
                       ceil_mode);
  }
  return {in.n, in.c, o[0], o[1], o[2]};
}

// Calls f(plane, od, oh, ow, out_index) for every output element in row-major order.
template <typename F>
void for_each_output(const Dims& out, F f) {
  int64_t o = 0;
  for (int64_t plane = 0; plane < out.n * out.c; ++plane) {
    for (int64_t z = 0; z < out.d; ++z) {
      for (int64_t y = 0; y < out.h; ++y) {
        for (int64_t x = 0; x < out.w; ++x) f(plane, z, y, x, o++);
      }
    }
  }
}

// Max pooling: values and indices (the window's first in-bounds position until something beats
// -inf; a NaN replaces whatever came before).
void cpu_max_pool(const std::vector<double>& xv, const Dims& in, const Dims& out,
                  const Pool3dParams& p, std::vector<double>& values,
                  std::vector<double>& indices) {
  values.assign(shape_numel(out.shape()), 0);
  indices.assign(values.size(), 0);
  for_each_output(out, [&](int64_t plane, int64_t oz, int64_t oy, int64_t ox, int64_t o) {
    double best = -kInf;
    int64_t best_index = -1;
    const int64_t at[3] = {oz, oy, ox};
    for (int64_t i = 0; i < p.kernel[0]; ++i) {
      for (int64_t j = 0; j < p.kernel[1]; ++j) {
        for (int64_t k = 0; k < p.kernel[2]; ++k) {
          const int64_t step[3] = {i, j, k};
          int64_t pos[3];
          bool inside = true;
          for (int e = 0; e < 3; ++e) {
            pos[e] = at[e] * p.stride[e] - p.padding[e] + step[e] * p.dilation[e];
            inside = inside && pos[e] >= 0 && pos[e] < in.spatial(e);
          }
          if (!inside) continue;
          const int64_t flat = (pos[0] * in.h + pos[1]) * in.w + pos[2];
          const double v = xv[plane * in.volume() + flat];
          if (best_index < 0) best_index = flat;
          if (v > best || std::isnan(v)) {
            best = v;
            best_index = flat;
          }
        }
      }
    }
    values[o] = best;
    indices[o] = static_cast<double>(best_index);
  });
}

struct AvgWindow {
  int64_t lo[3], hi[3], divisor;
};
AvgWindow avg_window(const Dims& in, const Pool3dParams& p, const int64_t (&at)[3]) {
  AvgWindow w{};
  int64_t padded = 1, inside = 1;
  for (int e = 0; e < 3; ++e) {
    const int64_t start = at[e] * p.stride[e] - p.padding[e];
    const int64_t end = std::min(start + p.kernel[e], in.spatial(e) + p.padding[e]);
    padded *= end - start;
    w.lo[e] = std::max<int64_t>(start, 0);
    w.hi[e] = std::min(end, in.spatial(e));
    inside *= std::max<int64_t>(w.hi[e] - w.lo[e], 0);
  }
  w.divisor = p.divisor_override ? p.divisor_override : p.count_include_pad ? padded : inside;
  return w;
}

std::vector<double> cpu_avg_pool(const std::vector<double>& xv, const Dims& in, const Dims& out,
                                 const Pool3dParams& p) {
  std::vector<double> y(shape_numel(out.shape()), 0);
  for_each_output(out, [&](int64_t plane, int64_t oz, int64_t oy, int64_t ox, int64_t o) {
    const AvgWindow w = avg_window(in, p, {oz, oy, ox});
    double sum = 0;
    for (int64_t z = w.lo[0]; z < w.hi[0]; ++z) {
      for (int64_t yy = w.lo[1]; yy < w.hi[1]; ++yy) {
        for (int64_t x = w.lo[2]; x < w.hi[2]; ++x) sum += xv[plane * in.volume() + (z * in.h + yy) * in.w + x];
      }
    }
    y[o] = sum / static_cast<double>(w.divisor);
  });
  return y;
}

int64_t adaptive_lo(int64_t o, int64_t outs, int64_t ins) { return (o * ins) / outs; }
int64_t adaptive_hi(int64_t o, int64_t outs, int64_t ins) {
  return ((o + 1) * ins + outs - 1) / outs;
}

std::vector<double> cpu_adaptive_avg_pool(const std::vector<double>& xv, const Dims& in,
                                          const Dims& out) {
  std::vector<double> y(shape_numel(out.shape()), 0);
  for_each_output(out, [&](int64_t plane, int64_t oz, int64_t oy, int64_t ox, int64_t o) {
    const int64_t at[3] = {oz, oy, ox};
    int64_t lo[3], hi[3], count = 1;
    for (int e = 0; e < 3; ++e) {
      lo[e] = adaptive_lo(at[e], out.spatial(e), in.spatial(e));
      hi[e] = adaptive_hi(at[e], out.spatial(e), in.spatial(e));
      count *= hi[e] - lo[e];
    }
    double sum = 0;
    for (int64_t z = lo[0]; z < hi[0]; ++z) {
      for (int64_t yy = lo[1]; yy < hi[1]; ++yy) {
        for (int64_t x = lo[2]; x < hi[2]; ++x) sum += xv[plane * in.volume() + (z * in.h + yy) * in.w + x];
      }
    }
    y[o] = sum / static_cast<double>(count);
  });
  return y;
}

// The backward ops as scatters of each output's gradient over its window.
std::vector<double> cpu_avg_pool_backward(const std::vector<double>& g, const Dims& in,
                                          const Dims& out, const Pool3dParams& p) {
  std::vector<double> gi(shape_numel(in.shape()), 0);
  for_each_output(out, [&](int64_t plane, int64_t oz, int64_t oy, int64_t ox, int64_t o) {
    const AvgWindow w = avg_window(in, p, {oz, oy, ox});
    for (int64_t z = w.lo[0]; z < w.hi[0]; ++z) {
      for (int64_t y = w.lo[1]; y < w.hi[1]; ++y) {
        for (int64_t x = w.lo[2]; x < w.hi[2]; ++x) {
          gi[plane * in.volume() + (z * in.h + y) * in.w + x] += g[o] / w.divisor;
        }
      }
    }
  });
  return gi;
}

std::vector<double> cpu_max_pool_backward(const std::vector<double>& g,
                                          const std::vector<double>& indices, const Dims& in,
                                          const Dims& out) {
  std::vector<double> gi(shape_numel(in.shape()), 0);
  for_each_output(out, [&](int64_t plane, int64_t, int64_t, int64_t, int64_t o) {
    const int64_t i = static_cast<int64_t>(indices[o]);
    if (i >= 0 && i < in.volume()) gi[plane * in.volume() + i] += g[o];
  });
  return gi;
}

std::vector<double> cpu_adaptive_backward(const std::vector<double>& g, const Dims& in,
                                          const Dims& out) {
  std::vector<double> gi(shape_numel(in.shape()), 0);
  for_each_output(out, [&](int64_t plane, int64_t oz, int64_t oy, int64_t ox, int64_t o) {
    const int64_t at[3] = {oz, oy, ox};
    int64_t lo[3], hi[3], count = 1;
    for (int e = 0; e < 3; ++e) {
      lo[e] = adaptive_lo(at[e], out.spatial(e), in.spatial(e));
      hi[e] = adaptive_hi(at[e], out.spatial(e), in.spatial(e));
      count *= hi[e] - lo[e];
    }
    for (int64_t z = lo[0]; z < hi[0]; ++z) {
      for (int64_t y = lo[1]; y < hi[1]; ++y) {
        for (int64_t x = lo[2]; x < hi[2]; ++x) {
          gi[plane * in.volume() + (z * in.h + y) * in.w + x] += g[o] / count;
        }
      }
    }
  });
  return gi;
}

// --- device tensors ---------------------------------------------------------------------------

// Strides of `sizes` laid out in `order` (outermost first), e.g. {0, 2, 3, 4, 1}: channels-last.
Shape strides_in_order(const Shape& sizes, const std::vector<int>& order) {
  Shape strides(sizes.size());
  int64_t step = 1;
  for (size_t i = order.size(); i-- > 0;) {
    strides[order[i]] = step;
    step *= sizes[order[i]];
  }
  return strides;
}
const std::vector<int> kNcdhw = {0, 1, 2, 3, 4};
const std::vector<int> kChannelsLast = {0, 2, 3, 4, 1};

// A device tensor of `sizes` in `order`, with random values (some NaN when `nans`; rounded
// to few values when `ties`).
DeviceTensor random_tensor(DType dtype, const Shape& sizes, const std::vector<int>& order,
                           uint32_t seed, bool nans = false, bool ties = false) {
  std::vector<double> v = random_values(shape_numel(sizes), seed);
  for (size_t i = 0; i < v.size(); ++i) {
    if (ties) v[i] = std::round(v[i]);
    if (nans && i % 11 == 3) v[i] = kNan;
  }
  auto t = upload(v, dtype, sizes, strides_in_order(sizes, order));
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  return t.ok() ? *t : DeviceTensor{};
}

// A sentinel exact in every float dtype (bfloat16 keeps 8 significant bits: -777 would be -776).
constexpr double kSentinel = -776.0;

// An output filled with the sentinel; `gap` > 0 leaves unused elements between W rows (strided).
DeviceTensor output_tensor(DType dtype, const Shape& sizes, const std::vector<int>& order,
                           int64_t gap = 0) {
  Shape padded = sizes;
  padded[4] += gap;
  Shape strides = strides_in_order(padded, order);
  auto t = upload(std::vector<double>(shape_numel(padded), kSentinel), dtype, sizes, strides);
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  return t.ok() ? *t : DeviceTensor{};
}

// Elements of `t`'s storage that its view does not cover still hold the sentinel.
void expect_gaps_untouched(const DeviceTensor& t, const std::string& what) {
  const std::vector<double> all = t.read_storage();
  std::vector<bool> covered(all.size(), false);
  for (int64_t at : view_offsets(t.tensor.sizes(), t.tensor.strides(), t.tensor.offset())) {
    covered[at] = true;
  }
  for (size_t i = 0; i < all.size(); ++i) {
    if (!covered[i]) {
      ASSERT_EQ(all[i], kSentinel) << what << ": wrote storage element " << i << " outside the view";
    }
  }
}

// --- the fixture: this family's kernels, compiled once for the device -------------------------

const GpuModule& pooling_module() {
  static const GpuModule state = load_gpu_module([] {
    ModuleSource source;
    for (DType t : kFloatTypes) {
      pool3d_kernel(source, PoolKind::kMax, t);
      pool3d_kernel(source, PoolKind::kAvg, t);
      adaptive_avg_pool3d_kernel(source, t);
      avg_pool_backward_kernel(source, t);
      max_pool_backward_kernel(source, t);
      adaptive_avg_pool_backward_kernel(source, t);
    }
    return source.text();
  }());
  return state;
}

class PoolingExtraGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const GpuModule& m = pooling_module();
    if (!m.skip_reason.empty()) GTEST_SKIP() << m.skip_reason;
    ASSERT_NE(m.module, nullptr) << m.error;
  }
  static cudaKernel_t fn(const std::string& name) {
    auto kernel = pooling_module().module->kernel(name);
    EXPECT_TRUE(kernel.ok()) << kernel.status().to_string();
    return kernel.ok() ? *kernel : nullptr;
  }
  static void sync(const Status& launched) {
    ASSERT_TRUE(launched.ok()) << launched.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }
  ModuleSource names_;
};

Pool3dParams window(std::vector<int64_t> k, std::vector<int64_t> s, std::vector<int64_t> p,
                    std::vector<int64_t> d = {1, 1, 1}) {
  Pool3dParams params;
  for (int i = 0; i < 3; ++i) {
    params.kernel[i] = k[i];
    params.stride[i] = s[i];
    params.padding[i] = p[i];
    params.dilation[i] = d[i];
  }
  return params;
}

struct MaxCase {
  std::string name;
  Shape in;
  Pool3dParams params;
  bool ceil_mode;
};

TEST_F(PoolingExtraGpuTest, MaxPool3dValuesAndIndices) {
  const std::vector<MaxCase> cases = {
      {"plain", {2, 3, 4, 6, 6}, window({2, 2, 2}, {2, 2, 2}, {0, 0, 0}), false},
      {"padded ceil", {1, 2, 5, 7, 6}, window({3, 3, 2}, {2, 2, 2}, {1, 1, 1}), true},
      {"dilated", {2, 2, 6, 7, 8}, window({2, 3, 2}, {1, 2, 3}, {1, 1, 0}, {2, 2, 3}), false},
      {"dilated ceil", {1, 3, 5, 5, 9}, window({2, 2, 3}, {2, 3, 2}, {1, 0, 1}, {1, 2, 2}), true},
      {"2-D as D=1", {2, 4, 1, 9, 7}, window({1, 3, 3}, {1, 2, 2}, {0, 1, 1}), true},
  };
  uint32_t seed = 1;
  for (DType t : kFloatTypes) {
    const std::string kernel = pool3d_kernel(names_, PoolKind::kMax, t);
    for (const MaxCase& c : cases) {
      for (const auto* order : {&kNcdhw, &kChannelsLast}) {
        for (int variant = 0; variant < 3; ++variant) {  // plain, NaN, ties
          const std::string what =
              str_cat(dtype_name(t), " ", c.name, order == &kNcdhw ? " ncdhw" : " channels-last",
                      variant == 1 ? " nan" : variant == 2 ? " ties" : "");
          DeviceTensor x = random_tensor(t, c.in, *order, seed++, variant == 1, variant == 2);
          const Dims in = dims_of(c.in), out = pooled(in, c.params, c.ceil_mode);
          DeviceTensor y = output_tensor(t, out.shape(), *order, order == &kNcdhw ? 2 : 0);
          DeviceTensor i = output_tensor(DType::kInt64, out.shape(), kNcdhw);
          sync(launch_pool3d(fn(kernel), x.tensor, y.tensor, &i.tensor, c.params, nullptr));
          std::vector<double> values, indices;
          cpu_max_pool(x.values(), in, out, c.params, values, indices);
          expect_close(y.read(), values, 0.0, what + " values");  // a max is exact
          expect_close(i.read(), indices, 0.0, what + " indices");
          expect_gaps_untouched(y, what);
        }
      }
    }
  }
}

// Unbatched [C, D, H, W] through pool_view_5d, with unused values (no data): only the indices are
// written.
TEST_F(PoolingExtraGpuTest, MaxPool3dUnbatchedIndicesOnly) {
  const DType t = DType::kFloat32;
  const Pool3dParams p = window({2, 2, 2}, {1, 2, 2}, {1, 0, 1});
  DeviceTensor x = random_tensor(t, {1, 3, 4, 5, 6}, kNcdhw, 7);
  const Tensor x4 = x.tensor.view_as({3, 4, 5, 6}, {120, 30, 6, 1}, 0);
  const Dims in = dims_of({1, 3, 4, 5, 6}), out = pooled(in, p, false);
  DeviceTensor i = output_tensor(DType::kInt64, out.shape(), kNcdhw);
  const Shape& i_strides = i.tensor.strides();
  const Tensor i4 =
      i.tensor.view_as({out.c, out.d, out.h, out.w}, Shape(i_strides.begin() + 1, i_strides.end()), 0);
  const Tensor no_values = Tensor::meta(t, out.shape());
  const std::optional<Tensor> x5 = pool_view_5d(x4, 3), i5 = pool_view_5d(i4, 3);
  ASSERT_TRUE(x5 && i5);
  sync(launch_pool3d(fn(pool3d_kernel(names_, PoolKind::kMax, t)), *x5, no_values, &*i5, p,
                     nullptr));
  std::vector<double> values, indices;
  cpu_max_pool(x.values(), in, out, p, values, indices);
  expect_close(i.read(), indices, 0.0, "unbatched indices");
}

struct AvgCase {
  std::string name;
  Shape in;
  Pool3dParams params;
  bool ceil_mode;
};
std::vector<AvgCase> avg_cases() {
  std::vector<AvgCase> cases = {
      {"plain", {2, 3, 4, 6, 6}, window({2, 2, 2}, {2, 2, 2}, {0, 0, 0}), false},
      {"padded", {1, 2, 5, 7, 6}, window({3, 3, 2}, {2, 2, 1}, {1, 1, 1}), false},
      {"padded ceil", {2, 2, 5, 7, 8}, window({3, 2, 3}, {2, 2, 2}, {1, 1, 1}), true},
      {"overlapping", {1, 3, 6, 5, 7}, window({3, 3, 3}, {1, 1, 2}, {1, 0, 1}), true},
      {"2-D as D=1", {2, 4, 1, 9, 7}, window({1, 3, 3}, {1, 2, 2}, {0, 1, 1}), true},
  };
  std::vector<AvgCase> all;
  for (const AvgCase& c : cases) {
    for (int mode = 0; mode < 3; ++mode) {  // count_include_pad, not, divisor_override
      AvgCase v = c;
      v.params.count_include_pad = mode != 1;
      v.params.divisor_override = mode == 2 ? 5 : 0;
      v.name += mode == 0 ? "" : mode == 1 ? " exclude pad" : " divisor 5";
      all.push_back(v);
    }
  }
  return all;
}

TEST_F(PoolingExtraGpuTest, AvgPool3d) {
  uint32_t seed = 100;
  for (DType t : kFloatTypes) {
    const std::string kernel = pool3d_kernel(names_, PoolKind::kAvg, t);
    for (const AvgCase& c : avg_cases()) {
      for (const auto* order : {&kNcdhw, &kChannelsLast}) {
        const std::string what = str_cat(dtype_name(t), " ", c.name,
                                         order == &kNcdhw ? " ncdhw" : " channels-last");
        DeviceTensor x = random_tensor(t, c.in, *order, seed++, c.name == "plain");
        const Dims in = dims_of(c.in), out = pooled(in, c.params, c.ceil_mode);
        DeviceTensor y = output_tensor(t, out.shape(), *order == kNcdhw ? kChannelsLast : kNcdhw,
                                       1);
        sync(launch_pool3d(fn(kernel), x.tensor, y.tensor, nullptr, c.params, nullptr));
        expect_close(y.read(), rounded(cpu_avg_pool(x.values(), in, out, c.params), t),
                     tolerance(t), what);
        expect_gaps_untouched(y, what);
      }
    }
  }
}

TEST_F(PoolingExtraGpuTest, AdaptiveAvgPool3d) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{2, 3, 4, 6, 6}, {2, 3, 2, 3, 3}},  // even windows
      {{1, 2, 5, 7, 6}, {1, 2, 3, 4, 4}},  // overlapping windows
      {{2, 2, 3, 3, 4}, {2, 2, 5, 6, 7}},  // more outputs than inputs
      {{1, 3, 7, 5, 9}, {1, 3, 1, 1, 1}},  // global
  };
  uint32_t seed = 200;
  for (DType t : kFloatTypes) {
    const std::string kernel = adaptive_avg_pool3d_kernel(names_, t);
    for (const auto& [in_shape, out_shape] : cases) {
      for (const auto* order : {&kNcdhw, &kChannelsLast}) {
        const std::string what = str_cat(dtype_name(t), " ", shape_to_string(in_shape), " -> ",
                                         shape_to_string(out_shape));
        DeviceTensor x = random_tensor(t, in_shape, *order, seed++);
        DeviceTensor y = output_tensor(t, out_shape, *order, 1);
        sync(launch_adaptive_avg_pool3d(fn(kernel), x.tensor, y.tensor, nullptr));
        expect_close(y.read(),
                     rounded(cpu_adaptive_avg_pool(x.values(), dims_of(in_shape),
                                                   dims_of(out_shape)),
                             t),
                     tolerance(t), what);
        expect_gaps_untouched(y, what);
      }
    }
  }
}

// The backward kernels on 2-D pools (D = 1) and on 3-D windows (the kernels are 3-D).
TEST_F(PoolingExtraGpuTest, AvgPool2dBackward) {
  uint32_t seed = 300;
  for (DType t : kFloatTypes) {
    const std::string kernel = avg_pool_backward_kernel(names_, t);
    for (const AvgCase& c : avg_cases()) {
      for (const auto* order : {&kNcdhw, &kChannelsLast}) {
        const std::string what = str_cat(dtype_name(t), " ", c.name,
                                         order == &kNcdhw ? " ncdhw" : " channels-last");
        const Dims in = dims_of(c.in), out = pooled(in, c.params, c.ceil_mode);
        DeviceTensor g = random_tensor(t, out.shape(), *order, seed++);
        DeviceTensor gi = output_tensor(t, in.shape(), *order == kNcdhw ? kChannelsLast : kNcdhw,
                                        2);
        sync(launch_avg_pool_backward(fn(kernel), g.tensor, gi.tensor, c.params, nullptr));
        // fp16/bf16 round each window's share before adding (PyTorch's `scalar_t / int`).
        expect_close(gi.read(), cpu_avg_pool_backward(g.values(), in, out, c.params),
                     2 * tolerance(t), what);
        expect_gaps_untouched(gi, what);
      }
    }
  }
}

TEST_F(PoolingExtraGpuTest, MaxPool2dWithIndicesBackward) {
  const std::vector<MaxCase> cases = {
      {"plain", {2, 3, 1, 8, 8}, window({1, 2, 2}, {1, 2, 2}, {0, 0, 0}), false},
      {"overlapping", {2, 2, 1, 7, 9}, window({1, 3, 3}, {1, 1, 2}, {0, 1, 1}), false},
      {"dilated ceil", {1, 3, 1, 9, 8}, window({1, 3, 2}, {1, 2, 2}, {0, 1, 1}, {1, 2, 2}), true},
      {"3-D windows", {1, 2, 5, 6, 7}, window({2, 3, 2}, {1, 2, 1}, {1, 1, 0}, {2, 1, 2}), true},
  };
  uint32_t seed = 400;
  for (DType t : kFloatTypes) {
    const std::string kernel = max_pool_backward_kernel(names_, t);
    for (const MaxCase& c : cases) {
      for (int variant = 0; variant < 3; ++variant) {  // plain, ties, channels-last grad_in
        const std::string what = str_cat(dtype_name(t), " ", c.name, " variant ", variant);
        const Dims in = dims_of(c.in), out = pooled(in, c.params, c.ceil_mode);
        DeviceTensor x = random_tensor(t, c.in, kNcdhw, seed++, false, variant == 1);
        std::vector<double> values, indices;
        cpu_max_pool(x.values(), in, out, c.params, values, indices);
        auto idx = upload(indices, DType::kInt64, out.shape());
        ASSERT_TRUE(idx.ok());
        const auto& order = variant == 2 ? kChannelsLast : kNcdhw;
        DeviceTensor g = random_tensor(t, out.shape(), order, seed++);
        DeviceTensor gi = output_tensor(t, in.shape(), order, 1);
        sync(launch_max_pool_backward(fn(kernel), g.tensor, idx->tensor, gi.tensor, c.params,
                                      nullptr));
        expect_close(gi.read(),
                     rounded(cpu_max_pool_backward(g.values(), indices, in, out), t),
                     tolerance(t), what);
        expect_gaps_untouched(gi, what);
      }
    }
  }
}

// Indices that name no position of their own window (or none at all) add nothing: no fault.
TEST_F(PoolingExtraGpuTest, MaxPoolBackwardIgnoresForeignIndices) {
  const DType t = DType::kFloat32;
  const Pool3dParams p = window({1, 2, 2}, {1, 2, 2}, {0, 0, 0});
  const Dims in{1, 1, 1, 4, 4}, out = pooled(in, p, false);
  // Output (0, 0) names 0 (its own), (0, 1) names 0 (another window's), (1, 0) names -3, (1, 1)
  // names 99.
  auto idx = upload({0, 0, -3, 99}, DType::kInt64, out.shape());
  ASSERT_TRUE(idx.ok());
  auto g = upload({1, 2, 4, 8}, t, out.shape());
  ASSERT_TRUE(g.ok());
  DeviceTensor gi = output_tensor(t, in.shape(), kNcdhw);
  sync(launch_max_pool_backward(fn(max_pool_backward_kernel(names_, t)), g->tensor, idx->tensor,
                                gi.tensor, p, nullptr));
  std::vector<double> expected(16, 0.0);
  expected[0] = 1;
  expect_close(gi.read(), expected, 0.0, "foreign indices");
}

TEST_F(PoolingExtraGpuTest, AdaptiveAvgPool2dBackward) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{2, 3, 1, 6, 6}, {2, 3, 1, 3, 3}},
      {{1, 2, 1, 7, 6}, {1, 2, 1, 4, 4}},
      {{2, 2, 1, 3, 4}, {2, 2, 1, 6, 7}},
      {{1, 3, 1, 5, 9}, {1, 3, 1, 1, 1}},
      {{1, 2, 4, 5, 3}, {1, 2, 3, 2, 2}},  // 3-D windows
  };
  uint32_t seed = 500;
  for (DType t : kFloatTypes) {
    const std::string kernel = adaptive_avg_pool_backward_kernel(names_, t);
    for (const auto& [in_shape, out_shape] : cases) {
      for (const auto* order : {&kNcdhw, &kChannelsLast}) {
        const std::string what = str_cat(dtype_name(t), " ", shape_to_string(in_shape), " <- ",
                                         shape_to_string(out_shape));
        DeviceTensor g = random_tensor(t, out_shape, *order, seed++);
        DeviceTensor gi = output_tensor(t, in_shape, *order, 2);
        sync(launch_adaptive_avg_pool_backward(fn(kernel), g.tensor, gi.tensor, nullptr));
        expect_close(gi.read(),
                     cpu_adaptive_backward(g.values(), dims_of(in_shape), dims_of(out_shape)),
                     2 * tolerance(t), what);
        expect_gaps_untouched(gi, what);
      }
    }
  }
}

// An adaptive backward whose grad_output has no spatial elements writes zeros.
TEST_F(PoolingExtraGpuTest, AdaptiveBackwardOfEmptyOutputWritesZeros) {
  const DType t = DType::kFloat16;
  auto g = upload({}, t, {1, 2, 1, 0, 3});
  ASSERT_TRUE(g.ok());
  DeviceTensor gi = output_tensor(t, {1, 2, 1, 4, 4}, kNcdhw);
  sync(launch_adaptive_avg_pool_backward(fn(adaptive_avg_pool_backward_kernel(names_, t)),
                                         g->tensor, gi.tensor, nullptr));
  expect_close(gi.read(), std::vector<double>(32, 0.0), 0.0, "empty grad_output");
}

}  // namespace
}  // namespace kiln::cuda
