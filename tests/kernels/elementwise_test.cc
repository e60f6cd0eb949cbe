// Conformance of the elementwise ops (inference + CPU kernels) with PyTorch 2.11 eager. Expected
// values were computed with torch on CPU and are hard-coded here.
#include <gtest/gtest.h>

#include "support/kernel_expect.h"
#include "support/kernel_values.h"

namespace kiln::testing {
namespace {

Tensor tensor(DType dtype, Shape shape, std::vector<double> values) {
  return make_tensor(dtype, std::move(shape), values);
}
Tensor vec(DType dtype, std::vector<double> values) {
  const int64_t n = static_cast<int64_t>(values.size());
  return make_tensor(dtype, {n}, values);
}
Tensor scalar_tensor(DType dtype, double v) {
  return make_tensor(dtype, {}, {v});
}

// `t` (one dim) broadcast along a new leading dim of `rows`, with stride 0.
Tensor expanded_rows(const Tensor& t, int64_t rows) {
  return t.view_as({rows, t.size(0)}, {0, t.strides()[0]}, t.offset());
}

OpCall binary(std::string target, Tensor a, Tensor b) {
  return {.target = std::move(target), .inputs = {a, b}, .args = {TensorArg{0}, TensorArg{1}}};
}
OpCall with_scalar(std::string target, Tensor a, TestArg s) {
  return {.target = std::move(target), .inputs = {a}, .args = {TensorArg{0}, s}};
}
OpCall unary(std::string target, Tensor a) {
  return {.target = std::move(target), .inputs = {a}, .args = {TensorArg{0}}};
}

DType out_dtype(const OpCall& call) {
  Tensor t = run1(call);
  return t.dtype();
}

// ----------------------------------------------------------------------------------------------
// Type promotion (torch.result_type).

TEST(ElementwiseTypes, PromotionMatchesTorchResultType) {
  const Tensor f16 = vec(kF16, {1, 2}), i64 = vec(kI64, {1, 2}), i32 = vec(kI32, {1, 2});
  const Tensor b = vec(kBool, {1, 0}), u8 = vec(kU8, {1, 2}), i8 = vec(kI8, {1, 2});
  const Tensor bf16 = vec(kBF16, {1, 2});
  EXPECT_EQ(out_dtype(with_scalar("aten.add.Tensor", f16, int64_t{2})), kF16);
  EXPECT_EQ(out_dtype(with_scalar("aten.add.Tensor", f16, 2.5)), kF16);
  EXPECT_EQ(out_dtype(with_scalar("aten.mul.Tensor", i64, 2.5)), kF32);
  EXPECT_EQ(out_dtype(with_scalar("aten.mul.Scalar", i32, int64_t{2})), kI32);
  EXPECT_EQ(out_dtype(binary("aten.add.Tensor", b, b)), kBool);
  EXPECT_EQ(out_dtype(with_scalar("aten.add.Tensor", b, int64_t{1})), kI64);
  EXPECT_EQ(out_dtype(with_scalar("aten.add.Tensor", b, true)), kBool);
  EXPECT_EQ(out_dtype(binary("aten.add.Tensor", u8, i8)), DType::kInt16);
  EXPECT_EQ(out_dtype(binary("aten.add.Tensor", f16, bf16)), kF32);
  EXPECT_EQ(out_dtype(binary("aten.add.Tensor", i32, i64)), kI64);
  // 0-d tensors count only when of a higher category.
  EXPECT_EQ(out_dtype(binary("aten.add.Tensor", i32, scalar_tensor(kI64, 3))), kI32);
  EXPECT_EQ(out_dtype(binary("aten.add.Tensor", i32, scalar_tensor(kF64, 3))), kF64);
  EXPECT_EQ(out_dtype(binary("aten.add.Tensor", f16, scalar_tensor(kF32, 3))), kF16);
  EXPECT_EQ(out_dtype(binary("aten.add.Tensor", b, scalar_tensor(kI32, 3))), kI32);
  EXPECT_EQ(out_dtype(binary("aten.add.Tensor", scalar_tensor(kI32, 1), scalar_tensor(kF16, 1))),
            kF16);
  // True division and atan2 of integers give float32; comparisons give bool.
  EXPECT_EQ(out_dtype(binary("aten.div.Tensor", i32, i32)), kF32);
  EXPECT_EQ(out_dtype(binary("aten.atan2.default", b, b)), kF32);
  EXPECT_EQ(out_dtype(with_scalar("aten.lt.Scalar", f16, 2.5)), kBool);
  EXPECT_EQ(out_dtype(unary("aten.exp.default", i32)), kF32);
  EXPECT_EQ(out_dtype(unary("aten.sqrt.default", b)), kF32);
  EXPECT_EQ(out_dtype(unary("aten.square.default", b)), kI64);
}

// ----------------------------------------------------------------------------------------------
// Binary arithmetic.

TEST(ElementwiseArithmetic, AddBroadcastsWithAlpha) {
  OpCall call =
      binary("aten.add.Tensor", tensor(kF32, {2, 3}, {1, 2, 3, 4, 5, 6}), vec(kF32, {0.5, -1, 2}));
  call.kwargs = {{"alpha", int64_t{2}}};
  expect_tensor(run1(call), kF32, {2, 3}, {2, 0, 7, 5, 3, 10});
  // The same with a transposed first operand and the second expanded with stride 0.
  call.inputs = {transposed(tensor(kF32, {3, 2}, {1, 4, 2, 5, 3, 6})),
                 expanded_rows(vec(kF32, {0.5, -1, 2}), 2)};
  expect_tensor(run1(call), kF32, {2, 3}, {2, 0, 7, 5, 3, 10});
}

TEST(ElementwiseArithmetic, AddAllDtypes) {
  for (DType d : {kF32, kF16, kBF16, kI32, kI64, kI8, kU8, kF64}) {
    expect_tensor(run1(binary("aten.add.Tensor", vec(d, {1, 2, 100}), vec(d, {3, 4, 20}))), d, {3},
                  {4, 6, 120});
  }
  expect_tensor(run1(binary("aten.add.Tensor", vec(kBool, {1, 1, 0}), vec(kBool, {1, 0, 0}))),
                kBool, {3}, {1, 1, 0});
  // Integer overflow wraps around.
  expect_tensor(run1(with_scalar("aten.add.Tensor", vec(kI32, {2147483647}), int64_t{1})), kI32,
                {1}, {-2147483648.0});
  // A float16 tensor plus a Python float keeps the scalar at full precision (1.5 + 0.1).
  expect_tensor(run1(with_scalar("aten.add.Tensor", vec(kF16, {1.5, 2.5}), 0.1)), kF16, {2},
                {1.599609375, 2.599609375}, 0);
  expect_tensor(run1(with_scalar("aten.mul.Tensor", vec(kBF16, {1.5, 2.5}), 0.1)), kBF16, {2},
                {0.150390625, 0.25}, 0);
  expect_tensor(run1(with_scalar("aten.mul.Tensor", vec(kI64, {1, 2}), 2.5)), kF32, {2}, {2.5, 5});
}

TEST(ElementwiseArithmetic, AddScalarAndEdgeShapes) {
  OpCall call = with_scalar("aten.add.Scalar", vec(kI32, {3, -3}), int64_t{2});
  call.args.push_back(int64_t{3});  // alpha
  expect_tensor(run1(call), kI32, {2}, {9, 3});
  call.args[1] = 2.5;
  expect_tensor(run1(call), kF32, {2}, {10.5, 4.5});
  // Empty tensors broadcast to empty outputs.
  expect_tensor(run1(binary("aten.add.Tensor", tensor(kF32, {0}, {}), tensor(kF32, {3, 0}, {}))),
                kF32, {3, 0}, {});
  expect_tensor(run1(binary("aten.mul.Tensor", tensor(kF32, {2, 0, 3}, {}), vec(kF32, {1, 2, 3}))),
                kF32, {2, 0, 3}, {});
  // 0-d with 0-d, and 0-d with a dimensioned tensor.
  expect_tensor(run1(binary("aten.sub.Tensor", scalar_tensor(kF32, 5), scalar_tensor(kF32, 2))),
                kF32, {}, {3});
  expect_tensor(run1(binary("aten.sub.Tensor", scalar_tensor(kF32, 5), vec(kF32, {1, 2}))), kF32,
                {2}, {4, 3});
  expect_tensor(run1(binary("aten.mul.Tensor", tensor(kF32, {2, 1}, {1, 2}),
                            tensor(kF32, {1, 3}, {1, 2, 3}))),
                kF32, {2, 3}, {1, 2, 3, 2, 4, 6});
  // A stride-0 first operand against a full second one.
  expect_tensor(run1(binary("aten.sub.Tensor", expanded_rows(vec(kI64, {1, 2, 3}), 2),
                            tensor(kI64, {2, 3}, {1, 1, 1, 2, 2, 2}))),
                kI64, {2, 3}, {0, 1, 2, -1, 0, 1});
}

TEST(ElementwiseArithmetic, SubAndRsub) {
  OpCall sub = binary("aten.sub.Tensor", vec(kF32, {1, 2}), vec(kF32, {0.5, 4}));
  sub.kwargs = {{"alpha", 2.5}};
  expect_tensor(run1(sub), kF32, {2}, {-0.25, -8});
  OpCall rsub = binary("aten.rsub.Tensor", vec(kI32, {3, -3}), vec(kI32, {2, 2}));
  rsub.kwargs = {{"alpha", int64_t{3}}};
  expect_tensor(run1(rsub), kI32, {2}, {-7, 11});
  expect_tensor(run1(with_scalar("aten.rsub.Scalar", vec(kI32, {3, -3}), int64_t{1})), kI32, {2},
                {-2, 4});
  expect_error(binary("aten.sub.Tensor", vec(kBool, {1}), vec(kBool, {0})), {"bool"});
  expect_error(with_scalar("aten.sub.Tensor", vec(kI32, {1}), true), {"bool"});
  OpCall bad_alpha = binary("aten.add.Tensor", vec(kI32, {1}), vec(kI32, {1}));
  bad_alpha.kwargs = {{"alpha", 2.5}};
  expect_error(bad_alpha, {"alpha", "2.5", "int32"});
  bad_alpha.kwargs = {{"alpha", int64_t{1} << 33}};
  expect_error(bad_alpha, {"8589934592", "int32", "overflow"});
}

TEST(ElementwiseArithmetic, NonBroadcastableShapesNameBoth) {
  expect_error(binary("aten.add.Tensor", tensor(kF32, {2, 3}, {0}), tensor(kF32, {3, 2}, {0})),
               {"[2, 3]", "[3, 2]"});
  expect_error(binary("aten.eq.Tensor", tensor(kF32, {4}, {0}), tensor(kF32, {3}, {0})),
               {"[4]", "[3]"});
}

const std::vector<double> kDivA = {7, -7, 7, -7, 5.5, -5.5, 0, kNaN, kInf, 3};
const std::vector<double> kDivB = {2, 2, -2, -2, 0.5, 1.5, 0, 1, 2, 0};

OpCall div_mode(Tensor a, Tensor b, const char* mode) {
  OpCall call = binary("aten.div.Tensor_mode", a, b);
  call.kwargs = {{"rounding_mode", std::string(mode)}};
  return call;
}

TEST(ElementwiseArithmetic, FloatDivisionFamily) {
  const Tensor a = vec(kF32, kDivA), b = vec(kF32, kDivB);
  expect_tensor(run1(binary("aten.div.Tensor", a, b)), kF32, {10},
                {3.5, -3.5, -3.5, 3.5, 11, -3.66666675, kNaN, kNaN, kInf, kInf});
  expect_tensor(run1(div_mode(a, b, "trunc")), kF32, {10},
                {3, -3, -3, 3, 11, -3, kNaN, kNaN, kInf, kInf});
  expect_tensor(run1(div_mode(a, b, "floor")), kF32, {10},
                {3, -4, -4, 3, 11, -4, kNaN, kNaN, kNaN, kInf});
  expect_tensor(run1(binary("aten.floor_divide.default", a, b)), kF32, {10},
                {3, -4, -4, 3, 11, -4, kNaN, kNaN, kNaN, kInf});
  expect_tensor(run1(binary("aten.remainder.Tensor", a, b)), kF32, {10},
                {1, 1, -1, -1, 0, 0.5, kNaN, kNaN, kNaN, kNaN});
  expect_tensor(run1(binary("aten.fmod.Tensor", a, b)), kF32, {10},
                {1, -1, 1, -1, 0, -1, kNaN, kNaN, kNaN, kNaN});
  expect_tensor(run1(binary("aten.div.Tensor", vec(kF16, {1, 3}), vec(kF16, {3, 7}))), kF16, {2},
                {0.333333, 0.428571}, 1e-3);
  OpCall none_mode = binary("aten.div.Tensor_mode", vec(kI32, {7}), vec(kI32, {2}));
  none_mode.kwargs = {{"rounding_mode", ir::NoneArg{}}};
  expect_tensor(run1(none_mode), kF32, {1}, {3.5});
  expect_error(div_mode(a, b, "round"), {"rounding_mode", "'round'"});
}

TEST(ElementwiseArithmetic, IntegerDivisionFamily) {
  const Tensor a = vec(kI32, {7, -7, 7, -7, 0, 5, -2147483647});
  const Tensor b = vec(kI32, {2, 2, -2, -2, 3, -1, -1});
  expect_tensor(run1(binary("aten.div.Tensor", a, b)), kF32, {7},
                {3.5, -3.5, -3.5, 3.5, 0, -5, 2147483648.0});
  expect_tensor(run1(div_mode(a, b, "trunc")), kI32, {7}, {3, -3, -3, 3, 0, -5, 2147483647});
  expect_tensor(run1(div_mode(a, b, "floor")), kI32, {7}, {3, -4, -4, 3, 0, -5, 2147483647});
  expect_tensor(run1(binary("aten.remainder.Tensor", a, b)), kI32, {7}, {1, 1, -1, -1, 0, 0, 0});
  expect_tensor(run1(binary("aten.fmod.Tensor", a, b)), kI32, {7}, {1, -1, 1, -1, 0, 0, 0});
  // INT64_MIN // -1 wraps, as in PyTorch.
  expect_tensor(run1(with_scalar("aten.floor_divide.Scalar",
                                 vec(kI64, {-9223372036854775807.0 - 1}), int64_t{-1})),
                kI64, {1}, {-9223372036854775807.0 - 1});
  OpCall rem = {.target = "aten.remainder.Scalar_Tensor",
                .inputs = {vec(kI32, {3, -3})},
                .args = {int64_t{2}, TensorArg{0}}};
  expect_tensor(run1(rem), kI32, {2}, {2, -1});
  for (const char* op :
       {"aten.remainder.Tensor", "aten.fmod.Tensor", "aten.floor_divide.default"}) {
    expect_error(binary(op, vec(kI32, {1, 2}), vec(kI32, {1, 0})), {"division by zero"});
  }
  expect_error(div_mode(vec(kI64, {1}), scalar_tensor(kI64, 0), "trunc"), {"division by zero"});
  expect_error(with_scalar("aten.floor_divide.Scalar", vec(kI32, {4}), int64_t{0}),
               {"division by zero"});
  expect_error(binary("aten.remainder.Tensor", vec(kBool, {1}), vec(kBool, {1})), {"bool"});
  // Dividing integers by a float zero is float division.
  expect_tensor(run1(with_scalar("aten.remainder.Scalar", vec(kI32, {3}), 0.0)), kF32, {1}, {kNaN});
}

TEST(ElementwiseArithmetic, Pow) {
  expect_tensor(run1(binary("aten.pow.Tensor_Tensor", vec(kF32, kDivA), vec(kF32, kDivB))), kF32,
                {10}, {49, 49, 0.0204081628, 0.0204081628, 2.34520793, kNaN, 1, kNaN, kInf, 1});
  expect_tensor(run1(binary("aten.pow.Tensor_Tensor", vec(kI64, {2, -1, 1, 3, -2}),
                            vec(kI64, {-1, -3, -5, 2, 3}))),
                kI64, {5}, {0, -1, 1, 9, -8});
  const Tensor x = vec(kF32, {-kInf, -2, -0.0, 0.25, 4, kNaN});
  const std::vector<std::pair<double, std::vector<double>>> cases = {
      {0.5, {kNaN, kNaN, 0, 0.5, 2, kNaN}},
      {2.5, {kInf, kNaN, 0, 0.03125, 32, kNaN}},
      {-2.0, {0, 0.25, kInf, 16, 0.0625, kNaN}},
      {-0.5, {kNaN, kNaN, -kInf, 2, 0.5, kNaN}},
      {0.0, {1, 1, 1, 1, 1, 1}},
      {1.0, {-kInf, -2, 0, 0.25, 4, kNaN}},
      {3.0, {-kInf, -8, 0, 0.015625, 64, kNaN}},
      {-1.0, {0, -0.5, -kInf, 4, 0.25, kNaN}},
  };
  for (const auto& [e, expected] : cases) {
    expect_tensor(run1(with_scalar("aten.pow.Tensor_Scalar", x, e)), kF32, {6}, expected);
  }
  expect_tensor(run1(with_scalar("aten.pow.Tensor_Scalar", vec(kI32, {3, -3}), int64_t{3})), kI32,
                {2}, {27, -27});
  expect_tensor(run1(with_scalar("aten.pow.Tensor_Scalar", vec(kBool, {1, 0}), int64_t{2})), kI64,
                {2}, {1, 0});
  expect_tensor(run1(with_scalar("aten.pow.Tensor_Scalar", vec(kBool, {1, 0}), true)), kBool, {2},
                {1, 0});
  expect_tensor(run1(with_scalar("aten.pow.Tensor_Scalar", vec(kI32, {4}), -0.5)), kF32, {1},
                {0.5});
  OpCall scalar_base = {.target = "aten.pow.Scalar",
                        .inputs = {vec(kI64, {-1, 0, 2, 3})},
                        .args = {int64_t{3}, TensorArg{0}}};
  expect_tensor(run1(scalar_base), kI64, {4}, {0, 1, 9, 27});
  scalar_base.args[0] = 2.5;
  expect_tensor(run1(scalar_base), kF32, {4}, {0.4, 1, 6.25, 15.625});
  expect_error(with_scalar("aten.pow.Tensor_Scalar", vec(kI32, {2}), int64_t{-1}),
               {"negative", "-1"});
  expect_error(binary("aten.pow.Tensor_Tensor", vec(kBool, {1}), vec(kBool, {1})), {"bool"});
}

TEST(ElementwiseArithmetic, MaximumMinimumAtan2) {
  const Tensor a = vec(kF32, kDivA), b = vec(kF32, kDivB);
  expect_tensor(run1(binary("aten.maximum.default", a, b)), kF32, {10},
                {7, 2, 7, -2, 5.5, 1.5, 0, kNaN, kInf, 3});
  expect_tensor(run1(binary("aten.minimum.default", a, b)), kF32, {10},
                {2, -7, -2, -7, 0.5, -5.5, 0, kNaN, 2, 0});
  expect_tensor(run1(binary("aten.minimum.default", vec(kF32, {1}), vec(kF32, {kNaN}))), kF32, {1},
                {kNaN});
  expect_tensor(run1(binary("aten.atan2.default", a, b)), kF32, {10},
                {1.29249668, -1.29249668, 1.84909594, -1.84909594, 1.48013639, -1.30454421, 0, kNaN,
                 1.57079637, 1.57079637});
  expect_tensor(run1(binary("aten.maximum.default", vec(kBool, {1, 0}), vec(kI32, {3, -3}))), kI32,
                {2}, {3, 0});
  expect_tensor(run1(binary("aten.maximum.default", vec(kI32, {3, 1}), scalar_tensor(kF32, 2.5))),
                kF32, {2}, {3, 2.5});
}

// ----------------------------------------------------------------------------------------------
// Comparisons, logical and bitwise ops.

TEST(ElementwiseLogical, Comparisons) {
  const Tensor a = vec(kF32, {1, kNaN, 3, 2}), b = vec(kF32, {2, 1, kNaN, 2});
  const std::vector<std::pair<const char*, std::vector<double>>> cases = {
      {"aten.lt.Tensor", {1, 0, 0, 0}}, {"aten.le.Tensor", {1, 0, 0, 1}},
      {"aten.gt.Tensor", {0, 0, 0, 0}}, {"aten.ge.Tensor", {0, 0, 0, 1}},
      {"aten.eq.Tensor", {0, 0, 0, 1}}, {"aten.ne.Tensor", {1, 1, 1, 0}},
  };
  for (const auto& [op, expected] : cases) {
    expect_tensor(run1(binary(op, a, b)), kBool, {4}, expected);
  }
  expect_tensor(run1(with_scalar("aten.lt.Scalar", vec(kI32, {1, 2, 3}), 2.5)), kBool, {3},
                {1, 1, 0});
  // Both operands are cast to the common dtype first: float16(0.1) == 0.1.
  expect_tensor(run1(with_scalar("aten.eq.Scalar", vec(kF16, {0.1, 0.2}), 0.1)), kBool, {2},
                {1, 0});
  expect_tensor(run1(with_scalar("aten.gt.Scalar", vec(kF16, {0.1, 0.2}), 0.1)), kBool, {2},
                {0, 1});
  // A 0-d int64 operand is converted to int32: 2^32 + 3 wraps to 3.
  expect_tensor(
      run1(binary("aten.eq.Tensor", vec(kI32, {3, -3}), scalar_tensor(kI64, 4294967299.0))), kBool,
      {2}, {1, 0});
  expect_tensor(run1(with_scalar("aten.eq.Scalar", vec(kBool, {1, 0}), 0.5)), kBool, {2}, {0, 0});
  expect_tensor(run1(binary("aten.ge.Tensor", transposed(tensor(kI64, {2, 2}, {1, 2, 3, 4})),
                            tensor(kI64, {2, 2}, {1, 4, 2, 4}))),
                kBool, {2, 2}, {1, 0, 1, 1});
}

TEST(ElementwiseLogical, LogicalAndBitwise) {
  const Tensor f = vec(kF32, {0, kNaN, 2, -0.0}), i = vec(kI64, {1, 1, 0, 1});
  expect_tensor(run1(binary("aten.logical_and.default", f, i)), kBool, {4}, {0, 1, 0, 0});
  expect_tensor(run1(binary("aten.logical_or.default", f, i)), kBool, {4}, {1, 1, 1, 1});
  expect_tensor(run1(binary("aten.logical_xor.default", f, i)), kBool, {4}, {1, 0, 1, 1});
  expect_tensor(run1(unary("aten.logical_not.default", f)), kBool, {4}, {1, 0, 0, 1});
  const Tensor n = vec(kI32, {12, -1, 5});
  expect_tensor(run1(with_scalar("aten.bitwise_and.Scalar", n, int64_t{10})), kI32, {3},
                {8, 10, 0});
  expect_tensor(run1(binary("aten.bitwise_or.Tensor", n, vec(kBool, {1, 0, 1}))), kI32, {3},
                {13, -1, 5});
  expect_tensor(run1(binary("aten.bitwise_xor.Tensor", n, vec(kI64, {3}))), kI64, {3}, {15, -4, 6});
  expect_tensor(run1(unary("aten.bitwise_not.default", n)), kI32, {3}, {-13, 0, -6});
  expect_tensor(run1(unary("aten.bitwise_not.default", vec(kBool, {1, 0}))), kBool, {2}, {0, 1});
  expect_tensor(run1(unary("aten.bitwise_not.default", vec(kU8, {5}))), kU8, {1}, {250});
  expect_tensor(
      run1(binary("aten.bitwise_and.Tensor", vec(kBool, {1, 1, 0}), vec(kBool, {1, 0, 0}))), kBool,
      {3}, {1, 0, 0});
  OpCall scalar_first = {.target = "aten.bitwise_and.Scalar_Tensor",
                         .inputs = {vec(kI32, {3, -3})},
                         .args = {int64_t{3}, TensorArg{0}}};
  expect_tensor(run1(scalar_first), kI32, {2}, {3, 1});
  expect_error(binary("aten.bitwise_and.Tensor", vec(kF32, {1}), vec(kF32, {1})),
               {"integral or bool", "float32"});
  expect_error(with_scalar("aten.bitwise_or.Scalar", vec(kI64, {1}), 2.5), {"float32"});
}

TEST(ElementwiseLogical, Predicates) {
  const Tensor f = vec(kF32, {1.5, kNaN, kInf, -kInf, 0});
  expect_tensor(run1(unary("aten.isnan.default", f)), kBool, {5}, {0, 1, 0, 0, 0});
  expect_tensor(run1(unary("aten.isinf.default", f)), kBool, {5}, {0, 0, 1, 1, 0});
  expect_tensor(run1(unary("aten.isfinite.default", f)), kBool, {5}, {1, 0, 0, 0, 1});
  expect_tensor(run1(unary("aten.isnan.default", vec(kF16, {kNaN, 1}))), kBool, {2}, {1, 0});
  expect_tensor(run1(unary("aten.isfinite.default", vec(kI32, {3}))), kBool, {1}, {1});
}

// ----------------------------------------------------------------------------------------------
// Unary math.

const std::vector<double> kMathInput = {-kInf, -2.5, -1, -0.5, -0.0, 0.25, 0.5, 1, 3, kInf, kNaN};

// Each op on kMathInput, as computed by torch in float32.
const std::vector<std::pair<const char*, std::vector<double>>> kFloatFunctionCases = {
    {"aten.exp.default",
     {0, 0.0820849985, 0.36787945, 0.606530666, 1, 1.28402543, 1.64872122, 2.71828175, 20.085537,
      kInf, kNaN}},
    {"aten.exp2.default",
     {0, 0.176776692, 0.5, 0.707106769, 1, 1.18920708, 1.41421354, 2, 8, kInf, kNaN}},
    {"aten.expm1.default",
     {-1, -0.917914987, -0.63212055, -0.393469334, 0, 0.284025431, 0.648721278, 1.71828187,
      19.085537, kInf, kNaN}},
    {"aten.log.default",
     {kNaN, kNaN, kNaN, kNaN, -kInf, -1.38629436, -0.693147182, 0, 1.09861231, kInf, kNaN}},
    {"aten.log2.default", {kNaN, kNaN, kNaN, kNaN, -kInf, -2, -1, 0, 1.58496249, kInf, kNaN}},
    {"aten.log10.default",
     {kNaN, kNaN, kNaN, kNaN, -kInf, -0.60206002, -0.30103001, 0, 0.477121264, kInf, kNaN}},
    {"aten.log1p.default",
     {kNaN, kNaN, -kInf, -0.693147182, 0, 0.223143548, 0.405465096, 0.693147182, 1.38629436, kInf,
      kNaN}},
    {"aten.sqrt.default", {kNaN, kNaN, kNaN, kNaN, 0, 0.5, 0.707106769, 1, 1.73205078, kInf, kNaN}},
    {"aten.rsqrt.default", {kNaN, kNaN, kNaN, kNaN, -kInf, 2, 1.41421354, 1, 0.577350259, 0, kNaN}},
    {"aten.reciprocal.default", {0, -0.4, -1, -2, -kInf, 4, 2, 1, 0.333333343, 0, kNaN}},
    {"aten.sin.default",
     {kNaN, -0.598472118, -0.841470957, -0.47942555, 0, 0.247403964, 0.47942555, 0.841470957,
      0.141120002, kNaN, kNaN}},
    {"aten.cos.default",
     {kNaN, -0.801143587, 0.540302336, 0.87758255, 1, 0.968912423, 0.87758255, 0.540302336,
      -0.989992499, kNaN, kNaN}},
    {"aten.tan.default",
     {kNaN, 0.747022271, -1.55740774, -0.546302497, 0, 0.255341917, 0.546302497, 1.55740774,
      -0.142546549, kNaN, kNaN}},
    {"aten.asin.default",
     {kNaN, kNaN, -1.57079637, -0.52359879, 0, 0.252680242, 0.52359879, 1.57079637, kNaN, kNaN,
      kNaN}},
    {"aten.acos.default",
     {kNaN, kNaN, 3.14159274, 2.09439516, 1.57079637, 1.31811607, 1.04719758, 0, kNaN, kNaN, kNaN}},
    {"aten.atan.default",
     {-1.57079637, -1.19028997, -0.785398185, -0.463647604, 0, 0.244978666, 0.463647604,
      0.785398185, 1.24904573, 1.57079637, kNaN}},
    {"aten.sinh.default",
     {-kInf, -6.05020475, -1.17520118, -0.521095276, 0, 0.252612323, 0.521095276, 1.17520118,
      10.0178747, kInf, kNaN}},
    {"aten.cosh.default",
     {kInf, 6.13228941, 1.54308057, 1.12762594, 1, 1.03141308, 1.12762594, 1.54308057, 10.0676622,
      kInf, kNaN}},
    {"aten.tanh.default",
     {-1, -0.986614287, -0.761594176, -0.462117165, 0, 0.244918659, 0.462117165, 0.761594176,
      0.995054781, 1, kNaN}},
    {"aten.asinh.default",
     {-kInf, -1.64723122, -0.881373584, -0.481211841, 0, 0.247466475, 0.481211841, 0.881373584,
      1.81844652, kInf, kNaN}},
    {"aten.acosh.default", {kNaN, kNaN, kNaN, kNaN, kNaN, kNaN, kNaN, 0, 1.76274717, kInf, kNaN}},
    {"aten.atanh.default",
     {kNaN, kNaN, -kInf, -0.549306154, 0, 0.255412817, 0.549306154, kInf, kNaN, kNaN, kNaN}},
    {"aten.erf.default",
     {-1, -0.999593019, -0.842700779, -0.520499885, 0, 0.276326388, 0.520499885, 0.842700779,
      0.999977887, 1, kNaN}},
    {"aten.erfc.default",
     {2, 1.99959302, 1.84270084, 1.52049994, 1, 0.723673582, 0.479500115, 0.157299206,
      2.20904967e-05, 0, kNaN}},
    {"aten.erfinv.default",
     {kNaN, kNaN, -kInf, -0.476936281, 0, 0.225312054, 0.476936281, kInf, kNaN, kNaN, kNaN}},
    {"aten.sigmoid.default",
     {0, 0.0758581758, 0.268941432, 0.377540678, 0.5, 0.562176526, 0.622459352, 0.731058598,
      0.952574134, 1, kNaN}},
};

TEST(ElementwiseUnary, FloatFunctionsMatchTorch) {
  for (const auto& [op, expected] : kFloatFunctionCases) {
    SCOPED_TRACE(op);
    expect_tensor(run1(unary(op, vec(kF32, kMathInput))), kF32, {11}, expected);
    // 16-bit floats compute in float and round once.
    expect_tensor(run1(unary(op, vec(kF16, kMathInput))), kF16, {11}, expected, 1e-2);
    expect_tensor(run1(unary(op, vec(kBF16, kMathInput))), kBF16, {11}, expected, 1e-2);
  }
  // Integral and bool inputs compute in float32.
  expect_tensor(run1(unary("aten.exp2.default", vec(kI32, {3, -3}))), kF32, {2}, {8, 0.125});
  expect_tensor(run1(unary("aten.sigmoid.default", vec(kBool, {1, 0}))), kF32, {2},
                {0.731058598, 0.5});
  expect_tensor(run1(unary("aten.erfinv.default", vec(kF64, {0.9999, -0.3}))), kF64, {2},
                {2.75106390571208, -0.2724627147267543}, 1e-9);
}

TEST(ElementwiseUnary, SignAndRounding) {
  const Tensor x = vec(kF32, {-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -0.7, 0.7, kNaN, kInf});
  const std::vector<std::pair<const char*, std::vector<double>>> cases = {
      {"aten.floor.default", {-3, -2, -1, 0, 1, 2, -1, 0, kNaN, kInf}},
      {"aten.ceil.default", {-2, -1, 0, 1, 2, 3, 0, 1, kNaN, kInf}},
      {"aten.round.default", {-2, -2, 0, 0, 2, 2, -1, 1, kNaN, kInf}},  // half to even
      {"aten.trunc.default", {-2, -1, 0, 0, 1, 2, 0, 0, kNaN, kInf}},
      {"aten.frac.default", {-0.5, -0.5, -0.5, 0.5, 0.5, 0.5, -0.7, 0.7, kNaN, kNaN}},
      {"aten.sign.default", {-1, -1, -1, 1, 1, 1, -1, 1, 0, 1}},
      {"aten.abs.default", {2.5, 1.5, 0.5, 0.5, 1.5, 2.5, 0.7, 0.7, kNaN, kInf}},
      {"aten.neg.default", {2.5, 1.5, 0.5, -0.5, -1.5, -2.5, 0.7, -0.7, kNaN, -kInf}},
      {"aten.square.default", {6.25, 2.25, 0.25, 0.25, 2.25, 6.25, 0.49, 0.49, kNaN, kInf}},
  };
  for (const auto& [op, expected] : cases) {
    SCOPED_TRACE(op);
    expect_tensor(run1(unary(op, x)), kF32, {10}, expected);
    expect_tensor(
        run1(unary(op, vec(kF16, {-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -0.7, 0.7, kNaN, kInf}))), kF16,
        {10}, expected, 1e-3);
  }
  OpCall round2 = unary("aten.round.decimals", vec(kF32, {1.2345, 125, 135, -2.675}));
  round2.kwargs = {{"decimals", int64_t{2}}};
  expect_tensor(run1(round2), kF32, {4}, {1.23, 125, 135, -2.68});
  round2.kwargs = {{"decimals", int64_t{-1}}};
  expect_tensor(run1(round2), kF32, {4}, {0, 120, 140, 0});
  // Integers: abs and neg wrap at the minimum, rounding is the identity.
  const Tensor i8 = vec(kI8, {-128, -3, 0, 5, 127});
  expect_tensor(run1(unary("aten.abs.default", i8)), kI8, {5}, {-128, 3, 0, 5, 127});
  expect_tensor(run1(unary("aten.neg.default", i8)), kI8, {5}, {-128, 3, 0, -5, -127});
  expect_tensor(run1(unary("aten.sign.default", i8)), kI8, {5}, {-1, -1, 0, 1, 1});
  expect_tensor(run1(unary("aten.square.default", i8)), kI8, {5}, {0, 9, 0, 25, 1});
  expect_tensor(run1(unary("aten.floor.default", vec(kI32, {3, -3}))), kI32, {2}, {3, -3});
  expect_tensor(run1(unary("aten.neg.default", vec(kU8, {3}))), kU8, {1}, {253});
  expect_tensor(run1(unary("aten.sign.default", vec(kBool, {1, 0}))), kBool, {2}, {1, 0});
  expect_tensor(run1(unary("aten.square.default", vec(kBool, {1, 0}))), kI64, {2}, {1, 0});
  expect_error(unary("aten.neg.default", vec(kBool, {1})), {"bool", "logical_not"});
  expect_error(unary("aten.abs.default", vec(kBool, {1})), {"bool"});
  expect_error(unary("aten.round.default", vec(kBool, {1})), {"bool"});
  expect_error(unary("aten.frac.default", vec(kI32, {1})), {"floating-point", "int32"});
  round2.inputs = {vec(kI32, {1})};
  expect_error(round2, {"int32"});
}

TEST(ElementwiseUnary, NanToNum) {
  const std::vector<double> x = {kNaN, kInf, -kInf, 1.5};
  expect_tensor(run1(unary("aten.nan_to_num.default", vec(kF32, x))), kF32, {4},
                {0, 3.40282347e+38, -3.40282347e+38, 1.5});
  OpCall custom = unary("aten.nan_to_num.default", vec(kF32, x));
  custom.args = {TensorArg{0}, 1.0, 2.0, -3.0};
  expect_tensor(run1(custom), kF32, {4}, {1, 2, -3, 1.5});
  OpCall half = unary("aten.nan_to_num.default", vec(kF16, x));
  half.kwargs = {{"posinf", 1e6}};
  expect_tensor(run1(half), kF16, {4}, {0, kInf, -65504, 1.5});
  expect_tensor(run1(unary("aten.nan_to_num.default", vec(kBF16, x))), kBF16, {4},
                {0, 3.38953139e+38, -3.38953139e+38, 1.5});
  expect_tensor(run1(unary("aten.nan_to_num.default", vec(kI64, {3, -3}))), kI64, {2}, {3, -3});
}

// ----------------------------------------------------------------------------------------------
// Activations and clamp.

const std::vector<double> kActInput = {-kInf, -4, -2.5, -1, -0.5, 0, 0.5, 1, 2.5, 4, 30, kNaN};

OpCall activation(const char* op, std::vector<TestArg> extra = {}) {
  OpCall call = unary(op, vec(kF32, kActInput));
  for (TestArg& a : extra) call.args.push_back(std::move(a));
  return call;
}

TEST(ElementwiseActivation, MatchTorch) {
  const std::vector<std::pair<OpCall, std::vector<double>>> cases = {
      {activation("aten.relu.default"), {0, 0, 0, 0, 0, 0, 0.5, 1, 2.5, 4, 30, kNaN}},
      {activation("aten.relu6.default"), {0, 0, 0, 0, 0, 0, 0.5, 1, 2.5, 4, 6, kNaN}},
      {activation("aten.hardtanh.default", {-0.5, int64_t{2}}),
       {-0.5, -0.5, -0.5, -0.5, -0.5, 0, 0.5, 1, 2, 2, 2, kNaN}},
      {activation("aten.gelu.default"),
       {kNaN, -0.000126481056, -0.0155241787, -0.158655256, -0.154268771, 0, 0.345731229,
        0.841344714, 2.48447585, 3.99987364, 30, kNaN}},
      {activation("aten.gelu.default", {std::string("tanh")}),
       {kNaN, -7.02142715e-05, -0.0150842965, -0.158807993, -0.154285997, 0, 0.345714003,
        0.841192007, 2.48491573, 3.9999299, 30, kNaN}},
      {activation("aten.silu.default"),
       {kNaN, -0.0719448403, -0.189645454, -0.268941432, -0.188770339, 0, 0.311229676, 0.731058598,
        2.31035447, 3.92805505, 30, kNaN}},
      {activation("aten.mish.default"),
       {kNaN, -0.0725917518, -0.196816191, -0.30340144, -0.22074376, 0, 0.375245243, 0.865098357,
        2.47139239, 3.99741292, 30, kNaN}},
      {activation("aten.hardswish.default"),
       {kNaN, 0, -0.208333328, -0.333333343, -0.208333328, 0, 0.291666657, 0.666666687, 2.29166675,
        4, 30, kNaN}},
      {activation("aten.hardsigmoid.default"),
       {0, 0, 0.0833333358, 0.333333343, 0.416666657, 0.5, 0.583333313, 0.666666687, 0.916666687, 1,
        1, kNaN}},
      {activation("aten.leaky_relu.default", {0.2}),
       {-kInf, -0.8, -0.5, -0.2, -0.1, 0, 0.5, 1, 2.5, 4, 30, kNaN}},
      {activation("aten.elu.default", {1.5, 2.0, 0.5}),
       {-3, -2.59399414, -2.14048553, -1.180408, -0.663597643, 0, 1, 2, 5, 8, 60, kNaN}},
      {activation("aten.softplus.default", {int64_t{2}, int64_t{5}}),
       {0, 0.000167703183, 0.00335767423, 0.0634640008, 0.156630844, 0.346573591, 0.656630814,
        1.06346405, 2.50335765, 4, 30, kNaN}},
      {activation("aten.softplus.default"),
       {0, 0.0181499291, 0.078889735, 0.313261688, 0.474076986, 0.693147182, 0.974076986,
        1.31326163, 2.57888985, 4.01814985, 30, kNaN}},
      {activation("aten.clamp.default", {int64_t{-1}, int64_t{2}}),
       {-1, -1, -1, -1, -0.5, 0, 0.5, 1, 2, 2, 2, kNaN}},
      {activation("aten.clamp.default", {int64_t{-1}}),
       {-1, -1, -1, -1, -0.5, 0, 0.5, 1, 2.5, 4, 30, kNaN}},
      {activation("aten.clamp.default", {ir::NoneArg{}, int64_t{2}}),
       {-kInf, -4, -2.5, -1, -0.5, 0, 0.5, 1, 2, 2, 2, kNaN}},
      {activation("aten.clamp_min.default", {int64_t{-1}}),
       {-1, -1, -1, -1, -0.5, 0, 0.5, 1, 2.5, 4, 30, kNaN}},
      {activation("aten.clamp_max.default", {int64_t{2}}),
       {-kInf, -4, -2.5, -1, -0.5, 0, 0.5, 1, 2, 2, 2, kNaN}},
  };
  for (const auto& [call, expected] : cases) {
    SCOPED_TRACE(call.target);
    expect_tensor(run1(call), kF32, {12}, expected);
    OpCall half = call;
    half.inputs = {vec(kF16, kActInput)};
    expect_tensor(run1(half), kF16, {12}, expected, 1e-2);
  }
}

TEST(ElementwiseActivation, DtypesAndErrors) {
  const Tensor i = vec(kI32, {3, -3});
  expect_tensor(run1(unary("aten.relu.default", i)), kI32, {2}, {3, 0});
  expect_tensor(run1(unary("aten.relu6.default", vec(kI64, {7, -3, 4}))), kI64, {3}, {6, 0, 4});
  OpCall hardtanh = unary("aten.hardtanh.default", i);
  hardtanh.args = {TensorArg{0}, -1.5, 1.5};
  expect_tensor(run1(hardtanh), kI32, {2}, {1, -1});
  expect_error(unary("aten.relu.default", vec(kBool, {1})), {"bool"});
  expect_error(unary("aten.hardtanh.default", vec(kU8, {1})), {"uint8", "non-negative"});
  expect_error(unary("aten.gelu.default", i), {"floating-point", "int32"});
  expect_error(unary("aten.silu.default", i), {"floating-point"});
  OpCall gelu = unary("aten.gelu.default", vec(kF32, {1}));
  gelu.kwargs = {{"approximate", std::string("exact")}};
  expect_error(gelu, {"approximate", "'exact'"});
  // A non-contiguous input, and an empty one.
  expect_tensor(run1(unary("aten.silu.default", transposed(tensor(kF32, {2, 2}, {-1, 1, 0, 2})))),
                kF32, {2, 2}, {-0.268941432, 0, 0.731058598, 1.76159406});
  expect_tensor(run1(unary("aten.gelu.default", tensor(kF32, {0, 4}, {}))), kF32, {0, 4}, {});
  expect_tensor(run1(unary("aten.sigmoid.default", scalar_tensor(kF32, 0))), kF32, {}, {0.5});
  expect_tensor(run1(unary("aten.hardswish.default", expanded_rows(vec(kF32, {-1, 1}), 2))), kF32,
                {2, 2}, {-0.333333343, 0.666666687, -0.333333343, 0.666666687});
}

TEST(ElementwiseActivation, ClampPromotionAndNaN) {
  const Tensor l = vec(kI64, {1, 5, 9});
  expect_tensor(run1(with_scalar("aten.clamp.default", l, 2.5)), kF32, {3}, {2.5, 5, 9});
  expect_tensor(run1(with_scalar("aten.clamp_min.default", vec(kI32, {1, 5, 9}), 2.5)), kF32, {3},
                {2.5, 5, 9});
  expect_tensor(run1(with_scalar("aten.clamp.default", vec(kBool, {1, 0}), int64_t{0})), kI64, {2},
                {1, 0});
  const Tensor f = vec(kF32, {1.5, kNaN});
  OpCall nan_min = with_scalar("aten.clamp.default", f, kNaN);
  expect_tensor(run1(nan_min), kF32, {2}, {1.5, kNaN});  // one NaN bound is ignored
  nan_min.args.push_back(1.0);
  expect_tensor(run1(nan_min), kF32, {2}, {kNaN, kNaN});  // with both bounds it fills NaN
  OpCall inverted = with_scalar("aten.clamp.default", f, 2.0);
  inverted.args.push_back(1.0);
  expect_tensor(run1(inverted), kF32, {2}, {1, kNaN});  // min > max gives max
  OpCall tensors = {.target = "aten.clamp.Tensor",
                    .inputs = {l, vec(kI64, {2, 2, 2}), vec(kI64, {1, 6, 8})},
                    .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}}};
  expect_tensor(run1(tensors), kI64, {3}, {1, 5, 8});
  tensors.inputs = {vec(kF32, {1, 5, 9, kNaN}), vec(kF32, {2, kNaN, 2, 0}), vec(kF32, {8})};
  expect_tensor(run1(tensors), kF32, {4}, {2, kNaN, 8, kNaN});
  OpCall min_only = {.target = "aten.clamp.Tensor",
                     .inputs = {tensor(kF32, {3, 1}, {1, 5, 9}), vec(kF32, {2, 3})},
                     .args = {TensorArg{0}, TensorArg{1}}};
  expect_tensor(run1(min_only), kF32, {3, 2}, {2, 3, 5, 5, 9, 9});
  expect_tensor(
      run1(binary("aten.clamp_min.Tensor", vec(kI32, {1, 5, 9}), scalar_tensor(kF32, 2.5))), kF32,
      {3}, {2.5, 5, 9});
  expect_tensor(run1(binary("aten.clamp_max.Tensor", vec(kF32, {1, 5}), vec(kF32, {kNaN, 2}))),
                kF32, {2}, {kNaN, 2});
  expect_error(unary("aten.clamp.default", f), {"min or a max"});
  expect_error(unary("aten.clamp.Tensor", f), {"min or a max"});
  OpCall both_bool = with_scalar("aten.clamp.default", vec(kBool, {1}), false);
  both_bool.args.push_back(true);
  expect_error(both_bool, {"bool"});
  expect_error(with_scalar("aten.clamp.default", vec(kI32, {1}), int64_t{1} << 40), {"overflow"});
  expect_error(with_scalar("aten.clamp.default", vec(kF16, {1}), 1e6), {"float16", "overflow"});
}

// ----------------------------------------------------------------------------------------------
// where, masked_fill, fill, copies.

TEST(ElementwiseSelect, Where) {
  const Tensor cond = tensor(kBool, {2, 1}, {1, 0});
  OpCall call = {.target = "aten.where.self",
                 .inputs = {cond, vec(kI32, {1, 2, 3})},
                 .args = {TensorArg{0}, TensorArg{1}, 2.5}};
  expect_tensor(run1(call), kF32, {2, 3}, {1, 2, 3, 2.5, 2.5, 2.5});
  call.args[2] = int64_t{7};
  expect_tensor(run1(call), kI32, {2, 3}, {1, 2, 3, 7, 7, 7});
  call.target = "aten.where.ScalarOther";
  expect_tensor(run1(call), kI32, {2, 3}, {1, 2, 3, 7, 7, 7});
  OpCall zero_dim = {.target = "aten.where.self",
                     .inputs = {vec(kBool, {1, 0}), scalar_tensor(kF64, 1.5), vec(kI32, {3, -3})},
                     .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}}};
  expect_tensor(run1(zero_dim), kF64, {2}, {1.5, -3});
  OpCall scalars = {.target = "aten.where.Scalar",
                    .inputs = {vec(kBool, {1, 0})},
                    .args = {TensorArg{0}, int64_t{1}, 2.5}};
  expect_tensor(run1(scalars), kF32, {2}, {1, 2.5});
  // A uint8 condition still selects; NaN payloads pass through untouched.
  zero_dim.inputs = {vec(kU8, {0, 1}), vec(kF16, {kNaN, 1}), vec(kF16, {2, kNaN})};
  expect_tensor(run1(zero_dim), kF16, {2}, {2, 1});
  zero_dim.inputs = {scalar_tensor(kBool, 0), scalar_tensor(kF32, 1), tensor(kF32, {0, 2}, {})};
  expect_tensor(run1(zero_dim), kF32, {0, 2}, {});
  zero_dim.inputs = {scalar_tensor(kBool, 0), scalar_tensor(kF32, 1), scalar_tensor(kF32, 2)};
  expect_tensor(run1(zero_dim), kF32, {}, {2});
  zero_dim.inputs[0] = vec(kF32, {1, 0});
  expect_error(zero_dim, {"bool condition", "float32"});
  zero_dim.inputs = {vec(kBool, {1, 0, 1}), vec(kF32, {1, 2}), vec(kF32, {1})};
  expect_error(zero_dim, {"[3]", "[2]"});
}

TEST(ElementwiseSelect, MaskedFill) {
  OpCall call = {.target = "aten.masked_fill.Scalar",
                 .inputs = {tensor(kF32, {3, 2}, {1, 2, 3, 4, 5, 6}), vec(kBool, {1, 0})},
                 .args = {TensorArg{0}, TensorArg{1}, -1.5}};
  expect_tensor(run1(call), kF32, {3, 2}, {-1.5, 2, -1.5, 4, -1.5, 6});
  call.inputs[0] = transposed(tensor(kF32, {2, 3}, {1, 3, 5, 2, 4, 6}));
  expect_tensor(run1(call), kF32, {3, 2}, {-1.5, 2, -1.5, 4, -1.5, 6});
  // The mask broadcasts the output beyond self's shape.
  call.inputs = {vec(kF32, {1, 2}), tensor(kBool, {2, 1}, {1, 0})};
  expect_tensor(run1(call), kF32, {2, 2}, {-1.5, -1.5, 1, 2});
  OpCall tensor_value = {
      .target = "aten.masked_fill.Tensor",
      .inputs = {vec(kI64, {1, 2, 3}), vec(kBool, {1, 0, 1}), scalar_tensor(kF32, 2.7)},
      .args = {TensorArg{0}, TensorArg{1}, TensorArg{2}}};
  expect_tensor(run1(tensor_value), kI64, {3}, {2, 2, 2});
  tensor_value.inputs = {vec(kI32, {1}), vec(kBool, {1}), scalar_tensor(kF32, 3e9)};
  expect_error(tensor_value, {"3e+09", "int32", "overflow"});
  tensor_value.inputs = {vec(kI32, {1}), vec(kBool, {1}), vec(kI32, {1})};
  expect_error(tensor_value, {"0-d", "[1]"});
  call.inputs = {vec(kU8, {0, 0}), vec(kBool, {1, 0})};
  call.args[2] = int64_t{-1};
  expect_tensor(run1(call), kU8, {2}, {255, 0});
  call.args[2] = int64_t{300};
  expect_error(call, {"300", "uint8", "overflow"});
  call.inputs = {vec(kI64, {1, 2}), vec(kI64, {1, 0})};
  expect_error(call, {"bool mask", "int64"});
}

TEST(ElementwiseSelect, FillAndCopies) {
  OpCall fill = with_scalar("aten.fill.Scalar", transposed(tensor(kI32, {2, 3}, {0})), 2.7);
  expect_tensor(run1(fill), kI32, {3, 2}, {2, 2, 2, 2, 2, 2});
  fill.args[1] = kNaN;
  expect_error(fill, {"int32", "overflow"});
  OpCall fill_tensor = binary("aten.fill.Tensor", vec(kF16, {0, 0}), scalar_tensor(kF32, 2.5));
  expect_tensor(run1(fill_tensor), kF16, {2}, {2.5, 2.5});
  fill_tensor.inputs[1] = vec(kF32, {1});
  expect_error(fill_tensor, {"0-d", "[1]"});

  const Tensor t = tensor(kF32, {2, 3}, {1, 2, 3, 4, 5, 6});
  expect_tensor(run1(unary("aten.clone.default", transposed(t))), kF32, {3, 2}, {1, 4, 2, 5, 3, 6});
  expect_tensor(run1(unary("aten.lift_fresh_copy.default", t)), kF32, {2, 3}, {1, 2, 3, 4, 5, 6});
  expect_tensor(run1(unary("aten.clone.default", scalar_tensor(kI8, -3))), kI8, {}, {-3});
  auto to = [](Tensor x, DType d) {
    OpCall call = unary("aten._to_copy.default", x);
    call.kwargs = {{"dtype", d}};
    return call;
  };
  expect_tensor(run1(to(vec(kF32, {1.7, -1.7, 300, -1}), kI32)), kI32, {4}, {1, -1, 300, -1});
  expect_tensor(run1(to(vec(kF32, {1.7, -1.7, 0, -0.0, kNaN}), kBool)), kBool, {5},
                {1, 1, 0, 0, 1});
  expect_tensor(run1(to(vec(kF32, {1.0009765625, 65519, 65520, 1e-8, -3.3e38}), kF16)), kF16, {5},
                {1.0009765625, 65504, kInf, 0, -kInf}, 0);
  expect_tensor(run1(to(vec(kF32, {1.00390625, 3.4e38, -3.3e38, 1.0078125}), kBF16)), kBF16, {4},
                {1, kInf, -3.29648543e+38, 1.0078125});
  expect_tensor(run1(to(transposed(tensor(kI64, {2, 2}, {1, 2, 3, 4})), kF16)), kF16, {2, 2},
                {1, 3, 2, 4});
  expect_tensor(run1(to(vec(kBool, {1, 0}), kF32)), kF32, {2}, {1, 0});
  expect_tensor(run1(unary("aten._to_copy.default", vec(kBF16, {1.5}))), kBF16, {1}, {1.5});
  OpCall device = unary("aten._to_copy.default", t);
  device.kwargs = {{"device", std::string("meta")}};
  expect_error(device, {"device", "meta"});
  OpCall layout = unary("aten._to_copy.default", t);
  layout.kwargs = {{"layout", int64_t{1}}};
  expect_error(layout, {"strided"});
}

// ----------------------------------------------------------------------------------------------
// Large tensors take the parallel, contiguous and broadcast fast paths; check them against a
// direct computation.

TEST(ElementwiseLarge, ParallelPathsMatchScalarComputation) {
  const int64_t rows = 300, cols = 1001;  // > 2 grains, rows not a multiple of anything useful
  const Tensor a = arange_tensor(kF32, {rows, cols}, -1000.0, 0.01);
  const Tensor bias = arange_tensor(kF32, {cols}, 0.0, 1.0);
  const std::vector<double> av = to_doubles(a);
  const Tensor sum = run1(binary("aten.add.Tensor", a, bias));
  const Tensor prod = run1(with_scalar("aten.mul.Tensor", a, 0.5));
  const Tensor col = run1(binary("aten.sub.Tensor", a, arange_tensor(kF32, {rows, 1}, 0.0, 1.0)));
  const Tensor act = run1(unary("aten.relu.default", a));
  const Tensor at = run1(unary("aten.neg.default", transposed(a)));
  const std::vector<double> s = to_doubles(sum), p = to_doubles(prod), c = to_doubles(col);
  const std::vector<double> r = to_doubles(act), t = to_doubles(at);
  ASSERT_EQ(t.size(), av.size());
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      const size_t k = static_cast<size_t>(i * cols + j);
      ASSERT_NEAR(s[k], av[k] + static_cast<double>(j), 1e-3) << i << ", " << j;
      ASSERT_NEAR(p[k], av[k] * 0.5, 1e-4) << i << ", " << j;
      ASSERT_NEAR(c[k], av[k] - static_cast<double>(i), 1e-3) << i << ", " << j;
      ASSERT_EQ(r[k], std::max(av[k], 0.0)) << i << ", " << j;
      ASSERT_EQ(t[static_cast<size_t>(j * rows + i)], -av[k]) << i << ", " << j;
    }
  }
}

}  // namespace
}  // namespace kiln::testing
