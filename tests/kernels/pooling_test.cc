// Conformance cases for the pooling ops. Expected values were computed with PyTorch 2.11 eager and
// hard-coded.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/kernel_expect.h"
#include "support/kernel_values.h"

namespace kiln::testing {
namespace {

using Ints = std::vector<int64_t>;

// A [1, 1, 4, 5] image.
const std::vector<double> kImage = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4};
Tensor image(DType dtype = DType::kFloat32, Shape shape = {1, 1, 4, 5}) {
  return make_tensor(dtype, std::move(shape), kImage);
}

// max_pool2d_with_indices(self, kernel_size, stride, padding, dilation, ceil_mode)
OpCall max_pool(Tensor x, Ints kernel, Ints stride = {}, Ints padding = {0}, Ints dilation = {1},
                bool ceil_mode = false) {
  return {.target = "aten.max_pool2d_with_indices.default",
          .inputs = {std::move(x)},
          .args = {TensorArg{0}, kernel, stride, padding, dilation, ceil_mode}};
}

// avg_pool2d(self, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
OpCall avg_pool(Tensor x, Ints kernel, Ints stride = {}, Ints padding = {0}, bool ceil_mode = false,
                bool count_include_pad = true) {
  return {.target = "aten.avg_pool2d.default",
          .inputs = {std::move(x)},
          .args = {TensorArg{0}, kernel, stride, padding, ceil_mode, count_include_pad}};
}

TEST(PoolingTest, MaxPool2dWindows) {
  auto k2 = run(max_pool(image(), {2, 2}));
  expect_tensor(k2[0], DType::kFloat32, {1, 1, 2, 2}, {9, 6, 8, 9});
  expect_tensor(k2[1], DType::kInt64, {1, 1, 2, 2}, {5, 7, 11, 12});
  auto padded = run(max_pool(image(), {3, 2}, {1, 2}, {1, 1}));
  expect_tensor(padded[0], DType::kFloat32, {1, 1, 4, 3}, {9, 6, 5, 9, 9, 9, 9, 9, 9, 5, 9, 9});
  expect_tensor(padded[1], DType::kInt64, {1, 1, 4, 3},
                {5, 7, 4, 5, 12, 14, 5, 12, 14, 10, 12, 14});
  auto dilated = run(max_pool(image(), {2, 2}, {2, 2}, {0, 0}, {2, 2}));
  expect_tensor(dilated[0], DType::kFloat32, {1, 1, 1, 2}, {9, 9});
  expect_tensor(dilated[1], DType::kInt64, {1, 1, 1, 2}, {12, 12});
  // Single-int lists apply to both dims.
  auto single = run(max_pool(image(), {2}, {2}, {0}, {1}));
  expect_tensor(single[0], DType::kFloat32, {1, 1, 2, 2}, {9, 6, 8, 9});
}

TEST(PoolingTest, MaxPool2dCeilMode) {
  auto ceil = run(max_pool(image(), {2, 2}, {2, 2}, {0, 0}, {1, 1}, true));
  expect_tensor(ceil[0], DType::kFloat32, {1, 1, 2, 3}, {9, 6, 5, 8, 9, 9});
  expect_tensor(ceil[1], DType::kInt64, {1, 1, 2, 3}, {5, 7, 4, 11, 12, 14});
  auto padded = run(max_pool(image(), {3, 3}, {2, 2}, {1, 1}, {1, 1}, true));
  expect_tensor(padded[0], DType::kFloat32, {1, 1, 3, 3}, {9, 6, 5, 9, 9, 9, 3, 8, 8});
  expect_tensor(padded[1], DType::kInt64, {1, 1, 3, 3}, {5, 7, 4, 5, 12, 14, 15, 18, 18});
  // 6x6, k2 s2 p1: ceil gives 4 (the last window starts at 6 = in + pad - 1... inside the padding).
  auto six = run(
      max_pool(arange_tensor(DType::kFloat32, {1, 6, 6}), {2, 2}, {2, 2}, {1, 1}, {1, 1}, true));
  EXPECT_EQ(shape_to_string(six[0].sizes()), "[1, 4, 4]");
  // 5x5, k2 s2 p0: a 3rd window would start at 4 < 5: kept.
  auto five = run(
      max_pool(arange_tensor(DType::kFloat32, {1, 5, 5}), {2, 2}, {2, 2}, {0, 0}, {1, 1}, true));
  expect_tensor(five[0], DType::kFloat32, {1, 3, 3}, {6, 8, 9, 16, 18, 19, 21, 23, 24});
}

TEST(PoolingTest, MaxPool2dDtypesUnbatchedAndNonContiguous) {
  for (DType d : {DType::kFloat16, DType::kBFloat16, DType::kInt64, DType::kInt32, DType::kUInt8,
                  DType::kFloat64}) {
    auto out = run(max_pool(image(d, {1, 4, 5}), {2, 2}));
    expect_tensor(out[0], d, {1, 2, 2}, {9, 6, 8, 9});
    expect_tensor(out[1], DType::kInt64, {1, 2, 2}, {5, 7, 11, 12});
  }
  // Negative integers: the running max starts at the type's lowest value, not 0.
  auto negative =
      run(max_pool(arange_tensor(DType::kInt8, {1, 2, 2}, -1, -1), {2, 2}, {1, 1}, {1, 1}));
  expect_tensor(negative[0], DType::kInt8, {1, 3, 3}, {-1, -1, -2, -1, -1, -2, -3, -3, -4});
  // A [1, 4, 5] view of a [5, 4] tensor's transpose: same values, non-contiguous.
  std::vector<double> transposed_storage(20);
  for (int64_t h = 0; h < 4; ++h) {
    for (int64_t w = 0; w < 5; ++w) transposed_storage[w * 4 + h] = kImage[h * 5 + w];
  }
  const Tensor storage = make_tensor(DType::kFloat32, {5, 4}, transposed_storage);
  const Tensor view = storage.view_as({1, 4, 5}, {20, 1, 4}, 0);
  auto nc = run(max_pool(view, {2, 2}));
  expect_tensor(nc[0], DType::kFloat32, {1, 2, 2}, {9, 6, 8, 9});
  expect_tensor(nc[1], DType::kInt64, {1, 2, 2}, {5, 7, 11, 12});
  auto plain = run({.target = "aten.max_pool2d.default",
                    .inputs = {image()},
                    .args = {TensorArg{0}, Ints{2, 2}}});
  expect_tensor(plain[0], DType::kFloat32, {1, 1, 2, 2}, {9, 6, 8, 9});
}

TEST(PoolingTest, MaxPool2dNaNInfAndEmptyBatch) {
  // The last nan in the window wins.
  auto nan = run(max_pool(make_tensor(DType::kFloat32, {1, 2, 2}, {1, kNaN, kNaN, 2}), {2, 2}));
  expect_tensor(nan[0], DType::kFloat32, {1, 1, 1}, {kNaN});
  expect_tensor(nan[1], DType::kInt64, {1, 1, 1}, {2});
  // All -inf: the index stays at the window's first in-bounds element.
  auto inf =
      run(max_pool(make_tensor(DType::kFloat32, {1, 2, 2}, {-kInf}), {2, 2}, {1, 1}, {1, 1}));
  expect_tensor(inf[1], DType::kInt64, {1, 3, 3}, {0, 0, 1, 0, 0, 1, 2, 2, 3});
  auto empty = run(max_pool(make_tensor(DType::kFloat32, {0, 1, 4, 4}, {}), {2, 2}));
  expect_tensor(empty[0], DType::kFloat32, {0, 1, 2, 2}, {});
}

TEST(PoolingTest, MaxPool2dErrors) {
  expect_error(max_pool(image(), {2, 2, 2}), "expected kernel_size to be a single int or 2 ints");
  expect_error(max_pool(image(), {0, 2}), "expected kernel_size > 0, found 0");
  expect_error(max_pool(image(), {2, 2}, {0, 1}), "expected stride > 0, found 0");
  expect_error(max_pool(image(), {2, 2}, {1, 1}, {0, 0}, {0, 1}), "expected dilation > 0");
  expect_error(max_pool(image(), {2, 2}, {1, 1}, {2, 0}),
               "at most half of kernel_size, found padding=2 with kernel_size=2");
  expect_error(max_pool(image(), {3, 3}, {1, 1}, {2, 2}, {2, 2}), "at most half of kernel_size");
  expect_error(max_pool(image(), {2, 2}, {1, 1}, {-1, 0}), "expected padding >= 0");
  expect_error(max_pool(image(), {5, 5}), "the output is too small");
  expect_error(max_pool(image(DType::kFloat32, {4, 5}), {2, 2}),
               "expected a 3-D (unbatched) or 4-D (batched) input, found shape [4, 5]");
  expect_error(max_pool(make_tensor(DType::kFloat32, {1, 0, 4, 4}, {}), {2, 2}),
               "with dim 1 empty");
  expect_error(max_pool(image(DType::kBool), {2, 2}), "does not support dtype bool");
}

TEST(PoolingTest, AvgPool2d) {
  auto k2 = run(avg_pool(image(), {2, 2}));
  expect_tensor(k2[0], DType::kFloat32, {1, 1, 2, 2}, {3.75, 4, 4.5, 6.75});
  auto padded = run(avg_pool(image(), {3, 3}, {2, 2}, {1, 1}));
  expect_tensor(padded[0], DType::kFloat32, {1, 1, 2, 3},
                {1.6666666, 2.1111112, 1.5555556, 3.2222223, 5.5555553, 4.0});
  auto no_pad_count = run(avg_pool(image(), {3, 3}, {2, 2}, {1, 1}, false, false));
  expect_tensor(no_pad_count[0], DType::kFloat32, {1, 1, 2, 3},
                {3.75, 3.1666667, 3.5, 4.8333335, 5.5555553, 6.0});
  for (bool count_include_pad : {true, false}) {
    auto ceil = run(avg_pool(image(), {2, 2}, {2, 2}, {0, 0}, true, count_include_pad));
    expect_tensor(ceil[0], DType::kFloat32, {1, 1, 2, 3}, {3.75, 4, 4, 4.5, 6.75, 6.5});
  }
  auto divisor =
      run({.target = "aten.avg_pool2d.default",
           .inputs = {image()},
           .args = {TensorArg{0}, Ints{2, 2}, Ints{2, 2}, Ints{0, 0}, false, true, int64_t{3}}});
  expect_tensor(divisor[0], DType::kFloat32, {1, 1, 2, 2}, {5, 5.3333333, 6, 9});
}

TEST(PoolingTest, AvgPool2dDtypesAndErrors) {
  // int64 sums divide with truncation.
  auto ints = run(avg_pool(image(DType::kInt64), {3, 3}, {2, 2}, {1, 1}));
  expect_tensor(ints[0], DType::kInt64, {1, 1, 2, 3}, {1, 2, 1, 3, 5, 4});
  for (DType d : {DType::kFloat16, DType::kBFloat16}) {
    auto out = run(avg_pool(image(d, {1, 4, 5}), {2, 2}));
    expect_tensor(out[0], d, {1, 2, 2}, {3.75, 4, 4.5, 6.75}, 1e-2);
  }
  auto empty = run(avg_pool(make_tensor(DType::kFloat32, {0, 1, 4, 4}, {}), {2, 2}));
  expect_tensor(empty[0], DType::kFloat32, {0, 1, 2, 2}, {});
  expect_error(avg_pool(image(DType::kInt32), {2, 2}), "avg pooling does not support dtype int32");
  expect_error(
      {.target = "aten.avg_pool2d.default",
       .inputs = {image()},
       .args = {TensorArg{0}, Ints{2, 2}, Ints{2, 2}, Ints{0, 0}, false, true, int64_t{0}}},
      "divisor_override to be non-zero");
  expect_error(avg_pool(image(), {2, 2}, {1, 1}, {2, 2}), "at most half");
}

TEST(PoolingTest, Pool1d) {
  const Tensor line = make_tensor(DType::kFloat32, {1, 7}, {3, 1, 4, 1, 5, 9, 2});
  auto with_indices = run({.target = "aten.max_pool1d_with_indices.default",
                           .inputs = {line},
                           .args = {TensorArg{0}, Ints{3}, Ints{2}, Ints{1}}});
  expect_tensor(with_indices[0], DType::kFloat32, {1, 4}, {3, 4, 9, 9});
  expect_tensor(with_indices[1], DType::kInt64, {1, 4}, {0, 2, 5, 5});
  auto dilated = run({.target = "aten.max_pool1d.default",
                      .inputs = {line},
                      .args = {TensorArg{0}, Ints{2}, Ints{1}, Ints{0}, Ints{3}}});
  expect_tensor(dilated[0], DType::kFloat32, {1, 4}, {3, 5, 9, 2});
  auto avg = run({.target = "aten.avg_pool1d.default",
                  .inputs = {line},
                  .args = {TensorArg{0}, Ints{3}, Ints{2}, Ints{1}}});
  expect_tensor(avg[0], DType::kFloat32, {1, 4}, {1.3333334, 2, 5, 3.6666667});
  auto avg_ceil = run({.target = "aten.avg_pool1d.default",
                       .inputs = {line},
                       .args = {TensorArg{0}, Ints{3}, Ints{2}, Ints{1}, true, false}});
  expect_tensor(avg_ceil[0], DType::kFloat32, {1, 4}, {2, 2, 5, 5.5});
  auto batched = run({.target = "aten.avg_pool1d.default",
                      .inputs = {arange_tensor(DType::kInt64, {1, 1, 5})},
                      .args = {TensorArg{0}, Ints{2}}});
  expect_tensor(batched[0], DType::kInt64, {1, 1, 2}, {0, 2});
  expect_error({.target = "aten.max_pool1d.default",
                .inputs = {make_tensor(DType::kFloat32, {1, 1, 1, 5}, {1})},
                .args = {TensorArg{0}, Ints{2}}},
               "expected a 2-D (unbatched) or 3-D (batched) input");
  expect_error(
      {.target = "aten.max_pool1d.default", .inputs = {line}, .args = {TensorArg{0}, Ints{2, 2}}},
      "expected kernel_size to be a single int");
}

TEST(PoolingTest, AdaptiveAvgPool) {
  for (const char* op : {"aten._adaptive_avg_pool2d.default", "aten.adaptive_avg_pool2d.default"}) {
    auto out = run({.target = op, .inputs = {image()}, .args = {TensorArg{0}, Ints{3, 2}}});
    expect_tensor(out[0], DType::kFloat32, {1, 1, 3, 2}, {4.1666665, 4, 6.5, 6.5, 5, 6.6666665});
  }
  auto upsample = run({.target = "aten._adaptive_avg_pool2d.default",
                       .inputs = {arange_tensor(DType::kFloat32, {1, 2, 2})},
                       .args = {TensorArg{0}, Ints{3, 3}}});
  expect_tensor(upsample[0], DType::kFloat32, {1, 3, 3}, {0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3});
  // Global average pooling of a bfloat16 batch (resnet's head).
  auto global = run({.target = "aten._adaptive_avg_pool2d.default",
                     .inputs = {arange_tensor(DType::kBFloat16, {2, 2, 2, 2})},
                     .args = {TensorArg{0}, Ints{1, 1}}});
  expect_tensor(global[0], DType::kBFloat16, {2, 2, 1, 1}, {1.5, 5.5, 9.5, 13.5}, 1e-2);
  auto zero = run({.target = "aten._adaptive_avg_pool2d.default",
                   .inputs = {image()},
                   .args = {TensorArg{0}, Ints{0, 2}}});
  expect_tensor(zero[0], DType::kFloat32, {1, 1, 0, 2}, {});
  auto no_channels = run({.target = "aten._adaptive_avg_pool2d.default",
                          .inputs = {make_tensor(DType::kFloat32, {1, 0, 5, 5}, {})},
                          .args = {TensorArg{0}, Ints{3, 2}}});
  expect_tensor(no_channels[0], DType::kFloat32, {1, 0, 3, 2}, {});
  auto line = run({.target = "aten.adaptive_avg_pool1d.default",
                   .inputs = {make_tensor(DType::kFloat32, {1, 7}, {3, 1, 4, 1, 5, 9, 2})},
                   .args = {TensorArg{0}, Ints{3}}});
  expect_tensor(line[0], DType::kFloat32, {1, 3}, {2.6666667, 3.3333333, 5.3333335});
  expect_error({.target = "aten._adaptive_avg_pool2d.default",
                .inputs = {make_tensor(DType::kFloat32, {1, 2, 0, 5}, {})},
                .args = {TensorArg{0}, Ints{3, 2}}},
               "with dim 2 empty");
  expect_error({.target = "aten._adaptive_avg_pool2d.default",
                .inputs = {image()},
                .args = {TensorArg{0}, Ints{2}}},
               "expected output_size to have 2 elements, found [2]");
  expect_error({.target = "aten._adaptive_avg_pool2d.default",
                .inputs = {image(DType::kInt64)},
                .args = {TensorArg{0}, Ints{2, 2}}},
               "expected a floating point input, found int64");
  expect_error({.target = "aten._adaptive_avg_pool2d.default",
                .inputs = {image()},
                .args = {TensorArg{0}, Ints{-1, 2}}},
               "expected output_size >= 0");
}

TEST(PoolingTest, AdaptiveMaxPool) {
  auto out = run({.target = "aten.adaptive_max_pool2d.default",
                  .inputs = {image()},
                  .args = {TensorArg{0}, Ints{3, 2}}});
  expect_tensor(out[0], DType::kFloat32, {1, 1, 3, 2}, {9, 6, 9, 9, 9, 9});
  expect_tensor(out[1], DType::kInt64, {1, 1, 3, 2}, {5, 7, 5, 12, 12, 12});
  auto nan = run({.target = "aten.adaptive_max_pool2d.default",
                  .inputs = {make_tensor(DType::kFloat16, {1, 2, 2}, {1, kNaN, kNaN, 2})},
                  .args = {TensorArg{0}, Ints{1, 1}}});
  expect_tensor(nan[0], DType::kFloat16, {1, 1, 1}, {kNaN});
  expect_tensor(nan[1], DType::kInt64, {1, 1, 1}, {2});
  auto line = run({.target = "aten.adaptive_max_pool1d.default",
                   .inputs = {make_tensor(DType::kFloat32, {1, 7}, {3, 1, 4, 1, 5, 9, 2})},
                   .args = {TensorArg{0}, Ints{3}}});
  expect_tensor(line[0], DType::kFloat32, {1, 3}, {4, 5, 9});
  expect_tensor(line[1], DType::kInt64, {1, 3}, {2, 4, 5});
  auto empty_batch = run({.target = "aten.adaptive_max_pool2d.default",
                          .inputs = {make_tensor(DType::kFloat32, {0, 2, 5, 5}, {})},
                          .args = {TensorArg{0}, Ints{2, 2}}});
  expect_tensor(empty_batch[1], DType::kInt64, {0, 2, 2, 2}, {});
  auto unbatched_no_channels = run({.target = "aten.adaptive_max_pool2d.default",
                                    .inputs = {make_tensor(DType::kFloat32, {0, 5, 5}, {})},
                                    .args = {TensorArg{0}, Ints{2, 2}}});
  expect_tensor(unbatched_no_channels[0], DType::kFloat32, {0, 2, 2}, {});
  expect_error({.target = "aten.adaptive_max_pool2d.default",
                .inputs = {make_tensor(DType::kFloat32, {1, 0, 5, 5}, {})},
                .args = {TensorArg{0}, Ints{2, 2}}},
               "with dim 1 empty");
}

}  // namespace
}  // namespace kiln::testing
