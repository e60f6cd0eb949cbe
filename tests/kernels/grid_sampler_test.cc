// grid_sampler_2d (inference + CPU kernel) against PyTorch 2.11 eager on the CPU: every
// interpolation and padding mode with and without align_corners, NaN and inf grid points, and
// NaN and inf pixels. Expected values were computed with torch and are hard-coded here.
#include <gtest/gtest.h>

#include "support/kernel_expect.h"
#include "support/kernel_values.h"

namespace kiln::testing {
namespace {

// x = (arange(12) * 7 % 11 - 5).reshape(1, 1, 3, 4).
Tensor image(DType dtype = kF32) {
  return make_tensor(dtype, {1, 1, 3, 4}, {-5, 2, -2, 5, 1, -3, 4, 0, -4, 3, -1, -5});
}

Tensor grid(DType dtype = kF32) {
  return make_tensor(dtype, {1, 2, 4, 2},
                     {-1, -1, 0.3, -0.2, 1.2, 0.9, -0.7, 1.5, 0.05, 0.6, -1.3, 0.1, 0.999, -0.999,
                      0.5, 0.25});
}

OpCall grid_sample(Tensor input, Tensor g, int64_t interpolation, int64_t padding, bool align) {
  return {.target = "aten.grid_sampler_2d.default",
          .inputs = {input, g},
          .args = {TensorArg{0}, TensorArg{1}, interpolation, padding, align}};
}

struct Case {
  int64_t interpolation, padding;
  bool align;
  std::vector<double> want;
};

TEST(GridSampler2d, EveryModeMatchesEager) {
  const std::vector<Case> cases = {
      {0, 0, false, {-1.25, 2.13, -0.3249997, 0, 0.6600002, 0, 1.258765, 0.125}},
      {0, 0, true, {-5, 2.56, -3.149999, -0.4249999, 0.83, 0.275, 4.984518, 1.75}},
      {0, 1, false, {-5, 2.13, -5, -3.3, 0.6600002, 0.2499995, 5, 0.125}},
      {0, 1, true, {-5, 2.56, -4.5, -0.8499998, 0.83, 0.4999999, 4.984518, 1.75}},
      {0, 2, false, {-5, 2.13, -5, -2.325, 0.6600002, 0.01499983, 5, 0.125}},
      {0, 2, true, {-5, 2.56, -3.299999, -0.825, 0.83, -0.8049998, 4.984518, 1.75}},
      {1, 0, false, {-5, 4, 0, 0, -1, 0, 5, 4}},
      {1, 0, true, {-5, 4, -5, -4, -1, 1, 5, 4}},
      {1, 1, false, {-5, 4, -5, -4, -1, 1, 5, 4}},
      {1, 2, true, {-5, 4, -5, -4, -1, 1, 5, 4}},
      {2, 0, false,
       {-1.956055, 3.049262, -0.3369773, 0.3841172, 1.587842, -0.04810624, 1.923896, 0.1773224}},
      {2, 0, true, {-5, 3.198091, -4.028703, -0.4565641, 1.763398, 0.8955509, 4.997709, 2.782303}},
      {2, 1, false, {-6.31543, 3.11339, -5.581532, -3.399, 1.497446, 0.8492494, 6.226371, 0.6511078}},
      {2, 1, true, {-5, 3.247703, -5.072937, -0.4841138, 1.587342, 1.33901, 4.988364, 2.928696}},
      {2, 2, false,
       {-7.824219, 3.11339, -6.123124, -2.310753, 1.497446, 0.5193037, 7.636681, 0.6511078}},
      {2, 2, true, {-5, 3.105618, -4.414415, -1.018969, 1.633894, -0.8998647, 4.999949, 2.530716}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "interpolation " << c.interpolation << " padding "
                                    << c.padding << " align_corners " << c.align);
    expect_tensor(run1(grid_sample(image(), grid(), c.interpolation, c.padding, c.align)), kF32,
                  {1, 1, 2, 4}, c.want);
  }
}

TEST(GridSampler2d, NonFiniteGridPoints) {
  // Points (nan, 0), (0, inf), (-inf, 0.2), (0.1, 0.1): padding clips a NaN to 0 and an inf to
  // the edge; zeros padding leaves them, so bilinear and bicubic weights are NaN.
  const Tensor g = make_tensor(kF32, {1, 1, 4, 2}, {kNaN, 0, 0, kInf, -kInf, 0.2, 0.1, 0.1});
  const std::vector<Case> cases = {
      {0, 0, false, {kNaN, kNaN, kNaN, 1.645}},    {0, 1, false, {1, 1, -0.5000004, 1.645}},
      {0, 2, false, {1, 0, -0.5000004, 1.645}},    {1, 0, false, {0, 0, 0, 4}},
      {1, 1, false, {1, -1, 1, 4}},                {1, 2, false, {1, -2, 1, 4}},
      {2, 0, false, {kNaN, kNaN, kNaN, 2.426098}}, {2, 1, false, {kNaN, kNaN, kNaN, 2.413365}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "interpolation " << c.interpolation << " padding "
                                    << c.padding);
    expect_tensor(run1(grid_sample(image(), g, c.interpolation, c.padding, c.align)), kF32,
                  {1, 1, 1, 4}, c.want);
  }
}

TEST(GridSampler2d, NonFinitePixelsUnderZeroWeightTaps) {
  Tensor x = make_tensor(kF32, {1, 1, 3, 4}, {-5, 2, -2, 5, 1, kNaN, 4, 0, -4, 3, -1, kInf});
  const Tensor g =
      make_tensor(kF32, {1, 1, 4, 2}, {-0.75, -1.0 / 3, -0.5, 0.0, 1.0, 1.0, 0.75, 1.0 / 3});
  expect_tensor(run1(grid_sample(x, g, 0, 0, false)), kF32, {1, 1, 1, 4},
                {kNaN, kNaN, kInf, kInf});
  expect_tensor(run1(grid_sample(x, g, 1, 0, false)), kF32, {1, 1, 1, 4}, {-5, 1, 0, kInf});
  expect_tensor(run1(grid_sample(x, g, 2, 0, false)), kF32, {1, 1, 1, 4},
                {kNaN, kNaN, kInf, kInf});
}

TEST(GridSampler2d, HalfAndStridedInputs) {
  // Computed in float from the half values and rounded once (eager's half kernel rounds its
  // intermediates: 2.5546875 for the second point).
  expect_tensor(run1(grid_sample(image(kF16), grid(kF16), 0, 1, true)), kF16, {1, 1, 2, 4},
                {-5, 2.5606179, -4.4995117, -0.8520508, 0.829961, 0.5001221, 4.984879, 1.75},
                1e-3);
  // The image as a transposed view of its [1, 1, 4, 3] transpose gives the same samples.
  Tensor t = make_tensor(kF32, {4, 3}, {-5, 1, -4, 2, -3, 3, -2, 4, -1, 5, 0, -5});
  Tensor strided = transposed(t).view_as({1, 1, 3, 4}, {12, 12, 1, 3}, 0);
  expect_tensor(run1(grid_sample(strided, grid(), 0, 0, false)), kF32, {1, 1, 2, 4},
                {-1.25, 2.13, -0.3249997, 0, 0.6600002, 0, 1.258765, 0.125});
}

TEST(GridSampler2d, Errors) {
  expect_error(grid_sample(image(), make_tensor(kF32, {1, 2, 4, 3}, {0}), 0, 0, false),
               "grid [N, H_out, W_out, 2]");
  expect_error(grid_sample(image(), grid(), 3, 0, false), "interpolation_mode");
  expect_error(grid_sample(image(), grid(kF16), 0, 0, false), "grid of its dtype");
}

}  // namespace
}  // namespace kiln::testing
