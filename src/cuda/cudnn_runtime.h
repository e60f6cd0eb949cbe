// What kiln's cuDNN users (convolutions, attention) share: the cudnn-frontend headers in
// dynamic-loading mode, cuDNN itself loaded with dlopen on first use (so kiln links no cuDNN
// library and loads where cuDNN is absent), one handle per thread and device, and the mapping of
// frontend errors to kiln's status codes.
//
// The frontend's own CUDA-runtime calls go through a libcudart it loads itself; kiln answers the
// ones on the build path (device, SM version) from its own runtime.
#pragma once

#include <cuda_runtime_api.h>

#include <string_view>

#include "base/dtype.h"
#include "cuda/cudnn_library.h"
#include "kiln/status.h"

// The frontend then resolves every cuDNN entry point with dlsym on `cudnn_frontend::cudnn_dlhandle`
// (set by cudnn_available(), cudnn_library.h). Every kiln file that includes the frontend includes it from here.
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

}  // namespace kiln::cuda
