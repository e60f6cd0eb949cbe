// Running a float32 program in float16 or bfloat16 (enabled_precisions without explicit typing):
// float32 weights are stored in the reduced type, every float32 value inside the program becomes
// the reduced type, float32 user inputs are cast on entry and float32 outputs cast back on exit,
// so the engine's bindings keep the program's dtypes. Kernels still accumulate, and compute
// softmax and normalization statistics, in float32.
#pragma once

#include <string>
#include <vector>

#include "base/dtype.h"
#include "ir/program.h"

namespace kiln::passes {

// Rewrites `program` in place; `reduced` is kFloat16 or kBFloat16. Returns the number of values
// whose type changed (0: nothing in float32, the program is unchanged).
Result<size_t> run_in_reduced_precision(ir::Program& program, DType reduced,
                                        std::vector<std::string>* log = nullptr);

}  // namespace kiln::passes
