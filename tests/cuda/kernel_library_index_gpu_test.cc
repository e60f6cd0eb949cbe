// The kernel library on the GPU, advanced indexing (aten.index.Tensor) and cumsum, against kiln's
// CPU reference kernels on the same values, strided views included. Skipped without a CUDA
// device.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cuda/kernel_library.h"
#include "kernel_library_support.h"
#include "support/op_runner.h"

namespace kiln::cuda {
namespace {

using namespace kltest;
using kiln::testing::OpCall;
using kiln::testing::OptionalTensorList;
using kiln::testing::TensorArg;

// The families' kernels come from kltest::full_module() (add_index_and_scan_families).
using IndexScanGpuTest = KernelLibraryGpuTest;

// A device tensor of `sizes` (optionally a strided view of a larger storage) holding `fill(i)`
// at storage element i.
template <typename Fill>
Result<DeviceTensor> device_tensor(DType dtype, const Shape& sizes, Shape strides, Fill fill) {
  if (strides.empty()) strides = contiguous_strides(sizes);
  int64_t storage = 1;
  for (int64_t at : view_offsets(sizes, strides)) storage = std::max(storage, at + 1);
  std::vector<double> values(storage);
  for (int64_t i = 0; i < storage; ++i) values[i] = fill(i);
  return upload(values, dtype, sizes, strides);
}

// The CPU reference's input: the view's values, contiguous, in the same dtype.
Tensor host_copy(const DeviceTensor& t) {
  return kiln::testing::make_tensor(t.tensor.dtype(), t.tensor.sizes(), t.values());
}

// Values every dtype holds exactly: multiples of 1/16 in [-4, 4) for floats (sums of up to 2^18
// of them are exact in fp32, so the order of the additions cannot matter), small integers,
// 0/1 for bool.
double exact_value(DType dtype, std::mt19937& rng) {
  if (dtype == DType::kBool) return static_cast<double>(rng() % 2);
  if (dtype == DType::kInt32 || dtype == DType::kInt64) {
    return static_cast<double>(static_cast<int>(rng() % 201) - 100);
  }
  return static_cast<double>(static_cast<int>(rng() % 128) - 64) / 16.0;
}

// --- advanced indexing ------------------------------------------------------------------------

struct IndexSpec {
  DType dtype = DType::kInt64;
  Shape sizes;
  std::vector<double> values;  // logical, row-major
  Shape strides = {};          // a strided view when given
};

class IndexGpuTest : public IndexScanGpuTest {
 protected:
  // x[indices] for x of `sizes` (a view with `strides` when given); nullopt entries are None.
  void run(const std::string& what, DType dtype, const Shape& sizes,
           const std::vector<std::optional<IndexSpec>>& indices, const Shape& strides = {}) {
    SCOPED_TRACE(what);
    std::mt19937 rng(17);
    ASSIGN_OR_FAIL(DeviceTensor x, device_tensor(dtype, sizes, strides,
                                                 [&](int64_t) { return exact_value(dtype, rng); }));
    std::vector<DeviceTensor> index_tensors;
    OpCall call{.target = "aten.index.Tensor", .inputs = {host_copy(x)}};
    OptionalTensorList list;
    for (const std::optional<IndexSpec>& spec : indices) {
      if (!spec) {
        list.indices.push_back(-1);
        continue;
      }
      // Strided indices: the values placed at the view's elements of a larger storage.
      Shape s = spec->strides.empty() ? contiguous_strides(spec->sizes) : spec->strides;
      const std::vector<int64_t> at = view_offsets(spec->sizes, s);
      int64_t storage = 1;
      for (int64_t a : at) storage = std::max(storage, a + 1);
      std::vector<double> stored(storage, 12345.0);
      for (size_t e = 0; e < at.size(); ++e) stored[at[e]] = spec->values[e];
      ASSIGN_OR_FAIL(DeviceTensor t, upload(stored, spec->dtype, spec->sizes, s));
      list.indices.push_back(static_cast<int>(call.inputs.size()));
      call.inputs.push_back(kiln::testing::make_tensor(spec->dtype, spec->sizes, spec->values));
      index_tensors.push_back(std::move(t));
    }
    call.args = {TensorArg{0}, list};
    ASSIGN_OR_FAIL(std::vector<Tensor> expected, kiln::testing::run_op(call));
    ASSIGN_OR_FAIL(DeviceTensor y, device_output(dtype, expected[0].sizes()));
    std::vector<const Tensor*> entries;
    size_t next = 0;
    for (const std::optional<IndexSpec>& spec : indices) {
      entries.push_back(spec ? &index_tensors[next++].tensor : nullptr);
    }
    sync(launch_index_tensor(fn(index_tensor_kernel(names_, dtype)), x.tensor, entries, y.tensor,
                             nullptr));
    expect_close(y.read(), kiln::testing::to_doubles(expected[0]), 0.0, what);
  }
};

IndexSpec ints(Shape sizes, std::vector<double> values, DType dtype = DType::kInt64) {
  return IndexSpec{dtype, std::move(sizes), std::move(values)};
}
std::vector<double> random_indices(size_t n, int64_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<double> v(n);
  for (double& x : v) x = static_cast<double>(static_cast<int64_t>(rng() % (2 * size)) - size);
  return v;  // in [-size, size): negatives wrap
}

TEST_F(IndexGpuTest, OneAndTwoIndexTensors) {
  const DType f32 = DType::kFloat32;
  run("one index", f32, {5, 7}, {ints({4}, {4, 0, -1, 2})});
  run("2-D index on the middle dim", f32, {3, 6, 4},
      {std::nullopt, ints({2, 3}, {5, 0, 1, -6, 2, 3})});
  run("two adjacent", f32, {3, 6, 4, 5},
      {std::nullopt, ints({4}, {0, 5, -1, 2}), ints({4}, {3, 0, 1, -4})});
  run("two separated: the block goes first", f32, {3, 6, 4, 5},
      {ints({2, 1}, {2, -3}), std::nullopt, ints({3}, {0, 3, -2})});
  run("broadcast", f32, {4, 5, 6}, {ints({3, 1}, {0, 3, -1}), ints({1, 2}, {4, -5})});
  run("separated by two Nones, broadcast", f32, {3, 2, 4, 5},
      {ints({2, 1, 1}, {1, -1}), std::nullopt, std::nullopt, ints({3, 2}, {0, 1, 2, 3, 4, -5})});
  run("0-d index", f32, {5, 3}, {ints({}, {-2})});
  run("0-d index on the last dim", f32, {5, 3}, {std::nullopt, ints({}, {1})});
  run("every index a 0-d", f32, {5, 3}, {ints({}, {4}), ints({}, {-3})});
  run("only Nones", f32, {3, 4}, {std::nullopt, std::nullopt});
}

TEST_F(IndexGpuTest, IndexDtypesAndLayouts) {
  const DType f32 = DType::kFloat32, i32 = DType::kInt32;
  run("int32 indices", f32, {6, 5}, {ints({3}, {5, -6, 0}, i32)});
  run("int32 beside int64", f32, {6, 5, 4},
      {ints({2}, {1, -1}, i32), std::nullopt, ints({2}, {3, 0})});
  // x a transposed view; the index a strided view (every other element of its storage).
  run("transposed input", f32, {7, 5}, {std::nullopt, ints({3}, {4, 0, -2})}, {1, 7});
  IndexSpec strided = ints({4}, {3, -1, 0, 2});
  strided.strides = {2};
  run("strided index", f32, {6, 5}, {strided});
  IndexSpec broadcast_view = ints({3, 2}, {1, 1, -2, -2, 0, 0});  // stride 0 along dim 1
  broadcast_view.strides = {1, 0};
  run("expanded index", f32, {6, 5}, {broadcast_view});
  run("many rows", f32, {1000, 64}, {ints({3000}, random_indices(3000, 1000, 5))});
  run("many rows, int32", DType::kFloat16, {300, 33},
      {ints({50, 40}, random_indices(2000, 300, 6), i32)});
}

TEST_F(IndexGpuTest, EveryDataDtype) {
  for (DType t : kIndexDataTypes) {
    run(str_cat("adjacent ", dtype_name(t)), t, {3, 6, 4},
        {std::nullopt, ints({2, 2}, {5, 0, -1, 2}), ints({2}, {3, -4})});
    run(str_cat("separated ", dtype_name(t)), t, {3, 6, 4},
        {ints({2}, {2, -3}), std::nullopt, ints({2}, {1, 0})});
  }
  // GPT-2's padding mask lookup: a bool [B, L] mask read at broadcast (batch, key) positions.
  std::vector<double> batch = {0, 1}, keys(16);
  for (int k = 0; k < 16; ++k) keys[k] = k;
  run("bool mask lookup", DType::kBool, {2, 16},
      {ints({2, 1, 1, 1}, batch), ints({1, 1, 1, 16}, keys)});
}

TEST_F(IndexGpuTest, EmptyIndexLaunchesNothing) {
  ASSIGN_OR_FAIL(DeviceTensor x, upload(random_values(20, 3), DType::kFloat32, {4, 5}));
  ASSIGN_OR_FAIL(DeviceTensor none, upload({}, DType::kInt64, {0}));
  ASSIGN_OR_FAIL(DeviceTensor y, device_output(DType::kFloat32, {0, 5}));
  sync(launch_index_tensor(fn(index_tensor_kernel(names_, DType::kFloat32)), x.tensor,
                           {&none.tensor}, y.tensor, nullptr));
  ASSIGN_OR_FAIL(DeviceTensor empty_rows, device_output(DType::kFloat32, {4, 0}));
  sync(launch_index_tensor(fn(index_tensor_kernel(names_, DType::kFloat32)), x.tensor,
                           {nullptr, &none.tensor}, empty_rows.tensor, nullptr));
}

// PyTorch asserts on the device for an index outside its dim; kiln's kernel writes zeros there
// and never reads outside the input (the gathers' rule).
TEST_F(IndexGpuTest, OutOfRangeIndicesWriteZeros) {
  std::vector<double> values(12);
  for (int i = 0; i < 12; ++i) values[i] = i + 1;
  ASSIGN_OR_FAIL(DeviceTensor x, upload(values, DType::kFloat32, {4, 3}));
  ASSIGN_OR_FAIL(DeviceTensor rows, upload({0, 7, -1, -9, 2, 4}, DType::kInt64, {6}));
  ASSIGN_OR_FAIL(DeviceTensor y, device_output(DType::kFloat32, {6, 3}));
  sync(launch_index_tensor(fn(index_tensor_kernel(names_, DType::kFloat32)), x.tensor,
                           {&rows.tensor}, y.tensor, nullptr));
  expect_close(y.read(), {1, 2, 3, 0, 0, 0, 10, 11, 12, 0, 0, 0, 7, 8, 9, 0, 0, 0}, 0.0,
               "out of range");
  // Huge values do not overflow into a valid offset.
  ASSIGN_OR_FAIL(DeviceTensor cols, upload({-4e15, 4e15, 2}, DType::kInt64, {3}));
  ASSIGN_OR_FAIL(DeviceTensor z, device_output(DType::kFloat32, {4, 3}));
  sync(launch_index_tensor(fn(index_tensor_kernel(names_, DType::kFloat32)), x.tensor,
                           {nullptr, &cols.tensor}, z.tensor, nullptr));
  expect_close(z.read(), {0, 0, 3, 0, 0, 6, 0, 0, 9, 0, 0, 12}, 0.0, "huge");
}

// --- cumsum -----------------------------------------------------------------------------------

class CumsumGpuTest : public IndexScanGpuTest {
 protected:
  // cumsum(x, dim) with the output in `out` (PyTorch's default for `in` unless a dtype is
  // given), x of `sizes` (a view with `strides` when given). `exact`: values whose sums are exact
  // in the accumulator, compared bit for bit; else random values within tolerance(out).
  void run(const std::string& what, DType in, DType out, const Shape& sizes, int64_t dim,
           const Shape& strides = {}, bool exact = true) {
    SCOPED_TRACE(what);
    std::mt19937 rng(23);
    std::uniform_real_distribution<double> dist(-3.0, 3.0);
    ASSIGN_OR_FAIL(DeviceTensor x, device_tensor(in, sizes, strides, [&](int64_t) {
                     return exact ? exact_value(in, rng) : dist(rng);
                   }));
    OpCall call{
        .target = "aten.cumsum.default", .inputs = {host_copy(x)}, .args = {TensorArg{0}, dim}};
    const bool integral = in != DType::kFloat32 && in != DType::kFloat16 &&
                          in != DType::kBFloat16 && in != DType::kFloat64;
    if (out != (integral ? DType::kInt64 : in)) call.kwargs["dtype"] = out;
    ASSIGN_OR_FAIL(std::vector<Tensor> expected, kiln::testing::run_op(call));
    ASSERT_EQ(expected[0].dtype(), out);
    ASSIGN_OR_FAIL(DeviceTensor y, device_output(out, sizes));
    const int64_t rank = static_cast<int64_t>(sizes.size());
    const int64_t d = rank == 0 ? 0 : (dim < 0 ? dim + rank : dim);
    sync(launch_cumsum(fn(cumsum_kernel(names_, in, out)), x.tensor, y.tensor, d, nullptr));
    // Random fp32 values: the running sum reaches ~100 while single elements are ~1, so a few
    // fp32 roundings of it show at 1e-5 beside the CPU's double sums.
    const double tol = exact ? 0.0 : out == DType::kFloat32 ? 1e-4 : tolerance(out);
    expect_close(y.read(), kiln::testing::to_doubles(expected[0]), tol, what);
  }
};

// Lengths around the warp's 32 lanes and its 128-element steps, a block per row past 1024.
TEST_F(CumsumGpuTest, LengthsAlongTheLastDim) {
  const DType f32 = DType::kFloat32;
  for (int64_t n : {1, 2, 31, 32, 33, 127, 128, 129, 1000, 1024, 1025, 2049, 5000}) {
    run(str_cat("length ", n), f32, f32, {3, n}, 1);
  }
  run("one long row", f32, f32, {100000}, 0);
  run("many long rows", f32, f32, {70, 3000}, -1);
  run("0-d", f32, f32, {}, 0);
}

TEST_F(CumsumGpuTest, FirstMiddleAndLastDims) {
  const DType f32 = DType::kFloat32;
  run("first dim (a thread per column)", f32, f32, {1000, 300}, 0);
  run("first dim, few columns", f32, f32, {5000, 4}, 0);
  run("first dim, short", f32, f32, {33, 200}, 0);
  run("middle dim", f32, f32, {4, 33, 50}, 1);
  run("middle dim, long", f32, f32, {2, 5000, 3}, 1);
  run("last dim of 3-D", f32, f32, {4, 6, 31}, -1);
  run("short rows", f32, f32, {500, 3}, 1);
}

TEST_F(CumsumGpuTest, Dtypes) {
  for (const auto& [in, out] : kScanTypes) {
    for (int64_t n : {1, 33, 1000, 5000}) {
      run(str_cat(dtype_name(in), " to ", dtype_name(out), " length ", n), in, out, {2, n}, 1);
    }
    run(str_cat(dtype_name(in), " to ", dtype_name(out), " dim 0"), in, out, {300, 130}, 0);
  }
  // GPT-2's position ids: cumsum of an int64 attention mask over [batch, 512].
  run("gpt2 mask", DType::kInt64, DType::kInt64, {8, 512}, 1);
}

TEST_F(CumsumGpuTest, StridedInputs) {
  const DType f32 = DType::kFloat32, f16 = DType::kFloat16;
  // A transposed [40, 30] view of [30, 40] storage, along either dim.
  run("transposed, along its rows", f32, f32, {40, 30}, 1, {1, 40});
  run("transposed, along its columns", f32, f32, {40, 30}, 0, {1, 40});
  run("transposed long rows", f16, f16, {3, 3000}, 1, {1, 3});
  // Every other element of a row, and a broadcast (stride 0) input.
  run("sliced", f32, f32, {6, 500}, 1, {1000, 2});
  run("broadcast input", DType::kInt32, DType::kInt64, {4, 700}, 1, {0, 1});
  run("broadcast along the scan", f32, f32, {4, 700}, 1, {1, 0});
}

// Values that are not exact: fp32 sums in another order than the CPU's, fp16 rounded once.
TEST_F(CumsumGpuTest, RandomValuesWithinTolerance) {
  run("f32 random", DType::kFloat32, DType::kFloat32, {4, 5000}, 1, {}, false);
  run("f16 random", DType::kFloat16, DType::kFloat16, {4, 1000}, 1, {}, false);
  run("bf16 random", DType::kBFloat16, DType::kBFloat16, {300, 64}, 0, {}, false);
}

TEST_F(CumsumGpuTest, NanAndInfPropagate) {
  std::vector<double> values(64, 1.0);
  values[5] = kNan;
  values[32 + 3] = kInf;
  ASSIGN_OR_FAIL(DeviceTensor x, upload(values, DType::kFloat32, {2, 32}));
  ASSIGN_OR_FAIL(DeviceTensor y, device_output(DType::kFloat32, {2, 32}));
  sync(launch_cumsum(fn(cumsum_kernel(names_, DType::kFloat32, DType::kFloat32)), x.tensor,
                     y.tensor, 1, nullptr));
  std::vector<double> expected(64);
  for (int k = 0; k < 32; ++k) {
    expected[k] = k < 5 ? k + 1 : kNan;
    expected[32 + k] = k < 3 ? k + 1 : kInf;
  }
  expect_close(y.read(), expected, 0.0, "nan and inf");
}

}  // namespace
}  // namespace kiln::cuda
