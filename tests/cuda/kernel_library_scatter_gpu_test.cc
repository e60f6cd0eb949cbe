// The kernel library's scatter family on the GPU (gather, scatter, scatter_add, scatter_reduce,
// index_put, masked_scatter) against kiln's CPU reference kernels on the same values: negative
// dims, strided inputs, indices and outputs, duplicate indices for the accumulating forms, every
// scatter_reduce mode with and without self, index_put with None entries and broadcasting,
// masked_scatter over many chunks. Skipped without a CUDA device.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cuda/kernel_library.h"
#include "cuda/kernel_library_scatter.h"
#include "kernel_library_support.h"
#include "support/op_runner.h"

namespace kiln::cuda {
namespace {

using namespace kltest;
using kiln::testing::OpCall;
using kiln::testing::OptionalTensorList;
using kiln::testing::TensorArg;

constexpr DType kDataTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                DType::kInt64,   DType::kInt32,   DType::kBool};
constexpr DType kReduceTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kInt64,
                                  DType::kInt32};
constexpr ScatterReduce kReductions[] = {ScatterReduce::kSum, ScatterReduce::kProd,
                                         ScatterReduce::kMean, ScatterReduce::kAmax,
                                         ScatterReduce::kAmin};
constexpr const char* kReduceNames[] = {"", "sum", "prod", "mean", "amax", "amin"};

ModuleSource scatter_module() {
  ModuleSource module;
  for (DType t : kDataTypes) {
    for (DType index : {DType::kInt64, DType::kInt32}) {
      gather_kernel(module, t, index);
      scatter_kernel(module, ScatterReduce::kAssign, t, index, false);
      scatter_kernel(module, ScatterReduce::kAssign, t, index, true);
    }
    index_put_kernel(module, t, false);
    masked_scatter_kernel(module, t);
  }
  for (DType t : kReduceTypes) {
    for (ScatterReduce r : kReductions) scatter_kernel(module, r, t, DType::kInt64, false);
    index_put_kernel(module, t, true);
  }
  return module;
}

// The family's module, compiled once for this device and loaded (never freed, as gpu_module()).
const GpuModule& scatter_gpu_module() {
  static const GpuModule state = load_gpu_module(scatter_module().text());
  return state;
}

// A device tensor of `sizes` (a strided view of a larger storage when `strides` are given)
// holding fill(i) at storage element i.
template <typename Fill>
Result<DeviceTensor> device_tensor(DType dtype, const Shape& sizes, Shape strides, Fill fill) {
  if (strides.empty()) strides = contiguous_strides(sizes);
  int64_t storage = 1;
  for (int64_t at : view_offsets(sizes, strides)) storage = std::max(storage, at + 1);
  std::vector<double> values(storage);
  for (int64_t i = 0; i < storage; ++i) values[i] = fill(i);
  return upload(values, dtype, sizes, strides);
}
// An index tensor holding `values` (row-major) at the elements of a view with `strides`; the
// storage's other elements hold a value far out of range, which the kernel must never read.
Result<DeviceTensor> index_tensor(const Shape& sizes, const std::vector<double>& values,
                                  DType dtype = DType::kInt64, Shape strides = {}) {
  if (strides.empty()) strides = contiguous_strides(sizes);
  const std::vector<int64_t> at = view_offsets(sizes, strides);
  int64_t storage = 1;
  for (int64_t a : at) storage = std::max(storage, a + 1);
  std::vector<double> stored(storage, 12345.0);
  for (size_t e = 0; e < at.size(); ++e) stored[at[e]] = values[e];
  return upload(stored, dtype, sizes, strides);
}
Tensor host_copy(const DeviceTensor& t) {
  return kiln::testing::make_tensor(t.tensor.dtype(), t.tensor.sizes(), t.values());
}

// Values every dtype holds exactly and whose sums (of a few hundred) and products stay exact in
// the storage dtype, whatever the order of the atomics: multiples of 1/4 in [-4, 4) for fp32
// and fp16, -1, 0, 1 for bf16 (8 significant bits), small integers, 0/1 for bool; for products
// powers of two.
double exact_value(DType dtype, std::mt19937& rng, bool for_prod = false) {
  if (dtype == DType::kBool) return static_cast<double>(rng() % 2);
  if (for_prod) {
    static constexpr double kFactors[] = {-2, -1, 1, 2, -0.5, 0.5};
    return kFactors[rng() % (is_floating(dtype) ? 6 : 4)];
  }
  if (!is_floating(dtype)) return static_cast<double>(static_cast<int>(rng() % 41) - 20);
  if (dtype == DType::kBFloat16) return static_cast<double>(static_cast<int>(rng() % 3) - 1);
  return static_cast<double>(static_cast<int>(rng() % 32) - 16) / 4.0;
}

// For each position along `dim` of an index of `sizes`: values in [0, size) with repeats.
std::vector<double> random_indices(size_t n, int64_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<double> v(n);
  for (double& x : v) x = static_cast<double>(rng() % size);
  return v;
}
// An index of `sizes` whose values along `dim` are distinct (a prefix of a permutation of
// [0, size) for every line): no two writers meet, so plain scatter is deterministic.
std::vector<double> distinct_indices(const Shape& sizes, int64_t dim, int64_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t n = shape_numel(sizes);
  std::vector<double> v(n);
  const Shape strides = contiguous_strides(sizes);
  for (int64_t e = 0; e < n; ++e) {
    if ((e / strides[dim]) % sizes[dim] != 0) continue;  // the line's first element
    std::vector<int64_t> perm(size);
    for (int64_t i = 0; i < size; ++i) perm[i] = i;
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int64_t k = 0; k < sizes[dim]; ++k) v[e + k * strides[dim]] = perm[k];
  }
  return v;
}

class ScatterGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const GpuModule& gpu = scatter_gpu_module();
    if (!gpu.skip_reason.empty()) GTEST_SKIP() << gpu.skip_reason;
    ASSERT_NE(gpu.module, nullptr) << gpu.error;
  }
  static cudaKernel_t fn(const std::string& name) {
    auto kernel = scatter_gpu_module().module->kernel(name);
    EXPECT_TRUE(kernel.ok()) << kernel.status().to_string();
    return kernel.ok() ? *kernel : nullptr;
  }
  static void sync(const Status& launched) {
    ASSERT_TRUE(launched.ok()) << launched.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }
  static int64_t wrap(int64_t dim, int64_t rank) {
    return dim < 0 ? dim + std::max<int64_t>(rank, 1) : dim;
  }
  ModuleSource names_;
};

// --- gather -----------------------------------------------------------------------------------

struct Layout {
  Shape strides = {};  // of the input (or out) view; contiguous when empty
  Shape index_strides = {};
};

TEST_F(ScatterGpuTest, GatherMatchesTheReference) {
  struct Case {
    std::string what;
    Shape in, index;
    int64_t dim;
    Layout layout;
    DType index_dtype = DType::kInt64;
  };
  const std::vector<Case> cases = {
      {"rows", {5, 4}, {3, 4}, 0},
      {"negative dim", {5, 4}, {5, 7}, -1},
      {"middle dim, smaller index", {4, 6, 5}, {3, 9, 2}, 1},
      {"transposed input", {6, 5}, {6, 3}, 1, {{1, 6}}},
      {"strided index", {6, 5}, {4, 5}, 0, {{}, {10, 2}}},
      {"expanded index", {6, 5}, {4, 5}, 1, {{}, {1, 0}}},
      {"int32 index", {7, 3}, {7, 3}, 0, {}, DType::kInt32},
      {"0-d", {}, {}, 0},
      {"many", {300, 40}, {500, 40}, 0},
  };
  for (DType t : kDataTypes) {
    for (const Case& c : cases) {
      SCOPED_TRACE(str_cat(dtype_name(t), " ", c.what));
      std::mt19937 rng(5);
      ASSIGN_OR_FAIL(DeviceTensor x, device_tensor(t, c.in, c.layout.strides,
                                                   [&](int64_t) { return exact_value(t, rng); }));
      const int64_t d = wrap(c.dim, static_cast<int64_t>(c.in.size()));
      const int64_t size = c.in.empty() ? 1 : c.in[d];
      ASSIGN_OR_FAIL(DeviceTensor index,
                     index_tensor(c.index, random_indices(shape_numel(c.index), size, 7),
                                  c.index_dtype, c.layout.index_strides));
      OpCall call{.target = "aten.gather.default",
                  .inputs = {host_copy(x), host_copy(index)},
                  .args = {TensorArg{0}, c.dim, TensorArg{1}}};
      ASSIGN_OR_FAIL(std::vector<Tensor> expected, kiln::testing::run_op(call));
      ASSIGN_OR_FAIL(DeviceTensor y, device_output(t, c.index));
      sync(launch_gather(fn(gather_kernel(names_, t, c.index_dtype)), x.tensor, d, index.tensor,
                         y.tensor, nullptr));
      expect_close(y.read(), kiln::testing::to_doubles(expected[0]), 0.0, c.what);
    }
  }
}

// PyTorch asserts on the device for an index outside [0, size) (negative ones included); kiln's
// gather writes zeros there and reads nothing outside the input.
TEST_F(ScatterGpuTest, GatherOutOfRangeGivesZeros) {
  ASSIGN_OR_FAIL(DeviceTensor x, upload({1, 2, 3, 4, 5, 6}, DType::kFloat32, {2, 3}));
  ASSIGN_OR_FAIL(DeviceTensor index, upload({2, -1, 3, 0, 4e15, -4e15}, DType::kInt64, {2, 3}));
  ASSIGN_OR_FAIL(DeviceTensor y, device_output(DType::kFloat32, {2, 3}));
  sync(launch_gather(fn(gather_kernel(names_, DType::kFloat32, DType::kInt64)), x.tensor, 1,
                     index.tensor, y.tensor, nullptr));
  expect_close(y.read(), {3, 0, 0, 4, 0, 0}, 0.0, "out of range");
}

// --- scatter and scatter_reduce ---------------------------------------------------------------

struct ScatterCase {
  std::string what;
  Shape out, index;
  int64_t dim;
  Layout layout;         // of out, and of the index
  Shape src_sizes = {};  // src larger than index when given
  Shape src_strides = {};
};

const std::vector<ScatterCase>& scatter_cases() {
  static const std::vector<ScatterCase> cases = {
      {"rows", {6, 5}, {4, 5}, 0},
      {"negative dim", {4, 7}, {4, 3}, -1},
      {"middle dim of 3-D, smaller index", {3, 8, 4}, {2, 5, 3}, 1},
      {"transposed out", {6, 5}, {3, 5}, 0, {{1, 6}}},
      {"strided index", {6, 5}, {4, 5}, 0, {{}, {10, 2}}},
      {"larger, transposed src", {6, 5}, {4, 4}, 0, {}, {5, 6}, {1, 5}},
      {"0-d", {}, {}, 0},
      {"many writers per element", {8, 64}, {400, 64}, 0},
  };
  return cases;
}

class ScatterReduceGpuTest : public ScatterGpuTest {
 protected:
  // out = self.scatter*(dim, index, src) on the GPU beside the CPU reference. `distinct`: no
  // two index elements meet (for the plain scatter, whose winner is unspecified).
  void run(const ScatterCase& c, DType t, ScatterReduce reduce, bool include_self,
           std::optional<double> value, bool distinct) {
    const std::string name = value ? "value"
                             : reduce == ScatterReduce::kAssign
                                 ? "src"
                                 : kReduceNames[static_cast<int>(reduce)];
    const std::string what =
        str_cat(dtype_name(t), " ", name, include_self ? "" : " without self", ": ", c.what);
    SCOPED_TRACE(what);
    std::mt19937 rng(11);
    const bool prod = reduce == ScatterReduce::kProd;
    ASSIGN_OR_FAIL(DeviceTensor out, device_tensor(t, c.out, c.layout.strides, [&](int64_t) {
                     return exact_value(t, rng, prod);
                   }));
    const int64_t rank = static_cast<int64_t>(c.out.size());
    const int64_t d = wrap(c.dim, rank);
    const int64_t size = c.out.empty() ? 1 : c.out[d];
    const int64_t n = shape_numel(c.index);
    const std::vector<double> picks = distinct
                                          ? distinct_indices(c.index.empty() ? Shape{1} : c.index,
                                                             c.index.empty() ? 0 : d, size, 13)
                                          : random_indices(n, size, 13);
    ASSIGN_OR_FAIL(DeviceTensor index,
                   index_tensor(c.index, picks, DType::kInt64, c.layout.index_strides));
    const Shape src_sizes = c.src_sizes.empty() ? c.index : c.src_sizes;
    ASSIGN_OR_FAIL(DeviceTensor src, device_tensor(t, src_sizes, c.src_strides, [&](int64_t) {
                     return exact_value(t, rng, prod);
                   }));
    OpCall call{.inputs = {host_copy(out), host_copy(index)}};
    if (!value) call.inputs.push_back(host_copy(src));
    if (value) {
      call.target = "aten.scatter.value";
      call.args = {TensorArg{0}, c.dim, TensorArg{1}, *value};
    } else if (reduce == ScatterReduce::kAssign) {
      call.target = "aten.scatter.src";
      call.args = {TensorArg{0}, c.dim, TensorArg{1}, TensorArg{2}};
    } else {
      call.target = "aten.scatter_reduce.two";
      call.args = {TensorArg{0},
                   c.dim,
                   TensorArg{1},
                   TensorArg{2},
                   std::string(kReduceNames[static_cast<int>(reduce)]),
                   include_self};
    }
    ASSIGN_OR_FAIL(std::vector<Tensor> expected, kiln::testing::run_op(call));
    ASSIGN_OR_FAIL(DeviceTensor counts,
                   device_output(DType::kInt32, {std::max<int64_t>(shape_numel(c.out), 1)}));
    ScatterParams params{reduce, include_self, value.value_or(0.0)};
    sync(launch_scatter(fn(scatter_kernel(names_, reduce, t, DType::kInt64, value.has_value())),
                        out.tensor, d, index.tensor, value ? nullptr : &src.tensor, params,
                        &counts.tensor, nullptr));
    // Sums of these values are exact; mean's division rounds once on both sides.
    expect_close(out.read(), kiln::testing::to_doubles(expected[0]),
                 reduce == ScatterReduce::kMean ? tolerance(t) * 0.1 : 0.0, what);
  }
};

TEST_F(ScatterReduceGpuTest, PlainScatterOfSrcAndValue) {
  for (DType t : kDataTypes) {
    for (const ScatterCase& c : scatter_cases()) {
      if (c.what == "many writers per element") continue;
      run(c, t, ScatterReduce::kAssign, true, std::nullopt, true);
      const double value = t == DType::kBool ? 1.0 : is_floating(t) ? -2.5 : -3.0;
      run(c, t, ScatterReduce::kAssign, true, value, true);
    }
  }
}

TEST_F(ScatterReduceGpuTest, EveryReductionWithAndWithoutSelf) {
  for (DType t : kReduceTypes) {
    for (ScatterReduce r : kReductions) {
      for (bool include_self : {true, false}) {
        for (const ScatterCase& c : scatter_cases()) {
          // Products of 400 factors overflow every type; keep prod to a few writers.
          if (r == ScatterReduce::kProd && c.what == "many writers per element") continue;
          run(c, t, r, include_self, std::nullopt, false);
        }
      }
    }
  }
}

// mean rounds toward negative infinity for integers, and untouched elements keep self.
TEST_F(ScatterReduceGpuTest, IntegerMeanFloorsAndUntouchedElementsKeepSelf) {
  ASSIGN_OR_FAIL(DeviceTensor out, upload({10, -7, 5, 3}, DType::kInt64, {4}));
  ASSIGN_OR_FAIL(DeviceTensor index, upload({0, 0, 1, 1}, DType::kInt64, {4}));
  ASSIGN_OR_FAIL(DeviceTensor src, upload({1, 2, -1, 0}, DType::kInt64, {4}));
  ASSIGN_OR_FAIL(DeviceTensor counts, device_output(DType::kInt32, {4}));
  ScatterParams params{ScatterReduce::kMean, true, 0};
  sync(launch_scatter(
      fn(scatter_kernel(names_, ScatterReduce::kMean, DType::kInt64, DType::kInt64, false)),
      out.tensor, 0, index.tensor, &src.tensor, params, &counts.tensor, nullptr));
  // (10 + 1 + 2) / 3 = 4.33 -> 4; (-7 - 1 + 0) / 3 = -2.67 -> -3.
  expect_close(out.read(), {4, -3, 5, 3}, 0.0, "integer mean");
}

// NaN wins amax and amin from either side; -inf/+inf are the starting points without self.
TEST_F(ScatterReduceGpuTest, AmaxAndAminPropagateNan) {
  for (ScatterReduce r : {ScatterReduce::kAmax, ScatterReduce::kAmin}) {
    for (bool include_self : {true, false}) {
      SCOPED_TRACE(str_cat(kReduceNames[static_cast<int>(r)], include_self ? "" : " no self"));
      ASSIGN_OR_FAIL(DeviceTensor out, upload({kNan, 1, 2, 3}, DType::kFloat32, {4}));
      ASSIGN_OR_FAIL(DeviceTensor index, upload({0, 1, 1, 2, 2}, DType::kInt64, {5}));
      ASSIGN_OR_FAIL(DeviceTensor src, upload({5, kNan, 4, -kInf, kInf}, DType::kFloat32, {5}));
      OpCall call{.target = "aten.scatter_reduce.two",
                  .inputs = {host_copy(out), host_copy(index), host_copy(src)},
                  .args = {TensorArg{0}, int64_t{0}, TensorArg{1}, TensorArg{2},
                           std::string(kReduceNames[static_cast<int>(r)]), include_self}};
      ASSIGN_OR_FAIL(std::vector<Tensor> expected, kiln::testing::run_op(call));
      ScatterParams params{r, include_self, 0};
      sync(launch_scatter(fn(scatter_kernel(names_, r, DType::kFloat32, DType::kInt64, false)),
                          out.tensor, 0, index.tensor, &src.tensor, params, nullptr, nullptr));
      expect_close(out.read(), kiln::testing::to_doubles(expected[0]), 0.0, "nan");
    }
  }
}

TEST_F(ScatterReduceGpuTest, OutOfRangeIndicesWriteNothing) {
  ASSIGN_OR_FAIL(DeviceTensor out, upload({1, 2, 3}, DType::kFloat32, {3}));
  ASSIGN_OR_FAIL(DeviceTensor index, upload({-1, 3, 1, 4e15}, DType::kInt64, {4}));
  ASSIGN_OR_FAIL(DeviceTensor src, upload({10, 20, 30, 40}, DType::kFloat32, {4}));
  ScatterParams sum{ScatterReduce::kSum, true, 0};
  sync(launch_scatter(
      fn(scatter_kernel(names_, ScatterReduce::kSum, DType::kFloat32, DType::kInt64, false)),
      out.tensor, 0, index.tensor, &src.tensor, sum, nullptr, nullptr));
  expect_close(out.read(), {1, 32, 3}, 0.0, "out of range");
}

// --- index_put --------------------------------------------------------------------------------

struct IndexSpec {
  Shape sizes;
  std::vector<double> values;
  DType dtype = DType::kInt64;
  Shape strides = {};
};
IndexSpec ints(Shape sizes, std::vector<double> values, DType dtype = DType::kInt64) {
  return IndexSpec{std::move(sizes), std::move(values), dtype};
}

class IndexPutGpuTest : public ScatterGpuTest {
 protected:
  // out = self.index_put(indices, values, accumulate) for self of `sizes` (a view with
  // `strides` when given), values of `value_sizes` (broadcast to the indexed shape).
  void run(const std::string& what, DType t, const Shape& sizes,
           const std::vector<std::optional<IndexSpec>>& indices, const Shape& value_sizes,
           bool accumulate, const Shape& strides = {}, const Shape& value_strides = {}) {
    SCOPED_TRACE(str_cat(dtype_name(t), accumulate ? " accumulate " : " ", what));
    std::mt19937 rng(19);
    ASSIGN_OR_FAIL(DeviceTensor out,
                   device_tensor(t, sizes, strides, [&](int64_t) { return exact_value(t, rng); }));
    ASSIGN_OR_FAIL(DeviceTensor values, device_tensor(t, value_sizes, value_strides, [&](int64_t) {
                     return exact_value(t, rng);
                   }));
    OpCall call{.target = "aten.index_put.default", .inputs = {host_copy(out), host_copy(values)}};
    OptionalTensorList list;
    std::vector<DeviceTensor> index_tensors;
    for (const std::optional<IndexSpec>& spec : indices) {
      if (!spec) {
        list.indices.push_back(-1);
        continue;
      }
      ASSIGN_OR_FAIL(DeviceTensor i,
                     index_tensor(spec->sizes, spec->values, spec->dtype, spec->strides));
      list.indices.push_back(static_cast<int>(call.inputs.size()));
      call.inputs.push_back(kiln::testing::make_tensor(spec->dtype, spec->sizes, spec->values));
      index_tensors.push_back(std::move(i));
    }
    call.args = {TensorArg{0}, list, TensorArg{1}, accumulate};
    ASSIGN_OR_FAIL(std::vector<Tensor> expected, kiln::testing::run_op(call));
    std::vector<const Tensor*> entries;
    size_t next = 0;
    for (const std::optional<IndexSpec>& spec : indices) {
      entries.push_back(spec ? &index_tensors[next++].tensor : nullptr);
    }
    sync(launch_index_put(fn(index_put_kernel(names_, t, accumulate)), out.tensor, entries,
                          values.tensor, nullptr));
    expect_close(out.read(), kiln::testing::to_doubles(expected[0]), 0.0, what);
  }
};

TEST_F(IndexPutGpuTest, PutWithDistinctIndices) {
  for (DType t : kDataTypes) {
    run("rows, values broadcast along them", t, {5, 4}, {ints({3}, {4, 0, -2})}, {4}, false);
    run("a None first", t, {3, 6, 4}, {std::nullopt, ints({2, 2}, {5, 0, -2, 2})}, {3, 2, 2, 4},
        false);
    run("two adjacent", t, {3, 6, 4, 5},
        {std::nullopt, ints({4}, {0, 5, -1, 2}), ints({4}, {3, 0, 1, -4})}, {1, 4, 5}, false);
    run("two separated: the block goes first", t, {3, 6, 4, 5},
        {ints({2, 1}, {2, -3}), std::nullopt, ints({3}, {0, 3, -2})}, {2, 3, 6, 5}, false);
    run("broadcast indices, scalar-like values", t, {4, 5, 6},
        {ints({3, 1}, {0, 3, -1}), ints({1, 2}, {4, -5})}, {1}, false);
    run("0-d index", t, {5, 3}, {ints({}, {-2})}, {3}, false);
  }
  run("int32 beside int64", DType::kFloat32, {6, 5, 4},
      {ints({2}, {1, -1}, DType::kInt32), std::nullopt, ints({2}, {3, 0})}, {2, 5}, false);
  run("transposed self, transposed values", DType::kFloat32, {7, 5},
      {std::nullopt, ints({3}, {4, 0, -2})}, {7, 3}, false, {1, 7}, {1, 7});
  IndexSpec strided = ints({4}, {3, -1, 0, 2});
  strided.strides = {2};
  run("strided index", DType::kFloat16, {6, 5}, {strided}, {4, 5}, false);
}

TEST_F(IndexPutGpuTest, AccumulateWithDuplicates) {
  for (DType t : kReduceTypes) {
    run("repeated rows", t, {5, 4}, {ints({6}, {1, 1, -4, 3, 1, 0})}, {6, 4}, true);
    run("embedding backward's form", t, {10, 8}, {ints({3, 4}, random_indices(12, 10, 3))},
        {3, 4, 8}, true);
    run("separated, broadcast values", t, {4, 3, 5},
        {ints({4}, {0, 0, 3, 0}), std::nullopt, ints({1}, {2})}, {3}, true);
    run("many writers", t, {16, 32}, {ints({2000}, random_indices(2000, 16, 4))}, {2000, 32}, true);
  }
}

// An index outside its dim after wrapping writes nothing; nothing outside out is touched.
TEST_F(IndexPutGpuTest, OutOfRangeIndicesWriteNothing) {
  ASSIGN_OR_FAIL(DeviceTensor out, upload({1, 2, 3, 4}, DType::kFloat32, {4}));
  ASSIGN_OR_FAIL(DeviceTensor index, upload({-5, 4, -1, 4e15}, DType::kInt64, {4}));
  ASSIGN_OR_FAIL(DeviceTensor values, upload({10, 20, 30, 40}, DType::kFloat32, {4}));
  sync(launch_index_put(fn(index_put_kernel(names_, DType::kFloat32, true)), out.tensor,
                        {&index.tensor}, values.tensor, nullptr));
  expect_close(out.read(), {1, 2, 3, 34}, 0.0, "out of range");
}

// --- masked_scatter ---------------------------------------------------------------------------

class MaskedScatterGpuTest : public ScatterGpuTest {
 protected:
  // self (of out's sizes, or broadcast to them by the caller's view) masked by `mask_sizes`
  // broadcast, source of `source_count` elements (a strided view when `strided_source`).
  void run(const std::string& what, DType t, const Shape& sizes, const Shape& mask_sizes,
           double density, bool strided_source = false, const Shape& strides = {}) {
    SCOPED_TRACE(str_cat(dtype_name(t), " ", what));
    std::mt19937 rng(29);
    ASSIGN_OR_FAIL(DeviceTensor out,
                   device_tensor(t, sizes, strides, [&](int64_t) { return exact_value(t, rng); }));
    std::bernoulli_distribution coin(density);
    ASSIGN_OR_FAIL(DeviceTensor mask, device_tensor(DType::kBool, mask_sizes, {}, [&](int64_t) {
                     return coin(rng) ? 1.0 : 0.0;
                   }));
    const int64_t n = shape_numel(sizes);
    const Shape source_strides = strided_source ? Shape{3} : Shape{};
    ASSIGN_OR_FAIL(DeviceTensor source, device_tensor(t, {n}, source_strides, [&](int64_t) {
                     return exact_value(t, rng);
                   }));
    OpCall call{.target = "aten.masked_scatter.default",
                .inputs = {host_copy(out), host_copy(mask), host_copy(source)},
                .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}}};
    ASSIGN_OR_FAIL(std::vector<Tensor> expected, kiln::testing::run_op(call));
    ASSIGN_OR_FAIL(DeviceTensor counts,
                   device_output(DType::kInt64, {masked_scatter_scratch_elements(n)}));
    sync(launch_masked_scatter(fn(masked_scatter_kernel(names_, t)), out.tensor, mask.tensor,
                               source.tensor, counts.tensor, nullptr));
    expect_close(out.read(), kiln::testing::to_doubles(expected[0]), 0.0, what);
  }
};

TEST_F(MaskedScatterGpuTest, MatchesTheReference) {
  for (DType t : kDataTypes) {
    run("small", t, {3, 5}, {3, 5}, 0.5);
    run("mask broadcast along rows", t, {40, 70}, {70}, 0.5);
    run("mask broadcast along columns, > 1024 elements", t, {50, 60}, {50, 1}, 0.3);
  }
  const DType f32 = DType::kFloat32;
  run("every element", f32, {3000}, {3000}, 1.0);
  run("no element", f32, {3000}, {3000}, 0.0);
  run("strided source, transposed self", f32, {64, 33}, {64, 33}, 0.7, true, {1, 64});
  run("more chunks than the scan block", f32, {1500, 1024}, {1500, 1024}, 0.5);
  run("0-d", f32, {}, {}, 1.0);
}

// True elements past source's end keep self (PyTorch raises an error there).
TEST_F(MaskedScatterGpuTest, ShortSourceLeavesTheRest) {
  ASSIGN_OR_FAIL(DeviceTensor out, upload({1, 2, 3, 4, 5}, DType::kFloat32, {5}));
  ASSIGN_OR_FAIL(DeviceTensor mask, upload({1, 0, 1, 1, 1}, DType::kBool, {5}));
  ASSIGN_OR_FAIL(DeviceTensor source, upload({10, 20}, DType::kFloat32, {2}));
  ASSIGN_OR_FAIL(DeviceTensor counts, device_output(DType::kInt64, {1}));
  sync(launch_masked_scatter(fn(masked_scatter_kernel(names_, DType::kFloat32)), out.tensor,
                             mask.tensor, source.tensor, counts.tensor, nullptr));
  expect_close(out.read(), {10, 2, 20, 4, 5}, 0.0, "short source");
}

}  // namespace
}  // namespace kiln::cuda
