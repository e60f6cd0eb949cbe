// cuDNN fused attention: which descs the planner may send to it (no GPU needed) and, on a GPU with
// cuDNN, its output against a CPU attention in double precision from the same fp16 inputs, and
// plans kept in the tactic cache restored bit for bit (or rebuilt when unusable).
#include "cuda/attention.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <thread>
#include <utility>

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

// Random fp16 q, k, v (and a [B, 1, Lq, Lk] bias when the desc has one) for a contiguous desc,
// on the host and on the GPU.
struct AttentionProblem {
  explicit AttentionProblem(AttentionDesc desc, uint32_t seed = 7) : d(std::move(desc)) {
    std::mt19937 rng(seed);
    q = random_halves(d.batch * d.heads * d.lq * d.e, rng);
    k = random_halves(d.batch * d.heads * d.lk * d.e, rng);
    v = random_halves(d.batch * d.heads * d.lk * d.ev, rng);
    if (d.has_bias) {
      bias = random_halves(d.batch * d.lq * d.lk, rng);
      d.bias_dims = {d.batch, 1, d.lq, d.lk};
      d.bias_strides = {d.lq * d.lk, d.lq * d.lk, d.lk, 1};
    }
    dq = std::make_unique<DeviceHalves>(q);
    dk = std::make_unique<DeviceHalves>(k);
    dv = std::make_unique<DeviceHalves>(v);
    dbias = std::make_unique<DeviceHalves>(bias.empty() ? std::vector<uint16_t>(8) : bias);
  }
  AttentionDesc d;
  std::vector<uint16_t> q, k, v, bias;
  std::unique_ptr<DeviceHalves> dq, dk, dv, dbias;
};

// Runs the plan once on the problem and returns o's fp16 bits.
std::vector<uint16_t> run_attention(const AttentionPlan& plan, const AttentionProblem& p) {
  const AttentionDesc& d = p.d;
  DeviceHalves dout(std::vector<uint16_t>(d.batch * d.heads * d.lq * d.ev, 0));
  void* workspace = nullptr;
  if (plan.workspace_bytes()) {
    EXPECT_EQ(cudaMalloc(&workspace, plan.workspace_bytes()), cudaSuccess);
  }
  AttentionArgs args{p.dq->ptr,
                     p.dk->ptr,
                     p.dv->ptr,
                     d.has_bias ? p.dbias->ptr : nullptr,
                     dout.ptr,
                     workspace,
                     plan.workspace_bytes()};
  Status run = plan.run(args, nullptr);
  EXPECT_TRUE(run.ok()) << run.to_string();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaFree(workspace);
  return dout.read();
}

// fp16 output (2^-11 relative) of values of magnitude ~1, P rounded to fp16 for P·V.
void expect_near_reference(const AttentionProblem& p, const std::vector<uint16_t>& out,
                           const std::string& what) {
  const std::vector<double> expected = reference(p.d, p.q, p.k, p.v, p.bias);
  ASSERT_EQ(out.size(), expected.size());
  double max_error = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    max_error = std::max(max_error, std::abs(half_to_float(out[i]) - expected[i]));
  }
  EXPECT_LT(max_error, 4e-3) << what;
}

void expect_matches_reference(AttentionDesc d) {
  SKIP_WITHOUT_CUDNN();
  const AttentionProblem p(std::move(d));
  auto plan = AttentionPlan::create(p.d, size_t{64} << 20, nullptr);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  expect_near_reference(p, run_attention(**plan, p), (*plan)->describe());
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

// ---- plans kept in the tactic cache ----

constexpr size_t kCacheTestWorkspace = size_t{64} << 20;

AttentionDesc cache_test_desc() {
  AttentionDesc d = desc(2, 3, 33, 40, 64);
  d.causal = true;
  return d;
}

TEST(FusedAttentionGpuTest, RestoredPlanMatchesTheBuiltOneBitForBit) {
  SKIP_WITHOUT_CUDNN();
  const std::string path = fresh_cache_path("kiln_attention_test", "restore.txt");
  const AttentionProblem p(cache_test_desc());
  std::vector<uint16_t> built_out;
  std::string built_plan;
  {
    TacticCache cache;  // this process's
    cache.set_path(path);
    auto built = AttentionPlan::create(p.d, kCacheTestWorkspace, nullptr, {&cache, "test sdpa"});
    ASSERT_TRUE(built.ok()) << built.status().to_string();
    EXPECT_FALSE((*built)->restored());
    built_out = run_attention(**built, p);
    built_plan = (*built)->describe();
    expect_near_reference(p, built_out, built_plan);
  }
  ASSERT_FALSE(cached_plan_key(path, "test sdpa").empty())
      << "cuDNN's attention plan was not kept: " << built_plan;

  TacticCache later;  // a later process's, reading the same file
  later.set_path(path);
  auto restored = AttentionPlan::create(p.d, kCacheTestWorkspace, nullptr, {&later, "test sdpa"});
  ASSERT_TRUE(restored.ok()) << restored.status().to_string();
  EXPECT_TRUE((*restored)->restored());
  EXPECT_EQ((*restored)->describe(), built_plan);  // the same engine and workspace
  EXPECT_EQ(run_attention(**restored, p), built_out);
  // Restored plans run from several threads like built ones.
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] { EXPECT_EQ(run_attention(**restored, p), built_out); });
  }
  for (std::thread& t : threads) t.join();

  // Another slot key holds nothing: that plan is built.
  auto other = AttentionPlan::create(p.d, kCacheTestWorkspace, nullptr, {&later, "other sdpa"});
  ASSERT_TRUE(other.ok()) << other.status().to_string();
  EXPECT_FALSE((*other)->restored());
}

TEST(FusedAttentionGpuTest, AnUnusableCachedPlanFallsBackToABuild) {
  SKIP_WITHOUT_CUDNN();
  const std::string path = fresh_cache_path("kiln_attention_test", "fallback.txt");
  TacticCache cache;
  cache.set_path(path);
  const AttentionProblem p(cache_test_desc());
  auto built = AttentionPlan::create(p.d, kCacheTestWorkspace, nullptr, {&cache, "test sdpa"});
  ASSERT_TRUE(built.ok()) << built.status().to_string();
  const std::vector<uint16_t> built_out = run_attention(**built, p);
  const std::string key = cached_plan_key(path, "test sdpa");
  ASSERT_FALSE(key.empty()) << "cuDNN's attention plan was not kept: " << (*built)->describe();
  const std::vector<uint8_t> good = cache.find_blob(key);
  ASSERT_FALSE(good.empty());
  // A whole, valid plan of another attention (with a bias: a tensor this one lacks).
  AttentionDesc with_bias = cache_test_desc();
  with_bias.causal = false;  // as AdditiveBias
  with_bias.has_bias = true;
  const AttentionProblem biased(with_bias);
  ASSERT_TRUE(
      AttentionPlan::create(biased.d, kCacheTestWorkspace, nullptr, {&cache, "biased sdpa"}).ok());
  const std::vector<uint8_t> other = cache.find_blob(cached_plan_key(path, "biased sdpa"));
  ASSERT_FALSE(other.empty());

  const std::vector<std::pair<const char*, std::vector<uint8_t>>> unusable = {
      {"not a plan", {'k', 'i', 'l', 'n', 0, '\n', 1}},
      {"cut short", std::vector<uint8_t>(good.begin(), good.begin() + good.size() / 2)},
      {"another attention's plan", other},
  };
  for (const auto& [what, blob] : unusable) {
    cache.store_blob(key, blob);  // whole in the cache's eyes; only cuDNN's side is wrong
    auto plan = AttentionPlan::create(p.d, kCacheTestWorkspace, nullptr, {&cache, "test sdpa"});
    ASSERT_TRUE(plan.ok()) << what << ": " << plan.status().to_string();
    EXPECT_FALSE((*plan)->restored()) << what;
    EXPECT_EQ(run_attention(**plan, p), built_out) << what;
    // The build replaced the unusable plan.
    auto again = AttentionPlan::create(p.d, kCacheTestWorkspace, nullptr, {&cache, "test sdpa"});
    ASSERT_TRUE(again.ok()) << what << ": " << again.status().to_string();
    EXPECT_TRUE((*again)->restored()) << what;
    EXPECT_EQ(run_attention(**again, p), built_out) << what;
  }
}

TEST(FusedAttentionTest, TacticKeyNamesTheWholeDesc) {
  const AttentionDesc d = desc(2, 3, 33, 40, 64);
  const std::string key = attention_tactic_key(d, 1024);
  EXPECT_EQ(key,
            "sdpa 2x3x33x40 e64 float16 q(6336,2112,64,1) k(7680,2560,64,1) "
            "v(7680,2560,64,1) o(6336,2112,64,1) scale 0x1p-3 ws1024");
  AttentionDesc other = d;
  other.scale = std::nextafter(d.scale, 1.0f);
  EXPECT_NE(attention_tactic_key(other, 1024), key);
  other = d;
  other.k_strides = {7680, 64, 192, 1};
  EXPECT_NE(attention_tactic_key(other, 1024), key);
  EXPECT_NE(attention_tactic_key(d, 2048), key);
}

}  // namespace
}  // namespace kiln::cuda
