// Convolutions through cuDNN's graph API (the cudnn-frontend headers from PyPI's
// nvidia-cudnn-frontend): y = act(conv(x, w) + bias + residual), forward or transposed, 2-D or 3-D,
// grouped (depthwise too), strided, dilated, padded.
//
// Tensors are given by dims in PyTorch's order (N, C, spatial...) plus strides in elements, so a
// channels-last (NHWC) tensor is the same dims with channels-last strides; cuDNN's fast fp16
// kernels want x, w and y channels-last. The weight has PyTorch's shape: [C_out, C_in/groups, kH,
// kW] (forward) or [C_in, C_out/groups, kH, kW] (transposed). Accumulation is fp32 (TF32 for fp32
// when allowed). cuDNN is loaded with dlopen on first use ("libcudnn.so.9"), so kiln links no
// cuDNN library and loads where cuDNN is absent; using a conv then fails with a clear error.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "cuda/cudnn_library.h"
#include "cuda/tactic_cache.h"
#include "kiln/status.h"

namespace kiln::cuda {

enum class ConvActivation : uint8_t { kNone, kRelu };

struct ConvDesc {
  DType dtype = DType::kFloat32;  // x, w, y, bias, residual: kFloat32, kFloat16 or kBFloat16
  std::vector<int64_t> x_dims, x_strides;  // [N, C_in, spatial...]
  std::vector<int64_t> w_dims, w_strides;
  std::vector<int64_t> y_dims, y_strides;          // [N, C_out, spatial...]
  std::vector<int64_t> stride, padding, dilation;  // one per spatial dim
  std::vector<int64_t> output_padding;             // transposed only
  int64_t groups = 1;
  bool transposed = false;
  bool has_bias = false;      // bias[C_out]
  bool has_residual = false;  // a tensor with y's dims and strides, added after the bias
  ConvActivation activation = ConvActivation::kNone;
  bool allow_tf32 = true;
};

struct ConvArgs {
  const void* x = nullptr;
  const void* w = nullptr;
  const void* bias = nullptr;
  const void* residual = nullptr;
  void* y = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

// One convolution's cuDNN graph with a chosen execution plan. Immutable after create(); run() is
// safe from several threads with different buffers and workspaces.
class ConvPlan {
 public:
  // Builds and checks the cuDNN graph, and picks a plan whose workspace fits `workspace_limit`:
  // with `autotune`, times the heuristic's candidates (on scratch buffers allocated and freed
  // here, on `stream`) and keeps the fastest; otherwise the heuristic's first that builds. Fails
  // (unsupported) when cuDNN has no engine for the desc, naming the desc. `known`: the
  // plan_indices() of an earlier create() for this desc (the timing cache's answer), built
  // without autotuning when they still build.
  //
  // With a cache in `cached`, first restores the plans kept under its key (skipping cuDNN's
  // kernel compilation), unless they are not the `known` ones, or autotuning has no `known`
  // answer yet (it must time); it builds when they do not restore. Built plans are then kept
  // there where cuDNN can serialize their engines (its runtime-compiled ones); others are not.
  static Result<std::shared_ptr<const ConvPlan>> create(const ConvDesc& desc,
                                                        size_t workspace_limit, bool autotune,
                                                        cudaStream_t stream,
                                                        const std::vector<int64_t>& known = {},
                                                        const PlanCacheSlot& cached = {});
  // create(), on a plan worker (plan_workers.h) with `device` current, while the caller goes on
  // (binding the engine's other steps): the plan is returned at once; ready() waits for it and
  // says how its creation went. run() and the accessors below wait for it too, and run() fails
  // as ready() does.
  static std::shared_ptr<const ConvPlan> create_deferred(int device, const ConvDesc& desc,
                                                         size_t workspace_limit, bool autotune,
                                                         cudaStream_t stream,
                                                         std::vector<int64_t> known = {},
                                                         PlanCacheSlot cached = {});
  Status ready() const;
  ~ConvPlan();
  ConvPlan(const ConvPlan&) = delete;
  ConvPlan& operator=(const ConvPlan&) = delete;

  Status run(const ConvArgs& args, cudaStream_t stream) const;

  const ConvDesc& desc() const { return desc_; }
  size_t workspace_bytes() const {
    (void)ready();
    return workspace_bytes_;
  }
  std::vector<int64_t> plan_indices() const;  // per stage: the chosen heuristic candidate
  // Whether create() restored the plans from the cache rather than building them.
  bool restored() const;
  std::string describe() const;  // "conv2d 32x64x56x56 k3 s1 f16 nhwc bias+relu plan <name>"

 private:
  ConvPlan() = default;
  struct Graph;
  struct Pending;
  // The body of create(), filling this plan (desc_ set).
  Status build(size_t workspace_limit, bool autotune, cudaStream_t stream,
               const std::vector<int64_t>& known, const PlanCacheSlot& cached);
  std::string describe_ready() const;  // describe() once built
  ConvDesc desc_;
  std::shared_ptr<Pending> pending_;  // set while a deferred create() may still run
  size_t workspace_bytes_ = 0;
  std::unique_ptr<Graph> graph_;
  std::string error_name_;  // "convolution " + describe(), made once for run()'s errors
};

// The timing-cache key of a desc under a workspace limit: the whole desc and the cuDNN version.
// Needs cuDNN loaded (cudnn_available()).
std::string conv_tactic_key(const ConvDesc& desc, size_t workspace_limit);

}  // namespace kiln::cuda
