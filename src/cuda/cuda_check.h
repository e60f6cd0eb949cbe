// Turning the CUDA libraries' error codes into kiln Statuses. Every call into the CUDA runtime,
// cuBLASLt, cuDNN or NVRTC goes through one of these, so a failure names the call, the library's
// own error name and what kiln was doing.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <nvrtc.h>

#include <string_view>

#include "kiln/status.h"

namespace kiln::cuda {

Status cuda_status(cudaError_t error, std::string_view call);
Status cublas_status(cublasStatus_t error, std::string_view call);
Status nvrtc_status(nvrtcResult error, std::string_view call);

}  // namespace kiln::cuda

// KILN_CUDA_CHECK(cudaMemsetAsync(...)) returns a failed Status from the enclosing function.
#define KILN_CUDA_CHECK(expr)                                                           \
  do {                                                                                  \
    if (cudaError_t kiln_cuda_error_ = (expr); kiln_cuda_error_ != cudaSuccess) {       \
      return ::kiln::cuda::cuda_status(kiln_cuda_error_, #expr);                        \
    }                                                                                   \
  } while (false)
#define KILN_CUBLAS_CHECK(expr)                                                         \
  do {                                                                                  \
    if (cublasStatus_t kiln_cublas_error_ = (expr);                                     \
        kiln_cublas_error_ != CUBLAS_STATUS_SUCCESS) {                                  \
      return ::kiln::cuda::cublas_status(kiln_cublas_error_, #expr);                    \
    }                                                                                   \
  } while (false)
#define KILN_NVRTC_CHECK(expr)                                                          \
  do {                                                                                  \
    if (nvrtcResult kiln_nvrtc_error_ = (expr); kiln_nvrtc_error_ != NVRTC_SUCCESS) {   \
      return ::kiln::cuda::nvrtc_status(kiln_nvrtc_error_, #expr);                      \
    }                                                                                   \
  } while (false)
