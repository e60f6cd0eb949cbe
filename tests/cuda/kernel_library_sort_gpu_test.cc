// The sort family on the GPU against a CPU reference built on std::stable_sort with PyTorch's
// order (NaN above +inf, -0.0 equal to 0.0, ties in index order): every dtype, both directions,
// row lengths from 1 to the 4096 limit, rows along an outer dim, strided inputs and outputs,
// topk's first k, and outputs left out. Outputs are written into sentinel-filled storage that
// is checked untouched outside the view. Skipped without a CUDA device.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cuda/kernel_library_common.h"
#include "cuda/kernel_library_sort.h"
#include "cuda/kernel_module.h"
#include "cuda/nvrtc_compiler.h"
#include "kernel_library_support.h"

namespace kiln::cuda {
namespace {

using namespace kltest;

constexpr DType kSortTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                DType::kInt64,   DType::kInt32,   DType::kInt16,
                                DType::kInt8,    DType::kUInt8,   DType::kBool};
// What output storage holds before a launch: a value every dtype holds (77 is true as a bool).
constexpr double kSentinel = 77.0;

// The family's kernels for every dtype, compiled once for this device and loaded (never freed,
// as kltest::gpu_module()).
const GpuModule& sort_module() {
  static const GpuModule state = load_gpu_module([] {
    ModuleSource source;
    for (DType t : kSortTypes) sort_kernel(source, t);
    return source.text();
  }());
  return state;
}

bool is_floating_type(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16;
}

// PyTorch's ascending order: NaN above every number. Equal values (and NaNs) are unordered.
bool less(double a, double b) { return (!std::isnan(a) && std::isnan(b)) || a < b; }

// A view of the output (its sizes, and strides into a larger storage when given).
struct Layout {
  Shape strides = {};  // empty: contiguous
  int64_t offset = 0;
};

struct Expected {
  Shape sizes;
  std::vector<double> values;    // row-major over sizes
  std::vector<double> indices;
};

// The reference: each row of x's row-major `logical` values along `dim`, stable-sorted, first k.
Expected reference(const std::vector<double>& logical, const Shape& sizes, int64_t dim,
                   bool descending, int64_t k) {
  const int64_t rank = static_cast<int64_t>(sizes.size());
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t d = 0; d < rank; ++d) {
    (d < dim ? outer : d == dim ? n : inner) *= sizes[d];
  }
  Expected e;
  e.sizes = sizes;
  if (rank > 0) e.sizes[dim] = k;
  e.values.assign(outer * k * inner, 0.0);
  e.indices.assign(outer * k * inner, 0.0);
  std::vector<int64_t> order(n);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t j) { return logical[(o * n + j) * inner + i]; };
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        return descending ? less(at(b), at(a)) : less(at(a), at(b));
      });
      for (int64_t j = 0; j < k; ++j) {
        e.values[(o * k + j) * inner + i] = at(order[j]);
        e.indices[(o * k + j) * inner + i] = static_cast<double>(order[j]);
      }
    }
  }
  return e;
}

// Equal as elements: both NaN, or equal with the same sign (a -0.0 must stay -0.0).
bool same_element(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

void expect_elements(const std::vector<double>& actual, const std::vector<double>& expected,
                     const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (same_element(actual[i], expected[i])) continue;
    if (bad++ < 5) {
      ADD_FAILURE() << what << ": element " << i << " is " << actual[i] << ", expected "
                    << expected[i];
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << actual.size() << " elements differ";
}

// Storage elements outside the view still hold what was uploaded.
void expect_untouched_outside(const DeviceTensor& t, const std::string& what) {
  const std::vector<double> now = t.read_storage();
  std::vector<bool> inside(now.size(), false);
  for (int64_t at : view_offsets(t.tensor.sizes(), t.tensor.strides(), t.tensor.offset())) {
    inside[at] = true;
  }
  int bad = 0;
  for (size_t i = 0; i < now.size(); ++i) {
    if (!inside[i] && !same_element(now[i], t.storage[i]) && bad++ < 5) {
      ADD_FAILURE() << what << ": storage element " << i << " outside the view was written";
    }
  }
}

// A device tensor of `sizes` viewed with `layout` in a storage of sentinels (or of `logical`
// values placed at the view's elements).
Result<DeviceTensor> placed(DType dtype, const Shape& sizes, const Layout& layout,
                            const std::vector<double>* logical) {
  const Shape strides = layout.strides.empty() ? contiguous_strides(sizes) : layout.strides;
  const std::vector<int64_t> at = view_offsets(sizes, strides, layout.offset);
  int64_t storage = 1;
  for (int64_t a : at) storage = std::max(storage, a + 1);
  std::vector<double> stored(storage, kSentinel);
  if (logical) {
    for (size_t e = 0; e < at.size(); ++e) stored[at[e]] = (*logical)[e];
  }
  return upload(stored, dtype, sizes, strides, layout.offset);
}

struct SortCase {
  std::string what;
  DType dtype = DType::kFloat32;
  Shape sizes;
  std::vector<double> values;  // logical, row-major; rounded to dtype on upload
  int64_t dim = 0;
  bool descending = false;
  int64_t k = -1;  // -1: the row's length (sort)
  Layout in_layout = {}, values_layout = {}, indices_layout = {};
  bool want_values = true, want_indices = true;
  int64_t scratch_rows = 0;  // rows over kSortRowMax: pairs of this many rows (0: as planned)
};

class SortGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const GpuModule& gpu = sort_module();
    if (!gpu.skip_reason.empty()) GTEST_SKIP() << gpu.skip_reason;
    ASSERT_NE(gpu.module, nullptr) << gpu.error;
  }

  static cudaKernel_t fn(DType dtype) {
    ModuleSource names;
    auto kernel = sort_module().module->kernel(sort_kernel(names, dtype));
    EXPECT_TRUE(kernel.ok()) << kernel.status().to_string();
    return kernel.ok() ? *kernel : nullptr;
  }

  void run(const SortCase& c) {
    const std::string what = str_cat(c.what, " (", dtype_name(c.dtype), c.descending ? ", desc" : "",
                                     ")");
    SCOPED_TRACE(what);
    ASSIGN_OR_FAIL(DeviceTensor x, placed(c.dtype, c.sizes, c.in_layout, &c.values));
    const int64_t n = c.sizes.empty() ? 1 : c.sizes[c.dim];
    const int64_t k = c.k < 0 ? n : c.k;
    // The reference sees the values the GPU sees: rounded to the dtype.
    const Expected e = reference(x.values(), c.sizes, c.dim, c.descending, k);
    ASSIGN_OR_FAIL(DeviceTensor v, placed(c.dtype, e.sizes, c.values_layout, nullptr));
    ASSIGN_OR_FAIL(DeviceTensor i, placed(DType::kInt64, e.sizes, c.indices_layout, nullptr));
    // Rows too long for shared memory sort in global scratch (as the sort step plans it, or
    // room for fewer rows than run, so blocks take several rows in turn).
    const int64_t rows = n == 0 ? 0 : shape_numel(c.sizes) / n;
    size_t scratch_bytes = sort_scratch_bytes(rows, n);
    if (c.scratch_rows > 0) scratch_bytes = c.scratch_rows * kernel_lib::pow2_at_least(n) * 12;
    void* scratch = nullptr;
    if (scratch_bytes > 0) ASSERT_EQ(cudaMalloc(&scratch, scratch_bytes), cudaSuccess);
    const Status launched =
        launch_sort(fn(c.dtype), x.tensor, c.want_values ? &v.tensor : nullptr,
                    c.want_indices ? &i.tensor : nullptr, c.dim, c.descending, nullptr, scratch,
                    scratch_bytes);
    if (scratch) EXPECT_EQ(cudaFree(scratch), cudaSuccess);
    ASSERT_TRUE(launched.ok()) << launched.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    if (c.want_values) {
      expect_elements(v.read(), e.values, what + " values");
    } else {
      expect_elements(v.read_storage(), v.storage, what + " values (not asked for)");
    }
    if (c.want_indices) {
      expect_elements(i.read(), e.indices, what + " indices");
    } else {
      expect_elements(i.read_storage(), i.storage, what + " indices (not asked for)");
    }
    expect_untouched_outside(v, what + " values");
    expect_untouched_outside(i, what + " indices");
    expect_untouched_outside(x, what + " input");
  }
};

// Values with many ties, and for floats NaN, infinities and both zeros among them.
std::vector<double> tricky_values(DType dtype, size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<double> v(count);
  for (double& x : v) {
    const uint32_t r = rng() % 16;
    if (dtype == DType::kBool) {
      x = r % 2;
    } else if (dtype == DType::kUInt8) {
      x = rng() % 256;
    } else if (dtype == DType::kInt8) {
      x = static_cast<double>(static_cast<int>(rng() % 256) - 128);
    } else if (!is_floating_type(dtype)) {
      x = static_cast<double>(static_cast<int>(rng() % 21) - 10);
    } else if (r == 0) {
      x = kNan;
    } else if (r == 1) {
      x = kInf;
    } else if (r == 2) {
      x = -kInf;
    } else if (r == 3) {
      x = -0.0;
    } else if (r == 4) {
      x = 0.0;
    } else {
      x = static_cast<double>(static_cast<int>(rng() % 41) - 20) / 8.0;
    }
  }
  return v;
}

TEST_F(SortGpuTest, EveryDtypeBothDirectionsEveryRowLength) {
  for (DType t : kSortTypes) {
    for (int64_t n : {1, 2, 33, 1000, 4096}) {
      for (bool descending : {false, true}) {
        const Shape sizes = {3, n};
        run({.what = str_cat("[3, ", n, "] along the last dim"),
             .dtype = t,
             .sizes = sizes,
             .values = tricky_values(t, 3 * n, static_cast<uint32_t>(n) + 7),
             .dim = 1,
             .descending = descending});
      }
    }
  }
}

TEST_F(SortGpuTest, DistinctValuesAndLongRowsOfTies) {
  const DType f32 = DType::kFloat32;
  std::vector<double> distinct = random_values(4 * 777, 3);
  run({.what = "distinct", .dtype = f32, .sizes = {4, 777}, .values = distinct, .dim = 1});
  run({.what = "distinct", .dtype = f32, .sizes = {4, 777}, .values = distinct, .dim = 1,
       .descending = true});
  // All equal: the indices stay in order whichever the direction.
  for (DType t : {DType::kFloat16, DType::kInt64}) {
    for (bool descending : {false, true}) {
      run({.what = "all equal", .dtype = t, .sizes = {2, 4096},
           .values = std::vector<double>(2 * 4096, 1.0), .dim = 1, .descending = descending});
    }
  }
  // All NaN, and the zeros of both signs only: equal too.
  std::vector<double> zeros(1000);
  for (size_t i = 0; i < zeros.size(); ++i) zeros[i] = i % 3 ? 0.0 : -0.0;
  for (bool descending : {false, true}) {
    run({.what = "all NaN", .dtype = f32, .sizes = {1000},
         .values = std::vector<double>(1000, kNan), .dim = 0, .descending = descending});
    run({.what = "signed zeros", .dtype = DType::kBFloat16, .sizes = {1000}, .values = zeros,
         .dim = 0, .descending = descending});
  }
}

TEST_F(SortGpuTest, Int64KeepsEveryBit) {
  // Values fp32 (and double's 53 bits) would merge: neighbours above 2^53, the extremes.
  const double big = 9007199254740992.0;  // 2^53
  const std::vector<double> values = {big + 2,    -big - 2, big,   -big,    -9.223372036854775808e18,
                                      4.611686018427387904e18, 0.0, -1.0,  big + 4, 1.0};
  for (bool descending : {false, true}) {
    run({.what = "int64 extremes", .dtype = DType::kInt64, .sizes = {10}, .values = values,
         .dim = 0, .descending = descending});
  }
}

TEST_F(SortGpuTest, OuterDimsAndStrides) {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kInt32}) {
    const std::vector<double> v = tricky_values(t, 5 * 40 * 3, 11);
    for (bool descending : {false, true}) {
      run({.what = "[5, 40, 3] along dim 1", .dtype = t, .sizes = {5, 40, 3}, .values = v,
           .dim = 1, .descending = descending});
      run({.what = "[5, 40, 3] along dim 0", .dtype = t, .sizes = {5, 40, 3}, .values = v,
           .dim = 0, .descending = descending});
      // The input a transposed view (rows strided), the outputs padded rows and a permutation.
      run({.what = "strided in and out", .dtype = t, .sizes = {5, 40, 3}, .values = v,
           .dim = 1, .descending = descending,
           .in_layout = {.strides = {1, 15, 5}, .offset = 0},
           .values_layout = {.strides = {200, 5, 1}, .offset = 3},
           .indices_layout = {.strides = {3, 15, 1}, .offset = 0}});
      // A column of a wider tensor.
      run({.what = "every other column", .dtype = t, .sizes = {40, 5}, .values = v,
           .dim = 0, .descending = descending,
           .in_layout = {.strides = {10, 2}, .offset = 1}});
    }
  }
}

TEST_F(SortGpuTest, TopkKeepsTheFirstK) {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kInt64, DType::kUInt8}) {
    const std::vector<double> v = tricky_values(t, 6 * 300, 5);
    for (int64_t k : {0, 1, 7, 299, 300}) {
      for (bool largest : {true, false}) {
        run({.what = str_cat("topk k ", k), .dtype = t, .sizes = {6, 300}, .values = v,
             .dim = 1, .descending = largest, .k = k});
      }
    }
    run({.what = "topk along dim 0, strided out", .dtype = t, .sizes = {300, 6}, .values = v,
         .dim = 0, .descending = true, .k = 9,
         .values_layout = {.strides = {1, 9}, .offset = 0},
         .indices_layout = {.strides = {12, 2}, .offset = 1}});
  }
}

TEST_F(SortGpuTest, OneOutputOnly) {
  const std::vector<double> v = tricky_values(DType::kFloat32, 4 * 50, 9);
  run({.what = "values only", .sizes = {4, 50}, .values = v, .dim = 1, .want_indices = false});
  run({.what = "indices only", .sizes = {4, 50}, .values = v, .dim = 1, .descending = true,
       .want_values = false});
  run({.what = "topk indices only", .sizes = {4, 50}, .values = v, .dim = 1, .k = 3,
       .want_values = false});
}

TEST_F(SortGpuTest, ScalarsEmptyAndManyRows) {
  run({.what = "0-d", .sizes = {}, .values = {2.5}, .dim = 0});
  run({.what = "0-d NaN", .dtype = DType::kFloat16, .sizes = {}, .values = {kNan}, .dim = 0,
       .descending = true});
  run({.what = "empty rows", .sizes = {3, 0}, .values = {}, .dim = 1});
  run({.what = "no rows", .sizes = {0, 5}, .values = {}, .dim = 1});
  run({.what = "one-element rows", .sizes = {7, 1}, .values = random_values(7, 2), .dim = 1});
  // More rows than a grid's worth of small blocks would be unusual; many short rows.
  run({.what = "many short rows", .dtype = DType::kBFloat16, .sizes = {5000, 3},
       .values = tricky_values(DType::kBFloat16, 15000, 4), .dim = 1, .descending = true});
}

TEST_F(SortGpuTest, RowsLongerThanSharedMemorySortInScratch) {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kInt64}) {
    for (bool descending : {false, true}) {
      run({.what = "[2, 8000]", .dtype = t, .sizes = {2, 8000},
           .values = tricky_values(t, 2 * 8000, 21), .dim = 1, .descending = descending});
    }
  }
  // A vocabulary's topk; more rows than the scratch holds at once (blocks take turns).
  run({.what = "topk of [5, 50257] with scratch for 2 rows", .dtype = DType::kFloat16,
       .sizes = {5, 50257}, .values = tricky_values(DType::kFloat16, 5 * 50257, 22), .dim = 1,
       .descending = true, .k = 50, .scratch_rows = 2});
  run({.what = "along dim 0, strided", .sizes = {5000, 3}, .values = random_values(15000, 23),
       .dim = 0, .in_layout = {.strides = {6, 2}, .offset = 1}});
}

}  // namespace
}  // namespace kiln::cuda
