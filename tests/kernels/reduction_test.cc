// Conformance cases for the reduction ops. Expected values are hand-computed or were computed with
// PyTorch 2.11 eager and hard-coded; random cases compare against naive double-precision loops.
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/kernel_expect.h"
#include "support/kernel_values.h"

namespace kiln::testing {
namespace {

using Ints = std::vector<int64_t>;

// A call of `target` on the single input `x`, with `args` after it.
OpCall op(const char* target, Tensor x, std::vector<TestArg> args = {},
          std::map<std::string, TestArg> kwargs = {}) {
  args.insert(args.begin(), TensorArg{0});
  return {.target = target,
          .inputs = {std::move(x)},
          .args = std::move(args),
          .kwargs = std::move(kwargs)};
}

// [[0, 1, 2], [3, 4, 5]]
Tensor arange23() {
  return arange_tensor(DType::kFloat32, {2, 3});
}

TEST(ReductionTest, SumAllDtypes) {
  for (DType d : {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64}) {
    auto out = run(op("aten.sum.default", arange_tensor(d, {2, 3})));
    expect_tensor(out[0], d, {}, {15});
  }
  // Integral and bool inputs sum into int64 (no uint8 wrap-around).
  auto i32 = run(op("aten.sum.default", make_tensor(DType::kInt32, {3}, {1, 2, 3})));
  expect_tensor(i32[0], DType::kInt64, {}, {6});
  auto u8 = run(op("aten.sum.default", make_tensor(DType::kUInt8, {2}, {200, 200})));
  expect_tensor(u8[0], DType::kInt64, {}, {400});
  auto b = run(op("aten.sum.default", make_tensor(DType::kBool, {3}, {1, 0, 1})));
  expect_tensor(b[0], DType::kInt64, {}, {2});
}

TEST(ReductionTest, SumDtypeArgumentConvertsFirst) {
  auto half = run(op("aten.sum.default", make_tensor(DType::kInt64, {2}, {1, 2}), {},
                     {{"dtype", DType::kFloat16}}));
  expect_tensor(half[0], DType::kFloat16, {}, {3});
  // Each element truncates to int32 before summing: 1 + 2.
  auto i32 = run(op("aten.sum.dim_IntList", make_tensor(DType::kFloat32, {2}, {1.5, 2.5}),
                    {ir::NoneArg{}}, {{"dtype", DType::kInt32}}));
  expect_tensor(i32[0], DType::kInt32, {}, {3});
}

TEST(ReductionTest, SumDimsKeepdimNegative) {
  auto out = run(
      op("aten.sum.dim_IntList", arange_tensor(DType::kFloat32, {2, 3, 4}), {Ints{-1, 0}, true}));
  expect_tensor(out[0], DType::kFloat32, {1, 3, 1}, {60, 92, 124});
  auto no_keep =
      run(op("aten.sum.dim_IntList", arange_tensor(DType::kFloat32, {2, 3, 4}), {Ints{1}}));
  expect_tensor(no_keep[0], DType::kFloat32, {2, 4}, {12, 15, 18, 21, 48, 51, 54, 57});
}

TEST(ReductionTest, SumNoneAndEmptyDimListReduceEverything) {
  auto none = run(op("aten.sum.dim_IntList", arange23(), {ir::NoneArg{}}));
  expect_tensor(none[0], DType::kFloat32, {}, {15});
  auto empty = run(op("aten.sum.dim_IntList", arange23(), {Ints{}, true}));
  expect_tensor(empty[0], DType::kFloat32, {1, 1}, {15});
}

TEST(ReductionTest, SumNonContiguousInput) {
  // transposed: [[0,3],[1,4],[2,5]]
  auto out = run(op("aten.sum.dim_IntList", transposed(arange23()), {Ints{0}}));
  expect_tensor(out[0], DType::kFloat32, {2}, {3, 12});
  auto rows = run(op("aten.sum.dim_IntList", transposed(arange23()), {Ints{1}}));
  expect_tensor(rows[0], DType::kFloat32, {3}, {3, 5, 7});
}

TEST(ReductionTest, SumEmptyAndZeroDim) {
  const Tensor empty = make_tensor(DType::kFloat32, {0, 3}, {});
  auto all = run(op("aten.sum.default", empty));
  expect_tensor(all[0], DType::kFloat32, {}, {0});
  auto d0 = run(op("aten.sum.dim_IntList", empty, {Ints{0}}));
  expect_tensor(d0[0], DType::kFloat32, {3}, {0, 0, 0});
  auto d1 = run(op("aten.sum.dim_IntList", empty, {Ints{1}}));
  expect_tensor(d1[0], DType::kFloat32, {0}, {});
  const Tensor scalar = make_tensor(DType::kFloat32, {}, {2.5});
  auto s = run(op("aten.sum.dim_IntList", scalar, {Ints{-1}, true}));
  expect_tensor(s[0], DType::kFloat32, {}, {2.5});
}

TEST(ReductionTest, SumBadDimsAreErrors) {
  expect_error(op("aten.sum.dim_IntList", arange23(), {Ints{5}}),
               "dim 5 is out of range for a tensor of rank 2");
  expect_error(op("aten.sum.dim_IntList", arange23(), {Ints{0, -2}}), "appears more than once");
}

TEST(ReductionTest, SumLargeMatchesNaiveReferenceInParallel) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<double> values(300 * 517);
  for (double& v : values) v = static_cast<float>(dist(rng));
  const Tensor x = make_tensor(DType::kFloat32, {300, 517}, values);
  for (int64_t dim : {0, 1}) {
    auto out = run(op("aten.sum.dim_IntList", x, {Ints{dim}}));
    std::vector<double> want(dim == 0 ? 517 : 300, 0.0);
    for (int64_t i = 0; i < 300; ++i) {
      for (int64_t j = 0; j < 517; ++j) want[dim == 0 ? j : i] += values[i * 517 + j];
    }
    expect_tensor(out[0], DType::kFloat32, {static_cast<int64_t>(want.size())}, want);
  }
}

TEST(ReductionTest, MeanFloatTypesEmptyAndErrors) {
  auto rows = run(op("aten.mean.dim", arange23(), {Ints{1}, true}));
  expect_tensor(rows[0], DType::kFloat32, {2, 1}, {1, 4});
  auto half = run(op("aten.mean.default", make_tensor(DType::kFloat16, {2}, {1, 2})));
  expect_tensor(half[0], DType::kFloat16, {}, {1.5});
  auto bf = run(op("aten.mean.dim", arange_tensor(DType::kBFloat16, {2, 3}), {ir::NoneArg{}}));
  expect_tensor(bf[0], DType::kBFloat16, {}, {2.5});
  auto empty = run(op("aten.mean.default", make_tensor(DType::kFloat32, {0}, {})));
  expect_tensor(empty[0], DType::kFloat32, {}, {kNaN});
  auto with_dtype = run(op("aten.mean.default", make_tensor(DType::kInt64, {2}, {1, 2}), {},
                           {{"dtype", DType::kFloat32}}));
  expect_tensor(with_dtype[0], DType::kFloat32, {}, {1.5});
  auto nc = run(op("aten.mean.dim", transposed(arange23()), {Ints{-1}}));
  expect_tensor(nc[0], DType::kFloat32, {3}, {1.5, 2.5, 3.5});
  expect_error(op("aten.mean.default", make_tensor(DType::kInt64, {2}, {1, 2})),
               "expected a floating point input, found int64");
  expect_error(op("aten.mean.default", arange23(), {}, {{"dtype", DType::kInt64}}),
               "expected a floating point dtype argument, found int64");
}

TEST(ReductionTest, Prod) {
  auto all = run(op("aten.prod.default", make_tensor(DType::kFloat32, {4}, {1, 2, 3, 4})));
  expect_tensor(all[0], DType::kFloat32, {}, {24});
  auto rows = run(op("aten.prod.dim_int", arange23(), {int64_t{-1}, true}));
  expect_tensor(rows[0], DType::kFloat32, {2, 1}, {0, 60});
  auto i32 =
      run(op("aten.prod.dim_int", make_tensor(DType::kInt32, {2, 2}, {2, 3, 4, 5}), {int64_t{0}}));
  expect_tensor(i32[0], DType::kInt64, {2}, {8, 15});
  auto b = run(op("aten.prod.default", make_tensor(DType::kBool, {2}, {1, 1})));
  expect_tensor(b[0], DType::kInt64, {}, {1});
  auto empty = run(op("aten.prod.default", make_tensor(DType::kFloat32, {0}, {})));
  expect_tensor(empty[0], DType::kFloat32, {}, {1});
  auto nc = run(op("aten.prod.dim_int", transposed(arange23()), {int64_t{1}}));
  expect_tensor(nc[0], DType::kFloat32, {3}, {0, 4, 10});
}

Tensor min_max_input() {
  return make_tensor(DType::kFloat32, {2, 3}, {1, 5, 3, 7, 2, 7});
}

TEST(ReductionTest, AmaxAmin) {
  auto all = run(op("aten.amax.default", min_max_input()));
  expect_tensor(all[0], DType::kFloat32, {}, {7});
  auto keep = run(op("aten.amin.default", min_max_input(), {Ints{-1}, true}));
  expect_tensor(keep[0], DType::kFloat32, {2, 1}, {1, 2});
  auto both = run(op("aten.amax.default", min_max_input(), {Ints{0, 1}}));
  expect_tensor(both[0], DType::kFloat32, {}, {7});
  auto nc = run(op("aten.amax.default", transposed(min_max_input()), {Ints{1}}));
  expect_tensor(nc[0], DType::kFloat32, {3}, {7, 5, 7});
  for (DType d : {DType::kFloat16, DType::kBFloat16, DType::kInt32, DType::kInt64, DType::kUInt8}) {
    auto out = run(op("aten.amin.default", arange_tensor(d, {2, 3}, 3), {Ints{0}}));
    expect_tensor(out[0], d, {3}, {3, 4, 5});
  }
  auto b = run(op("aten.amax.default", make_tensor(DType::kBool, {2}, {1, 0})));
  expect_tensor(b[0], DType::kBool, {}, {1});
}

TEST(ReductionTest, AmaxPropagatesNaNAndRejectsEmptyReductions) {
  const Tensor x = make_tensor(DType::kFloat32, {4}, {1, kNaN, 3, kNaN});
  for (const char* target :
       {"aten.amax.default", "aten.amin.default", "aten.max.default", "aten.min.default"}) {
    auto out = run(op(target, x));
    expect_tensor(out[0], DType::kFloat32, {}, {kNaN});
  }
  const Tensor empty = make_tensor(DType::kFloat32, {0, 3}, {});
  auto ok = run(op("aten.amax.default", empty, {Ints{1}}));
  expect_tensor(ok[0], DType::kFloat32, {0}, {});
  expect_error(op("aten.amax.default", empty), "expected reduction dim 0 to have non-zero size");
  expect_error(op("aten.max.default", empty), "no identity");
  expect_error(op("aten.amin.default", empty, {Ints{3}}), "out of range");
}

TEST(ReductionTest, MaxMinDimGiveValuesAndFirstIndices) {
  auto max = run(
      {.target = "aten.max.dim", .inputs = {min_max_input()}, .args = {TensorArg{0}, int64_t{1}}});
  expect_tensor(max[0], DType::kFloat32, {2}, {5, 7});
  expect_tensor(max[1], DType::kInt64, {2}, {1, 0});  // ties: first occurrence
  auto min = run(op("aten.min.dim", min_max_input(), {int64_t{-2}, true}));
  expect_tensor(min[0], DType::kFloat32, {1, 3}, {1, 2, 3});
  expect_tensor(min[1], DType::kInt64, {1, 3}, {0, 1, 0});
  auto nan =
      run(op("aten.max.dim", make_tensor(DType::kFloat32, {4}, {1, kNaN, 3, kNaN}), {int64_t{0}}));
  expect_tensor(nan[0], DType::kFloat32, {}, {kNaN});
  expect_tensor(nan[1], DType::kInt64, {}, {1});
  auto ints =
      run(op("aten.max.dim", make_tensor(DType::kInt64, {2, 2}, {1, 5, 7, 2}), {int64_t{1}}));
  expect_tensor(ints[0], DType::kInt64, {2}, {5, 7});
  expect_tensor(ints[1], DType::kInt64, {2}, {1, 0});
  auto scalar = run(op("aten.min.dim", make_tensor(DType::kFloat16, {}, {3}), {int64_t{0}}));
  expect_tensor(scalar[0], DType::kFloat16, {}, {3});
  expect_tensor(scalar[1], DType::kInt64, {}, {0});
  auto nc = run(op("aten.max.dim", transposed(min_max_input()), {int64_t{0}}));
  expect_tensor(nc[0], DType::kFloat32, {2}, {5, 7});
  expect_tensor(nc[1], DType::kInt64, {2}, {1, 0});
  expect_error(op("aten.max.dim", make_tensor(DType::kFloat32, {0, 3}, {}), {int64_t{0}}),
               "expected reduction dim 0 to have non-zero size");
}

TEST(ReductionTest, ArgmaxArgmin) {
  auto flat = run(op("aten.argmax.default", min_max_input()));
  expect_tensor(flat[0], DType::kInt64, {}, {3});
  auto keep = run(op("aten.argmax.default", min_max_input(), {ir::NoneArg{}, true}));
  expect_tensor(keep[0], DType::kInt64, {1, 1}, {3});
  auto rows = run(op("aten.argmin.default", min_max_input(), {int64_t{-1}}));
  expect_tensor(rows[0], DType::kInt64, {2}, {0, 1});
  // Flattened index over a transposed view is in the view's own row-major order.
  auto nc = run(op("aten.argmax.default", transposed(min_max_input())));
  expect_tensor(nc[0], DType::kInt64, {}, {1});
  auto nan = run(op("aten.argmin.default", make_tensor(DType::kBFloat16, {4}, {1, kNaN, 0, kNaN})));
  expect_tensor(nan[0], DType::kInt64, {}, {1});
  expect_error(op("aten.argmax.default", make_tensor(DType::kBool, {2}, {1})),
               "does not support bool");
  expect_error(op("aten.argmax.default", make_tensor(DType::kFloat32, {0, 3}, {})),
               "non-zero size");
}

TEST(ReductionTest, CountNonzero) {
  const Tensor x = make_tensor(DType::kFloat32, {2, 3}, {0, 1, kNaN, 2, 0, 0});
  expect_tensor(run(op("aten.count_nonzero.dim_IntList", x, {Ints{}}))[0], DType::kInt64, {}, {3});
  expect_tensor(run(op("aten.count_nonzero.dim_IntList", transposed(x), {Ints{0}}))[0],
                DType::kInt64, {2}, {2, 1});
  expect_tensor(run(op("aten.count_nonzero.default", x, {int64_t{-2}}))[0], DType::kInt64, {3},
                {1, 1, 1});
  expect_tensor(run(op("aten.count_nonzero.default", make_tensor(DType::kBool, {}, {1})))[0],
                DType::kInt64, {}, {1});
  expect_error(op("aten.count_nonzero.dim_IntList", x, {Ints{0, 0}}), "appears more than once");
}

TEST(ReductionTest, AnyAll) {
  const Tensor x = make_tensor(DType::kFloat32, {2, 3}, {0, 0, 0, 1, kNaN, 2});
  auto any = run(op("aten.any.default", x));
  expect_tensor(any[0], DType::kBool, {}, {1});
  auto all_rows = run(op("aten.all.dim", x, {int64_t{1}, true}));
  expect_tensor(all_rows[0], DType::kBool, {2, 1}, {0, 1});  // nan counts as true
  auto any_cols = run(op("aten.any.dims", transposed(x), {Ints{-1}}));
  expect_tensor(any_cols[0], DType::kBool, {3}, {1, 1, 1});
  // any.dims: None reduces everything, [] reduces nothing.
  auto none = run(op("aten.all.dims", x, {ir::NoneArg{}, true}));
  expect_tensor(none[0], DType::kBool, {1, 1}, {0});
  auto nothing = run({.target = "aten.any.dims", .inputs = {x}, .args = {TensorArg{0}, Ints{}}});
  expect_tensor(nothing[0], DType::kBool, {2, 3}, {0, 0, 0, 1, 1, 1});
  auto u8 = run(op("aten.all.dim", make_tensor(DType::kUInt8, {1, 2}, {0, 2}), {int64_t{1}}));
  expect_tensor(u8[0], DType::kUInt8, {1}, {0});
  const Tensor empty = make_tensor(DType::kInt64, {0}, {});
  expect_tensor(run(op("aten.any.default", empty))[0], DType::kBool, {}, {0});
  expect_tensor(run(op("aten.all.default", empty))[0], DType::kBool, {}, {1});
  expect_error(op("aten.any.dim", x, {int64_t{2}}), "out of range");
}

Tensor var_input() {
  return make_tensor(DType::kFloat32, {2, 3}, {1, 5, 3, 7, 2, 7});
}

TEST(ReductionTest, VarStdCorrection) {
  auto var0 = run(op("aten.var.correction", var_input(), {Ints{1}}, {{"correction", int64_t{0}}}));
  expect_tensor(var0[0], DType::kFloat32, {2}, {2.6666667, 5.5555553});
  auto std1 = run(op("aten.std.correction", var_input(), {Ints{-1}}, {{"keepdim", true}}));
  expect_tensor(std1[0], DType::kFloat32, {2, 1}, {2.0, 2.8867514});
  auto all = run(op("aten.var.correction", make_tensor(DType::kFloat32, {3}, {1, 2, 4}),
                    {ir::NoneArg{}}, {{"correction", 2.5}}));
  expect_tensor(all[0], DType::kFloat32, {}, {9.333333});
  auto half = run(op("aten.var.correction", make_tensor(DType::kFloat16, {3}, {1, 2, 4})));
  expect_tensor(half[0], DType::kFloat16, {}, {2.333984375}, 1e-3);
  auto nc = run(op("aten.var.correction", transposed(var_input()), {Ints{0}}));
  expect_tensor(nc[0], DType::kFloat32, {2}, {4.0, 8.333333});
}

TEST(ReductionTest, VarDegenerateCountsAndErrors) {
  // n = 1 with correction 1: 0 / 0 is nan; n - correction < 0 with spread data: inf.
  auto one = run(op("aten.var.correction", make_tensor(DType::kFloat32, {1}, {1})));
  expect_tensor(one[0], DType::kFloat32, {}, {kNaN});
  auto inf = run(op("aten.var.correction", make_tensor(DType::kFloat32, {2}, {1, 2}), {},
                    {{"correction", int64_t{3}}}));
  expect_tensor(inf[0], DType::kFloat32, {}, {kInf});
  auto empty = run(op("aten.std.correction", make_tensor(DType::kFloat32, {0}, {})));
  expect_tensor(empty[0], DType::kFloat32, {}, {kNaN});
  // var_mean's mean follows PyTorch's running (Welford) mean: an inf last gives inf, earlier nan.
  auto inf_last =
      run(op("aten.var_mean.correction",
             make_tensor(DType::kFloat32, {2, 3}, {1, 2, kInf, kInf, 1, 2}), {Ints{1}}));
  expect_tensor(inf_last[0], DType::kFloat32, {2}, {kNaN, kNaN});
  expect_tensor(inf_last[1], DType::kFloat32, {2}, {kInf, kNaN});
  expect_error(op("aten.var.correction", make_tensor(DType::kInt64, {2}, {1, 2})),
               "expect a floating point input, found int64");
}

TEST(ReductionTest, VarMeanStdMeanAndOlderSpellings) {
  auto vm = run(op("aten.var_mean.correction", var_input(), {Ints{0}}));
  expect_tensor(vm[0], DType::kFloat32, {3}, {18, 4.5, 8});
  expect_tensor(vm[1], DType::kFloat32, {3}, {4, 3.5, 5});
  auto sm = run(op("aten.std_mean.correction", var_input(), {Ints{1}}, {{"keepdim", true}}));
  expect_tensor(sm[0], DType::kFloat32, {2, 1}, {2.0, 2.8867514});
  expect_tensor(sm[1], DType::kFloat32, {2, 1}, {3.0, 5.3333335});
  auto std_all = run(op("aten.std.default", arange23()));
  expect_tensor(std_all[0], DType::kFloat32, {}, {1.8708287});
  auto var_biased = run(op("aten.var.dim", arange23(), {ir::NoneArg{}, false}));
  expect_tensor(var_biased[0], DType::kFloat32, {}, {2.9166667});
}

TEST(ReductionTest, CumsumCumprod) {
  auto rows = run(op("aten.cumsum.default", arange23(), {int64_t{1}}));
  expect_tensor(rows[0], DType::kFloat32, {2, 3}, {0, 1, 3, 3, 7, 12});
  auto cols =
      run(op("aten.cumprod.default", arange_tensor(DType::kFloat32, {2, 3}, 1), {int64_t{-2}}));
  expect_tensor(cols[0], DType::kFloat32, {2, 3}, {1, 2, 3, 4, 10, 18});
  // transposed arange23: [[0,3],[1,4],[2,5]]
  auto nc = run(op("aten.cumsum.default", transposed(arange23()), {int64_t{0}}));
  expect_tensor(nc[0], DType::kFloat32, {3, 2}, {0, 3, 1, 7, 3, 12});
  auto i32 = run(op("aten.cumsum.default", make_tensor(DType::kInt32, {2}, {1, 2}), {int64_t{0}}));
  expect_tensor(i32[0], DType::kInt64, {2}, {1, 3});
  auto u8 =
      run(op("aten.cumprod.default", make_tensor(DType::kUInt8, {2}, {20, 20}), {int64_t{0}}));
  expect_tensor(u8[0], DType::kInt64, {2}, {20, 400});
  auto b = run(op("aten.cumsum.default", make_tensor(DType::kBool, {3}, {1, 0, 1}), {int64_t{0}}));
  expect_tensor(b[0], DType::kInt64, {3}, {1, 1, 2});
  auto dtype = run(op("aten.cumsum.default", make_tensor(DType::kFloat32, {2}, {1.5, 2.5}),
                      {int64_t{0}}, {{"dtype", DType::kInt64}}));
  expect_tensor(dtype[0], DType::kInt64, {2}, {1, 3});
  auto half = run(op("aten.cumsum.default", arange_tensor(DType::kBFloat16, {4}), {int64_t{0}}));
  expect_tensor(half[0], DType::kBFloat16, {4}, {0, 1, 3, 6});
  auto scalar =
      run(op("aten.cumsum.default", make_tensor(DType::kFloat32, {}, {3}), {int64_t{-1}}));
  expect_tensor(scalar[0], DType::kFloat32, {}, {3});
  auto empty =
      run(op("aten.cumsum.default", make_tensor(DType::kFloat32, {0, 2}, {}), {int64_t{0}}));
  expect_tensor(empty[0], DType::kFloat32, {0, 2}, {});
  expect_error(
      {.target = "aten.cumsum.default", .inputs = {arange23()}, .args = {TensorArg{0}, int64_t{2}}},
      "out of range");
}

TEST(ReductionTest, Logsumexp) {
  auto rows = run(op("aten.logsumexp.default", arange23(), {Ints{1}}));
  expect_tensor(rows[0], DType::kFloat32, {2}, {2.4076059, 5.4076061});
  auto ints =
      run(op("aten.logsumexp.default", make_tensor(DType::kInt64, {2}, {1, 2}), {Ints{0}, true}));
  expect_tensor(ints[0], DType::kFloat32, {1}, {2.3132617});
  auto inf = run(op("aten.logsumexp.default",
                    make_tensor(DType::kFloat32, {2, 2}, {kInf, 1, -kInf, -kInf}), {Ints{1}}));
  expect_tensor(inf[0], DType::kFloat32, {2}, {kInf, -kInf});
  auto empty =
      run(op("aten.logsumexp.default", make_tensor(DType::kFloat32, {0, 2}, {}), {Ints{0}}));
  expect_tensor(empty[0], DType::kFloat32, {2}, {-kInf, -kInf});
  auto half =
      run(op("aten.logsumexp.default", make_tensor(DType::kFloat16, {2}, {1, kNaN}), {Ints{0}}));
  expect_tensor(half[0], DType::kFloat16, {}, {kNaN});
  auto nc = run(op("aten.logsumexp.default", transposed(arange23()), {Ints{0}}));
  expect_tensor(nc[0], DType::kFloat32, {2}, {2.4076059, 5.4076061});
}

TEST(ReductionTest, LinalgVectorNormOrders) {
  const Tensor v = make_tensor(DType::kFloat32, {2, 3}, {3, -4, 0, 1, 2, -2});
  struct Case {
    double ord;
    std::vector<double> rows;
    double all;
  };
  for (const Case& c : std::vector<Case>{{2, {5, 3}, 5.8309517},
                                         {1, {7, 5}, 12},
                                         {kInf, {4, 2}, 4},
                                         {-kInf, {0, 1}, 0},
                                         {0, {2, 3}, 5},
                                         {3, {4.4979415, 2.5712817}, 4.7622032},
                                         {-1, {0, 0.5}, 0}}) {
    auto rows = run(op("aten.linalg_vector_norm.default", v, {c.ord, Ints{1}}));
    expect_tensor(rows[0], DType::kFloat32, {2}, c.rows);
    auto all = run(op("aten.linalg_vector_norm.default", v, {c.ord}));
    expect_tensor(all[0], DType::kFloat32, {}, {c.all});
  }
}

TEST(ReductionTest, LinalgVectorNormDtypesAndErrors) {
  auto widened =
      run(op("aten.linalg_vector_norm.default", make_tensor(DType::kFloat16, {3}, {1, 2, 3}),
             {int64_t{2}, ir::NoneArg{}, true}, {{"dtype", DType::kFloat32}}));
  expect_tensor(widened[0], DType::kFloat32, {1}, {3.7416575});
  auto nc = run(op("aten.linalg_vector_norm.default",
                   transposed(make_tensor(DType::kFloat32, {2, 2}, {3, 1, 4, 1})),
                   {int64_t{2}, Ints{-1}}));
  expect_tensor(nc[0], DType::kFloat32, {2}, {5, 1.4142135});
  auto nan = run(op("aten.linalg_vector_norm.default",
                    make_tensor(DType::kFloat32, {3}, {1, kNaN, kInf}), {kInf}));
  expect_tensor(nan[0], DType::kFloat32, {}, {kNaN});
  auto empty = run(op("aten.linalg_vector_norm.default", make_tensor(DType::kFloat32, {0}, {})));
  expect_tensor(empty[0], DType::kFloat32, {}, {0});
  expect_error(op("aten.linalg_vector_norm.default", make_tensor(DType::kFloat32, {0}, {}), {kInf}),
               "non-zero size");
  expect_error(op("aten.linalg_vector_norm.default", make_tensor(DType::kInt64, {2}, {1, 2})),
               "expected a floating point input, found int64");
  expect_error(op("aten.linalg_vector_norm.default", arange23(), {}, {{"dtype", DType::kFloat16}}),
               "without narrowing");
}

TEST(ReductionTest, NormScalarAndDim) {
  const Tensor v = make_tensor(DType::kFloat32, {1, 2}, {3, 4});
  auto all = run(op("aten.norm.Scalar", v));
  expect_tensor(all[0], DType::kFloat32, {}, {5});
  auto dims = run(op("aten.norm.ScalarOpt_dim", v, {ir::NoneArg{}, Ints{1}, true}));
  expect_tensor(dims[0], DType::kFloat32, {1, 1}, {5});
  auto l1 = run(op("aten.norm.ScalarOpt_dim", v, {int64_t{1}, Ints{}}));
  expect_tensor(l1[0], DType::kFloat32, {}, {7});
}

}  // namespace
}  // namespace kiln::testing
