// Upsample kernels against values computed with PyTorch 2.11 (F.interpolate on the same inputs).
#include <gtest/gtest.h>

#include "support/op_runner.h"

namespace kiln {
namespace {

using testing::OpCall;
using testing::TensorArg;

std::vector<double> run(const OpCall& call) {
  auto out = testing::run_op(call);
  EXPECT_TRUE(out.ok()) << out.status().message();
  return out.ok() ? testing::to_doubles((*out)[0]) : std::vector<double>{};
}

void expect_near(const std::vector<double>& actual, const std::vector<double>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) EXPECT_NEAR(actual[i], expected[i], 1e-5) << i;
}

Tensor input_2x3() {
  return testing::arange_tensor(DType::kFloat32, {1, 1, 2, 3});
}

TEST(ResizeTest, NearestByScale) {
  // F.interpolate(arange(6).view(1,1,2,3), scale_factor=2, mode="nearest")
  auto y = run({.target = "aten.upsample_nearest2d.vec",
                .inputs = {input_2x3()},
                .args = {TensorArg{0}, ir::NoneArg{}, std::vector<int64_t>{2, 2}}});
  expect_near(y, {0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 3, 3, 4, 4, 5, 5});
}

TEST(ResizeTest, NearestExactBySize) {
  // F.interpolate(x, size=(2, 2), mode="nearest-exact") -> src cols floor((o + 0.5) * 1.5) = 0, 2
  auto y = run({.target = "aten._upsample_nearest_exact2d.vec",
                .inputs = {input_2x3()},
                .args = {TensorArg{0}, std::vector<int64_t>{2, 2}, ir::NoneArg{}}});
  expect_near(y, {0, 2, 3, 5});
}

TEST(ResizeTest, BilinearHalfPixel) {
  // F.interpolate(x, size=(3, 4), mode="bilinear", align_corners=False)
  auto y = run({.target = "aten.upsample_bilinear2d.vec",
                .inputs = {input_2x3()},
                .args = {TensorArg{0}, std::vector<int64_t>{3, 4}, false, ir::NoneArg{}}});
  expect_near(y, {0.0, 0.625, 1.375, 2.0, 1.5, 2.125, 2.875, 3.5, 3.0, 3.625, 4.375, 5.0});
}

TEST(ResizeTest, BilinearAlignCorners) {
  // F.interpolate(x, size=(3, 5), mode="bilinear", align_corners=True)
  auto y = run({.target = "aten.upsample_bilinear2d.vec",
                .inputs = {input_2x3()},
                .args = {TensorArg{0}, std::vector<int64_t>{3, 5}, true, ir::NoneArg{}}});
  expect_near(y, {0.0, 0.5, 1.0, 1.5, 2.0, 1.5, 2.0, 2.5, 3.0, 3.5, 3.0, 3.5, 4.0, 4.5, 5.0});
}

TEST(ResizeTest, RejectsBadArguments) {
  auto both = testing::run_op(
      {.target = "aten.upsample_nearest2d.vec",
       .inputs = {input_2x3()},
       .args = {TensorArg{0}, std::vector<int64_t>{4, 6}, std::vector<int64_t>{2, 2}}});
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.status().message().find("exactly one of output_size and scale_factors"),
            std::string::npos);
  auto rank = testing::run_op({.target = "aten.upsample_nearest2d.vec",
                               .inputs = {testing::arange_tensor(DType::kFloat32, {2, 3})},
                               .args = {TensorArg{0}, std::vector<int64_t>{4, 6}, ir::NoneArg{}}});
  ASSERT_FALSE(rank.ok());
  EXPECT_NE(rank.status().message().find("expected a 4-d input"), std::string::npos);
}

}  // namespace
}  // namespace kiln
