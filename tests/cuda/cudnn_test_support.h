// For tests of kiln's cuDNN users: why cuDNN cannot be used here (no CUDA device, no cuDNN 9), so
// that their GPU halves skip with the reason instead of failing.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <string>

#include "cuda/cudnn_library.h"

namespace kiln::cuda {

// Empty when a CUDA device and cuDNN 9 are usable.
inline std::string why_no_cudnn() {
  int devices = 0;
  const cudaError_t error = cudaGetDeviceCount(&devices);
  if (error != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA device: ") + cudaGetErrorString(error);
  }
  if (devices == 0) return "no CUDA device";
  Status s = cudnn_available();
  return s.ok() ? std::string() : s.message();
}

}  // namespace kiln::cuda

#define SKIP_WITHOUT_CUDNN()                                            \
  do {                                                                  \
    if (std::string why = ::kiln::cuda::why_no_cudnn(); !why.empty()) { \
      GTEST_SKIP() << why;                                              \
    }                                                                   \
  } while (0)
