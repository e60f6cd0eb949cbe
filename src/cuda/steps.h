// The step kinds of a CUDA plan, made by the planner (planner.cc). Each factory looks at the
// node(s) with the tensors of the planning walk (largest shapes, fake device addresses) to size
// scratch buffers and pick kernels, and adds any generated code to the module.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "convert/op_registry.h"
#include "cuda/gemm.h"
#include "cuda/plan.h"
#include "cuda/pointwise_codegen.h"

namespace kiln::cuda {

using BindFn = std::function<Result<Launch>(const Slots&, BindContext&, size_t step_index)>;

// A step defined by its bind function (most kinds need nothing more).
class FunctionStep final : public Step {
 public:
  FunctionStep(std::string kind, std::string description, BindFn bind)
      : kind_(std::move(kind)), description_(std::move(description)), bind_(std::move(bind)) {}
  std::string_view kind() const override { return kind_; }
  std::string describe() const override { return description_; }
  Result<Launch> bind(const Slots& slots, BindContext& ctx, size_t step_index) const override {
    return bind_(slots, ctx, step_index);
  }

 private:
  std::string kind_;
  std::string description_;
  BindFn bind_;
};

// Fused pointwise chain.
Result<std::unique_ptr<Step>> make_pointwise_step(const PointwiseGroup& group, int rank,
                                                  ModuleSource& module);

// Inference batch norm's saved statistics (outputs 1 and 2 of
// _native_batch_norm_legit_no_training) where they have buffers (`stored`: returned by the
// program): running_mean and 1 / sqrt(running_var + eps) per channel, as PyTorch's CUDA kernel
// returns them, or nothing for the empty statistics of a CPU export.
Result<std::unique_ptr<Step>> make_batch_norm_stats_step(const ir::Node& node,
                                                         std::vector<const ir::Value*> stored,
                                                         ModuleSource& module);

// mm, addmm, bmm, linear, matmul, with an optional activation node folded into the epilogue or
// a residual add folded in as cuBLASLt's C operand (D = A·B + bias + residual). An N-d first
// operand whose leading dims do not merge into rows is copied into scratch first.
Result<std::unique_ptr<Step>> make_gemm_step(const ir::Node& node, const ir::Node* activation,
                                             const ir::Node* residual_add, const Slots& slots,
                                             const PlanOptions& options, ModuleSource& module);
// The epilogue an activation node gives a GEMM, or nullopt.
std::optional<GemmEpilogue> gemm_epilogue_for(const ir::Node& node);
// A view of t with its dims in `order`.
Tensor permuted(const Tensor& t, const std::vector<int64_t>& order);
// For x [..., k] whose leading dims do not fold into rows as they stand but do when walked in
// memory order (a permuted view such as x.permute(1, 0, 2)): that dim order (leading dims by
// falling stride, then the last). The planner stores a linear's output in this order.
std::optional<std::vector<int64_t>> leading_dims_in_memory_order(const Tensor& x);

// aten.convolution with optional residual add and ReLU nodes folded in.
// With `channels_last`, an input that is not NHWC is first copied into NHWC scratch.
Result<std::unique_ptr<Step>> make_conv_step(const ir::Node& node, const ir::Node* residual_add,
                                             const ir::Node* relu, const Slots& slots,
                                             const PlanOptions& options, bool channels_last,
                                             ModuleSource& module);

// Whether make_conv_step runs this convolution as a GEMM over patches (a kernel that tiles its
// input, as ViT's patch embedding: stride == kernel, no padding, one group) when planning
// channels-last: its filter then stays OIHW.
bool is_patch_conv(const ir::Node& node, const Slots& slots, bool channels_last);

// What attention reads and writes: an aten.scaled_dot_product_attention node's operands, or a
// matmul-softmax-matmul chain the planner matched (then `name` is the last matmul's).
struct AttentionOperands {
  const ir::Value *q = nullptr, *k = nullptr, *v = nullptr, *mask = nullptr, *out = nullptr;
  bool causal = false;
  std::optional<double> scale;  // default 1/sqrt(head dim)
  std::string name;
};
Result<AttentionOperands> attention_operands(const ir::Node& sdpa, const Slots& slots);

// Attention through cuDNN's fused kernel (fp16/bf16, head dims it takes) or as GEMM, masked
// softmax, GEMM.
Result<std::unique_ptr<Step>> make_attention_step(const AttentionOperands& a, const Slots& slots,
                                                  const PlanOptions& options,
                                                  ModuleSource& module);
// Whether that step can write its output with `o_strides` (the planner's choice of layout): the
// fused path writes any strides with unit-stride rows, the unfused one needs batch and heads to
// merge into one stride.
bool attention_writes_strides(const AttentionOperands& a, const Slots& slots,
                              const PlanOptions& options, const Shape& o_strides);

// A family of library ops kept in files of its own (steps_<family>.cc with its kernels in
// kernel_library_<family>.{h,cc} and kernels/<family>.cuh): which ops it takes, whether it takes
// a node (every check of its own, dtypes included: cuda_verdict asks it after the checks common
// to all ops), and the step it makes for one.
struct LibraryFamily {
  std::string_view name;
  bool (*takes)(ir::OpKey op);
  convert::Verdict (*verdict)(const ir::Node& node);
  Result<std::unique_ptr<Step>> (*make)(const ir::Node& node, const Slots& slots,
                                        ModuleSource& module);
};
const LibraryFamily& index_reduction_family();  // argmax/argmin, max/min.dim, var
const LibraryFamily& group_norm_family();       // group, instance and batch-statistics norms
const LibraryFamily& movement_family();         // pad, flip, repeat, pixel shuffle, slice_scatter
const LibraryFamily& scatter_family();          // gather, scatter*, index_put, masked_scatter
const LibraryFamily& sort_family();             // sort, topk
const LibraryFamily& resample_family();         // upsample, col2im, cdist/pdist
const LibraryFamily& pooling_extra_family();    // 3-D pooling and the pooling backward ops
const LibraryFamily& grid_sample_family();      // grid_sampler_2d
const LibraryFamily& embedding_bag_family();    // _embedding_bag (eager CUDA's four outputs)
const LibraryFamily& random_family();           // rand, randn, randperm, native_dropout
const LibraryFamily& conv_direct_family();      // convolution_backward (direct kernels)
// The family that takes `op`, or null.
const LibraryFamily* library_family(ir::OpKey op);

// Everything the kernel library runs: reductions, softmax, norms, pooling, gathers, cat,
// factories, and the families above.
Result<std::unique_ptr<Step>> make_library_step(const ir::Node& node, const Slots& slots,
                                                ModuleSource& module);
// Whether make_library_step handles this op.
bool is_library_op(ir::OpKey op);

// Copies `from` into the buffer of `to` (same number of elements), element order row-major:
// materializes a reshape that no strides can express on its input.
std::unique_ptr<Step> make_reshape_copy_step(const ir::Value& from, const ir::Value& to,
                                             ModuleSource& module);

// A step for `node` of `kind` that reads `reads` (null entries skipped) and writes the node's
// first output; steps writing more outputs add them to `writes`.
std::unique_ptr<Step> make_step(const ir::Node& node, std::string kind,
                                std::vector<const ir::Value*> reads, BindFn bind);

// A launch-function call `f(kernel, stream)` as a Launch over the bound kernel (none when
// `kernel` is empty).
template <typename F>
Result<Launch> kernel_launch(BindContext& ctx, const std::string& kernel, F f) {
  cudaKernel_t fn = nullptr;
  if (!kernel.empty()) {
    KILN_ASSIGN_OR_RETURN(fn, ctx.kernel(kernel));
  }
  return Launch([fn, f](cudaStream_t stream) { return f(fn, stream); });
}

// Argument i of `node` when it is a tensor value, else null (a number, a list, None).
const ir::Value* value_arg(const ir::Node& node, size_t i);

// Helpers for bind functions.
const Tensor& slot_tensor(const Slots& slots, const ir::Value* value);
// A tensor like `like` (dtype, sizes) with `strides`, in the step's scratch buffer `which`.
Result<Tensor> scratch_tensor(BindContext& ctx, size_t step, size_t which, const Tensor& like,
                              const Shape& strides);
Status check_device_tensor(const Tensor& t, const char* what, const std::string& step);

}  // namespace kiln::cuda
