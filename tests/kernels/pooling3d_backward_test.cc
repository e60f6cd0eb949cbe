// Conformance cases for the 3-D pooling ops and the backward ops of 2-D pooling. Expected values
// were computed with PyTorch 2.11 eager on CPU and hard-coded.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/kernel_expect.h"
#include "support/kernel_values.h"

namespace kiln::testing {
namespace {

using Ints = std::vector<int64_t>;

// (7 * i) % 11 for i < 60, as an unbatched [C=1, D=3, H=4, W=5] volume.
const std::vector<double> kVolume = {
    0, 7, 3, 10, 6, 2, 9,  5, 1, 8, 4, 0, 7, 3, 10, 6, 2, 9,  5, 1, 8, 4, 0, 7, 3, 10, 6, 2, 9,  5,
    1, 8, 4, 0,  7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0,  7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0,  7, 3, 10, 6};
Tensor volume(DType dtype = kF32) {
  return make_tensor(dtype, {1, 3, 4, 5}, kVolume);
}
// The same values through a non-contiguous view: a [5, 4, 3] tensor's dims reversed.
Tensor volume_view() {
  std::vector<double> storage(60);
  for (int64_t d = 0; d < 3; ++d) {
    for (int64_t h = 0; h < 4; ++h) {
      for (int64_t w = 0; w < 5; ++w) storage[(w * 4 + h) * 3 + d] = kVolume[(d * 4 + h) * 5 + w];
    }
  }
  return make_tensor(kF32, {5, 4, 3}, storage).view_as({1, 3, 4, 5}, {60, 1, 3, 12}, 0);
}

// A [1, 1, 4, 5] image (as in pooling_test.cc).
const std::vector<double> kImage = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4};
Tensor image(DType dtype = kF32) {
  return make_tensor(dtype, {1, 1, 4, 5}, kImage);
}

// avg_pool3d(self, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
OpCall avg_pool3d(Tensor x, Ints kernel, Ints stride = {}, Ints padding = {0},
                  bool ceil_mode = false, bool count_include_pad = true,
                  std::optional<int64_t> divisor = std::nullopt) {
  OpCall call{.target = "aten.avg_pool3d.default",
              .inputs = {std::move(x)},
              .args = {TensorArg{0}, kernel, stride, padding, ceil_mode, count_include_pad}};
  if (divisor) call.args.push_back(*divisor);
  return call;
}

// max_pool3d_with_indices(self, kernel_size, stride, padding, dilation, ceil_mode)
OpCall max_pool3d(Tensor x, Ints kernel, Ints stride = {}, Ints padding = {0}, Ints dilation = {1},
                  bool ceil_mode = false) {
  return {.target = "aten.max_pool3d_with_indices.default",
          .inputs = {std::move(x)},
          .args = {TensorArg{0}, kernel, stride, padding, dilation, ceil_mode}};
}

OpCall adaptive_avg_pool3d(Tensor x, Ints size) {
  return {.target = "aten._adaptive_avg_pool3d.default",
          .inputs = {std::move(x)},
          .args = {TensorArg{0}, size}};
}

// avg_pool2d_backward(grad_output, self, kernel_size, stride, padding, ceil_mode,
//                     count_include_pad, divisor_override)
OpCall avg_pool2d_backward(Tensor grad, Tensor self, Ints kernel, Ints stride, Ints padding,
                           bool ceil_mode, bool count_include_pad,
                           std::optional<int64_t> divisor = std::nullopt) {
  return {.target = "aten.avg_pool2d_backward.default",
          .inputs = {std::move(grad), std::move(self)},
          .args = {TensorArg{0}, TensorArg{1}, kernel, stride, padding, ceil_mode,
                   count_include_pad, divisor ? TestArg{*divisor} : TestArg{ir::NoneArg{}}}};
}

OpCall adaptive_avg_pool2d_backward(Tensor grad, Tensor self) {
  return {.target = "aten._adaptive_avg_pool2d_backward.default",
          .inputs = {std::move(grad), std::move(self)},
          .args = {TensorArg{0}, TensorArg{1}}};
}

// max_pool2d_with_indices_backward(grad_output, self, kernel_size, stride, padding, dilation,
//                                  ceil_mode, indices)
OpCall max_pool2d_backward(Tensor grad, Tensor self, Ints kernel, Ints stride, Ints padding,
                           Tensor indices) {
  return {.target = "aten.max_pool2d_with_indices_backward.default",
          .inputs = {std::move(grad), std::move(self), std::move(indices)},
          .args = {TensorArg{0}, TensorArg{1}, kernel, stride, padding, Ints{1, 1}, false,
                   TensorArg{2}}};
}

TEST(Pooling3dTest, AvgPool3dWindows) {
  expect_tensor(run(avg_pool3d(arange_tensor(kF32, {1, 1, 3, 4, 4}), {2, 2, 2})), kF32,
                {1, 1, 1, 2, 2}, {10.5, 12.5, 18.5, 20.5});
  expect_tensor(run(avg_pool3d(volume(), {3, 3, 3}, {2, 2, 2}, {1, 1, 1})), kF32, {1, 2, 2, 3},
                {1.7037038, 2.3333333, 1.8148148, 2.2592592, 3.2592592, 2.2222223, 1.6296296,
                 2.2222223, 1.3333334, 2.5555556, 3.7037036, 2.5185184});
  expect_tensor(
      run(avg_pool3d(volume(), {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, false, false)), kF32, {1, 2, 2, 3},
      {5.75, 5.25, 6.125, 5.0833335, 4.8888888, 5, 5.5, 5, 4.5, 5.75, 5.5555553, 5.6666665});
  // ceil_mode: the last window along W starts in the input and runs into the right padding (its
  // padded count is clipped to the padded input), the last along H past the right padding.
  expect_tensor(run(avg_pool3d(volume(), {2, 2, 2}, {2, 2, 2}, {1, 1, 1}, true, true)), kF32,
                {1, 2, 3, 3},
                {0, 1.25, 2, 0.75, 2.625, 2.75, 0.75, 1.375, 0.75, 1.625, 1.625, 1.75, 3.375, 4.875,
                 5.125, 0.375, 3.25, 3.375});
  expect_tensor(
      run(avg_pool3d(volume(), {2, 2, 2}, {2, 2, 2}, {1, 1, 1}, true, false)), kF32, {1, 2, 3, 3},
      {0, 5, 8, 3, 5.25, 5.5, 6, 5.5, 3, 6.5, 3.25, 3.5, 6.75, 4.875, 5.125, 1.5, 6.5, 6.75});
  expect_tensor(run(avg_pool3d(volume(), {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, true)), kF32,
                {1, 2, 2, 3}, {5.75, 4.625, 5.5, 4.25, 4.5, 6.75, 4, 7, 1, 5.25, 5.5, 5});
  expect_tensor(
      run(avg_pool3d(volume(), {2, 3, 2}, {1, 2, 2}, {0, 1, 1}, false, true, 5)), kF32,
      {1, 2, 2, 3},
      {4, 7.1999998, 9.8000002, 5.1999998, 13.6, 12, 6, 6.8000002, 7.1999998, 6, 13, 13.6});
  // Single-int lists apply to all three dims; the non-contiguous view gives the same answer.
  expect_tensor(run(avg_pool3d(volume_view(), {2})), kF32, {1, 1, 2, 2}, {5.75, 4.625, 4.25, 4.5});
}

TEST(Pooling3dTest, AvgPool3dDtypesNaNAndEmpty) {
  // int64 sums divide with truncation toward zero (-5.75 -> -5), also by a negative divisor.
  std::vector<double> negated(kVolume.size());
  for (size_t i = 0; i < kVolume.size(); ++i) negated[i] = -kVolume[i];
  expect_tensor(run(avg_pool3d(make_tensor(kI64, {1, 3, 4, 5}, negated), {2, 2, 2}, {1, 2, 2})),
                kI64, {1, 2, 2, 2}, {-5, -4, -4, -4, -5, -5, -5, -4});
  std::vector<double> shifted(kVolume.size());
  for (size_t i = 0; i < kVolume.size(); ++i) shifted[i] = kVolume[i] - 5;
  expect_tensor(run(avg_pool3d(make_tensor(kI64, {1, 3, 4, 5}, shifted), {2, 2, 2}, {1, 2, 2},
                               {1, 1, 1}, false, true, -3)),
                kI64, {1, 4, 3, 3}, {1, 0, -2, 1, 0, 0, 0,  0,  1, 0, 2, -2, 1, 0, -1, 0, -2, 1, -1,
                                     2, 2, -2, 0, 0, 2, -2, -2, 0, 0, 2, -2, 0, 0, 1,  0, -2});
  // PyTorch's CPU kernel has no 16-bit float avg_pool3d (its CUDA one has); these are the float32
  // results rounded.
  for (DType d : {kF16, kBF16}) {
    expect_tensor(run(avg_pool3d(volume(d), {2, 2, 2})), d, {1, 1, 2, 2}, {5.75, 4.625, 4.25, 4.5},
                  1e-2);
  }
  const Tensor special =
      make_tensor(kF32, {1, 2, 2, 4}, {1, kNaN, 3, 4, 5, 6, 7, 8, 1, 2, 3, kInf, 5, 6, 7, 8});
  expect_tensor(run(avg_pool3d(special, {1, 2, 2})), kF32, {1, 2, 1, 2}, {kNaN, 5.5, 3.5, kInf});
  expect_tensor(run(avg_pool3d(make_tensor(kF32, {0, 1, 2, 2, 2}, {}), {1, 1, 1})), kF32,
                {0, 1, 2, 2, 2}, {});
}

TEST(Pooling3dTest, AvgPool3dErrors) {
  expect_error(avg_pool3d(volume(), {2, 2}), "expected kernel_size to be a single int or 3 ints");
  expect_error(avg_pool3d(volume(), {2, 2, 2}, {1, 1, 1}, {2, 0, 0}), "at most half");
  expect_error(avg_pool3d(volume(), {5, 2, 2}), "the output is too small");
  expect_error(avg_pool3d(volume(), {2, 2, 2}, {}, {0}, false, true, 0),
               "divisor_override to be non-zero");
  expect_error(avg_pool3d(make_tensor(kF32, {1, 4, 4}, {1}), {2, 2, 2}),
               "expected a 4-D (unbatched) or 5-D (batched) input");
  expect_error(avg_pool3d(make_tensor(kF32, {0, 2, 2, 2}, {}), {1, 1, 1}), "with dim 0 empty");
  expect_error(avg_pool3d(volume(kI32), {2, 2, 2}), "avg pooling does not support dtype int32");
}

TEST(Pooling3dTest, MaxPool3dWindows) {
  auto k2 = run(max_pool3d(volume(), {2, 2, 2}));
  expect_tensor(k2[0], kF32, {1, 1, 2, 2}, {10, 10, 10, 9});
  expect_tensor(k2[1], kI64, {1, 1, 2, 2}, {25, 3, 36, 17});
  auto dilated = run(max_pool3d(volume(), {2, 2, 2}, {1, 2, 2}, {1, 1, 1}, {2, 2, 2}));
  expect_tensor(dilated[0], kF32, {1, 3, 2, 3},
                {6, 9, 9, 10, 10, 9, 9, 9, 6, 9, 10, 10, 6, 9, 9, 10, 10, 9});
  expect_tensor(dilated[1], kI64, {1, 3, 2, 3},
                {26, 28, 28, 36, 36, 28, 6, 6, 48, 6, 58, 58, 26, 28, 28, 36, 36, 28});
  auto ceil = run(max_pool3d(volume(), {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, true));
  expect_tensor(ceil[0], kF32, {1, 2, 3, 3},
                {10, 10, 10, 10, 10, 10, 10, 10, 9, 10, 10, 9, 10, 10, 10, 10, 10, 10});
  expect_tensor(ceil[1], kI64, {1, 2, 3, 3},
                {25, 3, 3, 25, 36, 14, 36, 36, 39, 25, 47, 28, 25, 36, 58, 36, 36, 58});
  auto ceil_unpadded = run(max_pool3d(volume(), {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}, true));
  expect_tensor(ceil_unpadded[0], kF32, {1, 2, 2, 3}, {10, 10, 8, 10, 9, 10, 7, 10, 2, 9, 10, 6});
  expect_tensor(ceil_unpadded[1], kI64, {1, 2, 2, 3},
                {25, 3, 9, 36, 17, 14, 45, 47, 49, 50, 58, 59});
  auto nc = run(max_pool3d(volume_view(), {2, 2, 2}));
  expect_tensor(nc[0], kF32, {1, 1, 2, 2}, {10, 10, 10, 9});
  expect_tensor(nc[1], kI64, {1, 1, 2, 2}, {25, 3, 36, 17});
}

TEST(Pooling3dTest, MaxPool3dDtypesNaNAndEmpty) {
  for (DType d : {kF16, kBF16, kF64, kI64, kI32, kU8}) {
    auto out = run(max_pool3d(volume(d), {2, 2, 2}, {1, 2, 2}, {1, 1, 1}));
    expect_tensor(out[0], d, {1, 4, 3, 3},
                  {0, 7, 10, 4,  9,  10, 6, 9,  5,  8, 7, 10, 10, 9,  10, 6, 10, 9,
                   8, 8, 7,  10, 10, 9,  3, 10, 10, 5, 8, 4,  9,  10, 8,  0, 7,  10});
    expect_tensor(out[1], kI64, {1, 4, 3, 3},
                  {0,  1,  3,  10, 6,  14, 15, 17, 18, 20, 1,  3,  25, 6,  14, 15, 36, 39,
                   20, 42, 23, 25, 47, 28, 35, 36, 58, 40, 42, 43, 50, 47, 53, 55, 56, 58});
  }
  // Negative integers: the running max starts at the type's lowest value; a window is never all
  // padding, so each index is in bounds.
  auto negative =
      run(max_pool3d(arange_tensor(kI8, {1, 2, 2, 2}, -1, -1), {2, 2, 2}, {1, 1, 1}, {1, 1, 1}));
  const std::vector<double> corner_indices = {0, 0, 1, 0, 0, 1, 2, 2, 3, 0, 0, 1, 0, 0,
                                              1, 2, 2, 3, 4, 4, 5, 4, 4, 5, 6, 6, 7};
  expect_tensor(negative[0], kI8, {1, 3, 3, 3},
                {-1, -1, -2, -1, -1, -2, -3, -3, -4, -1, -1, -2, -1, -1,
                 -2, -3, -3, -4, -5, -5, -6, -5, -5, -6, -7, -7, -8});
  expect_tensor(negative[1], kI64, {1, 3, 3, 3}, corner_indices);
  // The last nan in the window wins; all -inf keeps the window's first in-bounds element.
  auto nan =
      run(max_pool3d(make_tensor(kF32, {1, 2, 2, 2}, {1, kNaN, 3, 4, 5, kNaN, 7, 8}), {2, 2, 2}));
  expect_tensor(nan[0], kF32, {1, 1, 1, 1}, {kNaN});
  expect_tensor(nan[1], kI64, {1, 1, 1, 1}, {5});
  auto inf =
      run(max_pool3d(make_tensor(kF32, {1, 2, 2, 2}, {-kInf}), {2, 2, 2}, {1, 1, 1}, {1, 1, 1}));
  expect_tensor(inf[1], kI64, {1, 3, 3, 3}, corner_indices);
  auto empty = run(max_pool3d(make_tensor(kF32, {0, 1, 2, 2, 2}, {}), {2, 2, 2}));
  expect_tensor(empty[1], kI64, {0, 1, 1, 1, 1}, {});
  expect_error(max_pool3d(volume(kBool), {2, 2, 2}), "does not support dtype bool");
  expect_error(max_pool3d(volume(), {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, {1, 1}),
               "expected dilation to be a single int or 3 ints");
}

TEST(Pooling3dTest, AdaptiveAvgPool3d) {
  expect_tensor(run(adaptive_avg_pool3d(arange_tensor(kF32, {1, 1, 3, 4, 5}), {2, 3, 2})), kF32,
                {1, 1, 2, 3, 2},
                {13.5, 15.5, 18.5, 20.5, 23.5, 25.5, 33.5, 35.5, 38.5, 40.5, 43.5, 45.5});
  expect_tensor(run(adaptive_avg_pool3d(arange_tensor(kF32, {1, 2, 2, 2}), {3, 3, 2})), kF32,
                {1, 3, 3, 2}, {0, 1, 1, 2, 2, 3, 2, 3, 3, 4, 4, 5, 4, 5, 5, 6, 6, 7});
  const std::vector<double> pooled = {5.75, 5.25, 6.125, 4.25,  4.6666665, 4.625,
                                      5.5,  5,    4.5,   5.375, 5.3333335, 5.75};
  expect_tensor(run(adaptive_avg_pool3d(volume(), {2, 2, 3})), kF32, {1, 2, 2, 3}, pooled);
  expect_tensor(run(adaptive_avg_pool3d(volume_view(), {2, 2, 3})), kF32, {1, 2, 2, 3}, pooled);
  expect_tensor(run(adaptive_avg_pool3d(arange_tensor(kBF16, {2, 1, 2, 2, 2}), {1, 1, 1})), kBF16,
                {2, 1, 1, 1, 1}, {3.5, 11.5}, 1e-2);
  expect_tensor(run(adaptive_avg_pool3d(volume(), {0, 1, 1})), kF32, {1, 0, 1, 1}, {});
  expect_tensor(run(adaptive_avg_pool3d(make_tensor(kF32, {0, 1, 2, 2, 2}, {}), {1, 1, 1})), kF32,
                {0, 1, 1, 1, 1}, {});
  // Unbatched, no channels: fine (only dims 1.. must be non-empty), unlike a batched input's.
  expect_tensor(run(adaptive_avg_pool3d(make_tensor(kF32, {0, 2, 2, 2}, {}), {1, 1, 1})), kF32,
                {0, 1, 1, 1}, {});
  expect_error(adaptive_avg_pool3d(make_tensor(kF32, {1, 0, 2, 2, 2}, {}), {1, 1, 1}),
               "with dim 1 empty");
  expect_error(adaptive_avg_pool3d(volume(), {1, 1}), "expected output_size to have 3 elements");
  expect_error(adaptive_avg_pool3d(volume(kI64), {1, 1, 1}), "expected a floating point input");
}

TEST(PoolingBackwardTest, AvgPool2dBackward) {
  const Tensor grad = arange_tensor(kF32, {1, 1, 2, 3}, 1);
  expect_tensor(run(avg_pool2d_backward(grad, image(), {3, 3}, {2, 2}, {1, 1}, false, true)), kF32,
                {1, 1, 4, 5},
                {0.11111111, 0.33333334, 0.22222222, 0.55555558, 0.33333334, 0.55555558, 1.3333334,
                 0.77777779, 1.7777779,  1,          0.44444445, 1,          0.55555558, 1.2222223,
                 0.66666669, 0.44444445, 1,          0.55555558, 1.2222223,  0.66666669});
  expect_tensor(run(avg_pool2d_backward(grad, image(), {3, 3}, {2, 2}, {1, 1}, false, false)), kF32,
                {1, 1, 4, 5},
                {0.25,       0.58333337, 0.33333334, 1.0833334,  0.75,      0.91666669, 1.8055556,
                 0.88888896, 2.6388888,  1.75,       0.66666669, 1.2222223, 0.55555558, 1.5555556,
                 1,          0.66666669, 1.2222223,  0.55555558, 1.5555556, 1});
  expect_tensor(run(avg_pool2d_backward(grad, image(), {3, 3}, {2, 2}, {1, 1}, false, true, 4)),
                kF32, {1, 1, 4, 5}, {0.25, 0.75, 0.5,  1.25, 0.75, 1.25, 3,    1.75, 4,    2.25,
                                     1,    2.25, 1.25, 2.75, 1.5,  1,    2.25, 1.25, 2.75, 1.5});
  // ceil_mode adds a third window row starting in the input's last row (padded count 2x2 with
  // count_include_pad, 1x2 without).
  const Tensor grad3 = arange_tensor(kF32, {1, 1, 3, 3}, 1);
  expect_tensor(run(avg_pool2d_backward(grad3, image(), {2, 2}, {2, 2}, {1, 1}, true, true)), kF32,
                {1, 1, 4, 5}, {0.25, 0.5,  0.5,  0.75, 0.75, 1,    1.25, 1.25, 1.5,  1.5,
                               1,    1.25, 1.25, 1.5,  1.5,  1.75, 2,    2,    2.25, 2.25});
  expect_tensor(run(avg_pool2d_backward(grad3, image(), {2, 2}, {2, 2}, {1, 1}, true, false)), kF32,
                {1, 1, 4, 5}, {1, 1,    1,    1.5, 1.5, 2, 1.25, 1.25, 1.5, 1.5,
                               2, 1.25, 1.25, 1.5, 1.5, 7, 4,    4,    4.5, 4.5});
  // A non-contiguous grad_output [[1, 3, 5], [2, 4, 6]]: a [3, 2] tensor seen transposed.
  const Tensor grad_view = arange_tensor(kF32, {3, 2}, 1).view_as({1, 1, 2, 3}, {6, 6, 1, 2}, 0);
  expect_tensor(
      run(avg_pool2d_backward(grad_view, image(), {3, 3}, {2, 2}, {1, 1}, false, true, 4)), kF32,
      {1, 1, 4, 5}, {0.25, 1,   0.75, 2,   1.25, 0.75, 2.5, 1.75, 4.5, 2.75,
                     0.5,  1.5, 1,    2.5, 1.5,  0.5,  1.5, 1,    2.5, 1.5});
}

TEST(PoolingBackwardTest, AvgPool2dBackwardDtypesAndErrors) {
  // int64: each gradient is divided (truncating) before it is spread.
  const Tensor grad = make_tensor(kI64, {1, 1, 2, 3}, {7, -7, 10, 5, -3, 9});
  expect_tensor(run(avg_pool2d_backward(grad, image(kI64), {3, 3}, {2, 2}, {1, 1}, false, true)),
                kI64, {1, 1, 4, 5}, {0, 0, 0, 1, 1, 0, 0, 0, 2, 2, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1});
  expect_tensor(
      run(avg_pool2d_backward(grad, image(kI64), {3, 3}, {2, 2}, {1, 1}, false, true, -2)), kI64,
      {1, 1, 4, 5}, {-3, 0, 3, -2, -5, -5, -1, 4, -5, -9, -2, -1, 1, -3, -4, -2, -1, 1, -3, -4});
  // bfloat16 sums are rounded after every addition, as PyTorch's: float sums rounded once differ.
  const Tensor grad_bf16 = make_tensor(kBF16, {1, 1, 3, 3},
                                       {1, 0.30078125, 0.69921875, 1.1015625, 2.296875, 0.8984375,
                                        0.10009766, 1.703125, 0.76953125});
  expect_tensor(run(avg_pool2d_backward(grad_bf16, make_tensor(kBF16, {1, 1, 5, 5}, {0}), {3, 3},
                                        {1, 1}, {0, 0}, false, true)),
                kBF16, {1, 1, 5, 5}, {0.11132812,  0.14453125, 0.22265625, 0.11132812, 0.077636719,
                                      0.234375,    0.5234375,  0.703125,   0.46679688, 0.17773438,
                                      0.24511719,  0.7265625,  0.9921875,  0.7421875,  0.26367188,
                                      0.13378906,  0.578125,   0.765625,   0.6328125,  0.18554688,
                                      0.011108398, 0.20019531, 0.28515625, 0.27539062, 0.085449219},
                1e-6);
  const Tensor special = make_tensor(kF32, {1, 1, 2, 3}, {1, kNaN, 3, kInf, 5, 6});
  expect_tensor(run(avg_pool2d_backward(special, image(), {3, 3}, {2, 2}, {1, 1}, false, true)),
                kF32, {1, 1, 4, 5},
                {0.11111111, kNaN, kNaN, kNaN,       0.33333334, kInf,       kNaN,
                 kNaN,       kNaN, 1,    kInf,       kInf,       0.55555558, 1.2222223,
                 0.66666669, kInf, kInf, 0.55555558, 1.2222223,  0.66666669});
  expect_tensor(run(avg_pool2d_backward(make_tensor(kF32, {0, 1, 2, 2}, {}),
                                        make_tensor(kF32, {0, 1, 4, 4}, {}), {2, 2}, {}, {0, 0},
                                        false, true)),
                kF32, {0, 1, 4, 4}, {});
  expect_tensor(
      run(avg_pool2d_backward(make_tensor(kF32, {1, 2, 2}, {4}), make_tensor(kF32, {1, 4, 4}, {0}),
                              {2, 2}, {}, {0, 0}, false, true)),
      kF32, {1, 4, 4}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  expect_error(avg_pool2d_backward(make_tensor(kF32, {1, 1, 3, 2}, {1}), image(), {3, 3}, {2, 2},
                                   {1, 1}, false, true),
               "expected grad_output of shape [1, 1, 2, 3], found [1, 1, 3, 2]");
  expect_error(avg_pool2d_backward(make_tensor(kF64, {1, 1, 2, 3}, {1}), image(), {3, 3}, {2, 2},
                                   {1, 1}, false, true),
               "expected grad_output of dtype float32, found float64");
  expect_error(avg_pool2d_backward(make_tensor(kI32, {1, 1, 2, 3}, {1}), image(kI32), {3, 3},
                                   {2, 2}, {1, 1}, false, true),
               "avg pooling backward does not support dtype int32");
  expect_error(avg_pool2d_backward(make_tensor(kF32, {1, 1, 2, 3}, {1}), image(), {3, 3}, {2, 2},
                                   {1, 1}, false, true, 0),
               "divisor_override to be non-zero");
  expect_error(
      avg_pool2d_backward(make_tensor(kF32, {1, 0, 2, 2}, {}), make_tensor(kF32, {1, 0, 4, 4}, {}),
                          {2, 2}, {}, {0, 0}, false, true),
      "with dim 1 empty");
}

TEST(PoolingBackwardTest, AdaptiveAvgPool2dBackward) {
  expect_tensor(run(adaptive_avg_pool2d_backward(arange_tensor(kF32, {1, 1, 3, 2}, 1), image())),
                kF32, {1, 1, 4, 5},
                {0.16666667, 0.16666667, 0.5,        0.33333334, 0.33333334, 0.66666669, 0.66666669,
                 1.6666667,  1,          1,          1.3333333,  1.3333333,  3,          1.6666667,
                 1.6666667,  0.83333331, 0.83333331, 1.8333333,  1,          1});
  // grad_output larger than self (the forward upsampled): overlapping 1-element windows.
  expect_tensor(run(adaptive_avg_pool2d_backward(arange_tensor(kF32, {1, 3, 3}, 1),
                                                 make_tensor(kF32, {1, 2, 2}, {0}))),
                kF32, {1, 2, 2}, {5.25, 8.25, 14.25, 17.25});
  // 16-bit floats divide by the window height, round, divide by the width, round, and round each
  // addition, as PyTorch's kernel.
  expect_tensor(
      run(adaptive_avg_pool2d_backward(
          make_tensor(kF16, {1, 3, 2},
                      {1, 0.30004883, 0.70019531, 1.0996094, 2.3007812, 0.89990234}),
          make_tensor(kF16, {1, 7, 5}, {0}))),
      kF16, {1, 7, 5},
      {0.11108398, 0.11108398,  0.14440918,  0.033355713, 0.033355713, 0.11108398, 0.11108398,
       0.14440918, 0.033355713, 0.033355713, 0.18896484,  0.18896484,  0.34423828, 0.15551758,
       0.15551758, 0.077819824, 0.077819824, 0.19995117,  0.12213135,  0.12213135, 0.33349609,
       0.33349609, 0.55566406,  0.22216797,  0.22216797,  0.25561523,  0.25561523, 0.35571289,
       0.10003662, 0.10003662,  0.25561523,  0.25561523,  0.35571289,  0.10003662, 0.10003662},
      1e-6);
  expect_tensor(
      run(adaptive_avg_pool2d_backward(
          make_tensor(kBF16, {1, 3, 2},
                      {1, 0.30078125, 0.69921875, 1.1015625, 2.296875, 0.8984375}),
          make_tensor(kBF16, {1, 7, 5}, {0}))),
      kBF16, {1, 7, 5},
      {0.11132812,  0.11132812,  0.14453125,  0.033447266, 0.033447266, 0.11132812,  0.11132812,
       0.14453125,  0.033447266, 0.033447266, 0.18945312,  0.18945312,  0.34570312,  0.15625,
       0.15625,     0.077636719, 0.077636719, 0.20019531,  0.12255859,  0.12255859,  0.33398438,
       0.33398438,  0.5546875,   0.22265625,  0.22265625,  0.25585938,  0.25585938,  0.35546875,
       0.099609375, 0.099609375, 0.25585938,  0.25585938,  0.35546875,  0.099609375, 0.099609375},
      1e-6);
  expect_tensor(run(adaptive_avg_pool2d_backward(make_tensor(kF32, {0, 1, 2, 2}, {}),
                                                 make_tensor(kF32, {0, 1, 4, 4}, {}))),
                kF32, {0, 1, 4, 4}, {});
  // Unbatched without channels: only grad_output's dims 1.. must be non-empty.
  expect_tensor(run(adaptive_avg_pool2d_backward(make_tensor(kF32, {0, 2, 2}, {}),
                                                 make_tensor(kF32, {0, 4, 4}, {}))),
                kF32, {0, 4, 4}, {});
  expect_error(adaptive_avg_pool2d_backward(make_tensor(kF32, {1, 0, 2, 2}, {}),
                                            make_tensor(kF32, {1, 0, 4, 4}, {})),
               "with dim 1 empty");
  // PyTorch reads out of bounds here; kiln refuses.
  expect_error(adaptive_avg_pool2d_backward(make_tensor(kF32, {1, 2, 2, 2}, {1}), image()),
               "expected grad_output of shape [1, 1] + [H, W], found [1, 2, 2, 2]");
  expect_error(adaptive_avg_pool2d_backward(make_tensor(kF32, {1, 2, 2}, {1}), image()),
               "expected grad_output of shape [1, 1] + [H, W], found [1, 2, 2]");
  expect_error(adaptive_avg_pool2d_backward(make_tensor(kF32, {1, 2, 2}, {1}),
                                            make_tensor(kF32, {1, 0, 4}, {})),
               "with dim 1 empty");
  expect_error(adaptive_avg_pool2d_backward(make_tensor(kF64, {1, 1, 2, 2}, {1}), image()),
               "expected grad_output of dtype float32, found float64");
  expect_error(adaptive_avg_pool2d_backward(make_tensor(kI64, {1, 1, 2, 2}, {1}), image(kI64)),
               "expected a floating point input, found int64");
}

TEST(PoolingBackwardTest, MaxPool2dWithIndicesBackward) {
  // The indices max_pool2d_with_indices(image, 3, 1, 1) gives: several outputs share an input.
  const Tensor indices = make_tensor(
      kI64, {1, 1, 4, 5}, {5, 5, 7, 7, 4, 5, 5, 12, 12, 14, 5, 5, 12, 12, 14, 11, 12, 12, 12, 14});
  expect_tensor(run(max_pool2d_backward(arange_tensor(kF32, {1, 1, 4, 5}, 1), image(), {3, 3},
                                        {1, 1}, {1, 1}, indices)),
                kF32, {1, 1, 4, 5},
                {0, 0, 0, 0, 5, 39, 0, 7, 0, 0, 0, 16, 98, 0, 45, 0, 0, 0, 0, 0});
  // bfloat16 sums are rounded after every addition: 256 + 1 + 1 + 1 stays 256 (260 in float).
  expect_tensor(run(max_pool2d_backward(make_tensor(kBF16, {1, 1, 2, 2}, {256, 1, 1, 1}),
                                        make_tensor(kBF16, {1, 1, 2, 2}, {0}), {1, 1}, {1, 1},
                                        {0, 0}, make_tensor(kI64, {1, 1, 2, 2}, {0}))),
                kBF16, {1, 1, 2, 2}, {256, 0, 0, 0}, 0);
  expect_tensor(run(max_pool2d_backward(make_tensor(kF32, {1, 2, 2}, {kNaN, 1, kInf, 2}),
                                        make_tensor(kF32, {1, 2, 2}, {0}), {1, 1}, {1, 1}, {0, 0},
                                        make_tensor(kI64, {1, 2, 2}, {3, 3, 0, 0}))),
                kF32, {1, 2, 2}, {kInf, 0, 0, kNaN});
  expect_tensor(run(max_pool2d_backward(make_tensor(kF32, {0, 1, 2, 2}, {}),
                                        make_tensor(kF32, {0, 1, 4, 4}, {}), {2, 2}, {}, {0, 0},
                                        make_tensor(kI64, {0, 1, 2, 2}, {}))),
                kF32, {0, 1, 4, 4}, {});
  // PyTorch writes out of bounds for an index outside the plane; kiln refuses.
  expect_error(max_pool2d_backward(make_tensor(kF32, {1, 1, 2, 2}, {1}), image(), {2, 2}, {},
                                   {0, 0}, make_tensor(kI64, {1, 1, 2, 2}, {0, 1, 20, 3})),
               "expected indices in [0, 20), found 20 at flat position 2");
  expect_error(max_pool2d_backward(make_tensor(kF32, {1, 1, 2, 2}, {1}), image(), {2, 2}, {},
                                   {0, 0}, make_tensor(kI32, {1, 1, 2, 2}, {0})),
               "expected int64 indices, found int32");
  expect_error(max_pool2d_backward(make_tensor(kF32, {1, 1, 2, 2}, {1}), image(), {2, 2}, {},
                                   {0, 0}, make_tensor(kI64, {1, 1, 3, 2}, {0})),
               "expected indices of shape [1, 1, 2, 2], found [1, 1, 3, 2]");
  expect_error(max_pool2d_backward(make_tensor(kF32, {1, 1, 3, 2}, {1}), image(), {2, 2}, {},
                                   {0, 0}, make_tensor(kI64, {1, 1, 2, 2}, {0})),
               "expected grad_output of shape [1, 1, 2, 2], found [1, 1, 3, 2]");
  expect_error(max_pool2d_backward(make_tensor(kI64, {1, 1, 2, 2}, {1}), image(kI64), {2, 2}, {},
                                   {0, 0}, make_tensor(kI64, {1, 1, 2, 2}, {0})),
               "max pooling backward does not support dtype int64");
}

}  // namespace
}  // namespace kiln::testing
