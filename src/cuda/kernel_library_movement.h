// The kernel library's movement family: ops whose output holds elements of their input at new
// places (kernel_library.h's contract and conventions).
//
//   - constant_pad_nd, flip, repeat, pixel_shuffle and pixel_unshuffle are one gather kernel
//     (kernels/movement.cuh): each output element reads the input element its coordinates map
//     to, or a fill value (pad's border). Input and output any strides (the input's may be 0 or
//     negative), rank <= kMaxKernelDims, same dtype (any but float64 is what engines use; every
//     dtype compiles), int64 index math. The output must not overlap the input.
//   - slice_scatter and select_scatter are two strided copies with kernel_library.h's copy
//     kernel: the input into the output, then src into the output's region.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cuda/kernel_library.h"

namespace kiln::cuda {

// The gather's mappings.
enum class MoveOp : uint8_t { kConstantPad, kFlip, kRepeat, kPixelShuffle, kPixelUnshuffle };

std::string move_kernel(ModuleSource& module, MoveOp op, DType dtype);

// constant_pad_nd's value as the program wrote it: an int64 keeps every bit for int64 outputs; a
// float is converted to the dtype as PyTorch's fill does (floats to integers truncate, nonzero is
// true for bool).
struct PadValue {
  double floating = 0.0;
  int64_t integer = 0;
  bool is_integer = false;
};

// out = constant_pad_nd(in, pad, value): pad lists (before, after) pairs from the last dim
// backwards, negative ones cropping; out's sizes are in's plus both pads on each padded dim.
// An empty input gives an output of nothing but `value`.
Status launch_constant_pad(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                           const std::vector<int64_t>& pad, const PadValue& value,
                           cudaStream_t stream);
// out = flip(in, dims): dims in [-rank, rank), a dim listed twice is an error (as in PyTorch).
Status launch_flip(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                   const std::vector<int64_t>& dims, cudaStream_t stream);
// out = in.repeat(repeats): at least in.dim() repeats, each >= 0; extra ones add leading dims.
Status launch_repeat(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                     const std::vector<int64_t>& repeats, cudaStream_t stream);
// in [*, C*r*r, H, W] -> out [*, C, H*r, W*r], and back.
Status launch_pixel_shuffle(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                            int64_t factor, cudaStream_t stream);
Status launch_pixel_unshuffle(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                              int64_t factor, cudaStream_t stream);

// --- scatters into a view of a copy ------------------------------------------------------------
// The views of `t` the scatters write, as PyTorch takes them: t[start:end:step] along `dim`
// (start and end clamped into [0, size] as Python slices are, None as the whole dim; step >= 1),
// and t.select(dim, index) (index in [-size, size)). dim in [-rank, rank).
Result<Tensor> slice_region(const Tensor& t, int64_t dim, std::optional<int64_t> start,
                            std::optional<int64_t> end, int64_t step);
Result<Tensor> select_region(const Tensor& t, int64_t dim, int64_t index);

// out = input, then region = src, where region is a view of out's storage (slice_region or
// select_region of out) and src has its sizes. copy_input converts input's dtype to out's,
// copy_src src's (copy_kernel); either may be null where launch_copy needs none (same dtype,
// both contiguous). input and src must not overlap out (out may be input itself: then the first
// copy is skipped).
Status launch_scatter_into(cudaKernel_t copy_input, cudaKernel_t copy_src, const Tensor& input,
                           const Tensor& src, const Tensor& out, const Tensor& region,
                           cudaStream_t stream);

}  // namespace kiln::cuda
