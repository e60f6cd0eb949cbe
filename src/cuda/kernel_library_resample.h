// The resample family of kiln's kernel library (kernels/resample.cuh): upsampling (nearest,
// nearest-exact, linear and bilinear), col2im (F.fold) and p-norm distances (cdist, pdist). The
// contract is kernel_library.h's: `*_kernel` adds device code and an entry point and returns its
// name (deterministic), `launch_*` checks shapes, then launches; fp32 math whatever the storage
// type. Semantics follow PyTorch's CUDA kernels, where they differ from its CPU ones (noted below).
#pragma once

#include <cuda_runtime_api.h>

#include <optional>
#include <string>

#include "cuda/kernel_library.h"

namespace kiln::cuda {

// --- upsampling -------------------------------------------------------------------------------

enum class UpsampleMode : uint8_t { kNearest, kNearestExact, kLinear };
struct UpsampleParams {
  UpsampleMode mode = UpsampleMode::kNearest;
  bool align_corners = false;  // linear only
  // Per spatial dim (H then W; W alone for 1-D), the scale factor the program gave (out / in), if
  // any: eager then maps indices with 1 / factor instead of in / out.
  std::optional<double> scales[2];
};
// in [N, C, W] -> out [N, C, Wo] (spatial_dims 1) or in [N, C, H, W] -> out [N, C, Ho, Wo]
// (spatial_dims 2); any strides for both; the caller computed the output size. Nearest (float
// types and uint8) copies the element at min(floor(dst * scale), in - 1) (nearest-exact:
// floor((dst + 0.5) * scale)), scale = 1 / factor or in / out in float as eager computes it; a 2-D
// dim whose size does not change maps each index to itself, as eager's 2-D kernel does. Linear
// (float types) weighs the two neighbours at PyTorch's area_pixel_compute_source_index in fp32,
// reading both even at weight 0 (0 * NaN is NaN, as in eager); equal input and output sizes copy.
std::string upsample_kernel(ModuleSource& module, UpsampleMode mode, int spatial_dims,
                            DType dtype);
Status launch_upsample(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                       const UpsampleParams& params, cudaStream_t stream);

// --- col2im -----------------------------------------------------------------------------------

struct Col2imParams {
  int64_t kernel[2] = {1, 1};
  int64_t dilation[2] = {1, 1};
  int64_t padding[2] = {0, 0};
  int64_t stride[2] = {1, 1};
};
// col2im(columns [N, C * kh * kw, L] or [C * kh * kw, L]) -> out [N, C, H, W] or [C, H, W]: the
// sum, over the patches of the sliding window, of the entries that land on each output pixel;
// L must be the window's patch count over the padded output. Each output pixel gathers its
// entries (no atomics: deterministic), in eager's order, summing in fp32. Any strides.
std::string col2im_kernel(ModuleSource& module, DType dtype);
Status launch_col2im(cudaKernel_t kernel, const Tensor& columns, const Tensor& out,
                     const Col2imParams& params, cudaStream_t stream);

// --- p-norm distances -------------------------------------------------------------------------

// How a distance is computed: |a - b| summed (kOne), squared then sqrt (kTwo), max (kInf), count
// of nonzero differences (kZero), (sum |d|^p)^(1/p) (kP), or eager's matrix-product form of the
// euclidean distance, sqrt(clamp_min(|a|^2 + |b|^2 - 2 a.b, 0)) (kTwoByProduct), with the
// roundings to the storage type that eager's separate ops make. As eager's CUDA kernels (not its
// CPU ones): kZero counts a NaN difference as differing, kInf skips NaN differences; the other
// forms propagate NaN. Each distance is reduced over 256 threads in eager's order.
enum class DistanceNorm : uint8_t { kZero, kOne, kTwo, kInf, kP, kTwoByProduct };
// The direct form for p (p >= 0).
DistanceNorm distance_norm(double p);
// The form eager's cdist takes: the product for p = 2 with compute_mode 1, or compute_mode 0
// (None) and more than 25 rows on a side; else the direct form.
DistanceNorm cdist_norm(double p, int64_t compute_mode, int64_t rows1, int64_t rows2);

// _cdist_forward: x1 [*, P, M], x2 [*, R, M] (batch dims broadcast) -> out [broadcast(*), P, R];
// any strides.
std::string cdist_kernel(ModuleSource& module, DType dtype, DistanceNorm norm);
Status launch_cdist(cudaKernel_t kernel, const Tensor& x1, const Tensor& x2, const Tensor& out,
                    double p, cudaStream_t stream);
// _pdist_forward: x [N, M] -> out [N (N - 1) / 2], the distances of rows i < j in row-major order
// of the upper triangle; any strides. kTwoByProduct is not an eager form for pdist: taken as kTwo.
std::string pdist_kernel(ModuleSource& module, DType dtype, DistanceNorm norm);
Status launch_pdist(cudaKernel_t kernel, const Tensor& x, const Tensor& out, double p,
                    cudaStream_t stream);

}  // namespace kiln::cuda
