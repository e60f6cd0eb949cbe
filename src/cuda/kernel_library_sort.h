// The kernel library's sort family (kernel_library.h describes the contract): sort and topk
// along one dim, values and int64 indices, in one entry point per dtype.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "cuda/kernel_library.h"

namespace kiln::cuda {

// The longest row a block sorts in shared memory: a row's (key, index) pairs, padded to a power
// of two, 12 bytes each: 4096 of them fill the 48 KiB a block gets without opting in to more.
inline constexpr int64_t kSortRowMax = 4096;
// Longer rows, up to this, sort the same way in global scratch (sort_scratch_bytes), a block per
// row at a time; longer ones are left to PyTorch (the verdict checks).
inline constexpr int64_t kSortLongRowMax = int64_t{1} << 22;

// The scratch launch_sort needs for `rows` rows of n elements: none up to kSortRowMax, else room
// for the pairs of as many rows as run at once (at most 64 blocks, within 256 MiB).
size_t sort_scratch_bytes(int64_t rows, int64_t n);

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
// Rows longer than kSortRowMax need `scratch` of sort_scratch_bytes (at least one row's pairs).
std::string sort_kernel(ModuleSource& module, DType dtype);
Status launch_sort(cudaKernel_t kernel, const Tensor& in, const Tensor* values,
                   const Tensor* indices, int64_t dim, bool descending, cudaStream_t stream,
                   void* scratch = nullptr, size_t scratch_bytes = 0);

}  // namespace kiln::cuda
