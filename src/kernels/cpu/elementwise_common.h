// Private to the CPU elementwise kernels (src/kernels/cpu/elementwise*.cc): operands, type
// promotion and the registration functions of the family's parts.
#pragma once

#include <initializer_list>
#include <span>
#include <type_traits>

#include "base/element_cast.h"
#include "base/tensor.h"
#include "ir/infer/infer_util.h"
#include "ir/op_context.h"
#include "ir/op_function_table.h"



namespace kiln::cpu::elementwise {

// Dtype categories, for restricting which element types a kernel is instantiated for.
enum DTypeClasses : uint8_t { kBoolOk = 1, kIntOk = 2, kFloatOk = 4, kAnyOk = 7 };

template <typename T>
constexpr uint8_t kClassOf = std::is_same_v<T, bool> ? kBoolOk
                             : std::is_integral_v<T> ? kIntOk
                                                     : kFloatOk;

// One input of an elementwise op: a tensor, or a number (a Scalar argument, or a number that the
// program wrote where a Tensor goes, as torch.export records `x + 2`).
struct Operand {
  Tensor tensor;  // valid when !is_number
  bool is_number = false;
  ir::Scalar number;

  // A single value that can be bound into the loop's functor instead of being iterated.
  bool is_single() const { return is_number || tensor.numel() == 1; }
};

// Reads argument `i` (a Tensor or a Scalar in the schema) as an operand.
Result<Operand> read_operand(ir::OpContext& ctx, size_t i);

// torch.result_type of the operands.
DType result_type_of(std::initializer_list<const Operand*> operands);

// `t` itself when it already has `dtype`, else a converted contiguous copy (same shape).
Result<Tensor> cast_to(const Tensor& t, DType dtype);

// The operand as a tensor of `dtype`: a 0-d tensor for numbers.
Result<Tensor> operand_tensor(const Operand& op, DType dtype);

// A Scalar converted to element type T with PyTorch's conversion rules.
template <typename T>
T scalar_to(const ir::Scalar& s) {
  return s.kind == ir::Scalar::Kind::kFloat ? element_cast<T>(s.f) : element_cast<T>(s.i);
}

// The value of a single-valued operand in compute type C. PyTorch first converts it to the op's
// dtype T, except that add/sub/mul/div on 16-bit floats keep a scalar at full compute precision
// (`exact`).
template <typename T, typename C>
C single_value(const Operand& op, bool exact) {
  if (op.is_number) {
    return exact ? scalar_to<C>(op.number) : element_cast<C>(scalar_to<T>(op.number));
  }
  return dispatch_dtype(op.tensor.dtype(), [&]<typename V>() -> C {
    const V v = *op.tensor.data<V>();
    return exact ? element_cast<C>(v) : element_cast<C>(element_cast<T>(v));
  });
}

// Fills `out` with `value` converted to out's dtype (elementwise.cc).
Status fill_with(Tensor& out, const ir::Scalar& value);
// Copies `in` (broadcast to out's shape, any dtype) into `out`, converting (elementwise.cc).
Status copy_into(Tensor& out, const Tensor& in);

// The parts of the family, each in its own file.
Status register_arithmetic_kernels(ir::OpFunctionTable& table);  // elementwise_arithmetic.cc
Status register_logical_kernels(ir::OpFunctionTable& table);     // elementwise_logical.cc
Status register_unary_kernels(ir::OpFunctionTable& table);       // elementwise_unary.cc
Status register_activation_kernels(ir::OpFunctionTable& table);  // elementwise_activation.cc

}  // namespace kiln::cpu::elementwise
