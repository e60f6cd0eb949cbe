// Conformance of the indexing ops (inference + CPU kernels) with PyTorch 2.11 eager. Expected
// values were computed with torch on CPU and are hard-coded here.
#include <gtest/gtest.h>

#include "support/kernel_expect.h"
#include "support/kernel_values.h"

namespace kiln::testing {
namespace {

Tensor ints(Shape shape, std::vector<double> values, DType dtype = kI64) {
  return make_tensor(dtype, std::move(shape), values);
}
Tensor vec(std::vector<double> values, DType dtype = kI64) {
  const int64_t n = static_cast<int64_t>(values.size());
  return make_tensor(dtype, {n}, values);
}

// x = arange(12).reshape(3, 4) in `dtype`.
Tensor x34(DType dtype = kF32) {
  return arange_tensor(dtype, {3, 4});
}

// ---- embedding, index_select, take
// ---------------------------------------------------------------

OpCall embedding(Tensor weight, Tensor indices) {
  return {.target = "aten.embedding.default",
          .inputs = {weight, indices},
          .args = {TensorArg{0}, TensorArg{1}}};
}

TEST(IndexingEmbedding, RowsByIndex) {
  expect_tensor(run1(embedding(x34(), ints({1, 2}, {2, 0}))), kF32, {1, 2, 4},
                {8, 9, 10, 11, 0, 1, 2, 3}, kTightTol);
  expect_tensor(run1(embedding(x34(kF16), ints({}, {1}, kI32))), kF16, {4}, {4, 5, 6, 7},
                kTightTol);
  expect_tensor(run1(embedding(transposed(x34(kBF16)), vec({3, 3}))), kBF16, {2, 3},
                {3, 7, 11, 3, 7, 11}, kTightTol);
  expect_tensor(run1(embedding(x34(), ints({0}, {}))), kF32, {0, 4}, {}, kTightTol);
}

TEST(IndexingEmbedding, Errors) {
  expect_error(embedding(x34(), vec({3})), {"index 3 is out of bounds for dim 0 with size 3"},
               StatusCode::kOutOfRange);
  expect_error(embedding(x34(), vec({-1})), {"index -1 is out of bounds"});
  expect_error(embedding(x34(), vec({1}, kF32)), {"int64 or int32", "float32[1]"});
  expect_error(embedding(vec({1, 2}, kF32), vec({1})), {"expected a 2-D weight", "float32[2]"});
}

TEST(IndexingIndexSelect, Values) {
  const auto select = [](Tensor self, int64_t dim, Tensor index) {
    return OpCall{.target = "aten.index_select.default",
                  .inputs = {self, index},
                  .args = {TensorArg{0}, dim, TensorArg{1}}};
  };
  expect_tensor(run1(select(x34(), 1, vec({3, 0, 0}))), kF32, {3, 3}, {3, 0, 0, 7, 4, 4, 11, 8, 8},
                kTightTol);
  expect_tensor(run1(select(x34(kI32), -2, vec({2}, kI32))), kI32, {1, 4}, {8, 9, 10, 11},
                kTightTol);
  expect_tensor(run1(select(transposed(x34(kBool)), 0, ints({}, {1}))), kBool, {1, 3}, {1, 1, 1},
                kTightTol);
  expect_tensor(run1(select(make_tensor(kF32, {}, {3}), 0, vec({0}))), kF32, {}, {3}, kTightTol);
  expect_error(select(x34(), 1, vec({4})), {"index 4 is out of bounds for dim 1 with size 4"});
  expect_error(select(x34(), 1, vec({-1})), {"index -1"});
  expect_error(select(x34(), 1, ints({1, 2}, {0, 1})), {"expected a 1-D index"});
  expect_error(select(x34(), 2, vec({0})), {"dim 2 is out of range"});
}

TEST(IndexingTake, FlattenedWithNegativeIndices) {
  const auto take = [](Tensor self, Tensor index) {
    return OpCall{.target = "aten.take.default",
                  .inputs = {self, index},
                  .args = {TensorArg{0}, TensorArg{1}}};
  };
  expect_tensor(run1(take(x34(), ints({1, 2}, {11, -12}))), kF32, {1, 2}, {11, 0}, kTightTol);
  expect_tensor(run1(take(transposed(x34()), vec({1, 4}))), kF32, {2}, {4, 5}, kTightTol);
  expect_error(take(x34(), vec({12})), {"index 12 is out of bounds for dim 0 with size 12"});
  expect_error(take(x34(), vec({1}, kI32)), {"expected an index tensor of dtype int64, found"});
}

// ---- gather / scatter
// ----------------------------------------------------------------------------

OpCall gather(Tensor self, int64_t dim, Tensor index) {
  return {.target = "aten.gather.default",
          .inputs = {self, index},
          .args = {TensorArg{0}, dim, TensorArg{1}}};
}

TEST(IndexingGather, Values) {
  expect_tensor(run1(gather(x34(), 1, ints({2, 2}, {0, 3, 1, 1}))), kF32, {2, 2}, {0, 3, 5, 5},
                kTightTol);
  expect_tensor(run1(gather(x34(kI16), 0, ints({4, 4}, {0, 1, 2, 0}, kI32))), kI16, {4, 4},
                {0, 5, 10, 3, 0, 5, 10, 3, 0, 5, 10, 3, 0, 5, 10, 3}, kTightTol);
  // A transposed self: self[i][j] = x[j][i].
  expect_tensor(run1(gather(transposed(x34()), -1, ints({2, 1}, {2, 0}))), kF32, {2, 1}, {8, 1},
                kTightTol);
  expect_tensor(run1(gather(make_tensor(kF32, {}, {5}), 0, ints({}, {0}))), kF32, {}, {5},
                kTightTol);
  expect_tensor(run1(gather(x34(), 1, ints({0, 7}, {}))), kF32, {0, 7}, {}, kTightTol);
}

TEST(IndexingGather, Errors) {
  expect_error(gather(x34(), 1, ints({1, 2}, {0, 4})),
               {"index 4 is out of bounds for dim 1 with size 4"}, StatusCode::kOutOfRange);
  expect_error(gather(x34(), 1, ints({1, 2}, {0, -1})), {"index -1 is out of bounds"});
  expect_error(gather(x34(), 0, ints({1, 5}, {0})),
               {"to be no larger than self float32[3, 4] apart from dim 0"});
  expect_error(gather(x34(), 0, vec({0, 1})), {"to have self's rank 2", "int64[2]"});
  expect_error(gather(x34(), 0, ints({1, 1}, {0}, kI16)), {"int64 or int32", "int16[1, 1]"});
}

OpCall scatter(std::string target, Tensor self, int64_t dim, Tensor index, TestArg src) {
  OpCall call{.target = std::move(target), .inputs = {self, index}};
  if (std::holds_alternative<TensorArg>(src)) call.inputs.push_back(Tensor());
  call.args = {TensorArg{0}, dim, TensorArg{1}, src};
  return call;
}

TEST(IndexingGather, EmptyIndexOfAnyDtype) {
  // PyTorch checks neither the shape nor the dtype of an empty index: gather(x, 0, uint8[0]) is
  // an empty tensor, scatter with it a copy of self. kiln failed the program's load instead.
  for (DType dtype : {DType::kUInt8, DType::kInt16, DType::kBool, kF32}) {
    expect_tensor(run1(gather(make_tensor(kF32, {3}, {1, 2, 3}), 0, make_tensor(dtype, {0}, {}))),
                  kF32, {0}, {}, kTightTol);
    expect_tensor(run1(gather(x34(), 1, make_tensor(dtype, {0}, {}))), kF32, {0}, {}, kTightTol);
  }
  OpCall call = scatter("aten.scatter.src", make_tensor(kF32, {3}, {1, 2, 3}), 0,
                        make_tensor(DType::kUInt8, {0}, {}), TensorArg{2});
  call.inputs[2] = make_tensor(kF32, {3}, {7, 8, 9});
  expect_tensor(run1(call), kF32, {3}, {1, 2, 3}, kTightTol);
  // A non-empty index of those dtypes is still an error, as in PyTorch.
  expect_error(gather(make_tensor(kF32, {3}, {1, 2, 3}), 0, make_tensor(DType::kUInt8, {1}, {0})),
               {"int64 or int32", "uint8[1]"});
}

TEST(IndexingScatter, SrcValueAdd) {
  const Tensor src = make_tensor(kF32, {2, 3}, {10, 20, 30, 40, 50, 60});
  OpCall call = scatter("aten.scatter.src", x34(), 1, ints({2, 2}, {0, 3, 1, 1}), TensorArg{2});
  call.inputs[2] = src;
  expect_tensor(run1(call), kF32, {3, 4}, {10, 1, 2, 20, 4, 50, 6, 7, 8, 9, 10, 11}, kTightTol);
  expect_tensor(run1(scatter("aten.scatter.value", x34(), 1, ints({2, 2}, {0, 3, 1, 1}), 2.0)),
                kF32, {3, 4}, {2, 1, 2, 2, 4, 2, 6, 7, 8, 9, 10, 11}, kTightTol);
  expect_tensor(run1(scatter("aten.scatter.value", x34(kI32), 1, ints({2, 2}, {0, 3, 1, 1}), 2.7)),
                kI32, {3, 4}, {2, 1, 2, 2, 4, 2, 6, 7, 8, 9, 10, 11}, kTightTol);
  call.target = "aten.scatter_add.default";
  call.inputs[1] = ints({2, 2}, {0, 0, 1, 1}, kI32);
  expect_tensor(run1(call), kF32, {3, 4}, {30, 1, 2, 3, 4, 95, 6, 7, 8, 9, 10, 11}, kTightTol);
  // A 0-d self and a transposed src.
  OpCall zero_d =
      scatter("aten.scatter.src", make_tensor(kF32, {}, {1}), 0, ints({}, {0}), TensorArg{2});
  zero_d.inputs[2] = make_tensor(kF32, {}, {5});
  expect_tensor(run1(zero_d), kF32, {}, {5}, kTightTol);
  OpCall tsrc = scatter("aten.scatter.src", x34(), 0, ints({2, 1}, {2, 0}), TensorArg{2});
  tsrc.inputs[2] = transposed(make_tensor(kF32, {3, 2}, {-1, -2, -3, -4, -5, -6}));
  expect_tensor(run1(tsrc), kF32, {3, 4}, {-2, 1, 2, 3, 4, 5, 6, 7, -1, 9, 10, 11}, kTightTol);
}

TEST(IndexingScatter, Reductions) {
  const Tensor src = make_tensor(kF32, {2, 3}, {10, 20, 30, 40, 50, 60});
  const Tensor index = ints({2, 2}, {0, 0, 1, 1});
  const auto reduce_two = [&](Tensor self, Tensor s, std::string reduce, bool include_self,
                              Tensor idx = Tensor()) {
    return OpCall{.target = "aten.scatter_reduce.two",
                  .inputs = {self, idx.has_data() ? idx : index, s},
                  .args = {TensorArg{0}, int64_t{1}, TensorArg{1}, TensorArg{2}, reduce},
                  .kwargs = {{"include_self", include_self}}};
  };
  expect_tensor(run1(reduce_two(x34(), src, "mean", true)), kF32, {3, 4},
                {10, 1, 2, 3, 4, 31.666666, 6, 7, 8, 9, 10, 11}, kTightTol);
  expect_tensor(run1(reduce_two(x34(), src, "mean", false)), kF32, {3, 4},
                {15, 1, 2, 3, 4, 45, 6, 7, 8, 9, 10, 11}, kTightTol);
  expect_tensor(run1(reduce_two(x34(), src, "amax", true)), kF32, {3, 4},
                {20, 1, 2, 3, 4, 50, 6, 7, 8, 9, 10, 11}, kTightTol);
  expect_tensor(run1(reduce_two(x34(), src, "amin", false)), kF32, {3, 4},
                {10, 1, 2, 3, 4, 40, 6, 7, 8, 9, 10, 11}, kTightTol);
  expect_tensor(run1(reduce_two(x34(), src, "prod", false)), kF32, {3, 4},
                {200, 1, 2, 3, 4, 2000, 6, 7, 8, 9, 10, 11}, kTightTol);
  expect_tensor(run1(reduce_two(x34(kI64), make_tensor(kI64, {2, 3}, {-10, 20, 30, 40, 50, 60}),
                                "mean", true)),
                kI64, {3, 4}, {3, 1, 2, 3, 4, 31, 6, 7, 8, 9, 10, 11}, kTightTol);
  expect_tensor(run1(reduce_two(x34(kI64), make_tensor(kI64, {2, 3}, {-10, -21, 30, 40, 50, 60}),
                                "mean", false)),
                kI64, {3, 4}, {-16, 1, 2, 3, 4, 45, 6, 7, 8, 9, 10, 11}, kTightTol);
  expect_tensor(
      run1(reduce_two(make_tensor(kF32, {1, 2}, {1, kNaN}), make_tensor(kF32, {1, 2}, {kNaN, 5}),
                      "amax", true, ints({1, 2}, {0, 1}))),
      kF32, {1, 2}, {kNaN, kNaN}, kTightTol);
  expect_tensor(run1({.target = "aten.scatter.value_reduce",
                      .inputs = {x34(), ints({2, 2}, {0, 1, 0, 2})},
                      .args = {TensorArg{0}, int64_t{0}, TensorArg{1}, 2.0},
                      .kwargs = {{"reduce", std::string("multiply")}}}),
                kF32, {3, 4}, {0, 1, 2, 3, 4, 10, 6, 7, 8, 18, 10, 11}, kTightTol);
  expect_tensor(
      run1({.target = "aten.scatter.reduce",
            .inputs = {x34(), ints({2, 2}, {0, 1, 0, 2}), make_tensor(kF32, {2, 2}, {1, 2, 3, 4})},
            .args = {TensorArg{0}, int64_t{0}, TensorArg{1}, TensorArg{2}},
            .kwargs = {{"reduce", std::string("add")}}}),
      kF32, {3, 4}, {4, 1, 2, 3, 4, 7, 6, 7, 8, 13, 10, 11}, kTightTol);
  expect_error(reduce_two(x34(), src, "median", true), {"expected reduce to be one of", "median"});
}

TEST(IndexingScatter, Errors) {
  OpCall call =
      scatter("aten.scatter_add.default", x34(), 1, ints({2, 2}, {0, 5, 1, 1}), TensorArg{2});
  call.inputs[2] = make_tensor(kF32, {2, 3}, {1});
  expect_error(call, {"index 5 is out of bounds for dim 1 with size 4"});
  call.inputs[1] = ints({2, 2}, {0, 0, 1, 1});
  call.inputs[2] = make_tensor(kF64, {2, 3}, {1});
  expect_error(call, {"expected src to have self's dtype float32", "float64[2, 3]"});
  call.inputs[2] = make_tensor(kF32, {1, 2}, {1});
  expect_error(call, {"no larger than src float32[1, 2]"});
  expect_error(scatter("aten.scatter.value", x34(kU8), 1, ints({1, 1}, {0}), int64_t{300}),
               {"value 300 cannot be converted to uint8 without overflow"});
  // An empty index changes nothing and is not checked against self.
  call.inputs[1] = ints({0}, {});
  call.inputs[2] = make_tensor(kF32, {7, 2}, {1});
  expect_tensor(run1(call), kF32, {3, 4}, to_doubles(x34()), kTightTol);
}

// ---- advanced indexing
// ---------------------------------------------------------------------------

// arange(24).reshape(2, 3, 4)[indices]; -1 in `holes` marks a None.
OpCall index_call(Tensor self, std::vector<Tensor> indices) {
  OpCall call{.target = "aten.index.Tensor", .inputs = {self}};
  OptionalTensorList list;
  for (Tensor& t : indices) {
    if (!t.has_data()) {
      list.indices.push_back(-1);
      continue;
    }
    list.indices.push_back(static_cast<int>(call.inputs.size()));
    call.inputs.push_back(std::move(t));
  }
  call.args = {TensorArg{0}, list};
  return call;
}

Tensor x234(DType dtype = kF32) {
  return arange_tensor(dtype, {2, 3, 4});
}

TEST(IndexingIndex, AdjacentAndSeparatedIndexDims) {
  const Tensor none;
  expect_tensor(
      run1(index_call(x234(), {vec({1, 0})})), kF32, {2, 3, 4},
      [] {
        std::vector<double> v;
        for (int i = 12; i < 24; ++i) v.push_back(i);
        for (int i = 0; i < 12; ++i) v.push_back(i);
        return v;
      }(),
      kTightTol);
  expect_tensor(run1(index_call(x234(), {none, vec({2, 0})})), kF32, {2, 2, 4},
                {8, 9, 10, 11, 0, 1, 2, 3, 20, 21, 22, 23, 12, 13, 14, 15}, kTightTol);
  // Adjacent index dims broadcast ([2, 1] with [2]) and stay in place.
  expect_tensor(run1(index_call(x234(), {none, ints({2, 1}, {2, 0}), vec({1, 3})})), kF32,
                {2, 2, 2}, {9, 11, 1, 3, 21, 23, 13, 15}, kTightTol);
  // Separated by a slice: the broadcast dims lead.
  expect_tensor(run1(index_call(x234(), {vec({1}), none, vec({1, 3})})), kF32, {2, 3},
                {13, 17, 21, 15, 19, 23}, kTightTol);
  expect_tensor(run1(index_call(x234(), {vec({-1, 0}), vec({2, -3})})), kF32, {2, 4},
                {20, 21, 22, 23, 0, 1, 2, 3}, kTightTol);
  expect_tensor(run1(index_call(x234(), {none, none, ints({1, 2}, {3, 0}, kI32)})), kF32,
                {2, 3, 1, 2}, {3, 0, 7, 4, 11, 8, 15, 12, 19, 16, 23, 20}, kTightTol);
  expect_tensor(run1(index_call(x234(), {ints({}, {1}), none, ints({}, {2})})), kF32, {3},
                {14, 18, 22}, kTightTol);
  expect_tensor(run1(index_call(x234(), {ints({0}, {})})), kF32, {0, 3, 4}, {}, kTightTol);
}

TEST(IndexingIndex, NonContiguousSelfAndDtypes) {
  // self = x34 transposed (4 x 3), self[[3, 0], [1, 2]] = x[1][3], x[2][0].
  expect_tensor(run1(index_call(transposed(x34(kI64)), {vec({3, 0}), vec({1, 2})})), kI64, {2},
                {7, 8}, kTightTol);
  expect_tensor(run1(index_call(x34(kBool), {vec({1, 0})})), kBool, {2, 4},
                {1, 1, 1, 1, 0, 1, 1, 1}, kTightTol);
  expect_tensor(run1({.target = "aten._unsafe_index.Tensor",
                      .inputs = {x34(kF16), vec({2})},
                      .args = {TensorArg{0}, OptionalTensorList{{-1, 1}}}}),
                kF16, {3, 1}, {2, 6, 10}, kTightTol);
}

TEST(IndexingIndex, Errors) {
  const Tensor none;
  expect_error(index_call(x234(), {vec({5})}), {"index 5 is out of bounds for dim 0 with size 2"},
               StatusCode::kOutOfRange);
  expect_error(index_call(x234(), {vec({-3})}), {"index -3 is out of bounds"});
  expect_error(index_call(x234(), {vec({1, 0}), vec({1, 0, 2})}), {"do not broadcast"});
  expect_error(index_call(x234(), {none, none, none, vec({0})}), {"too many indices"});
  expect_error(index_call(x234(), {vec({1}, kF32)}),
               {"expected an int64, int32, bool or uint8 tensor"});
  expect_error(index_call(x234(), {vec({1, 0}, kBool)}), {"data-dependent shape"},
               StatusCode::kUnsupported);
}

OpCall index_put_call(Tensor self, std::vector<Tensor> indices, Tensor values, bool accumulate) {
  OpCall call = index_call(std::move(self), std::move(indices));
  call.target = "aten.index_put.default";
  call.args.push_back(TensorArg{static_cast<int>(call.inputs.size())});
  call.inputs.push_back(std::move(values));
  call.args.push_back(accumulate);
  return call;
}

TEST(IndexingIndexPut, AssignAndAccumulate) {
  const Tensor none;
  const Tensor zeros = make_tensor(kF32, {3, 4}, {0});
  expect_tensor(run1(index_put_call(zeros, {vec({0, 2, 0}), none}, vec({1, 2, 3, 4}, kF32), true)),
                kF32, {3, 4}, {2, 4, 6, 8, 0, 0, 0, 0, 1, 2, 3, 4}, kTightTol);
  expect_tensor(run1(index_put_call(zeros, {none, vec({1, 1, 3})},
                                    make_tensor(kF32, {3, 1}, {1, 2, 3}), true)),
                kF32, {3, 4}, {0, 2, 0, 1, 0, 4, 0, 2, 0, 6, 0, 3}, kTightTol);
  // Repeated positions without accumulate: the last write wins.
  expect_tensor(run1(index_put_call(zeros, {vec({1, 1}), vec({0, 0})}, vec({1, 2}, kF32), false)),
                kF32, {3, 4}, {0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0}, kTightTol);
  expect_tensor(run1(index_put_call(arange_tensor(kI64, {2, 3}), {vec({1, 1}), vec({2, 2})},
                                    vec({10, 20}), true)),
                kI64, {2, 3}, {0, 1, 2, 3, 4, 35}, kTightTol);
  expect_tensor(run1(index_put_call(make_tensor(kF16, {2, 3}, {1}), {vec({1, 1})},
                                    make_tensor(kF16, {1}, {0.5}), true)),
                kF16, {2, 3}, {1, 1, 1, 2, 2, 2}, kTightTol);
  expect_tensor(run1(index_put_call(make_tensor(kBool, {2}, {0}), {vec({1})},
                                    make_tensor(kBool, {}, {1}), true)),
                kBool, {2}, {0, 1}, kTightTol);
  // A transposed self: the result is a fresh contiguous tensor.
  expect_tensor(run1(index_put_call(transposed(x34()), {vec({0}), vec({2})},
                                    make_tensor(kF32, {}, {-1}), false)),
                kF32, {4, 3}, {0, 4, -1, 1, 5, 9, 2, 6, 10, 3, 7, 11}, kTightTol);
}

TEST(IndexingIndexPut, BoolMasks) {
  const Tensor none;
  const Tensor zeros = make_tensor(kF32, {3, 4}, {0});
  const Tensor mask2 = make_tensor(kBool, {3, 4}, {1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1});
  expect_tensor(run1(index_put_call(zeros, {mask2}, make_tensor(kF32, {}, {7}), false)), kF32,
                {3, 4}, {7, 0, 0, 7, 0, 0, 0, 0, 7, 7, 7, 7}, kTightTol);
  expect_tensor(run1(index_put_call(zeros, {vec({1, 0, 1}, kBool)}, vec({1, 2, 3, 4}, kF32), true)),
                kF32, {3, 4}, {1, 2, 3, 4, 0, 0, 0, 0, 1, 2, 3, 4}, kTightTol);
  expect_tensor(run1(index_put_call(zeros, {none, vec({1, 0, 0, 1}, kU8)},
                                    make_tensor(kF32, {3, 1}, {5, 6, 7}), false)),
                kF32, {3, 4}, {5, 0, 0, 5, 6, 0, 0, 6, 7, 0, 0, 7}, kTightTol);
  expect_error(index_put_call(zeros, {mask2}, vec({5, 6}, kF32), false),
               {"expected values to broadcast to the indexed shape [6]", "float32[2]"});
  expect_error(index_put_call(zeros, {vec({1, 0}, kBool)}, make_tensor(kF32, {}, {1}), false),
               {"mask of shape matching self float32[3, 4] at dim 0", "bool[2]"});
}

TEST(IndexingIndexPut, Errors) {
  const Tensor zeros = make_tensor(kF32, {2, 3}, {0});
  expect_error(index_put_call(zeros, {vec({2})}, make_tensor(kF32, {}, {1}), false),
               {"index 2 is out of bounds for dim 0 with size 2"});
  expect_error(index_put_call(zeros, {vec({0})}, vec({1, 2, 3}), false),
               {"expected values to have self's dtype float32", "int64[3]"});
  expect_error(index_put_call(zeros, {vec({1})}, vec({1, 2}, kF32), false),
               {"expected values to broadcast to the indexed shape [1, 3]", "float32[2]"});
  expect_error(
      index_put_call(zeros, {vec({0, 1}), vec({0})}, make_tensor(kF32, {1, 2}, {1}), false),
      {"indexed shape [2]", "float32[1, 2]"});
}

// ---- select_scatter / slice_scatter
// --------------------------------------------------------------

TEST(IndexingSelectScatter, Values) {
  const auto select_scatter = [](Tensor self, Tensor src, int64_t dim, int64_t index) {
    return OpCall{.target = "aten.select_scatter.default",
                  .inputs = {self, src},
                  .args = {TensorArg{0}, TensorArg{1}, dim, index}};
  };
  expect_tensor(run1(select_scatter(x34(), vec({1, 2, 3, 4}, kF32), 0, 1)), kF32, {3, 4},
                {0, 1, 2, 3, 1, 2, 3, 4, 8, 9, 10, 11}, kTightTol);
  // An int src is converted; a negative index wraps.
  expect_tensor(run1(select_scatter(x34(), vec({1, 2, 3}), 1, -1)), kF32, {3, 4},
                {0, 1, 2, 1, 4, 5, 6, 2, 8, 9, 10, 3}, kTightTol);
  expect_tensor(run1(select_scatter(transposed(x34()), vec({-1, -2, -3}, kF32), 0, 2)), kF32,
                {4, 3}, {0, 4, 8, 1, 5, 9, -1, -2, -3, 3, 7, 11}, kTightTol);
  expect_error(select_scatter(x34(), vec({1, 2, 3, 4}, kF32), 1, -1),
               {"expected src of shape [3]", "float32[4]"});
  expect_error(select_scatter(x34(), vec({1, 2, 3}, kF32), 1, 4),
               {"index 4 is out of bounds for dim 1 with size 4"});
  expect_error(select_scatter(make_tensor(kF32, {}, {1}), make_tensor(kF32, {}, {2}), 0, 0),
               {"0-d"});
}

TEST(IndexingSliceScatter, Values) {
  const auto slice_scatter = [](Tensor self, Tensor src, int64_t dim, TestArg start, TestArg end,
                                int64_t step) {
    return OpCall{.target = "aten.slice_scatter.default",
                  .inputs = {self, src},
                  .args = {TensorArg{0}, TensorArg{1}, dim, start, end, step}};
  };
  const Tensor ones32 = make_tensor(kF32, {3, 2}, {1});
  expect_tensor(run1(slice_scatter(x34(), ones32, 1, int64_t{1}, int64_t{10}, 2)), kF32, {3, 4},
                {0, 1, 2, 1, 4, 1, 6, 1, 8, 1, 10, 1}, kTightTol);
  expect_tensor(run1(slice_scatter(x34(), ones32, 1, ir::NoneArg{}, ir::NoneArg{}, 2)), kF32,
                {3, 4}, {1, 1, 1, 3, 1, 5, 1, 7, 1, 9, 1, 11}, kTightTol);
  expect_tensor(
      run1(slice_scatter(x34(), make_tensor(kI32, {3, 1}, {-1}), 1, int64_t{-1}, ir::NoneArg{}, 1)),
      kF32, {3, 4}, {0, 1, 2, -1, 4, 5, 6, -1, 8, 9, 10, -1}, kTightTol);
  expect_tensor(
      run1(slice_scatter(x34(), make_tensor(kF32, {3, 0}, {}), 1, int64_t{3}, int64_t{1}, 1)), kF32,
      {3, 4}, to_doubles(x34()), kTightTol);
  expect_tensor(
      run1(slice_scatter(x34(), make_tensor(kF32, {1, 4}, {7}), 0, int64_t{-100}, int64_t{1}, 1)),
      kF32, {3, 4}, {7, 7, 7, 7, 4, 5, 6, 7, 8, 9, 10, 11}, kTightTol);
  expect_error(slice_scatter(x34(), ones32, 1, int64_t{-1}, ir::NoneArg{}, 1),
               {"expected src of shape [3, 1]", "float32[3, 2]"});
  expect_error(slice_scatter(x34(), ones32, 1, int64_t{1}, int64_t{10}, 0),
               {"expected a positive step, found 0"});
}

}  // namespace
}  // namespace kiln::testing
