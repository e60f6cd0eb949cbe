// _embedding_bag (inference + CPU kernel) against PyTorch 2.11 eager on the CPU: all four outputs
// (output, offset2bag, bag_size, max_indices), values computed with torch and hard-coded here.
#include <gtest/gtest.h>

#include "support/kernel_expect.h"
#include "support/kernel_values.h"

namespace kiln::testing {
namespace {

// w = [[0.5, -1], [2, 3], [-4, 0.25], [1.5, -2.5], [6, -7], [0.75, 8]].
Tensor weight(DType dtype = kF32) {
  return make_tensor(dtype, {6, 2}, {0.5, -1, 2, 3, -4, 0.25, 1.5, -2.5, 6, -7, 0.75, 8});
}
// indices [1, 2, 4, 5, 4, 3, 2, 0] and offsets [0, 3, 3, 6]: bags {1, 2, 4}, {}, {5, 4, 3} and
// {2, 0} (with include_last_offset, 3 bags whose last stops short of the last two indices).
Tensor indices(DType dtype = kI64) {
  return make_tensor(dtype, {8}, {1, 2, 4, 5, 4, 3, 2, 0});
}
Tensor offsets(DType dtype = kI64) {
  return make_tensor(dtype, {4}, {0, 3, 3, 6});
}

struct Bag {
  int64_t mode = 0;
  bool include_last_offset = false;
  int64_t padding_idx = -1;
  bool per_sample_weights = false;
};

OpCall embedding_bag(Tensor w, Tensor idx, Tensor off, Bag b) {
  OpCall call{.target = "aten._embedding_bag.default",
              .inputs = {w, idx, off, make_tensor(w.dtype(), {8}, {1, 2, 3, 4, 5, 6, 7, 8})},
              .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}, false, b.mode, false}};
  call.args.push_back(b.per_sample_weights ? TestArg{TensorArg{3}} : TestArg{ir::NoneArg{}});
  call.args.push_back(b.include_last_offset);
  call.args.push_back(b.padding_idx);
  return call;
}

void expect_bags(const std::vector<Tensor>& out, DType dtype, const Shape& shape,
                 const std::vector<double>& values, const std::vector<double>& offset2bag,
                 const std::vector<double>& bag_size, const Shape& max_shape,
                 const std::vector<double>& max_indices, DType index_dtype = kI64) {
  ASSERT_EQ(out.size(), 4u);
  expect_tensor(out[0], dtype, shape, values);
  expect_tensor(out[1], index_dtype, {static_cast<int64_t>(offset2bag.size())}, offset2bag, 0);
  expect_tensor(out[2], index_dtype, {static_cast<int64_t>(bag_size.size())}, bag_size, 0);
  expect_tensor(out[3], index_dtype, max_shape, max_indices, 0);
}

TEST(EmbeddingBag, SumOnTheFastPathReturnsNoOffset2bag) {
  expect_bags(run(embedding_bag(weight(), indices(), offsets(), {})), kF32, {4, 2},
              {4.0, -3.75, 0.0, 0.0, 8.25, -1.5, -3.5, -0.75}, {}, {0, 0, 0, 0}, {4},
              {0, 0, 0, 0});
}

TEST(EmbeddingBag, MeanSkipsPaddingAndCountsIt) {
  expect_bags(run(embedding_bag(weight(), indices(), offsets(), {.mode = 1, .padding_idx = 2})),
              kF32, {4, 2}, {4.0, -2.0, 0.0, 0.0, 2.75, -0.5, 0.5, -1.0},
              {0, 0, 0, 2, 2, 2, 3, 3}, {2, 0, 3, 1}, {4}, {2, 0, 3, 1});
}

TEST(EmbeddingBag, MaxTakesTheFirstMaximumAndKeepsALeadingNaN) {
  Tensor w = make_tensor(kF32, {6, 2}, {0.5, -1, 2, 3, kNaN, 0.25, 1.5, -2.5, 6, -7, 0.75, kNaN});
  expect_bags(run(embedding_bag(w, indices(), offsets(), {.mode = 2})), kF32, {4, 2},
              {6.0, 3.0, 0.0, 0.0, 6.0, kNaN, kNaN, 0.25}, {0, 0, 0, 2, 2, 2, 3, 3},
              {3, 0, 3, 2}, {4, 2}, {4, 1, 0, 0, 4, 5, 2, 2});
}

TEST(EmbeddingBag, IndicesPastTheLastOffsetFollowEagersTwoPaths) {
  // Fast path: the last bag ends at offsets[-1]; with padding_idx the indices after it join it.
  expect_bags(run(embedding_bag(weight(), indices(), offsets(),
                                {.include_last_offset = true, .per_sample_weights = true})),
              kF32, {3, 2}, {12.0, -17.5, 0.0, 0.0, 42.0, -18.0}, {}, {0, 0, 0}, {3}, {0, 0, 0});
  expect_bags(run(embedding_bag(weight(), indices(), offsets(),
                                {.include_last_offset = true, .padding_idx = 0,
                                 .per_sample_weights = true})),
              kF32, {3, 2}, {12.0, -17.5, 0.0, 0.0, 14.0, -16.25}, {0, 0, 0, 2, 2, 2, 2, 2},
              {0, 0, 0}, {3}, {0, 0, 0});
  // A mean sums to offsets[-1] but divides by the count to the end.
  expect_bags(run(embedding_bag(weight(), indices(), offsets(),
                                {.mode = 1, .include_last_offset = true})),
              kF32, {3, 2}, {1.3333333730697632, -1.25, 0.0, 0.0, 1.65, -0.3},
              {0, 0, 0, 2, 2, 2, 2, 2}, {3, 0, 5}, {3}, {3, 0, 5});
  expect_bags(run(embedding_bag(weight(), indices(), offsets(),
                                {.mode = 2, .include_last_offset = true, .padding_idx = 2})),
              kF32, {3, 2}, {6.0, 3.0, 0.0, 0.0, 6.0, 8.0}, {0, 0, 0, 2, 2, 2, 2, 2}, {2, 0, 4},
              {3, 2}, {4, 1, 0, 0, 4, 5});
}

TEST(EmbeddingBag, Int32IndicesAndOffsetsGiveInt32Outputs) {
  expect_bags(run(embedding_bag(weight(), indices(kI32), offsets(kI32), {.mode = 1})), kF32,
              {4, 2}, {1.3333333730697632, -1.25, 0.0, 0.0, 2.75, -0.5, -1.75, -0.375},
              {0, 0, 0, 2, 2, 2, 3, 3}, {3, 0, 3, 2}, {4}, {3, 0, 3, 2}, kI32);
}

TEST(EmbeddingBag, HalfAccumulatesInFloat) {
  // The mean 4 / 3 rounded once to half: 1.3330078125.
  expect_bags(run(embedding_bag(weight(kF16), indices(), offsets(), {.mode = 1})), kF16, {4, 2},
              {1.3330078125, -1.25, 0.0, 0.0, 2.75, -0.5, -1.75, -0.375},
              {0, 0, 0, 2, 2, 2, 3, 3}, {3, 0, 3, 2}, {4}, {3, 0, 3, 2});
}

TEST(EmbeddingBag, StridedWeightTakesTheGeneralPath) {
  // weight.t().contiguous().t(): rows with stride 1 apart, so eager sums by offset2bag.
  Tensor w = transposed(make_tensor(kF32, {2, 6}, {0.5, 2, -4, 1.5, 6, 0.75, -1, 3, 0.25, -2.5,
                                                   -7, 8}));
  expect_bags(run(embedding_bag(w, indices(), offsets(), {})), kF32, {4, 2},
              {4.0, -3.75, 0.0, 0.0, 8.25, -1.5, -3.5, -0.75}, {0, 0, 0, 2, 2, 2, 3, 3},
              {0, 0, 0, 0}, {4}, {0, 0, 0, 0});
}

TEST(EmbeddingBag, Errors) {
  expect_error(embedding_bag(weight(), make_tensor(kI64, {8}, {1, 2, 4, 5, 4, 3, 2, 6}),
                             offsets(), {}),
               "not in the valid range [0, 6)");
  expect_error(embedding_bag(weight(), indices(), make_tensor(kI64, {2}, {1, 3}), {}),
               "offsets[0] has to be 0");
  expect_error(embedding_bag(weight(), indices(), make_tensor(kI64, {2}, {0, 9}), {}),
               "can not be greater than input's length 8");
  expect_error(embedding_bag(weight(), indices(), offsets(), {.mode = 1,
                                                              .per_sample_weights = true}),
               "only supported with mode sum");
  // Eager's kernel and its meta function disagree on a bfloat16 sum's offset2bag: declined.
  expect_error(embedding_bag(weight(kBF16), indices(), offsets(), {}), "bfloat16 sum",
               StatusCode::kUnsupported);
}

}  // namespace
}  // namespace kiln::testing
