// Conformance of the factory ops (inference + CPU kernels) with PyTorch 2.11 eager. Expected
// values were computed with torch on CPU and are hard-coded here.
#include <gtest/gtest.h>

#include "support/kernel_expect.h"
#include "support/kernel_values.h"

namespace kiln::testing {
namespace {

std::vector<double> repeat(double v, size_t n) {
  return std::vector<double>(n, v);
}

OpCall full(std::vector<int64_t> size, TestArg fill, std::optional<DType> dtype = std::nullopt) {
  OpCall call{.target = "aten.full.default", .args = {size, fill}};
  if (dtype) call.kwargs["dtype"] = *dtype;
  return call;
}

TEST(FactoryFull, DtypeFromFillValue) {
  expect_tensor(run1(full({2, 3}, 1.5)), kF32, {2, 3}, repeat(1.5, 6), kTightTol);
  expect_tensor(run1(full({2}, int64_t{3})), kI64, {2}, {3, 3}, kTightTol);
  expect_tensor(run1(full({2}, true)), kBool, {2}, {1, 1}, kTightTol);
  expect_tensor(run1(full({}, -2.0)), kF32, {}, {-2}, kTightTol);
  expect_tensor(run1(full({0, 4}, 1.0)), kF32, {0, 4}, {}, kTightTol);
}

TEST(FactoryFull, ExplicitDtypeConversions) {
  expect_tensor(run1(full({2}, 2.7, kI64)), kI64, {2}, {2, 2}, kTightTol);
  expect_tensor(run1(full({2}, -2.7, kI32)), kI32, {2}, {-2, -2}, kTightTol);
  expect_tensor(run1(full({2}, int64_t{-1}, kU8)), kU8, {2}, {255, 255}, kTightTol);
  expect_tensor(run1(full({2}, 2.5, kBool)), kBool, {2}, {1, 1}, kTightTol);
  expect_tensor(run1(full({2}, true, kF32)), kF32, {2}, {1, 1}, kTightTol);
  expect_tensor(run1(full({2}, kNaN, kF16)), kF16, {2}, {kNaN, kNaN}, kTightTol);
  expect_tensor(run1(full({2}, kInf, kBF16)), kBF16, {2}, {kInf, kInf}, kTightTol);
  expect_tensor(run1(full({2}, 0.1, kF64)), kF64, {2}, {0.1, 0.1}, 0);
  expect_tensor(run1(full({2}, 1e38, kBF16)), kBF16, {2}, repeat(9.969209968386869e+37, 2),
                kTightTol);
}

TEST(FactoryFull, OverflowAndShapeErrors) {
  expect_error(full({2}, int64_t{300}, kU8), {"value 300 cannot be converted to uint8"});
  expect_error(full({2}, int64_t{-256}, kU8), {"value -256 cannot be converted to uint8"});
  expect_error(full({2}, int64_t{-129}, kI8), {"cannot be converted to int8"});
  expect_error(full({2}, 1e10, kI32), {"cannot be converted to int32 without overflow"});
  expect_error(full({2}, kNaN, kI32), {"cannot be converted to int32"});
  expect_error(full({2}, -0.5, kU8), {"cannot be converted to uint8"});
  expect_error(full({2}, 70000.0, kF16), {"value 70000 cannot be converted to float16"});
  expect_error(full({2}, 1e39, kF32), {"cannot be converted to float32"});
  expect_error(full({-1}, 3.0), {"expected non-negative sizes, found [-1]"});
}

TEST(FactoryFull, LikeAndNew) {
  const Tensor self = make_tensor(kI32, {2, 3}, {7});
  // A transposed self: the result has self's logical shape.
  const Tensor t = self.view_as({3, 2}, {1, 3}, 0);
  expect_tensor(
      run1({.target = "aten.full_like.default", .inputs = {t}, .args = {TensorArg{0}, 2.7}}), kI32,
      {3, 2}, repeat(2, 6), kTightTol);
  expect_tensor(run1({.target = "aten.full_like.default",
                      .inputs = {self},
                      .args = {TensorArg{0}, 2.5},
                      .kwargs = {{"dtype", kF16}}}),
                kF16, {2, 3}, repeat(2.5, 6), kTightTol);
  expect_error({.target = "aten.full_like.default",
                .inputs = {make_tensor(kU8, {1}, {0})},
                .args = {TensorArg{0}, int64_t{300}}},
               {"cannot be converted to uint8"});
  expect_tensor(run1({.target = "aten.new_full.default",
                      .inputs = {self},
                      .args = {TensorArg{0}, std::vector<int64_t>{4}, 2.7}}),
                kI32, {4}, repeat(2, 4), kTightTol);
  expect_tensor(run1({.target = "aten.new_zeros.default",
                      .inputs = {self},
                      .args = {TensorArg{0}, std::vector<int64_t>{2, 2}},
                      .kwargs = {{"dtype", kBool}}}),
                kBool, {2, 2}, repeat(0, 4), kTightTol);
  expect_tensor(run1({.target = "aten.new_ones.default",
                      .inputs = {self},
                      .args = {TensorArg{0}, std::vector<int64_t>{3}}}),
                kI32, {3}, repeat(1, 3), kTightTol);
  expect_tensor(run1({.target = "aten.new_empty.default",
                      .inputs = {self},
                      .args = {TensorArg{0}, std::vector<int64_t>{0, 2}}}),
                kI32, {0, 2}, {}, kTightTol);
  expect_tensor(
      run1({.target = "aten.new_empty_strided.default",
            .inputs = {self},
            .args = {TensorArg{0}, std::vector<int64_t>{2, 2}, std::vector<int64_t>{1, 2}}}),
      kI32, {2, 2}, repeat(0, 4), kTightTol);
  for (const char* target : {"aten.zeros_like.default", "aten.empty_like.default"}) {
    expect_tensor(run1({.target = target, .inputs = {t}, .args = {TensorArg{0}}}), kI32, {3, 2},
                  repeat(0, 6), kTightTol);
  }
  expect_tensor(run1({.target = "aten.ones_like.default",
                      .inputs = {t},
                      .args = {TensorArg{0}},
                      .kwargs = {{"dtype", kBF16}}}),
                kBF16, {3, 2}, repeat(1, 6), kTightTol);
}

TEST(FactorySized, ZerosOnesEmpty) {
  const std::vector<int64_t> size{2, 3};
  expect_tensor(run1({.target = "aten.zeros.default", .args = {size}}), kF32, {2, 3}, repeat(0, 6),
                kTightTol);
  expect_tensor(run1({.target = "aten.ones.default", .args = {size}, .kwargs = {{"dtype", kI64}}}),
                kI64, {2, 3}, repeat(1, 6), kTightTol);
  expect_tensor(run1({.target = "aten.ones.default",
                      .args = {std::vector<int64_t>{}},
                      .kwargs = {{"dtype", kBool}}}),
                kBool, {}, {1}, kTightTol);
  expect_tensor(
      run1({.target = "aten.empty.memory_format", .args = {size}, .kwargs = {{"dtype", kF16}}}),
      kF16, {2, 3}, repeat(0, 6), kTightTol);
  expect_tensor(
      run1({.target = "aten.empty_strided.default", .args = {size, std::vector<int64_t>{1, 2}}}),
      kF32, {2, 3}, repeat(0, 6), kTightTol);
  expect_tensor(
      run1({.target = "aten.empty_permuted.default", .args = {size, std::vector<int64_t>{1, 0}}}),
      kF32, {2, 3}, repeat(0, 6), kTightTol);
  expect_error({.target = "aten.empty_strided.default", .args = {size, std::vector<int64_t>{1}}},
               {"expected 2 values in stride", "found [1]"});
  expect_error({.target = "aten.zeros.default", .args = {std::vector<int64_t>{2, -3}}},
               {"expected non-negative sizes, found [2, -3]"});
}

TEST(FactoryScalarTensor, DefaultFloat32) {
  expect_tensor(run1({.target = "aten.scalar_tensor.default", .args = {int64_t{3}}}), kF32, {}, {3},
                kTightTol);
  expect_tensor(run1({.target = "aten.scalar_tensor.default", .args = {true}}), kF32, {}, {1},
                kTightTol);
  expect_tensor(
      run1({.target = "aten.scalar_tensor.default", .args = {2.5}, .kwargs = {{"dtype", kI32}}}),
      kI32, {}, {2}, kTightTol);
  expect_error(
      {.target = "aten.scalar_tensor.default", .args = {int64_t{300}}, .kwargs = {{"dtype", kU8}}},
      {"cannot be converted to uint8"});
}

// ---- arange, linspace, eye
// -----------------------------------------------------------------------

OpCall arange(std::vector<TestArg> bounds, std::optional<DType> dtype = std::nullopt) {
  const char* target = bounds.size() == 1   ? "aten.arange.default"
                       : bounds.size() == 2 ? "aten.arange.start"
                                            : "aten.arange.start_step";
  OpCall call{.target = target, .args = std::move(bounds)};
  if (dtype) call.kwargs["dtype"] = *dtype;
  return call;
}

TEST(FactoryArange, LengthsAndDtypes) {
  expect_tensor(run1(arange({int64_t{5}})), kI64, {5}, {0, 1, 2, 3, 4}, kTightTol);
  expect_tensor(run1(arange({5.0})), kF32, {5}, {0, 1, 2, 3, 4}, kTightTol);
  expect_tensor(run1(arange({int64_t{2}, int64_t{7}})), kI64, {5}, {2, 3, 4, 5, 6}, kTightTol);
  expect_tensor(run1(arange({int64_t{2}, 7.0})), kF32, {5}, {2, 3, 4, 5, 6}, kTightTol);
  expect_tensor(run1(arange({int64_t{0}, int64_t{10}, int64_t{3}})), kI64, {4}, {0, 3, 6, 9},
                kTightTol);
  expect_tensor(run1(arange({int64_t{10}, int64_t{0}, int64_t{-3}})), kI64, {4}, {10, 7, 4, 1},
                kTightTol);
  expect_tensor(run1(arange({int64_t{0}, int64_t{0}, int64_t{1}})), kI64, {0}, {}, kTightTol);
  expect_tensor(run1(arange({-1.0, 1.0, 0.3})), kF32, {7}, {-1.0, -0.7, -0.4, -0.1, 0.2, 0.5, 0.8},
                kTightTol);
  const Tensor tenth = run1(arange({int64_t{0}, int64_t{1}, 0.1}));
  EXPECT_EQ(tenth.numel(), 10);
  expect_tensor(run1(arange({int64_t{1}, 2.5, 0.5})), kF32, {3}, {1.0, 1.5, 2.0}, kTightTol);
  expect_tensor(run1(arange({int64_t{5}, int64_t{-5}, -2.5})), kF32, {4}, {5, 2.5, 0, -2.5},
                kTightTol);
  expect_tensor(run1(arange({true, int64_t{5}, int64_t{1}})), kI64, {4}, {1, 2, 3, 4}, kTightTol);
  // Integer outputs convert the bounds first: arange(0.5, 5, dtype=int32) starts at 0.
  expect_tensor(run1(arange({0.5, int64_t{5}, int64_t{1}}, kI32)), kI32, {5}, {0, 1, 2, 3, 4},
                kTightTol);
  expect_tensor(run1(arange({int64_t{-10}, int64_t{10}, int64_t{3}}, kU8)), kU8, {7},
                {246, 249, 252, 255, 2, 5, 8}, kTightTol);
  expect_tensor(run1(arange({int64_t{0}, int64_t{5}, int64_t{1}}, kF16)), kF16, {5},
                {0, 1, 2, 3, 4}, kTightTol);
  expect_tensor(run1(arange({0.0, 1.0, 0.3}, kF64)), kF64, {4}, {0.0, 0.3, 0.6, 0.8999999999999999},
                1e-15);
  const Tensor bf = run1(arange({int64_t{0}, int64_t{2000}, 0.7}, kBF16));
  ASSERT_EQ(bf.numel(), 2858);
  expect_tensor(bf.view_as({3}, {1}, 1), kBF16, {3}, {0.69921875, 1.3984375, 2.09375}, kTightTol);
}

TEST(FactoryArange, Errors) {
  expect_error(arange({int64_t{0}, int64_t{10}, int64_t{0}}), {"expected a nonzero step"});
  expect_error(arange({int64_t{0}, int64_t{10}, int64_t{-3}}),
               {"expected bounds 0 -> 10 consistent with the step -3"});
  expect_error(arange({int64_t{0}, 1.0, kNaN}), {"expected a nonzero step"});
  expect_error(arange({int64_t{0}, kInf, int64_t{1}}), {"expected finite bounds"});
  expect_error(arange({int64_t{0}, int64_t{5}, int64_t{1}}, kBool),
               {"expected a numeric dtype, found bool"});
  // A float step that truncates to 0 for an integer dtype.
  expect_error(arange({int64_t{0}, int64_t{5}, 0.5}, kI32), {"expected a nonzero step"});
}

TEST(FactoryLinspace, Values) {
  const auto linspace = [](double start, double end, int64_t steps,
                           std::optional<DType> dtype = std::nullopt) {
    OpCall call{.target = "aten.linspace.default", .args = {start, end, steps}};
    if (dtype) call.kwargs["dtype"] = *dtype;
    return call;
  };
  expect_tensor(run1(linspace(-1, 1, 7)), kF32, {7},
                {-1.0, -0.6666667, -0.3333333, 0.0, 0.3333333, 0.6666667, 1.0}, 1e-6);
  expect_tensor(run1(linspace(0, 10, 5, kI64)), kI64, {5}, {0, 2, 5, 7, 10}, kTightTol);
  expect_tensor(run1(linspace(10, 0, 4, kI32)), kI32, {4}, {10, 6, 3, 0}, kTightTol);
  expect_tensor(run1(linspace(0, 1, 5, kF16)), kF16, {5}, {0, 0.25, 0.5, 0.75, 1}, kTightTol);
  expect_tensor(run1(linspace(3, 4, 1)), kF32, {1}, {3}, kTightTol);
  expect_tensor(run1(linspace(3, 4, 0)), kF32, {0}, {}, kTightTol);
  expect_error(linspace(0, 1, -1), {"expected a non-negative number of steps, found -1"});
}

TEST(FactoryEye, Values) {
  expect_tensor(run1({.target = "aten.eye.default", .args = {int64_t{3}}}), kF32, {3, 3},
                {1, 0, 0, 0, 1, 0, 0, 0, 1}, kTightTol);
  expect_tensor(
      run1(
          {.target = "aten.eye.m", .args = {int64_t{2}, int64_t{3}}, .kwargs = {{"dtype", kBool}}}),
      kBool, {2, 3}, {1, 0, 0, 0, 1, 0}, kTightTol);
  expect_tensor(run1({.target = "aten.eye.m", .args = {int64_t{3}, int64_t{0}}}), kF32, {3, 0}, {},
                kTightTol);
  expect_error({.target = "aten.eye.m", .args = {int64_t{2}, int64_t{-3}}},
               {"expected n and m >= 0, found 2 and -3"});
}

}  // namespace
}  // namespace kiln::testing
