// Private to the linalg kernels (linalg*.cc): the batched matrix product every product op reduces
// to, and the convolution kernels.
#pragma once

#include "base/tensor.h"
#include "ir/op_context.h"
#include "kernels/cpu/indexing_util.h"

namespace kiln::cpu {

// out = beta * bias + alpha * (a @ b) over the batch dims. `a` is [batch..., m, k], `b` is
// [batch..., k, n] and `bias` (nullable) is [batch..., m, n], all with any strides (stride 0 for
// broadcast dims); `out` is a contiguous [batch..., m, n] view of the op's output. When beta is 0
// the bias is not read, and when alpha is 0 neither are a and b (NaNs there do not propagate), as
// in PyTorch. float32 goes to sgemm, float16/bfloat16 through float32 (rounded once), float64 and
// the integer types through a plain loop (integers wrap, as in PyTorch).
Status matmul_into(const Tensor& a, const Tensor& b, const Tensor* bias, ir::Scalar beta,
                   ir::Scalar alpha, const Tensor& out);

// convolution, _convolution, conv{1,2,3}d and conv_transpose{1,2,3}d.
Status convolution_kernel(ir::OpContext& ctx);
Status conv_nd_kernel(ir::OpContext& ctx);
Status conv_transpose_nd_kernel(ir::OpContext& ctx);
// convolution_backward (conv_backward.cc).
Status convolution_backward_kernel(ir::OpContext& ctx);

}  // namespace kiln::cpu
