// The kernel library on the GPU, pooling, gathers and data movement, against simple CPU
// computations, strided views included. Skipped without a CUDA device.
#include "cuda/kernel_library.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/kernel_module.h"
#include "cuda/nvrtc_compiler.h"
#include "kernel_library_support.h"

namespace kiln::cuda {
namespace {

using namespace kltest;

// --- pooling on the GPU -----------------------------------------------------------------------

int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t span = in + 2 * p - d * (k - 1) - 1;
  int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

// CPU pooling of logical NCHW values (PyTorch's rules, as in kiln's CPU backend).
std::vector<double> cpu_pool(const std::vector<double>& x, const Shape& in, const Shape& out,
                             const Pool2dParams& p, int kind) {  // 0 max, 1 avg, 2 adaptive
  std::vector<double> y;
  const int64_t H = in[2], W = in[3], Ho = out[2], Wo = out[3];
  for (int64_t plane = 0; plane < in[0] * in[1]; ++plane) {
    const double* xp = x.data() + plane * H * W;
    for (int64_t oh = 0; oh < Ho; ++oh) {
      for (int64_t ow = 0; ow < Wo; ++ow) {
        if (kind == 0) {
          double best = -kInf;
          for (int64_t i = 0; i < p.kernel[0]; ++i) {
            for (int64_t j = 0; j < p.kernel[1]; ++j) {
              const int64_t h = oh * p.stride[0] - p.padding[0] + i * p.dilation[0];
              const int64_t w = ow * p.stride[1] - p.padding[1] + j * p.dilation[1];
              if (h < 0 || h >= H || w < 0 || w >= W) continue;
              const double v = xp[h * W + w];
              if (v > best || std::isnan(v)) best = std::isnan(best) ? best : v;
            }
          }
          y.push_back(best);
        } else if (kind == 1) {
          int64_t h0 = oh * p.stride[0] - p.padding[0], w0 = ow * p.stride[1] - p.padding[1];
          int64_t h1 = std::min(h0 + p.kernel[0], H + p.padding[0]);
          int64_t w1 = std::min(w0 + p.kernel[1], W + p.padding[1]);
          const int64_t padded = (h1 - h0) * (w1 - w0);
          h0 = std::max<int64_t>(h0, 0), w0 = std::max<int64_t>(w0, 0);
          h1 = std::min(h1, H), w1 = std::min(w1, W);
          double sum = 0;
          for (int64_t h = h0; h < h1; ++h) {
            for (int64_t w = w0; w < w1; ++w) sum += xp[h * W + w];
          }
          const int64_t divisor = p.divisor_override    ? p.divisor_override
                                  : p.count_include_pad ? padded
                                                        : (h1 - h0) * (w1 - w0);
          y.push_back(h0 >= h1 || w0 >= w1 ? 0.0 : sum / static_cast<double>(divisor));
        } else {
          const int64_t h0 = oh * H / Ho, h1 = ((oh + 1) * H + Ho - 1) / Ho;
          const int64_t w0 = ow * W / Wo, w1 = ((ow + 1) * W + Wo - 1) / Wo;
          double sum = 0;
          for (int64_t h = h0; h < h1; ++h) {
            for (int64_t w = w0; w < w1; ++w) sum += xp[h * W + w];
          }
          y.push_back(sum / static_cast<double>((h1 - h0) * (w1 - w0)));
        }
      }
    }
  }
  return y;
}

Shape nhwc_strides(const Shape& s) {
  return {s[1] * s[2] * s[3], 1, s[3] * s[1], s[1]};
}

class PoolGpuTest : public KernelLibraryGpuTest {
 protected:
  // kind: 0 max, 1 avg, 2 adaptive (out_hw gives the output size then).
  void run(const std::string& what, int kind, DType dtype, Shape in, bool channels_last,
           Pool2dParams p, bool ceil_mode = false, Shape out_hw = {},
           std::vector<std::pair<int64_t, double>> pokes = {}) {
    SCOPED_TRACE(what);
    const Shape in_strides = channels_last ? nhwc_strides(in) : contiguous_strides(in);
    std::vector<double> values = random_values(shape_numel(in), 23, -5, 5);
    const std::vector<int64_t> offsets = view_offsets(in, in_strides);
    for (const auto& [element, value] : pokes) values[offsets[element]] = value;
    ASSIGN_OR_FAIL(DeviceTensor x, upload(values, dtype, in, in_strides));
    Shape out = {in[0], in[1], 0, 0};
    if (kind == 2) {
      out[2] = out_hw[0], out[3] = out_hw[1];
    } else {
      for (int i = 0; i < 2; ++i) {
        out[2 + i] = pooled_size(in[2 + i], p.kernel[i], p.stride[i], p.padding[i], p.dilation[i],
                                 ceil_mode);
      }
    }
    ASSIGN_OR_FAIL(DeviceTensor y, device_output(dtype, out));
    if (kind == 2) {
      sync(launch_adaptive_avg_pool2d(fn(adaptive_avg_pool2d_kernel(names_, dtype)), x.tensor,
                                      y.tensor, nullptr));
    } else {
      const PoolKind pk = kind == 0 ? PoolKind::kMax : PoolKind::kAvg;
      sync(launch_pool2d(fn(pool2d_kernel(names_, pk, dtype)), x.tensor, y.tensor, p, nullptr));
    }
    expect_close(y.read(), rounded(cpu_pool(x.values(), in, out, p, kind), dtype),
                 dtype == DType::kFloat32 ? 1e-5 : tolerance(dtype), what);
  }
  static Pool2dParams window(int64_t k, int64_t s, int64_t pad, int64_t dilation = 1) {
    Pool2dParams p;
    for (int i = 0; i < 2; ++i) {
      p.kernel[i] = k, p.stride[i] = s, p.padding[i] = pad, p.dilation[i] = dilation;
    }
    return p;
  }
};

TEST_F(PoolGpuTest, MaxPool) {
  const DType f32 = DType::kFloat32;
  run("nchw padded, nan", 0, f32, {2, 3, 9, 11}, false, window(3, 2, 1), false, {},
      {{5, kNan}, {100, kInf}});
  run("nhwc dilated", 0, f32, {2, 5, 10, 12}, true, window(3, 1, 1, 2));
  run("ceil mode", 0, DType::kFloat16, {1, 4, 7, 7}, false, window(2, 2, 0), true);
  Pool2dParams asym = window(3, 2, 1);
  asym.kernel[1] = 2, asym.stride[1] = 3, asym.padding[1] = 0;
  run("asymmetric nhwc", 0, DType::kBFloat16, {1, 8, 11, 13}, true, asym);
}

TEST_F(PoolGpuTest, AvgPool) {
  const DType f32 = DType::kFloat32;
  run("ceil mode, include pad", 1, f32, {1, 2, 5, 5}, false, window(2, 2, 0), true);
  Pool2dParams exclude = window(3, 2, 1);
  exclude.count_include_pad = false;
  run("ceil mode, exclude pad", 1, f32, {2, 3, 6, 6}, false, exclude, true);
  run("ceil mode, padded, include pad", 1, f32, {1, 2, 6, 6}, true, window(3, 2, 1), true);
  Pool2dParams divisor = window(2, 1, 1);
  divisor.divisor_override = 3;
  run("divisor override", 1, f32, {1, 3, 4, 5}, false, divisor);
  run("f16 nhwc", 1, DType::kFloat16, {2, 16, 8, 8}, true, window(2, 2, 0));
}

TEST_F(PoolGpuTest, AdaptiveAvgPool) {
  run("7 to 3", 2, DType::kFloat32, {2, 3, 7, 7}, false, {}, false, {3, 3});
  run("nhwc 5x8 to 2x3", 2, DType::kFloat32, {1, 6, 5, 8}, true, {}, false, {2, 3});
  run("global f16", 2, DType::kFloat16, {2, 64, 7, 7}, true, {}, false, {1, 1});
  run("upsampling", 2, DType::kFloat32, {1, 1, 3, 2}, false, {}, false, {5, 4});
}

// --- gathers on the GPU -----------------------------------------------------------------------

TEST_F(KernelLibraryGpuTest, EmbeddingOutOfRangeGivesZeros) {
  struct Case {
    DType weight, index;
    int64_t vocab, dim;
  };
  for (const Case& c :
       {Case{DType::kFloat16, DType::kInt64, 10, 16}, Case{DType::kFloat32, DType::kInt32, 10, 3},
        Case{DType::kBFloat16, DType::kInt64, 10, 5},
        Case{DType::kFloat32, DType::kInt64, 10, 300}}) {
    SCOPED_TRACE(str_cat(dtype_name(c.weight), " D=", c.dim));
    ASSIGN_OR_FAIL(DeviceTensor w,
                   upload(random_values(c.vocab * c.dim, 29), c.weight, {c.vocab, c.dim}));
    // Indices as a transposed [3, 2] view of [2, 3] storage.
    const std::vector<double> ids = {0, 9, -1, 10, 3, 3};
    ASSIGN_OR_FAIL(DeviceTensor i, upload(ids, c.index, {3, 2}, {1, 3}));
    ASSIGN_OR_FAIL(DeviceTensor y, device_output(c.weight, {3, 2, c.dim}));
    sync(launch_embedding(fn(embedding_kernel(names_, c.weight, c.index)), w.tensor, i.tensor,
                          y.tensor, nullptr));
    std::vector<double> expected;
    for (double k : i.values()) {
      for (int64_t d = 0; d < c.dim; ++d) {
        expected.push_back(k >= 0 && k < c.vocab ? w.storage[static_cast<int64_t>(k) * c.dim + d]
                                                 : 0.0);
      }
    }
    expect_close(y.read(), expected, 0.0, "embedding");
  }
}

TEST_F(KernelLibraryGpuTest, IndexSelectWrapsNegativesAndZeroesOutOfRange) {
  for (DType index_dtype : {DType::kInt64, DType::kInt32}) {
    SCOPED_TRACE(dtype_name(index_dtype));
    // in: a transposed [4, 6] view of [6, 4] storage; select along dim 1 (size 6).
    ASSIGN_OR_FAIL(DeviceTensor x, upload(random_values(24, 31), DType::kFloat32, {4, 6}, {1, 4}));
    const std::vector<double> ids = {3, -1, 0, 7, -7, 5};
    ASSIGN_OR_FAIL(DeviceTensor index, upload(ids, index_dtype, {6}));
    ASSIGN_OR_FAIL(DeviceTensor y, device_output(DType::kFloat32, {4, 6}));
    sync(launch_index_select(fn(index_select_kernel(names_, DType::kFloat32, index_dtype)),
                             x.tensor, 1, index.tensor, y.tensor, nullptr));
    const std::vector<double> xv = x.values();
    std::vector<double> expected;
    for (int64_t r = 0; r < 4; ++r) {
      for (double k : ids) {
        const int64_t j =
            static_cast<int64_t>(k) < 0 ? static_cast<int64_t>(k) + 6 : static_cast<int64_t>(k);
        expected.push_back(j >= 0 && j < 6 ? xv[r * 6 + j] : 0.0);
      }
    }
    expect_close(y.read(), expected, 0.0, "index_select");
  }
  // dim 0 of int64 data with int64 indices into a strided output.
  ASSIGN_OR_FAIL(DeviceTensor x, upload({1, 2, 3, 4, 5, 6}, DType::kInt64, {3, 2}));
  ASSIGN_OR_FAIL(DeviceTensor index, upload({2, -3, 2, 3}, DType::kInt64, {4}));
  ASSIGN_OR_FAIL(DeviceTensor y,
                 upload(std::vector<double>(16, -1), DType::kInt64, {4, 2}, {4, 2}));
  sync(launch_index_select(fn(index_select_kernel(names_, DType::kInt64, DType::kInt64)), x.tensor,
                           0, index.tensor, y.tensor, nullptr));
  expect_close(y.read_storage(), {5, -1, 6, -1, 1, -1, 2, -1, 5, -1, 6, -1, 0, -1, 0, -1}, 0.0,
               "strided output");
}

// --- data movement on the GPU -----------------------------------------------------------------

TEST_F(KernelLibraryGpuTest, CopyConvertsAndFollowsStrides) {
  const DType f32 = DType::kFloat32, f16 = DType::kFloat16;
  // f32 -> f16 from a transposed view.
  ASSIGN_OR_FAIL(DeviceTensor a, upload(random_values(35, 37), f32, {7, 5}, {1, 7}));
  ASSIGN_OR_FAIL(DeviceTensor b, device_output(f16, {7, 5}));
  sync(launch_copy(fn(copy_kernel(names_, f32, f16)), a.tensor, b.tensor, nullptr));
  expect_close(b.read(), rounded(a.values(), f16), 0.0, "transposed f32 -> f16");
  // Both contiguous, converted: the flat path.
  ASSIGN_OR_FAIL(DeviceTensor flat_src, upload(random_values(1000, 43), f32, {10, 100}));
  ASSIGN_OR_FAIL(DeviceTensor flat_dst, device_output(DType::kBFloat16, {10, 100}));
  sync(launch_copy(fn(copy_kernel(names_, f32, DType::kBFloat16)), flat_src.tensor, flat_dst.tensor,
                   nullptr));
  expect_close(flat_dst.read(), rounded(flat_src.values(), DType::kBFloat16), 0.0,
               "contiguous f32 -> bf16");
  // A broadcast source (stride 0).
  ASSIGN_OR_FAIL(DeviceTensor row, upload({1, 2, 3, 4, 5}, f32, {4, 5}, {0, 1}));
  ASSIGN_OR_FAIL(DeviceTensor grid, device_output(f32, {4, 5}));
  sync(launch_copy(fn(copy_kernel(names_, f32, f32)), row.tensor, grid.tensor, nullptr));
  expect_close(grid.read(), row.values(), 0.0, "broadcast");
  // Same dtype, both contiguous: a memcpy, no kernel needed.
  ASSIGN_OR_FAIL(DeviceTensor c, upload(random_values(64, 41), f16, {8, 8}));
  ASSIGN_OR_FAIL(DeviceTensor d, device_output(f16, {8, 8}));
  sync(launch_copy(nullptr, c.tensor, d.tensor, nullptr));
  expect_close(d.read(), c.values(), 0.0, "memcpy");
  // Into a slice of a larger tensor (as cat does): columns 2..4 of a [3, 6] tensor.
  ASSIGN_OR_FAIL(DeviceTensor part, upload({1, 2, 3, 4, 5, 6, 7, 8, 9}, f32, {3, 3}));
  ASSIGN_OR_FAIL(DeviceTensor whole, upload(std::vector<double>(18, 0), f32, {3, 3}, {6, 1}, 2));
  sync(launch_copy(fn(copy_kernel(names_, f32, f32)), part.tensor, whole.tensor, nullptr));
  expect_close(whole.read_storage(), {0, 0, 1, 2, 3, 0, 0, 0, 4, 5, 6, 0, 0, 0, 7, 8, 9, 0}, 0.0,
               "slice");
}

TEST_F(KernelLibraryGpuTest, CopyIntegerAndBoolConversions) {
  struct Case {
    DType from, to;
    std::vector<double> in, out;
  };
  const std::vector<Case> cases = {
      {DType::kInt64, DType::kInt32, {-5, 0, 7, 123456}, {-5, 0, 7, 123456}},
      {DType::kFloat32, DType::kBool, {0, -0.0, 2.5, kNan}, {0, 0, 1, 1}},
      {DType::kBool, DType::kFloat32, {1, 0, 1, 0}, {1, 0, 1, 0}},
      {DType::kFloat64, DType::kInt16, {-2.7, 2.7, 0.5, -0.5}, {-2, 2, 0, 0}},
      {DType::kUInt8, DType::kFloat16, {0, 1, 200, 255}, {0, 1, 200, 255}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(str_cat(dtype_name(c.from), " -> ", dtype_name(c.to)));
    // A [2, 2] transposed view so the kernel (not a memcpy) runs.
    ASSIGN_OR_FAIL(DeviceTensor x, upload(c.in, c.from, {2, 2}, {1, 2}));
    ASSIGN_OR_FAIL(DeviceTensor y, device_output(c.to, {2, 2}));
    sync(launch_copy(fn(copy_kernel(names_, c.from, c.to)), x.tensor, y.tensor, nullptr));
    const std::vector<double> expected = {c.out[0], c.out[2], c.out[1], c.out[3]};
    expect_close(y.read(), expected, 0.0, "conversion");
  }
}

TEST_F(KernelLibraryGpuTest, FillAndArange) {
  // Fill every other column of a [3, 4] f16 tensor: the rest keep their values.
  ASSIGN_OR_FAIL(DeviceTensor a,
                 upload(std::vector<double>(12, -1), DType::kFloat16, {3, 2}, {4, 2}));
  sync(launch_fill(fn(fill_kernel(names_, DType::kFloat16)), a.tensor, 1.5, nullptr));
  expect_close(a.read_storage(), {1.5, -1, 1.5, -1, 1.5, -1, 1.5, -1, 1.5, -1, 1.5, -1}, 0.0,
               "strided fill");
  ASSIGN_OR_FAIL(DeviceTensor b, device_output(DType::kInt32, {1000}));
  sync(launch_fill(fn(fill_kernel(names_, DType::kInt32)), b.tensor, 7.0, nullptr));
  expect_close(b.read(), std::vector<double>(1000, 7), 0.0, "int fill");
  ASSIGN_OR_FAIL(DeviceTensor z, device_output(DType::kFloat32, {33}));
  sync(launch_fill(nullptr, z.tensor, 0.0, nullptr));  // a memset: no kernel needed
  expect_close(z.read(), std::vector<double>(33, 0), 0.0, "zero fill");
  ASSIGN_OR_FAIL(DeviceTensor t, device_output(DType::kBool, {5}));
  sync(launch_fill(fn(fill_kernel(names_, DType::kBool)), t.tensor, 3.0, nullptr));
  expect_close(t.read(), std::vector<double>(5, 1), 0.0, "bool fill");

  // arange into every other element of a float buffer, and into int64.
  ASSIGN_OR_FAIL(DeviceTensor f, upload(std::vector<double>(20, -1), DType::kFloat32, {10}, {2}));
  sync(launch_arange(fn(arange_kernel(names_, DType::kFloat32)), f.tensor, 2.0, -0.5, nullptr));
  std::vector<double> expected;
  for (int i = 0; i < 10; ++i) expected.push_back(2.0 - 0.5 * i);
  expect_close(f.read(), expected, 0.0, "float arange");
  ASSIGN_OR_FAIL(DeviceTensor i, device_output(DType::kInt64, {2000}));
  sync(launch_arange(fn(arange_kernel(names_, DType::kInt64)), i.tensor, 5.0, 3.0, nullptr));
  expected.clear();
  for (int k = 0; k < 2000; ++k) expected.push_back(5.0 + 3.0 * k);
  expect_close(i.read(), expected, 0.0, "int64 arange");
}

}  // namespace
}  // namespace kiln::cuda
