// Upsample kernels against values computed with PyTorch 2.11 (F.interpolate on the same inputs).
#include <gtest/gtest.h>

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
