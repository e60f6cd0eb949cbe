// Code generation for fused chains of pointwise ops: one kernel evaluates every node of a group
// per element, in registers, and stores only the values used outside the group.
//
// Math is done in "opmath" types (fp32 for fp16/bf16/fp32, int64 for integers, bool for bool),
// as PyTorch's fused kernels do; integer results narrower than int64 wrap through their storage
// type so overflow matches eager.
#pragma once

#include <string>
#include <vector>

#include "cuda/kernel_library.h"
#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::cuda {

struct PointwiseGroup {
  std::vector<const ir::Node*> nodes;     // in program order
  std::vector<const ir::Value*> inputs;   // tensors read from outside the group, in first-use order
  std::vector<const ir::Value*> outputs;  // values stored (used after the group, or graph outputs)
};

// Whether `value` is a per-channel vector of `node` (batch norm's weight, bias, mean, var), to be
// broadcast along dim 1 rather than the trailing dims.
bool is_channel_operand(const ir::Node& node, const ir::Value* value);

// Whether the code generator can express `node` (op, dtypes and constant arguments); otherwise
// the reason.
std::string pointwise_unsupported_reason(const ir::Node& node);

// Adds the group's kernels to `module` for output rank `rank`: "<name>_flat" (every tensor dense
// with the outputs' strides, or a single broadcast element) and "<name>_nd" (any strides; inputs
// expanded to the output's rank with stride 0 on broadcast dims). Both take
// (KTensor in0.., KTensor out0.., i64 numel). Returns <name>, derived from the generated code.
Result<std::string> pointwise_kernel(ModuleSource& module, const PointwiseGroup& group, int rank);

}  // namespace kiln::cuda
