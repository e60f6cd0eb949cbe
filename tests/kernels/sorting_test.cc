// Conformance cases for sort and topk. Expected values and indices were computed with PyTorch 2.11
// eager (CPU); indices of equal values are eager's too (its algorithms order ties), so they are
// compared exactly.
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "support/kernel_expect.h"
#include "support/kernel_values.h"

namespace kiln::testing {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr DType kF32 = DType::kFloat32;
constexpr DType kI64 = DType::kInt64;

// [[3, nan, 1, 3, -2], [0, 5, 5, nan, -1]]
Tensor with_nan() {
  return make_tensor(kF32, {2, 5}, {3, kNaN, 1, 3, -2, 0, 5, 5, kNaN, -1});
}

// (7 i) mod m for i < n: many ties, in an order that tells algorithms apart.
Tensor ties(int64_t n, int64_t m, DType dtype = kI64) {
  std::vector<double> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(static_cast<double>((i * 7) % m));
  return make_tensor(dtype, {n}, v);
}

OpCall sort(Tensor self, int64_t dim, bool descending) {
  return {.target = "aten.sort.default", .inputs = {self}, .args = {TensorArg{0}, dim, descending}};
}

OpCall topk(Tensor self, int64_t k, int64_t dim = -1, bool largest = true, bool sorted = true) {
  return {.target = "aten.topk.default",
          .inputs = {self},
          .args = {TensorArg{0}, k, dim, largest, sorted}};
}

void expect_sorted(const std::vector<Tensor>& out, DType dtype, const Shape& shape,
                   const std::vector<double>& values, const std::vector<double>& indices) {
  ASSERT_EQ(out.size(), 2u);
  expect_tensor(out[0], dtype, shape, values, 0.0);
  expect_tensor(out[1], kI64, shape, indices, 0.0);
}

TEST(SortingSort, NanSortsAsLargest) {
  expect_sorted(run(sort(with_nan(), 1, false)), kF32, {2, 5},
                {-2, 1, 3, 3, kNaN, -1, 0, 5, 5, kNaN}, {4, 2, 0, 3, 1, 4, 0, 1, 2, 3});
  expect_sorted(run(sort(with_nan(), -1, true)), kF32, {2, 5},
                {kNaN, 3, 3, 1, -2, kNaN, 5, 5, 0, -1}, {1, 0, 3, 2, 4, 3, 1, 2, 0, 4});
  // Along dim 0 of a transposed (non-contiguous) input.
  expect_sorted(run(sort(transposed(with_nan()), 0, false)), kF32, {5, 2},
                {-2, -1, 1, 0, 3, 5, 3, 5, kNaN, kNaN}, {4, 4, 2, 0, 0, 1, 3, 2, 1, 3});
}

TEST(SortingSort, TiesFollowEagerStableAndUnstable) {
  // Beyond 16 elements eager's unstable sort reorders equal values; stable=True keeps them in
  // input order.
  expect_sorted(run(sort(ties(20, 3), 0, false)), kI64, {20},
                {0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2},
                {18, 3, 15, 6, 12, 9, 0, 10, 19, 16, 13, 7, 4, 1, 11, 8, 14, 5, 17, 2});
  auto descending = run(sort(ties(20, 3), 0, true));
  ASSERT_EQ(descending.size(), 2u);
  expect_tensor(descending[1], kI64, {20},
                {2, 17, 5, 14, 8, 11, 10, 19, 16, 13, 7, 4, 1, 0, 9, 12, 6, 15, 3, 18}, 0.0);
  auto stable = run({.target = "aten.sort.stable",
                     .inputs = {ties(20, 3)},
                     .args = {TensorArg{0}},
                     .kwargs = {{"stable", true}}});
  ASSERT_EQ(stable.size(), 2u);
  expect_tensor(stable[1], kI64, {20},
                {0, 3, 6, 9, 12, 15, 18, 1, 4, 7, 10, 13, 16, 19, 2, 5, 8, 11, 14, 17}, 0.0);
}

TEST(SortingSort, DtypesScalarAndEmpty) {
  expect_sorted(run(sort(make_tensor(DType::kBool, {4}, {1, 0, 1, 0}), 0, false)), DType::kBool,
                {4}, {0, 0, 1, 1}, {1, 3, 0, 2});
  expect_sorted(run(sort(make_tensor(DType::kFloat16, {4}, {1.5, -2, kNaN, 0.25}), 0, true)),
                DType::kFloat16, {4}, {kNaN, 1.5, 0.25, -2}, {2, 0, 3, 1});
  expect_sorted(run(sort(make_tensor(kF32, {}, {4}), -1, false)), kF32, {}, {4}, {0});
  expect_sorted(run(sort(make_tensor(kF32, {0, 3}, {}), 1, false)), kF32, {0, 3}, {}, {});
  expect_error(sort(with_nan(), 2, false), {"dim 2 is out of range"});
}

TEST(SortingTopk, LargestSmallestAndNan) {
  expect_sorted(run(topk(with_nan(), 2, 1)), kF32, {2, 2}, {kNaN, 3, kNaN, 5}, {1, 3, 3, 1});
  expect_sorted(run(topk(with_nan(), 2, 1, false)), kF32, {2, 2}, {-2, 1, -1, 0}, {4, 2, 4, 0});
  expect_sorted(run(topk(transposed(with_nan()), 1, 0)), kF32, {1, 2}, {kNaN, kNaN}, {1, 3});
}

TEST(SortingTopk, TiesFollowEager) {
  // nth_element, then a sort of the first k - 1 (k * 64 > n).
  expect_sorted(run(topk(ties(20, 11), 6)), kI64, {6}, {10, 10, 9, 9, 8, 7}, {14, 3, 6, 17, 9, 12});
  expect_sorted(run(topk(ties(20, 3), 6, 0, true, false)), kI64, {6}, {2, 2, 2, 2, 2, 2},
                {5, 11, 8, 14, 17, 2});
  // partial_sort (k * 64 <= n): ((5 i) mod 4) has 3 at 3, 7, 11, ...
  std::vector<double> p;
  for (int i = 0; i < 130; ++i) p.push_back((i * 5) % 4);
  expect_sorted(run(topk(make_tensor(DType::kInt32, {130}, p), 2)), DType::kInt32, {2}, {3, 3},
                {7, 3});
}

TEST(SortingTopk, ScalarEmptyAndErrors) {
  expect_sorted(run(topk(make_tensor(kF32, {}, {4}), 1)), kF32, {}, {4}, {0});
  expect_sorted(run(topk(with_nan(), 0, 1)), kF32, {2, 0}, {}, {});
  expect_error(topk(with_nan(), 6, 1), {"expected k in [0, 5]", "found 6"});
  expect_error(topk(make_tensor(DType::kBool, {2}, {1, 0}), 1), {"numeric tensor", "bool[2]"});
}

}  // namespace
}  // namespace kiln::testing
