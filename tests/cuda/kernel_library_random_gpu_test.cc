// The random family on the GPU: Philox4x32-10 against the published known-answer vectors; rand
// in [0, 1) with U(0, 1)'s mean and variance (and, in half types, on the dtype's grid below 1);
// randn with N(0, 1)'s; randperm a permutation for every n up to the block's 4096 and in other
// dtypes; dropout's mask and scale exactly as the CPU kernel computes them, p == 1 dropping all,
// and the kept fraction near 1 - p; every launch advancing the generator so two launches, and
// two replays of a CUDA graph, draw different numbers. Moment bounds are the conformance
// harness's (tests/conformance/compare.py): 6 standard errors plus the dtype's rounding.
// Skipped without a CUDA device.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuda/kernel_library_random.h"
#include "cuda/kernel_module.h"
#include "kernel_library_support.h"

namespace kiln::cuda {
namespace {

using namespace kltest;

constexpr double kSentinel = -777.0;  // what device_output's storage holds before a launch

// Philox of (counter, key) cases for the known-answer test: 4 counter words and 2 key words in,
// 4 words out per case.
constexpr char kPhiloxTestEntry[] = R"(
extern "C" __global__ void kiln_test_philox(const unsigned int* in, unsigned int* out, int cases) {
  const int c = threadIdx.x;
  if (c >= cases) return;
  const unsigned int* w = in + 6 * c;
  const kiln_random::Block4 counter = {{w[0], w[1], w[2], w[3]}};
  const kiln_random::Block4 r = kiln_random::philox4x32_10(counter, w[4], w[5]);
  for (int j = 0; j < 4; ++j) out[4 * c + j] = r.w[j];
}
)";

std::vector<std::string> g_names;  // every entry point of random_module(), for a sanity check

const GpuModule& random_module() {
  static const GpuModule state = load_gpu_module([] {
    ModuleSource source;
    for (DType t : kFloatTypes) {
      g_names.push_back(rand_kernel(source, RandomDistribution::kUniform, t));
      g_names.push_back(rand_kernel(source, RandomDistribution::kNormal, t));
      g_names.push_back(dropout_kernel(source, t));
    }
    for (DType t : {DType::kInt64, DType::kInt32, DType::kInt16, DType::kInt8, DType::kUInt8,
                    DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
      g_names.push_back(randperm_kernel(source, t));
    }
    g_names.push_back(generator_advance_kernel(source));
    return source.text() + kPhiloxTestEntry;
  }());
  return state;
}

class RandomGpuTest : public FamilyGpuTest<random_module> {
 protected:
  void SetUp() override {
    FamilyGpuTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto state = generators_.current();
    ASSERT_TRUE(state.ok()) << state.status().to_string();
    state_ = *state;
  }

  static cudaKernel_t advance() { return fn("kiln_random_advance"); }
  GeneratorState read_state() const {
    GeneratorState s;
    EXPECT_EQ(cudaMemcpy(&s, state_, sizeof(s), cudaMemcpyDeviceToHost), cudaSuccess);
    return s;
  }

  // Draws `n` values of `distribution` in `dtype` (contiguous).
  std::vector<double> draw(RandomDistribution distribution, DType dtype, int64_t n) {
    ModuleSource names;
    auto out = device_output(dtype, {n});
    EXPECT_TRUE(out.ok());
    if (!out.ok()) return {};
    const Status launched =
        launch_rand(fn(rand_kernel(names, distribution, dtype)), advance(), out->tensor, state_,
                    nullptr);
    EXPECT_TRUE(launched.ok()) << launched.to_string();
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    return out->read();
  }

  DeviceGenerators generators_;
  GeneratorState* state_ = nullptr;
};

// The dtype's spacing just below 1 (compare.py's _dtype_step).
double dtype_step(DType dtype) {
  return dtype == DType::kFloat16 ? std::ldexp(1.0, -10)
         : dtype == DType::kBFloat16 ? std::ldexp(1.0, -7)
                                     : std::ldexp(1.0, -23);
}

// compare.py's _check_moments: sample mean and biased variance within 6 standard errors of the
// distribution's, plus the dtype's rounding.
void expect_moments(const std::vector<double>& x, double mean, double variance,
                    double fourth_moment, DType dtype, const std::string& what) {
  const double n = static_cast<double>(x.size());
  const double step = dtype_step(dtype) * std::max(1.0, std::sqrt(variance) * 4);
  double sum = 0.0;
  for (double v : x) sum += v;
  const double m = sum / n;
  EXPECT_LE(std::fabs(m - mean), 6.0 * std::sqrt(variance / n) + step) << what << ": mean " << m;
  double squares = 0.0;
  for (double v : x) squares += (v - m) * (v - m);
  const double var = squares / n;
  const double bound = 6.0 * std::sqrt((fourth_moment - variance * variance) / n) +
                       variance / n + 2 * step * std::sqrt(variance) + step * step;
  EXPECT_LE(std::fabs(var - variance), bound) << what << ": variance " << var;
}

TEST_F(RandomGpuTest, PhiloxMatchesThePublishedKnownAnswers) {
  // Random123's kat_vectors for philox4x32 with 10 rounds: (counter, key) -> output.
  const std::vector<unsigned int> in = {
      0, 0, 0, 0, 0, 0,
      0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu,
      0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u};
  const std::vector<unsigned int> expected = {
      0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u,
      0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu,
      0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u};
  void *d_in = nullptr, *d_out = nullptr;
  ASSERT_EQ(cudaMalloc(&d_in, in.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&d_out, expected.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(d_in, in.data(), in.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
  int cases = 3;
  void* args[] = {&d_in, &d_out, &cases};
  sync(launch_kernel(fn("kiln_test_philox"), dim3(1), dim3(32), 0, nullptr, args));
  std::vector<unsigned int> out(expected.size());
  ASSERT_EQ(cudaMemcpy(out.data(), d_out, out.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(out, expected);
  cudaFree(d_in);
  cudaFree(d_out);
}

TEST_F(RandomGpuTest, EveryEntryPointLoads) {
  for (const std::string& name : g_names) EXPECT_NE(fn(name), nullptr) << name;
}

TEST_F(RandomGpuTest, UniformIsInUnitIntervalWithUniformMoments) {
  for (DType t : kFloatTypes) {
    const std::string what = str_cat("rand ", dtype_name(t));
    const std::vector<double> x = draw(RandomDistribution::kUniform, t, (1 << 20) + 3);
    ASSERT_EQ(x.size(), size_t{(1 << 20) + 3});
    const double grid = std::ldexp(1.0, t == DType::kFloat16 ? 11 : t == DType::kBFloat16 ? 8 : 24);
    int outside = 0, off_grid = 0;
    for (double v : x) {
      outside += !(v >= 0.0 && v < 1.0);
      off_grid += v * grid != std::floor(v * grid);
    }
    EXPECT_EQ(outside, 0) << what;
    EXPECT_EQ(off_grid, 0) << what << ": values not multiples of 2^-bits";
    expect_moments(x, 0.5, 1.0 / 12, 1.0 / 80, t, what);
    // Both ends of the range are reached in a million draws, at the dtype's resolution.
    EXPECT_LT(*std::min_element(x.begin(), x.end()), 1e-3) << what;
    EXPECT_GT(*std::max_element(x.begin(), x.end()), 1 - 1e-2) << what;
  }
}

TEST_F(RandomGpuTest, NormalHasStandardMoments) {
  for (DType t : kFloatTypes) {
    const std::string what = str_cat("randn ", dtype_name(t));
    const std::vector<double> x = draw(RandomDistribution::kNormal, t, (1 << 20) + 1);
    int bad = 0;
    for (double v : x) bad += !std::isfinite(v);
    EXPECT_EQ(bad, 0) << what;
    expect_moments(x, 0.0, 1.0, 3.0, t, what);
    // The tails: P(|z| > 3) = 0.0027.
    double beyond = 0;
    for (double v : x) beyond += std::fabs(v) > 3.0;
    beyond /= static_cast<double>(x.size());
    EXPECT_NEAR(beyond, 0.0027, 6 * std::sqrt(0.0027 / x.size()) + 2e-4) << what;
  }
}

TEST_F(RandomGpuTest, StridedOutputsKeepTheirGaps) {
  // A view of every other element of a 2 x 10 storage, transposed.
  auto storage = upload(std::vector<double>(20, kSentinel), DType::kFloat32, {20});
  ASSERT_TRUE(storage.ok());
  auto view = Tensor::from_storage(storage->tensor.storage(), DType::kFloat32, {5, 2}, {2, 10}, 0);
  ASSERT_TRUE(view.ok());
  ModuleSource names;
  sync(launch_rand(fn(rand_kernel(names, RandomDistribution::kUniform, DType::kFloat32)),
                   advance(), *view, state_, nullptr));
  const std::vector<double> all = storage->read_storage();
  for (int i = 0; i < 20; ++i) {
    if (i % 2) {
      EXPECT_EQ(all[i], kSentinel) << i;
    } else {
      EXPECT_TRUE(all[i] >= 0 && all[i] < 1) << i << ": " << all[i];
    }
  }
}

TEST_F(RandomGpuTest, RandpermIsAPermutation) {
  const std::pair<DType, int64_t> cases[] = {
      {DType::kInt64, 1},    {DType::kInt64, 2},     {DType::kInt64, 37},
      {DType::kInt64, 1000}, {DType::kInt64, 4096},  {DType::kInt32, 513},
      {DType::kInt16, 300},  {DType::kInt8, 128},    {DType::kUInt8, 256},
      {DType::kFloat32, 37}, {DType::kFloat16, 2048}, {DType::kBFloat16, 256}};
  ModuleSource names;
  for (const auto& [t, n] : cases) {
    const std::string what = str_cat("randperm(", n, ") ", dtype_name(t));
    auto out = device_output(t, {n});
    ASSERT_TRUE(out.ok());
    sync(launch_randperm(fn(randperm_kernel(names, t)), advance(), out->tensor, state_, nullptr));
    std::vector<double> v = out->read();
    const std::vector<double> drawn = v;
    std::sort(v.begin(), v.end());
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(v[i], static_cast<double>(i)) << what << ": not a permutation";
    }
    if (n >= 37) {
      // Not the identity, nor reversed: a shuffle (each fails with probability 1 / n!).
      EXPECT_NE(drawn, v) << what;
      // About one fixed point, as for a uniform permutation (10 or more: p < 1e-6).
      int64_t fixed = 0;
      for (int64_t i = 0; i < n; ++i) fixed += drawn[i] == static_cast<double>(i);
      EXPECT_LT(fixed, 10) << what << ": " << fixed << " fixed points (expected about 1)";
    }
  }
  // n = 0 launches nothing and needs no state.
  auto empty = device_output(DType::kInt64, {0});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(launch_randperm(fn(randperm_kernel(names, DType::kInt64)), advance(), empty->tensor,
                              nullptr, nullptr)
                  .ok());
}

TEST_F(RandomGpuTest, RandpermPositionsAreUniform) {
  // 2000 permutations of 8: each value lands in each position 250 times on average.
  constexpr int kN = 8, kTrials = 2000;
  ModuleSource names;
  const cudaKernel_t kernel = fn(randperm_kernel(names, DType::kInt64));
  std::vector<int> counts(kN * kN, 0);
  auto out = device_output(DType::kInt64, {kN});
  ASSERT_TRUE(out.ok());
  for (int trial = 0; trial < kTrials; ++trial) {
    ASSERT_TRUE(launch_randperm(kernel, advance(), out->tensor, state_, nullptr).ok());
    const std::vector<double> v = out->read();  // synchronizes
    for (int i = 0; i < kN; ++i) ++counts[i * kN + static_cast<int>(v[i])];
  }
  const double expected = kTrials / static_cast<double>(kN);
  const double sd = std::sqrt(kTrials * (1.0 / kN) * (1 - 1.0 / kN));
  for (int c : counts) EXPECT_NEAR(c, expected, 6 * sd);
}

// The CPU kernel's rule: kept where the 53-bit uniform >= p; out = x * keep * float(1 / (1 - p))
// in fp32, rounded to the dtype. The mask is read back, and out checked against it exactly.
void expect_dropout(const std::vector<double>& x, const std::vector<double>& out,
                    const std::vector<double>& mask, double p, DType t, const std::string& what) {
  ASSERT_EQ(out.size(), x.size());
  ASSERT_EQ(mask.size(), x.size());
  const float scale = p < 1.0 ? static_cast<float>(1.0 / (1.0 - p)) : 0.0f;
  std::vector<double> expected(x.size());
  double kept = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_TRUE(mask[i] == 0.0 || mask[i] == 1.0) << what;
    kept += mask[i];
    expected[i] =
        static_cast<float>(x[i]) * static_cast<float>(mask[i]) * scale;
  }
  int bad = 0;
  const std::vector<double> rounded_expected = rounded(expected, t);
  for (size_t i = 0; i < x.size(); ++i) {
    const double a = out[i], e = rounded_expected[i];
    const bool same = (std::isnan(a) && std::isnan(e)) || a == e;
    if (!same && bad++ < 5) {
      ADD_FAILURE() << what << ": element " << i << " (x " << x[i] << ", mask " << mask[i]
                    << ") is " << a << ", expected " << e;
    }
  }
  EXPECT_EQ(bad, 0) << what;
  const double n = static_cast<double>(x.size());
  EXPECT_NEAR(kept / n, 1 - p, 6 * std::sqrt(p * (1 - p) / n) + 1e-12) << what;
}

TEST_F(RandomGpuTest, DropoutKeepsAndScalesAsTheReference) {
  constexpr int64_t kRows = 333, kCols = 301;  // odd: the last draw is half used
  std::vector<double> values = random_values(kRows * kCols, 7);
  values[5] = kNan;
  values[11] = kInf;
  values[12] = -kInf;
  values[13] = -0.0;
  ModuleSource names;
  for (DType t : kFloatTypes) {
    for (double p : {0.1, 0.5, 0.875, 1.0}) {
      const std::string what = str_cat("dropout ", dtype_name(t), " p = ", p);
      auto x = upload(values, t, {kRows, kCols});
      auto out = device_output(t, {kRows, kCols});
      auto mask = device_output(DType::kBool, {kRows, kCols});
      ASSERT_TRUE(x.ok() && out.ok() && mask.ok());
      sync(launch_dropout(fn(dropout_kernel(names, t)), advance(), x->tensor, &out->tensor,
                          &mask->tensor, p, state_, nullptr));
      expect_dropout(x->values(), out->read(), mask->read(), p, t, what);
    }
  }
}

TEST_F(RandomGpuTest, DropoutReadsAndWritesAnyStrides) {
  // x transposed, out contiguous, mask alone (out not written) and out alone.
  const std::vector<double> values = random_values(6 * 50, 3);
  auto x = upload(values, DType::kFloat32, {50, 6});
  ASSERT_TRUE(x.ok());
  auto xt = Tensor::from_storage(x->tensor.storage(), DType::kFloat32, {6, 50}, {1, 6}, 0);
  ASSERT_TRUE(xt.ok());
  std::vector<double> xt_values;
  for (int64_t i = 0; i < 6; ++i) {
    for (int64_t j = 0; j < 50; ++j) xt_values.push_back(x->storage[j * 6 + i]);
  }
  ModuleSource names;
  const cudaKernel_t kernel = fn(dropout_kernel(names, DType::kFloat32));
  auto out = device_output(DType::kFloat32, {6, 50});
  auto mask = device_output(DType::kBool, {6, 50});
  ASSERT_TRUE(out.ok() && mask.ok());
  sync(launch_dropout(kernel, advance(), *xt, &out->tensor, &mask->tensor, 0.3, state_, nullptr));
  expect_dropout(xt_values, out->read(), mask->read(), 0.3, DType::kFloat32, "transposed x");

  auto only_mask = device_output(DType::kBool, {6, 50});
  ASSERT_TRUE(only_mask.ok());
  sync(launch_dropout(kernel, advance(), *xt, nullptr, &only_mask->tensor, 0.3, state_, nullptr));
  double kept = 0;
  for (double v : only_mask->read()) kept += v;
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, 300);

  auto only_out = device_output(DType::kFloat32, {6, 50});
  ASSERT_TRUE(only_out.ok());
  sync(launch_dropout(kernel, advance(), *xt, &only_out->tensor, nullptr, 0.3, state_, nullptr));
  int zeros = 0, scaled = 0;
  const std::vector<double> y = only_out->read();
  for (size_t i = 0; i < y.size(); ++i) {
    const double e = static_cast<float>(xt_values[i]) * static_cast<float>(1.0 / 0.7);
    zeros += y[i] == 0.0;
    scaled += y[i] == static_cast<double>(static_cast<float>(e));
  }
  EXPECT_EQ(zeros + scaled, 300);
}

TEST_F(RandomGpuTest, EachLaunchDrawsNewNumbersAndAdvancesTheOffset) {
  const GeneratorState before = read_state();
  EXPECT_EQ(before.offset, 0u);
  const std::vector<double> a = draw(RandomDistribution::kUniform, DType::kFloat32, 1001);
  const std::vector<double> b = draw(RandomDistribution::kUniform, DType::kFloat32, 1001);
  EXPECT_NE(a, b);
  int same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  EXPECT_LT(same, 5);
  const GeneratorState after = read_state();
  EXPECT_EQ(after.seed, before.seed);
  EXPECT_EQ(after.offset, static_cast<uint64_t>(2 * rand_draws(1001)));
  // Another generator has another seed: its first numbers are not this one's.
  DeviceGenerators other;
  auto other_state = other.current();
  ASSERT_TRUE(other_state.ok());
  GeneratorState s;
  ASSERT_EQ(cudaMemcpy(&s, *other_state, sizeof(s), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_NE(s.seed, before.seed);
  EXPECT_EQ(s.offset, 0u);
  // The same device asks again: the same state.
  auto again = generators_.current();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, state_);
}

TEST_F(RandomGpuTest, GraphReplaysAdvanceTheGenerator) {
  constexpr int64_t kN = 4099;
  ModuleSource names;
  auto out = device_output(DType::kFloat16, {kN});
  ASSERT_TRUE(out.ok());
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  const Status captured =
      launch_rand(fn(rand_kernel(names, RandomDistribution::kNormal, DType::kFloat16)),
                  advance(), out->tensor, state_, stream);
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  ASSERT_TRUE(captured.ok()) << captured.to_string();
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  EXPECT_EQ(read_state().offset, 0u);  // capturing runs nothing
  std::vector<std::vector<double>> replays;
  for (int r = 0; r < 3; ++r) {
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    replays.push_back(out->read());
    EXPECT_EQ(read_state().offset, static_cast<uint64_t>((r + 1) * rand_draws(kN)));
  }
  EXPECT_NE(replays[0], replays[1]);
  EXPECT_NE(replays[1], replays[2]);
  EXPECT_NE(replays[0], replays[2]);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace kiln::cuda
