// Small helpers shared by the inference functions of several op families.
#pragma once

#include <span>

#include "base/tensor.h"
#include "ir/op_context.h"

namespace kiln::ir {

// Normalizes a possibly negative dim against `rank` (a 0-d tensor accepts dims -1 and 0).
// Errors: "dim 3 is out of range for a tensor of rank 2 (expected a value in [-2, 1])".
Result<int64_t> wrap_dim(int64_t dim, int64_t rank);

// NumPy/PyTorch broadcasting of two shapes; errors name both shapes.
Result<Shape> broadcast_shapes(std::span<const int64_t> a, std::span<const int64_t> b);

// torch.result_type over three priority levels: dimensioned tensors, 0-d tensors, and numbers
// (already mapped to int64, float32 or bool). Shared by elementwise inference and kernels, so both
// promote alike.
DType elementwise_result_type(std::span<const DType> dimensioned, std::span<const DType> zero_dim,
                              std::span<const DType> numbers);
// c10's checked Scalar conversion: an error when `value` overflows `dtype`.
Status check_scalar_fits(const Scalar& value, DType dtype);

// Whether eager's _embedding_bag takes its fast path for a sum (EmbeddingBag.cpp's
// is_fast_path_index_select[_scale]): a float, half or bfloat16 weight whose rows are unit-stride,
// unit-stride per-sample weights, no padding_idx. It decides whether offset2bag is returned (and
// how a last bag that stops short of the last index is summed), so inference and the kernel ask it
// alike.
bool embedding_bag_fast_path(const Tensor& weight, const Tensor* per_sample_weights,
                             int64_t padding_idx);

// Whether an _embedding_bag node's recorded outputs have eager's CUDA shapes where they differ
// from its CPU ones: max_indices [0] for a sum or mean (CPU: [bags]), bag_size with an element
// per offset under include_last_offset (CPU: per bag). (CUDA's offset2bag always has an element
// per index; a max without include_last_offset has the same shapes in both.) Inference then
// gives the CUDA shapes; the CPU kernel computes only the CPU form.
bool embedding_bag_cuda_form(const Node& node);

// The error every inference function uses for a bad input: names the node and op.
template <typename... Args>
Status op_error(OpContext& ctx, const Args&... args) {
  return invalid_argument(op_name(ctx.node().op), " (node '", ctx.node().name, "'): ", args...);
}

// The error for arguments PyTorch accepts and kiln's kernels do not: support analysis declines the
// node (the partitioner leaves it to PyTorch) instead of failing the program's load.
template <typename... Args>
Status op_unsupported(OpContext& ctx, const Args&... args) {
  return unsupported(op_name(ctx.node().op), " (node '", ctx.node().name, "'): ", args...);
}

}  // namespace kiln::ir
