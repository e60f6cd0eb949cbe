// Loading compiled kernel images (cubin or PTX) with the CUDA runtime's library-loading API
// (cudaLibraryLoadData), and launching their kernels. kiln never links libcuda: the runtime API
// reaches the driver at run time, so the library loads on machines without a GPU.
#pragma once

#include <cuda_runtime_api.h>

#include <memory>
#include <string>

#include "kiln/status.h"

namespace kiln::cuda {

class KernelModule {
 public:
  // Loads an image on the current device. Fails (unsupported) when the image has no code for this
  // GPU, naming the image's arch and the device's.
  static Result<std::unique_ptr<KernelModule>> load(const std::string& image,
                                                    const std::string& image_arch);
  ~KernelModule();
  KernelModule(const KernelModule&) = delete;
  KernelModule& operator=(const KernelModule&) = delete;

  // The kernel named `name` (an extern "C" __global__ function). Fails (not_found) when absent.
  Result<cudaKernel_t> kernel(const std::string& name) const;

 private:
  KernelModule() = default;
  cudaLibrary_t library_ = nullptr;
};

// Launches `kernel` with the argument pointers `args` (one per kernel parameter).
Status launch_kernel(cudaKernel_t kernel, dim3 grid, dim3 block, size_t shared_bytes,
                     cudaStream_t stream, void** args);

// The current device's arch, "sm_90".
Result<std::string> current_device_arch();

}  // namespace kiln::cuda
