// Symbolic scalars: sym_size and friends, the Python operators torch.export emits for arithmetic on
// symbolic ints (`_operator.mul`, `torch.sym_max`), and the runtime assertions. "Inference" here is
// the computation itself: these ops have no tensor outputs, so no backend kernel runs for them.
#include <cmath>
#include <span>
#include <vector>

#include "ir/shape_inference.h"

namespace kiln::ir {
namespace {

using Kind = RtValue::Kind;

int64_t wrap_sym_dim(int64_t dim, int64_t rank) {
  return dim < 0 ? dim + rank : dim;
}

Status check_dim(OpContext& ctx, int64_t dim, int64_t rank) {
  if (dim < 0 || dim >= std::max<int64_t>(rank, 1)) {
    return out_of_range("dim ", dim, " is out of range for a tensor of rank ", rank);
  }
  return ok_status();
}

Status sym_size(OpContext& ctx) {
  const Tensor& t = ctx.tensor(0);
  const int64_t dim = wrap_sym_dim(ctx.int_arg(1), t.dim());
  KILN_RETURN_IF_ERROR(check_dim(ctx, dim, t.dim()));
  ctx.output(0) = RtValue::of_int(t.dim() == 0 ? 1 : t.size(dim));
  return ok_status();
}

Status sym_stride(OpContext& ctx) {
  const Tensor& t = ctx.tensor(0);
  const int64_t dim = wrap_sym_dim(ctx.int_arg(1), t.dim());
  KILN_RETURN_IF_ERROR(check_dim(ctx, dim, t.dim()));
  // kiln's outputs are contiguous: report the contiguous stride, as the program recorded it.
  ctx.output(0) = RtValue::of_int(contiguous_strides(t.sizes())[dim]);
  return ok_status();
}

Status sym_numel(OpContext& ctx) {
  ctx.output(0) = RtValue::of_int(ctx.tensor(0).numel());
  return ok_status();
}

// Where the tensor starts in its storage: a view's offset (slice, select, narrow), as PyTorch's
// views of the same tensor have it; 0 for a tensor kiln allocates.
Status sym_storage_offset(OpContext& ctx) {
  ctx.output(0) = RtValue::of_int(ctx.tensor(0).offset());
  return ctx.error();
}

// c10's contiguity rule on sizes and strides: the dims, walked innermost first in the format's
// order (channels_last: C, W, H, N), are densely packed; dims of size 1 are skipped.
bool dense_in_order(const Tensor& t, std::span<const int64_t> order) {
  int64_t expected = 1;
  for (int64_t d : order) {
    const int64_t size = t.size(d);
    if (size == 1) continue;
    if (t.strides()[d] != expected) return false;
    expected *= size;
  }
  return true;
}

// sym_is_contiguous(self, memory_format=contiguous_format): whether `self`'s strides are dense
// in that format's order. An empty tensor is contiguous (but, as in c10, not channels-last
// contiguous unless its strides say so); channels-last formats apply to 4-D (5-D for 3d) tensors.
Status sym_is_contiguous(OpContext& ctx) {
  const Tensor& t = ctx.tensor(0);
  const MemoryFormat format = ctx.memory_format(1).value_or(MemoryFormat::kContiguous);
  KILN_RETURN_IF_ERROR(ctx.error());
  bool result = false;
  switch (format) {
    case MemoryFormat::kContiguous: {
      std::vector<int64_t> order(t.dim());
      for (int64_t d = 0; d < t.dim(); ++d) order[d] = t.dim() - 1 - d;
      result = t.numel() == 0 || dense_in_order(t, order);
      break;
    }
    case MemoryFormat::kChannelsLast: {
      static constexpr int64_t kOrder[] = {1, 3, 2, 0};
      result = t.dim() == 4 && dense_in_order(t, kOrder);
      break;
    }
    case MemoryFormat::kChannelsLast3d: {
      static constexpr int64_t kOrder[] = {1, 4, 3, 2, 0};
      result = t.dim() == 5 && dense_in_order(t, kOrder);
      break;
    }
    case MemoryFormat::kPreserve:
      return invalid_argument("sym_is_contiguous: memory format preserve_format is not a layout "
                              "a tensor can have");
  }
  ctx.output(0) = RtValue::of_bool(result);
  return ok_status();
}

bool is_float(const RtValue& v) {
  return v.kind == Kind::kFloat;
}

int64_t as_int(const RtValue& v) {
  return v.kind == Kind::kBool ? v.b : v.i;
}

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// Binary arithmetic with Python semantics: int op int stays int (// and % floor), else float.
template <typename IntOp, typename FloatOp>
Status binary(OpContext& ctx, IntOp int_op, FloatOp float_op) {
  RtValue a = ctx.any(0), b = ctx.any(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (!a.is_number() || !b.is_number()) {
    return unsupported(op_name(ctx.node().op), " on a tensor operand");
  }
  if (is_float(a) || is_float(b)) {
    ctx.output(0) = RtValue::of_float(float_op(a.as_double(), b.as_double()));
    return ok_status();
  }
  auto result = int_op(as_int(a), as_int(b));
  if (!result.ok()) return result.take_status();
  ctx.output(0) = RtValue::of_int(*result);
  return ok_status();
}

template <typename Cmp>
Status compare(OpContext& ctx, Cmp cmp) {
  RtValue a = ctx.any(0), b = ctx.any(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  const bool result =
      (is_float(a) || is_float(b)) ? cmp(a.as_double(), b.as_double()) : cmp(as_int(a), as_int(b));
  ctx.output(0) = RtValue::of_bool(result);
  return ok_status();
}

Result<int64_t> checked(int64_t a, int64_t b, bool (*op)(int64_t, int64_t, int64_t*)) {
  int64_t r;
  if (op(a, b, &r)) return out_of_range("symbolic int arithmetic overflows: ", a, ", ", b);
  return r;
}
bool add_overflow(int64_t a, int64_t b, int64_t* r) {
  return __builtin_add_overflow(a, b, r);
}
bool sub_overflow(int64_t a, int64_t b, int64_t* r) {
  return __builtin_sub_overflow(a, b, r);
}
bool mul_overflow(int64_t a, int64_t b, int64_t* r) {
  return __builtin_mul_overflow(a, b, r);
}

Status py_add(OpContext& ctx) {
  return binary(
      ctx, [](int64_t a, int64_t b) { return checked(a, b, add_overflow); },
      [](double a, double b) { return a + b; });
}
Status py_sub(OpContext& ctx) {
  return binary(
      ctx, [](int64_t a, int64_t b) { return checked(a, b, sub_overflow); },
      [](double a, double b) { return a - b; });
}
Status py_mul(OpContext& ctx) {
  return binary(
      ctx, [](int64_t a, int64_t b) { return checked(a, b, mul_overflow); },
      [](double a, double b) { return a * b; });
}
Status py_floordiv(OpContext& ctx) {
  return binary(
      ctx,
      [](int64_t a, int64_t b) -> Result<int64_t> {
        if (b == 0) return invalid_argument("integer division by zero");
        return floor_div(a, b);
      },
      [](double a, double b) { return std::floor(a / b); });
}
Status py_mod(OpContext& ctx) {
  return binary(
      ctx,
      [](int64_t a, int64_t b) -> Result<int64_t> {
        if (b == 0) return invalid_argument("integer modulo by zero");
        return a - floor_div(a, b) * b;
      },
      [](double a, double b) { return a - std::floor(a / b) * b; });
}
Status py_truediv(OpContext& ctx) {
  RtValue a = ctx.any(0), b = ctx.any(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  ctx.output(0) = RtValue::of_float(a.as_double() / b.as_double());
  return ok_status();
}
Status py_pow(OpContext& ctx) {
  return binary(
      ctx,
      [](int64_t a, int64_t b) -> Result<int64_t> {
        if (b < 0) return unsupported("negative integer power of a symbolic int");
        int64_t r = 1;
        for (int64_t i = 0; i < b; ++i) {
          KILN_ASSIGN_OR_RETURN(r, checked(r, a, mul_overflow));
        }
        return r;
      },
      [](double a, double b) { return std::pow(a, b); });
}
Status sym_max(OpContext& ctx) {
  return binary(
      ctx, [](int64_t a, int64_t b) -> Result<int64_t> { return std::max(a, b); },
      [](double a, double b) { return std::max(a, b); });
}
Status sym_min(OpContext& ctx) {
  return binary(
      ctx, [](int64_t a, int64_t b) -> Result<int64_t> { return std::min(a, b); },
      [](double a, double b) { return std::min(a, b); });
}
Status py_neg(OpContext& ctx) {
  RtValue a = ctx.any(0);
  ctx.output(0) = is_float(a) ? RtValue::of_float(-a.f) : RtValue::of_int(-as_int(a));
  return ctx.error();
}
Status py_not(OpContext& ctx) {
  RtValue a = ctx.any(0);
  ctx.output(0) = RtValue::of_bool(a.as_double() == 0.0);
  return ctx.error();
}
Status py_and(OpContext& ctx) {
  return compare(ctx, [](auto a, auto b) { return a != 0 && b != 0; });
}
Status py_or(OpContext& ctx) {
  return compare(ctx, [](auto a, auto b) { return a != 0 || b != 0; });
}
Status sym_float(OpContext& ctx) {
  ctx.output(0) = RtValue::of_float(ctx.any(0).as_double());
  return ctx.error();
}
template <double (*Round)(double)>
Status to_int(OpContext& ctx) {
  RtValue a = ctx.any(0);
  ctx.output(0) =
      is_float(a) ? RtValue::of_int(static_cast<int64_t>(Round(a.f))) : RtValue::of_int(as_int(a));
  return ctx.error();
}
double trunc_fn(double x) {
  return std::trunc(x);
}
double ceil_fn(double x) {
  return std::ceil(x);
}
double floor_fn(double x) {
  return std::floor(x);
}
Status sym_sqrt(OpContext& ctx) {
  ctx.output(0) = RtValue::of_float(std::sqrt(ctx.any(0).as_double()));
  return ctx.error();
}
Status sym_ite(OpContext& ctx) {
  RtValue cond = ctx.any(0);
  ctx.output(0) = cond.as_double() != 0.0 ? ctx.any(1) : ctx.any(2);
  return ctx.error();
}

// getitem on a multi-output node is resolved by the frontend (serialized programs name each
// output); one left in a graph means a construct kiln does not read.
Status getitem(OpContext& ctx) {
  return unsupported("getitem outside a multi-output node");
}

// Runtime assertions that export inserts: checked on the values kiln actually has.
Status assert_tensor_metadata(OpContext& ctx) {
  const Tensor& t = ctx.tensor(0);
  if (auto dtype = ctx.scalar_type(3); dtype && *dtype != t.dtype()) {
    return invalid_argument(
        "tensor '", ctx.node().args.empty() ? "" : argument_to_string(ctx.node().args[0]),
        "' was expected to have dtype ", dtype_name(*dtype), ", found ", dtype_name(t.dtype()));
  }
  if (auto sizes = ctx.optional_ints(1); sizes && *sizes != t.sizes()) {
    return invalid_argument("tensor expected to have shape ", shape_to_string(*sizes), ", found ",
                            shape_to_string(t.sizes()));
  }
  return ctx.error();
}

Status assert_scalar(OpContext& ctx) {
  RtValue cond = ctx.any(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (cond.as_double() == 0.0) {
    return invalid_argument("runtime assertion failed: ", ctx.string_arg(1));
  }
  return ok_status();
}

Status constrain_range(OpContext& ctx) {
  const int64_t v = ctx.int_arg(0);
  auto lo = ctx.optional_int(1), hi = ctx.optional_int(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  if ((lo && v < *lo) || (hi && v > *hi)) {
    return out_of_range("value ", v, " is outside its range [", lo ? *lo : INT64_MIN, ", ",
                        hi ? *hi : INT64_MAX, "]");
  }
  return ok_status();
}

}  // namespace

Status register_symbolic_inference(OpFunctionTable& table) {
  return add_all(
      table,
      {
          {OpKey::aten_sym_size_int, sym_size},
          {OpKey::aten_sym_stride_int, sym_stride},
          {OpKey::aten_sym_numel_default, sym_numel},
          {OpKey::aten_sym_storage_offset_default, sym_storage_offset},
          {OpKey::aten_sym_is_contiguous_default, sym_is_contiguous},
          {OpKey::operator_getitem_default, getitem},
          {OpKey::operator_add_default, py_add},
          {OpKey::operator_sub_default, py_sub},
          {OpKey::operator_mul_default, py_mul},
          {OpKey::operator_floordiv_default, py_floordiv},
          {OpKey::operator_truediv_default, py_truediv},
          {OpKey::operator_mod_default, py_mod},
          {OpKey::operator_pow_default, py_pow},
          {OpKey::operator_neg_default, py_neg},
          {OpKey::operator_eq_default, [](OpContext& c) { return compare(c, std::equal_to<>()); }},
          {OpKey::operator_ne_default,
           [](OpContext& c) { return compare(c, std::not_equal_to<>()); }},
          {OpKey::operator_lt_default, [](OpContext& c) { return compare(c, std::less<>()); }},
          {OpKey::operator_le_default,
           [](OpContext& c) { return compare(c, std::less_equal<>()); }},
          {OpKey::operator_gt_default, [](OpContext& c) { return compare(c, std::greater<>()); }},
          {OpKey::operator_ge_default,
           [](OpContext& c) { return compare(c, std::greater_equal<>()); }},
          {OpKey::operator_and__default, py_and},
          {OpKey::operator_or__default, py_or},
          {OpKey::operator_not__default, py_not},
          {OpKey::torch_sym_not_default, py_not},
          {OpKey::torch_sym_max_default, sym_max},
          {OpKey::torch_sym_min_default, sym_min},
          {OpKey::torch_sym_float_default, sym_float},
          {OpKey::torch_sym_int_default, to_int<trunc_fn>},
          {OpKey::math_trunc_default, to_int<trunc_fn>},
          {OpKey::math_ceil_default, to_int<ceil_fn>},
          {OpKey::math_floor_default, to_int<floor_fn>},
          {OpKey::torch_sym_sqrt_default, sym_sqrt},
          {OpKey::torch_sym_ite_default, sym_ite},
          {OpKey::aten__assert_tensor_metadata_default, assert_tensor_metadata},
          {OpKey::aten__assert_scalar_default, assert_scalar},
          {OpKey::aten_sym_constrain_range_default, constrain_range},
          {OpKey::aten_sym_constrain_range_for_size_default, constrain_range},
      });
}

}  // namespace kiln::ir
