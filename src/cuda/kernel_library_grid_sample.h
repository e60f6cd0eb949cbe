// The grid_sample family of kiln's kernel library (kernels/grid_sample.cuh): grid_sampler_2d with
// bilinear, nearest and bicubic interpolation and zeros, border and reflection padding. The
// contract is kernel_library.h's: `grid_sample_kernel` adds device code and an entry point and
// returns its name (deterministic), `launch_grid_sample` checks shapes, then launches. Semantics
// are PyTorch's CUDA kernel's (GridSampler.cu), where they differ from its CPU one (noted below).
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "cuda/kernel_library.h"

namespace kiln::cuda {

// PyTorch's numbering of grid_sampler_2d's interpolation_mode and padding_mode.
enum class GridInterpolation : uint8_t { kBilinear = 0, kNearest = 1, kBicubic = 2 };
enum class GridPadding : uint8_t { kZeros = 0, kBorder = 1, kReflection = 2 };

// input [N, C, H, W] sampled at grid [N, Ho, Wo, 2] (x, y in [-1, 1]) into out [N, C, Ho, Wo];
// float32, float16 or bfloat16, one dtype for all three; any strides. As eager's CUDA kernel:
// coordinates in fp32 ((g + 1) / 2 * (size - 1) with align_corners, ((g + 1) * size - 1) / 2
// without); border and reflection padding clip (a NaN to 0); a coordinate not finite after
// padding samples nothing (zeros padding gives 0 for a NaN grid point, where eager's CPU kernel
// gives NaN); nearest rounds half to even; bicubic (A = -0.75) pads each of its 16 taps,
// rounding the tap coordinates to the storage type as eager does. Taps outside the image read 0;
// taps inside are read even at weight 0 (a NaN pixel there gives NaN).
std::string grid_sample_kernel(ModuleSource& module, GridInterpolation mode, GridPadding padding,
                               DType dtype);
Status launch_grid_sample(cudaKernel_t kernel, const Tensor& input, const Tensor& grid,
                          const Tensor& out, bool align_corners, cudaStream_t stream);

}  // namespace kiln::cuda
