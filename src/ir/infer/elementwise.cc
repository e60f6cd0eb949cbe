// Shape and dtype inference for the elementwise ops: unary and binary arithmetic, comparisons,
// logical and bitwise ops, activations, clamp, where, masked_fill, fill and copies.
//
// Output shapes broadcast the inputs; output dtypes follow torch.result_type, in which a Scalar (or
// a number written where a Tensor goes, as torch.export records `x + 2`) and a 0-d tensor only
// raise the category (bool < integral < floating) of the dimensioned operands.
#include <cmath>
#include <limits>

#include "ir/infer/infer_util.h"
#include "ir/shape_inference.h"

namespace kiln::ir {

// Both are used by the CPU kernels too (declared for them in kernels/cpu/elementwise_common.h).
DType elementwise_result_type(std::span<const DType> dimensioned, std::span<const DType> zero_dim,
                              std::span<const DType> numbers);
Status check_scalar_fits(const Scalar& value, DType dtype);

namespace {

using std::optional;

// Combines the results of two priority levels: the lower level counts only when it is of a higher
// category (c10's combine_categories).
optional<DType> combine_levels(optional<DType> higher, optional<DType> lower) {
  if (!higher) return lower;
  if (!lower || is_floating(*higher)) return higher;
  if (*higher == DType::kBool || is_floating(*lower)) return promote_types(*higher, *lower);
  return higher;
}

optional<DType> promote_all(std::span<const DType> dtypes) {
  optional<DType> result;
  for (DType d : dtypes) result = result ? promote_types(*result, d) : d;
  return result;
}

std::string scalar_to_string(const Scalar& s) {
  if (s.kind == Scalar::Kind::kBool) return s.i ? "True" : "False";
  return s.kind == Scalar::Kind::kFloat ? str_cat(s.f) : str_cat(s.i);
}

// The largest finite value of a dtype, as a double.
double dtype_max(DType d) {
  switch (d) {
    case DType::kFloat32: return std::numeric_limits<float>::max();
    case DType::kFloat16: return 65504.0;
    case DType::kBFloat16: return 3.3895313892515355e38;
    case DType::kFloat64: return std::numeric_limits<double>::max();
    case DType::kInt64: return 9223372036854775807.0;
    case DType::kInt32: return std::numeric_limits<int32_t>::max();
    case DType::kInt16: return std::numeric_limits<int16_t>::max();
    case DType::kInt8: return std::numeric_limits<int8_t>::max();
    case DType::kUInt8: return std::numeric_limits<uint8_t>::max();
    case DType::kBool: return 1.0;
    case DType::kComplex64: return std::numeric_limits<float>::max();  // of either part
  }
  return 0.0;
}
double dtype_lowest(DType d) {
  if (is_floating(d) || is_complex(d)) return -dtype_max(d);
  if (d == DType::kUInt8 || d == DType::kBool) return 0.0;
  return -dtype_max(d) - 1.0;
}

}  // namespace

DType elementwise_result_type(std::span<const DType> dimensioned, std::span<const DType> zero_dim,
                              std::span<const DType> numbers) {
  optional<DType> result = combine_levels(
      promote_all(dimensioned), combine_levels(promote_all(zero_dim), promote_all(numbers)));
  return result.value_or(DType::kFloat32);
}

// c10's checked Scalar conversion (Scalar::to<T>): a value that the dtype cannot hold is an error,
// except that infinities and NaN go to floating types and negative ints wrap into uint8.
Status check_scalar_fits(const Scalar& value, DType dtype) {
  if (dtype == DType::kBool || value.kind == Scalar::Kind::kBool) return ok_status();
  bool fits;
  if (value.kind == Scalar::Kind::kFloat) {
    const double f = value.f;
    if (is_floating(dtype) && (std::isinf(f) || std::isnan(f))) {
      fits = true;
    } else {
      fits = f >= dtype_lowest(dtype) && f <= dtype_max(dtype);  // false for NaN
    }
  } else if (dtype == DType::kUInt8) {
    fits = value.i >= -255 && value.i <= 255;
  } else {
    const double i = static_cast<double>(value.i);
    fits = dtype == DType::kInt64 || (i >= dtype_lowest(dtype) && i <= dtype_max(dtype));
  }
  if (fits) return ok_status();
  return invalid_argument("value ", scalar_to_string(value), " cannot be converted to ",
                          dtype_name(dtype), " without overflow");
}

namespace {

// Which dtypes an op accepts, by category.
enum DTypeClasses : uint8_t { kBoolOk = 1, kIntOk = 2, kFloatOk = 4, kAnyOk = 7 };

uint8_t class_of(DType d) {
  return d == DType::kBool ? kBoolOk : is_integral(d) ? kIntOk : kFloatOk;
}

std::string_view classes_name(uint8_t classes) {
  switch (classes) {
    case kFloatOk: return "a floating-point dtype";
    case kIntOk | kBoolOk: return "an integral or bool dtype";
    case kIntOk | kFloatOk: return "an integral or floating-point dtype";
    default: return "a supported dtype";
  }
}

Status check_classes(OpContext& ctx, DType dtype, uint8_t classes) {
  if (class_of(dtype) & classes) return ok_status();
  return op_error(ctx, "expected ", classes_name(classes), ", found ", dtype_name(dtype));
}

// One operand as type promotion sees it: a tensor, or a number (a Scalar, or a number written in a
// Tensor position) that is promoted like a "wrapped number".
struct Operand {
  DType dtype = DType::kFloat32;
  Shape shape;
  bool is_number = false;
  Scalar number;
};

DType number_dtype(const Scalar& s) {
  switch (s.kind) {
    case Scalar::Kind::kBool: return DType::kBool;
    case Scalar::Kind::kInt: return DType::kInt64;
    case Scalar::Kind::kFloat: return DType::kFloat32;  // the default dtype
  }
  return DType::kFloat32;
}

Operand number_operand(const Scalar& s) {
  return Operand{number_dtype(s), {}, true, s};
}

Result<Operand> read_operand(OpContext& ctx, size_t i) {
  if (ctx.node().schema().args()[i].base == BaseType::kScalar) return number_operand(ctx.scalar(i));
  const RtValue v = ctx.any(i);
  KILN_RETURN_IF_ERROR(ctx.error());
  switch (v.kind) {
    case RtValue::Kind::kTensor: return Operand{v.tensor.dtype(), v.tensor.sizes(), false, {}};
    case RtValue::Kind::kInt: return number_operand(Scalar{Scalar::Kind::kInt, v.i, 0.0});
    case RtValue::Kind::kFloat: return number_operand(Scalar{Scalar::Kind::kFloat, 0, v.f});
    case RtValue::Kind::kBool: return number_operand(Scalar{Scalar::Kind::kBool, v.b, 0.0});
    case RtValue::Kind::kEmpty: break;
  }
  return op_error(ctx, "argument ", i, ": expected a tensor or a number, found nothing");
}

DType result_type(std::initializer_list<const Operand*> operands) {
  std::vector<DType> dims, zero_dims, numbers;
  for (const Operand* op : operands) {
    (op->is_number ? numbers : op->shape.empty() ? zero_dims : dims).push_back(op->dtype);
  }
  return elementwise_result_type(dims, zero_dims, numbers);
}

Result<Shape> broadcast(OpContext& ctx, std::initializer_list<const Operand*> operands) {
  Shape shape;
  for (const Operand* op : operands) {
    auto b = broadcast_shapes(shape, op->shape);
    if (!b.ok()) return op_error(ctx, b.status().message());
    shape = std::move(b).value();
  }
  return shape;
}

Status check_fits(OpContext& ctx, const Scalar& value, DType dtype, std::string_view what) {
  Status s = check_scalar_fits(value, dtype);
  if (!s.ok()) return op_error(ctx, what, ": ", s.message());
  return ok_status();
}

// ---------------------------------------------------------------------------------------------
// Binary ops.

enum class BinaryOut : uint8_t { kCommon, kFloat, kBool };

struct BinarySpec {
  uint8_t classes = kAnyOk;            // the categories the common dtype may have
  BinaryOut out = BinaryOut::kCommon;  // kFloat: integral/bool results become float32
  bool has_alpha = false;              // argument 2 is `Scalar alpha`
  bool rejects_bool = false;           // subtraction: no bool operand at all
};

Status check_alpha(OpContext& ctx, const Scalar& alpha, DType common) {
  if (alpha.kind == Scalar::Kind::kBool && common != DType::kBool) {
    return op_error(ctx, "expected a non-bool alpha for a ", dtype_name(common),
                    " result (bool alpha needs a bool result), found ", scalar_to_string(alpha));
  }
  if (alpha.kind == Scalar::Kind::kFloat && !is_floating(common)) {
    return op_error(ctx, "expected an integral alpha for a ", dtype_name(common), " result, found ",
                    scalar_to_string(alpha));
  }
  return check_fits(ctx, alpha, common, "alpha");
}

Result<DType> binary_common(OpContext& ctx, const Operand& a, const Operand& b,
                            const BinarySpec& spec) {
  DType common = result_type({&a, &b});
  if (spec.out == BinaryOut::kFloat && !is_floating(common)) common = DType::kFloat32;
  KILN_RETURN_IF_ERROR(check_classes(ctx, common, spec.classes));
  if (spec.rejects_bool && (a.dtype == DType::kBool || b.dtype == DType::kBool)) {
    return op_error(ctx, "expected non-bool operands (use logical_xor or logical_not for masks), ",
                    "found ", dtype_name(a.dtype), " and ", dtype_name(b.dtype));
  }
  if (spec.has_alpha) KILN_RETURN_IF_ERROR(check_alpha(ctx, ctx.scalar(2), common));
  return common;
}

template <BinarySpec kSpec>
Status infer_binary(OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Operand a, read_operand(ctx, 0));
  KILN_ASSIGN_OR_RETURN(Operand b, read_operand(ctx, 1));
  KILN_ASSIGN_OR_RETURN(Shape shape, broadcast(ctx, {&a, &b}));
  KILN_ASSIGN_OR_RETURN(DType common, binary_common(ctx, a, b, kSpec));
  ctx.set_output(0, Tensor::meta(kSpec.out == BinaryOut::kBool ? DType::kBool : common, shape));
  return ctx.error();
}

constexpr BinarySpec kArith{};
constexpr BinarySpec kArithAlpha{.has_alpha = true};
constexpr BinarySpec kSubtract{.has_alpha = true, .rejects_bool = true};
constexpr BinarySpec kTrueDivide{.out = BinaryOut::kFloat};
constexpr BinarySpec kIntegerDivide{.classes = kIntOk | kFloatOk};
constexpr BinarySpec kBitwise{.classes = kIntOk | kBoolOk};
constexpr BinarySpec kCompare{.out = BinaryOut::kBool};
constexpr BinarySpec kPowTensor{.classes = kIntOk | kFloatOk};

Status infer_div_mode(OpContext& ctx) {
  if (ctx.is_none(2)) return infer_binary<kTrueDivide>(ctx);
  const std::string& mode = ctx.string_arg(2);
  if (mode != "trunc" && mode != "floor") {
    return op_error(ctx, "expected rounding_mode None, 'trunc' or 'floor', found '", mode, "'");
  }
  return infer_binary<kIntegerDivide>(ctx);
}

// pow(Tensor, Scalar): bool results are fine (a bool exponent is 0 or 1: PyTorch fills or copies),
// but integers cannot take negative integer powers.
Status infer_pow_tensor_scalar(OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Operand a, read_operand(ctx, 0));
  KILN_ASSIGN_OR_RETURN(Operand b, read_operand(ctx, 1));
  const DType common = result_type({&a, &b});
  if (!is_floating(common) && b.number.kind == Scalar::Kind::kInt && b.number.i < 0) {
    return op_error(ctx, "expected a non-negative exponent for a ", dtype_name(common),
                    " base (integers to negative integer powers are not allowed), found ",
                    b.number.i);
  }
  ctx.set_output(0, Tensor::meta(common, a.shape));
  return ctx.error();
}

// ---------------------------------------------------------------------------------------------
// Unary ops.

enum class UnaryOut : uint8_t { kSame, kFloat, kBool };

struct UnarySpec {
  uint8_t classes = kAnyOk;
  UnaryOut out = UnaryOut::kSame;  // kFloat: integral/bool inputs give float32
};

template <UnarySpec kSpec>
Status infer_unary(OpContext& ctx) {
  const Tensor& x = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_RETURN_IF_ERROR(check_classes(ctx, x.dtype(), kSpec.classes));
  DType out = x.dtype();
  if (kSpec.out == UnaryOut::kBool) out = DType::kBool;
  if (kSpec.out == UnaryOut::kFloat && !is_floating(out)) out = DType::kFloat32;
  ctx.set_output(0, Tensor::meta(out, x.sizes()));
  return ctx.error();
}

constexpr UnarySpec kAnySame{};
constexpr UnarySpec kNumericSame{.classes = kIntOk | kFloatOk};
constexpr UnarySpec kFloatSame{.classes = kFloatOk};
constexpr UnarySpec kIntOrBoolSame{.classes = kIntOk | kBoolOk};
constexpr UnarySpec kToFloat{.out = UnaryOut::kFloat};
constexpr UnarySpec kToBool{.out = UnaryOut::kBool};

Status infer_neg(OpContext& ctx) {
  if (ctx.tensor(0).dtype() == DType::kBool) {
    return op_error(
        ctx, "expected a numeric tensor (use logical_not or ~ to invert a mask), found ", "bool");
  }
  return infer_unary<kNumericSame>(ctx);
}

Status infer_gelu(OpContext& ctx) {
  const std::string& approximate = ctx.string_arg(1);
  if (approximate != "none" && approximate != "tanh") {
    return op_error(ctx, "expected approximate 'none' or 'tanh', found '", approximate, "'");
  }
  return infer_unary<kFloatSame>(ctx);
}

// hardtanh clamps in the input dtype; its bounds must fit it.
Status infer_hardtanh(OpContext& ctx) {
  KILN_RETURN_IF_ERROR(infer_unary<kNumericSame>(ctx));
  const DType dtype = ctx.tensor(0).dtype();
  const Scalar lo = ctx.scalar(1), hi = ctx.scalar(2);
  if (dtype == DType::kUInt8 && (lo.to_double() < 0 || hi.to_double() < 0)) {
    return op_error(ctx, "expected non-negative limits for a uint8 input, found [",
                    scalar_to_string(lo), ", ", scalar_to_string(hi), "]");
  }
  KILN_RETURN_IF_ERROR(check_fits(ctx, lo, dtype, "min_val"));
  return check_fits(ctx, hi, dtype, "max_val");
}

// square is pow(x, 2): bool becomes int64.
Status infer_square(OpContext& ctx) {
  const Tensor& x = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  ctx.set_output(0, Tensor::meta(x.dtype() == DType::kBool ? DType::kInt64 : x.dtype(), x.sizes()));
  return ok_status();
}

// ---------------------------------------------------------------------------------------------
// clamp, where, masked_fill.

// clamp / clamp_min / clamp_max with Scalar bounds at arguments `first`..`last`.
template <size_t kFirst, size_t kLast>
Status infer_clamp_scalar(OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Operand x, read_operand(ctx, 0));
  std::vector<Operand> bounds;
  for (size_t i = kFirst; i <= kLast; ++i) {
    if (!ctx.is_none(i)) bounds.push_back(number_operand(ctx.scalar(i)));
  }
  if (bounds.empty()) return op_error(ctx, "expected a min or a max, found neither");
  const DType common = bounds.size() == 1 ? result_type({&x, &bounds[0]})
                                          : result_type({&x, &bounds[0], &bounds[1]});
  if (common == DType::kBool) return op_error(ctx, "expected a numeric result, found bool");
  for (const Operand& b : bounds) KILN_RETURN_IF_ERROR(check_fits(ctx, b.number, common, "bound"));
  ctx.set_output(0, Tensor::meta(common, x.shape));
  return ctx.error();
}

Status infer_clamp_tensor(OpContext& ctx) {
  std::vector<Operand> ops;
  for (size_t i = 0; i < 3; ++i) {
    if (i > 0 && ctx.is_none(i)) continue;
    KILN_ASSIGN_OR_RETURN(Operand op, read_operand(ctx, i));
    ops.push_back(std::move(op));
  }
  if (ops.size() == 1) return op_error(ctx, "expected a min or a max, found neither");
  const bool both = ops.size() == 3;
  KILN_ASSIGN_OR_RETURN(Shape shape, both ? broadcast(ctx, {&ops[0], &ops[1], &ops[2]})
                                          : broadcast(ctx, {&ops[0], &ops[1]}));
  const DType common =
      both ? result_type({&ops[0], &ops[1], &ops[2]}) : result_type({&ops[0], &ops[1]});
  if (both && common == DType::kBool) {
    return op_error(ctx, "expected a numeric result with both bounds, found bool");
  }
  ctx.set_output(0, Tensor::meta(common, shape));
  return ctx.error();
}

Status infer_where(OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Operand cond, read_operand(ctx, 0));
  KILN_ASSIGN_OR_RETURN(Operand a, read_operand(ctx, 1));
  KILN_ASSIGN_OR_RETURN(Operand b, read_operand(ctx, 2));
  if (cond.dtype != DType::kBool && cond.dtype != DType::kUInt8) {
    return op_error(ctx, "expected a bool condition, found ", dtype_name(cond.dtype));
  }
  KILN_ASSIGN_OR_RETURN(Shape shape, broadcast(ctx, {&cond, &a, &b}));
  ctx.set_output(0, Tensor::meta(result_type({&a, &b}), shape));
  return ctx.error();
}

Status infer_masked_fill(OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Operand self, read_operand(ctx, 0));
  KILN_ASSIGN_OR_RETURN(Operand mask, read_operand(ctx, 1));
  KILN_ASSIGN_OR_RETURN(Operand value, read_operand(ctx, 2));
  if (mask.dtype != DType::kBool) {
    return op_error(ctx, "expected a bool mask, found ", dtype_name(mask.dtype));
  }
  if (!value.shape.empty()) {
    return op_error(ctx, "expected a 0-d value tensor, found shape ", shape_to_string(value.shape));
  }
  if (value.is_number) KILN_RETURN_IF_ERROR(check_fits(ctx, value.number, self.dtype, "value"));
  KILN_ASSIGN_OR_RETURN(Shape shape, broadcast(ctx, {&self, &mask}));
  ctx.set_output(0, Tensor::meta(self.dtype, shape));
  return ctx.error();
}

// ---------------------------------------------------------------------------------------------
// Copies and fills.

Status check_memory_format(OpContext& ctx, size_t i, int64_t rank) {
  const optional<MemoryFormat> format = ctx.memory_format(i);
  if (format == MemoryFormat::kChannelsLast && rank != 4) {
    return op_error(ctx, "expected a rank-4 tensor for channels_last, found rank ", rank);
  }
  if (format == MemoryFormat::kChannelsLast3d && rank != 5) {
    return op_error(ctx, "expected a rank-5 tensor for channels_last_3d, found rank ", rank);
  }
  return ok_status();
}

Status infer_clone(OpContext& ctx) {
  const Tensor& x = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_RETURN_IF_ERROR(check_memory_format(ctx, 1, x.dim()));
  ctx.set_output(0, Tensor::meta(x.dtype(), x.sizes()));
  return ctx.error();
}

// copy(self, src, non_blocking): the functional copy_, self's dtype and shape with src's values
// (src broadcasts to self; its shape may not grow self's).
Status infer_copy(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const Tensor& src = ctx.tensor(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(Shape shape, broadcast_shapes(self.sizes(), src.sizes()),
                        op_name(ctx.node().op), " (node '", ctx.node().name, "')");
  if (shape != self.sizes()) {
    return op_error(ctx, "src ", src.description(), " does not broadcast to self ",
                    self.description());
  }
  ctx.set_output(0, Tensor::meta(self.dtype(), self.sizes()));
  return ctx.error();
}

// _to_copy(self, *, dtype, layout, device, pin_memory, non_blocking, memory_format): kiln tensors
// are strided and live where the backend puts them, so only the dtype changes.
Status infer_to_copy(OpContext& ctx) {
  const Tensor& x = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  const Argument& layout = ctx.node().args[2];
  if (!std::holds_alternative<NoneArg>(layout)) {
    return unsupported(op_name(ctx.node().op), " (node '", ctx.node().name,
                       "'): expected the strided layout, found ", argument_to_string(layout));
  }
  const Argument& device = ctx.node().args[3];
  std::string type = "cpu";
  if (const auto* d = std::get_if<Device>(&device)) type = d->type;
  if (const auto* s = std::get_if<std::string>(&device)) type = s->substr(0, s->find(':'));
  if (type != "cpu" && type != "cuda") {
    return unsupported(op_name(ctx.node().op), " (node '", ctx.node().name,
                       "'): expected device cpu or cuda, found '", type, "'");
  }
  KILN_RETURN_IF_ERROR(check_memory_format(ctx, 6, x.dim()));
  ctx.set_output(0, Tensor::meta(ctx.scalar_type(1).value_or(x.dtype()), x.sizes()));
  return ctx.error();
}

Status infer_fill(OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Operand self, read_operand(ctx, 0));
  KILN_ASSIGN_OR_RETURN(Operand value, read_operand(ctx, 1));
  if (!value.shape.empty()) {
    return op_error(ctx, "expected a 0-d value tensor, found shape ", shape_to_string(value.shape));
  }
  if (value.is_number) KILN_RETURN_IF_ERROR(check_fits(ctx, value.number, self.dtype, "value"));
  ctx.set_output(0, Tensor::meta(self.dtype, self.shape));
  return ctx.error();
}

Status register_binary(OpFunctionTable& table) {
  return add_all(table, {
                            {OpKey::aten_add_Tensor, infer_binary<kArithAlpha>},
                            {OpKey::aten_add_Scalar, infer_binary<kArithAlpha>},
                            {OpKey::aten_sub_Tensor, infer_binary<kSubtract>},
                            {OpKey::aten_sub_Scalar, infer_binary<kSubtract>},
                            {OpKey::aten_subtract_Tensor, infer_binary<kSubtract>},
                            {OpKey::aten_subtract_Scalar, infer_binary<kSubtract>},
                            {OpKey::aten_rsub_Tensor, infer_binary<kSubtract>},
                            {OpKey::aten_rsub_Scalar, infer_binary<kSubtract>},
                            {OpKey::aten_mul_Tensor, infer_binary<kArith>},
                            {OpKey::aten_mul_Scalar, infer_binary<kArith>},
                            {OpKey::aten_multiply_Tensor, infer_binary<kArith>},
                            {OpKey::aten_multiply_Scalar, infer_binary<kArith>},
                            {OpKey::aten_div_Tensor, infer_binary<kTrueDivide>},
                            {OpKey::aten_div_Scalar, infer_binary<kTrueDivide>},
                            {OpKey::aten_true_divide_Tensor, infer_binary<kTrueDivide>},
                            {OpKey::aten_true_divide_Scalar, infer_binary<kTrueDivide>},
                            {OpKey::aten_div_Tensor_mode, infer_div_mode},
                            {OpKey::aten_div_Scalar_mode, infer_div_mode},
                            {OpKey::aten_floor_divide_default, infer_binary<kIntegerDivide>},
                            {OpKey::aten_floor_divide_Scalar, infer_binary<kIntegerDivide>},
                            {OpKey::aten_remainder_Tensor, infer_binary<kIntegerDivide>},
                            {OpKey::aten_remainder_Scalar, infer_binary<kIntegerDivide>},
                            {OpKey::aten_remainder_Scalar_Tensor, infer_binary<kIntegerDivide>},
                            {OpKey::aten_fmod_Tensor, infer_binary<kIntegerDivide>},
                            {OpKey::aten_fmod_Scalar, infer_binary<kIntegerDivide>},
                            {OpKey::aten_pow_Tensor_Tensor, infer_binary<kPowTensor>},
                            {OpKey::aten_pow_Scalar, infer_binary<kPowTensor>},
                            {OpKey::aten_pow_Tensor_Scalar, infer_pow_tensor_scalar},
                            {OpKey::aten_maximum_default, infer_binary<kArith>},
                            {OpKey::aten_minimum_default, infer_binary<kArith>},
                            {OpKey::aten_clamp_min_Tensor, infer_binary<kArith>},
                            {OpKey::aten_clamp_max_Tensor, infer_binary<kArith>},
                            {OpKey::aten_atan2_default, infer_binary<kTrueDivide>},
                        });
}

Status register_logical(OpFunctionTable& table) {
  return add_all(table, {
                            {OpKey::aten_eq_Tensor, infer_binary<kCompare>},
                            {OpKey::aten_eq_Scalar, infer_binary<kCompare>},
                            {OpKey::aten_ne_Tensor, infer_binary<kCompare>},
                            {OpKey::aten_ne_Scalar, infer_binary<kCompare>},
                            {OpKey::aten_lt_Tensor, infer_binary<kCompare>},
                            {OpKey::aten_lt_Scalar, infer_binary<kCompare>},
                            {OpKey::aten_le_Tensor, infer_binary<kCompare>},
                            {OpKey::aten_le_Scalar, infer_binary<kCompare>},
                            {OpKey::aten_gt_Tensor, infer_binary<kCompare>},
                            {OpKey::aten_gt_Scalar, infer_binary<kCompare>},
                            {OpKey::aten_ge_Tensor, infer_binary<kCompare>},
                            {OpKey::aten_ge_Scalar, infer_binary<kCompare>},
                            {OpKey::aten_logical_and_default, infer_binary<kCompare>},
                            {OpKey::aten_logical_or_default, infer_binary<kCompare>},
                            {OpKey::aten_logical_xor_default, infer_binary<kCompare>},
                            {OpKey::aten_bitwise_and_Tensor, infer_binary<kBitwise>},
                            {OpKey::aten_bitwise_and_Scalar, infer_binary<kBitwise>},
                            {OpKey::aten_bitwise_and_Scalar_Tensor, infer_binary<kBitwise>},
                            {OpKey::aten_bitwise_or_Tensor, infer_binary<kBitwise>},
                            {OpKey::aten_bitwise_or_Scalar, infer_binary<kBitwise>},
                            {OpKey::aten_bitwise_or_Scalar_Tensor, infer_binary<kBitwise>},
                            {OpKey::aten_bitwise_xor_Tensor, infer_binary<kBitwise>},
                            {OpKey::aten_bitwise_xor_Scalar, infer_binary<kBitwise>},
                            {OpKey::aten_bitwise_xor_Scalar_Tensor, infer_binary<kBitwise>},
                            {OpKey::aten_logical_not_default, infer_unary<kToBool>},
                            {OpKey::aten_bitwise_not_default, infer_unary<kIntOrBoolSame>},
                            {OpKey::aten_isnan_default, infer_unary<kToBool>},
                            {OpKey::aten_isinf_default, infer_unary<kToBool>},
                            {OpKey::aten_isfinite_default, infer_unary<kToBool>},
                        });
}

Status register_unary(OpFunctionTable& table) {
  KILN_RETURN_IF_ERROR(add_all(table, {
                                          {OpKey::aten_abs_default, infer_unary<kNumericSame>},
                                          {OpKey::aten_neg_default, infer_neg},
                                          {OpKey::aten_sign_default, infer_unary<kAnySame>},
                                          {OpKey::aten_floor_default, infer_unary<kNumericSame>},
                                          {OpKey::aten_ceil_default, infer_unary<kNumericSame>},
                                          {OpKey::aten_round_default, infer_unary<kNumericSame>},
                                          {OpKey::aten_trunc_default, infer_unary<kNumericSame>},
                                          {OpKey::aten_round_decimals, infer_unary<kFloatSame>},
                                          {OpKey::aten_frac_default, infer_unary<kFloatSame>},
                                          {OpKey::aten_square_default, infer_square},
                                          {OpKey::aten_nan_to_num_default, infer_unary<kAnySame>},
                                      }));
  for (OpKey key :
       {OpKey::aten_exp_default,        OpKey::aten_exp2_default,   OpKey::aten_expm1_default,
        OpKey::aten_log_default,        OpKey::aten_log2_default,   OpKey::aten_log10_default,
        OpKey::aten_log1p_default,      OpKey::aten_sqrt_default,   OpKey::aten_rsqrt_default,
        OpKey::aten_reciprocal_default, OpKey::aten_sin_default,    OpKey::aten_cos_default,
        OpKey::aten_tan_default,        OpKey::aten_asin_default,   OpKey::aten_acos_default,
        OpKey::aten_atan_default,       OpKey::aten_sinh_default,   OpKey::aten_cosh_default,
        OpKey::aten_tanh_default,       OpKey::aten_asinh_default,  OpKey::aten_acosh_default,
        OpKey::aten_atanh_default,      OpKey::aten_erf_default,    OpKey::aten_erfc_default,
        OpKey::aten_erfinv_default,     OpKey::aten_sigmoid_default}) {
    KILN_RETURN_IF_ERROR(table.add(key, infer_unary<kToFloat>));
  }
  return ok_status();
}

Status register_activation_and_select(OpFunctionTable& table) {
  return add_all(table, {
                            {OpKey::aten_relu_default, infer_unary<kNumericSame>},
                            {OpKey::aten_relu6_default, infer_unary<kNumericSame>},
                            {OpKey::aten_hardtanh_default, infer_hardtanh},
                            {OpKey::aten_gelu_default, infer_gelu},
                            {OpKey::aten_silu_default, infer_unary<kFloatSame>},
                            {OpKey::aten_mish_default, infer_unary<kFloatSame>},
                            {OpKey::aten_hardswish_default, infer_unary<kFloatSame>},
                            {OpKey::aten_hardsigmoid_default, infer_unary<kFloatSame>},
                            {OpKey::aten_leaky_relu_default, infer_unary<kFloatSame>},
                            {OpKey::aten_elu_default, infer_unary<kFloatSame>},
                            {OpKey::aten_softplus_default, infer_unary<kFloatSame>},
                            {OpKey::aten_clamp_default, infer_clamp_scalar<1, 2>},
                            {OpKey::aten_clamp_min_default, infer_clamp_scalar<1, 1>},
                            {OpKey::aten_clamp_max_default, infer_clamp_scalar<1, 1>},
                            {OpKey::aten_clamp_Tensor, infer_clamp_tensor},
                            {OpKey::aten_where_self, infer_where},
                            {OpKey::aten_where_ScalarSelf, infer_where},
                            {OpKey::aten_where_ScalarOther, infer_where},
                            {OpKey::aten_where_Scalar, infer_where},
                            {OpKey::aten_masked_fill_Scalar, infer_masked_fill},
                            {OpKey::aten_masked_fill_Tensor, infer_masked_fill},
                            {OpKey::aten_clone_default, infer_clone},
                            {OpKey::aten_copy_default, infer_copy},
                            {OpKey::aten_lift_fresh_copy_default, infer_clone},
                            {OpKey::aten__to_copy_default, infer_to_copy},
                            {OpKey::aten_fill_Scalar, infer_fill},
                            {OpKey::aten_fill_Tensor, infer_fill},
                        });
}

}  // namespace

Status register_elementwise_inference(OpFunctionTable& table) {
  KILN_RETURN_IF_ERROR(register_binary(table));
  KILN_RETURN_IF_ERROR(register_logical(table));
  KILN_RETURN_IF_ERROR(register_unary(table));
  return register_activation_and_select(table);
}

}  // namespace kiln::ir
