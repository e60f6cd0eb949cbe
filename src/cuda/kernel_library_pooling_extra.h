// The kernel library's extra pooling family (kernels/pooling_extra.cuh): 3-D max pooling with
// indices, 3-D average and adaptive average pooling, and the backward ops of 2-D average, max
// and adaptive average pooling. Contract and style as kernel_library.h: `<name>_kernel` adds
// device code and an entry point to a module and returns its name (deterministic);
// `launch_<name>` checks the tensors and launches, never reading or writing out of bounds.
//
// Every tensor here is a 5-D [N, C, D, H, W] view with any strides (NCDHW, channels-last, permuted
// views): pool_view_5d makes one from a batched or unbatched 3-D or 2-D pooling tensor. Floating
// dtypes only (f32, f16, bf16), math in fp32. Window rules are PyTorch's CUDA kernels'; output
// sizes are the caller's (shape inference), the launches check them against the windows.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>
#include <string>

#include "cuda/kernel_library.h"

namespace kiln::cuda {

// Per spatial dim, in the order depth, height, width. A 2-D pool has depth kernel, stride and
// dilation 1 and no depth padding.
struct Pool3dParams {
  int64_t kernel[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1};
  int64_t padding[3] = {0, 0, 0};
  int64_t dilation[3] = {1, 1, 1};
  bool count_include_pad = true;
  int64_t divisor_override = 0;  // 0: none
};

// t ([N, C, *spatial] or unbatched [C, *spatial], `spatial` 2 or 3 dims) as [N, C, D, H, W]: a
// missing batch dim becomes N = 1, a 2-D pool's depth D = 1. Null when t's rank is neither.
std::optional<Tensor> pool_view_5d(const Tensor& t, int spatial);

// max_pool3d_with_indices / avg_pool3d: in [N, C, D, H, W] into out [N, C, Do, Ho, Wo], same
// dtype. Max writes int64 `indices` (out's sizes, any strides) when given, each the argmax's
// d * H * W + h * W + w within its input volume; a NaN is the max (the window's last NaN, as
// PyTorch's CUDA kernel), ties keep the first in window order. Either output of max may have no
// data (an unused output): it is not written. Avg: count_include_pad, divisor_override and
// ceil_mode windows that start in the padding as PyTorch.
std::string pool3d_kernel(ModuleSource& module, PoolKind kind, DType dtype);
Status launch_pool3d(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                     const Tensor* indices, const Pool3dParams& params, cudaStream_t stream);

// _adaptive_avg_pool3d: windows [floor(i*D/Do), ceil((i+1)*D/Do)) per dim.
std::string adaptive_avg_pool3d_kernel(ModuleSource& module, DType dtype);
Status launch_adaptive_avg_pool3d(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                                  cudaStream_t stream);

// The backward ops write grad_in (the pooled input's sizes, any strides) from grad_out (the pooled
// output's sizes), each element summing, in fp32 and in window order, what the windows holding it
// pass back; every element is written (zeros where no window holds it).
//
// avg_pool backward: each window passes grad_out / divisor (the forward's divisor; the quotient
// rounded to the dtype first, as PyTorch's `scalar_t / int`).
std::string avg_pool_backward_kernel(ModuleSource& module, DType dtype);
Status launch_avg_pool_backward(cudaKernel_t kernel, const Tensor& grad_out,
                                const Tensor& grad_in, const Pool3dParams& params,
                                cudaStream_t stream);
// max_pool_with_indices backward: each window whose int64 index (grad_out's sizes, any strides)
// names the element passes its grad_out. An index naming no position inside its own window adds
// nothing anywhere (PyTorch's CUDA gather does the same; its CPU kernel scatters instead).
std::string max_pool_backward_kernel(ModuleSource& module, DType dtype);
Status launch_max_pool_backward(cudaKernel_t kernel, const Tensor& grad_out,
                                const Tensor& indices, const Tensor& grad_in,
                                const Pool3dParams& params, cudaStream_t stream);
// _adaptive_avg_pool backward: the windows come from grad_out's and grad_in's spatial sizes; each
// passes grad_out divided by its extent along each dim in turn.
std::string adaptive_avg_pool_backward_kernel(ModuleSource& module, DType dtype);
Status launch_adaptive_avg_pool_backward(cudaKernel_t kernel, const Tensor& grad_out,
                                         const Tensor& grad_in, cudaStream_t stream);

}  // namespace kiln::cuda
