// cuDNN's loading, per-thread handles and error mapping (see cudnn_runtime.h).
#include "cuda/cudnn_runtime.h"

#include <dlfcn.h>

#include <string>
#include <vector>

#include "cuda/cuda_check.h"

namespace cudnn_frontend {
// The frontend's shim declares this handle and expects its user to define and set it.
void* cudnn_dlhandle = nullptr;
}  // namespace cudnn_frontend

namespace kiln::cuda {
namespace {

Status load_cudnn_library() {
  dlerror();
  void* handle = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_GLOBAL);
  if (!handle) {
    const char* error = dlerror();
    const std::string first_error = error ? error : "unknown dlopen error";
    handle = dlopen("libcudnn.so", RTLD_NOW | RTLD_GLOBAL);
    if (!handle) {
      return failed_precondition("cuDNN 9 (libcudnn.so.9) could not be loaded: ", first_error,
                                 "; install PyPI's nvidia-cudnn-cu13 or import torch first");
    }
  }
  using GetVersion = size_t (*)();
  auto get_version = reinterpret_cast<GetVersion>(dlsym(handle, "cudnnGetVersion"));
  if (!get_version) {
    return failed_precondition("the loaded cuDNN library has no cudnnGetVersion");
  }
  const size_t version = get_version();
  if (version < 90000) {
    return failed_precondition("kiln needs cuDNN 9 (libcudnn.so.9); found cuDNN ", version,
                               " (libcudnn.so); install PyPI's nvidia-cudnn-cu13 or import torch "
                               "first");
  }
  cudnn_frontend::cudnn_dlhandle = handle;
  return ok_status();
}

const Status& cudnn_load_status() {
  static const Status status = load_cudnn_library();  // once, thread-safe
  return status;
}

// One handle per thread and device: a cudnnHandle_t carries the stream, so sharing one between
// threads would race on cudnnSetStream.
class ThreadHandles {
 public:
  ~ThreadHandles() {
    for (cudnnHandle_t handle : handles_) {
      if (!handle) continue;
      try {
        (void)fe::detail::destroy_handle(handle);
      } catch (...) {  // at thread exit nothing can be reported
      }
    }
  }

  Result<cudnnHandle_t> get(int device) {
    if (device < 0) return internal_error("negative CUDA device ", device);
    if (static_cast<size_t>(device) >= handles_.size()) handles_.resize(device + 1, nullptr);
    if (!handles_[device]) {
      cudnnHandle_t handle = nullptr;
      const cudnnStatus_t status = fe::detail::create_handle(&handle);
      if (status != CUDNN_STATUS_SUCCESS) {
        return failed_precondition("cudnnCreate on device ", device,
                                   " failed: ", fe::detail::get_error_string(status));
      }
      handles_[device] = handle;
    }
    return handles_[device];
  }

 private:
  std::vector<cudnnHandle_t> handles_;
};

}  // namespace

Result<cudnnHandle_t> cudnn_thread_handle(int device) {
  thread_local ThreadHandles handles;
  return handles.get(device);
}

Status cudnn_available() {
  return cudnn_load_status();
}

Status cudnn_set_stream(cudnnHandle_t handle, cudaStream_t stream) {
  const cudnnStatus_t status = fe::detail::set_stream(handle, stream);
  if (status != CUDNN_STATUS_SUCCESS) {
    return internal_error("cudnnSetStream failed: ", fe::detail::get_error_string(status));
  }
  return ok_status();
}

Status current_device_sm(int* device, int* sm_version) {
  int major = 0, minor = 0;
  KILN_CUDA_CHECK(cudaGetDevice(device));
  KILN_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, *device));
  KILN_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, *device));
  *sm_version = major * 10 + minor;
  return ok_status();
}

fe::DataType_t fe_dtype(DType dtype) {
  switch (dtype) {
    case DType::kFloat16: return fe::DataType_t::HALF;
    case DType::kBFloat16: return fe::DataType_t::BFLOAT16;
    default: return fe::DataType_t::FLOAT;
  }
}

bool cudnn_means_unsupported(fe::error_t error) {
  switch (error.get_code()) {
    case fe::error_code_t::GRAPH_NOT_SUPPORTED:
    case fe::error_code_t::GRAPH_EXECUTION_PLAN_CREATION_FAILED:
    case fe::error_code_t::HEURISTIC_QUERY_FAILED: return true;
    case fe::error_code_t::CUDNN_BACKEND_API_FAILED:
      return error.get_message().find("NOT_SUPPORTED") != std::string::npos;
    default: return false;
  }
}

}  // namespace kiln::cuda
