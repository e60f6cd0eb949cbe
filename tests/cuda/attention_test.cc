// cuDNN fused attention: which descs the planner may send to it (no GPU needed) and, on a GPU with
// cuDNN, its output against a CPU attention in double precision from the same fp16 inputs.
#include "cuda/attention.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "base/dtype.h"
#include "cudnn_test_support.h"

namespace kiln::cuda {
namespace {

std::vector<int64_t> bhle_strides(int64_t h, int64_t l, int64_t e) {
  return {h * l * e, l * e, e, 1};
}

AttentionDesc desc(int64_t b, int64_t h, int64_t lq, int64_t lk, int64_t e) {
  AttentionDesc d;
  d.dtype = DType::kFloat16;
  d.batch = b;
  d.heads = h;
  d.lq = lq;
  d.lk = lk;
  d.e = d.ev = e;
  d.q_strides = bhle_strides(h, lq, e);
  d.k_strides = d.v_strides = bhle_strides(h, lk, e);
  d.o_strides = bhle_strides(h, lq, e);
  d.scale = 1.0f / std::sqrt(static_cast<float>(e));
  return d;
}

TEST(FusedAttentionTest, EligibleDescs) {
  EXPECT_TRUE(fused_attention_eligible(desc(2, 12, 128, 128, 64)).ok());
  AttentionDesc bf16 = desc(1, 1, 7, 9, 128);
  bf16.dtype = DType::kBFloat16;
  EXPECT_TRUE(fused_attention_eligible(bf16).ok());
  // GPT-2's q: a view of the packed [B, L, 3 * H * E] projection.
  AttentionDesc packed = desc(2, 12, 512, 512, 64);
  packed.q_strides = packed.k_strides = packed.v_strides = {512 * 2304, 64, 2304, 1};
  EXPECT_TRUE(fused_attention_eligible(packed).ok());
}

TEST(FusedAttentionTest, IneligibleDescsSayWhy) {
  AttentionDesc fp32 = desc(2, 4, 16, 16, 32);
  fp32.dtype = DType::kFloat32;
  Status s = fused_attention_eligible(fp32);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("fp16 and bf16"), std::string::npos) << s.message();

  s = fused_attention_eligible(desc(2, 4, 16, 16, 12));
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("multiples of 8"), std::string::npos) << s.message();
  EXPECT_FALSE(fused_attention_eligible(desc(2, 4, 16, 16, 256)).ok());

  AttentionDesc strided = desc(2, 4, 16, 16, 32);
  strided.k_strides[3] = 2;
  s = fused_attention_eligible(strided);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("attention k strides (2048,512,32,2)"), std::string::npos)
      << s.message();

  AttentionDesc bad_bias = desc(2, 4, 16, 16, 32);
  bad_bias.has_bias = true;
  bad_bias.bias_dims = {2, 3, 16, 16};
  bad_bias.bias_strides = {768, 256, 16, 1};
  s = fused_attention_eligible(bad_bias);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("expected [2 or 1, 4 or 1, 16, 16]"), std::string::npos)
      << s.message();
}

TEST(FusedAttentionTest, Describe) {
  AttentionDesc d = desc(32, 12, 512, 512, 64);
  d.causal = true;
  EXPECT_EQ(describe_attention(d), "sdpa 32x12x512x512 e64 float16 causal");
  d.causal = false;
  d.has_bias = true;
  d.bias_dims = {32, 1, 512, 512};
  EXPECT_EQ(describe_attention(d), "sdpa 32x12x512x512 e64 float16 bias[32x1x512x512]");
}

// ---- GPU ----

struct DeviceHalves {
  explicit DeviceHalves(const std::vector<uint16_t>& host) : bytes(host.size() * 2) {
    EXPECT_EQ(cudaMalloc(&ptr, bytes), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(ptr, host.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceHalves() { cudaFree(ptr); }
  std::vector<uint16_t> read() const {
    std::vector<uint16_t> host(bytes / 2);
    EXPECT_EQ(cudaMemcpy(host.data(), ptr, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
  }
  void* ptr = nullptr;
  size_t bytes;
};

std::vector<uint16_t> random_halves(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<uint16_t> out(n);
  for (uint16_t& h : out) h = float_to_half(dist(rng));
  return out;
}

// o[b,h,i,:] = sum_j softmax_j(scale * q·k + bias, causal) v[b,h,j,:] in double, contiguous
// [B, H, L, E] operands; bias [B, 1, Lq, Lk] or empty.
std::vector<double> reference(const AttentionDesc& d, const std::vector<uint16_t>& q,
                              const std::vector<uint16_t>& k, const std::vector<uint16_t>& v,
                              const std::vector<uint16_t>& bias) {
  std::vector<double> o(d.batch * d.heads * d.lq * d.ev, 0.0);
  std::vector<double> p(d.lk);
  for (int64_t b = 0; b < d.batch; ++b) {
    for (int64_t h = 0; h < d.heads; ++h) {
      const int64_t bh = b * d.heads + h;
      for (int64_t i = 0; i < d.lq; ++i) {
        double max = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < d.lk; ++j) {
          double s = 0;
          for (int64_t e = 0; e < d.e; ++e) {
            s += half_to_float(q[(bh * d.lq + i) * d.e + e]) *
                 half_to_float(k[(bh * d.lk + j) * d.e + e]);
          }
          s *= d.scale;
          if (!bias.empty()) s += half_to_float(bias[(b * d.lq + i) * d.lk + j]);
          if (d.causal && j > i) s = -std::numeric_limits<double>::infinity();
          p[j] = s;
          max = std::max(max, s);
        }
        double sum = 0;
        for (double& x : p) sum += (x = std::exp(x - max));
        for (int64_t j = 0; j < d.lk; ++j) {
          for (int64_t e = 0; e < d.ev; ++e) {
            o[(bh * d.lq + i) * d.ev + e] +=
                p[j] / sum * half_to_float(v[(bh * d.lk + j) * d.ev + e]);
          }
        }
      }
    }
  }
  return o;
}

void expect_matches_reference(AttentionDesc d) {
  SKIP_WITHOUT_CUDNN();
  std::mt19937 rng(7);
  const auto q = random_halves(d.batch * d.heads * d.lq * d.e, rng);
  const auto k = random_halves(d.batch * d.heads * d.lk * d.e, rng);
  const auto v = random_halves(d.batch * d.heads * d.lk * d.ev, rng);
  std::vector<uint16_t> bias;
  if (d.has_bias) {
    bias = random_halves(d.batch * d.lq * d.lk, rng);
    d.bias_dims = {d.batch, 1, d.lq, d.lk};
    d.bias_strides = {d.lq * d.lk, d.lq * d.lk, d.lk, 1};
  }
  DeviceHalves dq(q), dk(k), dv(v), dbias(bias.empty() ? std::vector<uint16_t>(8) : bias);
  DeviceHalves dout(std::vector<uint16_t>(d.batch * d.heads * d.lq * d.ev, 0));
  auto plan = AttentionPlan::create(d, size_t{64} << 20, nullptr);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  void* workspace = nullptr;
  if ((*plan)->workspace_bytes()) {
    ASSERT_EQ(cudaMalloc(&workspace, (*plan)->workspace_bytes()), cudaSuccess);
  }
  AttentionArgs args{dq.ptr,
                     dk.ptr,
                     dv.ptr,
                     d.has_bias ? dbias.ptr : nullptr,
                     dout.ptr,
                     workspace,
                     (*plan)->workspace_bytes()};
  Status run = (*plan)->run(args, nullptr);
  ASSERT_TRUE(run.ok()) << run.to_string();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaFree(workspace);
  const std::vector<uint16_t> out = dout.read();
  const std::vector<double> expected = reference(d, q, k, v, bias);
  double max_error = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    max_error = std::max(max_error, std::abs(half_to_float(out[i]) - expected[i]));
  }
  // fp16 output (2^-11 relative) of values of magnitude ~1, P rounded to fp16 for P·V.
  EXPECT_LT(max_error, 4e-3) << (*plan)->describe();
}

TEST(FusedAttentionGpuTest, MatchesReference) {
  expect_matches_reference(desc(2, 3, 33, 33, 64));
}

TEST(FusedAttentionGpuTest, CausalCrossLengths) {
  AttentionDesc d = desc(1, 2, 17, 40, 32);
  d.causal = true;
  expect_matches_reference(d);
}

TEST(FusedAttentionGpuTest, AdditiveBias) {
  AttentionDesc d = desc(2, 2, 24, 24, 64);
  d.has_bias = true;
  expect_matches_reference(d);
}

}  // namespace
}  // namespace kiln::cuda
