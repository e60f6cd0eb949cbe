// The human-readable description of an engine that `kiln inspect model.engine` prints and
// kiln.Engine.describe() returns: build facts, target, bindings, profiles, ops and sizes.
#pragma once

#include <string>

#include "format/engine.h"
#include "kiln/status.h"

namespace kiln {

std::string describe_engine(const format::Engine& engine, size_t file_bytes);

// A CUDA engine's steps, one line each ("12: gemm[aten.linear.default] -> linear_4"), as the
// runtime plans them at the profile's largest shapes; planning needs no GPU. Unsupported for
// other backends (they run the program node by node).
Result<std::string> describe_plan(const format::Engine& engine);

}  // namespace kiln
