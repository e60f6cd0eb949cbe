// Private to the shape-op kernels (shape_op*.cc): moving elements between strided tensors, and the
// view kernels' registration.
#pragma once

#include <optional>

#include "base/tensor.h"
#include "ir/op_context.h"
#include "ir/op_function_table.h"

namespace kiln::cpu {

// Copies src's elements into dst: same sizes and dtype, any strides (src's may be 0 or negative).
// Dims are merged where both sides are contiguous across them; contiguous runs are memcpy'd and
// large copies are spread over the thread pool. dst must not overlap src.
void copy_strided(const Tensor& dst, const Tensor& src);

// copy_strided, converting from src's dtype when it differs from dst's (PyTorch's rules).
Status copy_into(Tensor dst, const Tensor& src);

// Sets every element of the contiguous tensor dst to `value`, converted to dst's dtype.
void fill_scalar(const Tensor& dst, const ir::Scalar& value);

// The strides that let a tensor of `sizes`/`strides` be viewed as `shape` without copying, if any
// (PyTorch's computeStride: dims can be merged or split only within contiguous chunks).
std::optional<Shape> view_strides(const Shape& sizes, const Shape& strides, const Shape& shape);

// The view ops and their *_copy variants (shape_op_view.cc).
Status register_shape_op_view_kernels(ir::OpFunctionTable& table);

}  // namespace kiln::cpu
