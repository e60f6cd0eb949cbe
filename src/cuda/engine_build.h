// The CUDA half of building an engine: plan it, generate and compile its kernels with NVRTC for
// the target arch (no GPU needed), and record the memory plan.
#pragma once

#include "builder/build_progress.h"
#include "builder/build_settings.h"
#include "format/engine.h"

namespace kiln::cuda {

// Fills engine.kernels and engine.memory[0] for engine.program (lowered, profile applied).
Status add_cuda_kernels(format::Engine& engine, const builder::BuildSettings& settings,
                        builder::BuildProgress& progress);

}  // namespace kiln::cuda
