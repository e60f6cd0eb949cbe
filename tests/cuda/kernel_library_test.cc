// kiln's CUDA kernel library: every family compiles with NVRTC (no GPU needed), names and code are
// deterministic, launch functions reject bad shapes before touching the GPU; on a GPU, every
// family against a simple CPU computation, strided views included.
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

namespace kiln::cuda {
namespace {

constexpr DType kFloatTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};
constexpr ReduceOp kReduceOps[] = {ReduceOp::kSum,  ReduceOp::kMean, ReduceOp::kMax, ReduceOp::kMin,
                                   ReduceOp::kProd, ReduceOp::kAny,  ReduceOp::kAll};
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

#define ASSIGN_OR_FAIL(lhs, expr)                             \
  auto KILN_CONCAT(result_, __LINE__) = (expr);               \
  ASSERT_TRUE(KILN_CONCAT(result_, __LINE__).ok())            \
      << KILN_CONCAT(result_, __LINE__).status().to_string(); \
  lhs = std::move(KILN_CONCAT(result_, __LINE__)).value()

// Every family's kernels for one floating dtype, as an engine of that dtype would hold them.
void add_float_families(ModuleSource& module, DType t) {
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
void add_integer_families(ModuleSource& module) {
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

ModuleSource full_module() {
  ModuleSource module;
  for (DType t : kFloatTypes) add_float_families(module, t);
  add_integer_families(module);
  return module;
}

// --- no GPU needed ----------------------------------------------------------------------------

TEST(KernelLibraryTest, EveryFamilyCompilesForSm90AndSm80) {
  const ModuleSource module = full_module();
  const std::string source = module.text();
  for (const char* arch : {"sm_90", "sm_80"}) {
    auto compiled = compile_cuda_source(source, arch, false);
    ASSERT_TRUE(compiled.ok()) << arch << ": " << compiled.status().to_string();
    EXPECT_FALSE(compiled->cubin.empty()) << arch;
    // Entry points keep their extern "C" names in the image.
    for (const char* name : {"kiln_softmax_f16_f16_log", "kiln_reduce_mean_bf16_bf16",
                             "kiln_layer_norm_f32_w_b", "kiln_copy_i64_i32"}) {
      EXPECT_NE(compiled->cubin.find(name), std::string::npos) << arch << " lacks " << name;
    }
  }
}

TEST(KernelLibraryTest, CompilesWithPtx) {
  ModuleSource module;
  add_float_families(module, DType::kFloat16);
  auto compiled = compile_cuda_source(module.text(), "sm_90", true);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
  EXPECT_FALSE(compiled->cubin.empty());
  EXPECT_NE(compiled->ptx.find(".entry kiln_attention_softmax_f16_mask_f16"), std::string::npos);
  EXPECT_NE(compiled->ptx.find(".entry kiln_max_pool2d_f16"), std::string::npos);
}

// The families' templates compile for every dtype (f32, f16 and bf16 are covered above), even
// where an engine would not ask for them.
TEST(KernelLibraryTest, EveryDtypeCompilesInEveryFamily) {
  ModuleSource module;
  for (DType t : {DType::kFloat64, DType::kInt64, DType::kInt32, DType::kInt16, DType::kInt8,
                  DType::kUInt8, DType::kBool}) {
    reduce_kernel(module, ReduceOp::kSum, t, t);
    reduce_kernel(module, ReduceOp::kMax, t, t);
    softmax_kernel(module, t, t, false);
    attention_softmax_kernel(module, t, DType::kBool);
    layer_norm_kernel(module, t, true, true, false);
    pool2d_kernel(module, PoolKind::kAvg, t);
    adaptive_avg_pool2d_kernel(module, t);
    embedding_kernel(module, t, DType::kInt32);
    index_select_kernel(module, t, DType::kInt64);
    fill_kernel(module, t);
    arange_kernel(module, t);
    copy_kernel(module, t, DType::kFloat16);
    copy_kernel(module, DType::kBFloat16, t);
  }
  auto compiled = compile_cuda_source(module.text(), "sm_90", false);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
}

TEST(KernelLibraryTest, NamesAndCodeAreDeterministic) {
  const ModuleSource a = full_module(), b = full_module();
  EXPECT_EQ(a.text(), b.text());
  ModuleSource c;
  const std::string first = softmax_kernel(c, DType::kFloat16, DType::kFloat16, true);
  const std::string text = c.text();
  EXPECT_EQ(softmax_kernel(c, DType::kFloat16, DType::kFloat16, true), first);
  EXPECT_EQ(c.text(), text);  // asking again adds nothing
  EXPECT_EQ(first, "kiln_softmax_f16_f16_log");
  // Different arguments, different entry points.
  EXPECT_NE(softmax_kernel(c, DType::kFloat16, DType::kFloat16, false), first);
  EXPECT_NE(reduce_kernel(c, ReduceOp::kSum, DType::kFloat16, DType::kFloat32),
            reduce_kernel(c, ReduceOp::kSum, DType::kFloat16, DType::kFloat16));
  EXPECT_NE(layer_norm_kernel(c, DType::kFloat32, true, false, false),
            layer_norm_kernel(c, DType::kFloat32, true, false, true));
  EXPECT_NE(attention_softmax_kernel(c, DType::kFloat32, std::nullopt),
            attention_softmax_kernel(c, DType::kFloat32, DType::kBool));
}

TEST(KernelLibraryTest, ModuleSourceAddsEachPieceOnce) {
  ModuleSource module;
  EXPECT_TRUE(module.empty());
  EXPECT_TRUE(module.add_once("a", "// piece a\n"));
  EXPECT_FALSE(module.add_once("a", "// another a\n"));
  EXPECT_TRUE(module.add_once("b", "// piece b\n"));
  EXPECT_TRUE(module.contains("a"));
  EXPECT_FALSE(module.contains("c"));
  const std::string text = module.text();
  ASSERT_NE(text.find("struct KTensor"), std::string::npos);  // the prelude comes first
  EXPECT_LT(text.find("struct KTensor"), text.find("// piece a"));
  EXPECT_LT(text.find("// piece a"), text.find("// piece b"));
  EXPECT_EQ(text.find("// another a"), std::string::npos);
  // Families share their common code: it appears once however many entry points use it.
  ModuleSource shared;
  softmax_kernel(shared, DType::kFloat32, DType::kFloat32, false);
  attention_softmax_kernel(shared, DType::kFloat32, std::nullopt);
  copy_kernel(shared, DType::kFloat32, DType::kFloat16);
  const std::string shared_text = shared.text();
  const size_t first = shared_text.find("namespace kiln_softmax {");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(shared_text.find("namespace kiln_softmax {", first + 1), std::string::npos);
}

TEST(KernelLibraryTest, DtypeNames) {
  EXPECT_EQ(device_type_name(DType::kFloat16), "kiln_half");
  EXPECT_EQ(device_type_name(DType::kBFloat16), "kiln_bf16");
  EXPECT_EQ(device_type_name(DType::kInt64), "i64");
  EXPECT_EQ(device_type_name(DType::kUInt8), "unsigned char");
  EXPECT_EQ(dtype_tag(DType::kFloat32), "f32");
  EXPECT_EQ(dtype_tag(DType::kBool), "b8");
  EXPECT_NE(dtype_tag(DType::kInt8), dtype_tag(DType::kUInt8));
}

TEST(KernelLibraryTest, MakeKtensor) {
  ASSIGN_OR_FAIL(Tensor t, Tensor::zeros(DType::kFloat32, {4, 6}));
  const Tensor view = t.view_as({3, 2, 2}, {1, 12, 3}, 1);
  ASSIGN_OR_FAIL(KTensor k, make_ktensor(view));
  EXPECT_EQ(k.data, view.raw_data());
  EXPECT_EQ(k.rank, 3);
  EXPECT_EQ(k.sizes[0], 3);
  EXPECT_EQ(k.sizes[2], 2);
  EXPECT_EQ(k.strides[1], 12);
  EXPECT_EQ(k.strides[2], 3);
  const Tensor rank9 = Tensor::meta(DType::kFloat32, Shape(9, 1));
  auto bad = make_ktensor(rank9);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(bad.status().message().find("rank"), std::string::npos);
}

// Host tensors stand in for device ones: every call below must fail validation before it
// reaches the GPU (there is none here, and the kernel is null).
Tensor host(DType dtype, Shape sizes) {
  return Tensor::empty(dtype, std::move(sizes)).value();
}

void expect_invalid(const Status& status, std::string_view words) {
  ASSERT_FALSE(status.ok()) << "expected an error mentioning '" << words << "'";
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
  EXPECT_NE(status.message().find(words), std::string::npos) << status.to_string();
}

TEST(KernelLibraryTest, LaunchesValidateBeforeTouchingTheGpu) {
  const DType f32 = DType::kFloat32;
  const Tensor x = host(f32, {4, 6});
  expect_invalid(launch_reduce(nullptr, x, host(f32, {4}), nullptr), "keepdim");
  expect_invalid(launch_reduce(nullptr, x, host(f32, {4, 3}), nullptr), "dim 1 has size 3");
  expect_invalid(launch_reduce(nullptr, x, host(f32, {4, 1}), nullptr), "no kernel");

  expect_invalid(launch_softmax(nullptr, x, host(f32, {4, 5}), 1, nullptr), "sizes");
  expect_invalid(launch_softmax(nullptr, x, host(f32, {4, 6}), 2, nullptr), "dim");

  expect_invalid(
      launch_attention_softmax(nullptr, host(f32, {2, 3, 4}), nullptr, 1.0f, false, nullptr),
      "[B, H, Lq, Lk]");
  const Tensor scores = host(f32, {2, 3, 4, 5});
  const Tensor bad_mask = host(DType::kBool, {3, 5});
  expect_invalid(launch_attention_softmax(nullptr, scores, &bad_mask, 1.0f, false, nullptr),
                 "broadcast");
  const Tensor int_mask = host(DType::kInt32, {4, 5});
  expect_invalid(launch_attention_softmax(nullptr, scores, &int_mask, 1.0f, false, nullptr),
                 "mask");
  const Tensor transposed = scores.view_as({2, 3, 5, 4}, {60, 20, 1, 5}, 0);
  expect_invalid(launch_attention_softmax(nullptr, transposed, nullptr, 1.0f, false, nullptr),
                 "contiguous");

  const Tensor w5 = host(f32, {5});
  expect_invalid(launch_layer_norm(nullptr, x, nullptr, nullptr, x, 5, 1e-5, nullptr),
                 "trailing dims");
  expect_invalid(launch_layer_norm(nullptr, x, &w5, nullptr, x, 6, 1e-5, nullptr), "weight");
  expect_invalid(
      launch_layer_norm(nullptr, x, nullptr, nullptr, host(f32, {4, 7}), 6, 1e-5, nullptr),
      "sizes");

  const Tensor image = host(f32, {1, 2, 8, 8});
  Pool2dParams params;
  params.kernel[0] = params.kernel[1] = 2;
  expect_invalid(
      launch_pool2d(nullptr, host(f32, {2, 8, 8}), host(f32, {2, 4, 4}), params, nullptr), "4-D");
  expect_invalid(launch_pool2d(nullptr, image, host(f32, {1, 3, 4, 4}), params, nullptr),
                 "expected output");
  params.padding[1] = 2;
  expect_invalid(launch_pool2d(nullptr, image, host(f32, {1, 2, 6, 6}), params, nullptr),
                 "half the kernel");
  params.padding[1] = 0;
  params.stride[0] = 0;
  expect_invalid(launch_pool2d(nullptr, image, host(f32, {1, 2, 4, 4}), params, nullptr), "stride");
  expect_invalid(launch_adaptive_avg_pool2d(nullptr, image, host(f32, {1, 2, 3}), nullptr), "4-D");

  const Tensor table = host(f32, {10, 4});
  const Tensor ids = host(DType::kInt64, {2, 3});
  expect_invalid(launch_embedding(nullptr, table, ids, host(f32, {2, 3, 5}), nullptr),
                 "expected output");
  expect_invalid(launch_embedding(nullptr, table, host(f32, {2}), host(f32, {2, 4}), nullptr),
                 "int64 or int32");
  const Tensor index = host(DType::kInt64, {3});
  expect_invalid(launch_index_select(nullptr, x, 1, index, host(f32, {4, 6}), nullptr),
                 "expected output");
  expect_invalid(launch_index_select(nullptr, x, 2, index, host(f32, {4, 3}), nullptr), "dim");

  expect_invalid(launch_copy(nullptr, x, host(f32, {6, 4}), nullptr), "sizes");
  expect_invalid(launch_copy(nullptr, x, host(DType::kFloat16, {4, 6}), nullptr), "no kernel");
  expect_invalid(launch_arange(nullptr, x, 0.0, 1.0, nullptr), "1-D");
  expect_invalid(launch_fill(nullptr, x, 2.0, nullptr), "no kernel");

  // Nothing to do: no kernel, no data needed.
  EXPECT_TRUE(launch_softmax(nullptr, host(f32, {0, 6}), host(f32, {0, 6}), 1, nullptr).ok());
  EXPECT_TRUE(launch_copy(nullptr, host(f32, {3, 0}), host(f32, {3, 0}), nullptr).ok());
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
std::vector<uint8_t> encode(const std::vector<double>& values, DType dtype) {
  std::vector<uint8_t> bytes(values.size() * dtype_size(dtype));
  dispatch_dtype(dtype, [&]<typename T>() {
    T* out = reinterpret_cast<T*>(bytes.data());
    for (size_t i = 0; i < values.size(); ++i) out[i] = from_double<T>(values[i]);
  });
  return bytes;
}
std::vector<double> decode(const std::vector<uint8_t>& bytes, DType dtype) {
  std::vector<double> values(bytes.size() / dtype_size(dtype));
  dispatch_dtype(dtype, [&]<typename T>() {
    const T* in = reinterpret_cast<const T*>(bytes.data());
    for (size_t i = 0; i < values.size(); ++i) values[i] = to_double<T>(in[i]);
  });
  return values;
}
std::vector<double> rounded(const std::vector<double>& values, DType dtype) {
  return decode(encode(values, dtype), dtype);
}

// Element offsets of a view in row-major order of its sizes.
std::vector<int64_t> view_offsets(const Shape& sizes, const Shape& strides, int64_t offset = 0) {
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

Result<DeviceTensor> upload(const std::vector<double>& storage, DType dtype, Shape sizes,
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
Result<DeviceTensor> device_output(DType dtype, Shape sizes) {
  return upload(std::vector<double>(shape_numel(sizes), -777.0), dtype, sizes);
}

std::vector<double> random_values(size_t n, uint32_t seed, double lo = -3.0, double hi = 3.0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

double tolerance(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat64 ? 1e-5
         : dtype == DType::kBFloat16                          ? 2e-2  // 8-bit mantissa
                                                              : 1e-2;
}

void expect_close(const std::vector<double>& actual, const std::vector<double>& expected,
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
const GpuModule& gpu_module() {
  static const GpuModule state = [] {
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
    auto compiled = compile_cuda_source(full_module().text(), *arch, false);
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
  }();
  return state;
}

class KernelLibraryGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const GpuModule& gpu = gpu_module();
    if (!gpu.skip_reason.empty()) GTEST_SKIP() << gpu.skip_reason;
    ASSERT_NE(gpu.module, nullptr) << gpu.error;
  }

  // The loaded entry point of `name` (names come from a scratch module: they are deterministic).
  static cudaKernel_t fn(const std::string& name) {
    auto kernel = gpu_module().module->kernel(name);
    EXPECT_TRUE(kernel.ok()) << kernel.status().to_string();
    return kernel.ok() ? *kernel : nullptr;
  }
  static void sync(const Status& launched) {
    ASSERT_TRUE(launched.ok()) << launched.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }

  ModuleSource names_;
};

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
