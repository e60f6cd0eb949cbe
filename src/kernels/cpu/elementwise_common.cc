#include "kernels/cpu/elementwise_common.h"

#include <vector>

#include "kernels/cpu/elementwise_loops.h"

namespace kiln::cpu::elementwise {

LoopGeometry make_geometry(const Tensor& out, std::initializer_list<const Tensor*> inputs) {
  const Shape& sizes = out.sizes();
  const size_t rank = sizes.size();
  std::vector<Shape> strides{out.strides()};
  for (const Tensor* t : inputs) {
    // Inference checked that every input broadcasts to the output's shape.
    Shape s(rank, 0);
    const size_t shift = rank - static_cast<size_t>(t->dim());
    for (size_t d = 0; d < static_cast<size_t>(t->dim()); ++d) {
      s[shift + d] = t->size(d) == 1 ? 0 : t->strides()[d];
    }
    strides.push_back(std::move(s));
  }
  LoopGeometry g;
  g.strides.resize(strides.size());
  for (size_t d = 0; d < rank; ++d) {
    if (sizes[d] == 1) continue;
    bool merge = !g.sizes.empty();
    for (size_t k = 0; merge && k < strides.size(); ++k) {
      merge = g.strides[k].back() == strides[k][d] * sizes[d];
    }
    if (merge) {
      g.sizes.back() *= sizes[d];
      for (size_t k = 0; k < strides.size(); ++k) g.strides[k].back() = strides[k][d];
      continue;
    }
    g.sizes.push_back(sizes[d]);
    for (size_t k = 0; k < strides.size(); ++k) g.strides[k].push_back(strides[k][d]);
  }
  return g;
}

Result<Operand> read_operand(ir::OpContext& ctx, size_t i) {
  Operand op;
  if (ctx.node().schema().args()[i].base == ir::BaseType::kScalar) {
    op.is_number = true;
    op.number = ctx.scalar(i);
  } else {
    ir::RtValue v = ctx.any(i);
    op.is_number = v.kind != ir::RtValue::Kind::kTensor;
    switch (v.kind) {
      case ir::RtValue::Kind::kTensor: op.tensor = std::move(v.tensor); break;
      case ir::RtValue::Kind::kInt: op.number = {ir::Scalar::Kind::kInt, v.i, 0.0}; break;
      case ir::RtValue::Kind::kFloat: op.number = {ir::Scalar::Kind::kFloat, 0, v.f}; break;
      case ir::RtValue::Kind::kBool: op.number = {ir::Scalar::Kind::kBool, v.b, 0.0}; break;
      case ir::RtValue::Kind::kEmpty:
        return internal_error("node '", ctx.node().name, "' argument ", i, " has no value");
    }
  }
  KILN_RETURN_IF_ERROR(ctx.error());
  return op;
}

DType result_type_of(std::initializer_list<const Operand*> operands) {
  std::vector<DType> dims, zero_dims, numbers;
  for (const Operand* op : operands) {
    if (!op->is_number) {
      (op->tensor.dim() == 0 ? zero_dims : dims).push_back(op->tensor.dtype());
    } else if (op->number.kind == ir::Scalar::Kind::kBool) {
      numbers.push_back(DType::kBool);
    } else {
      numbers.push_back(op->number.kind == ir::Scalar::Kind::kInt ? DType::kInt64
                                                                  : DType::kFloat32);
    }
  }
  return ir::elementwise_result_type(dims, zero_dims, numbers);
}

Result<Tensor> cast_to(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  KILN_ASSIGN_OR_RETURN(Tensor converted, Tensor::empty(dtype, t.sizes()));
  KILN_RETURN_IF_ERROR(copy_into(converted, t));
  return converted;
}

Result<Tensor> operand_tensor(const Operand& op, DType dtype) {
  if (!op.is_number) return cast_to(op.tensor, dtype);
  KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::empty(dtype, {}));
  dispatch_dtype(dtype, [&]<typename T>() { *t.data<T>() = scalar_to<T>(op.number); });
  return t;
}

}  // namespace kiln::cpu::elementwise
