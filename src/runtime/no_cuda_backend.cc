// The CUDA backend's entry points in a kiln built without the CUDA toolkit.
#ifndef KILN_WITH_CUDA
#include "runtime/device_engine.h"

namespace kiln {

Result<std::unique_ptr<DeviceEngine>> load_cuda_engine(const format::Engine& engine) {
  return unsupported("engine '", engine.build.name, "' was built for CUDA (", engine.target.arch,
                     "), but this kiln was built without the CUDA backend");
}

bool has_cuda_backend() { return false; }

void set_timing_cache_path(const std::string&) {}

}  // namespace kiln
#endif
