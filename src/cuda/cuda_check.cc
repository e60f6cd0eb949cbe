#include "cuda/cuda_check.h"

namespace kiln::cuda {

Status cuda_status(cudaError_t error, std::string_view call) {
  const std::string message =
      str_cat("CUDA error ", cudaGetErrorName(error), " (", cudaGetErrorString(error), ") in ", call);
  switch (error) {
    case cudaErrorMemoryAllocation:
      return failed_precondition(message);  // out of GPU memory: the device's state
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
      return unsupported(message);
    default:
      return internal_error(message);
  }
}

Status cublas_status(cublasStatus_t error, std::string_view call) {
  const std::string message = str_cat("cuBLAS error ", cublasLtGetStatusName(error), " (",
                                      cublasLtGetStatusString(error), ") in ", call);
  if (error == CUBLAS_STATUS_NOT_SUPPORTED || error == CUBLAS_STATUS_ARCH_MISMATCH) {
    return unsupported(message);
  }
  if (error == CUBLAS_STATUS_ALLOC_FAILED) return failed_precondition(message);  // out of GPU memory: the device's state
  return internal_error(message);
}

Status nvrtc_status(nvrtcResult error, std::string_view call) {
  return internal_error("NVRTC error ", nvrtcGetErrorString(error), " in ", call);
}

}  // namespace kiln::cuda
