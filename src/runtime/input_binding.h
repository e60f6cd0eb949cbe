// Checking a program's user inputs and binding its symbols (dynamic dims) from their shapes.
#pragma once

#include <span>

#include "base/tensor.h"
#include "ir/graph.h"
#include "ir/sym_expr.h"

namespace kiln {

// Checks count, dtype, rank and every dim of `inputs` against the graph's user inputs, solving each
// symbol from the first dim that determines it (s0, or 2*s0) and checking it against its range.
// Errors name the input and dim and say what was expected and what was found.
Result<ir::SymBindings> bind_inputs(const ir::Graph& graph, std::span<const Tensor> inputs);

}  // namespace kiln
