#include "kernels/cpu/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/thread_pool.h"
#include "support/kernel_expect.h"
#include "support/kernel_values.h"

namespace kiln::cpu {
namespace {

using testing::expect_values_near;
using testing::kNaN;
using testing::random_floats;

// One sgemm problem with its stored operands; leading dimensions exceed the minimum by `pad` so
// the code cannot assume packed rows.
struct Problem {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  float alpha = 1.0f, beta = 0.0f;
  int64_t pad = 0;

  int64_t lda() const { return (trans_a ? m : k) + pad; }
  int64_t ldb() const { return (trans_b ? k : n) + pad; }
  int64_t ldc() const { return n + pad; }
  int64_t a_size() const { return (trans_a ? k : m) * lda(); }
  int64_t b_size() const { return (trans_b ? n : k) * ldb(); }
  int64_t c_size() const { return m * ldc(); }

  std::string describe() const {
    return "m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k) +
           " ta=" + std::to_string(trans_a) + " tb=" + std::to_string(trans_b) +
           " alpha=" + std::to_string(alpha) + " beta=" + std::to_string(beta) +
           " pad=" + std::to_string(pad);
  }
};

// alpha * op(A) op(B) + beta * C in double precision; beta == 0 ignores C.
std::vector<double> reference(const Problem& p, const float* a, const float* b, const float* c) {
  std::vector<double> out(static_cast<size_t>(p.m * p.n));
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < p.n; ++j) {
      double sum = 0.0;
      for (int64_t q = 0; q < p.k; ++q) {
        const double av = p.trans_a ? a[q * p.lda() + i] : a[i * p.lda() + q];
        const double bv = p.trans_b ? b[j * p.ldb() + q] : b[q * p.ldb() + j];
        sum += av * bv;
      }
      double v = p.alpha * sum;
      if (p.beta != 0.0f) v += static_cast<double>(p.beta) * c[i * p.ldc() + j];
      out[i * p.n + j] = v;
    }
  }
  return out;
}

// The m x n values of a row-major matrix with leading dimension `ld`, in row order.
std::vector<double> matrix_values(const float* c, int64_t m, int64_t n, int64_t ld) {
  std::vector<double> values;
  values.reserve(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) values.insert(values.end(), c + i * ld, c + i * ld + n);
  return values;
}

// Runs `p` through sgemm_with and compares with the double-precision reference. Padding
// columns of C must come back untouched.
void check(const Problem& p, GemmIsa isa, uint32_t seed) {
  const std::vector<float> a = random_floats(p.a_size(), seed);
  const std::vector<float> b = random_floats(p.b_size(), seed + 1);
  std::vector<float> c = random_floats(p.c_size(), seed + 2);
  if (p.beta == 0.0f) std::fill(c.begin(), c.end(), kNaN);
  const std::vector<double> want = reference(p, a.data(), b.data(), c.data());
  const std::vector<float> before = c;
  SgemmExtras extras;
  extras.isa = isa;
  sgemm_with(extras, p.trans_a, p.trans_b, p.m, p.n, p.k, p.alpha, a.data(), p.lda(), b.data(),
             p.ldb(), p.beta, c.data(), p.ldc());
  const std::string what = p.describe() + " isa=" + std::to_string(static_cast<int>(isa));
  expect_values_near(matrix_values(c.data(), p.m, p.n, p.ldc()), want, {}, what);
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = p.n; j < p.ldc(); ++j) {
      const float old = before[i * p.ldc() + j], now = c[i * p.ldc() + j];
      ASSERT_TRUE(old == now || (std::isnan(old) && std::isnan(now))) << what << " wrote padding";
    }
  }
}

std::vector<GemmIsa> isas() {
  std::vector<GemmIsa> out{GemmIsa::kAuto, GemmIsa::kPortable};
  if (gemm_isa_supported(GemmIsa::kAvx2)) out.push_back(GemmIsa::kAvx2);
  return out;
}

TEST(SgemmTest, SmallShapesAllTransposes) {
  const int64_t sizes[] = {0, 1, 2, 3, 5, 7, 8, 13, 17};
  uint32_t seed = 1;
  for (GemmIsa isa : isas()) {
    for (int64_t m : sizes) {
      for (int64_t n : sizes) {
        for (int64_t k : {0, 1, 4, 9}) {
          for (int t = 0; t < 4; ++t) {
            Problem p{(t & 1) != 0, (t & 2) != 0, m, n, k, 1.0f, (t & 1) ? 0.5f : 0.0f, t % 3};
            check(p, isa, seed++);
          }
        }
      }
    }
  }
}

TEST(SgemmTest, MediumShapesWithAlphaBeta) {
  struct Shape {
    int64_t m, n, k;
  };
  const Shape shapes[] = {{6, 16, 32},   {12, 32, 1},    {31, 47, 61},   {64, 64, 64},
                          {97, 101, 89}, {145, 40, 257}, {40, 145, 513}, {200, 33, 300},
                          {2, 300, 77},  {300, 2, 77},   {127, 129, 3}};
  const std::pair<float, float> scales[] = {
      {1.0f, 0.0f}, {1.0f, 1.0f}, {-0.5f, 2.0f}, {2.0f, -1.0f}};
  uint32_t seed = 1000;
  for (GemmIsa isa : isas()) {
    for (const Shape& s : shapes) {
      for (int t = 0; t < 4; ++t) {
        const auto [alpha, beta] = scales[(t + s.m) % 4];
        Problem p{(t & 1) != 0, (t & 2) != 0, s.m, s.n, s.k, alpha, beta, (t + 1) % 3};
        check(p, isa, seed++);
      }
    }
  }
}

TEST(SgemmTest, LargeShapesCrossEveryBlockBoundary) {
  // Beyond one KC slice (256), one MC block (144 rows) and one NC panel (3072 columns).
  const Problem problems[] = {{false, false, 13, 3100, 270, 1.0f, 0.0f, 1},
                              {true, true, 301, 37, 530, 1.0f, 1.0f, 0},
                              {false, true, 290, 170, 600, 0.75f, 0.25f, 2},
                              {true, false, 256, 256, 256, 1.0f, 0.0f, 0}};
  uint32_t seed = 5000;
  for (GemmIsa isa : isas()) {
    for (const Problem& p : problems) check(p, isa, seed++);
  }
}

TEST(SgemmTest, VectorShapes) {
  // m == 1 and n == 1 take the matrix-vector path; strided vectors come from the transposes.
  uint32_t seed = 7000;
  for (GemmIsa isa : isas()) {
    for (int64_t len : {1, 3, 8, 33, 2049}) {
      for (int64_t k : {1, 7, 64, 1000}) {
        for (int t = 0; t < 4; ++t) {
          check(Problem{(t & 1) != 0, (t & 2) != 0, 1, len, k, 1.5f, 0.0f, 2}, isa, seed++);
          check(Problem{(t & 1) != 0, (t & 2) != 0, len, 1, k, 1.0f, -1.0f, 1}, isa, seed++);
        }
      }
    }
  }
}

TEST(SgemmTest, BiasPerRowAndPerColumn) {
  struct Shape {
    int64_t m, n, k;
  };
  // Blocked products (several K slices and edge tiles), vector products and empty ones.
  const Shape shapes[] = {{37, 53, 300}, {150, 20, 70}, {1, 40, 33}, {40, 1, 33}, {5, 7, 0}};
  uint32_t seed = 8000;
  for (GemmIsa isa : isas()) {
    for (const Shape& s : shapes) {
      for (int t = 0; t < 8; ++t) {
        Problem p{(t & 1) != 0, (t & 2) != 0, s.m, s.n, s.k, 0.5f, (t & 4) ? 1.5f : 0.0f, 1};
        const GemmBias kind = t % 3 == 0 ? GemmBias::kPerColumn : GemmBias::kPerRow;
        const std::vector<float> a = random_floats(p.a_size(), seed);
        const std::vector<float> b = random_floats(p.b_size(), seed + 1);
        const std::vector<float> bias =
            random_floats(kind == GemmBias::kPerRow ? p.m : p.n, seed + 2);
        std::vector<float> c = random_floats(p.c_size(), seed + 3);
        if (p.beta == 0.0f) std::fill(c.begin(), c.end(), kNaN);
        seed += 4;
        std::vector<double> want = reference(p, a.data(), b.data(), c.data());
        for (int64_t i = 0; i < p.m; ++i) {
          for (int64_t j = 0; j < p.n; ++j)
            want[i * p.n + j] += bias[kind == GemmBias::kPerRow ? i : j];
        }
        SgemmExtras extras{kind, bias.data(), isa};
        sgemm_with(extras, p.trans_a, p.trans_b, p.m, p.n, p.k, p.alpha, a.data(), p.lda(),
                   b.data(), p.ldb(), p.beta, c.data(), p.ldc());
        expect_values_near(matrix_values(c.data(), p.m, p.n, p.ldc()), want, {},
                           p.describe() + " with bias");
      }
    }
  }
}

TEST(SgemmTest, BetaZeroIgnoresNaNInC) {
  const int64_t m = 37, n = 41, k = 19;
  const std::vector<float> a = random_floats(m * k, 1), b = random_floats(k * n, 2);
  std::vector<float> c(m * n, kNaN);
  sgemm(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
  for (float v : c) ASSERT_FALSE(std::isnan(v));
}

TEST(SgemmTest, EmptyProductScalesC) {
  std::vector<float> c = {1.0f, -2.0f, 3.0f, kNaN};
  sgemm(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.5f, c.data(), 2);
  EXPECT_EQ(c[0], 0.5f);
  EXPECT_EQ(c[1], -1.0f);
  EXPECT_EQ(c[2], 1.5f);
  EXPECT_TRUE(std::isnan(c[3]));
  sgemm(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.0f, c.data(), 2);
  for (float v : c) EXPECT_EQ(v, 0.0f);
}

TEST(SgemmTest, AlphaZeroDoesNotReadOperands) {
  std::vector<float> a(6, kNaN), b(6, kNaN), c = {1.0f, 2.0f, 3.0f, 4.0f};
  sgemm(false, false, 2, 2, 3, 0.0f, a.data(), 3, b.data(), 2, 2.0f, c.data(), 2);
  EXPECT_EQ(c, (std::vector<float>{2.0f, 4.0f, 6.0f, 8.0f}));
}

TEST(SgemmTest, ZeroRowsOrColumnsTouchNothing) {
  std::vector<float> c = {7.0f};
  sgemm(false, false, 0, 1, 5, 1.0f, nullptr, 5, nullptr, 1, 0.0f, c.data(), 1);
  sgemm(true, true, 1, 0, 5, 1.0f, nullptr, 1, nullptr, 5, 0.0f, c.data(), 1);
  EXPECT_EQ(c[0], 7.0f);
}

TEST(SgemmTest, ConcurrentCallersAndNestedCalls) {
  Problem p{false, true, 96, 80, 150, 1.0f, 0.0f, 0};
  const std::vector<float> a = random_floats(p.a_size(), 11), b = random_floats(p.b_size(), 12);
  const std::vector<double> want = reference(p, a.data(), b.data(), nullptr);
  auto run_one = [&] {
    std::vector<float> c(p.c_size(), kNaN);
    sgemm(p.trans_a, p.trans_b, p.m, p.n, p.k, 1.0f, a.data(), p.lda(), b.data(), p.ldb(), 0.0f,
          c.data(), p.ldc());
    expect_values_near(matrix_values(c.data(), p.m, p.n, p.ldc()), want, {}, "concurrent");
  };
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      for (int r = 0; r < 5; ++r) run_one();
    });
  }
  for (std::thread& t : callers) t.join();
  parallel_for(0, 6, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) run_one();
  });
}

TEST(SgemmBatchedTest, MatchesPerProductReference) {
  struct Case {
    bool ta, tb;
    int64_t batch, m, n, k;
    bool share_a, share_b;
  };
  const Case cases[] = {
      {false, false, 1, 20, 30, 40, false, false},    {true, false, 3, 17, 9, 33, false, false},
      {false, true, 8, 5, 64, 12, false, true},       {true, true, 5, 130, 70, 90, true, false},
      {false, false, 2, 200, 150, 100, false, false}, {false, false, 4, 1, 50, 60, false, false},
      {false, false, 3, 0, 5, 5, false, false}};
  uint32_t seed = 9000;
  for (const Case& cs : cases) {
    Problem p{cs.ta, cs.tb, cs.m, cs.n, cs.k, 1.25f, 0.5f, 1};
    const int64_t stride_a = cs.share_a ? 0 : p.a_size() + 3;
    const int64_t stride_b = cs.share_b ? 0 : p.b_size() + 5;
    const int64_t stride_c = p.c_size() + 7;
    const std::vector<float> a = random_floats(stride_a * (cs.batch - 1) + p.a_size(), seed++);
    const std::vector<float> b = random_floats(stride_b * (cs.batch - 1) + p.b_size(), seed++);
    std::vector<float> c = random_floats(stride_c * cs.batch, seed++);
    std::vector<std::vector<double>> want;
    for (int64_t i = 0; i < cs.batch; ++i) {
      want.push_back(
          reference(p, a.data() + i * stride_a, b.data() + i * stride_b, c.data() + i * stride_c));
    }
    sgemm_batched(p.trans_a, p.trans_b, cs.batch, p.m, p.n, p.k, p.alpha, a.data(), p.lda(),
                  stride_a, b.data(), p.ldb(), stride_b, p.beta, c.data(), p.ldc(), stride_c);
    for (int64_t i = 0; i < cs.batch; ++i) {
      expect_values_near(matrix_values(c.data() + i * stride_c, p.m, p.n, p.ldc()), want[i], {},
                         p.describe() + " batch item " + std::to_string(i));
    }
  }
}

}  // namespace
}  // namespace kiln::cpu
