// Conformance of the elementwise ops (inference + CPU kernels) with PyTorch 2.11 eager. Expected
// values were computed with torch on CPU and are hard-coded here.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "support/op_runner.h"

namespace kiln::testing {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr DType kF32 = DType::kFloat32, kF16 = DType::kFloat16, kBF16 = DType::kBFloat16;
constexpr DType kI64 = DType::kInt64, kI32 = DType::kInt32, kI8 = DType::kInt8;
constexpr DType kBool = DType::kBool, kU8 = DType::kUInt8, kF64 = DType::kFloat64;

Tensor tensor(DType dtype, Shape shape, std::vector<double> values) {
  return make_tensor(dtype, std::move(shape), values);
}
Tensor vec(DType dtype, std::vector<double> values) {
  const int64_t n = static_cast<int64_t>(values.size());
  return make_tensor(dtype, {n}, values);
}
Tensor scalar_tensor(DType dtype, double v) { return make_tensor(dtype, {}, {v}); }

// A 2-D tensor's transpose, as a strided view.
Tensor transposed(const Tensor& t) {
  return t.view_as({t.size(1), t.size(0)}, {t.strides()[1], t.strides()[0]}, t.offset());
}
// `t` (one dim) broadcast along a new leading dim of `rows`, with stride 0.
Tensor expanded_rows(const Tensor& t, int64_t rows) {
  return t.view_as({rows, t.size(0)}, {0, t.strides()[0]}, t.offset());
}

// Runs a one-output op, failing the test on an error.
Tensor run1(const OpCall& call) {
  auto result = run_op(call);
  if (!result.ok()) {
    ADD_FAILURE() << call.target << ": " << result.status().to_string();
    return Tensor();
  }
  return (*result)[0];
}

void expect_tensor(const Tensor& t, DType dtype, const Shape& shape,
                   const std::vector<double>& expected, double tol = 1e-4) {
  ASSERT_TRUE(t.has_data());
  EXPECT_EQ(dtype_name(t.dtype()), dtype_name(dtype));
  EXPECT_EQ(shape_to_string(t.sizes()), shape_to_string(shape));
  const std::vector<double> got = to_doubles(t);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(expected[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << "element " << i << ": expected NaN, found " << got[i];
    } else if (std::isinf(expected[i])) {
      EXPECT_EQ(got[i], expected[i]) << "element " << i;
    } else {
      EXPECT_NEAR(got[i], expected[i], tol + tol * std::abs(expected[i])) << "element " << i;
    }
  }
}

// Runs a call that must fail, with a message containing each of `parts`.
void expect_error(const OpCall& call, std::initializer_list<std::string_view> parts) {
  auto result = run_op(call);
  ASSERT_FALSE(result.ok()) << call.target << " succeeded";
  const std::string& message = result.status().message();
  for (std::string_view part : parts) {
    EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
  }
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
  OpCall call = binary("aten.add.Tensor", tensor(kF32, {2, 3}, {1, 2, 3, 4, 5, 6}),
                       vec(kF32, {0.5, -1, 2}));
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
  expect_tensor(run1(binary("aten.add.Tensor", vec(kBool, {1, 1, 0}), vec(kBool, {1, 0, 0}))), kBool,
                {3}, {1, 1, 0});
  // Integer overflow wraps around.
  expect_tensor(run1(with_scalar("aten.add.Tensor", vec(kI32, {2147483647}), int64_t{1})), kI32, {1},
                {-2147483648.0});
  // A float16 tensor plus a Python float keeps the scalar at full precision (1.5 + 0.1).
  expect_tensor(run1(with_scalar("aten.add.Tensor", vec(kF16, {1.5, 2.5}), 0.1)), kF16, {2},
                {1.59960938, 2.59960938}, 0);
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
  expect_tensor(run1(binary("aten.sub.Tensor", scalar_tensor(kF32, 5), scalar_tensor(kF32, 2))), kF32,
                {}, {3});
  expect_tensor(run1(binary("aten.sub.Tensor", scalar_tensor(kF32, 5), vec(kF32, {1, 2}))), kF32, {2},
                {4, 3});
  expect_tensor(run1(binary("aten.mul.Tensor", tensor(kF32, {2, 1}, {1, 2}), tensor(kF32, {1, 3}, {1, 2, 3}))),
                kF32, {2, 3}, {1, 2, 3, 2, 4, 6});
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
  expect_tensor(run1(with_scalar("aten.floor_divide.Scalar", vec(kI64, {-9223372036854775807.0 - 1}),
                                 int64_t{-1})),
                kI64, {1}, {-9223372036854775807.0 - 1});
  OpCall rem = {.target = "aten.remainder.Scalar_Tensor",
                .inputs = {vec(kI32, {3, -3})},
                .args = {int64_t{2}, TensorArg{0}}};
  expect_tensor(run1(rem), kI32, {2}, {2, -1});
  for (const char* op : {"aten.remainder.Tensor", "aten.fmod.Tensor", "aten.floor_divide.default"}) {
    expect_error(binary(op, vec(kI32, {1, 2}), vec(kI32, {1, 0})), {"division by zero"});
  }
  expect_error(div_mode(vec(kI64, {1}), scalar_tensor(kI64, 0), "trunc"), {"division by zero"});
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
      {0.5, {kNaN, kNaN, 0, 0.5, 2, kNaN}},      {2.5, {kInf, kNaN, 0, 0.03125, 32, kNaN}},
      {-2.0, {0, 0.25, kInf, 16, 0.0625, kNaN}}, {-0.5, {kNaN, kNaN, -kInf, 2, 0.5, kNaN}},
      {0.0, {1, 1, 1, 1, 1, 1}},                 {1.0, {-kInf, -2, 0, 0.25, 4, kNaN}},
      {3.0, {-kInf, -8, 0, 0.015625, 64, kNaN}}, {-1.0, {0, -0.5, -kInf, 4, 0.25, kNaN}},
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
  expect_tensor(run1(with_scalar("aten.pow.Tensor_Scalar", vec(kI32, {4}), -0.5)), kF32, {1}, {0.5});
  OpCall scalar_base = {.target = "aten.pow.Scalar", .inputs = {vec(kI64, {-1, 0, 2, 3})},
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
  expect_tensor(run1(with_scalar("aten.lt.Scalar", vec(kI32, {1, 2, 3}), 2.5)), kBool, {3}, {1, 1, 0});
  // Both operands are cast to the common dtype first: float16(0.1) == 0.1.
  expect_tensor(run1(with_scalar("aten.eq.Scalar", vec(kF16, {0.1, 0.2}), 0.1)), kBool, {2}, {1, 0});
  expect_tensor(run1(with_scalar("aten.gt.Scalar", vec(kF16, {0.1, 0.2}), 0.1)), kBool, {2}, {0, 1});
  // A 0-d int64 operand is converted to int32: 2^32 + 3 wraps to 3.
  expect_tensor(run1(binary("aten.eq.Tensor", vec(kI32, {3, -3}), scalar_tensor(kI64, 4294967299.0))),
                kBool, {2}, {1, 0});
  expect_tensor(run1(with_scalar("aten.eq.Scalar", vec(kBool, {1, 0}), 0.5)), kBool, {2}, {0, 0});
  expect_tensor(run1(binary("aten.ge.Tensor", transposed(tensor(kI64, {2, 2}, {1, 2, 3, 4})),
                            tensor(kI64, {2, 2}, {1, 3, 2, 4}))),
                kBool, {2, 2}, {1, 0, 1, 1});
}

TEST(ElementwiseLogical, LogicalAndBitwise) {
  const Tensor f = vec(kF32, {0, kNaN, 2, -0.0}), i = vec(kI64, {1, 1, 0, 1});
  expect_tensor(run1(binary("aten.logical_and.default", f, i)), kBool, {4}, {0, 1, 0, 0});
  expect_tensor(run1(binary("aten.logical_or.default", f, i)), kBool, {4}, {1, 1, 1, 1});
  expect_tensor(run1(binary("aten.logical_xor.default", f, i)), kBool, {4}, {1, 0, 1, 1});
  expect_tensor(run1(unary("aten.logical_not.default", f)), kBool, {4}, {1, 0, 0, 1});
  const Tensor n = vec(kI32, {12, -1, 5});
  expect_tensor(run1(with_scalar("aten.bitwise_and.Scalar", n, int64_t{10})), kI32, {3}, {8, 10, 0});
  expect_tensor(run1(binary("aten.bitwise_or.Tensor", n, vec(kBool, {1, 0, 1}))), kI32, {3},
                {13, -1, 5});
  expect_tensor(run1(binary("aten.bitwise_xor.Tensor", n, vec(kI64, {3}))), kI64, {3}, {15, -4, 6});
  expect_tensor(run1(unary("aten.bitwise_not.default", n)), kI32, {3}, {-13, 0, -6});
  expect_tensor(run1(unary("aten.bitwise_not.default", vec(kBool, {1, 0}))), kBool, {2}, {0, 1});
  expect_tensor(run1(unary("aten.bitwise_not.default", vec(kU8, {5}))), kU8, {1}, {250});
  expect_tensor(run1(binary("aten.bitwise_and.Tensor", vec(kBool, {1, 1, 0}), vec(kBool, {1, 0, 0}))),
                kBool, {3}, {1, 0, 0});
  OpCall scalar_first = {.target = "aten.bitwise_and.Scalar_Tensor", .inputs = {vec(kI32, {3, -3})},
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

}  // namespace
}  // namespace kiln::testing
