// What kiln's cuDNN users (convolutions, attention) share: the cudnn-frontend headers in
// dynamic-loading mode, cuDNN itself loaded with dlopen on first use (so kiln links no cuDNN
// library and loads where cuDNN is absent), one handle per thread and device, and the mapping of
// frontend errors to kiln's status codes.
//
// The frontend's own CUDA-runtime calls go through a libcudart it loads itself; kiln answers the
// ones on the build path (device, SM version) from its own runtime.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/dtype.h"
#include "cuda/cudnn_library.h"
#include "kiln/status.h"

// The frontend then resolves every cuDNN entry point with dlsym on `cudnn_frontend::cudnn_dlhandle`
// (set by cudnn_available(), cudnn_library.h). Every kiln file that includes the frontend includes
// it from here.
#define NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING
#include <cudnn_frontend.h>

namespace kiln::cuda {

namespace fe = cudnn_frontend;
namespace feg = cudnn_frontend::graph;

// This thread's cuDNN handle for `device` (created on first use, destroyed at thread exit). A
// handle carries its stream, so sharing one between threads would race on cudnnSetStream.
Result<cudnnHandle_t> cudnn_thread_handle(int device);
Status cudnn_set_stream(cudnnHandle_t handle, cudaStream_t stream);

// The current CUDA device and its SM version (90 for sm_90).
Status current_device_sm(int* device, int* sm_version);

fe::DataType_t fe_dtype(DType dtype);  // kFloat16 -> HALF, kBFloat16 -> BFLOAT16, else FLOAT

// The frontend's "no engine for this graph" answers, as opposed to misuse or a failing library.
bool cudnn_means_unsupported(fe::error_t error);

// cuDNN's tensors declare 16-byte aligned data (the frontend's default), which its fast engines
// rely on.
inline constexpr uintptr_t kCudnnAlignment = 16;
// OK when `p` is set and kCudnnAlignment-aligned; `op` and `name` name it ("convolution", "x").
Status check_cudnn_pointer(std::string_view op, std::string_view name, const void* p);

// Frontend calls may throw: runs `fn` (returning Status) and turns an exception into an internal
// error, "cuDNN frontend threw while <action> <what>: <exception>".
template <typename Fn>
Status guard_cudnn_frontend(std::string_view action, std::string_view what, Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return internal_error("cuDNN frontend threw while ", action, " ", what, ": ", e.what());
  } catch (...) {
    return internal_error("cuDNN frontend threw while ", action, " ", what);
  }
}

// Builds execution plan `index` (after the heuristics query) and says whether it built with a
// workspace within `limit`; a failure's message goes to `failure`.
bool build_plan_within(feg::Graph& graph, int64_t index, int64_t limit, std::string* failure);
// Builds, in the heuristic's order, the first `wanted` plans that build within `limit`; empty
// when none does (`last_failure` then holds the last failure's message).
std::vector<int64_t> build_plans_within(feg::Graph& graph, int64_t limit, int64_t wanted,
                                        std::string* last_failure);

// Runs execution plan `index` of a built graph on `stream` through this thread's handle, with
// `ptrs` the variant pack in the graph's sorted-uid order. The graph was built on `device`; the
// current device must be it. `what` names the graph in errors.
Status execute_cudnn_plan(feg::Graph& graph, int64_t index, void** ptrs, size_t count,
                          void* workspace, int device, cudaStream_t stream, std::string_view what);

// ---- plans kept across processes (TacticCache's blobs) ----
//
// A restored plan skips cuDNN's engine compilation (seconds for its runtime-compiled flash
// attention and fusion engines). The frontend serializes a built plan and restores it with a
// handle on an identical GPU with the same cuDNN and frontend versions, which the cache key says.

// The cache key of a plan builder's blob: `key` (GPU and problem) with the versions of cuDNN and
// of its frontend, on which the serialized form depends. Needs cuDNN loaded.
std::string cudnn_plan_cache_key(std::string_view key);

// A built graph's chosen plan, for serialize_cudnn_plans.
struct CudnnPlanToKeep {
  feg::Graph* graph = nullptr;
  int64_t index = -1;  // the built plan's index, a heuristic candidate
  std::string_view name;
};

// The chosen plans of one op's graphs (one graph, or a conv and its epilogue) as one blob:
// UBJSON of {"kiln_cudnn_plans": 1, "stages": [{"index", "name", "graph": the frontend's plan-only
// serialization}]}. Fails (unsupported) where cuDNN cannot serialize an engine (runtime-compiled
// ones serialize; others may decline), so the caller keeps nothing; never throws.
Result<std::vector<uint8_t>> serialize_cudnn_plans(const std::vector<CudnnPlanToKeep>& stages);

// One stage of a restored blob: `graph` holds the one plan, executed as index 0.
struct RestoredCudnnPlan {
  std::shared_ptr<feg::Graph> graph;
  int64_t index = -1;  // the heuristic candidate it was when built (for the timing cache)
  std::string name;
  int64_t workspace_bytes = 0;
  std::vector<int64_t> uids;  // the variant pack's tensors, in execute()'s order
};

// Restores every stage of a serialize_cudnn_plans blob with `handle` (the thread's, on the device
// the plans will run on). Fails, without throwing, on bytes that are not such a blob and on plans
// cuDNN refuses; the caller then builds.
Result<std::vector<RestoredCudnnPlan>> deserialize_cudnn_plans(const std::vector<uint8_t>& blob,
                                                               cudnnHandle_t handle);

}  // namespace kiln::cuda
