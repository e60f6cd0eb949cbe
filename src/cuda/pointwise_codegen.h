// Code generation for fused chains of pointwise ops: one kernel evaluates every node of a group
// per element, in registers, and stores only the values used outside the group.
//
// Math is done in "opmath" types (fp32 for fp16/bf16/fp32, int64 for integers, bool for bool),
// as PyTorch's fused kernels do; integer results narrower than int64 wrap through their storage
// type so overflow matches eager.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
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

// float64 runs only where its result is exactly eager's without float64 math: conversions
// (_to_copy, clone; not float64 -> float16/bfloat16, which would round twice) and comparisons.
bool reads_or_writes_float64(const ir::Node& node);
bool pointwise_takes_float64(const ir::Node& node);

// Elements per packet of the group's _vec and _rows kernels: 16 bytes of its widest operand
// (8 halves, 4 floats, 2 int64s; 16 when every operand is a byte). Each operand's part of a
// packet is then a whole aligned access of 2 to 16 bytes.
int pointwise_packet(const PointwiseGroup& group);

// Adds the group's kernels to `module` for output rank `rank`. All take
// (KTensor in0.., KTensor out0.., i64 numel), and compute each element with the same statements
// (so every variant gives the same bits); they differ in how they walk the operands:
//   "<name>_flat": one element per thread; every tensor dense with the outputs' strides, or a
//       single broadcast element marked by rank 0.
//   "<name>_vec":  the flat operands, a packet (pointwise_packet) per thread: one 16-byte (or
//       narrower) access per operand where every non-broadcast operand's data is aligned to its
//       packet; element accesses otherwise and for the last, partial packet.
//   "<name>_rows": operands of rank `rank` (rank >= 1; no rows kernel for rank 0) whose last
//       dim has stride 1 in every output and 1 or 0 in every input; numel < 2^31. Packets run
//       along the last dim; the outer dims (size-1 dims skipped) are walked once per packet;
//       whole aligned packets are single accesses, others element by element.
//   "<name>_nd":   any strides at rank `rank` (inputs expanded to it with stride 0 on broadcast
//       dims): every element walks the full multi-index.
// Returns <name>, derived from the generated code. The module also gets the packet helpers once.
Result<std::string> pointwise_kernel(ModuleSource& module, const PointwiseGroup& group, int rank);

// Inference batch norm's saved statistics, as PyTorch's CUDA kernel returns them: save_mean =
// running_mean and save_invstd = 1 / sqrt(running_var + eps), per channel, in `out` (the dtype
// the program records). Adds "kiln_bn_stats_<mean>_<var>_<out>" to `module`, taking (KTensor
// mean, KTensor var, KTensor save_mean, KTensor save_invstd, float eps, i64 channels), every
// tensor 1-D with any stride; returns its name.
std::string batch_norm_stats_kernel(ModuleSource& module, DType mean, DType var, DType out);

// Which of a group's kernels a launch runs.
enum class PointwiseVariant : uint8_t { kFlat, kVector, kRows, kStrided };
// "_flat", "_vec", "_rows", "_nd": appended to pointwise_kernel's name.
std::string_view pointwise_variant_suffix(PointwiseVariant variant);

// A launch of a group's kernel for the tensors bound now.
struct PointwiseLaunch {
  PointwiseVariant variant = PointwiseVariant::kStrided;
  std::vector<KTensor> args;  // inputs, then outputs, as the variant walks them
  int64_t numel = 0;
  int64_t work_items = 0;  // elements (flat, nd) or packets (vec, rows): one a thread
};

// Chooses the variant for `inputs` (each broadcastable to the outputs' sizes, of rank at most
// theirs) and `outputs` (one shape), in order of preference: vec (flat, every non-broadcast
// operand aligned to its packet), flat, rows, nd. `packet` is the group's pointwise_packet;
// 1 chooses between the scalar kernels (flat, nd) only. Only pointers, sizes and strides are
// read. Defined with the pointwise step (steps_pointwise.cc).
Result<PointwiseLaunch> plan_pointwise_launch(const std::vector<Tensor>& inputs,
                                              const std::vector<Tensor>& outputs, int packet);
// Launches `kernel` (the variant's entry point) for `launch` on `stream`, 256 threads a block.
Status launch_pointwise(cudaKernel_t kernel, const PointwiseLaunch& launch, cudaStream_t stream);

}  // namespace kiln::cuda
