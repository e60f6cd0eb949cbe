// The kernel library on the GPU, reductions and row kernels (softmax, attention softmax, norms),
// against simple CPU computations, strided views included. Skipped without a CUDA device.
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

// --- reductions on the GPU --------------------------------------------------------------------

// CPU reference: reduces the input's logical elements over `reduced` dims (keepdim order).
std::vector<double> cpu_reduce(const std::vector<double>& x, const Shape& sizes,
                               const std::vector<bool>& reduced, ReduceOp op) {
  Shape out_sizes = sizes;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (reduced[d]) out_sizes[d] = 1;
  }
  const int64_t outputs = shape_numel(out_sizes);
  const double init = op == ReduceOp::kMax                            ? -kInf
                      : op == ReduceOp::kMin                          ? kInf
                      : op == ReduceOp::kProd || op == ReduceOp::kAll ? 1.0
                                                                      : 0.0;
  std::vector<double> acc(outputs, init);
  std::vector<int64_t> count(outputs, 0);
  const Shape out_strides = contiguous_strides(out_sizes);
  for (int64_t i = 0; i < shape_numel(sizes); ++i) {
    int64_t rest = i, o = 0;
    for (size_t d = sizes.size(); d-- > 0;) {
      const int64_t c = rest % sizes[d];
      rest /= sizes[d];
      if (!reduced[d]) o += c * out_strides[d];
    }
    const double v = x[i];
    double& a = acc[o];
    ++count[o];
    switch (op) {
      case ReduceOp::kSum:
      case ReduceOp::kMean: a += v; break;
      case ReduceOp::kProd: a *= v; break;
      case ReduceOp::kMax: a = (std::isnan(a) || a > v) ? a : v; break;
      case ReduceOp::kMin: a = (std::isnan(a) || a < v) ? a : v; break;
      case ReduceOp::kAny: a = (a != 0 || v != 0) ? 1 : 0; break;
      case ReduceOp::kAll: a = (a != 0 && v != 0) ? 1 : 0; break;
    }
  }
  if (op == ReduceOp::kMean) {
    for (int64_t o = 0; o < outputs; ++o) acc[o] /= static_cast<double>(count[o]);
  }
  return acc;
}

struct ReduceCase {
  std::string what;
  ReduceOp op;
  DType in, out;
  Shape sizes, strides;  // the input view; strides empty: contiguous
  std::vector<bool> reduced;
  std::vector<std::pair<int64_t, double>> pokes;  // (logical element, value) overrides
  double shift = 0;  // added to every value: means far from zero show a wrong divisor
};

class ReduceGpuTest : public KernelLibraryGpuTest {
 protected:
  void run(const ReduceCase& c) {
    SCOPED_TRACE(c.what);
    Shape strides = c.strides.empty() ? contiguous_strides(c.sizes) : c.strides;
    const std::vector<int64_t> offsets = view_offsets(c.sizes, strides);
    int64_t storage = 1;
    for (int64_t at : offsets) storage = std::max(storage, at + 1);
    std::vector<double> values = random_values(storage, 7, -2.0 + c.shift, 2.0 + c.shift);
    if (c.in == DType::kInt32 || c.in == DType::kBool) {
      for (double& v : values) v = std::round(v);
    }
    for (const auto& [element, value] : c.pokes) values[offsets[element]] = value;
    ASSIGN_OR_FAIL(DeviceTensor x, upload(values, c.in, c.sizes, strides));
    Shape out_sizes = c.sizes;
    for (size_t d = 0; d < out_sizes.size(); ++d) {
      if (c.reduced[d]) out_sizes[d] = 1;
    }
    ASSIGN_OR_FAIL(DeviceTensor y, device_output(c.out, out_sizes));
    sync(launch_reduce(fn(reduce_kernel(names_, c.op, c.in, c.out)), x.tensor, y.tensor, nullptr));
    const double tol = c.in == DType::kFloat32 ? 1e-5 : tolerance(c.out);
    expect_close(y.read(), rounded(cpu_reduce(x.values(), c.sizes, c.reduced, c.op), c.out), tol,
                 c.what);
  }
};

TEST_F(ReduceGpuTest, ContiguousRows) {
  const DType f32 = DType::kFloat32, f16 = DType::kFloat16, bf16 = DType::kBFloat16;
  run({"sum warp", ReduceOp::kSum, f32, f32, {64, 300}, {}, {false, true}});
  run({"sum block", ReduceOp::kSum, f32, f32, {4, 5000}, {}, {false, true}});
  run({"mean f16 block", ReduceOp::kMean, f16, f16, {33, 2000}, {}, {false, true}, {}, 3.0});
  run({"mean warp", ReduceOp::kMean, f32, f32, {16, 100}, {}, {false, true}, {}, 3.0});
  run({"sum bf16 to f32", ReduceOp::kSum, bf16, f32, {5, 77}, {}, {false, true}});
  run({"sum of everything", ReduceOp::kSum, f32, f32, {3, 4, 5}, {}, {true, true, true}});
  run({"prod", ReduceOp::kProd, f32, f32, {6, 9}, {}, {false, true}});
  run({"middle dim", ReduceOp::kMean, f32, f32, {3, 50, 7}, {}, {false, true, false}});
}

TEST_F(ReduceGpuTest, StridedInputs) {
  const DType f32 = DType::kFloat32, f16 = DType::kFloat16;
  // NHWC [2, 40, 7, 9] mean over H, W: reduced dims outside the kept C.
  const Shape nhwc = {7 * 9 * 40, 1, 9 * 40, 40};
  run({"nhwc mean", ReduceOp::kMean, f32, f32, {2, 40, 7, 9}, nhwc, {false, false, true, true}});
  run({"nhwc mean f16",
       ReduceOp::kMean,
       f16,
       f16,
       {2, 40, 7, 9},
       nhwc,
       {false, false, true, true}});
  run({"nhwc wide",
       ReduceOp::kSum,
       f32,
       f32,
       {1, 64, 30, 40},
       {30 * 40 * 64, 1, 40 * 64, 64},
       {false, false, true, true}});
  // A transposed [70, 50] view of [50, 70] storage, reduced either way.
  run({"transposed dim 0", ReduceOp::kSum, f32, f32, {70, 50}, {1, 70}, {true, false}});
  run({"transposed dim 1", ReduceOp::kSum, f32, f32, {70, 50}, {1, 70}, {false, true}});
  run({"broadcast input", ReduceOp::kSum, f32, f32, {6, 5}, {0, 1}, {true, false}});
  run({"few strided outputs", ReduceOp::kSum, f32, f32, {3000, 4}, {}, {true, false}});
}

TEST_F(ReduceGpuTest, MaxAndMinPropagateNan) {
  const DType f32 = DType::kFloat32;
  const std::vector<std::pair<int64_t, double>> pokes = {{3 * 100 + 50, kNan}, {5 * 100 + 1, kInf}};
  run({"max nan warp", ReduceOp::kMax, f32, f32, {8, 100}, {}, {false, true}, pokes});
  run({"min nan warp", ReduceOp::kMin, f32, f32, {8, 100}, {}, {false, true}, pokes});
  run({"max nan block",
       ReduceOp::kMax,
       f32,
       f32,
       {2, 3000},
       {},
       {false, true},
       {{2999, kNan}, {3000, -kInf}}});
  run({"max nan column",
       ReduceOp::kMax,
       f32,
       f32,
       {50, 40},
       {},
       {true, false},
       {{41 * 40 + 7, kNan}}});
  run({"max f16",
       ReduceOp::kMax,
       DType::kFloat16,
       DType::kFloat16,
       {4, 33},
       {},
       {false, true},
       {{40, kNan}}});
}

TEST_F(ReduceGpuTest, IntegerAndLogical) {
  run({"sum int32 to int64",
       ReduceOp::kSum,
       DType::kInt32,
       DType::kInt64,
       {10, 37},
       {},
       {false, true}});
  run({"sum bool", ReduceOp::kSum, DType::kBool, DType::kInt64, {3, 20}, {}, {false, true}});
  run({"any", ReduceOp::kAny, DType::kFloat32, DType::kBool, {4, 9}, {}, {false, true}, {}});
  ReduceCase zeros{"any of zeros", ReduceOp::kAny, DType::kFloat32, DType::kBool, {2, 3}, {},
                   {false, true}};
  for (int64_t i = 0; i < 3; ++i) zeros.pokes.push_back({i, 0.0});
  zeros.pokes.push_back({4, kNan});  // NaN is true
  run(zeros);
  ReduceCase all{"all", ReduceOp::kAll, DType::kFloat16, DType::kBool, {3, 5},
                 {},    {false, true},  {{7, 0.0}}};
  run(all);
}

// --- softmax on the GPU -----------------------------------------------------------------------

// softmax along `dim` of logical values x of `sizes`; rows of all -inf give NaN as in PyTorch.
std::vector<double> cpu_softmax(const std::vector<double>& x, const Shape& sizes, int64_t dim,
                                bool log) {
  std::vector<double> y(x.size());
  const Shape strides = contiguous_strides(sizes);
  const int64_t n = sizes[dim], s = strides[dim];
  for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i) {
    if ((i / s) % n != 0) continue;  // i starts a row
    double m = -kInf;
    bool nan = false;
    for (int64_t k = 0; k < n; ++k) {
      nan |= std::isnan(x[i + k * s]);
      m = std::max(m, x[i + k * s]);
    }
    double sum = 0;
    for (int64_t k = 0; k < n; ++k) sum += std::exp(x[i + k * s] - m);
    for (int64_t k = 0; k < n; ++k) {
      const double v = x[i + k * s] - m;
      y[i + k * s] = nan || std::isinf(m) ? kNan : log ? v - std::log(sum) : std::exp(v) / sum;
    }
  }
  return y;
}

class SoftmaxGpuTest : public KernelLibraryGpuTest {
 protected:
  void run(const std::string& what, DType in, DType out, bool log, Shape sizes, int64_t dim,
           Shape in_strides = {}, std::vector<std::pair<int64_t, double>> pokes = {}) {
    SCOPED_TRACE(what);
    if (in_strides.empty()) in_strides = contiguous_strides(sizes);
    const std::vector<int64_t> offsets = view_offsets(sizes, in_strides);
    int64_t storage = 1;
    for (int64_t at : offsets) storage = std::max(storage, at + 1);
    std::vector<double> values = random_values(storage, 11, -4.0, 4.0);
    for (const auto& [element, value] : pokes) values[offsets[element]] = value;
    ASSIGN_OR_FAIL(DeviceTensor x, upload(values, in, sizes, in_strides));
    ASSIGN_OR_FAIL(DeviceTensor y, device_output(out, sizes));
    sync(
        launch_softmax(fn(softmax_kernel(names_, in, out, log)), x.tensor, y.tensor, dim, nullptr));
    const std::vector<double> expected = cpu_softmax(x.values(), sizes, dim, log);
    expect_close(y.read(), rounded(expected, out), in == DType::kFloat32 ? 1e-5 : tolerance(in),
                 what);
  }
};

TEST_F(SoftmaxGpuTest, RowSchedules) {
  const DType f32 = DType::kFloat32, f16 = DType::kFloat16, bf16 = DType::kBFloat16;
  run("warp", f32, f32, false, {37, 100}, 1);
  run("warp log", f32, f32, true, {37, 100}, 1);
  run("warp unaligned rows", f32, f32, false, {9, 61}, 1);
  run("block", f32, f32, false, {3, 3000}, 1);
  run("block log f16", f16, f16, true, {5, 2048}, 1);
  run("long", f32, f32, false, {2, 10000}, 1);
  run("long log", f32, f32, true, {2, 10000}, 1);
  run("f16 vectorized", f16, f16, false, {64, 1000}, 1);
  run("bf16 to f32", bf16, f32, false, {16, 512}, 1);
  run("short rows", f32, f32, false, {1000, 3}, 1);
}

TEST_F(SoftmaxGpuTest, StridedAndSpecialValues) {
  const DType f32 = DType::kFloat32;
  run("dim 0 column", f32, f32, false, {300, 200}, 0);
  run("dim 0 few rows", f32, f32, true, {300, 64}, 0);
  run("dim 1 of nchw", f32, f32, false, {2, 19, 8, 8}, 1);
  // A transposed view: [40, 30] of [30, 40] storage, softmax along the view's last dim.
  run("transposed", f32, f32, false, {40, 30}, 1, {1, 40});
  run("transposed long", f32, f32, false, {2000, 3}, 0, {1, 2000});
  // A NaN row, a row with a -inf, a row of all -inf (NaN, as in PyTorch).
  std::vector<std::pair<int64_t, double>> pokes = {{5, kNan}, {64 + 3, -kInf}};
  for (int64_t k = 0; k < 64; ++k) pokes.push_back({2 * 64 + k, -kInf});
  run("special values", f32, f32, false, {4, 64}, 1, {}, pokes);
  run("special values strided", f32, f32, false, {4, 64}, 1, {1, 4}, pokes);
  std::vector<std::pair<int64_t, double>> long_pokes = {{5, kNan}, {9000 + 3, -kInf}};
  for (int64_t k = 0; k < 9000; ++k) long_pokes.push_back({2 * 9000 + k, -kInf});
  run("special values online", f32, f32, false, {4, 9000}, 1, {}, long_pokes);
  // Column schedule (a thread per row): rows run down dim 0 of [8, 200].
  std::vector<std::pair<int64_t, double>> column_pokes = {{3 * 200 + 5, kNan}, {200 + 7, -kInf}};
  for (int64_t k = 0; k < 8; ++k) column_pokes.push_back({k * 200, -kInf});
  run("special values column", f32, f32, false, {8, 200}, 0, {}, column_pokes);
}

TEST_F(SoftmaxGpuTest, InPlace) {
  const Shape sizes = {6, 300};
  ASSIGN_OR_FAIL(DeviceTensor x, upload(random_values(1800, 3), DType::kFloat32, sizes));
  const std::vector<double> expected = cpu_softmax(x.values(), sizes, 1, false);
  sync(launch_softmax(fn(softmax_kernel(names_, DType::kFloat32, DType::kFloat32, false)), x.tensor,
                      x.tensor, 1, nullptr));
  expect_close(x.read(), expected, 1e-5, "in place");
}

// --- attention softmax on the GPU -------------------------------------------------------------

class AttentionSoftmaxGpuTest : public KernelLibraryGpuTest {
 protected:
  // mask_values: logical values of a mask of mask_sizes (broadcast right-aligned), or empty.
  void run(const std::string& what, DType dtype, Shape sizes, float scale, bool causal,
           std::optional<DType> mask_dtype = std::nullopt, Shape mask_sizes = {},
           std::vector<double> mask_values = {}) {
    SCOPED_TRACE(what);
    const int64_t n = shape_numel(sizes);
    ASSIGN_OR_FAIL(DeviceTensor scores, upload(random_values(n, 5, -3, 3), dtype, sizes));
    std::optional<DeviceTensor> mask;
    if (mask_dtype) {
      ASSIGN_OR_FAIL(DeviceTensor m, upload(mask_values, *mask_dtype, mask_sizes));
      mask = std::move(m);
    }
    // CPU: x * scale + mask, masked keys -inf, all-masked rows zeros.
    const std::vector<double> x = scores.values();
    const int64_t lq = sizes[2], lk = sizes[3];
    std::vector<double> expected(n);
    const std::vector<double> mv = mask ? mask->values() : std::vector<double>();
    const Shape ms = mask_sizes;
    for (int64_t r = 0; r < n / lk; ++r) {
      const int64_t i = r % lq;
      const int64_t coord[4] = {r / lq / sizes[1], (r / lq) % sizes[1], i, 0};
      std::vector<double> row(lk);
      double m = -kInf;
      for (int64_t j = 0; j < lk; ++j) {
        double v = x[r * lk + j] * static_cast<double>(scale);
        if (mask) {
          int64_t at = 0;
          const int64_t lead = 4 - static_cast<int64_t>(ms.size());
          for (int64_t d = lead; d < 4; ++d) {
            const int64_t c = d == 3 ? j : coord[d];
            at = at * ms[d - lead] + (ms[d - lead] == 1 ? 0 : c);
          }
          v = *mask_dtype == DType::kBool ? (mv[at] != 0 ? v : -kInf) : v + mv[at];
        }
        if (causal && j > i) v = -kInf;  // top-left aligned, as PyTorch
        row[j] = v;
        m = std::max(m, v);
      }
      double sum = 0;
      for (double v : row) sum += std::exp(v - m);
      for (int64_t j = 0; j < lk; ++j) {
        expected[r * lk + j] = std::isinf(m) && m < 0 ? 0.0 : std::exp(row[j] - m) / sum;
      }
    }
    const Tensor* mask_tensor = mask ? &mask->tensor : nullptr;
    sync(launch_attention_softmax(fn(attention_softmax_kernel(names_, dtype, mask_dtype)),
                                  scores.tensor, mask_tensor, scale, causal, nullptr));
    expect_close(scores.read(), rounded(expected, dtype), tolerance(dtype), what);
  }
};

TEST_F(AttentionSoftmaxGpuTest, MasksAndCausal) {
  const DType f32 = DType::kFloat32, f16 = DType::kFloat16;
  // A [5, 7] bool mask; query row 2 masks every key.
  std::vector<double> bool_mask(35);
  for (int64_t i = 0; i < 35; ++i) bool_mask[i] = (i % 3 != 0) && (i / 7 != 2) ? 1 : 0;
  run("bool mask", f32, {2, 3, 5, 7}, 0.5f, false, DType::kBool, {5, 7}, bool_mask);
  run("causal", f32, {2, 2, 4, 6}, 1.0f, true);
  // A mask and causal together; query row 1 keeps only keys the causal limit removes.
  std::vector<double> late_keys(24, 1.0);
  for (int64_t j = 0; j < 6; ++j) late_keys[6 + j] = j >= 4 ? 1.0 : 0.0;
  run("bool mask and causal", f32, {1, 2, 4, 6}, 1.0f, true, DType::kBool, {4, 6}, late_keys);
  run("causal more queries than keys", f32, {1, 1, 6, 4}, 1.0f, true);
  run("plain f16", f16, {2, 4, 16, 128}, 0.125f, false);
  // An additive f16 mask broadcast over batch and heads, with -inf entries.
  std::vector<double> additive = random_values(2000, 9, -1, 1);
  for (int64_t j = 0; j < 2000; j += 7) additive[j] = -kInf;
  run("block additive mask", f16, {1, 2, 3, 2000}, 1.0f, false, f16, {1, 1, 1, 2000}, additive);
  run("long causal", f32, {1, 1, 3, 5000}, 1.0f, true);
  std::vector<double> none(5000, 0.0);
  run("long all masked", f32, {1, 1, 2, 5000}, 1.0f, false, DType::kBool, {5000}, none);
}

// --- normalization on the GPU -----------------------------------------------------------------

class NormGpuTest : public KernelLibraryGpuTest {
 protected:
  void run(const std::string& what, DType dtype, Shape sizes, int64_t normalized, bool has_weight,
           bool has_bias, bool rms, double eps = 1e-5) {
    SCOPED_TRACE(what);
    const int64_t n = shape_numel(sizes), rows = n / normalized;
    ASSIGN_OR_FAIL(DeviceTensor x, upload(random_values(n, 13, -2, 3), dtype, sizes));
    ASSIGN_OR_FAIL(DeviceTensor w,
                   upload(random_values(normalized, 17, 0.5, 1.5), dtype, {normalized}));
    ASSIGN_OR_FAIL(DeviceTensor b,
                   upload(random_values(normalized, 19, -1, 1), dtype, {normalized}));
    ASSIGN_OR_FAIL(DeviceTensor y, device_output(dtype, sizes));
    const std::vector<double> xv = x.values(), wv = w.values(), bv = b.values();
    std::vector<double> expected(n);
    for (int64_t r = 0; r < rows; ++r) {
      const double* row = xv.data() + r * normalized;
      double mean = 0, var = 0;
      if (!rms) {
        for (int64_t k = 0; k < normalized; ++k) mean += row[k];
        mean /= static_cast<double>(normalized);
      }
      for (int64_t k = 0; k < normalized; ++k) var += (row[k] - mean) * (row[k] - mean);
      var /= static_cast<double>(normalized);
      const double rstd = 1.0 / std::sqrt(var + eps);
      for (int64_t k = 0; k < normalized; ++k) {
        double v = (row[k] - mean) * rstd;
        if (has_weight) v *= wv[k];
        if (has_bias) v += bv[k];
        expected[r * normalized + k] = v;
      }
    }
    sync(launch_layer_norm(fn(layer_norm_kernel(names_, dtype, has_weight, has_bias, rms)),
                           x.tensor, has_weight ? &w.tensor : nullptr,
                           has_bias ? &b.tensor : nullptr, y.tensor, normalized, eps, nullptr));
    expect_close(y.read(), rounded(expected, dtype), dtype == DType::kFloat32 ? 1e-4 : 2e-2, what);
  }
};

// fp32 tolerance 1e-4: the statistics of 10^4 elements are summed in fp32 in another order.
TEST_F(NormGpuTest, LayerAndRmsNorm) {
  const DType f32 = DType::kFloat32, f16 = DType::kFloat16, bf16 = DType::kBFloat16;
  run("warp vectorized", f32, {10, 768}, 768, true, true, false);
  run("warp scalar", f32, {5, 99}, 99, true, true, false);
  run("two normalized dims", f32, {2, 3, 40}, 120, true, true, false);
  run("rms f16 block", f16, {4, 2048}, 2048, true, false, true, 1e-6);
  run("bf16 block no affine", bf16, {6, 3000}, 3000, false, false, false);
  run("long", f32, {2, 10000}, 10000, true, true, false);
  run("rms long", f32, {3, 5001}, 5001, true, false, true);
  run("f16 warp", f16, {33, 256}, 256, true, true, false);
}

}  // namespace
}  // namespace kiln::cuda
