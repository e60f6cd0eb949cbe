// The index reduction family of the kernel library (kernels/index_reduction.cuh): argmax/argmin,
// max/min along a dim with their indices, and var/std (with the mean, for var_mean). Contract and
// style as kernel_library.h.
//
// Outputs are viewed with the input's rank (keepdim form), as launch_reduce takes them: the
// reduced dims are those where an output has size 1 and the input does not. Both outputs of an
// op are optional (null: not written), since a program may read only one of them; given both,
// they have the same sizes. Input and outputs have any strides.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "cuda/kernel_library.h"

namespace kiln::cuda {

// argmax/argmin (`max` false: the min) of `in`: `values` (in's dtype) gets the first extreme
// element and `indices` (int64) its position in row-major order over the reduced dims, which is
// PyTorch's index: along the dim for max.dim/argmax(dim), into the flattened input for
// argmax(dim=None). A NaN is both the max and the min, and the first NaN wins, as in PyTorch;
// ties go to the smaller index. Integer and bool inputs compare exactly. A reduction over no
// elements has no result: the launch fails (PyTorch raises).
std::string arg_reduce_kernel(ModuleSource& module, bool max, DType in);
Status launch_arg_reduce(cudaKernel_t kernel, const Tensor& in, const Tensor* values_keepdim,
                         const Tensor* indices_keepdim, cudaStream_t stream);

// var (or std, with `sqrt`) of a floating `in` with `correction` (PyTorch's: 1 is unbiased),
// into `var`, and the mean into `mean`, both of in's dtype. Welford's algorithm in fp32, as
// PyTorch's CUDA kernel: a constant row gives exactly 0. The divisor is max(0, n - correction),
// so n <= correction gives NaN (0 / 0) or inf, and a reduction over no elements NaN, as in
// PyTorch.
std::string moments_kernel(ModuleSource& module, DType in, bool sqrt);
Status launch_moments(cudaKernel_t kernel, const Tensor& in, const Tensor* var_keepdim,
                      const Tensor* mean_keepdim, double correction, cudaStream_t stream);

}  // namespace kiln::cuda
