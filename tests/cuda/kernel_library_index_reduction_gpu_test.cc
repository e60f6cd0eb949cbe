// The index reduction family on the GPU against CPU references: argmax/argmin and max/min with
// indices (first extreme wins, NaN is extreme, ties, every dtype, integers exact), var/std/mean
// (Welford: constant rows exactly 0, corrections at and past n, empty reductions), over every
// schedule (warp, block for rows longer than 1024, thread per output for strided rows),
// non-contiguous inputs and outputs, several reduced dims. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda/kernel_library_index_reduction.h"
#include "kernel_library_support.h"

namespace kiln::cuda {
namespace {

using namespace kltest;

constexpr DType kArgTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                               DType::kInt64,   DType::kInt32,   DType::kInt16,
                               DType::kInt8,    DType::kUInt8,   DType::kBool};

ModuleSource index_reduction_module() {
  ModuleSource module;
  for (DType t : kArgTypes) {
    arg_reduce_kernel(module, true, t);
    arg_reduce_kernel(module, false, t);
  }
  for (DType t : kFloatTypes) {
    moments_kernel(module, t, false);
    moments_kernel(module, t, true);
  }
  return module;
}

// This family's module, compiled once for this device and loaded (never freed, as gpu_module()).
const GpuModule& family_module() {
  static const GpuModule state = load_gpu_module(index_reduction_module().text());
  return state;
}

// Row-major values of a tensor of `sizes` grouped per output: groups[kept][r] is element r (in
// row-major order over the reduced dims) of output `kept` (row-major over the kept dims).
std::vector<std::vector<double>> group(const std::vector<double>& values, const Shape& sizes,
                                       const std::vector<bool>& reduced) {
  int64_t outputs = 1, count = 1;
  for (size_t d = 0; d < sizes.size(); ++d) (reduced[d] ? count : outputs) *= sizes[d];
  std::vector<std::vector<double>> groups(outputs, std::vector<double>(count));
  for (int64_t i = 0; i < static_cast<int64_t>(values.size()); ++i) {
    int64_t rest = i, kept = 0, red = 0, kept_scale = 1, red_scale = 1;
    for (size_t d = sizes.size(); d-- > 0;) {
      const int64_t at = rest % sizes[d];
      rest /= sizes[d];
      if (reduced[d]) {
        red += at * red_scale;
        red_scale *= sizes[d];
      } else {
        kept += at * kept_scale;
        kept_scale *= sizes[d];
      }
    }
    groups[kept][red] = values[i];
  }
  return groups;
}

// PyTorch's argmax/argmin: the first extreme, a NaN beating every number and the first NaN
// winning.
int64_t reference_arg(const std::vector<double>& g, bool max) {
  int64_t best = 0;
  for (int64_t k = 1; k < static_cast<int64_t>(g.size()); ++k) {
    if (std::isnan(g[best])) break;
    if (std::isnan(g[k]) || (max ? g[k] > g[best] : g[k] < g[best])) best = k;
  }
  return best;
}

// Two passes in double; the divisor is max(0, n - correction).
double reference_var(const std::vector<double>& g, double correction) {
  const double n = static_cast<double>(g.size());
  double mean = 0;
  for (double v : g) mean += v;
  mean /= n;
  double squares = 0;
  for (double v : g) squares += (v - mean) * (v - mean);
  return squares / std::max(0.0, n - correction);
}

Shape keepdim_sizes(const Shape& sizes, const std::vector<bool>& reduced) {
  Shape out = sizes;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (reduced[d]) out[d] = 1;
  }
  return out;
}

class IndexReductionGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const GpuModule& gpu = family_module();
    if (!gpu.skip_reason.empty()) GTEST_SKIP() << gpu.skip_reason;
    ASSERT_NE(gpu.module, nullptr) << gpu.error;
  }
  static cudaKernel_t fn(const std::string& name) {
    auto kernel = family_module().module->kernel(name);
    EXPECT_TRUE(kernel.ok()) << kernel.status().to_string();
    return kernel.ok() ? *kernel : nullptr;
  }
  static void sync(const Status& launched) {
    ASSERT_TRUE(launched.ok()) << launched.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }

  // max/min of `x` over `reduced` into fresh values and indices, checked against the reference.
  void check_arg(const DeviceTensor& x, const std::vector<bool>& reduced, bool max,
                 const std::string& what) {
    SCOPED_TRACE(what);
    const DType dtype = x.tensor.dtype();
    const Shape out_sizes = keepdim_sizes(x.tensor.sizes(), reduced);
    ASSIGN_OR_FAIL(DeviceTensor values, device_output(dtype, out_sizes));
    ASSIGN_OR_FAIL(DeviceTensor indices, device_output(DType::kInt64, out_sizes));
    const std::string kernel = arg_reduce_kernel(names_, max, dtype);
    sync(launch_arg_reduce(fn(kernel), x.tensor, &values.tensor, &indices.tensor, nullptr));
    const auto groups = group(x.values(), x.tensor.sizes(), reduced);
    std::vector<double> want_values, want_indices;
    for (const auto& g : groups) {
      const int64_t k = reference_arg(g, max);
      want_indices.push_back(static_cast<double>(k));
      want_values.push_back(g[k]);
    }
    expect_close(indices.read(), want_indices, 0.0, what + " indices");
    expect_close(values.read(), want_values, 0.0, what + " values");
  }

  void check_moments(const DeviceTensor& x, const std::vector<bool>& reduced, double correction,
                     const std::string& what) {
    SCOPED_TRACE(what);
    const DType dtype = x.tensor.dtype();
    const Shape out_sizes = keepdim_sizes(x.tensor.sizes(), reduced);
    ASSIGN_OR_FAIL(DeviceTensor var, device_output(dtype, out_sizes));
    ASSIGN_OR_FAIL(DeviceTensor std, device_output(dtype, out_sizes));
    ASSIGN_OR_FAIL(DeviceTensor mean, device_output(dtype, out_sizes));
    sync(launch_moments(fn(moments_kernel(names_, dtype, false)), x.tensor, &var.tensor,
                        &mean.tensor, correction, nullptr));
    sync(launch_moments(fn(moments_kernel(names_, dtype, true)), x.tensor, &std.tensor, nullptr,
                        correction, nullptr));
    std::vector<double> want_var, want_std, want_mean;
    for (const auto& g : group(x.values(), x.tensor.sizes(), reduced)) {
      const double v = reference_var(g, correction);
      double m = 0;
      for (double e : g) m += e;
      want_var.push_back(v);
      want_std.push_back(std::sqrt(v));
      want_mean.push_back(g.empty() ? kNan : m / static_cast<double>(g.size()));
    }
    // fp32 Welford against double two-pass; 16-bit outputs round once.
    const double tol = dtype == DType::kFloat32 ? 1e-4 : tolerance(dtype);
    expect_close(var.read(), rounded(want_var, dtype), tol, what + " var");
    expect_close(std.read(), rounded(want_std, dtype), tol, what + " std");
    expect_close(mean.read(), rounded(want_mean, dtype), tol, what + " mean");
  }

  ModuleSource names_;
};

// Rows with ties, NaNs (first NaN wins), infs and a row of one repeated value.
std::vector<double> tricky_rows(int64_t rows, int64_t n, uint32_t seed) {
  std::vector<double> v = random_values(static_cast<size_t>(rows * n), seed, -4.0, 4.0);
  for (double& e : v) e = std::round(e * 2) / 2;  // many ties
  for (int64_t r = 0; r < rows; ++r) {
    double* row = v.data() + r * n;
    switch (r % 5) {
      case 1:
        row[n / 3] = kNan;
        row[n - 1] = kNan;
        break;
      case 2:
        row[n / 2] = kInf;
        row[n - 1] = -kInf;
        break;
      case 3:
        for (int64_t k = 0; k < n; ++k) row[k] = 1.5;
        break;
      case 4:
        row[0] = kNan;
        break;
      default:
        break;
    }
  }
  return v;
}

TEST_F(IndexReductionGpuTest, ArgMaxAndMinAlongTheLastDim) {
  for (DType t : kFloatTypes) {
    for (int64_t n : {1, 7, 33, 300, 1024, 1500, 5000}) {
      const int64_t rows = 10;
      ASSIGN_OR_FAIL(DeviceTensor x, upload(tricky_rows(rows, n, 3), t, {rows, n}));
      for (bool max : {true, false}) {
        check_arg(x, {false, true}, max,
                  str_cat(dtype_name(t), " n=", n, max ? " max" : " min"));
      }
    }
  }
}

TEST_F(IndexReductionGpuTest, ArgAlongLeadingAndMiddleDims) {
  // dim 0 of [300, 40]: strided rows, a warp per output; dim 1 of [4, 21, 32, 32] (segmentation
  // logits): a thread per output; dim 1 of [2, 3000, 4]: long strided rows, a block per output.
  struct Case {
    Shape sizes;
    std::vector<bool> reduced;
  };
  const std::vector<Case> cases = {{{300, 40}, {true, false}},
                                   {{4, 21, 32, 32}, {false, true, false, false}},
                                   {{2, 3000, 4}, {false, true, false}},
                                   {{6, 5, 7}, {true, false, true}}};
  for (const Case& c : cases) {
    const int64_t numel = shape_numel(c.sizes);
    std::vector<double> v = tricky_rows(1, numel, 11);
    v[17] = kNan;
    v[numel / 2] = kNan;
    ASSIGN_OR_FAIL(DeviceTensor x, upload(v, DType::kFloat32, c.sizes));
    for (bool max : {true, false}) {
      check_arg(x, c.reduced, max, str_cat(shape_to_string(c.sizes), max ? " max" : " min"));
    }
  }
}

TEST_F(IndexReductionGpuTest, ArgOverTheFlattenedInput) {
  // argmax(dim=None): the index into the flattened input, with every dim reduced; the max
  // appears twice (the first wins) and, in a second run, after a NaN.
  std::vector<double> v = random_values(200 * 700, 5);
  v[777] = 10.0;
  v[99999] = 10.0;
  ASSIGN_OR_FAIL(DeviceTensor x, upload(v, DType::kFloat32, {200, 700}));
  check_arg(x, {true, true}, true, "flattened");
  check_arg(x, {true, true}, false, "flattened min");
  v[50000] = kNan;
  ASSIGN_OR_FAIL(DeviceTensor y, upload(v, DType::kFloat32, {200, 700}));
  check_arg(y, {true, true}, true, "flattened with NaN");
  // A 0-d input: index 0.
  ASSIGN_OR_FAIL(DeviceTensor s, upload({2.5}, DType::kFloat32, {}));
  check_arg(s, {}, true, "0-d");
}

TEST_F(IndexReductionGpuTest, ArgOfNonContiguousInputs) {
  // A transposed view [40, 30] of storage [30, 40] along its last dim (stride 40), and a sliced
  // view with an offset, and a permuted 3-D view reduced over two dims (flattened index).
  std::vector<double> v = tricky_rows(30, 40, 9);
  ASSIGN_OR_FAIL(DeviceTensor t, upload(v, DType::kFloat16, {40, 30}, {1, 40}));
  check_arg(t, {false, true}, true, "transposed");
  check_arg(t, {true, false}, false, "transposed dim 0");
  ASSIGN_OR_FAIL(DeviceTensor sliced, upload(v, DType::kFloat32, {10, 20}, {80, 2}, 5));
  check_arg(sliced, {false, true}, true, "sliced");
  ASSIGN_OR_FAIL(DeviceTensor permuted,
                 upload(random_values(4 * 5 * 6, 2), DType::kBFloat16, {6, 4, 5}, {1, 30, 6}));
  check_arg(permuted, {false, true, true}, true, "permuted, two dims");
}

TEST_F(IndexReductionGpuTest, ArgOfIntegersAndBoolIsExact) {
  // int64 values past 2^24 that fp32 would merge: 2^40 + 1 beats 2^40.
  const double big = std::ldexp(1.0, 40);
  std::vector<double> wide = {big, big + 1, big - 1, big + 1, -big, 3, big, big + 1};
  ASSIGN_OR_FAIL(DeviceTensor x64, upload(wide, DType::kInt64, {2, 4}));
  check_arg(x64, {false, true}, true, "int64 max");
  check_arg(x64, {false, true}, false, "int64 min");
  check_arg(x64, {true, true}, true, "int64 flattened");
  for (DType t : {DType::kInt32, DType::kInt16, DType::kInt8, DType::kUInt8}) {
    std::vector<double> v = random_values(9 * 50, 4, 0.0, 100.0);
    for (double& e : v) e = std::floor(e);
    ASSIGN_OR_FAIL(DeviceTensor x, upload(v, t, {9, 50}));
    check_arg(x, {false, true}, true, str_cat(dtype_name(t), " max"));
    check_arg(x, {true, false}, false, str_cat(dtype_name(t), " min over dim 0"));
  }
  std::vector<double> bits = {0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0};
  ASSIGN_OR_FAIL(DeviceTensor b, upload(bits, DType::kBool, {3, 4}));
  check_arg(b, {false, true}, true, "bool max");
  check_arg(b, {false, true}, false, "bool min");
}

TEST_F(IndexReductionGpuTest, ArgWritesOnlyTheOutputsGiven) {
  // Either output may be missing (not read by the program); a strided output view is written
  // at its strides and nothing else of its storage.
  ASSIGN_OR_FAIL(DeviceTensor x, upload(tricky_rows(6, 50, 8), DType::kFloat32, {6, 50}));
  const auto groups = group(x.values(), {6, 50}, {false, true});
  const std::string kernel = arg_reduce_kernel(names_, true, DType::kFloat32);
  ASSIGN_OR_FAIL(DeviceTensor idx_storage,
                 upload(std::vector<double>(12, -5.0), DType::kInt64, {6, 1}, {2, 1}));
  sync(launch_arg_reduce(fn(kernel), x.tensor, nullptr, &idx_storage.tensor, nullptr));
  const std::vector<double> storage = idx_storage.read_storage();
  for (int64_t r = 0; r < 6; ++r) {
    EXPECT_EQ(storage[2 * r], static_cast<double>(reference_arg(groups[r], true))) << r;
    EXPECT_EQ(storage[2 * r + 1], -5.0) << "gap " << r << " was written";
  }
  ASSIGN_OR_FAIL(DeviceTensor values, device_output(DType::kFloat32, {6, 1}));
  sync(launch_arg_reduce(fn(kernel), x.tensor, &values.tensor, nullptr, nullptr));
  std::vector<double> want;
  for (const auto& g : groups) want.push_back(g[reference_arg(g, true)]);
  expect_close(values.read(), want, 0.0, "values only");
}

TEST_F(IndexReductionGpuTest, MomentsAlongRows) {
  for (DType t : kFloatTypes) {
    for (int64_t n : {1, 2, 7, 100, 1024, 1500, 5000}) {
      std::vector<double> v = random_values(static_cast<size_t>(8 * n), 21, -2.0, 6.0);
      for (int64_t k = 0; k < n; ++k) v[3 * n + k] = 0.1;  // a constant row: exactly 0
      ASSIGN_OR_FAIL(DeviceTensor x, upload(v, t, {8, n}));
      for (double correction : {0.0, 1.0, 2.5}) {
        check_moments(x, {false, true}, correction,
                      str_cat(dtype_name(t), " n=", n, " correction=", correction));
      }
    }
  }
}

TEST_F(IndexReductionGpuTest, ConstantRowsGiveExactlyZero) {
  for (int64_t n : {5, 64, 3000}) {
    ASSIGN_OR_FAIL(DeviceTensor x,
                   upload(std::vector<double>(4 * n, 0.3), DType::kFloat32, {4, n}));
    ASSIGN_OR_FAIL(DeviceTensor var, device_output(DType::kFloat32, {4, 1}));
    sync(launch_moments(fn(moments_kernel(names_, DType::kFloat32, false)), x.tensor,
                        &var.tensor, nullptr, 1.0, nullptr));
    for (double e : var.read()) EXPECT_EQ(e, 0.0) << "n=" << n;
  }
}

TEST_F(IndexReductionGpuTest, MomentsEdgeCases) {
  // n <= correction: 0/0 = NaN for a constant row, x/0 = inf otherwise; one element with
  // correction 1: NaN. NaN and inf elements give NaN.
  std::vector<double> v = {1.0, 3.0, 2.0, 2.0, 5.0, kNan, 1.0, kInf};
  ASSIGN_OR_FAIL(DeviceTensor x, upload(v, DType::kFloat32, {4, 2}));
  ASSIGN_OR_FAIL(DeviceTensor var, device_output(DType::kFloat32, {4, 1}));
  const std::string kernel = moments_kernel(names_, DType::kFloat32, false);
  sync(launch_moments(fn(kernel), x.tensor, &var.tensor, nullptr, 2.0, nullptr));
  std::vector<double> got = var.read();
  EXPECT_TRUE(std::isinf(got[0]) && got[0] > 0) << got[0];
  EXPECT_TRUE(std::isnan(got[1])) << got[1];
  EXPECT_TRUE(std::isnan(got[2])) << got[2];
  EXPECT_TRUE(std::isnan(got[3])) << got[3];
  ASSIGN_OR_FAIL(DeviceTensor one, upload({4.0, 5.0}, DType::kFloat32, {2, 1}));
  ASSIGN_OR_FAIL(DeviceTensor var1, device_output(DType::kFloat32, {2, 1}));
  sync(launch_moments(fn(kernel), one.tensor, &var1.tensor, nullptr, 1.0, nullptr));
  for (double e : var1.read()) EXPECT_TRUE(std::isnan(e)) << e;
  // No elements: var and mean NaN.
  ASSIGN_OR_FAIL(DeviceTensor empty, upload({}, DType::kFloat32, {3, 0}));
  ASSIGN_OR_FAIL(DeviceTensor var0, device_output(DType::kFloat32, {3, 1}));
  ASSIGN_OR_FAIL(DeviceTensor mean0, device_output(DType::kFloat32, {3, 1}));
  sync(launch_moments(fn(kernel), empty.tensor, &var0.tensor, &mean0.tensor, 1.0, nullptr));
  for (double e : var0.read()) EXPECT_TRUE(std::isnan(e)) << e;
  for (double e : mean0.read()) EXPECT_TRUE(std::isnan(e)) << e;
}

TEST_F(IndexReductionGpuTest, MomentsOverStridedAndSeveralDims) {
  struct Case {
    Shape sizes, strides;
    std::vector<bool> reduced;
  };
  const std::vector<Case> cases = {
      {{300, 40}, {}, {true, false}},                         // strided rows
      {{4, 16, 32, 32}, {}, {false, true, false, false}},     // a thread per output
      {{4, 16, 32, 32}, {}, {true, false, true, true}},       // batch-norm statistics
      {{6, 5, 7}, {}, {true, false, true}},                   // two dims apart
      {{40, 30}, {1, 40}, {false, true}},                     // transposed
      {{5, 6, 4}, {4, 20, 1}, {true, true, true}},            // permuted, everything
      {{2, 3000, 3}, {}, {false, true, false}},               // long strided rows: a block
  };
  for (const Case& c : cases) {
    const int64_t numel = shape_numel(c.sizes);
    ASSIGN_OR_FAIL(DeviceTensor x,
                   upload(random_values(numel, 13, 1.0, 3.0), DType::kFloat32, c.sizes,
                          c.strides));
    check_moments(x, c.reduced, 1.0, shape_to_string(c.sizes));
  }
}

}  // namespace
}  // namespace kiln::cuda
