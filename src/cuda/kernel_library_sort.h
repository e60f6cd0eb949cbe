// The kernel library's sort family (kernel_library.h describes the contract): sort and topk
// along one dim, values and int64 indices, in one entry point per dtype.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "cuda/kernel_library.h"

namespace kiln::cuda {

// The longest row the kernel sorts: one block holds a row's (key, index) pairs in shared memory,
// padded to a power of two, 12 bytes each: 4096 of them fill the 48 KiB a block gets without
// opting in to more. Longer rows are left to PyTorch (the verdict checks).
inline constexpr int64_t kSortRowMax = 4096;

// Sorts each row of `in` along `dim` (in [0, rank), 0 for a 0-d input) and writes the first k
// entries of the sorted row, k being the outputs' size along dim (the row's length for sort,
// k <= that for topk): `values` (in's dtype) and `indices` (int64, each entry's position in
// its row), either of which may be null (not written; at least one is needed for any work).
// All tensors any strides; the outputs' other dims match in's.
//
// The order is PyTorch's: NaN above +inf, -0.0 equal to 0.0; `descending` reverses it (NaN
// first). Equal values keep their index order in both directions, so the result is the
// stable sort's (and, for topk, the smallest indices win ties at the k-th place). Integer and
// bool rows compare exactly (int64 included); 16-bit floats compare as their fp32 values. The
// values written are the input's elements themselves (a -0.0 stays -0.0).
std::string sort_kernel(ModuleSource& module, DType dtype);
Status launch_sort(cudaKernel_t kernel, const Tensor& in, const Tensor* values,
                   const Tensor* indices, int64_t dim, bool descending, cudaStream_t stream);

}  // namespace kiln::cuda
