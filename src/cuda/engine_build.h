// The CUDA half of building an engine: plan it, generate and compile its kernels with NVRTC for
// the target arch (no GPU needed), and record the memory plan.
#pragma once

#include "builder/build_progress.h"
#include "builder/build_settings.h"
#include "cuda/plan.h"
#include "format/engine.h"

namespace kiln::cuda {

// Fills engine.kernels and engine.memory[0] for engine.program (lowered, profile applied).
Status add_cuda_kernels(format::Engine& engine, const builder::BuildSettings& settings,
                        builder::BuildProgress& progress);

// The plan of a built CUDA engine at its profile's largest shapes, with the options its build
// recorded: the builder's plan, the one the runtime makes again at load, and `kiln inspect
// --plan`'s.
Result<Plan> plan_engine(const format::Engine& engine);

}  // namespace kiln::cuda
