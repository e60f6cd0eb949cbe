// Conformance of the linalg ops (inference + CPU kernels) with PyTorch 2.11 eager: matrix products
// against a double-precision reference computed here, convolutions against the direct definition
// (transposed ones in their gather form, unlike the kernels' scatter), error cases as PyTorch
// raises them. Hard-coded values were computed with torch on CPU.
#include <gtest/gtest.h>

#include <array>
#include <cmath>

#include "support/kernel_expect.h"
#include "support/kernel_values.h"

namespace kiln::testing {
namespace {

// Deterministic values in [-1, 1) (integers: in [-4, 4]).
Tensor random_tensor(DType dtype, Shape shape, uint32_t seed) {
  std::vector<double> values(static_cast<size_t>(shape_numel(shape)));
  uint32_t state = seed * 2654435761u + 1;
  for (double& v : values) {
    state = state * 1664525u + 1013904223u;
    const double u = static_cast<double>(state >> 8) / static_cast<double>(1u << 24);
    v = is_floating(dtype) ? 2.0 * u - 1.0 : std::floor(9.0 * u) - 4.0;
  }
  return make_tensor(dtype, std::move(shape), values);
}

// The view of `t` with dims `a` and `b` swapped.
Tensor swapped(const Tensor& t, int64_t a, int64_t b) {
  Shape sizes = t.sizes(), strides = t.strides();
  std::swap(sizes[a], sizes[b]);
  std::swap(strides[a], strides[b]);
  return t.view_as(sizes, strides, t.offset());
}
// `t` broadcast to `shape` (right-aligned), as a view with stride 0 on the broadcast dims.
Tensor broadcast_view(const Tensor& t, const Shape& shape) {
  const size_t extra = shape.size() - t.sizes().size();
  Shape strides(shape.size(), 0);
  for (size_t d = 0; d < t.sizes().size(); ++d) {
    strides[extra + d] = t.size(d) == shape[extra + d] ? t.strides()[d] : 0;
  }
  return t.view_as(shape, strides, t.offset());
}
// A contiguous tensor holding `shape` with dims a, b swapped, returned as a view of `shape`: the
// layout a permuted weight has.
Tensor transposed_layout(DType dtype, Shape shape, int64_t a, int64_t b, uint32_t seed) {
  Shape stored = shape;
  std::swap(stored[a], stored[b]);
  return swapped(random_tensor(dtype, stored, seed), a, b);
}
// Every other column of a wider tensor: no unit stride in the last dim.
Tensor strided_columns(DType dtype, Shape shape, uint32_t seed) {
  Shape wide = shape;
  wide.back() *= 2;
  Tensor t = random_tensor(dtype, wide, seed);
  Shape strides = t.strides();
  strides.back() = 2;
  return t.view_as(shape, strides, 0);
}

OpCall call2(std::string target, Tensor a, Tensor b) {
  return {.target = std::move(target), .inputs = {a, b}, .args = {TensorArg{0}, TensorArg{1}}};
}

// ---- reference matrix products
// -------------------------------------------------------------------

// a [batch, m, k] @ b [batch, k, n] (logical values) in double; integer results wrap to `dtype`.
std::vector<double> ref_bmm(const std::vector<double>& a, const std::vector<double>& b,
                            int64_t batch, int64_t m, int64_t k, int64_t n) {
  std::vector<double> out(static_cast<size_t>(batch * m * n), 0.0);
  for (int64_t bi = 0; bi < batch; ++bi) {
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double sum = 0.0;
        for (int64_t p = 0; p < k; ++p) sum += a[(bi * m + i) * k + p] * b[(bi * k + p) * n + j];
        out[(bi * m + i) * n + j] = sum;
      }
    }
  }
  return out;
}

std::vector<double> ref_mm(const Tensor& a, const Tensor& b) {
  return ref_bmm(to_doubles(a), to_doubles(b), 1, a.size(0), a.size(1), b.size(1));
}

TEST(LinalgMm, Float32ShapesAndLayouts) {
  for (auto [m, k, n] : {std::array<int64_t, 3>{1, 1, 1},
                         {2, 3, 4},
                         {7, 1, 5},
                         {1, 9, 1},
                         {70, 130, 90},
                         {33, 17, 65}}) {
    SCOPED_TRACE(::testing::Message() << m << "x" << k << "x" << n);
    const std::vector<std::pair<Tensor, Tensor>> operands = {
        {random_tensor(kF32, {m, k}, 1), random_tensor(kF32, {k, n}, 2)},
        {transposed_layout(kF32, {m, k}, 0, 1, 3), random_tensor(kF32, {k, n}, 4)},
        {random_tensor(kF32, {m, k}, 5), transposed_layout(kF32, {k, n}, 0, 1, 6)},
        {transposed_layout(kF32, {m, k}, 0, 1, 7), transposed_layout(kF32, {k, n}, 0, 1, 8)},
        {strided_columns(kF32, {m, k}, 9), strided_columns(kF32, {k, n}, 10)},
    };
    for (const auto& [a, b] : operands) {
      expect_tensor(run1(call2("aten.mm.default", a, b)), kF32, {m, n}, ref_mm(a, b));
    }
  }
}

TEST(LinalgMm, EmptyOperands) {
  expect_tensor(run1(call2("aten.mm.default", random_tensor(kF32, {0, 3}, 1),
                           random_tensor(kF32, {3, 2}, 2))),
                kF32, {0, 2}, {});
  // k = 0: an empty sum is zero.
  expect_tensor(run1(call2("aten.mm.default", random_tensor(kF32, {2, 0}, 1),
                           random_tensor(kF32, {0, 3}, 2))),
                kF32, {2, 3}, std::vector<double>(6, 0.0));
  expect_tensor(run1(call2("aten.mm.default", random_tensor(kI64, {2, 0}, 1),
                           random_tensor(kI64, {0, 2}, 2))),
                kI64, {2, 2}, std::vector<double>(4, 0.0));
}

TEST(LinalgMm, OtherDtypes) {
  for (DType dtype : {kF16, kBF16, kF64, kI64, kI32}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor a = random_tensor(dtype, {5, 6}, 11);
    const Tensor b = transposed_layout(dtype, {6, 3}, 0, 1, 12);
    // 16-bit floats: computed in float and rounded once, so within half an ulp of the reference.
    const double tol = dtype == kBF16 ? 1e-2 : dtype == kF16 ? 2e-3 : 1e-9;
    expect_tensor(run1(call2("aten.mm.default", a, b)), dtype, {5, 3}, ref_mm(a, b), tol);
  }
}

TEST(LinalgMm, IntegersWrapAround) {
  // torch.mm(x, x) for x = [[50, 100], [-106, -56]] in int8 and [[50, 100], [150, 200]] in uint8.
  const Tensor i8 = make_tensor(kI8, {2, 2}, {50, 100, -106, -56});
  expect_tensor(run1(call2("aten.mm.default", i8, i8)), kI8, {2, 2}, {92, -88, 124, -40});
  const Tensor u8 = make_tensor(kU8, {2, 2}, {50, 100, 150, 200});
  expect_tensor(run1(call2("aten.mm.default", u8, u8)), kU8, {2, 2}, {92, 168, 124, 216});
}

TEST(LinalgMm, Errors) {
  expect_error(
      call2("aten.mm.default", random_tensor(kF32, {2, 4}, 1), random_tensor(kF32, {5, 3}, 2)),
      {"aten.mm.default", "expected mat2 with 5 rows to match mat1's 4 columns", "float32[2, 4]",
       "float32[5, 3]"});
  expect_error(
      call2("aten.mm.default", random_tensor(kF32, {2, 3}, 1), random_tensor(kF16, {3, 3}, 2)),
      {"same dtype", "float32", "float16"});
  expect_error(
      call2("aten.mm.default", random_tensor(kF32, {2, 3}, 1), random_tensor(kF32, {3}, 2)),
      {"expected mat2 to be 2-D", "float32[3]"});
  expect_error(
      call2("aten.mm.default", make_tensor(kBool, {2, 2}, {1}), make_tensor(kBool, {2, 2}, {1})),
      {"expected a numeric dtype, found bool"});
}

OpCall addmm_call(std::string target, Tensor bias, Tensor a, Tensor b, double beta, double alpha) {
  return {.target = std::move(target),
          .inputs = {bias, a, b},
          .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}},
          .kwargs = {{"beta", beta}, {"alpha", alpha}}};
}

TEST(LinalgAddmm, BiasBroadcastAndScalars) {
  const Tensor a = random_tensor(kF32, {4, 6}, 1);
  const Tensor b = transposed_layout(kF32, {6, 5}, 0, 1, 2);
  const std::vector<double> prod = ref_mm(a, b);
  for (const Shape& bias_shape : {Shape{5}, Shape{4, 1}, Shape{4, 5}, Shape{}, Shape{1, 5}}) {
    SCOPED_TRACE(shape_to_string(bias_shape));
    const Tensor bias = random_tensor(kF32, bias_shape, 3);
    const std::vector<double> bv = to_doubles(bias);
    for (auto [beta, alpha] : {std::pair{1.0, 1.0}, {0.5, 2.0}, {-1.0, 0.25}}) {
      std::vector<double> expected(prod.size());
      for (int64_t i = 0; i < 4; ++i) {
        for (int64_t j = 0; j < 5; ++j) {
          const size_t bi = bias_shape.empty()       ? 0
                            : bias_shape.size() == 1 ? j
                            : bias_shape[0] == 1     ? j
                            : bias_shape[1] == 1     ? i
                                                     : i * 5 + j;
          expected[i * 5 + j] = beta * bv[bi] + alpha * prod[i * 5 + j];
        }
      }
      expect_tensor(run1(addmm_call("aten.addmm.default", bias, a, b, beta, alpha)), kF32, {4, 5},
                    expected);
    }
  }
}

TEST(LinalgAddmm, BetaZeroIgnoresBiasAlphaZeroIgnoresProduct) {
  const Tensor a = make_tensor(kF32, {2, 3}, {1});
  const Tensor b = make_tensor(kF32, {3, 4}, {1});
  const Tensor nan_bias = make_tensor(kF32, {4}, {kNaN});
  expect_tensor(run1(addmm_call("aten.addmm.default", nan_bias, a, b, 0.0, 1.0)), kF32, {2, 4},
                std::vector<double>(8, 3.0));
  const Tensor nan_a = make_tensor(kF32, {2, 3}, {kNaN});
  const Tensor ones = make_tensor(kF32, {4}, {1});
  expect_tensor(run1(addmm_call("aten.addmm.default", ones, nan_a, b, 1.0, 0.0)), kF32, {2, 4},
                std::vector<double>(8, 1.0));
}

TEST(LinalgAddmm, IntegerScalarsTruncate) {
  // torch.addmm(full((4,), 5, int32), ones(2,3,int32), ones(3,4,int32), beta=0.5, alpha=1.7) == 3.
  const Tensor bias = make_tensor(kI32, {4}, {5});
  const Tensor a = make_tensor(kI32, {2, 3}, {1});
  const Tensor b = make_tensor(kI32, {3, 4}, {1});
  expect_tensor(run1(addmm_call("aten.addmm.default", bias, a, b, 0.5, 1.7)), kI32, {2, 4},
                std::vector<double>(8, 3.0));
}

TEST(LinalgAddmm, HalfRoundsOnce) {
  const Tensor a = random_tensor(kF16, {3, 8}, 1);
  const Tensor b = random_tensor(kF16, {8, 2}, 2);
  const Tensor bias = random_tensor(kF16, {2}, 3);
  std::vector<double> expected = ref_mm(a, b);
  const std::vector<double> bv = to_doubles(bias);
  for (size_t i = 0; i < expected.size(); ++i) expected[i] += bv[i % 2];
  expect_tensor(run1(addmm_call("aten.addmm.default", bias, a, b, 1.0, 1.0)), kF16, {3, 2},
                expected, 2e-3);
}

TEST(LinalgAddmm, Errors) {
  expect_error(addmm_call("aten.addmm.default", make_tensor(kF32, {3, 1}, {1}),
                          make_tensor(kF32, {2, 3}, {1}), make_tensor(kF32, {3, 4}, {1}), 1, 1),
               {"expected self to broadcast to the product's shape [2, 4]", "float32[3, 1]"});
  expect_error(addmm_call("aten.addmm.default", make_tensor(kI32, {4}, {1}),
                          make_tensor(kF32, {2, 3}, {1}), make_tensor(kF32, {3, 4}, {1}), 1, 1),
               {"same dtype", "int32", "float32"});
}

TEST(LinalgBmm, LayoutsAndBroadcastBatches) {
  const int64_t batch = 3, m = 4, k = 5, n = 6;
  const Tensor a = random_tensor(kF32, {batch, m, k}, 1);
  const Tensor b = random_tensor(kF32, {batch, k, n}, 2);
  // batch2 stored as [batch, n, k] (a transposed weight), batch1 permuted to [k, batch, m] storage.
  const Tensor bt = transposed_layout(kF32, {batch, k, n}, 1, 2, 3);
  Tensor stored = random_tensor(kF32, {k, batch, m}, 4);
  const Tensor ap = stored.view_as({batch, m, k}, {m, 1, batch * m}, 0);
  // One matrix broadcast over the batch (stride 0), as expand() makes it.
  const Tensor one = random_tensor(kF32, {k, n}, 5);
  const Tensor shared = one.view_as({batch, k, n}, {0, n, 1}, 0);
  for (const auto& [x, y] : {std::pair{a, b}, {a, bt}, {ap, b}, {ap, bt}, {a, shared}}) {
    expect_tensor(run1(call2("aten.bmm.default", x, y)), kF32, {batch, m, n},
                  ref_bmm(to_doubles(x), to_doubles(y), batch, m, k, n));
  }
  const Tensor xi = random_tensor(kI64, {2, 3, 4}, 6), yi = random_tensor(kI64, {2, 4, 2}, 7);
  expect_tensor(run1(call2("aten.bmm.default", xi, yi)), kI64, {2, 3, 2},
                ref_bmm(to_doubles(xi), to_doubles(yi), 2, 3, 4, 2));
}

TEST(LinalgBmm, BaddbmmAndErrors) {
  const Tensor a = random_tensor(kF32, {2, 3, 4}, 1);
  const Tensor b = random_tensor(kF32, {2, 4, 5}, 2);
  const Tensor bias = random_tensor(kF32, {3, 1}, 3);
  std::vector<double> expected = ref_bmm(to_doubles(a), to_doubles(b), 2, 3, 4, 5);
  const std::vector<double> bv = to_doubles(bias);
  for (size_t i = 0; i < expected.size(); ++i) expected[i] = 2.0 * expected[i] - bv[i / 5 % 3];
  expect_tensor(run1(addmm_call("aten.baddbmm.default", bias, a, b, -1.0, 2.0)), kF32, {2, 3, 5},
                expected);
  expect_error(call2("aten.bmm.default", random_tensor(kF32, {2, 2, 3}, 1),
                     random_tensor(kF32, {3, 3, 4}, 2)),
               {"expected batch2 to have batch size 2", "float32[3, 3, 4]"});
  expect_error(call2("aten.bmm.default", random_tensor(kF32, {2, 2, 3}, 1),
                     random_tensor(kF32, {2, 4, 4}, 2)),
               {"expected batch2 with 4 rows to match batch1's 3 columns"});
}

TEST(LinalgDotMv, Values) {
  const Tensor x = random_tensor(kF32, {7}, 1);
  Tensor wide = random_tensor(kF32, {14}, 2);
  const Tensor y = wide.view_as({7}, {2}, 1);  // every other element
  const std::vector<double> xv = to_doubles(x), yv = to_doubles(y);
  double dot = 0.0;
  for (size_t i = 0; i < 7; ++i) dot += xv[i] * yv[i];
  expect_tensor(run1(call2("aten.dot.default", x, y)), kF32, {}, {dot});
  expect_tensor(run1(call2("aten.vdot.default", x, y)), kF32, {}, {dot});
  expect_tensor(run1(call2("aten.dot.default", make_tensor(kI32, {3}, {1, 2, 3}),
                           make_tensor(kI32, {3}, {4, 5, 6}))),
                kI32, {}, {32});
  expect_tensor(
      run1(call2("aten.dot.default", make_tensor(kF32, {0}, {}), make_tensor(kF32, {0}, {}))), kF32,
      {}, {0});
  expect_error(call2("aten.dot.default", random_tensor(kF32, {3}, 1), random_tensor(kF32, {4}, 2)),
               {"expected vectors of the same length", "float32[3]", "float32[4]"});

  const Tensor mat = transposed_layout(kF32, {5, 7}, 0, 1, 3);
  const std::vector<double> mv_ref = ref_bmm(to_doubles(mat), xv, 1, 5, 7, 1);
  expect_tensor(run1(call2("aten.mv.default", mat, x)), kF32, {5}, mv_ref);
  const Tensor bias = random_tensor(kF32, {1}, 4);
  std::vector<double> addmv_ref = mv_ref;
  for (double& v : addmv_ref) v = 0.5 * v + 2.0 * to_doubles(bias)[0];
  expect_tensor(run1({.target = "aten.addmv.default",
                      .inputs = {bias, mat, x},
                      .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}},
                      .kwargs = {{"beta", 2.0}, {"alpha", 0.5}}}),
                kF32, {5}, addmv_ref);
  expect_error(
      call2("aten.mv.default", random_tensor(kF32, {2, 3}, 1), random_tensor(kF32, {4}, 2)),
      {"expected vec with 4 rows to match mat's 3 columns"});
}

// The reference broadcasts the operands to [batch..., m, k] x [batch..., k, n] itself.
TEST(LinalgMatmul, RankCombinations) {
  struct Case {
    Shape a, b, out;
  };
  for (const Case& c : std::vector<Case>{{{4}, {4}, {}},
                                         {{3, 4}, {4}, {3}},
                                         {{4}, {4, 2}, {2}},
                                         {{3, 4}, {4, 2}, {3, 2}},
                                         {{2, 3, 4}, {4}, {2, 3}},
                                         {{4}, {2, 4, 5}, {2, 5}},
                                         {{2, 3, 4}, {4, 5}, {2, 3, 5}},
                                         {{3, 4}, {2, 4, 5}, {2, 3, 5}},
                                         {{2, 1, 3, 4}, {5, 4, 2}, {2, 5, 3, 2}}}) {
    SCOPED_TRACE(shape_to_string(c.a) + " @ " + shape_to_string(c.b));
    const Tensor a = random_tensor(kF32, c.a, 1), b = random_tensor(kF32, c.b, 2);
    const int64_t m = c.a.size() >= 2 ? c.a[c.a.size() - 2] : 1, k = c.a.back();
    const int64_t n = c.b.size() >= 2 ? c.b.back() : 1;
    const Shape out_batch(c.out.begin(), c.out.end() - (c.a.size() >= 2) - (c.b.size() >= 2));
    Shape a_shape = out_batch, b_shape = out_batch;
    a_shape.insert(a_shape.end(), {m, k});
    b_shape.insert(b_shape.end(), {k, n});
    const Tensor a2 = c.a.size() == 1 ? a.view_as({1, k}, {0, 1}, 0) : a;
    const Tensor b2 = c.b.size() == 1 ? b.view_as({k, 1}, {1, 0}, 0) : b;
    const std::vector<double> expected =
        ref_bmm(to_doubles(broadcast_view(a2, a_shape)), to_doubles(broadcast_view(b2, b_shape)),
                shape_numel(out_batch), m, k, n);
    expect_tensor(run1(call2("aten.matmul.default", a, b)), kF32, c.out, expected);
  }
  expect_error(
      call2("aten.matmul.default", random_tensor(kF32, {2, 3, 4}, 1), random_tensor(kF32, {5}, 2)),
      {"expected other with 5 rows to match self's 4 columns"});
  expect_error(
      call2("aten.matmul.default", make_tensor(kF32, {}, {1}), random_tensor(kF32, {5}, 2)),
      {"at least 1 dim"});
}

TEST(LinalgLinear, ShapesBiasAndTransposedWeight) {
  const Tensor x = random_tensor(kF32, {2, 3, 6}, 1);
  const Tensor w = random_tensor(kF32, {4, 6}, 2);
  const Tensor bias = random_tensor(kF32, {4}, 3);
  // weight^T as [k, n] from w's logical values.
  const std::vector<double> wv = to_doubles(w), bv = to_doubles(bias);
  std::vector<double> wt(24);
  for (int64_t j = 0; j < 4; ++j) {
    for (int64_t p = 0; p < 6; ++p) wt[p * 4 + j] = wv[j * 6 + p];
  }
  std::vector<double> expected = ref_bmm(to_doubles(x), wt, 1, 6, 6, 4);
  for (size_t i = 0; i < expected.size(); ++i) expected[i] += bv[i % 4];
  const auto linear = [](Tensor in, Tensor weight, const Tensor* b) {
    OpCall call{.target = "aten.linear.default",
                .inputs = {in, weight},
                .args = {TensorArg{0}, TensorArg{1}}};
    if (b) {
      call.inputs.push_back(*b);
      call.args.push_back(TensorArg{2});
    }
    return run1(call);
  };
  expect_tensor(linear(x, w, &bias), kF32, {2, 3, 4}, expected);
  // The same weight stored transposed ([6, 4] contiguous, viewed as [4, 6]).
  Tensor stored = make_tensor(kF32, {6, 4}, wt);
  expect_tensor(linear(x, swapped(stored, 0, 1), &bias), kF32, {2, 3, 4}, expected);
  // A permuted (non-foldable) input.
  const Tensor xp = transposed_layout(kF32, {2, 3, 6}, 0, 1, 1);
  std::vector<double> expected_p = ref_bmm(to_doubles(xp), wt, 1, 6, 6, 4);
  expect_tensor(linear(xp, w, nullptr), kF32, {2, 3, 4}, expected_p);
  // 1-D input, 1-D weight.
  const Tensor v = random_tensor(kF32, {6}, 4);
  expect_tensor(linear(v, w, &bias), kF32, {4}, [&] {
    std::vector<double> r = ref_bmm(to_doubles(v), wt, 1, 1, 6, 4);
    for (size_t i = 0; i < 4; ++i) r[i] += bv[i];
    return r;
  }());
  const Tensor w1 = random_tensor(kF32, {6}, 5);
  const Tensor b0 = make_tensor(kF32, {}, {0.5});
  expect_tensor(linear(x, w1, &b0), kF32, {2, 3}, [&] {
    std::vector<double> r = ref_bmm(to_doubles(x), to_doubles(w1), 1, 6, 6, 1);
    for (double& e : r) e += 0.5;
    return r;
  }());
  expect_tensor(linear(v, w1, nullptr), kF32, {},
                ref_bmm(to_doubles(v), to_doubles(w1), 1, 1, 6, 1));
  expect_error({.target = "aten.linear.default",
                .inputs = {x, random_tensor(kF32, {4, 5}, 1)},
                .args = {TensorArg{0}, TensorArg{1}}},
               {"expected weight^T with 5 rows to match input's 6 columns"});
}

// ---- convolution
// ---------------------------------------------------------------------------------

struct ConvCase {
  Shape input, weight;
  std::vector<int64_t> stride, padding, dilation;
  bool transposed = false;
  std::vector<int64_t> output_padding;
  int64_t groups = 1;
  bool bias = true;
};

// The definition, in double: out[n, oc, o] = bias[oc] + sum in[n, ic, i] * w[.., k] over the taps
// with o = i * stride - padding + k * dilation (per spatial dim). Transposed convolutions are
// written in the same gather form (i found from o) with the weight [in, out / groups, k...].
std::vector<double> ref_conv(const ConvCase& c, const std::vector<double>& in,
                             const std::vector<double>& w, const std::vector<double>& bias,
                             Shape* out_shape) {
  const int64_t sp = static_cast<int64_t>(c.input.size()) - 2;
  const int64_t batch = c.input[0], ic = c.input[1];
  const int64_t oc = c.transposed ? c.weight[1] * c.groups : c.weight[0];
  std::array<int64_t, 3> isz{1, 1, 1}, ksz{1, 1, 1}, osz{1, 1, 1}, st{1, 1, 1}, pd{0, 0, 0},
      dl{1, 1, 1};
  for (int64_t d = 0; d < sp; ++d) {
    const size_t j = 3 - sp + d;
    isz[j] = c.input[d + 2], ksz[j] = c.weight[d + 2];
    const auto at = [d](const std::vector<int64_t>& list) {
      return list[list.size() == 1 ? 0 : d];
    };
    st[j] = at(c.stride), pd[j] = at(c.padding), dl[j] = at(c.dilation);
    osz[j] = c.transposed ? (isz[j] - 1) * st[j] - 2 * pd[j] + dl[j] * (ksz[j] - 1) +
                                at(c.output_padding) + 1
                          : (isz[j] + 2 * pd[j] - dl[j] * (ksz[j] - 1) - 1) / st[j] + 1;
  }
  *out_shape = {batch, oc};
  for (int64_t d = 0; d < sp; ++d) out_shape->push_back(osz[3 - sp + d]);
  const int64_t icg = ic / c.groups, ocg = oc / c.groups;
  const int64_t taps = ksz[0] * ksz[1] * ksz[2], iplane = isz[0] * isz[1] * isz[2];
  std::vector<double> out;
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t o = 0; o < oc; ++o) {
      for (int64_t z = 0; z < osz[0]; ++z) {
        for (int64_t y = 0; y < osz[1]; ++y) {
          for (int64_t x = 0; x < osz[2]; ++x) {
            double sum = bias.empty() ? 0.0 : bias[o];
            const int64_t g = o / ocg;
            for (int64_t cg = 0; cg < icg; ++cg) {
              const int64_t cin = g * icg + cg;
              for (int64_t t = 0; t < taps; ++t) {
                const std::array<int64_t, 3> kk{t / (ksz[1] * ksz[2]), t / ksz[2] % ksz[1],
                                                t % ksz[2]};
                const std::array<int64_t, 3> pos{z, y, x};
                std::array<int64_t, 3> i{};
                bool inside = true;
                for (int j = 0; j < 3 && inside; ++j) {
                  if (c.transposed) {  // pos = i * st - pd + k * dl
                    const int64_t num = pos[j] + pd[j] - kk[j] * dl[j];
                    inside = num >= 0 && num % st[j] == 0 && num / st[j] < isz[j];
                    i[j] = num / st[j];
                  } else {
                    i[j] = pos[j] * st[j] - pd[j] + kk[j] * dl[j];
                    inside = i[j] >= 0 && i[j] < isz[j];
                  }
                }
                if (!inside) continue;
                const double v =
                    in[(n * ic + cin) * iplane + (i[0] * isz[1] + i[1]) * isz[2] + i[2]];
                const int64_t wi =
                    c.transposed ? (cin * ocg + o % ocg) * taps + t : (o * icg + cg) * taps + t;
                sum += v * w[wi];
              }
            }
            out.push_back(sum);
          }
        }
      }
    }
  }
  return out;
}

OpCall convolution_call(const ConvCase& c, const Tensor& in, const Tensor& w, const Tensor& b) {
  OpCall call{.target = "aten.convolution.default", .inputs = {in, w}};
  call.args = {
      TensorArg{0},
      TensorArg{1},
      ir::NoneArg{},
      c.stride,
      c.padding,
      c.dilation,
      c.transposed,
      c.output_padding.empty() ? std::vector<int64_t>(c.stride.size(), 0) : c.output_padding,
      c.groups};
  if (c.bias) {
    call.inputs.push_back(b);
    call.args[2] = TensorArg{2};
  }
  return call;
}

void check_conv(const ConvCase& c, DType dtype, double tol = 1e-4, bool permuted_weight = false) {
  const Tensor in = random_tensor(dtype, c.input, 1);
  const Tensor w = permuted_weight ? transposed_layout(dtype, c.weight, 0, 1, 2)
                                   : random_tensor(dtype, c.weight, 2);
  const int64_t oc = c.transposed ? c.weight[1] * c.groups : c.weight[0];
  const Tensor b = random_tensor(dtype, {oc}, 3);
  Shape out_shape;
  const std::vector<double> expected = ref_conv(
      c, to_doubles(in), to_doubles(w), c.bias ? to_doubles(b) : std::vector<double>{}, &out_shape);
  expect_tensor(run1(convolution_call(c, in, w, b)), dtype, out_shape, expected, tol);
}

TEST(LinalgConvolution, TwoD) {
  const std::vector<ConvCase> cases = {
      {{2, 3, 7, 6}, {4, 3, 3, 3}, {1, 1}, {0, 0}, {1, 1}},
      {{1, 4, 9, 8}, {6, 2, 3, 2}, {2, 1}, {1, 2}, {1, 2}, false, {}, 2},
      {{2, 4, 6, 6}, {4, 1, 3, 3}, {1, 1}, {1, 1}, {1, 1}, false, {}, 4, false},  // depthwise
      {{1, 8, 5, 5}, {16, 8, 1, 1}, {1, 1}, {0, 0}, {1, 1}},                      // 1x1
      {{1, 3, 10, 9}, {2, 3, 3, 3}, {3, 2}, {2, 0}, {2, 3}},
      {{0, 3, 5, 5}, {2, 3, 3, 3}, {1, 1}, {0, 0}, {1, 1}},  // empty batch
  };
  for (const ConvCase& c : cases) {
    SCOPED_TRACE(shape_to_string(c.input) + " * " + shape_to_string(c.weight));
    check_conv(c, kF32);
    check_conv(c, kF32, 1e-4, /*permuted_weight=*/true);
    check_conv(c, kF64, 1e-9);
    check_conv(c, kF16, 1e-2);
    check_conv(c, kBF16, 2e-2);
  }
  check_conv({{1, 2, 5, 5}, {4, 2, 3, 3}, {1, 1}, {1, 1}, {1, 1}}, kI32, 0);
  check_conv({{1, 2, 5, 5}, {4, 2, 3, 3}, {1}, {1}, {1}}, kF32);  // single-value lists
}

TEST(LinalgConvolution, OneDAndThreeD) {
  const std::vector<ConvCase> cases = {
      {{2, 4, 11}, {6, 2, 3}, {2}, {1}, {2}, false, {}, 2},
      {{1, 3, 5}, {2, 3, 1}, {1}, {0}, {1}},
      {{1, 4, 5, 6, 5}, {6, 2, 3, 2, 3}, {2, 1, 1}, {1, 0, 1}, {1, 2, 1}, false, {}, 2},
      {{2, 2, 3, 3, 3}, {3, 2, 1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}},
  };
  for (const ConvCase& c : cases) {
    SCOPED_TRACE(shape_to_string(c.input) + " * " + shape_to_string(c.weight));
    check_conv(c, kF32);
    check_conv(c, kF64, 1e-9);
    check_conv(c, kF16, 1e-2);
    check_conv(c, kI64, 0);
  }
}

TEST(LinalgConvolution, Transposed) {
  const std::vector<ConvCase> cases = {
      {{1, 4, 5, 5}, {4, 3, 3, 3}, {2, 2}, {1, 1}, {1, 1}, true, {1, 1}, 2},
      {{2, 3, 4, 3}, {3, 2, 3, 2}, {1, 2}, {0, 1}, {2, 1}, true, {1, 0}, 1},
      {{1, 2, 3, 4}, {2, 5, 1, 1}, {1, 1}, {0, 0}, {1, 1}, true, {0, 0}, 1, false},
      {{1, 4, 5}, {4, 3, 3}, {2}, {1}, {1}, true, {1}, 2},
      {{1, 2, 3, 3, 2}, {2, 2, 2, 3, 2}, {2, 1, 2}, {1, 1, 0}, {1, 1, 2}, true, {1, 0, 1}, 1},
  };
  for (const ConvCase& c : cases) {
    SCOPED_TRACE(shape_to_string(c.input) + " * " + shape_to_string(c.weight));
    check_conv(c, kF32);
    check_conv(c, kF64, 1e-9);
    check_conv(c, kBF16, 2e-2);
  }
}

TEST(LinalgConvolution, FunctionalFormsAndUnbatched) {
  // conv2d.default on an unbatched input; conv_transpose1d.default; conv1d.default.
  const ConvCase c{{1, 4, 6, 5}, {6, 2, 3, 3}, {1, 2}, {1, 0}, {1, 1}, false, {}, 2};
  const Tensor in = random_tensor(kF32, {4, 6, 5}, 1);
  const Tensor w = random_tensor(kF32, c.weight, 2);
  const Tensor b = random_tensor(kF32, {6}, 3);
  Shape shape;
  const std::vector<double> expected =
      ref_conv(c, to_doubles(in), to_doubles(w), to_doubles(b), &shape);
  shape.erase(shape.begin());
  expect_tensor(run1({.target = "aten.conv2d.default",
                      .inputs = {in, w, b},
                      .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, c.stride, c.padding,
                               c.dilation, int64_t{2}}}),
                kF32, shape, expected);

  const ConvCase t{{2, 4, 5}, {4, 3, 3}, {2}, {1}, {2}, true, {1}, 2, false};
  const Tensor tin = random_tensor(kF32, t.input, 4), tw = random_tensor(kF32, t.weight, 5);
  const std::vector<double> texpected = ref_conv(t, to_doubles(tin), to_doubles(tw), {}, &shape);
  // conv_transpose1d(input, weight, bias, stride, padding, output_padding, groups, dilation)
  expect_tensor(run1({.target = "aten.conv_transpose1d.default",
                      .inputs = {tin, tw},
                      .args = {TensorArg{0}, TensorArg{1}, ir::NoneArg{}, t.stride, t.padding,
                               t.output_padding, int64_t{2}, t.dilation}}),
                kF32, shape, texpected);

  const ConvCase d{{1, 3, 8}, {5, 3, 2}, {1}, {0}, {3}, false, {}, 1, false};
  const Tensor din = random_tensor(kF32, d.input, 6), dw = random_tensor(kF32, d.weight, 7);
  const std::vector<double> dexpected = ref_conv(d, to_doubles(din), to_doubles(dw), {}, &shape);
  expect_tensor(
      run1({.target = "aten.conv1d.default",
            .inputs = {din, dw},
            .args = {TensorArg{0}, TensorArg{1}, ir::NoneArg{}, d.stride, d.padding, d.dilation}}),
      kF32, shape, dexpected);
}

TEST(LinalgConvolution, NonContiguousInput) {
  // An NHWC tensor viewed as NCHW (channels_last layout).
  const ConvCase c{{2, 3, 5, 4}, {4, 3, 3, 3}, {1, 1}, {1, 1}, {1, 1}};
  Tensor nhwc = random_tensor(kF32, {2, 5, 4, 3}, 1);
  const Tensor in = nhwc.view_as({2, 3, 5, 4}, {60, 1, 12, 3}, 0);
  const Tensor w = random_tensor(kF32, c.weight, 2), b = random_tensor(kF32, {4}, 3);
  Shape shape;
  const std::vector<double> expected =
      ref_conv(c, to_doubles(in), to_doubles(w), to_doubles(b), &shape);
  expect_tensor(run1(convolution_call(c, in, w, b)), kF32, shape, expected);
}

TEST(LinalgConvolution, Errors) {
  const Tensor in = random_tensor(kF32, {1, 4, 5, 5}, 1);
  const Tensor w = random_tensor(kF32, {6, 2, 3, 3}, 2);
  const Tensor b = random_tensor(kF32, {6}, 3);
  ConvCase c{{1, 4, 5, 5}, {6, 2, 3, 3}, {1, 1}, {0, 0}, {1, 1}, false, {}, 4, false};
  expect_error(convolution_call(c, in, w, b), {"multiple of groups=4", "float32[6, 2, 3, 3]"});
  c.groups = 1;
  expect_error(convolution_call(c, in, w, b),
               {"expected input with 2 channels", "groups=1", "float32[1, 4, 5, 5]"});
  c.groups = 2;
  c.stride = {0, 1};
  expect_error(convolution_call(c, in, w, b), {"stride value to be at least 1", "[0, 1]"});
  c.stride = {1, 1, 1};
  expect_error(convolution_call(c, in, w, b), {"expected stride to have 1 or 2 values"});
  c.stride = {1, 1};
  c.padding = {-1, 0};
  expect_error(convolution_call(c, in, w, b), {"padding value to be at least 0"});
  c.padding = {0, 0};
  expect_error(convolution_call(c, random_tensor(kF32, {1, 4, 2, 2}, 1), w, b),
               {"padded input size 2 to be at least the dilated kernel size 3"});
  c.bias = true;
  expect_error(convolution_call(c, in, w, random_tensor(kF32, {5}, 3)),
               {"expected a 1-D bias of 6 elements", "float32[5]"});
  expect_error(convolution_call(c, in, random_tensor(kF16, {6, 2, 3, 3}, 2), b),
               {"same dtype", "float32", "float16"});
  ConvCase t{{1, 4, 5, 5}, {4, 3, 3, 3}, {2, 2}, {1, 1}, {1, 1}, true, {2, 1}, 2, false};
  expect_error(convolution_call(t, in, random_tensor(kF32, {4, 3, 3, 3}, 2), b),
               {"output_padding to be smaller than the stride or the dilation"});
  t.output_padding = {0, 0};
  expect_error(convolution_call(t, random_tensor(kI32, {1, 4, 5, 5}, 1),
                                random_tensor(kI32, {4, 3, 3, 3}, 2), b),
               {"a transposed convolution of int32", "floating dtypes"}, StatusCode::kUnsupported);
}

}  // namespace
}  // namespace kiln::testing
