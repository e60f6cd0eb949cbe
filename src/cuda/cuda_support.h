// Which nodes the CUDA backend runs: the op registry's "cuda" implementations and the Backend
// object the builder and runtime ask.
#pragma once

#include "convert/op_registry.h"
#include "runtime/backend.h"

namespace kiln::cuda {

// Accepts the node, or says in a few words why the CUDA backend does not run it.
convert::Verdict cuda_verdict(const ir::Node& node);

// The CUDA backend as the builder sees it: supports() = cuda_verdict; nodes are not executed one
// by one (engines run plans), so execute() fails.
const Backend& cuda_backend();

}  // namespace kiln::cuda
