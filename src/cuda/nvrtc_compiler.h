// Compiling kiln's generated CUDA C++ with NVRTC, at engine build time, for a named GPU arch.
// Needs no GPU: `kiln compile --target sm_90` works on a CPU-only machine.
#pragma once

#include <string>

#include "kiln/status.h"

namespace kiln::cuda {

struct CompiledModule {
  std::string cubin;  // machine code for the arch
  std::string ptx;    // when asked for: runs on the arch and newer (JIT-compiled at load)
  std::string log;    // NVRTC's messages (warnings)
};

// Compiles `source` (one translation unit; no #include) for `arch` ("sm_90", "sm_80"). Fails
// (internal, with NVRTC's log and the offending lines) when the source does not compile, and
// (invalid_argument) for an arch NVRTC does not know.
Result<CompiledModule> compile_cuda_source(const std::string& source, const std::string& arch,
                                           bool with_ptx, const std::string& name = "kiln");

// The arch names this NVRTC can compile for ("sm_75" ... "sm_120").
std::string supported_archs();

}  // namespace kiln::cuda
