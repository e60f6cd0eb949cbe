// CPU reference kernels for the elementwise ops. The family is split by kind into
// elementwise_{arithmetic,logical,unary,activation}.cc, all on the loops of elementwise_loops.h;
// this file holds the ops that select or move values without computing on them (where,
// masked_fill, fill, clone, _to_copy) and registers the whole family.
#include <bit>
#include <cstring>

#include "ir/infer/infer_util.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/elementwise_loops.h"

namespace kiln::cpu {
namespace elementwise {
namespace {

// Calls fn.template operator()<U>() with the unsigned integer type of the dtype's size: ops that
// only move elements copy their bits (NaN payloads included) instead of converting them.
template <typename Fn>
void dispatch_bits(DType dtype, Fn&& fn) {
  switch (dtype_size(dtype)) {
    case 1: fn.template operator()<uint8_t>(); break;
    case 2: fn.template operator()<uint16_t>(); break;
    case 4: fn.template operator()<uint32_t>(); break;
    default: fn.template operator()<uint64_t>(); break;
  }
}

// The bits of `value` converted to the element type of `dtype`, as an unsigned integer U.
template <typename U>
U value_bits(const ir::Scalar& value, DType dtype) {
  return dispatch_dtype(dtype, [&]<typename T>() {
    static_assert(sizeof(T) <= sizeof(uint64_t));
    if constexpr (sizeof(T) == sizeof(U)) {
      return std::bit_cast<U>(scalar_to<T>(value));
    } else {
      return U(0);  // not reached: U matches the dtype's size
    }
  });
}

// The value of a 0-d tensor (or a number) as a Scalar.
ir::Scalar single_scalar(const Operand& op) {
  if (op.is_number) return op.number;
  return dispatch_dtype(op.tensor.dtype(), [&]<typename T>() {
    const T v = *op.tensor.data<T>();
    if constexpr (std::is_same_v<T, bool>) {
      return ir::Scalar{ir::Scalar::Kind::kBool, v, 0.0};
    } else if constexpr (kClassOf<T> == kIntOk) {
      return ir::Scalar{ir::Scalar::Kind::kInt, static_cast<int64_t>(v), 0.0};
    } else {
      return ir::Scalar{ir::Scalar::Kind::kFloat, 0, element_cast<double>(v)};
    }
  });
}

Status where_kernel(ir::OpContext& ctx) {
  Tensor& out = ctx.output_tensor(0);
  if (out.numel() == 0) return ok_status();
  KILN_ASSIGN_OR_RETURN(Operand cond, read_operand(ctx, 0));
  KILN_ASSIGN_OR_RETURN(Operand a, read_operand(ctx, 1));
  KILN_ASSIGN_OR_RETURN(Operand b, read_operand(ctx, 2));
  KILN_ASSIGN_OR_RETURN(Tensor c, operand_tensor(cond, DType::kBool));  // uint8 masks too
  KILN_ASSIGN_OR_RETURN(Tensor x, operand_tensor(a, out.dtype()));
  KILN_ASSIGN_OR_RETURN(Tensor y, operand_tensor(b, out.dtype()));
  dispatch_bits(out.dtype(), [&]<typename U>() {
    ternary_loop<U, bool, U, U>(out, c, x, y, [](bool m, U u, U v) { return m ? u : v; });
  });
  return ok_status();
}

// Reads a fill value (Scalar argument or 0-d tensor) and checks that `dtype` can hold it.
Result<ir::Scalar> fill_value(ir::OpContext& ctx, size_t i, DType dtype) {
  KILN_ASSIGN_OR_RETURN(Operand op, read_operand(ctx, i));
  const ir::Scalar value = single_scalar(op);
  Status fits = ir::check_scalar_fits(value, dtype);
  if (!fits.ok()) return ir::op_error(ctx, "value: ", fits.message());
  return value;
}

Status masked_fill_kernel(ir::OpContext& ctx) {
  Tensor& out = ctx.output_tensor(0);
  if (out.numel() == 0) return ok_status();
  const Tensor& self = ctx.tensor(0);
  const Tensor& mask = ctx.tensor(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(const ir::Scalar value, fill_value(ctx, 2, self.dtype()));
  dispatch_bits(out.dtype(), [&]<typename U>() {
    const U v = value_bits<U>(value, out.dtype());
    binary_loop<U, U, bool>(out, self, mask, [v](U x, bool m) { return m ? v : x; });
  });
  return ok_status();
}

Status fill_kernel(ir::OpContext& ctx) {
  Tensor& out = ctx.output_tensor(0);
  KILN_ASSIGN_OR_RETURN(const ir::Scalar value, fill_value(ctx, 1, out.dtype()));
  return fill_with(out, value);
}

// clone, lift_fresh_copy and _to_copy: kiln's outputs are contiguous whatever the memory format.
Status copy_kernel(ir::OpContext& ctx) {
  const Tensor& in = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  return copy_into(ctx.output_tensor(0), in);
}

// copy(self, src): src converted to self's dtype and broadcast to its shape.
Status functional_copy_kernel(ir::OpContext& ctx) {
  const Tensor& src = ctx.tensor(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  return copy_into(ctx.output_tensor(0), src);
}

}  // namespace

Status fill_with(Tensor& out, const ir::Scalar& value) {
  if (out.numel() == 0) return ok_status();
  dispatch_bits(out.dtype(), [&]<typename U>() {
    const U v = value_bits<U>(value, out.dtype());
    U* po = out.data<U>();
    run_rows(make_geometry(out, {}), [&](int64_t n, const Offsets& off, const Offsets& st) {
      for (int64_t i = 0; i < n; ++i) po[off[0] + i * st[0]] = v;
    });
  });
  return ok_status();
}

Status copy_into(Tensor& out, const Tensor& in) {
  if (out.numel() == 0) return ok_status();
  if (in.dtype() == out.dtype() && in.is_contiguous() && in.sizes() == out.sizes() &&
      out.is_contiguous()) {
    const int64_t bytes = static_cast<int64_t>(out.nbytes());
    char* dst = static_cast<char*>(out.raw_data());
    const char* src = static_cast<const char*>(in.raw_data());
    parallel_for(0, bytes, 16 * kGrain, [&](int64_t begin, int64_t end) {
      std::memcpy(dst + begin, src + begin, static_cast<size_t>(end - begin));
    });
    return ok_status();
  }
  if (in.dtype() == out.dtype()) {
    dispatch_bits(out.dtype(),
                  [&]<typename U>() { unary_loop<U, U>(out, in, [](U v) { return v; }); });
    return ok_status();
  }
  dispatch_dtype(out.dtype(), [&]<typename To>() {
    dispatch_dtype(in.dtype(), [&]<typename From>() {
      unary_loop<To, From>(out, in, [](ComputeType<From> v) { return v; });
    });
  });
  return ok_status();
}

}  // namespace elementwise

Status register_elementwise_kernels(ir::OpFunctionTable& table) {
  using ir::OpKey;
  KILN_RETURN_IF_ERROR(elementwise::register_arithmetic_kernels(table));
  KILN_RETURN_IF_ERROR(elementwise::register_logical_kernels(table));
  KILN_RETURN_IF_ERROR(elementwise::register_unary_kernels(table));
  KILN_RETURN_IF_ERROR(elementwise::register_activation_kernels(table));
  return ir::add_all(table, {
                                {OpKey::aten_where_self, elementwise::where_kernel},
                                {OpKey::aten_where_ScalarSelf, elementwise::where_kernel},
                                {OpKey::aten_where_ScalarOther, elementwise::where_kernel},
                                {OpKey::aten_where_Scalar, elementwise::where_kernel},
                                {OpKey::aten_masked_fill_Scalar, elementwise::masked_fill_kernel},
                                {OpKey::aten_masked_fill_Tensor, elementwise::masked_fill_kernel},
                                {OpKey::aten_fill_Scalar, elementwise::fill_kernel},
                                {OpKey::aten_fill_Tensor, elementwise::fill_kernel},
                                {OpKey::aten_clone_default, elementwise::copy_kernel},
                                {OpKey::aten_copy_default, elementwise::functional_copy_kernel},
                                {OpKey::aten_lift_fresh_copy_default, elementwise::copy_kernel},
                                {OpKey::aten__to_copy_default, elementwise::copy_kernel},
                            });
}

}  // namespace kiln::cpu
