// The kernel library's group norm family (kernels/group_norm.cuh): group norm, instance norm and
// training-mode batch norm, whose statistics are taken over sets of channel planes rather than
// over rows of memory. Conventions as in kernel_library.h: `group_norm_kernel` adds the device
// code and an entry point for the dtypes and returns its name; the launches check shapes and
// dtypes and launch it. Inputs and outputs may have any strides (NCHW, NHWC, permuted views):
// the output is written through its own strides. Statistics are in fp32 whatever the storage
// type: mean, then the mean of squared deviations (biased), rstd = rsqrt(var + eps); a constant
// set normalizes to exactly 0 (so the output is exactly the bias), a set holding an inf or a NaN
// gets NaN statistics, an empty set mean 0 and rstd NaN (as kiln's CPU reference).
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "cuda/kernel_library.h"

namespace kiln::cuda {

// An entry point for input and output of `dtype`, per-channel parameters (weight, bias, running
// statistics) of `param` (the input's dtype, or float32 for a float16/bfloat16 input), and
// statistics outputs of `stats` (float32 or the input's dtype).
std::string group_norm_kernel(ModuleSource& module, DType dtype, DType param, DType stats);

// The optional per-channel tensors of a launch: 1-D, one element per channel, any stride, all of
// one dtype. Null: absent (weight 1, bias 0).
struct ChannelParams {
  const Tensor* weight = nullptr;
  const Tensor* bias = nullptr;
};

// Group norm of x [N, C, *] (rank 2 to kMaxKernelDims) in `groups` groups of C / groups
// channels: statistics per (sample, group), `mean` and `rstd` [N, groups] written where given
// (either may be null). Instance norm with input statistics is this with groups = C. `out` null:
// only the statistics are written (an output nothing reads has no buffer).
Status launch_group_norm(cudaKernel_t kernel, const Tensor& x, const ChannelParams& params,
                         const Tensor* out, const Tensor* mean, const Tensor* rstd, int64_t groups,
                         double eps, cudaStream_t stream);

// Training-mode batch norm without running statistics (_native_batch_norm_legit.no_stats):
// statistics per channel over the batch and spatial dims of x [N, C, *], `mean` and `invstd` [C]
// written where given; `out` null as for launch_group_norm.
Status launch_batch_norm_batch_stats(cudaKernel_t kernel, const Tensor& x,
                                     const ChannelParams& params, const Tensor* out,
                                     const Tensor* mean, const Tensor* invstd, double eps,
                                     cudaStream_t stream);

// Instance norm without input statistics: x [N, C, *] normalized per channel by the running
// statistics, (x - running_mean) / sqrt(running_var + eps) * weight + bias (both [C], required).
Status launch_instance_norm_running(cudaKernel_t kernel, const Tensor& x,
                                    const ChannelParams& params, const Tensor& running_mean,
                                    const Tensor& running_var, const Tensor& out, double eps,
                                    cudaStream_t stream);

// How a launch walks its sets: kernels/group_norm.cuh's kiln_group_norm::Shape, field by field
// (documented there). Exposed for tests that run the device code on the host; the launches above
// compute it with the same checks.
struct GroupNormWalk {
  static constexpr int kPlaneDims = 6;  // the dims after N and C, merged where they can be
  int64_t blocks_hi = 0, blocks_lo = 0;
  int64_t rows = 0, plane = 0;
  int64_t channel_lo = 0, channel_row = 0;
  int64_t x_hi = 0, x_lo = 0, x_row = 0;
  int64_t y_hi = 0, y_lo = 0, y_row = 0;
  int64_t stat_hi = 0, stat_lo = 0;
  int64_t w_stride = 0, b_stride = 0, rm_stride = 0, rv_stride = 0;
  int64_t plane_sizes[kPlaneDims] = {};
  int64_t x_plane[kPlaneDims] = {};
  int64_t y_plane[kPlaneDims] = {};
  int32_t plane_dims = 0;
  int32_t rows_inner = 0;
  int32_t x_flat = 0, y_flat = 0;
  int32_t infinite_mean = 0;  // batch norm keeps a one-signed infinite mean (eager CUDA's)
};
Result<GroupNormWalk> group_norm_walk(const Tensor& x, const ChannelParams& params,
                                      const Tensor* out, const Tensor* mean, const Tensor* rstd,
                                      int64_t groups);
Result<GroupNormWalk> batch_norm_batch_stats_walk(const Tensor& x, const ChannelParams& params,
                                                  const Tensor* out, const Tensor* mean,
                                                  const Tensor* invstd);
Result<GroupNormWalk> instance_norm_running_walk(const Tensor& x, const ChannelParams& params,
                                                 const Tensor& running_mean,
                                                 const Tensor& running_var, const Tensor& out);

}  // namespace kiln::cuda
