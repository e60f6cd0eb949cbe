// The kernel library's scatter family (kernel_library.h has the contract): gather, scatter and
// scatter_reduce, index_put, masked_scatter. Device code in kernels/scatter.cuh.
//
// The scatters work in place on `out`, which the caller has filled with self first (the
// functional ops are a copy and then one of these launches). Where several index elements name
// one element of out, the plain forms keep one of the writers (which one is unspecified, as on
// PyTorch's CUDA) and the reducing forms combine every writer with atomics in out's dtype (as
// PyTorch's CUDA kernels do: float16/bfloat16 sums round each partial sum; the order of the
// additions varies from run to run). An index outside its dim writes nothing (gather writes 0)
// and sets no error: PyTorch asserts on the device there.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cuda/kernel_library.h"

namespace kiln::cuda {

// --- gather -----------------------------------------------------------------------------------
// out = in.gather(dim, index): out[i] = in[i with i[dim] = index[i]]. index int64 or int32 of
// in's rank (a 0-d tensor counts as 1-D) and no larger than in apart from dim; out has index's
// sizes. Any strides. dim in [0, max(rank, 1)). Negative indices do not wrap (PyTorch rejects
// them): they and indices >= in.size(dim) give 0.
std::string gather_kernel(ModuleSource& module, DType dtype, DType index);
Status launch_gather(cudaKernel_t kernel, const Tensor& in, int64_t dim, const Tensor& index,
                     const Tensor& out, cudaStream_t stream);

// --- scatter and scatter_reduce ---------------------------------------------------------------
// How scattered elements combine with out's: kAssign is scatter (src or value); kSum is
// scatter_add and scatter_reduce "sum"; the others scatter_reduce's "prod", "mean", "amax",
// "amin". amax/amin propagate NaN (a NaN from either side wins).
enum class ScatterReduce : uint8_t { kAssign, kSum, kProd, kMean, kAmax, kAmin };
// The reduction scatter_reduce.two (and scatter.reduce) names, or nullopt.
std::optional<ScatterReduce> parse_scatter_reduce(std::string_view name);
// Whether the reducing forms take this dtype (bool does not; float64 has no kernels).
bool scatter_reduce_takes(DType dtype);

// `from_value`: the scattered elements are one number rather than src's.
std::string scatter_kernel(ModuleSource& module, ScatterReduce reduce, DType dtype, DType index,
                           bool from_value);
// For each element i of index: out[i with i[dim] = index[i]] (op)= src[i] (or `value`). index
// int64 or int32, of out's rank, no larger than out apart from dim nor than src; src of out's
// dtype and rank, any strides; out any strides without broadcast dims. Indices outside
// [0, out.size(dim)) write nothing (no wrapping: PyTorch rejects negative ones).
// With include_self false (reductions only), the elements of out that an index names start from
// the reduction's identity instead of self (0, 1, -inf, +inf; the type's lowest or highest for
// integers), as PyTorch does. kMean divides each named element by its count of writers, plus
// one with include_self; integers use floor division; elements no index names keep self.
// `counts` (kMean only): int32 scratch of out.numel() elements, any contents.
struct ScatterParams {
  ScatterReduce reduce = ScatterReduce::kAssign;
  bool include_self = true;
  double value = 0;  // the scattered number when `src` is null
};
Status launch_scatter(cudaKernel_t kernel, const Tensor& out, int64_t dim, const Tensor& index,
                      const Tensor* src, const ScatterParams& params, const Tensor* counts,
                      cudaStream_t stream);

// --- index_put --------------------------------------------------------------------------------
// out[indices] = values (or += with `accumulate`), out holding self: the indices as
// launch_index_tensor's (one entry per leading dim of out, null for None, int64 or int32 tensors
// that broadcast together; the index block comes first when the indexed dims are separated);
// values of out's dtype broadcast to the indexed shape (out[indices]'s). Negative indices wrap
// once; an index still outside its dim writes nothing. At least one index tensor.
std::string index_put_kernel(ModuleSource& module, DType dtype, bool accumulate);
Status launch_index_put(cudaKernel_t kernel, const Tensor& out,
                        const std::vector<const Tensor*>& indices, const Tensor& values,
                        cudaStream_t stream);
// The shape of out[indices] (what values broadcast to), checking the indices as launch_index_put
// does.
Result<Shape> index_put_indexed_shape(const Tensor& out, const std::vector<const Tensor*>& indices);

// --- index_put with a mask ---------------------------------------------------------------------
// out[mask] = values (or += with `accumulate`, float types), out holding self: `mask` (bool or
// uint8) covers out's leading mask.dim() dims with their sizes; values broadcast to one
// selected row (out's trailing dims, right-aligned), with at most one more leading dim of size 1
// (the selected rows' count, broadcast). A shape that depends on the mask's values is the
// caller's to refuse.
std::string masked_put_kernel(ModuleSource& module, DType dtype, DType mask, bool accumulate);
Status launch_masked_put(cudaKernel_t kernel, const Tensor& out, const Tensor& mask,
                         const Tensor& values, cudaStream_t stream);

// --- masked_scatter ---------------------------------------------------------------------------
// out (holding self broadcast to out's sizes) at the true elements of `mask` (bool, broadcast to
// out's sizes, right-aligned) takes source's elements: the k-th true element in row-major order
// takes source's k-th element in row-major order (any strides). True elements past source's
// count keep self's value (PyTorch raises an error there). `chunk_counts`: int64 scratch of
// masked_scatter_scratch_elements(out.numel()) elements, any contents.
std::string masked_scatter_kernel(ModuleSource& module, DType dtype);
int64_t masked_scatter_scratch_elements(int64_t numel);
Status launch_masked_scatter(cudaKernel_t kernel, const Tensor& out, const Tensor& mask,
                             const Tensor& source, const Tensor& chunk_counts, cudaStream_t stream);

// A view of `t` broadcast to `sizes` (right-aligned, stride 0 along new and size-1 dims), or an
// error naming both shapes.
Result<Tensor> scatter_broadcast_to(const Tensor& t, const Shape& sizes, std::string_view what);

}  // namespace kiln::cuda
