// cuBLASLt GEMM plans against a double-precision CPU product computed here. Operands are random
// values already rounded to the GEMM's dtype, so the reference sees exactly what the GPU reads and
// the only differences are accumulation order, the epilogue's arithmetic and the rounding of D.
// Leading dims are padded and D's padding must come back untouched. GPU tests skip without a GPU;
// the validation tests run everywhere.
#include "cuda/gemm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numbers>
#include <random>
#include <string>
#include <vector>

namespace kiln::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // cuBLAS's recommendation for Hopper
// D's cells outside the product (padding): exact in every dtype, and never a product here.
constexpr float kUntouched = 512.0f;

// rtol = atol per dtype. fp32 runs with TF32 off and gets DESIGN.md's per-op 1e-4. fp16 gets its
// per-op 1e-2: D is rounded once to 11 bits (relative 4.9e-4), the rest is fp32 accumulation.
// bf16 has 8 bits: one rounding of D alone is up to 3.9e-3 relative, and an epilogue may round the
// product before adding the bias and activating, so two roundings (7.8e-3) must fit with room.
double tolerance(DType dtype) {
  switch (dtype) {
    case DType::kFloat16: return 1e-2;
    case DType::kBFloat16: return 2e-2;
    default: return 1e-4;
  }
}

bool gpu_available(std::string* why) {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    cudaGetLastError();
    *why = str_cat("no usable GPU (cudaGetDeviceCount: ", cudaGetErrorName(error), ")");
    return false;
  }
  if (count == 0) {
    *why = "no GPU";
    return false;
  }
  return true;
}

float round_to(DType dtype, float v) {
  if (dtype == DType::kFloat16) return half_to_float(float_to_half(v));
  if (dtype == DType::kBFloat16) return bfloat16_to_float(float_to_bfloat16(v));
  return v;
}

std::vector<uint8_t> to_bytes(DType dtype, const std::vector<float>& values) {
  const size_t size = dtype_size(dtype);
  std::vector<uint8_t> bytes(values.size() * size);
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::kFloat32) {
      std::memcpy(&bytes[i * size], &values[i], size);
    } else {
      const uint16_t bits =
          dtype == DType::kFloat16 ? float_to_half(values[i]) : float_to_bfloat16(values[i]);
      std::memcpy(&bytes[i * size], &bits, size);
    }
  }
  return bytes;
}

std::vector<float> from_bytes(DType dtype, const std::vector<uint8_t>& bytes) {
  const size_t size = dtype_size(dtype);
  std::vector<float> values(bytes.size() / size);
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::kFloat32) {
      std::memcpy(&values[i], &bytes[i * size], size);
    } else {
      uint16_t bits = 0;
      std::memcpy(&bits, &bytes[i * size], size);
      values[i] = dtype == DType::kFloat16 ? half_to_float(bits) : bfloat16_to_float(bits);
    }
  }
  return values;
}

// A cudaMalloc'ed buffer; failures are recorded as test failures (and leave it null).
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (const cudaError_t e = cudaMalloc(&data_, std::max<size_t>(bytes, 1)); e != cudaSuccess) {
      ADD_FAILURE() << "cudaMalloc(" << bytes << "): " << cudaGetErrorName(e);
      data_ = nullptr;
    }
  }
  // `values` in `dtype`, starting `offset_bytes` into the buffer (to test unaligned operands).
  static std::unique_ptr<DeviceBuffer> upload(DType dtype, const std::vector<float>& values,
                                              size_t offset_bytes = 0) {
    const std::vector<uint8_t> bytes = to_bytes(dtype, values);
    auto buffer = std::make_unique<DeviceBuffer>(bytes.size() + offset_bytes);
    buffer->offset_ = offset_bytes;
    if (buffer->data_ && !bytes.empty()) {
      const cudaError_t e =
          cudaMemcpy(buffer->get(), bytes.data(), bytes.size(), cudaMemcpyHostToDevice);
      if (e != cudaSuccess) ADD_FAILURE() << "cudaMemcpy to device: " << cudaGetErrorName(e);
    }
    return buffer;
  }
  ~DeviceBuffer() {
    if (data_) cudaFree(data_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return data_ ? static_cast<char*>(data_) + offset_ : nullptr; }
  std::vector<float> download(DType dtype) const {
    std::vector<uint8_t> bytes(bytes_ - offset_);
    if (!data_) return {};
    const cudaError_t e = cudaMemcpy(bytes.data(), get(), bytes.size(), cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) ADD_FAILURE() << "cudaMemcpy to host: " << cudaGetErrorName(e);
    return from_bytes(dtype, bytes);
  }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  size_t offset_ = 0;
};

// A GEMM with packed batches and each leading dim `pad` elements longer than its row.
GemmDesc make_desc(DType dtype, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b,
                   int64_t pad = 0, int64_t batch = 1) {
  GemmDesc d;
  d.dtype = dtype;
  d.allow_tf32 = false;
  d.m = m;
  d.n = n;
  d.k = k;
  d.batch = batch;
  d.trans_a = trans_a;
  d.trans_b = trans_b;
  d.lda = (trans_a ? m : k) + pad;
  d.ldb = (trans_b ? k : n) + pad;
  d.ldc = n + pad;
  d.ldd = n + pad;
  d.stride_a = (trans_a ? k : m) * d.lda;
  d.stride_b = (trans_b ? n : k) * d.ldb;
  d.stride_c = m * d.ldc;
  d.stride_d = m * d.ldd;
  return d;
}

size_t span(int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride) {
  return static_cast<size_t>((rows - 1) * ld + cols + (batch - 1) * stride);
}

// The operands of one GEMM on the host. `d` is D's initial contents; with `in_place`, C is D.
struct HostGemm {
  GemmDesc desc;
  bool in_place = false;
  std::vector<float> a, b, c, bias, d;
};

HostGemm random_gemm(const GemmDesc& desc, uint32_t seed, bool in_place = false) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  auto random = [&](size_t count) {
    std::vector<float> v(count);
    for (float& x : v) x = round_to(desc.dtype, dist(rng));
    return v;
  };
  const GemmDesc& g = desc;
  HostGemm p;
  p.desc = desc;
  p.in_place = in_place;
  p.a = random(span(g.trans_a ? g.k : g.m, g.trans_a ? g.m : g.k, g.lda, g.batch, g.stride_a));
  p.b = random(span(g.trans_b ? g.n : g.k, g.trans_b ? g.k : g.n, g.ldb, g.batch, g.stride_b));
  if (g.has_bias) p.bias = random(static_cast<size_t>(g.n));
  p.d.assign(span(g.m, g.n, g.ldd, g.batch, g.stride_d), kUntouched);
  if (g.has_c && in_place) {
    p.c = random(p.d.size());
    p.d = p.c;
  } else if (g.has_c) {
    p.c = random(span(g.m, g.n, g.ldc, g.batch, g.stride_c));
  }
  return p;
}

double activate(GemmEpilogue epilogue, double x) {
  switch (epilogue) {
    case GemmEpilogue::kRelu: return x > 0.0 ? x : 0.0;
    case GemmEpilogue::kGeluTanh: {
      const double inner = std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x);
      return 0.5 * x * (1.0 + std::tanh(inner));
    }
    case GemmEpilogue::kNone: break;
  }
  return x;
}

// D's whole span after the GEMM: the product's cells computed, the rest as they were.
std::vector<double> reference(const HostGemm& p) {
  const GemmDesc& g = p.desc;
  std::vector<double> out(p.d.begin(), p.d.end());
  for (int64_t e = 0; e < g.batch; ++e) {
    for (int64_t i = 0; i < g.m; ++i) {
      for (int64_t j = 0; j < g.n; ++j) {
        double sum = 0.0;
        for (int64_t q = 0; q < g.k; ++q) {
          const double av = p.a[e * g.stride_a + (g.trans_a ? q * g.lda + i : i * g.lda + q)];
          const double bv = p.b[e * g.stride_b + (g.trans_b ? j * g.ldb + q : q * g.ldb + j)];
          sum += av * bv;
        }
        double v = g.alpha * sum;
        if (g.has_c) v += static_cast<double>(g.beta) * p.c[e * g.stride_c + i * g.ldc + j];
        if (g.has_bias) v += p.bias[j];
        out[e * g.stride_d + i * g.ldd + j] = activate(g.epilogue, v);
      }
    }
  }
  return out;
}

// Cells equal to kUntouched in `want` (padding) must be exact; the rest within `tol`.
void expect_matches(const std::vector<float>& got, const std::vector<double>& want, double tol,
                    const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const bool padding = want[i] == kUntouched;
    const double diff = std::abs(got[i] - want[i]);
    if (std::isnan(got[i]) || (padding ? diff != 0.0 : diff > tol + tol * std::abs(want[i]))) {
      if (++bad <= 5) {
        ADD_FAILURE() << what << ": element " << i << (padding ? " (padding)" : "") << " is "
                      << got[i] << ", expected " << want[i] << " (tolerance " << tol << ")";
      }
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " elements differ";
}

class GemmGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!gpu_available(&why)) GTEST_SKIP() << why;
    auto handle = cublaslt_handle();
    ASSERT_TRUE(handle.ok()) << handle.status().to_string();
    handle_ = *handle;
    ASSERT_EQ(cudaStreamCreate(&stream_), cudaSuccess);
    workspace_ = std::make_unique<DeviceBuffer>(kWorkspaceBytes);
  }
  void TearDown() override {
    if (stream_) cudaStreamDestroy(stream_);
  }

  std::shared_ptr<const GemmPlan> plan(const GemmDesc& desc, int timing_iterations = 0) {
    auto created = GemmPlan::create(handle_, desc, kWorkspaceBytes, timing_iterations, stream_);
    EXPECT_TRUE(created.ok()) << created.status().to_string();
    return created.ok() ? *created : nullptr;
  }

  // Runs `plan` on `p`'s operands and returns D's span; `misalign` bytes shift A, B, D and the
  // bias off their allocation's alignment.
  std::vector<float> run(const GemmPlan& plan, const HostGemm& p, size_t misalign = 0) {
    const DType dtype = p.desc.dtype;
    auto a = DeviceBuffer::upload(dtype, p.a, misalign);
    auto b = DeviceBuffer::upload(dtype, p.b, misalign);
    auto d = DeviceBuffer::upload(dtype, p.d, misalign);
    auto c = DeviceBuffer::upload(dtype, p.c);
    auto bias = DeviceBuffer::upload(dtype, p.bias, misalign);
    GemmArgs args;
    args.a = a->get();
    args.b = b->get();
    args.c = p.desc.has_c ? (p.in_place ? d->get() : c->get()) : nullptr;
    args.bias = p.desc.has_bias ? bias->get() : nullptr;
    args.d = d->get();
    args.workspace = workspace_->get();
    args.workspace_bytes = kWorkspaceBytes;
    const Status status = plan.run(handle_, args, stream_);
    EXPECT_TRUE(status.ok()) << plan.describe() << ": " << status.to_string();
    EXPECT_EQ(cudaStreamSynchronize(stream_), cudaSuccess) << plan.describe();
    return d->download(dtype);
  }

  // Plans, runs and compares with the CPU (within `tol`, by default the dtype's).
  void check(const HostGemm& p, int timing_iterations = 0, double tol = 0.0) {
    auto gemm = plan(p.desc, timing_iterations);
    ASSERT_NE(gemm, nullptr);
    expect_matches(run(*gemm, p), reference(p), tol > 0.0 ? tol : tolerance(p.desc.dtype),
                   gemm->describe());
  }

  cublasLtHandle_t handle_ = nullptr;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<DeviceBuffer> workspace_;
};

TEST_F(GemmGpuTest, EveryTransposeCombinationInEveryDtype) {
  struct Size {
    int64_t m, n, k, pad;
  };
  uint32_t seed = 1;
  for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    for (Size s :
         {Size{7, 13, 5, 0}, Size{7, 13, 5, 3}, Size{64, 48, 40, 3}, Size{33, 40, 72, 8}}) {
      for (bool trans_a : {false, true}) {
        for (bool trans_b : {false, true}) {
          check(random_gemm(make_desc(dtype, s.m, s.n, s.k, trans_a, trans_b, s.pad), seed++));
        }
      }
    }
  }
}

TEST_F(GemmGpuTest, Float32WithTf32) {
  // TF32 keeps 10 mantissa bits of each input (2^-11 relative per operand), so a sum of 40
  // products of values in [-1, 1] is off by about 1e-3 of its magnitude: 1e-2 leaves room, and
  // still fails a wrong layout or transpose by far.
  for (bool trans_b : {false, true}) {
    GemmDesc d = make_desc(DType::kFloat32, 64, 48, 40, false, trans_b, 3);
    d.allow_tf32 = true;
    check(random_gemm(d, 50 + trans_b), 0, 1e-2);
  }
}

TEST_F(GemmGpuTest, BatchedWithABroadcastOperand) {
  uint32_t seed = 100;
  for (DType dtype : {DType::kFloat32, DType::kFloat16}) {
    for (bool trans_b : {false, true}) {
      GemmDesc d = make_desc(dtype, 9, 24, 16, false, trans_b, 2, 3);
      d.stride_b = 0;  // one B (a weight) for every batch entry
      check(random_gemm(d, seed++));
      GemmDesc e = make_desc(dtype, 9, 24, 16, trans_b, false, 0, 3);
      e.stride_a = 0;
      check(random_gemm(e, seed++));
    }
  }
}

TEST_F(GemmGpuTest, BatchedOutputInterleavedByRows) {
  // D as [m, batch, n] memory seen as batch x [m, n] (attention's heads written into one row):
  // the batch stride is shorter than a matrix.
  for (DType dtype : {DType::kFloat32, DType::kFloat16}) {
    GemmDesc d = make_desc(dtype, 10, 16, 8, false, true, 0, 4);
    d.ldd = d.batch * d.n;
    d.stride_d = d.n;
    check(random_gemm(d, 200 + static_cast<uint32_t>(dtype)));
  }
}

TEST_F(GemmGpuTest, BiasAndActivationEpilogues) {
  uint32_t seed = 300;
  for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    for (GemmEpilogue epilogue :
         {GemmEpilogue::kNone, GemmEpilogue::kRelu, GemmEpilogue::kGeluTanh}) {
      for (bool has_bias : {false, true}) {
        if (epilogue == GemmEpilogue::kNone && !has_bias) continue;
        for (bool trans_b : {false, true}) {
          // m = 7 and n = 13 also catch a bias broadcast along the wrong dim (length m vs n).
          GemmDesc d = make_desc(dtype, 7, 13, 24, false, trans_b, 1);
          d.epilogue = epilogue;
          d.has_bias = has_bias;
          check(random_gemm(d, seed++));
        }
      }
    }
  }
}

TEST_F(GemmGpuTest, BiasOnABatch) {
  GemmDesc d = make_desc(DType::kFloat16, 12, 40, 32, false, true, 0, 3);
  d.stride_b = 0;
  d.has_bias = true;
  d.epilogue = GemmEpilogue::kRelu;
  check(random_gemm(d, 400));
}

TEST_F(GemmGpuTest, AccumulatesIntoC) {
  uint32_t seed = 500;
  for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    GemmDesc d = make_desc(dtype, 19, 21, 11, true, false, 2);
    d.has_c = true;
    d.alpha = 2.0f;
    d.beta = 0.5f;
    d.ldc = d.n + 5;  // C laid out unlike D
    d.stride_c = d.m * d.ldc;
    check(random_gemm(d, seed++));

    GemmDesc in_place = make_desc(dtype, 19, 21, 11, false, true, 2);
    in_place.has_c = true;
    in_place.beta = -1.5f;
    in_place.has_bias = true;
    in_place.epilogue = GemmEpilogue::kRelu;
    check(random_gemm(in_place, seed++, /*in_place=*/true));
  }
}

TEST_F(GemmGpuTest, TimedPlanComputesWhatTheHeuristicPlanDoes) {
  for (DType dtype : {DType::kFloat32, DType::kFloat16}) {
    GemmDesc d = make_desc(dtype, 128, 96, 256, false, true);
    d.has_bias = true;
    d.epilogue = GemmEpilogue::kGeluTanh;
    const HostGemm p = random_gemm(d, 600);
    auto timed = plan(d, 2);
    auto first = plan(d, 0);
    ASSERT_NE(timed, nullptr);
    ASSERT_NE(first, nullptr);
    const std::string how = timed->describe();
    EXPECT_NE(how.find("gemm m=128 n=96 k=256 batch=1 "), std::string::npos) << how;
    EXPECT_NE(how.find(" nt bias+gelu_tanh ws="), std::string::npos) << how;
    EXPECT_TRUE(how.find("timed") != std::string::npos ||
                how.find("first of 1)") != std::string::npos)
        << how;
    const std::vector<float> got_timed = run(*timed, p);
    const std::vector<float> got_first = run(*first, p);
    const std::vector<double> want = reference(p);
    expect_matches(got_timed, want, tolerance(dtype), how);
    expect_matches(got_first, want, tolerance(dtype), first->describe());
    expect_matches(got_timed, std::vector<double>(got_first.begin(), got_first.end()),
                   tolerance(dtype), "timed vs heuristic plan");
  }
}

TEST_F(GemmGpuTest, OperandsAlignedOnlyToTheirElements) {
  // A view can start at any element: 2 bytes past a 256-byte boundary for f16, 4 for f32.
  for (DType dtype : {DType::kFloat16, DType::kFloat32}) {
    GemmDesc d = make_desc(dtype, 32, 64, 64, false, true);
    d.has_bias = true;
    const HostGemm p = random_gemm(d, 700);
    auto gemm = plan(d);
    ASSERT_NE(gemm, nullptr);
    expect_matches(run(*gemm, p, dtype_size(dtype)), reference(p), tolerance(dtype),
                   gemm->describe() + " (unaligned)");
  }
}

TEST_F(GemmGpuTest, CapturesIntoACudaGraph) {
  GemmDesc d = make_desc(DType::kFloat16, 64, 80, 48, false, true);
  d.has_bias = true;
  d.epilogue = GemmEpilogue::kRelu;
  const HostGemm p = random_gemm(d, 800);
  auto gemm = plan(d, 2);  // timing happens before capture, as the runtime plans before it
  ASSERT_NE(gemm, nullptr);
  auto a = DeviceBuffer::upload(d.dtype, p.a);
  auto b = DeviceBuffer::upload(d.dtype, p.b);
  auto bias = DeviceBuffer::upload(d.dtype, p.bias);
  auto out = DeviceBuffer::upload(d.dtype, p.d);
  GemmArgs args{a->get(),   b->get(),          nullptr,        bias->get(),
                out->get(), workspace_->get(), kWorkspaceBytes};
  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  const Status status = gemm->run(handle_, args, stream_);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream_, &graph), cudaSuccess);
  ASSERT_TRUE(status.ok()) << status.to_string();
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  EXPECT_EQ(cudaGraphLaunch(exec, stream_), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  expect_matches(out->download(d.dtype), reference(p), tolerance(d.dtype), "graph replay");
}

TEST_F(GemmGpuTest, RunRejectsBadArguments) {
  GemmDesc d = make_desc(DType::kFloat16, 16, 16, 16, false, false);
  auto gemm = plan(d);
  ASSERT_NE(gemm, nullptr);
  DeviceBuffer buffer(4096);
  GemmArgs args{buffer.get(), buffer.get(),      nullptr,        nullptr,
                buffer.get(), workspace_->get(), kWorkspaceBytes};
  GemmArgs no_a = args;
  no_a.a = nullptr;
  Status status = gemm->run(handle_, no_a, stream_);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
  EXPECT_NE(status.message().find("for A"), std::string::npos) << status.message();

  GemmArgs odd = args;
  odd.d = static_cast<char*>(buffer.get()) + 1;  // not on a 2-byte element
  status = gemm->run(handle_, odd, stream_);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();

  GemmDesc with_bias = d;
  with_bias.has_bias = true;
  auto biased = plan(with_bias);
  ASSERT_NE(biased, nullptr);
  status = biased->run(handle_, args, stream_);  // args.bias is null
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();

  GemmDesc in_place = d;
  in_place.has_c = true;
  in_place.ldc = d.ldd + 1;
  in_place.stride_c = d.m * in_place.ldc;
  auto accumulating = plan(in_place);
  ASSERT_NE(accumulating, nullptr);
  GemmArgs same = args;
  same.c = same.d;
  status = accumulating->run(handle_, same, stream_);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
  EXPECT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
}

TEST_F(GemmGpuTest, RunRejectsASmallerWorkspaceThanPlanned) {
  // Whether cuBLASLt wants a workspace is its choice; long-k products usually split k and do.
  std::shared_ptr<const GemmPlan> gemm;
  for (int64_t k : {8192, 32768}) {
    for (DType dtype : {DType::kFloat32, DType::kFloat16}) {
      auto candidate = plan(make_desc(dtype, 16, 16, k, false, false));
      if (candidate && candidate->workspace_bytes() > 0) gemm = candidate;
    }
  }
  if (!gemm) GTEST_SKIP() << "cuBLASLt chose no plan that needs a workspace";
  DeviceBuffer buffer(size_t{16} * 32768 * 4);
  GemmArgs args{buffer.get(),
                buffer.get(),
                nullptr,
                nullptr,
                buffer.get(),
                workspace_->get(),
                gemm->workspace_bytes() - 1};
  Status status = gemm->run(handle_, args, stream_);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
  EXPECT_NE(status.message().find("workspace"), std::string::npos) << status.message();
  args.workspace = nullptr;
  args.workspace_bytes = kWorkspaceBytes;
  status = gemm->run(handle_, args, stream_);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
}

TEST_F(GemmGpuTest, HandleIsCreatedOnce) {
  auto again = cublaslt_handle();
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(*again, handle_);
}

// --- Validation: runs without a GPU, because create() checks the desc before anything else.

Status create_status(const GemmDesc& d, cublasLtHandle_t handle = nullptr, int timing = 0) {
  auto plan = GemmPlan::create(handle, d, kWorkspaceBytes, timing, nullptr);
  return plan.ok() ? ok_status() : plan.status();
}

void expect_invalid(const GemmDesc& d, const std::string& part) {
  const Status status = create_status(d);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
  EXPECT_NE(status.message().find(part), std::string::npos)
      << "expected '" << part << "' in: " << status.message();
}

TEST(GemmValidationTest, RejectsFloat64BeforeTouchingTheGpu) {
  const Status status = create_status(make_desc(DType::kFloat64, 4, 4, 4, false, false));
  EXPECT_EQ(status.code(), StatusCode::kUnsupported) << status.to_string();
  EXPECT_NE(status.message().find("float64"), std::string::npos) << status.message();
  const Status ints = create_status(make_desc(DType::kInt32, 4, 4, 4, false, false));
  EXPECT_EQ(ints.code(), StatusCode::kUnsupported) << ints.to_string();
}

TEST(GemmValidationTest, RejectsMalformedDescs) {
  const GemmDesc good = make_desc(DType::kFloat16, 8, 12, 16, false, false);
  GemmDesc d = good;
  d.m = -1;
  expect_invalid(d, "m=-1");
  d = good;
  d.batch = 0;
  expect_invalid(d, "batch");
  d = good;
  d.lda = 15;  // A is [8, 16]
  expect_invalid(d, "lda: expected at least 16");
  d = make_desc(DType::kFloat16, 8, 12, 16, true, true);
  d.ldb = 12;  // B is stored [12, 16] when transposed: rows of k = 16
  expect_invalid(d, "ldb: expected at least 16");
  d = good;
  d.has_c = true;
  d.ldc = 11;
  expect_invalid(d, "ldc");
  d = good;
  d.ldd = 4;
  expect_invalid(d, "ldd");
  d = good;
  d.batch = 2;
  d.stride_a = -8;
  expect_invalid(d, "stride of A");
  d = good;
  d.batch = 2;
  d.stride_d = 0;
  expect_invalid(d, "stride_d");
  d = good;
  d.lda = int64_t{1} << 60;
  expect_invalid(d, "spans more than");
  expect_invalid(good, "cuBLASLt handle");  // a valid desc still needs a handle

  const Status negative_timing = create_status(good, nullptr, -1);
  EXPECT_EQ(negative_timing.code(), StatusCode::kInvalidArgument) << negative_timing.to_string();
  d = good;
  d.k = 0;
  const Status empty_k = create_status(d);
  EXPECT_EQ(empty_k.code(), StatusCode::kUnsupported) << empty_k.to_string();
}

TEST(GemmValidationTest, EmptyProductIsANoOp) {
  GemmDesc d = make_desc(DType::kFloat32, 0, 12, 16, false, false);
  auto plan = GemmPlan::create(nullptr, d, 0, 4, nullptr);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  EXPECT_EQ((*plan)->workspace_bytes(), 0u);
  EXPECT_NE((*plan)->describe().find("empty"), std::string::npos) << (*plan)->describe();
  const Status status = (*plan)->run(nullptr, GemmArgs{}, nullptr);
  EXPECT_TRUE(status.ok()) << status.to_string();
}

}  // namespace
}  // namespace kiln::cuda
