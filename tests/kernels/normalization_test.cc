// Conformance cases for the normalization ops. Expected values were computed with PyTorch 2.11
// eager and hard-coded; random cases compare against naive double-precision references.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/kernel_expect.h"
#include "support/kernel_values.h"

namespace kiln::testing {
namespace {

Tensor floats(Shape shape, const std::vector<double>& values) {
  return make_tensor(DType::kFloat32, std::move(shape), values);
}

const std::vector<double> kX = {1, 2, 3, 4, 6, 9};  // shape [2, 3]
const std::vector<double> kSoftmaxRows = {0.09003057, 0.24472848, 0.66524094,
                                          0.00637746, 0.04712342, 0.94649917};

TEST(NormalizationTest, SoftmaxLastAndFirstDim) {
  auto rows = run({.target = "aten._softmax.default",
                   .inputs = {floats({2, 3}, kX)},
                   .args = {TensorArg{0}, int64_t{-1}, false}});
  expect_tensor(rows[0], DType::kFloat32, {2, 3}, kSoftmaxRows);
  auto cols = run({.target = "aten._softmax.default",
                   .inputs = {floats({2, 3}, kX)},
                   .args = {TensorArg{0}, int64_t{0}, false}});
  expect_tensor(cols[0], DType::kFloat32, {2, 3},
                {0.04742587, 0.01798621, 0.00247262, 0.95257413, 0.98201376, 0.99752742});
  auto log_rows = run({.target = "aten._log_softmax.default",
                       .inputs = {floats({2, 3}, kX)},
                       .args = {TensorArg{0}, int64_t{1}, false}});
  expect_tensor(log_rows[0], DType::kFloat32, {2, 3},
                {-2.4076059, -1.4076059, -0.4076059, -5.0549850, -3.0549853, -0.0549852});
  auto log_cols = run({.target = "aten._log_softmax.default",
                       .inputs = {floats({2, 3}, kX)},
                       .args = {TensorArg{0}, int64_t{-2}, false}});
  expect_tensor(log_cols[0], DType::kFloat32, {2, 3},
                {-3.0485873, -4.0181499, -6.0024757, -0.0485873, -0.0181500, -0.0024757});
}

TEST(NormalizationTest, SoftmaxMiddleDimAndNonContiguous) {
  auto mid = run({.target = "aten._softmax.default",
                  .inputs = {arange_tensor(DType::kFloat32, {2, 3, 2}, 0, 0.25)},
                  .args = {TensorArg{0}, int64_t{1}, false}});
  const std::vector<double> col = {0.18632373, 0.18632373, 0.30719590,
                                   0.30719590, 0.50648040, 0.50648040};
  std::vector<double> want = col;
  want.insert(want.end(), col.begin(), col.end());
  expect_tensor(mid[0], DType::kFloat32, {2, 3, 2}, want);
  // transposed [3, 2] view of [[1,4],[2,6],[3,9]]: softmax over dim 0 is the row softmax of kX.
  auto nc = run({.target = "aten._softmax.default",
                 .inputs = {transposed(floats({2, 3}, kX))},
                 .args = {TensorArg{0}, int64_t{0}, false}});
  expect_tensor(nc[0], DType::kFloat32, {3, 2},
                {kSoftmaxRows[0], kSoftmaxRows[3], kSoftmaxRows[1], kSoftmaxRows[4],
                 kSoftmaxRows[2], kSoftmaxRows[5]});
}

TEST(NormalizationTest, SoftmaxReducedPrecisionAndHalfToFloat) {
  for (DType d : {DType::kFloat16, DType::kBFloat16}) {
    auto out = run({.target = "aten._softmax.default",
                    .inputs = {make_tensor(d, {2, 3}, kX)},
                    .args = {TensorArg{0}, int64_t{1}, false}});
    expect_tensor(out[0], d, {2, 3}, kSoftmaxRows, 1e-2);
    auto wide = run({.target = "aten._softmax.default",
                     .inputs = {make_tensor(d, {2, 3}, kX)},
                     .args = {TensorArg{0}, int64_t{1}, true}});
    expect_tensor(wide[0], DType::kFloat32, {2, 3}, kSoftmaxRows);
  }
  expect_error({.target = "aten._softmax.default",
                .inputs = {floats({2, 3}, kX)},
                .args = {TensorArg{0}, int64_t{1}, true}},
               "half_to_float expects a float16 or bfloat16 input, found float32");
}

TEST(NormalizationTest, SoftmaxSpecialValuesEmptyAndScalar) {
  auto nan = run({.target = "aten._softmax.default",
                  .inputs = {floats({3}, {1, kNaN, 2})},
                  .args = {TensorArg{0}, int64_t{0}, false}});
  expect_tensor(nan[0], DType::kFloat32, {3}, {kNaN, kNaN, kNaN});
  auto minus_inf = run({.target = "aten._log_softmax.default",
                        .inputs = {floats({2}, {-kInf, -kInf})},
                        .args = {TensorArg{0}, int64_t{0}, false}});
  expect_tensor(minus_inf[0], DType::kFloat32, {2}, {kNaN, kNaN});
  auto masked = run({.target = "aten._softmax.default",
                     .inputs = {floats({3}, {-kInf, 0, 0})},
                     .args = {TensorArg{0}, int64_t{0}, false}});
  expect_tensor(masked[0], DType::kFloat32, {3}, {0, 0.5, 0.5});
  auto empty = run({.target = "aten._softmax.default",
                    .inputs = {floats({0, 3}, {})},
                    .args = {TensorArg{0}, int64_t{1}, false}});
  expect_tensor(empty[0], DType::kFloat32, {0, 3}, {});
  auto scalar = run({.target = "aten._softmax.default",
                     .inputs = {floats({}, {2})},
                     .args = {TensorArg{0}, int64_t{-1}, false}});
  expect_tensor(scalar[0], DType::kFloat32, {}, {1});
  auto log_scalar = run({.target = "aten._log_softmax.default",
                         .inputs = {floats({}, {2})},
                         .args = {TensorArg{0}, int64_t{0}, false}});
  expect_tensor(log_scalar[0], DType::kFloat32, {}, {0});
  expect_error({.target = "aten._softmax.default",
                .inputs = {floats({2, 3}, kX)},
                .args = {TensorArg{0}, int64_t{2}, false}},
               "out of range");
  expect_error({.target = "aten._softmax.default",
                .inputs = {make_tensor(DType::kInt64, {2}, {1, 2})},
                .args = {TensorArg{0}, int64_t{0}, false}},
               "expected a floating point input, found int64");
}

TEST(NormalizationTest, SoftmaxIntWithDtype) {
  auto ints = run({.target = "aten.softmax.int",
                   .inputs = {make_tensor(DType::kInt64, {2, 3}, kX)},
                   .args = {TensorArg{0}, int64_t{1}, DType::kFloat32}});
  expect_tensor(ints[0], DType::kFloat32, {2, 3}, kSoftmaxRows);
  auto narrowed = run({.target = "aten.log_softmax.int",
                       .inputs = {floats({2, 3}, kX)},
                       .args = {TensorArg{0}, int64_t{1}, DType::kFloat16}});
  expect_tensor(narrowed[0], DType::kFloat16, {2, 3},
                {-2.4076059, -1.4076059, -0.4076059, -5.0549850, -3.0549853, -0.0549852}, 1e-2);
  auto plain = run({.target = "aten.softmax.int",
                    .inputs = {floats({2, 3}, kX)},
                    .args = {TensorArg{0}, int64_t{1}}});
  expect_tensor(plain[0], DType::kFloat32, {2, 3}, kSoftmaxRows);
  expect_error({.target = "aten.softmax.int",
                .inputs = {make_tensor(DType::kInt64, {2}, {1, 2})},
                .args = {TensorArg{0}, int64_t{0}}},
               "expected a floating point input or dtype argument, found int64");
}

TEST(NormalizationTest, SoftmaxLargeRowsMatchReference) {
  const std::vector<double> v = random_float_values(64 * 1000, 3, 3.0);
  auto out = run({.target = "aten._softmax.default",
                  .inputs = {floats({64, 1000}, v)},
                  .args = {TensorArg{0}, int64_t{1}, false}});
  std::vector<double> want(v.size());
  for (size_t r = 0; r < 64; ++r) {
    double max = -kInf, sum = 0;
    for (size_t i = 0; i < 1000; ++i) max = std::max(max, v[r * 1000 + i]);
    for (size_t i = 0; i < 1000; ++i) sum += std::exp(v[r * 1000 + i] - max);
    for (size_t i = 0; i < 1000; ++i) want[r * 1000 + i] = std::exp(v[r * 1000 + i] - max) / sum;
  }
  expect_tensor(out[0], DType::kFloat32, {64, 1000}, want);
}

TEST(NormalizationTest, LayerNormWithAffine) {
  auto out =
      run({.target = "aten.native_layer_norm.default",
           .inputs = {floats({2, 3}, kX), floats({3}, {1, 2, 3}), floats({3}, {0, 1, -1})},
           .args = {TensorArg{0}, std::vector<int64_t>{3}, TensorArg{1}, TensorArg{2}, 1e-5}});
  expect_tensor(out[0], DType::kFloat32, {2, 3},
                {-1.2247356, 1.0, 2.6742067, -1.1355488, 0.6755574, 2.8933096});
  expect_tensor(out[1], DType::kFloat32, {2, 1}, {2.0, 6.3333335});
  expect_tensor(out[2], DType::kFloat32, {2, 1}, {1.2247356, 0.4866637});
  auto all =
      run({.target = "aten.native_layer_norm.default",
           .inputs = {floats({2, 3}, kX)},
           .args = {TensorArg{0}, std::vector<int64_t>{2, 3}, ir::NoneArg{}, ir::NoneArg{}, 1e-5}});
  expect_tensor(all[0], DType::kFloat32, {2, 3},
                {-1.1851866, -0.8109172, -0.4366478, -0.0623784, 0.6861605, 1.8089688});
  expect_tensor(all[1], DType::kFloat32, {1, 1}, {4.1666670});
  expect_tensor(all[2], DType::kFloat32, {1, 1}, {0.3742694});
}

TEST(NormalizationTest, LayerNormDtypesAndNonContiguous) {
  // bfloat16 input with float32 parameters: statistics are float32 (mixed precision).
  auto mixed =
      run({.target = "aten.native_layer_norm.default",
           .inputs = {make_tensor(DType::kBFloat16, {2, 3}, kX), floats({3}, {1, 2, 3})},
           .args = {TensorArg{0}, std::vector<int64_t>{3}, TensorArg{1}, ir::NoneArg{}, 1e-5}});
  expect_tensor(mixed[0], DType::kBFloat16, {2, 3},
                {-1.2247356, 0.0, 3.6742067, -1.1355488, -0.3244426, 3.8933096}, 1e-2);
  expect_tensor(mixed[1], DType::kFloat32, {2, 1}, {2.0, 6.3333335});
  auto half =
      run({.target = "aten.native_layer_norm.default",
           .inputs = {make_tensor(DType::kFloat16, {2, 3}, kX)},
           .args = {TensorArg{0}, std::vector<int64_t>{3}, ir::NoneArg{}, ir::NoneArg{}, 1e-5}});
  expect_tensor(half[2], DType::kFloat16, {2, 1}, {1.2247356, 0.4866637}, 1e-2);
  // transposed [3, 2] of [[1,4],[2,6],[3,9]]... rows of the view are (1,4), (2,6), (3,9).
  auto nc =
      run({.target = "aten.native_layer_norm.default",
           .inputs = {transposed(floats({2, 3}, kX))},
           .args = {TensorArg{0}, std::vector<int64_t>{2}, ir::NoneArg{}, ir::NoneArg{}, 0.0}});
  expect_tensor(nc[0], DType::kFloat32, {3, 2}, {-1, 1, -1, 1, -1, 1});
  expect_tensor(nc[1], DType::kFloat32, {3, 1}, {2.5, 4, 6});
}

TEST(NormalizationTest, ConstantRowsNormalizeToExactlyZero) {
  // x - mean is exactly 0 for a constant or one-element row, so eager gives exactly 0 (and b with
  // an affine). Normalizing as x * rstd - mean * rstd instead left ~1e-4 for 3.3 and ~2e-3 for
  // 100.7 (rstd = 1/sqrt(1e-5) = 316). Compared with no tolerance.
  for (double c : {3.3, 100.7}) {
    for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
      auto out = run(
          {.target = "aten.native_layer_norm.default",
           .inputs = {make_tensor(dtype, {2, 4}, std::vector<double>(8, c))},
           .args = {TensorArg{0}, std::vector<int64_t>{4}, ir::NoneArg{}, ir::NoneArg{}, 1e-5}});
      expect_tensor(out[0], dtype, {2, 4}, std::vector<double>(8, 0.0), 0.0);
      EXPECT_EQ(to_doubles(out[1]), to_doubles(make_tensor(dtype, {2}, {c, c})));
    }
  }
  // The harness's case: layer_norm(float32[1], [1], w, b) is b.
  auto one = run1({.target = "aten.layer_norm.default",
                   .inputs = {floats({1}, {-4.3228044509887695}), floats({1}, {-8.478373527526855}),
                              floats({1}, {-1.765825867652893})},
                   .args = {TensorArg{0}, std::vector<int64_t>{1}, TensorArg{1}, TensorArg{2}}});
  expect_tensor(one, DType::kFloat32, {1}, {static_cast<float>(-1.765825867652893)}, 0.0);
  // Group norm (and instance norm, which runs it) centres the same way.
  auto group = run({.target = "aten.native_group_norm.default",
                    .inputs = {floats({1, 2, 3}, std::vector<double>(6, 100.7))},
                    .args = {TensorArg{0}, ir::NoneArg{}, ir::NoneArg{}, int64_t{1}, int64_t{2},
                             int64_t{3}, int64_t{1}, 1e-5}});
  expect_tensor(group[0], DType::kFloat32, {1, 2, 3}, std::vector<double>(6, 0.0), 0.0);
}

TEST(NormalizationTest, LayerNormEmptyAndErrors) {
  auto rows =
      run({.target = "aten.native_layer_norm.default",
           .inputs = {floats({0, 4}, {})},
           .args = {TensorArg{0}, std::vector<int64_t>{4}, ir::NoneArg{}, ir::NoneArg{}, 1e-5}});
  expect_tensor(rows[1], DType::kFloat32, {0, 1}, {});
  auto cols =
      run({.target = "aten.native_layer_norm.default",
           .inputs = {floats({2, 0}, {})},
           .args = {TensorArg{0}, std::vector<int64_t>{0}, ir::NoneArg{}, ir::NoneArg{}, 1e-5}});
  expect_tensor(cols[1], DType::kFloat32, {2, 1}, {0, 0});
  expect_tensor(cols[2], DType::kFloat32, {2, 1}, {kNaN, kNaN});
  // A row holding an inf has nan statistics (not an inf mean), as in PyTorch.
  auto inf =
      run({.target = "aten.native_layer_norm.default",
           .inputs = {floats({2, 2}, {1, kInf, 1, 3})},
           .args = {TensorArg{0}, std::vector<int64_t>{2}, ir::NoneArg{}, ir::NoneArg{}, 0.0}});
  expect_tensor(inf[0], DType::kFloat32, {2, 2}, {kNaN, kNaN, -1, 1});
  expect_tensor(inf[1], DType::kFloat32, {2, 1}, {kNaN, 2});
  expect_tensor(inf[2], DType::kFloat32, {2, 1}, {kNaN, 1});
  expect_error(
      {.target = "aten.native_layer_norm.default",
       .inputs = {arange_tensor(DType::kFloat32, {2, 3, 4})},
       .args = {TensorArg{0}, std::vector<int64_t>{3}, ir::NoneArg{}, ir::NoneArg{}, 1e-5}},
      "expected an input of shape [*, 3] for normalized_shape [3], found [2, 3, 4]");
  expect_error({.target = "aten.native_layer_norm.default",
                .inputs = {floats({2, 3}, kX), floats({2}, {1, 1})},
                .args = {TensorArg{0}, std::vector<int64_t>{3}, TensorArg{1}, ir::NoneArg{}, 1e-5}},
               "expected weight of shape [3]");
  expect_error({.target = "aten.native_layer_norm.default",
                .inputs = {floats({2, 3}, kX), make_tensor(DType::kFloat16, {3}, {1})},
                .args = {TensorArg{0}, std::vector<int64_t>{3}, TensorArg{1}, ir::NoneArg{}, 1e-5}},
               "mixed dtypes need a float16/bfloat16 input");
  expect_error({.target = "aten.native_layer_norm.default",
                .inputs = {floats({2, 3}, kX)},
                .args = {TensorArg{0}, std::vector<int64_t>{}, ir::NoneArg{}, ir::NoneArg{}, 1e-5}},
               "at least one element");
}

TEST(NormalizationTest, LayerNormLargeRowsMatchReference) {
  const std::vector<double> v = random_float_values(100 * 768, 5, 3.0);
  auto out =
      run({.target = "aten.native_layer_norm.default",
           .inputs = {floats({100, 768}, v)},
           .args = {TensorArg{0}, std::vector<int64_t>{768}, ir::NoneArg{}, ir::NoneArg{}, 1e-5}});
  std::vector<double> want(v.size());
  for (size_t r = 0; r < 100; ++r) {
    double mean = 0, var = 0;
    for (size_t i = 0; i < 768; ++i) mean += v[r * 768 + i] / 768;
    for (size_t i = 0; i < 768; ++i) var += (v[r * 768 + i] - mean) * (v[r * 768 + i] - mean) / 768;
    for (size_t i = 0; i < 768; ++i)
      want[r * 768 + i] = (v[r * 768 + i] - mean) / std::sqrt(var + 1e-5);
  }
  expect_tensor(out[0], DType::kFloat32, {100, 768}, want);
}

TEST(NormalizationTest, RmsNorm) {
  auto out = run({.target = "aten.rms_norm.default",
                  .inputs = {floats({2, 3}, kX), floats({3}, {1, 2, 3})},
                  .args = {TensorArg{0}, std::vector<int64_t>{3}, TensorArg{1}, 1e-6}});
  expect_tensor(out[0], DType::kFloat32, {2, 3},
                {0.4629100, 1.8516400, 4.1661901, 0.6007514, 1.8022542, 4.0550718});
  auto fused = run({.target = "aten._fused_rms_norm.default",
                    .inputs = {floats({2, 3}, kX)},
                    .args = {TensorArg{0}, std::vector<int64_t>{3}, ir::NoneArg{}, ir::NoneArg{}}});
  expect_tensor(fused[0], DType::kFloat32, {2, 3},
                {0.4629101, 0.9258201, 1.3887302, 0.6007514, 0.9011271, 1.3516906});
  expect_tensor(fused[1], DType::kFloat32, {2, 1}, {0.4629101, 0.1501878});
  auto half =
      run({.target = "aten._fused_rms_norm.default",
           .inputs = {make_tensor(DType::kFloat16, {2, 3}, kX)},
           .args = {TensorArg{0}, std::vector<int64_t>{2, 3}, ir::NoneArg{}, ir::NoneArg{}}});
  EXPECT_EQ(half[0].dtype(), DType::kFloat16);
  expect_tensor(half[1], DType::kFloat32, {1, 1}, {0.2020305});
  auto nc = run({.target = "aten.rms_norm.default",
                 .inputs = {transposed(floats({2, 3}, kX))},
                 .args = {TensorArg{0}, std::vector<int64_t>{2}}});
  expect_tensor(nc[0], DType::kFloat32, {3, 2},
                {0.3429972, 1.3719887, 0.4472136, 1.3416408, 0.4472136, 1.3416408});
  expect_error({.target = "aten.rms_norm.default",
                .inputs = {floats({2, 3}, kX)},
                .args = {TensorArg{0}, std::vector<int64_t>{2}}},
               "normalized_shape [2]");
}

TEST(NormalizationTest, BatchNormInference) {
  const Tensor x = arange_tensor(DType::kFloat32, {2, 3, 2});
  const std::vector<Tensor> inputs = {x, floats({3}, {1, 2, 3}), floats({3}, {0, 1, -1}),
                                      floats({3}, {1, 5, 9}), floats({3}, {4, 1, 0.25})};
  const std::vector<double> want = {-0.4999994, 0.0,        -4.9999704, -2.9999804,
                                    -30.999397, -24.999517, 2.4999971,  2.9999964,
                                    6.9999695,  8.9999599,  4.9998817,  10.999762};
  auto legit = run(
      {.target = "aten._native_batch_norm_legit_no_training.default",
       .inputs = inputs,
       .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, TensorArg{3}, TensorArg{4}, 0.1, 1e-5}});
  expect_tensor(legit[0], DType::kFloat32, {2, 3, 2}, want);
  expect_tensor(legit[1], DType::kFloat32, {0}, {});
  expect_tensor(legit[2], DType::kFloat32, {0}, {});
  auto native = run({.target = "aten.native_batch_norm.default",
                     .inputs = inputs,
                     .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, TensorArg{3}, TensorArg{4},
                              false, 0.1, 1e-5}});
  expect_tensor(native[0], DType::kFloat32, {2, 3, 2}, want);
  auto plain = run(
      {.target = "aten._native_batch_norm_legit_no_training.default",
       .inputs = {floats({1, 2}, {3, 4}), floats({2}, {1, 2}), floats({2}, {4, 16})},
       .args = {TensorArg{0}, ir::NoneArg{}, ir::NoneArg{}, TensorArg{1}, TensorArg{2}, 0.1, 0.0}});
  expect_tensor(plain[0], DType::kFloat32, {1, 2}, {1, 0.5});
}

TEST(NormalizationTest, BatchNormDtypesEmptyAndErrors) {
  const Tensor stats = floats({2}, {0, 1});
  auto mixed = run(
      {.target = "aten._native_batch_norm_legit_no_training.default",
       .inputs = {make_tensor(DType::kFloat16, {1, 2, 2}, {1, 2, 3, 4}), stats,
                  floats({2}, {1, 4})},
       .args = {TensorArg{0}, ir::NoneArg{}, ir::NoneArg{}, TensorArg{1}, TensorArg{2}, 0.1, 0.0}});
  expect_tensor(mixed[0], DType::kFloat16, {1, 2, 2}, {1, 2, 1, 1.5}, 1e-3);
  expect_tensor(mixed[1], DType::kFloat32, {0}, {});
  // A channels-last-like (non-contiguous) input.
  const Tensor base = floats({1, 2, 2}, {1, 3, 2, 4});        // [1, H*W=2, C=2] storage
  const Tensor nchw = base.view_as({1, 2, 2}, {4, 1, 2}, 0);  // channel 0: 1,2; channel 1: 3,4
  auto nc = run(
      {.target = "aten._native_batch_norm_legit_no_training.default",
       .inputs = {nchw, stats, floats({2}, {1, 4})},
       .args = {TensorArg{0}, ir::NoneArg{}, ir::NoneArg{}, TensorArg{1}, TensorArg{2}, 0.1, 0.0}});
  expect_tensor(nc[0], DType::kFloat32, {1, 2, 2}, {1, 2, 1, 1.5});
  auto empty = run({.target = "aten._native_batch_norm_legit_no_training.default",
                    .inputs = {floats({0, 2, 3}, {}), stats, stats},
                    .args = {TensorArg{0}, ir::NoneArg{}, ir::NoneArg{}, TensorArg{1}, TensorArg{2},
                             0.1, 1e-5}});
  expect_tensor(empty[0], DType::kFloat32, {0, 2, 3}, {});
  expect_error(
      {.target = "aten._native_batch_norm_legit_no_training.default",
       .inputs = {floats({2, 3}, kX), stats, stats},
       .args = {TensorArg{0}, ir::NoneArg{}, ir::NoneArg{}, TensorArg{1}, TensorArg{2}, 0.1, 1e-5}},
      "expected running_mean of shape [3] (one per channel), found [2]");
  expect_error(
      {.target = "aten._native_batch_norm_legit_no_training.default",
       .inputs = {floats({3}, {1, 2, 3}), stats, stats},
       .args = {TensorArg{0}, ir::NoneArg{}, ir::NoneArg{}, TensorArg{1}, TensorArg{2}, 0.1, 1e-5}},
      "rank >= 2");
  expect_error({.target = "aten.native_batch_norm.default",
                .inputs = {floats({1, 2}, {1, 2})},
                .args = {TensorArg{0}, ir::NoneArg{}, ir::NoneArg{}, ir::NoneArg{}, ir::NoneArg{},
                         true, 0.1, 1e-5}},
               "training=True");
  expect_error({.target = "aten.native_batch_norm.default",
                .inputs = {floats({1, 2}, {1, 2})},
                .args = {TensorArg{0}, ir::NoneArg{}, ir::NoneArg{}, ir::NoneArg{}, ir::NoneArg{},
                         false, 0.1, 1e-5}},
               "expected running_mean and running_var");
}

TEST(NormalizationTest, GroupNorm) {
  auto out = run({.target = "aten.native_group_norm.default",
                  .inputs = {arange_tensor(DType::kFloat32, {2, 4, 2}), floats({4}, {1, 2, 3, 4}),
                             floats({4}, {0, 1, 0, -1})},
                  .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, int64_t{2}, int64_t{4},
                           int64_t{2}, int64_t{2}, 1e-5}});
  const std::vector<double> sample = {-1.3416355, -0.4472119, 1.8944236, 3.6832709,
                                      -4.0249062, -1.3416352, 0.7888479, 4.3665423};
  std::vector<double> want = sample;
  want.insert(want.end(), sample.begin(), sample.end());
  expect_tensor(out[0], DType::kFloat32, {2, 4, 2}, want);
  expect_tensor(out[1], DType::kFloat32, {2, 2}, {1.5, 5.5, 9.5, 13.5});
  expect_tensor(out[2], DType::kFloat32, {2, 2}, {0.8944236, 0.8944236, 0.8944236, 0.8944236});
  auto mixed =
      run({.target = "aten.native_group_norm.default",
           .inputs = {arange_tensor(DType::kBFloat16, {2, 4, 2}), floats({4}, {1, 2, 3, 4})},
           .args = {TensorArg{0}, TensorArg{1}, ir::NoneArg{}, int64_t{2}, int64_t{4}, int64_t{2},
                    int64_t{2}, 1e-5}});
  EXPECT_EQ(mixed[0].dtype(), DType::kBFloat16);
  expect_tensor(mixed[1], DType::kFloat32, {2, 2}, {1.5, 5.5, 9.5, 13.5});
  auto empty = run({.target = "aten.native_group_norm.default",
                    .inputs = {floats({0, 4, 3}, {})},
                    .args = {TensorArg{0}, ir::NoneArg{}, ir::NoneArg{}, int64_t{0}, int64_t{4},
                             int64_t{3}, int64_t{2}, 1e-5}});
  expect_tensor(empty[1], DType::kFloat32, {0, 2}, {});
  expect_error({.target = "aten.native_group_norm.default",
                .inputs = {arange_tensor(DType::kFloat32, {2, 4, 3})},
                .args = {TensorArg{0}, ir::NoneArg{}, ir::NoneArg{}, int64_t{2}, int64_t{4},
                         int64_t{3}, int64_t{3}, 1e-5}},
               "divisible by a positive number of groups, found group=3");
  expect_error({.target = "aten.native_group_norm.default",
                .inputs = {arange_tensor(DType::kFloat32, {2, 4, 3})},
                .args = {TensorArg{0}, ir::NoneArg{}, ir::NoneArg{}, int64_t{2}, int64_t{4},
                         int64_t{5}, int64_t{2}, 1e-5}},
               "HxW=5");
}

// The composite forms that kiln's lowering keeps whole return the output alone.
TEST(NormalizationTest, LayerNormComposite) {
  auto out =
      run({.target = "aten.layer_norm.default",
           .inputs = {floats({2, 3}, kX), floats({3}, {1, 2, 3}), floats({3}, {0, 1, -1})},
           .args = {TensorArg{0}, std::vector<int64_t>{3}, TensorArg{1}, TensorArg{2}, 1e-5}});
  ASSERT_EQ(out.size(), 1u);
  expect_tensor(out[0], DType::kFloat32, {2, 3},
                {-1.2247356, 1.0, 2.6742067, -1.1355488, 0.6755574, 2.8933096});
  auto mixed =
      run({.target = "aten.layer_norm.default",
           .inputs = {make_tensor(DType::kBFloat16, {2, 3}, kX), floats({3}, {1, 2, 3})},
           .args = {TensorArg{0}, std::vector<int64_t>{3}, TensorArg{1}, ir::NoneArg{}, 1e-5}});
  expect_tensor(mixed[0], DType::kBFloat16, {2, 3},
                {-1.2247356, 0.0, 3.6742067, -1.1355488, -0.3244426, 3.8933096}, 1e-2);
  auto nc =
      run({.target = "aten.layer_norm.default",
           .inputs = {transposed(floats({2, 3}, kX))},
           .args = {TensorArg{0}, std::vector<int64_t>{2}, ir::NoneArg{}, ir::NoneArg{}, 0.0}});
  expect_tensor(nc[0], DType::kFloat32, {3, 2}, {-1, 1, -1, 1, -1, 1});
  auto whole = run({.target = "aten.layer_norm.default",
                    .inputs = {floats({2, 3}, kX)},
                    .args = {TensorArg{0}, std::vector<int64_t>{2, 3}}});
  expect_tensor(whole[0], DType::kFloat32, {2, 3},
                {-1.1851866, -0.8109172, -0.4366478, -0.0623784, 0.6861605, 1.8089688});
  auto empty = run({.target = "aten.layer_norm.default",
                    .inputs = {floats({2, 0}, {})},
                    .args = {TensorArg{0}, std::vector<int64_t>{0}}});
  expect_tensor(empty[0], DType::kFloat32, {2, 0}, {});
  expect_error({.target = "aten.layer_norm.default",
                .inputs = {arange_tensor(DType::kFloat32, {2, 3, 4})},
                .args = {TensorArg{0}, std::vector<int64_t>{3}}},
               "expected an input of shape [*, 3] for normalized_shape [3], found [2, 3, 4]");
  expect_error({.target = "aten.layer_norm.default",
                .inputs = {floats({2, 3}, kX), make_tensor(DType::kFloat16, {3}, {1})},
                .args = {TensorArg{0}, std::vector<int64_t>{3}, TensorArg{1}}},
               "mixed dtypes need a float16/bfloat16 input");
}

TEST(NormalizationTest, GroupNormComposite) {
  auto out = run({.target = "aten.group_norm.default",
                  .inputs = {arange_tensor(DType::kFloat32, {2, 4, 2}), floats({4}, {1, 2, 3, 4}),
                             floats({4}, {0, 1, 0, -1})},
                  .args = {TensorArg{0}, int64_t{2}, TensorArg{1}, TensorArg{2}, 1e-5}});
  ASSERT_EQ(out.size(), 1u);
  const std::vector<double> sample = {-1.3416355, -0.4472119, 1.8944236, 3.6832709,
                                      -4.0249062, -1.3416352, 0.7888479, 4.3665423};
  std::vector<double> want = sample;
  want.insert(want.end(), sample.begin(), sample.end());
  expect_tensor(out[0], DType::kFloat32, {2, 4, 2}, want);
  // [N, C] input: one element per channel.
  auto flat = run({.target = "aten.group_norm.default",
                   .inputs = {floats({2, 4}, {-1.5, 0.25, -1.25, 0.5, -1, 0.75, -0.75, 1})},
                   .args = {TensorArg{0}, int64_t{2}}});
  expect_tensor(
      flat[0], DType::kFloat32, {2, 4},
      {-0.9999934, 0.9999934, -0.9999934, 0.9999934, -0.9999934, 0.9999934, -0.9999934, 0.9999934});
  auto mixed = run({.target = "aten.group_norm.default",
                    .inputs = {arange_tensor(DType::kBFloat16, {2, 4, 2}),
                               floats({4}, {1, 2, 3, 4}), floats({4}, {0, 1, 0, -1})},
                    .args = {TensorArg{0}, int64_t{2}, TensorArg{1}, TensorArg{2}, 1e-5}});
  expect_tensor(mixed[0], DType::kBFloat16, {2, 4, 2}, want, 1e-2);
  auto empty = run({.target = "aten.group_norm.default",
                    .inputs = {floats({0, 4, 3}, {})},
                    .args = {TensorArg{0}, int64_t{2}}});
  expect_tensor(empty[0], DType::kFloat32, {0, 4, 3}, {});
  const Tensor x = arange_tensor(DType::kFloat32, {2, 4, 3});
  expect_error(
      {.target = "aten.group_norm.default", .inputs = {x}, .args = {TensorArg{0}, int64_t{3}}},
      "expected the number of channels (4) to be divisible by a positive number of "
      "groups, found num_groups=3");
  expect_error(
      {.target = "aten.group_norm.default", .inputs = {x}, .args = {TensorArg{0}, int64_t{0}}},
      "found num_groups=0");
  expect_error({.target = "aten.group_norm.default",
                .inputs = {x, floats({3}, {1, 2, 3})},
                .args = {TensorArg{0}, int64_t{2}, TensorArg{1}}},
               "expected weight of shape [4] (one per channel), found [3]");
  expect_error({.target = "aten.group_norm.default",
                .inputs = {x, make_tensor(DType::kFloat16, {4}, {1})},
                .args = {TensorArg{0}, int64_t{2}, TensorArg{1}}},
               "mixed dtypes need a float16/bfloat16 input");
  expect_error({.target = "aten.group_norm.default",
                .inputs = {floats({4}, {1, 2, 3, 4})},
                .args = {TensorArg{0}, int64_t{2}}},
               "expected an input of shape [N, C, *] (rank >= 2), found [4]");
}

TEST(NormalizationTest, InstanceNormInputStatistics) {
  const Tensor x =
      floats({2, 2, 3}, {-1.5, 0.25, -1.25, 0.5, -1, 0.75, -0.75, 1, -0.5, 1.25, -0.25, 1.5});
  const std::vector<double> want = {-0.862655,  1.401814, -0.5391594, 2.078319, -1.803628, 2.72531,
                                    -0.8626549, 1.401814, -0.5391593, 2.078319, -1.803629, 2.72531};
  auto out = run({.target = "aten.instance_norm.default",
                  .inputs = {x, floats({2}, {1, 2}), floats({2}, {0, 1})},
                  .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, ir::NoneArg{}, ir::NoneArg{},
                           true, 0.1, 1e-5, false}});
  ASSERT_EQ(out.size(), 1u);
  expect_tensor(out[0], DType::kFloat32, {2, 2, 3}, want);
  // Running statistics given alongside input statistics are not read (PyTorch only updates them).
  auto ignored = run({.target = "aten.instance_norm.default",
                      .inputs = {x, floats({2}, {1, 2}), floats({2}, {0, 1}), floats({2}, {5, 5}),
                                 floats({2}, {9, 9})},
                      .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, TensorArg{3}, TensorArg{4},
                               true, 0.1, 1e-5, false}});
  expect_tensor(ignored[0], DType::kFloat32, {2, 2, 3}, want);
  auto half = run({.target = "aten.instance_norm.default",
                   .inputs = {make_tensor(DType::kFloat16, {2, 2, 3}, to_doubles(x)),
                              floats({2}, {1, 2}), floats({2}, {0, 1})},
                   .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, ir::NoneArg{}, ir::NoneArg{},
                            true, 0.1, 1e-5, false}});
  expect_tensor(half[0], DType::kFloat16, {2, 2, 3}, want, 1e-2);
}

TEST(NormalizationTest, InstanceNormRunningStatisticsAndErrors) {
  // With running statistics, instance norm is batch norm (the BatchNormInference case).
  auto out =
      run({.target = "aten.instance_norm.default",
           .inputs = {arange_tensor(DType::kFloat32, {2, 3, 2}), floats({3}, {1, 2, 3}),
                      floats({3}, {0, 1, -1}), floats({3}, {1, 5, 9}), floats({3}, {4, 1, 0.25})},
           .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, TensorArg{3}, TensorArg{4}, false,
                    0.1, 1e-5, false}});
  expect_tensor(out[0], DType::kFloat32, {2, 3, 2},
                {-0.4999994, 0.0, -4.9999704, -2.9999804, -30.999397, -24.999517, 2.4999971,
                 2.9999964, 6.9999695, 8.9999599, 4.9998817, 10.999762});
  const Tensor x = arange_tensor(DType::kFloat32, {2, 3, 2});
  expect_error({.target = "aten.instance_norm.default",
                .inputs = {x},
                .args = {TensorArg{0}, ir::NoneArg{}, ir::NoneArg{}, ir::NoneArg{}, ir::NoneArg{},
                         false, 0.1, 1e-5, false}},
               "expected running_mean and running_var when use_input_stats is False");
  expect_error({.target = "aten.instance_norm.default",
                .inputs = {x, floats({2}, {0, 0}), floats({3}, {1, 1, 1})},
                .args = {TensorArg{0}, ir::NoneArg{}, ir::NoneArg{}, TensorArg{1}, TensorArg{2},
                         false, 0.1, 1e-5, false}},
               "expected running_mean of shape [3] (one per channel), found [2]");
  expect_error({.target = "aten.instance_norm.default",
                .inputs = {x, floats({2}, {1, 1})},
                .args = {TensorArg{0}, TensorArg{1}, ir::NoneArg{}, ir::NoneArg{}, ir::NoneArg{},
                         true, 0.1, 1e-5, false}},
               "expected weight of shape [3] (one per channel), found [2]");
  expect_error({.target = "aten.instance_norm.default",
                .inputs = {make_tensor(DType::kInt64, {2, 3}, {1})},
                .args = {TensorArg{0}, ir::NoneArg{}, ir::NoneArg{}, ir::NoneArg{}, ir::NoneArg{},
                         true, 0.1, 1e-5, false}},
               "expected a floating point input, found int64");
  expect_error({.target = "aten.instance_norm.default",
                .inputs = {floats({3}, {1, 2, 3})},
                .args = {TensorArg{0}, ir::NoneArg{}, ir::NoneArg{}, ir::NoneArg{}, ir::NoneArg{},
                         true, 0.1, 1e-5, false}},
               "rank >= 2");
}

}  // namespace
}  // namespace kiln::testing
