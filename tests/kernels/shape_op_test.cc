// Conformance tests for the shape ops (views and the ops that only move data). Expected values were
// computed with PyTorch 2.11 eager and hard-coded.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/kernel_expect.h"

namespace kiln {
namespace {

using testing::expect_error;
using testing::TensorArg;
using testing::to_doubles;
using Args = std::vector<testing::TestArg>;
using Ints = std::vector<int64_t>;
using Values = std::vector<double>;

constexpr DType kAllDTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64,
                                DType::kInt64,   DType::kInt32,   DType::kInt16,    DType::kInt8,
                                DType::kUInt8,   DType::kBool};

testing::OpCall op_call(const std::string& op, std::vector<Tensor> inputs, Args args,
                        int num_outputs = -1) {
  return {.target = op,
          .inputs = std::move(inputs),
          .args = std::move(args),
          .num_outputs = num_outputs};
}

std::vector<Tensor> run(const std::string& op, std::vector<Tensor> inputs, Args args,
                        int num_outputs = -1) {
  return testing::run(op_call(op, std::move(inputs), std::move(args), num_outputs));
}

Tensor run1(const std::string& op, std::vector<Tensor> inputs, Args args) {
  return testing::run1(op_call(op, std::move(inputs), std::move(args)));
}

Tensor arange(Shape sizes, DType dtype = DType::kFloat32) {
  return testing::arange_tensor(dtype, std::move(sizes));
}

// A non-contiguous view of `t` with its dims reordered.
Tensor permuted(const Tensor& t, const Ints& order) {
  Shape sizes, strides;
  for (int64_t d : order) sizes.push_back(t.size(d)), strides.push_back(t.strides()[d]);
  return t.view_as(sizes, strides, t.offset());
}

// --- view, reshape and friends ---------------------------------------------------------------

TEST(ShapeOpViewTest, ViewSharesStorageAndInfersMinusOne) {
  Tensor in = arange({2, 3, 4});
  Tensor out = run1("aten.view.default", {in}, {TensorArg{0}, Ints{4, -1}});
  EXPECT_EQ(out.sizes(), (Shape{4, 6}));
  EXPECT_EQ(out.strides(), (Shape{6, 1}));
  EXPECT_EQ(out.storage(), in.storage());
  EXPECT_EQ(to_doubles(out), to_doubles(in));
  EXPECT_EQ(run1("aten.view.default", {arange({2, 3})}, {TensorArg{0}, Ints{6, 1}}).strides(),
            (Shape{1, 1}));
}

TEST(ShapeOpViewTest, ViewOfPermutedInput) {
  const Values want = {0, 4, 8,  12, 16, 20, 1, 5, 9,  13, 17, 21,
                       2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23};
  Tensor p = permuted(arange({2, 3, 4}), {2, 0, 1});
  Tensor merged = run1("aten.view.default", {p}, {TensorArg{0}, Ints{4, 6}});
  EXPECT_EQ(merged.strides(), (Shape{1, 4}));  // dims 1 and 2 are contiguous with each other
  EXPECT_EQ(merged.storage(), p.storage());
  EXPECT_EQ(to_doubles(merged), want);
  // Not expressible with strides: a contiguous copy (PyTorch's view would refuse; reshape copies).
  for (const char* op : {"aten.view.default", "aten.reshape.default", "aten._unsafe_view.default",
                         "aten.view_copy.default"}) {
    Tensor flat = run1(op, {p}, {TensorArg{0}, Ints{-1}});
    EXPECT_EQ(flat.sizes(), (Shape{24})) << op;
    EXPECT_TRUE(flat.is_contiguous()) << op;
    EXPECT_EQ(to_doubles(flat), want) << op;
  }
}

TEST(ShapeOpViewTest, ViewEdgeShapes) {
  EXPECT_EQ(run1("aten.view.default", {arange({})}, {TensorArg{0}, Ints{-1}}).sizes(), (Shape{1}));
  EXPECT_EQ(run1("aten.view.default", {arange({1, 1})}, {TensorArg{0}, Ints{}}).sizes(), Shape{});
  Tensor empty = run1("aten.view.default", {arange({0, 3})}, {TensorArg{0}, Ints{3, 0, 1}});
  EXPECT_EQ(empty.sizes(), (Shape{3, 0, 1}));
  EXPECT_EQ(empty.strides(), (Shape{1, 1, 1}));
  // An expanded input (stride 0) cannot be flattened without copying.
  Tensor expanded = arange({1, 3}).view_as({2, 3}, {0, 1}, 0);
  Tensor flat = run1("aten.reshape.default", {expanded}, {TensorArg{0}, Ints{6}});
  EXPECT_EQ(to_doubles(flat), (Values{0, 1, 2, 0, 1, 2}));
}

TEST(ShapeOpViewTest, ViewErrors) {
  expect_error(op_call("aten.view.default", {arange({3, 4})}, {TensorArg{0}, Ints{3, 5}}),
               "shape [3, 5] is invalid for input of 12 elements");
  expect_error(op_call("aten.view.default", {arange({3, 4})}, {TensorArg{0}, Ints{-1, -1}}),
               "only one dimension can be inferred");
  expect_error(op_call("aten.reshape.default", {arange({3, 4})}, {TensorArg{0}, Ints{-2, 6}}),
               "invalid shape dimension -2");
  expect_error(op_call("aten.view.default", {arange({0, 3})}, {TensorArg{0}, Ints{0, -1}}),
               "ambiguous");
  expect_error(op_call("aten.view.default", {arange({6})}, {TensorArg{0}, Ints{0, -1}}),
               "shape [0, -1] is invalid for input of 6 elements");
}

TEST(ShapeOpViewTest, UnsafeViewCopiesEveryDType) {
  for (DType dtype : kAllDTypes) {
    Tensor p = permuted(arange({2, 3}, dtype), {1, 0});
    Tensor out = run1("aten._unsafe_view.default", {p}, {TensorArg{0}, Ints{2, 3}});
    EXPECT_EQ(out.dtype(), dtype);
    EXPECT_EQ(to_doubles(out), to_doubles(p)) << dtype_name(dtype);
  }
}

TEST(ShapeOpViewTest, FlattenAndUnflatten) {
  Tensor in = arange({2, 3, 4});
  EXPECT_EQ(run1("aten.flatten.using_ints", {in}, {TensorArg{0}, int64_t{1}, int64_t{-1}}).sizes(),
            (Shape{2, 12}));
  EXPECT_EQ(run1("aten.flatten.using_ints", {arange({})}, {TensorArg{0}}).sizes(), (Shape{1}));
  Tensor p = permuted(in, {0, 2, 1});
  Tensor flat = run1("aten.flatten.using_ints", {p}, {TensorArg{0}});
  EXPECT_EQ(to_doubles(flat), to_doubles(p));
  expect_error(op_call("aten.flatten.using_ints", {in}, {TensorArg{0}, int64_t{2}, int64_t{0}}),
               "must not come after");
  Tensor u = run1("aten.unflatten.int", {in}, {TensorArg{0}, int64_t{-1}, Ints{2, -1}});
  EXPECT_EQ(u.sizes(), (Shape{2, 3, 2, 2}));
  EXPECT_EQ(u.strides(), (Shape{12, 4, 2, 1}));
  expect_error(op_call("aten.unflatten.int", {in}, {TensorArg{0}, int64_t{1}, Ints{2, 2}}),
               "do not multiply up to the size of dim 1 (3)");
}

// --- permute, movedim, expand, unsqueeze, squeeze ----------------------------------------------

TEST(ShapeOpViewTest, Permute) {
  Tensor in = arange({2, 3, 4});
  Tensor out = run1("aten.permute.default", {in}, {TensorArg{0}, Ints{-1, 0, 1}});
  EXPECT_EQ(out.sizes(), (Shape{4, 2, 3}));
  EXPECT_EQ(out.strides(), (Shape{1, 12, 4}));
  EXPECT_EQ(out.storage(), in.storage());
  Tensor copy = run1("aten.permute_copy.default", {in}, {TensorArg{0}, Ints{2, 0, 1}});
  EXPECT_TRUE(copy.is_contiguous());
  EXPECT_EQ(to_doubles(copy), to_doubles(out));
  expect_error(op_call("aten.permute.default", {in}, {TensorArg{0}, Ints{0, 0, 1}}),
               "dim 0 appears multiple times");
  expect_error(op_call("aten.permute.default", {in}, {TensorArg{0}, Ints{0, 1}}),
               "expected 3 dims");
  expect_error(op_call("aten.permute.default", {in}, {TensorArg{0}, Ints{0, 1, 3}}),
               "dim 3 is out of range");
}

TEST(ShapeOpViewTest, Movedim) {
  Tensor in = arange({2, 3, 4, 5});
  Tensor out = run1("aten.movedim.intlist", {in}, {TensorArg{0}, Ints{0, 1}, Ints{3, 0}});
  EXPECT_EQ(out.sizes(), (Shape{3, 4, 5, 2}));
  EXPECT_EQ(out.strides(), (Shape{20, 5, 1, 60}));
  Tensor one = run1("aten.movedim.int", {in}, {TensorArg{0}, int64_t{-1}, int64_t{1}});
  EXPECT_EQ(one.sizes(), (Shape{2, 5, 3, 4}));
  expect_error(op_call("aten.movedim.intlist", {in}, {TensorArg{0}, Ints{0, 0}, Ints{1, 2}}),
               "appears multiple times");
}

TEST(ShapeOpViewTest, Expand) {
  Tensor in = arange({3, 1});
  Tensor out = run1("aten.expand.default", {in}, {TensorArg{0}, Ints{2, -1, 4}});
  EXPECT_EQ(out.sizes(), (Shape{2, 3, 4}));
  EXPECT_EQ(out.strides(), (Shape{0, 1, 0}));
  Tensor copy = run1("aten.expand_copy.default", {in}, {TensorArg{0}, Ints{2, 3, 2}});
  EXPECT_EQ(to_doubles(copy), (Values{0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2}));
  EXPECT_EQ(run1("aten.expand.default", {arange({1, 3})}, {TensorArg{0}, Ints{0, 3}}).sizes(),
            (Shape{0, 3}));
  expect_error(op_call("aten.expand.default", {arange({2, 3})}, {TensorArg{0}, Ints{2, 4}}),
               "the expanded size 4 must match the existing size 3 at non-singleton dim 1");
  expect_error(op_call("aten.expand.default", {arange({2, 3})}, {TensorArg{0}, Ints{3}}),
               "must be at least the rank");
  expect_error(op_call("aten.expand.default", {arange({2, 3})}, {TensorArg{0}, Ints{-1, 2, 3}}),
               "new leading dim 0");
}

TEST(ShapeOpViewTest, Unsqueeze) {
  Tensor in = arange({2, 3});
  auto unsqueeze = [&](const Tensor& t, int64_t dim) {
    return run1("aten.unsqueeze.default", {t}, {TensorArg{0}, dim});
  };
  EXPECT_EQ(unsqueeze(in, 0).strides(), (Shape{6, 3, 1}));
  EXPECT_EQ(unsqueeze(in, 1).strides(), (Shape{3, 3, 1}));
  EXPECT_EQ(unsqueeze(in, -1).strides(), (Shape{3, 1, 1}));
  EXPECT_EQ(unsqueeze(permuted(in, {1, 0}), 1).strides(), (Shape{1, 6, 3}));
  EXPECT_EQ(unsqueeze(arange({}), 0).sizes(), (Shape{1}));
  expect_error(op_call("aten.unsqueeze.default", {in}, {TensorArg{0}, int64_t{3}}),
               "expected a value in [-3, 2]");
  Tensor copy =
      run1("aten.unsqueeze_copy.default", {permuted(in, {1, 0})}, {TensorArg{0}, int64_t{0}});
  EXPECT_EQ(to_doubles(copy), (Values{0, 3, 1, 4, 2, 5}));
}

TEST(ShapeOpViewTest, Squeeze) {
  Tensor in = arange({1, 2, 1, 3});
  EXPECT_EQ(run1("aten.squeeze.default", {in}, {TensorArg{0}}).sizes(), (Shape{2, 3}));
  Tensor dim = run1("aten.squeeze.dim", {in}, {TensorArg{0}, int64_t{-2}});
  EXPECT_EQ(dim.sizes(), (Shape{1, 2, 3}));
  EXPECT_EQ(dim.strides(), (Shape{6, 3, 1}));
  EXPECT_EQ(run1("aten.squeeze.dim", {in}, {TensorArg{0}, int64_t{1}}).sizes(), in.sizes());
  EXPECT_EQ(run1("aten.squeeze.dims", {in}, {TensorArg{0}, Ints{0, 1, -2}}).sizes(), (Shape{2, 3}));
  EXPECT_EQ(run1("aten.squeeze.dim", {arange({})}, {TensorArg{0}, int64_t{-1}}).sizes(), Shape{});
  EXPECT_EQ(to_doubles(run1("aten.squeeze_copy.dims", {in}, {TensorArg{0}, Ints{0}})),
            to_doubles(in));
  expect_error(op_call("aten.squeeze.dims", {in}, {TensorArg{0}, Ints{0, -4}}),
               "appears multiple times");
  expect_error(op_call("aten.squeeze.dim", {in}, {TensorArg{0}, int64_t{4}}), "out of range");
}

// --- select, slice, transpose, narrow, alias ---------------------------------------------------

TEST(ShapeOpViewTest, Select) {
  Tensor p = permuted(arange({2, 3, 4}), {2, 0, 1});  // [4, 2, 3]
  Tensor out = run1("aten.select.int", {p}, {TensorArg{0}, int64_t{1}, int64_t{-1}});
  EXPECT_EQ(out.sizes(), (Shape{4, 3}));
  EXPECT_EQ(out.offset(), 12);
  EXPECT_EQ(to_doubles(out), (Values{12, 16, 20, 13, 17, 21, 14, 18, 22, 15, 19, 23}));
  Tensor copy = run1("aten.select_copy.int", {p}, {TensorArg{0}, int64_t{1}, int64_t{-1}});
  EXPECT_EQ(to_doubles(copy), to_doubles(out));
  expect_error(op_call("aten.select.int", {arange({3})}, {TensorArg{0}, int64_t{0}, int64_t{3}}),
               "index 3 is out of range for dim 0 of size 3");
  expect_error(op_call("aten.select.int", {arange({3})}, {TensorArg{0}, int64_t{0}, int64_t{-4}}),
               "index -4 is out of range");
  expect_error(op_call("aten.select.int", {arange({})}, {TensorArg{0}, int64_t{0}, int64_t{0}}),
               "0-d");
}

TEST(ShapeOpViewTest, Slice) {
  Tensor x = arange({10});
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  auto slice = [&](const Tensor& t, int64_t dim, testing::TestArg start, testing::TestArg end,
                   int64_t step) {
    return run1("aten.slice.Tensor", {t}, {TensorArg{0}, dim, start, end, step});
  };
  Tensor a = slice(x, 0, int64_t{-7}, int64_t{100}, 3);
  EXPECT_EQ(to_doubles(a), (Values{3, 6, 9}));
  EXPECT_EQ(a.strides(), (Shape{3}));
  EXPECT_EQ(a.offset(), 3);
  EXPECT_EQ(to_doubles(slice(x, 0, ir::NoneArg{}, ir::NoneArg{}, 4)), (Values{0, 4, 8}));
  EXPECT_EQ(to_doubles(slice(x, -1, int64_t{2}, kMax, 1)).size(), 8u);
  EXPECT_EQ(slice(x, 0, int64_t{8}, int64_t{3}, 1).sizes(), (Shape{0}));
  EXPECT_EQ(slice(x, 0, int64_t{-20}, int64_t{-8}, 1).sizes(), (Shape{2}));
  Tensor p = permuted(arange({2, 3, 4}), {2, 0, 1});
  EXPECT_EQ(to_doubles(slice(p, 0, int64_t{1}, int64_t{4}, 2)),
            (Values{1, 5, 9, 13, 17, 21, 3, 7, 11, 15, 19, 23}));
  Tensor copy = run1("aten.slice_copy.Tensor", {p},
                     {TensorArg{0}, int64_t{0}, int64_t{1}, int64_t{4}, int64_t{2}});
  EXPECT_EQ(to_doubles(copy), (Values{1, 5, 9, 13, 17, 21, 3, 7, 11, 15, 19, 23}));
  EXPECT_EQ(slice(arange({0, 2}), 0, int64_t{0}, int64_t{5}, 1).sizes(), (Shape{0, 2}));
  expect_error(op_call("aten.slice.Tensor", {x},
                       {TensorArg{0}, int64_t{0}, int64_t{0}, int64_t{1}, int64_t{0}}),
               "expected a positive step, found 0");
}

TEST(ShapeOpViewTest, TransposeAndT) {
  Tensor in = arange({2, 3, 4});
  Tensor tr = run1("aten.transpose.int", {in}, {TensorArg{0}, int64_t{-1}, int64_t{0}});
  EXPECT_EQ(tr.sizes(), (Shape{4, 3, 2}));
  EXPECT_EQ(tr.strides(), (Shape{1, 4, 12}));
  Tensor m = arange({3, 4});
  EXPECT_EQ(to_doubles(run1("aten.t_copy.default", {m}, {TensorArg{0}})),
            (Values{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  EXPECT_EQ(run1("aten.t.default", {arange({5})}, {TensorArg{0}}).sizes(), (Shape{5}));
  EXPECT_EQ(
      to_doubles(run1("aten.transpose_copy.int", {in}, {TensorArg{0}, int64_t{0}, int64_t{1}})),
      to_doubles(permuted(in, {1, 0, 2})));
  expect_error(op_call("aten.t.default", {in}, {TensorArg{0}}), "rank <= 2");
  expect_error(op_call("aten.transpose.int", {in}, {TensorArg{0}, int64_t{0}, int64_t{3}}),
               "out of range");
}

TEST(ShapeOpViewTest, NarrowAndAlias) {
  Tensor in = arange({2, 3, 4});
  Tensor n = run1("aten.narrow.default", {in}, {TensorArg{0}, int64_t{2}, int64_t{-3}, int64_t{2}});
  EXPECT_EQ(to_doubles(n), (Values{1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22}));
  EXPECT_EQ(n.offset(), 1);
  EXPECT_EQ(to_doubles(run1("aten.narrow_copy.default", {in},
                            {TensorArg{0}, int64_t{2}, int64_t{1}, int64_t{2}})),
            to_doubles(n));
  expect_error(
      op_call("aten.narrow.default", {in}, {TensorArg{0}, int64_t{1}, int64_t{1}, int64_t{3}}),
      "expected a length in [0, 2]");
  expect_error(
      op_call("aten.narrow.default", {in}, {TensorArg{0}, int64_t{1}, int64_t{4}, int64_t{0}}),
      "start 4 is out of range");
  Tensor a = run1("aten.alias.default", {in}, {TensorArg{0}});
  EXPECT_EQ(a.storage(), in.storage());
  Tensor c = run1("aten.alias_copy.default", {in}, {TensorArg{0}});
  EXPECT_NE(c.storage(), in.storage());
  EXPECT_EQ(to_doubles(c), to_doubles(in));
}

// --- unbind, split, chunk ------------------------------------------------------------------------

TEST(ShapeOpViewTest, Unbind) {
  Tensor in = arange({2, 3, 4});
  auto outs = run("aten.unbind.int", {in}, {TensorArg{0}, int64_t{-2}}, 3);
  ASSERT_EQ(outs.size(), 3u);
  EXPECT_EQ(to_doubles(outs[1]), (Values{4, 5, 6, 7, 16, 17, 18, 19}));
  EXPECT_EQ(outs[2].storage(), in.storage());
  auto copies = run("aten.unbind_copy.int", {in}, {TensorArg{0}, int64_t{1}}, 3);
  ASSERT_EQ(copies.size(), 3u);
  EXPECT_EQ(to_doubles(copies[2]), (Values{8, 9, 10, 11, 20, 21, 22, 23}));
  expect_error(op_call("aten.unbind.int", {in}, {TensorArg{0}, int64_t{1}}, 2),
               "splits into 3 pieces along dim 1, but the node has 2 outputs");
}

TEST(ShapeOpViewTest, Split) {
  Tensor in = arange({5, 2});
  auto outs = run("aten.split.Tensor", {in}, {TensorArg{0}, int64_t{2}}, 3);
  ASSERT_EQ(outs.size(), 3u);
  EXPECT_EQ(outs[2].sizes(), (Shape{1, 2}));
  EXPECT_EQ(to_doubles(outs[1]), (Values{4, 5, 6, 7}));
  EXPECT_EQ(outs[1].offset(), 4);
  auto cols =
      run("aten.split_with_sizes.default", {in}, {TensorArg{0}, Ints{1, 0, 1}, int64_t{-1}}, 3);
  ASSERT_EQ(cols.size(), 3u);
  EXPECT_EQ(to_doubles(cols[2]), (Values{1, 3, 5, 7, 9}));
  EXPECT_EQ(cols[1].sizes(), (Shape{5, 0}));
  auto copies = run("aten.split_with_sizes_copy.default", {permuted(in, {1, 0})},
                    {TensorArg{0}, Ints{3, 2}, int64_t{1}}, 2);
  ASSERT_EQ(copies.size(), 2u);
  EXPECT_EQ(to_doubles(copies[1]), (Values{6, 8, 7, 9}));
  EXPECT_EQ(run("aten.split.Tensor", {arange({0})}, {TensorArg{0}, int64_t{0}}, 1)[0].sizes(),
            (Shape{0}));
  EXPECT_EQ(to_doubles(run("aten.unsafe_split.Tensor", {in}, {TensorArg{0}, int64_t{4}}, 2)[1]),
            (Values{8, 9}));
  expect_error(op_call("aten.split.Tensor", {in}, {TensorArg{0}, int64_t{-1}}, 1),
               "expected a non-negative split_size, found -1");
  expect_error(op_call("aten.split.Tensor", {in}, {TensorArg{0}, int64_t{0}}, 1),
               "split_size can only be 0");
  expect_error(op_call("aten.split_with_sizes.default", {in}, {TensorArg{0}, Ints{2, 2}}, 2),
               "expected split sizes that sum to 5 (the size of dim 0), found [2, 2]");
}

TEST(ShapeOpViewTest, Chunk) {
  auto five = run("aten.chunk.default", {arange({5})}, {TensorArg{0}, int64_t{3}}, 3);
  ASSERT_EQ(five.size(), 3u);
  EXPECT_EQ(to_doubles(five[2]), (Values{4}));
  // 6 elements in 4 chunks of ceil(6/4) = 2: only 3 chunks, as PyTorch gives.
  EXPECT_EQ(run("aten.chunk.default", {arange({6})}, {TensorArg{0}, int64_t{4}}, 3).size(), 3u);
  auto empty =
      run("aten.chunk.default", {arange({2, 0})}, {TensorArg{0}, int64_t{3}, int64_t{1}}, 3);
  ASSERT_EQ(empty.size(), 3u);
  EXPECT_EQ(empty[2].sizes(), (Shape{2, 0}));
  expect_error(op_call("aten.chunk.default", {arange({5})}, {TensorArg{0}, int64_t{0}}, 1),
               "expected a positive number of chunks, found 0");
  expect_error(op_call("aten.chunk.default", {arange({})}, {TensorArg{0}, int64_t{1}}, 1),
               "rank >= 1");
}

// --- unfold, diagonal, as_strided ----------------------------------------------------------------

TEST(ShapeOpViewTest, Unfold) {
  Tensor u = run1("aten.unfold.default", {arange({10})},
                  {TensorArg{0}, int64_t{0}, int64_t{3}, int64_t{2}});
  EXPECT_EQ(u.sizes(), (Shape{4, 3}));
  EXPECT_EQ(u.strides(), (Shape{2, 1}));
  EXPECT_EQ(to_doubles(u), (Values{0, 1, 2, 2, 3, 4, 4, 5, 6, 6, 7, 8}));
  Tensor m = run1("aten.unfold_copy.default", {arange({3, 4})},
                  {TensorArg{0}, int64_t{-1}, int64_t{2}, int64_t{1}});
  EXPECT_EQ(m.sizes(), (Shape{3, 3, 2}));
  EXPECT_EQ(to_doubles(m), (Values{0, 1, 1, 2, 2, 3, 4, 5, 5, 6, 6, 7, 8, 9, 9, 10, 10, 11}));
  EXPECT_EQ(
      run1("aten.unfold.default", {arange({})}, {TensorArg{0}, int64_t{0}, int64_t{1}, int64_t{1}})
          .sizes(),
      (Shape{1}));
  expect_error(op_call("aten.unfold.default", {arange({3})},
                       {TensorArg{0}, int64_t{0}, int64_t{4}, int64_t{1}}),
               "expected a window size in [0, 3]");
  expect_error(op_call("aten.unfold.default", {arange({3})},
                       {TensorArg{0}, int64_t{0}, int64_t{2}, int64_t{0}}),
               "expected a positive step");
}

TEST(ShapeOpViewTest, Diagonal) {
  Tensor in = arange({2, 3, 4});
  Tensor d =
      run1("aten.diagonal.default", {in}, {TensorArg{0}, int64_t{1}, int64_t{1}, int64_t{2}});
  EXPECT_EQ(d.sizes(), (Shape{2, 3}));
  EXPECT_EQ(d.strides(), (Shape{12, 5}));
  EXPECT_EQ(d.offset(), 1);
  EXPECT_EQ(to_doubles(d), (Values{1, 6, 11, 13, 18, 23}));
  Tensor neg = run1("aten.diagonal_copy.default", {in},
                    {TensorArg{0}, int64_t{-1}, int64_t{-1}, int64_t{1}});
  EXPECT_EQ(to_doubles(neg), (Values{1, 6, 11, 13, 18, 23}));
  Tensor none = run1("aten.diagonal.default", {arange({2, 3})}, {TensorArg{0}, int64_t{5}});
  EXPECT_EQ(none.sizes(), (Shape{0}));
  expect_error(
      op_call("aten.diagonal.default", {in}, {TensorArg{0}, int64_t{0}, int64_t{0}, int64_t{-3}}),
      "expected two different dims");
}

TEST(ShapeOpViewTest, AsStrided) {
  Tensor in = arange({2, 3, 4});
  Tensor out =
      run1("aten.as_strided.default", {in}, {TensorArg{0}, Ints{3, 3}, Ints{2, 5}, int64_t{1}});
  EXPECT_EQ(out.storage(), in.storage());
  EXPECT_EQ(to_doubles(out), (Values{1, 6, 11, 3, 8, 13, 5, 10, 15}));
  // The default storage offset is the input's own.
  Tensor sliced = in.view_as({2, 2}, {1, 1}, 20);
  EXPECT_EQ(to_doubles(run1("aten.as_strided_copy.default", {sliced},
                            {TensorArg{0}, Ints{2, 2}, Ints{1, 1}})),
            (Values{20, 21, 21, 22}));
  expect_error(
      op_call("aten.as_strided.default", {in}, {TensorArg{0}, Ints{3, 3}, Ints{11, 1}, int64_t{1}}),
      "need 26 elements of storage, found 24");
  expect_error(op_call("aten.as_strided.default", {in}, {TensorArg{0}, Ints{3}, Ints{-1}}),
               "non-negative sizes and strides");
}

// --- cat, stack ----------------------------------------------------------------------------------

TEST(ShapeOpDataTest, Cat) {
  Tensor a = arange({2, 3, 4});
  // Two non-contiguous views of the same storage.
  Tensor out = run1("aten.cat.default",
                    {a.view_as({2, 3, 2}, {12, 4, 1}, 0), a.view_as({2, 3, 3}, {1, 8, 2}, 2)},
                    {std::vector<TensorArg>{{0}, {1}}, int64_t{-1}});
  EXPECT_EQ(out.sizes(), (Shape{2, 3, 5}));
  EXPECT_EQ(to_doubles(out), (Values{0,  1,  2, 4, 6, 4,  5,  10, 12, 14, 8,  9,  18, 20, 22,
                                     12, 13, 3, 5, 7, 16, 17, 11, 13, 15, 20, 21, 19, 21, 23}));
}

TEST(ShapeOpDataTest, CatSkipsLegacyEmptyAndPromotes) {
  Tensor i = arange({2, 2}, DType::kInt32);
  Tensor f = arange({2, 1}, DType::kFloat32);
  Tensor e = arange({0}, DType::kFloat64);
  Tensor out =
      run1("aten.cat.default", {i, e, f}, {std::vector<TensorArg>{{0}, {1}, {2}}, int64_t{1}});
  EXPECT_EQ(out.dtype(), DType::kFloat64);
  EXPECT_EQ(out.sizes(), (Shape{2, 3}));
  EXPECT_EQ(to_doubles(out), (Values{0, 1, 0, 2, 3, 1}));
  Tensor only_empty = run1("aten.cat.default", {e, e}, {std::vector<TensorArg>{{0}, {1}}});
  EXPECT_EQ(only_empty.sizes(), (Shape{0}));
  Tensor zero = run1("aten.cat.default", {arange({0, 3}), arange({2, 3})},
                     {std::vector<TensorArg>{{0}, {1}}});
  EXPECT_EQ(to_doubles(zero), (Values{0, 1, 2, 3, 4, 5}));
}

TEST(ShapeOpDataTest, CatErrors) {
  expect_error(op_call("aten.cat.default", {arange({2, 3}), arange({3, 3})},
                       {std::vector<TensorArg>{{0}, {1}}, int64_t{1}}),
               {"input 1 has shape [3, 3], expected size 2 in dim 0", "found 3"});
  expect_error(op_call("aten.cat.default", {arange({2, 3}), arange({2, 3, 1})},
                       {std::vector<TensorArg>{{0}, {1}}}),
               "input 0 has shape [2, 3], input 1 has shape [2, 3, 1]");
  expect_error(
      op_call("aten.cat.default", {arange({2}), arange({})}, {std::vector<TensorArg>{{0}, {1}}}),
      "input 1 is 0-d");
  expect_error(op_call("aten.cat.default", {}, {std::vector<TensorArg>{}}), "non-empty");
  expect_error(
      op_call("aten.cat.default", {arange({2, 3})}, {std::vector<TensorArg>{{0}}, int64_t{2}}),
      "dim 2 is out of range");
}

TEST(ShapeOpDataTest, Stack) {
  Tensor a = arange({2, 3, 4});
  Tensor out =
      run1("aten.stack.default", {a.view_as({3, 4}, {4, 1}, 0), a.view_as({3, 4}, {4, 1}, 12)},
           {std::vector<TensorArg>{{0}, {1}}, int64_t{-1}});
  EXPECT_EQ(out.sizes(), (Shape{3, 4, 2}));
  EXPECT_EQ(to_doubles(out), (Values{0, 12, 1, 13, 2, 14, 3, 15, 4,  16, 5,  17,
                                     6, 18, 7, 19, 8, 20, 9, 21, 10, 22, 11, 23}));
  Tensor mixed = run1("aten.stack.default", {arange({2}, DType::kInt64), arange({2}, DType::kBool)},
                      {std::vector<TensorArg>{{0}, {1}}});
  EXPECT_EQ(mixed.dtype(), DType::kInt64);
  EXPECT_EQ(to_doubles(mixed), (Values{0, 1, 0, 1}));
  expect_error(op_call("aten.stack.default", {arange({2, 3}), arange({2, 4})},
                       {std::vector<TensorArg>{{0}, {1}}}),
               "found [2, 3] at input 0 and [2, 4] at input 1");
}

// --- pad, repeat, flip, roll, tril/triu, shuffles ------------------------------------------------

TEST(ShapeOpDataTest, ConstantPadNd) {
  Tensor y = arange({2, 3});
  Tensor out = run1("aten.constant_pad_nd.default", {y}, {TensorArg{0}, Ints{1, 2, -1, 1}, 7.0});
  EXPECT_EQ(out.sizes(), (Shape{2, 6}));
  EXPECT_EQ(to_doubles(out), (Values{7, 3, 4, 5, 7, 7, 7, 7, 7, 7, 7, 7}));
  EXPECT_EQ(to_doubles(run1("aten.constant_pad_nd.default", {permuted(y, {1, 0})},
                            {TensorArg{0}, Ints{-1, 0}})),
            (Values{3, 4, 5}));
  Tensor ints = run1("aten.constant_pad_nd.default", {arange({1, 2}, DType::kInt64)},
                     {TensorArg{0}, Ints{1, 1}, 1.7});
  EXPECT_EQ(to_doubles(ints), (Values{1, 0, 1, 1}));
  Tensor crop_all = run1("aten.constant_pad_nd.default", {y}, {TensorArg{0}, Ints{-2, -1}, 1.0});
  EXPECT_EQ(crop_all.sizes(), (Shape{2, 0}));
  expect_error(op_call("aten.constant_pad_nd.default", {y}, {TensorArg{0}, Ints{1}}),
               "expected an even number of pads");
  expect_error(op_call("aten.constant_pad_nd.default", {y}, {TensorArg{0}, Ints{-2, -2}}),
               "gives a negative size -1");
}

TEST(ShapeOpDataTest, RepeatAndTile) {
  Tensor y = arange({2, 3});
  Tensor r = run1("aten.repeat.default", {y}, {TensorArg{0}, Ints{2, 1, 2}});
  EXPECT_EQ(r.sizes(), (Shape{2, 2, 6}));
  EXPECT_EQ(to_doubles(r),
            (Values{0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5, 0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5}));
  Tensor t = run1("aten.tile.default", {permuted(y, {1, 0})}, {TensorArg{0}, Ints{2}});
  EXPECT_EQ(t.sizes(), (Shape{3, 4}));
  EXPECT_EQ(to_doubles(t), (Values{0, 3, 0, 3, 1, 4, 1, 4, 2, 5, 2, 5}));
  EXPECT_EQ(run1("aten.repeat.default", {y}, {TensorArg{0}, Ints{0, 2}}).sizes(), (Shape{0, 6}));
  expect_error(op_call("aten.repeat.default", {y}, {TensorArg{0}, Ints{2}}),
               "expected at least 2 repeats");
  expect_error(op_call("aten.repeat.default", {y}, {TensorArg{0}, Ints{2, -1}}),
               "non-negative repeats");
}

TEST(ShapeOpDataTest, Flip) {
  Tensor a = arange({2, 3, 4});
  EXPECT_EQ(to_doubles(run1("aten.flip.default", {a}, {TensorArg{0}, Ints{0, -1}})),
            (Values{15, 14, 13, 12, 19, 18, 17, 16, 23, 22, 21, 20,
                    3,  2,  1,  0,  7,  6,  5,  4,  11, 10, 9,  8}));
  EXPECT_EQ(
      to_doubles(run1("aten.flip.default", {permuted(a, {2, 0, 1})}, {TensorArg{0}, Ints{1}})),
      (Values{12, 16, 20, 0, 4, 8,  13, 17, 21, 1, 5, 9,
              14, 18, 22, 2, 6, 10, 15, 19, 23, 3, 7, 11}));
  EXPECT_EQ(to_doubles(run1("aten.flip.default", {arange({})}, {TensorArg{0}, Ints{0}})),
            (Values{0}));
  expect_error(op_call("aten.flip.default", {a}, {TensorArg{0}, Ints{0, -3}}),
               "appears multiple times");
}

TEST(ShapeOpDataTest, Roll) {
  Tensor a = arange({2, 3, 4});
  EXPECT_EQ(to_doubles(run1("aten.roll.default", {a}, {TensorArg{0}, Ints{1, -5}, Ints{2, 1}})),
            (Values{11, 8,  9,  10, 3,  0,  1,  2,  7,  4,  5,  6,
                    23, 20, 21, 22, 15, 12, 13, 14, 19, 16, 17, 18}));
  EXPECT_EQ(to_doubles(run1("aten.roll.default", {arange({2, 3})}, {TensorArg{0}, Ints{4}})),
            (Values{2, 3, 4, 5, 0, 1}));
  EXPECT_EQ(
      to_doubles(run1("aten.roll.default", {arange({10})}, {TensorArg{0}, Ints{1, 2}, Ints{0, 0}})),
      (Values{7, 8, 9, 0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(to_doubles(run1("aten.roll.default", {permuted(arange({2, 3}), {1, 0})},
                            {TensorArg{0}, Ints{1}})),
            (Values{5, 0, 3, 1, 4, 2}));
  EXPECT_EQ(run1("aten.roll.default", {arange({0, 2})}, {TensorArg{0}, Ints{1}, Ints{0}}).sizes(),
            (Shape{0, 2}));
  expect_error(op_call("aten.roll.default", {a}, {TensorArg{0}, Ints{1, 2}, Ints{0}}),
               "expected as many shifts as dims");
}

TEST(ShapeOpDataTest, TrilTriu) {
  Tensor z = testing::arange_tensor(DType::kFloat32, {3, 4}, 1.0);
  auto tri = [&](const char* op, const Tensor& t, int64_t k) {
    return to_doubles(run1(op, {t}, {TensorArg{0}, k}));
  };
  EXPECT_EQ(tri("aten.tril.default", z, 0), (Values{1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0}));
  EXPECT_EQ(tri("aten.tril.default", z, 1), (Values{1, 2, 0, 0, 5, 6, 7, 0, 9, 10, 11, 12}));
  EXPECT_EQ(tri("aten.tril.default", z, -1), (Values{0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0}));
  EXPECT_EQ(tri("aten.triu.default", z, 0), (Values{1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12}));
  EXPECT_EQ(tri("aten.triu.default", z, 2), (Values{0, 0, 3, 4, 0, 0, 0, 8, 0, 0, 0, 0}));
  EXPECT_EQ(tri("aten.triu.default", z, -1), (Values{1, 2, 3, 4, 5, 6, 7, 8, 0, 10, 11, 12}));
  EXPECT_EQ(tri("aten.triu.default", z, std::numeric_limits<int64_t>::max()), Values(12, 0.0));
  Tensor b = testing::make_tensor(DType::kBool, {2, 2, 2}, {1});
  EXPECT_EQ(tri("aten.tril.default", permuted(b, {0, 2, 1}), 0), (Values{1, 0, 1, 1, 1, 0, 1, 1}));
  expect_error(op_call("aten.tril.default", {arange({3})}, {TensorArg{0}}), "rank >= 2");
}

TEST(ShapeOpDataTest, PixelShuffle) {
  Tensor ps =
      run1("aten.pixel_shuffle.default", {arange({1, 8, 2, 2})}, {TensorArg{0}, int64_t{2}});
  EXPECT_EQ(ps.sizes(), (Shape{1, 2, 4, 4}));
  EXPECT_EQ(to_doubles(ps),
            (Values{0,  4,  1,  5,  8,  12, 9,  13, 2,  6,  3,  7,  10, 14, 11, 15,
                    16, 20, 17, 21, 24, 28, 25, 29, 18, 22, 19, 23, 26, 30, 27, 31}));
  Tensor pu = run1("aten.pixel_unshuffle.default", {arange({2, 4, 4})}, {TensorArg{0}, int64_t{2}});
  EXPECT_EQ(pu.sizes(), (Shape{8, 2, 2}));
  EXPECT_EQ(to_doubles(pu),
            (Values{0,  2,  8,  10, 1,  3,  9,  11, 4,  6,  12, 14, 5,  7,  13, 15,
                    16, 18, 24, 26, 17, 19, 25, 27, 20, 22, 28, 30, 21, 23, 29, 31}));
  Tensor round = run1("aten.pixel_unshuffle.default", {ps}, {TensorArg{0}, int64_t{2}});
  EXPECT_EQ(to_doubles(round), to_doubles(arange({1, 8, 2, 2})));
  expect_error(
      op_call("aten.pixel_shuffle.default", {arange({5, 2, 2})}, {TensorArg{0}, int64_t{2}}),
      "divisible by 4, found 5");
  expect_error(op_call("aten.pixel_shuffle.default", {arange({4, 2})}, {TensorArg{0}, int64_t{2}}),
               "rank >= 3");
  expect_error(
      op_call("aten.pixel_unshuffle.default", {arange({4, 3, 2})}, {TensorArg{0}, int64_t{2}}),
      "divisible by 2");
}

TEST(ShapeOpDataTest, ChannelShuffle) {
  Tensor out =
      run1("aten.channel_shuffle.default", {arange({1, 6, 2})}, {TensorArg{0}, int64_t{3}});
  EXPECT_EQ(to_doubles(out), (Values{0, 1, 4, 5, 8, 9, 2, 3, 6, 7, 10, 11}));
  expect_error(op_call("aten.native_channel_shuffle.default", {arange({1, 4, 3})},
                       {TensorArg{0}, int64_t{3}}),
               "divisible by 3 groups, found 4 channels");
}

// --- every dtype, and copies large enough for the thread pool -----------------------------------

TEST(ShapeOpDataTest, EveryDTypeMovesBytesUnchanged) {
  for (DType dtype : kAllDTypes) {
    SCOPED_TRACE(dtype_name(dtype));
    Tensor a = testing::make_tensor(dtype, {2, 3}, {1, -2, 3, 0, 5, 7});
    Tensor p = permuted(a, {1, 0});
    EXPECT_EQ(to_doubles(run1("aten.permute_copy.default", {a}, {TensorArg{0}, Ints{1, 0}})),
              to_doubles(p));
    // A non-contiguous tensor equal to `a`: the transpose of a's transposed copy.
    Tensor a_t = testing::make_tensor(dtype, {3, 2}, {1, 0, -2, 5, 3, 7});
    Tensor c =
        run1("aten.cat.default", {a, permuted(a_t, {1, 0})}, {std::vector<TensorArg>{{0}, {1}}});
    Values want = to_doubles(a);
    for (double v : to_doubles(a)) want.push_back(v);
    EXPECT_EQ(to_doubles(c), want);
    EXPECT_EQ(to_doubles(run1("aten.flip.default", {a}, {TensorArg{0}, Ints{1}})),
              to_doubles(a.view_as({2, 3}, {3, -1}, 2)));
  }
}

TEST(ShapeOpDataTest, LargeCopiesMatchElementwiseReference) {
  const int64_t rows = 300, cols = 1000;
  Tensor a = arange({rows, cols}), b = arange({rows, 7}, DType::kFloat32);
  Tensor c = run1("aten.cat.default", {a, b}, {std::vector<TensorArg>{{0}, {1}}, int64_t{1}});
  ASSERT_EQ(c.sizes(), (Shape{rows, cols + 7}));
  const float* cd = c.data<float>();
  int bad = 0;
  for (int64_t i = 0; i < rows && bad < 5; ++i) {
    for (int64_t j = 0; j < cols + 7; ++j) {
      const float want =
          j < cols ? static_cast<float>(i * cols + j) : static_cast<float>(i * 7 + j - cols);
      if (cd[i * (cols + 7) + j] != want) ++bad;
    }
  }
  EXPECT_EQ(bad, 0);
  Tensor t = run1("aten.t_copy.default", {a}, {TensorArg{0}});
  const float* td = t.data<float>();
  for (int64_t i = 0; i < cols && bad < 5; ++i) {
    for (int64_t j = 0; j < rows; ++j) bad += td[i * rows + j] != static_cast<float>(j * cols + i);
  }
  EXPECT_EQ(bad, 0);
  Tensor flat = run1("aten.view_copy.default", {a}, {TensorArg{0}, Ints{-1}});
  EXPECT_EQ(to_doubles(flat), to_doubles(a));
}

}  // namespace
}  // namespace kiln
