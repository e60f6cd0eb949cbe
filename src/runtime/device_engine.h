// Engines that run on a GPU backend: the interface EngineRuntime uses for them, so the runtime
// (and the CPU-only build) does not depend on CUDA headers.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/tensor.h"
#include "format/engine.h"
#include "kiln/status.h"

namespace kiln {

class DeviceEngine {
 public:
  virtual ~DeviceEngine() = default;
  // The output shapes for inputs of these shapes (inputs are checked as run() checks them).
  virtual Result<std::vector<Shape>> output_shapes(std::span<const Tensor> inputs) = 0;
  // Runs on `stream` (a cudaStream_t; null is the legacy default stream). Inputs and outputs are
  // tensors whose storage is device memory on the engine's GPU; outputs have the shapes
  // output_shapes() gives and are contiguous. Returns when the work is enqueued.
  virtual Status run(std::span<const Tensor> inputs, std::span<const Tensor> outputs,
                     void* stream) = 0;
  // Steps, kernels, arena and workspace sizes, for `kiln inspect` and debug logs.
  virtual std::string describe() const = 0;
};

// Prepares `engine` (its weights present) to run on the current CUDA device: loads its kernels,
// uploads weights, allocates the arena and workspace. Unsupported when kiln was built without
// the CUDA backend or no GPU is usable, naming why.
Result<std::unique_ptr<DeviceEngine>> load_cuda_engine(const format::Engine& engine);

// Whether this kiln has the CUDA backend compiled in.
bool has_cuda_backend();

// Where the CUDA runtime keeps the algorithms it timed (see cuda/tactic_cache.h); empty: in
// memory only. Without a call, the environment's KILN_TIMING_CACHE. No-op without CUDA.
void set_timing_cache_path(const std::string& path);

}  // namespace kiln
