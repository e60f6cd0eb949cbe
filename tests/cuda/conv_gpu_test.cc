// cuDNN convolutions on the GPU: every supported shape of conv (grouped, depthwise, strided,
// dilated, transposed, 3-D; NCHW and NHWC; fp32, fp16, bf16; fused epilogues) against a direct
// CPU convolution with double accumulation, plus plan limits, CUDA graphs, threads, and plans
// kept in the tactic cache (restored bit for bit, rebuilt when unusable). Skipped without a CUDA
// device or cuDNN.
#include "cuda/conv.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <thread>
#include <utility>

#include "conv_cases.h"
#include "cudnn_test_support.h"

namespace kiln::cuda {
namespace {

using namespace convtest;

double round_to(DType dtype, double v) {
  const float f = static_cast<float>(v);
  switch (dtype) {
    case DType::kFloat16: return half_to_float(float_to_half(f));
    case DType::kBFloat16: return bfloat16_to_float(float_to_bfloat16(f));
    default: return f;
  }
}

// A tensor's values in its physical layout (span elements), each exact in the test's dtype.
struct HostTensor {
  std::vector<int64_t> dims, strides;
  std::vector<double> values;

  int64_t offset(int64_t n, int64_t c, const std::vector<int64_t>& spatial) const {
    int64_t o = n * strides[0] + c * strides[1];
    for (size_t i = 0; i < spatial.size(); ++i) o += spatial[i] * strides[i + 2];
    return o;
  }
  double at(int64_t n, int64_t c, const std::vector<int64_t>& spatial) const {
    return values[offset(n, c, spatial)];
  }
};

int64_t span(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides) {
  int64_t last = 0;
  for (size_t i = 0; i < dims.size(); ++i) last += (dims[i] - 1) * strides[i];
  return last + 1;
}

HostTensor random_tensor(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides,
                         DType dtype, std::mt19937& rng) {
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  HostTensor t{dims, strides, std::vector<double>(span(dims, strides))};
  for (double& v : t.values) v = round_to(dtype, dist(rng));
  return t;
}

// Calls fn on every index of a box with the given extents.
void for_each_index(const std::vector<int64_t>& extents,
                    const std::function<void(const std::vector<int64_t>&)>& fn) {
  std::vector<int64_t> idx(extents.size(), 0);
  for (int64_t e : extents) {
    if (e <= 0) return;
  }
  while (true) {
    fn(idx);
    size_t i = idx.size();
    while (i > 0) {
      --i;
      if (++idx[i] < extents[i]) break;
      idx[i] = 0;
      if (i == 0) return;
    }
    if (idx.empty()) return;
  }
}

struct Problem {
  ConvCase c;
  ConvDesc desc;
  HostTensor x, w, bias, residual;
  HostTensor expected;  // y's layout
};

std::vector<std::vector<int64_t>> all_indices(const std::vector<int64_t>& extents) {
  std::vector<std::vector<int64_t>> out;
  for_each_index(extents, [&](const std::vector<int64_t>& idx) { out.push_back(idx); });
  return out;
}

// The convolution itself, straight from its definition, before the epilogue.
void reference_conv(Problem& p) {
  const ConvDesc& d = p.desc;
  const std::vector<int64_t> x_sp(d.x_dims.begin() + 2, d.x_dims.end());
  const std::vector<int64_t> y_sp(d.y_dims.begin() + 2, d.y_dims.end());
  const auto taps = all_indices(std::vector<int64_t>(d.w_dims.begin() + 2, d.w_dims.end()));
  const int64_t g = d.groups;
  const int64_t cin_g = d.x_dims[1] / g, cout_g = d.y_dims[1] / g;
  const size_t s = x_sp.size();
  // Where kernel tap k of position `small` reads (forward) or writes (transposed): the forward
  // conv's input position; false when that falls into the padding.
  std::vector<int64_t> pos(s);
  auto tap = [&](const std::vector<int64_t>& small, const std::vector<int64_t>& k,
                 const std::vector<int64_t>& large_extent) {
    for (size_t j = 0; j < s; ++j) {
      pos[j] = small[j] * d.stride[j] - d.padding[j] + k[j] * d.dilation[j];
      if (pos[j] < 0 || pos[j] >= large_extent[j]) return false;
    }
    return true;
  };
  for (int64_t n = 0; n < d.x_dims[0]; ++n) {
    if (!d.transposed) {
      const auto outs = all_indices(y_sp);
      for (int64_t co = 0; co < d.y_dims[1]; ++co) {
        const int64_t grp = co / cout_g;
        for (const auto& o : outs) {
          double acc = 0;
          for (int64_t ci = 0; ci < cin_g; ++ci) {
            for (const auto& k : taps) {
              if (tap(o, k, x_sp)) acc += p.x.at(n, grp * cin_g + ci, pos) * p.w.at(co, ci, k);
            }
          }
          p.expected.values[p.expected.offset(n, co, o)] = acc;
        }
      }
    } else {
      // Each input element scatters through the kernel into y.
      const auto ins = all_indices(x_sp);
      for (int64_t ci = 0; ci < d.x_dims[1]; ++ci) {
        const int64_t grp = ci / cin_g;
        for (const auto& i : ins) {
          const double xv = p.x.at(n, ci, i);
          for (int64_t c = 0; c < cout_g; ++c) {
            for (const auto& k : taps) {
              if (tap(i, k, y_sp)) {
                p.expected.values[p.expected.offset(n, grp * cout_g + c, pos)] +=
                    xv * p.w.at(ci, c, k);
              }
            }
          }
        }
      }
    }
  }
}

Problem make_problem(const ConvCase& c, uint32_t seed) {
  std::mt19937 rng(seed);
  Problem p;
  p.c = c;
  p.desc = desc_for(c);
  const ConvDesc& d = p.desc;
  p.x = random_tensor(d.x_dims, d.x_strides, c.dtype, rng);
  p.w = random_tensor(d.w_dims, d.w_strides, c.dtype, rng);
  if (c.bias) p.bias = random_tensor({d.y_dims[1]}, {1}, c.dtype, rng);
  if (c.residual) p.residual = random_tensor(d.y_dims, d.y_strides, c.dtype, rng);
  p.expected = HostTensor{d.y_dims, d.y_strides, std::vector<double>(span(d.y_dims, d.y_strides))};
  reference_conv(p);
  const std::vector<int64_t> y_sp(d.y_dims.begin() + 2, d.y_dims.end());
  for (int64_t n = 0; n < d.y_dims[0]; ++n) {
    for (int64_t co = 0; co < d.y_dims[1]; ++co) {
      for_each_index(y_sp, [&](const std::vector<int64_t>& o) {
        double& v = p.expected.values[p.expected.offset(n, co, o)];
        if (c.bias) v += p.bias.values[co];
        if (c.residual) v += p.residual.at(n, co, o);
        if (c.relu) v = std::max(v, 0.0);
      });
    }
  }
  return p;
}

std::vector<uint8_t> to_bytes(const HostTensor& t, DType dtype) {
  std::vector<uint8_t> bytes(t.values.size() * dtype_size(dtype));
  for (size_t i = 0; i < t.values.size(); ++i) {
    const float f = static_cast<float>(t.values[i]);
    if (dtype == DType::kFloat32) {
      std::memcpy(&bytes[i * 4], &f, 4);
    } else {
      const uint16_t h = dtype == DType::kFloat16 ? float_to_half(f) : float_to_bfloat16(f);
      std::memcpy(&bytes[i * 2], &h, 2);
    }
  }
  return bytes;
}

double from_bytes(const uint8_t* p, DType dtype) {
  if (dtype == DType::kFloat32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  return dtype == DType::kFloat16 ? half_to_float(h) : bfloat16_to_float(h);
}

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    EXPECT_EQ(cudaMalloc(&ptr_, std::max<size_t>(bytes, 1)), cudaSuccess);
    EXPECT_EQ(cudaMemset(ptr_, 0, bytes), cudaSuccess);
  }
  ~DeviceBuffer() {
    if (ptr_) (void)cudaFree(ptr_);
  }
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(other.bytes_) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    std::swap(ptr_, other.ptr_);
    std::swap(bytes_, other.bytes_);
    return *this;
  }
  static DeviceBuffer upload(const HostTensor& t, DType dtype) {
    const std::vector<uint8_t> bytes = to_bytes(t, dtype);
    DeviceBuffer b(bytes.size());
    EXPECT_EQ(cudaMemcpy(b.ptr_, bytes.data(), bytes.size(), cudaMemcpyHostToDevice), cudaSuccess);
    return b;
  }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// One problem's device buffers and the ConvArgs that point at them.
struct DeviceProblem {
  DeviceBuffer x, w, bias, residual, y, workspace;
  ConvArgs args;

  DeviceProblem(const Problem& p, size_t workspace_bytes) {
    const DType dtype = p.c.dtype;
    x = DeviceBuffer::upload(p.x, dtype);
    w = DeviceBuffer::upload(p.w, dtype);
    if (p.c.bias) bias = DeviceBuffer::upload(p.bias, dtype);
    if (p.c.residual) residual = DeviceBuffer::upload(p.residual, dtype);
    y = DeviceBuffer(p.expected.values.size() * dtype_size(dtype));
    workspace = DeviceBuffer(workspace_bytes);
    args.x = x.get();
    args.w = w.get();
    args.bias = bias.get();
    args.residual = residual.get();
    args.y = y.get();
    args.workspace = workspace.get();
    args.workspace_bytes = workspace_bytes;
    // The copies and memsets above ran on the legacy stream; tests run on other streams too.
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }
};

// Downloads y and compares it with the reference: |got - want| <= tol + tol * |want|.
void expect_matches(const Problem& p, const DeviceBuffer& y) {
  const DType dtype = p.c.dtype;
  std::vector<uint8_t> bytes(y.bytes());
  ASSERT_EQ(cudaMemcpy(bytes.data(), y.get(), bytes.size(), cudaMemcpyDeviceToHost), cudaSuccess);
  const std::vector<int64_t> y_sp(p.desc.y_dims.begin() + 2, p.desc.y_dims.end());
  int64_t checked = 0, bad = 0;
  for (int64_t n = 0; n < p.desc.y_dims[0]; ++n) {
    for (int64_t co = 0; co < p.desc.y_dims[1]; ++co) {
      for_each_index(y_sp, [&](const std::vector<int64_t>& o) {
        const int64_t off = p.expected.offset(n, co, o);
        const double want = p.expected.values[off];
        const double got = from_bytes(&bytes[off * dtype_size(dtype)], dtype);
        ++checked;
        if (!(std::fabs(got - want) <= p.c.tol + p.c.tol * std::fabs(want))) {
          if (++bad <= 5) {
            ADD_FAILURE() << "y[n=" << n << ", c=" << co << ", at offset " << off << "] = " << got
                          << ", expected " << want << " (tol " << p.c.tol << ")";
          }
        }
      });
    }
  }
  EXPECT_EQ(bad, 0) << bad << " of " << checked << " outputs differ";
  EXPECT_GT(checked, 0);
}

// Builds the plan, runs it once on the default stream and checks y.
std::shared_ptr<const ConvPlan> check_case(const ConvCase& c, uint32_t seed = 1) {
  const Problem p = make_problem(c, seed);
  auto plan = ConvPlan::create(p.desc, c.workspace_limit, c.autotune, nullptr);
  EXPECT_TRUE(plan.ok()) << plan.status().to_string();
  if (!plan.ok()) return nullptr;
  EXPECT_LE((*plan)->workspace_bytes(), c.workspace_limit);
  DeviceProblem dev(p, (*plan)->workspace_bytes());
  Status s = (*plan)->run(dev.args, nullptr);
  EXPECT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  expect_matches(p, dev.y);
  return *plan;
}

ConvCase conv2d(DType dtype, std::vector<int64_t> x, std::vector<int64_t> w, bool channels_last) {
  ConvCase c;
  c.dtype = dtype;
  c.x_dims = std::move(x);
  c.w_dims = std::move(w);
  c.stride = {1, 1};
  c.padding = {1, 1};
  c.dilation = {1, 1};
  c.channels_last = channels_last;
  // fp16 and bf16: inputs are exact and accumulation is fp32, so the error is y's rounding
  // (2^-11 relative for fp16, 2^-8 for bf16) plus the fp32 sums; 1e-2 and 2e-2 leave room for
  // engines that round the conv result once before the epilogue.
  c.tol = dtype == DType::kFloat32 ? 1e-4 : dtype == DType::kFloat16 ? 1e-2 : 2e-2;
  return c;
}

TEST(ConvGpuTest, Fp32Nchw) {
  SKIP_WITHOUT_CUDNN();
  check_case(conv2d(DType::kFloat32, {2, 8, 9, 9}, {16, 8, 3, 3}, false));
}

TEST(ConvGpuTest, Fp32NhwcStrided) {
  SKIP_WITHOUT_CUDNN();
  ConvCase c = conv2d(DType::kFloat32, {2, 8, 11, 10}, {16, 8, 3, 3}, true);
  c.stride = {2, 2};
  check_case(c);
}

TEST(ConvGpuTest, Fp16Nhwc) {
  SKIP_WITHOUT_CUDNN();
  check_case(conv2d(DType::kFloat16, {2, 32, 14, 14}, {64, 32, 3, 3}, true));
}

TEST(ConvGpuTest, Bf16Nhwc) {
  SKIP_WITHOUT_CUDNN();
  check_case(conv2d(DType::kBFloat16, {2, 16, 10, 10}, {32, 16, 3, 3}, true));
}

TEST(ConvGpuTest, Grouped) {
  SKIP_WITHOUT_CUDNN();
  ConvCase c = conv2d(DType::kFloat32, {2, 8, 9, 9}, {16, 2, 3, 3}, false);
  c.groups = 4;
  check_case(c);
}

TEST(ConvGpuTest, DepthwiseFp16Nhwc) {
  SKIP_WITHOUT_CUDNN();
  ConvCase c = conv2d(DType::kFloat16, {2, 32, 12, 12}, {32, 1, 3, 3}, true);
  c.groups = 32;
  c.bias = true;
  check_case(c);
}

TEST(ConvGpuTest, DepthwiseMultiplierFp32) {
  SKIP_WITHOUT_CUDNN();
  ConvCase c = conv2d(DType::kFloat32, {1, 8, 9, 9}, {16, 1, 5, 5}, false);
  c.groups = 8;
  c.padding = {2, 2};
  check_case(c);
}

TEST(ConvGpuTest, StridedDilatedPadded) {
  SKIP_WITHOUT_CUDNN();
  ConvCase c = conv2d(DType::kFloat32, {2, 6, 17, 15}, {8, 6, 3, 2}, false);
  c.stride = {2, 3};
  c.padding = {2, 1};
  c.dilation = {2, 2};
  ASSERT_EQ(desc_for(c).y_dims, (std::vector<int64_t>{2, 8, 9, 5}));
  check_case(c);
}

TEST(ConvGpuTest, BiasRelu) {
  SKIP_WITHOUT_CUDNN();
  ConvCase c = conv2d(DType::kFloat32, {2, 8, 9, 9}, {16, 8, 3, 3}, false);
  c.bias = true;
  c.relu = true;
  check_case(c);
}

TEST(ConvGpuTest, BiasResidualReluFp32) {
  SKIP_WITHOUT_CUDNN();
  ConvCase c = conv2d(DType::kFloat32, {2, 8, 9, 9}, {8, 8, 3, 3}, false);
  c.bias = c.residual = c.relu = true;
  check_case(c);
}

TEST(ConvGpuTest, BiasResidualReluFp16Nhwc) {
  SKIP_WITHOUT_CUDNN();
  ConvCase c = conv2d(DType::kFloat16, {2, 32, 14, 14}, {32, 32, 1, 1}, true);
  c.padding = {0, 0};
  c.bias = c.residual = c.relu = true;
  check_case(c);
}

TEST(ConvGpuTest, TransposedStride2OutputPadding1Grouped) {
  SKIP_WITHOUT_CUDNN();
  ConvCase c = conv2d(DType::kFloat32, {2, 8, 5, 6}, {8, 3, 3, 3}, false);
  c.transposed = true;
  c.groups = 2;
  c.stride = {2, 2};
  c.output_padding = {1, 1};
  c.bias = true;
  ASSERT_EQ(desc_for(c).y_dims, (std::vector<int64_t>{2, 6, 10, 12}));
  // cuDNN 9 has no engine for a strided fp32 dgrad without TF32 on sm_90 (it says
  // CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN for non-virtual fp32 dy): kiln must then say so
  // clearly rather than run something else. Where an engine exists, the result must match.
  const Problem p = make_problem(c, 1);
  auto plan = ConvPlan::create(p.desc, c.workspace_limit, c.autotune, nullptr);
  if (!plan.ok()) {
    EXPECT_EQ(plan.status().code(), StatusCode::kUnsupported);
    EXPECT_NE(plan.status().message().find("conv_transpose2d"), std::string::npos)
        << plan.status().to_string();
    return;
  }
  check_case(c);
}

TEST(ConvGpuTest, TransposedFp16Nhwc) {
  SKIP_WITHOUT_CUDNN();
  ConvCase c = conv2d(DType::kFloat16, {2, 16, 7, 7}, {16, 8, 4, 4}, true);
  c.transposed = true;
  c.stride = {2, 2};
  c.output_padding = {0, 0};
  check_case(c);
}

TEST(ConvGpuTest, Conv3dFp32) {
  SKIP_WITHOUT_CUDNN();
  ConvCase c;
  c.x_dims = {1, 4, 6, 7, 5};
  c.w_dims = {8, 4, 3, 3, 3};
  c.stride = {1, 2, 1};
  c.padding = {1, 1, 1};
  c.dilation = {1, 1, 1};
  c.bias = c.relu = true;
  check_case(c);
}

TEST(ConvGpuTest, AutotuneKeepsAPlanWithinTheLimit) {
  SKIP_WITHOUT_CUDNN();
  ConvCase c = conv2d(DType::kFloat16, {4, 32, 14, 14}, {64, 32, 3, 3}, true);
  c.autotune = true;
  c.bias = c.relu = true;
  c.workspace_limit = size_t{8} << 20;
  auto plan = check_case(c);
  ASSERT_NE(plan, nullptr);
  const std::string text = plan->describe();
  EXPECT_NE(text.find("conv2d x=[4,32,14,14] nhwc w=[64,32,3,3] y=[4,64,14,14] s=1,1 p=1,1 "
                      "d=1,1 g=1 f16 bias+relu ws="),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(" plan="), std::string::npos) << text;
}

TEST(ConvGpuTest, ZeroWorkspaceLimit) {
  SKIP_WITHOUT_CUDNN();
  ConvCase c = conv2d(DType::kFloat32, {2, 8, 9, 9}, {16, 8, 3, 3}, false);
  c.workspace_limit = 0;
  const Problem p = make_problem(c, 3);
  auto plan = ConvPlan::create(p.desc, 0, false, nullptr);
  if (!plan.ok()) {  // allowed, but only as "no engine", naming the conv
    EXPECT_EQ(plan.status().code(), StatusCode::kUnsupported) << plan.status().to_string();
    EXPECT_NE(plan.status().message().find("ws<=0"), std::string::npos);
    return;
  }
  EXPECT_EQ((*plan)->workspace_bytes(), 0u);
  DeviceProblem dev(p, 0);
  ASSERT_TRUE((*plan)->run(dev.args, nullptr).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  expect_matches(p, dev.y);
}

TEST(ConvGpuTest, RunRejectsMissingAndMisalignedPointers) {
  SKIP_WITHOUT_CUDNN();
  ConvCase c = conv2d(DType::kFloat32, {2, 8, 9, 9}, {16, 8, 3, 3}, false);
  c.bias = true;
  const Problem p = make_problem(c, 4);
  auto plan = ConvPlan::create(p.desc, kWorkspaceLimit, false, nullptr);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  DeviceProblem dev(p, (*plan)->workspace_bytes());
  ConvArgs args = dev.args;
  args.bias = nullptr;
  Status s = (*plan)->run(args, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("bias pointer is null"), std::string::npos) << s.message();
  args = dev.args;
  args.x = static_cast<const char*>(dev.args.x) + 4;
  s = (*plan)->run(args, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("16-byte aligned"), std::string::npos) << s.message();
  if ((*plan)->workspace_bytes() > 0) {
    args = dev.args;
    args.workspace_bytes = (*plan)->workspace_bytes() - 1;
    s = (*plan)->run(args, nullptr);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  }
}

TEST(ConvGpuTest, RunsInsideACudaGraph) {
  SKIP_WITHOUT_CUDNN();
  ConvCase c = conv2d(DType::kFloat16, {2, 32, 14, 14}, {64, 32, 3, 3}, true);
  c.bias = c.relu = true;
  const Problem p = make_problem(c, 5);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  auto plan = ConvPlan::create(p.desc, kWorkspaceLimit, false, stream);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  DeviceProblem dev(p, (*plan)->workspace_bytes());
  // As the engine runtime does: one run outside capture, then capture and replay.
  ASSERT_TRUE((*plan)->run(dev.args, stream).ok());
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), cudaSuccess);
  Status s = (*plan)->run(dev.args, stream);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  ASSERT_TRUE(s.ok()) << s.to_string();
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaMemset(dev.y.get(), 0, dev.y.bytes()), cudaSuccess);  // only the replay writes y
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  expect_matches(p, dev.y);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

TEST(ConvGpuTest, OnePlanRunsFromSeveralThreads) {
  SKIP_WITHOUT_CUDNN();
  ConvCase c = conv2d(DType::kFloat32, {2, 8, 9, 9}, {16, 8, 3, 3}, true);
  c.bias = c.relu = true;
  const ConvDesc desc = desc_for(c);
  auto plan = ConvPlan::create(desc, kWorkspaceLimit, false, nullptr);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      const Problem p = make_problem(c, 100 + t);  // different data per thread
      DeviceProblem dev(p, (*plan)->workspace_bytes());
      cudaStream_t stream = nullptr;
      ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
      for (int i = 0; i < 10; ++i) {
        Status s = (*plan)->run(dev.args, stream);
        ASSERT_TRUE(s.ok()) << s.to_string();
      }
      ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
      expect_matches(p, dev.y);
      cudaStreamDestroy(stream);
    });
  }
  for (std::thread& t : threads) t.join();
}

// ---- plans kept in the tactic cache ----

// Runs the plan once on the problem, checks y against the reference and returns y's bytes.
std::vector<uint8_t> run_checked(const ConvPlan& plan, const Problem& p) {
  DeviceProblem dev(p, plan.workspace_bytes());
  Status s = plan.run(dev.args, nullptr);
  EXPECT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  expect_matches(p, dev.y);
  std::vector<uint8_t> bytes(dev.y.bytes());
  EXPECT_EQ(cudaMemcpy(bytes.data(), dev.y.get(), bytes.size(), cudaMemcpyDeviceToHost),
            cudaSuccess);
  return bytes;
}

// A fused conv + bias + ReLU in fp16 NHWC: cuDNN's runtime-compiled fusion engines take it.
ConvCase cache_test_case() {
  ConvCase c = conv2d(DType::kFloat16, {2, 32, 14, 14}, {64, 32, 3, 3}, true);
  c.bias = c.relu = true;
  return c;
}

TEST(ConvGpuTest, RestoredPlanMatchesTheBuiltOneBitForBit) {
  SKIP_WITHOUT_CUDNN();
  const ConvCase c = cache_test_case();
  const Problem p = make_problem(c, 11);
  const std::string path = fresh_cache_path("kiln_conv_gpu_test", "restore.txt");
  TacticCache writer;  // this process's
  writer.set_path(path);
  // As an engine's first load: autotuning, the timing cache has no answer yet.
  auto built = ConvPlan::create(p.desc, c.workspace_limit, true, nullptr, {}, {&writer, "conv"});
  ASSERT_TRUE(built.ok()) << built.status().to_string();
  EXPECT_FALSE((*built)->restored());
  const std::string built_plan = (*built)->describe();
  if (cached_plan_key(path, "conv").empty()) {
    GTEST_SKIP() << "cuDNN does not serialize this engine: " << built_plan;
  }
  const std::vector<int64_t> timed = (*built)->plan_indices();
  const std::vector<uint8_t> built_y = run_checked(**built, p);
  // Bit for bit where the engine itself is (it may split K with atomics).
  const bool deterministic = run_checked(**built, p) == built_y;

  TacticCache later;  // a later process's, reading the same file
  later.set_path(path);
  // As a later load: the timing cache's answer, and the plans kept for it.
  auto restored =
      ConvPlan::create(p.desc, c.workspace_limit, true, nullptr, timed, {&later, "conv"});
  ASSERT_TRUE(restored.ok()) << restored.status().to_string();
  EXPECT_TRUE((*restored)->restored());
  EXPECT_EQ((*restored)->plan_indices(), timed);
  EXPECT_EQ((*restored)->describe(), built_plan);  // the same engines and workspace
  const std::vector<uint8_t> restored_y = run_checked(**restored, p);
  if (deterministic) EXPECT_EQ(restored_y, built_y);
  // Without autotuning, whatever plan is kept serves.
  auto untimed = ConvPlan::create(p.desc, c.workspace_limit, false, nullptr, {}, {&later, "conv"});
  ASSERT_TRUE(untimed.ok()) << untimed.status().to_string();
  EXPECT_TRUE((*untimed)->restored());

  // Autotuning without an answer times again rather than trust a kept plan.
  auto retimed = ConvPlan::create(p.desc, c.workspace_limit, true, nullptr, {}, {&later, "conv"});
  ASSERT_TRUE(retimed.ok()) << retimed.status().to_string();
  EXPECT_FALSE((*retimed)->restored());
  // A kept plan that is not the timing cache's answer is not taken.
  std::vector<int64_t> other_answer = (*retimed)->plan_indices();
  other_answer.back() += 1;
  auto other =
      ConvPlan::create(p.desc, c.workspace_limit, false, nullptr, other_answer, {&later, "conv"});
  ASSERT_TRUE(other.ok()) << other.status().to_string();
  EXPECT_FALSE((*other)->restored());
}

// As an engine's first call after a load: kept plans restored on the plan workers, several at
// once, each then run by this thread (with its own cuDNN handle, not the worker's).
TEST(ConvGpuTest, DeferredRestoresOnWorkersMatchTheBuiltPlans) {
  SKIP_WITHOUT_CUDNN();
  const std::string path = fresh_cache_path("kiln_conv_gpu_test", "deferred.txt");
  TacticCache writer;
  writer.set_path(path);
  std::vector<ConvCase> cases;
  for (int64_t channels : {16, 32, 48, 64}) {
    ConvCase c = conv2d(DType::kFloat16, {2, channels, 14, 14}, {64, channels, 3, 3}, true);
    c.bias = c.relu = true;
    cases.push_back(c);
  }
  std::vector<std::vector<int64_t>> timed;
  std::vector<std::string> described;
  for (size_t i = 0; i < cases.size(); ++i) {
    auto built = ConvPlan::create(desc_for(cases[i]), cases[i].workspace_limit, true, nullptr, {},
                                  {&writer, str_cat("conv ", i)});
    ASSERT_TRUE(built.ok()) << built.status().to_string();
    timed.push_back((*built)->plan_indices());
    described.push_back((*built)->describe());
  }
  TacticCache later;
  later.set_path(path);
  int device = 0;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  std::vector<std::shared_ptr<const ConvPlan>> deferred;
  for (size_t i = 0; i < cases.size(); ++i) {
    deferred.push_back(ConvPlan::create_deferred(device, desc_for(cases[i]),
                                                 cases[i].workspace_limit, true, nullptr, timed[i],
                                                 {&later, str_cat("conv ", i)}));
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(deferred[i]->ready().ok()) << deferred[i]->ready().to_string();
    EXPECT_EQ(deferred[i]->plan_indices(), timed[i]);
    EXPECT_EQ(deferred[i]->describe(), described[i]);
    const Problem p = make_problem(cases[i], 20 + static_cast<int>(i));
    const std::vector<uint8_t> y = run_checked(*deferred[i], p);
    EXPECT_FALSE(y.empty());
  }
}

TEST(ConvGpuTest, AnUnusableCachedPlanFallsBackToABuild) {
  SKIP_WITHOUT_CUDNN();
  const ConvCase c = cache_test_case();
  const Problem p = make_problem(c, 12);
  const std::string path = fresh_cache_path("kiln_conv_gpu_test", "fallback.txt");
  TacticCache cache;
  cache.set_path(path);
  auto built = ConvPlan::create(p.desc, c.workspace_limit, false, nullptr, {}, {&cache, "conv"});
  ASSERT_TRUE(built.ok()) << built.status().to_string();
  const std::string key = cached_plan_key(path, "conv");
  if (key.empty()) {
    GTEST_SKIP() << "cuDNN does not serialize this engine: " << (*built)->describe();
  }
  const std::vector<uint8_t> good = cache.find_blob(key);
  ASSERT_FALSE(good.empty());
  std::vector<std::pair<std::string, std::vector<uint8_t>>> unusable = {
      {"not a plan", {'k', 'i', 'l', 'n', 0, '\n', 1}},
      {"cut short", std::vector<uint8_t>(good.begin(), good.begin() + good.size() / 2)},
  };
  // A whole, valid plan of another convolution (without the bias this one reads).
  ConvCase no_bias = c;
  no_bias.bias = false;
  auto other = ConvPlan::create(desc_for(no_bias), c.workspace_limit, false, nullptr, {},
                                {&cache, "no bias conv"});
  ASSERT_TRUE(other.ok()) << other.status().to_string();
  const std::string other_key = cached_plan_key(path, "no bias conv");
  if (!other_key.empty()) unusable.push_back({"another conv's plan", cache.find_blob(other_key)});

  for (const auto& [what, blob] : unusable) {
    cache.store_blob(key, blob);  // whole in the cache's eyes; only cuDNN's side is wrong
    auto plan = ConvPlan::create(p.desc, c.workspace_limit, false, nullptr, {}, {&cache, "conv"});
    ASSERT_TRUE(plan.ok()) << what << ": " << plan.status().to_string();
    EXPECT_FALSE((*plan)->restored()) << what;
    run_checked(**plan, p);
    // The build replaced the unusable plan.
    auto again = ConvPlan::create(p.desc, c.workspace_limit, false, nullptr, {}, {&cache, "conv"});
    ASSERT_TRUE(again.ok()) << what << ": " << again.status().to_string();
    EXPECT_TRUE((*again)->restored()) << what;
    run_checked(**again, p);
  }
}

}  // namespace
}  // namespace kiln::cuda
