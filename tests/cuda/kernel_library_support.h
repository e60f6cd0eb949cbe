// Shared by the kernel library's tests: the module of every family (what the NVRTC tests compile
// and the GPU tests load once), the GPU fixture, device tensors and CPU reference helpers.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cuda/kernel_library.h"
#include "cuda/kernel_module.h"
#include "cuda/nvrtc_compiler.h"

namespace kiln::cuda::kltest {

inline constexpr DType kFloatTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};
inline constexpr ReduceOp kReduceOps[] = {ReduceOp::kSum, ReduceOp::kMean, ReduceOp::kMax,
                                          ReduceOp::kMin, ReduceOp::kProd, ReduceOp::kAny,
                                          ReduceOp::kAll};
inline constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
inline constexpr double kInf = std::numeric_limits<double>::infinity();

#define ASSIGN_OR_FAIL(lhs, expr)                             \
  auto KILN_CONCAT(result_, __LINE__) = (expr);               \
  ASSERT_TRUE(KILN_CONCAT(result_, __LINE__).ok())            \
      << KILN_CONCAT(result_, __LINE__).status().to_string(); \
  lhs = std::move(KILN_CONCAT(result_, __LINE__)).value()

// Every family's kernels for one floating dtype, as an engine of that dtype would hold them.
inline void add_float_families(ModuleSource& module, DType t) {
  for (ReduceOp op : kReduceOps) {
    const bool logical = op == ReduceOp::kAny || op == ReduceOp::kAll;
    reduce_kernel(module, op, t, logical ? DType::kBool : t);
  }
  reduce_kernel(module, ReduceOp::kSum, t, DType::kFloat32);
  softmax_kernel(module, t, t, false);
  softmax_kernel(module, t, t, true);
  softmax_kernel(module, t, DType::kFloat32, false);
  attention_softmax_kernel(module, t, std::nullopt);
  attention_softmax_kernel(module, t, DType::kBool);
  attention_softmax_kernel(module, t, t);
  layer_norm_kernel(module, t, true, true, false);
  layer_norm_kernel(module, t, false, false, false);
  layer_norm_kernel(module, t, true, false, true);
  pool2d_kernel(module, PoolKind::kMax, t);
  pool2d_kernel(module, PoolKind::kAvg, t);
  adaptive_avg_pool2d_kernel(module, t);
  embedding_kernel(module, t, DType::kInt64);
  embedding_kernel(module, t, DType::kInt32);
  index_select_kernel(module, t, DType::kInt64);
  index_select_kernel(module, t, DType::kInt32);
  copy_kernel(module, t, t);
  copy_kernel(module, t, DType::kFloat32);
  copy_kernel(module, DType::kFloat32, t);
  mask_bias_kernel(module, t);
  fill_kernel(module, t);
  arange_kernel(module, t);
}

// The integer and bool variants the families have.
inline void add_integer_families(ModuleSource& module) {
  reduce_kernel(module, ReduceOp::kSum, DType::kInt32, DType::kInt64);
  reduce_kernel(module, ReduceOp::kSum, DType::kBool, DType::kInt64);
  reduce_kernel(module, ReduceOp::kMax, DType::kInt64, DType::kInt64);
  reduce_kernel(module, ReduceOp::kProd, DType::kInt64, DType::kInt64);
  reduce_kernel(module, ReduceOp::kAny, DType::kBool, DType::kBool);
  reduce_kernel(module, ReduceOp::kAll, DType::kUInt8, DType::kBool);
  pool2d_kernel(module, PoolKind::kMax, DType::kUInt8);
  embedding_kernel(module, DType::kInt8, DType::kInt64);
  index_select_kernel(module, DType::kInt64, DType::kInt64);
  copy_kernel(module, DType::kInt64, DType::kInt32);
  copy_kernel(module, DType::kFloat32, DType::kBool);
  copy_kernel(module, DType::kBool, DType::kFloat32);
  copy_kernel(module, DType::kFloat64, DType::kInt16);
  copy_kernel(module, DType::kUInt8, DType::kFloat16);
  fill_kernel(module, DType::kInt32);
  fill_kernel(module, DType::kBool);
  fill_kernel(module, DType::kInt64);
  arange_kernel(module, DType::kInt64);
  arange_kernel(module, DType::kInt32);
}

// Advanced indexing for every data dtype and cumsum for the (input, output) dtype pairs it meets.
constexpr DType kIndexDataTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                     DType::kInt64,   DType::kInt32,   DType::kBool};
constexpr std::pair<DType, DType> kScanTypes[] = {
    {DType::kFloat32, DType::kFloat32},   {DType::kFloat16, DType::kFloat16},
    {DType::kBFloat16, DType::kBFloat16}, {DType::kInt32, DType::kInt64},
    {DType::kInt64, DType::kInt64},       {DType::kBool, DType::kInt64},
    {DType::kFloat16, DType::kFloat32},   {DType::kFloat32, DType::kInt64}};
inline void add_index_and_scan_families(ModuleSource& module) {
  for (DType t : kIndexDataTypes) index_tensor_kernel(module, t);
  for (const auto& [in, out] : kScanTypes) cumsum_kernel(module, in, out);
}

inline ModuleSource full_module() {
  ModuleSource module;
  for (DType t : kFloatTypes) add_float_families(module, t);
  add_integer_families(module);
  add_index_and_scan_families(module);
  return module;
}

// --- on the GPU -------------------------------------------------------------------------------

// Values through a dtype and back: what the GPU sees when given `v`.
template <typename T>
T from_double(double v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
    return T(static_cast<float>(v));
  } else if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else {
    return static_cast<T>(v);
  }
}
template <typename T>
double to_double(T v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
    return static_cast<float>(v);
  } else {
    return static_cast<double>(v);
  }
}
inline std::vector<uint8_t> encode(const std::vector<double>& values, DType dtype) {
  std::vector<uint8_t> bytes(values.size() * dtype_size(dtype));
  dispatch_dtype(dtype, [&]<typename T>() {
    T* out = reinterpret_cast<T*>(bytes.data());
    for (size_t i = 0; i < values.size(); ++i) out[i] = from_double<T>(values[i]);
  });
  return bytes;
}
inline std::vector<double> decode(const std::vector<uint8_t>& bytes, DType dtype) {
  std::vector<double> values(bytes.size() / dtype_size(dtype));
  dispatch_dtype(dtype, [&]<typename T>() {
    const T* in = reinterpret_cast<const T*>(bytes.data());
    for (size_t i = 0; i < values.size(); ++i) values[i] = to_double<T>(in[i]);
  });
  return values;
}
inline std::vector<double> rounded(const std::vector<double>& values, DType dtype) {
  return decode(encode(values, dtype), dtype);
}

// Element offsets of a view in row-major order of its sizes.
inline std::vector<int64_t> view_offsets(const Shape& sizes, const Shape& strides,
                                         int64_t offset = 0) {
  std::vector<int64_t> offsets;
  const int64_t n = shape_numel(sizes);
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i, at = offset;
    for (size_t d = sizes.size(); d-- > 0;) {
      at += (rest % sizes[d]) * strides[d];
      rest /= sizes[d];
    }
    offsets.push_back(at);
  }
  return offsets;
}

// A device tensor viewing device storage that holds `storage` (encoded in dtype).
struct DeviceTensor {
  Tensor tensor;
  std::vector<double> storage;  // what was uploaded, after rounding to the dtype

  // The view's elements in row-major order, read back from the device.
  std::vector<double> read() const {
    std::vector<uint8_t> bytes(tensor.storage()->nbytes());
    EXPECT_EQ(
        cudaMemcpy(bytes.data(), tensor.storage()->data(), bytes.size(), cudaMemcpyDeviceToHost),
        cudaSuccess);
    const std::vector<double> all = decode(bytes, tensor.dtype());
    std::vector<double> out;
    for (int64_t at : view_offsets(tensor.sizes(), tensor.strides(), tensor.offset())) {
      out.push_back(all[at]);
    }
    return out;
  }
  // The whole storage, read back.
  std::vector<double> read_storage() const {
    std::vector<uint8_t> bytes(tensor.storage()->nbytes());
    EXPECT_EQ(
        cudaMemcpy(bytes.data(), tensor.storage()->data(), bytes.size(), cudaMemcpyDeviceToHost),
        cudaSuccess);
    return decode(bytes, tensor.dtype());
  }
  // The view's elements as uploaded, in row-major order.
  std::vector<double> values() const {
    std::vector<double> out;
    for (int64_t at : view_offsets(tensor.sizes(), tensor.strides(), tensor.offset())) {
      out.push_back(storage[at]);
    }
    return out;
  }
};

inline Result<DeviceTensor> upload(const std::vector<double>& storage, DType dtype, Shape sizes,
                                   Shape strides = {}, int64_t offset = 0) {
  if (strides.empty() && !sizes.empty()) strides = contiguous_strides(sizes);
  const std::vector<uint8_t> bytes = encode(storage, dtype);
  void* ptr = nullptr;
  if (cudaMalloc(&ptr, std::max<size_t>(bytes.size(), 16)) != cudaSuccess) {
    return internal_error("cudaMalloc failed");
  }
  std::shared_ptr<void> owner(ptr, [](void* p) { cudaFree(p); });
  if (cudaMemcpy(ptr, bytes.data(), bytes.size(), cudaMemcpyHostToDevice) != cudaSuccess) {
    return internal_error("cudaMemcpy failed");
  }
  KILN_ASSIGN_OR_RETURN(Tensor t,
                        Tensor::from_storage(Storage::borrow(ptr, bytes.size(), owner), dtype,
                                             std::move(sizes), std::move(strides), offset));
  return DeviceTensor{std::move(t), rounded(storage, dtype)};
}

// A contiguous device tensor filled with a sentinel, to be written by a kernel.
inline Result<DeviceTensor> device_output(DType dtype, Shape sizes) {
  return upload(std::vector<double>(shape_numel(sizes), -777.0), dtype, sizes);
}

inline std::vector<double> random_values(size_t n, uint32_t seed, double lo = -3.0,
                                         double hi = 3.0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

inline double tolerance(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat64 ? 1e-5
         : dtype == DType::kBFloat16                          ? 2e-2  // 8-bit mantissa
                                                              : 1e-2;
}

inline void expect_close(const std::vector<double>& actual, const std::vector<double>& expected,
                         double tol, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int shown = 0, bad = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double a = actual[i], e = expected[i];
    const bool same = (std::isnan(a) && std::isnan(e)) || a == e ||
                      std::fabs(a - e) <= tol * (1.0 + std::fabs(e));
    if (!same) {
      ++bad;
      if (shown++ < 5)
        ADD_FAILURE() << what << ": element " << i << " is " << a << ", expected " << e;
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << actual.size() << " elements differ";
}

// The module every GPU test uses: all families, compiled once for this device's arch and loaded.
// Never freed: unloading during static destruction could race the CUDA runtime's own teardown.
struct GpuModule {
  KernelModule* module = nullptr;
  std::string skip_reason;  // no device: tests skip
  std::string error;        // a device, but the module failed to build or load: tests fail
};
// `source` compiled for this device's arch and loaded (never freed, see GpuModule); a family's
// GPU tests load their own module this way.
inline GpuModule load_gpu_module(const std::string& source) {
  GpuModule s;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    s.skip_reason = "no CUDA device";
    return s;
  }
  auto arch = current_device_arch();
  if (!arch.ok()) {
    s.error = arch.status().to_string();
    return s;
  }
  auto compiled = compile_cuda_source(source, *arch, false);
  if (!compiled.ok()) {
    s.error = compiled.status().to_string();
    return s;
  }
  auto module = KernelModule::load(compiled->cubin, *arch);
  if (!module.ok()) {
    s.error = module.status().to_string();
    return s;
  }
  s.module = std::move(module).value().release();
  return s;
}

inline const GpuModule& gpu_module() {
  static const GpuModule state = load_gpu_module(full_module().text());
  return state;
}

// The fixture of a family's GPU tests over the module `Module()` loads: skips without a GPU,
// fails when the module did not load, finds entry points by name.
template <const GpuModule& (*Module)()>
class FamilyGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const GpuModule& gpu = Module();
    if (!gpu.skip_reason.empty()) GTEST_SKIP() << gpu.skip_reason;
    ASSERT_NE(gpu.module, nullptr) << gpu.error;
  }

  // The loaded entry point of `name` (names come from a scratch module: they are deterministic).
  static cudaKernel_t fn(const std::string& name) {
    auto kernel = Module().module->kernel(name);
    EXPECT_TRUE(kernel.ok()) << kernel.status().to_string();
    return kernel.ok() ? *kernel : nullptr;
  }
  static void sync(const Status& launched) {
    ASSERT_TRUE(launched.ok()) << launched.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }

  ModuleSource names_;
};

class KernelLibraryGpuTest : public FamilyGpuTest<gpu_module> {};

}  // namespace kiln::cuda::kltest
