// Upsample kernels against values computed with PyTorch 2.11 (F.interpolate on the same inputs).
#include <gtest/gtest.h>

#include <limits>

#include "support/kernel_expect.h"

namespace kiln::testing {
namespace {

// The outputs are compared with an absolute tolerance only.
constexpr Tolerance kAbsolute{.atol = 1e-5, .rtol = 0.0};

Tensor input_2x3() {
  return arange_tensor(DType::kFloat32, {1, 1, 2, 3});
}

TEST(ResizeTest, NearestByScale) {
  // F.interpolate(arange(6).view(1,1,2,3), scale_factor=2, mode="nearest")
  auto y = run1({.target = "aten.upsample_nearest2d.vec",
                 .inputs = {input_2x3()},
                 .args = {TensorArg{0}, ir::NoneArg{}, std::vector<int64_t>{2, 2}}});
  expect_values_near(to_doubles(y),
                     {0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 3, 3, 4, 4, 5, 5},
                     kAbsolute);
}

TEST(ResizeTest, NearestExactBySize) {
  // F.interpolate(x, size=(2, 2), mode="nearest-exact") -> src cols floor((o + 0.5) * 1.5) = 0, 2
  auto y = run1({.target = "aten._upsample_nearest_exact2d.vec",
                 .inputs = {input_2x3()},
                 .args = {TensorArg{0}, std::vector<int64_t>{2, 2}, ir::NoneArg{}}});
  expect_values_near(to_doubles(y), {0, 2, 3, 5}, kAbsolute);
}

TEST(ResizeTest, BilinearHalfPixel) {
  // F.interpolate(x, size=(3, 4), mode="bilinear", align_corners=False)
  auto y = run1({.target = "aten.upsample_bilinear2d.vec",
                 .inputs = {input_2x3()},
                 .args = {TensorArg{0}, std::vector<int64_t>{3, 4}, false, ir::NoneArg{}}});
  expect_values_near(to_doubles(y),
                     {0.0, 0.625, 1.375, 2.0, 1.5, 2.125, 2.875, 3.5, 3.0, 3.625, 4.375, 5.0},
                     kAbsolute);
}

TEST(ResizeTest, BilinearAlignCorners) {
  // F.interpolate(x, size=(3, 5), mode="bilinear", align_corners=True)
  auto y = run1({.target = "aten.upsample_bilinear2d.vec",
                 .inputs = {input_2x3()},
                 .args = {TensorArg{0}, std::vector<int64_t>{3, 5}, true, ir::NoneArg{}}});
  expect_values_near(to_doubles(y),
                     {0.0, 0.5, 1.0, 1.5, 2.0, 1.5, 2.0, 2.5, 3.0, 3.5, 3.0, 3.5, 4.0, 4.5, 5.0},
                     kAbsolute);
}

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(ResizeTest, NearestKeepsNonFiniteValuesInPlace) {
  // Nearest copies one element: a NaN or inf in column 0 must not reach the other columns (it did
  // when nearest ran through the linear blend with a zero-weight second tap). Eager:
  // upsample_nearest2d([[[[nan, 1, 2, 3]]]], [1, 3]) = [nan, 1, 2].
  for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    auto y = run1({.target = "aten.upsample_nearest2d.default",
                   .inputs = {make_tensor(dtype, {1, 1, 1, 4}, {kNan, 1, 2, 3})},
                   .args = {TensorArg{0}, std::vector<int64_t>{1, 3}}});
    expect_tensor(y, dtype, {1, 1, 1, 3}, {kNan, 1, 2});
  }
  // Two rows, inf and NaN in row 0, resized to 3 x 3: rows 0, 0, 1 and columns 0, 0, 1.
  auto y = run1({.target = "aten.upsample_nearest2d.vec",
                 .inputs = {make_tensor(DType::kFloat32, {1, 1, 2, 2}, {kInf, kNan, 1, 2})},
                 .args = {TensorArg{0}, std::vector<int64_t>{3, 3}, ir::NoneArg{}}});
  expect_tensor(y, DType::kFloat32, {1, 1, 3, 3}, {kInf, kInf, kNan, kInf, kInf, kNan, 1, 1, 2});
}

TEST(ResizeTest, LinearReadsZeroWeightTapsAsEagerDoes) {
  // PyTorch reads both taps of every output even where one has weight 0, so 0 * inf gives NaN:
  // eager upsample_bilinear2d([[1, 2], [1, 1], [2, 3], [3, 4], [4, inf]], [3, 2],
  // align_corners=True) = [[1, 2], [2, 3], [4, nan]].
  auto y = run1(
      {.target = "aten.upsample_bilinear2d.vec",
       .inputs = {make_tensor(DType::kFloat32, {1, 1, 5, 2}, {1, 2, 1, 1, 2, 3, 3, 4, 4, kInf})},
       .args = {TensorArg{0}, std::vector<int64_t>{3, 2}, true, ir::NoneArg{}}});
  expect_tensor(y, DType::kFloat32, {1, 1, 3, 2}, {1, 2, 2, 3, 4, kNan});
  // A NaN in a row of weight 0 reaches the output too: eager resizes [1, nan, 4] (one column)
  // to 2 rows, align_corners=True, as [nan, 4] ...
  auto z = run1({.target = "aten.upsample_bilinear2d.vec",
                 .inputs = {make_tensor(DType::kFloat32, {1, 1, 3, 1}, {1, kNan, 4})},
                 .args = {TensorArg{0}, std::vector<int64_t>{2, 1}, true, ir::NoneArg{}}});
  expect_tensor(z, DType::kFloat32, {1, 1, 2, 1}, {kNan, 4});
  // ... but a 1-D resize has no rows to blend: eager upsample_linear1d([1, 2, inf], [5],
  // align_corners=True) = [1, 1.5, nan, inf, nan], the inf at 3 is not turned into NaN.
  auto w = run1({.target = "aten.upsample_linear1d.vec",
                 .inputs = {make_tensor(DType::kFloat32, {1, 1, 3}, {1, 2, kInf})},
                 .args = {TensorArg{0}, std::vector<int64_t>{5}, true, ir::NoneArg{}}});
  expect_tensor(w, DType::kFloat32, {1, 1, 5}, {1, 1.5, kNan, kInf, kNan});
  // Where in == out both taps are the element itself: eager resizes [[1, inf], [2, 3]] to 2 x 2
  // as [[1, nan], [2, 3]] (1 * inf + 0 * inf), not as a copy.
  auto same = run1({.target = "aten.upsample_bilinear2d.vec",
                    .inputs = {make_tensor(DType::kFloat32, {1, 1, 2, 2}, {1, kInf, 2, 3})},
                    .args = {TensorArg{0}, std::vector<int64_t>{2, 2}, true, ir::NoneArg{}}});
  expect_tensor(same, DType::kFloat32, {1, 1, 2, 2}, {1, kNan, 2, 3});
}

TEST(ResizeTest, RejectsBadArguments) {
  expect_error({.target = "aten.upsample_nearest2d.vec",
                .inputs = {input_2x3()},
                .args = {TensorArg{0}, std::vector<int64_t>{4, 6}, std::vector<int64_t>{2, 2}}},
               "exactly one of output_size and scale_factors");
  expect_error({.target = "aten.upsample_nearest2d.vec",
                .inputs = {arange_tensor(DType::kFloat32, {2, 3})},
                .args = {TensorArg{0}, std::vector<int64_t>{4, 6}, ir::NoneArg{}}},
               "expected a 4-d input");
}

}  // namespace
}  // namespace kiln::testing
