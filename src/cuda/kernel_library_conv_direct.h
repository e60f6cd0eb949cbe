// Direct convolutions (kernels/conv_direct.cuh): kiln's own kernels for the convolutions cuDNN
// does not run, transposed convolutions with output_padding in float32 or in 1-D/3-D, and for
// aten.convolution_backward. The contract is kernel_library.h's: `*_kernel` adds device code and
// an entry point and returns its name (deterministic), `launch_*` checks shapes, then launches.
// Every kernel gathers (a thread or a warp per output element, no atomics): results are
// deterministic, products summed in fp32 whatever the storage type and rounded once.
//
// Tensors are [N, C, spatial...] with 1 to 3 spatial dims, the weight [W0, W1, kernel...]: a
// plain convolution's weight is [C_out, C_in / groups, ...], a transposed one's
// [C_in, C_out / groups, ...]. Any strides everywhere.
//
// The second half declares the steps (steps_conv_direct.cc) the planner and the CUDA backend's
// verdicts use.
#pragma once

#include <cuda_runtime_api.h>

#include <memory>
#include <string>
#include <vector>

#include "cuda/kernel_library.h"
#include "cuda/steps.h"

namespace kiln::cuda {

// stride, padding and dilation with one value per spatial dim (or one for all), and groups.
struct ConvWindowParams {
  std::vector<int64_t> stride{1}, padding{0}, dilation{1};
  int64_t groups = 1;
};

// y = conv(x, w) (plain) or conv_transpose(x, w) (transposed), plus bias[C_out] when given.
// The caller sizes y: each output position gathers the taps that reach it inside x, so sizes
// past the usual formula (a transposed convolution's output_padding, grad_input of a transposed
// convolution) get the bias alone, or 0. With a bias the sum is rounded to the dtype before the
// bias is added, as eager adds it to cuDNN's result. float32, float16, bfloat16.
std::string conv_direct_kernel(ModuleSource& module, bool transposed, DType dtype);
Status launch_conv_direct(cudaKernel_t kernel, const Tensor& x, const Tensor& w, const Tensor* bias,
                          const Tensor& y, const ConvWindowParams& params, bool transposed,
                          cudaStream_t stream);

// grad_weight of the convolution (plain or transposed) of `input` giving `grad_output`'s shape:
// the sum over the batch and every position pair of grad_output * input. A warp per weight
// element; an empty batch gives zeros.
std::string conv_weight_grad_kernel(ModuleSource& module, DType dtype);
Status launch_conv_weight_grad(cudaKernel_t kernel, const Tensor& grad_output, const Tensor& input,
                               const Tensor& grad_weight, const ConvWindowParams& params,
                               bool transposed, cudaStream_t stream);

// grad_bias[C] = grad_output [N, C, spatial...] summed over all dims but 1. A warp per channel.
std::string conv_bias_grad_kernel(ModuleSource& module, DType dtype);
Status launch_conv_bias_grad(cudaKernel_t kernel, const Tensor& grad_output,
                             const Tensor& grad_bias, cudaStream_t stream);

// --- steps (steps_conv_direct.cc) ----------------------------------------------------------------

// Whether this aten.convolution is one cuDNN declines and the direct kernel runs instead: a
// transposed convolution with a nonzero (constant) output_padding, except the 2-D float16 and
// bfloat16 ones cuDNN has engines for.
bool needs_direct_conv(const ir::Node& node);
// Whether the direct kernel takes that convolution (constant window arguments, float types,
// ranks 3-5, an input of the weight's rank or one less), with the reason when not.
convert::Verdict direct_conv_verdict(const ir::Node& node);
// Its step: one launch of conv_direct_kernel (transposed), the bias added in the same kernel.
Result<std::unique_ptr<Step>> make_direct_conv_step(const ir::Node& node, const Slots& slots,
                                                    ModuleSource& module);

// aten.convolution_backward (plain and transposed, 1-3 spatial dims, groups): grad_input as the
// opposite convolution of grad_output, grad_weight and grad_bias as sums, each only where
// output_mask asks for it and something reads it.
const LibraryFamily& conv_direct_family();

}  // namespace kiln::cuda
