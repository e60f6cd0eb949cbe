#include "cuda/kernel_module.h"

#include "cuda/cuda_check.h"

namespace kiln::cuda {

Result<std::string> current_device_arch() {
  int device = 0;
  KILN_CUDA_CHECK(cudaGetDevice(&device));
  int major = 0, minor = 0;
  KILN_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  KILN_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return str_cat("sm_", major * 10 + minor);
}

Result<std::unique_ptr<KernelModule>> KernelModule::load(const std::string& image,
                                                         const std::string& image_arch) {
  std::unique_ptr<KernelModule> module(new KernelModule());
  const cudaError_t error = cudaLibraryLoadData(&module->library_, image.data(), nullptr,
                                                nullptr, 0, nullptr, nullptr, 0);
  if (error == cudaErrorInvalidKernelImage || error == cudaErrorNoKernelImageForDevice ||
      error == cudaErrorUnsupportedPtxVersion || error == cudaErrorInvalidPtx) {
    cudaGetLastError();
    auto arch = current_device_arch();
    return unsupported("the engine's kernels were built for ", image_arch, ", but this GPU is ",
                       arch.ok() ? *arch : std::string("of unknown arch"),
                       "; rebuild the engine for it (kiln compile --target ",
                       arch.ok() ? *arch : std::string("sm_XX"),
                       ") or build with hardware_compatible=True to carry PTX");
  }
  KILN_CUDA_CHECK(error);
  return module;
}

KernelModule::~KernelModule() {
  if (library_) cudaLibraryUnload(library_);
}

Result<cudaKernel_t> KernelModule::kernel(const std::string& name) const {
  cudaKernel_t kernel = nullptr;
  const cudaError_t error = cudaLibraryGetKernel(&kernel, library_, name.c_str());
  if (error != cudaSuccess) {
    cudaGetLastError();
    return not_found("the engine's kernel image has no kernel '", name,
                     "' (an engine from another kiln version? rebuild it)");
  }
  return kernel;
}

Status launch_kernel(cudaKernel_t kernel, dim3 grid, dim3 block, size_t shared_bytes,
                     cudaStream_t stream, void** args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return ok_status();  // nothing to do
  KILN_CUDA_CHECK(cudaLaunchKernel(reinterpret_cast<const void*>(kernel), grid, block, args,
                                   shared_bytes, stream));
  return ok_status();
}

}  // namespace kiln::cuda
